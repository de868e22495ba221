/*
 * Audio input for voice cloning: SHA-256 (cache keys), the resample_poly port
 * (bit patterns produced by SciPy 1.10 for small inputs, filter properties,
 * lengths) and audio_read over files written here (WAV 8/16/24-bit PCM and
 * float, stereo, FLAC, OGG, MP3 through libsndfile, content detection with a
 * misleading extension, the 30 s cut) and every hostile file of the voice
 * cloning issue (empty, header only, 0 channels, absurd rates, text renamed
 * .wav, truncated MP3, NaN samples).
 */
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio_read.h"
#include "audio/resample.h"
#include "base/sha256.h"
#include "harness.h"

static char tmpdir[64];

static const char *tmp(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/ctts_audio_XXXXXX");
        if (!mkdtemp(tmpdir)) tmpdir[0] = 0;
    }
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void put_le(unsigned char *p, uint32_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A canonical 44-byte WAV header followed by data_len bytes of data; the data
 * chunk's size field says data_size. */
static int write_wav_raw(const char *path, int tag, int channels, uint32_t rate, int bits,
                         const void *data, size_t data_len, uint32_t data_size) {
    unsigned char h[44];
    memcpy(h, "RIFF", 4);
    put_le(h + 4, (uint32_t)(36 + data_len), 4);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le(h + 16, 16, 4);
    put_le(h + 20, (uint32_t)tag, 2);
    put_le(h + 22, (uint32_t)channels, 2);
    put_le(h + 24, rate, 4);
    put_le(h + 28, rate * (uint32_t)channels * (uint32_t)(bits / 8), 4);
    put_le(h + 32, (uint32_t)(channels * bits / 8), 2);
    put_le(h + 34, (uint32_t)bits, 2);
    memcpy(h + 36, "data", 4);
    put_le(h + 40, data_size, 4);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fwrite(h, 1, 44, f);
    if (data_len) fwrite(data, 1, data_len, f);
    return fclose(f);
}

/* Writes float frames with libsndfile in the given format. */
static int write_sf(const char *path, int format, int channels, int rate, const float *x,
                    sf_count_t frames) {
    SF_INFO si = {.samplerate = rate, .channels = channels, .format = format};
    SNDFILE *f = sf_open(path, SFM_WRITE, &si);
    if (!f) return -1;
    sf_count_t w = sf_writef_float(f, x, frames);
    sf_close(f);
    return w == frames ? 0 : -1;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

static float *tone(size_t n, float amp, float step) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = amp * sinf((float)i * step);
    return x;
}

/* ---- sha256 ---- */

static void test_sha256_vectors(void) {
    unsigned char d[32];
    char hex[65];
    ctts_sha256_buf("", 0, d);
    ctts_hex(d, 32, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    ctts_sha256_buf("abc", 3, d);
    ctts_hex(d, 32, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ctts_sha256_buf(m, strlen(m), d);
    ctts_hex(d, 32, hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    /* One million 'a', fed in uneven pieces. */
    char *a = malloc(1000000);
    REQUIRE(a);
    memset(a, 'a', 1000000);
    ctts_sha256 s;
    ctts_sha256_init(&s);
    size_t off = 0, step = 1;
    while (off < 1000000) {
        size_t k = 1000000 - off < step ? 1000000 - off : step;
        ctts_sha256_update(&s, a + off, k);
        off += k;
        step = step * 3 % 997 + 1;
    }
    ctts_sha256_final(&s, d);
    ctts_hex(d, 32, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    free(a);
}

/* ---- resample ---- */

static int same_bits(const float *y, const uint32_t *ref, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &y[i], 4);
        if (u != ref[i]) {
            fprintf(stderr, "    sample %zu: 0x%08x, scipy 0x%08x\n", i, u, ref[i]);
            return 0;
        }
    }
    return 1;
}

/* scipy.signal.resample_poly(np.float32([1..5]) * np.float32(0.1), up, down), SciPy 1.10.1. */
static void test_resample_matches_scipy_bits(void) {
    float x[5];
    for (int i = 0; i < 5; i++) x[i] = (float)(i + 1) * 0.1f;
    static const uint32_t r32[] = {0x3dccec95, 0x3e1fe553, 0x3e7fec36, 0x3e99b170,
                                   0x3ea9ab47, 0x3efacea2, 0x3f0013dd, 0x3e256bfc};
    static const uint32_t r160[] = {0x3dccf032, 0x3e40d21d, 0x3e97b80d,
                                    0x3eb10fb5, 0x3f0ad605, 0x3e5103a1};
    static const uint32_t r12[] = {0x3d957dcf, 0x3eae214e, 0x3eb6975a};
    struct {
        int up, down;
        const uint32_t *ref;
        size_t n;
    } cases[] = {{3, 2, r32, 8}, {160, 147, r160, 6}, {2, 4, r12, 3}, {24000, 22050, r160, 6}};
    char err[256];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float *y = NULL;
        size_t ny = 0;
        REQUIRE(resample_poly(x, 5, cases[c].up, cases[c].down, &y, &ny, err, sizeof err) ==
                CTTS_OK);
        CHECK_EQ_INT(ny, cases[c].n);
        if (ny == cases[c].n) CHECK(same_bits(y, cases[c].ref, ny));
        free(y);
    }
}

static void test_resample_filter_and_lengths(void) {
    char err[256];
    float *h = NULL;
    size_t nh = 0;
    REQUIRE(resample_poly_filter(320, 294, &h, &nh, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(nh, 2 * 10 * 160 + 1); /* reduced to 160/147 */
    double sum = 0;
    int symmetric = 1;
    for (size_t i = 0; i < nh; i++) {
        sum += h[i];
        if (h[i] != h[nh - 1 - i]) symmetric = 0;
    }
    CHECK(symmetric);
    CHECK_NEAR(sum, 160.0, 1e-3); /* unit DC gain after the x up scaling */
    CHECK_NEAR(h[nh / 2], 1.0, 2e-3); /* centre tap: about up * fc = 1 */
    free(h);
    /* Output length ceil(n * up / down) for a few n, and equal rates copy. */
    float *x = tone(1000, 0.5f, 0.01f), *y = NULL;
    size_t ny = 0;
    size_t ns[] = {1, 2, 146, 147, 148, 999};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        REQUIRE(resample_poly(x, ns[i], 160, 147, &y, &ny, err, sizeof err) == CTTS_OK);
        CHECK_EQ_INT(ny, (ns[i] * 160 + 146) / 147);
        free(y);
    }
    REQUIRE(resample_rate(x, 1000, 24000, 24000, &y, &ny, err, sizeof err) == CTTS_OK);
    CHECK(ny == 1000 && memcmp(x, y, 1000 * sizeof *x) == 0);
    free(y);
    REQUIRE(resample_poly(x, 0, 3, 2, &y, &ny, err, sizeof err) == CTTS_OK);
    CHECK(y == NULL && ny == 0);
    /* A constant signal stays constant away from the edges (DC gain 1). */
    for (int i = 0; i < 1000; i++) x[i] = 0.25f;
    REQUIRE(resample_rate(x, 1000, 44100, 24000, &y, &ny, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(ny, (1000 * 80 + 146) / 147);
    CHECK_NEAR(y[ny / 2], 0.25, 1e-3);
    free(y);
    /* Bad factors. */
    CHECK(resample_poly(x, 10, 0, 1, &y, &ny, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK(resample_poly(x, 10, 1, -3, &y, &ny, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK(resample_poly(x, 10, 1, 2000003, &y, &ny, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "too fine");
    free(x);
}

/* ---- audio_read ---- */

static void test_read_wav_widths(void) {
    char err[512];
    audio_clip c;
    /* 16-bit: exactly int16 / 32768 (what the official reader gives). */
    int16_t s16[] = {0, 1, -1, 32767, -32768, 12345};
    REQUIRE(write_wav_raw(tmp("s16.wav"), 1, 1, 22050, 16, s16, sizeof s16, sizeof s16) == 0);
    REQUIRE(audio_read(tmp("s16.wav"), 0, &c, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(c.n, 6);
    CHECK_EQ_INT(c.sample_rate, 22050);
    CHECK_EQ_INT(c.channels, 1);
    for (int i = 0; i < 6 && c.n == 6; i++) CHECK(c.pcm[i] == (float)s16[i] / 32768.0f);
    audio_clip_free(&c);
    /* 24-bit: decoded as 24-bit (the official .wav path would misread it as int16). */
    unsigned char s24[9] = {0x00, 0x00, 0x40, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x80};
    REQUIRE(write_wav_raw(tmp("s24.wav"), 1, 1, 48000, 24, s24, 9, 9) == 0);
    REQUIRE(audio_read(tmp("s24.wav"), 0, &c, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(c.n, 3);
    if (c.n == 3) {
        CHECK(c.pcm[0] == 0.5f);
        CHECK(c.pcm[1] == -1.0f / 8388608.0f);
        CHECK(c.pcm[2] == -1.0f);
    }
    audio_clip_free(&c);
    /* 8-bit unsigned. */
    unsigned char u8[] = {128, 192, 0};
    REQUIRE(write_wav_raw(tmp("u8.wav"), 1, 1, 8000, 8, u8, 3, 3) == 0);
    REQUIRE(audio_read(tmp("u8.wav"), 0, &c, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(c.n, 3);
    if (c.n == 3) CHECK(c.pcm[0] == 0.0f && c.pcm[1] == 0.5f && c.pcm[2] == -1.0f);
    audio_clip_free(&c);
    /* 32-bit float, kept as stored. */
    float f32[] = {0.25f, -0.125f, 1.5f};
    REQUIRE(write_wav_raw(tmp("f32.wav"), 3, 1, 16000, 32, f32, sizeof f32, sizeof f32) == 0);
    REQUIRE(audio_read(tmp("f32.wav"), 0, &c, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(c.n, 3);
    if (c.n == 3) CHECK(c.pcm[0] == 0.25f && c.pcm[1] == -0.125f && c.pcm[2] == 1.5f);
    audio_clip_free(&c);
}

static void test_read_stereo_downmix(void) {
    char err[512];
    audio_clip c;
    int16_t st[] = {16384, -8192, -32768, 32767, 100, 101};
    REQUIRE(write_wav_raw(tmp("st.wav"), 1, 2, 44100, 16, st, sizeof st, sizeof st) == 0);
    REQUIRE(audio_read(tmp("st.wav"), 0, &c, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(c.channels, 2);
    CHECK_EQ_INT(c.n, 3);
    for (int i = 0; i < 3 && c.n == 3; i++) {
        float l = st[2 * i] / 32768.0f, r = st[2 * i + 1] / 32768.0f;
        CHECK(c.pcm[i] == (l + r) / 2.0f);
    }
    audio_clip_free(&c);
    /* Three channels: (a + b + c) / 3 in float32, channel order. */
    float f3[] = {0.1f, 0.2f, 0.7f};
    REQUIRE(write_wav_raw(tmp("c3.wav"), 3, 3, 24000, 32, f3, sizeof f3, sizeof f3) == 0);
    REQUIRE(audio_read(tmp("c3.wav"), 0, &c, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(c.n, 1);
    if (c.n == 1) CHECK(c.pcm[0] == (0.1f + 0.2f + 0.7f) / 3.0f);
    audio_clip_free(&c);
}

/* FLAC / OGG / MP3 round trips; the format comes from the content. */
static void test_read_compressed_formats(void) {
    char err[512];
    const int rate = 24000;
    const size_t n = 24000;
    float *x = tone(n, 0.4f, 0.05f);
    struct {
        const char *name;
        int format;
        double tol; /* max |error| allowed after the codec, away from the edges */
    } fmts[] = {
        {"a.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 1.0 / 32768 + 1e-7},
        {"a.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 0.05},
        {"a.mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, -1}, /* encoder delay: energy only */
        {"mp3_named.wav", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, -1},
        {"flac_named.bin", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 1.0 / 32768 + 1e-7},
    };
    for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
        REQUIRE(write_sf(tmp(fmts[k].name), fmts[k].format, 1, rate, x, (sf_count_t)n) == 0);
        audio_clip c;
        ctts_status st = audio_read(tmp(fmts[k].name), 0, &c, err, sizeof err);
        if (st != CTTS_OK) {
            TEST_FAIL_AT("%s: %s", fmts[k].name, err);
            continue;
        }
        CHECK_EQ_INT(c.sample_rate, rate);
        CHECK(c.n >= n - 2000 && c.n <= n + 2000);
        double e_in = 0, e_out = 0, maxerr = 0;
        for (size_t i = 0; i < n; i++) e_in += (double)x[i] * x[i];
        for (size_t i = 0; i < c.n; i++) e_out += (double)c.pcm[i] * c.pcm[i];
        for (size_t i = 2000; i < n - 2000 && i < c.n; i++)
            if (fabs(c.pcm[i] - x[i]) > maxerr) maxerr = fabs(c.pcm[i] - x[i]);
        CHECK(e_out > 0.8 * e_in && e_out < 1.2 * e_in);
        if (fmts[k].tol > 0 && !(maxerr <= fmts[k].tol))
            TEST_FAIL_AT("%s: max error %g > %g", fmts[k].name, maxerr, fmts[k].tol);
        audio_clip_free(&c);
    }
    free(x);
}

/* The cut keeps floor(max_seconds * rate) frames and never decodes the rest;
 * without a cut, clips over AUDIO_MAX_SECONDS are refused. */
static void test_read_cut_and_long_files(void) {
    char err[512];
    const int rate = 8000;
    const size_t n = (size_t)rate * 600; /* 10 minutes */
    int16_t *s = malloc(n * sizeof *s);
    REQUIRE(s);
    for (size_t i = 0; i < n; i++) s[i] = (int16_t)((i * 37) % 20000 - 10000);
    REQUIRE(write_wav_raw(tmp("long.wav"), 1, 1, rate, 16, s, n * 2, (uint32_t)(n * 2)) == 0);
    audio_clip c;
    REQUIRE(audio_read(tmp("long.wav"), 30.0, &c, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(c.n, 30 * rate);
    CHECK_EQ_INT(c.truncated, 1);
    CHECK(c.pcm[c.n - 1] == s[c.n - 1] / 32768.0f);
    audio_clip_free(&c);
    REQUIRE(audio_read(tmp("long.wav"), 2.5, &c, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(c.n, 20000);
    audio_clip_free(&c);
    /* Exactly 600 s without a cut is accepted, whole. */
    REQUIRE(audio_read(tmp("long.wav"), 0, &c, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(c.n, n);
    CHECK_EQ_INT(c.truncated, 0);
    audio_clip_free(&c);
    /* A cut longer than the clip changes nothing; one above the hard cap is refused. */
    REQUIRE(audio_read(tmp("long.wav"), 599.5, &c, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(c.n, 599.5 * rate);
    CHECK_EQ_INT(c.truncated, 1);
    audio_clip_free(&c);
    REQUIRE(audio_read(tmp("long.wav"), 601, &c, err, sizeof err) != CTTS_OK);
    CHECK_STR_CONTAINS(err, "max_seconds");
    free(s);
    /* 601 s without a cut: refused with a clear message. */
    size_t n2 = (size_t)1000 * 601;
    int16_t *z = calloc(n2, sizeof *z);
    REQUIRE(z);
    REQUIRE(write_wav_raw(tmp("toolong.wav"), 1, 1, 1000, 16, z, n2 * 2, (uint32_t)(n2 * 2)) == 0);
    CHECK(audio_read(tmp("toolong.wav"), 0, &c, err, sizeof err) == CTTS_E_UNSUPPORTED);
    CHECK_STR_CONTAINS(err, "toolong.wav");
    CHECK_STR_CONTAINS(err, "longer than 600 s");
    CHECK(audio_read(tmp("toolong.wav"), 30, &c, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(c.n, 30000);
    audio_clip_free(&c);
    free(z);
}

/* Every hostile file gives a one-line error naming the file. */
static void test_read_hostile_files(void) {
    char err[512];
    audio_clip c;
    int16_t s16[480];
    memset(s16, 0, sizeof s16);
    struct {
        const char *name;
        ctts_status want;
        const char *needle;
    } cases[] = {
        {"empty.wav", CTTS_E_FORMAT, "empty file"},
        {"header_only.wav", CTTS_E_FORMAT, "no audio samples"},
        {"zero_channels.wav", CTTS_E_FORMAT, "not a readable audio file"},
        {"rate_huge.wav", CTTS_E_FORMAT, "not a readable audio file"},
        {"rate_2mhz.wav", CTTS_E_FORMAT, "sample rate 2000000 Hz is outside"},
        {"rate_1hz.wav", CTTS_E_FORMAT, "sample rate 1 Hz"},
        {"rate_zero.wav", CTTS_E_FORMAT, "not a readable audio file"},
        {"text.wav", CTTS_E_FORMAT, "not a readable audio file"},
        {"nan.wav", CTTS_E_FORMAT, "not a finite number"},
        {"mp3_stub.mp3", CTTS_E_FORMAT, ""},
    };
    write_bytes(tmp("empty.wav"), "", 0);
    write_wav_raw(tmp("header_only.wav"), 1, 1, 24000, 16, NULL, 0, 0);
    write_wav_raw(tmp("zero_channels.wav"), 1, 0, 24000, 16, s16, sizeof s16, sizeof s16);
    write_wav_raw(tmp("rate_huge.wav"), 1, 1, 4000000000u, 16, s16, sizeof s16, sizeof s16);
    write_wav_raw(tmp("rate_2mhz.wav"), 1, 1, 2000000, 16, s16, sizeof s16, sizeof s16);
    write_wav_raw(tmp("rate_1hz.wav"), 1, 1, 1, 16, s16, sizeof s16, sizeof s16);
    write_wav_raw(tmp("rate_zero.wav"), 1, 1, 0, 16, s16, sizeof s16, sizeof s16);
    const char *text = "This is not audio.\nJust a text file renamed to .wav.\n";
    write_bytes(tmp("text.wav"), text, strlen(text));
    float fnan[4] = {0.1f, NAN, 0.2f, 0.3f};
    write_wav_raw(tmp("nan.wav"), 3, 1, 24000, 32, fnan, sizeof fnan, sizeof fnan);
    /* An MPEG frame header (MPEG-1 layer III, 128 kbit/s, 44.1 kHz) and nothing else. */
    const unsigned char stub[] = {0xFF, 0xFB, 0x90, 0x64, 0x00, 0x00};
    write_bytes(tmp("mp3_stub.mp3"), stub, sizeof stub);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        err[0] = 0;
        ctts_status st = audio_read(tmp(cases[k].name), 30, &c, err, sizeof err);
        if (st != cases[k].want)
            TEST_FAIL_AT("%s: status %d, expected %d (%s)", cases[k].name, st, cases[k].want, err);
        CHECK(c.pcm == NULL && c.n == 0);
        CHECK_STR_CONTAINS(err, cases[k].name);
        CHECK_STR_CONTAINS(err, cases[k].needle);
        CHECK(strchr(err, '\n') == NULL);
        audio_clip_free(&c);
    }
    CHECK(audio_read(tmp("missing.wav"), 30, &c, err, sizeof err) == CTTS_E_IO);
    CHECK_STR_CONTAINS(err, "missing.wav");
    CHECK(audio_read_memory(NULL, 0, "buf", 0, &c, err, sizeof err) == CTTS_E_FORMAT);
    CHECK(audio_read_memory(s16, sizeof s16, "buf", -1, &c, err, sizeof err) ==
          CTTS_E_INVALID_ARG);
}

/* A real MP3 cut in the middle: the complete frames decode, nothing crashes;
 * cut inside the first frame it is refused. */
static void test_read_truncated_mp3(void) {
    char err[512];
    const size_t n = 48000;
    float *x = tone(n, 0.3f, 0.03f);
    REQUIRE(write_sf(tmp("full.mp3"), SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 1, 24000, x,
                     (sf_count_t)n) == 0);
    free(x);
    FILE *f = fopen(tmp("full.mp3"), "rb");
    REQUIRE(f);
    unsigned char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    REQUIRE(len > 2000 && len < sizeof buf);
    audio_clip full, half;
    REQUIRE(audio_read(tmp("full.mp3"), 0, &full, err, sizeof err) == CTTS_OK);
    write_bytes(tmp("half.mp3"), buf, len / 2 + 7);
    ctts_status st = audio_read(tmp("half.mp3"), 0, &half, err, sizeof err);
    if (st == CTTS_OK) {
        CHECK(half.n > 0 && half.n < full.n);
        CHECK_EQ_INT(half.sample_rate, 24000);
    } else {
        CHECK_STR_CONTAINS(err, "half.mp3");
    }
    audio_clip_free(&half);
    audio_clip_free(&full);
    write_bytes(tmp("tiny.mp3"), buf, 40);
    CHECK(audio_read(tmp("tiny.mp3"), 0, &half, err, sizeof err) != CTTS_OK);
    CHECK_STR_CONTAINS(err, "tiny.mp3");
}

static void cleanup(void) {
    if (!tmpdir[0]) return;
    const char *names[] = {"s16.wav", "s24.wav", "u8.wav", "f32.wav", "st.wav", "c3.wav",
                           "a.flac", "a.ogg", "a.mp3", "mp3_named.wav", "flac_named.bin",
                           "long.wav", "toolong.wav", "empty.wav", "header_only.wav",
                           "zero_channels.wav", "rate_huge.wav", "rate_2mhz.wav", "rate_1hz.wav",
                           "rate_zero.wav", "text.wav", "nan.wav", "mp3_stub.mp3", "full.mp3",
                           "half.mp3", "tiny.mp3"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) remove(tmp(names[i]));
    rmdir(tmpdir);
}

static void test_zz_cleanup(void) { cleanup(); }

TEST_MAIN(T(test_sha256_vectors), T(test_resample_matches_scipy_bits),
          T(test_resample_filter_and_lengths), T(test_read_wav_widths),
          T(test_read_stereo_downmix), T(test_read_compressed_formats),
          T(test_read_cut_and_long_files), T(test_read_hostile_files),
          T(test_read_truncated_mp3), T(test_zz_cleanup))
