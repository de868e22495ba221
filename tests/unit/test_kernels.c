/*
 * CPU backend ops against naive double-precision references written here.
 *
 * Every op runs on each ISA tier the host supports (scalar, avx2, avx512, neon) with 1 and
 * 2 threads, over awkward sizes and misaligned pointers (offset by one
 * float), with F32/BF16/F16 weights. Checks: |y - ref| within a bound
 * relative to the sum of |terms| (different summation orders are fine), and
 * 1-thread and 2-thread outputs of the same tier are bit-identical.
 * Quantized matmul (matmul_q) and the Q8_0 activation quantizer are checked
 * at kernel level against the scalar reference (on arm64 with and without
 * the dot-product kernels, via cpu_kernels_init_neon_ex), including row
 * splits as threads make them, and through the backend's linear.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/rng.h"
#include "cpu/kernels.h"
#include "harness.h"
#include "quant/quant.h"

/* Relative bound on |y - ref| / sum|terms|: float accumulation over up to
 * ~4k terms in any order stays well inside it. */
#define REL_TOL 2e-5
#define ABS_TOL 1e-6

enum { N_BE = 8 };

typedef struct {
    ctts_backend *be[N_BE]; /* [isa * 2 + (threads - 1)]; NULL if the tier is missing */
    const char *label[N_BE];
} backends;

/* Every tier the host runs and this build has (a tier whose kernel table
 * comes back with a lower isa is missing), with 1 and 2 threads. */
static backends open_backends(void) {
    backends b;
    memset(&b, 0, sizeof b);
    static const char *labels[N_BE] = {"scalar/1", "scalar/2", "avx2/1", "avx2/2",
                                       "avx512/1", "avx512/2", "neon/1", "neon/2"};
    static const ctts_cpu_isa isas[N_BE / 2] = {CTTS_ISA_SCALAR, CTTS_ISA_AVX2, CTTS_ISA_AVX512,
                                                CTTS_ISA_NEON};
    for (int i = 0; i < N_BE; i++) {
        const ctts_cpu_isa isa = isas[i / 2];
        cpu_kernels k;
        cpu_kernels_init(&k, isa);
        if (k.isa != isa) continue;
        b.be[i] = ctts_backend_cpu_new(i % 2 + 1, isa);
        b.label[i] = labels[i];
    }
    return b;
}

static void close_backends(backends *b) {
    for (int i = 0; i < N_BE; i++)
        if (b->be[i]) b->be[i]->destroy(b->be[i]);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) { return test_frand(&rng_state); }
static void fill(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = frand();
}

/* Weights of dtype dt from float values; vals gets the exact widened values. */
static void *make_weights(ctts_dtype dt, float *vals, size_t n) {
    if (dt == CTTS_DT_F32) {
        float *w = malloc(n * 4 + 4);
        memcpy(w, vals, n * 4);
        return w;
    }
    uint16_t *w = malloc(n * 2 + 2);
    for (size_t i = 0; i < n; i++) {
        if (dt == CTTS_DT_BF16) {
            w[i] = ctts_f32_to_bf16(vals[i]);
            vals[i] = ctts_bf16_to_f32(w[i]);
        } else {
            w[i] = ctts_f32_to_f16(vals[i]);
            vals[i] = ctts_f16_to_f32(w[i]);
        }
    }
    return w;
}

