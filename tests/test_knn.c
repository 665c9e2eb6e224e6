/* SPDX-License-Identifier: MIT
 *
 * test_knn.c — exact KNN against a naive reference (score every vector, sort
 * everything, take k) on random data: the same keys and the same scores, for
 * every metric, every distance kernel the CPU has, and k from 1 to above the
 * collection size. Also: ties broken by key, results independent of insertion
 * order, and k / ef / dimension limits; the work cap (PM_E_WORK_LIMIT) of
 * exact and graph searches, and exact scans run in steps (pm_vquery_*),
 * begun again when their collection changes between two steps.
 */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "knn.h"
#include "vector.h"

#define MIB (UINT64_C(1) << 20)

static struct pm_shard sh;

struct ref {
	char key[16];
	float dist;
};

static int ref_cmp(const void *pa, const void *pb)
{
	const struct ref *a = pa, *b = pb;
	if (a->dist != b->dist)
		return a->dist < b->dist ? -1 : 1;
	size_t la = strlen(a->key), lb = strlen(b->key);
	int c = memcmp(a->key, b->key, la < lb ? la : lb);
	return c ? c : (int)la - (int)lb;
}

static void rand_vec(float *v, uint32_t dim, uint64_t *rng)
{
	for (uint32_t i = 0; i < dim; i++)
		v[i] = (float)((int)(pm_test_rand(rng) % 20001) - 10000) / 1000.0f;
}

static void query(const char *coll, const float *q, uint32_t dim, uint32_t k,
		  struct pm_reply *rep)
{
	struct pm_request r = { .op = PM_OP_VQUERY, .vec = (const uint8_t *)q, .dim = dim, .k = k,
				.collection = coll ? fx_s(coll) : fx_b(NULL, 0) };
	pm_shard_apply(&sh, &r, 0, rep);
}

/* Load N random vectors, run queries, compare with the naive reference. At
 * DIM_BIG the scan's L2 stops early past the worst kept hit (distance.h's
 * l2sq_bounded): the same hits and distances, bit for bit. */
enum { DIM_SMALL = 37, DIM_BIG = 300 };
static void check_against_reference(uint8_t metric, const struct pm_kernels *kern, uint32_t dim)
{
	enum { N = 1500, QUERIES = 12 };
	static float base[N][DIM_BIG];
	static struct ref ref[N];
	fx_shard(&sh, 64 * MIB, 4096);
	sh.kern = kern;
	struct pm_request c = { .op = PM_OP_CCREATE, .collection = fx_s("c"),
				.params = { .dim = dim, .metric = metric } };
	struct pm_reply rep;
	pm_shard_apply(&sh, &c, 0, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
	uint64_t rng = 1234 + metric;
	char key[16];
	for (int i = 0; i < N; i++) {
		rand_vec(base[i], dim, &rng);
		snprintf(key, sizeof(key), "v%d", i);
		CU_ASSERT_EQUAL_FATAL(fx_vadd(&sh, fx_s(key), "c", base[i], dim, 0, 0), PM_OK);
	}
	const uint32_t ks[] = { 1, 10, 100, 1000, PM_K_MAX };
	int mismatches = 0;
	for (int qi = 0; qi < QUERIES; qi++) {
		float q[DIM_BIG];
		rand_vec(q, dim, &rng);
		float qn = pm_norm(q, dim);
		for (int i = 0; i < N; i++) {
			snprintf(ref[i].key, sizeof(ref[i].key), "v%d", i);
			ref[i].dist = pm_knn_distance(kern, metric, q, qn, base[i], pm_norm(base[i], dim),
						      dim);
		}
		qsort(ref, N, sizeof(ref[0]), ref_cmp);
		uint32_t k = ks[qi % 5];
		query("c", q, dim, k, &rep);
		CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
		CU_ASSERT_EQUAL_FATAL(rep.nhits, k < N ? k : N);
		for (uint32_t i = 0; i < rep.nhits; i++) {
			mismatches += rep.keys[i].len != strlen(ref[i].key) ||
				      memcmp(rep.keys[i].ptr, ref[i].key, rep.keys[i].len) != 0;
			mismatches += rep.hits[i].dist != ref[i].dist;
		}
	}
	if (mismatches)
		printf(" [%d mismatches]", mismatches);
	CU_ASSERT_EQUAL(mismatches, 0);
	pm_shard_destroy(&sh);
}

static void test_reference_all_metrics_all_kernels(void)
{
	for (int isa = 0; isa < PM_ISA_COUNT; isa++) {
		const struct pm_kernels *k = pm_kernels_for((enum pm_isa)isa);
		if (!k)
			continue;
		printf("\n  kernel %s:", k->name);
		for (uint8_t m = 0; m < PM_METRIC_COUNT; m++) {
			check_against_reference(m, k, DIM_SMALL);
			check_against_reference(m, k, DIM_BIG);
			printf(" metric %u ok", m);
		}
	}
}

static void test_ties_broken_by_key(void)
{
	fx_shard(&sh, 16 * MIB, 64);
	float v[3] = { 1, 1, 1 }, far[3] = { 9, 9, 9 };
	const char *keys[] = { "b", "a", "ab", "c", "aa" };
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(fx_vadd(&sh, fx_s(keys[i]), NULL, v, 3, 0, 0), PM_OK);
	CU_ASSERT_EQUAL(fx_vadd(&sh, fx_s("0far"), NULL, far, 3, 0, 0), PM_OK);
	struct pm_reply rep;
	query(NULL, v, 3, 4, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.nhits, 4);
	const char *want[] = { "a", "aa", "ab", "b" };
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(rep.keys[i].len, strlen(want[i]));
		CU_ASSERT(memcmp(rep.keys[i].ptr, want[i], rep.keys[i].len) == 0);
		CU_ASSERT_EQUAL(rep.hits[i].dist, 0.0f);
	}
	pm_shard_destroy(&sh);
}

