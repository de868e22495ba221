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
 * conv1d (F32/BF16/F16 weights, any stride / dilation / groups): tiles of 4
 * output channels (one group) x 4-16 time steps, lanes = time steps, a direct
 * loop over input channels and taps; stride > 1 gathers x by lane loads.
 * conv_transpose1d: polyphase, output u = q*stride + p is a direct convolution
 * along q per phase p (taps p, p + stride, ...), tiles of 4 channels x 4-16 q,
 * edges (input times outside [0, tin)) one output at a time.
 * Every conv output sums bias + taps by FMA in (input channel, tap) order
 * whatever computed it (tile lane or scalar edge), so thread splits do not
 * change it.
 * act: GELU (erf by Abramowitz & Stegun 7.1.26, |error| < 1.5e-7), SiLU and
 * ELU (exp by range reduction + Cephes polynomial, expm1 by Taylor near 0),
 * the same math as kernels_avx2.c.
 * Norms, attention and snake stay on the scalar reference.
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

static void f16_to_f32_neon(float *y, const uint16_t *x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, load4(x, (size_t)i, W_F16));
    for (; i < n; i++) y[i] = ctts_f16_to_f32(x[i]);
}

/* Clamped first (vmax/vmin keep NaN), then converted to nearest even. */
static void f32_to_f16_neon(uint16_t *y, const float *x, int n) {
    const float32x4_t hi = vdupq_n_f32(65504.0f), lo = vdupq_n_f32(-65504.0f);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vminq_f32(hi, vmaxq_f32(lo, vld1q_f32(x + i)));
        vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(v)));
    }
    for (; i < n; i++) y[i] = cpu_f32_to_f16_sat(x[i]);
}

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

/* ---- conv1d ---- */

/* x[0], x[S], x[2S], x[3S] (S > 1: strided convolutions, not the hot path). */
ALWAYS_INLINE float32x4_t gather4(const float *x, size_t S) {
    float32x4_t v = vdupq_n_f32(x[0]);
    v = vld1q_lane_f32(x + S, v, 1);
    v = vld1q_lane_f32(x + 2 * S, v, 2);
    return vld1q_lane_f32(x + 3 * S, v, 3);
}

/* Output channels co..co+CB-1 (one group) x time steps t..t+4*TV-1. Lanes are
 * time steps; each lane sums bias + taps by FMA in (input channel, tap) order,
 * as conv_one does, so a value does not depend on the tile that computed it. */
ALWAYS_INLINE void conv_tile(const cpu_conv_args *a, int co, int t, const int CB, const int TV,
                             const int strided, const int kind) {
    const int cin_g = a->cin / a->groups, cout_g = a->cout / a->groups;
    const int K = a->k;
    const size_t dil = (size_t)a->dilation, S = (size_t)a->stride;
    const float *xg = a->x + (size_t)(co / cout_g) * cin_g * a->tin + (size_t)t * S;
    const size_t wrow = (size_t)cin_g * K; /* weights per output channel */
    float32x4_t acc[4][4];
    for (int j = 0; j < CB; j++)
        for (int v = 0; v < TV; v++) acc[j][v] = vdupq_n_f32(a->bias ? a->bias[co + j] : 0.0f);
    for (int cl = 0; cl < cin_g; cl++) {
        const float *xr = xg + (size_t)cl * a->tin;
        const size_t wo = (size_t)co * wrow + (size_t)cl * K;
        for (int k = 0; k < K; k++) {
            float32x4_t xv[4];
            for (int v = 0; v < TV; v++)
                xv[v] = strided ? gather4(xr + (size_t)k * dil + 4 * v * S, S)
                                : vld1q_f32(xr + (size_t)k * dil + 4 * v);
            for (int j = 0; j < CB; j++) {
                const float32x4_t wv = vdupq_n_f32(load1(a->w, wo + j * wrow + k, kind));
                for (int v = 0; v < TV; v++) acc[j][v] = vfmaq_f32(acc[j][v], wv, xv[v]);
            }
        }
    }
    for (int j = 0; j < CB; j++)
        for (int v = 0; v < TV; v++)
            vst1q_f32(a->y + (size_t)(co + j) * a->tout + t + 4 * v, acc[j][v]);
}

