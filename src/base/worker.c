/*
 * Persistent worker thread (see worker.h): one mutex, one condition
 * variable for "job ready / stop" and one for "job done". A job is pending
 * from submit until the owner's wait; `running` tells the thread that a job
 * is ready, `done` tells the owner that it returned.
 */
#include "base/worker.h"

#include <pthread.h>
#include <stdlib.h>

struct ctts_worker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv_job, cv_done;
    ctts_worker_fn fn;
    void *ctx;
    int running; /* a job is ready or executing */
    int pending; /* submitted, not yet waited for (owner's view) */
    int stop;
};

static void *worker_main(void *arg) {
    ctts_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->running && !w->stop) pthread_cond_wait(&w->cv_job, &w->mu);
        if (!w->running) break; /* stop with no job left */
        ctts_worker_fn fn = w->fn;
        void *ctx = w->ctx;
        pthread_mutex_unlock(&w->mu);
        fn(ctx);
        pthread_mutex_lock(&w->mu);
        w->running = 0;
        pthread_cond_signal(&w->cv_done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

ctts_worker *ctts_worker_new(void) {
    ctts_worker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w);
        return NULL;
    }
    if (pthread_cond_init(&w->cv_job, NULL) != 0) goto fail_mu;
    if (pthread_cond_init(&w->cv_done, NULL) != 0) goto fail_job;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) goto fail_done;
    return w;
fail_done:
    pthread_cond_destroy(&w->cv_done);
fail_job:
    pthread_cond_destroy(&w->cv_job);
fail_mu:
    pthread_mutex_destroy(&w->mu);
    free(w);
    return NULL;
}

void ctts_worker_free(ctts_worker *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv_job);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv_done);
    pthread_cond_destroy(&w->cv_job);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

int ctts_worker_submit(ctts_worker *w, ctts_worker_fn fn, void *ctx) {
    if (w->pending) return -1;
    pthread_mutex_lock(&w->mu);
    w->fn = fn;
    w->ctx = ctx;
    w->running = 1;
    pthread_cond_signal(&w->cv_job);
    pthread_mutex_unlock(&w->mu);
    w->pending = 1;
    return 0;
}

void ctts_worker_wait(ctts_worker *w) {
    if (!w->pending) return;
    pthread_mutex_lock(&w->mu);
    while (w->running) pthread_cond_wait(&w->cv_done, &w->mu);
    pthread_mutex_unlock(&w->mu);
    w->pending = 0;
}

int ctts_worker_pending(const ctts_worker *w) { return w->pending; }
