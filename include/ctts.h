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

/* Download progress: `what` names the file, done and total in bytes (total -1
 * when unknown). Return non-zero to cancel the download (CTTS_E_CANCELLED). */
typedef int (*ctts_progress_fn)(const char *what, int64_t done, int64_t total, void *user);

/* Access to the Hugging Face hub for hf://org/repo/path[@revision] paths (in
 * model configs and voices). Files are kept in the huggingface_hub cache
 * layout, shared with the Python tools. The library reads no environment
 * variable: the caller fills these (the ctts CLI reads HF_HUB_CACHE, HF_HOME,
 * HF_ENDPOINT, HF_TOKEN, the token file and HF_HUB_OFFLINE). */
typedef struct {
    const char *cache_dir;     /* hub cache (e.g. ~/.cache/huggingface/hub); NULL = hf:// fails */
    const char *endpoint;      /* default NULL = "https://huggingface.co" */
    const char *token;         /* access token for gated or private repos, or NULL */
    int offline;               /* 1 = never touch the network, use cached files only */
    int retries;               /* further attempts on 5xx, 429, timeouts, cut transfers; default 4 */
    int connect_timeout_ms;    /* default 10000 */
    int stall_timeout_s;       /* a transfer receiving nothing this long fails; default 30 */
    ctts_progress_fn progress; /* default NULL (silent) */
    void *progress_user;
} ctts_hub_params;

typedef struct {
    int n_threads;                /* compute threads; default 0 = all online CPUs */
    ctts_cpu_isa cpu_isa;         /* default CTTS_ISA_AUTO */
    ctts_weight_type weight_type; /* default CTTS_WEIGHTS_KEEP */
    ctts_hub_params hub;          /* for hf:// paths; default ctts_hub_default_params() */
} ctts_model_params;

/* Qwen3-TTS: how the text is given to the talker (the official non_streaming_mode). */
typedef enum {
    CTTS_TEXT_MODE_AUTO = 0,      /* the model's default: non-streaming for CustomVoice,
                                     streaming for Base (as the official generate_* calls) */
    CTTS_TEXT_MODE_NON_STREAMING, /* the whole text in the prefill: a stream speaks
                                     after end_text */
    CTTS_TEXT_MODE_STREAMING,     /* one text token added to each generation step: a
                                     stream speaks while text is still being fed (each
                                     token once later text cannot change it) */
} ctts_text_mode;

typedef struct {
    uint64_t seed;            /* RNG seed (Pocket: flow noise; Qwen3-TTS: sampling); default 0 */
    float temperature;        /* Pocket: noise variance; default 0.7 (0 = deterministic).
                                 Qwen3-TTS: sampling temperature of the talker and the code
                                 predictor; default from the model (0.9); 0 = greedy */
    int lsd_steps;            /* Pocket: flow decode steps; default 1 */
    float noise_clamp;        /* Pocket: |noise| bound, <= 0 = none; default 0 (none) */
    float eos_threshold;      /* Pocket: EOS when logit > this; default -4.0 */
    int frames_after_eos;     /* frames kept after EOS; default -1 = official rule */
    int max_frames;           /* cap on frames per text chunk; default 0 = model's own limit */
    int ignore_eos;           /* 1: never stop at the end-of-speech signal, generate up to
                                 max_frames (fixed-length benchmarks); default 0 */
    int max_tokens_per_chunk; /* long-text chunk size in tokens; default 50 */
    int pipeline;             /* decode audio on a second thread while the next frame is
                                 computed: 1 on, 0 off, default -1 = auto. Pocket: the
                                 model's threads split between the two; auto: with >= 2
                                 threads the session measures both and keeps the faster
                                 (it depends on the machine). Qwen3-TTS: the decoder runs
                                 on one of the model's threads while the language model
                                 goes on with the others (all of them once the decoder is
                                 done); 1 = from the second frame on, auto (2 threads
                                 only) = once the audio returned leads real time by more
                                 than the one-group delay the pipeline's first step adds;
                                 a session read with others (ctts_stream_read_many) stops
                                 pipelining. The audio is identical in every mode. */
    /* Qwen3-TTS only (Pocket ignores them); defaults from generation_config.json: */
    int top_k;                /* sample among the k best codes; 0 = off; default 50 */
    float top_p;              /* nucleus mass in (0, 1]; 1 = off; default 1.0 */
    float repetition_penalty; /* on earlier first codes (> 0; 1 = off); default 1.05 */
    int max_new_tokens;       /* talker steps at most (frames <= this - 1); 0 = model's (8192) */
    const char *speaker;      /* built-in speaker of a CustomVoice model ("ryan", ...;
                                 case-insensitive); required there; default NULL */
    const char *language;     /* "auto" (NULL), "english", "chinese", ... (case-insensitive) */
    ctts_text_mode text_mode; /* how the text enters the talker; default CTTS_TEXT_MODE_AUTO */
} ctts_gen_params;

