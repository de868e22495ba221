/*
 * Qwen3 decoder layer with a KV cache (see qwen3_layer.h).
 *
 * New K and V rows are written by linear() straight into the cache rows they
 * belong to; q/k RMSNorm and RoPE then run in place on q and on those rows.
 * Every number goes through backend ops; this file does bookkeeping only,
 * plus the one-time conversion of norm vectors to F32 at bind time.
 */
#include "nn/qwen3_layer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

/* Scratch regions start on 64-byte boundaries (16 floats). */
static size_t round16(size_t n) { return (n + 15u) & ~(size_t)15u; }

ctts_status nn_qwen3_config_check(const nn_qwen3_config *c, char *err, size_t err_len) {
    if (!c) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "qwen3 layer: no config");
    if (c->d_model <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 ||
        c->d_ff <= 0)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "qwen3 layer: bad sizes (hidden %d, heads %d, kv heads %d, head_dim %d, "
                        "intermediate %d)",
                        c->d_model, c->n_heads, c->n_kv_heads, c->head_dim, c->d_ff);
    if (c->n_heads % c->n_kv_heads)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "qwen3 layer: %d heads are not a multiple of %d KV heads", c->n_heads,
                        c->n_kv_heads);
    if (c->head_dim % 2)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "qwen3 layer: head_dim %d is odd",
                        c->head_dim);
    if (!(c->rms_eps >= 0.0f) || !(c->rope_theta > 0.0f))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "qwen3 layer: rms_norm_eps must be >= 0 and rope_theta > 0");
    /* Keep every product of sizes we form well inside int. */
    if (c->d_model > (1 << 16) || c->d_ff > (1 << 18) || c->n_heads > 1024 ||
        c->head_dim > 1024 || (int64_t)c->n_heads * c->head_dim > (1 << 16))
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "qwen3 layer: sizes too large");
    return CTTS_OK;
}

int nn_qwen3_kv_width(const nn_qwen3_config *cfg) { return cfg->n_kv_heads * cfg->head_dim; }

ctts_status nn_bind_to_f32(nn_binder *b, float *dst, const char *name, int ndim,
                           const int64_t *shape, char *err, size_t err_len) {
    const ctts_tensor *t = NULL;
    ctts_status st = nn_bind_tensor(b, &t, NN_BIND_LINEAR, name, ndim, shape, err, err_len);
    if (st != CTTS_OK) return st;
    if (t->dtype != CTTS_DT_F32 && t->dtype != CTTS_DT_BF16 && t->dtype != CTTS_DT_F16)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "tensor '%s': dtype %s, expected F32, BF16 or F16", name,
                        ctts_dtype_name(t->dtype));
    const int64_t n = ctts_tensor_numel(t);
    float *tmp = malloc((size_t)(n > 0 ? n : 1) * sizeof *tmp);
    if (!tmp) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory reading '%s'", name);
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == CTTS_DT_F32) {
            memcpy(&tmp[i], p + 4 * i, 4);
        } else {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            tmp[i] = t->dtype == CTTS_DT_BF16 ? ctts_bf16_to_f32(h) : ctts_f16_to_f32(h);
        }
    }
    b->be->upload(b->be, dst, tmp, (size_t)n * sizeof *tmp);
    free(tmp);
    return CTTS_OK;
}

void nn_qwen3_layer_release(nn_qwen3_layer_weights *w, ctts_backend *be) {
    if (!w) return;
    if (w->norms && be) be->free_buf(be, w->norms);
    memset(w, 0, sizeof *w);
}

