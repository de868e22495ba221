/*
 * CPU backend: a thin adapter from the backend op table (backend/backend.h)
 * onto the kernel table (cpu/kernels.h) and the thread pool (cpu/threadpool.h).
 *
 * Each op cuts its work by OUTPUT (rows of a linear, (query, head) pairs of
 * attention, output channels of a convolution, rows of a norm, slices of an
 * elementwise op) and hands ranges to cpu_parallel_for; no reduction is ever
 * split, so results are bit-identical for any thread count. Memory is plain
 * host memory; upload/download are memcpy. Ops never allocate: attention
 * uses an online softmax with a small on-stack score block.
 *
 * Block-quantized weights (Q8_0, Q4_0): linear quantizes the rows of x to
 * Q8_0 once on the calling thread (into a backend buffer guarded by a flag,
 * or a stack buffer when another thread holds it), then splits weight rows
 * as for float weights. The profiler (ctts_model_profile) times each op and
 * adds its FLOPs and bytes to the current stage when switched on.
 *
 * Ops return void (backend.h): callers validate shapes; an op given
 * impossible sizes does nothing rather than touch memory out of range.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "cpu/kernels.h"
#include "cpu/threadpool.h"

/* Bytes of the shared buffer for on-the-fly quantized activations; a call
 * that finds it taken (another session on another thread) uses a smaller
 * stack buffer instead. Both cut T into chunks that fit. */
#define QSCRATCH_BYTES (1 << 20)
#define QSTACK_BYTES (32 << 10)

typedef struct {
    cpu_kernels k;
    cpu_threadpool *pool;
    void *qscratch;        /* [QSCRATCH_BYTES] */
    atomic_int qscratch_busy;
    /* BF16 products (convolutions, prompt-sized quantized matmuls): packed
     * activations, grown to the largest call seen (a call finding it taken
     * uses a temporary). */
    void *cscratch;
    size_t cscratch_bytes;
    atomic_int cscratch_busy;
    /* Profiler (ctts_model_profile): counters of the ops since it was reset. */
    atomic_int prof_on;
    int prof_stage;
    ctts_profile prof;
} cpu_impl;

static cpu_impl *impl_of(ctts_backend *be) { return (cpu_impl *)be->impl; }

/* ---- profiler ---- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* t0 < 0 when profiling is off. */
static double prof_begin(ctts_backend *be) {
    return atomic_load_explicit(&impl_of(be)->prof_on, memory_order_relaxed) ? now_ms() : -1.0;
}

static void prof_end(ctts_backend *be, double t0, double flops, double bytes) {
    if (t0 < 0) return;
    cpu_impl *im = impl_of(be);
    const int s = im->prof_stage;
    im->prof.ms[s] += now_ms() - t0;
    im->prof.flops[s] += flops;
    im->prof.bytes[s] += bytes;
    im->prof.ops[s]++;
}

static void cpu_profile_stage(ctts_backend *be, int stage) {
    impl_of(be)->prof_stage = stage >= 0 && stage < CTTS_STAGE_COUNT ? stage : CTTS_STAGE_OTHER;
}

static void cpu_profile(ctts_backend *be, int enable, ctts_profile *out) {
    cpu_impl *im = impl_of(be);
    if (out) *out = im->prof;
    memset(&im->prof, 0, sizeof im->prof);
    im->prof_stage = CTTS_STAGE_OTHER;
    atomic_store(&im->prof_on, enable ? 1 : 0);
}

/* Elementwise ops below this many floats stay on one thread (waking a
 * worker costs more than the work). */
#define ELEMWISE_MIN 16384
/* Rows of W per linear task unit; matches the AVX2 micro-kernel height so a
 * task boundary never splits a register tile. */
#define LINEAR_ROW_BLOCK 4
/* Activation rows from which block-quantized weights are multiplied as BF16
 * products (kernels.h matmul_q_bf16) when the host has AVX512_BF16. */
#define MQ_BF16_MIN_T 24

/* ---- memory ---- */

static void *cpu_alloc(ctts_backend *be, size_t nbytes) {
    (void)be;
    size_t n = (nbytes + 63) & ~(size_t)63;
    if (n < nbytes) return NULL;
    if (n == 0) n = 64;
    void *p = aligned_alloc(64, n);
    if (p) memset(p, 0, n);
    return p;
}

static void cpu_free_buf(ctts_backend *be, void *p) {
    (void)be;
    free(p);
}

static void cpu_copy(ctts_backend *be, void *dst, const void *src, size_t nbytes) {
    (void)be;
    if (nbytes) memmove(dst, src, nbytes);
}

static void cpu_sync(ctts_backend *be) { (void)be; }

static int cpu_supports_dtype(ctts_backend *be, ctts_dtype dt) {
    const cpu_kernels *k = &impl_of(be)->k;
    return (unsigned)dt < CTTS_DT_COUNT && (k->matmul[dt] != NULL || k->matmul_q[dt] != NULL);
}

/* The shared scratch of the BF16-product paths (at least n bytes, 64-aligned)
 * with *own = 1, or a temporary when another thread holds it (*own = 0); NULL
 * when out of memory. */
static void *cscratch_take(cpu_impl *im, size_t n, int *own) {
    const size_t n64 = (n + 63) & ~(size_t)63;
    int expected = 0;
    *own = 0;
    if (atomic_compare_exchange_strong(&im->cscratch_busy, &expected, 1)) {
        if (im->cscratch_bytes < n64) {
            free(im->cscratch);
            im->cscratch = aligned_alloc(64, n64);
            im->cscratch_bytes = im->cscratch ? n64 : 0;
        }
        if (im->cscratch) {
            *own = 1;
            return im->cscratch;
        }
        atomic_store(&im->cscratch_busy, 0);
    }
    return aligned_alloc(64, n64);
}

static void cscratch_give(cpu_impl *im, void *p, int own) {
    if (own) atomic_store(&im->cscratch_busy, 0);
    else free(p);
}

/* ---- linear ---- */

/* Weights of one input multiplied in one pass (linear_multi): their row
 * blocks are numbered one after the other, so one split across threads and
 * one quantization of x serve them all. */
#define LINEAR_MAX_PARTS 4

typedef struct {
    float *y; /* [T, N] */
    const char *w;
    int N;
    int b0; /* first row block of this part in the joint numbering */
} linear_part;

typedef struct {
    cpu_matmul_fn mm;
    cpu_matmul_q_fn mmq; /* set for block-quantized weights: x is then xq */
    const void *xq;
    const float *x;
    size_t row_bytes;
    const float *bias; /* single part only */
    int K, T, n_parts;
    linear_part part[LINEAR_MAX_PARTS];
} linear_ctx;

