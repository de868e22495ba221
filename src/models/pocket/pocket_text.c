/*
 * Pocket TTS text preparation and sentence chunking, following the official
 * tts_model.py (prepare_text_prompt, _find_boundary_indices,
 * _segments_from_boundaries, split_into_best_sentences) step by step so the
 * chunk strings match byte for byte. Python string semantics (str.strip,
 * str.split, str.isupper, str.upper, str.isalnum) come from text/unicode.h.
 *
 * Everything is linear in the text length: one encode of the whole text,
 * one decode per segment, one re-encode per oversized segment.
 * It does not tokenize the chunks for the model (callers call spm_encode).
 */
#include "models/pocket/pocket_text.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/strbuf.h"
#include "text/unicode.h"


/* Python str.isspace on the code point at s (invalid bytes are not space). */
static int space_at(const char *s, size_t len, size_t *n) {
    uint32_t cp;
    int k = uni_utf8_decode(s, len, &cp);
    if (k == 0) {
        *n = 1;
        return 0;
    }
    *n = (size_t)k;
    return uni_is_space(cp);
}

/* Python str.strip(): [*b, *e) is the stripped range of s[0..len). */
static void py_strip(const char *s, size_t len, size_t *b, size_t *e) {
    size_t i = 0, n;
    while (i < len && space_at(s + i, len - i, &n)) i += n;
    size_t j = len;
    while (j > i) {
        size_t k = j - 1; /* back up to the lead byte of the last character */
        while (k > i && j - k < 4 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
        if (!space_at(s + k, j - k, &n) || k + n != j) break;
        j = k;
    }
    *b = i;
    *e = j;
}

/* len(str.split()) */
static size_t py_word_count(const char *s, size_t len) {
    size_t words = 0, i = 0, n;
    int in_word = 0;
    while (i < len) {
        int sp = space_at(s + i, len - i, &n);
        if (!sp && !in_word) words++;
        in_word = !sp;
        i += n;
    }
    return words;
}

/* open = 1: the text is the start of a longer one (incremental chunking), so
 * the steps that depend on its end are left out: no final '.', no padding. */
static ctts_status prepare(const char *text, size_t text_len, const pocket_text_options *o,
                           int open, ctts_strbuf *out, int *guess, char *err, size_t err_len) {
    if (!uni_utf8_valid(text, text_len))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text prompt is not valid UTF-8");
    size_t b, e;
    py_strip(text, text_len, &b, &e);
    if (b == e) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text prompt is empty");
    /* newlines -> spaces, then ONE non-overlapping pass of "  " -> " " */
    ctts_strbuf t = {0};
    for (size_t i = b; i < e; i++) {
        char c = text[i];
        if (c == '\n' || c == '\r') c = ' ';
        if (o && o->remove_semicolons && c == ';') c = ','; /* commutes with the "  " pass */
        ctts_strbuf_put(&t, &c, 1);
    }
    if (t.oom) goto oom;
    {
        size_t w = 0;
        for (size_t r = 0; r < t.len;) {
            if (r + 1 < t.len && t.p[r] == ' ' && t.p[r + 1] == ' ') {
                t.p[w++] = ' ';
                r += 2;
            } else {
                t.p[w++] = t.p[r++];
            }
        }
        t.len = w;
        t.p[w] = 0;
    }
    if (guess) *guess = py_word_count(t.p, t.len) <= 4 ? 3 : 1;

    /* first character upper-cased unless already upper (str.upper may give 2-3 chars) */
    uint32_t first;
    int fl = uni_utf8_decode(t.p, t.len, &first);
    if (fl == 0) goto bad_utf8;
    ctts_strbuf u = {0};
    if (!uni_is_upper(first)) {
        uint32_t up[3];
        int nu = uni_to_upper(first, up);
        for (int k = 0; k < nu; k++) {
            char enc[4];
            int el = uni_utf8_encode(up[k], enc);
            ctts_strbuf_put(&u, enc, (size_t)el);
        }
    } else {
        ctts_strbuf_put(&u, t.p, (size_t)fl);
    }
    ctts_strbuf_put(&u, t.p + fl, t.len - (size_t)fl);
    free(t.p);
    t = u;
    if (t.oom) goto oom;

    /* '.' after a final letter or digit (Unicode isalnum) */
    if (!open) {
        size_t k = t.len - 1;
        while (k > 0 && t.len - k < 4 && ((unsigned char)t.p[k] & 0xC0) == 0x80) k--;
        uint32_t last;
        if (uni_utf8_decode(t.p + k, t.len - k, &last) == 0) goto bad_utf8;
        if (uni_is_alnum(last)) ctts_strbuf_put(&t, ".", 1);
    }
    if (!open && o && o->pad_with_spaces_for_short_inputs && py_word_count(t.p, t.len) < 5) {
        ctts_strbuf pd = {0};
        ctts_strbuf_put(&pd, "        ", 8);
        ctts_strbuf_put(&pd, t.p, t.len);
        free(t.p);
        t = pd;
    }
    if (t.oom) goto oom;
    *out = t;
    return CTTS_OK;
oom:
    free(t.p);
    return ctts_err(err, err_len, CTTS_E_OOM, "out of memory preparing the text prompt");
bad_utf8:
    free(t.p);
    return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text prompt is not valid UTF-8");
}

ctts_status pocket_prepare_text(const char *text, const pocket_text_options *o, char **out,
                                int *frames_after_eos_guess, char *err, size_t err_len) {
    if (!text || !out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "pocket_prepare_text: NULL argument");
    *out = NULL;
    ctts_strbuf t = {0};
    ctts_status st = prepare(text, strlen(text), o, 0, &t, frames_after_eos_guess, err, err_len);
    if (st) return st;
    *out = t.p;
    return CTTS_OK;
}

/* ---------------------------------------------------------------- chunking */

typedef struct {
    size_t n_tokens;
    char *text;
} segment;

typedef struct {
    segment *v;
    size_t n, cap;
} segment_list;

static int seg_push(segment_list *l, size_t n_tokens, char *text) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        segment *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) return 0;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n].n_tokens = n_tokens;
    l->v[l->n].text = text;
    l->n++;
    return 1;
}

