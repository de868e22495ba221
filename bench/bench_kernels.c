/*
 * Kernel microbenchmarks of the CPU backend, shaped like Pocket TTS:
 *  - linear GEMV (T = 1) 1024x4096 and 4096x1024, F32 / BF16 weights: GB/s
 *    of weights streamed. The weights rotate over enough copies (> 2x a
 *    32 MiB L3) that they come from DRAM, as a full model's 85 M weights do.
 *  - linear GEMM T = 16 and 100 (prefill, Mimi transformer): GFLOP/s.
 *  - conv1d 512 channels k7 over T = 16..1920, conv_transpose1d stride 6:
 *    GFLOP/s.
 * For each ISA tier the host has and 1 / 2 threads. Prints a table.
 * Times are the best of 5 slices of the budget (noise on shared VMs).
 * Usage: bench_kernels [seconds per case, default 0.5]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "cpu/kernels.h"

/* Each case runs in ROUNDS slices and reports the fastest slice: shared
 * virtual machines have bursts of interference of several x. */
#define ROUNDS 5

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fill_random(float *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 9) & 0xffff) / 65536.0f - 0.5f;
    }
}

/* Weight tensors of one shape in `copies` separate buffers. */
static ctts_tensor *make_copies(ctts_dtype dt, int N, int K, int copies) {
    ctts_tensor *w = calloc((size_t)copies, sizeof *w);
    const size_t n = (size_t)N * K, es = ctts_dtype_size(dt);
    float *tmp = malloc(n * sizeof *tmp);
    fill_random(tmp, n, 7);
    for (int c = 0; c < copies; c++) {
        w[c] = (ctts_tensor){.dtype = dt, .ndim = 2, .shape = {N, K}, .nbytes = n * es};
        w[c].data = aligned_alloc(64, (n * es + 63) & ~(size_t)63);
        for (size_t i = 0; i < n; i++) {
            if (dt == CTTS_DT_F32) ((float *)w[c].data)[i] = tmp[i];
            else ((uint16_t *)w[c].data)[i] = ctts_f32_to_bf16(tmp[i]);
        }
    }
    free(tmp);
    return w;
}

static void free_copies(ctts_tensor *w, int copies) {
    for (int c = 0; c < copies; c++) free(w[c].data);
    free(w);
}

/* Seconds per call of linear, averaged over at least `budget` seconds. */
static double time_linear(ctts_backend *be, const ctts_tensor *w, int copies, int T, double budget) {
    const int N = (int)w[0].shape[0], K = (int)w[0].shape[1];
    float *x = aligned_alloc(64, ((size_t)T * K * 4 + 63) & ~(size_t)63);
    float *y = aligned_alloc(64, ((size_t)T * N * 4 + 63) & ~(size_t)63);
    fill_random(x, (size_t)T * K, 3);
    for (int c = 0; c < copies; c++) be->linear(be, y, x, &w[c], NULL, T); /* warm-up */
    double best = 1e30;
    long calls = 0;
    for (int round = 0; round < ROUNDS; round++) {
        long n = 0;
        const double t0 = now_s();
        double t1;
        do {
            be->linear(be, y, x, &w[calls++ % copies], NULL, T);
            n++;
        } while ((t1 = now_s()) - t0 < budget / ROUNDS);
        if ((t1 - t0) / n < best) best = (t1 - t0) / n;
    }
    free(x);
    free(y);
    return best;
}

static double time_conv(ctts_backend *be, int transposed, int cin, int cout, int K, int stride,
                        int groups, int Tin, double budget, double *flops) {
    const int cin_g = cin / groups, cout_g = cout / groups;
    const size_t nw = transposed ? (size_t)cin * cout_g * K : (size_t)cout * cin_g * K;
    float *wd = malloc(nw * 4);
    fill_random(wd, nw, 5);
    ctts_tensor w = {.dtype = CTTS_DT_F32, .ndim = 3,
                     .shape = {transposed ? cin : cout, transposed ? cout_g : cin_g, K},
                     .data = wd};
    const int Tout = transposed ? (Tin - 1) * stride + K : (Tin - K) / stride + 1;
    float *x = malloc((size_t)cin * Tin * 4), *y = malloc((size_t)cout * Tout * 4);
    fill_random(x, (size_t)cin * Tin, 9);
    *flops = transposed ? 2.0 * cin * cout_g * K * Tin : 2.0 * cout * cin_g * K * Tout;
    double best = 1e30;
    for (int round = 0; round < ROUNDS; round++) {
        long n = 0;
        const double t0 = now_s();
        double t1;
        do {
            if (transposed) be->conv_transpose1d(be, y, x, &w, NULL, Tin, stride, groups);
            else be->conv1d(be, y, x, &w, NULL, Tin, stride, 1, groups);
            n++;
        } while ((t1 = now_s()) - t0 < budget / ROUNDS);
        if ((t1 - t0) / n < best) best = (t1 - t0) / n;
    }
    free(wd);
    free(x);
    free(y);
    return best;
}

