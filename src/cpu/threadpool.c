/*
 * Thread pool: generation counter + spin-then-futex wait (see threadpool.h).
 *
 * Dispatch: the caller writes the job, resets `pending` to the worker count
 * and bumps `gen` (seq_cst). Workers spin on `gen` for a while, then
 * announce themselves in `n_sleeping` and futex-wait on it; the caller only
 * issues FUTEX_WAKE when someone sleeps. Because the sleeper increments
 * n_sleeping before the kernel re-checks `gen`, and the caller bumps `gen`
 * before reading n_sleeping, no wake-up can be lost. Tasks are claimed with an
 * atomic counter; the caller spins until every worker has checked out.
 */
#include "cpu/threadpool.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

/* Spin iterations before sleeping; a pause is ~10-140 cycles, so roughly
 * 20-150 us of polling, longer than the gap between two ops of a model step. */
#define SPIN_ITERS (1 << 11)

struct cpu_threadpool {
    int n_threads;      /* caller included */
    int n_workers;      /* threads actually started (n_threads - 1) */
    pthread_t *workers; /* [n_workers] */

    /* The current job; written before `gen` is bumped, read after. */
    cpu_task_fn fn;
    void *ctx;
    int n, n_tasks;

    _Atomic int next_task;
    _Atomic int pending; /* workers still inside the current generation */
    _Atomic uint32_t gen;
    _Atomic int n_sleeping;
    _Atomic int stop;
    _Atomic int busy; /* a parallel_for is running */
};

typedef struct {
    cpu_threadpool *pool;
    int id;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    sched_yield();
#endif
}

/* FTZ (bit 15) and DAZ (bit 6) of MXCSR. Returns the previous value. */
static unsigned set_ftz_daz(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);
    return old;
#else
    return 0;
#endif
}

static void restore_csr(unsigned old) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(old);
#else
    (void)old;
#endif
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t expected) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    (void)addr;
    (void)expected;
    sched_yield();
#endif
}

static void futex_wake_all(_Atomic uint32_t *addr) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

/* Claims and runs tasks of the current job until none is left. */
static void run_tasks(cpu_threadpool *p, int thread_id) {
    for (;;) {
        const int t = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed);
        if (t >= p->n_tasks) break;
        const int begin = (int)((int64_t)p->n * t / p->n_tasks);
        const int end = (int)((int64_t)p->n * (t + 1) / p->n_tasks);
        if (begin < end) p->fn(p->ctx, begin, end, thread_id);
    }
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    cpu_threadpool *p = wa.pool;
    set_ftz_daz();
    uint32_t seen = 0;
    for (;;) {
        uint32_t g;
        int spins = 0;
        while ((g = atomic_load(&p->gen)) == seen) {
            if (spins < SPIN_ITERS) {
                cpu_relax();
                spins++;
            } else {
                atomic_fetch_add(&p->n_sleeping, 1);
                futex_wait(&p->gen, seen);
                atomic_fetch_sub(&p->n_sleeping, 1);
            }
        }
        seen = g;
        if (atomic_load(&p->stop)) break;
        run_tasks(p, wa.id);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
    return NULL;
}

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 1024 ? (int)n : 1;
}

cpu_threadpool *cpu_threadpool_new(int n) {
    if (n <= 0) n = online_cpus();
    if (n > 1024) n = 1024;
    cpu_threadpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n;
    if (n > 1) {
        p->workers = calloc((size_t)(n - 1), sizeof *p->workers);
        if (!p->workers) {
            free(p);
            return NULL;
        }
    }
    for (int i = 0; i < n - 1; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) break;
        wa->pool = p;
        wa->id = i + 1;
        if (pthread_create(&p->workers[i], NULL, worker_main, wa) != 0) {
            free(wa);
            break;
        }
        p->n_workers++;
    }
    if (p->n_workers != n - 1) {
        cpu_threadpool_free(p);
        return NULL;
    }
    return p;
}

void cpu_threadpool_free(cpu_threadpool *p) {
    if (!p) return;
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->gen, 1);
    futex_wake_all(&p->gen);
    for (int i = 0; i < p->n_workers; i++) pthread_join(p->workers[i], NULL);
    free(p->workers);
    free(p);
}

int cpu_threadpool_size(const cpu_threadpool *p) { return p ? p->n_threads : 1; }

/* Pool index of the calling thread: a worker's own id, else 0. */
static int self_id(const cpu_threadpool *p) {
    pthread_t me = pthread_self();
    for (int i = 0; i < p->n_workers; i++)
        if (pthread_equal(me, p->workers[i])) return i + 1;
    return 0;
}

void cpu_parallel_for(cpu_threadpool *p, int n, int min_per_task, cpu_task_fn fn, void *ctx) {
    if (n <= 0) return;
    if (min_per_task < 1) min_per_task = 1;
    const unsigned csr = set_ftz_daz();
    int n_tasks = n / min_per_task;
    if (p && n_tasks > p->n_threads) n_tasks = p->n_threads;
    if (!p || p->n_workers == 0 || n_tasks <= 1) {
        fn(ctx, 0, n, p ? self_id(p) : 0);
        restore_csr(csr);
        return;
    }
    int expected = 0;
    if (!atomic_compare_exchange_strong(&p->busy, &expected, 1)) {
        fn(ctx, 0, n, self_id(p)); /* nested or concurrent use: run serially */
        restore_csr(csr);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next_task, 0, memory_order_relaxed);
    atomic_store(&p->pending, p->n_workers);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->n_sleeping) > 0) futex_wake_all(&p->gen);
    run_tasks(p, 0);
    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        if (++spins < SPIN_ITERS) cpu_relax();
        else sched_yield();
    }
    atomic_store(&p->busy, 0);
    restore_csr(csr);
}
