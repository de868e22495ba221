/*
 * Qwen3-TTS talker + code predictor + sampling against the official goldens
 * (qwen3tts-tiny/cases/<id>.safetensors, made by the official code):
 *  - single pass from the golden prefill rows: talker hidden / raw logits /
 *    processed scores of forward 0, code-predictor logits of frames 0 and 1;
 *  - teacher forcing: every talker forward fed the golden frames, hidden
 *    states and processed scores along the whole case;
 *  - free running (q3t_codegen): every first code, all 16 codes of every
 *    frame and the stop reason exact, greedy, for the 10 greedy cases;
 *  - the sampled case: processed distributions after temperature and top-k
 *    (talker_scores_first, cp_frame0.scores), replay of its chosen tokens,
 *    seeded determinism;
 *  - binding errors: missing tensor, wrong shape.
 * The prompt rows come from the goldens, so this test does not depend on the
 * tokenizer or the prompt layout.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "harness.h"
#include "io/safetensors.h"
#include "models/qwen3tts/code_predictor.h"
#include "models/qwen3tts/q3t_codegen.h"
#include "models/qwen3tts/q3t_config.h"
#include "models/qwen3tts/talker.h"

#define TOL_SINGLE 1e-4 /* single-pass floats (README tolerances) */
#define TOL_AR 1e-3     /* autoregressive floats */

typedef struct {
    const char *id;
    int base;      /* 1: model-base */
    float rep_pen; /* repetition_penalty */
    int sampled;
} gcase;

static const gcase CASES[] = {
    {"c00_short_en", 0, 1.05f, 0},
    {"c01_chinese", 0, 1.05f, 0},
    {"c02_numbers_punct", 0, 1.05f, 0},
    {"c03_long_auto", 0, 1.05f, 0},
    {"c04_dialect", 0, 1.05f, 0},
    {"c05_japanese_streaming_text", 0, 1.05f, 0},
    {"c06_no_rep_penalty", 0, 1.0f, 0},
    {"c07_sampled_seed", 0, 1.05f, 1},
    {"b00_clone_icl", 1, 1.05f, 0},
    {"b01_clone_xvector_only", 1, 1.05f, 0},
    {"b02_clone_icl_nonstreaming", 1, 1.05f, 0},
};
#define N_CASES ((int)(sizeof CASES / sizeof CASES[0]))
#define MAX_NEW 48

/* ---- fixtures ---- */

typedef struct {
    st_file *st;
    const char *hide;  /* a name the lookup pretends is absent */
    int n_lookups;
} weights;

static const ctts_tensor *lookup(void *ctx, const char *name) {
    weights *w = ctx;
    w->n_lookups++;
    if (w->hide && strcmp(name, w->hide) == 0) return NULL;
    return st_find(w->st, name);
}

typedef struct {
    q3t_config cfg;
    weights w;
    ctts_backend *be;
    q3t_talker *t;
    q3t_code_predictor *cp;
} model;

static void model_close(model *m) {
    q3t_code_predictor_free(m->cp);
    q3t_talker_free(m->t);
    if (m->be) m->be->destroy(m->be);
    st_close(m->w.st);
    memset(m, 0, sizeof *m);
}

/* 0 on success; on failure the reason is in err (and nothing is left open). */
static int model_open_isa(model *m, int base, int threads, int isa, char *err, size_t err_len) {
    memset(m, 0, sizeof *m);
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/qwen3tts-tiny/%s", test_golden_dir(), base ? "model-base" : "model");
    if (q3t_config_load(dir, &m->cfg, err, err_len) != CTTS_OK) return -1;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (st_open(path, &m->w.st, err, err_len) != CTTS_OK) return -1;
    m->be = ctts_backend_cpu_new(threads, isa);
    if (!m->be ||
        q3t_talker_load(m->be, &m->cfg.talker, lookup, &m->w, &m->t, err, err_len) != CTTS_OK ||
        q3t_code_predictor_load(m->be, &m->cfg.talker, lookup, &m->w, &m->cp, err, err_len) !=
            CTTS_OK) {
        model_close(m);
        return -1;
    }
    return 0;
}

static int model_open(model *m, int base, int threads, char *err, size_t err_len) {
    return model_open_isa(m, base, threads, CTTS_ISA_AUTO, err, err_len);
}

static int golden_present(void) {
    char p[1024];
    snprintf(p, sizeof p, "%s/qwen3tts-tiny/model/config.json", test_golden_dir());
    FILE *f = fopen(p, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* A golden tensor as a malloc'd array of floats / int32 (copied: the data
 * section may be unaligned). n = element count. NULL if absent. */
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
    if (st_open(p, &st, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "    %s\n", err);
        return NULL;
    }
    return st;
}

/* Max |a - b| over finite golden entries; -inf entries must match exactly
 * (any mismatch in the -inf pattern returns INFINITY). */
