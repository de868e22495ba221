/*
 * Qwen3-TTS-12Hz speech tokenizer decoder against the tiny goldens
 * (qwen3tts-tiny/speech_tokenizer/d0*.safetensors, official code).
 *
 * d00: one 12-frame decode with every intermediate tap (quantizer_out,
 * pre_conv, pre_transformer, upsample*, decoder.0..6) and the audio; the same
 * codes streamed frame by frame and in odd pieces give the same audio.
 * d01: 330 frames through the official chunked decode (300 + 25 context),
 * including the chunk boundary. d02: the two utterances of a -1 padded batch
 * decoded alone match both the batched and the solo goldens. Binding errors
 * name the tensor; bad codes and stream parameters are rejected cleanly.
 * The tiny decoder_config is filled by hand (values of speech_tokenizer/config.json).
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

static q3t_codec_decoder_config tiny_config(void) {
    q3t_codec_decoder_config c;
    memset(&c, 0, sizeof c);
    c.latent_dim = 16;
    c.codebook_dim = 8;
    c.codebook_size = 2048;
    c.decoder_dim = 32;
    c.hidden_size = 16;
    c.intermediate_size = 32;
    c.head_dim = 8;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 4;
    c.num_hidden_layers = 2;
    c.num_quantizers = 16;
    c.num_semantic_quantizers = 1;
    c.rms_norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.layer_scale_initial_scale = 0.01f;
    c.max_position_embeddings = 8000;
    c.sliding_window = 8;
    const int rates[4] = {8, 5, 4, 3};
    memcpy(c.upsample_rates, rates, sizeof rates);
    c.n_upsample_rates = 4;
    c.upsampling_ratios[0] = c.upsampling_ratios[1] = 2;
    c.n_upsampling_ratios = 2;
    return c;
}

static st_file *open_golden(const char *rel) { return golden_open("qwen3tts-tiny", rel); }

/* Golden tensor copied out (alignment-safe); NULL if absent or of the wrong size. */
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
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

typedef struct {
    ctts_backend *be;
    st_file *model;
    q3t_speech_decoder *d;
} fixture;

static int fixture_open(fixture *fx, int threads) {
    char err[256] = "";
    memset(fx, 0, sizeof *fx);
    fx->be = ctts_backend_cpu_new(threads, CTTS_ISA_AUTO);
    fx->model = open_golden("model/speech_tokenizer/model.safetensors");
    if (!fx->be || !fx->model) return 0;
    q3t_codec_decoder_config cfg = tiny_config();
    if (q3t_speech_decoder_bind(&cfg, fx->be, st_lookup, fx->model, &fx->d, err, sizeof err) !=
        CTTS_OK) {
        fprintf(stderr, "    bind: %s\n", err);
        return 0;
    }
    return 1;
}

static void fixture_close(fixture *fx) {
    q3t_speech_decoder_free(fx->d);
    if (fx->model) st_close(fx->model);
    if (fx->be) fx->be->destroy(fx->be);
}

/* Decodes codes [n, 16] with a fresh stream taking `piece` frames per call. */
static float *decode_pieces(q3t_speech_decoder *d, const int32_t *codes, int n, int piece,
                            int chunk, int context) {
    char err[256] = "";
    q3t_sdec_stream *s = NULL;
    if (q3t_sdec_stream_new(d, piece, chunk, context, &s, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "    stream: %s\n", err);
        return NULL;
    }
    const int hop = q3t_speech_decoder_hop(d), nq = q3t_speech_decoder_n_codebooks(d);
    float *pcm = malloc((size_t)n * hop * sizeof *pcm);
    for (int i = 0; pcm && i < n; i += piece) {
        int k = n - i < piece ? n - i : piece;
        if (q3t_sdec_stream_decode(s, codes + (size_t)i * nq, k, pcm + (size_t)i * hop, err,
                                   sizeof err) != CTTS_OK) {
            fprintf(stderr, "    decode: %s\n", err);
            free(pcm);
            pcm = NULL;
        }
    }
    q3t_sdec_stream_free(s);
    return pcm;
}

