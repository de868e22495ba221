/*
 * Q8_0 / Q4_0 blocks: reference quantize / dequantize round trip within half
 * a step (a full step where Q4_0 clamps), quantized dot equal to the dot of
 * the dequantized values, SIMD kernels (activation quantizer, matmul_q)
 * against the reference for every ISA tier the host has on awkward sizes,
 * the backend's quantized linear against an f32 linear within the bound the
 * quantization steps give, identical for 1 and 2 threads, and the load-time
 * converter (quant_convert) on every source / target dtype.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cpu/kernels.h"
#include "harness.h"
#include "quant/convert.h"
#include "quant/quant.h"

/* f16 scales round to 11 significant bits: products of two scales are off by
 * up to ~2^-10 relative. */
#define SCALE_REL 1.5e-3

static uint64_t rng = 0x2545f4914f6cdd1dull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill(float *p, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    /* Some blocks of zeros and one with a single outlier: edge cases of the scale. */
    if (n >= 96) {
        memset(p + 32, 0, 32 * sizeof *p);
        p[70] = 50.0f * scale;
    }
}

static void test_block_layout(void) {
    CHECK_EQ_INT(sizeof(block_q8_0), 34);
    CHECK_EQ_INT(sizeof(block_q4_0), 18);
    CHECK_EQ_INT(ctts_dtype_row_bytes(CTTS_DT_Q8_0, 64), 68);
    CHECK_EQ_INT(ctts_dtype_row_bytes(CTTS_DT_Q4_0, 64), 36);
    /* Q4_0 nibble order: value j in the low nibble of byte j, value j+16 in the high one. */
    float x[32];
    for (int i = 0; i < 32; i++) x[i] = i < 16 ? -8.0f : 7.0f;
    block_q4_0 b;
    quant_row_q4_0_ref(x, &b, 32);
    CHECK_NEAR(ctts_f16_to_f32(b.d), 1.0, 0);
    CHECK_EQ_INT(b.qs[0], 0xF0); /* low 0 (-8), high 15 (+7) */
}

static void test_round_trip(void) {
    enum { K = 4096 };
    static float x[K], y[K];
    static block_q8_0 q8[K / 32];
    static block_q4_0 q4[K / 32];
    fill(x, K, 3.0f);
    quant_row_q8_0_ref(x, q8, K);
    dequant_row_q8_0_ref(q8, y, K);
    int bad8 = 0, bad4 = 0;
    for (int i = 0; i < K; i++) {
        const double d = fabs(ctts_f16_to_f32(q8[i / 32].d));
        /* half a step, plus |q| <= 127 times the f16 rounding of the scale (2^-11) */
        if (!(fabs((double)x[i] - y[i]) <= (0.5 + 127.0 / 2048) * d + 1e-7)) bad8++;
    }
    quant_row_q4_0_ref(x, q4, K);
    dequant_row_q4_0_ref(q4, y, K);
    for (int i = 0; i < K; i++) {
        const double d = fabs(ctts_f16_to_f32(q4[i / 32].d));
        if (!(fabs((double)x[i] - y[i]) <= 1.0 * d * (1 + 1e-3) + 1e-7)) bad4++;
    }
    CHECK_EQ_INT(bad8, 0);
    CHECK_EQ_INT(bad4, 0);
    /* The all-zero block stays zero with a zero scale. */
    CHECK(q8[1].d == 0 && q8[1].qs[5] == 0);
}

static void test_dot_ref(void) {
    enum { K = 1024 };
    static float w[K], x[K], wd[K], xd[K];
    static block_q8_0 w8[K / 32], x8[K / 32];
    static block_q4_0 w4[K / 32];
    fill(w, K, 1.0f);
    fill(x, K, 2.0f);
    quant_row_q8_0_ref(w, w8, K);
    quant_row_q8_0_ref(x, x8, K);
    quant_row_q4_0_ref(w, w4, K);
    dequant_row_q8_0_ref(x8, xd, K);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) dequant_row_q8_0_ref(w8, wd, K);
        else dequant_row_q4_0_ref(w4, wd, K);
        double ref = 0, mag = 0;
        for (int i = 0; i < K; i++) {
            ref += (double)wd[i] * xd[i];
            mag += fabs((double)wd[i] * xd[i]);
        }
        const float got = pass == 0 ? dot_q8_0_q8_0_ref(w8, x8, K) : dot_q4_0_q8_0_ref(w4, x8, K);
        CHECK_NEAR(got, ref, 1e-5 * mag + 1e-6);
    }
}

