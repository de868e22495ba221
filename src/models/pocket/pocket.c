/*
 * Pocket TTS family glue: load (config -> weights -> binding -> tokenizer),
 * description and tokenization. The generation stream (text chunks -> FlowLM
 * latents -> Mimi audio) is in pocket_stream.c; voices in pocket_voice.c.
 */
#include "models/pocket/pocket.h"
#include "models/pocket/pocket_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "io/safetensors.h"
#include "models/pocket/flowlm.h"
#include "models/pocket/mimi.h"
#include "models/pocket/pocket_hub.h"
#include "models/pocket/pocket_text.h"
#include "models/pocket/pocket_weights.h"
#include "text/sentencepiece.h"

ctts_gen_params pocket_default_gen_params(void) {
    ctts_gen_params p;
    memset(&p, 0, sizeof p);
    p.seed = 0;
    p.temperature = 0.7f;
    p.lsd_steps = 1;
    p.noise_clamp = 0.0f;
    p.eos_threshold = -4.0f;
    p.frames_after_eos = -1;
    p.max_frames = 0;
    p.max_tokens_per_chunk = 50;
    p.pipeline = -1;
    return p;
}

/* ---- model ---- */

ctts_status pocket_model_load(const char *path, const ctts_model_params *p, pocket_model **out,
                              char *err, size_t err_len) {
    *out = NULL;
    pocket_model *m = calloc(1, sizeof *m);
    if (!m) return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    ctts_status st = pocket_config_load(path, &m->cfg, err, err_len);
    if (st == CTTS_OK) st = pocket_config_fetch(&m->cfg, &p->hub, err, err_len);
    if (st == CTTS_OK) st = pocket_weights_open(&m->cfg, &m->weights, err, err_len);
    if (st == CTTS_OK) st = spm_load(m->cfg.tokenizer_path, &m->spm, err, err_len);
    if (st == CTTS_OK && spm_vocab_size(m->spm) != m->cfg.flow.n_bins)
        st = ctts_err(err, err_len, CTTS_E_FORMAT,
                      "%s: vocabulary size %d does not match flow_lm.lookup_table.n_bins %d",
                      m->cfg.tokenizer_path, spm_vocab_size(m->spm), m->cfg.flow.n_bins);
    if (st == CTTS_OK) {
        m->be = ctts_backend_cpu_new(p->n_threads, (int)p->cpu_isa);
        m->cpu_isa = (int)p->cpu_isa;
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        m->n_threads = p->n_threads > 0 ? p->n_threads : online > 0 ? (int)online : 1;
        if (!m->be) st = ctts_err(err, err_len, CTTS_E_BACKEND, "cannot start the CPU backend");
    }
    if (st == CTTS_OK) st = pocket_weights_convert(m->weights, p->weight_type, m->n_threads, err, err_len);
    if (st == CTTS_OK)
        st = pocket_flowlm_bind(&m->cfg.flow, m->be, pocket_weights_get, m->weights, &m->flowlm,
                                err, err_len);
    if (st == CTTS_OK)
        st = pocket_mimi_bind(&m->cfg.mimi, m->be, pocket_weights_get, m->weights, &m->mimi, err,
                              err_len);
    if (st != CTTS_OK && m->weights && err && err_len && !strstr(err, ".safetensors")) {
        /* Binding messages name the tensor; add the file it was looked up in. */
        char inner[512];
        snprintf(inner, sizeof inner, "%s", err);
        snprintf(err, err_len, "%s: %s", pocket_weights_source(m->weights), inner);
    }
    if (st == CTTS_OK) st = pocket_weights_check_all_used(m->weights, err, err_len);
    if (st != CTTS_OK) {
        pocket_model_free(m);
        return st;
    }
    *out = m;
    return CTTS_OK;
}

void pocket_model_free(pocket_model *m) {
    if (!m) return;
    pocket_mimi_free(m->mimi);
    pocket_flowlm_free(m->flowlm);
    spm_free(m->spm);
    pocket_weights_free(m->weights);
    if (m->be) m->be->destroy(m->be);
    free(m);
}

