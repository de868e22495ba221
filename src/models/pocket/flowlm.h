/*
 * Pocket TTS FlowLM: the causal transformer over [voice | text | latents]
 * with its streaming KV cache, and the flow-matching head (SimpleMLPAdaLN,
 * decoded with LSD) that turns each transformer output into the next latent.
 *
 * Data flow per text chunk: copy of the voice state -> prefill(text_rows)
 * -> step() per frame (input_linear -> transformer -> out_norm -> EOS logit
 * and LSD decode) -> latent (normalised space) fed back to the next step and,
 * after pocket_flowlm_denorm, to the Mimi decoder.
 *
 * The model (pocket_flowlm) holds immutable weight views and may be shared;
 * a state (pocket_flowlm_state) holds the KV cache and all scratch of one
 * stream. Not here: tokenisation, EOS decisions / frame counting, Mimi.
 */
#ifndef CTTS_POCKET_FLOWLM_H
#define CTTS_POCKET_FLOWLM_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/rng.h"
#include "ctts.h"
#include "models/pocket/pocket_config.h"

typedef struct pocket_flowlm pocket_flowlm;             /* bound weights (views) + config */
typedef struct pocket_flowlm_state pocket_flowlm_state; /* KV cache + scratch of one stream */

/* Binds every FlowLM tensor by canonical name ("flow_lm.transformer.layers.0.
 * self_attn.in_proj.weight", ...) with exact shape checks. The tensors must
 * live in be's memory and outlive the model. Errors: "missing tensor 'X'",
 * "tensor 'X': expected shape [..], got [..]", config errors. */
ctts_status pocket_flowlm_bind(const pocket_flowlm_config *cfg, ctts_backend *be,
                               pocket_weight_lookup get, void *get_ctx, pocket_flowlm **out,
                               char *err, size_t err_len);
void pocket_flowlm_free(pocket_flowlm *m);
/* Names of the bound tensors (for "unexpected tensor" reports); i in [0, count). */
int pocket_flowlm_bound_count(const pocket_flowlm *m);
const char *pocket_flowlm_bound_name(const pocket_flowlm *m, int i);
const pocket_flowlm_config *pocket_flowlm_get_config(const pocket_flowlm *m);

/* KV state: per layer K and V [capacity, d_model] (K with RoPE applied),
 * offset = filled rows = next absolute position. */
ctts_status pocket_flowlm_state_new(const pocket_flowlm *m, int capacity,
                                    pocket_flowlm_state **out, char *err, size_t err_len);
void pocket_flowlm_state_free(pocket_flowlm_state *s);
int pocket_flowlm_state_offset(const pocket_flowlm_state *s);
int pocket_flowlm_state_capacity(const pocket_flowlm_state *s);
/* Copies src's filled rows and offset into dst (same model dims, capacity permitting). */
ctts_status pocket_flowlm_state_copy(pocket_flowlm_state *dst, const pocket_flowlm_state *src);
/* Import / export one layer's K/V rows [T, d_model] (host memory). Voice-state
 * files store cache [2, 1, T, H, Dh] per layer, which is exactly K rows then V
 * rows. set_layer writes rows 0..T-1 and does not change the offset. */
ctts_status pocket_flowlm_state_set_layer(pocket_flowlm_state *s, int layer, const float *k,
                                          const float *v, int T);
/* Writes offset rows of K and of V. */
ctts_status pocket_flowlm_state_get_layer(const pocket_flowlm_state *s, int layer, float *k,
                                          float *v);
ctts_status pocket_flowlm_state_set_offset(pocket_flowlm_state *s, int offset);
/* Runs prefill and step on s with backend exec instead of the model's (NULL =
 * the model's again), e.g. a one-thread CPU backend while another thread
 * decodes audio. exec must share the model backend's memory and kernels (a
 * CPU backend with the same ISA cap), so results are bit-identical. */
void pocket_flowlm_state_set_exec(pocket_flowlm_state *s, ctts_backend *exec);

/* Runs T rows x [T, d_model] (host) through the transformer at positions
 * offset.., appending them to the cache. hidden_out [T, d_model] (host,
 * optional): out_norm output for every row. Fails without touching the state
 * if the capacity is too small. Allocates nothing. */
ctts_status pocket_flowlm_prefill(pocket_flowlm *m, pocket_flowlm_state *s, const float *x,
                                  int T, float *hidden_out);
/* Voice prompt rows: [bos_before_voice (if configured)] + latents @ speaker_proj^T.
 * latents [T, ldim] (host) -> out [T (+1), d_model] (host); *n_rows = rows written. */
ctts_status pocket_flowlm_voice_rows(const pocket_flowlm *m, const float *latents, int T,
                                     float *out, int *n_rows);
/* Text rows: LUT rows for token ids (each checked to be in [0, n_bins]) -> out [n, d_model]. */
ctts_status pocket_flowlm_text_rows(const pocket_flowlm *m, const int32_t *ids, int n, float *out,
                                    char *err, size_t err_len);

/* One autoregressive step. prev_latent: ldim floats (normalised space) or NULL
 * for the first step (BOS embedding). Runs input_linear -> transformer (1 row)
 * -> out_norm -> EOS logit -> LSD decode with lsd_steps steps from noise x0
 * (std sqrt(temperature); temperature 0 -> exactly zero; noise_clamp > 0 ->
 * truncated normal) drawn from rng (unused when temperature is 0).
 * Outputs latent_out [ldim], *eos_logit and optionally hidden_out [d_model]
 * (the flow conditioning). Allocates nothing. */
ctts_status pocket_flowlm_step(pocket_flowlm *m, pocket_flowlm_state *s, const float *prev_latent,
                               int lsd_steps, float temperature, float noise_clamp, ctts_rng *rng,
                               float *latent_out, float *eos_logit, float *hidden_out);

/* pocket_flowlm_prefill(x, T) followed by the first step (prev_latent NULL)
 * with the BOS row run in the same transformer pass as the last prefill
 * rows: one pass over the weights fewer before the first latent. Values match
 * the two calls to rounding (the BOS row goes through a T-row matmul).
 * Needs capacity for T + 1 rows. Allocates nothing. */
ctts_status pocket_flowlm_prefill_step(pocket_flowlm *m, pocket_flowlm_state *s, const float *x,
                                       int T, int lsd_steps, float temperature,
                                       float noise_clamp, ctts_rng *rng, float *latent_out,
                                       float *eos_logit);

/* De-normalises a latent for the decoder: out = latent * emb_std + emb_mean (ldim floats). */
void pocket_flowlm_denorm(const pocket_flowlm *m, const float *latent, float *out);

#endif
