/* SPDX-License-Identifier: MIT
 *
 * test_hnsw.c — the HNSW index: recall@10 against exact search for each metric
 * and each distance kernel, the graph validator after builds, updates, deletes
 * and sweeps, memory returning close to a fresh build after churn, determinism,
 * small collections answered exactly, and bad input.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "hnsw.h"
#include "knn.h"
#include "vector.h"

#define MIB (UINT64_C(1) << 20)
#define DIM 24
#define N 4000
#define NQ 100
#define EF 40

static struct pm_shard sh;
static float base[2 * N][DIM];
static float queries[NQ][DIM];
static uint32_t scratch[4 * N];

/* Clustered data (harder than uniform noise, closer to real embeddings). */
static void make_data(uint64_t seed)
{
	float centres[32][DIM];
	for (int c = 0; c < 32; c++)
		for (int j = 0; j < DIM; j++)
			centres[c][j] = (float)(pm_test_rand(&seed) % 2000) / 100.0f - 10.0f;
	for (int i = 0; i < 2 * N + NQ; i++) {
		float *v = i < 2 * N ? base[i] : queries[i - 2 * N];
		const float *ctr = centres[pm_test_rand(&seed) % 32];
		for (int j = 0; j < DIM; j++)
			v[j] = ctr[j] + (float)(pm_test_rand(&seed) % 2000) / 100.0f - 10.0f;
	}
}

static enum pm_status create(const char *name, uint8_t metric, uint16_t m)
{
	struct pm_request r = { .op = PM_OP_CCREATE, .collection = fx_s(name),
				.params = { .dim = DIM, .metric = metric, .index = PM_INDEX_HNSW,
					    .hnsw_m = m, .ef_construction = 100, .ef_search = EF } };
	struct pm_reply rep;
	pm_shard_apply(&sh, &r, 0, &rep);
	return rep.status;
}

static void key_of(char *k, size_t n, int i)
{
	snprintf(k, n, "vec-%06d", i);
}

static void add(const char *coll, int i)
{
	char k[32];
	key_of(k, sizeof(k), i);
	CU_ASSERT_EQUAL_FATAL(fx_vadd(&sh, fx_s(k), coll, base[i], DIM, 0, 0), PM_OK);
}

static void del(int i)
{
	char k[32];
	key_of(k, sizeof(k), i);
	struct pm_request r = { .op = PM_OP_VDEL, .key = fx_s(k) };
	struct pm_reply rep;
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL_FATAL(rep.removed, 1);
}

static struct pm_collection *coll(const char *name)
{
	struct pm_collection *c = pm_coll_find(&sh, (const uint8_t *)name, (uint32_t)strlen(name));
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	return c;
}

static void expect_valid(const char *name)
{
	struct pm_hnsw_report rep;
	enum pm_status st = pm_hnsw_validate(&sh, coll(name), scratch, &rep);
	if (st != PM_OK)
		printf("\n  validator: %s\n", rep.why);
	CU_ASSERT_EQUAL(st, PM_OK);
	CU_ASSERT_EQUAL(rep.unreachable, 0);
	CU_ASSERT_EQUAL(rep.dangling, 0);
}

static double recall(const char *name)
{
	return pm_hnsw_recall(&sh, coll(name), &queries[0][0], NQ, 10, EF);
}

/* Run the tombstone sweep to the end. */
static void sweep_all(const char *name)
{
	int steps = 0;
	while (pm_hnsw_maintain(&sh, coll(name), 500) && steps < 100000)
		steps++;
	CU_ASSERT_EQUAL(coll(name)->hnsw.tombstones, 0);
}

/* ---------------------------------------------------------------- tests */

static void test_recall_every_metric_and_kernel(void)
{
	make_data(1);
	for (int isa = 0; isa < PM_ISA_COUNT; isa++) {
		const struct pm_kernels *kern = pm_kernels_for((enum pm_isa)isa);
		if (!kern)
			continue;
		for (uint8_t m = 0; m < PM_METRIC_COUNT; m++) {
			fx_shard(&sh, 64 * MIB, 2 * N);
			sh.kern = kern;
			CU_ASSERT_EQUAL_FATAL(create("c", m, 16), PM_OK);
			for (int i = 0; i < N; i++)
				add("c", i);
			double r = recall("c");
			printf("\n  %s metric %u: recall@10 %.4f", kern->name, m, r);
			CU_ASSERT(r >= 0.95);
			expect_valid("c");
			pm_shard_destroy(&sh);
		}
	}
}

