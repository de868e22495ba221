/*
 * SentencePiece unigram tokenizer: model loading, normalizer, Viterbi encoder
 * and decoder. Behaviour follows sentencepiece's normalizer.cc,
 * unigram_model.cc (EncodeOptimized) and sentencepiece_processor.cc
 * (byte fallback, unknown merging, Decode) so the ids match exactly; the code
 * is our own.
 *
 * Data flow: file bytes -> protobuf wire reader (pb_*) -> pieces + specs ->
 * piece trie (hash of (node, byte) -> child) used by both the encoder and the
 * user-defined-symbol prefix matcher; the normalizer walks the Darts-clone
 * double array of precompiled_charsmap with bounds checks on every unit.
 * It does not implement BPE, sampling or n-best (see sentencepiece.h).
 */
#include "text/sentencepiece.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/strbuf.h"
#include "text/unicode.h"

#define SPM_MAX_FILE_BYTES ((size_t)1 << 30)
#define SPM_MAX_PIECES (1 << 24)
#define SPM_UNK_PENALTY 10.0f

static const char k_space_symbol[] = "\xe2\x96\x81"; /* U+2581 */
static const char k_replacement[] = "\xef\xbf\xbd";  /* U+FFFD */
static const char k_default_unk_surface[] = " \xe2\x81\x87 ";

struct spm_model {
    char name[160];
    int n_pieces;
    char *piece_text;    /* all pieces, each NUL-terminated */
    size_t *piece_off;   /* offset of piece i in piece_text */
    uint32_t *piece_len; /* byte length of piece i */
    float *score;
    uint8_t *type;

    /* trainer spec */
    int model_type, byte_fallback, treat_ws_as_suffix, split_digits;
    int32_t unk_id_spec, bos_id, eos_id, pad_id;
    char *unk_surface; /* NUL-terminated */
    int32_t unk_id;    /* the UNKNOWN piece (what the encoder emits) */
    int32_t byte_id[256];

    /* normalizer spec */
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    uint32_t *charsmap_units; /* Darts-clone double array, NULL for identity */
    size_t charsmap_n_units;
    char *charsmap_pool; /* normalized strings, NUL-terminated each */
    size_t charsmap_pool_len;

    /* piece trie over NORMAL / USER_DEFINED / UNUSED pieces */
    int32_t *node_piece; /* piece id ending at node, -1 if none */
    size_t n_nodes;
    uint64_t *hash_key; /* (parent << 8 | byte) + 1, 0 = empty slot */
    uint32_t *hash_child;
    size_t hash_mask;
    int has_user_defined;

    float min_score, max_score; /* over NORMAL pieces, as sentencepiece */
};

/* ---------------------------------------------------------------- protobuf */

typedef struct {
    const uint8_t *p, *end;
} pb_reader;

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

static int pb_varint(pb_reader *r, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return 0;
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1) return 0;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

/* Reads a field key; 0 at a clean end of the message, -1 on malformed input. */
static int pb_key(pb_reader *r, uint32_t *field, int *wire) {
    if (r->p >= r->end) return 0;
    uint64_t k;
    if (!pb_varint(r, &k)) return -1;
    if ((k >> 3) == 0 || (k >> 3) > 0x1FFFFFFF) return -1;
    *field = (uint32_t)(k >> 3);
    *wire = (int)(k & 7);
    return 1;
}

static int pb_len(pb_reader *r, const uint8_t **data, size_t *len) {
    uint64_t n;
    if (!pb_varint(r, &n)) return 0;
    if (n > (uint64_t)(r->end - r->p)) return 0;
    *data = r->p;
    *len = (size_t)n;
    r->p += n;
    return 1;
}

static int pb_fixed32(pb_reader *r, uint32_t *v) {
    if (r->end - r->p < 4) return 0;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
         (uint32_t)r->p[3] << 24;
    r->p += 4;
    return 1;
}

static int pb_skip(pb_reader *r, int wire) {
    uint64_t v;
    const uint8_t *d;
    size_t n;
    switch (wire) {
    case PB_VARINT: return pb_varint(r, &v);
    case PB_I64:
        if (r->end - r->p < 8) return 0;
        r->p += 8;
        return 1;
    case PB_LEN: return pb_len(r, &d, &n);
    case PB_I32:
        if (r->end - r->p < 4) return 0;
        r->p += 4;
        return 1;
    default: return 0; /* groups (3, 4) and invalid wire types */
    }
}

/* ------------------------------------------------------------ model parse */

typedef struct {
    const uint8_t *piece;
    size_t piece_len;
    float score;
    int type;
} raw_piece;

