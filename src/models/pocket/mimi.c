/*
 * Mimi codec of Pocket TTS (see mimi.h): weight binding, the streaming
 * decoder and the encoder.
 *
 * Decoder data flow for one latent (shapes with the real model's numbers):
 *   latent [32] --output_proj--> [512, 1] --depthwise convtr (k 2S, stride S)-->
 *   [512, S=16] --transpose--> [16, 512] --transformer layers (KV window)-->
 *   --transpose--> [512, 16] --SEANet decoder--> [1, 1920] samples.
 * SEANet decoder: conv k7 -> per ratio (6, 5, 4): ELU, convtr (k 2r, stride r),
 * resblocks -> ELU -> conv k3. Resblock: x + conv1x1(ELU(conv_k,dil(ELU(x)))).
 * Encoder: SEANet encoder (conv k7 -> per reversed ratio: resblocks, ELU,
 * conv k 2r stride r -> ELU -> conv k3) -> transformer -> downsample conv.
 *
 * Module indices inside "mimi.{de,en}coder.model.N" follow the official
 * nn.ModuleList (ELUs take an index too). The transformer KV cache is linear;
 * before it overflows, the rows older than the context window are dropped by
 * moving the last context-1 rows to the front (attention takes positions
 * relative to the cache, RoPE takes the absolute stream position).
 *
 * All math goes through backend ops (directly or via nn/); this file copies
 * a few rows of host-addressable backend memory (KV shift) and nothing else.
 */
#include "models/pocket/mimi.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "nn/conv.h"
#include "nn/transformer.h"

#define MIMI_MAX_RES 8       /* residual layers per ratio */
#define MIMI_MAX_LAYERS 64   /* transformer layers */
#define MIMI_DIM_MAX (1 << 16)
#define MIMI_KERNEL_MAX 4096
#define ENC_CHUNK_FRAMES 4   /* frames per encoder piece (memory vs op size) */

typedef struct {
    const ctts_tensor *w; /* conv {cout, cin, k} or convtr {cin, cout, k} */
    const float *b;       /* [cout] or NULL */
} conv_w;

typedef struct {
    conv_w c1; /* {dim/compress, dim, residual_kernel_size}, dilated */
    conv_w c2; /* {dim, dim/compress, 1} */
    int dilation;
} res_w;

struct pocket_mimi {
    pocket_mimi_config cfg; /* derived fields filled */
    ctts_backend *be;
    nn_binder binder; /* owns the list of bound names */
    nn_transformer_config tcfg;
    int S;      /* upsample / downsample stride (200 Hz steps per latent) */
    int c_top;  /* SEANet widest channels: n_filters << n_ratios */
    const ctts_tensor *quant_proj; /* {outer_dim, quantizer_dimension, 1} */
    const ctts_tensor *upsample;   /* {dimension, 1, 2S} depthwise convtr */
    const ctts_tensor *downsample; /* {inner_dim, dimension, 2S} */
    conv_w dec_in;                 /* {c_top, dimension, kernel_size} */
    conv_w dec_up[POCKET_MAX_RATIOS]; /* {c, c/2, 2r} */
    res_w dec_res[POCKET_MAX_RATIOS][MIMI_MAX_RES];
    conv_w dec_out; /* {channels, n_filters, last_kernel_size} */
    conv_w enc_in;  /* {n_filters, channels, kernel_size} */
    res_w enc_res[POCKET_MAX_RATIOS][MIMI_MAX_RES];
    conv_w enc_down[POCKET_MAX_RATIOS]; /* {2c, c, 2r} */
    conv_w enc_out;                     /* {dimension, c_top, last_kernel_size} */
    nn_transformer_layer_weights dec_layers[MIMI_MAX_LAYERS];
    nn_transformer_layer_weights enc_layers[MIMI_MAX_LAYERS];
};

/* ---- config ---- */

