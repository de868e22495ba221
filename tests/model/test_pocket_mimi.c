/*
 * Mimi codec tests against the tiny Pocket TTS goldens (pocket-tiny).
 *
 * Binding (missing tensor / wrong shape messages), streaming decode of the
 * voice latents and of a generated case (with the quantizer / upsample /
 * transformer taps), the encoder (SEANet, transformer, latents), and a long
 * random stream that exercises the bounded KV window and reset determinism.
 * The tiny config is filled by hand here (values of pocket-tiny/model/config.yaml).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/rng.h"
#include "golden.h"
#include "harness.h"
#include "io/safetensors.h"
#include "models/pocket/mimi.h"

static pocket_mimi_config tiny_config(void) {
    pocket_mimi_config c;
    memset(&c, 0, sizeof c);
    c.sample_rate = 24000;
    c.frame_rate = 12.5f;
    c.channels = 1;
    c.inner_dim = 32;
    c.outer_dim = 32;
    c.dimension = 32;
    c.n_filters = 8;
    c.n_residual_layers = 1;
    c.ratios[0] = 6;
    c.ratios[1] = 5;
    c.ratios[2] = 4;
    c.n_ratios = 3;
    c.kernel_size = 7;
    c.residual_kernel_size = 3;
    c.last_kernel_size = 3;
    c.dilation_base = 2;
    c.compress = 2;
    c.transformer = (pocket_mimi_transformer_config){.d_model = 32,
                                                     .num_heads = 2,
                                                     .num_layers = 1,
                                                     .dim_feedforward = 64,
                                                     .layer_scale = 0.01f,
                                                     .context = 24,
                                                     .max_period = 10000.0f};
    c.quantizer_dimension = 32;
    c.quantizer_output_dimension = 32;
    c.hop = 120;
    c.frame_size = 1920;
    c.resample_stride = 16;
    return c;
}

static st_file *open_golden(const char *rel) { return golden_open("pocket-tiny", rel); }

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

typedef struct {
    ctts_backend *be;
    st_file *model;
    pocket_mimi *m;
} fixture;

static int fixture_open(fixture *fx) {
    char err[256] = "";
    memset(fx, 0, sizeof *fx);
    fx->be = ctts_backend_cpu_new(2, CTTS_ISA_AUTO);
    fx->model = open_golden("model/model.safetensors");
    if (!fx->be || !fx->model) return 0;
    pocket_mimi_config cfg = tiny_config();
    if (pocket_mimi_bind(&cfg, fx->be, st_lookup, fx->model, &fx->m, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "    bind: %s\n", err);
        return 0;
    }
    return 1;
}

static void fixture_close(fixture *fx) {
    pocket_mimi_free(fx->m);
    if (fx->model) st_close(fx->model);
    if (fx->be) fx->be->destroy(fx->be);
}

static void test_bind_ok_and_names(void) {
    fixture fx;
    int ok = fixture_open(&fx);
    CHECK(ok);
    if (ok) {
        int n = 0;
        const char *const *names = pocket_mimi_bound_names(fx.m, &n);
        /* Every mimi.* tensor of the file is bound, and nothing else. */
        int n_mimi = 0;
        for (int i = 0; i < st_count(fx.model); i++)
            if (strncmp(st_tensor(fx.model, i)->name, "mimi.", 5) == 0) n_mimi++;
        CHECK_EQ_INT(n, n_mimi);
        for (int i = 0; i < n; i++) CHECK(st_find(fx.model, names[i]) != NULL);
        const pocket_mimi_config *c = pocket_mimi_get_config(fx.m);
        CHECK_EQ_INT(c->frame_size, 1920);
        CHECK_EQ_INT(c->resample_stride, 16);
    }
    fixture_close(&fx);
}

