/*
 * Qwen3-TTS end to end against the official goldens (qwen3tts-tiny): text ->
 * prompt -> talker / code predictor -> speech decoder, through the family
 * stream (q3t_stream_*), frame by frame.
 *  - the 7 greedy CustomVoice cases: every first code (with the final EOS /
 *    dropped token), all 16 codes of every frame and the stop reason exact;
 *    audio sample count exact and samples within 1e-3 (README tolerance);
 *  - the sampled case (c07, seed 1234 in torch: not reproducible): a seeded
 *    run is deterministic and within the limits, another seed changes it;
 *  - the 3 Base cases (voice from the golden x-vector and reference codes):
 *    codes exact, audio (reference part cut) within 1e-3;
 *  - stream errors: missing / unknown speaker, bad sampling values, a voice
 *    given to a CustomVoice model, step before start;
 *  - pipelined == sequential audio (2 threads); max_frames + ignore_eos.
 * Golden data: $CTTS_GOLDEN or ../shared/golden (run from the repo root).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/qwen3tts/qwen3tts.h"

#define TOL_AUDIO 1e-3

static const char *model_dir(int base, char *buf, size_t len) {
    snprintf(buf, len, "%s/qwen3tts-tiny/%s", test_golden_dir(), base ? "model-base" : "model");
    return buf;
}

static int golden_present(void) {
    char p[1024];
    snprintf(p, sizeof p, "%s/qwen3tts-tiny/manifest.json", test_golden_dir());
    return access(p, R_OK) == 0;
}

static void *golden_array(st_file *st, const char *name, ctts_dtype dt, int64_t *n) {
    const ctts_tensor *t = st_find(st, name);
    if (!t || t->dtype != dt) return NULL;
    if (n) *n = ctts_tensor_numel(t);
    void *p = malloc(t->nbytes ? t->nbytes : 1);
    if (p) memcpy(p, t->data, t->nbytes);
    return p;
}

static st_file *open_case(const char *id) {
    char p[1024], err[256];
    snprintf(p, sizeof p, "%s/qwen3tts-tiny/cases/%s.safetensors", test_golden_dir(), id);
    st_file *st = NULL;
    if (st_open(p, &st, err, sizeof err) != CTTS_OK) fprintf(stderr, "    %s\n", err);
    return st;
}

/* Frames seen by the observer. */
typedef struct {
    int32_t *codes;
    int n, cap, G;
} frames;

static void on_frame(void *user, int frame, const int32_t *codes) {
    frames *f = user;
    if (frame != f->n) return; /* out of order: leaves a gap the test notices */
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->codes = realloc(f->codes, (size_t)f->cap * f->G * sizeof *f->codes);
    }
    memcpy(f->codes + (size_t)f->n * f->G, codes, (size_t)f->G * sizeof *codes);
    f->n++;
}

/* Runs a started stream to the end; returns the samples (malloc'd). */
static float *run_stream(q3t_stream *s, size_t frame_size, size_t *n_out, ctts_status *st_out) {
    size_t n = 0, cap = 0;
    float *pcm = NULL;
    char err[512];
    ctts_status st;
    for (;;) {
        if (cap - n < frame_size) {
            cap = cap ? cap * 2 : frame_size * 64;
            pcm = realloc(pcm, cap * sizeof *pcm);
        }
        size_t k = 0;
        st = q3t_stream_step(s, pcm + n, &k, err, sizeof err);
        if (st != CTTS_OK) break;
        n += k;
    }
    if (st != CTTS_DONE) fprintf(stderr, "    step: %s\n", err);
    *st_out = st;
    *n_out = n;
    return pcm;
}

static q3t_voice *case_voice(const q3t_model *m, st_file *st, const json_value *mc) {
    int64_t nx = 0, nr = 0;
    float *x = golden_array(st, "ref_spk_embedding", CTTS_DT_F32, &nx);
    int32_t *rc = golden_array(st, "ref_code", CTTS_DT_I32, &nr);
    const json_value *xo = json_get(mc, "x_vector_only_mode");
    int icl = !(xo && xo->type == JSON_BOOL && xo->boolean);
    const json_value *rt = json_get(mc, "ref_text");
    q3t_voice *v = NULL;
    char err[256];
    if (x && (!icl || rc) &&
        q3t_voice_new(m, x, icl ? rc : NULL, icl ? (int)(nr / 16) : 0,
                      icl && rt ? rt->string : NULL, &v, err, sizeof err) != CTTS_OK)
        fprintf(stderr, "    %s\n", err);
    free(x);
    free(rc);
    return v;
}

