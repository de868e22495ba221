/*
 * Random-weight Pocket TTS models in the exact official single-file layout
 * (ctts_dev_make_random_model): benchmarks and tests get a full-size model
 * without any download.
 *
 * The tensor list is derived from the config the way the official modules
 * name their parameters; loading the result through the normal binding code
 * checks the two agree. Values are deterministic: each tensor draws from its
 * own xoshiro stream seeded by (seed, FNV-1a hash of its name), scaled by
 * 1/sqrt(fan_in) so activations stay O(1). Norm weights are 1, biases 0,
 * LayerScale the config value, time-embedding frequencies the exact buffer.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctts.h"
#include "base/error.h"
#include "io/file_copy.h"
#include "base/rng.h"
#include "io/safetensors.h"
#include "models/pocket/pocket.h"
#include "models/pocket/pocket_config.h"
#include "text/sentencepiece.h"

typedef enum { INIT_RANDOM, INIT_ONES, INIT_ZEROS, INIT_CONST, INIT_FREQS } init_kind;

typedef struct {
    ctts_tensor *t;
    int n, cap;
    ctts_status st;
    uint64_t seed;
    char *err;
    size_t err_len;
} spec_list;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Adds one tensor (shape given as up to 5 dims, trailing zeros ignored). */
static void add(spec_list *l, init_kind kind, float value, const char *name, int64_t d0,
                int64_t d1, int64_t d2) {
    if (l->st != CTTS_OK) return;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 256;
        ctts_tensor *nt = realloc(l->t, (size_t)cap * sizeof *nt);
        if (!nt) {
            l->st = ctts_err(l->err, l->err_len, CTTS_E_OOM, "out of memory");
            return;
        }
        l->t = nt;
        l->cap = cap;
    }
    ctts_tensor *t = &l->t[l->n];
    memset(t, 0, sizeof *t);
    t->dtype = CTTS_DT_F32;
    int64_t dims[3] = {d0, d1, d2};
    for (int i = 0; i < 3 && dims[i] > 0; i++) t->shape[t->ndim++] = dims[i];
    int64_t numel = ctts_tensor_numel(t);
    t->nbytes = (size_t)numel * 4;
    t->name = strdup(name);
    float *d = malloc(t->nbytes ? t->nbytes : 4);
    if (!d || !t->name) {
        free(d);
        free((char *)t->name);
        l->st = ctts_err(l->err, l->err_len, CTTS_E_OOM, "out of memory (%s)", name);
        return;
    }
    t->data = d;
    l->n++;
    int64_t fan_in = t->ndim > 1 ? numel / t->shape[0] : numel;
    ctts_rng rng;
    ctts_rng_seed(&rng, l->seed ^ fnv1a(name));
    float scale = 1.0f / sqrtf((float)(fan_in > 0 ? fan_in : 1));
    for (int64_t i = 0; i < numel; i++) {
        switch (kind) {
        case INIT_RANDOM: d[i] = ctts_rng_normal(&rng) * scale * value; break;
        case INIT_ONES: d[i] = 1.0f; break;
        case INIT_ZEROS: d[i] = 0.0f; break;
        case INIT_CONST: d[i] = value; break;
        case INIT_FREQS: d[i] = expf(-logf(10000.0f) * (float)i / (float)numel); break;
        }
    }
}

#define NAME(...) (snprintf(nm, sizeof nm, __VA_ARGS__), nm)

static void add_norm(spec_list *l, const char *prefix, int64_t d) {
    char nm[400];
    add(l, INIT_ONES, 0, NAME("%s.weight", prefix), d, 0, 0);
    add(l, INIT_ZEROS, 0, NAME("%s.bias", prefix), d, 0, 0);
}

static void add_linear(spec_list *l, const char *prefix, int64_t out, int64_t in, int bias) {
    char nm[400];
    add(l, INIT_RANDOM, 1, NAME("%s.weight", prefix), out, in, 0);
    if (bias) add(l, INIT_RANDOM, 0.1f, NAME("%s.bias", prefix), out, 0, 0);
}

