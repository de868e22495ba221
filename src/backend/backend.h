/*
 * The backend interface: every numeric operation a model family needs.
 *
 * Model code (src/models/) is written once against this table; the CPU
 * backend (src/backend/cpu.c onto src/cpu/) implements it today, a CUDA
 * backend can implement it later. All float pointers passed to ops point
 * into backend memory (host memory for the CPU backend). Weights are
 * ctts_tensor views whose data lives in backend memory too.
 *
 * Conventions:
 *  - Row-major. "[T, D]" = T rows of D floats. Sequence activations of the
 *    transformers are [T, D]; convolution activations are [C, T] (PyTorch).
 *  - Ops never allocate; outputs never alias inputs unless stated.
 *  - Weight dtypes: F32 always; BF16/F16/Q8_0/Q4_0 where supports_dtype says.
 */
#ifndef CTTS_BACKEND_H
#define CTTS_BACKEND_H

#include <stddef.h>

#include "base/tensor.h"
#include "ctts.h"

typedef enum {
    CTTS_ACT_GELU_ERF = 0, /* 0.5 x (1 + erf(x / sqrt 2)) */
    CTTS_ACT_SILU,         /* x / (1 + exp(-x)) */
    CTTS_ACT_ELU,          /* x > 0 ? x : exp(x) - 1 (alpha 1) */
} ctts_act;

/* Elementwise functions of the unary() op (Qwen3-TTS speaker encoder). */
typedef enum {
    CTTS_UNARY_RELU = 0, /* max(x, 0) */
    CTTS_UNARY_TANH,     /* tanh(x) */
    CTTS_UNARY_SIGMOID,  /* 1 / (1 + exp(-x)) */
} ctts_unary;

typedef struct ctts_backend ctts_backend;

struct ctts_backend {
    const char *name;
    void *impl; /* backend private state (CPU: thread pool) */

    /* Memory. alloc returns zeroed, 64-byte aligned memory or NULL. */
    void *(*alloc)(ctts_backend *be, size_t nbytes);
    void (*free_buf)(ctts_backend *be, void *p);
    void (*upload)(ctts_backend *be, void *dst, const void *src, size_t nbytes);
    void (*download)(ctts_backend *be, void *dst, const void *src, size_t nbytes);
    void (*sync)(ctts_backend *be);
    /* Whether linear() accepts weights of this dtype. */
    int (*supports_dtype)(ctts_backend *be, ctts_dtype dt);

    /* y[T, N] = x[T, K] . W[N, K]^T (+ bias[N] if bias). W->shape = {N, K}
     * (trailing dims of size 1 allowed, e.g. a 1x1 conv {N, K, 1}). */
    void (*linear)(ctts_backend *be, float *y, const float *x, const ctts_tensor *w,
                   const float *bias, int T);

    /* y[i][T, N_i] = x[T, K] . W_i[N_i, K]^T for i < n (n <= 4, no bias): the
     * weights of one input (q/k/v, gate/up) in one pass, so x is prepared and
     * the work split once instead of once per weight. Same results as n
     * linear() calls. */
    void (*linear_multi)(ctts_backend *be, int n, float *const *y, const float *x,
                         const ctts_tensor *const *w, int T);

    /* LayerNorm over the last dim D of x[T, D], biased variance:
     * y = (x - mean) / sqrt(var + eps) * w + b. w and b may be NULL (no affine). */
    void (*layer_norm)(ctts_backend *be, float *y, const float *x, const float *w,
                       const float *b, int T, int D, float eps);

    /* y = x * w / sqrt(var(x) + eps) row-wise, var the UNBIASED (D-1) variance
     * about the mean while x itself is not centred (Pocket flow-head RMSNorm). */
    void (*std_norm)(ctts_backend *be, float *y, const float *x, const float *w, int T, int D,
                     float eps);

    /* y[i] = act(x[i]); y may equal x. */
    void (*act)(ctts_backend *be, float *y, const float *x, size_t n, ctts_act kind);

    /* y[i] = a[i] + b[i]; y may equal a or b. */
    void (*add)(ctts_backend *be, float *y, const float *a, const float *b, size_t n);

    /* y[t, d] += s[d] * h[t, d] (s NULL: y += h). Residual with LayerScale / gate. */
    void (*add_scaled_rows)(ctts_backend *be, float *y, const float *h, const float *s, int T,
                            int D);

    /* y[t, d] = y[t, d] * (1 + scale[d]) + shift[d] (AdaLN modulation). */
    void (*modulate)(ctts_backend *be, float *y, const float *shift, const float *scale, int T,
                     int D);

