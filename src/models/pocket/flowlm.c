/*
 * Pocket TTS FlowLM forward pass: transformer prefill/step over the KV cache
 * and the flow-matching head decoded with LSD (see flowlm.h).
 *
 * Data flow of one step: latent (or bos_emb) -> input_linear -> N layers
 * (nn/transformer, positions = cache offset) -> out_norm = h -> out_eos(h),
 * and x = noise; for i < N: x += v(c = h, s = i/N, t = (i+1)/N, x) / N,
 * where v is SimpleMLPAdaLN:
 *   temb = (E_s(s) + E_t(t)) / 2, E(t) = RMSNormQuirk(W2 silu(W1 [cos tf, sin tf]))
 *   y = cond_embed(h) + temb;  x' = input_proj(x)
 *   per block: shift, scale, gate = ada(silu y); x' += gate * mlp(LN(x') (1+scale) + shift)
 *   out = linear(LN_noaffine(x') (1 + scale) + shift) with the final shift, scale.
 *
 * All arithmetic goes through backend ops. The host only computes the
 * 256 cos/sin time features, draws the noise, and moves inputs/outputs.
 * Numerics follow the reference exactly where it matters: the time
 * embedders' RMSNorm uses the unbiased variance (backend std_norm), the
 * "/ 2" of the two embeddings is folded into a halved alpha (exact, a power
 * of two), flow LayerNorms use eps 1e-6, the transformer's 1e-5.
 *
 * Not here: tokenisation, EOS decisions, frame counting, Mimi.
 */
#include "models/pocket/flowlm.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "nn/transformer.h"

#define TIME_HALF 128          /* frequency_embedding_size / 2 (fixed in the reference) */
#define TIME_FEATS (2 * TIME_HALF)
#define N_TIME_EMBED 2         /* start and target time (LSD) */
#define PREFILL_BLOCK 64       /* rows per transformer pass in prefill (state scratch size) */
#define OUT_NORM_EPS 1e-5f
#define FLOW_LN_EPS 1e-6f
#define TIME_RMS_EPS 1e-5f
#define MAX_LAYERS 4096

typedef struct {
    const ctts_tensor *freqs;  /* [128] */
    const ctts_tensor *w0, *b0; /* [C, 256], [C] */
    const ctts_tensor *w2, *b2; /* [C, C], [C] */
    const ctts_tensor *alpha;  /* [C] */
    float freqs_host[TIME_HALF];
    float *half_alpha; /* [C] backend memory, owned: alpha / 2 */
} time_embedder;

typedef struct {
    const ctts_tensor *ada_w, *ada_b; /* [3C, C], [3C]: shift, scale, gate */
    const ctts_tensor *ln_w, *ln_b;   /* [C] */
    const ctts_tensor *w0, *b0;       /* [C, C], [C] */
    const ctts_tensor *w2, *b2;       /* [C, C], [C] */
} res_block;

struct pocket_flowlm {
    pocket_flowlm_config cfg;
    ctts_backend *be;
    nn_transformer_config tcfg;
    nn_transformer_layer_weights *layers; /* [num_layers] */
    const ctts_tensor *out_norm_w, *out_norm_b; /* [D] */
    const ctts_tensor *out_eos_w, *out_eos_b;   /* [1, D], [1] */
    const ctts_tensor *input_linear;            /* [D, ldim] */
    const ctts_tensor *speaker_proj;            /* [D, ldim] */
    const ctts_tensor *bos_before_voice;        /* [1, 1, D], NULL if not configured */
    const ctts_tensor *bos_emb;                 /* [ldim] */
    const ctts_tensor *lut;                     /* [n_bins + 1, D] */
    const ctts_tensor *emb_mean, *emb_std;      /* [ldim] */
    float *emb_mean_host, *emb_std_host;        /* [ldim] host copies for denorm */
    /* flow head, width C = flow_dim */
    const ctts_tensor *cond_w, *cond_b; /* [C, D], [C] */
    const ctts_tensor *in_w, *in_b;     /* [C, ldim], [C] */
    time_embedder temb[N_TIME_EMBED];
    res_block *blocks;                              /* [flow_depth] */
    const ctts_tensor *final_ada_w, *final_ada_b;   /* [2C, C], [2C]: shift, scale */
    const ctts_tensor *final_w, *final_b;           /* [ldim, C], [ldim] */
    nn_binder binder;
};

