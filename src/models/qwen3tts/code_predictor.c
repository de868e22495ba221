/*
 * Qwen3-TTS code predictor (see code_predictor.h).
 *
 * Per frame: the two prefill rows and each later single row are gathered
 * from the embedding tables on the device, optionally projected
 * (small_to_mtp_projection), run through the layers with a G-row KV cache
 * that restarts every frame, normed, and scored by that step's lm_head. Only
 * the logits of each step come back to the host for the choice.
 */
#include "models/qwen3tts/code_predictor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "nn/qwen3_layer.h"
#include "nn/transformer.h"

struct q3t_code_predictor {
    ctts_backend *be;
    nn_qwen3_config lc;
    int G, V, Dt, D; /* groups, vocab, talker width, predictor width */
    int talker_vocab;
    const ctts_tensor **emb;  /* [G-1] of [V, Dt] */
    const ctts_tensor **head; /* [G-1] of [V, D] */
    const ctts_tensor *proj;  /* [D, Dt] or NULL */
    float *vecs;              /* owned: norm [D] | proj bias [D] */
    float *norm, *proj_b;
    nn_qwen3_layer_weights *layers;
    int n_layers;
};

struct q3t_cp_state {
    const q3t_code_predictor *cp;
    nn_kv_cache *kv;    /* [n_layers], G rows each */
    /* Buffers for frames of up to cap sequences (1 at first; a batch runs on
     * its first state's, grown on first use): device rows_t [2 cap, Dt] |
     * x [2 cap, D] | h [cap, D] | logits [cap, V] | layer scratch (2 cap rows);
     * host logits [cap, V]. */
    float *dev, *host;
    int cap;
    nn_sampler sampler;
};

static size_t round16(size_t n) { return (n + 15u) & ~(size_t)15u; }

int q3t_code_predictor_groups(const q3t_code_predictor *cp) { return cp->G; }
int q3t_code_predictor_vocab(const q3t_code_predictor *cp) { return cp->V; }

void q3t_code_predictor_free(q3t_code_predictor *cp) {
    if (!cp) return;
    if (cp->layers)
        for (int l = 0; l < cp->n_layers; l++) nn_qwen3_layer_release(&cp->layers[l], cp->be);
    free(cp->layers);
    free(cp->emb);
    free(cp->head);
    if (cp->vecs) cp->be->free_buf(cp->be, cp->vecs);
    free(cp);
}

static ctts_status bind_all(q3t_code_predictor *cp, nn_binder *b, char *err, size_t err_len) {
    const int64_t s_emb[2] = {cp->V, cp->Dt}, s_head[2] = {cp->V, cp->D}, s_d[1] = {cp->D},
                  s_proj[2] = {cp->D, cp->Dt};
    char name[128];
    ctts_status st;
    for (int g = 0; g < cp->G - 1; g++) {
        snprintf(name, sizeof name, "talker.code_predictor.model.codec_embedding.%d.weight", g);
        if ((st = nn_bind_tensor(b, &cp->emb[g], NN_BIND_LINEAR, name, 2, s_emb, err, err_len)))
            return st;
        snprintf(name, sizeof name, "talker.code_predictor.lm_head.%d.weight", g);
        if ((st = nn_bind_tensor(b, &cp->head[g], NN_BIND_LINEAR, name, 2, s_head, err, err_len)))
            return st;
    }
    if ((st = nn_bind_to_f32(b, cp->norm, "talker.code_predictor.model.norm.weight", 1, s_d, err,
                             err_len)))
        return st;
    if (cp->D != cp->Dt) {
        if ((st = nn_bind_tensor(b, &cp->proj, NN_BIND_LINEAR,
                                 "talker.code_predictor.small_to_mtp_projection.weight", 2, s_proj,
                                 err, err_len)) ||
            (st = nn_bind_to_f32(b, cp->proj_b, "talker.code_predictor.small_to_mtp_projection.bias",
                                 1, s_d, err, err_len)))
            return st;
    }
    for (int l = 0; l < cp->n_layers; l++) {
        snprintf(name, sizeof name, "talker.code_predictor.model.layers.%d.", l);
        if ((st = nn_qwen3_layer_bind(b, &cp->lc, name, &cp->layers[l], err, err_len))) return st;
    }
    return CTTS_OK;
}

