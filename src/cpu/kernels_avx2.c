/*
 * AVX2 + FMA + F16C kernels (this file alone is built with -mavx2 -mfma -mf16c).
 *
 * matmul (F32/BF16/F16 weights): register tiles of 4 weight rows x 3
 * activation rows, so each weight vector loaded (and widened) serves 3 rows
 * of x and each x vector serves 4 weight rows; T = 1 (GEMV, bound by memory
 * bandwidth) streams one weight row at a time. matmul_q (Q8_0/Q4_0 weights): for
 * T <= 4 one weight row at a time against all T activation rows (4 FMA
 * chains, activation scales hoisted, Q4_0 nibbles used unsigned); larger T
 * 4 rows per tile; int8 x int8 products summed in int16/int32 (maddubs + madd),
 * scaled per block into float.
 * conv1d: tiles of 4-6 output channels x 16-24 time steps, a direct loop
 * over input channels and taps (no im2col); strided convs gather x.
 * conv_transpose1d: a GEMM Z[t, (co, k)] = sum_ci x[ci, t] W[ci, co, k] whose
 * weight rows are contiguous, 4 time rows x 24 columns per register tile,
 * then an overlap-add of Z into y in time order (col2im).
 * act: exp / erf by range reduction and minimax polynomials.
 *
 * Every output element is accumulated the same way whatever tile computed
 * it (lanes are independent sums in a fixed order; scalar tails use fmaf in
 * the same order), so results do not depend on where a thread range starts.
 * Versus the scalar reference the order differs: |diff| stays below ~1e-6
 * of sum |terms|.
 */
#include "cpu/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "quant/quant.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum { W_F32, W_BF16, W_F16 };