static ctts_status check_config(const pocket_mimi_config *in, pocket_mimi_config *c, int *S,
                                char *err, size_t err_len) {
    *c = *in;
    const pocket_mimi_transformer_config *t = &c->transformer;
    if (c->channels != 1)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "mimi: channels %d (only mono)",
                        c->channels);
    if (c->sample_rate <= 0 || !(c->frame_rate > 0.0f) || c->n_ratios < 1 ||
        c->n_ratios > POCKET_MAX_RATIOS)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "mimi: bad sample_rate %d / frame_rate %g / %d ratios", c->sample_rate,
                        (double)c->frame_rate, c->n_ratios);
    int64_t hop = 1;
    for (int i = 0; i < c->n_ratios; i++) {
        if (c->ratios[i] < 1 || c->ratios[i] > 1024)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "mimi: bad seanet ratio %d",
                            c->ratios[i]);
        hop *= c->ratios[i];
        if (hop > (1 << 20)) return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "mimi: hop too large");
    }
    double fs = (double)c->sample_rate / (double)c->frame_rate;
    int64_t frame_size = (int64_t)llround(fs);
    if (fabs(fs - (double)frame_size) > 1e-6 || frame_size <= 0 || frame_size > (1 << 22) ||
        frame_size % hop != 0)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "mimi: frame size %g is not an integer multiple of hop %lld", fs,
                        (long long)hop);
    if ((c->hop && c->hop != hop) || (c->frame_size && c->frame_size != frame_size) ||
        (c->resample_stride && c->resample_stride != frame_size / hop))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "mimi: derived hop/frame_size/resample_stride (%d/%d/%d) disagree with "
                        "the ratios and rates (%lld/%lld/%lld)",
                        c->hop, c->frame_size, c->resample_stride, (long long)hop,
                        (long long)frame_size, (long long)(frame_size / hop));
    c->hop = (int)hop;
    c->frame_size = (int)frame_size;
    c->resample_stride = (int)(frame_size / hop);
    *S = c->resample_stride;
    if (c->n_filters < 1 || c->n_filters > MIMI_DIM_MAX ||
        ((int64_t)c->n_filters << c->n_ratios) > MIMI_DIM_MAX || c->dimension < 1 ||
        c->dimension > MIMI_DIM_MAX || c->inner_dim < 1 || c->inner_dim > MIMI_DIM_MAX ||
        c->quantizer_dimension < 1 || c->quantizer_dimension > MIMI_DIM_MAX)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "mimi: channel sizes out of range");
    if (c->outer_dim != c->dimension || c->quantizer_output_dimension != c->outer_dim ||
        t->d_model != c->dimension)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "mimi: outer_dim %d, quantizer output %d, transformer d_model %d must "
                        "equal the seanet dimension %d",
                        c->outer_dim, c->quantizer_output_dimension, t->d_model, c->dimension);
    if (c->n_residual_layers < 0 || c->n_residual_layers > MIMI_MAX_RES || c->kernel_size < 1 ||
        c->kernel_size > MIMI_KERNEL_MAX || c->residual_kernel_size < 1 ||
        c->residual_kernel_size > MIMI_KERNEL_MAX || c->last_kernel_size < 1 ||
        c->last_kernel_size > MIMI_KERNEL_MAX || c->dilation_base < 1 || c->compress < 1 ||
        c->n_filters / c->compress < 1)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "mimi: bad seanet kernel/residual sizes");
    int64_t dil = 1;
    for (int j = 1; j < c->n_residual_layers; j++) {
        dil *= c->dilation_base;
        if (dil * (c->residual_kernel_size - 1) > MIMI_KERNEL_MAX)
            return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "mimi: residual dilation too large");
    }
    if (t->num_layers < 1 || t->num_layers > MIMI_MAX_LAYERS || t->context < 1 ||
        t->context > (1 << 20))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "mimi: transformer num_layers %d / context %d out of range",
                        t->num_layers, t->context);
    return CTTS_OK;
}

/* ---- binding ---- */

/* Conv weights: F32, or F16/BF16 where the backend takes them; never block types. */
static ctts_status bind_conv(nn_binder *b, conv_w *out, int has_bias, char *name, size_t cap,
                             int64_t d0, int64_t d1, int64_t k, int64_t cout, char *err,
                             size_t err_len) {
    const int64_t shape[3] = {d0, d1, k};
    ctts_status st = nn_bind_tensor(b, &out->w, NN_BIND_LINEAR, name, 3, shape, err, err_len);
    if (st != CTTS_OK) return st;
    size_t esize = ctts_dtype_size(out->w->dtype);
    if (esize == 0)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "tensor '%s': dtype %s not supported for convolutions", name,
                        ctts_dtype_name(out->w->dtype));
    if ((uintptr_t)out->w->data % esize != 0)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "tensor '%s': data not %zu-byte aligned",
                        name, esize);
    out->b = NULL;
    if (!has_bias) return CTTS_OK;
    /* name ends in "weight": swap in "bias". */
    size_t len = strlen(name);
    if (len < 6 || len - 6 + 5 >= cap) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bind: bad name");
    memcpy(name + len - 6, "bias", 5);
    const ctts_tensor *bt;
    const int64_t bshape[1] = {cout};
    st = nn_bind_tensor(b, &bt, NN_BIND_F32, name, 1, bshape, err, err_len);
    if (st != CTTS_OK) return st;
    if ((uintptr_t)bt->data % sizeof(float) != 0)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "tensor '%s': data not 4-byte aligned", name);
    out->b = (const float *)bt->data;
    return CTTS_OK;
}

/* snprintf into name; CTTS_E_INVALID_ARG if it did not fit. */
#define FMT_NAME(buf, ...)                                                                       \
    do {                                                                                         \
        int n_ = snprintf(buf, sizeof buf, __VA_ARGS__);                                         \
        if (n_ < 0 || (size_t)n_ >= sizeof buf)                                                  \
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "mimi: tensor name too long");     \
    } while (0)

static ctts_status bind_res(nn_binder *b, res_w *r, const char *part, int idx, int dim,
                            const pocket_mimi_config *c, int dilation, char *err,
                            size_t err_len) {
    char name[256];
    int hidden = dim / c->compress;
    r->dilation = dilation;
    FMT_NAME(name, "mimi.%s.model.%d.block.1.conv.weight", part, idx);
    ctts_status st = bind_conv(b, &r->c1, 1, name, sizeof name, hidden, dim,
                               c->residual_kernel_size, hidden, err, err_len);
    if (st != CTTS_OK) return st;
    FMT_NAME(name, "mimi.%s.model.%d.block.3.conv.weight", part, idx);
    return bind_conv(b, &r->c2, 1, name, sizeof name, dim, hidden, 1, dim, err, err_len);
}

