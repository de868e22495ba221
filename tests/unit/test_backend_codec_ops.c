/*
 * Backend ops added for the Qwen3-TTS codec and speaker encoder: snake,
 * unary (ReLU, tanh, sigmoid), softmax_rows, scale_rows, row_moments.
 * Each against a double-precision reference on random data with awkward
 * sizes, in place where allowed, and bit-identical for 1 and 3 threads.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "ctts.h"
#include "harness.h"

static float *rand_floats(uint64_t seed, size_t n, float scale) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; p && i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = scale * ((float)(s >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
    }
    return p;
}

static double rel_err(double got, double want) {
    return fabs(got - want) / (fabs(want) > 1.0 ? fabs(want) : 1.0);
}

typedef struct {
    ctts_backend *b1, *b3;
} bes;

static int open_bes(bes *b) {
    b->b1 = ctts_backend_cpu_new(1, CTTS_ISA_AUTO);
    b->b3 = ctts_backend_cpu_new(3, CTTS_ISA_AUTO);
    return b->b1 && b->b3;
}

static void close_bes(bes *b) {
    if (b->b1) b->b1->destroy(b->b1);
    if (b->b3) b->b3->destroy(b->b3);
}

static void test_snake(void) {
    bes b;
    REQUIRE(open_bes(&b));
    const int shapes[][2] = {{1, 1}, {3, 17}, {96, 1920}, {7, 4097}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int C = shapes[si][0], T = shapes[si][1];
        const size_t n = (size_t)C * T;
        float *x = rand_floats(si + 1, n, 8.0f), *alpha = rand_floats(si + 11, (size_t)C, 1.5f);
        float *beta = rand_floats(si + 21, (size_t)C, 1.5f);
        float *a = malloc(C * sizeof *a), *bb = malloc(C * sizeof *bb);
        float *y1 = malloc(n * sizeof *y1), *y3 = malloc(n * sizeof *y3);
        REQUIRE(x && alpha && beta && a && bb && y1 && y3);
        for (int c = 0; c < C; c++) {
            a[c] = expf(alpha[c]);
            bb[c] = 1.0f / (expf(beta[c]) + 1e-9f);
        }
        b.b1->snake(b.b1, y1, x, a, bb, C, T);
        memcpy(y3, x, n * sizeof *y3);
        b.b3->snake(b.b3, y3, y3, a, bb, C, T); /* in place */
        CHECK(memcmp(y1, y3, n * sizeof *y1) == 0);
        double worst = 0;
        for (int c = 0; c < C; c++)
            for (int t = 0; t < T; t++) {
                const double xv = x[(size_t)c * T + t], s = sin(xv * a[c]);
                const double e = rel_err(y1[(size_t)c * T + t], xv + bb[c] * s * s);
                if (e > worst) worst = e;
            }
        if (!(worst <= 1e-5)) TEST_FAIL_AT("snake %dx%d: rel err %g", C, T, worst);
        free(x), free(alpha), free(beta), free(a), free(bb), free(y1), free(y3);
    }
    close_bes(&b);
}

static void test_unary(void) {
    bes b;
    REQUIRE(open_bes(&b));
    const size_t n = 40000 + 3;
    float *x = rand_floats(5, n, 12.0f), *y1 = malloc(n * sizeof *y1), *y3 = malloc(n * sizeof *y3);
    REQUIRE(x && y1 && y3);
    x[0] = 0.0f, x[1] = -0.0f, x[2] = 100.0f, x[3] = -100.0f;
    for (int k = CTTS_UNARY_RELU; k <= CTTS_UNARY_SIGMOID; k++) {
        b.b1->unary(b.b1, y1, x, n, (ctts_unary)k);
        memcpy(y3, x, n * sizeof *y3);
        b.b3->unary(b.b3, y3, y3, n, (ctts_unary)k);
        CHECK(memcmp(y1, y3, n * sizeof *y1) == 0);
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            const double v = x[i];
            const double want = k == CTTS_UNARY_RELU ? (v > 0 ? v : 0)
                                : k == CTTS_UNARY_TANH ? tanh(v)
                                                       : 1.0 / (1.0 + exp(-v));
            const double e = fabs(y1[i] - want);
            if (e > worst) worst = e;
        }
        if (!(worst <= 1e-6)) TEST_FAIL_AT("unary %d: abs err %g", k, worst);
        CHECK(isfinite(y1[2]) && isfinite(y1[3]));
    }
    free(x), free(y1), free(y3);
    close_bes(&b);
}

