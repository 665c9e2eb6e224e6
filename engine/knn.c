/* SPDX-License-Identifier: MIT
 *
 * knn.c — exact top-k with a bounded max-heap (the worst kept hit on top).
 *
 * The scan walks the collection's member chunks in order; a candidate is
 * compared with the heap's top by distance alone, and keys are read only on an
 * exact distance tie, so the common path touches nothing but the vectors.
 * A scan can be cut into steps (pm_knn_scan_step): the heap lives in the
 * caller's hit array between them.
 */
#include <math.h>
#include <string.h>

#include "common.h"
#include "knn.h"
#include "quant.h"
#include "vector.h"

/* Members ahead of the one being scored whose vectors are prefetched. */
#define PREFETCH_DISTANCE 4u

float pm_knn_distance(const struct pm_kernels *kern, uint8_t metric, const float *q, float qnorm,
		      const float *v, float vnorm, uint32_t dim)
{
	switch (metric) {
	case PM_METRIC_IP:
		return 1.0f - kern->dot(q, v, dim);
	case PM_METRIC_COSINE:
		return 1.0f - kern->dot(q, v, dim) / (qnorm * vnorm);
	default:
		return kern->l2sq(q, v, dim);
	}
}

static int key_cmp(const struct pm_shard *sh, uint32_t a, uint32_t b)
{
	const struct pm_seed *sa = pm_seed_at(&sh->arena, a), *sb = pm_seed_at(&sh->arena, b);
	int c = memcmp(pm_seed_key(&sh->arena, sa), pm_seed_key(&sh->arena, sb),
		       PM_MIN(sa->klen, sb->klen));
	return c ? c : (int)sa->klen - (int)sb->klen;
}

int pm_knn_hit_cmp(const struct pm_shard *sh, const struct pm_knn_hit *a,
		   const struct pm_knn_hit *b)
{
	if (a->dist != b->dist)
		return a->dist < b->dist ? -1 : 1;
	return a->seed == b->seed ? 0 : key_cmp(sh, a->seed, b->seed);
}

/* ---------------------------------------------------------------- heap */

struct heap {
	const struct pm_shard *sh;
	struct pm_knn_hit *h;
	uint32_t n, cap;
};

static void sift_up(struct heap *hp, uint32_t i)
{
	struct pm_knn_hit x = hp->h[i];
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (pm_knn_hit_cmp(hp->sh, &hp->h[p], &x) >= 0)
			break;
		hp->h[i] = hp->h[p];
		i = p;
	}
	hp->h[i] = x;
}

static void sift_down(struct heap *hp, uint32_t i)
{
	struct pm_knn_hit x = hp->h[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= hp->n)
			break;
		if (c + 1 < hp->n && pm_knn_hit_cmp(hp->sh, &hp->h[c + 1], &hp->h[c]) > 0)
			c++;
		if (pm_knn_hit_cmp(hp->sh, &hp->h[c], &x) <= 0)
			break;
		hp->h[i] = hp->h[c];
		i = c;
	}
	hp->h[i] = x;
}

static inline void heap_offer(struct heap *hp, uint32_t seed, float dist)
{
	struct pm_knn_hit x = { .seed = seed, .dist = dist };
	if (hp->n < hp->cap) {
		hp->h[hp->n++] = x;
		sift_up(hp, hp->n - 1);
	} else if (dist < hp->h[0].dist ||
		   (dist == hp->h[0].dist && pm_knn_hit_cmp(hp->sh, &x, &hp->h[0]) < 0)) {
		hp->h[0] = x;
		sift_down(hp, 0);
	}
}

/* Pop everything: the heap array ends up sorted ascending. */
static void heap_sort(struct heap *hp)
{
	uint32_t n = hp->n;
	while (hp->n > 1) {
		struct pm_knn_hit top = hp->h[0];
		hp->h[0] = hp->h[--hp->n];
		sift_down(hp, 0);
		hp->h[hp->n] = top;
	}
	hp->n = n;
}

/* ---------------------------------------------------------------- scan */

void pm_knn_scan_begin(struct pm_knn_scan *s, const struct pm_collection *c, const float *q,
		       uint32_t k, struct pm_knn_hit *hits)
{
	PM_ASSERT(k >= 1);
	const uint32_t dim = c->params.dim;
	const bool norm = c->params.metric == PM_METRIC_COSINE || c->params.dtype != PM_DTYPE_F32;
	*s = (struct pm_knn_scan){
		.q = q,
		.qnorm = norm ? pm_norm(q, dim) : 0.0f,
		.k = pm_vec_rerank_candidates(c, k), /* more when they are re-ranked */
		.hits = hits,
	};
}