typedef struct {
    const char *family;      /* "pocket" */
    int sample_rate;         /* 24000 */
    float frame_rate;        /* 12.5 */
    int64_t n_params;        /* parameters of the loaded weights */
    const char *config_path; /* config file used, "" for a built-in config */
    const char *language;    /* built-in config name ("english", ...), "" otherwise */
    int voice_cloning;       /* 0 when the official fallback loaded the weights without
                                voice cloning (weights_path_without_voice_cloning) */
    int chunks_text;         /* 1: long text is synthesized chunk by chunk (Pocket; max_frames
                                and max_tokens_per_chunk apply per chunk); 0: the whole text
                                is one utterance (Qwen3-TTS) */
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
    /* profile of the first frame (the parts of first_audio_ms) */
    double first_text_ms;    /* text preparation, chunking, tokenizing */
    double first_prefill_ms; /* state setup (voice copy) and prefill of the first chunk
                                (Pocket: computes the first latent in the same pass) */
    double first_flowlm_ms;  /* first LM step when it runs on its own (Pocket: 0) */
    double first_mimi_ms;    /* first audio decode */
    double min_lead_ms;      /* smallest lead of the audio over real-time playback that
                                starts with the first samples: frame k read by then
                                + k * frame duration; < 0 = playback would stall */
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
 * hf:// paths in the config are fetched through params->hub (ctts_hub_fetch);
 * if weights_path cannot be had (access refused, missing, offline and not
 * cached) weights_path_without_voice_cloning is used, as the official code does.
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
 * Qwen3-TTS: 0 = the text's byte-level BPE ids; 1 = the ids of the whole
 * assistant prompt the talker reads.
 * Writes up to cap ids and the total count in *n_ids (call with cap 0 to size). */
CTTS_API ctts_status ctts_tokenize(const ctts_model *m, const char *text, int prepared,
                                   int32_t *ids, size_t cap, size_t *n_ids, char *err,
                                   size_t err_len);

/* ---- voices ---- */

/* Loads a voice: a voice-state .safetensors file (official export format), an
 * hf:// address of one (fetched with the model's hub params), or a catalog
 * voice name ("alba", see ctts_voice_catalog_name) for a model loaded from a
 * built-in config. An audio file is cloned as ctts_voice_load_ex does with
 * ctts_voice_default_params() (first 30 s, no cache). "none" or NULL gives
 * *out = NULL (generation without a voice) and CTTS_OK.
 * Qwen3-TTS base models: an audio file to clone (with its transcript, when
 * "name.txt" sits beside "name.wav", in-context cloning; else x-vector only)
 * or a voice-prompt .safetensors written by ctts_voice_save. Qwen3-TTS
 * custom_voice models take no voice (see ctts_gen_params.speaker). */
CTTS_API ctts_status ctts_voice_load(ctts_model *m, const char *name_or_path, ctts_voice **out,
                                     char *err, size_t err_len);
/* Writes a voice state in the official format (loadable by the official code). */
CTTS_API ctts_status ctts_voice_save(const ctts_voice *v, const char *path, char *err,
                                     size_t err_len);
CTTS_API void ctts_voice_free(ctts_voice *v);

/* Options for voices cloned from audio files. */
typedef struct {
    const char *cache_dir; /* directory caching states cloned from audio files, keyed by the
                              file's SHA-256 and the model's identity; NULL or "" = no cache
                              (default). The ctts CLI uses $XDG_CACHE_HOME/ctts/voices. */
    float max_seconds;     /* keep only the first max_seconds of an audio file; default 30
                              (the official export-voice); 0 = the whole clip (at most 600 s) */
} ctts_voice_params;

/* Defaults documented on the ctts_voice_params fields. */
CTTS_API ctts_voice_params ctts_voice_default_params(void);
/* ctts_voice_load with options. Besides voice-state files it clones a voice
 * from any audio file libsndfile reads (WAV 8/16/24/32-bit PCM or float,
 * FLAC, OGG/Vorbis, MP3, ...; told apart from state files by content): decode,
 * average the channels, cut to p->max_seconds, resample to the model's rate
 * (scipy resample_poly semantics), Mimi-encode, FlowLM prefill, exactly as the
 * official get_state_for_audio_prompt. p NULL = defaults. Errors name the
 * file: empty, not audio, 0 channels, sample rate outside 1000..768000 Hz,
 * no samples, NaN/Inf samples, longer than 600 s with max_seconds 0. */
CTTS_API ctts_status ctts_voice_load_ex(ctts_model *m, const char *name_or_path,
                                        const ctts_voice_params *p, ctts_voice **out, char *err,
                                        size_t err_len);
/* Clones a voice from mono float PCM held in memory (e.g. an upload): n
 * samples at sample_rate (1000..768000 Hz, at most 600 s, finite values).
 * The whole buffer is used and nothing is cached. */
CTTS_API ctts_status ctts_voice_from_pcm(ctts_model *m, const float *pcm, size_t n,
                                         int sample_rate, ctts_voice **out, char *err,
                                         size_t err_len);

/* ---- sessions and generation ---- */

/* Defaults for the model's family (see ctts_gen_params). */
CTTS_API ctts_gen_params ctts_gen_default_params(const ctts_model *m);

CTTS_API ctts_status ctts_session_new(ctts_model *m, ctts_session **out);
CTTS_API void ctts_session_free(ctts_session *s);

/* Streaming, the primitive: begin -> feed_text (any number of times, e.g. as
 * an LLM produces text) -> end_text, with reads at any point after begin until
 * CTTS_DONE. The audio is sample for sample that of ctts_synthesize on the
 * whole text, however the text was cut into feeds and whatever the read sizes.
 * Synthesis of a text chunk starts as soon as later text can no longer change
 * it (the official chunking: a complete sentence, or clause of a long one,
 * once the chunk cannot take the next one). */
/* Starts a stream (any earlier one of the session is dropped). p NULL =
 * ctts_gen_default_params. Errors: bad params, a voice of another model. */
CTTS_API ctts_status ctts_stream_begin(ctts_session *s, const ctts_voice *v,
                                       const ctts_gen_params *p);
/* Appends UTF-8 text (pieces may split words or characters). Text errors
 * (invalid UTF-8) may show here or at end_text. CTTS_E_STATE before begin or
 * after end_text. */
CTTS_API ctts_status ctts_stream_feed_text(ctts_session *s, const char *utf8);
/* No more text: the rest is chunked. An empty text fails here. */
CTTS_API ctts_status ctts_stream_end_text(ctts_session *s);
/* Returns CTTS_OK with *n_out > 0 samples (24 kHz mono float), CTTS_DONE at the
 * end, or an error. Blocks while it computes the next frame (80 ms of audio);
 * any samples of the last frame that did not fit cap come first. Before
 * end_text it returns CTTS_OK with *n_out = 0 when the text so far has been
 * spoken as far as it can be: feed more text. CTTS_E_STATE before begin and
 * after an error (the session error keeps the message). */
CTTS_API ctts_status ctts_stream_read(ctts_session *s, float *pcm, size_t cap, size_t *n_out);
/* ctts_stream_read on n distinct sessions at once (a server stepping its
 * streams): res[i] and n_out[i] are what ctts_stream_read(s[i], pcm[i], cap,
 * &n_out[i]) returns, the audio identical. Sessions of one model whose family
 * supports it (Qwen3-TTS) make their next frames together, reading the
 * weights once for all of them (batched decode); the others are read one by
 * one. The sessions are used by this call's thread for its duration. */
CTTS_API void ctts_stream_read_many(ctts_session *const *s, int n, float *const *pcm, size_t cap,
                                   size_t *n_out, ctts_status *res);
/* Asks the running stream to stop; safe from any thread. A read in progress
 * returns at most the frame it was computing, then CTTS_E_CANCELLED; nothing
 * runs after that (a new begin restarts the session, ctts_session_free frees
 * everything, including the decoding thread). */
CTTS_API void ctts_stream_cancel(ctts_session *s);

/* One-shot synthesis built on the stream calls. *pcm is freed with ctts_pcm_free. */
CTTS_API ctts_status ctts_synthesize(ctts_session *s, const char *text, const ctts_voice *v,
                                     const ctts_gen_params *p, float **pcm, size_t *n);
CTTS_API void ctts_pcm_free(float *pcm);

/* Last error message of the session ("" if none). */
CTTS_API const char *ctts_session_error(const ctts_session *s);
/* Timings of the current or last stream (stage totals are complete once the
 * stream is DONE, failed or cancelled; first-frame fields after the first read
 * with samples). */
CTTS_API const ctts_timings *ctts_session_timings(const ctts_session *s);

/* Writes the loaded model to out_dir as a GGUF model directory: model.gguf
 * (every tensor in the dtype it has after load-time conversion, e.g. Q8_0
 * after weight_type = CTTS_WEIGHTS_Q8_0) and the model's config and tokenizer
 * files (Pocket: config.yaml, tokenizer.model; Qwen3-TTS: the published JSON
 * and tokenizer files, speech_tokenizer/ linked to the source's). Loading
 * out_dir maps model.gguf and uses the tensors without copies. CTTS_E_IO. */
CTTS_API ctts_status ctts_model_export_gguf(const ctts_model *m, const char *out_dir, char *err,
                                            size_t err_len);

/* ---- profiling (development) ---- */

/* Compute stages the backend attributes its ops to while profiling. */
typedef enum {
    CTTS_STAGE_OTHER = 0,        /* ops outside the stages below */
    CTTS_STAGE_PREFILL,          /* language model over the text and voice prompt */
    CTTS_STAGE_FLOWLM,           /* FlowLM transformer, one step per frame */
    CTTS_STAGE_FLOW_HEAD,        /* flow-matching head (LSD decode), per frame */
    CTTS_STAGE_MIMI_TRANSFORMER, /* Mimi decoder: latent projection, upsampling, transformer */
    CTTS_STAGE_SEANET,           /* Mimi decoder: SEANet convolutions */
    CTTS_STAGE_ENCODER,          /* Mimi encoder (voice cloning) */
    CTTS_STAGE_TALKER,           /* Qwen3-TTS talker, one step per frame */
    CTTS_STAGE_CODE_PREDICTOR,   /* Qwen3-TTS code predictor, 15 passes per frame */
    CTTS_STAGE_SPEECH_DECODER,   /* Qwen3-TTS speech tokenizer decoder */
    CTTS_STAGE_COUNT
} ctts_stage;

/* Totals per stage since profiling was switched on. FLOPs count a multiply-add
 * as 2; bytes are weights plus activations read and written by the ops. */
typedef struct {
    double ms[CTTS_STAGE_COUNT];
    double flops[CTTS_STAGE_COUNT];
    double bytes[CTTS_STAGE_COUNT];
    int64_t ops[CTTS_STAGE_COUNT];
} ctts_profile;

/* Copies the model's counters into out (if not NULL), resets them and turns
 * per-op profiling on (enable != 0) or off. The counters belong to the model:
 * profile with one session at a time and pipeline = 0 (ops of a pipelined
 * decoder thread would land in whatever stage the other thread set).
 * Costs two clock reads per op while on. CTTS_E_UNSUPPORTED for a model
 * without it. Name of a stage: ctts_stage_name (never NULL). */
CTTS_API ctts_status ctts_model_profile(ctts_model *m, int enable, ctts_profile *out);
CTTS_API const char *ctts_stage_name(ctts_stage st);

/* ---- audio files ---- */

typedef enum { CTTS_WAV_S16 = 0, CTTS_WAV_F32 = 1 } ctts_wav_format;

/* Writes mono PCM as a WAV file. S16 clamps to [-1, 1] and scales by 32767. */
CTTS_API ctts_status ctts_wav_write(const char *path, const float *pcm, size_t n,
                                    int sample_rate, ctts_wav_format fmt, char *err,
                                    size_t err_len);

/* Progressive WAV writing (e.g. while streaming): open writes a header with
 * sizes to be fixed, append adds samples, close fixes the header and frees
 * the writer (also when it fails). path "-" writes to stdout, whose sizes stay
 * 0xFFFFFFFF ("unknown", as streaming readers expect). Errors name the path. */
typedef struct ctts_wav_writer ctts_wav_writer;
CTTS_API ctts_status ctts_wav_writer_open(const char *path, int sample_rate, ctts_wav_format fmt,
                                          ctts_wav_writer **out, char *err, size_t err_len);
CTTS_API ctts_status ctts_wav_writer_append(ctts_wav_writer *w, const float *pcm, size_t n,
                                            char *err, size_t err_len);
CTTS_API ctts_status ctts_wav_writer_close(ctts_wav_writer *w, char *err, size_t err_len);

/* In-memory pieces of the same files (e.g. for a network stream): the
 * header ctts_wav_write writes for n samples into buf (at least 64 bytes;
 * 44 bytes for S16, 58 for F32), its sizes 0xFFFFFFFF when unknown_size;
 * returns its length (0 for an unknown fmt or a rate outside 1..768000). */
CTTS_API size_t ctts_wav_header(unsigned char *buf, size_t n, int sample_rate,
                                ctts_wav_format fmt, int unknown_size);
/* The data bytes of n samples as the WAV writer converts them (little endian;
 * S16: NaN -> 0, clamp to [-1, 1], * 32767, truncate): n * 2 or n * 4 bytes. */
CTTS_API void ctts_pcm_encode(unsigned char *out, const float *pcm, size_t n,
                              ctts_wav_format fmt);

/* ---- Hugging Face hub and the official voice catalog ---- */

/* Defaults documented on the ctts_hub_params fields. */
CTTS_API ctts_hub_params ctts_hub_default_params(void);

/* Resolves hf://org/repo/path[@revision] to a file in hub->cache_dir,
 * downloading it when missing (a pinned commit already cached costs no
 * request). Downloads go to blobs/<etag>.incomplete, resume with Range after a
 * cut, are verified (size; SHA-256 or git SHA-1 against the ETag) and renamed
 * only when complete. Any other string is copied unchanged (a local path).
 * Writes the local path into path. Thread-safe; concurrent downloads of one
 * file (also by Python) are serialised by the cache's lock files. */
CTTS_API ctts_status ctts_hub_fetch(const ctts_hub_params *hub, const char *uri, char *path,
                                    size_t path_len, char *err, size_t err_len);

/* One snapshot (revision) of a repo in the hub cache. */
typedef struct {
    const char *repo_id;      /* "kyutai/pocket-tts" */
    const char *repo_type;    /* "model", "dataset" or "space" */
    const char *revision;     /* snapshot commit hash, "" for a repo with no snapshot yet */
    const char *refs;         /* refs naming it, comma separated ("main"), "" if none */
    int n_files;              /* files in the snapshot */
    int64_t bytes;            /* their total size */
    int64_t repo_bytes;       /* all complete blobs of the repo (shared by its snapshots) */
    int64_t incomplete_bytes; /* partial downloads of the repo waiting to be resumed */
} ctts_hub_entry;
typedef void (*ctts_hub_entry_fn)(const ctts_hub_entry *e, void *user);

/* Calls fn for every snapshot in the hub cache, sorted by repo then revision.
 * A missing cache directory is not an error (nothing is listed). */
CTTS_API ctts_status ctts_hub_list(const char *cache_dir, ctts_hub_entry_fn fn, void *user,
                                   char *err, size_t err_len);

/* Makes sure every file a model needs is in the hub cache: the weights (with
 * the official fallback to the repo without voice cloning), the tokenizer and
 * one catalog voice (voice NULL = the language's default voice, "none" = no
 * voice). With params->hub.offline it only checks. *voice_cloning (may be
 * NULL) tells whether the weights with voice cloning were available. */
CTTS_API ctts_status ctts_model_pull(const char *path, const ctts_model_params *params,
                                     const char *voice, int *voice_cloning, char *err,
                                     size_t err_len);

/* Names of the built-in model configs ("english", ...); NULL past the end. */
CTTS_API const char *ctts_model_builtin_name(int i);
/* The official default voice of the model's language ("alba" for english),
 * or NULL when the model was not loaded from a built-in config. */
CTTS_API const char *ctts_model_default_voice(const ctts_model *m);
/* Built-in speaker i of the model (Qwen3-TTS CustomVoice: "serena", ... in
 * config.json order, the names ctts_gen_params.speaker takes); NULL past the
 * end and for models without speakers. */
CTTS_API const char *ctts_model_speaker(const ctts_model *m, int i);
/* Names of the official catalog voices ("alba", "marius", ...); NULL past the end.
 * ctts_voice_load accepts them for models loaded from a built-in config. */
CTTS_API const char *ctts_voice_catalog_name(int i);
/* The hf:// address of catalog voice `name` for a language (a built-in config
 * name): embeddings/<name>.safetensors in the repo without voice cloning. */
CTTS_API ctts_status ctts_voice_catalog_uri(const char *language, const char *name, char *uri,
                                            size_t uri_len, char *err, size_t err_len);

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
