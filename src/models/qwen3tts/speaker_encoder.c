/*
 * Qwen3-TTS speaker encoder (ECAPA-TDNN, see speaker_encoder.h): binding and
 * the forward pass over a whole mel spectrogram.
 *
 * Activations are channel-major [C, T] in backend buffers sized for the call.
 * A "same" convolution with kernel k and dilation d copies its input into a
 * reflect-padded buffer (d*(k-1)/2 columns each side) and runs the valid
 * conv op. Res2Net splits are row ranges of the channel-major tensor; the
 * three SE-Res2Net outputs are written straight into their rows of the MFA
 * concatenation. The 1x1 convs on a single time step (squeeze-excitation,
 * final fc) are linear() calls on one row.
 */
#include "models/qwen3tts/speaker_encoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/mel.h"
#include "base/error.h"
#include "nn/conv.h"
#include "nn/qwen3_layer.h"

#define SPK_MAX_CH 8
#define SPK_MAX_SCALE 64
#define SPK_DIM_MAX (1 << 16)
#define SPK_EPS 1e-12f
#define SPK_MEL_DIM 128 /* the official mel_spectrogram call hard-codes 128 bins */

typedef struct {
    const ctts_tensor *w; /* {cout, cin, k} */
    const float *b;       /* [cout] */
    int cin, cout, k, dil;
} tdnn_w;

typedef struct {
    tdnn_w tdnn1, tdnn2;
    tdnn_w res[SPK_MAX_SCALE - 1];
    const ctts_tensor *se1, *se2; /* {se, C, 1}, {C, se, 1} */
    const float *se1_b, *se2_b;
} block_w;

struct q3t_speaker_encoder {
    q3t_speaker_encoder_config cfg;
    ctts_backend *be;
    nn_binder binder;
    int n_blocks; /* SE-Res2Net blocks: n_enc_channels - 2 */
    int c_last;   /* MFA / pooling width */
    tdnn_w b0, mfa, asp_tdnn, asp_conv;
    block_w blocks[SPK_MAX_CH];
    const ctts_tensor *fc; /* {enc_dim, 2*c_last, 1} */
    const float *fc_b;
};

/* ---- binding ---- */

#define FMT_NAME(buf, ...)                                                                       \
    do {                                                                                         \
        int n_ = snprintf(buf, sizeof buf, __VA_ARGS__);                                         \
        if (n_ < 0 || (size_t)n_ >= sizeof buf)                                                  \
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speaker encoder: name too long"); \
    } while (0)

#define TRY(x)                                                                                   \
    do {                                                                                         \
        ctts_status st_ = (x);                                                                   \
        if (st_ != CTTS_OK) return st_;                                                          \
    } while (0)

static ctts_status bind_bias(q3t_speaker_encoder *e, const float **out, const char *name,
                             int64_t n, char *err, size_t err_len) {
    float *dst = nn_binder_alloc(&e->binder, (size_t)n * sizeof(float));
    if (!dst) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory binding '%s'", name);
    TRY(nn_bind_to_f32(&e->binder, dst, name, 1, &n, err, err_len));
    *out = dst;
    return CTTS_OK;
}

/* "<stem>weight" {cout, cin, k} (F32/F16/BF16, aligned) + "<stem>bias" [cout]. */
static ctts_status bind_tdnn(q3t_speaker_encoder *e, tdnn_w *t, const char *stem, int cout,
                             int cin, int k, int dil, char *err, size_t err_len) {
    char name[256];
    FMT_NAME(name, "%sweight", stem);
    const int64_t shape[3] = {cout, cin, k};
    TRY(nn_bind_tensor(&e->binder, &t->w, NN_BIND_LINEAR, name, 3, shape, err, err_len));
    const ctts_dtype dt = t->w->dtype;
    if (dt != CTTS_DT_F32 && dt != CTTS_DT_F16 && dt != CTTS_DT_BF16)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "tensor '%s': dtype %s not supported for convolutions", name,
                        ctts_dtype_name(dt));
    if ((uintptr_t)t->w->data % ctts_dtype_size(dt) != 0)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "tensor '%s': data not %zu-byte aligned",
                        name, ctts_dtype_size(dt));
    FMT_NAME(name, "%sbias", stem);
    TRY(bind_bias(e, &t->b, name, cout, err, err_len));
    t->cin = cin;
    t->cout = cout;
    t->k = k;
    t->dil = dil;
    return CTTS_OK;
}

