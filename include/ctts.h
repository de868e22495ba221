/*
 * ctts — neural text-to-speech inference in C.
 *
 * Usage:
 *     ctts_model *m; char err[256];
 *     ctts_model_params mp = ctts_model_default_params();
 *     if (ctts_model_load("english", &mp, &m, err, sizeof err)) { puts(err); return 1; }
 *     ctts_voice *v = NULL;
 *     ctts_voice_load(m, "voice.safetensors", &v, err, sizeof err);   // or no voice
 *     ctts_session *s; ctts_session_new(m, &s);
 *     ctts_gen_params gp = ctts_gen_default_params(m);
 *     float *pcm; size_t n;
 *     if (ctts_synthesize(s, "Hello world.", v, &gp, &pcm, &n) == CTTS_OK)
 *         ctts_wav_write("out.wav", pcm, n, 24000, CTTS_WAV_S16, err, sizeof err);
 *     ctts_pcm_free(pcm); ctts_session_free(s); ctts_voice_free(v); ctts_model_free(m);
 *
 * Threading: a ctts_model (and a ctts_voice) may be shared by any number of
 * sessions and threads. A ctts_session is used by one thread at a time; only
 * ctts_stream_cancel may be called from another thread.
 * Errors: functions return a ctts_status; a printable one-line message goes to
 * the caller's err buffer (or ctts_session_error for session calls).
 * The library never prints (except through ctts_log_set) and never exits.
 */
#ifndef CTTS_H
#define CTTS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define CTTS_API __declspec(dllexport)
#else
#define CTTS_API __attribute__((visibility("default")))
#endif

/* Status codes. CTTS_OK = 0, CTTS_DONE > 0 (end of stream), errors < 0. */
typedef enum {
    CTTS_OK = 0,
    CTTS_DONE = 1,
    CTTS_E_INVALID_ARG = -1, /* bad parameter or input text */
    CTTS_E_IO = -2,          /* file missing, unreadable or unwritable */
    CTTS_E_FORMAT = -3,      /* malformed file (safetensors, YAML, tokenizer, WAV) */
    CTTS_E_UNSUPPORTED = -4, /* valid but not supported (dtype, config, family) */
    CTTS_E_OOM = -5,         /* allocation failed */
    CTTS_E_BACKEND = -6,     /* compute backend failure */
    CTTS_E_CANCELLED = -7,   /* ctts_stream_cancel was called */
    CTTS_E_NOT_FOUND = -8,   /* unknown model name, voice, tensor */
    CTTS_E_STATE = -9,       /* call out of order (e.g. read before begin) */
} ctts_status;

typedef struct ctts_model ctts_model;
typedef struct ctts_session ctts_session;
typedef struct ctts_voice ctts_voice;

/* Highest CPU instruction set the kernels may use (a cap; AUTO = best available). */
typedef enum {
    CTTS_ISA_AUTO = 0,
    CTTS_ISA_SCALAR,
    CTTS_ISA_AVX2,
    CTTS_ISA_AVX512,
    CTTS_ISA_NEON,
} ctts_cpu_isa;

/* Weight storage chosen at load time. */
typedef enum {
    CTTS_WEIGHTS_KEEP = 0, /* as stored in the file */
    CTTS_WEIGHTS_F32,
    CTTS_WEIGHTS_BF16,
    CTTS_WEIGHTS_Q8_0,
    CTTS_WEIGHTS_Q4_0,
} ctts_weight_type;

typedef struct {
    int n_threads;                /* compute threads; default 0 = all online CPUs */
    ctts_cpu_isa cpu_isa;         /* default CTTS_ISA_AUTO */
    ctts_weight_type weight_type; /* default CTTS_WEIGHTS_KEEP */
} ctts_model_params;

typedef struct {
    uint64_t seed;            /* RNG seed for the flow noise; default 0 */
    float temperature;        /* Pocket: noise variance; default 0.7 (0 = deterministic) */
    int lsd_steps;            /* Pocket: flow decode steps; default 1 */
    float noise_clamp;        /* Pocket: |noise| bound, <= 0 = none; default 0 (none) */
    float eos_threshold;      /* Pocket: EOS when logit > this; default -4.0 */
    int frames_after_eos;     /* frames kept after EOS; default -1 = official rule */
    int max_frames;           /* cap on frames per text chunk; default 0 = model's own limit */
    int max_tokens_per_chunk; /* long-text chunk size in tokens; default 50 */
} ctts_gen_params;

typedef struct {
    const char *family;      /* "pocket" */
    int sample_rate;         /* 24000 */
    float frame_rate;        /* 12.5 */
    int64_t n_params;        /* parameters of the loaded weights */
    const char *config_path; /* config file used, "" for a built-in config */
} ctts_model_info;

typedef struct {
    double load_ms;        /* model load (set on the model, copied into each session) */
    double prepare_ms;     /* text preparation + tokenization, last stream */
    double prefill_ms;     /* text prefill (sum over chunks) */
    double first_audio_ms; /* from ctts_stream_begin to the first samples available */
    double flowlm_ms;      /* FlowLM transformer + flow head */
    double mimi_ms;        /* Mimi decoder */
    double total_ms;       /* begin to DONE */
    int64_t frames;        /* latent frames emitted */
    int64_t samples;       /* audio samples emitted */
    double rtf;            /* total_ms / audio duration (lower is faster) */
} ctts_timings;

/* ---- library ---- */

