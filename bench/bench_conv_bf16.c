/*
 * Convolutions with F32 vs BF16 weights (flagged bf16_products) through the
 * CPU backend (best tier of the host: with AVX512_BF16 the BF16 case runs
 * vdpbf16ps on packed pairs, otherwise the float kernels on BF16-rounded x),
 * at the shapes of the
 * Qwen3-TTS speech decoder for one 4-frame call (T = 16 at 1536 channels ...
 * 7680 at 96) and of Pocket's SEANet decoder for one 80 ms frame. Prints
 * GFLOP/s (2 x multiply-adds / time) per shape, 1 and 2 threads, and the
 * summed time of each decoder's conv set (each shape times its count).
 * Times are the best of 5 slices of the budget in process CPU time / threads
 * (robust to other processes on a shared machine).
 * Transposed BF16 convs use the packed weights the models load
 * (pack_conv_transpose); NOPACK=1 in the environment times the stored layout.
 * Usage: bench_conv_bf16 [seconds per case (0.2)] [substring filter]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "cpu/kernels.h"

#define ROUNDS 5

static int g_threads = 1;
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (ts.tv_sec + ts.tv_nsec * 1e-9) / g_threads;
}

typedef struct {
    const char *model, *name;
    int transposed, cin, cout, k, stride, dil, T, count; /* T: tout (conv1d) / tin (convT) */
} conv_shape;

static const conv_shape SHAPES[] = {
    {"qwen3", "conv 1024->1536 k7 T16", 0, 1024, 1536, 7, 1, 1, 16, 1},
    {"qwen3", "convT 1536->768 k16 s8 T16", 1, 1536, 768, 16, 8, 1, 16, 1},
    {"qwen3", "res 768 k7 d1 T128", 0, 768, 768, 7, 1, 1, 128, 1},
    {"qwen3", "res 768 k7 d3 T128", 0, 768, 768, 7, 1, 3, 128, 1},
    {"qwen3", "res 768 k7 d9 T128", 0, 768, 768, 7, 1, 9, 128, 1},
    {"qwen3", "res 768 k1 T128", 0, 768, 768, 1, 1, 1, 128, 3},
    {"qwen3", "convT 768->384 k10 s5 T128", 1, 768, 384, 10, 5, 1, 128, 1},
    {"qwen3", "res 384 k7 d1 T640", 0, 384, 384, 7, 1, 1, 640, 1},
    {"qwen3", "res 384 k7 d3 T640", 0, 384, 384, 7, 1, 3, 640, 1},
    {"qwen3", "res 384 k7 d9 T640", 0, 384, 384, 7, 1, 9, 640, 1},
    {"qwen3", "res 384 k1 T640", 0, 384, 384, 1, 1, 1, 640, 3},
    {"qwen3", "convT 384->192 k8 s4 T640", 1, 384, 192, 8, 4, 1, 640, 1},
    {"qwen3", "res 192 k7 d1 T2560", 0, 192, 192, 7, 1, 1, 2560, 1},
    {"qwen3", "res 192 k7 d3 T2560", 0, 192, 192, 7, 1, 3, 2560, 1},
    {"qwen3", "res 192 k7 d9 T2560", 0, 192, 192, 7, 1, 9, 2560, 1},
    {"qwen3", "res 192 k1 T2560", 0, 192, 192, 1, 1, 1, 2560, 3},
    {"qwen3", "convT 192->96 k6 s3 T2560", 1, 192, 96, 6, 3, 1, 2560, 1},
    {"qwen3", "res 96 k7 d1 T7680", 0, 96, 96, 7, 1, 1, 7680, 1},
    {"qwen3", "res 96 k7 d3 T7680", 0, 96, 96, 7, 1, 3, 7680, 1},
    {"qwen3", "res 96 k7 d9 T7680", 0, 96, 96, 7, 1, 9, 7680, 1},
    {"qwen3", "res 96 k1 T7680", 0, 96, 96, 1, 1, 1, 7680, 3},
    {"qwen3", "conv 96->1 k7 T7680", 0, 96, 1, 7, 1, 1, 7680, 1},
    {"pocket", "conv 512->512 k7 T16", 0, 512, 512, 7, 1, 1, 16, 1},
    {"pocket", "convT 512->256 k12 s6 T16", 1, 512, 256, 12, 6, 1, 16, 1},
    {"pocket", "res 256->128 k3 T96", 0, 256, 128, 3, 1, 1, 96, 1},
    {"pocket", "res 128->256 k1 T96", 0, 128, 256, 1, 1, 1, 96, 1},
    {"pocket", "convT 256->128 k10 s5 T96", 1, 256, 128, 10, 5, 1, 96, 1},
    {"pocket", "res 128->64 k3 T480", 0, 128, 64, 3, 1, 1, 480, 1},
    {"pocket", "res 64->128 k1 T480", 0, 64, 128, 1, 1, 1, 480, 1},
    {"pocket", "convT 128->64 k8 s4 T480", 1, 128, 64, 8, 4, 1, 480, 1},
    {"pocket", "res 64->32 k3 T1920", 0, 64, 32, 3, 1, 1, 1920, 1},
    {"pocket", "res 32->64 k1 T1920", 0, 32, 64, 1, 1, 1, 1920, 1},
    {"pocket", "conv 64->1 k3 T1920", 0, 64, 1, 3, 1, 1, 1920, 1},
};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