/* Kernel tables of every tier the host supports (index 0 = scalar). */
static int tiers(cpu_kernels *k, int cap) {
    int n = 0;
    static const ctts_cpu_isa isas[] = {CTTS_ISA_SCALAR, CTTS_ISA_AVX2, CTTS_ISA_AVX512};
    for (int i = 0; i < 3 && n < cap; i++) {
        cpu_kernels_init(&k[n], isas[i]);
        if (k[n].isa == isas[i]) n++;
    }
    return n;
}

static void test_simd_quantizer(void) {
    cpu_kernels k[3];
    const int nt = tiers(k, 3);
    enum { K = 4096 + 32 };
    float *buf = malloc((K + 1) * sizeof *buf), *x = buf + 1; /* misaligned */
    block_q8_0 *a = malloc(sizeof *a * (K / 32)), *b = malloc(sizeof *b * (K / 32));
    fill(x, K, 5.0f);
    quant_row_q8_0_ref(x, a, K);
    for (int t = 1; t < nt; t++) {
        k[t].quant_row_q8_0(x, b, K);
        int bad = 0;
        for (int i = 0; i < K / 32; i++) {
            if (a[i].d != b[i].d) bad++;
            /* Ties may round either way (nearest-even vs away from zero). */
            for (int j = 0; j < 32; j++)
                if (abs(a[i].qs[j] - b[i].qs[j]) > 1) bad++;
        }
        if (bad) TEST_FAIL_AT("%s quantizer: %d mismatches", k[t].name, bad);
    }
    free(buf);
    free(a);
    free(b);
}

