/*
 * Qwen2 byte-level BPE (see bpe.h for the pipeline).
 *
 * Tables built at load:
 *   toks[id]   vocabulary spelling (byte-level form / added-token text) and the
 *              raw bytes it decodes to;
 *   str hash   spelling -> id (open addressing, FNV-1a), for merges.txt and
 *              bpe_token_id;
 *   merge hash (left id, right id) -> (rank, merged id);
 *   byte_id    the token of each single byte (all 256 must exist);
 *   added      added tokens bucketed by first byte, longest first, for the
 *              leftmost-longest split.
 * Merging a pre-token: symbols in a linked list, candidate pairs in a binary
 * heap ordered by (rank, position); a popped pair is applied only if it is
 * still current (the tokenizers crate's Word::merge_all), so the result is
 * the classic "lowest rank, leftmost first" BPE in O(n log n).
 */
#include "text/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "io/json.h"
#include "text/nfc.h"
#include "text/unicode.h"

typedef struct {
    char *str;      /* vocabulary spelling, NUL-terminated (owned) */
    size_t str_len;
    char *bytes;    /* what it decodes to (owned; may equal str for added tokens) */
    size_t n_bytes;
    uint8_t present, added, special;
} tok_entry;

typedef struct {
    int32_t a, b, rank, id; /* a == -1: empty slot */
} merge_slot;

typedef struct {
    int32_t id;
    uint32_t len;
} added_ref;

struct bpe_tokenizer {
    tok_entry *toks;
    int32_t n_toks; /* one past the largest id */
    int32_t *str_slots; /* -1 empty */
    size_t str_cap;     /* power of two */
    merge_slot *merges;
    size_t merge_cap;   /* power of two */
    int n_merges;
    int32_t byte_id[256];
    added_ref *added;   /* bucketed by first byte, longest first */
    int added_start[257];
    int n_added;
    size_t max_added_len; /* bytes of the longest added token */
    pcre2_code *re;
    pcre2_code *re_last_ns; /* the last non-whitespace character (bpe_encode_stable) */
};

/* ---- GPT-2 byte <-> unicode map ---- */

/* Code point that byte b is spelled with. */
static uint32_t byte_to_cp(int b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
        return (uint32_t)b;
    /* The other 68 bytes get 256, 257, ... in byte order. */
    int n = 0;
    for (int k = 0; k < b; k++)
        if (!((k >= '!' && k <= '~') || (k >= 0xA1 && k <= 0xAC) || (k >= 0xAE && k <= 0xFF))) n++;
    return 256u + (uint32_t)n;
}

/* Byte spelled by code point cp, or -1. */
static int cp_to_byte(uint32_t cp, const uint32_t map[256]) {
    if (cp < 256 && map[cp] == cp) return (int)cp;
    if (cp >= 256 && cp < 256 + 68)
        for (int b = 0; b < 256; b++)
            if (map[b] == cp) return b;
    return -1;
}

