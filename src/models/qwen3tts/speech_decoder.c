/*
 * Qwen3-TTS-12Hz speech tokenizer decoder (see speech_decoder.h): weight
 * binding, the streaming decoder and the official chunked whole-utterance
 * decode.
 *
 * Layout inside one decode call of n frames (real numbers, hop 1920):
 *   RVQ        get_rows per codebook -> [n, 256] first / rest sums -> 1x1
 *              projections -> [n, 512] -> transpose [512, n]
 *   pre_conv   causal k3 stream -> [1024, n] -> transpose [n, 1024]
 *   transformer input_proj [n, 512] -> layers (KV cache) -> norm ->
 *              output_proj [n, 1024] -> transpose [1024, n]
 *   upsample   per factor: convtr (k = stride) [1024, 2m] -> ConvNeXt
 *              (dwconv k7 stream, then time-major LN / MLP / gamma residual)
 *   decoder    conv k7 -> blocks (snake, convtr stream, residual units) ->
 *              snake -> conv k7 -> [1, n*1920] -> host, clamp
 * Activations live in three ping-pong buffers sized for max_frames; conv
 * states are nn/conv.h streams; every number goes through backend ops except
 * the final clamp of the downloaded samples.
 *
 * The pre-transformer layers are nn/codec_layer.h blocks (RMSNorm, SwiGLU,
 * KV cache bounded by the sliding window).
 *
 * Weight preprocessing done once at bind (host arithmetic on the CPU
 * backend's memory, like the Pocket weight-norm folding): the codebook tables
 * embedding_sum / max(cluster_usage, 1e-5) and the SnakeBeta factors
 * exp(alpha), 1 / (exp(beta) + 1e-9), all in float32 as the official code.
 */
#include "models/qwen3tts/speech_decoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "nn/codec_layer.h"
#include "nn/conv.h"
#include "nn/qwen3_layer.h"

#define SD_MAX_LAYERS 32
#define SD_MAX_UP Q3T_MAX_RATES
#define SD_MAX_BLOCKS Q3T_MAX_RATES
#define SD_N_RES 3
#define SD_DIM_MAX (1 << 16)
#define SD_MAX_FRAMES 4096
/* Frames per internal piece: buffers (and the per-conv work areas of nn/conv.h,
 * about 9 MB per frame at the real shape) are sized for this many frames, larger
 * calls run in pieces. 8 frames keep every conv on full SIMD tiles. */
#define SD_PIECE 8
#define SD_CB_EPS 1e-5f
#define SD_SNAKE_EPS 1e-9f
#define SD_CONVNEXT_EPS 1e-6f

static const int res_dilations[SD_N_RES] = {1, 3, 9};

typedef struct {
    const ctts_tensor *w; /* conv {cout, cin/groups, k} or convtr {cin, cout, k} */
    const float *b;       /* [cout] (backend memory, owned copy) */
} conv_w;

typedef struct {
    const float *a; /* [C] exp(alpha) */
    const float *b; /* [C] 1 / (exp(beta) + 1e-9) */
} snake_w;

typedef struct {
    conv_w tr;                     /* convtr {L, L, f} */
    conv_w dw;                     /* depthwise {L, 1, 7} */
    const float *ln_w, *ln_b;      /* [L] */
    const ctts_tensor *pw1, *pw2;  /* [4L, L], [L, 4L] */
    const float *pw1_b, *pw2_b;    /* [4L], [L] */
    const float *gamma;            /* [L] */
} up_w;

typedef struct {
    snake_w act1, act2;
    conv_w c1; /* {C, C, 7}, dilated */
    conv_w c2; /* {C, C, 1} */
} res_w;

typedef struct {
    snake_w act; /* [cin] */
    conv_w tr;   /* convtr {cin, cout, 2r} */
    res_w res[SD_N_RES];
    int cin, cout, rate;
} block_w;

struct q3t_speech_decoder {
    q3t_codec_decoder_config cfg;
    ctts_backend *be;
    nn_binder binder;

    int nq, half, cb, cd, L, hd, n_layers, n_up, n_blocks;
    nn_codec_layer_config lcfg; /* pre-transformer layers */
    int up_total; /* product of upsampling_ratios */
    int hop;      /* up_total * product of upsample_rates */

    ctts_tensor tables[32];             /* [cb, half] normalised codebooks (owned data) */
    const ctts_tensor *proj_first;      /* {cd, half, 1} */
    const ctts_tensor *proj_rest;       /* {cd, half, 1} */
    conv_w pre_conv;                    /* {L, cd, 3} */
    const ctts_tensor *in_proj;         /* [hd, L] */
    const float *in_proj_b;             /* [hd] */
    nn_codec_layer_weights layers[SD_MAX_LAYERS];
    const float *norm;                  /* [hd] */
    const ctts_tensor *out_proj;        /* [L, hd] */
    const float *out_proj_b;            /* [L] */
    up_w up[SD_MAX_UP];
    conv_w dec_in;                      /* {D0, L, 7} */
    block_w blocks[SD_MAX_BLOCKS];
    snake_w final_act;                  /* [D_last] */
    conv_w dec_out;                     /* {1, D_last, 7} */
    ctts_tensor *packed[SD_MAX_UP + SD_MAX_BLOCKS]; /* transposed-conv weights the backend rearranged */
    const ctts_tensor *replaced[SD_MAX_UP + SD_MAX_BLOCKS]; /* what they replace (not read) */
    int n_packed;
};

/* ---- config ---- */