/* 8 weights from w + i widened to float. */
ALWAYS_INLINE __m256 load8(const void *w, size_t i, const int kind) {
    if (kind == W_F32) return _mm256_loadu_ps((const float *)w + i);
    const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
    if (kind == W_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
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
    return _cvtsh_ss(h);
}

/* Fixed-order horizontal sum. */
ALWAYS_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- matmul ---- */

/* y[t*ldy + r] for r < RB, t < TB: the register tile. RB, TB, kind are
 * compile-time constants at every call site. With TB = 1 (GEMV) each element
 * gets two accumulators (even / odd 8-blocks of K) so that 8 FMA chains hide
 * the FMA latency; which tile computes an element depends only on T and on
 * the row's index modulo 4 (tasks start at multiples of 4 rows), never on
 * the thread split. */
ALWAYS_INLINE void mm_tile(float *y, int ldy, const float *x, int ldx, const void *w, size_t ldw,
                           int K, const int RB, const int TB, const int kind) {
    __m256 acc[4][3], acc2[4];
    for (int r = 0; r < RB; r++) {
        acc2[r] = _mm256_setzero_ps();
        for (int t = 0; t < TB; t++) acc[r][t] = _mm256_setzero_ps();
    }
    const int K8 = K & ~7;
    int k = 0;
    if (TB == 1)
        for (; k + 16 <= K8; k += 16) {
            const __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
            for (int r = 0; r < RB; r++) {
                acc[r][0] = _mm256_fmadd_ps(load8(w, (size_t)r * ldw + k, kind), x0, acc[r][0]);
                acc2[r] = _mm256_fmadd_ps(load8(w, (size_t)r * ldw + k + 8, kind), x1, acc2[r]);
            }
        }
    for (; k < K8; k += 8) {
        __m256 xv[3];
        for (int t = 0; t < TB; t++) xv[t] = _mm256_loadu_ps(x + (size_t)t * ldx + k);
        for (int r = 0; r < RB; r++) {
            const __m256 wv = load8(w, (size_t)r * ldw + k, kind);
            for (int t = 0; t < TB; t++) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) {
            float s = hsum(TB == 1 ? _mm256_add_ps(acc[r][0], acc2[r]) : acc[r][t]);
            const float *xr = x + (size_t)t * ldx;
            for (int kk = K8; kk < K; kk++)
                s = fmaf(xr[kk], load1(w, (size_t)r * ldw + kk, kind), s);
            y[(size_t)t * ldy + r] = s;
        }
}

/* GEMV row: one weight row streamed front to back with 4 accumulators
 * (a single sequential stream per thread is what the hardware prefetcher
 * follows best; 4-row tiles ran at half the bandwidth on 4 KiB rows). */
ALWAYS_INLINE float gemv_row(const float *x, const void *w, int K, const int kind) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int k = 0;
    for (; k + 32 <= K; k += 32) {
        a0 = _mm256_fmadd_ps(load8(w, k, kind), _mm256_loadu_ps(x + k), a0);
        a1 = _mm256_fmadd_ps(load8(w, k + 8, kind), _mm256_loadu_ps(x + k + 8), a1);
        a2 = _mm256_fmadd_ps(load8(w, k + 16, kind), _mm256_loadu_ps(x + k + 16), a2);
        a3 = _mm256_fmadd_ps(load8(w, k + 24, kind), _mm256_loadu_ps(x + k + 24), a3);
    }
    for (; k + 8 <= K; k += 8) a0 = _mm256_fmadd_ps(load8(w, k, kind), _mm256_loadu_ps(x + k), a0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; k < K; k++) s = fmaf(x[k], load1(w, k, kind), s);
    return s;
}

ALWAYS_INLINE void mm_rows(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                           int T, const int kind) {
    const size_t es = kind == W_F32 ? 4 : 2;
    if (T == 1) {
        for (int r = 0; r < R; r++) y[r] = gemv_row(x, (const char *)w + (size_t)r * K * es, K, kind);
        return;
    }
    int r = 0;
    for (; r + 4 <= R; r += 4) {
        const void *wr = (const char *)w + (size_t)r * K * es;
        int t = 0;
        for (; t + 3 <= T; t += 3)
            mm_tile(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, K, K, 4, 3, kind);
        if (T - t == 2)
            mm_tile(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, K, K, 4, 2, kind);
        else if (T - t == 1)
            mm_tile(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, K, K, 4, 1, kind);
    }
    for (; r < R; r++) {
        const void *wr = (const char *)w + (size_t)r * K * es;
        int t = 0;
        for (; t + 3 <= T; t += 3)
            mm_tile(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, K, K, 1, 3, kind);
        if (T - t == 2)
            mm_tile(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, K, K, 1, 2, kind);
        else if (T - t == 1)
            mm_tile(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, K, K, 1, 1, kind);
    }
}

/* Rows of W are walked in blocks of 4 for every T-tile; for large T the
 * 4 x K weight block stays in L1/L2 while all activation rows pass over it. */
void cpu_matmul_f32_avx2(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                         int T) {
    mm_rows(y, ldy, x, ldx, w, R, K, T, W_F32);
}
void cpu_matmul_bf16_avx2(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                          int T) {
    mm_rows(y, ldy, x, ldx, w, R, K, T, W_BF16);
}
void cpu_matmul_f16_avx2(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                         int T) {
    mm_rows(y, ldy, x, ldx, w, R, K, T, W_F16);
}

/* ---- quantized matmul (Q8_0 / Q4_0 weights x Q8_0 activations) ---- */

/* 8 int32 sums of 4 products each of signed bytes w and x, as floats.
 * maddubs needs an unsigned operand: |w| and x carrying w's sign. */
ALWAYS_INLINE __m256 mul_sum_i8(__m256i w, __m256i x) {
    const __m256i aw = _mm256_sign_epi8(w, w), sx = _mm256_sign_epi8(x, w);
    const __m256i p16 = _mm256_maddubs_epi16(aw, sx);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* The 32 signed values of a Q4_0 block (nibble - 8), in value order. */
ALWAYS_INLINE __m256i q4_values(const uint8_t *qs) {
    const __m128i b = _mm_loadu_si128((const __m128i *)qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    return _mm256_sub_epi8(_mm256_and_si256(v, _mm256_set1_epi8(15)), _mm256_set1_epi8(8));
}

/* RB weight rows against one activation row; per row one 8-lane accumulator
 * over blocks in order, then the fixed horizontal sum. */
ALWAYS_INLINE void mmq_tile(float *y, const block_q8_0 *x, const void *w, size_t row_bytes, int nb,
                            const int RB, const int q4) {
    __m256 acc[4];
    for (int r = 0; r < RB; r++) acc[r] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const __m256i xv = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const float dx = _cvtsh_ss(x[b].d);
        for (int r = 0; r < RB; r++) {
            const char *wr = (const char *)w + (size_t)r * row_bytes;
            __m256i wv;
            float dw;
            if (q4) {
                const block_q4_0 *blk = (const block_q4_0 *)wr + b;
                wv = q4_values(blk->qs);
                dw = _cvtsh_ss(blk->d);
            } else {
                const block_q8_0 *blk = (const block_q8_0 *)wr + b;
                wv = _mm256_loadu_si256((const __m256i *)blk->qs);
                dw = _cvtsh_ss(blk->d);
            }
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dx), mul_sum_i8(wv, xv), acc[r]);
        }
    }
    for (int r = 0; r < RB; r++) y[r] = hsum(acc[r]);
}