typedef struct {
    raw_piece *pieces;
    size_t n, cap;
    const uint8_t *charsmap;
    size_t charsmap_len;
    const uint8_t *unk_surface;
    size_t unk_surface_len;
    int has_unk_surface;
    size_t denorm_charsmap_len;
} parse_state;

static ctts_status fmt_err(const spm_model *m, char *err, size_t err_len, const char *what) {
    return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: malformed tokenizer model: %s", m->name,
                    what);
}

static ctts_status parse_piece(spm_model *m, pb_reader r, raw_piece *p, char *err,
                               size_t err_len) {
    uint32_t f;
    int w, k;
    p->piece = NULL;
    p->piece_len = 0;
    p->score = 0.0f;
    p->type = SPM_NORMAL;
    while ((k = pb_key(&r, &f, &w)) == 1) {
        if (f == 1 && w == PB_LEN) {
            if (!pb_len(&r, &p->piece, &p->piece_len)) return fmt_err(m, err, err_len, "pieces[].piece truncated");
        } else if (f == 2 && w == PB_I32) {
            uint32_t bits;
            if (!pb_fixed32(&r, &bits)) return fmt_err(m, err, err_len, "pieces[].score truncated");
            memcpy(&p->score, &bits, 4);
        } else if (f == 3 && w == PB_VARINT) {
            uint64_t v;
            if (!pb_varint(&r, &v)) return fmt_err(m, err, err_len, "pieces[].type truncated");
            if (v < SPM_NORMAL || v > SPM_BYTE) return fmt_err(m, err, err_len, "pieces[].type out of range");
            p->type = (int)v;
        } else if (f <= 3) {
            return fmt_err(m, err, err_len, "pieces[] field with the wrong wire type");
        } else if (!pb_skip(&r, w)) {
            return fmt_err(m, err, err_len, "pieces[] unknown field truncated");
        }
    }
    if (k < 0) return fmt_err(m, err, err_len, "pieces[] bad field key");
    return CTTS_OK;
}

static ctts_status parse_trainer(spm_model *m, parse_state *ps, pb_reader r, char *err,
                                 size_t err_len) {
    uint32_t f;
    int w, k;
    while ((k = pb_key(&r, &f, &w)) == 1) {
        if (f == 44 && w == PB_LEN) {
            if (!pb_len(&r, &ps->unk_surface, &ps->unk_surface_len))
                return fmt_err(m, err, err_len, "trainer_spec.unk_surface truncated");
            ps->has_unk_surface = 1;
            continue;
        }
        int known = f == 3 || f == 24 || f == 25 || f == 35 || (f >= 40 && f <= 43);
        if (known && w == PB_VARINT) {
            uint64_t v;
            if (!pb_varint(&r, &v)) return fmt_err(m, err, err_len, "trainer_spec varint truncated");
            switch (f) {
            case 3: m->model_type = v > 0x7FFFFFFF ? -1 : (int)v; break;
            case 24: m->treat_ws_as_suffix = v != 0; break;
            case 25: m->split_digits = v != 0; break;
            case 35: m->byte_fallback = v != 0; break;
            case 40: m->unk_id_spec = (int32_t)(uint32_t)v; break;
            case 41: m->bos_id = (int32_t)(uint32_t)v; break;
            case 42: m->eos_id = (int32_t)(uint32_t)v; break;
            case 43: m->pad_id = (int32_t)(uint32_t)v; break;
            default: break;
            }
        } else if (known || f == 44) {
            return fmt_err(m, err, err_len, "trainer_spec field with the wrong wire type");
        } else if (!pb_skip(&r, w)) {
            return fmt_err(m, err, err_len, "trainer_spec field truncated");
        }
    }
    if (k < 0) return fmt_err(m, err, err_len, "trainer_spec bad field key");
    return CTTS_OK;
}

/* Parses a NormalizerSpec; for the denormalizer only the charsmap length is kept. */
static ctts_status parse_normalizer(spm_model *m, parse_state *ps, pb_reader r, int denorm,
                                    char *err, size_t err_len) {
    uint32_t f;
    int w, k;
    const char *what = denorm ? "denormalizer_spec" : "normalizer_spec";
    char msg[96];
    while ((k = pb_key(&r, &f, &w)) == 1) {
        if ((f == 1 || f == 2 || f == 6) && w == PB_LEN) {
            const uint8_t *d;
            size_t n;
            if (!pb_len(&r, &d, &n)) {
                snprintf(msg, sizeof msg, "%s string field truncated", what);
                return fmt_err(m, err, err_len, msg);
            }
            if (f == 2) {
                if (denorm) {
                    ps->denorm_charsmap_len = n;
                } else {
                    ps->charsmap = d;
                    ps->charsmap_len = n;
                }
            }
        } else if (f >= 3 && f <= 5 && w == PB_VARINT) {
            uint64_t v;
            if (!pb_varint(&r, &v)) {
                snprintf(msg, sizeof msg, "%s flag truncated", what);
                return fmt_err(m, err, err_len, msg);
            }
            if (!denorm) {
                if (f == 3) m->add_dummy_prefix = v != 0;
                if (f == 4) m->remove_extra_ws = v != 0;
                if (f == 5) m->escape_ws = v != 0;
            }
        } else if (f >= 1 && f <= 6) {
            snprintf(msg, sizeof msg, "%s field with the wrong wire type", what);
            return fmt_err(m, err, err_len, msg);
        } else if (!pb_skip(&r, w)) {
            snprintf(msg, sizeof msg, "%s field truncated", what);
            return fmt_err(m, err, err_len, msg);
        }
    }
    if (k < 0) {
        snprintf(msg, sizeof msg, "%s bad field key", what);
        return fmt_err(m, err, err_len, msg);
    }
    return CTTS_OK;
}

