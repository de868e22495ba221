/*
 * Qwen3-TTS talker: the Qwen3 decoder stack that predicts the first codebook
 * of every 80 ms frame, with its input tables and output head.
 *
 * Weights (model.safetensors, immutable, shareable between sessions):
 *   talker.model.text_embedding.weight      [text_vocab, text_hidden]
 *   talker.text_projection.linear_fc{1,2}   fc2(silu(fc1(x))), both with bias
 *   talker.model.codec_embedding.weight     [vocab, D]   (E_0 / "C(ids)")
 *   talker.model.layers.N.*                 nn_qwen3 layers (q/k norm, GQA, SwiGLU)
 *   talker.model.norm.weight                final RMSNorm
 *   talker.codec_head.weight                [vocab, D]   (not tied)
 * Projection / head / tables stay in their file dtype (BF16); small vectors
 * (norms, biases) are converted to F32 once.
 *
 * Data flow (per session, q3t_talker_state): rows [T, D] -> layers (KV cache
 * grows with every row) -> final norm of the last row (the "hidden", input of
 * the code predictor) -> codec_head logits [vocab]. Positions are cache rows:
 * prefill rows take 0..P-1, step k takes P+k-1 (NOTES §4; the MRoPE position
 * rows are identical, which is plain rotate-half RoPE).
 *
 * Also here: the talker's logits processing (repetition penalty over earlier
 * first codes, EOS blocked before min_new_tokens, the top 1024 control ids
 * suppressed except EOS) and the choice of the next first code.
 *
 * Not here: the prompt layout (which rows to prefill), the code predictor,
 * the generation loop (q3t_codegen.h).
 */
#ifndef CTTS_Q3T_TALKER_H
#define CTTS_Q3T_TALKER_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/rng.h"
#include "models/qwen3tts/q3t_config.h"
#include "nn/sampling.h"

/* Official min_new_tokens of the talker's generate (EOS allowed from the 3rd token). */
#define Q3T_MIN_NEW_TOKENS 2
/* Ids [vocab - 1024, vocab) are suppressed except EOS (only audio codes and EOS remain). */
#define Q3T_SUPPRESS_TAIL 1024

typedef struct q3t_talker q3t_talker;
typedef struct q3t_talker_state q3t_talker_state;

/* Binds the talker's tensors through get (exact names, shapes; linear dtypes
 * the backend supports) and converts the small vectors. be must outlive the
 * talker. Errors name the tensor ("missing tensor 'talker.codec_head.weight'"). */
ctts_status q3t_talker_load(ctts_backend *be, const q3t_talker_config *cfg, q3t_weight_lookup get,
                            void *get_ctx, q3t_talker **out, char *err, size_t err_len);
void q3t_talker_free(q3t_talker *t);

int q3t_talker_hidden_size(const q3t_talker *t); /* D */
int q3t_talker_vocab(const q3t_talker *t);       /* codec vocab (3072) */
/* The backend the talker was bound to. */
ctts_backend *q3t_talker_backend(const q3t_talker *t);
const q3t_talker_config *q3t_talker_cfg(const q3t_talker *t);
/* The codec table E_0 [vocab, D] (the code predictor reads it for C(code0)). */
const ctts_tensor *q3t_talker_codec_table(const q3t_talker *t);

/* States made after this cache keys and values in half precision (F16,
 * head-major: half the bytes each step reads; off by default; heads wider
 * than 512 stay F32). The fast weight modes turn it on. */
void q3t_talker_set_kv_f16(q3t_talker *t, int on);

/* Per-session state: KV caches (grown on demand, doubling), scratch, the last
 * hidden / logits (host copies), a sampler. */
ctts_status q3t_talker_state_new(const q3t_talker *t, q3t_talker_state **out, char *err,
                                 size_t err_len);
void q3t_talker_state_free(q3t_talker_state *s);
/* Empties the KV caches (keeps the memory). */
void q3t_talker_state_reset(q3t_talker_state *s);
/* Positions already in the cache. */
int q3t_talker_state_positions(const q3t_talker_state *s);

/* T(ids) = text_projection(text_embedding(ids)) -> out [n, D] (host).
 * Ids must be in [0, text_vocab). */
ctts_status q3t_talker_embed_text(const q3t_talker *t, q3t_talker_state *s, const int32_t *ids,
                                  int n, float *out, char *err, size_t err_len);
/* C(ids) = codec_embedding rows -> out [n, D] (host). Ids in [0, vocab). */
ctts_status q3t_talker_embed_codec(const q3t_talker *t, q3t_talker_state *s, const int32_t *ids,
                                   int n, float *out, char *err, size_t err_len);

/* Runs rows x [T, D] (host) at the next T positions. Afterwards
 * q3t_talker_hidden / q3t_talker_logits hold the last row's final-norm hidden
 * state and raw codec_head logits. */
ctts_status q3t_talker_forward(const q3t_talker *t, q3t_talker_state *s, const float *x, int T,
                               char *err, size_t err_len);
#define Q3T_MAX_BATCH 64 /* sequences one batched step takes */

/* One decode step of B <= Q3T_MAX_BATCH sequences at once (batched decode:
 * the weights are read once for all): row i of x [B, D] continues state
 * s[i] (distinct states of this talker), whose hidden / logits then hold its
 * result, the same as q3t_talker_forward(t, s[i], row i, 1). */
ctts_status q3t_talker_step_many(const q3t_talker *t, q3t_talker_state *const *s, int B,
                                 const float *x, char *err, size_t err_len);
const float *q3t_talker_hidden(const q3t_talker_state *s); /* [D] */
const float *q3t_talker_logits(const q3t_talker_state *s); /* [vocab] */

/* The logits processors of the official generate, applied to a copy of the
 * raw logits into scores [vocab]: repetition penalty over hist (the first
 * codes chosen so far, n_hist of them), EOS -> -inf while n_hist <
 * Q3T_MIN_NEW_TOKENS, ids [vocab-1024, vocab) except EOS -> -inf. */
void q3t_talker_process(const q3t_talker *t, q3t_talker_state *s, const int32_t *hist, int n_hist,
                        float repetition_penalty, float *scores);

/* Processes the current logits (q3t_talker_process; EOS also blocked while
 * n_hist < min_new_tokens, a bound above Q3T_MIN_NEW_TOKENS: fixed-length
 * benchmarks) and picks the next first code: greedy argmax, or temperature /
 * top-k / top-p and a draw from rng. scores (optional, [vocab]) receives the
 * final processed scores. */
int q3t_talker_choose(const q3t_talker *t, q3t_talker_state *s, const int32_t *hist, int n_hist,
                      int min_new_tokens, const nn_sampling_params *p, ctts_rng *rng,
                      float *scores);

#endif
