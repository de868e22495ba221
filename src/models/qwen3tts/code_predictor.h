/*
 * Qwen3-TTS code predictor: the small Qwen3 decoder that turns the talker's
 * hidden state and a frame's first code into codebooks 1..G-1 of that frame,
 * plus the frame embedding that feeds the frame back into the talker.
 *
 * Weights (under talker.code_predictor.):
 *   model.codec_embedding.{0..G-2}.weight  [2048, D_talker]  (E_1..E_{G-1})
 *   model.layers.N.*, model.norm.weight    nn_qwen3 layers + final RMSNorm
 *   lm_head.{0..G-2}.weight                [2048, D_cp]
 *   small_to_mtp_projection.{weight,bias}  [D_cp, D_talker], only when the
 *                                          widths differ (1.7B); 0.6B has none
 *
 * One frame (NOTES §5.2), a fresh cache every time: prefill rows
 * [hidden, C(code0)] (C = the talker's codec table) at positions 0, 1 ->
 * lm_head[0] on the last row -> code 1; then step j = 1..G-2: row
 * E_j(code j) at position j+1 -> lm_head[j] -> code j+1. Inputs go through
 * small_to_mtp_projection when present. Greedy or sampled with the subtalker
 * settings (no repetition penalty, no masks).
 *
 * Frame embedding (§5.3): E_0(code 0) + sum_{g>=1} E_g(code g), width D_talker.
 *
 * Not here: the talker itself, the generation loop.
 */
#ifndef CTTS_Q3T_CODE_PREDICTOR_H
#define CTTS_Q3T_CODE_PREDICTOR_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/rng.h"
#include "models/qwen3tts/q3t_config.h"
#include "models/qwen3tts/talker.h"
#include "nn/sampling.h"

typedef struct q3t_code_predictor q3t_code_predictor;
typedef struct q3t_cp_state q3t_cp_state;

/* Binds talker.code_predictor.* for cfg->cp against the talker's width
 * cfg->dec.hidden_size (the projection is required exactly when they differ). */
ctts_status q3t_code_predictor_load(ctts_backend *be, const q3t_talker_config *cfg,
                                    q3t_weight_lookup get, void *get_ctx,
                                    q3t_code_predictor **out, char *err, size_t err_len);
void q3t_code_predictor_free(q3t_code_predictor *cp);
int q3t_code_predictor_groups(const q3t_code_predictor *cp); /* G (16) */
int q3t_code_predictor_vocab(const q3t_code_predictor *cp);  /* 2048 */

/* Per-session state: a G-row KV cache per layer, scratch, a sampler. */
ctts_status q3t_cp_state_new(const q3t_code_predictor *cp, q3t_cp_state **out, char *err,
                             size_t err_len);
void q3t_cp_state_free(q3t_cp_state *s);

/* Runs one frame. hidden [D_talker] (host) is the talker's final-norm hidden
 * state of the step that chose code0 (0 <= code0 < talker vocab). codes[0] =
 * code0, codes[1..G-1] are chosen (greedy / sampled by p, draws from rng).
 * force (optional, [G]): teacher forcing, codes[g] = force[g] for g >= 1
 * while the logits are still computed from the forced history.
 * logits (optional, [(G-1), vocab]): the raw lm_head logits of every step.
 * scores (optional, [(G-1), vocab]): the scores after the sampling warpers
 * (temperature / top-k / top-p; equal to logits in greedy mode). */
ctts_status q3t_code_predictor_frame(const q3t_code_predictor *cp, q3t_cp_state *s,
                                     const q3t_talker *t, const float *hidden, int code0,
                                     const nn_sampling_params *p, ctts_rng *rng,
                                     const int32_t *force, int32_t *codes, float *logits,
                                     float *scores, char *err, size_t err_len);

/* B <= Q3T_MAX_BATCH frames at once (batched decode: the weights are read
 * once per step for all): entry i is q3t_code_predictor_frame(cp, s[i], t,
 * hidden[i], code0[i], p[i], rng[i], NULL, codes[i], NULL, NULL) - the same
 * draws from rng[i] in the same order; the states are distinct. */
ctts_status q3t_code_predictor_frame_many(const q3t_code_predictor *cp, q3t_cp_state *const *s,
                                          int B, const q3t_talker *t, const float *const *hidden,
                                          const int *code0, const nn_sampling_params *const *p,
                                          ctts_rng *const *rng, int32_t *const *codes, char *err,
                                          size_t err_len);

/* Frame embedding: out [D_talker] (host) = E_0(codes[0]) + sum_g E_g(codes[g]). */
ctts_status q3t_code_predictor_frame_embed(const q3t_code_predictor *cp, q3t_cp_state *s,
                                           const q3t_talker *t, const int32_t *codes, float *out,
                                           char *err, size_t err_len);

#endif