static double diff_scores(const float *got, const float *want, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) {
        if (isinf(want[i]) || isinf(got[i])) {
            if (got[i] != want[i]) return INFINITY;
            continue;
        }
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* Golden data of one case. */
typedef struct {
    st_file *st;
    float *prefill, *trailing, *pad, *hidden, *logits3, *scores3;
    int32_t *first, *codes;
    int P, N, F, n_first, D;
} case_data;

static void case_free(case_data *c) {
    free(c->prefill), free(c->trailing), free(c->pad), free(c->hidden), free(c->logits3),
        free(c->scores3), free(c->first), free(c->codes);
    st_close(c->st);
    memset(c, 0, sizeof *c);
}

static int case_load(case_data *c, const char *id, int D) {
    memset(c, 0, sizeof *c);
    c->st = open_case(id);
    if (!c->st) return -1;
    int64_t n_pre = 0, n_tr = 0, n_first = 0, n_codes = 0, n_pad = 0, n_hid = 0;
    c->prefill = golden_array(c->st, "prefill_embeds", CTTS_DT_F32, &n_pre);
    c->trailing = golden_array(c->st, "trailing_text_hidden", CTTS_DT_F32, &n_tr);
    c->pad = golden_array(c->st, "tts_pad_embed", CTTS_DT_F32, &n_pad);
    c->hidden = golden_array(c->st, "talker_hidden", CTTS_DT_F32, &n_hid);
    c->logits3 = golden_array(c->st, "talker_logits_first", CTTS_DT_F32, NULL);
    c->scores3 = golden_array(c->st, "talker_scores_first", CTTS_DT_F32, NULL);
    c->first = golden_array(c->st, "first_code_sequence", CTTS_DT_I32, &n_first);
    c->codes = golden_array(c->st, "codes", CTTS_DT_I32, &n_codes);
    if (!c->prefill || !c->trailing || !c->pad || !c->hidden || !c->logits3 || !c->scores3 ||
        !c->first || !c->codes || n_pad != D || n_pre % D || n_tr % D || n_codes % 16 ||
        n_hid != n_first * D) {
        case_free(c);
        return -1;
    }
    c->D = D;
    c->P = (int)(n_pre / D);
    c->N = (int)(n_tr / D);
    c->F = (int)(n_codes / 16);
    c->n_first = (int)n_first;
    return 0;
}

/* ---- tests ---- */

/* The custom-voice (m[0]) and base (m[1]) models; 0 or -1 (nothing open). */
static int models_open(model m[2], int threads, char *err, size_t err_len) {
    if (model_open(&m[0], 0, threads, err, err_len) != 0) return -1;
    if (model_open(&m[1], 1, threads, err, err_len) != 0) {
        model_close(&m[0]);
        return -1;
    }
    return 0;
}

/* Talker step k > 0 of a teacher-forced walk: golden frame k-1 embedded plus
 * trailing text row k-1 (or pad). row: scratch of D floats. */
static void forced_step(model *mm, q3t_talker_state *s, q3t_cp_state *cs, const case_data *c,
                        int k, float *row) {
    char err[256];
    const int D = q3t_talker_hidden_size(mm->t);
    REQUIRE(q3t_code_predictor_frame_embed(mm->cp, cs, mm->t, c->codes + (k - 1) * 16, row, err,
                                           sizeof err) == CTTS_OK);
    const float *add = k - 1 < c->N ? c->trailing + (size_t)(k - 1) * D : c->pad;
    for (int d = 0; d < D; d++) row[d] += add[d];
    REQUIRE(q3t_talker_forward(mm->t, s, row, 1, err, sizeof err) == CTTS_OK);
}

static void test_bind_errors(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char err[256];
    model m;
    REQUIRE(model_open(&m, 0, 1, err, sizeof err) == 0);
    q3t_talker *t = NULL;
    q3t_code_predictor *cp = NULL;

    /* A missing tensor is named. */
    m.w.hide = "talker.model.layers.1.self_attn.k_norm.weight";
    CHECK(q3t_talker_load(m.be, &m.cfg.talker, lookup, &m.w, &t, err, sizeof err) ==
          CTTS_E_NOT_FOUND);
    CHECK(t == NULL);
    CHECK_STR_CONTAINS(err, "missing tensor 'talker.model.layers.1.self_attn.k_norm.weight'");
    m.w.hide = "talker.code_predictor.lm_head.14.weight";
    CHECK(q3t_code_predictor_load(m.be, &m.cfg.talker, lookup, &m.w, &cp, err, sizeof err) ==
          CTTS_E_NOT_FOUND);
    CHECK_STR_CONTAINS(err, "lm_head.14.weight");
    m.w.hide = NULL;

    /* A config that disagrees with the file: shapes are checked. */
    q3t_talker_config tc = m.cfg.talker;
    tc.dec.intermediate_size = 48;
    CHECK(q3t_talker_load(m.be, &tc, lookup, &m.w, &t, err, sizeof err) == CTTS_E_FORMAT);
    CHECK_STR_CONTAINS(err, "expected shape [48, 32], got [64, 32]");
    tc = m.cfg.talker;
    tc.cp.hidden_size = 64; /* would need small_to_mtp_projection */
    CHECK(q3t_code_predictor_load(m.be, &tc, lookup, &m.w, &cp, err, sizeof err) != CTTS_OK);
    CHECK(cp == NULL);
    tc = m.cfg.talker;
    tc.dec.num_attention_heads = 3; /* not a multiple of the KV heads */
    CHECK(q3t_talker_load(m.be, &tc, lookup, &m.w, &t, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "KV heads");

    /* Bad ids are errors, not crashes. */
    q3t_talker_state *s = NULL;
    REQUIRE(q3t_talker_state_new(m.t, &s, err, sizeof err) == CTTS_OK);
    float out[2 * 32];
    const int32_t bad_text[2] = {5, 151936}, bad_codec[1] = {3072};
    CHECK(q3t_talker_embed_text(m.t, s, bad_text, 2, out, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "151936");
    CHECK(q3t_talker_embed_codec(m.t, s, bad_codec, 1, out, err, sizeof err) == CTTS_E_INVALID_ARG);
    q3t_cp_state *cs = NULL;
    REQUIRE(q3t_cp_state_new(m.cp, &cs, err, sizeof err) == CTTS_OK);
    int32_t codes[16];
    CHECK(q3t_code_predictor_frame(m.cp, cs, m.t, out, 3072, NULL, NULL, NULL, codes, NULL, NULL,
                                   err, sizeof err) == CTTS_E_INVALID_ARG);
    q3t_cp_state_free(cs);
    q3t_talker_state_free(s);
    model_close(&m);
}

/* Forward 0 from the golden prefill rows, and the predictor of frames 0/1
 * from the golden talker hidden states. */
static void test_single_pass(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char err[256];
    model m[2];
    REQUIRE(models_open(m, 1, err, sizeof err) == 0);
    for (int ci = 0; ci < N_CASES; ci++) {
        model *mm = &m[CASES[ci].base];
        const int D = q3t_talker_hidden_size(mm->t), V = q3t_talker_vocab(mm->t);
        case_data c;
        if (case_load(&c, CASES[ci].id, D) != 0) {
            TEST_FAIL_AT("%s: golden case unreadable", CASES[ci].id);
            continue;
        }
        q3t_talker_state *s = NULL;
        q3t_cp_state *cs = NULL;
        float *sc = malloc(sizeof(float) * V), *cpl = malloc(sizeof(float) * 15 * 2048);
        float *gl = NULL;
        REQUIRE(sc && cpl);
        REQUIRE(q3t_talker_state_new(mm->t, &s, err, sizeof err) == CTTS_OK);
        REQUIRE(q3t_cp_state_new(mm->cp, &cs, err, sizeof err) == CTTS_OK);
        REQUIRE(q3t_talker_forward(mm->t, s, c.prefill, c.P, err, sizeof err) == CTTS_OK);
        CHECK_EQ_INT(q3t_talker_state_positions(s), c.P);
        double dh = diff_scores(q3t_talker_hidden(s), c.hidden, D);
        double dl = diff_scores(q3t_talker_logits(s), c.logits3, V);
        q3t_talker_process(mm->t, s, NULL, 0, CASES[ci].rep_pen, sc);
        if (CASES[ci].sampled) {
            /* The sampled case's golden scores include temperature and top-k. */
            nn_sampler smp;
            REQUIRE(nn_sampler_init(&smp, V) == CTTS_OK);
            nn_scores_temperature(sc, V, 0.9f);
            nn_scores_top_k(&smp, sc, V, 50);
            nn_sampler_release(&smp);
        }
        double ds = diff_scores(sc, c.scores3, V);
        if (!(dh <= TOL_SINGLE && dl <= TOL_SINGLE && ds <= TOL_SINGLE))
            TEST_FAIL_AT("%s forward 0: hidden %g, logits %g, scores %g", CASES[ci].id, dh, dl, ds);

        /* Code predictor, frames 0 and 1, teacher-forced with the golden codes. */
        for (int f = 0; f < 2 && f < c.F; f++) {
            char name[64];
            snprintf(name, sizeof name, "cp_frame%d.logits", f);
            gl = golden_array(c.st, name, CTTS_DT_F32, NULL);
            if (!gl) {
                TEST_FAIL_AT("%s: no %s", CASES[ci].id, name);
                continue;
            }
            int32_t codes[16];
            nn_sampling_params greedy = {.repetition_penalty = 1.0f};
            REQUIRE(q3t_code_predictor_frame(mm->cp, cs, mm->t, c.hidden + (size_t)f * D,
                                             c.first[f], &greedy, NULL, c.codes + f * 16, codes,
                                             cpl, NULL, err, sizeof err) == CTTS_OK);
            double d = diff_scores(cpl, gl, 15 * 2048);
            if (!(d <= TOL_SINGLE)) TEST_FAIL_AT("%s frame %d: predictor logits %g", CASES[ci].id, f, d);
            free(gl);
            gl = NULL;
        }
        free(sc);
        free(cpl);
        q3t_cp_state_free(cs);
        q3t_talker_state_free(s);
        case_free(&c);
    }
    model_close(&m[0]);
    model_close(&m[1]);
}

/* Every talker forward fed the golden frames (teacher forcing). */
static void test_teacher_forced(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char err[256];
    model m[2];
    REQUIRE(models_open(m, 2, err, sizeof err) == 0);
    for (int ci = 0; ci < N_CASES; ci++) {
        model *mm = &m[CASES[ci].base];
        const int D = q3t_talker_hidden_size(mm->t), V = q3t_talker_vocab(mm->t);
        case_data c;
        if (case_load(&c, CASES[ci].id, D) != 0) {
            TEST_FAIL_AT("%s: golden case unreadable", CASES[ci].id);
            continue;
        }
        int64_t n_top2 = 0, n_cpt = 0;
        float *top2 = golden_array(c.st, "talker_top2_scores", CTTS_DT_F32, &n_top2);
        float *cpt = golden_array(c.st, "cp_top2_logits", CTTS_DT_F32, &n_cpt);
        q3t_talker_state *s = NULL;
        q3t_cp_state *cs = NULL;
        float *sc = malloc(sizeof(float) * V), *row = malloc(sizeof(float) * D),
              *cpl = malloc(sizeof(float) * 15 * 2048);
        REQUIRE(top2 && cpt && sc && row && cpl && n_top2 == 2 * c.n_first &&
                n_cpt == (int64_t)c.F * 30);
        REQUIRE(q3t_talker_state_new(mm->t, &s, err, sizeof err) == CTTS_OK);
        REQUIRE(q3t_cp_state_new(mm->cp, &cs, err, sizeof err) == CTTS_OK);
        REQUIRE(q3t_talker_forward(mm->t, s, c.prefill, c.P, err, sizeof err) == CTTS_OK);
        double wh = 0, wt = 0, wl = 0, wcp = 0;
        int argmax_bad = 0, cp_argmax_bad = 0;
        for (int k = 0; k < c.n_first; k++) {
            if (k > 0) forced_step(mm, s, cs, &c, k, row);
            wh = fmax(wh, diff_scores(q3t_talker_hidden(s), c.hidden + (size_t)k * D, D));
            if (k < 3) wl = fmax(wl, diff_scores(q3t_talker_logits(s), c.logits3 + (size_t)k * V, V));
            q3t_talker_process(mm->t, s, c.first, k, CASES[ci].rep_pen, sc);
            if (CASES[ci].sampled) continue; /* its scores are checked in test_sampled */
            if (k < 3) wl = fmax(wl, diff_scores(sc, c.scores3 + (size_t)k * V, V));
            /* Best and second-best processed score. */
            float b1 = -INFINITY, b2 = -INFINITY;
            for (int i = 0; i < V; i++) {
                if (sc[i] > b1) {
                    b2 = b1;
                    b1 = sc[i];
                } else if (sc[i] > b2) {
                    b2 = sc[i];
                }
            }
            wt = fmax(wt, fmax(fabs(b1 - top2[2 * k]), fabs(b2 - top2[2 * k + 1])));
            argmax_bad += nn_argmax(sc, V) != c.first[k];

            /* Code predictor of frame k from our own hidden, forced codes. */
            if (k < c.F) {
                int32_t codes[16];
                REQUIRE(q3t_code_predictor_frame(mm->cp, cs, mm->t, q3t_talker_hidden(s), c.first[k],
                                                 NULL, NULL, c.codes + k * 16, codes, cpl, NULL,
                                                 err, sizeof err) == CTTS_OK);
                for (int j = 0; j < 15; j++) {
                    const float *lj = cpl + (size_t)j * 2048;
                    const int am = nn_argmax(lj, 2048);
                    cp_argmax_bad += am != c.codes[k * 16 + j + 1];
                    wcp = fmax(wcp, fabs(lj[am] - cpt[(k * 15 + j) * 2]));
                }
            }
        }
        if (!(wh <= TOL_AR && wl <= TOL_AR && wt <= TOL_AR && wcp <= TOL_AR) || argmax_bad ||
            cp_argmax_bad)
            TEST_FAIL_AT("%s teacher-forced: hidden %g, logits/scores %g, top2 %g, predictor %g, "
                         "argmax mismatches talker %d predictor %d",
                         CASES[ci].id, wh, wl, wt, wcp, argmax_bad, cp_argmax_bad);
        free(top2), free(cpt), free(sc), free(row), free(cpl);
        q3t_cp_state_free(cs);
        q3t_talker_state_free(s);
        case_free(&c);
    }
    model_close(&m[0]);
    model_close(&m[1]);
}

/* Greedy free-running generation: every code and the stop step exact. */
static void free_running(int isa) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char err[256];
    model m[2];
    REQUIRE(model_open_isa(&m[0], 0, 2, isa, err, sizeof err) == 0);
    if (model_open_isa(&m[1], 1, 2, isa, err, sizeof err) != 0) {
        model_close(&m[0]);
        REQUIRE(!"model-base opens");
    }
    int n_checked = 0;
    for (int ci = 0; ci < N_CASES; ci++) {
        if (CASES[ci].sampled) continue;
        model *mm = &m[CASES[ci].base];
        const int D = q3t_talker_hidden_size(mm->t);
        case_data c;
        if (case_load(&c, CASES[ci].id, D) != 0) {
            TEST_FAIL_AT("%s: golden case unreadable", CASES[ci].id);
            continue;
        }
        q3t_codegen *g = NULL;
        REQUIRE(q3t_codegen_new(mm->t, mm->cp, &g, err, sizeof err) == CTTS_OK);
        q3t_codegen_params p;
        q3t_codegen_params_from_config(&mm->cfg.gen, &p);
        p.talker.do_sample = p.predictor.do_sample = 0;
        p.talker.repetition_penalty = CASES[ci].rep_pen;
        p.max_new_tokens = MAX_NEW;
        REQUIRE(q3t_codegen_begin(g, c.prefill, c.P, c.trailing, c.N, c.pad, &p, err, sizeof err) ==
                CTTS_OK);
        int32_t codes[16];
        int f = 0, first_bad = -1;
        double wh = diff_scores(q3t_codegen_last_hidden(g), c.hidden, D);
        ctts_status st;
        while ((st = q3t_codegen_next(g, codes, err, sizeof err)) == CTTS_OK) {
            if (f < c.F && first_bad < 0 && memcmp(codes, c.codes + f * 16, sizeof codes) != 0)
                first_bad = f;
            f++;
            if (f > MAX_NEW) break;
        }
        CHECK(st == CTTS_DONE);
        int n_first = 0;
        const int32_t *fc = q3t_codegen_first_codes(g, &n_first);
        const int eos_golden = c.first[c.n_first - 1] == mm->cfg.talker.codec_eos_token_id;
        const q3t_stop_reason want = eos_golden ? Q3T_STOP_EOS : Q3T_STOP_LIMIT;
        if (f != c.F || first_bad >= 0 || n_first != c.n_first ||
            memcmp(fc, c.first, sizeof(int32_t) * (size_t)c.n_first) != 0 ||
            q3t_codegen_stop_reason(g) != want || !(wh <= TOL_SINGLE))
            TEST_FAIL_AT("%s: frames %d (golden %d), first differing frame %d, first codes %d "
                         "(golden %d), stop %d (golden %d), hidden0 %g",
                         CASES[ci].id, f, c.F, first_bad, n_first, c.n_first,
                         (int)q3t_codegen_stop_reason(g), (int)want, wh);
        /* After the end, next keeps saying DONE. */
        CHECK(q3t_codegen_next(g, codes, err, sizeof err) == CTTS_DONE);
        n_checked++;
        q3t_codegen_free(g);
        case_free(&c);
    }
    CHECK_EQ_INT(n_checked, 10);
    model_close(&m[0]);
    model_close(&m[1]);
}

static void test_free_running(void) { free_running(CTTS_ISA_AUTO); }
/* The scalar reference kernels reach the same codes. */
static void test_free_running_scalar(void) { free_running(CTTS_ISA_SCALAR); }

/* c07: processed distributions of the sampled settings, replay, determinism. */
static void test_sampled(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char err[256];
    model m;
    REQUIRE(model_open(&m, 0, 1, err, sizeof err) == 0);
    const int D = q3t_talker_hidden_size(m.t), V = q3t_talker_vocab(m.t);
    case_data c;
    REQUIRE(case_load(&c, "c07_sampled_seed", D) == 0);
    float *cps = golden_array(c.st, "cp_frame0.scores", CTTS_DT_F32, NULL);
    REQUIRE(cps);
    q3t_codegen_params p;
    q3t_codegen_params_from_config(&m.cfg.gen, &p);
    CHECK(p.talker.do_sample && p.predictor.do_sample);
    CHECK_NEAR(p.talker.temperature, 0.9, 1e-7);
    CHECK_EQ_INT(p.talker.top_k, 50);
    CHECK_EQ_INT(p.predictor.top_k, 50);

    q3t_talker_state *s = NULL;
    q3t_cp_state *cs = NULL;
    REQUIRE(q3t_talker_state_new(m.t, &s, err, sizeof err) == CTTS_OK);
    REQUIRE(q3t_cp_state_new(m.cp, &cs, err, sizeof err) == CTTS_OK);
    float *sc = malloc(sizeof(float) * V), *row = malloc(sizeof(float) * D),
          *cpsc = malloc(sizeof(float) * 15 * 2048);
    REQUIRE(sc && row && cpsc);
    ctts_rng rng;
    ctts_rng_seed(&rng, 1234);

    /* Talker forwards 0..2 teacher-forced with the golden frames: the scores
     * after penalty, masks, temperature and top-k; the golden token must be
     * one our distribution can draw. */
    REQUIRE(q3t_talker_forward(m.t, s, c.prefill, c.P, err, sizeof err) == CTTS_OK);
    for (int k = 0; k < 3 && k < c.n_first; k++) {
        if (k > 0) {
            REQUIRE(q3t_code_predictor_frame_embed(m.cp, cs, m.t, c.codes + (k - 1) * 16, row, err,
                                                   sizeof err) == CTTS_OK);
            const float *add = k - 1 < c.N ? c.trailing + (size_t)(k - 1) * D : c.pad;
            for (int d = 0; d < D; d++) row[d] += add[d];
            REQUIRE(q3t_talker_forward(m.t, s, row, 1, err, sizeof err) == CTTS_OK);
        }
        const int tok = q3t_talker_choose(m.t, s, c.first, k, 0, &p.talker, &rng, sc);
        int finite = 0;
        for (int i = 0; i < V; i++) finite += !isinf(sc[i]);
        const double d = diff_scores(sc, c.scores3 + (size_t)k * V, V);
        if (!(d <= TOL_AR)) TEST_FAIL_AT("forward %d: processed scores differ by %g", k, d);
        CHECK(finite >= 1 && finite <= 50);
        CHECK(!isinf(sc[tok]));            /* our draw is inside the kept set */
        CHECK(!isinf(sc[c.first[k]]));     /* and so is the official one */
    }

    /* Predictor frame 0 from the golden hidden, forced to the golden codes:
     * scores after temperature 0.9 and top-k 50. */
    int32_t codes[16];
    REQUIRE(q3t_code_predictor_frame(m.cp, cs, m.t, c.hidden, c.first[0], &p.predictor, &rng,
                                     c.codes, codes, NULL, cpsc, err, sizeof err) == CTTS_OK);
    const double d = diff_scores(cpsc, cps, 15 * 2048);
    if (!(d <= TOL_SINGLE)) TEST_FAIL_AT("cp_frame0.scores differ by %g", d);
    CHECK(memcmp(codes, c.codes, sizeof codes) == 0); /* forced */

    /* Free-running sampled generation is deterministic for a seed and
     * different across seeds; every frame is made of valid codes. */
    int32_t run[2][MAX_NEW * 16];
    int nf[2] = {0, 0};
    for (int r = 0; r < 2; r++) {
        q3t_codegen *g = NULL;
        REQUIRE(q3t_codegen_new(m.t, m.cp, &g, err, sizeof err) == CTTS_OK);
        p.seed = 42;
        p.max_new_tokens = 12;
        REQUIRE(q3t_codegen_begin(g, c.prefill, c.P, c.trailing, c.N, c.pad, &p, err, sizeof err) ==
                CTTS_OK);
        while (nf[r] < MAX_NEW && q3t_codegen_next(g, run[r] + nf[r] * 16, err, sizeof err) == CTTS_OK)
            nf[r]++;
        q3t_codegen_free(g);
    }
    CHECK_EQ_INT(nf[0], nf[1]);
    CHECK(memcmp(run[0], run[1], sizeof(int32_t) * 16 * (size_t)nf[0]) == 0);
    CHECK(nf[0] <= 11);
    int bad = 0;
    for (int i = 0; i < nf[0] * 16; i++) bad += run[0][i] < 0 || run[0][i] >= 2048;
    CHECK_EQ_INT(bad, 0);

    free(sc), free(row), free(cpsc), free(cps);
    q3t_cp_state_free(cs);
    q3t_talker_state_free(s);
    case_free(&c);
    model_close(&m);
}

/* Thread count does not change a single bit of the outputs. */
static void test_threads_identical(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char err[256];
    int32_t out[2][MAX_NEW * 16];
    int nf[2] = {0, 0};
    float hid[2][32];
    for (int r = 0; r < 2; r++) {
        model m;
        REQUIRE(model_open(&m, 0, r ? 3 : 1, err, sizeof err) == 0);
        case_data c;
        REQUIRE(case_load(&c, "c03_long_auto", q3t_talker_hidden_size(m.t)) == 0);
        q3t_codegen *g = NULL;
        REQUIRE(q3t_codegen_new(m.t, m.cp, &g, err, sizeof err) == CTTS_OK);
        q3t_codegen_params p;
        q3t_codegen_params_from_config(&m.cfg.gen, &p);
        p.talker.do_sample = p.predictor.do_sample = 0;
        p.max_new_tokens = MAX_NEW;
        REQUIRE(q3t_codegen_begin(g, c.prefill, c.P, c.trailing, c.N, c.pad, &p, err, sizeof err) ==
                CTTS_OK);
        while (nf[r] < MAX_NEW && q3t_codegen_next(g, out[r] + nf[r] * 16, err, sizeof err) == CTTS_OK)
            nf[r]++;
        memcpy(hid[r], q3t_codegen_last_hidden(g), sizeof hid[r]);
        q3t_codegen_free(g);
        case_free(&c);
        model_close(&m);
    }
    CHECK_EQ_INT(nf[0], nf[1]);
    CHECK(memcmp(out[0], out[1], sizeof(int32_t) * 16 * (size_t)nf[0]) == 0);
    CHECK(memcmp(hid[0], hid[1], sizeof hid[0]) == 0);
}

/* The F16 KV cache (fast modes): talker hidden states along every golden
 * case, teacher forced, stay within 2e-3 of the official ones (the README's
 * autoregressive tolerance is 1e-3 for the F32 cache; half precision rounds
 * K and V by 2^-11 relative) with the same greedy first codes, across the
 * cache's growth from 64 rows (checked to happen). */
static void test_kv_f16(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char err[256];
    model m[2];
    REQUIRE(models_open(m, 2, err, sizeof err) == 0);
    q3t_talker_set_kv_f16(m[0].t, 1);
    q3t_talker_set_kv_f16(m[1].t, 1);
    int grown = 0;
    double worst = 0;
    for (int ci = 0; ci < N_CASES; ci++) {
        if (CASES[ci].sampled) continue;
        model *mm = &m[CASES[ci].base];
        const int D = q3t_talker_hidden_size(mm->t), V = q3t_talker_vocab(mm->t);
        case_data c;
        if (case_load(&c, CASES[ci].id, D) != 0) {
            TEST_FAIL_AT("%s: golden case unreadable", CASES[ci].id);
            continue;
        }
        q3t_talker_state *s = NULL;
        q3t_cp_state *cs = NULL;
        float *sc = malloc(sizeof(float) * V), *row = malloc(sizeof(float) * D);
        REQUIRE(sc && row);
        REQUIRE(q3t_talker_state_new(mm->t, &s, err, sizeof err) == CTTS_OK);
        REQUIRE(q3t_cp_state_new(mm->cp, &cs, err, sizeof err) == CTTS_OK);
        REQUIRE(q3t_talker_forward(mm->t, s, c.prefill, c.P, err, sizeof err) == CTTS_OK);
        double wh = 0;
        int argmax_bad = 0;
        for (int k = 0; k < c.n_first; k++) {
            if (k > 0) forced_step(mm, s, cs, &c, k, row);
            wh = fmax(wh, diff_scores(q3t_talker_hidden(s), c.hidden + (size_t)k * D, D));
            q3t_talker_process(mm->t, s, c.first, k, CASES[ci].rep_pen, sc);
            argmax_bad += nn_argmax(sc, V) != c.first[k];
        }
        grown |= q3t_talker_state_positions(s) > 64;
        worst = fmax(worst, wh);
        if (!(wh <= 2e-3) || argmax_bad)
            TEST_FAIL_AT("%s F16 KV: hidden %g, argmax mismatches %d", CASES[ci].id, wh, argmax_bad);
        free(sc), free(row);
        q3t_cp_state_free(cs);
        q3t_talker_state_free(s);
        case_free(&c);
    }
    CHECK(grown);
    CHECK(worst > 1e-5); /* really F16: 8.6e-4 here, the F32 cache 1.5e-6 */
    model_close(&m[0]);
    model_close(&m[1]);
}

/* q3t_talker_step_many: three sequences of different lengths stepped at once
 * give each the hidden state and logits of its own step (F32 and F16 caches). */
static void test_step_many(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char err[256];
    model m;
    REQUIRE(model_open(&m, 0, 2, err, sizeof err) == 0);
    const int D = q3t_talker_hidden_size(m.t), V = q3t_talker_vocab(m.t);
    for (int f16 = 0; f16 < 2; f16++) {
        q3t_talker_set_kv_f16(m.t, f16);
        q3t_talker_state *a[3], *b[3];
        case_data c[3];
        for (int i = 0; i < 3; i++) {
            REQUIRE(case_load(&c[i], CASES[i].id, D) == 0);
            REQUIRE(q3t_talker_state_new(m.t, &a[i], err, sizeof err) == CTTS_OK);
            REQUIRE(q3t_talker_state_new(m.t, &b[i], err, sizeof err) == CTTS_OK);
            REQUIRE(q3t_talker_forward(m.t, a[i], c[i].prefill, c[i].P, err, sizeof err) == CTTS_OK);
            REQUIRE(q3t_talker_forward(m.t, b[i], c[i].prefill, c[i].P, err, sizeof err) == CTTS_OK);
        }
        CHECK(c[0].P != c[1].P || c[1].P != c[2].P);
        float *x = malloc(sizeof(float) * 3 * D);
        REQUIRE(x);
        uint64_t seed = 99;
        int bad = 0;
        double worst = 0;
        for (int k = 0; k < 5; k++) {
            for (int j = 0; j < 3 * D; j++) x[j] = 0.5f * test_frand(&seed);
            REQUIRE(q3t_talker_step_many(m.t, a, 3, x, err, sizeof err) == CTTS_OK);
            for (int i = 0; i < 3; i++) {
                REQUIRE(q3t_talker_forward(m.t, b[i], x + (size_t)i * D, 1, err, sizeof err) == CTTS_OK);
                worst = fmax(worst, diff_scores(q3t_talker_hidden(a[i]), q3t_talker_hidden(b[i]), D));
                worst = fmax(worst, diff_scores(q3t_talker_logits(a[i]), q3t_talker_logits(b[i]), V));
                bad += nn_argmax(q3t_talker_logits(a[i]), V) != nn_argmax(q3t_talker_logits(b[i]), V);
                CHECK_EQ_INT(q3t_talker_state_positions(a[i]), q3t_talker_state_positions(b[i]));
            }
        }
        /* BF16 / F32 weights: the multi-row kernels sum in another order (1e-6
         * seen), which an F16 cache can round one step apart (5e-5 seen). */
        if (bad || !(worst <= (f16 ? 2e-4 : 1e-5)))
            TEST_FAIL_AT("%s cache: batched vs single steps differ by %g, %d argmax", f16 ? "F16" : "F32",
                         worst, bad);
        free(x);
        for (int i = 0; i < 3; i++) {
            q3t_talker_state_free(a[i]);
            q3t_talker_state_free(b[i]);
            case_free(&c[i]);
        }
    }
    CHECK(q3t_talker_step_many(m.t, NULL, 1, NULL, err, sizeof err) == CTTS_E_INVALID_ARG);
    model_close(&m);
}

/* q3t_codegen_next_many: three generations (different prompts, sampled with
 * their own seeds, one greedy) stepped together make the frames each makes
 * alone, and stop on their own. */
static void test_codegen_many(void) {
    if (!golden_present()) SKIP("no qwen3tts-tiny golden data");
    char err[256];
    model m;
    REQUIRE(model_open(&m, 0, 2, err, sizeof err) == 0);
    const int D = q3t_talker_hidden_size(m.t);
    enum { B = 3, FRAMES = 12 };
    case_data c[B];
    q3t_codegen_params p[B];
    q3t_codegen *a[B], *b[B];
    int32_t alone[B][FRAMES][16], many[B][FRAMES][16];
    int n_alone[B] = {0}, n_many[B] = {0};
    for (int i = 0; i < B; i++) {
        REQUIRE(case_load(&c[i], CASES[i].id, D) == 0);
        q3t_codegen_params_from_config(&m.cfg.gen, &p[i]);
        p[i].seed = 10 + (uint64_t)i;
        p[i].max_new_tokens = i == 1 ? 7 : FRAMES + 1; /* one stops early */
        if (i == 2) p[i].talker.do_sample = p[i].predictor.do_sample = 0;
        REQUIRE(q3t_codegen_new(m.t, m.cp, &a[i], err, sizeof err) == CTTS_OK);
        REQUIRE(q3t_codegen_new(m.t, m.cp, &b[i], err, sizeof err) == CTTS_OK);
        REQUIRE(q3t_codegen_begin(a[i], c[i].prefill, c[i].P, c[i].trailing, c[i].N, c[i].pad, &p[i], err, sizeof err) == CTTS_OK);
        REQUIRE(q3t_codegen_begin(b[i], c[i].prefill, c[i].P, c[i].trailing, c[i].N, c[i].pad, &p[i], err, sizeof err) == CTTS_OK);
        while (n_alone[i] < FRAMES && q3t_codegen_next(a[i], alone[i][n_alone[i]], err, sizeof err) == CTTS_OK)
            n_alone[i]++;
    }
    for (int f = 0; f < FRAMES; f++) {
        int32_t *out[B];
        ctts_status res[B];
        for (int i = 0; i < B; i++) out[i] = many[i][n_many[i] < FRAMES ? n_many[i] : FRAMES - 1];
        REQUIRE(q3t_codegen_next_many(b, B, out, res, err, sizeof err) == CTTS_OK);
        for (int i = 0; i < B; i++) n_many[i] += res[i] == CTTS_OK;
    }
    CHECK_EQ_INT(n_alone[1], 6);
    for (int i = 0; i < B; i++) {
        CHECK_EQ_INT(n_many[i], n_alone[i]);
        if (memcmp(many[i], alone[i], sizeof(int32_t) * 16 * (size_t)n_alone[i]))
            TEST_FAIL_AT("generation %d: batched frames differ from its frames alone", i);
        CHECK(q3t_codegen_stop_reason(a[i]) == q3t_codegen_stop_reason(b[i]) || n_alone[i] == FRAMES);
        q3t_codegen_free(a[i]), q3t_codegen_free(b[i]);
        case_free(&c[i]);
    }
    CHECK(memcmp(alone[0], alone[2], sizeof alone[0]) != 0);
    model_close(&m);
}

TEST_MAIN(T(test_bind_errors), T(test_single_pass), T(test_teacher_forced), T(test_free_running),
          T(test_free_running_scalar), T(test_sampled), T(test_threads_identical), T(test_kv_f16),
          T(test_step_many), T(test_codegen_many))
