/*
 * CPU kernel table: the whole numeric surface of the CPU backend.
 *
 * Every kernel works on raw pointers over a sub-range of its output (a block
 * of rows, channels or (query, head) items) so the backend can split work
 * across threads by output only: a result never depends on how the range was
 * cut, which is what makes outputs identical for any thread count.
 *
 * kernels_ref.c holds the scalar reference of every entry (always built; the
 * fallback and the test oracle). kernels_avx2.c overrides entries when the
 * host has AVX2+FMA+F16C, kernels_avx512.c the compute-bound ones again when
 * it has AVX-512 F/BW/VL; on arm64 kernels_neon.c overrides the matmuls (the
 * quantized ones with SDOT from kernels_neon_dot.c when the host has the
 * dot-product extension), the Q8_0 quantizer and the vector primitives (NEON
 * is always present there). dispatch.c probes the host and fills a table capped
 * at a ctts_cpu_isa. Nothing here allocates, locks or knows about models.
 */
#ifndef CTTS_CPU_KERNELS_H
#define CTTS_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "base/tensor.h"
#include "ctts.h"

/* y[t*ldy + r] = sum_k x[t*ldx + k] * W[r, k] for r < R, t < T.
 * W: R rows of K contiguous elements of the kernel's dtype (w points at row 0).
 * Block-quantized dtypes need K % 32 == 0. */
typedef void (*cpu_matmul_fn)(float *y, int ldy, const float *x, int ldx, const void *w, int R,
                              int K, int T);

/* Block-quantized weights (Q8_0, Q4_0; src/quant/quant.h): y[t*ldy + r] =
 * dot(W[r], xq[t]) for r < R, t < T, where xq holds T rows of K/32 Q8_0
 * blocks (activations quantized on the fly by quant_row_q8_0), row after row.
 * K % 32 == 0. */
typedef void (*cpu_matmul_q_fn)(float *y, int ldy, const void *xq, const void *w, int R, int K,
                                int T);

/* Output channels per chunk of the packed conv_transpose1d_bf16 weights
 * (64 output columns (channel, tap) per chunk). */
static inline int ct_bf16_chunk(int K) { return K > 0 && K <= 64 ? 64 / K : 1; }

/* Weight rows dequantized at a time by matmul_q_bf16 (its scratch: this many
 * rows of K BF16 values). */
#define CPU_MQ_BF16_ROWS 48

/* Activation kinds of cpu_kernels.act (same values as ctts_act in backend.h). */
enum { CPU_ACT_GELU_ERF = 0, CPU_ACT_SILU = 1, CPU_ACT_ELU = 2 };

/* One convolution (either direction). Shapes follow backend.h:
 *  conv1d:           x [cin, tin], W {cout, cin/groups, k}, y [cout, tout],
 *                    tout = (tin - (k-1)*dilation - 1)/stride + 1.
 *  conv_transpose1d: x [cin, tin], W {cin, cout/groups, k}, y [cout, tout],
 *                    tout = (tin-1)*stride + k (dilation unused, 1).
 * w has dtype wdt (F32, BF16 or F16); bias [cout] or NULL.
 *
 * BF16 weights flagged bf16_products (base/tensor.h) mean "BF16 products, F32
 * accumulation": y = bias + sum of bf16(x) * w, bf16() rounding to nearest
 * even, each product exact in float, sums in float (any order). conv1d /
 * conv_transpose1d multiply x as given, so for those the backend passes x
 * already rounded (once per call);
 * conv1d_bf16 / conv_transpose1d_bf16 read x packed by conv_bf16_pack from xp.
 * Denormal activations may read as zero (vdpbf16ps, and the pool's DAZ). */
typedef struct {
    float *y;
    const float *x;
    const void *w;
    ctts_dtype wdt;
    const float *bias;
    int cin, cout, tin, tout, k, stride, dilation, groups;
    const void *xp; /* packed BF16 activations (the *_bf16 kernels only) */
    int w_packed;   /* conv_transpose1d_bf16 only: w in the ct_bf16_pack_w layout */
} cpu_conv_args;

