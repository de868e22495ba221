/*
 * Qwen3-TTS talker: binding, embeddings, forward and first-code choice
 * (see talker.h for the weights and the data flow).
 *
 * Memory: the talker owns one F32 buffer of small vectors (text-projection
 * biases, final norm) plus the layers' norm buffers; projection weights and
 * tables are views into the caller's weight container. A state owns its KV
 * caches (grown by doubling, old rows copied through the host), one scratch
 * buffer grown to the largest call so far, and host copies of the last
 * hidden state and logits. Device memory is only touched through backend ops.
 */
#include "models/qwen3tts/talker.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "nn/qwen3_layer.h"
#include "nn/transformer.h"

struct q3t_talker {
    ctts_backend *be;
    q3t_talker_config cfg;
    nn_qwen3_config lc;
    int D, TH, V; /* hidden, text hidden, codec vocab */
    const ctts_tensor *text_emb;  /* [text_vocab, TH] */
    const ctts_tensor *fc1, *fc2; /* [TH, TH], [D, TH] */
    const ctts_tensor *codec_emb; /* [V, D] */
    const ctts_tensor *head;      /* [V, D] */
    float *vecs;                  /* owned: fc1_b | fc2_b | norm */
    float *fc1_b, *fc2_b, *norm;  /* [TH], [D], [D] */
    nn_qwen3_layer_weights *layers;
    int n_layers;
    int kv_f16; /* new states cache K / V in half precision */
};

struct q3t_talker_state {
    const q3t_talker *t;
    nn_kv_cache *kv; /* [n_layers] */
    int kv_cap;
    float *scratch; /* device */
    size_t scratch_cap;
    float *hid_dev, *logit_dev; /* device [D], [V] */
    float *hidden, *logits;     /* host [D], [V] */
    float *scores;              /* host [V]: processed scores when the caller keeps none */
    nn_sampler sampler;
};

static size_t round16(size_t n) { return (n + 15u) & ~(size_t)15u; }

/* Rows per pass of a long prefill / text embedding (bounds the scratch). */
#define Q3T_ROW_CHUNK 256

const q3t_talker_config *q3t_talker_cfg(const q3t_talker *t) { return &t->cfg; }
void q3t_talker_set_kv_f16(q3t_talker *t, int on) { t->kv_f16 = on && t->lc.head_dim <= 512; }
int q3t_talker_hidden_size(const q3t_talker *t) { return t->D; }
int q3t_talker_vocab(const q3t_talker *t) { return t->V; }
ctts_backend *q3t_talker_backend(const q3t_talker *t) { return t->be; }
const ctts_tensor *q3t_talker_codec_table(const q3t_talker *t) { return t->codec_emb; }

void q3t_talker_free(q3t_talker *t) {
    if (!t) return;
    if (t->layers)
        for (int l = 0; l < t->n_layers; l++) nn_qwen3_layer_release(&t->layers[l], t->be);
    free(t->layers);
    if (t->vecs) t->be->free_buf(t->be, t->vecs);
    free(t);
}

static ctts_status bind_all(q3t_talker *t, nn_binder *b, char *err, size_t err_len) {
    const q3t_talker_config *c = &t->cfg;
    const int64_t s_te[2] = {c->text_vocab_size, t->TH}, s_fc1[2] = {t->TH, t->TH},
                  s_fc2[2] = {t->D, t->TH}, s_tab[2] = {t->V, t->D}, s_th[1] = {t->TH},
                  s_d[1] = {t->D};
    ctts_status st;
    if ((st = nn_bind_tensor(b, &t->text_emb, NN_BIND_LINEAR, "talker.model.text_embedding.weight",
                             2, s_te, err, err_len)) ||
        (st = nn_bind_tensor(b, &t->fc1, NN_BIND_LINEAR,
                             "talker.text_projection.linear_fc1.weight", 2, s_fc1, err, err_len)) ||
        (st = nn_bind_tensor(b, &t->fc2, NN_BIND_LINEAR,
                             "talker.text_projection.linear_fc2.weight", 2, s_fc2, err, err_len)) ||
        (st = nn_bind_tensor(b, &t->codec_emb, NN_BIND_LINEAR,
                             "talker.model.codec_embedding.weight", 2, s_tab, err, err_len)) ||
        (st = nn_bind_tensor(b, &t->head, NN_BIND_LINEAR, "talker.codec_head.weight", 2, s_tab,
                             err, err_len)) ||
        (st = nn_bind_to_f32(b, t->fc1_b, "talker.text_projection.linear_fc1.bias", 1, s_th, err,
                             err_len)) ||
        (st = nn_bind_to_f32(b, t->fc2_b, "talker.text_projection.linear_fc2.bias", 1, s_d, err,
                             err_len)) ||
        (st = nn_bind_to_f32(b, t->norm, "talker.model.norm.weight", 1, s_d, err, err_len)))
        return st;
    char prefix[64];
    for (int l = 0; l < t->n_layers; l++) {
        snprintf(prefix, sizeof prefix, "talker.model.layers.%d.", l);
        st = nn_qwen3_layer_bind(b, &t->lc, prefix, &t->layers[l], err, err_len);
        if (st != CTTS_OK) return st;
    }
    return CTTS_OK;
}