static void seg_free(segment_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i].text);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int is_boundary(int32_t id, const int32_t *set, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (set[i] == id) return 1;
    return 0;
}

/* _find_boundary_indices + _segments_from_boundaries: a new segment starts at
 * the first non-boundary token after boundary tokens; each segment's text is
 * the decode of its ids. Appends to out. */
static ctts_status segments_from_tokens(const spm_model *sp, const int32_t *ids, size_t n,
                                        const int32_t *set, size_t n_set, segment_list *out,
                                        char *err, size_t err_len) {
    size_t start = 0;
    int prev_boundary = 0;
    for (size_t i = 0; i <= n; i++) {
        int cut;
        if (i == n) {
            cut = 1;
        } else if (is_boundary(ids[i], set, n_set)) {
            prev_boundary = 1;
            continue;
        } else {
            cut = prev_boundary;
            prev_boundary = 0;
        }
        if (!cut) continue;
        /* Python emits [0, ..., len]: even an empty first or last segment */
        char *text = NULL;
        ctts_status st = spm_decode(sp, ids + start, i - start, &text, err, err_len);
        if (st) return st;
        if (!seg_push(out, i - start, text)) {
            free(text);
            return ctts_err(err, err_len, CTTS_E_OOM, "out of memory splitting text");
        }
        start = i;
    }
    return CTTS_OK;
}

/* spm_encode(s) without its first id (the reference assumes it is the lone
 * dummy-prefix piece). */
static ctts_status tail_ids(const spm_model *sp, const char *s, int32_t **ids, size_t *n,
                            char *err, size_t err_len) {
    ctts_status st = spm_encode(sp, s, strlen(s), ids, n, err, err_len);
    if (st) return st;
    if (*n > 0) {
        memmove(*ids, *ids + 1, (*n - 1) * sizeof **ids);
        (*n)--;
    }
    return CTTS_OK;
}

