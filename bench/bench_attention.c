/*
 * Decode-step attention of the Qwen3-TTS talker (28 layers, 16 query heads
 * over 8 KV heads of 128) at n cached positions: the F32 row-major cache
 * (attention_gqa; the as-stored mode) against the F16 head-major one
 * (kv_store_f16 + attention_gqa_f16; the fast modes). Each layer has its own
 * K / V buffers, so a step reads 28 x 2 x n x 4 KB (F32) from DRAM once n is
 * in the hundreds, as in a long utterance. Best of 30 steps, ms and the
 * bytes of cache read per second.
 *
 * Usage: bench_attention [positions (400)] [threads (2)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backend/backend.h"

enum { LAYERS = 28, H = 16, HKV = 8, DH = 128, KD = HKV * DH, QD = H * DH, STEPS = 30 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const int n = argc > 1 ? atoi(argv[1]) : 400, threads = argc > 2 ? atoi(argv[2]) : 2;
    if (n < 1 || n > 1 << 16) {
        fprintf(stderr, "positions must be in 1..65536\n");
        return 2;
    }
    ctts_backend *be = ctts_backend_cpu_new(threads, CTTS_ISA_AUTO);
    float *q = malloc(sizeof(float) * QD), *o = malloc(sizeof(float) * QD),
          *rows = malloc(sizeof(float) * (size_t)n * KD);
    float *k32[LAYERS], *v32[LAYERS];
    void *k16[LAYERS], *v16[LAYERS];
    if (!be || !q || !o || !rows) return 1;
    for (int i = 0; i < QD; i++) q[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)n * KD; i++) rows[i] = (float)(i % 13) * 0.01f;
    for (int l = 0; l < LAYERS; l++) {
        k32[l] = malloc(sizeof(float) * (size_t)n * KD), v32[l] = malloc(sizeof(float) * (size_t)n * KD);
        k16[l] = malloc(2 * (size_t)n * KD), v16[l] = malloc(2 * (size_t)n * KD);
        if (!k32[l] || !v32[l] || !k16[l] || !v16[l]) return 1;
        for (size_t i = 0; i < (size_t)n * KD; i++) k32[l][i] = v32[l][i] = rows[i];
        be->kv_store_f16(be, k16[l], v16[l], rows, rows, KD, n, 0, HKV, DH, n);
    }
    double best[2] = {1e9, 1e9};
    for (int r = 0; r < STEPS; r++)
        for (int f16 = 0; f16 < 2; f16++) { /* alternated, so both see the same host */
            const double t0 = now_s();
            for (int l = 0; l < LAYERS; l++) {
                if (f16)
                    be->attention_gqa_f16(be, o, q, QD, k16[l], v16[l], n, 1, n, n - 1, H, HKV, DH, 0);
                else
                    be->attention_gqa(be, o, q, QD, k32[l], v32[l], KD, 1, n, n - 1, H, HKV, DH, 0);
            }
            const double t = now_s() - t0;
            if (t < best[f16]) best[f16] = t;
        }
    printf("talker decode attention, %d positions, %d layers, %d threads (best of %d)\n", n,
           LAYERS, threads, STEPS);
    for (int f16 = 0; f16 < 2; f16++) {
        const double bytes = 2.0 * (f16 ? 2 : 4) * (double)n * KD * LAYERS;
        printf("  %-24s %7.3f ms per step  %6.1f GB/s  (%.0f MB of cache)\n",
               f16 ? "F16 head-major" : "F32 rows", best[f16] * 1e3, bytes / best[f16] / 1e9,
               bytes / 1e6);
    }
    for (int l = 0; l < LAYERS; l++) free(k32[l]), free(v32[l]), free(k16[l]), free(v16[l]);
    free(q), free(o), free(rows);
    be->destroy(be);
    return 0;
}