static void linear_task(void *vctx, int b0, int b1, int tid) {
    (void)tid;
    const linear_ctx *c = vctx;
    for (int i = 0; i < c->n_parts; i++) {
        const linear_part *p = &c->part[i];
        const int nb = (p->N + LINEAR_ROW_BLOCK - 1) / LINEAR_ROW_BLOCK;
        const int lo = b0 > p->b0 ? b0 - p->b0 : 0;
        const int hi = b1 - p->b0 < nb ? b1 - p->b0 : nb;
        if (lo >= hi) continue;
        const int r0 = lo * LINEAR_ROW_BLOCK;
        const int r1 = hi * LINEAR_ROW_BLOCK < p->N ? hi * LINEAR_ROW_BLOCK : p->N;
        const char *w = p->w + (size_t)r0 * c->row_bytes;
        if (c->mmq)
            c->mmq(p->y + r0, p->N, c->xq, w, r1 - r0, c->K, c->T);
        else
            c->mm(p->y + r0, p->N, c->x, c->K, w, r1 - r0, c->K, c->T);
        if (c->bias)
            for (int t = 0; t < c->T; t++) {
                float *yr = p->y + (size_t)t * p->N;
                for (int r = r0; r < r1; r++) yr[r] += c->bias[r];
            }
    }
}

/* Block-quantized weights times many rows (prefill) as BF16 products:
 * activations packed once (rows split across threads), then weight rows split
 * in blocks of CPU_MQ_BF16_ROWS, each thread dequantizing into its own part of
 * the scratch. Returns 0 (nothing done) when the scratch cannot be had. */
typedef struct {
    const cpu_kernels *k;
    const float *x;
    float *y;
    const char *w;
    ctts_dtype wdt;
    size_t row_bytes;
    const float *bias;
    void *xp;
    uint16_t *wb;
    int N, K, T;
} mqb_ctx;

static void mqb_pack_task(void *vctx, int kp0, int kp1, int tid) {
    (void)tid;
    const mqb_ctx *c = vctx;
    c->k->mq_bf16_pack_x(c->x, c->K, c->T, c->xp, kp0, kp1);
}

static void mqb_task(void *vctx, int b0, int b1, int tid) {
    const mqb_ctx *c = vctx;
    const int r0 = b0 * CPU_MQ_BF16_ROWS;
    const int r1 = b1 * CPU_MQ_BF16_ROWS < c->N ? b1 * CPU_MQ_BF16_ROWS : c->N;
    c->k->matmul_q_bf16(c->y + r0, c->N, c->xp, c->T, c->w + (size_t)r0 * c->row_bytes, c->wdt,
                        r1 - r0, c->K, c->wb + (size_t)tid * CPU_MQ_BF16_ROWS * c->K);
    if (c->bias)
        for (int t = 0; t < c->T; t++)
            for (int r = r0; r < r1; r++) c->y[(size_t)t * c->N + r] += c->bias[r];
}

static int linear_q_bf16(cpu_impl *im, float *y, const float *x, const ctts_tensor *w,
                         const float *bias, int N, int K, int T) {
    const int n_threads = cpu_threadpool_size(im->pool);
    const size_t xp_bytes = (size_t)(K / 2) * (size_t)((T + 15) & ~15) * 4;
    const size_t wb_bytes = (size_t)CPU_MQ_BF16_ROWS * K * 2;
    int own = 0;
    char *buf = cscratch_take(im, xp_bytes + (size_t)n_threads * wb_bytes, &own);
    if (!buf) return 0;
    mqb_ctx c = {.k = &im->k, .x = x, .y = y, .w = w->data, .wdt = w->dtype,
                 .row_bytes = ctts_dtype_row_bytes(w->dtype, K), .bias = bias, .xp = buf,
                 .wb = (uint16_t *)(buf + xp_bytes), .N = N, .K = K, .T = T};
    cpu_parallel_for(im->pool, K / 2, (int)(65536 / ((T + 15) & ~15)) + 1, mqb_pack_task, &c);
    cpu_parallel_for(im->pool, (N + CPU_MQ_BF16_ROWS - 1) / CPU_MQ_BF16_ROWS, 1, mqb_task, &c);
    cscratch_give(im, buf, own);
    return 1;
}

/* Rows N and columns K of a weight (K = numel / N); 0 when unusable. */
static int linear_shape(const cpu_impl *im, const ctts_tensor *w, int *N, int *K) {
    if (w->ndim < 1 || (unsigned)w->dtype >= CTTS_DT_COUNT) return 0;
    if (!im->k.matmul[w->dtype] && !im->k.matmul_q[w->dtype]) return 0;
    const int64_t n = w->shape[0], numel = ctts_tensor_numel(w);
    if (n <= 0 || n > INT32_MAX || numel % n || numel / n > INT32_MAX) return 0;
    *N = (int)n;
    *K = (int)(numel / n);
    return !im->k.matmul_q[w->dtype] || *K % 32 == 0;
}

/* y[i] = x . w[i]^T (+ bias, single weight only) for n weights of one dtype
 * and K, each sharing the split and the quantized x. */
static void linear_parts(cpu_impl *im, int n, float *const *y, const float *x,
                         const ctts_tensor *const *w, const float *bias, int T, int K) {
    const ctts_dtype dt = w[0]->dtype;
    linear_ctx c = {.mm = im->k.matmul[dt], .mmq = im->k.matmul_q[dt], .x = x,
                    .row_bytes = ctts_dtype_row_bytes(dt, K), .bias = bias, .K = K, .T = T,
                    .n_parts = n};
    int n_blocks = 0;
    for (int i = 0; i < n; i++) {
        c.part[i] = (linear_part){.y = y[i], .w = w[i]->data, .N = (int)w[i]->shape[0],
                                  .b0 = n_blocks};
        n_blocks += (c.part[i].N + LINEAR_ROW_BLOCK - 1) / LINEAR_ROW_BLOCK;
    }
    if (!c.mmq) {
        /* At least ~64k multiply-adds per task. */
        int64_t per_block = (int64_t)LINEAR_ROW_BLOCK * K * T;
        int min_blocks = (int)(65536 / (per_block > 0 ? per_block : 1));
        cpu_parallel_for(im->pool, n_blocks, min_blocks, linear_task, &c);
        return;
    }
    /* Quantized weights: quantize rows of x to Q8_0 (once, on this thread),
     * then split weight rows across threads, a chunk of x rows at a time. */
    const size_t xq_row = (size_t)(K / 32) * 34;
    _Alignas(64) unsigned char stack_buf[QSTACK_BYTES];
    int expected = 0;
    const int own = im->qscratch && atomic_compare_exchange_strong(&im->qscratch_busy, &expected, 1);
    unsigned char *buf = own ? im->qscratch : stack_buf;
    const size_t cap = own ? QSCRATCH_BYTES : QSTACK_BYTES;
    if (xq_row > cap) { /* K beyond 30k: not a model we load */
        if (own) atomic_store(&im->qscratch_busy, 0);
        return;
    }
    const int rows_per_chunk = (int)(cap / xq_row);
    for (int t0 = 0; t0 < T; t0 += rows_per_chunk) {
        const int tc = T - t0 < rows_per_chunk ? T - t0 : rows_per_chunk;
        for (int t = 0; t < tc; t++)
            im->k.quant_row_q8_0(x + (size_t)(t0 + t) * K, buf + (size_t)t * xq_row, K);
        linear_ctx cc = c;
        cc.xq = buf;
        cc.T = tc;
        for (int i = 0; i < n; i++) cc.part[i].y = y[i] + (size_t)t0 * c.part[i].N;
        int64_t per_block = (int64_t)LINEAR_ROW_BLOCK * K * tc;
        int min_blocks = (int)(65536 / (per_block > 0 ? per_block : 1));
        cpu_parallel_for(im->pool, n_blocks, min_blocks, linear_task, &cc);
    }
    if (own) atomic_store(&im->qscratch_busy, 0);
}

