/*
 * BF16-weight convolutions flagged bf16_products ("BF16 products, F32
 * accumulation", backend.h) on every CPU tier the host runs, against a double-precision reference of
 * exactly those semantics: x rounded to BF16 (nearest even), products of the
 * BF16 values, summed exactly. Bound: |y - ref| <= 1e-5 * (|bias| + sum of
 * |products|) + 1e-6 (float sums in any order; reductions up to 12k terms).
 *
 * Shapes: cin 1, 3, 31, 96, 768; cout 1, 17, 96; k 1, 3, 7, 16; stride 1..8;
 * dilation 1, 3, 9; groups 1 and depthwise; T 1, 5, 16, 33, 200 (T = output
 * length of conv1d, input length of conv_transpose1d), combined so that each
 * value meets the others, large products capped in T. Each tier runs with 1
 * and 2 threads (outputs bit-identical). Also: the scalar tier equals the
 * reference kernel on pre-rounded x bit for bit; F32 weights give exactly
 * what the tier's float kernel gives (the path before BF16 packing), and so
 * do BF16 weights without the flag (x not rounded); the
 * AVX-512 float kernels on rounded x (the fallback of hosts without
 * AVX512_BF16) meet the same bound; two threads sharing one backend (the
 * scratch taken by one, a temporary for the other) agree with serial calls.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cpu/kernels.h"
#include "harness.h"

#define REL_TOL 1e-5
#define ABS_TOL 1e-6

enum { N_BE = 8 };

typedef struct {
    ctts_backend *be[N_BE]; /* [tier * 2 + threads - 1]; NULL if the tier is missing */
    ctts_cpu_isa isa[N_BE];
    char label[N_BE][32];
} backends;

static backends open_backends(void) {
    backends b;
    memset(&b, 0, sizeof b);
    static const ctts_cpu_isa isas[N_BE / 2] = {CTTS_ISA_SCALAR, CTTS_ISA_AVX2, CTTS_ISA_AVX512,
                                                CTTS_ISA_NEON};
    for (int i = 0; i < N_BE; i++) {
        cpu_kernels k;
        cpu_kernels_init(&k, isas[i / 2]);
        if (k.isa != isas[i / 2]) continue;
        b.be[i] = ctts_backend_cpu_new(i % 2 + 1, isas[i / 2]);
        b.isa[i] = isas[i / 2];
        snprintf(b.label[i], sizeof b.label[i], "%s%s/%d", k.name, k.conv1d_bf16 ? "+bf16" : "",
                 i % 2 + 1);
    }
    return b;
}

