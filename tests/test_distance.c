/* SPDX-License-Identifier: MIT
 *
 * test_distance.c — CUnit suite for engine/distance.c and its SIMD kernels.
 *
 * Every kernel set the CPU supports is run against a double-precision
 * reference and against the scalar set, on random data for every n in
 * 1..PM_N_SMALL_MAX and on larger odd sizes, through pointers offset by one
 * float, then through every alignment of a and b (the SIMD kernels peel a head
 * to align b), always fenced by NaN sentinels (a kernel that reads one float
 * too many or too few gives NaN or a wrong sum). Small integer vectors give exact sums, so
 * there the sets must agree to the bit. A guard page right after the data
 * catches any read past the end, masked or not. The dispatch is checked
 * against the CPU's own answer from __builtin_cpu_supports.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cu_main.h"
#include "distance.h"

/* Every n from 1 to this is tested, then the sizes in big_sizes[]. */
#define PM_N_SMALL_MAX 300u
/* NaN floats kept after each test vector, more than one SIMD register. */
#define PM_SENTINEL_FLOATS 16u
/* Vectors start 0..PM_OFFSET_FLOATS_MAX floats after a 64-byte boundary. */
#define PM_OFFSET_FLOATS_MAX 16u
/* Float summation in another order: error relative to the sum of |terms|. */
#define PM_TOL_REL 1e-5
#define PM_TOL_ABS 1e-6

static const uint32_t big_sizes[] = { 511, 512, 784, 1023, 1024, 4095, 4096 };
#define PM_BIG_SIZES_COUNT (sizeof(big_sizes) / sizeof(big_sizes[0]))
#define PM_N_MAX 4096u

static const char *const isa_names[PM_ISA_COUNT] = { "scalar", "avx2", "avx512" };

/* Sentinels, the vector at an offset from the 64-byte boundary, sentinels. */
#define PM_BUF_FLOATS (PM_OFFSET_FLOATS_MAX + PM_N_MAX + PM_SENTINEL_FLOATS)
static _Alignas(64) float buf_a[PM_BUF_FLOATS];
static _Alignas(64) float buf_b[PM_BUF_FLOATS];

/* ---------------------------------------------------------------- helpers */

static uint32_t supported_sets(const struct pm_kernels *out[PM_ISA_COUNT])
{
	uint32_t count = 0;
	for (int isa = 0; isa < PM_ISA_COUNT; isa++) {
		const struct pm_kernels *k = pm_kernels_for((enum pm_isa)isa);
		if (k != NULL)
			out[count++] = k;
	}
	return count;
}

