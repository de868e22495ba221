/*
 * Public API (include/ctts.h): model / voice / session lifecycle, the stream
 * state machine, one-shot synthesis, timings and status strings.
 *
 * The stream is the primitive: begin -> feed_text* -> end_text, with reads
 * allowed any time after begin. The family stream chunks the text as it
 * arrives (only chunks that later text cannot change) and computes one frame
 * (80 ms of audio) per read, pipelined with the audio decoder on a worker
 * thread; a read hands out the frame, keeping what does not fit the caller's
 * buffer for the next read. ctts_synthesize is a loop over the same calls,
 * so both give identical samples. Cancel is an atomic flag checked before
 * every frame.
 */
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctts.h"
#include "audio/audio_read.h"
#include "audio/wav.h"
#include "base/error.h"
#include "core/hub.h"
#include "io/hf.h"
#include "core/voice_audio.h"
#include "models/arch.h"
#include "models/pocket/pocket.h"

#define CTTS_VERSION "0.1.0"

struct ctts_model {
    pocket_model *pocket;
    const ctts_family *fam; /* a family behind models/arch.h (then pocket is NULL) */
    void *fam_model;
    ctts_model_info info;
    char config_path[1024];
    double load_ms;
    ctts_hub_params hub; /* owned copy, for voices fetched later */
    char language[64];
};

struct ctts_voice {
    pocket_voice *pocket;
    const ctts_family *fam;
    void *fam_voice;
};

/* Stream phases: IDLE -begin-> TEXT (feed, read) -end_text-> ENDED (read)
 * -> DONE, or FAILED on an error or cancel. begin restarts from any phase. */
typedef enum { ST_IDLE, ST_TEXT, ST_ENDED, ST_DONE, ST_FAILED } stream_phase;

struct ctts_session {
    ctts_model *model;
    pocket_stream *stream;
    void *fam_stream; /* the model's family stream (models/arch.h) */
    stream_phase phase;
    float *frame; /* last computed frame */
    size_t frame_len, frame_pos;
    atomic_int cancel;
    double t_begin, t_first; /* stream begin, first samples available */
    double made_samples;     /* samples produced by the stream so far */
    int64_t first_frames;    /* frames of the first step */
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
    p.hub = ctts_hub_default_params();
    return p;
}

/* A model of a family behind models/arch.h. */
static ctts_status family_model_load(const ctts_family *fam, const char *path,
                                     const ctts_model_params *p, ctts_model **out, char *err,
                                     size_t err_len) {
    double t0 = now_ms();
    ctts_model *m = calloc(1, sizeof *m);
    if (!m) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    ctts_status st = fam->model_load(path, p, &m->fam_model, &m->info, err, err_len);
    if (st != CTTS_OK) {
        free(m);
        return st;
    }
    m->fam = fam;
    if (hf_params_dup(&p->hub, &m->hub) != CTTS_OK) {
        ctts_model_free(m);
        return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    m->load_ms = now_ms() - t0;
    *out = m;
    return CTTS_OK;
}

ctts_status ctts_model_load(const char *path, const ctts_model_params *params, ctts_model **out,
                            char *err, size_t err_len) {
    if (!out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!path || !*path) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "no model given");
    ctts_model_params p = params ? *params : ctts_model_default_params();
    const ctts_family *fam = ctts_family_detect(path);
    if (fam) return family_model_load(fam, path, &p, out, err, err_len);
    if ((unsigned)p.weight_type > CTTS_WEIGHTS_Q4_0)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "unknown weight type %d",
                        (int)p.weight_type);
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
    snprintf(m->language, sizeof m->language, "%s", c->config_path[0] ? "" : c->name);
    m->info.language = m->language;
    m->info.voice_cloning = !c->weights_without_voice_cloning;
    m->info.chunks_text = 1;
    if (hf_params_dup(&p.hub, &m->hub) != CTTS_OK) {
        ctts_model_free(m);
        return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    m->load_ms = now_ms() - t0;
    *out = m;
    return CTTS_OK;
}