static void test_bind_names(void) {
    fixture fx;
    int ok = fixture_open(&fx, 1);
    CHECK(ok);
    if (ok) {
        int n = 0;
        const char *const *names = q3t_speech_decoder_bound_names(fx.d, &n);
        int n_dec = 0;
        for (int i = 0; i < st_count(fx.model); i++)
            if (strncmp(st_tensor(fx.model, i)->name, "decoder.", 8) == 0) n_dec++;
        /* Every decoder.* tensor is bound exactly once, nothing else. */
        CHECK_EQ_INT(n, n_dec);
        for (int i = 0; i < n; i++) {
            CHECK(strncmp(names[i], "decoder.", 8) == 0 && st_find(fx.model, names[i]));
            for (int j = 0; j < i; j++) CHECK(strcmp(names[i], names[j]) != 0);
        }
        CHECK_EQ_INT(q3t_speech_decoder_hop(fx.d), 1920);
        CHECK_EQ_INT(q3t_speech_decoder_n_codebooks(fx.d), 16);
        CHECK_EQ_INT(q3t_speech_decoder_codebook_size(fx.d), 2048);
    }
    fixture_close(&fx);
}

static void test_bind_errors(void) {
    ctts_backend *be = ctts_backend_cpu_new(1, CTTS_ISA_AUTO);
    st_file *f = open_golden("model/speech_tokenizer/model.safetensors");
    REQUIRE(be && f);
    q3t_codec_decoder_config cfg = tiny_config();
    char err[256] = "";
    q3t_speech_decoder *d = (q3t_speech_decoder *)1;

    wrapped_lookup hide = {.f = f, .hide = "decoder.decoder.3.block.2.act2.beta"};
    CHECK_EQ_INT(q3t_speech_decoder_bind(&cfg, be, wrapped, &hide, &d, err, sizeof err),
                 CTTS_E_NOT_FOUND);
    CHECK(d == NULL);
    CHECK_STR_CONTAINS(err, "missing tensor 'decoder.decoder.3.block.2.act2.beta'");

    wrapped_lookup hide_cb = {.f = f,
                              .hide = "decoder.quantizer.rvq_rest.vq.layers.14._codebook."
                                      "cluster_usage"};
    CHECK_EQ_INT(q3t_speech_decoder_bind(&cfg, be, wrapped, &hide_cb, &d, err, sizeof err),
                 CTTS_E_NOT_FOUND);
    CHECK_STR_CONTAINS(err, "layers.14._codebook.cluster_usage");

    wrapped_lookup swap = {.f = f,
                           .swap_name = "decoder.decoder.2.block.1.conv.weight",
                           .swap_with = "decoder.decoder.1.block.1.conv.weight"};
    CHECK_EQ_INT(q3t_speech_decoder_bind(&cfg, be, wrapped, &swap, &d, err, sizeof err),
                 CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "tensor 'decoder.decoder.2.block.1.conv.weight': expected shape "
                            "[16, 8, 10], got [32, 16, 16]");

    /* A config that disagrees with the file fails on the first tensor it shapes. */
    q3t_codec_decoder_config wide = cfg;
    wide.hidden_size = 32;
    CHECK_EQ_INT(q3t_speech_decoder_bind(&wide, be, st_lookup, f, &d, err, sizeof err),
                 CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "decoder.pre_transformer.input_proj.weight");
    q3t_codec_decoder_config more = cfg;
    more.num_hidden_layers = 3;
    CHECK_EQ_INT(q3t_speech_decoder_bind(&more, be, st_lookup, f, &d, err, sizeof err),
                 CTTS_E_NOT_FOUND);
    CHECK_STR_CONTAINS(err, "layers.2.");

    /* Impossible configs are rejected before any lookup. */
    q3t_codec_decoder_config bad = cfg;
    bad.codebook_dim = 7;
    CHECK_EQ_INT(q3t_speech_decoder_bind(&bad, be, st_lookup, f, &d, err, sizeof err),
                 CTTS_E_INVALID_ARG);
    bad = cfg;
    bad.num_key_value_heads = 3;
    CHECK_EQ_INT(q3t_speech_decoder_bind(&bad, be, st_lookup, f, &d, err, sizeof err),
                 CTTS_E_INVALID_ARG);
    bad = cfg;
    bad.decoder_dim = 36; /* not divisible by 2^4 */
    CHECK_EQ_INT(q3t_speech_decoder_bind(&bad, be, st_lookup, f, &d, err, sizeof err),
                 CTTS_E_INVALID_ARG);
    bad = cfg;
    bad.n_upsample_rates = 0;
    CHECK_EQ_INT(q3t_speech_decoder_bind(&bad, be, st_lookup, f, &d, err, sizeof err),
                 CTTS_E_INVALID_ARG);
    CHECK(d == NULL);
    CHECK_EQ_INT(q3t_speech_decoder_bind(&cfg, be, NULL, f, &d, err, sizeof err),
                 CTTS_E_INVALID_ARG);
    st_close(f);
    be->destroy(be);
}

