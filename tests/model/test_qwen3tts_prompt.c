/*
 * Qwen3-TTS front end against the official goldens (qwen3tts-tiny):
 *  - config.json / generation_config.json / speech_tokenizer/config.json
 *    parsing, and strict errors naming the file and field;
 *  - codec prefix: language ids, the dialect rule, unknown names;
 *  - for every generation case (8 CustomVoice, 3 Base): prompt ids (and the
 *    ICL reference ids) exact, prefill / trailing lengths exact, the
 *    embedded prefill rows, trailing rows and pad row within 1e-4 of the
 *    official prefill_embeds / trailing_text_hidden / tts_pad_embed;
 *  - prompt slicing edge cases (empty text, streaming with a short prompt).
 * Golden data: $CTTS_GOLDEN or ../shared/golden (run from the repo root).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/qwen3tts/q3t_config.h"
#include "models/qwen3tts/q3t_prompt.h"
#include "models/qwen3tts/qwen3tts.h"

#define TOL_SINGLE 1e-4

static const char *model_dir(int base, char *buf, size_t len) {
    snprintf(buf, len, "%s/qwen3tts-tiny/%s", test_golden_dir(), base ? "model-base" : "model");
    return buf;
}

static int golden_present(void) {
    char p[1024];
    snprintf(p, sizeof p, "%s/qwen3tts-tiny/manifest.json", test_golden_dir());
    return access(p, R_OK) == 0;
}

static json_value *load_manifest(void) {
    char p[1024], err[256];
    snprintf(p, sizeof p, "%s/qwen3tts-tiny/manifest.json", test_golden_dir());
    json_value *v = json_parse_file(p, err, sizeof err);
    if (!v) fprintf(stderr, "    %s\n", err);
    return v;
}

/* A golden tensor copied out (the data section may be unaligned). */
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

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