static void close_backends(backends *b) {
    for (int i = 0; i < N_BE; i++)
        if (b->be[i]) b->be[i]->destroy(b->be[i]);
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static float frand(void) { return test_frand(&rng_state); }

typedef struct {
    int transposed, cin, cout, groups, k, stride, dil, T;
} shape;

/* One convolution case: inputs, the exact reference and its bound. */
typedef struct {
    shape s;
    ctts_dtype dt;
    int tin, tout;
    size_t nx, nw, ny;
    float *x, *xr, *bias; /* xr: x rounded to BF16 (dt BF16) or x */
    void *w;
    float *wv; /* weight values as float */
    double *ref, *mag;
    ctts_tensor wt;
} conv_case;

static void case_free(conv_case *c) {
    free(c->x);
    free(c->xr);
    free(c->bias);
    free(c->w);
    free(c->wv);
    free(c->ref);
    free(c->mag);
}

static void case_make(conv_case *c, shape s, ctts_dtype dt, int with_bias) {
    memset(c, 0, sizeof *c);
    c->s = s;
    c->dt = dt;
    const int cin_g = s.cin / s.groups, cout_g = s.cout / s.groups;
    if (s.transposed) {
        c->tin = s.T;
        c->tout = (s.T - 1) * s.stride + s.k;
        c->nw = (size_t)s.cin * cout_g * s.k;
    } else {
        c->tout = s.T;
        c->tin = (s.T - 1) * s.stride + (s.k - 1) * s.dil + 1;
        c->nw = (size_t)s.cout * cin_g * s.k;
    }
    c->nx = (size_t)s.cin * c->tin;
    c->ny = (size_t)s.cout * c->tout;
    c->x = malloc(c->nx * 4);
    c->xr = malloc(c->nx * 4);
    for (size_t i = 0; i < c->nx; i++) {
        c->x[i] = frand() * 4.0f;
        c->xr[i] = dt == CTTS_DT_BF16 ? cpu_round_bf16(c->x[i]) : c->x[i];
    }
    c->wv = malloc(c->nw * 4);
    if (dt == CTTS_DT_BF16) {
        uint16_t *w = malloc(c->nw * 2);
        for (size_t i = 0; i < c->nw; i++) {
            w[i] = ctts_f32_to_bf16(frand() * 0.5f);
            c->wv[i] = ctts_bf16_to_f32(w[i]);
        }
        c->w = w;
    } else {
        float *w = malloc(c->nw * 4);
        for (size_t i = 0; i < c->nw; i++) w[i] = c->wv[i] = frand() * 0.5f;
        c->w = w;
    }
    if (with_bias) {
        c->bias = malloc((size_t)s.cout * 4);
        for (int i = 0; i < s.cout; i++) c->bias[i] = frand();
    }
    c->ref = calloc(c->ny, sizeof *c->ref);
    c->mag = calloc(c->ny, sizeof *c->mag);
    for (int co = 0; co < s.cout; co++) {
        const int g = co / cout_g;
        double *r = c->ref + (size_t)co * c->tout, *m = c->mag + (size_t)co * c->tout;
        for (int t = 0; t < c->tout; t++) {
            r[t] = c->bias ? c->bias[co] : 0.0;
            m[t] = fabs(r[t]);
        }
        for (int cl = 0; cl < cin_g; cl++) {
            const float *xrow = c->xr + (size_t)(g * cin_g + cl) * c->tin;
            if (s.transposed) {
                const float *wr = c->wv + ((size_t)(g * cin_g + cl) * cout_g + co % cout_g) * s.k;
                for (int t = 0; t < c->tin; t++)
                    for (int k = 0; k < s.k; k++) {
                        const double p = (double)xrow[t] * wr[k];
                        r[t * s.stride + k] += p;
                        m[t * s.stride + k] += fabs(p);
                    }
            } else {
                const float *wr = c->wv + ((size_t)co * cin_g + cl) * s.k;
                for (int k = 0; k < s.k; k++)
                    for (int t = 0; t < c->tout; t++) {
                        const double p = (double)wr[k] * xrow[t * s.stride + k * s.dil];
                        r[t] += p;
                        m[t] += fabs(p);
                    }
            }
        }
    }
    c->wt = (ctts_tensor){.dtype = dt, .ndim = 3, .data = c->w, .bf16_products = 1};
    c->wt.shape[0] = s.transposed ? s.cin : s.cout;
    c->wt.shape[1] = s.transposed ? cout_g : cin_g;
    c->wt.shape[2] = s.k;
}

static void run_backend(const conv_case *c, ctts_backend *be, float *y) {
    const shape *s = &c->s;
    if (s->transposed)
        be->conv_transpose1d(be, y, c->x, &c->wt, c->bias, c->tin, s->stride, s->groups);
    else
        be->conv1d(be, y, c->x, &c->wt, c->bias, c->tin, s->stride, s->dil, s->groups);
}

/* The kernel of a table called directly on x (xr for BF16), all channels. */
static void run_kernel(const conv_case *c, const cpu_kernels *k, float *y) {
    const shape *s = &c->s;
    cpu_conv_args a = {.y = y, .x = c->xr, .w = c->w, .wdt = c->dt, .bias = c->bias,
                       .cin = s->cin, .cout = s->cout, .tin = c->tin, .tout = c->tout, .k = s->k,
                       .stride = s->stride, .dilation = s->transposed ? 1 : s->dil,
                       .groups = s->groups};
    if (s->transposed) k->conv_transpose1d(&a, 0, s->cout);
    else k->conv1d(&a, 0, s->cout);
}

static int within_bound(const conv_case *c, const float *y, const char *label) {
    for (size_t i = 0; i < c->ny; i++) {
        const double tol = REL_TOL * c->mag[i] + ABS_TOL;
        if (!(fabs((double)y[i] - c->ref[i]) <= tol)) {
            fprintf(stderr, "    [%s] i=%zu: got %.9g want %.9g (tol %g)\n", label, i,
                    (double)y[i], c->ref[i], tol);
            return 0;
        }
    }
    return 1;
}

static void print_case(const conv_case *c) {
    const shape *s = &c->s;
    fprintf(stderr, "    case %s dt=%s cin=%d cout=%d g=%d k=%d s=%d d=%d T=%d\n",
            s->transposed ? "convT" : "conv1d", ctts_dtype_name(c->dt), s->cin, s->cout, s->groups,
            s->k, s->stride, s->dil, s->T);
}

static int n_packed_checked; /* cases run again with packed convT weights */

/* Every backend tier against the reference; scalar tier bit-exact against
 * the reference kernel on rounded x; F32 bit-exact against each tier's kernel. */
static int check_case(backends *B, shape s, ctts_dtype dt, int with_bias) {
    conv_case c;
    case_make(&c, s, dt, with_bias);
    float *y[N_BE] = {0};
    float *yk = malloc(c.ny * 4);
    int ok = 1;
    for (int b = 0; b < N_BE && ok; b++) {
        if (!B->be[b]) continue;
        y[b] = malloc(c.ny * 4);
        for (size_t i = 0; i < c.ny; i++) y[b][i] = NAN; /* every output must be written */
        run_backend(&c, B->be[b], y[b]);
        const char *lab = B->label[b];
        if (dt == CTTS_DT_BF16 || B->isa[b] == CTTS_ISA_SCALAR) ok = within_bound(&c, y[b], lab);
        if (ok && b % 2 == 1 && memcmp(y[b], y[b - 1], c.ny * 4) != 0) {
            fprintf(stderr, "    [%s] 1 vs 2 threads differ\n", lab);
            ok = 0;
        }
        ctts_tensor *pk = s.transposed && B->be[b]->pack_conv_transpose
                              ? B->be[b]->pack_conv_transpose(B->be[b], &c.wt, s.groups)
                              : NULL;
        if (ok && pk) { /* the packed layout: the same bits */
            for (size_t i = 0; i < c.ny; i++) yk[i] = NAN;
            B->be[b]->conv_transpose1d(B->be[b], yk, c.x, pk, c.bias, c.tin, s.stride, s.groups);
            if (memcmp(yk, y[b], c.ny * 4) != 0) {
                fprintf(stderr, "    [%s] packed weights differ\n", lab);
                ok = 0;
            }
            B->be[b]->free_packed(B->be[b], pk);
            n_packed_checked++;
        }
        if (ok && (dt != CTTS_DT_BF16 || B->isa[b] == CTTS_ISA_SCALAR)) {
            cpu_kernels k;
            cpu_kernels_init(&k, B->isa[b]);
            run_kernel(&c, &k, yk);
            if (memcmp(yk, y[b], c.ny * 4) != 0) {
                fprintf(stderr, "    [%s] backend differs from the tier's float kernel\n", lab);
                ok = 0;
            }
        }
    }
    if (!ok) print_case(&c);
    for (int b = 0; b < N_BE; b++) free(y[b]);
    free(yk);
    case_free(&c);
    return ok;
}

static const int CINS[] = {1, 3, 31, 96, 768};
static const int COUTS[] = {1, 17, 96};
static const int KS[] = {1, 3, 7, 16};
static const int DILS[] = {1, 3, 9};
static const int TS[] = {1, 5, 16, 33, 200};

/* T from the list, stepped down while the case would exceed ~25M multiply-adds. */
static int pick_T(int idx, int64_t macs_per_t) {
    int i = idx % 5;
    while (i > 0 && macs_per_t * TS[i] > 25000000) i--;
    return TS[i];
}

static void grid(int transposed) {
    backends B = open_backends();
    int n = 0, failed = 0;
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 3; b++)
            for (int ki = 0; ki < 4; ki++) {
                for (int rep = 0; rep < 2; rep++, n++) {
                    shape s = {.transposed = transposed, .cin = CINS[a], .cout = COUTS[b],
                               .groups = 1, .k = KS[ki], .stride = 1 + (n * 3 + rep) % 8,
                               .dil = transposed ? 1 : DILS[(n + a) % 3]};
                    if (!transposed && s.stride > 1 && s.dil > 1 && rep == 0) s.stride = 1;
                    s.T = pick_T(n * 2 + a + rep, (int64_t)s.cin * s.cout * s.k);
                    if (!check_case(&B, s, CTTS_DT_BF16, (n + rep) % 2) && ++failed > 3) goto out;
                }
            }
    /* Depthwise, and grouped. */
    for (int a = 0; a < 4; a++)
        for (int ki = 0; ki < 4; ki++, n++) {
            shape s = {.transposed = transposed, .cin = CINS[a], .cout = CINS[a],
                       .groups = CINS[a], .k = KS[ki], .stride = 1 + n % 8,
                       .dil = transposed ? 1 : DILS[n % 3], .T = TS[(n + ki) % 5]};
            if (!check_case(&B, s, CTTS_DT_BF16, n % 2) && ++failed > 3) goto out;
        }
    {
        shape g3 = {.transposed = transposed, .cin = 96, .cout = 51, .groups = 3, .k = 7,
                    .stride = 2, .dil = 1, .T = 33};
        CHECK(check_case(&B, g3, CTTS_DT_BF16, 1));
        shape g4 = {.transposed = transposed, .cin = 96, .cout = 96, .groups = 4, .k = 3,
                    .stride = 1, .dil = transposed ? 1 : 3, .T = 200};
        CHECK(check_case(&B, g4, CTTS_DT_BF16, 0));
    }
    /* Tile edges around the 16-column vectors and the 64-column convT chunks. */
    static const int edge_T[] = {15, 17, 31, 32, 63, 64, 65, 97};
    for (int i = 0; i < 8; i++) {
        shape s = {.transposed = transposed, .cin = 31, .cout = 17, .groups = 1, .k = 3 + (i % 2) * 4,
                   .stride = 1 + i % 3, .dil = 1, .T = edge_T[i]};
        CHECK(check_case(&B, s, CTTS_DT_BF16, i % 2));
    }
    if (transposed) { /* kernel longer than a chunk: the rounding fallback */
        shape s = {.transposed = 1, .cin = 5, .cout = 3, .groups = 1, .k = 70, .stride = 16,
                   .dil = 1, .T = 9};
        CHECK(check_case(&B, s, CTTS_DT_BF16, 1));
    }
out:
    CHECK(failed == 0);
    close_backends(&B);
}

