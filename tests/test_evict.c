/* SPDX-License-Identifier: MIT
 *
 * test_evict.c — maxmemory and eviction (engine/evict.h): the bound holds after
 * every write under churn; harvest keeps a hot set better than random on the
 * same requests (measured); the same seed evicts the same keys; noeviction
 * refuses cleanly; vectors of non-evictable collections are never evicted and
 * evicted HNSW vectors leave a valid graph; with equal frequencies the larger
 * values go first; the LFU counter is logarithmic and decays; and each bound
 * of evict.h (samples, probe length, victims per write, sweep pressure) is
 * broken once.
 */
#include <stdlib.h>
#include <string.h>

#include "evict.h"
#include "fixture.h"
#include "hnsw.h"
#include "kv.h"
#include "vector.h"

#define MIB (UINT64_C(1) << 20)
#define ARENA_BYTES (128 * MIB)
#define SEEDS 65536u

/* Churn: distinct keys, and the share of their total footprint the limit holds. */
#define CHURN_KEYS 50000u
#define CHURN_LIMIT_PCT 20u
#define CHURN_OVERWRITE_PCT 10u
/* Hot set: keys, the hot ones (10 %), the requests, the share that go to hot
 * keys (90 %), and the request rate (10 per ms: 30 s of traffic, over which
 * the counters decay). Limits and margins: see test_hot_set. */
#define HOT_KEYS 20000u
#define HOT_SET 2000u
#define HOT_REQUESTS 300000u
#define HOT_PCT 90u
#define HOT_REQUESTS_PER_MS 10u
/* Sizes of the values in these tests, bytes. */
#define VALUE_BYTES_MIN 24u
#define VALUE_BYTES_SPREAD 2000u

static struct pm_shard sh;

/* ---------------------------------------------------------------- helpers */

/* What the evict_log hook saw: count and a running hash of the keys, in order. */
struct evlog {
	uint64_t n, hash;
	uint32_t refuse_after; /* refuse evictions once n reaches it (0: never) */
	uint32_t big;          /* evicted keys starting with 'B' */
};

static bool evlog_hook(void *ctx, const uint8_t *key, uint32_t klen)
{
	struct evlog *l = ctx;
	if (l->refuse_after && l->n >= l->refuse_after)
		return false;
	l->n++;
	l->hash = (l->hash ^ pm_hash(key, klen)) * 0x100000001B3ull;
	l->big += key[0] == 'B';
	return true;
}

static void limit(uint64_t max, uint8_t policy, uint32_t samples, uint64_t seed)
{
	struct pm_evict_config c = { .maxmemory_bytes = max, .policy = policy,
				     .samples = samples, .seed = seed };
	CU_ASSERT_EQUAL_FATAL(pm_shard_set_maxmemory(&sh, &c), PM_OK);
}

static void fresh(struct evlog *log)
{
	fx_shard(&sh, ARENA_BYTES, SEEDS);
	memset(log, 0, sizeof(*log));
	sh.evict_log = evlog_hook;
	sh.evict_ctx = log;
}

static int key_of(char *k, char tag, uint32_t i)
{
	return snprintf(k, 32, "%c%07u", tag, i);
}

/* A value size for key i: mostly small, a tail of large ones. */
static uint32_t vsize(uint32_t i)
{
	uint64_t s = i * 0x9E3779B97F4A7C15ull;
	uint32_t r = (uint32_t)(pm_test_rand(&s) % 100);
	return VALUE_BYTES_MIN + (r < 70 ? r * 4 : (uint32_t)(pm_test_rand(&s) % VALUE_BYTES_SPREAD));
}

static uint8_t valbuf[VALUE_BYTES_MIN + VALUE_BYTES_SPREAD + 64];

static enum pm_status set_i(char tag, uint32_t i, uint32_t len, uint64_t now)
{
	char k[32];
	int kl = key_of(k, tag, i);
	memset(valbuf, (int)(i & 0xFF), len);
	return fx_set(&sh, fx_b(k, (size_t)kl), fx_b(valbuf, len), 0, now);
}