static ctts_status bind_all(pocket_mimi *m, char *err, size_t err_len) {
    const pocket_mimi_config *c = &m->cfg;
    nn_binder *b = &m->binder;
    const int S = m->S, R = c->n_residual_layers, D = c->dimension;
    char name[256];
    ctts_status st;
    const int64_t qshape[3] = {c->outer_dim, c->quantizer_dimension, 1};
    st = nn_bind_tensor(b, &m->quant_proj, NN_BIND_LINEAR, "mimi.quantizer.output_proj.weight", 3,
                        qshape, err, err_len);
    if (st != CTTS_OK) return st;
    conv_w tmp;
    FMT_NAME(name, "mimi.upsample.convtr.convtr.weight");
    st = bind_conv(b, &tmp, 0, name, sizeof name, D, 1, 2 * S, D, err, err_len);
    if (st != CTTS_OK) return st;
    m->upsample = tmp.w;

    for (int l = 0; l < c->transformer.num_layers; l++) {
        FMT_NAME(name, "mimi.decoder_transformer.transformer.layers.%d.", l);
        st = nn_transformer_layer_bind(b, &m->tcfg, name, &m->dec_layers[l], err, err_len);
        if (st != CTTS_OK) return st;
    }

    /* SEANet decoder: 0 conv | per ratio: ELU, convtr, R resblocks | ELU, conv. */
    int ch = m->c_top, idx = 0;
    FMT_NAME(name, "mimi.decoder.model.%d.conv.weight", idx);
    st = bind_conv(b, &m->dec_in, 1, name, sizeof name, ch, D, c->kernel_size, ch, err, err_len);
    if (st != CTTS_OK) return st;
    idx++;
    for (int i = 0; i < c->n_ratios; i++) {
        int r = c->ratios[i];
        idx++; /* ELU */
        FMT_NAME(name, "mimi.decoder.model.%d.convtr.weight", idx);
        st = bind_conv(b, &m->dec_up[i], 1, name, sizeof name, ch, ch / 2, 2 * r, ch / 2, err,
                       err_len);
        if (st != CTTS_OK) return st;
        idx++;
        ch /= 2;
        for (int j = 0, dil = 1; j < R; j++, dil *= c->dilation_base, idx++) {
            st = bind_res(b, &m->dec_res[i][j], "decoder", idx, ch, c, dil, err, err_len);
            if (st != CTTS_OK) return st;
        }
    }
    idx++; /* ELU */
    FMT_NAME(name, "mimi.decoder.model.%d.conv.weight", idx);
    st = bind_conv(b, &m->dec_out, 1, name, sizeof name, c->channels, c->n_filters,
                   c->last_kernel_size, c->channels, err, err_len);
    if (st != CTTS_OK) return st;

    /* SEANet encoder: 0 conv | per reversed ratio: R resblocks, ELU, conv | ELU, conv. */
    ch = c->n_filters;
    idx = 0;
    FMT_NAME(name, "mimi.encoder.model.%d.conv.weight", idx);
    st = bind_conv(b, &m->enc_in, 1, name, sizeof name, ch, c->channels, c->kernel_size, ch, err,
                   err_len);
    if (st != CTTS_OK) return st;
    idx++;
    for (int i = 0; i < c->n_ratios; i++) {
        int r = c->ratios[c->n_ratios - 1 - i];
        for (int j = 0, dil = 1; j < R; j++, dil *= c->dilation_base, idx++) {
            st = bind_res(b, &m->enc_res[i][j], "encoder", idx, ch, c, dil, err, err_len);
            if (st != CTTS_OK) return st;
        }
        idx++; /* ELU */
        FMT_NAME(name, "mimi.encoder.model.%d.conv.weight", idx);
        st = bind_conv(b, &m->enc_down[i], 1, name, sizeof name, 2 * ch, ch, 2 * r, 2 * ch, err,
                       err_len);
        if (st != CTTS_OK) return st;
        idx++;
        ch *= 2;
    }
    idx++; /* ELU */
    FMT_NAME(name, "mimi.encoder.model.%d.conv.weight", idx);
    st = bind_conv(b, &m->enc_out, 1, name, sizeof name, D, ch, c->last_kernel_size, D, err,
                   err_len);
    if (st != CTTS_OK) return st;

    for (int l = 0; l < c->transformer.num_layers; l++) {
        FMT_NAME(name, "mimi.encoder_transformer.transformer.layers.%d.", l);
        st = nn_transformer_layer_bind(b, &m->tcfg, name, &m->enc_layers[l], err, err_len);
        if (st != CTTS_OK) return st;
    }
    FMT_NAME(name, "mimi.downsample.conv.conv.weight");
    st = bind_conv(b, &tmp, 0, name, sizeof name, c->inner_dim, D, 2 * S, c->inner_dim, err,
                   err_len);
    if (st != CTTS_OK) return st;
    m->downsample = tmp.w;
    return CTTS_OK;
}

/* The transformer reads norm and scale vectors as float arrays. */
static ctts_status check_layer_alignment(const nn_transformer_layer_weights *w, char *err,
                                         size_t err_len) {
    const ctts_tensor *v[6] = {w->norm1_w, w->norm1_b, w->norm2_w, w->norm2_b, w->ls1, w->ls2};
    for (int i = 0; i < 6; i++)
        if (v[i] && (uintptr_t)v[i]->data % sizeof(float) != 0)
            return ctts_err(err, err_len, CTTS_E_FORMAT, "tensor '%s': data not 4-byte aligned",
                            v[i]->name ? v[i]->name : "?");
    return CTTS_OK;
}