ctts_status nn_qwen3_layer_bind(nn_binder *b, const nn_qwen3_config *cfg, const char *prefix,
                                nn_qwen3_layer_weights *w, char *err, size_t err_len) {
    ctts_status st = nn_qwen3_config_check(cfg, err, err_len);
    if (st != CTTS_OK) return st;
    if (!b || !b->be || !prefix || !w)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bind: bad arguments");
    memset(w, 0, sizeof *w);
    const int64_t D = cfg->d_model, F = cfg->d_ff, Dh = cfg->head_dim;
    const int64_t QD = (int64_t)cfg->n_heads * Dh, KD = (int64_t)cfg->n_kv_heads * Dh;
    const int64_t s_q[2] = {QD, D}, s_kv[2] = {KD, D}, s_o[2] = {D, QD}, s_up[2] = {F, D},
                  s_down[2] = {D, F};
    const struct {
        const ctts_tensor **dst;
        const char *suffix;
        const int64_t *shape;
    } lin[] = {
        {&w->q_proj, "self_attn.q_proj.weight", s_q},
        {&w->k_proj, "self_attn.k_proj.weight", s_kv},
        {&w->v_proj, "self_attn.v_proj.weight", s_kv},
        {&w->o_proj, "self_attn.o_proj.weight", s_o},
        {&w->gate, "mlp.gate_proj.weight", s_up},
        {&w->up, "mlp.up_proj.weight", s_up},
        {&w->down, "mlp.down_proj.weight", s_down},
    };
    char name[512];
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
        int len = snprintf(name, sizeof name, "%s%s", prefix, lin[i].suffix);
        if (len < 0 || (size_t)len >= sizeof name)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bind: name too long for '%s'",
                            prefix);
        st = nn_bind_tensor(b, lin[i].dst, NN_BIND_LINEAR, name, 2, lin[i].shape, err, err_len);
        if (st != CTTS_OK) return st;
    }

    /* Norm vectors: one F32 buffer, each part on a 16-float boundary. */
    const size_t o_ln2 = round16((size_t)D), o_q = o_ln2 + round16((size_t)D),
                 o_k = o_q + round16((size_t)Dh), total = o_k + round16((size_t)Dh);
    w->norms = b->be->alloc(b->be, total * sizeof(float));
    if (!w->norms) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory (%s norms)", prefix);
    w->ln1 = w->norms;
    w->ln2 = w->norms + o_ln2;
    w->q_norm = w->norms + o_q;
    w->k_norm = w->norms + o_k;
    const int64_t s_d[1] = {D}, s_dh[1] = {Dh};
    const struct {
        float *dst;
        const char *suffix;
        const int64_t *shape;
    } vec[] = {
        {w->ln1, "input_layernorm.weight", s_d},
        {w->ln2, "post_attention_layernorm.weight", s_d},
        {w->q_norm, "self_attn.q_norm.weight", s_dh},
        {w->k_norm, "self_attn.k_norm.weight", s_dh},
    };
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        int len = snprintf(name, sizeof name, "%s%s", prefix, vec[i].suffix);
        if (len < 0 || (size_t)len >= sizeof name)
            st = ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bind: name too long for '%s'",
                          prefix);
        else
            st = nn_bind_to_f32(b, vec[i].dst, name, 1, vec[i].shape, err, err_len);
        if (st != CTTS_OK) {
            nn_qwen3_layer_release(w, b->be);
            return st;
        }
    }
    return CTTS_OK;
}

size_t nn_qwen3_scratch_floats(const nn_qwen3_config *cfg, int T) {
    if (!cfg || T <= 0) return 0;
    const size_t t = (size_t)T, d = (size_t)cfg->d_model, f = (size_t)cfg->d_ff,
                 qd = (size_t)cfg->n_heads * (size_t)cfg->head_dim;
    const size_t kd = (size_t)cfg->n_kv_heads * (size_t)cfg->head_dim;
    /* xn [T, D]; q, att [T, H*Dh]; g, u [T, d_ff]; new K, V rows [T, Hkv*Dh] (F16 caches). */
    return round16(t * d) + 2 * round16(t * qd) + 2 * round16(t * f) + 2 * round16(t * kd);
}

/* The rest of a layer after attention: x += o_proj(att), then the SwiGLU
 * branch (xn, g, u: scratch of T rows). */
static void finish_layer(ctts_backend *be, const nn_qwen3_config *cfg,
                         const nn_qwen3_layer_weights *w, float *x, int T, float *xn,
                         const float *att, float *g, float *u) {
    const int D = cfg->d_model;
    const size_t t = (size_t)T;
    be->linear(be, xn, att, w->o_proj, NULL, T);
    be->add(be, x, x, xn, t * (size_t)D);
    be->rms_norm(be, xn, x, w->ln2, T, D, cfg->rms_eps);
    float *const gu_out[2] = {g, u};
    const ctts_tensor *const gu_w[2] = {w->gate, w->up};
    be->linear_multi(be, 2, gu_out, xn, gu_w, T);
    be->act(be, g, g, t * (size_t)cfg->d_ff, CTTS_ACT_SILU);
    be->mul(be, g, g, u, t * (size_t)cfg->d_ff);
    be->linear(be, xn, g, w->down, NULL, T);
    be->add(be, x, x, xn, t * (size_t)D);
}

