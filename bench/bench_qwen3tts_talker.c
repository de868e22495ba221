/*
 * Qwen3-TTS talker + code predictor speed at the real 0.6B shape with random
 * weights built in memory (no files): 28-layer talker (hidden 1024, 16/8
 * heads x 128, SwiGLU 3072, codec vocab 3072) and 5-layer code predictor
 * (15 heads of 2048, 15 embeddings). The text embedding table is shrunk to
 * 4096 rows (only gathered, never multiplied: it costs RSS, not time).
 *
 * Reports per 80 ms frame: talker step, code-predictor frame (15 passes),
 * frame embedding, their sum, and x real time (80 ms / frame time) for the
 * talker side alone (the speech decoder is not included), plus the prefill
 * of a 64-row prompt. Linear weights in BF16 (as released) or converted to
 * Q8_0 / Q4_0 when the backend takes them.
 *
 * With a batch size B > 1 it also runs B generations one after another and
 * then together (q3t_codegen_next_many, batched decode) and compares codes.
 *
 * Usage: bench_qwen3tts_talker [threads (2)] [frames (12)] [bf16|q8_0|q4_0|f32] [B (1)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "models/qwen3tts/code_predictor.h"
#include "models/qwen3tts/q3t_codegen.h"
#include "models/qwen3tts/talker.h"
#include "quant/quant.h"

#define MAX_W 512

typedef struct {
    char name[96];
    ctts_tensor t;
} wt;

typedef struct {
    wt w[MAX_W];
    int n;
    unsigned seed;
    ctts_dtype lin_dt;
    size_t bytes;
} wset;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const ctts_tensor *lookup(void *ctx, const char *name) {
    wset *s = ctx;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->w[i].name, name) == 0) return &s->w[i].t;
    return NULL;
}

static float rnd(unsigned *seed) {
    *seed = *seed * 1664525u + 1013904223u;
    return (float)((*seed >> 9) & 0xffff) / 65536.0f - 0.5f;
}

/* A [r, c] tensor (c == 0: vector [r]); linear weights (lin) in s->lin_dt,
 * the rest BF16. Values uniform in +-scale/2 (+1 for norm weights). */
static int add(wset *s, const char *name, int64_t r, int64_t c, int lin, float scale, float off) {
    if (s->n == MAX_W) return -1;
    wt *w = &s->w[s->n++];
    snprintf(w->name, sizeof w->name, "%s", name);
    const int64_t cols = c > 0 ? c : r, rows = c > 0 ? r : 1;
    const ctts_dtype dt = lin ? s->lin_dt : CTTS_DT_BF16;
    const size_t bytes = ctts_dtype_row_bytes(dt, cols) * (size_t)rows;
    void *data = malloc(bytes);
    float *row = malloc(sizeof(float) * (size_t)cols);
    if (!data || !row) return -1;
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t j = 0; j < cols; j++) row[j] = off + scale * rnd(&s->seed);
        char *dst = (char *)data + (size_t)i * ctts_dtype_row_bytes(dt, cols);
        if (dt == CTTS_DT_BF16)
            for (int64_t j = 0; j < cols; j++) ((uint16_t *)dst)[j] = ctts_f32_to_bf16(row[j]);
        else if (dt == CTTS_DT_F32)
            memcpy(dst, row, sizeof(float) * (size_t)cols);
        else if (dt == CTTS_DT_Q8_0)
            quant_row_q8_0_ref(row, (block_q8_0 *)dst, (int)cols);
        else
            quant_row_q4_0_ref(row, (block_q4_0 *)dst, (int)cols);
    }
    free(row);
    w->t = (ctts_tensor){.dtype = dt, .ndim = c > 0 ? 2 : 1, .shape = {r, c}, .data = data,
                         .nbytes = bytes, .name = w->name};
    s->bytes += bytes;
    return 0;
}

