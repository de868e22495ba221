/*
 * "No malloc in the per-frame loop": after the first frames of a stream
 * (which may set up lazily made buffers and the pipeline's worker), further
 * pocket_stream_step calls must not allocate. malloc, calloc, realloc and
 * aligned_alloc are interposed (this program defines them and forwards to
 * glibc's __libc_* entry points) and counted while a flag is set, on every
 * thread. Runs with the pipeline off and on, 1 and 2 threads, in f32 and
 * q8_0 (the quantized linear has its own activation buffer).
 * Skipped under AddressSanitizer (which owns malloc) and outside glibc.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "models/pocket/pocket.h"

#if defined(__SANITIZE_ADDRESS__)
#define NO_INTERPOSE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_INTERPOSE 1
#endif
#endif
#if !defined(__GLIBC__)
#define NO_INTERPOSE 1
#endif

#ifndef NO_INTERPOSE
static atomic_int counting, n_allocs;

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n) {
    if (atomic_load_explicit(&counting, memory_order_relaxed)) atomic_fetch_add(&n_allocs, 1);
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    if (atomic_load_explicit(&counting, memory_order_relaxed)) atomic_fetch_add(&n_allocs, 1);
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    if (atomic_load_explicit(&counting, memory_order_relaxed)) atomic_fetch_add(&n_allocs, 1);
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t al, size_t n) {
    if (atomic_load_explicit(&counting, memory_order_relaxed)) atomic_fetch_add(&n_allocs, 1);
    return __libc_memalign(al, n);
}
#endif

static char path_buf[512];
static const char *model_dir(void) {
    snprintf(path_buf, sizeof path_buf, "%s/pocket-tiny/model", test_golden_dir());
    return path_buf;
}

/* Allocations made by frames 3..3+n of one stream. -1 on error. */
static int allocs_in_steady_frames(int threads, int pipeline, ctts_weight_type wt, int n) {
#ifdef NO_INTERPOSE
    (void)threads, (void)pipeline, (void)wt, (void)n;
    return -1;
#else
    char err[512];
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = threads;
    mp.weight_type = wt;
    pocket_model *m = NULL;
    if (pocket_model_load(model_dir(), &mp, &m, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "    %s\n", err);
        return -1;
    }
    ctts_gen_params p = pocket_default_gen_params();
    p.eos_threshold = 1e9f;
    p.max_frames = n + 8;
    p.pipeline = pipeline;
    pocket_stream *s = NULL;
    float *pcm = malloc((size_t)pocket_frame_size(m) * sizeof *pcm);
    int result = -1;
    if (pocket_stream_new(m, &s, err, sizeof err) == CTTS_OK &&
        pocket_stream_start(s, NULL, &p, "Hello world, this is a test.", err, sizeof err) ==
            CTTS_OK) {
        ctts_status st = CTTS_OK;
        size_t got;
        for (int i = 0; i < 3 && st == CTTS_OK; i++) st = pocket_stream_step(s, pcm, &got, err, sizeof err);
        atomic_store(&n_allocs, 0);
        atomic_store(&counting, 1);
        for (int i = 0; i < n && st == CTTS_OK; i++) st = pocket_stream_step(s, pcm, &got, err, sizeof err);
        atomic_store(&counting, 0);
        if (st == CTTS_OK) result = atomic_load(&n_allocs);
        else fprintf(stderr, "    step: %s\n", err);
    }
    pocket_stream_free(s);
    free(pcm);
    pocket_model_free(m);
    return result;
#endif
}

static void test_no_malloc_per_frame(void) {
#ifdef NO_INTERPOSE
    SKIP("malloc interposition unavailable (sanitizer or non-glibc)");
#endif
#ifndef NO_INTERPOSE
    /* The interposition is live: a malloc made here is counted. */
    atomic_store(&n_allocs, 0);
    atomic_store(&counting, 1);
    void *volatile probe = malloc(16);
    atomic_store(&counting, 0);
    free(probe);
    REQUIRE(atomic_load(&n_allocs) == 1);
#endif
    FILE *f = fopen(model_dir(), "r");
    if (!f) SKIP("no golden tiny model (CTTS_GOLDEN)");
    fclose(f);
    static const struct {
        int threads, pipeline;
        ctts_weight_type wt;
    } cases[] = {{1, 0, CTTS_WEIGHTS_KEEP}, {2, 0, CTTS_WEIGHTS_KEEP}, {2, 1, CTTS_WEIGHTS_KEEP},
                 {2, 0, CTTS_WEIGHTS_Q8_0}, {1, 0, CTTS_WEIGHTS_Q4_0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int n = allocs_in_steady_frames(cases[i].threads, cases[i].pipeline, cases[i].wt, 6);
        if (n != 0)
            TEST_FAIL_AT("threads %d pipeline %d weights %d: %d allocations in 6 frames",
                         cases[i].threads, cases[i].pipeline, (int)cases[i].wt, n);
    }
}

TEST_MAIN(T(test_no_malloc_per_frame))