struct pocket_flowlm_state {
    ctts_backend *be;   /* owns the buffers (the model's backend) */
    ctts_backend *exec; /* runs the ops (be unless set_exec chose another) */
    int n_layers, d_model, ldim, flow_dim;
    int capacity, offset;
    nn_kv_cache *kv; /* [n_layers] */
    float *buf;      /* one backend allocation, carved below */
    float *x, *hid;  /* [PREFILL_BLOCK, D] transformer rows, out_norm rows */
    float *tf_scratch;
    float *lat;      /* [ldim] input latent */
    float *eos;      /* [1] */
    float *cond;     /* [C] cond_embed(h) */
    float *tfeat;    /* [256] time features */
    float *th, *th2; /* [C] time MLP hidden */
    float *te[N_TIME_EMBED]; /* [C] half embeddings */
    float *y, *sy;   /* [C] conditioning and silu(conditioning) */
    float *xh, *hx, *m1; /* [C] flow activations */
    float *mod;      /* [3C] AdaLN chunks */
    float *v, *xt, *inv_n; /* [ldim] flow output, current sample, 1/N */
    float *host;     /* host scratch: max(256, ldim) floats */
};

static size_t round16(size_t n) { return (n + 15u) & ~(size_t)15u; }

/* ---- binding ---- */

static ctts_status check_config(const pocket_flowlm_config *c, char *err, size_t err_len) {
    if (!c) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "flow_lm: no config");
    if (c->d_model <= 0 || c->num_heads <= 0 || c->num_layers <= 0 || c->hidden_scale <= 0 ||
        c->n_bins <= 0 || c->flow_dim <= 0 || c->flow_depth < 0 || c->ldim <= 0)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "flow_lm config: sizes must be positive (d_model %d, num_heads %d, "
                        "num_layers %d, hidden_scale %d, n_bins %d, flow dim %d, depth %d, ldim %d)",
                        c->d_model, c->num_heads, c->num_layers, c->hidden_scale, c->n_bins,
                        c->flow_dim, c->flow_depth, c->ldim);
    if (c->lut_dim != c->d_model)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "flow_lm config: lookup_table.dim %d must equal transformer.d_model %d",
                        c->lut_dim, c->d_model);
    if (c->num_layers > MAX_LAYERS || c->flow_depth > MAX_LAYERS || c->d_model > (1 << 16) ||
        c->hidden_scale > 64 || c->flow_dim > (1 << 16) || c->ldim > (1 << 16) ||
        c->n_bins > (1 << 24))
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "flow_lm config: sizes too large");
    return CTTS_OK;
}

/* Binds "flow_lm.<suffix>" with the given shape. */
static ctts_status bind(pocket_flowlm *m, const ctts_tensor **out, nn_bind_kind kind,
                        const char *suffix, int ndim, int64_t d0, int64_t d1, int64_t d2,
                        char *err, size_t err_len) {
    char name[256];
    int len = snprintf(name, sizeof name, "flow_lm.%s", suffix);
    if (len < 0 || (size_t)len >= sizeof name)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "flow_lm: name too long");
    const int64_t shape[3] = {d0, d1, d2};
    return nn_bind_tensor(&m->binder, out, kind, name, ndim, shape, err, err_len);
}

#define BIND(dst, kind, suffix, ndim, d0, d1, d2)                                        \
    do {                                                                                 \
        st = bind(m, &(dst), kind, suffix, ndim, d0, d1, d2, err, err_len);              \
        if (st != CTTS_OK) goto fail;                                                    \
    } while (0)

