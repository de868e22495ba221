/*
 * Parity at the real english shape (109.5 M parameters) with the full-size
 * smoke golden (../shared/golden/pocket-full). The weights are not stored:
 * they are rebuilt with ../shared/refgen/make_model.py --config full (needs
 * Debian's python3-torch and the official source), so this test is opt-in:
 * set CTTS_POCKET_FULL to that model directory; it reports SKIP otherwise.
 * The voice of f00 is built from the golden encoder latents
 * (voice_22k_intermediates: latents -> speaker projection -> FlowLM prefill).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/pocket/pocket.h"
#include "models/pocket/pocket_internal.h"
#include "pocket_case.h"

static char path_buf[600];
static const char *full(const char *rel) {
    snprintf(path_buf, sizeof path_buf, "%s/pocket-full/%s", test_golden_dir(), rel);
    return path_buf;
}

/* Voice state from encoder latents [T, 32]. */
static pocket_voice *voice_from_latents(pocket_model *m, const ctts_tensor *lat, char *err) {
    int T = (int)lat->shape[0], ldim = (int)lat->shape[1], d = m->cfg.flow.d_model;
    float *l = malloc((size_t)T * ldim * 4), *rows = malloc((size_t)(T + 1) * d * 4);
    memcpy(l, lat->data, (size_t)T * ldim * 4);
    int n_rows = 0;
    pocket_voice *v = calloc(1, sizeof *v);
    v->model = m;
    ctts_status st = pocket_flowlm_voice_rows(m->flowlm, l, T, rows, &n_rows);
    if (st == CTTS_OK) st = pocket_flowlm_state_new(m->flowlm, n_rows, &v->state, err, 512);
    if (st == CTTS_OK) st = pocket_flowlm_prefill(m->flowlm, v->state, rows, n_rows, NULL);
    free(l);
    free(rows);
    if (st != CTTS_OK) {
        pocket_voice_free(v);
        return NULL;
    }
    return v;
}

static void test_full_size_smoke_golden(void) {
    const char *dir = getenv("CTTS_POCKET_FULL");
    struct stat sb;
    if (!dir || !*dir || stat(dir, &sb) != 0)
        SKIP("set CTTS_POCKET_FULL to a model built by refgen/make_model.py --config full");
    char err[512];
    json_value *man = json_parse_file(full("manifest.json"), err, sizeof err);
    REQUIRE(man);
    ctts_model_params mp = ctts_model_default_params();
    pocket_model *m = NULL;
    ctts_status st = pocket_model_load(dir, &mp, &m, err, sizeof err);
    if (st != CTTS_OK) TEST_FAIL_AT("%s", err);
    REQUIRE(st == CTTS_OK);
    const json_value *cases = json_get(man, "cases");
    for (size_t i = 0; i < cases->length; i++) {
        const json_value *c = json_at(cases, i);
        const char *id = json_get(c, "id")->string;
        pocket_voice *v = NULL;
        const json_value *jv = json_get(c, "voice");
        if (jv && jv->type == JSON_STRING) {
            st_file *vi = NULL;
            REQUIRE(st_open(full("voice/voice_22k_intermediates.safetensors"), &vi, err,
                            sizeof err) == CTTS_OK);
            v = voice_from_latents(m, st_find(vi, "latents"), err);
            st_close(vi);
            REQUIRE(v);
        }
        ctts_gen_params p = pocket_default_gen_params();
        p.temperature = 0;
        p.lsd_steps = (int)json_get(c, "lsd_decode_steps")->integer;
        p.eos_threshold = (float)json_get(c, "eos_threshold")->number;
        frame_log log;
        memset(&log, 0, sizeof log);
        log.ldim = m->cfg.flow.ldim;
        log.eos_thr = p.eos_threshold;
        for (int k = 0; k < 16; k++) log.first_eos[k] = -1;
        size_t n = 0;
        float *audio = run_stream(m, v, &p, json_get(c, "text")->string, &log, &n, err);
        REQUIRE(audio);
        char rel[128];
        snprintf(rel, sizeof rel, "cases/%s.safetensors", id);
        st_file *gf = NULL;
        REQUIRE(st_open(full(rel), &gf, err, sizeof err) == CTTS_OK);
        const ctts_tensor *lat = st_find(gf, "chunk0.latents"), *eos = st_find(gf, "chunk0.eos_logits");
        const ctts_tensor *ga = st_find(gf, "audio");
        REQUIRE(lat && eos && ga);
        CHECK_EQ_INT(log.n_computed[0], lat->shape[0]);
        CHECK_EQ_INT(n, ctts_tensor_numel(ga));
        int nf = log.n_computed[0] < lat->shape[0] ? log.n_computed[0] : (int)lat->shape[0];
        double dl = max_abs_diff(log.latents[0], lat->data, (size_t)nf * log.ldim);
        double de = max_abs_diff(log.eos[0], eos->data, (size_t)nf);
        double da = n == (size_t)ctts_tensor_numel(ga) ? max_abs_diff(audio, ga->data, n) : 1e9;
        printf("    %s: %d frames, max |diff| latents %.2e, eos %.2e, audio %.2e\n", id, nf, dl,
               de, da);
        if (!(dl <= 1e-3)) TEST_FAIL_AT("%s: latents differ by %g", id, dl);
        if (!(de <= 1e-3)) TEST_FAIL_AT("%s: eos logits differ by %g", id, de);
        if (!(da <= 1e-3)) TEST_FAIL_AT("%s: audio differs by %g", id, da);
        st_close(gf);
        free(audio);
        log_free(&log);
        pocket_voice_free(v);
    }
    pocket_model_free(m);
    json_free(man);
}

TEST_MAIN(T(test_full_size_smoke_golden))
