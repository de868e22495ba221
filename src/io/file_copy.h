/*
 * Copying a file (model export: tokenizers and configs go along with the
 * converted weights). Not here: directories, links, atomic replacement.
 */
#ifndef CTTS_IO_FILE_COPY_H
#define CTTS_IO_FILE_COPY_H

#include <stddef.h>

#include "ctts.h"

/* Copies src to dst (created or truncated). CTTS_E_IO "cannot open / write /
 * copy '<path>'" on failure. */
ctts_status io_copy_file(const char *src, const char *dst, char *err, size_t err_len);

#endif
