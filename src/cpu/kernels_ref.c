/*
 * Scalar reference kernels: the fallback on every host and the oracle that
 * the SIMD variants are tested against.
 *
 * Written for clarity: one output element at a time, sums accumulated in
 * float in index order. Each kernel fills only its own output range, so a
 * caller may split the range across threads freely. Weights in BF16/F16 are
 * widened to float per element; no allocation, no state.
 */
#include <math.h>
#include <string.h>

#include "cpu/kernels.h"
#include "quant/quant.h"

/* Element i of a weight array of dtype dt (F32, BF16 or F16) as float. */
static inline float wload(const void *w, ctts_dtype dt, size_t i) {
    switch (dt) {
    case CTTS_DT_BF16: return ctts_bf16_to_f32(((const uint16_t *)w)[i]);
    case CTTS_DT_F16: return ctts_f16_to_f32(((const uint16_t *)w)[i]);
    default: return ((const float *)w)[i];
    }
}

static void matmul_f32(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                       int T) {
    const float *W = w;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            const float *xr = x + (size_t)t * ldx, *wr = W + (size_t)r * K;
            float acc = 0.0f;
            for (int k = 0; k < K; k++) acc += xr[k] * wr[k];
            y[(size_t)t * ldy + r] = acc;
        }
}

static void matmul_bf16(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                        int T) {
    const uint16_t *W = w;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            const float *xr = x + (size_t)t * ldx;
            const uint16_t *wr = W + (size_t)r * K;
            float acc = 0.0f;
            for (int k = 0; k < K; k++) acc += xr[k] * ctts_bf16_to_f32(wr[k]);
            y[(size_t)t * ldy + r] = acc;
        }
}

static void matmul_f16(float *y, int ldy, const float *x, int ldx, const void *w, int R, int K,
                       int T) {
    const uint16_t *W = w;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            const float *xr = x + (size_t)t * ldx;
            const uint16_t *wr = W + (size_t)r * K;
            float acc = 0.0f;
            for (int k = 0; k < K; k++) acc += xr[k] * ctts_f16_to_f32(wr[k]);
            y[(size_t)t * ldy + r] = acc;
        }
}

static void matmul_q8_0(float *y, int ldy, const void *xq, const void *w, int R, int K, int T) {
    const size_t nb = (size_t)K / QK;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++)
            y[(size_t)t * ldy + r] = dot_q8_0_q8_0_ref((const block_q8_0 *)w + (size_t)r * nb,
                                                       (const block_q8_0 *)xq + (size_t)t * nb, K);
}

static void matmul_q4_0(float *y, int ldy, const void *xq, const void *w, int R, int K, int T) {
    const size_t nb = (size_t)K / QK;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++)
            y[(size_t)t * ldy + r] = dot_q4_0_q8_0_ref((const block_q4_0 *)w + (size_t)r * nb,
                                                       (const block_q8_0 *)xq + (size_t)t * nb, K);
}

static void quant_row_q8_0(const float *x, void *y, int k) { quant_row_q8_0_ref(x, y, k); }

void cpu_conv1d_ref(const cpu_conv_args *a, int co0, int co1) {
    const int cin_g = a->cin / a->groups, cout_g = a->cout / a->groups;
    for (int co = co0; co < co1; co++) {
        const int g = co / cout_g;
        float *yr = a->y + (size_t)co * a->tout;
        for (int t = 0; t < a->tout; t++) {
            float acc = a->bias ? a->bias[co] : 0.0f;
            for (int cl = 0; cl < cin_g; cl++) {
                const float *xr = a->x + (size_t)(g * cin_g + cl) * a->tin + (size_t)t * a->stride;
                const size_t wbase = ((size_t)co * cin_g + cl) * a->k;
                for (int j = 0; j < a->k; j++)
                    acc += wload(a->w, a->wdt, wbase + j) * xr[(size_t)j * a->dilation];
            }
            yr[t] = acc;
        }
    }
}

