/*
 * Pre-norm transformer layer with a streaming KV cache (see transformer.h).
 *
 * K and V are written straight into the cache: in_proj is split into three
 * [D, D] row views (q, k, v), so linear() lands the new K/V rows where they
 * belong and no copy op is needed. RoPE is then applied in place to q and to
 * the new cache rows. Every number goes through backend ops; this file only
 * does pointer arithmetic and bookkeeping.
 *
 * Also the weight binder: exact-shape lookups with the messages the loaders
 * report, and the list of bound names (for "unexpected tensor" reports).
 */
#include "nn/transformer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

#define LN_EPS 1e-5f

/* Scratch regions start on 64-byte boundaries (16 floats). */
static size_t round16(size_t n) { return (n + 15u) & ~(size_t)15u; }

ctts_status nn_transformer_config_check(const nn_transformer_config *cfg, char *err,
                                        size_t err_len) {
    if (!cfg) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "transformer: no config");
    if (cfg->d_model <= 0 || cfg->n_heads <= 0 || cfg->d_ff <= 0 || cfg->context < 0)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "transformer: bad sizes (d_model %d, n_heads %d, d_ff %d, context %d)",
                        cfg->d_model, cfg->n_heads, cfg->d_ff, cfg->context);
    if (cfg->d_model % cfg->n_heads != 0 || (cfg->d_model / cfg->n_heads) % 2 != 0)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "transformer: d_model %d is not n_heads %d times an even head dim",
                        cfg->d_model, cfg->n_heads);
    if (!(cfg->max_period > 0.0f))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "transformer: max_period must be > 0");
    /* Keep every product of sizes we form well inside int / size_t. */
    if (cfg->d_model > (1 << 16) || cfg->d_ff > (1 << 20))
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "transformer: sizes too large");
    return CTTS_OK;
}

static ctts_tensor row_view(const ctts_tensor *w, int64_t row0, int64_t rows, int64_t cols) {
    ctts_tensor v = *w;
    size_t row_bytes = ctts_dtype_row_bytes(w->dtype, cols);
    v.ndim = 2;
    v.shape[0] = rows;
    v.shape[1] = cols;
    v.data = (char *)w->data + (size_t)row0 * row_bytes;
    v.nbytes = (size_t)rows * row_bytes;
    return v;
}

ctts_status nn_transformer_layer_prepare(const nn_transformer_config *cfg,
                                         nn_transformer_layer_weights *w, char *err,
                                         size_t err_len) {
    const ctts_tensor *ip = w ? w->in_proj : NULL;
    if (!cfg || !ip || !ip->data)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "transformer: in_proj not bound");
    int64_t D = cfg->d_model;
    if (ip->ndim != 2 || ip->shape[0] != 3 * D || ip->shape[1] != D)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "transformer: in_proj shape is not [3D, D]");
    if (ctts_dtype_row_bytes(ip->dtype, D) * (size_t)(3 * D) > ip->nbytes)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "transformer: in_proj data too short");
    w->wq = row_view(ip, 0, D, D);
    w->wk = row_view(ip, D, D, D);
    w->wv = row_view(ip, 2 * D, D, D);
    return CTTS_OK;
}

/* Allocates both buffers for kv's dtype, capacity and d_model. */
static ctts_status kv_alloc(nn_kv_cache *kv, ctts_backend *be) {
    const size_t esize = kv->dtype == CTTS_DT_F16 ? 2 : 4;
    if (kv->capacity == 0) return CTTS_OK;
    if ((size_t)kv->capacity > SIZE_MAX / esize / (size_t)kv->d_model) return CTTS_E_OOM;
    const size_t bytes = (size_t)kv->capacity * (size_t)kv->d_model * esize;
    kv->k = be->alloc(be, bytes);
    kv->v = be->alloc(be, bytes);
    if (!kv->k || !kv->v) {
        nn_kv_cache_release(kv, be);
        return CTTS_E_OOM;
    }
    return CTTS_OK;
}

