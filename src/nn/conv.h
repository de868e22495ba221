/*
 * Streaming (causal) 1-D convolutions with state, written against backend ops.
 *
 * nn_conv1d_stream: each call convolves [state | x] with no padding and keeps
 * the last n_prev = (k-1)*dilation + 1 - stride input columns as the new
 * state. From a zero state this is exactly a causal (left zero-padded) conv,
 * so feeding a signal in pieces gives the same result as feeding it whole.
 * "replicate" mode fills the initial state with copies of the first input
 * column instead of zeros.
 *
 * nn_convtr1d_stream: each call computes the full transposed conv of x
 * (length (T-1)*stride + k), adds the held-back partial sums to its first
 * k - stride columns, keeps the last k - stride columns (minus the bias) for
 * the next call and emits the first T*stride columns.
 *
 * Activations are [C, T] (channels outer). The convolution, the additions and
 * the bias removal are backend ops; assembling [state | x] and shifting the
 * state are row copies (memcpy) on backend memory, so these blocks assume
 * host-addressable backend memory (the CPU backend). A device backend needs a
 * strided 2-D copy and a fill op here.
 *
 * Not here: activations before the conv (the caller applies them), weight
 * binding, non-causal padding modes.
 */
#ifndef CTTS_NN_CONV_H
#define CTTS_NN_CONV_H

#include <stddef.h>

#include "backend/backend.h"
#include "base/tensor.h"
#include "ctts.h"

typedef struct {
    const ctts_tensor *w; /* {cout, cin/groups, k} */
    const float *bias;    /* [cout] or NULL */
    int cin, cout, k, stride, dilation, groups;
    int replicate; /* 1: initial state = first input column repeated */
    int n_prev;    /* state columns: (k-1)*dilation + 1 - stride */
    int t_max;     /* largest T per call */
    float *state;  /* [cin, n_prev] backend memory (NULL when n_prev == 0) */
    float *work;   /* [cin, n_prev + t_max]: [state | x] for the current call */
    int primed;    /* replicate: state already filled from a first input */
} nn_conv1d_stream;

typedef struct {
    const ctts_tensor *w; /* {cin, cout/groups, k} */
    const float *bias;    /* [cout] or NULL */
    int cin, cout, k, stride, groups;
    int n_part;       /* held-back columns: k - stride (0 <= n_part <= stride) */
    int t_max;        /* largest T per call */
    float *full;      /* [cout, (t_max-1)*stride + k] full transposed conv output */
    float *partial;   /* [cout, n_part] held-back sums (bias removed) */
    float *spare;     /* [cout, n_part] next partial being built */
    float *head;      /* [cout, n_part] first columns + partial */
    float *neg_bias;  /* [cout, n_part] -bias[c] per row, NULL without bias */
} nn_convtr1d_stream;

/* Sets up a streaming conv for inputs of up to t_max columns per call
 * (t_max a multiple of stride). Shapes come from w (shape {cout, cin/groups, k})
 * and groups; cin = (w->shape[1]) * groups. Allocates state and work buffers
 * (zeroed) from be. Errors: bad geometry (CTTS_E_INVALID_ARG /
 * CTTS_E_UNSUPPORTED when stride exceeds the dilated kernel), CTTS_E_OOM. */
ctts_status nn_conv1d_stream_init(nn_conv1d_stream *c, ctts_backend *be, const ctts_tensor *w,
                                  const float *bias, int stride, int dilation, int groups,
                                  int replicate, int t_max, char *err, size_t err_len);
/* Fresh state: zeros (or "not yet primed" in replicate mode). */
void nn_conv1d_stream_reset(nn_conv1d_stream *c);
/* y [cout, T/stride] = conv([state | x]); x [cin, T]; 0 < T <= t_max, T % stride == 0.
 * y must not alias x. Allocates nothing. CTTS_E_INVALID_ARG on a bad T. */
ctts_status nn_conv1d_stream_forward(nn_conv1d_stream *c, ctts_backend *be, float *y,
                                     const float *x, int T);
void nn_conv1d_stream_release(nn_conv1d_stream *c, ctts_backend *be);

/* Sets up a streaming transposed conv (w shape {cin, cout/groups, k}) for up to
 * t_max input columns per call. Requires stride <= k <= 2*stride (the held-back
 * part fits inside one call's output). Errors as nn_conv1d_stream_init. */
ctts_status nn_convtr1d_stream_init(nn_convtr1d_stream *c, ctts_backend *be,
                                    const ctts_tensor *w, const float *bias, int stride,
                                    int groups, int t_max, char *err, size_t err_len);
/* Fresh state: zero partial sums. */
void nn_convtr1d_stream_reset(nn_convtr1d_stream *c);
/* y [cout, T*stride] from x [cin, T]; 0 < T <= t_max. y must not alias x.
 * Allocates nothing. */
ctts_status nn_convtr1d_stream_forward(nn_convtr1d_stream *c, ctts_backend *be, float *y,
                                       const float *x, int T);
void nn_convtr1d_stream_release(nn_convtr1d_stream *c, ctts_backend *be);

/* Copies rows x cols floats between strided row layouts (glue on host-addressable
 * backend memory): dst[r*dst_stride + j] = src[r*src_stride + j]. */
void nn_copy_rows(float *dst, size_t dst_stride, const float *src, size_t src_stride,
                  size_t rows, size_t cols);

#endif
