/*
 * Reference Q8_0 / Q4_0 quantize, dequantize and dot (see quant.h).
 *
 * Rounding follows ggml's reference quantizers so files written here and by
 * ggml tools agree: Q8_0 rounds x/d to nearest (ties away from zero, as roundf;
 * v + 0.5 can differ from roundf by one step when v is within 2^-25 of a tie),
 * Q4_0 truncates x/d + 8.5 and clamps to 15. Scales are stored as f16 and the
 * products use the stored (rounded) scale, as every reader will.
 */
#include "quant/quant.h"

#include <math.h>

#include "base/tensor.h"

/* Round half away from zero, like roundf (which is a libm call and made
 * quantizing a full model at load take a second). |v| <= 127.5 here. */
static inline int round_away(float v) {
    return (int)(v + (v >= 0.0f ? 0.5f : -0.5f));
}

void quant_row_q8_0_ref(const float *x, block_q8_0 *y, int k) {
    for (int b = 0; b < k / QK; b++) {
        const float *xb = x + (size_t)b * QK;
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) { /* fmaxf(amax, |x|) without the libm call (NaN: skipped too) */
            const float a = fabsf(xb[j]);
            if (a > amax) amax = a;
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ctts_f32_to_f16(d);
        for (int j = 0; j < QK; j++) y[b].qs[j] = (int8_t)round_away(xb[j] * id);
    }
}

void quant_row_q4_0_ref(const float *x, block_q4_0 *y, int k) {
    for (int b = 0; b < k / QK; b++) {
        const float *xb = x + (size_t)b * QK;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++)
            if (fabsf(xb[j]) > amax) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ctts_f32_to_f16(d);
        for (int j = 0; j < QK / 2; j++) {
            int lo = (int)(xb[j] * id + 8.5f), hi = (int)(xb[j + QK / 2] * id + 8.5f);
            lo = lo < 0 ? 0 : lo > 15 ? 15 : lo;
            hi = hi < 0 ? 0 : hi > 15 ? 15 : hi;
            y[b].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

void dequant_row_q8_0_ref(const block_q8_0 *x, float *y, int k) {
    for (int b = 0; b < k / QK; b++) {
        const float d = ctts_f16_to_f32(x[b].d);
        for (int j = 0; j < QK; j++) y[(size_t)b * QK + j] = d * (float)x[b].qs[j];
    }
}

void dequant_row_q4_0_ref(const block_q4_0 *x, float *y, int k) {
    for (int b = 0; b < k / QK; b++) {
        const float d = ctts_f16_to_f32(x[b].d);
        for (int j = 0; j < QK / 2; j++) {
            y[(size_t)b * QK + j] = d * (float)((x[b].qs[j] & 15) - 8);
            y[(size_t)b * QK + j + QK / 2] = d * (float)((x[b].qs[j] >> 4) - 8);
        }
    }
}

float dot_q8_0_q8_0_ref(const block_q8_0 *w, const block_q8_0 *x, int k) {
    float s = 0.0f;
    for (int b = 0; b < k / QK; b++) {
        int32_t acc = 0;
        for (int j = 0; j < QK; j++) acc += (int32_t)w[b].qs[j] * (int32_t)x[b].qs[j];
        s += ctts_f16_to_f32(w[b].d) * ctts_f16_to_f32(x[b].d) * (float)acc;
    }
    return s;
}

float dot_q4_0_q8_0_ref(const block_q4_0 *w, const block_q8_0 *x, int k) {
    float s = 0.0f;
    for (int b = 0; b < k / QK; b++) {
        int32_t acc = 0;
        for (int j = 0; j < QK / 2; j++) {
            acc += ((w[b].qs[j] & 15) - 8) * (int32_t)x[b].qs[j];
            acc += ((w[b].qs[j] >> 4) - 8) * (int32_t)x[b].qs[j + QK / 2];
        }
        s += ctts_f16_to_f32(w[b].d) * ctts_f16_to_f32(x[b].d) * (float)acc;
    }
    return s;
}
