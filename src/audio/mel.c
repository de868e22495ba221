/*
 * Log-mel spectrogram (see mel.h): librosa's Slaney filterbank, a radix-2
 * FFT in double, and torch.stft's framing on a reflect-padded signal.
 */
#include "audio/mel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

#define MEL_MAX_FFT (1 << 16)
#define MEL_MAX_MELS 4096

static ctts_status check(const mel_params *p, char *err, size_t err_len) {
    if (!p) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "mel: no parameters");
    if (p->n_fft < 2 || p->n_fft > MEL_MAX_FFT || (p->n_fft & (p->n_fft - 1)) || p->hop < 1 ||
        p->hop > p->n_fft || p->n_mels < 1 || p->n_mels > MEL_MAX_MELS || p->sample_rate < 1 ||
        !(p->fmin >= 0.0f) || !(p->fmax > p->fmin) || p->fmax > p->sample_rate / 2.0f)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "mel: bad parameters (n_fft %d, hop %d, n_mels %d, rate %d, fmin %g, "
                        "fmax %g)", p->n_fft, p->hop, p->n_mels, p->sample_rate, (double)p->fmin,
                        (double)p->fmax);
    return CTTS_OK;
}

/* Slaney mel scale (librosa hz_to_mel / mel_to_hz with htk=False). */
#define F_SP (200.0 / 3.0)
#define MIN_LOG_HZ 1000.0
#define MIN_LOG_MEL (MIN_LOG_HZ / F_SP)

static double logstep(void) { return log(6.4) / 27.0; }

static double hz_to_mel(double f) {
    if (f >= MIN_LOG_HZ) return MIN_LOG_MEL + log(f / MIN_LOG_HZ) / logstep();
    return f / F_SP;
}

static double mel_to_hz(double m) {
    if (m >= MIN_LOG_MEL) return MIN_LOG_HZ * exp(logstep() * (m - MIN_LOG_MEL));
    return F_SP * m;
}

ctts_status mel_filterbank(const mel_params *p, float **fb, char *err, size_t err_len) {
    if (fb) *fb = NULL;
    ctts_status st = check(p, err, err_len);
    if (st != CTTS_OK) return st;
    if (!fb) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "mel: no output");
    const int M = p->n_mels, K = p->n_fft / 2 + 1;
    float *w = malloc((size_t)M * (size_t)K * sizeof *w);
    double *mel_f = malloc((size_t)(M + 2) * sizeof *mel_f);
    double *freqs = malloc((size_t)K * sizeof *freqs);
    if (!w || !mel_f || !freqs) {
        free(w);
        free(mel_f);
        free(freqs);
        return ctts_err(err, err_len, CTTS_E_OOM, "out of memory");
    }
    /* np.fft.rfftfreq(n_fft, 1/sr) */
    const double val = 1.0 / ((double)p->n_fft * (1.0 / (double)p->sample_rate));
    for (int k = 0; k < K; k++) freqs[k] = (double)k * val;
    /* np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), M + 2), endpoint exact. */
    const double m0 = hz_to_mel((double)p->fmin), m1 = hz_to_mel((double)p->fmax);
    const double step = (m1 - m0) / (double)(M + 1);
    for (int i = 0; i < M + 2; i++) mel_f[i] = mel_to_hz(i == M + 1 ? m1 : (double)i * step + m0);
    for (int i = 0; i < M; i++) {
        const double d0 = mel_f[i + 1] - mel_f[i], d1 = mel_f[i + 2] - mel_f[i + 1];
        const double enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for (int k = 0; k < K; k++) {
            const double lower = -(mel_f[i] - freqs[k]) / d0;
            const double upper = (mel_f[i + 2] - freqs[k]) / d1;
            double v = lower < upper ? lower : upper;
            if (v < 0.0) v = 0.0;
            const float tri = (float)v; /* stored as float32, then normalised */
            w[(size_t)i * K + k] = (float)((double)tri * enorm);
        }
    }
    free(mel_f);
    free(freqs);
    *fb = w;
    return CTTS_OK;
}

