/* SPDX-License-Identifier: MIT
 *
 * quant_impl.h — internal: the per-ISA kernels over codes behind quant.h.
 *
 * Only quant.c and the kernel files include this. As in distance_impl.h, the
 * SIMD kernels carry per-function target attributes (the build runs on any
 * x86-64) and are reached only through pm_qkernels_for(), which asks the CPU.
 */
#ifndef POMAI_ENGINE_QUANT_IMPL_H
#define POMAI_ENGINE_QUANT_IMPL_H

#include <stdint.h>

#if defined(__x86_64__)
#define PM_QUANT_X86 1
#endif

int32_t pm_dot_q8_scalar(const int8_t *a, const int8_t *b, uint32_t n);
uint32_t pm_hamming_scalar(const uint64_t *a, const uint64_t *b, uint32_t words);
float pm_l2sq_f16_scalar(const uint16_t *a, const uint16_t *b, uint32_t n);
float pm_dot_f16_scalar(const uint16_t *a, const uint16_t *b, uint32_t n);

#ifdef PM_QUANT_X86
/* Require AVX2, FMA, F16C and POPCNT. */
int32_t pm_dot_q8_avx2(const int8_t *a, const int8_t *b, uint32_t n);
uint32_t pm_hamming_avx2(const uint64_t *a, const uint64_t *b, uint32_t words);
float pm_l2sq_f16_avx2(const uint16_t *a, const uint16_t *b, uint32_t n);
float pm_dot_f16_avx2(const uint16_t *a, const uint16_t *b, uint32_t n);

/* Require AVX-512F, AVX-512BW, AVX-512 VNNI and AVX-512 VPOPCNTDQ. */
int32_t pm_dot_q8_avx512(const int8_t *a, const int8_t *b, uint32_t n);
uint32_t pm_hamming_avx512(const uint64_t *a, const uint64_t *b, uint32_t words);
float pm_l2sq_f16_avx512(const uint16_t *a, const uint16_t *b, uint32_t n);
float pm_dot_f16_avx512(const uint16_t *a, const uint16_t *b, uint32_t n);
#endif

#endif
