/*
 * Speech of text that arrives as a language model writes it: the text is fed
 * word by word at a fixed rate (as a chat assistant's reply streams in), and
 * audio is read whenever there is some, on one thread, through the public API.
 *
 *   bench_llm_feed MODEL [--speaker S] [--words-per-s R (15)] [--runs N (3)]
 *                  [--threads N] [--text-mode auto|streaming|non-streaming]
 *                  [--max-frames N (0 = to the end of speech; N: exactly N frames,
 *                  the end-of-speech signal ignored, as random weights want)]
 *
 * Per run: first audio (ms from the first word), when the text ended, when
 * the audio ended (ms), and the playback stall: how long a player that starts
 * with the first samples would wait in total for later ones. Prints the
 * median over runs. Random weights: only the times are real. Not timed: the
 * model load and one warm-up stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctts.h"

static const char TEXT[] =
    "Sure, here is a short answer. The engine reads the reply as it is written, word by word, "
    "and starts to speak before the last word has arrived, so a listener hears the first "
    "sentence while the rest of the answer is still being produced. Numbers like 42 and "
    "names like Ada are read as they come, and the voice keeps going until the reply ends.";

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms) {
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1e3), (long)((ms - (time_t)(ms / 1e3) * 1e3) * 1e6)};
    nanosleep(&ts, NULL);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    double first, text_end, audio_end, stall;
} run_result;

/* One reply: words fed at their times, reads in between. */
static int run(ctts_session *s, const ctts_gen_params *p, double ms_per_word, run_result *r) {
    static float buf[8192];
    const size_t tl = strlen(TEXT);
    size_t pos = 0;
    int ended = 0;
    double t0 = now_ms(), played = 0; /* played: ms of audio a player started at first has had */
    r->first = r->stall = r->text_end = -1; /* text_end -1: the stream ended first */
    ctts_status st = ctts_stream_begin(s, NULL, p);
    for (int word = 0; st == CTTS_OK;) {
        const double now = now_ms() - t0;
        if (!ended && now >= word * ms_per_word) {
            /* the next word with the space after it */
            size_t e = pos;
            while (e < tl && TEXT[e] != ' ') e++;
            while (e < tl && TEXT[e] == ' ') e++;
            char piece[64];
            size_t k = e - pos < sizeof piece - 1 ? e - pos : sizeof piece - 1;
            memcpy(piece, TEXT + pos, k);
            piece[k] = 0;
            st = ctts_stream_feed_text(s, piece);
            pos += k, word++;
            if (st == CTTS_OK && pos >= tl) {
                st = ctts_stream_end_text(s);
                ended = 1;
                r->text_end = now_ms() - t0;
            }
            continue;
        }
        size_t got = 0;
        st = ctts_stream_read(s, buf, sizeof buf / sizeof *buf, &got);
        const double t = now_ms() - t0;
        if (got) {
            if (r->first < 0) {
                r->first = t;
                played = t, r->stall = 0;
            }
            if (t > played) r->stall += t - played, played = t; /* the player waited */
            played += got * 1000.0 / 24000.0;
        } else if (st == CTTS_OK) {
            sleep_ms(word * ms_per_word - (now_ms() - t0)); /* nothing to do before the next word */
        }
    }
    r->audio_end = now_ms() - t0;
    if (st != CTTS_DONE) {
        fprintf(stderr, "bench_llm_feed: %s\n", ctts_session_error(s));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) goto usage;
    const char *model = argv[1], *speaker = NULL, *mode = "auto";
    double rate = 15;
    int runs = 3, threads = 0, max_frames = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) goto usage;
        if (!strcmp(a, "--speaker")) speaker = val;
        else if (!strcmp(a, "--words-per-s")) rate = atof(val);
        else if (!strcmp(a, "--runs")) runs = atoi(val);
        else if (!strcmp(a, "--threads")) threads = atoi(val);
        else if (!strcmp(a, "--text-mode")) mode = val;
        else if (!strcmp(a, "--max-frames")) max_frames = atoi(val);
        else goto usage;
        i++;
    }
    if (rate <= 0 || runs < 1 || runs > 100) goto usage;
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = threads;
    ctts_model *m = NULL;
    ctts_session *s = NULL;
    char err[512];
    if (ctts_model_load(model, &mp, &m, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "bench_llm_feed: %s\n", err);
        return 1;
    }
    if (ctts_session_new(m, &s) != CTTS_OK) return 1;
    ctts_gen_params p = ctts_gen_default_params(m);
    p.speaker = speaker;
    p.max_frames = max_frames;
    p.ignore_eos = max_frames > 0;
    p.text_mode = !strcmp(mode, "streaming")       ? CTTS_TEXT_MODE_STREAMING
                  : !strcmp(mode, "non-streaming") ? CTTS_TEXT_MODE_NON_STREAMING
                                                   : CTTS_TEXT_MODE_AUTO;
    run_result warm, r[100];
    if (run(s, &p, 0, &warm) != 0) return 1; /* pages the weights in */
    for (int i = 0; i < runs; i++)
        if (run(s, &p, 1000.0 / rate, &r[i]) != 0) return 1;
    double v[4][100];
    for (int i = 0; i < runs; i++)
        v[0][i] = r[i].first, v[1][i] = r[i].text_end, v[2][i] = r[i].audio_end, v[3][i] = r[i].stall;
    for (int k = 0; k < 4; k++) qsort(v[k], (size_t)runs, sizeof v[k][0], cmp_double);
    printf("%s, text mode %s, %.1f words/s (%zu bytes), %d runs (median): first audio %.0f ms, "
           "text ended %.0f ms (-1: after the audio), audio ended %.0f ms, playback stalls %.0f ms\n",
           model, mode, rate, strlen(TEXT), runs, v[0][runs / 2], v[1][runs / 2], v[2][runs / 2],
           v[3][runs / 2]);
    ctts_session_free(s);
    ctts_model_free(m);
    return 0;
usage:
    fprintf(stderr, "usage: bench_llm_feed MODEL [--speaker S] [--words-per-s R] [--runs N] "
                    "[--threads N] [--text-mode auto|streaming|non-streaming] [--max-frames N]\n");
    return 2;
}
