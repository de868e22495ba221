/*
 * Block-quantized weights, byte-compatible with ggml (GGUF type ids 8 and 2).
 *
 *  Q8_0: 32 values = f16 scale d + 32 x int8 q;            value = d * q.
 *  Q4_0: 32 values = f16 scale d + 16 bytes of nibbles;     value = d * (n - 8),
 *        byte j holds value j in its low nibble and value j + 16 in its high one.
 *
 * Integer dot products pair a weight row (Q8_0 or Q4_0) with activations
 * quantized on the fly to Q8_0 (as ggml does): per block the int32 sum of
 * products times d_w * d_x, summed over blocks in float.
 *
 * This file holds the block structs, the reference (scalar) quantizers,
 * dequantizers and dot products: the oracle that SIMD kernels in src/cpu are
 * tested against, and the load-time converter's workhorse. No allocation, no
 * state. Rows must be a multiple of QK (32) long; blocks need 2-byte alignment
 * (the f16 scale), which rows of 34- or 18-byte blocks keep from any even base.
 */
#ifndef CTTS_QUANT_QUANT_H
#define CTTS_QUANT_QUANT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define QK 32 /* values per block (ggml QK8_0 = QK4_0 = 32) */

typedef struct {
    uint16_t d;     /* f16 scale */
    int8_t qs[QK];  /* quants */
} block_q8_0;

typedef struct {
    uint16_t d;          /* f16 scale */
    uint8_t qs[QK / 2];  /* nibbles: value j low, value j + 16 high */
} block_q4_0;

static_assert(sizeof(block_q8_0) == 34, "block_q8_0 must be 34 bytes (ggml layout)");
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 must be 18 bytes (ggml layout)");

/* x [k] -> k/32 blocks (k % 32 == 0). Round to nearest as ggml's reference:
 * Q8_0 d = max|x| / 127; Q4_0 d = -(signed value of largest magnitude) / 8. */
void quant_row_q8_0_ref(const float *x, block_q8_0 *y, int k);
void quant_row_q4_0_ref(const float *x, block_q4_0 *y, int k);

/* k/32 blocks -> y [k] floats. */
void dequant_row_q8_0_ref(const block_q8_0 *x, float *y, int k);
void dequant_row_q4_0_ref(const block_q4_0 *x, float *y, int k);

/* sum over blocks b of d_w[b] * d_x[b] * (int32 sum of q_w q_x), in block order.
 * w: a weight row of k values, x: activations quantized with quant_row_q8_0. */
float dot_q8_0_q8_0_ref(const block_q8_0 *w, const block_q8_0 *x, int k);
float dot_q4_0_q8_0_ref(const block_q4_0 *w, const block_q8_0 *x, int k);

#endif