static void test_bind_errors(void) {
    ctts_backend *be = ctts_backend_cpu_new(1, CTTS_ISA_AUTO);
    st_file *f = open_golden("model/model.safetensors");
    REQUIRE(be && f);
    pocket_mimi_config cfg = tiny_config();
    char err[256] = "";
    pocket_mimi *m = (pocket_mimi *)1;

    wrapped_lookup hide = {.f = f, .hide = "mimi.decoder.model.5.convtr.weight"};
    CHECK_EQ_INT(pocket_mimi_bind(&cfg, be, wrapped, &hide, &m, err, sizeof err),
                 CTTS_E_NOT_FOUND);
    CHECK(m == NULL);
    CHECK_STR_CONTAINS(err, "missing tensor 'mimi.decoder.model.5.convtr.weight'");

    wrapped_lookup hide_ls = {
        .f = f, .hide = "mimi.encoder_transformer.transformer.layers.0.layer_scale_2.scale"};
    CHECK_EQ_INT(pocket_mimi_bind(&cfg, be, wrapped, &hide_ls, &m, err, sizeof err),
                 CTTS_E_NOT_FOUND);
    CHECK_STR_CONTAINS(err, "layer_scale_2.scale");

    wrapped_lookup swap = {.f = f,
                           .swap_name = "mimi.decoder.model.3.block.1.conv.weight",
                           .swap_with = "mimi.decoder.model.6.block.1.conv.weight"};
    CHECK_EQ_INT(pocket_mimi_bind(&cfg, be, wrapped, &swap, &m, err, sizeof err), CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "tensor 'mimi.decoder.model.3.block.1.conv.weight': expected shape "
                            "[16, 32, 3], got [8, 16, 3]");

    /* A config that disagrees with the file is reported on the first tensor it shapes. */
    pocket_mimi_config wide = cfg;
    wide.n_filters = 16;
    CHECK_EQ_INT(pocket_mimi_bind(&wide, be, st_lookup, f, &m, err, sizeof err), CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "expected shape");

    /* Inconsistent derived fields and unsupported layouts are config errors. */
    pocket_mimi_config bad = cfg;
    bad.resample_stride = 8;
    CHECK(pocket_mimi_bind(&bad, be, st_lookup, f, &m, err, sizeof err) == CTTS_E_INVALID_ARG);
    bad = cfg;
    bad.channels = 2;
    CHECK(pocket_mimi_bind(&bad, be, st_lookup, f, &m, err, sizeof err) == CTTS_E_UNSUPPORTED);
    bad = cfg;
    bad.n_ratios = 0;
    CHECK(pocket_mimi_bind(&bad, be, st_lookup, f, &m, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK(m == NULL);
    st_close(f);
    be->destroy(be);
}

/* Decodes rows [0, n) of latents [n, 32] into pcm [n * 1920] with a fresh decoder. */
static int decode_rows(pocket_mimi_dec *d, const float *latents, int n, float *pcm) {
    for (int i = 0; i < n; i++)
        if (pocket_mimi_decode_frame(d, latents + (size_t)i * 32, pcm + (size_t)i * 1920, NULL,
                                     NULL, NULL) != CTTS_OK)
            return 0;
    return 1;
}

static void test_decode_voice_latents(void) {
    fixture fx;
    st_file *g = NULL;
    pocket_mimi_dec *d = NULL;
    float *lat = NULL, *want = NULL, *pcm = NULL;
    char err[256] = "";
    if (!fixture_open(&fx)) {
        CHECK(0);
        goto done;
    }
    g = open_golden("voice/voice_22k_intermediates.safetensors");
    lat = g ? golden_floats(g, "latents", 82 * 32) : NULL;
    want = g ? golden_floats(g, "mimi_decode_of_latents", 20 * 1920) : NULL;
    pcm = malloc(20 * 1920 * sizeof(float));
    if (!lat || !want || !pcm || pocket_mimi_dec_new(fx.m, &d, err, sizeof err) != CTTS_OK) {
        TEST_FAIL_AT("setup failed: %s", err);
        goto done;
    }
    CHECK(decode_rows(d, lat, 20, pcm));
    double diff = max_abs_diff(pcm, want, 20 * 1920);
    printf("    voice latents decode: max |diff| %.3g\n", diff);
    CHECK(diff <= 1e-4);
done:
    pocket_mimi_dec_free(d);
    free(lat);
    free(want);
    free(pcm);
    if (g) st_close(g);
    fixture_close(&fx);
}

static void test_encode_voice(void) {
    fixture fx;
    st_file *g = NULL;
    float *audio = NULL, *w_seanet = NULL, *w_trans = NULL, *w_lat = NULL;
    float *lat = NULL, *seanet = NULL, *trans = NULL;
    int n_frames = 0;
    char err[256] = "";
    if (!fixture_open(&fx)) {
        CHECK(0);
        goto done;
    }
    g = open_golden("voice/voice_22k_intermediates.safetensors");
    audio = g ? golden_floats(g, "resampled_audio", 156188) : NULL;
    w_seanet = g ? golden_floats(g, "seanet_out", 1312 * 32) : NULL;
    w_trans = g ? golden_floats(g, "encoder_transformer_out", 1312 * 32) : NULL;
    w_lat = g ? golden_floats(g, "latents", 82 * 32) : NULL;
    if (!audio || !w_seanet || !w_trans || !w_lat) {
        TEST_FAIL_AT("golden tensors missing");
        goto done;
    }
    ctts_status st =
        pocket_mimi_encode(fx.m, audio, 156188, &lat, &n_frames, &seanet, &trans, err, sizeof err);
    if (st != CTTS_OK) {
        TEST_FAIL_AT("encode: %s", err);
        goto done;
    }
    CHECK_EQ_INT(n_frames, 82);
    double d1 = max_abs_diff(seanet, w_seanet, 1312 * 32);
    double d2 = max_abs_diff(trans, w_trans, 1312 * 32);
    double d3 = max_abs_diff(lat, w_lat, 82 * 32);
    printf("    encode: seanet %.3g, transformer %.3g, latents %.3g\n", d1, d2, d3);
    CHECK(d1 <= 1e-4);
    CHECK(d2 <= 1e-4);
    CHECK(d3 <= 1e-4);

    /* Latents alone (no taps) are the same numbers. */
    float *lat2 = NULL;
    int n2 = 0;
    CHECK_EQ_INT(pocket_mimi_encode(fx.m, audio, 156188, &lat2, &n2, NULL, NULL, err, sizeof err),
                 CTTS_OK);
    CHECK_EQ_INT(n2, 82);
    if (lat2) CHECK(memcmp(lat2, lat, 82 * 32 * sizeof(float)) == 0);
    free(lat2);

    /* Bad input is an error, not a crash. */
    float *lat3 = (float *)1;
    CHECK_EQ_INT(pocket_mimi_encode(fx.m, audio, 0, &lat3, &n2, NULL, NULL, err, sizeof err),
                 CTTS_E_INVALID_ARG);
    CHECK(lat3 == NULL && n2 == 0);
done:
    free(audio);
    free(w_seanet);
    free(w_trans);
    free(w_lat);
    free(lat);
    free(seanet);
    free(trans);
    if (g) st_close(g);
    fixture_close(&fx);
}

/* The first frames of case c00 with taps, then the whole emitted audio. */
static void test_decode_case_c00(void) {
    enum { N_EMIT = 19, N_TAP = 8 };
    fixture fx;
    st_file *g = NULL;
    pocket_mimi_dec *d = NULL;
    float *lat = NULL, *w_q = NULL, *w_up = NULL, *w_tr = NULL, *w_audio = NULL, *pcm = NULL;
    char err[256] = "";
    if (!fixture_open(&fx)) {
        CHECK(0);
        goto done;
    }
    g = open_golden("cases/c00_short.safetensors");
    lat = g ? golden_floats(g, "chunk0.latents", 20 * 32) : NULL;
    w_q = g ? golden_floats(g, "chunk0.mimi_quantizer_out", N_TAP * 32) : NULL;
    w_up = g ? golden_floats(g, "chunk0.mimi_upsample_out", N_TAP * 16 * 32) : NULL;
    w_tr = g ? golden_floats(g, "chunk0.mimi_decoder_transformer_out", N_TAP * 16 * 32) : NULL;
    w_audio = g ? golden_floats(g, "audio", N_EMIT * 1920) : NULL;
    const ctts_tensor *std_t = st_find(fx.model, "flow_lm.emb_std");
    const ctts_tensor *mean_t = st_find(fx.model, "flow_lm.emb_mean");
    pcm = malloc(N_EMIT * 1920 * sizeof(float));
    if (!lat || !w_q || !w_up || !w_tr || !w_audio || !pcm || !std_t || !mean_t ||
        ctts_tensor_numel(std_t) != 32 || ctts_tensor_numel(mean_t) != 32 ||
        pocket_mimi_dec_new(fx.m, &d, err, sizeof err) != CTTS_OK) {
        TEST_FAIL_AT("setup failed: %s", err);
        goto done;
    }
    float emb_std[32], emb_mean[32];
    memcpy(emb_std, std_t->data, sizeof emb_std);
    memcpy(emb_mean, mean_t->data, sizeof emb_mean);
    for (int i = 0; i < N_EMIT * 32; i++) lat[i] = lat[i] * emb_std[i % 32] + emb_mean[i % 32];

    double dq = 0, du = 0, dt = 0;
    for (int i = 0; i < N_EMIT; i++) {
        float q[32], up[16 * 32], tr[16 * 32];
        int tap = i < N_TAP;
        ctts_status st = pocket_mimi_decode_frame(d, lat + i * 32, pcm + (size_t)i * 1920,
                                                  tap ? q : NULL, tap ? up : NULL, tap ? tr : NULL);
        CHECK_EQ_INT(st, CTTS_OK);
        if (!tap) continue;
        dq = fmax(dq, max_abs_diff(q, w_q + i * 32, 32));
        du = fmax(du, max_abs_diff(up, w_up + i * 512, 512));
        dt = fmax(dt, max_abs_diff(tr, w_tr + i * 512, 512));
    }
    double da = max_abs_diff(pcm, w_audio, N_EMIT * 1920);
    printf("    c00: quant %.3g, upsample %.3g, transformer %.3g, audio %.3g\n", dq, du, dt, da);
    CHECK(dq <= 1e-3);
    CHECK(du <= 1e-3);
    CHECK(dt <= 1e-3);
    CHECK(da <= 1e-3);
done:
    pocket_mimi_dec_free(d);
    free(lat);
    free(w_q);
    free(w_up);
    free(w_tr);
    free(w_audio);
    free(pcm);
    if (g) st_close(g);
    fixture_close(&fx);
}

/* 300 random frames: 4800 Mimi steps, 200 times the tiny context window. */
static void test_long_stream_and_reset(void) {
    enum { N = 300 };
    fixture fx;
    pocket_mimi_dec *d = NULL;
    float *lat = malloc((size_t)N * 32 * sizeof(float));
    float *a = malloc((size_t)N * 1920 * sizeof(float));
    float *b = malloc((size_t)N * 1920 * sizeof(float));
    char err[256] = "";
    if (!fixture_open(&fx) || !lat || !a || !b ||
        pocket_mimi_dec_new(fx.m, &d, err, sizeof err) != CTTS_OK) {
        TEST_FAIL_AT("setup failed: %s", err);
        goto done;
    }
    ctts_rng rng;
    ctts_rng_seed(&rng, 1234);
    for (int i = 0; i < N * 32; i++) lat[i] = ctts_rng_normal(&rng);
    CHECK(decode_rows(d, lat, N, a));
    int finite = 1;
    double rms = 0;
    for (size_t i = 0; i < (size_t)N * 1920; i++) {
        finite &= isfinite(a[i]) != 0;
        rms += (double)a[i] * a[i];
    }
    rms = sqrt(rms / ((double)N * 1920));
    printf("    long stream: rms %.3g\n", rms);
    CHECK(finite);
    CHECK(rms > 1e-3 && rms < 10.0);
    /* The audio late in the stream is not a copy of the start (state moves on). */
    CHECK(memcmp(a, a + (size_t)(N - 1) * 1920, 1920 * sizeof(float)) != 0);

    pocket_mimi_dec_reset(d);
    CHECK(decode_rows(d, lat, N, b));
    CHECK(memcmp(a, b, (size_t)N * 1920 * sizeof(float)) == 0);

    /* A second, independent decoder on the same model agrees as well. */
    pocket_mimi_dec *d2 = NULL;
    CHECK_EQ_INT(pocket_mimi_dec_new(fx.m, &d2, err, sizeof err), CTTS_OK);
    if (d2) {
        CHECK(decode_rows(d2, lat, 10, b));
        CHECK(memcmp(a, b, 10 * 1920 * sizeof(float)) == 0);
    }
    pocket_mimi_dec_free(d2);
    CHECK_EQ_INT(pocket_mimi_decode_frame(d, NULL, b, NULL, NULL, NULL), CTTS_E_INVALID_ARG);
done:
    pocket_mimi_dec_free(d);
    free(lat);
    free(a);
    free(b);
    fixture_close(&fx);
}

TEST_MAIN(T(test_bind_ok_and_names), T(test_bind_errors), T(test_decode_voice_latents),
          T(test_encode_voice), T(test_decode_case_c00), T(test_long_stream_and_reset))