static ctts_status bind_flow_head(pocket_flowlm *m, char *err, size_t err_len) {
    const int64_t D = m->cfg.d_model, C = m->cfg.flow_dim, L = m->cfg.ldim;
    ctts_status st;
    char s[160];
    BIND(m->cond_w, NN_BIND_LINEAR, "flow_net.cond_embed.weight", 2, C, D, 0);
    BIND(m->cond_b, NN_BIND_F32, "flow_net.cond_embed.bias", 1, C, 0, 0);
    BIND(m->in_w, NN_BIND_LINEAR, "flow_net.input_proj.weight", 2, C, L, 0);
    BIND(m->in_b, NN_BIND_F32, "flow_net.input_proj.bias", 1, C, 0, 0);
    for (int e = 0; e < N_TIME_EMBED; e++) {
        time_embedder *te = &m->temb[e];
        snprintf(s, sizeof s, "flow_net.time_embed.%d.freqs", e);
        BIND(te->freqs, NN_BIND_F32, s, 1, TIME_HALF, 0, 0);
        snprintf(s, sizeof s, "flow_net.time_embed.%d.mlp.0.weight", e);
        BIND(te->w0, NN_BIND_LINEAR, s, 2, C, TIME_FEATS, 0);
        snprintf(s, sizeof s, "flow_net.time_embed.%d.mlp.0.bias", e);
        BIND(te->b0, NN_BIND_F32, s, 1, C, 0, 0);
        snprintf(s, sizeof s, "flow_net.time_embed.%d.mlp.2.weight", e);
        BIND(te->w2, NN_BIND_LINEAR, s, 2, C, C, 0);
        snprintf(s, sizeof s, "flow_net.time_embed.%d.mlp.2.bias", e);
        BIND(te->b2, NN_BIND_F32, s, 1, C, 0, 0);
        snprintf(s, sizeof s, "flow_net.time_embed.%d.mlp.3.alpha", e);
        BIND(te->alpha, NN_BIND_F32, s, 1, C, 0, 0);
    }
    for (int i = 0; i < m->cfg.flow_depth; i++) {
        res_block *rb = &m->blocks[i];
        snprintf(s, sizeof s, "flow_net.res_blocks.%d.adaLN_modulation.1.weight", i);
        BIND(rb->ada_w, NN_BIND_LINEAR, s, 2, 3 * C, C, 0);
        snprintf(s, sizeof s, "flow_net.res_blocks.%d.adaLN_modulation.1.bias", i);
        BIND(rb->ada_b, NN_BIND_F32, s, 1, 3 * C, 0, 0);
        snprintf(s, sizeof s, "flow_net.res_blocks.%d.in_ln.weight", i);
        BIND(rb->ln_w, NN_BIND_F32, s, 1, C, 0, 0);
        snprintf(s, sizeof s, "flow_net.res_blocks.%d.in_ln.bias", i);
        BIND(rb->ln_b, NN_BIND_F32, s, 1, C, 0, 0);
        snprintf(s, sizeof s, "flow_net.res_blocks.%d.mlp.0.weight", i);
        BIND(rb->w0, NN_BIND_LINEAR, s, 2, C, C, 0);
        snprintf(s, sizeof s, "flow_net.res_blocks.%d.mlp.0.bias", i);
        BIND(rb->b0, NN_BIND_F32, s, 1, C, 0, 0);
        snprintf(s, sizeof s, "flow_net.res_blocks.%d.mlp.2.weight", i);
        BIND(rb->w2, NN_BIND_LINEAR, s, 2, C, C, 0);
        snprintf(s, sizeof s, "flow_net.res_blocks.%d.mlp.2.bias", i);
        BIND(rb->b2, NN_BIND_F32, s, 1, C, 0, 0);
    }
    BIND(m->final_ada_w, NN_BIND_LINEAR, "flow_net.final_layer.adaLN_modulation.1.weight", 2,
         2 * C, C, 0);
    BIND(m->final_ada_b, NN_BIND_F32, "flow_net.final_layer.adaLN_modulation.1.bias", 1, 2 * C,
         0, 0);
    BIND(m->final_w, NN_BIND_LINEAR, "flow_net.final_layer.linear.weight", 2, L, C, 0);
    BIND(m->final_b, NN_BIND_F32, "flow_net.final_layer.linear.bias", 1, L, 0, 0);
    return CTTS_OK;
fail:
    return st;
}

/* Host copies and derived buffers computed once at bind time. */
static ctts_status prepare_derived(pocket_flowlm *m, char *err, size_t err_len) {
    ctts_backend *be = m->be;
    const int C = m->cfg.flow_dim, L = m->cfg.ldim;
    m->emb_mean_host = malloc((size_t)L * sizeof(float));
    m->emb_std_host = malloc((size_t)L * sizeof(float));
    float *tmp = malloc((size_t)C * sizeof(float));
    if (!m->emb_mean_host || !m->emb_std_host || !tmp) {
        free(tmp);
        return ctts_err(err, err_len, CTTS_E_OOM, "flow_lm: out of memory");
    }
    be->download(be, m->emb_mean_host, m->emb_mean->data, (size_t)L * sizeof(float));
    be->download(be, m->emb_std_host, m->emb_std->data, (size_t)L * sizeof(float));
    for (int e = 0; e < N_TIME_EMBED; e++) {
        time_embedder *te = &m->temb[e];
        be->download(be, te->freqs_host, te->freqs->data, sizeof te->freqs_host);
        te->half_alpha = be->alloc(be, (size_t)C * sizeof(float));
        if (!te->half_alpha) {
            free(tmp);
            return ctts_err(err, err_len, CTTS_E_OOM, "flow_lm: out of backend memory");
        }
        /* (E_s + E_t) / 2 == E_s/2 + E_t/2 exactly: halving is exact in float. */
        be->download(be, tmp, te->alpha->data, (size_t)C * sizeof(float));
        for (int i = 0; i < C; i++) tmp[i] *= 0.5f;
        be->upload(be, te->half_alpha, tmp, (size_t)C * sizeof(float));
    }
    free(tmp);
    return CTTS_OK;
}

