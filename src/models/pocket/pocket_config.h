/*
 * Pocket TTS configuration: the fields of the official YAML config
 * (pocket_tts/config/ YAML files) that shape the model, plus the text options.
 * Parsed by pocket_config.c; built-in configs live there too.
 */
#ifndef CTTS_POCKET_CONFIG_H
#define CTTS_POCKET_CONFIG_H

#include <stddef.h>

#include "ctts.h"
#include "base/tensor.h"

#define POCKET_MAX_RATIOS 8
#define POCKET_PATH_MAX 1024

typedef struct {
    int d_model;    /* transformer width (1024 real, 64 tiny) */
    int num_heads;  /* 16 real */
    int num_layers; /* 6 real */
    int hidden_scale; /* FFN width = d_model * hidden_scale */
    float max_period; /* RoPE base, 10000 */
    int n_bins;     /* tokenizer vocab; LUT has n_bins + 1 rows */
    int lut_dim;    /* must equal d_model */
    int flow_dim;   /* flow MLP width (512 real) */
    int flow_depth; /* flow MLP residual blocks (6 real) */
    int ldim;       /* latent dim = mimi.quantizer.dimension (32) */
    int insert_bos_before_voice;
} pocket_flowlm_config;

typedef struct {
    int d_model, num_heads, num_layers, dim_feedforward;
    float layer_scale; /* init value; the checkpoint holds the scales */
    int context;       /* attention window in 200 Hz steps (250 real) */
    float max_period;  /* RoPE base, default 10000 */
} pocket_mimi_transformer_config;

typedef struct {
    int sample_rate;  /* 24000 */
    float frame_rate; /* 12.5 */
    int channels;     /* 1 */
    int inner_dim;    /* latent dim of the encoder/downsample output (32) */
    int outer_dim;    /* SEANet dimension seen by the transformers (512 real) */
    /* SEANet */
    int dimension, n_filters, n_residual_layers;
    int ratios[POCKET_MAX_RATIOS];
    int n_ratios;
    int kernel_size, residual_kernel_size, last_kernel_size, dilation_base, compress;
    int pad_mode_replicate; /* 0 = constant (all shipped configs) */
    pocket_mimi_transformer_config transformer;
    int quantizer_dimension;        /* = flow latent dim */
    int quantizer_output_dimension; /* = outer_dim */
    /* derived */
    int hop;          /* prod(ratios), 120 */
    int frame_size;   /* sample_rate / frame_rate, 1920 */
    int resample_stride; /* frame_size / hop = 16: up/downsample stride */
} pocket_mimi_config;

typedef struct {
    pocket_flowlm_config flow;
    pocket_mimi_config mimi;
    int pad_with_spaces_for_short_inputs;
    int remove_semicolons;
    int recommended_frames_after_eos; /* -1 when null */
    /* Resolved paths ("" when absent). hf:// paths are kept as written. */
    char weights_path[POCKET_PATH_MAX];
    char flow_lm_weights_path[POCKET_PATH_MAX];
    char mimi_weights_path[POCKET_PATH_MAX];
    char tokenizer_path[POCKET_PATH_MAX];
    char weights_path_without_voice_cloning[POCKET_PATH_MAX];
    char config_path[POCKET_PATH_MAX]; /* "" for built-in */
    int weights_without_voice_cloning; /* set by pocket_config_fetch when it fell back */
    char name[64];                     /* built-in name or file stem */
} pocket_config;

/* Looks up a weight by its canonical (single-file TTSModel state-dict) name,
 * e.g. "mimi.decoder.model.0.conv.weight". NULL if absent. */
typedef const ctts_tensor *(*pocket_weight_lookup)(void *ctx, const char *name);

/* Loads a config: a YAML file path, a directory holding config.yaml, or a
 * built-in name ("english", "english_2026-01", "english_2026-04", "french_24l",
 * "german", ...). Unknown keys are errors (the official schema forbids them).
 * Relative paths resolve against the config file's folder. */
ctts_status pocket_config_load(const char *path_or_name, pocket_config *out, char *err,
                               size_t err_len);
/* Parses YAML text (name is used in messages; base_dir resolves relative paths). */
ctts_status pocket_config_parse(const char *yaml, size_t len, const char *name,
                                const char *base_dir, pocket_config *out, char *err,
                                size_t err_len);
/* The YAML text of a built-in config, or NULL. */
const char *pocket_config_builtin(const char *name);
/* Names of the built-in configs, NULL-terminated. */
const char *const *pocket_config_builtin_names(void);

#endif
