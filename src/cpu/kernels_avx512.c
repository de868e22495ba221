/*
 * AVX-512 (F + BW + VL) kernels for the compute-bound ops; this file alone is
 * built with -mavx512f -mavx512bw -mavx512vl -mfma -mf16c. Everything else
 * (F32/BF16 GEMV, activations, vector primitives) stays AVX2: those are bound
 * by memory or are small. On hosts with AVX512-VNNI the Q8_0 / Q4_0 matmuls
 * use vpdpbusd: T <= 4 (per-frame GEMV) on 512-bit vectors of two blocks with
 * the activation side prepared once per call (gq_*), larger T in 4 x 4 tiles.
 * SnakeBeta: a polynomial sin^2 on 16 lanes.
 *
 * matmul for T > 1 (prefill, the Mimi transformer): tiles of 4 weight rows x
 * 6 activation rows over 16-wide K slices (24 accumulators of the 32 zmm),
 * the K tail through a zero-filling mask. conv1d: tiles of CB output
 * channels x TV*16 time steps (CB x TV = 12 or 24), time tails through masks.
 * conv_transpose1d: the packed-panel GEMM of kernels_avx2.c with 16-wide
 * vectors and 8 time rows per tile.
 *
 * As in the AVX2 file, every output is one fixed-order chain (a lane, or a
 * lane sum in a fixed reduction order) whatever tile or thread computed it.
 */
#include "cpu/kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "quant/quant.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum { W_F32, W_BF16, W_F16 };

ALWAYS_INLINE __m512 load16(const void *w, size_t i, const int kind) {
    if (kind == W_F32) return _mm512_loadu_ps((const float *)w + i);
    const __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i));
    if (kind == W_BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}