const pocket_config *pocket_model_config(const pocket_model *m) { return &m->cfg; }

ctts_backend *pocket_model_backend(pocket_model *m) { return m->be; }

int64_t pocket_model_n_params(const pocket_model *m) {
    return pocket_weights_n_params(m->weights);
}

int pocket_frame_size(const pocket_model *m) { return m->cfg.mimi.frame_size; }

#define APPEND(...)                                                           \
    do {                                                                      \
        int k_ = snprintf(len > o ? buf + o : NULL, len > o ? len - o : 0, __VA_ARGS__); \
        if (k_ > 0) o += (size_t)k_;                                          \
    } while (0)

size_t pocket_model_describe(const pocket_model *m, char *buf, size_t len) {
    size_t o = 0;
    const pocket_config *c = &m->cfg;
    const pocket_flowlm_config *f = &c->flow;
    const pocket_mimi_config *mi = &c->mimi;
    APPEND("family: pocket\nconfig: %s\n", c->config_path[0] ? c->config_path : c->name);
    APPEND("weights: %s\ntokenizer: %s (vocab %d)\n", pocket_weights_source(m->weights),
           c->tokenizer_path, spm_vocab_size(m->spm));
    APPEND("flow_lm: d_model %d, heads %d, layers %d, ffn %d, rope max_period %g, latent %d, "
           "flow mlp %d x %d, bos_before_voice %s\n",
           f->d_model, f->num_heads, f->num_layers, f->d_model * f->hidden_scale, f->max_period,
           f->ldim, f->flow_dim, f->flow_depth, f->insert_bos_before_voice ? "yes" : "no");
    APPEND("mimi: %d Hz, %.4g frames/s (%d samples per frame), seanet %d filters, dim %d, "
           "ratios",
           mi->sample_rate, mi->frame_rate, mi->frame_size, mi->n_filters, mi->dimension);
    for (int i = 0; i < mi->n_ratios; i++) APPEND(" %d", mi->ratios[i]);
    APPEND(", transformer d %d x %d layers, %d heads, context %d\n", mi->transformer.d_model,
           mi->transformer.num_layers, mi->transformer.num_heads, mi->transformer.context);
    APPEND("text: remove_semicolons %d, pad_short_inputs %d, recommended_frames_after_eos %d\n",
           c->remove_semicolons, c->pad_with_spaces_for_short_inputs,
           c->recommended_frames_after_eos);
    int n = pocket_weights_count(m->weights);
    int64_t bytes = 0;
    int64_t by_dtype[CTTS_DT_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        const ctts_tensor *t = pocket_weights_at(m->weights, i);
        bytes += (int64_t)t->nbytes;
        by_dtype[t->dtype] += ctts_tensor_numel(t);
    }
    APPEND("parameters: %lld in %d tensors, %.1f MB\n", (long long)pocket_model_n_params(m), n,
           bytes / 1e6);
    for (int d = 0; d < CTTS_DT_COUNT; d++)
        if (by_dtype[d]) APPEND("  %s: %lld parameters\n", ctts_dtype_name((ctts_dtype)d),
                                (long long)by_dtype[d]);
    APPEND("tensors:\n");
    for (int i = 0; i < n; i++) {
        const ctts_tensor *t = pocket_weights_at(m->weights, i);
        char shape[96];
        APPEND("  %-72s %-5s %s\n", t->name, ctts_dtype_name(t->dtype),
               ctts_shape_str(t, shape, sizeof shape));
    }
    return o;
}

ctts_status pocket_tokenize(const pocket_model *m, const char *text, int prepared, int32_t **ids,
                            size_t *n, char *err, size_t err_len) {
    if (!prepared) return spm_encode(m->spm, text, strlen(text), ids, n, err, err_len);
    pocket_text_options o = {m->cfg.remove_semicolons, m->cfg.pad_with_spaces_for_short_inputs};
    char *pt = NULL;
    int guess;
    ctts_status st = pocket_prepare_text(text, &o, &pt, &guess, err, err_len);
    if (st == CTTS_OK) st = spm_encode(m->spm, pt, strlen(pt), ids, n, err, err_len);
    free(pt);
    return st;
}