static void linear_run(cpu_impl *im, int n, float *const *y, const float *x,
                       const ctts_tensor *const *w, const float *bias, int T) {
    if (T <= 0 || n <= 0) return;
    int N, K;
    if (!linear_shape(im, w[0], &N, &K)) return;
    int joint = n <= LINEAR_MAX_PARTS && !bias;
    for (int i = 1; i < n && joint; i++) {
        int Ni, Ki;
        joint = linear_shape(im, w[i], &Ni, &Ki) && Ki == K && w[i]->dtype == w[0]->dtype;
    }
    const int q_bf16 = im->k.matmul_q[w[0]->dtype] && im->k.matmul_q_bf16 && T >= MQ_BF16_MIN_T;
    if (n > 1 && (!joint || q_bf16)) { /* one at a time */
        for (int i = 0; i < n; i++) linear_run(im, 1, &y[i], x, &w[i], bias, T);
        return;
    }
    if (q_bf16 && linear_q_bf16(im, y[0], x, w[0], bias, N, K, T)) return;
    linear_parts(im, n, y, x, w, bias, T, K);
}

static void prof_linear(ctts_backend *be, double t0, int n, const ctts_tensor *const *w, int T) {
    if (t0 < 0) return;
    double flops = 0, bytes = 0;
    for (int i = 0; i < n; i++) {
        if (w[i]->ndim < 1 || w[i]->shape[0] <= 0) continue;
        const double N = (double)w[i]->shape[0], K = (double)ctts_tensor_numel(w[i]) / N;
        flops += 2.0 * N * K * T;
        bytes += (double)w[i]->nbytes + 4.0 * T * (N + K);
    }
    prof_end(be, t0, flops, bytes);
}

static void cpu_linear(ctts_backend *be, float *y, const float *x, const ctts_tensor *w,
                       const float *bias, int T) {
    const double t0 = prof_begin(be);
    linear_run(impl_of(be), 1, &y, x, &w, bias, T);
    prof_linear(be, t0, 1, &w, T);
}

static void cpu_linear_multi(ctts_backend *be, int n, float *const *y, const float *x,
                             const ctts_tensor *const *w, int T) {
    const double t0 = prof_begin(be);
    linear_run(impl_of(be), n, y, x, w, NULL, T);
    prof_linear(be, t0, n, w, T);
}

/* ---- norms ---- */

typedef struct {
    const cpu_kernels *k;
    float *y;
    const float *x, *w, *b;
    int D;
    float eps;
    int unbiased;
} norm_ctx;

static void norm_task(void *vctx, int t0, int t1, int tid) {
    (void)tid;
    const norm_ctx *c = vctx;
    for (int t = t0; t < t1; t++) {
        const size_t o = (size_t)t * c->D;
        if (c->unbiased)
            c->k->std_norm_row(c->y + o, c->x + o, c->w, c->D, c->eps);
        else
            c->k->layer_norm_row(c->y + o, c->x + o, c->w, c->b, c->D, c->eps);
    }
}

static void run_norm(ctts_backend *be, norm_ctx *c, int T) {
    if (T <= 0 || c->D <= 0) return;
    const double t0 = prof_begin(be);
    cpu_parallel_for(impl_of(be)->pool, T, ELEMWISE_MIN / c->D, norm_task, c);
    prof_end(be, t0, 0, 8.0 * T * c->D);
}

static void cpu_layer_norm(ctts_backend *be, float *y, const float *x, const float *w,
                           const float *b, int T, int D, float eps) {
    norm_ctx c = {.k = &impl_of(be)->k, .y = y, .x = x, .w = w, .b = b, .D = D, .eps = eps};
    run_norm(be, &c, T);
}

static void cpu_std_norm(ctts_backend *be, float *y, const float *x, const float *w, int T, int D,
                         float eps) {
    norm_ctx c = {.k = &impl_of(be)->k, .y = y, .x = x, .w = w, .D = D, .eps = eps,
                  .unbiased = 1};
    run_norm(be, &c, T);
}

/* ---- elementwise ---- */

typedef struct {
    const cpu_kernels *k;
    float *y;
    const float *a, *b; /* act: a = x; add: a + b */
    ctts_act kind;
} elem_ctx;

static void act_task(void *vctx, int i0, int i1, int tid) {
    (void)tid;
    const elem_ctx *c = vctx;
    c->k->act(c->y + i0, c->a + i0, i1 - i0, (int)c->kind);
}

static void add_task(void *vctx, int i0, int i1, int tid) {
    (void)tid;
    const elem_ctx *c = vctx;
    for (int i = i0; i < i1; i++) c->y[i] = c->a[i] + c->b[i];
}

/* Elementwise ranges are indexed in chunks so sizes beyond INT_MAX work. */
#define ELEM_CHUNK 4096

typedef struct {
    elem_ctx e;
    size_t n;
    cpu_task_fn fn;
} chunk_ctx;

static void chunk_task(void *vctx, int c0, int c1, int tid) {
    const chunk_ctx *c = vctx;
    size_t i0 = (size_t)c0 * ELEM_CHUNK, i1 = (size_t)c1 * ELEM_CHUNK;
    if (i1 > c->n) i1 = c->n;
    /* Offset pointers so the inner fn sees int indices. */
    elem_ctx e = c->e;
    e.y += i0;
    e.a += i0;
    if (e.b) e.b += i0;
    c->fn(&e, 0, (int)(i1 - i0), tid);
}

static void run_elem(ctts_backend *be, elem_ctx e, size_t n, cpu_task_fn fn) {
    if (!n) return;
    chunk_ctx c = {.e = e, .n = n, .fn = fn};
    const size_t n_chunks = (n + ELEM_CHUNK - 1) / ELEM_CHUNK;
    if (n_chunks > INT32_MAX) return;
    cpu_parallel_for(impl_of(be)->pool, (int)n_chunks, ELEMWISE_MIN / ELEM_CHUNK, chunk_task, &c);
}

static void cpu_act(ctts_backend *be, float *y, const float *x, size_t n, ctts_act kind) {
    const double t0 = prof_begin(be);
    run_elem(be, (elem_ctx){.k = &impl_of(be)->k, .y = y, .a = x, .kind = kind}, n, act_task);
    prof_end(be, t0, 0, 8.0 * n);
}

static void cpu_add(ctts_backend *be, float *y, const float *a, const float *b, size_t n) {
    run_elem(be, (elem_ctx){.y = y, .a = a, .b = b}, n, add_task);
}

typedef struct {
    float *y;
    const float *h, *s, *shift, *scale;
    int D;
} rows_ctx;

