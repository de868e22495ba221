/*
 * Zero-copy safetensors reader and a writer matching the Python library.
 *
 * File layout: u64 little-endian header length N, N bytes of JSON header
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * optional "__metadata__": {string: string}}), then the data section;
 * offsets are relative to the start of the data section.
 *
 * Reading: st_open maps the file read-only and validates everything before
 * returning (see st_open). Tensor data pointers point into the read-only
 * mapping: never write through them. The data section is not required to be
 * aligned (the format does not promise it, e.g. an odd header length), so a
 * tensor's data may be unaligned for its dtype: check st_is_aligned() and copy
 * (memcpy) before using it as a typed array.
 *
 * Writing: st_write / st_write_meta produce the same bytes as Python
 * safetensors' save_file for the same tensors (see st_write).
 * Block-quantized dtypes (Q8_0, Q4_0) are not safetensors dtypes here.
 */
#ifndef CTTS_IO_SAFETENSORS_H
#define CTTS_IO_SAFETENSORS_H

#include <stddef.h>

#include "base/tensor.h"
#include "ctts.h"

#define ST_MAX_HEADER_BYTES (100u * 1000u * 1000u)

typedef struct st_file st_file;

/* Opens and fully validates: file >= 8 bytes; header length <= file size - 8
 * and <= 100 MB; header is a JSON object; each entry (except "__metadata__",
 * an object of string values) has a known "dtype", "shape" (non-negative
 * integers, <= CTTS_MAX_DIMS dims), "data_offsets" ([begin, end] integers,
 * begin <= end <= data section size); numel * dtype size == end - begin;
 * tensor byte ranges do not overlap (gaps are allowed); names unique,
 * non-empty, without NUL. Errors: CTTS_E_IO (cannot open/read) or
 * CTTS_E_FORMAT "<path>: <what> (tensor '<name>')". *out = NULL on error. */
ctts_status st_open(const char *path, st_file **out, char *err, size_t err_len);
void st_close(st_file *f);
int st_count(const st_file *f);
/* Tensor i in header order (NULL if out of range). name is owned by f. */
const ctts_tensor *st_tensor(const st_file *f, int i);
/* By name (binary search over a sorted index); NULL if absent. */
const ctts_tensor *st_find(const st_file *f, const char *name);
const char *st_path(const st_file *f);
/* 1 if t->data is aligned to its dtype's element size (so it can be read as a typed array). */
int st_is_aligned(const ctts_tensor *t);

/* __metadata__ entries in file order (0 if none). */
int st_metadata_count(const st_file *f);
const char *st_metadata_key(const st_file *f, int i);
const char *st_metadata_value(const st_file *f, int i);
/* Value for key, NULL if absent. */
const char *st_metadata_get(const st_file *f, const char *key);

/* Writes tensors like Python safetensors' save_file: header keys and data in
 * byte-wise name order, compact JSON, header padded with spaces to a multiple
 * of 8, {"__metadata__":{"format":"pt"}} first. Written to "<path>.tmp" then
 * renamed over path. Names must be non-NULL, non-empty and unique; nbytes must
 * equal numel * dtype size. */
ctts_status st_write(const char *path, const ctts_tensor *tensors, int n, char *err, size_t err_len);
/* Same with explicit metadata: n_meta pairs (keys, values); n_meta == 0 writes
 * no "__metadata__" at all (like save_file(..., metadata=None) from
 * safetensors.numpy / the voice-state export). */
ctts_status st_write_meta(const char *path, const ctts_tensor *tensors, int n,
                          const char *const *meta_keys, const char *const *meta_values, int n_meta,
                          char *err, size_t err_len);

#endif
