/*
 * Qwen3-TTS generation stream (see qwen3tts.h): text intake (the whole text,
 * or pieces as they arrive in the streaming text mode), prompt layout and
 * embedding, the talker / code predictor frame loop (q3t_codegen), and the
 * speech decoder in a fixed schedule of frame groups, optionally on a
 * decoding thread; several streams may step together (batched decode).
 * Nothing is allocated per frame: buffers grow with the text only.
 */
#include "models/qwen3tts/qwen3tts.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "models/qwen3tts/code_predictor.h"
#include "models/qwen3tts/q3t_codegen.h"
#include "models/qwen3tts/q3t_prompt.h"
#include "models/qwen3tts/speech_decoder.h"
#include "models/qwen3tts/talker.h"
#include "text/bpe.h"

/* Frames per speech-decoder call (reference frames are decoded in batches). */
#define DEC_BATCH 64
/* Frames per speech-decoder call once under way: the decoder costs ~25% less
 * per frame on 4 frames than on 1 (full SIMD tiles, fewer op dispatches). */
#define STEP_FRAMES 4

/* Frames of the decoder call that starts at frame f: 1, 1, 1, 1, 2, 2, 2,
 * then 4. The first frame comes alone for the earliest audio; the ramp keeps
 * the audio ahead of playback while the lead builds up (4 at once right away
 * left a player waiting ~120 ms after the first frame; a shorter ramp still
 * fell behind when the host gave ~37 GB/s). A fixed schedule: the decoder's
 * sums, and so the samples, do not depend on when text arrived. */
static int group_frames(int f) { return f < 4 ? 1 : f < 10 ? 2 : STEP_FRAMES; }
/* Pipelining (ctts_gen_params.pipeline): the decoder of one group runs on one
 * core as the backend's side job while the language model makes the next
 * group on all cores, without that one until the decoder is done. It pays
 * because the language model, bound by memory bandwidth, runs at well over
 * half its two-core speed on one core (2 EPYC cores: 4-9% less wall time at
 * ~35 GB/s, the same audio). Its first pipelined step returns audio one
 * group later than a sequential one would: auto starts it only once the audio
 * returned leads real time by more than that step takes, estimated from the
 * measured generation time (so a player should not wait for it; on a host
 * near 1x real time it may never start, and pipeline 1 gives the
 * throughput), and only with 2 threads (with more, one core's decoder could
 * fall behind). */
#define PIPE_AUTO_THREADS 2
/* Most text bytes one utterance takes. */
#define TEXT_MAX ((size_t)16 << 20)

