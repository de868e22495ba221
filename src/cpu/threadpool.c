/*
 * Thread pool: generation counter + spin-then-futex wait (see threadpool.h).
 *
 * Dispatch: the caller closes the job (`open` = 0), waits until no worker is
 * inside it, writes the new one, reopens it and bumps `gen` (seq_cst).
 * Workers spin on `gen` for a while, then announce themselves in
 * `n_sleeping` and futex-wait on it; the caller only issues FUTEX_WAKE when
 * someone sleeps. Because the sleeper increments n_sleeping before the kernel
 * re-checks `gen`, and the caller bumps `gen` before reading n_sleeping, no
 * wake-up can be lost. A worker enters a job by incrementing `inside` and then
 * reading `open` (the caller stores `open` and then reads `inside`: with
 * seq_cst one of the two sees the other, so no worker reads a job being
 * rewritten). Tasks are claimed with an atomic counter and counted when done;
 * the caller waits for the count, not for the workers, so a worker busy with
 * a side job (or slow to wake) holds nobody up.
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
    _Atomic int done_tasks; /* tasks of the current job finished */
    _Atomic int inside;     /* workers that may be reading the job */
    _Atomic int open;       /* the job may be entered */
    _Atomic uint32_t gen;   /* bumped for each job and side job: workers wake on it */
    _Atomic int n_sleeping;
    _Atomic int stop;
    _Atomic int busy; /* a parallel_for is running */

    /* The side job (cpu_threadpool_side_run), run by the last worker. */
    void (*side_fn)(void *);
    void *side_ctx;
    _Atomic int side_posted; /* 1 from side_run until side_fn has returned */
};

typedef struct {
    cpu_threadpool *pool;
    int id, side; /* side: the last worker, which runs side jobs */
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
        atomic_fetch_add_explicit(&p->done_tasks, 1, memory_order_release);
    }
}

/* Helps with the current job if it is open (see the top of the file). */
static void enter_job(cpu_threadpool *p, int thread_id) {
    atomic_fetch_add(&p->inside, 1);
    if (atomic_load(&p->open)) run_tasks(p, thread_id);
    atomic_fetch_sub(&p->inside, 1);
}

/* The side job, if one was posted (the last worker only). */
static void run_side(cpu_threadpool *p) {
    if (!atomic_load_explicit(&p->side_posted, memory_order_acquire)) return;
    const unsigned csr = set_ftz_daz();
    restore_csr(csr & ~0x8040u); /* as on any thread of its own: ops set FTZ / DAZ themselves */
    p->side_fn(p->side_ctx);
    restore_csr(csr);
    atomic_store_explicit(&p->side_posted, 0, memory_order_release);
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
        if (wa.side) run_side(p);
        enter_job(p, wa.id);
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
        wa->side = i == n - 2;
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
    cpu_threadpool_side_wait(p);
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->gen, 1);
    futex_wake_all(&p->gen);
    for (int i = 0; i < p->n_workers; i++) pthread_join(p->workers[i], NULL);
    free(p->workers);
    free(p);
}

int cpu_threadpool_size(const cpu_threadpool *p) { return p ? p->n_threads : 1; }

/* Tells the workers something was posted. */
static void wake(cpu_threadpool *p) {
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->n_sleeping) > 0) futex_wake_all(&p->gen);
}

void cpu_threadpool_side_run(cpu_threadpool *p, void (*fn)(void *), void *ctx) {
    if (!p || p->n_workers == 0) {
        fn(ctx);
        return;
    }
    cpu_threadpool_side_wait(p);
    p->side_fn = fn;
    p->side_ctx = ctx;
    atomic_store_explicit(&p->side_posted, 1, memory_order_release);
    wake(p);
}

void cpu_threadpool_side_wait(cpu_threadpool *p) {
    if (!p) return;
    int spins = 0;
    while (atomic_load_explicit(&p->side_posted, memory_order_acquire)) {
        if (++spins < SPIN_ITERS) cpu_relax();
        else sched_yield();
    }
}

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
    /* With a side job under way, smaller tasks let its worker join late. */
    const int most = p ? p->n_threads * (atomic_load(&p->side_posted) ? 4 : 1) : 1;
    if (n_tasks > most) n_tasks = most;
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
    atomic_store(&p->open, 0);
    int spins = 0;
    while (atomic_load(&p->inside) > 0) { /* a worker leaving the previous job */
        if (++spins < SPIN_ITERS) cpu_relax();
        else sched_yield();
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&p->done_tasks, 0, memory_order_relaxed);
    atomic_store(&p->open, 1);
    wake(p);
    run_tasks(p, 0);
    spins = 0;
    while (atomic_load_explicit(&p->done_tasks, memory_order_acquire) < n_tasks) {
        if (++spins < SPIN_ITERS) cpu_relax();
        else sched_yield();
    }
    atomic_store(&p->busy, 0);
    restore_csr(csr);
}
