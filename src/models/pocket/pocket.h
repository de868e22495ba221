/*
 * Pocket TTS family: model (config + weights + tokenizer + FlowLM + Mimi),
 * voices (FlowLM KV state after the voice prompt) and the generation stream
 * (text chunks -> autoregressive latents -> Mimi audio, one 80 ms frame per
 * step). core/tts.c drives it through these functions.
 */
#ifndef CTTS_POCKET_H
#define CTTS_POCKET_H

#include <stdatomic.h>
#include <stdint.h>

#include "ctts.h"
#include "backend/backend.h"
#include "models/pocket/pocket_config.h"

typedef struct pocket_model pocket_model;
typedef struct pocket_voice pocket_voice;
typedef struct pocket_stream pocket_stream;

ctts_status pocket_model_load(const char *path, const ctts_model_params *p, pocket_model **out,
                              char *err, size_t err_len);
void pocket_model_free(pocket_model *m);
const pocket_config *pocket_model_config(const pocket_model *m);
/* The model's compute backend (profiling; streams may also use one-thread twins). */
ctts_backend *pocket_model_backend(pocket_model *m);
int64_t pocket_model_n_params(const pocket_model *m);
size_t pocket_model_describe(const pocket_model *m, char *buf, size_t len);
ctts_status pocket_tokenize(const pocket_model *m, const char *text, int prepared, int32_t **ids,
                            size_t *n, char *err, size_t err_len);

/* Voice from an exported state .safetensors. */
ctts_status pocket_voice_load(pocket_model *m, const char *path, pocket_voice **out, char *err,
                              size_t err_len);
ctts_status pocket_voice_save(const pocket_voice *v, const char *path, char *err, size_t err_len);
void pocket_voice_free(pocket_voice *v);
/* Voice cloned from mono pcm (n samples at sample_rate, any rate >= 1):
 * resample_poly to the Mimi rate, Mimi encoder, speaker projection (+ BOS),
 * FlowLM prefill. The whole buffer is used (no truncation here). Errors name
 * the stage (resample / encoder / prefill), CTTS_E_OOM. */
ctts_status pocket_voice_from_pcm(pocket_model *m, const float *pcm, size_t n, int sample_rate,
                                  pocket_voice **out, char *err, size_t err_len);
/* Prompt length of a voice (FlowLM positions, BOS included). */
int pocket_voice_length(const pocket_voice *v);
/* 32-byte identity of a loaded model for on-disk caches of derived data:
 * sha256 of its description (config, tensor names, dtypes, shapes) and of the
 * weight files' paths, sizes and modification times. CTTS_E_OOM only. */
ctts_status pocket_model_identity(const pocket_model *m, unsigned char id[32]);

ctts_gen_params pocket_default_gen_params(void);

/* Writes a config.yaml in the official schema for c whose weights_path is
 * weights_file and tokenizer_path tokenizer.model (pocket_random.c). */
ctts_status pocket_write_config(const pocket_config *c, const char *path, const char *weights_file,
                                const char *comment, char *err, size_t err_len);
/* Writes the loaded weights (as converted at load) to out_dir/model.gguf with a
 * config.yaml and the tokenizer beside it: a model directory that loads the
 * weights zero-copy (pocket_export.c). Errors: CTTS_E_IO, CTTS_E_UNSUPPORTED. */
ctts_status pocket_model_export_gguf(const pocket_model *m, const char *out_dir, char *err,
                                     size_t err_len);

/* A generation stream (owned by a session; reusable across texts):
 * begin -> feed* -> end, with step called at any point after begin. */
ctts_status pocket_stream_new(pocket_model *m, pocket_stream **out, char *err, size_t err_len);
void pocket_stream_free(pocket_stream *s);
/* Checks p, resets the stream for a new text (waits for a frame in flight). */
ctts_status pocket_stream_begin(pocket_stream *s, const pocket_voice *v, const ctts_gen_params *p,
                                char *err, size_t err_len);
/* Appends n bytes of text; chunks that can no longer change become available
 * to step. CTTS_E_STATE after pocket_stream_end. */
ctts_status pocket_stream_feed(pocket_stream *s, const char *utf8, size_t n, char *err,
                               size_t err_len);
/* End of the text: the remaining chunks are made (text errors show here). */
ctts_status pocket_stream_end(pocket_stream *s, char *err, size_t err_len);
/* begin + feed(text) + end. */
ctts_status pocket_stream_start(pocket_stream *s, const pocket_voice *v, const ctts_gen_params *p,
                                const char *text, char *err, size_t err_len);
/* Computes the next frame into pcm[frame_size]: CTTS_OK with *n = frame_size;
 * CTTS_OK with *n = 0 when more text is needed first (before end only);
 * CTTS_DONE with *n = 0 when every chunk has ended; or an error. */
ctts_status pocket_stream_step(pocket_stream *s, float *pcm, size_t *n, char *err,
                               size_t err_len);
/* A flag another thread sets to stop the stream: step returns
 * CTTS_E_CANCELLED within one frame. NULL = none. */
void pocket_stream_set_cancel(pocket_stream *s, const atomic_int *flag);
/* Chunks of the current text known to be final so far (all after end). */
int pocket_stream_n_chunks(const pocket_stream *s);
int pocket_frame_size(const pocket_model *m);

/* Per-frame observer for tests and tools: called for every computed frame
 * (emitted or not) with its chunk index, step, latent (normalised) and EOS logit. */
typedef void (*pocket_frame_observer)(void *user, int chunk, int step, const float *latent,
                                      float eos_logit, int emitted);
void pocket_stream_set_observer(pocket_stream *s, pocket_frame_observer fn, void *user);

/* Stage times of the current / last stream (ms). */
typedef struct {
    double prepare_ms, prefill_ms, flowlm_ms, mimi_ms; /* totals */
    double first_text_ms;    /* text preparation, chunking and tokenizing before the first prefill */
    double first_prefill_ms; /* voice state copy + the first chunk's prefill, with its
                                first latent */
    double first_mimi_ms;    /* the first Mimi decode */
} pocket_stream_timing;
void pocket_stream_get_timing(const pocket_stream *s, pocket_stream_timing *t);

#endif