/* Compares y to ref with per-element bound mag[i] (sum of |terms|). */
static int close_enough(const float *y, const double *ref, const double *mag, size_t n,
                        const char *what, const char *label) {
    for (size_t i = 0; i < n; i++) {
        double tol = REL_TOL * mag[i] + ABS_TOL;
        if (!(fabs((double)y[i] - ref[i]) <= tol)) {
            fprintf(stderr, "    %s [%s] i=%zu: got %.9g want %.9g (tol %g)\n", what, label, i,
                    (double)y[i], ref[i], tol);
            return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- linear */

static int linear_case(backends *B, ctts_dtype dt, int N, int K, int T, int with_bias) {
    const size_t nw = (size_t)N * K;
    float *wv = malloc(nw * 4);
    fill(wv, nw);
    void *wbuf = make_weights(dt, wv, nw);
    float *xbuf = malloc(((size_t)T * K + 1) * 4), *x = xbuf + 1; /* misaligned */
    fill(x, (size_t)T * K);
    float bias[64];
    fill(bias, 64);
    double *ref = malloc((size_t)T * N * sizeof *ref), *mag = malloc((size_t)T * N * sizeof *mag);
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) {
            double s = with_bias ? bias[n] : 0, m = with_bias ? fabs(bias[n]) : 0;
            for (int k = 0; k < K; k++) {
                double p = (double)x[(size_t)t * K + k] * wv[(size_t)n * K + k];
                s += p;
                m += fabs(p);
            }
            ref[(size_t)t * N + n] = s;
            mag[(size_t)t * N + n] = m;
        }
    ctts_tensor w = {.dtype = dt, .ndim = 2, .shape = {N, K}, .data = wbuf};
    const size_t ny = (size_t)T * N;
    float *ybuf[N_BE] = {0};
    int ok = 1;
    for (int b = 0; b < N_BE && ok; b++) {
        if (!B->be[b]) continue;
        ybuf[b] = malloc((ny + 1) * 4);
        float *y = ybuf[b] + 1;
        B->be[b]->linear(B->be[b], y, x, &w, with_bias ? bias : NULL, T);
        ok = close_enough(y, ref, mag, ny, "linear", B->label[b]);
        if (ok && b % 2 == 1 && memcmp(y, ybuf[b - 1] + 1, ny * 4) != 0) {
            fprintf(stderr, "    linear [%s]: 1 vs 2 threads differ\n", B->label[b]);
            ok = 0;
        }
    }
    if (!ok)
        fprintf(stderr, "    case dt=%s N=%d K=%d T=%d bias=%d\n", ctts_dtype_name(dt), N, K, T,
                with_bias);
    for (int b = 0; b < N_BE; b++) free(ybuf[b]);
    free(wv);
    free(wbuf);
    free(xbuf);
    free(ref);
    free(mag);
    return ok;
}

static void test_linear(void) {
    backends B = open_backends();
    static const ctts_dtype dts[] = {CTTS_DT_F32, CTTS_DT_BF16, CTTS_DT_F16};
    static const int Ks[] = {1, 3, 31, 33, 4097};
    static const int Ns[] = {1, 3, 5, 33};
    static const int Ts[] = {1, 5, 17};
    for (int d = 0; d < 3; d++)
        for (int ki = 0; ki < 5; ki++)
            for (int ni = 0; ni < 4; ni++)
                for (int ti = 0; ti < 3; ti++)
                    CHECK(linear_case(&B, dts[d], Ns[ni], Ks[ki], Ts[ti], (ki + ni + ti) % 2));
    /* A GEMV large enough to be split across threads, and a 3-D {N, K, 1} weight. */
    CHECK(linear_case(&B, CTTS_DT_BF16, 64, 2048, 1, 1));
    CHECK(linear_case(&B, CTTS_DT_F32, 61, 1024, 3, 0));
    close_backends(&B);
}

static void test_linear_conv1x1_shape(void) {
    backends B = open_backends();
    float wv[6] = {1, 2, 3, 4, 5, 6}, x[3] = {1, -1, 2}, y[2];
    ctts_tensor w = {.dtype = CTTS_DT_F32, .ndim = 3, .shape = {2, 3, 1}, .data = wv};
    for (int b = 0; b < N_BE; b++) {
        if (!B.be[b]) continue;
        B.be[b]->linear(B.be[b], y, x, &w, NULL, 1);
        CHECK_NEAR(y[0], 1 - 2 + 6, 1e-6);
        CHECK_NEAR(y[1], 4 - 5 + 12, 1e-6);
    }
    close_backends(&B);
}

/* ---------------------------------------------------------------- conv1d */

static int conv1d_case(backends *B, ctts_dtype dt, int cin, int cout, int groups, int K, int stride,
                       int dil, int Tin, int with_bias) {
    const int cin_g = cin / groups, cout_g = cout / groups;
    const int Tout = (Tin - (K - 1) * dil - 1) / stride + 1;
    const size_t nw = (size_t)cout * cin_g * K;
    float *wv = malloc(nw * 4);
    fill(wv, nw);
    void *wbuf = make_weights(dt, wv, nw);
    float *xbuf = malloc(((size_t)cin * Tin + 1) * 4), *x = xbuf + 1;
    fill(x, (size_t)cin * Tin);
    float *bias = malloc((size_t)cout * 4);
    fill(bias, (size_t)cout);
    const size_t ny = (size_t)cout * Tout;
    double *ref = malloc(ny * sizeof *ref), *mag = malloc(ny * sizeof *mag);
    for (int co = 0; co < cout; co++) {
        const int g = co / cout_g;
        for (int t = 0; t < Tout; t++) {
            double s = with_bias ? bias[co] : 0, m = fabs(s);
            for (int cl = 0; cl < cin_g; cl++)
                for (int k = 0; k < K; k++) {
                    double p = (double)wv[((size_t)co * cin_g + cl) * K + k] *
                               x[(size_t)(g * cin_g + cl) * Tin + t * stride + k * dil];
                    s += p;
                    m += fabs(p);
                }
            ref[(size_t)co * Tout + t] = s;
            mag[(size_t)co * Tout + t] = m;
        }
    }
    ctts_tensor w = {.dtype = dt, .ndim = 3, .shape = {cout, cin_g, K}, .data = wbuf};
    float *ybuf[N_BE] = {0};
    int ok = 1;
    for (int b = 0; b < N_BE && ok; b++) {
        if (!B->be[b]) continue;
        ybuf[b] = malloc((ny + 1) * 4);
        float *y = ybuf[b] + 1;
        B->be[b]->conv1d(B->be[b], y, x, &w, with_bias ? bias : NULL, Tin, stride, dil, groups);
        ok = close_enough(y, ref, mag, ny, "conv1d", B->label[b]);
        if (ok && b % 2 == 1 && memcmp(y, ybuf[b - 1] + 1, ny * 4) != 0) {
            fprintf(stderr, "    conv1d [%s]: 1 vs 2 threads differ\n", B->label[b]);
            ok = 0;
        }
    }
    if (!ok)
        fprintf(stderr, "    case dt=%s cin=%d cout=%d g=%d K=%d s=%d d=%d Tin=%d\n",
                ctts_dtype_name(dt), cin, cout, groups, K, stride, dil, Tin);
    for (int b = 0; b < N_BE; b++) free(ybuf[b]);
    free(wv);
    free(wbuf);
    free(xbuf);
    free(bias);
    free(ref);
    free(mag);
    return ok;
}

static void test_conv1d(void) {
    backends B = open_backends();
    static const int chans[][3] = {{3, 5, 1}, {8, 8, 8}, {6, 9, 3}, {33, 7, 1}, {4, 17, 1}};
    static const int Ks[] = {1, 3, 7};
    static const ctts_dtype dts[] = {CTTS_DT_F32, CTTS_DT_BF16, CTTS_DT_F16};
    int n = 0;
    for (int c = 0; c < 5; c++)
        for (int ki = 0; ki < 3; ki++)
            for (int stride = 1; stride <= 6; stride++)
                for (int dil = 1; dil <= 3; dil++) {
                    if (stride > 1 && dil > 1) continue;
                    const int K = Ks[ki], span = (K - 1) * dil + 1;
                    static const int extra[] = {0, 1, 30, 101};
                    for (int e = 0; e < 4; e++, n++)
                        CHECK(conv1d_case(&B, dts[n % 3], chans[c][0], chans[c][1], chans[c][2], K,
                                          stride, dil, span + extra[e], n % 2));
                }
    /* SEANet-like: 64 channels, k7, long time axis, split across threads. */
    CHECK(conv1d_case(&B, CTTS_DT_F32, 64, 64, 1, 7, 1, 1, 206, 1));
    CHECK(conv1d_case(&B, CTTS_DT_BF16, 32, 48, 1, 3, 1, 3, 500, 1));
    close_backends(&B);
}

/* ---------------------------------------------------------------- conv_transpose1d */

static int convt_case(backends *B, ctts_dtype dt, int cin, int cout, int groups, int K, int stride,
                      int Tin, int with_bias) {
    const int cin_g = cin / groups, cout_g = cout / groups;
    const int Tout = (Tin - 1) * stride + K;
    const size_t nw = (size_t)cin * cout_g * K;
    float *wv = malloc(nw * 4);
    fill(wv, nw);
    void *wbuf = make_weights(dt, wv, nw);
    float *xbuf = malloc(((size_t)cin * Tin + 1) * 4), *x = xbuf + 1;
    fill(x, (size_t)cin * Tin);
    float *bias = malloc((size_t)cout * 4);
    fill(bias, (size_t)cout);
    const size_t ny = (size_t)cout * Tout;
    double *ref = calloc(ny, sizeof *ref), *mag = calloc(ny, sizeof *mag);
    for (int co = 0; co < cout; co++) {
        const int g = co / cout_g, col = co % cout_g;
        for (int j = 0; j < Tout; j++) {
            ref[(size_t)co * Tout + j] = with_bias ? bias[co] : 0;
            mag[(size_t)co * Tout + j] = with_bias ? fabs(bias[co]) : 0;
        }
        for (int cl = 0; cl < cin_g; cl++) {
            const int ci = g * cin_g + cl;
            for (int t = 0; t < Tin; t++)
                for (int k = 0; k < K; k++) {
                    double p = (double)x[(size_t)ci * Tin + t] * wv[((size_t)ci * cout_g + col) * K + k];
                    ref[(size_t)co * Tout + t * stride + k] += p;
                    mag[(size_t)co * Tout + t * stride + k] += fabs(p);
                }
        }
    }
    ctts_tensor w = {.dtype = dt, .ndim = 3, .shape = {cin, cout_g, K}, .data = wbuf};
    float *ybuf[N_BE] = {0};
    int ok = 1;
    for (int b = 0; b < N_BE && ok; b++) {
        if (!B->be[b]) continue;
        ybuf[b] = malloc((ny + 1) * 4);
        float *y = ybuf[b] + 1;
        B->be[b]->conv_transpose1d(B->be[b], y, x, &w, with_bias ? bias : NULL, Tin, stride, groups);
        ok = close_enough(y, ref, mag, ny, "conv_transpose1d", B->label[b]);
        if (ok && b % 2 == 1 && memcmp(y, ybuf[b - 1] + 1, ny * 4) != 0) {
            fprintf(stderr, "    conv_transpose1d [%s]: 1 vs 2 threads differ\n", B->label[b]);
            ok = 0;
        }
    }
    if (!ok)
        fprintf(stderr, "    case dt=%s cin=%d cout=%d g=%d K=%d s=%d Tin=%d\n",
                ctts_dtype_name(dt), cin, cout, groups, K, stride, Tin);
    for (int b = 0; b < N_BE; b++) free(ybuf[b]);
    free(wv);
    free(wbuf);
    free(xbuf);
    free(bias);
    free(ref);
    free(mag);
    return ok;
}

static void test_conv_transpose1d(void) {
    backends B = open_backends();
    static const int chans[][3] = {{3, 5, 1}, {8, 8, 8}, {6, 9, 3}, {17, 4, 1}};
    static const int Tins[] = {1, 3, 17, 40};
    static const ctts_dtype dts[] = {CTTS_DT_F32, CTTS_DT_BF16, CTTS_DT_F16};
    int n = 0;
    for (int c = 0; c < 4; c++)
        for (int stride = 1; stride <= 6; stride++) {
            const int Ks[] = {1, 2 * stride, 7};
            for (int ki = 0; ki < 3; ki++)
                for (int ti = 0; ti < 4; ti++, n++)
                    CHECK(convt_case(&B, dts[n % 3], chans[c][0], chans[c][1], chans[c][2], Ks[ki],
                                     stride, Tins[ti], n % 2));
        }
    /* Mimi upsample: depthwise, stride 16, kernel 32. */
    CHECK(convt_case(&B, CTTS_DT_F32, 32, 32, 32, 32, 16, 9, 0));
    /* Decoder upsampling block: 64 -> 32 channels, stride 4, k 8, long input. */
    CHECK(convt_case(&B, CTTS_DT_BF16, 64, 32, 1, 8, 4, 120, 1));
    close_backends(&B);
}

/* ---------------------------------------------------------------- attention */

static int attention_case(backends *B, int T, int H, int Dh, int q_pos0, int n_kv, int window) {
    const int q_stride = H * Dh + 3, kv_stride = H * Dh + 1;
    float *qb = malloc(((size_t)T * q_stride + 1) * 4), *q = qb + 1;
    float *kb = malloc(((size_t)n_kv * kv_stride + 1) * 4), *k = kb + 1;
    float *vb = malloc(((size_t)n_kv * kv_stride + 1) * 4), *v = vb + 1;
    fill(q, (size_t)T * q_stride);
    for (size_t i = 0; i < (size_t)T * q_stride; i++) q[i] *= 3.0f; /* peaky softmax */
    fill(k, (size_t)n_kv * kv_stride);
    fill(v, (size_t)n_kv * kv_stride);
    const size_t ny = (size_t)T * H * Dh;
    double *ref = calloc(ny, sizeof *ref), *mag = calloc(ny, sizeof *mag);
    double *p = malloc((size_t)(n_kv + 1) * sizeof *p);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            const int qp = q_pos0 + t;
            double mx = -1e300, l = 0;
            for (int j = 0; j < n_kv; j++) {
                p[j] = -1e300;
                if (j > qp || (window > 0 && qp - j >= window)) continue;
                double s = 0;
                for (int d = 0; d < Dh; d++)
                    s += (double)q[(size_t)t * q_stride + h * Dh + d] * k[(size_t)j * kv_stride + h * Dh + d];
                p[j] = s / sqrt((double)Dh);
                if (p[j] > mx) mx = p[j];
            }
            for (int j = 0; j < n_kv; j++) {
                p[j] = p[j] < -1e299 ? 0 : exp(p[j] - mx);
                l += p[j];
            }
            for (int d = 0; d < Dh; d++) {
                double s = 0;
                for (int j = 0; j < n_kv; j++) s += p[j] / l * v[(size_t)j * kv_stride + h * Dh + d];
                ref[((size_t)t * H + h) * Dh + d] = s;
                mag[((size_t)t * H + h) * Dh + d] = 10.0; /* softmax weights: rounding of exp */
            }
        }
    float *ybuf[N_BE] = {0};
    int ok = 1;
    for (int b = 0; b < N_BE && ok; b++) {
        if (!B->be[b]) continue;
        ybuf[b] = malloc((ny + 1) * 4);
        float *y = ybuf[b] + 1;
        B->be[b]->attention(B->be[b], y, q, q_stride, k, v, kv_stride, T, n_kv, q_pos0, H, Dh,
                            window);
        ok = close_enough(y, ref, mag, ny, "attention", B->label[b]);
        if (ok && b % 2 == 1 && memcmp(y, ybuf[b - 1] + 1, ny * 4) != 0) {
            fprintf(stderr, "    attention [%s]: 1 vs 2 threads differ\n", B->label[b]);
            ok = 0;
        }
    }
    if (!ok)
        fprintf(stderr, "    case T=%d H=%d Dh=%d q_pos0=%d n_kv=%d window=%d\n", T, H, Dh, q_pos0,
                n_kv, window);
    for (int b = 0; b < N_BE; b++) free(ybuf[b]);
    free(qb);
    free(kb);
    free(vb);
    free(ref);
    free(mag);
    free(p);
    return ok;
}

static void test_attention(void) {
    backends B = open_backends();
    static const int Ts[] = {1, 5, 17};
    static const int Hs[] = {1, 3, 16};
    static const int Dhs[] = {1, 8, 31, 64};
    static const int pos0s[] = {0, 7, 130};
    for (int ti = 0; ti < 3; ti++)
        for (int hi = 0; hi < 3; hi++)
            for (int di = 0; di < 4; di++)
                for (int pi = 0; pi < 3; pi++)
                    for (int window = 0; window <= 24; window += 24) {
                        const int T = Ts[ti], n_kv = pos0s[pi] + T;
                        CHECK(attention_case(&B, T, Hs[hi], Dhs[di], pos0s[pi], n_kv, window));
                    }
    /* Extra keys past the last query are masked; a window of 1 sees only itself. */
    CHECK(attention_case(&B, 4, 2, 16, 3, 12, 0));
    CHECK(attention_case(&B, 4, 2, 16, 3, 7, 1));
    close_backends(&B);
}

/* ---------------------------------------------------------------- norms */

static void test_norms(void) {
    backends B = open_backends();
    static const int Ds[] = {1, 3, 31, 33, 4097};
    static const int Ts[] = {1, 5};
    for (int di = 0; di < 5; di++)
        for (int ti = 0; ti < 2; ti++)
            for (int affine = 0; affine < 2; affine++) {
                const int D = Ds[di], T = Ts[ti];
                const size_t n = (size_t)T * D;
                float *xb = malloc((n + 1) * 4), *x = xb + 1;
                float *w = malloc((size_t)D * 4), *bb = malloc((size_t)D * 4);
                fill(x, n);
                for (size_t i = 0; i < n; i++) x[i] = x[i] * 2.0f + 5.0f; /* offset mean */
                fill(w, (size_t)D);
                fill(bb, (size_t)D);
                double *ref_ln = malloc(n * sizeof(double)), *ref_sn = malloc(n * sizeof(double));
                double *mag = malloc(n * sizeof(double));
                for (int t = 0; t < T; t++) {
                    const float *xr = x + (size_t)t * D;
                    double mean = 0, ss = 0;
                    for (int d = 0; d < D; d++) mean += xr[d];
                    mean /= D;
                    for (int d = 0; d < D; d++) ss += (xr[d] - mean) * (xr[d] - mean);
                    const double inv_ln = 1.0 / sqrt(ss / D + 1e-5);
                    const double inv_sn = 1.0 / sqrt(ss / (D > 1 ? D - 1 : 1) + 1e-5);
                    for (int d = 0; d < D; d++) {
                        const size_t i = (size_t)t * D + d;
                        double v = (xr[d] - mean) * inv_ln;
                        ref_ln[i] = affine ? v * w[d] + bb[d] : v;
                        ref_sn[i] = xr[d] * inv_sn * (affine ? w[d] : 1.0);
                        mag[i] = 50.0 * (fabs(xr[d]) * inv_ln + 1.0);
                    }
                }
                float *out[N_BE] = {0};
                for (int b = 0; b < N_BE; b++) {
                    if (!B.be[b]) continue;
                    out[b] = malloc((2 * n + 1) * 4);
                    float *yl = out[b] + 1, *ys = yl + n;
                    B.be[b]->layer_norm(B.be[b], yl, x, affine ? w : NULL, affine ? bb : NULL, T, D,
                                        1e-5f);
                    B.be[b]->std_norm(B.be[b], ys, x, affine ? w : NULL, T, D, 1e-5f);
                    CHECK(close_enough(yl, ref_ln, mag, n, "layer_norm", B.label[b]));
                    CHECK(close_enough(ys, ref_sn, mag, n, "std_norm", B.label[b]));
                    if (b % 2 == 1) CHECK(memcmp(yl, out[b - 1] + 1, 2 * n * 4) == 0);
                }
                for (int b = 0; b < N_BE; b++) free(out[b]);
                free(xb);
                free(w);
                free(bb);
                free(ref_ln);
                free(ref_sn);
                free(mag);
            }
    close_backends(&B);
}

/* ---------------------------------------------------------------- elementwise */

static void test_elementwise(void) {
    backends B = open_backends();
    static const size_t ns[] = {1, 3, 31, 33, 4097, 70001};
    for (int ni = 0; ni < 6; ni++) {
        const size_t n = ns[ni];
        float *xb = malloc((n + 1) * 4), *x = xb + 1, *bv = malloc(n * 4);
        fill(x, n);
        fill(bv, n);
        for (size_t i = 0; i < n; i++) x[i] *= 4.0f;
        float *yb = malloc((n + 1) * 4), *y = yb + 1;
        for (int b = 0; b < N_BE; b++) {
            ctts_backend *be = B.be[b];
            if (!be) continue;
            int bad = 0;
            be->act(be, y, x, n, CTTS_ACT_GELU_ERF);
            for (size_t i = 0; i < n && !bad; i++)
                bad = fabs(y[i] - 0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0)))) > 1e-5;
            CHECK(!bad);
            be->act(be, y, x, n, CTTS_ACT_SILU);
            for (size_t i = 0; i < n && !bad; i++) bad = fabs(y[i] - x[i] / (1 + exp(-x[i]))) > 1e-5;
            CHECK(!bad);
            be->act(be, y, x, n, CTTS_ACT_ELU);
            for (size_t i = 0; i < n && !bad; i++)
                bad = fabs(y[i] - (x[i] > 0 ? x[i] : expm1(x[i]))) > 1e-6;
            CHECK(!bad);
            memcpy(y, x, n * 4);
            be->act(be, y, y, n, CTTS_ACT_ELU); /* in place */
            for (size_t i = 0; i < n && !bad; i++)
                bad = fabs(y[i] - (x[i] > 0 ? x[i] : expm1(x[i]))) > 1e-6;
            CHECK(!bad);
            be->add(be, y, x, bv, n);
            for (size_t i = 0; i < n && !bad; i++) bad = y[i] != x[i] + bv[i];
            CHECK(!bad);
        }
        free(xb);
        free(bv);
        free(yb);
    }
    close_backends(&B);
}

