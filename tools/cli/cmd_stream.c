/*
 * ctts stream: speaks text while it is being generated.
 *
 *   ctts stream --model M --text T | --text-file F|- [--voice V] [--format s16|f32]
 *               [--output out.wav] [--measure-first-chunk] [--pipeline on|off|auto]
 *
 * Data flow: text (all at once, or stdin fed to the library as it arrives) ->
 * ctts_stream_feed_text -> ctts_stream_read frame by frame -> raw little-endian
 * PCM on stdout (flushed after every frame, for `| aplay -f S16_LE -r 24000
 * -c 1`) or a WAV file written progressively (header fixed at the end).
 * With --text-file -, reading stdin never holds audio back: the loop decodes
 * while audio is available and only waits on stdin when the library needs text.
 * --measure-first-chunk prints "first_chunk_ms: X" on stderr: from the start of
 * the stream (model and voice loaded) to the first samples available. The
 * weights are memory-mapped and paged in on first use, so it first runs one
 * silent frame ("Hello.") to have the model really loaded, as the number means.
 * It does not play audio itself and does not resample.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define READ_CAP 4096 /* samples per read (a frame is 1920 at 24 kHz) */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct {
    ctts_wav_writer *wav; /* --output, else raw PCM on stdout */
    int f32;
    char err[1024];
} sink;

/* Raw PCM, little endian, converted as the WAV writer does. */
static int write_raw(const float *pcm, size_t n, int f32) {
    unsigned char buf[READ_CAP * 4];
    ctts_pcm_encode(buf, pcm, n, f32 ? CTTS_WAV_F32 : CTTS_WAV_S16);
    size_t bps = f32 ? 4 : 2;
    if (fwrite(buf, bps, n, stdout) != n || fflush(stdout) != 0) return -1;
    return 0;
}

static int sink_write(sink *k, const float *pcm, size_t n) {
    if (k->wav) return ctts_wav_writer_append(k->wav, pcm, n, k->err, sizeof k->err) ? -1 : 0;
    if (write_raw(pcm, n, k->f32) == 0) return 0;
    snprintf(k->err, sizeof k->err, "cannot write audio to stdout: %s", strerror(errno));
    return -1;
}

typedef struct {
    ctts_session *s;
    sink *k;
    double t0, t_first;
    int measure;
    float pcm[READ_CAP];
} streamer;

/* Reads and writes audio until DONE, an error, or (before end_text) the
 * library needing more text (returns CTTS_OK). When poll_fd >= 0 it returns
 * CTTS_OK as soon as that descriptor has input, so text is fed promptly. */
static ctts_status pump(streamer *st, int poll_fd, int *write_failed) {
    for (;;) {
        size_t got = 0;
        ctts_status r = ctts_stream_read(st->s, st->pcm, READ_CAP, &got);
        if (got) {
            if (st->t_first == 0) {
                st->t_first = now_ms();
                if (st->measure) fprintf(stderr, "first_chunk_ms: %.2f\n", st->t_first - st->t0);
            }
            if (sink_write(st->k, st->pcm, got)) {
                *write_failed = 1;
                return CTTS_E_IO;
            }
        }
        if (r != CTTS_OK || got == 0) return r;
        if (poll_fd >= 0) {
            struct pollfd pf = {.fd = poll_fd, .events = POLLIN};
            if (poll(&pf, 1, 0) > 0) return CTTS_OK;
        }
    }
}

/* Feeds stdin to the stream as it arrives while audio keeps flowing. */
static ctts_status stream_stdin(streamer *st, int *write_failed, int *read_failed) {
    char buf[4097];
    int eof = 0;
    for (;;) {
        ctts_status r = pump(st, eof ? -1 : 0, write_failed);
        if (r != CTTS_OK) return r;
        if (eof) continue; /* after end_text reads never stop before DONE */
        ssize_t n = read(0, buf, sizeof buf - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            *read_failed = errno;
            return CTTS_E_IO;
        }
        if (n == 0) {
            eof = 1;
            r = ctts_stream_end_text(st->s);
        } else {
            /* a NUL byte would end the C string early: treat it as a space */
            for (ssize_t i = 0; i < n; i++)
                if (!buf[i]) buf[i] = ' ';
            buf[n] = 0;
            r = ctts_stream_feed_text(st->s, buf);
        }
        if (r != CTTS_OK) return r;
    }
}