/* ---- hashing ---- */

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static uint64_t mix2(int32_t a, int32_t b) {
    uint64_t x = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static int32_t str_find(const bpe_tokenizer *t, const char *s, size_t n) {
    size_t mask = t->str_cap - 1;
    for (size_t i = fnv1a(s, n) & mask;; i = (i + 1) & mask) {
        int32_t id = t->str_slots[i];
        if (id < 0) return -1;
        const tok_entry *e = &t->toks[id];
        if (e->str_len == n && memcmp(e->str, s, n) == 0) return id;
    }
}

/* Inserts id under its spelling unless the spelling is taken (first wins). */
static void str_insert(bpe_tokenizer *t, int32_t id) {
    const tok_entry *e = &t->toks[id];
    if (str_find(t, e->str, e->str_len) >= 0) return;
    size_t mask = t->str_cap - 1;
    size_t i = fnv1a(e->str, e->str_len) & mask;
    while (t->str_slots[i] >= 0) i = (i + 1) & mask;
    t->str_slots[i] = id;
}

static const merge_slot *merge_find(const bpe_tokenizer *t, int32_t a, int32_t b) {
    size_t mask = t->merge_cap - 1;
    for (size_t i = mix2(a, b) & mask;; i = (i + 1) & mask) {
        const merge_slot *m = &t->merges[i];
        if (m->a < 0) return NULL;
        if (m->a == a && m->b == b) return m;
    }
}

/* A later duplicate overrides the earlier rank, like the tokenizers crate. */
static void merge_insert(bpe_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t id) {
    size_t mask = t->merge_cap - 1;
    size_t i = mix2(a, b) & mask;
    while (t->merges[i].a >= 0 && !(t->merges[i].a == a && t->merges[i].b == b))
        i = (i + 1) & mask;
    t->merges[i] = (merge_slot){a, b, rank, id};
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

/* ---- loading ---- */

static char *slurp(const char *path, size_t *len, ctts_status *st, char *err, size_t err_len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        *st = ctts_err(err, err_len, CTTS_E_IO, "%s: cannot open", path);
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 65536 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                *st = ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", path);
                return NULL;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        *st = ctts_err(err, err_len, CTTS_E_IO, "%s: read error", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    *st = CTTS_OK;
    return buf;
}

static ctts_status grow_toks(bpe_tokenizer *t, int64_t id, char *err, size_t err_len) {
    if (id < t->n_toks) return CTTS_OK;
    int32_t n = (int32_t)id + 1;
    tok_entry *nt = realloc(t->toks, (size_t)n * sizeof *nt);
    if (!nt) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    memset(nt + t->n_toks, 0, (size_t)(n - t->n_toks) * sizeof *nt);
    t->toks = nt;
    t->n_toks = n;
    return CTTS_OK;
}

/* Decodes a byte-level spelling into raw bytes. Returns 0 if some character
 * is outside the byte map (the spelling is then kept as its own bytes). */
static int spelling_to_bytes(const char *s, size_t n, const uint32_t map[256], char *out,
                             size_t *out_n) {
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = uni_utf8_decode(s + i, n - i, &cp);
        if (!k) return 0;
        int b = cp_to_byte(cp, map);
        if (b < 0) return 0;
        out[m++] = (char)b;
        i += (size_t)k;
    }
    *out_n = m;
    return 1;
}

static ctts_status load_vocab(bpe_tokenizer *t, const char *path, const uint32_t map[256],
                              char *err, size_t err_len) {
    char perr[256];
    json_value *v = json_parse_file(path, perr, sizeof perr);
    if (!v) return ctts_err(err, err_len, CTTS_E_FORMAT, "%s", perr);
    ctts_status st = CTTS_OK;
    if (v->type != JSON_OBJECT || v->length == 0)
        st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: must be a non-empty object", path);
    int64_t max_id = -1;
    for (size_t i = 0; st == CTTS_OK && i < v->length; i++) {
        const json_value *e = &v->items[i];
        if (e->type != JSON_NUMBER || !e->is_integer || e->integer < 0 || e->integer >= (1 << 30))
            st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: token '%s' must map to an id in "
                          "[0, 2^30)", path, v->keys[i]);
        else if (v->key_lengths[i] == 0 || strlen(v->keys[i]) != v->key_lengths[i])
            st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: empty token or token with a NUL "
                          "(id %lld)", path, (long long)e->integer);
        else if (e->integer > max_id)
            max_id = e->integer;
    }
    if (st == CTTS_OK) st = grow_toks(t, max_id, err, err_len);
    for (size_t i = 0; st == CTTS_OK && i < v->length; i++) {
        int32_t id = (int32_t)v->items[i].integer;
        tok_entry *e = &t->toks[id];
        if (e->present) {
            st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: id %d is used by '%s' and '%s'", path,
                          id, e->str, v->keys[i]);
            break;
        }
        /* Take the key string over from the JSON tree. */
        e->str = v->keys[i];
        e->str_len = v->key_lengths[i];
        v->keys[i] = NULL;
        e->present = 1;
        e->bytes = malloc(e->str_len + 1);
        if (!e->bytes) {
            st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
            break;
        }
        if (!spelling_to_bytes(e->str, e->str_len, map, e->bytes, &e->n_bytes)) {
            memcpy(e->bytes, e->str, e->str_len);
            e->n_bytes = e->str_len;
        }
    }
    /* json_free must not free the keys we took (set to NULL above). */
    json_free(v);
    return st;
}

