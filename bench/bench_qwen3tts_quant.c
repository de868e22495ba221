/*
 * What the weight types cost Qwen3-TTS in quality: the language model (talker
 * + code predictor) with converted weights, teacher forced along the codes of
 * the weights as stored, against the logits of those weights.
 *
 * Reference run: greedy, EOS ignored, N frames; every frame's 16 codes, the
 * talker logits its first code came from and the code predictor's 15 logit
 * rows are kept. Each weight type then runs the same text with every frame
 * forced to the reference codes (so both see identical inputs at every step)
 * and reports per step: cosine similarity of the logits (mean and minimum,
 * talker and predictor apart), and how often its argmax equals the
 * reference's argmax (top-1 agreement; for the predictor that is the
 * reference code itself). A free-running greedy run also reports
 * after how many frames its codes first differ. The teacher-forced audio is
 * decoded from the reference codes, so its SNR against the reference audio is
 * the cost of the speech decoder's own precision (the block types run it with
 * Q8_0 matrices and BF16-product convolutions).
 *
 * Usage: bench_qwen3tts_quant MODEL_DIR [frames (24)] [speaker (ryan)] [threads (2)]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/qwen3tts/q3t_codegen.h"
#include "models/qwen3tts/q3t_config.h"
#include "models/qwen3tts/qwen3tts.h"

static const char *TEXT =
    "The quick brown fox jumps over the lazy dog, and the clocks were striking thirteen.";

typedef struct {
    q3t_stream *s;
    int G, V, K, n_frames;
    const int32_t *force;  /* [n, G] reference codes, or NULL (free running) */
    int32_t *codes;        /* [n, G] codes produced */
    float *talker;         /* [n, V] talker logits of each frame's first code */
    float *cp;             /* [n, G-1, K] predictor logits */
    float *audio;          /* [n_audio] */
    size_t n_audio;
    int got;
    char err[256];
} run_ctx;

/* Observer: frame k is done; keep its outputs and arm the forcing of k + 1. */
static void on_frame(void *user, int k, const int32_t *codes) {
    run_ctx *r = user;
    if (k >= r->n_frames) return;
    q3t_codegen *g = q3t_stream_codegen(r->s);
    memcpy(r->codes + (size_t)k * r->G, codes, (size_t)r->G * sizeof *codes);
    memcpy(r->talker + (size_t)k * r->V, q3t_codegen_last_logits(g), (size_t)r->V * sizeof(float));
    r->got = k + 1;
    if (k + 1 < r->n_frames)
        q3t_codegen_teach_next(g, r->force ? r->force + (size_t)(k + 1) * r->G : NULL,
                               r->cp + (size_t)(k + 1) * (r->G - 1) * r->K, r->err,
                               sizeof r->err);
}