static ctts_status check_config(const q3t_speaker_encoder_config *c, char *err, size_t err_len) {
    if (!c->present)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "speaker encoder: config.json has no speaker_encoder_config");
    const int n = c->n_enc_channels;
    if (n < 3 || n > SPK_MAX_CH || c->n_enc_kernel_sizes != n || c->n_enc_dilations != n)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "speaker encoder: enc_channels / enc_kernel_sizes / enc_dilations must have "
                        "the same length (3..%d), got %d / %d / %d", SPK_MAX_CH, n,
                        c->n_enc_kernel_sizes, c->n_enc_dilations);
    if (c->mel_dim != SPK_MEL_DIM)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "speaker encoder: mel_dim %d (the official mel front end gives %d)",
                        c->mel_dim, SPK_MEL_DIM);
    if (c->enc_res2net_scale < 2 || c->enc_res2net_scale > SPK_MAX_SCALE || c->enc_dim < 1 ||
        c->enc_dim > SPK_DIM_MAX || c->enc_se_channels < 1 || c->enc_se_channels > SPK_DIM_MAX ||
        c->enc_attention_channels < 1 || c->enc_attention_channels > SPK_DIM_MAX ||
        c->sample_rate < 1)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speaker encoder: bad sizes");
    int64_t sum = 0;
    for (int i = 0; i < n; i++) {
        if (c->enc_channels[i] < 1 || c->enc_channels[i] > SPK_DIM_MAX ||
            c->enc_kernel_sizes[i] < 1 || c->enc_kernel_sizes[i] % 2 == 0 ||
            c->enc_kernel_sizes[i] > 63 || c->enc_dilations[i] < 1 || c->enc_dilations[i] > 64)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "speaker encoder: bad layer %d (channels %d, kernel %d, dilation %d)", i,
                            c->enc_channels[i], c->enc_kernel_sizes[i], c->enc_dilations[i]);
        if (i > 0 && i < n - 1) {
            sum += c->enc_channels[i];
            if (c->enc_channels[i] != c->enc_channels[i - 1] ||
                c->enc_channels[i] % c->enc_res2net_scale)
                return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                                "speaker encoder: block %d needs %d channels divisible by the "
                                "Res2Net scale %d", i, c->enc_channels[i - 1],
                                c->enc_res2net_scale);
        }
    }
    if (sum != c->enc_channels[n - 1])
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "speaker encoder: MFA width %d differs from the block outputs (%lld)",
                        c->enc_channels[n - 1], (long long)sum);
    return CTTS_OK;
}

