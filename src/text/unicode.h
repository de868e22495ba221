/*
 * Unicode helpers for the text front end: strict UTF-8 decode/encode and the
 * few Python str predicates Pocket TTS's text preparation depends on
 * (isspace, isupper, isalnum, upper), driven by tables generated from Python's
 * unicodedata (src/text/unicode_tables.c, made by scripts/gen_unicode_tables.py).
 *
 * Data flow: bytes -> uni_utf8_decode -> code point -> predicate / mapping.
 * It does not normalise (NFKC lives in the tokenizer's charsmap) and does not
 * segment graphemes.
 */
#ifndef CTTS_TEXT_UNICODE_H
#define CTTS_TEXT_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Decodes one code point from s[0..len). Strict UTF-8 (no overlongs, no
 * surrogates, <= U+10FFFF). Returns the byte length 1..4, or 0 when the bytes
 * at s are not a valid sequence (or len == 0). */
int uni_utf8_decode(const char *s, size_t len, uint32_t *cp);
/* Writes cp as UTF-8 into out (4 bytes room); returns the byte count (0 if cp
 * is not a Unicode scalar value). */
int uni_utf8_encode(uint32_t cp, char *out);
/* 1 if the whole buffer is valid UTF-8. */
int uni_utf8_valid(const char *s, size_t len);

/* Python semantics for a one-character str. */
int uni_is_space(uint32_t cp); /* str.isspace (also what strip()/split() use) */
int uni_is_upper(uint32_t cp); /* str.isupper */
int uni_is_alnum(uint32_t cp); /* str.isalnum */
/* str.upper(): writes 1..3 code points into out and returns the count. */
int uni_to_upper(uint32_t cp, uint32_t out[3]);
/* Unicode version of the tables, e.g. "14.0.0". */
const char *uni_unicode_version(void);

/* ---- generated tables (unicode_tables.c) ---- */
typedef struct {
    uint32_t first, last; /* inclusive */
} uni_range;
typedef struct {
    uint32_t cp;
    uint32_t upper[3]; /* unused slots are 0 */
} uni_upper_entry;

extern const char uni_tables_unicode_version[];
extern const uni_range uni_space_ranges[];
extern const size_t uni_space_ranges_n;
extern const uni_range uni_upper_ranges[];
extern const size_t uni_upper_ranges_n;
extern const uni_range uni_alnum_ranges[];
extern const size_t uni_alnum_ranges_n;
extern const uni_upper_entry uni_upper_map[];
extern const size_t uni_upper_map_n;

#endif
