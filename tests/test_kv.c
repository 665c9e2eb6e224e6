/* SPDX-License-Identifier: MIT
 *
 * test_kv.c — SET / GET / DEL through the shard: all three layouts, binary
 * keys and values, overwrites that reuse or move blobs, a failed overwrite that
 * keeps the old value, TTL (lazy and bounded active expiry), every limit, and a
 * churn loop whose bytes return to the baseline.
 */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "common.h"
#include "kv.h"

#define MIB (UINT64_C(1) << 20)

static struct pm_shard sh;

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 31);
}

static void check_get(const void *k, size_t kl, const void *v, size_t vl)
{
	struct pm_bytes got;
	CU_ASSERT_EQUAL_FATAL(fx_get(&sh, fx_b(k, kl), 0, &got), PM_OK);
	CU_ASSERT_EQUAL_FATAL(got.len, vl);
	CU_ASSERT(memcmp(got.ptr, v, vl) == 0);
}

static void test_layouts(void)
{
	fx_shard(&sh, 16 * MIB, 1024);
	static uint8_t key[PM_KEY_BYTES_MAX], val[PM_VALUE_BYTES_MAX + 16];
	fill(key, sizeof(key), 1);
	fill(val, sizeof(val), 2);
	key[0] = 0; /* binary keys */
	/* (klen, vlen, expected layout) around every boundary */
	const struct { uint32_t kl, vl; uint8_t layout; } cases[] = {
		{ 1, 0, PM_LAYOUT_INLINE },       { 16, 32, PM_LAYOUT_INLINE },
		{ 48, 0, PM_LAYOUT_INLINE },      { 47, 1, PM_LAYOUT_INLINE },
		{ 16, 33, PM_LAYOUT_KEY_INLINE }, { 40, 24, PM_LAYOUT_KEY_INLINE },
		{ 41, 24, PM_LAYOUT_BLOB },       { 40, 9, PM_LAYOUT_BLOB },
		{ 1, 48, PM_LAYOUT_KEY_INLINE },  { 49, 0, PM_LAYOUT_BLOB },
		{ PM_KEY_BYTES_MAX, PM_VALUE_BYTES_MAX, PM_LAYOUT_BLOB },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		key[1] = (uint8_t)i;
		uint32_t kl = PM_MAX(cases[i].kl, 2u), vl = cases[i].vl;
		CU_ASSERT_EQUAL_FATAL(fx_set(&sh, fx_b(key, kl), fx_b(val + i, vl), 0, 0), PM_OK);
		uint32_t idx = pm_seedmap_find(&sh.map, &sh.arena, key, kl, pm_hash(key, kl));
		CU_ASSERT_FATAL(idx != PM_SEED_NONE);
		CU_ASSERT_EQUAL(pm_seed_at(&sh.arena, idx)->layout, cases[i].layout);
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		key[1] = (uint8_t)i;
		check_get(key, PM_MAX(cases[i].kl, 2u), val + i, cases[i].vl);
	}
	CU_ASSERT_EQUAL(sh.stats.keys, sizeof(cases) / sizeof(cases[0]));
	pm_shard_destroy(&sh);
}

/* Overwrites across every pair of layouts; the value read back is always the last. */
static void test_overwrite(void)
{
	fx_shard(&sh, 16 * MIB, 1024);
	uint8_t val[4096];
	fill(val, sizeof(val), 9);
	const uint32_t sizes[] = { 0, 5, 32, 33, 100, 112, 113, 4000, 24, 1 };
	const char *keys[] = { "k", "a-key-of-exactly-40-bytes-xxxxxxxxxxxxxx",
			       "a-key-longer-than-forty-bytes-xxxxxxxxxxxxxxxxxxxx" };
	for (size_t k = 0; k < 3; k++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			CU_ASSERT_EQUAL_FATAL(fx_set(&sh, fx_s(keys[k]), fx_b(val + i, sizes[i]), 0, 0),
					      PM_OK);
			check_get(keys[k], strlen(keys[k]), val + i, sizes[i]);
		}
	CU_ASSERT_EQUAL(sh.stats.keys, 3);
	/* same class: the blob stays where it is */
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("k"), fx_b(val, 100), 0, 0), PM_OK);
	struct pm_bytes a, b;
	fx_get(&sh, fx_s("k"), 0, &a);
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("k"), fx_b(val + 1, 110), 0, 0), PM_OK);
	fx_get(&sh, fx_s("k"), 0, &b);
	CU_ASSERT_PTR_EQUAL(a.ptr, b.ptr);
	pm_shard_destroy(&sh);
}