static ctts_status parse_model(spm_model *m, parse_state *ps, const uint8_t *data, size_t len,
                               char *err, size_t err_len) {
    pb_reader r = {data, data + len};
    uint32_t f;
    int w, k;
    ctts_status st;
    while ((k = pb_key(&r, &f, &w)) == 1) {
        if (f >= 1 && f <= 5 && w != PB_LEN)
            return fmt_err(m, err, err_len, "top-level field with the wrong wire type");
        if (f >= 1 && f <= 5) {
            const uint8_t *d;
            size_t n;
            if (!pb_len(&r, &d, &n)) return fmt_err(m, err, err_len, "top-level field truncated");
            pb_reader sub = {d, d + n};
            if (f == 1) {
                if (ps->n == ps->cap) {
                    if (ps->cap >= SPM_MAX_PIECES) return fmt_err(m, err, err_len, "too many pieces");
                    size_t nc = ps->cap ? ps->cap * 2 : 1024;
                    raw_piece *np = realloc(ps->pieces, nc * sizeof *np);
                    if (!np) return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", m->name);
                    ps->pieces = np;
                    ps->cap = nc;
                }
                st = parse_piece(m, sub, &ps->pieces[ps->n], err, err_len);
                if (st) return st;
                ps->n++;
            } else if (f == 2) {
                if ((st = parse_trainer(m, ps, sub, err, err_len))) return st;
            } else if (f == 3) {
                if ((st = parse_normalizer(m, ps, sub, 0, err, err_len))) return st;
            } else if (f == 5) {
                if ((st = parse_normalizer(m, ps, sub, 1, err, err_len))) return st;
            }
        } else if (!pb_skip(&r, w)) {
            return fmt_err(m, err, err_len, "unknown top-level field truncated");
        }
    }
    if (k < 0) return fmt_err(m, err, err_len, "bad top-level field key");
    return CTTS_OK;
}

/* ---------------------------------------------------------------- trie */

static size_t hash_slot(uint64_t key, size_t mask) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
}

static int64_t trie_child(const spm_model *m, size_t node, uint8_t byte) {
    uint64_t key = (((uint64_t)node << 8) | byte) + 1;
    for (size_t s = hash_slot(key, m->hash_mask);; s = (s + 1) & m->hash_mask) {
        if (m->hash_key[s] == key) return m->hash_child[s];
        if (m->hash_key[s] == 0) return -1;
    }
}

static ctts_status build_trie(spm_model *m, char *err, size_t err_len) {
    size_t total = 1;
    for (int i = 0; i < m->n_pieces; i++) total += m->piece_len[i];
    size_t cap = 16;
    while (cap < total * 2) cap <<= 1;
    m->node_piece = malloc(total * sizeof *m->node_piece);
    m->hash_key = calloc(cap, sizeof *m->hash_key);
    m->hash_child = malloc(cap * sizeof *m->hash_child);
    if (!m->node_piece || !m->hash_key || !m->hash_child)
        return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory for the piece trie", m->name);
    m->hash_mask = cap - 1;
    m->n_nodes = 1;
    m->node_piece[0] = -1;
    int any = 0;
    for (int i = 0; i < m->n_pieces; i++) {
        int t = m->type[i];
        if (t != SPM_NORMAL && t != SPM_USER_DEFINED && t != SPM_UNUSED) continue;
        const uint8_t *s = (const uint8_t *)m->piece_text + m->piece_off[i];
        size_t node = 0;
        for (uint32_t j = 0; j < m->piece_len[i]; j++) {
            int64_t c = trie_child(m, node, s[j]);
            if (c < 0) {
                uint64_t key = (((uint64_t)node << 8) | s[j]) + 1;
                size_t slot = hash_slot(key, m->hash_mask);
                while (m->hash_key[slot]) slot = (slot + 1) & m->hash_mask;
                m->hash_key[slot] = key;
                m->hash_child[slot] = (uint32_t)m->n_nodes;
                m->node_piece[m->n_nodes] = -1;
                c = (int64_t)m->n_nodes++;
            }
            node = (size_t)c;
        }
        if (m->node_piece[node] >= 0)
            return ctts_err(err, err_len, CTTS_E_FORMAT,
                            "%s: malformed tokenizer model: piece %d '%s' is already defined",
                            m->name, i, m->piece_text + m->piece_off[i]);
        m->node_piece[node] = i;
        any = 1;
        if (t == SPM_USER_DEFINED) m->has_user_defined = 1;
    }
    if (!any) return fmt_err(m, err, err_len, "no normal pieces (empty trie)");
    return CTTS_OK;
}

