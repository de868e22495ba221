/*
 * NEON kernels for arm64 (AdvSIMD is part of the base AArch64 ISA, so this
 * file needs no extra compiler flags; on other targets it is empty but for a
 * stub of cpu_kernels_init_neon that reports "not built").
 *
 * matmul (F32/BF16/F16 weights): T = 1 (GEMV, bound by memory bandwidth)
 * streams one weight row at a time with 4 accumulators; T > 1 uses register
 * tiles of 4 weight rows x 4 activation rows, so each weight vector loaded
 * (and widened) serves 4 rows of x and each x vector serves 4 weight rows.
 * BF16 widens by a 16-bit left shift, F16 by FCVTL.
 * matmul_q (Q8_0/Q4_0 weights x Q8_0 activations): kernels_neon_mmq.h, 4
 * weight rows x up to 4 activation rows per tile, exact int32 block sums
 * (SDOT from kernels_neon_dot.c when the host has the dot-product extension,
 * else SMULL/SMLAL + pairwise adds), scaled into float per block.
 * quant_row_q8_0: bit-identical to the reference (same scale, then v +/- 0.5
 * truncated, as the reference rounds).
 * dot / axpy / scale: straightforward 4-lane loops.
 * Everything else (convolutions, activations, norms) stays on the scalar
 * reference.
 *
 * Every output element is accumulated the same way whatever tile computed it
 * (one lane-parallel sum over 4-blocks of K in order, a fixed-order
 * horizontal add, then a scalar tail with fmaf in order), so results do not
 * depend on where a thread range starts. Versus the scalar reference the
 * order differs: |diff| stays far below the test bound of 2e-5 of sum |terms|.
 */
#include "cpu/kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include <string.h>
#include <sys/auxv.h>

#include "quant/quant.h"

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20) /* Linux arm64 hwcap bit of the dot-product extension */
#endif

#define NEON_MMQ_DOT 0
#include "cpu/kernels_neon_mmq.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum { W_F32, W_BF16, W_F16 };

/* 4 weights from w + i widened to float. */
ALWAYS_INLINE float32x4_t load4(const void *w, size_t i, const int kind) {
    if (kind == W_F32) return vld1q_f32((const float *)w + i);
    const uint16x4_t h = vld1_u16((const uint16_t *)w + i);
    if (kind == W_BF16) return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
    return vcvt_f32_f16(vreinterpret_f16_u16(h));
}

ALWAYS_INLINE float load1(const void *w, size_t i, const int kind) {
    if (kind == W_F32) return ((const float *)w)[i];
    const uint16_t h = ((const uint16_t *)w)[i];
    if (kind == W_BF16) {
        const uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* Fixed-order horizontal sum: (l0 + l2) + (l1 + l3). */
ALWAYS_INLINE float hsum(float32x4_t v) {
    const float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(s, 0) + vget_lane_f32(s, 1);
}

/* ---- matmul ---- */

/* y[t*ldy + r] for r < RB, t < TB (T > 1 only); RB, TB, kind are
 * compile-time constants at every call site. */
ALWAYS_INLINE void mm_tile(float *y, int ldy, const float *x, int ldx, const void *w, size_t ldw,
                           int K, const int RB, const int TB, const int kind) {
    float32x4_t acc[4][4];
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) acc[r][t] = vdupq_n_f32(0.0f);
    const int K4 = K & ~3;
    for (int k = 0; k < K4; k += 4) {
        float32x4_t xv[4];
        for (int t = 0; t < TB; t++) xv[t] = vld1q_f32(x + (size_t)t * ldx + k);
        for (int r = 0; r < RB; r++) {
            const float32x4_t wv = load4(w, (size_t)r * ldw + k, kind);
            for (int t = 0; t < TB; t++) acc[r][t] = vfmaq_f32(acc[r][t], wv, xv[t]);
        }
    }
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) {
            float s = hsum(acc[r][t]);
            const float *xr = x + (size_t)t * ldx;
            for (int kk = K4; kk < K; kk++)
                s = fmaf(xr[kk], load1(w, (size_t)r * ldw + kk, kind), s);
            y[(size_t)t * ldy + r] = s;
        }
}

/* GEMV row: one weight row streamed front to back with 4 accumulators. */
ALWAYS_INLINE float gemv_row(const float *x, const void *w, int K, const int kind) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        a0 = vfmaq_f32(a0, load4(w, k, kind), vld1q_f32(x + k));
        a1 = vfmaq_f32(a1, load4(w, k + 4, kind), vld1q_f32(x + k + 4));
        a2 = vfmaq_f32(a2, load4(w, k + 8, kind), vld1q_f32(x + k + 8));
        a3 = vfmaq_f32(a3, load4(w, k + 12, kind), vld1q_f32(x + k + 12));
    }
    for (; k + 4 <= K; k += 4) a0 = vfmaq_f32(a0, load4(w, k, kind), vld1q_f32(x + k));
    float s = hsum(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; k < K; k++) s = fmaf(x[k], load1(w, k, kind), s);
    return s;
}

/* One block of RB weight rows against all T activation rows, tiles of 4 in t. */
ALWAYS_INLINE void mm_rowblock(float *y, int ldy, const float *x, int ldx, const void *wr, int K,
                               int T, const int RB, const int kind) {
    int t = 0;
    for (; t + 4 <= T; t += 4)
        mm_tile(y + (size_t)t * ldy, ldy, x + (size_t)t * ldx, ldx, wr, K, K, RB, 4, kind);
    switch (T - t) {
    case 3: mm_tile(y + (size_t)t * ldy, ldy, x + (size_t)t * ldx, ldx, wr, K, K, RB, 3, kind); break;
    case 2: mm_tile(y + (size_t)t * ldy, ldy, x + (size_t)t * ldx, ldx, wr, K, K, RB, 2, kind); break;
    case 1: mm_tile(y + (size_t)t * ldy, ldy, x + (size_t)t * ldx, ldx, wr, K, K, RB, 1, kind); break;
    default: break;
    }
}