static ctts_status bind_all(q3t_speaker_encoder *e, char *err, size_t err_len) {
    const q3t_speaker_encoder_config *c = &e->cfg;
    const int *C = c->enc_channels, *K = c->enc_kernel_sizes, *D = c->enc_dilations;
    const int n = c->n_enc_channels, S = c->enc_res2net_scale;
    char stem[192], name[256];
    TRY(bind_tdnn(e, &e->b0, "speaker_encoder.blocks.0.conv.", C[0], c->mel_dim, K[0], D[0], err,
                  err_len));
    for (int i = 1; i < n - 1; i++) {
        block_w *b = &e->blocks[i - 1];
        const int w = C[i] / S;
        FMT_NAME(stem, "speaker_encoder.blocks.%d.tdnn1.conv.", i);
        TRY(bind_tdnn(e, &b->tdnn1, stem, C[i], C[i - 1], 1, 1, err, err_len));
        for (int j = 0; j < S - 1; j++) {
            FMT_NAME(stem, "speaker_encoder.blocks.%d.res2net_block.blocks.%d.conv.", i, j);
            TRY(bind_tdnn(e, &b->res[j], stem, w, w, K[i], D[i], err, err_len));
        }
        FMT_NAME(stem, "speaker_encoder.blocks.%d.tdnn2.conv.", i);
        TRY(bind_tdnn(e, &b->tdnn2, stem, C[i], C[i], 1, 1, err, err_len));
        const int64_t s1[3] = {c->enc_se_channels, C[i], 1}, s2[3] = {C[i], c->enc_se_channels, 1};
        FMT_NAME(name, "speaker_encoder.blocks.%d.se_block.conv1.weight", i);
        TRY(nn_bind_tensor(&e->binder, &b->se1, NN_BIND_LINEAR, name, 3, s1, err, err_len));
        FMT_NAME(name, "speaker_encoder.blocks.%d.se_block.conv1.bias", i);
        TRY(bind_bias(e, &b->se1_b, name, c->enc_se_channels, err, err_len));
        FMT_NAME(name, "speaker_encoder.blocks.%d.se_block.conv2.weight", i);
        TRY(nn_bind_tensor(&e->binder, &b->se2, NN_BIND_LINEAR, name, 3, s2, err, err_len));
        FMT_NAME(name, "speaker_encoder.blocks.%d.se_block.conv2.bias", i);
        TRY(bind_bias(e, &b->se2_b, name, C[i], err, err_len));
    }
    const int CL = C[n - 1], A = c->enc_attention_channels;
    TRY(bind_tdnn(e, &e->mfa, "speaker_encoder.mfa.conv.", CL, CL, K[n - 1], D[n - 1], err,
                  err_len));
    TRY(bind_tdnn(e, &e->asp_tdnn, "speaker_encoder.asp.tdnn.conv.", A, 3 * CL, 1, 1, err,
                  err_len));
    TRY(bind_tdnn(e, &e->asp_conv, "speaker_encoder.asp.conv.", CL, A, 1, 1, err, err_len));
    const int64_t sfc[3] = {c->enc_dim, 2 * CL, 1};
    TRY(nn_bind_tensor(&e->binder, &e->fc, NN_BIND_LINEAR, "speaker_encoder.fc.weight", 3, sfc,
                       err, err_len));
    return bind_bias(e, &e->fc_b, "speaker_encoder.fc.bias", c->enc_dim, err, err_len);
}

ctts_status q3t_speaker_encoder_bind(const q3t_speaker_encoder_config *cfg, ctts_backend *be,
                                     q3t_weight_lookup get, void *get_ctx,
                                     q3t_speaker_encoder **out, char *err, size_t err_len) {
    if (!out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speaker encoder: no output");
    *out = NULL;
    if (!cfg || !be || !get)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speaker encoder: bad arguments");
    TRY(check_config(cfg, err, err_len));
    q3t_speaker_encoder *e = calloc(1, sizeof *e);
    if (!e) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    e->cfg = *cfg;
    e->be = be;
    e->binder = (nn_binder){.be = be, .get = get, .get_ctx = get_ctx};
    e->n_blocks = cfg->n_enc_channels - 2;
    e->c_last = cfg->enc_channels[cfg->n_enc_channels - 1];
    ctts_status st = bind_all(e, err, err_len);
    if (st != CTTS_OK) {
        q3t_speaker_encoder_free(e);
        return st;
    }
    *out = e;
    return CTTS_OK;
}

void q3t_speaker_encoder_free(q3t_speaker_encoder *e) {
    if (!e) return;
    nn_binder_release(&e->binder);
    free(e);
}

const char *const *q3t_speaker_encoder_bound_names(const q3t_speaker_encoder *e, int *n) {
    if (n) *n = e ? e->binder.n_names : 0;
    return e ? (const char *const *)e->binder.names : NULL;
}

int q3t_speaker_encoder_dim(const q3t_speaker_encoder *e) { return e ? e->cfg.enc_dim : 0; }
int q3t_speaker_encoder_sample_rate(const q3t_speaker_encoder *e) {
    return e ? e->cfg.sample_rate : 0;
}

/* ---- forward ---- */

typedef struct {
    const q3t_speaker_encoder *e;
    ctts_backend *be;
    int T;
    float *mel, *cat, *h, *r, *tmp, *pad, *mfa, *att, *a, *wts, *vec;
    float *host;  /* [T] host row for broadcast fills */
    float *hostv; /* [2 * c_last] host copy of mean | std */
} fwd;

static void fwd_free(fwd *f) {
    float *bufs[] = {f->mel, f->cat, f->h, f->r, f->tmp, f->pad, f->mfa, f->att, f->a, f->wts,
                     f->vec};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) f->be->free_buf(f->be, bufs[i]);
    free(f->host);
    free(f->hostv);
}

