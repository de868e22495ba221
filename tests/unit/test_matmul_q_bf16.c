/*
 * Prompt-sized products with block-quantized weights as BF16 products
 * (kernels.h matmul_q_bf16, AVX512_BF16 hosts): against a double-precision
 * reference of exactly those semantics: x rounded to BF16, each Q8_0 / Q4_0
 * weight dequantized (d * q) and rounded to BF16, products summed exactly.
 * Bound: |y - ref| <= 1e-5 * (|bias| + sum of |products|) + 1e-6.
 *
 * Kernel: R 1..100 (every remainder of the 6-row tiles and the 48-row
 * dequantization blocks), K 32, 96, 1024, T 1..130 (every remainder of the
 * 16-column vectors and 64-column strips), ldy wider than R (the columns past
 * R stay untouched). Backend linear: from 24 rows on it takes this path (same
 * bound), below it the 8-bit path (the old bound); 1 and 2 threads give the
 * same bits either way.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cpu/kernels.h"
#include "harness.h"
#include "quant/quant.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) { return test_frand(&rng_state); }

typedef struct {
    ctts_dtype dt;
    int R, K, T;
    void *w;            /* R rows of K/32 blocks */
    float *x, *bias;    /* [T, K], [R] or NULL */
    double *ref, *mag;  /* [T, R] */
} mq_case;

static void case_make(mq_case *c, ctts_dtype dt, int R, int K, int T, int with_bias) {
    memset(c, 0, sizeof *c);
    c->dt = dt;
    c->R = R;
    c->K = K;
    c->T = T;
    const size_t rb = ctts_dtype_row_bytes(dt, K);
    c->w = malloc(rb * R);
    c->x = malloc((size_t)T * K * sizeof *c->x);
    c->ref = calloc((size_t)T * R, sizeof *c->ref);
    c->mag = calloc((size_t)T * R, sizeof *c->mag);
    float *row = malloc((size_t)K * sizeof *row), *wv = malloc((size_t)R * K * sizeof *wv);
    for (int r = 0; r < R; r++) {
        for (int k = 0; k < K; k++) row[k] = frand() * (1 + r % 3);
        char *dst = (char *)c->w + rb * r;
        if (dt == CTTS_DT_Q4_0) {
            quant_row_q4_0_ref(row, (block_q4_0 *)dst, K);
            dequant_row_q4_0_ref((const block_q4_0 *)dst, wv + (size_t)r * K, K);
        } else {
            quant_row_q8_0_ref(row, (block_q8_0 *)dst, K);
            dequant_row_q8_0_ref((const block_q8_0 *)dst, wv + (size_t)r * K, K);
        }
    }
    for (size_t i = 0; i < (size_t)T * K; i++) c->x[i] = frand() * 3;
    if (with_bias) {
        c->bias = malloc((size_t)R * sizeof *c->bias);
        for (int r = 0; r < R; r++) c->bias[r] = frand();
    }
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            double s = c->bias ? c->bias[r] : 0, m = c->bias ? fabs(c->bias[r]) : 0;
            for (int k = 0; k < K; k++) {
                const double p = (double)cpu_round_bf16(c->x[(size_t)t * K + k]) *
                                 cpu_round_bf16(wv[(size_t)r * K + k]);
                s += p;
                m += fabs(p);
            }
            c->ref[(size_t)t * R + r] = s;
            c->mag[(size_t)t * R + r] = m;
        }
    free(row);
    free(wv);
}

static void case_free(mq_case *c) {
    free(c->w);
    free(c->x);
    free(c->bias);
    free(c->ref);
    free(c->mag);
}

/* y [T, ldy]: the first R columns within the bound of the reference. */
static int within_bound(const mq_case *c, const float *y, int ldy, const char *what) {
    for (int t = 0; t < c->T; t++)
        for (int r = 0; r < c->R; r++) {
            const size_t i = (size_t)t * c->R + r;
            const double v = y[(size_t)t * ldy + r];
            if (!(fabs(v - c->ref[i]) <= 1e-5 * c->mag[i] + 1e-6)) {
                TEST_FAIL_AT("%s %s R=%d K=%d T=%d at t=%d r=%d: %.9g vs %.9g", what,
                             ctts_dtype_name(c->dt), c->R, c->K, c->T, t, r, v, c->ref[i]);
                return 0;
            }
        }
    return 1;
}

