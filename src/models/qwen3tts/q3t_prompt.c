/*
 * Qwen3-TTS prompt layout (see q3t_prompt.h; NOTES §2-§3, the official
 * Qwen3TTSForConditionalGeneration.generate and generate_icl_prompt).
 *
 * Row order of the prefill, n_c = codec block length (prefix + speaker slot +
 * [pad, bos]):
 *   3 role rows                      T(ids[0:3])
 *   n_c - 1 rows                     [P_p x (n_c - 2), P_b] + codec block[0 .. n_c-2]
 *   then by mode
 *     non-streaming                  T(ids[3:-5]) + C(pad), P_e + C(pad), P_p + C(bos)
 *                                    trailing [P_p]
 *     streaming                      T(ids[3:4]) + C(bos)
 *                                    trailing T(ids[4:-5]), P_e
 *     ICL (reference frames given)   X = T(ref_ids[3:-2] ++ ids[3:-5]), P_e (t1 rows)
 *                                    Y = C(bos), ref frames 0..Tr-1   (t2 rows)
 *       non-streaming                X + C(pad), then Y + P_p; trailing [P_p]
 *       streaming, t1 > t2           X[:t2] + Y; trailing X[t2:]
 *       streaming, t1 <= t2          (X, P_p...) + Y; trailing [P_p]
 * where P_b, P_e, P_p are T(tts_bos), T(tts_eos), T(tts_pad). Every sum is
 * text part + codec part, in that order.
 */
#include "models/qwen3tts/q3t_prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"

const char Q3T_PROMPT_HEAD[] = "<|im_start|>assistant\n";
const char Q3T_PROMPT_TAIL[] = "<|im_end|>\n<|im_start|>assistant\n";
static const char REF_TAIL[] = "<|im_end|>\n";

static ctts_status wrap_encode(const bpe_tokenizer *tok, const char *text, size_t len,
                               const char *tail, int32_t **ids, size_t *n, char *err,
                               size_t err_len) {
    if (!tok || (!text && len) || !ids || !n)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "prompt: missing argument");
    size_t hl = sizeof Q3T_PROMPT_HEAD - 1, tl = strlen(tail);
    char *s = malloc(hl + len + tl + 1);
    if (!s) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    memcpy(s, Q3T_PROMPT_HEAD, hl);
    if (len) memcpy(s + hl, text, len);
    memcpy(s + hl + len, tail, tl + 1);
    ctts_status st = bpe_encode(tok, s, hl + len + tl, ids, n, err, err_len);
    free(s);
    return st;
}

ctts_status q3t_prompt_ids(const bpe_tokenizer *tok, const char *text, size_t len, int32_t **ids,
                           size_t *n, char *err, size_t err_len) {
    return wrap_encode(tok, text, len, Q3T_PROMPT_TAIL, ids, n, err, err_len);
}

ctts_status q3t_prompt_ref_ids(const bpe_tokenizer *tok, const char *ref_text, size_t len,
                               int32_t **ids, size_t *n, char *err, size_t err_len) {
    return wrap_encode(tok, ref_text, len, REF_TAIL, ids, n, err, err_len);
}

/* "a, b, c" of the names, for messages. */
static void list_names(const q3t_config *cfg, int speakers, char *buf, size_t len) {
    size_t w = 0;
    buf[0] = 0;
    if (!speakers) w += (size_t)snprintf(buf, len, "auto");
    int n = speakers ? cfg->talker.n_speakers : cfg->talker.n_languages;
    for (int i = 0; i < n && w < len; i++) {
        const char *name = speakers ? cfg->talker.speakers[i].name : cfg->talker.languages[i].name;
        if (!speakers && strstr(name, "dialect")) continue;
        w += (size_t)snprintf(buf + w, len - w, "%s%s", w ? ", " : "", name);
    }
}

