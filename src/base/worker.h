/*
 * A persistent worker thread that runs one job at a time for its owner.
 *
 * The owner submits a job (function + context), goes on with its own work,
 * then waits for the job to finish; the thread is created once and sleeps on
 * a condition variable between jobs, so there is no per-job thread creation.
 * Submit and wait are called by one owner thread; the job's writes are
 * visible to the owner after wait returns (mutex hand-off).
 * It does not queue several jobs, cancel a running job or set CPU affinity.
 */
#ifndef CTTS_BASE_WORKER_H
#define CTTS_BASE_WORKER_H

typedef struct ctts_worker ctts_worker;
typedef void (*ctts_worker_fn)(void *ctx);

/* Starts the thread. NULL on failure (out of memory, no thread). */
ctts_worker *ctts_worker_new(void);
/* Waits for a running job, stops and joins the thread, frees w (NULL is fine). */
void ctts_worker_free(ctts_worker *w);
/* Hands fn(ctx) to the thread. Returns 0, or -1 if a job is still pending
 * (the owner must wait first). */
int ctts_worker_submit(ctts_worker *w, ctts_worker_fn fn, void *ctx);
/* Blocks until the submitted job (if any) has returned. */
void ctts_worker_wait(ctts_worker *w);
/* 1 while a submitted job has not been waited for. Owner thread only. */
int ctts_worker_pending(const ctts_worker *w);

#endif