static void add_scaled_task(void *vctx, int t0, int t1, int tid) {
    (void)tid;
    const rows_ctx *c = vctx;
    for (int t = t0; t < t1; t++) {
        float *y = c->y + (size_t)t * c->D;
        const float *h = c->h + (size_t)t * c->D;
        if (c->s)
            for (int d = 0; d < c->D; d++) y[d] += c->s[d] * h[d];
        else
            for (int d = 0; d < c->D; d++) y[d] += h[d];
    }
}

static void modulate_task(void *vctx, int t0, int t1, int tid) {
    (void)tid;
    const rows_ctx *c = vctx;
    for (int t = t0; t < t1; t++) {
        float *y = c->y + (size_t)t * c->D;
        for (int d = 0; d < c->D; d++) y[d] = y[d] * (1.0f + c->scale[d]) + c->shift[d];
    }
}

static void cpu_add_scaled_rows(ctts_backend *be, float *y, const float *h, const float *s, int T,
                                int D) {
    if (T <= 0 || D <= 0) return;
    rows_ctx c = {.y = y, .h = h, .s = s, .D = D};
    cpu_parallel_for(impl_of(be)->pool, T, ELEMWISE_MIN / D, add_scaled_task, &c);
}

static void cpu_modulate(ctts_backend *be, float *y, const float *shift, const float *scale,
                         int T, int D) {
    if (T <= 0 || D <= 0) return;
    rows_ctx c = {.y = y, .shift = shift, .scale = scale, .D = D};
    cpu_parallel_for(impl_of(be)->pool, T, ELEMWISE_MIN / D, modulate_task, &c);
}

/* ---- rope ---- */

static void cpu_rope(ctts_backend *be, float *x, int T, int H, int Dh, int row_stride, int pos0,
                     float max_period) {
    (void)be;
    if (T <= 0 || H <= 0 || Dh < 2) return;
    const float log_period = logf(max_period);
    for (int i = 0; i < Dh / 2; i++) {
        /* Same float32 expression as the reference: exp(-ln(P) * 2i / Dh). */
        const float freq = expf(-log_period * (float)(2 * i) / (float)Dh);
        for (int t = 0; t < T; t++) {
            const float ang = (float)(pos0 + t) * freq;
            const float cs = cosf(ang), sn = sinf(ang);
            float *row = x + (size_t)t * row_stride;
            for (int h = 0; h < H; h++) {
                float *p = row + (size_t)h * Dh + 2 * i;
                const float re = p[0], im = p[1];
                p[0] = re * cs - im * sn;
                p[1] = re * sn + im * cs;
            }
        }
    }
}

/* ---- attention ---- */

/* Keys scored per block of the online softmax (on the stack). */
#define ATT_KEY_BLOCK 64
/* Largest head of an F16 cache (the fallback converts one row on the stack). */
#define ATT_F16_MAX_DH 512

typedef struct {
    const cpu_kernels *k;
    float *out;
    const float *q;
    const void *kk, *v; /* float rows, or F16 when f16 is set */
    int f16;
    size_t ld, head_stride; /* elements from one key row / KV head to the next */
    int q_stride, T, n_kv, q_pos0, H, rep, Dh, window;
    float scale;
} att_ctx;

/* Row j of keys or values from base as floats (F16 rows converted into tmp). */
static const float *att_row(const att_ctx *c, const void *base, int j, float *tmp) {
    if (!c->f16) return (const float *)base + (size_t)j * c->ld;
    c->k->f16_to_f32(tmp, (const uint16_t *)base + (size_t)j * c->ld, c->Dh);
    return tmp;
}

/* Head h of query t over keys [j_lo, j_lo + n) of its KV head (rows kr, vr):
 * online softmax block by block with a running max and denominator. */
static void att_head(const att_ctx *c, float *o, const float *q, const void *kr, const void *vr,
                     int n) {
    const cpu_kernels *k = c->k;
    const int Dh = c->Dh;
    memset(o, 0, (size_t)Dh * sizeof *o);
    if (n <= 0) return; /* no visible key: zeros */
    float s[ATT_KEY_BLOCK], tmp[ATT_F16_MAX_DH];
    float m = -INFINITY, l = 0.0f;
    for (int j0 = 0; j0 < n; j0 += ATT_KEY_BLOCK) {
        const int nb = n - j0 < ATT_KEY_BLOCK ? n - j0 : ATT_KEY_BLOCK;
        float bmax = -INFINITY;
        for (int j = 0; j < nb; j++) {
            s[j] = k->dot(q, att_row(c, kr, j0 + j, tmp), Dh) * c->scale;
            if (s[j] > bmax) bmax = s[j];
        }
        if (bmax > m) {
            const float f = expf(m - bmax); /* 0 on the first block */
            k->scale(o, f, Dh);
            l *= f;
            m = bmax;
        }
        for (int j = 0; j < nb; j++) {
            const float p = expf(s[j] - m);
            l += p;
            k->axpy(o, p, att_row(c, vr, j0 + j, tmp), Dh);
        }
    }
    k->scale(o, 1.0f / l, Dh);
}

/* One (query t, KV head g) item: the rep query heads of g together (the
 * attend kernels load each key once for all of them). */
static void att_item(const att_ctx *c, int t, int g) {
    const int Dh = c->Dh, qp = c->q_pos0 + t, h0 = g * c->rep;
    const int j_hi = qp < c->n_kv - 1 ? qp : c->n_kv - 1;
    int j_lo = c->window > 0 ? qp - c->window + 1 : 0;
    if (j_lo < 0) j_lo = 0;
    const int n = j_hi - j_lo + 1;
    const size_t off = (size_t)j_lo * c->ld + (size_t)g * c->head_stride;
    const float *q = c->q + (size_t)t * c->q_stride + (size_t)h0 * Dh;
    float *o = c->out + ((size_t)t * c->H + h0) * Dh;
    const void *kr, *vr;
    if (c->f16) {
        kr = (const uint16_t *)c->kk + off, vr = (const uint16_t *)c->v + off;
        if (n > 0 && c->k->attend_f16 &&
            c->k->attend_f16(o, q, c->rep, kr, vr, c->ld, n, Dh, c->scale))
            return;
    } else {
        kr = (const float *)c->kk + off, vr = (const float *)c->v + off;
        if (n > 0 && c->k->attend && c->k->attend(o, q, c->rep, kr, vr, c->ld, n, Dh, c->scale))
            return;
    }
    for (int i = 0; i < c->rep; i++)
        att_head(c, o + (size_t)i * Dh, q + (size_t)i * Dh, kr, vr, n);
}

static void att_task(void *vctx, int i0, int i1, int tid) {
    (void)tid;
    const att_ctx *c = vctx;
    const int G = c->H / c->rep;
    for (int i = i0; i < i1; i++) att_item(c, i / G, i % G);
}