void ctts_model_free(ctts_model *m) {
    if (!m) return;
    if (m->fam) m->fam->model_free(m->fam_model);
    pocket_model_free(m->pocket);
    hf_params_free(&m->hub);
    free(m);
}

const ctts_model_info *ctts_model_get_info(const ctts_model *m) { return m ? &m->info : NULL; }

size_t ctts_model_describe(const ctts_model *m, char *buf, size_t len) {
    if (!m) return 0;
    if (m->fam) return m->fam->model_describe(m->fam_model, buf, len);
    return pocket_model_describe(m->pocket, buf, len);
}

const char *ctts_model_speaker(const ctts_model *m, int i) {
    if (!m || !m->fam || !m->fam->speaker_name) return NULL;
    return m->fam->speaker_name(m->fam_model, i);
}

ctts_status ctts_tokenize(const ctts_model *m, const char *text, int prepared, int32_t *ids,
                          size_t cap, size_t *n_ids, char *err, size_t err_len) {
    if (!m || !text || !n_ids)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "model, text and n_ids are required");
    int32_t *all = NULL;
    size_t n = 0;
    ctts_status st = m->fam ? m->fam->tokenize(m->fam_model, text, prepared, &all, &n, err, err_len)
                            : pocket_tokenize(m->pocket, text, prepared, &all, &n, err, err_len);
    if (st != CTTS_OK) return st;
    if (ids) memcpy(ids, all, (n < cap ? n : cap) * sizeof *ids);
    *n_ids = n;
    free(all);
    return CTTS_OK;
}

/* ---- voices ---- */

ctts_voice_params ctts_voice_default_params(void) {
    ctts_voice_params p;
    memset(&p, 0, sizeof p);
    p.cache_dir = NULL;
    p.max_seconds = 30.0f;
    return p;
}

ctts_status ctts_voice_load(ctts_model *m, const char *name_or_path, ctts_voice **out, char *err,
                            size_t err_len) {
    return ctts_voice_load_ex(m, name_or_path, NULL, out, err, err_len);
}

ctts_status ctts_voice_load_ex(ctts_model *m, const char *name_or_path,
                               const ctts_voice_params *params, ctts_voice **out, char *err,
                               size_t err_len) {
    if (!m || !out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "model and out are required");
    *out = NULL;
    if (!name_or_path || strcmp(name_or_path, "none") == 0) return CTTS_OK;
    if (m->fam) {
        ctts_voice *fv = calloc(1, sizeof *fv);
        if (!fv) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        ctts_status fst = m->fam->voice_load(m->fam_model, name_or_path, &fv->fam_voice, err,
                                             err_len);
        if (fst != CTTS_OK) {
            free(fv);
            return fst;
        }
        fv->fam = m->fam;
        *out = fv;
        return CTTS_OK;
    }
    ctts_voice_params vp = params ? *params : ctts_voice_default_params();
    if (!(vp.max_seconds >= 0 && vp.max_seconds <= AUDIO_MAX_SECONDS))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "voice max_seconds must be in [0, %g], got %g", AUDIO_MAX_SECONDS,
                        (double)vp.max_seconds);
    char resolved[4096]; /* hf:// and catalog names become files of the hub cache */
    ctts_status rs = core_voice_resolve(&m->hub, m->language, name_or_path, resolved,
                                        sizeof resolved, err, err_len);
    if (rs != CTTS_OK) return rs;
    name_or_path = resolved;
    FILE *f = fopen(name_or_path, "rb");
    if (!f)
        return ctts_err(err, err_len, CTTS_E_NOT_FOUND,
                        "unknown voice '%s' (no such voice-state or audio file)", name_or_path);
    fclose(f);
    ctts_voice *v = calloc(1, sizeof *v);
    if (!v) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    ctts_status st =
        voice_path_is_state(name_or_path)
            ? pocket_voice_load(m->pocket, name_or_path, &v->pocket, err, err_len)
            : voice_from_audio_file(m->pocket, name_or_path, vp.max_seconds, vp.cache_dir,
                                    &v->pocket, NULL, err, err_len);
    if (st != CTTS_OK) {
        free(v);
        return st;
    }
    *out = v;
    return CTTS_OK;
}