/* Version string, e.g. "0.1.0". */
CTTS_API const char *ctts_version(void);
/* Human-readable name of a status ("invalid argument", ...). Never NULL. */
CTTS_API const char *ctts_status_str(ctts_status st);

typedef enum { CTTS_LOG_ERROR = 0, CTTS_LOG_WARN, CTTS_LOG_INFO, CTTS_LOG_DEBUG } ctts_log_level;
typedef void (*ctts_log_fn)(ctts_log_level level, const char *msg, void *user);
/* Sets the process-wide log sink. Default: WARN and ERROR to stderr. NULL = silent. */
CTTS_API void ctts_log_set(ctts_log_fn fn, void *user);

/* ---- model ---- */

/* Defaults documented on the struct fields. */
CTTS_API ctts_model_params ctts_model_default_params(void);

/* Loads a model. path: an official YAML config file, a directory holding
 * config.yaml, or a built-in name ("english", "english_2026-04", ...).
 * Relative paths inside a config resolve against the config's folder.
 * On error returns < 0, *out = NULL and a one-line message in err. */
CTTS_API ctts_status ctts_model_load(const char *path, const ctts_model_params *params,
                                     ctts_model **out, char *err, size_t err_len);
/* Frees a model (NULL is fine). All its sessions and voices must be freed first. */
CTTS_API void ctts_model_free(ctts_model *m);
/* Information about a loaded model; valid while the model lives. */
CTTS_API const ctts_model_info *ctts_model_get_info(const ctts_model *m);
/* Writes a readable description (config, parameter count, tensor summary)
 * into buf (truncated to len). Returns the full length it needed. */
CTTS_API size_t ctts_model_describe(const ctts_model *m, char *buf, size_t len);

/* Tokenizes text with the model's tokenizer. prepared = 0: the plain
 * SentencePiece encoding; 1: after the official text preparation.
 * Writes up to cap ids and the total count in *n_ids (call with cap 0 to size). */
CTTS_API ctts_status ctts_tokenize(const ctts_model *m, const char *text, int prepared,
                                   int32_t *ids, size_t cap, size_t *n_ids, char *err,
                                   size_t err_len);

/* ---- voices ---- */

/* Loads a voice: a voice-state .safetensors file (official export format).
 * "none" or NULL gives *out = NULL (generation without a voice) and CTTS_OK. */
CTTS_API ctts_status ctts_voice_load(ctts_model *m, const char *name_or_path, ctts_voice **out,
                                     char *err, size_t err_len);
/* Writes a voice state in the official format (loadable by the official code). */
CTTS_API ctts_status ctts_voice_save(const ctts_voice *v, const char *path, char *err,
                                     size_t err_len);
CTTS_API void ctts_voice_free(ctts_voice *v);

/* ---- sessions and generation ---- */

/* Defaults for the model's family (see ctts_gen_params). */
CTTS_API ctts_gen_params ctts_gen_default_params(const ctts_model *m);

CTTS_API ctts_status ctts_session_new(ctts_model *m, ctts_session **out);
CTTS_API void ctts_session_free(ctts_session *s);

/* Streaming, the primitive: begin -> feed_text (any number of times) ->
 * end_text -> read until CTTS_DONE. */
CTTS_API ctts_status ctts_stream_begin(ctts_session *s, const ctts_voice *v,
                                       const ctts_gen_params *p);
CTTS_API ctts_status ctts_stream_feed_text(ctts_session *s, const char *utf8);
CTTS_API ctts_status ctts_stream_end_text(ctts_session *s);
/* Returns CTTS_OK with *n_out > 0 samples (24 kHz mono float), CTTS_DONE at the
 * end, or an error. Blocks while it computes the next frame. */
CTTS_API ctts_status ctts_stream_read(ctts_session *s, float *pcm, size_t cap, size_t *n_out);
/* Asks the running stream to stop; safe from any thread. The next read returns
 * CTTS_E_CANCELLED. */
CTTS_API void ctts_stream_cancel(ctts_session *s);

/* One-shot synthesis built on the stream calls. *pcm is freed with ctts_pcm_free. */
CTTS_API ctts_status ctts_synthesize(ctts_session *s, const char *text, const ctts_voice *v,
                                     const ctts_gen_params *p, float **pcm, size_t *n);
CTTS_API void ctts_pcm_free(float *pcm);

/* Last error message of the session ("" if none). */
CTTS_API const char *ctts_session_error(const ctts_session *s);
/* Timings of the last stream. */
CTTS_API const ctts_timings *ctts_session_timings(const ctts_session *s);

/* ---- audio files ---- */

typedef enum { CTTS_WAV_S16 = 0, CTTS_WAV_F32 = 1 } ctts_wav_format;

/* Writes mono PCM as a WAV file. S16 clamps to [-1, 1] and scales by 32767. */
CTTS_API ctts_status ctts_wav_write(const char *path, const float *pcm, size_t n,
                                    int sample_rate, ctts_wav_format fmt, char *err,
                                    size_t err_len);

/* ---- development ---- */

/* Writes a random-weight model in the official layout (model.safetensors,
 * config.yaml, tokenizer.model copied from tokenizer_src) into out_dir, for
 * a built-in config name or YAML path. Deterministic from seed. */
CTTS_API ctts_status ctts_dev_make_random_model(const char *config, uint64_t seed,
                                                const char *tokenizer_src, const char *out_dir,
                                                char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif
