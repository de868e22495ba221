/*
 * resample_poly (see resample.h). The filter is designed tap by tap in
 * float64 exactly as SciPy's firwin + kaiser window do (sinc as numpy's
 * sin(pi x)/(pi x), the window's ((n - a)/a)**2 as a square, the scale as
 * numpy's pairwise sum), then cast to float32 and multiplied by up.
 *
 * SciPy's upfirdn stores the padded filter as `up` phases of hpp taps, each
 * flipped (h_trans_flip[t*hpp + j] = h[t + (hpp-1-j)*up]); output k uses phase
 * t = k*down mod up against the input ending at x_idx = k*down div up, summed
 * in float32 from 0 with the oldest input first. We compute only the kept
 * outputs (k from n_pre_remove) in that order. Terms whose input lies outside
 * x contribute exactly 0 there and are skipped here; the zero taps of the
 * padding are kept (x is finite, so they add +-0 and change nothing).
 * Fused multiply-add must stay off for bit parity: the build uses -std=c11,
 * where GCC does not contract a*b + c.
 */
#include "audio/resample.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

static int64_t gcd64(int64_t a, int64_t b) {
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Modified Bessel function I0 by its power series (x <= ~10 here: beta = 5). */
static double bessel_i0(double x) {
    double q = 0.25 * x * x, term = 1.0, sum = 1.0;
    for (int k = 1; k < 500; k++) {
        term *= q / ((double)k * (double)k);
        sum += term;
        if (term < sum * 1e-18) break;
    }
    return sum;
}

typedef struct {
    int64_t numtaps;
    double fc, alpha, i0_beta;
} fir_design;

#define KAISER_BETA 5.0

/* Unscaled tap i of firwin(numtaps, fc, window=('kaiser', 5.0)). */
static double fir_tap(const fir_design *d, int64_t i) {
    double m = (double)i - d->alpha;
    double x = d->fc * m;
    double y = M_PI * (x == 0 ? 1.0e-20 : x);
    double h = d->fc * (sin(y) / y);
    double r = ((double)i - d->alpha) / d->alpha;
    double w = bessel_i0(KAISER_BETA * sqrt(1 - r * r)) / d->i0_beta;
    return h * w;
}

/* numpy's pairwise summation (blocks of 128 with 8 partial sums) over taps [i0, i0+n). */
static double pairwise_taps(const fir_design *d, int64_t i0, int64_t n) {
    if (n < 8) {
        double res = 0.;
        for (int64_t i = 0; i < n; i++) res += fir_tap(d, i0 + i);
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++) r[j] = fir_tap(d, i0 + j);
        int64_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += fir_tap(d, i0 + i + j);
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += fir_tap(d, i0 + i);
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_taps(d, i0, n2) + pairwise_taps(d, i0 + n2, n - n2);
}

static ctts_status reduce(int *up, int *down, char *err, size_t err_len) {
    if (*up < 1 || *down < 1)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "resample: up and down must be >= 1 (got %d/%d)", *up, *down);
    int g = (int)gcd64(*up, *down);
    *up /= g;
    *down /= g;
    if (*up > RESAMPLE_MAX_FACTOR || *down > RESAMPLE_MAX_FACTOR)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "resample: ratio %d/%d is too fine (factors above %d)", *up, *down,
                        RESAMPLE_MAX_FACTOR);
    return CTTS_OK;
}

/* Design for reduced factors; taps malloc'd (float32, times up). */
static ctts_status design(int up, int down, float **taps, int64_t *n_taps, char *err,
                          size_t err_len) {
    int64_t max_rate = up > down ? up : down;
    int64_t half_len = 10 * max_rate;
    fir_design d = {.numtaps = 2 * half_len + 1, .fc = 1. / (double)max_rate};
    d.alpha = 0.5 * (double)(d.numtaps - 1);
    d.i0_beta = bessel_i0(KAISER_BETA);
    float *h = malloc((size_t)d.numtaps * sizeof *h);
    if (!h) return ctts_err(err, err_len, CTTS_E_OOM, "resample: out of memory for the filter");
    double s = pairwise_taps(&d, 0, d.numtaps);
    for (int64_t i = 0; i < d.numtaps; i++) {
        h[i] = (float)(fir_tap(&d, i) / s);
        h[i] *= (float)up;
    }
    *taps = h;
    *n_taps = d.numtaps;
    return CTTS_OK;
}

