/*
 * Mimi codec of Pocket TTS: streaming decoder (latent -> 24 kHz audio) and
 * encoder (audio -> latents, for voice cloning).
 *
 * Decoder, per latent: quantizer.output_proj (1x1 conv) -> depthwise
 * conv-transpose upsample to S = resample_stride steps at 200 Hz -> decoder
 * transformer (KV cache bounded by the context window) -> SEANet decoder
 * (causal convs / conv-transposes with streaming state) -> frame_size samples.
 * Encoder: zero-pad to a multiple of frame_size -> SEANet encoder -> encoder
 * transformer (positions from 0, context window) -> downsample conv
 * (replicate left padding) -> latents. It runs in pieces of a few frames with
 * the same streaming blocks, which equals one pass over the whole signal.
 *
 * Not here: emb_std / emb_mean de-normalisation of FlowLM latents (the
 * caller applies it), resampling of the input audio, config parsing.
 *
 * Threading: a pocket_mimi is immutable after bind and may be shared; each
 * stream uses its own pocket_mimi_dec.
 */
#ifndef CTTS_POCKET_MIMI_H
#define CTTS_POCKET_MIMI_H

#include <stddef.h>

#include "backend/backend.h"
#include "ctts.h"
#include "models/pocket/pocket_config.h"

/* Bound weights (views into the container, no copies) + config. */
typedef struct pocket_mimi pocket_mimi;

/* Checks cfg, looks up every Mimi tensor by its canonical single-file name
 * ("mimi.decoder.model.0.conv.weight", ...) and checks its exact shape and
 * dtype (F32; linear and conv weights may also be a dtype be->supports_dtype
 * accepts, except block-quantized types for convs). The tensors returned by
 * get must stay valid (and unchanged) until pocket_mimi_free. Errors:
 * "missing tensor 'NAME'" (CTTS_E_NOT_FOUND), "tensor 'NAME': expected shape
 * [..], got [..]" (CTTS_E_FORMAT), unsupported config (CTTS_E_UNSUPPORTED /
 * CTTS_E_INVALID_ARG), CTTS_E_OOM. *out is NULL on error. */
ctts_status pocket_mimi_bind(const pocket_mimi_config *cfg, ctts_backend *be,
                             pocket_weight_lookup get, void *get_ctx, pocket_mimi **out,
                             char *err, size_t err_len);
void pocket_mimi_free(pocket_mimi *m);

/* Names of every tensor bind looked up, in binding order (owned by m), so the
 * loader can report tensors that nothing uses. *n receives the count. */
const char *const *pocket_mimi_bound_names(const pocket_mimi *m, int *n);

/* The config m was bound with (derived fields filled in). */
const pocket_mimi_config *pocket_mimi_get_config(const pocket_mimi *m);

/* Streaming decoder state: conv states, transformer KV (bounded by the
 * context window, so streams of any length use constant memory) and scratch,
 * all allocated by pocket_mimi_dec_new; decoding allocates nothing. m must
 * outlive the decoder. */
typedef struct pocket_mimi_dec pocket_mimi_dec;
ctts_status pocket_mimi_dec_new(const pocket_mimi *m, pocket_mimi_dec **out, char *err,
                                size_t err_len);
/* Fresh state: zero conv states, empty cache, position 0. */
void pocket_mimi_dec_reset(pocket_mimi_dec *d);
void pocket_mimi_dec_free(pocket_mimi_dec *d);
/* Runs the decoder's ops on backend exec instead of the model's (NULL = the
 * model's again), e.g. a one-thread CPU backend on a worker thread. exec must
 * share the model backend's memory and kernels (same ISA cap). */
void pocket_mimi_dec_set_exec(pocket_mimi_dec *d, ctts_backend *exec);

/* Decodes one latent (quantizer_dimension floats, host memory, already
 * de-normalised) into frame_size samples (host memory). Optional taps (NULL
 * when unused), host memory: tap_quant [outer_dim], tap_upsample [S, outer_dim]
 * and tap_transformer [S, outer_dim] (time-major). Errors: CTTS_E_INVALID_ARG
 * (NULL latent or pcm), CTTS_E_STATE (stream position overflow). */
ctts_status pocket_mimi_decode_frame(pocket_mimi_dec *d, const float *latent, float *pcm,
                                     float *tap_quant, float *tap_upsample,
                                     float *tap_transformer);

/* Encodes mono pcm (n samples at sample_rate, host memory) into *latents
 * [*n_frames, inner_dim] (malloc'd; free with free()), n_frames =
 * ceil(n / frame_size). Optional taps (NULL when unused; malloc'd, time-major):
 * *tap_seanet and *tap_transformer [n_frames * S, dimension]. On error every
 * output is NULL / 0. */
ctts_status pocket_mimi_encode(const pocket_mimi *m, const float *pcm, size_t n, float **latents,
                               int *n_frames, float **tap_seanet, float **tap_transformer,
                               char *err, size_t err_len);

#endif
