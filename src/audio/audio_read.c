/*
 * audio_read (see audio_read.h). Two decoders over a read-only memory view,
 * both giving interleaved float frames:
 *  - MPEG audio (content starting with an ID3v2 tag or an MPEG frame sync):
 *    libmpg123 with the flags libsndfile uses (float output, gapless, no
 *    automatic resampling), so the samples equal what libsndfile / soundfile
 *    give, plus MPG123_QUIET: going through libsndfile, mpg123 prints
 *    warnings about damaged files on stderr, and the library must not print.
 *  - everything else: libsndfile (SF_VIRTUAL_IO), which detects the format.
 * Then block-wise: the frame limit, the NaN/Inf check and the downmix.
 */
#include "audio/audio_read.h"

#include <math.h>
#include <mpg123.h>
#include <stdint.h>
#include <sndfile.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "base/error.h"
#include "io/mmap.h"

#define READ_BLOCK_FRAMES 16384
#define INITIAL_CAP_FRAMES (1u << 22)

typedef struct {
    const unsigned char *data;
    int64_t len, pos;
} mem_io;

static int64_t mem_seek_to(mem_io *m, int64_t offset, int whence) {
    /* As lseek: any position >= 0, also past the end (reads there return 0). */
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->len;
    if (offset > INT64_MAX - base) return -1;
    int64_t p = base + offset;
    if (p < 0) return -1;
    m->pos = p;
    return p;
}

static size_t mem_read_into(mem_io *m, void *dst, size_t count) {
    int64_t left = m->len - m->pos;
    size_t k = left <= 0 ? 0 : (size_t)left < count ? (size_t)left : count;
    if (k) memcpy(dst, m->data + m->pos, k);
    m->pos += (int64_t)k;
    return k;
}

/* ---- libsndfile ---- */

static sf_count_t sfio_len(void *u) { return ((mem_io *)u)->len; }
static sf_count_t sfio_seek(sf_count_t off, int whence, void *u) {
    mem_io *m = u;
    return mem_seek_to(m, off, whence) < 0 ? -1 : m->pos;
}
static sf_count_t sfio_read(void *p, sf_count_t n, void *u) {
    return n <= 0 ? 0 : (sf_count_t)mem_read_into(u, p, (size_t)n);
}
static sf_count_t sfio_write(const void *p, sf_count_t n, void *u) {
    (void)p;
    (void)n;
    (void)u;
    return 0;
}
static sf_count_t sfio_tell(void *u) { return ((mem_io *)u)->pos; }

/* ---- libmpg123 ---- */

static mpg123_ssize_t mpio_read(void *u, void *p, size_t n) {
    return (mpg123_ssize_t)mem_read_into(u, p, n);
}
static off_t mpio_seek(void *u, off_t off, int whence) {
    return (off_t)mem_seek_to(u, (int64_t)off, whence);
}

/* An ID3v2 tag or an MPEG audio frame header (sync, valid layer, bitrate, rate). */
static int looks_like_mpeg(const unsigned char *b, size_t n) {
    if (n >= 10 && b[0] == 'I' && b[1] == 'D' && b[2] == '3') return 1;
    if (n < 4 || b[0] != 0xFF || (b[1] & 0xE0) != 0xE0) return 0;
    int version = (b[1] >> 3) & 3, layer = (b[1] >> 1) & 3;
    int bitrate = b[2] >> 4, rate = (b[2] >> 2) & 3;
    return version != 1 && layer != 0 && bitrate != 15 && rate != 3;
}

typedef struct {
    SNDFILE *sf;
    mpg123_handle *mh;
    int channels, rate, format;
    int64_t frames; /* from the header, -1 unknown */
} decoder;

