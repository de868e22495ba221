/*
 * Audio file input for voice prompts: any format libsndfile reads (WAV with
 * 8/16/24/32-bit PCM or float, FLAC, OGG/Vorbis, MP3, AIFF, ...), detected
 * from the content, never from the file name.
 *
 * Data flow: bytes (a file, mapped read-only, or a caller buffer) ->
 * libsndfile virtual I/O -> interleaved float (libsndfile's normalisation:
 * 16-bit / 32768, 24-bit / 2^23, 32-bit / 2^31, u8 (x - 128) / 128, float
 * as stored) -> mono by averaging the channels (summed in float32 in channel
 * order, then divided by the count, as numpy's mean over 2..7 channels) ->
 * optionally cut to the first max_seconds (floor(max_seconds * rate)
 * frames, as the official truncate=True path; frames past the cut are never
 * decoded, so long files cost no memory).
 *
 * Difference from the official reader: for ".wav" files the official code
 * reinterprets the data bytes as int16 whatever the sample width, which
 * garbles 8/24/32-bit and float WAVs; here every width decodes correctly.
 * 16-bit PCM WAV (the usual case) gives identical samples.
 *
 * Checks, each a one-line error naming the file: empty file, unreadable or
 * unknown format (e.g. a text file renamed .wav), 0 or more than
 * AUDIO_MAX_CHANNELS channels, a sample rate outside [AUDIO_MIN_RATE,
 * AUDIO_MAX_RATE], no audio frames (header only), NaN/Inf samples, and clips
 * longer than AUDIO_MAX_SECONDS when no max_seconds cut is asked for.
 * Not here: resampling (resample.h), loudness normalisation (the official
 * path applies none).
 */
#ifndef CTTS_AUDIO_AUDIO_READ_H
#define CTTS_AUDIO_AUDIO_READ_H

#include <stddef.h>
#include <stdint.h>

#include "ctts.h"

#define AUDIO_MIN_RATE 1000
#define AUDIO_MAX_RATE 768000
#define AUDIO_MAX_CHANNELS 64
#define AUDIO_MAX_SECONDS 600.0

typedef struct {
    float *pcm;        /* mono samples in [-1, 1] for PCM input, malloc'd */
    size_t n;          /* samples in pcm */
    int sample_rate;   /* of the file */
    int channels;      /* of the file (before the downmix) */
    int truncated;     /* 1 when the max_seconds cut dropped audio */
    int sf_format;     /* libsndfile SF_FORMAT_* major | subtype, for messages */
} audio_clip;

/* Decodes a whole audio file. max_seconds > 0 keeps at most the first
 * floor(max_seconds * rate) frames; 0 keeps everything (up to
 * AUDIO_MAX_SECONDS, beyond which it is an error). Errors: CTTS_E_IO (cannot
 * open), CTTS_E_FORMAT "<path>: <what>", CTTS_E_UNSUPPORTED, CTTS_E_OOM. */
ctts_status audio_read(const char *path, double max_seconds, audio_clip *out, char *err,
                       size_t err_len);
/* Same for a file's bytes already in memory (name is used in messages). */
ctts_status audio_read_memory(const void *data, size_t len, const char *name, double max_seconds,
                              audio_clip *out, char *err, size_t err_len);
/* Frees pcm and zeroes *c. */
void audio_clip_free(audio_clip *c);

#endif