struct q3t_stream {
    q3t_model *m;
    /* the model's parts this stream uses */
    const q3t_config *cfg;
    const bpe_tokenizer *tok;
    const q3t_talker *talker;
    const q3t_code_predictor *cp;
    const q3t_speech_decoder *sdec;
    ctts_backend *be;
    int n_threads, cpu_isa;
    q3t_codegen *gen;
    q3t_talker_state *ts; /* for the prompt embeddings */
    q3t_cp_state *cs;     /* for reference-frame embeddings */
    q3t_sdec_stream *dec;
    int D, G, hop;
    /* Text: the template head and the text not yet tokenized (pending), the
     * ids so far (all of them once the text ended), the layout and its rows
     * embedded ([prefill + n_trail, D]); in the streaming text mode the rows
     * grow as text arrives (q3t_stream_feed) and reach the codegen then. */
    q3t_text_mode mode;
    q3t_codec_prefix prefix;
    ctts_strbuf pending;
    size_t text_bytes;
    size_t tried; /* pending bytes at the last look that found no cut (0: none) */
    int32_t *ids;
    size_t n_ids, ids_cap;
    int32_t *ref_ids; /* Base ICL: the transcript's prompt ids */
    size_t n_ref_ids;
    float *xvec;      /* [D] the voice's speaker vector (has_xvec) */
    int has_xvec, text_ended, laid_out, n_trail;
    q3t_layout layout;
    float *rows;
    size_t rows_cap;
    float *pad;  /* [D] */
    q3t_codegen_params gp;
    int32_t *ref_codes; /* [n_ref, G] decoded first, audio dropped (ICL) */
    int n_ref, ref_cap;
    float *scratch;     /* [DEC_BATCH * hop] */
    int32_t codes[64];
    int started, prefilled, done, frame;
    /* Groups of frames decoded together (group_frames): the codes of two (one
     * generating while the other decodes when pipelined) and the audio the
     * side job decodes into. A group is decoded only when full (or at the end). */
    int32_t *bcodes[2]; /* [STEP_FRAMES * G] each */
    int bn[2];          /* frames in each */
    int cur;            /* the batch being decoded (pipelined) */
    float *bpcm;        /* [STEP_FRAMES * hop] */
    int made, lm_done, max_frames;
    int pipe_mode;        /* this utterance: 1 pipeline at once, -1 when ahead, 0 never */
    int pipe;             /* 1 while pipelined */
    int unpipe;           /* end the pipeline at the next step (other streams step along) */
    double first_audio_at; /* now_ms() when the first frame's audio was returned */
    ctts_backend *be_dec; /* one thread: the decoder as s->be's side job */
    int in_flight;
    double job_ms;
    ctts_status job_st;
    char job_err[256];
    q3t_frame_observer observer;
    void *observer_user;
    double prepare_ms, prefill_ms, lm_ms, decoder_ms;
    double first_lm_ms, first_decoder_ms;
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

size_t q3t_step_max_samples(const q3t_model *m) {
    return (size_t)STEP_FRAMES * (size_t)q3t_speech_decoder_hop(q3t_model_speech_decoder(m));
}

ctts_status q3t_stream_new(q3t_model *m, q3t_stream **out, char *err, size_t err_len) {
    if (!m || !out) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "stream: bad argument");
    *out = NULL;
    q3t_stream *s = calloc(1, sizeof *s);
    if (!s) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    s->m = m;
    s->cfg = q3t_model_config(m);
    s->tok = q3t_model_tokenizer(m);
    s->talker = q3t_model_talker(m);
    s->cp = q3t_model_code_predictor(m);
    s->sdec = q3t_model_speech_decoder(m);
    s->be = q3t_model_backend(m);
    s->n_threads = q3t_model_threads(m, &s->cpu_isa);
    s->D = s->cfg->talker.dec.hidden_size;
    s->G = s->cfg->talker.dec.num_code_groups;
    s->hop = q3t_speech_decoder_hop(s->sdec);
    ctts_status st = s->G <= (int)(sizeof s->codes / sizeof s->codes[0])
                         ? CTTS_OK
                         : ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "too many code groups");
    if (st == CTTS_OK) st = q3t_codegen_new(s->talker, s->cp, &s->gen, err, err_len);
    if (st == CTTS_OK) st = q3t_talker_state_new(s->talker, &s->ts, err, err_len);
    if (st == CTTS_OK) st = q3t_cp_state_new(s->cp, &s->cs, err, err_len);
    if (st == CTTS_OK)
        st = q3t_sdec_stream_new(s->sdec, DEC_BATCH, Q3T_SDEC_CHUNK, Q3T_SDEC_CONTEXT, &s->dec, err,
                                 err_len);
    if (st == CTTS_OK) {
        s->pad = malloc((size_t)s->D * sizeof *s->pad);
        s->scratch = malloc((size_t)DEC_BATCH * s->hop * sizeof *s->scratch);
        s->bpcm = malloc((size_t)STEP_FRAMES * s->hop * sizeof *s->bpcm);
        for (int i = 0; i < 2; i++)
            s->bcodes[i] = malloc((size_t)STEP_FRAMES * s->G * sizeof *s->bcodes[i]);
        if (!s->pad || !s->scratch || !s->bpcm || !s->bcodes[0] || !s->bcodes[1])
            st = ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    if (st != CTTS_OK) {
        q3t_stream_free(s);
        return st;
    }
    *out = s;
    return CTTS_OK;
}

void q3t_stream_free(q3t_stream *s) {
    if (!s) return;
    if (s->in_flight) s->be->side_wait(s->be);
    if (s->be_dec) s->be_dec->destroy(s->be_dec);
    free(s->bpcm);
    free(s->bcodes[0]);
    free(s->bcodes[1]);
    q3t_codegen_free(s->gen);
    q3t_talker_state_free(s->ts);
    q3t_cp_state_free(s->cs);
    q3t_sdec_stream_free(s->dec);
    free(s->ids);
    free(s->pending.p);
    free(s->ref_ids);
    free(s->xvec);
    q3t_layout_free(&s->layout);
    free(s->rows);
    free(s->pad);
    free(s->ref_codes);
    free(s->scratch);
    free(s);
}

/* Generation parameters -> codegen parameters, every field checked. */
static ctts_status make_codegen_params(const q3t_model *m, const ctts_gen_params *p,
                                       q3t_codegen_params *out, char *err, size_t err_len) {
    if (!(p->temperature >= 0 && isfinite(p->temperature)))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "temperature must be a number >= 0 (0 = greedy), got %g",
                        (double)p->temperature);
    if (p->top_k < 0)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "top_k must be >= 0 (0 = off), got %d",
                        p->top_k);
    if (!(p->top_p > 0 && p->top_p <= 1))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "top_p must be in (0, 1], got %g",
                        (double)p->top_p);
    if (!(p->repetition_penalty > 0 && isfinite(p->repetition_penalty)))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "repetition_penalty must be a number > 0 (1 = off), got %g",
                        (double)p->repetition_penalty);
    if (p->max_new_tokens < 0)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "max_new_tokens must be >= 0 (0 = the model's default), got %d",
                        p->max_new_tokens);
    memset(out, 0, sizeof *out);
    const int sample = p->temperature > 0;
    out->talker = (nn_sampling_params){.do_sample = sample,
                                       .temperature = sample ? p->temperature : 1.0f,
                                       .top_k = p->top_k, .top_p = p->top_p,
                                       .repetition_penalty = p->repetition_penalty};
    out->predictor = out->talker;
    out->predictor.repetition_penalty = 1.0f;
    out->max_new_tokens = p->max_new_tokens ? p->max_new_tokens : q3t_model_config(m)->gen.max_new_tokens;
    out->min_new_tokens = p->ignore_eos ? INT_MAX : 0;
    out->seed = p->seed;
    return CTTS_OK;
}

