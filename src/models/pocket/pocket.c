/*
 * Pocket TTS family glue: load (config -> weights -> binding -> tokenizer),
 * voices (exported FlowLM KV states) and the generation stream.
 *
 * Generation, per text chunk (POCKET_NOTES.md §2, §5): a fresh copy of the
 * voice state, the chunk's LUT rows prefilled, then autoregressive steps.
 * Step k computes a latent and its EOS logit; the first EOS is remembered and
 * once k >= eos_step + frames_after_eos the frame is dropped and the chunk
 * ends. Emitted latents are de-normalised and decoded by a Mimi decoder that
 * starts fresh for each chunk. No allocation happens per frame: buffers are
 * sized when the stream starts.
 */
#include "models/pocket/pocket.h"
#include "models/pocket/pocket_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/rng.h"
#include "io/safetensors.h"
#include "models/pocket/flowlm.h"
#include "models/pocket/mimi.h"
#include "models/pocket/pocket_text.h"
#include "models/pocket/pocket_weights.h"
#include "text/sentencepiece.h"

struct pocket_stream {
    pocket_model *m;
    ctts_gen_params p;
    const pocket_voice *voice;
    ctts_rng rng;
    char **chunks;
    int n_chunks;
    int chunk;           /* current chunk index; n_chunks when done */
    int chunk_started;   /* prefill of the current chunk done */
    int step;            /* autoregressive step inside the chunk */
    int eos_step;        /* -1 until the first EOS */
    int frames_after_eos;
    int max_gen_len;
    pocket_flowlm_state *state;
    pocket_mimi_dec *dec;
    float *latent, *prev_latent, *denorm; /* [ldim] */
    float *rows;                          /* prefill rows [n_tokens, d_model] */
    int rows_cap;
    pocket_frame_observer observer;
    void *observer_user;
    double prepare_ms, prefill_ms, flowlm_ms, mimi_ms;
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

ctts_gen_params pocket_default_gen_params(void) {
    ctts_gen_params p;
    memset(&p, 0, sizeof p);
    p.seed = 0;
    p.temperature = 0.7f;
    p.lsd_steps = 1;
    p.noise_clamp = 0.0f;
    p.eos_threshold = -4.0f;
    p.frames_after_eos = -1;
    p.max_frames = 0;
    p.max_tokens_per_chunk = 50;
    return p;
}

/* ---- model ---- */

ctts_status pocket_model_load(const char *path, const ctts_model_params *p, pocket_model **out,
                              char *err, size_t err_len) {
    *out = NULL;
    pocket_model *m = calloc(1, sizeof *m);
    if (!m) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    ctts_status st = pocket_config_load(path, &m->cfg, err, err_len);
    if (st == CTTS_OK && strncmp(m->cfg.tokenizer_path, "hf://", 5) == 0)
        st = ctts_err(err, err_len, CTTS_E_NOT_FOUND,
                      "tokenizer '%s' is not downloaded (Hugging Face download is not "
                      "available in this build; pass a local config)", m->cfg.tokenizer_path);
    if (st == CTTS_OK) st = pocket_weights_open(&m->cfg, &m->weights, err, err_len);
    if (st == CTTS_OK) st = spm_load(m->cfg.tokenizer_path, &m->spm, err, err_len);
    if (st == CTTS_OK && spm_vocab_size(m->spm) != m->cfg.flow.n_bins)
        st = ctts_err(err, err_len, CTTS_E_FORMAT,
                      "%s: vocabulary size %d does not match flow_lm.lookup_table.n_bins %d",
                      m->cfg.tokenizer_path, spm_vocab_size(m->spm), m->cfg.flow.n_bins);
    if (st == CTTS_OK) {
        m->be = ctts_backend_cpu_new(p->n_threads, (int)p->cpu_isa);
        if (!m->be) st = ctts_err(err, err_len, CTTS_E_BACKEND, "cannot start the CPU backend");
    }
    if (st == CTTS_OK)
        st = pocket_flowlm_bind(&m->cfg.flow, m->be, pocket_weights_get, m->weights, &m->flowlm,
                                err, err_len);
    if (st == CTTS_OK)
        st = pocket_mimi_bind(&m->cfg.mimi, m->be, pocket_weights_get, m->weights, &m->mimi, err,
                              err_len);
    if (st != CTTS_OK && m->weights && err && err_len && !strstr(err, ".safetensors")) {
        /* Binding messages name the tensor; add the file it was looked up in. */
        char inner[512];
        snprintf(inner, sizeof inner, "%s", err);
        snprintf(err, err_len, "%s: %s", pocket_weights_source(m->weights), inner);
    }
    if (st == CTTS_OK) st = pocket_weights_check_all_used(m->weights, err, err_len);
    if (st != CTTS_OK) {
        pocket_model_free(m);
        return st;
    }
    *out = m;
    return CTTS_OK;
}

void pocket_model_free(pocket_model *m) {
    if (!m) return;
    pocket_mimi_free(m->mimi);
    pocket_flowlm_free(m->flowlm);
    spm_free(m->spm);
    pocket_weights_free(m->weights);
    if (m->be) m->be->destroy(m->be);
    free(m);
}

const pocket_config *pocket_model_config(const pocket_model *m) { return &m->cfg; }

int64_t pocket_model_n_params(const pocket_model *m) {
    return pocket_weights_n_params(m->weights);
}

int pocket_frame_size(const pocket_model *m) { return m->cfg.mimi.frame_size; }

#define APPEND(...)                                                           \
    do {                                                                      \
        int k_ = snprintf(len > o ? buf + o : NULL, len > o ? len - o : 0, __VA_ARGS__); \
        if (k_ > 0) o += (size_t)k_;                                          \
    } while (0)

size_t pocket_model_describe(const pocket_model *m, char *buf, size_t len) {
    size_t o = 0;
    const pocket_config *c = &m->cfg;
    const pocket_flowlm_config *f = &c->flow;
    const pocket_mimi_config *mi = &c->mimi;
    APPEND("family: pocket\nconfig: %s\n", c->config_path[0] ? c->config_path : c->name);
    APPEND("weights: %s\ntokenizer: %s (vocab %d)\n", pocket_weights_source(m->weights),
           c->tokenizer_path, spm_vocab_size(m->spm));
    APPEND("flow_lm: d_model %d, heads %d, layers %d, ffn %d, rope max_period %g, latent %d, "
           "flow mlp %d x %d, bos_before_voice %s\n",
           f->d_model, f->num_heads, f->num_layers, f->d_model * f->hidden_scale, f->max_period,
           f->ldim, f->flow_dim, f->flow_depth, f->insert_bos_before_voice ? "yes" : "no");
    APPEND("mimi: %d Hz, %.4g frames/s (%d samples per frame), seanet %d filters, dim %d, "
           "ratios",
           mi->sample_rate, mi->frame_rate, mi->frame_size, mi->n_filters, mi->dimension);
    for (int i = 0; i < mi->n_ratios; i++) APPEND(" %d", mi->ratios[i]);
    APPEND(", transformer d %d x %d layers, %d heads, context %d\n", mi->transformer.d_model,
           mi->transformer.num_layers, mi->transformer.num_heads, mi->transformer.context);
    APPEND("text: remove_semicolons %d, pad_short_inputs %d, recommended_frames_after_eos %d\n",
           c->remove_semicolons, c->pad_with_spaces_for_short_inputs,
           c->recommended_frames_after_eos);
    int n = pocket_weights_count(m->weights);
    int64_t bytes = 0;
    int64_t by_dtype[CTTS_DT_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        const ctts_tensor *t = pocket_weights_at(m->weights, i);
        bytes += (int64_t)t->nbytes;
        by_dtype[t->dtype] += ctts_tensor_numel(t);
    }
    APPEND("parameters: %lld in %d tensors, %.1f MB\n", (long long)pocket_model_n_params(m), n,
           bytes / 1e6);
    for (int d = 0; d < CTTS_DT_COUNT; d++)
        if (by_dtype[d]) APPEND("  %s: %lld parameters\n", ctts_dtype_name((ctts_dtype)d),
                                (long long)by_dtype[d]);
    APPEND("tensors:\n");
    for (int i = 0; i < n; i++) {
        const ctts_tensor *t = pocket_weights_at(m->weights, i);
        char shape[96];
        APPEND("  %-72s %-5s %s\n", t->name, ctts_dtype_name(t->dtype),
               ctts_shape_str(t, shape, sizeof shape));
    }
    return o;
}

ctts_status pocket_tokenize(const pocket_model *m, const char *text, int prepared, int32_t **ids,
                            size_t *n, char *err, size_t err_len) {
    if (!prepared) return spm_encode(m->spm, text, strlen(text), ids, n, err, err_len);
    pocket_text_options o = {m->cfg.remove_semicolons, m->cfg.pad_with_spaces_for_short_inputs};
    char *pt = NULL;
    int guess;
    ctts_status st = pocket_prepare_text(text, &o, &pt, &guess, err, err_len);
    if (st == CTTS_OK) st = spm_encode(m->spm, pt, strlen(pt), ids, n, err, err_len);
    free(pt);
    return st;
}

/* ---- stream ---- */

ctts_status pocket_stream_new(pocket_model *m, pocket_stream **out, char *err, size_t err_len) {
    *out = NULL;
    pocket_stream *s = calloc(1, sizeof *s);
    if (!s) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    s->m = m;
    int ldim = m->cfg.flow.ldim;
    s->latent = calloc((size_t)ldim, sizeof(float));
    s->prev_latent = calloc((size_t)ldim, sizeof(float));
    s->denorm = calloc((size_t)ldim, sizeof(float));
    ctts_status st = CTTS_OK;
    if (!s->latent || !s->prev_latent || !s->denorm)
        st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    if (st == CTTS_OK) st = pocket_mimi_dec_new(m->mimi, &s->dec, err, err_len);
    if (st != CTTS_OK) {
        pocket_stream_free(s);
        return st;
    }
    *out = s;
    return CTTS_OK;
}

static void free_chunks(pocket_stream *s) {
    if (s->chunks) pocket_free_chunks(s->chunks, s->n_chunks);
    s->chunks = NULL;
    s->n_chunks = 0;
}

void pocket_stream_free(pocket_stream *s) {
    if (!s) return;
    free_chunks(s);
    pocket_flowlm_state_free(s->state);
    pocket_mimi_dec_free(s->dec);
    free(s->latent);
    free(s->prev_latent);
    free(s->denorm);
    free(s->rows);
    free(s);
}

void pocket_stream_set_observer(pocket_stream *s, pocket_frame_observer fn, void *user) {
    s->observer = fn;
    s->observer_user = user;
}

void pocket_stream_times(const pocket_stream *s, double *prepare_ms, double *prefill_ms,
                         double *flowlm_ms, double *mimi_ms) {
    *prepare_ms = s->prepare_ms;
    *prefill_ms = s->prefill_ms;
    *flowlm_ms = s->flowlm_ms;
    *mimi_ms = s->mimi_ms;
}

ctts_status pocket_stream_start(pocket_stream *s, const pocket_voice *v, const ctts_gen_params *p,
                                const char *text, char *err, size_t err_len) {
    double t0 = now_ms();
    free_chunks(s);
    s->p = *p;
    if (p->lsd_steps < 1 || p->lsd_steps > 1000)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "lsd steps must be in [1, 1000]");
    if (!(p->temperature >= 0) || p->temperature > 100)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "temperature must be in [0, 100]");
    if (p->max_tokens_per_chunk < 1)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "max tokens per chunk must be >= 1");
    if (v && v->model != s->m)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "voice belongs to another model");
    s->voice = v;
    ctts_rng_seed(&s->rng, p->seed);
    pocket_text_options o = {s->m->cfg.remove_semicolons,
                             s->m->cfg.pad_with_spaces_for_short_inputs};
    ctts_status st = pocket_split_chunks(s->m->spm, text, &o, p->max_tokens_per_chunk, &s->chunks,
                                         &s->n_chunks, err, err_len);
    if (st != CTTS_OK) return st;
    s->chunk = 0;
    s->chunk_started = 0;
    s->prepare_ms = now_ms() - t0;
    s->prefill_ms = s->flowlm_ms = s->mimi_ms = 0;
    return CTTS_OK;
}

