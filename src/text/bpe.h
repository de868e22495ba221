/*
 * Qwen2 byte-level BPE tokenizer (Qwen2Tokenizer / the Hugging Face
 * "tokenizers" pipeline built from vocab.json + merges.txt +
 * tokenizer_config.json), id-exact with the official processor.
 *
 * Encode: text -> added tokens split out first (literal, leftmost-longest,
 * special or not) -> each remaining segment: NFC -> pre-tokenizer regex
 * (PCRE2 with Unicode properties; Split "isolated") -> bytes mapped through
 * the GPT-2 byte<->unicode table -> merges applied lowest rank first,
 * leftmost first -> vocab ids. No BOS/EOS, no prefix space.
 * Decode: ids -> token bytes (byte-level map reversed; added tokens as their
 * text, optionally skipped when special) -> UTF-8 with invalid sequences
 * replaced by U+FFFD.
 *
 * A loaded tokenizer is immutable and may be shared between threads (each
 * encode call makes its own regex match data). Not supported: BPE dropout,
 * byte fallback / unk tokens (every byte has a token in a byte-level vocab),
 * added tokens with lstrip/rstrip/single_word/normalized set (rejected).
 */
#ifndef CTTS_TEXT_BPE_H
#define CTTS_TEXT_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "ctts.h"

typedef struct bpe_tokenizer bpe_tokenizer;

/* Pre-tokenizer regex. */
typedef enum {
    BPE_REGEX_QWEN2 = 0,   /* the Qwen2 pattern (what the goldens and Qwen use) */
    BPE_REGEX_FIX_MISTRAL, /* transformers' fix_mistral_regex replacement (NOTES §2.2) */
} bpe_regex;

/* Loads dir/vocab.json, dir/merges.txt and (if present) dir/tokenizer_config.json
 * (its added_tokens_decoder). Errors name the file: CTTS_E_IO, CTTS_E_FORMAT
 * (malformed JSON, a merge whose parts or result are not in the vocabulary, a
 * byte without a token, duplicate ids, ...), CTTS_E_UNSUPPORTED, CTTS_E_OOM. */
ctts_status bpe_load(const char *dir, bpe_regex regex, bpe_tokenizer **out, char *err,
                     size_t err_len);
/* Same from explicit paths; config_path may be NULL (no added tokens). */
ctts_status bpe_load_files(const char *vocab_path, const char *merges_path,
                           const char *config_path, bpe_regex regex, bpe_tokenizer **out,
                           char *err, size_t err_len);
void bpe_free(bpe_tokenizer *t);

/* Encodes text[0..len) (must be valid UTF-8; NUL bytes allowed). *ids is
 * malloc'd (caller frees; may be NULL when *n == 0). Errors: CTTS_E_INVALID_ARG
 * (invalid UTF-8), CTTS_E_OOM. */
ctts_status bpe_encode(const bpe_tokenizer *t, const char *text, size_t len, int32_t **ids,
                       size_t *n, char *err, size_t err_len);
/* Encodes text still being written (an LLM's output, fed in pieces): the
 * ids of text[0..*used), the longest prefix whose tokens no later text can
 * change, so that for any continuation x, bpe_encode(text + x) = ids ++
 * bpe_encode(text[*used..] + x). Keep text[*used..], append what comes next
 * and call again; final = 1 (no more text) encodes everything. The cut lies
 * before the piece holding the last non-whitespace character, before a
 * character NFC cannot join to what precedes it, before a possibly
 * unfinished added token or UTF-8 sequence. Errors as bpe_encode. */
ctts_status bpe_encode_stable(const bpe_tokenizer *t, const char *text, size_t len, int final,
                              int32_t **ids, size_t *n, size_t *used, char *err, size_t err_len);
/* Pre-tokenizer pieces of one segment without added tokens (after NFC), for
 * tests and tools: calls fn(piece, piece_len, user) for each piece. */
ctts_status bpe_pretokenize(const bpe_tokenizer *t, const char *text, size_t len,
                            void (*fn)(const char *piece, size_t n, void *user), void *user,
                            char *err, size_t err_len);
/* Decodes ids into a malloc'd NUL-terminated string (*out, caller frees) and
 * its byte length (out_len may be NULL). skip_special drops added tokens
 * marked special. An unknown id is CTTS_E_INVALID_ARG. */
ctts_status bpe_decode(const bpe_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                       char **out, size_t *out_len, char *err, size_t err_len);

/* Id of a token given in its vocabulary spelling (byte-level form for regular
 * tokens, the literal text for added tokens); -1 if absent. */
int32_t bpe_token_id(const bpe_tokenizer *t, const char *token);
/* Vocabulary spelling of id (NUL-terminated), or NULL if id is unknown. */
const char *bpe_token_str(const bpe_tokenizer *t, int32_t id);
/* 1 if id is an added token (special or not). */
int bpe_is_added(const bpe_tokenizer *t, int32_t id);
/* One past the largest id (regular and added). */
int32_t bpe_vocab_size(const bpe_tokenizer *t);
/* Number of merges. */
int bpe_n_merges(const bpe_tokenizer *t);

#endif
