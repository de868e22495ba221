/*
 * Unicode Normalization Form C (NFC), as Python's unicodedata.normalize("NFC")
 * and the Hugging Face tokenizers' NFC normalizer compute it: canonical
 * decomposition (Hangul algorithmically), canonical ordering of combining
 * marks, canonical composition. Tables come from scripts/gen_nfc_tables.py.
 *
 * Data flow: UTF-8 bytes -> code points -> decompose/reorder/compose -> UTF-8.
 * It does not do compatibility forms (NFKC/NFKD) and does not validate beyond
 * strict UTF-8 decoding.
 */
#ifndef CTTS_TEXT_NFC_H
#define CTTS_TEXT_NFC_H

#include <stddef.h>
#include <stdint.h>

/* NFC of s[0..len) (valid UTF-8; NUL bytes allowed). On success returns a
 * malloc'd NUL-terminated buffer (free with free) and its byte length in
 * *out_len; NULL if s is not valid UTF-8 or memory runs out. */
char *nfc_normalize(const char *s, size_t len, size_t *out_len);

/* 1 if NFC never joins cp with what precedes it (a starter that is not the
 * second half of any composition): NFC(a + b) = NFC(a) + NFC(b) when b
 * starts with cp. Text arriving in pieces may be cut there. */
int nfc_cut_before(uint32_t cp);
/* Canonical combining class of cp (0 for starters). */
int nfc_ccc(uint32_t cp);
/* Unicode version of the tables, e.g. "14.0.0". */
const char *nfc_unicode_version(void);

/* ---- generated tables (nfc_tables.c) ---- */
typedef struct {
    uint32_t first, last; /* inclusive */
    uint8_t ccc;
} nfc_ccc_range;
typedef struct {
    uint32_t cp;
    uint32_t offset; /* into nfc_decomp_pool */
    uint32_t len;    /* 1..4 code points, fully decomposed */
} nfc_decomp_entry;
typedef struct {
    uint32_t first, second, composite;
} nfc_comp_entry;

extern const char nfc_tables_unicode_version[];
extern const nfc_ccc_range nfc_ccc_ranges[];
extern const size_t nfc_ccc_ranges_n;
extern const uint32_t nfc_decomp_pool[];
extern const nfc_decomp_entry nfc_decomp[];
extern const size_t nfc_decomp_n;
extern const nfc_comp_entry nfc_comp[]; /* sorted by (first, second) */
extern const size_t nfc_comp_n;

#endif