/* Tokenizes chunk s->chunk, resets the states and prefills its text. */
static ctts_status begin_chunk(pocket_stream *s, char *err, size_t err_len) {
    pocket_model *m = s->m;
    const char *text = s->chunks[s->chunk];
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
    double gen_sec = (double)n / 3.0 + 2.0;
    s->max_gen_len = (int)ceil(gen_sec * (double)m->cfg.mimi.frame_rate);
    int limit = s->max_gen_len;
    if (s->p.max_frames > 0 && s->p.max_frames < limit) limit = s->p.max_frames;
    int voice_len = s->voice ? pocket_flowlm_state_offset(s->voice->state) : 0;
    int need = voice_len + (int)n + limit + 1;
    if (!s->state || pocket_flowlm_state_capacity(s->state) < need) {
        pocket_flowlm_state_free(s->state);
        s->state = NULL;
        st = pocket_flowlm_state_new(m->flowlm, need, &s->state, err, err_len);
    }
    if (st == CTTS_OK && (int)n > s->rows_cap) {
        free(s->rows);
        s->rows = malloc(n * (size_t)m->cfg.flow.d_model * sizeof(float));
        s->rows_cap = s->rows ? (int)n : 0;
        if (!s->rows) st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    if (st == CTTS_OK) {
        if (s->voice)
            st = pocket_flowlm_state_copy(s->state, s->voice->state);
        else
            st = pocket_flowlm_state_set_offset(s->state, 0);
    }
    if (st == CTTS_OK) st = pocket_flowlm_text_rows(m->flowlm, ids, (int)n, s->rows, err, err_len);
    free(ids);
    double t0 = now_ms();
    if (st == CTTS_OK) st = pocket_flowlm_prefill(m->flowlm, s->state, s->rows, (int)n, NULL);
    s->prefill_ms += now_ms() - t0;
    if (st != CTTS_OK) return st;
    pocket_mimi_dec_reset(s->dec);
    s->step = 0;
    s->eos_step = -1;
    s->chunk_started = 1;
    return CTTS_OK;
}

ctts_status pocket_stream_step(pocket_stream *s, float *pcm, size_t *n, char *err,
                               size_t err_len) {
    pocket_model *m = s->m;
    *n = 0;
    for (;;) {
        if (s->chunk >= s->n_chunks) return CTTS_DONE;
        if (!s->chunk_started) {
            ctts_status st = begin_chunk(s, err, err_len);
            if (st != CTTS_OK) return st;
        }
        int limit = s->max_gen_len;
        if (s->p.max_frames > 0 && s->p.max_frames < limit) limit = s->p.max_frames;
        if (s->step >= limit) {
            s->chunk++;
            s->chunk_started = 0;
            continue;
        }
        double t0 = now_ms();
        float eos_logit = 0;
        ctts_status st = pocket_flowlm_step(m->flowlm, s->state, s->step ? s->prev_latent : NULL,
                                            s->p.lsd_steps, s->p.temperature, s->p.noise_clamp,
                                            &s->rng, s->latent, &eos_logit, NULL);
        s->flowlm_ms += now_ms() - t0;
        if (st != CTTS_OK) return ctts_err(err, err_len, st, "FlowLM step failed");
        if (s->eos_step < 0 && eos_logit > s->p.eos_threshold) s->eos_step = s->step;
        int stop = s->eos_step >= 0 && s->step >= s->eos_step + s->frames_after_eos;
        if (s->observer)
            s->observer(s->observer_user, s->chunk, s->step, s->latent, eos_logit, !stop);
        if (stop) {
            s->chunk++;
            s->chunk_started = 0;
            continue;
        }
        t0 = now_ms();
        pocket_flowlm_denorm(m->flowlm, s->latent, s->denorm);
        st = pocket_mimi_decode_frame(s->dec, s->denorm, pcm, NULL, NULL, NULL);
        s->mimi_ms += now_ms() - t0;
        if (st != CTTS_OK) return ctts_err(err, err_len, st, "Mimi decode failed");
        float *tmp = s->prev_latent;
        s->prev_latent = s->latent;
        s->latent = tmp;
        s->step++;
        *n = (size_t)m->cfg.mimi.frame_size;
        return CTTS_OK;
    }
}