static void test_conv1d_bf16_grid(void) { grid(0); }
/* Also: packed weights (pack_conv_transpose, on AVX512_BF16 hosts) give the
 * same bits as the stored layout, grouped and odd channel counts included,
 * and the thread split keeps to the packed chunks. */
static void test_conv_transpose1d_bf16_grid(void) {
    grid(1);
    cpu_kernels k;
    cpu_kernels_init(&k, CTTS_ISA_AUTO);
    if (k.ct_bf16_pack_w) CHECK(n_packed_checked > 100);
}

/* F32 weights: exactly the float kernels (nothing rounded, nothing packed). */
static void test_f32_unchanged(void) {
    backends B = open_backends();
    for (int i = 0; i < 12; i++) {
        shape s = {.transposed = i % 2, .cin = CINS[i % 5], .cout = COUTS[i % 3],
                   .groups = 1, .k = KS[i % 4], .stride = 1 + i % 4, .dil = 1 + (i / 2 % 2) * 2,
                   .T = TS[(i + 2) % 5]};
        if (s.cin == 768) s.T = 16;
        CHECK(check_case(&B, s, CTTS_DT_F32, i % 2));
    }
    close_backends(&B);
}

/* BF16 weights without bf16_products: the float kernels on x as given (unchanged). */
static void test_bf16_unflagged_unchanged(void) {
    backends B = open_backends();
    for (int i = 0; i < 6; i++) {
        shape s = {.transposed = i % 2, .cin = CINS[(i + 2) % 5], .cout = COUTS[i % 3],
                   .groups = 1, .k = KS[(i + 1) % 4], .stride = 1 + i % 3, .dil = 1, .T = 33};
        conv_case c;
        case_make(&c, s, CTTS_DT_BF16, i % 2);
        c.wt.bf16_products = 0;
        memcpy(c.xr, c.x, c.nx * 4); /* the kernels see x unrounded */
        float *y = malloc(c.ny * 4), *yk = malloc(c.ny * 4);
        for (int b = 0; b < N_BE; b++) {
            if (!B.be[b]) continue;
            cpu_kernels k;
            cpu_kernels_init(&k, B.isa[b]);
            run_backend(&c, B.be[b], y);
            run_kernel(&c, &k, yk);
            if (memcmp(y, yk, c.ny * 4) != 0) {
                fprintf(stderr, "    [%s] unflagged BF16 differs from the float kernel\n",
                        B.label[b]);
                print_case(&c);
                CHECK(0);
            }
        }
        free(y);
        free(yk);
        case_free(&c);
    }
    close_backends(&B);
}