static void test_rows_ops(void) {
    backends B = open_backends();
    static const int Ds[] = {1, 33, 1024};
    static const int Ts[] = {1, 17, 40};
    for (int di = 0; di < 3; di++)
        for (int ti = 0; ti < 3; ti++) {
            const int D = Ds[di], T = Ts[ti];
            const size_t n = (size_t)T * D;
            float *y0 = malloc(n * 4), *h = malloc(n * 4), *s = malloc((size_t)D * 4);
            float *sh = malloc((size_t)D * 4), *y = malloc(n * 4);
            fill(y0, n);
            fill(h, n);
            fill(s, (size_t)D);
            fill(sh, (size_t)D);
            for (int b = 0; b < N_BE; b++) {
                ctts_backend *be = B.be[b];
                if (!be) continue;
                int bad = 0;
                memcpy(y, y0, n * 4);
                be->add_scaled_rows(be, y, h, s, T, D);
                for (size_t i = 0; i < n && !bad; i++)
                    bad = fabs(y[i] - (y0[i] + (double)s[i % D] * h[i])) > 1e-6;
                CHECK(!bad);
                memcpy(y, y0, n * 4);
                be->add_scaled_rows(be, y, h, NULL, T, D);
                for (size_t i = 0; i < n && !bad; i++) bad = y[i] != y0[i] + h[i];
                CHECK(!bad);
                memcpy(y, y0, n * 4);
                be->modulate(be, y, sh, s, T, D);
                for (size_t i = 0; i < n && !bad; i++)
                    bad = fabs(y[i] - (y0[i] * (1.0 + s[i % D]) + sh[i % D])) > 1e-6;
                CHECK(!bad);
                /* transpose [T, D] -> [D, T] */
                be->transpose(be, y, y0, T, D);
                for (int t = 0; t < T && !bad; t++)
                    for (int d = 0; d < D && !bad; d++) bad = y[(size_t)d * T + t] != y0[(size_t)t * D + d];
                CHECK(!bad);
            }
            free(y0);
            free(h);
            free(s);
            free(sh);
            free(y);
        }
    close_backends(&B);
}

