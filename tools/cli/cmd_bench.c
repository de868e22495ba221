/*
 * ctts bench: generation speed of a model over three texts (short "Hello
 * world.", a medium sentence pair, a long paragraph that makes several
 * chunks) at a fixed frame count per chunk (EOS disabled, --max-frames N,
 * default 40; a model that speaks the whole text as one utterance, Qwen3-TTS,
 * gets N frames per max_tokens_per_chunk (50) tokens of text, so a long text
 * yields a comparable amount of audio from either family instead of 40 frames
 * after a prompt of hundreds of tokens), --runs times each after one warm-up run (medians reported):
 * x real time, frames/s, time to first audio, the smallest lead of the audio
 * over playback started with the first samples (< 0: a player would wait);
 * plus model load time, peak RSS
 * (getrusage) and the size of this binary. --profile adds one run of the
 * medium text with the per-stage profiler (pipeline off, so stages do not
 * overlap): ms per frame, GFLOP/s and GB/s per stage. --json prints one JSON
 * object instead of the table. --text T benchmarks that one text instead
 * (scripts/bench_official.sh uses it to match the official benchmark).
 * Only include/ctts.h is used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define MAX_RUNS 1000

typedef struct {
    const char *name, *text;
} bench_text_t;

static const bench_text_t texts[] = {
    {"short", "Hello world."},
    {"medium", "The quick brown fox jumps over the lazy dog. It was a bright cold day in "
               "April, and the clocks were striking thirteen."},
    {"long", "It was the best of times, it was the worst of times, it was the age of wisdom, "
             "it was the age of foolishness, it was the epoch of belief, it was the epoch of "
             "incredulity, it was the season of Light, it was the season of Darkness, it was "
             "the spring of hope, it was the winter of despair, we had everything before us, "
             "we had nothing before us, we were all going direct to Heaven, we were all going "
             "direct the other way. In short, the period was so far like the present period, "
             "that some of its noisiest authorities insisted on its being received, for good "
             "or for evil, in the superlative degree of comparison only."},
};
#define N_TEXTS (int)(sizeof texts / sizeof texts[0])

typedef struct {
    double x_rt, frames_per_s, first_audio_ms, total_ms, audio_s, min_lead_ms;
    int64_t frames;
} result;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One synthesis; fills the timings. 0 or an exit code. */
static int run_once(ctts_session *s, const ctts_voice *v, const ctts_gen_params *gp,
                    const char *text, ctts_timings *t) {
    float *pcm = NULL;
    size_t n = 0;
    if (ctts_synthesize(s, text, v, gp, &pcm, &n) != CTTS_OK)
        return cli_fail("%s", ctts_session_error(s));
    ctts_pcm_free(pcm);
    *t = *ctts_session_timings(s);
    return 0;
}

/* The frame cap for text: max_frames per chunk, or per max_tokens_per_chunk
 * tokens for a model without chunks. */
static int frames_for(const ctts_model *m, const ctts_gen_params *gp, const char *text) {
    size_t n_ids = 0;
    char err[256];
    if (ctts_model_get_info(m)->chunks_text ||
        ctts_tokenize(m, text, 0, NULL, 0, &n_ids, err, sizeof err) != CTTS_OK)
        return gp->max_frames;
    const size_t per = gp->max_tokens_per_chunk > 0 ? (size_t)gp->max_tokens_per_chunk : 50;
    const size_t chunks = n_ids > per ? (n_ids + per - 1) / per : 1;
    return gp->max_frames * (int)chunks;
}

