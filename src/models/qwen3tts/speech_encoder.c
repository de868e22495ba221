/*
 * Qwen3-TTS-12Hz speech tokenizer encoder (see speech_encoder.h): binding and
 * the piecewise encode.
 *
 * One piece of P samples (P a multiple of the hop except for the last piece):
 *   [1, P] --conv0--> [F, P] --per ratio r: residual blocks, ELU, conv stride r-->
 *   ... --ELU, conv_out--> [hidden, P/960] --transpose, transformer layers-->
 *   --transpose--> --downsample (k4, stride 2, replicate)--> [hidden, P/1920]
 *   --transpose--> [frames, hidden] --RVQ--> codes.
 * Conv states are nn/conv.h streams (zero initial state = causal zero padding).
 * The last piece may end inside a stride: each strided conv then gets its
 * input completed with zeros (the downsample: copies of the last column) up
 * to the next multiple of the stride, as MimiConv1d's extra right padding.
 *
 * Nearest centroid: scores x.e by linear() against the centroid table, then
 * on the host d^2 = |x|^2 + |e|^2 - 2 x.e clamped at 0 and the first minimum
 * (torch.cdist's matrix-product form and argmin). Residual updates and
 * projections are backend ops.
 */
#include "models/qwen3tts/speech_encoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "nn/codec_layer.h"
#include "nn/conv.h"
#include "nn/qwen3_layer.h"

#define SE_MAX_RATIOS Q3T_MAX_RATES
#define SE_MAX_RES 4
#define SE_MAX_LAYERS 32
#define SE_MAX_Q 64
#define SE_DIM_MAX (1 << 16)
#define SE_PIECE_FRAMES 4 /* 12.5 Hz frames per piece */
#define SE_CB_EPS 1e-5f
#define SE_DOWN_STRIDE 2

typedef struct {
    const ctts_tensor *w; /* {cout, cin, k} */
    const float *b;       /* [cout] owned copy, or NULL */
} conv_w;

typedef struct {
    conv_w c1; /* {c/compress, c, residual_kernel_size}, dilated */
    conv_w c2; /* {c, c/compress, 1} */
    int dilation;
} res_w;

struct q3t_speech_encoder {
    q3t_codec_encoder_config cfg;
    ctts_backend *be;
    nn_binder binder;

    int n_ratios, ratios[SE_MAX_RATIOS]; /* encoder order (config order reversed) */
    int F, hidden, n_res, n_layers, cbdim, cb, nq;
    int hop25; /* samples per 25 Hz step: product of ratios */
    int hop;   /* samples per code frame: hop25 * 2 */
    conv_w conv0;                         /* {F, 1, kernel_size} */
    res_w res[SE_MAX_RATIOS][SE_MAX_RES];
    conv_w down[SE_MAX_RATIOS];           /* {2c, c, 2r} */
    conv_w conv_out;                      /* {hidden, F << n_ratios, last_kernel_size} */
    nn_codec_layer_config lcfg;
    nn_codec_layer_weights layers[SE_MAX_LAYERS];
    const ctts_tensor *downsample;        /* {hidden, hidden, 4} */
    const ctts_tensor *sem_in, *ac_in;    /* {cbdim, hidden, 1}; NULL when cbdim == hidden */
    ctts_tensor tables[SE_MAX_Q];         /* [cb, cbdim] centroids (owned data) */
    float *enorm[SE_MAX_Q];               /* [cb] |centroid|^2 (host) */
    float *neg_one;                       /* [cbdim] -1 */
};

/* ---- binding ---- */

#define FMT_NAME(buf, ...)                                                                       \
    do {                                                                                         \
        int n_ = snprintf(buf, sizeof buf, __VA_ARGS__);                                         \
        if (n_ < 0 || (size_t)n_ >= sizeof buf)                                                  \
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech encoder: name too long");  \
    } while (0)

#define TRY(x)                                                                                   \
    do {                                                                                         \
        ctts_status st_ = (x);                                                                   \
        if (st_ != CTTS_OK) return st_;                                                          \
    } while (0)

static ctts_status bind_vec(q3t_speech_encoder *e, float **out, const char *name, int ndim,
                            const int64_t *shape, char *err, size_t err_len) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *dst = nn_binder_alloc(&e->binder, (size_t)n * sizeof(float));
    if (!dst) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory binding '%s'", name);
    TRY(nn_bind_to_f32(&e->binder, dst, name, ndim, shape, err, err_len));
    *out = dst;
    return CTTS_OK;
}

