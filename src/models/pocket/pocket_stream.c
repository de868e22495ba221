/*
 * Pocket TTS generation stream: text fed in pieces -> chunks -> FlowLM
 * latents -> Mimi audio, one 80 ms frame per step.
 *
 * Text. Fed text accumulates; whenever a new word completes and it may
 * matter (punctuation since the last look, or the growing sentence may have
 * gained enough tokens to change the packing), the incremental chunker
 * (pocket_chunker, linear in the text) gives the chunks every continuation
 * shares, i.e. exactly the leading chunks pocket_split_chunks will give for
 * the whole text (pocket_text.c has the argument). end_text splits the whole
 * text, checks that it starts with the chunks already taken and takes the rest.
 *
 * Generation, per chunk (POCKET_NOTES.md §2, §5): a fresh copy of the voice
 * state, the chunk's LUT rows prefilled, then autoregressive steps; step 0
 * runs in the prefill's last transformer pass (one pass over the weights
 * less before the first audio). Step k computes a latent and its EOS logit;
 * the first EOS is remembered and once k >= eos_step + frames_after_eos the
 * frame is dropped and the chunk ends. Emitted latents are de-normalised and
 * decoded by a Mimi decoder that starts fresh for each chunk. The RNG runs
 * across chunks, so frames depend only on the chunk strings and the seed,
 * never on when the text arrived.
 *
 * Pipelining: the first frame of a stream is always decoded on the caller's
 * thread with every model thread (lowest time to first audio). After it, in
 * pipelined steps a persistent worker thread decodes frame n while the caller
 * computes frame n+1's latent; the model's threads are split between the two
 * sides (one-thread-each on 2 cores) through backends of their own, so the
 * cores are not oversubscribed and the model's thread pool is never used
 * from two threads. Sequential and pipelined steps can alternate freely
 * (AUTO measures both, see use_pipe_now): the output is bit-identical, as
 * the same kernels run in the same order on each state. No allocation
 * happens per frame.
 *
 * Not here: public API state checks (core/tts.c), the text rules themselves
 * (pocket_text.c), the networks (flowlm.c, mimi.c).
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/rng.h"
#include "base/worker.h"
#include "models/pocket/pocket.h"
#include "models/pocket/pocket_internal.h"
#include "models/pocket/pocket_text.h"

#define TEXT_MAX ((size_t)64 << 20) /* bytes of text one stream accepts */

/* ctts_gen_params.pipeline */
enum { PIPE_AUTO = -1, PIPE_OFF = 0, PIPE_ON = 1 };

/* What produce() made. */
enum { PRODUCED_FRAME = 0, PRODUCED_DONE = 1, PRODUCED_WAIT = 2 };

/* One latent on its way to audio; owned by the stream, used by one thread at a time. */
typedef struct {
    pocket_stream *s;
    float *latent; /* [ldim] de-normalised */
    float *pcm;    /* [frame_size] */
    int reset;     /* first frame of a chunk: the decoder starts fresh */
    double ms;     /* decode time */
    ctts_status st;
} frame_job;

struct pocket_stream {
    pocket_model *m;
    ctts_gen_params p;
    const pocket_voice *voice;
    ctts_rng rng;
    const atomic_int *cancel; /* set by another thread to stop; may be NULL */

    /* text */
    char *text;
    size_t text_len, text_cap;
    int text_ended;
    pocket_chunker *chunker; /* incremental chunking of the text so far */
    size_t looked_cut;   /* cut (end of complete words) at the last re-chunk */
    size_t looked_word;  /* start of the last word before that cut */
    int headroom;        /* tokens the growing sentence could gain then without
                            changing the chunks (no punctuation); -1 = unknown */
    char **chunks;       /* final chunks known so far */
    int n_chunks, cap_chunks;

    /* generation */
    int chunk;           /* current chunk index */
    int chunk_started;   /* prefill of the current chunk done */
    int step;            /* autoregressive step inside the chunk */
    int eos_step;        /* -1 until the first EOS */
    int frames_after_eos;
    int max_gen_len;
    pocket_flowlm_state *state;
    int state_has_voice;         /* state rows [0, voice_len) hold this stream's voice */
    float *latent, *prev_latent; /* [ldim] normalised */
    int first_ready;             /* step 0's latent and EOS logit came with the prefill */
    float first_eos;
    float *rows;                 /* prefill rows [n_tokens, d_model] */
    int rows_cap;
    int frames_out;              /* frames emitted by this stream */

