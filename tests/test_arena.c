/* SPDX-License-Identifier: MIT
 *
 * test_arena.c — size classes and their waste bound, seed slots, blob free lists,
 * accounting, bounds, and debug poisoning.
 */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "cu_main.h"

#define MIB (UINT64_C(1) << 20)

static void test_class_table(void)
{
	uint32_t prev = 0;
	for (unsigned c = 0; c < PM_BLOB_CLASS_COUNT; c++) {
		uint32_t cb = pm_blob_class_bytes(c);
		CU_ASSERT(cb > prev);
		CU_ASSERT(cb % 8 == 0);
		CU_ASSERT_EQUAL(pm_blob_class(cb), c);
		if (c + 1 < PM_BLOB_CLASS_COUNT)
			CU_ASSERT_EQUAL(pm_blob_class(cb + 1), c + 1);
		prev = cb;
	}
	CU_ASSERT_EQUAL(pm_blob_class_bytes(PM_BLOB_CLASS_COUNT - 1), PM_BLOB_BYTES_MAX);
	CU_ASSERT_EQUAL(pm_blob_class_bytes(0), PM_BLOB_BYTES_MIN);
}

/* Every request the engine can make lands in the smallest class that holds it,
 * and that class wastes at most 25 % of its bytes (in fact < 22 %). */
static void test_class_waste_bound(void)
{
	double worst = 0;
	for (uint32_t n = PM_BLOB_REQUEST_BYTES_MIN; n <= PM_BLOB_BYTES_MAX; n++) {
		unsigned c = pm_blob_class(n);
		uint32_t cb = pm_blob_class_bytes(c);
		CU_ASSERT_FATAL(cb >= n);
		if (c > 0)
			CU_ASSERT_FATAL(pm_blob_class_bytes(c - 1) < n);
		double waste = (double)(cb - n) / cb;
		if (waste > worst)
			worst = waste;
	}
	printf("\n  worst class waste: %.1f %%\n", worst * 100);
	for (uint32_t n = 1025; n <= PM_BLOB_BYTES_MAX; n++) {
		uint32_t cb = pm_blob_class_bytes(pm_blob_class(n));
		CU_ASSERT_FATAL((double)(cb - n) / cb < 0.12); /* vector-sized blobs */
	}
	/* vector blobs and graph nodes, 512 B to 8 KiB: under 1/16; up to 2 KiB
	 * every multiple of 64 is a class of its own (a node of whole lines is
	 * cut to measure), and any multiple of 64 gets a class of whole lines
	 * (which the arena cuts on a line: vector.c relies on it) */
	for (uint32_t n = 513; n <= 8192; n++) {
		uint32_t cb = pm_blob_class_bytes(pm_blob_class(n));
		CU_ASSERT_FATAL((double)(cb - n) / cb < 1.0 / 16);
		if (n % 64 == 0 && n <= 2048)
			CU_ASSERT_EQUAL_FATAL(cb, n);
	}
	for (uint32_t n = 256; n <= PM_BLOB_BYTES_MAX; n += 64)
		CU_ASSERT_EQUAL_FATAL(pm_blob_footprint(n) % 64, 0);
	/* a 100-d f32 HNSW node (64 + 400 + 128 bytes) and a 128-d one */
	CU_ASSERT_EQUAL(pm_blob_footprint(592), 608);
	CU_ASSERT_EQUAL(pm_blob_footprint(704), 704);
	CU_ASSERT(worst <= 0.25);
	CU_ASSERT(worst < 0.22); /* 25 -> 32 is the worst case: 7/32 */
}

/* Blobs from 256 B are cut on their class's largest power-of-two divisor,
 * at most 64: classes of whole lines on a line, the 32-byte steps between
 * 512 B and 1 KiB on 32 bytes, packed with no gap between them. */
static void test_blob_alignment(void)
{
	struct pm_arena a;
	CU_ASSERT_FATAL(pm_arena_init(&a, 4 * MIB, 16, false) == PM_OK);
	uint64_t small = pm_blob_alloc(&a, 40); /* leaves the bump off a line */
	uint64_t n1 = pm_blob_alloc(&a, 592), n2 = pm_blob_alloc(&a, 592);
	CU_ASSERT(small != 0 && n1 % 32 == 0 && n2 % 32 == 0);
	CU_ASSERT_EQUAL(n2, n1 + 608); /* 608-byte class, no gap */
	CU_ASSERT(n1 % 64 != n2 % 64);
	for (uint32_t bytes = 256; bytes <= 8192; bytes += 32) {
		uint32_t cb = pm_blob_footprint(bytes);
		uint64_t off = pm_blob_alloc(&a, bytes);
		CU_ASSERT_FATAL(off != 0);
		CU_ASSERT_EQUAL_FATAL(off % (cb % 64 ? 32 : 64), 0);
	}
	pm_arena_destroy(&a);
}