ctts_status q3t_code_predictor_load(ctts_backend *be, const q3t_talker_config *cfg,
                                    q3t_weight_lookup get, void *get_ctx,
                                    q3t_code_predictor **out, char *err, size_t err_len) {
    if (!out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "code predictor: no output");
    *out = NULL;
    if (!be || !cfg || !get)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "code predictor: bad arguments");
    const q3t_decoder_config *d = &cfg->cp;
    nn_qwen3_config lc = {.d_model = d->hidden_size, .n_heads = d->num_attention_heads,
                          .n_kv_heads = d->num_key_value_heads, .head_dim = d->head_dim,
                          .d_ff = d->intermediate_size, .rms_eps = d->rms_norm_eps,
                          .rope_theta = d->rope_theta};
    ctts_status st = nn_qwen3_config_check(&lc, err, err_len);
    if (st != CTTS_OK) return st;
    const int G = cfg->dec.num_code_groups;
    if (G < 2 || G > 64 || d->num_hidden_layers <= 0 || d->num_hidden_layers > 1024 ||
        d->vocab_size <= 0 || d->vocab_size > (1 << 24) || cfg->dec.hidden_size <= 0 ||
        cfg->dec.hidden_size > (1 << 16) || cfg->dec.vocab_size <= 0)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "code predictor: bad sizes (groups %d, layers %d, vocab %d)", G,
                        d->num_hidden_layers, d->vocab_size);

    q3t_code_predictor *cp = calloc(1, sizeof *cp);
    if (!cp) return ctts_err(err, err_len, CTTS_E_OOM, "code predictor: out of memory");
    cp->be = be;
    cp->lc = lc;
    cp->G = G;
    cp->V = d->vocab_size;
    cp->D = d->hidden_size;
    cp->Dt = cfg->dec.hidden_size;
    cp->talker_vocab = cfg->dec.vocab_size;
    cp->n_layers = d->num_hidden_layers;
    cp->emb = calloc((size_t)(G - 1), sizeof *cp->emb);
    cp->head = calloc((size_t)(G - 1), sizeof *cp->head);
    cp->layers = calloc((size_t)cp->n_layers, sizeof *cp->layers);
    cp->vecs = be->alloc(be, 2 * round16((size_t)cp->D) * sizeof(float));
    if (!cp->emb || !cp->head || !cp->layers || !cp->vecs) {
        q3t_code_predictor_free(cp);
        return ctts_err(err, err_len, CTTS_E_OOM, "code predictor: out of memory");
    }
    cp->norm = cp->vecs;
    cp->proj_b = cp->vecs + round16((size_t)cp->D);

    nn_binder b = {.be = be, .get = get, .get_ctx = get_ctx};
    st = bind_all(cp, &b, err, err_len);
    nn_binder_release(&b);
    if (st != CTTS_OK) {
        q3t_code_predictor_free(cp);
        return st;
    }
    *out = cp;
    return CTTS_OK;
}

/* The frame buffers of the struct comment for B sequences. */
static ctts_status ensure_cap(q3t_cp_state *s, int B) {
    if (B <= s->cap) return CTTS_OK;
    const q3t_code_predictor *cp = s->cp;
    const size_t b = (size_t)B;
    const size_t total = round16(2 * b * cp->Dt) + round16(2 * b * cp->D) + round16(b * cp->D) +
                         round16(b * cp->V) + nn_qwen3_scratch_floats(&cp->lc, 2 * B);
    float *d = cp->be->alloc(cp->be, total * sizeof(float));
    float *h = malloc(b * (size_t)cp->V * sizeof(float));
    if (!d || !h) {
        if (d) cp->be->free_buf(cp->be, d);
        free(h);
        return CTTS_E_OOM;
    }
    if (s->dev) cp->be->free_buf(cp->be, s->dev);
    free(s->host);
    s->dev = d, s->host = h, s->cap = B;
    return CTTS_OK;
}

void q3t_cp_state_free(q3t_cp_state *s) {
    if (!s) return;
    ctts_backend *be = s->cp->be;
    if (s->kv)
        for (int l = 0; l < s->cp->n_layers; l++) nn_kv_cache_release(&s->kv[l], be);
    free(s->kv);
    if (s->dev) be->free_buf(be, s->dev);
    free(s->host);
    nn_sampler_release(&s->sampler);
    free(s);
}