static ctts_status check_config(const q3t_codec_decoder_config *c, char *err, size_t err_len) {
    if (c->num_quantizers < 2 || c->num_quantizers > 32 || c->codebook_size < 1 ||
        c->codebook_size > (1 << 20) || c->codebook_dim < 2 || c->codebook_dim % 2 ||
        c->codebook_dim > SD_DIM_MAX || c->latent_dim < 1 || c->latent_dim > SD_DIM_MAX / 4 ||
        c->hidden_size < 1 || c->hidden_size > SD_DIM_MAX || c->intermediate_size < 1 ||
        c->intermediate_size > SD_DIM_MAX || c->decoder_dim < 1 || c->decoder_dim > SD_DIM_MAX)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "speech decoder: sizes out of range (quantizers %d, codebook %d x %d, "
                        "latent %d, hidden %d, intermediate %d, decoder_dim %d)",
                        c->num_quantizers, c->codebook_size, c->codebook_dim, c->latent_dim,
                        c->hidden_size, c->intermediate_size, c->decoder_dim);
    if (c->num_hidden_layers < 1 || c->num_hidden_layers > SD_MAX_LAYERS ||
        c->num_attention_heads < 1 || c->num_key_value_heads < 1 ||
        c->num_attention_heads % c->num_key_value_heads || c->head_dim < 2 || c->head_dim % 2 ||
        (int64_t)c->num_attention_heads * c->head_dim > SD_DIM_MAX)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "speech decoder: bad transformer shape (%d layers, %d/%d heads, head_dim %d)",
                        c->num_hidden_layers, c->num_attention_heads, c->num_key_value_heads,
                        c->head_dim);
    if (c->sliding_window < 1 || c->sliding_window > (1 << 20) || !(c->rope_theta > 0.0f) ||
        !(c->rms_norm_eps >= 0.0f))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "speech decoder: bad sliding_window %d / rope_theta %g / rms_norm_eps %g",
                        c->sliding_window, (double)c->rope_theta, (double)c->rms_norm_eps);
    if (c->n_upsampling_ratios < 0 || c->n_upsampling_ratios > SD_MAX_UP ||
        c->n_upsample_rates < 1 || c->n_upsample_rates > SD_MAX_BLOCKS)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "speech decoder: %d upsampling_ratios / %d upsample_rates",
                        c->n_upsampling_ratios, c->n_upsample_rates);
    int64_t hop = 1;
    for (int i = 0; i < c->n_upsampling_ratios; i++) {
        if (c->upsampling_ratios[i] < 1 || c->upsampling_ratios[i] > 64)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "speech decoder: bad upsampling ratio %d", c->upsampling_ratios[i]);
        hop *= c->upsampling_ratios[i];
    }
    for (int i = 0; i < c->n_upsample_rates; i++) {
        if (c->upsample_rates[i] < 1 || c->upsample_rates[i] > 64)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech decoder: bad upsample rate %d",
                            c->upsample_rates[i]);
        hop *= c->upsample_rates[i];
        if (c->decoder_dim % (1 << (i + 1)))
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "speech decoder: decoder_dim %d is not divisible by 2^%d",
                            c->decoder_dim, i + 1);
    }
    if (hop > (1 << 16))
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "speech decoder: hop %lld too large",
                        (long long)hop);
    return CTTS_OK;
}

/* ---- binding ---- */

