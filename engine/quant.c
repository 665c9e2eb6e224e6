/* SPDX-License-Identifier: MIT
 *
 * quant.c — element types: encoding, decoding, the scalar reference kernels
 * over codes, their run-time dispatch, and a query's codes (the distance
 * over codes is inline in quant.h).
 *
 * The f16 conversion is done in integer arithmetic (no F16C here), so the
 * scalar set and the encoder run on any CPU and round exactly as F16C's
 * round-to-nearest-even does; the tests hold the SIMD sets to this one.
 */
#include "quant.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "common.h"
#include "quant_impl.h"

#ifdef PM_QUANT_X86
#include <cpuid.h>
#endif

#define F16_MAX_BITS 0x7BFFu /* 65504: f16 saturates here rather than overflow */

/* ---------------------------------------------------------------- sizes */

uint32_t pm_quant_code_bytes(uint8_t dtype, uint32_t dim)
{
	switch (dtype) {
	case PM_DTYPE_F16:
		return 2u * dim;
	case PM_DTYPE_Q8:
		return dim;
	case PM_DTYPE_BIN:
		return 8u * ((dim + 63u) / 64u);
	default:
		return 4u * dim;
	}
}

uint32_t pm_quant_payload_bytes(const struct pm_collection_params *p)
{
	if (p->dtype == PM_DTYPE_F32)
		return 4u * p->dim;
	return (uint32_t)pm_align_up(pm_quant_code_bytes(p->dtype, p->dim),
				     p->rerank ? PM_QUANT_RERANK_ALIGN_BYTES
					       : PM_QUANT_CODE_ALIGN_BYTES);
}

uint32_t pm_quant_kept_bytes(const struct pm_collection_params *p)
{
	return p->dtype != PM_DTYPE_F32 && p->rerank ? 4u * p->dim : 0u;
}

uint32_t pm_quant_stored_bytes(const struct pm_collection_params *p)
{
	return pm_quant_payload_bytes(p) + pm_quant_kept_bytes(p);
}

/* ---------------------------------------------------------------- f16 */

uint16_t pm_f16_from_f32(float x)
{
	uint32_t b;
	memcpy(&b, &x, 4);
	uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
	uint32_t a = b & 0x7FFFFFFFu;
	if (a >= 0x477FF000u) /* rounds to >= 65520: saturate (inputs are finite) */
		return sign | F16_MAX_BITS;
	if (a < 0x38800000u) { /* below 2^-14: a subnormal half (or zero) */
		if (a < 0x33000000u) /* below half the smallest subnormal */
			return sign;
		uint32_t m = (a & 0x007FFFFFu) | 0x00800000u;
		uint32_t shift = 126u - (a >> 23); /* 14..24 */
		uint32_t h = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
		h += rem > half || (rem == half && (h & 1u));
		return sign | (uint16_t)h;
	}
	uint32_t h = ((a >> 13) - (112u << 10)); /* rebias 127 -> 15 */
	uint32_t rem = a & 0x1FFFu;
	h += rem > 0x1000u || (rem == 0x1000u && (h & 1u));
	return sign | (uint16_t)(h > F16_MAX_BITS ? F16_MAX_BITS : h);
}

float pm_f32_from_f16(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu, b;
	if (e == 0) {
		float f = ldexpf((float)m, -24); /* zero or subnormal */
		return sign ? -f : f;
	}
	if (e == 31)
		b = sign | 0x7F800000u | (m << 13);
	else
		b = sign | ((e + 112u) << 23) | (m << 13);
	float f;
	memcpy(&f, &b, 4);
	return f;
}

/* ---------------------------------------------------------------- encode / decode */

static void encode_q8(const float *x, uint32_t dim, int8_t *code, float *scale)
{
	float amax = 0.0f;
	for (uint32_t i = 0; i < dim; i++)
		amax = fmaxf(amax, fabsf(x[i]));
	*scale = amax / (float)PM_Q8_CODE_MAX;
	float inv = amax > 0.0f ? (float)PM_Q8_CODE_MAX / amax : 0.0f;
	for (uint32_t i = 0; i < dim; i++) {
		float v = nearbyintf(x[i] * inv);
		v = fminf(fmaxf(v, -(float)PM_Q8_CODE_MAX), (float)PM_Q8_CODE_MAX);
		code[i] = (int8_t)v;
	}
}

static void encode_bin(const float *x, uint32_t dim, uint64_t *words)
{
	memset(words, 0, pm_quant_code_bytes(PM_DTYPE_BIN, dim));
	for (uint32_t i = 0; i < dim; i++)
		if (x[i] > 0.0f)
			words[i / 64] |= 1ull << (i % 64);
}

void pm_quant_encode(uint8_t dtype, const float *x, uint32_t dim, uint8_t *code, float *scale)
{
	*scale = 0.0f;
	switch (dtype) {
	case PM_DTYPE_F16:
		for (uint32_t i = 0; i < dim; i++) {
			uint16_t h = pm_f16_from_f32(x[i]);
			memcpy(code + 2u * i, &h, 2);
		}
		return;
	case PM_DTYPE_Q8:
		encode_q8(x, dim, (int8_t *)code, scale);
		return;
	case PM_DTYPE_BIN:
		encode_bin(x, dim, (uint64_t *)code);
		return;
	default:
		memcpy(code, x, 4u * (size_t)dim);
	}
}