/* Lanes beyond the mask read as zero (nothing is touched there). */
ALWAYS_INLINE __m512 load16_mask(const void *w, size_t i, __mmask16 m, const int kind) {
    if (kind == W_F32) return _mm512_maskz_loadu_ps(m, (const float *)w + i);
    const __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)w + i);
    if (kind == W_BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
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

/* ---- matmul, T > 1 ---- */

/* y[t*ldy + r] for r < RB, t < TB. */
ALWAYS_INLINE void mm_tile(float *y, int ldy, const float *x, int ldx, const void *w, size_t ldw,
                           int K, const int RB, const int TB, const int kind) {
    __m512 acc[4][6];
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) acc[r][t] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 xv[6];
        for (int t = 0; t < TB; t++) xv[t] = _mm512_loadu_ps(x + (size_t)t * ldx + k);
        for (int r = 0; r < RB; r++) {
            const __m512 wv = load16(w, (size_t)r * ldw + k, kind);
            for (int t = 0; t < TB; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    if (k < K) {
        const __mmask16 m = (__mmask16)((1u << (K - k)) - 1);
        __m512 xv[6];
        for (int t = 0; t < TB; t++) xv[t] = _mm512_maskz_loadu_ps(m, x + (size_t)t * ldx + k);
        for (int r = 0; r < RB; r++) {
            const __m512 wv = load16_mask(w, (size_t)r * ldw + k, m, kind);
            for (int t = 0; t < TB; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) y[(size_t)t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

ALWAYS_INLINE void mm_rows(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                           int T, const int kind) {
    const size_t es = kind == W_F32 ? 4 : 2;
#define MM_T_TAIL(RB)                                                                          \
    do {                                                                                       \
        int t = 0;                                                                             \
        for (; t + 6 <= T; t += 6) mm_tile(yr + (size_t)t * ldy, ldy, x + (size_t)t * ldx, ldx, wr, K, K, RB, 6, kind); \
        switch (T - t) {                                                                       \
        case 5: mm_tile(yr + (size_t)t * ldy, ldy, x + (size_t)t * ldx, ldx, wr, K, K, RB, 5, kind); break; \
        case 4: mm_tile(yr + (size_t)t * ldy, ldy, x + (size_t)t * ldx, ldx, wr, K, K, RB, 4, kind); break; \
        case 3: mm_tile(yr + (size_t)t * ldy, ldy, x + (size_t)t * ldx, ldx, wr, K, K, RB, 3, kind); break; \
        case 2: mm_tile(yr + (size_t)t * ldy, ldy, x + (size_t)t * ldx, ldx, wr, K, K, RB, 2, kind); break; \
        case 1: mm_tile(yr + (size_t)t * ldy, ldy, x + (size_t)t * ldx, ldx, wr, K, K, RB, 1, kind); break; \
        default: break;                                                                        \
        }                                                                                      \
    } while (0)
    int r = 0;
    for (; r + 4 <= R; r += 4) {
        const void *wr = (const char *)w + (size_t)r * K * es;
        float *yr = y + r;
        MM_T_TAIL(4);
    }
    for (; r < R; r++) {
        const void *wr = (const char *)w + (size_t)r * K * es;
        float *yr = y + r;
        MM_T_TAIL(1);
    }
#undef MM_T_TAIL
}

/* T = 1 keeps the AVX2 GEMV (memory-bound; a single stream per thread). */
static void matmul_f32(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                       int T) {
    if (T == 1) cpu_matmul_f32_avx2(y, ldy, x, ldx, w, R, K, T);
    else mm_rows(y, ldy, x, ldx, w, R, K, T, W_F32);
}
static void matmul_bf16(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                        int T) {
    if (T == 1) cpu_matmul_bf16_avx2(y, ldy, x, ldx, w, R, K, T);
    else mm_rows(y, ldy, x, ldx, w, R, K, T, W_BF16);
}
static void matmul_f16(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                       int T) {
    if (T == 1) cpu_matmul_f16_avx2(y, ldy, x, ldx, w, R, K, T);
    else mm_rows(y, ldy, x, ldx, w, R, K, T, W_F16);
}

/* ---- conv1d ---- */

/* Channels co..co+CB-1 x time t..t+16*TV-1 (the last vector masked by m). */
ALWAYS_INLINE void conv_tile(const cpu_conv_args *a, int co, int t, __mmask16 m, const int CB,
                             const int TV, const int strided, const int kind) {
    const int cin_g = a->cin / a->groups, cout_g = a->cout / a->groups;
    const int K = a->k, dil = a->dilation, S = a->stride;
    const float *xg = a->x + (size_t)(co / cout_g) * cin_g * a->tin + (size_t)t * S;
    const size_t wrow = (size_t)cin_g * K;
    const __m512i gidx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(S));
    __m512 acc[24];
    for (int j = 0; j < CB; j++)
        for (int v = 0; v < TV; v++)
            acc[j * TV + v] = _mm512_set1_ps(a->bias ? a->bias[co + j] : 0.0f);
    for (int cl = 0; cl < cin_g; cl++) {
        const float *xr = xg + (size_t)cl * a->tin;
        const size_t wo = (size_t)co * wrow + (size_t)cl * K;
        for (int k = 0; k < K; k++) {
            __m512 xv[4];
            for (int v = 0; v < TV; v++) {
                const __mmask16 mv = v == TV - 1 ? m : (__mmask16)0xFFFF;
                const float *p = xr + (size_t)k * dil + (size_t)16 * v * (strided ? S : 1);
                xv[v] = strided ? _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mv, gidx, p, 4)
                                : _mm512_maskz_loadu_ps(mv, p);
            }
            for (int j = 0; j < CB; j++) {
                const __m512 wv = _mm512_set1_ps(load1(a->w, wo + j * wrow + k, kind));
                for (int v = 0; v < TV; v++)
                    acc[j * TV + v] = _mm512_fmadd_ps(wv, xv[v], acc[j * TV + v]);
            }
        }
    }
    for (int j = 0; j < CB; j++)
        for (int v = 0; v < TV; v++)
            _mm512_mask_storeu_ps(a->y + (size_t)(co + j) * a->tout + t + 16 * v,
                                  v == TV - 1 ? m : (__mmask16)0xFFFF, acc[j * TV + v]);
}

/* All time steps of channels co..co+CB-1 (CB x TV = 24 accumulators). */
ALWAYS_INLINE void conv_channels(const cpu_conv_args *a, int co, const int CB, const int TV,
                                 const int strided, const int kind) {
    const int span = 16 * TV;
    int t = 0;
    for (; t + span <= a->tout; t += span) conv_tile(a, co, t, 0xFFFF, CB, TV, strided, kind);
    for (; t < a->tout; t += 16) {
        const int n = a->tout - t < 16 ? a->tout - t : 16;
        conv_tile(a, co, t, (__mmask16)((1u << n) - 1), CB, 1, strided, kind);
    }
}

ALWAYS_INLINE void conv1d_kind(const cpu_conv_args *a, int co0, int co1, const int strided,
                               const int kind) {
    const int cout_g = a->cout / a->groups;
    /* Short outputs: more channels per 16-step vector; long ones: 4 vectors.
     * Leftover channels (fewer than a block) run one by one with the same
     * time tiling. */
    const int wide = a->tout >= 64, mid = a->tout >= 32;
    const int CB = wide ? 6 : 12;
    int co = co0;
    while (co < co1) {
        const int group_end = (co / cout_g + 1) * cout_g;
        const int lim = group_end < co1 ? group_end : co1;
        if (co + CB <= lim) {
            if (wide) conv_channels(a, co, 6, 4, strided, kind);
            else if (mid) conv_channels(a, co, 12, 2, strided, kind);
            else conv_channels(a, co, 12, 1, strided, kind);
            co += CB;
        } else {
            if (wide) conv_channels(a, co, 1, 4, strided, kind);
            else if (mid) conv_channels(a, co, 1, 2, strided, kind);
            else conv_channels(a, co, 1, 1, strided, kind);
            co += 1;
        }
    }
}

static void conv1d_avx512(const cpu_conv_args *a, int co0, int co1) {
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

/* ---- conv_transpose1d: packed GEMM + overlap-add (see kernels_avx2.c) ---- */

#define CONVT_COLS 48
#define CONVT_CIB 128
#define CONVT_TG 32
#define CONVT_TB 8

ALWAYS_INLINE void convt_tile(float *z, const float *p, int ncib, const float *xr, int tin,
                              int first, const int TB, const int NV) {
    __m512 acc[CONVT_TB][3];
    for (int i = 0; i < TB; i++)
        for (int v = 0; v < NV; v++)
            acc[i][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(z + i * CONVT_COLS + 16 * v);
    for (int c = 0; c < ncib; c++) {
        const float *pr = p + (size_t)c * CONVT_COLS;
        const float *xc = xr + (size_t)c * tin;
        __m512 wv[3];
        for (int v = 0; v < NV; v++) wv[v] = _mm512_loadu_ps(pr + 16 * v);
        for (int i = 0; i < TB; i++) {
            const __m512 xb = _mm512_set1_ps(xc[i]);
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(xb, wv[v], acc[i][v]);
        }
    }
    for (int i = 0; i < TB; i++)
        for (int v = 0; v < NV; v++) _mm512_storeu_ps(z + i * CONVT_COLS + 16 * v, acc[i][v]);
}

ALWAYS_INLINE void convt_rows(float *z, const float *p, int ncib, const float *xr, int tin,
                              int first, int nvec, const int TB) {
    switch (nvec) {
    case 3: convt_tile(z, p, ncib, xr, tin, first, TB, 3); break;
    case 2: convt_tile(z, p, ncib, xr, tin, first, TB, 2); break;
    default: convt_tile(z, p, ncib, xr, tin, first, TB, 1); break;
    }
}

ALWAYS_INLINE void convt_kind(const cpu_conv_args *a, int co0, int co1, const int kind) {
    const int cin_g = a->cin / a->groups, cout_g = a->cout / a->groups;
    const int S = a->stride, K = a->k, tin = a->tin, tout = a->tout;
    const size_t ldw = (size_t)cout_g * K;
    const int per_chunk = CONVT_COLS / K;
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
        const int nlen = (ce - cs) * K, nvec = (nlen + 15) / 16;
        for (int tg = 0; tg < tin; tg += CONVT_TG) {
            const int tgn = tin - tg < CONVT_TG ? tin - tg : CONVT_TG;
            for (int c0 = 0; c0 < cin_g; c0 += CONVT_CIB) {
                const int ncib = cin_g - c0 < CONVT_CIB ? cin_g - c0 : CONVT_CIB;
                for (int c = 0; c < ncib; c++) {
                    const size_t wo = (size_t)(g * cin_g + c0 + c) * ldw + n0;
                    float *pr = panel + (size_t)c * CONVT_COLS;
                    for (int j = 0; j < nlen; j++) pr[j] = load1(a->w, wo + j, kind);
                    for (int j = nlen; j < nvec * 16; j++) pr[j] = 0.0f;
                }
                const float *xr = a->x + (size_t)(g * cin_g + c0) * tin + tg;
                int i = 0;
                for (; i + CONVT_TB <= tgn; i += CONVT_TB)
                    convt_rows(z + i * CONVT_COLS, panel, ncib, xr + i, tin, c0 == 0, nvec, 8);
                for (; i + 4 <= tgn; i += 4)
                    convt_rows(z + i * CONVT_COLS, panel, ncib, xr + i, tin, c0 == 0, nvec, 4);
                for (; i < tgn; i++)
                    convt_rows(z + i * CONVT_COLS, panel, ncib, xr + i, tin, c0 == 0, nvec, 1);
            }
            for (int i = 0; i < tgn; i++)
                for (int co = cs; co < ce; co++) {
                    float *yt = a->y + (size_t)co * tout + (size_t)(tg + i) * S;
                    const float *zr = z + (size_t)i * CONVT_COLS + (size_t)(co - cs) * K;
                    for (int k = 0; k < K; k += 16) {
                        const int n = K - k < 16 ? K - k : 16;
                        const __mmask16 m = (__mmask16)((1u << n) - 1);
                        _mm512_mask_storeu_ps(yt + k, m,
                                              _mm512_add_ps(_mm512_maskz_loadu_ps(m, yt + k),
                                                            _mm512_maskz_loadu_ps(m, zr + k)));
                    }
                }
        }
        cs = ce;
    }
}

static void conv_transpose1d_avx512(const cpu_conv_args *a, int co0, int co1) {
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

/* ---- quantized matmul with VNNI (AVX512-VNNI on 256-bit vectors) ---- */

/* vpdpbusd multiplies unsigned by signed bytes. Activations are made
 * unsigned by adding 128 (x ^ 0x80), and 128 * sum(w) is taken back off:
 * dot(x, w) = dpbusd(x + 128, w) - dpbusd(128, w), exact in int32. The
 * correction depends on the weights only, so a tile computes it once per
 * block and row for all its activation rows. */
__attribute__((target("avx512vnni,avx512vl,avx512bw,avx512f")))
static inline __m256i q4_values_v(const uint8_t *qs) {
    const __m128i b = _mm_loadu_si128((const __m128i *)qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    return _mm256_sub_epi8(_mm256_and_si256(v, _mm256_set1_epi8(15)), _mm256_set1_epi8(8));
}

#define VNNI_TB 4

/* RB weight rows x TB activation rows; y[t*ldy + r]. */
__attribute__((target("avx512vnni,avx512vl,avx512bw,avx512f"), always_inline))
static inline void mmq_vnni_tile(float *y, int ldy, const block_q8_0 *x, size_t xrow, const void *w,
                                 size_t row_bytes, int nb, const int RB, const int TB,
                                 const int q4) {
    __m256 acc[4][VNNI_TB];
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) acc[r][t] = _mm256_setzero_ps();
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int b = 0; b < nb; b++) {
        __m256i xu[VNNI_TB];
        float dx[VNNI_TB];
        for (int t = 0; t < TB; t++) {
            const block_q8_0 *xb = x + (size_t)t * xrow + b;
            xu[t] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)xb->qs), bias);
            dx[t] = _cvtsh_ss(xb->d);
        }
        for (int r = 0; r < RB; r++) {
            const char *wr = (const char *)w + (size_t)r * row_bytes;
            __m256i wv;
            float dw;
            if (q4) {
                const block_q4_0 *blk = (const block_q4_0 *)wr + b;
                wv = q4_values_v(blk->qs);
                dw = _cvtsh_ss(blk->d);
            } else {
                const block_q8_0 *blk = (const block_q8_0 *)wr + b;
                wv = _mm256_loadu_si256((const __m256i *)blk->qs);
                dw = _cvtsh_ss(blk->d);
            }
            const __m256i corr = _mm256_dpbusd_epi32(_mm256_setzero_si256(), bias, wv);
            for (int t = 0; t < TB; t++) {
                const __m256i d = _mm256_sub_epi32(
                    _mm256_dpbusd_epi32(_mm256_setzero_si256(), xu[t], wv), corr);
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dx[t]), _mm256_cvtepi32_ps(d),
                                            acc[r][t]);
            }
        }
    }
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) {
            const __m256 v = acc[r][t];
            __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
            s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
            y[(size_t)t * ldy + r] = _mm_cvtss_f32(s4);
        }
}