ctts_status pocket_flowlm_bind(const pocket_flowlm_config *cfg, ctts_backend *be,
                               pocket_weight_lookup get, void *get_ctx, pocket_flowlm **out,
                               char *err, size_t err_len) {
    if (!out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "flow_lm: no output pointer");
    *out = NULL;
    if (!be || !get) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "flow_lm: no backend or lookup");
    ctts_status st = check_config(cfg, err, err_len);
    if (st != CTTS_OK) return st;

    pocket_flowlm *m = calloc(1, sizeof *m);
    if (!m) return ctts_err(err, err_len, CTTS_E_OOM, "flow_lm: out of memory");
    m->cfg = *cfg;
    m->be = be;
    m->binder = (nn_binder){.be = be, .get = get, .get_ctx = get_ctx};
    m->tcfg = (nn_transformer_config){
        .d_model = cfg->d_model,
        .n_heads = cfg->num_heads,
        .d_ff = cfg->d_model * cfg->hidden_scale,
        .max_period = cfg->max_period,
        .context = 0,
        .has_layer_scale = 0,
    };
    st = nn_transformer_config_check(&m->tcfg, err, err_len);
    if (st != CTTS_OK) goto fail;
    m->layers = calloc((size_t)cfg->num_layers, sizeof *m->layers);
    m->blocks = calloc((size_t)(cfg->flow_depth ? cfg->flow_depth : 1), sizeof *m->blocks);
    if (!m->layers || !m->blocks) {
        st = ctts_err(err, err_len, CTTS_E_OOM, "flow_lm: out of memory");
        goto fail;
    }

    const int64_t D = cfg->d_model, L = cfg->ldim;
    char prefix[96];
    for (int l = 0; l < cfg->num_layers; l++) {
        snprintf(prefix, sizeof prefix, "flow_lm.transformer.layers.%d.", l);
        st = nn_transformer_layer_bind(&m->binder, &m->tcfg, prefix, &m->layers[l], err, err_len);
        if (st != CTTS_OK) goto fail;
    }
    BIND(m->out_norm_w, NN_BIND_F32, "out_norm.weight", 1, D, 0, 0);
    BIND(m->out_norm_b, NN_BIND_F32, "out_norm.bias", 1, D, 0, 0);
    BIND(m->out_eos_w, NN_BIND_LINEAR, "out_eos.weight", 2, 1, D, 0);
    BIND(m->out_eos_b, NN_BIND_F32, "out_eos.bias", 1, 1, 0, 0);
    BIND(m->input_linear, NN_BIND_LINEAR, "input_linear.weight", 2, D, L, 0);
    BIND(m->speaker_proj, NN_BIND_LINEAR, "speaker_proj_weight", 2, D, L, 0);
    if (cfg->insert_bos_before_voice)
        BIND(m->bos_before_voice, NN_BIND_F32, "bos_before_voice", 3, 1, 1, D);
    BIND(m->bos_emb, NN_BIND_F32, "bos_emb", 1, L, 0, 0);
    BIND(m->lut, NN_BIND_F32, "conditioner.embed.weight", 2, (int64_t)cfg->n_bins + 1, D, 0);
    BIND(m->emb_mean, NN_BIND_F32, "emb_mean", 1, L, 0, 0);
    BIND(m->emb_std, NN_BIND_F32, "emb_std", 1, L, 0, 0);
    st = bind_flow_head(m, err, err_len);
    if (st != CTTS_OK) goto fail;
    st = prepare_derived(m, err, err_len);
    if (st != CTTS_OK) goto fail;
    *out = m;
    return CTTS_OK;
fail:
    pocket_flowlm_free(m);
    return st;
}

void pocket_flowlm_free(pocket_flowlm *m) {
    if (!m) return;
    for (int e = 0; e < N_TIME_EMBED; e++)
        if (m->temb[e].half_alpha) m->be->free_buf(m->be, m->temb[e].half_alpha);
    free(m->emb_mean_host);
    free(m->emb_std_host);
    free(m->layers);
    free(m->blocks);
    nn_binder_release(&m->binder);
    free(m);
}

int pocket_flowlm_bound_count(const pocket_flowlm *m) { return m ? m->binder.n_names : 0; }

const char *pocket_flowlm_bound_name(const pocket_flowlm *m, int i) {
    if (!m || i < 0 || i >= m->binder.n_names) return NULL;
    return m->binder.names[i];
}

const pocket_flowlm_config *pocket_flowlm_get_config(const pocket_flowlm *m) {
    return m ? &m->cfg : NULL;
}

/* ---- state ---- */