    /* decoding and pipelining */
    pocket_mimi_dec *dec;
    frame_job jobs[2];
    int job_cur;         /* the job in flight on the worker */
    int in_flight;
    ctts_status deferred; /* error met while a frame was in flight, reported next step */
    char deferred_msg[256];
    int pipe;            /* PIPE_* asked */
    ctts_worker *worker;
    ctts_backend *be_flow, *be_mimi; /* twins of the model backend sharing its threads */
    /* AUTO: per-frame time of each mode (ms, EWMA over steady frames, kept
     * across streams: it is a property of the machine), sample counts */
    double ms_mode[2];
    int n_mode[2];
    int64_t n_steady;
    int chunks_begun;    /* begin_chunk calls (steps with a prefill are not timed) */

    pocket_frame_observer observer;
    void *observer_user;
    pocket_stream_timing t;
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- lifetime ---- */

ctts_status pocket_stream_new(pocket_model *m, pocket_stream **out, char *err, size_t err_len) {
    *out = NULL;
    pocket_stream *s = calloc(1, sizeof *s);
    if (!s) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    s->m = m;
    s->pipe = PIPE_AUTO;
    size_t ldim = (size_t)m->cfg.flow.ldim, fs = (size_t)m->cfg.mimi.frame_size;
    s->latent = calloc(ldim, sizeof(float));
    s->prev_latent = calloc(ldim, sizeof(float));
    int ok = s->latent && s->prev_latent;
    for (int i = 0; i < 2; i++) {
        s->jobs[i].s = s;
        s->jobs[i].latent = calloc(ldim, sizeof(float));
        s->jobs[i].pcm = calloc(fs, sizeof(float));
        ok = ok && s->jobs[i].latent && s->jobs[i].pcm;
    }
    ctts_status st = ok ? CTTS_OK : ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    if (st == CTTS_OK) st = pocket_mimi_dec_new(m->mimi, &s->dec, err, err_len);
    if (st != CTTS_OK) {
        pocket_stream_free(s);
        return st;
    }
    *out = s;
    return CTTS_OK;
}

static void free_chunks(pocket_stream *s) {
    pocket_free_chunks(s->chunks, s->n_chunks);
    s->chunks = NULL;
    s->n_chunks = s->cap_chunks = 0;
}

/* Waits for a frame in flight and forgets it. */
static void drain(pocket_stream *s) {
    if (s->worker) ctts_worker_wait(s->worker);
    s->in_flight = 0;
}

void pocket_stream_free(pocket_stream *s) {
    if (!s) return;
    drain(s);
    ctts_worker_free(s->worker);
    if (s->be_flow) s->be_flow->destroy(s->be_flow);
    if (s->be_mimi) s->be_mimi->destroy(s->be_mimi);
    free_chunks(s);
    pocket_chunker_free(s->chunker);
    free(s->text);
    pocket_flowlm_state_free(s->state);
    pocket_mimi_dec_free(s->dec);
    free(s->latent);
    free(s->prev_latent);
    for (int i = 0; i < 2; i++) {
        free(s->jobs[i].latent);
        free(s->jobs[i].pcm);
    }
    free(s->rows);
    free(s);
}

void pocket_stream_set_observer(pocket_stream *s, pocket_frame_observer fn, void *user) {
    s->observer = fn;
    s->observer_user = user;
}

void pocket_stream_set_cancel(pocket_stream *s, const atomic_int *flag) { s->cancel = flag; }

void pocket_stream_get_timing(const pocket_stream *s, pocket_stream_timing *t) { *t = s->t; }

int pocket_stream_n_chunks(const pocket_stream *s) { return s->n_chunks; }

static int cancelled(const pocket_stream *s) { return s->cancel && atomic_load(s->cancel); }

/* Whether this stream may pipeline: asked for, or AUTO with >= 2 model threads. */
static int pipe_allowed(const pocket_stream *s) {
    if (s->pipe == PIPE_AUTO) return s->m->n_threads >= 2;
    return s->pipe == PIPE_ON;
}

/* The worker and the backends of the overlapped phase, made on first use:
 * the model's threads split between FlowLM (caller) and Mimi (worker). */
static ctts_status pipe_setup(pocket_stream *s, char *err, size_t err_len) {
    int n = s->m->n_threads, nf = n / 2 > 0 ? n / 2 : 1, nm = n - nf > 0 ? n - nf : 1;
    if (!s->be_flow) s->be_flow = ctts_backend_cpu_new(nf, s->m->cpu_isa);
    if (!s->be_mimi) s->be_mimi = ctts_backend_cpu_new(nm, s->m->cpu_isa);
    if (!s->worker) s->worker = ctts_worker_new();
    if (!s->be_flow || !s->be_mimi || !s->worker)
        return ctts_err(err, err_len, CTTS_E_BACKEND, "cannot start the decoding thread");
    return CTTS_OK;
}

/* Pipelining pays when the two stages scale worse over all threads than
 * side by side, which depends on the machine (measured: it loses ~12% on
 * 2 dedicated cores that scale well, and may win on shared vCPUs). AUTO
 * therefore measures: both modes' steady per-frame times, then the faster
 * one, trying the other again for 8 frames out of every 64. Output is the
 * same either way, so switching is free of side effects. */
#define AUTO_MIN_SAMPLES 4
#define AUTO_PERIOD 64
#define AUTO_PROBE 8
static int use_pipe_now(const pocket_stream *s) {
    if (!s->worker || !pipe_allowed(s)) return 0;
    if (s->pipe == PIPE_ON) return 1;
    if (s->n_mode[0] < AUTO_MIN_SAMPLES) return 0;
    if (s->n_mode[1] < AUTO_MIN_SAMPLES) return 1;
    int best = s->ms_mode[1] < s->ms_mode[0];
    return s->n_steady % AUTO_PERIOD >= AUTO_PERIOD - AUTO_PROBE ? !best : best;
}

static void time_mode(pocket_stream *s, int mode, double ms) {
    s->ms_mode[mode] = s->n_mode[mode] ? 0.75 * s->ms_mode[mode] + 0.25 * ms : ms;
    s->n_mode[mode]++;
    s->n_steady++;
}

/* ---- text ---- */

static ctts_status push_final(pocket_stream *s, char **chunks, int n, char *err,
                              size_t err_len) {
    /* chunks[0..s->n_chunks) must be the ones already taken */
    for (int i = 0; i < s->n_chunks && i < n; i++)
        if (strcmp(chunks[i], s->chunks[i]) != 0)
            return ctts_err(err, err_len, CTTS_E_STATE,
                            "internal error: chunk %d changed after it was started", i);
    if (n < s->n_chunks)
        return ctts_err(err, err_len, CTTS_E_STATE,
                        "internal error: %d chunks were started, the text has %d", s->n_chunks,
                        n);
    if (n > s->cap_chunks) {
        int cap = s->cap_chunks ? s->cap_chunks : 8;
        while (cap < n) cap *= 2;
        char **nc = realloc(s->chunks, (size_t)cap * sizeof *nc);
        if (!nc) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        s->chunks = nc;
        s->cap_chunks = cap;
    }
    for (int i = s->n_chunks; i < n; i++) {
        s->chunks[i] = chunks[i];
        chunks[i] = NULL;
    }
    s->n_chunks = n;
    return CTTS_OK;
}

/* Takes the new final chunks chunks[0..n) (set to NULL in the array). */
static ctts_status append_chunks(pocket_stream *s, char **chunks, int n, char *err,
                                 size_t err_len) {
    if (n > INT32_MAX / 2 - s->n_chunks) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    if (s->n_chunks + n > s->cap_chunks) {
        int cap = s->cap_chunks ? s->cap_chunks : 8;
        while (cap < s->n_chunks + n) cap *= 2;
        char **nc = realloc(s->chunks, (size_t)cap * sizeof *nc);
        if (!nc) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        s->chunks = nc;
        s->cap_chunks = cap;
    }
    for (int i = 0; i < n; i++) {
        s->chunks[s->n_chunks++] = chunks[i];
        chunks[i] = NULL;
    }
    return CTTS_OK;
}

static int is_cut_space(char c) { return c == ' ' || c == '\n' || c == '\r'; }

/* Plain word bytes: ASCII letters and digits. Anything else may be (or
 * normalise to) a boundary piece, so it makes a re-chunk worth doing. */
static int plain_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Re-chunks the text so far when a new chunk may have become final. */
static ctts_status look_for_chunks(pocket_stream *s, size_t from, char *err, size_t err_len) {
    /* the last space that follows a non-space byte: candidate end of complete words */
    size_t cut = 0;
    for (size_t p = s->text_len; p-- > (from ? from : 1);)
        if (is_cut_space(s->text[p]) && p > 0 && !is_cut_space(s->text[p - 1])) {
            cut = p;
            break;
        }
    if (cut <= s->looked_cut) return CTTS_OK;
    int worth = s->headroom < 0;
    for (size_t i = s->looked_word; i < cut && !worth; i++)
        worth = !plain_byte((unsigned char)s->text[i]);
    /* without punctuation only the growing sentence changes, by at most one
     * token per (ASCII) byte */
    if (!worth && cut - s->looked_cut > (size_t)s->headroom) worth = 1;
    if (!worth) return CTTS_OK;

    double t0 = now_ms();
    char **chunks = NULL;
    int n = 0, headroom = -1;
    ctts_status st = pocket_chunker_update(s->chunker, s->text, s->text_len, s->n_chunks, &chunks,
                                           &n, &headroom, err, err_len);
    if (st == CTTS_OK) st = append_chunks(s, chunks, n, err, err_len);
    pocket_free_chunks(chunks, n);
    s->t.prepare_ms += now_ms() - t0;
    if (st != CTTS_OK) return st;
    s->headroom = headroom;
    s->looked_cut = cut;
    size_t w = cut;
    while (w > 0 && !is_cut_space(s->text[w - 1])) w--;
    s->looked_word = w;
    return CTTS_OK;
}

ctts_status pocket_stream_begin(pocket_stream *s, const pocket_voice *v, const ctts_gen_params *p,
                                char *err, size_t err_len) {
    drain(s);
    free_chunks(s);
    s->text_len = 0;
    s->text_ended = 0;
    s->looked_cut = s->looked_word = 0;
    s->headroom = -1;
    s->chunk = 0;
    s->chunk_started = 0;
    s->frames_out = 0;
    s->state_has_voice = 0;
    s->deferred = CTTS_OK;
    s->deferred_msg[0] = 0;
    memset(&s->t, 0, sizeof s->t);
    s->p = *p;
    if (p->lsd_steps < 1 || p->lsd_steps > 1000)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "lsd steps must be in [1, 1000]");
    if (!(p->temperature >= 0) || p->temperature > 100)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "temperature must be in [0, 100]");
    if (p->max_tokens_per_chunk < 1)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "max tokens per chunk must be >= 1");
    if (p->pipeline < -1 || p->pipeline > 1)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "pipeline must be -1, 0 or 1");
    if (v && v->model != s->m)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice belongs to another model");
    s->pipe = p->pipeline;
    s->voice = v;
    ctts_rng_seed(&s->rng, p->seed);
    pocket_chunker_free(s->chunker);
    s->chunker = NULL;
    pocket_text_options o = {s->m->cfg.remove_semicolons,
                             s->m->cfg.pad_with_spaces_for_short_inputs};
    ctts_status st = pocket_chunker_new(s->m->spm, &o, p->max_tokens_per_chunk, &s->chunker, err,
                                        err_len);
    if (st == CTTS_OK && pipe_allowed(s)) st = pipe_setup(s, err, err_len);
    return st;
}