static ctts_status load_added(bpe_tokenizer *t, const char *path, char *err, size_t err_len) {
    char perr[256];
    json_value *v = json_parse_file(path, perr, sizeof perr);
    if (!v) return ctts_err(err, err_len, CTTS_E_FORMAT, "%s", perr);
    ctts_status st = CTTS_OK;
    const json_value *d = v->type == JSON_OBJECT ? json_get(v, "added_tokens_decoder") : NULL;
    if (v->type != JSON_OBJECT)
        st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: must be an object", path);
    else if (d && d->type != JSON_OBJECT)
        st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: 'added_tokens_decoder' must be an object",
                      path);
    for (size_t i = 0; st == CTTS_OK && d && i < d->length; i++) {
        const char *key = d->keys[i];
        char *end;
        long id = strtol(key, &end, 10);
        const json_value *o = &d->items[i];
        const json_value *content = json_get(o, "content");
        if (!*key || *end || id < 0 || id >= (1 << 30)) {
            st = ctts_err(err, err_len, CTTS_E_FORMAT,
                          "%s: added_tokens_decoder key '%s' is not a token id", path, key);
            break;
        }
        if (o->type != JSON_OBJECT || !content || content->type != JSON_STRING ||
            content->length == 0 || strlen(content->string) != content->length) {
            st = ctts_err(err, err_len, CTTS_E_FORMAT,
                          "%s: added_tokens_decoder.%s.content must be a non-empty string", path,
                          key);
            break;
        }
        static const char *const flags[] = {"lstrip", "rstrip", "single_word"};
        for (int f = 0; f < 3 && st == CTTS_OK; f++) {
            const json_value *b = json_get(o, flags[f]);
            if (b && b->type == JSON_BOOL && b->boolean)
                st = ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                              "%s: added token %s has %s = true (not supported)", path, key,
                              flags[f]);
        }
        if (st != CTTS_OK) break;
        const json_value *norm = json_get(o, "normalized");
        if (norm && norm->type == JSON_BOOL && norm->boolean) {
            /* Matching the normalised text equals matching literally when
             * the spelling is already NFC. */
            size_t nn = 0;
            char *nfc = nfc_normalize(content->string, content->length, &nn);
            int same = nfc && nn == content->length && memcmp(nfc, content->string, nn) == 0;
            free(nfc);
            if (!same) {
                st = ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                              "%s: added token %s is normalized and not in NFC", path, key);
                break;
            }
        }
        const json_value *sp = json_get(o, "special");
        st = grow_toks(t, id, err, err_len);
        if (st != CTTS_OK) break;
        tok_entry *e = &t->toks[id];
        if (e->present && e->added) {
            st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: added token id %ld appears twice",
                          path, id);
            break;
        }
        free(e->str);
        if (e->bytes != e->str) free(e->bytes);
        e->str = malloc(content->length + 1);
        if (!e->str) {
            e->bytes = NULL;
            st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
            break;
        }
        memcpy(e->str, content->string, content->length + 1);
        e->str_len = content->length;
        e->bytes = e->str;
        e->n_bytes = e->str_len;
        e->present = 1;
        e->added = 1;
        e->special = sp && sp->type == JSON_BOOL && sp->boolean;
        t->n_added++;
    }
    json_free(v);
    return st;
}