/* Largest "same" padding on one side over all convs. */
static int max_pad(const q3t_speaker_encoder *e) {
    const q3t_speaker_encoder_config *c = &e->cfg;
    int m = 0;
    for (int i = 0; i < c->n_enc_channels; i++) {
        const int total = c->enc_dilations[i] * (c->enc_kernel_sizes[i] - 1);
        if (total - total / 2 > m) m = total - total / 2;
    }
    return m;
}

static ctts_status fwd_init(fwd *f, const q3t_speaker_encoder *e, int T, char *err,
                            size_t err_len) {
    memset(f, 0, sizeof *f);
    f->e = e;
    f->be = e->be;
    f->T = T;
    const q3t_speaker_encoder_config *c = &e->cfg;
    int cb = c->mel_dim;
    for (int i = 0; i < c->n_enc_channels - 1; i++) cb = c->enc_channels[i] > cb ? c->enc_channels[i] : cb;
    const size_t t = (size_t)T, CL = (size_t)e->c_last, P = (size_t)(2 * max_pad(e));
    const size_t A = (size_t)c->enc_attention_channels;
    ctts_backend *be = e->be;
    f->mel = be->alloc(be, (size_t)c->mel_dim * t * sizeof(float));
    f->cat = be->alloc(be, CL * t * sizeof(float));
    f->h = be->alloc(be, (size_t)cb * t * sizeof(float));
    f->r = be->alloc(be, (size_t)cb * t * sizeof(float));
    f->tmp = be->alloc(be, (size_t)cb * t * sizeof(float));
    f->pad = be->alloc(be, (size_t)cb * (t + P) * sizeof(float));
    f->mfa = be->alloc(be, CL * t * sizeof(float));
    f->att = be->alloc(be, 3 * CL * t * sizeof(float));
    f->a = be->alloc(be, (A > CL ? A : CL) * t * sizeof(float));
    f->wts = be->alloc(be, CL * t * sizeof(float));
    /* mean, std, pooled [2 CL], fc out, SE vectors */
    f->vec = be->alloc(be, (6 * CL + (size_t)c->enc_dim + 2 * (size_t)cb +
                            (size_t)c->enc_se_channels) * sizeof(float));
    f->host = malloc(t * sizeof(float));
    f->hostv = malloc(2 * CL * sizeof(float));
    if (!f->hostv || !f->mel || !f->cat || !f->h || !f->r || !f->tmp || !f->pad || !f->mfa || !f->att ||
        !f->a || !f->wts || !f->vec || !f->host) {
        fwd_free(f);
        return ctts_err(err, err_len, CTTS_E_OOM, "out of memory for the speaker encoder");
    }
    return CTTS_OK;
}

