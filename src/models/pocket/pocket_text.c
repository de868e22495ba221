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
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "text/unicode.h"

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} tbuf;

static void tb_put(tbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->len + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

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
                           int open, tbuf *out, int *guess, char *err, size_t err_len) {
    if (!uni_utf8_valid(text, text_len))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text prompt is not valid UTF-8");
    size_t b, e;
    py_strip(text, text_len, &b, &e);
    if (b == e) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text prompt is empty");
    /* newlines -> spaces, then ONE non-overlapping pass of "  " -> " " */
    tbuf t = {0};
    for (size_t i = b; i < e; i++) {
        char c = text[i];
        if (c == '\n' || c == '\r') c = ' ';
        if (o && o->remove_semicolons && c == ';') c = ','; /* commutes with the "  " pass */
        tb_put(&t, &c, 1);
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
    tbuf u = {0};
    if (!uni_is_upper(first)) {
        uint32_t up[3];
        int nu = uni_to_upper(first, up);
        for (int k = 0; k < nu; k++) {
            char enc[4];
            int el = uni_utf8_encode(up[k], enc);
            tb_put(&u, enc, (size_t)el);
        }
    } else {
        tb_put(&u, t.p, (size_t)fl);
    }
    tb_put(&u, t.p + fl, t.len - (size_t)fl);
    free(t.p);
    t = u;
    if (t.oom) goto oom;

    /* '.' after a final letter or digit (Unicode isalnum) */
    if (!open) {
        size_t k = t.len - 1;
        while (k > 0 && t.len - k < 4 && ((unsigned char)t.p[k] & 0xC0) == 0x80) k--;
        uint32_t last;
        if (uni_utf8_decode(t.p + k, t.len - k, &last) == 0) goto bad_utf8;
        if (uni_is_alnum(last)) tb_put(&t, ".", 1);
    }
    if (!open && o && o->pad_with_spaces_for_short_inputs && py_word_count(t.p, t.len) < 5) {
        tbuf pd = {0};
        tb_put(&pd, "        ", 8);
        tb_put(&pd, t.p, t.len);
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
    tbuf t = {0};
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

/*
 * split_into_best_sentences. open = 0: the whole text, every chunk.
 * open = 1: text is the start of a text still arriving; only the chunks that
 * every continuation shares are returned. The argument, step by step:
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
 * *headroom (open only; may be NULL): how many tokens the growing sentence
 * may gain before the result can change without new punctuation (before it
 * passes max_tokens, or its lower bound closes the open chunk); INT_MAX for
 * no limit, -1 when the text cannot be chunked incrementally.
 */
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
    tbuf prepared = {0};
    int32_t *ids = NULL, *eos_ids = NULL, *fb_ids = NULL;
    size_t n_ids = 0, n_eos = 0, n_fb = 0;
    segment_list sentences = {0}, refined = {0};
    tbuf cur = {0};
    char **out = NULL;
    int n_out = 0, cap_out = 0;

    ctts_status st = prepare(text, text_len, o, open, &prepared, NULL, err, err_len);
    if (st) goto done;
    if ((st = encode_stripped(sp, prepared.p, prepared.len, &ids, &n_ids, err, err_len))) goto done;
    if ((st = tail_ids(sp, ".!...?", &eos_ids, &n_eos, err, err_len))) goto done;
    if ((st = tail_ids(sp, ",;:", &fb_ids, &n_fb, err, err_len))) goto done;
    if (open && (set_has_word_start(sp, eos_ids, n_eos) || set_has_word_start(sp, fb_ids, n_fb))) {
        if (headroom) *headroom = -1;
        goto done;
    }
    if ((st = segments_from_tokens(sp, ids, n_ids, eos_ids, n_eos, &sentences, err, err_len))) goto done;
    /* the growing sentence triggers a re-split once it passes max_tokens */
    size_t room = SIZE_MAX;
    if (open && sentences.n && sentences.v[sentences.n - 1].n_tokens <= (size_t)max_tokens)
        room = (size_t)max_tokens - sentences.v[sentences.n - 1].n_tokens;

    /* sentences over max_tokens are re-tokenized and split on ",;:" tokens;
     * the first n_final segments of refined are final (open text), the next
     * one will have at least tail_min tokens */
    size_t n_final = 0, tail_min = 0;
    for (size_t i = 0; i < sentences.n; i++) {
        segment *s = &sentences.v[i];
        int last_open = open && i + 1 == sentences.n;
        if (last_open) tail_min = s->n_tokens;
        if (s->n_tokens > (size_t)max_tokens || last_open) {
            int32_t *sub = NULL;
            size_t n_sub = 0;
            segment_list parts = {0};
            st = encode_stripped(sp, s->text, strlen(s->text), &sub, &n_sub, err, err_len);
            if (!st) st = segments_from_tokens(sp, sub, n_sub, fb_ids, n_fb, &parts, err, err_len);
            free(sub);
            if (st) {
                seg_free(&parts);
                goto done;
            }
            if (last_open) {
                /* if (or when) it is re-split, its first part is at least this */
                size_t first = parts.n > 1 ? parts.v[0].n_tokens : n_sub;
                if (first < tail_min) tail_min = first;
            }
            if (last_open && s->n_tokens <= (size_t)max_tokens) {
                seg_free(&parts);
                goto whole;
            }
            if (parts.n > 1) {
                if (last_open) tail_min = parts.v[parts.n - 1].n_tokens;
                for (size_t k = 0; k < parts.n; k++) {
                    if (!seg_push(&refined, parts.v[k].n_tokens, parts.v[k].text)) {
                        for (size_t j = k; j < parts.n; j++) free(parts.v[j].text);
                        free(parts.v);
                        st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory splitting text");
                        goto done;
                    }
                    if (!last_open || k + 1 < parts.n) n_final = refined.n;
                }
                free(parts.v);
                continue;
            }
            seg_free(&parts);
        }
    whole:
        if (!seg_push(&refined, s->n_tokens, s->text)) {
            st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory splitting text");
            goto done;
        }
        s->text = NULL; /* now owned by refined */
        if (!last_open) n_final = refined.n;
    }

    /* greedy packing; "current_chunk == ''" is a string test in the reference */
    size_t cur_tokens = 0;
    for (size_t i = 0; i < refined.n; i++) {
        if (open && i >= n_final) break; /* the chunk being packed may still change */
        const segment *s = &refined.v[i];
        size_t slen = strlen(s->text);
        if (cur.len == 0) {
            tb_put(&cur, s->text, slen);
            cur_tokens = s->n_tokens;
        } else if (cur_tokens + s->n_tokens > (size_t)max_tokens) {
            if (!push_chunk(&out, &n_out, &cap_out, cur.p, cur.len)) goto oom;
            cur.len = 0;
            tb_put(&cur, s->text, slen);
            cur_tokens = s->n_tokens;
        } else {
            tb_put(&cur, " ", 1);
            tb_put(&cur, s->text, slen);
            cur_tokens += s->n_tokens;
        }
        if (cur.oom) goto oom;
    }
    if (!open) {
        if (cur.len && !push_chunk(&out, &n_out, &cap_out, cur.p, cur.len)) goto oom;
    } else if (cur.len && n_final < refined.n) {
        if (cur_tokens + tail_min > (size_t)max_tokens) {
            if (!push_chunk(&out, &n_out, &cap_out, cur.p, cur.len)) goto oom;
        } else if ((size_t)max_tokens - cur_tokens - tail_min < room) {
            room = (size_t)max_tokens - cur_tokens - tail_min; /* gain that closes the chunk */
        }
    }
    if (open && headroom) *headroom = room > INT_MAX ? INT_MAX : (int)room;
    goto done;
oom:
    st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory splitting text");
done:
    free(prepared.p);
    free(ids);
    free(eos_ids);
    free(fb_ids);
    seg_free(&sentences);
    seg_free(&refined);
    free(cur.p);
    if (st) {
        pocket_free_chunks(out, n_out);
        return st;
    }
    *chunks = out;
    *n_chunks = n_out;
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
