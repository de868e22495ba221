/*
 * Pocket TTS config: official YAML schema -> pocket_config.
 *
 * Mirrors the official pydantic schema (pocket_tts/utils/config.py): every
 * model is "extra = forbid", so an unknown key is an error, and required keys
 * must be present with the right type. Relative weight / tokenizer paths are
 * resolved against the folder holding the YAML file; hf:// paths are kept
 * as written for the download layer. Derived Mimi sizes are checked here so
 * the model code can trust them.
 */
#include "models/pocket/pocket_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "io/yaml.h"
#include "models/pocket/pocket_configs_builtin.h"

typedef struct {
    const char *name; /* for messages: config file or built-in name */
    char *err;
    size_t err_len;
} ctx_t;

/* Allowed keys of a mapping; NULL-terminated. */
static ctts_status check_keys(ctx_t *c, const json_value *obj, const char *where,
                              const char *const *allowed) {
    if (!obj || obj->type != JSON_OBJECT)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: '%s' must be a mapping", c->name,
                        where);
    for (size_t i = 0; i < obj->length; i++) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(obj->keys[i], *a) == 0) ok = 1;
        if (!ok)
            return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: unknown key '%s%s%s'", c->name,
                            where, *where ? "." : "", obj->keys[i]);
    }
    return CTTS_OK;
}

static ctts_status get_int(ctx_t *c, const json_value *obj, const char *where, const char *key,
                           int required, int def, int lo, int hi, int *out) {
    const json_value *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) {
        if (required)
            return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: missing key '%s.%s'", c->name,
                            where, key);
        *out = def;
        return CTTS_OK;
    }
    if (v->type != JSON_NUMBER || !v->is_integer || v->integer < lo || v->integer > hi)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: '%s.%s' must be an integer in [%d, %d]", c->name, where, key, lo, hi);
    *out = (int)v->integer;
    return CTTS_OK;
}

static ctts_status get_float(ctx_t *c, const json_value *obj, const char *where, const char *key,
                             int required, float def, float *out) {
    const json_value *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) {
        if (required)
            return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: missing key '%s.%s'", c->name,
                            where, key);
        *out = def;
        return CTTS_OK;
    }
    if (v->type != JSON_NUMBER || !(v->number == v->number))
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: '%s.%s' must be a number",
                        c->name, where, key);
    *out = (float)v->number;
    return CTTS_OK;
}

static ctts_status get_bool(ctx_t *c, const json_value *obj, const char *where, const char *key,
                            int def, int *out) {
    const json_value *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) {
        *out = def;
        return CTTS_OK;
    }
    if (v->type != JSON_BOOL)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: '%s%s%s' must be true or false",
                        c->name, where, *where ? "." : "", key);
    *out = v->boolean;
    return CTTS_OK;
}

/* Copies a path value, resolving relative file paths against base_dir. */
static ctts_status get_path(ctx_t *c, const json_value *obj, const char *where, const char *key,
                            int required, const char *base_dir, char *out) {
    const json_value *v = json_get(obj, key);
    out[0] = 0;
    if (!v || v->type == JSON_NULL) {
        if (required)
            return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: missing key '%s%s%s'",
                            c->name, where, *where ? "." : "", key);
        return CTTS_OK;
    }
    if (v->type != JSON_STRING || v->length == 0 || strlen(v->string) != v->length)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: '%s%s%s' must be a path string",
                        c->name, where, *where ? "." : "", key);
    int n;
    if (v->string[0] == '/' || strncmp(v->string, "hf://", 5) == 0 || !base_dir || !*base_dir)
        n = snprintf(out, POCKET_PATH_MAX, "%s", v->string);
    else
        n = snprintf(out, POCKET_PATH_MAX, "%s/%s", base_dir, v->string);
    if (n < 0 || n >= POCKET_PATH_MAX)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: '%s' path too long", c->name, key);
    return CTTS_OK;
}

#define TRY(x)                                \
    do {                                      \
        ctts_status st_ = (x);                \
        if (st_ != CTTS_OK) return st_;       \
    } while (0)

