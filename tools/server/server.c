/*
 * ctts serve: an HTTP/1.1 speech server over one loaded model.
 *
 *   ctts serve --model M [--host 127.0.0.1] [--port 8080] [--voice V]
 *              [--max-sessions 4] [--max-text 20000] [--cors O] [--timeout 30]
 *              [generation options: the requests' defaults]
 *
 * Endpoints (docs/SERVER.md has the request and response formats):
 *   GET  /health               {"status":"ok"}
 *   GET  /v1/models            the loaded model
 *   GET  /v1/voices            the names "voice" takes
 *   POST /v1/voices?name=N     an audio clip to clone as voice N
 *   POST /v1/audio/speech      JSON {"input": "...", ...} -> WAV or raw PCM,
 *                              whole (Content-Length) or streamed (chunked)
 *   GET  /v1/audio/speech/ws   WebSocket: text in pieces, PCM out as it is made
 *
 * Threads: the main thread accepts; each connection gets a thread that only
 * parses requests and writes responses. One compute worker owns the model:
 * it admits up to --max-sessions requests and each round reads one step of
 * every one that can take it (ctts_stream_read_many: Qwen3-TTS sessions make
 * their frames together), so concurrent streams share the model fairly and
 * none waits for another to finish. Each request's samples wait in its
 * queue; a client that reads slowly has its request skipped while the queue
 * is full (backpressure), and one that goes away cancels its request. Voices
 * named or uploaded by requests are loaded by the worker too (a clone
 * computes on the model). SIGINT / SIGTERM: stop accepting, cancel what
 * runs, exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "io/http.h"
#include "io/json.h"

#define MAX_HEAD 16384          /* request line + headers */
#define MAX_BODY (1 << 20)      /* JSON request body */
#define MAX_UPLOAD (64 << 20)   /* an audio file to clone (POST /v1/voices) */
#define MAX_CONN 64             /* connections served at once; more get 503 */
#define MAX_PENDING 64          /* requests waiting for a session; more get 503 */
#define MAX_VOICES 32           /* voices loaded by name and kept */
#define READ_CAP 8192           /* samples per read (a Qwen3-TTS step makes 4 x 1920) */
#define QUEUE_MAX (24000 * 10)  /* samples a request may have waiting (10 s of audio) */
#define CHUNK_MAX 16384         /* samples written per chunk */
#define WS_MAX_MSG 65536        /* a WebSocket message from a client */

enum { REQ_PENDING, REQ_ACTIVE, REQ_DONE };

typedef struct request {
    /* set by the connection thread before submit, then read-only */
    const char *clone_path;   /* a voice upload: clone this audio file as `voice`, no speech */
    int live;                 /* WebSocket: text keeps coming; the worker feeds it as it does */
    int wake_fd;              /* live: an eventfd the connection polls beside its socket */
    char *text;
    ctts_gen_params gp;
    char voice[64];           /* voice name to load ("" = the server's default voice) */
    /* guarded by server.mu */
    float *q;                 /* samples waiting for the connection */
    size_t q_n, q_cap;
    int state, cancelled;
    ctts_status status;       /* when DONE: CTTS_DONE or the error */
    char err[512];
    ctts_session *sess;       /* while ACTIVE */
    char *in_text;            /* live: text received and not yet fed */
    size_t in_n, in_cap, text_total;
    int text_closed;          /* live: the client sent "end" */
    int text_ended, needs_text; /* live, worker only: end_text called; waiting for text */
    int spoke;                /* worker only: the session has given samples */
    pthread_cond_t cv;        /* samples or DONE */
    struct request *next;     /* pending FIFO */
} request;

typedef struct {
    char name[64];
    ctts_voice *v;
} voice_slot;

typedef struct {
    ctts_model *m;
    const ctts_model_info *info;
    const char *model_id;
    ctts_gen_params defaults; /* the model's, with the command line's options applied */
    ctts_voice *default_voice;
    const char *voice_name;   /* --voice, for /v1/voices */
    int max_sessions, max_text;
    int timeout_s;            /* --timeout: a stalled connection; a head must come whole within it */
    int log;                  /* access log on stderr (off with --quiet) */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;   /* worker: new request, queue drained, cancel, stop */
    pthread_cond_t conn_cv;   /* main: a connection thread ended */
    request *pend_head, *pend_tail;
    int n_pending;
    request **active;
    int n_active;
    ctts_session **idle;      /* [max_sessions] sessions kept for the next requests (their
                                 buffers are made once: a new session costs 30-70 ms) */
    int n_idle;
    voice_slot voices[MAX_VOICES];
    int n_voices;
    int conn_fds[MAX_CONN];   /* open connections (-1 = free), shut down on stop */
    int n_conn;
    int stopping;
} server;

typedef struct {
    server *s;
    int fd, slot;
    char peer[64]; /* client address, for the access log */
    char buf[MAX_HEAD + MAX_BODY + 1];
    size_t len;                     /* bytes in buf */
    float pcm[CHUNK_MAX];           /* samples taken from a request's queue */
    unsigned char bytes[CHUNK_MAX * 4];
    unsigned char msg[WS_MAX_MSG + 1]; /* a WebSocket message */
} conn;

static volatile sig_atomic_t g_stop;
/* "Access-Control-Allow-Origin: <origin>\r\n" with --cors, else "" (set once at start). */
static char g_cors[320];

/* What the connection thread sent for the request being answered (access log). */
static _Thread_local struct {
    int status;
    size_t bytes;
    double first_audio_ms; /* speech: submit -> first samples, -1 if none */
    size_t samples;
} t_resp;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* ---- responses ---- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        c += w, n -= (size_t)w;
        t_resp.bytes += (size_t)w;
    }
    return 0;
}

/* JSON string body of s (quotes, backslashes and control bytes escaped). */
static void json_escape(char *out, size_t cap, const char *s) {
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') out[o++] = '\\', out[o++] = (char)c;
        else if (c < 0x20) o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        else out[o++] = (char)c;
    }
    out[o] = 0;
}

static int send_response(int fd, int status, const char *ctype, const char *body, size_t n,
                         int keep_alive, const char *extra) {
    char head[1024];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s%s\r\n",
                     status, http_reason(status), ctype, n, keep_alive ? "" : "Connection: close\r\n",
                     g_cors, extra ? extra : "");
    t_resp.status = status;
    if (send_all(fd, head, (size_t)h)) return -1;
    return n ? send_all(fd, body, n) : 0;
}

static int send_error(int fd, int status, const char *msg, int keep_alive, const char *extra) {
    char esc[1024], body[1200];
    json_escape(esc, sizeof esc, msg);
    int n = snprintf(body, sizeof body, "{\"error\":{\"code\":%d,\"message\":\"%s\"}}\n", status, esc);
    return send_response(fd, status, "application/json", body, (size_t)n, keep_alive, extra);
}

static int http_status_of(ctts_status st) {
    switch (st) {
    case CTTS_E_INVALID_ARG:
    case CTTS_E_FORMAT:
    case CTTS_E_NOT_FOUND: return 400;
    case CTTS_E_STATE: return 409;
    case CTTS_E_UNSUPPORTED: return 422;
    default: return 500;
    }
}

/* ---- the compute worker ---- */

/* Wakes r's connection thread: its condition variable, and its eventfd when live. */
static void req_wake(request *r) {
    pthread_cond_broadcast(&r->cv);
    if (r->live) {
        const uint64_t one = 1;
        if (write(r->wake_fd, &one, sizeof one) < 0) { /* a full counter is awake anyway */
        }
    }
}

static void req_finish(server *s, request *r, ctts_status st, const char *msg) {
    r->state = REQ_DONE;
    r->status = st;
    snprintf(r->err, sizeof r->err, "%s", msg ? msg : "");
    if (r->sess) {
        if (s->n_idle < s->max_sessions) s->idle[s->n_idle++] = r->sess;
        else ctts_session_free(r->sess);
        r->sess = NULL;
    }
    req_wake(r);
}

