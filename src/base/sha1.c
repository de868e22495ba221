/* SHA-1 (FIPS 180-4): 64-byte blocks, big-endian words, 80 rounds. */
#include "base/sha1.h"

#include <string.h>

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void block(uint32_t h[5], const unsigned char *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void ctts_sha1_init(ctts_sha1 *s) {
    static const uint32_t iv[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memcpy(s->h, iv, sizeof iv);
    s->total = 0;
    s->buf_len = 0;
}

void ctts_sha1_update(ctts_sha1 *s, const void *data, size_t len) {
    const unsigned char *p = data;
    s->total += len;
    if (s->buf_len) {
        size_t k = 64 - s->buf_len < len ? 64 - s->buf_len : len;
        memcpy(s->buf + s->buf_len, p, k);
        s->buf_len += k;
        p += k;
        len -= k;
        if (s->buf_len < 64) return;
        block(s->h, s->buf);
        s->buf_len = 0;
    }
    for (; len >= 64; p += 64, len -= 64) block(s->h, p);
    memcpy(s->buf, p, len);
    s->buf_len = len;
}

void ctts_sha1_final(ctts_sha1 *s, unsigned char out[20]) {
    uint64_t bits = s->total * 8;
    size_t n = s->buf_len;
    s->buf[n++] = 0x80;
    if (n > 56) {
        memset(s->buf + n, 0, 64 - n);
        block(s->h, s->buf);
        n = 0;
    }
    memset(s->buf + n, 0, 56 - n);
    for (int i = 0; i < 8; i++) s->buf[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    block(s->h, s->buf);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->h[i];
    }
}