/* Collects the taps of one decode call. */
#define MAX_TAPS 24
typedef struct {
    char name[MAX_TAPS][48];
    float *data[MAX_TAPS];
    int rows[MAX_TAPS], cols[MAX_TAPS];
    int n;
} taps;

/* A call longer than the stream's internal piece (8 frames) taps every stage once
 * per piece: pieces are appended along time (columns of the channel-major taps,
 * rows of the time-major "pre_transformer"). */
static void on_tap(void *user, const char *name, const float *data, int rows, int cols) {
    taps *t = user;
    int i = 0;
    while (i < t->n && strcmp(t->name[i], name) != 0) i++;
    if (i == t->n) {
        if (t->n >= MAX_TAPS) return;
        snprintf(t->name[i], sizeof t->name[0], "%s", name);
        t->data[i] = NULL;
        t->rows[i] = strcmp(name, "pre_transformer") == 0 ? 0 : rows;
        t->cols[i] = strcmp(name, "pre_transformer") == 0 ? cols : 0;
        t->n++;
    }
    const int time_major = strcmp(name, "pre_transformer") == 0;
    const int R = time_major ? t->rows[i] + rows : rows, C = time_major ? cols : t->cols[i] + cols;
    float *m = malloc((size_t)R * C * sizeof(float));
    if (!m) return;
    if (time_major) {
        if (t->data[i]) memcpy(m, t->data[i], (size_t)t->rows[i] * cols * sizeof(float));
        memcpy(m + (size_t)t->rows[i] * cols, data, (size_t)rows * cols * sizeof(float));
    } else {
        for (int r = 0; r < rows; r++) {
            if (t->data[i])
                memcpy(m + (size_t)r * C, t->data[i] + (size_t)r * t->cols[i],
                       (size_t)t->cols[i] * sizeof(float));
            memcpy(m + (size_t)r * C + t->cols[i], data + (size_t)r * cols,
                   (size_t)cols * sizeof(float));
        }
    }
    free(t->data[i]);
    t->data[i] = m;
    t->rows[i] = R;
    t->cols[i] = C;
}