/* The distance of the query to member h: between codes in a collection of
 * another element type than f32 (quant.h; qc: the query's codes). A result
 * above bound may be a partial sum still above it (f32 L2: distance.h's
 * l2sq_bounded); one not above it is exact. */
static inline float member_distance(const struct pm_shard *sh, const struct pm_collection *c,
				    const struct pm_knn_scan *s, const struct pm_qref *qc,
				    const struct pm_vec_header *h, float bound)
{
	if (c->params.dtype != PM_DTYPE_F32)
		return pm_quant_distance(sh->qkern, c->params.dtype, c->params.metric, c->params.dim,
					 qc, &(struct pm_qref){ pm_vec_payload(h), h->norm, h->qscale });
	if (c->params.metric == PM_METRIC_L2)
		return sh->kern->l2sq_bounded(s->q, pm_vec_data(h), c->params.dim, bound);
	return pm_knn_distance(sh->kern, c->params.metric, s->q, s->qnorm, pm_vec_data(h), h->norm,
			       c->params.dim);
}

/* What a distance must not be above to enter the heap (heap_offer): the worst
 * kept hit's once the heap is full. */
static inline float heap_bound(const struct heap *hp)
{
	return hp->n == hp->cap ? hp->h[0].dist : INFINITY;
}

bool pm_knn_scan_step(struct pm_knn_scan *s, const struct pm_shard *sh,
		      const struct pm_collection *c, uint64_t budget)
{
	const uint64_t cost = pm_knn_distance_bytes(c->params.dim);
	/* the query's codes, made again at each step: cheaper than the step */
	_Alignas(64) uint8_t qcode[PM_QUANT_CODE_BYTES_MAX];
	struct pm_qref qc = { 0 };
	if (c->params.dtype != PM_DTYPE_F32)
		pm_quant_query(&c->params, s->q, qcode, &qc);
	struct heap hp = { .sh = sh, .h = s->hits, .n = s->n, .cap = s->k };
	PM_ASSERT(s->next <= c->count);
	const uint64_t members = PM_MAX(budget / cost, 1u); /* this step's, at most */
	const uint64_t end = c->count - s->next > members ? s->next + members : c->count;
	const uint64_t *dir = c->count ? pm_at(&sh->arena, c->dir_off) : NULL;

	for (uint64_t i = s->next; i < end;) { /* chunk by chunk: [j0, n) of this one */
		const uint64_t *chunk = pm_at(&sh->arena, dir[i / PM_MEMBER_CHUNK_ENTRIES]);
		uint32_t j0 = (uint32_t)(i % PM_MEMBER_CHUNK_ENTRIES);
		uint32_t n = (uint32_t)PM_MIN(end - i + j0, PM_MEMBER_CHUNK_ENTRIES);
		for (uint32_t j = j0; j < n; j++) {
			if (j + PREFETCH_DISTANCE < n)
				__builtin_prefetch(pm_at(&sh->arena, chunk[j + PREFETCH_DISTANCE]));
			const struct pm_vec_header *h = pm_at(&sh->arena, chunk[j]);
			if (s->filter && !pm_filter_match(s->filter, pm_vec_attr(sh, h)))
				continue;
			heap_offer(&hp, h->seed, member_distance(sh, c, s, &qc, h, heap_bound(&hp)));
		}
		i += n - j0;
	}
	s->work += (end - s->next) * cost;
	s->next = end;
	s->n = hp.n;
	return end == c->count;
}

uint32_t pm_knn_scan_end(struct pm_knn_scan *s, const struct pm_shard *sh)
{
	struct heap hp = { .sh = sh, .h = s->hits, .n = s->n, .cap = s->k };
	heap_sort(&hp);
	return hp.n;
}

uint32_t pm_knn_flat(const struct pm_shard *sh, const struct pm_collection *c, const float *q,
		     uint32_t k, struct pm_knn_hit *out)
{
	struct pm_knn_scan s;
	pm_knn_scan_begin(&s, c, q, k, out);
	(void)pm_knn_scan_step(&s, sh, c, UINT64_MAX);
	uint32_t n = pm_knn_scan_end(&s, sh);
	return pm_vec_reranks(c) ? pm_vec_rerank(sh, c, q, s.qnorm, out, n, k) : n;
}

/* ---------------------------------------------------------------- VQUERY in steps */

static uint64_t work_cap(const struct pm_shard *sh)
{
	return sh->knn_work_max ? sh->knn_work_max : UINT64_MAX;
}

