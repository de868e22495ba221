/* Formatted error messages into caller-owned buffers. */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>

ctts_status ctts_err(char *err, size_t len, ctts_status st, const char *fmt, ...) {
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    return st;
}
