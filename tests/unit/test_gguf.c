/*
 * GGUF reader / writer: a round trip of tensors of every dtype (names,
 * shapes outermost first, bytes, string metadata), and malformed files (bad
 * magic / version, truncation at every length, a tensor offset beyond the
 * end, an unknown tensor type) that must fail with CTTS_E_FORMAT or
 * CTTS_E_UNSUPPORTED and a message naming the file, never crash. Also the
 * Pocket export: the golden tiny model converted to Q8_0 at load, written as
 * GGUF, loaded back: same tensors, identical audio.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "io/gguf.h"
#include "models/pocket/pocket.h"

static char tmp_path[256];
static const char *tmp(const char *name) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/ctts_test_gguf_%d_%s", (int)getpid(), name);
    return tmp_path;
}

static void test_round_trip(void) {
    static float f32[3 * 5];
    static uint16_t h16[7 * 2];
    static unsigned char q8[2 * 34 * 2], q4[3 * 18];
    for (int i = 0; i < 15; i++) f32[i] = (float)i * 0.5f;
    for (int i = 0; i < 14; i++) h16[i] = (uint16_t)(0x3c00 + i);
    for (size_t i = 0; i < sizeof q8; i++) q8[i] = (unsigned char)(i * 7);
    for (size_t i = 0; i < sizeof q4; i++) q4[i] = (unsigned char)(i * 3);
    ctts_tensor t[5] = {
        {.dtype = CTTS_DT_F32, .ndim = 2, .shape = {3, 5}, .data = f32, .nbytes = sizeof f32, .name = "a.weight"},
        {.dtype = CTTS_DT_F16, .ndim = 1, .shape = {14}, .data = h16, .nbytes = sizeof h16, .name = "b"},
        {.dtype = CTTS_DT_BF16, .ndim = 3, .shape = {7, 1, 2}, .data = h16, .nbytes = sizeof h16, .name = "c"},
        {.dtype = CTTS_DT_Q8_0, .ndim = 2, .shape = {2, 64}, .data = q8, .nbytes = sizeof q8, .name = "d"},
        {.dtype = CTTS_DT_Q4_0, .ndim = 2, .shape = {3, 32}, .data = q4, .nbytes = sizeof q4, .name = "e"},
    };
    const ctts_tensor *tp[5] = {&t[0], &t[1], &t[2], &t[3], &t[4]};
    const char *kv[] = {"general.architecture", "pocket-tts", "x.y", "z"};
    char err[512];
    char path[256]; /* tmp() reuses one buffer: keep this name apart from bad.gguf's */
    snprintf(path, sizeof path, "%s", tmp("rt.gguf"));
    REQUIRE(gguf_write(path, tp, 5, kv, 2, err, sizeof err) == CTTS_OK);
    gguf_file *f = NULL;
    REQUIRE(gguf_open(path, &f, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(gguf_count(f), 5);
    for (int i = 0; i < 5 && i < gguf_count(f); i++) {
        const ctts_tensor *g = gguf_tensor(f, i);
        CHECK(strcmp(g->name, t[i].name) == 0);
        CHECK_EQ_INT(g->dtype, t[i].dtype);
        CHECK_EQ_INT(g->ndim, t[i].ndim);
        for (int d = 0; d < t[i].ndim; d++) CHECK_EQ_INT(g->shape[d], t[i].shape[d]);
        CHECK_EQ_INT(g->nbytes, t[i].nbytes);
        CHECK(memcmp(g->data, t[i].data, t[i].nbytes) == 0);
        CHECK(((uintptr_t)g->data & 31) == 0);
    }
    const char *arch = gguf_get_str(f, "general.architecture");
    CHECK(arch && strcmp(arch, "pocket-tts") == 0);
    CHECK(gguf_get_str(f, "missing") == NULL);
    gguf_close(f);

    /* Every truncation that cuts into tensor data fails cleanly (the last
     * tensor's alignment padding, under 32 bytes, may go). */
    FILE *fp = fopen(path, "rb");
    REQUIRE(fp);
    fseek(fp, 0, SEEK_END);
    const long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size);
    REQUIRE(fread(buf, 1, (size_t)size, fp) == (size_t)size);
    fclose(fp);
    const char *bad = tmp("bad.gguf");
    int failures = 0;
    for (long n = 0; n < size - 32; n += (n < 400 ? 1 : 37)) {
        fp = fopen(bad, "wb");
        fwrite(buf, 1, (size_t)n, fp);
        fclose(fp);
        f = NULL;
        const ctts_status st = gguf_open(bad, &f, err, sizeof err);
        if (st == CTTS_OK) {
            gguf_close(f);
            failures++;
        } else if (!strstr(err, "bad.gguf") && n > 0) {
            failures++;
        }
    }
    CHECK_EQ_INT(failures, 0);
    /* Bad magic, bad version, unknown tensor type. */
    unsigned char *m = malloc((size_t)size);
    memcpy(m, buf, (size_t)size);
    m[0] = 'X';
    fp = fopen(bad, "wb");
    fwrite(m, 1, (size_t)size, fp);
    fclose(fp);
    CHECK(gguf_open(bad, &f, err, sizeof err) == CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "magic");
    memcpy(m, buf, (size_t)size);
    m[4] = 2;
    fp = fopen(bad, "wb");
    fwrite(m, 1, (size_t)size, fp);
    fclose(fp);
    CHECK(gguf_open(bad, &f, err, sizeof err) == CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "version");
    free(m);
    free(buf);
    remove(bad);
    remove(path);
    CHECK(gguf_open("/nonexistent/x.gguf", &f, err, sizeof err) == CTTS_E_IO);
}