typedef struct cpu_kernels {
    ctts_cpu_isa isa; /* tier actually selected */
    const char *name; /* "scalar", "avx2" */

    /* Indexed by ctts_dtype; NULL where the dtype is not supported. */
    cpu_matmul_fn matmul[CTTS_DT_COUNT];
    /* Indexed by ctts_dtype; set for Q8_0 and Q4_0 only. */
    cpu_matmul_q_fn matmul_q[CTTS_DT_COUNT];
    /* x [k] -> k/32 block_q8_0 (k % 32 == 0): the activation side of matmul_q. */
    void (*quant_row_q8_0)(const float *x, void *y, int k);

    /* Convolutions for output channels [co0, co1) (bias included). */
    void (*conv1d)(const cpu_conv_args *a, int co0, int co1);
    void (*conv_transpose1d)(const cpu_conv_args *a, int co0, int co1);

    /* BF16-weight convolutions on vdpbf16ps (set when the host has
     * AVX512_BF16, NULL elsewhere). conv_bf16_rows returns how many rows of
     * row_bytes bytes (a multiple of 64) the packed activations of a take, 0
     * when these kernels do not handle the shape (the caller then uses the
     * float kernels on rounded x); conv_bf16_pack writes rows [r0, r1) of them
     * into xp (64-byte aligned; rows are independent, so threads may split
     * them); the kernels then read a->xp (and never a->x). */
    int (*conv_bf16_rows)(const cpu_conv_args *a, int transposed, size_t *row_bytes);
    void (*conv_bf16_pack)(const cpu_conv_args *a, int transposed, void *xp, int r0, int r1);
    void (*conv1d_bf16)(const cpu_conv_args *a, int co0, int co1);
    void (*conv_transpose1d_bf16)(const cpu_conv_args *a, int co0, int co1);
    /* conv_transpose1d_bf16 weights rearranged once so each chunk of
     * ct_bf16_chunk(K) output channels is one sequential stream: the bytes
     * of that layout for W {groups * cin_g, cout_g, K} (0: not handled), and
     * the rearrangement into dst (64-byte aligned). With a->w_packed the
     * kernel must be called on ranges that start and end at chunk
     * boundaries inside a group (or at the group's end). */
    size_t (*ct_bf16_packed_bytes)(int cin_g, int cout_g, int K, int groups);
    void (*ct_bf16_pack_w)(const void *w, int cin_g, int cout_g, int K, int groups, void *dst);

    /* Block-quantized matmul for many activation rows (prompt prefill) on
     * vdpbf16ps (set with AVX512_BF16, NULL elsewhere): y[t*ldy + r] = sum_k
     * bf16(x[t][k]) * bf16(W[r][k]) for r < R, t < T, W Q8_0 / Q4_0
     * dequantized to BF16 (d * q rounded to nearest even), sums in float. More
     * accurate than matmul_q (whose activations are 8-bit) and about twice as
     * fast once T is large enough to amortize the dequantization.
     * mq_bf16_pack_x fills pair rows [kp0, kp1) of xp (K/2 rows of round16(T)
     * 32-bit pairs, 64-byte aligned; rows are independent, so threads may split
     * them); matmul_q_bf16 then reads xp, and wb is its own scratch of
     * CPU_MQ_BF16_ROWS * K BF16 values. K % 32 == 0. */
    void (*mq_bf16_pack_x)(const float *x, int K, int T, void *xp, int kp0, int kp1);
    void (*matmul_q_bf16)(float *y, int ldy, const void *xp, int T, const void *w, ctts_dtype wdt,
                          int R, int K, uint16_t *wb);

    /* Vector primitives (n >= 0, no alignment required). */
    float (*dot)(const float *a, const float *b, int n); /* sum a[i] b[i] */
    void (*axpy)(float *y, float a, const float *x, int n); /* y += a x */
    void (*scale)(float *y, float a, int n);                /* y *= a */
    /* Softmax attention of one query row for the nq heads (q + h*Dh, out
     * o + h*Dh) that share one key/value head: n keys k + j*ld and values
     * v + j*ld of Dh floats, o = softmax(scale * q.k) v (zeros when n = 0).
     * Returns 0 without writing when it does not take the sizes (the caller
     * then uses dot / axpy); NULL below AVX-512. */
    int (*attend)(float *o, const float *q, int nq, const float *k, const float *v, size_t ld,
                  int n, int Dh, float scale);
    /* attend over F16 keys and values (k + j*ld halves), products and sums in
     * float; NULL below AVX-512 (the caller converts rows with f16_to_f32). */
    int (*attend_f16)(float *o, const float *q, int nq, const uint16_t *k, const uint16_t *v,
                      size_t ld, int n, int Dh, float scale);
    /* IEEE half <-> float rows, exact in both directions up to the rounding of
     * f32_to_f16: nearest even, magnitudes past 65504 saturate to +-65504
     * (a cache must not turn a large value into inf), NaN stays NaN. */
    void (*f16_to_f32)(float *y, const uint16_t *x, int n);
    void (*f32_to_f16)(uint16_t *y, const float *x, int n);
    /* y[i] = act(x[i]) for i < n (CPU_ACT_*); y may equal x. SIMD tiers use
     * polynomial exp / erf within a few ulp of libm. */
    void (*act)(float *y, const float *x, int n, int kind);

    /* SnakeBeta on one channel row: y[i] = x[i] + b * sin(a * x[i])^2 for i < n (the
     * product a * x[i] rounded to float first, as the reference); y may equal x. The
     * reference uses libm sinf; SIMD tiers a Cody-Waite reduction and minimax
     * polynomials (|sin^2 error| < 4e-7 for |a x| <= 1e6, libm beyond). */
    void (*snake_row)(float *y, const float *x, int n, float a, float b);

    /* One row of D: LayerNorm (biased variance; w, b may be NULL) and the
     * Pocket std-norm (unbiased variance, x not centred). */
    void (*layer_norm_row)(float *y, const float *x, const float *w, const float *b, int D,
                           float eps);
    void (*std_norm_row)(float *y, const float *x, const float *w, int D, float eps);
} cpu_kernels;