ctts_status pocket_mimi_bind(const pocket_mimi_config *cfg, ctts_backend *be,
                             pocket_weight_lookup get, void *get_ctx, pocket_mimi **out,
                             char *err, size_t err_len) {
    if (out) *out = NULL;
    if (!cfg || !be || !get || !out)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "mimi: bad arguments to bind");
    pocket_mimi *m = calloc(1, sizeof *m);
    if (!m) return ctts_err(err, err_len, CTTS_E_OOM, "mimi: out of memory");
    ctts_status st = check_config(cfg, &m->cfg, &m->S, err, err_len);
    if (st == CTTS_OK) {
        const pocket_mimi_transformer_config *t = &m->cfg.transformer;
        m->be = be;
        m->c_top = m->cfg.n_filters << m->cfg.n_ratios;
        m->tcfg = (nn_transformer_config){
            .d_model = t->d_model,
            .n_heads = t->num_heads,
            .d_ff = t->dim_feedforward,
            .max_period = t->max_period > 0.0f ? t->max_period : 10000.0f,
            .context = t->context,
            /* Every Mimi config sets layer_scale; the checkpoint holds the scales. */
            .has_layer_scale = 1,
        };
        st = nn_transformer_config_check(&m->tcfg, err, err_len);
    }
    if (st == CTTS_OK) {
        m->binder = (nn_binder){.be = be, .get = get, .get_ctx = get_ctx};
        st = bind_all(m, err, err_len);
    }
    for (int l = 0; st == CTTS_OK && l < m->cfg.transformer.num_layers; l++) {
        st = check_layer_alignment(&m->dec_layers[l], err, err_len);
        if (st == CTTS_OK) st = check_layer_alignment(&m->enc_layers[l], err, err_len);
    }
    if (st != CTTS_OK) {
        pocket_mimi_free(m);
        return st;
    }
    *out = m;
    return CTTS_OK;
}

void pocket_mimi_free(pocket_mimi *m) {
    if (!m) return;
    nn_binder_release(&m->binder);
    free(m);
}

const char *const *pocket_mimi_bound_names(const pocket_mimi *m, int *n) {
    if (n) *n = m ? m->binder.n_names : 0;
    return m ? (const char *const *)m->binder.names : NULL;
}

const pocket_mimi_config *pocket_mimi_get_config(const pocket_mimi *m) {
    return m ? &m->cfg : NULL;
}

/* ---- shared streaming pieces ---- */

typedef struct {
    nn_conv1d_stream c1, c2;
} res_stream;

/* Scratch shared by the SEANet stacks: h/h2 (current / next activations),
 * e (ELU output), r (resblock hidden). Each max_ct floats. */
typedef struct {
    float *h, *h2, *e, *r;
    size_t max_ct;
} seanet_scratch;

/* A transformer stack with windowed KV caches. */
typedef struct {
    const nn_transformer_layer_weights *layers;
    const nn_transformer_config *cfg;
    int n_layers;
    nn_kv_cache kv[MIMI_MAX_LAYERS];
    float *scratch;
    int t_max;
    int64_t pos; /* absolute position of the next row */
} tstack;

static void *alloc_f(ctts_backend *be, size_t n) {
    if (n == 0 || n > SIZE_MAX / sizeof(float)) return NULL;
    return be->alloc(be, n * sizeof(float));
}

static void free_f(ctts_backend *be, float **p) {
    if (*p) be->free_buf(be, *p);
    *p = NULL;
}

static ctts_status scratch_init(seanet_scratch *s, ctts_backend *be, size_t max_ct) {
    s->max_ct = max_ct;
    s->h = alloc_f(be, max_ct);
    s->h2 = alloc_f(be, max_ct);
    s->e = alloc_f(be, max_ct);
    s->r = alloc_f(be, max_ct);
    return s->h && s->h2 && s->e && s->r ? CTTS_OK : CTTS_E_OOM;
}

static void scratch_release(seanet_scratch *s, ctts_backend *be) {
    free_f(be, &s->h);
    free_f(be, &s->h2);
    free_f(be, &s->e);
    free_f(be, &s->r);
}

static ctts_status res_init(res_stream *rs, ctts_backend *be, const res_w *w, int replicate,
                            int t_max, char *err, size_t err_len) {
    ctts_status st = nn_conv1d_stream_init(&rs->c1, be, w->c1.w, w->c1.b, 1, w->dilation, 1,
                                           replicate, t_max, err, err_len);
    if (st != CTTS_OK) return st;
    return nn_conv1d_stream_init(&rs->c2, be, w->c2.w, w->c2.b, 1, 1, 1, replicate, t_max, err,
                                 err_len);
}

static void res_reset(res_stream *rs) {
    nn_conv1d_stream_reset(&rs->c1);
    nn_conv1d_stream_reset(&rs->c2);
}

static void res_release(res_stream *rs, ctts_backend *be) {
    nn_conv1d_stream_release(&rs->c1, be);
    nn_conv1d_stream_release(&rs->c2, be);
}

/* h [C, T] += conv1x1(ELU(conv_k(ELU(h)))). */
static ctts_status res_forward(res_stream *rs, ctts_backend *be, seanet_scratch *s, float *h,
                               int T) {
    size_t n = (size_t)rs->c1.cin * (size_t)T, nh = (size_t)rs->c1.cout * (size_t)T;
    be->act(be, s->e, h, n, CTTS_ACT_ELU);
    ctts_status st = nn_conv1d_stream_forward(&rs->c1, be, s->r, s->e, T);
    if (st != CTTS_OK) return st;
    be->act(be, s->r, s->r, nh, CTTS_ACT_ELU);
    st = nn_conv1d_stream_forward(&rs->c2, be, s->e, s->r, T);
    if (st != CTTS_OK) return st;
    be->add(be, h, h, s->e, n);
    return CTTS_OK;
}

