/* SPDX-License-Identifier: MIT
 *
 * test_seedmap.c — the key -> seed map against a reference model: inserts,
 * lookups, removals, binary keys, a map near its planned load, and overflow
 * counters that return to zero (no tombstone debris).
 */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "cu_main.h"
#include "hash.h"
#include "seedmap.h"

#define MIB (UINT64_C(1) << 20)

struct fx {
	struct pm_arena a;
	struct pm_seedmap m;
};

static void fx_init(struct fx *f, uint64_t bytes, uint32_t cap)
{
	CU_ASSERT_FATAL(pm_arena_init(&f->a, bytes, cap, false) == PM_OK);
	CU_ASSERT_FATAL(pm_seedmap_init(&f->m, &f->a, cap) == PM_OK);
}

/* A seed with an inline key; returns its index. */
static uint32_t put(struct fx *f, const void *key, uint32_t klen)
{
	uint32_t idx = pm_seed_alloc(&f->a);
	CU_ASSERT_FATAL(idx != PM_SEED_NONE);
	struct pm_seed *s = pm_seed_at(&f->a, idx);
	s->kind = PM_SEED_KV;
	s->layout = PM_LAYOUT_INLINE;
	s->klen = (uint16_t)klen;
	memcpy(s->data, key, klen);
	pm_seedmap_insert(&f->m, &f->a, pm_hash(key, klen), idx);
	return idx;
}

static void del(struct fx *f, const void *key, uint32_t klen, uint32_t idx)
{
	pm_seedmap_remove(&f->m, &f->a, pm_hash(key, klen), idx);
	pm_seed_free(&f->a, idx);
}

static uint32_t find(struct fx *f, const void *key, uint32_t klen)
{
	return pm_seedmap_find(&f->m, &f->a, key, klen, pm_hash(key, klen));
}

static void make_key(uint8_t *k, uint32_t i)
{
	memset(k, 0, 16);
	memcpy(k + 3, &i, sizeof(i)); /* binary, with NUL bytes */
}

static void test_insert_find_remove(void)
{
	enum { N = 100000 };
	struct fx f;
	fx_init(&f, 64 * MIB, N);
	static uint32_t idx[N];
	uint8_t k[16];
	for (uint32_t i = 0; i < N; i++) {
		make_key(k, i);
		idx[i] = put(&f, k, 16);
	}
	CU_ASSERT_EQUAL(f.m.count, N);
	int bad = 0;
	for (uint32_t i = 0; i < N; i++) {
		make_key(k, i);
		bad += find(&f, k, 16) != idx[i];
	}
	CU_ASSERT_EQUAL(bad, 0);
	make_key(k, N + 7);
	CU_ASSERT_EQUAL(find(&f, k, 16), PM_SEED_NONE);
	CU_ASSERT_EQUAL(find(&f, k, 15), PM_SEED_NONE); /* prefix of nothing stored */
	for (uint32_t i = 0; i < N; i += 2) {
		make_key(k, i);
		del(&f, k, 16, idx[i]);
	}
	bad = 0;
	for (uint32_t i = 0; i < N; i++) {
		make_key(k, i);
		uint32_t want = (i % 2) ? idx[i] : PM_SEED_NONE;
		bad += find(&f, k, 16) != want;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(f.m.count, N / 2);
	pm_arena_destroy(&f.a);
}

static void test_keys_differing_in_length(void)
{
	struct fx f;
	fx_init(&f, MIB, 64);
	const uint8_t k[4] = { 'a', 0, 0, 0 };
	uint32_t i1 = put(&f, k, 1), i2 = put(&f, k, 2), i4 = put(&f, k, 4);
	CU_ASSERT_EQUAL(find(&f, k, 1), i1);
	CU_ASSERT_EQUAL(find(&f, k, 2), i2);
	CU_ASSERT_EQUAL(find(&f, k, 4), i4);
	CU_ASSERT_EQUAL(find(&f, k, 3), PM_SEED_NONE);
	pm_arena_destroy(&f.a);
}

/* A tiny map at full planned capacity, churned against a model: long probe
 * chains, every bucket full, counters must stay exact. */
static void test_full_map_churn(void)
{
	enum { CAP = 40, KEYS = 200, STEPS = 200000 };
	struct fx f;
	fx_init(&f, MIB, CAP);
	uint32_t model[KEYS];
	for (int i = 0; i < KEYS; i++)
		model[i] = PM_SEED_NONE;
	uint32_t live = 0;
	uint64_t rng = 7;
	uint8_t k[16];
	int bad = 0;
	for (int step = 0; step < STEPS; step++) {
		uint32_t i = (uint32_t)(pm_test_rand(&rng) % KEYS);
		make_key(k, i);
		bad += find(&f, k, 16) != model[i];
		if (model[i] != PM_SEED_NONE) {
			del(&f, k, 16, model[i]);
			model[i] = PM_SEED_NONE;
			live--;
		} else if (live < CAP) {
			model[i] = put(&f, k, 16);
			live++;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(f.m.count, live);
	for (uint32_t i = 0; i < KEYS; i++) {
		if (model[i] == PM_SEED_NONE)
			continue;
		make_key(k, i);
		del(&f, k, 16, model[i]);
	}
	const struct pm_bucket *b = pm_at(&f.a, f.m.buckets_off);
	for (uint64_t i = 0; i <= f.m.mask; i++) {
		CU_ASSERT_EQUAL(b[i].overflow, 0);
		for (unsigned j = 0; j < PM_SEEDMAP_SLOTS; j++)
			CU_ASSERT_EQUAL(b[i].tag[j], 0);
	}
	CU_ASSERT_EQUAL(f.m.count, 0);
	pm_arena_destroy(&f.a);
}

static void test_sizing(void)
{
	/* load stays at or below 80 % of slots for any capacity */
	for (uint32_t cap = 1; cap < 100000; cap = cap * 3 + 1) {
		uint64_t slots = pm_seedmap_bytes(cap) / sizeof(struct pm_bucket) * PM_SEEDMAP_SLOTS;
		CU_ASSERT(cap * 100 <= slots * 80 + 100 * PM_SEEDMAP_SLOTS);
		CU_ASSERT(slots >= cap);
	}
	/* the map's buckets are a reservation inside the arena */
	struct fx f;
	fx_init(&f, MIB, 1000);
	CU_ASSERT(f.m.buckets_off >= f.a.static_start);
	CU_ASSERT(f.m.buckets_off + pm_seedmap_bytes(1000) <= f.a.blob_start);
	pm_arena_destroy(&f.a);
	/* an arena too small for its map is refused */
	struct pm_arena a;
	struct pm_seedmap m;
	CU_ASSERT_FATAL(pm_arena_init(&a, MIB, 15000, false) == PM_OK);
	CU_ASSERT_EQUAL(pm_seedmap_init(&m, &a, 15000), PM_E_NOMEM);
	pm_arena_destroy(&a);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "insert, find, remove 100k binary keys", test_insert_find_remove },
		{ "keys differing only in length", test_keys_differing_in_length },
		{ "full map churn against a model", test_full_map_churn },
		{ "sizing and reservation", test_sizing },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("seedmap", tests);
}
