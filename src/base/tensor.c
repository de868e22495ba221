/* ctts_tensor helpers: dtype table, shapes, half-precision conversions. */
#include "base/tensor.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtype_info[CTTS_DT_COUNT] = {
    [CTTS_DT_F32] = {"F32", 4},  [CTTS_DT_F16] = {"F16", 2}, [CTTS_DT_BF16] = {"BF16", 2},
    [CTTS_DT_I64] = {"I64", 8},  [CTTS_DT_I32] = {"I32", 4}, [CTTS_DT_I16] = {"I16", 2},
    [CTTS_DT_I8] = {"I8", 1},    [CTTS_DT_U8] = {"U8", 1},   [CTTS_DT_BOOL] = {"BOOL", 1},
    [CTTS_DT_F64] = {"F64", 8},  [CTTS_DT_Q8_0] = {"Q8_0", 0}, [CTTS_DT_Q4_0] = {"Q4_0", 0},
};

const char *ctts_dtype_name(ctts_dtype t) {
    return (unsigned)t < CTTS_DT_COUNT ? dtype_info[t].name : "?";
}

int ctts_dtype_from_name(const char *name) {
    for (int i = 0; i < CTTS_DT_COUNT; i++)
        if (dtype_info[i].size && strcmp(dtype_info[i].name, name) == 0) return i;
    return -1;
}

size_t ctts_dtype_size(ctts_dtype t) {
    return (unsigned)t < CTTS_DT_COUNT ? dtype_info[t].size : 0;
}

size_t ctts_dtype_row_bytes(ctts_dtype t, int64_t n) {
    if (t == CTTS_DT_Q8_0) return (size_t)(n / 32) * 34;
    if (t == CTTS_DT_Q4_0) return (size_t)(n / 32) * 18;
    return (size_t)n * ctts_dtype_size(t);
}

int64_t ctts_tensor_numel(const ctts_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

const char *ctts_shape_str(const ctts_tensor *t, char *buf, size_t len) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int i = 0; i < t->ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
    return buf;
}

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

float ctts_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

uint16_t ctts_f32_to_bf16(float f) {
    uint32_t u = f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float ctts_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return bits_to_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t ctts_f32_to_f16(float f) {
    uint32_t u = f32_to_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* overflow -> inf */
    if (a < 0x38800000u) {                                    /* subnormal or zero */
        float v = bits_to_f32(a) * 16777216.0f;               /* scale to units of 2^-24 */
        uint32_t m = (uint32_t)v;
        float r = v - (float)m;
        if (r > 0.5f || (r == 0.5f && (m & 1u))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t e = ((a >> 23) - 112u) << 10;
    uint32_t m = (a >> 13) & 0x3ffu;
    uint32_t rest = a & 0x1fffu;
    uint32_t h = e | m;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}