/* ---- quantized GEMV (T <= 4) ----
 * Activation-side work is done once per call: x scales as floats and, for
 * Q4_0, the correction -8 * sum(x) of each block (in lane 0 of a vector),
 * so that the nibbles n = v + 8 go into maddubs unsigned as they are:
 * dot = maddubs(n, x) - 8 * sum(x). Q8_0 keeps the sign trick (|w| and x
 * with w's sign; w + 128 would overflow maddubs' int16 pairs). A weight row
 * is streamed front to back once for all T rows, with four accumulators per
 * output (blocks b mod 4) so that four FMA chains are in flight. */

#define GV_STACK_BLOCKS 1024 /* T * K / 32 the stack buffers hold */

typedef struct {
    float dx[GV_STACK_BLOCKS];
    _Alignas(32) int32_t corr[GV_STACK_BLOCKS][8];
} gv_prep;

/* The f16 scales of 8 blocks (stride bs bytes from w) as floats. */
ALWAYS_INLINE __m256 scales8(const char *w, size_t bs) {
    uint64_t h[2] = {0, 0};
    for (int i = 0; i < 8; i++) {
        uint16_t d;
        memcpy(&d, w + (size_t)i * bs, 2);
        h[i >> 2] |= (uint64_t)d << (16 * (i & 3));
    }
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)h[1], (long long)h[0]));
}

ALWAYS_INLINE void gv_row(float *y, int ldy, const block_q8_0 *x, const gv_prep *pp, const void *w,
                          int nb, const int TB, const int q4) {
    const size_t bs = q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    __m256 acc[4][4];
    for (int a = 0; a < 4; a++)
        for (int t = 0; t < TB; t++) acc[a][t] = _mm256_setzero_ps();
    /* Block b; S(t) is its scale d_w * d_x broadcast. */
#define GV_STEP(b, S)                                                                           \
    do {                                                                                        \
        const char *blk = (const char *)w + (size_t)(b) * bs;                                   \
        __m256i wv;                                                                             \
        if (q4) {                                                                               \
            const __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2));                      \
            wv = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(15)); \
        } else {                                                                                \
            wv = _mm256_loadu_si256((const __m256i *)(blk + 2));                                \
        }                                                                                       \
        const __m256i aw = q4 ? wv : _mm256_sign_epi8(wv, wv);                                  \
        for (int t = 0; t < TB; t++) {                                                          \
            const size_t i = (size_t)t * nb + (b);                                              \
            const __m256i xv = _mm256_loadu_si256((const __m256i *)x[i].qs);                    \
            __m256i s32;                                                                        \
            if (q4)                                                                             \
                s32 = _mm256_add_epi32(                                                         \
                    _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xv), _mm256_set1_epi16(1)),      \
                    _mm256_load_si256((const __m256i *)pp->corr[i]));                           \
            else                                                                                \
                s32 = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv, wv)),     \
                                        _mm256_set1_epi16(1));                                  \
            acc[(b) & 3][t] = _mm256_fmadd_ps(S(t), _mm256_cvtepi32_ps(s32), acc[(b) & 3][t]);  \
        }                                                                                       \
    } while (0)
    int b = 0;
    for (; b + 8 <= nb; b += 8) { /* scales of 8 blocks at once */
        const __m256 dw8 = scales8((const char *)w + (size_t)b * bs, bs);
        __m256 s8[4];
        for (int t = 0; t < TB; t++) s8[t] = _mm256_mul_ps(dw8, _mm256_loadu_ps(pp->dx + (size_t)t * nb + b));
        for (int j = 0; j < 8; j++) {
#define GV_S8(t) _mm256_permutevar8x32_ps(s8[t], _mm256_set1_epi32(j))
            GV_STEP(b + j, GV_S8);
#undef GV_S8
        }
    }
    for (; b < nb; b++) {
        uint16_t d;
        memcpy(&d, (const char *)w + (size_t)b * bs, 2);
        const float dw = _cvtsh_ss(d);
#define GV_S1(t) _mm256_set1_ps(dw * pp->dx[(size_t)(t) * nb + b])
        GV_STEP(b, GV_S1);
#undef GV_S1
    }
#undef GV_STEP
    for (int t = 0; t < TB; t++)
        y[(size_t)t * ldy] = hsum(_mm256_add_ps(_mm256_add_ps(acc[0][t], acc[1][t]),
                                                _mm256_add_ps(acc[2][t], acc[3][t])));
}

ALWAYS_INLINE void gv_rows(float *y, int ldy, const block_q8_0 *x, const gv_prep *pp, const void *w,
                           size_t row_bytes, int R, int nb, const int TB, const int q4) {
    for (int r = 0; r < R; r++)
        gv_row(y + r, ldy, x, pp, (const char *)w + (size_t)r * row_bytes, nb, TB, q4);
}

