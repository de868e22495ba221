/*
 * AVX2 + FMA + F16C kernels (this file alone is built with -mavx2 -mfma -mf16c).
 *
 * matmul: register tiles of 4 weight rows x 3 activation rows, so each
 * weight vector loaded (and widened from BF16/F16) serves 3 rows of x and
 * each x vector serves 4 weight rows; T = 1 (GEMV) runs 4x1 tiles and is
 * bound by memory bandwidth. conv1d (stride 1): tiles of 4 output channels x
 * 16 time steps, a direct loop over input channels and taps (no im2col).
 * conv_transpose1d: polyphase, each output phase is a small stride-1
 * correlation over the taps of that phase, 4 channels x 8 steps per tile.
 *
 * Every output element is accumulated the same way whatever tile computed
 * it (one 8-lane accumulator over K in order, a fixed horizontal sum, then a
 * scalar fused tail; conv lanes are independent sums in tap order), so
 * results do not depend on where a thread range starts. Versus the scalar
 * reference the order differs: |diff| stays below ~1e-6 of sum |terms|.
 * Cases without a fast path (strided conv1d) use the reference.
 */
#include "cpu/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

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

ALWAYS_INLINE void mm_rows(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                           int T, const int kind) {
    const size_t es = kind == W_F32 ? 4 : 2;
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
static void matmul_f32(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                       int T) {
    mm_rows(y, ldy, x, ldx, w, R, K, T, W_F32);
}
static void matmul_bf16(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                        int T) {
    mm_rows(y, ldy, x, ldx, w, R, K, T, W_BF16);
}
static void matmul_f16(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                       int T) {
    mm_rows(y, ldy, x, ldx, w, R, K, T, W_F16);
}

/* ---- conv1d, stride 1 ---- */

/* Output channels co..co+CB-1 (one group), all time steps. Lanes = time. */
ALWAYS_INLINE void conv_block(const cpu_conv_args *a, int co, const int CB, const int kind) {
    const int cin_g = a->cin / a->groups, cout_g = a->cout / a->groups;
    const int K = a->k, dil = a->dilation, tout = a->tout;
    const float *xg = a->x + (size_t)(co / cout_g) * cin_g * a->tin;
    const size_t wrow = (size_t)cin_g * K; /* weights per output channel */
    float bias[4];
    for (int j = 0; j < CB; j++) bias[j] = a->bias ? a->bias[co + j] : 0.0f;
    int t = 0;
    for (; t + 16 <= tout; t += 16) {
        __m256 acc[4][2];
        for (int j = 0; j < CB; j++) acc[j][0] = acc[j][1] = _mm256_set1_ps(bias[j]);
        for (int cl = 0; cl < cin_g; cl++) {
            const float *xr = xg + (size_t)cl * a->tin + t;
            const size_t wo = (size_t)co * wrow + (size_t)cl * K;
            for (int k = 0; k < K; k++) {
                const __m256 x0 = _mm256_loadu_ps(xr + (size_t)k * dil);
                const __m256 x1 = _mm256_loadu_ps(xr + (size_t)k * dil + 8);
                for (int j = 0; j < CB; j++) {
                    const __m256 wv = _mm256_set1_ps(load1(a->w, wo + j * wrow + k, kind));
                    acc[j][0] = _mm256_fmadd_ps(wv, x0, acc[j][0]);
                    acc[j][1] = _mm256_fmadd_ps(wv, x1, acc[j][1]);
                }
            }
        }
        for (int j = 0; j < CB; j++) {
            float *yr = a->y + (size_t)(co + j) * tout + t;
            _mm256_storeu_ps(yr, acc[j][0]);
            _mm256_storeu_ps(yr + 8, acc[j][1]);
        }
    }
    for (; t + 8 <= tout; t += 8) {
        __m256 acc[4];
        for (int j = 0; j < CB; j++) acc[j] = _mm256_set1_ps(bias[j]);
        for (int cl = 0; cl < cin_g; cl++) {
            const float *xr = xg + (size_t)cl * a->tin + t;
            const size_t wo = (size_t)co * wrow + (size_t)cl * K;
            for (int k = 0; k < K; k++) {
                const __m256 x0 = _mm256_loadu_ps(xr + (size_t)k * dil);
                for (int j = 0; j < CB; j++)
                    acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(load1(a->w, wo + j * wrow + k, kind)),
                                             x0, acc[j]);
            }
        }
        for (int j = 0; j < CB; j++) _mm256_storeu_ps(a->y + (size_t)(co + j) * tout + t, acc[j]);
    }
    for (; t < tout; t++)
        for (int j = 0; j < CB; j++) {
            float s = bias[j];
            for (int cl = 0; cl < cin_g; cl++) {
                const float *xr = xg + (size_t)cl * a->tin + t;
                const size_t wo = (size_t)(co + j) * wrow + (size_t)cl * K;
                for (int k = 0; k < K; k++) s = fmaf(load1(a->w, wo + k, kind), xr[(size_t)k * dil], s);
            }
            a->y[(size_t)(co + j) * tout + t] = s;
        }
}

ALWAYS_INLINE void conv1d_kind(const cpu_conv_args *a, int co0, int co1, const int kind) {
    const int cout_g = a->cout / a->groups;
    int co = co0;
    while (co < co1) {
        /* A 4-channel block must stay inside one group. */
        const int group_end = (co / cout_g + 1) * cout_g;
        const int lim = group_end < co1 ? group_end : co1;
        if (co + 4 <= lim) {
            conv_block(a, co, 4, kind);
            co += 4;
        } else {
            conv_block(a, co, 1, kind);
            co += 1;
        }
    }
}

