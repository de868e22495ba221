/*
 * Qwen3-TTS-12Hz speech tokenizer decoder: codes [T, 16] -> 24 kHz audio.
 *
 * Data flow per frame (real 0.6B numbers): 16 codes -> RVQ tables (embedding
 * sums divided by max(usage, 1e-5)) -> codebook 0 and the sum of codebooks
 * 1..15 each through its own 1x1 output projection, added [512] -> causal
 * pre_conv k3 [1024] -> pre-transformer (input_proj 1024->512, 8 layers of
 * RMSNorm / rotate-half RoPE attention with a sliding window of 72 /
 * LayerScale / SwiGLU, final RMSNorm, output_proj 512->1024) -> 2 x
 * (ConvTranspose k=stride=2, ConvNeXt block) -> causal conv k7 1024->1536 ->
 * 4 decoder blocks (SnakeBeta, causal ConvTranspose k 2r stride r, 3 residual
 * units with dilations 1, 3, 9) -> SnakeBeta -> causal conv k7 -> clamp to
 * [-1, 1]: 1920 samples per frame.
 *
 * Every block is causal, so the decoder streams: q3t_sdec_stream takes any
 * number of frames per call and keeps conv states and a KV cache bounded by
 * the sliding window. Chunking (see q3t_sdec_stream_new): with chunk 300 and
 * context 25 the stream reproduces the official chunked_decode exactly (at
 * every multiple of 300 frames it restarts from a fresh state and re-reads the
 * previous 25 frames, discarding their audio); with chunk 0 it equals one
 * forward over the whole utterance (which the official decode also is for up
 * to 300 frames).
 *
 * Not here: the encoder (speech_encoder.h), batching with -1 padding (the
 * caller decodes each utterance alone: every block is causal, so padded
 * frames never change the audio before them), resampling.
 *
 * Threading: a q3t_speech_decoder is immutable after bind and may be shared;
 * each stream uses its own q3t_sdec_stream.
 */
#ifndef CTTS_Q3T_SPEECH_DECODER_H
#define CTTS_Q3T_SPEECH_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "ctts.h"
#include "models/qwen3tts/q3t_config.h"

/* Official chunked_decode parameters. */
#define Q3T_SDEC_CHUNK 300
#define Q3T_SDEC_CONTEXT 25

typedef struct q3t_speech_decoder q3t_speech_decoder;

/* Checks cfg, looks up every "decoder.*" tensor of speech_tokenizer/model.safetensors
 * by name with exact shapes (F32; projections and convs may also be F16/BF16 where
 * the backend takes them) and builds the normalised codebook tables. The tensors
 * returned by get must stay valid until q3t_speech_decoder_free. Errors: "missing
 * tensor 'NAME'" (CTTS_E_NOT_FOUND), "tensor 'NAME': expected shape [..], got [..]"
 * (CTTS_E_FORMAT), unsupported config values (CTTS_E_UNSUPPORTED /
 * CTTS_E_INVALID_ARG), CTTS_E_OOM. *out is NULL on error. */
ctts_status q3t_speech_decoder_bind(const q3t_codec_decoder_config *cfg, ctts_backend *be,
                                    q3t_weight_lookup get, void *get_ctx,
                                    q3t_speech_decoder **out, char *err, size_t err_len);
void q3t_speech_decoder_free(q3t_speech_decoder *d);

/* Names of every tensor bind looked up (owned by d); *n receives the count. */
const char *const *q3t_speech_decoder_bound_names(const q3t_speech_decoder *d, int *n);
/* Looked-up tensors that bind replaced by copies in the backend's own layout
 * (pack_conv_transpose): d no longer reads them, so their owner may release
 * their data. *n receives the count. */
const ctts_tensor *const *q3t_speech_decoder_replaced(const q3t_speech_decoder *d, int *n);
/* Output samples per frame (product of upsampling_ratios and upsample_rates: 1920). */
int q3t_speech_decoder_hop(const q3t_speech_decoder *d);
/* Codebooks per frame (num_quantizers, 16) and codes per codebook (2048). */
int q3t_speech_decoder_n_codebooks(const q3t_speech_decoder *d);
int q3t_speech_decoder_codebook_size(const q3t_speech_decoder *d);

/* Optional intermediate taps (tests): called with host-memory data as it is
 * produced during q3t_sdec_stream_decode, named as the golden tensors
 * ("quantizer_out", "pre_conv", "upsample0.transconv", "decoder.6", ...).
 * Calls longer than the internal piece (8 frames) tap once per piece, in order.
 * Channel-major taps are [rows = channels, cols = samples of the piece];
 * "pre_transformer" is time-major [rows = frames, cols = latent_dim]. */
typedef void (*q3t_sdec_tap_fn)(void *user, const char *name, const float *data, int rows,
                                int cols);

typedef struct q3t_sdec_stream q3t_sdec_stream;

/* Streaming state for up to max_frames frames per decode call (all buffers are
 * allocated here, sized for min(max_frames, 8) frames: larger calls run in
 * pieces; decoding allocates nothing). chunk > 0: restart from a fresh
 * state at every multiple of chunk frames after re-reading the previous context
 * frames (official chunked_decode: Q3T_SDEC_CHUNK / Q3T_SDEC_CONTEXT); chunk 0:
 * one unbroken stream (context ignored). d must outlive the stream. Errors:
 * CTTS_E_INVALID_ARG (max_frames < 1 or > 4096, context < 0 or >= chunk),
 * CTTS_E_OOM. */
ctts_status q3t_sdec_stream_new(const q3t_speech_decoder *d, int max_frames, int chunk,
                                int context, q3t_sdec_stream **out, char *err, size_t err_len);
/* Fresh state: frame 0, zero conv states, empty caches. */
void q3t_sdec_stream_reset(q3t_sdec_stream *s);
void q3t_sdec_stream_free(q3t_sdec_stream *s);
/* Sets (or clears with fn NULL) the tap callback. */
void q3t_sdec_stream_set_tap(q3t_sdec_stream *s, q3t_sdec_tap_fn fn, void *user);
/* Runs the stream's ops on exec (NULL: the decoder's own backend), e.g. a
 * one-thread CPU backend on a decoding thread; exec must share memory with
 * the decoder's backend (CPU backends do). */
void q3t_sdec_stream_set_exec(q3t_sdec_stream *s, ctts_backend *exec);

/* Decodes n frames of codes (host memory, [n, n_codebooks] row-major, each in
 * [0, codebook_size)) into n * hop samples (host memory), clamped to [-1, 1].
 * 0 < n <= max_frames. Errors: CTTS_E_INVALID_ARG (bad n, a code out of range,
 * named in err), CTTS_E_STATE (stream too long). */
ctts_status q3t_sdec_stream_decode(q3t_sdec_stream *s, const int32_t *codes, int n, float *pcm,
                                   char *err, size_t err_len);

/* Whole-utterance decode as the official Qwen3TTSTokenizerV2Model.decode does
 * for one utterance (chunked 300/25): codes [n, n_codebooks] -> *pcm (malloc'd,
 * n * hop samples; free with free()). n == 0 gives *pcm NULL, *n_samples 0. */
ctts_status q3t_speech_decode(const q3t_speech_decoder *d, const int32_t *codes, int n,
                              float **pcm, size_t *n_samples, char *err, size_t err_len);

#endif
