/*
 * Model-family table: what core/tts.c needs from a family to load a model,
 * describe it, tokenize, make voices and run a generation stream.
 *
 * Data flow: ctts_model_load asks ctts_family_detect(path) which family a path
 * belongs to; a family found there is driven only through this table (the
 * model, voice and stream objects are opaque to core). The Pocket family is
 * still called directly by core/tts.c (its stream is being reworked for
 * incremental text); it is what ctts_family_detect answers NULL for.
 *
 * Not here: the public API, threading (a family's model must be shareable by
 * sessions; a stream is used by one thread at a time).
 */
#ifndef CTTS_MODELS_ARCH_H
#define CTTS_MODELS_ARCH_H

#include <stddef.h>
#include <stdint.h>

#include "ctts.h"

typedef struct ctts_family {
    const char *name; /* "qwen3tts" */
    /* 1 if path is a model of this family (cheap: reads a config file at most). */
    int (*detect)(const char *path);
    /* Loads the model; fills info (its strings must live as long as the model). */
    ctts_status (*model_load)(const char *path, const ctts_model_params *p, void **model,
                              ctts_model_info *info, char *err, size_t err_len);
    void (*model_free)(void *model);
    size_t (*model_describe)(const void *model, char *buf, size_t len);
    /* *ids malloc'd. prepared: the family's own "as the model sees it" form. */
    ctts_status (*tokenize)(const void *model, const char *text, int prepared, int32_t **ids,
                            size_t *n, char *err, size_t err_len);
    ctts_gen_params (*default_gen_params)(const void *model);
    /* A voice from a file or name; CTTS_E_UNSUPPORTED when the family has none. */
    ctts_status (*voice_load)(void *model, const char *path, void **voice, char *err,
                              size_t err_len);
    /* Writes a voice so voice_load reads it back; CTTS_E_UNSUPPORTED if it cannot. */
    ctts_status (*voice_save)(const void *voice, const char *path, char *err, size_t err_len);
    void (*voice_free)(void *voice);
    /* Largest number of samples one stream_step returns. */
    size_t (*max_step_samples)(const void *model);
    ctts_status (*stream_new)(void *model, void **stream, char *err, size_t err_len);
    void (*stream_free)(void *stream);
    /* The stream protocol of core/tts.c: begin (voice may be NULL; p is
     * complete) -> feed (any number of times) -> end -> step until CTTS_DONE.
     * step returns CTTS_OK with *n > 0 samples, CTTS_OK with *n = 0 while it
     * waits for more text, or CTTS_DONE with *n = 0. */
    ctts_status (*stream_begin)(void *stream, const void *voice, const ctts_gen_params *p,
                                char *err, size_t err_len);
    ctts_status (*stream_feed)(void *stream, const char *utf8, size_t n, char *err,
                               size_t err_len);
    ctts_status (*stream_end)(void *stream, char *err, size_t err_len);
    ctts_status (*stream_step)(void *stream, float *pcm, size_t *n, char *err, size_t err_len);
    /* stream_step of n distinct streams of one model at once (NULL member: the
     * family steps them one by one); res[i] / n_out[i] / err[i] per stream. */
    void (*stream_step_many)(void *const *streams, int n, float *const *pcm, size_t *n_out,
                             ctts_status *res, char *const *err, size_t err_len);
    /* Stage times of the current / last utterance into t: prepare_ms, prefill_ms,
     * flowlm_ms (the language model), mimi_ms (the audio decoder), first_*_ms. */
    void (*stream_times)(const void *stream, ctts_timings *t);
    /* ctts quantize: the loaded weights as a GGUF model folder (NULL member: none). */
    ctts_status (*export_gguf)(const void *model, const char *out_dir, char *err,
                               size_t err_len);
    /* Built-in speaker i (NULL past the end; NULL member: the family has none). */
    const char *(*speaker_name)(const void *model, int i);
    /* The backend whose profiler ctts_model_profile reads (NULL member: none). */
    struct ctts_backend *(*model_backend)(void *model);
} ctts_family;

/* The family whose detect accepts path, or NULL (core then tries Pocket). */
const ctts_family *ctts_family_detect(const char *path);

#endif