static ctts_status add_voice(server *s, const char *name, const char *path, const ctts_voice **v,
                             char *err, size_t err_len);

/* The voice a request names: an uploaded or catalog voice (loaded once, then
 * kept), a speaker of the model (*speaker set), or "" for the default. Runs
 * on the worker without the lock: the worker alone touches the voice table. */
static ctts_status resolve_voice(server *s, const char *name, const ctts_voice **v,
                                 const char **speaker, char *err, size_t err_len) {
    if (!name[0]) {
        *v = s->default_voice;
        return CTTS_OK;
    }
    for (int i = 0; i < s->n_voices; i++)
        if (!strcmp(s->voices[i].name, name)) {
            *v = s->voices[i].v;
            return CTTS_OK;
        }
    if (ctts_model_speaker(s->m, 0)) { /* a model with speakers: the name is one */
        *v = s->default_voice;
        *speaker = name;
        return CTTS_OK;
    }
    return add_voice(s, name, name, v, err, err_len);
}

/* Loads `path` (a catalog name, or an uploaded audio file to clone) as voice
 * `name` of the table. Worker only. */
static ctts_status add_voice(server *s, const char *name, const char *path, const ctts_voice **v,
                             char *err, size_t err_len) {
    if (s->n_voices == MAX_VOICES) {
        snprintf(err, err_len, "voice '%s': the server holds %d voices already", name, MAX_VOICES);
        return CTTS_E_INVALID_ARG;
    }
    ctts_voice *nv = NULL;
    ctts_voice_params vp = ctts_voice_default_params(); /* audio: the first 30 s, no cache */
    ctts_status st = ctts_voice_load_ex(s->m, path, &vp, &nv, err, err_len);
    if (st != CTTS_OK) return st == CTTS_E_IO ? CTTS_E_NOT_FOUND : st;
    pthread_mutex_lock(&s->mu); /* connection threads list the table (GET /v1/voices) */
    snprintf(s->voices[s->n_voices].name, sizeof s->voices[0].name, "%s", name);
    s->voices[s->n_voices++].v = nv;
    pthread_mutex_unlock(&s->mu);
    *v = nv;
    return CTTS_OK;
}

/* An upload: clones r->clone_path into voice r->voice (lock held on entry and exit). */
static void req_clone(server *s, request *r) {
    pthread_mutex_unlock(&s->mu);
    char err[512] = "";
    const ctts_voice *v;
    ctts_status st = CTTS_OK;
    for (int i = 0; i < s->n_voices && st == CTTS_OK; i++)
        if (!strcmp(s->voices[i].name, r->voice)) {
            snprintf(err, sizeof err, "voice '%s' exists already", r->voice);
            st = CTTS_E_STATE;
        }
    if (st == CTTS_OK) st = add_voice(s, r->voice, r->clone_path, &v, err, sizeof err);
    pthread_mutex_lock(&s->mu);
    req_finish(s, r, st == CTTS_OK ? CTTS_DONE : st, err);
}

/* Starts request r on a session; the lock is held on entry and exit. */
static void req_start(server *s, request *r) {
    if (r->clone_path) {
        req_clone(s, r);
        return;
    }
    ctts_session *se = s->n_idle ? s->idle[--s->n_idle] : NULL;
    pthread_mutex_unlock(&s->mu);
    char err[512] = "";
    const ctts_voice *v = NULL;
    ctts_status st = se ? CTTS_OK : ctts_session_new(s->m, &se);
    if (st != CTTS_OK) snprintf(err, sizeof err, "cannot create a session: %s", ctts_status_str(st));
    const char *speaker = NULL;
    if (st == CTTS_OK) st = resolve_voice(s, r->voice, &v, &speaker, err, sizeof err);
    if (speaker) {
        if (r->gp.speaker && strcmp(r->gp.speaker, speaker) != 0) {
            snprintf(err, sizeof err, "'voice' and 'speaker' disagree");
            st = CTTS_E_INVALID_ARG;
        }
        r->gp.speaker = speaker;
    }
    if (st == CTTS_OK) {
        st = ctts_stream_begin(se, v, &r->gp);
        if (st == CTTS_OK && r->text) st = ctts_stream_feed_text(se, r->text);
        if (st == CTTS_OK && !r->live) st = ctts_stream_end_text(se);
        if (st != CTTS_OK) snprintf(err, sizeof err, "%s", ctts_session_error(se));
    }
    pthread_mutex_lock(&s->mu);
    r->sess = se;
    if (st != CTTS_OK) {
        req_finish(s, r, st, err[0] ? err : ctts_status_str(st));
        return;
    }
    r->state = REQ_ACTIVE;
    s->active[s->n_active++] = r;
}

/* Takes the result of a read of r (n samples in buf, status st; lock held).
 * Returns 1 if r ended. */
static int req_took(server *s, request *r, const float *buf, size_t n, ctts_status st) {
    if (n) {
        r->spoke = 1;
        if (r->q_n + n > r->q_cap) {
            size_t cap = r->q_cap ? 2 * r->q_cap : 2 * READ_CAP;
            while (cap < r->q_n + n) cap *= 2;
            float *q = realloc(r->q, cap * sizeof *q);
            if (!q) {
                req_finish(s, r, CTTS_E_OOM, "out of memory");
                return 1;
            }
            r->q = q, r->q_cap = cap;
        }
        memcpy(r->q + r->q_n, buf, n * sizeof *buf);
        r->q_n += n;
        req_wake(r);
    }
    if (st == CTTS_OK && !n && r->live && !r->text_ended) r->needs_text = 1;
    if (st == CTTS_OK) return 0;
    req_finish(s, r, st, st == CTTS_DONE ? "" : ctts_session_error(r->sess));
    return 1;
}

/* Feeds a live request the text that came (lock held on entry and exit):
 * 0 to step it, -1 while it waits for text, 1 when it failed (finished). */
static int feed_live(server *s, request *r) {
    if (r->in_n || (r->text_closed && !r->text_ended)) {
        char *t = r->in_text;
        const size_t n = r->in_n;
        const int close_now = r->text_closed && !r->text_ended;
        r->in_text = NULL, r->in_n = r->in_cap = 0;
        pthread_mutex_unlock(&s->mu);
        ctts_status st = n ? ctts_stream_feed_text(r->sess, t) : CTTS_OK;
        if (st == CTTS_OK && close_now) st = ctts_stream_end_text(r->sess);
        free(t);
        pthread_mutex_lock(&s->mu);
        if (close_now) r->text_ended = 1;
        r->needs_text = 0;
        if (st != CTTS_OK) {
            req_finish(s, r, st, ctts_session_error(r->sess));
            return 1;
        }
    }
    return r->needs_text ? -1 : 0;
}

/* Removes the finished request r from the active list (lock held). */
static int req_leave(server *s, request *r) {
    for (int i = 0; i < s->n_active; i++)
        if (s->active[i] == r) s->active[i] = s->active[--s->n_active];
    return 1;
}