ctts_status nn_kv_cache_init(nn_kv_cache *kv, ctts_backend *be, int capacity, int d_model) {
    if (!kv || !be || capacity < 0 || d_model <= 0) return CTTS_E_INVALID_ARG;
    *kv = (nn_kv_cache){.dtype = CTTS_DT_F32, .capacity = capacity, .d_model = d_model};
    return kv_alloc(kv, be);
}

ctts_status nn_kv_cache_init_f16(nn_kv_cache *kv, ctts_backend *be, int capacity, int n_heads,
                                 int head_dim) {
    if (!kv || !be || capacity < 0 || n_heads <= 0 || head_dim <= 0 || head_dim > 512 ||
        n_heads > INT32_MAX / head_dim)
        return CTTS_E_INVALID_ARG;
    *kv = (nn_kv_cache){.dtype = CTTS_DT_F16, .n_heads = n_heads, .capacity = capacity,
                        .d_model = n_heads * head_dim};
    return kv_alloc(kv, be);
}

ctts_status nn_kv_cache_resize(nn_kv_cache *kv, ctts_backend *be, int capacity) {
    if (!kv || !be || capacity < kv->n) return CTTS_E_INVALID_ARG;
    nn_kv_cache nk = *kv;
    nk.k = nk.v = NULL;
    nk.capacity = capacity;
    ctts_status st = kv_alloc(&nk, be);
    if (st != CTTS_OK) return st;
    /* Whole rows for F32; per head for F16, whose head blocks move with the
     * capacity. Through host memory, so any backend's buffers work. */
    const int f16 = kv->dtype == CTTS_DT_F16, blocks = f16 ? kv->n_heads : 1;
    const size_t esize = f16 ? 2 : 4, row = (size_t)kv->d_model / (size_t)blocks * esize;
    const size_t bytes = (size_t)kv->n * row;
    void *tmp = bytes ? malloc(bytes) : NULL;
    if (bytes && !tmp) {
        nn_kv_cache_release(&nk, be);
        return CTTS_E_OOM;
    }
    for (int b = 0; b < blocks && bytes; b++)
        for (int kv_i = 0; kv_i < 2; kv_i++) {
            const char *src = kv_i ? kv->v : kv->k;
            char *dst = kv_i ? nk.v : nk.k;
            be->download(be, tmp, src + (size_t)b * (size_t)kv->capacity * row, bytes);
            be->upload(be, dst + (size_t)b * (size_t)capacity * row, tmp, bytes);
        }
    free(tmp);
    nn_kv_cache_release(kv, be);
    *kv = nk;
    return CTTS_OK;
}

void nn_kv_cache_release(nn_kv_cache *kv, ctts_backend *be) {
    if (!kv) return;
    if (be) {
        if (kv->k) be->free_buf(be, kv->k);
        if (kv->v) be->free_buf(be, kv->v);
    }
    kv->k = kv->v = NULL;
    kv->capacity = kv->n = 0;
}

size_t nn_transformer_scratch_floats(const nn_transformer_config *cfg, int T) {
    if (!cfg || T <= 0) return 0;
    size_t t = (size_t)T, d = (size_t)cfg->d_model, f = (size_t)cfg->d_ff;
    /* xn, q, att: [T, D] each; ff: [T, d_ff]. */
    return 3 * round16(t * d) + round16(t * f);
}