/* Same set, inserted forwards into one shard and backwards (with deletes and
 * re-adds in between) into another: identical answers. */
static void test_order_independent(void)
{
	enum { N = 800, DIM = 8 };
	static float base[N][DIM];
	uint64_t rng = 5;
	for (int i = 0; i < N; i++)
		for (int j = 0; j < DIM; j++) /* coarse values: many exact ties */
			base[i][j] = (float)(pm_test_rand(&rng) % 4);
	static struct pm_bytes first[64];
	static char firstkeys[64][16];
	static struct pm_knn_hit firsthits[64];
	char key[16];
	float q[DIM] = { 1, 2, 1, 2, 1, 2, 1, 2 };
	for (int pass = 0; pass < 2; pass++) {
		fx_shard(&sh, 16 * MIB, 2048);
		for (int n = 0; n < N; n++) {
			int i = pass ? N - 1 - n : n;
			snprintf(key, sizeof(key), "k%d", i);
			if (pass && i % 7 == 0) { /* churn first */
				CU_ASSERT_EQUAL(fx_vadd(&sh, fx_s(key), NULL, base[(i + 1) % N], DIM, 0, 0), PM_OK);
				struct pm_request d = { .op = PM_OP_VDEL, .key = fx_s(key) };
				struct pm_reply r;
				pm_shard_apply(&sh, &d, 0, &r);
			}
			CU_ASSERT_EQUAL(fx_vadd(&sh, fx_s(key), NULL, base[i], DIM, 0, 0), PM_OK);
		}
		struct pm_reply rep;
		query(NULL, q, DIM, 64, &rep);
		CU_ASSERT_EQUAL_FATAL(rep.nhits, 64);
		for (int i = 0; i < 64; i++) {
			if (pass == 0) {
				memcpy(firstkeys[i], rep.keys[i].ptr, rep.keys[i].len);
				first[i] = fx_b(firstkeys[i], rep.keys[i].len);
				firsthits[i] = rep.hits[i];
				continue;
			}
			CU_ASSERT_EQUAL(rep.keys[i].len, first[i].len);
			CU_ASSERT(memcmp(rep.keys[i].ptr, first[i].ptr, first[i].len) == 0);
			CU_ASSERT_EQUAL(rep.hits[i].dist, firsthits[i].dist);
		}
		pm_shard_destroy(&sh);
	}
}