ctts_status q3t_prompt_codec_prefix(const q3t_config *cfg, const char *speaker, int use_xvector,
                                    const char *language, q3t_codec_prefix *out, char *err,
                                    size_t err_len) {
    if (!cfg || !out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "prompt: missing argument");
    memset(out, 0, sizeof *out);
    const q3t_talker_config *tc = &cfg->talker;
    char names[1024];
    const q3t_speaker *spk = NULL;
    if (speaker) {
        spk = q3t_config_speaker(cfg, speaker);
        if (!spk) {
            list_names(cfg, 1, names, sizeof names);
            if (!tc->n_speakers)
                return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                                "this model has no built-in speakers (speaker '%s')", speaker);
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "unknown speaker '%s' (this model has: %s)", speaker, names);
        }
    }
    int lang = q3t_config_language_id(cfg, language);
    if (lang == -2) {
        list_names(cfg, 0, names, sizeof names);
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "unknown language '%s' (one of: %s)",
                        language, names);
    }
    /* A dialect speaker speaks its dialect when asked for Chinese or auto. */
    int is_auto = lang == -1;
    int is_chinese = language && strcasecmp(language, "chinese") == 0;
    if (spk && spk->dialect[0] && (is_auto || is_chinese)) {
        for (int i = 0; i < tc->n_languages; i++)
            if (strcmp(tc->languages[i].name, spk->dialect) == 0) lang = tc->languages[i].id;
    }
    out->language_id = lang;
    if (lang < 0) {
        out->ids[0] = tc->codec_nothink_id;
        out->ids[1] = tc->codec_think_bos_id;
        out->ids[2] = tc->codec_think_eos_id;
        out->n_ids = 3;
    } else {
        out->ids[0] = tc->codec_think_id;
        out->ids[1] = tc->codec_think_bos_id;
        out->ids[2] = lang;
        out->ids[3] = tc->codec_think_eos_id;
        out->n_ids = 4;
    }
    if (spk) {
        out->speaker_src = Q3T_SRC_CODEC;
        out->speaker_id = spk->id;
    } else {
        out->speaker_src = use_xvector ? Q3T_SRC_SPEAKER : Q3T_SRC_NONE;
        out->speaker_id = -1;
    }
    return CTTS_OK;
}

/* Python slice bounds of ids[a:b] for length n (negative from the end, clamped). */
static void py_slice(size_t n, long a, long b, size_t *lo, size_t *hi) {
    long N = (long)n;
    if (a < 0) a += N;
    if (b < 0) b += N;
    if (a < 0) a = 0;
    if (b < 0) b = 0;
    if (a > N) a = N;
    if (b > N) b = N;
    if (b < a) b = a;
    *lo = (size_t)a;
    *hi = (size_t)b;
}

typedef struct {
    q3t_row *rows;
    int n, cap;
} row_buf;

static int add_row(row_buf *r, int a_src, int32_t a, int b_src, int32_t b) {
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 64;
        q3t_row *nr = realloc(r->rows, (size_t)cap * sizeof *nr);
        if (!nr) return 0;
        r->rows = nr;
        r->cap = cap;
    }
    r->rows[r->n++] = (q3t_row){(uint8_t)a_src, (uint8_t)b_src, a, b};
    return 1;
}