static void test_init_bounds(void)
{
	struct pm_arena a;
	CU_ASSERT_EQUAL(pm_arena_init(&a, PM_ARENA_BYTES_MIN - 4096, 16, false), PM_E_PARAM);
	CU_ASSERT_EQUAL(pm_arena_init(&a, PM_ARENA_BYTES_MIN + 1, 16, false), PM_E_PARAM);
	CU_ASSERT_EQUAL(pm_arena_init(&a, PM_ARENA_BYTES_MAX + 4096, 16, false), PM_E_PARAM);
	CU_ASSERT_EQUAL(pm_arena_init(&a, MIB, 0, false), PM_E_PARAM);
	/* seed slots larger than the region */
	CU_ASSERT_EQUAL(pm_arena_init(&a, MIB, (uint32_t)(MIB / PM_SEED_BYTES), false), PM_E_PARAM);
	CU_ASSERT_EQUAL(pm_arena_init(&a, MIB, 16, false), PM_OK);
	CU_ASSERT_PTR_NOT_NULL(a.base);
	pm_arena_destroy(&a);
	/* hugepages are tried but the arena works either way */
	CU_ASSERT_EQUAL(pm_arena_init(&a, 4 * MIB, 16, true), PM_OK);
	CU_ASSERT_PTR_NOT_NULL(a.base);
	pm_arena_destroy(&a);
}

static void test_seed_slots(void)
{
	struct pm_arena a;
	CU_ASSERT_FATAL(pm_arena_init(&a, MIB, 8, false) == PM_OK);
	uint32_t got[8];
	for (int i = 0; i < 8; i++) {
		got[i] = pm_seed_alloc(&a);
		CU_ASSERT_EQUAL(got[i], (uint32_t)i);
		pm_seed_at(&a, got[i])->kind = PM_SEED_KV;
	}
	CU_ASSERT_EQUAL(pm_seed_alloc(&a), PM_SEED_NONE);
	CU_ASSERT_EQUAL(a.seeds_used, 8);
	pm_seed_free(&a, got[5]);
	pm_seed_free(&a, got[2]);
	CU_ASSERT_EQUAL(a.seeds_used, 6);
	CU_ASSERT_EQUAL(pm_seed_alloc(&a), 2); /* LIFO reuse */
	CU_ASSERT_EQUAL(pm_seed_alloc(&a), 5);
	CU_ASSERT_EQUAL(pm_seed_alloc(&a), PM_SEED_NONE);
	/* a handed-out seed is zeroed */
	const struct pm_seed *s = pm_seed_at(&a, 5);
	for (size_t i = 0; i < sizeof(s->data); i++)
		CU_ASSERT_EQUAL_FATAL(s->data[i], 0);
	pm_arena_destroy(&a);
}

static void test_blob_reuse_and_accounting(void)
{
	struct pm_arena a;
	CU_ASSERT_FATAL(pm_arena_init(&a, 4 * MIB, 16, false) == PM_OK);
	struct pm_arena_stats st;
	uint64_t b1 = pm_blob_alloc(&a, 100); /* class 112 */
	uint64_t b2 = pm_blob_alloc(&a, 100);
	CU_ASSERT(b1 != 0 && b2 != 0 && b1 != b2);
	CU_ASSERT(b1 >= a.blob_start && b1 + 112 <= a.bytes);
	pm_arena_stats(&a, &st);
	CU_ASSERT_EQUAL(st.blob_bytes_used, 224);
	CU_ASSERT_EQUAL(st.blob_bytes_requested, 200);
	pm_blob_free(&a, b1, 100);
	pm_arena_stats(&a, &st);
	CU_ASSERT_EQUAL(st.blob_bytes_used, 112);
	CU_ASSERT_EQUAL(st.blob_bytes_free, 112);
	CU_ASSERT_EQUAL(st.class_free[pm_blob_class(100)], 1);
	/* same class, other request size: the freed blob comes back */
	CU_ASSERT_EQUAL(pm_blob_alloc(&a, 110), b1);
	/* another class does not take it */
	uint64_t b3 = pm_blob_alloc(&a, 30);
	CU_ASSERT(b3 != b1 && b3 != b2);
	CU_ASSERT(pm_blob_fits(100, 112));
	CU_ASSERT(!pm_blob_fits(100, 113));
	pm_arena_destroy(&a);
}

static void test_blob_exhaustion(void)
{
	struct pm_arena a;
	CU_ASSERT_FATAL(pm_arena_init(&a, MIB, 16, false) == PM_OK);
	uint64_t offs[64];
	int n = 0;
	uint64_t off;
	while ((off = pm_blob_alloc(&a, 64 * 1024)) != 0) {
		CU_ASSERT_FATAL(n < 64);
		offs[n++] = off;
	}
	CU_ASSERT(n >= 14 && n <= 16); /* 1 MiB minus seed slots */
	CU_ASSERT_EQUAL(pm_blob_alloc(&a, 64 * 1024), 0);
	pm_blob_free(&a, offs[3], 64 * 1024);
	CU_ASSERT_EQUAL(pm_blob_alloc(&a, 64 * 1024), offs[3]);
	pm_arena_destroy(&a);
}