/* c: kk, v, f16, ld, head_stride set; the rest from the arguments. */
static void attention_run(ctts_backend *be, att_ctx c, float *out, const float *q, int q_stride,
                          int T, int n_kv, int q_pos0, int H, int H_kv, int Dh, int window) {
    cpu_impl *im = impl_of(be);
    if (T <= 0 || H <= 0 || H_kv <= 0 || H % H_kv || Dh <= 0 || n_kv < 0) return;
    const double t0 = prof_begin(be);
    c.k = &im->k, c.out = out, c.q = q, c.q_stride = q_stride, c.T = T, c.n_kv = n_kv;
    c.q_pos0 = q_pos0, c.H = H, c.rep = H / H_kv, c.Dh = Dh, c.window = window;
    c.scale = 1.0f / sqrtf((float)Dh);
    const int64_t per_item = (int64_t)(n_kv > 0 ? n_kv : 1) * Dh * 2 * c.rep;
    cpu_parallel_for(im->pool, T * H_kv, (int)(32768 / per_item), att_task, &c);
    const double hd = (double)H * Dh, esize = c.f16 ? 2.0 : 4.0;
    prof_end(be, t0, 4.0 * T * n_kv * hd,
             esize * 2.0 * n_kv * H_kv * Dh + 4.0 * 2.0 * T * hd);
}

static void cpu_attention(ctts_backend *be, float *out, const float *q, int q_stride,
                          const float *k, const float *v, int kv_stride, int T, int n_kv,
                          int q_pos0, int H, int Dh, int window) {
    const att_ctx c = {.kk = k, .v = v, .ld = (size_t)kv_stride, .head_stride = (size_t)Dh};
    attention_run(be, c, out, q, q_stride, T, n_kv, q_pos0, H, H, Dh, window);
}

/* ---- convolutions ---- */

typedef struct {
    cpu_conv_args a;
    void (*fn)(const cpu_conv_args *a, int co0, int co1);
    int bf16_products; /* the weight tensor's flag (BF16 weights only) */
    int chunk;         /* output channels per task unit inside a group (packed weights) */
} conv_ctx;

/* First output channel of task unit u (units of c->chunk channels, a group's
 * last one possibly shorter). */
static int conv_unit_start(const conv_ctx *c, int u) {
    const int cout_g = c->a.cout / c->a.groups;
    const int per_group = (cout_g + c->chunk - 1) / c->chunk;
    const int g = u / per_group, i = u % per_group;
    return g * cout_g + i * c->chunk;
}

static void conv_task(void *vctx, int u0, int u1, int tid) {
    (void)tid;
    const conv_ctx *c = vctx;
    if (c->chunk <= 1) {
        c->fn(&c->a, u0, u1);
        return;
    }
    const int cout_g = c->a.cout / c->a.groups;
    const int per_group = (cout_g + c->chunk - 1) / c->chunk;
    const int last = conv_unit_start(c, u1 - 1) + c->chunk;
    const int group_end = ((u1 - 1) / per_group + 1) * cout_g;
    c->fn(&c->a, conv_unit_start(c, u0), last < group_end ? last : group_end);
}

static int conv_dtype_ok(ctts_dtype dt) {
    return dt == CTTS_DT_F32 || dt == CTTS_DT_BF16 || dt == CTTS_DT_F16;
}

typedef struct {
    const cpu_kernels *k;
    const cpu_conv_args *a;
    int transposed;
    void *buf;
    size_t row_len; /* floats per row of x (rounding) */
} conv_prep_ctx;

static void bf16_pack_task(void *vctx, int r0, int r1, int tid) {
    (void)tid;
    const conv_prep_ctx *c = vctx;
    c->k->conv_bf16_pack(c->a, c->transposed, c->buf, r0, r1);
}

static void bf16_round_task(void *vctx, int r0, int r1, int tid) {
    (void)tid;
    const conv_prep_ctx *c = vctx;
    const size_t i0 = (size_t)r0 * c->row_len, i1 = (size_t)r1 * c->row_len;
    float *restrict y = c->buf;
    const float *restrict x = c->a->x;
    for (size_t i = i0; i < i1; i++) y[i] = cpu_round_bf16(x[i]);
}

/* BF16 weights flagged bf16_products (backend.h: BF16 products, F32 sums): packs x for the
 * AVX512_BF16 kernels, or rounds x into a float copy for the float kernels.
 * Sets c->fn / c->a and returns the scratch to give back (NULL: none taken;
 * out of memory leaves x unrounded). */
static void *conv_bf16_prepare(cpu_impl *im, conv_ctx *c, int transposed, int *own) {
    cpu_conv_args *a = &c->a;
    const cpu_kernels *k = &im->k;
    size_t row_bytes = 0;
    const int rows = k->conv_bf16_rows ? k->conv_bf16_rows(a, transposed, &row_bytes) : 0;
    conv_prep_ctx p = {.k = k, .a = a, .transposed = transposed};
    if (rows > 0) {
        p.buf = cscratch_take(im, (size_t)rows * row_bytes, own);
        if (p.buf) {
            cpu_parallel_for(im->pool, rows, (int)(65536 / row_bytes), bf16_pack_task, &p);
            a->xp = p.buf;
            c->fn = transposed ? k->conv_transpose1d_bf16 : k->conv1d_bf16;
            return p.buf;
        }
    }
    p.buf = cscratch_take(im, (size_t)a->cin * a->tin * sizeof(float), own);
    if (!p.buf) return NULL;
    p.row_len = (size_t)a->tin;
    cpu_parallel_for(im->pool, a->cin, (int)(16384 / a->tin), bf16_round_task, &p);
    a->x = p.buf;
    return p.buf;
}

static void run_conv(ctts_backend *be, conv_ctx *c, int transposed) {
    cpu_impl *im = impl_of(be);
    const cpu_conv_args *a = &c->a;
    const double t0 = prof_begin(be);
    int own = 0;
    void *scratch = a->wdt == CTTS_DT_BF16 && c->bf16_products
                        ? conv_bf16_prepare(im, c, transposed, &own)
                        : NULL;
    if (a->w_packed && c->fn != im->k.conv_transpose1d_bf16) {
        /* only that kernel reads packed weights (no scratch for x: out of memory) */
        for (int i = 0; i < a->cout; i++)
            for (int t = 0; t < a->tout; t++) a->y[(size_t)i * a->tout + t] = NAN;
        if (scratch) cscratch_give(im, scratch, own);
        return;
    }
    /* Multiply-adds per output channel. */
    int64_t macs = transposed ? (int64_t)a->tin * (a->cin / a->groups) * a->k
                              : (int64_t)a->tout * (a->cin / a->groups) * a->k;
    if (macs < 1) macs = 1;
    if (a->w_packed) {
        c->chunk = ct_bf16_chunk(a->k);
        const int cout_g = a->cout / a->groups;
        const int units = a->groups * ((cout_g + c->chunk - 1) / c->chunk);
        cpu_parallel_for(im->pool, units, (int)(32768 / (macs * c->chunk)), conv_task, c);
    } else {
        cpu_parallel_for(im->pool, a->cout, (int)(32768 / macs), conv_task, c);
    }
    if (scratch) cscratch_give(im, scratch, own);
    const double wbytes = (double)a->cout * (a->cin / a->groups) * a->k *
                          (a->wdt == CTTS_DT_F32 ? 4 : 2);
    prof_end(be, t0, 2.0 * (double)macs * a->cout,
             wbytes + 4.0 * ((double)a->cin * a->tin + (double)a->cout * a->tout));
}

