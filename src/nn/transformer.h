/*
 * Generic pre-norm transformer layer with a streaming KV cache, written only
 * against backend ops (so it runs on any backend).
 *
 * Data flow for T rows x [T, D] at absolute positions pos0..pos0+T-1:
 *   h = LN1(x); q,k,v = h . in_proj^T (rows q | k | v, head-major);
 *   RoPE (interleaved pairs) on q and k; k and v are appended to the cache;
 *   x += LS1 * out_proj(attention(q, cache));  x += LS2 * W2 gelu(W1 LN2(x)).
 * LayerNorms have eps 1e-5 and affine weights; no linear has a bias; GELU is
 * the exact erf form; LayerScale (per-channel) is optional.
 *
 * Used by the Pocket FlowLM and both Mimi transformers. It knows nothing about
 * a model: weight names are given by the caller's prefix.
 *
 * Not here: a final norm, input/output projections, ring-buffer caches (the
 * cache is linear: its capacity bounds the number of positions it can hold).
 *
 * Also here: a small weight binder (lookup by name + exact shape and dtype
 * checks + a record of the bound names) shared by the model families.
 */
#ifndef CTTS_NN_TRANSFORMER_H
#define CTTS_NN_TRANSFORMER_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/tensor.h"
#include "ctts.h"

typedef struct {
    int d_model;         /* D; must be n_heads * head_dim with an even head_dim */
    int n_heads;         /* H */
    int d_ff;            /* FFN width */
    float max_period;    /* RoPE base (10000) */
    int context;         /* attention window incl. the current position; 0 = none */
    int has_layer_scale; /* 1: layer_scale_{1,2}.scale multiply the residual branches */
} nn_transformer_config;

typedef struct {
    const ctts_tensor *norm1_w, *norm1_b; /* [D] F32 */
    const ctts_tensor *in_proj;           /* [3D, D]: rows q, then k, then v */
    const ctts_tensor *out_proj;          /* [D, D] */
    const ctts_tensor *norm2_w, *norm2_b; /* [D] F32 */
    const ctts_tensor *linear1;           /* [d_ff, D] */
    const ctts_tensor *linear2;           /* [D, d_ff] */
    const ctts_tensor *ls1, *ls2;         /* [D] F32, NULL without LayerScale */
    /* Row views of in_proj, filled by nn_transformer_layer_prepare: [D, D] each. */
    ctts_tensor wq, wk, wv;
} nn_transformer_layer_weights;

/* One layer's streaming KV cache in backend memory. Row i holds position
 * (first position of the stream) + i; K rows already carry RoPE. F32 caches
 * are [capacity, d_model] float rows; F16 ones are head-major (backend.h
 * kv_store_f16: n_heads blocks of [capacity, d_model / n_heads]). */
typedef struct {
    void *k, *v;
    ctts_dtype dtype; /* CTTS_DT_F32 or CTTS_DT_F16 */
    int n_heads;      /* F16 layout only */
    int capacity;     /* rows allocated */
    int n;            /* rows filled */
    int d_model;
} nn_kv_cache;

/* Checks the config (positive sizes, D = H * Dh, Dh even). */
ctts_status nn_transformer_config_check(const nn_transformer_config *cfg, char *err,
                                        size_t err_len);

/* Fills the q/k/v row views of in_proj (after the tensors are bound). */
ctts_status nn_transformer_layer_prepare(const nn_transformer_config *cfg,
                                         nn_transformer_layer_weights *w, char *err,
                                         size_t err_len);

/* Allocates K and V of capacity rows (zeroed) in backend memory; n = 0. */
ctts_status nn_kv_cache_init(nn_kv_cache *kv, ctts_backend *be, int capacity, int d_model);
/* The same as an F16 cache of n_heads heads of head_dim (<= 512): half the
 * bytes to read per attention step, values rounded to half precision. */
ctts_status nn_kv_cache_init_f16(nn_kv_cache *kv, ctts_backend *be, int capacity, int n_heads,
                                 int head_dim);
/* Reallocates to capacity rows (>= kv->n) of the same dtype, keeping the
 * filled rows; on failure the cache is unchanged. */
ctts_status nn_kv_cache_resize(nn_kv_cache *kv, ctts_backend *be, int capacity);
/* Releases the buffers (a zeroed or already released cache is fine). */
void nn_kv_cache_release(nn_kv_cache *kv, ctts_backend *be);

/* Floats of scratch (backend memory) that one layer forward over up to T rows needs. */
size_t nn_transformer_scratch_floats(const nn_transformer_config *cfg, int T);

/* Runs one layer over x [T, D] (backend memory, updated in place). The rows
 * sit at absolute positions pos0.. (RoPE) and are appended to the cache at
 * rows kv->n..kv->n+T-1; attention sees cache rows 0..kv->n+T-1 causally
 * (and within cfg->context when set). scratch: nn_transformer_scratch_floats
 * floats of backend memory. Fails (cache unchanged) if the cache is too small.
 * Allocates nothing. */
ctts_status nn_transformer_layer_forward(ctts_backend *be, const nn_transformer_config *cfg,
                                         const nn_transformer_layer_weights *w, nn_kv_cache *kv,
                                         float *x, int T, int pos0, float *scratch);

/* ---- weight binding ---- */

/* Same signature as the family lookups (e.g. pocket_weight_lookup). */
typedef const ctts_tensor *(*nn_weight_lookup)(void *ctx, const char *name);

typedef enum {
    NN_BIND_F32 = 0, /* read directly as floats: must be F32 */
    NN_BIND_LINEAR,  /* a linear weight: any dtype the backend's linear() supports */
} nn_bind_kind;

typedef struct {
    ctts_backend *be;
    nn_weight_lookup get;
    void *get_ctx;
    char **names; /* bound names (owned), in binding order */
    int n_names;
    int cap_names;
    void **owned; /* backend buffers made while binding (derived weights), freed on release */
    int n_owned, cap_owned;
} nn_binder;

/* Zeroed backend memory owned by the binder (freed by nn_binder_release); NULL on OOM. */
void *nn_binder_alloc(nn_binder *b, size_t nbytes);

/* Looks up name, checks exact shape (ndim dims of shape) and dtype, records the
 * name. Errors: "missing tensor 'X'" (CTTS_E_NOT_FOUND), "tensor 'X': expected
 * shape [..], got [..]" (CTTS_E_FORMAT), unsupported dtype (CTTS_E_UNSUPPORTED). */
ctts_status nn_bind_tensor(nn_binder *b, const ctts_tensor **out, nn_bind_kind kind,
                           const char *name, int ndim, const int64_t *shape, char *err,
                           size_t err_len);
/* Frees the recorded names. */
void nn_binder_release(nn_binder *b);

/* Binds "<prefix>norm1.weight", "<prefix>self_attn.in_proj.weight", ...
 * ("<prefix>layer_scale_{1,2}.scale" with has_layer_scale) and prepares the views. */
ctts_status nn_transformer_layer_bind(nn_binder *b, const nn_transformer_config *cfg,
                                      const char *prefix, nn_transformer_layer_weights *w,
                                      char *err, size_t err_len);

#endif
