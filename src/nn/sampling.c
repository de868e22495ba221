/*
 * Hugging Face logits processing and token choice (see sampling.h).
 *
 * Every function works on a host row of V float scores in place. top-k uses
 * a size-k min-heap to find the k-th largest score (O(V log k)); top-p sorts
 * (value, id) pairs ascending like torch.sort and accumulates the softmax in
 * float32, as the reference does. The categorical draw walks the cumulative
 * unnormalised probabilities with one uniform number from the session RNG.
 */
#include "nn/sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

ctts_status nn_sampler_init(nn_sampler *s, int vocab) {
    if (!s || vocab <= 0) return CTTS_E_INVALID_ARG;
    memset(s, 0, sizeof *s);
    s->work = malloc((size_t)vocab * sizeof *s->work);
    s->pairs = malloc((size_t)vocab * sizeof *s->pairs);
    if (!s->work || !s->pairs) {
        nn_sampler_release(s);
        return CTTS_E_OOM;
    }
    s->vocab = vocab;
    return CTTS_OK;
}

void nn_sampler_release(nn_sampler *s) {
    if (!s) return;
    free(s->work);
    free(s->pairs);
    memset(s, 0, sizeof *s);
}

ctts_status nn_sampling_params_check(const nn_sampling_params *p, char *err, size_t err_len) {
    if (!p) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "sampling: no parameters");
    if (!(p->repetition_penalty > 0.0f) || isinf(p->repetition_penalty))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "repetition_penalty must be a positive number (got %g)",
                        (double)p->repetition_penalty);
    if (!p->do_sample) return CTTS_OK;
    if (!(p->temperature > 0.0f) || isinf(p->temperature))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG,
                        "temperature must be a positive number when sampling (got %g)",
                        (double)p->temperature);
    if (!(p->top_p > 0.0f))
        return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "top_p must be in (0, 1] (got %g)",
                        (double)p->top_p);
    return CTTS_OK;
}

void nn_scores_repetition_penalty(nn_sampler *sm, float *s, int V, const int32_t *hist,
                                  int n_hist, float p) {
    if (!sm || !s || !hist || p == 1.0f || V > sm->vocab) return;
    /* HF gathers every history position, then scatters: a repeated id is
     * penalised once (all gathered copies hold the same original score).
     * work[] marks the ids already done. */
    memset(sm->work, 0, (size_t)V * sizeof *sm->work);
    for (int i = 0; i < n_hist; i++) {
        const int32_t t = hist[i];
        if (t < 0 || t >= V || sm->work[t] != 0.0f) continue;
        sm->work[t] = 1.0f;
        s[t] = s[t] < 0.0f ? s[t] * p : s[t] / p;
    }
}

void nn_scores_mask(float *s, int V, int lo, int hi, int keep) {
    if (lo < 0) lo = 0;
    if (hi > V) hi = V;
    for (int i = lo; i < hi; i++)
        if (i != keep) s[i] = -INFINITY;
}

void nn_scores_temperature(float *s, int V, float t) {
    if (t == 1.0f) return;
    for (int i = 0; i < V; i++) s[i] = s[i] / t;
}

/* Min-heap of k floats: sift down from position i. */
static void heap_down(float *h, int k, int i) {
    for (;;) {
        int l = 2 * i + 1, m = i;
        if (l < k && h[l] < h[m]) m = l;
        if (l + 1 < k && h[l + 1] < h[m]) m = l + 1;
        if (m == i) return;
        const float t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

void nn_scores_top_k(nn_sampler *sm, float *s, int V, int k) {
    if (k <= 0 || k >= V || !sm || V > sm->vocab) return;
    /* The k largest scores (multiset, like torch.topk) in a min-heap: its
     * root is the k-th largest. NaN is treated as smaller than everything. */
    float *h = sm->work;
    for (int i = 0; i < k; i++) h[i] = isnan(s[i]) ? -INFINITY : s[i];
    for (int i = k / 2 - 1; i >= 0; i--) heap_down(h, k, i);
    for (int i = k; i < V; i++) {
        if (s[i] > h[0]) {
            h[0] = s[i];
            heap_down(h, k, 0);
        }
    }
    const float kth = h[0];
    for (int i = 0; i < V; i++)
        if (s[i] < kth) s[i] = -INFINITY;
}

/* Ascending by value, ties by id (a deterministic order for torch.sort's). */
static int cmp_pair_asc(const void *a, const void *b) {
    const nn_scored_id *x = a, *y = b;
    if (x->v < y->v) return -1;
    if (x->v > y->v) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

void nn_scores_top_p(nn_sampler *sm, float *s, int V, float p) {
    if (!(p < 1.0f) || !sm || V > sm->vocab || V <= 0) return;
    nn_scored_id *pr = sm->pairs;
    for (int i = 0; i < V; i++) pr[i] = (nn_scored_id){.v = isnan(s[i]) ? -INFINITY : s[i], .i = i};
    qsort(pr, (size_t)V, sizeof *pr, cmp_pair_asc);
    const float mx = pr[V - 1].v;
    if (mx == -INFINITY) return;
    float sum = 0.0f;
    for (int i = 0; i < V; i++) {
        sm->work[i] = expf(pr[i].v - mx);
        sum += sm->work[i];
    }
    const float limit = 1.0f - p;
    float cum = 0.0f;
    for (int i = 0; i < V - 1; i++) { /* the last (most likely) id is always kept */
        cum += sm->work[i] / sum;
        if (cum <= limit) s[pr[i].i] = -INFINITY;
    }
}

int nn_argmax(const float *s, int V) {
    int best = 0;
    float bv = -INFINITY;
    for (int i = 0; i < V; i++)
        if (s[i] > bv) {
            bv = s[i];
            best = i;
        }
    return best;
}

int nn_sample_categorical(nn_sampler *sm, const float *s, int V, ctts_rng *rng) {
    if (!sm || V > sm->vocab || V <= 0) return 0;
    const int am = nn_argmax(s, V);
    const float mx = s[am];
    if (!(mx > -INFINITY) || !rng) return am;
    double total = 0.0;
    for (int i = 0; i < V; i++) {
        const float e = s[i] > -INFINITY ? expf(s[i] - mx) : 0.0f;
        sm->work[i] = e;
        total += e;
    }
    const double u = ctts_rng_uniform(rng) * total;
    double cum = 0.0;
    int last = am;
    for (int i = 0; i < V; i++) {
        if (sm->work[i] <= 0.0f) continue;
        cum += sm->work[i];
        last = i;
        if (u < cum) return i;
    }
    return last; /* rounding at the top end */
}

int nn_sample_token(nn_sampler *sm, float *s, int V, const nn_sampling_params *p, ctts_rng *rng) {
    if (!p || !p->do_sample) return nn_argmax(s, V);
    nn_scores_temperature(s, V, p->temperature);
    nn_scores_top_k(sm, s, V, p->top_k);
    nn_scores_top_p(sm, s, V, p->top_p);
    return nn_sample_categorical(sm, s, V, rng);
}