static ctts_status append_pending(q3t_stream *s, const char *t, size_t n, char *err,
                                  size_t err_len) {
    ctts_strbuf_put(&s->pending, t, n);
    return s->pending.oom ? ctts_err(err, err_len, CTTS_E_OOM, "out of memory") : CTTS_OK;
}

/* Room for n rows in s->rows. */
static ctts_status rows_room(q3t_stream *s, size_t n, char *err, size_t err_len) {
    if (n > SIZE_MAX / sizeof(float) / (size_t)s->D)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text too long");
    if (n * s->D <= s->rows_cap) return CTTS_OK;
    size_t cap = n * s->D * 2;
    float *r = realloc(s->rows, cap * sizeof *r);
    if (!r) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    s->rows = r;
    s->rows_cap = cap;
    return CTTS_OK;
}

/* Every row takes a talker position (a trailing row is the input of one
 * frame): text that cannot fit them is refused, not embedded. */
static ctts_status check_rows(const q3t_stream *s, int n_prefill, int n_trailing, char *err,
                              size_t err_len) {
    const int max_pos = s->cfg->talker.dec.max_position_embeddings;
    if (n_prefill > max_pos || n_trailing > max_pos - n_prefill)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "text too long: %d prompt and %d text rows, the talker has %d positions",
                        n_prefill, n_trailing, max_pos);
    return CTTS_OK;
}

/* Embeds the layout's rows from s->ids (plus, while the text goes on, stand-in
 * template-tail ids: the layout slices them off, and the P_e row it ends the
 * trailing rows with is dropped until the text really ends). */
static ctts_status lay_out(q3t_stream *s, char *err, size_t err_len) {
    const q3t_config *c = s->cfg;
    const int provisional = !s->text_ended;
    int32_t *ids = s->ids;
    size_t n_ids = s->n_ids;
    if (provisional) {
        ids = malloc((n_ids + Q3T_PROMPT_TAIL_IDS) * sizeof *ids);
        if (!ids) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        memcpy(ids, s->ids, n_ids * sizeof *ids);
        for (int i = 0; i < Q3T_PROMPT_TAIL_IDS; i++) ids[n_ids++] = c->tts_pad_token_id;
    }
    ctts_status st = q3t_prompt_layout(c, &s->prefix, ids, n_ids, s->ref_ids, s->n_ref_ids,
                                       s->n_ref, s->mode, &s->layout, err, err_len);
    if (provisional) free(ids);
    if (st != CTTS_OK) return st;
    if (provisional) s->layout.n_trailing--; /* the P_e row */
    st = check_rows(s, s->layout.n_prefill, s->layout.n_trailing, err, err_len);
    if (st != CTTS_OK) return st;
    const int n_rows = s->layout.n_prefill + s->layout.n_trailing;
    st = rows_room(s, (size_t)n_rows, err, err_len);
    if (st == CTTS_OK)
        st = q3t_prompt_embed(s->talker, s->ts, s->cp, s->cs, s->layout.rows, n_rows,
                              s->has_xvec ? s->xvec : NULL, s->n_ref ? s->ref_codes : NULL,
                              s->n_ref, s->rows, err, err_len);
    if (st == CTTS_OK) {
        q3t_row pad_row = {Q3T_SRC_TEXT, Q3T_SRC_NONE, s->layout.pad_token, 0};
        st = q3t_prompt_embed(s->talker, s->ts, NULL, NULL, &pad_row, 1, NULL, NULL, 0, s->pad,
                              err, err_len);
    }
    if (st != CTTS_OK) return st;
    s->n_trail = s->layout.n_trailing;
    s->laid_out = 1;
    return CTTS_OK;
}

/* Appends the trailing rows T(ids[from..to)) and, at the end of the text,
 * P_e; a prefilled generation gets them at once. */
static ctts_status add_trailing(q3t_stream *s, size_t from, size_t to, int eos, char *err,
                                size_t err_len) {
    if (to - from > (size_t)INT_MAX - 1) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text too long");
    const int n = (int)(to - from) + (eos ? 1 : 0);
    if (n <= 0) return CTTS_OK;
    ctts_status st = check_rows(s, s->layout.n_prefill, s->n_trail + n, err, err_len);
    if (st != CTTS_OK) return st;
    q3t_row *r = malloc((size_t)n * sizeof *r);
    if (!r) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    for (size_t i = from; i < to; i++) r[i - from] = (q3t_row){Q3T_SRC_TEXT, Q3T_SRC_NONE, s->ids[i], 0};
    if (eos) r[n - 1] = (q3t_row){Q3T_SRC_TEXT, Q3T_SRC_NONE, s->cfg->tts_eos_token_id, 0};
    const size_t at = (size_t)s->layout.n_prefill + (size_t)s->n_trail;
    st = rows_room(s, at + (size_t)n, err, err_len);
    float *dst = s->rows + at * s->D;
    if (st == CTTS_OK)
        st = q3t_prompt_embed(s->talker, s->ts, NULL, NULL, r, n, NULL, NULL, 0, dst, err, err_len);
    free(r);
    if (st == CTTS_OK && s->prefilled) st = q3t_codegen_add_trailing(s->gen, dst, n, err, err_len);
    if (st == CTTS_OK) s->n_trail += n;
    return st;
}