static int run(const char *dir, ctts_weight_type w, int threads, const char *speaker,
               run_ctx *r) {
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = threads;
    mp.weight_type = w;
    q3t_model *m = NULL;
    char err[512];
    if (q3t_model_load(dir, &mp, &m, err, sizeof err) != CTTS_OK ||
        q3t_stream_new(m, &r->s, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "bench_qwen3tts_quant: %s\n", err);
        q3t_model_free(m);
        return 1;
    }
    const q3t_config *c = q3t_model_config(m);
    r->G = c->talker.dec.num_code_groups;
    r->V = c->talker.dec.vocab_size;
    r->K = c->talker.cp.vocab_size;
    if (!r->codes) {
        r->codes = calloc((size_t)r->n_frames * r->G, sizeof *r->codes);
        r->talker = calloc((size_t)r->n_frames * r->V, sizeof *r->talker);
        r->cp = calloc((size_t)r->n_frames * (r->G - 1) * r->K, sizeof *r->cp);
    }
    ctts_gen_params p = q3t_default_gen_params(m);
    p.temperature = 0;
    p.speaker = speaker;
    p.ignore_eos = 1;
    p.max_frames = r->n_frames;
    p.pipeline = 0;
    q3t_stream_set_observer(r->s, on_frame, r);
    r->got = 0;
    int rc = 0;
    if (q3t_stream_start(r->s, NULL, &p, TEXT, err, sizeof err) != CTTS_OK) rc = 1;
    if (!rc)
        q3t_codegen_teach_next(q3t_stream_codegen(r->s), r->force, r->cp, err, sizeof err);
    float *pcm = malloc(q3t_step_max_samples(m) * sizeof *pcm);
    size_t n = 0;
    ctts_status st = CTTS_OK;
    while (!rc && (st = q3t_stream_step(r->s, pcm, &n, err, sizeof err)) == CTTS_OK) {
        float *a = realloc(r->audio, (r->n_audio + n) * sizeof *a);
        if (!a) {
            rc = 1;
            break;
        }
        memcpy(a + r->n_audio, pcm, n * sizeof *pcm);
        r->audio = a;
        r->n_audio += n;
    }
    if (!rc && st != CTTS_DONE) rc = 1;
    if (rc) fprintf(stderr, "bench_qwen3tts_quant: %s\n", err);
    free(pcm);
    q3t_stream_free(r->s);
    r->s = NULL;
    q3t_model_free(m);
    return rc;
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

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static void free_run(run_ctx *r) {
    free(r->codes);
    free(r->talker);
    free(r->cp);
    free(r->audio);
}

/* Signal-to-noise ratio of b against a, in dB (over the shorter length). */
static double snr_db(const float *a, size_t na, const float *b, size_t nb) {
    const size_t n = na < nb ? na : nb;
    double sig = 0, noise = 0;
    for (size_t i = 0; i < n; i++) {
        sig += (double)a[i] * a[i];
        noise += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    }
    return noise > 0 ? 10 * log10(sig / noise) : INFINITY;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_qwen3tts_quant MODEL_DIR [frames] [speaker] [threads]\n");
        return 2;
    }
    const char *dir = argv[1];
    const int frames = argc > 2 ? atoi(argv[2]) : 24;
    const char *speaker = argc > 3 ? argv[3] : "ryan";
    const int threads = argc > 4 ? atoi(argv[4]) : 2;
    if (frames < 2 || frames > 2000) {
        fprintf(stderr, "bench_qwen3tts_quant: frames must be in [2, 2000]\n");
        return 2;
    }
    run_ctx ref = {.n_frames = frames};
    if (run(dir, CTTS_WEIGHTS_KEEP, threads, speaker, &ref) || ref.got < frames) {
        fprintf(stderr, "bench_qwen3tts_quant: reference run made %d of %d frames\n", ref.got,
                frames);
        return 1;
    }
    const int G = ref.G, V = ref.V, K = ref.K;
    printf("model %s, %d frames, greedy, teacher forced on the as-stored codes\n", dir, frames);
    printf("%-6s %24s %24s %14s %14s %12s %12s\n", "weights", "talker cos mean / min",
           "predictor cos mean / min", "talker top-1", "pred. top-1", "free run",
           "audio SNR dB");
    const ctts_weight_type types[] = {CTTS_WEIGHTS_BF16, CTTS_WEIGHTS_Q8_0, CTTS_WEIGHTS_Q4_0};
    const char *names[] = {"bf16", "q8_0", "q4_0"};
    for (int ti = 0; ti < 3; ti++) {
        run_ctx q = {.n_frames = frames, .force = ref.codes};
        run_ctx fr = {.n_frames = frames};
        if (run(dir, types[ti], threads, speaker, &q) || q.got < frames ||
            run(dir, types[ti], threads, speaker, &fr)) {
            free_run(&q);
            free_run(&fr);
            return 1;
        }
        double tc_sum = 0, tc_min = 1, pc_sum = 0, pc_min = 1;
        int t_agree = 0, p_agree = 0, n_p = 0;
        for (int k = 0; k < frames; k++) {
            const double c = cosine(ref.talker + (size_t)k * V, q.talker + (size_t)k * V, V);
            tc_sum += c;
            if (c < tc_min) tc_min = c;
            t_agree += argmax(q.talker + (size_t)k * V, V) == argmax(ref.talker + (size_t)k * V, V);
            for (int j = 0; j < G - 1; j++) {
                const float *a = ref.cp + ((size_t)k * (G - 1) + j) * K;
                const float *b = q.cp + ((size_t)k * (G - 1) + j) * K;
                const double cp = cosine(a, b, K);
                pc_sum += cp;
                if (cp < pc_min) pc_min = cp;
                p_agree += argmax(b, K) == ref.codes[(size_t)k * G + j + 1];
                n_p++;
            }
        }
        int same = 0;
        while (same < fr.got && !memcmp(fr.codes + (size_t)same * G, ref.codes + (size_t)same * G,
                                        (size_t)G * sizeof(int32_t)))
            same++;
        printf("%-6s %14.5f / %.5f %14.5f / %.5f %13.1f%% %13.1f%% %6d / %d %12.1f\n",
               names[ti], tc_sum / frames, tc_min, pc_sum / n_p, pc_min,
               100.0 * t_agree / frames, 100.0 * p_agree / n_p, same, frames,
               snr_db(ref.audio, ref.n_audio, q.audio, q.n_audio));
        fflush(stdout);
        free_run(&q);
        free_run(&fr);
    }
    free_run(&ref);
    return 0;
}