/* matmul_q of each tier vs the reference table, then vs an f32 product. */
static int matmul_case(const cpu_kernels *k, int nt, ctts_dtype dt, int R, int K, int T) {
    const size_t rb = ctts_dtype_row_bytes(dt, K), xb = (size_t)K / 32 * sizeof(block_q8_0);
    float *w = malloc((size_t)R * K * sizeof *w), *x = malloc((size_t)T * K * sizeof *x);
    char *wq = malloc(rb * R + 2), *xq = malloc(xb * T);
    float *y0 = malloc((size_t)T * R * sizeof *y0), *y1 = malloc((size_t)T * R * sizeof *y1);
    fill(w, (size_t)R * K, 0.5f);
    fill(x, (size_t)T * K, 2.0f);
    char *wqm = wq + 2; /* rows off 4/16/32-byte alignment (blocks need only 2: the f16 scale) */
    for (int r = 0; r < R; r++) {
        if (dt == CTTS_DT_Q8_0) quant_row_q8_0_ref(w + (size_t)r * K, (block_q8_0 *)(wqm + rb * r), K);
        else quant_row_q4_0_ref(w + (size_t)r * K, (block_q4_0 *)(wqm + rb * r), K);
    }
    for (int t = 0; t < T; t++) quant_row_q8_0_ref(x + (size_t)t * K, (block_q8_0 *)(xq + xb * t), K);
    int ok = 1;
    k[0].matmul_q[dt](y0, R, xq, wqm, R, K, T);
    for (int i = 1; i < nt && ok; i++) {
        k[i].matmul_q[dt](y1, R, xq, wqm, R, K, T);
        for (int t = 0; t < T && ok; t++)
            for (int r = 0; r < R && ok; r++) {
                double mag = 0;
                for (int j = 0; j < K; j++) mag += fabs((double)w[(size_t)r * K + j] * x[(size_t)t * K + j]);
                const double a = y0[(size_t)t * R + r], b = y1[(size_t)t * R + r];
                if (!(fabs(a - b) <= 1e-5 * mag + 1e-6)) {
                    fprintf(stderr, "    %s %s R=%d K=%d T=%d: [%d,%d] %g vs ref %g\n", k[i].name,
                            ctts_dtype_name(dt), R, K, T, t, r, b, a);
                    ok = 0;
                }
            }
    }
    /* Against the f32 product: each term is off by the two quantization steps. */
    for (int t = 0; t < T && ok; t++)
        for (int r = 0; r < R && ok; r++) {
            double exact = 0, bound = 0;
            for (int j = 0; j < K; j++) {
                const float wv = w[(size_t)r * K + j], xv = x[(size_t)t * K + j];
                const block_q8_0 *xbk = (const block_q8_0 *)(xq + xb * t) + j / 32;
                const double dw = dt == CTTS_DT_Q8_0
                                      ? fabs(ctts_f16_to_f32(((const block_q8_0 *)(wqm + rb * r))[j / 32].d)) * 0.5
                                      : fabs(ctts_f16_to_f32(((const block_q4_0 *)(wqm + rb * r))[j / 32].d));
                const double dx = fabs(ctts_f16_to_f32(xbk->d)) * 0.5;
                exact += (double)wv * xv;
                bound += fabs(wv) * dx + fabs(xv) * dw + dw * dx + SCALE_REL * fabs((double)wv * xv);
            }
            if (!(fabs(y0[(size_t)t * R + r] - exact) <= bound * 1.01 + 1e-5)) {
                fprintf(stderr, "    %s vs f32 R=%d K=%d: %g vs %g (bound %g)\n", ctts_dtype_name(dt),
                        R, K, y0[(size_t)t * R + r], exact, bound);
                ok = 0;
            }
        }
    free(w);
    free(x);
    free(wq);
    free(xq);
    free(y0);
    free(y1);
    return ok;
}

static void test_matmul_q(void) {
    cpu_kernels k[3];
    const int nt = tiers(k, 3);
    static const int Rs[] = {1, 3, 5, 33}, Ks[] = {32, 64, 4096}, Ts[] = {1, 2, 5};
    for (int d = 0; d < 2; d++)
        for (int ri = 0; ri < 4; ri++)
            for (int ki = 0; ki < 3; ki++)
                for (int ti = 0; ti < 3; ti++)
                    CHECK(matmul_case(k, nt, d ? CTTS_DT_Q4_0 : CTTS_DT_Q8_0, Rs[ri], Ks[ki], Ts[ti]));
}

/* Backend linear with quantized weights: 1 and 2 threads bit-identical, close to f32. */
static void test_backend_linear(void) {
    enum { N = 37, K = 256, T = 3 };
    static float w[N * K], x[T * K], yf[T * N], y1[T * N], y2[T * N], bias[N];
    fill(w, N * K, 1.0f);
    fill(x, T * K, 1.0f);
    fill(bias, N, 1.0f);
    ctts_tensor wf = {.dtype = CTTS_DT_F32, .ndim = 2, .shape = {N, K}, .data = w, .nbytes = sizeof w};
    for (int d = 0; d < 2; d++) {
        const ctts_dtype dt = d ? CTTS_DT_Q4_0 : CTTS_DT_Q8_0;
        void *data;
        size_t bytes;
        char err[256];
        REQUIRE(quant_convert(&wf, dt, 2, &data, &bytes, err, sizeof err) == CTTS_OK);
        ctts_tensor wq = {.dtype = dt, .ndim = 2, .shape = {N, K}, .data = data, .nbytes = bytes};
        for (int isa = CTTS_ISA_SCALAR; isa <= CTTS_ISA_AVX512; isa++) {
            ctts_backend *b1 = ctts_backend_cpu_new(1, isa), *b2 = ctts_backend_cpu_new(2, isa);
            REQUIRE(b1 && b2);
            CHECK(b1->supports_dtype(b1, dt));
            b1->linear(b1, yf, x, &wf, bias, T);
            b1->linear(b1, y1, x, &wq, bias, T);
            b2->linear(b2, y2, x, &wq, bias, T);
            CHECK(memcmp(y1, y2, sizeof y1) == 0);
            double err2 = 0, ref2 = 0;
            for (int i = 0; i < T * N; i++) {
                err2 += (y1[i] - yf[i]) * (double)(y1[i] - yf[i]);
                ref2 += (double)yf[i] * yf[i];
            }
            /* Relative RMS error: ~0.5% for 8 bits, ~10% for 4 bits on uniform data. */
            CHECK(sqrt(err2 / ref2) < (d ? 0.12 : 0.012));
            b1->destroy(b1);
            b2->destroy(b2);
        }
        free(data);
    }
}

