/*
 * ctts_tensor: a typed view of weights or activations.
 *
 * Shapes are stored outermost first, exactly as PyTorch / safetensors write
 * them (a Linear weight is shape {out, in}). Data is contiguous row-major.
 * A tensor never owns its data: the container (mmap of a safetensors file,
 * an arena, a model-owned buffer) does.
 */
#ifndef CTTS_BASE_TENSOR_H
#define CTTS_BASE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CTTS_DT_F32 = 0,
    CTTS_DT_F16,
    CTTS_DT_BF16,
    CTTS_DT_I64,
    CTTS_DT_I32,
    CTTS_DT_I16,
    CTTS_DT_I8,
    CTTS_DT_U8,
    CTTS_DT_BOOL,
    CTTS_DT_F64,
    CTTS_DT_Q8_0, /* ggml block: f16 scale + 32 x int8 (34 bytes / 32 values) */
    CTTS_DT_Q4_0, /* ggml block: f16 scale + 16 bytes of nibbles (18 bytes / 32 values) */
    CTTS_DT_COUNT
} ctts_dtype;

#define CTTS_MAX_DIMS 6

typedef struct {
    ctts_dtype dtype;
    int ndim;
    int64_t shape[CTTS_MAX_DIMS]; /* outermost first */
    void *data;
    size_t nbytes;
    const char *name; /* owned by the container; may be NULL */
    /* Convolution weights of dtype BF16 only: 1 = "BF16 products, F32
     * accumulation" (activations rounded to BF16; the fast path of hosts with
     * AVX512_BF16, see backend.h conv1d); 0 = float products (x exact). */
    int bf16_products;
    /* 1: data in a backend's private layout (backend.h pack_conv_transpose);
     * only that backend's conv_transpose1d reads it. */
    int packed;
} ctts_tensor;

/* Name as written in safetensors headers ("F32", "BF16", ...); "?" if none. */
const char *ctts_dtype_name(ctts_dtype t);
/* Parses a safetensors dtype name; returns -1 if unknown. */
int ctts_dtype_from_name(const char *name);
/* Bytes per element for plain types; 0 for block-quantized types. */
size_t ctts_dtype_size(ctts_dtype t);
/* Bytes needed for n elements (handles block types: n must be a multiple of 32). */
size_t ctts_dtype_row_bytes(ctts_dtype t, int64_t n);

int64_t ctts_tensor_numel(const ctts_tensor *t);
/* "[1024, 4096]" into buf. */
const char *ctts_shape_str(const ctts_tensor *t, char *buf, size_t len);

/* fp16 / bf16 conversions (scalar; exact round-to-nearest-even). */
float ctts_f16_to_f32(uint16_t h);
uint16_t ctts_f32_to_f16(float f);
float ctts_bf16_to_f32(uint16_t h);
uint16_t ctts_f32_to_bf16(float f);

#endif