static enum pm_status get_i(char tag, uint32_t i, uint64_t now, struct pm_bytes *v)
{
	char k[32];
	int kl = key_of(k, tag, i);
	return fx_get(&sh, fx_b(k, (size_t)kl), now, v);
}

/* Footprint of a KV key as mem_used counts it (key ids are 8 bytes). */
static uint64_t kv_cost(uint32_t vlen)
{
	const uint32_t klen = 8;
	uint32_t blob = klen + vlen <= PM_SEED_INLINE_BYTES ? 0 : vlen >= 24 ? vlen : klen + vlen;
	return PM_SEED_BYTES + (blob ? pm_blob_footprint(blob) : 0);
}

/* ---------------------------------------------------------------- the bound under churn */

static void test_churn_bound(void)
{
	struct evlog log;
	fresh(&log);
	uint64_t total = 0, seed = 7;
	for (uint32_t i = 0; i < CHURN_KEYS; i++)
		total += kv_cost(vsize(i));
	const uint64_t max = total / 100 * CHURN_LIMIT_PCT;
	limit(max, PM_EVICT_HARVEST, 0, 1);
	uint32_t over = 0, failed = 0, writes = 0;
	for (uint32_t i = 0; i < CHURN_KEYS; i++) {
		failed += set_i('k', i, vsize(i), i) != PM_OK;
		over += pm_shard_mem_used(&sh) > max;
		writes++;
		if (pm_test_rand(&seed) % 100 < CHURN_OVERWRITE_PCT) { /* another size */
			uint32_t j = (uint32_t)(pm_test_rand(&seed) % (i + 1));
			enum pm_status st = set_i('k', j, vsize(j + i), i);
			failed += st != PM_OK;
			over += pm_shard_mem_used(&sh) > max;
			writes++;
		}
	}
	printf("\n  churn: %u writes, limit %llu of %llu bytes, %llu evicted, %llu keys left, "
	       "mem_used %llu", writes, (unsigned long long)max, (unsigned long long)total,
	       (unsigned long long)sh.stats.evicted_keys, (unsigned long long)sh.stats.keys,
	       (unsigned long long)pm_shard_mem_used(&sh));
	CU_ASSERT_EQUAL(over, 0);
	CU_ASSERT_EQUAL(failed, 0);
	CU_ASSERT_EQUAL(sh.stats.evicted_keys, log.n);
	CU_ASSERT(sh.stats.evicted_keys > CHURN_KEYS / 2);
	CU_ASSERT(pm_shard_mem_used(&sh) > max - max / 10); /* the limit is used, not wasted */
	struct pm_arena_stats st;
	pm_arena_stats(&sh.arena, &st); /* asserts the running count equals the classes' */
	CU_ASSERT_EQUAL(pm_shard_mem_used(&sh), (uint64_t)st.seeds_used * 64 + st.blob_bytes_used);
	pm_shard_destroy(&sh);
}

/* ---------------------------------------------------------------- hot set */

/* Cache-aside traffic: GET, and SET on a miss; returns the hit rate in %. The
 * same request sequence (seeded) for every policy; 1 ms per request, so the
 * counters decay over the run's 5 minutes. */