static ctts_status load_merges(bpe_tokenizer *t, const char *path, char *err, size_t err_len) {
    ctts_status st;
    size_t len;
    char *text = slurp(path, &len, &st, err, err_len);
    if (!text) return st;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    t->merge_cap = pow2_at_least(lines * 2 + 16);
    t->merges = malloc(t->merge_cap * sizeof *t->merges);
    if (!t->merges) {
        free(text);
        return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    for (size_t i = 0; i < t->merge_cap; i++) t->merges[i].a = -1;
    char *buf = NULL;
    size_t buf_cap = 0;
    int line_no = 0, rank = 0;
    for (size_t pos = 0; pos < len && st == CTTS_OK;) {
        size_t e = pos;
        while (e < len && text[e] != '\n') e++;
        size_t next = e + 1;
        line_no++;
        if (e > pos && text[e - 1] == '\r') e--;
        size_t n = e - pos;
        const char *line = text + pos;
        pos = next;
        if (n == 0) continue;
        if (line_no == 1 && n >= 8 && memcmp(line, "#version", 8) == 0) continue;
        const char *sp = memchr(line, ' ', n);
        if (!sp || sp == line || sp == line + n - 1 || memchr(sp + 1, ' ', (size_t)(line + n - sp - 1))) {
            st = ctts_err(err, err_len, CTTS_E_FORMAT,
                          "%s: line %d must be two tokens separated by one space", path, line_no);
            break;
        }
        size_t la = (size_t)(sp - line), lb = n - la - 1;
        int32_t a = str_find(t, line, la), b = str_find(t, sp + 1, lb);
        if (la + lb + 1 > buf_cap) {
            buf_cap = (la + lb + 1) * 2;
            char *nb = realloc(buf, buf_cap);
            if (!nb) {
                st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
                break;
            }
            buf = nb;
        }
        memcpy(buf, line, la);
        memcpy(buf + la, sp + 1, lb);
        int32_t ab = str_find(t, buf, la + lb);
        if (a < 0 || b < 0 || ab < 0 || t->toks[a].added || t->toks[b].added || t->toks[ab].added) {
            st = ctts_err(err, err_len, CTTS_E_FORMAT,
                          "%s: line %d: merge '%.*s' + '%.*s' uses a token missing from "
                          "vocab.json", path, line_no, (int)(la < 64 ? la : 64), line,
                          (int)(lb < 64 ? lb : 64), sp + 1);
            break;
        }
        merge_insert(t, a, b, rank++, ab);
    }
    t->n_merges = rank;
    free(buf);
    free(text);
    return st;
}

/* Whitespace as the tokenizers crate's regex engine (Oniguruma) reads \s with
 * Unicode: U+0009..000D, U+0085 and the Z categories — spelled out so PCRE2's
 * own \s rules (which differ by version) do not matter. */
#define WS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}" \
           "\\x{202F}\\x{205F}\\x{3000}"

static const char RE_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^" WS
    "\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+";

static const char RE_MISTRAL[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|"
    "\\p{N}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS
    "]+";

static int cmp_added(const void *pa, const void *pb, void *ctx) {
    const bpe_tokenizer *t = ctx;
    const added_ref *a = pa, *b = pb;
    unsigned char fa = (unsigned char)t->toks[a->id].str[0], fb = (unsigned char)t->toks[b->id].str[0];
    if (fa != fb) return fa < fb ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static ctts_status build_added_index(bpe_tokenizer *t, char *err, size_t err_len) {
    if (!t->n_added) {
        for (int i = 0; i <= 256; i++) t->added_start[i] = 0;
        return CTTS_OK;
    }
    t->added = malloc((size_t)t->n_added * sizeof *t->added);
    if (!t->added) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    int k = 0;
    for (int32_t id = 0; id < t->n_toks; id++)
        if (t->toks[id].added) {
            t->added[k++] = (added_ref){id, (uint32_t)t->toks[id].str_len};
            if (t->toks[id].str_len > t->max_added_len) t->max_added_len = t->toks[id].str_len;
        }
    qsort_r(t->added, (size_t)k, sizeof *t->added, cmp_added, t);
    int j = 0;
    for (int b = 0; b <= 256; b++) {
        while (j < k && (unsigned char)t->toks[t->added[j].id].str[0] < b) j++;
        t->added_start[b] = j;
    }
    return CTTS_OK;
}

ctts_status bpe_load_files(const char *vocab_path, const char *merges_path,
                           const char *config_path, bpe_regex regex, bpe_tokenizer **out,
                           char *err, size_t err_len) {
    if (!out || !vocab_path || !merges_path)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bpe_load: missing argument");
    *out = NULL;
    bpe_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    uint32_t map[256];
    for (int b = 0; b < 256; b++) map[b] = byte_to_cp(b);
    ctts_status st = CTTS_OK;
    const char *files[3] = {vocab_path, merges_path, config_path};
    for (int i = 0; i < 3 && st == CTTS_OK; i++)
        if (files[i] && access(files[i], R_OK) != 0)
            st = ctts_err(err, err_len, CTTS_E_IO, "%s: cannot open", files[i]);
    if (st == CTTS_OK) st = load_vocab(t, vocab_path, map, err, err_len);
    if (st == CTTS_OK && config_path) st = load_added(t, config_path, err, err_len);
    if (st == CTTS_OK) {
        t->str_cap = pow2_at_least((size_t)t->n_toks * 2 + 16);
        t->str_slots = malloc(t->str_cap * sizeof *t->str_slots);
        if (!t->str_slots) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    if (st == CTTS_OK) {
        memset(t->str_slots, 0xff, t->str_cap * sizeof *t->str_slots);
        for (int32_t id = 0; id < t->n_toks; id++)
            if (t->toks[id].present && t->toks[id].added) str_insert(t, id);
        for (int32_t id = 0; id < t->n_toks; id++)
            if (t->toks[id].present && !t->toks[id].added) str_insert(t, id);
        for (int b = 0; b < 256 && st == CTTS_OK; b++) {
            char s[4];
            int k = uni_utf8_encode(map[b], s);
            int32_t id = str_find(t, s, (size_t)k);
            if (id < 0 || t->toks[id].added)
                st = ctts_err(err, err_len, CTTS_E_FORMAT,
                              "%s: byte 0x%02X (spelled '%.*s') has no token", vocab_path, b, k,
                              s);
            t->byte_id[b] = id;
        }
    }
    if (st == CTTS_OK) st = load_merges(t, merges_path, err, err_len);
    if (st == CTTS_OK) st = build_added_index(t, err, err_len);
    if (st == CTTS_OK) {
        int ecode;
        PCRE2_SIZE eoff;
        const char *pat = regex == BPE_REGEX_FIX_MISTRAL ? RE_MISTRAL : RE_QWEN2;
        t->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                              &ecode, &eoff, NULL);
        if (!t->re) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ecode, msg, sizeof msg);
            st = ctts_err(err, err_len, CTTS_E_BACKEND, "pre-tokenizer regex: %s at %zu",
                          (const char *)msg, (size_t)eoff);
        } else {
            pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* optional speed-up */
            /* \s here is the pre-tokenizer's own whitespace class. */
            t->re_last_ns = pcre2_compile((PCRE2_SPTR) "\\S\\s*\\z", PCRE2_ZERO_TERMINATED,
                                          PCRE2_UTF | PCRE2_UCP, &ecode, &eoff, NULL);
            if (!t->re_last_ns) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        }
    }
    if (st != CTTS_OK) {
        bpe_free(t);
        return st;
    }
    *out = t;
    return CTTS_OK;
}

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

ctts_status bpe_load(const char *dir, bpe_regex regex, bpe_tokenizer **out, char *err,
                     size_t err_len) {
    if (!dir) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bpe_load: no folder");
    size_t n = strlen(dir) + 32;
    char *v = malloc(n), *m = malloc(n), *c = malloc(n);
    ctts_status st;
    if (!v || !m || !c) {
        st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    } else {
        snprintf(v, n, "%s/vocab.json", dir);
        snprintf(m, n, "%s/merges.txt", dir);
        snprintf(c, n, "%s/tokenizer_config.json", dir);
        st = bpe_load_files(v, m, file_exists(c) ? c : NULL, regex, out, err, err_len);
    }
    free(v);
    free(m);
    free(c);
    return st;
}

void bpe_free(bpe_tokenizer *t) {
    if (!t) return;
    for (int32_t i = 0; i < t->n_toks; i++) {
        if (t->toks[i].bytes != t->toks[i].str) free(t->toks[i].bytes);
        free(t->toks[i].str);
    }
    free(t->toks);
    free(t->str_slots);
    free(t->merges);
    free(t->added);
    if (t->re) pcre2_code_free(t->re);
    if (t->re_last_ns) pcre2_code_free(t->re_last_ns);
    free(t);
}

/* ---- encoding ---- */

typedef struct {
    int32_t *ids;
    size_t n, cap;
    /* BPE scratch, sized for the longest piece so far */
    int32_t *sym, *prev, *next;
    struct heap_item {
        int32_t rank, pos, id;
    } *heap;
    size_t heap_n, scratch_cap;
} enc_state;

static int push_id(enc_state *s, int32_t id) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        int32_t *ni = realloc(s->ids, cap * sizeof *ni);
        if (!ni) return 0;
        s->ids = ni;
        s->cap = cap;
    }
    s->ids[s->n++] = id;
    return 1;
}

