/*
 * AVX512_BF16 convolutions for BF16 weights and prompt-sized products with
 * Q8_0 / Q4_0 weights: BF16 products, F32 sums (vdpbf16ps: 32 multiply-adds
 * per instruction, twice the f32 FMA rate).
 * This file alone is built with -mavx512bf16 (Makefile ISA_bf16); dispatch.c
 * installs its entries after the AVX-512 tier when cpuid says AVX512_BF16.
 *
 * Data flow: the backend asks conv_bf16_rows for the size of the packed
 * activations, fills them with conv_bf16_pack (rows split across threads),
 * then runs conv1d_bf16 / conv_transpose1d_bf16 over output channels. Every
 * packed element is a 32-bit pair of BF16 values (x rounded to nearest even)
 * along the reduction, so one 512-bit load is 16 columns x 2 reduction steps:
 *
 *  conv1d: reduction index r = ci_local * K + k, the order of the weight row
 *    W[co] (cin/groups x K contiguous BF16), so weights are used as stored: a
 *    32-bit broadcast of W[co][2p..2p+1] meets packed row p, whose lane t holds
 *    (x[ci(2p)][t*S + k(2p)*dil], x[ci(2p+1)][t*S + k(2p+1)*dil]) - an im2col
 *    in pairs, rows of round16(tout) pairs, [group][ceil(cin_g*K/2)][tout].
 *    Stride and dilation live in the packing; the kernel is a plain GEMM with
 *    tiles of CB output channels x TV 16-column vectors (CB x TV <= 24).
 *  conv_transpose1d: Z[t][(co, k)] = sum_ci x[ci][t] W[ci][co][k] as in the
 *    f32 kernels, then overlap-add into y. Packed x: [group][ceil(cin_g/2)]
 *    rows of round16(tin) pairs (x[2c][t], x[2c+1][t]); weight rows ci, ci+1
 *    (contiguous along (co, k)) are interleaved on the fly with vpunpck*wd,
 *    which permutes columns inside each 32; the store undoes it.
 *
 * Each output is one fixed chain (a lane summing its pairs in reduction
 * order), whatever tile or thread computed it, so any thread split gives the
 * same bits. Not handled here (the caller falls back to the float kernels on
 * rounded x): convT kernels longer than CT_COLS.
 *
 *  matmul_q_bf16: the conv1d scheme with K as the reduction (k = 1): x packed
 *    into pairs along K, one row per pair, columns = activation rows; weight
 *    rows dequantized to BF16 into the caller's scratch 48 at a time and
 *    broadcast like conv weights; tiles go through a small buffer to y's rows.
 * Nothing allocates.
 */
#include "cpu/kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Output columns (co, k) of one conv_transpose1d chunk: 4 vectors. */
#define CT_COLS 64
#define CT_TB 6
#define CT_PF 6 /* weight row pairs prefetched ahead */
#define CT_PAIR_U16 128 /* packed layout: BF16 values per channel pair (4 vectors) */

static int64_t round16(int64_t n) { return (n + 15) & ~(int64_t)15; }

/* ---- packing ---- */

/* Rows of packed activations and their length in bytes (0 rows: not handled). */
static int bf16_rows(const cpu_conv_args *a, int transposed, size_t *row_bytes) {
    if (a->groups <= 0 || a->cin % a->groups || a->cout % a->groups) return 0;
    const int64_t cin_g = a->cin / a->groups;
    const int64_t cout_g = a->cout / a->groups;
    int64_t per_group, cols;
    /* Packing costs about as much as a few output channels of work: with
     * fewer, the float kernels on rounded x are faster (depthwise, cout 1). */
    if (transposed ? cout_g * a->k < 16 : cout_g < 8) return 0;
    if (transposed) {
        if (a->k > CT_COLS) return 0;
        per_group = (cin_g + 1) / 2;
        cols = round16(a->tin);
    } else {
        per_group = (cin_g * a->k + 1) / 2;
        cols = round16(a->tout);
    }
    const int64_t rows = per_group * a->groups;
    if (rows <= 0 || rows > INT32_MAX || cols <= 0) return 0;
    *row_bytes = (size_t)cols * 4;
    return (int)rows;
}

/* dst[t] = (bf16(s0[t*step]), bf16(s1[t*step])) for t < n, zero pairs up to
 * round16(n); s1 NULL reads as zeros. */
