/*
 * NEON quantized matmul with the ARMv8.2 dot-product extension (SDOT): the
 * template kernels_neon_mmq.h compiled with NEON_MMQ_DOT 1, this file alone
 * targeting armv8.2-a+dotprod (by pragma, so the Makefile needs no per-file
 * flag). Its functions may only run where the host has the extension
 * (HWCAP_ASIMDDP); cpu_kernels_init_neon_ex checks that before using them.
 * Empty on other targets.
 */
#include "cpu/kernels.h"

#if defined(__aarch64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("dotprod"))), apply_to = function)
#else
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif
#include <arm_neon.h>

#define NEON_MMQ_DOT 1
#include "cpu/kernels_neon_mmq.h"

void cpu_matmul_q8_0_neon_dot(float *y, int ldy, const void *xq, const void *w, int R, int K,
                              int T) {
    neon_mmq_q8_0(y, ldy, xq, w, R, K, T);
}

void cpu_matmul_q4_0_neon_dot(float *y, int ldy, const void *xq, const void *w, int R, int K,
                              int T) {
    neon_mmq_q4_0(y, ldy, xq, w, R, K, T);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