static int heap_less(const struct heap_item *a, const struct heap_item *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(enc_state *s, struct heap_item it) {
    size_t i = s->heap_n++;
    s->heap[i] = it;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&s->heap[i], &s->heap[p])) break;
        struct heap_item tmp = s->heap[i];
        s->heap[i] = s->heap[p];
        s->heap[p] = tmp;
        i = p;
    }
}

static struct heap_item heap_pop(enc_state *s) {
    struct heap_item top = s->heap[0];
    s->heap[0] = s->heap[--s->heap_n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->heap_n && heap_less(&s->heap[l], &s->heap[m])) m = l;
        if (r < s->heap_n && heap_less(&s->heap[r], &s->heap[m])) m = r;
        if (m == i) break;
        struct heap_item tmp = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = tmp;
        i = m;
    }
    return top;
}

static void try_pair(const bpe_tokenizer *t, enc_state *s, int32_t pos) {
    int32_t nx = s->next[pos];
    if (nx < 0) return;
    const merge_slot *m = merge_find(t, s->sym[pos], s->sym[nx]);
    if (m) heap_push(s, (struct heap_item){m->rank, pos, m->id});
}

/* BPE over one pre-token's bytes; appends the ids. */
static int bpe_piece(const bpe_tokenizer *t, enc_state *s, const unsigned char *p, size_t n) {
    if (n == 1) return push_id(s, t->byte_id[p[0]]);
    if (n > s->scratch_cap) {
        size_t cap = n * 2;
        int32_t *a = realloc(s->sym, cap * sizeof *a);
        if (a) s->sym = a;
        int32_t *b = realloc(s->prev, cap * sizeof *b);
        if (b) s->prev = b;
        int32_t *c = realloc(s->next, cap * sizeof *c);
        if (c) s->next = c;
        /* Each merge pushes at most 2 items on top of the initial n - 1. */
        struct heap_item *h = realloc(s->heap, cap * 3 * sizeof *h);
        if (h) s->heap = h;
        if (!a || !b || !c || !h) return 0;
        s->scratch_cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        s->sym[i] = t->byte_id[p[i]];
        s->prev[i] = (int32_t)i - 1;
        s->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    s->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) try_pair(t, s, (int32_t)i);
    while (s->heap_n) {
        struct heap_item it = heap_pop(s);
        int32_t pos = it.pos;
        if (s->sym[pos] < 0) continue; /* absorbed into its left neighbour */
        int32_t nx = s->next[pos];
        if (nx < 0) continue;
        const merge_slot *m = merge_find(t, s->sym[pos], s->sym[nx]);
        if (!m || m->rank != it.rank || m->id != it.id) continue; /* stale */
        s->sym[pos] = it.id;
        s->sym[nx] = -1;
        s->next[pos] = s->next[nx];
        if (s->next[nx] >= 0) s->prev[s->next[nx]] = pos;
        if (s->prev[pos] >= 0) try_pair(t, s, s->prev[pos]);
        try_pair(t, s, pos);
    }
    for (int32_t i = 0; i >= 0; i = s->next[i])
        if (!push_id(s, s->sym[i])) return 0;
    return 1;
}