ALWAYS_INLINE void mmq_rows(float *y, int ldy, const void *xq, const void *w, int R, int K, int T,
                            const int q4) {
    const int nb = K / QK;
    const size_t row_bytes = (size_t)nb * (q4 ? sizeof(block_q4_0) : sizeof(block_q8_0));
    const block_q8_0 *x = xq;
    if (T <= 4 && (size_t)T * nb <= GV_STACK_BLOCKS) {
        gv_prep pp;
        for (int i = 0; i < T * nb; i++) {
            pp.dx[i] = _cvtsh_ss(x[i].d);
            if (q4) {
                int s = 0;
                for (int j = 0; j < QK; j++) s += x[i].qs[j];
                memset(pp.corr[i], 0, sizeof pp.corr[i]);
                pp.corr[i][0] = -8 * s;
            }
        }
        switch (T) {
        case 1: gv_rows(y, ldy, x, &pp, w, row_bytes, R, nb, 1, q4); break;
        case 2: gv_rows(y, ldy, x, &pp, w, row_bytes, R, nb, 2, q4); break;
        case 3: gv_rows(y, ldy, x, &pp, w, row_bytes, R, nb, 3, q4); break;
        default: gv_rows(y, ldy, x, &pp, w, row_bytes, R, nb, 4, q4); break;
        }
        return;
    }
    int r = 0;
    for (; r + 4 <= R; r += 4)
        for (int t = 0; t < T; t++)
            mmq_tile(y + (size_t)t * ldy + r, x + (size_t)t * nb,
                     (const char *)w + (size_t)r * row_bytes, row_bytes, nb, 4, q4);
    for (; r < R; r++)
        for (int t = 0; t < T; t++)
            mmq_tile(y + (size_t)t * ldy + r, x + (size_t)t * nb,
                     (const char *)w + (size_t)r * row_bytes, row_bytes, nb, 1, q4);
}

static void matmul_q8_0(float *y, int ldy, const void *xq, const void *w, int R, int K, int T) {
    mmq_rows(y, ldy, xq, w, R, K, T, 0);
}
static void matmul_q4_0(float *y, int ldy, const void *xq, const void *w, int R, int K, int T) {
    mmq_rows(y, ldy, xq, w, R, K, T, 1);
}

/* Q8_0 activations: d = max|x| / 127, q = round-to-nearest(x / d). */
static void quant_row_q8_0_avx2(const float *x, void *vy, int k) {
    block_q8_0 *y = vy;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < k / QK; b++) {
        const float *xb = x + (size_t)b * QK;
        __m256 v[4];
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(xb + 8 * i);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[i]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
        y[b].d = ctts_f32_to_f16(d);
        __m256i q[4];
        for (int i = 0; i < 4; i++)
            q[i] = _mm256_cvtps_epi32(
                _mm256_round_ps(_mm256_mul_ps(v[i], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        /* Pack 32 int32 -> 32 int8, then undo the lane interleave of packs. */
        const __m256i p01 = _mm256_packs_epi32(q[0], q[1]), p23 = _mm256_packs_epi32(q[2], q[3]);
        const __m256i p = _mm256_packs_epi16(p01, p23);
        const __m256i perm = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[b].qs, perm);
    }
}

/* ---- conv1d ---- */

/* Output channels co..co+CB-1 (one group) x time steps t..t+8*TV-1. Lanes
 * are time steps; each lane sums bias + taps in (input channel, tap) order.
 * stride > 1 gathers x (encoder only: not the hot path). */
ALWAYS_INLINE void conv_tile(const cpu_conv_args *a, int co, int t, const int CB, const int TV,
                             const int strided, const int kind) {
    const int cin_g = a->cin / a->groups, cout_g = a->cout / a->groups;
    const int K = a->k, dil = a->dilation, S = a->stride;
    const float *xg = a->x + (size_t)(co / cout_g) * cin_g * a->tin + (size_t)t * S;
    const size_t wrow = (size_t)cin_g * K; /* weights per output channel */
    const __m256i gidx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                            _mm256_set1_epi32(S));
    __m256 acc[6][3];
    for (int j = 0; j < CB; j++)
        for (int v = 0; v < TV; v++) acc[j][v] = _mm256_set1_ps(a->bias ? a->bias[co + j] : 0.0f);
    for (int cl = 0; cl < cin_g; cl++) {
        const float *xr = xg + (size_t)cl * a->tin;
        const size_t wo = (size_t)co * wrow + (size_t)cl * K;
        for (int k = 0; k < K; k++) {
            __m256 xv[3];
            for (int v = 0; v < TV; v++)
                xv[v] = strided ? _mm256_i32gather_ps(xr + (size_t)k * dil + (size_t)8 * v * S, gidx, 4)
                                : _mm256_loadu_ps(xr + (size_t)k * dil + 8 * v);
            for (int j = 0; j < CB; j++) {
                const __m256 wv = _mm256_set1_ps(load1(a->w, wo + j * wrow + k, kind));
                for (int v = 0; v < TV; v++) acc[j][v] = _mm256_fmadd_ps(wv, xv[v], acc[j][v]);
            }
        }
    }
    for (int j = 0; j < CB; j++)
        for (int v = 0; v < TV; v++)
            _mm256_storeu_ps(a->y + (size_t)(co + j) * a->tout + t + 8 * v, acc[j][v]);
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
        for (int k = 0; k < a->k; k++) s = fmaf(load1(a->w, wo + k, kind), xr[(size_t)k * a->dilation], s);
    }
    a->y[(size_t)co * a->tout + t] = s;
}

