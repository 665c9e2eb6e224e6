/* SPDX-License-Identifier: MIT
 *
 * batch.c — the exact scan of a batch of queries, blocked like a GEMM, and
 * the exact range scan (batch.h says what they answer).
 *
 * The batch scan takes the collection's members VEC_BLOCK at a time (their
 * vectors, 400 KiB at 784 dimensions, stay in a core's L2 while every query
 * of the batch passes over them), and computes dot products a tile of
 * TILE_Q queries x TILE_V vectors at a time: each step loads TILE_Q + TILE_V
 * registers and does TILE_Q x TILE_V FMAs, where one query against one vector
 * loads two registers per FMA. The tile is chosen at run time from the
 * kernels the shard uses (pm_kernels_best(): what the CPU has): AVX-512, 6
 * queries x 4 vectors (24 accumulators of its 32 registers); AVX2 + FMA, 4 x
 * 3 (12 of 16); else a portable loop. The tests run every one.
 *
 * Sifting with a dot product is not the kernel's arithmetic, so the sifted
 * distance of a pair is only trusted to within sift_tol() of the kernel's:
 * the rounding bound of a dim-term dot product (about dim x 2^-24 of |q||v|,
 * taken with a margin of 8). A pair whose sifted distance minus that bound is
 * below the query's current worst kept hit (or whose query keeps fewer than
 * k) is scored with pm_knn_distance and offered to the query's heap; the heap
 * holds kernel distances only, so the result is pm_knn_flat's.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "common.h"
#include "distance_impl.h"
#include "hnsw.h"
#include "knn.h"
#include "vector.h"

/* Members per block: 128 x (784 x 4 bytes) = 392 KiB, within a core's L2. */
#define VEC_BLOCK 128u
/* The tiles: queries x vectors per register block. AVX2: 4 x 3 (12
 * accumulators + 3 vector loads + 1 query load = 16 registers); AVX-512:
 * 6 x 4 (24 + 4 + 1 of its 32), which loads fewer bytes per FMA; the portable
 * one 4 x 3. TILE_Q / TILE_V are the largest. */
#define TILE_Q 6u
#define TILE_V 4u
/* The sifting bound's margin, as a power of two over 2^-24 (see sift_tol). */
#define SIFT_TOL_SHIFT 21

typedef void (*tile_fn)(const float *const q[TILE_Q], const float *const v[TILE_V], uint32_t dim,
			float out[TILE_Q][TILE_V]);

/* A tile kernel and the queries x vectors it computes. */
struct tile {
	tile_fn fn;
	uint32_t q, v;
};

/* ---------------------------------------------------------------- tiles */

static void tile_scalar(const float *const q[TILE_Q], const float *const v[TILE_V], uint32_t dim,
			float out[TILE_Q][TILE_V])
{
	for (uint32_t a = 0; a < 4u; a++)
		for (uint32_t b = 0; b < 3u; b++) {
			float s = 0.0f;
			for (uint32_t i = 0; i < dim; i++)
				s += q[a][i] * v[b][i];
			out[a][b] = s;
		}
}

#ifdef PM_DISTANCE_X86
#include <immintrin.h>

#define BATCH_AVX2 __attribute__((target("avx2,fma")))

static inline BATCH_AVX2 float hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static BATCH_AVX2 void tile_avx2(const float *const q[TILE_Q], const float *const v[TILE_V],
				 uint32_t dim, float out[TILE_Q][TILE_V])
{
	__m256 acc[4][3];
	for (uint32_t a = 0; a < 4u; a++)
		for (uint32_t b = 0; b < 3u; b++)
			acc[a][b] = _mm256_setzero_ps();
	uint32_t i = 0;
	for (; i + 8 <= dim; i += 8) {
		__m256 v0 = _mm256_loadu_ps(v[0] + i), v1 = _mm256_loadu_ps(v[1] + i),
		       v2 = _mm256_loadu_ps(v[2] + i);
		for (uint32_t a = 0; a < 4u; a++) {
			__m256 x = _mm256_loadu_ps(q[a] + i);
			acc[a][0] = _mm256_fmadd_ps(x, v0, acc[a][0]);
			acc[a][1] = _mm256_fmadd_ps(x, v1, acc[a][1]);
			acc[a][2] = _mm256_fmadd_ps(x, v2, acc[a][2]);
		}
	}
	for (uint32_t a = 0; a < 4u; a++)
		for (uint32_t b = 0; b < 3u; b++) {
			float s = hsum8(acc[a][b]);
			for (uint32_t j = i; j < dim; j++)
				s += q[a][j] * v[b][j];
			out[a][b] = s;
		}
}