/* ---- quantized GEMV (T <= 4) with VNNI on 512-bit vectors ----
 *
 * One zmm holds two consecutive weight blocks. The weights are made the
 * unsigned operand of vpdpbusd and the activations the signed one:
 *   Q8_0: (w ^ 0x80) = w + 128, so dpbusd = dot + 128 * sum(x);
 *   Q4_0: the nibbles n = v + 8 as they are,  dpbusd = dot + 8 * sum(x);
 * the correction depends on x only, so it is computed once per call and
 * preloaded into the accumulator operand (lane 0 of each block's lanes):
 * per pair of blocks a Q8_0 row costs one xor and one vpdpbusd, a Q4_0 row a
 * shift and an and. Everything activation-side (x regrouped to match the
 * weight lanes, corrections, x scales as floats) lives in gq_pair, built per
 * call; a weight row is then streamed front to back once for all T <= 4
 * activation rows, with two accumulators per (row, t) (even / odd pairs) so
 * that two FMA chains are in flight per output. Each output element is
 * computed the same way whatever rows surround it, so results do not depend
 * on the split of rows across threads. */

typedef struct {
    int8_t x[64];     /* activations in the order of the weight bytes */
    int32_t corr[16]; /* -128 (Q8_0) or -8 (Q4_0) times sum(x) of a block, in its first lane */
    float dx[16];     /* x scale of the block each lane belongs to */
} gq_pair;