void cpu_conv_transpose1d_ref(const cpu_conv_args *a, int co0, int co1) {
    const int cin_g = a->cin / a->groups, cout_g = a->cout / a->groups;
    for (int co = co0; co < co1; co++) {
        const int g = co / cout_g, col = co % cout_g;
        float *yr = a->y + (size_t)co * a->tout;
        const float b = a->bias ? a->bias[co] : 0.0f;
        for (int t = 0; t < a->tout; t++) yr[t] = b;
        for (int cl = 0; cl < cin_g; cl++) {
            const int ci = g * cin_g + cl;
            const float *xr = a->x + (size_t)ci * a->tin;
            const size_t wbase = ((size_t)ci * cout_g + col) * a->k;
            for (int t = 0; t < a->tin; t++) {
                float *yt = yr + (size_t)t * a->stride;
                for (int j = 0; j < a->k; j++) yt[j] += xr[t] * wload(a->w, a->wdt, wbase + j);
            }
        }
    }
}

static void f16_to_f32_ref(float *y, const uint16_t *x, int n) {
    for (int i = 0; i < n; i++) y[i] = ctts_f16_to_f32(x[i]);
}

static void f32_to_f16_ref(uint16_t *y, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] = cpu_f32_to_f16_sat(x[i]);
}

static float dot_ref(const float *a, const float *b, int n) {
    float acc = 0.0f;
    for (int i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

static void axpy_ref(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static void scale_ref(float *y, float a, int n) {
    for (int i = 0; i < n; i++) y[i] *= a;
}

static void act_ref(float *y, const float *x, int n, int kind) {
    switch (kind) {
    case CPU_ACT_GELU_ERF:
        for (int i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        break;
    case CPU_ACT_SILU:
        for (int i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
        break;
    default:
        for (int i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : expm1f(x[i]);
        break;
    }
}

/* Two passes (mean, then squared deviations): robust when |mean| >> std. */
static void layer_norm_row_ref(float *y, const float *x, const float *w, const float *b, int D,
                               float eps) {
    float sum = 0.0f;
    for (int i = 0; i < D; i++) sum += x[i];
    const float mean = sum / (float)D;
    float ss = 0.0f;
    for (int i = 0; i < D; i++) ss += (x[i] - mean) * (x[i] - mean);
    const float inv = 1.0f / sqrtf(ss / (float)D + eps);
    for (int i = 0; i < D; i++) {
        float v = (x[i] - mean) * inv;
        if (w) v *= w[i];
        if (b) v += b[i];
        y[i] = v;
    }
}

/* Unbiased variance (D-1; D = 1 uses 1 to stay finite), x not centred. */
static void std_norm_row_ref(float *y, const float *x, const float *w, int D, float eps) {
    float sum = 0.0f;
    for (int i = 0; i < D; i++) sum += x[i];
    const float mean = sum / (float)D;
    float ss = 0.0f;
    for (int i = 0; i < D; i++) ss += (x[i] - mean) * (x[i] - mean);
    const float inv = 1.0f / sqrtf(ss / (float)(D > 1 ? D - 1 : 1) + eps);
    for (int i = 0; i < D; i++) y[i] = x[i] * inv * (w ? w[i] : 1.0f);
}

static void snake_row_ref(float *y, const float *x, int n, float a, float b) {
    for (int i = 0; i < n; i++) {
        const float s = sinf(x[i] * a);
        y[i] = x[i] + b * (s * s);
    }
}

void cpu_kernels_init_ref(cpu_kernels *k) {
    memset(k, 0, sizeof *k);
    k->isa = CTTS_ISA_SCALAR;
    k->name = "scalar";
    k->matmul[CTTS_DT_F32] = matmul_f32;
    k->matmul[CTTS_DT_BF16] = matmul_bf16;
    k->matmul[CTTS_DT_F16] = matmul_f16;
    k->matmul_q[CTTS_DT_Q8_0] = matmul_q8_0;
    k->matmul_q[CTTS_DT_Q4_0] = matmul_q4_0;
    k->quant_row_q8_0 = quant_row_q8_0;
    k->conv1d = cpu_conv1d_ref;
    k->conv_transpose1d = cpu_conv_transpose1d_ref;
    k->dot = dot_ref;
    k->f16_to_f32 = f16_to_f32_ref;
    k->f32_to_f16 = f32_to_f16_ref;
    k->axpy = axpy_ref;
    k->scale = scale_ref;
    k->act = act_ref;
    k->layer_norm_row = layer_norm_row_ref;
    k->std_norm_row = std_norm_row_ref;
    k->snake_row = snake_row_ref;
}