static ctts_status dec_open(decoder *d, mem_io *io, SF_VIRTUAL_IO *vio, const char *name,
                            char *err, size_t err_len) {
    memset(d, 0, sizeof *d);
    d->frames = -1;
    if (looks_like_mpeg(io->data, (size_t)io->len)) {
        int e = MPG123_OK;
        mpg123_init();
        d->mh = mpg123_new(NULL, &e);
        if (!d->mh) return ctts_err(err, err_len, CTTS_E_OOM, "%s: cannot start the MP3 decoder", name);
        mpg123_param(d->mh, MPG123_ADD_FLAGS, MPG123_QUIET, 0.);
        mpg123_param(d->mh, MPG123_REMOVE_FLAGS, MPG123_AUTO_RESAMPLE, 0.);
        mpg123_param(d->mh, MPG123_ADD_FLAGS, MPG123_FORCE_FLOAT | MPG123_GAPLESS, 0.);
#if MPG123_API_VERSION >= 45
        mpg123_param(d->mh, MPG123_ADD_FLAGS, MPG123_NO_FRANKENSTEIN, 0.);
#endif
        long rate = 0;
        int ch = 0, enc = 0;
        if (mpg123_replace_reader_handle(d->mh, mpio_read, mpio_seek, NULL) != MPG123_OK ||
            mpg123_open_handle(d->mh, io) != MPG123_OK ||
            mpg123_getformat(d->mh, &rate, &ch, &enc) != MPG123_OK ||
            enc != MPG123_ENC_FLOAT_32) {
            const char *why = mpg123_strerror(d->mh);
            ctts_status st = ctts_err(err, err_len, CTTS_E_FORMAT,
                                      "%s: not a readable MP3 file (mpg123: %s)", name,
                                      why ? why : "no audio frame");
            mpg123_delete(d->mh);
            d->mh = NULL;
            return st;
        }
        mpg123_format_none(d->mh);
        mpg123_format(d->mh, rate, ch, MPG123_ENC_FLOAT_32);
        d->channels = ch;
        d->rate = rate > 0 && rate < 1L << 30 ? (int)rate : 0;
        d->format = SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
        off_t len = mpg123_length(d->mh);
        d->frames = len > 0 ? (int64_t)len : -1;
        return CTTS_OK;
    }
    SF_INFO info;
    memset(&info, 0, sizeof info);
    d->sf = sf_open_virtual(vio, SFM_READ, &info, io);
    if (!d->sf)
        return ctts_err(err, err_len, CTTS_E_FORMAT,
                        "%s: not a readable audio file (libsndfile: %s)", name, sf_strerror(NULL));
    d->channels = info.channels;
    d->rate = info.samplerate;
    d->format = info.format;
    d->frames = info.frames > 0 ? (int64_t)info.frames : -1;
    return CTTS_OK;
}

/* Reads up to want frames; returns frames read, 0 at the end or on a decode error. */
static int64_t dec_read(decoder *d, float *buf, int64_t want) {
    if (d->sf) {
        sf_count_t got = sf_readf_float(d->sf, buf, want);
        return got > 0 ? got : 0;
    }
    size_t bytes = (size_t)want * (size_t)d->channels * sizeof(float), have = 0;
    while (have < bytes) {
        size_t done = 0;
        int e = mpg123_read(d->mh, (unsigned char *)buf + have, bytes - have, &done);
        have += done;
        if (e == MPG123_NEW_FORMAT) continue; /* format locked at open: same layout */
        if (e != MPG123_OK || done == 0) break;
    }
    return (int64_t)(have / ((size_t)d->channels * sizeof(float)));
}

static void dec_close(decoder *d) {
    if (d->sf) sf_close(d->sf);
    if (d->mh) {
        mpg123_close(d->mh);
        mpg123_delete(d->mh);
    }
    memset(d, 0, sizeof *d);
}

void audio_clip_free(audio_clip *c) {
    if (!c) return;
    free(c->pcm);
    memset(c, 0, sizeof *c);
}

/* k frames of interleaved audio to mono: float32 sum in channel order, / ch. */
static void downmix(const float *in, size_t k, int ch, float *out) {
    if (ch == 1) {
        memcpy(out, in, k * sizeof *out);
        return;
    }
    const float div = (float)ch;
    for (size_t i = 0; i < k; i++) {
        float s = 0.0f;
        for (int c = 0; c < ch; c++) s = s + in[i * (size_t)ch + (size_t)c];
        out[i] = s / div;
    }
}