typedef void (*piece_fn)(const char *piece, size_t n, void *user);

/* Regex split of an NFC segment; calls fn per piece. */
static ctts_status split_normalized(const bpe_tokenizer *t, const char *norm, size_t nlen,
                                    piece_fn fn, void *user, char *err, size_t err_len) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!md) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    ctts_status st = CTTS_OK;
    size_t off = 0;
    while (off < nlen) {
        int rc = pcre2_match(t->re, (PCRE2_SPTR)norm, nlen, off, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) {
            fn(norm + off, nlen - off, user);
            break;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(rc, msg, sizeof msg);
            st = ctts_err(err, err_len, CTTS_E_BACKEND, "pre-tokenizer regex: %s",
                          (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t b = ov[0], e = ov[1];
        if (b > off) fn(norm + off, b - off, user); /* unmatched gap: its own piece */
        if (e > b) {
            fn(norm + b, e - b, user);
            off = e;
        } else {
            /* Empty match (impossible with the built-in patterns): step one character. */
            size_t k = b + 1;
            while (k < nlen && ((unsigned char)norm[k] & 0xC0) == 0x80) k++;
            if (k > b) fn(norm + b, k - b, user);
            off = k;
        }
    }
    pcre2_match_data_free(md);
    return st;
}

/* NFC of one segment (valid UTF-8 checked): malloc'd, or NULL with err set. */
static char *nfc_segment(const char *seg, size_t len, size_t *nlen, ctts_status *st, char *err,
                         size_t err_len) {
    char *norm = nfc_normalize(seg, len, nlen);
    if (!norm)
        *st = !uni_utf8_valid(seg, len)
                  ? ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text is not valid UTF-8")
                  : ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    return norm;
}

/* Byte length of the NFC of seg[0..len) (0 with *st set on failure). */
static size_t nfc_len(const char *seg, size_t len, ctts_status *st, char *err, size_t err_len) {
    size_t n = 0;
    char *norm = nfc_segment(seg, len, &n, st, err, err_len);
    if (!norm) return 0;
    free(norm);
    return n;
}

/* NFC + regex split of one segment; calls fn per piece. */
static ctts_status split_segment(const bpe_tokenizer *t, const char *seg, size_t len, piece_fn fn,
                                 void *user, char *err, size_t err_len) {
    size_t nlen = 0;
    ctts_status st = CTTS_OK;
    char *norm = nfc_segment(seg, len, &nlen, &st, err, err_len);
    if (!norm) return st;
    st = split_normalized(t, norm, nlen, fn, user, err, err_len);
    free(norm);
    return st;
}

typedef struct {
    const bpe_tokenizer *t;
    enc_state *s;
    int oom;
} piece_ctx;

static void encode_piece_cb(const char *piece, size_t n, void *user) {
    piece_ctx *c = user;
    if (c->oom) return;
    if (!bpe_piece(c->t, c->s, (const unsigned char *)piece, n)) c->oom = 1;
}

/* Leftmost-longest added token starting at text[i], or NULL. */
static const added_ref *added_at(const bpe_tokenizer *t, const char *text, size_t len, size_t i) {
    unsigned char c = (unsigned char)text[i];
    for (int k = t->added_start[c]; k < t->added_start[c + 1]; k++) {
        const added_ref *a = &t->added[k];
        if (a->len <= len - i && memcmp(text + i, t->toks[a->id].str, a->len) == 0) return a;
    }
    return NULL;
}

ctts_status bpe_encode(const bpe_tokenizer *t, const char *text, size_t len, int32_t **ids,
                       size_t *n, char *err, size_t err_len) {
    if (!t || (!text && len) || !ids || !n)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bpe_encode: missing argument");
    *ids = NULL;
    *n = 0;
    if (!uni_utf8_valid(text, len))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text is not valid UTF-8");
    enc_state s = {0};
    piece_ctx pc = {.t = t, .s = &s};
    ctts_status st = CTTS_OK;
    size_t seg = 0;
    for (size_t i = 0; i <= len && st == CTTS_OK;) {
        const added_ref *a = i < len && t->n_added ? added_at(t, text, len, i) : NULL;
        if (!a && i < len) {
            i++;
            continue;
        }
        if (i > seg) {
            st = split_segment(t, text + seg, i - seg, encode_piece_cb, &pc, err, err_len);
            if (st == CTTS_OK && pc.oom) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        }
        if (!a) break;
        if (st == CTTS_OK && !push_id(&s, a->id))
            st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        i += a->len;
        seg = i;
    }
    free(s.sym);
    free(s.prev);
    free(s.next);
    free(s.heap);
    if (st != CTTS_OK) {
        free(s.ids);
        return st;
    }
    *ids = s.ids;
    *n = s.n;
    return CTTS_OK;
}

/* ---- encoding text that is still being written ---- */

/* Piece start offsets of a normalized segment (after the first). */
typedef struct {
    const char *base;
    size_t *off;
    size_t n, cap;
    int oom;
} cut_list;

static void cut_cb(const char *piece, size_t n, void *user) {
    (void)n;
    cut_list *c = user;
    if (c->oom || piece == c->base) return;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        size_t *o = realloc(c->off, cap * sizeof *o);
        if (!o) {
            c->oom = 1;
            return;
        }
        c->off = o;
        c->cap = cap;
    }
    c->off[c->n++] = (size_t)(piece - c->base);
}

/* 1 if s[0..n) is a proper prefix of an added token. */
static int added_prefix(const bpe_tokenizer *t, const char *s, size_t n) {
    unsigned char c = (unsigned char)s[0];
    for (int k = t->added_start[c]; k < t->added_start[c + 1]; k++) {
        const added_ref *a = &t->added[k];
        if (a->len > n && memcmp(s, t->toks[a->id].str, n) == 0) return 1;
    }
    return 0;
}

/* Bytes of the longest prefix of s[0..n) that ends on a character boundary
 * (an incomplete last sequence is left for later text). */
static size_t complete_utf8(const char *s, size_t n) {
    size_t i = n, k = 0;
    while (i > 0 && k < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--, k++;
    if (i == 0) return n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return need > k + 1 ? i - 1 : n;
}

/* Within the open segment seg[0..len) (no added token in it): the largest cut
 * c that later text cannot move (see bpe_encode_stable), 0 if none. */
static ctts_status stable_cut(const bpe_tokenizer *t, const char *seg, size_t len, size_t *cut,
                              char *err, size_t err_len) {
    *cut = 0;
    if (!len) return CTTS_OK;
    ctts_status st = CTTS_OK;
    size_t nlen = 0;
    char *norm = nfc_segment(seg, len, &nlen, &st, err, err_len);
    if (!norm) return st;
    /* Pieces ending at or before the last non-whitespace character are final:
     * every alternative of the pattern decides by looking at most up to the
     * next non-whitespace character. */
    size_t last_ns = 0;
    int have_ns = 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re_last_ns, NULL);
    if (!md) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    if (md && pcre2_match(t->re_last_ns, (PCRE2_SPTR)norm, nlen, 0, PCRE2_NO_UTF_CHECK, md,
                          NULL) >= 0) {
        last_ns = pcre2_get_ovector_pointer(md)[0];
        have_ns = 1;
    }
    if (md) pcre2_match_data_free(md);
    cut_list all = {.base = norm}, part = {0};
    if (st == CTTS_OK && have_ns) st = split_normalized(t, norm, nlen, cut_cb, &all, err, err_len);
    if (st == CTTS_OK && all.oom) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    const int identity = nlen == len && memcmp(norm, seg, len) == 0;
    size_t *clean = NULL, n_clean = 0; /* positions where NFC may be cut */
    if (st == CTTS_OK && have_ns && !identity) {
        clean = malloc(len * sizeof *clean);
        if (!clean) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        for (size_t i = 0; clean && i < len;) {
            uint32_t cp = 0;
            int k = uni_utf8_decode(seg + i, len - i, &cp);
            if (k <= 0) break;
            if (nfc_cut_before(cp)) clean[n_clean++] = i;
            i += (size_t)k;
        }
    }
    for (size_t k = all.n; st == CTTS_OK && have_ns && k-- > 0;) {
        const size_t b = all.off[k];
        uint32_t cp = 0;
        if (b > last_ns || uni_utf8_decode(norm + b, nlen - b, &cp) <= 0 || !nfc_cut_before(cp))
            continue;
        size_t c = b;
        if (!identity) {
            /* The cut in seg whose prefix normalizes to norm[0..b): the NFC of a
             * prefix cut cleanly is a prefix of norm, so bisect by length. */
            size_t lo = 0, hi = n_clean;
            while (lo < hi && st == CTTS_OK) {
                size_t mid = lo + (hi - lo) / 2, pl = nfc_len(seg, clean[mid], &st, err, err_len);
                if (pl < b) lo = mid + 1;
                else hi = mid;
            }
            char *pn = NULL;
            size_t pl = 0;
            if (st == CTTS_OK && lo < n_clean) pn = nfc_segment(seg, clean[lo], &pl, &st, err, err_len);
            int same = pn && pl == b && memcmp(pn, norm, b) == 0;
            free(pn);
            if (!same) continue;
            c = clean[lo];
        }
        /* The prefix alone must split as it does inside the whole segment. */
        part.n = 0;
        part.base = norm;
        if (st == CTTS_OK) st = split_normalized(t, norm, b, cut_cb, &part, err, err_len);
        if (st == CTTS_OK && part.oom) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        if (st == CTTS_OK && part.n == k && (!k || !memcmp(part.off, all.off, k * sizeof *all.off))) {
            *cut = c;
            break;
        }
    }
    free(clean);
    free(all.off);
    free(part.off);
    free(norm);
    return st;
}

ctts_status bpe_encode_stable(const bpe_tokenizer *t, const char *text, size_t len, int final,
                              int32_t **ids, size_t *n, size_t *used, char *err, size_t err_len) {
    if (!t || (!text && len) || !ids || !n || !used)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bpe_encode_stable: missing argument");
    *ids = NULL;
    *n = *used = 0;
    if (final) {
        ctts_status st = bpe_encode(t, text, len, ids, n, err, err_len);
        if (st == CTTS_OK) *used = len;
        return st;
    }
    size_t lim = complete_utf8(text, len);
    if (!uni_utf8_valid(text, lim))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text is not valid UTF-8");
    /* An added token may still be completing at the end: stop before it. */
    const size_t from = lim > t->max_added_len ? lim - t->max_added_len : 0;
    for (size_t i = from; i < lim && t->n_added; i++)
        if (added_prefix(t, text + i, lim - i)) {
            lim = i;
            break;
        }
    /* Complete added tokens end segments; the last segment stays open. */
    size_t seg = 0;
    for (size_t i = 0; i < lim && t->n_added;) {
        const added_ref *a = added_at(t, text, lim, i);
        if (a) i += a->len, seg = i;
        else i++;
    }
    size_t c = 0;
    ctts_status st = stable_cut(t, text + seg, lim - seg, &c, err, err_len);
    if (st != CTTS_OK) return st;
    st = bpe_encode(t, text, seg + c, ids, n, err, err_len);
    if (st == CTTS_OK) *used = seg + c;
    return st;
}

ctts_status bpe_pretokenize(const bpe_tokenizer *t, const char *text, size_t len,
                            void (*fn)(const char *piece, size_t n, void *user), void *user,
                            char *err, size_t err_len) {
    if (!t || (!text && len) || !fn)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bpe_pretokenize: missing argument");
    if (!uni_utf8_valid(text, len))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text is not valid UTF-8");
    return split_segment(t, text, len, fn, user, err, err_len);
}

/* ---- decoding ---- */

/* Length of the maximal prefix of an ill-formed sequence at s (>= 1), per the
 * Unicode "maximal subpart" rule used by Rust's from_utf8_lossy. */
static size_t bad_subpart(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) need = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
    else if (c == 0xED) need = 2, hi = 0x9F;
    else if (c == 0xF0) need = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) need = 3, hi = 0x8F;
    else return 1;
    size_t k = 1;
    for (int j = 0; j < need && k < n; j++, k++) {
        unsigned char b = s[k];
        if (j == 0 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
    }
    return k;
}