void pm_quant_decode(uint8_t dtype, const uint8_t *code, float scale, float norm, uint32_t dim,
		     float *out)
{
	switch (dtype) {
	case PM_DTYPE_F16:
		for (uint32_t i = 0; i < dim; i++) {
			uint16_t h;
			memcpy(&h, code + 2u * i, 2);
			out[i] = pm_f32_from_f16(h);
		}
		return;
	case PM_DTYPE_Q8:
		for (uint32_t i = 0; i < dim; i++)
			out[i] = (float)(int8_t)code[i] * scale;
		return;
	case PM_DTYPE_BIN: {
		float m = norm / sqrtf((float)dim);
		for (uint32_t i = 0; i < dim; i++)
			out[i] = (code[i / 8] >> (i % 8)) & 1u ? m : -m;
		return;
	}
	default:
		memcpy(out, code, 4u * (size_t)dim);
	}
}

/* ---------------------------------------------------------------- scalar kernels */

int32_t pm_dot_q8_scalar(const int8_t *a, const int8_t *b, uint32_t n)
{
	int32_t s = 0;
	for (uint32_t i = 0; i < n; i++)
		s += (int32_t)a[i] * b[i];
	return s;
}

uint32_t pm_hamming_scalar(const uint64_t *a, const uint64_t *b, uint32_t words)
{
	uint32_t s = 0;
	for (uint32_t i = 0; i < words; i++)
		s += (uint32_t)__builtin_popcountll(a[i] ^ b[i]);
	return s;
}

float pm_l2sq_f16_scalar(const uint16_t *a, const uint16_t *b, uint32_t n)
{
	float s = 0.0f;
	for (uint32_t i = 0; i < n; i++) {
		float d = pm_f32_from_f16(a[i]) - pm_f32_from_f16(b[i]);
		s += d * d;
	}
	return s;
}

float pm_dot_f16_scalar(const uint16_t *a, const uint16_t *b, uint32_t n)
{
	float s = 0.0f;
	for (uint32_t i = 0; i < n; i++)
		s += pm_f32_from_f16(a[i]) * pm_f32_from_f16(b[i]);
	return s;
}

/* ---------------------------------------------------------------- dispatch */

static const struct pm_qkernels qkernel_sets[PM_ISA_COUNT] = {
	[PM_ISA_SCALAR] = { "scalar", PM_ISA_SCALAR, pm_dot_q8_scalar, pm_hamming_scalar,
			    pm_l2sq_f16_scalar, pm_dot_f16_scalar },
#ifdef PM_QUANT_X86
	[PM_ISA_AVX2] = { "avx2", PM_ISA_AVX2, pm_dot_q8_avx2, pm_hamming_avx2, pm_l2sq_f16_avx2,
			  pm_dot_f16_avx2 },
	[PM_ISA_AVX512] = { "avx512", PM_ISA_AVX512, pm_dot_q8_avx512, pm_hamming_avx512,
			    pm_l2sq_f16_avx512, pm_dot_f16_avx512 },
#endif
};

#ifdef PM_QUANT_X86
/* F16C (CPUID leaf 1, ECX bit 29): asked directly, as clang's
 * __builtin_cpu_supports does not know the name. */
static bool cpu_has_f16c(void)
{
	unsigned a, b, c, d;
	return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#endif

static bool cpu_supports(enum pm_isa isa)
{
	if (isa == PM_ISA_SCALAR)
		return true;
#ifdef PM_QUANT_X86
	__builtin_cpu_init();
	if (isa == PM_ISA_AVX2)
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
		       cpu_has_f16c() && __builtin_cpu_supports("popcnt");
	if (isa == PM_ISA_AVX512)
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("avx512vnni") &&
		       __builtin_cpu_supports("avx512vpopcntdq");
#endif
	return false;
}

const struct pm_qkernels *pm_qkernels_for(enum pm_isa isa)
{
	if ((unsigned)isa >= PM_ISA_COUNT || !cpu_supports(isa))
		return NULL;
	const struct pm_qkernels *k = &qkernel_sets[isa];
	return k->dot_q8 != NULL ? k : NULL;
}

static _Atomic(const struct pm_qkernels *) best_qkernels;

const struct pm_qkernels *pm_qkernels_best(void)
{
	const struct pm_qkernels *k = atomic_load_explicit(&best_qkernels, memory_order_acquire);
	if (k != NULL)
		return k;
	k = &qkernel_sets[PM_ISA_SCALAR];
	for (int isa = PM_ISA_COUNT - 1; isa > PM_ISA_SCALAR; isa--) {
		const struct pm_qkernels *x = pm_qkernels_for((enum pm_isa)isa);
		if (x != NULL) {
			k = x;
			break;
		}
	}
	atomic_store_explicit(&best_qkernels, k, memory_order_release);
	return k;
}

/* ---------------------------------------------------------------- queries */

void pm_quant_query(const struct pm_collection_params *p, const float *q, uint8_t *buf,
		    struct pm_qref *out)
{
	out->code = buf;
	out->norm = pm_norm(q, p->dim);
	pm_quant_encode(p->dtype, q, p->dim, buf, &out->scale);
}
