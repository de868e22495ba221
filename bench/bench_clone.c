/*
 * Voice cloning cost at a model's real shape (use the full-size random
 * english model: `ctts dev make-random-model --config english --seed 1 --out
 * /tmp/pocket-rand --tokenizer ../shared/golden/pocket-full/tokenizer.model`).
 *
 * A clip (the golden 22.05 kHz voice, repeated to the asked length) is cloned
 * the way `ctts generate --voice clip.wav` does it, stage by stage: decode +
 * downmix, resample to 24 kHz, Mimi encoder, speaker projection + FlowLM
 * prefill; then the whole pocket_voice_from_pcm call (wall and process CPU
 * time: on a loaded machine the wall time alone says little), writing the
 * voice file, and loading it back (what a cache hit costs). Medians, ms.
 *
 * Usage: bench_clone [model (/tmp/pocket-rand)] [seconds (10)] [reps (3)] [threads (0 = all)]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audio/audio_read.h"
#include "audio/resample.h"
#include "models/pocket/pocket.h"
#include "models/pocket/pocket_internal.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#define MAX_REPS 32

int main(int argc, char **argv) {
    const char *model = argc > 1 ? argv[1] : "/tmp/pocket-rand";
    double seconds = argc > 2 ? atof(argv[2]) : 10.0;
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    int threads = argc > 4 ? atoi(argv[4]) : 0;
    if (reps < 1) reps = 1;
    if (reps > MAX_REPS) reps = MAX_REPS;
    const char *gold = getenv("CTTS_GOLDEN") ? getenv("CTTS_GOLDEN") : "../shared/golden";
    char wav[512], out[] = "/tmp/ctts_bench_clone.safetensors";
    snprintf(wav, sizeof wav, "%s/pocket-full/voice/voice_22k.wav", gold);
    char err[1024];
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = threads;
    pocket_model *m = NULL;
    double t0 = now_ms();
    if (pocket_model_load(model, &mp, &m, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "bench_clone: %s\n", err);
        return 1;
    }
    printf("model %s loaded in %.0f ms (%lld parameters)\n", model, now_ms() - t0,
           (long long)pocket_model_n_params(m));
    audio_clip c;
    if (audio_read(wav, 0, &c, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "bench_clone: %s\n", err);
        return 1;
    }
    /* Repeat the clip to `seconds` and write it as a 16-bit WAV (the decode stage reads it). */
    size_t n = (size_t)(seconds * c.sample_rate);
    float *pcm = malloc(n * sizeof *pcm);
    for (size_t i = 0; i < n; i++) pcm[i] = c.pcm[i % c.n];
    const int rate = c.sample_rate;
    audio_clip_free(&c);
    char clip[] = "/tmp/ctts_bench_clone.wav";
    {
        FILE *f = fopen(clip, "wb");
        unsigned char h[44] = "RIFF....WAVEfmt ";
        uint32_t v;
        v = (uint32_t)(36 + n * 2), memcpy(h + 4, &v, 4);
        v = 16, memcpy(h + 16, &v, 4);
        uint16_t s = 1;
        memcpy(h + 20, &s, 2);
        memcpy(h + 22, &s, 2);
        v = (uint32_t)rate, memcpy(h + 24, &v, 4);
        v = (uint32_t)rate * 2, memcpy(h + 28, &v, 4);
        s = 2, memcpy(h + 32, &s, 2);
        s = 16, memcpy(h + 34, &s, 2);
        memcpy(h + 36, "data", 4);
        v = (uint32_t)(n * 2), memcpy(h + 40, &v, 4);
        fwrite(h, 1, 44, f);
        for (size_t i = 0; i < n; i++) {
            float x = pcm[i] * 32768.0f;
            int16_t q = (int16_t)(x > 32767 ? 32767 : x < -32768 ? -32768 : x);
            fwrite(&q, 2, 1, f);
        }
        fclose(f);
    }
    free(pcm);
    double t_dec[MAX_REPS], t_rs[MAX_REPS], t_enc[MAX_REPS], t_pre[MAX_REPS], t_all[MAX_REPS],
        t_save[MAX_REPS], t_load[MAX_REPS], t_cpu[MAX_REPS];
    int T = 0;
    const size_t D = (size_t)m->cfg.flow.d_model;
    for (int r = 0; r < reps; r++) {
        double a = now_ms();
        if (audio_read(clip, 30, &c, err, sizeof err) != CTTS_OK) break;
        double b = now_ms();
        float *x = NULL;
        size_t nx = 0;
        resample_rate(c.pcm, c.n, c.sample_rate, m->cfg.mimi.sample_rate, &x, &nx, err,
                      sizeof err);
        double cc = now_ms();
        float *lat = NULL;
        if (pocket_mimi_encode(m->mimi, x, nx, &lat, &T, NULL, NULL, err, sizeof err) != CTTS_OK)
            break;
        double d = now_ms();
        float *rows = malloc(((size_t)T + 1) * D * sizeof *rows);
        int n_rows = 0;
        pocket_flowlm_voice_rows(m->flowlm, lat, T, rows, &n_rows);
        pocket_flowlm_state *s = NULL;
        pocket_flowlm_state_new(m->flowlm, n_rows, &s, err, sizeof err);
        pocket_flowlm_prefill(m->flowlm, s, rows, n_rows, NULL);
        double e = now_ms();
        pocket_flowlm_state_free(s);
        free(rows);
        free(lat);
        free(x);
        pocket_voice *v = NULL, *w = NULL;
        double f0 = now_ms(), u0 = cpu_ms();
        if (pocket_voice_from_pcm(m, c.pcm, c.n, c.sample_rate, &v, err, sizeof err) != CTTS_OK)
            break;
        double f1 = now_ms(), u1 = cpu_ms();
        pocket_voice_save(v, out, err, sizeof err);
        double f2 = now_ms();
        if (pocket_voice_load(m, out, &w, err, sizeof err) != CTTS_OK) break;
        double f3 = now_ms();
        pocket_voice_free(v);
        pocket_voice_free(w);
        audio_clip_free(&c);
        t_dec[r] = b - a;
        t_rs[r] = cc - b;
        t_enc[r] = d - cc;
        t_pre[r] = e - d;
        t_all[r] = f1 - f0;
        t_cpu[r] = u1 - u0;
        t_save[r] = f2 - f1;
        t_load[r] = f3 - f2;
    }
    printf("clip: %.1f s at %d Hz -> %d latent frames, prompt %d positions; %d reps, medians:\n",
           seconds, rate, T, T + m->cfg.flow.insert_bos_before_voice, reps);
    printf("  decode + downmix     %9.1f ms\n", median(t_dec, reps));
    printf("  resample to 24 kHz   %9.1f ms\n", median(t_rs, reps));
    printf("  Mimi encoder         %9.1f ms\n", median(t_enc, reps));
    printf("  projection + prefill %9.1f ms\n", median(t_pre, reps));
    printf("  clone (from pcm)     %9.1f ms   (resample + encoder + prefill; %.1f ms CPU time "
           "over all threads)\n",
           median(t_all, reps), median(t_cpu, reps));
    printf("  save voice file      %9.1f ms\n", median(t_save, reps));
    printf("  load voice file      %9.1f ms   (a cache hit)\n", median(t_load, reps));
    remove(out);
    remove(clip);
    pocket_model_free(m);
    return 0;
}