static int add_stack(wset *s, const char *pre, const q3t_decoder_config *d) {
    char n[128];
    const int D = d->hidden_size, F = d->intermediate_size, Dh = d->head_dim,
              QD = d->num_attention_heads * Dh, KD = d->num_key_value_heads * Dh;
    int rc = 0;
    for (int l = 0; l < d->num_hidden_layers; l++) {
#define L(suffix) (snprintf(n, sizeof n, "%s.layers.%d.%s", pre, l, suffix), n)
        rc |= add(s, L("input_layernorm.weight"), D, 0, 0, 0.1f, 1.0f);
        rc |= add(s, L("post_attention_layernorm.weight"), D, 0, 0, 0.1f, 1.0f);
        rc |= add(s, L("self_attn.q_norm.weight"), Dh, 0, 0, 0.1f, 1.0f);
        rc |= add(s, L("self_attn.k_norm.weight"), Dh, 0, 0, 0.1f, 1.0f);
        rc |= add(s, L("self_attn.q_proj.weight"), QD, D, 1, 0.1f, 0);
        rc |= add(s, L("self_attn.k_proj.weight"), KD, D, 1, 0.1f, 0);
        rc |= add(s, L("self_attn.v_proj.weight"), KD, D, 1, 0.1f, 0);
        rc |= add(s, L("self_attn.o_proj.weight"), D, QD, 1, 0.1f, 0);
        rc |= add(s, L("mlp.gate_proj.weight"), F, D, 1, 0.1f, 0);
        rc |= add(s, L("mlp.up_proj.weight"), F, D, 1, 0.1f, 0);
        rc |= add(s, L("mlp.down_proj.weight"), D, F, 1, 0.1f, 0);
#undef L
    }
    snprintf(n, sizeof n, "%s.norm.weight", pre);
    rc |= add(s, n, D, 0, 0, 0.1f, 1.0f);
    return rc;
}

/* B generations (seeds 1..B) one after another, then stepped together by
 * q3t_codegen_next_many: time per frame of each, and whether the codes agree. */