static void cpu_conv1d(ctts_backend *be, float *y, const float *x, const ctts_tensor *w,
                       const float *bias, int Tin, int stride, int dilation, int groups) {
    if (w->ndim != 3 || !conv_dtype_ok(w->dtype) || groups <= 0 || stride <= 0 || dilation <= 0)
        return;
    const int64_t cout = w->shape[0], cin_g = w->shape[1], K = w->shape[2];
    if (cout <= 0 || cin_g <= 0 || K <= 0 || cout % groups || cout > INT32_MAX ||
        cin_g * groups > INT32_MAX || K > INT32_MAX)
        return;
    const int64_t span = (K - 1) * dilation + 1;
    if (Tin < span) return;
    conv_ctx c = {.a = {.y = y, .x = x, .w = w->data, .wdt = w->dtype, .bias = bias,
                        .cin = (int)(cin_g * groups), .cout = (int)cout, .tin = Tin,
                        .tout = (int)((Tin - span) / stride + 1), .k = (int)K, .stride = stride,
                        .dilation = dilation, .groups = groups},
                  .fn = impl_of(be)->k.conv1d,
                  .bf16_products = w->bf16_products};
    run_conv(be, &c, 0);
}

static void cpu_conv_transpose1d(ctts_backend *be, float *y, const float *x, const ctts_tensor *w,
                                 const float *bias, int Tin, int stride, int groups) {
    if (w->ndim != 3 || !conv_dtype_ok(w->dtype) || groups <= 0 || stride <= 0 || Tin <= 0)
        return;
    const int64_t cin = w->shape[0], cout_g = w->shape[1], K = w->shape[2];
    if (cin <= 0 || cout_g <= 0 || K <= 0 || cin % groups || cin > INT32_MAX ||
        cout_g * groups > INT32_MAX)
        return;
    const int64_t tout = (int64_t)(Tin - 1) * stride + K;
    if (tout > INT32_MAX) return;
    conv_ctx c = {.a = {.y = y, .x = x, .w = w->data, .wdt = w->dtype, .bias = bias,
                        .cin = (int)cin, .cout = (int)(cout_g * groups), .tin = Tin,
                        .tout = (int)tout, .k = (int)K, .stride = stride, .dilation = 1,
                        .groups = groups, .w_packed = w->packed},
                  .fn = impl_of(be)->k.conv_transpose1d,
                  .bf16_products = w->bf16_products};
    run_conv(be, &c, 1);
}

static ctts_tensor *cpu_pack_conv_transpose(ctts_backend *be, const ctts_tensor *w, int groups) {
    const cpu_kernels *k = &impl_of(be)->k;
    if (!w || w->ndim != 3 || w->dtype != CTTS_DT_BF16 || !w->bf16_products || w->packed ||
        !k->ct_bf16_packed_bytes || !k->conv_bf16_rows || groups <= 0 || w->shape[0] % groups ||
        w->shape[0] > INT32_MAX || w->shape[1] > INT32_MAX || w->shape[2] > INT32_MAX)
        return NULL;
    const int cin_g = (int)(w->shape[0] / groups), cout_g = (int)w->shape[1], K = (int)w->shape[2];
    /* Only shapes the BF16 kernel takes (conv_bf16_rows), or the float
     * fallback would have to read the packed layout. */
    const cpu_conv_args probe = {.cin = cin_g * groups, .cout = cout_g * groups, .tin = 1,
                                 .tout = K, .k = K, .stride = 1, .dilation = 1, .groups = groups};
    size_t row_bytes;
    const size_t n = k->ct_bf16_packed_bytes(cin_g, cout_g, K, groups);
    if (!n || k->conv_bf16_rows(&probe, 1, &row_bytes) <= 0) return NULL;
    ctts_tensor *t = malloc(sizeof *t);
    void *data = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!t || !data) {
        free(t);
        free(data);
        return NULL;
    }
    k->ct_bf16_pack_w(w->data, cin_g, cout_g, K, groups, data);
    *t = *w;
    t->data = data;
    t->nbytes = n;
    t->packed = 1;
    return t;
}

static void cpu_free_packed(ctts_backend *be, ctts_tensor *t) {
    (void)be;
    if (!t) return;
    free(t->data);
    free(t);
}

/* ---- transpose ---- */

typedef struct {
    float *y;
    const float *x;
    int R, C;
} transpose_ctx;

/* Output rows [c0, c1) of y[C, R]; tiles of 32 keep both sides in cache. */
static void transpose_task(void *vctx, int c0, int c1, int tid) {
    (void)tid;
    const transpose_ctx *t = vctx;
    for (int cb = c0; cb < c1; cb += 32) {
        const int ce = cb + 32 < c1 ? cb + 32 : c1;
        for (int rb = 0; rb < t->R; rb += 32) {
            const int re = rb + 32 < t->R ? rb + 32 : t->R;
            for (int c = cb; c < ce; c++)
                for (int r = rb; r < re; r++)
                    t->y[(size_t)c * t->R + r] = t->x[(size_t)r * t->C + c];
        }
    }
}

static void cpu_transpose(ctts_backend *be, float *y, const float *x, int R, int C) {
    if (R <= 0 || C <= 0) return;
    transpose_ctx t = {.y = y, .x = x, .R = R, .C = C};
    cpu_parallel_for(impl_of(be)->pool, C, ELEMWISE_MIN / R, transpose_task, &t);
}

/* ---- Qwen3 decoder ops: rms_norm, rope_half, attention_gqa, mul, get_rows ---- */

typedef struct {
    const cpu_kernels *k;
    float *y;
    const float *x, *w;
    int D;
    float eps;
} rms_ctx;

/* sum(x^2) through the dot kernel, then y = x * r * w (r = 1/sqrt(mean + eps)),
 * multiplied in that order like the float32 reference. In place is fine: the
 * row is fully read before it is written. */
static void rms_task(void *vctx, int t0, int t1, int tid) {
    (void)tid;
    const rms_ctx *c = vctx;
    for (int t = t0; t < t1; t++) {
        const float *x = c->x + (size_t)t * c->D;
        float *y = c->y + (size_t)t * c->D;
        const float ss = c->k->dot(x, x, c->D);
        const float r = 1.0f / sqrtf(ss / (float)c->D + c->eps);
        if (c->w)
            for (int d = 0; d < c->D; d++) y[d] = x[d] * r * c->w[d];
        else
            for (int d = 0; d < c->D; d++) y[d] = x[d] * r;
    }
}

static void cpu_rms_norm(ctts_backend *be, float *y, const float *x, const float *w, int T, int D,
                         float eps) {
    if (T <= 0 || D <= 0) return;
    rms_ctx c = {.k = &impl_of(be)->k, .y = y, .x = x, .w = w, .D = D, .eps = eps};
    cpu_parallel_for(impl_of(be)->pool, T, ELEMWISE_MIN / D, rms_task, &c);
}

