/*
 * Strict recursive-descent JSON parser building a json_value tree.
 *
 * Data flow: json_parse walks text[0..len) once; each value is written into a
 * caller-provided json_value (arrays and objects collect children in growing
 * vectors, shrunk at the end). On error the partial tree is freed and the
 * error position is converted to line / column for the message.
 * Recursion depth is bounded by JSON_MAX_DEPTH, so hostile input like 10000
 * '[' fails cleanly instead of exhausting the stack.
 */
#include "io/json.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *text;
    size_t len;
    size_t pos;
    size_t err_pos;
    char msg[160];
    int failed;
} json_parser;

static int parser_fail(json_parser *p, size_t pos, const char *fmt, const char *arg) {
    if (!p->failed) {
        p->failed = 1;
        p->err_pos = pos;
        snprintf(p->msg, sizeof p->msg, fmt, arg ? arg : "");
    }
    return -1;
}

const char *json_type_name(json_type t) {
    switch (t) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "bool";
    case JSON_NUMBER: return "number";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    }
    return "?";
}

void json_free_contents(json_value *v) {
    if (!v) return;
    free(v->string);
    if (v->items) {
        for (size_t i = 0; i < v->length; i++) json_free_contents(&v->items[i]);
        free(v->items);
    }
    if (v->keys) {
        for (size_t i = 0; i < v->length; i++) free(v->keys[i]);
        free(v->keys);
    }
    free(v->key_lengths);
    memset(v, 0, sizeof *v);
}

void json_free(json_value *v) {
    if (!v) return;
    json_free_contents(v);
    free(v);
}

static void skip_ws(json_parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->text[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            p->pos++;
        else
            break;
    }
}

/* Describes the byte at pos for error messages ("'x'", "byte 0xC3", "end of input"). */
static const char *describe_at(const json_parser *p, size_t pos, char *buf, size_t n) {
    if (pos >= p->len) return "end of input";
    unsigned char c = p->text[pos];
    if (c >= 0x21 && c < 0x7f)
        snprintf(buf, n, "'%c'", c);
    else
        snprintf(buf, n, "byte 0x%02X", c);
    return buf;
}

/* Growable byte buffer for decoded strings. */
typedef struct {
    char *data;
    size_t len, cap;
} byte_buf;

