/*
 * WAV reading (chunk walk over a memory buffer, then sample conversion) and
 * writing (a small header writer shared by the one-shot and streaming paths).
 * All multi-byte fields are read and written byte by byte as little-endian,
 * so the code is independent of host endianness and alignment.
 */
#include "audio/wav.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/mmap.h"

#define WAV_FORMAT_PCM 1
#define WAV_FORMAT_FLOAT 3
#define WAV_FORMAT_EXTENSIBLE 0xFFFE
/* Chunk sizes at or above this are "unknown length" markers from streaming writers. */
#define WAV_UNKNOWN_SIZE 0x7FFFF000u

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

void wav_free(wav_audio *a) {
    if (!a) return;
    free(a->samples);
    memset(a, 0, sizeof *a);
}

/* Prints a chunk id safely ("fmt ", or hex bytes when not printable). */
static const char *chunk_id_str(const unsigned char *id, char *buf, size_t n) {
    int printable = 1;
    for (int i = 0; i < 4; i++)
        if (id[i] < 0x20 || id[i] > 0x7e) printable = 0;
    if (printable)
        snprintf(buf, n, "'%c%c%c%c'", id[0], id[1], id[2], id[3]);
    else
        snprintf(buf, n, "0x%02X%02X%02X%02X", id[0], id[1], id[2], id[3]);
    return buf;
}

typedef struct {
    int format; /* WAV_FORMAT_PCM or WAV_FORMAT_FLOAT after resolving EXTENSIBLE */
    int channels;
    uint32_t sample_rate;
    int block_align;
    int bits;
} wav_fmt;

static ctts_status parse_fmt(const unsigned char *p, uint32_t size, const char *name, wav_fmt *f, char *err,
                             size_t err_len) {
    if (size < 16)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: 'fmt ' chunk is %u bytes, need at least 16", name,
                        (unsigned)size);
    int tag = rd16(p);
    f->channels = rd16(p + 2);
    f->sample_rate = rd32(p + 4);
    f->block_align = rd16(p + 12);
    f->bits = rd16(p + 14);
    if (tag == WAV_FORMAT_EXTENSIBLE) {
        static const unsigned char guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                                    0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
        if (size < 40 || rd16(p + 16) < 22)
            return ctts_err(err, err_len, CTTS_E_FORMAT,
                            "%s: WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk too short (%u bytes)", name, (unsigned)size);
        if (memcmp(p + 26, guid_tail, sizeof guid_tail) != 0)
            return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "%s: unknown WAVE_FORMAT_EXTENSIBLE subformat",
                            name);
        tag = rd16(p + 24);
    }
    if (tag != WAV_FORMAT_PCM && tag != WAV_FORMAT_FLOAT)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "%s: WAV format tag %d not supported (only PCM and IEEE float)", name, tag);
    f->format = tag;
    if (f->channels == 0)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: 0 channels", name);
    if (f->channels > WAV_MAX_CHANNELS)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: %d channels, at most %d supported", name, f->channels,
                        WAV_MAX_CHANNELS);
    if (f->sample_rate == 0 || f->sample_rate > WAV_MAX_SAMPLE_RATE)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: sample rate %u Hz out of range (1..%d)", name,
                        (unsigned)f->sample_rate, WAV_MAX_SAMPLE_RATE);
    int ok_bits = tag == WAV_FORMAT_PCM ? (f->bits == 8 || f->bits == 16 || f->bits == 24 || f->bits == 32)
                                        : (f->bits == 32 || f->bits == 64);
    if (!ok_bits)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "%s: %d-bit %s samples not supported", name, f->bits,
                        tag == WAV_FORMAT_PCM ? "PCM" : "float");
    if (f->block_align != f->channels * (f->bits / 8))
        return ctts_err(err, err_len, CTTS_E_FORMAT,
                        "%s: block_align %d does not match %d channels x %d bits", name, f->block_align,
                        f->channels, f->bits);
    return CTTS_OK;
}

