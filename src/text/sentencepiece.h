/*
 * SentencePiece unigram tokenizer (the one Pocket TTS uses), bit-compatible
 * with Google's sentencepiece 0.1.97 / 0.2.x for encode and decode.
 *
 * Data flow: tokenizer.model bytes -> hand-written protobuf reader (every
 * length checked) -> spm_model (pieces, scores, types, a byte trie over the
 * pieces, the normalizer's precompiled charsmap).
 * spm_encode: UTF-8 text -> normalizer (charsmap longest match, whitespace
 * collapsing, dummy prefix, space -> U+2581) -> unigram Viterbi -> ids, with
 * unknown characters split into <0xXX> byte pieces (byte_fallback) or merged
 * into one <unk>. spm_decode: ids -> text (U+2581 -> space, byte pieces
 * re-assembled into UTF-8, control pieces dropped, leading space removed).
 *
 * Not supported: BPE / WORD / CHAR models (CTTS_E_UNSUPPORTED), sampling and
 * n-best encoding, BOS/EOS insertion, a denormalizer with its own charsmap
 * (CTTS_E_UNSUPPORTED), and models with duplicate pieces or pieces holding a
 * NUL byte (rejected as CTTS_E_FORMAT; sentencepiece rejects most of those too).
 * A loaded model is immutable and may be shared between threads.
 */
#ifndef CTTS_TEXT_SENTENCEPIECE_H
#define CTTS_TEXT_SENTENCEPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "ctts.h"

typedef struct spm_model spm_model;

/* Piece types of sentencepiece_model.proto. */
enum {
    SPM_NORMAL = 1,
    SPM_UNKNOWN = 2,
    SPM_CONTROL = 3,
    SPM_USER_DEFINED = 4,
    SPM_UNUSED = 5,
    SPM_BYTE = 6,
};

/* Loads a tokenizer.model file. Errors: CTTS_E_IO (unreadable), CTTS_E_FORMAT
 * (malformed), CTTS_E_UNSUPPORTED (valid but not a unigram model), CTTS_E_OOM. */
ctts_status spm_load(const char *path, spm_model **out, char *err, size_t err_len);
/* Same from memory (the bytes are copied); name is used in error messages. */
ctts_status spm_load_memory(const void *data, size_t len, const char *name, spm_model **out,
                            char *err, size_t err_len);
void spm_free(spm_model *m);

/* Number of pieces (ids are 0..size-1). */
int spm_vocab_size(const spm_model *m);
/* NUL-terminated piece text of id, or NULL if id is out of range. */
const char *spm_piece(const spm_model *m, int32_t id);
/* Piece type (SPM_NORMAL...), or 0 if id is out of range. */
int spm_piece_type(const spm_model *m, int32_t id);
/* Ids of the special pieces as the trainer spec gives them (-1 if unset). */
int32_t spm_unk_id(const spm_model *m);
int32_t spm_bos_id(const spm_model *m);
int32_t spm_eos_id(const spm_model *m);
int32_t spm_pad_id(const spm_model *m);

/* Encodes text[0..len) (UTF-8; invalid bytes become U+FFFD as sentencepiece
 * does). *ids is malloc'd (caller frees; NULL when *n == 0). No BOS/EOS. */
ctts_status spm_encode(const spm_model *m, const char *text, size_t len, int32_t **ids,
                       size_t *n, char *err, size_t err_len);
/* spm_encode for a text that continues earlier text: the Viterbi starts at
 * *score (0 for the first piece of text) and *score gets the best path's
 * score at the end. The best scores are float sums along the path, so a
 * tie between pieces can resolve differently in a text encoded alone; fed
 * the score of the text before, encoding a text in pieces cut before a
 * space gives exactly the ids of encoding it whole (for a model whose pieces
 * never hold U+2581 after their first byte). */
ctts_status spm_encode_from(const spm_model *m, const char *text, size_t len, float *score,
                            int32_t **ids, size_t *n, char *err, size_t err_len);
/* Decodes ids[0..n) into a malloc'd NUL-terminated string (*out, caller frees).
 * An id out of range is CTTS_E_INVALID_ARG. */
ctts_status spm_decode(const spm_model *m, const int32_t *ids, size_t n, char **out, char *err,
                       size_t err_len);
/* Same, also giving the byte length (the text holds NUL bytes when the ids
 * include the <0x00> byte piece). out_len may be NULL. */
ctts_status spm_decode_len(const spm_model *m, const int32_t *ids, size_t n, char **out,
                           size_t *out_len, char *err, size_t err_len);

#endif