static void test_limits(void)
{
	fx_shard(&sh, 16 * MIB, 64);
	float v[4] = { 1, 2, 3, 4 };
	CU_ASSERT_EQUAL(fx_vadd(&sh, fx_s("a"), NULL, v, 4, 0, 0), PM_OK);
	struct pm_reply rep;
	query(NULL, v, 4, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_K);
	query(NULL, v, 4, PM_K_MAX + 1, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_K);
	query(NULL, v, 4, PM_K_MAX, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.nhits, 1);
	query(NULL, v, 0, 1, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_DIM);
	query(NULL, v, PM_DIM_MAX + 1, 1, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_DIM);
	query("missing", v, 4, 1, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_NOT_FOUND);
	query(NULL, v, 3, 1, &rep); /* no vectors of that dimension: no hits */
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.nhits, 0);
	struct pm_request r = { .op = PM_OP_VQUERY, .vec = (const uint8_t *)v, .dim = 4, .k = 10,
				.ef = 5 };
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_EF);
	r.ef = PM_EF_MAX + 1;
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_EF);
	float nan_q[4] = { 1, 0.0f / 0.0f, 0, 0 };
	query(NULL, nan_q, 4, 1, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_NAN);
	pm_shard_destroy(&sh);
}

/* ---------------------------------------------------------------- work */

/* A collection `name` of n random vectors of dim, keys "<prefix><i>". */
static void fill(const char *name, uint8_t index, uint32_t n, uint32_t dim, const char *prefix,
		 uint64_t seed)
{
	struct pm_request c = { .op = PM_OP_CCREATE, .collection = fx_s(name),
				.params = { .dim = dim, .index = index } };
	struct pm_reply rep;
	pm_shard_apply(&sh, &c, 0, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
	float v[64];
	char key[32];
	CU_ASSERT_FATAL(dim <= 64);
	for (uint32_t i = 0; i < n; i++) {
		rand_vec(v, dim, &seed);
		snprintf(key, sizeof(key), "%s%u", prefix, i);
		CU_ASSERT_EQUAL_FATAL(fx_vadd(&sh, fx_s(key), name, v, dim, 0, 0), PM_OK);
	}
}

/* The hits of a reply, as (key, distance) text, to compare two answers. */
static void hits_text(const struct pm_reply *rep, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = '\0';
	for (uint32_t i = 0; i < rep->nhits && len < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, "%.*s=%a ", (int)rep->keys[i].len,
					(const char *)rep->keys[i].ptr, (double)rep->hits[i].dist);
}

/* An exact scan past the cap is refused before it reads anything; at the cap
 * it runs; nothing else changes. */
static void test_work_cap_flat(void)
{
	enum { N = 1000, DIM = 16 };
	const uint64_t cost = pm_knn_distance_bytes(DIM);
	CU_ASSERT_EQUAL(cost, 64u + 4u * DIM);
	fx_shard(&sh, 32 * MIB, 4096);
	fill("big", PM_INDEX_FLAT, N, DIM, "b", 1);
	fill("small", PM_INDEX_FLAT, 10, DIM, "s", 2);
	float q[DIM] = { 1 };
	struct pm_reply rep;
	static char before[64 * 1024], after[64 * 1024];
	sh.knn_work_max = 0; /* no cap */
	query("big", q, DIM, 50, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.work, N * cost);
	hits_text(&rep, before, sizeof(before));
	uint64_t queries = sh.stats.knn_queries, work = sh.stats.knn_work;

	sh.knn_work_max = N * cost - 1;
	query("big", q, DIM, 50, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_WORK_LIMIT);
	CU_ASSERT_EQUAL(rep.nhits, 0);
	CU_ASSERT_EQUAL(rep.work, 0); /* refused before the scan */
	CU_ASSERT_EQUAL(sh.stats.errors[PM_E_WORK_LIMIT], 1);
	CU_ASSERT_EQUAL(sh.stats.knn_queries, queries);
	CU_ASSERT_EQUAL(sh.stats.knn_work, work);
	/* nothing else is affected: the smaller collection, reads, the data */
	query("small", q, DIM, 5, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.nhits, 5);
	CU_ASSERT_EQUAL(rep.work, 10 * cost);
	struct pm_request g = { .op = PM_OP_VGET, .key = fx_s("b7") };
	pm_shard_apply(&sh, &g, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(pm_coll_find(&sh, (const uint8_t *)"big", 3)->count, N);

	sh.knn_work_max = N * cost; /* exactly the scan's cost */
	query("big", q, DIM, 50, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	hits_text(&rep, after, sizeof(after));
	CU_ASSERT_STRING_EQUAL(before, after);
	CU_ASSERT_EQUAL(sh.stats.errors[PM_E_WORK_LIMIT], 1);
	pm_shard_destroy(&sh);
}

/* A graph search stops once it would read past the cap: WORK_LIMIT, work
 * counted up to the cap; with the cap at the work it needs it answers as
 * without one. An exact query on the same collection is a scan, capped as one. */
static void test_work_cap_hnsw(void)
{
	enum { N = 10000, DIM = 16 };
	const uint64_t cost = pm_knn_distance_bytes(DIM);
	fx_shard(&sh, 64 * MIB, 16384);
	fill("g", PM_INDEX_HNSW, N, DIM, "g", 3);
	float q[DIM] = { 2, -1 };
	struct pm_request r = { .op = PM_OP_VQUERY, .vec = (const uint8_t *)q, .dim = DIM,
				.k = 50, .ef = 100, .collection = fx_s("g") };
	struct pm_reply rep;
	static char free_run[64 * 1024], capped[64 * 1024];
	sh.knn_work_max = 0;
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.nhits, 50);
	const uint64_t need = rep.work;
	CU_ASSERT(need > 0 && need % cost == 0);
	CU_ASSERT(need < N / 2 * cost); /* a graph search, not a scan */
	hits_text(&rep, free_run, sizeof(free_run));
	printf("\n  ef 100: %llu distances of %u", (unsigned long long)(need / cost), N);

	sh.knn_work_max = need - 1;
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_WORK_LIMIT);
	CU_ASSERT_EQUAL(rep.nhits, 0);
	CU_ASSERT(rep.work <= need - 1 && rep.work > need - 1 - cost);
	sh.knn_work_max = need / 10;
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_WORK_LIMIT);
	CU_ASSERT(rep.work <= need / 10);
	sh.knn_work_max = need;
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.work, need);
	hits_text(&rep, capped, sizeof(capped));
	CU_ASSERT_STRING_EQUAL(free_run, capped);
	/* the index is left as it was: inserts and the validator are fine */
	static uint32_t scratch[N + 64];
	struct pm_hnsw_report hr;
	CU_ASSERT_EQUAL(pm_hnsw_validate(&sh, pm_coll_find(&sh, (const uint8_t *)"g", 1), scratch,
					 &hr), PM_OK);
	float v[DIM] = { 3 };
	CU_ASSERT_EQUAL(fx_vadd(&sh, fx_s("new"), "g", v, DIM, 0, 0), PM_OK);
	r.exact = true; /* a scan of N + 1 vectors: past need */
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_WORK_LIMIT);
	CU_ASSERT_EQUAL(rep.work, 0);
	sh.knn_work_max = (N + 1) * cost;
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.work, (N + 1) * cost);
	pm_shard_destroy(&sh);
}