/* The official call of a case as ctts parameters (greedy: temperature 0). */
static ctts_gen_params case_params(const q3t_model *m, const json_value *mc) {
    ctts_gen_params p = q3t_default_gen_params(m);
    const json_value *kw = json_get(mc, "call_kwargs");
    const json_value *v;
    if ((v = json_get(kw, "non_streaming_mode")) && v->type == JSON_BOOL)
        p.text_mode = v->boolean ? CTTS_TEXT_MODE_NON_STREAMING : CTTS_TEXT_MODE_STREAMING;
    if ((v = json_get(kw, "do_sample")) && v->type == JSON_BOOL && !v->boolean) p.temperature = 0;
    if ((v = json_get(kw, "repetition_penalty"))) p.repetition_penalty = (float)v->number;
    if ((v = json_get(kw, "max_new_tokens"))) p.max_new_tokens = (int)v->integer;
    if ((v = json_get(kw, "temperature"))) p.temperature = (float)v->number;
    if ((v = json_get(kw, "top_k"))) p.top_k = (int)v->integer;
    if ((v = json_get(kw, "top_p"))) p.top_p = (float)v->number;
    v = json_get(mc, "speaker");
    p.speaker = v && v->type == JSON_STRING ? v->string : NULL;
    p.language = json_get(mc, "language")->string;
    return p;
}

static int run_golden_cases(int base, int *n_sampled) {
    char dir[1024], err[512], p[1100];
    snprintf(p, sizeof p, "%s/qwen3tts-tiny/manifest.json", test_golden_dir());
    json_value *man = json_parse_file(p, err, sizeof err);
    if (!man) return -1;
    q3t_model *m = NULL;
    q3t_stream *s = NULL;
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = 1;
    if (q3t_model_load(model_dir(base, dir, sizeof dir), &mp, &m, err, sizeof err) != CTTS_OK ||
        q3t_stream_new(m, &s, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "    %s\n", err);
        q3t_model_free(m);
        json_free(man);
        return -1;
    }
    const int G = q3t_model_config(m)->talker.dec.num_code_groups;
    const size_t step_max = q3t_step_max_samples(m);
    const json_value *cases = json_get(man, base ? "base_cases" : "cases");
    int n_greedy = 0;
    for (size_t i = 0; cases && i < cases->length; i++) {
        const json_value *mc = &cases->items[i];
        const char *id = json_get(mc, "id")->string;
        ctts_gen_params gp = case_params(m, mc);
        if (gp.temperature > 0) {
            (*n_sampled)++;
            continue; /* torch's draws cannot be replayed: test_sampled_case */
        }
        st_file *st = open_case(id);
        if (!st) continue;
        q3t_voice *v = base ? case_voice(m, st, mc) : NULL;
        frames fr = {.G = G};
        q3t_stream_set_observer(s, on_frame, &fr);
        ctts_status rc = q3t_stream_start(s, v, &gp, json_get(mc, "text")->string, err, sizeof err);
        size_t n = 0;
        float *pcm = NULL;
        if (rc == CTTS_OK) pcm = run_stream(s, step_max, &n, &rc);
        else TEST_FAIL_AT("%s: start: %s", id, err);
        int64_t n_codes = 0, n_first = 0, n_audio = 0;
        int32_t *gc = golden_array(st, "codes", CTTS_DT_I32, &n_codes);
        int32_t *gf = golden_array(st, "first_code_sequence", CTTS_DT_I32, &n_first);
        float *ga = golden_array(st, "audio", CTTS_DT_F32, &n_audio);
        if (rc == CTTS_DONE && gc && gf && ga) {
            int F = (int)(n_codes / G);
            if (fr.n != F) TEST_FAIL_AT("%s: %d frames, golden %d", id, fr.n, F);
            int first_bad = -1;
            for (int f = 0; f < F && f < fr.n && first_bad < 0; f++)
                if (memcmp(fr.codes + (size_t)f * G, gc + (size_t)f * G, (size_t)G * sizeof *gc))
                    first_bad = f;
            if (first_bad >= 0) TEST_FAIL_AT("%s: codes differ from frame %d", id, first_bad);
            int nf = 0;
            const int32_t *first = q3t_stream_first_codes(s, &nf);
            if (nf != n_first || memcmp(first, gf, (size_t)nf * sizeof *gf))
                TEST_FAIL_AT("%s: first-code sequence differs (%d vs %lld codes)", id, nf,
                             (long long)n_first);
            const char *why = json_get(mc, "stop_reason")->string;
            int want = strcmp(why, "eos") == 0 ? 1 : 2;
            if (q3t_stream_stop_reason(s) != want)
                TEST_FAIL_AT("%s: stop reason %d, golden %s", id, q3t_stream_stop_reason(s), why);
            if ((int64_t)n != n_audio) {
                TEST_FAIL_AT("%s: %zu samples, golden %lld", id, n, (long long)n_audio);
            } else {
                double d = 0;
                for (size_t k = 0; k < n; k++) {
                    double e = fabs((double)pcm[k] - (double)ga[k]);
                    if (!(e <= d)) d = e;
                }
                if (!(d <= TOL_AUDIO)) TEST_FAIL_AT("%s: audio differs by %g", id, d);
            }
            n_greedy++;
        } else if (rc == CTTS_DONE) {
            TEST_FAIL_AT("%s: golden tensors missing", id);
        }
        free(gc);
        free(gf);
        free(ga);
        free(pcm);
        free(fr.codes);
        q3t_voice_free(v);
        st_close(st);
    }
    q3t_stream_free(s);
    q3t_model_free(m);
    json_free(man);
    return n_greedy;
}