static void test_rope(void) {
    backends B = open_backends();
    const int T = 5, H = 3, Dh = 16, stride = H * Dh + 7, pos0 = 37;
    const size_t n = (size_t)T * stride;
    float *x0 = malloc(n * 4), *x = malloc(n * 4);
    fill(x0, n);
    for (int b = 0; b < N_BE; b++) {
        ctts_backend *be = B.be[b];
        if (!be) continue;
        memcpy(x, x0, n * 4);
        be->rope(be, x, T, H, Dh, stride, pos0, 10000.0f);
        int bad = 0;
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < H; h++)
                for (int i = 0; i < Dh / 2; i++) {
                    const double f = exp(-log(10000.0) * 2 * i / Dh), a = (pos0 + t) * f;
                    const float *p0 = x0 + (size_t)t * stride + h * Dh + 2 * i;
                    const float *p = x + (size_t)t * stride + h * Dh + 2 * i;
                    const double re = p0[0] * cos(a) - p0[1] * sin(a);
                    const double im = p0[0] * sin(a) + p0[1] * cos(a);
                    bad |= fabs(p[0] - re) > 1e-4 || fabs(p[1] - im) > 1e-4;
                }
            for (int c = H * Dh; c < stride; c++) /* padding untouched */
                bad |= x[(size_t)t * stride + c] != x0[(size_t)t * stride + c];
        }
        CHECK(!bad);
    }
    free(x0);
    free(x);
    close_backends(&B);
}

static void test_memory_and_dtypes(void) {
    backends B = open_backends();
    for (int b = 0; b < N_BE; b++) {
        ctts_backend *be = B.be[b];
        if (!be) continue;
        unsigned char *p = be->alloc(be, 1000);
        REQUIRE(p != NULL);
        CHECK(((uintptr_t)p & 63) == 0);
        int nz = 0;
        for (int i = 0; i < 1000; i++) nz |= p[i];
        CHECK(nz == 0);
        const char msg[] = "hello";
        char back[6];
        be->upload(be, p, msg, 6);
        be->sync(be);
        be->download(be, back, p, 6);
        CHECK(strcmp(back, "hello") == 0);
        be->free_buf(be, p);
        CHECK(be->supports_dtype(be, CTTS_DT_F32));
        CHECK(be->supports_dtype(be, CTTS_DT_BF16));
        CHECK(be->supports_dtype(be, CTTS_DT_F16));
        CHECK(!be->supports_dtype(be, CTTS_DT_I64));
        CHECK(!be->supports_dtype(be, (ctts_dtype)99));
    }
    close_backends(&B);
}

/* ------------------------------------------------- quantized matmul (matmul_q) */

/* Kernel tables whose matmul_q / quant_row_q8_0 are checked against the scalar
 * reference: on arm64 the NEON tier with the dot-product kernels forced off
 * and, where the host has them (qemu-aarch64 does), on; elsewhere the host's
 * best tier if it is not scalar. */
static int simd_q_tables(cpu_kernels *k) {
    int n = 0;
#if defined(__aarch64__)
    cpu_kernels_init_ref(&k[n]);
    if (cpu_kernels_init_neon_ex(&k[n], 0)) n++;
    cpu_kernels_init_ref(&k[n]);
    if (cpu_kernels_init_neon_ex(&k[n], 1) && strcmp(k[n].name, "neon+dotprod") == 0) n++;
    else fprintf(stderr, "    note: no dot-product extension on this host: SDOT kernels untested\n");
#else
    cpu_kernels_init(&k[n], CTTS_ISA_AUTO);
    if (k[n].isa != CTTS_ISA_SCALAR) n++;
#endif
    return n;
}

static int irand(int n) { /* uniform in [0, n) */
    return (int)((frand() * 0.5f + 0.5f) * (float)n) % n;
}

/* A random f16 scale, magnitude in [2^-12, 2^-5), either sign. */
static uint16_t rand_scale(void) {
    return ctts_f32_to_f16(ldexpf(1.0f + 0.5f * frand(), -6 - irand(6)) * (frand() < 0 ? -1 : 1));
}