/* ---------------------------------------------------------------- load */

static int parse_byte_piece(const char *s, uint32_t len) {
    /* exactly "<0xXX>" with upper-case hex, as sentencepiece writes and reads it */
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static ctts_status finish_load(spm_model *m, parse_state *ps, char *err, size_t err_len) {
    if (m->model_type != 1) {
        static const char *names[] = {"", "UNIGRAM", "BPE", "WORD", "CHAR"};
        if (m->model_type >= 2 && m->model_type <= 4)
            return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                            "%s: tokenizer model_type %s is not supported (only UNIGRAM)",
                            m->name, names[m->model_type]);
        return fmt_err(m, err, err_len, "trainer_spec.model_type is not a known type");
    }
    if (ps->n == 0) return fmt_err(m, err, err_len, "no pieces");
    if (ps->denorm_charsmap_len)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "%s: tokenizer denormalizer_spec.precompiled_charsmap is not supported",
                        m->name);
    m->n_pieces = (int)ps->n;
    size_t text_bytes = 0;
    for (size_t i = 0; i < ps->n; i++) text_bytes += ps->pieces[i].piece_len + 1;
    m->piece_text = malloc(text_bytes);
    m->piece_off = malloc(ps->n * sizeof *m->piece_off);
    m->piece_len = malloc(ps->n * sizeof *m->piece_len);
    m->score = malloc(ps->n * sizeof *m->score);
    m->type = malloc(ps->n);
    if (!m->piece_text || !m->piece_off || !m->piece_len || !m->score || !m->type)
        return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", m->name);
    size_t off = 0;
    int byte_found[256] = {0};
    m->unk_id = -1;
    m->min_score = FLT_MAX;
    m->max_score = FLT_MIN; /* sentencepiece's starting value, kept for identical scores */
    for (size_t i = 0; i < ps->n; i++) {
        const raw_piece *p = &ps->pieces[i];
        char msg[96];
        if (p->piece_len == 0) {
            snprintf(msg, sizeof msg, "pieces[%zu] is empty", i);
            return fmt_err(m, err, err_len, msg);
        }
        if (p->piece_len > 0xFFFFFFu || memchr(p->piece, 0, p->piece_len)) {
            snprintf(msg, sizeof msg, "pieces[%zu] is too long or holds a NUL byte", i);
            return fmt_err(m, err, err_len, msg);
        }
        memcpy(m->piece_text + off, p->piece, p->piece_len);
        m->piece_text[off + p->piece_len] = 0;
        m->piece_off[i] = off;
        m->piece_len[i] = (uint32_t)p->piece_len;
        m->score[i] = p->score;
        m->type[i] = (uint8_t)p->type;
        off += p->piece_len + 1;
        if (p->type == SPM_NORMAL) {
            if (p->score < m->min_score) m->min_score = p->score;
            if (p->score > m->max_score) m->max_score = p->score;
        } else if (p->type == SPM_UNKNOWN) {
            if (m->unk_id >= 0) return fmt_err(m, err, err_len, "more than one UNKNOWN piece");
            m->unk_id = (int32_t)i;
        } else if (p->type == SPM_BYTE) {
            if (!m->byte_fallback) {
                snprintf(msg, sizeof msg, "byte piece pieces[%zu] although byte_fallback is false", i);
                return fmt_err(m, err, err_len, msg);
            }
            int b = parse_byte_piece(m->piece_text + m->piece_off[i], m->piece_len[i]);
            if (b < 0 || byte_found[b]) {
                snprintf(msg, sizeof msg, "byte piece pieces[%zu] is invalid or duplicated", i);
                return fmt_err(m, err, err_len, msg);
            }
            byte_found[b] = 1;
            m->byte_id[b] = (int32_t)i;
        }
    }
    if (m->unk_id < 0) return fmt_err(m, err, err_len, "no UNKNOWN piece");
    if (m->byte_fallback)
        for (int b = 0; b < 256; b++)
            if (!byte_found[b]) return fmt_err(m, err, err_len, "byte_fallback without all 256 byte pieces");

    const char *us = k_default_unk_surface;
    size_t us_len = sizeof k_default_unk_surface - 1;
    if (ps->has_unk_surface) {
        us = (const char *)ps->unk_surface;
        us_len = ps->unk_surface_len;
        /* sentencepiece uses it as a C string: stop at a NUL */
        const char *z = memchr(us, 0, us_len);
        if (z) us_len = (size_t)(z - us);
    }
    m->unk_surface = malloc(us_len + 1);
    if (!m->unk_surface) return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", m->name);
    memcpy(m->unk_surface, us, us_len);
    m->unk_surface[us_len] = 0;

    if (ps->charsmap_len) {
        /* <uint32 trie bytes><double array units><NUL-terminated strings> */
        const uint8_t *b = ps->charsmap;
        if (ps->charsmap_len <= 4) return fmt_err(m, err, err_len, "normalizer_spec.precompiled_charsmap too short");
        uint32_t trie_bytes = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                              (uint32_t)b[3] << 24;
        if (trie_bytes > ps->charsmap_len - 4)
            return fmt_err(m, err, err_len, "normalizer_spec.precompiled_charsmap trie size exceeds the blob");
        m->charsmap_n_units = trie_bytes / 4;
        m->charsmap_units = malloc((m->charsmap_n_units ? m->charsmap_n_units : 1) * 4);
        m->charsmap_pool_len = ps->charsmap_len - 4 - trie_bytes;
        m->charsmap_pool = malloc(m->charsmap_pool_len + 1);
        if (!m->charsmap_units || !m->charsmap_pool)
            return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", m->name);
        for (size_t i = 0; i < m->charsmap_n_units; i++) {
            const uint8_t *u = b + 4 + 4 * i;
            m->charsmap_units[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 |
                                   (uint32_t)u[3] << 24;
        }
        memcpy(m->charsmap_pool, b + 4 + trie_bytes, m->charsmap_pool_len);
        m->charsmap_pool[m->charsmap_pool_len] = 0; /* guard; pool entries are checked anyway */
    }
    return build_trie(m, err, err_len);
}