static ctts_status bind_conv(q3t_speech_encoder *e, conv_w *out, const char *stem, int64_t cout,
                             int64_t cin, int64_t k, int has_bias, char *err, size_t err_len) {
    char name[256];
    FMT_NAME(name, "%sweight", stem);
    const int64_t shape[3] = {cout, cin, k};
    TRY(nn_bind_tensor(&e->binder, &out->w, NN_BIND_LINEAR, name, 3, shape, err, err_len));
    const ctts_dtype dt = out->w->dtype;
    if (dt != CTTS_DT_F32 && dt != CTTS_DT_F16 && dt != CTTS_DT_BF16)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "tensor '%s': dtype %s not supported for convolutions", name,
                        ctts_dtype_name(dt));
    if ((uintptr_t)out->w->data % ctts_dtype_size(dt) != 0)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "tensor '%s': data not %zu-byte aligned",
                        name, ctts_dtype_size(dt));
    out->b = NULL;
    if (!has_bias) return CTTS_OK;
    FMT_NAME(name, "%sbias", stem);
    float *b = NULL;
    TRY(bind_vec(e, &b, name, 1, &cout, err, err_len));
    out->b = b;
    return CTTS_OK;
}

/* "<stem>codebook.{cluster_usage,embed_sum,initialized}" -> tables[q], enorm[q]. */
static ctts_status bind_codebook(q3t_speech_encoder *e, int q, const char *stem, char *err,
                                 size_t err_len) {
    char name[256];
    float *usage = NULL, *tab = NULL, *init = NULL;
    const int64_t s_cb[1] = {e->cb}, s_tab[2] = {e->cb, e->cbdim}, s_one[1] = {1};
    FMT_NAME(name, "%scodebook.cluster_usage", stem);
    TRY(bind_vec(e, &usage, name, 1, s_cb, err, err_len));
    FMT_NAME(name, "%scodebook.embed_sum", stem);
    TRY(bind_vec(e, &tab, name, 2, s_tab, err, err_len));
    FMT_NAME(name, "%scodebook.initialized", stem);
    TRY(bind_vec(e, &init, name, 1, s_one, err, err_len));
    e->enorm[q] = nn_binder_alloc(&e->binder, (size_t)e->cb * sizeof(float));
    if (!e->enorm[q]) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory binding '%s'", stem);
    for (int i = 0; i < e->cb; i++) {
        const float u = usage[i] > SE_CB_EPS ? usage[i] : SE_CB_EPS; /* clamp(min=eps) */
        float *row = tab + (size_t)i * (size_t)e->cbdim, s = 0.0f;
        for (int j = 0; j < e->cbdim; j++) {
            row[j] /= u;
            s += row[j] * row[j];
        }
        e->enorm[q][i] = s;
    }
    ctts_tensor *t = &e->tables[q];
    memset(t, 0, sizeof *t);
    t->dtype = CTTS_DT_F32;
    t->ndim = 2;
    t->shape[0] = e->cb;
    t->shape[1] = e->cbdim;
    t->data = tab;
    t->nbytes = (size_t)e->cb * (size_t)e->cbdim * sizeof(float);
    return CTTS_OK;
}