static void test_kernel_grid(void) {
    cpu_kernels k;
    cpu_kernels_init(&k, CTTS_ISA_AUTO);
    if (!k.matmul_q_bf16) SKIP("the host has no AVX512_BF16");
    static const int RS[] = {1, 5, 6, 7, 48, 53, 100};
    static const int KS[] = {32, 96, 1024};
    static const int TS[] = {1, 15, 16, 17, 64, 65, 130};
    for (int d = 0; d < 2; d++)
        for (size_t ri = 0; ri < sizeof RS / sizeof *RS; ri++)
            for (size_t ki = 0; ki < sizeof KS / sizeof *KS; ki++)
                for (size_t ti = 0; ti < sizeof TS / sizeof *TS; ti++) {
                    const int R = RS[ri], K = KS[ki], T = TS[ti], ldy = R + 3;
                    if (K == 1024 && (R > 53 || T > 65)) continue; /* keep the reference quick */
                    mq_case c;
                    case_make(&c, d ? CTTS_DT_Q4_0 : CTTS_DT_Q8_0, R, K, T, 0);
                    const size_t ldt = (size_t)((T + 15) & ~15);
                    void *xp = aligned_alloc(64, (size_t)K / 2 * ldt * 4);
                    uint16_t *wb = malloc((size_t)CPU_MQ_BF16_ROWS * K * sizeof *wb);
                    float *y = malloc((size_t)T * ldy * sizeof *y);
                    for (size_t i = 0; i < (size_t)T * ldy; i++) y[i] = -7.0f;
                    k.mq_bf16_pack_x(c.x, K, T, xp, 0, K / 3); /* in two parts, as threads do */
                    k.mq_bf16_pack_x(c.x, K, T, xp, K / 3, K / 2);
                    /* The packing exactly: bf16 pairs (nearest even), zeros past T. */
                    int pack_bad = 0;
                    for (int kp = 0; kp < K / 2; kp++)
                        for (size_t t = 0; t < ldt; t++) {
                            uint32_t want = 0;
                            if (t < (size_t)T) {
                                const float lo = cpu_round_bf16(c.x[t * K + 2 * kp]),
                                            hi = cpu_round_bf16(c.x[t * K + 2 * kp + 1]);
                                uint32_t ul, uh;
                                memcpy(&ul, &lo, 4), memcpy(&uh, &hi, 4);
                                want = (ul >> 16) | (uh & 0xffff0000u);
                            }
                            pack_bad += ((const uint32_t *)xp)[kp * ldt + t] != want;
                        }
                    if (pack_bad) TEST_FAIL_AT("mq_bf16_pack_x K=%d T=%d: %d pairs differ", K, T, pack_bad);
                    k.matmul_q_bf16(y, ldy, xp, T, c.w, c.dt, R, K, wb);
                    int ok = within_bound(&c, y, ldy, "matmul_q_bf16");
                    for (int t = 0; t < T && ok; t++)
                        for (int r = R; r < ldy; r++)
                            if (y[(size_t)t * ldy + r] != -7.0f) {
                                TEST_FAIL_AT("matmul_q_bf16 R=%d T=%d wrote column %d", R, T, r);
                                ok = 0;
                                break;
                            }
                    CHECK(ok);
                    free(xp);
                    free(wb);
                    free(y);
                    case_free(&c);
                }
}

/* The backend's linear: this path from 24 rows, the same bits on 1 and 2
 * threads, bias added. */
static void test_backend_linear(void) {
    cpu_kernels k;
    cpu_kernels_init(&k, CTTS_ISA_AUTO);
    ctts_backend *b1 = ctts_backend_cpu_new(1, CTTS_ISA_AUTO);
    ctts_backend *b2 = ctts_backend_cpu_new(2, CTTS_ISA_AUTO);
    REQUIRE(b1 && b2);
    static const int TS[] = {23, 24, 100};
    for (int d = 0; d < 2; d++)
        for (int ti = 0; ti < 3; ti++) {
            const int R = 70, K = 256, T = TS[ti];
            mq_case c;
            case_make(&c, d ? CTTS_DT_Q4_0 : CTTS_DT_Q8_0, R, K, T, 1);
            ctts_tensor w = {.dtype = c.dt, .ndim = 2, .shape = {R, K}, .data = c.w,
                             .nbytes = ctts_dtype_row_bytes(c.dt, K) * R};
            float *y1 = malloc((size_t)T * R * sizeof *y1), *y2 = malloc((size_t)T * R * sizeof *y2);
            b1->linear(b1, y1, c.x, &w, c.bias, T);
            b2->linear(b2, y2, c.x, &w, c.bias, T);
            CHECK(memcmp(y1, y2, (size_t)T * R * sizeof *y1) == 0);
            if (k.matmul_q_bf16 && T >= 24) {
                CHECK(within_bound(&c, y1, R, "linear"));
            } else {
                /* 8-bit activations: within 1.5% of the magnitude of the sum */
                int bad = 0;
                for (size_t i = 0; i < (size_t)T * R; i++)
                    bad += !(fabs(y1[i] - c.ref[i]) <= 0.015 * c.mag[i] + 1e-4);
                CHECK_EQ_INT(bad, 0);
            }
            free(y1);
            free(y2);
            case_free(&c);
        }
    b1->destroy(b1);
    b2->destroy(b2);
}

TEST_MAIN(T(test_kernel_grid), T(test_backend_linear))
