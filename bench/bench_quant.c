/*
 * Quality of the weight types against f32 on a Pocket model: the same text,
 * greedy (temperature 0), a fixed number of frames (EOS disabled), once per
 * weight type. Reports the cosine similarity of the latent frames (all
 * frames: mean and minimum; the first 10 frames, before the autoregressive
 * paths have had time to drift apart) and the SNR of the audio, in dB.
 *
 * Usage: bench_quant MODEL [frames (40)] [voice.safetensors] [text]
 * Also: bench_quant --isa MODEL ...  compares --isa scalar against auto in f32
 * (the SIMD kernels' end-to-end drift).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/pocket/pocket.h"

#define MAX_FR 1024

typedef struct {
    int ldim, n;
    float *lat; /* [MAX_FR, ldim] */
} lat_log;

static void observe(void *user, int chunk, int step, const float *latent, float eos, int emitted) {
    (void)eos;
    (void)emitted;
    lat_log *l = user;
    if (chunk != 0 || step >= MAX_FR) return;
    memcpy(l->lat + (size_t)step * l->ldim, latent, (size_t)l->ldim * sizeof(float));
    if (step + 1 > l->n) l->n = step + 1;
}

/* Runs the text; returns audio (malloc'd) and fills the latent log. */
static float *run(const char *model, ctts_weight_type wt, ctts_cpu_isa isa, const char *voice,
                  const char *text, int frames, lat_log *log, size_t *n_out) {
    char err[512];
    ctts_model_params mp = ctts_model_default_params();
    mp.weight_type = wt;
    mp.cpu_isa = isa;
    pocket_model *m = NULL;
    if (pocket_model_load(model, &mp, &m, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "bench_quant: %s\n", err);
        return NULL;
    }
    pocket_voice *v = NULL;
    if (voice && pocket_voice_load(m, voice, &v, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "bench_quant: %s\n", err);
        pocket_model_free(m);
        return NULL;
    }
    log->ldim = pocket_model_config(m)->flow.ldim;
    log->n = 0;
    log->lat = calloc((size_t)MAX_FR * log->ldim, sizeof(float));
    ctts_gen_params p = pocket_default_gen_params();
    p.temperature = 0;
    p.eos_threshold = 1e9f;
    p.max_frames = frames;
    pocket_stream *s = NULL;
    float *audio = malloc((size_t)(frames + 8) * pocket_frame_size(m) * sizeof(float));
    size_t n = 0;
    ctts_status st = pocket_stream_new(m, &s, err, sizeof err);
    if (st == CTTS_OK) {
        pocket_stream_set_observer(s, observe, log);
        st = pocket_stream_start(s, v, &p, text, err, sizeof err);
    }
    while (st == CTTS_OK) {
        size_t got = 0;
        if (n + (size_t)pocket_frame_size(m) > (size_t)(frames + 8) * pocket_frame_size(m)) break;
        st = pocket_stream_step(s, audio + n, &got, err, sizeof err);
        n += got;
    }
    if (st != CTTS_DONE && st != CTTS_OK) fprintf(stderr, "bench_quant: %s\n", err);
    pocket_stream_free(s);
    pocket_voice_free(v);
    pocket_model_free(m);
    *n_out = n;
    return audio;
}

static double cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
}

static void compare(const char *label, const lat_log *ref, const float *ref_audio, size_t ref_n,
                    const lat_log *got, const float *audio, size_t n) {
    const int nf = ref->n < got->n ? ref->n : got->n;
    double sum = 0, mn = 1, sum10 = 0, mn10 = 1;
    for (int f = 0; f < nf; f++) {
        const double c = cosine(ref->lat + (size_t)f * ref->ldim, got->lat + (size_t)f * got->ldim,
                                ref->ldim);
        sum += c;
        if (c < mn) mn = c;
        if (f < 10) {
            sum10 += c;
            if (c < mn10) mn10 = c;
        }
    }
    const size_t na = ref_n < n ? ref_n : n;
    double sig = 0, noise = 0;
    for (size_t i = 0; i < na; i++) {
        sig += (double)ref_audio[i] * ref_audio[i];
        noise += ((double)audio[i] - ref_audio[i]) * ((double)audio[i] - ref_audio[i]);
    }
    const int n10 = nf < 10 ? nf : 10;
    printf("%-8s frames %4d  latent cosine mean %.6f min %.6f  first %d: mean %.6f min %.6f  "
           "audio SNR %6.2f dB\n",
           label, nf, nf ? sum / nf : 0, mn, n10, n10 ? sum10 / n10 : 0, mn10,
           noise > 0 ? 10 * log10(sig / noise) : INFINITY);
}

int main(int argc, char **argv) {
    int isa_mode = argc > 1 && !strcmp(argv[1], "--isa");
    if (isa_mode) {
        argv++;
        argc--;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: bench_quant [--isa] MODEL [frames] [voice] [text]\n");
        return 2;
    }
    const char *model = argv[1];
    const int frames = argc > 2 ? atoi(argv[2]) : 40;
    const char *voice = argc > 3 && strcmp(argv[3], "none") ? argv[3] : NULL;
    const char *text = argc > 4 ? argv[4]
                                : "The quick brown fox jumps over the lazy dog, and then it "
                                  "runs away into the forest.";
    if (frames < 1 || frames > MAX_FR - 8) return 2;
    lat_log ref;
    size_t ref_n;
    float *ref_audio = run(model, CTTS_WEIGHTS_F32, isa_mode ? CTTS_ISA_SCALAR : CTTS_ISA_AUTO,
                           voice, text, frames, &ref, &ref_n);
    if (!ref_audio) return 1;
    static const struct {
        const char *name;
        ctts_weight_type wt;
    } modes[] = {{"f32", CTTS_WEIGHTS_F32},
                 {"bf16", CTTS_WEIGHTS_BF16},
                 {"q8_0", CTTS_WEIGHTS_Q8_0},
                 {"q4_0", CTTS_WEIGHTS_Q4_0}};
    for (int i = isa_mode ? 0 : 1; i < (isa_mode ? 1 : 4); i++) {
        lat_log got;
        size_t n;
        float *audio = run(model, modes[i].wt, CTTS_ISA_AUTO, voice, text, frames, &got, &n);
        if (!audio) return 1;
        compare(isa_mode ? "auto/f32" : modes[i].name, &ref, ref_audio, ref_n, &got, audio, n);
        free(audio);
        free(got.lat);
    }
    free(ref_audio);
    free(ref.lat);
    return 0;
}
