/*
 * SHA-1 (FIPS 180-4), incremental. Used only to verify hub downloads of plain
 * git files, whose ETag is the git blob id SHA-1("blob <size>\0" + bytes)
 * (LFS files carry a SHA-256, see base/sha256.h). Not for security.
 */
#ifndef CTTS_BASE_SHA1_H
#define CTTS_BASE_SHA1_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[5];
    uint64_t total; /* bytes hashed so far */
    unsigned char buf[64];
    size_t buf_len;
} ctts_sha1;

void ctts_sha1_init(ctts_sha1 *s);
void ctts_sha1_update(ctts_sha1 *s, const void *data, size_t len);
/* Writes the 20-byte digest; s must be re-initialised before reuse. */
void ctts_sha1_final(ctts_sha1 *s, unsigned char out[20]);

#endif