static ctts_status bind_all(q3t_speech_encoder *e, char *err, size_t err_len) {
    char stem[192], name[256];
    const q3t_codec_encoder_config *c = &e->cfg;
    TRY(bind_conv(e, &e->conv0, "encoder.encoder.layers.0.conv.", e->F, 1, c->kernel_size, 1, err,
                  err_len));
    int idx = 1, ch = e->F;
    for (int i = 0; i < e->n_ratios; i++) {
        const int hid = ch / c->compress;
        int dil = 1;
        for (int j = 0; j < e->n_res; j++, idx++) {
            res_w *r = &e->res[i][j];
            r->dilation = dil;
            FMT_NAME(stem, "encoder.encoder.layers.%d.block.1.conv.", idx);
            TRY(bind_conv(e, &r->c1, stem, hid, ch, c->residual_kernel_size, 1, err, err_len));
            FMT_NAME(stem, "encoder.encoder.layers.%d.block.3.conv.", idx);
            TRY(bind_conv(e, &r->c2, stem, ch, hid, 1, 1, err, err_len));
            dil *= c->dilation_growth_rate;
        }
        idx++; /* ELU */
        FMT_NAME(stem, "encoder.encoder.layers.%d.conv.", idx);
        TRY(bind_conv(e, &e->down[i], stem, 2 * ch, ch, 2 * e->ratios[i], 1, err, err_len));
        idx++;
        ch *= 2;
    }
    idx++; /* ELU */
    FMT_NAME(stem, "encoder.encoder.layers.%d.conv.", idx);
    TRY(bind_conv(e, &e->conv_out, stem, e->hidden, ch, c->last_kernel_size, 1, err, err_len));
    for (int i = 0; i < e->n_layers; i++) {
        FMT_NAME(stem, "encoder.encoder_transformer.layers.%d.", i);
        TRY(nn_codec_layer_bind(&e->binder, &e->lcfg, stem, &e->layers[i], err, err_len));
    }
    conv_w ds;
    TRY(bind_conv(e, &ds, "encoder.downsample.conv.", e->hidden, e->hidden, 2 * SE_DOWN_STRIDE, 0,
                  err, err_len));
    e->downsample = ds.w;

    const char *parts[2] = {"semantic_residual_vector_quantizer",
                            "acoustic_residual_vector_quantizer"};
    const int n_sem = c->num_semantic_quantizers;
    for (int p = 0; p < 2; p++) {
        const ctts_tensor *unused;
        const int64_t s_in[3] = {e->cbdim, e->hidden, 1}, s_out[3] = {e->hidden, e->cbdim, 1};
        if (e->cbdim != e->hidden) {
            FMT_NAME(name, "encoder.quantizer.%s.input_proj.weight", parts[p]);
            TRY(nn_bind_tensor(&e->binder, p ? &e->ac_in : &e->sem_in, NN_BIND_LINEAR, name, 3,
                               s_in, err, err_len));
            FMT_NAME(name, "encoder.quantizer.%s.output_proj.weight", parts[p]);
            TRY(nn_bind_tensor(&e->binder, &unused, NN_BIND_LINEAR, name, 3, s_out, err, err_len));
        }
        const int n = p ? e->nq - n_sem : n_sem;
        for (int i = 0; i < n; i++) {
            FMT_NAME(stem, "encoder.quantizer.%s.layers.%d.", parts[p], i);
            TRY(bind_codebook(e, p ? n_sem + i : i, stem, err, err_len));
        }
    }
    e->neg_one = nn_binder_alloc(&e->binder, (size_t)e->cbdim * sizeof(float));
    if (!e->neg_one) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    for (int j = 0; j < e->cbdim; j++) e->neg_one[j] = -1.0f;
    return CTTS_OK;
}