/* The fallback of AVX-512 hosts without AVX512_BF16: float kernels on rounded x. */
static void test_avx512_fallback(void) {
    cpu_kernels k;
    cpu_kernels_init_ref(&k);
    if (!cpu_kernels_init_avx512(&k) || cpu_isa_detect() != CTTS_ISA_AVX512)
        SKIP("host or build without AVX-512");
    for (int i = 0; i < 10; i++) {
        shape s = {.transposed = i % 2, .cin = CINS[(i + 1) % 5], .cout = COUTS[i % 3],
                   .groups = 1, .k = KS[i % 4], .stride = 1 + i % 5, .dil = 1 + (i % 3 == 2) * 8,
                   .T = TS[i % 5]};
        if (s.cin == 768) s.T = 33;
        conv_case c;
        case_make(&c, s, CTTS_DT_BF16, i % 2);
        float *y = malloc(c.ny * 4);
        run_kernel(&c, &k, y);
        const int ok = within_bound(&c, y, "avx512 float kernels");
        if (!ok) print_case(&c);
        CHECK(ok);
        free(y);
        case_free(&c);
    }
}

/* Two threads share one backend: one takes the conv scratch, the other gets
 * a temporary; both match the serial result bit for bit. */
typedef struct {
    ctts_backend *be;
    const conv_case *c;
    float *y;
} share_arg;

