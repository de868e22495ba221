/*
 * Pocket TTS checkpoint loading (see pocket_weights.h). The renames and skips
 * follow the official utils/weights_loading.py rules described in
 * POCKET_NOTES.md §9.
 */
#include "models/pocket/pocket_weights.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "quant/convert.h"

typedef struct {
    char *name;    /* canonical name, owned */
    ctts_tensor t; /* t.name points at name */
    void *owned;   /* data buffer when the tensor was computed (weight norm) */
    int used;
} entry;

struct pocket_weights {
    st_file *files[2];
    gguf_file *gguf; /* weights_path ending in .gguf (ctts quantize output) */
    entry *e;
    int n, cap;
    char source[2 * POCKET_PATH_MAX + 8];
};

static int entry_cmp(const void *a, const void *b) {
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static ctts_status add(pocket_weights *w, const char *prefix, const char *name,
                       const ctts_tensor *t, void *owned, char *err, size_t err_len) {
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 256;
        entry *ne = realloc(w->e, (size_t)cap * sizeof *ne);
        if (!ne) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory loading weights");
        w->e = ne;
        w->cap = cap;
    }
    size_t len = strlen(prefix) + strlen(name) + 1;
    char *s = malloc(len);
    if (!s) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory loading weights");
    snprintf(s, len, "%s%s", prefix, name);
    entry *e = &w->e[w->n++];
    e->name = s;
    e->t = *t;
    e->t.name = s;
    e->owned = owned;
    e->used = 0;
    return CTTS_OK;
}

/* Replaces every occurrence of `from` by `to` in s (to is never longer than from). */
static void replace_all(char *s, const char *from, const char *to) {
    size_t lf = strlen(from), lt = strlen(to);
    char *p = s;
    while ((p = strstr(p, from)) != NULL) {
        memmove(p + lt, p + lf, strlen(p + lf) + 1);
        memcpy(p, to, lt);
        p += lt;
    }
}

static int ends_with(const char *s, const char *suffix) {
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static ctts_status add_flow_lm_split(pocket_weights *w, const st_file *f, char *err,
                                     size_t err_len) {
    for (int i = 0; i < st_count(f); i++) {
        const ctts_tensor *t = st_tensor(f, i);
        const char *k = t->name;
        if (strncmp(k, "flow.w_s_t.", 11) == 0 ||
            strcmp(k, "condition_provider.conditioners.transcript_in_segment.learnt_padding") == 0 ||
            strcmp(k, "condition_provider.conditioners.speaker_wavs.learnt_padding") == 0 ||
            strcmp(k, "num_ema_updates") == 0)
            continue;
        char name[512];
        if (snprintf(name, sizeof name, "%s", k) >= (int)sizeof name)
            return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: tensor name too long",
                            st_path(f));
        if (strcmp(k, "condition_provider.conditioners.transcript_in_segment.embed.weight") == 0)
            snprintf(name, sizeof name, "conditioner.embed.weight");
        if (strcmp(k, "condition_provider.conditioners.speaker_wavs.output_proj.weight") == 0)
            snprintf(name, sizeof name, "speaker_proj_weight");
        if (strcmp(k, "fuser.padding_value") == 0) snprintf(name, sizeof name, "bos_before_voice");
        replace_all(name, ".self_attn.in_proj_weight", ".self_attn.in_proj.weight");
        ctts_status st = add(w, "flow_lm.", name, t, NULL, err, err_len);
        if (st) return st;
    }
    return CTTS_OK;
}

