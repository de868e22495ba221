/*
 * Seedable per-session RNG: xoshiro256** seeded through splitmix64, with
 * standard-normal and truncated-normal sampling. Not torch's generator: with
 * temperature > 0 ctts and the official code draw different (equally
 * distributed) noise; with temperature 0 both are exactly deterministic.
 */
#ifndef CTTS_BASE_RNG_H
#define CTTS_BASE_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
    int has_spare;
    float spare;
} ctts_rng;

void ctts_rng_seed(ctts_rng *r, uint64_t seed);
uint64_t ctts_rng_u64(ctts_rng *r);
/* Uniform in [0, 1). */
double ctts_rng_uniform(ctts_rng *r);
/* N(0, 1). */
float ctts_rng_normal(ctts_rng *r);
/* N(0, std^2) restricted to [-clamp, clamp] by rejection (clamp > 0). */
float ctts_rng_trunc_normal(ctts_rng *r, float std, float clamp);

#endif
