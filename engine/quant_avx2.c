/* SPDX-License-Identifier: MIT
 *
 * quant_avx2.c — code kernels with AVX2 (+ FMA, F16C, POPCNT).
 *
 * int8 dot: 32 codes per step. Codes lie in -127..127, so |a| fits an
 * unsigned byte and |a_i| * (b_i signed by a_i) pairs sum to at most
 * 2 x 127 x 127 = 32258: _mm256_maddubs_epi16 cannot saturate, and the
 * result is the exact integer dot product. Hamming: POPCNT on whole words,
 * four independent sums. f16: F16C widens 8 halves to f32 per step; FMA
 * accumulates. Tails (n mod the step) run the scalar way, so nothing beyond
 * a[0..n-1] / b[0..n-1] is read. Built without -mavx2: each function carries
 * its target and is reached only through pm_qkernels_for().
 */
#include "quant_impl.h"

#ifdef PM_QUANT_X86

#include <immintrin.h>

#include "quant.h"

#define PM_AVX2Q_TARGET __attribute__((target("avx2,fma,f16c,popcnt")))

#define Q8_STEP_BYTES 32u
#define F16_STEP 8u

static inline PM_AVX2Q_TARGET int32_t hsum_epi32(__m256i v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
	return _mm_cvtsi128_si32(s);
}

static inline PM_AVX2Q_TARGET float hsum_ps(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

PM_AVX2Q_TARGET int32_t pm_dot_q8_avx2(const int8_t *a, const int8_t *b, uint32_t n)
{
	const __m256i ones = _mm256_set1_epi16(1);
	__m256i acc = _mm256_setzero_si256();
	uint32_t i = 0;
	for (; i + Q8_STEP_BYTES <= n; i += Q8_STEP_BYTES) {
		__m256i va = _mm256_loadu_si256((const __m256i *)(a + i));
		__m256i vb = _mm256_loadu_si256((const __m256i *)(b + i));
		__m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(va, va), _mm256_sign_epi8(vb, va));
		acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
	}
	int32_t s = hsum_epi32(acc);
	for (; i < n; i++)
		s += (int32_t)a[i] * b[i];
	return s;
}

PM_AVX2Q_TARGET uint32_t pm_hamming_avx2(const uint64_t *a, const uint64_t *b, uint32_t words)
{
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	uint32_t i = 0;
	for (; i + 4 <= words; i += 4) {
		s0 += (uint64_t)_mm_popcnt_u64(a[i] ^ b[i]);
		s1 += (uint64_t)_mm_popcnt_u64(a[i + 1] ^ b[i + 1]);
		s2 += (uint64_t)_mm_popcnt_u64(a[i + 2] ^ b[i + 2]);
		s3 += (uint64_t)_mm_popcnt_u64(a[i + 3] ^ b[i + 3]);
	}
	for (; i < words; i++)
		s0 += (uint64_t)_mm_popcnt_u64(a[i] ^ b[i]);
	return (uint32_t)(s0 + s1 + s2 + s3);
}

static inline PM_AVX2Q_TARGET __m256 load_f16(const uint16_t *p)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

PM_AVX2Q_TARGET float pm_l2sq_f16_avx2(const uint16_t *a, const uint16_t *b, uint32_t n)
{
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	uint32_t i = 0;
	for (; i + 2 * F16_STEP <= n; i += 2 * F16_STEP) {
		__m256 d0 = _mm256_sub_ps(load_f16(a + i), load_f16(b + i));
		__m256 d1 = _mm256_sub_ps(load_f16(a + i + F16_STEP), load_f16(b + i + F16_STEP));
		acc0 = _mm256_fmadd_ps(d0, d0, acc0);
		acc1 = _mm256_fmadd_ps(d1, d1, acc1);
	}
	float s = hsum_ps(_mm256_add_ps(acc0, acc1));
	return s + pm_l2sq_f16_scalar(a + i, b + i, n - i);
}

PM_AVX2Q_TARGET float pm_dot_f16_avx2(const uint16_t *a, const uint16_t *b, uint32_t n)
{
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	uint32_t i = 0;
	for (; i + 2 * F16_STEP <= n; i += 2 * F16_STEP) {
		acc0 = _mm256_fmadd_ps(load_f16(a + i), load_f16(b + i), acc0);
		acc1 = _mm256_fmadd_ps(load_f16(a + i + F16_STEP), load_f16(b + i + F16_STEP), acc1);
	}
	float s = hsum_ps(_mm256_add_ps(acc0, acc1));
	return s + pm_dot_f16_scalar(a + i, b + i, n - i);
}

#else

typedef int pm_quant_avx2_absent;

#endif
