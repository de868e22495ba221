/*
 * Kernel microbenchmarks of the CPU backend, shaped like Pocket TTS:
 *  - linear GEMV (T = 1), the FlowLM's per-frame work: 1024x1024, 4096x1024,
 *    1024x4096, and the Qwen3-TTS talker's 3072x1024 / 1024x3072, with F32 /
 *    BF16 / Q8_0 / Q4_0 weights, reported as GB/s of weights streamed.
 *    Weights rotate over enough copies (> 128 MiB per pass, 4x a 32 MiB L3)
 *    that they come from DRAM, as a full model's weights do. "gemv-hot"
 *    repeats one 1024x1024 matrix (in L2/L3): the kernels' compute rate.
 *  - linear GEMM T = 16 (Mimi transformer) and 64 (prefill block): GFLOP/s.
 *  - the Mimi decoder's convolutions at their real shapes: GFLOP/s.
 *  - SnakeBeta (Qwen3-TTS codec) over a [96, 7680] activation: Gelem/s.
 * For each ISA tier the host has and 1 / 2 threads. Times are the best of 5
 * slices of the budget, in process CPU time / threads (noise on shared VMs).
 * Usage: bench_kernels [seconds per case (0.3)] [substring filter]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "cpu/kernels.h"
#include "quant/quant.h"

#define ROUNDS 5

/* Process CPU time, all threads. On a shared machine a time slice lost to
 * another process inflates wall time but not this; divided by the thread
 * count it estimates the wall time on a quiet machine (the pool's workers
 * spin only between ops). */
static int g_threads = 1;
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (ts.tv_sec + ts.tv_nsec * 1e-9) / g_threads;
}

static void fill_random(float *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 9) & 0xffff) / 65536.0f - 0.5f;
    }
}

/* Weight tensor {N, K} of dtype dt from random floats. */
static ctts_tensor make_weight(ctts_dtype dt, int N, int K, unsigned seed) {
    const size_t n = (size_t)N * K, bytes = ctts_dtype_row_bytes(dt, K) * (size_t)N;
    float *tmp = malloc(n * sizeof *tmp);
    fill_random(tmp, n, seed);
    ctts_tensor w = {.dtype = dt, .ndim = 2, .shape = {N, K}, .nbytes = bytes};
    w.data = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    for (int r = 0; r < N; r++) {
        const float *src = tmp + (size_t)r * K;
        char *dst = (char *)w.data + ctts_dtype_row_bytes(dt, K) * (size_t)r;
        if (dt == CTTS_DT_Q8_0) quant_row_q8_0_ref(src, (block_q8_0 *)dst, K);
        else if (dt == CTTS_DT_Q4_0) quant_row_q4_0_ref(src, (block_q4_0 *)dst, K);
        else
            for (int k = 0; k < K; k++) {
                if (dt == CTTS_DT_F32) ((float *)dst)[k] = src[k];
                else ((uint16_t *)dst)[k] = ctts_f32_to_bf16(src[k]);
            }
    }
    free(tmp);
    return w;
}

typedef struct {
    ctts_backend *be;
    double budget;
    const char *isa;
    int threads;
    const char *filter;
} ctx;

static int wanted(const ctx *c, const char *name) { return !c->filter || strstr(name, c->filter); }

static void report(const ctx *c, const char *name, double t, double amount, const char *unit) {
    printf("%-36s %-7s %3d %10.1f us %8.2f %s\n", name, c->isa, c->threads, t * 1e6,
           amount / t * 1e-9, unit);
    fflush(stdout);
}