static bool vquery_end(struct pm_vquery *v, enum pm_status st)
{
	v->status = st;
	v->done = true;
	if (st != PM_OK)
		v->nhits = 0;
	return true;
}

/* The collection v names, or the default one of its dimension (*out NULL when
 * there is none yet: no hits). */
static enum pm_status vquery_find(struct pm_shard *sh, const struct pm_vquery *v,
				  const struct pm_collection **out)
{
	const struct pm_collection *c = v->name_len ? pm_coll_find(sh, v->name, v->name_len)
						    : pm_coll_default(sh, v->dim);
	if (!c && v->name_len)
		return PM_NOT_FOUND;
	if (c && c->params.dim != v->dim)
		return PM_E_DIM;
	*out = c;
	return PM_OK;
}

/* An exact scan of c, refused before it starts past the work cap. */
static enum pm_status vquery_scan_begin(struct pm_shard *sh, struct pm_vquery *v,
					const struct pm_collection *c)
{
	if (c->count > work_cap(sh) / pm_knn_distance_bytes(v->dim))
		return PM_E_WORK_LIMIT; /* count x bytes per member > the cap */
	pm_knn_scan_begin(&v->scan, c, v->q, v->k, v->hits);
	return PM_OK;
}

/* The estimated fraction of c's members v's filter passes (filter.h). */
static double filter_selectivity(const struct pm_shard *sh, const struct pm_vquery *v,
				 const struct pm_collection *c)
{
	if (c->attr_stats_lost)
		return 1.0; /* not known */
	return pm_filter_selectivity(&v->filter, pm_coll_attr_stats(sh, c), c->count);
}

/* Graph or scan on c; a scan past the work cap is refused before it starts. */
static enum pm_status vquery_setup(struct pm_shard *sh, struct pm_vquery *v,
				   const struct pm_collection *c)
{
	v->nhits = 0;
	if (!c) {
		v->done = true;
		return PM_OK;
	}
	if (c->params.metric == PM_METRIC_COSINE && !(pm_norm(v->q, v->dim) > 0.0f))
		return PM_E_ZERO_VECTOR;
	/* The graph answers unless the client asked for exact results or the
	 * collection is small enough that a scan is as fast (PM_HNSW_FLAT_BELOW),
	 * or the filter passes too few members for the graph to find them. */
	v->graph = c->params.index == PM_INDEX_HNSW && !v->exact && c->count >= PM_HNSW_FLAT_BELOW;
	if (v->graph && v->filtered)
		v->graph = filter_selectivity(sh, v, c) >= PM_FILTER_SCAN_SELECTIVITY;
	v->fallback = false;
	v->coll = (uint32_t)(c - sh->colls);
	v->gen = c->gen;
	v->mutations = c->mutations;
	if (v->graph)
		return PM_OK;
	return vquery_scan_begin(sh, v, c);
}

enum pm_status pm_vquery_begin(struct pm_shard *sh, struct pm_vquery *v,
			       const struct pm_request *req, float *q, struct pm_knn_hit *hits)
{
	*v = (struct pm_vquery){ .id = req->id, .dim = req->dim, .k = req->k, .ef = req->ef,
				 .exact = req->exact, .q = q, .hits = hits,
				 .coll = PM_COLLECTIONS_MAX };
	enum pm_status st = PM_OK;
	const struct pm_collection *c = NULL;
	if (req->k == 0 || req->k > PM_K_MAX)
		st = PM_E_K;
	else if (req->ef > PM_EF_MAX || (req->ef && req->ef < req->k))
		st = PM_E_EF;
	else if (req->dim == 0 || req->dim > PM_DIM_MAX)
		st = PM_E_DIM;
	else if (req->collection.len > PM_COLLECTION_NAME_BYTES_MAX)
		st = PM_E_COLLECTION_NAME;
	else if (req->filter.len) {
		v->filtered = true;
		st = pm_filter_compile(&v->filter, req->filter.ptr, req->filter.len);
	}
	if (st == PM_OK) {
		v->name_len = (uint8_t)req->collection.len;
		if (v->name_len)
			memcpy(v->name, req->collection.ptr, v->name_len);
		st = vquery_find(sh, v, &c);
	}
	if (st == PM_OK)
		st = pm_vec_load(v->q, req->vec, req->dim);
	if (st == PM_OK)
		st = vquery_setup(sh, v, c);
	if (st != PM_OK)
		vquery_end(v, st);
	return st;
}

/* The graph search, whole. A filtered one that finds fewer than k turns
 * into an exact filtered scan (v->fallback): more may pass than the graph
 * reached within its bound. */