int main(int argc, char **argv) {
    const double budget = argc > 1 ? atof(argv[1]) : 0.5;
    const int have_avx2 = cpu_isa_detect() == CTTS_ISA_AVX2;
    const int isas[] = {CTTS_ISA_SCALAR, CTTS_ISA_AVX2};
    const char *isa_names[] = {"scalar", "avx2"};

    printf("%-34s %-7s %3s %12s %10s\n", "case", "isa", "thr", "time/call", "rate");
    for (int ii = 0; ii < 2; ii++) {
        if (isas[ii] == CTTS_ISA_AVX2 && !have_avx2) continue;
        for (int threads = 1; threads <= 2; threads++) {
            ctts_backend *be = ctts_backend_cpu_new(threads, isas[ii]);
            if (!be) return 1;
            static const int shapes[][2] = {{1024, 4096}, {4096, 1024}};
            static const ctts_dtype dts[] = {CTTS_DT_F32, CTTS_DT_BF16};
            for (int s = 0; s < 2; s++)
                for (int d = 0; d < 2; d++) {
                    const int N = shapes[s][0], K = shapes[s][1];
                    const size_t bytes = (size_t)N * K * ctts_dtype_size(dts[d]);
                    const int copies = (int)(96u * 1024 * 1024 / bytes) + 1;
                    ctts_tensor *w = make_copies(dts[d], N, K, copies);
                    const double t = time_linear(be, w, copies, 1, budget);
                    char name[64];
                    snprintf(name, sizeof name, "gemv %dx%d %s", N, K, ctts_dtype_name(dts[d]));
                    printf("%-34s %-7s %3d %9.1f us %7.2f GB/s\n", name, isa_names[ii], threads,
                           t * 1e6, bytes / t * 1e-9);
                    static const int Ts[] = {16, 100};
                    for (int ti = 0; ti < 2 && isas[ii] == CTTS_ISA_AVX2; ti++) {
                        const double tg = time_linear(be, w, 1, Ts[ti], budget);
                        snprintf(name, sizeof name, "gemm T=%d %dx%d %s", Ts[ti], N, K,
                                 ctts_dtype_name(dts[d]));
                        printf("%-34s %-7s %3d %9.1f us %7.2f GFLOP/s\n", name, isa_names[ii],
                               threads, tg * 1e6, 2.0 * N * K * Ts[ti] / tg * 1e-9);
                    }
                    free_copies(w, copies);
                }
            static const int conv_T[] = {16, 120, 480, 1920};
            for (int ti = 0; ti < 4; ti++) {
                if (isas[ii] == CTTS_ISA_SCALAR && conv_T[ti] > 120) continue;
                double flops;
                const double t = time_conv(be, 0, 512, 512, 7, 1, 1, conv_T[ti] + 6, budget, &flops);
                char name[64];
                snprintf(name, sizeof name, "conv1d 512ch k7 T=%d", conv_T[ti]);
                printf("%-34s %-7s %3d %9.1f us %7.2f GFLOP/s\n", name, isa_names[ii], threads,
                       t * 1e6, flops / t * 1e-9);
            }
            {
                double flops;
                double t = time_conv(be, 0, 64, 64, 7, 1, 1, 1920 + 6, budget, &flops);
                printf("%-34s %-7s %3d %9.1f us %7.2f GFLOP/s\n", "conv1d 64ch k7 T=1920",
                       isa_names[ii], threads, t * 1e6, flops / t * 1e-9);
                t = time_conv(be, 1, 512, 256, 12, 6, 1, 16, budget, &flops);
                printf("%-34s %-7s %3d %9.1f us %7.2f GFLOP/s\n", "convT 512->256 k12 s6 T=16",
                       isa_names[ii], threads, t * 1e6, flops / t * 1e-9);
                t = time_conv(be, 1, 512, 512, 32, 16, 512, 1, budget, &flops);
                printf("%-34s %-7s %3d %9.1f us %7.2f GFLOP/s\n", "convT dw512 k32 s16 T=1",
                       isa_names[ii], threads, t * 1e6, flops / t * 1e-9);
            }
            be->destroy(be);
        }
    }
    return 0;
}