/* Tokenizes what of the pending text can no longer change (all of it when
 * final) and turns it into rows: the layout once the prefill's text is
 * known (streaming text mode) or at the end, trailing rows after that. */
static ctts_status take_text(q3t_stream *s, int final, char *err, size_t err_len) {
    /* A long run without a cut (one huge word) is looked at again only once
     * it has doubled, so text fed byte by byte costs linear time. */
    if (!final && s->tried > 256 && s->pending.len < 2 * s->tried) return CTTS_OK;
    int32_t *ids = NULL;
    size_t n = 0, used = 0;
    ctts_status st = bpe_encode_stable(s->tok, s->pending.p, s->pending.len, final, &ids, &n, &used,
                                       err, err_len);
    if (st != CTTS_OK) return st;
    if (s->n_ids + n > s->ids_cap) {
        size_t cap = (s->n_ids + n) * 2;
        int32_t *q = realloc(s->ids, cap * sizeof *q);
        if (!q) {
            free(ids);
            return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        }
        s->ids = q;
        s->ids_cap = cap;
    }
    if (n) memcpy(s->ids + s->n_ids, ids, n * sizeof *ids);
    free(ids);
    const size_t before = s->n_ids;
    s->n_ids += n;
    memmove(s->pending.p, s->pending.p + used, s->pending.len - used + 1);
    s->pending.len -= used;
    s->tried = used ? 0 : s->pending.len;
    if (final) s->text_ended = 1;
    if (s->laid_out) {
        /* streaming text mode: new text ids (the template tail's excluded) */
        size_t to = final ? s->n_ids - Q3T_PROMPT_TAIL_IDS : s->n_ids;
        return add_trailing(s, before, to > before ? to : before, final, err, err_len);
    }
    if (final) return lay_out(s, err, err_len);
    /* The prefill needs the first text token (streaming) or, with a reference,
     * X[:t2] of reference transcript + text; the layout is then final. */
    const size_t n_text = s->n_ids > 3 ? s->n_ids - 3 : 0;
    size_t need = 1;
    if (s->n_ref) {
        const size_t ref_text = s->n_ref_ids > 5 ? s->n_ref_ids - 5 : 0, t2 = (size_t)s->n_ref + 1;
        need = t2 > ref_text ? t2 - ref_text : 0;
        if (need == 0) need = 1; /* keep the three role ids certain */
    }
    return s->mode == Q3T_TEXT_STREAMING && n_text >= need ? lay_out(s, err, err_len) : CTTS_OK;
}

