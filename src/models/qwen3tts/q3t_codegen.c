/*
 * Qwen3-TTS frame-by-frame code generation (see q3t_codegen.h).
 *
 * State machine: after begin() the first code of frame 0 is chosen and no
 * talker step is pending. next() runs the pending talker step (if a frame was
 * returned before), checks the stop rule on the newly chosen first code, then
 * runs the code predictor and returns the frame. So a frame reaches the
 * caller as soon as its codes exist, before the next talker step runs.
 */
#include "models/qwen3tts/q3t_codegen.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/error.h"

struct q3t_codegen {
    const q3t_talker *t;
    const q3t_code_predictor *cp;
    q3t_talker_state *ts;
    q3t_cp_state *cs;
    q3t_codegen_params p;
    ctts_rng rng;
    int D, G, V;
    float *trailing; /* [n_trailing, D] host copy */
    int n_trailing, cap_trailing;
    float *pad;      /* [D] */
    float *row;      /* [D] next talker input */
    float *scores;   /* [V] processed scores of the last choice */
    int32_t *first;  /* [cap_first] first codes chosen */
    int n_first, cap_first;
    int32_t *last_codes; /* [G] the frame returned last */
    int step_pending;    /* a returned frame still has to be fed back */
    int32_t *teach;      /* [G] codes the next frame takes (teacher forcing), if set */
    int teach_on;
    ctts_backend *be; /* the talker's backend */
    float *teach_logits; /* caller's [G-1, cp vocab] for the next frame's predictor logits */
    int started;
    q3t_stop_reason stop;
    float *batch_rows; /* host [cap, D]: the talker inputs of a batched step led by this one */
    int batch_cap;
};

void q3t_codegen_params_from_config(const q3t_generation_config *gc, q3t_codegen_params *p) {
    memset(p, 0, sizeof *p);
    p->talker = (nn_sampling_params){.do_sample = gc->do_sample, .temperature = gc->temperature,
                                     .top_k = gc->top_k, .top_p = gc->top_p,
                                     .repetition_penalty = gc->repetition_penalty};
    p->predictor = (nn_sampling_params){.do_sample = gc->subtalker_dosample,
                                        .temperature = gc->subtalker_temperature,
                                        .top_k = gc->subtalker_top_k,
                                        .top_p = gc->subtalker_top_p, .repetition_penalty = 1.0f};
    p->max_new_tokens = gc->max_new_tokens;
}

void q3t_codegen_free(q3t_codegen *g) {
    if (!g) return;
    q3t_talker_state_free(g->ts);
    q3t_cp_state_free(g->cs);
    free(g->trailing);
    free(g->pad);
    free(g->row);
    free(g->scores);
    free(g->first);
    free(g->last_codes);
    free(g->teach);
    free(g->batch_rows);
    free(g);
}

ctts_status q3t_codegen_new(const q3t_talker *t, const q3t_code_predictor *cp, q3t_codegen **out,
                            char *err, size_t err_len) {
    if (!out || !t || !cp) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "codegen: bad arguments");
    *out = NULL;
    q3t_codegen *g = calloc(1, sizeof *g);
    if (!g) return ctts_err(err, err_len, CTTS_E_OOM, "codegen: out of memory");
    g->t = t;
    g->be = q3t_talker_backend(t);
    g->cp = cp;
    g->D = q3t_talker_hidden_size(t);
    g->G = q3t_code_predictor_groups(cp);
    g->V = q3t_talker_vocab(t);
    ctts_status st = q3t_talker_state_new(t, &g->ts, err, err_len);
    if (st == CTTS_OK) st = q3t_cp_state_new(cp, &g->cs, err, err_len);
    if (st != CTTS_OK) {
        q3t_codegen_free(g);
        return st;
    }
    g->pad = malloc((size_t)g->D * sizeof(float));
    g->row = malloc((size_t)g->D * sizeof(float));
    g->scores = malloc((size_t)g->V * sizeof(float));
    g->last_codes = calloc((size_t)g->G, sizeof(int32_t));
    g->teach = calloc((size_t)g->G, sizeof(int32_t));
    if (!g->pad || !g->row || !g->scores || !g->last_codes || !g->teach) {
        q3t_codegen_free(g);
        return ctts_err(err, err_len, CTTS_E_OOM, "codegen: out of memory");
    }
    *out = g;
    return CTTS_OK;
}

