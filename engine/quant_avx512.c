/* SPDX-License-Identifier: MIT
 *
 * quant_avx512.c — code kernels with AVX-512 (F, BW, VNNI, VPOPCNTDQ).
 *
 * int8 dot: 64 codes per step with VPDPBUSD, which multiplies unsigned by
 * signed bytes: |a| (codes are -127..127, so |a| <= 127) times b with its
 * sign flipped where a is negative (b is never -128, so the flip cannot
 * overflow), summed four at a time into int32 without saturation — the exact
 * integer dot product. Hamming: VPOPCNTQ on 8 words per step. Tails use
 * masked loads, which neither read nor fault on masked-off bytes. f16: 16
 * halves per step widened with VCVTPH2PS, the tail the scalar way. Built
 * without -mavx512*: each function carries its target and is reached only
 * through pm_qkernels_for().
 */
#include "quant_impl.h"

#ifdef PM_QUANT_X86

#include <immintrin.h>

#define PM_AVX512Q_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni,avx512vpopcntdq")))

#define Q8_STEP_BYTES 64u
#define HAM_STEP_WORDS 8u
#define F16_STEP 16u

static inline PM_AVX512Q_TARGET __m512i q8_step(__m512i acc, __m512i va, __m512i vb)
{
	__mmask64 neg = _mm512_movepi8_mask(va);
	__m512i sb = _mm512_mask_sub_epi8(vb, neg, _mm512_setzero_si512(), vb);
	return _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(va), sb);
}

PM_AVX512Q_TARGET int32_t pm_dot_q8_avx512(const int8_t *a, const int8_t *b, uint32_t n)
{
	__m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
	uint32_t i = 0;
	for (; i + 2 * Q8_STEP_BYTES <= n; i += 2 * Q8_STEP_BYTES) {
		acc0 = q8_step(acc0, _mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
		acc1 = q8_step(acc1, _mm512_loadu_si512(a + i + Q8_STEP_BYTES),
			       _mm512_loadu_si512(b + i + Q8_STEP_BYTES));
	}
	for (; i < n; i += Q8_STEP_BYTES) {
		uint32_t rem = n - i;
		__mmask64 m = rem >= Q8_STEP_BYTES ? ~(__mmask64)0 : (((__mmask64)1 << rem) - 1);
		acc0 = q8_step(acc0, _mm512_maskz_loadu_epi8(m, a + i), _mm512_maskz_loadu_epi8(m, b + i));
	}
	return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

PM_AVX512Q_TARGET uint32_t pm_hamming_avx512(const uint64_t *a, const uint64_t *b, uint32_t words)
{
	__m512i acc = _mm512_setzero_si512();
	for (uint32_t i = 0; i < words; i += HAM_STEP_WORDS) {
		uint32_t rem = words - i;
		__mmask8 m = rem >= HAM_STEP_WORDS ? (__mmask8)0xFF : (__mmask8)((1u << rem) - 1);
		__m512i x = _mm512_xor_si512(_mm512_maskz_loadu_epi64(m, a + i),
					     _mm512_maskz_loadu_epi64(m, b + i));
		acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
	}
	return (uint32_t)_mm512_reduce_add_epi64(acc);
}

static inline PM_AVX512Q_TARGET __m512 load_f16(const uint16_t *p)
{
	return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

PM_AVX512Q_TARGET float pm_l2sq_f16_avx512(const uint16_t *a, const uint16_t *b, uint32_t n)
{
	__m512 acc = _mm512_setzero_ps();
	uint32_t i = 0;
	for (; i + F16_STEP <= n; i += F16_STEP) {
		__m512 d = _mm512_sub_ps(load_f16(a + i), load_f16(b + i));
		acc = _mm512_fmadd_ps(d, d, acc);
	}
	return _mm512_reduce_add_ps(acc) + pm_l2sq_f16_scalar(a + i, b + i, n - i);
}

PM_AVX512Q_TARGET float pm_dot_f16_avx512(const uint16_t *a, const uint16_t *b, uint32_t n)
{
	__m512 acc = _mm512_setzero_ps();
	uint32_t i = 0;
	for (; i + F16_STEP <= n; i += F16_STEP)
		acc = _mm512_fmadd_ps(load_f16(a + i), load_f16(b + i), acc);
	return _mm512_reduce_add_ps(acc) + pm_dot_f16_scalar(a + i, b + i, n - i);
}

#else

typedef int pm_quant_avx512_absent;

#endif