ctts_status pocket_stream_feed(pocket_stream *s, const char *utf8, size_t n, char *err,
                               size_t err_len) {
    if (s->text_ended)
        return ctts_err(err, err_len, CTTS_E_STATE, "text fed after the end of the text");
    if (n > TEXT_MAX - s->text_len)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text longer than %zu bytes", TEXT_MAX);
    if (s->text_len + n + 1 > s->text_cap) {
        size_t cap = (s->text_len + n + 1) * 2;
        char *t = realloc(s->text, cap);
        if (!t) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        s->text = t;
        s->text_cap = cap;
    }
    size_t from = s->text_len;
    memcpy(s->text + s->text_len, utf8, n);
    s->text_len += n;
    s->text[s->text_len] = 0;
    if (!s->chunker || n == 0) return CTTS_OK;
    return look_for_chunks(s, from, err, err_len);
}

ctts_status pocket_stream_end(pocket_stream *s, char *err, size_t err_len) {
    if (s->text_ended) return ctts_err(err, err_len, CTTS_E_STATE, "end of text given twice");
    double t0 = now_ms();
    pocket_text_options o = {s->m->cfg.remove_semicolons,
                             s->m->cfg.pad_with_spaces_for_short_inputs};
    char **chunks = NULL;
    int n = 0;
    ctts_status st = pocket_split_chunks(s->m->spm, s->text ? s->text : "", &o,
                                         s->p.max_tokens_per_chunk, &chunks, &n, err, err_len);
    if (st == CTTS_OK) st = push_final(s, chunks, n, err, err_len);
    pocket_free_chunks(chunks, n);
    s->t.prepare_ms += now_ms() - t0;
    if (st == CTTS_OK) s->text_ended = 1;
    return st;
}

