/*
 * Thread pool: every index of [0, n) is visited exactly once for many
 * (n, min_per_task) pairs and pool sizes, thread ids stay in range, nested
 * calls from inside a task run serially and correctly, a NULL or 1-thread
 * pool runs inline, and many back-to-back dispatches (the decoder pattern)
 * neither lose nor duplicate work. A side job runs on the last worker while
 * parallel_fors go on without it (they would hang if they waited for it),
 * inline without workers, and free waits for it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "cpu/threadpool.h"
#include "harness.h"

typedef struct {
    _Atomic int *hits;
    int n_threads;
    _Atomic int bad_range;
    _Atomic int bad_tid;
} cover_ctx;

static void cover_task(void *vctx, int begin, int end, int tid) {
    cover_ctx *c = vctx;
    if (begin >= end) atomic_store(&c->bad_range, 1);
    if (tid < 0 || tid >= c->n_threads) atomic_store(&c->bad_tid, 1);
    for (int i = begin; i < end; i++) atomic_fetch_add(&c->hits[i], 1);
}

/* Runs one parallel_for and checks every index was hit exactly once. */
static int covers_once(cpu_threadpool *p, int n, int min_per_task) {
    _Atomic int *hits = calloc((size_t)(n > 0 ? n : 1), sizeof *hits);
    cover_ctx c = {.hits = hits, .n_threads = cpu_threadpool_size(p)};
    cpu_parallel_for(p, n, min_per_task, cover_task, &c);
    int ok = !atomic_load(&c.bad_range) && !atomic_load(&c.bad_tid);
    for (int i = 0; i < n; i++) ok &= atomic_load(&hits[i]) == 1;
    free(hits);
    return ok;
}

static void test_cover_exactly_once(void) {
    static const int sizes[] = {1, 2, 3, 4, 7, 8, 31, 33, 100, 1000, 4097};
    static const int mins[] = {-3, 0, 1, 2, 3, 5, 16, 1000, 100000};
    for (int threads = 1; threads <= 4; threads++) {
        cpu_threadpool *p = cpu_threadpool_new(threads);
        REQUIRE(p != NULL);
        CHECK_EQ_INT(cpu_threadpool_size(p), threads);
        for (int si = 0; si < 11; si++)
            for (int mi = 0; mi < 9; mi++) CHECK(covers_once(p, sizes[si], mins[mi]));
        cpu_threadpool_free(p);
    }
}

static void test_empty_and_null_pool(void) {
    cpu_threadpool *p = cpu_threadpool_new(2);
    REQUIRE(p != NULL);
    CHECK(covers_once(p, 0, 1)); /* n = 0: fn never called */
    CHECK(covers_once(p, -5, 1));
    cpu_threadpool_free(p);
    CHECK(covers_once(NULL, 17, 1)); /* NULL pool: serial */
    cpu_threadpool_free(NULL);
}

static void test_default_size(void) {
    cpu_threadpool *p = cpu_threadpool_new(0);
    REQUIRE(p != NULL);
    CHECK(cpu_threadpool_size(p) >= 1);
    CHECK(covers_once(p, 999, 1));
    cpu_threadpool_free(p);
}

typedef struct {
    cpu_threadpool *pool;
    _Atomic int *hits; /* [outer * inner] */
    int inner;
    _Atomic int bad;
} nest_ctx;

typedef struct {
    nest_ctx *outer;
    int row;
} nest_inner_ctx;

static void nest_inner(void *vctx, int begin, int end, int tid) {
    nest_inner_ctx *c = vctx;
    if (tid < 0 || tid >= cpu_threadpool_size(c->outer->pool)) atomic_store(&c->outer->bad, 1);
    for (int i = begin; i < end; i++)
        atomic_fetch_add(&c->outer->hits[c->row * c->outer->inner + i], 1);
}

static void nest_outer(void *vctx, int begin, int end, int tid) {
    (void)tid;
    nest_ctx *c = vctx;
    for (int r = begin; r < end; r++) {
        nest_inner_ctx ic = {.outer = c, .row = r};
        cpu_parallel_for(c->pool, c->inner, 1, nest_inner, &ic);
    }
}