/* The shard's query path uses the graph for big collections, flat for small
 * ones and whenever exact results are asked for. */
static void test_query_paths(void)
{
	make_data(2);
	fx_shard(&sh, 64 * MIB, 2 * N);
	CU_ASSERT_EQUAL_FATAL(create("c", PM_METRIC_L2, 16), PM_OK);
	struct pm_request q = { .op = PM_OP_VQUERY, .collection = fx_s("c"),
				.vec = (const uint8_t *)queries[0], .dim = DIM, .k = 10 };
	struct pm_reply rep;
	for (int i = 0; i < (int)PM_HNSW_FLAT_BELOW - 1; i++)
		add("c", i);
	pm_shard_apply(&sh, &q, 0, &rep);
	CU_ASSERT_EQUAL(sh.stats.knn_graph, 0); /* small: exact scan */
	for (int i = (int)PM_HNSW_FLAT_BELOW - 1; i < N; i++)
		add("c", i);
	pm_shard_apply(&sh, &q, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.nhits, 10);
	CU_ASSERT_EQUAL(sh.stats.knn_graph, 1);
	/* enough inserts: maintenance walks the graph once (and then is idle) */
	CU_ASSERT(pm_hnsw_walk_due(&coll("c")->hnsw));
	while (pm_shard_maintain(&sh, 0, 0))
		;
	CU_ASSERT_EQUAL(coll("c")->hnsw.inserts_since_walk, 0);
	expect_valid("c");
	q.exact = true;
	pm_shard_apply(&sh, &q, 0, &rep);
	CU_ASSERT_EQUAL(sh.stats.knn_graph, 1); /* exact asked: scan */
	/* results are sorted like flat results */
	q.exact = false;
	q.ef = 200;
	pm_shard_apply(&sh, &q, 0, &rep);
	for (uint32_t i = 1; i < rep.nhits; i++)
		CU_ASSERT(pm_knn_hit_cmp(&sh, &rep.hits[i - 1], &rep.hits[i]) < 0);
	pm_shard_destroy(&sh);
}

/* Delete a random half, add as many new points, sweep: the graph is valid,
 * recall is within 0.02 of a fresh build of the same live set, and the arena
 * holds at most 5 % more blob bytes than that fresh build. */
static void test_delete_reinsert(void)
{
	make_data(3);
	static bool alive[2 * N];
	fx_shard(&sh, 128 * MIB, 4 * N);
	CU_ASSERT_EQUAL_FATAL(create("c", PM_METRIC_L2, 16), PM_OK);
	for (int i = 0; i < N; i++) {
		add("c", i);
		alive[i] = true;
	}
	uint64_t rng = 99;
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 2 * N; i++)
			if (alive[i] && pm_test_rand(&rng) % 2) {
				del(i);
				alive[i] = false;
			}
		expect_valid("c"); /* tombstones pending: still a valid graph */
		for (int i = 0, added = 0; i < 2 * N && added < N / 2; i++)
			if (!alive[i] && pm_test_rand(&rng) % 3 == 0) {
				add("c", i);
				alive[i] = true;
				added++;
			}
		sweep_all("c");
		expect_valid("c");
	}
	double churned = recall("c");
	uint64_t churned_bytes = fx_blob_used(&sh);
	uint32_t live = coll("c")->hnsw.live;
	pm_shard_destroy(&sh);

	fx_shard(&sh, 128 * MIB, 4 * N);
	CU_ASSERT_EQUAL_FATAL(create("c", PM_METRIC_L2, 16), PM_OK);
	for (int i = 0; i < 2 * N; i++)
		if (alive[i])
			add("c", i);
	CU_ASSERT_EQUAL(coll("c")->hnsw.live, live);
	double fresh = recall("c");
	uint64_t fresh_bytes = fx_blob_used(&sh);
	printf("\n  recall churned %.4f fresh %.4f; blob bytes churned %llu fresh %llu", churned,
	       fresh, (unsigned long long)churned_bytes, (unsigned long long)fresh_bytes);
	CU_ASSERT(churned >= fresh - 0.02);
	CU_ASSERT(churned_bytes <= fresh_bytes + fresh_bytes / 20);
	pm_shard_destroy(&sh);
}