ctts_status q3t_prompt_layout(const q3t_config *cfg, const q3t_codec_prefix *prefix,
                              const int32_t *ids, size_t n_ids, const int32_t *ref_ids,
                              size_t n_ref_ids, int n_ref_frames, q3t_text_mode mode,
                              q3t_layout *out, char *err, size_t err_len) {
    if (!cfg || !prefix || (!ids && n_ids) || !out || n_ref_frames < 0 ||
        (n_ref_frames > 0 && !ref_ids && n_ref_ids))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "prompt layout: bad argument");
    memset(out, 0, sizeof *out);
    const q3t_talker_config *tc = &cfg->talker;
    const int32_t P_b = cfg->tts_bos_token_id, P_e = cfg->tts_eos_token_id,
                  P_p = cfg->tts_pad_token_id;
    /* Codec block: prefix, speaker slot, pad, bos. */
    int blk_src[8];
    int32_t blk_id[8];
    int n_c = 0;
    for (int i = 0; i < prefix->n_ids; i++) blk_src[n_c] = Q3T_SRC_CODEC, blk_id[n_c++] = prefix->ids[i];
    if (prefix->speaker_src != Q3T_SRC_NONE)
        blk_src[n_c] = prefix->speaker_src, blk_id[n_c++] = prefix->speaker_id;
    blk_src[n_c] = Q3T_SRC_CODEC, blk_id[n_c++] = tc->codec_pad_id;
    blk_src[n_c] = Q3T_SRC_CODEC, blk_id[n_c++] = tc->codec_bos_id;

    row_buf pre = {0}, trail = {0};
    int ok = 1;
    size_t lo, hi;
    py_slice(n_ids, 0, 3, &lo, &hi);
    for (size_t i = lo; i < hi; i++) ok &= add_row(&pre, Q3T_SRC_TEXT, ids[i], Q3T_SRC_NONE, 0);
    for (int i = 0; i < n_c - 1; i++)
        ok &= add_row(&pre, Q3T_SRC_TEXT, i < n_c - 2 ? P_p : P_b, blk_src[i], blk_id[i]);
    size_t tlo, thi; /* the text: ids[3:-5] */
    py_slice(n_ids, 3, -5, &tlo, &thi);
    if (n_ref_frames > 0) {
        size_t rlo = 0, rhi = 0;
        py_slice(n_ref_ids, 3, -2, &rlo, &rhi);
        int t1 = (int)((rhi - rlo) + (thi - tlo)) + 1, t2 = 1 + n_ref_frames;
        int32_t *x = malloc((size_t)t1 * sizeof *x);
        if (!x) ok = 0;
        int k = 0;
        for (size_t i = rlo; x && i < rhi; i++) x[k++] = ref_ids[i];
        for (size_t i = tlo; x && i < thi; i++) x[k++] = ids[i];
        if (x) x[k++] = P_e;
        /* Y[j]: j = 0 is C(bos), j >= 1 reference frame j - 1. */
#define Y_SRC(j) ((j) == 0 ? Q3T_SRC_CODEC : Q3T_SRC_REF_FRAME)
#define Y_ID(j) ((j) == 0 ? tc->codec_bos_id : (int32_t)((j) - 1))
        if (x && mode == Q3T_TEXT_NON_STREAMING) {
            for (int i = 0; i < t1; i++) ok &= add_row(&pre, Q3T_SRC_TEXT, x[i], Q3T_SRC_CODEC, tc->codec_pad_id);
            for (int j = 0; j < t2; j++) ok &= add_row(&pre, Q3T_SRC_TEXT, P_p, Y_SRC(j), Y_ID(j));
            ok &= add_row(&trail, Q3T_SRC_TEXT, P_p, Q3T_SRC_NONE, 0);
        } else if (x && t1 > t2) {
            for (int j = 0; j < t2; j++) ok &= add_row(&pre, Q3T_SRC_TEXT, x[j], Y_SRC(j), Y_ID(j));
            for (int i = t2; i < t1; i++) ok &= add_row(&trail, Q3T_SRC_TEXT, x[i], Q3T_SRC_NONE, 0);
        } else if (x) {
            for (int j = 0; j < t2; j++)
                ok &= add_row(&pre, Q3T_SRC_TEXT, j < t1 ? x[j] : P_p, Y_SRC(j), Y_ID(j));
            ok &= add_row(&trail, Q3T_SRC_TEXT, P_p, Q3T_SRC_NONE, 0);
        }
#undef Y_SRC
#undef Y_ID
        free(x);
    } else if (mode == Q3T_TEXT_NON_STREAMING) {
        for (size_t i = tlo; i < thi; i++)
            ok &= add_row(&pre, Q3T_SRC_TEXT, ids[i], Q3T_SRC_CODEC, tc->codec_pad_id);
        ok &= add_row(&pre, Q3T_SRC_TEXT, P_e, Q3T_SRC_CODEC, tc->codec_pad_id);
        ok &= add_row(&pre, Q3T_SRC_TEXT, P_p, Q3T_SRC_CODEC, tc->codec_bos_id);
        ok &= add_row(&trail, Q3T_SRC_TEXT, P_p, Q3T_SRC_NONE, 0);
    } else {
        /* T(ids[3:4]) + C(bos); an empty slice (a prompt of < 4 tokens) gives no row,
         * as the official broadcasted sum of an empty tensor does. */
        size_t flo, fhi;
        py_slice(n_ids, 3, 4, &flo, &fhi);
        if (fhi > flo) ok &= add_row(&pre, Q3T_SRC_TEXT, ids[flo], Q3T_SRC_CODEC, tc->codec_bos_id);
        size_t rlo, rhi;
        py_slice(n_ids, 4, -5, &rlo, &rhi);
        for (size_t i = rlo; i < rhi; i++) ok &= add_row(&trail, Q3T_SRC_TEXT, ids[i], Q3T_SRC_NONE, 0);
        ok &= add_row(&trail, Q3T_SRC_TEXT, P_e, Q3T_SRC_NONE, 0);
    }
    if (ok) {
        /* One array: prefill rows then trailing rows. */
        q3t_row *all = malloc((size_t)(pre.n + trail.n) * sizeof *all);
        if (all) {
            memcpy(all, pre.rows, (size_t)pre.n * sizeof *all);
            if (trail.n) memcpy(all + pre.n, trail.rows, (size_t)trail.n * sizeof *all);
            out->rows = all;
            out->n_prefill = pre.n;
            out->n_trailing = trail.n;
            out->pad_token = P_p;
        } else {
            ok = 0;
        }
    }
    free(pre.rows);
    free(trail.rows);
    if (!ok) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    return CTTS_OK;
}

