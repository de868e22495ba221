/*
 * Public API (include/ctts.h): model / voice / session lifecycle, the stream
 * state machine, one-shot synthesis, timings and status strings.
 *
 * The stream is the primitive: begin -> feed_text* -> end_text -> read*.
 * Text is collected until end_text, then the family prepares and chunks it;
 * each read computes one frame (80 ms of audio) and hands it out, keeping
 * what does not fit the caller's buffer for the next read. ctts_synthesize
 * is a loop over the same calls, so both give identical samples.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctts.h"
#include "audio/wav.h"
#include "base/error.h"
#include "models/pocket/pocket.h"

#define CTTS_VERSION "0.1.0"
#define TEXT_MAX (64u << 20) /* bytes of text one stream accepts */

struct ctts_model {
    pocket_model *pocket;
    ctts_model_info info;
    char config_path[1024];
    double load_ms;
};

struct ctts_voice {
    pocket_voice *pocket;
};

typedef enum { ST_IDLE, ST_TEXT, ST_RUNNING, ST_DONE, ST_FAILED } stream_phase;

struct ctts_session {
    ctts_model *model;
    pocket_stream *stream;
    stream_phase phase;
    const ctts_voice *voice;
    ctts_gen_params params;
    char *text;
    size_t text_len, text_cap;
    float *frame; /* last computed frame */
    size_t frame_len, frame_pos;
    atomic_int cancel;
    double t_begin;
    int first_audio_seen;
    ctts_timings timings;
    char error[512];
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- library ---- */

const char *ctts_version(void) { return CTTS_VERSION; }

const char *ctts_status_str(ctts_status st) {
    switch (st) {
    case CTTS_OK: return "ok";
    case CTTS_DONE: return "done";
    case CTTS_E_INVALID_ARG: return "invalid argument";
    case CTTS_E_IO: return "i/o error";
    case CTTS_E_FORMAT: return "bad file format";
    case CTTS_E_UNSUPPORTED: return "unsupported";
    case CTTS_E_OOM: return "out of memory";
    case CTTS_E_BACKEND: return "backend failure";
    case CTTS_E_CANCELLED: return "cancelled";
    case CTTS_E_NOT_FOUND: return "not found";
    case CTTS_E_STATE: return "call out of order";
    }
    return "unknown status";
}

static void default_log(ctts_log_level level, const char *msg, void *user) {
    (void)user;
    if (level <= CTTS_LOG_WARN) fprintf(stderr, "ctts: %s\n", msg);
}

static ctts_log_fn log_fn = default_log;
static void *log_user;

void ctts_log_set(ctts_log_fn fn, void *user) {
    log_fn = fn;
    log_user = user;
}

/* ---- model ---- */

ctts_model_params ctts_model_default_params(void) {
    ctts_model_params p;
    memset(&p, 0, sizeof p);
    p.n_threads = 0;
    p.cpu_isa = CTTS_ISA_AUTO;
    p.weight_type = CTTS_WEIGHTS_KEEP;
    return p;
}

ctts_status ctts_model_load(const char *path, const ctts_model_params *params, ctts_model **out,
                            char *err, size_t err_len) {
    if (!out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!path || !*path) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "no model given");
    ctts_model_params p = params ? *params : ctts_model_default_params();
    if (p.weight_type != CTTS_WEIGHTS_KEEP && p.weight_type != CTTS_WEIGHTS_F32)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "weight conversion at load is not supported yet (use f32)");
    double t0 = now_ms();
    ctts_model *m = calloc(1, sizeof *m);
    if (!m) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    ctts_status st = pocket_model_load(path, &p, &m->pocket, err, err_len);
    if (st != CTTS_OK) {
        free(m);
        return st;
    }
    const pocket_config *c = pocket_model_config(m->pocket);
    snprintf(m->config_path, sizeof m->config_path, "%s", c->config_path);
    m->info.family = "pocket";
    m->info.sample_rate = c->mimi.sample_rate;
    m->info.frame_rate = c->mimi.frame_rate;
    m->info.n_params = pocket_model_n_params(m->pocket);
    m->info.config_path = m->config_path;
    m->load_ms = now_ms() - t0;
    *out = m;
    return CTTS_OK;
}

void ctts_model_free(ctts_model *m) {
    if (!m) return;
    pocket_model_free(m->pocket);
    free(m);
}

const ctts_model_info *ctts_model_get_info(const ctts_model *m) { return m ? &m->info : NULL; }

size_t ctts_model_describe(const ctts_model *m, char *buf, size_t len) {
    if (!m) return 0;
    return pocket_model_describe(m->pocket, buf, len);
}