static void add_transformer(spec_list *l, const char *prefix, int layers, int64_t d, int64_t ff,
                            int layer_scale, float ls_value) {
    char nm[256], p[200];
    for (int i = 0; i < layers; i++) {
        snprintf(p, sizeof p, "%s.layers.%d", prefix, i);
        if (layer_scale) {
            add(l, INIT_CONST, ls_value, NAME("%s.layer_scale_1.scale", p), d, 0, 0);
            add(l, INIT_CONST, ls_value, NAME("%s.layer_scale_2.scale", p), d, 0, 0);
        }
        add_linear(l, NAME("%s.linear1", p), ff, d, 0);
        add_linear(l, NAME("%s.linear2", p), d, ff, 0);
        add_norm(l, NAME("%s.norm1", p), d);
        add_norm(l, NAME("%s.norm2", p), d);
        add_linear(l, NAME("%s.self_attn.in_proj", p), 3 * d, d, 0);
        add_linear(l, NAME("%s.self_attn.out_proj", p), d, d, 0);
    }
}

static void add_flow_lm(spec_list *l, const pocket_config *c) {
    const pocket_flowlm_config *f = &c->flow;
    int64_t d = f->d_model, fd = f->flow_dim, ld = f->ldim;
    char nm[256], p[200];
    if (f->insert_bos_before_voice)
        add(l, INIT_RANDOM, 1, "flow_lm.bos_before_voice", 1, 1, d);
    add(l, INIT_RANDOM, 1, "flow_lm.bos_emb", ld, 0, 0);
    add(l, INIT_RANDOM, 1, "flow_lm.conditioner.embed.weight", f->n_bins + 1, d, 0);
    add(l, INIT_ZEROS, 0, "flow_lm.emb_mean", ld, 0, 0);
    add(l, INIT_ONES, 0, "flow_lm.emb_std", ld, 0, 0);
    add_linear(l, "flow_lm.flow_net.cond_embed", fd, d, 1);
    add_linear(l, "flow_lm.flow_net.final_layer.adaLN_modulation.1", 2 * fd, fd, 1);
    add_linear(l, "flow_lm.flow_net.final_layer.linear", ld, fd, 1);
    add_linear(l, "flow_lm.flow_net.input_proj", fd, ld, 1);
    for (int i = 0; i < f->flow_depth; i++) {
        snprintf(p, sizeof p, "flow_lm.flow_net.res_blocks.%d", i);
        add_linear(l, NAME("%s.adaLN_modulation.1", p), 3 * fd, fd, 1);
        add_norm(l, NAME("%s.in_ln", p), fd);
        add_linear(l, NAME("%s.mlp.0", p), fd, fd, 1);
        add_linear(l, NAME("%s.mlp.2", p), fd, fd, 1);
    }
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "flow_lm.flow_net.time_embed.%d", i);
        add(l, INIT_FREQS, 0, NAME("%s.freqs", p), 128, 0, 0);
        add_linear(l, NAME("%s.mlp.0", p), fd, 256, 1);
        add_linear(l, NAME("%s.mlp.2", p), fd, fd, 1);
        add(l, INIT_ONES, 0, NAME("%s.mlp.3.alpha", p), fd, 0, 0);
    }
    add_linear(l, "flow_lm.input_linear", d, ld, 0);
    add_linear(l, "flow_lm.out_eos", 1, d, 1);
    add_norm(l, "flow_lm.out_norm", d);
    add(l, INIT_RANDOM, 1, "flow_lm.speaker_proj_weight", d, c->mimi.inner_dim, 0);
    add_transformer(l, "flow_lm.transformer", f->num_layers, d, d * f->hidden_scale, 0, 0);
}

static void add_conv(spec_list *l, const char *prefix, int idx, const char *kind, int64_t a,
                     int64_t b, int64_t k) {
    char nm[256];
    add(l, INIT_RANDOM, 1, NAME("%s.%d.%s.weight", prefix, idx, kind), a, b, k);
    add(l, INIT_RANDOM, 0.1f, NAME("%s.%d.%s.bias", prefix, idx, kind),
        strcmp(kind, "convtr") == 0 ? b : a, 0, 0);
}

static void add_resblock(spec_list *l, const char *prefix, int idx, const pocket_mimi_config *m,
                         int64_t dim) {
    char nm[256];
    int64_t hidden = dim / m->compress;
    add(l, INIT_RANDOM, 1, NAME("%s.%d.block.1.conv.weight", prefix, idx), hidden, dim,
        m->residual_kernel_size);
    add(l, INIT_RANDOM, 0.1f, NAME("%s.%d.block.1.conv.bias", prefix, idx), hidden, 0, 0);
    add(l, INIT_RANDOM, 1, NAME("%s.%d.block.3.conv.weight", prefix, idx), dim, hidden, 1);
    add(l, INIT_RANDOM, 0.1f, NAME("%s.%d.block.3.conv.bias", prefix, idx), dim, 0, 0);
}