ctts_status bpe_decode(const bpe_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                       char **out, size_t *out_len, char *err, size_t err_len) {
    if (!t || (!ids && n) || !out)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bpe_decode: missing argument");
    *out = NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_toks || !t->toks[ids[i]].present)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "token id %d is not in the "
                            "vocabulary", ids[i]);
        total += t->toks[ids[i]].n_bytes;
    }
    unsigned char *raw = malloc(total + 1);
    /* Each bad byte becomes U+FFFD (3 bytes). */
    char *o = malloc(total * 3 + 1);
    if (!raw || !o) {
        free(raw);
        free(o);
        return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const tok_entry *e = &t->toks[ids[i]];
        if (skip_special && e->special) continue;
        memcpy(raw + m, e->bytes, e->n_bytes);
        m += e->n_bytes;
    }
    size_t w = 0;
    for (size_t i = 0; i < m;) {
        uint32_t cp;
        int k = uni_utf8_decode((const char *)raw + i, m - i, &cp);
        if (k) {
            memcpy(o + w, raw + i, (size_t)k);
            w += (size_t)k;
            i += (size_t)k;
        } else {
            memcpy(o + w, "\xEF\xBF\xBD", 3);
            w += 3;
            i += bad_subpart(raw + i, m - i);
        }
    }
    o[w] = 0;
    free(raw);
    *out = o;
    if (out_len) *out_len = w;
    return CTTS_OK;
}

/* ---- queries ---- */

int32_t bpe_token_id(const bpe_tokenizer *t, const char *token) {
    if (!t || !token) return -1;
    return str_find(t, token, strlen(token));
}

const char *bpe_token_str(const bpe_tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->n_toks || !t->toks[id].present) return NULL;
    return t->toks[id].str;
}

int bpe_is_added(const bpe_tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_toks && t->toks[id].added;
}

int32_t bpe_vocab_size(const bpe_tokenizer *t) { return t ? t->n_toks : 0; }

int bpe_n_merges(const bpe_tokenizer *t) { return t ? t->n_merges : 0; }