static ctts_status encode_stripped(const spm_model *sp, const char *s, size_t len, int32_t **ids,
                                   size_t *n, char *err, size_t err_len) {
    size_t b, e;
    py_strip(s, len, &b, &e);
    return spm_encode(sp, s + b, e - b, ids, n, err, err_len);
}

void pocket_free_chunks(char **chunks, int n) {
    if (!chunks) return;
    for (int i = 0; i < n; i++) free(chunks[i]);
    free(chunks);
}

static int push_chunk(char ***chunks, int *n, int *cap, const char *s, size_t len) {
    if (*n == *cap) {
        if (*cap > INT32_MAX / 4) return 0;
        int nc = *cap ? *cap * 2 : 8;
        char **nv = realloc(*chunks, (size_t)nc * sizeof *nv);
        if (!nv) return 0;
        *chunks = nv;
        *cap = nc;
    }
    size_t b, e;
    py_strip(s, len, &b, &e);
    char *c = malloc(e - b + 1);
    if (!c) return 0;
    memcpy(c, s + b, e - b);
    c[e - b] = 0;
    (*chunks)[(*n)++] = c;
    return 1;
}

/* Incremental chunking needs the tokens of a text prefix to be the start of
 * the tokens of every longer text when the prefix ends where a space follows.
 * SentencePiece's Viterbi can only move a boundary across a space if a piece
 * holds U+2581 after its first byte; and a lone U+2581 piece keeps a new word
 * from merging with an unknown character before it. */
int pocket_text_can_stream(const spm_model *sp) {
    static const char ws[] = "\xe2\x96\x81";
    int bare = 0;
    for (int32_t i = 0; i < spm_vocab_size(sp); i++) {
        int type = spm_piece_type(sp, i);
        if (type != SPM_NORMAL && type != SPM_USER_DEFINED && type != SPM_UNUSED) continue;
        const char *p = spm_piece(sp, i);
        if (p[0] && strstr(p + 1, ws)) return 0;
        if (!strcmp(p, ws)) bare = 1;
    }
    return bare;
}

/* Whether any boundary piece starts with U+2581 (it could then start a word). */
static int set_has_word_start(const spm_model *sp, const int32_t *set, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strncmp(spm_piece(sp, set[i]), "\xe2\x96\x81", 3)) return 1;
    return 0;
}

/* End of the longest prefix of text that is followed by a space and ends in a
 * non-space: every word in it is complete whatever text comes after. 0 if none. */
static size_t open_cut(const char *text, size_t len) {
    for (size_t p = len; p-- > 1;) {
        if (text[p] != ' ' && text[p] != '\n' && text[p] != '\r') continue;
        size_t k = p - 1; /* lead byte of the character before the space */
        while (k > 0 && p - k < 4 && ((unsigned char)text[k] & 0xC0) == 0x80) k--;
        size_t n;
        if (!space_at(text + k, p - k, &n) && k + n == p) return p;
    }
    return 0;
}

/* ---- packing, shared by the one-shot split, the open split and the chunker ---- */

/* Greedy packing state: the chunk being filled and the chunks closed. */
typedef struct {
    ctts_strbuf cur;
    size_t cur_tokens;
    char **out;
    int n_out, cap_out;
    int oom;
} packer;

static void pack_free(packer *pk) {
    free(pk->cur.p);
    pocket_free_chunks(pk->out, pk->n_out);
    memset(pk, 0, sizeof *pk);
}

/* "current_chunk == ''" is a string test in the reference. */
static void pack(packer *pk, const segment *sg, int max_tokens) {
    size_t slen = strlen(sg->text);
    if (pk->cur.len == 0) {
        ctts_strbuf_put(&pk->cur, sg->text, slen);
        pk->cur_tokens = sg->n_tokens;
    } else if (pk->cur_tokens + sg->n_tokens > (size_t)max_tokens) {
        if (!push_chunk(&pk->out, &pk->n_out, &pk->cap_out, pk->cur.p, pk->cur.len)) pk->oom = 1;
        pk->cur.len = 0;
        ctts_strbuf_put(&pk->cur, sg->text, slen);
        pk->cur_tokens = sg->n_tokens;
    } else {
        ctts_strbuf_put(&pk->cur, " ", 1);
        ctts_strbuf_put(&pk->cur, sg->text, slen);
        pk->cur_tokens += sg->n_tokens;
    }
    if (pk->cur.oom) pk->oom = 1;
}