#define BATCH_AVX512 __attribute__((target("avx512f")))

/* 6 x 4, 16 floats a step; the last dim mod 16 with masked loads (which
 * neither read nor fault past the vector). The 24 accumulators are named
 * variables, not an array: the compiler then keeps them all in registers
 * (with an array, GCC 12 stored them to the stack every step). */
#define ACC_ROW(a) __m512 c##a##0 = _mm512_setzero_ps(), c##a##1 = c##a##0, c##a##2 = c##a##0, \
		       c##a##3 = c##a##0
#define FMA_ROW(a, load)                                   \
	do {                                               \
		__m512 x = load(q[a] + i);                 \
		c##a##0 = _mm512_fmadd_ps(x, v0, c##a##0); \
		c##a##1 = _mm512_fmadd_ps(x, v1, c##a##1); \
		c##a##2 = _mm512_fmadd_ps(x, v2, c##a##2); \
		c##a##3 = _mm512_fmadd_ps(x, v3, c##a##3); \
	} while (0)
#define FMA_STEP(load)                                                             \
	do {                                                                       \
		__m512 v0 = load(v[0] + i), v1 = load(v[1] + i), v2 = load(v[2] + i), \
		       v3 = load(v[3] + i);                                        \
		FMA_ROW(0, load);                                                  \
		FMA_ROW(1, load);                                                  \
		FMA_ROW(2, load);                                                  \
		FMA_ROW(3, load);                                                  \
		FMA_ROW(4, load);                                                  \
		FMA_ROW(5, load);                                                  \
	} while (0)