ctts_status pocket_flowlm_state_new(const pocket_flowlm *m, int capacity,
                                    pocket_flowlm_state **out, char *err, size_t err_len) {
    if (!out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "flow_lm state: no output pointer");
    *out = NULL;
    if (!m || capacity < 0)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "flow_lm state: bad capacity %d", capacity);
    const int D = m->cfg.d_model, C = m->cfg.flow_dim, L = m->cfg.ldim;
    /* Row counts times D are passed to int-sized backend arguments. */
    if ((int64_t)capacity * D > INT_MAX)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "flow_lm state: capacity %d too large",
                        capacity);
    pocket_flowlm_state *s = calloc(1, sizeof *s);
    if (!s) return ctts_err(err, err_len, CTTS_E_OOM, "flow_lm state: out of memory");
    ctts_backend *be = m->be;
    s->be = be;
    s->exec = be;
    s->n_layers = m->cfg.num_layers;
    s->d_model = D;
    s->ldim = L;
    s->flow_dim = C;
    s->capacity = capacity;
    s->kv = calloc((size_t)s->n_layers, sizeof *s->kv);
    size_t host_n = L > TIME_FEATS ? (size_t)L : TIME_FEATS;
    s->host = malloc(host_n * sizeof(float));
    if (!s->kv || !s->host) goto oom;
    for (int l = 0; l < s->n_layers; l++)
        if (nn_kv_cache_init(&s->kv[l], be, capacity, D) != CTTS_OK) goto oom;

    const size_t rows = round16((size_t)PREFILL_BLOCK * (size_t)D);
    const size_t tf = round16(nn_transformer_scratch_floats(&m->tcfg, PREFILL_BLOCK));
    const size_t c = round16((size_t)C), l = round16((size_t)L);
    const size_t total = 2 * rows + tf + l /*lat*/ + 16 /*eos*/ + c /*cond*/ +
                         round16(TIME_FEATS) + 2 * c /*th, th2*/ + N_TIME_EMBED * c +
                         2 * c /*y, sy*/ + 3 * c /*xh, hx, m1*/ + round16(3 * (size_t)C) +
                         3 * l /*v, xt, inv_n*/;
    s->buf = be->alloc(be, total * sizeof(float));
    if (!s->buf) goto oom;
    float *p = s->buf;
    s->x = p, p += rows;
    s->hid = p, p += rows;
    s->tf_scratch = p, p += tf;
    s->lat = p, p += l;
    s->eos = p, p += 16;
    s->cond = p, p += c;
    s->tfeat = p, p += round16(TIME_FEATS);
    s->th = p, p += c;
    s->th2 = p, p += c;
    for (int e = 0; e < N_TIME_EMBED; e++) s->te[e] = p, p += c;
    s->y = p, p += c;
    s->sy = p, p += c;
    s->xh = p, p += c;
    s->hx = p, p += c;
    s->m1 = p, p += c;
    s->mod = p, p += round16(3 * (size_t)C);
    s->v = p, p += l;
    s->xt = p, p += l;
    s->inv_n = p, p += l;
    *out = s;
    return CTTS_OK;
oom:
    pocket_flowlm_state_free(s);
    return ctts_err(err, err_len, CTTS_E_OOM, "flow_lm state: out of memory (capacity %d)",
                    capacity);
}

void pocket_flowlm_state_free(pocket_flowlm_state *s) {
    if (!s) return;
    if (s->kv)
        for (int l = 0; l < s->n_layers; l++) nn_kv_cache_release(&s->kv[l], s->be);
    if (s->buf) s->be->free_buf(s->be, s->buf);
    free(s->kv);
    free(s->host);
    free(s);
}

int pocket_flowlm_state_offset(const pocket_flowlm_state *s) { return s ? s->offset : 0; }
int pocket_flowlm_state_capacity(const pocket_flowlm_state *s) { return s ? s->capacity : 0; }

static void set_offset(pocket_flowlm_state *s, int offset) {
    s->offset = offset;
    for (int l = 0; l < s->n_layers; l++) s->kv[l].n = offset;
}

ctts_status pocket_flowlm_state_copy(pocket_flowlm_state *dst, const pocket_flowlm_state *src) {
    if (!dst || !src || dst == src) return CTTS_E_INVALID_ARG;
    if (dst->n_layers != src->n_layers || dst->d_model != src->d_model || dst->be != src->be)
        return CTTS_E_INVALID_ARG;
    if (src->offset > dst->capacity) return CTTS_E_INVALID_ARG;
    int n = src->offset * src->d_model;
    if (n > 0) {
        /* The backend has no plain copy op; a transpose of one row is a copy. */
        for (int l = 0; l < src->n_layers; l++) {
            dst->exec->transpose(dst->exec, dst->kv[l].k, src->kv[l].k, 1, n);
            dst->exec->transpose(dst->exec, dst->kv[l].v, src->kv[l].v, 1, n);
        }
    }
    set_offset(dst, src->offset);
    return CTTS_OK;
}

ctts_status pocket_flowlm_state_set_layer(pocket_flowlm_state *s, int layer, const float *k,
                                          const float *v, int T) {
    if (!s || layer < 0 || layer >= s->n_layers || T < 0 || T > s->capacity) return CTTS_E_INVALID_ARG;
    if (T == 0) return CTTS_OK;
    if (!k || !v) return CTTS_E_INVALID_ARG;
    size_t bytes = (size_t)T * (size_t)s->d_model * sizeof(float);
    s->be->upload(s->be, s->kv[layer].k, k, bytes);
    s->be->upload(s->be, s->kv[layer].v, v, bytes);
    return CTTS_OK;
}

ctts_status pocket_flowlm_state_get_layer(const pocket_flowlm_state *s, int layer, float *k,
                                          float *v) {
    if (!s || layer < 0 || layer >= s->n_layers) return CTTS_E_INVALID_ARG;
    if (s->offset == 0) return CTTS_OK;
    if (!k || !v) return CTTS_E_INVALID_ARG;
    size_t bytes = (size_t)s->offset * (size_t)s->d_model * sizeof(float);
    s->be->download(s->be, k, s->kv[layer].k, bytes);
    s->be->download(s->be, v, s->kv[layer].v, bytes);
    return CTTS_OK;
}

