/*
 * nn/sampling: the Hugging Face logits processors and warpers on small
 * hand-made rows whose results follow from the HF definitions, argmax
 * tie-breaking, the categorical draw's frequencies, parameter checks.
 */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "nn/sampling.h"

static void test_repetition_penalty(void) {
    nn_sampler sm;
    REQUIRE(nn_sampler_init(&sm, 4) == CTTS_OK);
    float s[4] = {2.0f, -2.0f, 1.0f, 0.5f};
    /* Repeated ids are penalised once; out-of-range ids are ignored. */
    const int32_t hist[5] = {0, 1, 0, 7, -1};
    nn_scores_repetition_penalty(&sm, s, 4, hist, 5, 2.0f);
    CHECK(s[0] == 1.0f);
    CHECK(s[1] == -4.0f);
    CHECK(s[2] == 1.0f);
    CHECK(s[3] == 0.5f);
    /* Penalty 1 changes nothing. */
    nn_scores_repetition_penalty(&sm, s, 4, hist, 5, 1.0f);
    CHECK(s[0] == 1.0f && s[1] == -4.0f);
    nn_sampler_release(&sm);
}

static void test_mask_and_temperature(void) {
    float s[6] = {1, 2, 3, 4, 5, 6};
    nn_scores_mask(s, 6, 2, 6, 4);
    CHECK(s[0] == 1 && s[1] == 2 && isinf(s[2]) && isinf(s[3]) && s[4] == 5 && isinf(s[5]));
    nn_scores_temperature(s, 6, 0.5f);
    CHECK(s[0] == 2 && s[4] == 10 && isinf(s[2]) && s[2] < 0);
}

static void test_top_k(void) {
    nn_sampler sm;
    REQUIRE(nn_sampler_init(&sm, 8) == CTTS_OK);
    /* Ties with the k-th largest are kept (torch: scores < kth are removed). */
    float s[5] = {1, 3, 3, 2, 3};
    nn_scores_top_k(&sm, s, 5, 2);
    CHECK(isinf(s[0]) && s[1] == 3 && s[2] == 3 && isinf(s[3]) && s[4] == 3);
    float t[6] = {0.5f, -1, 7, 2, -INFINITY, 6};
    nn_scores_top_k(&sm, t, 6, 3);
    CHECK(isinf(t[0]) && isinf(t[1]) && t[2] == 7 && t[3] == 2 && isinf(t[4]) && t[5] == 6);
    /* k >= V or k <= 0: unchanged. */
    float u[3] = {1, 2, 3};
    nn_scores_top_k(&sm, u, 3, 3);
    nn_scores_top_k(&sm, u, 3, 0);
    CHECK(u[0] == 1 && u[1] == 2 && u[2] == 3);
    nn_sampler_release(&sm);
}

static void test_top_p(void) {
    nn_sampler sm;
    REQUIRE(nn_sampler_init(&sm, 4) == CTTS_OK);
    const float p[4] = {0.5f, 0.3f, 0.15f, 0.05f};
    float s[4];
    /* Ascending cumulative: 0.05, 0.2, 0.5, 1. top_p 0.75 removes cum <= 0.25. */
    for (int i = 0; i < 4; i++) s[i] = logf(p[i]);
    nn_scores_top_p(&sm, s, 4, 0.75f);
    CHECK(!isinf(s[0]) && !isinf(s[1]) && isinf(s[2]) && isinf(s[3]));
    for (int i = 0; i < 4; i++) s[i] = logf(p[i]);
    nn_scores_top_p(&sm, s, 4, 0.9f);
    CHECK(!isinf(s[0]) && !isinf(s[1]) && !isinf(s[2]) && isinf(s[3]));
    /* A tiny top_p still keeps the most likely id. */
    for (int i = 0; i < 4; i++) s[i] = logf(p[i]);
    nn_scores_top_p(&sm, s, 4, 1e-6f);
    CHECK(!isinf(s[0]) && isinf(s[1]) && isinf(s[2]) && isinf(s[3]));
    /* top_p 1: unchanged. */
    for (int i = 0; i < 4; i++) s[i] = logf(p[i]);
    nn_scores_top_p(&sm, s, 4, 1.0f);
    CHECK(!isinf(s[3]));
    nn_sampler_release(&sm);
}