#define OUT_ROW(a)                                       \
	do {                                             \
		out[a][0] = _mm512_reduce_add_ps(c##a##0); \
		out[a][1] = _mm512_reduce_add_ps(c##a##1); \
		out[a][2] = _mm512_reduce_add_ps(c##a##2); \
		out[a][3] = _mm512_reduce_add_ps(c##a##3); \
	} while (0)

static BATCH_AVX512 void tile_avx512(const float *const q[TILE_Q], const float *const v[TILE_V],
				     uint32_t dim, float out[TILE_Q][TILE_V])
{
	ACC_ROW(0);
	ACC_ROW(1);
	ACC_ROW(2);
	ACC_ROW(3);
	ACC_ROW(4);
	ACC_ROW(5);
	uint32_t i = 0;
	for (; i + 16 <= dim; i += 16)
		FMA_STEP(_mm512_loadu_ps);
	if (i < dim) {
		const __mmask16 m = (__mmask16)((1u << (dim - i)) - 1u);
#define MASKED_LOAD(p) _mm512_maskz_loadu_ps(m, (p))
		FMA_STEP(MASKED_LOAD);
#undef MASKED_LOAD
	}
	OUT_ROW(0);
	OUT_ROW(1);
	OUT_ROW(2);
	OUT_ROW(3);
	OUT_ROW(4);
	OUT_ROW(5);
}
#undef ACC_ROW
#undef FMA_ROW
#undef FMA_STEP
#undef OUT_ROW
#endif

static struct tile tile_for(const struct pm_kernels *kern)
{
#ifdef PM_DISTANCE_X86
	if (kern->isa >= PM_ISA_AVX512)
		return (struct tile){ tile_avx512, 6u, 4u };
	if (kern->isa >= PM_ISA_AVX2)
		return (struct tile){ tile_avx2, 4u, 3u };
#endif
	(void)kern;
	return (struct tile){ tile_scalar, 4u, 3u };
}

/* ---------------------------------------------------------------- batch scan */

/* A block of members: their vectors, norms and seeds; lo: the part of the
 * sifting bound that is the member's (L2: |v|^2 (1 - tol)). */
struct vblock {
	const float *v[VEC_BLOCK];
	float norm[VEC_BLOCK];
	float lo[VEC_BLOCK];
	uint32_t seed[VEC_BLOCK];
	uint32_t n;
};

/* One query's sifting state. */
struct qstate {
	float norm; /* |q| */
	float lo;   /* L2: |q|^2 (1 - tol) */
};

/* The relative rounding bound of a dim-term dot product, with its margin:
 * (dim + 16) x 2^-21, so 8 times dim x 2^-24 (the first-order bound of a
 * sum of dim products, whatever the order of the additions). */
static inline float sift_tol(uint32_t dim)
{
	return (float)(dim + 16u) * ldexpf(1.0f, -SIFT_TOL_SHIFT);
}

/* A lower bound of the kernel's distance for (q, v) from their dot product:
 * the sifted distance less the bound of its rounding (batch.c's comment). */
static inline float sift_lower(uint8_t metric, float tol, float dot, const struct qstate *st,
			       float vn)
{
	if (metric == PM_METRIC_IP)
		return 1.0f - dot - st->norm * vn * tol;
	return 1.0f - dot / (st->norm * vn) - tol; /* cosine */
}

/* Score member b of the block for query q with the kernel, into its heap. */
static void offer(const struct pm_shard *sh, const struct pm_collection *c,
		  struct pm_batch_query *q, const struct qstate *st, const struct vblock *blk,
		  uint32_t b)
{
	float d = pm_knn_distance(sh->kern, c->params.metric, q->q, st->norm, blk->v[b],
				  blk->norm[b], c->params.dim);
	pm_knn_heap_offer(sh, q->hits, &q->nhits, q->k, blk->seed[b], d);
}

/* The distance a pair must beat to enter query q's heap (+inf while it
 * keeps fewer than k). */
static inline float worst_kept(const struct pm_batch_query *q)
{
	return q->nhits == q->k ? q->hits[0].dist : __builtin_inff();
}

/* One tile's dot products sifted: a pair whose lower bound beats the query's
 * worst kept hit is scored with the kernel. */
static inline void tile_sift(const struct pm_shard *sh, const struct pm_collection *c,
			     struct pm_batch_query *qs, const struct qstate *st,
			     const struct vblock *blk, uint32_t a0, uint32_t na, uint32_t b0,
			     uint32_t nb, float out[TILE_Q][TILE_V])
{
	const uint8_t metric = c->params.metric;
	const float tol = sift_tol(c->params.dim);
	for (uint32_t a = 0; a < na; a++) {
		struct pm_batch_query *q = &qs[a0 + a];
		for (uint32_t b = 0; b < nb; b++) {
			float lower = metric == PM_METRIC_L2
					      ? st[a0 + a].lo + blk->lo[b0 + b] - 2.0f * out[a][b]
					      : sift_lower(metric, tol, out[a][b], &st[a0 + a],
							   blk->norm[b0 + b]);
			if (lower <= worst_kept(q))
				offer(sh, c, q, &st[a0 + a], blk, b0 + b);
		}
	}
}

/* Every query of qs[0..nq) against one block, a tile at a time. */
static void block_run(const struct pm_shard *sh, const struct pm_collection *c, struct tile t,
		      struct pm_batch_query *qs, const struct qstate *st, uint32_t nq,
		      const struct vblock *blk)
{
	const uint32_t dim = c->params.dim;
	float out[TILE_Q][TILE_V];
	for (uint32_t a0 = 0; a0 < nq; a0 += t.q) {
		const uint32_t na = PM_MIN(t.q, nq - a0);
		const float *qv[TILE_Q];
		for (uint32_t a = 0; a < TILE_Q; a++) /* a short tile repeats its last row */
			qv[a] = qs[a0 + PM_MIN(a, na - 1)].q;
		for (uint32_t b0 = 0; b0 < blk->n; b0 += t.v) {
			const uint32_t nb = PM_MIN(t.v, blk->n - b0);
			const float *vv[TILE_V];
			for (uint32_t b = 0; b < TILE_V; b++)
				vv[b] = blk->v[b0 + PM_MIN(b, nb - 1)];
			t.fn(qv, vv, dim, out);
			tile_sift(sh, c, qs, st, blk, a0, na, b0, nb, out);
		}
	}
}

/* At most PM_BATCH_ITEMS_MAX queries: one pass over the members. */
static void batch_group(const struct pm_shard *sh, const struct pm_collection *c, struct tile tile,
			struct pm_batch_query *qs, uint32_t nq)
{
	struct qstate st[PM_BATCH_ITEMS_MAX];
	struct vblock blk;
	PM_ASSERT(nq <= PM_BATCH_ITEMS_MAX);
	const float keep = 1.0f - sift_tol(c->params.dim);
	for (uint32_t i = 0; i < nq; i++) {
		PM_ASSERT(qs[i].k >= 1);
		st[i].norm = pm_norm(qs[i].q, c->params.dim);
		st[i].lo = st[i].norm * st[i].norm * keep;
		qs[i].nhits = 0;
	}
	for (uint64_t m = 0; m < c->count;) {
		blk.n = 0;
		for (; m < c->count && blk.n < VEC_BLOCK; m++, blk.n++) {
			const struct pm_vec_header *h = pm_at(&sh->arena, pm_coll_member(sh, c, m));
			blk.v[blk.n] = pm_vec_data(h);
			blk.norm[blk.n] = h->norm;
			blk.lo[blk.n] = h->norm * h->norm * keep;
			blk.seed[blk.n] = h->seed;
		}
		block_run(sh, c, tile, qs, st, nq, &blk);
	}
	for (uint32_t i = 0; i < nq; i++)
		qs[i].nhits = pm_knn_heap_sort(sh, qs[i].hits, qs[i].nhits);
}

static uint64_t batch_scan(const struct pm_shard *sh, const struct pm_collection *c,
			   struct tile tile, struct pm_batch_query *qs, uint32_t nq)
{
	for (uint32_t i = 0; i < nq; i += PM_BATCH_ITEMS_MAX)
		batch_group(sh, c, tile, qs + i, PM_MIN(PM_BATCH_ITEMS_MAX, nq - i));
	return (uint64_t)nq * c->count * pm_knn_distance_bytes(c->params.dim);
}

uint64_t pm_knn_flat_batch(const struct pm_shard *sh, const struct pm_collection *c,
			   struct pm_batch_query *qs, uint32_t nq)
{
	return batch_scan(sh, c, tile_for(sh->kern), qs, nq);
}

uint64_t pm_knn_flat_batch_scalar(const struct pm_shard *sh, const struct pm_collection *c,
				  struct pm_batch_query *qs, uint32_t nq)
{
	return batch_scan(sh, c, (struct tile){ tile_scalar, 4u, 3u }, qs, nq);
}

/* ---------------------------------------------------------------- range scan */

/* The exact range scan: members passing filter (NULL: all), measured in f32
 * (a collection of another element type: its kept f32 or its codes decoded
 * into scratch, dim floats). */
static uint32_t range_flat(const struct pm_shard *sh, const struct pm_collection *c,
			   const float *q, float radius, uint32_t max,
			   const struct pm_filter_prog *filter, float *scratch,
			   struct pm_knn_hit *out, bool *truncated, uint64_t *work)
{
	const uint32_t dim = c->params.dim;
	const float qn = c->params.metric == PM_METRIC_COSINE ? pm_norm(q, dim) : 0.0f;
	uint64_t within = 0;
	uint32_t n = 0;
	PM_ASSERT(max >= 1 && max <= PM_RANGE_HITS_MAX);
	PM_ASSERT(c->params.dtype == PM_DTYPE_F32 || scratch);
	for (uint64_t m = 0; m < c->count; m++) {
		const struct pm_vec_header *h = pm_at(&sh->arena, pm_coll_member(sh, c, m));
		if (filter && !pm_filter_match(filter, pm_vec_attr(sh, h)))
			continue;
		const float *v = pm_vec_data(h);
		if (c->params.dtype != PM_DTYPE_F32) {
			pm_vec_f32(c, h, scratch);
			v = scratch;
		}
		float d = pm_knn_distance(sh->kern, c->params.metric, q, qn, v, h->norm, dim);
		if (!(d <= radius))
			continue;
		within++;
		pm_knn_heap_offer(sh, out, &n, max, h->seed, d); /* the max nearest */
	}
	*truncated = within > max;
	*work = c->count * pm_knn_distance_bytes(dim);
	return pm_knn_heap_sort(sh, out, n);
}

uint32_t pm_knn_range_flat(const struct pm_shard *sh, const struct pm_collection *c,
			   const float *q, float radius, uint32_t max, struct pm_knn_hit *out,
			   bool *truncated, uint64_t *work)
{
	return range_flat(sh, c, q, radius, max, NULL, NULL, out, truncated, work);
}

/* ---------------------------------------------------------------- on a shard */

/* Alignment of each query in the space (the kernels' preference). */
#define QUERY_ALIGN_FLOATS 16u

struct pm_batch_space *pm_batch_space_new(void)
{
	struct pm_batch_space *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return NULL;
	sp->q = aligned_alloc(64, PM_BATCH_SPACE_FLOATS * sizeof(float));
	sp->one_q = aligned_alloc(64, PM_DIM_MAX * sizeof(float));
	if (!sp->q || !sp->one_q) {
		pm_batch_space_free(sp);
		return NULL;
	}
	return sp;
}

void pm_batch_space_free(struct pm_batch_space *sp)
{
	if (sp) {
		free(sp->q);
		free(sp->one_q);
	}
	free(sp);
}

static uint64_t work_cap(const struct pm_shard *sh)
{
	return sh->knn_work_max ? sh->knn_work_max : UINT64_MAX;
}

/* The collection a query names, or the default of its dimension (*out NULL:
 * none yet, no hits). */
static enum pm_status find_coll(struct pm_shard *sh, const struct pm_request *r,
				const struct pm_collection **out)
{
	const struct pm_collection *c =
		r->collection.len ? pm_coll_find(sh, r->collection.ptr, r->collection.len)
				  : pm_coll_default(sh, r->dim);
	if (!c && r->collection.len)
		return PM_NOT_FOUND;
	if (c && c->params.dim != r->dim)
		return PM_E_DIM;
	*out = c;
	return PM_OK;
}

/* One query's checks, as pm_vquery_begin's (max: the bound of its k), its
 * vector loaded into q and its collection found. */
static enum pm_status query_check(struct pm_shard *sh, const struct pm_request *r, uint32_t max,
				  float *q, const struct pm_collection **c)
{
	enum pm_status st = PM_OK;
	*c = NULL;
	if (r->k == 0 || r->k > max)
		st = PM_E_K;
	else if (r->ef > PM_EF_MAX || (r->ef && r->ef < r->k))
		st = PM_E_EF;
	else if (r->dim == 0 || r->dim > PM_DIM_MAX)
		st = PM_E_DIM;
	else if (r->collection.len > PM_COLLECTION_NAME_BYTES_MAX)
		st = PM_E_COLLECTION_NAME;
	if (st == PM_OK)
		st = find_coll(sh, r, c);
	if (st == PM_OK)
		st = pm_vec_load(q, r->vec, r->dim);
	if (st == PM_OK && *c && (*c)->params.metric == PM_METRIC_COSINE &&
	    !(pm_norm(q, r->dim) > 0.0f))
		st = PM_E_ZERO_VECTOR;
	return st;
}

static bool uses_graph(const struct pm_collection *c, const struct pm_request *r)
{
	return c->params.index == PM_INDEX_HNSW && !r->exact && c->count >= PM_HNSW_FLAT_BELOW;
}

/* A query the blocked scan does not take: a filtered one, or one of a
 * collection of another element type (codes, re-rank). It runs as a VQUERY
 * alone (knn.h), whole, with the same answer. */
static bool runs_alone(const struct pm_collection *c, const struct pm_request *r)
{
	return r->filter.len || c->params.dtype != PM_DTYPE_F32;
}

/* Query i run as a VQUERY alone: its hits (at most its k) into its segment. */
static enum pm_status run_alone(struct pm_shard *sh, const struct pm_request *r,
				struct pm_batch_space *sp, uint32_t i, uint64_t *work)
{
	struct pm_vquery *v = &sp->one;
	pm_vquery_begin(sh, v, r, sp->one_q, sp->one_hits);
	while (!pm_vquery_step(sh, v, UINT64_MAX))
		;
	*work = v->work;
	if (v->status != PM_OK)
		return v->status;
	sp->qs[i].nhits = PM_MIN(v->nhits, sp->qs[i].k);
	memcpy(sp->qs[i].hits, v->hits, sp->qs[i].nhits * sizeof(*v->hits));
	return PM_OK;
}

/* Check every query and lay the batch out in sp: vectors, hit segments. */
static enum pm_status batch_setup(struct pm_shard *sh, const struct pm_request *items,
				  uint32_t n, struct pm_batch_space *sp, uint64_t *flat_work)
{
	uint32_t fl = 0, seg = 0;
	*flat_work = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct pm_request *r = &items[i];
		uint32_t room = PM_BATCH_SPACE_FLOATS - fl;
		if (r->dim > room || r->k > PM_BATCH_HITS_MAX - seg)
			return PM_E_BATCH;
		enum pm_status st = query_check(sh, r, PM_K_MAX, sp->q + fl, &sp->coll[i]);
		if (st != PM_OK)
			return st;
		const struct pm_collection *c = sp->coll[i];
		sp->qs[i] = (struct pm_batch_query){ .q = sp->q + fl, .k = r->k, .hits = sp->seg + seg };
		sp->graph[i] = c && uses_graph(c, r);
		sp->alone[i] = c && runs_alone(c, r);
		if (c && !sp->graph[i] && !sp->alone[i] &&
		    c->count > work_cap(sh) / pm_knn_distance_bytes(r->dim))
			return PM_E_WORK_LIMIT; /* as this query alone would be */
		if (c && !sp->graph[i] && !sp->alone[i])
			*flat_work += c->count * pm_knn_distance_bytes(r->dim);
		fl += (r->dim + QUERY_ALIGN_FLOATS - 1) / QUERY_ALIGN_FLOATS * QUERY_ALIGN_FLOATS;
		seg += r->k;
	}
	return PM_OK;
}

/* The exact queries of collection c from query `from` on, as one blocked scan. */
static void batch_flat(const struct pm_shard *sh, struct pm_batch_space *sp, uint32_t n,
		       uint32_t from, bool *done)
{
	struct pm_batch_query grp[PM_BATCH_ITEMS_MAX];
	uint32_t idx[PM_BATCH_ITEMS_MAX], g = 0;
	const struct pm_collection *c = sp->coll[from];
	for (uint32_t i = from; i < n; i++)
		if (!done[i] && !sp->graph[i] && !sp->alone[i] && sp->coll[i] == c) {
			idx[g] = i;
			grp[g++] = sp->qs[i];
			done[i] = true;
		}
	pm_knn_flat_batch(sh, c, grp, g);
	for (uint32_t j = 0; j < g; j++)
		sp->qs[idx[j]].nhits = grp[j].nhits;
}

/* Run every query; the status (the work cap) and the work done. */
static enum pm_status batch_run(struct pm_shard *sh, const struct pm_request *items, uint32_t n,
				struct pm_batch_space *sp, uint64_t flat_work, uint64_t *work)
{
	bool done[PM_BATCH_ITEMS_MAX] = { false };
	*work = flat_work;
	for (uint32_t i = 0; i < n; i++)
		sp->qs[i].nhits = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct pm_collection *c = sp->coll[i];
		uint64_t w = 0;
		if (!c || done[i]) {
			continue;
		} else if (sp->alone[i]) {
			enum pm_status st = run_alone(sh, &items[i], sp, i, &w);
			*work += w;
			if (st != PM_OK)
				return st;
			continue;
		} else if (!sp->graph[i]) {
			batch_flat(sh, sp, n, i, done);
			continue;
		}
		uint32_t ef = items[i].ef ? items[i].ef : c->params.ef_search;
		enum pm_status st = pm_hnsw_search_limited(sh, c, sp->qs[i].q, sp->qs[i].k, ef,
							   work_cap(sh), sp->qs[i].hits,
							   &sp->qs[i].nhits, &w);
		*work += w;
		if (st != PM_OK)
			return st;
	}
	return PM_OK;
}

/* The reply: hits in query order, their keys, whose they are. */
static void batch_reply(struct pm_shard *sh, struct pm_batch_space *sp, uint32_t n,
			struct pm_reply *rep)
{
	uint32_t m = 0;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < sp->qs[i].nhits; j++, m++) {
			const struct pm_knn_hit *h = &sp->qs[i].hits[j];
			const struct pm_seed *s = pm_seed_at(&sh->arena, h->seed);
			sp->out[m] = *h;
			sp->hit_query[m] = i;
			sh->keys[m] = (struct pm_bytes){ pm_seed_key(&sh->arena, s), s->klen };
		}
	rep->hits = sp->out;
	rep->keys = sh->keys;
	rep->hit_query = sp->hit_query;
	rep->nhits = m;
}

void pm_vquery_batch(struct pm_shard *sh, const struct pm_request *items, uint32_t n,
		     struct pm_batch_space *sp, struct pm_reply *rep)
{
	uint64_t flat_work = 0, work = 0;
	enum pm_status st = n == 0 || n > PM_BATCH_ITEMS_MAX ? PM_E_BATCH : PM_OK;
	*rep = (struct pm_reply){ .op = PM_OP_VQUERYB, .id = n ? items[0].id : 0 };
	if (st == PM_OK)
		st = batch_setup(sh, items, n, sp, &flat_work);
	if (st == PM_OK)
		st = batch_run(sh, items, n, sp, flat_work, &work);
	rep->status = st;
	rep->work = work;
	sh->stats.ops[PM_OP_VQUERYB]++;
	sh->stats.knn_work += work;
	if (st != PM_OK) {
		sh->stats.errors[st]++;
		return;
	}
	batch_reply(sh, sp, n, rep);
	sh->stats.knn_queries += n;
}

/* ---------------------------------------------------------------- VRANGE on a shard */

void pm_vrange(struct pm_shard *sh, const struct pm_request *req, struct pm_batch_space *sp,
	       struct pm_reply *rep)
{
	const struct pm_collection *c = NULL;
	uint64_t work = 0;
	uint32_t n = 0;
	bool truncated = false;
	*rep = (struct pm_reply){ .op = PM_OP_VRANGE, .id = req->id };
	enum pm_status st = query_check(sh, req, PM_RANGE_HITS_MAX, sp->q, &c);
	if (st == PM_OK && !__builtin_isfinite(req->radius))
		st = PM_E_PARAM;
	const struct pm_filter_prog *filter = NULL;
	if (st == PM_OK && req->filter.len) {
		st = pm_filter_compile(&sp->range_filter, req->filter.ptr, req->filter.len);
		filter = &sp->range_filter;
	}
	/* a filtered range is exact: the graph walk follows nodes within the
	 * radius, which a filter would cut into islands */
	if (st == PM_OK && c && !filter && uses_graph(c, req)) {
		st = pm_hnsw_range(sh, c, sp->q, req->radius, req->k,
				   req->ef ? req->ef : c->params.ef_search, work_cap(sh), sh->hits,
				   &n, &truncated, &work);
	} else if (st == PM_OK && c) {
		if (c->count > work_cap(sh) / pm_knn_distance_bytes(c->params.dim))
			st = PM_E_WORK_LIMIT; /* refused before it starts, as an exact VQUERY */
		else
			n = range_flat(sh, c, sp->q, req->radius, req->k, filter, sp->one_q,
				       sh->hits, &truncated, &work);
	}
	rep->status = st;
	rep->work = work;
	sh->stats.ops[PM_OP_VRANGE]++;
	sh->stats.knn_work += work;
	if (st != PM_OK) {
		sh->stats.errors[st]++;
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct pm_seed *s = pm_seed_at(&sh->arena, sh->hits[i].seed);
		sh->keys[i] = (struct pm_bytes){ pm_seed_key(&sh->arena, s), s->klen };
	}
	rep->hits = sh->hits;
	rep->keys = sh->keys;
	rep->nhits = n;
	rep->truncated = truncated;
	sh->stats.knn_queries++;
}