ctts_status ctts_voice_save(const ctts_voice *v, const char *path, char *err, size_t err_len) {
    if (!v || !path) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice and path required");
    if (v->fam) return v->fam->voice_save(v->fam_voice, path, err, err_len);
    return pocket_voice_save(v->pocket, path, err, err_len);
}

void ctts_voice_free(ctts_voice *v) {
    if (!v) return;
    if (v->fam) v->fam->voice_free(v->fam_voice);
    pocket_voice_free(v->pocket);
    free(v);
}

ctts_status ctts_voice_from_pcm(ctts_model *m, const float *pcm, size_t n, int sample_rate,
                                ctts_voice **out, char *err, size_t err_len) {
    if (!m || !out || (n && !pcm))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "model, pcm and out are required");
    *out = NULL;
    if (m->fam)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "cloning a voice from audio is not supported for %s models yet",
                        m->fam->name);
    if (n == 0) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice pcm has no samples");
    if (sample_rate < AUDIO_MIN_RATE || sample_rate > AUDIO_MAX_RATE)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "voice pcm: sample rate %d Hz is outside %d..%d Hz", sample_rate,
                        AUDIO_MIN_RATE, AUDIO_MAX_RATE);
    if ((double)n > AUDIO_MAX_SECONDS * sample_rate)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "voice pcm: %zu samples is longer than %g s", n, AUDIO_MAX_SECONDS);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(pcm[i]))
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "voice pcm: sample %zu is not a finite number", i);
    ctts_voice *v = calloc(1, sizeof *v);
    if (!v) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    ctts_status st = pocket_voice_from_pcm(m->pocket, pcm, n, sample_rate, &v->pocket, err,
                                           err_len);
    if (st != CTTS_OK) {
        free(v);
        return st;
    }
    *out = v;
    return CTTS_OK;
}

/* ---- sessions ---- */

ctts_gen_params ctts_gen_default_params(const ctts_model *m) {
    if (m && m->fam) return m->fam->default_gen_params(m->fam_model);
    ctts_gen_params p = pocket_default_gen_params();
    p.top_p = 1.0f; /* the Qwen3-TTS fields at their neutral values */
    p.repetition_penalty = 1.0f;
    return p;
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
    int fs = m->fam ? (int)m->fam->max_step_samples(m->fam_model) : pocket_frame_size(m->pocket);
    s->frame = malloc((size_t)fs * sizeof(float));
    char err[256];
    ctts_status st = !s->frame ? CTTS_E_OOM
                     : m->fam  ? m->fam->stream_new(m->fam_model, &s->fam_stream, err, sizeof err)
                               : pocket_stream_new(m->pocket, &s->stream, err, sizeof err);
    if (st != CTTS_OK) {
        free(s->frame);
        free(s);
        return st;
    }
    atomic_init(&s->cancel, 0);
    if (s->stream) pocket_stream_set_cancel(s->stream, &s->cancel);
    *out = s;
    return CTTS_OK;
}

void ctts_session_free(ctts_session *s) {
    if (!s) return;
    if (s->model->fam) s->model->fam->stream_free(s->fam_stream);
    pocket_stream_free(s->stream);
    free(s->frame);
    free(s);
}

/* Stage times from the family stream into the public struct. */
static void update_timings(ctts_session *s) {
    ctts_timings *t = &s->timings;
    if (s->model->fam) {
        s->model->fam->stream_times(s->fam_stream, t);
        t->total_ms = now_ms() - s->t_begin;
        double fam_audio_ms = t->samples * 1000.0 / s->model->info.sample_rate;
        t->rtf = fam_audio_ms > 0 ? t->total_ms / fam_audio_ms : 0;
        return;
    }
    pocket_stream_timing pt;
    pocket_stream_get_timing(s->stream, &pt);
    t->prepare_ms = pt.prepare_ms;
    t->prefill_ms = pt.prefill_ms;
    t->flowlm_ms = pt.flowlm_ms;
    t->mimi_ms = pt.mimi_ms;
    t->first_text_ms = pt.first_text_ms;
    t->first_prefill_ms = pt.first_prefill_ms;
    t->first_mimi_ms = pt.first_mimi_ms;
    t->total_ms = now_ms() - s->t_begin;
    double audio_ms = t->samples * 1000.0 / s->model->info.sample_rate;
    t->rtf = audio_ms > 0 ? t->total_ms / audio_ms : 0;
}