static ctts_status check_config(const q3t_codec_config *k, char *err, size_t err_len) {
    const q3t_codec_encoder_config *c = &k->enc;
    if (!c->present)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "speech encoder: speech_tokenizer/config.json has no encoder_config");
    if (c->use_conv_shortcut || c->pad_mode_replicate)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "speech encoder: use_conv_shortcut / replicate pad_mode are not supported");
    if (c->n_upsampling_ratios < 1 || c->n_upsampling_ratios > SE_MAX_RATIOS ||
        c->num_residual_layers < 0 || c->num_residual_layers > SE_MAX_RES ||
        c->num_filters < 1 || ((int64_t)c->num_filters << c->n_upsampling_ratios) > SE_DIM_MAX ||
        c->hidden_size < 1 || c->hidden_size > SE_DIM_MAX || c->compress < 1 ||
        c->num_filters / c->compress < 1 || c->kernel_size < 1 || c->kernel_size > 64 ||
        c->last_kernel_size < 1 || c->last_kernel_size > 64 || c->residual_kernel_size < 1 ||
        c->residual_kernel_size > 64 || c->dilation_growth_rate < 1 ||
        c->dilation_growth_rate > 64)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech encoder: bad SEANet sizes");
    if (c->num_hidden_layers < 0 || c->num_hidden_layers > SE_MAX_LAYERS)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech encoder: %d transformer layers",
                        c->num_hidden_layers);
    if (c->num_quantizers < 1 || c->num_quantizers > SE_MAX_Q || c->num_semantic_quantizers != 1 ||
        c->codebook_size < 2 || c->codebook_size > (1 << 20) || c->codebook_dim < 1 ||
        c->codebook_dim > SE_DIM_MAX)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "speech encoder: %d quantizers (%d semantic), codebook %d x %d",
                        c->num_quantizers, c->num_semantic_quantizers, c->codebook_size,
                        c->codebook_dim);
    int64_t hop = SE_DOWN_STRIDE;
    for (int i = 0; i < c->n_upsampling_ratios; i++) {
        if (c->upsampling_ratios[i] < 1 || c->upsampling_ratios[i] > 64)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech encoder: bad ratio %d",
                            c->upsampling_ratios[i]);
        hop *= c->upsampling_ratios[i];
    }
    if (hop != k->encode_downsample_rate)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "speech encoder: ratios x 2 = %lld differ from encode_downsample_rate %d",
                        (long long)hop, k->encode_downsample_rate);
    return CTTS_OK;
}