static void test_argmax(void) {
    const float a[5] = {1, 4, 2, 4, -INFINITY};
    CHECK_EQ_INT(nn_argmax(a, 5), 1); /* first of the ties */
    const float b[3] = {-INFINITY, -INFINITY, -INFINITY};
    CHECK_EQ_INT(nn_argmax(b, 3), 0);
    const float c[3] = {NAN, 1, 2};
    CHECK_EQ_INT(nn_argmax(c, 3), 2);
}

static void test_categorical(void) {
    nn_sampler sm;
    REQUIRE(nn_sampler_init(&sm, 4) == CTTS_OK);
    const float s[4] = {logf(0.7f), logf(0.2f), logf(0.1f), -INFINITY};
    ctts_rng rng;
    ctts_rng_seed(&rng, 7);
    int count[4] = {0};
    const int n = 20000;
    for (int i = 0; i < n; i++) count[nn_sample_categorical(&sm, s, 4, &rng)]++;
    CHECK_NEAR((double)count[0] / n, 0.7, 0.02);
    CHECK_NEAR((double)count[1] / n, 0.2, 0.02);
    CHECK_NEAR((double)count[2] / n, 0.1, 0.02);
    CHECK_EQ_INT(count[3], 0);
    /* Same seed, same draws. */
    ctts_rng r1, r2;
    ctts_rng_seed(&r1, 99);
    ctts_rng_seed(&r2, 99);
    int same = 1;
    for (int i = 0; i < 100; i++)
        same &= nn_sample_categorical(&sm, s, 4, &r1) == nn_sample_categorical(&sm, s, 4, &r2);
    CHECK(same);
    /* Greedy ignores the warpers and the rng. */
    float g[4] = {0.1f, 0.3f, 0.2f, 0.3f};
    nn_sampling_params gp = {.do_sample = 0, .temperature = 0.5f, .top_k = 1, .top_p = 0.5f,
                             .repetition_penalty = 1.0f};
    CHECK_EQ_INT(nn_sample_token(&sm, g, 4, &gp, NULL), 1);
    CHECK(g[0] == 0.1f);
    /* Sampling with top_k 1 is greedy too. */
    nn_sampling_params sp = {.do_sample = 1, .temperature = 0.9f, .top_k = 1, .top_p = 1.0f,
                             .repetition_penalty = 1.0f};
    float h[4] = {0.1f, 0.3f, 0.2f, 0.0f};
    CHECK_EQ_INT(nn_sample_token(&sm, h, 4, &sp, &rng), 1);
    nn_sampler_release(&sm);
}

static void test_params_check(void) {
    char err[128];
    nn_sampling_params p = {.do_sample = 1, .temperature = 0.9f, .top_k = 50, .top_p = 1.0f,
                            .repetition_penalty = 1.05f};
    CHECK(nn_sampling_params_check(&p, err, sizeof err) == CTTS_OK);
    p.temperature = 0;
    CHECK(nn_sampling_params_check(&p, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "temperature");
    p.temperature = 0.9f;
    p.top_p = 0;
    CHECK(nn_sampling_params_check(&p, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "top_p");
    p.top_p = 1;
    p.repetition_penalty = NAN;
    CHECK(nn_sampling_params_check(&p, err, sizeof err) == CTTS_E_INVALID_ARG);
    CHECK_STR_CONTAINS(err, "repetition_penalty");
    /* Greedy does not look at temperature. */
    nn_sampling_params g = {.do_sample = 0, .repetition_penalty = 1.0f};
    CHECK(nn_sampling_params_check(&g, err, sizeof err) == CTTS_OK);
}

TEST_MAIN(T(test_repetition_penalty), T(test_mask_and_temperature), T(test_top_k), T(test_top_p),
          T(test_argmax), T(test_categorical), T(test_params_check))
