/*
 * Strict UTF-8 codec and table lookups for the Python str predicates used by
 * the text front end. Tables are sorted, so every lookup is a binary search.
 * No allocation, no state.
 */
#include "text/unicode.h"

int uni_utf8_decode(const char *s, size_t len, uint32_t *cp) {
    if (len == 0) return 0;
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c = u[0];
    int n;
    uint32_t min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        n = 2, c &= 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, c &= 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < (size_t)n) return 0;
    for (int i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (u[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return n;
}

int uni_utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    } else if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    } else if (cp < 0x10000) {
        if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    } else if (cp <= 0x10FFFF) {
        o[0] = (unsigned char)(0xF0 | (cp >> 18));
        o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (unsigned char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

int uni_utf8_valid(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        int n = uni_utf8_decode(s + i, len - i, &cp);
        if (n == 0) return 0;
        i += (size_t)n;
    }
    return 1;
}

static int in_ranges(const uni_range *r, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].first) hi = mid;
        else if (cp > r[mid].last) lo = mid + 1;
        else return 1;
    }
    return 0;
}

int uni_is_space(uint32_t cp) { return in_ranges(uni_space_ranges, uni_space_ranges_n, cp); }
int uni_is_upper(uint32_t cp) { return in_ranges(uni_upper_ranges, uni_upper_ranges_n, cp); }
int uni_is_alnum(uint32_t cp) { return in_ranges(uni_alnum_ranges, uni_alnum_ranges_n, cp); }

int uni_to_upper(uint32_t cp, uint32_t out[3]) {
    size_t lo = 0, hi = uni_upper_map_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < uni_upper_map[mid].cp) hi = mid;
        else if (cp > uni_upper_map[mid].cp) lo = mid + 1;
        else {
            int n = 0;
            for (int i = 0; i < 3 && uni_upper_map[mid].upper[i]; i++) out[n++] = uni_upper_map[mid].upper[i];
            return n;
        }
    }
    out[0] = cp;
    return 1;
}

const char *uni_unicode_version(void) { return uni_tables_unicode_version; }