ctts_status q3t_speech_encoder_bind(const q3t_codec_config *cfg, ctts_backend *be,
                                    q3t_weight_lookup get, void *get_ctx,
                                    q3t_speech_encoder **out, char *err, size_t err_len) {
    if (!out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech encoder: no output");
    *out = NULL;
    if (!cfg || !be || !get)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech encoder: bad arguments");
    TRY(check_config(cfg, err, err_len));
    const q3t_codec_encoder_config *c = &cfg->enc;
    q3t_speech_encoder *e = calloc(1, sizeof *e);
    if (!e) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    e->cfg = *c;
    e->be = be;
    e->binder = (nn_binder){.be = be, .get = get, .get_ctx = get_ctx};
    e->n_ratios = c->n_upsampling_ratios;
    e->hop25 = 1;
    for (int i = 0; i < e->n_ratios; i++) {
        e->ratios[i] = c->upsampling_ratios[e->n_ratios - 1 - i];
        e->hop25 *= e->ratios[i];
    }
    e->hop = e->hop25 * SE_DOWN_STRIDE;
    e->F = c->num_filters;
    e->hidden = c->hidden_size;
    e->n_res = c->num_residual_layers;
    e->n_layers = c->num_hidden_layers;
    e->cbdim = c->codebook_dim;
    e->cb = c->codebook_size;
    e->nq = c->num_quantizers;
    e->lcfg = (nn_codec_layer_config){.d_model = c->hidden_size,
                                      .n_heads = c->num_attention_heads,
                                      .n_kv_heads = c->num_key_value_heads,
                                      .head_dim = c->head_dim,
                                      .d_ff = c->intermediate_size,
                                      .norm_eps = c->norm_eps,
                                      .rope_theta = c->rope_theta,
                                      .window = c->sliding_window,
                                      .norm = NN_CODEC_NORM_LAYER,
                                      .mlp = NN_CODEC_MLP_GELU};
    ctts_status st = bind_all(e, err, err_len);
    if (st != CTTS_OK) {
        q3t_speech_encoder_free(e);
        return st;
    }
    *out = e;
    return CTTS_OK;
}

void q3t_speech_encoder_free(q3t_speech_encoder *e) {
    if (!e) return;
    for (int i = 0; i < SE_MAX_LAYERS; i++) nn_codec_layer_release(&e->layers[i], e->be);
    nn_binder_release(&e->binder);
    free(e);
}

const char *const *q3t_speech_encoder_bound_names(const q3t_speech_encoder *e, int *n) {
    if (n) *n = e ? e->binder.n_names : 0;
    return e ? (const char *const *)e->binder.names : NULL;
}

int q3t_speech_encoder_hop(const q3t_speech_encoder *e) { return e ? e->hop : 0; }
int q3t_speech_encoder_max_quantizers(const q3t_speech_encoder *e) { return e ? e->nq : 0; }

/* ---- encode ---- */

typedef struct {
    nn_conv1d_stream c1, c2;
} res_state;

typedef struct {
    const q3t_speech_encoder *e;
    ctts_backend *be;
    int P; /* samples per piece */
    nn_conv1d_stream conv0, down[SE_MAX_RATIOS], conv_out, downsample;
    res_state res[SE_MAX_RATIOS][SE_MAX_RES];
    nn_kv_cache kv[SE_MAX_LAYERS];
    float *buf[3];
    float *tscr;
    float *host;  /* [frames_piece, max(cb, cbdim)] host copies */
    float *xnorm; /* [frames_piece] */
    int32_t *ids; /* [frames_piece] */
    /* Optional whole-signal taps. */
    float *tap_seanet, *tap_tr, *tap_down, *tap_margin;
} enc_state;

static void state_free(enc_state *s) {
    ctts_backend *be = s->be;
    nn_conv1d_stream_release(&s->conv0, be);
    nn_conv1d_stream_release(&s->conv_out, be);
    nn_conv1d_stream_release(&s->downsample, be);
    for (int i = 0; i < SE_MAX_RATIOS; i++) {
        nn_conv1d_stream_release(&s->down[i], be);
        for (int j = 0; j < SE_MAX_RES; j++) {
            nn_conv1d_stream_release(&s->res[i][j].c1, be);
            nn_conv1d_stream_release(&s->res[i][j].c2, be);
        }
    }
    for (int i = 0; i < SE_MAX_LAYERS; i++) nn_kv_cache_release(&s->kv[i], be);
    for (int i = 0; i < 3; i++)
        if (s->buf[i]) be->free_buf(be, s->buf[i]);
    if (s->tscr) be->free_buf(be, s->tscr);
    free(s->host);
    free(s->xnorm);
    free(s->ids);
    free(s->tap_seanet);
    free(s->tap_tr);
    free(s->tap_down);
    free(s->tap_margin);
}

static ctts_status state_init(enc_state *s, const q3t_speech_encoder *e, int n_frames25,
                              int want_taps, int n_frames, int n_q, char *err, size_t err_len) {
    ctts_backend *be = e->be;
    memset(s, 0, sizeof *s);
    s->e = e;
    s->be = be;
    s->P = SE_PIECE_FRAMES * e->hop;
    ctts_status st = nn_conv1d_stream_init(&s->conv0, be, e->conv0.w, e->conv0.b, 1, 1, 1, 0,
                                           s->P, err, err_len);
    int len = s->P, ch = e->F;
    size_t max_f = (size_t)e->F * (size_t)len; /* largest [channels x samples] of a piece */
    for (int i = 0; st == CTTS_OK && i < e->n_ratios; i++) {
        for (int j = 0; st == CTTS_OK && j < e->n_res; j++) {
            st = nn_conv1d_stream_init(&s->res[i][j].c1, be, e->res[i][j].c1.w, e->res[i][j].c1.b,
                                       1, e->res[i][j].dilation, 1, 0, len, err, err_len);
            if (st == CTTS_OK)
                st = nn_conv1d_stream_init(&s->res[i][j].c2, be, e->res[i][j].c2.w,
                                           e->res[i][j].c2.b, 1, 1, 1, 0, len, err, err_len);
        }
        if (st == CTTS_OK)
            st = nn_conv1d_stream_init(&s->down[i], be, e->down[i].w, e->down[i].b, e->ratios[i],
                                       1, 1, 0, len, err, err_len);
        len /= e->ratios[i];
        ch *= 2;
        if ((size_t)ch * (size_t)len > max_f) max_f = (size_t)ch * (size_t)len;
    }
    if (st == CTTS_OK)
        st = nn_conv1d_stream_init(&s->conv_out, be, e->conv_out.w, e->conv_out.b, 1, 1, 1, 0, len,
                                   err, err_len);
    if (st == CTTS_OK)
        st = nn_conv1d_stream_init(&s->downsample, be, e->downsample, NULL, SE_DOWN_STRIDE, 1, 1,
                                   1, len, err, err_len);
    const int t25 = len, t12 = len / SE_DOWN_STRIDE;
    /* Without a window the cache holds the whole signal. */
    const int kv_cap = e->lcfg.window > 0 ? nn_codec_layer_kv_capacity(&e->lcfg, t25) : n_frames25;
    for (int i = 0; st == CTTS_OK && i < e->n_layers; i++)
        if (nn_kv_cache_init(&s->kv[i], be, kv_cap, nn_codec_layer_kv_width(&e->lcfg)) != CTTS_OK)
            st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory for the encoder KV cache");
    const size_t wide = (size_t)(e->cb > e->cbdim ? e->cb : e->cbdim);
    if ((size_t)t12 * wide > max_f) max_f = (size_t)t12 * wide;
    if ((size_t)t25 * (size_t)e->hidden * 2 > max_f) max_f = (size_t)t25 * (size_t)e->hidden * 2;
    if ((size_t)t12 * (size_t)(e->hidden + e->cbdim) > max_f)
        max_f = (size_t)t12 * (size_t)(e->hidden + e->cbdim); /* [T, H] rows + quantized rows */
    for (int i = 0; st == CTTS_OK && i < 3; i++) {
        s->buf[i] = be->alloc(be, max_f * sizeof(float));
        if (!s->buf[i]) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    if (st == CTTS_OK && e->n_layers > 0) {
        s->tscr = be->alloc(be, nn_codec_layer_scratch_floats(&e->lcfg, t25) * sizeof(float));
        if (!s->tscr) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    if (st == CTTS_OK) {
        s->host = malloc((size_t)t12 * wide * sizeof(float));
        s->xnorm = malloc((size_t)t12 * sizeof(float));
        s->ids = malloc((size_t)t12 * sizeof(int32_t));
        if (!s->host || !s->xnorm || !s->ids) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    if (st == CTTS_OK && want_taps) {
        s->tap_seanet = calloc((size_t)e->hidden * (size_t)n_frames25, sizeof(float));
        s->tap_tr = calloc((size_t)e->hidden * (size_t)n_frames25, sizeof(float));
        s->tap_down = calloc((size_t)e->hidden * (size_t)n_frames, sizeof(float));
        s->tap_margin = calloc((size_t)n_q * (size_t)n_frames, sizeof(float));
        if (!s->tap_seanet || !s->tap_tr || !s->tap_down || !s->tap_margin)
            st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    if (st != CTTS_OK) state_free(s);
    return st;
}

/* Copies x [C, L] into y [C, L2] (L2 >= L), filling columns L.. with zeros or
 * (replicate) with the last column. */
static void pad_cols(float *y, const float *x, int C, int L, int L2, int replicate) {
    nn_copy_rows(y, (size_t)L2, x, (size_t)L, (size_t)C, (size_t)L);
    for (int c = 0; c < C; c++)
        for (int j = L; j < L2; j++) y[(size_t)c * L2 + j] = replicate ? x[(size_t)c * L + L - 1] : 0.0f;
}

/* Nearest centroid of codebook q for rows x [T, cbdim] (backend memory):
 * ids[t] and (optional) the distance margins. */
static void nearest(enc_state *s, int q, const float *x, int T, float *scores, float *margin,
                    int margin_stride) {
    const q3t_speech_encoder *e = s->e;
    ctts_backend *be = s->be;
    const int D = e->cbdim, N = e->cb;
    be->download(be, s->host, x, (size_t)T * D * sizeof(float));
    for (int t = 0; t < T; t++) {
        float n2 = 0.0f;
        for (int j = 0; j < D; j++) n2 += s->host[(size_t)t * D + j] * s->host[(size_t)t * D + j];
        s->xnorm[t] = n2;
    }
    be->linear(be, scores, x, &e->tables[q], NULL, T);
    be->download(be, s->host, scores, (size_t)T * N * sizeof(float));
    const float *en = e->enorm[q];
    for (int t = 0; t < T; t++) {
        const float *sc = s->host + (size_t)t * N;
        float best = INFINITY, second = INFINITY;
        int arg = 0;
        for (int i = 0; i < N; i++) {
            float d2 = s->xnorm[t] + en[i] - 2.0f * sc[i];
            if (d2 < 0.0f) d2 = 0.0f;
            if (d2 < best) {
                second = best;
                best = d2;
                arg = i;
            } else if (d2 < second) {
                second = d2;
            }
        }
        s->ids[t] = arg;
        if (margin) margin[(size_t)t * margin_stride] = sqrtf(second) - sqrtf(best);
    }
}

/* Runs one piece of L samples (L <= P; L < P only for the last piece). */
static void encode_piece(enc_state *s, const float *pcm, int L, int pos25, int frame0,
                         int32_t *codes, int n_q, int n_frames25, int n_frames) {
    const q3t_speech_encoder *e = s->e;
    ctts_backend *be = s->be;
    float *cur = s->buf[0], *o1 = s->buf[1], *o2 = s->buf[2], *t;
    be->upload(be, o1, pcm, (size_t)L * sizeof(float));
    nn_conv1d_stream_forward(&s->conv0, be, cur, o1, L);
    int ch = e->F;
    for (int i = 0; i < e->n_ratios; i++) {
        for (int j = 0; j < e->n_res; j++) {
            const int hid = ch / e->cfg.compress;
            be->act(be, o1, cur, (size_t)ch * L, CTTS_ACT_ELU);
            nn_conv1d_stream_forward(&s->res[i][j].c1, be, o2, o1, L);
            be->act(be, o2, o2, (size_t)hid * L, CTTS_ACT_ELU);
            nn_conv1d_stream_forward(&s->res[i][j].c2, be, o1, o2, L);
            be->add(be, cur, cur, o1, (size_t)ch * L);
        }
        const int r = e->ratios[i], L2 = (L + r - 1) / r * r;
        be->act(be, o1, cur, (size_t)ch * L, CTTS_ACT_ELU);
        if (L2 != L) {
            pad_cols(o2, o1, ch, L, L2, 0);
            t = o1, o1 = o2, o2 = t;
        }
        nn_conv1d_stream_forward(&s->down[i], be, cur, o1, L2);
        L = L2 / r;
        ch *= 2;
    }
    be->act(be, o1, cur, (size_t)ch * L, CTTS_ACT_ELU);
    nn_conv1d_stream_forward(&s->conv_out, be, cur, o1, L); /* [hidden, L] at 25 Hz */
    const int H = e->hidden, T25 = L;
    if (s->tap_seanet)
        nn_copy_rows(s->tap_seanet + pos25, (size_t)n_frames25, cur, (size_t)T25, (size_t)H,
                     (size_t)T25);
    be->transpose(be, o1, cur, H, T25); /* [T25, H] */
    for (int i = 0; i < e->n_layers; i++)
        nn_codec_layer_forward(be, &e->lcfg, &e->layers[i], &s->kv[i], o1, T25, pos25, s->tscr);
    if (s->tap_tr) be->download(be, s->tap_tr + (size_t)pos25 * H, o1, (size_t)T25 * H * sizeof(float));
    be->transpose(be, cur, o1, T25, H); /* [H, T25] */
    int T2 = T25;
    if (T25 % SE_DOWN_STRIDE) {
        T2 = T25 + SE_DOWN_STRIDE - T25 % SE_DOWN_STRIDE;
        pad_cols(o1, cur, H, T25, T2, 1);
        t = cur, cur = o1, o1 = t;
    }
    nn_conv1d_stream_forward(&s->downsample, be, o1, cur, T2);
    const int T = T2 / SE_DOWN_STRIDE;
    if (s->tap_down)
        nn_copy_rows(s->tap_down + frame0, (size_t)n_frames, o1, (size_t)T, (size_t)H, (size_t)T);
    be->transpose(be, cur, o1, H, T); /* [T, H] */

    /* RVQ: semantic codebook on its projection, acoustic ones on a residual. */
    const int D = e->cbdim;
    float *xs = o1, *scores = o2;
    float *margin = s->tap_margin ? s->tap_margin + (size_t)frame0 * n_q : NULL;
    if (e->sem_in) be->linear(be, xs, cur, e->sem_in, NULL, T);
    nearest(s, 0, e->sem_in ? xs : cur, T, scores, margin, n_q);
    for (int f = 0; f < T; f++) codes[(size_t)(frame0 + f) * n_q] = s->ids[f];
    if (n_q < 2) return;
    float *res = xs;
    if (e->ac_in) be->linear(be, res, cur, e->ac_in, NULL, T);
    else be->upload(be, res, cur, (size_t)T * D * sizeof(float));
    float *quant = cur + (size_t)T * H; /* behind the [T, H] rows */
    for (int q = 1; q < n_q; q++) {
        nearest(s, q, res, T, scores, margin ? margin + q : NULL, n_q);
        for (int f = 0; f < T; f++) codes[(size_t)(frame0 + f) * n_q + q] = s->ids[f];
        if (q + 1 == n_q) break;
        be->get_rows(be, quant, &e->tables[q], s->ids, T);
        be->add_scaled_rows(be, res, quant, e->neg_one, T, D);
    }
}

ctts_status q3t_speech_encode(const q3t_speech_encoder *e, const float *pcm, size_t n, int n_q,
                              int32_t **codes, int *n_frames, q3t_senc_tap_fn tap, void *tap_user,
                              char *err, size_t err_len) {
    if (codes) *codes = NULL;
    if (n_frames) *n_frames = 0;
    if (!e || !pcm || !codes || !n_frames)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech encoder: bad arguments");
    if (n == 0) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech encoder: empty audio");
    if (n_q < 1 || n_q > e->nq)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "speech encoder: %d quantizers requested (1..%d)", n_q, e->nq);
    if (n > (size_t)1 << 31)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech encoder: audio too long");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(pcm[i]))
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "speech encoder: sample %zu is not a finite number", i);
    const int nf = (int)((n + (size_t)e->hop - 1) / (size_t)e->hop);
    const int nf25 = (int)((n + (size_t)e->hop25 - 1) / (size_t)e->hop25);
    enc_state s;
    ctts_status st = state_init(&s, e, nf25, tap != NULL, nf, n_q, err, err_len);
    if (st != CTTS_OK) return st;
    int32_t *out = malloc((size_t)nf * (size_t)n_q * sizeof *out);
    if (!out) {
        state_free(&s);
        return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    int pos25 = 0, frame = 0;
    for (size_t off = 0; off < n; off += (size_t)s.P) {
        const int L = n - off < (size_t)s.P ? (int)(n - off) : s.P;
        encode_piece(&s, pcm + off, L, pos25, frame, out, n_q, nf25, nf);
        const int l25 = (L + e->hop25 - 1) / e->hop25;
        pos25 += l25;
        frame += (l25 + SE_DOWN_STRIDE - 1) / SE_DOWN_STRIDE;
    }
    if (tap) {
        tap(tap_user, "seanet_out", s.tap_seanet, e->hidden, nf25);
        tap(tap_user, "encoder_transformer_out", s.tap_tr, nf25, e->hidden);
        tap(tap_user, "downsample_out", s.tap_down, e->hidden, nf);
        tap(tap_user, "rvq_distance_margin", s.tap_margin, nf, n_q);
    }
    state_free(&s);
    *codes = out;
    *n_frames = nf;
    return CTTS_OK;
}