/* y [cout, T] = ReLU?(conv_same_reflect(x [cin, T])). */
static void tdnn(fwd *f, float *y, const float *x, const tdnn_w *w, int relu) {
    ctts_backend *be = f->be;
    const int T = f->T, total = w->dil * (w->k - 1);
    if (total == 0) {
        be->conv1d(be, y, x, w->w, w->b, T, 1, 1, 1);
    } else {
        const int left = total / 2, right = total - left, L = T + total;
        for (int ch = 0; ch < w->cin; ch++) {
            const float *src = x + (size_t)ch * T;
            float *dst = f->pad + (size_t)ch * L;
            memcpy(dst + left, src, (size_t)T * sizeof(float));
            for (int j = 0; j < left; j++) dst[left - 1 - j] = src[j + 1];
            for (int j = 0; j < right; j++) dst[left + T + j] = src[T - 2 - j];
        }
        be->conv1d(be, y, f->pad, w->w, w->b, L, 1, w->dil, 1);
    }
    if (relu) be->unary(be, y, y, (size_t)w->cout * T, CTTS_UNARY_RELU);
}

static void tap(q3t_spk_tap_fn fn, void *user, const char *name, const float *x, int rows,
                int cols) {
    if (fn) fn(user, name, x, rows, cols);
}

/* Fills rows [r0, r0 + n) of x [*, T] with the host values v[0..n). */
static void fill_rows(fwd *f, float *x, const float *v, int n) {
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < f->T; t++) f->host[t] = v[i];
        f->be->upload(f->be, x + (size_t)i * f->T, f->host, (size_t)f->T * sizeof(float));
    }
}

static void forward(fwd *f, float *out, q3t_spk_tap_fn tap_fn, void *user) {
    const q3t_speaker_encoder *e = f->e;
    const q3t_speaker_encoder_config *c = &e->cfg;
    ctts_backend *be = f->be;
    const int T = f->T, S = c->enc_res2net_scale, CL = e->c_last, SE = c->enc_se_channels;
    const size_t t = (size_t)T;
    char name[32];
    float *mean = f->vec, *std = mean + CL, *pooled = std + CL, *fc = pooled + 2 * CL;
    float *se_m = fc + c->enc_dim, *se_z = se_m + CL;

    float *cur = f->tmp; /* block input */
    tdnn(f, cur, f->mel, &e->b0, 1);
    tap(tap_fn, user, "blocks.0", cur, e->b0.cout, T);
    size_t row0 = 0;
    for (int i = 0; i < e->n_blocks; i++) {
        const block_w *b = &e->blocks[i];
        const int C = b->tdnn1.cout, w = C / S;
        float *blk_out = f->cat + row0 * t;
        tdnn(f, f->h, cur, &b->tdnn1, 1);
        /* Res2Net over row ranges of h, into r. */
        nn_copy_rows(f->r, t, f->h, t, (size_t)w, t);
        for (int j = 1; j < S; j++) {
            const float *hj = f->h + (size_t)j * w * t;
            float *rj = f->r + (size_t)j * w * t;
            if (j == 1) {
                tdnn(f, rj, hj, &b->res[0], 1);
            } else {
                float *sum = blk_out; /* free until the block output is written */
                be->add(be, sum, hj, rj - (size_t)w * t, (size_t)w * t);
                tdnn(f, rj, sum, &b->res[j - 1], 1);
            }
        }
        tdnn(f, f->h, f->r, &b->tdnn2, 1);
        /* Squeeze-excitation: time mean -> conv -> ReLU -> conv -> sigmoid -> gain. */
        be->row_moments(be, se_m, NULL, f->h, NULL, C, T, 0.0f);
        be->linear(be, se_z, se_m, b->se1, b->se1_b, 1);
        be->unary(be, se_z, se_z, (size_t)SE, CTTS_UNARY_RELU);
        be->linear(be, se_m, se_z, b->se2, b->se2_b, 1);
        be->unary(be, se_m, se_m, (size_t)C, CTTS_UNARY_SIGMOID);
        be->scale_rows(be, f->h, f->h, se_m, C, T);
        be->add(be, blk_out, f->h, cur, (size_t)C * t);
        snprintf(name, sizeof name, "blocks.%d", i + 1);
        tap(tap_fn, user, name, blk_out, C, T);
        cur = blk_out;
        row0 += (size_t)C;
    }
    tdnn(f, f->mfa, f->cat, &e->mfa, 1);
    tap(tap_fn, user, "mfa", f->mfa, CL, T);

    /* Attentive statistics pooling. */
    for (int i = 0; i < T; i++) f->host[i] = 1.0f / (float)T; /* mask / total */
    for (int ch = 0; ch < CL; ch++)
        be->upload(be, f->wts + (size_t)ch * t, f->host, t * sizeof(float));
    be->row_moments(be, mean, std, f->mfa, f->wts, CL, T, SPK_EPS);
    nn_copy_rows(f->att, t, f->mfa, t, (size_t)CL, t);
    be->download(be, f->hostv, mean, 2 * (size_t)CL * sizeof(float)); /* mean | std */
    fill_rows(f, f->att + (size_t)CL * t, f->hostv, 2 * CL);
    tdnn(f, f->a, f->att, &e->asp_tdnn, 1);
    be->unary(be, f->a, f->a, (size_t)c->enc_attention_channels * t, CTTS_UNARY_TANH);
    tdnn(f, f->wts, f->a, &e->asp_conv, 0);
    be->softmax_rows(be, f->wts, f->wts, CL, T);
    be->row_moments(be, pooled, pooled + CL, f->mfa, f->wts, CL, T, SPK_EPS);
    tap(tap_fn, user, "asp", pooled, 2 * CL, 1);
    be->linear(be, fc, pooled, e->fc, e->fc_b, 1);
    tap(tap_fn, user, "fc", fc, c->enc_dim, 1);
    be->download(be, out, fc, (size_t)c->enc_dim * sizeof(float));
}