static void bench_linear(const ctx *c, ctts_dtype dt, int N, int K, int T, int hot) {
    char name[96];
    if (T == 1)
        snprintf(name, sizeof name, "%s %dx%d %s", hot ? "gemv-hot" : "gemv", N, K, ctts_dtype_name(dt));
    else snprintf(name, sizeof name, "gemm T=%d %dx%d %s", T, N, K, ctts_dtype_name(dt));
    if (!wanted(c, name)) return;
    const size_t bytes = ctts_dtype_row_bytes(dt, K) * (size_t)N;
    const int copies = T == 1 && !hot ? (int)(128u * 1024 * 1024 / bytes) + 1 : 1;
    ctts_tensor *w = malloc((size_t)copies * sizeof *w);
    for (int i = 0; i < copies; i++) w[i] = make_weight(dt, N, K, 7u + (unsigned)i);
    float *x = aligned_alloc(64, ((size_t)T * K * 4 + 63) & ~(size_t)63);
    float *y = aligned_alloc(64, ((size_t)T * N * 4 + 63) & ~(size_t)63);
    fill_random(x, (size_t)T * K, 3);
    for (int i = 0; i < copies; i++) c->be->linear(c->be, y, x, &w[i], NULL, T);
    double best = 1e30;
    long calls = 0;
    for (int round = 0; round < ROUNDS; round++) {
        long n = 0;
        const double t0 = now_s();
        double t1;
        do {
            c->be->linear(c->be, y, x, &w[calls++ % copies], NULL, T);
            n++;
        } while ((t1 = now_s()) - t0 < c->budget / ROUNDS);
        if ((t1 - t0) / n < best) best = (t1 - t0) / n;
    }
    if (T == 1) report(c, name, best, (double)bytes, "GB/s");
    else report(c, name, best, 2.0 * N * K * T, "GFLOP/s");
    for (int i = 0; i < copies; i++) free(w[i].data);
    free(w);
    free(x);
    free(y);
}

static void bench_conv(const ctx *c, const char *label, int transposed, int cin, int cout, int K,
                       int stride, int groups, int Tin) {
    if (!wanted(c, label)) return;
    const int cin_g = cin / groups, cout_g = cout / groups;
    const size_t nw = transposed ? (size_t)cin * cout_g * K : (size_t)cout * cin_g * K;
    float *wd = malloc(nw * 4);
    fill_random(wd, nw, 5);
    ctts_tensor w = {.dtype = CTTS_DT_F32, .ndim = 3,
                     .shape = {transposed ? cin : cout, transposed ? cout_g : cin_g, K},
                     .data = wd, .nbytes = nw * 4};
    const int Tout = transposed ? (Tin - 1) * stride + K : (Tin - K) / stride + 1;
    float *x = malloc((size_t)cin * Tin * 4), *y = malloc((size_t)cout * Tout * 4);
    fill_random(x, (size_t)cin * Tin, 9);
    const double flops = transposed ? 2.0 * cin * cout_g * K * Tin : 2.0 * cout * cin_g * K * Tout;
    double best = 1e30;
    for (int round = 0; round < ROUNDS; round++) {
        long n = 0;
        const double t0 = now_s();
        double t1;
        do {
            if (transposed) c->be->conv_transpose1d(c->be, y, x, &w, NULL, Tin, stride, groups);
            else c->be->conv1d(c->be, y, x, &w, NULL, Tin, stride, 1, groups);
            n++;
        } while ((t1 = now_s()) - t0 < c->budget / ROUNDS);
        if ((t1 - t0) / n < best) best = (t1 - t0) / n;
    }
    report(c, label, best, flops, "GFLOP/s");
    free(wd);
    free(x);
    free(y);
}

/* SnakeBeta over x[C, T] (Qwen3-TTS codec decoder): G elements/s. */
static void bench_snake(const ctx *c, int C, int T) {
    char name[64];
    snprintf(name, sizeof name, "snake %dx%d", C, T);
    if (!wanted(c, name)) return;
    float *x = malloc((size_t)C * T * 4), *y = malloc((size_t)C * T * 4);
    float *a = malloc((size_t)C * 4), *b = malloc((size_t)C * 4);
    fill_random(x, (size_t)C * T, 11);
    for (int i = 0; i < C; i++) a[i] = 1.0f + 0.01f * (float)i, b[i] = 0.5f;
    double best = 1e30;
    for (int round = 0; round < ROUNDS; round++) {
        long n = 0;
        const double t0 = now_s();
        double t1;
        do {
            c->be->snake(c->be, y, x, a, b, C, T);
            n++;
        } while ((t1 = now_s()) - t0 < c->budget / ROUNDS);
        if ((t1 - t0) / n < best) best = (t1 - t0) / n;
    }
    report(c, name, best, (double)C * T, "Gelem/s");
    free(x), free(y), free(a), free(b);
}