static bool vquery_graph(struct pm_shard *sh, struct pm_vquery *v, const struct pm_collection *c)
{
	uint64_t work;
	uint32_t ef = v->ef ? v->ef : c->params.ef_search;
	enum pm_status st;
	if (!v->filtered)
		st = pm_hnsw_search_limited(sh, c, v->q, v->k, ef, work_cap(sh), v->hits, &v->nhits,
					    &work);
	else
		st = pm_hnsw_search_filtered(sh, c, v->q, v->k, ef, &v->filter,
					     (uint32_t)PM_MIN(PM_MAX(ef, v->k) * PM_FILTER_TESTS_PER_EF,
							      c->count),
					     work_cap(sh),
					     v->hits, &v->nhits, &work);
	v->work += work;
	if (st != PM_OK || !v->filtered || v->nhits >= v->k)
		return vquery_end(v, st);
	v->graph = false;
	v->fallback = true;
	v->nhits = 0;
	if ((st = vquery_scan_begin(sh, v, c)) != PM_OK)
		return vquery_end(v, st);
	return false;
}

bool pm_vquery_step(struct pm_shard *sh, struct pm_vquery *v, uint64_t budget)
{
	if (v->done)
		return true;
	const struct pm_collection *c = &sh->colls[v->coll];
	if (!c->live || c->dropping || c->gen != v->gen || c->mutations != v->mutations) {
		/* the collection changed (or was dropped: CDROP only marks it, and
		 * the name then finds nothing) between two steps: begin again */
		v->restarts++;
		sh->stats.knn_restarts += !v->graph && v->scan.next > 0; /* work lost */
		enum pm_status st = vquery_find(sh, v, &c);
		if (st == PM_OK)
			st = vquery_setup(sh, v, c);
		if (st != PM_OK || v->done)
			return vquery_end(v, st);
	}
	if (v->graph)
		return vquery_graph(sh, v, c);
	if (v->restarts >= PM_KNN_SCAN_RESTARTS_MAX)
		budget = UINT64_MAX;
	v->scan.filter = v->filtered ? &v->filter : NULL; /* v may have moved since the begin */
	uint64_t before = v->scan.work;
	bool end = pm_knn_scan_step(&v->scan, sh, c, budget);
	v->work += v->scan.work - before;
	v->scanned += (v->scan.work - before) / pm_knn_distance_bytes(v->dim);
	if (!end)
		return false;
	v->nhits = pm_knn_scan_end(&v->scan, sh);
	if (pm_vec_reranks(c)) /* ranked by codes: re-rank with the f32 */
		v->nhits = pm_vec_rerank(sh, c, v->q, v->scan.qnorm, v->hits, v->nhits, v->k);
	return vquery_end(v, PM_OK);
}

uint64_t pm_vquery_remaining(const struct pm_shard *sh, const struct pm_vquery *v)
{
	if (v->done || v->graph)
		return 0;
	const struct pm_collection *c = &sh->colls[v->coll];
	uint64_t cost = pm_knn_distance_bytes(v->dim);
	return c->live && c->count > v->scan.next ? (c->count - v->scan.next) * cost : 0;
}

void pm_vquery_reply(struct pm_shard *sh, const struct pm_vquery *v, struct pm_reply *rep)
{
	PM_ASSERT(v->done);
	rep->status = v->status;
	rep->work = v->work;
	sh->stats.knn_work += v->work;
	if (v->status != PM_OK)
		return;
	for (uint32_t i = 0; i < v->nhits; i++) {
		const struct pm_seed *s = pm_seed_at(&sh->arena, v->hits[i].seed);
		sh->keys[i].ptr = pm_seed_key(&sh->arena, s);
		sh->keys[i].len = s->klen;
	}
	rep->nhits = v->nhits;
	rep->hits = v->hits;
	rep->keys = sh->keys;
	sh->stats.knn_queries++;
	sh->stats.knn_scanned += v->scanned;
	sh->stats.knn_graph += v->graph;
}

/* ---------------------------------------------------------------- bounded heap, for batch.c */

void pm_knn_heap_offer(const struct pm_shard *sh, struct pm_knn_hit *h, uint32_t *n,
		       uint32_t cap, uint32_t seed, float dist)
{
	struct heap hp = { .sh = sh, .h = h, .n = *n, .cap = cap };
	heap_offer(&hp, seed, dist);
	*n = hp.n;
}

uint32_t pm_knn_heap_sort(const struct pm_shard *sh, struct pm_knn_hit *h, uint32_t n)
{
	struct heap hp = { .sh = sh, .h = h, .n = n, .cap = n };
	heap_sort(&hp);
	return n;
}