/* All time steps of channels co..co+CB-1: 24-step tiles (4 channels) when the
 * output is long, 16-step tiles (6 channels) when it is short. */
ALWAYS_INLINE void conv_channels(const cpu_conv_args *a, int co, const int CB, const int strided,
                                 const int kind) {
    int t = 0;
    if (CB == 4 || CB == 1)
        for (; t + 24 <= a->tout; t += 24) conv_tile(a, co, t, CB, 3, strided, kind);
    for (; t + 16 <= a->tout; t += 16) conv_tile(a, co, t, CB, 2, strided, kind);
    for (; t + 8 <= a->tout; t += 8) conv_tile(a, co, t, CB, 1, strided, kind);
    for (; t < a->tout; t++)
        for (int j = 0; j < CB; j++) conv_one(a, co + j, t, kind);
}

ALWAYS_INLINE void conv1d_kind(const cpu_conv_args *a, int co0, int co1, const int strided,
                               const int kind) {
    const int cout_g = a->cout / a->groups;
    const int CB = a->tout >= 24 ? 4 : 6;
    int co = co0;
    while (co < co1) {
        /* A channel block must stay inside one group. */
        const int group_end = (co / cout_g + 1) * cout_g;
        const int lim = group_end < co1 ? group_end : co1;
        if (CB == 4 && co + 4 <= lim) {
            conv_channels(a, co, 4, strided, kind);
            co += 4;
        } else if (CB == 6 && co + 6 <= lim) {
            conv_channels(a, co, 6, strided, kind);
            co += 6;
        } else {
            conv_channels(a, co, 1, strided, kind);
            co += 1;
        }
    }
}

static void conv1d_avx2(const cpu_conv_args *a, int co0, int co1) {
    const int strided = a->stride != 1;
    switch (a->wdt) {
    case CTTS_DT_BF16:
        if (strided) conv1d_kind(a, co0, co1, 1, W_BF16);
        else conv1d_kind(a, co0, co1, 0, W_BF16);
        break;
    case CTTS_DT_F16:
        if (strided) conv1d_kind(a, co0, co1, 1, W_F16);
        else conv1d_kind(a, co0, co1, 0, W_F16);
        break;
    default:
        if (strided) conv1d_kind(a, co0, co1, 1, W_F32);
        else conv1d_kind(a, co0, co1, 0, W_F32);
        break;
    }
}

/* ---- conv_transpose1d: packed GEMM + overlap-add ---- */

/* Z[t, n] = sum_ci x[ci, t] W[ci, n] over n = (co, k) columns of one group,
 * then y[co, t*S + k] += Z[t, (co, k)] in time order. The weight panel of a
 * chunk of whole channels (<= CONVT_COLS columns) and CONVT_CIB input
 * channels is first copied (widened to float, zero-padded to 8 columns) into
 * a contiguous stack buffer, so the inner loop streams it linearly instead of
 * touching one page per input channel. A Z element is one FMA chain over ci
 * in order (kept in Z between ci blocks), and a channel's columns never span
 * two chunks, so results do not depend on the thread split. */
#define CONVT_COLS 48
#define CONVT_CIB 128
#define CONVT_TG 32
#define CONVT_TB 4

/* z rows i < TB (row stride CONVT_COLS), columns [0, 8*NV): over panel rows. */
ALWAYS_INLINE void convt_tile(float *z, const float *p, int ncib, const float *xr, int tin,
                              int first, const int TB, const int NV) {
    __m256 acc[CONVT_TB][3];
    for (int i = 0; i < TB; i++)
        for (int v = 0; v < NV; v++)
            acc[i][v] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(z + i * CONVT_COLS + 8 * v);
    for (int c = 0; c < ncib; c++) {
        const float *pr = p + (size_t)c * CONVT_COLS;
        const float *xc = xr + (size_t)c * tin;
        __m256 wv[3];
        for (int v = 0; v < NV; v++) wv[v] = _mm256_loadu_ps(pr + 8 * v);
        for (int i = 0; i < TB; i++) {
            const __m256 xb = _mm256_broadcast_ss(xc + i);
            for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(xb, wv[v], acc[i][v]);
        }
    }
    for (int i = 0; i < TB; i++)
        for (int v = 0; v < NV; v++) _mm256_storeu_ps(z + i * CONVT_COLS + 8 * v, acc[i][v]);
}

