/* SPDX-License-Identifier: MIT
 *
 * knn.h — exact (flat) k-nearest-neighbour search over one collection.
 *
 * Scores are the collection metric's distance (smaller is nearer):
 *   L2      sum (q_i - v_i)^2
 *   IP      1 - dot(q, v)
 *   COSINE  1 - dot(q, v) / (|q| |v|)
 * Results are ordered by (distance, key): ties are broken by the key's bytes
 * (shorter first on a common prefix), so the same data always gives the same
 * answer whatever order it was inserted in.
 *
 * Work: what a search costs is counted in the bytes of vector blobs it reads,
 * pm_knn_distance_bytes(dim) per distance computation (the 64-byte header and
 * the payload), so that one budget means the same CPU time at dimension 16 and
 * at 4096 (a count of distances would let a 4096-dimension query cost 50 times
 * what a 64-dimension one does under the same limit). The scan can stop and
 * resume (pm_knn_scan_*): the dataplane runs a long exact scan in slices and
 * serves other requests between them. A collection of another element type
 * than f32 (quant.h) is charged as if it were f32: its codes are fewer bytes,
 * so the cap is conservative for it.
 */
#ifndef POMAI_ENGINE_KNN_H
#define POMAI_ENGINE_KNN_H

#include <stdbool.h>
#include <stdint.h>

#include "filter.h"
#include "shard.h"
#include "vector.h"

/* Bytes of vector blob one distance computation reads: header and payload. */
static inline uint64_t pm_knn_distance_bytes(uint32_t dim)
{
	return PM_VEC_HEADER_BYTES + (uint64_t)dim * sizeof(float);
}

/* The k nearest members of c to query q (dim floats, aligned scratch allowed).
 * Writes min(k, count) hits to out, sorted; returns how many. k must be >= 1.
 * A collection of another element type than f32 is scanned by codes
 * (quant.h); one that re-ranks keeps max(k, rerank_k) candidates in out
 * (which must hold PM_K_MAX hits then) and answers from their f32 distances. */
uint32_t pm_knn_flat(const struct pm_shard *sh, const struct pm_collection *c, const float *q,
		     uint32_t k, struct pm_knn_hit *out);

/* The same scan in steps. Between two steps the caller may serve other
 * requests, but the collection must not change (membership, vectors, or the
 * collection itself; struct pm_collection's `mutations` says when it did):
 * then the scan must begin again. */
struct pm_knn_scan {
	const float *q;          /* the query: dim floats, owned by the caller */
	float qnorm;             /* |q| (cosine) */
	uint32_t k;
	uint32_t n;              /* hits kept so far: a max-heap until pm_knn_scan_end */
	struct pm_knn_hit *hits; /* k entries, owned by the caller */
	uint64_t next;           /* the member the next step starts at */
	uint64_t work;           /* bytes read so far (pm_knn_distance_bytes per member) */
	const struct pm_filter_prog *filter; /* NULL, or only members passing it are scored */
};

void pm_knn_scan_begin(struct pm_knn_scan *s, const struct pm_collection *c, const float *q,
		       uint32_t k, struct pm_knn_hit *hits);
/* Score members from s->next on, until every member is scored (true) or this
 * step has read `budget` bytes (false); a step scores at least one member. */
bool pm_knn_scan_step(struct pm_knn_scan *s, const struct pm_shard *sh,
		      const struct pm_collection *c, uint64_t budget);
/* Sort the kept hits (ascending by (distance, key)); returns how many. */
uint32_t pm_knn_scan_end(struct pm_knn_scan *s, const struct pm_shard *sh);

/* ---------------------------------------------------------------- VQUERY in steps */