/* In-place iterative radix-2 FFT of n complex values (re, im), forward. */
static void fft(double *re, double *im, int n, const double *cs, const double *sn) {
    for (int i = 1, j = 0; i < n; i++) {
        int bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double t = re[i];
            re[i] = re[j];
            re[j] = t;
            t = im[i];
            im[i] = im[j];
            im[j] = t;
        }
    }
    for (int len = 2; len <= n; len <<= 1) {
        const int half = len >> 1, stride = n / len;
        for (int i = 0; i < n; i += len)
            for (int k = 0; k < half; k++) {
                const double wr = cs[k * stride], wi = -sn[k * stride];
                const double xr = re[i + k + half], xi = im[i + k + half];
                const double tr = xr * wr - xi * wi, ti = xr * wi + xi * wr;
                re[i + k + half] = re[i + k] - tr;
                im[i + k + half] = im[i + k] - ti;
                re[i + k] += tr;
                im[i + k] += ti;
            }
    }
}

ctts_status mel_log_spectrogram(const mel_params *p, const float *x, size_t n, float **mel,
                                int *n_frames, char *err, size_t err_len) {
    if (mel) *mel = NULL;
    if (n_frames) *n_frames = 0;
    ctts_status st = check(p, err, err_len);
    if (st != CTTS_OK) return st;
    if (!x || !mel || !n_frames) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "mel: bad arguments");
    const int N = p->n_fft, K = N / 2 + 1, M = p->n_mels;
    const size_t pad = (size_t)(N - p->hop) / 2;
    if (n <= pad || n > ((size_t)1 << 31) || n + 2 * pad < (size_t)N)
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "mel: %zu samples is too short (needs more than %zu)", n,
                        pad > (size_t)N - 2 * pad ? pad : (size_t)N - 2 * pad);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "mel: sample %zu is not finite", i);
    const size_t L = n + 2 * pad;
    const int T = (int)((L - (size_t)N) / (size_t)p->hop + 1);

    float *fb = NULL;
    st = mel_filterbank(p, &fb, err, err_len);
    if (st != CTTS_OK) return st;
    float *xp = malloc(L * sizeof *xp);
    float *win = malloc((size_t)N * sizeof *win);
    double *buf = malloc((size_t)4 * N * sizeof *buf); /* re, im, cos, sin tables */
    float *mag = malloc((size_t)K * sizeof *mag);
    float *out = malloc((size_t)M * (size_t)T * sizeof *out);
    if (!xp || !win || !buf || !mag || !out) {
        free(fb);
        free(xp);
        free(win);
        free(buf);
        free(mag);
        free(out);
        return ctts_err(err, err_len, CTTS_E_OOM, "out of memory for the mel spectrogram");
    }
    /* Reflect padding (edge sample not repeated), as F.pad(mode="reflect"). */
    memcpy(xp + pad, x, n * sizeof *x);
    for (size_t i = 0; i < pad; i++) {
        xp[pad - 1 - i] = x[i + 1];
        xp[pad + n + i] = x[n - 2 - i];
    }
    /* torch.hann_window(N) (periodic), float32: 0.5 - 0.5 cos(k * (2 pi / N)). */
    const float wstep = (float)(2.0 * M_PI / (double)N);
    for (int k = 0; k < N; k++) win[k] = cosf((float)k * wstep) * -0.5f + 0.5f;
    double *re = buf, *im = buf + N, *cs = buf + 2 * N, *sn = buf + 3 * N;
    for (int k = 0; k < N; k++) {
        cs[k] = cos(2.0 * M_PI * (double)k / (double)N);
        sn[k] = sin(2.0 * M_PI * (double)k / (double)N);
    }
    for (int t = 0; t < T; t++) {
        const float *fr = xp + (size_t)t * (size_t)p->hop;
        for (int k = 0; k < N; k++) {
            re[k] = (double)(fr[k] * win[k]);
            im[k] = 0.0;
        }
        fft(re, im, N, cs, sn);
        for (int k = 0; k < K; k++) {
            const float a = (float)re[k], b = (float)im[k];
            mag[k] = sqrtf(a * a + b * b + 1e-9f);
        }
        for (int m = 0; m < M; m++) {
            const float *row = fb + (size_t)m * K;
            double acc = 0.0;
            for (int k = 0; k < K; k++) acc += (double)row[k] * (double)mag[k];
            float v = (float)acc;
            out[(size_t)m * T + t] = logf(v > 1e-5f ? v : 1e-5f);
        }
    }
    free(fb);
    free(xp);
    free(win);
    free(buf);
    free(mag);
    *mel = out;
    *n_frames = T;
    return CTTS_OK;
}