static void pack_close(packer *pk) {
    if (pk->cur.len && !push_chunk(&pk->out, &pk->n_out, &pk->cap_out, pk->cur.p, pk->cur.len))
        pk->oom = 1;
    pk->cur.len = 0;
}

/* Sentence s into refined segments (re-split on ",;:" tokens when over
 * max_tokens), appended to r. last_open: s is the growing last sentence of an
 * open text; then *n_final gets how many of the appended segments are final
 * and *tail_min a lower bound on the tokens of the first one that is not
 * (see split_impl). s->text moves into r. */
static ctts_status refine(const spm_model *sp, segment *s, const int32_t *fb, size_t n_fb,
                          int max_tokens, int last_open, segment_list *r, size_t *n_final,
                          size_t *tail_min, char *err, size_t err_len) {
    size_t n0 = r->n;
    if (last_open) *tail_min = s->n_tokens;
    if (s->n_tokens > (size_t)max_tokens || last_open) {
        int32_t *sub = NULL;
        size_t n_sub = 0;
        segment_list parts = {0};
        ctts_status st = encode_stripped(sp, s->text, strlen(s->text), &sub, &n_sub, err, err_len);
        if (!st) st = segments_from_tokens(sp, sub, n_sub, fb, n_fb, &parts, err, err_len);
        free(sub);
        if (st) {
            seg_free(&parts);
            return st;
        }
        if (last_open) {
            /* if (or when) it is re-split, its first part is at least this */
            size_t first = parts.n > 1 ? parts.v[0].n_tokens : n_sub;
            if (first < *tail_min) *tail_min = first;
        }
        if (parts.n > 1 && s->n_tokens > (size_t)max_tokens) {
            if (last_open) *tail_min = parts.v[parts.n - 1].n_tokens;
            for (size_t k = 0; k < parts.n; k++) {
                if (!seg_push(r, parts.v[k].n_tokens, parts.v[k].text)) {
                    for (size_t j = k; j < parts.n; j++) free(parts.v[j].text);
                    free(parts.v);
                    return ctts_err(err, err_len, CTTS_E_OOM, "out of memory splitting text");
                }
            }
            free(parts.v);
            if (n_final) *n_final = last_open ? r->n - n0 - 1 : r->n - n0;
            return CTTS_OK;
        }
        seg_free(&parts);
    }
    if (!seg_push(r, s->n_tokens, s->text))
        return ctts_err(err, err_len, CTTS_E_OOM, "out of memory splitting text");
    s->text = NULL;
    if (n_final) *n_final = last_open ? 0 : 1;
    return CTTS_OK;
}

/* The boundary sets, checked for incremental use (open): -1 if a boundary
 * piece could start a word (no incremental chunking then), 0 on success. */
static ctts_status boundary_sets(const spm_model *sp, int32_t **eos, size_t *n_eos, int32_t **fb,
                                 size_t *n_fb, char *err, size_t err_len) {
    ctts_status st = tail_ids(sp, ".!...?", eos, n_eos, err, err_len);
    if (!st) st = tail_ids(sp, ",;:", fb, n_fb, err, err_len);
    return st;
}

/* Moves src's closed chunks to the end of dst's. */
static int move_chunks(packer *dst, packer *src) {
    for (int i = 0; i < src->n_out; i++) {
        if (dst->n_out == dst->cap_out) {
            int nc = dst->cap_out ? dst->cap_out * 2 : 8;
            char **nv = realloc(dst->out, (size_t)nc * sizeof *nv);
            if (!nv) return 0;
            dst->out = nv;
            dst->cap_out = nc;
        }
        dst->out[dst->n_out++] = src->out[i];
        src->out[i] = NULL;
    }
    src->n_out = 0;
    return 1;
}