static void pack_row(uint32_t *dst, const float *s0, const float *s1, int step, int n) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i gidx = _mm512_mullo_epi32(lane, _mm512_set1_epi32(step));
    /* Word 2i <- a[i] (low half of cvtne2ps), word 2i+1 <- b[i] (high half). */
    const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                           24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                           16, 0);
    for (int t = 0; t < n; t += 16) {
        const int left = n - t;
        const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        const size_t off = (size_t)t * step;
        __m512 va, vb = _mm512_setzero_ps();
        if (step == 1) {
            va = _mm512_maskz_loadu_ps(m, s0 + off);
            if (s1) vb = _mm512_maskz_loadu_ps(m, s1 + off);
        } else {
            va = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, gidx, s0 + off, 4);
            if (s1) vb = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, gidx, s1 + off, 4);
        }
        const __m512i ab = (__m512i)_mm512_cvtne2ps_pbh(vb, va);
        _mm512_store_si512((__m512i *)(dst + t), _mm512_permutexvar_epi16(inter, ab));
    }
}

static void bf16_pack(const cpu_conv_args *a, int transposed, void *xp, int r0, int r1) {
    size_t row_bytes;
    const int rows = bf16_rows(a, transposed, &row_bytes);
    if (rows <= 0) return;
    const int per_group = rows / a->groups, cin_g = a->cin / a->groups;
    for (int r = r0; r < r1 && r < rows; r++) {
        uint32_t *dst = (uint32_t *)((char *)xp + (size_t)r * row_bytes);
        const int g = r / per_group, p = r % per_group;
        const float *xg = a->x + (size_t)g * cin_g * a->tin;
        if (transposed) {
            const int c0 = 2 * p, c1 = c0 + 1;
            pack_row(dst, xg + (size_t)c0 * a->tin, c1 < cin_g ? xg + (size_t)c1 * a->tin : NULL, 1,
                     a->tin);
        } else {
            const int64_t R = (int64_t)cin_g * a->k, q0 = 2 * (int64_t)p, q1 = q0 + 1;
            const float *s0 = xg + (size_t)(q0 / a->k) * a->tin + (size_t)(q0 % a->k) * a->dilation;
            const float *s1 =
                q1 < R ? xg + (size_t)(q1 / a->k) * a->tin + (size_t)(q1 % a->k) * a->dilation
                       : NULL;
            pack_row(dst, s0, s1, a->stride, a->tout);
        }
    }
}

/* ---- conv1d ---- */

ALWAYS_INLINE __m512i bcast_pair(const uint16_t *p) {
    uint32_t u;
    memcpy(&u, p, 4);
    return _mm512_set1_epi32((int)u);
}

ALWAYS_INLINE __m512 dp(__m512 acc, __m512i x, __m512i w) {
    return _mm512_dpbf16_ps(acc, (__m512bh)x, (__m512bh)w);
}

/* acc[j * TV + v] += sum over pair rows p < pairs of x row p (columns
 * 16v..16v+15) times the broadcast pair (w[j][2p], w[j][2p+1]): the GEMM core
 * of both conv1d and matmul_q_bf16 tiles. */
ALWAYS_INLINE void dp_rows(__m512 *acc, const uint32_t *x, size_t ldx, const uint16_t *w,
                           size_t ldw, int64_t pairs, const int CB, const int TV) {
    for (int64_t p = 0; p < pairs; p++) {
        const uint32_t *xr = x + (size_t)p * ldx;
        __m512i xv[4];
        for (int v = 0; v < TV; v++) xv[v] = _mm512_load_si512((const __m512i *)(xr + 16 * v));
        for (int j = 0; j < CB; j++) {
            const __m512i wv = bcast_pair(w + (size_t)j * ldw + 2 * p);
            for (int v = 0; v < TV; v++) acc[j * TV + v] = dp(acc[j * TV + v], xv[v], wv);
        }
    }
}