ctts_status q3t_talker_load(ctts_backend *be, const q3t_talker_config *cfg, q3t_weight_lookup get,
                            void *get_ctx, q3t_talker **out, char *err, size_t err_len) {
    if (!out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "talker: no output");
    *out = NULL;
    if (!be || !cfg || !get) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "talker: bad arguments");
    const q3t_decoder_config *d = &cfg->dec;
    nn_qwen3_config lc = {.d_model = d->hidden_size, .n_heads = d->num_attention_heads,
                          .n_kv_heads = d->num_key_value_heads, .head_dim = d->head_dim,
                          .d_ff = d->intermediate_size, .rms_eps = d->rms_norm_eps,
                          .rope_theta = d->rope_theta};
    ctts_status st = nn_qwen3_config_check(&lc, err, err_len);
    if (st != CTTS_OK) return st;
    if (d->num_hidden_layers <= 0 || d->num_hidden_layers > 1024 || d->vocab_size <= 0 ||
        d->vocab_size > (1 << 24) || cfg->text_vocab_size <= 0 || cfg->text_hidden_size <= 0 ||
        cfg->text_hidden_size > (1 << 16))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "talker: bad sizes (layers %d, vocab %d, text vocab %d, text hidden %d)",
                        d->num_hidden_layers, d->vocab_size, cfg->text_vocab_size,
                        cfg->text_hidden_size);
    if (cfg->codec_eos_token_id < 0 || cfg->codec_eos_token_id >= d->vocab_size)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "talker: codec_eos_token_id %d outside the vocabulary (%d)",
                        cfg->codec_eos_token_id, d->vocab_size);

    q3t_talker *t = calloc(1, sizeof *t);
    if (!t) return ctts_err(err, err_len, CTTS_E_OOM, "talker: out of memory");
    t->be = be;
    t->cfg = *cfg;
    t->lc = lc;
    t->D = d->hidden_size;
    t->TH = cfg->text_hidden_size;
    t->V = d->vocab_size;
    t->n_layers = d->num_hidden_layers;
    t->layers = calloc((size_t)t->n_layers, sizeof *t->layers);
    const size_t o2 = round16((size_t)t->TH), o3 = o2 + round16((size_t)t->D);
    t->vecs = be->alloc(be, (o3 + round16((size_t)t->D)) * sizeof(float));
    if (!t->layers || !t->vecs) {
        q3t_talker_free(t);
        return ctts_err(err, err_len, CTTS_E_OOM, "talker: out of memory");
    }
    t->fc1_b = t->vecs;
    t->fc2_b = t->vecs + o2;
    t->norm = t->vecs + o3;

    nn_binder b = {.be = be, .get = get, .get_ctx = get_ctx};
    st = bind_all(t, &b, err, err_len);
    nn_binder_release(&b);
    if (st != CTTS_OK) {
        q3t_talker_free(t);
        return st;
    }
    *out = t;
    return CTTS_OK;
}

/* ---- state ---- */

void q3t_talker_state_free(q3t_talker_state *s) {
    if (!s) return;
    ctts_backend *be = s->t->be;
    if (s->kv)
        for (int l = 0; l < s->t->n_layers; l++) nn_kv_cache_release(&s->kv[l], be);
    free(s->kv);
    if (s->scratch) be->free_buf(be, s->scratch);
    if (s->hid_dev) be->free_buf(be, s->hid_dev);
    if (s->logit_dev) be->free_buf(be, s->logit_dev);
    free(s->hidden);
    free(s->logits);
    free(s->scores);
    nn_sampler_release(&s->sampler);
    free(s);
}