/*
 * The open end of a text: sentences[0..n) are the sentences from some
 * sentence start on, the last one still growing. The others are packed into
 * pk for good; the growing one goes into extra, which starts as a copy of
 * pk's open chunk: the final chunks are then pk's closed chunks followed by
 * extra's. Sets *headroom (may be NULL).
 *
 * Why the result holds for every continuation of the text:
 *  - the text is cut after its last complete word (open_cut); prepare keeps
 *    everything before the cut as it will be (its end-dependent steps are
 *    skipped), and the tokens of the cut text are the first tokens of the
 *    final text (pocket_text_can_stream, checked by the caller);
 *  - a sentence is over once a non-boundary token follows its boundary
 *    tokens inside the cut text; only the last sentence may still grow. If it
 *    is already over max_tokens it will be re-split on ",;:" in any case, and
 *    its parts but the last are over too;
 *  - greedy packing closes a chunk when the next segment does not fit, so a
 *    chunk is final when the segment that closed it is final, or when the
 *    first segment that may still change cannot fit whatever comes: that
 *    segment is at least as long as now if it is the last part of a re-split
 *    sentence; otherwise (the growing sentence) at least the shorter of the
 *    sentence so far and its first ",;:" part, which is where a later
 *    re-split would cut it.
 * headroom: how many tokens the growing sentence may gain before the result
 * can change without new punctuation (before it passes max_tokens, or its
 * lower bound closes the open chunk); INT_MAX for no limit.
 */
static ctts_status open_tail(const spm_model *sp, segment_list *sentences, const int32_t *fb,
                             size_t n_fb, int max_tokens, packer *pk, packer *extra,
                             int *headroom, char *err, size_t err_len) {
    segment_list r = {0};
    ctts_status st = CTTS_OK;
    size_t n_final = 0, tail_min = 0, last = sentences->n - 1;
    for (size_t i = 0; i < last && !st; i++) {
        size_t r0 = r.n;
        st = refine(sp, &sentences->v[i], fb, n_fb, max_tokens, 0, &r, NULL, NULL, err, err_len);
        for (size_t k = r0; k < r.n && !st; k++) pack(pk, &r.v[k], max_tokens);
    }
    ctts_strbuf_put(&extra->cur, pk->cur.p ? pk->cur.p : "", pk->cur.len);
    extra->cur_tokens = pk->cur_tokens;
    size_t r0 = r.n;
    if (!st)
        st = refine(sp, &sentences->v[last], fb, n_fb, max_tokens, 1, &r, &n_final, &tail_min,
                    err, err_len);
    for (size_t k = r0; k < r0 + n_final && !st; k++) pack(extra, &r.v[k], max_tokens);
    /* the growing sentence passing max_tokens triggers a re-split */
    size_t room = SIZE_MAX;
    if (!st && sentences->v[last].n_tokens <= (size_t)max_tokens)
        room = (size_t)max_tokens - sentences->v[last].n_tokens;
    if (!st && extra->cur.len) {
        if (extra->cur_tokens + tail_min > (size_t)max_tokens) pack_close(extra);
        else if ((size_t)max_tokens - extra->cur_tokens - tail_min < room)
            room = (size_t)max_tokens - extra->cur_tokens - tail_min; /* gain that closes it */
    }
    if (headroom) *headroom = room > INT_MAX ? INT_MAX : (int)room;
    if (!st && (pk->oom || extra->oom || extra->cur.oom))
        st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory splitting text");
    seg_free(&r);
    return st;
}