/* A churn of random sizes returns every byte; the region does not grow when the
 * same mix is allocated again. */
static void test_blob_churn_baseline(void)
{
	struct pm_arena a;
	CU_ASSERT_FATAL(pm_arena_init(&a, 64 * MIB, 16, false) == PM_OK);
	enum { N = 2000 };
	static uint64_t off[N];
	static uint32_t len[N];
	uint64_t seed = 42;
	for (int round = 0; round < 3; round++) {
		uint64_t bump_before = a.bump;
		for (int i = 0; i < N; i++) {
			len[i] = PM_BLOB_REQUEST_BYTES_MIN + (uint32_t)(pm_test_rand(&seed) % 5000);
			off[i] = pm_blob_alloc(&a, len[i]);
			CU_ASSERT_FATAL(off[i] != 0);
			memset(pm_at(&a, off[i]), i & 0xff, len[i]);
		}
		for (int i = 0; i < N; i++)
			pm_blob_free(&a, off[i], len[i]);
		struct pm_arena_stats st;
		pm_arena_stats(&a, &st);
		CU_ASSERT_EQUAL(st.blob_bytes_used, 0);
		CU_ASSERT_EQUAL(st.blob_bytes_requested, 0);
		if (round > 0) /* the same mix again is served from the free lists */
			CU_ASSERT_EQUAL(a.bump, bump_before);
		seed = 42;
	}
	pm_arena_destroy(&a);
}

static void test_reserve(void)
{
	struct pm_arena a;
	CU_ASSERT_FATAL(pm_arena_init(&a, MIB, 3, false) == PM_OK);
	uint64_t r1 = pm_arena_reserve(&a, 100);
	uint64_t r2 = pm_arena_reserve(&a, 10);
	CU_ASSERT(r1 % 64 == 0 && r2 % 64 == 0);
	CU_ASSERT(r1 >= 3 * PM_SEED_BYTES);
	CU_ASSERT(r2 >= r1 + 100);
	CU_ASSERT_EQUAL(pm_arena_reserve(&a, 2 * MIB), 0);
	uint64_t b = pm_blob_alloc(&a, 64);
	CU_ASSERT(b >= r2 + 10);
	pm_arena_destroy(&a);
}

static void test_init_mem(void)
{
	struct pm_arena a;
	void *mem = aligned_alloc(64, MIB);
	CU_ASSERT_FATAL(mem != NULL);
	memset(mem, 0, MIB);
	CU_ASSERT_EQUAL(pm_arena_init_mem(&a, (uint8_t *)mem + 8, MIB - 64, 4), PM_E_PARAM);
	CU_ASSERT_EQUAL(pm_arena_init_mem(&a, mem, MIB, 4), PM_OK);
	CU_ASSERT_PTR_EQUAL(a.base, mem);
	CU_ASSERT(pm_blob_alloc(&a, 1000) != 0);
	pm_arena_destroy(&a); /* does not unmap memory it does not own */
	free(mem);
}

static void test_debug_poison(void)
{
#ifdef NDEBUG
	printf("\n  release build: poisoning is compiled out\n");
	CU_PASS("poison disabled under NDEBUG");
#else
	struct pm_arena a;
	CU_ASSERT_FATAL(pm_arena_init(&a, MIB, 4, false) == PM_OK);
	uint64_t b = pm_blob_alloc(&a, 200);
	memset(pm_at(&a, b), 0x11, 200);
	pm_blob_free(&a, b, 200);
	const uint8_t *p = pm_at(&a, b);
	for (uint32_t i = 8; i < pm_blob_class_bytes(pm_blob_class(200)); i++)
		CU_ASSERT_EQUAL_FATAL(p[i], 0xDB);
	uint32_t s = pm_seed_alloc(&a);
	pm_seed_at(&a, s)->kind = PM_SEED_KV;
	pm_seed_free(&a, s);
	CU_ASSERT_EQUAL(pm_seed_at(&a, s)->data[10], 0xDB);
	pm_arena_destroy(&a);
#endif
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "class table", test_class_table },
		{ "class waste <= 25%", test_class_waste_bound },
		{ "blob alignment", test_blob_alignment },
		{ "init bounds", test_init_bounds },
		{ "seed slots", test_seed_slots },
		{ "blob reuse and accounting", test_blob_reuse_and_accounting },
		{ "blob exhaustion", test_blob_exhaustion },
		{ "blob churn returns to baseline", test_blob_churn_baseline },
		{ "static reservations", test_reserve },
		{ "caller-owned memory", test_init_mem },
		{ "debug poison", test_debug_poison },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("arena", tests);
}