void pocket_flowlm_state_set_exec(pocket_flowlm_state *s, ctts_backend *exec) {
    if (s) s->exec = exec ? exec : s->be;
}

ctts_status pocket_flowlm_state_set_offset(pocket_flowlm_state *s, int offset) {
    if (!s || offset < 0 || offset > s->capacity) return CTTS_E_INVALID_ARG;
    set_offset(s, offset);
    return CTTS_OK;
}

/* ---- forward ---- */

static ctts_status check_pair(const pocket_flowlm *m, const pocket_flowlm_state *s) {
    if (!m || !s) return CTTS_E_INVALID_ARG;
    if (s->be != m->be || s->n_layers != m->cfg.num_layers || s->d_model != m->cfg.d_model ||
        s->ldim != m->cfg.ldim || s->flow_dim != m->cfg.flow_dim)
        return CTTS_E_INVALID_ARG;
    return CTTS_OK;
}

/* Runs T <= PREFILL_BLOCK rows already in s->x through every layer. */
static ctts_status run_layers(pocket_flowlm *m, pocket_flowlm_state *s, int T) {
    for (int l = 0; l < m->cfg.num_layers; l++) {
        ctts_status st = nn_transformer_layer_forward(s->exec, &m->tcfg, &m->layers[l], &s->kv[l],
                                                      s->x, T, s->offset, s->tf_scratch);
        if (st != CTTS_OK) return st;
    }
    s->offset += T;
    return CTTS_OK;
}

ctts_status pocket_flowlm_prefill(pocket_flowlm *m, pocket_flowlm_state *s, const float *x,
                                  int T, float *hidden_out) {
    ctts_status st = check_pair(m, s);
    if (st != CTTS_OK) return st;
    if (T < 0 || (T > 0 && !x) || T > s->capacity - s->offset) return CTTS_E_INVALID_ARG;
    ctts_backend *be = s->exec;
    const int D = m->cfg.d_model;
    ctts_backend_stage(be, CTTS_STAGE_PREFILL);
    for (int r0 = 0; r0 < T; r0 += PREFILL_BLOCK) {
        int n = T - r0 < PREFILL_BLOCK ? T - r0 : PREFILL_BLOCK;
        size_t bytes = (size_t)n * (size_t)D * sizeof(float);
        be->upload(be, s->x, x + (size_t)r0 * (size_t)D, bytes);
        st = run_layers(m, s, n);
        if (st != CTTS_OK) return st;
        if (hidden_out) {
            be->layer_norm(be, s->hid, s->x, (const float *)m->out_norm_w->data,
                           (const float *)m->out_norm_b->data, n, D, OUT_NORM_EPS);
            be->download(be, hidden_out + (size_t)r0 * (size_t)D, s->hid, bytes);
        }
    }
    return CTTS_OK;
}

ctts_status pocket_flowlm_voice_rows(const pocket_flowlm *m, const float *latents, int T,
                                     float *out, int *n_rows) {
    if (n_rows) *n_rows = 0;
    if (!m || !out || T < 0 || (T > 0 && !latents)) return CTTS_E_INVALID_ARG;
    ctts_backend *be = m->be;
    const size_t D = (size_t)m->cfg.d_model, L = (size_t)m->cfg.ldim;
    if ((size_t)T > (size_t)INT_MAX / D) return CTTS_E_INVALID_ARG;
    int row = 0;
    if (m->bos_before_voice) {
        be->download(be, out, m->bos_before_voice->data, D * sizeof(float));
        row = 1;
    }
    if (T > 0) {
        float *in = be->alloc(be, (size_t)T * L * sizeof(float));
        float *proj = be->alloc(be, (size_t)T * D * sizeof(float));
        if (!in || !proj) {
            if (in) be->free_buf(be, in);
            if (proj) be->free_buf(be, proj);
            return CTTS_E_OOM;
        }
        be->upload(be, in, latents, (size_t)T * L * sizeof(float));
        be->linear(be, proj, in, m->speaker_proj, NULL, T);
        be->download(be, out + (size_t)row * D, proj, (size_t)T * D * sizeof(float));
        be->free_buf(be, in);
        be->free_buf(be, proj);
    }
    if (n_rows) *n_rows = row + T;
    return CTTS_OK;
}

ctts_status pocket_flowlm_text_rows(const pocket_flowlm *m, const int32_t *ids, int n, float *out,
                                    char *err, size_t err_len) {
    if (!m || n < 0 || (n > 0 && (!ids || !out)))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "flow_lm text rows: bad arguments");
    const size_t D = (size_t)m->cfg.d_model;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] > m->cfg.n_bins)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "flow_lm text rows: token %d at index %d is outside [0, %d]", ids[i],
                            i, m->cfg.n_bins);
    const float *lut = (const float *)m->lut->data;
    for (int i = 0; i < n; i++)
        m->be->download(m->be, out + (size_t)i * D, lut + (size_t)ids[i] * D, D * sizeof(float));
    return CTTS_OK;
}