static void test_custom_voice_greedy(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    int n_sampled = 0;
    CHECK_EQ_INT(run_golden_cases(0, &n_sampled), 7);
    CHECK_EQ_INT(n_sampled, 1);
}

static void test_base_greedy(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    int n_sampled = 0;
    CHECK_EQ_INT(run_golden_cases(1, &n_sampled), 3);
}

/* c07: sampled with the checkpoint's settings. Deterministic per seed. */
static void test_sampled_case(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char dir[1024], err[512];
    q3t_model *m = NULL;
    q3t_stream *s = NULL;
    REQUIRE(q3t_model_load(model_dir(0, dir, sizeof dir), NULL, &m, err, sizeof err) == CTTS_OK);
    REQUIRE(q3t_stream_new(m, &s, err, sizeof err) == CTTS_OK);
    ctts_gen_params p = q3t_default_gen_params(m);
    CHECK_NEAR(p.temperature, 0.9, 1e-7); /* generation_config.json: do_sample true */
    p.speaker = "Eric";
    p.language = "Auto";
    p.max_new_tokens = 48;
    const char *text = "Sampling should be reproducible for a fixed seed.";
    float *pcm[3] = {0};
    size_t n[3] = {0};
    uint64_t seeds[3] = {1234, 1234, 99};
    for (int r = 0; r < 3; r++) {
        p.seed = seeds[r];
        ctts_status rc = q3t_stream_start(s, NULL, &p, text, err, sizeof err);
        REQUIRE(rc == CTTS_OK);
        pcm[r] = run_stream(s, q3t_step_max_samples(m), &n[r], &rc);
        CHECK(rc == CTTS_DONE);
        CHECK(n[r] <= (size_t)47 * 1920 && n[r] % 1920 == 0);
    }
    CHECK(n[0] == n[1] && memcmp(pcm[0], pcm[1], n[0] * sizeof(float)) == 0);
    CHECK(n[0] != n[2] || memcmp(pcm[0], pcm[2], n[0] * sizeof(float)) != 0);
    for (int r = 0; r < 3; r++) free(pcm[r]);
    q3t_stream_free(s);
    q3t_model_free(m);
}