static double hot_run(uint8_t policy, uint32_t limit_pct, uint64_t *evicted_hash)
{
	struct evlog log;
	fresh(&log);
	uint64_t total = 0, rng = 42;
	for (uint32_t i = 0; i < HOT_KEYS; i++)
		total += kv_cost(vsize(i));
	limit(total / 100 * limit_pct, policy, 0, 99);
	uint64_t hits = 0;
	for (uint32_t r = 0; r < HOT_REQUESTS; r++) {
		bool hot = pm_test_rand(&rng) % 100 < HOT_PCT;
		uint32_t i = hot ? (uint32_t)(pm_test_rand(&rng) % HOT_SET)
				 : HOT_SET + (uint32_t)(pm_test_rand(&rng) % (HOT_KEYS - HOT_SET));
		if (get_i('h', i, r / HOT_REQUESTS_PER_MS, NULL) == PM_OK)
			hits++;
		else
			CU_ASSERT_EQUAL(set_i('h', i, vsize(i), r / HOT_REQUESTS_PER_MS), PM_OK);
	}
	if (evicted_hash)
		*evicted_hash = log.hash ^ log.n;
	pm_shard_destroy(&sh);
	return 100.0 * (double)hits / HOT_REQUESTS;
}

/* The hot keys hold 10 % of all bytes (sizes are drawn alike for hot and
 * cold keys). With a limit of 20 % no policy can hit more than about 91 %
 * (every hot request, plus the ~11 % of cold bytes that fit the other half);
 * measured: harvest 89.9 %, random 83.8 % — harvest within 1.2 points of the
 * ideal, random missing 1.6 times as often. With a limit of 10 % (just the hot
 * set) the choice matters more: harvest 79.3 %, random 65.1 %. Asserted: a
 * lead of at least 4 and 10 points (two thirds of the measured gaps, so a
 * change that loses a third of harvest's advantage fails) and harvest within
 * 4 points of the ideal at 20 %. The numbers are exact (a seeded RNG, time
 * from the request count) and the same on every machine. */
static const struct {
	uint32_t limit_pct;
	double margin_pp;
} hot_cases[] = { { 20, 4.0 }, { 10, 10.0 } };
#define HOT_IDEAL_20_PCT 91.1

static void test_hot_set(void)
{
	for (size_t c = 0; c < sizeof(hot_cases) / sizeof(hot_cases[0]); c++) {
		double harvest = hot_run(PM_EVICT_HARVEST, hot_cases[c].limit_pct, NULL);
		double random = hot_run(PM_EVICT_RANDOM, hot_cases[c].limit_pct, NULL);
		printf("\n  limit %u %%: hit rate harvest %.1f %%, random %.1f %%",
		       hot_cases[c].limit_pct, harvest, random);
		CU_ASSERT(harvest > random + hot_cases[c].margin_pp);
		if (hot_cases[c].limit_pct == 20)
			CU_ASSERT(harvest > HOT_IDEAL_20_PCT - 4.0);
	}
}

/* The same seed and requests evict the same keys in the same order; another
 * seed does not (so the comparison can fail). */
static void test_deterministic(void)
{
	uint64_t a = 0, b = 0, c = 0;
	struct evlog log;
	uint64_t hashes[2];
	for (int run = 0; run < 2; run++) {
		fresh(&log);
		limit(256 * 1024, PM_EVICT_HARVEST, 0, run == 0 ? 5 : 6);
		for (uint32_t i = 0; i < 20000; i++) {
			CU_ASSERT_EQUAL(set_i('d', i, vsize(i), i), PM_OK);
			(void)get_i('d', i / 2, i, NULL);
		}
		hashes[run] = log.hash;
		pm_shard_destroy(&sh);
	}
	(void)hot_run(PM_EVICT_HARVEST, 20, &a);
	(void)hot_run(PM_EVICT_HARVEST, 20, &b);
	(void)hot_run(PM_EVICT_RANDOM, 20, &c);
	CU_ASSERT_EQUAL(a, b);
	CU_ASSERT_NOT_EQUAL(a, c);
	CU_ASSERT_NOT_EQUAL(hashes[0], hashes[1]);
}

/* ---------------------------------------------------------------- noeviction */