ctts_status q3t_talker_state_new(const q3t_talker *t, q3t_talker_state **out, char *err,
                                 size_t err_len) {
    if (!out || !t) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "talker state: bad arguments");
    *out = NULL;
    q3t_talker_state *s = calloc(1, sizeof *s);
    if (!s) return ctts_err(err, err_len, CTTS_E_OOM, "talker state: out of memory");
    s->t = t;
    s->kv = calloc((size_t)t->n_layers, sizeof *s->kv);
    s->hid_dev = t->be->alloc(t->be, (size_t)t->D * sizeof(float));
    s->logit_dev = t->be->alloc(t->be, (size_t)t->V * sizeof(float));
    s->hidden = calloc((size_t)t->D, sizeof(float));
    s->logits = calloc((size_t)t->V, sizeof(float));
    s->scores = calloc((size_t)t->V, sizeof(float));
    if (!s->kv || !s->hid_dev || !s->logit_dev || !s->hidden || !s->logits || !s->scores ||
        nn_sampler_init(&s->sampler, t->V) != CTTS_OK) {
        q3t_talker_state_free(s);
        return ctts_err(err, err_len, CTTS_E_OOM, "talker state: out of memory");
    }
    /* Empty caches of the chosen dtype; ensure_kv allocates them. */
    for (int l = 0; l < t->n_layers; l++) {
        const ctts_status st =
            t->kv_f16 ? nn_kv_cache_init_f16(&s->kv[l], t->be, 0, t->lc.n_kv_heads, t->lc.head_dim)
                      : nn_kv_cache_init(&s->kv[l], t->be, 0, nn_qwen3_kv_width(&t->lc));
        if (st != CTTS_OK) {
            q3t_talker_state_free(s);
            return ctts_err(err, err_len, st, "talker state: no %s KV cache for %d heads of %d",
                            t->kv_f16 ? "F16" : "F32", t->lc.n_kv_heads, t->lc.head_dim);
        }
    }
    *out = s;
    return CTTS_OK;
}

void q3t_talker_state_reset(q3t_talker_state *s) {
    if (!s) return;
    for (int l = 0; l < s->t->n_layers; l++) s->kv[l].n = 0;
}

int q3t_talker_state_positions(const q3t_talker_state *s) { return s ? s->kv[0].n : 0; }

/* Grows every layer's cache to hold need rows (capacity doubles), keeping the
 * filled rows. */
static ctts_status ensure_kv(q3t_talker_state *s, int need) {
    if (need <= s->kv_cap) return CTTS_OK;
    int cap = s->kv_cap > 0 ? s->kv_cap : 64;
    while (cap < need) {
        if (cap > (1 << 24)) return CTTS_E_OOM;
        cap *= 2;
    }
    for (int l = 0; l < s->t->n_layers; l++) {
        const ctts_status st = nn_kv_cache_resize(&s->kv[l], s->t->be, cap);
        if (st != CTTS_OK) return st;
    }
    s->kv_cap = cap;
    return CTTS_OK;
}

static ctts_status ensure_scratch(q3t_talker_state *s, size_t floats) {
    if (floats <= s->scratch_cap) return CTTS_OK;
    ctts_backend *be = s->t->be;
    if (floats > SIZE_MAX / sizeof(float)) return CTTS_E_OOM;
    float *p = be->alloc(be, floats * sizeof(float));
    if (!p) return CTTS_E_OOM;
    if (s->scratch) be->free_buf(be, s->scratch);
    s->scratch = p;
    s->scratch_cap = floats;
    return CTTS_OK;
}

/* ---- embeddings ---- */

static ctts_status check_ids(const int32_t *ids, int n, int limit, const char *what, char *err,
                             size_t err_len) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= limit)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "talker: %s id %d outside [0, %d)",
                            what, ids[i], limit);
    return CTTS_OK;
}