/* Chooses the next first code from the talker's current logits and applies
 * the stop rule. */
static ctts_status choose_first(q3t_codegen *g, char *err, size_t err_len) {
    if (g->n_first == g->cap_first) {
        int cap = g->cap_first ? 2 * g->cap_first : 256;
        int32_t *f = realloc(g->first, (size_t)cap * sizeof *f);
        if (!f) return ctts_err(err, err_len, CTTS_E_OOM, "codegen: out of memory");
        g->first = f;
        g->cap_first = cap;
    }
    const int c = q3t_talker_choose(g->t, g->ts, g->first, g->n_first, g->p.min_new_tokens,
                                    &g->p.talker, &g->rng, g->scores);
    g->first[g->n_first++] = c;
    if (c == q3t_talker_cfg(g->t)->codec_eos_token_id)
        g->stop = Q3T_STOP_EOS;
    else if (g->n_first >= g->p.max_new_tokens)
        g->stop = Q3T_STOP_LIMIT;
    return CTTS_OK;
}

ctts_status q3t_codegen_begin(q3t_codegen *g, const float *prefill, int P, const float *trailing,
                              int N, const float *pad, const q3t_codegen_params *p, char *err,
                              size_t err_len) {
    if (!g || !prefill || P <= 0 || N < 0 || (N > 0 && !trailing) || !pad || !p)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "codegen: bad begin arguments");
    if (p->max_new_tokens < 1)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "max_new_tokens must be >= 1 (got %d)",
                        p->max_new_tokens);
    ctts_status st = nn_sampling_params_check(&p->talker, err, err_len);
    if (st == CTTS_OK) {
        nn_sampling_params pp = p->predictor;
        pp.repetition_penalty = 1.0f;
        st = nn_sampling_params_check(&pp, err, err_len);
    }
    if (st != CTTS_OK) return st;
    g->p = *p;
    g->p.predictor.repetition_penalty = 1.0f;
    ctts_rng_seed(&g->rng, p->seed);
    g->started = 0;
    g->stop = Q3T_STOP_NONE;
    g->n_first = 0;
    g->step_pending = 0;

    const size_t row_bytes = (size_t)g->D * sizeof(float);
    g->n_trailing = 0;
    st = q3t_codegen_add_trailing(g, trailing, N, err, err_len);
    if (st != CTTS_OK) return st;
    memcpy(g->pad, pad, row_bytes);

    q3t_talker_state_reset(g->ts);
    st = q3t_talker_forward(g->t, g->ts, prefill, P, err, err_len);
    if (st == CTTS_OK) st = choose_first(g, err, err_len);
    if (st != CTTS_OK) return st;
    g->started = 1;
    return CTTS_OK;
}

ctts_status q3t_codegen_add_trailing(q3t_codegen *g, const float *rows, int n, char *err,
                                     size_t err_len) {
    if (!g || n < 0 || (n > 0 && !rows))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "codegen: bad trailing rows");
    const size_t row_bytes = (size_t)g->D * sizeof(float);
    if (n > INT_MAX - g->n_trailing || (size_t)(g->n_trailing + n) > SIZE_MAX / row_bytes)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "codegen: too many trailing rows");
    if (g->n_trailing + n > g->cap_trailing) {
        int cap = g->n_trailing + n > 2 * g->cap_trailing ? g->n_trailing + n : 2 * g->cap_trailing;
        float *tr = realloc(g->trailing, (size_t)cap * row_bytes);
        if (!tr) return ctts_err(err, err_len, CTTS_E_OOM, "codegen: out of memory");
        g->trailing = tr;
        g->cap_trailing = cap;
    }
    if (n) memcpy(g->trailing + (size_t)g->n_trailing * g->D, rows, (size_t)n * row_bytes);
    g->n_trailing += n;
    return CTTS_OK;
}