    /* Rotary embedding, interleaved pairs (x[2i], x[2i+1]) inside each head, in place.
     * x rows have stride row_stride floats; head h of row t starts at x + t*row_stride + h*Dh.
     * Row t has position pos0 + t; freq_i = exp(-ln(max_period) * 2i / Dh) in float. */
    void (*rope)(ctts_backend *be, float *x, int T, int H, int Dh, int row_stride, int pos0,
                 float max_period);

    /* Causal multi-head attention of T queries against keys 0..n_kv-1.
     * q: [T, H*Dh] (row stride q_stride), k/v: [n_kv, H*Dh] (row stride kv_stride).
     * Query t sits at key index q_pos0 + t and may see key j iff j <= q_pos0 + t and
     * (window <= 0 || q_pos0 + t - j < window). Scale 1/sqrt(Dh). out: [T, H*Dh] dense. */
    void (*attention)(ctts_backend *be, float *out, const float *q, int q_stride, const float *k,
                      const float *v, int kv_stride, int T, int n_kv, int q_pos0, int H, int Dh,
                      int window);

    /* Valid (unpadded) 1-D convolution. x: [Cin, Tin], W: {Cout, Cin/groups, K},
     * bias [Cout] or NULL, y: [Cout, Tout], Tout = (Tin - (K-1)*dilation - 1)/stride + 1.
     * W of dtype F32 / F16, or BF16 without w->bf16_products: float products of x as
     * given, float sums. W of dtype BF16 with w->bf16_products set (both convs):
     * "BF16 products, F32 accumulation": x is rounded to BF16 (nearest even), each
     * product bf16(x) * w is exact in float, sums in float in an order that differs by
     * CPU tier (within ~1e-5 of the sum of |products| of the exact value; denormal x
     * may count as zero); with AVX512_BF16 this runs vdpbf16ps at twice the f32 rate.
     * Meant for audio decoders in the fast weight modes (output never fed back). */
    void (*conv1d)(ctts_backend *be, float *y, const float *x, const ctts_tensor *w,
                   const float *bias, int Tin, int stride, int dilation, int groups);

    /* Full transposed 1-D convolution. x: [Cin, Tin], W: {Cin, Cout/groups, K},
     * bias [Cout] or NULL (added to every output), y: [Cout, (Tin-1)*stride + K].
     * Weight dtypes as conv1d (BF16 + bf16_products: BF16 products, F32 sums). */
    void (*conv_transpose1d)(ctts_backend *be, float *y, const float *x, const ctts_tensor *w,
                             const float *bias, int Tin, int stride, int groups);

    /* A copy of conv_transpose1d weight w (for this groups) rearranged for
     * this backend's fastest kernel, flagged packed: pass it to
     * conv_transpose1d instead of w for the same results. NULL when w is best
     * used as it is (or on out-of-memory); release with free_packed. Only the
     * packed kernel reads it: if a call cannot get its activation scratch (out
     * of memory) the output is NaN, never a silently different result. */
    ctts_tensor *(*pack_conv_transpose)(ctts_backend *be, const ctts_tensor *w, int groups);
    void (*free_packed)(ctts_backend *be, ctts_tensor *t);

    /* y[c, t] = x[t, c]: x is [R, C], y is [C, R]. */
    void (*transpose)(ctts_backend *be, float *y, const float *x, int R, int C);

    /* Releases the backend itself (after waiting for a side job). */
    void (*destroy)(ctts_backend *be);

    /* Runs fn(ctx) on one of the backend's CPU threads beside its ops and
     * returns (after waiting for the previous side job); side_wait returns
     * once fn has returned. The ops go on without that thread meanwhile (CPU:
     * the pool's last worker), so a job that computes on one core (another
     * backend's ops) overlaps ops that stream memory on the others. fn must
     * not run this backend's ops. With one thread fn runs before side_run
     * returns. */
    void (*side_run)(ctts_backend *be, void (*fn)(void *), void *ctx);
    void (*side_wait)(ctts_backend *be);

    /* ---- Qwen3 decoder ops ---- */

    /* RMSNorm over the last dim D of x[T, D]: y = x / sqrt(mean(x^2) + eps) * w
     * (w [D] or NULL). y may equal x. Per-head q/k norms use T = rows * heads, D = Dh. */
    void (*rms_norm)(ctts_backend *be, float *y, const float *x, const float *w, int T, int D,
                     float eps);

    /* Rotary embedding, rotate-half layout (pairs (i, i + Dh/2) inside each head), in place.
     * Row/head addressing as rope(). inv_freq_i = 1 / theta^(2i/Dh) in float; angle =
     * (pos0 + t) * inv_freq_i; x_i' = x_i cos - x_{i+Dh/2} sin, x_{i+Dh/2}' = x_{i+Dh/2} cos
     * + x_i sin (HF rotate_half). Dh must be even. */
    void (*rope_half)(ctts_backend *be, float *x, int T, int H, int Dh, int row_stride, int pos0,
                      float theta);