static int bench_text(ctts_session *s, const ctts_model *m, const ctts_voice *v,
                      const ctts_gen_params *gp0, const char *text, int runs, int sample_rate,
                      result *r) {
    double tot[MAX_RUNS], first[MAX_RUNS], lead[MAX_RUNS];
    ctts_timings t;
    ctts_gen_params gp1 = *gp0;
    gp1.max_frames = frames_for(m, gp0, text);
    const ctts_gen_params *gp = &gp1;
    for (int i = 0; i < runs; i++) {
        int rc = run_once(s, v, gp, text, &t);
        if (rc) return rc;
        tot[i] = t.total_ms;
        first[i] = t.first_audio_ms;
        lead[i] = t.min_lead_ms;
    }
    r->total_ms = median(tot, runs);
    r->first_audio_ms = median(first, runs);
    r->min_lead_ms = median(lead, runs);
    r->frames = t.frames;
    r->audio_s = (double)t.samples / sample_rate;
    r->x_rt = r->total_ms > 0 ? r->audio_s * 1e3 / r->total_ms : 0;
    r->frames_per_s = r->total_ms > 0 ? t.frames * 1e3 / r->total_ms : 0;
    return 0;
}

static const char *weights_name(ctts_weight_type w) {
    static const char *n[] = {"as stored", "f32", "bf16", "q8_0", "q4_0"};
    return (unsigned)w <= CTTS_WEIGHTS_Q4_0 ? n[w] : "?";
}

static void print_profile(const ctts_profile *p, const ctts_timings *t, int json) {
    const double fr = t->frames > 0 ? (double)t->frames : 1;
    if (json) {
        printf(",\n  \"profile\": {\"frames\": %lld, \"tokenize_ms\": %.3f", (long long)t->frames,
               t->prepare_ms);
        for (int i = 0; i < CTTS_STAGE_COUNT; i++)
            printf(", \"%s\": {\"ms\": %.3f, \"gflops\": %.3f, \"gbytes\": %.4f, \"ops\": %lld}",
                   ctts_stage_name((ctts_stage)i), p->ms[i], p->flops[i] * 1e-9,
                   p->bytes[i] * 1e-9, (long long)p->ops[i]);
        printf("}");
        return;
    }
    printf("\nprofile (%lld frames, pipeline off):\n", (long long)t->frames);
    printf("  %-18s %10s %10s %10s %10s\n", "stage", "total ms", "ms/frame", "GFLOP/s", "GB/s");
    printf("  %-18s %10.2f\n", "tokenize", t->prepare_ms);
    for (int i = 0; i < CTTS_STAGE_COUNT; i++) {
        if (!p->ops[i]) continue;
        const double s = p->ms[i] * 1e-3;
        printf("  %-18s %10.2f %10.3f %10.2f %10.2f\n", ctts_stage_name((ctts_stage)i), p->ms[i],
               i == CTTS_STAGE_PREFILL ? 0.0 : p->ms[i] / fr, s > 0 ? p->flops[i] * 1e-9 / s : 0,
               s > 0 ? p->bytes[i] * 1e-9 / s : 0);
    }
}

