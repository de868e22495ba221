/*
 * Qwen3 decoder layer (the HF Qwen3 block) with a KV cache, written only
 * against backend ops. Used by the Qwen3-TTS talker and code predictor; it
 * knows nothing about either (weight names come from the caller's prefix).
 *
 * Data flow for T rows x [T, D] whose first row sits at position pos0:
 *   h  = RMSNorm(x) (input_layernorm)
 *   q  = q_proj(h) [T, H*Dh], k = k_proj(h), v = v_proj(h) [T, Hkv*Dh]
 *   q, k: per-head RMSNorm over Dh (q_norm, k_norm); rotate-half RoPE (theta)
 *   k, v appended to the cache; GQA causal attention (head h reads KV head
 *   h / (H/Hkv)), scale 1/sqrt(Dh)
 *   x += o_proj(att);  x += down(silu(gate(RMSNorm(x))) * up(RMSNorm(x)))
 * No linear has a bias; head_dim is independent of D (H*Dh may differ from D).
 *
 * Norm weights (often BF16 in checkpoints) are converted once into an F32
 * buffer owned by the layer; projection weights stay in their dtype (linear()
 * takes BF16 / quantized weights directly).
 *
 * Not here: embeddings, the final norm, heads, MRoPE with distinct sections
 * (Qwen3-TTS always passes identical position rows, which is plain RoPE).
 */
#ifndef CTTS_NN_QWEN3_LAYER_H
#define CTTS_NN_QWEN3_LAYER_H

#include <stddef.h>

#include "backend/backend.h"
#include "nn/transformer.h"

typedef struct {
    int d_model;      /* D */
    int n_heads;      /* H (query heads) */
    int n_kv_heads;   /* Hkv; H % Hkv == 0 */
    int head_dim;     /* Dh, even */
    int d_ff;         /* SwiGLU width */
    float rms_eps;    /* RMSNorm epsilon (1e-6) */
    float rope_theta; /* RoPE base (1e6) */
} nn_qwen3_config;

typedef struct {
    const ctts_tensor *q_proj; /* [H*Dh, D] */
    const ctts_tensor *k_proj; /* [Hkv*Dh, D] */
    const ctts_tensor *v_proj; /* [Hkv*Dh, D] */
    const ctts_tensor *o_proj; /* [D, H*Dh] */
    const ctts_tensor *gate;   /* [d_ff, D] */
    const ctts_tensor *up;     /* [d_ff, D] */
    const ctts_tensor *down;   /* [D, d_ff] */
    /* F32 copies in one backend buffer (owned): */
    float *norms;  /* the buffer: ln1 | ln2 | q_norm | k_norm */
    float *ln1;    /* [D] input_layernorm */
    float *ln2;    /* [D] post_attention_layernorm */
    float *q_norm; /* [Dh] */
    float *k_norm; /* [Dh] */
} nn_qwen3_layer_weights;

/* Positive sizes, H % Hkv == 0, even Dh, eps >= 0, theta > 0, sane bounds. */
ctts_status nn_qwen3_config_check(const nn_qwen3_config *cfg, char *err, size_t err_len);

/* Binds "<prefix>input_layernorm.weight", "<prefix>self_attn.{q,k,v,o}_proj.weight",
 * "<prefix>self_attn.{q,k}_norm.weight", "<prefix>post_attention_layernorm.weight",
 * "<prefix>mlp.{gate,up,down}_proj.weight" with exact shapes, and converts the
 * norm vectors to F32. On error *w holds nothing to release. */
ctts_status nn_qwen3_layer_bind(nn_binder *b, const nn_qwen3_config *cfg, const char *prefix,
                                nn_qwen3_layer_weights *w, char *err, size_t err_len);
/* Frees the norm buffer (a zeroed struct is fine). */
void nn_qwen3_layer_release(nn_qwen3_layer_weights *w, ctts_backend *be);

/* Binds a 1-D or 2-D float tensor of n elements (F32, BF16 or F16) by exact
 * shape and writes it as floats into dst (backend memory, n floats). */
ctts_status nn_bind_to_f32(nn_binder *b, float *dst, const char *name, int ndim,
                           const int64_t *shape, char *err, size_t err_len);

/* KV cache rows are Hkv*Dh wide: use nn_kv_cache_init(kv, be, capacity, this), or
 * nn_kv_cache_init_f16(kv, be, capacity, Hkv, Dh) for a half-precision cache. */
int nn_qwen3_kv_width(const nn_qwen3_config *cfg);

/* Floats of scratch (backend memory) one layer forward over up to T rows needs. */
size_t nn_qwen3_scratch_floats(const nn_qwen3_config *cfg, int T);

/* Runs one layer over x [T, D] (backend memory, updated in place). Rows take
 * RoPE positions and cache rows pos0..pos0+T-1, pos0 = kv->n (the rows
 * continue the cache); attention sees cache rows 0..kv->n+T-1 causally.
 * CTTS_E_INVALID_ARG (cache unchanged) if the cache is too small or pos0 is
 * not kv->n. Allocates nothing. */
ctts_status nn_qwen3_layer_forward(ctts_backend *be, const nn_qwen3_config *cfg,
                                   const nn_qwen3_layer_weights *w, nn_kv_cache *kv, float *x,
                                   int T, int pos0, float *scratch);

/* The layer over several sequences at once (batched decode): x holds
 * rows[0] rows of sequence 0, then rows[1] of sequence 1, ...; sequence i
 * continues its own cache kv[i] at its own positions. The projections read
 * their weights once for all rows; each row's result is the one
 * nn_qwen3_layer_forward gives it alone (the row kernels are independent
 * across rows). Scratch: nn_qwen3_scratch_floats(cfg, sum of rows). */
ctts_status nn_qwen3_layer_forward_seqs(ctts_backend *be, const nn_qwen3_config *cfg,
                                        const nn_qwen3_layer_weights *w, nn_kv_cache *const *kv,
                                        const int *rows, int n_seq, float *x, float *scratch);

#endif