ctts_status pocket_stream_start(pocket_stream *s, const pocket_voice *v, const ctts_gen_params *p,
                                const char *text, char *err, size_t err_len) {
    ctts_status st = pocket_stream_begin(s, v, p, err, err_len);
    if (st == CTTS_OK) st = pocket_stream_feed(s, text, strlen(text), err, err_len);
    if (st == CTTS_OK) st = pocket_stream_end(s, err, err_len);
    return st;
}

/* ---- generation ---- */

/* Tokenizes chunk s->chunk, resets the FlowLM state and prefills its text
 * with the ops on exec. */
static ctts_status begin_chunk(pocket_stream *s, ctts_backend *exec, char *err, size_t err_len) {
    pocket_model *m = s->m;
    const char *text = s->chunks[s->chunk];
    double t_tok = now_ms();
    int32_t *ids = NULL;
    size_t n = 0;
    ctts_status st = spm_encode(m->spm, text, strlen(text), &ids, &n, err, err_len);
    if (st != CTTS_OK) return st;
    if (n == 0 || n > (1u << 20)) {
        free(ids);
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text chunk %d has %zu tokens",
                        s->chunk, n);
    }
    /* frames after EOS: call argument, else the config's recommendation, else guess + 2. */
    int fae = s->p.frames_after_eos >= 0 ? s->p.frames_after_eos
                                         : m->cfg.recommended_frames_after_eos;
    if (fae < 0) {
        pocket_text_options o = {m->cfg.remove_semicolons, m->cfg.pad_with_spaces_for_short_inputs};
        char *pt = NULL;
        int guess = 1;
        st = pocket_prepare_text(text, &o, &pt, &guess, err, err_len);
        free(pt);
        if (st != CTTS_OK) {
            free(ids);
            return st;
        }
        fae = guess + 2;
    }
    s->frames_after_eos = fae;
    double t0 = now_ms();
    if (s->frames_out == 0 && s->chunk == 0) s->t.first_text_ms = s->t.prepare_ms + (t0 - t_tok);
    double gen_sec = (double)n / 3.0 + 2.0;
    s->max_gen_len = (int)ceil(gen_sec * (double)m->cfg.mimi.frame_rate);
    int limit = s->max_gen_len;
    if (s->p.max_frames > 0 && s->p.max_frames < limit) limit = s->p.max_frames;
    int voice_len = s->voice ? pocket_flowlm_state_offset(s->voice->state) : 0;
    int need = voice_len + (int)n + limit + 1;
    if (!s->state || pocket_flowlm_state_capacity(s->state) < need) {
        pocket_flowlm_state_free(s->state);
        s->state = NULL;
        s->state_has_voice = 0;
        st = pocket_flowlm_state_new(m->flowlm, need, &s->state, err, err_len);
    }
    if (st == CTTS_OK && (int)n > s->rows_cap) {
        free(s->rows);
        s->rows = malloc(n * (size_t)m->cfg.flow.d_model * sizeof(float));
        s->rows_cap = s->rows ? (int)n : 0;
        if (!s->rows) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    if (st == CTTS_OK) {
        pocket_flowlm_state_set_exec(s->state, exec);
        /* the voice's rows stay untouched below voice_len: one copy per stream */
        if (s->voice && !s->state_has_voice) {
            st = pocket_flowlm_state_copy(s->state, s->voice->state);
            s->state_has_voice = st == CTTS_OK;
        } else {
            st = pocket_flowlm_state_set_offset(s->state, voice_len);
        }
    }
    if (st == CTTS_OK) st = pocket_flowlm_text_rows(m->flowlm, ids, (int)n, s->rows, err, err_len);
    free(ids);
    /* the prefill also computes step 0 (its BOS row rides along in the last pass) */
    if (st == CTTS_OK)
        st = pocket_flowlm_prefill_step(m->flowlm, s->state, s->rows, (int)n, s->p.lsd_steps,
                                        s->p.temperature, s->p.noise_clamp, &s->rng, s->latent,
                                        &s->first_eos);
    s->first_ready = st == CTTS_OK;
    double dt = now_ms() - t0;
    s->t.prefill_ms += dt;
    if (s->frames_out == 0 && s->chunk == 0) s->t.first_prefill_ms = dt;
    if (st != CTTS_OK) return ctts_err(err, err_len, st, "FlowLM prefill failed");
    s->step = 0;
    s->eos_step = -1;
    s->chunk_started = 1;
    s->chunks_begun++;
    return CTTS_OK;
}

