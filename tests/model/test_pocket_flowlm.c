/*
 * FlowLM against the golden tiny model (pocket-tiny): voice prompt rows,
 * prefill hidden states and KV cache, text rows, and free-running
 * autoregressive steps (latents, EOS logits, hidden) for every golden case;
 * plus binding errors, argument checks and sampling determinism.
 *
 * Goldens come from the official Python code (see
 * shared/golden/pocket-tiny/README.md). Tolerances: single pass 1e-4,
 * autoregressive 1e-3 (feedback amplifies rounding differences).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "harness.h"

#include "backend/backend.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/pocket/flowlm.h"
#include "nn/transformer.h"

#define TOL_SINGLE 1e-4
#define TOL_AR 1e-3

static pocket_flowlm_config tiny_config(void) {
    return (pocket_flowlm_config){
        .d_model = 64,
        .num_heads = 4,
        .num_layers = 2,
        .hidden_scale = 4,
        .max_period = 10000.0f,
        .n_bins = 1000,
        .lut_dim = 64,
        .flow_dim = 64,
        .flow_depth = 2,
        .ldim = 32,
        .insert_bos_before_voice = 1,
    };
}

static void golden_path(char *buf, size_t len, const char *rel) {
    snprintf(buf, len, "%s/pocket-tiny/%s", test_golden_dir(), rel);
}

static st_file *open_golden(const char *rel) {
    char path[1024], err[512];
    golden_path(path, sizeof path, rel);
    st_file *f = NULL;
    if (st_open(path, &f, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "    %s\n", err);
        return NULL;
    }
    return f;
}

/* Copy of a float tensor with the expected element count (NULL on mismatch). */
static float *read_f32(const st_file *f, const char *name, int64_t numel) {
    const ctts_tensor *t = st_find(f, name);
    if (!t || t->dtype != CTTS_DT_F32 || ctts_tensor_numel(t) != numel) {
        fprintf(stderr, "    golden tensor '%s' missing or wrong size\n", name);
        return NULL;
    }
    float *p = malloc(numel ? (size_t)numel * sizeof(float) : 1);
    if (p) memcpy(p, t->data, (size_t)numel * sizeof(float));
    return p;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        if (d < 0) d = -d;
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

typedef struct {
    ctts_backend *be;
    st_file *weights;
    pocket_flowlm *model;
} fixture;

static int fixture_open_isa(fixture *fx, int isa) {
    char err[512] = "";
    memset(fx, 0, sizeof *fx);
    fx->be = ctts_backend_cpu_new(2, isa);
    fx->weights = open_golden("model/model.safetensors");
    if (!fx->be || !fx->weights) return 0;
    pocket_flowlm_config cfg = tiny_config();
    if (pocket_flowlm_bind(&cfg, fx->be, st_lookup, fx->weights, &fx->model, err, sizeof err) !=
        CTTS_OK) {
        fprintf(stderr, "    bind: %s\n", err);
        return 0;
    }
    return 1;
}

static int fixture_open(fixture *fx) { return fixture_open_isa(fx, CTTS_ISA_AUTO); }

static void fixture_close(fixture *fx) {
    pocket_flowlm_free(fx->model);
    if (fx->weights) st_close(fx->weights);
    if (fx->be) fx->be->destroy(fx->be);
}

/* Loads an exported voice state (cache [2, 1, T, H, Dh] per layer) into a new state. */
static pocket_flowlm_state *load_voice_state(pocket_flowlm *m, const char *rel, int extra) {
    st_file *f = open_golden(rel);
    if (!f) return NULL;
    const pocket_flowlm_config *cfg = pocket_flowlm_get_config(m);
    pocket_flowlm_state *s = NULL;
    char name[128], err[256];
    const ctts_tensor *c0 = st_find(f, "transformer.layers.0.self_attn/cache");
    int T = c0 && c0->ndim == 5 ? (int)c0->shape[2] : -1;
    int ok = T > 0 && pocket_flowlm_state_new(m, T + extra, &s, err, sizeof err) == CTTS_OK;
    for (int l = 0; ok && l < cfg->num_layers; l++) {
        snprintf(name, sizeof name, "transformer.layers.%d.self_attn/cache", l);
        float *kv = read_f32(f, name, 2LL * T * cfg->d_model);
        ok = kv && pocket_flowlm_state_set_layer(s, l, kv, kv + (size_t)T * cfg->d_model, T) ==
                       CTTS_OK;
        free(kv);
        snprintf(name, sizeof name, "transformer.layers.%d.self_attn/offset", l);
        const ctts_tensor *off = st_find(f, name);
        int64_t o = -1;
        if (ok && off && off->dtype == CTTS_DT_I64 && off->nbytes == 8) memcpy(&o, off->data, 8);
        ok = ok && o == T;
    }
    ok = ok && pocket_flowlm_state_set_offset(s, T) == CTTS_OK;
    st_close(f);
    if (!ok) {
        pocket_flowlm_state_free(s);
        return NULL;
    }
    return s;
}

static void test_voice_prompt_prefill(void) {
    fixture fx;
    if (!fixture_open(&fx)) {
        fixture_close(&fx);
        REQUIRE(0);
    }
    st_file *im = open_golden("voice/voice_22k_intermediates.safetensors");
    st_file *vs = open_golden("voice/voice_22k_state.safetensors");
    float *latents = im ? read_f32(im, "latents", 82 * 32) : NULL;
    float *prompt = im ? read_f32(im, "prompt", 83 * 64) : NULL;
    float *prompt_hidden = im ? read_f32(im, "prompt_hidden", 83 * 64) : NULL;
    float *rows = calloc(83 * 64, sizeof(float));
    float *hidden = calloc(83 * 64, sizeof(float));
    float *k = calloc(83 * 64, sizeof(float)), *v = calloc(83 * 64, sizeof(float));
    pocket_flowlm_state *s = NULL;
    char err[256];
    int n_rows = -1;
    if (!latents || !prompt || !prompt_hidden || !vs || !rows || !hidden || !k || !v) goto done;

    CHECK(pocket_flowlm_voice_rows(fx.model, latents, 82, rows, &n_rows) == CTTS_OK);
    CHECK_EQ_INT(n_rows, 83);
    CHECK_NEAR(max_abs_diff(rows, prompt, 83 * 64), 0.0, 1e-5);

    CHECK(pocket_flowlm_state_new(fx.model, 83, &s, err, sizeof err) == CTTS_OK);
    if (!s) goto done;
    CHECK(pocket_flowlm_prefill(fx.model, s, prompt, 83, hidden) == CTTS_OK);
    CHECK_EQ_INT(pocket_flowlm_state_offset(s), 83);
    CHECK_NEAR(max_abs_diff(hidden, prompt_hidden, 83 * 64), 0.0, TOL_SINGLE);
    for (int l = 0; l < 2; l++) {
        char name[96];
        snprintf(name, sizeof name, "transformer.layers.%d.self_attn/cache", l);
        float *cache = read_f32(vs, name, 2 * 83 * 64);
        CHECK(cache != NULL);
        if (!cache) continue;
        CHECK(pocket_flowlm_state_get_layer(s, l, k, v) == CTTS_OK);
        CHECK_NEAR(max_abs_diff(k, cache, 83 * 64), 0.0, TOL_SINGLE);
        CHECK_NEAR(max_abs_diff(v, cache + 83 * 64, 83 * 64), 0.0, TOL_SINGLE);
        free(cache);
    }
    /* The cache is full: one more row must be refused without changing the state. */
    CHECK(pocket_flowlm_prefill(fx.model, s, prompt, 1, NULL) != CTTS_OK);
    CHECK_EQ_INT(pocket_flowlm_state_offset(s), 83);

done:
    CHECK(latents && prompt && prompt_hidden && vs);
    pocket_flowlm_state_free(s);
    free(latents), free(prompt), free(prompt_hidden), free(rows), free(hidden), free(k), free(v);
    if (im) st_close(im);
    if (vs) st_close(vs);
    fixture_close(&fx);
}

/* Prefill in one call == row by row (RoPE positions and cache offsets line up). */
static void test_prefill_incremental(void) {
    fixture fx;
    if (!fixture_open(&fx)) {
        fixture_close(&fx);
        REQUIRE(0);
    }
    st_file *im = open_golden("voice/voice_22k_intermediates.safetensors");
    float *prompt = im ? read_f32(im, "prompt", 83 * 64) : NULL;
    float *h1 = calloc(83 * 64, sizeof(float)), *h2 = calloc(83 * 64, sizeof(float));
    pocket_flowlm_state *a = NULL, *b = NULL;
    char err[256];
    if (!prompt || !h1 || !h2) goto done;
    CHECK(pocket_flowlm_state_new(fx.model, 100, &a, err, sizeof err) == CTTS_OK);
    CHECK(pocket_flowlm_state_new(fx.model, 100, &b, err, sizeof err) == CTTS_OK);
    if (!a || !b) goto done;
    CHECK(pocket_flowlm_prefill(fx.model, a, prompt, 83, h1) == CTTS_OK);
    for (int t = 0; t < 83; t++)
        CHECK(pocket_flowlm_prefill(fx.model, b, prompt + t * 64, 1, h2 + t * 64) == CTTS_OK);
    CHECK_EQ_INT(pocket_flowlm_state_offset(b), 83);
    CHECK_NEAR(max_abs_diff(h1, h2, 83 * 64), 0.0, 1e-5);
done:
    CHECK(prompt != NULL);
    pocket_flowlm_state_free(a);
    pocket_flowlm_state_free(b);
    free(prompt), free(h1), free(h2);
    if (im) st_close(im);
    fixture_close(&fx);
}

/* One text chunk of a golden case, free running. Returns 0 on a setup failure. */
static int run_chunk(fixture *fx, const pocket_flowlm_state *voice, st_file *cf, int ci,
                     const json_value *chunk, int lsd_steps, double eos_threshold) {
    char name[96], err[256];
    const json_value *jt = json_get(chunk, "tokens");
    const json_value *jn = json_get(chunk, "n_frames_computed");
    if (!jt || jt->type != JSON_ARRAY || !jn || !jn->is_integer) return 0;
    int n_tok = (int)jt->length, N = (int)jn->integer;
    int ok = 0;
    int32_t *ids = malloc((size_t)n_tok * sizeof *ids);
    float *rows = malloc((size_t)n_tok * 64 * sizeof(float));
    float *hid = malloc((size_t)n_tok * 64 * sizeof(float));
    float *g_emb = NULL, *g_hid = NULL, *g_lat = NULL, *g_eos = NULL, *g_ar = NULL;
    pocket_flowlm_state *s = NULL;
    if (!ids || !rows || !hid) goto done;
    for (int i = 0; i < n_tok; i++) ids[i] = (int32_t)json_at(jt, (size_t)i)->integer;

    snprintf(name, sizeof name, "chunk%d.text_embeddings", ci);
    g_emb = read_f32(cf, name, (int64_t)n_tok * 64);
    snprintf(name, sizeof name, "chunk%d.text_prompt_hidden", ci);
    g_hid = read_f32(cf, name, (int64_t)n_tok * 64);
    snprintf(name, sizeof name, "chunk%d.latents", ci);
    g_lat = read_f32(cf, name, (int64_t)N * 32);
    snprintf(name, sizeof name, "chunk%d.eos_logits", ci);
    g_eos = read_f32(cf, name, N);
    snprintf(name, sizeof name, "chunk%d.ar_hidden", ci);
    g_ar = read_f32(cf, name, (int64_t)N * 64);
    if (!g_emb || !g_hid || !g_lat || !g_eos || !g_ar) goto done;

    int voice_len = voice ? pocket_flowlm_state_offset(voice) : 0;
    if (pocket_flowlm_state_new(fx->model, voice_len + n_tok + N, &s, err, sizeof err) != CTTS_OK)
        goto done;
    if (voice) CHECK(pocket_flowlm_state_copy(s, voice) == CTTS_OK);
    CHECK_EQ_INT(pocket_flowlm_state_offset(s), voice_len);

    CHECK(pocket_flowlm_text_rows(fx->model, ids, n_tok, rows, err, sizeof err) == CTTS_OK);
    CHECK(memcmp(rows, g_emb, (size_t)n_tok * 64 * sizeof(float)) == 0);
    CHECK(pocket_flowlm_prefill(fx->model, s, rows, n_tok, hid) == CTTS_OK);
    CHECK_NEAR(max_abs_diff(hid, g_hid, (size_t)n_tok * 64), 0.0, TOL_SINGLE);

    float lat[32], h[64], eos = 0.0f;
    double d_lat = 0, d_hid = 0, d_eos = 0;
    int eos_mismatch = 0;
    for (int step = 0; step < N; step++) {
        ctts_status st = pocket_flowlm_step(fx->model, s, step ? lat : NULL, lsd_steps, 0.0f, 0.0f,
                                            NULL, lat, &eos, h);
        CHECK(st == CTTS_OK);
        if (st != CTTS_OK) break;
        double dl = max_abs_diff(lat, g_lat + step * 32, 32);
        double dh = max_abs_diff(h, g_ar + step * 64, 64);
        double de = max_abs_diff(&eos, g_eos + step, 1);
        d_lat = dl > d_lat || dl != dl ? dl : d_lat;
        d_hid = dh > d_hid || dh != dh ? dh : d_hid;
        d_eos = de > d_eos || de != de ? de : d_eos;
        eos_mismatch += ((double)eos > eos_threshold) != ((double)g_eos[step] > eos_threshold);
    }
    CHECK_NEAR(d_lat, 0.0, TOL_AR);
    CHECK_NEAR(d_hid, 0.0, TOL_AR);
    CHECK_NEAR(d_eos, 0.0, TOL_AR);
    CHECK_EQ_INT(eos_mismatch, 0);
    CHECK_EQ_INT(pocket_flowlm_state_offset(s), voice_len + n_tok + N);
    /* The voice state is untouched by the chunk (it was copied). */
    if (voice) CHECK_EQ_INT(pocket_flowlm_state_offset(voice), voice_len);
    if (d_lat > TOL_AR || d_hid > TOL_AR || d_eos > TOL_AR)
        fprintf(stderr, "    chunk %d: max |diff| latents %g hidden %g eos %g\n", ci, d_lat,
                d_hid, d_eos);
    ok = 1;
done:
    pocket_flowlm_state_free(s);
    free(ids), free(rows), free(hid);
    free(g_emb), free(g_hid), free(g_lat), free(g_eos), free(g_ar);
    return ok;
}

static void run_golden_cases(int isa) {
    fixture fx;
    char path[1024], err[512];
    if (!fixture_open_isa(&fx, isa)) {
        fixture_close(&fx);
        REQUIRE(0);
    }
    golden_path(path, sizeof path, "manifest.json");
    json_value *man = json_parse_file(path, err, sizeof err);
    const json_value *cases = man ? json_get(man, "cases") : NULL;
    pocket_flowlm_state *v22 = load_voice_state(fx.model, "voice/voice_22k_state.safetensors", 0);
    pocket_flowlm_state *v24 = load_voice_state(fx.model, "voice/voice_24k_state.safetensors", 0);
    CHECK(cases && cases->type == JSON_ARRAY && cases->length >= 8);
    CHECK(v22 && v24);
    int n_chunks = 0;
    for (size_t i = 0; cases && v22 && v24 && i < cases->length; i++) {
        const json_value *c = json_at(cases, i);
        const json_value *id = json_get(c, "id"), *voice = json_get(c, "voice");
        const json_value *lsd = json_get(c, "lsd_decode_steps");
        const json_value *thr = json_get(c, "eos_threshold");
        const json_value *chunks = json_get(c, "chunks");
        CHECK(id && voice && lsd && lsd->is_integer && thr && chunks && chunks->type == JSON_ARRAY);
        if (!id || !voice || !lsd || !thr || !chunks) continue;
        const pocket_flowlm_state *vs = NULL;
        if (voice->type == JSON_STRING && !strcmp(voice->string, "wav24"))
            vs = v24;
        else if (voice->type == JSON_STRING) /* wav22 and state22: the same state */
            vs = v22;
        snprintf(path, sizeof path, "cases/%s.safetensors", id->string);
        st_file *cf = open_golden(path);
        CHECK(cf != NULL);
        if (!cf) continue;
        for (size_t ci = 0; ci < chunks->length; ci++) {
            int fails_before = test_failed_;
            CHECK(run_chunk(&fx, vs, cf, (int)ci, json_at(chunks, ci), (int)lsd->integer,
                            thr->number));
            if (test_failed_ && !fails_before)
                fprintf(stderr, "    in case %s chunk %zu\n", id->string, ci);
            n_chunks++;
        }
        st_close(cf);
    }
    CHECK(n_chunks >= 13);
    pocket_flowlm_state_free(v22);
    pocket_flowlm_state_free(v24);
    json_free(man);
    fixture_close(&fx);
}

static void test_golden_cases(void) { run_golden_cases(CTTS_ISA_AUTO); }
static void test_golden_cases_scalar(void) { run_golden_cases(CTTS_ISA_SCALAR); }

/* Lookup wrapper that hides one name or reports a wrong shape for it. */
typedef struct {
    const st_file *f;
    const char *target;
    int hide;
    ctts_tensor fake;
} tamper_ctx;

static const ctts_tensor *tamper_lookup(void *vctx, const char *name) {
    tamper_ctx *c = vctx;
    const ctts_tensor *t = st_lookup((void *)c->f, name);
    if (!t || strcmp(name, c->target) != 0) return t;
    if (c->hide) return NULL;
    c->fake = *t;
    c->fake.shape[c->fake.ndim - 1] -= 1;
    return &c->fake;
}

static void test_bind_errors(void) {
    ctts_backend *be = ctts_backend_cpu_new(1, 0);
    st_file *f = open_golden("model/model.safetensors");
    char err[256] = "";
    pocket_flowlm *m = NULL;
    pocket_flowlm_config cfg = tiny_config();
    if (!be || !f) goto done;

    tamper_ctx hide = {f, "flow_lm.flow_net.final_layer.linear.bias", 1, {0}};
    CHECK(pocket_flowlm_bind(&cfg, be, tamper_lookup, &hide, &m, err, sizeof err) ==
          CTTS_E_NOT_FOUND);
    CHECK(m == NULL);
    CHECK_STR_CONTAINS(err, "missing tensor 'flow_lm.flow_net.final_layer.linear.bias'");

    tamper_ctx shape = {f, "flow_lm.input_linear.weight", 0, {0}};
    CHECK(pocket_flowlm_bind(&cfg, be, tamper_lookup, &shape, &m, err, sizeof err) ==
          CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "tensor 'flow_lm.input_linear.weight': expected shape [64, 32], "
                            "got [64, 31]");

    tamper_ctx layer = {f, "flow_lm.transformer.layers.1.linear2.weight", 1, {0}};
    CHECK(pocket_flowlm_bind(&cfg, be, tamper_lookup, &layer, &m, err, sizeof err) ==
          CTTS_E_NOT_FOUND);
    CHECK_STR_CONTAINS(err, "missing tensor 'flow_lm.transformer.layers.1.linear2.weight'");

    /* A config that does not match the file fails on the first shape. */
    pocket_flowlm_config wide = cfg;
    wide.hidden_scale = 2;
    CHECK(pocket_flowlm_bind(&wide, be, st_lookup, f, &m, err, sizeof err) == CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "expected shape [128, 64], got [256, 64]");
    pocket_flowlm_config bad = cfg;
    bad.num_heads = 3;
    CHECK(pocket_flowlm_bind(&bad, be, st_lookup, f, &m, err, sizeof err) == CTTS_E_INVALID_ARG);
    bad = cfg;
    bad.lut_dim = 32;
    CHECK(pocket_flowlm_bind(&bad, be, st_lookup, f, &m, err, sizeof err) != CTTS_OK);

    /* Every flow_lm.* tensor of the file is bound exactly once, nothing else. */
    CHECK(pocket_flowlm_bind(&cfg, be, st_lookup, f, &m, err, sizeof err) == CTTS_OK);
    if (m) {
        int n_file = 0;
        for (int i = 0; i < st_count(f); i++)
            n_file += strncmp(st_tensor(f, i)->name, "flow_lm.", 8) == 0;
        CHECK_EQ_INT(pocket_flowlm_bound_count(m), n_file);
        for (int i = 0; i < pocket_flowlm_bound_count(m); i++) {
            const char *name = pocket_flowlm_bound_name(m, i);
            CHECK(name && st_find(f, name) != NULL);
            for (int j = 0; j < i; j++) CHECK(strcmp(name, pocket_flowlm_bound_name(m, j)) != 0);
        }
        CHECK(pocket_flowlm_bound_name(m, pocket_flowlm_bound_count(m)) == NULL);
    }
done:
    CHECK(be && f);
    pocket_flowlm_free(m);
    if (f) st_close(f);
    if (be) be->destroy(be);
}

static void test_argument_checks(void) {
    fixture fx;
    if (!fixture_open(&fx)) {
        fixture_close(&fx);
        REQUIRE(0);
    }
    char err[256] = "";
    float rows[3 * 64], lat[32], eos;
    int32_t bad_hi[2] = {5, 1001}, bad_lo[1] = {-1}, edge[1] = {1000};
    CHECK(pocket_flowlm_text_rows(fx.model, bad_hi, 2, rows, err, sizeof err) ==
          CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "1001");
    CHECK(pocket_flowlm_text_rows(fx.model, bad_lo, 1, rows, err, sizeof err) ==
          CTTS_E_INVALID_ARG);
    CHECK(pocket_flowlm_text_rows(fx.model, edge, 1, rows, err, sizeof err) == CTTS_OK);

    pocket_flowlm_state *s = NULL, *big = NULL;
    CHECK(pocket_flowlm_state_new(fx.model, -1, &s, err, sizeof err) != CTTS_OK);
    CHECK(pocket_flowlm_state_new(fx.model, 2, &s, err, sizeof err) == CTTS_OK);
    CHECK(pocket_flowlm_state_new(fx.model, 8, &big, err, sizeof err) == CTTS_OK);
    if (s && big) {
        CHECK(pocket_flowlm_state_set_offset(s, 3) == CTTS_E_INVALID_ARG);
        CHECK(pocket_flowlm_state_set_layer(s, 2, rows, rows, 1) == CTTS_E_INVALID_ARG);
        CHECK(pocket_flowlm_state_set_layer(s, 0, rows, rows, 3) == CTTS_E_INVALID_ARG);
        CHECK(pocket_flowlm_step(fx.model, s, NULL, 0, 0.0f, 0.0f, NULL, lat, &eos, NULL) ==
              CTTS_E_INVALID_ARG);
        /* Temperature > 0 needs an RNG. */
        CHECK(pocket_flowlm_step(fx.model, s, NULL, 1, 0.5f, 0.0f, NULL, lat, &eos, NULL) ==
              CTTS_E_INVALID_ARG);
        CHECK(pocket_flowlm_step(fx.model, s, NULL, 1, 0.0f, 0.0f, NULL, lat, &eos, NULL) ==
              CTTS_OK);
        CHECK(pocket_flowlm_step(fx.model, s, lat, 1, 0.0f, 0.0f, NULL, lat, &eos, NULL) ==
              CTTS_OK);
        /* Full: the third step is refused. */
        CHECK(pocket_flowlm_step(fx.model, s, lat, 1, 0.0f, 0.0f, NULL, lat, &eos, NULL) ==
              CTTS_E_INVALID_ARG);
        CHECK_EQ_INT(pocket_flowlm_state_offset(s), 2);
        /* Copy needs room in the destination. */
        CHECK(pocket_flowlm_state_copy(big, s) == CTTS_OK);
        CHECK_EQ_INT(pocket_flowlm_state_offset(big), 2);
        CHECK(pocket_flowlm_prefill(fx.model, big, rows, 3, NULL) == CTTS_OK);
        CHECK(pocket_flowlm_state_copy(s, big) == CTTS_E_INVALID_ARG);
    }
    pocket_flowlm_state_free(s);
    pocket_flowlm_state_free(big);
    fixture_close(&fx);
}

/* Sampling: same seed -> same latent; other seed -> different; clamp bounds the
 * noise (with an all-zero velocity impossible to check directly, so only
 * determinism and finiteness are asserted). Denorm is latent * std + mean. */
static void test_sampling_and_denorm(void) {
    fixture fx;
    if (!fixture_open(&fx)) {
        fixture_close(&fx);
        REQUIRE(0);
    }
    char err[256];
    float lat[3][32], eos;
    uint64_t seeds[3] = {7, 7, 8};
    for (int r = 0; r < 3; r++) {
        pocket_flowlm_state *s = NULL;
        ctts_rng rng;
        ctts_rng_seed(&rng, seeds[r]);
        CHECK(pocket_flowlm_state_new(fx.model, 4, &s, err, sizeof err) == CTTS_OK);
        if (!s) continue;
        CHECK(pocket_flowlm_step(fx.model, s, NULL, 2, 0.7f, r == 2 ? 0.5f : 0.0f, &rng, lat[r],
                                 &eos, NULL) == CTTS_OK);
        pocket_flowlm_state_free(s);
    }
    CHECK(memcmp(lat[0], lat[1], sizeof lat[0]) == 0);
    CHECK(memcmp(lat[0], lat[2], sizeof lat[0]) != 0);
    for (int i = 0; i < 32; i++) CHECK(isfinite(lat[2][i]));

    const ctts_tensor *mean = st_find(fx.weights, "flow_lm.emb_mean");
    const ctts_tensor *std = st_find(fx.weights, "flow_lm.emb_std");
    REQUIRE(mean && std);
    float out[32];
    pocket_flowlm_denorm(fx.model, lat[0], out);
    for (int i = 0; i < 32; i++) {
        float want = lat[0][i] * ((const float *)std->data)[i] + ((const float *)mean->data)[i];
        CHECK(out[i] == want);
    }
    fixture_close(&fx);
}

/* The generic layer on the Mimi transformers (LayerScale, context window 24):
 * the decoder one streamed 16 rows per frame, the encoder one in one pass. */
static void run_mimi_layer(fixture *fx, const char *prefix, const float *in, const float *want,
                           int T, int rows_per_call) {
    const nn_transformer_config cfg = {.d_model = 32, .n_heads = 2, .d_ff = 64,
                                       .max_period = 10000.0f, .context = 24,
                                       .has_layer_scale = 1};
    char err[256] = "";
    nn_binder b = {.be = fx->be, .get = st_lookup, .get_ctx = fx->weights};
    nn_transformer_layer_weights w;
    nn_kv_cache kv = {0};
    float *x = NULL, *scratch = NULL;
    ctts_status st = nn_transformer_layer_bind(&b, &cfg, prefix, &w, err, sizeof err);
    CHECK(st == CTTS_OK);
    if (st != CTTS_OK) {
        fprintf(stderr, "    %s\n", err);
        goto done;
    }
    CHECK_EQ_INT(b.n_names, 10);
    CHECK(nn_kv_cache_init(&kv, fx->be, T, 32) == CTTS_OK);
    x = fx->be->alloc(fx->be, (size_t)T * 32 * sizeof(float));
    scratch = fx->be->alloc(fx->be, nn_transformer_scratch_floats(&cfg, rows_per_call) *
                                        sizeof(float));
    if (!kv.k || !x || !scratch) goto done;
    memcpy(x, in, (size_t)T * 32 * sizeof(float));
    for (int t0 = 0; t0 < T; t0 += rows_per_call)
        CHECK(nn_transformer_layer_forward(fx->be, &cfg, &w, &kv, x + t0 * 32, rows_per_call, t0,
                                           scratch) == CTTS_OK);
    CHECK_EQ_INT(kv.n, T);
    CHECK_NEAR(max_abs_diff(x, want, (size_t)T * 32), 0.0, TOL_SINGLE);
    /* A full cache refuses more rows. */
    CHECK(nn_transformer_layer_forward(fx->be, &cfg, &w, &kv, x, 1, T, scratch) ==
          CTTS_E_INVALID_ARG);
done:
    if (x) fx->be->free_buf(fx->be, x);
    if (scratch) fx->be->free_buf(fx->be, scratch);
    nn_kv_cache_release(&kv, fx->be);
    nn_binder_release(&b);
}

static void test_transformer_mimi_window(void) {
    fixture fx;
    if (!fixture_open(&fx)) {
        fixture_close(&fx);
        REQUIRE(0);
    }
    st_file *cf = open_golden("cases/c00_short.safetensors");
    st_file *im = open_golden("voice/voice_22k_intermediates.safetensors");
    float *up = cf ? read_f32(cf, "chunk0.mimi_upsample_out", 8 * 16 * 32) : NULL;
    float *dec = cf ? read_f32(cf, "chunk0.mimi_decoder_transformer_out", 8 * 16 * 32) : NULL;
    float *sea = im ? read_f32(im, "seanet_out", 1312 * 32) : NULL;
    float *enc = im ? read_f32(im, "encoder_transformer_out", 1312 * 32) : NULL;
    CHECK(up && dec && sea && enc);
    if (up && dec)
        run_mimi_layer(&fx, "mimi.decoder_transformer.transformer.layers.0.", up, dec, 128, 16);
    if (sea && enc)
        run_mimi_layer(&fx, "mimi.encoder_transformer.transformer.layers.0.", sea, enc, 1312,
                       1312);
    free(up), free(dec), free(sea), free(enc);
    if (cf) st_close(cf);
    if (im) st_close(im);
    fixture_close(&fx);
}

TEST_MAIN(T(test_voice_prompt_prefill), T(test_prefill_incremental), T(test_golden_cases),
          T(test_golden_cases_scalar), T(test_bind_errors), T(test_argument_checks),
          T(test_sampling_and_denorm), T(test_transformer_mimi_window))
