/*
 * Backend ops added for the Qwen3 decoder (rms_norm, rope_half, attention_gqa,
 * mul, get_rows), on the CPU backend, against straightforward double-precision
 * references written here. Also: results identical for 1 and 3 threads, the
 * scalar and the best ISA tier agree, in-place use works.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/rng.h"
#include "base/tensor.h"
#include "ctts.h"
#include "harness.h"
#include "quant/quant.h"

static void fill(float *x, size_t n, uint64_t seed, float scale) {
    ctts_rng r;
    ctts_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = scale * ctts_rng_normal(&r);
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

static void test_rms_norm(void) {
    ctts_backend *be = ctts_backend_cpu_new(2, CTTS_ISA_AUTO);
    REQUIRE(be);
    const int T = 5, D = 37;
    float *x = be->alloc(be, sizeof(float) * T * D), *y = be->alloc(be, sizeof(float) * T * D);
    float w[37];
    fill(x, (size_t)T * D, 1, 3.0f);
    fill(w, D, 2, 1.0f);
    be->rms_norm(be, y, x, w, T, D, 1e-6f);
    double worst = 0;
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int d = 0; d < D; d++) ss += (double)x[t * D + d] * x[t * D + d];
        const double r = 1.0 / sqrt(ss / D + 1e-6);
        for (int d = 0; d < D; d++) {
            double want = x[t * D + d] * r * w[d];
            double e = fabs(want - y[t * D + d]);
            if (e > worst) worst = e;
        }
    }
    CHECK(worst < 1e-5);
    /* No weight, in place. */
    float *z = be->alloc(be, sizeof(float) * T * D);
    memcpy(z, x, sizeof(float) * T * D);
    be->rms_norm(be, z, z, NULL, T, D, 1e-6f);
    double ss = 0;
    for (int d = 0; d < D; d++) ss += (double)z[d] * z[d];
    CHECK_NEAR(ss / D, 1.0, 1e-4);
    be->free_buf(be, x);
    be->free_buf(be, y);
    be->free_buf(be, z);
    be->destroy(be);
}

static void test_rope_half(void) {
    ctts_backend *be = ctts_backend_cpu_new(1, CTTS_ISA_AUTO);
    REQUIRE(be);
    const int T = 3, H = 2, Dh = 8, stride = 20, pos0 = 7;
    const float theta = 1e6f;
    float *x = be->alloc(be, sizeof(float) * T * stride), *x0 = malloc(sizeof(float) * T * stride);
    fill(x, (size_t)T * stride, 3, 1.0f);
    memcpy(x0, x, sizeof(float) * T * stride);
    be->rope_half(be, x, T, H, Dh, stride, pos0, theta);
    double worst = 0;
    for (int t = 0; t < T; t++) {
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Dh / 2; i++) {
                const double f = 1.0 / pow(theta, 2.0 * i / Dh), a = (pos0 + t) * f;
                const float *p = x0 + t * stride + h * Dh;
                const double w0 = p[i] * cos(a) - p[i + Dh / 2] * sin(a);
                const double w1 = p[i + Dh / 2] * cos(a) + p[i] * sin(a);
                const float *q = x + t * stride + h * Dh;
                worst = fmax(worst, fmax(fabs(w0 - q[i]), fabs(w1 - q[i + Dh / 2])));
            }
        /* Floats past the heads are untouched. */
        for (int j = H * Dh; j < stride; j++) CHECK(x[t * stride + j] == x0[t * stride + j]);
    }
    CHECK(worst < 2e-5);
    /* Position 0 is the identity. */
    memcpy(x, x0, sizeof(float) * T * stride);
    be->rope_half(be, x, 1, H, Dh, stride, 0, theta);
    CHECK(max_abs_diff(x, x0, (size_t)stride) == 0.0);
    free(x0);
    be->free_buf(be, x);
    be->destroy(be);
}

/* Naive GQA attention in double: query t at key index q_pos0 + t. */
static void gqa_ref(float *out, const float *q, const float *k, const float *v, int T, int n_kv,
                    int q_pos0, int H, int Hkv, int Dh, int window) {
    const int rep = H / Hkv, QD = H * Dh, KD = Hkv * Dh;
    double *s = malloc(sizeof(double) * (size_t)n_kv);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            const int g = h / rep, qp = q_pos0 + t;
            double mx = -INFINITY;
            for (int j = 0; j < n_kv; j++) {
                const int vis = j <= qp && (window <= 0 || qp - j < window);
                double acc = 0;
                for (int d = 0; d < Dh; d++) acc += (double)q[t * QD + h * Dh + d] * k[j * KD + g * Dh + d];
                s[j] = vis ? acc / sqrt((double)Dh) : -INFINITY;
                if (s[j] > mx) mx = s[j];
            }
            double den = 0;
            for (int j = 0; j < n_kv; j++) den += s[j] == -INFINITY ? 0 : exp(s[j] - mx);
            for (int d = 0; d < Dh; d++) {
                double acc = 0;
                for (int j = 0; j < n_kv; j++)
                    if (s[j] != -INFINITY) acc += exp(s[j] - mx) / den * v[j * KD + g * Dh + d];
                out[t * QD + h * Dh + d] = (float)acc;
            }
        }
    free(s);
}