ctts_status q3t_stream_begin(q3t_stream *s, const q3t_voice *voice, const ctts_gen_params *p,
                             char *err, size_t err_len) {
    if (!s || !p) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "stream: bad argument");
    const double t0 = now_ms();
    const q3t_config *c = s->cfg;
    s->started = s->prefilled = s->done = 0;
    s->frame = 0;
    s->n_ref = 0;
    s->prepare_ms = s->prefill_ms = s->lm_ms = s->decoder_ms = 0;
    s->first_lm_ms = s->first_decoder_ms = 0;
    q3t_layout_free(&s->layout);
    s->n_ids = s->pending.len = s->text_bytes = s->n_ref_ids = 0;
    s->pending.oom = 0;
    s->tried = 0;
    s->text_ended = s->laid_out = s->n_trail = s->has_xvec = 0;

    ctts_status st = make_codegen_params(s->m, p, &s->gp, err, err_len);
    if (st != CTTS_OK) return st;
    if (p->max_frames < 0)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "max_frames must be >= 0 (0 = no cap), got %d", p->max_frames);
    if (p->pipeline < -1 || p->pipeline > 1)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "pipeline must be -1, 0 or 1, got %d",
                        p->pipeline);
    if (s->in_flight) { /* a decode of the previous utterance still running */
        s->be->side_wait(s->be);
        s->in_flight = 0;
    }
    s->max_frames = p->max_frames;
    s->made = s->lm_done = 0;
    s->bn[0] = s->bn[1] = s->cur = 0;
    s->pipe_mode = p->pipeline == 1                                          ? 1
                   : p->pipeline == -1 && s->n_threads == PIPE_AUTO_THREADS ? -1
                                                                             : 0;
    s->pipe = s->unpipe = 0;
    if (p->text_mode < CTTS_TEXT_MODE_AUTO || p->text_mode > CTTS_TEXT_MODE_STREAMING)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text_mode %d is not a ctts_text_mode",
                        (int)p->text_mode);
    s->mode = p->text_mode == CTTS_TEXT_MODE_STREAMING       ? Q3T_TEXT_STREAMING
              : p->text_mode == CTTS_TEXT_MODE_NON_STREAMING ? Q3T_TEXT_NON_STREAMING
              : c->model_type == Q3T_TYPE_BASE               ? Q3T_TEXT_STREAMING
                                                             : Q3T_TEXT_NON_STREAMING;
    const char *speaker = p->speaker && *p->speaker ? p->speaker : NULL;
    switch (c->model_type) {
    case Q3T_TYPE_CUSTOM_VOICE:
        if (voice)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "this custom_voice model speaks with built-in speakers (set the "
                            "speaker), not with a cloned voice");
        if (!speaker) {
            char names[512] = "";
            size_t w = 0;
            for (int i = 0; i < c->talker.n_speakers && w < sizeof names; i++)
                w += (size_t)snprintf(names + w, sizeof names - w, "%s%s", i ? ", " : "",
                                      c->talker.speakers[i].name);
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "a speaker is required for this model (one of: %s)", names);
        }
        break;
    case Q3T_TYPE_BASE:
        if (voice && (voice->dim != s->D || voice->groups != s->G))
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "the voice was made for another model (width %d, %d code groups)",
                            voice->dim, voice->groups);
        if (speaker)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "this base model clones a voice; 'speaker' is for custom_voice models");
        if (!voice)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                            "this base model needs a voice to clone (a reference recording)");
        break;
    case Q3T_TYPE_VOICE_DESIGN:
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "voice_design models (voices described by an instruction) are not "
                        "supported yet");
    }
    st = q3t_prompt_codec_prefix(c, speaker, voice != NULL, p->language, &s->prefix, err, err_len);
    if (st != CTTS_OK) return st;
    const int n_ref = voice ? voice->n_ref_frames : 0;
    if (n_ref) {
        free(s->ref_ids);
        s->ref_ids = NULL;
        st = q3t_prompt_ref_ids(s->tok, voice->ref_text, strlen(voice->ref_text), &s->ref_ids,
                                &s->n_ref_ids, err, err_len);
        if (st != CTTS_OK) return st;
    }
    /* the voice's parts are copied: the prefill may come after begin returns */
    if (voice) {
        if (!s->xvec) s->xvec = malloc((size_t)s->D * sizeof *s->xvec);
        if (!s->xvec) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        memcpy(s->xvec, voice->xvector, (size_t)s->D * sizeof *s->xvec);
        s->has_xvec = 1;
    }
    if (n_ref > s->ref_cap) {
        int32_t *rc = realloc(s->ref_codes, (size_t)n_ref * s->G * sizeof *rc);
        if (!rc) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
        s->ref_codes = rc, s->ref_cap = n_ref;
    }
    if (n_ref) memcpy(s->ref_codes, voice->ref_codes, (size_t)n_ref * s->G * sizeof *s->ref_codes);
    s->n_ref = n_ref;
    st = append_pending(s, Q3T_PROMPT_HEAD, strlen(Q3T_PROMPT_HEAD), err, err_len);
    if (st != CTTS_OK) return st;
    q3t_sdec_stream_reset(s->dec);
    s->started = 1;
    s->prepare_ms = now_ms() - t0;
    return CTTS_OK;
}

ctts_status q3t_stream_feed(q3t_stream *s, const char *utf8, size_t n, char *err, size_t err_len) {
    if (!s || (!utf8 && n)) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "stream: bad argument");
    if (!s->started || s->text_ended)
        return ctts_err(err, err_len, CTTS_E_STATE, "stream: text fed out of order");
    if (n > TEXT_MAX - s->text_bytes)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text longer than %zu bytes", TEXT_MAX);
    if (n && memchr(utf8, 0, n)) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "text holds a NUL byte");
    const double t0 = now_ms();
    ctts_status st = append_pending(s, utf8, n, err, err_len);
    s->text_bytes += n;
    if (st == CTTS_OK && s->mode == Q3T_TEXT_STREAMING) st = take_text(s, 0, err, err_len);
    s->prepare_ms += now_ms() - t0;
    return st;
}

ctts_status q3t_stream_end(q3t_stream *s, char *err, size_t err_len) {
    if (!s) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "stream: bad argument");
    if (!s->started || s->text_ended)
        return ctts_err(err, err_len, CTTS_E_STATE, "stream: text ended out of order");
    const double t0 = now_ms();
    ctts_status st = append_pending(s, Q3T_PROMPT_TAIL, strlen(Q3T_PROMPT_TAIL), err, err_len);
    if (st == CTTS_OK) st = take_text(s, 1, err, err_len);
    s->prepare_ms += now_ms() - t0;
    return st;
}

ctts_status q3t_stream_start(q3t_stream *s, const q3t_voice *voice, const ctts_gen_params *p,
                             const char *text, char *err, size_t err_len) {
    if (!text) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "stream: bad argument");
    ctts_status st = q3t_stream_begin(s, voice, p, err, err_len);
    if (st == CTTS_OK) st = q3t_stream_feed(s, text, strlen(text), err, err_len);
    if (st == CTTS_OK) st = q3t_stream_end(s, err, err_len);
    return st;
}

/* 1 when the next frame's text row is known: frame f > 0 adds trailing row
 * f - 1 (the pad row past the end of the text). */
static int text_ready(const q3t_stream *s) {
    return s->laid_out && (s->text_ended || s->made == 0 || s->made - 1 < s->n_trail);
}

/* 1 while s may make another frame now (at the frame cap it is done; it
 * waits while its next text row is unknown). */
static int wants_frame(q3t_stream *s) {
    if (!s->lm_done && s->max_frames > 0 && s->made >= s->max_frames) s->lm_done = 1;
    return !s->lm_done && text_ready(s);
}