ctts_status q3t_speaker_embed_mel(const q3t_speaker_encoder *e, const float *mel, int T,
                                  float *out, q3t_spk_tap_fn tap_fn, void *tap_user, char *err,
                                  size_t err_len) {
    if (!e || !mel || !out)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speaker encoder: bad arguments");
    if (T <= max_pad(e) || T > (1 << 24))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "speaker encoder: %d mel frames is too short (needs more than %d)", T,
                        max_pad(e));
    fwd f;
    TRY(fwd_init(&f, e, T, err, err_len));
    e->be->upload(e->be, f.mel, mel, (size_t)e->cfg.mel_dim * T * sizeof(float));
    forward(&f, out, tap_fn, tap_user);
    fwd_free(&f);
    return CTTS_OK;
}

ctts_status q3t_speaker_embed(const q3t_speaker_encoder *e, const float *pcm, size_t n,
                              float *out, q3t_spk_tap_fn tap_fn, void *tap_user, char *err,
                              size_t err_len) {
    if (!e || !pcm || !out)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "speaker encoder: bad arguments");
    /* The official call: n_fft 1024, hop 256, window 1024, 128 mels, 0..12000 Hz at 24 kHz. */
    const mel_params p = {.sample_rate = e->cfg.sample_rate, .n_fft = 1024, .hop = 256,
                          .n_mels = SPK_MEL_DIM, .fmin = 0.0f, .fmax = 12000.0f};
    float *mel = NULL;
    int T = 0;
    TRY(mel_log_spectrogram(&p, pcm, n, &mel, &T, err, err_len));
    tap(tap_fn, tap_user, "mel", mel, SPK_MEL_DIM, T);
    ctts_status st = q3t_speaker_embed_mel(e, mel, T, out, tap_fn, tap_user, err, err_len);
    free(mel);
    return st;
}