/* One query run in steps of `budget` bytes, with `between` called between
 * two steps; its reply in rep (keys valid until the shard changes). */
static uint32_t run_steps(const struct pm_request *r, uint64_t budget, void (*between)(uint32_t),
			  struct pm_reply *rep)
{
	static float qbuf[PM_DIM_MAX] __attribute__((aligned(64)));
	static struct pm_knn_hit hits[PM_K_MAX];
	struct pm_vquery v;
	uint32_t steps = 0;
	if (pm_vquery_begin(&sh, &v, r, qbuf, hits) == PM_OK)
		while (!pm_vquery_step(&sh, &v, budget))
			if (++steps, between)
				between(steps);
	pm_shard_vquery_end(&sh, &v, rep);
	return steps;
}

static void add_one(uint32_t step)
{
	float v[16] = { (float)step };
	char key[32];
	snprintf(key, sizeof(key), "late%u", step);
	CU_ASSERT_EQUAL(fx_vadd(&sh, fx_s(key), "c", v, 16, 0, 0), PM_OK);
}

static void drop_it(uint32_t step)
{
	if (step == 2) {
		struct pm_request d = { .op = PM_OP_CDROP, .collection = fx_s("c") };
		struct pm_reply rep;
		pm_shard_apply(&sh, &d, 0, &rep);
		CU_ASSERT_EQUAL(rep.status, PM_OK);
	}
}

static void write_elsewhere(uint32_t step)
{
	float v[16] = { (float)step };
	char key[32];
	snprintf(key, sizeof(key), "other%u", step);
	CU_ASSERT_EQUAL(fx_vadd(&sh, fx_s(key), "d", v, 16, 0, 0), PM_OK);
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s(key), fx_s("kv"), 0, 0), PM_E_WRONGTYPE);
}