static ctts_status tstack_init(tstack *ts, ctts_backend *be, const pocket_mimi *m,
                               const nn_transformer_layer_weights *layers, int t_max) {
    memset(ts, 0, sizeof *ts);
    ts->layers = layers;
    ts->cfg = &m->tcfg;
    ts->n_layers = m->cfg.transformer.num_layers;
    ts->t_max = t_max;
    /* Room for the window (context - 1 old rows) plus several calls, so the
     * shift that drops old rows runs about once per context rows. */
    int64_t ctx = m->tcfg.context;
    int64_t calls = ctx / t_max + 1;
    int64_t cap = ctx - 1 + calls * t_max;
    if (cap > INT_MAX / 4) return CTTS_E_UNSUPPORTED;
    for (int l = 0; l < ts->n_layers; l++) {
        ctts_status st = nn_kv_cache_init(&ts->kv[l], be, (int)cap, m->tcfg.d_model);
        if (st != CTTS_OK) return st;
    }
    ts->scratch = alloc_f(be, nn_transformer_scratch_floats(&m->tcfg, t_max));
    return ts->scratch ? CTTS_OK : CTTS_E_OOM;
}

static void tstack_reset(tstack *ts) {
    for (int l = 0; l < ts->n_layers; l++) ts->kv[l].n = 0;
    ts->pos = 0;
}

static void tstack_release(tstack *ts, ctts_backend *be) {
    for (int l = 0; l < ts->n_layers; l++) nn_kv_cache_release(&ts->kv[l], be);
    free_f(be, &ts->scratch);
}

/* x [T, D] in place through every layer at positions pos.. . */
static ctts_status tstack_forward(tstack *ts, ctts_backend *be, float *x, int T) {
    if (T <= 0 || T > ts->t_max) return CTTS_E_INVALID_ARG;
    if (ts->pos > (int64_t)INT_MAX - T) return CTTS_E_STATE;
    const int D = ts->cfg->d_model, keep_max = ts->cfg->context - 1;
    for (int l = 0; l < ts->n_layers; l++) {
        nn_kv_cache *kv = &ts->kv[l];
        if (kv->n + T > kv->capacity) {
            /* Rows older than the window are never attended again. */
            int keep = kv->n < keep_max ? kv->n : keep_max;
            size_t off = (size_t)(kv->n - keep) * (size_t)D, cnt = (size_t)keep * (size_t)D;
            memmove(kv->k, (float *)kv->k + off, cnt * sizeof(float));
            memmove(kv->v, (float *)kv->v + off, cnt * sizeof(float));
            kv->n = keep;
        }
        ctts_status st = nn_transformer_layer_forward(be, ts->cfg, &ts->layers[l], kv, x, T,
                                                      (int)ts->pos, ts->scratch);
        if (st != CTTS_OK) return st;
    }
    ts->pos += T;
    return CTTS_OK;
}

/* ---- decoder ---- */

struct pocket_mimi_dec {
    const pocket_mimi *m;
    ctts_backend *be;   /* owns the buffers (the model's backend) */
    ctts_backend *exec; /* runs the ops (be unless set_exec chose another) */
    float *lat;   /* [quantizer_dimension] */
    float *quant; /* [outer_dim, 1] */
    float *up;    /* [D, S] upsample output, later the transformer output back in [C, T] */
    float *tx;    /* [S, D] transformer rows */
    float *pcm;   /* [frame_size] */
    nn_convtr1d_stream upsample;
    tstack tr;
    nn_conv1d_stream conv_in, conv_out;
    nn_convtr1d_stream ups[POCKET_MAX_RATIOS];
    res_stream res[POCKET_MAX_RATIOS][MIMI_MAX_RES];
    seanet_scratch s;
};