static void test_sweep_bounded_and_drop(void)
{
	make_data(4);
	fx_shard(&sh, 64 * MIB, 2 * N);
	uint64_t base_bytes = fx_blob_used(&sh);
	CU_ASSERT_EQUAL_FATAL(create("c", PM_METRIC_COSINE, 8), PM_OK);
	for (int i = 0; i < N; i++)
		add("c", i);
	for (int i = 0; i < N; i += 3)
		del(i);
	struct pm_collection *c = coll("c");
	uint32_t tombs = c->hnsw.tombstones;
	CU_ASSERT(tombs > 0);
	/* a slice looks at no more nodes than asked */
	CU_ASSERT_TRUE(pm_hnsw_maintain(&sh, c, 10));
	CU_ASSERT_EQUAL(c->hnsw.sweep_cursor, 10);
	CU_ASSERT_EQUAL(c->hnsw.tombstones, tombs);
	/* deletes during a sweep wait for the next one */
	del(1);
	sweep_all("c");
	expect_valid("c");
	CU_ASSERT(recall("c") >= 0.95);
	/* the shard's maintenance runs sweeps too */
	for (int i = 2; i < N; i += 3)
		del(i);
	while (pm_shard_maintain(&sh, 0, 0))
		;
	CU_ASSERT_EQUAL(c->hnsw.tombstones, 0);
	expect_valid("c");
	/* dropping the collection returns every byte, in slices of the budget
	 * (vectors, then graph nodes) after an O(1) drop */
	struct pm_request d = { .op = PM_OP_CDROP, .collection = fx_s("c") };
	struct pm_reply rep;
	const uint64_t held = fx_blob_used(&sh);
	pm_shard_apply(&sh, &d, 0, &rep);
	CU_ASSERT_EQUAL(rep.removed, 1);
	CU_ASSERT_EQUAL(fx_blob_used(&sh), held);
	uint32_t slices = 0;
	while (pm_shard_maintain(&sh, 0, 64))
		slices++;
	CU_ASSERT(slices >= (uint32_t)(N - N / 3) / 64); /* the vectors alone take this many */
	CU_ASSERT_EQUAL(fx_blob_used(&sh) - base_bytes, 
			(uint64_t)sh.visit_chunks * pm_blob_class_bytes(pm_blob_class(PM_HNSW_CHUNK_NODES * 2)) +
			(sh.visit_dir_cap ? pm_blob_class_bytes(pm_blob_class(sh.visit_dir_cap * 8)) : 0));
	pm_shard_destroy(&sh);
}

static void test_update_in_place(void)
{
	make_data(5);
	fx_shard(&sh, 64 * MIB, 2 * N);
	CU_ASSERT_EQUAL_FATAL(create("c", PM_METRIC_IP, 16), PM_OK);
	for (int i = 0; i < N; i++)
		add("c", i);
	uint64_t bytes = fx_blob_used(&sh);
	/* give a third of the keys the vectors of other points */
	char k[32];
	for (int i = 0; i < N; i += 3) {
		key_of(k, sizeof(k), i);
		CU_ASSERT_EQUAL_FATAL(fx_vadd(&sh, fx_s(k), "c", base[N + i], DIM, 0, 0), PM_OK);
		memcpy(base[i], base[N + i], sizeof(base[i]));
	}
	CU_ASSERT_EQUAL(coll("c")->hnsw.tombstones, 0);
	CU_ASSERT_EQUAL(fx_blob_used(&sh), bytes); /* in place: no new memory */
	expect_valid("c");
	double r = recall("c");
	printf("\n  recall after updates %.4f", r);
	CU_ASSERT(r >= 0.95);
	pm_shard_destroy(&sh);
}

static void test_deterministic(void)
{
	make_data(6);
	struct pm_knn_hit first[PM_K_MAX];
	uint32_t n1 = 0;
	for (int pass = 0; pass < 2; pass++) {
		fx_shard(&sh, 64 * MIB, 2 * N);
		CU_ASSERT_EQUAL_FATAL(create("c", PM_METRIC_L2, 12), PM_OK);
		for (int i = 0; i < N; i++)
			add("c", i);
		for (int i = 0; i < N; i += 5)
			del(i);
		sweep_all("c");
		struct pm_knn_hit hits[PM_K_MAX];
		uint32_t n = pm_hnsw_search(&sh, coll("c"), queries[7], 20, 40, hits);
		if (pass == 0) {
			memcpy(first, hits, sizeof(hits[0]) * n);
			n1 = n;
		} else {
			CU_ASSERT_EQUAL(n, n1);
			for (uint32_t i = 0; i < n && i < n1; i++) {
				CU_ASSERT_EQUAL(hits[i].seed, first[i].seed);
				CU_ASSERT_EQUAL(hits[i].dist, first[i].dist);
			}
		}
		pm_shard_destroy(&sh);
	}
}

