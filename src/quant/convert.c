/*
 * Load-time weight conversion (see convert.h): each row is widened to float
 * in a scratch row and written in the target dtype with the reference
 * quantizers of quant_ref.c. Rows are split over a few threads: a full-size
 * model has ~85 M weights to quantize, which takes ~0.3 s on one core.
 */
#include "quant/convert.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/error.h"
#include "quant/quant.h"

#define ROW_MAX (1 << 20) /* longest row converted */
#define MAX_THREADS 16

static int is_float(ctts_dtype t) {
    return t == CTTS_DT_F32 || t == CTTS_DT_BF16 || t == CTTS_DT_F16;
}

int quant_can_convert(const ctts_tensor *src, ctts_dtype to) {
    if (!src || !src->data || src->ndim < 1 || !is_float(src->dtype)) return 0;
    if (!is_float(to) && to != CTTS_DT_Q8_0 && to != CTTS_DT_Q4_0) return 0;
    const int64_t k = src->shape[src->ndim - 1];
    if (k <= 0 || k > ROW_MAX) return 0;
    return ctts_dtype_size(to) != 0 || k % QK == 0;
}

ctts_dtype quant_weight_dtype(ctts_weight_type wt) {
    switch (wt) {
    case CTTS_WEIGHTS_F32: return CTTS_DT_F32;
    case CTTS_WEIGHTS_BF16: return CTTS_DT_BF16;
    case CTTS_WEIGHTS_Q8_0: return CTTS_DT_Q8_0;
    case CTTS_WEIGHTS_Q4_0: return CTTS_DT_Q4_0;
    default: return CTTS_DT_COUNT;
    }
}

typedef struct {
    const ctts_tensor *src;
    ctts_dtype to;
    void *dst;
    float *row; /* [k] scratch of this job */
    int64_t k, r0, r1;
} job;

static void convert_rows(const job *j) {
    float *row = j->row;
    const size_t in_row = ctts_dtype_row_bytes(j->src->dtype, j->k);
    const size_t out_row = ctts_dtype_row_bytes(j->to, j->k);
    for (int64_t r = j->r0; r < j->r1; r++) {
        const char *in = (const char *)j->src->data + (size_t)r * in_row;
        char *out = (char *)j->dst + (size_t)r * out_row;
        if (j->src->dtype == CTTS_DT_F32) {
            memcpy(row, in, (size_t)j->k * 4);
        } else if (j->src->dtype == CTTS_DT_BF16) {
            for (int64_t i = 0; i < j->k; i++) { /* ctts_bf16_to_f32, inlined: the top 16 bits */
                uint16_t h;
                memcpy(&h, in + 2 * i, 2);
                const uint32_t u = (uint32_t)h << 16;
                memcpy(&row[i], &u, 4);
            }
        } else {
            for (int64_t i = 0; i < j->k; i++) {
                uint16_t h;
                memcpy(&h, in + 2 * i, 2);
                row[i] = ctts_f16_to_f32(h);
            }
        }
        switch (j->to) {
        case CTTS_DT_Q8_0: quant_row_q8_0_ref(row, (block_q8_0 *)out, (int)j->k); break;
        case CTTS_DT_Q4_0: quant_row_q4_0_ref(row, (block_q4_0 *)out, (int)j->k); break;
        case CTTS_DT_F32: memcpy(out, row, (size_t)j->k * 4); break;
        default:
            for (int64_t i = 0; i < j->k; i++) {
                const uint16_t h = j->to == CTTS_DT_BF16 ? ctts_f32_to_bf16(row[i]) : ctts_f32_to_f16(row[i]);
                memcpy(out + 2 * i, &h, 2);
            }
            break;
        }
    }
}

static void *thread_main(void *arg) {
    convert_rows(arg);
    return NULL;
}

ctts_status quant_convert(const ctts_tensor *src, ctts_dtype to, int n_threads, void **out,
                          size_t *out_bytes, char *err, size_t err_len) {
    *out = NULL;
    *out_bytes = 0;
    const char *name = src && src->name ? src->name : "(tensor)";
    if (!quant_can_convert(src, to))
        return ctts_err(err, err_len, CTTS_E_UNSUPPORTED, "tensor '%s': cannot convert %s to %s",
                        name, src ? ctts_dtype_name(src->dtype) : "?", ctts_dtype_name(to));
    const int64_t k = src->shape[src->ndim - 1], rows = ctts_tensor_numel(src) / k;
    if (src->nbytes < ctts_dtype_row_bytes(src->dtype, k) * (size_t)rows)
        return ctts_err(err, err_len, CTTS_E_FORMAT, "tensor '%s': data too short", name);
    const size_t bytes = ctts_dtype_row_bytes(to, k) * (size_t)rows;
    int nt = n_threads < 1 ? 1 : n_threads > MAX_THREADS ? MAX_THREADS : n_threads;
    if (rows * k < (1 << 18)) nt = 1; /* small tensors: not worth a thread */
    void *dst = malloc(bytes ? bytes : 1);
    float *rows_buf = malloc((size_t)nt * (size_t)k * sizeof(float));
    if (!dst || !rows_buf) {
        free(dst);
        free(rows_buf);
        return ctts_err(err, err_len, CTTS_E_OOM, "tensor '%s': out of memory", name);
    }
    job jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int i = 0; i < nt; i++)
        jobs[i] = (job){.src = src, .to = to, .dst = dst, .row = rows_buf + (size_t)i * k, .k = k,
                        .r0 = rows * i / nt,
                        .r1 = rows * (i + 1) / nt};
    for (int i = 1; i < nt; i++) started[i] = pthread_create(&tid[i], NULL, thread_main, &jobs[i]) == 0;
    convert_rows(&jobs[0]);
    for (int i = 1; i < nt; i++) {
        if (started[i]) pthread_join(tid[i], NULL);
        else convert_rows(&jobs[i]); /* thread creation failed: do it here */
    }
    free(rows_buf);
    *out = dst;
    *out_bytes = bytes;
    return CTTS_OK;
}

void quant_release_pages(const void *p, size_t n) {
#if defined(MADV_DONTNEED)
    const long ps = sysconf(_SC_PAGESIZE);
    if (!p || ps <= 0) return;
    const uintptr_t a = ((uintptr_t)p + (uintptr_t)ps - 1) & ~(uintptr_t)(ps - 1);
    const uintptr_t b = ((uintptr_t)p + n) & ~(uintptr_t)(ps - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
#else
    (void)p;
    (void)n;
#endif
}