ctts_status ctts_stream_begin(ctts_session *s, const ctts_voice *v, const ctts_gen_params *p) {
    if (!s) return CTTS_E_INVALID_ARG;
    s->error[0] = 0;
    ctts_gen_params gp = p ? *p : ctts_gen_default_params(s->model);
    s->frame_len = s->frame_pos = 0;
    atomic_store(&s->cancel, 0);
    memset(&s->timings, 0, sizeof s->timings);
    s->timings.load_ms = s->model->load_ms;
    s->t_first = 0;
    s->made_samples = 0;
    s->first_frames = 0;
    s->t_begin = now_ms();
    ctts_status st =
        s->model->fam
            ? s->model->fam->stream_begin(s->fam_stream, v ? v->fam_voice : NULL, &gp, s->error,
                                          sizeof s->error)
            : pocket_stream_begin(s->stream, v ? v->pocket : NULL, &gp, s->error, sizeof s->error);
    if (st != CTTS_OK) return session_fail(s, st);
    s->phase = ST_TEXT;
    return CTTS_OK;
}

ctts_status ctts_stream_feed_text(ctts_session *s, const char *utf8) {
    if (!s || !utf8) return CTTS_E_INVALID_ARG;
    if (s->phase != ST_TEXT)
        return session_err(s, CTTS_E_STATE, s->phase == ST_IDLE
                                                ? "feed_text needs ctts_stream_begin first"
                                                : "feed_text after end_text (begin a new stream)");
    ctts_status st =
        s->model->fam
            ? s->model->fam->stream_feed(s->fam_stream, utf8, strlen(utf8), s->error, sizeof s->error)
            : pocket_stream_feed(s->stream, utf8, strlen(utf8), s->error, sizeof s->error);
    return st == CTTS_OK ? CTTS_OK : session_fail(s, st);
}

ctts_status ctts_stream_end_text(ctts_session *s) {
    if (!s) return CTTS_E_INVALID_ARG;
    if (s->phase != ST_TEXT)
        return session_err(s, CTTS_E_STATE, s->phase == ST_IDLE
                                                ? "end_text needs ctts_stream_begin first"
                                                : "end_text given twice (begin a new stream)");
    ctts_status st = s->model->fam
                         ? s->model->fam->stream_end(s->fam_stream, s->error, sizeof s->error)
                         : pocket_stream_end(s->stream, s->error, sizeof s->error);
    if (st != CTTS_OK) return session_fail(s, st);
    s->phase = ST_ENDED;
    return CTTS_OK;
}

/* n new samples (whole frames) are available now: first audio and playback
 * lead (how far the audio produced so far runs ahead of real time). */
static void frames_arrived(ctts_session *s, size_t n) {
    ctts_timings *t = &s->timings;
    const double now = now_ms(), sr = s->model->info.sample_rate;
    if (t->frames == 0) {
        s->t_first = now;
        t->first_audio_ms = now - s->t_begin;
    } else {
        const double lead = s->t_first + s->made_samples * 1000.0 / sr - now;
        if (t->frames == s->first_frames || lead < t->min_lead_ms) t->min_lead_ms = lead;
    }
    const double per_frame = s->model->info.frame_rate > 0 ? sr / s->model->info.frame_rate : 0;
    const int64_t k = per_frame > 0 ? (int64_t)(n / per_frame + 0.5) : 1;
    t->frames += k > 0 ? k : 1;
    s->made_samples += (double)n;
    if (t->frames == (k > 0 ? k : 1)) {
        s->first_frames = t->frames;
        update_timings(s);
    }
}

