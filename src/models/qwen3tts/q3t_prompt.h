/*
 * Qwen3-TTS prompt: the chat-template strings, the codec prefix and the
 * layout of the talker's input rows (QWEN3TTS_NOTES.md §2-§3).
 *
 * Data flow:
 *   text -> q3t_prompt_ids: "<|im_start|>assistant\n" + text +
 *           "<|im_end|>\n<|im_start|>assistant\n" -> BPE ids
 *   speaker / language -> q3t_prompt_codec_prefix (dialect rule, lookups
 *           case-insensitive)
 *   ids + prefix + mode -> q3t_prompt_layout: a list of row recipes, each row
 *           being the sum of up to two sources (a text-projected token T(id),
 *           a codec-table row C(id), the speaker vector, or a reference frame
 *           embedding), split into the prefill rows and the trailing rows that
 *           are added to the inputs of generation steps 0..N-1, plus P_p
 *   recipes -> q3t_prompt_embed: float rows, through the talker's tables.
 * Layout and embedding are separate so the layout can be tested (and shown)
 * without weights.
 *
 * Like the official code the text is sliced by position: ids[0:3] is the role,
 * ids[3:-5] the text (Python slice semantics, so short prompts give empty
 * slices instead of errors). Not here: instructions (dropped for 0.6B models,
 * the only size released with these layouts), batching / left padding.
 */
#ifndef CTTS_Q3T_PROMPT_H
#define CTTS_Q3T_PROMPT_H

#include <stddef.h>
#include <stdint.h>

#include "ctts.h"
#include "models/qwen3tts/code_predictor.h"
#include "models/qwen3tts/q3t_config.h"
#include "models/qwen3tts/talker.h"
#include "text/bpe.h"

typedef enum {
    Q3T_TEXT_NON_STREAMING = 0, /* whole text in the prefill (CustomVoice default) */
    Q3T_TEXT_STREAMING,         /* one text token per generation step (Base default) */
} q3t_text_mode;

/* Source of one half of a row. */
typedef enum {
    Q3T_SRC_NONE = 0,
    Q3T_SRC_TEXT,      /* T(id): text_projection(text_embedding(id)) */
    Q3T_SRC_CODEC,     /* C(id): talker codec_embedding row */
    Q3T_SRC_SPEAKER,   /* the speaker vector (x-vector) given to q3t_prompt_embed */
    Q3T_SRC_REF_FRAME, /* frame embedding of reference frame `id` (ICL) */
} q3t_src;

typedef struct {
    uint8_t a_src, b_src; /* q3t_src */
    int32_t a, b;         /* ids (token, codec id or reference frame index) */
} q3t_row;

/* The codec prefix: [think, think_bos, lang, think_eos] or [nothink, think_bos,
 * think_eos], then the speaker slot, then [pad, bos]. */
typedef struct {
    int32_t ids[4];
    int n_ids;         /* 3 or 4 */
    int language_id;   /* codec language id, -1 for auto */
    int speaker_src;   /* Q3T_SRC_CODEC (CustomVoice speaker), Q3T_SRC_SPEAKER (x-vector)
                          or Q3T_SRC_NONE (VoiceDesign: no speaker slot) */
    int32_t speaker_id;/* codec id when speaker_src is Q3T_SRC_CODEC */
} q3t_codec_prefix;

typedef struct {
    q3t_row *rows; /* prefill rows then trailing rows (owned) */
    int n_prefill;
    int n_trailing;
    int32_t pad_token; /* P_p = T(pad_token) */
} q3t_layout;

/* The chat template around the text: q3t_prompt_ids encodes HEAD + text + TAIL
 * (TAIL encodes to the 5 ids the model slices off). */
extern const char Q3T_PROMPT_HEAD[], Q3T_PROMPT_TAIL[];
#define Q3T_PROMPT_TAIL_IDS 5

/* Tokenizes the assistant prompt around text (valid UTF-8). *ids malloc'd. */
ctts_status q3t_prompt_ids(const bpe_tokenizer *tok, const char *text, size_t len, int32_t **ids,
                           size_t *n, char *err, size_t err_len);
/* Tokenizes the reference-transcript prompt "<|im_start|>assistant\n" + ref_text +
 * "<|im_end|>\n" (Base ICL; the model uses ids[3:-2]). */
ctts_status q3t_prompt_ref_ids(const bpe_tokenizer *tok, const char *ref_text, size_t len,
                               int32_t **ids, size_t *n, char *err, size_t err_len);

/* Resolves the codec prefix. speaker: a name of config.json's spk_id (case-
 * insensitive), or NULL when the speaker slot is an x-vector (use_xvector 1)
 * or absent (use_xvector 0, VoiceDesign). language: NULL, "" or "auto", or a
 * name of codec_language_id (not a dialect). A dialect speaker turns Chinese /
 * auto into its dialect. Errors (CTTS_E_INVALID_ARG) list the valid names. */
ctts_status q3t_prompt_codec_prefix(const q3t_config *cfg, const char *speaker, int use_xvector,
                                    const char *language, q3t_codec_prefix *out, char *err,
                                    size_t err_len);

/* Builds the row recipes. ids: the q3t_prompt_ids output. ref_ids / n_ref_frames:
 * Base ICL (ref_ids from q3t_prompt_ref_ids, n_ref_frames reference frames), or
 * NULL / 0 without. Free with q3t_layout_free. */
ctts_status q3t_prompt_layout(const q3t_config *cfg, const q3t_codec_prefix *prefix,
                              const int32_t *ids, size_t n_ids, const int32_t *ref_ids,
                              size_t n_ref_ids, int n_ref_frames, q3t_text_mode mode,
                              q3t_layout *out, char *err, size_t err_len);
void q3t_layout_free(q3t_layout *l);

/* Materialises rows [n, D] (host) from recipes: T and C through the talker
 * tables, SPEAKER from speaker [D] (required when used), REF_FRAME from
 * ref_codes [n_ref_frames, G] through the code predictor's frame embedding
 * (cp / cps required when used). out must hold n * D floats. */
ctts_status q3t_prompt_embed(const q3t_talker *t, q3t_talker_state *ts,
                             const q3t_code_predictor *cp, q3t_cp_state *cps, const q3t_row *rows,
                             int n, const float *speaker, const int32_t *ref_codes,
                             int n_ref_frames, float *out, char *err, size_t err_len);

/* Writes a readable form of the layout ("T(151644) | T(151671)+C(2154) | ...")
 * into buf (truncated to len); returns the full length needed. */
size_t q3t_layout_describe(const q3t_layout *l, char *buf, size_t len);

#endif