static void run_gqa_case(int T, int n_kv, int H, int Hkv, int Dh, int window) {
    const int q_pos0 = n_kv - T, QD = H * Dh, KD = Hkv * Dh;
    ctts_backend *b1 = ctts_backend_cpu_new(1, CTTS_ISA_AUTO);
    ctts_backend *b3 = ctts_backend_cpu_new(3, CTTS_ISA_AUTO);
    ctts_backend *bs = ctts_backend_cpu_new(1, CTTS_ISA_SCALAR);
    REQUIRE(b1 && b3 && bs);
    float *q = malloc(sizeof(float) * T * QD), *k = malloc(sizeof(float) * n_kv * KD),
          *v = malloc(sizeof(float) * n_kv * KD), *o1 = malloc(sizeof(float) * T * QD),
          *o3 = malloc(sizeof(float) * T * QD), *os = malloc(sizeof(float) * T * QD),
          *r = malloc(sizeof(float) * T * QD);
    fill(q, (size_t)T * QD, 10 + T, 1.0f);
    fill(k, (size_t)n_kv * KD, 20 + n_kv, 1.0f);
    fill(v, (size_t)n_kv * KD, 30 + H, 1.0f);
    b1->attention_gqa(b1, o1, q, QD, k, v, KD, T, n_kv, q_pos0, H, Hkv, Dh, window);
    b3->attention_gqa(b3, o3, q, QD, k, v, KD, T, n_kv, q_pos0, H, Hkv, Dh, window);
    bs->attention_gqa(bs, os, q, QD, k, v, KD, T, n_kv, q_pos0, H, Hkv, Dh, window);
    gqa_ref(r, q, k, v, T, n_kv, q_pos0, H, Hkv, Dh, window);
    CHECK(max_abs_diff(o1, r, (size_t)T * QD) < 2e-5);
    CHECK(memcmp(o1, o3, sizeof(float) * T * QD) == 0); /* thread count does not matter */
    CHECK(max_abs_diff(os, r, (size_t)T * QD) < 2e-5);
    /* With H_kv == H it equals the plain attention op. */
    if (H == Hkv) {
        b1->attention(b1, o3, q, QD, k, v, KD, T, n_kv, q_pos0, H, Dh, window);
        CHECK(memcmp(o1, o3, sizeof(float) * T * QD) == 0);
    }
    free(q), free(k), free(v), free(o1), free(o3), free(os), free(r);
    b1->destroy(b1), b3->destroy(b3), bs->destroy(bs);
}

static void test_attention_gqa(void) {
    run_gqa_case(1, 1, 4, 2, 16, 0);    /* first decode step */
    run_gqa_case(14, 14, 4, 2, 16, 0);  /* prefill */
    run_gqa_case(1, 90, 16, 8, 128, 0); /* real talker head shape, two key blocks */
    run_gqa_case(3, 40, 6, 2, 8, 0);
    run_gqa_case(5, 77, 4, 4, 8, 9);    /* no grouping, window */
    run_gqa_case(2, 10, 8, 1, 4, 0);    /* multi-query */
    /* The vector kernel (AVX-512 hosts: Dh a multiple of 16 up to 256, up to
     * 4 heads per KV head) and its edges; 8 heads per KV head fall back. */
    run_gqa_case(1, 300, 16, 8, 128, 0); /* long decode: 5 key blocks */
    run_gqa_case(20, 150, 8, 2, 64, 37); /* 4 heads per KV head, window */
    run_gqa_case(4, 65, 2, 2, 256, 0);
    run_gqa_case(3, 70, 16, 2, 32, 0);
}

/* kv_store_f16 + attention_gqa_f16: the cache holds each value rounded to
 * half precision at (g * capacity + row) * Dh (checked bit by bit, rows stored
 * in two calls), and attention over it equals the double reference on the
 * rounded values, for 1 and 3 threads and the scalar tier, bit for bit what
 * attention_gqa gives on them. */