/* One output (channel co, time t) the way a tile lane computes it. */
ALWAYS_INLINE void conv_one(const cpu_conv_args *a, int co, int t, const int kind) {
    const int cin_g = a->cin / a->groups, cout_g = a->cout / a->groups;
    const float *xg = a->x + (size_t)(co / cout_g) * cin_g * a->tin + (size_t)t * a->stride;
    const size_t wrow = (size_t)cin_g * a->k;
    float s = a->bias ? a->bias[co] : 0.0f;
    for (int cl = 0; cl < cin_g; cl++) {
        const float *xr = xg + (size_t)cl * a->tin;
        const size_t wo = (size_t)co * wrow + (size_t)cl * a->k;
        for (int k = 0; k < a->k; k++)
            s = fmaf(load1(a->w, wo + k, kind), xr[(size_t)k * a->dilation], s);
    }
    a->y[(size_t)co * a->tout + t] = s;
}

ALWAYS_INLINE void conv_channels(const cpu_conv_args *a, int co, const int CB, const int strided,
                                 const int kind) {
    int t = 0;
    for (; t + 16 <= a->tout; t += 16) conv_tile(a, co, t, CB, 4, strided, kind);
    for (; t + 8 <= a->tout; t += 8) conv_tile(a, co, t, CB, 2, strided, kind);
    for (; t + 4 <= a->tout; t += 4) conv_tile(a, co, t, CB, 1, strided, kind);
    for (; t < a->tout; t++)
        for (int j = 0; j < CB; j++) conv_one(a, co + j, t, kind);
}

ALWAYS_INLINE void conv1d_kind(const cpu_conv_args *a, int co0, int co1, const int strided,
                               const int kind) {
    const int cout_g = a->cout / a->groups;
    int co = co0;
    while (co < co1) {
        const int group_end = (co / cout_g + 1) * cout_g; /* a block stays in one group */
        const int lim = group_end < co1 ? group_end : co1;
        if (co + 4 <= lim) {
            conv_channels(a, co, 4, strided, kind);
            co += 4;
        } else {
            conv_channels(a, co, 1, strided, kind);
            co += 1;
        }
    }
}

static void conv1d_neon(const cpu_conv_args *a, int co0, int co1) {
    const int strided = a->stride != 1;
    switch (a->wdt) {
    case CTTS_DT_F32:
        if (strided) conv1d_kind(a, co0, co1, 1, W_F32);
        else conv1d_kind(a, co0, co1, 0, W_F32);
        break;
    case CTTS_DT_BF16:
        if (strided) conv1d_kind(a, co0, co1, 1, W_BF16);
        else conv1d_kind(a, co0, co1, 0, W_BF16);
        break;
    case CTTS_DT_F16:
        if (strided) conv1d_kind(a, co0, co1, 1, W_F16);
        else conv1d_kind(a, co0, co1, 0, W_F16);
        break;
    default: cpu_conv1d_ref(a, co0, co1); break;
    }
}

/* ---- conv_transpose1d: polyphase ---- */

/* Output u = q S + p (phase p < S) collects taps j = p + m S (m < M_p) of input
 * times q - m: a direct convolution along q per phase. Lanes are 4 consecutive q
 * of one phase (stored strided); each output sums bias + taps by FMA in (input
 * channel, m) order, as convt_one does. */
ALWAYS_INLINE void convt_tile(const cpu_conv_args *a, int co, int p, int M, int q, const int CB,
                              const int TV, const int kind) {
    const int cin_g = a->cin / a->groups, cout_g = a->cout / a->groups;
    const int g = co / cout_g, col = co % cout_g, K = a->k, S = a->stride;
    float32x4_t acc[4][4];
    for (int j = 0; j < CB; j++)
        for (int v = 0; v < TV; v++) acc[j][v] = vdupq_n_f32(a->bias ? a->bias[co + j] : 0.0f);
    for (int cl = 0; cl < cin_g; cl++) {
        const int ci = g * cin_g + cl;
        const float *xr = a->x + (size_t)ci * a->tin + q;
        const size_t wb = ((size_t)ci * cout_g + col) * K + p;
        for (int m = 0; m < M; m++) {
            float32x4_t xv[4];
            for (int v = 0; v < TV; v++) xv[v] = vld1q_f32(xr - m + 4 * v);
            for (int j = 0; j < CB; j++) {
                const float32x4_t wv =
                    vdupq_n_f32(load1(a->w, wb + (size_t)j * K + (size_t)m * S, kind));
                for (int v = 0; v < TV; v++) acc[j][v] = vfmaq_f32(acc[j][v], wv, xv[v]);
            }
        }
    }
    for (int j = 0; j < CB; j++) {
        float *yr = a->y + (size_t)(co + j) * a->tout + (size_t)q * S + p;
        for (int v = 0; v < TV; v++) {
            float l[4];
            vst1q_f32(l, acc[j][v]);
            for (int i = 0; i < 4; i++) yr[(size_t)(4 * v + i) * S] = l[i];
        }
    }
}