ctts_status ctts_tokenize(const ctts_model *m, const char *text, int prepared, int32_t *ids,
                          size_t cap, size_t *n_ids, char *err, size_t err_len) {
    if (!m || !text || !n_ids)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "model, text and n_ids are required");
    int32_t *all = NULL;
    size_t n = 0;
    ctts_status st = pocket_tokenize(m->pocket, text, prepared, &all, &n, err, err_len);
    if (st != CTTS_OK) return st;
    if (ids) memcpy(ids, all, (n < cap ? n : cap) * sizeof *ids);
    *n_ids = n;
    free(all);
    return CTTS_OK;
}

/* ---- voices ---- */

ctts_status ctts_voice_load(ctts_model *m, const char *name_or_path, ctts_voice **out, char *err,
                            size_t err_len) {
    if (!m || !out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "model and out are required");
    *out = NULL;
    if (!name_or_path || strcmp(name_or_path, "none") == 0) return CTTS_OK;
    FILE *f = fopen(name_or_path, "rb");
    if (!f)
        return ctts_err(err, err_len, CTTS_E_NOT_FOUND,
                        "unknown voice '%s' (not a voice-state .safetensors file)", name_or_path);
    fclose(f);
    ctts_voice *v = calloc(1, sizeof *v);
    if (!v) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    ctts_status st = pocket_voice_load(m->pocket, name_or_path, &v->pocket, err, err_len);
    if (st != CTTS_OK) {
        free(v);
        return st;
    }
    *out = v;
    return CTTS_OK;
}

ctts_status ctts_voice_save(const ctts_voice *v, const char *path, char *err, size_t err_len) {
    if (!v || !path) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice and path required");
    return pocket_voice_save(v->pocket, path, err, err_len);
}

void ctts_voice_free(ctts_voice *v) {
    if (!v) return;
    pocket_voice_free(v->pocket);
    free(v);
}

/* ---- sessions ---- */

ctts_gen_params ctts_gen_default_params(const ctts_model *m) {
    (void)m;
    return pocket_default_gen_params();
}

static ctts_status session_fail(ctts_session *s, ctts_status st) {
    s->phase = ST_FAILED;
    return st;
}

static ctts_status session_err(ctts_session *s, ctts_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ctts_status session_err(ctts_session *s, ctts_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof s->error, fmt, ap);
    va_end(ap);
    return st;
}

ctts_status ctts_session_new(ctts_model *m, ctts_session **out) {
    if (!m || !out) return CTTS_E_INVALID_ARG;
    *out = NULL;
    ctts_session *s = calloc(1, sizeof *s);
    if (!s) return CTTS_E_OOM;
    s->model = m;
    s->frame = malloc((size_t)pocket_frame_size(m->pocket) * sizeof(float));
    char err[256];
    ctts_status st = s->frame ? pocket_stream_new(m->pocket, &s->stream, err, sizeof err)
                              : CTTS_E_OOM;
    if (st != CTTS_OK) {
        free(s->frame);
        free(s);
        return st;
    }
    atomic_init(&s->cancel, 0);
    *out = s;
    return CTTS_OK;
}

void ctts_session_free(ctts_session *s) {
    if (!s) return;
    pocket_stream_free(s->stream);
    free(s->text);
    free(s->frame);
    free(s);
}

ctts_status ctts_stream_begin(ctts_session *s, const ctts_voice *v, const ctts_gen_params *p) {
    if (!s) return CTTS_E_INVALID_ARG;
    s->error[0] = 0;
    s->params = p ? *p : ctts_gen_default_params(s->model);
    s->voice = v;
    s->text_len = 0;
    s->frame_len = s->frame_pos = 0;
    atomic_store(&s->cancel, 0);
    memset(&s->timings, 0, sizeof s->timings);
    s->timings.load_ms = s->model->load_ms;
    s->first_audio_seen = 0;
    s->t_begin = now_ms();
    s->phase = ST_TEXT;
    return CTTS_OK;
}

ctts_status ctts_stream_feed_text(ctts_session *s, const char *utf8) {
    if (!s || !utf8) return CTTS_E_INVALID_ARG;
    if (s->phase != ST_TEXT)
        return session_err(s, CTTS_E_STATE, "feed_text needs ctts_stream_begin first");
    size_t n = strlen(utf8);
    if (s->text_len + n > TEXT_MAX)
        return session_fail(s, session_err(s, CTTS_E_INVALID_ARG, "text longer than %u bytes",
                                           TEXT_MAX));
    if (s->text_len + n + 1 > s->text_cap) {
        size_t cap = (s->text_len + n + 1) * 2;
        char *t = realloc(s->text, cap);
        if (!t) return session_fail(s, session_err(s, CTTS_E_OOM, "out of memory"));
        s->text = t;
        s->text_cap = cap;
    }
    memcpy(s->text + s->text_len, utf8, n);
    s->text_len += n;
    s->text[s->text_len] = 0;
    return CTTS_OK;
}