static ctts_status parse_flow_lm(ctx_t *c, const json_value *fl, const char *base_dir,
                                 pocket_config *cfg) {
    static const char *const keys[] = {"dtype",        "flow",         "transformer",
                                       "lookup_table", "weights_path", "insert_bos_before_voice",
                                       NULL};
    static const char *const flow_keys[] = {"dim", "depth", NULL};
    static const char *const tr_keys[] = {"hidden_scale", "max_period", "d_model", "num_heads",
                                          "num_layers", NULL};
    static const char *const lut_keys[] = {"dim", "n_bins", "tokenizer", "tokenizer_path", NULL};
    pocket_flowlm_config *f = &cfg->flow;
    TRY(check_keys(c, fl, "flow_lm", keys));
    const json_value *dt = json_get(fl, "dtype");
    if (!dt || dt->type != JSON_STRING)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: missing key 'flow_lm.dtype'",
                        c->name);
    const json_value *flow = json_get(fl, "flow"), *tr = json_get(fl, "transformer");
    const json_value *lut = json_get(fl, "lookup_table");
    TRY(check_keys(c, flow, "flow_lm.flow", flow_keys));
    TRY(check_keys(c, tr, "flow_lm.transformer", tr_keys));
    TRY(check_keys(c, lut, "flow_lm.lookup_table", lut_keys));
    TRY(get_int(c, flow, "flow_lm.flow", "dim", 1, 0, 1, 1 << 16, &f->flow_dim));
    TRY(get_int(c, flow, "flow_lm.flow", "depth", 1, 0, 1, 1024, &f->flow_depth));
    TRY(get_int(c, tr, "flow_lm.transformer", "hidden_scale", 1, 0, 1, 64, &f->hidden_scale));
    int max_period;
    TRY(get_int(c, tr, "flow_lm.transformer", "max_period", 1, 0, 1, 1 << 30, &max_period));
    f->max_period = (float)max_period;
    TRY(get_int(c, tr, "flow_lm.transformer", "d_model", 1, 0, 1, 1 << 16, &f->d_model));
    TRY(get_int(c, tr, "flow_lm.transformer", "num_heads", 1, 0, 1, 1024, &f->num_heads));
    TRY(get_int(c, tr, "flow_lm.transformer", "num_layers", 1, 0, 1, 1024, &f->num_layers));
    TRY(get_int(c, lut, "flow_lm.lookup_table", "dim", 1, 0, 1, 1 << 16, &f->lut_dim));
    TRY(get_int(c, lut, "flow_lm.lookup_table", "n_bins", 1, 0, 1, 1 << 24, &f->n_bins));
    const json_value *tok = json_get(lut, "tokenizer");
    if (!tok || tok->type != JSON_STRING || strcmp(tok->string, "sentencepiece") != 0)
        return ctts_err(c->err, c->err_len, CTTS_E_UNSUPPORTED,
                        "%s: 'flow_lm.lookup_table.tokenizer' must be 'sentencepiece'", c->name);
    TRY(get_path(c, lut, "flow_lm.lookup_table", "tokenizer_path", 1, base_dir,
                 cfg->tokenizer_path));
    TRY(get_path(c, fl, "flow_lm", "weights_path", 0, base_dir, cfg->flow_lm_weights_path));
    TRY(get_bool(c, fl, "flow_lm", "insert_bos_before_voice", 0, &f->insert_bos_before_voice));
    if (f->d_model % f->num_heads || (f->d_model / f->num_heads) % 2)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: flow_lm.transformer.d_model %d is not a multiple of 2*num_heads %d",
                        c->name, f->d_model, f->num_heads);
    if (f->lut_dim != f->d_model)
        return ctts_err(c->err, c->err_len, CTTS_E_UNSUPPORTED,
                        "%s: flow_lm.lookup_table.dim %d must equal transformer.d_model %d",
                        c->name, f->lut_dim, f->d_model);
    return CTTS_OK;
}