static float decode_sample(const unsigned char *p, const wav_fmt *f) {
    if (f->format == WAV_FORMAT_FLOAT) {
        if (f->bits == 32) {
            uint32_t u = rd32(p);
            float v;
            memcpy(&v, &u, 4);
            return v;
        }
        uint64_t u = (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
        double v;
        memcpy(&v, &u, 8);
        return (float)v;
    }
    switch (f->bits) {
    case 8: return (float)((int)p[0] - 128) * (1.0f / 128.0f);
    case 16: return (float)(int16_t)rd16(p) * (1.0f / 32768.0f);
    case 24: {
        int32_t v = (int32_t)((uint32_t)p[0] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 24) >> 8;
        return (float)v * (1.0f / 8388608.0f);
    }
    default: return (float)((double)(int32_t)rd32(p) * (1.0 / 2147483648.0));
    }
}

ctts_status wav_read_memory(const void *data, size_t len, const char *name_for_errors, wav_audio *out,
                            char *err, size_t err_len) {
    const char *name = name_for_errors ? name_for_errors : "<wav>";
    const unsigned char *b = data;
    memset(out, 0, sizeof *out);
    if (!b || len == 0) return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: empty file", name);
    if (len < 12 || memcmp(b, "RIFF", 4) != 0 || memcmp(b + 8, "WAVE", 4) != 0)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: not a RIFF/WAVE file", name);
    wav_fmt fmt = {0};
    int have_fmt = 0, have_data = 0;
    size_t data_off = 0, data_size = 0;
    size_t pos = 12;
    char idbuf[16];
    while (pos < len) {
        if (len - pos < 8) {
            if (have_fmt && have_data) break; /* trailing junk after the chunks we need */
            return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: truncated chunk header at byte %zu", name, pos);
        }
        const unsigned char *id = b + pos;
        uint32_t size = rd32(b + pos + 4);
        size_t body = pos + 8, avail = len - body;
        if (memcmp(id, "data", 4) == 0) {
            size_t dsize = size;
            if (size > avail) {
                if (size < WAV_UNKNOWN_SIZE)
                    return ctts_err(err, err_len, CTTS_E_FORMAT,
                                    "%s: truncated 'data' chunk: %u bytes declared, %zu present", name,
                                    (unsigned)size, avail);
                dsize = avail;
            }
            if (!have_data) {
                have_data = 1;
                data_off = body;
                data_size = dsize;
            }
            if (dsize == avail) break; /* nothing can follow */
        } else {
            if (size > avail)
                return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: truncated %s chunk: %u bytes declared, %zu present",
                                name, chunk_id_str(id, idbuf, sizeof idbuf), (unsigned)size, avail);
            if (memcmp(id, "fmt ", 4) == 0 && !have_fmt) {
                ctts_status st = parse_fmt(b + body, size, name, &fmt, err, err_len);
                if (st) return st;
                have_fmt = 1;
            }
        }
        size_t skip = (size_t)size + (size & 1u);
        if (skip >= avail) break; /* a missing pad byte at the very end is fine */
        pos = body + skip;
    }
    if (!have_fmt) return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: no 'fmt ' chunk", name);
    if (!have_data) return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: no 'data' chunk", name);
    size_t frames = data_size / (size_t)fmt.block_align; /* a trailing partial frame is dropped */
    size_t n = frames * (size_t)fmt.channels;
    out->channels = fmt.channels;
    out->sample_rate = (int)fmt.sample_rate;
    out->bits = fmt.bits;
    out->is_float = fmt.format == WAV_FORMAT_FLOAT;
    if (n) {
        if (n > SIZE_MAX / sizeof(float))
            return ctts_err(err, err_len, CTTS_E_OOM, "%s: too many samples", name);
        out->samples = malloc(n * sizeof(float));
        if (!out->samples) return ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory for %zu samples", name, n);
        size_t bps = (size_t)fmt.bits / 8;
        const unsigned char *p = b + data_off;
        for (size_t i = 0; i < n; i++) out->samples[i] = decode_sample(p + i * bps, &fmt);
    }
    out->frames = frames;
    return CTTS_OK;
}

