/* SPDX-License-Identifier: MIT
 *
 * distance.h — the distance kernels of the engine, chosen at run time.
 *
 * Each kernel set holds two functions over float vectors of n components:
 * l2sq = sum (a_i - b_i)^2 and dot = sum a_i * b_i. The scalar set is the
 * reference and exists on every build; the AVX2+FMA and AVX-512F sets exist on
 * x86 builds and are handed out only when the CPU running us supports them.
 *
 * Invariants every kernel keeps:
 *   - a and b need no alignment, and the result does not depend on it: the
 *     order of additions is a function of n alone, so one set gives
 *     bit-identical distances wherever the vectors live;
 *   - any n from 0 to PM_DIM_MAX works, and no kernel reads a[n] or b[n] or
 *     beyond (tails use masked loads, which cannot fault on masked-off lanes);
 *   - results differ between sets only by float summation order.
 *
 * Aligned inputs are faster (a 64-byte load across two cache lines costs up to
 * 1.5x when streaming): the engine keeps the query and every stored payload of
 * whole cache lines 64-byte aligned (a payload ending inside a line, such as
 * 100 floats, may start on 32 bytes: vector.c).
 */
#ifndef POMAI_ENGINE_DISTANCE_H
#define POMAI_ENGINE_DISTANCE_H

#include <stdint.h>

typedef float (*pm_dist_fn)(const float *a, const float *b, uint32_t n);
typedef float (*pm_dist_bounded_fn)(const float *a, const float *b, uint32_t n, float bound);

/* Floats between two looks at a bounded L2's partial sum: a look costs a
 * horizontal sum (about one 64-float step of AVX-512), and stopping one look
 * earlier saves this many floats' loads (two KiB of the pair at 256). */
#define PM_L2_BOUND_CHECK_FLOATS 256u

enum pm_isa { PM_ISA_SCALAR = 0, PM_ISA_AVX2 = 1, PM_ISA_AVX512 = 2, PM_ISA_COUNT };

struct pm_kernels {
	const char *name; /* "scalar", "avx2", "avx512" */
	enum pm_isa isa;
	pm_dist_fn l2sq;  /* sum (a_i - b_i)^2 */
	pm_dist_fn dot;   /* sum a_i * b_i */
	/* l2sq, but it may stop once its partial sum is above bound and return
	 * that partial sum (still above bound). A result not above bound is
	 * l2sq's, bit for bit: the same additions in the same order, and a
	 * partial sum of squares never exceeds the whole (each lane only adds
	 * values >= 0, and rounding to nearest is monotone), so "above bound"
	 * is decided exactly as with l2sq. For scans that only keep what is
	 * nearer than a bound (the exact scan's top k, once full: knn.c). The
	 * HNSW search does not use it: its candidates are near the query by
	 * construction, so few stop early, and the looks cost more than they
	 * save (perf/bench_bound: 0.96-1.00x on Fashion-MNIST). */
	pm_dist_bounded_fn l2sq_bounded;
};

/* The best kernel set this CPU supports. Chosen once, at the first call, with
 * __builtin_cpu_supports; safe to call from several threads at once (every
 * racing caller computes and stores the same pointer). */
const struct pm_kernels *pm_kernels_best(void);

/* The kernel set for one ISA, or NULL when the CPU or the build lacks it.
 * pm_kernels_for(PM_ISA_SCALAR) is never NULL. */
const struct pm_kernels *pm_kernels_for(enum pm_isa isa);

/* L2 norm with the best kernels: sqrtf(dot(a, a, n)). */
float pm_norm(const float *a, uint32_t n);

#endif
