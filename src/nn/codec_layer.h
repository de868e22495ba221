/*
 * Pre-norm transformer layer of the Hugging Face audio codecs (Mimi's
 * MimiTransformerLayer, the Qwen3-TTS tokenizer's pre-transformer) with a KV
 * cache bounded by a sliding window, written only against backend ops.
 *
 * Data flow for T rows x [T, D] at RoPE positions pos0..pos0+T-1:
 *   h = Norm1(x)                       (RMSNorm, or LayerNorm with bias)
 *   q = q_proj(h) [T, H*Dh]; k, v = k_proj(h), v_proj(h) [T, Hkv*Dh]
 *   rotate-half RoPE (theta) on q and k; k, v appended to the cache
 *   causal GQA attention within `window` positions (0: unbounded), 1/sqrt(Dh)
 *   x += ls1 * o_proj(att)
 *   x += ls2 * MLP(Norm2(x))           (SwiGLU down(silu(gate) * up), or fc2(gelu(fc1)))
 * No linear has a bias; H*Dh may differ from D.
 *
 * The cache keeps at most window-1 past rows: before it would overflow, the
 * newest window-1 rows move to the front (attention counts the window in
 * cache rows, RoPE uses the absolute positions passed in). With window 0 the
 * capacity must hold every row.
 *
 * Norm, bias and LayerScale vectors are copied once into an F32 buffer owned
 * by the layer (any float dtype in the file); projections stay in their dtype.
 * Not here: input/output projections, the final norm, weight names beyond the
 * prefix conventions below.
 */
#ifndef CTTS_NN_CODEC_LAYER_H
#define CTTS_NN_CODEC_LAYER_H

#include <stddef.h>

#include "backend/backend.h"
#include "nn/transformer.h"

typedef enum { NN_CODEC_NORM_RMS = 0, NN_CODEC_NORM_LAYER } nn_codec_norm;
typedef enum { NN_CODEC_MLP_SWIGLU = 0, NN_CODEC_MLP_GELU } nn_codec_mlp;

typedef struct {
    int d_model;      /* D */
    int n_heads;      /* H */
    int n_kv_heads;   /* Hkv, H % Hkv == 0 */
    int head_dim;     /* Dh, even */
    int d_ff;         /* MLP width */
    float norm_eps;
    float rope_theta;
    int window;       /* key j visible from query i iff i - window < j <= i; 0 = no limit */
    nn_codec_norm norm;
    nn_codec_mlp mlp;
} nn_codec_layer_config;

typedef struct {
    const ctts_tensor *q, *k, *v, *o; /* [H*Dh, D], [Hkv*Dh, D] x2, [D, H*Dh] */
    const ctts_tensor *fc1;           /* SwiGLU gate / GELU fc1: [d_ff, D] */
    const ctts_tensor *up;            /* SwiGLU up [d_ff, D]; NULL for GELU */
    const ctts_tensor *fc2;           /* down / fc2: [D, d_ff] */
    float *vecs;                      /* owned F32 buffer holding the vectors below */
    const float *n1_w, *n1_b;         /* [D]; n?_b NULL for RMSNorm */
    const float *n2_w, *n2_b;
    const float *ls1, *ls2;           /* [D] LayerScale */
} nn_codec_layer_weights;

/* Positive sizes, H % Hkv == 0, even Dh, eps >= 0, theta > 0, window >= 0, bounds. */
ctts_status nn_codec_layer_config_check(const nn_codec_layer_config *cfg, char *err,
                                        size_t err_len);

/* Binds "<prefix>input_layernorm.{weight,bias}", "<prefix>post_attention_layernorm.*",
 * "<prefix>self_attn.{q,k,v,o}_proj.weight", "<prefix>self_attn_layer_scale.scale",
 * "<prefix>mlp_layer_scale.scale" and the MLP ("mlp.{gate,up,down}_proj.weight" for
 * SwiGLU, "mlp.fc1.weight" / "mlp.fc2.weight" for GELU) with exact shapes. Biases
 * only with LayerNorm. On error *w holds nothing to release. */
ctts_status nn_codec_layer_bind(nn_binder *b, const nn_codec_layer_config *cfg,
                                const char *prefix, nn_codec_layer_weights *w, char *err,
                                size_t err_len);
/* Frees the vector buffer (a zeroed struct is fine). */
void nn_codec_layer_release(nn_codec_layer_weights *w, ctts_backend *be);

/* KV cache row width (Hkv*Dh) and the capacity a stream of at most t_max rows per
 * call needs (window - 1 + t_max; window 0: the caller sizes it for every row). */
int nn_codec_layer_kv_width(const nn_codec_layer_config *cfg);
int nn_codec_layer_kv_capacity(const nn_codec_layer_config *cfg, int t_max);

/* Floats of scratch (backend memory) one forward over up to T rows needs. */
size_t nn_codec_layer_scratch_floats(const nn_codec_layer_config *cfg, int T);

/* Runs the layer over x [T, D] (backend memory, in place); see the file comment.
 * CTTS_E_INVALID_ARG (nothing changed) when the rows cannot fit the cache.
 * Allocates nothing. */
ctts_status nn_codec_layer_forward(ctts_backend *be, const nn_codec_layer_config *cfg,
                                   const nn_codec_layer_weights *w, nn_kv_cache *kv, float *x,
                                   int T, int pos0, float *scratch);

#endif