/* The talker input of g's next step: its last frame's embedding plus the
 * trailing text row of this step (or the pad row). */
static ctts_status next_row(q3t_codegen *g, float *row, char *err, size_t err_len) {
    ctts_status st = q3t_code_predictor_frame_embed(g->cp, g->cs, g->t, g->last_codes, row, err, err_len);
    if (st != CTTS_OK) return st;
    const int k = g->n_first - 1; /* talker step index (0-based) */
    const float *add = k < g->n_trailing ? g->trailing + (size_t)k * g->D : g->pad;
    for (int d = 0; d < g->D; d++) row[d] += add[d];
    return CTTS_OK;
}

ctts_status q3t_codegen_next(q3t_codegen *g, int32_t *codes, char *err, size_t err_len) {
    if (!g || !codes) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "codegen: bad arguments");
    if (!g->started) return ctts_err(err, err_len, CTTS_E_STATE, "codegen: next before begin");
    if (g->stop != Q3T_STOP_NONE) return CTTS_DONE;
    ctts_status st;
    if (g->step_pending) {
        /* Feed the frame back: its embedding + the trailing text row of this step. */
        st = next_row(g, g->row, err, err_len);
        if (st != CTTS_OK) return st;
        ctts_backend_stage(g->be, CTTS_STAGE_TALKER);
        st = q3t_talker_forward(g->t, g->ts, g->row, 1, err, err_len);
        if (st == CTTS_OK) st = choose_first(g, err, err_len);
        if (st != CTTS_OK) return st;
        g->step_pending = 0;
        if (g->stop != Q3T_STOP_NONE) return CTTS_DONE;
    }
    if (g->teach_on) g->first[g->n_first - 1] = g->teach[0];
    ctts_backend_stage(g->be, CTTS_STAGE_CODE_PREDICTOR);
    st = q3t_code_predictor_frame(g->cp, g->cs, g->t, q3t_talker_hidden(g->ts),
                                  g->first[g->n_first - 1], &g->p.predictor, &g->rng,
                                  g->teach_on ? g->teach : NULL, g->last_codes, g->teach_logits,
                                  NULL, err, err_len);
    g->teach_on = 0;
    g->teach_logits = NULL;
    if (st != CTTS_OK) return st;
    memcpy(codes, g->last_codes, (size_t)g->G * sizeof *codes);
    g->step_pending = 1;
    return CTTS_OK;
}