static void test_stream_errors(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char dir[1024], err[512];
    q3t_model *m = NULL, *mb = NULL;
    q3t_stream *s = NULL, *sb = NULL;
    REQUIRE(q3t_model_load(model_dir(0, dir, sizeof dir), NULL, &m, err, sizeof err) == CTTS_OK);
    REQUIRE(q3t_stream_new(m, &s, err, sizeof err) == CTTS_OK);
    float pcm[4 * 1920];
    REQUIRE(q3t_step_max_samples(m) <= sizeof pcm / sizeof pcm[0]);
    size_t n = 0;
    CHECK(q3t_stream_step(s, pcm, &n, err, sizeof err) == CTTS_E_STATE);
    ctts_gen_params p = q3t_default_gen_params(m);
    CHECK(q3t_stream_start(s, NULL, &p, "hi", err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "a speaker is required for this model (one of: serena, vivian");
    p.speaker = "Bob";
    CHECK(q3t_stream_start(s, NULL, &p, "hi", err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "unknown speaker 'Bob'");
    p.speaker = "ryan";
    p.language = "Elvish";
    CHECK(q3t_stream_start(s, NULL, &p, "hi", err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "unknown language 'Elvish'");
    p.language = NULL;
    p.top_p = 0;
    CHECK(q3t_stream_start(s, NULL, &p, "hi", err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "top_p must be in (0, 1]");
    p.top_p = 1;
    p.temperature = -1;
    CHECK(q3t_stream_start(s, NULL, &p, "hi", err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "temperature");
    p.temperature = 0;
    p.repetition_penalty = 0;
    CHECK(q3t_stream_start(s, NULL, &p, "hi", err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "repetition_penalty");
    p.repetition_penalty = 1;
    p.top_k = -1;
    CHECK(q3t_stream_start(s, NULL, &p, "hi", err, sizeof err) == CTTS_E_INVALID_ARG);
    p.top_k = 0;
    p.max_new_tokens = -5;
    CHECK(q3t_stream_start(s, NULL, &p, "hi", err, sizeof err) == CTTS_E_INVALID_ARG);
    p.max_new_tokens = 0;
    p.text_mode = (ctts_text_mode)7;
    CHECK(q3t_stream_start(s, NULL, &p, "hi", err, sizeof err) == CTTS_E_INVALID_ARG);
    p.text_mode = CTTS_TEXT_MODE_AUTO;
    CHECK(q3t_stream_start(s, NULL, &p, "\xFF", err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "UTF-8");
    /* max_new_tokens 1: one first code, no frame. */
    p.max_new_tokens = 1;
    REQUIRE(q3t_stream_start(s, NULL, &p, "hi", err, sizeof err) == CTTS_OK);
    CHECK(q3t_stream_step(s, pcm, &n, err, sizeof err) == CTTS_DONE && n == 0);
    CHECK_EQ_INT(q3t_stream_stop_reason(s), 2);
    /* max_new_tokens 3: at most 2 frames. */
    p.max_new_tokens = 3;
    REQUIRE(q3t_stream_start(s, NULL, &p, "", err, sizeof err) == CTTS_OK);
    int n_frames = 0;
    while (q3t_stream_step(s, pcm, &n, err, sizeof err) == CTTS_OK) n_frames++;
    CHECK(n_frames <= 2);

    /* A voice for a CustomVoice model, and none for a Base model. */
    REQUIRE(q3t_model_load(model_dir(1, dir, sizeof dir), NULL, &mb, err, sizeof err) == CTTS_OK);
    REQUIRE(q3t_stream_new(mb, &sb, err, sizeof err) == CTTS_OK);
    float x[32] = {0};
    q3t_voice *v = NULL;
    REQUIRE(q3t_voice_new(mb, x, NULL, 0, NULL, &v, err, sizeof err) == CTTS_OK);
    p = q3t_default_gen_params(m);
    p.speaker = "ryan";
    CHECK(q3t_stream_start(s, v, &p, "hi", err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "built-in speakers");
    CHECK(q3t_stream_start(sb, v, &p, "hi", err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "'speaker' is for custom_voice models");
    p.speaker = NULL;
    CHECK(q3t_stream_start(sb, NULL, &p, "hi", err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "needs a voice");
    x[3] = NAN;
    q3t_voice *bad = NULL;
    CHECK(q3t_voice_new(mb, x, NULL, 0, NULL, &bad, err, sizeof err) == CTTS_E_INVALID_ARG);
    x[3] = 0;
    int32_t codes[16] = {0};
    codes[5] = 4096;
    CHECK(q3t_voice_new(mb, x, codes, 1, "ref", &bad, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "reference code 5 of frame 0 is 4096");
    codes[5] = 0;
    CHECK(q3t_voice_new(mb, x, codes, 1, NULL, &bad, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK(bad == NULL);
    q3t_voice_free(v);
    q3t_stream_free(sb);
    q3t_model_free(mb);
    q3t_stream_free(s);
    q3t_model_free(m);
}

/* Pipelined (decoder as a side job, 2 threads; asked for, and auto, which
 * starts once ahead of real time: this tiny model is) == sequential, sample
 * for sample; max_frames with ignore_eos gives exactly that many frames, and
 * the step sizes are 1 frame, then up to 4. */
static void test_pipeline_and_frame_cap(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char dir[1024], err[512];
    q3t_model *m = NULL;
    q3t_stream *s = NULL;
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = 2;
    REQUIRE(q3t_model_load(model_dir(0, dir, sizeof dir), &mp, &m, err, sizeof err) == CTTS_OK);
    REQUIRE(q3t_stream_new(m, &s, err, sizeof err) == CTTS_OK);
    const size_t hop = (size_t)q3t_frame_size(m), step_max = q3t_step_max_samples(m);
    CHECK(step_max == 4 * hop);
    ctts_gen_params p = q3t_default_gen_params(m);
    p.speaker = "ryan";
    p.temperature = 0;
    p.ignore_eos = 1;
    p.max_frames = 11;
    const char *text = "Pipelining must not change a single sample.";
    float *pcm[3] = {0};
    size_t n[3] = {0};
    for (int pipe = 0; pipe < 3; pipe++) {
        p.pipeline = pipe == 2 ? -1 : pipe;
        REQUIRE(q3t_stream_start(s, NULL, &p, text, err, sizeof err) == CTTS_OK);
        pcm[pipe] = malloc(32 * hop * sizeof(float));
        REQUIRE(pcm[pipe] != NULL);
        size_t k = 0, steps = 0;
        ctts_status rc;
        while ((rc = q3t_stream_step(s, pcm[pipe] + n[pipe], &k, err, sizeof err)) == CTTS_OK) {
            /* the decode schedule: 1, 1, 1, 1, 2, 2, 2, then 4 frames */
            const size_t want = steps < 4 ? hop : steps < 7 ? 2 * hop : step_max;
            CHECK(k == want || (k > 0 && k < want && k % hop == 0 && n[pipe] + k == 11 * hop));
            n[pipe] += k;
            steps++;
            if (n[pipe] > 20 * hop) break;
        }
        CHECK(rc == CTTS_DONE);
        CHECK_EQ_INT((int)(n[pipe] / hop), 11); /* 1 + 1 + 1 + 1 + 2 + 2 + 2 + 1 */
        CHECK_EQ_INT((int)steps, 8);
        CHECK_EQ_INT(q3t_stream_pipelined(s), pipe > 0);
    }
    CHECK(n[0] == n[1] && memcmp(pcm[0], pcm[1], n[0] * sizeof(float)) == 0);
    CHECK(n[0] == n[2] && memcmp(pcm[0], pcm[2], n[0] * sizeof(float)) == 0);
    /* A bad pipeline value is refused by name. */
    p.pipeline = 3;
    CHECK(q3t_stream_start(s, NULL, &p, text, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "pipeline");
    for (int i = 0; i < 3; i++) free(pcm[i]);
    q3t_stream_free(s);
    q3t_model_free(m);
}

TEST_MAIN(T(test_custom_voice_greedy), T(test_base_greedy), T(test_sampled_case),
          T(test_stream_errors), T(test_pipeline_and_frame_cap))