/* Status of a step that made no frame: the end, or waiting for text. */
static ctts_status no_frame(const q3t_stream *s) { return s->lm_done ? CTTS_DONE : CTTS_OK; }

/* Frame c was made. */
static void frame_made(q3t_stream *s, const int32_t *c) {
    if (s->observer) s->observer(s->observer_user, s->made, c);
    s->made++;
}

/* Generates up to want frames into codes ([want, G]); *got frames were made
 * (fewer at the end: EOS, the token or frame cap). */
static ctts_status gen_frames(q3t_stream *s, int32_t *codes, int want, int *got, char *err,
                              size_t err_len) {
    *got = 0;
    while (*got < want && wants_frame(s)) {
        int32_t *c = codes + (size_t)*got * s->G;
        const double t0 = now_ms();
        ctts_status st = q3t_codegen_next(s->gen, c, err, err_len);
        s->lm_ms += now_ms() - t0;
        if (st == CTTS_DONE) {
            s->lm_done = 1;
            break;
        }
        if (st != CTTS_OK) return st;
        frame_made(s, c);
        (*got)++;
    }
    return CTTS_OK;
}

/* Side job: decodes batch cur into bpcm. */
static void decode_job(void *ctx) {
    q3t_stream *s = ctx;
    const double t0 = now_ms();
    s->job_st = q3t_sdec_stream_decode(s->dec, s->bcodes[s->cur], s->bn[s->cur], s->bpcm,
                                       s->job_err, sizeof s->job_err);
    s->job_ms = now_ms() - t0;
}

/* The decoder's one-thread backend, made on first use. */
static ctts_status pipe_setup(q3t_stream *s, char *err, size_t err_len) {
    if (!s->be->side_run || s->n_threads < 2)
        return ctts_err(err, err_len, CTTS_E_BACKEND, "no side thread to decode on");
    if (!s->be_dec) s->be_dec = ctts_backend_cpu_new(1, s->cpu_isa);
    if (!s->be_dec) return ctts_err(err, err_len, CTTS_E_BACKEND, "cannot start the decoder");
    return CTTS_OK;
}

/* Runs the decoder on all threads (pipe 0) or on the side thread (pipe 1). */
static void set_exec(q3t_stream *s, int pipe) {
    q3t_sdec_stream_set_exec(s->dec, pipe ? s->be_dec : NULL);
}

/* Waits for the batch being decoded and copies its audio out. */
static ctts_status take_flight(q3t_stream *s, float *pcm, size_t *n, char *err, size_t err_len) {
    s->be->side_wait(s->be);
    s->in_flight = 0;
    s->decoder_ms += s->job_ms;
    if (s->job_st != CTTS_OK) return ctts_err(err, err_len, s->job_st, "%s", s->job_err);
    const size_t k = (size_t)s->bn[s->cur] * (size_t)s->hop;
    memcpy(pcm, s->bpcm, k * sizeof *pcm);
    *n = k;
    s->frame += s->bn[s->cur];
    s->bn[s->cur] = 0;
    return CTTS_OK;
}

/* Frames group g (the one being filled: its frames are the last made) still
 * takes. */
static int group_room(const q3t_stream *s, int g) {
    return group_frames(s->made - s->bn[g]) - s->bn[g];
}

/* Generates into group g until it is full or s must wait or stop. */
static ctts_status fill_group(q3t_stream *s, int g, char *err, size_t err_len) {
    int got = 0;
    ctts_status st = gen_frames(s, s->bcodes[g] + (size_t)s->bn[g] * s->G, group_room(s, g), &got,
                                err, err_len);
    s->bn[g] += got;
    return st;
}

/* 1 when group g is to be decoded: full, or the last one. */
static int group_ready(const q3t_stream *s, int g) {
    return (s->bn[g] > 0 && group_room(s, g) == 0) || (s->lm_done && s->bn[g] > 0);
}

/* Ends pipelining with nothing in flight: the group being filled moves to
 * slot 0, where the sequential steps fill and decode. */
static void stop_pipe(q3t_stream *s) {
    if (s->cur != 0) {
        memcpy(s->bcodes[0], s->bcodes[s->cur], (size_t)s->bn[s->cur] * s->G * sizeof *s->bcodes[0]);
        s->bn[0] = s->bn[s->cur];
        s->bn[s->cur] = 0;
        s->cur = 0;
    }
    s->pipe = s->unpipe = s->pipe_mode = 0; /* sequential for the rest of the utterance */
    set_exec(s, 0);
}

/* Starts pipelining as pipe_mode says (see PIPE_AUTO_THREADS). */
static void maybe_pipe(q3t_stream *s) {
    if (s->pipe || !s->pipe_mode || s->in_flight) return;
    if (s->pipe_mode < 0) {
        const double frame_ms = 1000.0 * s->hop / s->cfg->codec.output_sample_rate;
        const double lead = s->frame * frame_ms - (now_ms() - s->first_audio_at);
        /* the first pipelined step returns its group after generating it and
         * the next one, the latter while the decoder takes a core (~1.3x) */
        const int g = group_frames(s->made), g2 = group_frames(s->made + g);
        if (lead <= (g + 1.3 * g2) * s->lm_ms / s->made) return;
    }
    char e[128];
    if (pipe_setup(s, e, sizeof e) != CTTS_OK) {
        s->pipe_mode = 0; /* no second thread: go on sequentially */
        return;
    }
    s->pipe = 1;
    set_exec(s, 1);
}