ctts_status pocket_mimi_dec_new(const pocket_mimi *m, pocket_mimi_dec **out, char *err,
                                size_t err_len) {
    if (out) *out = NULL;
    if (!m || !out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "mimi: bad arguments");
    pocket_mimi_dec *d = calloc(1, sizeof *d);
    if (!d) return ctts_err(err, err_len, CTTS_E_OOM, "mimi: out of memory");
    const pocket_mimi_config *c = &m->cfg;
    ctts_backend *be = m->be;
    const int S = m->S, D = c->dimension, rep = c->pad_mode_replicate;
    d->m = m;
    d->be = be;
    d->exec = be;
    ctts_status st = CTTS_E_OOM;
    d->lat = alloc_f(be, (size_t)c->quantizer_dimension);
    d->quant = alloc_f(be, (size_t)c->outer_dim);
    d->up = alloc_f(be, (size_t)D * (size_t)S);
    d->tx = alloc_f(be, (size_t)D * (size_t)S);
    d->pcm = alloc_f(be, (size_t)c->frame_size);
    if (!d->lat || !d->quant || !d->up || !d->tx || !d->pcm) goto oom;
    st = nn_convtr1d_stream_init(&d->upsample, be, m->upsample, NULL, S, D, 1, err, err_len);
    if (st != CTTS_OK) goto fail;
    st = tstack_init(&d->tr, be, m, m->dec_layers, S);
    if (st != CTTS_OK) goto oom;

    int ch = m->c_top, T = S;
    size_t max_ct = (size_t)ch * (size_t)T;
    st = nn_conv1d_stream_init(&d->conv_in, be, m->dec_in.w, m->dec_in.b, 1, 1, 1, rep, T, err,
                               err_len);
    if (st != CTTS_OK) goto fail;
    for (int i = 0; i < c->n_ratios; i++) {
        int r = c->ratios[i];
        st = nn_convtr1d_stream_init(&d->ups[i], be, m->dec_up[i].w, m->dec_up[i].b, r, 1, T,
                                     err, err_len);
        if (st != CTTS_OK) goto fail;
        T *= r;
        ch /= 2;
        if ((size_t)ch * (size_t)T > max_ct) max_ct = (size_t)ch * (size_t)T;
        for (int j = 0; j < c->n_residual_layers; j++) {
            st = res_init(&d->res[i][j], be, &m->dec_res[i][j], rep, T, err, err_len);
            if (st != CTTS_OK) goto fail;
        }
    }
    st = nn_conv1d_stream_init(&d->conv_out, be, m->dec_out.w, m->dec_out.b, 1, 1, 1, rep, T, err,
                               err_len);
    if (st != CTTS_OK) goto fail;
    st = scratch_init(&d->s, be, max_ct);
    if (st != CTTS_OK) goto oom;
    *out = d;
    return CTTS_OK;
oom:
    st = ctts_err(err, err_len, CTTS_E_OOM, "mimi: out of memory for the decoder state");
fail:
    pocket_mimi_dec_free(d);
    return st;
}

void pocket_mimi_dec_reset(pocket_mimi_dec *d) {
    if (!d) return;
    const pocket_mimi_config *c = &d->m->cfg;
    nn_convtr1d_stream_reset(&d->upsample);
    tstack_reset(&d->tr);
    nn_conv1d_stream_reset(&d->conv_in);
    nn_conv1d_stream_reset(&d->conv_out);
    for (int i = 0; i < c->n_ratios; i++) {
        nn_convtr1d_stream_reset(&d->ups[i]);
        for (int j = 0; j < c->n_residual_layers; j++) res_reset(&d->res[i][j]);
    }
}

void pocket_mimi_dec_set_exec(pocket_mimi_dec *d, ctts_backend *exec) {
    if (d) d->exec = exec ? exec : d->be;
}

void pocket_mimi_dec_free(pocket_mimi_dec *d) {
    if (!d) return;
    ctts_backend *be = d->be;
    const pocket_mimi_config *c = &d->m->cfg;
    free_f(be, &d->lat);
    free_f(be, &d->quant);
    free_f(be, &d->up);
    free_f(be, &d->tx);
    free_f(be, &d->pcm);
    nn_convtr1d_stream_release(&d->upsample, be);
    tstack_release(&d->tr, be);
    nn_conv1d_stream_release(&d->conv_in, be);
    nn_conv1d_stream_release(&d->conv_out, be);
    for (int i = 0; i < c->n_ratios; i++) {
        nn_convtr1d_stream_release(&d->ups[i], be);
        for (int j = 0; j < c->n_residual_layers; j++) res_release(&d->res[i][j], be);
    }
    scratch_release(&d->s, be);
    free(d);
}

/* SEANet decoder over x [D, T] -> y [1, T * hop]. */
static ctts_status seanet_decode(pocket_mimi_dec *d, float *y, const float *x, int T) {
    const pocket_mimi_config *c = &d->m->cfg;
    ctts_backend *be = d->exec;
    seanet_scratch *s = &d->s;
    int ch = d->m->c_top;
    ctts_status st = nn_conv1d_stream_forward(&d->conv_in, be, s->h, x, T);
    for (int i = 0; st == CTTS_OK && i < c->n_ratios; i++) {
        be->act(be, s->e, s->h, (size_t)ch * (size_t)T, CTTS_ACT_ELU);
        st = nn_convtr1d_stream_forward(&d->ups[i], be, s->h2, s->e, T);
        float *t = s->h;
        s->h = s->h2;
        s->h2 = t;
        T *= c->ratios[i];
        ch /= 2;
        for (int j = 0; st == CTTS_OK && j < c->n_residual_layers; j++)
            st = res_forward(&d->res[i][j], be, s, s->h, T);
    }
    if (st != CTTS_OK) return st;
    be->act(be, s->e, s->h, (size_t)ch * (size_t)T, CTTS_ACT_ELU);
    return nn_conv1d_stream_forward(&d->conv_out, be, y, s->e, T);
}