static float rand_float(uint64_t *seed)
{
	/* 24 random bits -> [-1, 1). */
	return (float)(pm_test_rand(seed) >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

/* Fill n random floats at buf + off, with NaN before and after them. */
static float *fill_fenced(float *buf, uint32_t off, uint32_t n, uint64_t *seed)
{
	for (uint32_t i = 0; i < PM_BUF_FLOATS; i++)
		buf[i] = NAN;
	for (uint32_t i = 0; i < n; i++)
		buf[off + i] = rand_float(seed);
	return buf + off;
}

struct reference {
	double l2sq, l2sq_mag; /* value and sum of |terms| */
	double dot, dot_mag;
};

static struct reference reference(const float *a, const float *b, uint32_t n)
{
	struct reference r = { 0 };
	for (uint32_t i = 0; i < n; i++) {
		double d = (double)a[i] - (double)b[i];
		double p = (double)a[i] * (double)b[i];
		r.l2sq += d * d;
		r.l2sq_mag += d * d;
		r.dot += p;
		r.dot_mag += fabs(p);
	}
	return r;
}

static bool close_enough(float got, double want, double mag)
{
	return fabs((double)got - want) <= PM_TOL_REL * mag + PM_TOL_ABS;
}

/* Check one kernel result against the double reference and the scalar one. */
static void check_result(const char *what, const struct pm_kernels *k, uint32_t n,
			 float got, float scalar, double want, double mag)
{
	bool ok_ref = close_enough(got, want, mag);
	bool ok_scalar = close_enough(got, (double)scalar, mag);
	if (!ok_ref || !ok_scalar)
		printf("\n  %s/%s n=%u: got %.9g scalar %.9g reference %.9g (mag %.6g)\n",
		       k->name, what, n, (double)got, (double)scalar, want, mag);
	CU_ASSERT(ok_ref);
	CU_ASSERT(ok_scalar);
}

static void check_random(const struct pm_kernels *k, uint32_t off_a, uint32_t off_b,
			 uint32_t n, uint64_t *seed)
{
	const struct pm_kernels *scalar = pm_kernels_for(PM_ISA_SCALAR);
	CU_ASSERT_FATAL(scalar != NULL);
	const float *a = fill_fenced(buf_a, off_a, n, seed);
	const float *b = fill_fenced(buf_b, off_b, n, seed);
	struct reference r = reference(a, b, n);
	check_result("l2sq", k, n, k->l2sq(a, b, n), scalar->l2sq(a, b, n), r.l2sq,
		     r.l2sq_mag);
	check_result("dot", k, n, k->dot(a, b, n), scalar->dot(a, b, n), r.dot,
		     r.dot_mag);
}

/* ---------------------------------------------------------------- dispatch */

static void test_scalar_always_present(void)
{
	const struct pm_kernels *k = pm_kernels_for(PM_ISA_SCALAR);
	CU_ASSERT_FATAL(k != NULL);
	CU_ASSERT_EQUAL(k->isa, PM_ISA_SCALAR);
	CU_ASSERT_STRING_EQUAL(k->name, "scalar");
	CU_ASSERT(pm_kernels_for(PM_ISA_COUNT) == NULL);
	CU_ASSERT(pm_kernels_for((enum pm_isa)77) == NULL);
}

static void test_sets_describe_themselves(void)
{
	printf("\n  ISAs tested:");
	for (int isa = 0; isa < PM_ISA_COUNT; isa++) {
		const struct pm_kernels *k = pm_kernels_for((enum pm_isa)isa);
		if (k == NULL) {
			printf(" %s(unsupported)", isa_names[isa]);
			continue;
		}
		printf(" %s", k->name);
		CU_ASSERT_EQUAL(k->isa, (enum pm_isa)isa);
		CU_ASSERT_STRING_EQUAL(k->name, isa_names[isa]);
		CU_ASSERT(k->l2sq != NULL);
		CU_ASSERT(k->dot != NULL);
	}
	printf("; best: %s\n", pm_kernels_best()->name);
}

static void test_best_is_highest(void)
{
	const struct pm_kernels *sets[PM_ISA_COUNT];
	uint32_t count = supported_sets(sets);
	CU_ASSERT_FATAL(count >= 1);
	const struct pm_kernels *best = pm_kernels_best();
	CU_ASSERT_FATAL(best != NULL);
	CU_ASSERT(best == sets[count - 1]);
	CU_ASSERT(best == pm_kernels_best());
}

static void test_dispatch_matches_cpu(void)
{
#if defined(__x86_64__) || defined(__i386__)
	bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	bool avx512 = __builtin_cpu_supports("avx512f");
	CU_ASSERT_EQUAL(pm_kernels_for(PM_ISA_AVX2) != NULL, avx2);
	CU_ASSERT_EQUAL(pm_kernels_for(PM_ISA_AVX512) != NULL, avx512);
#else
	CU_ASSERT(pm_kernels_for(PM_ISA_AVX2) == NULL);
	CU_ASSERT(pm_kernels_for(PM_ISA_AVX512) == NULL);
#endif
}

/* ---------------------------------------------------------------- values */

/* Small integers: every partial sum is an integer below 2^24, so exact. */
static void check_exact(const struct pm_kernels *k, uint32_t n)
{
	float *a = buf_a + 1, *b = buf_b + 1;
	int64_t l2 = 0, dot = 0;
	for (uint32_t i = 0; i < n; i++) {
		int ai = (int)(i % 7u) - 3, bi = (int)((i * 5u) % 11u) - 5;
		a[i] = (float)ai;
		b[i] = (float)bi;
		l2 += (int64_t)(ai - bi) * (ai - bi);
		dot += (int64_t)ai * bi;
	}
	float got_l2 = k->l2sq(a, b, n), got_dot = k->dot(a, b, n);
	bool ok = got_l2 == (float)l2 && got_dot == (float)dot;
	if (!ok)
		printf("\n  %s n=%u: l2sq %.9g want %lld, dot %.9g want %lld\n", k->name, n,
		       (double)got_l2, (long long)l2, (double)got_dot, (long long)dot);
	CU_ASSERT(ok);
}

static void test_exact_integers(void)
{
	const struct pm_kernels *sets[PM_ISA_COUNT];
	uint32_t count = supported_sets(sets);
	for (uint32_t s = 0; s < count; s++) {
		for (uint32_t n = 0; n <= 200; n++)
			check_exact(sets[s], n);
		for (uint32_t j = 0; j < PM_BIG_SIZES_COUNT; j++)
			check_exact(sets[s], big_sizes[j]);
	}
}

static void test_known_values(void)
{
	static const float a[] = { 1, 2, 3 }, b[] = { 4, 6, 8 };
	const struct pm_kernels *sets[PM_ISA_COUNT];
	uint32_t count = supported_sets(sets);
	for (uint32_t s = 0; s < count; s++) {
		CU_ASSERT_DOUBLE_EQUAL(sets[s]->l2sq(a, b, 3), 50.0, 0.0); /* 9+16+25 */
		CU_ASSERT_DOUBLE_EQUAL(sets[s]->dot(a, b, 3), 40.0, 0.0);  /* 4+12+24 */
		CU_ASSERT_DOUBLE_EQUAL(sets[s]->l2sq(a, a, 3), 0.0, 0.0);
		CU_ASSERT_DOUBLE_EQUAL(sets[s]->dot(a, b, 1), 4.0, 0.0);
	}
}

static void test_random_vs_reference(void)
{
	const struct pm_kernels *sets[PM_ISA_COUNT];
	uint32_t count = supported_sets(sets);
	for (uint32_t s = 0; s < count; s++) {
		uint64_t seed = 0x5EED0000u + sets[s]->isa;
		for (uint32_t n = 1; n <= PM_N_SMALL_MAX; n++)
			check_random(sets[s], 1, 1, n, &seed);
		for (uint32_t j = 0; j < PM_BIG_SIZES_COUNT; j++)
			check_random(sets[s], 1, 1, big_sizes[j], &seed);
	}
}

/* l2sq_bounded: a result not above the bound is l2sq's bit for bit, a result
 * above it comes with l2sq above it too; bounds on both sides of the whole
 * and of every partial sum a kernel looks at, for every set and sizes around
 * its steps and looks. And it does stop: with a bound of 0 and n well past
 * one look, the partial sum it returns is below the whole. */
static void test_bounded_l2(void)
{
	static const uint32_t sizes[] = { 1, 31, 64, 255, 256, 257, 511, 512, 784, 1000, 4096 };
	const struct pm_kernels *sets[PM_ISA_COUNT];
	uint32_t count = supported_sets(sets), stopped = 0, checked = 0;
	for (uint32_t s = 0; s < count; s++) {
		const struct pm_kernels *k = sets[s];
		uint64_t seed = 0xB0DEu + k->isa;
		for (uint32_t j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
			uint32_t n = sizes[j];
			for (uint32_t round = 0; round < 40; round++) {
				const float *a = fill_fenced(buf_a, round % 3, n, &seed);
				const float *b = fill_fenced(buf_b, round % 5, n, &seed);
				float whole = k->l2sq(a, b, n);
				/* bounds: 0, the whole itself and its neighbours, fractions */
				float bounds[] = { 0.0f, whole, nextafterf(whole, 0.0f),
						   nextafterf(whole, INFINITY), whole * 0.25f,
						   whole * 0.5f, whole * 0.9f, whole * 2.0f, INFINITY };
				for (size_t t = 0; t < sizeof(bounds) / sizeof(bounds[0]); t++) {
					float got = k->l2sq_bounded(a, b, n, bounds[t]);
					checked++;
					if (got > bounds[t]) {
						CU_ASSERT(whole > bounds[t]);
						CU_ASSERT(got <= whole);
						stopped += got < whole;
					} else {
						CU_ASSERT_EQUAL(memcmp(&got, &whole, sizeof got), 0);
					}
				}
			}
		}
		/* 1000 floats of distance 1 each, bound 0: it stops at the first look */
		for (uint32_t i = 0; i < 1000; i++) {
			buf_a[i] = 1.0f;
			buf_b[i] = 0.0f;
		}
		CU_ASSERT_EQUAL(k->l2sq_bounded(buf_a, buf_b, 1000, 0.0f),
				(float)PM_L2_BOUND_CHECK_FLOATS);
		CU_ASSERT_EQUAL(k->l2sq_bounded(buf_a, buf_b, 1000, 1000.0f), 1000.0f);
	}
	printf("\n  %u bounded results checked, %u stopped early\n", checked, stopped);
	CU_ASSERT(stopped > 0);
}

/* Every pair of offsets from a 64-byte boundary, for sizes around the head,
 * loop and tail boundaries. */
static void test_every_alignment(void)
{
	static const uint32_t sizes[] = { 1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 80, 784 };
	const struct pm_kernels *sets[PM_ISA_COUNT];
	uint32_t count = supported_sets(sets);
	for (uint32_t s = 0; s < count; s++) {
		uint64_t seed = 0xA11Cu + sets[s]->isa;
		for (uint32_t off_a = 0; off_a <= PM_OFFSET_FLOATS_MAX; off_a++)
			for (uint32_t off_b = 0; off_b <= PM_OFFSET_FLOATS_MAX; off_b++)
				for (uint32_t j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++)
					check_random(sets[s], off_a, off_b, sizes[j], &seed);
	}
}

/* A SIMD kernel must give NaN/inf when an element inside the vector is one,
 * including the last element, which only the tail code reads. */
static void test_special_values_propagate(void)
{
	const struct pm_kernels *sets[PM_ISA_COUNT];
	uint32_t count = supported_sets(sets);
	uint64_t seed = 0xF00Du;
	for (uint32_t s = 0; s < count; s++) {
		for (uint32_t n = 1; n <= 80; n++) {
			float *a = fill_fenced(buf_a, 1, n, &seed);
			const float *b = fill_fenced(buf_b, 1, n, &seed);
			a[n - 1] = INFINITY;
			CU_ASSERT(isinf(sets[s]->l2sq(a, b, n)));
			a[n - 1] = NAN;
			CU_ASSERT(isnan(sets[s]->dot(a, b, n)));
		}
	}
}

/* ---------------------------------------------------------------- bounds */

/* n floats ending exactly at a PROT_NONE page: reading past the end faults. */
struct guarded {
	void *map;
	size_t map_bytes;
	float *end;
};

static bool guarded_map(struct guarded *g)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data = (PM_N_MAX * sizeof(float) + page - 1) / page * page;
	g->map_bytes = data + page;
	g->map = mmap(NULL, g->map_bytes, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->map == MAP_FAILED)
		return false;
	g->end = (float *)((char *)g->map + data);
	if (mprotect(g->end, page, PROT_NONE) == 0)
		return true;
	munmap(g->map, g->map_bytes);
	return false;
}

static void test_no_read_past_end(void)
{
	struct guarded ga = { 0 }, gb = { 0 };
	CU_ASSERT_FATAL(guarded_map(&ga));
	CU_ASSERT_FATAL(guarded_map(&gb));
	const struct pm_kernels *sets[PM_ISA_COUNT];
	uint32_t count = supported_sets(sets);
	uint64_t seed = 0xE4Du;
	for (uint32_t n = 1; n <= PM_N_MAX; n += (n < PM_N_SMALL_MAX ? 1 : 97)) {
		float *a = ga.end - n, *b = gb.end - n;
		for (uint32_t i = 0; i < n; i++) {
			a[i] = rand_float(&seed);
			b[i] = rand_float(&seed);
		}
		struct reference r = reference(a, b, n);
		for (uint32_t s = 0; s < count; s++) {
			CU_ASSERT(close_enough(sets[s]->l2sq(a, b, n), r.l2sq, r.l2sq_mag));
			CU_ASSERT(close_enough(sets[s]->dot(a, b, n), r.dot, r.dot_mag));
		}
	}
	munmap(ga.map, ga.map_bytes);
	munmap(gb.map, gb.map_bytes);
}

/* ---------------------------------------------------------------- pm_norm */

static void test_norm(void)
{
	static const float v34[] = { 3, 4 };
	CU_ASSERT_DOUBLE_EQUAL(pm_norm(v34, 2), 5.0, 0.0);
	float *ones = buf_a + 1; /* unaligned */
	for (uint32_t i = 0; i < PM_N_MAX; i++)
		ones[i] = 1.0f;
	CU_ASSERT_DOUBLE_EQUAL(pm_norm(ones, 784), 28.0, 0.0);
	CU_ASSERT_DOUBLE_EQUAL(pm_norm(ones, PM_N_MAX), 64.0, 0.0);
	CU_ASSERT_DOUBLE_EQUAL(pm_norm(ones, 1), 1.0, 0.0);

	uint64_t seed = 0x40Du;
	for (uint32_t n = 1; n <= PM_N_SMALL_MAX; n += 7) {
		const float *a = fill_fenced(buf_a, 1, n, &seed);
		struct reference r = reference(a, a, n);
		double want = sqrt(r.dot);
		CU_ASSERT(fabs((double)pm_norm(a, n) - want) <= PM_TOL_REL * want + PM_TOL_ABS);
	}
}

static CU_TestInfo tests[] = {
	{ "scalar set always present", test_scalar_always_present },
	{ "sets describe themselves", test_sets_describe_themselves },
	{ "best is the highest supported", test_best_is_highest },
	{ "dispatch matches the CPU", test_dispatch_matches_cpu },
	{ "known values", test_known_values },
	{ "exact on small integers", test_exact_integers },
	{ "random vs reference and scalar", test_random_vs_reference },
	{ "every alignment of a and b", test_every_alignment },
	{ "bounded l2: exact below the bound, stops above it", test_bounded_l2 },
	{ "inf and NaN propagate from the tail", test_special_values_propagate },
	{ "no read past the end", test_no_read_past_end },
	{ "pm_norm", test_norm },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	return pm_cu_run("distance", tests);
}