    /* Grouped-query causal attention: as attention() but k/v hold H_kv heads
     * ([n_kv, H_kv*Dh], row stride kv_stride) and query head h reads KV head
     * h / (H / H_kv). H must be a multiple of H_kv. out: [T, H*Dh] dense. */
    void (*attention_gqa)(ctts_backend *be, float *out, const float *q, int q_stride,
                          const float *k, const float *v, int kv_stride, int T, int n_kv,
                          int q_pos0, int H, int H_kv, int Dh, int window);

    /* A KV cache in F16, head-major: head g of row r at elements (g * capacity + r) * Dh,
     * so each head's rows are one contiguous stream (half the bytes of F32 rows).
     * kv_store_f16 writes T rows of K and V ([T, H_kv*Dh] floats, row stride ld) at
     * rows row0.. (nearest even; magnitudes past 65504 saturate). attention_gqa_f16 is
     * attention_gqa over such a cache (keys 0..n_kv-1; products and sums in float;
     * Dh <= 512). */
    void (*kv_store_f16)(ctts_backend *be, void *kc, void *vc, const float *k, const float *v,
                         int ld, int T, int row0, int H_kv, int Dh, int capacity);
    void (*attention_gqa_f16)(ctts_backend *be, float *out, const float *q, int q_stride,
                              const void *kc, const void *vc, int capacity, int T, int n_kv,
                              int q_pos0, int H, int H_kv, int Dh, int window);

    /* y[i] = a[i] * b[i]; y may equal a or b. */
    void (*mul)(ctts_backend *be, float *y, const float *a, const float *b, size_t n);
    /* y[0, n) = x[0, n), both backend memory (they do not overlap). */
    void (*copy)(ctts_backend *be, float *y, const float *x, size_t n);

    /* Embedding gather: y[i, :] = float(W[ids[i], :]) for i < n, W->shape = {rows, D}
     * (F32, BF16, F16, Q8_0 or Q4_0). ids are host memory; the caller checks
     * 0 <= ids[i] < rows (a row out of range is written as zeros). y: [n, D]. */
    void (*get_rows)(ctts_backend *be, float *y, const ctts_tensor *w, const int32_t *ids, int n);

    /* ---- Qwen3-TTS codec ops ---- */

    /* SnakeBeta on channel-major x[C, T]: y[c, t] = x + b[c] * sin(a[c] * x)^2, with the
     * caller's per-channel a = exp(alpha), b = 1 / (exp(beta) + 1e-9). y may equal x. */
    void (*snake)(ctts_backend *be, float *y, const float *x, const float *a, const float *b,
                  int C, int T);

    /* y[i] = f(x[i]) for a ctts_unary f; y may equal x. */
    void (*unary)(ctts_backend *be, float *y, const float *x, size_t n, ctts_unary kind);

    /* Softmax of each row of x[R, C]: exp(x - max) / sum; y may equal x. */
    void (*softmax_rows)(ctts_backend *be, float *y, const float *x, int R, int C);

    /* y[r, c] = x[r, c] * s[r] (per-channel gain on channel-major data); y may equal x. */
    void (*scale_rows)(ctts_backend *be, float *y, const float *x, const float *s, int R, int C);

    /* Weighted moments of each row of x[R, C]: mean[r] = sum_c w[r, c] x[r, c] and, when
     * std is not NULL, std[r] = sqrt(max(sum_c w[r, c] (x[r, c] - mean[r])^2, eps)).
     * w NULL: the plain mean, sum_c x[r, c] / C (and the variance sum (x - mean)^2 / C).
     * mean, std: [R]. */
    void (*row_moments)(ctts_backend *be, float *mean, float *std, const float *x,
                        const float *w, int R, int C, float eps);

    /* ---- profiling (optional: NULL in backends without it) ---- */

    /* Ops after this call are counted under stage (a ctts_stage) while profiling is on. */
    void (*profile_stage)(ctts_backend *be, int stage);
    /* Copies the counters into out (if not NULL), resets them, then turns
     * profiling on (enable != 0) or off. */
    void (*profile)(ctts_backend *be, int enable, ctts_profile *out);
};

/* Marks where the following ops belong for the profiler (no-op without one). */
static inline void ctts_backend_stage(ctts_backend *be, ctts_stage stage) {
    if (be && be->profile_stage) be->profile_stage(be, (int)stage);
}

/* Creates the CPU backend with n_threads workers (<= 0: all online CPUs) and the
 * kernel tier capped at isa (a ctts_cpu_isa value from ctts.h). NULL on failure. */
ctts_backend *ctts_backend_cpu_new(int n_threads, int isa);

#endif