ctts_status resample_poly_filter(int up, int down, float **taps, size_t *n_taps, char *err,
                                 size_t err_len) {
    *taps = NULL;
    *n_taps = 0;
    ctts_status st = reduce(&up, &down, err, err_len);
    int64_t n = 0;
    if (st == CTTS_OK) st = design(up, down, taps, &n, err, err_len);
    *n_taps = (size_t)n;
    return st;
}

ctts_status resample_poly(const float *x, size_t n, int up, int down, float **y, size_t *ny,
                          char *err, size_t err_len) {
    *y = NULL;
    *ny = 0;
    ctts_status st = reduce(&up, &down, err, err_len);
    if (st != CTTS_OK) return st;
    if (n == 0) return CTTS_OK;
    if (!x) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "resample: no input");
    if (n > (size_t)INT64_MAX / (size_t)up / 4 ||
        (unsigned long long)n * (unsigned long long)up / (unsigned long long)down >
            (1ull << 34))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "resample: %zu samples at ratio %d/%d give too long an output", n, up,
                        down);
    const int64_t n_in = (int64_t)n;
    int64_t n_out = n_in * up;
    n_out = n_out / down + (n_out % down != 0);
    if (up == 1 && down == 1) {
        float *c = malloc(n * sizeof *c);
        if (!c) return ctts_err(err, err_len, CTTS_E_OOM, "resample: out of memory");
        memcpy(c, x, n * sizeof *c);
        *y = c;
        *ny = n;
        return CTTS_OK;
    }
    float *h = NULL;
    int64_t numtaps = 0;
    st = design(up, down, &h, &numtaps, err, err_len);
    if (st != CTTS_OK) return st;
    const int64_t half_len = (numtaps - 1) / 2;
    const int64_t n_pre_pad = down - half_len % down;
    const int64_t n_pre_remove = (half_len + n_pre_pad) / down;
    /* Padded filter: n_pre_pad zeros + taps (trailing zeros only add +-0). */
    const int64_t len_h = n_pre_pad + numtaps;
    const int64_t hpp = (len_h + up - 1) / up; /* taps per phase */
    float *htf = calloc((size_t)(hpp * up), sizeof *htf);
    float *out = malloc((size_t)n_out * sizeof *out);
    if (!htf || !out) {
        free(h);
        free(htf);
        free(out);
        return ctts_err(err, err_len, CTTS_E_OOM, "resample: out of memory (%lld samples)",
                        (long long)n_out);
    }
    for (int64_t t = 0; t < up; t++)
        for (int64_t j = 0; j < hpp; j++) {
            int64_t i = t + (hpp - 1 - j) * up - n_pre_pad;
            htf[t * hpp + j] = i >= 0 && i < numtaps ? h[i] : 0.0f;
        }
    free(h);
    for (int64_t o = 0; o < n_out; o++) {
        const int64_t k = n_pre_remove + o;
        const int64_t num = k * down, x_idx = num / up, t = num % up;
        const int64_t first = x_idx - hpp + 1; /* input index of tap j = 0 */
        int64_t lo = first < 0 ? 0 : first, hi = x_idx < n_in - 1 ? x_idx : n_in - 1;
        const float *row = htf + t * hpp;
        float acc = 0.0f;
        for (int64_t i = lo; i <= hi; i++) acc = acc + x[i] * row[i - first];
        out[o] = acc;
    }
    free(htf);
    *y = out;
    *ny = (size_t)n_out;
    return CTTS_OK;
}

ctts_status resample_rate(const float *x, size_t n, int from_rate, int to_rate, float **y,
                          size_t *ny, char *err, size_t err_len) {
    *y = NULL;
    *ny = 0;
    if (from_rate < 1 || to_rate < 1)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "resample: bad rates %d -> %d",
                        from_rate, to_rate);
    int g = (int)gcd64(from_rate, to_rate);
    return resample_poly(x, n, to_rate / g, from_rate / g, y, ny, err, err_len);
}
