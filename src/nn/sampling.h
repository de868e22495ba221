/*
 * Token selection from a row of logits, as Hugging Face `generate` does it:
 * logits processors (repetition penalty, token masks) followed by the
 * sampling warpers (temperature, top-k, top-p) and a categorical draw, or
 * the first argmax in greedy mode.
 *
 * Data flow: raw scores [V] (host memory) -> processed in place -> token id.
 * The caller applies model-specific masks (min_new_tokens EOS block, token
 * suppression) between the penalty and the warpers with nn_scores_mask.
 *
 * Exactness: the processed scores equal HF's in float32 (same formulas and
 * order: penalty, masks, temperature, top-k, top-p). The draw itself uses
 * ctts_rng, not torch's generator, so sampled tokens differ from a torch run
 * with the same seed (the distribution is the same). No allocation after
 * nn_sampler_init; not thread-safe per sampler.
 */
#ifndef CTTS_NN_SAMPLING_H
#define CTTS_NN_SAMPLING_H

#include <stddef.h>
#include <stdint.h>

#include "base/rng.h"
#include "ctts.h"

typedef struct {
    int do_sample;            /* 0: greedy (first argmax); the warpers are skipped */
    float temperature;        /* > 0; 1 = off */
    int top_k;                /* <= 0 = off */
    float top_p;              /* >= 1 = off; must be > 0 */
    float repetition_penalty; /* 1 = off; must be > 0 */
} nn_sampling_params;

typedef struct {
    float v;
    int32_t i;
} nn_scored_id;

typedef struct {
    int vocab;           /* V the buffers are sized for */
    float *work;         /* [V] */
    nn_scored_id *pairs; /* [V] */
} nn_sampler;

/* Allocates the work buffers for vocab V. */
ctts_status nn_sampler_init(nn_sampler *s, int vocab);
void nn_sampler_release(nn_sampler *s);

/* Checks ranges: temperature > 0 when sampling, top_p in (0, 1] (values > 1
 * mean off), repetition_penalty > 0. Message names the field. */
ctts_status nn_sampling_params_check(const nn_sampling_params *p, char *err, size_t err_len);

/* HF RepetitionPenaltyLogitsProcessor: for every distinct id t in hist
 * (0 <= t < V; others ignored), s[t] = s[t] < 0 ? s[t] * p : s[t] / p. */
void nn_scores_repetition_penalty(nn_sampler *sm, float *s, int V, const int32_t *hist,
                                  int n_hist, float p);

/* s[i] = -inf for i in [lo, hi) except keep (pass keep < 0 for none). */
void nn_scores_mask(float *s, int V, int lo, int hi, int keep);

/* HF TemperatureLogitsWarper: s /= t (t == 1 leaves s unchanged). */
void nn_scores_temperature(float *s, int V, float t);

/* HF TopKLogitsWarper (min_tokens_to_keep 1): scores below the k-th largest
 * score become -inf (ties with it are kept). k <= 0 or k >= V: unchanged. */
void nn_scores_top_k(nn_sampler *sm, float *s, int V, int k);

/* HF TopPLogitsWarper (min_tokens_to_keep 1): sort ascending, softmax,
 * cumulative sum; ids whose cumulative probability is <= 1 - p become -inf
 * (the most likely id is always kept). p >= 1: unchanged. */
void nn_scores_top_p(nn_sampler *sm, float *s, int V, float p);

/* First index of the maximum (NaN never wins); 0 if every score is -inf/NaN. */
int nn_argmax(const float *s, int V);

/* softmax(s) then one categorical draw from rng (scores of -inf have
 * probability 0). Falls back to argmax if nothing has positive mass. */
int nn_sample_categorical(nn_sampler *sm, const float *s, int V, ctts_rng *rng);

/* Warpers + choice: greedy -> argmax of s; sampling -> temperature, top-k,
 * top-p in place, then a draw. s must already hold the processed scores
 * (penalty and masks). */
int nn_sample_token(nn_sampler *sm, float *s, int V, const nn_sampling_params *p, ctts_rng *rng);

#endif