static void test_d00_intermediates(void) {
    fixture fx;
    st_file *g = open_golden("speech_tokenizer/d00_decode.safetensors");
    int ok = fixture_open(&fx, 2) && g;
    REQUIRE(ok);
    int32_t *codes = golden_copy(g, "codes", CTTS_DT_I32, 12 * 16);
    float *want = golden_copy(g, "audio", CTTS_DT_F32, 23040);
    q3t_sdec_stream *s = NULL;
    char err[256] = "";
    taps tp = {0};
    float *pcm = malloc(23040 * sizeof *pcm);
    if (codes && want && pcm &&
        q3t_sdec_stream_new(fx.d, 12, 0, 0, &s, err, sizeof err) == CTTS_OK) {
        q3t_sdec_stream_set_tap(s, on_tap, &tp);
        CHECK_EQ_INT(q3t_sdec_stream_decode(s, codes, 12, pcm, err, sizeof err), CTTS_OK);
        const char *expect[] = {"quantizer_out",      "pre_conv",           "pre_transformer",
                                "upsample0.transconv", "upsample0.convnext", "upsample1.transconv",
                                "upsample1.convnext", "decoder.0",          "decoder.1",
                                "decoder.2",          "decoder.3",          "decoder.4",
                                "decoder.5",          "decoder.6"};
        const int n_expect = (int)(sizeof expect / sizeof expect[0]);
        CHECK_EQ_INT(tp.n, n_expect);
        for (int i = 0; i < n_expect && i < tp.n; i++) {
            CHECK(strcmp(tp.name[i], expect[i]) == 0);
            size_t n = (size_t)tp.rows[i] * tp.cols[i];
            float *ref = golden_copy(g, tp.name[i], CTTS_DT_F32, n);
            CHECK(ref != NULL);
            if (ref && tp.data[i]) {
                double e = max_abs_diff(tp.data[i], ref, n);
                /* The last SnakeBeta stages amplify float noise (values up to 27; the
                 * official code itself moves them by up to 9e-4 between thread counts). */
                const double tol = strcmp(tp.name[i], "decoder.4") == 0 ||
                                           strcmp(tp.name[i], "decoder.5") == 0
                                       ? 1e-3
                                       : 1e-4;
                if (!(e <= tol)) TEST_FAIL_AT("%s: max abs diff %g > %g", tp.name[i], e, tol);
            }
            free(ref);
        }
        double e = max_abs_diff(pcm, want, 23040);
        if (!(e <= 1e-4)) TEST_FAIL_AT("audio: max abs diff %g > 1e-4", e);
        /* The whole-utterance decode is the same computation. */
        float *all = NULL;
        size_t n_all = 0;
        CHECK_EQ_INT(q3t_speech_decode(fx.d, codes, 12, &all, &n_all, err, sizeof err), CTTS_OK);
        CHECK_EQ_INT(n_all, 23040);
        if (all) CHECK(max_abs_diff(all, want, 23040) <= 1e-4);
        free(all);
    } else {
        TEST_FAIL_AT("setup: %s", err);
    }
    for (int i = 0; i < tp.n; i++) free(tp.data[i]);
    q3t_sdec_stream_free(s);
    free(pcm);
    free(codes);
    free(want);
    st_close(g);
    fixture_close(&fx);
}

static void test_d00_streaming(void) {
    fixture fx;
    st_file *g = open_golden("speech_tokenizer/d00_decode.safetensors");
    REQUIRE(fixture_open(&fx, 2) && g);
    int32_t *codes = golden_copy(g, "codes", CTTS_DT_I32, 12 * 16);
    float *want = golden_copy(g, "audio", CTTS_DT_F32, 23040);
    REQUIRE(codes && want);
    float *whole = decode_pieces(fx.d, codes, 12, 12, 0, 0);
    float *one = decode_pieces(fx.d, codes, 12, 1, 0, 0);
    float *five = decode_pieces(fx.d, codes, 12, 5, 0, 0);
    CHECK(whole && one && five);
    if (whole && one && five) {
        /* Streaming is the same causal computation; only the rounding of the held-back
         * conv-transpose sums differs (amplified by the SnakeBeta stages). */
        double e1 = max_abs_diff(one, whole, 23040), e5 = max_abs_diff(five, whole, 23040);
        if (!(e1 <= 2e-5 && e5 <= 2e-5)) TEST_FAIL_AT("stream vs whole: %g / %g", e1, e5);
        CHECK(max_abs_diff(one, want, 23040) <= 1e-4);
    }
    /* Reset gives the same audio again; one thread gives the same as two. */
    fixture fx1;
    if (fixture_open(&fx1, 1)) {
        float *t1 = decode_pieces(fx1.d, codes, 12, 3, 0, 0);
        float *t2 = decode_pieces(fx.d, codes, 12, 3, 0, 0);
        CHECK(t1 && t2 && memcmp(t1, t2, 23040 * sizeof(float)) == 0);
        free(t1);
        free(t2);
    } else {
        CHECK(0);
    }
    fixture_close(&fx1);
    free(whole);
    free(one);
    free(five);
    free(codes);
    free(want);
    st_close(g);
    fixture_close(&fx);
}

