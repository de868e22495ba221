/*
 * Read-only whole-file memory mapping.
 *
 * ctts_map_file maps a regular file PROT_READ / MAP_PRIVATE; the pages must
 * never be written. An empty file maps to {NULL, 0} (mmap cannot map zero
 * bytes). Directories and other non-regular files are refused (CTTS_E_IO).
 * It does not lock pages or advise the kernel about access patterns.
 */
#ifndef CTTS_IO_MMAP_H
#define CTTS_IO_MMAP_H

#include <stddef.h>

#include "ctts.h"

typedef struct {
    void *data;
    size_t size;
} ctts_mapped_file;

/* Read-only mmap; empty file ok (data NULL, size 0). Errors: CTTS_E_IO "cannot open '<path>': ..." */
ctts_status ctts_map_file(const char *path, ctts_mapped_file *out, char *err, size_t err_len);
/* Unmaps and zeroes *f (a zeroed or already unmapped struct is fine). */
void ctts_unmap_file(ctts_mapped_file *f);

#endif
