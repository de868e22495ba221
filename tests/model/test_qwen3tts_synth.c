/*
 * Qwen3-TTS talker and code predictor on a synthetic in-memory model with the
 * shape variations the official goldens do not cover: GQA ratio 3, a code
 * predictor narrower than the talker (small_to_mtp_projection), 8 code
 * groups, a 64-entry codebook with the control ids packed after it
 * (vocab = 64 + 1024), BF16 and F32 weights mixed. Checked against a plain
 * double-precision re-computation written here (whole sequence, no cache),
 * plus the generation loop's bookkeeping (length limit, determinism).
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/rng.h"
#include "harness.h"
#include "models/qwen3tts/code_predictor.h"
#include "models/qwen3tts/q3t_codegen.h"
#include "models/qwen3tts/talker.h"

/* ---- synthetic weights ---- */

#define MAX_T 160

typedef struct {
    char name[96];
    ctts_tensor t;
    float *ref; /* the values as floats (after BF16 rounding) */
} wtensor;

typedef struct {
    wtensor w[MAX_T];
    int n;
    ctts_rng rng;
} wset;

static const ctts_tensor *wlookup(void *ctx, const char *name) {
    wset *s = ctx;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->w[i].name, name) == 0) return &s->w[i].t;
    return NULL;
}

static const float *wref(wset *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const float *wref(wset *s, const char *fmt, ...) {
    char name[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->w[i].name, name) == 0) return s->w[i].ref;
    fprintf(stderr, "    no synthetic tensor %s\n", name);
    abort();
}

/* Adds a tensor of random values (std scale, plus offset) stored as dt. */
static void wadd(wset *s, ctts_dtype dt, int64_t r, int64_t c, float scale, float offset,
                 const char *name) {
    wtensor *w = &s->w[s->n++];
    snprintf(w->name, sizeof w->name, "%s", name);
    const int64_t n = r * (c > 0 ? c : 1);
    w->ref = malloc(sizeof(float) * (size_t)n);
    const size_t esz = dt == CTTS_DT_BF16 ? 2 : 4;
    void *data = malloc(esz * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        float v = offset + scale * ctts_rng_normal(&s->rng);
        if (dt == CTTS_DT_BF16) {
            uint16_t h = ctts_f32_to_bf16(v);
            ((uint16_t *)data)[i] = h;
            v = ctts_bf16_to_f32(h);
        } else {
            ((float *)data)[i] = v;
        }
        w->ref[i] = v;
    }
    w->t = (ctts_tensor){.dtype = dt, .ndim = c > 0 ? 2 : 1, .shape = {r, c > 0 ? c : 0},
                        .data = data, .nbytes = esz * (size_t)n, .name = w->name};
    if (c <= 0) w->t.shape[1] = 0;
}

static void wset_free(wset *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->w[i].ref);
        free(s->w[i].t.data);
    }
    s->n = 0;
}

static void add_stack(wset *s, const char *pre, const q3t_decoder_config *d, ctts_dtype dt) {
    char n[96];
    const int D = d->hidden_size, F = d->intermediate_size, Dh = d->head_dim,
              QD = d->num_attention_heads * Dh, KD = d->num_key_value_heads * Dh;
    const float ws = 0.3f;
    for (int l = 0; l < d->num_hidden_layers; l++) {
#define L(suffix) (snprintf(n, sizeof n, "%s.layers.%d.%s", pre, l, suffix), n)
        wadd(s, dt, D, 0, 0.1f, 1.0f, L("input_layernorm.weight"));
        wadd(s, dt, D, 0, 0.1f, 1.0f, L("post_attention_layernorm.weight"));
        wadd(s, dt, Dh, 0, 0.1f, 1.0f, L("self_attn.q_norm.weight"));
        wadd(s, dt, Dh, 0, 0.1f, 1.0f, L("self_attn.k_norm.weight"));
        wadd(s, dt, QD, D, ws, 0, L("self_attn.q_proj.weight"));
        wadd(s, dt, KD, D, ws, 0, L("self_attn.k_proj.weight"));
        wadd(s, dt, KD, D, ws, 0, L("self_attn.v_proj.weight"));
        wadd(s, dt, D, QD, ws, 0, L("self_attn.o_proj.weight"));
        wadd(s, dt, F, D, ws, 0, L("mlp.gate_proj.weight"));
        wadd(s, dt, F, D, ws, 0, L("mlp.up_proj.weight"));
        wadd(s, dt, D, F, ws, 0, L("mlp.down_proj.weight"));
#undef L
    }
    snprintf(n, sizeof n, "%s.norm.weight", pre);
    wadd(s, dt, D, 0, 0.1f, 1.0f, n);
}

