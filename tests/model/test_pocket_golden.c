/*
 * End-to-end parity with the official implementation on the golden tiny
 * model (../shared/golden/pocket-tiny): for every generation case, the
 * per-frame latents and EOS logits of every chunk, the frame counts and EOS
 * frame, and the audio. Voices come from the exported state files (the
 * golden generator checked that they equal the wav-derived states).
 * Also: determinism across runs and thread counts, and the split layout.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/pocket/pocket.h"
#include "pocket_case.h"

static char golden_path[512];
static const char *gpath(const char *rel) {
    snprintf(golden_path, sizeof golden_path, "%s/pocket-tiny/%s", test_golden_dir(), rel);
    return golden_path;
}

static const char *voice_state_for(const char *voice) {
    if (!strcmp(voice, "wav22") || !strcmp(voice, "state22"))
        return "voice/voice_22k_state.safetensors";
    if (!strcmp(voice, "wav24")) return "voice/voice_24k_state.safetensors";
    return NULL;
}

static void run_case(const json_value *c, pocket_model *m) {
    char err[512];
    const char *id = json_get(c, "id")->string;
    const json_value *jv = json_get(c, "voice");
    const char *voice = jv && jv->type == JSON_STRING ? jv->string : "none";
    ctts_gen_params p = pocket_default_gen_params();
    p.temperature = 0;
    p.lsd_steps = (int)json_get(c, "lsd_decode_steps")->integer;
    p.eos_threshold = (float)json_get(c, "eos_threshold")->number;
    const json_value *fae = json_get(c, "frames_after_eos_arg");
    p.frames_after_eos = fae->type == JSON_NULL ? -1 : (int)fae->integer;
    pocket_voice *v = NULL;
    const char *vs = voice_state_for(voice);
    if (vs && pocket_voice_load(m, gpath(vs), &v, err, sizeof err) != CTTS_OK) {
        TEST_FAIL_AT("%s: voice: %s", id, err);
        return;
    }
    frame_log log;
    memset(&log, 0, sizeof log);
    log.ldim = pocket_model_config(m)->flow.ldim;
    log.eos_thr = p.eos_threshold;
    for (int i = 0; i < 16; i++) log.first_eos[i] = -1;
    size_t n = 0;
    float *audio = run_stream(m, v, &p, json_get(c, "text")->string, &log, &n, err);
    if (!audio) {
        TEST_FAIL_AT("%s: generation failed: %s", id, err);
        pocket_voice_free(v);
        log_free(&log);
        return;
    }
    char path[256];
    snprintf(path, sizeof path, "cases/%s.safetensors", id);
    st_file *g = NULL;
    if (st_open(gpath(path), &g, err, sizeof err) != CTTS_OK) {
        TEST_FAIL_AT("%s", err);
    } else {
        const json_value *chunks = json_get(c, "chunks");
        CHECK_EQ_INT(log.n_chunks, chunks->length);
        for (size_t k = 0; k < chunks->length && (int)k < log.n_chunks; k++) {
            const json_value *ch = json_at(chunks, k);
            int computed = (int)json_get(ch, "n_frames_computed")->integer;
            const json_value *fe = json_get(ch, "first_eos_step");
            CHECK_EQ_INT(log.n_computed[k], computed);
            CHECK_EQ_INT(log.first_eos[k], fe->type == JSON_NULL ? -1 : fe->integer);
            char name[64];
            snprintf(name, sizeof name, "chunk%zu.latents", k);
            const ctts_tensor *lat = st_find(g, name);
            snprintf(name, sizeof name, "chunk%zu.eos_logits", k);
            const ctts_tensor *eos = st_find(g, name);
            if (!lat || !eos || lat->shape[0] != computed) {
                TEST_FAIL_AT("%s: golden chunk %zu tensors missing", id, k);
                continue;
            }
            int nf = log.n_computed[k] < computed ? log.n_computed[k] : computed;
            double dl = max_abs_diff(log.latents[k], lat->data, (size_t)nf * log.ldim);
            double de = max_abs_diff(log.eos[k], eos->data, (size_t)nf);
            if (!(dl <= 1e-3)) TEST_FAIL_AT("%s chunk %zu: latents differ by %g", id, k, dl);
            if (!(de <= 1e-3)) TEST_FAIL_AT("%s chunk %zu: eos logits differ by %g", id, k, de);
        }
        const ctts_tensor *ga = st_find(g, "audio");
        CHECK_EQ_INT(n, json_get(c, "total_samples")->integer);
        if (ga && (size_t)ctts_tensor_numel(ga) == n) {
            double da = max_abs_diff(audio, ga->data, n);
            if (!(da <= 1e-3)) TEST_FAIL_AT("%s: audio differs by %g", id, da);
        }
        st_close(g);
    }
    free(audio);
    pocket_voice_free(v);
    log_free(&log);
}

static pocket_model *load_tiny(const char *config, int threads, char *err) {
    ctts_model_params mp = ctts_model_default_params();
    mp.n_threads = threads;
    pocket_model *m = NULL;
    if (pocket_model_load(gpath(config), &mp, &m, err, 512) != CTTS_OK) return NULL;
    return m;
}

static void test_golden_cases(void) {
    char err[512];
    json_value *man = json_parse_file(gpath("manifest.json"), err, sizeof err);
    REQUIRE(man);
    pocket_model *m = load_tiny("model/config.yaml", 1, err);
    if (!m) {
        json_free(man);
        TEST_FAIL_AT("load: %s", err);
        return;
    }
    const json_value *cases = json_get(man, "cases");
    CHECK_EQ_INT(cases->length, 8);
    for (size_t i = 0; i < cases->length; i++) run_case(json_at(cases, i), m);
    pocket_model_free(m);
    json_free(man);
}

/* The same parity with the kernel tier capped below the host's best (scalar
 * reference, AVX2 on an AVX-512 host): every tier's kernels meet the goldens. */