ctts_status spm_load_memory(const void *data, size_t len, const char *name, spm_model **out,
                            char *err, size_t err_len) {
    if (!out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "spm_load_memory: out is NULL");
    *out = NULL;
    if (!data && len) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "spm_load_memory: data is NULL");
    spm_model *m = calloc(1, sizeof *m);
    if (!m) return ctts_err(err, err_len, CTTS_E_OOM, "tokenizer: out of memory");
    snprintf(m->name, sizeof m->name, "%s", name ? name : "tokenizer.model");
    /* proto defaults */
    m->model_type = 1;
    m->unk_id_spec = 0;
    m->bos_id = 1;
    m->eos_id = 2;
    m->pad_id = -1;
    m->add_dummy_prefix = 1;
    m->remove_extra_ws = 1;
    m->escape_ws = 1;
    for (int b = 0; b < 256; b++) m->byte_id[b] = -1;

    parse_state ps;
    memset(&ps, 0, sizeof ps);
    ctts_status st;
    if (len == 0) st = fmt_err(m, err, err_len, "empty file");
    else st = parse_model(m, &ps, data, len, err, err_len);
    if (st == CTTS_OK) st = finish_load(m, &ps, err, err_len);
    free(ps.pieces);
    if (st) {
        spm_free(m);
        return st;
    }
    *out = m;
    return CTTS_OK;
}