int cmd_bench(cli_args *a) {
    if (!a->model) return cli_usage_error("%s", "bench needs --model M");
    const int runs = a->runs > 0 ? a->runs : 3;
    ctts_model *m = NULL;
    ctts_voice *v = NULL;
    ctts_session *s = NULL;
    char err[1024];
    int rc;
    const double t0 = now_ms();
    if ((rc = cli_load_model(a, &m))) return rc;
    const double load_ms = now_ms() - t0;
    if (ctts_voice_load(m, a->voice, &v, err, sizeof err) != CTTS_OK) {
        rc = cli_fail("%s", err);
        goto done;
    }
    if (ctts_session_new(m, &s) != CTTS_OK) {
        rc = cli_fail("%s", "cannot create a session (out of memory?)");
        goto done;
    }
    ctts_gen_params gp = ctts_gen_default_params(m);
    cli_apply_gen_args(a, &gp);
    gp.ignore_eos = 1; /* fixed length: never stop early */
    gp.max_frames = a->gp_set_max ? a->max_frames : 40;
    const int sr = ctts_model_get_info(m)->sample_rate;

    const bench_text_t custom[1] = {{"custom", a->text}};
    const bench_text_t *tx = a->text ? custom : texts;
    const int n_texts = a->text ? 1 : N_TEXTS;
    result res[N_TEXTS];
    ctts_timings warm;
    if ((rc = run_once(s, v, &gp, tx[n_texts > 1].text, &warm))) goto done; /* first touch */
    /* The host's read bandwidth around the runs (the language models are bound by it). */
    const int bw_threads = a->mp.n_threads > 0 ? a->mp.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    const double bw_before = cli_host_read_gbs(bw_threads);
    for (int i = 0; i < n_texts; i++)
        if ((rc = bench_text(s, m, v, &gp, tx[i].text, runs, sr, &res[i]))) goto done;
    const double bw_after = cli_host_read_gbs(bw_threads);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct stat sb;
    const long long bin = stat("/proc/self/exe", &sb) == 0 ? (long long)sb.st_size : -1;
    const int threads = a->mp.n_threads;

    if (a->json) {
        printf("{\n  \"model\": \"%s\", \"weights\": \"%s\", \"threads\": %d, \"runs\": %d, "
               "\"max_frames\": %d,\n  \"load_ms\": %.2f, \"peak_rss_mb\": %.1f, "
               "\"binary_bytes\": %lld,\n  \"host_read_gbs\": ",
               a->model, weights_name(a->mp.weight_type), threads, runs, gp.max_frames, load_ms,
               ru.ru_maxrss / 1024.0, bin);
        if (bw_before > 0 && bw_after > 0) printf("[%.1f, %.1f]", bw_before, bw_after);
        else printf("null");
        printf(",\n  \"texts\": [");
        for (int i = 0; i < n_texts; i++)
            printf("%s\n    {\"text\": \"%s\", \"frames\": %lld, \"audio_s\": %.3f, "
                   "\"total_ms\": %.2f, \"x_real_time\": %.3f, \"frames_per_s\": %.2f, "
                   "\"first_audio_ms\": %.2f, \"min_lead_ms\": %.2f}",
                   i ? "," : "", tx[i].name, (long long)res[i].frames, res[i].audio_s,
                   res[i].total_ms, res[i].x_rt, res[i].frames_per_s, res[i].first_audio_ms,
                   res[i].min_lead_ms);
        printf("\n  ]");
    } else {
        printf("model %s, weights %s, threads %s%d, %d runs (median), %d frames per ", a->model,
               weights_name(a->mp.weight_type), threads ? "" : "auto ", threads, runs,
               gp.max_frames);
        if (ctts_model_get_info(m)->chunks_text) printf("chunk\n");
        else printf("%d tokens of text\n", gp.max_tokens_per_chunk > 0 ? gp.max_tokens_per_chunk : 50);
        printf("%-8s %7s %9s %11s %10s %16s %12s\n", "text", "frames", "audio s", "x realtime",
               "frames/s", "first audio ms", "min lead ms");
        for (int i = 0; i < n_texts; i++)
            printf("%-8s %7lld %9.2f %11.2f %10.2f %16.1f %12.1f\n", tx[i].name,
                   (long long)res[i].frames, res[i].audio_s, res[i].x_rt, res[i].frames_per_s,
                   res[i].first_audio_ms, res[i].min_lead_ms);
        printf("load %.1f ms, peak RSS %.1f MB, binary %.2f MB\n", load_ms, ru.ru_maxrss / 1024.0,
               bin / 1048576.0);
        if (bw_before > 0 && bw_after > 0)
            printf("host memory read bandwidth (%d threads): %.1f GB/s before, %.1f after\n",
                   bw_threads, bw_before, bw_after);
    }
    if (a->profile) {
        ctts_gen_params pp = gp;
        pp.pipeline = 0;
        ctts_profile prof;
        ctts_timings t;
        if (ctts_model_profile(m, 1, NULL) != CTTS_OK) {
            rc = cli_fail("%s", "this model has no profiler");
            goto done;
        }
        rc = run_once(s, v, &pp, tx[n_texts > 1].text, &t);
        ctts_model_profile(m, 0, &prof);
        if (rc) goto done;
        print_profile(&prof, &t, a->json);
    }
    if (a->json) printf("\n}\n");
done:
    ctts_session_free(s);
    ctts_voice_free(v);
    ctts_model_free(m);
    return rc;
}