static void test_golden_cases_every_isa(void) {
    char err[512];
    json_value *man = json_parse_file(gpath("manifest.json"), err, sizeof err);
    REQUIRE(man);
    static const ctts_cpu_isa caps[] = {CTTS_ISA_SCALAR, CTTS_ISA_AVX2};
    for (int c = 0; c < 2; c++) {
        ctts_model_params mp = ctts_model_default_params();
        mp.n_threads = 2;
        mp.cpu_isa = caps[c];
        pocket_model *m = NULL;
        if (pocket_model_load(gpath("model/config.yaml"), &mp, &m, err, sizeof err) != CTTS_OK) {
            TEST_FAIL_AT("load (isa cap %d): %s", (int)caps[c], err);
            break;
        }
        const json_value *cases = json_get(man, "cases");
        for (size_t i = 0; i < cases->length; i++) run_case(json_at(cases, i), m);
        pocket_model_free(m);
    }
    json_free(man);
}

/* Same text, same seed, temperature > 0: identical audio for two runs and for 1 vs 2 threads. */
static void test_deterministic_threads_and_seed(void) {
    char err[512];
    pocket_model *m1 = load_tiny("model/config.yaml", 1, err);
    pocket_model *m2 = load_tiny("model/config.yaml", 2, err);
    REQUIRE(m1 && m2);
    pocket_voice *v = NULL;
    REQUIRE(pocket_voice_load(m1, gpath("voice/voice_22k_state.safetensors"), &v, err,
                              sizeof err) == CTTS_OK);
    pocket_voice *v2 = NULL;
    REQUIRE(pocket_voice_load(m2, gpath("voice/voice_22k_state.safetensors"), &v2, err,
                              sizeof err) == CTTS_OK);
    ctts_gen_params p = pocket_default_gen_params();
    p.seed = 42;
    p.temperature = 0.7f;
    p.max_frames = 20;
    const char *text = "Determinism matters. Twice the same, please.";
    size_t na = 0, nb = 0, nc = 0;
    float *a = run_stream(m1, v, &p, text, NULL, &na, err);
    float *b = run_stream(m1, v, &p, text, NULL, &nb, err);
    float *c = run_stream(m2, v2, &p, text, NULL, &nc, err);
    REQUIRE(a && b && c);
    CHECK(na > 0);
    CHECK(na == nb && na == nc);
    if (na == nb) CHECK(memcmp(a, b, na * 4) == 0);
    if (na == nc) CHECK(memcmp(a, c, na * 4) == 0);
    p.seed = 43;
    size_t nd = 0;
    float *d = run_stream(m1, v, &p, text, NULL, &nd, err);
    REQUIRE(d);
    CHECK(nd != na || memcmp(a, d, na * 4) != 0); /* another seed, other noise */
    free(a);
    free(b);
    free(c);
    free(d);
    pocket_voice_free(v);
    pocket_voice_free(v2);
    pocket_model_free(m1);
    pocket_model_free(m2);
}