static void *worker_main(void *arg) {
    server *s = arg;
    /* a read buffer per session; the round's sessions are read together
     * (ctts_stream_read_many: batched decode where the family has it) */
    float *buf = malloc((size_t)s->max_sessions * READ_CAP * sizeof *buf);
    request **step = malloc((size_t)s->max_sessions * sizeof *step);
    ctts_session **sess = malloc((size_t)s->max_sessions * sizeof *sess);
    float **out = malloc((size_t)s->max_sessions * sizeof *out);
    size_t *got = malloc((size_t)s->max_sessions * sizeof *got);
    ctts_status *res = malloc((size_t)s->max_sessions * sizeof *res);
    const int ok = buf && step && sess && out && got && res;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->pend_head && s->n_active < s->max_sessions) {
            request *r = s->pend_head;
            s->pend_head = r->next;
            if (!s->pend_head) s->pend_tail = NULL;
            s->n_pending--;
            if (r->cancelled || s->stopping || !ok) req_finish(s, r, CTTS_E_CANCELLED, "cancelled");
            else req_start(s, r);
        }
        if (s->stopping && !s->n_active && !s->pend_head) break;
        /* A finished request leaves the active list before the lock is let go:
         * its connection thread frees it as soon as it sees it done. */
        int k = 0, ended = 0;
        for (int i = 0; i < s->n_active; i++) {
            request *r = s->active[i];
            if (r->cancelled || s->stopping) req_finish(s, r, CTTS_E_CANCELLED, "cancelled");
            else if (r->q_n >= QUEUE_MAX) continue; /* the client is behind: let it catch up */
            else if (!r->live || !feed_live(s, r)) step[k++] = r;
            if (r->state == REQ_DONE) { /* cancelled, or feeding its text failed */
                s->active[i--] = s->active[--s->n_active];
                ended = 1;
            }
        }
        /* One step of every request that can make one. A session that has not
         * spoken yet (prompt prefill, first frame: nothing to share) steps
         * alone and its audio goes out at once; the others step together
         * (ctts_stream_read_many). */
        int n_many = 0;
        for (int j = 0; j < k; j++) {
            request *r = step[j];
            if (r->spoke) {
                step[n_many++] = r;
                continue;
            }
            pthread_mutex_unlock(&s->mu);
            ctts_status st = ctts_stream_read(r->sess, buf, READ_CAP, &got[0]);
            pthread_mutex_lock(&s->mu);
            if (req_took(s, r, buf, got[0], st)) ended |= req_leave(s, r);
        }
        if (n_many) {
            for (int j = 0; j < n_many; j++) sess[j] = step[j]->sess, out[j] = buf + (size_t)j * READ_CAP;
            pthread_mutex_unlock(&s->mu);
            ctts_stream_read_many(sess, n_many, out, READ_CAP, got, res);
            pthread_mutex_lock(&s->mu);
            for (int j = 0; j < n_many; j++)
                if (req_took(s, step[j], out[j], got[j], res[j])) ended |= req_leave(s, step[j]);
        }
        if (!k && !ended) pthread_cond_wait(&s->work_cv, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    free(buf), free(step), free(sess), free(out), free(got), free(res);
    return NULL;
}

/* ---- /v1/audio/speech ---- */

static int is_name(const char *v) {
    size_t n = strlen(v);
    if (!n || n >= 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

typedef struct {
    int stream, f32, raw; /* raw: response_format pcm */
} speech_format;

/* Fills r and f from the JSON body; an error message in err otherwise. */
static int parse_speech(server *s, const json_value *o, request *r, speech_format *f, int live,
                        char *err, size_t err_len) {
    if (!o || o->type != JSON_OBJECT) return snprintf(err, err_len, "the body must be a JSON object"), -1;
    r->gp = s->defaults;
    const char *voice = NULL;
    if (o->length > 32) return snprintf(err, err_len, "too many fields (%zu)", o->length), -1;
    for (size_t i = 0; i < o->length; i++) {
        const char *k = o->keys[i];
        for (size_t j = 0; j < i; j++)
            if (!strcmp(o->keys[j], k)) return snprintf(err, err_len, "field '%.64s' given twice", k), -1;
        const json_value *v = &o->items[i];
        int is_str = v->type == JSON_STRING && strlen(v->string) == v->length;
        int is_num = v->type == JSON_NUMBER, is_int = is_num && v->is_integer;
#define NEED(cond, what)                                                      \
    do {                                                                      \
        if (!(cond)) return snprintf(err, err_len, "'%s' must be %s", k, what), -1; \
    } while (0)
        if (!strcmp(k, "input")) {
            NEED(is_str && v->length > 0, "a non-empty string");
            if (v->length > (size_t)s->max_text)
                return snprintf(err, err_len, "'input' is %zu bytes, over the server's limit of %d",
                                v->length, s->max_text), -1;
            r->text = strdup(v->string);
            if (!r->text) return snprintf(err, err_len, "out of memory"), -1;
        } else if (!strcmp(k, "model")) {
            NEED(v->type == JSON_STRING, "a string"); /* one model is served; any name is it */
        } else if (!strcmp(k, "voice")) {
            NEED(is_str, "a string");
            voice = v->string;
        } else if (!strcmp(k, "response_format")) {
            NEED(is_str, "a string");
            if (!strcmp(v->string, "wav")) f->raw = 0;
            else if (!strcmp(v->string, "pcm")) f->raw = 1;
            else return snprintf(err, err_len, "response_format '%.40s' is not supported (wav, pcm)", v->string), -1;
        } else if (!strcmp(k, "sample_format")) {
            NEED(is_str && (!strcmp(v->string, "s16") || !strcmp(v->string, "f32")), "\"s16\" or \"f32\"");
            f->f32 = !strcmp(v->string, "f32");
        } else if (!strcmp(k, "stream")) {
            NEED(v->type == JSON_BOOL, "true or false");
            f->stream = v->boolean;
        } else if (!strcmp(k, "speed")) {
            NEED(is_num && v->number == 1.0, "1 (other speeds are not supported)");
        } else if (!strcmp(k, "seed")) {
            NEED(is_int && v->integer >= 0, "an integer >= 0");
            r->gp.seed = (uint64_t)v->integer;
        } else if (!strcmp(k, "temperature")) {
            NEED(is_num && v->number >= 0 && v->number <= 100, "a number in [0, 100]");
            r->gp.temperature = (float)v->number;
        } else if (!strcmp(k, "top_k")) {
            NEED(is_int && v->integer >= 0 && v->integer <= 1000000, "an integer >= 0");
            r->gp.top_k = (int)v->integer;
        } else if (!strcmp(k, "top_p")) {
            NEED(is_num && v->number > 0 && v->number <= 1, "a number in (0, 1]");
            r->gp.top_p = (float)v->number;
        } else if (!strcmp(k, "repetition_penalty")) {
            NEED(is_num && v->number > 0 && v->number <= 100, "a number in (0, 100]");
            r->gp.repetition_penalty = (float)v->number;
        } else if (!strcmp(k, "max_new_tokens")) {
            NEED(is_int && v->integer >= 1 && v->integer <= 10000000, "an integer >= 1");
            r->gp.max_new_tokens = (int)v->integer;
        } else if (!strcmp(k, "max_frames")) {
            NEED(is_int && v->integer >= 1 && v->integer <= 10000000, "an integer >= 1");
            r->gp.max_frames = (int)v->integer;
        } else if (!strcmp(k, "lsd_steps")) {
            NEED(is_int && v->integer >= 1 && v->integer <= 1000, "an integer in [1, 1000]");
            r->gp.lsd_steps = (int)v->integer;
        } else if (!strcmp(k, "eos_threshold")) {
            NEED(is_num && v->number >= -1e6 && v->number <= 1e6, "a number");
            r->gp.eos_threshold = (float)v->number;
        } else if (!strcmp(k, "speaker") || !strcmp(k, "language")) {
            NEED(is_str && is_name(v->string), "a name of letters, digits, '_' or '-'");
            /* points into the JSON tree, which outlives the request's start */
            if (k[0] == 's') r->gp.speaker = v->string;
            else r->gp.language = v->string;
        } else if (!strcmp(k, "text_mode")) {
            NEED(is_str, "\"auto\", \"streaming\" or \"non-streaming\"");
            if (!strcmp(v->string, "auto")) r->gp.text_mode = CTTS_TEXT_MODE_AUTO;
            else if (!strcmp(v->string, "streaming")) r->gp.text_mode = CTTS_TEXT_MODE_STREAMING;
            else if (!strcmp(v->string, "non-streaming")) r->gp.text_mode = CTTS_TEXT_MODE_NON_STREAMING;
            else NEED(0, "\"auto\", \"streaming\" or \"non-streaming\"");
        } else {
            return snprintf(err, err_len, "unknown field '%.64s'", k), -1;
        }
#undef NEED
    }
    if (!r->text && !live) return snprintf(err, err_len, "'input' (the text to speak) is missing"), -1;
    /* A WebSocket exists for text as it is written: Qwen3-TTS then takes it
     * frame by frame unless asked for the whole-text prompt. */
    if (live && r->gp.text_mode == CTTS_TEXT_MODE_AUTO) r->gp.text_mode = CTTS_TEXT_MODE_STREAMING;
    r->text_total = r->text ? strlen(r->text) : 0;
    if (voice && strcmp(voice, "default") != 0) {
        if (!is_name(voice))
            return snprintf(err, err_len, "'voice' must be a name of letters, digits, '_' or '-'"), -1;
        snprintf(r->voice, sizeof r->voice, "%s", voice); /* resolved by the worker */
    }
    return 0;
}

/* 1 when the peer closed its side or the socket failed (checked while waiting). */
static int peer_gone(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLRDHUP)) return 1;
    char c;
    return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static int send_chunk(int fd, const void *p, size_t n) {
    char h[24];
    int k = snprintf(h, sizeof h, "%zx\r\n", n);
    return send_all(fd, h, (size_t)k) || send_all(fd, p, n) || send_all(fd, "\r\n", 2) ? -1 : 0;
}

/* Head of a streamed response, and the WAV header (sizes unknown) as its first chunk. */
static int send_stream_head(int fd, const speech_format *f, int rate, int keep_alive) {
    char head[768];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n%s%s\r\n",
                     f->raw ? "audio/pcm" : "audio/wav", keep_alive ? "" : "Connection: close\r\n",
                     g_cors);
    t_resp.status = 200;
    if (send_all(fd, head, (size_t)h)) return -1;
    if (f->raw) return 0;
    unsigned char wh[64];
    size_t hl = ctts_wav_header(wh, 0, rate, f->f32 ? CTTS_WAV_F32 : CTTS_WAV_S16, 1);
    return send_chunk(fd, wh, hl);
}

