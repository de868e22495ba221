/*
 * Growable byte buffer, always NUL-terminated. An allocation failure sets
 * `oom` and makes later appends no-ops, so callers check once at the end.
 */
#ifndef CTTS_BASE_STRBUF_H
#define CTTS_BASE_STRBUF_H

#include <stddef.h>

typedef struct {
    char *p; /* NULL until the first append; caller frees */
    size_t len, cap;
    int oom;
} ctts_strbuf;

/* Appends s[0..n) (n may be 0). */
void ctts_strbuf_put(ctts_strbuf *b, const void *s, size_t n);

#endif