ctts_status q3t_cp_state_new(const q3t_code_predictor *cp, q3t_cp_state **out, char *err,
                             size_t err_len) {
    if (!cp || !out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "code predictor state: bad arguments");
    *out = NULL;
    ctts_backend *be = cp->be;
    q3t_cp_state *s = calloc(1, sizeof *s);
    if (!s) return ctts_err(err, err_len, CTTS_E_OOM, "code predictor state: out of memory");
    s->cp = cp;
    s->kv = calloc((size_t)cp->n_layers, sizeof *s->kv);
    int ok = s->kv && ensure_cap(s, 1) == CTTS_OK && nn_sampler_init(&s->sampler, cp->V) == CTTS_OK;
    for (int l = 0; ok && l < cp->n_layers; l++)
        ok = nn_kv_cache_init(&s->kv[l], be, cp->G, nn_qwen3_kv_width(&cp->lc)) == CTTS_OK;
    if (!ok) {
        q3t_cp_state_free(s);
        return ctts_err(err, err_len, CTTS_E_OOM, "code predictor state: out of memory");
    }
    *out = s;
    return CTTS_OK;
}

/* Frames of B sequences (B <= s[0]->cap) on s[0]'s buffers, as the frame
 * functions describe; force / logits / scores only with B = 1. Each step: the
 * rows [T per sequence, Dt] -> x (projection; without one the rows are
 * gathered straight into x) -> the layers, each sequence at its next cache
 * rows -> norm of each sequence's last row -> lm_head[step] -> host logits ->
 * the sequence's own sampler and RNG. */
static ctts_status run_frames(const q3t_code_predictor *cp, q3t_cp_state *const *s, int B,
                              const q3t_talker *t, const float *const *hidden, const int *code0,
                              const nn_sampling_params *const *p, ctts_rng *const *rng,
                              const int32_t *force, int32_t *const *codes, float *logits,
                              float *scores, char *err, size_t err_len) {
    ctts_backend *be = s[0]->cp->be;
    const int V = cp->V, Dt = cp->Dt, D = cp->D;
    const size_t c = (size_t)s[0]->cap;
    float *rows_t = s[0]->dev, *x = rows_t + round16(2 * c * Dt), *h = x + round16(2 * c * D);
    float *lg = h + round16(c * D), *ls = lg + round16(c * V);
    float *in = cp->proj ? rows_t : x;
    nn_kv_cache *kv[Q3T_MAX_BATCH];
    int rows[Q3T_MAX_BATCH];
    for (int i = 0; i < B; i++) {
        for (int l = 0; l < cp->n_layers; l++) s[i]->kv[l].n = 0;
        codes[i][0] = code0[i];
        be->upload(be, in + 2 * (size_t)i * Dt, hidden[i], (size_t)Dt * sizeof(float));
        be->get_rows(be, in + (2 * (size_t)i + 1) * Dt, q3t_talker_codec_table(t), &code0[i], 1);
    }
    for (int j = 0; j < cp->G - 1; j++) {
        const int T = j == 0 ? 2 : 1; /* rows per sequence */
        if (j > 0)
            for (int i = 0; i < B; i++) be->get_rows(be, in + (size_t)i * Dt, cp->emb[j - 1], &codes[i][j], 1);
        if (cp->proj) be->linear(be, x, rows_t, cp->proj, cp->proj_b, B * T);
        for (int l = 0; l < cp->n_layers; l++) {
            for (int i = 0; i < B; i++) kv[i] = &s[i]->kv[l], rows[i] = T;
            ctts_status st = nn_qwen3_layer_forward_seqs(be, &cp->lc, &cp->layers[l], kv, rows, B, x, ls);
            if (st != CTTS_OK) return ctts_err(err, err_len, st, "code predictor: step %d failed", j);
        }
        for (int i = 0; i < B; i++)
            be->rms_norm(be, h + (size_t)i * D, x + ((size_t)i * T + T - 1) * D, cp->norm, 1, D,
                         cp->lc.rms_eps);
        be->linear(be, lg, h, cp->head[j], NULL, B);
        be->download(be, s[0]->host, lg, (size_t)B * V * sizeof(float));
        for (int i = 0; i < B; i++) {
            float *sc = s[0]->host + (size_t)i * V;
            if (logits) memcpy(logits + (size_t)j * V, sc, (size_t)V * sizeof(float));
            if (scores) sc = memcpy(scores + (size_t)j * V, sc, (size_t)V * sizeof(float));
            const int code = nn_sample_token(&s[i]->sampler, sc, V, p[i], rng[i]);
            codes[i][j + 1] = force ? force[j + 1] : code;
        }
    }
    return CTTS_OK;
}