static void test_failed_overwrite_keeps_value(void)
{
	fx_shard(&sh, 2 * MIB, 64);
	static uint8_t big[PM_VALUE_BYTES_MAX];
	fill(big, sizeof(big), 3);
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("keep"), fx_b(big, 100), 0, 0), PM_OK);
	/* fill the blob space with large values until the arena refuses */
	char k[16];
	int n = 0;
	enum pm_status st;
	do {
		snprintf(k, sizeof(k), "fill%d", n++);
		st = fx_set(&sh, fx_s(k), fx_b(big, sizeof(big)), 0, 0);
	} while (st == PM_OK && n < 1000);
	CU_ASSERT_EQUAL(st, PM_E_NOMEM);
	uint64_t used = fx_blob_used(&sh);
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("keep"), fx_b(big, sizeof(big)), 0, 0), PM_E_NOMEM);
	check_get("keep", 4, big, 100);
	CU_ASSERT_EQUAL(fx_blob_used(&sh), used);
	pm_shard_destroy(&sh);
}

static void test_delete(void)
{
	fx_shard(&sh, 4 * MIB, 64);
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("x"), fx_s("1"), 0, 0), PM_OK);
	struct pm_request r = { .op = PM_OP_DEL, .key = fx_s("x") };
	struct pm_reply rep;
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.removed, 1);
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.removed, 0);
	CU_ASSERT_EQUAL(fx_get(&sh, fx_s("x"), 0, NULL), PM_NOT_FOUND);
	CU_ASSERT_EQUAL(sh.stats.keys, 0);
	/* an empty value arrives from the decoder with no pointer at all */
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("empty"), fx_b(NULL, 0), 0, 0), PM_OK);
	struct pm_bytes v;
	CU_ASSERT_EQUAL(fx_get(&sh, fx_s("empty"), 0, &v), PM_OK);
	CU_ASSERT_EQUAL(v.len, 0);
	pm_shard_destroy(&sh);
}

static void test_ttl_lazy(void)
{
	fx_shard(&sh, 4 * MIB, 64);
	const uint64_t t0 = 1700000000000ull;
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("t"), fx_s("v"), 1000, t0), PM_OK);
	CU_ASSERT_EQUAL(fx_get(&sh, fx_s("t"), t0 + 999, NULL), PM_OK);
	CU_ASSERT_EQUAL(fx_get(&sh, fx_s("t"), t0 + 1000, NULL), PM_NOT_FOUND);
	CU_ASSERT_EQUAL(sh.stats.expired_lazy, 1);
	CU_ASSERT_EQUAL(sh.stats.keys, 0);
	CU_ASSERT_EQUAL(sh.arena.seeds_used, 0);
	/* a SET without TTL clears an earlier TTL */
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("p"), fx_s("v"), 10, t0), PM_OK);
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("p"), fx_s("w"), 0, t0), PM_OK);
	CU_ASSERT_EQUAL(fx_get(&sh, fx_s("p"), t0 + 100000, NULL), PM_OK);
	/* an expired key can be set again */
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("t"), fx_s("again"), 5, t0 + 5000), PM_OK);
	check_get("t", 1, "again", 5);
	pm_shard_destroy(&sh);
}

