/* xoshiro256** generator and normal sampling (Box-Muller). */
#include "base/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ctts_rng_seed(ctts_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
    r->has_spare = 0;
    r->spare = 0.0f;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ctts_rng_u64(ctts_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ctts_rng_uniform(ctts_rng *r) { return (double)(ctts_rng_u64(r) >> 11) * 0x1.0p-53; }

float ctts_rng_normal(ctts_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1, u2;
    do u1 = ctts_rng_uniform(r);
    while (u1 <= 0.0);
    u2 = ctts_rng_uniform(r);
    double mag = sqrt(-2.0 * log(u1));
    r->spare = (float)(mag * sin(2.0 * M_PI * u2));
    r->has_spare = 1;
    return (float)(mag * cos(2.0 * M_PI * u2));
}

float ctts_rng_trunc_normal(ctts_rng *r, float std, float clamp) {
    if (std <= 0.0f) return 0.0f;
    /* Rejection is fast whenever clamp is not tiny relative to std; bound the
     * loop and fall back to clamping so a pathological clamp cannot hang. */
    for (int i = 0; i < 1000; i++) {
        float x = ctts_rng_normal(r) * std;
        if (x >= -clamp && x <= clamp) return x;
    }
    float x = ctts_rng_normal(r) * std;
    return x < -clamp ? -clamp : (x > clamp ? clamp : x);
}