/* Channels co..co+CB-1 x columns t..t+16*TV-1 (the last vector's store masked by m). */
ALWAYS_INLINE void c1_tile(const cpu_conv_args *a, int co, int t, __mmask16 m, const int CB,
                           const int TV) {
    const int cin_g = a->cin / a->groups, cout_g = a->cout / a->groups;
    const int64_t R = (int64_t)cin_g * a->k, half = R / 2;
    const size_t ldt = (size_t)round16(a->tout), rows_g = (size_t)((R + 1) / 2);
    const uint32_t *xg = (const uint32_t *)a->xp + (size_t)(co / cout_g) * rows_g * ldt + t;
    const uint16_t *w = (const uint16_t *)a->w + (size_t)co * R;
    __m512 acc[24];
    for (int j = 0; j < CB; j++)
        for (int v = 0; v < TV; v++) acc[j * TV + v] = _mm512_set1_ps(a->bias ? a->bias[co + j] : 0.0f);
    dp_rows(acc, xg, ldt, w, (size_t)R, half, CB, TV);
    if (R & 1) { /* last weight alone (its pair would be the next row's first) */
        const uint32_t *xr = xg + (size_t)half * ldt;
        __m512i xv[4];
        for (int v = 0; v < TV; v++) xv[v] = _mm512_load_si512((const __m512i *)(xr + 16 * v));
        for (int j = 0; j < CB; j++) {
            const __m512i wv = _mm512_set1_epi32((int)w[(size_t)j * R + 2 * half]);
            for (int v = 0; v < TV; v++) acc[j * TV + v] = dp(acc[j * TV + v], xv[v], wv);
        }
    }
    for (int j = 0; j < CB; j++)
        for (int v = 0; v < TV; v++)
            _mm512_mask_storeu_ps(a->y + (size_t)(co + j) * a->tout + t + 16 * v,
                                  v == TV - 1 ? m : (__mmask16)0xFFFF, acc[j * TV + v]);
}

/* Column tiles outside (the packed strip of a tile stays in cache while the
 * channel blocks stream their weights), channel blocks of CB inside a group. */
ALWAYS_INLINE void c1_run(const cpu_conv_args *a, int co0, int co1, const int CB, const int TV) {
    const int cout_g = a->cout / a->groups, span = 16 * TV;
    for (int t = 0; t < a->tout; t += span) {
        const int full = t + span <= a->tout;
        for (int co = co0; co < co1;) {
            const int group_end = (co / cout_g + 1) * cout_g;
            const int lim = group_end < co1 ? group_end : co1;
            const int blk = co + CB <= lim;
            if (full) {
                if (blk) c1_tile(a, co, t, 0xFFFF, CB, TV);
                else c1_tile(a, co, t, 0xFFFF, 1, TV);
            } else {
                for (int tt = t; tt < a->tout; tt += 16) {
                    const int n = a->tout - tt < 16 ? a->tout - tt : 16;
                    const __mmask16 m = (__mmask16)((1u << n) - 1);
                    if (blk) c1_tile(a, co, tt, m, CB, 1);
                    else c1_tile(a, co, tt, m, 1, 1);
                }
            }
            co += blk ? CB : 1;
        }
    }
}

/* Few weight rows per tile: each is a separate stream from memory, and more
 * than ~8 at once defeat the prefetchers (1024->1536 k7 at 16 columns: 24
 * rows 156 GFLOP/s, 8 rows 417, bench_conv_bf16). */
static void conv1d_bf16(const cpu_conv_args *a, int co0, int co1) {
    if (a->tout >= 64) c1_run(a, co0, co1, 6, 4);
    else if (a->tout >= 32) c1_run(a, co0, co1, 8, 2);
    else c1_run(a, co0, co1, 8, 1);
}

/* ---- conv_transpose1d ---- */

/* z[i][c] for i < TB, c < 32*NH: sum over the group's channel pairs of the
 * packed x (rows xg, column t + i) times weight columns wg[0 .. 32*NH) of
 * rows ci, ci + 1 (row stride ldw); columns past the masks read as zero. */
/* The 4 weight vectors of channel pair p (rows 2p, 2p+1 of wg, row stride
 * ldw; p == pairs is the odd last row with zeros): columns 0-31 and 32-63
 * (masks m0, m1) interleaved by vpunpck*wd. */
ALWAYS_INLINE void ct_wvec(__m512i *wv, const uint16_t *wg, size_t ldw, int p, int pairs,
                           __mmask32 m0, __mmask32 m1, const int NH) {
    const uint16_t *r0 = wg + (size_t)(2 * p) * ldw;
    for (int h = 0; h < NH; h++) {
        const __mmask32 mh = h ? m1 : m0;
        const __m512i lo = _mm512_maskz_loadu_epi16(mh, r0 + 32 * h);
        const __m512i hi = p < pairs ? _mm512_maskz_loadu_epi16(mh, r0 + ldw + 32 * h)
                                     : _mm512_setzero_si512();
        wv[2 * h] = _mm512_unpacklo_epi16(lo, hi);
        wv[2 * h + 1] = _mm512_unpackhi_epi16(lo, hi);
    }
}

