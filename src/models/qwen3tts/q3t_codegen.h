/*
 * Qwen3-TTS code generation, frame by frame: the official generate loop of
 * the talker (NOTES §5.1, §6) driven one 80 ms frame at a time, so a caller
 * can decode audio while generation goes on.
 *
 * Data flow: begin() runs the prefill rows through the talker and chooses the
 * first code of frame 0. Each next() then (a) when a frame was returned
 * before, feeds it back: frame embedding + trailing text row (or the pad row
 * once the trailing rows are used up) -> one talker step -> next first code;
 * (b) runs the code predictor on (hidden, first code) -> the frame's 16
 * codes. Stopping is exactly the official one: the first code is EOS, or
 * max_new_tokens first codes have been chosen (that last code gets no frame).
 * Repetition penalty covers every first code chosen so far; EOS is blocked
 * until 2 codes exist; the 1024 control ids except EOS are suppressed.
 *
 * Randomness: one ctts_rng per generator, seeded in begin(), shared by the
 * talker and the code predictor draws (the official code uses torch's one
 * global generator; ctts's draws differ from torch's, the distributions do
 * not). Greedy runs are deterministic.
 *
 * Not here: the prompt layout (prefill / trailing rows: the family glue
 * builds them with q3t_talker_embed_text / _codec), the speech decoder.
 */
#ifndef CTTS_Q3T_CODEGEN_H
#define CTTS_Q3T_CODEGEN_H

#include <stddef.h>
#include <stdint.h>

#include "models/qwen3tts/code_predictor.h"
#include "models/qwen3tts/talker.h"

typedef struct {
    nn_sampling_params talker;    /* do_sample, temperature, top_k, top_p, repetition_penalty */
    nn_sampling_params predictor; /* subtalker_*; its repetition_penalty is ignored */
    int max_new_tokens;           /* >= 1: first codes chosen at most (frames <= this - 1) */
    int min_new_tokens;           /* EOS blocked until this many first codes exist (besides
                                     the official 2); INT_MAX: never stop early */
    uint64_t seed;                /* RNG seed (used only when sampling) */
} q3t_codegen_params;

typedef enum {
    Q3T_STOP_NONE = 0, /* still running */
    Q3T_STOP_EOS,      /* the talker chose codec_eos_token_id */
    Q3T_STOP_LIMIT,    /* max_new_tokens first codes were chosen */
} q3t_stop_reason;

typedef struct q3t_codegen q3t_codegen;

/* Fills params from generation_config.json values (greedy when do_sample 0). */
void q3t_codegen_params_from_config(const q3t_generation_config *gc, q3t_codegen_params *p);

/* A generator over an (immutable, shareable) talker and code predictor; it
 * owns the session states. */
ctts_status q3t_codegen_new(const q3t_talker *t, const q3t_code_predictor *cp, q3t_codegen **out,
                            char *err, size_t err_len);
void q3t_codegen_free(q3t_codegen *g);

/* Starts an utterance. prefill [P, D], trailing [N, D] (N >= 0) and pad [D]
 * are host rows (copied). Runs the prefill and chooses the first code. */
ctts_status q3t_codegen_begin(q3t_codegen *g, const float *prefill, int P, const float *trailing,
                              int N, const float *pad, const q3t_codegen_params *p, char *err,
                              size_t err_len);

/* Appends n trailing rows [n, D] (copied) after those given so far: text
 * that arrived after begin. A step past the last row adds the pad row, so
 * rows must be added before the step that needs them. */
ctts_status q3t_codegen_add_trailing(q3t_codegen *g, const float *rows, int n, char *err,
                                     size_t err_len);

/* CTTS_OK with codes [G] filled (one frame), CTTS_DONE when generation has
 * stopped (see q3t_codegen_stop_reason), or an error. */
ctts_status q3t_codegen_next(q3t_codegen *g, int32_t *codes, char *err, size_t err_len);

/* q3t_codegen_next for B <= Q3T_MAX_BATCH generations of one talker and
 * predictor at once (batched decode: the weights are read once per step for
 * all): res[i] is what q3t_codegen_next(g[i], codes[i]) returns, with the
 * same draws from each generation's own RNG. Returns an error status only
 * for a failure of the batch (then the generations are not to be continued). */
ctts_status q3t_codegen_next_many(q3t_codegen *const *g, int B, int32_t *const *codes,
                                  ctts_status *res, char *err, size_t err_len);

q3t_stop_reason q3t_codegen_stop_reason(const q3t_codegen *g);

/* For the next frame only (quality measurements): codes ([G], NULL = its own
 * choices) replace the frame's chosen codes, so the language model is teacher
 * forced along a reference; cp_logits (NULL = none, else [G-1, predictor
 * vocab]) receives the code predictor's raw logits. Errors: a code out of
 * range. */
ctts_status q3t_codegen_teach_next(q3t_codegen *g, const int32_t *codes, float *cp_logits,
                                   char *err, size_t err_len);

/* Every first code chosen so far, including a final EOS / discarded one. */
const int32_t *q3t_codegen_first_codes(const q3t_codegen *g, int *n);
/* The talker's last final-norm hidden state [D], raw logits and processed
 * scores [vocab] (of the step that chose the last first code). */
const float *q3t_codegen_last_hidden(const q3t_codegen *g);
const float *q3t_codegen_last_logits(const q3t_codegen *g);
const float *q3t_codegen_last_scores(const q3t_codegen *g);

#endif
