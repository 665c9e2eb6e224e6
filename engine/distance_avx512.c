/* SPDX-License-Identifier: MIT
 *
 * distance_avx512.c — l2sq and dot with AVX-512F, 16 floats per register.
 *
 * The file is built without -mavx512f: each function carries
 * target("avx512f"), so it may only be called after pm_kernels_for() has
 * checked the CPU. The order of the additions depends only on n, never on
 * the addresses, so a distance is bit-identical wherever the vectors sit
 * (another shard, a restored snapshot). An unaligned 64-byte load splits two
 * cache lines (up to 1.5x slower when streaming, measured on Zen 5), so the
 * engine stores a vector payload of whole cache lines 64-byte aligned
 * instead (one that ends inside a line, 100 floats, may start on 32 bytes:
 * vector.c). The main loop takes 64
 * floats per step into four independent accumulators; the remainder is taken
 * 16 floats at a time and the last n mod 16 with masked loads. Masked-off
 * lanes of _mm512_maskz_loadu_ps read as zero and cannot fault, so nothing
 * outside a[0..n-1] / b[0..n-1] is touched. The accumulators are summed once,
 * at the end.
 */
#include "distance_impl.h"

#ifdef PM_DISTANCE_X86

#include <immintrin.h>

#define PM_AVX512_TARGET __attribute__((target("avx512f")))

/* Floats per AVX-512 register, and per step of the unrolled main loop. */
#define AVX512_LANES 16u
#define AVX512_STEP_FLOATS (4u * AVX512_LANES)

/* Lanes below rem (0..16) set, the rest clear. */
static inline __mmask16 lanes_mask(uint32_t rem)
{
	return (__mmask16)((1u << rem) - 1u);
}

static inline PM_AVX512_TARGET __m512 l2_step(__m512 acc, const float *a, const float *b)
{
	__m512 d = _mm512_sub_ps(_mm512_loadu_ps(a), _mm512_loadu_ps(b));
	return _mm512_fmadd_ps(d, d, acc);
}

static inline PM_AVX512_TARGET __m512 dot_step(__m512 acc, const float *a, const float *b)
{
	return _mm512_fmadd_ps(_mm512_loadu_ps(a), _mm512_loadu_ps(b), acc);
}

static inline PM_AVX512_TARGET __m512 l2_masked(__m512 acc, const float *a, const float *b,
						__mmask16 m)
{
	__m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a), _mm512_maskz_loadu_ps(m, b));
	return _mm512_fmadd_ps(d, d, acc);
}

static inline PM_AVX512_TARGET __m512 dot_masked(__m512 acc, const float *a, const float *b,
						 __mmask16 m)
{
	return _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a), _mm512_maskz_loadu_ps(m, b), acc);
}

/* l2sq, or (check) l2sq_bounded: one body, so that both add in one order. */
static inline PM_AVX512_TARGET float l2sq_avx512(const float *a, const float *b, uint32_t n,
						 float bound, const bool check)
{
	_Static_assert(PM_L2_BOUND_CHECK_FLOATS % AVX512_STEP_FLOATS == 0, "a look ends a step");
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
	__m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
	uint32_t i = 0;
	for (; i + AVX512_STEP_FLOATS <= n; i += AVX512_STEP_FLOATS) {
		acc0 = l2_step(acc0, a + i, b + i);
		acc1 = l2_step(acc1, a + i + 16, b + i + 16);
		acc2 = l2_step(acc2, a + i + 32, b + i + 32);
		acc3 = l2_step(acc3, a + i + 48, b + i + 48);
		if (check && (i + AVX512_STEP_FLOATS) % PM_L2_BOUND_CHECK_FLOATS == 0) {
			float part = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1),
									_mm512_add_ps(acc2, acc3)));
			if (part > bound)
				return part;
		}
	}
	for (; i + AVX512_LANES <= n; i += AVX512_LANES)
		acc0 = l2_step(acc0, a + i, b + i);
	if (i < n)
		acc1 = l2_masked(acc1, a + i, b + i, lanes_mask(n - i));
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1),
						  _mm512_add_ps(acc2, acc3)));
}

PM_AVX512_TARGET float pm_l2sq_avx512(const float *a, const float *b, uint32_t n)
{
	return l2sq_avx512(a, b, n, 0.0f, false);
}

PM_AVX512_TARGET float pm_l2sq_bounded_avx512(const float *a, const float *b, uint32_t n,
					      float bound)
{
	return l2sq_avx512(a, b, n, bound, true);
}

PM_AVX512_TARGET float pm_dot_avx512(const float *a, const float *b, uint32_t n)
{
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
	__m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
	uint32_t i = 0;
	for (; i + AVX512_STEP_FLOATS <= n; i += AVX512_STEP_FLOATS) {
		acc0 = dot_step(acc0, a + i, b + i);
		acc1 = dot_step(acc1, a + i + 16, b + i + 16);
		acc2 = dot_step(acc2, a + i + 32, b + i + 32);
		acc3 = dot_step(acc3, a + i + 48, b + i + 48);
	}
	for (; i + AVX512_LANES <= n; i += AVX512_LANES)
		acc0 = dot_step(acc0, a + i, b + i);
	if (i < n)
		acc1 = dot_masked(acc1, a + i, b + i, lanes_mask(n - i));
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1),
						  _mm512_add_ps(acc2, acc3)));
}

#else

/* Not x86: no AVX-512 kernels; keep the translation unit non-empty. */
typedef int pm_distance_avx512_absent;

#endif