static void run_gqa_f16_case(int T, int n_kv, int H, int Hkv, int Dh, int window) {
    const int q_pos0 = n_kv - T, QD = H * Dh, KD = Hkv * Dh, cap = n_kv + 5;
    ctts_backend *b1 = ctts_backend_cpu_new(1, CTTS_ISA_AUTO);
    ctts_backend *b3 = ctts_backend_cpu_new(3, CTTS_ISA_AUTO);
    ctts_backend *bs = ctts_backend_cpu_new(1, CTTS_ISA_SCALAR);
    REQUIRE(b1 && b3 && bs);
    const size_t nq = (size_t)T * QD, nk = (size_t)n_kv * KD, nc = (size_t)cap * KD;
    float *q = malloc(4 * nq), *k = malloc(4 * nk), *v = malloc(4 * nk), *o1 = malloc(4 * nq),
          *o3 = malloc(4 * nq), *os = malloc(4 * nq), *r = malloc(4 * nq);
    uint16_t *kc = malloc(2 * nc), *vc = malloc(2 * nc);
    REQUIRE(q && k && v && o1 && o3 && os && r && kc && vc);
    fill(q, nq, 11 + T, 1.0f);
    fill(k, nk, 21 + n_kv, 1.0f);
    fill(v, nk, 31 + H, 1.0f);
    k[0] = 1e6f; /* saturates to 65504 */
    const int split = n_kv / 3;
    b1->kv_store_f16(b1, kc, vc, k, v, KD, split, 0, Hkv, Dh, cap);
    b1->kv_store_f16(b1, kc, vc, k + (size_t)split * KD, v + (size_t)split * KD, KD,
                     n_kv - split, split, Hkv, Dh, cap);
    int bad = 0;
    for (int j = 0; j < n_kv; j++)
        for (int g = 0; g < Hkv; g++)
            for (int d = 0; d < Dh; d++) {
                const size_t src = (size_t)j * KD + (size_t)g * Dh + d;
                const size_t dst = ((size_t)g * cap + j) * Dh + d;
                const float kk = k[src] > 65504.0f ? 65504.0f : k[src];
                bad += kc[dst] != ctts_f32_to_f16(kk) || vc[dst] != ctts_f32_to_f16(v[src]);
                k[src] = ctts_f16_to_f32(kc[dst]); /* the reference reads what is cached */
                v[src] = ctts_f16_to_f32(vc[dst]);
            }
    CHECK_EQ_INT(bad, 0);
    CHECK(k[0] == 65504.0f);
    b1->attention_gqa_f16(b1, o1, q, QD, kc, vc, cap, T, n_kv, q_pos0, H, Hkv, Dh, window);
    b3->attention_gqa_f16(b3, o3, q, QD, kc, vc, cap, T, n_kv, q_pos0, H, Hkv, Dh, window);
    bs->attention_gqa_f16(bs, os, q, QD, kc, vc, cap, T, n_kv, q_pos0, H, Hkv, Dh, window);
    gqa_ref(r, q, k, v, T, n_kv, q_pos0, H, Hkv, Dh, window);
    const double tol = 2e-5 * 65504.0; /* key 0 is large: scores reach ~1e5 */
    CHECK(max_abs_diff(o1, r, nq) < tol);
    CHECK(max_abs_diff(os, r, nq) < tol);
    CHECK(memcmp(o1, o3, 4 * nq) == 0);
    /* Bit-identical to attention_gqa on the widened values (one kernel, another load). */
    b1->attention_gqa(b1, o3, q, QD, k, v, KD, T, n_kv, q_pos0, H, Hkv, Dh, window);
    CHECK(memcmp(o1, o3, 4 * nq) == 0);
    bs->attention_gqa(bs, o3, q, QD, k, v, KD, T, n_kv, q_pos0, H, Hkv, Dh, window);
    CHECK(memcmp(os, o3, 4 * nq) == 0);
    free(q), free(k), free(v), free(o1), free(o3), free(os), free(r), free(kc), free(vc);
    b1->destroy(b1), b3->destroy(b3), bs->destroy(bs);
}

static void test_attention_gqa_f16(void) {
    run_gqa_f16_case(1, 1, 4, 2, 16, 0);
    run_gqa_f16_case(14, 14, 4, 2, 16, 0);   /* prefill */
    run_gqa_f16_case(1, 300, 16, 8, 128, 0); /* talker shape, long decode */
    run_gqa_f16_case(20, 150, 8, 2, 64, 37); /* window */
    run_gqa_f16_case(3, 70, 16, 2, 32, 0);   /* 8 heads per KV head: fallback */
    run_gqa_f16_case(2, 33, 4, 4, 24, 0);    /* Dh the vector kernel does not take */
}

