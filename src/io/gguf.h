/*
 * GGUF v3 files (the ggml container): read-only mapped reading and writing.
 *
 * Layout: "GGUF", version 3, tensor count, metadata count; metadata
 * key/value pairs; tensor infos (name, dims innermost first, ggml type,
 * offset); padding to the alignment (general.alignment, default 32); data.
 * Tensor types map to ctts dtypes: F32, F16, BF16, Q8_0, Q4_0 (ggml type ids
 * 0, 1, 30, 8, 2); blocks use the ggml layouts (quant/quant.h).
 *
 * Reading (gguf_open) maps the file and validates every size and offset
 * before returning; tensors are zero-copy views into the mapping (shape
 * outermost first, like safetensors). Metadata other than general.alignment
 * and string values (gguf_get_str) is skipped. Writing (gguf_write) writes
 * the given tensors and string metadata. No model knowledge here.
 */
#ifndef CTTS_IO_GGUF_H
#define CTTS_IO_GGUF_H

#include <stddef.h>

#include "base/tensor.h"
#include "ctts.h"

typedef struct gguf_file gguf_file;

/* Errors: CTTS_E_IO (open), CTTS_E_FORMAT "<path>: <what>" for anything malformed
 * (bad magic or version, truncated, sizes or offsets out of range), CTTS_E_UNSUPPORTED
 * for tensor types ctts has no dtype for, CTTS_E_OOM. */
ctts_status gguf_open(const char *path, gguf_file **out, char *err, size_t err_len);
void gguf_close(gguf_file *f);
int gguf_count(const gguf_file *f);
const ctts_tensor *gguf_tensor(const gguf_file *f, int i);
const char *gguf_path(const gguf_file *f);
/* A string metadata value, or NULL. */
const char *gguf_get_str(const gguf_file *f, const char *key);

/* Writes tensors[0..n) (F32/F16/BF16/Q8_0/Q4_0, named, contiguous) and the string
 * metadata pairs kv[0..2*n_kv) (key, value, ...) to path, data aligned to 32. */
ctts_status gguf_write(const char *path, const ctts_tensor *const *tensors, int n,
                       const char *const *kv, int n_kv, char *err, size_t err_len);

#endif
