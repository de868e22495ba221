/*
 * Codec transformer layer with a windowed KV cache (see codec_layer.h).
 *
 * New K and V rows are written by linear() straight into their cache rows and
 * RoPE runs in place on them; every number goes through backend ops. The only
 * host work is moving the newest window-1 cache rows to the front.
 */
#include "nn/codec_layer.h"

#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "nn/qwen3_layer.h"

#define CL_DIM_MAX (1 << 16)

static size_t round16(size_t n) { return (n + 15u) & ~(size_t)15u; }

ctts_status nn_codec_layer_config_check(const nn_codec_layer_config *c, char *err,
                                        size_t err_len) {
    if (!c) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "codec layer: no config");
    if (c->d_model <= 0 || c->d_model > CL_DIM_MAX || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
        c->n_heads % c->n_kv_heads || c->head_dim < 2 || c->head_dim % 2 || c->d_ff <= 0 ||
        c->d_ff > (1 << 20) || (int64_t)c->n_heads * c->head_dim > CL_DIM_MAX)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "codec layer: bad sizes (d_model %d, heads %d/%d, head_dim %d, d_ff %d)",
                        c->d_model, c->n_heads, c->n_kv_heads, c->head_dim, c->d_ff);
    if (!(c->norm_eps >= 0.0f) || !(c->rope_theta > 0.0f) || c->window < 0 ||
        c->window > (1 << 24))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "codec layer: bad eps %g / rope_theta %g / window %d", (double)c->norm_eps,
                        (double)c->rope_theta, c->window);
    if ((unsigned)c->norm > NN_CODEC_NORM_LAYER || (unsigned)c->mlp > NN_CODEC_MLP_GELU)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "codec layer: bad norm / mlp kind");
    return CTTS_OK;
}

void nn_codec_layer_release(nn_codec_layer_weights *w, ctts_backend *be) {
    if (!w) return;
    if (w->vecs && be) be->free_buf(be, w->vecs);
    memset(w, 0, sizeof *w);
}

ctts_status nn_codec_layer_bind(nn_binder *b, const nn_codec_layer_config *cfg,
                                const char *prefix, nn_codec_layer_weights *w, char *err,
                                size_t err_len) {
    ctts_status st = nn_codec_layer_config_check(cfg, err, err_len);
    if (st != CTTS_OK) return st;
    if (!b || !b->be || !prefix || !w)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bind: bad arguments");
    memset(w, 0, sizeof *w);
    const int swiglu = cfg->mlp == NN_CODEC_MLP_SWIGLU, ln = cfg->norm == NN_CODEC_NORM_LAYER;
    const int64_t D = cfg->d_model, F = cfg->d_ff;
    const int64_t QD = (int64_t)cfg->n_heads * cfg->head_dim,
                  KD = (int64_t)cfg->n_kv_heads * cfg->head_dim;
    const int64_t s_q[2] = {QD, D}, s_kv[2] = {KD, D}, s_o[2] = {D, QD}, s_up[2] = {F, D},
                  s_down[2] = {D, F};
    const struct {
        const ctts_tensor **dst;
        const char *suffix;
        const int64_t *shape;
    } lin[] = {
        {&w->q, "self_attn.q_proj.weight", s_q},
        {&w->k, "self_attn.k_proj.weight", s_kv},
        {&w->v, "self_attn.v_proj.weight", s_kv},
        {&w->o, "self_attn.o_proj.weight", s_o},
        {&w->fc1, swiglu ? "mlp.gate_proj.weight" : "mlp.fc1.weight", s_up},
        {&w->fc2, swiglu ? "mlp.down_proj.weight" : "mlp.fc2.weight", s_down},
        {&w->up, "mlp.up_proj.weight", s_up},
    };
    const int n_lin = (int)(sizeof lin / sizeof lin[0]) - (swiglu ? 0 : 1);
    char name[512];
    for (int i = 0; i < n_lin; i++) {
        int len = snprintf(name, sizeof name, "%s%s", prefix, lin[i].suffix);
        if (len < 0 || (size_t)len >= sizeof name)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bind: name too long for '%s'",
                            prefix);
        st = nn_bind_tensor(b, lin[i].dst, NN_BIND_LINEAR, name, 2, lin[i].shape, err, err_len);
        if (st != CTTS_OK) return st;
    }

    const size_t sd = round16((size_t)D);
    w->vecs = b->be->alloc(b->be, 6 * sd * sizeof(float));
    if (!w->vecs) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory (%s vectors)", prefix);
    float *v = w->vecs;
    const struct {
        const float **dst;
        const char *suffix;
        int needed;
    } vec[] = {
        {&w->n1_w, "input_layernorm.weight", 1},
        {&w->n1_b, "input_layernorm.bias", ln},
        {&w->n2_w, "post_attention_layernorm.weight", 1},
        {&w->n2_b, "post_attention_layernorm.bias", ln},
        {&w->ls1, "self_attn_layer_scale.scale", 1},
        {&w->ls2, "mlp_layer_scale.scale", 1},
    };
    const int64_t s_d[1] = {D};
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        if (!vec[i].needed) continue;
        float *dst = v + i * sd;
        int len = snprintf(name, sizeof name, "%s%s", prefix, vec[i].suffix);
        if (len < 0 || (size_t)len >= sizeof name)
            st = ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bind: name too long for '%s'",
                          prefix);
        else
            st = nn_bind_to_f32(b, dst, name, 1, s_d, err, err_len);
        if (st != CTTS_OK) {
            nn_codec_layer_release(w, b->be);
            return st;
        }
        *vec[i].dst = dst;
    }
    return CTTS_OK;
}

