/*
 * RIFF WAVE reader and writer.
 *
 * Reading: the whole file (or a memory buffer) is parsed chunk by chunk in
 * any order: 'fmt ' (PCM 8/16/24/32-bit, IEEE float 32/64, and
 * WAVE_FORMAT_EXTENSIBLE with those subformats) and 'data'; unknown chunks
 * are skipped (odd sizes padded). Every size is checked against the buffer.
 * A data chunk whose size field is past the end of the file is an error
 * (truncated), except for the "unknown size" values streaming writers use
 * (>= 0x7FFFF000, e.g. 0xFFFFFFFF), which are clamped to the bytes present.
 * Samples are converted to interleaved float in [-1, 1): 8-bit (u - 128) / 128,
 * 16-bit / 32768, 24-bit / 8388608, 32-bit / 2147483648; float data is kept
 * as is. Multi-channel audio is returned as is (no downmix, no resampling).
 *
 * Writing: mono only, 16-bit PCM (44-byte header) or 32-bit IEEE float
 * (18-byte fmt chunk + 'fact' chunk, 58-byte header), either in one call or
 * streamed (sizes patched on close; on stdout they stay 0xFFFFFFFF).
 */
#ifndef CTTS_AUDIO_WAV_H
#define CTTS_AUDIO_WAV_H

#include <stddef.h>

#include "ctts.h"

#define WAV_MAX_CHANNELS 64
#define WAV_MAX_SAMPLE_RATE 768000

typedef struct {
    float *samples; /* interleaved, [frames * channels]; NULL when frames == 0 */
    size_t frames;
    int channels;
    int sample_rate;
    int bits;     /* bits per sample in the file */
    int is_float; /* 1 for IEEE float data */
} wav_audio;

/* Reads a WAV file. Errors: CTTS_E_IO (cannot open), CTTS_E_FORMAT "<path>: <what>",
 * CTTS_E_UNSUPPORTED (valid WAV with an unsupported encoding, e.g. A-law). */
ctts_status wav_read(const char *path, wav_audio *out, char *err, size_t err_len);
ctts_status wav_read_memory(const void *data, size_t len, const char *name_for_errors, wav_audio *out,
                            char *err, size_t err_len);
/* Frees samples and zeroes *a. */
void wav_free(wav_audio *a);

/* Output sample formats (same values as ctts_wav_format). */
enum { WAV_FMT_S16 = 0, WAV_FMT_F32 = 1 };

/* Mono writer. fmt 0 = 16-bit PCM: clamp to [-1, 1], multiply by 32767 (in
 * float), truncate toward zero (numpy clip(x, -1, 1) * 32767 then astype(int16));
 * NaN is written as 0. fmt 1 = 32-bit IEEE float. Errors name the path
 * (CTTS_E_IO "cannot write '<path>': <reason>"); a failed write removes the file. */
ctts_status wav_write(const char *path, const float *pcm, size_t n, int sample_rate, int fmt, char *err,
                      size_t err_len);

/* The header wav_write writes for n_samples (44 bytes for s16, 58 for f32;
 * h holds at least 64); unknown = 1 leaves the sizes 0xFFFFFFFF (streams of
 * unknown length). Returns its length. */
size_t wav_header(unsigned char *h, int fmt, int sample_rate, uint64_t n_samples, int unknown);
/* The data bytes of n samples in fmt, as wav_write converts them (n * 2 or n * 4 bytes). */
void wav_encode(unsigned char *out, const float *pcm, size_t n, int fmt);

/* Streaming writer: open writes a header with zero sizes, append adds
 * samples, close patches the sizes and frees the writer (also on error).
 * path "-" writes to stdout and leaves the sizes 0xFFFFFFFF. */
typedef struct wav_writer wav_writer;
ctts_status wav_writer_open(const char *path, int sample_rate, int fmt, wav_writer **out, char *err,
                            size_t err_len);
ctts_status wav_writer_append(wav_writer *w, const float *pcm, size_t n, char *err, size_t err_len);
ctts_status wav_writer_close(wav_writer *w, char *err, size_t err_len);

#endif
