/*
 * Qwen3-TTS-12Hz configuration: the fields of the official Hugging Face folder
 * that shape the model (config.json with talker_config / code_predictor_config /
 * speaker_encoder_config, generation_config.json, speech_tokenizer/config.json).
 *
 * Data flow: q3t_config_load(dir) -> q3t_config (plain values, no pointers).
 * Parsing is strict about what the model needs: a missing required field, a
 * wrong JSON type or an out-of-range value is an error naming file and field.
 * Fields the official code ignores (initializer_range, position_id_per_seconds,
 * ...) are accepted and skipped. It does not read weights or the tokenizer.
 */
#ifndef CTTS_Q3T_CONFIG_H
#define CTTS_Q3T_CONFIG_H

#include <stddef.h>

#include "ctts.h"
#include "base/tensor.h"

#define Q3T_MAX_LANGS 32
#define Q3T_MAX_SPEAKERS 64
#define Q3T_NAME_MAX 64
#define Q3T_MAX_RATES 8
#define Q3T_PATH_MAX 1024

typedef enum { Q3T_TYPE_CUSTOM_VOICE = 0, Q3T_TYPE_BASE, Q3T_TYPE_VOICE_DESIGN } q3t_model_type;

/* One Qwen3 decoder stack (talker or code predictor). */
typedef struct {
    int hidden_size;         /* 1024 real, 32 tiny */
    int intermediate_size;   /* SwiGLU width, 3072 real */
    int num_hidden_layers;   /* 28 talker / 5 predictor real */
    int num_attention_heads; /* 16 */
    int num_key_value_heads; /* 8 */
    int head_dim;            /* 128 (independent of hidden/heads) */
    float rms_norm_eps;      /* 1e-6 */
    float rope_theta;        /* 1e6 */
    int max_position_embeddings;
    int vocab_size;          /* talker 3072 (codec ids), predictor 2048 */
    int num_code_groups;     /* 16 */
} q3t_decoder_config;

typedef struct {
    char name[Q3T_NAME_MAX]; /* lower-case, as in config.json */
    int id;                  /* codec id */
} q3t_named_id;

typedef struct {
    char name[Q3T_NAME_MAX]; /* lower-case speaker name */
    int id;                  /* codec id (spk_id) */
    char dialect[Q3T_NAME_MAX]; /* spk_is_dialect: language name, or "" when false */
} q3t_speaker;

typedef struct {
    q3t_decoder_config dec;  /* the talker's own stack */
    int text_vocab_size;     /* 151936 */
    int text_hidden_size;    /* 2048 real, 16 tiny */
    int mrope_section[3];    /* [24,20,20]; 0 when rope_scaling is null */
    int mrope_interleaved;
    /* codec control ids */
    int codec_pad_id, codec_bos_id, codec_eos_token_id;
    int codec_think_id, codec_nothink_id, codec_think_bos_id, codec_think_eos_id;
    q3t_named_id languages[Q3T_MAX_LANGS]; /* codec_language_id, file order */
    int n_languages;
    q3t_speaker speakers[Q3T_MAX_SPEAKERS]; /* spk_id (+ spk_is_dialect) */
    int n_speakers;
    q3t_decoder_config cp;   /* code_predictor_config */
} q3t_talker_config;

/* speaker_encoder_config (Base only). */
typedef struct {
    int present;
    int mel_dim;             /* 128 */
    int enc_dim;             /* output size (= talker hidden) */
    int enc_channels[8];     /* [512,512,512,512,1536] */
    int n_enc_channels;
    int enc_kernel_sizes[8]; /* [5,3,3,3,1] */
    int n_enc_kernel_sizes;
    int enc_dilations[8];    /* [1,2,3,4,1] */
    int n_enc_dilations;
    int enc_attention_channels; /* 128 */
    int enc_res2net_scale;   /* 8 */
    int enc_se_channels;     /* 128 */
    int sample_rate;         /* 24000 */
} q3t_speaker_encoder_config;

/* generation_config.json (defaults of the official wrapper). */
typedef struct {
    int do_sample;
    float temperature, top_p, repetition_penalty;
    int top_k;
    int subtalker_dosample;
    float subtalker_temperature, subtalker_top_p;
    int subtalker_top_k;
    int max_new_tokens;
} q3t_generation_config;