static void test_noeviction(void)
{
	struct evlog log;
	fresh(&log);
	for (uint32_t i = 0; i < 100; i++)
		CU_ASSERT_EQUAL(set_i('n', i, 100, 0), PM_OK);
	const uint64_t used = pm_shard_mem_used(&sh);
	limit(used + 64, PM_EVICT_NOEVICTION, 0, 0); /* room for one more inline key */
	struct pm_arena_stats before, after;
	pm_arena_stats(&sh.arena, &before);
	/* an overwrite that needs a bigger blob: refused, old value intact */
	CU_ASSERT_EQUAL(set_i('n', 7, 1000, 0), PM_E_NOMEM);
	struct pm_bytes v;
	CU_ASSERT_EQUAL_FATAL(get_i('n', 7, 0, &v), PM_OK);
	CU_ASSERT(v.len == 100 && v.ptr[0] == 7 && v.ptr[99] == 7);
	/* a new key with a blob: refused, nothing added */
	CU_ASSERT_EQUAL(set_i('n', 500, 100, 0), PM_E_NOMEM);
	CU_ASSERT_EQUAL(get_i('n', 500, 0, NULL), PM_NOT_FOUND);
	pm_arena_stats(&sh.arena, &after);
	CU_ASSERT_EQUAL(pm_shard_mem_used(&sh), used);
	CU_ASSERT(memcmp(&before, &after, sizeof(before)) == 0);
	CU_ASSERT_EQUAL(sh.stats.keys, 100);
	CU_ASSERT_EQUAL(sh.stats.evicted_keys + log.n, 0);
	CU_ASSERT_EQUAL(sh.stats.evict_refused, 2);
	/* what fits is done: an inline key (64 B), a same-class overwrite, a shrink */
	CU_ASSERT_EQUAL(set_i('n', 501, 8, 0), PM_OK);
	CU_ASSERT_EQUAL(set_i('n', 8, 110, 0), PM_OK);
	CU_ASSERT_EQUAL(set_i('n', 9, 30, 0), PM_OK);
	CU_ASSERT_EQUAL(set_i('n', 502, 8, 0), PM_OK); /* the shrink made room */
	CU_ASSERT(pm_shard_mem_used(&sh) <= used + 64);
	/* a vector that does not fit is refused before anything changes */
	float vec[64] = { 1 };
	CU_ASSERT_EQUAL(fx_vadd(&sh, fx_s("vec"), NULL, vec, 64, 0, 0), PM_E_NOMEM);
	CU_ASSERT_EQUAL(sh.ncolls, 0); /* the default collection it would make is gone */
	pm_shard_destroy(&sh);
}

/* ---------------------------------------------------------------- vectors */

#define VDIM 16u

static enum pm_status create(const char *name, uint8_t index, uint8_t flags)
{
	struct pm_request r = { .op = PM_OP_CCREATE, .collection = fx_s(name),
				.params = { .dim = VDIM, .index = index, .hnsw_m = 8,
					    .ef_construction = 64, .flags = flags } };
	struct pm_reply rep;
	pm_shard_apply(&sh, &r, 0, &rep);
	return rep.status;
}

static enum pm_status vadd_i(const char *coll, char tag, uint32_t i, uint64_t now)
{
	float v[VDIM];
	uint64_t s = i * 31u + (uint8_t)tag;
	for (uint32_t j = 0; j < VDIM; j++)
		v[j] = (float)(pm_test_rand(&s) % 1000) / 10.0f;
	char k[32];
	int kl = key_of(k, tag, i);
	return fx_vadd(&sh, fx_b(k, (size_t)kl), coll, v, VDIM, 0, now);
}

static enum pm_status vget_i(char tag, uint32_t i)
{
	char k[32];
	int kl = key_of(k, tag, i);
	struct pm_request r = { .op = PM_OP_VGET, .key = fx_b(k, (size_t)kl) };
	struct pm_reply rep;
	pm_shard_apply(&sh, &r, 0, &rep);
	return rep.status;
}

/* Vectors of a named collection without the flag, and of a default one, stay
 * even when only they would make room: KV writes evict KV keys, then fail. */