ctts_status nn_transformer_layer_forward(ctts_backend *be, const nn_transformer_config *cfg,
                                         const nn_transformer_layer_weights *w, nn_kv_cache *kv,
                                         float *x, int T, int pos0, float *scratch) {
    if (!be || !cfg || !w || !kv || !x || !scratch || T <= 0 || pos0 < 0)
        return CTTS_E_INVALID_ARG;
    if (!w->wq.data || kv->d_model != cfg->d_model || kv->dtype != CTTS_DT_F32)
        return CTTS_E_STATE;
    if (kv->n < 0 || T > kv->capacity - kv->n) return CTTS_E_INVALID_ARG;

    const int D = cfg->d_model, H = cfg->n_heads, Dh = D / H;
    const size_t td = round16((size_t)T * (size_t)D);
    float *xn = scratch;     /* [T, D] normed input, later the branch output */
    float *q = xn + td;      /* [T, D] queries, later the FFN output */
    float *att = q + td;     /* [T, D] attention output */
    float *ff = att + td;    /* [T, d_ff] */
    float *k_new = (float *)kv->k + (size_t)kv->n * (size_t)D;
    float *v_new = (float *)kv->v + (size_t)kv->n * (size_t)D;

    /* Attention branch. */
    be->layer_norm(be, xn, x, (const float *)w->norm1_w->data, (const float *)w->norm1_b->data,
                   T, D, LN_EPS);
    be->linear(be, q, xn, &w->wq, NULL, T);
    be->linear(be, k_new, xn, &w->wk, NULL, T);
    be->linear(be, v_new, xn, &w->wv, NULL, T);
    be->rope(be, q, T, H, Dh, D, pos0, cfg->max_period);
    be->rope(be, k_new, T, H, Dh, D, pos0, cfg->max_period);
    be->attention(be, att, q, D, kv->k, kv->v, D, T, kv->n + T, kv->n, H, Dh, cfg->context);
    kv->n += T;
    be->linear(be, xn, att, w->out_proj, NULL, T);
    be->add_scaled_rows(be, x, xn, w->ls1 ? (const float *)w->ls1->data : NULL, T, D);

    /* Feed-forward branch. */
    be->layer_norm(be, xn, x, (const float *)w->norm2_w->data, (const float *)w->norm2_b->data,
                   T, D, LN_EPS);
    be->linear(be, ff, xn, w->linear1, NULL, T);
    be->act(be, ff, ff, (size_t)T * (size_t)cfg->d_ff, CTTS_ACT_GELU_ERF);
    be->linear(be, q, ff, w->linear2, NULL, T);
    be->add_scaled_rows(be, x, q, w->ls2 ? (const float *)w->ls2->data : NULL, T, D);
    return CTTS_OK;
}

/* ---- weight binding ---- */

static ctts_status record_name(nn_binder *b, const char *name) {
    if (b->n_names == b->cap_names) {
        int cap = b->cap_names ? 2 * b->cap_names : 32;
        char **p = realloc(b->names, (size_t)cap * sizeof *p);
        if (!p) return CTTS_E_OOM;
        b->names = p;
        b->cap_names = cap;
    }
    size_t len = strlen(name);
    char *copy = malloc(len + 1);
    if (!copy) return CTTS_E_OOM;
    memcpy(copy, name, len + 1);
    b->names[b->n_names++] = copy;
    return CTTS_OK;
}

ctts_status nn_bind_tensor(nn_binder *b, const ctts_tensor **out, nn_bind_kind kind,
                           const char *name, int ndim, const int64_t *shape, char *err,
                           size_t err_len) {
    if (!b || !b->get || !out || !name || ndim < 1 || ndim > CTTS_MAX_DIMS || !shape)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bind: bad arguments");
    *out = NULL;
    const ctts_tensor *t = b->get(b->get_ctx, name);
    if (!t) return ctts_err(err, err_len, CTTS_E_NOT_FOUND, "missing tensor '%s'", name);

    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        ctts_tensor want = {.ndim = ndim};
        for (int i = 0; i < ndim; i++) want.shape[i] = shape[i];
        char a[96], g[96];
        return ctts_err(err, err_len, CTTS_E_FORMAT, "tensor '%s': expected shape %s, got %s",
                        name, ctts_shape_str(&want, a, sizeof a), ctts_shape_str(t, g, sizeof g));
    }

    if (kind == NN_BIND_F32 && t->dtype != CTTS_DT_F32)
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "tensor '%s': dtype %s, expected F32",
                        name, ctts_dtype_name(t->dtype));
    if (kind == NN_BIND_LINEAR && !(b->be && b->be->supports_dtype(b->be, t->dtype)))
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED,
                        "tensor '%s': dtype %s not supported by the %s backend", name,
                        ctts_dtype_name(t->dtype), b->be ? b->be->name : "(no)");

    /* The container must hold every byte the shape implies. Rows are the
     * outermost dims; the innermost dim is what block types pack. */
    int64_t inner = shape[ndim - 1], rows = 1;
    for (int i = 0; i < ndim - 1; i++) rows *= shape[i];
    if (ctts_dtype_size(t->dtype) == 0 && inner % 32 != 0)
        return ctts_err(err, err_len, CTTS_E_FORMAT,
                        "tensor '%s': %s needs the last dim to be a multiple of 32", name,
                        ctts_dtype_name(t->dtype));
    size_t need = ctts_dtype_row_bytes(t->dtype, inner) * (size_t)rows;
    if (!t->data || t->nbytes < need)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "tensor '%s': data too short (%zu < %zu bytes)",
                        name, t->nbytes, need);

    if (record_name(b, name) != CTTS_OK)
        return ctts_err(err, err_len, CTTS_E_OOM, "out of memory binding '%s'", name);
    *out = t;
    return CTTS_OK;
}