ctts_status pocket_mimi_decode_frame(pocket_mimi_dec *d, const float *latent, float *pcm,
                                     float *tap_quant, float *tap_upsample,
                                     float *tap_transformer) {
    if (!d || !latent || !pcm) return CTTS_E_INVALID_ARG;
    const pocket_mimi *m = d->m;
    const pocket_mimi_config *c = &m->cfg;
    ctts_backend *be = d->exec;
    const int S = m->S, D = c->dimension;
    const size_t sd_bytes = (size_t)S * (size_t)D * sizeof(float);
    if (d->tr.pos > (int64_t)INT_MAX - S) return CTTS_E_STATE;

    ctts_backend_stage(be, CTTS_STAGE_MIMI_TRANSFORMER);
    be->upload(be, d->lat, latent, (size_t)c->quantizer_dimension * sizeof(float));
    be->linear(be, d->quant, d->lat, m->quant_proj, NULL, 1);
    if (tap_quant) be->download(be, tap_quant, d->quant, (size_t)c->outer_dim * sizeof(float));

    ctts_status st = nn_convtr1d_stream_forward(&d->upsample, be, d->up, d->quant, 1);
    if (st != CTTS_OK) return st;
    be->transpose(be, d->tx, d->up, D, S);
    if (tap_upsample) be->download(be, tap_upsample, d->tx, sd_bytes);

    st = tstack_forward(&d->tr, be, d->tx, S);
    if (st != CTTS_OK) return st;
    if (tap_transformer) be->download(be, tap_transformer, d->tx, sd_bytes);
    be->transpose(be, d->up, d->tx, S, D);

    ctts_backend_stage(be, CTTS_STAGE_SEANET);
    st = seanet_decode(d, d->pcm, d->up, S);
    if (st != CTTS_OK) return st;
    be->download(be, pcm, d->pcm, (size_t)c->frame_size * sizeof(float));
    be->sync(be);
    return CTTS_OK;
}

/* ---- encoder ---- */

typedef struct {
    const pocket_mimi *m;
    ctts_backend *be;
    float *x;    /* [1, chunk samples] */
    float *emb;  /* [D, T200] SEANet output, later the transformer output in [C, T] */
    float *tx;   /* [T200, D] */
    float *lat;  /* [inner_dim, frames] */
    float *latT; /* [frames, inner_dim] */
    nn_conv1d_stream conv_in, conv_out, down[POCKET_MAX_RATIOS], downsample;
    res_stream res[POCKET_MAX_RATIOS][MIMI_MAX_RES];
    tstack tr;
    seanet_scratch s;
} enc_state;

static void enc_release(enc_state *e) {
    ctts_backend *be = e->be;
    const pocket_mimi_config *c = &e->m->cfg;
    free_f(be, &e->x);
    free_f(be, &e->emb);
    free_f(be, &e->tx);
    free_f(be, &e->lat);
    free_f(be, &e->latT);
    nn_conv1d_stream_release(&e->conv_in, be);
    nn_conv1d_stream_release(&e->conv_out, be);
    nn_conv1d_stream_release(&e->downsample, be);
    for (int i = 0; i < c->n_ratios; i++) {
        nn_conv1d_stream_release(&e->down[i], be);
        for (int j = 0; j < c->n_residual_layers; j++) res_release(&e->res[i][j], be);
    }
    tstack_release(&e->tr, be);
    scratch_release(&e->s, be);
}

static ctts_status enc_init(enc_state *e, const pocket_mimi *m, int frames, char *err,
                            size_t err_len) {
    const pocket_mimi_config *c = &m->cfg;
    ctts_backend *be = m->be;
    const int S = m->S, D = c->dimension, rep = c->pad_mode_replicate;
    memset(e, 0, sizeof *e);
    e->m = m;
    e->be = be;
    int T = frames * c->frame_size, ch = c->n_filters;
    const int T200 = frames * S;
    e->x = alloc_f(be, (size_t)T);
    e->emb = alloc_f(be, (size_t)D * (size_t)T200);
    e->tx = alloc_f(be, (size_t)D * (size_t)T200);
    e->lat = alloc_f(be, (size_t)c->inner_dim * (size_t)frames);
    e->latT = alloc_f(be, (size_t)c->inner_dim * (size_t)frames);
    if (!e->x || !e->emb || !e->tx || !e->lat || !e->latT) return CTTS_E_OOM;
    size_t max_ct = (size_t)ch * (size_t)T;
    ctts_status st = nn_conv1d_stream_init(&e->conv_in, be, m->enc_in.w, m->enc_in.b, 1, 1, 1,
                                           rep, T, err, err_len);
    if (st != CTTS_OK) return st;
    for (int i = 0; i < c->n_ratios; i++) {
        int r = c->ratios[c->n_ratios - 1 - i];
        for (int j = 0; j < c->n_residual_layers; j++) {
            st = res_init(&e->res[i][j], be, &m->enc_res[i][j], rep, T, err, err_len);
            if (st != CTTS_OK) return st;
        }
        st = nn_conv1d_stream_init(&e->down[i], be, m->enc_down[i].w, m->enc_down[i].b, r, 1, 1,
                                   rep, T, err, err_len);
        if (st != CTTS_OK) return st;
        T /= r;
        ch *= 2;
        if ((size_t)ch * (size_t)T > max_ct) max_ct = (size_t)ch * (size_t)T;
    }
    st = nn_conv1d_stream_init(&e->conv_out, be, m->enc_out.w, m->enc_out.b, 1, 1, 1, rep, T, err,
                               err_len);
    if (st != CTTS_OK) return st;
    /* The downsample conv pads by replicating its first input (official code). */
    st = nn_conv1d_stream_init(&e->downsample, be, m->downsample, NULL, S, 1, 1, 1, T200, err,
                               err_len);
    if (st != CTTS_OK) return st;
    st = tstack_init(&e->tr, be, m, m->enc_layers, T200);
    if (st != CTTS_OK) return st;
    return scratch_init(&e->s, be, max_ct);
}