/* R rows of K/32 random blocks of dtype dt at base (any even address): every
 * int8 value for Q8_0 weights (-128 included), every nibble for Q4_0. Row 0
 * of Q8_0 is all -128: against activations of -127 it is the largest
 * pairwise int16 sum the plain NEON kernel can meet. */
static void rand_blocks(ctts_dtype dt, char *base, int R, int K) {
    const size_t rb = ctts_dtype_row_bytes(dt, K);
    for (int r = 0; r < R; r++)
        for (int b = 0; b < K / QK; b++) {
            if (dt == CTTS_DT_Q4_0) {
                block_q4_0 *blk = (block_q4_0 *)(base + rb * r) + b;
                blk->d = rand_scale();
                for (int j = 0; j < QK / 2; j++) blk->qs[j] = (uint8_t)irand(256);
            } else {
                block_q8_0 *blk = (block_q8_0 *)(base + rb * r) + b;
                blk->d = rand_scale();
                for (int j = 0; j < QK; j++) blk->qs[j] = (int8_t)(r == 0 ? -128 : irand(256) - 128);
            }
        }
}

/* T rows of K/32 Q8_0 activation blocks, values in [-127, 127] as every
 * quantizer makes them; row 0 is all -127. */
static void rand_act(block_q8_0 *x, int T, int K) {
    for (int i = 0; i < T * (K / QK); i++) {
        x[i].d = rand_scale();
        for (int j = 0; j < QK; j++) x[i].qs[j] = (int8_t)(i < K / QK ? -127 : irand(255) - 127);
    }
}

/* Row r of W against activation row t in double (exact), and sum |terms|. */
static double qdot_exact(ctts_dtype dt, const char *wrow, const block_q8_0 *x, int K, double *mag) {
    double s = 0;
    *mag = 0;
    for (int b = 0; b < K / QK; b++) {
        double dw;
        int q[QK];
        if (dt == CTTS_DT_Q4_0) {
            const block_q4_0 *blk = (const block_q4_0 *)wrow + b;
            dw = ctts_f16_to_f32(blk->d);
            for (int j = 0; j < QK / 2; j++) {
                q[j] = (blk->qs[j] & 15) - 8;
                q[j + QK / 2] = (blk->qs[j] >> 4) - 8;
            }
        } else {
            const block_q8_0 *blk = (const block_q8_0 *)wrow + b;
            dw = ctts_f16_to_f32(blk->d);
            for (int j = 0; j < QK; j++) q[j] = blk->qs[j];
        }
        long acc = 0, aacc = 0;
        for (int j = 0; j < QK; j++) {
            acc += (long)q[j] * x[b].qs[j];
            aacc += labs((long)q[j] * x[b].qs[j]);
        }
        const double d = dw * ctts_f16_to_f32(x[b].d);
        s += d * (double)acc;
        *mag += fabs(d) * (double)aacc;
    }
    return s;
}

/* matmul_q of each table vs the reference table (and both vs the exact
 * product), with output stride ldy = R + 3 (the gaps must stay untouched),
 * weights and activations at 2-byte (not 4-byte) alignment, and the rows cut
 * at several points as threads would cut them: outputs bit-identical. */
static int matmul_q_case(const cpu_kernels *k, int nk, ctts_dtype dt, int R, int K, int T) {
    const size_t rb = ctts_dtype_row_bytes(dt, K), nb = (size_t)K / QK;
    const int ldy = R + 3;
    const size_t ny = (size_t)T * ldy;
    char *wbuf = malloc(rb * R + 2), *w = wbuf + 2;
    char *xbuf = malloc(nb * T * sizeof(block_q8_0) + 2);
    block_q8_0 *x = (block_q8_0 *)(xbuf + 2);
    float *y0 = malloc(ny * sizeof *y0), *y1 = malloc(ny * sizeof *y1), *y2 = malloc(ny * sizeof *y2);
    rand_blocks(dt, w, R, K);
    rand_act(x, T, K);
    cpu_kernels ref;
    cpu_kernels_init_ref(&ref);
    for (size_t i = 0; i < ny; i++) y0[i] = 12345.0f;
    ref.matmul_q[dt](y0, ldy, x, w, R, K, T);
    int ok = 1;
    for (int t = 0; t < T && ok; t++)
        for (int r = 0; r < R && ok; r++) {
            double mag;
            const double e = qdot_exact(dt, w + rb * r, x + nb * t, K, &mag);
            if (!(fabs(y0[(size_t)t * ldy + r] - e) <= 1e-5 * mag + 1e-6)) {
                fprintf(stderr, "    scalar matmul_q [%d,%d]: %g vs exact %g\n", t, r,
                        (double)y0[(size_t)t * ldy + r], e);
                ok = 0;
            }
        }
    for (int i = 0; i < nk && ok; i++) {
        for (size_t j = 0; j < ny; j++) y1[j] = y2[j] = 12345.0f;
        k[i].matmul_q[dt](y1, ldy, x, w, R, K, T);
        for (int t = 0; t < T && ok; t++)
            for (int r = 0; r < ldy && ok; r++) {
                const size_t at = (size_t)t * ldy + r;
                double mag = 0;
                if (r < R) qdot_exact(dt, w + rb * r, x + nb * t, K, &mag);
                if (r >= R ? y1[at] != 12345.0f : !(fabs(y1[at] - y0[at]) <= 1e-5 * mag + 1e-6)) {
                    fprintf(stderr, "    %s matmul_q [%d,%d]: %g vs ref %g\n", k[i].name, t, r,
                            (double)y1[at], (double)y0[at]);
                    ok = 0;
                }
            }
        /* Row splits: [0, s) then [s, R) for s = 1, 5, R / 2 + 1, R - 1. */
        const int cuts[] = {1, 5, R / 2 + 1, R - 1};
        for (int c = 0; c < 4 && ok; c++) {
            const int s = cuts[c];
            if (s <= 0 || s >= R) continue;
            k[i].matmul_q[dt](y2, ldy, x, w, s, K, T);
            k[i].matmul_q[dt](y2 + s, ldy, x, w + rb * s, R - s, K, T);
            if (memcmp(y1, y2, ny * sizeof *y1) != 0) {
                fprintf(stderr, "    %s matmul_q: rows cut at %d differ\n", k[i].name, s);
                ok = 0;
            }
        }
    }
    if (!ok) fprintf(stderr, "    case %s R=%d K=%d T=%d\n", ctts_dtype_name(dt), R, K, T);
    free(wbuf);
    free(xbuf);
    free(y0);
    free(y1);
    free(y2);
    return ok;
}

static void test_matmul_q(void) {
    cpu_kernels k[2];
    const int nk = simd_q_tables(k);
    if (nk == 0) SKIP("no SIMD tier on this host");
    static const int Rs[] = {1, 31, 33}, Ks[] = {32, 64, 96, 160, 4096}, Ts[] = {1, 2, 3, 5};
    for (int d = 0; d < 2; d++) {
        const ctts_dtype dt = d ? CTTS_DT_Q4_0 : CTTS_DT_Q8_0;
        for (int ri = 0; ri < 3; ri++)
            for (int ki = 0; ki < 5; ki++)
                for (int ti = 0; ti < 4; ti++) CHECK(matmul_q_case(k, nk, dt, Rs[ri], Ks[ki], Ts[ti]));
        /* Many rows (every remainder of the 4-row tiles across cuts), a long GEMV, T = 4 + 1. */
        CHECK(matmul_q_case(k, nk, dt, 4097, 64, 1));
        CHECK(matmul_q_case(k, nk, dt, 4097, 32, 5));
        CHECK(matmul_q_case(k, nk, dt, 4097, 4096, 1));
        CHECK(matmul_q_case(k, nk, dt, 6, 4096, 9));
    }
}

/* quant_row_q8_0 of each table vs the reference: NEON bit-identical; other
 * tiers may round exact ties the other way (|q| off by 1, same scale).
 * Blocks: random, all zero, exact ties (x / d = n + 0.5), tiny (f16-subnormal
 * scale) and large values; x misaligned by one float. */