/* wg: rows of the stored layout (row stride ldw), or with ldw == 0 one chunk
 * of the packed layout (ct_pack_w: CT_PAIR_U16 values per pair, in order). */
ALWAYS_INLINE void ct_tile(float *z, const uint32_t *xg, size_t ldt, int t, const uint16_t *wg,
                           size_t ldw, int cin_g, __mmask32 m0, __mmask32 m1, const int TB,
                           const int NH) {
    __m512 acc[CT_TB][4];
    for (int i = 0; i < TB; i++)
        for (int v = 0; v < 2 * NH; v++) acc[i][v] = _mm512_setzero_ps();
    const int pairs = cin_g / 2;
    for (int p = 0; p <= pairs; p++) {
        if (p == pairs && !(cin_g & 1)) break;
        __m512i wv[4];
        if (!ldw) {
            for (int v = 0; v < 2 * NH; v++)
                wv[v] = _mm512_load_si512((const __m512i *)(wg + (size_t)p * CT_PAIR_U16 + 32 * v));
        } else {
            /* Rows ldw apart (often a page or more): the hardware prefetchers
             * miss them, so fetch CT_PF pairs ahead (both rows, both halves). */
            if (p + CT_PF < pairs) {
                const char *pf = (const char *)(wg + (size_t)(2 * (p + CT_PF)) * ldw);
                _mm_prefetch(pf, _MM_HINT_T0);
                _mm_prefetch(pf + 64 * NH - 1, _MM_HINT_T0);
                _mm_prefetch(pf + ldw * 2, _MM_HINT_T0);
                _mm_prefetch(pf + ldw * 2 + 64 * NH - 1, _MM_HINT_T0);
            }
            ct_wvec(wv, wg, ldw, p, pairs, m0, m1, NH);
        }
        const uint32_t *xr = xg + (size_t)p * ldt + t;
        for (int i = 0; i < TB; i++) {
            const __m512i xb = _mm512_set1_epi32((int)xr[i]);
            for (int v = 0; v < 2 * NH; v++) acc[i][v] = dp(acc[i][v], wv[v], xb);
        }
    }
    /* unpacklo lane 4j+i holds column 8j+i, unpackhi lane 4j+i column 8j+4+i. */
    const __m512i ia = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const __m512i ib =
        _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    for (int i = 0; i < TB; i++)
        for (int h = 0; h < NH; h++) {
            float *zr = z + (size_t)i * CT_COLS + 32 * h;
            _mm512_storeu_ps(zr, _mm512_permutex2var_ps(acc[i][2 * h], ia, acc[i][2 * h + 1]));
            _mm512_storeu_ps(zr + 16,
                             _mm512_permutex2var_ps(acc[i][2 * h], ib, acc[i][2 * h + 1]));
        }
}

ALWAYS_INLINE void ct_rows(float *z, const uint32_t *xg, size_t ldt, int t, const uint16_t *wg,
                           size_t ldw, int cin_g, __mmask32 m0, __mmask32 m1, int tb,
                           const int NH) {
    switch (tb) {
    case 6: ct_tile(z, xg, ldt, t, wg, ldw, cin_g, m0, m1, 6, NH); break;
    case 5: ct_tile(z, xg, ldt, t, wg, ldw, cin_g, m0, m1, 5, NH); break;
    case 4: ct_tile(z, xg, ldt, t, wg, ldw, cin_g, m0, m1, 4, NH); break;
    case 3: ct_tile(z, xg, ldt, t, wg, ldw, cin_g, m0, m1, 3, NH); break;
    case 2: ct_tile(z, xg, ldt, t, wg, ldw, cin_g, m0, m1, 2, NH); break;
    default: ct_tile(z, xg, ldt, t, wg, ldw, cin_g, m0, m1, 1, NH); break;
    }
}