/* A whole response: WAV (exact sizes) or raw PCM with Content-Length. */
static int send_whole(int fd, const speech_format *f, int rate, const float *pcm, size_t n,
                      int keep_alive) {
    const ctts_wav_format wf = f->f32 ? CTTS_WAV_F32 : CTTS_WAV_S16;
    unsigned char wh[64];
    size_t hl = f->raw ? 0 : ctts_wav_header(wh, n, rate, wf, 0);
    size_t bytes = hl + n * (f->f32 ? 4 : 2);
    unsigned char *out = malloc(bytes + 1);
    if (!out) return send_error(fd, 500, "out of memory", 0, NULL), -1;
    memcpy(out, wh, hl);
    ctts_pcm_encode(out + hl, pcm, n, wf);
    int rc = send_response(fd, 200, f->raw ? "audio/pcm" : "audio/wav", (char *)out, bytes,
                           keep_alive, NULL);
    free(out);
    return rc;
}

/* Cancels r (lock held): the worker drops it at its next round. */
static void req_cancel(server *s, request *r) {
    r->cancelled = 1;
    if (r->sess) ctts_stream_cancel(r->sess);
    pthread_cond_signal(&s->work_cv);
}

/* Moves up to CHUNK_MAX of r's waiting samples into c->pcm (lock held). */
static size_t take_samples(server *s, request *r, conn *c) {
    const size_t n = r->q_n < CHUNK_MAX ? r->q_n : CHUNK_MAX;
    if (!n) return 0;
    memcpy(c->pcm, r->q, n * sizeof *c->pcm);
    memmove(r->q, r->q + n, (r->q_n - n) * sizeof *r->q);
    r->q_n -= n;
    pthread_cond_signal(&s->work_cv); /* room again in the queue */
    return n;
}

/* Ends r early (lock held): cancels it and waits until the worker has let go. */
static void req_abandon(server *s, request *r) {
    if (r->state != REQ_DONE) req_cancel(s, r);
    while (r->state != REQ_DONE) pthread_cond_wait(&r->cv, &s->mu);
}

/* Waits for samples or the end of r (lock held); a vanished client cancels r. */
static void wait_output(server *s, request *r, int fd) {
    while (!r->q_n && r->state != REQ_DONE) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&r->cv, &s->mu, &ts);
        if (!r->cancelled && peer_gone(fd)) req_cancel(s, r);
    }
}

/* Queues r for the worker and returns with the lock held; -1 (lock not held)
 * when too many requests wait or the server stops. */