static void test_quant_row_q8_0(void) {
    cpu_kernels k[2];
    const int nk = simd_q_tables(k);
    if (nk == 0) SKIP("no SIMD tier on this host");
    enum { K = 4096 + 32 };
    float *buf = malloc((K + 1) * sizeof *buf), *x = buf + 1;
    block_q8_0 *a = malloc(sizeof *a * (K / QK)), *b = malloc(sizeof *b * (K / QK));
    fill(x, K);
    for (int j = 0; j < QK; j++) {
        x[QK + j] = 0.0f;
        x[2 * QK + j] = j == 0 ? 127.0f : (float)(j - 16) + 0.5f; /* d = 1: ties */
        x[3 * QK + j] = 1e-6f * frand();
        x[4 * QK + j] = 6e4f * frand();
    }
    quant_row_q8_0_ref(x, a, K);
    for (int i = 0; i < nk; i++) {
        memset(b, 0x55, sizeof *b * (K / QK));
        k[i].quant_row_q8_0(x, b, K);
        const int exact = strncmp(k[i].name, "neon", 4) == 0;
        int bad = 0;
        for (int blk = 0; blk < K / QK; blk++) {
            if (a[blk].d != b[blk].d) bad++;
            for (int j = 0; j < QK; j++)
                if (exact ? a[blk].qs[j] != b[blk].qs[j] : abs(a[blk].qs[j] - b[blk].qs[j]) > 1) bad++;
        }
        if (bad) TEST_FAIL_AT("%s quant_row_q8_0: %d mismatches", k[i].name, bad);
    }
    free(buf);
    free(a);
    free(b);
}

/* Backend linear with Q8_0 / Q4_0 weights on every tier and thread count:
 * close to scalar/1 (same quantized activations, other summation order) and
 * 1 vs 2 threads bit-identical. */
static void test_linear_q(void) {
    backends B = open_backends();
    enum { N = 37, K = 256, T = 3 };
    for (int d = 0; d < 2; d++) {
        const ctts_dtype dt = d ? CTTS_DT_Q4_0 : CTTS_DT_Q8_0;
        const size_t rb = ctts_dtype_row_bytes(dt, K);
        char *w = malloc(rb * N);
        rand_blocks(dt, w, N, K);
        float x[T * K], bias[N], y[N_BE][T * N];
        fill(x, T * K);
        fill(bias, N);
        ctts_tensor wq = {.dtype = dt, .ndim = 2, .shape = {N, K}, .data = w, .nbytes = rb * N};
        for (int b = 0; b < N_BE; b++) {
            if (!B.be[b]) continue;
            REQUIRE(B.be[b]->supports_dtype(B.be[b], dt));
            B.be[b]->linear(B.be[b], y[b], x, &wq, bias, T);
            if (b % 2 == 1) CHECK(memcmp(y[b], y[b - 1], sizeof y[b]) == 0);
            for (int i = 0; i < T * N && b > 0; i++) {
                /* sum |terms| <= sum |w| |x| (1 + 1/127): bound it with the dequantized weights. */
                float wd[K];
                if (d) dequant_row_q4_0_ref((const block_q4_0 *)(w + rb * (i % N)), wd, K);
                else dequant_row_q8_0_ref((const block_q8_0 *)(w + rb * (i % N)), wd, K);
                double mag = fabs(bias[i % N]);
                for (int j = 0; j < K; j++) mag += 1.01 * fabs((double)wd[j] * x[(i / N) * K + j]);
                if (!(fabs(y[b][i] - y[0][i]) <= 1e-5 * mag + 1e-6)) {
                    TEST_FAIL_AT("linear %s [%s] i=%d: %g vs scalar %g", ctts_dtype_name(dt),
                                 B.label[b], i, (double)y[b][i], (double)y[0][i]);
                    break;
                }
            }
        }
        free(w);
    }
    close_backends(&B);
}

/* ---------------------------------------------------------------- quantized GEMV / snake */

/* Kernel tables of every tier this host and build have (index 0 = scalar). */
static int kernel_tiers(cpu_kernels *k) {
    static const ctts_cpu_isa isas[] = {CTTS_ISA_SCALAR, CTTS_ISA_AVX2, CTTS_ISA_AVX512,
                                        CTTS_ISA_NEON};
    int n = 0;
    for (int i = 0; i < 4; i++) {
        cpu_kernels_init(&k[n], isas[i]);
        if (k[n].isa == isas[i]) n++;
    }
    return n;
}

/* matmul_q_case on every x86 SIMD tier (AVX2 and AVX-512, not only the
 * host's best), at K whose block counts leave every remainder of the 8-block
 * scale groups and of the block pairs, T up to 5. */
static void test_matmul_q_tiers(void) {
    cpu_kernels k[4];
    int nk = kernel_tiers(k);
    int n = 0;
    for (int i = 0; i < nk; i++)
        if (k[i].isa == CTTS_ISA_AVX2 || k[i].isa == CTTS_ISA_AVX512) k[n++] = k[i];
    if (n == 0) SKIP("no x86 SIMD tier on this host");
    static const int Rs[] = {1, 31, 33}, Ks[] = {32, 96, 288, 544, 1056, 4096};
    static const int Ts[] = {1, 2, 3, 4, 5};
    for (int d = 0; d < 2; d++) {
        const ctts_dtype dt = d ? CTTS_DT_Q4_0 : CTTS_DT_Q8_0;
        for (int ri = 0; ri < 3; ri++)
            for (int ki = 0; ki < 6; ki++)
                for (int ti = 0; ti < 5; ti++) CHECK(matmul_q_case(k, n, dt, Rs[ri], Ks[ki], Ts[ti]));
        CHECK(matmul_q_case(k, n, dt, 4097, 288, 1));
        CHECK(matmul_q_case(k, n, dt, 4097, 544, 2));
        CHECK(matmul_q_case(k, n, dt, 7, 8192 + 32, 4)); /* beyond the GEMV stack buffers */
    }
}

/* Backend linear with Q8_0 / Q4_0 weights: 1 and 2 threads bit-identical on
 * every tier, and each output row independent of the others (a single-row
 * weight view gives the same bits as that row within the full matrix). */
static void test_linear_q_threads(void) {
    backends B = open_backends();
    static const int Ns[] = {1, 33, 4097}, Ks[] = {64, 1056}, Ts[] = {1, 2, 3, 5};
    for (int d = 0; d < 2; d++)
        for (int ni = 0; ni < 3; ni++)
            for (int ki = 0; ki < 2; ki++)
                for (int ti = 0; ti < 4; ti++) {
                    const ctts_dtype dt = d ? CTTS_DT_Q4_0 : CTTS_DT_Q8_0;
                    const int N = Ns[ni], K = Ks[ki], T = Ts[ti];
                    if (N > 1000 && T > 2) continue;
                    const size_t rb = ctts_dtype_row_bytes(dt, K);
                    float *wf = malloc((size_t)N * K * 4), *x = malloc((size_t)T * K * 4);
                    char *wq = malloc(rb * N);
                    float *y1 = malloc((size_t)T * N * 4), *y2 = malloc((size_t)T * N * 4);
                    float *yr = malloc((size_t)T * 4);
                    fill(wf, (size_t)N * K);
                    fill(x, (size_t)T * K);
                    for (int r = 0; r < N; r++) {
                        if (d) quant_row_q4_0_ref(wf + (size_t)r * K, (block_q4_0 *)(wq + rb * r), K);
                        else quant_row_q8_0_ref(wf + (size_t)r * K, (block_q8_0 *)(wq + rb * r), K);
                    }
                    ctts_tensor w = {.dtype = dt, .ndim = 2, .shape = {N, K}, .data = wq,
                                     .nbytes = rb * N};
                    const int last = N - 1;
                    ctts_tensor w1 = {.dtype = dt, .ndim = 2, .shape = {1, K},
                                      .data = wq + rb * last, .nbytes = rb};
                    for (int b = 0; b + 1 < N_BE; b += 2) {
                        if (!B.be[b] || !B.be[b + 1]) continue;
                        B.be[b]->linear(B.be[b], y1, x, &w, NULL, T);
                        B.be[b + 1]->linear(B.be[b + 1], y2, x, &w, NULL, T);
                        if (memcmp(y1, y2, (size_t)T * N * 4) != 0)
                            TEST_FAIL_AT("%s %s N=%d K=%d T=%d: 1 vs 2 threads differ", B.label[b],
                                         ctts_dtype_name(dt), N, K, T);
                        B.be[b]->linear(B.be[b], yr, x, &w1, NULL, T);
                        for (int t = 0; t < T; t++)
                            if (memcmp(&yr[t], &y1[(size_t)t * N + last], 4) != 0)
                                TEST_FAIL_AT("%s %s N=%d K=%d T=%d: row %d alone differs",
                                             B.label[b], ctts_dtype_name(dt), N, K, T, last);
                    }
                    free(wf), free(x), free(wq), free(y1), free(y2), free(yr);
                }
    close_backends(&B);
}

