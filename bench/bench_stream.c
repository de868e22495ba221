/*
 * Streaming benchmark: time to first audio and lead over real-time playback,
 * through the public API (include/ctts.h) with a loaded model and a ready voice.
 *
 *   bench_stream [--model DIR] [--runs N] [--lead-runs N] [--threads N]
 *                [--pipeline on|off|auto] [--weights f32|bf16|q8_0|q4_0]
 *                [--frames N] [--voice-seconds S] [--csv FILE]
 *
 * Setup (not timed): load the model (default /tmp/pocket-rand, the full-size
 * random english model), clone a voice from S seconds (default 5) of a
 * synthetic signal with ctts_voice_from_pcm, one warm-up stream per text.
 * Time to first audio: for a short, a medium and a long text in turn (so
 * machine noise spreads over all three), N runs (default 50) of begin ->
 * feed (whole text) -> end -> first read with samples, measured around the
 * calls; the stream is then cancelled. The first frame's profile (text,
 * prefill with the first latent, Mimi decode) comes from ctts_session_timings.
 * Lead: N full runs (default 5) of the long text with EOS disabled and at
 * most F frames per chunk (default 40), reading as fast as frames come; the
 * lead of frame k is (first audio + k * 80 ms) - its arrival (< 0: playback
 * would stall), reported as the minimum per run, and the real-time factor.
 * Random weights: the audio is noise; only the shapes (and so the times)
 * are real. Prints p50 / p90 / p99 / max per text and optional CSV rows.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctts.h"

static const char *const texts[3][2] = {
    {"short", "Hello world."},
    {"medium", "The quick brown fox jumps over the lazy dog, while the cat sleeps quietly in "
               "the warm afternoon sun."},
    {"long",
     "Streaming speech synthesis is judged by how soon the first sound comes and by whether "
     "playback ever stalls. This paragraph is long enough to be cut into several chunks, the "
     "way the official implementation cuts long inputs, and each chunk starts with a fresh "
     "copy of the voice state. The first chunk should be spoken while the rest is still being "
     "prepared. Later chunks must follow without a gap, so the engine has to stay ahead of "
     "real time from the first frame to the last one. Numbers like 1,234 and dates like "
     "12/03/2024 are read as they are written. That is all there is to it, and the paragraph "
     "ends here."},
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Percentile q in [0, 1] of sorted v[n] (nearest rank). */
static double pct(const double *v, int n, double q) {
    int i = (int)ceil(q * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

typedef struct {
    double ttfa, text, prefill, mimi; /* prefill includes the first latent (one pass) */
} first_sample;

/* One stream up to its first samples; cancels the rest. */
static int first_audio(ctts_session *s, const ctts_voice *v, const ctts_gen_params *p,
                       const char *text, first_sample *out) {
    static float buf[4096];
    size_t got = 0;
    double t0 = now_ms();
    ctts_status st = ctts_stream_begin(s, v, p);
    if (st == CTTS_OK) st = ctts_stream_feed_text(s, text);
    if (st == CTTS_OK) st = ctts_stream_end_text(s);
    while (st == CTTS_OK && got == 0) st = ctts_stream_read(s, buf, 4096, &got);
    double t1 = now_ms();
    if (st != CTTS_OK) {
        fprintf(stderr, "bench_stream: %s\n", ctts_session_error(s));
        return -1;
    }
    const ctts_timings *t = ctts_session_timings(s);
    *out = (first_sample){t1 - t0, t->first_text_ms, t->first_prefill_ms, t->first_mimi_ms};
    ctts_stream_cancel(s);
    ctts_stream_read(s, buf, 4096, &got); /* CTTS_E_CANCELLED; nothing left running */
    return 0;
}

static void report(const char *name, first_sample *v, int n, FILE *csv, const char *mode) {
    double *a = malloc((size_t)n * sizeof *a);
    double sum[5] = {0};
    for (int i = 0; i < n; i++) {
        a[i] = v[i].ttfa;
        sum[0] += v[i].text, sum[1] += v[i].prefill, sum[2] += v[i].mimi;
    }
    qsort(a, (size_t)n, sizeof *a, cmp_double);
    double p50 = pct(a, n, 0.5), p90 = pct(a, n, 0.9), p99 = pct(a, n, 0.99);
    printf("  %-6s first audio ms: p50 %7.1f  p90 %7.1f  p99 %7.1f  max %7.1f  (p99/p50 %.2f)"
           "  | mean profile: text %.2f, prefill + first latent %.1f, mimi %.1f\n",
           name, p50, p90, p99, a[n - 1], p99 / p50, sum[0] / n, sum[1] / n, sum[2] / n);
    if (csv)
        fprintf(csv, "%s,ttfa,%s,%d,%.2f,%.2f,%.2f,%.2f,%.3f,%.2f,%.2f\n", mode, name, n, p50,
                p90, p99, a[n - 1], sum[0] / n, sum[1] / n, sum[2] / n);
    free(a);
}

/* A full stream of the long text: min lead and real-time factor. */
static int lead_run(ctts_session *s, const ctts_voice *v, const ctts_gen_params *p,
                    double *min_lead, double *rtf, long long *frames) {
    static float buf[1920];
    ctts_status st = ctts_stream_begin(s, v, p);
    if (st == CTTS_OK) st = ctts_stream_feed_text(s, texts[2][1]);
    if (st == CTTS_OK) st = ctts_stream_end_text(s);
    size_t got;
    while (st == CTTS_OK) st = ctts_stream_read(s, buf, 1920, &got);
    if (st != CTTS_DONE) {
        fprintf(stderr, "bench_stream: %s\n", ctts_session_error(s));
        return -1;
    }
    const ctts_timings *t = ctts_session_timings(s);
    *min_lead = t->min_lead_ms;
    *rtf = t->rtf;
    *frames = t->frames;
    return 0;
}

int main(int argc, char **argv) {
    const char *model = "/tmp/pocket-rand", *csv_path = NULL;
    int runs = 50, lead_runs = 5, threads = 0, pipeline = -1, frames = 40;
    double voice_seconds = 5;
    ctts_weight_type wt = CTTS_WEIGHTS_KEEP;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) goto usage;
        if (!strcmp(a, "--model")) model = val;
        else if (!strcmp(a, "--runs")) runs = atoi(val);
        else if (!strcmp(a, "--lead-runs")) lead_runs = atoi(val);
        else if (!strcmp(a, "--threads")) threads = atoi(val);
        else if (!strcmp(a, "--frames")) frames = atoi(val);
        else if (!strcmp(a, "--voice-seconds")) voice_seconds = atof(val);
        else if (!strcmp(a, "--csv")) csv_path = val;
        else if (!strcmp(a, "--pipeline"))
            pipeline = !strcmp(val, "on") ? 1 : !strcmp(val, "off") ? 0 : -1;
        else if (!strcmp(a, "--weights"))
            wt = !strcmp(val, "bf16") ? CTTS_WEIGHTS_BF16 : !strcmp(val, "q8_0") ? CTTS_WEIGHTS_Q8_0
                 : !strcmp(val, "q4_0") ? CTTS_WEIGHTS_Q4_0 : CTTS_WEIGHTS_F32;
        else goto usage;
        i++;
    }
    if (runs < 1 || lead_runs < 0 || frames < 1) goto usage;

    char err[1024];
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = threads;
    mp.weight_type = wt;
    ctts_model *m = NULL;
    double t0 = now_ms();
    if (ctts_model_load(model, &mp, &m, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "bench_stream: %s\n", err);
        return 1;
    }
    double load_ms = now_ms() - t0;
    int sr = ctts_model_get_info(m)->sample_rate;
    size_t nv = (size_t)(voice_seconds * sr);
    ctts_voice *v = NULL;
    if (nv > 0) {
        float *pcm = malloc(nv * sizeof *pcm);
        unsigned seed = 1;
        for (size_t i = 0; i < nv; i++) {
            seed = seed * 1664525u + 1013904223u;
            double noise = ((seed >> 9) & 0xffff) / 65536.0 - 0.5;
            pcm[i] = (float)(0.3 * sin(2 * M_PI * 180.0 * i / sr) * (1 + sin(2 * M_PI * 3.0 * i / sr)) / 2 + 0.05 * noise);
        }
        t0 = now_ms();
        if (ctts_voice_from_pcm(m, pcm, nv, sr, &v, err, sizeof err) != CTTS_OK) {
            fprintf(stderr, "bench_stream: voice: %s\n", err);
            return 1;
        }
        printf("voice: %.1f s clip cloned in %.0f ms\n", voice_seconds, now_ms() - t0);
        free(pcm);
    }
    ctts_session *s = NULL;
    if (ctts_session_new(m, &s) != CTTS_OK) return 1;
    ctts_gen_params p = ctts_gen_default_params(m);
    p.pipeline = pipeline;
    p.seed = 1;
    const char *mode = pipeline == 1 ? "pipeline-on" : pipeline == 0 ? "pipeline-off" : "auto";
    printf("model %s (%lld params, load %.0f ms), threads %d, %s, weights %d\n", model,
           (long long)ctts_model_get_info(m)->n_params, load_ms, threads, mode, (int)wt);
    FILE *csv = csv_path ? fopen(csv_path, "a") : NULL;

    /* warm-up: page in the weights, fill caches and the voice state copy */
    first_sample *res[3];
    for (int k = 0; k < 3; k++) {
        res[k] = calloc((size_t)runs, sizeof *res[k]);
        first_sample w;
        if (first_audio(s, v, &p, texts[k][1], &w)) return 1;
    }
    for (int r = 0; r < runs; r++)
        for (int k = 0; k < 3; k++)
            if (first_audio(s, v, &p, texts[k][1], &res[k][r])) return 1;
    printf("time to first audio, %d runs each (model loaded, voice ready):\n", runs);
    for (int k = 0; k < 3; k++) report(texts[k][0], res[k], runs, csv, mode);

    if (lead_runs > 0) {
        ctts_gen_params pl = p;
        pl.eos_threshold = 1e30f; /* random weights: no natural end */
        pl.max_frames = frames;
        double *leads = malloc((size_t)lead_runs * sizeof *leads);
        double rtf_sum = 0;
        long long nf = 0;
        for (int r = 0; r < lead_runs; r++) {
            double rtf;
            if (lead_run(s, v, &pl, &leads[r], &rtf, &nf)) return 1;
            rtf_sum += rtf;
        }
        qsort(leads, (size_t)lead_runs, sizeof *leads, cmp_double);
        double rtf = rtf_sum / lead_runs;
        printf("long text, %d full runs (%lld frames = %.1f s of audio each, <= %d frames per "
               "chunk, EOS off): min lead over playback: worst %.1f ms, median %.1f ms; "
               "%.2fx real time (RTF %.3f)\n",
               lead_runs, nf, nf * 0.08, frames, leads[0], pct(leads, lead_runs, 0.5),
               rtf > 0 ? 1 / rtf : 0, rtf);
        if (csv)
            fprintf(csv, "%s,lead,long,%d,%.2f,%.2f,%.4f,%lld\n", mode, lead_runs, leads[0],
                    pct(leads, lead_runs, 0.5), rtf, nf);
        free(leads);
    }
    if (csv) fclose(csv);
    for (int k = 0; k < 3; k++) free(res[k]);
    ctts_session_free(s);
    ctts_voice_free(v);
    ctts_model_free(m);
    return 0;
usage:
    fprintf(stderr, "usage: bench_stream [--model DIR] [--runs N] [--lead-runs N] [--threads N] "
                    "[--pipeline on|off|auto] [--weights f32|bf16|q8_0|q4_0] [--frames N] "
                    "[--voice-seconds S] [--csv FILE]\n");
    return 2;
}