ctts_status nn_qwen3_layer_forward_seqs(ctts_backend *be, const nn_qwen3_config *cfg,
                                        const nn_qwen3_layer_weights *w, nn_kv_cache *const *kv,
                                        const int *rows, int n_seq, float *x, float *scratch) {
    if (!be || !cfg || !w || !kv || !rows || n_seq <= 0 || !x || !scratch) return CTTS_E_INVALID_ARG;
    if (!w->q_proj || !w->norms) return CTTS_E_STATE;
    int T = 0;
    for (int i = 0; i < n_seq; i++) {
        const nn_kv_cache *c = kv[i];
        const int f16 = c && c->dtype == CTTS_DT_F16;
        if (!c || c->d_model != nn_qwen3_kv_width(cfg) || (f16 && c->n_heads != cfg->n_kv_heads) ||
            (!f16 && c->dtype != CTTS_DT_F32))
            return CTTS_E_STATE;
        if (rows[i] <= 0 || c->n < 0 || rows[i] > c->capacity - c->n || T > INT32_MAX - rows[i])
            return CTTS_E_INVALID_ARG;
        T += rows[i];
    }
    const int D = cfg->d_model, H = cfg->n_heads, Hkv = cfg->n_kv_heads, Dh = cfg->head_dim;
    const int QD = H * Dh, KD = Hkv * Dh;
    const size_t t = (size_t)T;
    float *xn = scratch;                           /* [T, D] normed input / branch output */
    float *q = xn + round16(t * (size_t)D);        /* [T, QD] */
    float *att = q + round16(t * (size_t)QD);      /* [T, QD] */
    float *g = att + round16(t * (size_t)QD);      /* [T, d_ff] */
    float *u = g + round16(t * (size_t)cfg->d_ff); /* [T, d_ff] */
    /* New K / V rows: through scratch, or, for one sequence with an F32
     * cache, straight into the cache. */
    const int direct = n_seq == 1 && kv[0]->dtype == CTTS_DT_F32;
    float *k_new = direct ? (float *)kv[0]->k + (size_t)kv[0]->n * KD : u + round16(t * (size_t)cfg->d_ff);
    float *v_new = direct ? (float *)kv[0]->v + (size_t)kv[0]->n * KD : k_new + round16(t * (size_t)KD);

    be->rms_norm(be, xn, x, w->ln1, T, D, cfg->rms_eps);
    float *const qkv_out[3] = {q, k_new, v_new};
    const ctts_tensor *const qkv_w[3] = {w->q_proj, w->k_proj, w->v_proj};
    be->linear_multi(be, 3, qkv_out, xn, qkv_w, T); /* the weights read once for every sequence */
    be->rms_norm(be, q, q, w->q_norm, T * H, Dh, cfg->rms_eps);
    be->rms_norm(be, k_new, k_new, w->k_norm, T * Hkv, Dh, cfg->rms_eps);
    for (int i = 0, r0 = 0; i < n_seq; r0 += rows[i++]) {
        nn_kv_cache *c = kv[i];
        const int n = rows[i];
        float *qi = q + (size_t)r0 * QD, *ki = k_new + (size_t)r0 * KD, *vi = v_new + (size_t)r0 * KD;
        float *ai = att + (size_t)r0 * QD;
        be->rope_half(be, qi, n, H, Dh, QD, c->n, cfg->rope_theta);
        be->rope_half(be, ki, n, Hkv, Dh, KD, c->n, cfg->rope_theta);
        if (c->dtype == CTTS_DT_F16) {
            be->kv_store_f16(be, c->k, c->v, ki, vi, KD, n, c->n, Hkv, Dh, c->capacity);
            be->attention_gqa_f16(be, ai, qi, QD, c->k, c->v, c->capacity, n, c->n + n, c->n, H,
                                  Hkv, Dh, 0);
        } else {
            if (!direct) {
                be->copy(be, (float *)c->k + (size_t)c->n * KD, ki, (size_t)n * KD);
                be->copy(be, (float *)c->v + (size_t)c->n * KD, vi, (size_t)n * KD);
            }
            be->attention_gqa(be, ai, qi, QD, c->k, c->v, KD, n, c->n + n, c->n, H, Hkv, Dh, 0);
        }
        c->n += n;
    }
    finish_layer(be, cfg, w, x, T, xn, att, g, u);
    return CTTS_OK;
}

ctts_status nn_qwen3_layer_forward(ctts_backend *be, const nn_qwen3_config *cfg,
                                   const nn_qwen3_layer_weights *w, nn_kv_cache *kv, float *x,
                                   int T, int pos0, float *scratch) {
    if (!kv || pos0 != kv->n) return CTTS_E_INVALID_ARG; /* rows continue the cache */
    return nn_qwen3_layer_forward_seqs(be, cfg, w, &kv, &T, 1, x, scratch);
}