/* snake_row of every tier vs x + b sin(a x)^2 in double (of the same float
 * argument a * x): |sin^2 error| < 4e-7 (the bound stated in kernels.h) for
 * |a x| up to 1e4 and 1e6; libm beyond, NaN / inf propagate; in place. */
static void test_snake(void) {
    cpu_kernels k[4];
    const int nk = kernel_tiers(k);
    static const int ns[] = {1, 7, 17, 33, 1000};
    static const float ranges[] = {4.0f, 1e4f, 1e6f, 1e8f};
    for (int i = 0; i < nk; i++)
        for (int ri = 0; ri < 4; ri++)
            for (int ni = 0; ni < 5; ni++) {
                const int n = ns[ni];
                float *xb = malloc((size_t)(n + 1) * 4), *x = xb + 1; /* misaligned */
                float *yb = malloc((size_t)(n + 1) * 4), *y = yb + 1;
                fill(x, (size_t)n);
                const float a = 1.7f, b = 0.8f;
                for (int j = 0; j < n; j++) x[j] *= ranges[ri] / a;
                if (n >= 33) {
                    x[5] = NAN;
                    x[20] = INFINITY;
                    x[21] = 0.0f;
                    x[22] = (float)(3.14159265358979 / a); /* a x near pi: sin^2 ~ 0 */
                }
                k[i].snake_row(y, x, n, a, b);
                double worst = 0;
                int bad = 0;
                for (int j = 0; j < n; j++) {
                    const float arg = x[j] * a;
                    const double s = sin((double)arg), want = (double)x[j] + b * s * s;
                    if (isnan(want)) {
                        bad += !isnan(y[j]);
                        continue;
                    }
                    /* sin^2 error, plus the rounding of x + b s^2 */
                    const double err = fabs((double)y[j] - want) - 1.2e-7 * fabs(want);
                    if (err / b > worst) worst = err / b;
                }
                if (bad || !(worst < 4e-7))
                    TEST_FAIL_AT("%s snake n=%d |a x| <= %g: sin^2 error %g, %d NaN mismatches",
                                 k[i].name, n, (double)ranges[ri], worst, bad);
                memcpy(y, x, (size_t)n * 4);
                float *y2 = malloc((size_t)n * 4);
                k[i].snake_row(y2, x, n, a, b);
                k[i].snake_row(y, y, n, a, b); /* in place */
                CHECK(memcmp(y, y2, (size_t)n * 4) == 0);
                free(y2), free(xb), free(yb);
            }
    /* Through the backend: channel rows with their own a, b; 1 and 2 threads equal. */
    backends B = open_backends();
    enum { C = 5, T = 777 };
    static float x[C * T], y1[C * T], y2[C * T], av[C], bv[C];
    fill(x, C * T);
    for (int c = 0; c < C; c++) av[c] = 0.5f + c, bv[c] = 1.0f / (c + 1);
    for (int j = 0; j < C * T; j++) x[j] *= 20.0f;
    for (int be = 0; be + 1 < N_BE; be += 2) {
        if (!B.be[be] || !B.be[be + 1]) continue;
        B.be[be]->snake(B.be[be], y1, x, av, bv, C, T);
        B.be[be + 1]->snake(B.be[be + 1], y2, x, av, bv, C, T);
        CHECK(memcmp(y1, y2, sizeof y1) == 0);
        int bad = 0;
        for (int c = 0; c < C; c++)
            for (int t = 0; t < T; t++) {
                const float xv = x[c * T + t];
                const double s = sin((double)(xv * av[c]));
                const double want = xv + bv[c] * s * s;
                bad += !(fabs(y1[c * T + t] - want) <= 4e-7 * bv[c] + 1.2e-7 * fabs(want));
            }
        if (bad) TEST_FAIL_AT("%s snake: %d mismatches", B.label[be], bad);
    }
    close_backends(&B);
}

static void test_isa_cap(void) {
    cpu_kernels k;
    cpu_kernels_init(&k, CTTS_ISA_SCALAR);
    CHECK(k.isa == CTTS_ISA_SCALAR);
    cpu_kernels_init(&k, CTTS_ISA_AUTO);
    CHECK(k.isa == cpu_isa_detect());
    cpu_kernels_init(&k, CTTS_ISA_NEON);
    CHECK(k.isa == CTTS_ISA_SCALAR || cpu_isa_detect() == CTTS_ISA_NEON);
#if defined(__aarch64__)
    CHECK(k.isa == CTTS_ISA_NEON && strncmp(k.name, "neon", 4) == 0);
    CHECK(k.matmul_q[CTTS_DT_Q8_0] != NULL && k.matmul_q[CTTS_DT_Q4_0] != NULL);
    CHECK(k.matmul[CTTS_DT_BF16] != NULL && k.matmul[CTTS_DT_F16] != NULL);
#endif
}

/* conv1d / conv_transpose1d on awkward shapes (cin 1/3/31, cout 1/17,
 * depthwise, K 1/3/7, stride 1/2/4, dilation 1/3, Tout / Tin 1/5/33): tile
 * edges of the SIMD tiers in channels and time, channel splits at odd
 * offsets (2 threads, 17 channels) and convT phases without taps (K < stride). */
static void test_conv_shapes(void) {
    backends B = open_backends();
    static const int chans[][3] = {{1, 1, 1}, {1, 17, 1}, {3, 1, 1}, {31, 17, 1}, {17, 17, 17}};
    static const int Ks[] = {1, 3, 7}, strides[] = {1, 2, 4}, Ts[] = {1, 5, 33};
    static const ctts_dtype dts[] = {CTTS_DT_F32, CTTS_DT_BF16, CTTS_DT_F16};
    int n = 0;
    for (int c = 0; c < 5; c++)
        for (int ki = 0; ki < 3; ki++)
            for (int si = 0; si < 3; si++)
                for (int ti = 0; ti < 3; ti++, n++) {
                    const int K = Ks[ki], S = strides[si], T = Ts[ti];
                    const int dil = S == 1 && n % 2 ? 3 : 1, span = (K - 1) * dil + 1;
                    CHECK(conv1d_case(&B, dts[n % 3], chans[c][0], chans[c][1], chans[c][2], K, S,
                                      dil, span + (T - 1) * S, n % 2));
                    CHECK(convt_case(&B, dts[(n + 1) % 3], chans[c][0], chans[c][1], chans[c][2], K,
                                     S, T, (n + 1) % 2));
                }
    close_backends(&B);
}

/* act of every tier on a dense grid over [-12, 12] (and +/-0, +/-100) against
 * double: GELU and SiLU within 4e-7 (1 + |y|), ELU within 2 ulp-ish
 * (3e-7 |y| + 1e-9), so a wrong polynomial coefficient shows. */