static void make_config(q3t_talker_config *c) {
    memset(c, 0, sizeof *c);
    c->dec = (q3t_decoder_config){.hidden_size = 32, .intermediate_size = 40,
                                  .num_hidden_layers = 2, .num_attention_heads = 6,
                                  .num_key_value_heads = 2, .head_dim = 8, .rms_norm_eps = 1e-6f,
                                  .rope_theta = 1e6f, .max_position_embeddings = 4096,
                                  .vocab_size = 64 + 1024, .num_code_groups = 8};
    c->cp = (q3t_decoder_config){.hidden_size = 24, .intermediate_size = 36,
                                 .num_hidden_layers = 2, .num_attention_heads = 6,
                                 .num_key_value_heads = 2, .head_dim = 8, .rms_norm_eps = 1e-6f,
                                 .rope_theta = 1e6f, .max_position_embeddings = 65536,
                                 .vocab_size = 64, .num_code_groups = 8};
    c->text_vocab_size = 50;
    c->text_hidden_size = 12;
    c->codec_pad_id = 164;
    c->codec_bos_id = 165;
    c->codec_eos_token_id = 166;
}

static void make_weights(wset *s, const q3t_talker_config *c) {
    memset(s, 0, sizeof *s);
    ctts_rng_seed(&s->rng, 2024);
    const int D = c->dec.hidden_size, Dc = c->cp.hidden_size, TH = c->text_hidden_size;
    char n[96];
    wadd(s, CTTS_DT_BF16, c->text_vocab_size, TH, 1.0f, 0, "talker.model.text_embedding.weight");
    wadd(s, CTTS_DT_BF16, TH, TH, 0.3f, 0, "talker.text_projection.linear_fc1.weight");
    wadd(s, CTTS_DT_BF16, TH, 0, 0.1f, 0, "talker.text_projection.linear_fc1.bias");
    wadd(s, CTTS_DT_F32, D, TH, 0.3f, 0, "talker.text_projection.linear_fc2.weight");
    wadd(s, CTTS_DT_F32, D, 0, 0.1f, 0, "talker.text_projection.linear_fc2.bias");
    wadd(s, CTTS_DT_BF16, c->dec.vocab_size, D, 1.0f, 0, "talker.model.codec_embedding.weight");
    wadd(s, CTTS_DT_BF16, c->dec.vocab_size, D, 0.3f, 0, "talker.codec_head.weight");
    add_stack(s, "talker.model", &c->dec, CTTS_DT_BF16);
    for (int g = 0; g < c->dec.num_code_groups - 1; g++) {
        snprintf(n, sizeof n, "talker.code_predictor.model.codec_embedding.%d.weight", g);
        wadd(s, CTTS_DT_BF16, c->cp.vocab_size, D, 1.0f, 0, n);
        snprintf(n, sizeof n, "talker.code_predictor.lm_head.%d.weight", g);
        wadd(s, CTTS_DT_F32, c->cp.vocab_size, Dc, 0.5f, 0, n);
    }
    wadd(s, CTTS_DT_BF16, Dc, D, 0.3f, 0, "talker.code_predictor.small_to_mtp_projection.weight");
    wadd(s, CTTS_DT_BF16, Dc, 0, 0.1f, 0, "talker.code_predictor.small_to_mtp_projection.bias");
    add_stack(s, "talker.code_predictor.model", &c->cp, CTTS_DT_F32);
}

/* ---- double-precision reference (whole sequence, no cache) ---- */

static void ref_linear(double *y, const double *x, const float *W, const float *b, int T, int N,
                       int K) {
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) {
            double a = b ? b[n] : 0;
            for (int k = 0; k < K; k++) a += x[t * K + k] * W[n * K + k];
            y[t * N + n] = a;
        }
}

