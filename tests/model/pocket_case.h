/*
 * Shared helpers of the Pocket parity tests: run a text through a
 * pocket_stream while logging every computed frame (latent, EOS logit), and
 * compare against golden tensors that may sit at unaligned offsets.
 */
#ifndef CTTS_TEST_POCKET_CASE_H
#define CTTS_TEST_POCKET_CASE_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/pocket/pocket.h"

#define MAX_FRAMES 4096

typedef struct {
    int n_chunks;
    int n_computed[16];
    int first_eos[16];
    float eos_thr;
    float *latents[16]; /* [MAX_FRAMES, ldim] per chunk */
    float eos[16][MAX_FRAMES];
    int ldim;
} frame_log;

static void observe(void *user, int chunk, int step, const float *latent, float eos_logit,
                    int emitted) {
    (void)emitted;
    frame_log *log = user;
    if (chunk >= 16 || step >= MAX_FRAMES) return;
    if (chunk + 1 > log->n_chunks) log->n_chunks = chunk + 1;
    if (!log->latents[chunk]) log->latents[chunk] = calloc(MAX_FRAMES * (size_t)log->ldim, 4);
    memcpy(log->latents[chunk] + (size_t)step * log->ldim, latent, (size_t)log->ldim * 4);
    log->eos[chunk][step] = eos_logit;
    if (step + 1 > log->n_computed[chunk]) log->n_computed[chunk] = step + 1;
    if (eos_logit > log->eos_thr && log->first_eos[chunk] < 0) log->first_eos[chunk] = step;
}

static void log_free(frame_log *log) {
    for (int i = 0; i < 16; i++) free(log->latents[i]);
}

/* Runs one text through a stream; returns malloc'd audio. */
static float *run_stream(pocket_model *m, pocket_voice *v, const ctts_gen_params *p,
                         const char *text, frame_log *log, size_t *n_samples, char *err) {
    pocket_stream *s = NULL;
    if (pocket_stream_new(m, &s, err, 512) != CTTS_OK) return NULL;
    if (log) pocket_stream_set_observer(s, observe, log);
    size_t cap = 1 << 20, n = 0;
    float *audio = malloc(cap * sizeof(float));
    ctts_status st = pocket_stream_start(s, v, p, text, err, 512);
    while (st == CTTS_OK) {
        size_t got = 0;
        if (n + (size_t)pocket_frame_size(m) > cap) {
            cap *= 2;
            audio = realloc(audio, cap * sizeof(float));
        }
        st = pocket_stream_step(s, audio + n, &got, err, 512);
        n += got;
    }
    pocket_stream_free(s);
    if (st != CTTS_DONE) {
        free(audio);
        return NULL;
    }
    *n_samples = n;
    return audio;
}

/* b may be unaligned (golden tensors sit at arbitrary offsets in their files). */
static double max_abs_diff(const float *a, const void *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        float bi;
        memcpy(&bi, (const char *)b + i * sizeof bi, sizeof bi);
        double d = fabs((double)a[i] - (double)bi);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

#endif