static void test_d01_chunked(void) {
    fixture fx;
    st_file *g = open_golden("speech_tokenizer/d01_decode_chunked.safetensors");
    REQUIRE(fixture_open(&fx, 2) && g);
    const int n = 330;
    const size_t ns = (size_t)n * 1920;
    int32_t *codes = golden_copy(g, "codes", CTTS_DT_I32, (size_t)n * 16);
    float *want = golden_copy(g, "audio", CTTS_DT_F32, ns);
    REQUIRE(codes && want);
    char err[256] = "";
    float *pcm = NULL;
    size_t n_pcm = 0;
    CHECK_EQ_INT(q3t_speech_decode(fx.d, codes, n, &pcm, &n_pcm, err, sizeof err), CTTS_OK);
    CHECK_EQ_INT(n_pcm, ns);
    if (pcm && n_pcm == ns) {
        double e = max_abs_diff(pcm, want, ns);
        if (!(e <= 1e-3)) TEST_FAIL_AT("chunked audio: max abs diff %g > 1e-3", e);
        /* The second chunk (its 25 context frames re-read) on its own. */
        const size_t b = (size_t)300 * 1920;
        double eb = max_abs_diff(pcm + b, want + b, ns - b);
        if (!(eb <= 1e-4)) TEST_FAIL_AT("second chunk: max abs diff %g > 1e-4", eb);
        /* Streaming with the same chunking, in pieces that straddle the boundary. */
        float *st7 = decode_pieces(fx.d, codes, n, 7, Q3T_SDEC_CHUNK, Q3T_SDEC_CONTEXT);
        CHECK(st7 && max_abs_diff(st7, pcm, ns) <= 2e-5);
        free(st7);
        /* One unbroken stream differs from the chunked decode only after frame 300. */
        float *flat = decode_pieces(fx.d, codes, n, 16, 0, 0);
        CHECK(flat != NULL);
        if (flat) {
            CHECK(max_abs_diff(flat, pcm, b) <= 2e-5);
            CHECK(max_abs_diff(flat, want, ns) <= 1e-3);
        }
        free(flat);
    }
    free(pcm);
    free(codes);
    free(want);
    st_close(g);
    fixture_close(&fx);
}

/* Chunk restarts with a short context (chunk 10, context 3) against a hand-made
 * emulation of chunked_decode: chunk k is a fresh decode of frames [10k - 3, 10k + 10)
 * whose first 3 frames of audio are dropped. The short context makes the result
 * clearly differ from one unbroken stream, so this shows where the restarts happen. */
static void test_chunk_restarts(void) {
    fixture fx;
    st_file *g = open_golden("speech_tokenizer/d01_decode_chunked.safetensors");
    REQUIRE(fixture_open(&fx, 2) && g);
    const int n = 34, hop = 1920;
    int32_t *codes = golden_copy(g, "codes", CTTS_DT_I32, 330 * 16);
    REQUIRE(codes);
    float *chunked = decode_pieces(fx.d, codes, n, 4, 10, 3);
    float *flat = decode_pieces(fx.d, codes, n, 4, 0, 0);
    float *manual = malloc((size_t)n * hop * sizeof *manual);
    REQUIRE(chunked && flat && manual);
    for (int s0 = 0; s0 < n; s0 += 10) {
        const int c = s0 - 3 > 0 ? 3 : s0, end = s0 + 10 < n ? s0 + 10 : n;
        float *part = decode_pieces(fx.d, codes + (size_t)(s0 - c) * 16, end - s0 + c, 13, 0, 0);
        REQUIRE(part);
        memcpy(manual + (size_t)s0 * hop, part + (size_t)c * hop,
               (size_t)(end - s0) * hop * sizeof *manual);
        free(part);
    }
    const size_t ns = (size_t)n * hop;
    double e = max_abs_diff(chunked, manual, ns);
    if (!(e <= 2e-5)) TEST_FAIL_AT("chunked stream vs emulation: %g", e);
    /* Identical before the first restart, different after it. */
    CHECK(max_abs_diff(chunked, flat, (size_t)10 * hop) <= 2e-5);
    CHECK(max_abs_diff(chunked + 10 * hop, flat + 10 * hop, ns - 10 * hop) > 1e-3);
    free(chunked);
    free(flat);
    free(manual);
    free(codes);
    st_close(g);
    fixture_close(&fx);
}