static ctts_status parse_mimi(ctx_t *c, const json_value *mi, const char *base_dir,
                              pocket_config *cfg) {
    static const char *const keys[] = {"dtype",       "sample_rate", "channels",  "frame_rate",
                                       "seanet",      "transformer", "quantizer", "weights_path",
                                       "inner_dim",   "outer_dim",   NULL};
    static const char *const sea_keys[] = {
        "dimension",   "channels",   "n_filters",    "n_residual_layers",
        "ratios",      "kernel_size", "residual_kernel_size", "last_kernel_size",
        "dilation_base", "pad_mode",  "compress",     NULL};
    static const char *const tr_keys[] = {"d_model",    "input_dimension", "output_dimensions",
                                          "num_heads",  "num_layers",      "layer_scale",
                                          "context",    "max_period",      "dim_feedforward",
                                          NULL};
    static const char *const q_keys[] = {"dimension", "output_dimension", NULL};
    pocket_mimi_config *m = &cfg->mimi;
    TRY(check_keys(c, mi, "mimi", keys));
    TRY(get_int(c, mi, "mimi", "sample_rate", 1, 0, 1, 1 << 22, &m->sample_rate));
    TRY(get_int(c, mi, "mimi", "channels", 1, 0, 1, 1, &m->channels));
    TRY(get_float(c, mi, "mimi", "frame_rate", 1, 0, &m->frame_rate));
    TRY(get_path(c, mi, "mimi", "weights_path", 0, base_dir, cfg->mimi_weights_path));
    const json_value *sea = json_get(mi, "seanet"), *tr = json_get(mi, "transformer");
    const json_value *q = json_get(mi, "quantizer");
    TRY(check_keys(c, sea, "mimi.seanet", sea_keys));
    TRY(check_keys(c, tr, "mimi.transformer", tr_keys));
    TRY(check_keys(c, q, "mimi.quantizer", q_keys));
    const char *w = "mimi.seanet";
    int ch;
    TRY(get_int(c, sea, w, "dimension", 1, 0, 1, 1 << 16, &m->dimension));
    TRY(get_int(c, sea, w, "channels", 1, 0, 1, 1, &ch));
    TRY(get_int(c, sea, w, "n_filters", 1, 0, 1, 1 << 14, &m->n_filters));
    TRY(get_int(c, sea, w, "n_residual_layers", 1, 0, 0, 16, &m->n_residual_layers));
    TRY(get_int(c, sea, w, "kernel_size", 1, 0, 1, 64, &m->kernel_size));
    TRY(get_int(c, sea, w, "residual_kernel_size", 1, 0, 1, 64, &m->residual_kernel_size));
    TRY(get_int(c, sea, w, "last_kernel_size", 1, 0, 1, 64, &m->last_kernel_size));
    TRY(get_int(c, sea, w, "dilation_base", 1, 0, 1, 16, &m->dilation_base));
    TRY(get_int(c, sea, w, "compress", 1, 0, 1, 64, &m->compress));
    const json_value *pm = json_get(sea, "pad_mode");
    if (!pm || pm->type != JSON_STRING ||
        (strcmp(pm->string, "constant") && strcmp(pm->string, "replicate")))
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: 'mimi.seanet.pad_mode' must be 'constant' or 'replicate'", c->name);
    m->pad_mode_replicate = strcmp(pm->string, "replicate") == 0;
    const json_value *ratios = json_get(sea, "ratios");
    if (!ratios || ratios->type != JSON_ARRAY || ratios->length == 0 ||
        ratios->length > POCKET_MAX_RATIOS)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: 'mimi.seanet.ratios' must be a list of 1..%d integers", c->name,
                        POCKET_MAX_RATIOS);
    m->n_ratios = (int)ratios->length;
    m->hop = 1;
    for (int i = 0; i < m->n_ratios; i++) {
        const json_value *r = &ratios->items[i];
        if (r->type != JSON_NUMBER || !r->is_integer || r->integer < 1 || r->integer > 64)
            return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                            "%s: 'mimi.seanet.ratios[%d]' must be an integer in [1, 64]", c->name,
                            i);
        m->ratios[i] = (int)r->integer;
        m->hop *= m->ratios[i];
    }
    if (m->n_filters << m->n_ratios > (1 << 16))
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT, "%s: mimi.seanet is too wide",
                        c->name);
    pocket_mimi_transformer_config *t = &m->transformer;
    w = "mimi.transformer";
    int in_dim;
    TRY(get_int(c, tr, w, "d_model", 1, 0, 1, 1 << 16, &t->d_model));
    TRY(get_int(c, tr, w, "input_dimension", 1, 0, 1, 1 << 16, &in_dim));
    TRY(get_int(c, tr, w, "num_heads", 1, 0, 1, 1024, &t->num_heads));
    TRY(get_int(c, tr, w, "num_layers", 1, 0, 0, 1024, &t->num_layers));
    TRY(get_int(c, tr, w, "context", 1, 0, 1, 1 << 20, &t->context));
    TRY(get_int(c, tr, w, "dim_feedforward", 1, 0, 1, 1 << 18, &t->dim_feedforward));
    TRY(get_float(c, tr, w, "layer_scale", 1, 0, &t->layer_scale));
    TRY(get_float(c, tr, w, "max_period", 0, 10000.0f, &t->max_period));
    const json_value *od = json_get(tr, "output_dimensions");
    if (!od || od->type != JSON_ARRAY || od->length != 1 || od->items[0].type != JSON_NUMBER ||
        od->items[0].integer != t->d_model || in_dim != t->d_model)
        return ctts_err(c->err, c->err_len, CTTS_E_UNSUPPORTED,
                        "%s: mimi.transformer input/output dimensions must equal d_model (no "
                        "projections)", c->name);
    if (t->d_model % t->num_heads || (t->d_model / t->num_heads) % 2)
        return ctts_err(c->err, c->err_len, CTTS_E_FORMAT,
                        "%s: mimi.transformer.d_model must be a multiple of 2*num_heads", c->name);
    TRY(get_int(c, q, "mimi.quantizer", "dimension", 1, 0, 1, 1 << 16, &m->quantizer_dimension));
    TRY(get_int(c, q, "mimi.quantizer", "output_dimension", 1, 0, 1, 1 << 16,
                &m->quantizer_output_dimension));
    TRY(get_int(c, mi, "mimi", "inner_dim", 0, m->dimension, 1, 1 << 16, &m->inner_dim));
    TRY(get_int(c, mi, "mimi", "outer_dim", 0, m->dimension, 1, 1 << 16, &m->outer_dim));
    /* Derived sizes must be integral for the streaming decoder to be exact. */
    double fs = m->sample_rate / (double)m->frame_rate;
    m->frame_size = (int)(fs + 0.5);
    if (m->frame_rate <= 0 || m->frame_size != fs || m->frame_size % m->hop)
        return ctts_err(c->err, c->err_len, CTTS_E_UNSUPPORTED,
                        "%s: mimi sample_rate / frame_rate must be an integer multiple of the "
                        "SEANet hop %d", c->name, m->hop);
    m->resample_stride = m->frame_size / m->hop;
    if (m->outer_dim != m->dimension || t->d_model != m->dimension ||
        m->quantizer_output_dimension != m->outer_dim)
        return ctts_err(c->err, c->err_len, CTTS_E_UNSUPPORTED,
                        "%s: mimi outer_dim, seanet.dimension, transformer.d_model and "
                        "quantizer.output_dimension must be equal", c->name);
    cfg->flow.ldim = m->quantizer_dimension;
    return CTTS_OK;
}