ctts_status ctts_stream_end_text(ctts_session *s) {
    if (!s) return CTTS_E_INVALID_ARG;
    if (s->phase != ST_TEXT)
        return session_err(s, CTTS_E_STATE, "end_text needs ctts_stream_begin first");
    const char *text = s->text ? s->text : "";
    ctts_status st = pocket_stream_start(s->stream, s->voice ? s->voice->pocket : NULL,
                                         &s->params, text, s->error, sizeof s->error);
    if (st != CTTS_OK) return session_fail(s, st);
    s->phase = ST_RUNNING;
    return CTTS_OK;
}

static void finish_timings(ctts_session *s) {
    ctts_timings *t = &s->timings;
    pocket_stream_times(s->stream, &t->prepare_ms, &t->prefill_ms, &t->flowlm_ms, &t->mimi_ms);
    t->total_ms = now_ms() - s->t_begin;
    double audio_ms = t->samples * 1000.0 / s->model->info.sample_rate;
    t->rtf = audio_ms > 0 ? t->total_ms / audio_ms : 0;
}

ctts_status ctts_stream_read(ctts_session *s, float *pcm, size_t cap, size_t *n_out) {
    if (!s || !n_out || (!pcm && cap)) return CTTS_E_INVALID_ARG;
    *n_out = 0;
    if (s->phase == ST_DONE) return CTTS_DONE;
    if (s->phase == ST_FAILED) return CTTS_E_STATE;
    if (s->phase != ST_RUNNING)
        return session_err(s, CTTS_E_STATE, "read needs begin and end_text first");
    if (atomic_load(&s->cancel)) {
        s->phase = ST_FAILED;
        return session_err(s, CTTS_E_CANCELLED, "cancelled");
    }
    if (cap == 0) return session_err(s, CTTS_E_INVALID_ARG, "read buffer has no room");
    if (s->frame_pos == s->frame_len) {
        size_t n = 0;
        ctts_status st = pocket_stream_step(s->stream, s->frame, &n, s->error, sizeof s->error);
        if (st == CTTS_DONE) {
            s->phase = ST_DONE;
            finish_timings(s);
            return CTTS_DONE;
        }
        if (st != CTTS_OK) return session_fail(s, st);
        s->frame_len = n;
        s->frame_pos = 0;
        s->timings.frames++;
        if (!s->first_audio_seen) {
            s->first_audio_seen = 1;
            s->timings.first_audio_ms = now_ms() - s->t_begin;
        }
    }
    size_t k = s->frame_len - s->frame_pos;
    if (k > cap) k = cap;
    memcpy(pcm, s->frame + s->frame_pos, k * sizeof *pcm);
    s->frame_pos += k;
    s->timings.samples += (int64_t)k;
    *n_out = k;
    return CTTS_OK;
}

void ctts_stream_cancel(ctts_session *s) {
    if (s) atomic_store(&s->cancel, 1);
}

ctts_status ctts_synthesize(ctts_session *s, const char *text, const ctts_voice *v,
                            const ctts_gen_params *p, float **pcm, size_t *n) {
    if (!s || !text || !pcm || !n) return CTTS_E_INVALID_ARG;
    *pcm = NULL;
    *n = 0;
    ctts_status st = ctts_stream_begin(s, v, p);
    if (st == CTTS_OK) st = ctts_stream_feed_text(s, text);
    if (st == CTTS_OK) st = ctts_stream_end_text(s);
    size_t len = 0, cap = 0;
    float *buf = NULL;
    while (st == CTTS_OK) {
        if (cap - len < 4096) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            float *nb = realloc(buf, ncap * sizeof *nb);
            if (!nb) {
                st = session_err(s, CTTS_E_OOM, "out of memory");
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = 0;
        st = ctts_stream_read(s, buf + len, cap - len, &got);
        len += got;
    }
    if (st != CTTS_DONE) {
        free(buf);
        return st;
    }
    *pcm = buf;
    *n = len;
    return CTTS_OK;
}

void ctts_pcm_free(float *pcm) { free(pcm); }

const char *ctts_session_error(const ctts_session *s) { return s ? s->error : "no session"; }

const ctts_timings *ctts_session_timings(const ctts_session *s) { return s ? &s->timings : NULL; }

/* ---- audio ---- */

ctts_status ctts_wav_write(const char *path, const float *pcm, size_t n, int sample_rate,
                           ctts_wav_format fmt, char *err, size_t err_len) {
    return wav_write(path, pcm, n, sample_rate, (int)fmt, err, err_len);
}
