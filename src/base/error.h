/*
 * Error helpers. Library functions return a ctts_status (0 = OK, negative =
 * error) and write a one-line message naming the file / field into a caller
 * buffer. Nothing here prints or exits.
 */
#ifndef CTTS_BASE_ERROR_H
#define CTTS_BASE_ERROR_H

#include <stddef.h>

#include "ctts.h"

/* snprintf into err (if err && len) and return st. */
ctts_status ctts_err(char *err, size_t len, ctts_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