/* The checks before a read: CTTS_OK to go on, else the read's answer. */
static ctts_status read_check(ctts_session *s, size_t cap) {
    if (s->phase == ST_DONE) return CTTS_DONE;
    if (s->phase == ST_FAILED) return CTTS_E_STATE;
    if (s->phase == ST_IDLE) return session_err(s, CTTS_E_STATE, "read needs ctts_stream_begin first");
    if (atomic_load(&s->cancel)) {
        update_timings(s);
        return session_fail(s, session_err(s, CTTS_E_CANCELLED, "cancelled"));
    }
    if (cap == 0) return session_err(s, CTTS_E_INVALID_ARG, "read buffer has no room");
    return CTTS_OK;
}

/* Takes a step's result (st, n samples in s->frame) and returns the read's
 * status; *copy = 1 when there are samples to copy (none before end_text
 * while the stream waits for more text). */
static ctts_status read_stepped(ctts_session *s, ctts_status st, size_t n, int *copy) {
    *copy = 0;
    if (st == CTTS_DONE) {
        s->phase = ST_DONE;
        update_timings(s);
        return CTTS_DONE;
    }
    if (st != CTTS_OK) {
        update_timings(s);
        return session_fail(s, st);
    }
    if (n == 0) return CTTS_OK;
    s->frame_len = n;
    s->frame_pos = 0;
    frames_arrived(s, n);
    *copy = 1;
    return CTTS_OK;
}

static size_t read_copy(ctts_session *s, float *pcm, size_t cap) {
    size_t k = s->frame_len - s->frame_pos;
    if (k > cap) k = cap;
    memcpy(pcm, s->frame + s->frame_pos, k * sizeof *pcm);
    s->frame_pos += k;
    s->timings.samples += (int64_t)k;
    return k;
}

ctts_status ctts_stream_read(ctts_session *s, float *pcm, size_t cap, size_t *n_out) {
    if (!s || !n_out || (!pcm && cap)) return CTTS_E_INVALID_ARG;
    *n_out = 0;
    ctts_status st = read_check(s, cap);
    if (st != CTTS_OK) return st;
    int copy = 1;
    if (s->frame_pos == s->frame_len) {
        size_t n = 0;
        st = s->model->fam
                 ? s->model->fam->stream_step(s->fam_stream, s->frame, &n, s->error, sizeof s->error)
                 : pocket_stream_step(s->stream, s->frame, &n, s->error, sizeof s->error);
        st = read_stepped(s, st, n, &copy);
    }
    if (copy) *n_out = read_copy(s, pcm, cap);
    return st;
}

#define READ_MANY_MAX 64

/* ctts_stream_read_many over at most READ_MANY_MAX sessions. */
static void read_some(ctts_session *const *s, int n, float *const *pcm, size_t cap, size_t *n_out,
                      ctts_status *res) {
    void *fs[READ_MANY_MAX];
    float *frame[READ_MANY_MAX];
    char *err[READ_MANY_MAX];
    size_t got[READ_MANY_MAX];
    ctts_status st[READ_MANY_MAX];
    int idx[READ_MANY_MAX], copy[READ_MANY_MAX], k = 0;
    const ctts_model *m = NULL;
    for (int i = 0; i < n; i++) {
        n_out[i] = 0;
        copy[i] = 0;
        if (!s[i] || !pcm[i]) {
            res[i] = CTTS_E_INVALID_ARG;
            continue;
        }
        res[i] = read_check(s[i], cap);
        if (res[i] != CTTS_OK) continue;
        if (s[i]->frame_pos < s[i]->frame_len) { /* samples left from the last step */
            copy[i] = 1;
            continue;
        }
        if (!m) m = s[i]->model; /* steps of one model's family go together */
        if (s[i]->model == m && m->fam && m->fam->stream_step_many)
            fs[k] = s[i]->fam_stream, frame[k] = s[i]->frame, err[k] = s[i]->error, idx[k++] = i;
        else
            res[i] = ctts_stream_read(s[i], pcm[i], cap, &n_out[i]);
    }
    if (k) m->fam->stream_step_many(fs, k, frame, got, st, err, sizeof s[0]->error);
    for (int j = 0; j < k; j++) res[idx[j]] = read_stepped(s[idx[j]], st[j], got[j], &copy[idx[j]]);
    for (int i = 0; i < n; i++)
        if (copy[i]) n_out[i] = read_copy(s[i], pcm[i], cap);
}