ctts_status q3t_talker_embed_text(const q3t_talker *t, q3t_talker_state *s, const int32_t *ids,
                                  int n, float *out, char *err, size_t err_len) {
    if (!t || !s || (n > 0 && (!ids || !out)) || n < 0 || n > (1 << 20))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "talker: bad text embedding arguments");
    if (n == 0) return CTTS_OK;
    ctts_status st = check_ids(ids, n, t->cfg.text_vocab_size, "text", err, err_len);
    if (st != CTTS_OK) return st;
    ctts_backend *be = s->t->be;
    const int C = n < Q3T_ROW_CHUNK ? n : Q3T_ROW_CHUNK;
    const size_t e_sz = round16((size_t)C * (size_t)t->TH);
    if (ensure_scratch(s, 2 * e_sz + round16((size_t)C * (size_t)t->D)) != CTTS_OK)
        return ctts_err(err, err_len, CTTS_E_OOM, "talker: out of memory (%d text rows)", n);
    float *e = s->scratch, *h = e + e_sz, *y = h + e_sz;
    for (int r0 = 0; r0 < n; r0 += C) {
        const int m = n - r0 < C ? n - r0 : C;
        be->get_rows(be, e, t->text_emb, ids + r0, m);
        be->linear(be, h, e, t->fc1, t->fc1_b, m);
        be->act(be, h, h, (size_t)m * (size_t)t->TH, CTTS_ACT_SILU);
        be->linear(be, y, h, t->fc2, t->fc2_b, m);
        be->download(be, out + (size_t)r0 * t->D, y, (size_t)m * (size_t)t->D * sizeof(float));
    }
    return CTTS_OK;
}

ctts_status q3t_talker_embed_codec(const q3t_talker *t, q3t_talker_state *s, const int32_t *ids,
                                   int n, float *out, char *err, size_t err_len) {
    if (!t || !s || (n > 0 && (!ids || !out)) || n < 0 || n > (1 << 20))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "talker: bad codec embedding arguments");
    if (n == 0) return CTTS_OK;
    ctts_status st = check_ids(ids, n, t->V, "codec", err, err_len);
    if (st != CTTS_OK) return st;
    const int C = n < Q3T_ROW_CHUNK ? n : Q3T_ROW_CHUNK;
    if (ensure_scratch(s, (size_t)C * (size_t)t->D) != CTTS_OK)
        return ctts_err(err, err_len, CTTS_E_OOM, "talker: out of memory (%d codec rows)", n);
    for (int r0 = 0; r0 < n; r0 += C) {
        const int m = n - r0 < C ? n - r0 : C;
        t->be->get_rows(t->be, s->scratch, t->codec_emb, ids + r0, m);
        t->be->download(t->be, out + (size_t)r0 * t->D, s->scratch,
                        (size_t)m * (size_t)t->D * sizeof(float));
    }
    return CTTS_OK;
}

/* ---- forward ---- */

ctts_status q3t_talker_forward(const q3t_talker *t, q3t_talker_state *s, const float *x, int T,
                               char *err, size_t err_len) {
    if (!t || !s || !x || T <= 0 || T > (1 << 20))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "talker: bad forward arguments");
    ctts_backend *be = s->t->be;
    const int D = t->D, pos0 = s->kv[0].n;
    const int max_pos = t->cfg.dec.max_position_embeddings;
    if (pos0 > INT32_MAX - T || (max_pos > 0 && pos0 + T > max_pos))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "talker: %d positions exceed max_position_embeddings %d", pos0 + T,
                        max_pos);
    const int C = T < Q3T_ROW_CHUNK ? T : Q3T_ROW_CHUNK;
    const size_t xs = round16((size_t)C * (size_t)D);
    if (ensure_kv(s, pos0 + T) != CTTS_OK ||
        ensure_scratch(s, xs + nn_qwen3_scratch_floats(&t->lc, C)) != CTTS_OK)
        return ctts_err(err, err_len, CTTS_E_OOM, "talker: out of memory (%d positions)",
                        pos0 + T);
    float *xd = s->scratch, *ls = s->scratch + xs;
    /* Long prompts run in chunks of rows: each chunk attends to the cache
     * rows before it, so the result is the same and scratch stays bounded. */
    int n = C;
    for (int r0 = 0; r0 < T; r0 += n) {
        n = T - r0 < C ? T - r0 : C;
        be->upload(be, xd, x + (size_t)r0 * D, (size_t)n * (size_t)D * sizeof(float));
        for (int l = 0; l < t->n_layers; l++) {
            ctts_status st =
                nn_qwen3_layer_forward(be, &t->lc, &t->layers[l], &s->kv[l], xd, n, pos0 + r0, ls);
            if (st != CTTS_OK) return ctts_err(err, err_len, st, "talker: layer %d failed", l);
        }
    }
    T = n; /* rows of the last chunk: its last row is the output */
    be->rms_norm(be, s->hid_dev, xd + (size_t)(T - 1) * D, t->norm, 1, D, t->lc.rms_eps);
    be->linear(be, s->logit_dev, s->hid_dev, t->head, NULL, 1);
    be->download(be, s->hidden, s->hid_dev, (size_t)D * sizeof(float));
    be->download(be, s->logits, s->logit_dev, (size_t)t->V * sizeof(float));
    return CTTS_OK;
}