static void add_mimi(spec_list *l, const pocket_config *c) {
    const pocket_mimi_config *m = &c->mimi;
    int64_t C = m->dimension, nf = m->n_filters;
    int nr = m->n_ratios, idx = 0;
    /* Encoder: conv, then per ratio (reversed): residual blocks, ELU, strided conv; ELU, conv. */
    int64_t mult = 1;
    add_conv(l, "mimi.encoder.model", idx++, "conv", nf, m->channels, m->kernel_size);
    for (int i = nr - 1; i >= 0; i--) {
        for (int j = 0; j < m->n_residual_layers; j++)
            add_resblock(l, "mimi.encoder.model", idx++, m, mult * nf);
        idx++; /* ELU */
        add_conv(l, "mimi.encoder.model", idx++, "conv", mult * nf * 2, mult * nf,
                 2 * m->ratios[i]);
        mult *= 2;
    }
    idx++; /* ELU */
    add_conv(l, "mimi.encoder.model", idx, "conv", C, mult * nf, m->last_kernel_size);
    /* Decoder: conv, then per ratio: ELU, transposed conv, residual blocks; ELU, conv. */
    idx = 0;
    add_conv(l, "mimi.decoder.model", idx++, "conv", mult * nf, C, m->kernel_size);
    for (int i = 0; i < nr; i++) {
        idx++; /* ELU */
        add_conv(l, "mimi.decoder.model", idx++, "convtr", mult * nf, mult * nf / 2,
                 2 * m->ratios[i]);
        mult /= 2;
        for (int j = 0; j < m->n_residual_layers; j++)
            add_resblock(l, "mimi.decoder.model", idx++, m, mult * nf);
    }
    idx++; /* ELU */
    add_conv(l, "mimi.decoder.model", idx, "conv", m->channels, nf, m->last_kernel_size);
    const pocket_mimi_transformer_config *t = &m->transformer;
    add_transformer(l, "mimi.decoder_transformer.transformer", t->num_layers, C,
                    t->dim_feedforward, 1, t->layer_scale);
    add_transformer(l, "mimi.encoder_transformer.transformer", t->num_layers, C,
                    t->dim_feedforward, 1, t->layer_scale);
    add(l, INIT_RANDOM, 1, "mimi.downsample.conv.conv.weight", m->inner_dim, C,
        2 * m->resample_stride);
    add(l, INIT_RANDOM, 1, "mimi.quantizer.output_proj.weight", m->outer_dim,
        m->quantizer_dimension, 1);
    add(l, INIT_RANDOM, 1, "mimi.upsample.convtr.convtr.weight", C, 1, 2 * m->resample_stride);
}

/* A config in the official schema pointing at the local files. */
static ctts_status write_config(const pocket_config *c, const char *path, uint64_t seed,
                                char *err, size_t err_len) {
    char head[POCKET_PATH_MAX + 160];
    snprintf(head, sizeof head,
             "Random-weight Pocket TTS model '%s' (seed %llu), written by ctts dev "
             "make-random-model.",
             c->name, (unsigned long long)seed);
    return pocket_write_config(c, path, "model.safetensors", head, err, err_len);
}