/* The split checkpoint layout (weight-norm pairs, training names) gives the same audio. */
static void test_split_layout_same_audio(void) {
    char err[512];
    pocket_model *a = load_tiny("model/config.yaml", 1, err);
    pocket_model *b = load_tiny("model/config_split.yaml", 1, err);
    if (!b) TEST_FAIL_AT("split load: %s", err);
    REQUIRE(a && b);
    ctts_gen_params p = pocket_default_gen_params();
    p.temperature = 0;
    p.max_frames = 8;
    size_t na = 0, nb = 0;
    float *x = run_stream(a, NULL, &p, "Split layout check.", NULL, &na, err);
    float *y = run_stream(b, NULL, &p, "Split layout check.", NULL, &nb, err);
    REQUIRE(x && y);
    CHECK_EQ_INT(na, nb);
    if (na == nb) CHECK(max_abs_diff(x, y, na) <= 1e-4);
    free(x);
    free(y);
    pocket_model_free(a);
    pocket_model_free(b);
}

/* A voice written by ctts loads back bit-identical (same tensors as the official file). */
static void test_voice_state_roundtrip(void) {
    char err[512];
    pocket_model *m = load_tiny("model/config.yaml", 1, err);
    REQUIRE(m);
    pocket_voice *v = NULL;
    REQUIRE(pocket_voice_load(m, gpath("voice/voice_22k_state.safetensors"), &v, err,
                              sizeof err) == CTTS_OK);
    char tmpl[] = "/tmp/ctts_voice_XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    char out[300];
    snprintf(out, sizeof out, "%s/v.safetensors", tmpl);
    REQUIRE(pocket_voice_save(v, out, err, sizeof err) == CTTS_OK);
    st_file *a = NULL, *b = NULL;
    REQUIRE(st_open(gpath("voice/voice_22k_state.safetensors"), &a, err, sizeof err) == CTTS_OK);
    REQUIRE(st_open(out, &b, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(st_count(a), st_count(b));
    for (int i = 0; i < st_count(a); i++) {
        const ctts_tensor *ta = st_tensor(a, i);
        const ctts_tensor *tb = st_find(b, ta->name);
        CHECK(tb && tb->nbytes == ta->nbytes && memcmp(ta->data, tb->data, ta->nbytes) == 0);
    }
    st_close(a);
    st_close(b);
    /* Byte for byte the file the official export_model_state wrote. */
    FILE *fa = fopen(gpath("voice/voice_22k_state.safetensors"), "rb"), *fb = fopen(out, "rb");
    REQUIRE(fa && fb);
    int same = 1, ca, cb;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
        if (ca != cb) same = 0;
    } while (ca != EOF && cb != EOF);
    fclose(fa);
    fclose(fb);
    CHECK(same);
    remove(out);
    remove(tmpl);
    pocket_voice_free(v);
    pocket_model_free(m);
}

TEST_MAIN(T(test_golden_cases), T(test_golden_cases_every_isa), T(test_deterministic_threads_and_seed),
          T(test_split_layout_same_audio), T(test_voice_state_roundtrip))
