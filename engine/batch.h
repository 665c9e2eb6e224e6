/* SPDX-License-Identifier: MIT
 *
 * batch.h — searches of many queries at once and range searches, over one
 * collection (batch.c; the graph's range search is pm_hnsw_range in hnsw.c).
 *
 * A batch of exact top-k queries reads every stored vector once for the whole
 * batch: blocks of stored vectors against blocks of queries, in the spirit of
 * a GEMM, each pair's distance from a dot product (L2 as |v|^2 - 2 v.q +
 * |q|^2). That formula rounds differently from the metric's kernel, so it only
 * sifts: a pair whose sifted distance is within a rounding bound of the
 * query's current k-th best is scored again with the kernel one query uses
 * (pm_knn_distance), and only kernel distances enter the results. So a batch
 * answers exactly what the same queries answer one by one (pm_knn_flat):
 * same hits, same distances, same order.
 *
 * A range search returns every member within distance `radius` of the query
 * (the metric's distance: squared L2, 1 - dot, 1 - cosine), nearest first,
 * at most `max` of them; when more qualify, the `max` nearest are returned
 * and `truncated` is set. The exact one reads every member; the graph's
 * (pm_hnsw_range) is approximate, like every graph search.
 */
#ifndef POMAI_ENGINE_BATCH_H
#define POMAI_ENGINE_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "filter.h"
#include "knn.h"
#include "pm_limits.h"
#include "request.h"
#include "shard.h"

/* Items of one batch (VADD or VQUERY): what one frame can carry of small
 * vectors (a 16-dimension VADD item is about 90 bytes: 65507 / 90 > 700),
 * bounded so that a batch's per-item arrays stay small and its work on one
 * turn of a worker stays bounded. */
#ifndef PM_BATCH_ITEMS_MAX
#define PM_BATCH_ITEMS_MAX 512u
#endif

/* Hits of one VQUERY batch, summed over its queries' k: the fan-out merges a
 * batch in the buffers of one KNN query (PM_K_MAX hits). */
#define PM_BATCH_HITS_MAX PM_K_MAX

/* Most hits one range search returns (the request's max is 1..this): the
 * merge of a range fan-out uses the buffers of one KNN query. */
#define PM_RANGE_HITS_MAX PM_K_MAX

_Static_assert(PM_BATCH_HITS_MAX <= PM_K_MAX && PM_RANGE_HITS_MAX <= PM_K_MAX,
	       "batch and range replies fit a KNN query's buffers");
_Static_assert(PM_RANGE_HITS_MAX < PM_EF_MAX, "a graph range search walks in the beam array");

/* One query of an exact batch: its vector (dim floats), k, and where its hits
 * go (k entries); nhits is set by pm_knn_flat_batch. */
struct pm_batch_query {
	const float *q;
	uint32_t k;
	struct pm_knn_hit *hits;
	uint32_t nhits;
};

/* The exact top-k of every query over c, in one pass over c's members (see
 * the header comment). Each query's hits are sorted as pm_knn_flat sorts
 * them. Returns the distances computed times pm_knn_distance_bytes(dim): a
 * batch is charged as its queries, since its cost is their arithmetic. */
uint64_t pm_knn_flat_batch(const struct pm_shard *sh, const struct pm_collection *c,
			   struct pm_batch_query *qs, uint32_t nq);

/* The same with the portable tile (no SIMD), for tests of both paths. */
uint64_t pm_knn_flat_batch_scalar(const struct pm_shard *sh, const struct pm_collection *c,
				  struct pm_batch_query *qs, uint32_t nq);

/* Every member of c within radius of q, nearest first, at most max (1..
 * PM_RANGE_HITS_MAX) into out; *truncated when more were within. Returns how
 * many; *work: bytes read (knn.h). */
uint32_t pm_knn_range_flat(const struct pm_shard *sh, const struct pm_collection *c,
			   const float *q, float radius, uint32_t max, struct pm_knn_hit *out,
			   bool *truncated, uint64_t *work);

/* ---------------------------------------------------------------- on a shard */

/* Components of one batch's query vectors (64 KiB: what one frame carries;
 * the bridge checks it against the frame's bound). */
#define PM_BATCH_FLOATS_MAX 16384u

/* Scratch of a VQUERY batch or a range search on one shard: the caller's
 * (one per worker), allocated with pm_batch_space_new. */
struct pm_batch_space {
	float *q;                                        /* the queries, each 64-byte aligned */
	struct pm_batch_query qs[PM_BATCH_ITEMS_MAX];
	const struct pm_collection *coll[PM_BATCH_ITEMS_MAX]; /* NULL: nothing to search */
	bool graph[PM_BATCH_ITEMS_MAX];
	struct pm_knn_hit seg[PM_BATCH_HITS_MAX];        /* each query's k, in order */
	struct pm_knn_hit out[PM_BATCH_HITS_MAX];        /* the reply's hits */
	uint32_t hit_query[PM_BATCH_HITS_MAX];           /* the query of out[i] */
	/* a query that runs alone (filtered, or of another element type than
	 * f32): its VQUERY state, query copy and hits (re-rank candidates) */
	bool alone[PM_BATCH_ITEMS_MAX];
	struct pm_vquery one;
	float *one_q;                                    /* PM_DIM_MAX, 64-byte aligned */
	struct pm_knn_hit one_hits[PM_K_MAX];
	struct pm_filter_prog range_filter;              /* a VRANGE's filter, compiled */
};
/* Floats of pm_batch_space.q: the components and each query's alignment. */
#define PM_BATCH_SPACE_FLOATS (PM_BATCH_FLOATS_MAX + 16u * PM_BATCH_ITEMS_MAX)

struct pm_batch_space *pm_batch_space_new(void);
void pm_batch_space_free(struct pm_batch_space *sp);

/* A VQUERY batch: items[0..n) are its queries (VQUERY requests). Every item
 * is checked as one VQUERY is (the first failure is the batch's status: a
 * query batch answers whole or not at all); then the exact ones (flat
 * collections, exact requests, small HNSW ones) run as one blocked scan per
 * collection (pm_knn_flat_batch) and the others as graph searches, one by
 * one. The work cap (knn.h) applies to each query as to a VQUERY alone (so a
 * batch is refused PM_E_WORK_LIMIT exactly when one of its queries would
 * be); rep->work is the batch's work summed, which the caller charges. rep: hits in
 * query order, each query's sorted, hit_query saying whose; keys in sh->keys.
 * Valid until the shard or sp next changes. */
void pm_vquery_batch(struct pm_shard *sh, const struct pm_request *items, uint32_t n,
		     struct pm_batch_space *sp, struct pm_reply *rep);

/* A VRANGE (req->k: the most hits; req->radius): exact on flat collections
 * (and exact requests, small HNSW ones), through the graph (pm_hnsw_range,
 * approximate) on HNSW ones. rep: hits sorted, keys in sh->keys, truncated. */
void pm_vrange(struct pm_shard *sh, const struct pm_request *req, struct pm_batch_space *sp,
	       struct pm_reply *rep);

#endif
