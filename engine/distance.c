/* SPDX-License-Identifier: MIT
 *
 * distance.c — the scalar reference kernels and the run-time dispatch.
 *
 * The scalar kernels keep PM_SCALAR_LANES independent partial sums, so the
 * compiler may vectorise them without -ffast-math and the result does not hang
 * on one long dependency chain; the tail (n mod PM_SCALAR_LANES) is summed
 * separately. The tests treat these kernels as the reference for the SIMD ones.
 *
 * Dispatch: pm_kernels_for() asks the CPU (__builtin_cpu_supports) each time;
 * pm_kernels_best() asks once and caches the answer in an atomic pointer. The
 * init is idempotent, so racing first callers just store the same pointer.
 */
#include "distance.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "distance_impl.h"

/* Independent partial sums in the scalar kernels: 8 covers the FP-add latency
 * of current cores and maps onto two SSE registers. */
#define PM_SCALAR_LANES 8u

/* ---------------------------------------------------------------- scalar kernels */

static float sum_lanes(const float acc[PM_SCALAR_LANES])
{
	float s = 0.0f;
	for (uint32_t j = 0; j < PM_SCALAR_LANES; j++)
		s += acc[j];
	return s;
}

/* l2sq, or (check) l2sq_bounded: one body, so that both add in one order. */
static inline float l2sq_scalar(const float *a, const float *b, uint32_t n, float bound,
				const bool check)
{
	_Static_assert(PM_L2_BOUND_CHECK_FLOATS % PM_SCALAR_LANES == 0, "a look ends a step");
	float acc[PM_SCALAR_LANES] = { 0 };
	size_t i = 0; /* size_t: a 32-bit i + j could wrap, which blocks vectorising */
	for (; i + PM_SCALAR_LANES <= n; i += PM_SCALAR_LANES) {
		for (size_t j = 0; j < PM_SCALAR_LANES; j++) {
			float d = a[i + j] - b[i + j];
			acc[j] += d * d;
		}
		if (check && (i + PM_SCALAR_LANES) % PM_L2_BOUND_CHECK_FLOATS == 0) {
			float part = sum_lanes(acc);
			if (part > bound)
				return part;
		}
	}
	float tail = 0.0f;
	for (; i < n; i++) {
		float d = a[i] - b[i];
		tail += d * d;
	}
	return sum_lanes(acc) + tail;
}

float pm_l2sq_scalar(const float *a, const float *b, uint32_t n)
{
	return l2sq_scalar(a, b, n, 0.0f, false);
}

float pm_l2sq_bounded_scalar(const float *a, const float *b, uint32_t n, float bound)
{
	return l2sq_scalar(a, b, n, bound, true);
}

float pm_dot_scalar(const float *a, const float *b, uint32_t n)
{
	float acc[PM_SCALAR_LANES] = { 0 };
	size_t i = 0;
	for (; i + PM_SCALAR_LANES <= n; i += PM_SCALAR_LANES) {
		for (size_t j = 0; j < PM_SCALAR_LANES; j++)
			acc[j] += a[i + j] * b[i + j];
	}
	float tail = 0.0f;
	for (; i < n; i++)
		tail += a[i] * b[i];
	return sum_lanes(acc) + tail;
}

/* ---------------------------------------------------------------- dispatch */

static const struct pm_kernels kernel_sets[PM_ISA_COUNT] = {
	[PM_ISA_SCALAR] = { "scalar", PM_ISA_SCALAR, pm_l2sq_scalar, pm_dot_scalar,
			    pm_l2sq_bounded_scalar },
#ifdef PM_DISTANCE_X86
	[PM_ISA_AVX2] = { "avx2", PM_ISA_AVX2, pm_l2sq_avx2, pm_dot_avx2, pm_l2sq_bounded_avx2 },
	[PM_ISA_AVX512] = { "avx512", PM_ISA_AVX512, pm_l2sq_avx512, pm_dot_avx512,
			    pm_l2sq_bounded_avx512 },
#endif
};

static bool cpu_supports(enum pm_isa isa)
{
	if (isa == PM_ISA_SCALAR)
		return true;
#ifdef PM_DISTANCE_X86
	/* Only needed before constructors run; cheap and harmless after. */
	__builtin_cpu_init();
	if (isa == PM_ISA_AVX2)
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	if (isa == PM_ISA_AVX512)
		return __builtin_cpu_supports("avx512f");
#endif
	return false;
}

const struct pm_kernels *pm_kernels_for(enum pm_isa isa)
{
	if ((unsigned)isa >= PM_ISA_COUNT || !cpu_supports(isa))
		return NULL;
	const struct pm_kernels *k = &kernel_sets[isa];
	return k->l2sq != NULL ? k : NULL;
}

static _Atomic(const struct pm_kernels *) best_kernels;

static const struct pm_kernels *choose_best(void)
{
	for (int isa = PM_ISA_COUNT - 1; isa > PM_ISA_SCALAR; isa--) {
		const struct pm_kernels *k = pm_kernels_for((enum pm_isa)isa);
		if (k != NULL)
			return k;
	}
	return &kernel_sets[PM_ISA_SCALAR];
}

const struct pm_kernels *pm_kernels_best(void)
{
	const struct pm_kernels *k =
		atomic_load_explicit(&best_kernels, memory_order_acquire);
	if (k == NULL) {
		k = choose_best();
		atomic_store_explicit(&best_kernels, k, memory_order_release);
	}
	return k;
}

float pm_norm(const float *a, uint32_t n)
{
	return sqrtf(pm_kernels_best()->dot(a, a, n));
}