/* Computes the next emitted latent into job (de-normalised, job->reset set on
 * a chunk's first frame), with the FlowLM ops on exec. PRODUCED_WAIT when the
 * next chunk is not known yet, PRODUCED_DONE after the last chunk, or < 0. */
static int produce(pocket_stream *s, frame_job *job, ctts_backend *exec, char *err,
                   size_t err_len) {
    pocket_model *m = s->m;
    for (;;) {
        if (s->chunk >= s->n_chunks) return s->text_ended ? PRODUCED_DONE : PRODUCED_WAIT;
        if (cancelled(s)) return ctts_err(err, err_len, CTTS_E_CANCELLED, "cancelled");
        if (!s->chunk_started) {
            ctts_status st = begin_chunk(s, exec, err, err_len);
            if (st != CTTS_OK) return st;
        }
        pocket_flowlm_state_set_exec(s->state, exec);
        int limit = s->max_gen_len;
        if (s->p.max_frames > 0 && s->p.max_frames < limit) limit = s->p.max_frames;
        if (s->step >= limit) {
            s->chunk++;
            s->chunk_started = 0;
            continue;
        }
        float eos_logit = s->first_eos;
        if (s->step > 0 || !s->first_ready) {
            double t0 = now_ms();
            ctts_status st = pocket_flowlm_step(m->flowlm, s->state, s->step ? s->prev_latent : NULL,
                                                s->p.lsd_steps, s->p.temperature,
                                                s->p.noise_clamp, &s->rng, s->latent, &eos_logit,
                                                NULL);
            double dt = now_ms() - t0;
            s->t.flowlm_ms += dt;
            if (st != CTTS_OK) return ctts_err(err, err_len, st, "FlowLM step failed");
        }
        s->first_ready = 0;
        if (s->eos_step < 0 && !s->p.ignore_eos && eos_logit > s->p.eos_threshold) s->eos_step = s->step;
        int stop = s->eos_step >= 0 && s->step >= s->eos_step + s->frames_after_eos;
        if (s->observer)
            s->observer(s->observer_user, s->chunk, s->step, s->latent, eos_logit, !stop);
        if (stop) {
            s->chunk++;
            s->chunk_started = 0;
            continue;
        }
        pocket_flowlm_denorm(m->flowlm, s->latent, job->latent);
        job->reset = s->step == 0;
        float *tmp = s->prev_latent;
        s->prev_latent = s->latent;
        s->latent = tmp;
        s->step++;
        return PRODUCED_FRAME;
    }
}