/* Bytes of precomputed activations a call keeps on its stack (T x pairs). */
#define GQ_STACK_PAIRS 256

/* Lane layout. Q8_0: bytes [blk0 q0..31 | blk1 q0..31] (int32 lanes 0-7 blk0,
 * 8-15 blk1). Q4_0: bytes [blk0 lo nibbles (values 0-15) | blk1 lo | blk0 hi
 * (values 16-31) | blk1 hi] (lanes 0-3, 8-11 blk0; 4-7, 12-15 blk1). */
__attribute__((target("avx512vnni,avx512vl,avx512bw,avx512f")))
static void gq_prep(gq_pair *p, const block_q8_0 *x, int nb, int q4) {
    for (int j = 0; j < (nb + 1) / 2; j++) {
        gq_pair *pp = p + j;
        memset(pp, 0, sizeof *pp);
        for (int h = 0; h < 2 && 2 * j + h < nb; h++) {
            const block_q8_0 *xb = x + 2 * j + h;
            const __m256i v = _mm256_loadu_si256((const __m256i *)xb->qs);
            /* sum of 32 signed bytes: sad of (x + 128) against 0, minus 32 * 128 */
            const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)),
                                                _mm256_setzero_si256());
            __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
            s2 = _mm_add_epi64(s2, _mm_unpackhi_epi64(s2, s2));
            const int32_t sum = (int32_t)_mm_cvtsi128_si32(s2) - 32 * 128;
            const float dx = _cvtsh_ss(xb->d);
            if (q4) {
                memcpy(pp->x + 16 * h, xb->qs, 16);
                memcpy(pp->x + 32 + 16 * h, xb->qs + 16, 16);
                pp->corr[4 * h] = -8 * sum;
                for (int l = 0; l < 4; l++) pp->dx[4 * h + l] = pp->dx[8 + 4 * h + l] = dx;
            } else {
                memcpy(pp->x + 32 * h, xb->qs, 32);
                pp->corr[8 * h] = -128 * sum;
                for (int l = 0; l < 8; l++) pp->dx[8 * h + l] = dx;
            }
        }
    }
}

/* The unsigned weight bytes of blocks b, b+1 (blk points at block b; only
 * block b when !two: the upper half is then zero and nothing past it is read)
 * and their scales spread over the lanes (zero for a missing block). */