static void test_vectors_not_evictable(void)
{
	struct evlog log;
	fresh(&log);
	CU_ASSERT_EQUAL_FATAL(create("keep", PM_INDEX_FLAT, 0), PM_OK);
	for (uint32_t i = 0; i < 1000; i++) {
		CU_ASSERT_EQUAL(vadd_i("keep", 'v', i, 0), PM_OK);
		CU_ASSERT_EQUAL(vadd_i(NULL, 'w', i, 0), PM_OK);
	}
	limit(pm_shard_mem_used(&sh) + 200 * 1024, PM_EVICT_HARVEST, 0, 3);
	uint32_t refused = 0;
	for (uint32_t i = 0; i < 2000; i++)
		refused += set_i('k', i, 1500, 0) == PM_E_NOMEM;
	CU_ASSERT(sh.stats.evicted_keys > 0);
	CU_ASSERT_EQUAL(sh.stats.evicted_vectors, 0);
	CU_ASSERT_EQUAL(refused, 0); /* KV keys alone always made room for one KV key */
	/* now only the vectors could make room: no KV key is left */
	for (uint32_t i = 0; i < 2000; i++) {
		char k[32];
		int kl = key_of(k, 'k', i);
		(void)pm_kv_del(&sh, (const uint8_t *)k, (uint32_t)kl, pm_hash(k, (size_t)kl), 0);
	}
	CU_ASSERT_EQUAL(sh.stats.keys, 0);
	limit(pm_shard_mem_used(&sh) + 64, PM_EVICT_HARVEST, 0, 3);
	CU_ASSERT_EQUAL(set_i('z', 0, 2000, 0), PM_E_NOMEM);
	for (uint32_t i = 0; i < 1000; i++) {
		CU_ASSERT_EQUAL(vget_i('v', i), PM_OK);
		CU_ASSERT_EQUAL(vget_i('w', i), PM_OK);
	}
	CU_ASSERT_EQUAL(sh.stats.vectors, 2000);
	pm_shard_destroy(&sh);
}

/* Maintenance until idle; PM_EVICT_SWEEP_PRESSURE_PCT makes it sweep even a
 * few tombstones when the shard is near its limit. */
static void maintain_all(void)
{
	for (int i = 0; i < 100000 && pm_shard_maintain(&sh, 0, 0); i++)
		;
}

static void test_hnsw_evictable(void)
{
	struct evlog log;
	fresh(&log);
	CU_ASSERT_EQUAL_FATAL(create("cache", PM_INDEX_HNSW, PM_COLL_EVICTABLE), PM_OK);
	for (uint32_t i = 0; i < 300; i++)
		CU_ASSERT_EQUAL(vadd_i("cache", 'c', i, 0), PM_OK);
	const uint64_t max = pm_shard_mem_used(&sh) + 64 * 1024;
	limit(max, PM_EVICT_HARVEST, 0, 11);
	uint32_t over = 0, retried = 0;
	for (uint32_t i = 300; i < 3000; i++) {
		enum pm_status st = vadd_i("cache", 'c', i, 0);
		if (st == PM_E_NOMEM) { /* the room is in tombstones: sweep, retry */
			retried++;
			maintain_all();
			st = vadd_i("cache", 'c', i, 0);
		}
		CU_ASSERT_EQUAL(st, PM_OK);
		over += pm_shard_mem_used(&sh) > max;
	}
	maintain_all();
	struct pm_collection *c = pm_coll_find(&sh, (const uint8_t *)"cache", 5);
	CU_ASSERT_FATAL(c != NULL);
	printf("\n  hnsw: %llu vectors evicted, %u writes waited for a sweep, %llu live",
	       (unsigned long long)sh.stats.evicted_vectors, retried, (unsigned long long)c->count);
	CU_ASSERT_EQUAL(over, 0);
	CU_ASSERT(sh.stats.evicted_vectors > 2000);
	CU_ASSERT_EQUAL(sh.stats.evicted_vectors, log.n);
	CU_ASSERT_EQUAL(c->hnsw.live, c->count);
	CU_ASSERT_EQUAL(c->hnsw.tombstones, 0);      /* swept under pressure, though < 64 */
	CU_ASSERT_EQUAL(sh.tomb_bytes, 0);
	uint32_t present = 0;
	for (uint32_t i = 0; i < 3000; i++)
		present += vget_i('c', i) == PM_OK;
	CU_ASSERT_EQUAL(present, c->count);
	static uint32_t scratch[1u << 16];
	struct pm_hnsw_report rep;
	CU_ASSERT_FATAL(c->hnsw.high <= sizeof(scratch) / sizeof(scratch[0]));
	enum pm_status st = pm_hnsw_validate(&sh, c, scratch, &rep);
	if (st != PM_OK)
		printf("\n  %s", rep.why);
	CU_ASSERT_EQUAL(st, PM_OK);
	/* the graph answers with live vectors of the collection only */
	static struct pm_knn_hit hits[PM_K_MAX];
	uint64_t s = 5;
	for (int q = 0; q < 20; q++) {
		float v[VDIM];
		for (uint32_t j = 0; j < VDIM; j++)
			v[j] = (float)(pm_test_rand(&s) % 1000) / 10.0f;
		uint32_t n = pm_hnsw_search(&sh, c, v, 10, 32, hits);
		CU_ASSERT_EQUAL(n, 10);
		for (uint32_t i = 0; i < n; i++) {
			const struct pm_seed *hs = pm_seed_at(&sh.arena, hits[i].seed);
			CU_ASSERT(hs->kind == PM_SEED_VECTOR && &sh.colls[hs->coll] == c);
		}
	}
	pm_shard_destroy(&sh);
}

