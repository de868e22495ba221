/*
 * Qwen3-TTS-12Hz speech tokenizer encoder (Mimi) against the tiny golden
 * e00_encode (official code): SEANet output, transformer output, downsample
 * output, all 20 quantizers' codes exactly, the 16 kept codes, distance
 * margins, and decode(encode(voice)) through the speech decoder. Also: the
 * piecewise encode equals itself for any input length around piece and
 * stride boundaries (prefix property: the first frames of a longer signal
 * do not depend on what follows), bind errors and bad input.
 * The tiny configs are filled by hand (values of speech_tokenizer/config.json).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "golden.h"
#include "harness.h"
#include "io/safetensors.h"
#include "models/qwen3tts/speech_decoder.h"
#include "models/qwen3tts/speech_encoder.h"

static q3t_codec_config tiny_config(void) {
    q3t_codec_config k;
    memset(&k, 0, sizeof k);
    k.input_sample_rate = k.output_sample_rate = 24000;
    k.decode_upsample_rate = k.encode_downsample_rate = 1920;
    k.encoder_valid_num_quantizers = 16;
    q3t_codec_encoder_config *c = &k.enc;
    c->present = 1;
    c->hidden_size = 16;
    c->num_filters = 4;
    c->num_residual_layers = 1;
    const int r[4] = {8, 6, 5, 4};
    memcpy(c->upsampling_ratios, r, sizeof r);
    c->n_upsampling_ratios = 4;
    c->kernel_size = 7;
    c->last_kernel_size = 3;
    c->residual_kernel_size = 3;
    c->dilation_growth_rate = 2;
    c->compress = 2;
    c->codebook_size = 2048;
    c->codebook_dim = 4;
    c->num_quantizers = 20;
    c->num_semantic_quantizers = 1;
    c->num_hidden_layers = 1;
    c->intermediate_size = 32;
    c->num_attention_heads = 2;
    c->num_key_value_heads = 2;
    c->head_dim = 8;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->layer_scale_initial_scale = 0.01f;
    c->sliding_window = 24;
    q3t_codec_decoder_config *d = &k.dec;
    d->latent_dim = 16;
    d->codebook_dim = 8;
    d->codebook_size = 2048;
    d->decoder_dim = 32;
    d->hidden_size = 16;
    d->intermediate_size = 32;
    d->head_dim = 8;
    d->num_attention_heads = d->num_key_value_heads = 4;
    d->num_hidden_layers = 2;
    d->num_quantizers = 16;
    d->num_semantic_quantizers = 1;
    d->rms_norm_eps = 1e-5f;
    d->rope_theta = 10000.0f;
    d->sliding_window = 8;
    const int rates[4] = {8, 5, 4, 3};
    memcpy(d->upsample_rates, rates, sizeof rates);
    d->n_upsample_rates = 4;
    d->upsampling_ratios[0] = d->upsampling_ratios[1] = 2;
    d->n_upsampling_ratios = 2;
    return k;
}

static st_file *open_golden(const char *rel) { return golden_open("qwen3tts-tiny", rel); }

static void *golden_copy(st_file *f, const char *name, ctts_dtype dt, size_t n) {
    const ctts_tensor *t = st_find(f, name);
    if (!t || t->dtype != dt || (size_t)ctts_tensor_numel(t) != n) {
        fprintf(stderr, "    golden tensor '%s' missing or not %zu elements\n", name, n);
        return NULL;
    }
    void *p = malloc(n * 4 + 1);
    if (p) memcpy(p, t->data, n * 4);
    return p;
}

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
    q3t_speech_encoder *e;
} fixture;

static int fixture_open(fixture *fx) {
    char err[256] = "";
    memset(fx, 0, sizeof *fx);
    fx->be = ctts_backend_cpu_new(2, CTTS_ISA_AUTO);
    fx->model = open_golden("model/speech_tokenizer/model.safetensors");
    if (!fx->be || !fx->model) return 0;
    q3t_codec_config cfg = tiny_config();
    if (q3t_speech_encoder_bind(&cfg, fx->be, st_lookup, fx->model, &fx->e, err, sizeof err) !=
        CTTS_OK) {
        fprintf(stderr, "    bind: %s\n", err);
        return 0;
    }
    return 1;
}

static void fixture_close(fixture *fx) {
    q3t_speech_encoder_free(fx->e);
    if (fx->model) st_close(fx->model);
    if (fx->be) fx->be->destroy(fx->be);
}

static void test_bind(void) {
    fixture fx;
    int ok = fixture_open(&fx);
    CHECK(ok);
    if (ok) {
        int n = 0;
        const char *const *names = q3t_speech_encoder_bound_names(fx.e, &n);
        int n_enc = 0;
        for (int i = 0; i < st_count(fx.model); i++)
            if (strncmp(st_tensor(fx.model, i)->name, "encoder.", 8) == 0) n_enc++;
        CHECK_EQ_INT(n, n_enc); /* every encoder.* tensor, once */
        for (int i = 0; i < n; i++) CHECK(strncmp(names[i], "encoder.", 8) == 0);
        CHECK_EQ_INT(q3t_speech_encoder_hop(fx.e), 1920);
        CHECK_EQ_INT(q3t_speech_encoder_max_quantizers(fx.e), 20);
    }
    fixture_close(&fx);

    ctts_backend *be = ctts_backend_cpu_new(1, CTTS_ISA_AUTO);
    st_file *f = open_golden("model/speech_tokenizer/model.safetensors");
    REQUIRE(be && f);
    q3t_codec_config cfg = tiny_config();
    char err[256] = "";
    q3t_speech_encoder *e = (q3t_speech_encoder *)1;
    wrapped_lookup hide = {.f = f,
                           .hide = "encoder.quantizer.acoustic_residual_vector_quantizer.layers."
                                   "18.codebook.embed_sum"};
    CHECK_EQ_INT(q3t_speech_encoder_bind(&cfg, be, wrapped, &hide, &e, err, sizeof err),
                 CTTS_E_NOT_FOUND);
    CHECK(e == NULL);
    CHECK_STR_CONTAINS(err, "layers.18.codebook.embed_sum");
    wrapped_lookup swap = {.f = f,
                           .swap_name = "encoder.encoder.layers.9.conv.weight",
                           .swap_with = "encoder.encoder.layers.6.conv.weight"};
    CHECK_EQ_INT(q3t_speech_encoder_bind(&cfg, be, wrapped, &swap, &e, err, sizeof err),
                 CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "tensor 'encoder.encoder.layers.9.conv.weight': expected shape "
                            "[32, 16, 12], got [16, 8, 10]");
    q3t_codec_config bad = cfg;
    bad.enc.present = 0;
    CHECK_EQ_INT(q3t_speech_encoder_bind(&bad, be, st_lookup, f, &e, err, sizeof err),
                 CTTS_E_UNSUPPORTED);
    bad = cfg;
    bad.encode_downsample_rate = 960;
    CHECK_EQ_INT(q3t_speech_encoder_bind(&bad, be, st_lookup, f, &e, err, sizeof err),
                 CTTS_E_UNSUPPORTED);
    bad = cfg;
    bad.enc.use_conv_shortcut = 1;
    CHECK_EQ_INT(q3t_speech_encoder_bind(&bad, be, st_lookup, f, &e, err, sizeof err),
                 CTTS_E_UNSUPPORTED);
    bad = cfg;
    bad.enc.num_quantizers = 21;
    CHECK_EQ_INT(q3t_speech_encoder_bind(&bad, be, st_lookup, f, &e, err, sizeof err),
                 CTTS_E_NOT_FOUND);
    CHECK(e == NULL);
    st_close(f);
    be->destroy(be);
}