__attribute__((target("avx512vnni,avx512vl,avx512bw,avx512f"), always_inline))
static inline void gq_load(const char *blk, const int two, const int q4, __m512i *wv, __m512 *dw) {
    const size_t bs = q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    uint16_t d0, d1 = 0;
    memcpy(&d0, blk, 2);
    if (two) memcpy(&d1, blk + bs, 2);
    const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)d0 | (uint32_t)d1 << 16)));
    if (q4) {
        __m256i q = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(blk + 2)));
        if (two) q = _mm256_inserti128_si256(q, _mm_loadu_si128((const __m128i *)(blk + bs + 2)), 1);
        else q = _mm256_zextsi128_si256(_mm256_castsi256_si128(q));
        const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(q), q, 1);
        const __m512i sh = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
        *wv = _mm512_and_si512(_mm512_srlv_epi16(z, sh), _mm512_set1_epi8(15));
        *dw = _mm512_permutexvar_ps(
            _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1), _mm512_castps128_ps512(dd));
    } else {
        const __m256i lo = _mm256_loadu_si256((const __m256i *)(blk + 2));
        const __m512i z = two ? _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                                                   _mm256_loadu_si256((const __m256i *)(blk + bs + 2)), 1)
                              : _mm512_zextsi256_si512(lo);
        /* the missing block's zero bytes become 128: its x is zero, so no effect */
        *wv = _mm512_xor_si512(z, _mm512_set1_epi8((char)0x80));
        *dw = _mm512_permutexvar_ps(
            _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), _mm512_castps128_ps512(dd));
    }
}

#ifndef GQ_ACC
#define GQ_ACC 2 /* accumulators per output (pairs of blocks in flight) */
#endif
#ifndef GQ_RB
#define GQ_RB 1 /* weight rows streamed together (T <= 2). Measured on Zen 5 with
                     * 3072x1024 Q8_0 from DRAM: 2 rows 11-13 GB/s vs 1 row 29 GB/s
                     * (two interleaved streams defeat the prefetcher), ~5% faster in
                     * cache; software prefetch 512-2048 B ahead did not help either. */
#endif

/* The f16 scales of 8 blocks (stride bs bytes from w) as floats. */
__attribute__((target("avx512vnni,avx512vl,avx512bw,avx512f"), always_inline))
static inline __m256 gq_scales8(const char *w, size_t bs) {
    uint64_t h[2] = {0, 0};
    for (int i = 0; i < 8; i++) {
        uint16_t d;
        memcpy(&d, w + (size_t)i * bs, 2);
        h[i >> 2] |= (uint64_t)d << (16 * (i & 3));
    }
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)h[1], (long long)h[0]));
}

/* One weight row against TB prepared activation rows (stride np pairs; dxb:
 * the x scales per block, stride 2 * np). Pairs of blocks go to GQ_ACC
 * accumulators in turn; the scales d_w * d_x of 8 blocks are made at once
 * and spread over each pair's lanes by a permute. */
__attribute__((target("avx512vnni,avx512vl,avx512bw,avx512f"), always_inline))
static inline void gq_row(float *y, int ldy, const gq_pair *xp, const float *dxb, int np,
                          const char *w, size_t row_bytes, int nb, const int RB, const int TB,
                          const int q4) {
    const size_t bs = q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    __m512 acc[2][GQ_ACC][4];
    for (int r = 0; r < RB; r++)
        for (int a = 0; a < GQ_ACC; a++)
            for (int t = 0; t < TB; t++) acc[r][a][t] = _mm512_setzero_ps();
    /* Pair J into accumulator A; S(r, t): the scales of its lanes. */
#define GQ_STEP(J, A, TWO, S)                                                                   \
    do {                                                                                        \
        __m512i wv[2];                                                                          \
        __m512 dw[2];                                                                           \
        for (int r = 0; r < RB; r++) {                                                          \
            gq_load(w + (size_t)r * row_bytes + (size_t)2 * (J) * bs, TWO, q4, &wv[r], &dw[r]); \
        }                                                                                       \
        for (int t = 0; t < TB; t++) {                                                          \
            const gq_pair *p = xp + (size_t)t * np + (J);                                       \
            const __m512i xv = _mm512_load_si512(p->x), cv = _mm512_load_si512(p->corr);        \
            for (int r = 0; r < RB; r++) {                                                      \
                const __m512i s = _mm512_dpbusd_epi32(cv, wv[r], xv);                           \
                acc[r][A][t] = _mm512_fmadd_ps(S(r, t), _mm512_cvtepi32_ps(s), acc[r][A][t]);   \
            }                                                                                   \
        }                                                                                       \
    } while (0)
#define GQ_S1(r, t) _mm512_mul_ps(dw[r], _mm512_load_ps(p->dx))
    const int full = nb / 2;
    int j = 0;
    const __m512i lanes = q4 ? _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1)
                             : _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    for (; j + 4 <= full; j += 4) {
        __m512 s8[2][4];
        for (int r = 0; r < RB; r++) {
            const __m256 dw8 = gq_scales8(w + (size_t)r * row_bytes + (size_t)2 * j * bs, bs);
            for (int t = 0; t < TB; t++)
                s8[r][t] = _mm512_castps256_ps512(
                    _mm256_mul_ps(dw8, _mm256_loadu_ps(dxb + (size_t)t * 2 * np + 2 * j)));
        }
        for (int i = 0; i < 4; i++) {
            const __m512i idx = _mm512_add_epi32(lanes, _mm512_set1_epi32(2 * i));
#define GQ_S8(r, t) _mm512_permutexvar_ps(idx, s8[r][t])
            GQ_STEP(j + i, i % GQ_ACC, 1, GQ_S8);
#undef GQ_S8
        }
    }
    for (int a = 0; j < full; j++, a++) GQ_STEP(j, a % GQ_ACC, 1, GQ_S1);
    if (nb & 1) GQ_STEP(j, GQ_ACC - 1, 0, GQ_S1);