ctts_status q3t_talker_step_many(const q3t_talker *t, q3t_talker_state *const *s, int B,
                                 const float *x, char *err, size_t err_len) {
    if (!t || !s || !x || B <= 0 || B > Q3T_MAX_BATCH)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "talker: bad batch arguments");
    nn_kv_cache *kv[Q3T_MAX_BATCH];
    int rows[Q3T_MAX_BATCH];
    const int max_pos = t->cfg.dec.max_position_embeddings;
    for (int i = 0; i < B; i++) {
        if (!s[i] || s[i]->t != t)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "talker: state %d of another talker", i);
        const int pos = s[i]->kv[0].n;
        if (pos == INT32_MAX || (max_pos > 0 && pos + 1 > max_pos))
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "talker: %d positions exceed max_position_embeddings %d", pos + 1, max_pos);
        if (ensure_kv(s[i], pos + 1) != CTTS_OK)
            return ctts_err(err, err_len, CTTS_E_OOM, "talker: out of memory (%d positions)", pos + 1);
        rows[i] = 1;
    }
    /* The batch's rows, layer scratch, hidden rows and logits live in the first state's scratch. */
    ctts_backend *be = s[0]->t->be;
    const int D = t->D, V = t->V;
    const size_t xs = round16((size_t)B * D), ls = nn_qwen3_scratch_floats(&t->lc, B);
    if (ensure_scratch(s[0], 2 * xs + ls + (size_t)B * V) != CTTS_OK)
        return ctts_err(err, err_len, CTTS_E_OOM, "talker: out of memory (batch of %d)", B);
    float *xd = s[0]->scratch, *hd = xd + xs, *lsd = hd + xs, *lg = lsd + ls;
    be->upload(be, xd, x, (size_t)B * D * sizeof(float));
    for (int l = 0; l < t->n_layers; l++) {
        for (int i = 0; i < B; i++) kv[i] = &s[i]->kv[l];
        ctts_status st = nn_qwen3_layer_forward_seqs(be, &t->lc, &t->layers[l], kv, rows, B, xd, lsd);
        if (st != CTTS_OK) return ctts_err(err, err_len, st, "talker: layer %d failed", l);
    }
    be->rms_norm(be, hd, xd, t->norm, B, D, t->lc.rms_eps);
    be->linear(be, lg, hd, t->head, NULL, B);
    for (int i = 0; i < B; i++) {
        be->download(be, s[i]->hidden, hd + (size_t)i * D, (size_t)D * sizeof(float));
        be->download(be, s[i]->logits, lg + (size_t)i * V, (size_t)V * sizeof(float));
    }
    return CTTS_OK;
}

const float *q3t_talker_hidden(const q3t_talker_state *s) { return s->hidden; }
const float *q3t_talker_logits(const q3t_talker_state *s) { return s->logits; }

/* ---- first-code choice ---- */

void q3t_talker_process(const q3t_talker *t, q3t_talker_state *s, const int32_t *hist, int n_hist,
                        float repetition_penalty, float *scores) {
    const int V = t->V, eos = t->cfg.codec_eos_token_id;
    memcpy(scores, s->logits, (size_t)V * sizeof *scores);
    if (n_hist > 0)
        nn_scores_repetition_penalty(&s->sampler, scores, V, hist, n_hist, repetition_penalty);
    if (n_hist < Q3T_MIN_NEW_TOKENS) scores[eos] = -INFINITY;
    nn_scores_mask(scores, V, V - Q3T_SUPPRESS_TAIL, V, eos);
}

int q3t_talker_choose(const q3t_talker *t, q3t_talker_state *s, const int32_t *hist, int n_hist,
                      int min_new_tokens, const nn_sampling_params *p, ctts_rng *rng,
                      float *scores) {
    float *sc = scores ? scores : s->scores;
    q3t_talker_process(t, s, hist, n_hist, p ? p->repetition_penalty : 1.0f, sc);
    if (n_hist < min_new_tokens) sc[t->cfg.codec_eos_token_id] = -INFINITY;
    return nn_sample_token(&s->sampler, sc, t->V, p, rng);
}