ctts_status q3t_codegen_next_many(q3t_codegen *const *g, int B, int32_t *const *codes,
                                  ctts_status *res, char *err, size_t err_len) {
    if (!g || !codes || !res || B <= 0 || B > Q3T_MAX_BATCH)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "codegen: bad batch arguments");
    for (int i = 0; i < B; i++) {
        if (!g[i] || !codes[i] || g[i]->t != g[0]->t || g[i]->cp != g[0]->cp)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "codegen: bad batch entry %d", i);
        if (!g[i]->started) return ctts_err(err, err_len, CTTS_E_STATE, "codegen: next before begin");
        if (g[i]->teach_on) return ctts_err(err, err_len, CTTS_E_STATE, "codegen: teacher forcing is not batched");
    }
    q3t_codegen *g0 = g[0];
    if (B > g0->batch_cap) {
        float *r = realloc(g0->batch_rows, (size_t)B * g0->D * sizeof(float));
        if (!r) return ctts_err(err, err_len, CTTS_E_OOM, "codegen: out of memory");
        g0->batch_rows = r, g0->batch_cap = B;
    }
    /* 1. feed the frames returned last back through the talker, all in one step */
    q3t_talker_state *ts[Q3T_MAX_BATCH];
    int idx[Q3T_MAX_BATCH], n = 0;
    for (int i = 0; i < B; i++) {
        res[i] = g[i]->stop != Q3T_STOP_NONE ? CTTS_DONE : CTTS_OK;
        if (res[i] != CTTS_OK || !g[i]->step_pending) continue;
        ctts_status st = next_row(g[i], g0->batch_rows + (size_t)n * g0->D, err, err_len);
        if (st != CTTS_OK) return st;
        ts[n] = g[i]->ts, idx[n++] = i;
    }
    if (n) {
        ctts_backend_stage(g0->be, CTTS_STAGE_TALKER);
        ctts_status st = q3t_talker_step_many(g0->t, ts, n, g0->batch_rows, err, err_len);
        for (int k = 0; k < n && st == CTTS_OK; k++) {
            q3t_codegen *gi = g[idx[k]];
            st = choose_first(gi, err, err_len);
            gi->step_pending = 0;
            if (gi->stop != Q3T_STOP_NONE) res[idx[k]] = CTTS_DONE;
        }
        if (st != CTTS_OK) return st;
    }
    /* 2. the code predictor for every sequence still going */
    q3t_cp_state *cs[Q3T_MAX_BATCH];
    const float *hid[Q3T_MAX_BATCH];
    int code0[Q3T_MAX_BATCH];
    const nn_sampling_params *sp[Q3T_MAX_BATCH];
    ctts_rng *rng[Q3T_MAX_BATCH];
    int32_t *out[Q3T_MAX_BATCH];
    n = 0;
    for (int i = 0; i < B; i++) {
        if (res[i] != CTTS_OK) continue;
        q3t_codegen *gi = g[i];
        cs[n] = gi->cs, hid[n] = q3t_talker_hidden(gi->ts), code0[n] = gi->first[gi->n_first - 1];
        sp[n] = &gi->p.predictor, rng[n] = &gi->rng, out[n] = gi->last_codes, idx[n++] = i;
    }
    if (!n) return CTTS_OK;
    ctts_backend_stage(g0->be, CTTS_STAGE_CODE_PREDICTOR);
    ctts_status st = q3t_code_predictor_frame_many(g0->cp, cs, n, g0->t, hid, code0, sp, rng, out, err,
                                                   err_len);
    if (st != CTTS_OK) return st;
    for (int k = 0; k < n; k++) {
        q3t_codegen *gi = g[idx[k]];
        memcpy(codes[idx[k]], gi->last_codes, (size_t)gi->G * sizeof *gi->last_codes);
        gi->step_pending = 1;
    }
    return CTTS_OK;
}

ctts_status q3t_codegen_teach_next(q3t_codegen *g, const int32_t *codes, float *cp_logits,
                                   char *err, size_t err_len) {
    if (!g) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "codegen: bad arguments");
    if (codes) {
        const int V = q3t_talker_vocab(g->t), K = q3t_code_predictor_vocab(g->cp);
        for (int i = 0; i < g->G; i++)
            if (codes[i] < 0 || codes[i] >= (i ? K : V))
                return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                                "codegen: forced code %d of group %d outside [0, %d)", codes[i], i,
                                i ? K : V);
        memcpy(g->teach, codes, (size_t)g->G * sizeof *codes);
    }
    g->teach_on = codes != NULL;
    g->teach_logits = cp_logits;
    return CTTS_OK;
}

q3t_stop_reason q3t_codegen_stop_reason(const q3t_codegen *g) { return g->stop; }

const int32_t *q3t_codegen_first_codes(const q3t_codegen *g, int *n) {
    if (n) *n = g->n_first;
    return g->first;
}

const float *q3t_codegen_last_hidden(const q3t_codegen *g) { return q3t_talker_hidden(g->ts); }
const float *q3t_codegen_last_logits(const q3t_codegen *g) { return q3t_talker_logits(g->ts); }
const float *q3t_codegen_last_scores(const q3t_codegen *g) { return g->scores; }