static void cpu_rope_half(ctts_backend *be, float *x, int T, int H, int Dh, int row_stride,
                          int pos0, float theta) {
    (void)be;
    if (T <= 0 || H <= 0 || Dh < 2 || Dh % 2) return;
    const int half = Dh / 2;
    for (int i = 0; i < half; i++) {
        /* The float32 expression of HF's default RoPE: 1 / theta^(2i / Dh). */
        const float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)Dh);
        for (int t = 0; t < T; t++) {
            const float ang = (float)(pos0 + t) * inv_freq;
            const float cs = cosf(ang), sn = sinf(ang);
            float *row = x + (size_t)t * row_stride;
            for (int h = 0; h < H; h++) {
                float *p = row + (size_t)h * Dh;
                const float a = p[i], b = p[i + half];
                p[i] = a * cs - b * sn;
                p[i + half] = b * cs + a * sn;
            }
        }
    }
}

static void cpu_attention_gqa(ctts_backend *be, float *out, const float *q, int q_stride,
                              const float *k, const float *v, int kv_stride, int T, int n_kv,
                              int q_pos0, int H, int H_kv, int Dh, int window) {
    const att_ctx c = {.kk = k, .v = v, .ld = (size_t)kv_stride, .head_stride = (size_t)Dh};
    attention_run(be, c, out, q, q_stride, T, n_kv, q_pos0, H, H_kv, Dh, window);
}

static void cpu_kv_store_f16(ctts_backend *be, void *kc, void *vc, const float *k, const float *v,
                             int ld, int T, int row0, int H_kv, int Dh, int capacity) {
    const cpu_kernels *kn = &impl_of(be)->k;
    if (T <= 0 || H_kv <= 0 || Dh <= 0 || row0 < 0 || T > capacity - row0) return;
    for (int g = 0; g < H_kv; g++)
        for (int t = 0; t < T; t++) {
            const size_t dst = ((size_t)g * (size_t)capacity + (size_t)(row0 + t)) * (size_t)Dh;
            const size_t src = (size_t)t * (size_t)ld + (size_t)g * (size_t)Dh;
            kn->f32_to_f16((uint16_t *)kc + dst, k + src, Dh);
            kn->f32_to_f16((uint16_t *)vc + dst, v + src, Dh);
        }
}

static void cpu_attention_gqa_f16(ctts_backend *be, float *out, const float *q, int q_stride,
                                  const void *kc, const void *vc, int capacity, int T, int n_kv,
                                  int q_pos0, int H, int H_kv, int Dh, int window) {
    if (Dh > ATT_F16_MAX_DH || n_kv > capacity) return;
    const att_ctx c = {.kk = kc, .v = vc, .f16 = 1, .ld = (size_t)Dh,
                       .head_stride = (size_t)capacity * (size_t)Dh};
    attention_run(be, c, out, q, q_stride, T, n_kv, q_pos0, H, H_kv, Dh, window);
}

static void mul_task(void *vctx, int i0, int i1, int tid) {
    (void)tid;
    const elem_ctx *c = vctx;
    for (int i = i0; i < i1; i++) c->y[i] = c->a[i] * c->b[i];
}

static void cpu_mul(ctts_backend *be, float *y, const float *a, const float *b, size_t n) {
    run_elem(be, (elem_ctx){.y = y, .a = a, .b = b}, n, mul_task);
}

static void cpu_copy_floats(ctts_backend *be, float *y, const float *x, size_t n) {
    cpu_copy(be, y, x, n * sizeof *y);
}

/* One row of D elements of dtype dt to float (ggml block layouts for Q8_0 /
 * Q4_0: f16 scale, then 32 int8 / 16 bytes of nibbles, low nibbles first). */
static void row_to_f32(float *y, const void *src, ctts_dtype dt, int64_t D) {
    const unsigned char *p = src;
    switch (dt) {
    case CTTS_DT_F32: memcpy(y, src, (size_t)D * sizeof *y); break;
    case CTTS_DT_BF16:
        for (int64_t i = 0; i < D; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            y[i] = ctts_bf16_to_f32(h);
        }
        break;
    case CTTS_DT_F16:
        for (int64_t i = 0; i < D; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            y[i] = ctts_f16_to_f32(h);
        }
        break;
    case CTTS_DT_Q8_0:
        for (int64_t b = 0; b < D / 32; b++, p += 34) {
            uint16_t h;
            memcpy(&h, p, 2);
            const float d = ctts_f16_to_f32(h);
            for (int j = 0; j < 32; j++) y[b * 32 + j] = d * (float)(int8_t)p[2 + j];
        }
        break;
    case CTTS_DT_Q4_0:
        for (int64_t b = 0; b < D / 32; b++, p += 18) {
            uint16_t h;
            memcpy(&h, p, 2);
            const float d = ctts_f16_to_f32(h);
            for (int j = 0; j < 16; j++) {
                y[b * 32 + j] = d * (float)((p[2 + j] & 0x0F) - 8);
                y[b * 32 + j + 16] = d * (float)((p[2 + j] >> 4) - 8);
            }
        }
        break;
    default: memset(y, 0, (size_t)D * sizeof *y); break;
    }
}

static void cpu_get_rows(ctts_backend *be, float *y, const ctts_tensor *w, const int32_t *ids,
                         int n) {
    (void)be;
    if (n <= 0 || w->ndim != 2 || w->shape[0] <= 0 || w->shape[1] <= 0) return;
    const int64_t rows = w->shape[0], D = w->shape[1];
    const size_t rb = ctts_dtype_row_bytes(w->dtype, D);
    const int blocks = ctts_dtype_size(w->dtype) == 0;
    if (rb == 0 || (blocks && D % 32) || (w->dtype != CTTS_DT_F32 && w->dtype != CTTS_DT_BF16 &&
                                          w->dtype != CTTS_DT_F16 && !blocks))
        return;
    for (int i = 0; i < n; i++) {
        float *yr = y + (size_t)i * (size_t)D;
        if (ids[i] < 0 || ids[i] >= rows)
            memset(yr, 0, (size_t)D * sizeof *yr);
        else
            row_to_f32(yr, (const char *)w->data + (size_t)ids[i] * rb, w->dtype, D);
    }
}

/* ---- Qwen3-TTS codec ops: snake ---- */

typedef struct {
    float *y;
    const float *x, *a, *b;
    int T;
    void (*row)(float *y, const float *x, int n, float a, float b); /* cpu_kernels.snake_row */
} snake_ctx;

/* Channels [c0, c1): sin(a x)^2 as a product (torch.pow(s, 2) is s * s). */
static void snake_task(void *vctx, int c0, int c1, int tid) {
    (void)tid;
    const snake_ctx *c = vctx;
    for (int ch = c0; ch < c1; ch++)
        c->row(c->y + (size_t)ch * c->T, c->x + (size_t)ch * c->T, c->T, c->a[ch], c->b[ch]);
}

static void cpu_snake(ctts_backend *be, float *y, const float *x, const float *a, const float *b,
                      int C, int T) {
    if (C <= 0 || T <= 0) return;
    snake_ctx c = {.y = y, .x = x, .a = a, .b = b, .T = T, .row = impl_of(be)->k.snake_row};
    cpu_parallel_for(impl_of(be)->pool, C, 4096 / T, snake_task, &c);
}

/* ---- Qwen3-TTS speaker encoder ops: unary, softmax_rows, scale_rows, row_moments ---- */

typedef struct {
    float *y, *y2;
    const float *x, *s;
    int C;
    float eps;
} rowop_ctx;