/* One output (channel co, u = q S + p) the way a tile lane computes it, taps
 * whose input time falls outside [0, tin) skipped. */
ALWAYS_INLINE void convt_one(const cpu_conv_args *a, int co, int p, int M, int q, const int kind) {
    const int cin_g = a->cin / a->groups, cout_g = a->cout / a->groups;
    const int g = co / cout_g, col = co % cout_g, K = a->k, S = a->stride;
    const int m0 = q - a->tin + 1 > 0 ? q - a->tin + 1 : 0, m1 = q + 1 < M ? q + 1 : M;
    float s = a->bias ? a->bias[co] : 0.0f;
    for (int cl = 0; cl < cin_g; cl++) {
        const int ci = g * cin_g + cl;
        const float *xr = a->x + (size_t)ci * a->tin + q;
        const size_t wb = ((size_t)ci * cout_g + col) * K + p;
        for (int m = m0; m < m1; m++) s = fmaf(load1(a->w, wb + (size_t)m * S, kind), xr[-m], s);
    }
    a->y[(size_t)co * a->tout + (size_t)q * S + p] = s;
}

/* All outputs of channels co..co+CB-1 (one group). */
ALWAYS_INLINE void convt_channels(const cpu_conv_args *a, int co, const int CB, const int kind) {
    const int S = a->stride, K = a->k, tin = a->tin;
    for (int p = 0; p < S; p++) {
        if (p >= K) { /* no taps: bias only */
            for (int j = 0; j < CB; j++) {
                const float b = a->bias ? a->bias[co + j] : 0.0f;
                float *yr = a->y + (size_t)(co + j) * a->tout + p;
                for (int q = 0; (size_t)q * S + p < (size_t)a->tout; q++) yr[(size_t)q * S] = b;
            }
            continue;
        }
        const int M = (K - p + S - 1) / S, nq = tin + M - 1; /* q in [0, nq) */
        int q = 0;
        /* Edge: q < M - 1 reads input times below 0. */
        for (; q < nq && q < M - 1; q++)
            for (int j = 0; j < CB; j++) convt_one(a, co + j, p, M, q, kind);
        /* Interior tiles: every q - m in [0, tin). */
        for (; q + 16 <= tin; q += 16) convt_tile(a, co, p, M, q, CB, 4, kind);
        for (; q + 8 <= tin; q += 8) convt_tile(a, co, p, M, q, CB, 2, kind);
        for (; q + 4 <= tin; q += 4) convt_tile(a, co, p, M, q, CB, 1, kind);
        for (; q < nq; q++)
            for (int j = 0; j < CB; j++) convt_one(a, co + j, p, M, q, kind);
    }
}

ALWAYS_INLINE void convt_kind(const cpu_conv_args *a, int co0, int co1, const int kind) {
    const int cout_g = a->cout / a->groups;
    int co = co0;
    while (co < co1) {
        const int group_end = (co / cout_g + 1) * cout_g; /* a block stays in one group */
        const int lim = group_end < co1 ? group_end : co1;
        if (co + 4 <= lim) {
            convt_channels(a, co, 4, kind);
            co += 4;
        } else {
            convt_channels(a, co, 1, kind);
            co += 1;
        }
    }
}

static void conv_transpose1d_neon(const cpu_conv_args *a, int co0, int co1) {
    switch (a->wdt) {
    case CTTS_DT_F32: convt_kind(a, co0, co1, W_F32); break;
    case CTTS_DT_BF16: convt_kind(a, co0, co1, W_BF16); break;
    case CTTS_DT_F16: convt_kind(a, co0, co1, W_F16); break;
    default: cpu_conv_transpose1d_ref(a, co0, co1); break;
    }
}

/* ---- activations ---- */

/* e^x: x = n ln2 + r (two-part ln2), e^r by a degree-6 polynomial (Cephes expf
 * coefficients, ~1 ulp), scaled by 2^n built in the exponent bits. Inputs are
 * clamped to the finite range (e^-87.3 is the smallest normal). */
