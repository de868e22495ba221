/*
 * Streaming causal conv1d / conv-transpose1d (see conv.h).
 *
 * conv1d:   work = [state | x] (row copies), y = conv1d_valid(work), then the
 *           last n_prev columns of work become the state.
 * convtr1d: full = convtr(x) (with bias); spare = full[:, T*S:] - bias;
 *           head = full[:, :n_part] + partial; y = [head | full[:, n_part:T*S]];
 *           partial <- spare.
 * The numbers go through backend ops; only copies are done here.
 */
#include "nn/conv.h"

#include <stdint.h>
#include <string.h>

#include "base/error.h"

/* Sizes are kept well inside int so every product below fits size_t on
 * 64-bit hosts and the backend's int arguments. */
#define CONV_DIM_MAX (1 << 20)

void nn_copy_rows(float *dst, size_t dst_stride, const float *src, size_t src_stride,
                  size_t rows, size_t cols) {
    if (!rows || !cols) return;
    for (size_t r = 0; r < rows; r++)
        memcpy(dst + r * dst_stride, src + r * src_stride, cols * sizeof(float));
}

static float *alloc_floats(ctts_backend *be, size_t a, size_t b) {
    if (a == 0 || b == 0) return NULL;
    if (a > SIZE_MAX / sizeof(float) / b) return NULL;
    return be->alloc(be, a * b * sizeof(float));
}

/* Reads a conv weight's {d0, d1, k} dims. */
static ctts_status weight_dims(const ctts_tensor *w, int64_t *d0, int64_t *d1, int64_t *k,
                               char *err, size_t err_len) {
    const char *name = w && w->name ? w->name : "(conv weight)";
    if (!w || !w->data || w->ndim != 3)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "%s: conv weight must have 3 dims",
                        name);
    *d0 = w->shape[0];
    *d1 = w->shape[1];
    *k = w->shape[2];
    if (*d0 <= 0 || *d1 <= 0 || *k <= 0 || *d0 > CONV_DIM_MAX || *d1 > CONV_DIM_MAX ||
        *k > CONV_DIM_MAX)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "%s: conv dims out of range", name);
    return CTTS_OK;
}

ctts_status nn_conv1d_stream_init(nn_conv1d_stream *c, ctts_backend *be, const ctts_tensor *w,
                                  const float *bias, int stride, int dilation, int groups,
                                  int replicate, int t_max, char *err, size_t err_len) {
    if (!c || !be) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "conv: bad arguments");
    memset(c, 0, sizeof *c);
    int64_t cout, cin_g, k;
    ctts_status st = weight_dims(w, &cout, &cin_g, &k, err, err_len);
    if (st != CTTS_OK) return st;
    const char *name = w->name ? w->name : "(conv weight)";
    if (stride <= 0 || dilation <= 0 || groups <= 0 || t_max <= 0 || t_max > CONV_DIM_MAX ||
        t_max % stride != 0 || cout % groups != 0 || cin_g * groups > CONV_DIM_MAX)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "%s: bad conv geometry (stride %d, dilation %d, groups %d, t_max %d)",
                        name, stride, dilation, groups, t_max);
    int64_t eff = (k - 1) * dilation + 1;
    if (eff > CONV_DIM_MAX || eff < stride)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "%s: kernel %lld (dilation %d) does not fit stride %d", name,
                        (long long)k, dilation, stride);
    c->w = w;
    c->bias = bias;
    c->cout = (int)cout;
    c->cin = (int)(cin_g * groups);
    c->k = (int)k;
    c->stride = stride;
    c->dilation = dilation;
    c->groups = groups;
    c->replicate = replicate ? 1 : 0;
    c->n_prev = (int)(eff - stride);
    c->t_max = t_max;
    if (c->n_prev > 0) {
        c->state = alloc_floats(be, (size_t)c->cin, (size_t)c->n_prev);
        c->work = alloc_floats(be, (size_t)c->cin, (size_t)c->n_prev + (size_t)t_max);
        if (!c->state || !c->work) {
            nn_conv1d_stream_release(c, be);
            return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory for conv state", name);
        }
    }
    return CTTS_OK;
}

void nn_conv1d_stream_reset(nn_conv1d_stream *c) {
    if (!c) return;
    if (c->state) memset(c->state, 0, (size_t)c->cin * (size_t)c->n_prev * sizeof(float));
    c->primed = 0;
}

ctts_status nn_conv1d_stream_forward(nn_conv1d_stream *c, ctts_backend *be, float *y,
                                     const float *x, int T) {
    if (!c || !be || !y || !x || !c->w || T <= 0 || T > c->t_max || T % c->stride != 0)
        return CTTS_E_INVALID_ARG;
    if (c->n_prev == 0) {
        be->conv1d(be, y, x, c->w, c->bias, T, c->stride, c->dilation, c->groups);
        return CTTS_OK;
    }
    const size_t P = (size_t)c->n_prev, L = P + (size_t)T, C = (size_t)c->cin;
    if (c->replicate && !c->primed) {
        /* The first call pads with the first input sample of each channel. */
        for (size_t ch = 0; ch < C; ch++)
            for (size_t j = 0; j < P; j++) c->state[ch * P + j] = x[ch * (size_t)T];
        c->primed = 1;
    }
    nn_copy_rows(c->work, L, c->state, P, C, P);
    nn_copy_rows(c->work + P, L, x, (size_t)T, C, (size_t)T);
    be->conv1d(be, y, c->work, c->w, c->bias, (int)L, c->stride, c->dilation, c->groups);
    nn_copy_rows(c->state, P, c->work + (size_t)T, L, C, P);
    return CTTS_OK;
}