static void test_rows(void) {
    bes b;
    REQUIRE(open_bes(&b));
    const int shapes[][2] = {{1, 1}, {5, 3}, {48, 459}, {1536, 37}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int R = shapes[si][0], C = shapes[si][1];
        const size_t n = (size_t)R * C;
        float *x = rand_floats(si + 31, n, 20.0f), *s = rand_floats(si + 41, (size_t)R, 3.0f);
        float *y1 = malloc(n * sizeof *y1), *y3 = malloc(n * sizeof *y3);
        float *w = malloc(n * sizeof *w);
        float *m1 = malloc(R * sizeof *m1), *d1 = malloc(R * sizeof *d1);
        float *m3 = malloc(R * sizeof *m3), *d3 = malloc(R * sizeof *d3);
        REQUIRE(x && s && y1 && y3 && w && m1 && d1 && m3 && d3);

        /* softmax_rows */
        b.b1->softmax_rows(b.b1, y1, x, R, C);
        memcpy(y3, x, n * sizeof *y3);
        b.b3->softmax_rows(b.b3, y3, y3, R, C);
        CHECK(memcmp(y1, y3, n * sizeof *y1) == 0);
        double worst = 0;
        for (int r = 0; r < R; r++) {
            const float *xr = x + (size_t)r * C;
            double m = -INFINITY, z = 0;
            for (int c = 0; c < C; c++) m = xr[c] > m ? xr[c] : m;
            for (int c = 0; c < C; c++) z += exp(xr[c] - m);
            for (int c = 0; c < C; c++) {
                double e = fabs(y1[(size_t)r * C + c] - exp(xr[c] - m) / z);
                if (e > worst) worst = e;
            }
        }
        if (!(worst <= 1e-6)) TEST_FAIL_AT("softmax %dx%d: abs err %g", R, C, worst);

        /* scale_rows */
        b.b1->scale_rows(b.b1, y1, x, s, R, C);
        memcpy(y3, x, n * sizeof *y3);
        b.b3->scale_rows(b.b3, y3, y3, s, R, C);
        CHECK(memcmp(y1, y3, n * sizeof *y1) == 0);
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++)
                CHECK(y1[(size_t)r * C + c] == x[(size_t)r * C + c] * s[r]);

        /* row_moments: plain and weighted (weights = a softmax, as in the pooling) */
        memcpy(w, x, n * sizeof *w);
        b.b1->softmax_rows(b.b1, w, w, R, C);
        for (int weighted = 0; weighted < 2; weighted++) {
            const float *wp = weighted ? w : NULL;
            b.b1->row_moments(b.b1, m1, d1, x, wp, R, C, 1e-12f);
            b.b3->row_moments(b.b3, m3, d3, x, wp, R, C, 1e-12f);
            CHECK(memcmp(m1, m3, R * sizeof *m1) == 0 && memcmp(d1, d3, R * sizeof *d1) == 0);
            b.b3->row_moments(b.b3, m3, NULL, x, wp, R, C, 1e-12f); /* std optional */
            CHECK(memcmp(m1, m3, R * sizeof *m1) == 0);
            double wm = 0, ws = 0;
            for (int r = 0; r < R; r++) {
                const float *xr = x + (size_t)r * C;
                double m = 0, v = 0;
                for (int c = 0; c < C; c++) m += (wp ? wp[(size_t)r * C + c] : 1.0 / C) * xr[c];
                for (int c = 0; c < C; c++)
                    v += (wp ? wp[(size_t)r * C + c] : 1.0 / C) * (xr[c] - m) * (xr[c] - m);
                const double sd = sqrt(v > 1e-12 ? v : 1e-12);
                if (rel_err(m1[r], m) > wm) wm = rel_err(m1[r], m);
                if (rel_err(d1[r], sd) > ws) ws = rel_err(d1[r], sd);
            }
            if (!(wm <= 2e-5 && ws <= 2e-5))
                TEST_FAIL_AT("row_moments %dx%d (weighted %d): mean %g std %g", R, C, weighted, wm,
                             ws);
        }
        free(x), free(s), free(y1), free(y3), free(w), free(m1), free(d1), free(m3), free(d3);
    }
    /* A constant row: std clamps to sqrt(eps). */
    float cst[4] = {2, 2, 2, 2}, m, d;
    b.b1->row_moments(b.b1, &m, &d, cst, NULL, 1, 4, 1e-12f);
    CHECK(m == 2.0f);
    CHECK_NEAR(d, 1e-6, 1e-9);
    close_bes(&b);
}

TEST_MAIN(T(test_snake), T(test_unary), T(test_rows))