#undef GQ_S1
#undef GQ_STEP
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) {
            __m512 v = acc[r][0][t];
            for (int a = 1; a < GQ_ACC; a++) v = _mm512_add_ps(v, acc[r][a][t]);
            y[(size_t)t * ldy + r] = _mm512_reduce_add_ps(v);
        }
}

/* Rows in pairs (T <= 2) or one by one; a row's arithmetic is the same either way. */
__attribute__((target("avx512vnni,avx512vl,avx512bw,avx512f"), always_inline))
static inline void gq_rows(float *y, int ldy, const gq_pair *xp, const float *dxb, int np,
                           const void *w, size_t row_bytes, int R, int nb, const int TB,
                           const int q4) {
    int r = 0;
    if (TB <= 2 && GQ_RB == 2)
        for (; r + 2 <= R; r += 2)
            gq_row(y + r, ldy, xp, dxb, np, (const char *)w + (size_t)r * row_bytes, row_bytes, nb, 2,
                   TB, q4);
    for (; r < R; r++)
        gq_row(y + r, ldy, xp, dxb, np, (const char *)w + (size_t)r * row_bytes, row_bytes, nb, 1,
               TB, q4);
}

/* Rows of K up to the stack buffer: the GEMV path above (any T, in chunks of
 * 4 activation rows); larger K: 4 x 4 tiles. An element's sum is over blocks in order either way,
 * so results do not depend on the split of rows. */
__attribute__((target("avx512vnni,avx512vl,avx512bw,avx512f"), always_inline))
static inline void mmq_vnni(float *y, int ldy, const void *xq, const void *w, int R, int K, int T,
                            const int q4) {
    const int nb = K / QK, np = (nb + 1) / 2;
    const size_t row_bytes = (size_t)nb * (q4 ? sizeof(block_q4_0) : sizeof(block_q8_0));
    const block_q8_0 *x = xq;
    if (4 * np <= GQ_STACK_PAIRS) {
        /* T > 4 (prompt prefill): the same path over chunks of 4 activation
         * rows, for blocks of weight rows that stay in L2 meanwhile (weights
         * come from DRAM once; the x-side preparation is redone per block,
         * ~5% of the work at 128 rows). */
        const int RB = T <= 4 ? R : 128;
        _Alignas(64) gq_pair xp[GQ_STACK_PAIRS];
        float dxb[2 * GQ_STACK_PAIRS];
        for (int r0 = 0; r0 < R; r0 += RB) {
            const int rn = R - r0 < RB ? R - r0 : RB;
            const char *wr = (const char *)w + (size_t)r0 * row_bytes;
            for (int t0 = 0; t0 < T; t0 += 4) {
                const int tn = T - t0 < 4 ? T - t0 : 4;
                const block_q8_0 *xt = x + (size_t)t0 * nb;
                for (int t = 0; t < tn; t++) {
                    gq_prep(xp + (size_t)t * np, xt + (size_t)t * nb, nb, q4);
                    for (int b = 0; b < 2 * np; b++)
                        dxb[(size_t)t * 2 * np + b] =
                            b < nb ? _cvtsh_ss(xt[(size_t)t * nb + b].d) : 0.0f;
                }
                float *yt = y + (size_t)t0 * ldy + r0;
                switch (tn) {
                case 1: gq_rows(yt, ldy, xp, dxb, np, wr, row_bytes, rn, nb, 1, q4); break;
                case 2: gq_rows(yt, ldy, xp, dxb, np, wr, row_bytes, rn, nb, 2, q4); break;
                case 3: gq_rows(yt, ldy, xp, dxb, np, wr, row_bytes, rn, nb, 3, q4); break;
                default: gq_rows(yt, ldy, xp, dxb, np, wr, row_bytes, rn, nb, 4, q4); break;
                }
            }
        }
        return;
    }
    for (int r = 0; r < R;) {
        const int rb = R - r >= 4 ? 4 : 1;
        const char *wr = (const char *)w + (size_t)r * row_bytes;
        for (int t = 0; t < T;) {
            const int tb = T - t >= 4 ? 4 : T - t;
            float *yt = y + (size_t)t * ldy + r;
            const block_q8_0 *xt = x + (size_t)t * nb;
#define VT(RB_, TB_) mmq_vnni_tile(yt, ldy, xt, (size_t)nb, wr, row_bytes, nb, RB_, TB_, q4)
            if (rb == 4) {
                if (tb == 4) VT(4, 4); else if (tb == 3) VT(4, 3); else if (tb == 2) VT(4, 2); else VT(4, 1);
            } else {
                if (tb == 4) VT(1, 4); else if (tb == 3) VT(1, 3); else if (tb == 2) VT(1, 2); else VT(1, 1);
            }
#undef VT
            t += tb;
        }
        r += rb;
    }
}