void q3t_layout_free(q3t_layout *l) {
    if (!l) return;
    free(l->rows);
    memset(l, 0, sizeof *l);
}

ctts_status q3t_prompt_embed(const q3t_talker *t, q3t_talker_state *ts,
                             const q3t_code_predictor *cp, q3t_cp_state *cps, const q3t_row *rows,
                             int n, const float *speaker, const int32_t *ref_codes,
                             int n_ref_frames, float *out, char *err, size_t err_len) {
    if (!t || !ts || (!rows && n) || !out || n < 0)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "prompt embed: bad argument");
    const int D = q3t_talker_hidden_size(t);
    int nt = 0, nc = 0;
    for (int r = 0; r < n; r++) {
        int srcs[2] = {rows[r].a_src, rows[r].b_src};
        int32_t idv[2] = {rows[r].a, rows[r].b};
        for (int h = 0; h < 2; h++) {
            nt += srcs[h] == Q3T_SRC_TEXT;
            nc += srcs[h] == Q3T_SRC_CODEC;
            if (srcs[h] == Q3T_SRC_SPEAKER && !speaker)
                return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                                "prompt embed: the layout needs a speaker vector");
            if (srcs[h] == Q3T_SRC_REF_FRAME &&
                (!cp || !cps || !ref_codes || idv[h] < 0 || idv[h] >= n_ref_frames))
                return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                                "prompt embed: reference frame %d is not available", idv[h]);
        }
    }
    int32_t *tid = malloc(((size_t)nt + 1) * sizeof *tid);
    int32_t *cid = malloc(((size_t)nc + 1) * sizeof *cid);
    float *tv = malloc(((size_t)nt * D + 1) * sizeof *tv);
    float *cv = malloc(((size_t)nc * D + 1) * sizeof *cv);
    float *fr = malloc((size_t)D * sizeof *fr);
    ctts_status st = CTTS_OK;
    if (!tid || !cid || !tv || !cv || !fr) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    int it = 0, ic = 0;
    for (int r = 0; st == CTTS_OK && r < n; r++) {
        if (rows[r].a_src == Q3T_SRC_TEXT) tid[it++] = rows[r].a;
        if (rows[r].b_src == Q3T_SRC_TEXT) tid[it++] = rows[r].b;
        if (rows[r].a_src == Q3T_SRC_CODEC) cid[ic++] = rows[r].a;
        if (rows[r].b_src == Q3T_SRC_CODEC) cid[ic++] = rows[r].b;
    }
    /* One batched call per table (the text projection is a matmul). */
    if (st == CTTS_OK && nt) st = q3t_talker_embed_text(t, ts, tid, nt, tv, err, err_len);
    if (st == CTTS_OK && nc) st = q3t_talker_embed_codec(t, ts, cid, nc, cv, err, err_len);
    const int G = cp ? q3t_code_predictor_groups(cp) : 0;
    it = ic = 0;
    for (int r = 0; st == CTTS_OK && r < n; r++) {
        float *o = out + (size_t)r * D;
        int srcs[2] = {rows[r].a_src, rows[r].b_src};
        int32_t idv[2] = {rows[r].a, rows[r].b};
        for (int h = 0; h < 2 && st == CTTS_OK; h++) {
            const float *v = NULL;
            switch (srcs[h]) {
            case Q3T_SRC_TEXT: v = tv + (size_t)it++ * D; break;
            case Q3T_SRC_CODEC: v = cv + (size_t)ic++ * D; break;
            case Q3T_SRC_SPEAKER: v = speaker; break;
            case Q3T_SRC_REF_FRAME:
                st = q3t_code_predictor_frame_embed(cp, cps, t, ref_codes + (size_t)idv[h] * G, fr,
                                                    err, err_len);
                v = fr;
                break;
            default: break;
            }
            if (st != CTTS_OK) break;
            if (h == 0) {
                if (v) memcpy(o, v, (size_t)D * sizeof *o);
                else memset(o, 0, (size_t)D * sizeof *o);
            } else if (v) {
                for (int d = 0; d < D; d++) o[d] += v[d];
            }
        }
    }
    free(tid);
    free(cid);
    free(tv);
    free(cv);
    free(fr);
    return st;
}