static int ids_equal(const json_value *arr, const int32_t *ids, size_t n) {
    if (!arr || arr->type != JSON_ARRAY || arr->length != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (arr->items[i].integer != ids[i]) return 0;
    return 1;
}

/* ---- config ---- */

static void test_config_tiny(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char dir[1024], err[512];
    q3t_config c;
    ctts_status st = q3t_config_load(model_dir(0, dir, sizeof dir), &c, err, sizeof err);
    if (st) fprintf(stderr, "    %s\n", err);
    REQUIRE(st == CTTS_OK);
    CHECK(c.model_type == Q3T_TYPE_CUSTOM_VOICE);
    CHECK(strcmp(c.model_size, "0b6") == 0);
    CHECK_EQ_INT(c.tts_pad_token_id, 151671);
    CHECK_EQ_INT(c.talker.dec.hidden_size, 32);
    CHECK_EQ_INT(c.talker.dec.num_hidden_layers, 2);
    CHECK_EQ_INT(c.talker.dec.num_key_value_heads, 2);
    CHECK_EQ_INT(c.talker.dec.head_dim, 16);
    CHECK_EQ_INT(c.talker.dec.vocab_size, 3072);
    CHECK_NEAR(c.talker.dec.rope_theta, 1e6, 0);
    CHECK_EQ_INT(c.talker.mrope_section[0], 4);
    CHECK(c.talker.mrope_interleaved);
    CHECK_EQ_INT(c.talker.text_hidden_size, 16);
    CHECK_EQ_INT(c.talker.codec_eos_token_id, 2150);
    CHECK_EQ_INT(c.talker.n_speakers, 9);
    CHECK_EQ_INT(c.talker.n_languages, 12);
    const q3t_speaker *eric = q3t_config_speaker(&c, "ERIC");
    REQUIRE(eric);
    CHECK_EQ_INT(eric->id, 2875);
    CHECK(strcmp(eric->dialect, "sichuan_dialect") == 0);
    CHECK(q3t_config_speaker(&c, "ryan")->dialect[0] == 0);
    CHECK_EQ_INT(q3t_config_language_id(&c, "German"), 2053);
    CHECK_EQ_INT(q3t_config_language_id(&c, "auto"), -1);
    CHECK_EQ_INT(q3t_config_language_id(&c, "beijing_dialect"), -2);
    CHECK_EQ_INT(q3t_config_language_id(&c, "klingon"), -2);
    CHECK_EQ_INT(c.talker.cp.num_hidden_layers, 2);
    CHECK_EQ_INT(c.talker.cp.vocab_size, 2048);
    CHECK(c.gen.do_sample == 1);
    CHECK_NEAR(c.gen.temperature, 0.9, 1e-7);
    CHECK_EQ_INT(c.gen.top_k, 50);
    CHECK_EQ_INT(c.gen.max_new_tokens, 8192);
    CHECK_EQ_INT(c.codec.decode_upsample_rate, 1920);
    CHECK_EQ_INT(c.codec.dec.sliding_window, 8);
    CHECK_EQ_INT(c.codec.dec.n_upsample_rates, 4);
    CHECK(c.codec.enc.present);
    CHECK_EQ_INT(c.codec.enc.num_quantizers, 20);
    CHECK(!c.spk.present);

    st = q3t_config_load(model_dir(1, dir, sizeof dir), &c, err, sizeof err);
    REQUIRE(st == CTTS_OK);
    CHECK(c.model_type == Q3T_TYPE_BASE);
    CHECK(c.spk.present);
    CHECK_EQ_INT(c.spk.enc_dim, 32);
    CHECK_EQ_INT(c.spk.enc_channels[4], 48);
    CHECK_EQ_INT(c.spk.enc_res2net_scale, 4);
    CHECK_EQ_INT(c.im_start_token_id, 1320);
    CHECK_EQ_INT(c.talker.n_speakers, 0);
    CHECK(q3t_config_detect(dir));
    CHECK(!q3t_config_detect("/nonexistent"));
}

/* Replaces the first occurrence of from by to in the tiny config.json text and
 * parses it; returns the status, message in err. */
static ctts_status parse_edited(const char *from, const char *to, char *err, size_t err_len) {
    char dir[1024], p[1100];
    snprintf(p, sizeof p, "%s/config.json", model_dir(0, dir, sizeof dir));
    FILE *f = fopen(p, "rb");
    if (!f) return CTTS_E_IO;
    static char text[1 << 16], out[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *at = strstr(text, from);
    if (!at) {
        snprintf(err, err_len, "test bug: '%s' not in config.json", from);
        return CTTS_E_INVALID_ARG;
    }
    size_t k = (size_t)(at - text);
    memcpy(out, text, k);
    strcpy(out + k, to);
    strcat(out, at + strlen(from));
    q3t_config c;
    return q3t_config_parse_main(out, strlen(out), "config.json", &c, err, err_len);
}

static void expect_bad(const char *from, const char *to, ctts_status want, const char *needle) {
    char err[512] = "";
    ctts_status st = parse_edited(from, to, err, sizeof err);
    if (st != want || !strstr(err, needle))
        TEST_FAIL_AT("edit '%s' -> '%s': got %d '%s', want %d with '%s'", from, to, st, err, want,
                     needle);
}

static void test_config_errors(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char err[512];
    expect_bad("\"tts_model_type\": \"custom_voice\"", "\"tts_model_type\": \"karaoke\"",
               CTTS_E_UNSUPPORTED, "'tts_model_type' \"karaoke\"");
    expect_bad("\"tts_model_type\": \"custom_voice\",", "", CTTS_E_FORMAT,
               "missing field 'tts_model_type'");
    expect_bad("\"tts_pad_token_id\": 151671", "\"tts_pad_token_id\": \"x\"", CTTS_E_FORMAT,
               "'tts_pad_token_id' must be an integer");
    expect_bad("\"num_key_value_heads\": 2,\n    \"head_dim\": 16,\n    \"initializer_range\": 0.02,\n    \"max_position_embeddings\": 32768",
               "\"num_key_value_heads\": 3,\n    \"head_dim\": 16,\n    \"initializer_range\": 0.02,\n    \"max_position_embeddings\": 32768",
               CTTS_E_FORMAT, "'talker_config.num_attention_heads' (4) must be a multiple");
    expect_bad("\"text_vocab_size\": 151936,", "", CTTS_E_FORMAT,
               "missing field 'talker_config.text_vocab_size'");
    expect_bad("\"codec_eos_token_id\": 2150", "\"codec_eos_token_id\": 5000", CTTS_E_FORMAT,
               "'talker_config.codec_eos_token_id' must be an integer in [0, 3071]");
    expect_bad("\"eric\": \"sichuan_dialect\"", "\"eric\": \"atlantis_dialect\"", CTTS_E_FORMAT,
               "spk_is_dialect.eric' = \"atlantis_dialect\" is not in codec_language_id");
    expect_bad("\"eric\": 2875", "\"eric\": -1", CTTS_E_FORMAT, "'talker_config.spk_id.eric'");
    expect_bad("\"mrope_section\": [\n        4,", "\"mrope_section\": [\n        5,", CTTS_E_FORMAT,
               "must sum to head_dim/2 = 8");
    expect_bad("\"hidden_act\": \"silu\",\n    \"hidden_size\": 32,\n    \"intermediate_size\": 64,\n    \"num_hidden_layers\": 2,\n    \"num_attention_heads\": 4,\n    \"num_key_value_heads\": 2,\n    \"head_dim\": 16,\n    \"initializer_range\": 0.02,\n    \"max_position_embeddings\": 32768",
               "\"hidden_act\": \"gelu\",\n    \"hidden_size\": 32,\n    \"intermediate_size\": 64,\n    \"num_hidden_layers\": 2,\n    \"num_attention_heads\": 4,\n    \"num_key_value_heads\": 2,\n    \"head_dim\": 16,\n    \"initializer_range\": 0.02,\n    \"max_position_embeddings\": 32768",
               CTTS_E_UNSUPPORTED, "'talker_config.hidden_act' must be \"silu\"");
    expect_bad("\"spk_id\": {", "\"spk_idx\": {", CTTS_E_FORMAT, "needs 'talker_config.spk_id'");
    q3t_config c;
    CHECK(q3t_config_parse_main("{", 1, "cfg.json", &c, err, sizeof err) == CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "cfg.json: line 1");
    CHECK(q3t_config_parse_main("[]", 2, "cfg.json", &c, err, sizeof err) == CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "cfg.json: '(top level)' must be an object");

    /* Folder-level: the speech tokenizer config is required. */
    char tmp[] = "/tmp/ctts_q3tcfg_XXXXXX", p[1200], dir[1024], cmd[2600];
    REQUIRE(mkdtemp(tmp));
    snprintf(cmd, sizeof cmd, "cp %s/config.json %s/", model_dir(0, dir, sizeof dir), tmp);
    REQUIRE(system(cmd) == 0);
    CHECK(q3t_config_load(tmp, &c, err, sizeof err) == CTTS_E_IO);
    CHECK_STR_CONTAINS(err, "speech_tokenizer/config.json: missing");
    snprintf(p, sizeof p, "%s/generation_config.json", tmp);
    FILE *f = fopen(p, "wb");
    REQUIRE(f);
    fputs("{\"do_sample\": true, \"top_k\": -3}", f);
    fclose(f);
    CHECK(q3t_config_load(tmp, &c, err, sizeof err) == CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "generation_config.json: 'top_k' must be an integer");
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0);
    CHECK(q3t_config_load("/nonexistent/q3t", &c, err, sizeof err) == CTTS_E_IO);
    CHECK_STR_CONTAINS(err, "/nonexistent/q3t/config.json: cannot open");
}

/* ---- codec prefix ---- */

static void test_codec_prefix(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char dir[1024], err[512];
    q3t_config c;
    REQUIRE(q3t_config_load(model_dir(0, dir, sizeof dir), &c, err, sizeof err) == CTTS_OK);
    q3t_codec_prefix p;
    REQUIRE(q3t_prompt_codec_prefix(&c, "Ryan", 0, "English", &p, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(p.n_ids, 4);
    CHECK(p.ids[0] == 2154 && p.ids[1] == 2156 && p.ids[2] == 2050 && p.ids[3] == 2157);
    CHECK(p.speaker_src == Q3T_SRC_CODEC && p.speaker_id == 3061);
    REQUIRE(q3t_prompt_codec_prefix(&c, "ryan", 0, NULL, &p, err, sizeof err) == CTTS_OK);
    CHECK(p.n_ids == 3 && p.ids[0] == 2155 && p.ids[1] == 2156 && p.ids[2] == 2157);
    CHECK_EQ_INT(p.language_id, -1);
    /* Dialect speakers: Chinese and auto become the dialect, other languages stay. */
    REQUIRE(q3t_prompt_codec_prefix(&c, "Dylan", 0, "Chinese", &p, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(p.language_id, 2074);
    REQUIRE(q3t_prompt_codec_prefix(&c, "Dylan", 0, "AUTO", &p, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(p.language_id, 2074);
    CHECK_EQ_INT(p.n_ids, 4);
    REQUIRE(q3t_prompt_codec_prefix(&c, "Dylan", 0, "english", &p, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(p.language_id, 2050);
    REQUIRE(q3t_prompt_codec_prefix(&c, "eric", 0, "", &p, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(p.language_id, 2062);
    REQUIRE(q3t_prompt_codec_prefix(&c, NULL, 1, "English", &p, err, sizeof err) == CTTS_OK);
    CHECK(p.speaker_src == Q3T_SRC_SPEAKER);
    REQUIRE(q3t_prompt_codec_prefix(&c, NULL, 0, "English", &p, err, sizeof err) == CTTS_OK);
    CHECK(p.speaker_src == Q3T_SRC_NONE);
    CHECK(q3t_prompt_codec_prefix(&c, "nobody", 0, NULL, &p, err, sizeof err) ==
          CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "unknown speaker 'nobody' (this model has: ");
    CHECK_STR_CONTAINS(err, "ono_anna");
    CHECK(q3t_prompt_codec_prefix(&c, "ryan", 0, "sichuan_dialect", &p, err, sizeof err) ==
          CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "unknown language 'sichuan_dialect' (one of: auto, chinese");
}

/* ---- every golden case ---- */

typedef struct {
    q3t_model *m;
    q3t_stream *s;
} fixture;

static int fixture_open(fixture *f, int base) {
    char dir[1024], err[512];
    memset(f, 0, sizeof *f);
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = 1;
    if (q3t_model_load(model_dir(base, dir, sizeof dir), &mp, &f->m, err, sizeof err) != CTTS_OK ||
        q3t_stream_new(f->m, &f->s, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "    %s\n", err);
        q3t_model_free(f->m);
        return -1;
    }
    return 0;
}

static void fixture_close(fixture *f) {
    q3t_stream_free(f->s);
    q3t_model_free(f->m);
}

/* Builds the voice of a Base case from its golden x-vector and reference codes. */
static q3t_voice *case_voice(const q3t_model *m, st_file *st, const json_value *mc) {
    int64_t nx = 0, nr = 0;
    float *x = golden_array(st, "ref_spk_embedding", CTTS_DT_F32, &nx);
    int32_t *rc = golden_array(st, "ref_code", CTTS_DT_I32, &nr);
    const json_value *xo = json_get(mc, "x_vector_only_mode");
    int icl = !(xo && xo->type == JSON_BOOL && xo->boolean);
    const json_value *rt = json_get(mc, "ref_text");
    q3t_voice *v = NULL;
    char err[256];
    if (x && (!icl || rc)) {
        if (q3t_voice_new(m, x, icl ? rc : NULL, icl ? (int)(nr / 16) : 0,
                          icl && rt ? rt->string : NULL, &v, err, sizeof err) != CTTS_OK)
            fprintf(stderr, "    %s\n", err);
    }
    free(x);
    free(rc);
    return v;
}

/* Starts the stream as the case's official call did (greedy settings are irrelevant here). */
static ctts_status start_case(fixture *f, const json_value *mc, const q3t_voice *v, char *err,
                              size_t err_len) {
    ctts_gen_params p = q3t_default_gen_params(f->m);
    const json_value *kw = json_get(mc, "call_kwargs");
    const json_value *ns = json_get(kw, "non_streaming_mode");
    if (ns && ns->type == JSON_BOOL)
        p.text_mode = ns->boolean ? CTTS_TEXT_MODE_NON_STREAMING : CTTS_TEXT_MODE_STREAMING;
    const json_value *spk = json_get(mc, "speaker");
    p.speaker = spk && spk->type == JSON_STRING ? spk->string : NULL;
    p.language = json_get(mc, "language")->string;
    return q3t_stream_start(f->s, v, &p, json_get(mc, "text")->string, err, err_len);
}

static void check_cases(int base) {
    json_value *man = load_manifest();
    REQUIRE(man);
    fixture f;
    REQUIRE(fixture_open(&f, base) == 0);
    const json_value *cases = json_get(man, base ? "base_cases" : "cases");
    REQUIRE(cases && cases->length >= 3);
    const int D = q3t_model_config(f.m)->talker.dec.hidden_size;
    int n_checked = 0;
    for (size_t i = 0; i < cases->length; i++) {
        const json_value *mc = &cases->items[i];
        const char *id = json_get(mc, "id")->string;
        st_file *st = open_case(id);
        REQUIRE(st);
        char err[512];
        q3t_voice *v = base ? case_voice(f.m, st, mc) : NULL;
        if (base && !v) TEST_FAIL_AT("%s: cannot build the voice", id);
        ctts_status rc = start_case(&f, mc, v, err, sizeof err);
        if (rc != CTTS_OK) {
            TEST_FAIL_AT("%s: start failed: %s", id, err);
            q3t_voice_free(v);
            st_close(st);
            continue;
        }
        size_t n_ids = 0;
        const int32_t *ids = q3t_stream_prompt_ids(f.s, &n_ids);
        if (!ids_equal(json_get(mc, "input_ids"), ids, n_ids))
            TEST_FAIL_AT("%s: prompt ids differ (%zu ids)", id, n_ids);
        const json_value *rt = json_get(mc, "ref_text");
        if (base && rt && v && v->n_ref_frames) {
            int32_t *rids = NULL;
            size_t nr = 0;
            REQUIRE(q3t_prompt_ref_ids(q3t_model_tokenizer(f.m), rt->string, rt->length, &rids,
                                       &nr, err, sizeof err) == CTTS_OK);
            if (!ids_equal(json_get(mc, "ref_ids"), rids, nr))
                TEST_FAIL_AT("%s: reference ids differ", id);
            free(rids);
        }
        int n_prefill = 0, n_trailing = 0;
        const float *rows = q3t_stream_rows(f.s, &n_prefill, &n_trailing);
        CHECK_EQ_INT(n_prefill, json_get(mc, "prefill_length")->integer);
        CHECK_EQ_INT(n_trailing, json_get(mc, "trailing_text_length")->integer);
        int64_t np = 0, nt = 0, npad = 0;
        float *gp = golden_array(st, "prefill_embeds", CTTS_DT_F32, &np);
        float *gt = golden_array(st, "trailing_text_hidden", CTTS_DT_F32, &nt);
        float *gpad = golden_array(st, "tts_pad_embed", CTTS_DT_F32, &npad);
        REQUIRE(gp && gt && gpad);
        if (np == (int64_t)n_prefill * D) {
            double d = max_diff(rows, gp, (size_t)np);
            if (!(d <= TOL_SINGLE)) TEST_FAIL_AT("%s: prefill rows differ by %g", id, d);
        } else {
            TEST_FAIL_AT("%s: golden prefill has %lld rows", id, (long long)(np / D));
        }
        if (nt == (int64_t)n_trailing * D) {
            double d = max_diff(rows + (size_t)n_prefill * D, gt, (size_t)nt);
            if (!(d <= TOL_SINGLE)) TEST_FAIL_AT("%s: trailing rows differ by %g", id, d);
        }
        double dp = max_diff(q3t_stream_pad_row(f.s), gpad, (size_t)D);
        if (!(dp <= TOL_SINGLE)) TEST_FAIL_AT("%s: pad row differs by %g", id, dp);
        free(gp);
        free(gt);
        free(gpad);
        q3t_voice_free(v);
        st_close(st);
        n_checked++;
    }
    CHECK_EQ_INT(n_checked, (long long)cases->length);
    fixture_close(&f);
    json_free(man);
}

static void test_custom_voice_cases(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    check_cases(0);
}

static void test_base_cases(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    check_cases(1);
}

/* ---- layout edge cases (no weights) ---- */

static void test_layout_edges(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char dir[1024], err[512];
    q3t_config c;
    REQUIRE(q3t_config_load(model_dir(0, dir, sizeof dir), &c, err, sizeof err) == CTTS_OK);
    bpe_tokenizer *tok = NULL;
    REQUIRE(bpe_load(dir, BPE_REGEX_QWEN2, &tok, err, sizeof err) == CTTS_OK);
    q3t_codec_prefix p;
    REQUIRE(q3t_prompt_codec_prefix(&c, "ryan", 0, "english", &p, err, sizeof err) == CTTS_OK);
    int32_t *ids = NULL;
    size_t n = 0;
    /* Empty text: 8 template tokens, empty text slice. */
    REQUIRE(q3t_prompt_ids(tok, "", 0, &ids, &n, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(n, 8);
    q3t_layout l;
    REQUIRE(q3t_prompt_layout(&c, &p, ids, n, NULL, 0, 0, Q3T_TEXT_NON_STREAMING, &l, err,
                              sizeof err) == CTTS_OK);
    char desc[1024];
    q3t_layout_describe(&l, desc, sizeof desc);
    CHECK(strcmp(desc, "T(151644) | T(301) | T(198) | T(151671)+C(2154) | T(151671)+C(2156) | "
                       "T(151671)+C(2050) | T(151671)+C(2157) | T(151671)+C(3061) | "
                       "T(151672)+C(2148) | T(151673)+C(2148) | T(151671)+C(2149) || T(151671)") == 0);
    if (strcmp(desc, "") == 0 || strstr(desc, "||") == NULL) fprintf(stderr, "    %s\n", desc);
    q3t_layout_free(&l);
    /* Streaming with empty text: <|im_end|> is the "first text token" (ids[3]). */
    REQUIRE(q3t_prompt_layout(&c, &p, ids, n, NULL, 0, 0, Q3T_TEXT_STREAMING, &l, err,
                              sizeof err) == CTTS_OK);
    CHECK_EQ_INT(l.n_prefill, 3 + 6 + 1);
    CHECK(l.rows[9].a == 151645 && l.rows[9].b == 2149);
    CHECK_EQ_INT(l.n_trailing, 1); /* just P_e */
    CHECK(l.rows[10].a == 151673);
    q3t_layout_free(&l);
    /* A too-short prompt (not from the template) gives empty slices, no error. */
    REQUIRE(q3t_prompt_layout(&c, &p, ids, 2, NULL, 0, 0, Q3T_TEXT_STREAMING, &l, err,
                              sizeof err) == CTTS_OK);
    CHECK_EQ_INT(l.n_prefill, 2 + 6);
    q3t_layout_free(&l);
    /* Describe reports the full length even when truncated. */
    REQUIRE(q3t_prompt_layout(&c, &p, ids, n, NULL, 0, 0, Q3T_TEXT_NON_STREAMING, &l, err,
                              sizeof err) == CTTS_OK);
    CHECK_EQ_INT(q3t_layout_describe(&l, desc, 5), strlen("T(151644) | T(301) | T(198) | "
                                                          "T(151671)+C(2154) | T(151671)+C(2156) "
                                                          "| T(151671)+C(2050) | T(151671)+C(2157) "
                                                          "| T(151671)+C(3061) | T(151672)+C(2148) "
                                                          "| T(151673)+C(2148) | T(151671)+C(2149) "
                                                          "|| T(151671)"));
    CHECK(strlen(desc) == 4);
    q3t_layout_free(&l);
    free(ids);
    bpe_free(tok);
}

TEST_MAIN(T(test_config_tiny), T(test_config_errors), T(test_codec_prefix),
          T(test_custom_voice_cases), T(test_base_cases), T(test_layout_edges))