/* One time embedder at time tau into out [C], scaled by 1/2 (half alpha). */
static void time_embed(pocket_flowlm *m, pocket_flowlm_state *s, const time_embedder *te,
                       float tau, float *out) {
    ctts_backend *be = s->exec;
    const int C = m->cfg.flow_dim;
    /* [cos(tau f), sin(tau f)], cos first; the product is rounded to float as in the reference. */
    for (int k = 0; k < TIME_HALF; k++) {
        float a = tau * te->freqs_host[k];
        s->host[k] = (float)cos((double)a);
        s->host[TIME_HALF + k] = (float)sin((double)a);
    }
    be->upload(be, s->tfeat, s->host, TIME_FEATS * sizeof(float));
    be->linear(be, s->th, s->tfeat, te->w0, (const float *)te->b0->data, 1);
    be->act(be, s->th, s->th, (size_t)C, CTTS_ACT_SILU);
    be->linear(be, s->th2, s->th, te->w2, (const float *)te->b2->data, 1);
    be->std_norm(be, out, s->th2, te->half_alpha, 1, C, TIME_RMS_EPS);
}

/* v(c, s, t, x): the flow direction for the sample in s->xt, written to s->v.
 * s->cond must hold cond_embed(c). */
static void flow_velocity(pocket_flowlm *m, pocket_flowlm_state *st, float s_time, float t_time) {
    ctts_backend *be = st->exec;
    const int C = m->cfg.flow_dim;
    time_embed(m, st, &m->temb[0], s_time, st->te[0]);
    time_embed(m, st, &m->temb[1], t_time, st->te[1]);
    be->add(be, st->y, st->te[0], st->te[1], (size_t)C);
    be->add(be, st->y, st->cond, st->y, (size_t)C);
    be->act(be, st->sy, st->y, (size_t)C, CTTS_ACT_SILU);
    be->linear(be, st->xh, st->xt, m->in_w, (const float *)m->in_b->data, 1);
    for (int i = 0; i < m->cfg.flow_depth; i++) {
        const res_block *rb = &m->blocks[i];
        be->linear(be, st->mod, st->sy, rb->ada_w, (const float *)rb->ada_b->data, 1);
        be->layer_norm(be, st->hx, st->xh, (const float *)rb->ln_w->data,
                       (const float *)rb->ln_b->data, 1, C, FLOW_LN_EPS);
        be->modulate(be, st->hx, st->mod, st->mod + C, 1, C);
        be->linear(be, st->m1, st->hx, rb->w0, (const float *)rb->b0->data, 1);
        be->act(be, st->m1, st->m1, (size_t)C, CTTS_ACT_SILU);
        be->linear(be, st->hx, st->m1, rb->w2, (const float *)rb->b2->data, 1);
        be->add_scaled_rows(be, st->xh, st->hx, st->mod + 2 * C, 1, C);
    }
    be->linear(be, st->mod, st->sy, m->final_ada_w, (const float *)m->final_ada_b->data, 1);
    be->layer_norm(be, st->hx, st->xh, NULL, NULL, 1, C, FLOW_LN_EPS);
    be->modulate(be, st->hx, st->mod, st->mod + C, 1, C);
    be->linear(be, st->v, st->hx, m->final_w, (const float *)m->final_b->data, 1);
}

/* Output norm, EOS logit and flow head on the transformer output row `row`
 * (in s->x): the second half of a step. */
static ctts_status step_head(pocket_flowlm *m, pocket_flowlm_state *s, const float *row,
                             int lsd_steps, float temperature, float noise_clamp, ctts_rng *rng,
                             float *latent_out, float *eos_logit, float *hidden_out) {
    ctts_backend *be = s->exec;
    const int D = m->cfg.d_model, L = m->cfg.ldim;
    const size_t lbytes = (size_t)L * sizeof(float);
    be->layer_norm(be, s->hid, row, (const float *)m->out_norm_w->data,
                   (const float *)m->out_norm_b->data, 1, D, OUT_NORM_EPS);
    be->linear(be, s->eos, s->hid, m->out_eos_w, (const float *)m->out_eos_b->data, 1);

    /* Flow head: condition once, then LSD from the noise. */
    ctts_backend_stage(be, CTTS_STAGE_FLOW_HEAD);
    be->linear(be, s->cond, s->hid, m->cond_w, (const float *)m->cond_b->data, 1);
    float std = sqrtf(temperature);
    for (int i = 0; i < L; i++) {
        if (temperature == 0.0f)
            s->host[i] = 0.0f;
        else if (noise_clamp > 0.0f)
            s->host[i] = ctts_rng_trunc_normal(rng, std, noise_clamp);
        else
            s->host[i] = ctts_rng_normal(rng) * std;
    }
    be->upload(be, s->xt, s->host, lbytes);
    for (int i = 0; i < L; i++) s->host[i] = 1.0f / (float)lsd_steps;
    be->upload(be, s->inv_n, s->host, lbytes);
    for (int i = 0; i < lsd_steps; i++) {
        /* s = i/N and t = (i+1)/N are computed in double and rounded, as Python does. */
        float s_time = (float)((double)i / lsd_steps);
        float t_time = (float)((double)(i + 1) / lsd_steps);
        flow_velocity(m, s, s_time, t_time);
        be->add_scaled_rows(be, s->xt, s->v, s->inv_n, 1, L);
    }

    be->download(be, latent_out, s->xt, lbytes);
    be->download(be, eos_logit, s->eos, sizeof(float));
    if (hidden_out) be->download(be, hidden_out, s->hid, (size_t)D * sizeof(float));
    return CTTS_OK;
}