static void test_d02_batch_padding(void) {
    fixture fx;
    st_file *g = open_golden("speech_tokenizer/d02_decode_batch_padding.safetensors");
    REQUIRE(fixture_open(&fx, 2) && g);
    const struct {
        const char *codes, *alone, *batched;
        int n;
    } cases[2] = {{"codes_a", "audio_a_alone", "audio_a_batched", 12},
                  {"codes_b", "audio_b_alone", "audio_b_batched", 7}};
    for (int c = 0; c < 2; c++) {
        const size_t ns = (size_t)cases[c].n * 1920;
        int32_t *codes = golden_copy(g, cases[c].codes, CTTS_DT_I32, (size_t)cases[c].n * 16);
        float *alone = golden_copy(g, cases[c].alone, CTTS_DT_F32, ns);
        float *batched = golden_copy(g, cases[c].batched, CTTS_DT_F32, ns);
        float *pcm = NULL;
        size_t n_pcm = 0;
        char err[256] = "";
        CHECK(codes && alone && batched);
        if (codes && alone && batched) {
            CHECK_EQ_INT(q3t_speech_decode(fx.d, codes, cases[c].n, &pcm, &n_pcm, err, sizeof err),
                         CTTS_OK);
            CHECK_EQ_INT(n_pcm, ns);
            if (pcm) {
                CHECK(max_abs_diff(pcm, alone, ns) <= 1e-4);
                CHECK(max_abs_diff(pcm, batched, ns) <= 1e-4);
            }
        }
        free(pcm);
        free(codes);
        free(alone);
        free(batched);
    }
    st_close(g);
    fixture_close(&fx);
}

static void test_bad_input(void) {
    fixture fx;
    REQUIRE(fixture_open(&fx, 1));
    char err[256] = "";
    q3t_sdec_stream *s = (q3t_sdec_stream *)1;
    CHECK_EQ_INT(q3t_sdec_stream_new(fx.d, 0, 0, 0, &s, err, sizeof err), CTTS_E_INVALID_ARG);
    CHECK(s == NULL);
    CHECK_EQ_INT(q3t_sdec_stream_new(fx.d, 4, 10, 10, &s, err, sizeof err), CTTS_E_INVALID_ARG);
    CHECK_EQ_INT(q3t_sdec_stream_new(fx.d, 4, -1, 0, &s, err, sizeof err), CTTS_E_INVALID_ARG);
    REQUIRE(q3t_sdec_stream_new(fx.d, 4, 0, 0, &s, err, sizeof err) == CTTS_OK);
    int32_t codes[5 * 16];
    for (int i = 0; i < 5 * 16; i++) codes[i] = (i * 37) % 2048;
    float pcm[5 * 1920];
    CHECK_EQ_INT(q3t_sdec_stream_decode(s, codes, 5, pcm, err, sizeof err), CTTS_E_INVALID_ARG);
    CHECK_EQ_INT(q3t_sdec_stream_decode(s, codes, 0, pcm, err, sizeof err), CTTS_E_INVALID_ARG);
    codes[2 * 16 + 3] = 2048;
    CHECK_EQ_INT(q3t_sdec_stream_decode(s, codes, 4, pcm, err, sizeof err), CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "code 2048 of frame 2, codebook 3");
    codes[2 * 16 + 3] = -1;
    CHECK_EQ_INT(q3t_sdec_stream_decode(s, codes, 4, pcm, err, sizeof err), CTTS_E_INVALID_ARG);
    codes[2 * 16 + 3] = 5;
    CHECK_EQ_INT(q3t_sdec_stream_decode(s, codes, 4, pcm, err, sizeof err), CTTS_OK);
    for (int i = 0; i < 4 * 1920; i++) CHECK(pcm[i] >= -1.0f && pcm[i] <= 1.0f);
    q3t_sdec_stream_free(s);
    float *out = (float *)1;
    size_t n = 7;
    CHECK_EQ_INT(q3t_speech_decode(fx.d, codes, 0, &out, &n, err, sizeof err), CTTS_OK);
    CHECK(out == NULL && n == 0);
    CHECK_EQ_INT(q3t_speech_decode(fx.d, NULL, 3, &out, &n, err, sizeof err), CTTS_E_INVALID_ARG);
    fixture_close(&fx);
}

TEST_MAIN(T(test_bind_names), T(test_bind_errors), T(test_d00_intermediates),
          T(test_d00_streaming), T(test_d01_chunked), T(test_chunk_restarts),
          T(test_d02_batch_padding),
          T(test_bad_input))
