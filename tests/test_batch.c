/* SPDX-License-Identifier: MIT
 *
 * test_batch.c — the engine's batch and range searches (engine/batch.h):
 * a blocked exact batch answers what the same queries answer one by one
 * (pm_knn_flat: same seeds, same distances bit for bit, same order), for
 * every metric, both tiles (AVX2 where the CPU has it, and the portable
 * one), every kernel set, odd sizes (queries, members and dimension that no
 * tile or block divides) and k from 1 to above the collection's size; the
 * exact range scan returns exactly the radius set of a naive reference, the
 * nearest `max` of it with `truncated` when more qualify; the graph's range
 * search returns only vectors within the radius, sorted, with high recall of
 * the exact set, flags truncation, and stops at the work cap.
 */
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "batch.h"
#include "fixture.h"
#include "hnsw.h"
#include "knn.h"
#include "vector.h"

#define MIB (UINT64_C(1) << 20)

static struct pm_shard sh;

static void rand_vec(float *v, uint32_t dim, uint64_t *rng)
{
	for (uint32_t i = 0; i < dim; i++)
		v[i] = (float)((int)(pm_test_rand(rng) % 20001) - 10000) / 1000.0f;
}

static struct pm_collection *make_coll(const char *name, uint32_t dim, uint8_t metric,
				       uint8_t index, float *base, uint32_t n, uint64_t seed)
{
	struct pm_request c = { .op = PM_OP_CCREATE, .collection = fx_s(name),
				.params = { .dim = dim, .metric = metric, .index = index,
					    .hnsw_m = 12, .ef_construction = 100 } };
	struct pm_reply rep;
	pm_shard_apply(&sh, &c, 0, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
	uint64_t rng = seed;
	char key[24];
	for (uint32_t i = 0; i < n; i++) {
		rand_vec(base + (size_t)i * dim, dim, &rng);
		snprintf(key, sizeof(key), "%s%u", name, i);
		CU_ASSERT_EQUAL_FATAL(fx_vadd(&sh, fx_s(key), name, base + (size_t)i * dim, dim, 0, 0),
				      PM_OK);
	}
	return pm_coll_find(&sh, (const uint8_t *)name, (uint32_t)strlen(name));
}

/* ---------------------------------------------------------------- batch = one by one */

static void check_batch(uint8_t metric, const struct pm_kernels *kern, bool scalar_tile)
{
	enum { N = 1001, DIM = 37, NQ = 13 };
	static float base[N * DIM], q[NQ][DIM];
	static struct pm_knn_hit got[NQ][PM_K_MAX], want[PM_K_MAX];
	fx_shard(&sh, 64 * MIB, 4096);
	sh.kern = kern;
	const struct pm_collection *c = make_coll("c", DIM, metric, PM_INDEX_FLAT, base, N, 77 + metric);
	struct pm_batch_query qs[NQ];
	const uint32_t ks[] = { 1, 10, 100, N + 5, 3 };
	uint64_t rng = 99;
	for (uint32_t i = 0; i < NQ; i++) {
		rand_vec(q[i], DIM, &rng);
		if (i == 5) /* a stored vector itself: distance 0 (L2) against the rest */
			memcpy(q[i], base + 17 * DIM, sizeof(q[i]));
		qs[i] = (struct pm_batch_query){ .q = q[i], .k = ks[i % 5], .hits = got[i] };
	}
	uint64_t work = scalar_tile ? pm_knn_flat_batch_scalar(&sh, c, qs, NQ)
				    : pm_knn_flat_batch(&sh, c, qs, NQ);
	CU_ASSERT_EQUAL(work, (uint64_t)NQ * N * pm_knn_distance_bytes(DIM));
	int mismatches = 0;
	for (uint32_t i = 0; i < NQ; i++) {
		uint32_t n = pm_knn_flat(&sh, c, q[i], qs[i].k, want);
		CU_ASSERT_EQUAL_FATAL(qs[i].nhits, n);
		for (uint32_t j = 0; j < n; j++)
			mismatches += got[i][j].seed != want[j].seed ||
				      memcmp(&got[i][j].dist, &want[j].dist, sizeof(float)) != 0;
	}
	CU_ASSERT_EQUAL(mismatches, 0);
	pm_shard_destroy(&sh);
}

static void test_batch_equals_single(void)
{
	for (uint8_t metric = 0; metric < PM_METRIC_COUNT; metric++)
		for (int isa = 0; isa < PM_ISA_COUNT; isa++) {
			const struct pm_kernels *kern = pm_kernels_for((enum pm_isa)isa);
			if (!kern)
				continue;
			check_batch(metric, kern, false);
			check_batch(metric, kern, true);
		}
}

/* Vectors far from the origin and near each other: |q|^2 + |v|^2 - 2 q.v
 * cancels almost every digit (|q|^2 is 4e7, the distances 1e-3), so only the
 * sift's rounding bound keeps the batch's answers the kernel's. */
static void test_batch_cancellation(void)
{
	enum { N = 400, DIM = 40, NQ = 7, K = 10 };
	static float base[N * DIM], q[NQ][DIM];
	static struct pm_knn_hit got[NQ][K], want[K];
	fx_shard(&sh, 64 * MIB, 4096);
	sh.kern = pm_kernels_best();
	struct pm_request cc = { .op = PM_OP_CCREATE, .collection = fx_s("far"),
				 .params = { .dim = DIM, .metric = PM_METRIC_L2 } };
	struct pm_reply rep;
	pm_shard_apply(&sh, &cc, 0, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
	uint64_t rng = 17;
	for (uint32_t i = 0; i < N; i++) {
		char key[16];
		for (uint32_t d = 0; d < DIM; d++) /* 1000 + a perturbation of about 0.01 */
			base[i * DIM + d] = 1000.0f + (float)(pm_test_rand(&rng) % 2001) * 1e-5f;
		snprintf(key, sizeof(key), "x%u", i);
		CU_ASSERT_EQUAL_FATAL(fx_vadd(&sh, fx_s(key), "far", base + i * DIM, DIM, 0, 0), PM_OK);
	}
	const struct pm_collection *c = pm_coll_find(&sh, (const uint8_t *)"far", 3);
	struct pm_batch_query qs[NQ];
	for (uint32_t i = 0; i < NQ; i++) {
		for (uint32_t d = 0; d < DIM; d++)
			q[i][d] = 1000.0f + (float)(pm_test_rand(&rng) % 2001) * 1e-5f;
		qs[i] = (struct pm_batch_query){ .q = q[i], .k = K, .hits = got[i] };
	}
	pm_knn_flat_batch(&sh, c, qs, NQ);
	int mismatches = 0;
	for (uint32_t i = 0; i < NQ; i++) {
		uint32_t n = pm_knn_flat(&sh, c, q[i], K, want);
		mismatches += qs[i].nhits != n;
		for (uint32_t j = 0; j < n && j < qs[i].nhits; j++)
			mismatches += got[i][j].seed != want[j].seed || got[i][j].dist != want[j].dist;
	}
	CU_ASSERT_EQUAL(mismatches, 0);
	pm_shard_destroy(&sh);
}

/* More queries than one group holds: two passes, the same answers. */
static void test_batch_over_group(void)
{
	enum { N = 300, DIM = 8, NQ = PM_BATCH_ITEMS_MAX + 9 };
	static float base[N * DIM], q[NQ][DIM];
	static struct pm_knn_hit got[NQ][4], want[4];
	static struct pm_batch_query qs[NQ];
	fx_shard(&sh, 64 * MIB, 4096);
	sh.kern = pm_kernels_best();
	const struct pm_collection *c = make_coll("g", DIM, PM_METRIC_L2, PM_INDEX_FLAT, base, N, 5);
	uint64_t rng = 7;
	for (uint32_t i = 0; i < NQ; i++) {
		rand_vec(q[i], DIM, &rng);
		qs[i] = (struct pm_batch_query){ .q = q[i], .k = 4, .hits = got[i] };
	}
	pm_knn_flat_batch(&sh, c, qs, NQ);
	int mismatches = 0;
	for (uint32_t i = 0; i < NQ; i++) {
		uint32_t n = pm_knn_flat(&sh, c, q[i], 4, want);
		mismatches += qs[i].nhits != n;
		for (uint32_t j = 0; j < n && j < qs[i].nhits; j++)
			mismatches += got[i][j].seed != want[j].seed || got[i][j].dist != want[j].dist;
	}
	CU_ASSERT_EQUAL(mismatches, 0);
	pm_shard_destroy(&sh);
}

/* ---------------------------------------------------------------- exact range */

struct ref {
	uint32_t seed;
	float dist;
};

static int ref_cmp(const void *pa, const void *pb)
{
	const struct ref *a = pa, *b = pb;
	if (a->dist != b->dist)
		return a->dist < b->dist ? -1 : 1;
	struct pm_knn_hit x = { a->seed, a->dist }, y = { b->seed, b->dist };
	return pm_knn_hit_cmp(&sh, &x, &y);
}

/* The naive radius set of q over c: every member's distance, sorted. */
static uint32_t naive_range(const struct pm_collection *c, const float *q, float radius,
			    struct ref *out)
{
	uint32_t dim = c->params.dim, n = 0;
	float qn = pm_norm(q, dim);
	for (uint64_t m = 0; m < c->count; m++) {
		const struct pm_vec_header *h = pm_at(&sh.arena, pm_coll_member(&sh, c, m));
		float d = pm_knn_distance(sh.kern, c->params.metric, q, qn, pm_vec_data(h), h->norm,
					  dim);
		if (d <= radius)
			out[n++] = (struct ref){ h->seed, d };
	}
	qsort(out, n, sizeof(out[0]), ref_cmp);
	return n;
}

static void test_range_flat_exact(void)
{
	enum { N = 2000, DIM = 12 };
	static float base[N * DIM];
	static struct ref want[N];
	static struct pm_knn_hit got[PM_RANGE_HITS_MAX];
	fx_shard(&sh, 64 * MIB, 3 * N + 64);
	sh.kern = pm_kernels_best();
	for (uint8_t metric = 0; metric < PM_METRIC_COUNT; metric++) {
		char name[8];
		snprintf(name, sizeof(name), "r%u", metric);
		const struct pm_collection *c =
			make_coll(name, DIM, metric, PM_INDEX_FLAT, base, N, 300 + metric);
		float q[DIM];
		uint64_t rng = 41 + metric;
		rand_vec(q, DIM, &rng);
		/* a radius that takes about 60 members: the 60th nearest's distance */
		struct pm_knn_hit k60[60];
		pm_knn_flat(&sh, c, q, 60, k60);
		float radius = k60[59].dist;
		uint32_t nwant = naive_range(c, q, radius, want);
		CU_ASSERT(nwant >= 60);
		bool trunc = true;
		uint64_t work = 0;
		uint32_t n = pm_knn_range_flat(&sh, c, q, radius, PM_RANGE_HITS_MAX, got, &trunc, &work);
		CU_ASSERT_EQUAL_FATAL(n, nwant);
		CU_ASSERT_FALSE(trunc);
		CU_ASSERT_EQUAL(work, (uint64_t)N * pm_knn_distance_bytes(DIM));
		int mismatches = 0;
		for (uint32_t i = 0; i < n; i++)
			mismatches += got[i].seed != want[i].seed || got[i].dist != want[i].dist;
		CU_ASSERT_EQUAL(mismatches, 0);
		/* max below the set: its nearest max, flagged */
		n = pm_knn_range_flat(&sh, c, q, radius, 25, got, &trunc, &work);
		CU_ASSERT_EQUAL_FATAL(n, 25);
		CU_ASSERT_TRUE(trunc);
		for (uint32_t i = 0; i < n; i++)
			mismatches += got[i].seed != want[i].seed;
		CU_ASSERT_EQUAL(mismatches, 0);
		/* max exactly the set's size: all of it, not flagged */
		n = pm_knn_range_flat(&sh, c, q, radius, nwant, got, &trunc, &work);
		CU_ASSERT_EQUAL(n, nwant);
		CU_ASSERT_FALSE(trunc);
		/* a radius below every distance (IP distances go below 0): nothing */
		n = pm_knn_range_flat(&sh, c, q, -1e30f, 10, got, &trunc, &work);
		CU_ASSERT_EQUAL(n, 0);
		CU_ASSERT_FALSE(trunc);
	}
	pm_shard_destroy(&sh);
}

/* ---------------------------------------------------------------- graph range */

static void test_range_hnsw(void)
{
	enum { N = 3000, DIM = 16 };
	static float base[N * DIM];
	static struct ref want[N];
	static struct pm_knn_hit got[PM_RANGE_HITS_MAX];
	fx_shard(&sh, 128 * MIB, 8192);
	sh.kern = pm_kernels_best();
	const struct pm_collection *c = make_coll("h", DIM, PM_METRIC_L2, PM_INDEX_HNSW, base, N, 9);
	uint64_t rng = 1001, found = 0, total = 0;
	for (int t = 0; t < 10; t++) {
		float q[DIM];
		rand_vec(q, DIM, &rng);
		struct pm_knn_hit k40[40];
		pm_knn_flat(&sh, c, q, 40, k40);
		float radius = k40[39].dist;
		uint32_t nwant = naive_range(c, q, radius, want);
		uint32_t n;
		bool trunc;
		uint64_t work;
		CU_ASSERT_EQUAL_FATAL(pm_hnsw_range(&sh, c, q, radius, PM_RANGE_HITS_MAX, 64,
						    UINT64_MAX, got, &n, &trunc, &work),
				      PM_OK);
		CU_ASSERT_FALSE(trunc);
		CU_ASSERT(work > 0);
		CU_ASSERT(n <= nwant);
		for (uint32_t i = 0; i < n; i++) {
			CU_ASSERT(got[i].dist <= radius);
			if (i > 0)
				CU_ASSERT(pm_knn_hit_cmp(&sh, &got[i - 1], &got[i]) < 0);
			for (uint32_t j = 0; j < nwant; j++) /* a member of the exact set */
				if (want[j].seed == got[i].seed) {
					found++;
					CU_ASSERT_EQUAL(want[j].dist, got[i].dist);
					break;
				}
		}
		total += nwant;
		/* max below what is found: flagged, and the max nearest found */
		CU_ASSERT_EQUAL(pm_hnsw_range(&sh, c, q, radius, 5, 64, UINT64_MAX, got, &n, &trunc,
					      &work),
				PM_OK);
		CU_ASSERT_EQUAL(n, 5);
		CU_ASSERT_TRUE(trunc);
		/* the work cap: stopped, no hits */
		CU_ASSERT_EQUAL(pm_hnsw_range(&sh, c, q, radius, 50, 64,
					      pm_knn_distance_bytes(DIM) * 3, got, &n, &trunc, &work),
				PM_E_WORK_LIMIT);
		CU_ASSERT_EQUAL(n, 0);
	}
	CU_ASSERT(found * 100 >= total * 90); /* recall of the radius sets >= 0.9 */
	pm_shard_destroy(&sh);
}

/* ---------------------------------------------------------------- on a shard */

static struct pm_request vq(const char *coll, const float *q, uint32_t dim, uint32_t k)
{
	return (struct pm_request){ .op = PM_OP_VQUERY, .id = 5, .vec = (const uint8_t *)q,
				    .dim = dim, .k = k,
				    .collection = coll ? fx_s(coll) : fx_b(NULL, 0) };
}

/* The answers of queries asked one by one (pm_shard_apply), to compare a
 * batch's with: hits, and their keys as text. */
#define ONE_Q_MAX 16u
#define ONE_K_MAX 10u
struct singles {
	uint32_t n[ONE_Q_MAX];
	struct pm_knn_hit hit[ONE_Q_MAX][ONE_K_MAX];
	char key[ONE_Q_MAX][ONE_K_MAX][24];
};

static void single_take(struct singles *w, uint32_t i, const struct pm_request *item)
{
	struct pm_reply rep;
	pm_shard_apply(&sh, item, 0, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
	CU_ASSERT_FATAL(i < ONE_Q_MAX && rep.nhits <= ONE_K_MAX);
	w->n[i] = rep.nhits;
	for (uint32_t j = 0; j < rep.nhits; j++) {
		w->hit[i][j] = rep.hits[j];
		snprintf(w->key[i][j], sizeof(w->key[i][j]), "%.*s", (int)rep.keys[j].len,
			 rep.keys[j].ptr);
	}
}

/* A batch reply's hits against the one-by-one answers of its nq queries:
 * how many differ (query, distance or key, in order); the reply's hit count
 * must be theirs summed. */
static int batch_mismatches(const struct singles *w, uint32_t nq, const struct pm_reply *rep)
{
	uint32_t m = 0;
	int bad = 0;
	for (uint32_t i = 0; i < nq; i++)
		for (uint32_t j = 0; j < w->n[i]; j++, m++)
			bad += m >= rep->nhits || rep->hit_query[m] != i ||
			       rep->hits[m].dist != w->hit[i][j].dist ||
			       strlen(w->key[i][j]) != rep->keys[m].len ||
			       memcmp(w->key[i][j], rep->keys[m].ptr, rep->keys[m].len) != 0;
	return bad + (rep->nhits != m);
}

/* pm_vquery_batch over a flat, an HNSW and a default collection = the same
 * VQUERYs through pm_shard_apply; one bad query fails the batch; the work
 * cap is each query's, as a VQUERY's. pm_vrange's checks. */
static void test_shard_batch(void)
{
	enum { N = 700, DIM = 10, NQ = 9 };
	static float base[3][N * DIM], q[NQ][DIM];
	static struct pm_request items[NQ];
	static struct singles want;
	fx_shard(&sh, 128 * MIB, 8192);
	sh.kern = pm_kernels_best();
	make_coll("f", DIM, PM_METRIC_L2, PM_INDEX_FLAT, base[0], N, 1);
	make_coll("h", DIM, PM_METRIC_L2, PM_INDEX_HNSW, base[1], N, 2);
	uint64_t rng = 3;
	for (uint32_t i = 0; i < 40; i++) { /* the default collection of DIM */
		char key[16];
		rand_vec(base[2] + i * DIM, DIM, &rng);
		snprintf(key, sizeof(key), "d%u", i);
		CU_ASSERT_EQUAL_FATAL(fx_vadd(&sh, fx_s(key), NULL, base[2] + i * DIM, DIM, 0, 0), PM_OK);
	}
	const char *colls[3] = { "f", "h", NULL };
	for (uint32_t i = 0; i < NQ; i++) {
		rand_vec(q[i], DIM, &rng);
		items[i] = vq(colls[i % 3], q[i], DIM, 3 + i % 5);
		single_take(&want, i, &items[i]);
	}
	struct pm_batch_space *sp = pm_batch_space_new();
	CU_ASSERT_FATAL(sp != NULL);
	struct pm_reply rep;
	pm_vquery_batch(&sh, items, NQ, sp, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(batch_mismatches(&want, NQ, &rep), 0);
	CU_ASSERT(rep.work > 0);
	/* one query of another dimension than its collection: the batch fails */
	items[4].dim = DIM - 1;
	pm_vquery_batch(&sh, items, NQ, sp, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_DIM);
	items[4].dim = DIM;
	pm_vquery_batch(&sh, items, 0, sp, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_BATCH);
	/* the cap: each exact query reads N members; a cap of N allows each
	 * (their sum is above it), one below refuses the batch */
	sh.knn_work_max = N * pm_knn_distance_bytes(DIM);
	struct pm_request flat[3] = { items[0], items[3], items[6] };
	pm_vquery_batch(&sh, flat, 3, sp, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.work, 3 * sh.knn_work_max);
	sh.knn_work_max -= 1;
	pm_vquery_batch(&sh, flat, 3, sp, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_WORK_LIMIT);
	sh.knn_work_max = 0;
	/* VRANGE: max bounds, radius finite */
	struct pm_request r = vq("f", q[0], DIM, 5);
	r.op = PM_OP_VRANGE;
	r.radius = 1e9f;
	pm_vrange(&sh, &r, sp, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.nhits, 5);
	CU_ASSERT_TRUE(rep.truncated);
	r.k = PM_RANGE_HITS_MAX + 1;
	pm_vrange(&sh, &r, sp, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_K);
	r.k = 5;
	r.radius = __builtin_inff();
	pm_vrange(&sh, &r, sp, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_PARAM);
	pm_batch_space_free(sp);
	pm_shard_destroy(&sh);
}

/* ---------------------------------------------------------------- filters and element types */

static int float_cmp(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

/* A batch whose queries carry filters or search quantized collections
 * answers as the same VQUERYs one by one (they run alone inside it, mixed
 * with blocked f32 ones); a filtered VRANGE is the exact filtered radius
 * set; a VRANGE over a q8 collection measures each vector as VGET returns it. */
static void test_batch_filters_dtypes(void)
{
	enum { N = 600, DIM = 12, NQ = 8 };
	static float base[N * DIM], q[NQ][DIM], dec[DIM];
	static struct pm_request items[NQ];
	static struct singles want;
	fx_shard(&sh, 128 * MIB, 8192);
	sh.kern = pm_kernels_best();
	const char *names[3] = { "plain", "q8flat", "q8hnsw" };
	const uint8_t index[3] = { PM_INDEX_FLAT, PM_INDEX_FLAT, PM_INDEX_HNSW };
	const uint8_t dtype[3] = { PM_DTYPE_F32, PM_DTYPE_Q8, PM_DTYPE_Q8 };
	uint64_t rng = 11;
	for (uint32_t c = 0; c < 3; c++) {
		struct pm_request cr = { .op = PM_OP_CCREATE, .collection = fx_s(names[c]),
					 .params = { .dim = DIM, .metric = PM_METRIC_L2,
						     .index = index[c], .hnsw_m = 12,
						     .ef_construction = 100, .dtype = dtype[c],
						     .rerank = c == 2 } };
		struct pm_reply rep;
		pm_shard_apply(&sh, &cr, 0, &rep);
		CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
		for (uint32_t i = 0; i < N; i++) {
			char key[24];
			uint8_t rec[PM_ATTR_BYTES_MAX];
			struct pm_attr_builder b;
			rand_vec(base + (size_t)i * DIM, DIM, &rng);
			snprintf(key, sizeof(key), "%s%u", names[c], i);
			pm_attr_build_begin(&b, rec, sizeof(rec));
			pm_attr_build_num(&b, "n", (double)(i % 10));
			uint32_t alen = pm_attr_build_end(&b);
			CU_ASSERT_EQUAL_FATAL(pm_vec_put_attr(&sh, (const uint8_t *)key,
							      (uint32_t)strlen(key),
							      pm_hash(key, strlen(key)),
							      (const uint8_t *)names[c],
							      (uint32_t)strlen(names[c]),
							      (const uint8_t *)(base + (size_t)i * DIM),
							      DIM, rec, alen, 0, 0),
					      PM_OK);
		}
	}
	static const char *const filters[] = { "n < 3", "n = 7", NULL };
	for (uint32_t i = 0; i < NQ; i++) {
		rand_vec(q[i], DIM, &rng);
		items[i] = vq(names[i % 3], q[i], DIM, 4 + i % 5);
		const char *f = filters[i % 3];
		if (f)
			items[i].filter = fx_s(f);
		single_take(&want, i, &items[i]);
	}
	struct pm_batch_space *sp = pm_batch_space_new();
	CU_ASSERT_FATAL(sp != NULL);
	struct pm_reply rep;
	pm_vquery_batch(&sh, items, NQ, sp, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(batch_mismatches(&want, NQ, &rep), 0);
	/* a malformed filter fails the batch */
	items[1].filter = fx_s("n <");
	pm_vquery_batch(&sh, items, NQ, sp, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_FILTER);
	/* VRANGE with a filter: the exact filtered radius set */
	for (uint32_t c = 0; c < 3; c++) {
		const struct pm_collection *coll =
			pm_coll_find(&sh, (const uint8_t *)names[c], (uint32_t)strlen(names[c]));
		CU_ASSERT_FATAL(coll != NULL);
		static float dist[N], sorted[N];
		for (uint32_t i = 0; i < N; i++) {
			char key[24];
			snprintf(key, sizeof(key), "%s%u", names[c], i);
			const struct pm_vec_header *h;
			struct pm_bytes cn;
			CU_ASSERT_EQUAL_FATAL(pm_vec_get(&sh, (const uint8_t *)key,
							 (uint32_t)strlen(key),
							 pm_hash(key, strlen(key)), 0, &h, &cn),
					      PM_OK);
			pm_vec_f32(coll, h, dec); /* the vector as stored (decoded for q8) */
			dist[i] = 0;
			for (uint32_t k = 0; k < DIM; k++)
				dist[i] += (dec[k] - q[0][k]) * (dec[k] - q[0][k]);
			sorted[i] = dist[i];
		}
		qsort(sorted, N, sizeof(float), float_cmp);
		const float radius = sorted[N / 10]; /* a tenth of the members, half pass */
		struct pm_request r = vq(names[c], q[0], DIM, PM_RANGE_HITS_MAX);
		r.op = PM_OP_VRANGE;
		r.radius = radius;
		r.filter = fx_s("n >= 5");
		r.exact = true;
		pm_vrange(&sh, &r, sp, &rep);
		CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
		uint32_t expect = 0, bad = 0;
		for (uint32_t i = 0; i < N; i++) {
			char key[24];
			snprintf(key, sizeof(key), "%s%u", names[c], i);
			/* the kernel sums in another order: a member on the boundary may go either way */
			if (fabsf(dist[i] - radius) <= 1e-4f * radius)
				continue;
			bool in = i % 10 >= 5 && dist[i] <= radius;
			expect += in;
			bool got = false;
			for (uint32_t j = 0; j < rep.nhits; j++)
				got |= rep.keys[j].len == strlen(key) &&
				       !memcmp(rep.keys[j].ptr, key, strlen(key));
			bad += got != in;
		}
		printf("\n  %s: %u within %.2f passing the filter, %u returned, %u differ", names[c],
		       expect, (double)radius, rep.nhits, bad);
		CU_ASSERT(expect > 0);
		CU_ASSERT_EQUAL(bad, 0);
	}
	pm_batch_space_free(sp);
	pm_shard_destroy(&sh);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "exact batch = one by one (metrics x kernels x tiles)", test_batch_equals_single },
		{ "exact batch over more than one group", test_batch_over_group },
		{ "exact batch where the dot product cancels (the sift's bound)",
		  test_batch_cancellation },
		{ "exact range = the naive radius set; max and truncated", test_range_flat_exact },
		{ "graph range: within radius, sorted, recall, truncated, work cap", test_range_hnsw },
		{ "shard: VQUERY batch = VQUERYs, errors, work cap; VRANGE checks", test_shard_batch },
		{ "shard: filtered and quantized queries in a batch; filtered and q8 VRANGE",
		  test_batch_filters_dtypes },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("batch", tests);
}