void *nn_binder_alloc(nn_binder *b, size_t nbytes) {
    if (b->n_owned == b->cap_owned) {
        int cap = b->cap_owned ? 2 * b->cap_owned : 64;
        void **p = realloc(b->owned, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        b->owned = p;
        b->cap_owned = cap;
    }
    void *buf = b->be->alloc(b->be, nbytes ? nbytes : 1);
    if (buf) b->owned[b->n_owned++] = buf;
    return buf;
}

void nn_binder_release(nn_binder *b) {
    if (!b) return;
    for (int i = 0; i < b->n_names; i++) free(b->names[i]);
    free(b->names);
    b->names = NULL;
    b->n_names = b->cap_names = 0;
    for (int i = 0; i < b->n_owned; i++) b->be->free_buf(b->be, b->owned[i]);
    free(b->owned);
    b->owned = NULL;
    b->n_owned = b->cap_owned = 0;
}

ctts_status nn_transformer_layer_bind(nn_binder *b, const nn_transformer_config *cfg,
                                      const char *prefix, nn_transformer_layer_weights *w,
                                      char *err, size_t err_len) {
    ctts_status st = nn_transformer_config_check(cfg, err, err_len);
    if (st != CTTS_OK) return st;
    if (!b || !prefix || !w) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bind: bad arguments");
    memset(w, 0, sizeof *w);
    const int64_t D = cfg->d_model, F = cfg->d_ff;
    const int64_t vec[1] = {D}, qkv[2] = {3 * D, D}, sq[2] = {D, D}, up[2] = {F, D},
                  down[2] = {D, F};
    const struct {
        const ctts_tensor **dst;
        const char *suffix;
        nn_bind_kind kind;
        int ndim;
        const int64_t *shape;
    } table[] = {
        {&w->norm1_w, "norm1.weight", NN_BIND_F32, 1, vec},
        {&w->norm1_b, "norm1.bias", NN_BIND_F32, 1, vec},
        {&w->in_proj, "self_attn.in_proj.weight", NN_BIND_LINEAR, 2, qkv},
        {&w->out_proj, "self_attn.out_proj.weight", NN_BIND_LINEAR, 2, sq},
        {&w->norm2_w, "norm2.weight", NN_BIND_F32, 1, vec},
        {&w->norm2_b, "norm2.bias", NN_BIND_F32, 1, vec},
        {&w->linear1, "linear1.weight", NN_BIND_LINEAR, 2, up},
        {&w->linear2, "linear2.weight", NN_BIND_LINEAR, 2, down},
        {&w->ls1, "layer_scale_1.scale", NN_BIND_F32, 1, vec},
        {&w->ls2, "layer_scale_2.scale", NN_BIND_F32, 1, vec},
    };
    int n = (int)(sizeof table / sizeof table[0]) - (cfg->has_layer_scale ? 0 : 2);
    char name[512];
    for (int i = 0; i < n; i++) {
        int len = snprintf(name, sizeof name, "%s%s", prefix, table[i].suffix);
        if (len < 0 || (size_t)len >= sizeof name)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "bind: name too long for '%s'",
                            prefix);
        st = nn_bind_tensor(b, table[i].dst, table[i].kind, name, table[i].ndim, table[i].shape,
                            err, err_len);
        if (st != CTTS_OK) return st;
    }
    return nn_transformer_layer_prepare(cfg, w, err, err_len);
}
