/*
 * Pocket TTS family: model (config + weights + tokenizer + FlowLM + Mimi),
 * voices (FlowLM KV state after the voice prompt) and the generation stream
 * (text chunks -> autoregressive latents -> Mimi audio, one 80 ms frame per
 * step). core/tts.c drives it through these functions.
 */
#ifndef CTTS_POCKET_H
#define CTTS_POCKET_H

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
int64_t pocket_model_n_params(const pocket_model *m);
size_t pocket_model_describe(const pocket_model *m, char *buf, size_t len);
ctts_status pocket_tokenize(const pocket_model *m, const char *text, int prepared, int32_t **ids,
                            size_t *n, char *err, size_t err_len);

/* Voice from an exported state .safetensors. */
ctts_status pocket_voice_load(pocket_model *m, const char *path, pocket_voice **out, char *err,
                              size_t err_len);
ctts_status pocket_voice_save(const pocket_voice *v, const char *path, char *err, size_t err_len);
void pocket_voice_free(pocket_voice *v);

ctts_gen_params pocket_default_gen_params(void);

/* A generation stream (owned by a session; reusable across texts). */
ctts_status pocket_stream_new(pocket_model *m, pocket_stream **out, char *err, size_t err_len);
void pocket_stream_free(pocket_stream *s);
/* Prepares, chunks and tokenizes text; the first frame is computed by the next step. */
ctts_status pocket_stream_start(pocket_stream *s, const pocket_voice *v, const ctts_gen_params *p,
                                const char *text, char *err, size_t err_len);
/* Computes the next frame into pcm[frame_size]. CTTS_OK with *n = frame_size,
 * or CTTS_DONE with *n = 0 when every chunk has ended. */
ctts_status pocket_stream_step(pocket_stream *s, float *pcm, size_t *n, char *err,
                               size_t err_len);
int pocket_frame_size(const pocket_model *m);

/* Per-frame observer for tests and tools: called for every computed frame
 * (emitted or not) with its chunk index, step, latent (normalised) and EOS logit. */
typedef void (*pocket_frame_observer)(void *user, int chunk, int step, const float *latent,
                                      float eos_logit, int emitted);
void pocket_stream_set_observer(pocket_stream *s, pocket_frame_observer fn, void *user);
/* Stage times of the last stream (ms). */
void pocket_stream_times(const pocket_stream *s, double *prepare_ms, double *prefill_ms,
                         double *flowlm_ms, double *mimi_ms);

#endif