static void test_ttl_active_bounded(void)
{
	fx_shard(&sh, 8 * MIB, 4096);
	char k[16];
	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof(k), "e%d", i);
		CU_ASSERT_EQUAL_FATAL(fx_set(&sh, fx_s(k), fx_s("value"), i % 2 ? 100 : 0, 0), PM_OK);
	}
	/* nothing is due yet */
	CU_ASSERT_EQUAL(pm_shard_expire(&sh, 50, 1000), 0);
	/* each cycle looks at no more than it was told */
	uint32_t first = pm_shard_expire(&sh, 100, 100);
	CU_ASSERT(first > 0 && first <= 100);
	/* the scan never exceeds the hard cap whatever it is asked */
	uint32_t big = pm_shard_expire(&sh, 100, UINT32_MAX);
	CU_ASSERT(big <= PM_EXPIRE_SCAN_SEEDS_MAX);
	uint32_t total = first + big, got;
	while ((got = pm_shard_expire(&sh, 100, 500)) != 0)
		total += got;
	CU_ASSERT_EQUAL(total, 1500);
	CU_ASSERT_EQUAL(sh.stats.keys, 1500);
	CU_ASSERT_EQUAL(sh.stats.expired_active, 1500);
	CU_ASSERT_EQUAL(fx_get(&sh, fx_s("e2"), 100, NULL), PM_OK);
	pm_shard_destroy(&sh);
}

/* Idle maintenance runs an expiry cycle at most once per millisecond while
 * cycles find nothing, and back to back while they delete. */
static void test_ttl_idle_once_per_ms(void)
{
	fx_shard(&sh, 8 * MIB, 4096);
	char k[16];
	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof(k), "e%d", i);
		CU_ASSERT_EQUAL_FATAL(fx_set(&sh, fx_s(k), fx_s("value"), i % 2 ? 100 : 0, 0), PM_OK);
	}
	CU_ASSERT_FALSE(pm_shard_maintain(&sh, 50, 0)); /* nothing due: one cycle */
	uint32_t cursor = sh.expire_cursor;
	CU_ASSERT_NOT_EQUAL(cursor, 0);
	CU_ASSERT_FALSE(pm_shard_maintain(&sh, 50, 0));
	CU_ASSERT_EQUAL(sh.expire_cursor, cursor); /* the same ms: no second cycle */
	CU_ASSERT_FALSE(pm_shard_maintain(&sh, 51, 0));
	CU_ASSERT_NOT_EQUAL(sh.expire_cursor, cursor); /* the next ms: one more */
	/* all 1,500 due at once: every call in the same ms deletes until none remain */
	uint32_t calls = 0;
	while (pm_shard_maintain(&sh, 200, 0) && calls < 100)
		calls++;
	CU_ASSERT(calls >= 1500 / PM_EXPIRE_SCAN_SEEDS_MAX);
	CU_ASSERT_EQUAL(sh.stats.expired_active, 1500);
	CU_ASSERT_EQUAL(sh.stats.keys, 1500);
	cursor = sh.expire_cursor;
	CU_ASSERT_FALSE(pm_shard_maintain(&sh, 200, 0));
	CU_ASSERT_EQUAL(sh.expire_cursor, cursor); /* found nothing: rests until 201 */
	pm_shard_destroy(&sh);
}

static void test_limits(void)
{
	fx_shard(&sh, 4 * MIB, 64);
	static uint8_t big[PM_VALUE_BYTES_MAX + 1];
	static uint8_t key[PM_KEY_BYTES_MAX + 1];
	memset(key, 'k', sizeof(key));
	CU_ASSERT_EQUAL(fx_set(&sh, fx_b(key, 0), fx_s("v"), 0, 0), PM_E_KEY_LEN);
	CU_ASSERT_EQUAL(fx_set(&sh, fx_b(key, PM_KEY_BYTES_MAX + 1), fx_s("v"), 0, 0), PM_E_KEY_LEN);
	CU_ASSERT_EQUAL(fx_get(&sh, fx_b(key, PM_KEY_BYTES_MAX + 1), 0, NULL), PM_E_KEY_LEN);
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("k"), fx_b(big, PM_VALUE_BYTES_MAX + 1), 0, 0),
			PM_E_VALUE_LEN);
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("k"), fx_s("v"), PM_TTL_MS_MAX + 1, 0), PM_E_TTL);
	struct pm_request r = { .op = PM_OP_SET, .key = fx_s("k"), .value = fx_s("v"),
				.has_ttl = true, .ttl_ms = 0 };
	struct pm_reply rep;
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_TTL);
	/* nothing was stored by any refused request */
	CU_ASSERT_EQUAL(sh.arena.seeds_used, 0);
	CU_ASSERT_EQUAL(fx_blob_used(&sh), 0);
	/* exactly at the limits is fine */
	CU_ASSERT_EQUAL(fx_set(&sh, fx_b(key, PM_KEY_BYTES_MAX), fx_b(big, PM_VALUE_BYTES_MAX),
			       PM_TTL_MS_MAX, 0), PM_OK);
	pm_shard_destroy(&sh);
}

