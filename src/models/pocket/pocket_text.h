/*
 * Pocket TTS text front end: the official prepare_text_prompt and
 * split_into_best_sentences (kyutai-labs/pocket-tts, models/tts_model.py),
 * reproduced exactly, quirks included (see shared/golden/POCKET_NOTES.md §1).
 *
 * Data flow: raw UTF-8 text -> pocket_prepare_text (strip, newline -> space,
 * one pass of "  " -> " ", optional ';' -> ',', Python upper() of the first
 * character, '.' after a final letter/digit, optional 8-space pad) ->
 * pocket_split_chunks (tokenize, cut after sentence-end tokens, re-split long
 * sentences on ",;:" tokens, pack greedily up to max_tokens) -> chunk strings
 * that the caller tokenizes again with spm_encode.
 * It does not tokenize chunks for the model and does not decide frames after
 * EOS beyond the official guess (3 if <= 4 words, else 1; callers add 2).
 */
#ifndef CTTS_MODELS_POCKET_TEXT_H
#define CTTS_MODELS_POCKET_TEXT_H

#include <stddef.h>

#include "ctts.h"
#include "text/sentencepiece.h"

typedef struct {
    int remove_semicolons;                /* config remove_semicolons */
    int pad_with_spaces_for_short_inputs; /* config pad_with_spaces_for_short_inputs */
} pocket_text_options;

/* prepare_text_prompt: *out is malloc'd (caller frees). frames_after_eos_guess
 * (may be NULL) gets 3 when the text has <= 4 whitespace-separated words, else 1.
 * o may be NULL (both options off). Empty or whitespace-only text is
 * CTTS_E_INVALID_ARG, and so is text that is not valid UTF-8. */
ctts_status pocket_prepare_text(const char *text, const pocket_text_options *o, char **out,
                                int *frames_after_eos_guess, char *err, size_t err_len);

/* split_into_best_sentences on the raw text (prepared inside, as the official
 * code does). *chunks is a malloc'd array of *n_chunks malloc'd strings; free
 * it with pocket_free_chunks. max_tokens must be > 0 (the official default is 50). */
ctts_status pocket_split_chunks(const spm_model *sp, const char *text,
                                const pocket_text_options *o, int max_tokens, char ***chunks,
                                int *n_chunks, char *err, size_t err_len);
void pocket_free_chunks(char **chunks, int n);

/* Incremental chunking for text that is still arriving. text[0..len) is the
 * text so far (need not end on a character boundary); *chunks gets the
 * leading chunks that pocket_split_chunks gives for EVERY text starting with
 * it (the same strings, in order): only words followed by a space count, and
 * a chunk is returned once the segment after it is complete or cannot fit.
 * *headroom (may be NULL) gets how many tokens the last, still growing
 * sentence may gain before the result can change without new punctuation
 * (INT_MAX: no limit), or -1 if this tokenizer's boundary pieces do not allow
 * incremental chunking (then no chunk is returned before the end).
 * Valid only when pocket_text_can_stream(sp). Errors as pocket_split_chunks,
 * except that a text without a complete word gives 0 chunks. */
ctts_status pocket_split_chunks_open(const spm_model *sp, const char *text, size_t len,
                                     const pocket_text_options *o, int max_tokens,
                                     char ***chunks, int *n_chunks, int *headroom, char *err,
                                     size_t err_len);
/* The same, incrementally, for a stream: text is the whole text so far and
 * only ever grows between calls. Each call tokenizes only what was added
 * since the last one and re-chunks only from the sentence that may still
 * grow, so feeding a long text word by word stays linear. *chunks gets the
 * final chunks past the first n_known (the caller's count of chunks it has
 * already taken from this chunker), headroom as pocket_split_chunks_open.
 * The result equals pocket_split_chunks_open on the same text (tested). */
typedef struct pocket_chunker pocket_chunker;
ctts_status pocket_chunker_new(const spm_model *sp, const pocket_text_options *o, int max_tokens,
                               pocket_chunker **out, char *err, size_t err_len);
void pocket_chunker_free(pocket_chunker *c);
ctts_status pocket_chunker_update(pocket_chunker *c, const char *text, size_t len, int n_known,
                                  char ***chunks, int *n_chunks, int *headroom, char *err,
                                  size_t err_len);

/* Whether sp keeps token boundaries at spaces (no piece has U+2581 after its
 * first byte, and a lone U+2581 piece exists), which incremental chunking needs. */
int pocket_text_can_stream(const spm_model *sp);

#endif