static void print_timings(const ctts_timings *t, int sample_rate) {
    fprintf(stderr,
            "ctts: %lld frames, %.2f s of audio in %.1f ms (%.2fx real time); first audio %.1f ms "
            "(text %.1f, prefill + first latent %.1f, mimi %.1f); min lead over playback %.1f ms; "
            "totals: prepare %.1f ms, prefill %.1f ms, flowlm %.1f ms, mimi %.1f ms; load %.1f ms\n",
            (long long)t->frames, t->samples / (double)sample_rate, t->total_ms,
            t->rtf > 0 ? 1.0 / t->rtf : 0.0, t->first_audio_ms, t->first_text_ms,
            t->first_prefill_ms, t->first_mimi_ms, t->min_lead_ms,
            t->prepare_ms, t->prefill_ms, t->flowlm_ms, t->mimi_ms, t->load_ms);
}

int cmd_stream(cli_args *a) {
    int from_stdin = a->text_file && !strcmp(a->text_file, "-");
    const char *text = NULL;
    char *owned = NULL;
    int rc = 0;
    if (a->text && a->text_file) return cli_usage_error("%s", "give --text or --text-file, not both");
    if (!from_stdin && (rc = cli_get_text(a, &text, &owned))) return rc;
    if (!a->output && isatty(1)) {
        free(owned);
        return cli_usage_error("%s", "stream writes raw PCM to stdout: pipe it (e.g. | aplay -f "
                                     "S16_LE -r 24000 -c 1) or give --output FILE.wav");
    }
    ctts_model *m = NULL;
    ctts_voice *v = NULL;
    ctts_session *s = NULL;
    sink k = {.f32 = a->wav_f32};
    streamer *st = calloc(1, sizeof *st);
    if (!st) {
        free(owned);
        return cli_fail("%s", "out of memory");
    }
    if (!a->model) a->model = "english";
    if ((rc = cli_load_model(a, &m))) goto done;
    const char *voice = a->voice ? a->voice : ctts_model_default_voice(m);
    if ((rc = cli_load_voice(a, m, voice, 0.0f, &v))) goto done;
    if (ctts_session_new(m, &s) != CTTS_OK) {
        rc = cli_fail("%s", "cannot create a session (out of memory?)");
        goto done;
    }
    int sr = ctts_model_get_info(m)->sample_rate;
    if (a->output && ctts_wav_writer_open(a->output, sr, a->wav_f32 ? CTTS_WAV_F32 : CTTS_WAV_S16,
                                          &k.wav, k.err, sizeof k.err) != CTTS_OK) {
        rc = cli_fail("%s", k.err);
        goto done;
    }
    ctts_gen_params gp = ctts_gen_default_params(m);
    cli_apply_gen_args(a, &gp);
    if (a->measure_first) {
        /* warm-up: one frame pages in every weight of FlowLM and Mimi */
        ctts_gen_params wp = gp;
        wp.max_frames = 1;
        size_t got = 0;
        ctts_status wr = ctts_stream_begin(s, v, &wp);
        if (wr == CTTS_OK) wr = ctts_stream_feed_text(s, "Hello.");
        if (wr == CTTS_OK) wr = ctts_stream_end_text(s);
        while (wr == CTTS_OK) wr = ctts_stream_read(s, st->pcm, READ_CAP, &got);
        if (wr != CTTS_DONE) {
            rc = cli_fail("%s", ctts_session_error(s));
            goto done;
        }
    }
    st->s = s;
    st->k = &k;
    st->measure = a->measure_first;
    int write_failed = 0, read_failed = 0;
    st->t0 = now_ms();
    ctts_status r = ctts_stream_begin(s, v, &gp);
    if (r == CTTS_OK && from_stdin) {
        r = stream_stdin(st, &write_failed, &read_failed);
    } else if (r == CTTS_OK) {
        r = ctts_stream_feed_text(s, text);
        if (r == CTTS_OK) r = ctts_stream_end_text(s);
        while (r == CTTS_OK) r = pump(st, -1, &write_failed);
    }
    if (r != CTTS_DONE) {
        if (write_failed) rc = cli_fail("%s", k.err);
        else if (read_failed) rc = cli_fail("cannot read stdin: %s", strerror(read_failed));
        else rc = cli_fail("%s", ctts_session_error(s));
        goto done;
    }
    if (k.wav) {
        ctts_status cr = ctts_wav_writer_close(k.wav, k.err, sizeof k.err);
        k.wav = NULL;
        if (cr != CTTS_OK) {
            rc = cli_fail("%s", k.err);
            goto done;
        }
    }
    if (a->verbose) print_timings(ctts_session_timings(s), sr);
done:
    if (k.wav) {
        ctts_wav_writer_close(k.wav, NULL, 0);
        if (strcmp(a->output, "-") != 0) remove(a->output); /* incomplete */
    }
    ctts_session_free(s);
    ctts_voice_free(v);
    ctts_model_free(m);
    free(st);
    free(owned);
    return rc;
}
