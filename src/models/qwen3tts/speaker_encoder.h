/*
 * Qwen3-TTS speaker encoder (Base model, voice cloning): 24 kHz audio ->
 * x-vector [enc_dim] that takes the speaker slot of the talker prompt.
 *
 * Data flow (real numbers): log-mel [128, T] (audio/mel.h: n_fft 1024, hop
 * 256, 0..12000 Hz) -> ECAPA-TDNN, every conv with "same" reflect padding:
 * TDNN k5 128->512 + ReLU -> 3 SE-Res2Net blocks (1x1 TDNN; Res2Net with
 * 8 splits: split 0 passes, split 1 -> TDNN(k3, dilation d), split i ->
 * TDNN(split i + output i-1); 1x1 TDNN; squeeze-excitation: time mean ->
 * conv -> ReLU -> conv -> sigmoid -> channel gain; + input) with dilations
 * 2, 3, 4 -> concat of the 3 block outputs -> TDNN 1x1 1536 (MFA) ->
 * attentive statistics pooling (global mean / std, [x, mean, std] -> TDNN
 * -> tanh -> conv -> softmax over time -> weighted mean / std) -> 1x1 conv
 * 3072 -> enc_dim.
 *
 * Weights keep their dtype (BF16 in the release; convs and linears widen
 * exactly); biases are copied to F32. All math goes through backend ops
 * except reflect padding and broadcast fills (copies).
 *
 * Not here: resampling (input must be at the config's sample_rate),
 * batching, the voice-clone prompt assembly.
 * Threading: immutable after bind; each call allocates its own buffers.
 */
#ifndef CTTS_Q3T_SPEAKER_ENCODER_H
#define CTTS_Q3T_SPEAKER_ENCODER_H

#include <stddef.h>

#include "backend/backend.h"
#include "ctts.h"
#include "models/qwen3tts/q3t_config.h"

typedef struct q3t_speaker_encoder q3t_speaker_encoder;

/* Checks cfg (present, 5 channel/kernel/dilation entries, Res2Net splits
 * dividing the channels, MFA width = sum of the block widths), binds every
 * "speaker_encoder.*" tensor of model.safetensors with exact shapes. Errors
 * as the other binders ("missing tensor 'NAME'", "tensor 'NAME': expected
 * shape ..."); *out NULL on error. */
ctts_status q3t_speaker_encoder_bind(const q3t_speaker_encoder_config *cfg, ctts_backend *be,
                                     q3t_weight_lookup get, void *get_ctx,
                                     q3t_speaker_encoder **out, char *err, size_t err_len);
void q3t_speaker_encoder_free(q3t_speaker_encoder *e);
const char *const *q3t_speaker_encoder_bound_names(const q3t_speaker_encoder *e, int *n);
/* Output size (enc_dim) and the sample rate the audio must have. */
int q3t_speaker_encoder_dim(const q3t_speaker_encoder *e);
int q3t_speaker_encoder_sample_rate(const q3t_speaker_encoder *e);

/* Optional taps (tests), host memory, channel-major: "mel" [128, T],
 * "blocks.0".."blocks.3" [C, T], "mfa" [C4, T], "asp" [2*C4, 1], "fc" [enc_dim, 1]. */
typedef void (*q3t_spk_tap_fn)(void *user, const char *name, const float *data, int rows,
                               int cols);

/* x-vector of n mono samples at the sample rate (host memory) into out
 * [enc_dim] (host). Errors: CTTS_E_INVALID_ARG (audio too short for the mel
 * frames and the reflect paddings, non-finite samples), CTTS_E_OOM. */
ctts_status q3t_speaker_embed(const q3t_speaker_encoder *e, const float *pcm, size_t n,
                              float *out, q3t_spk_tap_fn tap, void *tap_user, char *err,
                              size_t err_len);

/* The same from a log-mel spectrogram mel [mel_dim, T] (host memory). */
ctts_status q3t_speaker_embed_mel(const q3t_speaker_encoder *e, const float *mel, int T,
                                  float *out, q3t_spk_tap_fn tap, void *tap_user, char *err,
                                  size_t err_len);

#endif