/* speech_tokenizer/config.json -> decoder_config. */
typedef struct {
    int latent_dim;          /* 1024 real */
    int codebook_dim;        /* 512 real */
    int codebook_size;       /* 2048 */
    int decoder_dim;         /* 1536 real */
    int hidden_size;         /* pre-transformer width, 512 real */
    int intermediate_size;   /* 1024 real */
    int head_dim;            /* 64 */
    int num_attention_heads, num_key_value_heads, num_hidden_layers;
    int num_quantizers;      /* 16 */
    int num_semantic_quantizers; /* 1 */
    float rms_norm_eps;      /* 1e-5 */
    float rope_theta;        /* 10000 */
    float layer_scale_initial_scale;
    int max_position_embeddings;
    int sliding_window;      /* 72 real */
    int upsample_rates[Q3T_MAX_RATES]; /* [8,5,4,3] */
    int n_upsample_rates;
    int upsampling_ratios[Q3T_MAX_RATES]; /* [2,2] */
    int n_upsampling_ratios;
} q3t_codec_decoder_config;

/* speech_tokenizer/config.json -> encoder_config (a MimiConfig). */
typedef struct {
    int present;
    int hidden_size;         /* 512 real */
    int num_filters;         /* 64 */
    int num_residual_layers; /* 1 */
    int upsampling_ratios[Q3T_MAX_RATES]; /* [8,6,5,4] (applied reversed) */
    int n_upsampling_ratios;
    int kernel_size, last_kernel_size, residual_kernel_size;
    int dilation_growth_rate, compress;
    int codebook_size, codebook_dim, num_quantizers, num_semantic_quantizers;
    int num_hidden_layers, intermediate_size, num_attention_heads, num_key_value_heads, head_dim;
    float norm_eps, rope_theta, layer_scale_initial_scale;
    int sliding_window;
    int pad_mode_replicate;  /* pad_mode: 0 constant */
    int use_conv_shortcut;
} q3t_codec_encoder_config;

typedef struct {
    int input_sample_rate, output_sample_rate; /* 24000 */
    int decode_upsample_rate, encode_downsample_rate; /* 1920 */
    int encoder_valid_num_quantizers; /* 16 */
    q3t_codec_decoder_config dec;
    q3t_codec_encoder_config enc;
} q3t_codec_config;

typedef struct {
    q3t_model_type model_type;    /* tts_model_type */
    char model_size[16];          /* tts_model_size, e.g. "0b6" */
    int im_start_token_id, im_end_token_id, assistant_token_id;
    int tts_pad_token_id, tts_bos_token_id, tts_eos_token_id;
    q3t_talker_config talker;
    q3t_speaker_encoder_config spk;
    q3t_generation_config gen;
    q3t_codec_config codec;
    char dir[Q3T_PATH_MAX];       /* model folder */
} q3t_config;

/* Looks up a weight by its checkpoint name ("talker.model.layers.0.mlp.up_proj.weight"
 * in model.safetensors, "decoder.pre_conv.conv.weight" in the speech tokenizer).
 * NULL if absent. */
typedef const ctts_tensor *(*q3t_weight_lookup)(void *ctx, const char *name);

/* Loads dir/config.json, dir/generation_config.json (optional: official defaults
 * when absent) and dir/speech_tokenizer/config.json. */
ctts_status q3t_config_load(const char *dir, q3t_config *out, char *err, size_t err_len);

/* Parses config.json text only (generation / codec parts are left zero). name is
 * used in messages. */
ctts_status q3t_config_parse_main(const char *json, size_t len, const char *name, q3t_config *out,
                                  char *err, size_t err_len);

/* 1 when dir/config.json exists and has a "tts_model_type" key (family detection). */
int q3t_config_detect(const char *dir);

/* Speaker lookup, case-insensitive; NULL if unknown. */
const q3t_speaker *q3t_config_speaker(const q3t_config *c, const char *name);
/* Language codec id, case-insensitive; -1 for "auto" or "" (no language), -2 if unknown
 * or a dialect name (dialects are reached through a dialect speaker only). */
int q3t_config_language_id(const q3t_config *c, const char *name);

#endif
