/*
 * Qwen3-TTS through the public API (include/ctts.h) and the ctts command line:
 *  - ctts_model_load detects the family from config.json; info, describe,
 *    tokenize (plain and prepared = the whole assistant prompt);
 *  - ctts_synthesize of the 7 greedy CustomVoice golden cases: sample count
 *    exact, samples within 1e-3 of the official audio; streaming reads with
 *    small buffers give the same samples; word-by-word feeding is the same;
 *  - defaults from generation_config.json; parameter errors through the
 *    session error string;
 *  - broken model folders (missing / extra / misshaped tensor, tokenizer that
 *    disagrees with config.json, missing speech tokenizer) fail with one line
 *    naming the file, and never crash;
 *  - ctts generate / info / tokenize with the Qwen3-TTS options.
 * Golden data: $CTTS_GOLDEN or ../shared/golden (run from the repo root).
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctts.h"
#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"

#define TOL_AUDIO 1e-3

static char tmpdir[64];

static const char *model_dir(void) {
    static char buf[PATH_MAX + 32];
    char root[PATH_MAX];
    if (!realpath(test_golden_dir(), root)) snprintf(root, sizeof root, "%s", test_golden_dir());
    snprintf(buf, sizeof buf, "%s/qwen3tts-tiny/model", root);
    return buf;
}

static int golden_present(void) {
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/config.json", model_dir());
    return access(p, R_OK) == 0;
}

static json_value *manifest(void) {
    char p[1024], err[256];
    snprintf(p, sizeof p, "%s/qwen3tts-tiny/manifest.json", test_golden_dir());
    return json_parse_file(p, err, sizeof err);
}

static float *golden_audio(const char *id, int64_t *n) {
    char p[1024], err[256];
    snprintf(p, sizeof p, "%s/qwen3tts-tiny/cases/%s.safetensors", test_golden_dir(), id);
    st_file *st = NULL;
    if (st_open(p, &st, err, sizeof err) != CTTS_OK) return NULL;
    const ctts_tensor *t = st_find(st, "audio");
    float *a = NULL;
    if (t && t->dtype == CTTS_DT_F32) {
        a = malloc(t->nbytes ? t->nbytes : 1);
        if (a) memcpy(a, t->data, t->nbytes);
        *n = ctts_tensor_numel(t);
    }
    st_close(st);
    return a;
}

static ctts_gen_params case_params(const ctts_model *m, const json_value *mc) {
    ctts_gen_params p = ctts_gen_default_params(m);
    const json_value *kw = json_get(mc, "call_kwargs"), *v;
    if ((v = json_get(kw, "non_streaming_mode")) && v->type == JSON_BOOL)
        p.text_mode = v->boolean ? CTTS_TEXT_MODE_NON_STREAMING : CTTS_TEXT_MODE_STREAMING;
    if ((v = json_get(kw, "do_sample")) && v->type == JSON_BOOL && !v->boolean) p.temperature = 0;
    if ((v = json_get(kw, "repetition_penalty"))) p.repetition_penalty = (float)v->number;
    if ((v = json_get(kw, "max_new_tokens"))) p.max_new_tokens = (int)v->integer;
    p.speaker = json_get(mc, "speaker")->string;
    p.language = json_get(mc, "language")->string;
    return p;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* ---- public API ---- */