static void test_mul(void) {
    ctts_backend *be = ctts_backend_cpu_new(2, CTTS_ISA_AUTO);
    REQUIRE(be);
    const size_t n = 50001; /* several chunks */
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)),
          *y = malloc(n * sizeof(float));
    fill(a, n, 5, 1.0f);
    fill(b, n, 6, 1.0f);
    be->mul(be, y, a, b, n);
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += y[i] != a[i] * b[i];
    CHECK_EQ_INT(bad, 0);
    be->mul(be, a, a, b, n); /* in place */
    CHECK(memcmp(a, y, n * sizeof(float)) == 0);
    free(a), free(b), free(y);
    be->destroy(be);
}

static void test_get_rows(void) {
    ctts_backend *be = ctts_backend_cpu_new(1, CTTS_ISA_AUTO);
    REQUIRE(be);
    enum { R = 5, D = 64 };
    float src[R * D];
    fill(src, R * D, 7, 2.0f);
    const int32_t ids[4] = {3, 0, 3, 4};
    float y[4 * D];

    /* F32: exact. */
    ctts_tensor w = {.dtype = CTTS_DT_F32, .ndim = 2, .shape = {R, D}, .data = src,
                     .nbytes = sizeof src};
    be->get_rows(be, y, &w, ids, 4);
    for (int i = 0; i < 4; i++) CHECK(memcmp(y + i * D, src + ids[i] * D, D * sizeof(float)) == 0);

    /* BF16 / F16: exact against the scalar conversions (odd byte offset too). */
    unsigned char *raw = malloc(R * D * 2 + 1);
    for (int dt = 0; dt < 2; dt++) {
        uint16_t h;
        for (int i = 0; i < R * D; i++) {
            h = dt ? ctts_f32_to_f16(src[i]) : ctts_f32_to_bf16(src[i]);
            memcpy(raw + 1 + 2 * i, &h, 2);
        }
        ctts_tensor wh = {.dtype = dt ? CTTS_DT_F16 : CTTS_DT_BF16, .ndim = 2, .shape = {R, D},
                          .data = raw + 1, .nbytes = R * D * 2};
        be->get_rows(be, y, &wh, ids, 4);
        int bad = 0;
        for (int i = 0; i < 4; i++)
            for (int d = 0; d < D; d++) {
                memcpy(&h, raw + 1 + 2 * (ids[i] * D + d), 2);
                bad += y[i * D + d] != (dt ? ctts_f16_to_f32(h) : ctts_bf16_to_f32(h));
            }
        CHECK_EQ_INT(bad, 0);
    }
    free(raw);

    /* Q8_0: scale 0.5, values -64..63 -> exact products. */
    unsigned char q8[R * (D / 32) * 34];
    for (int b = 0; b < R * (D / 32); b++) {
        uint16_t h = ctts_f32_to_f16(0.5f);
        memcpy(q8 + b * 34, &h, 2);
        for (int j = 0; j < 32; j++) q8[b * 34 + 2 + j] = (unsigned char)(int8_t)((b * 7 + j) % 128 - 64);
    }
    ctts_tensor w8 = {.dtype = CTTS_DT_Q8_0, .ndim = 2, .shape = {R, D}, .data = q8,
                      .nbytes = sizeof q8};
    be->get_rows(be, y, &w8, ids, 4);
    {
        const int b = ids[0] * 2 + 1, j = 5; /* row 3, second block, element 5 */
        CHECK(y[0 * D + 32 + j] == 0.5f * (float)(int8_t)q8[b * 34 + 2 + j]);
    }
    /* Q4_0: low nibbles are elements 0..15, high nibbles 16..31, minus 8. */
    unsigned char q4[R * (D / 32) * 18];
    for (int b = 0; b < R * (D / 32); b++) {
        uint16_t h = ctts_f32_to_f16(0.25f);
        memcpy(q4 + b * 18, &h, 2);
        for (int j = 0; j < 16; j++) q4[b * 18 + 2 + j] = (unsigned char)((j & 15) | ((15 - j) << 4));
    }
    ctts_tensor w4 = {.dtype = CTTS_DT_Q4_0, .ndim = 2, .shape = {R, D}, .data = q4,
                      .nbytes = sizeof q4};
    be->get_rows(be, y, &w4, ids, 1);
    CHECK(y[0] == 0.25f * (0 - 8));
    CHECK(y[3] == 0.25f * (3 - 8));
    CHECK(y[16] == 0.25f * (15 - 8));
    CHECK(y[16 + 3] == 0.25f * (12 - 8));

    /* An id out of range gives zeros, not a read out of bounds. */
    const int32_t bad_ids[2] = {R, -1};
    for (int i = 0; i < 2 * D; i++) y[i] = 1.0f;
    be->get_rows(be, y, &w, bad_ids, 2);
    int nz = 0;
    for (int i = 0; i < 2 * D; i++) nz += y[i] != 0.0f;
    CHECK_EQ_INT(nz, 0);
    be->destroy(be);
}