/* Step of a pipelined stream after the first frame: the next group is
 * generated while the side thread decodes the previous one. */
static ctts_status step_pipelined(q3t_stream *s, float *pcm, size_t *n, char *err,
                                  size_t err_len) {
    if (!s->in_flight) {
        /* nothing decoding: fill a group and hand it over */
        ctts_status st = fill_group(s, s->cur, err, err_len);
        if (st != CTTS_OK) return st;
        if (!group_ready(s, s->cur)) return no_frame(s);
        s->be->side_run(s->be, decode_job, s);
        s->in_flight = 1;
    }
    const int next = s->cur ^ 1;
    ctts_status st = fill_group(s, next, err, err_len);
    ctts_status st2 = take_flight(s, pcm, n, err, err_len);
    if (st2 != CTTS_OK) return st2;
    if (st != CTTS_OK) return st;
    s->cur = next;
    if (s->unpipe) {
        stop_pipe(s);
        return CTTS_OK;
    }
    if (group_ready(s, next)) {
        s->be->side_run(s->be, decode_job, s);
        s->in_flight = 1;
    }
    return CTTS_OK;
}

ctts_status q3t_stream_step(q3t_stream *s, float *pcm, size_t *n, char *err, size_t err_len) {
    if (!s || !pcm || !n) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "stream: bad argument");
    *n = 0;
    if (!s->started) return ctts_err(err, err_len, CTTS_E_STATE, "stream: step before start");
    if (s->done) return CTTS_DONE;
    if (!wants_frame(s) && !s->lm_done) return CTTS_OK; /* more text first */
    ctts_status st = CTTS_OK;
    if (!s->prefilled) {
        set_exec(s, 0);
        /* Reference frames (ICL) go through the decoder first; their audio is dropped. */
        double t0 = now_ms();
        for (int f = 0; f < s->n_ref && st == CTTS_OK; f += DEC_BATCH) {
            int k = s->n_ref - f < DEC_BATCH ? s->n_ref - f : DEC_BATCH;
            st = q3t_sdec_stream_decode(s->dec, s->ref_codes + (size_t)f * s->G, k, s->scratch,
                                        err, err_len);
        }
        double t1 = now_ms();
        s->decoder_ms += t1 - t0;
        ctts_backend_stage(s->be, CTTS_STAGE_PREFILL);
        if (st == CTTS_OK)
            st = q3t_codegen_begin(s->gen, s->rows, s->layout.n_prefill,
                                   s->rows + (size_t)s->layout.n_prefill * s->D, s->n_trail,
                                   s->pad, &s->gp, err, err_len);
        s->prefill_ms += now_ms() - t1;
        if (st != CTTS_OK) {
            s->done = 1;
            return st;
        }
        s->prefilled = 1;
    }
    if (s->made == 0) {
        /* The first frame alone on every thread: the lowest time to first audio. */
        int got = 0;
        const double t0 = now_ms();
        st = gen_frames(s, s->bcodes[0], 1, &got, err, err_len);
        const double t1 = now_ms();
        if (st == CTTS_OK && got == 0) st = CTTS_DONE;
        if (st == CTTS_OK) st = q3t_sdec_stream_decode(s->dec, s->bcodes[0], 1, pcm, err, err_len);
        const double t2 = now_ms();
        if (st != CTTS_OK) {
            s->done = 1;
            return st;
        }
        s->decoder_ms += t2 - t1;
        s->first_lm_ms = t1 - t0;
        s->first_decoder_ms = t2 - t1;
        s->frame = 1;
        *n = (size_t)s->hop;
        s->first_audio_at = now_ms();
        return CTTS_OK;
    }
    if (s->pipe && s->unpipe && !s->in_flight) stop_pipe(s);
    maybe_pipe(s);
    if (s->pipe) {
        st = step_pipelined(s, pcm, n, err, err_len);
    } else {
        st = fill_group(s, 0, err, err_len);
        if (st == CTTS_OK && !group_ready(s, 0)) return no_frame(s);
        const double t0 = now_ms();
        if (st == CTTS_OK)
            st = q3t_sdec_stream_decode(s->dec, s->bcodes[0], s->bn[0], pcm, err, err_len);
        s->decoder_ms += now_ms() - t0;
        if (st == CTTS_OK) {
            *n = (size_t)s->bn[0] * (size_t)s->hop;
            s->frame += s->bn[0];
            s->bn[0] = 0;
        }
    }
    if (st != CTTS_OK) s->done = 1;
    return st;
}

/* 1 when s's next step only generates and decodes frames (no prefill, not
 * the first frame, no pipeline): the steps several streams can share. */
static int plain_step(const q3t_stream *s) {
    return s->started && !s->done && s->prefilled && s->made > 0 && !s->pipe && !s->lm_done &&
           text_ready(s);
}