ctts_status wav_read(const char *path, wav_audio *out, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    if (!path) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "wav_read: path is NULL");
    ctts_mapped_file m;
    ctts_status st = ctts_map_file(path, &m, err, err_len);
    if (st) return st;
    st = wav_read_memory(m.data, m.size, path, out, err, err_len);
    ctts_unmap_file(&m);
    return st;
}

/* ---- writing ---- */

struct wav_writer {
    FILE *fp;
    int to_stdout;
    int fmt;
    int sample_rate;
    uint64_t data_bytes;
    char *path;
};

static void put16(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static size_t build_header(unsigned char *h, int fmt, int rate, uint64_t data_bytes, int unknown) {
    int f32 = fmt == WAV_FMT_F32;
    uint32_t fmt_size = f32 ? 18 : 16;
    size_t hlen = 12 + 8 + fmt_size + (f32 ? 12 : 0) + 8;
    uint32_t bps = f32 ? 4 : 2;
    uint32_t riff = unknown ? 0xFFFFFFFFu : (uint32_t)(hlen - 8 + data_bytes);
    uint32_t dsz = unknown ? 0xFFFFFFFFu : (uint32_t)data_bytes;
    memcpy(h, "RIFF", 4);
    put32(h + 4, riff);
    memcpy(h + 8, "WAVE", 4);
    memcpy(h + 12, "fmt ", 4);
    put32(h + 16, fmt_size);
    put16(h + 20, f32 ? WAV_FORMAT_FLOAT : WAV_FORMAT_PCM);
    put16(h + 22, 1);
    put32(h + 24, (uint32_t)rate);
    put32(h + 28, (uint32_t)rate * bps);
    put16(h + 32, bps);
    put16(h + 34, bps * 8);
    size_t o = 36;
    if (f32) {
        put16(h + 36, 0); /* cbSize */
        memcpy(h + 38, "fact", 4);
        put32(h + 42, 4);
        put32(h + 46, unknown ? 0xFFFFFFFFu : (uint32_t)(data_bytes / 4));
        o = 50;
    }
    memcpy(h + o, "data", 4);
    put32(h + o + 4, dsz);
    return hlen;
}

size_t wav_header(unsigned char *h, int fmt, int sample_rate, uint64_t n_samples, int unknown) {
    return build_header(h, fmt, sample_rate, n_samples * (fmt == WAV_FMT_F32 ? 4 : 2), unknown);
}

void wav_encode(unsigned char *out, const float *pcm, size_t n, int fmt) {
    for (size_t k = 0; k < n; k++) {
        float x = pcm[k];
        if (fmt == WAV_FMT_F32) {
            uint32_t u;
            memcpy(&u, &x, 4);
            put32(out + 4 * k, u);
        } else {
            if (isnan(x)) x = 0.0f;
            x = x < -1.0f ? -1.0f : x > 1.0f ? 1.0f : x;
            int16_t s = (int16_t)(x * 32767.0f); /* truncates toward zero */
            put16(out + 2 * k, (uint16_t)s);
        }
    }
}

ctts_status wav_writer_open(const char *path, int sample_rate, int fmt, wav_writer **out, char *err,
                            size_t err_len) {
    *out = NULL;
    if (!path) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "wav writer: path is NULL");
    if (sample_rate <= 0 || sample_rate > WAV_MAX_SAMPLE_RATE)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "cannot write '%s': sample rate %d out of range", path,
                        sample_rate);
    if (fmt != WAV_FMT_S16 && fmt != WAV_FMT_F32)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "cannot write '%s': unknown sample format %d", path, fmt);
    wav_writer *w = calloc(1, sizeof *w);
    if (!w) return ctts_err(err, err_len, CTTS_E_OOM, "cannot write '%s': out of memory", path);
    w->path = strdup(path);
    w->fmt = fmt;
    w->sample_rate = sample_rate;
    w->to_stdout = strcmp(path, "-") == 0;
    if (!w->path) {
        free(w);
        return ctts_err(err, err_len, CTTS_E_OOM, "cannot write '%s': out of memory", path);
    }
    w->fp = w->to_stdout ? stdout : fopen(path, "wb");
    if (!w->fp) {
        ctts_status st = ctts_err(err, err_len, CTTS_E_IO, "cannot write '%s': %s", path, strerror(errno));
        free(w->path);
        free(w);
        return st;
    }
    unsigned char h[64];
    size_t hlen = build_header(h, fmt, sample_rate, 0, w->to_stdout);
    if (fwrite(h, 1, hlen, w->fp) != hlen) {
        ctts_status st = ctts_err(err, err_len, CTTS_E_IO, "cannot write '%s': %s", path, strerror(errno));
        if (!w->to_stdout) {
            fclose(w->fp);
            remove(path);
        }
        free(w->path);
        free(w);
        return st;
    }
    *out = w;
    return CTTS_OK;
}