/* linear_multi (q/k/v and gate/up in one pass) gives exactly what one linear()
 * per weight gives: every row is the same kernel on the same prepared x, only
 * the split across threads is shared. Weights of 3 dtypes, row counts that
 * are not multiples of the 4-row block, few and many activation rows (the
 * prompt path runs the weights one at a time), 1 and 2 threads. */
static void test_linear_multi(void) {
    const int K = 96, Ns[3] = {37, 8, 21};
    const ctts_dtype dts[3] = {CTTS_DT_F32, CTTS_DT_BF16, CTTS_DT_Q8_0};
    const int Ts[3] = {1, 3, 30};
    float *wf = malloc(sizeof(float) * 37 * K);
    float *x = malloc(sizeof(float) * 30 * K);
    fill(x, (size_t)30 * K, 11, 1.0f);
    for (int nt = 1; nt <= 2; nt++) {
        ctts_backend *be = ctts_backend_cpu_new(nt, CTTS_ISA_AUTO);
        REQUIRE(be);
        for (int d = 0; d < 3; d++) {
            if (!be->supports_dtype(be, dts[d])) continue;
            const size_t rb = ctts_dtype_row_bytes(dts[d], K);
            ctts_tensor w[3];
            void *wd[3];
            for (int i = 0; i < 3; i++) {
                fill(wf, (size_t)Ns[i] * K, 20 + (uint64_t)i, 0.5f);
                wd[i] = malloc(rb * Ns[i]);
                for (int r = 0; r < Ns[i]; r++) {
                    const float *src = wf + (size_t)r * K;
                    char *dst = (char *)wd[i] + rb * r;
                    if (dts[d] == CTTS_DT_F32) memcpy(dst, src, rb);
                    else if (dts[d] == CTTS_DT_BF16)
                        for (int k = 0; k < K; k++) {
                            uint16_t h = ctts_f32_to_bf16(src[k]);
                            memcpy(dst + 2 * k, &h, 2);
                        }
                    else quant_row_q8_0_ref(src, (block_q8_0 *)dst, K);
                }
                w[i] = (ctts_tensor){.dtype = dts[d], .ndim = 2, .shape = {Ns[i], K},
                                     .data = wd[i], .nbytes = rb * Ns[i]};
            }
            for (int ti = 0; ti < 3; ti++) {
                const int T = Ts[ti];
                float *one[3], *joint[3];
                for (int i = 0; i < 3; i++) {
                    one[i] = malloc(sizeof(float) * T * Ns[i]);
                    joint[i] = malloc(sizeof(float) * T * Ns[i]);
                    for (int j = 0; j < T * Ns[i]; j++) joint[i][j] = NAN;
                    be->linear(be, one[i], x, &w[i], NULL, T);
                }
                const ctts_tensor *const wp[3] = {&w[0], &w[1], &w[2]};
                be->linear_multi(be, 3, joint, x, wp, T);
                int same = 1;
                for (int i = 0; i < 3; i++)
                    same &= memcmp(one[i], joint[i], sizeof(float) * T * Ns[i]) == 0;
                if (!same)
                    TEST_FAIL_AT("%s T=%d threads %d: linear_multi differs from linear",
                                 ctts_dtype_name(dts[d]), T, nt);
                if (dts[d] == CTTS_DT_F32) { /* and both are the product */
                    double err = 0;
                    for (int t = 0; t < T; t++)
                        for (int r = 0; r < Ns[2]; r++) {
                            double ref = 0;
                            for (int k = 0; k < K; k++)
                                ref += (double)x[t * K + k] * ((const float *)wd[2])[r * K + k];
                            err = fmax(err, fabs(ref - joint[2][t * Ns[2] + r]));
                        }
                    CHECK(err < 1e-4);
                }
                for (int i = 0; i < 3; i++) {
                    free(one[i]);
                    free(joint[i]);
                }
            }
            for (int i = 0; i < 3; i++) free(wd[i]);
        }
        be->destroy(be);
    }
    free(wf);
    free(x);
}

TEST_MAIN(T(test_rms_norm), T(test_rope_half), T(test_attention_gqa), T(test_attention_gqa_f16), T(test_mul), T(test_get_rows),
          T(test_linear_multi))
