/*
 * Qwen3-TTS speaker encoder and its log-mel front end against the tiny
 * golden s00_speaker_embedding (official code, Base model): mel [128, 459],
 * every ECAPA stage (blocks.0..3, mfa, asp, fc) and the x-vector; the
 * x-vector also equals the ref_spk_embedding stored in the voice-clone
 * cases. Plus filterbank properties, bind errors and bad input.
 * The tiny speaker_encoder_config is filled by hand (model-base/config.json).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/mel.h"
#include "backend/backend.h"
#include "golden.h"
#include "harness.h"
#include "io/safetensors.h"
#include "models/qwen3tts/speaker_encoder.h"

static q3t_speaker_encoder_config tiny_config(void) {
    q3t_speaker_encoder_config c;
    memset(&c, 0, sizeof c);
    c.present = 1;
    c.mel_dim = 128;
    c.enc_dim = 32;
    const int ch[5] = {16, 16, 16, 16, 48}, k[5] = {5, 3, 3, 3, 1}, d[5] = {1, 2, 3, 4, 1};
    memcpy(c.enc_channels, ch, sizeof ch);
    memcpy(c.enc_kernel_sizes, k, sizeof k);
    memcpy(c.enc_dilations, d, sizeof d);
    c.n_enc_channels = c.n_enc_kernel_sizes = c.n_enc_dilations = 5;
    c.enc_attention_channels = 8;
    c.enc_res2net_scale = 4;
    c.enc_se_channels = 8;
    c.sample_rate = 24000;
    return c;
}

static st_file *open_golden(const char *rel) { return golden_open("qwen3tts-tiny", rel); }

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

typedef struct {
    ctts_backend *be;
    st_file *model;
    q3t_speaker_encoder *e;
} fixture;

static int fixture_open(fixture *fx) {
    char err[256] = "";
    memset(fx, 0, sizeof *fx);
    fx->be = ctts_backend_cpu_new(2, CTTS_ISA_AUTO);
    fx->model = open_golden("model-base/model.safetensors");
    if (!fx->be || !fx->model) return 0;
    q3t_speaker_encoder_config cfg = tiny_config();
    if (q3t_speaker_encoder_bind(&cfg, fx->be, st_lookup, fx->model, &fx->e, err, sizeof err) !=
        CTTS_OK) {
        fprintf(stderr, "    bind: %s\n", err);
        return 0;
    }
    return 1;
}

static void fixture_close(fixture *fx) {
    q3t_speaker_encoder_free(fx->e);
    if (fx->model) st_close(fx->model);
    if (fx->be) fx->be->destroy(fx->be);
}

static void test_filterbank(void) {
    const mel_params p = {.sample_rate = 24000, .n_fft = 1024, .hop = 256, .n_mels = 128,
                          .fmin = 0.0f, .fmax = 12000.0f};
    float *fb = NULL;
    char err[256] = "";
    REQUIRE(mel_filterbank(&p, &fb, err, sizeof err) == CTTS_OK);
    /* Slaney-normalised triangles: non-negative, each of area about 1 in Hz
     * (sum of the sampled weights times the bin width 24000/1024, within 10%
     * once the triangle spans several bins), peaks in increasing bins. */
    int prev_peak = -1;
    for (int m = 0; m < 128; m++) {
        double sum = 0;
        int peak = 0;
        for (int k = 0; k < 513; k++) {
            CHECK(fb[m * 513 + k] >= 0.0f);
            sum += fb[m * 513 + k];
            if (fb[m * 513 + k] > fb[m * 513 + peak]) peak = k;
        }
        CHECK(sum > 0);
        if (m >= 40) CHECK_NEAR(sum * 24000.0 / 1024.0, 1.0, 0.1);
        CHECK(peak >= prev_peak);
        prev_peak = peak;
    }
    /* Nothing above fmax. */
    for (int m = 0; m < 128; m++) CHECK(fb[m * 513 + 512] == 0.0f);
    free(fb);
    mel_params bad = p;
    bad.n_fft = 1000;
    CHECK_EQ_INT(mel_filterbank(&bad, &fb, err, sizeof err), CTTS_E_INVALID_ARG);
    bad = p;
    bad.fmax = 13000.0f;
    CHECK_EQ_INT(mel_filterbank(&bad, &fb, err, sizeof err), CTTS_E_INVALID_ARG);
    CHECK(fb == NULL);
}