/* ---------------------------------------------------------------- size-awareness */

/* All keys equally (in)frequent: harvest evicts the big values first; random
 * takes small and big alike. */
static uint32_t big_share(uint8_t policy)
{
	struct evlog log;
	fresh(&log);
	for (uint32_t i = 0; i < 2000; i++) {
		CU_ASSERT_EQUAL(set_i('S', i, 16, 0), PM_OK);
		CU_ASSERT_EQUAL(set_i('B', i, 1000, 0), PM_OK);
	}
	limit(pm_shard_mem_used(&sh), policy, 0, 13);
	for (uint32_t i = 0; i < 500; i++)
		CU_ASSERT_EQUAL(set_i('m', i, 200, 0), PM_OK);
	CU_ASSERT_FATAL(log.n > 0);
	return (uint32_t)(100 * log.big / log.n);
}

static void test_size_aware(void)
{
	uint32_t harvest = big_share(PM_EVICT_HARVEST), random = big_share(PM_EVICT_RANDOM);
	printf("\n  big values among the evicted: harvest %u %%, random %u %%", harvest, random);
	CU_ASSERT(harvest >= 95);
	CU_ASSERT(random < 80);
}

/* ---------------------------------------------------------------- LFU */

static void test_lfu(void)
{
	struct evlog log;
	fresh(&log);
	CU_ASSERT_EQUAL(set_i('l', 1, 8, 0), PM_OK);
	char k[32];
	key_of(k, 'l', 1);
	struct pm_seed *s = pm_seed_at(&sh.arena, pm_ks_find(&sh, (const uint8_t *)k, 8,
							     pm_hash(k, 8), 0));
	CU_ASSERT_EQUAL(pm_lfu_count(&sh, s, 0), PM_LFU_INIT);
	for (int i = 0; i < 1000; i++) /* no limit: reads do not count */
		(void)get_i('l', 1, 0, NULL);
	CU_ASSERT_EQUAL(pm_lfu_count(&sh, s, 0), PM_LFU_INIT);
	limit(ARENA_BYTES / 2, PM_EVICT_HARVEST, 0, 17);
	for (int i = 0; i < 100; i++)
		(void)get_i('l', 1, 0, NULL);
	unsigned c100 = pm_lfu_count(&sh, s, 0);
	for (int i = 0; i < 10000; i++)
		(void)get_i('l', 1, 0, NULL);
	unsigned c10k = pm_lfu_count(&sh, s, 0);
	printf("\n  counter after 100 reads %u, after 10100 %u", c100, c10k);
	CU_ASSERT(c100 > PM_LFU_INIT + 3 && c100 < PM_LFU_INIT + 20); /* logarithmic */
	CU_ASSERT(c10k > c100 + 10 && c10k < 120);
	/* decay: one per minute, from the minute of the last touch */
	CU_ASSERT_EQUAL(pm_lfu_count(&sh, s, 5 * PM_LFU_MINUTE_MS), c10k - 5);
	CU_ASSERT_EQUAL(pm_lfu_count(&sh, s, 200 * PM_LFU_MINUTE_MS), 0);
	/* the minute wraps at 256: a key idle 260 minutes looks idle for 4 */
	CU_ASSERT_EQUAL(pm_lfu_count(&sh, s, 260 * PM_LFU_MINUTE_MS), c10k - 4);
	/* an overwrite keeps the count (and counts) */
	CU_ASSERT_EQUAL(set_i('l', 1, 2000, 0), PM_OK);
	CU_ASSERT(pm_lfu_count(&sh, s, 0) >= c10k);
	pm_shard_destroy(&sh);
}