static int bench_batch(const q3t_talker *t, const q3t_code_predictor *cp, const float *rows, int P,
                       const float *pad, const q3t_codegen_params *p0, int B, int frames) {
    char err[256];
    q3t_codegen *g[Q3T_MAX_BATCH];
    int32_t *alone = calloc((size_t)B * frames * 16, sizeof(int32_t));
    int32_t *many = calloc((size_t)B * frames * 16, sizeof(int32_t));
    if (!alone || !many || B > Q3T_MAX_BATCH) return 1;
    double t_alone = 0, t_many = 0;
    int made = 0, same = 1;
    for (int i = 0; i < B; i++) {
        q3t_codegen_params p = *p0;
        p.seed = 1 + (uint64_t)i;
        if (q3t_codegen_new(t, cp, &g[i], err, sizeof err) ||
            q3t_codegen_begin(g[i], rows, P, NULL, 0, pad, &p, err, sizeof err))
            return fprintf(stderr, "%s\n", err), 1;
        const double t0 = now_s();
        for (int f = 0; f < frames; f++)
            if (q3t_codegen_next(g[i], alone + ((size_t)i * frames + f) * 16, err, sizeof err) != CTTS_OK)
                return fprintf(stderr, "generation %d stopped at frame %d\n", i, f), 1;
        t_alone += now_s() - t0;
        p.seed = 1 + (uint64_t)i; /* again, for the batched run */
        if (q3t_codegen_begin(g[i], rows, P, NULL, 0, pad, &p, err, sizeof err))
            return fprintf(stderr, "%s\n", err), 1;
    }
    const double t0 = now_s();
    for (int f = 0; f < frames; f++) {
        int32_t *out[Q3T_MAX_BATCH];
        ctts_status res[Q3T_MAX_BATCH];
        for (int i = 0; i < B; i++) out[i] = many + ((size_t)i * frames + f) * 16;
        if (q3t_codegen_next_many(g, B, out, res, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
        for (int i = 0; i < B; i++) made += res[i] == CTTS_OK;
    }
    t_many = now_s() - t0;
    same = made == B * frames && !memcmp(alone, many, (size_t)B * frames * 16 * sizeof(int32_t));
    printf("  batch of %d: one after another %.1f ms/frame, together %.1f ms per round of %d frames "
           "-> %.2fx aggregate real time (%.2fx alone); codes %s\n",
           B, 1e3 * t_alone / (B * frames), 1e3 * t_many / frames, B,
           0.08 * B * frames / t_many, 0.08 * B * frames / t_alone,
           same ? "identical" : "DIFFERENT");
    for (int i = 0; i < B; i++) q3t_codegen_free(g[i]);
    free(alone), free(many);
    return same ? 0 : 1;
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const int frames = argc > 2 ? atoi(argv[2]) : 12;
    const char *dts = argc > 3 ? argv[3] : "bf16";
    const int batch = argc > 4 ? atoi(argv[4]) : 1;
    static wset s;
    s.seed = 1;
    if (!strcmp(dts, "bf16")) s.lin_dt = CTTS_DT_BF16;
    else if (!strcmp(dts, "q8_0")) s.lin_dt = CTTS_DT_Q8_0;
    else if (!strcmp(dts, "q4_0")) s.lin_dt = CTTS_DT_Q4_0;
    else if (!strcmp(dts, "f32")) s.lin_dt = CTTS_DT_F32;
    else {
        fprintf(stderr, "unknown dtype %s\n", dts);
        return 2;
    }
    ctts_backend *be = ctts_backend_cpu_new(threads, CTTS_ISA_AUTO);
    if (!be) return 1;
    if (!be->supports_dtype(be, s.lin_dt)) {
        printf("backend: linear() does not take %s weights yet\n", dts);
        be->destroy(be);
        return 0;
    }

    q3t_talker_config c;
    memset(&c, 0, sizeof c);
    c.dec = (q3t_decoder_config){.hidden_size = 1024, .intermediate_size = 3072,
                                 .num_hidden_layers = 28, .num_attention_heads = 16,
                                 .num_key_value_heads = 8, .head_dim = 128, .rms_norm_eps = 1e-6f,
                                 .rope_theta = 1e6f, .max_position_embeddings = 32768,
                                 .vocab_size = 3072, .num_code_groups = 16};
    c.cp = c.dec;
    c.cp.num_hidden_layers = 5;
    c.cp.vocab_size = 2048;
    c.cp.max_position_embeddings = 65536;
    c.text_vocab_size = 4096;
    c.text_hidden_size = 2048;
    c.codec_eos_token_id = 2150;

    double t0 = now_s();
    int rc = 0;
    char n[128];
    rc |= add(&s, "talker.model.text_embedding.weight", c.text_vocab_size, 2048, 0, 1.0f, 0);
    rc |= add(&s, "talker.text_projection.linear_fc1.weight", 2048, 2048, 1, 0.05f, 0);
    rc |= add(&s, "talker.text_projection.linear_fc1.bias", 2048, 0, 0, 0.1f, 0);
    rc |= add(&s, "talker.text_projection.linear_fc2.weight", 1024, 2048, 1, 0.05f, 0);
    rc |= add(&s, "talker.text_projection.linear_fc2.bias", 1024, 0, 0, 0.1f, 0);
    rc |= add(&s, "talker.model.codec_embedding.weight", 3072, 1024, 0, 1.0f, 0);
    rc |= add(&s, "talker.codec_head.weight", 3072, 1024, 1, 0.1f, 0);
    rc |= add_stack(&s, "talker.model", &c.dec);
    for (int g = 0; g < 15; g++) {
        snprintf(n, sizeof n, "talker.code_predictor.model.codec_embedding.%d.weight", g);
        rc |= add(&s, n, 2048, 1024, 0, 1.0f, 0);
        snprintf(n, sizeof n, "talker.code_predictor.lm_head.%d.weight", g);
        rc |= add(&s, n, 2048, 1024, 1, 0.1f, 0);
    }
    rc |= add_stack(&s, "talker.code_predictor.model", &c.cp);
    if (rc) {
        fprintf(stderr, "out of memory building weights\n");
        return 1;
    }
    const double t_build = now_s() - t0;

    char err[256];
    q3t_talker *t = NULL;
    q3t_code_predictor *cp = NULL;
    q3t_codegen *g = NULL;
    t0 = now_s();
    if (q3t_talker_load(be, &c, lookup, &s, &t, err, sizeof err) ||
        q3t_code_predictor_load(be, &c, lookup, &s, &cp, err, sizeof err) ||
        q3t_codegen_new(t, cp, &g, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const double t_bind = now_s() - t0;

    /* A 64-row prompt; greedy; no EOS stop within the run (EOS row is random). */
    const int P = 64, D = 1024;
    float *rows = malloc(sizeof(float) * P * D), *pad = malloc(sizeof(float) * D);
    unsigned seed = 7;
    for (int i = 0; i < P * D; i++) rows[i] = rnd(&seed);
    for (int i = 0; i < D; i++) pad[i] = rnd(&seed);
    q3t_codegen_params p = {.talker = {.do_sample = 1, .temperature = 0.9f, .top_k = 50,
                                       .top_p = 1.0f, .repetition_penalty = 1.05f},
                            .predictor = {.do_sample = 1, .temperature = 0.9f, .top_k = 50,
                                          .top_p = 1.0f},
                            .max_new_tokens = frames + 1, .seed = 1};
    t0 = now_s();
    if (q3t_codegen_begin(g, rows, P, NULL, 0, pad, &p, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const double t_prefill = now_s() - t0;
    int32_t codes[16];
    int got = 0;
    t0 = now_s();
    double first = 0;
    while (q3t_codegen_next(g, codes, err, sizeof err) == CTTS_OK) {
        if (got++ == 0) first = now_s() - t0;
    }
    const double t_gen = now_s() - t0;

    /* Split of one frame: talker step vs code predictor (measured separately). */
    q3t_talker_state *ts = NULL;
    q3t_cp_state *cs = NULL;
    q3t_talker_state_new(t, &ts, err, sizeof err);
    q3t_cp_state_new(cp, &cs, err, sizeof err);
    q3t_talker_forward(t, ts, rows, P, err, sizeof err);
    const int reps = frames > 4 ? frames / 2 : 2;
    double t_step = 0, t_cp = 0, t_emb = 0;
    float row[1024];
    for (int i = 0; i < reps; i++) {
        double a = now_s();
        q3t_code_predictor_frame(cp, cs, t, q3t_talker_hidden(ts), 100 + i, NULL, NULL, NULL, codes,
                                 NULL, NULL, err, sizeof err);
        double b = now_s();
        q3t_code_predictor_frame_embed(cp, cs, t, codes, row, err, sizeof err);
        double c2 = now_s();
        q3t_talker_forward(t, ts, row, 1, err, sizeof err);
        double d = now_s();
        t_cp += b - a, t_emb += c2 - b, t_step += d - c2;
    }
    t_cp /= reps, t_emb /= reps, t_step /= reps;
    const double per_frame = got > 0 ? t_gen / got : 0;

    printf("qwen3tts talker+predictor, real 0.6B shape, %s linear weights, %d threads\n", dts,
           threads);
    printf("  weights %.0f MB (text table shrunk), build %.1f s, bind %.3f s\n",
           s.bytes / 1e6, t_build, t_bind);
    printf("  prefill %d rows: %.1f ms\n", P, t_prefill * 1e3);
    printf("  frames %d: %.1f ms/frame (first frame after prefill %.1f ms) -> %.2fx real time "
           "(talker side only)\n", got, per_frame * 1e3, first * 1e3, per_frame > 0 ? 0.08 / per_frame : 0);
    printf("  split: talker step %.1f ms, code predictor %.1f ms (15 passes), frame embed %.2f ms\n",
           t_step * 1e3, t_cp * 1e3, t_emb * 1e3);

    q3t_talker_state_free(ts);
    q3t_cp_state_free(cs);
    if (batch > 1) rc = bench_batch(t, cp, rows, P, pad, &p, batch, frames);
    q3t_codegen_free(g);
    q3t_code_predictor_free(cp);
    q3t_talker_free(t);
    for (int i = 0; i < s.n; i++) free(s.w[i].t.data);
    free(rows), free(pad);
    be->destroy(be);
    return rc;
}