static void test_pocket_export(void) {
    char dir[512], err[512];
    snprintf(dir, sizeof dir, "%s/pocket-tiny/model", test_golden_dir());
    FILE *fp = fopen(dir, "r");
    if (!fp) SKIP("no golden tiny model (CTTS_GOLDEN)");
    fclose(fp);
    ctts_model_params mp = ctts_model_default_params();
    mp.weight_type = CTTS_WEIGHTS_Q8_0;
    mp.n_threads = 1;
    pocket_model *a = NULL, *b = NULL;
    REQUIRE(pocket_model_load(dir, &mp, &a, err, sizeof err) == CTTS_OK);
    const char *out = tmp("export");
    CHECK(pocket_model_export_gguf(a, out, err, sizeof err) == CTTS_OK);
    mp.weight_type = CTTS_WEIGHTS_KEEP;
    if (pocket_model_load(out, &mp, &b, err, sizeof err) != CTTS_OK) {
        TEST_FAIL_AT("load export: %s", err);
        pocket_model_free(a);
        return;
    }
    CHECK_EQ_INT(pocket_model_n_params(a), pocket_model_n_params(b));
    /* The q8_0 policy: transformer matrices in Q8_0, the flow head (fed back
     * every frame) in F16, the audio decoder's convolutions in BF16 (F16 for
     * the small ones), the text embedding table as stored. */
    char gpath[600];
    snprintf(gpath, sizeof gpath, "%s/model.gguf", out);
    gguf_file *gf = NULL;
    if (gguf_open(gpath, &gf, err, sizeof err) == CTTS_OK) {
        int seen = 0;
        for (int i = 0; i < gguf_count(gf); i++) {
            const ctts_tensor *t = gguf_tensor(gf, i);
            if (strstr(t->name, "flow_lm.transformer.") && strstr(t->name, "linear1.weight")) {
                CHECK_EQ_INT(t->dtype, CTTS_DT_Q8_0);
                seen |= 1;
            }
            if (strstr(t->name, "flow_net.") && t->ndim == 2) {
                CHECK_EQ_INT(t->dtype, CTTS_DT_F16);
                seen |= 2;
            }
            if (!strncmp(t->name, "mimi.decoder.", 13) && t->ndim == 3) {
                CHECK_EQ_INT(t->dtype, ctts_tensor_numel(t) >= 65536 ? CTTS_DT_BF16 : CTTS_DT_F16);
                seen |= 4;
            }
            if (!strcmp(t->name, "flow_lm.conditioner.embed.weight")) {
                CHECK_EQ_INT(t->dtype, CTTS_DT_F32);
                seen |= 8;
            }
        }
        CHECK_EQ_INT(seen, 15);
        gguf_close(gf);
    } else {
        TEST_FAIL_AT("open export: %s", err);
    }
    ctts_gen_params p = pocket_default_gen_params();
    p.temperature = 0;
    p.max_frames = 6;
    p.eos_threshold = 1e9f;
    float *pcm[2] = {0};
    size_t n[2] = {0};
    pocket_model *ms[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        pocket_stream *s = NULL;
        REQUIRE(pocket_stream_new(ms[i], &s, err, sizeof err) == CTTS_OK);
        pcm[i] = malloc(64 * (size_t)pocket_frame_size(ms[i]) * sizeof(float));
        ctts_status st = pocket_stream_start(s, NULL, &p, "Hello there.", err, sizeof err);
        while (st == CTTS_OK && n[i] < 60 * (size_t)pocket_frame_size(ms[i])) {
            size_t got = 0;
            st = pocket_stream_step(s, pcm[i] + n[i], &got, err, sizeof err);
            n[i] += got;
        }
        CHECK(st == CTTS_DONE);
        pocket_stream_free(s);
    }
    CHECK(n[0] == n[1] && n[0] > 0);
    CHECK(n[0] == n[1] && memcmp(pcm[0], pcm[1], n[0] * sizeof(float)) == 0);
    free(pcm[0]);
    free(pcm[1]);
    pocket_model_free(a);
    pocket_model_free(b);
    char f[600];
    static const char *files[] = {"model.gguf", "config.yaml", "tokenizer.model"};
    for (int i = 0; i < 3; i++) {
        snprintf(f, sizeof f, "%s/%s", out, files[i]);
        remove(f);
    }
    remove(out);
}

TEST_MAIN(T(test_round_trip), T(test_pocket_export))