ctts_status spm_load(const char *path, spm_model **out, char *err, size_t err_len) {
    if (!out || !path) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "spm_load: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return ctts_err(err, err_len, CTTS_E_IO, "%s: cannot open tokenizer model", path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    ctts_status st = CTTS_OK;
    for (;;) {
        if (len == cap) {
            if (cap >= SPM_MAX_FILE_BYTES) {
                st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: tokenizer model larger than 1 GiB", path);
                break;
            }
            size_t nc = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, nc);
            if (!nb) {
                st = ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) st = ctts_err(err, err_len, CTTS_E_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (st == CTTS_OK) st = spm_load_memory(buf, len, path, out, err, err_len);
    free(buf);
    return st;
}

void spm_free(spm_model *m) {
    if (!m) return;
    free(m->piece_text);
    free(m->piece_off);
    free(m->piece_len);
    free(m->score);
    free(m->type);
    free(m->unk_surface);
    free(m->charsmap_units);
    free(m->charsmap_pool);
    free(m->node_piece);
    free(m->hash_key);
    free(m->hash_child);
    free(m);
}

int spm_vocab_size(const spm_model *m) { return m ? m->n_pieces : 0; }

const char *spm_piece(const spm_model *m, int32_t id) {
    if (!m || id < 0 || id >= m->n_pieces) return NULL;
    return m->piece_text + m->piece_off[id];
}

int spm_piece_type(const spm_model *m, int32_t id) {
    if (!m || id < 0 || id >= m->n_pieces) return 0;
    return m->type[id];
}

int32_t spm_unk_id(const spm_model *m) { return m->unk_id_spec; }
int32_t spm_bos_id(const spm_model *m) { return m->bos_id; }
int32_t spm_eos_id(const spm_model *m) { return m->eos_id; }
int32_t spm_pad_id(const spm_model *m) { return m->pad_id; }

/* ---------------------------------------------------------------- buffers */

static int sb_ends_with(const ctts_strbuf *b, const char *s, size_t n) {
    return b->len >= n && memcmp(b->p + b->len - n, s, n) == 0;
}

/* ---------------------------------------------------------------- normalizer */

/* One normalization step at the start of in[0..len): the replacement text
 * (out, out_len) and the bytes consumed. Returns 0, or -1 if the charsmap
 * points outside its string pool. */
static int normalize_prefix(const spm_model *m, const char *in, size_t len, const char **out,
                            size_t *out_len, size_t *consumed) {
    /* user-defined symbols pass through unnormalized (longest match wins) */
    if (m->has_user_defined) {
        size_t node = 0, best = 0;
        for (size_t i = 0; i < len; i++) {
            int64_t c = trie_child(m, node, (uint8_t)in[i]);
            if (c < 0) break;
            node = (size_t)c;
            int32_t id = m->node_piece[node];
            if (id >= 0 && m->type[id] == SPM_USER_DEFINED) best = i + 1;
        }
        if (best) {
            *out = in;
            *out_len = *consumed = best;
            return 0;
        }
    }
    size_t longest = 0;
    uint32_t value = 0;
    if (m->charsmap_units && m->charsmap_n_units) {
        /* Darts-clone common prefix search with every unit index checked */
        const uint32_t *u = m->charsmap_units;
        size_t n = m->charsmap_n_units;
        uint32_t unit = u[0];
        size_t pos = (unit >> 10) << ((unit & (1u << 9)) >> 6);
        for (size_t i = 0; i < len; i++) {
            uint8_t c = (uint8_t)in[i];
            pos ^= c;
            if (pos >= n) break;
            unit = u[pos];
            if ((unit & ((1u << 31) | 0xFFu)) != c) break;
            pos ^= (unit >> 10) << ((unit & (1u << 9)) >> 6);
            if ((unit >> 8) & 1) {
                if (pos >= n) break;
                longest = i + 1;
                value = u[pos] & 0x7FFFFFFFu;
            }
        }
    }
    if (longest) {
        if (value >= m->charsmap_pool_len) return -1;
        const char *s = m->charsmap_pool + value;
        const char *z = memchr(s, 0, m->charsmap_pool_len - value);
        if (!z) return -1;
        *out = s;
        *out_len = (size_t)(z - s);
        *consumed = longest;
        return 0;
    }
    uint32_t cp;
    int n = uni_utf8_decode(in, len, &cp);
    if (n == 0) {
        *out = k_replacement;
        *out_len = 3;
        *consumed = 1;
    } else {
        *out = in;
        *out_len = *consumed = (size_t)n;
    }
    return 0;
}

static ctts_status normalize(const spm_model *m, const char *in, size_t len, ctts_strbuf *out,
                             char *err, size_t err_len) {
    const char *s;
    size_t slen, used;
    const char *space = m->escape_ws ? k_space_symbol : " ";
    size_t space_len = m->escape_ws ? 3 : 1;
#define NP_OR_FAIL()                                                                        \
    do {                                                                                    \
        if (normalize_prefix(m, in, len, &s, &slen, &used) < 0)                             \
            return ctts_err(err, err_len, CTTS_E_FORMAT,                                    \
                            "%s: precompiled_charsmap entry outside its string pool", m->name); \
    } while (0)
    if (len == 0) return CTTS_OK;
    if (m->remove_extra_ws) {
        while (len) {
            NP_OR_FAIL();
            if (!(slen == 1 && s[0] == ' ')) break;
            in += used;
            len -= used;
        }
    }
    if (len == 0) return CTTS_OK;
    if (!m->treat_ws_as_suffix && m->add_dummy_prefix) ctts_strbuf_put(out, space, space_len);
    int prev_space = m->remove_extra_ws;
    while (len) {
        NP_OR_FAIL();
        while (prev_space && slen && s[0] == ' ') s++, slen--;
        if (slen) {
            for (size_t i = 0; i < slen; i++) {
                if (m->escape_ws && s[i] == ' ') ctts_strbuf_put(out, k_space_symbol, 3);
                else ctts_strbuf_put(out, s + i, 1);
            }
            prev_space = s[slen - 1] == ' ';
        }
        in += used;
        len -= used;
        if (!m->remove_extra_ws) prev_space = 0;
    }
#undef NP_OR_FAIL
    if (m->remove_extra_ws)
        while (sb_ends_with(out, space, space_len)) out->len -= space_len;
    if (m->treat_ws_as_suffix && m->add_dummy_prefix) ctts_strbuf_put(out, space, space_len);
    if (out->oom) return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory while normalizing", m->name);
    return CTTS_OK;
}

/* ---------------------------------------------------------------- encoder */

static int utf8_char_len(uint8_t b) { return "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[b >> 4]; }

/* spm_encode with the Viterbi starting at score0; *score_end (may be NULL)
 * gets the best path's score at the end of the text. */
static ctts_status encode_impl(const spm_model *m, const char *text, size_t len, float score0,
                               float *score_end, int32_t **ids, size_t *n, char *err,
                               size_t err_len) {
    if (!m || !ids || !n || (!text && len))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "spm_encode: NULL argument");
    *ids = NULL;
    *n = 0;
    ctts_strbuf norm = {0};
    ctts_status st = normalize(m, text, len, &norm, err, err_len);
    if (st || norm.len == 0) {
        free(norm.p);
        return st;
    }
    const uint8_t *s = (const uint8_t *)norm.p;
    size_t size = norm.len;
    /* best path ending at each byte position (sentencepiece's EncodeOptimized) */
    float *best_score = malloc((size + 1) * sizeof *best_score);
    size_t *starts = malloc((size + 1) * sizeof *starts);
    int32_t *best_id = malloc((size + 1) * sizeof *best_id);
    int32_t *out = NULL;
    if (!best_score || !starts || !best_id) goto oom;
    for (size_t i = 0; i <= size; i++) {
        best_score[i] = 0.0f;
        starts[i] = SIZE_MAX;
        best_id[i] = -1;
    }
    best_score[0] = score0;
    const float unk_score = m->min_score - SPM_UNK_PENALTY;
    for (size_t start = 0; start < size;) {
        const float till_here = best_score[start];
        size_t mblen = (size_t)utf8_char_len(s[start]);
        if (mblen > size - start) mblen = size - start;
        int has_single = 0;
        size_t node = 0;
        for (size_t pos = start; pos < size;) {
            int64_t c = trie_child(m, node, s[pos]);
            if (c < 0) break;
            node = (size_t)c;
            pos++;
            int32_t id = m->node_piece[node];
            if (id < 0 || m->type[id] == SPM_UNUSED) continue;
            size_t length = pos - start;
            /* sentencepiece computes this sum in double (the user-defined bonus
             * is a double expression) and stores it as float; so do we */
            double score = m->type[id] == SPM_USER_DEFINED
                               ? (double)((float)length * m->max_score) - 0.1
                               : (double)m->score[id];
            double cand = score + (double)till_here;
            if (starts[pos] == SIZE_MAX || cand > (double)best_score[pos]) {
                best_score[pos] = (float)cand;
                starts[pos] = start;
                best_id[pos] = id;
            }
            if (length == mblen) has_single = 1;
        }
        if (!has_single) {
            size_t e = start + mblen;
            float cand = unk_score + till_here; /* float sum, as sentencepiece */
            if (starts[e] == SIZE_MAX || cand > best_score[e]) {
                best_score[e] = cand;
                starts[e] = start;
                best_id[e] = m->unk_id;
            }
        }
        start += mblen;
    }
    /* backtrack: count pieces, then emit ids with byte fallback / unk merging */
    size_t n_pieces = 0;
    for (size_t e = size; e > 0; e = starts[e]) n_pieces++;
    size_t *piece_end = malloc(n_pieces * sizeof *piece_end);
    if (!piece_end) goto oom;
    {
        size_t k = n_pieces;
        for (size_t e = size; e > 0; e = starts[e]) piece_end[--k] = e;
    }
    size_t cap_ids = 0;
    for (size_t k = 0; k < n_pieces; k++) {
        size_t e = piece_end[k];
        cap_ids += (best_id[e] == m->unk_id && m->byte_fallback) ? e - starts[e] : 1;
    }
    out = malloc((cap_ids ? cap_ids : 1) * sizeof *out);
    if (!out) {
        free(piece_end);
        goto oom;
    }
    size_t count = 0;
    int prev_unk = 0;
    for (size_t k = 0; k < n_pieces; k++) {
        size_t e = piece_end[k], b = starts[e];
        int32_t id = best_id[e];
        int is_unk = m->type[id] == SPM_UNKNOWN;
        if (is_unk && m->byte_fallback) {
            for (size_t i = b; i < e; i++) out[count++] = m->byte_id[s[i]];
        } else if (!(is_unk && prev_unk)) {
            out[count++] = id;
        }
        prev_unk = is_unk;
    }
    free(piece_end);
    if (score_end) *score_end = best_score[size];
    free(best_score);
    free(starts);
    free(best_id);
    free(norm.p);
    *ids = out;
    *n = count;
    return CTTS_OK;
oom:
    free(best_score);
    free(starts);
    free(best_id);
    free(norm.p);
    return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory while encoding", m->name);
}

ctts_status spm_encode(const spm_model *m, const char *text, size_t len, int32_t **ids,
                       size_t *n, char *err, size_t err_len) {
    return encode_impl(m, text, len, 0.0f, NULL, ids, n, err, err_len);
}

ctts_status spm_encode_from(const spm_model *m, const char *text, size_t len, float *score,
                            int32_t **ids, size_t *n, char *err, size_t err_len) {
    if (!score) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "spm_encode_from: NULL score");
    return encode_impl(m, text, len, *score, score, ids, n, err, err_len);
}

/* ---------------------------------------------------------------- decoder */

/* Appends pending byte pieces as UTF-8; each invalid byte becomes U+FFFD. */
static void flush_bytes(ctts_strbuf *out, const uint8_t *bytes, size_t n) {
    size_t off = 0;
    while (off < n) {
        uint32_t cp;
        int k = uni_utf8_decode((const char *)bytes + off, n - off, &cp);
        if (k == 0) {
            ctts_strbuf_put(out, k_replacement, 3);
            off++;
        } else {
            ctts_strbuf_put(out, bytes + off, (size_t)k);
            off += (size_t)k;
        }
    }
}

ctts_status spm_decode(const spm_model *m, const int32_t *ids, size_t n, char **out, char *err,
                       size_t err_len) {
    return spm_decode_len(m, ids, n, out, NULL, err, err_len);
}

ctts_status spm_decode_len(const spm_model *m, const int32_t *ids, size_t n, char **out_text,
                           size_t *out_len, char *err, size_t err_len) {
    if (!m || !out_text || (!ids && n))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "spm_decode: NULL argument");
    *out_text = NULL;
    if (out_len) *out_len = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->n_pieces)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "%s: invalid token id %d at index %zu",
                            m->name, (int)ids[i], i);
    ctts_strbuf out = {0};
    uint8_t *pending = malloc(n ? n : 1);
    if (!pending) return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", m->name);
    size_t n_pending = 0;
    int is_bos_ws = 1, bos_ws_seen = 0;
    ctts_strbuf_put(&out, "", 0);
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        int t = m->type[id];
        if (t == SPM_BYTE) {
            pending[n_pending++] =
                (uint8_t)parse_byte_piece(m->piece_text + m->piece_off[id], m->piece_len[id]);
            continue;
        }
        flush_bytes(&out, pending, n_pending);
        n_pending = 0;
        if (bos_ws_seen || out.len > 0) is_bos_ws = 0;
        if (t == SPM_CONTROL) {
            bos_ws_seen = 0;
            continue;
        }
        if (t == SPM_UNKNOWN) {
            ctts_strbuf_put(&out, m->unk_surface, strlen(m->unk_surface));
            bos_ws_seen = 0;
            continue;
        }
        const char *p = m->piece_text + m->piece_off[id];
        size_t plen = m->piece_len[id];
        int has_bos_ws = 0;
        if (is_bos_ws && (m->add_dummy_prefix || m->remove_extra_ws)) {
            if (plen >= 3 && memcmp(p, k_space_symbol, 3) == 0) {
                p += 3;
                plen -= 3;
                has_bos_ws = 1;
            }
            /* when whitespace is collapsed every leading space goes */
            if (m->remove_extra_ws) has_bos_ws = 0;
        }
        for (size_t j = 0; j < plen;) {
            if (plen - j >= 3 && memcmp(p + j, k_space_symbol, 3) == 0) {
                ctts_strbuf_put(&out, " ", 1);
                j += 3;
            } else {
                ctts_strbuf_put(&out, p + j, 1);
                j++;
            }
        }
        bos_ws_seen = has_bos_ws;
    }
    flush_bytes(&out, pending, n_pending);
    free(pending);
    if (out.oom) {
        free(out.p);
        return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory while decoding", m->name);
    }
    *out_text = out.p;
    if (out_len) *out_len = out.len;
    return CTTS_OK;
}