__attribute__((target("avx512vnni,avx512vl,avx512bw,avx512f")))
static void matmul_q8_0_vnni(float *y, int ldy, const void *xq, const void *w, int R, int K, int T) {
    mmq_vnni(y, ldy, xq, w, R, K, T, 0);
}
__attribute__((target("avx512vnni,avx512vl,avx512bw,avx512f")))
static void matmul_q4_0_vnni(float *y, int ldy, const void *xq, const void *w, int R, int K, int T) {
    mmq_vnni(y, ldy, xq, w, R, K, T, 1);
}

/* ---- SnakeBeta: sin2_8 of kernels_avx2.c on 16 lanes, tails masked ---- */

ALWAYS_INLINE __m512 sin2_16(__m512 v) {
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(0.636619772367581f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.570796371e+00f), v);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-4.371138829e-08f), r);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-1.776356839e-15f), r);
    const __m512 r2 = _mm512_mul_ps(r, r);
    __m512 ps = _mm512_fmadd_ps(_mm512_set1_ps(-1.9515295891e-4f), r2, _mm512_set1_ps(8.3321608736e-3f));
    ps = _mm512_fmadd_ps(ps, r2, _mm512_set1_ps(-1.6666654611e-1f));
    const __m512 s = _mm512_fmadd_ps(_mm512_mul_ps(ps, r2), r, r);
    __m512 pc = _mm512_fmadd_ps(_mm512_set1_ps(2.443315711809948e-5f), r2, _mm512_set1_ps(-1.388731625493765e-3f));
    pc = _mm512_fmadd_ps(pc, r2, _mm512_set1_ps(4.166664568298827e-2f));
    const __m512 c = _mm512_fmadd_ps(_mm512_mul_ps(pc, r2), r2,
                                     _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), r2, _mm512_set1_ps(1.0f)));
    const __mmask16 odd = _mm512_test_epi32_mask(_mm512_cvtps_epi32(n), _mm512_set1_epi32(1));
    const __m512 t = _mm512_mask_blend_ps(odd, s, c);
    return _mm512_mul_ps(t, t);
}

#define SNAKE_MAX_ARG 1e6f /* beyond it (and for NaN / inf) libm sinf, as kernels_avx2.c */

static void snake_row_avx512(float *y, const float *x, int n, float a, float b) {
    const __m512 av = _mm512_set1_ps(a), bv = _mm512_set1_ps(b), lim = _mm512_set1_ps(SNAKE_MAX_ARG);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 xv = _mm512_maskz_loadu_ps(m, x + i), v = _mm512_mul_ps(xv, av);
        if (_mm512_cmp_ps_mask(_mm512_abs_ps(v), lim, _CMP_LE_OQ) == 0xFFFF) {
            _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(bv, sin2_16(v), xv));
        } else {
            for (int j = i; j < n && j < i + 16; j++) {
                const float s = sinf(x[j] * a);
                y[j] = x[j] + b * (s * s);
            }
        }
    }
}

/* ---- attention of one query row, the heads of one KV head together ---- */

