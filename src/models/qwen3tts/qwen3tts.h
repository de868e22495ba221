/*
 * Qwen3-TTS-12Hz family glue: model folder -> config, tokenizer, talker, code
 * predictor, speech decoder; sessions' generation streams. core/tts.c drives
 * it through the family table q3t_family (models/arch.h).
 *
 * Model load (Hugging Face folder, NOTES §1): config.json (+ generation_config.json,
 * speech_tokenizer/config.json) -> vocab.json / merges.txt / tokenizer_config.json
 * -> model.safetensors (talker.*; for Base models also speaker_encoder.*) and
 * speech_tokenizer/model.safetensors (decoder.*; for Base models also
 * encoder.*, the reference-code encoder) mapped read-only; a tensor no part
 * binds is an error, except the encoders' tensors of a non-Base model.
 * ctts_model_params.weight_type converts the talker's and code predictor's
 * matrices at load (embedding tables and the speech tokenizer stay as stored).
 *
 * Stream, per utterance: prompt ids -> codec prefix (speaker, language,
 * dialect rule) -> row layout -> rows embedded through the talker tables ->
 * q3t_codegen (talker prefill on the first step, then one talker step + one
 * code-predictor run per frame) -> 16 codes -> speech decoder stream (chunks
 * of 300 frames with 25 frames of context, the official chunked_decode) ->
 * 1920 samples per step. The audio equals the official pipeline's, which
 * generates every frame first and decodes afterwards: the decoder is causal.
 * For voice cloning (Base) the reference codes are decoded first and their
 * audio dropped (ref_frames x 1920 samples). Voices: q3t_voice.c.
 */
#ifndef CTTS_QWEN3TTS_H
#define CTTS_QWEN3TTS_H

#include <stddef.h>
#include <stdint.h>

#include "ctts.h"
#include "models/qwen3tts/q3t_config.h"
#include "models/qwen3tts/q3t_prompt.h"

typedef struct q3t_model q3t_model;
typedef struct q3t_stream q3t_stream;

/* 1 if path is a folder whose config.json has a "tts_model_type" key. */
int q3t_detect(const char *path);

ctts_status q3t_model_load(const char *dir, const ctts_model_params *p, q3t_model **out,
                           char *err, size_t err_len);
void q3t_model_free(q3t_model *m);
const q3t_config *q3t_model_config(const q3t_model *m);
const bpe_tokenizer *q3t_model_tokenizer(const q3t_model *m);
int64_t q3t_model_n_params(const q3t_model *m);
/* Samples per frame (1920). */
int q3t_frame_size(const q3t_model *m);
/* Writes out_dir/model.gguf (the main weights as loaded: converted by the
 * model params' weight_type where the loader converts), copies of the
 * configs and tokenizer files, and out_dir/speech_tokenizer as a link to the
 * source's (not converted). q3t_model_load(out_dir) maps the GGUF: no
 * conversion at load. CTTS_E_IO / CTTS_E_OOM. */
ctts_status q3t_model_export_gguf(const q3t_model *m, const char *out_dir, char *err,
                                  size_t err_len);
/* The backend the model runs on (profiling). */
struct ctts_backend *q3t_model_backend(q3t_model *m);
/* Most samples one q3t_stream_step returns (4 frames). */
size_t q3t_step_max_samples(const q3t_model *m);
/* The voice-cloning encoders of a Base model (NULL for other types). */
struct q3t_speaker_encoder;
struct q3t_speech_encoder;
const struct q3t_speaker_encoder *q3t_model_speaker_encoder(const q3t_model *m);
const struct q3t_speech_encoder *q3t_model_speech_encoder(const q3t_model *m);
/* The parts a stream runs (q3t_stream.c), and the model's threads / CPU tier. */
struct q3t_talker;
struct q3t_code_predictor;
struct q3t_speech_decoder;
const struct q3t_talker *q3t_model_talker(const q3t_model *m);
const struct q3t_code_predictor *q3t_model_code_predictor(const q3t_model *m);
const struct q3t_speech_decoder *q3t_model_speech_decoder(const q3t_model *m);
int q3t_model_threads(const q3t_model *m, int *cpu_isa);
size_t q3t_model_describe(const q3t_model *m, char *buf, size_t len);
/* prepared 0: the plain text's ids; 1: the ids of the whole assistant prompt. */
ctts_status q3t_tokenize(const q3t_model *m, const char *text, int prepared, int32_t **ids,
                         size_t *n, char *err, size_t err_len);
/* Defaults from generation_config.json (temperature 0 when do_sample is false). */
ctts_gen_params q3t_default_gen_params(const q3t_model *m);

/* A voice-cloning prompt (Base models): the x-vector and, for in-context
 * learning, the reference transcript and codes. All owned. */
typedef struct {
    float *xvector;     /* [D] speaker embedding */
    int32_t *ref_codes; /* [n_ref_frames, G] or NULL (x-vector only) */
    int n_ref_frames;
    char *ref_text;     /* transcript of the reference (needed with ref_codes) */
    int dim, groups;    /* D and G of the model it was made for */
} q3t_voice;

/* Copies the parts into a new voice (ref_codes / ref_text may be NULL). */
ctts_status q3t_voice_new(const q3t_model *m, const float *xvector, const int32_t *ref_codes,
                          int n_ref_frames, const char *ref_text, q3t_voice **out, char *err,
                          size_t err_len);
void q3t_voice_free(q3t_voice *v);

/* Clones a voice from mono audio (Base models; official create_voice_clone_prompt):
 * resampled to the encoders' 24 kHz when needed, x-vector from the speaker
 * encoder; with ref_text (non-empty) also the reference codes from the speech
 * tokenizer's encoder (ICL mode), else x-vector only. Errors name the problem
 * (not a Base model, no samples, NaN / Inf, longer than 600 s). */