/* snprintf into a fixed buffer; CTTS_E_INVALID_ARG if it did not fit. */
#define FMT_NAME(buf, ...)                                                                       \
    do {                                                                                         \
        int n_ = snprintf(buf, sizeof buf, __VA_ARGS__);                                         \
        if (n_ < 0 || (size_t)n_ >= sizeof buf)                                                  \
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech decoder: name too long");  \
    } while (0)

#define TRY(x)                                                                                   \
    do {                                                                                         \
        ctts_status st_ = (x);                                                                   \
        if (st_ != CTTS_OK) return st_;                                                          \
    } while (0)

/* A float vector of n elements (F32/BF16/F16 in the file) copied to an owned F32 buffer. */
static ctts_status bind_vec(q3t_speech_decoder *d, const float **out, const char *name, int64_t n,
                            char *err, size_t err_len) {
    float *dst = nn_binder_alloc(&d->binder, (size_t)n * sizeof(float));
    if (!dst) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory binding '%s'", name);
    const int64_t shape[1] = {n};
    TRY(nn_bind_to_f32(&d->binder, dst, name, 1, shape, err, err_len));
    *out = dst;
    return CTTS_OK;
}

/* A linear weight [rows, cols] in any dtype the backend's linear() takes. */
static ctts_status bind_linear(q3t_speech_decoder *d, const ctts_tensor **out, const char *name,
                               int ndim, int64_t d0, int64_t d1, char *err, size_t err_len) {
    const int64_t shape[3] = {d0, d1, 1};
    return nn_bind_tensor(&d->binder, out, NN_BIND_LINEAR, name, ndim, shape, err, err_len);
}

/* "<stem>weight" {d0, d1, k} (F32/F16/BF16, aligned) and optionally "<stem>bias" [cout]. */
static ctts_status bind_conv(q3t_speech_decoder *d, conv_w *out, const char *stem, int64_t d0,
                             int64_t d1, int64_t k, int64_t cout, int has_bias, char *err,
                             size_t err_len) {
    char name[256];
    FMT_NAME(name, "%sweight", stem);
    const int64_t shape[3] = {d0, d1, k};
    TRY(nn_bind_tensor(&d->binder, &out->w, NN_BIND_LINEAR, name, 3, shape, err, err_len));
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
    return bind_vec(d, &out->b, name, cout, err, err_len);
}

/* "<stem>alpha" / "<stem>beta" [C] -> exp(alpha), 1 / (exp(beta) + 1e-9). */
static ctts_status bind_snake(q3t_speech_decoder *d, snake_w *out, const char *stem, int64_t C,
                              char *err, size_t err_len) {
    char name[256];
    const float *alpha = NULL, *beta = NULL;
    FMT_NAME(name, "%salpha", stem);
    TRY(bind_vec(d, &alpha, name, C, err, err_len));
    FMT_NAME(name, "%sbeta", stem);
    TRY(bind_vec(d, &beta, name, C, err, err_len));
    /* The raw copies are owned buffers: transform them in place (host memory). */
    float *a = (float *)alpha, *b = (float *)beta;
    for (int64_t c = 0; c < C; c++) {
        a[c] = expf(a[c]);
        b[c] = 1.0f / (expf(b[c]) + SD_SNAKE_EPS);
    }
    out->a = a;
    out->b = b;
    return CTTS_OK;
}

/* Codebook q: embedding_sum [cb, half] / max(cluster_usage [cb], 1e-5) into tables[q]. */
static ctts_status bind_codebook(q3t_speech_decoder *d, int q, const char *stem, char *err,
                                 size_t err_len) {
    char name[256];
    const float *usage = NULL, *sum = NULL;
    FMT_NAME(name, "%s_codebook.cluster_usage", stem);
    TRY(bind_vec(d, &usage, name, d->cb, err, err_len));
    FMT_NAME(name, "%s_codebook.embedding_sum", stem);
    const int64_t shape[2] = {d->cb, d->half};
    const size_t n = (size_t)d->cb * (size_t)d->half;
    float *tab = nn_binder_alloc(&d->binder, n * sizeof(float));
    if (!tab) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory binding '%s'", name);
    TRY(nn_bind_to_f32(&d->binder, tab, name, 2, shape, err, err_len));
    sum = tab;
    for (int i = 0; i < d->cb; i++) {
        const float u = usage[i] > SD_CB_EPS ? usage[i] : SD_CB_EPS; /* clamp(min=eps) */
        float *row = tab + (size_t)i * (size_t)d->half;
        for (int j = 0; j < d->half; j++) row[j] = sum[(size_t)i * (size_t)d->half + j] / u;
    }
    ctts_tensor *t = &d->tables[q];
    memset(t, 0, sizeof *t);
    t->dtype = CTTS_DT_F32;
    t->ndim = 2;
    t->shape[0] = d->cb;
    t->shape[1] = d->half;
    t->data = tab;
    t->nbytes = n * sizeof(float);
    return CTTS_OK;
}

static ctts_status bind_all(q3t_speech_decoder *d, char *err, size_t err_len) {
    char stem[192], name[256];
    const ctts_tensor *unused;
    /* Quantizer: input projections exist in the file but decoding never uses them. */
    const char *parts[2] = {"rvq_first", "rvq_rest"};
    for (int p = 0; p < 2; p++) {
        FMT_NAME(name, "decoder.quantizer.%s.input_proj.weight", parts[p]);
        TRY(bind_linear(d, &unused, name, 3, d->half, d->cd, err, err_len));
        FMT_NAME(name, "decoder.quantizer.%s.output_proj.weight", parts[p]);
        TRY(bind_linear(d, p ? &d->proj_rest : &d->proj_first, name, 3, d->cd, d->half, err,
                        err_len));
    }
    for (int q = 0; q < d->nq; q++) {
        FMT_NAME(stem, "decoder.quantizer.%s.vq.layers.%d.", parts[q > 0], q > 0 ? q - 1 : 0);
        TRY(bind_codebook(d, q, stem, err, err_len));
    }
    TRY(bind_conv(d, &d->pre_conv, "decoder.pre_conv.conv.", d->L, d->cd, 3, d->L, 1, err,
                  err_len));
    TRY(bind_linear(d, &d->in_proj, "decoder.pre_transformer.input_proj.weight", 2, d->hd, d->L,
                    err, err_len));
    TRY(bind_vec(d, &d->in_proj_b, "decoder.pre_transformer.input_proj.bias", d->hd, err,
                 err_len));
    for (int i = 0; i < d->n_layers; i++) {
        FMT_NAME(stem, "decoder.pre_transformer.layers.%d.", i);
        TRY(nn_codec_layer_bind(&d->binder, &d->lcfg, stem, &d->layers[i], err, err_len));
    }
    TRY(bind_vec(d, &d->norm, "decoder.pre_transformer.norm.weight", d->hd, err, err_len));
    TRY(bind_linear(d, &d->out_proj, "decoder.pre_transformer.output_proj.weight", 2, d->L, d->hd,
                    err, err_len));
    TRY(bind_vec(d, &d->out_proj_b, "decoder.pre_transformer.output_proj.bias", d->L, err,
                 err_len));
    const int64_t L = d->L;
    for (int i = 0; i < d->n_up; i++) {
        up_w *u = &d->up[i];
        const int f = d->cfg.upsampling_ratios[i];
        FMT_NAME(stem, "decoder.upsample.%d.0.conv.", i);
        TRY(bind_conv(d, &u->tr, stem, L, L, f, L, 1, err, err_len));
        FMT_NAME(stem, "decoder.upsample.%d.1.dwconv.conv.", i);
        TRY(bind_conv(d, &u->dw, stem, L, 1, 7, L, 1, err, err_len));
        FMT_NAME(name, "decoder.upsample.%d.1.norm.weight", i);
        TRY(bind_vec(d, &u->ln_w, name, L, err, err_len));
        FMT_NAME(name, "decoder.upsample.%d.1.norm.bias", i);
        TRY(bind_vec(d, &u->ln_b, name, L, err, err_len));
        FMT_NAME(name, "decoder.upsample.%d.1.pwconv1.weight", i);
        TRY(bind_linear(d, &u->pw1, name, 2, 4 * L, L, err, err_len));
        FMT_NAME(name, "decoder.upsample.%d.1.pwconv1.bias", i);
        TRY(bind_vec(d, &u->pw1_b, name, 4 * L, err, err_len));
        FMT_NAME(name, "decoder.upsample.%d.1.pwconv2.weight", i);
        TRY(bind_linear(d, &u->pw2, name, 2, L, 4 * L, err, err_len));
        FMT_NAME(name, "decoder.upsample.%d.1.pwconv2.bias", i);
        TRY(bind_vec(d, &u->pw2_b, name, L, err, err_len));
        FMT_NAME(name, "decoder.upsample.%d.1.gamma", i);
        TRY(bind_vec(d, &u->gamma, name, L, err, err_len));
    }
    const int D0 = d->cfg.decoder_dim;
    TRY(bind_conv(d, &d->dec_in, "decoder.decoder.0.conv.", D0, L, 7, D0, 1, err, err_len));
    for (int i = 0; i < d->n_blocks; i++) {
        block_w *b = &d->blocks[i];
        b->cin = D0 >> i;
        b->cout = D0 >> (i + 1);
        b->rate = d->cfg.upsample_rates[i];
        FMT_NAME(stem, "decoder.decoder.%d.block.0.", i + 1);
        TRY(bind_snake(d, &b->act, stem, b->cin, err, err_len));
        FMT_NAME(stem, "decoder.decoder.%d.block.1.conv.", i + 1);
        TRY(bind_conv(d, &b->tr, stem, b->cin, b->cout, 2 * b->rate, b->cout, 1, err, err_len));
        for (int j = 0; j < SD_N_RES; j++) {
            res_w *r = &b->res[j];
            FMT_NAME(stem, "decoder.decoder.%d.block.%d.act1.", i + 1, j + 2);
            TRY(bind_snake(d, &r->act1, stem, b->cout, err, err_len));
            FMT_NAME(stem, "decoder.decoder.%d.block.%d.conv1.conv.", i + 1, j + 2);
            TRY(bind_conv(d, &r->c1, stem, b->cout, b->cout, 7, b->cout, 1, err, err_len));
            FMT_NAME(stem, "decoder.decoder.%d.block.%d.act2.", i + 1, j + 2);
            TRY(bind_snake(d, &r->act2, stem, b->cout, err, err_len));
            FMT_NAME(stem, "decoder.decoder.%d.block.%d.conv2.conv.", i + 1, j + 2);
            TRY(bind_conv(d, &r->c2, stem, b->cout, b->cout, 1, b->cout, 1, err, err_len));
        }
    }
    const int D_last = D0 >> d->n_blocks;
    FMT_NAME(stem, "decoder.decoder.%d.", d->n_blocks + 1);
    TRY(bind_snake(d, &d->final_act, stem, D_last, err, err_len));
    FMT_NAME(stem, "decoder.decoder.%d.conv.", d->n_blocks + 2);
    return bind_conv(d, &d->dec_out, stem, 1, D_last, 7, 1, 1, err, err_len);
}

ctts_status q3t_speech_decoder_bind(const q3t_codec_decoder_config *cfg, ctts_backend *be,
                                    q3t_weight_lookup get, void *get_ctx,
                                    q3t_speech_decoder **out, char *err, size_t err_len) {
    if (!out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech decoder: no output");
    *out = NULL;
    if (!cfg || !be || !get)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech decoder: bad arguments");
    TRY(check_config(cfg, err, err_len));
    q3t_speech_decoder *d = calloc(1, sizeof *d);
    if (!d) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    d->cfg = *cfg;
    d->be = be;
    d->binder = (nn_binder){.be = be, .get = get, .get_ctx = get_ctx};
    d->nq = cfg->num_quantizers;
    d->cd = cfg->codebook_dim;
    d->half = cfg->codebook_dim / 2;
    d->cb = cfg->codebook_size;
    d->L = cfg->latent_dim;
    d->hd = cfg->hidden_size;
    d->n_layers = cfg->num_hidden_layers;
    d->lcfg = (nn_codec_layer_config){.d_model = cfg->hidden_size,
                                      .n_heads = cfg->num_attention_heads,
                                      .n_kv_heads = cfg->num_key_value_heads,
                                      .head_dim = cfg->head_dim,
                                      .d_ff = cfg->intermediate_size,
                                      .norm_eps = cfg->rms_norm_eps,
                                      .rope_theta = cfg->rope_theta,
                                      .window = cfg->sliding_window,
                                      .norm = NN_CODEC_NORM_RMS,
                                      .mlp = NN_CODEC_MLP_SWIGLU};
    d->n_up = cfg->n_upsampling_ratios;
    d->n_blocks = cfg->n_upsample_rates;
    d->up_total = 1;
    for (int i = 0; i < d->n_up; i++) d->up_total *= cfg->upsampling_ratios[i];
    d->hop = d->up_total;
    for (int i = 0; i < d->n_blocks; i++) d->hop *= cfg->upsample_rates[i];
    ctts_status st = bind_all(d, err, err_len);
    if (st != CTTS_OK) {
        q3t_speech_decoder_free(d);
        return st;
    }
    /* Transposed convs in the backend's own weight layout where it has one
     * (the CPU's BF16 kernels: one sequential stream per chunk of outputs). */
    for (int i = 0; i < d->n_up + d->n_blocks && be->pack_conv_transpose; i++) {
        conv_w *c = i < d->n_up ? &d->up[i].tr : &d->blocks[i - d->n_up].tr;
        ctts_tensor *t = be->pack_conv_transpose(be, c->w, 1);
        if (t) {
            d->replaced[d->n_packed] = c->w;
            c->w = d->packed[d->n_packed++] = t;
        }
    }
    *out = d;
    return CTTS_OK;
}

void q3t_speech_decoder_free(q3t_speech_decoder *d) {
    if (!d) return;
    for (int i = 0; i < SD_MAX_LAYERS; i++) nn_codec_layer_release(&d->layers[i], d->be);
    for (int i = 0; i < d->n_packed; i++) d->be->free_packed(d->be, d->packed[i]);
    nn_binder_release(&d->binder);
    free(d);
}

const char *const *q3t_speech_decoder_bound_names(const q3t_speech_decoder *d, int *n) {
    if (n) *n = d ? d->binder.n_names : 0;
    return d ? (const char *const *)d->binder.names : NULL;
}

const ctts_tensor *const *q3t_speech_decoder_replaced(const q3t_speech_decoder *d, int *n) {
    if (n) *n = d ? d->n_packed : 0;
    return d ? d->replaced : NULL;
}

int q3t_speech_decoder_hop(const q3t_speech_decoder *d) { return d ? d->hop : 0; }
int q3t_speech_decoder_n_codebooks(const q3t_speech_decoder *d) { return d ? d->nq : 0; }
int q3t_speech_decoder_codebook_size(const q3t_speech_decoder *d) { return d ? d->cb : 0; }

/* ---- streaming state ---- */

typedef struct {
    nn_conv1d_stream c1, c2;
} res_state;

struct q3t_sdec_stream {
    const q3t_speech_decoder *d;
    ctts_backend *be;   /* owns the buffers */
    ctts_backend *exec; /* runs the ops: be unless set_exec chose another */
    int max_frames; /* per decode call (API limit) */
    int t_max;      /* frames per internal piece (buffer size): min(max_frames, SD_PIECE) */
    int chunk, context;
    int64_t frame; /* frames decoded since reset (chunk boundaries) */
    int pos;       /* RoPE position of the next frame (restarts with each chunk) */
    int32_t *hist; /* [context, nq] codes of the last frames (host), oldest first */
    int n_hist;
    int32_t *ids;  /* [t_max] */

    nn_conv1d_stream pre_conv;
    nn_kv_cache kv[SD_MAX_LAYERS];
    nn_convtr1d_stream up_tr[SD_MAX_UP];
    nn_conv1d_stream up_dw[SD_MAX_UP];
    nn_conv1d_stream dec_in;
    nn_convtr1d_stream blk_tr[SD_MAX_BLOCKS];
    res_state res[SD_MAX_BLOCKS][SD_N_RES];
    nn_conv1d_stream dec_out;

    float *buf[3];  /* ping-pong activations, buf_floats each */
    size_t buf_floats;
    float *tscr;    /* transformer scratch */
    float *xt;      /* [t_max, hd] transformer rows */

    q3t_sdec_tap_fn tap;
    void *tap_user;
};

static void stream_state_reset(q3t_sdec_stream *s) {
    const q3t_speech_decoder *d = s->d;
    nn_conv1d_stream_reset(&s->pre_conv);
    for (int i = 0; i < d->n_layers; i++) s->kv[i].n = 0;
    for (int i = 0; i < d->n_up; i++) {
        nn_convtr1d_stream_reset(&s->up_tr[i]);
        nn_conv1d_stream_reset(&s->up_dw[i]);
    }
    nn_conv1d_stream_reset(&s->dec_in);
    for (int i = 0; i < d->n_blocks; i++) {
        nn_convtr1d_stream_reset(&s->blk_tr[i]);
        for (int j = 0; j < SD_N_RES; j++) {
            nn_conv1d_stream_reset(&s->res[i][j].c1);
            nn_conv1d_stream_reset(&s->res[i][j].c2);
        }
    }
    nn_conv1d_stream_reset(&s->dec_out);
    s->pos = 0;
}

void q3t_sdec_stream_reset(q3t_sdec_stream *s) {
    if (!s) return;
    stream_state_reset(s);
    s->frame = 0;
    s->n_hist = 0;
}

void q3t_sdec_stream_free(q3t_sdec_stream *s) {
    if (!s) return;
    ctts_backend *be = s->be;
    nn_conv1d_stream_release(&s->pre_conv, be);
    for (int i = 0; i < SD_MAX_LAYERS; i++) nn_kv_cache_release(&s->kv[i], be);
    for (int i = 0; i < SD_MAX_UP; i++) {
        nn_convtr1d_stream_release(&s->up_tr[i], be);
        nn_conv1d_stream_release(&s->up_dw[i], be);
    }
    nn_conv1d_stream_release(&s->dec_in, be);
    for (int i = 0; i < SD_MAX_BLOCKS; i++) {
        nn_convtr1d_stream_release(&s->blk_tr[i], be);
        for (int j = 0; j < SD_N_RES; j++) {
            nn_conv1d_stream_release(&s->res[i][j].c1, be);
            nn_conv1d_stream_release(&s->res[i][j].c2, be);
        }
    }
    nn_conv1d_stream_release(&s->dec_out, be);
    for (int i = 0; i < 3; i++)
        if (s->buf[i]) be->free_buf(be, s->buf[i]);
    if (s->tscr) be->free_buf(be, s->tscr);
    if (s->xt) be->free_buf(be, s->xt);
    free(s->hist);
    free(s->ids);
    free(s);
}

void q3t_sdec_stream_set_exec(q3t_sdec_stream *s, ctts_backend *exec) {
    if (s) s->exec = exec ? exec : s->be;
}

void q3t_sdec_stream_set_tap(q3t_sdec_stream *s, q3t_sdec_tap_fn fn, void *user) {
    if (!s) return;
    s->tap = fn;
    s->tap_user = user;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Largest [channels x samples] activation of one frame over all stages. */
static size_t frame_floats(const q3t_speech_decoder *d) {
    size_t m = (size_t)d->cd * 3 + (size_t)d->half * 3;
    m = max_sz(m, (size_t)d->L * 2);
    size_t len = 1;
    for (int i = 0; i < d->n_up; i++) {
        len *= (size_t)d->cfg.upsampling_ratios[i];
        m = max_sz(m, (size_t)d->L * 4 * len);
    }
    m = max_sz(m, (size_t)d->cfg.decoder_dim * len);
    for (int i = 0; i < d->n_blocks; i++) {
        m = max_sz(m, (size_t)d->blocks[i].cin * len);
        len *= (size_t)d->blocks[i].rate;
        m = max_sz(m, (size_t)d->blocks[i].cout * len);
    }
    return m;
}

ctts_status q3t_sdec_stream_new(const q3t_speech_decoder *d, int max_frames, int chunk,
                                int context, q3t_sdec_stream **out, char *err, size_t err_len) {
    if (!out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech decoder: no output");
    *out = NULL;
    if (!d || max_frames < 1 || max_frames > SD_MAX_FRAMES || chunk < 0 ||
        (chunk > 0 && (context < 0 || context >= chunk)))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "speech decoder: bad stream parameters (max_frames %d, chunk %d, "
                        "context %d)", max_frames, chunk, context);
    q3t_sdec_stream *s = calloc(1, sizeof *s);
    if (!s) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    s->d = d;
    s->be = s->exec = d->be;
    s->max_frames = max_frames;
    s->t_max = max_frames < SD_PIECE ? max_frames : SD_PIECE;
    s->chunk = chunk;
    s->context = chunk > 0 ? context : 0;
    ctts_backend *be = d->be;
    ctts_status st = CTTS_OK;
    const int T = s->t_max;
    s->ids = malloc((size_t)T * sizeof *s->ids);
    s->hist = malloc((size_t)(s->context > 0 ? s->context : 1) * (size_t)d->nq * sizeof *s->hist);
    if (!s->ids || !s->hist) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");

    if (st == CTTS_OK)
        st = nn_conv1d_stream_init(&s->pre_conv, be, d->pre_conv.w, d->pre_conv.b, 1, 1, 1, 0, T,
                                   err, err_len);
    const int kv_cap = nn_codec_layer_kv_capacity(&d->lcfg, T);
    for (int i = 0; st == CTTS_OK && i < d->n_layers; i++)
        if (nn_kv_cache_init(&s->kv[i], be, kv_cap, nn_codec_layer_kv_width(&d->lcfg)) != CTTS_OK)
            st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory for the KV cache");
    int len = T; /* input columns of the current stage */
    for (int i = 0; st == CTTS_OK && i < d->n_up; i++) {
        const int f = d->cfg.upsampling_ratios[i];
        st = nn_convtr1d_stream_init(&s->up_tr[i], be, d->up[i].tr.w, d->up[i].tr.b, f, 1, len,
                                     err, err_len);
        len *= f;
        if (st == CTTS_OK)
            st = nn_conv1d_stream_init(&s->up_dw[i], be, d->up[i].dw.w, d->up[i].dw.b, 1, 1,
                                       d->L, 0, len, err, err_len);
    }
    if (st == CTTS_OK)
        st = nn_conv1d_stream_init(&s->dec_in, be, d->dec_in.w, d->dec_in.b, 1, 1, 1, 0, len, err,
                                   err_len);
    for (int i = 0; st == CTTS_OK && i < d->n_blocks; i++) {
        const block_w *b = &d->blocks[i];
        st = nn_convtr1d_stream_init(&s->blk_tr[i], be, b->tr.w, b->tr.b, b->rate, 1, len, err,
                                     err_len);
        len *= b->rate;
        for (int j = 0; st == CTTS_OK && j < SD_N_RES; j++) {
            st = nn_conv1d_stream_init(&s->res[i][j].c1, be, b->res[j].c1.w, b->res[j].c1.b, 1,
                                       res_dilations[j], 1, 0, len, err, err_len);
            if (st == CTTS_OK)
                st = nn_conv1d_stream_init(&s->res[i][j].c2, be, b->res[j].c2.w, b->res[j].c2.b,
                                           1, 1, 1, 0, len, err, err_len);
        }
    }
    if (st == CTTS_OK)
        st = nn_conv1d_stream_init(&s->dec_out, be, d->dec_out.w, d->dec_out.b, 1, 1, 1, 0, len,
                                   err, err_len);
    if (st == CTTS_OK) {
        s->buf_floats = frame_floats(d) * (size_t)T;
        for (int i = 0; i < 3 && st == CTTS_OK; i++) {
            s->buf[i] = be->alloc(be, s->buf_floats * sizeof(float));
            if (!s->buf[i]) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        }
    }
    if (st == CTTS_OK) {
        s->tscr = be->alloc(be, nn_codec_layer_scratch_floats(&d->lcfg, T) * sizeof(float));
        s->xt = be->alloc(be, (size_t)T * (size_t)d->hd * sizeof(float));
        if (!s->tscr || !s->xt) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    if (st != CTTS_OK) {
        q3t_sdec_stream_free(s);
        return st;
    }
    *out = s;
    return CTTS_OK;
}

/* ---- forward ---- */

static void tap(q3t_sdec_stream *s, int on, const char *name, const float *x, int rows, int cols) {
    if (on && s->tap) s->tap(s->tap_user, name, x, rows, cols);
}

/* ConvNeXt block on x [L, m], in place; s1, s2 are scratch buffers. */
static void convnext(q3t_sdec_stream *s, int i, float *x, int m, float *s1, float *s2) {
    const q3t_speech_decoder *d = s->d;
    const up_w *u = &d->up[i];
    ctts_backend *be = s->exec;
    const int L = d->L;
    nn_conv1d_stream_forward(&s->up_dw[i], be, s1, x, m);      /* dwconv [L, m] */
    be->transpose(be, s2, s1, L, m);                           /* [m, L] */
    be->layer_norm(be, s1, s2, u->ln_w, u->ln_b, m, L, SD_CONVNEXT_EPS);
    be->linear(be, s2, s1, u->pw1, u->pw1_b, m);               /* [m, 4L] */
    be->act(be, s2, s2, (size_t)m * 4 * L, CTTS_ACT_GELU_ERF);
    be->linear(be, s1, s2, u->pw2, u->pw2_b, m);               /* [m, L] */
    be->transpose(be, s2, x, L, m);                            /* residual, [m, L] */
    be->add_scaled_rows(be, s2, s1, u->gamma, m, L);
    be->transpose(be, x, s2, m, L);                            /* back to [L, m] */
}

static void swap_ptr(float **a, float **b) {
    float *t = *a;
    *a = *b;
    *b = t;
}

/* Decodes n <= t_max frames; pcm NULL discards the audio (chunk context). */
static void decode_piece(q3t_sdec_stream *s, const int32_t *codes, int n, float *pcm) {
    const q3t_speech_decoder *d = s->d;
    ctts_backend *be = s->exec;
    const int on = pcm != NULL, half = d->half, cd = d->cd, L = d->L, hd = d->hd;
    /* cur: the current activation; o1, o2: free buffers. */
    float *cur = s->buf[0], *o1 = s->buf[1], *o2 = s->buf[2];
    char name[48];
    ctts_backend_stage(be, CTTS_STAGE_SPEECH_DECODER);

    /* RVQ: codebook 0 -> A0, codebooks 1.. summed in order -> AR; each projected. */
    float *A0 = o1, *AR = A0 + (size_t)n * half, *tmp = AR + (size_t)n * half;
    float *y1 = tmp + (size_t)n * half, *y2 = y1 + (size_t)n * cd;
    for (int q = 0; q < d->nq; q++) {
        for (int t = 0; t < n; t++) s->ids[t] = codes[(size_t)t * d->nq + q];
        float *dst = q == 0 ? A0 : q == 1 ? AR : tmp;
        be->get_rows(be, dst, &d->tables[q], s->ids, n);
        if (q >= 2) be->add(be, AR, AR, tmp, (size_t)n * half);
    }
    be->linear(be, y1, A0, d->proj_first, NULL, n);
    be->linear(be, y2, AR, d->proj_rest, NULL, n);
    be->add(be, y1, y1, y2, (size_t)n * cd);
    be->transpose(be, cur, y1, n, cd); /* [cd, n] */
    tap(s, on, "quantizer_out", cur, cd, n);

    nn_conv1d_stream_forward(&s->pre_conv, be, o1, cur, n); /* [L, n] */
    tap(s, on, "pre_conv", o1, L, n);
    be->transpose(be, cur, o1, L, n); /* [n, L] */

    float *x = s->xt;
    be->linear(be, x, cur, d->in_proj, d->in_proj_b, n);
    for (int i = 0; i < d->n_layers; i++)
        nn_codec_layer_forward(be, &d->lcfg, &d->layers[i], &s->kv[i], x, n, s->pos, s->tscr);
    s->pos += n;
    be->rms_norm(be, o1, x, d->norm, n, hd, d->cfg.rms_norm_eps);
    be->linear(be, o2, o1, d->out_proj, d->out_proj_b, n); /* [n, L] */
    tap(s, on, "pre_transformer", o2, n, L);
    be->transpose(be, cur, o2, n, L); /* [L, n] */

    int m = n;
    for (int i = 0; i < d->n_up; i++) {
        nn_convtr1d_stream_forward(&s->up_tr[i], be, o1, cur, m);
        m *= d->cfg.upsampling_ratios[i];
        snprintf(name, sizeof name, "upsample%d.transconv", i);
        tap(s, on, name, o1, L, m);
        convnext(s, i, o1, m, cur, o2);
        snprintf(name, sizeof name, "upsample%d.convnext", i);
        tap(s, on, name, o1, L, m);
        swap_ptr(&cur, &o1);
    }
    nn_conv1d_stream_forward(&s->dec_in, be, o1, cur, m);
    swap_ptr(&cur, &o1);
    tap(s, on, "decoder.0", cur, d->cfg.decoder_dim, m);
    for (int i = 0; i < d->n_blocks; i++) {
        const block_w *b = &d->blocks[i];
        be->snake(be, o1, cur, b->act.a, b->act.b, b->cin, m);
        nn_convtr1d_stream_forward(&s->blk_tr[i], be, cur, o1, m);
        m *= b->rate;
        for (int j = 0; j < SD_N_RES; j++) {
            const res_w *r = &b->res[j];
            be->snake(be, o1, cur, r->act1.a, r->act1.b, b->cout, m);
            nn_conv1d_stream_forward(&s->res[i][j].c1, be, o2, o1, m);
            be->snake(be, o2, o2, r->act2.a, r->act2.b, b->cout, m);
            nn_conv1d_stream_forward(&s->res[i][j].c2, be, o1, o2, m);
            be->add(be, cur, cur, o1, (size_t)b->cout * m);
        }
        snprintf(name, sizeof name, "decoder.%d", i + 1);
        tap(s, on, name, cur, b->cout, m);
    }
    const int D_last = d->cfg.decoder_dim >> d->n_blocks;
    be->snake(be, o1, cur, d->final_act.a, d->final_act.b, D_last, m);
    snprintf(name, sizeof name, "decoder.%d", d->n_blocks + 1);
    tap(s, on, name, o1, D_last, m);
    nn_conv1d_stream_forward(&s->dec_out, be, cur, o1, m);
    snprintf(name, sizeof name, "decoder.%d", d->n_blocks + 2);
    tap(s, on, name, cur, 1, m);
    if (!pcm) return;
    be->download(be, pcm, cur, (size_t)m * sizeof(float));
    for (int i = 0; i < m; i++) pcm[i] = pcm[i] < -1.0f ? -1.0f : pcm[i] > 1.0f ? 1.0f : pcm[i];
}

/* Runs n frames (any count) through decode_piece in pieces of t_max. */
static void decode_frames(q3t_sdec_stream *s, const int32_t *codes, int n, float *pcm) {
    const int nq = s->d->nq, hop = s->d->hop;
    for (int i = 0; i < n; i += s->t_max) {
        const int k = n - i < s->t_max ? n - i : s->t_max;
        decode_piece(s, codes + (size_t)i * nq, k, pcm ? pcm + (size_t)i * hop : NULL);
    }
}

/* Appends n frames to the context history (keeps the newest `context`). */
static void push_history(q3t_sdec_stream *s, const int32_t *codes, int n) {
    const int C = s->context, nq = s->d->nq;
    if (C <= 0) return;
    if (n >= C) {
        memcpy(s->hist, codes + (size_t)(n - C) * nq, (size_t)C * nq * sizeof *codes);
        s->n_hist = C;
        return;
    }
    int drop = s->n_hist + n - C;
    if (drop > 0) {
        memmove(s->hist, s->hist + (size_t)drop * nq, (size_t)(s->n_hist - drop) * nq * sizeof *codes);
        s->n_hist -= drop;
    }
    memcpy(s->hist + (size_t)s->n_hist * nq, codes, (size_t)n * nq * sizeof *codes);
    s->n_hist += n;
}

ctts_status q3t_sdec_stream_decode(q3t_sdec_stream *s, const int32_t *codes, int n, float *pcm,
                                   char *err, size_t err_len) {
    if (!s || !codes || !pcm || n <= 0 || n > s->max_frames)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "speech decoder: bad decode call (%d frames, at most %d)", n,
                        s ? s->max_frames : 0);
    const q3t_speech_decoder *d = s->d;
    for (int t = 0; t < n; t++)
        for (int q = 0; q < d->nq; q++) {
            const int32_t c = codes[(size_t)t * d->nq + q];
            if (c < 0 || c >= d->cb)
                return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                                "speech decoder: code %d of frame %d, codebook %d is outside "
                                "[0, %d)", (int)c, t, q, d->cb);
        }
    if (s->pos > (1 << 30) - n)
        return ctts_err(err, err_len, CTTS_E_STATE, "speech decoder: stream too long");
    int i = 0;
    while (i < n) {
        int seg = n - i;
        if (s->chunk > 0) {
            const int64_t in_chunk = s->frame % s->chunk;
            if (in_chunk == 0 && s->frame > 0) {
                /* Official chunk start: fresh state, re-read the context frames. */
                const int c = s->frame - s->context > 0 ? s->context : (int)s->frame;
                stream_state_reset(s);
                if (c > 0) decode_frames(s, s->hist + (size_t)(s->n_hist - c) * d->nq, c, NULL);
            }
            if (seg > s->chunk - in_chunk) seg = (int)(s->chunk - in_chunk);
        }
        const int32_t *cp = codes + (size_t)i * d->nq;
        decode_frames(s, cp, seg, pcm + (size_t)i * d->hop);
        push_history(s, cp, seg);
        s->frame += seg;
        i += seg;
    }
    return CTTS_OK;
}

/* Frames per call of the whole-utterance decode (memory vs op size). */
#define SD_DECODE_PIECE 8

ctts_status q3t_speech_decode(const q3t_speech_decoder *d, const int32_t *codes, int n,
                              float **pcm, size_t *n_samples, char *err, size_t err_len) {
    if (pcm) *pcm = NULL;
    if (n_samples) *n_samples = 0;
    if (!d || !pcm || !n_samples || n < 0 || (n > 0 && !codes))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech decoder: bad decode arguments");
    if (n == 0) return CTTS_OK;
    if ((size_t)n > SIZE_MAX / sizeof(float) / (size_t)d->hop)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speech decoder: too many frames");
    float *out = malloc((size_t)n * (size_t)d->hop * sizeof *out);
    if (!out) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory for %d frames of audio", n);
    q3t_sdec_stream *s = NULL;
    const int piece = n < SD_DECODE_PIECE ? n : SD_DECODE_PIECE;
    ctts_status st = q3t_sdec_stream_new(d, piece, Q3T_SDEC_CHUNK, Q3T_SDEC_CONTEXT, &s, err,
                                         err_len);
    for (int i = 0; st == CTTS_OK && i < n; i += piece) {
        const int k = n - i < piece ? n - i : piece;
        st = q3t_sdec_stream_decode(s, codes + (size_t)i * d->nq, k, out + (size_t)i * d->hop,
                                    err, err_len);
    }
    q3t_sdec_stream_free(s);
    if (st != CTTS_OK) {
        free(out);
        return st;
    }
    *pcm = out;
    *n_samples = (size_t)n * (size_t)d->hop;
    return CTTS_OK;
}
