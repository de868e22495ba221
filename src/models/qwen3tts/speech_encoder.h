/*
 * Qwen3-TTS-12Hz speech tokenizer encoder (Base voice cloning): 24 kHz mono
 * audio -> reference codes [frames, 16] at 12.5 Hz. It is transformers'
 * MimiModel.encode as the official Qwen3TTSTokenizerV2Model.encode calls it
 * (no padding mask, all quantizers, the first encoder_valid_num_quantizers kept).
 *
 * Data flow (real numbers): SEANet encoder (causal convs with zero padding:
 * conv k7 1->64; per ratio 4, 5, 6, 8: residual block(s) ELU -> conv k3 ->
 * ELU -> conv k1 (+x), ELU, conv k 2r stride r; ELU; conv k3 -> 512) at 25 Hz
 * -> transformer (LayerNorm, rotate-half RoPE, sliding-window attention,
 * LayerScale, GELU MLP) -> downsample conv k4 stride 2 (replicate padding) ->
 * split RVQ: codebook 0 = nearest centroid of the semantic input projection,
 * codebooks 1.. = residual quantization of the acoustic input projection of
 * the same vector. Frames = ceil(samples / 1920).
 *
 * The signal is processed in pieces of a few frames with streaming conv
 * states; the last piece completes each strided conv with zeros of that
 * layer's input (replicate for the downsample), exactly as the one-pass
 * padding of MimiConv1d, so the result equals a single forward over the
 * whole signal. Memory does not grow with the signal length (except the
 * codes).
 *
 * Not here: resampling (the input must already be at input_sample_rate),
 * stereo, the Mimi decoder (speech_decoder.h decodes the codes).
 * Threading: a q3t_speech_encoder is immutable after bind; q3t_speech_encode
 * allocates its own state, so concurrent calls are fine.
 */
#ifndef CTTS_Q3T_SPEECH_ENCODER_H
#define CTTS_Q3T_SPEECH_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "ctts.h"
#include "models/qwen3tts/q3t_config.h"

typedef struct q3t_speech_encoder q3t_speech_encoder;

/* Checks cfg->enc (must be present), looks up every "encoder.*" tensor of
 * speech_tokenizer/model.safetensors with exact shapes and builds the
 * normalised centroid tables. Errors as q3t_speech_decoder_bind; *out NULL on
 * error. The tensors must stay valid until q3t_speech_encoder_free. */
ctts_status q3t_speech_encoder_bind(const q3t_codec_config *cfg, ctts_backend *be,
                                    q3t_weight_lookup get, void *get_ctx,
                                    q3t_speech_encoder **out, char *err, size_t err_len);
void q3t_speech_encoder_free(q3t_speech_encoder *e);

/* Names of every tensor bind looked up (owned by e); *n receives the count. */
const char *const *q3t_speech_encoder_bound_names(const q3t_speech_encoder *e, int *n);
/* Samples per code frame (1920) and quantizers available (num_quantizers, 32 real). */
int q3t_speech_encoder_hop(const q3t_speech_encoder *e);
int q3t_speech_encoder_max_quantizers(const q3t_speech_encoder *e);

/* Optional taps (tests), host memory, whole-signal tensors delivered once at
 * the end: "seanet_out" [hidden, frames25] and "downsample_out" [hidden,
 * frames] channel-major, "encoder_transformer_out" [frames25, hidden]
 * time-major, "rvq_distance_margin" [frames, n_q] (second-best minus best
 * centroid distance of every choice). */
typedef void (*q3t_senc_tap_fn)(void *user, const char *name, const float *data, int rows,
                                int cols);

/* Encodes n samples of mono audio (host memory, at the input sample rate) into
 * *codes [*n_frames, n_q] (malloc'd, row-major, free with free()), *n_frames =
 * ceil(n / hop); n_q in [1, max_quantizers] (the official code keeps
 * encoder_valid_num_quantizers = 16). tap may be NULL. Errors:
 * CTTS_E_INVALID_ARG (n == 0, bad n_q, non-finite samples), CTTS_E_OOM; on
 * error *codes is NULL and *n_frames 0. */
ctts_status q3t_speech_encode(const q3t_speech_encoder *e, const float *pcm, size_t n, int n_q,
                              int32_t **codes, int *n_frames, q3t_senc_tap_fn tap, void *tap_user,
                              char *err, size_t err_len);

#endif