static void unary_task(void *vctx, int i0, int i1, int tid) {
    (void)tid;
    const elem_ctx *c = vctx;
    float *y = c->y;
    const float *x = c->a;
    switch ((ctts_unary)c->kind) {
    case CTTS_UNARY_RELU:
        for (int i = i0; i < i1; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case CTTS_UNARY_TANH:
        for (int i = i0; i < i1; i++) y[i] = tanhf(x[i]);
        break;
    case CTTS_UNARY_SIGMOID:
        for (int i = i0; i < i1; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    }
}

static void cpu_unary(ctts_backend *be, float *y, const float *x, size_t n, ctts_unary kind) {
    if ((unsigned)kind > CTTS_UNARY_SIGMOID) return;
    run_elem(be, (elem_ctx){.y = y, .a = x, .kind = (ctts_act)kind}, n, unary_task);
}

static void softmax_task(void *vctx, int r0, int r1, int tid) {
    (void)tid;
    const rowop_ctx *c = vctx;
    for (int r = r0; r < r1; r++) {
        const float *x = c->x + (size_t)r * c->C;
        float *y = c->y + (size_t)r * c->C;
        float m = -INFINITY, sum = 0.0f;
        for (int i = 0; i < c->C; i++) m = x[i] > m ? x[i] : m;
        for (int i = 0; i < c->C; i++) {
            y[i] = expf(x[i] - m);
            sum += y[i];
        }
        for (int i = 0; i < c->C; i++) y[i] /= sum;
    }
}

static void cpu_softmax_rows(ctts_backend *be, float *y, const float *x, int R, int C) {
    if (R <= 0 || C <= 0) return;
    rowop_ctx c = {.y = y, .x = x, .C = C};
    cpu_parallel_for(impl_of(be)->pool, R, ELEMWISE_MIN / C, softmax_task, &c);
}

static void scale_rows_task(void *vctx, int r0, int r1, int tid) {
    (void)tid;
    const rowop_ctx *c = vctx;
    for (int r = r0; r < r1; r++) {
        const float g = c->s[r];
        const float *x = c->x + (size_t)r * c->C;
        float *y = c->y + (size_t)r * c->C;
        for (int i = 0; i < c->C; i++) y[i] = x[i] * g;
    }
}

static void cpu_scale_rows(ctts_backend *be, float *y, const float *x, const float *s, int R,
                           int C) {
    if (R <= 0 || C <= 0) return;
    rowop_ctx c = {.y = y, .x = x, .s = s, .C = C};
    cpu_parallel_for(impl_of(be)->pool, R, ELEMWISE_MIN / C, scale_rows_task, &c);
}

/* Rows [r0, r1): mean into y, std into y2 (when set); weights s, or the plain mean. */
static void moments_task(void *vctx, int r0, int r1, int tid) {
    (void)tid;
    const rowop_ctx *c = vctx;
    for (int r = r0; r < r1; r++) {
        const float *x = c->x + (size_t)r * c->C;
        const float *w = c->s ? c->s + (size_t)r * c->C : NULL;
        float m = 0.0f;
        if (w)
            for (int i = 0; i < c->C; i++) m += w[i] * x[i];
        else {
            for (int i = 0; i < c->C; i++) m += x[i];
            m /= (float)c->C;
        }
        c->y[r] = m;
        if (!c->y2) continue;
        float v = 0.0f;
        if (w)
            for (int i = 0; i < c->C; i++) v += w[i] * ((x[i] - m) * (x[i] - m));
        else {
            for (int i = 0; i < c->C; i++) v += (x[i] - m) * (x[i] - m);
            v /= (float)c->C;
        }
        c->y2[r] = sqrtf(v > c->eps ? v : c->eps);
    }
}

static void cpu_row_moments(ctts_backend *be, float *mean, float *std, const float *x,
                            const float *w, int R, int C, float eps) {
    if (R <= 0 || C <= 0) return;
    rowop_ctx c = {.y = mean, .y2 = std, .x = x, .s = w, .C = C, .eps = eps};
    cpu_parallel_for(impl_of(be)->pool, R, ELEMWISE_MIN / C, moments_task, &c);
}

/* ---- lifetime ---- */

static void cpu_side_run(ctts_backend *be, void (*fn)(void *), void *ctx) {
    cpu_threadpool_side_run(impl_of(be)->pool, fn, ctx);
}

static void cpu_side_wait(ctts_backend *be) { cpu_threadpool_side_wait(impl_of(be)->pool); }

static void cpu_destroy(ctts_backend *be) {
    if (!be) return;
    cpu_impl *im = impl_of(be);
    if (im) {
        cpu_threadpool_free(im->pool);
        free(im->qscratch);
        free(im->cscratch);
    }
    free(im);
    free(be);
}

ctts_backend *ctts_backend_cpu_new(int n_threads, int isa) {
    ctts_backend *be = calloc(1, sizeof *be);
    cpu_impl *im = calloc(1, sizeof *im);
    if (!be || !im) {
        free(be);
        free(im);
        return NULL;
    }
    cpu_kernels_init(&im->k, (ctts_cpu_isa)isa);
    im->pool = cpu_threadpool_new(n_threads);
    im->qscratch = aligned_alloc(64, QSCRATCH_BYTES);
    if (!im->pool || !im->qscratch) {
        cpu_threadpool_free(im->pool);
        free(im->qscratch);
        free(im);
        free(be);
        return NULL;
    }
    *be = (ctts_backend){
        .name = "cpu",
        .impl = im,
        .alloc = cpu_alloc,
        .free_buf = cpu_free_buf,
        .upload = cpu_copy,
        .download = cpu_copy,
        .sync = cpu_sync,
        .supports_dtype = cpu_supports_dtype,
        .linear = cpu_linear,
        .linear_multi = cpu_linear_multi,
        .pack_conv_transpose = cpu_pack_conv_transpose,
        .free_packed = cpu_free_packed,
        .layer_norm = cpu_layer_norm,
        .std_norm = cpu_std_norm,
        .act = cpu_act,
        .add = cpu_add,
        .add_scaled_rows = cpu_add_scaled_rows,
        .modulate = cpu_modulate,
        .rope = cpu_rope,
        .attention = cpu_attention,
        .conv1d = cpu_conv1d,
        .conv_transpose1d = cpu_conv_transpose1d,
        .transpose = cpu_transpose,
        .destroy = cpu_destroy,
        .side_run = cpu_side_run,
        .side_wait = cpu_side_wait,
        .profile_stage = cpu_profile_stage,
        .profile = cpu_profile,
        .rms_norm = cpu_rms_norm,
        .rope_half = cpu_rope_half,
        .attention_gqa = cpu_attention_gqa,
        .kv_store_f16 = cpu_kv_store_f16,
        .attention_gqa_f16 = cpu_attention_gqa_f16,
        .mul = cpu_mul,
        .copy = cpu_copy_floats,
        .get_rows = cpu_get_rows,
        .snake = cpu_snake,
        .unary = cpu_unary,
        .softmax_rows = cpu_softmax_rows,
        .scale_rows = cpu_scale_rows,
        .row_moments = cpu_row_moments,
    };
    return be;
}
