/*
 * NFC normalisation (UAX #15): decompose every code point canonically (table
 * lookups; Hangul syllables by arithmetic), sort each run of combining marks
 * by combining class (stable), then recompose left to right with the
 * primary-composite table, a mark being blocked when a mark of the same or
 * higher class (or a starter) sits between it and the last starter.
 * Text made only of code points below U+0300 is already NFC and is copied.
 */
#include "text/nfc.h"

#include <stdlib.h>
#include <string.h>

#include "text/unicode.h"

enum {
    S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7,
    L_COUNT = 19, V_COUNT = 21, T_COUNT = 28, N_COUNT = V_COUNT * T_COUNT,
    S_COUNT = L_COUNT * N_COUNT,
};

const char *nfc_unicode_version(void) { return nfc_tables_unicode_version; }

int nfc_ccc(uint32_t cp) {
    size_t lo = 0, hi = nfc_ccc_ranges_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < nfc_ccc_ranges[mid].first) hi = mid;
        else if (cp > nfc_ccc_ranges[mid].last) lo = mid + 1;
        else return nfc_ccc_ranges[mid].ccc;
    }
    return 0;
}

static const nfc_decomp_entry *find_decomp(uint32_t cp) {
    size_t lo = 0, hi = nfc_decomp_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < nfc_decomp[mid].cp) hi = mid;
        else if (cp > nfc_decomp[mid].cp) lo = mid + 1;
        else return &nfc_decomp[mid];
    }
    return NULL;
}

/* Primary composite of (a, b), or 0. */
static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE &&
        b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    size_t lo = 0, hi = nfc_comp_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const nfc_comp_entry *e = &nfc_comp[mid];
        if (a < e->first || (a == e->first && b < e->second)) hi = mid;
        else if (a > e->first || b > e->second) lo = mid + 1;
        else return e->composite;
    }
    return 0;
}

int nfc_cut_before(uint32_t cp) {
    if (cp < 0x80) return 1;
    if (nfc_ccc(cp)) return 0;
    if ((cp >= V_BASE && cp < V_BASE + V_COUNT) || (cp > T_BASE && cp < T_BASE + T_COUNT)) return 0;
    const nfc_decomp_entry *d = find_decomp(cp);
    if (d && nfc_ccc(nfc_decomp_pool[d->offset])) return 0;
    for (size_t i = 0; i < nfc_comp_n; i++)
        if (nfc_comp[i].second == cp) return 0;
    return 1;
}

char *nfc_normalize(const char *s, size_t len, size_t *out_len) {
    if (!s) return NULL;
    int simple = 1;
    for (size_t i = 0; i < len && simple; i++)
        if ((unsigned char)s[i] >= 0xCC) simple = 0; /* lead bytes of U+0300 and above */
    if (simple) {
        if (!uni_utf8_valid(s, len)) return NULL;
        char *o = malloc(len + 1);
        if (!o) return NULL;
        memcpy(o, s, len);
        o[len] = 0;
        *out_len = len;
        return o;
    }
    /* A code point decomposes into at most 4 (Hangul: 3), each from >= 1 byte. */
    uint32_t *cps = malloc((len * 4 + 1) * sizeof *cps);
    if (!cps) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = uni_utf8_decode(s + i, len - i, &cp);
        if (!k) {
            free(cps);
            return NULL;
        }
        i += (size_t)k;
        const nfc_decomp_entry *d;
        if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
            uint32_t si = cp - S_BASE;
            cps[n++] = L_BASE + si / N_COUNT;
            cps[n++] = V_BASE + (si % N_COUNT) / T_COUNT;
            if (si % T_COUNT) cps[n++] = T_BASE + si % T_COUNT;
        } else if ((d = find_decomp(cp)) != NULL) {
            for (uint32_t j = 0; j < d->len; j++) cps[n++] = nfc_decomp_pool[d->offset + j];
        } else {
            cps[n++] = cp;
        }
    }
    /* Canonical ordering: stable insertion sort inside each run of marks. */
    for (size_t i = 1; i < n; i++) {
        int c = nfc_ccc(cps[i]);
        if (!c) continue;
        size_t j = i;
        uint32_t v = cps[i];
        while (j > 0) {
            int pc = nfc_ccc(cps[j - 1]);
            if (pc <= c) break;
            cps[j] = cps[j - 1];
            j--;
        }
        cps[j] = v;
    }
    /* Composition. */
    if (n > 0) {
        size_t starter = 0, w = 1;
        int last = nfc_ccc(cps[0]);
        if (last) last = 256; /* a leading mark blocks everything until a starter */
        for (size_t i = 1; i < n; i++) {
            uint32_t ch = cps[i];
            int c = nfc_ccc(ch);
            uint32_t comp = (last < c || last == 0) ? compose(cps[starter], ch) : 0;
            if (comp && last != 256) {
                cps[starter] = comp;
            } else {
                if (c == 0) starter = w;
                last = c;
                cps[w++] = ch;
            }
        }
        n = w;
    }
    char *o = malloc(n * 4 + 1);
    if (!o) {
        free(cps);
        return NULL;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += (size_t)uni_utf8_encode(cps[i], o + m);
    o[m] = 0;
    free(cps);
    *out_len = m;
    return o;
}