static ctts_status check_step_args(int lsd_steps, float temperature, const ctts_rng *rng,
                                   const float *latent_out, const float *eos_logit) {
    if (lsd_steps < 1 || !(temperature >= 0.0f) || isinf(temperature) || !latent_out ||
        !eos_logit || (temperature > 0.0f && !rng))
        return CTTS_E_INVALID_ARG;
    return CTTS_OK;
}

ctts_status pocket_flowlm_step(pocket_flowlm *m, pocket_flowlm_state *s, const float *prev_latent,
                               int lsd_steps, float temperature, float noise_clamp, ctts_rng *rng,
                               float *latent_out, float *eos_logit, float *hidden_out) {
    ctts_status st = check_pair(m, s);
    if (st == CTTS_OK) st = check_step_args(lsd_steps, temperature, rng, latent_out, eos_logit);
    if (st != CTTS_OK) return st;
    if (s->offset >= s->capacity) return CTTS_E_INVALID_ARG;
    ctts_backend *be = s->exec;
    const size_t lbytes = (size_t)m->cfg.ldim * sizeof(float);

    /* Transformer over one row. The first step's input is all-NaN in the
     * reference, replaced elementwise by bos_emb: i.e. bos_emb itself. */
    const float *in = (const float *)m->bos_emb->data;
    ctts_backend_stage(be, CTTS_STAGE_FLOWLM);
    if (prev_latent) {
        be->upload(be, s->lat, prev_latent, lbytes);
        in = s->lat;
    }
    be->linear(be, s->x, in, m->input_linear, NULL, 1);
    st = run_layers(m, s, 1);
    if (st != CTTS_OK) return st;
    return step_head(m, s, s->x, lsd_steps, temperature, noise_clamp, rng, latent_out, eos_logit,
                     hidden_out);
}

ctts_status pocket_flowlm_prefill_step(pocket_flowlm *m, pocket_flowlm_state *s, const float *x,
                                       int T, int lsd_steps, float temperature,
                                       float noise_clamp, ctts_rng *rng, float *latent_out,
                                       float *eos_logit) {
    ctts_status st = check_pair(m, s);
    if (st == CTTS_OK) st = check_step_args(lsd_steps, temperature, rng, latent_out, eos_logit);
    if (st != CTTS_OK) return st;
    if (T < 1 || !x || T + 1 > s->capacity - s->offset) return CTTS_E_INVALID_ARG;
    const int D = m->cfg.d_model;
    /* the last block of the prefill, with room for the BOS row after it */
    int n_last = T % PREFILL_BLOCK;
    if (n_last == 0) n_last = PREFILL_BLOCK;
    if (n_last == PREFILL_BLOCK) { /* no room: prefill, then a plain first step */
        st = pocket_flowlm_prefill(m, s, x, T, NULL);
        if (st != CTTS_OK) return st;
        return pocket_flowlm_step(m, s, NULL, lsd_steps, temperature, noise_clamp, rng,
                                  latent_out, eos_logit, NULL);
    }
    if (T > n_last) {
        st = pocket_flowlm_prefill(m, s, x, T - n_last, NULL);
        if (st != CTTS_OK) return st;
    }
    ctts_backend *be = s->exec;
    ctts_backend_stage(be, CTTS_STAGE_FLOWLM);
    be->upload(be, s->x, x + (size_t)(T - n_last) * (size_t)D,
               (size_t)n_last * (size_t)D * sizeof(float));
    float *bos_row = s->x + (size_t)n_last * (size_t)D;
    be->linear(be, bos_row, (const float *)m->bos_emb->data, m->input_linear, NULL, 1);
    st = run_layers(m, s, n_last + 1);
    if (st != CTTS_OK) return st;
    return step_head(m, s, bos_row, lsd_steps, temperature, noise_clamp, rng, latent_out,
                     eos_logit, NULL);
}

void pocket_flowlm_denorm(const pocket_flowlm *m, const float *latent, float *out) {
    if (!m || !latent || !out) return;
    for (int i = 0; i < m->cfg.ldim; i++)
        out[i] = latent[i] * m->emb_std_host[i] + m->emb_mean_host[i];
}