static void test_bind(void) {
    fixture fx;
    int ok = fixture_open(&fx);
    CHECK(ok);
    if (ok) {
        int n = 0;
        const char *const *names = q3t_speaker_encoder_bound_names(fx.e, &n);
        int n_spk = 0;
        for (int i = 0; i < st_count(fx.model); i++)
            if (strncmp(st_tensor(fx.model, i)->name, "speaker_encoder.", 16) == 0) n_spk++;
        CHECK_EQ_INT(n, n_spk);
        for (int i = 0; i < n; i++) CHECK(strncmp(names[i], "speaker_encoder.", 16) == 0);
        CHECK_EQ_INT(q3t_speaker_encoder_dim(fx.e), 32);
        CHECK_EQ_INT(q3t_speaker_encoder_sample_rate(fx.e), 24000);
    }
    fixture_close(&fx);

    ctts_backend *be = ctts_backend_cpu_new(1, CTTS_ISA_AUTO);
    st_file *f = open_golden("model-base/model.safetensors");
    REQUIRE(be && f);
    q3t_speaker_encoder_config cfg = tiny_config();
    char err[256] = "";
    q3t_speaker_encoder *e = (q3t_speaker_encoder *)1;
    wrapped_lookup hide = {.f = f, .hide = "speaker_encoder.blocks.2.se_block.conv2.bias"};
    CHECK_EQ_INT(q3t_speaker_encoder_bind(&cfg, be, wrapped, &hide, &e, err, sizeof err),
                 CTTS_E_NOT_FOUND);
    CHECK(e == NULL);
    CHECK_STR_CONTAINS(err, "missing tensor 'speaker_encoder.blocks.2.se_block.conv2.bias'");
    wrapped_lookup swap = {.f = f,
                           .swap_name = "speaker_encoder.asp.tdnn.conv.weight",
                           .swap_with = "speaker_encoder.mfa.conv.weight"};
    CHECK_EQ_INT(q3t_speaker_encoder_bind(&cfg, be, wrapped, &swap, &e, err, sizeof err),
                 CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "tensor 'speaker_encoder.asp.tdnn.conv.weight': expected shape "
                            "[8, 144, 1], got [48, 48, 1]");
    q3t_speaker_encoder_config bad = cfg;
    bad.enc_channels[4] = 40; /* MFA width != 3 x 16 */
    CHECK_EQ_INT(q3t_speaker_encoder_bind(&bad, be, st_lookup, f, &e, err, sizeof err),
                 CTTS_E_UNSUPPORTED);
    bad = cfg;
    bad.enc_res2net_scale = 3;
    CHECK_EQ_INT(q3t_speaker_encoder_bind(&bad, be, st_lookup, f, &e, err, sizeof err),
                 CTTS_E_UNSUPPORTED);
    bad = cfg;
    bad.n_enc_dilations = 4;
    CHECK_EQ_INT(q3t_speaker_encoder_bind(&bad, be, st_lookup, f, &e, err, sizeof err),
                 CTTS_E_INVALID_ARG);
    bad = cfg;
    bad.present = 0;
    CHECK_EQ_INT(q3t_speaker_encoder_bind(&bad, be, st_lookup, f, &e, err, sizeof err),
                 CTTS_E_UNSUPPORTED);
    CHECK(e == NULL);
    st_close(f);
    be->destroy(be);
}

#define MAX_TAPS 12
typedef struct {
    char name[MAX_TAPS][32];
    float *data[MAX_TAPS];
    size_t n_el[MAX_TAPS];
    int n;
} taps;

static void on_tap(void *user, const char *name, const float *data, int rows, int cols) {
    taps *t = user;
    if (t->n >= MAX_TAPS) return;
    snprintf(t->name[t->n], sizeof t->name[0], "%s", name);
    t->n_el[t->n] = (size_t)rows * cols;
    t->data[t->n] = malloc(t->n_el[t->n] * sizeof(float));
    if (t->data[t->n]) memcpy(t->data[t->n], data, t->n_el[t->n] * sizeof(float));
    t->n++;
}

