/* SPDX-License-Identifier: MIT
 *
 * distance_avx2.c — l2sq and dot with AVX2 + FMA, 8 floats per register.
 *
 * The file is built without -mavx2: each function carries
 * target("avx2,fma"), so it may only be called after pm_kernels_for() has
 * checked the CPU. The order of the additions depends only on n, never on
 * the addresses, so a distance is bit-identical wherever the vectors sit
 * (another shard, a restored snapshot); the engine stores vector payloads
 * 32-byte aligned at least (64 when they are whole cache lines), so loads of
 * b do not split cache lines. The main loop takes 32 floats per
 * step into four independent accumulators, enough to hide the FMA latency;
 * the remainder is taken 8 floats at a time and the last n mod 8 with masked
 * loads. _mm256_maskload_ps neither reads nor faults on masked-off lanes, so
 * nothing outside a[0..n-1] / b[0..n-1] is touched. The accumulators are
 * summed once, at the end.
 */
#include "distance_impl.h"

#ifdef PM_DISTANCE_X86

#include <immintrin.h>

#define PM_AVX2_TARGET __attribute__((target("avx2,fma")))

/* Floats per AVX2 register, and per step of the unrolled main loop. */
#define AVX2_LANES 8u
#define AVX2_STEP_FLOATS (4u * AVX2_LANES)

/* Lanes below rem (0..8) set, the rest clear. */
static inline PM_AVX2_TARGET __m256i lanes_mask(uint32_t rem)
{
	const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem), lane);
}

static inline PM_AVX2_TARGET float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static inline PM_AVX2_TARGET __m256 l2_step(__m256 acc, const float *a, const float *b)
{
	__m256 d = _mm256_sub_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b));
	return _mm256_fmadd_ps(d, d, acc);
}

static inline PM_AVX2_TARGET __m256 dot_step(__m256 acc, const float *a, const float *b)
{
	return _mm256_fmadd_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b), acc);
}

static inline PM_AVX2_TARGET __m256 l2_masked(__m256 acc, const float *a, const float *b,
					      __m256i m)
{
	__m256 d = _mm256_sub_ps(_mm256_maskload_ps(a, m), _mm256_maskload_ps(b, m));
	return _mm256_fmadd_ps(d, d, acc);
}

static inline PM_AVX2_TARGET __m256 dot_masked(__m256 acc, const float *a, const float *b,
					       __m256i m)
{
	return _mm256_fmadd_ps(_mm256_maskload_ps(a, m), _mm256_maskload_ps(b, m), acc);
}

/* l2sq, or (check) l2sq_bounded: one body, so that both add in one order. */
static inline PM_AVX2_TARGET float l2sq_avx2(const float *a, const float *b, uint32_t n,
					     float bound, const bool check)
{
	_Static_assert(PM_L2_BOUND_CHECK_FLOATS % AVX2_STEP_FLOATS == 0, "a look ends a step");
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	__m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
	uint32_t i = 0;
	for (; i + AVX2_STEP_FLOATS <= n; i += AVX2_STEP_FLOATS) {
		acc0 = l2_step(acc0, a + i, b + i);
		acc1 = l2_step(acc1, a + i + 8, b + i + 8);
		acc2 = l2_step(acc2, a + i + 16, b + i + 16);
		acc3 = l2_step(acc3, a + i + 24, b + i + 24);
		if (check && (i + AVX2_STEP_FLOATS) % PM_L2_BOUND_CHECK_FLOATS == 0) {
			float part = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1),
							_mm256_add_ps(acc2, acc3)));
			if (part > bound)
				return part;
		}
	}
	for (; i + AVX2_LANES <= n; i += AVX2_LANES)
		acc0 = l2_step(acc0, a + i, b + i);
	if (i < n)
		acc1 = l2_masked(acc1, a + i, b + i, lanes_mask(n - i));
	return hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

PM_AVX2_TARGET float pm_l2sq_avx2(const float *a, const float *b, uint32_t n)
{
	return l2sq_avx2(a, b, n, 0.0f, false);
}

PM_AVX2_TARGET float pm_l2sq_bounded_avx2(const float *a, const float *b, uint32_t n, float bound)
{
	return l2sq_avx2(a, b, n, bound, true);
}

PM_AVX2_TARGET float pm_dot_avx2(const float *a, const float *b, uint32_t n)
{
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	__m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
	uint32_t i = 0;
	for (; i + AVX2_STEP_FLOATS <= n; i += AVX2_STEP_FLOATS) {
		acc0 = dot_step(acc0, a + i, b + i);
		acc1 = dot_step(acc1, a + i + 8, b + i + 8);
		acc2 = dot_step(acc2, a + i + 16, b + i + 16);
		acc3 = dot_step(acc3, a + i + 24, b + i + 24);
	}
	for (; i + AVX2_LANES <= n; i += AVX2_LANES)
		acc0 = dot_step(acc0, a + i, b + i);
	if (i < n)
		acc1 = dot_masked(acc1, a + i, b + i, lanes_mask(n - i));
	return hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

#else

/* Not x86: no AVX2 kernels; keep the translation unit non-empty. */
typedef int pm_distance_avx2_absent;

#endif