static void *share_thread(void *p) {
    share_arg *a = p;
    for (int r = 0; r < 20; r++) run_backend(a->c, a->be, a->y);
    return NULL;
}

static void test_shared_backend(void) {
    ctts_backend *be = ctts_backend_cpu_new(2, CTTS_ISA_AUTO);
    REQUIRE(be);
    shape s1 = {.cin = 96, .cout = 96, .groups = 1, .k = 7, .stride = 1, .dil = 3, .T = 200};
    shape s2 = {.transposed = 1, .cin = 96, .cout = 48, .groups = 1, .k = 10, .stride = 5,
                .dil = 1, .T = 33};
    conv_case c1, c2;
    case_make(&c1, s1, CTTS_DT_BF16, 1);
    case_make(&c2, s2, CTTS_DT_BF16, 0);
    float *r1 = malloc(c1.ny * 4), *r2 = malloc(c2.ny * 4);
    float *y1 = malloc(c1.ny * 4), *y2 = malloc(c2.ny * 4);
    run_backend(&c1, be, r1);
    run_backend(&c2, be, r2);
    CHECK(within_bound(&c1, r1, "serial conv1d"));
    CHECK(within_bound(&c2, r2, "serial convT"));
    share_arg a1 = {be, &c1, y1}, a2 = {be, &c2, y2};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, share_thread, &a1) == 0);
    share_thread(&a2);
    pthread_join(th, NULL);
    CHECK(memcmp(y1, r1, c1.ny * 4) == 0);
    CHECK(memcmp(y2, r2, c2.ny * 4) == 0);
    free(r1);
    free(r2);
    free(y1);
    free(y2);
    case_free(&c1);
    case_free(&c2);
    be->destroy(be);
}

TEST_MAIN(T(test_conv1d_bf16_grid), T(test_conv_transpose1d_bf16_grid), T(test_f32_unchanged),
          T(test_bf16_unflagged_unchanged),
          T(test_avx512_fallback), T(test_shared_backend))
