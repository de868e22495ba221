/*
 * Persistent CPU thread pool with a blocking parallel_for.
 *
 * The caller of cpu_parallel_for works too (it is thread 0); n-1 worker
 * threads wait on a generation counter, spinning briefly and then sleeping on
 * a futex, so a dispatch to awake workers costs about a microsecond and a
 * dispatch to sleeping ones one wake-up syscall. The index range is cut into
 * contiguous tasks of at least min_per_task indices; which thread runs which
 * task is not fixed, so fn must make each index's result independent of the
 * cut (split outputs, never a reduction).
 *
 * Floating point: every thread runs fn with FTZ and DAZ set (denormals read
 * and written as zero), the caller's MXCSR is restored on return; this keeps
 * results identical whichever thread computed them and avoids denormal
 * slowdowns in decaying signals.
 *
 * A call made while the pool is busy (from inside fn, or from a second
 * thread) runs fn(ctx, 0, n, thread_id) serially on the calling thread.
 *
 * A side job runs on the pool's last worker beside the caller's
 * parallel_fors, which go on without that worker until it returns (and take
 * it back at their next task then): work that needs one core of its own while
 * the caller streams through memory on the others.
 */
#ifndef CTTS_CPU_THREADPOOL_H
#define CTTS_CPU_THREADPOOL_H

typedef struct cpu_threadpool cpu_threadpool;

/* Task body: handles indices [begin, end); thread_id in [0, n_threads) is the
 * pool index of the running thread (0 = caller, or a thread outside the pool). */
typedef void (*cpu_task_fn)(void *ctx, int begin, int end, int thread_id);

/* n threads in all, caller included (n <= 0: online CPUs). NULL on failure. */
cpu_threadpool *cpu_threadpool_new(int n);
void cpu_threadpool_free(cpu_threadpool *p);
int cpu_threadpool_size(const cpu_threadpool *p);

/* Runs fn over [0, n) and returns when every index is done. p may be NULL
 * (serial). min_per_task < 1 counts as 1. */
void cpu_parallel_for(cpu_threadpool *p, int n, int min_per_task, cpu_task_fn fn, void *ctx);

/* Posts fn(ctx) as the side job, after waiting for the previous one, and
 * returns; fn runs with FTZ / DAZ off, as on a thread of its own, and must not
 * use p. Without workers (or p NULL) fn runs before this returns. */
void cpu_threadpool_side_run(cpu_threadpool *p, void (*fn)(void *), void *ctx);
/* Returns when the side job, if any, has returned; its writes are visible then. */
void cpu_threadpool_side_wait(cpu_threadpool *p);

#endif