#define MAX_TAPS 8
typedef struct {
    char name[MAX_TAPS][48];
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

static void test_e00_encode(void) {
    fixture fx;
    st_file *g = open_golden("speech_tokenizer/e00_encode.safetensors");
    REQUIRE(fixture_open(&fx) && g);
    const size_t n = 117755;
    float *audio = golden_copy(g, "audio_in", CTTS_DT_F32, n);
    int32_t *want16 = golden_copy(g, "codes", CTTS_DT_I32, 62 * 16);
    int32_t *want20 = golden_copy(g, "codes_all_quantizers", CTTS_DT_I32, 20 * 62);
    float *want_margin = golden_copy(g, "rvq_distance_margin", CTTS_DT_F32, 62 * 20);
    REQUIRE(audio && want16 && want20 && want_margin);
    char err[256] = "";
    taps tp = {0};
    int32_t *codes = NULL;
    int nf = 0;
    CHECK_EQ_INT(q3t_speech_encode(fx.e, audio, n, 20, &codes, &nf, on_tap, &tp, err, sizeof err),
                 CTTS_OK);
    CHECK_EQ_INT(nf, 62);
    if (codes && nf == 62) {
        int bad = 0;
        for (int f = 0; f < 62; f++)
            for (int q = 0; q < 20; q++)
                if (codes[f * 20 + q] != want20[q * 62 + f] && bad++ < 5)
                    TEST_FAIL_AT("frame %d codebook %d: code %d, expected %d", f, q,
                                 codes[f * 20 + q], want20[q * 62 + f]);
        CHECK_EQ_INT(bad, 0);
    }
    CHECK_EQ_INT(tp.n, 4);
    for (int i = 0; i < tp.n; i++) {
        const int is_margin = strcmp(tp.name[i], "rvq_distance_margin") == 0;
        float *ref = is_margin ? want_margin
                               : golden_copy(g, tp.name[i], CTTS_DT_F32, tp.n_el[i]);
        CHECK(ref != NULL);
        if (ref && tp.data[i]) {
            double e = max_abs_diff(tp.data[i], ref, tp.n_el[i]);
            if (!(e <= 1e-4)) TEST_FAIL_AT("%s: max abs diff %g > 1e-4", tp.name[i], e);
        }
        if (!is_margin) free(ref);
        free(tp.data[i]);
    }
    free(codes);

    /* The 16 kept codebooks, as the official encode returns them. */
    codes = NULL;
    CHECK_EQ_INT(q3t_speech_encode(fx.e, audio, n, 16, &codes, &nf, NULL, NULL, err, sizeof err),
                 CTTS_OK);
    CHECK(codes && nf == 62 && memcmp(codes, want16, 62 * 16 * sizeof(int32_t)) == 0);

    /* decode(encode(voice)) with the speech decoder. */
    q3t_codec_config cfg = tiny_config();
    q3t_speech_decoder *d = NULL;
    float *rt = golden_copy(g, "roundtrip_audio", CTTS_DT_F32, 119040);
    CHECK_EQ_INT(q3t_speech_decoder_bind(&cfg.dec, fx.be, st_lookup, fx.model, &d, err, sizeof err),
                 CTTS_OK);
    if (d && rt && codes) {
        float *pcm = NULL;
        size_t ns = 0;
        CHECK_EQ_INT(q3t_speech_decode(d, codes, nf, &pcm, &ns, err, sizeof err), CTTS_OK);
        CHECK_EQ_INT(ns, 119040);
        if (pcm && ns == 119040) CHECK(max_abs_diff(pcm, rt, ns) <= 1e-3);
        free(pcm);
    }
    q3t_speech_decoder_free(d);
    free(rt);
    free(codes);
    free(audio);
    free(want16);
    free(want20);
    free(want_margin);
    st_close(g);
    fixture_close(&fx);
}

/* Codes of a prefix equal the first codes of the whole signal for prefix
 * lengths around piece (7680) and stride boundaries, except the prefix's own
 * last frame (its padding differs), and the frame count is ceil(n / 1920). */
static void test_prefix_lengths(void) {
    fixture fx;
    st_file *g = open_golden("speech_tokenizer/e00_encode.safetensors");
    REQUIRE(fixture_open(&fx) && g);
    const size_t n = 117755;
    float *audio = golden_copy(g, "audio_in", CTTS_DT_F32, n);
    int32_t *want = golden_copy(g, "codes", CTTS_DT_I32, 62 * 16);
    REQUIRE(audio && want);
    const size_t lens[] = {1, 959, 960, 1919, 1920, 1921, 7679, 7680, 7681, 15360, 20000};
    char err[256] = "";
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        int32_t *codes = NULL;
        int nf = 0;
        CHECK_EQ_INT(q3t_speech_encode(fx.e, audio, lens[i], 16, &codes, &nf, NULL, NULL, err,
                                       sizeof err),
                     CTTS_OK);
        CHECK_EQ_INT(nf, (int)((lens[i] + 1919) / 1920));
        /* Frames whose receptive field lies inside the prefix: all but the last. */
        if (codes && nf > 1 && memcmp(codes, want, (size_t)(nf - 1) * 16 * sizeof(int32_t)) != 0)
            TEST_FAIL_AT("prefix of %zu samples: codes differ from the full encode", lens[i]);
        free(codes);
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
    float pcm[100] = {0};
    int32_t *codes = (int32_t *)1;
    int nf = 5;
    CHECK_EQ_INT(q3t_speech_encode(fx.e, pcm, 0, 16, &codes, &nf, NULL, NULL, err, sizeof err),
                 CTTS_E_INVALID_ARG);
    CHECK(codes == NULL && nf == 0);
    CHECK_EQ_INT(q3t_speech_encode(fx.e, pcm, 100, 0, &codes, &nf, NULL, NULL, err, sizeof err),
                 CTTS_E_INVALID_ARG);
    CHECK_EQ_INT(q3t_speech_encode(fx.e, pcm, 100, 21, &codes, &nf, NULL, NULL, err, sizeof err),
                 CTTS_E_INVALID_ARG);
    pcm[50] = NAN;
    CHECK_EQ_INT(q3t_speech_encode(fx.e, pcm, 100, 16, &codes, &nf, NULL, NULL, err, sizeof err),
                 CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "sample 50");
    pcm[50] = 0.0f;
    CHECK_EQ_INT(q3t_speech_encode(fx.e, pcm, 100, 16, &codes, &nf, NULL, NULL, err, sizeof err),
                 CTTS_OK);
    CHECK(codes && nf == 1);
    for (int q = 0; codes && q < 16; q++) CHECK(codes[q] >= 0 && codes[q] < 2048);
    free(codes);
    fixture_close(&fx);
}

TEST_MAIN(T(test_bind), T(test_e00_encode), T(test_prefix_lengths), T(test_bad_input))