/* Decodes job->latent into job->pcm (on whichever thread calls it). */
static void decode_job(void *ctx) {
    frame_job *job = ctx;
    double t0 = now_ms();
    if (job->reset) pocket_mimi_dec_reset(job->s->dec);
    job->st = pocket_mimi_decode_frame(job->s->dec, job->latent, job->pcm, NULL, NULL, NULL);
    job->ms = now_ms() - t0;
}

/* Accounts a decoded job and hands its samples out. */
static ctts_status take_job(pocket_stream *s, frame_job *job, float *pcm, size_t *n, char *err,
                            size_t err_len) {
    s->t.mimi_ms += job->ms;
    if (s->frames_out == 0) s->t.first_mimi_ms = job->ms;
    if (job->st != CTTS_OK) return ctts_err(err, err_len, job->st, "Mimi decode failed");
    size_t fs = (size_t)s->m->cfg.mimi.frame_size;
    memcpy(pcm, job->pcm, fs * sizeof *pcm);
    *n = fs;
    s->frames_out++;
    return CTTS_OK;
}

static ctts_status produced_status(int r) {
    return r == PRODUCED_DONE ? CTTS_DONE : r == PRODUCED_WAIT ? CTTS_OK : (ctts_status)r;
}

/* The frame in flight on the worker: wait, hand it out, and (pipe) start
 * the latent computed meanwhile, r being what produce() gave for it. */