/* torch._weight_norm(v, g, 0): w = g * v / ||v||, the norm over all dims but 0. */
static ctts_status weight_norm(const st_file *f, const ctts_tensor *g, const ctts_tensor *v,
                               float **out, char *err, size_t err_len) {
    if (g->dtype != CTTS_DT_F32 || v->dtype != CTTS_DT_F32 || v->ndim < 1 ||
        g->ndim != v->ndim || g->shape[0] != v->shape[0] || ctts_tensor_numel(g) != g->shape[0])
        return ctts_err(err, err_len, CTTS_E_FORMAT,
                        "%s: weight-norm pair '%s' / '%s' must be F32 with g of shape [%lld, 1, ...]",
                        st_path(f), g->name, v->name, (long long)v->shape[0]);
    int64_t rows = v->shape[0], cols = rows ? ctts_tensor_numel(v) / rows : 0;
    float *w = malloc((size_t)(rows * cols) * sizeof *w + 1);
    if (!w) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory for weight norm");
    for (int64_t r = 0; r < rows; r++) {
        float gr, vv;
        memcpy(&gr, (const char *)g->data + r * 4, 4);
        double ss = 0;
        for (int64_t c = 0; c < cols; c++) {
            memcpy(&vv, (const char *)v->data + (r * cols + c) * 4, 4);
            ss += (double)vv * vv;
        }
        float scale = gr / (float)sqrt(ss);
        for (int64_t c = 0; c < cols; c++) {
            memcpy(&vv, (const char *)v->data + (r * cols + c) * 4, 4);
            w[r * cols + c] = vv * scale;
        }
    }
    *out = w;
    return CTTS_OK;
}

static ctts_status add_mimi_split(pocket_weights *w, const st_file *f, char *err,
                                  size_t err_len) {
    for (int i = 0; i < st_count(f); i++) {
        const ctts_tensor *t = st_tensor(f, i);
        const char *k = t->name;
        if (strncmp(k, "model.quantizer.vq.", 19) == 0 ||
            strcmp(k, "model.quantizer.logvar_proj.weight") == 0 || strstr(k, "_codebook") ||
            ends_with(k, ".weight_v") || strcmp(k, "quantizer.logvar_proj.weight") == 0 ||
            strcmp(k, "wavlm_emb_downsample.conv.conv.weight") == 0 ||
            strcmp(k, "wavlm_input_resample.kernel") == 0 || strcmp(k, "wavlm_proj.weight") == 0 ||
            strcmp(k, "quantizer.logvar_param") == 0 || strstr(k, "wavlm_emb_downsample"))
            continue;
        char name[512];
        if (snprintf(name, sizeof name, "%s", k) >= (int)sizeof name - 2)
            return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: tensor name too long",
                            st_path(f));
        if (ends_with(k, ".weight_g")) {
            name[strlen(name) - 2] = 0; /* drop "_g" */
            char vname[512];
            snprintf(vname, sizeof vname, "%s_v", name);
            const ctts_tensor *v = st_find(f, vname);
            if (!v)
                return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: '%s' has no matching '%s'",
                                st_path(f), k, vname);
            float *data = NULL;
            ctts_status st = weight_norm(f, t, v, &data, err, err_len);
            if (st) return st;
            replace_all(name, ".conv.conv.", ".conv.");
            replace_all(name, ".convtr.convtr.", ".convtr.");
            ctts_tensor nt = *v;
            nt.data = data;
            st = add(w, "mimi.", name, &nt, data, err, err_len);
            if (st) {
                free(data);
                return st;
            }
            continue;
        }
        const char *base = strncmp(name, "model.", 6) == 0 ? name + 6 : name;
        memmove(name, base, strlen(base) + 1);
        replace_all(name, ".conv.conv.", ".conv.");
        replace_all(name, ".convtr.convtr.", ".convtr.");
        replace_all(name, "in_proj_weight", "in_proj.weight");
        ctts_status st = add(w, "mimi.", name, t, NULL, err, err_len);
        if (st) return st;
    }
    return CTTS_OK;
}

static ctts_status open_file(const char *path, st_file **out, char *err, size_t err_len) {
    if (strncmp(path, "hf://", 5) == 0)
        return ctts_err(err, err_len, CTTS_E_NOT_FOUND,
                        "weights '%s' are not downloaded (pocket_config_fetch was not run)",
                        path);
    return st_open(path, out, err, err_len);
}