/* Highest tier the host (CPU and OS) supports. Pure probe, no state. */
ctts_cpu_isa cpu_isa_detect(void);

/* Fills k with the best kernels for min(host tier, cap); cap CTTS_ISA_AUTO means
 * no cap, CTTS_ISA_SCALAR forces the reference. */
void cpu_kernels_init(cpu_kernels *k, ctts_cpu_isa cap);

/* Variant fillers used by dispatch.c. init_ref fills every entry; init_avx2
 * overrides some and returns 0 when built without x86-64 support. */
void cpu_kernels_init_ref(cpu_kernels *k);
int cpu_kernels_init_avx2(cpu_kernels *k);
int cpu_kernels_init_avx512(cpu_kernels *k);
int cpu_kernels_init_neon(cpu_kernels *k); /* 0 when built without arm64 support */
/* Adds the AVX512_BF16 convolutions (kernels_bf16.c) when the host has
 * AVX512_BF16 (cpuid leaf 7 subleaf 1 EAX bit 5); call after init_avx512
 * succeeded. 0 (table untouched) otherwise. */
int cpu_kernels_init_bf16(cpu_kernels *k);
/* The SIMD tiers' e^x (exp4 / exp8 / exp16): x clamped to [LO, HI], n =
 * round(x log2 e), r = x - n ln2 (ln2 in two parts), e^r by the Cephes expf
 * polynomial (~1 ulp), times 2^n built in the exponent bits. One set of
 * constants so the tiers cannot drift apart. */
#define CPU_EXP_LO -87.3f
#define CPU_EXP_HI 88.3f
#define CPU_EXP_LOG2E 1.44269504088896341f
#define CPU_EXP_LN2_HI 0.693359375f
#define CPU_EXP_LN2_LO -2.12194440e-4f
#define CPU_EXP_P0 1.9875691500e-4f
#define CPU_EXP_P1 1.3981999507e-3f
#define CPU_EXP_P2 8.3334519073e-3f
#define CPU_EXP_P3 4.1665795894e-2f
#define CPU_EXP_P4 1.6666665459e-1f
#define CPU_EXP_P5 5.0000001201e-1f

/* f32_to_f16 of one value (the SIMD tiers' tails): magnitudes past 65504
 * saturate, NaN stays NaN, then nearest even. */
static inline uint16_t cpu_f32_to_f16_sat(float x) {
    return ctts_f32_to_f16(x > 65504.0f ? 65504.0f : x < -65504.0f ? -65504.0f : x);
}
/* float -> the nearest BF16 value (ties to even; NaN stays NaN) as a float. */
static inline float cpu_round_bf16(float f) {
    union { float f; uint32_t u; } v = {.f = f};
    /* Branch-free so loops of it vectorize. */
    const uint32_t nan = (v.u & 0x7fffffffu) > 0x7f800000u;
    const uint32_t r = v.u + 0x7fffu + ((v.u >> 16) & 1u), q = v.u | 0x00400000u;
    v.u = ((q & (0u - nan)) | (r & (nan - 1u))) & 0xffff0000u;
    return v.f;
}
/* The NEON tier with the ARMv8.2 dot-product (SDOT) quantized matmuls allowed
 * (use_dotprod != 0: taken when the host has them, HWCAP_ASIMDDP) or forced
 * off (0: the plain AdvSIMD ones). init_neon is init_neon_ex(k, 1); tests use
 * 0 to reach the fallback on hosts with dotprod. 0 when not built for arm64. */
int cpu_kernels_init_neon_ex(cpu_kernels *k, int use_dotprod);
/* The SDOT matmul_q kernels (kernels_neon_dot.c); only callable on hosts with
 * HWCAP_ASIMDDP. */
void cpu_matmul_q8_0_neon_dot(float *y, int ldy, const void *xq, const void *w, int R, int K,
                              int T);
void cpu_matmul_q4_0_neon_dot(float *y, int ldy, const void *xq, const void *w, int R, int K,
                              int T);

/* The AVX2 matmuls, which the AVX-512 tier reuses for T = 1 (only callable
 * when init_avx2 succeeded). */
void cpu_matmul_f32_avx2(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                         int T);
void cpu_matmul_bf16_avx2(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                          int T);
void cpu_matmul_f16_avx2(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                         int T);

/* The reference convolutions, also the fallback of SIMD tiers for shapes
 * they have no fast path for. */
void cpu_conv1d_ref(const cpu_conv_args *a, int co0, int co1);
void cpu_conv_transpose1d_ref(const cpu_conv_args *a, int co0, int co1);

#endif