ALWAYS_INLINE void convt_rows(float *z, const float *p, int ncib, const float *xr, int tin,
                              int first, int nvec, const int TB) {
    int v = 0;
    for (; v + 3 <= nvec; v += 3) convt_tile(z + 8 * v, p + 8 * v, ncib, xr, tin, first, TB, 3);
    if (nvec - v == 2) convt_tile(z + 8 * v, p + 8 * v, ncib, xr, tin, first, TB, 2);
    else if (nvec - v == 1) convt_tile(z + 8 * v, p + 8 * v, ncib, xr, tin, first, TB, 1);
}

ALWAYS_INLINE void convt_kind(const cpu_conv_args *a, int co0, int co1, const int kind) {
    const int cin_g = a->cin / a->groups, cout_g = a->cout / a->groups;
    const int S = a->stride, K = a->k, tin = a->tin, tout = a->tout;
    const size_t ldw = (size_t)cout_g * K;
    const int per_chunk = CONVT_COLS / K; /* >= 1: the caller checks K <= CONVT_COLS */
    float panel[CONVT_CIB * CONVT_COLS];
    float z[CONVT_TG * CONVT_COLS];
    for (int co = co0; co < co1; co++) {
        float *yr = a->y + (size_t)co * tout;
        const float b = a->bias ? a->bias[co] : 0.0f;
        for (int j = 0; j < tout; j++) yr[j] = b;
    }
    for (int cs = co0; cs < co1;) {
        const int g = cs / cout_g, group_end = (g + 1) * cout_g;
        int ce = cs + per_chunk;
        if (ce > co1) ce = co1;
        if (ce > group_end) ce = group_end;
        const size_t n0 = (size_t)(cs - g * cout_g) * K;
        const int nlen = (ce - cs) * K, nvec = (nlen + 7) / 8;
        for (int tg = 0; tg < tin; tg += CONVT_TG) {
            const int tgn = tin - tg < CONVT_TG ? tin - tg : CONVT_TG;
            for (int c0 = 0; c0 < cin_g; c0 += CONVT_CIB) {
                const int ncib = cin_g - c0 < CONVT_CIB ? cin_g - c0 : CONVT_CIB;
                for (int c = 0; c < ncib; c++) {
                    const size_t wo = (size_t)(g * cin_g + c0 + c) * ldw + n0;
                    float *pr = panel + (size_t)c * CONVT_COLS;
                    for (int j = 0; j < nlen; j++) pr[j] = load1(a->w, wo + j, kind);
                    for (int j = nlen; j < nvec * 8; j++) pr[j] = 0.0f;
                }
                const float *xr = a->x + (size_t)(g * cin_g + c0) * tin + tg;
                int i = 0;
                for (; i + CONVT_TB <= tgn; i += CONVT_TB)
                    convt_rows(z + i * CONVT_COLS, panel, ncib, xr + i, tin, c0 == 0, nvec, 4);
                switch (tgn - i) {
                case 3: convt_rows(z + i * CONVT_COLS, panel, ncib, xr + i, tin, c0 == 0, nvec, 3); break;
                case 2: convt_rows(z + i * CONVT_COLS, panel, ncib, xr + i, tin, c0 == 0, nvec, 2); break;
                case 1: convt_rows(z + i * CONVT_COLS, panel, ncib, xr + i, tin, c0 == 0, nvec, 1); break;
                default: break;
                }
            }
            /* Overlap-add, time rows in order. */
            for (int i = 0; i < tgn; i++)
                for (int co = cs; co < ce; co++) {
                    float *yt = a->y + (size_t)co * tout + (size_t)(tg + i) * S;
                    const float *zr = z + (size_t)i * CONVT_COLS + (size_t)(co - cs) * K;
                    int k = 0;
                    for (; k + 8 <= K; k += 8)
                        _mm256_storeu_ps(yt + k, _mm256_add_ps(_mm256_loadu_ps(yt + k),
                                                               _mm256_loadu_ps(zr + k)));
                    for (; k < K; k++) yt[k] += zr[k];
                }
        }
        cs = ce;
    }
}

