/*
 * Tests for src/audio/wav: s16 / f32 write -> read round trips (exact
 * quantization rule), streaming writer, the golden 22 kHz voice prompt, the
 * other PCM widths and WAVE_FORMAT_EXTENSIBLE built in memory, chunk order and
 * padding, and malformed files (each checked for status and message).
 */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "audio/wav.h"

static char tmp_dir[64];

static const char *tmp_path(const char *name) {
    static char buf[256];
    if (!tmp_dir[0]) {
        strcpy(tmp_dir, "/tmp/ctts_wav_XXXXXX");
        if (!mkdtemp(tmp_dir)) return NULL;
    }
    snprintf(buf, sizeof buf, "%s/%s", tmp_dir, name);
    return buf;
}

static void put16(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Builds a canonical 44-byte-header WAV in buf; returns the total length. */
static size_t make_wav(unsigned char *buf, int tag, int ch, uint32_t rate, int bits, int align,
                       const void *data, uint32_t data_len) {
    memcpy(buf, "RIFF", 4);
    put32(buf + 4, 36 + data_len);
    memcpy(buf + 8, "WAVEfmt ", 8);
    put32(buf + 16, 16);
    put16(buf + 20, (unsigned)tag);
    put16(buf + 22, (unsigned)ch);
    put32(buf + 24, rate);
    put32(buf + 28, rate * (uint32_t)align);
    put16(buf + 32, (unsigned)align);
    put16(buf + 34, (unsigned)bits);
    memcpy(buf + 36, "data", 4);
    put32(buf + 40, data_len);
    if (data_len) memcpy(buf + 44, data, data_len);
    return 44 + data_len;
}

static void expect_mem_error(const void *b, size_t n, ctts_status want, const char *needle) {
    wav_audio a;
    char err[256] = "";
    ctts_status st = wav_read_memory(b, n, "mem.wav", &a, err, sizeof err);
    if (st != want) TEST_FAIL_AT("status %d, expected %d (%s) for '%s'", st, want, err, needle);
    if (!strstr(err, needle)) TEST_FAIL_AT("error '%s' does not contain '%s'", err, needle);
    if (!strstr(err, "mem.wav")) TEST_FAIL_AT("error '%s' does not name the file", err);
    if (a.samples) TEST_FAIL_AT("samples left allocated on error");
    wav_free(&a);
}

static void test_round_trip_s16(void) {
    float pcm[9] = {0.0f, 0.5f, -0.5f, 1.0f, -1.0f, 2.0f, -3.0f, 0.99999f, 1e-5f};
    int16_t want[9] = {0, 16383, -16383, 32767, -32767, 32767, -32767, 32766, 0};
    const char *p = tmp_path("s16.wav");
    char err[256];
    REQUIRE(wav_write(p, pcm, 9, 24000, 0, err, sizeof err) == CTTS_OK);
    struct stat sb;
    REQUIRE(stat(p, &sb) == 0);
    CHECK_EQ_INT(sb.st_size, 44 + 18);
    wav_audio a;
    REQUIRE(wav_read(p, &a, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(a.frames, 9);
    CHECK_EQ_INT(a.channels, 1);
    CHECK_EQ_INT(a.sample_rate, 24000);
    CHECK_EQ_INT(a.bits, 16);
    CHECK(!a.is_float);
    for (int i = 0; i < 9; i++) CHECK_NEAR(a.samples[i], want[i] / 32768.0, 0);
    wav_free(&a);
    CHECK(a.samples == NULL);
}

static void test_round_trip_f32(void) {
    float pcm[5] = {0.0f, 0.123456789f, -1.5f, 1e-30f, -0.0f};
    const char *p = tmp_path("f32.wav");
    char err[256];
    REQUIRE(wav_write(p, pcm, 5, 44100, 1, err, sizeof err) == CTTS_OK);
    wav_audio a;
    REQUIRE(wav_read(p, &a, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(a.frames, 5);
    CHECK_EQ_INT(a.sample_rate, 44100);
    CHECK(a.is_float && a.bits == 32);
    CHECK(memcmp(a.samples, pcm, sizeof pcm) == 0);
    wav_free(&a);
}

static void test_streaming_writer(void) {
    const char *p = tmp_path("stream.wav");
    char err[256];
    wav_writer *w;
    REQUIRE(wav_writer_open(p, 16000, 0, &w, err, sizeof err) == CTTS_OK);
    float chunk[5000];
    for (int i = 0; i < 5000; i++) chunk[i] = (float)(i % 100) / 100.0f - 0.5f;
    for (int k = 0; k < 3; k++) REQUIRE(wav_writer_append(w, chunk, 5000, err, sizeof err) == CTTS_OK);
    REQUIRE(wav_writer_append(w, chunk, 0, err, sizeof err) == CTTS_OK);
    REQUIRE(wav_writer_close(w, err, sizeof err) == CTTS_OK);
    wav_audio a;
    REQUIRE(wav_read(p, &a, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(a.frames, 15000);
    CHECK_NEAR(a.samples[10001], (int16_t)(chunk[1] * 32767.0f) / 32768.0, 0);
    wav_free(&a);

    /* empty stream is a valid 0-frame file */
    REQUIRE(wav_writer_open(p, 16000, 1, &w, err, sizeof err) == CTTS_OK);
    REQUIRE(wav_writer_close(w, err, sizeof err) == CTTS_OK);
    REQUIRE(wav_read(p, &a, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(a.frames, 0);
    CHECK(a.samples == NULL);
    wav_free(&a);
}

static void test_write_errors(void) {
    char err[256];
    float x = 0;
    CHECK(wav_write("/nonexistent-dir/y.wav", &x, 1, 24000, 0, err, sizeof err) == CTTS_E_IO);
    CHECK_STR_CONTAINS(err, "cannot write '/nonexistent-dir/y.wav'");
    CHECK(wav_write(tmp_path("r.wav"), &x, 1, 0, 0, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "sample rate");
    CHECK(wav_write(tmp_path("r.wav"), &x, 1, 24000, 7, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "format");
    CHECK(access(tmp_path("r.wav"), F_OK) != 0);
}

static void test_golden_voice(void) {
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/pocket-tiny/voice/voice_22k.wav", test_golden_dir());
    if (access(path, R_OK) != 0) SKIP("golden voice missing");
    wav_audio a;
    REQUIRE(wav_read(path, &a, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(a.frames, 143497);
    CHECK_EQ_INT(a.sample_rate, 22050);
    CHECK_EQ_INT(a.channels, 1);
    CHECK_EQ_INT(a.bits, 16);
    CHECK(!a.is_float);
    CHECK(a.samples[75567] == -32581.0f / 32768.0f);
    CHECK(a.samples[1000] == -235.0f / 32768.0f);
    CHECK(a.samples[143496] == 0.0f);
    wav_free(&a);
}

static void test_pcm_widths(void) {
    unsigned char buf[256];
    char err[256];
    wav_audio a;
    /* 8-bit unsigned, stereo */
    unsigned char u8[4] = {0, 128, 255, 64};
    size_t n = make_wav(buf, 1, 2, 8000, 8, 2, u8, 4);
    REQUIRE(wav_read_memory(buf, n, "u8", &a, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(a.frames, 2);
    CHECK_EQ_INT(a.channels, 2);
    CHECK(a.samples[0] == -1.0f && a.samples[1] == 0.0f && a.samples[2] == 127.0f / 128.0f && a.samples[3] == -0.5f);
    wav_free(&a);
    /* 24-bit */
    unsigned char s24[6] = {0x00, 0x00, 0x80, 0xff, 0xff, 0x7f};
    n = make_wav(buf, 1, 1, 48000, 24, 3, s24, 6);
    REQUIRE(wav_read_memory(buf, n, "s24", &a, err, sizeof err) == CTTS_OK);
    CHECK(a.frames == 2 && a.samples[0] == -1.0f);
    CHECK_NEAR(a.samples[1], 8388607.0 / 8388608.0, 1e-7);
    wav_free(&a);
    /* 32-bit int */
    unsigned char s32[8] = {0, 0, 0, 0x80, 0, 0, 0, 0x40};
    n = make_wav(buf, 1, 1, 48000, 32, 4, s32, 8);
    REQUIRE(wav_read_memory(buf, n, "s32", &a, err, sizeof err) == CTTS_OK);
    CHECK(a.frames == 2 && a.samples[0] == -1.0f && a.samples[1] == 0.5f);
    wav_free(&a);
    /* float64 */
    double f64[2] = {0.25, -2.0};
    n = make_wav(buf, 3, 1, 48000, 64, 8, f64, 16);
    REQUIRE(wav_read_memory(buf, n, "f64", &a, err, sizeof err) == CTTS_OK);
    CHECK(a.frames == 2 && a.samples[0] == 0.25f && a.samples[1] == -2.0f && a.is_float && a.bits == 64);
    wav_free(&a);
}

static void test_extensible_and_chunks(void) {
    unsigned char buf[256];
    char err[256];
    wav_audio a;
    /* EXTENSIBLE 16-bit PCM, a LIST chunk with odd size (padded) before fmt, data before fmt */
    size_t o = 0;
    memcpy(buf, "RIFF\0\0\0\0WAVE", 12);
    o = 12;
    memcpy(buf + o, "LIST", 4);
    put32(buf + o + 4, 3);
    memcpy(buf + o + 8, "abc\0", 4);
    o += 12;
    memcpy(buf + o, "data", 4);
    put32(buf + o + 4, 4);
    put16(buf + o + 8, 0x4000);
    put16(buf + o + 10, 0xC000);
    o += 12;
    memcpy(buf + o, "fmt ", 4);
    put32(buf + o + 4, 40);
    unsigned char *f = buf + o + 8;
    memset(f, 0, 40);
    put16(f, 0xFFFE);
    put16(f + 2, 1);
    put32(f + 4, 24000);
    put32(f + 8, 48000);
    put16(f + 12, 2);
    put16(f + 14, 16);
    put16(f + 16, 22);
    put16(f + 18, 16);
    put32(f + 20, 4);
    static const unsigned char guid[16] = {1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71};
    memcpy(f + 24, guid, 16);
    o += 48;
    put32(buf + 4, (uint32_t)(o - 8));
    REQUIRE(wav_read_memory(buf, o, "ext", &a, err, sizeof err) == CTTS_OK);
    CHECK(a.frames == 2 && a.samples[0] == 0.5f && a.samples[1] == -0.5f && a.sample_rate == 24000);
    wav_free(&a);
    /* unknown subformat */
    f[24] = 7;
    expect_mem_error(buf, o, CTTS_E_UNSUPPORTED, "WAV format tag 7");
    /* bad GUID tail */
    f[24] = 1;
    f[39] = 0;
    expect_mem_error(buf, o, CTTS_E_UNSUPPORTED, "subformat");

    /* streaming data size 0xFFFFFFFF: clamped, partial frame dropped */
    int16_t s[3] = {100, -100, 7};
    size_t n = make_wav(buf, 1, 1, 24000, 16, 2, s, 6);
    put32(buf + 40, 0xFFFFFFFFu);
    put32(buf + 4, 0xFFFFFFFFu);
    REQUIRE(wav_read_memory(buf, n - 1, "stream", &a, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(a.frames, 2);
    wav_free(&a);

    /* stdout-style file written by our own streaming writer reads back */
    const char *p = tmp_path("unknown.wav");
    char errw[256];
    float pcm[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    REQUIRE(wav_write(p, pcm, 4, 24000, 1, errw, sizeof errw) == CTTS_OK);
    FILE *fp = fopen(p, "r+b");
    REQUIRE(fp);
    unsigned char ff[4] = {0xff, 0xff, 0xff, 0xff};
    fseek(fp, 54, SEEK_SET);
    fwrite(ff, 1, 4, fp);
    fclose(fp);
    REQUIRE(wav_read(p, &a, err, sizeof err) == CTTS_OK);
    CHECK(a.frames == 4 && a.samples[3] == 0.4f);
    wav_free(&a);
}

static void test_malformed(void) {
    unsigned char buf[256] = {0};
    int16_t s[4] = {1, 2, 3, 4};
    char err[256];
    wav_audio a;

    expect_mem_error(buf, 0, CTTS_E_FORMAT, "empty file");
    expect_mem_error("hello world, this is text\n", 26, CTTS_E_FORMAT, "not a RIFF/WAVE file");
    expect_mem_error("RIFF\x04\0\0\0WAVE", 12, CTTS_E_FORMAT, "no 'fmt ' chunk");
    size_t n = make_wav(buf, 1, 1, 24000, 16, 2, s, 8);
    expect_mem_error(buf, 40, CTTS_E_FORMAT, "truncated chunk header");
    expect_mem_error(buf, 44, CTTS_E_FORMAT, "truncated 'data' chunk: 8 bytes declared, 0 present");
    expect_mem_error(buf, n - 2, CTTS_E_FORMAT, "truncated 'data' chunk");
    expect_mem_error(buf, 30, CTTS_E_FORMAT, "truncated 'fmt ' chunk");
    /* fmt only, no data */
    memcpy(buf + 36, "junk", 4);
    expect_mem_error(buf, n, CTTS_E_FORMAT, "no 'data' chunk");
    n = make_wav(buf, 1, 0, 24000, 16, 0, s, 8);
    expect_mem_error(buf, n, CTTS_E_FORMAT, "0 channels");
    n = make_wav(buf, 1, 65, 24000, 16, 130, s, 8);
    expect_mem_error(buf, n, CTTS_E_FORMAT, "65 channels");
    n = make_wav(buf, 1, 1, 4000000000u, 16, 2, s, 8);
    expect_mem_error(buf, n, CTTS_E_FORMAT, "sample rate 4000000000 Hz");
    n = make_wav(buf, 1, 1, 0, 16, 2, s, 8);
    expect_mem_error(buf, n, CTTS_E_FORMAT, "sample rate 0 Hz");
    n = make_wav(buf, 1, 2, 24000, 16, 2, s, 8);
    expect_mem_error(buf, n, CTTS_E_FORMAT, "block_align 2 does not match 2 channels x 16 bits");
    n = make_wav(buf, 1, 1, 24000, 12, 2, s, 8);
    expect_mem_error(buf, n, CTTS_E_UNSUPPORTED, "12-bit PCM");
    n = make_wav(buf, 6, 1, 8000, 8, 1, s, 8);
    expect_mem_error(buf, n, CTTS_E_UNSUPPORTED, "format tag 6");
    /* huge non-data chunk size */
    n = make_wav(buf, 1, 1, 24000, 16, 2, s, 8);
    put32(buf + 16, 0xFFFFFFF0u);
    expect_mem_error(buf, n, CTTS_E_FORMAT, "truncated 'fmt ' chunk");
    n = make_wav(buf, 1, 1, 24000, 16, 2, s, 8);
    put32(buf + 16, 8);
    expect_mem_error(buf, n, CTTS_E_FORMAT, "need at least 16");

    /* a valid header with an empty data chunk is a 0-frame file */
    n = make_wav(buf, 1, 1, 24000, 16, 2, s, 0);
    REQUIRE(wav_read_memory(buf, n, "zero", &a, err, sizeof err) == CTTS_OK);
    CHECK(a.frames == 0 && a.samples == NULL);
    wav_free(&a);

    /* files on disk: missing, empty, text renamed .wav */
    CHECK(wav_read(tmp_path("missing.wav"), &a, err, sizeof err) == CTTS_E_IO);
    CHECK_STR_CONTAINS(err, "missing.wav");
    const char *p = tmp_path("empty.wav");
    FILE *fp = fopen(p, "wb");
    REQUIRE(fp);
    fclose(fp);
    CHECK(wav_read(p, &a, err, sizeof err) == CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "empty.wav: empty file");
    p = tmp_path("text.wav");
    fp = fopen(p, "wb");
    REQUIRE(fp);
    fputs("This is not audio at all, just some text in a file.\n", fp);
    fclose(fp);
    CHECK(wav_read(p, &a, err, sizeof err) == CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "text.wav: not a RIFF/WAVE file");
}

static void test_truncation_sweep(void) {
    /* every prefix of a valid file is either an error or a valid shorter read, never a crash */
    float pcm[50];
    for (int i = 0; i < 50; i++) pcm[i] = (float)i / 50.0f;
    const char *p = tmp_path("sweep.wav");
    char err[256];
    REQUIRE(wav_write(p, pcm, 50, 24000, 1, err, sizeof err) == CTTS_OK);
    FILE *fp = fopen(p, "rb");
    REQUIRE(fp);
    unsigned char buf[512];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    REQUIRE(n == 58 + 200);
    int ok = 0;
    for (size_t len = 0; len <= n; len++) {
        unsigned char *copy = malloc(len ? len : 1); /* exact-size heap copy for ASan */
        REQUIRE(copy);
        memcpy(copy, buf, len);
        wav_audio a;
        ctts_status st = wav_read_memory(copy, len, "sweep", &a, err, sizeof err);
        if (st == CTTS_OK) ok++;
        wav_free(&a);
        free(copy);
    }
    CHECK_EQ_INT(ok, 1); /* only the full file is valid */
    if (tmp_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
        CHECK(system(cmd) == 0);
    }
}

TEST_MAIN(T(test_round_trip_s16), T(test_round_trip_f32), T(test_streaming_writer), T(test_write_errors),
          T(test_golden_voice), T(test_pcm_widths), T(test_extensible_and_chunks), T(test_malformed),
          T(test_truncation_sweep))