/* Column masks of a chunk of nlen columns (vectors of 32 BF16 values). */
static void ct_masks(int nlen, __mmask32 *m0, __mmask32 *m1) {
    *m0 = nlen >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << nlen) - 1);
    *m1 = nlen >= 64 ? 0xFFFFFFFFu : nlen <= 32 ? 0 : (__mmask32)((1u << (nlen - 32)) - 1);
}

/* Packed conv_transpose1d weights (kernels.h ct_bf16_pack_w): per group, per
 * chunk of CT_COLS / K output channels, per channel pair the 4 vectors ct_tile
 * would build from the stored rows - so a chunk is one sequential stream
 * instead of 128 bytes from each of cin rows, and no interleaving is left. */
static size_t ct_packed_bytes(int cin_g, int cout_g, int K, int groups) {
    if (cin_g <= 0 || cout_g <= 0 || groups <= 0 || K <= 0 || K > CT_COLS) return 0;
    const size_t per_chunk = (size_t)(CT_COLS / K);
    const size_t chunks = ((size_t)cout_g + per_chunk - 1) / per_chunk;
    return (size_t)groups * chunks * (size_t)((cin_g + 1) / 2) * CT_PAIR_U16 * 2;
}

static void ct_pack_w(const void *w, int cin_g, int cout_g, int K, int groups, void *dst) {
    const int per_chunk = CT_COLS / K, pairs = cin_g / 2, n_pairs = (cin_g + 1) / 2;
    const size_t ldw = (size_t)cout_g * K;
    uint16_t *out = dst;
    for (int g = 0; g < groups; g++)
        for (int cs = 0; cs < cout_g; cs += per_chunk) {
            const int ce = cs + per_chunk < cout_g ? cs + per_chunk : cout_g;
            __mmask32 m0, m1;
            ct_masks((ce - cs) * K, &m0, &m1);
            const uint16_t *wg = (const uint16_t *)w + (size_t)g * cin_g * ldw + (size_t)cs * K;
            for (int p = 0; p < n_pairs; p++, out += CT_PAIR_U16) {
                __m512i wv[4];
                ct_wvec(wv, wg, ldw, p, pairs, m0, m1, 2);
                for (int v = 0; v < 4; v++) _mm512_storeu_si512((__m512i *)(out + 32 * v), wv[v]);
            }
        }
}

static void conv_transpose1d_bf16(const cpu_conv_args *a, int co0, int co1) {
    const int cin_g = a->cin / a->groups, cout_g = a->cout / a->groups;
    const int S = a->stride, K = a->k, tin = a->tin, tout = a->tout;
    const size_t ldt = (size_t)round16(tin);
    const size_t rows_g = (size_t)(cin_g + 1) / 2;
    const int per_chunk = CT_COLS / K;
    /* Packed weights: ldw 0, chunks at fixed places (the caller splits at
     * multiples of per_chunk inside each group). */
    const size_t ldw = a->w_packed ? 0 : (size_t)cout_g * K;
    const size_t chunk_u16 = rows_g * CT_PAIR_U16;
    const size_t group_chunks = (size_t)((cout_g + per_chunk - 1) / per_chunk);
    float z[CT_TB * CT_COLS];
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
        const int nlen = (ce - cs) * K;
        __mmask32 m0, m1;
        ct_masks(nlen, &m0, &m1);
        const uint16_t *wg =
            ldw ? (const uint16_t *)a->w + (size_t)g * cin_g * ldw + (size_t)(cs - g * cout_g) * K
                : (const uint16_t *)a->w +
                      ((size_t)g * group_chunks + (size_t)((cs - g * cout_g) / per_chunk)) * chunk_u16;
        const uint32_t *xg = (const uint32_t *)a->xp + (size_t)g * rows_g * ldt;
        for (int t = 0; t < tin; t += CT_TB) {
            const int tb = tin - t < CT_TB ? tin - t : CT_TB;
            if (nlen > 32) ct_rows(z, xg, ldt, t, wg, ldw, cin_g, m0, m1, tb, 2);
            else ct_rows(z, xg, ldt, t, wg, ldw, cin_g, m0, m1, tb, 1);
            for (int i = 0; i < tb; i++)
                for (int co = cs; co < ce; co++) {
                    float *yt = a->y + (size_t)co * tout + (size_t)(t + i) * S;
                    const float *zr = z + (size_t)i * CT_COLS + (size_t)(co - cs) * K;
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

/* ---- prompt-sized products with block-quantized weights ---- */

/* In-register transpose of a 16x16 matrix of 32-bit lanes (r[i] = row i
 * before, column i after): 32-bit and 64-bit unpacks make 4x4 blocks inside
 * each 128-bit lane, two rounds of lane shuffles put the blocks in place. */
ALWAYS_INLINE void transpose16_epi32(__m512i r[16]) {
    __m512i t[16], u[16], w[4][4];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int k = 0; k < 4; k++) {
        u[4 * k] = _mm512_unpacklo_epi64(t[4 * k], t[4 * k + 2]);
        u[4 * k + 1] = _mm512_unpackhi_epi64(t[4 * k], t[4 * k + 2]);
        u[4 * k + 2] = _mm512_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);
        u[4 * k + 3] = _mm512_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);
    }
    /* u[4k + m], 128-bit lane L: column 4L + m of rows 4k..4k+3. */
    for (int m = 0; m < 4; m++) {
        w[m][0] = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x88);      /* lanes 0, 2 */
        w[m][1] = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xDD);      /* lanes 1, 3 */
        w[m][2] = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x88);
        w[m][3] = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xDD);
        r[m] = _mm512_shuffle_i32x4(w[m][0], w[m][2], 0x88);
        r[4 + m] = _mm512_shuffle_i32x4(w[m][1], w[m][3], 0x88);
        r[8 + m] = _mm512_shuffle_i32x4(w[m][0], w[m][2], 0xDD);
        r[12 + m] = _mm512_shuffle_i32x4(w[m][1], w[m][3], 0xDD);
    }
}