static ctts_status finish_flight(pocket_stream *s, int r, float *pcm, size_t *n, char *err,
                                 size_t err_len) {
    frame_job *cur = &s->jobs[s->job_cur], *next = &s->jobs[s->job_cur ^ 1];
    ctts_worker_wait(s->worker);
    s->in_flight = 0;
    ctts_status st = take_job(s, cur, pcm, n, err, err_len);
    if (st != CTTS_OK) return st;
    if (r == PRODUCED_FRAME) {
        ctts_worker_submit(s->worker, decode_job, next);
        s->in_flight = 1;
        s->job_cur ^= 1;
    } else if (r < 0) {
        s->deferred = (ctts_status)r; /* reported after the frame already computed */
    }
    return CTTS_OK;
}

ctts_status pocket_stream_step(pocket_stream *s, float *pcm, size_t *n, char *err,
                               size_t err_len) {
    *n = 0;
    if (s->deferred != CTTS_OK) return ctts_err(err, err_len, s->deferred, "%s", s->deferred_msg);
    double t0 = now_ms();
    int begun = s->chunks_begun, pipe = use_pipe_now(s);
    if (s->in_flight) {
        /* steady pipelining: the next latent on the FlowLM threads while the
         * worker decodes; or, switching to sequential, just drain */
        int r = pipe ? produce(s, &s->jobs[s->job_cur ^ 1], s->be_flow, s->deferred_msg,
                               sizeof s->deferred_msg)
                     : PRODUCED_WAIT;
        ctts_status st = finish_flight(s, r, pcm, n, err, err_len);
        if (st == CTTS_OK && pipe && s->pipe == PIPE_AUTO && s->chunks_begun == begun &&
            s->in_flight)
            time_mode(s, 1, now_ms() - t0);
        return st;
    }
    /* nothing overlaps: this latent gets every thread */
    frame_job *job = &s->jobs[s->job_cur];
    int r = produce(s, job, s->m->be, err, err_len);
    if (r != PRODUCED_FRAME) return produced_status(r);
    if (cancelled(s)) return ctts_err(err, err_len, CTTS_E_CANCELLED, "cancelled");
    if (!pipe || s->frames_out == 0) {
        /* sequential, and always the first frame: lowest time to first audio */
        pocket_mimi_dec_set_exec(s->dec, NULL);
        decode_job(job);
        int first = s->frames_out == 0;
        ctts_status st = take_job(s, job, pcm, n, err, err_len);
        if (st == CTTS_OK && !first && s->worker && s->pipe == PIPE_AUTO &&
            s->chunks_begun == begun)
            time_mode(s, 0, now_ms() - t0);
        return st;
    }
    pocket_mimi_dec_set_exec(s->dec, s->be_mimi);
    ctts_worker_submit(s->worker, decode_job, job);
    s->in_flight = 1;
    r = produce(s, &s->jobs[s->job_cur ^ 1], s->be_flow, s->deferred_msg, sizeof s->deferred_msg);
    return finish_flight(s, r, pcm, n, err, err_len);
}