static void fill(float *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 9) & 0xffff) / 65536.0f - 0.5f;
    }
}

/* Best seconds per call of one shape with weights of dtype dt. */
static double time_conv(ctts_backend *be, const conv_shape *s, ctts_dtype dt, double budget) {
    const int tin = s->transposed ? s->T : (s->T - 1) * s->stride + (s->k - 1) * s->dil + 1;
    const int tout = s->transposed ? (s->T - 1) * s->stride + s->k : s->T;
    const size_t nw = (size_t)s->cin * s->cout * s->k;
    float *x = malloc((size_t)s->cin * tin * 4), *y = malloc((size_t)s->cout * tout * 4);
    float *wf = malloc(nw * 4), *bias = malloc((size_t)s->cout * 4);
    fill(x, (size_t)s->cin * tin, 1);
    fill(wf, nw, 2);
    fill(bias, (size_t)s->cout, 3);
    void *w = wf;
    uint16_t *wb = NULL;
    if (dt == CTTS_DT_BF16) {
        wb = malloc(nw * 2);
        for (size_t i = 0; i < nw; i++) wb[i] = ctts_f32_to_bf16(wf[i]);
        w = wb;
    }
    ctts_tensor wt = {.dtype = dt, .ndim = 3, .data = w, .bf16_products = 1};
    wt.shape[0] = s->transposed ? s->cin : s->cout;
    wt.shape[1] = s->transposed ? s->cout : s->cin;
    wt.shape[2] = s->k;
    /* Transposed convs with the layout the models use (backend.h pack_conv_transpose). */
    ctts_tensor *packed = s->transposed && dt == CTTS_DT_BF16 && !getenv("NOPACK")
                              ? be->pack_conv_transpose(be, &wt, 1)
                              : NULL;
    const ctts_tensor *wu = packed ? packed : &wt;
    double best = 1e30;
    for (int r = 0; r <= ROUNDS; r++) { /* round 0 warms up */
        int n = 0;
        const double t0 = now_s();
        double t1;
        do {
            if (s->transposed) be->conv_transpose1d(be, y, x, wu, bias, tin, s->stride, 1);
            else be->conv1d(be, y, x, &wt, bias, tin, s->stride, s->dil, 1);
            n++;
        } while ((t1 = now_s()) - t0 < budget / ROUNDS);
        if (r > 0 && (t1 - t0) / n < best) best = (t1 - t0) / n;
    }
    if (packed) be->free_packed(be, packed);
    free(x);
    free(y);
    free(wf);
    free(wb);
    free(bias);
    return best;
}

int main(int argc, char **argv) {
    const double budget = argc > 1 ? atof(argv[1]) : 0.2;
    const char *filter = argc > 2 ? argv[2] : NULL;
    cpu_kernels k;
    cpu_kernels_init(&k, CTTS_ISA_AUTO);
    printf("tier %s, BF16 convs %s\n", k.name,
           k.conv1d_bf16 ? "vdpbf16ps (AVX512_BF16)" : "float kernels on rounded x");
    printf("%-7s %-30s %8s | %9s %9s %6s | %9s %9s %6s\n", "model", "shape", "MFLOP", "f32/1",
           "bf16/1", "x", "f32/2", "bf16/2", "x");
    double total[2][2][2] = {{{0}}}; /* [model][threads-1][bf16] seconds per decoder call */
    for (int i = 0; i < N_SHAPES; i++) {
        const conv_shape *s = &SHAPES[i];
        if (filter && !strstr(s->name, filter) && !strstr(s->model, filter)) continue;
        const double macs = (double)s->cin * s->cout * s->k * s->T;
        double gf[2][2];
        for (int th = 1; th <= 2; th++) {
            g_threads = th;
            ctts_backend *be = ctts_backend_cpu_new(th, CTTS_ISA_AUTO);
            if (!be) return 1;
            for (int b = 0; b < 2; b++) {
                const double t = time_conv(be, s, b ? CTTS_DT_BF16 : CTTS_DT_F32, budget);
                gf[th - 1][b] = 2.0 * macs / t * 1e-9;
                total[strcmp(s->model, "qwen3") != 0][th - 1][b] += t * s->count;
            }
            be->destroy(be);
        }
        printf("%-7s %-30s %8.1f | %9.1f %9.1f %6.2f | %9.1f %9.1f %6.2f\n", s->model, s->name,
               2.0 * macs * 1e-6, gf[0][0], gf[0][1], gf[0][1] / gf[0][0], gf[1][0], gf[1][1],
               gf[1][1] / gf[1][0]);
    }
    static const char *names[2] = {"qwen3 (4 frames)", "pocket (1 frame)"};
    for (int m = 0; m < 2; m++)
        if (total[m][0][0] > 0)
            printf("%-38s ms: 1 thread f32 %.2f bf16 %.2f (x%.2f), 2 threads f32 %.2f bf16 %.2f "
                   "(x%.2f)\n",
                   names[m], total[m][0][0] * 1e3, total[m][0][1] * 1e3,
                   total[m][0][0] / total[m][0][1], total[m][1][0] * 1e3, total[m][1][1] * 1e3,
                   total[m][1][0] / total[m][1][1]);
    return 0;
}
