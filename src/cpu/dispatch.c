/*
 * Host probe and kernel-table selection.
 *
 * x86-64: cpuid for AVX2/FMA/F16C (and AVX-512 F/BW/VL) and XGETBV for the OS
 * having enabled the YMM (and ZMM / opmask) state (a CPU flag alone is not
 * enough: the OS must save the registers). arm64: NEON, always present.
 * The table starts from the scalar reference and each tier up to the cap
 * overrides what it implements. The only file that knows which ISAs exist.
 * Keeps no state: every call probes again (cpuid costs microseconds).
 */
#include "cpu/kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

ctts_cpu_isa cpu_isa_detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return CTTS_ISA_SCALAR;
    const int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1,
              avx = (c >> 28) & 1;
    if (!osxsave || !avx || !fma || !f16c) return CTTS_ISA_SCALAR;
    if ((read_xcr0() & 0x6) != 0x6) return CTTS_ISA_SCALAR; /* XMM + YMM state enabled */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return CTTS_ISA_SCALAR;
    if (!((b >> 5) & 1)) return CTTS_ISA_SCALAR; /* AVX2 */
    /* AVX-512 F (b16), BW (b30), VL (b31), and the OS saving opmask + ZMM state (XCR0 5-7). */
    const int avx512 = ((b >> 16) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
    if (avx512 && (read_xcr0() & 0xE0) == 0xE0) return CTTS_ISA_AVX512;
    return CTTS_ISA_AVX2;
}
#elif defined(__aarch64__)
/* AdvSIMD (NEON) is mandatory in AArch64: nothing to probe. */
ctts_cpu_isa cpu_isa_detect(void) { return CTTS_ISA_NEON; }
#else
ctts_cpu_isa cpu_isa_detect(void) { return CTTS_ISA_SCALAR; }
#endif

void cpu_kernels_init(cpu_kernels *k, ctts_cpu_isa cap) {
    cpu_kernels_init_ref(k);
    const ctts_cpu_isa host = cpu_isa_detect();
    if (cap == CTTS_ISA_SCALAR) return;
    /* arm64: AUTO or a NEON cap allows NEON (x86 caps do not). */
    if ((cap == CTTS_ISA_AUTO || cap == CTTS_ISA_NEON) && host == CTTS_ISA_NEON) {
        cpu_kernels_init_neon(k);
        return;
    }
#if defined(__x86_64__)
    /* AUTO or any cap at or above AVX2 on x86 allows AVX2 (NEON caps do not). */
    const int x86_host = host == CTTS_ISA_AVX2 || host == CTTS_ISA_AVX512;
    const int allow_avx2 =
        cap == CTTS_ISA_AUTO || cap == CTTS_ISA_AVX2 || cap == CTTS_ISA_AVX512;
    const int allow_avx512 = cap == CTTS_ISA_AUTO || cap == CTTS_ISA_AVX512;
    if (allow_avx512 && host == CTTS_ISA_AVX512 && cpu_kernels_init_avx512(k)) {
        cpu_kernels_init_bf16(k); /* vdpbf16ps convolutions where the host has them */
        return;
    }
    if (allow_avx2 && x86_host) cpu_kernels_init_avx2(k);
#endif
}