static void test_seed_exhaustion(void)
{
	fx_shard(&sh, 4 * MIB, 10);
	char k[16];
	for (int i = 0; i < 10; i++) {
		snprintf(k, sizeof(k), "s%d", i);
		CU_ASSERT_EQUAL(fx_set(&sh, fx_s(k), fx_s("v"), 0, 0), PM_OK);
	}
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("one-more"), fx_s("v"), 0, 0), PM_E_NOMEM);
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("s3"), fx_s("overwrite ok"), 0, 0), PM_OK);
	pm_shard_destroy(&sh);
}

/* Sets, overwrites and deletes of random sizes; once every key is gone, the
 * shard holds exactly what it held before, and a second round of the same churn
 * needs no new memory from the bump pointer. */
static void test_churn_baseline(void)
{
	fx_shard(&sh, 64 * MIB, 8192);
	static uint8_t val[8192];
	fill(val, sizeof(val), 5);
	uint64_t base_used = fx_blob_used(&sh), bump_after_first = 0;
	for (int round = 0; round < 2; round++) {
		uint64_t rng = 99;
		char k[32];
		for (int i = 0; i < 20000; i++) {
			snprintf(k, sizeof(k), "churn-%u", (unsigned)(pm_test_rand(&rng) % 2000));
			uint32_t vl = (uint32_t)(pm_test_rand(&rng) % sizeof(val));
			if (pm_test_rand(&rng) % 4 == 0) {
				struct pm_request r = { .op = PM_OP_DEL, .key = fx_s(k) };
				struct pm_reply rep;
				pm_shard_apply(&sh, &r, 0, &rep);
			} else {
				CU_ASSERT_EQUAL_FATAL(fx_set(&sh, fx_s(k), fx_b(val, vl), 0, 0), PM_OK);
			}
		}
		for (unsigned i = 0; i < 2000; i++) {
			snprintf(k, sizeof(k), "churn-%u", i);
			struct pm_request r = { .op = PM_OP_DEL, .key = fx_s(k) };
			struct pm_reply rep;
			pm_shard_apply(&sh, &r, 0, &rep);
		}
		CU_ASSERT_EQUAL(fx_blob_used(&sh), base_used);
		CU_ASSERT_EQUAL(sh.arena.seeds_used, 0);
		CU_ASSERT_EQUAL(sh.map.count, 0);
		if (round == 0)
			bump_after_first = sh.arena.bump;
		else
			CU_ASSERT_EQUAL(sh.arena.bump, bump_after_first);
	}
	pm_shard_destroy(&sh);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "layouts and binary keys", test_layouts },
		{ "overwrite across layouts", test_overwrite },
		{ "failed overwrite keeps old value", test_failed_overwrite_keeps_value },
		{ "delete", test_delete },
		{ "TTL: lazy expiry", test_ttl_lazy },
		{ "TTL: bounded active expiry", test_ttl_active_bounded },
		{ "TTL: idle expiry once per ms unless it deletes", test_ttl_idle_once_per_ms },
		{ "limits", test_limits },
		{ "seed exhaustion", test_seed_exhaustion },
		{ "churn returns to baseline", test_churn_baseline },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("kv", tests);
}