ctts_status audio_read_memory(const void *data, size_t len, const char *name, double max_seconds,
                              audio_clip *out, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    if (!name) name = "<audio>";
    if (!data || len == 0) return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: empty file", name);
    if (!(max_seconds >= 0) || max_seconds > AUDIO_MAX_SECONDS)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "%s: bad max_seconds %g (0..%g)", name,
                        max_seconds, AUDIO_MAX_SECONDS);
    mem_io io = {.data = data, .len = (int64_t)len, .pos = 0};
    SF_VIRTUAL_IO vio = {sfio_len, sfio_seek, sfio_read, sfio_write, sfio_tell};
    decoder d;
    ctts_status st = dec_open(&d, &io, &vio, name, err, err_len);
    if (st != CTTS_OK) return st;
    if (d.channels < 1 || d.channels > AUDIO_MAX_CHANNELS)
        st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: %d channels (need 1..%d)", name,
                      d.channels, AUDIO_MAX_CHANNELS);
    else if (d.rate < AUDIO_MIN_RATE || d.rate > AUDIO_MAX_RATE)
        st = ctts_err(err, err_len, CTTS_E_FORMAT,
                      "%s: sample rate %d Hz is outside the supported %d..%d Hz", name, d.rate,
                      AUDIO_MIN_RATE, AUDIO_MAX_RATE);
    if (st != CTTS_OK) {
        dec_close(&d);
        return st;
    }
    const int ch = d.channels;
    /* Frame limit: the cut, or the hard cap (exceeding the cap is an error). */
    const int cut = max_seconds > 0;
    const int64_t limit =
        (int64_t)floor((cut ? max_seconds : AUDIO_MAX_SECONDS) * (double)d.rate);
    /* The header's frame count only sizes the first allocation (never trusted
     * beyond a few million frames): memory follows the frames really decoded. */
    size_t cap = d.frames > 0 ? (size_t)(d.frames < limit ? d.frames : limit) : 0;
    if (cap > INITIAL_CAP_FRAMES) cap = INITIAL_CAP_FRAMES;
    if (cap < READ_BLOCK_FRAMES) cap = READ_BLOCK_FRAMES;
    float *block = malloc((size_t)READ_BLOCK_FRAMES * (size_t)ch * sizeof *block);
    float *pcm = malloc(cap * sizeof *pcm);
    if (!block || !pcm) st = ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory", name);
    size_t n = 0;
    int over = 0;
    while (st == CTTS_OK) {
        int64_t want = READ_BLOCK_FRAMES;
        if ((int64_t)n + want > limit) want = limit - (int64_t)n;
        if (want <= 0) {
            /* At the limit: anything left means the clip was cut (or is too long). */
            over = dec_read(&d, block, 1) > 0;
            break;
        }
        int64_t got = dec_read(&d, block, want);
        if (got <= 0) break;
        if (n + (size_t)got > cap) {
            size_t ncap = cap * 2 > n + (size_t)got ? cap * 2 : n + (size_t)got;
            if (ncap > (size_t)limit) ncap = (size_t)limit;
            float *np = realloc(pcm, ncap * sizeof *np);
            if (!np) {
                st = ctts_err(err, err_len, CTTS_E_OOM, "%s: out of memory (%zu samples)", name,
                              ncap);
                break;
            }
            pcm = np;
            cap = ncap;
        }
        for (int64_t i = 0; i < got * ch && st == CTTS_OK; i++)
            if (!isfinite(block[i]))
                st = ctts_err(err, err_len, CTTS_E_FORMAT,
                              "%s: sample %lld is not a finite number", name,
                              (long long)((int64_t)n + i / ch));
        if (st != CTTS_OK) break;
        downmix(block, (size_t)got, ch, pcm + n);
        n += (size_t)got;
    }
    if (st == CTTS_OK && n == 0)
        st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: no audio samples (header only?)", name);
    if (st == CTTS_OK && over && !cut)
        st = ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                      "%s: longer than %.0f s; cut it or ask for a maximum length", name,
                      AUDIO_MAX_SECONDS);
    const int rate = d.rate, format = d.format;
    dec_close(&d);
    free(block);
    if (st != CTTS_OK) {
        free(pcm);
        return st;
    }
    out->pcm = pcm;
    out->n = n;
    out->sample_rate = rate;
    out->channels = ch;
    out->truncated = over;
    out->sf_format = format;
    return CTTS_OK;
}

ctts_status audio_read(const char *path, double max_seconds, audio_clip *out, char *err,
                       size_t err_len) {
    memset(out, 0, sizeof *out);
    if (!path) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "no audio path");
    ctts_mapped_file f;
    ctts_status st = ctts_map_file(path, &f, err, err_len);
    if (st != CTTS_OK) return st;
    st = audio_read_memory(f.data, f.size, path, max_seconds, out, err, err_len);
    ctts_unmap_file(&f);
    return st;
}
