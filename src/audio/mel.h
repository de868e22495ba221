/*
 * Log-mel spectrogram as the Qwen3-TTS speaker encoder computes it
 * (official mel_spectrogram: torch.stft + librosa.filters.mel):
 *
 *   x [n] --reflect pad (n_fft - hop)/2 both sides--> STFT (periodic Hann
 *   window of n_fft, hop, no centering) --> |X| = sqrt(re^2 + im^2 + 1e-9)
 *   [n_fft/2+1, frames] --Slaney mel filterbank [n_mels, n_fft/2+1]-->
 *   log(max(mel, 1e-5)) [n_mels, frames],
 *   frames = (n + 2*pad - n_fft) / hop + 1.
 *
 * The filterbank follows librosa.filters.mel(htk=False, norm="slaney",
 * dtype=float32): Slaney mel scale, triangles computed in float64 and
 * stored as float32, then the Slaney area normalisation applied to the
 * float32 values in float64 and stored as float32 again. The FFT runs in
 * double (radix 2) and its output is rounded to float before the float32
 * magnitude, so results agree with torch to float rounding.
 *
 * Not here: other windows or paddings, centering, power spectra, resampling.
 */
#ifndef CTTS_AUDIO_MEL_H
#define CTTS_AUDIO_MEL_H

#include <stddef.h>

#include "ctts.h"

typedef struct {
    int sample_rate; /* 24000 */
    int n_fft;       /* 1024; a power of two, also the window length */
    int hop;         /* 256 */
    int n_mels;      /* 128 */
    float fmin;      /* 0 */
    float fmax;      /* 12000 (<= sample_rate / 2) */
} mel_params;

/* The float32 filterbank [n_mels, n_fft/2 + 1] (malloc'd). Errors:
 * CTTS_E_INVALID_ARG (bad parameters), CTTS_E_OOM. */
ctts_status mel_filterbank(const mel_params *p, float **fb, char *err, size_t err_len);

/* Log-mel spectrogram of x [n] into *mel [n_mels, *n_frames] (malloc'd,
 * channel-major). n must exceed the reflect padding (n_fft - hop)/2 and give
 * at least one frame. Errors: CTTS_E_INVALID_ARG (bad parameters, audio too
 * short, non-finite samples), CTTS_E_OOM; on error *mel is NULL. */
ctts_status mel_log_spectrogram(const mel_params *p, const float *x, size_t n, float **mel,
                                int *n_frames, char *err, size_t err_len);

#endif