/* split_into_best_sentences (open = 0), or its open variant (see open_tail). */
static ctts_status split_impl(const spm_model *sp, const char *text, size_t text_len,
                              const pocket_text_options *o, int max_tokens, int open,
                              char ***chunks, int *n_chunks, int *headroom, char *err,
                              size_t err_len) {
    if (!sp || !text || !chunks || !n_chunks)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "pocket_split_chunks: NULL argument");
    *chunks = NULL;
    *n_chunks = 0;
    if (headroom) *headroom = INT_MAX;
    if (max_tokens <= 0)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "max_tokens_per_chunk must be > 0 (got %d)",
                        max_tokens);
    if (open) {
        text_len = open_cut(text, text_len);
        size_t b, e;
        py_strip(text, text_len, &b, &e);
        if (b == e) return CTTS_OK; /* no complete word yet */
    }
    ctts_strbuf prepared = {0};
    int32_t *ids = NULL, *eos_ids = NULL, *fb_ids = NULL;
    size_t n_ids = 0, n_eos = 0, n_fb = 0;
    segment_list sentences = {0}, refined = {0};
    packer pk = {0};

    ctts_status st = prepare(text, text_len, o, open, &prepared, NULL, err, err_len);
    if (st) goto done;
    if ((st = encode_stripped(sp, prepared.p, prepared.len, &ids, &n_ids, err, err_len))) goto done;
    if ((st = boundary_sets(sp, &eos_ids, &n_eos, &fb_ids, &n_fb, err, err_len))) goto done;
    if (open && (set_has_word_start(sp, eos_ids, n_eos) || set_has_word_start(sp, fb_ids, n_fb))) {
        if (headroom) *headroom = -1;
        goto done;
    }
    if ((st = segments_from_tokens(sp, ids, n_ids, eos_ids, n_eos, &sentences, err, err_len))) goto done;
    if (open) {
        packer extra = {0};
        st = open_tail(sp, &sentences, fb_ids, n_fb, max_tokens, &pk, &extra, headroom, err,
                       err_len);
        if (!st && !move_chunks(&pk, &extra))
            st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory splitting text");
        pack_free(&extra);
        goto done;
    }
    /* sentences over max_tokens are re-tokenized and split on ",;:" tokens,
     * then packed greedily */
    for (size_t i = 0; i < sentences.n && !st; i++)
        st = refine(sp, &sentences.v[i], fb_ids, n_fb, max_tokens, 0, &refined, NULL, NULL, err,
                    err_len);
    for (size_t i = 0; i < refined.n && !st; i++) pack(&pk, &refined.v[i], max_tokens);
    if (!st) pack_close(&pk);
    if (!st && pk.oom) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory splitting text");
done:
    free(prepared.p);
    free(ids);
    free(eos_ids);
    free(fb_ids);
    seg_free(&sentences);
    seg_free(&refined);
    if (st) {
        pack_free(&pk);
        return st;
    }
    *chunks = pk.out;
    *n_chunks = pk.n_out;
    pk.out = NULL;
    pk.n_out = 0;
    pack_free(&pk);
    return CTTS_OK;
}

ctts_status pocket_split_chunks(const spm_model *sp, const char *text,
                                const pocket_text_options *o, int max_tokens, char ***chunks,
                                int *n_chunks, char *err, size_t err_len) {
    return split_impl(sp, text, text ? strlen(text) : 0, o, max_tokens, 0, chunks, n_chunks, NULL,
                      err, err_len);
}

ctts_status pocket_split_chunks_open(const spm_model *sp, const char *text, size_t len,
                                     const pocket_text_options *o, int max_tokens,
                                     char ***chunks, int *n_chunks, int *headroom, char *err,
                                     size_t err_len) {
    return split_impl(sp, text, len, o, max_tokens, 1, chunks, n_chunks, headroom, err,
                      err_len);
}

/* ---- incremental chunker ---- */

struct pocket_chunker {
    const spm_model *sp;
    pocket_text_options o;
    int max_tokens;
    int usable;      /* the boundary pieces allow open chunking at all */
    int incremental; /* appended text tokenizes on its own (probed) */
    int32_t *eos, *fb;
    size_t n_eos, n_fb;
    size_t cut;      /* bytes of the text prepared and tokenized */
    int32_t *ids;    /* tokens of text[0..cut) */
    size_t n_ids, cap_ids;
    float score;     /* Viterbi score at the end of those tokens (spm_encode_from) */
    size_t sent0;    /* first token of the sentence that may still grow */
    packer pk;       /* the sentences before sent0, packed */
};