ctts_status q3t_code_predictor_frame(const q3t_code_predictor *cp, q3t_cp_state *s,
                                     const q3t_talker *t, const float *hidden, int code0,
                                     const nn_sampling_params *p, ctts_rng *rng,
                                     const int32_t *force, int32_t *codes, float *logits,
                                     float *scores, char *err, size_t err_len) {
    if (!cp || !s || !t || !hidden || !codes)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "code predictor: bad frame arguments");
    if (q3t_talker_hidden_size(t) != cp->Dt)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "code predictor: talker width %d, expected %d", q3t_talker_hidden_size(t),
                        cp->Dt);
    if (code0 < 0 || code0 >= q3t_talker_vocab(t))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "code predictor: first code %d outside [0, %d)", code0,
                        q3t_talker_vocab(t));
    if (force)
        for (int g = 1; g < cp->G; g++)
            if (force[g] < 0 || force[g] >= cp->V)
                return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                                "code predictor: forced code %d of group %d outside [0, %d)",
                                force[g], g, cp->V);
    return run_frames(cp, &s, 1, t, &hidden, &code0, &p, &rng, force, &codes, logits, scores, err,
                      err_len);
}

ctts_status q3t_code_predictor_frame_many(const q3t_code_predictor *cp, q3t_cp_state *const *s,
                                          int B, const q3t_talker *t, const float *const *hidden,
                                          const int *code0, const nn_sampling_params *const *p,
                                          ctts_rng *const *rng, int32_t *const *codes, char *err,
                                          size_t err_len) {
    if (!cp || !s || !t || !hidden || !code0 || !p || !rng || !codes || B <= 0 || B > Q3T_MAX_BATCH)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "code predictor: bad batch arguments");
    if (q3t_talker_hidden_size(t) != cp->Dt)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "code predictor: talker width mismatch");
    for (int i = 0; i < B; i++) {
        if (!s[i] || s[i]->cp != cp || !hidden[i] || !p[i] || !rng[i] || !codes[i])
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "code predictor: bad batch entry %d", i);
        if (code0[i] < 0 || code0[i] >= q3t_talker_vocab(t))
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "code predictor: first code %d outside [0, %d)", code0[i],
                            q3t_talker_vocab(t));
    }
    if (ensure_cap(s[0], B) != CTTS_OK)
        return ctts_err(err, err_len, CTTS_E_OOM, "code predictor: out of memory (batch of %d)", B);
    return run_frames(cp, s, B, t, hidden, code0, p, rng, NULL, codes, NULL, NULL, err, err_len);
}

ctts_status q3t_code_predictor_frame_embed(const q3t_code_predictor *cp, q3t_cp_state *s,
                                           const q3t_talker *t, const int32_t *codes, float *out,
                                           char *err, size_t err_len) {
    if (!cp || !s || !t || !codes || !out)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "code predictor: bad embed arguments");
    if (q3t_talker_hidden_size(t) != cp->Dt)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "code predictor: talker width mismatch");
    if (codes[0] < 0 || codes[0] >= q3t_talker_vocab(t))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "frame embedding: code %d of group 0 outside [0, %d)", codes[0],
                        q3t_talker_vocab(t));
    for (int g = 1; g < cp->G; g++)
        if (codes[g] < 0 || codes[g] >= cp->V)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "frame embedding: code %d of group %d outside [0, %d)", codes[g], g,
                            cp->V);
    ctts_backend *be = s->cp->be;
    const int Dt = cp->Dt;
    /* Sum in group order, like torch's reduction over the 16 stacked rows. */
    float *acc = s->dev, *row = s->dev + Dt; /* the rows_t buffer */
    be->get_rows(be, acc, q3t_talker_codec_table(t), &codes[0], 1);
    for (int g = 1; g < cp->G; g++) {
        be->get_rows(be, row, cp->emb[g - 1], &codes[g], 1);
        be->add(be, acc, acc, row, (size_t)Dt);
    }
    be->download(be, out, acc, (size_t)Dt * sizeof(float));
    return CTTS_OK;
}