int main(int argc, char **argv) {
    const double budget = argc > 1 ? atof(argv[1]) : 0.3;
    const char *filter = argc > 2 ? argv[2] : NULL;
    const ctts_cpu_isa host = cpu_isa_detect();
    static const ctts_cpu_isa isas[] = {CTTS_ISA_SCALAR, CTTS_ISA_AVX2, CTTS_ISA_AVX512};
    static const char *isa_names[] = {"scalar", "avx2", "avx512"};
    printf("%-36s %-7s %3s %13s %8s\n", "case", "isa", "thr", "time/call", "rate");
    for (int ii = 0; ii < 3; ii++) {
        if (isas[ii] > host) continue;
        for (int threads = 1; threads <= 2; threads++) {
            ctx c = {.budget = budget, .isa = isa_names[ii], .threads = threads, .filter = filter};
            g_threads = threads;
            c.be = ctts_backend_cpu_new(threads, isas[ii]);
            if (!c.be) return 1;
            cpu_kernels k;
            cpu_kernels_init(&k, isas[ii]);
            if (k.isa != isas[ii]) { /* tier not built in */
                c.be->destroy(c.be);
                continue;
            }
            static const int shapes[][2] = {{1024, 1024}, {4096, 1024}, {1024, 4096},
                                            {3072, 1024}, {1024, 3072}};
            static const ctts_dtype dts[] = {CTTS_DT_F32, CTTS_DT_BF16, CTTS_DT_Q8_0,
                                             CTTS_DT_Q4_0};
            for (int d = 0; d < 4; d++) bench_linear(&c, dts[d], 1024, 1024, 1, 1);
            for (int s = 0; s < 5; s++)
                for (int d = 0; d < 4; d++)
                    bench_linear(&c, dts[d], shapes[s][0], shapes[s][1], 1, 0);
            for (int d = 2; d < 4; d++) { /* Qwen3 predictor / batched frames */
                bench_linear(&c, dts[d], 3072, 1024, 2, 0);
                bench_linear(&c, dts[d], 3072, 1024, 4, 0);
            }
            for (int d = 0; d < 4; d++) {
                if (d == 1) continue;
                bench_linear(&c, dts[d], 2048, 512, 16, 0);
                bench_linear(&c, dts[d], 512, 2048, 16, 0);
                bench_linear(&c, dts[d], 4096, 1024, 64, 0);
            }
            /* Mimi decoder (english): one 80 ms frame at 200 Hz is 16 steps. */
            bench_conv(&c, "conv1d 512->512 k7 T=16 (dec in)", 0, 512, 512, 7, 1, 1, 16 + 6);
            bench_conv(&c, "convT 512->256 k12 s6 T=16", 1, 512, 256, 12, 6, 1, 16);
            bench_conv(&c, "conv1d 256->128 k3 T=96 (res)", 0, 256, 128, 3, 1, 1, 96 + 2);
            bench_conv(&c, "conv1d 128->256 k1 T=96 (res)", 0, 128, 256, 1, 1, 1, 96);
            bench_conv(&c, "convT 256->128 k10 s5 T=96", 1, 256, 128, 10, 5, 1, 96);
            bench_conv(&c, "conv1d 128->64 k3 T=480 (res)", 0, 128, 64, 3, 1, 1, 480 + 2);
            bench_conv(&c, "convT 128->64 k8 s4 T=480", 1, 128, 64, 8, 4, 1, 480);
            bench_conv(&c, "conv1d 64->32 k3 T=1920 (res)", 0, 64, 32, 3, 1, 1, 1920 + 2);
            bench_conv(&c, "conv1d 32->64 k1 T=1920 (res)", 0, 32, 64, 1, 1, 1, 1920);
            bench_conv(&c, "conv1d 64->1 k3 T=1920 (out)", 0, 64, 1, 3, 1, 1, 1920 + 2);
            bench_conv(&c, "convT dw512 k32 s16 T=1 (upsample)", 1, 512, 512, 32, 16, 512, 1);
            bench_conv(&c, "conv1d 64->128 k8 s4 T=480 (enc)", 0, 64, 128, 8, 4, 1, 1920 + 4);
            bench_snake(&c, 96, 7680); /* Qwen3 codec: last decoder block, 4 frames */
            c.be->destroy(c.be);
        }
    }
    return 0;
}