/* Whether encode(a + b) == encode(a) ++ encode_from(b) when b starts with
 * spaces, i.e. whether the normalizer treats text after a space alike in a
 * piece and in the whole (it does with extra spaces removed and a dummy
 * prefix, and with neither); checked on a few pairs rather than assumed. */
static int composes(const spm_model *sp) {
    static const char *const pairs[][2] = {
        {"Hello", " world."}, {"a,", "  b"}, {"1.5", " 2"}, {"x", " \xc3\xa9t\xc3\xa9 ok"},
        {"(maybe)", " \xe6\x97\xa5\xe6\x9c\xac"}};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        char both[64];
        snprintf(both, sizeof both, "%s%s", pairs[i][0], pairs[i][1]);
        int32_t *a = NULL, *b = NULL, *ab = NULL;
        size_t na = 0, nb = 0, nab = 0;
        float score = 0;
        int ok = !spm_encode_from(sp, pairs[i][0], strlen(pairs[i][0]), &score, &a, &na, NULL, 0) &&
                 !spm_encode_from(sp, pairs[i][1], strlen(pairs[i][1]), &score, &b, &nb, NULL, 0) &&
                 !spm_encode(sp, both, strlen(both), &ab, &nab, NULL, 0) && nab == na + nb &&
                 (na == 0 || !memcmp(ab, a, na * sizeof *a)) &&
                 (nb == 0 || !memcmp(ab + na, b, nb * sizeof *b));
        free(a);
        free(b);
        free(ab);
        if (!ok) return 0;
    }
    return 1;
}

ctts_status pocket_chunker_new(const spm_model *sp, const pocket_text_options *o, int max_tokens,
                               pocket_chunker **out, char *err, size_t err_len) {
    *out = NULL;
    if (!sp || max_tokens <= 0)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "chunker: bad arguments");
    pocket_chunker *c = calloc(1, sizeof *c);
    if (!c) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    c->sp = sp;
    if (o) c->o = *o;
    c->max_tokens = max_tokens;
    ctts_status st = boundary_sets(sp, &c->eos, &c->n_eos, &c->fb, &c->n_fb, err, err_len);
    if (st) {
        pocket_chunker_free(c);
        return st;
    }
    c->usable = pocket_text_can_stream(sp) && !set_has_word_start(sp, c->eos, c->n_eos) &&
                !set_has_word_start(sp, c->fb, c->n_fb);
    c->incremental = c->usable && composes(sp);
    *out = c;
    return CTTS_OK;
}

void pocket_chunker_free(pocket_chunker *c) {
    if (!c) return;
    free(c->eos);
    free(c->fb);
    free(c->ids);
    pack_free(&c->pk);
    free(c);
}

/* prepare()'s per-character steps for text after a cut (which starts with a
 * space after a non-space, so the "  " pass pairs up alike). */
static ctts_status prepare_more(const char *text, size_t len, const pocket_text_options *o,
                                ctts_strbuf *out, char *err, size_t err_len) {
    if (!uni_utf8_valid(text, len))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text prompt is not valid UTF-8");
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (ch == '\n' || ch == '\r') ch = ' ';
        if (o->remove_semicolons && ch == ';') ch = ',';
        if (ch == ' ' && i + 1 < len && (text[i + 1] == ' ' || text[i + 1] == '\n' ||
                                         text[i + 1] == '\r')) {
            i++; /* a pair of spaces becomes one */
        }
        ctts_strbuf_put(out, &ch, 1);
    }
    if (out->oom) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    return CTTS_OK;
}

static ctts_status append_ids(pocket_chunker *c, const int32_t *ids, size_t n, char *err,
                              size_t err_len) {
    if (c->n_ids + n > c->cap_ids) {
        size_t cap = c->cap_ids ? c->cap_ids : 256;
        while (cap < c->n_ids + n) cap *= 2;
        int32_t *nv = realloc(c->ids, cap * sizeof *nv);
        if (!nv) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        c->ids = nv;
        c->cap_ids = cap;
    }
    if (n) memcpy(c->ids + c->n_ids, ids, n * sizeof *ids);
    c->n_ids += n;
    return CTTS_OK;
}