static int submit(server *s, request *r) {
    pthread_mutex_lock(&s->mu);
    if (s->n_pending >= MAX_PENDING || s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    if (s->pend_tail) s->pend_tail->next = r;
    else s->pend_head = r;
    s->pend_tail = r;
    s->n_pending++;
    pthread_cond_signal(&s->work_cv);
    return 0;
}

/* Runs a parsed request to the end, writing the response. Returns -1 when the
 * connection must close (a write failed, or a stream broke off). */
static int serve_speech(conn *c, request *r, const speech_format *f, int keep_alive) {
    server *s = c->s;
    const int rate = s->info->sample_rate;
    if (submit(s, r)) return send_error(c->fd, 503, "the server is busy: too many requests waiting",
                                        keep_alive, "Retry-After: 1\r\n");

    float *all = NULL; /* the whole audio, when not streamed */
    size_t n_all = 0, cap_all = 0;
    int head_sent = 0, rc = 0;
    const double t0 = now_ms();
    for (;;) {
        wait_output(s, r, c->fd);
        const size_t n = take_samples(s, r, c);
        if (n && t_resp.first_audio_ms < 0) t_resp.first_audio_ms = now_ms() - t0;
        t_resp.samples += n;
        const int done = r->state == REQ_DONE && !r->q_n;
        pthread_mutex_unlock(&s->mu);

        if (n && f->stream) {
            if (!head_sent) rc = send_stream_head(c->fd, f, rate, keep_alive);
            head_sent = 1;
            ctts_pcm_encode(c->bytes, c->pcm, n, f->f32 ? CTTS_WAV_F32 : CTTS_WAV_S16);
            if (!rc) rc = send_chunk(c->fd, c->bytes, n * (f->f32 ? 4 : 2));
        } else if (n) {
            if (n_all + n > cap_all) {
                size_t cap = cap_all ? 2 * cap_all : 1 << 16;
                while (cap < n_all + n) cap *= 2;
                float *na = realloc(all, cap * sizeof *na);
                if (!na) rc = send_error(c->fd, 500, "out of memory", 0, NULL), rc = -1;
                else all = na, cap_all = cap;
            }
            if (!rc) memcpy(all + n_all, c->pcm, n * sizeof *all), n_all += n;
        }
        if (!rc && done) {
            if (r->status != CTTS_DONE) /* before any audio an error answer; after, a cut stream */
                rc = head_sent ? -1
                               : send_error(c->fd, http_status_of(r->status), r->err, keep_alive, NULL);
            else if (f->stream)
                rc = (!head_sent && send_stream_head(c->fd, f, rate, keep_alive)) ||
                             send_all(c->fd, "0\r\n\r\n", 5)
                         ? -1
                         : 0;
            else
                rc = send_whole(c->fd, f, rate, all, n_all, keep_alive);
        }
        pthread_mutex_lock(&s->mu);
        if (done) break;
        if (rc) {
            req_abandon(s, r);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(all);
    return rc;
}

/* ---- connections ---- */

/* Reads until buf holds a whole request head: 1, or 0 when the connection
 * ends (closed, timed out, or a malformed head answered). */
static int read_head(conn *c, http_request *req) {
    double t_first = c->len ? now_ms() : -1; /* a head must come whole within the timeout */
    for (;;) {
        if (c->len && t_first < 0) t_first = now_ms();
        if (t_first >= 0 && now_ms() - t_first > c->s->timeout_s * 1e3)
            return send_error(c->fd, 408, "timed out reading the request", 0, NULL), 0;
        if (c->len) {
            int status = 400;
            char err[256] = "";
            http_parse_result pr = http_parse_request(c->buf, c->len, MAX_HEAD, req, &status, err, sizeof err);
            if (pr == HTTP_PARSE_OK) return 1;
            if (pr == HTTP_PARSE_ERROR) return send_error(c->fd, status, err, 0, NULL), 0;
        }
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && c->len)
            send_error(c->fd, 408, "timed out reading the request", 0, NULL);
        if (n <= 0) return 0;
        c->len += (size_t)n;
    }
}

/* Reads the body (Content-Length bytes after the head, at most limit) into
 * the connection buffer, or into *big (malloc'd; the caller frees it) when it
 * does not fit there. 1, or 0 when the connection ends. */
static int read_body(conn *c, const http_request *req, size_t limit, char **big, size_t *body_len) {
    *body_len = 0;
    *big = NULL;
    if (req->content_length <= 0) return 1;
    if ((uint64_t)req->content_length > limit) {
        char msg[96];
        snprintf(msg, sizeof msg, "request body over %zu bytes", limit);
        return send_error(c->fd, 413, msg, 0, NULL), 0;
    }
    const size_t cl = (size_t)req->content_length, need = req->head_len + cl;
    char *dst = c->buf + req->head_len;
    size_t have = c->len - req->head_len;
    if (need > sizeof c->buf - 1) {
        if (!(*big = malloc(cl))) return send_error(c->fd, 500, "out of memory", 0, NULL), 0;
        memcpy(*big, dst, have);
        dst = *big;
    }
    if (req->expect_continue && have < cl && send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
        return 0;
    const double t0 = now_ms();
    while (have < cl) {
        if (now_ms() - t0 > 4 * c->s->timeout_s * 1e3) { /* a trickled body: cut */
            send_error(c->fd, 408, "timed out reading the request body", 0, NULL);
            free(*big);
            *big = NULL;
            return 0;
        }
        ssize_t n = recv(c->fd, dst + have, *big ? cl - have : sizeof c->buf - 1 - c->len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            send_error(c->fd, 408, "timed out reading the request body", 0, NULL);
        if (n <= 0) {
            free(*big);
            *big = NULL;
            return 0;
        }
        have += (size_t)n;
        if (!*big) c->len += (size_t)n;
    }
    if (*big) c->len = req->head_len; /* the buffer held the head and part of the body only */
    *body_len = cl;
    return 1;
}

static int path_is(const http_request *req, const char *p) {
    return req->path_len == strlen(p) && !memcmp(req->target, p, req->path_len);
}
static int method_is(const http_request *req, const char *m) {
    return req->method_len == strlen(m) && !memcmp(req->method, m, req->method_len);
}

static int handle_models(conn *c, int keep_alive) {
    server *s = c->s;
    char id[600], body[1024];
    json_escape(id, sizeof id, s->model_id);
    int n = snprintf(body, sizeof body,
                     "{\"object\":\"list\",\"data\":[{\"id\":\"%s\",\"object\":\"model\","
                     "\"family\":\"%s\",\"sample_rate\":%d,\"frame_rate\":%g,\"parameters\":%lld,"
                     "\"max_sessions\":%d,\"max_input_bytes\":%d}]}\n",
                     id, s->info->family, s->info->sample_rate, (double)s->info->frame_rate,
                     (long long)s->info->n_params, s->max_sessions, s->max_text);
    return send_response(c->fd, 200, "application/json", body, (size_t)n, keep_alive, NULL);
}

static int handle_speech(conn *c, const char *body, size_t body_len, int keep_alive) {
    char err[512]; /* the body is read as JSON whatever its Content-Type (curl -d sends a form type) */
    json_value *j = json_parse(body, body_len, err, sizeof err);
    if (!j) {
        char msg[600];
        snprintf(msg, sizeof msg, "request body: %s", err);
        return send_error(c->fd, 400, msg, keep_alive, NULL);
    }
    request *r = calloc(1, sizeof *r);
    speech_format f = {0};
    int rc;
    if (!r) {
        rc = send_error(c->fd, 500, "out of memory", 0, NULL), rc = -1;
    } else if (parse_speech(c->s, j, r, &f, 0, err, sizeof err)) {
        rc = send_error(c->fd, 400, err, keep_alive, NULL);
    } else {
        pthread_cond_init(&r->cv, NULL);
        rc = serve_speech(c, r, &f, keep_alive);
        pthread_cond_destroy(&r->cv);
    }
    if (r) free(r->text), free(r->q);
    free(r);
    json_free(j);
    return rc;
}

/* The names "voice" takes: the model's speakers (Qwen3-TTS CustomVoice) or,
 * for a model of a built-in config, the catalog voices. */
static int handle_voices(conn *c, int keep_alive) {
    server *s = c->s;
    char body[16384]; /* MAX_VOICES names of < 64 bytes fit beside the speakers */
    size_t n = (size_t)snprintf(body, sizeof body, "{\"object\":\"list\",\"data\":[");
    const int speakers = ctts_model_speaker(s->m, 0) != NULL;
    const int catalog = !speakers && ctts_model_default_voice(s->m) != NULL;
    for (int i = 0; n + 80 < sizeof body; i++) {
        const char *v = speakers ? ctts_model_speaker(s->m, i) : catalog ? ctts_voice_catalog_name(i) : NULL;
        if (!v) break;
        char esc[160];
        json_escape(esc, sizeof esc, v);
        n += (size_t)snprintf(body + n, sizeof body - n, "%s\"%s\"", i ? "," : "", esc);
    }
    char def[160] = "null";
    const char *dv = s->defaults.speaker ? s->defaults.speaker : s->voice_name;
    if (dv) {
        char esc[140];
        json_escape(esc, sizeof esc, dv);
        snprintf(def, sizeof def, "\"%s\"", esc);
    }
    n += (size_t)snprintf(body + n, sizeof body - n, "],\"kind\":\"%s\",\"loaded\":[",
                          speakers ? "speaker" : catalog ? "catalog" : "none");
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_voices; i++) /* names are plain: no escaping needed */
        n += (size_t)snprintf(body + n, sizeof body - n, "%s\"%s\"", i ? "," : "", s->voices[i].name);
    pthread_mutex_unlock(&s->mu);
    n += (size_t)snprintf(body + n, sizeof body - n, "],\"default\":%s}\n", def);
    return send_response(c->fd, 200, "application/json", body, n, keep_alive, NULL);
}


/* Decodes a query value (%XX escapes, '+' for space) into out (NUL-terminated);
 * -1 on a bad escape, a NUL byte or no room. */
static int query_decode(const char *v, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)v[i];
        if (ch == '+') ch = ' ';
        else if (ch == '%') {
            unsigned x = 0;
            for (int k = 1; k <= 2; k++) {
                const int h = i + (size_t)k < n ? (unsigned char)v[i + (size_t)k] : 0;
                const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                            : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                if (d < 0) return -1;
                x = x * 16 + (unsigned)d;
            }
            ch = (int)x;
            i += 2;
        }
        if (!ch || o + 1 >= cap) return -1;
        out[o++] = (char)ch;
    }
    out[o] = 0;
    return 0;
}

/* Writes n bytes to path (created, mode 0600); 0 or -1. */
static int write_file(const char *path, const char *p, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int ok = fd >= 0;
    for (size_t off = 0; ok && off < n;) {
        ssize_t w = write(fd, p + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        ok = w > 0;
        off += ok ? (size_t)w : 0;
    }
    if (fd >= 0 && close(fd)) ok = 0;
    return ok ? 0 : -1;
}

/* ---- GET /v1/audio/speech/ws: text in as it comes, audio out as it is made ---- */

/* n bytes from the connection: first those buffered after the HTTP head. */
static int conn_read(conn *c, void *dst, size_t n) {
    unsigned char *d = dst;
    const size_t k = c->len < n ? c->len : n;
    memcpy(d, c->buf, k);
    memmove(c->buf, c->buf + k, c->len - k);
    c->len -= k;
    for (size_t got = k; got < n;) {
        ssize_t r = recv(c->fd, d + got, n - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static int ws_send(int fd, int opcode, const void *p, size_t n) {
    unsigned char h[10];
    const size_t hl = ws_build_head(h, opcode, n);
    return send_all(fd, h, hl) || (n && send_all(fd, p, n)) ? -1 : 0;
}

/* A text message {"error":...} (if msg) and a close frame with code. */
static void ws_fail(int fd, int code, const char *msg) {
    if (msg) {
        char esc[1024], body[1200];
        json_escape(esc, sizeof esc, msg);
        int n = snprintf(body, sizeof body, "{\"error\":{\"message\":\"%s\"}}", esc);
        ws_send(fd, WS_TEXT, body, (size_t)n);
    }
    unsigned char cl[2] = {(unsigned char)(code >> 8), (unsigned char)code};
    ws_send(fd, WS_CLOSE, cl, 2);
}

/* Reads one message into c->msg (NUL-terminated): its opcode, or -1 after
 * answering a protocol error (the connection then closes). */
static int ws_read_msg(conn *c, size_t *n) {
    unsigned char h[14];
    ws_frame f;
    char err[128];
    if (conn_read(c, h, 2)) return -1;
    const size_t more = ((h[1] & 127) == 126 ? 2 : (h[1] & 127) == 127 ? 8 : 0) + (h[1] & 128 ? 4 : 0);
    if (conn_read(c, h + 2, more)) return -1;
    if (ws_parse_head(h, 2 + more, &f, err, sizeof err) != 1) return ws_fail(c->fd, 1002, err), -1;
    if (!f.masked) return ws_fail(c->fd, 1002, "client frames must be masked"), -1;
    if (!f.fin || f.opcode == WS_CONT)
        return ws_fail(c->fd, 1003, "fragmented messages are not supported"), -1;
    if (f.payload_len > WS_MAX_MSG) return ws_fail(c->fd, 1009, "message over 64 KiB"), -1;
    *n = (size_t)f.payload_len;
    if (conn_read(c, c->msg, *n)) return -1;
    ws_unmask(c->msg, *n, f.mask, 0);
    c->msg[*n] = 0;
    return f.opcode;
}

/* A text message after the first: {"text": "...", "end": true|false}. */
static int ws_take_text(server *s, request *r, const char *msg, size_t n, char *err, size_t err_len) {
    json_value *j = json_parse(msg, n, err, err_len);
    if (!j) return -1;
    int rc = 0;
    const json_value *t = json_get(j, "text"), *e = json_get(j, "end");
    for (size_t i = 0; i < j->length && j->type == JSON_OBJECT; i++)
        if (strcmp(j->keys[i], "text") && strcmp(j->keys[i], "end"))
            rc = -1, snprintf(err, err_len, "unknown field '%.64s' (text, end)", j->keys[i]);
    if (j->type != JSON_OBJECT) rc = -1, snprintf(err, err_len, "messages are JSON objects");
    else if (t && (t->type != JSON_STRING || strlen(t->string) != t->length))
        rc = -1, snprintf(err, err_len, "'text' must be a string");
    else if (e && e->type != JSON_BOOL) rc = -1, snprintf(err, err_len, "'end' must be true or false");
    pthread_mutex_lock(&s->mu);
    if (!rc && r->text_closed && t) rc = -1, snprintf(err, err_len, "text after \"end\"");
    if (!rc && t && t->length) {
        if (r->text_total + t->length > (size_t)s->max_text) {
            rc = -1, snprintf(err, err_len, "text over the server's limit of %d bytes", s->max_text);
        } else if (r->in_n + t->length + 1 > r->in_cap) {
            size_t cap = r->in_cap ? r->in_cap : 256;
            while (cap < r->in_n + t->length + 1) cap *= 2;
            char *nt = realloc(r->in_text, cap);
            if (!nt) rc = -1, snprintf(err, err_len, "out of memory");
            else r->in_text = nt, r->in_cap = cap;
        }
        if (!rc) {
            memcpy(r->in_text + r->in_n, t->string, t->length + 1);
            r->in_n += t->length;
            r->text_total += t->length;
        }
    }
    if (!rc && e && e->boolean) r->text_closed = 1;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    json_free(j);
    return rc;
}

/* Streams audio to the client while its text messages arrive; returns when done. */
static void ws_session(conn *c, request *r, const speech_format *f) {
    server *s = c->s;
    const ctts_wav_format wf = f->f32 ? CTTS_WAV_F32 : CTTS_WAV_S16;
    size_t total = 0;
    const double t0 = now_ms();
    for (;;) {
        pthread_mutex_lock(&s->mu);
        const size_t n = take_samples(s, r, c);
        const int done = r->state == REQ_DONE && !r->q_n;
        pthread_mutex_unlock(&s->mu);
        if (n) {
            if (t_resp.first_audio_ms < 0) t_resp.first_audio_ms = now_ms() - t0;
            t_resp.samples += n;
            total += n;
            ctts_pcm_encode(c->bytes, c->pcm, n, wf);
            if (ws_send(c->fd, WS_BINARY, c->bytes, n * (f->f32 ? 4 : 2))) break;
            continue;
        }
        if (done) {
            char msg[128];
            if (r->status == CTTS_DONE) {
                int k = snprintf(msg, sizeof msg, "{\"done\":true,\"samples\":%zu}", total);
                if (!ws_send(c->fd, WS_TEXT, msg, (size_t)k)) ws_fail(c->fd, 1000, NULL);
            } else { /* the request's fault (bad voice, text, option) or the engine's */
                const int hs = http_status_of(r->status);
                ws_fail(c->fd, hs == 400 || hs == 409 ? 1007 : hs == 422 ? 1003 : 1011, r->err);
            }
            return;
        }
        struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = r->wake_fd, .events = POLLIN}};
        if (!c->len) {
            const int pr = poll(p, 2, s->timeout_s * 1000);
            if (pr == 0) {
                ws_fail(c->fd, 1008, "no message and no audio within the server's timeout");
                break;
            }
            uint64_t v;
            if (p[1].revents & POLLIN && read(r->wake_fd, &v, sizeof v) < 0) { /* reset */
            }
            if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        }
        size_t mn;
        const int op = ws_read_msg(c, &mn);
        char err[512];
        if (op < 0 || op == WS_CLOSE) {
            if (op == WS_CLOSE) ws_send(c->fd, WS_CLOSE, c->msg, mn < 2 ? mn : 2);
            break;
        }
        if (op == WS_PING && ws_send(c->fd, WS_PONG, c->msg, mn)) break;
        if (op == WS_BINARY) {
            ws_fail(c->fd, 1003, "send text as JSON text messages");
            break;
        }
        if (op == WS_TEXT && ws_take_text(s, r, (const char *)c->msg, mn, err, sizeof err)) {
            ws_fail(c->fd, 1007, err);
            break;
        }
    }
    pthread_mutex_lock(&s->mu);
    req_abandon(s, r);
    pthread_mutex_unlock(&s->mu);
}

/* The upgrade, then the first message (the request's options, as the speech
 * endpoint's JSON; "input" optional), then ws_session. Always closes. */
static int handle_ws(conn *c, const http_request *req) {
    server *s = c->s;
    const http_header *up = http_find_header(req, "upgrade"), *key = http_find_header(req, "sec-websocket-key"),
                      *ver = http_find_header(req, "sec-websocket-version");
    char accept[29];
    if (!method_is(req, "GET")) return send_error(c->fd, 405, "use GET", 0, "Allow: GET\r\n"), -1;
    if (!up || !http_token_eq(up->value, up->value_len, "websocket") || !key ||
        http_ws_accept(key->value, key->value_len, accept))
        return send_error(c->fd, 400, "a WebSocket upgrade (Upgrade: websocket, Sec-WebSocket-Key) is needed", 0, NULL), -1;
    if (!ver || !http_token_eq(ver->value, ver->value_len, "13"))
        return send_error(c->fd, 426, "WebSocket version 13 is needed", 0, "Sec-WebSocket-Version: 13\r\n"), -1;
    char head[512];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n%s\r\n", accept, g_cors);
    t_resp.status = 101;
    memmove(c->buf, c->buf + req->head_len, c->len - req->head_len); /* frames sent at once */
    c->len -= req->head_len;
    if (send_all(c->fd, head, (size_t)h)) return -1;

    size_t mn;
    const int op = ws_read_msg(c, &mn);
    if (op != WS_TEXT) {
        if (op >= 0) ws_fail(c->fd, 1008, "the first message is the request's options (a JSON object)");
        return -1;
    }
    char err[512];
    json_value *j = json_parse((const char *)c->msg, mn, err, sizeof err);
    request *r = j ? calloc(1, sizeof *r) : NULL;
    speech_format f = {0};
    if (!j || !r || parse_speech(s, j, r, &f, 1, err, sizeof err)) {
        ws_fail(c->fd, 1007, j && !r ? "out of memory" : err);
    } else {
        r->live = 1;
        r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        pthread_cond_init(&r->cv, NULL);
        if (r->wake_fd < 0) {
            ws_fail(c->fd, 1011, "cannot create an event descriptor");
        } else if (submit(s, r)) {
            ws_fail(c->fd, 1013, "the server is busy: too many requests waiting");
        } else {
            pthread_mutex_unlock(&s->mu);
            ws_session(c, r, &f);
        }
        if (r->wake_fd >= 0) close(r->wake_fd);
        pthread_cond_destroy(&r->cv);
    }
    if (r) free(r->text), free(r->q), free(r->in_text);
    free(r);
    json_free(j);
    return -1;
}

/* POST /v1/voices?name=NAME[&text=TRANSCRIPT] with an audio file as the body:
 * the worker clones it (first 30 s) into voice NAME, which speech requests
 * then name. The transcript (Qwen3-TTS Base) asks for in-context cloning. */
static int handle_upload(conn *c, const http_request *req, const char *body, size_t n, int ka) {
    char name[64] = "", text[8192] = "";
    const char *q = req->target + req->path_len, *end = req->target + req->target_len;
    if (q < end) q++; /* past '?' */
    while (q < end) { /* name=...&text=... */
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const size_t len = (size_t)((amp ? amp : end) - q);
        if (len >= 5 && !memcmp(q, "name=", 5) && query_decode(q + 5, len - 5, name, sizeof name))
            return send_error(c->fd, 400, "bad 'name' parameter", ka, NULL);
        if (len >= 5 && !memcmp(q, "text=", 5) && query_decode(q + 5, len - 5, text, sizeof text))
            return send_error(c->fd, 400, "bad 'text' parameter (percent-encoded UTF-8)", ka, NULL);
        q = amp ? amp + 1 : end;
    }
    if (!is_name(name) || !strcmp(name, "default"))
        return send_error(c->fd, 400, "give the voice a name: POST /v1/voices?name=NAME (letters, digits, '_', '-')", ka, NULL);
    if (!n) return send_error(c->fd, 400, "the body must be an audio file (WAV, FLAC, OGG, MP3, ...)", ka, NULL);
    /* a private folder: the audio, and its transcript beside it as the library reads it */
    char dir[] = "/tmp/ctts-upload-XXXXXX", path[64], tpath[64];
    const int made = mkdtemp(dir) != NULL;
    snprintf(path, sizeof path, "%s/voice.audio", dir);
    snprintf(tpath, sizeof tpath, "%s/voice.txt", dir);
    int ok = made && !write_file(path, body, n) && (!text[0] || !write_file(tpath, text, strlen(text)));
    request *r = ok ? calloc(1, sizeof *r) : NULL;
    int rc;
    if (!r) {
        rc = send_error(c->fd, 500, "cannot store the upload", ka, NULL);
    } else {
        r->clone_path = path;
        snprintf(r->voice, sizeof r->voice, "%s", name);
        pthread_cond_init(&r->cv, NULL);
        if (submit(c->s, r)) {
            rc = send_error(c->fd, 503, "the server is busy: too many requests waiting", ka, "Retry-After: 1\r\n");
        } else {
            while (r->state != REQ_DONE) pthread_cond_wait(&r->cv, &c->s->mu);
            pthread_mutex_unlock(&c->s->mu);
            char msg[160];
            int m = snprintf(msg, sizeof msg, "{\"object\":\"voice\",\"name\":\"%s\"}\n", name);
            for (char *p; (p = strstr(r->err, path));) /* not the server's file name */
                memcpy(p, "the upload", 10), memmove(p + 10, p + strlen(path), strlen(p + strlen(path)) + 1);
            for (char *p; (p = strstr(r->err, dir));)
                memcpy(p, "upload", 6), memmove(p + 6, p + strlen(dir), strlen(p + strlen(dir)) + 1);
            rc = r->status == CTTS_DONE
                     ? send_response(c->fd, 201, "application/json", msg, (size_t)m, ka, NULL)
                     : send_error(c->fd, http_status_of(r->status), r->err, ka, NULL);
        }
        pthread_cond_destroy(&r->cv);
        free(r);
    }
    if (made) unlink(path), unlink(tpath), rmdir(dir);
    return rc;
}

/* CORS preflight (with --cors): what a browser asks before a JSON POST. */
static int handle_options(conn *c, int keep_alive) {
    if (!g_cors[0]) return send_error(c->fd, 405, "OPTIONS needs --cors", keep_alive, NULL);
    return send_response(c->fd, 204, "text/plain", "", 0, keep_alive,
                         "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                         "Access-Control-Allow-Headers: Content-Type, Authorization\r\n"
                         "Access-Control-Max-Age: 600\r\n");
}

/* Answers one request; 0 to keep the connection, -1 to close it. */
static int handle_request(conn *c, const http_request *req, const char *body, size_t body_len) {
    const int ka = req->keep_alive;
    int rc;
    if (method_is(req, "OPTIONS") &&
        (path_is(req, "/health") || path_is(req, "/v1/models") || path_is(req, "/v1/voices") ||
         path_is(req, "/v1/audio/speech")))
        rc = handle_options(c, ka);
    else if (path_is(req, "/v1/audio/speech/ws"))
        rc = handle_ws(c, req);
    else if (path_is(req, "/v1/voices"))
        rc = method_is(req, "GET")    ? handle_voices(c, ka)
             : method_is(req, "POST") ? (req->content_length < 0
                                             ? send_error(c->fd, 411, "Content-Length is required", 0, NULL), -1
                                             : handle_upload(c, req, body, body_len, ka))
                                      : send_error(c->fd, 405, "use GET or POST", ka, "Allow: GET, POST\r\n");
    else if (path_is(req, "/health"))
        rc = method_is(req, "GET")
                 ? send_response(c->fd, 200, "application/json", "{\"status\":\"ok\"}\n", 16, ka, NULL)
                 : send_error(c->fd, 405, "use GET", ka, "Allow: GET\r\n");
    else if (path_is(req, "/v1/models"))
        rc = method_is(req, "GET") ? handle_models(c, ka)
                                   : send_error(c->fd, 405, "use GET", ka, "Allow: GET\r\n");
    else if (path_is(req, "/v1/audio/speech"))
        rc = !method_is(req, "POST")          ? send_error(c->fd, 405, "use POST", ka, "Allow: POST\r\n")
             : req->content_length < 0 ? send_error(c->fd, 411, "Content-Length is required", 0, NULL), -1
                                            : handle_speech(c, body, body_len, ka);
    else
        rc = send_error(c->fd, 404,
                        "no such endpoint (/health, /v1/models, /v1/voices, /v1/audio/speech, "
                        "/v1/audio/speech/ws)", ka,
                        NULL);
    return rc || !ka ? -1 : 0;
}

static void *conn_main(void *arg) {
    conn *c = arg;
    server *s = c->s;
    for (;;) {
        http_request req;
        size_t body_len;
        char *big = NULL;
        if (!read_head(c, &req)) break;
        const size_t limit = path_is(&req, "/v1/voices") ? MAX_UPLOAD : MAX_BODY;
        if (!read_body(c, &req, limit, &big, &body_len)) break;
        const double t0 = now_ms();
        memset(&t_resp, 0, sizeof t_resp);
        t_resp.first_audio_ms = -1;
        char line[256]; /* for the log: a WebSocket reuses the buffer req points into */
        snprintf(line, sizeof line, "%.*s %.*s", (int)req.method_len, req.method,
                 (int)(req.target_len < 200 ? req.target_len : 200), req.target);
        const int end = handle_request(c, &req, big ? big : c->buf + req.head_len, body_len);
        if (big) body_len = 0; /* not in the buffer: nothing of it to skip there */
        free(big);
        if (s->log) {
            char audio[96] = "";
            if (t_resp.first_audio_ms >= 0)
                snprintf(audio, sizeof audio, " audio %.2f s, first audio %.0f ms",
                         (double)t_resp.samples / s->info->sample_rate, t_resp.first_audio_ms);
            fprintf(stderr, "ctts: %s \"%s\" %d %zu B %.0f ms%s\n", c->peer, line, t_resp.status,
                    t_resp.bytes, now_ms() - t0, audio);
        }
        if (end) break;
        const size_t used = req.head_len + body_len; /* pipelined bytes move to the front */
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
    }
    /* Lingering close: a client still sending (a refused body, a cut head)
     * would otherwise get a reset that can destroy the answer before it reads it. */
    shutdown(c->fd, SHUT_WR);
    struct timeval tv = {.tv_usec = 200000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int i = 0; i < 64 && recv(c->fd, c->buf, 16384, 0) > 0; i++) {
    }
    close(c->fd);
    pthread_mutex_lock(&s->mu);
    s->conn_fds[c->slot] = -1;
    s->n_conn--;
    pthread_cond_broadcast(&s->conn_cv);
    pthread_mutex_unlock(&s->mu);
    free(c);
    return NULL;
}

/* ---- the command ---- */

static int listen_on(const char *host, int port, char *bound, size_t bound_len) {
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int e = getaddrinfo(host, ps, &hints, &ai);
    if (e) {
        snprintf(bound, bound_len, "cannot resolve --host '%s': %s", host, gai_strerror(e));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *p = ai; p && fd < 0; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, p->ai_addr, p->ai_addrlen) || listen(fd, 128)) {
            snprintf(bound, bound_len, "cannot listen on %s:%d: %s", host, port, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) return -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char hbuf[NI_MAXHOST], sbuf[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) ||
        getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof hbuf, sbuf, sizeof sbuf,
                    NI_NUMERICHOST | NI_NUMERICSERV))
        snprintf(bound, bound_len, "%s:%d", host, port);
    else
        snprintf(bound, bound_len, strchr(hbuf, ':') ? "[%s]:%s" : "%s:%s", hbuf, sbuf);
    return fd;
}

static void accept_one(server *s, int lfd) {
    struct sockaddr_storage pa;
    socklen_t pl = sizeof pa;
    int fd = accept4(lfd, (struct sockaddr *)&pa, &pl, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) usleep(50000); /* out of descriptors: no busy loop */
        return;
    }
    struct timeval tv = {.tv_sec = s->timeout_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    pthread_mutex_lock(&s->mu);
    int slot = -1;
    for (int i = 0; i < MAX_CONN && slot < 0; i++)
        if (s->conn_fds[i] < 0) slot = i;
    conn *c = slot >= 0 ? malloc(sizeof *c) : NULL;
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (c) {
        c->s = s, c->fd = fd, c->slot = slot, c->len = 0;
        if (getnameinfo((struct sockaddr *)&pa, pl, c->peer, sizeof c->peer, NULL, 0, NI_NUMERICHOST))
            snprintf(c->peer, sizeof c->peer, "?");
        s->conn_fds[slot] = fd;
        s->n_conn++;
        if (pthread_create(&th, &at, conn_main, c)) {
            s->conn_fds[slot] = -1;
            s->n_conn--;
            free(c);
            c = NULL;
        }
    }
    pthread_attr_destroy(&at);
    pthread_mutex_unlock(&s->mu);
    if (!c) {
        send_error(fd, 503, "the server is busy: too many connections", 0, "Retry-After: 1\r\n");
        close(fd);
    }
}

int cmd_serve(cli_args *a) {
    if (a->text || a->text_file || a->output)
        return cli_usage_error("%s", "serve takes its texts from requests (no --text / --output)");
    server s;
    memset(&s, 0, sizeof s);
    s.model_id = a->model;
    s.voice_name = a->voice;
    s.log = !a->quiet;
    if (a->cors) {
        for (const char *p = a->cors; *p; p++)
            if ((unsigned char)*p < 0x21 || *p == 0x7f)
                return cli_usage_error("--cors needs an origin without spaces or control bytes, got '%s'", a->cors);
        if (strlen(a->cors) > 256) return cli_usage_error("%s", "--cors origin is too long");
        snprintf(g_cors, sizeof g_cors, "Access-Control-Allow-Origin: %s\r\n", a->cors);
    }
    s.max_sessions = a->max_sessions > 0 ? a->max_sessions : 4;
    s.max_text = a->max_text > 0 ? a->max_text : 20000;
    s.timeout_s = a->timeout_s > 0 ? a->timeout_s : 30;
    for (int i = 0; i < MAX_CONN; i++) s.conn_fds[i] = -1;
    char bound[300];
    int lfd = listen_on(a->host ? a->host : "127.0.0.1", a->port_set ? a->port : 8080, bound, sizeof bound);
    if (lfd < 0) return cli_fail("%s", bound);
    int rc = cli_load_model(a, &s.m);
    if (!rc && a->voice) rc = cli_load_voice(a, s.m, a->voice, 30.0f, &s.default_voice);
    s.active = rc ? NULL : calloc((size_t)s.max_sessions, sizeof *s.active);
    s.idle = rc ? NULL : calloc((size_t)s.max_sessions, sizeof *s.idle);
    if (!rc && (!s.active || !s.idle)) rc = cli_fail("%s", "out of memory");
    if (rc) {
        close(lfd);
        free(s.active), free(s.idle);
        ctts_model_free(s.m);
        return rc;
    }
    s.info = ctts_model_get_info(s.m);
    s.defaults = ctts_gen_default_params(s.m);
    cli_apply_gen_args(a, &s.defaults);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.work_cv, NULL);
    pthread_cond_init(&s.conn_cv, NULL);

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_t worker;
    if (pthread_create(&worker, NULL, worker_main, &s)) {
        close(lfd);
        ctts_voice_free(s.default_voice);
        ctts_model_free(s.m);
        free(s.active);
        return cli_fail("%s", "cannot start the compute thread");
    }
    fprintf(stderr, "ctts: serving %s (%s) on http://%s\n", a->model, s.info->family, bound);
    fflush(stderr);
    while (!g_stop) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 250) > 0) accept_one(&s, lfd);
    }
    close(lfd);

    /* Stop: cancel the requests, end the connections, then free. */
    pthread_mutex_lock(&s.mu);
    s.stopping = 1;
    for (int i = 0; i < MAX_CONN; i++)
        if (s.conn_fds[i] >= 0) shutdown(s.conn_fds[i], SHUT_RDWR);
    for (int i = 0; i < s.n_active; i++) ctts_stream_cancel(s.active[i]->sess);
    pthread_cond_broadcast(&s.work_cv);
    while (s.n_conn) pthread_cond_wait(&s.conn_cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    pthread_join(worker, NULL);
    if (!a->quiet) fprintf(stderr, "ctts: server stopped\n");
    for (int i = 0; i < s.n_idle; i++) ctts_session_free(s.idle[i]);
    free(s.idle);
    for (int i = 0; i < s.n_voices; i++) ctts_voice_free(s.voices[i].v);
    ctts_voice_free(s.default_voice);
    ctts_model_free(s.m);
    free(s.active);
    pthread_cond_destroy(&s.conn_cv);
    pthread_cond_destroy(&s.work_cv);
    pthread_mutex_destroy(&s.mu);
    return 0;
}
