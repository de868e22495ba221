/*
 * SHA-256 (FIPS 180-4), incremental. Used to key on-disk caches by content
 * (voice states cloned from audio files). Not constant-time, not for secrets.
 */
#ifndef CTTS_BASE_SHA256_H
#define CTTS_BASE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    unsigned char buf[64];
    size_t buf_len;
} ctts_sha256;

void ctts_sha256_init(ctts_sha256 *s);
void ctts_sha256_update(ctts_sha256 *s, const void *data, size_t len);
/* Writes the 32-byte digest; s must be re-initialised before reuse. */
void ctts_sha256_final(ctts_sha256 *s, unsigned char out[32]);
/* One-shot digest of a buffer. */
void ctts_sha256_buf(const void *data, size_t len, unsigned char out[32]);
/* Lower-case hex of n bytes into hex (2n + 1 chars, NUL-terminated). */
void ctts_hex(const unsigned char *bytes, size_t n, char *hex);

#endif