static size_t put_src(char *buf, size_t len, size_t w, int src, int32_t id) {
    char tmp[48];
    switch (src) {
    case Q3T_SRC_TEXT: snprintf(tmp, sizeof tmp, "T(%d)", id); break;
    case Q3T_SRC_CODEC: snprintf(tmp, sizeof tmp, "C(%d)", id); break;
    case Q3T_SRC_SPEAKER: snprintf(tmp, sizeof tmp, "SPK"); break;
    case Q3T_SRC_REF_FRAME: snprintf(tmp, sizeof tmp, "REF(%d)", id); break;
    default: tmp[0] = 0; break;
    }
    size_t k = strlen(tmp);
    if (w < len) snprintf(buf + w, len - w, "%s", tmp);
    return w + k;
}

size_t q3t_layout_describe(const q3t_layout *l, char *buf, size_t len) {
    size_t w = 0;
    if (buf && len) buf[0] = 0;
    if (!l) return 0;
    char dummy[1];
    if (!buf || !len) buf = dummy, len = 0;
    for (int r = 0; r < l->n_prefill + l->n_trailing; r++) {
        const char *sep = r == 0 ? "" : r == l->n_prefill ? " || " : " | ";
        size_t k = strlen(sep);
        if (w < len) snprintf(buf + w, len - w, "%s", sep);
        w += k;
        w = put_src(buf, len, w, l->rows[r].a_src, l->rows[r].a);
        if (l->rows[r].b_src != Q3T_SRC_NONE) {
            if (w < len) snprintf(buf + w, len - w, "+");
            w++;
            w = put_src(buf, len, w, l->rows[r].b_src, l->rows[r].b);
        }
    }
    return w;
}