/* e^x as exp8 of kernels_avx2.c on 16 lanes. */
ALWAYS_INLINE __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(CPU_EXP_LO)), _mm512_set1_ps(CPU_EXP_HI));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(CPU_EXP_LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(CPU_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(CPU_EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(CPU_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CPU_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CPU_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CPU_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CPU_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CPU_EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    const __m512i e =
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

#define ATTEND_BLOCK 64 /* keys scored before their values are summed */
#define ATTEND_PF 4     /* keys prefetched ahead */

/* 16 elements i.. of a float or (f16 != 0) half row, as floats. */
ALWAYS_INLINE __m512 att_load(const void *p, size_t i, int f16) {
    if (f16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
    return _mm512_loadu_ps((const float *)p + i);
}

/* kernels.h attend / attend_f16: Dh a multiple of 16 up to 256, up to 4
 * heads. Each key row is loaded once for all heads; scores and their
 * exponentials are vectors; values go 16 dimensions at a time over a block of
 * keys. Inlined twice, so the element type is a constant in each copy. */
ALWAYS_INLINE int attend_body(float *o, const float *q, int nq, const void *k, const void *v,
                              size_t ld, int n, int Dh, float scale, int f16) {
    if (Dh <= 0 || Dh % 16 || Dh > 256 || nq < 1 || nq > 4 || n < 0) return 0;
    const int nv = Dh / 16;
    const size_t esize = f16 ? 2 : 4, row_bytes = (size_t)Dh * esize;
    const char *kb = k, *vb = v;
    memset(o, 0, (size_t)nq * Dh * sizeof *o);
    _Alignas(64) float s[4][ATTEND_BLOCK];
    float m[4], l[4];
    for (int h = 0; h < nq; h++) m[h] = -INFINITY, l[h] = 0.0f;
    for (int j0 = 0; j0 < n; j0 += ATTEND_BLOCK) {
        const int nb = n - j0 < ATTEND_BLOCK ? n - j0 : ATTEND_BLOCK;
        for (int j = 0; j < nb; j++) {
            const size_t r = (size_t)(j0 + j) * ld;
            /* Rows may be far apart: fetch keys ATTEND_PF ahead and this
             * block's values (read after the scores) while scoring. */
            const char *kp = kb + (r + (size_t)ATTEND_PF * ld) * esize, *vp = vb + r * esize;
            for (size_t c = 0; c < row_bytes; c += 64) {
                if (j0 + j + ATTEND_PF < n) _mm_prefetch(kp + c, _MM_HINT_T0);
                _mm_prefetch(vp + c, _MM_HINT_T0);
            }
            __m512 kv[16];
            for (int d = 0; d < nv; d++) kv[d] = att_load(k, r + 16 * (size_t)d, f16);
            for (int h = 0; h < nq; h++) {
                const float *qh = q + (size_t)h * Dh;
                __m512 a0 = _mm512_mul_ps(_mm512_loadu_ps(qh), kv[0]), a1 = _mm512_setzero_ps();
                for (int d = 1; d < nv; d++) {
                    if (d & 1) a1 = _mm512_fmadd_ps(_mm512_loadu_ps(qh + 16 * d), kv[d], a1);
                    else a0 = _mm512_fmadd_ps(_mm512_loadu_ps(qh + 16 * d), kv[d], a0);
                }
                s[h][j] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) * scale;
            }
        }
        for (int h = 0; h < nq; h++) {
            __m512 mx = _mm512_set1_ps(-INFINITY);
            for (int j = 0; j < nb; j += 16) {
                const __mmask16 mk = nb - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (nb - j)) - 1);
                mx = _mm512_mask_max_ps(mx, mk, mx, _mm512_load_ps(&s[h][j]));
            }
            const float bmax = _mm512_reduce_max_ps(mx);
            if (bmax > m[h]) { /* rescale what is summed so far (0 on the first block) */
                const __m512 f = _mm512_set1_ps(expf(m[h] - bmax));
                for (int d = 0; d < nv; d++)
                    _mm512_storeu_ps(o + (size_t)h * Dh + 16 * d,
                                     _mm512_mul_ps(f, _mm512_loadu_ps(o + (size_t)h * Dh + 16 * d)));
                l[h] *= expf(m[h] - bmax);
                m[h] = bmax;
            }
            __m512 sum = _mm512_setzero_ps();
            for (int j = 0; j < nb; j += 16) {
                const __mmask16 mk = nb - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (nb - j)) - 1);
                const __m512 p = _mm512_maskz_mov_ps(
                    mk, exp16(_mm512_sub_ps(_mm512_load_ps(&s[h][j]), _mm512_set1_ps(m[h]))));
                _mm512_store_ps(&s[h][j], p);
                sum = _mm512_add_ps(sum, p);
            }
            l[h] += _mm512_reduce_add_ps(sum);
        }
        for (int d = 0; d < nv; d++) {
            __m512 acc[4];
            for (int h = 0; h < nq; h++) acc[h] = _mm512_loadu_ps(o + (size_t)h * Dh + 16 * d);
            size_t r = (size_t)j0 * ld + 16 * (size_t)d;
            for (int j = 0; j < nb; j++, r += ld) {
                const __m512 vv = att_load(v, r, f16);
                for (int h = 0; h < nq; h++)
                    acc[h] = _mm512_fmadd_ps(_mm512_set1_ps(s[h][j]), vv, acc[h]);
            }
            for (int h = 0; h < nq; h++) _mm512_storeu_ps(o + (size_t)h * Dh + 16 * d, acc[h]);
        }
    }
    for (int h = 0; h < nq && n > 0; h++) {
        const __m512 r = _mm512_set1_ps(1.0f / l[h]);
        for (int d = 0; d < nv; d++)
            _mm512_storeu_ps(o + (size_t)h * Dh + 16 * d,
                             _mm512_mul_ps(r, _mm512_loadu_ps(o + (size_t)h * Dh + 16 * d)));
    }
    return 1;
}

static int attend_avx512(float *o, const float *q, int nq, const float *k, const float *v,
                         size_t ld, int n, int Dh, float scale) {
    return attend_body(o, q, nq, k, v, ld, n, Dh, scale, 0);
}

static int attend_f16_avx512(float *o, const float *q, int nq, const uint16_t *k,
                             const uint16_t *v, size_t ld, int n, int Dh, float scale) {
    return attend_body(o, q, nq, k, v, ld, n, Dh, scale, 1);
}

static int have_vnni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (c >> 11) & 1; /* AVX512_VNNI */
}

int cpu_kernels_init_avx512(cpu_kernels *k) {
    if (!cpu_kernels_init_avx2(k)) return 0;
    k->isa = CTTS_ISA_AVX512;
    k->name = "avx512";
    k->matmul[CTTS_DT_F32] = matmul_f32;
    k->matmul[CTTS_DT_BF16] = matmul_bf16;
    k->matmul[CTTS_DT_F16] = matmul_f16;
    k->conv1d = conv1d_avx512;
    k->conv_transpose1d = conv_transpose1d_avx512;
    k->snake_row = snake_row_avx512;
    k->attend = attend_avx512;
    k->attend_f16 = attend_f16_avx512;
    if (have_vnni()) {
        k->matmul_q[CTTS_DT_Q8_0] = matmul_q8_0_vnni;
        k->matmul_q[CTTS_DT_Q4_0] = matmul_q4_0_vnni;
    }
    return 1;
}

#else

int cpu_kernels_init_avx512(cpu_kernels *k) {
    (void)k;
    return 0;
}

#endif