ctts_status pocket_config_parse(const char *yaml, size_t len, const char *name,
                                const char *base_dir, pocket_config *out, char *err,
                                size_t err_len) {
    static const char *const keys[] = {"flow_lm",
                                       "mimi",
                                       "weights_path",
                                       "weights_path_without_voice_cloning",
                                       "pad_with_spaces_for_short_inputs",
                                       "remove_semicolons",
                                       "model_recommended_frames_after_eos",
                                       NULL};
    ctx_t c = {name, err, err_len};
    memset(out, 0, sizeof *out);
    json_value *root = yaml_parse(yaml, len, name, err, err_len);
    if (!root) return CTTS_E_FORMAT;
    ctts_status st = check_keys(&c, root, "", keys);
    if (st == CTTS_OK) st = parse_flow_lm(&c, json_get(root, "flow_lm"), base_dir, out);
    if (st == CTTS_OK) st = parse_mimi(&c, json_get(root, "mimi"), base_dir, out);
    if (st == CTTS_OK) st = get_path(&c, root, "", "weights_path", 0, base_dir, out->weights_path);
    if (st == CTTS_OK)
        st = get_path(&c, root, "", "weights_path_without_voice_cloning", 0, base_dir,
                      out->weights_path_without_voice_cloning);
    if (st == CTTS_OK)
        st = get_bool(&c, root, "", "pad_with_spaces_for_short_inputs", 0,
                      &out->pad_with_spaces_for_short_inputs);
    if (st == CTTS_OK)
        st = get_bool(&c, root, "", "remove_semicolons", 0, &out->remove_semicolons);
    if (st == CTTS_OK)
        st = get_int(&c, root, "", "model_recommended_frames_after_eos", 0, -1, 0, 1000,
                     &out->recommended_frames_after_eos);
    if (st == CTTS_OK && !out->weights_path[0] &&
        !(out->flow_lm_weights_path[0] && out->mimi_weights_path[0]))
        st = ctts_err(err, err_len, CTTS_E_FORMAT,
                      "%s: no weights: set 'weights_path', or both 'flow_lm.weights_path' and "
                      "'mimi.weights_path'", name);
    json_free(root);
    return st;
}

