/* SPDX-License-Identifier: MIT
 *
 * test_knn.c — exact KNN against a naive reference (score every vector, sort
 * everything, take k) on random data: the same keys and the same scores, for
 * every metric, every distance kernel the CPU has, and k from 1 to above the
 * collection size. Also: ties broken by key, results independent of insertion
 * order, and k / ef / dimension limits.
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

/* Load N random vectors, run queries, compare with the naive reference. */
static void check_against_reference(uint8_t metric, const struct pm_kernels *kern)
{
	enum { N = 1500, DIM = 37, QUERIES = 12 };
	static float base[N][DIM];
	static struct ref ref[N];
	fx_shard(&sh, 64 * MIB, 4096);
	sh.kern = kern;
	struct pm_request c = { .op = PM_OP_CCREATE, .collection = fx_s("c"),
				.params = { .dim = DIM, .metric = metric } };
	struct pm_reply rep;
	pm_shard_apply(&sh, &c, 0, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
	uint64_t rng = 1234 + metric;
	char key[16];
	for (int i = 0; i < N; i++) {
		rand_vec(base[i], DIM, &rng);
		snprintf(key, sizeof(key), "v%d", i);
		CU_ASSERT_EQUAL_FATAL(fx_vadd(&sh, fx_s(key), "c", base[i], DIM, 0, 0), PM_OK);
	}
	const uint32_t ks[] = { 1, 10, 100, 1000, PM_K_MAX };
	int mismatches = 0;
	for (int qi = 0; qi < QUERIES; qi++) {
		float q[DIM];
		rand_vec(q, DIM, &rng);
		float qn = pm_norm(q, DIM);
		for (int i = 0; i < N; i++) {
			snprintf(ref[i].key, sizeof(ref[i].key), "v%d", i);
			ref[i].dist = pm_knn_distance(kern, metric, q, qn, base[i], pm_norm(base[i], DIM),
						      DIM);
		}
		qsort(ref, N, sizeof(ref[0]), ref_cmp);
		uint32_t k = ks[qi % 5];
		query("c", q, DIM, k, &rep);
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
			check_against_reference(m, k);
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

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "matches naive reference (metrics x kernels)", test_reference_all_metrics_all_kernels },
		{ "ties broken by key", test_ties_broken_by_key },
		{ "independent of insertion order", test_order_independent },
		{ "k, ef, dim limits", test_limits },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("knn", tests);
}