void nn_conv1d_stream_release(nn_conv1d_stream *c, ctts_backend *be) {
    if (!c) return;
    if (be) {
        if (c->state) be->free_buf(be, c->state);
        if (c->work) be->free_buf(be, c->work);
    }
    c->state = c->work = NULL;
}

ctts_status nn_convtr1d_stream_init(nn_convtr1d_stream *c, ctts_backend *be,
                                    const ctts_tensor *w, const float *bias, int stride,
                                    int groups, int t_max, char *err, size_t err_len) {
    if (!c || !be) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "convtr: bad arguments");
    memset(c, 0, sizeof *c);
    int64_t cin, cout_g, k;
    ctts_status st = weight_dims(w, &cin, &cout_g, &k, err, err_len);
    if (st != CTTS_OK) return st;
    const char *name = w->name ? w->name : "(convtr weight)";
    if (stride <= 0 || groups <= 0 || t_max <= 0 || t_max > CONV_DIM_MAX ||
        cin % groups != 0 || cout_g * groups > CONV_DIM_MAX)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "%s: bad convtr geometry (stride %d, groups %d, t_max %d)", name, stride,
                        groups, t_max);
    if (k < stride || k > 2 * (int64_t)stride)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "%s: kernel %lld must lie in [stride, 2*stride] (stride %d)", name,
                        (long long)k, stride);
    int64_t full_len = ((int64_t)t_max - 1) * stride + k;
    if (full_len > CONV_DIM_MAX * (int64_t)16)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "%s: output too long", name);
    c->w = w;
    c->bias = bias;
    c->cin = (int)cin;
    c->cout = (int)(cout_g * groups);
    c->k = (int)k;
    c->stride = stride;
    c->groups = groups;
    c->n_part = (int)(k - stride);
    c->t_max = t_max;
    const size_t C = (size_t)c->cout, P = (size_t)c->n_part;
    c->full = alloc_floats(be, C, (size_t)full_len);
    int ok = c->full != NULL;
    if (P > 0) {
        c->partial = alloc_floats(be, C, P);
        c->spare = alloc_floats(be, C, P);
        c->head = alloc_floats(be, C, P);
        ok = ok && c->partial && c->spare && c->head;
        if (ok && bias) {
            c->neg_bias = alloc_floats(be, C, P);
            ok = c->neg_bias != NULL;
            if (ok) /* constant table built once: -bias[c] repeated along each row */
                for (size_t ch = 0; ch < C; ch++)
                    for (size_t j = 0; j < P; j++) c->neg_bias[ch * P + j] = -bias[ch];
        }
    }
    if (!ok) {
        nn_convtr1d_stream_release(c, be);
        return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory for convtr state", name);
    }
    return CTTS_OK;
}

void nn_convtr1d_stream_reset(nn_convtr1d_stream *c) {
    if (!c || !c->partial) return;
    memset(c->partial, 0, (size_t)c->cout * (size_t)c->n_part * sizeof(float));
}

ctts_status nn_convtr1d_stream_forward(nn_convtr1d_stream *c, ctts_backend *be, float *y,
                                       const float *x, int T) {
    if (!c || !be || !y || !x || !c->w || T <= 0 || T > c->t_max) return CTTS_E_INVALID_ARG;
    const size_t C = (size_t)c->cout, P = (size_t)c->n_part, S = (size_t)c->stride;
    const size_t n_out = (size_t)T * S, L = n_out + P;
    be->conv_transpose1d(be, c->full, x, c->w, c->bias, T, c->stride, c->groups);
    if (P == 0) {
        nn_copy_rows(y, n_out, c->full, L, C, n_out);
        return CTTS_OK;
    }
    /* The tail is only partly summed: hold it back, without the bias that
     * the next call's full output will add again. */
    nn_copy_rows(c->spare, P, c->full + n_out, L, C, P);
    if (c->neg_bias) be->add(be, c->spare, c->spare, c->neg_bias, C * P);
    nn_copy_rows(c->head, P, c->full, L, C, P);
    be->add(be, c->head, c->head, c->partial, C * P);
    nn_copy_rows(y, n_out, c->head, P, C, P);
    nn_copy_rows(y + P, n_out, c->full + P, L, C, n_out - P);
    float *t = c->partial;
    c->partial = c->spare;
    c->spare = t;
    return CTTS_OK;
}

void nn_convtr1d_stream_release(nn_convtr1d_stream *c, ctts_backend *be) {
    if (!c) return;
    if (be) {
        float *bufs[5] = {c->full, c->partial, c->spare, c->head, c->neg_bias};
        for (int i = 0; i < 5; i++)
            if (bufs[i]) be->free_buf(be, bufs[i]);
    }
    c->full = c->partial = c->spare = c->head = c->neg_bias = NULL;
}