/* Steps give the answer of the whole scan; a write to another collection does
 * not disturb them; one to the scanned collection makes it begin again, and
 * after PM_KNN_SCAN_RESTARTS_MAX new beginnings it ends in one step, with the
 * answer of the collection as it then is; a dropped collection is NOT_FOUND. */
static void test_scan_in_steps(void)
{
	enum { N = 3000, DIM = 16 };
	const uint64_t cost = pm_knn_distance_bytes(DIM);
	fx_shard(&sh, 64 * MIB, 8192);
	fill("c", PM_INDEX_FLAT, N, DIM, "c", 4);
	fill("d", PM_INDEX_FLAT, 10, DIM, "d", 5);
	float q[DIM] = { 0.5f, 0.25f };
	struct pm_request r = { .op = PM_OP_VQUERY, .vec = (const uint8_t *)q, .dim = DIM,
				.k = 64, .collection = fx_s("c") };
	struct pm_reply rep;
	static char whole[64 * 1024], stepped[64 * 1024];
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
	hits_text(&rep, whole, sizeof(whole));
	uint64_t ops = sh.stats.ops[PM_OP_VQUERY];

	/* 100 members a step (and a budget below one member: one a step) */
	CU_ASSERT_EQUAL(run_steps(&r, 100 * cost, NULL, &rep), N / 100 - 1);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.work, N * cost);
	hits_text(&rep, stepped, sizeof(stepped));
	CU_ASSERT_STRING_EQUAL(whole, stepped);
	CU_ASSERT_EQUAL(run_steps(&r, 1, NULL, &rep), N - 1);
	hits_text(&rep, stepped, sizeof(stepped));
	CU_ASSERT_STRING_EQUAL(whole, stepped);
	CU_ASSERT_EQUAL(sh.stats.ops[PM_OP_VQUERY], ops + 2); /* counted as pm_shard_apply does */

	/* writes elsewhere between the steps: no new beginning */
	uint64_t restarts = sh.stats.knn_restarts;
	run_steps(&r, 500 * cost, write_elsewhere, &rep);
	hits_text(&rep, stepped, sizeof(stepped));
	CU_ASSERT_STRING_EQUAL(whole, stepped);
	CU_ASSERT_EQUAL(sh.stats.knn_restarts, restarts);

	/* a vector added to the scanned collection after every step: the scan
	 * begins again PM_KNN_SCAN_RESTARTS_MAX times, then ends in one step,
	 * with the answer of the collection as it is at the end */
	uint32_t steps = run_steps(&r, 500 * cost, add_one, &rep);
	CU_ASSERT_EQUAL(steps, PM_KNN_SCAN_RESTARTS_MAX);
	CU_ASSERT_EQUAL(sh.stats.knn_restarts, restarts + PM_KNN_SCAN_RESTARTS_MAX);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	/* each beginning read 500 members; the last one all N and the added ones */
	CU_ASSERT_EQUAL(rep.work,
			(PM_KNN_SCAN_RESTARTS_MAX * 500 + N + PM_KNN_SCAN_RESTARTS_MAX) * cost);
	hits_text(&rep, stepped, sizeof(stepped));
	pm_shard_apply(&sh, &r, 0, &rep);
	hits_text(&rep, whole, sizeof(whole));
	CU_ASSERT_STRING_EQUAL(whole, stepped);
	CU_ASSERT_PTR_NOT_NULL(strstr(whole, "late")); /* the added vectors are near q */

	/* dropped between two steps: NOT_FOUND, as a query after the drop */
	run_steps(&r, 500 * cost, drop_it, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_NOT_FOUND);
	CU_ASSERT_EQUAL(rep.nhits, 0);
	pm_shard_destroy(&sh);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "matches naive reference (metrics x kernels)", test_reference_all_metrics_all_kernels },
		{ "ties broken by key", test_ties_broken_by_key },
		{ "independent of insertion order", test_order_independent },
		{ "k, ef, dim limits", test_limits },
		{ "work cap: an exact scan past it is refused before it starts", test_work_cap_flat },
		{ "work cap: a graph search stops at it", test_work_cap_hnsw },
		{ "exact scan in steps: same answer, begun again when written to", test_scan_in_steps },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("knn", tests);
}