/* A VQUERY that can run in steps, so that a long exact scan does not hold the
 * shard's worker: pm_vquery_begin checks the request and finds its collection
 * (cheap); each pm_vquery_step then does the search — a graph search whole
 * (bounded by the work cap), an exact scan `budget` bytes of it at a time —
 * until it returns true; pm_vquery_reply fills the reply. Between steps the
 * shard may serve other requests: a scan whose collection changed (its
 * `mutations`, or the collection dropped) begins again, and one that began
 * again PM_KNN_SCAN_RESTARTS_MAX times ends in one step, so the answer is
 * always that of one unchanged collection. pm_shard_apply runs all three at
 * once.
 *
 * The work cap: a search that would read more than sh->knn_work_max bytes on
 * this shard is refused PM_E_WORK_LIMIT — an exact scan before any work (its
 * cost is count x pm_knn_distance_bytes(dim), known in advance), a graph
 * search when it gets there. */
struct pm_vquery {
	uint64_t id;
	uint32_t dim, k, ef;
	bool exact;
	uint8_t name_len;
	uint8_t name[PM_COLLECTION_NAME_BYTES_MAX];
	float *q;                 /* PM_DIM_MAX floats, 64-byte aligned: the caller's */
	struct pm_knn_hit *hits;  /* PM_K_MAX: the caller's */
	enum pm_status status;
	bool done;                /* status and hits are final */
	bool graph;               /* HNSW search, not an exact scan */
	uint32_t coll, gen;       /* the collection searched: its slot and generation */
	uint64_t mutations;       /* its mutations when the scan began */
	uint32_t restarts;        /* scans begun again */
	uint32_t nhits;
	uint64_t work;            /* bytes read, restarts included */
	uint64_t scanned;         /* members an exact scan scored, restarts included */
	struct pm_knn_scan scan;
	/* filtered search (filter.h): the compiled expression, when there is one */
	bool filtered;
	bool fallback;            /* the graph found fewer than k: an exact scan answers */
	struct pm_filter_prog filter;
};

/* Check req (a VQUERY) and set v up, with the query copied into q; the
 * status (v->status): an error, or PM_OK. v->done when there is nothing to
 * search (an error, or no default collection of that dimension). */
enum pm_status pm_vquery_begin(struct pm_shard *sh, struct pm_vquery *v,
			       const struct pm_request *req, float *q, struct pm_knn_hit *hits);
/* Search on; true when done (v->status, v->hits final). budget: bytes an
 * exact scan may read in this step (UINT64_MAX: to the end). */
bool pm_vquery_step(struct pm_shard *sh, struct pm_vquery *v, uint64_t budget);
/* Bytes an exact scan still has to read (its collection as it is now); 0 for
 * a graph search (not known before it runs) or a query that is done. */
uint64_t pm_vquery_remaining(const struct pm_shard *sh, const struct pm_vquery *v);
/* A done query's reply fields (status, hits, their keys in sh->keys, work)
 * and the shard's KNN counters. Valid until the shard next changes. */
void pm_vquery_reply(struct pm_shard *sh, const struct pm_vquery *v, struct pm_reply *rep);

/* Distance between q and a stored vector under a metric (qnorm used by cosine). */
float pm_knn_distance(const struct pm_kernels *kern, uint8_t metric, const float *q, float qnorm,
		      const float *v, float vnorm, uint32_t dim);

/* The bounded max-heap the scan keeps (worst kept hit on top), for other
 * scans (batch.c): offer (seed, dist) to the n hits of h (cap at most); sort
 * the n kept ascending by (distance, key). */
void pm_knn_heap_offer(const struct pm_shard *sh, struct pm_knn_hit *h, uint32_t *n,
		       uint32_t cap, uint32_t seed, float dist);
uint32_t pm_knn_heap_sort(const struct pm_shard *sh, struct pm_knn_hit *h, uint32_t n);

/* Compare two hits by (distance, key): <0, 0, >0. */
int pm_knn_hit_cmp(const struct pm_shard *sh, const struct pm_knn_hit *a,
		   const struct pm_knn_hit *b);

#endif