void ctts_stream_read_many(ctts_session *const *s, int n, float *const *pcm, size_t cap,
                           size_t *n_out, ctts_status *res) {
    if (!s || !pcm || !n_out || !res) return;
    for (int i = 0; i < n; i += READ_MANY_MAX)
        read_some(s + i, n - i < READ_MANY_MAX ? n - i : READ_MANY_MAX, pcm + i, cap, n_out + i,
                  res + i);
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
                st = session_fail(s, session_err(s, CTTS_E_OOM, "out of memory"));
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

ctts_status ctts_model_export_gguf(const ctts_model *m, const char *out_dir, char *err,
                                   size_t err_len) {
    if (!m || !out_dir) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "export: bad arguments");
    if (m->pocket) return pocket_model_export_gguf(m->pocket, out_dir, err, err_len);
    if (m->fam && m->fam->export_gguf)
        return m->fam->export_gguf(m->fam_model, out_dir, err, err_len);
    return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "export: not supported for this model");
}

ctts_status ctts_model_profile(ctts_model *m, int enable, ctts_profile *out) {
    if (!m) return CTTS_E_INVALID_ARG;
    ctts_backend *be = m->pocket                            ? pocket_model_backend(m->pocket)
                       : m->fam && m->fam->model_backend ? m->fam->model_backend(m->fam_model)
                                                         : NULL;
    if (!be || !be->profile) {
        if (out) memset(out, 0, sizeof *out);
        return CTTS_E_UNSUPPORTED;
    }
    be->profile(be, enable, out);
    return CTTS_OK;
}

const char *ctts_stage_name(ctts_stage st) {
    static const char *names[CTTS_STAGE_COUNT] = {"other", "prefill", "flowlm", "flow_head",
                                                  "mimi_transformer", "seanet", "encoder",
                                                  "talker", "code_predictor", "speech_decoder"};
    return (unsigned)st < CTTS_STAGE_COUNT ? names[st] : "?";
}

/* ---- audio ---- */

ctts_status ctts_wav_write(const char *path, const float *pcm, size_t n, int sample_rate,
                           ctts_wav_format fmt, char *err, size_t err_len) {
    return wav_write(path, pcm, n, sample_rate, (int)fmt, err, err_len);
}

/* The public writer is the internal one under another name. */
ctts_status ctts_wav_writer_open(const char *path, int sample_rate, ctts_wav_format fmt,
                                 ctts_wav_writer **out, char *err, size_t err_len) {
    if (!out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!path) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "no WAV path given");
    wav_writer *w = NULL;
    ctts_status st = wav_writer_open(path, sample_rate, (int)fmt, &w, err, err_len);
    *out = (ctts_wav_writer *)w;
    return st;
}

ctts_status ctts_wav_writer_append(ctts_wav_writer *w, const float *pcm, size_t n, char *err,
                                   size_t err_len) {
    if (!w || (n && !pcm)) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bad WAV append");
    return wav_writer_append((wav_writer *)w, pcm, n, err, err_len);
}

ctts_status ctts_wav_writer_close(ctts_wav_writer *w, char *err, size_t err_len) {
    if (!w) return CTTS_OK;
    return wav_writer_close((wav_writer *)w, err, err_len);
}

size_t ctts_wav_header(unsigned char *buf, size_t n, int sample_rate, ctts_wav_format fmt,
                       int unknown_size) {
    if (!buf || (fmt != CTTS_WAV_S16 && fmt != CTTS_WAV_F32) || sample_rate <= 0 ||
        sample_rate > WAV_MAX_SAMPLE_RATE)
        return 0;
    return wav_header(buf, (int)fmt, sample_rate, n, unknown_size);
}

void ctts_pcm_encode(unsigned char *out, const float *pcm, size_t n, ctts_wav_format fmt) {
    if (out && pcm) wav_encode(out, pcm, n, fmt == CTTS_WAV_F32 ? WAV_FMT_F32 : WAV_FMT_S16);
}