static void conv1d_avx2(const cpu_conv_args *a, int co0, int co1) {
    if (a->stride != 1) {
        cpu_conv1d_ref(a, co0, co1);
        return;
    }
    switch (a->wdt) {
    case CTTS_DT_BF16: conv1d_kind(a, co0, co1, W_BF16); break;
    case CTTS_DT_F16: conv1d_kind(a, co0, co1, W_F16); break;
    default: conv1d_kind(a, co0, co1, W_F32); break;
    }
}

/* ---- conv_transpose1d, polyphase ---- */

/* Largest stride / taps-per-phase the polyphase path keeps on the stack. */
#define CONVT_MAX_STRIDE 32
#define CONVT_MAX_TAPS 16

/* Channels co..co+CB-1 (local col..col+CB-1 of one group). Output j = q*S + p
 * (phase p) collects taps k = p + m*S from x[q - m]. Per chunk of 8 q values
 * every phase is computed into a stack tile, then written out contiguously.
 * Lanes whose x index falls outside [0, tin) load zero through a mask, so
 * edge chunks follow the same summation order as interior ones. */
ALWAYS_INLINE void convt_block(const cpu_conv_args *a, int co, const int CB, const int kind) {
    const int cin_g = a->cin / a->groups, cout_g = a->cout / a->groups;
    const int g = co / cout_g, col = co % cout_g;
    const int S = a->stride, K = a->k, tin = a->tin, tout = a->tout;
    const float *xg = a->x + (size_t)g * cin_g * tin;
    float tile[4][CONVT_MAX_STRIDE * 8];
    __m256i masks[CONVT_MAX_TAPS];
    int full[CONVT_MAX_TAPS];
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i tin_v = _mm256_set1_epi32(tin), minus1 = _mm256_set1_epi32(-1);
    const int Q = (tout - 1) / S + 1; /* chunks cover phase 0, the longest */
    for (int q0 = 0; q0 < Q; q0 += 8) {
        for (int p = 0; p < S; p++) {
            const int M = p < K ? (K - p + S - 1) / S : 0;
            for (int m = 0; m < M; m++) {
                const __m256i idx = _mm256_add_epi32(lane, _mm256_set1_epi32(q0 - m));
                masks[m] = _mm256_and_si256(_mm256_cmpgt_epi32(idx, minus1),
                                            _mm256_cmpgt_epi32(tin_v, idx));
                full[m] = q0 - m >= 0 && q0 - m + 8 <= tin;
            }
            __m256 acc[4];
            for (int j = 0; j < CB; j++)
                acc[j] = _mm256_set1_ps(a->bias ? a->bias[co + j] : 0.0f);
            for (int cl = 0; cl < cin_g; cl++) {
                const float *xr = xg + (size_t)cl * tin + q0;
                const size_t wo = ((size_t)(g * cin_g + cl) * cout_g + col) * K + p;
                for (int m = 0; m < M; m++) {
                    const __m256 xv = full[m] ? _mm256_loadu_ps(xr - m)
                                              : _mm256_maskload_ps(xr - m, masks[m]);
                    for (int j = 0; j < CB; j++)
                        acc[j] = _mm256_fmadd_ps(
                            _mm256_set1_ps(load1(a->w, wo + (size_t)j * K + (size_t)m * S, kind)),
                            xv, acc[j]);
                }
            }
            for (int j = 0; j < CB; j++) _mm256_storeu_ps(&tile[j][p * 8], acc[j]);
        }
        const int n_q = Q - q0 < 8 ? Q - q0 : 8;
        for (int j = 0; j < CB; j++) {
            float *yr = a->y + (size_t)(co + j) * tout;
            for (int i = 0; i < n_q; i++) {
                const int base = (q0 + i) * S;
                const int n_p = tout - base < S ? tout - base : S;
                for (int p = 0; p < n_p; p++) yr[base + p] = tile[j][p * 8 + i];
            }
        }
    }
}

ALWAYS_INLINE void convt_kind(const cpu_conv_args *a, int co0, int co1, const int kind) {
    const int cout_g = a->cout / a->groups;
    int co = co0;
    while (co < co1) {
        const int group_end = (co / cout_g + 1) * cout_g;
        const int lim = group_end < co1 ? group_end : co1;
        if (co + 4 <= lim) {
            convt_block(a, co, 4, kind);
            co += 4;
        } else {
            convt_block(a, co, 1, kind);
            co += 1;
        }
    }
}

static void conv_transpose1d_avx2(const cpu_conv_args *a, int co0, int co1) {
    if (a->stride > CONVT_MAX_STRIDE || (a->k + a->stride - 1) / a->stride > CONVT_MAX_TAPS) {
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

static void scale_avx2(float *y, float a, int n) {
    const __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(av, _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] *= a;
}

int cpu_kernels_init_avx2(cpu_kernels *k) {
    k->isa = CTTS_ISA_AVX2;
    k->name = "avx2";
    k->matmul[CTTS_DT_F32] = matmul_f32;
    k->matmul[CTTS_DT_BF16] = matmul_bf16;
    k->matmul[CTTS_DT_F16] = matmul_f16;
    k->conv1d = conv1d_avx2;
    k->conv_transpose1d = conv_transpose1d_avx2;
    k->dot = dot_avx2;
    k->axpy = axpy_avx2;
    k->scale = scale_avx2;
    return 1;
}

#else

int cpu_kernels_init_avx2(cpu_kernels *k) {
    (void)k;
    return 0;
}

#endif