ctts_status pocket_weights_open(const pocket_config *cfg, pocket_weights **out, char *err,
                                size_t err_len) {
    *out = NULL;
    pocket_weights *w = calloc(1, sizeof *w);
    if (!w) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    ctts_status st;
    if (cfg->weights_path[0]) {
        /* A single-file checkpoint overrides the split one, as in the official loader
         * (it is loaded last, strictly, over every tensor). */
        const size_t pl = strlen(cfg->weights_path);
        if (pl > 5 && strcmp(cfg->weights_path + pl - 5, ".gguf") == 0) {
            /* Zero-copy GGUF (any dtype linear() takes, as ctts quantize wrote it). */
            st = gguf_open(cfg->weights_path, &w->gguf, err, err_len);
            for (int i = 0; st == CTTS_OK && i < gguf_count(w->gguf); i++)
                st = add(w, "", gguf_tensor(w->gguf, i)->name, gguf_tensor(w->gguf, i), NULL,
                         err, err_len);
        } else {
            st = open_file(cfg->weights_path, &w->files[0], err, err_len);
            for (int i = 0; st == CTTS_OK && i < st_count(w->files[0]); i++)
                st = add(w, "", st_tensor(w->files[0], i)->name, st_tensor(w->files[0], i),
                         NULL, err, err_len);
        }
        snprintf(w->source, sizeof w->source, "%s", cfg->weights_path);
    } else {
        st = open_file(cfg->flow_lm_weights_path, &w->files[0], err, err_len);
        if (st == CTTS_OK) st = open_file(cfg->mimi_weights_path, &w->files[1], err, err_len);
        if (st == CTTS_OK) st = add_flow_lm_split(w, w->files[0], err, err_len);
        if (st == CTTS_OK) st = add_mimi_split(w, w->files[1], err, err_len);
        snprintf(w->source, sizeof w->source, "%s + %s", cfg->flow_lm_weights_path,
                 cfg->mimi_weights_path);
    }
    if (st == CTTS_OK) {
        qsort(w->e, (size_t)w->n, sizeof *w->e, entry_cmp);
        for (int i = 1; i < w->n; i++)
            if (strcmp(w->e[i - 1].name, w->e[i].name) == 0) {
                st = ctts_err(err, err_len, CTTS_E_FORMAT, "%s: tensor '%s' appears twice",
                              w->source, w->e[i].name);
                break;
            }
    }
    if (st != CTTS_OK) {
        pocket_weights_free(w);
        return st;
    }
    *out = w;
    return CTTS_OK;
}

void pocket_weights_free(pocket_weights *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].owned);
    }
    free(w->e);
    st_close(w->files[0]);
    st_close(w->files[1]);
    gguf_close(w->gguf);
    free(w);
}

const ctts_tensor *pocket_weights_get(void *ctx, const char *name) {
    pocket_weights *w = ctx;
    entry key = {.name = (char *)name};
    entry *e = bsearch(&key, w->e, (size_t)w->n, sizeof *w->e, entry_cmp);
    if (!e) return NULL;
    e->used = 1;
    return &e->t;
}

ctts_status pocket_weights_check_all_used(const pocket_weights *w, char *err, size_t err_len) {
    for (int i = 0; i < w->n; i++)
        if (!w->e[i].used)
            return ctts_err(err, err_len, CTTS_E_FORMAT, "%s: unexpected tensor '%s'", w->source,
                            w->e[i].name);
    return CTTS_OK;
}

int pocket_weights_count(const pocket_weights *w) { return w->n; }

const ctts_tensor *pocket_weights_at(const pocket_weights *w, int i) {
    return i >= 0 && i < w->n ? &w->e[i].t : NULL;
}

int64_t pocket_weights_n_params(const pocket_weights *w) {
    int64_t n = 0;
    for (int i = 0; i < w->n; i++) n += ctts_tensor_numel(&w->e[i].t);
    return n;
}

const char *pocket_weights_source(const pocket_weights *w) { return w->source; }

/* ---- conversion at load (ctts_model_params.weight_type) ---- */

/* The dtype a tensor is stored in for a requested dtype `to` (t->dtype =
 * left as stored). Not converted: non-matrix tensors (norms, biases, conv
 * kernels: the convolutions take float weights), the text embedding table
 * (rows are read, not multiplied) and input_linear (the latent fed back each
 * frame: quantizing its 32-wide rows makes the autoregressive loop drift).
 * For the block types the flow head stays as stored and, for Q4_0, attention is
 * Q8_0: the latent-cosine measurements behind these choices are in
 * docs/BENCHMARKS.md. */
/* Convolutions from this many weights up take BF16 products in the fast modes. */
#define BF16_CONV_MIN 65536