static void test_s00(void) {
    fixture fx;
    st_file *g = open_golden("speech_tokenizer/s00_speaker_embedding.safetensors");
    REQUIRE(fixture_open(&fx) && g);
    const size_t n = 117755;
    float *audio = golden_floats(g, "audio_in", n);
    float *want = golden_floats(g, "speaker_embedding", 32);
    REQUIRE(audio && want);
    float xv[32];
    char err[256] = "";
    taps tp = {0};
    CHECK_EQ_INT(q3t_speaker_embed(fx.e, audio, n, xv, on_tap, &tp, err, sizeof err), CTTS_OK);
    const char *expect[] = {"mel", "blocks.0", "blocks.1", "blocks.2", "blocks.3",
                            "mfa", "asp",      "fc"};
    CHECK_EQ_INT(tp.n, 8);
    for (int i = 0; i < tp.n && i < 8; i++) {
        CHECK(strcmp(tp.name[i], expect[i]) == 0);
        float *ref = golden_floats(g, tp.name[i], tp.n_el[i]);
        CHECK(ref != NULL);
        if (ref && tp.data[i] && i == 0) {
            /* Log-mel: torch's float32 FFT is only accurate to ~1e-7 of the frame's peak,
             * so bins 8+ nats below it (mel < 3e-4) carry its rounding (up to 4e-4 here);
             * the FFT here runs in double. Louder bins agree to 1e-4. */
            double e_all = 0, e_loud = 0;
            for (size_t j = 0; j < tp.n_el[i]; j++) {
                double d = fabs((double)tp.data[i][j] - (double)ref[j]);
                if (!(d <= e_all)) e_all = d;
                if (ref[j] >= -8.0f && !(d <= e_loud)) e_loud = d;
            }
            if (!(e_loud <= 1e-4 && e_all <= 1e-3))
                TEST_FAIL_AT("mel: max abs diff %g (bins >= -8: %g)", e_all, e_loud);
        } else if (ref && tp.data[i]) {
            double e = max_abs_diff(tp.data[i], ref, tp.n_el[i]);
            if (!(e <= 1e-4)) TEST_FAIL_AT("%s: max abs diff %g > 1e-4", tp.name[i], e);
        }
        free(ref);
        free(tp.data[i]);
    }
    double e = max_abs_diff(xv, want, 32);
    if (!(e <= 1e-4)) TEST_FAIL_AT("x-vector: max abs diff %g > 1e-4", e);

    /* The voice-clone cases stored the same x-vector. */
    char path[1024];
    snprintf(path, sizeof path, "%s/qwen3tts-tiny/cases/b00_clone_icl.safetensors",
             test_golden_dir());
    st_file *c = NULL;
    if (st_open(path, &c, err, sizeof err) == CTTS_OK) {
        float *ref = golden_floats(c, "ref_spk_embedding", 32);
        CHECK(ref && max_abs_diff(xv, ref, 32) <= 1e-4);
        free(ref);
        st_close(c);
    } else {
        CHECK(0);
    }
    free(audio);
    free(want);
    st_close(g);
    fixture_close(&fx);
}

static void test_bad_input(void) {
    fixture fx;
    REQUIRE(fixture_open(&fx));
    char err[256] = "";
    float out[32];
    float *pcm = calloc(24000, sizeof *pcm);
    REQUIRE(pcm);
    for (int i = 0; i < 24000; i++) pcm[i] = 0.3f * sinf(0.05f * (float)i);
    /* Too short for the reflect padding / the conv paddings. */
    CHECK_EQ_INT(q3t_speaker_embed(fx.e, pcm, 300, out, NULL, NULL, err, sizeof err),
                 CTTS_E_INVALID_ARG);
    CHECK_EQ_INT(q3t_speaker_embed(fx.e, pcm, 1000, out, NULL, NULL, err, sizeof err),
                 CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "too short");
    pcm[100] = INFINITY;
    CHECK_EQ_INT(q3t_speaker_embed(fx.e, pcm, 24000, out, NULL, NULL, err, sizeof err),
                 CTTS_E_INVALID_ARG);
    pcm[100] = 0.0f;
    CHECK_EQ_INT(q3t_speaker_embed(fx.e, pcm, 24000, out, NULL, NULL, err, sizeof err), CTTS_OK);
    for (int i = 0; i < 32; i++) CHECK(isfinite(out[i]));
    /* Silence: the log clamp keeps everything finite. */
    memset(pcm, 0, 24000 * sizeof *pcm);
    CHECK_EQ_INT(q3t_speaker_embed(fx.e, pcm, 24000, out, NULL, NULL, err, sizeof err), CTTS_OK);
    for (int i = 0; i < 32; i++) CHECK(isfinite(out[i]));
    free(pcm);
    fixture_close(&fx);
}

TEST_MAIN(T(test_filterbank), T(test_bind), T(test_s00), T(test_bad_input))