ctts_status pocket_write_config(const pocket_config *c, const char *path, const char *weights_file,
                                const char *comment, char *err, size_t err_len) {
    FILE *f = fopen(path, "w");
    if (!f) return ctts_err(err, err_len, CTTS_E_IO, "cannot write '%s': %s", path, strerror(errno));
    const pocket_flowlm_config *fl = &c->flow;
    const pocket_mimi_config *m = &c->mimi;
    fprintf(f, "# %s\nweights_path: %s\n", comment, weights_file);
    if (c->remove_semicolons) fprintf(f, "remove_semicolons: true\n");
    if (c->pad_with_spaces_for_short_inputs) fprintf(f, "pad_with_spaces_for_short_inputs: true\n");
    if (c->recommended_frames_after_eos >= 0)
        fprintf(f, "model_recommended_frames_after_eos: %d\n", c->recommended_frames_after_eos);
    fprintf(f, "flow_lm:\n  insert_bos_before_voice: %s\n  dtype: float32\n  flow:\n    depth: %d\n"
               "    dim: %d\n  transformer:\n    d_model: %d\n    hidden_scale: %d\n"
               "    max_period: %d\n    num_heads: %d\n    num_layers: %d\n  lookup_table:\n"
               "    dim: %d\n    n_bins: %d\n    tokenizer: sentencepiece\n"
               "    tokenizer_path: tokenizer.model\n",
            fl->insert_bos_before_voice ? "true" : "false", fl->flow_depth, fl->flow_dim,
            fl->d_model, fl->hidden_scale, (int)fl->max_period, fl->num_heads, fl->num_layers,
            fl->lut_dim, fl->n_bins);
    fprintf(f, "mimi:\n  dtype: float32\n  sample_rate: %d\n  inner_dim: %d\n  outer_dim: %d\n"
               "  channels: %d\n  frame_rate: %g\n  seanet:\n    dimension: %d\n    channels: %d\n"
               "    n_filters: %d\n    n_residual_layers: %d\n    ratios:\n",
            m->sample_rate, m->inner_dim, m->outer_dim, m->channels, m->frame_rate, m->dimension,
            m->channels, m->n_filters, m->n_residual_layers);
    for (int i = 0; i < m->n_ratios; i++) fprintf(f, "    - %d\n", m->ratios[i]);
    fprintf(f, "    kernel_size: %d\n    residual_kernel_size: %d\n    last_kernel_size: %d\n"
               "    dilation_base: %d\n    pad_mode: %s\n    compress: %d\n  transformer:\n"
               "    d_model: %d\n    num_heads: %d\n    num_layers: %d\n    layer_scale: %g\n"
               "    context: %d\n    dim_feedforward: %d\n    input_dimension: %d\n"
               "    output_dimensions:\n    - %d\n  quantizer:\n    dimension: %d\n"
               "    output_dimension: %d\n",
            m->kernel_size, m->residual_kernel_size, m->last_kernel_size, m->dilation_base,
            m->pad_mode_replicate ? "replicate" : "constant", m->compress, m->transformer.d_model,
            m->transformer.num_heads, m->transformer.num_layers, m->transformer.layer_scale,
            m->transformer.context, m->transformer.dim_feedforward, m->transformer.d_model,
            m->transformer.d_model, m->quantizer_dimension, m->quantizer_output_dimension);
    return fclose(f) == 0 ? CTTS_OK
                          : ctts_err(err, err_len, CTTS_E_IO, "cannot write '%s'", path);
}

ctts_status ctts_dev_make_random_model(const char *config, uint64_t seed,
                                       const char *tokenizer_src, const char *out_dir, char *err,
                                       size_t err_len) {
    if (!config || !out_dir)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "config and out_dir are required");
    pocket_config c;
    ctts_status st = pocket_config_load(config, &c, err, err_len);
    if (st != CTTS_OK) return st;
    const char *tok = tokenizer_src ? tokenizer_src : c.tokenizer_path;
    if (!tok[0] || strncmp(tok, "hf://", 5) == 0)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "config '%s' has no local tokenizer: give a tokenizer.model with "
                        "vocabulary %d (--tokenizer)", config, c.flow.n_bins);
    spm_model *sp = NULL;
    st = spm_load(tok, &sp, err, err_len);
    if (st != CTTS_OK) return st;
    int vocab = spm_vocab_size(sp);
    spm_free(sp);
    if (vocab != c.flow.n_bins)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "tokenizer '%s' has vocabulary %d but the config needs n_bins %d", tok,
                        vocab, c.flow.n_bins);
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        return ctts_err(err, err_len, CTTS_E_IO, "cannot create '%s': %s", out_dir,
                        strerror(errno));
    spec_list l = {.seed = seed, .err = err, .err_len = err_len};
    add_flow_lm(&l, &c);
    add_mimi(&l, &c);
    char path[POCKET_PATH_MAX + 32];
    if (l.st == CTTS_OK) {
        snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
        l.st = st_write(path, l.t, l.n, err, err_len);
    }
    if (l.st == CTTS_OK) {
        snprintf(path, sizeof path, "%s/tokenizer.model", out_dir);
        l.st = io_copy_file(tok, path, err, err_len);
    }
    if (l.st == CTTS_OK) {
        snprintf(path, sizeof path, "%s/config.yaml", out_dir);
        l.st = write_config(&c, path, seed, err, err_len);
    }
    for (int i = 0; i < l.n; i++) {
        free(l.t[i].data);
        free((char *)l.t[i].name);
    }
    free(l.t);
    return l.st;
}