ctts_status wav_writer_append(wav_writer *w, const float *pcm, size_t n, char *err, size_t err_len) {
    if (!w || (n && !pcm)) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "wav writer: invalid arguments");
    size_t bps = w->fmt == WAV_FMT_F32 ? 4 : 2;
    if (n > (0xFFFFFFFFu - 64 - w->data_bytes) / bps)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "cannot write '%s': over the 4 GiB WAV size limit",
                        w->path);
    unsigned char buf[8192];
    size_t per = sizeof buf / bps;
    for (size_t i = 0; i < n; i += per) {
        size_t m = n - i < per ? n - i : per;
        wav_encode(buf, pcm + i, m, w->fmt);
        if (fwrite(buf, 1, m * bps, w->fp) != m * bps)
            return ctts_err(err, err_len, CTTS_E_IO, "cannot write '%s': %s", w->path, strerror(errno));
        w->data_bytes += m * bps;
    }
    return CTTS_OK;
}

ctts_status wav_writer_close(wav_writer *w, char *err, size_t err_len) {
    if (!w) return CTTS_OK;
    ctts_status st = CTTS_OK;
    if (w->to_stdout) {
        if (fflush(w->fp) != 0)
            st = ctts_err(err, err_len, CTTS_E_IO, "cannot write '%s': %s", w->path, strerror(errno));
    } else {
        unsigned char h[64];
        size_t hlen = build_header(h, w->fmt, w->sample_rate, w->data_bytes, 0);
        if (fseek(w->fp, 0, SEEK_SET) != 0 || fwrite(h, 1, hlen, w->fp) != hlen)
            st = ctts_err(err, err_len, CTTS_E_IO, "cannot write '%s': %s", w->path, strerror(errno));
        if (fclose(w->fp) != 0 && st == CTTS_OK)
            st = ctts_err(err, err_len, CTTS_E_IO, "cannot write '%s': %s", w->path, strerror(errno));
    }
    free(w->path);
    free(w);
    return st;
}

ctts_status wav_write(const char *path, const float *pcm, size_t n, int sample_rate, int fmt, char *err,
                      size_t err_len) {
    wav_writer *w;
    ctts_status st = wav_writer_open(path, sample_rate, fmt, &w, err, err_len);
    if (st) return st;
    int to_stdout = strcmp(path, "-") == 0;
    st = wav_writer_append(w, pcm, n, err, err_len);
    if (st) {
        wav_writer_close(w, NULL, 0);
        if (!to_stdout) remove(path);
        return st;
    }
    st = wav_writer_close(w, err, err_len);
    if (st && !to_stdout) remove(path);
    return st;
}