static void conv_transpose1d_avx2(const cpu_conv_args *a, int co0, int co1) {
    if (a->k > CONVT_COLS) {
        cpu_conv_transpose1d_ref(a, co0, co1);
        return;
    }
    switch (a->wdt) {
    case CTTS_DT_BF16: convt_kind(a, co0, co1, W_BF16); break;
    case CTTS_DT_F16: convt_kind(a, co0, co1, W_F16); break;
    default: convt_kind(a, co0, co1, W_F32); break;
    }
}

/* ---- vector primitives ---- */

static float dot_avx2(const float *a, const float *b, int n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    if (i + 8 <= n) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        i += 8;
    }
    float s = hsum(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) s = fmaf(a[i], b[i], s);
    return s;
}

static void axpy_avx2(float *y, float a, const float *x, int n) {
    const __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

static void f16_to_f32_avx2(float *y, const uint16_t *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = ctts_f16_to_f32(x[i]);
}

/* min/max with x second: NaN passes through (kernels.h). */
static void f32_to_f16_avx2(uint16_t *y, const float *x, int n) {
    const __m256 hi = _mm256_set1_ps(65504.0f), lo = _mm256_set1_ps(-65504.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_loadu_ps(x + i)));
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) y[i] = cpu_f32_to_f16_sat(x[i]);
}

static void scale_avx2(float *y, float a, int n) {
    const __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(av, _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] *= a;
}

/* ---- activations ---- */

/* e^x: x = n ln2 + r (two-part ln2), e^r by a degree-6 polynomial (Cephes
 * expf coefficients, ~1 ulp), scaled by 2^n built in the exponent bits.
 * Inputs are clamped to the finite range (e^-88 ~ 0 within FTZ). */
ALWAYS_INLINE __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(CPU_EXP_LO)), _mm256_set1_ps(CPU_EXP_HI));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(CPU_EXP_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(CPU_EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(CPU_EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(CPU_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CPU_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CPU_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CPU_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CPU_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CPU_EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* e^x - 1 for x <= 0 (ELU): a Taylor polynomial near 0 keeps the relative
 * accuracy that e^x - 1 loses there. */
ALWAYS_INLINE __m256 expm1_8(__m256 x) {
    const __m256 big = _mm256_sub_ps(exp8(x), _mm256_set1_ps(1.0f));
    /* x (1 + x/2 (1 + x/3 (1 + x/4 (1 + x/5 (1 + x/6 (1 + x/7)))))) for |x| < 0.25 */
    __m256 p = _mm256_fmadd_ps(x, _mm256_set1_ps(1.0f / 7), _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.0f / 6)), p, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.0f / 5)), p, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.0f / 4)), p, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.0f / 3)), p, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)), p, _mm256_set1_ps(1.0f));
    const __m256 small = _mm256_mul_ps(x, p);
    const __m256 is_small = _mm256_cmp_ps(x, _mm256_set1_ps(-0.25f), _CMP_GT_OQ);
    return _mm256_blendv_ps(big, small, is_small);
}

/* erf(x), Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), odd extension. */
ALWAYS_INLINE __m256 erf8(__m256 x) {
    const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
    const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f),
                                   _mm256_fmadd_ps(ax, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    const __m256 e = exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), ax), ax));
    const __m256 r = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
    return _mm256_or_ps(r, sign);
}

ALWAYS_INLINE __m256 act8(__m256 x, const int kind) {
    if (kind == CPU_ACT_GELU_ERF) {
        const __m256 e = erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
        return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x),
                             _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    }
    if (kind == CPU_ACT_SILU)
        return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f),
                                              exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
    const __m256 neg = expm1_8(_mm256_min_ps(x, _mm256_setzero_ps()));
    return _mm256_blendv_ps(neg, x, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ));
}

ALWAYS_INLINE void act_kind(float *y, const float *x, int n, const int kind) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, act8(_mm256_loadu_ps(x + i), kind));
    if (i < n) { /* tail through a padded vector: same math as full lanes */
        float buf[8] = {0};
        memcpy(buf, x + i, (size_t)(n - i) * sizeof *buf);
        _mm256_storeu_ps(buf, act8(_mm256_loadu_ps(buf), kind));
        memcpy(y + i, buf, (size_t)(n - i) * sizeof *buf);
    }
}

static void act_avx2(float *y, const float *x, int n, int kind) {
    switch (kind) {
    case CPU_ACT_GELU_ERF: act_kind(y, x, n, CPU_ACT_GELU_ERF); break;
    case CPU_ACT_SILU: act_kind(y, x, n, CPU_ACT_SILU); break;
    default: act_kind(y, x, n, CPU_ACT_ELU); break;
    }
}

/* ---- SnakeBeta ---- */

