/*
 * Rational polyphase resampling with exactly the semantics of SciPy's
 * scipy.signal.resample_poly(x, up, down) (default window ('kaiser', 5.0),
 * padtype 'constant') on float32 input, which is what the official Pocket TTS
 * code uses to bring a voice prompt to 24 kHz (POCKET_NOTES.md section 7).
 *
 * Data flow: up/down reduced by their gcd -> filter designed in float64 as
 * firwin(2*half_len + 1, 1/max(up, down), kaiser 5.0) with half_len =
 * 10*max(up, down) -> cast to float32 -> multiplied by up (float32) -> each
 * output sample is one polyphase dot product over the input, accumulated in
 * float32 in the same order as SciPy's upfirdn, so results match it to the
 * last bit or nearly (the only float64 step is the filter design).
 * Output length ceil(n*up/down); the first output sample is aligned with the
 * first input sample (SciPy's n_pre_pad / n_pre_remove bookkeeping).
 *
 * Not here: other window or padding modes, streaming (the whole signal is
 * resampled at once), anti-aliasing beyond what the filter gives.
 */
#ifndef CTTS_AUDIO_RESAMPLE_H
#define CTTS_AUDIO_RESAMPLE_H

#include <stddef.h>

#include "ctts.h"

/* Largest up or down (after gcd reduction) accepted: the filter has
 * 20*max(up,down)+1 taps, so this bounds its memory (about 77 MB). */
#define RESAMPLE_MAX_FACTOR 1000000

/* The float32 filter resample_poly uses for (up, down) after gcd reduction
 * (already multiplied by up, without the zero padding): *n_taps =
 * 20*max(up,down)+1 coefficients, malloc'd. For tests. */
ctts_status resample_poly_filter(int up, int down, float **taps, size_t *n_taps, char *err,
                                 size_t err_len);

/* y = resample_poly(x, up, down). up, down >= 1 (reduced by their gcd here).
 * *y is malloc'd with *ny = ceil(n*up'/down') samples (a copy of x when the
 * reduced factors are 1/1); n == 0 gives *y = NULL, *ny = 0. Errors:
 * CTTS_E_INVALID_ARG (bad factors, output too long), CTTS_E_OOM. */
ctts_status resample_poly(const float *x, size_t n, int up, int down, float **y, size_t *ny,
                          char *err, size_t err_len);

/* Resamples from from_rate to to_rate as the official convert_audio does:
 * resample_poly(x, to/g, from/g) with g = gcd(from, to); equal rates copy. */
ctts_status resample_rate(const float *x, size_t n, int from_rate, int to_rate, float **y,
                          size_t *ny, char *err, size_t err_len);

#endif