static void test_bad_input(void)
{
	make_data(7);
	fx_shard(&sh, 16 * MIB, 1024);
	CU_ASSERT_EQUAL(create("m1", PM_METRIC_L2, PM_HNSW_M_MIN - 1), PM_E_PARAM);
	CU_ASSERT_EQUAL(create("m2", PM_METRIC_L2, PM_HNSW_M_MAX + 1), PM_E_PARAM);
	CU_ASSERT_EQUAL(create("c", PM_METRIC_L2, 16), PM_OK);
	for (int i = 0; i < 300; i++)
		add("c", i);
	float wrong[DIM + 1] = { 0 }, nanv[DIM];
	memcpy(nanv, base[0], sizeof(nanv));
	nanv[5] = NAN;
	CU_ASSERT_EQUAL(fx_vadd(&sh, fx_s("w"), "c", wrong, DIM + 1, 0, 0), PM_E_DIM);
	CU_ASSERT_EQUAL(fx_vadd(&sh, fx_s("n"), "c", nanv, DIM, 0, 0), PM_E_NAN);
	struct pm_request q = { .op = PM_OP_VQUERY, .collection = fx_s("c"),
				.vec = (const uint8_t *)queries[0], .dim = DIM, .k = 0 };
	struct pm_reply rep;
	pm_shard_apply(&sh, &q, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_K);
	q.k = PM_K_MAX + 1;
	pm_shard_apply(&sh, &q, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_K);
	q.k = 10;
	q.ef = PM_EF_MAX + 1;
	pm_shard_apply(&sh, &q, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_EF);
	q.ef = PM_EF_MAX; /* the largest beam works */
	pm_shard_apply(&sh, &q, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.nhits, 10);
	q.ef = 0;
	q.dim = DIM - 1;
	pm_shard_apply(&sh, &q, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_DIM);
	CU_ASSERT_EQUAL(coll("c")->hnsw.live, 300);
	expect_valid("c");
	pm_shard_destroy(&sh);
}

/* The largest ef_construction: beams wider than the candidate scratch. */
static void test_widest_beam(void)
{
	make_data(9);
	fx_shard(&sh, 64 * MIB, 2 * N);
	struct pm_request r = { .op = PM_OP_CCREATE, .collection = fx_s("w"),
				.params = { .dim = DIM, .index = PM_INDEX_HNSW, .hnsw_m = 4,
					    .ef_construction = PM_EF_MAX } };
	struct pm_reply rep;
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
	for (int i = 0; i < (int)PM_HNSW_CANDIDATES_MAX + 300; i++)
		add("w", i);
	expect_valid("w");
	struct pm_knn_hit hits[PM_K_MAX];
	CU_ASSERT_EQUAL(pm_hnsw_search(&sh, coll("w"), queries[0], PM_K_MAX, PM_EF_MAX, hits),
			PM_K_MAX);
	pm_shard_destroy(&sh);
}

/* An arena that runs out mid-build refuses inserts cleanly; the graph stays valid. */
static void test_out_of_memory(void)
{
	make_data(8);
	fx_shard(&sh, 2 * MIB, 8192);
	CU_ASSERT_EQUAL_FATAL(create("c", PM_METRIC_L2, 16), PM_OK);
	char k[32];
	int ok = 0;
	enum pm_status st = PM_OK;
	for (int i = 0; i < N && st == PM_OK; i++) {
		key_of(k, sizeof(k), i);
		st = fx_vadd(&sh, fx_s(k), "c", base[i], DIM, 0, 0);
		ok += st == PM_OK;
	}
	CU_ASSERT_EQUAL(st, PM_E_NOMEM);
	CU_ASSERT(ok > 100);
	CU_ASSERT_EQUAL(coll("c")->hnsw.live, (uint32_t)ok);
	CU_ASSERT_EQUAL(coll("c")->count, (uint64_t)ok);
	expect_valid("c");
	pm_shard_destroy(&sh);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "recall@10 >= 0.95, every metric and kernel", test_recall_every_metric_and_kernel },
		{ "query paths: graph, small, exact", test_query_paths },
		{ "delete half and reinsert, three rounds", test_delete_reinsert },
		{ "bounded sweep, maintenance, drop", test_sweep_bounded_and_drop },
		{ "update in place", test_update_in_place },
		{ "deterministic", test_deterministic },
		{ "bad input", test_bad_input },
		{ "widest beam", test_widest_beam },
		{ "out of memory", test_out_of_memory },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("hnsw", tests);
}