/* Packed activations for matmul_q_bf16: xp[kp][t] = (bf16(x[t][2kp]),
 * bf16(x[t][2kp+1])) for pair rows [kp0, kp1), rows of round16(T) pairs
 * (zeros past T). Blocks of 16 pair rows x 16 columns go through a register
 * transpose (each x row read as 32 contiguous floats); the unaligned ends of
 * [kp0, kp1) through pack_row's gathers. */
static void mq_pack_x(const float *x, int K, int T, void *xp, int kp0, int kp1) {
    const size_t ldt = (size_t)round16(T);
    uint32_t *dst = xp;
    int a = (kp0 + 15) & ~15, b = kp1 & ~15;
    if (a > b) a = b = kp1;
    for (int kp = kp0; kp < a; kp++)
        pack_row(dst + (size_t)kp * ldt, x + 2 * (size_t)kp, x + 2 * (size_t)kp + 1, K, T);
    for (int kp = b; kp < kp1; kp++)
        pack_row(dst + (size_t)kp * ldt, x + 2 * (size_t)kp, x + 2 * (size_t)kp + 1, K, T);
    for (int t0 = 0; t0 < T; t0 += 16)
        for (int kb = a; kb < b; kb += 16) {
            __m512i r[16];
            for (int i = 0; i < 16; i++) {
                if (t0 + i >= T) {
                    r[i] = _mm512_setzero_si512();
                    continue;
                }
                const float *xr = x + (size_t)(t0 + i) * K + 2 * (size_t)kb;
                r[i] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(xr + 16), _mm512_loadu_ps(xr));
            }
            transpose16_epi32(r);
            for (int j = 0; j < 16; j++)
                _mm512_store_si512((__m512i *)(dst + (size_t)(kb + j) * ldt + t0), r[j]);
        }
}

/* Weight rows [r0, r0 + n) of a Q8_0 / Q4_0 matrix as BF16 (d * q rounded to
 * nearest even), n rows of K contiguous values in wb. */
static void mq_dequant(const void *w, ctts_dtype wdt, int K, int r0, int n, uint16_t *wb) {
    const int nb = K / 32;
    const int q4 = wdt == CTTS_DT_Q4_0;
    const size_t bs = q4 ? 18 : 34, row_bytes = (size_t)nb * bs;
    for (int r = 0; r < n; r++) {
        const unsigned char *row = (const unsigned char *)w + (size_t)(r0 + r) * row_bytes;
        uint16_t *dst = wb + (size_t)r * K;
        for (int b = 0; b < nb; b++) {
            const unsigned char *blk = row + (size_t)b * bs;
            uint16_t dh;
            memcpy(&dh, blk, 2);
            const __m512 d = _mm512_set1_ps(_cvtsh_ss(dh));
            __m512i lo, hi;
            if (q4) {
                const __m128i v = _mm_loadu_si128((const __m128i *)(blk + 2));
                const __m128i m = _mm_set1_epi8(15), e = _mm_set1_epi8(8);
                lo = _mm512_cvtepi8_epi32(_mm_sub_epi8(_mm_and_si128(v, m), e));
                hi = _mm512_cvtepi8_epi32(_mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m), e));
            } else {
                lo = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2)));
                hi = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18)));
            }
            const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_mul_ps(d, _mm512_cvtepi32_ps(hi)),
                                                   _mm512_mul_ps(d, _mm512_cvtepi32_ps(lo)));
            _mm512_storeu_si512((__m512i *)(dst + 32 * b), (__m512i)v);
        }
    }
}