/* SEANet encoder over x [1, T] -> y [D, T / hop]. */
static ctts_status seanet_encode(enc_state *e, float *y, const float *x, int T) {
    const pocket_mimi_config *c = &e->m->cfg;
    ctts_backend *be = e->be;
    seanet_scratch *s = &e->s;
    int ch = c->n_filters;
    ctts_status st = nn_conv1d_stream_forward(&e->conv_in, be, s->h, x, T);
    for (int i = 0; st == CTTS_OK && i < c->n_ratios; i++) {
        for (int j = 0; st == CTTS_OK && j < c->n_residual_layers; j++)
            st = res_forward(&e->res[i][j], be, s, s->h, T);
        if (st != CTTS_OK) break;
        be->act(be, s->e, s->h, (size_t)ch * (size_t)T, CTTS_ACT_ELU);
        st = nn_conv1d_stream_forward(&e->down[i], be, s->h2, s->e, T);
        float *t = s->h;
        s->h = s->h2;
        s->h2 = t;
        T /= c->ratios[c->n_ratios - 1 - i];
        ch *= 2;
    }
    if (st != CTTS_OK) return st;
    be->act(be, s->e, s->h, (size_t)ch * (size_t)T, CTTS_ACT_ELU);
    return nn_conv1d_stream_forward(&e->conv_out, be, y, s->e, T);
}

ctts_status pocket_mimi_encode(const pocket_mimi *m, const float *pcm, size_t n, float **latents,
                               int *n_frames, float **tap_seanet, float **tap_transformer,
                               char *err, size_t err_len) {
    if (latents) *latents = NULL;
    if (n_frames) *n_frames = 0;
    if (tap_seanet) *tap_seanet = NULL;
    if (tap_transformer) *tap_transformer = NULL;
    if (!m || !pcm || !latents || !n_frames)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "mimi encode: bad arguments");
    const pocket_mimi_config *c = &m->cfg;
    const size_t fs = (size_t)c->frame_size, S = (size_t)m->S, D = (size_t)c->dimension,
                 inner = (size_t)c->inner_dim;
    if (n == 0) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "mimi encode: empty audio");
    size_t frames = n / fs + (n % fs != 0);
    if (frames > (size_t)INT_MAX / S / 4)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "mimi encode: audio too long (%zu samples)",
                        n);
    const int chunk = frames < ENC_CHUNK_FRAMES ? (int)frames : ENC_CHUNK_FRAMES;
    enc_state e;
    ctts_status st = enc_init(&e, m, chunk, err, err_len);
    float *host_x = malloc((size_t)chunk * fs * sizeof(float));
    float *lat = malloc(frames * inner * sizeof(float));
    float *seanet = tap_seanet ? malloc(frames * S * D * sizeof(float)) : NULL;
    float *trans = tap_transformer ? malloc(frames * S * D * sizeof(float)) : NULL;
    if (st == CTTS_OK &&
        (!host_x || !lat || (tap_seanet && !seanet) || (tap_transformer && !trans)))
        st = ctts_err(err, err_len, CTTS_E_OOM, "mimi encode: out of memory");
    else if (st == CTTS_E_OOM)
        st = ctts_err(err, err_len, CTTS_E_OOM, "mimi encode: out of memory for the encoder");
    ctts_backend *be = m->be;
    for (size_t f0 = 0; st == CTTS_OK && f0 < frames; f0 += (size_t)chunk) {
        size_t nf = frames - f0 < (size_t)chunk ? frames - f0 : (size_t)chunk;
        size_t s0 = f0 * fs, avail = n - s0 < nf * fs ? n - s0 : nf * fs;
        /* The official encoder zero-pads the end to a whole frame. */
        memcpy(host_x, pcm + s0, avail * sizeof(float));
        memset(host_x + avail, 0, (nf * fs - avail) * sizeof(float));
        be->upload(be, e.x, host_x, nf * fs * sizeof(float));
        const int T200 = (int)(nf * S);
        ctts_backend_stage(be, CTTS_STAGE_ENCODER);
        st = seanet_encode(&e, e.emb, e.x, (int)(nf * fs));
        if (st != CTTS_OK) {
            ctts_err(err, err_len, st, "mimi encode: SEANet encoder failed at frame %zu", f0);
            break;
        }
        be->transpose(be, e.tx, e.emb, (int)D, T200);
        if (seanet) be->download(be, seanet + f0 * S * D, e.tx, (size_t)T200 * D * sizeof(float));
        st = tstack_forward(&e.tr, be, e.tx, T200);
        if (st != CTTS_OK) {
            ctts_err(err, err_len, st, "mimi encode: transformer failed at frame %zu", f0);
            break;
        }
        if (trans) be->download(be, trans + f0 * S * D, e.tx, (size_t)T200 * D * sizeof(float));
        be->transpose(be, e.emb, e.tx, T200, (int)D);
        st = nn_conv1d_stream_forward(&e.downsample, be, e.lat, e.emb, T200);
        if (st != CTTS_OK) {
            ctts_err(err, err_len, st, "mimi encode: downsample failed at frame %zu", f0);
            break;
        }
        be->transpose(be, e.latT, e.lat, (int)inner, (int)nf);
        be->download(be, lat + f0 * inner, e.latT, nf * inner * sizeof(float));
    }
    if (st == CTTS_OK) be->sync(be);
    enc_release(&e);
    free(host_x);
    if (st != CTTS_OK) {
        free(lat);
        free(seanet);
        free(trans);
        return st;
    }
    *latents = lat;
    *n_frames = (int)frames;
    if (tap_seanet) *tap_seanet = seanet;
    if (tap_transformer) *tap_transformer = trans;
    return CTTS_OK;
}