static void test_load_info(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    ctts_model *m = NULL;
    char err[512];
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = 1;
    ctts_status st = ctts_model_load(model_dir(), &mp, &m, err, sizeof err);
    if (st) fprintf(stderr, "    %s\n", err);
    REQUIRE(st == CTTS_OK);
    const ctts_model_info *info = ctts_model_get_info(m);
    CHECK(strcmp(info->family, "qwen3tts") == 0);
    CHECK_EQ_INT(info->chunks_text, 0); /* the whole text is one utterance */
    CHECK_EQ_INT(info->sample_rate, 24000);
    CHECK_NEAR(info->frame_rate, 12.5, 1e-6);
    CHECK(info->n_params > 4000000 && info->n_params < 6000000);
    CHECK_STR_CONTAINS(info->config_path, "qwen3tts-tiny/model/config.json");
    size_t need = ctts_model_describe(m, NULL, 0);
    char *d = malloc(need + 1);
    REQUIRE(d);
    CHECK_EQ_INT(ctts_model_describe(m, d, need + 1), need);
    CHECK_STR_CONTAINS(d, "family: qwen3tts");
    CHECK_STR_CONTAINS(d, "dylan (beijing_dialect)");
    free(d);
    /* the speakers of config.json, in file order */
    int n_spk = 0, ryan = -1;
    while (n_spk < 100 && ctts_model_speaker(m, n_spk)) {
        if (!strcmp(ctts_model_speaker(m, n_spk), "ryan")) ryan = n_spk;
        n_spk++;
    }
    CHECK_EQ_INT(n_spk, 9);
    CHECK(ryan >= 0 && ctts_model_speaker(m, -1) == NULL);
    CHECK(ctts_model_speaker(NULL, 0) == NULL);
    size_t n = 0;
    int32_t ids[64];
    REQUIRE(ctts_tokenize(m, "Hello world.", 0, ids, 64, &n, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(n, 3);
    REQUIRE(ctts_tokenize(m, "Hello world.", 1, ids, 64, &n, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(n, 11);
    CHECK(ids[0] == 151644 && ids[n - 3] == 151644 && ids[n - 5] == 151645);
    ctts_gen_params p = ctts_gen_default_params(m);
    CHECK_NEAR(p.temperature, 0.9, 1e-6);
    CHECK_EQ_INT(p.top_k, 50);
    CHECK_NEAR(p.top_p, 1.0, 0);
    CHECK_NEAR(p.repetition_penalty, 1.05, 1e-6);
    CHECK_EQ_INT(p.max_new_tokens, 8192);
    CHECK(p.speaker == NULL && p.text_mode == CTTS_TEXT_MODE_AUTO);
    ctts_voice *v = NULL;
    CHECK(ctts_voice_load(m, "none", &v, err, sizeof err) == CTTS_OK && v == NULL);
    CHECK(ctts_voice_load(m, "/tmp/some_voice.safetensors", &v, err, sizeof err) ==
          CTTS_E_UNSUPPORTED);
    CHECK_STR_CONTAINS(err, "only Qwen3-TTS base models clone voices");
    CHECK(v == NULL);
    ctts_model_free(m);
}

static void test_golden_synthesize(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    json_value *man = manifest();
    REQUIRE(man);
    ctts_model *m = NULL;
    ctts_session *s = NULL;
    char err[512];
    REQUIRE(ctts_model_load(model_dir(), NULL, &m, err, sizeof err) == CTTS_OK);
    REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
    const json_value *cases = json_get(man, "cases");
    int n_done = 0;
    for (size_t i = 0; cases && i < cases->length; i++) {
        const json_value *mc = &cases->items[i];
        ctts_gen_params p = case_params(m, mc);
        if (p.temperature > 0) continue; /* sampled: torch's draws are not reproducible */
        const char *id = json_get(mc, "id")->string;
        float *pcm = NULL;
        size_t n = 0;
        ctts_status st = ctts_synthesize(s, json_get(mc, "text")->string, NULL, &p, &pcm, &n);
        if (st != CTTS_OK) {
            TEST_FAIL_AT("%s: %s", id, ctts_session_error(s));
            continue;
        }
        int64_t ng = 0;
        float *ga = golden_audio(id, &ng);
        if (!ga || (int64_t)n != ng) {
            TEST_FAIL_AT("%s: %zu samples, golden %lld", id, n, (long long)ng);
        } else {
            double dd = max_diff(pcm, ga, n);
            if (!(dd <= TOL_AUDIO)) TEST_FAIL_AT("%s: audio differs by %g", id, dd);
        }
        const ctts_timings *t = ctts_session_timings(s);
        CHECK_EQ_INT(t->samples, (int64_t)n);
        CHECK_EQ_INT(t->frames, (int64_t)n / 1920);
        free(ga);
        ctts_pcm_free(pcm);
        n_done++;
    }
    CHECK_EQ_INT(n_done, 7);
    ctts_session_free(s);
    ctts_model_free(m);
    json_free(man);
}

/* Streaming with tiny read buffers and word-by-word text equals one-shot synthesis. */
static void test_stream_equals_oneshot(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    ctts_model *m = NULL;
    ctts_session *s = NULL;
    char err[512];
    REQUIRE(ctts_model_load(model_dir(), NULL, &m, err, sizeof err) == CTTS_OK);
    REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
    ctts_gen_params p = ctts_gen_default_params(m);
    p.speaker = "vivian";
    p.language = "english";
    p.seed = 7; /* sampled, seeded */
    p.max_new_tokens = 20;
    const char *text = "Streaming reads must equal one-shot synthesis.";
    float *ref = NULL;
    size_t n_ref = 0;
    REQUIRE(ctts_synthesize(s, text, NULL, &p, &ref, &n_ref) == CTTS_OK);
    REQUIRE(n_ref > 0);
    REQUIRE(ctts_stream_begin(s, NULL, &p) == CTTS_OK);
    const char *words[] = {"Streaming ", "reads ", "must ", "equal ", "one-shot ", "synthesis."};
    for (int i = 0; i < 6; i++) {
        REQUIRE(ctts_stream_feed_text(s, words[i]) == CTTS_OK);
        size_t got = 9;
        float tmp[4];
        CHECK(ctts_stream_read(s, tmp, 4, &got) == CTTS_OK && got == 0); /* waits for the text */
    }
    REQUIRE(ctts_stream_end_text(s) == CTTS_OK);
    float *buf = malloc(n_ref * sizeof *buf);
    REQUIRE(buf);
    size_t len = 0;
    ctts_status st;
    for (;;) {
        float small[333];
        size_t got = 0;
        st = ctts_stream_read(s, small, sizeof small / sizeof small[0], &got);
        if (st != CTTS_OK) break;
        if (len + got > n_ref) break;
        memcpy(buf + len, small, got * sizeof *small);
        len += got;
    }
    CHECK(st == CTTS_DONE);
    CHECK(len == n_ref && memcmp(buf, ref, n_ref * sizeof *buf) == 0);
    free(buf);
    ctts_pcm_free(ref);
    ctts_session_free(s);
    ctts_model_free(m);
}

/* ctts_stream_read_many over three sessions (different speakers, seeds,
 * lengths; one greedy) gives each the audio ctts_synthesize gives it alone,
 * with reads smaller than a step and sessions ending at different times. Two
 * sessions are pipelined (2 threads) and leave their pipeline to step with
 * the others: the first after reads alone (a decode in flight), the second
 * from its first read. */
static void test_read_many(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    ctts_model *m = NULL;
    char err[512];
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = 2;
    REQUIRE(ctts_model_load(model_dir(), &mp, &m, err, sizeof err) == CTTS_OK);
    enum { B = 3 };
    static const char *texts[B] = {"The first voice speaks here.", "A second, shorter one.",
                                   "And a third voice, greedy this time, says rather more."};
    static const char *speakers[B] = {"vivian", "ryan", "serena"};
    ctts_session *s[B];
    ctts_gen_params p[B];
    float *ref[B], *buf[B];
    size_t n_ref[B], len[B];
    ctts_status st[B];
    for (int i = 0; i < B; i++) {
        REQUIRE(ctts_session_new(m, &s[i]) == CTTS_OK);
        p[i] = ctts_gen_default_params(m);
        p[i].speaker = speakers[i];
        p[i].seed = 3 + (uint64_t)i;
        p[i].max_new_tokens = 9 + 6 * i;
        p[i].pipeline = i < 2 ? 1 : 0;
        if (i == 2) p[i].temperature = 0;
        REQUIRE(ctts_synthesize(s[i], texts[i], NULL, &p[i], &ref[i], &n_ref[i]) == CTTS_OK);
        REQUIRE(ctts_stream_begin(s[i], NULL, &p[i]) == CTTS_OK);
        REQUIRE(ctts_stream_feed_text(s[i], texts[i]) == CTTS_OK);
        REQUIRE(ctts_stream_end_text(s[i]) == CTTS_OK);
        buf[i] = malloc(n_ref[i] * sizeof(float) + 4096 * sizeof(float));
        REQUIRE(buf[i]);
        len[i] = 0;
        st[i] = CTTS_OK;
    }
    /* 6 reads of 1000 samples: a decode in flight and the next group filling
     * in the second slot, so leaving the pipeline moves it (checked) */
    for (int r = 0; r < 6 && st[0] == CTTS_OK; r++) {
        size_t got = 0;
        st[0] = ctts_stream_read(s[0], buf[0] + len[0], 1000, &got);
        len[0] += got;
    }
    for (int round = 0; round < 1000; round++) {
        ctts_session *live[B];
        float *out[B];
        int idx[B], k = 0;
        for (int i = 0; i < B; i++)
            if (st[i] == CTTS_OK && len[i] <= n_ref[i]) live[k] = s[i], out[k] = buf[i] + len[i], idx[k++] = i;
        if (!k) break;
        size_t got[B];
        ctts_status r[B];
        ctts_stream_read_many(live, k, out, 1000, got, r);
        for (int j = 0; j < k; j++) st[idx[j]] = r[j], len[idx[j]] += got[j];
    }
    for (int i = 0; i < B; i++) {
        CHECK(st[i] == CTTS_DONE);
        if (!(len[i] == n_ref[i] && !memcmp(buf[i], ref[i], n_ref[i] * sizeof(float))))
            TEST_FAIL_AT("session %d: %zu samples read together, %zu alone (or other samples)", i,
                         len[i], n_ref[i]);
        free(buf[i]);
        ctts_pcm_free(ref[i]);
        ctts_session_free(s[i]);
    }
    CHECK(n_ref[0] != n_ref[2]);
    ctts_model_free(m);
}

static void test_param_errors(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    ctts_model *m = NULL;
    ctts_session *s = NULL;
    char err[512];
    REQUIRE(ctts_model_load(model_dir(), NULL, &m, err, sizeof err) == CTTS_OK);
    REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
    ctts_gen_params p = ctts_gen_default_params(m);
    float *pcm = NULL;
    size_t n = 0;
    CHECK(ctts_synthesize(s, "hi", NULL, &p, &pcm, &n) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(ctts_session_error(s), "a speaker is required");
    p.speaker = "RYAN";
    p.top_p = 1.5f;
    CHECK(ctts_synthesize(s, "hi", NULL, &p, &pcm, &n) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(ctts_session_error(s), "top_p must be in (0, 1]");
    p.top_p = 1.0f;
    p.language = "martian";
    CHECK(ctts_synthesize(s, "hi", NULL, &p, &pcm, &n) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(ctts_session_error(s), "unknown language 'martian'");
    CHECK(pcm == NULL && n == 0);
    p.language = NULL;
    /* nothing to say: refused in both text modes */
    for (int mode = CTTS_TEXT_MODE_NON_STREAMING; mode <= CTTS_TEXT_MODE_STREAMING; mode++) {
        p.text_mode = (ctts_text_mode)mode;
        CHECK(ctts_synthesize(s, "", NULL, &p, &pcm, &n) == CTTS_E_INVALID_ARG);
        CHECK_STR_CONTAINS(ctts_session_error(s), "empty");
        CHECK(ctts_synthesize(s, " \n\t ", NULL, &p, &pcm, &n) == CTTS_E_INVALID_ARG);
        CHECK_STR_CONTAINS(ctts_session_error(s), "empty");
    }
    p.text_mode = CTTS_TEXT_MODE_AUTO;
    p.language = "Chinese";
    p.max_new_tokens = 4;
    REQUIRE(ctts_synthesize(s, "你好", NULL, &p, &pcm, &n) == CTTS_OK);
    CHECK(n <= 3 * 1920 && n % 1920 == 0);
    ctts_pcm_free(pcm);
    /* Cancel before the first read. */
    REQUIRE(ctts_stream_begin(s, NULL, &p) == CTTS_OK);
    REQUIRE(ctts_stream_feed_text(s, "cancel me") == CTTS_OK);
    REQUIRE(ctts_stream_end_text(s) == CTTS_OK);
    ctts_stream_cancel(s);
    float tmp[16];
    CHECK(ctts_stream_read(s, tmp, 16, &n) == CTTS_E_CANCELLED);
    ctts_session_free(s);
    ctts_model_free(m);
}

/* Weight conversion at load: F32 keeps the result, Q8_0 / Q4_0 run and stay close. */
static void test_weight_types(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char err[512];
    float *ref = NULL;
    size_t n_ref = 0;
    const ctts_weight_type types[] = {CTTS_WEIGHTS_KEEP, CTTS_WEIGHTS_F32, CTTS_WEIGHTS_BF16,
                                      CTTS_WEIGHTS_Q8_0, CTTS_WEIGHTS_Q4_0};
    for (int k = 0; k < 5; k++) {
        ctts_model_params mp = ctts_model_default_params();
        mp.weight_type = types[k];
        ctts_model *m = NULL;
        ctts_session *s = NULL;
        ctts_status st = ctts_model_load(model_dir(), &mp, &m, err, sizeof err);
        if (st) fprintf(stderr, "    %s\n", err);
        REQUIRE(st == CTTS_OK);
        REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
        ctts_gen_params p = ctts_gen_default_params(m);
        p.speaker = "serena";
        p.temperature = 0;
        p.max_new_tokens = 6;
        float *pcm = NULL;
        size_t n = 0;
        REQUIRE(ctts_synthesize(s, "Weights.", NULL, &p, &pcm, &n) == CTTS_OK);
        CHECK(n > 0 && n % 1920 == 0);
        double energy = 0;
        for (size_t i = 0; i < n; i++) {
            CHECK(isfinite(pcm[i]));
            energy += (double)pcm[i] * pcm[i];
        }
        CHECK(energy > 0);
        if (k == 0) {
            ref = pcm;
            n_ref = n;
            pcm = NULL;
        } else if (k <= 2) {
            /* BF16 -> F32 widening is exact: same codes, same audio up to summation order. */
            CHECK(n == n_ref && max_diff(pcm, ref, n) <= TOL_AUDIO);
        } else if (types[k] == CTTS_WEIGHTS_Q8_0) {
            /* ctts quantize: the GGUF folder loads without conversion and speaks
             * sample for sample like the conversion at load. */
            char out[128];
            snprintf(out, sizeof out, "%s/q8", tmpdir);
            CHECK(ctts_model_export_gguf(m, out, err, sizeof err) == CTTS_OK);
            ctts_model *g = NULL;
            ctts_session *gs = NULL;
            float *gpcm = NULL;
            size_t gn = 0;
            if (ctts_model_load(out, NULL, &g, err, sizeof err) != CTTS_OK) {
                TEST_FAIL_AT("load export: %s", err);
            } else if (ctts_session_new(g, &gs) == CTTS_OK &&
                       ctts_synthesize(gs, "Weights.", NULL, &p, &gpcm, &gn) == CTTS_OK) {
                CHECK(gn == n && memcmp(gpcm, pcm, n * sizeof *pcm) == 0);
            } else {
                TEST_FAIL_AT("%s", "synthesize from the export failed");
            }
            ctts_pcm_free(gpcm);
            ctts_session_free(gs);
            ctts_model_free(g);
            /* ... because its speech tokenizer holds the decoder matrices in BF16
             * already (official names and layout; the encoder as published). */
            char f[300];
            snprintf(f, sizeof f, "%s/speech_tokenizer/model.safetensors", out);
            st_file *sf = NULL;
            if (st_open(f, &sf, err, sizeof err) != CTTS_OK) {
                TEST_FAIL_AT("exported speech tokenizer: %s", err);
            } else {
                int n_dec = 0, n_bf16 = 0, n_enc_changed = 0;
                st_file *orig = NULL;
                snprintf(f, sizeof f, "%s/speech_tokenizer/model.safetensors", model_dir());
                REQUIRE(st_open(f, &orig, err, sizeof err) == CTTS_OK);
                for (int i = 0; i < st_count(sf); i++) {
                    const ctts_tensor *t = st_tensor(sf, i);
                    const ctts_tensor *o = st_find(orig, t->name);
                    CHECK(o != NULL);
                    if (!strncmp(t->name, "decoder.", 8) && t->ndim == 2 &&
                        !strstr(t->name, "codebook")) {
                        n_dec++;
                        n_bf16 += t->dtype == CTTS_DT_BF16;
                    } else if (o && strncmp(t->name, "decoder.", 8)) {
                        n_enc_changed += t->dtype != o->dtype || t->nbytes != o->nbytes ||
                                         memcmp(t->data, o->data, t->nbytes) != 0;
                    }
                }
                CHECK_EQ_INT(st_count(sf), st_count(orig));
                CHECK(n_dec > 0);
                CHECK_EQ_INT(n_bf16, n_dec);
                CHECK_EQ_INT(n_enc_changed, 0);
                st_close(orig);
                st_close(sf);
            }
            static const char *files[] = {"model.gguf", "config.json", "generation_config.json",
                                          "vocab.json", "merges.txt", "tokenizer_config.json",
                                          "preprocessor_config.json", "speech_tokenizer"};
            for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                snprintf(f, sizeof f, "%s/%s", out, files[i]);
                if (unlink(f) == 0 || strcmp(files[i], "speech_tokenizer")) continue;
                DIR *d = opendir(f); /* the exported folder: its files, then itself */
                for (struct dirent *e; d && (e = readdir(d));) {
                    char sub[600];
                    snprintf(sub, sizeof sub, "%s/%s", f, e->d_name);
                    if (e->d_name[0] != '.') unlink(sub);
                }
                if (d) closedir(d);
                CHECK(rmdir(f) == 0);
            }
            CHECK(rmdir(out) == 0);
        }
        ctts_pcm_free(pcm);
        ctts_session_free(s);
        ctts_model_free(m);
    }
    ctts_pcm_free(ref);
}

/* ---- Base model: voice cloning from the reference recording ---- */

static const char *base_dir(void) {
    static char buf[PATH_MAX + 32];
    char root[PATH_MAX];
    if (!realpath(test_golden_dir(), root)) snprintf(root, sizeof root, "%s", test_golden_dir());
    snprintf(buf, sizeof buf, "%s/qwen3tts-tiny/model-base", root);
    return buf;
}

/* The voice of a Base case: the golden recording, with its transcript beside it
 * for ICL. Returns the path of the audio file in tmpdir. */
static const char *clone_source(const json_value *mc, int with_text) {
    static char wav[256];
    char src[PATH_MAX], txt[300];
    char root[PATH_MAX];
    if (!realpath(test_golden_dir(), root)) snprintf(root, sizeof root, "%s", test_golden_dir());
    snprintf(src, sizeof src, "%.3900s/qwen3tts-tiny/voice/voice_ref_24k.wav", root);
    snprintf(wav, sizeof wav, "%s/ref_%s.wav", tmpdir, with_text ? "icl" : "xvec");
    unlink(wav);
    if (symlink(src, wav) != 0) perror("symlink");
    snprintf(txt, sizeof txt, "%s/ref_%s.txt", tmpdir, with_text ? "icl" : "xvec");
    unlink(txt);
    if (with_text) {
        FILE *f = fopen(txt, "wb");
        if (f) {
            fprintf(f, "%s\n", json_get(mc, "ref_text")->string);
            fclose(f);
        }
    }
    return wav;
}

static void test_base_clone(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    json_value *man = manifest();
    REQUIRE(man);
    ctts_model *m = NULL;
    ctts_session *s = NULL;
    char err[512];
    ctts_status st = ctts_model_load(base_dir(), NULL, &m, err, sizeof err);
    if (st) fprintf(stderr, "    %s\n", err);
    REQUIRE(st == CTTS_OK);
    CHECK(ctts_model_get_info(m)->voice_cloning == 1);
    REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
    const json_value *cases = json_get(man, "base_cases");
    int n_done = 0;
    for (size_t i = 0; cases && i < cases->length; i++) {
        const json_value *mc = &cases->items[i];
        const char *id = json_get(mc, "id")->string;
        const json_value *xo = json_get(mc, "x_vector_only_mode");
        int icl = !(xo && xo->type == JSON_BOOL && xo->boolean);
        ctts_voice *v = NULL;
        st = ctts_voice_load(m, clone_source(mc, icl), &v, err, sizeof err);
        if (st != CTTS_OK) {
            TEST_FAIL_AT("%s: voice: %s", id, err);
            continue;
        }
        ctts_gen_params p = ctts_gen_default_params(m);
        const json_value *kw = json_get(mc, "call_kwargs"), *x;
        if ((x = json_get(kw, "non_streaming_mode")) && x->type == JSON_BOOL)
            p.text_mode = x->boolean ? CTTS_TEXT_MODE_NON_STREAMING : CTTS_TEXT_MODE_STREAMING;
        p.temperature = 0;
        p.repetition_penalty = (float)json_get(kw, "repetition_penalty")->number;
        p.max_new_tokens = (int)json_get(kw, "max_new_tokens")->integer;
        p.language = json_get(mc, "language")->string;
        float *pcm = NULL;
        size_t n = 0;
        st = ctts_synthesize(s, json_get(mc, "text")->string, v, &p, &pcm, &n);
        int64_t ng = 0;
        float *ga = golden_audio(id, &ng);
        if (st != CTTS_OK) {
            TEST_FAIL_AT("%s: %s", id, ctts_session_error(s));
        } else if (!ga || (int64_t)n != ng) {
            TEST_FAIL_AT("%s: %zu samples, golden %lld", id, n, (long long)ng);
        } else {
            double dd = max_diff(pcm, ga, n);
            if (!(dd <= TOL_AUDIO)) TEST_FAIL_AT("%s: audio differs by %g", id, dd);
            n_done++;
        }
        /* The saved voice prompt gives the same samples. */
        char vp[300];
        snprintf(vp, sizeof vp, "%s/%s.safetensors", tmpdir, id);
        ctts_voice *v2 = NULL;
        float *pcm2 = NULL;
        size_t n2 = 0;
        CHECK(ctts_voice_save(v, vp, err, sizeof err) == CTTS_OK);
        CHECK(ctts_voice_load(m, vp, &v2, err, sizeof err) == CTTS_OK);
        if (v2 && pcm && ctts_synthesize(s, json_get(mc, "text")->string, v2, &p, &pcm2, &n2) == CTTS_OK)
            CHECK(n2 == n && memcmp(pcm, pcm2, n * sizeof *pcm) == 0);
        else
            TEST_FAIL_AT("%s: saved voice does not reload: %s", id, err);
        ctts_pcm_free(pcm2);
        ctts_voice_free(v2);
        free(ga);
        ctts_pcm_free(pcm);
        ctts_voice_free(v);
    }
    CHECK_EQ_INT(n_done, 3);
    /* Errors: no voice, a speaker, a prompt file with codes but no transcript. */
    ctts_gen_params p = ctts_gen_default_params(m);
    float *pcm = NULL;
    size_t n = 0;
    CHECK(ctts_synthesize(s, "hi", NULL, &p, &pcm, &n) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(ctts_session_error(s), "needs a voice to clone");
    ctts_voice *v = NULL;
    char bad[300];
    snprintf(bad, sizeof bad, "%s/bad_voice.safetensors", tmpdir);
    int32_t codes[16] = {0};
    float xv[32] = {0};
    ctts_tensor t[2] = {
        {.dtype = CTTS_DT_F32, .ndim = 1, .shape = {32}, .data = xv, .nbytes = sizeof xv,
         .name = "ref_spk_embedding"},
        {.dtype = CTTS_DT_I32, .ndim = 2, .shape = {1, 16}, .data = codes, .nbytes = sizeof codes,
         .name = "ref_code"},
    };
    REQUIRE(st_write(bad, t, 2, err, sizeof err) == CTTS_OK);
    CHECK(ctts_voice_load(m, bad, &v, err, sizeof err) == CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "needs the transcript");
    t[0].shape[0] = 31;
    t[0].nbytes = 31 * sizeof(float);
    REQUIRE(st_write(bad, t, 1, err, sizeof err) == CTTS_OK);
    CHECK(ctts_voice_load(m, bad, &v, err, sizeof err) == CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "'ref_spk_embedding' F32 with 32 values");
    snprintf(bad, sizeof bad, "%s/not_audio.wav", tmpdir);
    FILE *f = fopen(bad, "wb");
    REQUIRE(f);
    fputs("this is not audio", f);
    fclose(f);
    CHECK(ctts_voice_load(m, bad, &v, err, sizeof err) < 0);
    CHECK_STR_CONTAINS(err, "not_audio.wav");
    CHECK(v == NULL);
    ctts_session_free(s);
    ctts_model_free(m);
    json_free(man);
}

/* Text fed in pieces (cut anywhere, even inside a character) with reads in
 * between: the audio equals ctts_synthesize of the whole text, sample for
 * sample; *early: the samples read before end_text. */
static int feed_in_pieces(ctts_session *s, const ctts_voice *v, const ctts_gen_params *p,
                          const char *text, uint32_t seed, size_t *early) {
    float *ref = NULL;
    size_t n_ref = 0, len = 0, tl = strlen(text);
    *early = 0;
    if (ctts_synthesize(s, text, v, p, &ref, &n_ref) != CTTS_OK || n_ref == 0) return 0;
    float *buf = malloc((n_ref + 4096) * sizeof *buf);
    int ok = buf && ctts_stream_begin(s, v, p) == CTTS_OK;
    ctts_status st = CTTS_OK;
    uint32_t r = seed;
    for (size_t pos = 0; ok && pos <= tl && st == CTTS_OK;) {
        if (pos == tl) {
            ok = ctts_stream_end_text(s) == CTTS_OK;
            pos++;
        } else {
            r = r * 1664525u + 1013904223u;
            size_t k = 1 + (r >> 16) % 7;
            if (k > tl - pos) k = tl - pos;
            char piece[8];
            memcpy(piece, text + pos, k);
            piece[k] = 0;
            ok = ctts_stream_feed_text(s, piece) == CTTS_OK;
            pos += k;
        }
        /* read what the text so far allows (all of it after the end) */
        for (size_t got = 1; ok && st == CTTS_OK && len <= n_ref;) {
            st = ctts_stream_read(s, buf + len, 1000, &got);
            len += got;
            if (got == 0) break;
        }
        if (pos <= tl) *early = len; /* the text has not ended (the stream may have) */
    }
    ok = ok && st == CTTS_DONE && len == n_ref && memcmp(buf, ref, n_ref * sizeof *buf) == 0;
    free(buf);
    ctts_pcm_free(ref);
    return ok;
}

/* The streaming text mode starts speaking before the text ends (an LLM's
 * output fed as it is written) and says exactly what the whole text gives:
 * CustomVoice sampled and greedy, and Base in-context cloning (whose prefill
 * needs as many text rows as reference frames). */
static void test_incremental_text(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    ctts_model *m = NULL;
    ctts_session *s = NULL;
    char err[512];
    REQUIRE(ctts_model_load(model_dir(), NULL, &m, err, sizeof err) == CTTS_OK);
    REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
    ctts_gen_params p = ctts_gen_default_params(m);
    p.speaker = "ryan";
    p.text_mode = CTTS_TEXT_MODE_STREAMING;
    p.max_new_tokens = 200;
    p.ignore_eos = 1; /* random weights: no early EOS */
    const char *text = "Text that an LLM writes, word by word: caf\xc3\xa9, na\xc3\xafve, \xe4\xbd\xa0\xe5\xa5\xbd, "
                       "and numbers like 3.14 arrive in pieces, yet sound the same.";
    size_t early = 0;
    for (uint32_t seed = 1; seed <= 3; seed++) {
        p.seed = seed;
        p.temperature = seed == 3 ? 0.0f : 0.9f;
        p.pipeline = seed == 2 ? 1 : 0; /* the decoding thread too */
        if (!feed_in_pieces(s, NULL, &p, text, seed, &early))
            TEST_FAIL_AT("custom voice, seed %u: pieces give other audio: %s", (unsigned)seed,
                         ctts_session_error(s));
        CHECK(early >= 10 * 1920); /* ten frames or more before the text ended */
    }
    /* a stream that stops (at max_new_tokens, or the frame cap checked before
     * the next frame's text is needed) ends while text still comes */
    p.max_new_tokens = 7;
    REQUIRE(ctts_stream_begin(s, NULL, &p) == CTTS_OK);
    ctts_status rst = CTTS_OK;
    size_t total = 0;
    for (int i = 0; i < 100 && rst == CTTS_OK; i++) {
        REQUIRE(ctts_stream_feed_text(s, "more words ") == CTTS_OK);
        float buf[4000];
        size_t got = 1;
        while (rst == CTTS_OK && got) rst = ctts_stream_read(s, buf, 4000, &got), total += got;
    }
    CHECK(rst == CTTS_DONE);
    CHECK_EQ_INT((int)total, 6 * 1920); /* max_new_tokens - 1 frames */
    p.max_new_tokens = 200;
    p.max_frames = 6;
    REQUIRE(ctts_stream_begin(s, NULL, &p) == CTTS_OK);
    /* six certain text tokens, one per letter here (" h" may still grow): rows
     * for frames 0..5 exactly */
    REQUIRE(ctts_stream_feed_text(s, "a b c d f g h") == CTTS_OK);
    rst = CTTS_OK;
    total = 0;
    for (size_t got = 1; rst == CTTS_OK && got;) {
        float buf[4000];
        rst = ctts_stream_read(s, buf, 4000, &got);
        total += got;
    }
    CHECK(rst == CTTS_DONE);
    CHECK_EQ_INT((int)total, 6 * 1920);
    p.max_frames = 0;
    /* text past the talker's positions (each text token is one frame's input)
     * is refused as it arrives, not embedded */
    REQUIRE(ctts_stream_begin(s, NULL, &p) == CTTS_OK);
    ctts_status fst = CTTS_OK;
    for (int i = 0; i < 40000 && fst == CTTS_OK; i++) fst = ctts_stream_feed_text(s, "word ");
    if (fst == CTTS_OK) fst = ctts_stream_end_text(s);
    CHECK(fst == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(ctts_session_error(s), "text too long");
    ctts_session_free(s);
    ctts_model_free(m);

    json_value *man = manifest();
    REQUIRE(man);
    REQUIRE(ctts_model_load(base_dir(), NULL, &m, err, sizeof err) == CTTS_OK);
    REQUIRE(ctts_session_new(m, &s) == CTTS_OK);
    const json_value *cases = json_get(man, "base_cases");
    int n_icl = 0;
    for (size_t i = 0; cases && i < cases->length; i++) {
        const json_value *mc = &cases->items[i], *xo = json_get(mc, "x_vector_only_mode");
        int icl = !(xo && xo->type == JSON_BOOL && xo->boolean);
        ctts_voice *v = NULL;
        REQUIRE(ctts_voice_load(m, clone_source(mc, icl), &v, err, sizeof err) == CTTS_OK);
        p = ctts_gen_default_params(m);
        p.text_mode = CTTS_TEXT_MODE_STREAMING;
        p.seed = 5;
        p.max_new_tokens = 40;
        p.ignore_eos = 1;
        /* the text twice: in-context cloning wants a text row per reference frame first */
        char twice[1024];
        snprintf(twice, sizeof twice, "%s %s", text, text);
        if (!feed_in_pieces(s, v, &p, twice, 11 + (uint32_t)i, &early))
            TEST_FAIL_AT("base case %zu: pieces give other audio: %s", i, ctts_session_error(s));
        if (early == 0) TEST_FAIL_AT("base case %zu: no audio before the text ended", i);
        n_icl += icl;
        ctts_voice_free(v);
    }
    CHECK(n_icl >= 1);
    ctts_session_free(s);
    ctts_model_free(m);
    json_free(man);
}

/* ---- broken folders ---- */

static void link_file(const char *dst_dir, const char *rel) {
    char src[PATH_MAX + 128], dst[1200];
    snprintf(src, sizeof src, "%s/%s", model_dir(), rel);
    snprintf(dst, sizeof dst, "%s/%s", dst_dir, rel);
    unlink(dst);
    if (symlink(src, dst) != 0) perror("symlink");
}

/* A folder of symlinks to the tiny model. */
static const char *make_copy(const char *name) {
    static char dir[256];
    char sub[300];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    mkdir(dir, 0755);
    snprintf(sub, sizeof sub, "%s/speech_tokenizer", dir);
    mkdir(sub, 0755);
    const char *files[] = {"config.json", "generation_config.json", "vocab.json", "merges.txt",
                           "tokenizer_config.json", "model.safetensors",
                           "speech_tokenizer/config.json", "speech_tokenizer/model.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) link_file(dir, files[i]);
    return dir;
}

/* Rewrites dir/model.safetensors from the tiny one: drop (or reshape) a tensor,
 * or add one. */
static void write_weights(const char *dir, const char *drop, const char *reshape,
                          const char *add) {
    char src[PATH_MAX + 64], dst[1200], err[256];
    snprintf(src, sizeof src, "%s/model.safetensors", model_dir());
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    st_file *st = NULL;
    if (st_open(src, &st, err, sizeof err) != CTTS_OK) return;
    int n = st_count(st);
    ctts_tensor *ts = calloc((size_t)n + 1, sizeof *ts);
    int k = 0;
    static float extra[4];
    for (int i = 0; i < n; i++) {
        const ctts_tensor *t = st_tensor(st, i);
        if (drop && strcmp(t->name, drop) == 0) continue;
        ts[k] = *t;
        if (reshape && strcmp(t->name, reshape) == 0 && t->ndim == 2) {
            ts[k].shape[0] = t->shape[1];
            ts[k].shape[1] = t->shape[0];
        }
        k++;
    }
    if (add) {
        ts[k] = (ctts_tensor){.dtype = CTTS_DT_F32, .ndim = 1, .shape = {4}, .data = extra,
                              .nbytes = sizeof extra, .name = add};
        k++;
    }
    unlink(dst);
    if (st_write(dst, ts, k, err, sizeof err) != CTTS_OK) fprintf(stderr, "    %s\n", err);
    free(ts);
    st_close(st);
}

static void expect_load_error(const char *dir, ctts_status want, const char *needle) {
    ctts_model *m = NULL;
    char err[1024] = "";
    ctts_status st = ctts_model_load(dir, NULL, &m, err, sizeof err);
    if (st != want || !strstr(err, needle) || strchr(err, '\n') || m)
        TEST_FAIL_AT("%s: got %d '%s', want %d with '%s'", dir, st, err, want, needle);
    ctts_model_free(m);
}

static void test_broken_folders(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    const char *d = make_copy("drop");
    write_weights(d, "talker.codec_head.weight", NULL, NULL);
    expect_load_error(d, CTTS_E_NOT_FOUND, "missing tensor 'talker.codec_head.weight'");
    d = make_copy("extra");
    write_weights(d, NULL, NULL, "talker.surprise.weight");
    expect_load_error(d, CTTS_E_FORMAT, "model.safetensors: unexpected tensor "
                                        "'talker.surprise.weight'");
    d = make_copy("shape");
    write_weights(d, NULL, "talker.model.layers.0.mlp.up_proj.weight", NULL);
    expect_load_error(d, CTTS_E_FORMAT, "talker.model.layers.0.mlp.up_proj.weight");
    d = make_copy("nocodec");
    char p[512];
    snprintf(p, sizeof p, "%s/speech_tokenizer/model.safetensors", d);
    unlink(p);
    expect_load_error(d, CTTS_E_IO, "speech_tokenizer/model.safetensors");
    d = make_copy("tokcfg");
    snprintf(p, sizeof p, "%s/tokenizer_config.json", d);
    unlink(p);
    FILE *f = fopen(p, "wb");
    REQUIRE(f);
    fputs("{\"added_tokens_decoder\": {\"151644\": {\"content\": \"<|im_start|>\"}}}", f);
    fclose(f);
    expect_load_error(d, CTTS_E_FORMAT, "token <|im_end|> has id -1, config.json says 151645");
    d = make_copy("badjson");
    snprintf(p, sizeof p, "%s/config.json", d);
    unlink(p);
    f = fopen(p, "wb");
    REQUIRE(f);
    fputs("{\"tts_model_type\": \"custom_voice\", \"tts_pad_token_id\": 1, \"tts_bos_token_id\": 2, "
          "\"tts_eos_token_id\": 3, \"talker_config\": 3}", f);
    fclose(f);
    expect_load_error(d, CTTS_E_FORMAT, "config.json: 'talker_config' must be an object");
    d = make_copy("vocab");
    snprintf(p, sizeof p, "%s/vocab.json", d);
    unlink(p);
    f = fopen(p, "wb");
    REQUIRE(f);
    fputs("{\"a\": 0, \"b\": ", f);
    fclose(f);
    expect_load_error(d, CTTS_E_FORMAT, "vocab.json");
}

/* ---- command line ---- */

static char err_text[1 << 14], out_text[1 << 14];

static void read_all(const char *path, char *dst, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(dst, 1, cap - 1, f) : 0;
    dst[n] = 0;
    if (f) fclose(f);
}

static int run_ctts(const char *first, ...) {
    const char *argv[48];
    int n = 0;
    argv[n++] = test_ctts_bin();
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 47; a = va_arg(ap, const char *)) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char outp[128], errp[128];
    snprintf(outp, sizeof outp, "%s/stdout", tmpdir);
    snprintf(errp, sizeof errp, "%s/stderr", tmpdir);
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    read_all(outp, out_text, sizeof out_text);
    read_all(errp, err_text, sizeof err_text);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

static void test_cli(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    if (access(test_ctts_bin(), X_OK) != 0) SKIP("no ctts binary");
    char wav[256];
    snprintf(wav, sizeof wav, "%s/out.wav", tmpdir);
    int rc = run_ctts("generate", "--model", model_dir(), "--speaker", "Aiden", "--language",
                      "English", "--temperature", "0", "--top-k", "10", "--top-p", "0.9",
                      "--repetition-penalty", "1.1", "--max-new-tokens", "6", "--text-mode",
                      "streaming", "--text", "Command line test.", "--output", wav, NULL);
    CHECK_EQ_INT(rc, 0);
    struct stat sb;
    CHECK(stat(wav, &sb) == 0 && sb.st_size > 44 && (sb.st_size - 44) % (1920 * 2) == 0 &&
          sb.st_size <= 44 + 5 * 1920 * 2);
    rc = run_ctts("generate", "--model", model_dir(), "--text", "x", "--output", wav, NULL);
    CHECK_EQ_INT(rc, 1);
    CHECK_STR_CONTAINS(err_text, "ctts: error: a speaker is required for this model");
    rc = run_ctts("generate", "--model", model_dir(), "--speaker", "ryan", "--top-p", "2",
                  "--text", "x", "--output", wav, NULL);
    CHECK_EQ_INT(rc, 2);
    CHECK_STR_CONTAINS(err_text, "--top-p needs a number in (0, 1]");
    rc = run_ctts("generate", "--model", model_dir(), "--speaker", "ryan", "--text-mode",
                  "sideways", "--text", "x", "--output", wav, NULL);
    CHECK_EQ_INT(rc, 2);
    CHECK_STR_CONTAINS(err_text, "--text-mode must be auto, streaming or non-streaming");
    rc = run_ctts("tokenize", "--model", model_dir(), "--text", "Hello world.", NULL);
    CHECK_EQ_INT(rc, 0);
    int spaces = 0;
    for (const char *c = out_text; *c; c++) spaces += *c == ' ';
    CHECK(out_text[0] >= '0' && out_text[0] <= '9' && spaces == 2); /* 3 ids, as the API gives */
    rc = run_ctts("info", "--model", model_dir(), NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK_STR_CONTAINS(out_text, "family: qwen3tts");
}

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ctts_q3tapi_XXXXXX");
    if (!mkdtemp(tmpdir)) perror("mkdtemp");
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
}

int main(int argc, char **argv) {
    static const test_entry tests[] = {
        T(test_load_info), T(test_golden_synthesize), T(test_stream_equals_oneshot), T(test_read_many),
        T(test_param_errors), T(test_weight_types), T(test_base_clone), T(test_incremental_text),
        T(test_broken_folders), T(test_cli),
    };
    setup();
    int rc = test_main(argc, argv, tests, (int)(sizeof tests / sizeof tests[0]));
    teardown();
    return rc;
}