void q3t_stream_step_many(q3t_stream *const *s, int B, float *const *pcm, size_t *n,
                          ctts_status *res, char *const *err, size_t err_len) {
    q3t_stream *batch[Q3T_MAX_BATCH];
    int nb = 0;
    for (int i = 0; i < B; i++) {
        n[i] = 0;
        /* several streams: a pipelined one ends its pipeline (this step) and
         * steps with the others from the next; none starts one */
        if (B > 1) {
            if (s[i]->pipe) s[i]->unpipe = 1;
            else s[i]->pipe_mode = 0;
        }
        if (B <= Q3T_MAX_BATCH && plain_step(s[i]) && s[i]->m == s[0]->m)
            batch[nb++] = s[i], res[i] = CTTS_OK;
        else
            res[i] = q3t_stream_step(s[i], pcm[i], &n[i], err[i], err_len);
    }
    if (!nb) return;
    /* up to STEP_FRAMES rounds of one frame for every stream still generating */
    q3t_codegen *g[Q3T_MAX_BATCH];
    int32_t *out[Q3T_MAX_BATCH];
    ctts_status r[Q3T_MAX_BATCH], fail = CTTS_OK;
    char fail_err[256] = "";
    int idx[Q3T_MAX_BATCH];
    for (int f = 0; f < STEP_FRAMES && fail == CTTS_OK; f++) {
        int ng = 0;
        for (int k = 0; k < nb; k++)
            if (group_room(batch[k], 0) > 0 && wants_frame(batch[k]))
                g[ng] = batch[k]->gen, out[ng] = batch[k]->bcodes[0] + (size_t)batch[k]->bn[0] * batch[k]->G,
                idx[ng++] = k;
        if (!ng) break;
        const double t0 = now_ms();
        fail = q3t_codegen_next_many(g, ng, out, r, fail_err, sizeof fail_err);
        const double per = (now_ms() - t0) / ng;
        for (int j = 0; j < ng && fail == CTTS_OK; j++) {
            q3t_stream *q = batch[idx[j]];
            q->lm_ms += per;
            if (r[j] == CTTS_DONE) {
                q->lm_done = 1;
            } else {
                frame_made(q, out[j]);
                q->bn[0]++;
            }
        }
    }
    /* each stream decodes its own frames (a failed batch fails them all) */
    for (int i = 0, k = 0; i < B && k < nb; i++) {
        q3t_stream *q = s[i];
        if (q != batch[k]) continue;
        k++;
        if (fail != CTTS_OK) res[i] = ctts_err(err[i], err_len, fail, "%s", fail_err);
        else if (!group_ready(q, 0)) {
            res[i] = no_frame(q);
            if (res[i] == CTTS_OK) continue; /* waiting for text */
        } else {
            const double t0 = now_ms();
            res[i] = q3t_sdec_stream_decode(q->dec, q->bcodes[0], q->bn[0], pcm[i], err[i], err_len);
            q->decoder_ms += now_ms() - t0;
        }
        if (res[i] != CTTS_OK) {
            q->done = 1;
            continue;
        }
        n[i] = (size_t)q->bn[0] * (size_t)q->hop;
        q->frame += q->bn[0];
        q->bn[0] = 0;
    }
}

void q3t_stream_times(const q3t_stream *s, double *prepare_ms, double *prefill_ms, double *lm_ms,
                      double *decoder_ms) {
    if (prepare_ms) *prepare_ms = s ? s->prepare_ms : 0;
    if (prefill_ms) *prefill_ms = s ? s->prefill_ms : 0;
    if (lm_ms) *lm_ms = s ? s->lm_ms : 0;
    if (decoder_ms) *decoder_ms = s ? s->decoder_ms : 0;
}

void q3t_stream_first_frame_times(const q3t_stream *s, double *lm_ms, double *decoder_ms) {
    if (lm_ms) *lm_ms = s ? s->first_lm_ms : 0;
    if (decoder_ms) *decoder_ms = s ? s->first_decoder_ms : 0;
}

int q3t_stream_pipelined(const q3t_stream *s) { return s && s->pipe; }

void q3t_stream_set_observer(q3t_stream *s, q3t_frame_observer fn, void *user) {
    s->observer = fn;
    s->observer_user = user;
}

const int32_t *q3t_stream_prompt_ids(const q3t_stream *s, size_t *n) {
    *n = s->n_ids;
    return s->ids;
}
const float *q3t_stream_rows(const q3t_stream *s, int *n_prefill, int *n_trailing) {
    *n_prefill = s->laid_out ? s->layout.n_prefill : 0;
    *n_trailing = s->laid_out ? s->n_trail : 0;
    return s->rows;
}
const float *q3t_stream_pad_row(const q3t_stream *s) { return s->pad; }

q3t_codegen *q3t_stream_codegen(q3t_stream *s) { return s->gen; }

const int32_t *q3t_stream_first_codes(const q3t_stream *s, int *n) {
    if (!s->prefilled) {
        *n = 0;
        return NULL;
    }
    return q3t_codegen_first_codes(s->gen, n);
}

int q3t_stream_stop_reason(const q3t_stream *s) {
    return s->prefilled ? (int)q3t_codegen_stop_reason(s->gen) : 0;
}