static ctts_dtype target_dtype(const ctts_tensor *t, ctts_dtype to) {
    const char *n = t->name ? t->name : "";
    const int block = to == CTTS_DT_Q8_0 || to == CTTS_DT_Q4_0;
    /* Block modes: the audio decoder's convolutions in BF16, run as BF16
     * products (pocket_weights_convert; their output is not fed back), the
     * tiny ones in F16 (packing for BF16 products would cost more). */
    if (block && t->ndim == 3 && strncmp(n, "mimi.decoder.", 13) == 0 && t->dtype == CTTS_DT_F32)
        return ctts_tensor_numel(t) >= BF16_CONV_MIN ? CTTS_DT_BF16 : CTTS_DT_F16;
    if (t->ndim != 2 || strcmp(n, "flow_lm.conditioner.embed.weight") == 0 ||
        strstr(n, "input_linear"))
        return t->dtype;
    if (block) {
        /* The flow head feeds the latent back every frame: F16, not blocks
         * (Q8_0 cost 0.002 of latent cosine, BF16's 8 mantissa bits more). */
        if (strstr(n, "flow_net.")) return t->dtype == CTTS_DT_F32 ? CTTS_DT_F16 : t->dtype;
        if (to == CTTS_DT_Q4_0 && strstr(n, ".self_attn.")) return CTTS_DT_Q8_0;
    }
    return to;
}

/* With a block-quantized FlowLM (the fast modes, converted now or by ctts
 * quantize) the audio decoder's BF16 convolutions take BF16 products. */
static void mark_bf16_products(pocket_weights *w) {
    int fast = 0;
    for (int i = 0; i < w->n && !fast; i++)
        fast = !strncmp(w->e[i].t.name, "flow_lm.transformer.", 20) &&
               (w->e[i].t.dtype == CTTS_DT_Q8_0 || w->e[i].t.dtype == CTTS_DT_Q4_0);
    for (int i = 0; fast && i < w->n; i++) {
        ctts_tensor *t = &w->e[i].t;
        if (t->ndim == 3 && t->dtype == CTTS_DT_BF16 && !strncmp(t->name, "mimi.decoder.", 13) &&
            ctts_tensor_numel(t) >= BF16_CONV_MIN)
            t->bf16_products = 1;
    }
}

ctts_status pocket_weights_convert(pocket_weights *w, ctts_weight_type wt, int n_threads,
                                   char *err, size_t err_len) {
    if (wt == CTTS_WEIGHTS_KEEP) {
        mark_bf16_products(w); /* a GGUF from ctts quantize */
        return CTTS_OK;
    }
    const ctts_dtype want = quant_weight_dtype(wt);
    if (want == CTTS_DT_COUNT)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "unknown weight type %d", (int)wt);
    for (int i = 0; i < w->n; i++) {
        entry *e = &w->e[i];
        ctts_dtype to = target_dtype(&e->t, want);
        if (e->t.dtype == to) continue;
        if (!quant_can_convert(&e->t, to)) {
            /* Block types need rows of 32: such a matrix falls back to BF16 / as stored. */
            if (ctts_dtype_size(to) != 0) continue;
            to = CTTS_DT_BF16;
            if (e->t.dtype == to || !quant_can_convert(&e->t, to)) continue;
        }
        void *data;
        size_t bytes;
        ctts_status st = quant_convert(&e->t, to, n_threads, &data, &bytes, err, err_len);
        if (st != CTTS_OK) return st;
        if (!e->owned) quant_release_pages(e->t.data, e->t.nbytes); /* mapped file pages */
        free(e->owned);
        e->owned = data;
        e->t.data = data;
        e->t.nbytes = bytes;
        e->t.dtype = to;
    }
    mark_bf16_products(w);
    return CTTS_OK;
}

ctts_status pocket_weights_write_gguf(const pocket_weights *w, const char *path,
                                      const char *const *kv, int n_kv, char *err,
                                      size_t err_len) {
    const ctts_tensor **t = malloc(((size_t)w->n + 1) * sizeof *t);
    if (!t) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    for (int i = 0; i < w->n; i++) t[i] = &w->e[i].t;
    ctts_status st = gguf_write(path, t, w->n, kv, n_kv, err, err_len);
    free(t);
    return st;
}