/* ---------------------------------------------------------------- bounds */

static void test_config_bounds(void)
{
	struct evlog log;
	fresh(&log);
	struct pm_evict_config c = { .maxmemory_bytes = 1, .samples = PM_EVICT_SAMPLES_MAX };
	CU_ASSERT_EQUAL(pm_shard_set_maxmemory(&sh, &c), PM_OK);
	c.samples = PM_EVICT_SAMPLES_MAX + 1;
	CU_ASSERT_EQUAL(pm_shard_set_maxmemory(&sh, &c), PM_E_PARAM);
	c.samples = 0;
	c.policy = PM_EVICT_POLICY_COUNT;
	CU_ASSERT_EQUAL(pm_shard_set_maxmemory(&sh, &c), PM_E_PARAM);
	c.policy = PM_EVICT_RANDOM;
	c.maxmemory_bytes = ARENA_BYTES + 1;
	CU_ASSERT_EQUAL(pm_shard_set_maxmemory(&sh, &c), PM_E_PARAM);
	c.maxmemory_bytes = ARENA_BYTES;
	CU_ASSERT_EQUAL(pm_shard_set_maxmemory(&sh, &c), PM_OK);
	CU_ASSERT_EQUAL(sh.evict.cfg.samples, PM_EVICT_SAMPLES_DEFAULT);
	CU_ASSERT_STRING_EQUAL(pm_evict_policy_name(PM_EVICT_HARVEST), "harvest");
	CU_ASSERT_PTR_NULL(pm_evict_policy_name(PM_EVICT_POLICY_COUNT));
	/* a write larger than the whole limit is refused without evicting */
	CU_ASSERT_EQUAL(set_i('a', 0, 8, 0), PM_OK);
	limit(1024, PM_EVICT_HARVEST, 0, 1);
	CU_ASSERT_EQUAL(set_i('a', 1, 2000, 0), PM_E_NOMEM);
	CU_ASSERT_EQUAL(log.n, 0);
	pm_shard_destroy(&sh);
}

/* A limit lowered far below what the shard holds: one write evicts at most
 * PM_EVICT_VICTIMS_PER_WRITE_MAX keys, is refused, and later writes go on
 * evicting until they fit. */
