/*
 * Qwen3-TTS-12Hz speech tokenizer cost at the model's real shape (random
 * weights: `/usr/bin/python3 ../shared/refgen/qwen3tts/make_model.py --preset
 * full --out /tmp/qwen3tts-full`).
 *
 * Decoder: random codes decoded (a) frame by frame through one stream (what
 * streaming playback costs: ms per 80 ms frame and x real time), (b) in pieces
 * of 4 frames, (c) the whole-utterance official chunked decode. Encoder: a
 * random signal of the asked length encoded to 16 codebooks. Wall and process
 * CPU time, medians over reps; also the bind time and the stream's memory.
 *
 * Usage: bench_qwen3tts_codec [model dir (/tmp/qwen3tts-full)] [frames (25)] [reps (3)]
 *        [threads (0 = all)]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "models/qwen3tts/q3t_config.h"
#include "models/qwen3tts/speech_decoder.h"
#include "models/qwen3tts/speech_encoder.h"

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
    return v[n / 2];
}

static const ctts_tensor *lookup(void *ctx, const char *name) {
    return st_find((const st_file *)ctx, name);
}

#define MAX_REPS 32

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp/qwen3tts-full";
    const int frames = argc > 2 ? atoi(argv[2]) : 25;
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    const int threads = argc > 4 ? atoi(argv[4]) : 0;
    if (frames < 1 || reps < 1) return 2;
    if (reps > MAX_REPS) reps = MAX_REPS;
    char err[512] = "", path[2048];
    q3t_config cfg;
    if (q3t_config_load(dir, &cfg, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "config: %s\n", err);
        return 1;
    }
    snprintf(path, sizeof path, "%s/speech_tokenizer/model.safetensors", dir);
    st_file *f = NULL;
    if (st_open(path, &f, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    ctts_backend *be = ctts_backend_cpu_new(threads, CTTS_ISA_AUTO);
    double t0 = now_ms();
    q3t_speech_decoder *d = NULL;
    q3t_speech_encoder *e = NULL;
    if (q3t_speech_decoder_bind(&cfg.codec.dec, be, lookup, f, &d, err, sizeof err) != CTTS_OK ||
        q3t_speech_encoder_bind(&cfg.codec, be, lookup, f, &e, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "bind: %s\n", err);
        return 1;
    }
    const double bind_ms = now_ms() - t0;
    const int nq = q3t_speech_decoder_n_codebooks(d), hop = q3t_speech_decoder_hop(d);
    int32_t *codes = malloc((size_t)frames * nq * sizeof *codes);
    float *pcm = malloc((size_t)frames * hop * sizeof *pcm);
    uint32_t s = 12345;
    for (int i = 0; i < frames * nq; i++) {
        s = s * 1664525u + 1013904223u;
        codes[i] = (int32_t)((s >> 8) % (uint32_t)q3t_speech_decoder_codebook_size(d));
    }
    printf("speech tokenizer %s: bind %.0f ms, %d frames (%.2f s of audio), %d reps\n", dir,
           bind_ms, frames, frames * 0.08, reps);
    const double audio_ms = frames * 80.0;
    const int pieces[2] = {1, 4};
    for (int pi = 0; pi < 2; pi++) {
        double wall[MAX_REPS], cpu[MAX_REPS], first = 0;
        for (int r = 0; r < reps; r++) {
            q3t_sdec_stream *st = NULL;
            if (q3t_sdec_stream_new(d, pieces[pi], Q3T_SDEC_CHUNK, Q3T_SDEC_CONTEXT, &st, err,
                                    sizeof err) != CTTS_OK) {
                fprintf(stderr, "stream: %s\n", err);
                return 1;
            }
            double w0 = now_ms(), c0 = cpu_ms();
            for (int i = 0; i < frames; i += pieces[pi]) {
                int k = frames - i < pieces[pi] ? frames - i : pieces[pi];
                q3t_sdec_stream_decode(st, codes + (size_t)i * nq, k, pcm + (size_t)i * hop, err,
                                       sizeof err);
                if (i == 0) first = now_ms() - w0;
            }
            wall[r] = now_ms() - w0;
            cpu[r] = cpu_ms() - c0;
            q3t_sdec_stream_free(st);
        }
        const double w = median(wall, reps), c = median(cpu, reps);
        printf("decode, %d frame(s) per call: %.1f ms/frame wall (%.2fx real time), cpu %.1f "
               "ms/frame, first call %.1f ms\n",
               pieces[pi], w / frames, audio_ms / w, c / frames, first);
    }
    {
        double wall[MAX_REPS];
        for (int r = 0; r < reps; r++) {
            float *out = NULL;
            size_t n = 0;
            double w0 = now_ms();
            q3t_speech_decode(d, codes, frames, &out, &n, err, sizeof err);
            wall[r] = now_ms() - w0;
            free(out);
        }
        const double w = median(wall, reps);
        printf("decode, whole utterance: %.1f ms/frame (%.2fx real time)\n", w / frames,
               audio_ms / w);
    }
    {
        const size_t n = (size_t)frames * hop;
        float *sig = malloc(n * sizeof *sig);
        for (size_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            sig[i] = 0.3f * ((float)(s >> 8) / 16777216.0f - 0.5f);
        }
        double wall[MAX_REPS];
        for (int r = 0; r < reps; r++) {
            int32_t *c = NULL;
            int nf = 0;
            double w0 = now_ms();
            if (q3t_speech_encode(e, sig, n, cfg.codec.encoder_valid_num_quantizers, &c, &nf, NULL,
                                  NULL, err, sizeof err) != CTTS_OK)
                fprintf(stderr, "encode: %s\n", err);
            wall[r] = now_ms() - w0;
            free(c);
        }
        const double w = median(wall, reps);
        printf("encode %.2f s of audio: %.0f ms (%.1fx real time)\n", n / 24000.0, w, audio_ms / w);
        free(sig);
    }
    free(codes);
    free(pcm);
    q3t_speech_decoder_free(d);
    q3t_speech_encoder_free(e);
    st_close(f);
    be->destroy(be);
    return 0;
}
