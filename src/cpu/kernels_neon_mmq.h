/*
 * NEON quantized matmul (Q8_0 / Q4_0 weights x Q8_0 activations), written
 * once and compiled twice: kernels_neon.c includes it with NEON_MMQ_DOT 0
 * (plain AdvSIMD: SMULL/SMLAL into int16, pairwise-added into int32) and
 * kernels_neon_dot.c with NEON_MMQ_DOT 1 in a file compiled for
 * armv8.2-a+dotprod (SDOT: 4 byte products per int32 lane). A template
 * header rather than one function with a flag because GCC refuses to inline
 * the SDOT intrinsic into code not compiled for +dotprod, and the plain
 * variant must not be. Include it once per file, after <arm_neon.h>; it
 * defines the static cpu_matmul_q_fn functions neon_mmq_q8_0 and
 * neon_mmq_q4_0 and nothing else.
 *
 * Tiles: 4 weight rows in the 4 float lanes x up to 4 activation rows. Per
 * 32-value block, each (row, activation) pair gets an exact int32 sum of
 * products (4 partial lanes), a pairwise-add tree turns the 4 rows' partials
 * into one vector of 4 row sums, which is converted to float (exact: |sum| <
 * 2^24) and fused-multiply-added with d_w * d_x into the accumulator; even and
 * odd blocks go to two accumulators, added at the end. T = 1 (GEMV) is the
 * 1-activation-row tile: 4 weight rows streamed side by side against one x.
 * The last R % 4 rows run the same 4-lane tile with the missing rows pointing
 * at the last real row (their lanes are dropped), so every output element is
 * computed by the same lane arithmetic in the same block order wherever its
 * row sits: results do not depend on how rows are split across threads, nor
 * on T.
 *
 * Q4_0 nibbles become int8 values (n - 8) * 16 (XOR 0x88, then the nibble
 * moved to the top of the byte), the int32 sum is shifted back by 4 (exact).
 * Precondition of the plain variant: activations in [-127, 127], as every
 * Q8_0 quantizer here produces (round(x / (max|x| / 127))), so a pair of
 * int8 products never overflows int16 even against a -128 weight.
 */
#ifndef NEON_MMQ_DOT
#error "define NEON_MMQ_DOT (0 or 1) before including kernels_neon_mmq.h"
#endif

#include <string.h>

#include "quant/quant.h"

#define MMQ_INLINE static inline __attribute__((always_inline))

/* 4 int32 lanes whose total is sum_j a[j] b[j] over 32 bytes (a0|a1, b0|b1). */
MMQ_INLINE int32x4_t mmq_dot32(int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1) {
#if NEON_MMQ_DOT
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), a0, b0), a1, b1);
#else
    /* |a b| <= 128 * 127, so two products fit int16. */
    const int16x8_t lo = vmlal_s8(vmull_s8(vget_low_s8(a0), vget_low_s8(b0)), vget_low_s8(a1),
                                  vget_low_s8(b1));
    const int16x8_t hi = vmlal_high_s8(vmull_high_s8(a0, b0), a1, b1);
    return vpadalq_s16(vpaddlq_s16(lo), hi);
#endif
}

/* f16 scale at p (2-byte aligned) to float. */
MMQ_INLINE float mmq_f16(const void *p) {
    __fp16 h;
    memcpy(&h, p, 2);
    return (float)h;
}

/* The 32 values of the Q4_0 block at qs as int8 (n - 8) * 16: XOR 0x88 turns
 * each nibble n into n ^ 8, whose 4-bit two's complement value is n - 8. */
MMQ_INLINE void mmq_q4_x16(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi) {
    const uint8x16_t b = veorq_u8(vld1q_u8(qs), vdupq_n_u8(0x88));
    *lo = vreinterpretq_s8_u8(vshlq_n_u8(b, 4));
    *hi = vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0xF0)));
}

/* Block b of the 4 rows wr[] against block b of TB activation rows x (row t
 * at x + t * nb): acc[t] lane r += d_w[r] d_x[t] * (int sum of row r, act t). */