static void test_act_accuracy(void) {
    cpu_kernels k[4];
    const int nk = kernel_tiers(k);
    const int n = 48004;
    float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
    for (int i = 0; i < n - 4; i++) x[i] = -12.0f + 24.0f * (float)i / (float)(n - 5);
    x[n - 4] = 0.0f;
    x[n - 3] = -0.0f;
    x[n - 2] = 100.0f;
    x[n - 1] = -100.0f;
    for (int t = 0; t < nk; t++)
        for (int kind = CPU_ACT_GELU_ERF; kind <= CPU_ACT_ELU; kind++) {
            k[t].act(y, x, n, kind);
            double worst = 0;
            int wi = 0;
            for (int i = 0; i < n; i++) {
                const double v = x[i];
                const double r = kind == CPU_ACT_GELU_ERF ? 0.5 * v * (1 + erf(v / sqrt(2.0)))
                                  : kind == CPU_ACT_SILU  ? v / (1 + exp(-v))
                                                          : (v > 0 ? v : expm1(v));
                const double tol =
                    kind == CPU_ACT_ELU ? 3e-7 * fabs(r) + 1e-9 : 4e-7 * (1 + fabs(r));
                const double e = fabs(y[i] - r) / tol;
                if (!(e <= worst)) {
                    worst = e;
                    wi = i;
                }
            }
            if (!(worst <= 1.0))
                TEST_FAIL_AT("%s act %d: x=%.9g error %.3g of the bound", k[t].name, kind,
                             (double)x[wi], worst);
        }
    free(x);
    free(y);
}

/* f16 <-> f32 rows on every tier equal the scalar conversions bit for bit:
 * all 65536 halves one way; the other way values at every rounding edge
 * (ties both ways, half subnormals, the top of the range, which saturates),
 * signed zeros, infinities and NaN, at lengths that leave every vector
 * remainder. */
static void test_f16_rows(void) {
    cpu_kernels k[4];
    const int nk = kernel_tiers(k);
    enum { NH = 65536, NF = 4099 };
    uint16_t *h = malloc(NH * sizeof *h), *hy = malloc(NF * sizeof *hy);
    float *f = malloc(NH * sizeof *f), *x = malloc(NF * sizeof *x);
    REQUIRE(h && hy && f && x);
    for (int i = 0; i < NH; i++) h[i] = (uint16_t)i;
    ctts_rng r;
    ctts_rng_seed(&r, 77);
    for (int i = 0; i < NF; i++) {
        const uint16_t b = (uint16_t)(ctts_rng_u64(&r) & 0x7bffu); /* finite halves */
        const float v = ctts_f16_to_f32(b) * (ctts_rng_u64(&r) & 1 ? -1.0f : 1.0f);
        float e = ctts_f16_to_f32((uint16_t)(b + 1)) - ctts_f16_to_f32(b); /* spacing above */
        switch (i % 5) {
        case 0: x[i] = v; break;
        case 1: x[i] = v + 0.5f * e * (v < 0 ? -1.0f : 1.0f); break; /* exact tie */
        case 2: x[i] = v + 0.49f * e; break;
        case 3: x[i] = v + 0.51f * e; break;
        default: x[i] = 3.0f * ctts_rng_normal(&r); break;
        }
    }
    const float special[] = {0.0f,     -0.0f,   65504.0f, -65504.0f, 65519.0f, 65520.0f,
                             -65536.0f, 1e6f,   -1e30f,   INFINITY,  -INFINITY, NAN,
                             6e-8f,     3e-8f,  2.9e-8f,  -5.96e-8f, 1e-40f,    6.1035e-5f};
    memcpy(x, special, sizeof special);
    for (int t = 0; t < nk; t++) {
        REQUIRE(k[t].f16_to_f32 && k[t].f32_to_f16);
        k[t].f16_to_f32(f, h, NH);
        int bad = 0;
        for (int i = 0; i < NH; i++) {
            const float ref = ctts_f16_to_f32(h[i]);
            bad += isnan(ref) ? !isnan(f[i]) : memcmp(&ref, &f[i], 4) != 0;
        }
        if (bad) TEST_FAIL_AT("%s f16_to_f32: %d of 65536 differ", k[t].name, bad);
        static const int lens[] = {NF, 1, 3, 7, 9, 15, 17};
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            const int n = lens[li];
            memset(hy, 0xAB, NF * sizeof *hy);
            k[t].f32_to_f16(hy, x, n);
            bad = 0;
            for (int i = 0; i < n; i++) {
                const float c = x[i] > 65504.0f ? 65504.0f : x[i] < -65504.0f ? -65504.0f : x[i];
                const uint16_t ref = ctts_f32_to_f16(c);
                bad += isnan(x[i]) ? (hy[i] & 0x7fffu) <= 0x7c00u : hy[i] != ref;
            }
            if (n < NF) bad += hy[n] != 0xABAB; /* nothing written past n */
            if (bad) TEST_FAIL_AT("%s f32_to_f16 n=%d: %d differ", k[t].name, n, bad);
        }
    }
    /* Saturation, not infinity. */
    k[nk - 1].f32_to_f16(hy, (const float[]){1e6f, -INFINITY}, 2);
    CHECK(hy[0] == 0x7bffu && hy[1] == 0xfbffu);
    free(h), free(hy), free(f), free(x);
}

static void fill_normal(float *x, size_t n, uint64_t seed, float scale) {
    ctts_rng r;
    ctts_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = scale * ctts_rng_normal(&r);
}

/* attend_f16 (where a tier has it) equals attend on the same values widened
 * to float bit for bit: the two are one kernel with a different load. */
static void test_attend_f16(void) {
    cpu_kernels k[4];
    const int nk = kernel_tiers(k);
    static const int cases[][3] = {{1, 2, 16}, {70, 2, 128}, {129, 4, 64}, {5, 1, 256}, {64, 3, 32}};
    for (int t = 0; t < nk; t++) {
        if (!k[t].attend_f16) continue;
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            const int n = cases[c][0], nq = cases[c][1], Dh = cases[c][2];
            const size_t ld = (size_t)Dh + 16; /* rows apart, as in a wider cache */
            uint16_t *kh = malloc(n * ld * 2), *vh = malloc(n * ld * 2);
            float *kf = malloc(n * ld * 4), *vf = malloc(n * ld * 4), *q = malloc((size_t)nq * Dh * 4);
            float *o1 = malloc((size_t)nq * Dh * 4), *o2 = malloc((size_t)nq * Dh * 4);
            REQUIRE(kh && vh && kf && vf && q && o1 && o2);
            fill_normal(q, (size_t)nq * Dh, 3, 1.0f);
            fill_normal(kf, n * ld, 4, 2.0f);
            fill_normal(vf, n * ld, 5, 1.0f);
            k[0].f32_to_f16(kh, kf, (int)(n * ld));
            k[0].f32_to_f16(vh, vf, (int)(n * ld));
            k[0].f16_to_f32(kf, kh, (int)(n * ld));
            k[0].f16_to_f32(vf, vh, (int)(n * ld));
            CHECK(k[t].attend_f16(o1, q, nq, kh, vh, ld, n, Dh, 0.125f) == 1);
            CHECK(k[t].attend(o2, q, nq, kf, vf, ld, n, Dh, 0.125f) == 1);
            if (memcmp(o1, o2, (size_t)nq * Dh * 4))
                TEST_FAIL_AT("%s attend_f16 n=%d nq=%d Dh=%d differs from attend", k[t].name, n, nq, Dh);
            free(kh), free(vh), free(kf), free(vf), free(q), free(o1), free(o2);
        }
        /* Sizes it does not take: 0 and nothing written. */
        float o = 7.0f, qq[24] = {0};
        uint16_t kv[24] = {0};
        CHECK(k[t].attend_f16(&o, qq, 1, kv, kv, 24, 1, 24, 1.0f) == 0 && o == 7.0f);
    }
}

TEST_MAIN(T(test_linear), T(test_linear_conv1x1_shape), T(test_conv1d), T(test_conv_transpose1d),
          T(test_attention), T(test_norms), T(test_elementwise), T(test_rows_ops), T(test_rope),
          T(test_memory_and_dtypes), T(test_matmul_q), T(test_quant_row_q8_0), T(test_linear_q),
          T(test_isa_cap), T(test_matmul_q_tiers), T(test_linear_q_threads), T(test_snake),
          T(test_conv_shapes), T(test_act_accuracy), T(test_f16_rows), T(test_attend_f16))