/* Rows j < CB of wb (row stride K) x columns t..t+16*TV-1 of xp, the first
 * n of them stored (lanes are columns: transposed through a small buffer into
 * the rows of y). */
ALWAYS_INLINE void mq_tile(float *y, int ldy, const uint32_t *xp, size_t ldt, const uint16_t *wb,
                           int K, int r0, int t, int n, const int CB, const int TV) {
    __m512 acc[24];
    for (int i = 0; i < CB * TV; i++) acc[i] = _mm512_setzero_ps();
    dp_rows(acc, xp + t, ldt, wb, (size_t)K, K / 2, CB, TV);
    _Alignas(64) float buf[24][16];
    for (int j = 0; j < CB; j++)
        for (int v = 0; v < TV; v++) _mm512_store_ps(buf[v * CB + j], acc[j * TV + v]);
    for (int c = 0; c < n; c++) {
        float *yr = y + (size_t)(t + c) * ldy + r0;
        for (int j = 0; j < CB; j++) yr[j] = buf[(c / 16) * CB + j][c % 16];
    }
}

/* Rows [0, R) of W for all T columns: MQ_ROWS rows dequantized at a time into
 * wb, then column strips of 64 (their packed pairs stay in L2) x blocks of 6
 * rows. */
static void matmul_q_bf16(float *y, int ldy, const void *xp, int T, const void *w, ctts_dtype wdt,
                          int R, int K, uint16_t *wb) {
    const size_t ldt = (size_t)round16(T);
    for (int r0 = 0; r0 < R; r0 += CPU_MQ_BF16_ROWS) {
        const int rn = R - r0 < CPU_MQ_BF16_ROWS ? R - r0 : CPU_MQ_BF16_ROWS;
        mq_dequant(w, wdt, K, r0, rn, wb);
        for (int t = 0; t < T; t += 64) {
            const int tn = T - t < 64 ? T - t : 64, tv = (tn + 15) / 16;
            for (int j = 0; j < rn;) {
                const int cb = rn - j >= 6 ? 6 : 1;
                const uint16_t *wj = wb + (size_t)j * K;
#define MQ_TILE(CB_, TV_) mq_tile(y, ldy, xp, ldt, wj, K, r0 + j, t, tn, CB_, TV_)
                if (cb == 6) {
                    if (tv == 4) MQ_TILE(6, 4); else if (tv == 3) MQ_TILE(6, 3);
                    else if (tv == 2) MQ_TILE(6, 2); else MQ_TILE(6, 1);
                } else {
                    if (tv == 4) MQ_TILE(1, 4); else if (tv == 3) MQ_TILE(1, 3);
                    else if (tv == 2) MQ_TILE(1, 2); else MQ_TILE(1, 1);
                }
#undef MQ_TILE
                j += cb;
            }
        }
    }
}

int cpu_kernels_init_bf16(cpu_kernels *k) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1) return 0; /* no subleaf 1 */
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !((a >> 5) & 1)) return 0;
    k->conv_bf16_rows = bf16_rows;
    k->conv_bf16_pack = bf16_pack;
    k->conv1d_bf16 = conv1d_bf16;
    k->conv_transpose1d_bf16 = conv_transpose1d_bf16;
    k->ct_bf16_packed_bytes = ct_packed_bytes;
    k->ct_bf16_pack_w = ct_pack_w;
    k->mq_bf16_pack_x = mq_pack_x;
    k->matmul_q_bf16 = matmul_q_bf16;
    return 1;
}

#else

int cpu_kernels_init_bf16(cpu_kernels *k) {
    (void)k;
    return 0;
}

#endif