MMQ_INLINE void mmq_block(float32x4_t *acc, const block_q8_0 *x, int nb, const char *const *wr,
                          int b, const int TB, const int q4) {
    const size_t bs = q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    const char *p0 = wr[0] + (size_t)b * bs, *p1 = wr[1] + (size_t)b * bs,
               *p2 = wr[2] + (size_t)b * bs, *p3 = wr[3] + (size_t)b * bs;
    uint16x4_t dh = vld1_dup_u16((const uint16_t *)p0);
    dh = vld1_lane_u16((const uint16_t *)p1, dh, 1);
    dh = vld1_lane_u16((const uint16_t *)p2, dh, 2);
    dh = vld1_lane_u16((const uint16_t *)p3, dh, 3);
    const float32x4_t dw = vcvt_f32_f16(vreinterpret_f16_u16(dh));
    int8x16_t w0[4], w1[4];
    if (q4) {
        mmq_q4_x16((const uint8_t *)p0 + 2, &w0[0], &w1[0]);
        mmq_q4_x16((const uint8_t *)p1 + 2, &w0[1], &w1[1]);
        mmq_q4_x16((const uint8_t *)p2 + 2, &w0[2], &w1[2]);
        mmq_q4_x16((const uint8_t *)p3 + 2, &w0[3], &w1[3]);
    } else {
        const char *p[4] = {p0, p1, p2, p3};
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            w0[r] = vld1q_s8((const int8_t *)(p[r] + 2));
            w1[r] = vld1q_s8((const int8_t *)(p[r] + 18));
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < TB; t++) {
        const block_q8_0 *xb = x + (size_t)t * nb + b;
        const int8x16_t x0 = vld1q_s8(xb->qs), x1 = vld1q_s8(xb->qs + 16);
        int32x4_t s = vpaddq_s32(vpaddq_s32(mmq_dot32(w0[0], w1[0], x0, x1),
                                            mmq_dot32(w0[1], w1[1], x0, x1)),
                                 vpaddq_s32(mmq_dot32(w0[2], w1[2], x0, x1),
                                            mmq_dot32(w0[3], w1[3], x0, x1)));
        if (q4) s = vshrq_n_s32(s, 4);
        acc[t] = vfmaq_f32(acc[t], vmulq_n_f32(dw, mmq_f16(&xb->d)), vcvtq_f32_s32(s));
    }
}

/* y[t * ldy + r] for r < nr (1..4), t < TB: rows wr[] (wr[r] for r >= nr
 * repeats a real row) against activation rows x. */
MMQ_INLINE void mmq_tile(float *y, int ldy, const block_q8_0 *x, int nb, const char *const *wr,
                         int nr, const int TB, const int q4) {
    float32x4_t a0[4], a1[4];
#pragma GCC unroll 4
    for (int t = 0; t < TB; t++) a0[t] = a1[t] = vdupq_n_f32(0.0f);
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        mmq_block(a0, x, nb, wr, b, TB, q4);
        mmq_block(a1, x, nb, wr, b + 1, TB, q4);
    }
    if (b < nb) mmq_block(a0, x, nb, wr, b, TB, q4);
#pragma GCC unroll 4
    for (int t = 0; t < TB; t++) {
        const float32x4_t s = vaddq_f32(a0[t], a1[t]);
        float *yt = y + (size_t)t * ldy;
        if (nr == 4) {
            vst1q_f32(yt, s);
        } else {
            float tmp[4];
            vst1q_f32(tmp, s);
            memcpy(yt, tmp, (size_t)nr * sizeof *yt);
        }
    }
}

MMQ_INLINE void mmq_rows(float *y, int ldy, const void *xq, const void *w, int R, int K, int T,
                         const int q4) {
    const int nb = K / QK;
    const size_t row_bytes = (size_t)nb * (q4 ? sizeof(block_q4_0) : sizeof(block_q8_0));
    const block_q8_0 *x = xq;
    for (int r = 0; r < R; r += 4) {
        const int nr = R - r < 4 ? R - r : 4;
        const char *wr[4];
        for (int i = 0; i < 4; i++)
            wr[i] = (const char *)w + (size_t)(r + (i < nr ? i : nr - 1)) * row_bytes;
        int t = 0;
        for (; t + 4 <= T; t += 4)
            mmq_tile(y + (size_t)t * ldy + r, ldy, x + (size_t)t * nb, nb, wr, nr, 4, q4);
        float *yt = y + (size_t)t * ldy + r;
        const block_q8_0 *xt = x + (size_t)t * nb;
        switch (T - t) {
        case 3: mmq_tile(yt, ldy, xt, nb, wr, nr, 3, q4); break;
        case 2: mmq_tile(yt, ldy, xt, nb, wr, nr, 2, q4); break;
        case 1: mmq_tile(yt, ldy, xt, nb, wr, nr, 1, q4); break;
        default: break;
        }
    }
}

static void neon_mmq_q8_0(float *y, int ldy, const void *xq, const void *w, int R, int K, int T) {
    mmq_rows(y, ldy, xq, w, R, K, T, 0);
}

static void neon_mmq_q4_0(float *y, int ldy, const void *xq, const void *w, int R, int K, int T) {
    mmq_rows(y, ldy, xq, w, R, K, T, 1);
}

#undef MMQ_INLINE