static void ref_rms(double *y, const double *x, const float *w, int T, int D, double eps) {
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int d = 0; d < D; d++) ss += x[t * D + d] * x[t * D + d];
        const double r = 1 / sqrt(ss / D + eps);
        for (int d = 0; d < D; d++) y[t * D + d] = x[t * D + d] * r * w[d];
    }
}

static void ref_rope(double *x, int T, int H, int Dh, double theta) {
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Dh / 2; i++) {
                const double a = t / pow(theta, 2.0 * i / Dh);
                double *p = x + (t * H + h) * Dh;
                const double u = p[i], v = p[i + Dh / 2];
                p[i] = u * cos(a) - v * sin(a);
                p[i + Dh / 2] = v * cos(a) + u * sin(a);
            }
}

/* Decoder stack over x [T, D] -> final-norm hidden of the last row. */
static void ref_stack(wset *s, const char *pre, const q3t_decoder_config *d, const double *x_in,
                      int T, double *out) {
    const int D = d->hidden_size, F = d->intermediate_size, Dh = d->head_dim,
              H = d->num_attention_heads, Hk = d->num_key_value_heads;
    const double eps = d->rms_norm_eps;
    double *x = malloc(sizeof(double) * T * D), *h = malloc(sizeof(double) * T * D),
           *q = malloc(sizeof(double) * T * H * Dh), *k = malloc(sizeof(double) * T * Hk * Dh),
           *v = malloc(sizeof(double) * T * Hk * Dh), *a = malloc(sizeof(double) * T * H * Dh),
           *o = malloc(sizeof(double) * T * D), *g = malloc(sizeof(double) * T * F),
           *u = malloc(sizeof(double) * T * F), *sc = malloc(sizeof(double) * T);
    memcpy(x, x_in, sizeof(double) * T * D);
    for (int l = 0; l < d->num_hidden_layers; l++) {
        ref_rms(h, x, wref(s, "%s.layers.%d.input_layernorm.weight", pre, l), T, D, eps);
        ref_linear(q, h, wref(s, "%s.layers.%d.self_attn.q_proj.weight", pre, l), NULL, T, H * Dh, D);
        ref_linear(k, h, wref(s, "%s.layers.%d.self_attn.k_proj.weight", pre, l), NULL, T, Hk * Dh, D);
        ref_linear(v, h, wref(s, "%s.layers.%d.self_attn.v_proj.weight", pre, l), NULL, T, Hk * Dh, D);
        ref_rms(q, q, wref(s, "%s.layers.%d.self_attn.q_norm.weight", pre, l), T * H, Dh, eps);
        ref_rms(k, k, wref(s, "%s.layers.%d.self_attn.k_norm.weight", pre, l), T * Hk, Dh, eps);
        ref_rope(q, T, H, Dh, d->rope_theta);
        ref_rope(k, T, Hk, Dh, d->rope_theta);
        for (int t = 0; t < T; t++)
            for (int hh = 0; hh < H; hh++) {
                const int kh = hh / (H / Hk);
                double mx = -INFINITY, den = 0;
                for (int j = 0; j <= t; j++) {
                    double acc = 0;
                    for (int e = 0; e < Dh; e++) acc += q[(t * H + hh) * Dh + e] * k[(j * Hk + kh) * Dh + e];
                    sc[j] = acc / sqrt((double)Dh);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int j = 0; j <= t; j++) den += exp(sc[j] - mx);
                for (int e = 0; e < Dh; e++) {
                    double acc = 0;
                    for (int j = 0; j <= t; j++) acc += exp(sc[j] - mx) / den * v[(j * Hk + kh) * Dh + e];
                    a[(t * H + hh) * Dh + e] = acc;
                }
            }
        ref_linear(o, a, wref(s, "%s.layers.%d.self_attn.o_proj.weight", pre, l), NULL, T, D, H * Dh);
        for (int i = 0; i < T * D; i++) x[i] += o[i];
        ref_rms(h, x, wref(s, "%s.layers.%d.post_attention_layernorm.weight", pre, l), T, D, eps);
        ref_linear(g, h, wref(s, "%s.layers.%d.mlp.gate_proj.weight", pre, l), NULL, T, F, D);
        ref_linear(u, h, wref(s, "%s.layers.%d.mlp.up_proj.weight", pre, l), NULL, T, F, D);
        for (int i = 0; i < T * F; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
        ref_linear(o, g, wref(s, "%s.layers.%d.mlp.down_proj.weight", pre, l), NULL, T, D, F);
        for (int i = 0; i < T * D; i++) x[i] += o[i];
    }
    ref_rms(out, x + (T - 1) * D, wref(s, "%s.norm.weight", pre), 1, D, eps);
    free(x), free(h), free(q), free(k), free(v), free(a), free(o), free(g), free(u), free(sc);
}

static double maxdiff_fd(const float *a, const double *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

/* ---- tests ---- */

typedef struct {
    q3t_talker_config cfg;
    wset w;
    ctts_backend *be;
    q3t_talker *t;
    q3t_code_predictor *cp;
} synth;

static int synth_open(synth *m, int threads) {
    char err[256];
    memset(m, 0, sizeof *m);
    make_config(&m->cfg);
    make_weights(&m->w, &m->cfg);
    m->be = ctts_backend_cpu_new(threads, CTTS_ISA_AUTO);
    if (!m->be) return -1;
    if (q3t_talker_load(m->be, &m->cfg, wlookup, &m->w, &m->t, err, sizeof err) != CTTS_OK ||
        q3t_code_predictor_load(m->be, &m->cfg, wlookup, &m->w, &m->cp, err, sizeof err) != CTTS_OK) {
        fprintf(stderr, "    %s\n", err);
        return -1;
    }
    return 0;
}

static void synth_close(synth *m) {
    q3t_code_predictor_free(m->cp);
    q3t_talker_free(m->t);
    if (m->be) m->be->destroy(m->be);
    wset_free(&m->w);
}

static void test_talker_vs_reference(void) {
    synth m;
    char err[256];
    if (synth_open(&m, 2) != 0) {
        synth_close(&m);
        REQUIRE(!"synthetic model loads");
    }
    const int D = 32, V = m.cfg.dec.vocab_size, TH = 12, P = 7, STEPS = 4;
    q3t_talker_state *s = NULL;
    REQUIRE(q3t_talker_state_new(m.t, &s, err, sizeof err) == CTTS_OK);

    /* Text embedding: fc2(silu(fc1(E[id]) + b1)) + b2. */
    const int32_t ids[3] = {0, 17, 49};
    float te[3 * 32];
    REQUIRE(q3t_talker_embed_text(m.t, s, ids, 3, te, err, sizeof err) == CTTS_OK);
    double e[12], h1[12], want[32];
    double worst = 0;
    for (int i = 0; i < 3; i++) {
        const float *row = wref(&m.w, "talker.model.text_embedding.weight") + ids[i] * TH;
        for (int j = 0; j < TH; j++) e[j] = row[j];
        ref_linear(h1, e, wref(&m.w, "talker.text_projection.linear_fc1.weight"),
                   wref(&m.w, "talker.text_projection.linear_fc1.bias"), 1, TH, TH);
        for (int j = 0; j < TH; j++) h1[j] = h1[j] / (1 + exp(-h1[j]));
        ref_linear(want, h1, wref(&m.w, "talker.text_projection.linear_fc2.weight"),
                   wref(&m.w, "talker.text_projection.linear_fc2.bias"), 1, D, TH);
        worst = fmax(worst, maxdiff_fd(te + i * D, want, D));
    }
    CHECK(worst < 1e-5);

    /* Prefill + steps against the whole-sequence reference. */
    double *seq = malloc(sizeof(double) * (P + STEPS) * D), hid[32], lg[1088];
    float *rows = malloc(sizeof(float) * (P + STEPS) * D);
    ctts_rng r;
    ctts_rng_seed(&r, 5);
    for (int i = 0; i < (P + STEPS) * D; i++) seq[i] = rows[i] = ctts_rng_normal(&r);
    double wh = 0, wl = 0;
    for (int k = 0; k <= STEPS; k++) {
        const int T = k == 0 ? P : 1, n = P + k;
        REQUIRE(q3t_talker_forward(m.t, s, rows + (size_t)(n - T) * D, T, err, sizeof err) == CTTS_OK);
        CHECK_EQ_INT(q3t_talker_state_positions(s), n);
        ref_stack(&m.w, "talker.model", &m.cfg.dec, seq, n, hid);
        ref_linear(lg, hid, wref(&m.w, "talker.codec_head.weight"), NULL, 1, V, D);
        wh = fmax(wh, maxdiff_fd(q3t_talker_hidden(s), hid, D));
        wl = fmax(wl, maxdiff_fd(q3t_talker_logits(s), lg, V));
    }
    if (!(wh < 1e-4 && wl < 1e-4)) TEST_FAIL_AT("talker vs reference: hidden %g, logits %g", wh, wl);

    /* Suppression follows the official rule: ids [V-1024, V) except EOS. */
    float *sc = malloc(sizeof(float) * V);
    q3t_talker_process(m.t, s, NULL, 0, 1.0f, sc);
    CHECK(!isinf(sc[63]) && isinf(sc[64]) && isinf(sc[V - 1]));
    CHECK(isinf(sc[166])); /* EOS blocked before min_new_tokens */
    const int32_t hist[2] = {3, 3};
    q3t_talker_process(m.t, s, hist, 2, 1.0f, sc);
    CHECK(!isinf(sc[166]) && isinf(sc[165]));
    free(sc), free(seq), free(rows);
    q3t_talker_state_free(s);
    synth_close(&m);
}

static void test_predictor_vs_reference(void) {
    synth m;
    char err[256];
    if (synth_open(&m, 1) != 0) {
        synth_close(&m);
        REQUIRE(!"synthetic model loads");
    }
    const int D = 32, Dc = 24, Vc = 64, G = 8;
    CHECK_EQ_INT(q3t_code_predictor_groups(m.cp), G);
    q3t_cp_state *cs = NULL;
    REQUIRE(q3t_cp_state_new(m.cp, &cs, err, sizeof err) == CTTS_OK);
    float hidden[32], logits[7 * 64];
    ctts_rng r;
    ctts_rng_seed(&r, 9);
    for (int i = 0; i < D; i++) hidden[i] = ctts_rng_normal(&r);
    int32_t codes[8];
    const int code0 = 41;
    REQUIRE(q3t_code_predictor_frame(m.cp, cs, m.t, hidden, code0, NULL, NULL, NULL, codes, logits,
                                     NULL, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(codes[0], code0);

    /* Reference: inputs [hidden, C(code0), E_1(c1), ...] through the projection. */
    double in[8 * 32], x[8 * 24], hid[24], lg[64];
    for (int i = 0; i < D; i++) in[i] = hidden[i];
    const float *c0 = wref(&m.w, "talker.model.codec_embedding.weight") + code0 * D;
    for (int i = 0; i < D; i++) in[D + i] = c0[i];
    double worst = 0;
    int greedy_bad = 0;
    for (int j = 0; j < G - 1; j++) {
        const int T = j + 2;
        if (j > 0) {
            const float *e = wref(&m.w, "talker.code_predictor.model.codec_embedding.%d.weight", j - 1) +
                             codes[j] * D;
            for (int i = 0; i < D; i++) in[(T - 1) * D + i] = e[i];
        }
        ref_linear(x, in, wref(&m.w, "talker.code_predictor.small_to_mtp_projection.weight"),
                   wref(&m.w, "talker.code_predictor.small_to_mtp_projection.bias"), T, Dc, D);
        ref_stack(&m.w, "talker.code_predictor.model", &m.cfg.cp, x, T, hid);
        ref_linear(lg, hid, wref(&m.w, "talker.code_predictor.lm_head.%d.weight", j), NULL, 1, Vc, Dc);
        worst = fmax(worst, maxdiff_fd(logits + j * Vc, lg, Vc));
        int am = 0;
        for (int i = 1; i < Vc; i++)
            if (lg[i] > lg[am]) am = i;
        greedy_bad += am != codes[j + 1];
    }
    if (!(worst < 1e-4) || greedy_bad)
        TEST_FAIL_AT("predictor vs reference: logits %g, greedy mismatches %d", worst, greedy_bad);

    /* Frame embedding = E_0(c0) + sum E_g(c_g). */
    float emb[32];
    REQUIRE(q3t_code_predictor_frame_embed(m.cp, cs, m.t, codes, emb, err, sizeof err) == CTTS_OK);
    double want[32];
    for (int i = 0; i < D; i++) want[i] = c0[i];
    for (int g = 1; g < G; g++) {
        const float *e = wref(&m.w, "talker.code_predictor.model.codec_embedding.%d.weight", g - 1) +
                         codes[g] * D;
        for (int i = 0; i < D; i++) want[i] += e[i];
    }
    CHECK(maxdiff_fd(emb, want, D) < 1e-5);
    /* A code of the wrong codebook range is an error. */
    codes[3] = Vc;
    CHECK(q3t_code_predictor_frame_embed(m.cp, cs, m.t, codes, emb, err, sizeof err) ==
          CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "group 3");
    q3t_cp_state_free(cs);
    synth_close(&m);
}

/* A prompt longer than the talker's row chunk: one forward equals row-by-row
 * forwards and the whole-sequence reference; long embedding calls equal
 * short ones. */
static void test_long_prompt(void) {
    synth m;
    char err[256];
    if (synth_open(&m, 2) != 0) {
        synth_close(&m);
        REQUIRE(!"synthetic model loads");
    }
    enum { P = 600, D = 32 };
    float *rows = malloc(sizeof(float) * P * D);
    double *seq = malloc(sizeof(double) * P * D), hid[32];
    ctts_rng r;
    ctts_rng_seed(&r, 11);
    for (int i = 0; i < P * D; i++) seq[i] = rows[i] = ctts_rng_normal(&r);
    q3t_talker_state *a = NULL, *b = NULL;
    REQUIRE(q3t_talker_state_new(m.t, &a, err, sizeof err) == CTTS_OK);
    REQUIRE(q3t_talker_state_new(m.t, &b, err, sizeof err) == CTTS_OK);
    REQUIRE(q3t_talker_forward(m.t, a, rows, P, err, sizeof err) == CTTS_OK);
    for (int i = 0; i < P; i++)
        REQUIRE(q3t_talker_forward(m.t, b, rows + i * D, 1, err, sizeof err) == CTTS_OK);
    CHECK_EQ_INT(q3t_talker_state_positions(a), P);
    double d = 0;
    for (int i = 0; i < D; i++) d = fmax(d, fabs(q3t_talker_hidden(a)[i] - q3t_talker_hidden(b)[i]));
    CHECK(d < 1e-5);
    ref_stack(&m.w, "talker.model", &m.cfg.dec, seq, P, hid);
    CHECK(maxdiff_fd(q3t_talker_hidden(a), hid, D) < 1e-4);

    /* Embeddings: 700 ids at once equal the same ids in small calls. */
    enum { N = 700 };
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = (i * 7) % 50;
    float *big = malloc(sizeof(float) * N * D), small[3 * D];
    REQUIRE(q3t_talker_embed_text(m.t, a, ids, N, big, err, sizeof err) == CTTS_OK);
    int bad = 0;
    for (int i = 0; i < N; i += 3) {
        const int k = N - i < 3 ? N - i : 3;
        REQUIRE(q3t_talker_embed_text(m.t, b, ids + i, k, small, err, sizeof err) == CTTS_OK);
        for (int j = 0; j < k * D; j++) bad += fabsf(small[j] - big[i * D + j]) > 1e-6f;
    }
    for (int i = 0; i < N; i++) ids[i] = (i * 13) % 1088;
    REQUIRE(q3t_talker_embed_codec(m.t, a, ids, N, big, err, sizeof err) == CTTS_OK);
    const float *tab = wref(&m.w, "talker.model.codec_embedding.weight");
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) bad += big[i * D + j] != tab[ids[i] * D + j];
    CHECK_EQ_INT(bad, 0);
    free(big), free(rows), free(seq);
    q3t_talker_state_free(a);
    q3t_talker_state_free(b);
    synth_close(&m);
}

/* The loop's bookkeeping: max_new_tokens N gives at most N-1 frames, the
 * first codes are audio codes or EOS, sampled runs repeat for a seed, and
 * begin() restarts cleanly. */
static void test_codegen_loop(void) {
    synth m;
    char err[256];
    if (synth_open(&m, 2) != 0) {
        synth_close(&m);
        REQUIRE(!"synthetic model loads");
    }
    const int D = 32, P = 5;
    float rows[5 * 32], trailing[2 * 32], pad[32];
    ctts_rng r;
    ctts_rng_seed(&r, 3);
    for (int i = 0; i < P * D; i++) rows[i] = ctts_rng_normal(&r);
    for (int i = 0; i < 2 * D; i++) trailing[i] = ctts_rng_normal(&r);
    for (int i = 0; i < D; i++) pad[i] = ctts_rng_normal(&r);
    q3t_codegen *g = NULL;
    REQUIRE(q3t_codegen_new(m.t, m.cp, &g, err, sizeof err) == CTTS_OK);
    q3t_codegen_params p = {
        .talker = {.do_sample = 1, .temperature = 0.9f, .top_k = 50, .top_p = 0.8f,
                   .repetition_penalty = 1.05f},
        .predictor = {.do_sample = 1, .temperature = 0.9f, .top_k = 50, .top_p = 1.0f},
        .max_new_tokens = 6,
        .seed = 77,
    };
    int32_t a[8 * 8], b[8 * 8], codes[8];
    int na = 0, nb = 0;
    ctts_status st;

    /* next before begin is a state error. */
    CHECK(q3t_codegen_next(g, codes, err, sizeof err) == CTTS_E_STATE);

    REQUIRE(q3t_codegen_begin(g, rows, P, trailing, 2, pad, &p, err, sizeof err) == CTTS_OK);
    while ((st = q3t_codegen_next(g, a + na * 8, err, sizeof err)) == CTTS_OK && na < 8) na++;
    CHECK(st == CTTS_DONE);
    int nf = 0;
    const int32_t *fc = q3t_codegen_first_codes(g, &nf);
    CHECK(nf <= 6 && na == nf - 1);
    for (int i = 0; i < nf; i++) CHECK(fc[i] < 64 || fc[i] == 166);
    if (q3t_codegen_stop_reason(g) == Q3T_STOP_LIMIT) CHECK_EQ_INT(na, 5);
    for (int i = 0; i < na; i++) {
        CHECK(a[i * 8] < 64);
        for (int j = 1; j < 8; j++) CHECK(a[i * 8 + j] >= 0 && a[i * 8 + j] < 64);
    }
    /* Same seed, same frames (begin restarts the talker cache and the RNG). */
    REQUIRE(q3t_codegen_begin(g, rows, P, trailing, 2, pad, &p, err, sizeof err) == CTTS_OK);
    while (q3t_codegen_next(g, b + nb * 8, err, sizeof err) == CTTS_OK && nb < 8) nb++;
    CHECK_EQ_INT(na, nb);
    CHECK(memcmp(a, b, sizeof(int32_t) * 8 * (size_t)na) == 0);

    /* max_new_tokens 1: the only first code never gets a frame. */
    p.max_new_tokens = 1;
    REQUIRE(q3t_codegen_begin(g, rows, P, NULL, 0, pad, &p, err, sizeof err) == CTTS_OK);
    CHECK(q3t_codegen_next(g, codes, err, sizeof err) == CTTS_DONE);
    CHECK(q3t_codegen_stop_reason(g) == Q3T_STOP_LIMIT);

    /* Bad parameters are refused with a message. */
    p.max_new_tokens = 0;
    CHECK(q3t_codegen_begin(g, rows, P, NULL, 0, pad, &p, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "max_new_tokens");
    p.max_new_tokens = 4;
    p.talker.temperature = -1;
    CHECK(q3t_codegen_begin(g, rows, P, NULL, 0, pad, &p, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "temperature");
    q3t_codegen_free(g);
    synth_close(&m);
}

TEST_MAIN(T(test_talker_vs_reference), T(test_predictor_vs_reference), T(test_long_prompt),
          T(test_codegen_loop))