int nn_codec_layer_kv_width(const nn_codec_layer_config *cfg) {
    return cfg ? cfg->n_kv_heads * cfg->head_dim : 0;
}

int nn_codec_layer_kv_capacity(const nn_codec_layer_config *cfg, int t_max) {
    if (!cfg || t_max <= 0) return 0;
    return cfg->window > 0 ? cfg->window - 1 + t_max : t_max;
}

size_t nn_codec_layer_scratch_floats(const nn_codec_layer_config *cfg, int T) {
    if (!cfg || T <= 0) return 0;
    const size_t t = (size_t)T, qd = (size_t)cfg->n_heads * (size_t)cfg->head_dim;
    /* xn [T, D]; q, att [T, H*Dh]; f1, f2 [T, d_ff] */
    return round16(t * (size_t)cfg->d_model) + 2 * round16(t * qd) +
           2 * round16(t * (size_t)cfg->d_ff);
}

ctts_status nn_codec_layer_forward(ctts_backend *be, const nn_codec_layer_config *cfg,
                                   const nn_codec_layer_weights *w, nn_kv_cache *kv, float *x,
                                   int T, int pos0, float *scratch) {
    if (!be || !cfg || !w || !kv || !x || !scratch || T <= 0 || pos0 < 0 || !w->q)
        return CTTS_E_INVALID_ARG;
    const int D = cfg->d_model, H = cfg->n_heads, Hkv = cfg->n_kv_heads, Dh = cfg->head_dim;
    const int qd = H * Dh, kvd = Hkv * Dh, F = cfg->d_ff;
    if (kv->d_model != kvd || kv->dtype != CTTS_DT_F32 || T > kv->capacity)
        return CTTS_E_INVALID_ARG;
    if (kv->n + T > kv->capacity) {
        if (cfg->window <= 0 || cfg->window - 1 + T > kv->capacity) return CTTS_E_INVALID_ARG;
        const int keep = cfg->window - 1 < kv->n ? cfg->window - 1 : kv->n;
        const size_t off = (size_t)(kv->n - keep) * kvd, n = (size_t)keep * kvd;
        memmove(kv->k, (float *)kv->k + off, n * sizeof(float));
        memmove(kv->v, (float *)kv->v + off, n * sizeof(float));
        kv->n = keep;
    }
    const size_t t = (size_t)T;
    float *xn = scratch;
    float *q = xn + round16(t * D);
    float *att = q + round16(t * qd);
    float *f1 = att + round16(t * qd);
    float *f2 = f1 + round16(t * F);
    float *k_new = (float *)kv->k + (size_t)kv->n * kvd;
    float *v_new = (float *)kv->v + (size_t)kv->n * kvd;
    const int ln = cfg->norm == NN_CODEC_NORM_LAYER;

    if (ln)
        be->layer_norm(be, xn, x, w->n1_w, w->n1_b, T, D, cfg->norm_eps);
    else
        be->rms_norm(be, xn, x, w->n1_w, T, D, cfg->norm_eps);
    be->linear(be, q, xn, w->q, NULL, T);
    be->linear(be, k_new, xn, w->k, NULL, T);
    be->linear(be, v_new, xn, w->v, NULL, T);
    be->rope_half(be, q, T, H, Dh, qd, pos0, cfg->rope_theta);
    be->rope_half(be, k_new, T, Hkv, Dh, kvd, pos0, cfg->rope_theta);
    be->attention_gqa(be, att, q, qd, kv->k, kv->v, kvd, T, kv->n + T, kv->n, H, Hkv, Dh,
                      cfg->window);
    kv->n += T;
    be->linear(be, xn, att, w->o, NULL, T);
    be->add_scaled_rows(be, x, xn, w->ls1, T, D);

    if (ln)
        be->layer_norm(be, xn, x, w->n2_w, w->n2_b, T, D, cfg->norm_eps);
    else
        be->rms_norm(be, xn, x, w->n2_w, T, D, cfg->norm_eps);
    be->linear(be, f1, xn, w->fc1, NULL, T);
    if (cfg->mlp == NN_CODEC_MLP_SWIGLU) {
        be->linear(be, f2, xn, w->up, NULL, T);
        be->act(be, f1, f1, t * F, CTTS_ACT_SILU);
        be->mul(be, f1, f1, f2, t * F);
    } else {
        be->act(be, f1, f1, t * F, CTTS_ACT_GELU_ERF);
    }
    be->linear(be, xn, f1, w->fc2, NULL, T);
    be->add_scaled_rows(be, x, xn, w->ls2, T, D);
    return CTTS_OK;
}