const char *pocket_config_builtin(const char *name) {
    for (const pocket_builtin_config *b = pocket_builtin_configs; b->name; b++)
        if (strcmp(b->name, name) == 0) return b->yaml;
    return NULL;
}

const char *const *pocket_config_builtin_names(void) {
    static const char *names[64];
    /* Filled on first call; the table is constant so concurrent fills write the same values. */
    int n = 0;
    for (const pocket_builtin_config *b = pocket_builtin_configs; b->name && n < 63; b++)
        names[n++] = b->name;
    names[n] = NULL;
    return names;
}

static char *read_file(const char *path, size_t *len, char *err, size_t err_len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        ctts_err(err, err_len, CTTS_E_IO, "cannot open config '%s'", path);
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 > cap) {
            if (cap > (16u << 20)) {
                ctts_err(err, err_len, CTTS_E_FORMAT, "%s: config file too large", path);
                free(buf);
                fclose(f);
                return NULL;
            }
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                ctts_err(err, err_len, CTTS_E_OOM, "out of memory reading '%s'", path);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        ctts_err(err, err_len, CTTS_E_IO, "cannot read config '%s'", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

ctts_status pocket_config_load(const char *path_or_name, pocket_config *out, char *err,
                               size_t err_len) {
    if (!path_or_name || !*path_or_name)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "no model given");
    struct stat sb;
    char path[POCKET_PATH_MAX];
    if (stat(path_or_name, &sb) != 0) {
        const char *yaml = pocket_config_builtin(path_or_name);
        if (!yaml) {
            if (strchr(path_or_name, '/') || strstr(path_or_name, ".yaml"))
                return ctts_err(err, err_len, CTTS_E_IO, "cannot open model config '%s'",
                                path_or_name);
            return ctts_err(err, err_len, CTTS_E_NOT_FOUND,
                            "unknown model '%s' (not a file, directory or built-in config name)",
                            path_or_name);
        }
        ctts_status st = pocket_config_parse(yaml, strlen(yaml), path_or_name, NULL, out, err,
                                             err_len);
        if (st == CTTS_OK) snprintf(out->name, sizeof out->name, "%s", path_or_name);
        return st;
    }
    if (S_ISDIR(sb.st_mode)) {
        if (snprintf(path, sizeof path, "%s/config.yaml", path_or_name) >= (int)sizeof path)
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "model path too long");
    } else if (snprintf(path, sizeof path, "%s", path_or_name) >= (int)sizeof path) {
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "model path too long");
    }
    size_t len = 0;
    char *yaml = read_file(path, &len, err, err_len);
    if (!yaml) return CTTS_E_IO;
    char dir[POCKET_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    ctts_status st = pocket_config_parse(yaml, len, path, dir, out, err, err_len);
    free(yaml);
    if (st == CTTS_OK) {
        snprintf(out->config_path, sizeof out->config_path, "%s", path);
        const char *base = slash ? strrchr(path, '/') + 1 : path;
        snprintf(out->name, sizeof out->name, "%.*s", (int)strcspn(base, "."), base);
    }
    return st;
}