static void test_convert(void) {
    enum { R = 5, K = 96 };
    static float w[R * K], back[R * K];
    fill(w, R * K, 1.0f);
    ctts_tensor src = {.dtype = CTTS_DT_F32, .ndim = 2, .shape = {R, K}, .data = w,
                       .nbytes = sizeof w, .name = "t"};
    static const ctts_dtype to[] = {CTTS_DT_F32, CTTS_DT_BF16, CTTS_DT_F16, CTTS_DT_Q8_0,
                                    CTTS_DT_Q4_0};
    char err[256];
    for (int i = 0; i < 5; i++) {
        void *d;
        size_t n;
        REQUIRE(quant_convert(&src, to[i], 3, &d, &n, err, sizeof err) == CTTS_OK);
        CHECK_EQ_INT(n, ctts_dtype_row_bytes(to[i], K) * R);
        for (int r = 0; r < R; r++) {
            const char *row = (const char *)d + ctts_dtype_row_bytes(to[i], K) * r;
            float *o = back + r * K;
            for (int j = 0; j < K; j++) {
                uint16_t h;
                if (to[i] == CTTS_DT_F32) memcpy(&o[j], row + 4 * j, 4);
                else if (to[i] == CTTS_DT_BF16 || to[i] == CTTS_DT_F16) {
                    memcpy(&h, row + 2 * j, 2);
                    o[j] = to[i] == CTTS_DT_BF16 ? ctts_bf16_to_f32(h) : ctts_f16_to_f32(h);
                }
            }
            if (to[i] == CTTS_DT_Q8_0) dequant_row_q8_0_ref((const block_q8_0 *)row, o, K);
            if (to[i] == CTTS_DT_Q4_0) dequant_row_q4_0_ref((const block_q4_0 *)row, o, K);
        }
        double maxerr = 0;
        for (int j = 0; j < R * K; j++) maxerr = fmax(maxerr, fabs(back[j] - w[j]));
        static const double tol[] = {0, 4e-3 * 50, 5e-4 * 50, 50.0 / 127, 50.0 / 8};
        CHECK(maxerr <= tol[i]);
        free(d);
    }
    /* Errors: block types need rows of 32; integer sources are not converted. */
    ctts_tensor odd = src;
    odd.shape[1] = 33;
    odd.shape[0] = 1;
    void *d = NULL;
    size_t n;
    CHECK(quant_convert(&odd, CTTS_DT_Q8_0, 1, &d, &n, err, sizeof err) == CTTS_E_UNSUPPORTED);
    CHECK_STR_CONTAINS(err, "'t'");
    CHECK(d == NULL);
    ctts_tensor ints = src;
    ints.dtype = CTTS_DT_I32;
    CHECK(!quant_can_convert(&ints, CTTS_DT_Q8_0));
    CHECK(quant_weight_dtype(CTTS_WEIGHTS_KEEP) == CTTS_DT_COUNT);
    CHECK(quant_weight_dtype(CTTS_WEIGHTS_Q4_0) == CTTS_DT_Q4_0);
}

TEST_MAIN(T(test_block_layout), T(test_round_trip), T(test_dot_ref), T(test_simd_quantizer),
          T(test_matmul_q), T(test_backend_linear), T(test_convert))