static void test_victims_per_write(void)
{
	struct evlog log;
	fresh(&log);
	for (uint32_t i = 0; i < 3 * PM_EVICT_VICTIMS_PER_WRITE_MAX; i++)
		CU_ASSERT_EQUAL(set_i('q', i, 8, 0), PM_OK);
	/* 1.5 x the bound must go: the first write evicts the bound, the next the rest */
	limit(64 * 3 * PM_EVICT_VICTIMS_PER_WRITE_MAX / 2, PM_EVICT_HARVEST, 0, 1);
	CU_ASSERT_EQUAL(set_i('r', 0, 8, 0), PM_E_NOMEM);
	CU_ASSERT_EQUAL(log.n, PM_EVICT_VICTIMS_PER_WRITE_MAX);
	CU_ASSERT_EQUAL(set_i('r', 0, 8, 0), PM_OK);
	CU_ASSERT(pm_shard_mem_used(&sh) <= sh.evict.cfg.maxmemory_bytes);
	pm_shard_destroy(&sh);
}

/* One live key among 65536 seed slots: a probe finds it only when its random
 * start is at most PM_EVICT_PROBE_SEEDS_MAX slots before it (p = 65 / 65536),
 * and an eviction makes at most PM_EVICT_PROBES_MAX probes, so it finds the
 * key with p = 1 - (1 - 65/65536)^256 = 22 %; unbounded probes or an
 * unbounded scan would always find it. Then the hook: a refused eviction
 * refuses the write. */
static void test_probe_and_hook(void)
{
	struct evlog log;
	fresh(&log);
	const uint32_t slots = SEEDS, attempts = 400;
	for (uint32_t i = 0; i < slots; i++)
		CU_ASSERT_EQUAL(set_i('p', i, 8, 0), PM_OK);
	for (uint32_t i = 0; i < slots; i++) {
		char k[32];
		int kl = key_of(k, 'p', i);
		if (i != slots / 2)
			CU_ASSERT_EQUAL(pm_kv_del(&sh, (const uint8_t *)k, (uint32_t)kl,
						  pm_hash(k, (size_t)kl), 0), PM_OK);
	}
	limit(PM_SEED_BYTES, PM_EVICT_RANDOM, 1, 21);
	uint32_t found = 0;
	for (uint32_t a = 0; a < attempts; a++) {
		if (pm_evict_make_room(&sh, PM_SEED_BYTES, PM_SEED_NONE, 0) != PM_OK)
			continue;
		found++;
		CU_ASSERT_EQUAL_FATAL(set_i('p', slots / 2, 8, 0), PM_OK); /* back in its slot */
	}
	printf("\n  sparse table: %u of %u evictions found the key", found, attempts);
	CU_ASSERT(found > attempts / 10);
	CU_ASSERT(found < attempts / 2); /* expected 22 % */
	/* the hook refuses: nothing evicted, the write refused */
	limit(PM_SEED_BYTES, PM_EVICT_HARVEST, PM_EVICT_SAMPLES_MAX, 21);
	log.refuse_after = (uint32_t)log.n;
	uint64_t before = log.n;
	uint32_t refused = 0;
	for (uint32_t a = 0; a < 20; a++)
		refused += set_i('o', a, 8, 0) == PM_E_NOMEM;
	CU_ASSERT_EQUAL(refused, 20);
	CU_ASSERT_EQUAL(log.n, before);
	CU_ASSERT(sh.stats.evict_log_refused > 0);
	CU_ASSERT_EQUAL(get_i('p', slots / 2, 0, NULL), PM_OK);
	pm_shard_destroy(&sh);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "bound holds after every write under churn", test_churn_bound },
		{ "hot set: harvest beats random", test_hot_set },
		{ "deterministic under a seed", test_deterministic },
		{ "noeviction refuses cleanly", test_noeviction },
		{ "vectors: non-evictable collections stay", test_vectors_not_evictable },
		{ "vectors: evictable HNSW, graph valid", test_hnsw_evictable },
		{ "size-aware: big values first", test_size_aware },
		{ "LFU counter: logarithmic, decays", test_lfu },
		{ "config bounds", test_config_bounds },
		{ "victims per write bound", test_victims_per_write },
		{ "probe bound, log hook refusal", test_probe_and_hook },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("evict", tests);
}