ALWAYS_INLINE float32x4_t exp4(float32x4_t x) {
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(CPU_EXP_LO)), vdupq_n_f32(CPU_EXP_HI));
    const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, CPU_EXP_LOG2E));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(CPU_EXP_LN2_HI));
    r = vfmsq_f32(r, n, vdupq_n_f32(CPU_EXP_LN2_LO));
    float32x4_t p = vdupq_n_f32(CPU_EXP_P0);
    p = vfmaq_f32(vdupq_n_f32(CPU_EXP_P1), p, r);
    p = vfmaq_f32(vdupq_n_f32(CPU_EXP_P2), p, r);
    p = vfmaq_f32(vdupq_n_f32(CPU_EXP_P3), p, r);
    p = vfmaq_f32(vdupq_n_f32(CPU_EXP_P4), p, r);
    p = vfmaq_f32(vdupq_n_f32(CPU_EXP_P5), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

/* e^x - 1 for x <= 0 (ELU): a Taylor polynomial for |x| < 0.25 keeps the
 * relative accuracy that e^x - 1 loses there. */
ALWAYS_INLINE float32x4_t expm1_4(float32x4_t x) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    const float32x4_t big = vsubq_f32(exp4(x), one);
    /* x (1 + x/2 (1 + x/3 (1 + x/4 (1 + x/5 (1 + x/6 (1 + x/7)))))) */
    float32x4_t p = vfmaq_f32(one, x, vdupq_n_f32(1.0f / 7));
    p = vfmaq_f32(one, vmulq_n_f32(x, 1.0f / 6), p);
    p = vfmaq_f32(one, vmulq_n_f32(x, 1.0f / 5), p);
    p = vfmaq_f32(one, vmulq_n_f32(x, 1.0f / 4), p);
    p = vfmaq_f32(one, vmulq_n_f32(x, 1.0f / 3), p);
    p = vfmaq_f32(one, vmulq_n_f32(x, 0.5f), p);
    const float32x4_t small = vmulq_f32(x, p);
    return vbslq_f32(vcgtq_f32(x, vdupq_n_f32(-0.25f)), small, big);
}

/* erf(x), Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), odd extension. */
ALWAYS_INLINE float32x4_t erf4(float32x4_t x) {
    const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
    const float32x4_t ax = vabsq_f32(x);
    const float32x4_t t =
        vdivq_f32(vdupq_n_f32(1.0f), vfmaq_f32(vdupq_n_f32(1.0f), ax, vdupq_n_f32(0.3275911f)));
    float32x4_t p = vdupq_n_f32(1.061405429f);
    p = vfmaq_f32(vdupq_n_f32(-1.453152027f), p, t);
    p = vfmaq_f32(vdupq_n_f32(1.421413741f), p, t);
    p = vfmaq_f32(vdupq_n_f32(-0.284496736f), p, t);
    p = vfmaq_f32(vdupq_n_f32(0.254829592f), p, t);
    p = vmulq_f32(p, t);
    const float32x4_t e = exp4(vnegq_f32(vmulq_f32(ax, ax)));
    const float32x4_t r = vfmsq_f32(vdupq_n_f32(1.0f), p, e);
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(r), sign));
}

ALWAYS_INLINE float32x4_t act4(float32x4_t x, const int kind) {
    if (kind == CPU_ACT_GELU_ERF) {
        const float32x4_t e = erf4(vmulq_n_f32(x, 0.70710678118654752f));
        return vmulq_f32(vmulq_n_f32(x, 0.5f), vaddq_f32(vdupq_n_f32(1.0f), e));
    }
    if (kind == CPU_ACT_SILU) return vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(x))));
    const float32x4_t neg = expm1_4(vminq_f32(x, vdupq_n_f32(0.0f)));
    return vbslq_f32(vcgtq_f32(x, vdupq_n_f32(0.0f)), x, neg);
}

ALWAYS_INLINE void act_kind(float *y, const float *x, int n, const int kind) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, act4(vld1q_f32(x + i), kind));
    if (i < n) { /* tail through a padded vector: same math as full lanes */
        float buf[4] = {0};
        memcpy(buf, x + i, (size_t)(n - i) * sizeof *buf);
        vst1q_f32(buf, act4(vld1q_f32(buf), kind));
        memcpy(y + i, buf, (size_t)(n - i) * sizeof *buf);
    }
}

static void act_neon(float *y, const float *x, int n, int kind) {
    switch (kind) {
    case CPU_ACT_GELU_ERF: act_kind(y, x, n, CPU_ACT_GELU_ERF); break;
    case CPU_ACT_SILU: act_kind(y, x, n, CPU_ACT_SILU); break;
    default: act_kind(y, x, n, CPU_ACT_ELU); break;
    }
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
    k->f16_to_f32 = f16_to_f32_neon;
    k->f32_to_f16 = f32_to_f16_neon;
    k->axpy = axpy_neon;
    k->scale = scale_neon;
    k->conv1d = conv1d_neon;
    k->conv_transpose1d = conv_transpose1d_neon;
    k->act = act_neon;
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