ctts_status q3t_voice_from_pcm(const q3t_model *m, const float *pcm, size_t n, int sample_rate,
                               const char *ref_text, q3t_voice **out, char *err, size_t err_len);
/* Loads a voice: an audio file (any format src/audio reads) whose transcript,
 * when present, sits beside it as the same name with ".txt" (then ICL mode),
 * or a voice-prompt .safetensors written by q3t_voice_save. */
ctts_status q3t_voice_load(const q3t_model *m, const char *path, q3t_voice **out, char *err,
                           size_t err_len);
/* Writes a voice-prompt file: "ref_spk_embedding" [D] F32, "ref_code" [T, G]
 * I32 (ICL only) and the transcript as __metadata__ "ref_text". */
ctts_status q3t_voice_save(const q3t_voice *v, const char *path, char *err, size_t err_len);

ctts_status q3t_stream_new(q3t_model *m, q3t_stream **out, char *err, size_t err_len);
void q3t_stream_free(q3t_stream *s);
/* Begins an utterance whose text arrives in pieces: q3t_stream_feed any
 * number of times, then q3t_stream_end. voice: NULL for CustomVoice
 * (p->speaker names the speaker), required for Base (its parts are copied).
 * Checks every parameter; errors name the field. In the streaming text mode
 * the steps start once the prefill's text tokens are certain (the first text
 * token; with a reference, enough to fill the reference frames) and each
 * frame waits for its text token (a step then gives CTTS_OK with *n = 0);
 * the non-streaming mode puts the whole text in the prefill, so its steps
 * wait for q3t_stream_end. Either way the audio equals q3t_stream_start on
 * the concatenated text: tokens are taken only once no later text can
 * change them (bpe_encode_stable). */
ctts_status q3t_stream_begin(q3t_stream *s, const q3t_voice *voice, const ctts_gen_params *p,
                             char *err, size_t err_len);
/* Appends UTF-8 text (pieces may split characters; no NUL bytes). */
ctts_status q3t_stream_feed(q3t_stream *s, const char *utf8, size_t n, char *err, size_t err_len);
/* No more text. */
ctts_status q3t_stream_end(q3t_stream *s, char *err, size_t err_len);
/* begin + feed(text) + end. */
ctts_status q3t_stream_start(q3t_stream *s, const q3t_voice *voice, const ctts_gen_params *p,
                             const char *text, char *err, size_t err_len);
/* Next audio into pcm[q3t_step_max_samples]: CTTS_OK with *n a multiple of
 * the frame size (speech-decoder calls of 1, 1, 1, 1, 2, 2, 2, then 4 frames: the
 * earliest audio, then staying ahead of playback), CTTS_OK with *n = 0 while
 * the next frame waits for text, or CTTS_DONE (*n = 0) once the talker
 * stopped or p->max_frames frames were made. With p->pipeline 1
 * a worker thread decodes each batch while the next one is generated, the
 * threads split between them (auto, -1, is off: it measured slower); the
 * audio is identical either way. */
ctts_status q3t_stream_step(q3t_stream *s, float *pcm, size_t *n, char *err, size_t err_len);
/* q3t_stream_step of B distinct streams at once: the streams whose step only
 * makes frames (after their first) generate them together (batched decode,
 * q3t_codegen_next_many: the same frames as alone); the others step alone.
 * res[i], n[i], pcm[i], err[i] as q3t_stream_step gives them for stream i. */
void q3t_stream_step_many(q3t_stream *const *s, int B, float *const *pcm, size_t *n,
                          ctts_status *res, char *const *err, size_t err_len);
/* Stage times of the current / last utterance (ms): prepare (tokenize, layout,
 * embed), prefill (talker prefill + first code), lm (talker steps + code
 * predictor), decoder (speech decoder). */
void q3t_stream_times(const q3t_stream *s, double *prepare_ms, double *prefill_ms, double *lm_ms,
                      double *decoder_ms);
/* The first frame's talker step + code predictor, and its decode (ms). */
void q3t_stream_first_frame_times(const q3t_stream *s, double *lm_ms, double *decoder_ms);
/* 1 while the stream decodes as the backend's side job (ctts_gen_params.pipeline). */
int q3t_stream_pipelined(const q3t_stream *s);

/* ---- inspection (tests, tools) ---- */

/* The stream's code generator (tests and measurements: teacher forcing, logits). */
struct q3t_codegen *q3t_stream_codegen(q3t_stream *s);

/* Called with every frame's codes [G] as it is produced. */
typedef void (*q3t_frame_observer)(void *user, int frame, const int32_t *codes);
void q3t_stream_set_observer(q3t_stream *s, q3t_frame_observer fn, void *user);
/* Of the last start: prompt ids, the layout and its embedded rows ([prefill +
 * trailing, D]), the pad row [D]. Valid until the next start. */
const int32_t *q3t_stream_prompt_ids(const q3t_stream *s, size_t *n);
/* The talker input rows so far: [n_prefill + n_trailing, D]. */
const float *q3t_stream_rows(const q3t_stream *s, int *n_prefill, int *n_trailing);
const float *q3t_stream_pad_row(const q3t_stream *s);
/* Every first code the talker chose (with the final EOS / dropped one) and
 * why it stopped (0 running, 1 EOS, 2 max_new_tokens). */
const int32_t *q3t_stream_first_codes(const q3t_stream *s, int *n);
int q3t_stream_stop_reason(const q3t_stream *s);

#endif