/* sin(v)^2. Cody-Waite: n = round(v * 2/pi), r = v - n pi/2 with pi/2 in three
 * float parts through FMA (the first step is exact), |r| <= pi/4; then
 * sin r or cos r (odd n) by the Cephes sinf / cosf minimax polynomials, squared
 * (the sign of the quadrant does not matter). Measured max |error| against
 * double sin^2 of the same float argument: < 4e-7 for |v| <= 1e6 (tests/unit/
 * test_kernels.c checks up to 1e4 and 1e6). Lanes outside that range (or
 * NaN / inf) are the caller's: see snake_row_avx2. */
ALWAYS_INLINE __m256 sin2_8(__m256 v) {
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(0.636619772367581f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.570796371e+00f), v);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-4.371138829e-08f), r);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-1.776356839e-15f), r);
    const __m256 r2 = _mm256_mul_ps(r, r);
    __m256 ps = _mm256_fmadd_ps(_mm256_set1_ps(-1.9515295891e-4f), r2, _mm256_set1_ps(8.3321608736e-3f));
    ps = _mm256_fmadd_ps(ps, r2, _mm256_set1_ps(-1.6666654611e-1f));
    const __m256 s = _mm256_fmadd_ps(_mm256_mul_ps(ps, r2), r, r);
    __m256 pc = _mm256_fmadd_ps(_mm256_set1_ps(2.443315711809948e-5f), r2, _mm256_set1_ps(-1.388731625493765e-3f));
    pc = _mm256_fmadd_ps(pc, r2, _mm256_set1_ps(4.166664568298827e-2f));
    const __m256 c = _mm256_fmadd_ps(_mm256_mul_ps(pc, r2), r2,
                                     _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), r2, _mm256_set1_ps(1.0f)));
    const __m256i odd = _mm256_and_si256(_mm256_cvtps_epi32(n), _mm256_set1_epi32(1));
    const __m256 t = _mm256_blendv_ps(s, c, _mm256_castsi256_ps(_mm256_cmpeq_epi32(odd, _mm256_set1_epi32(1))));
    return _mm256_mul_ps(t, t);
}

#define SNAKE_MAX_ARG 1e6f /* beyond it (and for NaN / inf) libm sinf */

static void snake_row_avx2(float *y, const float *x, int n, float a, float b) {
    const __m256 av = _mm256_set1_ps(a), bv = _mm256_set1_ps(b);
    const __m256 lim = _mm256_set1_ps(SNAKE_MAX_ARG), sign = _mm256_set1_ps(-0.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i), v = _mm256_mul_ps(xv, av);
        if (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, v), lim, _CMP_LE_OQ)) == 0xFF) {
            _mm256_storeu_ps(y + i, _mm256_fmadd_ps(bv, sin2_8(v), xv));
        } else {
            for (int j = i; j < i + 8; j++) {
                const float s = sinf(x[j] * a);
                y[j] = x[j] + b * (s * s);
            }
        }
    }
    for (; i < n; i++) {
        const float s = sinf(x[i] * a);
        y[i] = x[i] + b * (s * s);
    }
}

int cpu_kernels_init_avx2(cpu_kernels *k) {
    k->isa = CTTS_ISA_AVX2;
    k->name = "avx2";
    k->matmul[CTTS_DT_F32] = cpu_matmul_f32_avx2;
    k->matmul[CTTS_DT_BF16] = cpu_matmul_bf16_avx2;
    k->matmul[CTTS_DT_F16] = cpu_matmul_f16_avx2;
    k->matmul_q[CTTS_DT_Q8_0] = matmul_q8_0;
    k->matmul_q[CTTS_DT_Q4_0] = matmul_q4_0;
    k->quant_row_q8_0 = quant_row_q8_0_avx2;
    k->conv1d = conv1d_avx2;
    k->conv_transpose1d = conv_transpose1d_avx2;
    k->dot = dot_avx2;
    k->f16_to_f32 = f16_to_f32_avx2;
    k->f32_to_f16 = f32_to_f16_avx2;
    k->axpy = axpy_avx2;
    k->scale = scale_avx2;
    k->act = act_avx2;
    k->snake_row = snake_row_avx2;
    return 1;
}

#else

int cpu_kernels_init_avx2(cpu_kernels *k) {
    (void)k;
    return 0;
}

void cpu_matmul_f32_avx2(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                         int T) {
    (void)y, (void)ldy, (void)x, (void)ldx, (void)w, (void)R, (void)K, (void)T;
}
void cpu_matmul_bf16_avx2(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                          int T) {
    (void)y, (void)ldy, (void)x, (void)ldx, (void)w, (void)R, (void)K, (void)T;
}
void cpu_matmul_f16_avx2(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                         int T) {
    (void)y, (void)ldy, (void)x, (void)ldx, (void)w, (void)R, (void)K, (void)T;
}

#endif