/* Tokenizes text[c->cut .. new cut) onto c->ids. */
static ctts_status advance(pocket_chunker *c, const char *text, size_t len, char *err,
                           size_t err_len) {
    size_t cut = open_cut(text, len);
    if (cut <= c->cut) return CTTS_OK;
    ctts_strbuf t = {0};
    ctts_status st;
    if (c->cut == 0) {
        size_t b, e;
        py_strip(text, cut, &b, &e);
        if (b == e) return CTTS_OK; /* no word yet: stay at the start */
        st = prepare(text, cut, &c->o, 1, &t, NULL, err, err_len);
    } else {
        st = prepare_more(text + c->cut, cut - c->cut, &c->o, &t, err, err_len);
    }
    int32_t *ids = NULL;
    size_t n = 0, b = 0, e = t.len;
    if (c->cut == 0) py_strip(t.p, t.len, &b, &e);
    if (!st) st = spm_encode_from(c->sp, t.p + b, e - b, &c->score, &ids, &n, err, err_len);
    if (!st) st = append_ids(c, ids, n, err, err_len);
    free(ids);
    free(t.p);
    if (!st) c->cut = cut;
    return st;
}

ctts_status pocket_chunker_update(pocket_chunker *c, const char *text, size_t len, int n_known,
                                  char ***chunks, int *n_chunks, int *headroom, char *err,
                                  size_t err_len) {
    *chunks = NULL;
    *n_chunks = 0;
    if (headroom) *headroom = -1;
    if (!c->usable) return CTTS_OK;
    packer all = {0}, extra = {0};
    ctts_status st;
    if (!c->incremental) {
        st = split_impl(c->sp, text, len, &c->o, c->max_tokens, 1, &all.out, &all.n_out, headroom,
                        err, err_len);
        all.cap_out = all.n_out;
    } else {
        segment_list sentences = {0};
        st = advance(c, text, len, err, err_len);
        if (!st && c->n_ids > c->sent0)
            st = segments_from_tokens(c->sp, c->ids + c->sent0, c->n_ids - c->sent0, c->eos,
                                      c->n_eos, &sentences, err, err_len);
        if (!st && sentences.n) {
            size_t done = 0;
            for (size_t i = 0; i + 1 < sentences.n; i++) done += sentences.v[i].n_tokens;
            st = open_tail(c->sp, &sentences, c->fb, c->n_fb, c->max_tokens, &c->pk, &extra,
                           headroom, err, err_len);
            c->sent0 += done; /* those sentences are in c->pk now */
        } else if (!st && headroom) {
            *headroom = INT_MAX;
        }
        seg_free(&sentences);
        /* the new chunks: c->pk's past n_known, then extra's */
        for (int i = n_known; i < c->pk.n_out && !st; i++) {
            size_t l = strlen(c->pk.out[i]);
            if (!push_chunk(&all.out, &all.n_out, &all.cap_out, c->pk.out[i], l))
                st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        }
        if (!st) {
            int skip = n_known - c->pk.n_out; /* extra's chunks already known */
            for (int i = 0; i < extra.n_out && i < skip; i++) {
                free(extra.out[i]);
                extra.out[i] = NULL;
            }
            if (skip > 0) {
                int k = skip < extra.n_out ? skip : extra.n_out;
                memmove(extra.out, extra.out + k, (size_t)(extra.n_out - k) * sizeof *extra.out);
                extra.n_out -= k;
            }
            if (!move_chunks(&all, &extra)) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        }
        pack_free(&extra);
    }
    if (st) {
        pack_free(&all);
        return st;
    }
    if (!c->incremental && n_known > 0) {
        /* stateless: drop the ones already known */
        int k = n_known < all.n_out ? n_known : all.n_out;
        for (int i = 0; i < k; i++) free(all.out[i]);
        memmove(all.out, all.out + k, (size_t)(all.n_out - k) * sizeof *all.out);
        all.n_out -= k;
    }
    *chunks = all.out;
    *n_chunks = all.n_out;
    all.out = NULL;
    all.n_out = 0;
    pack_free(&all);
    return CTTS_OK;
}