static int buf_reserve(byte_buf *b, size_t extra) {
    if (extra > SIZE_MAX - b->len - 1) return -1;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 32;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *d = realloc(b->data, cap);
    if (!d) return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

static void buf_put_utf8(byte_buf *b, uint32_t cp) {
    char *o = b->data + b->len;
    if (cp < 0x80) {
        o[0] = (char)cp;
        b->len += 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        b->len += 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        b->len += 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        b->len += 4;
    }
}

/* Length of a valid UTF-8 sequence starting at s (n bytes available), 0 if invalid.
 * Rejects overlong forms, surrogates and code points above U+10FFFF. */
static size_t utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

static int hex4(const json_parser *p, size_t at, uint32_t *out) {
    if (at > p->len || p->len - at < 4) return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->text[at + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Parses a string starting at the opening quote; returns a malloc'd NUL-terminated copy. */
static int parse_string(json_parser *p, char **out, size_t *out_len) {
    size_t start = p->pos;
    byte_buf b = {0};
    p->pos++; /* opening quote */
    for (;;) {
        if (p->pos >= p->len) {
            free(b.data);
            return parser_fail(p, start, "unterminated string%s", NULL);
        }
        unsigned char c = p->text[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            free(b.data);
            return parser_fail(p, p->pos, "control character in string%s", NULL);
        }
        if (c == '\\') {
            size_t esc = p->pos;
            if (p->pos + 1 >= p->len) {
                free(b.data);
                return parser_fail(p, start, "unterminated string%s", NULL);
            }
            unsigned char e = p->text[p->pos + 1];
            uint32_t cp;
            p->pos += 2;
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (hex4(p, p->pos, &cp)) {
                    free(b.data);
                    return parser_fail(p, esc, "bad \\u escape (need 4 hex digits)%s", NULL);
                }
                p->pos += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    free(b.data);
                    return parser_fail(p, esc, "lone low surrogate in \\u escape%s", NULL);
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (p->pos + 2 > p->len || p->text[p->pos] != '\\' ||
                        p->text[p->pos + 1] != 'u' || hex4(p, p->pos + 2, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF) {
                        free(b.data);
                        return parser_fail(p, esc, "lone high surrogate in \\u escape%s", NULL);
                    }
                    p->pos += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                break;
            default: {
                char d[24];
                free(b.data);
                return parser_fail(p, esc, "bad escape \\%s", describe_at(p, esc + 1, d, sizeof d));
            }
            }
            if (buf_reserve(&b, 4)) {
                free(b.data);
                return parser_fail(p, start, "out of memory%s", NULL);
            }
            buf_put_utf8(&b, cp);
            continue;
        }
        /* Copy a run of plain bytes, validating UTF-8. */
        size_t run = p->pos;
        while (run < p->len) {
            unsigned char r = p->text[run];
            if (r == '"' || r == '\\' || r < 0x20) break;
            size_t n = utf8_valid_len(p->text + run, p->len - run);
            if (!n) {
                free(b.data);
                return parser_fail(p, run, "invalid UTF-8 in string%s", NULL);
            }
            run += n;
        }
        if (buf_reserve(&b, run - p->pos)) {
            free(b.data);
            return parser_fail(p, start, "out of memory%s", NULL);
        }
        memcpy(b.data + b.len, p->text + p->pos, run - p->pos);
        b.len += run - p->pos;
        p->pos = run;
    }
    if (buf_reserve(&b, 0)) {
        free(b.data);
        return parser_fail(p, start, "out of memory%s", NULL);
    }
    b.data[b.len] = '\0';
    *out = b.data;
    *out_len = b.len;
    return 0;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int parse_number(json_parser *p, json_value *v) {
    size_t start = p->pos, i = p->pos;
    const unsigned char *t = p->text;
    int integral = 1;
    if (i < p->len && t[i] == '-') i++;
    if (i >= p->len || !is_digit(t[i])) return parser_fail(p, start, "invalid number%s", NULL);
    if (t[i] == '0') {
        i++;
        if (i < p->len && is_digit(t[i]))
            return parser_fail(p, start, "invalid number (leading zero)%s", NULL);
    } else {
        while (i < p->len && is_digit(t[i])) i++;
    }
    if (i < p->len && t[i] == '.') {
        integral = 0;
        i++;
        if (i >= p->len || !is_digit(t[i]))
            return parser_fail(p, start, "invalid number (no digits after '.')%s", NULL);
        while (i < p->len && is_digit(t[i])) i++;
    }
    if (i < p->len && (t[i] == 'e' || t[i] == 'E')) {
        integral = 0;
        i++;
        if (i < p->len && (t[i] == '+' || t[i] == '-')) i++;
        if (i >= p->len || !is_digit(t[i]))
            return parser_fail(p, start, "invalid number (no exponent digits)%s", NULL);
        while (i < p->len && is_digit(t[i])) i++;
    }
    size_t n = i - start;
    v->type = JSON_NUMBER;
    if (integral) {
        /* Exact int64 when it fits. */
        int neg = t[start] == '-';
        uint64_t acc = 0, limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
        int fits = 1;
        for (size_t k = start + (size_t)neg; k < i; k++) {
            uint64_t d = (uint64_t)(t[k] - '0');
            if (acc > (limit - d) / 10) {
                fits = 0;
                break;
            }
            acc = acc * 10 + d;
        }
        if (fits) {
            v->is_integer = 1;
            v->integer = neg ? (acc == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)acc)
                             : (int64_t)acc;
        }
    }
    /* strtod on a NUL-terminated copy; the decimal point follows the C locale
     * in JSON, so translate it to the current locale's one. */
    char small[64];
    char *copy = n < sizeof small ? small : malloc(n + 8);
    if (!copy) return parser_fail(p, start, "out of memory%s", NULL);
    memcpy(copy, t + start, n);
    copy[n] = '\0';
    const char *dp = localeconv()->decimal_point;
    if (dp && dp[0] && dp[0] != '.' && !dp[1]) {
        for (size_t k = 0; k < n; k++)
            if (copy[k] == '.') copy[k] = dp[0];
    }
    errno = 0;
    double d = strtod(copy, NULL);
    if (copy != small) free(copy);
    if (isinf(d)) return parser_fail(p, start, "number out of range%s", NULL);
    v->number = d;
    p->pos = i;
    return 0;
}

static int match_literal(json_parser *p, const char *lit) {
    size_t n = strlen(lit);
    if (p->len - p->pos < n || memcmp(p->text + p->pos, lit, n) != 0) return -1;
    p->pos += n;
    return 0;
}

static int parse_value(json_parser *p, json_value *v, int depth);

/* Appends a zeroed slot to a growing vector of json_value (and keys for objects). */
typedef struct {
    json_value *items;
    char **keys;
    size_t *key_lengths;
    size_t n, cap;
} value_vec;

static int vec_push(value_vec *vec, int with_keys) {
    if (vec->n == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof(json_value)) return -1;
        json_value *items = realloc(vec->items, cap * sizeof *items);
        if (!items) return -1;
        vec->items = items;
        if (with_keys) {
            char **keys = realloc(vec->keys, cap * sizeof *keys);
            if (!keys) return -1;
            vec->keys = keys;
            size_t *kl = realloc(vec->key_lengths, cap * sizeof *kl);
            if (!kl) return -1;
            vec->key_lengths = kl;
        }
        vec->cap = cap;
    }
    memset(&vec->items[vec->n], 0, sizeof(json_value));
    if (with_keys) {
        vec->keys[vec->n] = NULL;
        vec->key_lengths[vec->n] = 0;
    }
    vec->n++;
    return 0;
}

/* Moves the vector into v (so json_free_contents can release partial results too). */
static void vec_commit(value_vec *vec, json_value *v) {
    v->items = vec->items;
    v->keys = vec->keys;
    v->key_lengths = vec->key_lengths;
    v->length = vec->n;
}

static int parse_array(json_parser *p, json_value *v, int depth) {
    value_vec vec = {0};
    v->type = JSON_ARRAY;
    p->pos++; /* '[' */
    skip_ws(p);
    if (p->pos < p->len && p->text[p->pos] == ']') {
        p->pos++;
        return 0;
    }
    for (;;) {
        if (vec_push(&vec, 0)) {
            vec_commit(&vec, v);
            return parser_fail(p, p->pos, "out of memory%s", NULL);
        }
        int rc = parse_value(p, &vec.items[vec.n - 1], depth + 1);
        vec_commit(&vec, v);
        if (rc) return rc;
        skip_ws(p);
        if (p->pos < p->len && p->text[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->text[p->pos] == ']')
                return parser_fail(p, p->pos, "trailing comma in array%s", NULL);
            continue;
        }
        if (p->pos < p->len && p->text[p->pos] == ']') {
            p->pos++;
            return 0;
        }
        char d[24];
        return parser_fail(p, p->pos, "expected ',' or ']' in array, got %s",
                           describe_at(p, p->pos, d, sizeof d));
    }
}

static int parse_object(json_parser *p, json_value *v, int depth) {
    value_vec vec = {0};
    v->type = JSON_OBJECT;
    p->pos++; /* '{' */
    skip_ws(p);
    if (p->pos < p->len && p->text[p->pos] == '}') {
        p->pos++;
        return 0;
    }
    for (;;) {
        char d[24];
        if (p->pos >= p->len || p->text[p->pos] != '"') {
            vec_commit(&vec, v);
            return parser_fail(p, p->pos, "expected string key in object, got %s",
                               describe_at(p, p->pos, d, sizeof d));
        }
        if (vec_push(&vec, 1)) {
            vec_commit(&vec, v);
            return parser_fail(p, p->pos, "out of memory%s", NULL);
        }
        vec_commit(&vec, v);
        size_t k = vec.n - 1;
        if (parse_string(p, &vec.keys[k], &vec.key_lengths[k])) return -1;
        skip_ws(p);
        if (p->pos >= p->len || p->text[p->pos] != ':')
            return parser_fail(p, p->pos, "expected ':' after object key, got %s",
                               describe_at(p, p->pos, d, sizeof d));
        p->pos++;
        if (parse_value(p, &vec.items[k], depth + 1)) return -1;
        skip_ws(p);
        if (p->pos < p->len && p->text[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->text[p->pos] == '}')
                return parser_fail(p, p->pos, "trailing comma in object%s", NULL);
            continue;
        }
        if (p->pos < p->len && p->text[p->pos] == '}') {
            p->pos++;
            return 0;
        }
        return parser_fail(p, p->pos, "expected ',' or '}' in object, got %s",
                           describe_at(p, p->pos, d, sizeof d));
    }
}

static int parse_value(json_parser *p, json_value *v, int depth) {
    skip_ws(p);
    if (depth > JSON_MAX_DEPTH)
        return parser_fail(p, p->pos, "nesting deeper than 128 levels%s", NULL);
    if (p->pos >= p->len) return parser_fail(p, p->pos, "unexpected end of input%s", NULL);
    unsigned char c = p->text[p->pos];
    switch (c) {
    case '{': return parse_object(p, v, depth);
    case '[': return parse_array(p, v, depth);
    case '"':
        v->type = JSON_STRING;
        return parse_string(p, &v->string, &v->length);
    case 't':
        if (match_literal(p, "true")) break;
        v->type = JSON_BOOL;
        v->boolean = 1;
        return 0;
    case 'f':
        if (match_literal(p, "false")) break;
        v->type = JSON_BOOL;
        return 0;
    case 'n':
        if (match_literal(p, "null")) break;
        v->type = JSON_NULL;
        return 0;
    default:
        if (c == '-' || is_digit(c)) return parse_number(p, v);
        break;
    }
    char d[24];
    return parser_fail(p, p->pos, "unexpected %s", describe_at(p, p->pos, d, sizeof d));
}

/* 1-based line and byte column of pos. */
static void line_col(const unsigned char *text, size_t len, size_t pos, size_t *line, size_t *col) {
    size_t l = 1, line_start = 0;
    if (pos > len) pos = len;
    for (size_t i = 0; i < pos; i++)
        if (text[i] == '\n') {
            l++;
            line_start = i + 1;
        }
    *line = l;
    *col = pos - line_start + 1;
}

json_value *json_parse(const char *text, size_t len, char *err, size_t err_len) {
    json_parser p = {0};
    p.text = (const unsigned char *)(text ? text : "");
    p.len = text ? len : 0;
    if (p.len >= 3 && memcmp(p.text, "\xEF\xBB\xBF", 3) == 0) p.pos = 3;
    json_value *root = calloc(1, sizeof *root);
    if (!root) {
        if (err && err_len) snprintf(err, err_len, "line 1 col 1: out of memory");
        return NULL;
    }
    skip_ws(&p);
    if (p.pos >= p.len) {
        parser_fail(&p, p.pos, "empty input%s", NULL);
    } else if (parse_value(&p, root, 1) == 0) {
        skip_ws(&p);
        if (p.pos < p.len) {
            char d[24];
            parser_fail(&p, p.pos, "unexpected %s after the top-level value",
                        describe_at(&p, p.pos, d, sizeof d));
        }
    }
    if (p.failed) {
        size_t line, col;
        line_col(p.text, p.len, p.err_pos, &line, &col);
        if (err && err_len) snprintf(err, err_len, "line %zu col %zu: %s", line, col, p.msg);
        json_free(root);
        return NULL;
    }
    return root;
}

const json_value *json_get(const json_value *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT || !key) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < obj->length; i++)
        if (obj->key_lengths[i] == n && memcmp(obj->keys[i], key, n) == 0) return &obj->items[i];
    return NULL;
}

const json_value *json_at(const json_value *arr, size_t i) {
    if (!arr || arr->type != JSON_ARRAY || i >= arr->length) return NULL;
    return &arr->items[i];
}

json_value *json_parse_file(const char *path, char *err, size_t err_len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && err_len) snprintf(err, err_len, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    byte_buf b = {0};
    for (;;) {
        if (buf_reserve(&b, 65536)) {
            fclose(f);
            free(b.data);
            if (err && err_len) snprintf(err, err_len, "%s: out of memory", path);
            return NULL;
        }
        size_t got = fread(b.data + b.len, 1, b.cap - b.len - 1, f);
        b.len += got;
        if (got == 0) break;
    }
    int read_error = ferror(f);
    fclose(f);
    if (read_error) {
        free(b.data);
        if (err && err_len) snprintf(err, err_len, "cannot read '%s'", path);
        return NULL;
    }
    char msg[200];
    json_value *v = json_parse(b.data, b.len, msg, sizeof msg);
    free(b.data);
    if (!v && err && err_len) snprintf(err, err_len, "%s: %s", path, msg);
    return v;
}
