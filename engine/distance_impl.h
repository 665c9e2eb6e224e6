/* SPDX-License-Identifier: MIT
 *
 * distance_impl.h — internal: the per-ISA kernels behind distance.h.
 *
 * Only distance.c and the kernel files include this. The AVX2 and AVX-512
 * kernels are compiled with per-function target attributes, not with -m flags,
 * so the build runs on any x86-64; calling one on a CPU without its ISA is
 * undefined (SIGILL), which is why callers go through pm_kernels_for().
 * PM_DISTANCE_X86 says whether the SIMD kernels exist in this build.
 */
#ifndef POMAI_ENGINE_DISTANCE_IMPL_H
#define POMAI_ENGINE_DISTANCE_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "distance.h" /* PM_L2_BOUND_CHECK_FLOATS */

#if defined(__x86_64__) || defined(__i386__)
#define PM_DISTANCE_X86 1
#endif

float pm_l2sq_scalar(const float *a, const float *b, uint32_t n);
float pm_dot_scalar(const float *a, const float *b, uint32_t n);
float pm_l2sq_bounded_scalar(const float *a, const float *b, uint32_t n, float bound);

#ifdef PM_DISTANCE_X86
/* Require AVX2 and FMA. */
float pm_l2sq_avx2(const float *a, const float *b, uint32_t n);
float pm_dot_avx2(const float *a, const float *b, uint32_t n);
float pm_l2sq_bounded_avx2(const float *a, const float *b, uint32_t n, float bound);

/* Require AVX-512F. */
float pm_l2sq_avx512(const float *a, const float *b, uint32_t n);
float pm_dot_avx512(const float *a, const float *b, uint32_t n);
float pm_l2sq_bounded_avx512(const float *a, const float *b, uint32_t n, float bound);
#endif

#endif