ALWAYS_INLINE void mm_rows(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                           int T, const int kind) {
    const size_t es = kind == W_F32 ? 4 : 2;
    if (T == 1) {
        for (int r = 0; r < R; r++) y[r] = gemv_row(x, (const char *)w + (size_t)r * K * es, K, kind);
        return;
    }
    int r = 0;
    for (; r + 4 <= R; r += 4)
        mm_rowblock(y + r, ldy, x, ldx, (const char *)w + (size_t)r * K * es, K, T, 4, kind);
    for (; r < R; r++)
        mm_rowblock(y + r, ldy, x, ldx, (const char *)w + (size_t)r * K * es, K, T, 1, kind);
}

static void matmul_f32_neon(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                            int T) {
    mm_rows(y, ldy, x, ldx, w, R, K, T, W_F32);
}
static void matmul_bf16_neon(float *y, int ldy, const float *x, int ldx, const void *w, int R,
                             int K, int T) {
    mm_rows(y, ldy, x, ldx, w, R, K, T, W_BF16);
}
static void matmul_f16_neon(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                            int T) {
    mm_rows(y, ldy, x, ldx, w, R, K, T, W_F16);
}

/* ---- Q8_0 activation quantizer ---- */

/* Per block: d = max|x| / 127 (stored as f16, rounded to nearest even), q = trunc(x / d +/- 0.5) with
 * the same float operations as quant_row_q8_0_ref, so the bytes match it. */
static void quant_row_q8_0_neon(const float *x, void *vy, int k) {
    block_q8_0 *y = vy;
    const uint32x4_t sign = vdupq_n_u32(0x80000000u);
    const uint32x4_t half = vreinterpretq_u32_f32(vdupq_n_f32(0.5f));
    for (int b = 0; b < k / QK; b++) {
        const float *xb = x + (size_t)b * QK;
        float32x4_t v[8], m = vdupq_n_f32(0.0f);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            v[i] = vld1q_f32(xb + 4 * i);
            m = vmaxq_f32(m, vabsq_f32(v[i]));
        }
        const float d = vmaxvq_f32(m) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const __fp16 dh = (__fp16)d; /* FCVT rounds to nearest even, as ctts_f32_to_f16 */
        memcpy(&y[b].d, &dh, 2);
        int16x8_t h[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            int32x4_t q[2];
#pragma GCC unroll 2
            for (int j = 0; j < 2; j++) {
                const float32x4_t s = vmulq_n_f32(v[2 * i + j], id);
                const float32x4_t r = vreinterpretq_f32_u32(
                    vorrq_u32(vandq_u32(vreinterpretq_u32_f32(s), sign), half)); /* +/-0.5 */
                q[j] = vcvtq_s32_f32(vaddq_f32(s, r));
            }
            h[i] = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
        }
        vst1q_s8(y[b].qs, vcombine_s8(vmovn_s16(h[0]), vmovn_s16(h[1])));
        vst1q_s8(y[b].qs + 16, vcombine_s8(vmovn_s16(h[2]), vmovn_s16(h[3])));
    }
}

/* ---- vector primitives ---- */

static float dot_neon(const float *a, const float *b, int n) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    if (i + 4 <= n) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
        i += 4;
    }
    float s = hsum(vaddq_f32(acc0, acc1));
    for (; i < n; i++) s = fmaf(a[i], b[i], s);
    return s;
}

static void axpy_neon(float *y, float a, const float *x, int n) {
    const float32x4_t av = vdupq_n_f32(a);
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), av, vld1q_f32(x + i)));
    for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

static void scale_neon(float *y, float a, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), a));
    for (; i < n; i++) y[i] *= a;
}

int cpu_kernels_init_neon_ex(cpu_kernels *k, int use_dotprod) {
    const int dotprod = use_dotprod && (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
    k->isa = CTTS_ISA_NEON;
    k->name = dotprod ? "neon+dotprod" : "neon";
    k->matmul[CTTS_DT_F32] = matmul_f32_neon;
    k->matmul[CTTS_DT_BF16] = matmul_bf16_neon;
    k->matmul[CTTS_DT_F16] = matmul_f16_neon;
    k->matmul_q[CTTS_DT_Q8_0] = dotprod ? cpu_matmul_q8_0_neon_dot : neon_mmq_q8_0;
    k->matmul_q[CTTS_DT_Q4_0] = dotprod ? cpu_matmul_q4_0_neon_dot : neon_mmq_q4_0;
    k->quant_row_q8_0 = quant_row_q8_0_neon;
    k->dot = dot_neon;
    k->axpy = axpy_neon;
    k->scale = scale_neon;
    return 1;
}

int cpu_kernels_init_neon(cpu_kernels *k) { return cpu_kernels_init_neon_ex(k, 1); }

#else

int cpu_kernels_init_neon_ex(cpu_kernels *k, int use_dotprod) {
    (void)k;
    (void)use_dotprod;
    return 0;
}

int cpu_kernels_init_neon(cpu_kernels *k) { return cpu_kernels_init_neon_ex(k, 1); }

#endif