static void test_nested(void) {
    cpu_threadpool *p = cpu_threadpool_new(2);
    REQUIRE(p != NULL);
    const int outer = 9, inner = 13;
    _Atomic int *hits = calloc((size_t)outer * inner, sizeof *hits);
    nest_ctx c = {.pool = p, .hits = hits, .inner = inner};
    cpu_parallel_for(p, outer, 1, nest_outer, &c);
    int ok = !atomic_load(&c.bad);
    for (int i = 0; i < outer * inner; i++) ok &= atomic_load(&hits[i]) == 1;
    CHECK(ok);
    /* The pool still works normally afterwards. */
    CHECK(covers_once(p, 100, 1));
    free(hits);
    cpu_threadpool_free(p);
}

typedef struct {
    _Atomic long sum;
} sum_ctx;

static void sum_task(void *vctx, int begin, int end, int tid) {
    (void)tid;
    sum_ctx *c = vctx;
    long s = 0;
    for (int i = begin; i < end; i++) s += i;
    atomic_fetch_add(&c->sum, s);
}

static void test_many_dispatches(void) {
    cpu_threadpool *p = cpu_threadpool_new(2);
    REQUIRE(p != NULL);
    int ok = 1;
    for (int it = 0; it < 20000 && ok; it++) {
        const int n = 1 + it % 37;
        sum_ctx c = {0};
        cpu_parallel_for(p, n, 1, sum_task, &c);
        ok = atomic_load(&c.sum) == (long)n * (n - 1) / 2;
    }
    CHECK(ok);
    cpu_threadpool_free(p);
}

static void test_one_thread_pool(void) {
    cpu_threadpool *p = cpu_threadpool_new(1);
    REQUIRE(p != NULL);
    CHECK_EQ_INT(cpu_threadpool_size(p), 1);
    CHECK(covers_once(p, 1234, 1));
    cpu_threadpool_free(p);
}

typedef struct {
    _Atomic int release, started;
    int timed_out, value;
    pthread_t thread;
} side_ctx;

/* Holds its thread until released (at most 20 s), then writes value. */
static void side_job(void *vctx) {
    side_ctx *c = vctx;
    c->thread = pthread_self();
    atomic_store(&c->started, 1);
    const time_t t0 = time(NULL);
    while (!atomic_load(&c->release) && !c->timed_out) c->timed_out = time(NULL) - t0 > 20;
    c->value = 42;
}

typedef struct {
    _Atomic int bad_tid;
    int side_tid;
} tid_ctx;

static void note_tid(void *vctx, int begin, int end, int tid) {
    (void)begin, (void)end;
    tid_ctx *c = vctx;
    if (tid == c->side_tid) atomic_store(&c->bad_tid, 1);
}

static void test_side_job(void) {
    cpu_threadpool *p = cpu_threadpool_new(3);
    REQUIRE(p != NULL);
    side_ctx c = {0};
    cpu_threadpool_side_run(p, side_job, &c);
    while (!atomic_load(&c.started)) {
    }
    /* the side job holds the last worker: dispatches finish without it */
    tid_ctx t = {.side_tid = 2};
    int ok = 1;
    for (int i = 0; i < 300; i++) {
        ok &= covers_once(p, 1 + i % 50, 1);
        cpu_parallel_for(p, 64, 1, note_tid, &t);
    }
    CHECK(ok);
    CHECK(!atomic_load(&t.bad_tid));
    CHECK(!pthread_equal(c.thread, pthread_self()));
    atomic_store(&c.release, 1);
    cpu_threadpool_side_wait(p);
    CHECK(!c.timed_out);
    CHECK_EQ_INT(c.value, 42);
    CHECK(covers_once(p, 1000, 1)); /* and with it back */
    /* free waits for a side job still running */
    side_ctx c2 = {0};
    cpu_threadpool_side_run(p, side_job, &c2);
    atomic_store(&c2.release, 1);
    cpu_threadpool_free(p);
    CHECK_EQ_INT(c2.value, 42);
    /* without workers it runs before side_run returns */
    cpu_threadpool *one = cpu_threadpool_new(1);
    REQUIRE(one != NULL);
    side_ctx c3 = {.release = 1};
    cpu_threadpool_side_run(one, side_job, &c3);
    CHECK_EQ_INT(c3.value, 42);
    CHECK(pthread_equal(c3.thread, pthread_self()));
    cpu_threadpool_side_wait(one);
    cpu_threadpool_free(one);
    side_ctx c4 = {.release = 1};
    cpu_threadpool_side_run(NULL, side_job, &c4);
    CHECK_EQ_INT(c4.value, 42);
}

TEST_MAIN(T(test_cover_exactly_once), T(test_empty_and_null_pool), T(test_default_size),
          T(test_nested), T(test_many_dispatches), T(test_one_thread_pool), T(test_side_job))
