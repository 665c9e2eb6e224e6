/* SPDX-License-Identifier: MIT
 *
 * hnsw.c — the HNSW index (design and departures from the paper in hnsw.h).
 *
 * Sections: node table; links; distances; visited marks; beam search;
 * neighbour selection; insert / update; delete and sweep; search; checkers.
 *
 * Memory: the node table and the visited marks are chunked blobs; a node's
 * level-0 links sit in its vector blob after the payload; its upper links are
 * one blob of level x (4 + 4 M) bytes. Scratch (beam, candidate lists) is the
 * shard's start-up reservation. Nothing is allocated while searching.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "common.h"
#include "filter.h"
#include "hnsw.h"
#include "knn.h"
#include "quant.h"
#include "shard.h"
#include "vector.h"

#define ID_MASK 0x7FFFFFFFu /* node ids stay below 2^31 */
#define INDEG_SATURATED UINT16_MAX
#define DIR_CAP_INITIAL 8u
#define LEVEL_SEED 0x9E3779B97F4A7C15ull
/* Neighbours ahead of the one being scored whose blob lines are prefetched. */
#define PREFETCH_AHEAD 4u
/* Cache lines of a blob (from the header on) prefetched before its distance is
 * computed: the header and payload of a 100-float vector (64 + 400 bytes) are
 * 8 lines; longer vectors get these and the hardware's stream prefetcher the
 * rest. */
#define PREFETCH_BLOB_LINES 8u
#define CACHE_LINE_BYTES 64u

/* ---------------------------------------------------------------- node table */

static inline struct pm_hnsw_node *node_at(const struct pm_shard *sh, const struct pm_hnsw *h,
					   uint32_t id)
{
	const uint64_t *dir = pm_at(&sh->arena, h->dir_off);
	struct pm_hnsw_node *chunk = pm_at(&sh->arena, dir[id / PM_HNSW_CHUNK_NODES]);
	return &chunk[id % PM_HNSW_CHUNK_NODES];
}

/* A node's blob offset from its table entry's unit, and back. */
static inline uint64_t unit_off(uint32_t unit)
{
	return (uint64_t)unit << PM_HNSW_UNIT_SHIFT;
}

static inline uint32_t off_unit(uint64_t off)
{
	return (uint32_t)(off >> PM_HNSW_UNIT_SHIFT);
}

static inline struct pm_vec_header *unit_hdr(const struct pm_shard *sh, uint32_t unit)
{
	return pm_at(&sh->arena, unit_off(unit));
}

static inline struct pm_vec_header *node_hdr(const struct pm_shard *sh, const struct pm_hnsw *h,
					     uint32_t id)
{
	return unit_hdr(sh, node_at(sh, h, id)->unit);
}

static bool grow_dir(struct pm_shard *sh, uint64_t *dir_off, uint32_t *dir_cap, uint32_t used)
{
	uint32_t cap = *dir_cap ? *dir_cap * 2 : DIR_CAP_INITIAL;
	uint64_t off = pm_blob_alloc(&sh->arena, cap * (uint32_t)sizeof(uint64_t));
	if (!off)
		return false;
	if (*dir_off) {
		memcpy(pm_at(&sh->arena, off), pm_at(&sh->arena, *dir_off), used * sizeof(uint64_t));
		pm_blob_free(&sh->arena, *dir_off, *dir_cap * (uint32_t)sizeof(uint64_t));
	}
	*dir_off = off;
	*dir_cap = cap;
	return true;
}

/* Append a zeroed chunk of `bytes` to a chunk directory; false if out of memory. */
static bool add_chunk(struct pm_shard *sh, uint64_t *dir_off, uint32_t *dir_cap, uint32_t *n,
		      uint32_t bytes)
{
	if (*n == *dir_cap && !grow_dir(sh, dir_off, dir_cap, *n))
		return false;
	uint64_t chunk = pm_blob_alloc(&sh->arena, bytes);
	if (!chunk)
		return false;
	memset(pm_at(&sh->arena, chunk), 0, bytes);
	((uint64_t *)pm_at(&sh->arena, *dir_off))[(*n)++] = chunk;
	return true;
}

static void free_chunks(struct pm_shard *sh, uint64_t *dir_off, uint32_t *dir_cap, uint32_t *n,
			uint32_t bytes)
{
	const uint64_t *dir = *dir_off ? pm_at(&sh->arena, *dir_off) : NULL;
	for (uint32_t i = 0; i < *n; i++)
		pm_blob_free(&sh->arena, dir[i], bytes);
	if (*dir_off)
		pm_blob_free(&sh->arena, *dir_off, *dir_cap * (uint32_t)sizeof(uint64_t));
	*dir_off = 0;
	*dir_cap = 0;
	*n = 0;
}

/* Visited marks are per shard (one search at a time) and cover every id. */
static bool visited_reserve(struct pm_shard *sh, uint32_t ids)
{
	while ((uint64_t)sh->visit_chunks * PM_HNSW_CHUNK_NODES < ids)
		if (!add_chunk(sh, &sh->visit_dir_off, &sh->visit_dir_cap, &sh->visit_chunks,
			       PM_HNSW_CHUNK_NODES * (uint32_t)sizeof(uint16_t)))
			return false;
	return true;
}

/* Reserve an id (and visited room for it) without taking it. */
static uint32_t node_peek(struct pm_shard *sh, struct pm_hnsw *h)
{
	if (h->free_head != PM_HNSW_NODE_NONE)
		return h->free_head;
	if (h->high == ID_MASK)
		return PM_HNSW_NODE_NONE;
	if (h->high >= h->nchunks * PM_HNSW_CHUNK_NODES &&
	    !add_chunk(sh, &h->dir_off, &h->dir_cap, &h->nchunks,
		       PM_HNSW_CHUNK_NODES * (uint32_t)sizeof(struct pm_hnsw_node)))
		return PM_HNSW_NODE_NONE;
	if (!visited_reserve(sh, h->high + 1))
		return PM_HNSW_NODE_NONE;
	return h->high;
}

static void node_take(struct pm_shard *sh, struct pm_hnsw *h, uint32_t id)
{
	if (id == h->free_head)
		h->free_head = node_at(sh, h, id)->next_free;
	else
		h->high++;
}

static void node_release(struct pm_shard *sh, struct pm_hnsw *h, uint32_t id)
{
	struct pm_hnsw_node *n = node_at(sh, h, id);
	n->unit = 0;
	n->next_free = h->free_head;
	h->free_head = id;
}

/* ---------------------------------------------------------------- links */

uint32_t pm_hnsw_links0_bytes(uint16_t m0)
{
	return (uint32_t)sizeof(uint32_t) * m0;
}

static inline uint32_t upper_bytes(const struct pm_hnsw *h, unsigned level)
{
	return level * (uint32_t)sizeof(uint32_t) * (1u + h->m);
}

/* Class bytes a node's blobs hold: its vector blob and its upper links. */
static uint64_t node_footprint(const struct pm_hnsw *h, const struct pm_vec_header *hdr,
			       unsigned level)
{
	uint64_t bytes = pm_blob_footprint(hdr->blob_bytes);
	return bytes + (hdr->upper_off ? pm_blob_footprint(upper_bytes(h, level)) : 0);
}

uint64_t pm_hnsw_node_footprint(const struct pm_shard *sh, const struct pm_collection *c,
				const struct pm_vec_header *hdr)
{
	return node_footprint(&c->hnsw, hdr, node_at(sh, &c->hnsw, hdr->node)->level);
}

/* A node's list at one level: its count and its ids. Level 0 keeps the count
 * in the vector header and the ids right after the payload (so a 784-d node is
 * 64 + 3136 + 128 = 3328 bytes, exactly a size class); upper levels are
 * [count, ids...] records in the node's upper blob. */
struct lst {
	uint32_t *n;
	uint32_t *id;
};

static inline struct lst links_of(const struct pm_shard *sh, const struct pm_collection *c,
				  struct pm_vec_header *hdr, unsigned lev)
{
	if (lev == 0)
		return (struct lst){ &hdr->links0,
				     (uint32_t *)((uint8_t *)(hdr + 1) + hdr->payload_len) };
	uint32_t *up = (uint32_t *)pm_at(&sh->arena, hdr->upper_off) +
		       (size_t)(lev - 1) * (1u + c->hnsw.m);
	return (struct lst){ up, up + 1 };
}

static inline struct lst links_at(const struct pm_shard *sh, const struct pm_collection *c,
				  uint32_t id, unsigned lev)
{
	return links_of(sh, c, node_hdr(sh, &c->hnsw, id), lev);
}

static inline unsigned max_links(const struct pm_hnsw *h, unsigned lev)
{
	return lev ? h->m : h->m0;
}

static inline bool is_tomb(const struct pm_shard *sh, const struct pm_hnsw *h, uint32_t id)
{
	return node_at(sh, h, id)->flags & PM_HNSW_TOMBSTONE;
}

static inline void indeg_add(const struct pm_shard *sh, const struct pm_hnsw *h, uint32_t id,
			     int delta)
{
	struct pm_hnsw_node *n = node_at(sh, h, id);
	if (n->indeg != INDEG_SATURATED)
		n->indeg = (uint16_t)(n->indeg + delta);
}

/* ---------------------------------------------------------------- distances */

struct query {
	const float *v;
	float norm;
	struct pm_qref code; /* non-f32 collections: the query as codes (quant.h) */
};

/* The one place the graph computes a distance. Element types (quant.h): a
 * collection of another type than f32 measures between codes. f32:
 * pm_knn_distance, inlined (the same kernel and the same formula, so the same
 * bits): the search loop calls it once per neighbour scored, and out of line
 * its metric switch and call cost about as much as a 100-float kernel. */
static inline float dist_hdr(const struct pm_shard *sh, const struct pm_collection *c,
			     const struct query *q, const struct pm_vec_header *hdr)
{
	if (c->params.dtype != PM_DTYPE_F32)
		return pm_quant_distance(sh->qkern, c->params.dtype, c->params.metric, c->params.dim,
					 &q->code,
					 &(struct pm_qref){ pm_vec_payload(hdr), hdr->norm, hdr->qscale });
	const float *v = pm_vec_data(hdr);
	switch (c->params.metric) {
	case PM_METRIC_IP:
		return 1.0f - sh->kern->dot(q->v, v, c->params.dim);
	case PM_METRIC_COSINE:
		return 1.0f - sh->kern->dot(q->v, v, c->params.dim) / (q->norm * hdr->norm);
	default:
		return sh->kern->l2sq(q->v, v, c->params.dim);
	}
}

static inline struct query node_query(const struct pm_shard *sh, const struct pm_collection *c,
				      uint32_t id)
{
	const struct pm_vec_header *hdr = node_hdr(sh, &c->hnsw, id);
	return (struct query){ pm_vec_data(hdr), hdr->norm,
			       { pm_vec_payload(hdr), hdr->norm, hdr->qscale } };
}

/* ---------------------------------------------------------------- visited marks */

static void visited_begin(struct pm_shard *sh)
{
	if (++sh->visit_epoch != 0)
		return;
	const uint64_t *dir = pm_at(&sh->arena, sh->visit_dir_off);
	for (uint32_t i = 0; i < sh->visit_chunks; i++)
		memset(pm_at(&sh->arena, dir[i]), 0, PM_HNSW_CHUNK_NODES * sizeof(uint16_t));
	sh->visit_epoch = 1;
}

static inline uint16_t *visit_mark(const struct pm_shard *sh, uint32_t id)
{
	const uint64_t *dir = pm_at(&sh->arena, sh->visit_dir_off);
	uint16_t *chunk = pm_at(&sh->arena, dir[id / PM_HNSW_CHUNK_NODES]);
	return &chunk[id % PM_HNSW_CHUNK_NODES];
}

/* Mark id visited; true if it already was. No branch: the search loop calls
 * it on every link, and a mispredicted branch there throws away the loads in
 * flight for the links after it. */
static inline bool visit(struct pm_shard *sh, uint32_t id)
{
	uint16_t *m = visit_mark(sh, id);
	bool seen = *m == sh->visit_epoch;
	*m = sh->visit_epoch;
	return seen;
}

/* ---------------------------------------------------------------- beam search */

/* The beam: the best `cap` nodes seen (the results) and, among them, those not
 * yet expanded (the candidates). While a level is searched the results are a
 * max-heap (the worst on top, e[0]) and the candidates a min-heap in their own
 * array, so a node scored costs O(log ef) however wide the beam: the sorted
 * array this replaced cost O(ef) per insert (a memmove) and rescanned the
 * expanded prefix after each insert ahead of it, which at ef 320..640 (what a
 * hard data set needs for recall 0.95..0.98) cost more than the distances.
 * Candidates are dropped lazily: one pushed out of the results stays in the
 * candidate heap until popped or pruned, and is not expanded (it is no better
 * than every result by then, and the search stops at the first candidate
 * worse than the worst result; one that ties it is expanded, harmlessly). When beam_run returns, e[0..n) is sorted
 * ascending by (distance, id). */
struct beam {
	struct pm_hnsw_cand *e; /* results */
	uint32_t n, cap;
	struct pm_hnsw_cand *c; /* candidates: PM_HNSW_BEAM_CANDS_PER_EF x cap room */
	uint32_t nc, ccap;
	/* work (knn.h): bytes read by the distances computed, and the most a
	 * search may read (UINT64_MAX while inserting); stopped once a distance
	 * would have gone past it */
	uint64_t work, work_max, cost;
	bool stopped;
};

/* Count one distance computation; false (and stopped) past work_max. */
static inline bool work_take(struct beam *b)
{
	if (unlikely(b->work_max - b->work < b->cost)) {
		b->stopped = true;
		return false;
	}
	b->work += b->cost;
	return true;
}

/* (distance, id) order: a total order, so a search is a function of its input. */
static inline bool cand_less(struct pm_hnsw_cand x, struct pm_hnsw_cand y)
{
	return x.d < y.d || (x.d == y.d && x.id < y.id);
}

/* Binary heaps over pm_hnsw_cand: `max` picks a max-heap, else a min-heap. */
static inline bool heap_above(struct pm_hnsw_cand x, struct pm_hnsw_cand y, bool max)
{
	return max ? cand_less(y, x) : cand_less(x, y);
}

static inline void heap_up(struct pm_hnsw_cand *h, uint32_t i, bool max)
{
	struct pm_hnsw_cand x = h[i];
	while (i > 0 && heap_above(x, h[(i - 1) / 2], max)) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = x;
}

static inline void heap_down(struct pm_hnsw_cand *h, uint32_t n, uint32_t i, bool max)
{
	struct pm_hnsw_cand x = h[i];
	for (;;) {
		uint32_t k = 2 * i + 1;
		if (k >= n)
			break;
		if (k + 1 < n && heap_above(h[k + 1], h[k], max))
			k++;
		if (!heap_above(h[k], x, max))
			break;
		h[i] = h[k];
		i = k;
	}
	h[i] = x;
}

/* Keep only the candidates that can still be expanded (not worse than the
 * worst result); used when the candidate array is full. */
static void cands_prune(struct beam *b, bool ties_too)
{
	const struct pm_hnsw_cand worst = b->e[0];
	uint32_t k = 0;
	for (uint32_t i = 0; i < b->nc; i++)
		if (ties_too ? b->c[i].d < worst.d : !(b->c[i].d > worst.d))
			b->c[k++] = b->c[i];
	b->nc = k;
	for (uint32_t i = k / 2; i-- > 0;)
		heap_down(b->c, k, i, false);
}

static inline void cands_push(struct beam *b, struct pm_hnsw_cand x)
{
	if (unlikely(b->nc == b->ccap))
		cands_prune(b, false);
	if (unlikely(b->nc == b->ccap)) /* only ties with the worst result left */
		cands_prune(b, true);
	if (unlikely(b->nc == b->ccap))
		return;
	b->c[b->nc] = x;
	heap_up(b->c, b->nc++, false);
}

/* Offer (d, id): kept if it is among the cap best; then it is a candidate too. */
static inline void beam_insert(struct beam *b, float d, uint32_t id)
{
	struct pm_hnsw_cand x = { d, id };
	if (b->n < b->cap) {
		b->e[b->n] = x;
		heap_up(b->e, b->n++, true);
	} else if (cand_less(x, b->e[0])) {
		b->e[0] = x;
		heap_down(b->e, b->n, 0, true);
	} else {
		return;
	}
	cands_push(b, x);
}

/* The results, a max-heap, sorted ascending in place. */
static void beam_sort(struct beam *b)
{
	for (uint32_t i = b->n; i-- > 1;) {
		struct pm_hnsw_cand top = b->e[0];
		b->e[0] = b->e[i];
		b->e[i] = top;
		heap_down(b->e, i, 0, true);
	}
}

/* Search the next level down from the sorted results of the last one: all of
 * them are candidates again (an ascending array is a min-heap, a descending
 * one a max-heap). */
static void beam_restart(struct beam *b)
{
	memcpy(b->c, b->e, b->n * sizeof(b->e[0]));
	b->nc = b->n;
	for (uint32_t i = 0, j = b->n; i + 1 < j; i++, j--) {
		struct pm_hnsw_cand t = b->e[i];
		b->e[i] = b->e[j - 1];
		b->e[j - 1] = t;
	}
}

/* Prefetch lines [from, to) of the blob at unit (to at most PREFETCH_BLOB_LINES). */
static inline void prefetch_blob(const struct pm_shard *sh, uint32_t unit, uint32_t from,
				 uint32_t to)
{
	const uint8_t *p = (const uint8_t *)unit_hdr(sh, unit);
	for (uint32_t l = from; l < to; l++)
		__builtin_prefetch(p + (size_t)l * CACHE_LINE_BYTES);
}

/* Score the unvisited neighbours of one node into the beam, in three passes
 * so that the cache misses of different links overlap: (1) prefetch every
 * link's visited mark and node-table entry (at 300,000 nodes neither table
 * fits in L2); (2) keep the unvisited links, without branches, and prefetch
 * the first lines of each one's blob (the header holds a cosine vector's
 * norm); (3) compute the distances, prefetching the rest of the blob a few
 * neighbours ahead. */
static void expand(struct pm_shard *sh, const struct pm_collection *c, const struct query *q,
		   struct lst list, struct beam *b)
{
	const struct pm_hnsw *h = &c->hnsw;
	const uint32_t cnt = *list.n;
	const uint32_t lines = PM_MIN(PREFETCH_BLOB_LINES,
				      (PM_VEC_HEADER_BYTES + c->params.dim * (uint32_t)sizeof(float) +
				       CACHE_LINE_BYTES - 1) / CACHE_LINE_BYTES);
	uint32_t units[PM_HNSW_M_MAX * 2], ids[PM_HNSW_M_MAX * 2], n = 0;
	for (uint32_t i = 0; i < cnt; i++) {
		__builtin_prefetch(visit_mark(sh, list.id[i]));
		__builtin_prefetch(node_at(sh, h, list.id[i]));
	}
	for (uint32_t i = 0; i < cnt; i++) {
		uint32_t id = list.id[i];
		bool seen = visit(sh, id);
		units[n] = node_at(sh, h, id)->unit;
		ids[n] = id;
		n += !seen;
	}
	for (uint32_t i = 0; i < n; i++)
		prefetch_blob(sh, units[i], 0, 2);
	for (uint32_t i = 0; i < n && work_take(b); i++) {
		if (i + PREFETCH_AHEAD < n)
			prefetch_blob(sh, units[i + PREFETCH_AHEAD], 2, lines);
		beam_insert(b, dist_hdr(sh, c, q, unit_hdr(sh, units[i])), ids[i]);
	}
}

/* Beam search at one level from the candidates already in b: expand the
 * nearest candidate until none is nearer than the worst result (or the work
 * bound stops it); then the results are sorted. */
/* The next candidate to expand into *x: false when there is none left that
 * can still improve the results (none, or the best is worse than the worst
 * result of a full beam). */
static inline bool cand_next(struct beam *b, struct pm_hnsw_cand *x)
{
	if (b->nc == 0 || b->stopped)
		return false;
	*x = b->c[0];
	b->c[0] = b->c[--b->nc];
	heap_down(b->c, b->nc, 0, false);
	return !(b->n == b->cap && x->d > b->e[0].d);
}

static void beam_run(struct pm_shard *sh, const struct pm_collection *c, const struct query *q,
		     unsigned lev, struct beam *b)
{
	struct pm_hnsw_cand x;
	while (cand_next(b, &x))
		expand(sh, c, q, links_at(sh, c, x.id, lev), b);
	beam_sort(b);
}

/* Greedy descent (beam of one) from *ep at one level; its work counts in b. */
static void greedy(struct pm_shard *sh, const struct pm_collection *c, const struct query *q,
		   unsigned lev, uint32_t *ep, float *dep, struct beam *b)
{
	for (bool moved = true; moved;) {
		moved = false;
		struct lst list = links_at(sh, c, *ep, lev);
		for (uint32_t i = 0; i < *list.n && work_take(b); i++) {
			float d = dist_hdr(sh, c, q, node_hdr(sh, &c->hnsw, list.id[i]));
			if (d < *dep) {
				*dep = d;
				*ep = list.id[i];
				moved = true;
			}
		}
	}
}

/* From the entry point down to level `to` + 1 greedily, then a beam of width
 * ef at level `to`; the beam is left in sh->beam. Stops (b->stopped) once its
 * distances would read more than work_max bytes. */
static void descend(struct pm_shard *sh, const struct pm_collection *c, const struct query *q,
		    unsigned to, uint32_t ef, uint64_t work_max, struct beam *b)
{
	const struct pm_hnsw *h = &c->hnsw;
	uint32_t ep = h->entry;
	*b = (struct beam){ .e = sh->beam, .cap = ef, .c = sh->beam + ef,
			    .ccap = PM_HNSW_BEAM_CANDS_PER_EF * ef, .work_max = work_max,
			    .cost = pm_knn_distance_bytes(c->params.dim) };
	if (!work_take(b))
		return;
	float dep = dist_hdr(sh, c, q, node_hdr(sh, h, ep));
	for (int lev = h->max_level; lev > (int)to && !b->stopped; lev--)
		greedy(sh, c, q, (unsigned)lev, &ep, &dep, b);
	if (b->stopped)
		return;
	visited_begin(sh);
	visit(sh, ep);
	beam_insert(b, dep, ep);
}

/* ---------------------------------------------------------------- selection */

/* The paper's heuristic (algorithm 4): walk candidates by distance to the base
 * node and keep one unless it is nearer to an already kept one than to the base.
 * Protected candidates (whose only in-link this list holds) are kept first.
 * cand is sorted ascending; writes up to max ids to out; returns how many. */
static uint32_t select_heuristic(struct pm_shard *sh, const struct pm_collection *c,
				 const struct pm_hnsw_cand *cand, uint32_t n, const bool *protect,
				 uint32_t max, uint32_t *out, bool fill)
{
	uint32_t kept = 0;
	for (uint32_t i = 0; protect && i < n && kept < max; i++)
		if (protect[i])
			out[kept++] = cand[i].id;
	/* Inner product is not a metric (a vector need not be its own nearest), and
	 * the pruning rule strands small-norm vectors: keep the nearest instead, as
	 * ip-NSW does. */
	const bool diverse = c->params.metric != PM_METRIC_IP;
	for (uint32_t i = 0; i < n && kept < max; i++) {
		if (protect && protect[i])
			continue;
		if (!diverse) {
			out[kept++] = cand[i].id;
			continue;
		}
		struct query qi = node_query(sh, c, cand[i].id);
		bool good = true;
		for (uint32_t j = 0; j < kept && good; j++)
			good = dist_hdr(sh, c, &qi, node_hdr(sh, &c->hnsw, out[j])) >= cand[i].d;
		if (good)
			out[kept++] = cand[i].id;
	}
	/* fill: top the list up with the nearest of the pruned candidates (the
	 * paper's keepPrunedConnections), used when repairing after deletes */
	for (uint32_t i = 0; fill && i < n && kept < max; i++) {
		bool in = false;
		for (uint32_t j = 0; j < kept && !in; j++)
			in = out[j] == cand[i].id;
		if (!in)
			out[kept++] = cand[i].id;
	}
	return kept;
}

static int cand_cmp(const void *a, const void *b)
{
	const struct pm_hnsw_cand *x = a, *y = b;
	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Replace the list of `base` at `lev` with a selection from cand[0..n) (any
 * order, no tombstones, no base), keeping in-degree counts exact. */
static void rewrite_list(struct pm_shard *sh, struct pm_collection *c, uint32_t base, unsigned lev,
			 struct pm_hnsw_cand *cand, uint32_t n, uint32_t max, bool fill)
{
	struct pm_hnsw *h = &c->hnsw;
	struct lst list = links_at(sh, c, base, lev);
	bool protect[PM_HNSW_CANDIDATES_MAX];
	uint32_t sel[PM_HNSW_M_MAX * 2];
	qsort(cand, n, sizeof(cand[0]), cand_cmp);
	for (uint32_t i = 0; i < n; i++) {
		bool linked = false;
		for (uint32_t j = 0; j < *list.n && !linked; j++)
			linked = list.id[j] == cand[i].id;
		protect[i] = lev == 0 && node_at(sh, h, cand[i].id)->indeg == (linked ? 1 : 0);
	}
	uint32_t k = select_heuristic(sh, c, cand, n, lev == 0 ? protect : NULL, max, sel, fill);
	if (lev == 0) {
		for (uint32_t j = 0; j < *list.n; j++)
			indeg_add(sh, h, list.id[j], -1);
		for (uint32_t j = 0; j < k; j++)
			indeg_add(sh, h, sel[j], +1);
	}
	*list.n = k;
	memcpy(list.id, sel, k * sizeof(uint32_t));
}

/* Add the link base -> id at lev, pruning base's list if it is full. */
static void add_link(struct pm_shard *sh, struct pm_collection *c, uint32_t base, uint32_t id,
		     unsigned lev)
{
	struct pm_hnsw *h = &c->hnsw;
	struct lst list = links_at(sh, c, base, lev);
	for (uint32_t j = 0; j < *list.n; j++)
		if (list.id[j] == id)
			return; /* an update may re-find a neighbour that links to it */
	if (*list.n < max_links(h, lev)) {
		list.id[(*list.n)++] = id;
		if (lev == 0)
			indeg_add(sh, h, id, +1);
		return;
	}
	struct query qb = node_query(sh, c, base);
	struct pm_hnsw_cand *cand = sh->cands;
	uint32_t n = 0;
	for (uint32_t j = 0; j < *list.n; j++)
		if (!is_tomb(sh, h, list.id[j]))
			cand[n++] = (struct pm_hnsw_cand){
				dist_hdr(sh, c, &qb, node_hdr(sh, h, list.id[j])), list.id[j] };
	cand[n++] = (struct pm_hnsw_cand){ dist_hdr(sh, c, &qb, node_hdr(sh, h, id)), id };
	rewrite_list(sh, c, base, lev, cand, n, max_links(h, lev), false);
}

/* ---------------------------------------------------------------- insert / update */

static unsigned draw_level(struct pm_hnsw *h)
{
	uint64_t z = (h->rng += LEVEL_SEED);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	double u = ((double)(z >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
	double l = -log(u) * h->level_mult;
	return l >= PM_HNSW_LEVEL_MAX ? PM_HNSW_LEVEL_MAX : (unsigned)l;
}

void pm_hnsw_init(struct pm_hnsw *h, const struct pm_collection_params *p)
{
	memset(h, 0, sizeof(*h));
	h->m = p->hnsw_m;
	h->m0 = pm_hnsw_m0_of(p->hnsw_m);
	h->ef_construction = p->ef_construction;
	h->ef_search = p->ef_search;
	h->entry = PM_HNSW_NODE_NONE;
	h->max_level = -1;
	h->rng = LEVEL_SEED ^ p->dim;
	h->level_mult = 1.0 / log((double)p->hnsw_m);
	h->free_head = PM_HNSW_NODE_NONE;
	h->tomb_head = PM_HNSW_NODE_NONE;
	h->doomed_head = PM_HNSW_NODE_NONE;
}

/* The state starts at LEVEL_SEED ^ dim and advances by LEVEL_SEED (odd, so
 * invertible mod 2^64) per draw; a failed insert puts its draw back. */
uint64_t pm_hnsw_level_draws(uint64_t rng, uint32_t dim)
{
	uint64_t inv = LEVEL_SEED; /* Newton: right to 3 bits, doubling each step */
	for (int i = 0; i < 5; i++)
		inv *= 2 - LEVEL_SEED * inv;
	return (rng - (LEVEL_SEED ^ dim)) * inv;
}

enum connect_mode {
	CONNECT_NEW,       /* a new node: write its (empty) lists */
	CONNECT_MOVED,     /* its vector changed: rebuild its lists from old + found */
	CONNECT_STRANDED,  /* it lost every in-link: only make found nodes link to it */
};

/* Add the node's current live links at lev to cand[0..n) (no duplicates). */
static uint32_t add_old_links(struct pm_shard *sh, struct pm_collection *c, uint32_t id,
			      unsigned lev, const struct query *q, uint32_t n)
{
	struct lst list = links_at(sh, c, id, lev);
	for (uint32_t j = 0; j < *list.n && n < PM_HNSW_CANDIDATES_MAX; j++) {
		uint32_t x = list.id[j];
		bool dup = is_tomb(sh, &c->hnsw, x);
		for (uint32_t i = 0; i < n && !dup; i++)
			dup = sh->cands[i].id == x;
		if (!dup)
			sh->cands[n++] = (struct pm_hnsw_cand){
				dist_hdr(sh, c, q, node_hdr(sh, &c->hnsw, x)), x };
	}
	return n;
}

/* Search for node id's neighbours at levels min(top, max_level) .. 0 and link
 * it in, as the mode says. */
static void connect(struct pm_shard *sh, struct pm_collection *c, uint32_t id, unsigned top,
		    enum connect_mode mode)
{
	struct pm_hnsw *h = &c->hnsw;
	struct query q = node_query(sh, c, id);
	struct beam b;
	unsigned from = PM_MIN(top, (unsigned)h->max_level);
	descend(sh, c, &q, from, h->ef_construction, UINT64_MAX, &b);
	for (int lev = (int)from; lev >= 0; lev--) {
		if (lev < (int)from) { /* continue from the previous level's beam */
			visited_begin(sh);
			for (uint32_t i = 0; i < b.n; i++)
				visit(sh, b.e[i].id);
			beam_restart(&b);
		}
		beam_run(sh, c, &q, (unsigned)lev, &b);
		uint32_t n = 0; /* the beam is sorted: keep its nearest candidates */
		for (uint32_t i = 0; i < b.n && n < PM_HNSW_CANDIDATES_MAX; i++)
			if (b.e[i].id != id && !is_tomb(sh, h, b.e[i].id))
				sh->cands[n++] = b.e[i];
		uint32_t sel[PM_HNSW_M_MAX * 2], k;
		if (mode == CONNECT_MOVED) {
			n = add_old_links(sh, c, id, (unsigned)lev, &q, n);
			rewrite_list(sh, c, id, (unsigned)lev, sh->cands, n, h->m, false);
			struct lst list = links_at(sh, c, id, (unsigned)lev);
			k = *list.n;
			memcpy(sel, list.id, k * sizeof(uint32_t));
		} else {
			k = select_heuristic(sh, c, sh->cands, n, NULL, h->m, sel, false);
		}
		if (mode == CONNECT_NEW) {
			struct lst list = links_at(sh, c, id, (unsigned)lev);
			*list.n = k;
			memcpy(list.id, sel, k * sizeof(uint32_t));
			for (uint32_t j = 0; j < k && lev == 0; j++)
				indeg_add(sh, h, sel[j], +1);
		}
		for (uint32_t j = 0; j < k; j++)
			add_link(sh, c, sel[j], id, (unsigned)lev);
	}
}

enum pm_status pm_hnsw_insert(struct pm_shard *sh, struct pm_collection *c, uint64_t off)
{
	struct pm_hnsw *h = &c->hnsw;
	struct pm_vec_header *hdr = pm_at(&sh->arena, off);
	PM_ASSERT(off % PM_HNSW_UNIT_BYTES == 0);
	if (off >= PM_HNSW_ARENA_BYTES_MAX) /* the node table cannot address it */
		return PM_E_NOMEM;
	uint64_t rng = h->rng;
	unsigned level = draw_level(h);
	uint64_t up = 0;
	if (level && !(up = pm_blob_alloc(&sh->arena, upper_bytes(h, level))))
		goto nomem;
	uint32_t id = node_peek(sh, h);
	if (id == PM_HNSW_NODE_NONE) {
		if (up)
			pm_blob_free(&sh->arena, up, upper_bytes(h, level));
		goto nomem;
	}
	node_take(sh, h, id);
	*node_at(sh, h, id) = (struct pm_hnsw_node){ .unit = off_unit(off), .level = (uint8_t)level };
	hdr->node = id;
	hdr->upper_off = up;
	h->upper_bytes += up ? upper_bytes(h, level) : 0;
	for (unsigned lev = 0; lev <= level; lev++)
		*links_of(sh, c, hdr, lev).n = 0;
	h->live++;
	h->inserts_since_walk++;
	if (h->entry == PM_HNSW_NODE_NONE) {
		h->entry = id;
		h->max_level = (int32_t)level;
		return PM_OK;
	}
	connect(sh, c, id, level, CONNECT_NEW);
	if ((int32_t)level > h->max_level) {
		h->entry = id;
		h->max_level = (int32_t)level;
	}
	return PM_OK;
nomem:
	h->rng = rng; /* the same insert retried draws the same level */
	return PM_E_NOMEM;
}

/* Class bytes a chunk directory of cap entries takes when it grows. */
static uint64_t dir_growth(uint32_t cap, uint32_t used)
{
	if (used < cap)
		return 0;
	return pm_blob_footprint((cap ? cap * 2 : DIR_CAP_INITIAL) * (uint32_t)sizeof(uint64_t));
}

uint64_t pm_hnsw_insert_bytes(const struct pm_shard *sh, const struct pm_collection *c)
{
	const struct pm_hnsw *h = &c->hnsw;
	struct pm_hnsw peek = *h; /* the level the next insert draws, without drawing it */
	unsigned level = draw_level(&peek);
	uint64_t bytes = level ? pm_blob_footprint(upper_bytes(h, level)) : 0;
	if (h->free_head != PM_HNSW_NODE_NONE)
		return bytes; /* a freed id: its table entry and visited mark exist */
	if (h->high >= h->nchunks * PM_HNSW_CHUNK_NODES)
		bytes += pm_blob_footprint(PM_HNSW_CHUNK_NODES * (uint32_t)sizeof(struct pm_hnsw_node)) +
			 dir_growth(h->dir_cap, h->nchunks);
	if ((uint64_t)sh->visit_chunks * PM_HNSW_CHUNK_NODES < (uint64_t)h->high + 1)
		bytes += pm_blob_footprint(PM_HNSW_CHUNK_NODES * (uint32_t)sizeof(uint16_t)) +
			 dir_growth(sh->visit_dir_cap, sh->visit_chunks);
	return bytes;
}

enum pm_status pm_hnsw_update(struct pm_shard *sh, struct pm_collection *c, uint64_t off)
{
	const struct pm_vec_header *hdr = pm_at(&sh->arena, off);
	struct pm_hnsw *h = &c->hnsw;
	if (h->live > 1)
		connect(sh, c, hdr->node, node_at(sh, h, hdr->node)->level, CONNECT_MOVED);
	return PM_OK;
}

/* ---------------------------------------------------------------- delete and sweep */

/* A live node of the highest level, or NONE: the new entry point. */
static uint32_t pick_entry(const struct pm_shard *sh, const struct pm_hnsw *h)
{
	uint32_t best = PM_HNSW_NODE_NONE;
	int best_level = -1;
	for (uint32_t id = 0; id < h->high && best_level < h->max_level; id++) {
		const struct pm_hnsw_node *n = node_at(sh, h, id);
		if (n->unit && !(n->flags & PM_HNSW_TOMBSTONE) && (int)n->level > best_level) {
			best = id;
			best_level = n->level;
		}
	}
	return best;
}

void pm_hnsw_remove(struct pm_shard *sh, struct pm_collection *c, uint64_t off)
{
	struct pm_hnsw *h = &c->hnsw;
	struct pm_vec_header *hdr = pm_at(&sh->arena, off);
	uint32_t id = hdr->node;
	struct pm_hnsw_node *n = node_at(sh, h, id);
	PM_ASSERT(n->unit == off_unit(off) && !(n->flags & PM_HNSW_TOMBSTONE));
	n->flags |= PM_HNSW_TOMBSTONE;
	sh->tomb_bytes += node_footprint(h, hdr, n->level);
	hdr->seed = h->tomb_head; /* the seed is gone; thread the tombstone list */
	h->tomb_head = id;
	h->live--;
	h->tombstones++;
	if (id == h->entry) {
		h->entry = pick_entry(sh, h);
		h->max_level = h->entry == PM_HNSW_NODE_NONE ? -1 : node_at(sh, h, h->entry)->level;
	}
}

/* Rebuild the list of live node id at lev without tombstones: candidates are its
 * live links and the live links of the tombstones it linked to. */
static void repair(struct pm_shard *sh, struct pm_collection *c, uint32_t id, unsigned lev)
{
	struct pm_hnsw *h = &c->hnsw;
	struct lst list = links_at(sh, c, id, lev);
	struct query q = node_query(sh, c, id);
	uint32_t n = 0;
	visited_begin(sh);
	visit(sh, id);
	for (uint32_t j = 0; j < *list.n && n < PM_HNSW_CANDIDATES_MAX; j++) {
		uint32_t x = list.id[j];
		const uint32_t *via = &x;
		uint32_t nvia = 1;
		if (is_tomb(sh, h, x)) {
			struct lst xl = links_at(sh, c, x, lev);
			via = xl.id;
			nvia = *xl.n;
		}
		for (uint32_t i = 0; i < nvia && n < PM_HNSW_CANDIDATES_MAX; i++) {
			uint32_t y = via[i];
			if (is_tomb(sh, h, y) || visit(sh, y))
				continue;
			sh->cands[n++] = (struct pm_hnsw_cand){ dist_hdr(sh, c, &q, node_hdr(sh, h, y)), y };
		}
	}
	rewrite_list(sh, c, id, lev, sh->cands, n, max_links(&c->hnsw, lev), true);
}

static bool links_tomb(const struct pm_shard *sh, const struct pm_hnsw *h, struct lst list)
{
	for (uint32_t j = 0; j < *list.n; j++)
		if (is_tomb(sh, h, list.id[j]))
			return true;
	return false;
}

/* Drop links to doomed nodes from a tombstone that is not itself doomed (it
 * still guides searches, but must not point at freed ids). */
static void strip_doomed(struct pm_shard *sh, struct pm_collection *c, uint32_t id, unsigned lev)
{
	struct pm_hnsw *h = &c->hnsw;
	struct lst list = links_at(sh, c, id, lev);
	uint32_t k = 0;
	for (uint32_t j = 0; j < *list.n; j++) {
		uint32_t x = list.id[j];
		if (node_at(sh, h, x)->flags & PM_HNSW_DOOMED) {
			if (lev == 0)
				indeg_add(sh, h, x, -1);
			continue;
		}
		list.id[k++] = x;
	}
	*list.n = k;
}

static void sweep_node(struct pm_shard *sh, struct pm_collection *c, uint32_t id)
{
	const struct pm_hnsw_node *n = node_at(sh, &c->hnsw, id);
	if (!n->unit || (n->flags & PM_HNSW_DOOMED))
		return;
	for (unsigned lev = 0; lev <= n->level; lev++) {
		if (n->flags & PM_HNSW_TOMBSTONE)
			strip_doomed(sh, c, id, lev);
		else if (links_tomb(sh, &c->hnsw, links_at(sh, c, id, lev)))
			repair(sh, c, id, lev);
	}
}

static void free_node(struct pm_shard *sh, struct pm_collection *c, uint32_t id)
{
	struct pm_hnsw *h = &c->hnsw;
	uint64_t off = unit_off(node_at(sh, h, id)->unit);
	struct pm_vec_header *hdr = pm_at(&sh->arena, off);
	unsigned level = node_at(sh, h, id)->level;
	PM_ASSERT(node_at(sh, h, id)->flags & PM_HNSW_TOMBSTONE);
	sh->tomb_bytes -= node_footprint(h, hdr, level);
	struct lst l0 = links_of(sh, c, hdr, 0);
	for (uint32_t j = 0; j < *l0.n; j++) {
		/* doomed targets go too: either freed already (unit 0, and the
		 * flags are then the free-list link) or about to be */
		const struct pm_hnsw_node *t = node_at(sh, h, l0.id[j]);
		if (t->unit && !(t->flags & PM_HNSW_DOOMED))
			indeg_add(sh, h, l0.id[j], -1);
	}
	if (hdr->upper_off) {
		pm_blob_free(&sh->arena, hdr->upper_off, upper_bytes(h, level));
		h->upper_bytes -= upper_bytes(h, level);
	}
	node_release(sh, h, id);
	pm_blob_free(&sh->arena, off, hdr->blob_bytes);
}

/* A chunked u32 array in the arena, for breadth-first walks. */
struct idlist {
	uint64_t dir_off;
	uint32_t dir_cap, nchunks, n;
};

static inline uint32_t *idlist_at(const struct pm_shard *sh, const struct idlist *l, uint32_t i)
{
	const uint64_t *dir = pm_at(&sh->arena, l->dir_off);
	return (uint32_t *)pm_at(&sh->arena, dir[i / PM_HNSW_CHUNK_NODES]) + i % PM_HNSW_CHUNK_NODES;
}

static bool idlist_push(struct pm_shard *sh, struct idlist *l, uint32_t id)
{
	if (l->n == l->nchunks * PM_HNSW_CHUNK_NODES &&
	    !add_chunk(sh, &l->dir_off, &l->dir_cap, &l->nchunks,
		       PM_HNSW_CHUNK_NODES * (uint32_t)sizeof(uint32_t)))
		return false;
	*idlist_at(sh, l, l->n++) = id;
	return true;
}

static inline bool visited_peek(const struct pm_shard *sh, uint32_t id)
{
	const uint64_t *dir = pm_at(&sh->arena, sh->visit_dir_off);
	const uint16_t *chunk = pm_at(&sh->arena, dir[id / PM_HNSW_CHUNK_NODES]);
	return chunk[id % PM_HNSW_CHUNK_NODES] == sh->visit_epoch;
}

/* Live nodes the entry point cannot reach at level 0 (an island whose in-links
 * all came through freed tombstones): walk the graph, list them, then link each
 * in as if it were inserted again (found neighbours link to it). If the arena
 * cannot hold the walk's queue the repair is skipped; the next sweep retries. */
static void reconnect_unreachable(struct pm_shard *sh, struct pm_collection *c)
{
	struct pm_hnsw *h = &c->hnsw;
	struct idlist q = { 0 };
	if (h->entry == PM_HNSW_NODE_NONE)
		return;
	visited_begin(sh);
	visit(sh, h->entry);
	bool ok = idlist_push(sh, &q, h->entry);
	for (uint32_t head = 0; ok && head < q.n; head++) {
		struct lst list = links_at(sh, c, *idlist_at(sh, &q, head), 0);
		for (uint32_t j = 0; ok && j < *list.n; j++)
			if (!visit(sh, list.id[j]))
				ok = idlist_push(sh, &q, list.id[j]);
	}
	q.n = 0; /* the walk is done: reuse the list for the stranded ids */
	for (uint32_t id = 0; ok && id < h->high; id++) {
		const struct pm_hnsw_node *n = node_at(sh, h, id);
		if (n->unit && !(n->flags & PM_HNSW_TOMBSTONE) && !visited_peek(sh, id))
			ok = idlist_push(sh, &q, id);
	}
	for (uint32_t i = 0; ok && i < q.n; i++) {
		uint32_t id = *idlist_at(sh, &q, i);
		connect(sh, c, id, node_at(sh, h, id)->level, CONNECT_STRANDED);
	}
	h->reconnected += ok ? q.n : 0;
	h->inserts_since_walk = 0;
	free_chunks(sh, &q.dir_off, &q.dir_cap, &q.nchunks,
		    PM_HNSW_CHUNK_NODES * (uint32_t)sizeof(uint32_t));
}

/* Free every doomed node; their in-links are gone (the sweep saw every node). */
static void sweep_finish(struct pm_shard *sh, struct pm_collection *c)
{
	struct pm_hnsw *h = &c->hnsw;
	uint32_t id = h->doomed_head;
	while (id != PM_HNSW_NODE_NONE) {
		uint32_t next = node_hdr(sh, h, id)->seed;
		free_node(sh, c, id);
		h->tombstones--;
		id = next;
	}
	h->doomed_head = PM_HNSW_NODE_NONE;
	h->sweeping = false;
	reconnect_unreachable(sh, c);
}

static void sweep_start(struct pm_shard *sh, struct pm_hnsw *h)
{
	for (uint32_t id = h->tomb_head; id != PM_HNSW_NODE_NONE; id = node_hdr(sh, h, id)->seed)
		node_at(sh, h, id)->flags |= PM_HNSW_DOOMED;
	h->doomed_head = h->tomb_head;
	h->tomb_head = PM_HNSW_NODE_NONE;
	h->sweep_cursor = 0;
	h->sweeping = true;
}

bool pm_hnsw_maintain(struct pm_shard *sh, struct pm_collection *c, uint32_t nodes)
{
	struct pm_hnsw *h = &c->hnsw;
	if (!h->sweeping) {
		if (h->tomb_head == PM_HNSW_NODE_NONE) {
			if (pm_hnsw_walk_due(h))
				reconnect_unreachable(sh, c);
			return false;
		}
		sweep_start(sh, h);
	}
	if (nodes == 0)
		nodes = PM_HNSW_MAINTAIN_NODES_DEFAULT;
	for (uint32_t i = 0; i < nodes && h->sweep_cursor < h->high; i++)
		sweep_node(sh, c, h->sweep_cursor++);
	if (h->sweep_cursor >= h->high)
		sweep_finish(sh, c);
	return h->sweeping || h->tomb_head != PM_HNSW_NODE_NONE;
}

bool pm_hnsw_destroy_slice(struct pm_shard *sh, struct pm_collection *c, uint32_t *budget)
{
	struct pm_hnsw *h = &c->hnsw;
	for (; *budget && h->destroy_next < h->high; h->destroy_next++, (*budget)--) {
		struct pm_hnsw_node *n = node_at(sh, h, h->destroy_next);
		if (!n->unit)
			continue;
		struct pm_vec_header *hdr = unit_hdr(sh, n->unit);
		if (n->flags & PM_HNSW_TOMBSTONE)
			sh->tomb_bytes -= node_footprint(h, hdr, n->level);
		if (hdr->upper_off)
			pm_blob_free(&sh->arena, hdr->upper_off, upper_bytes(h, n->level));
		pm_blob_free(&sh->arena, unit_off(n->unit), hdr->blob_bytes);
		n->unit = 0;
	}
	if (h->destroy_next < h->high)
		return false;
	free_chunks(sh, &h->dir_off, &h->dir_cap, &h->nchunks,
		    PM_HNSW_CHUNK_NODES * (uint32_t)sizeof(struct pm_hnsw_node));
	memset(h, 0, sizeof(*h));
	h->entry = PM_HNSW_NODE_NONE;
	return true;
}

void pm_hnsw_destroy(struct pm_shard *sh, struct pm_collection *c)
{
	PM_ASSERT(c->hnsw.live == 0); /* its vectors were deleted first */
	uint32_t all = UINT32_MAX;
	(void)pm_hnsw_destroy_slice(sh, c, &all);
}

/* ---------------------------------------------------------------- save (snapshots) */

const struct pm_hnsw_node *pm_hnsw_node_get(const struct pm_shard *sh,
					    const struct pm_collection *c, uint32_t id)
{
	if (id >= c->hnsw.high)
		return NULL;
	const struct pm_hnsw_node *n = node_at(sh, &c->hnsw, id);
	return n->unit ? n : NULL;
}

size_t pm_hnsw_links_save(const struct pm_shard *sh, const struct pm_collection *c, uint32_t id,
			  uint8_t *out, size_t cap)
{
	const struct pm_hnsw_node *n = node_at(sh, &c->hnsw, id);
	struct pm_vec_header *hdr = unit_hdr(sh, n->unit);
	size_t need = 0;
	for (unsigned lev = 0; lev <= n->level; lev++)
		need += U32_BYTES * (1 + (size_t)*links_of(sh, c, hdr, lev).n);
	if (need > cap)
		return 0;
	for (unsigned lev = 0; lev <= n->level; lev++) {
		struct lst list = links_of(sh, c, hdr, lev);
		put_u32(out, *list.n);
		out += U32_BYTES;
		for (uint32_t j = 0; j < *list.n; j++, out += U32_BYTES)
			put_u32(out, list.id[j]);
	}
	return need;
}

/* ---------------------------------------------------------------- restore */

enum pm_status pm_hnsw_restore_begin(struct pm_shard *sh, struct pm_collection *c, uint32_t high)
{
	struct pm_hnsw *h = &c->hnsw;
	if (h->high || h->live || h->tombstones || high > ID_MASK)
		return PM_E_PARAM; /* restored twice (a damaged snapshot), or too many ids */
	while ((uint64_t)h->nchunks * PM_HNSW_CHUNK_NODES < high)
		if (!add_chunk(sh, &h->dir_off, &h->dir_cap, &h->nchunks,
			       PM_HNSW_CHUNK_NODES * (uint32_t)sizeof(struct pm_hnsw_node)))
			return PM_E_NOMEM;
	if (!visited_reserve(sh, high))
		return PM_E_NOMEM;
	h->high = high; /* chunks are zeroed: every id is free (unit 0) until restored */
	return PM_OK;
}

enum pm_status pm_hnsw_restore_node(struct pm_shard *sh, struct pm_collection *c, uint32_t id,
				    unsigned level, bool tomb, uint64_t off, const uint8_t *links,
				    size_t len)
{
	struct pm_hnsw *h = &c->hnsw;
	struct pm_vec_header *hdr = pm_at(&sh->arena, off);
	if (id >= h->high || node_at(sh, h, id)->unit || level > PM_HNSW_LEVEL_MAX ||
	    off % PM_HNSW_UNIT_BYTES || off >= PM_HNSW_ARENA_BYTES_MAX)
		return PM_E_PARAM;
	uint64_t up = 0;
	if (level && !(up = pm_blob_alloc(&sh->arena, upper_bytes(h, level))))
		return PM_E_NOMEM;
	*node_at(sh, h, id) = (struct pm_hnsw_node){ .unit = off_unit(off),
						     .level = (uint8_t)level,
						     .flags = tomb ? PM_HNSW_TOMBSTONE : 0 };
	hdr->node = id;
	hdr->upper_off = up;
	h->upper_bytes += up ? upper_bytes(h, level) : 0;
	size_t at = 0;
	for (unsigned lev = 0; lev <= level; lev++) {
		struct lst list = links_of(sh, c, hdr, lev);
		uint32_t n = at + U32_BYTES <= len ? get_u32(links + at) : UINT32_MAX;
		if (n > max_links(h, lev) || len - at - U32_BYTES < (size_t)n * U32_BYTES)
			return PM_E_PARAM;
		at += U32_BYTES;
		*list.n = n;
		for (uint32_t j = 0; j < n; j++, at += U32_BYTES)
			list.id[j] = get_u32(links + at);
	}
	if (at != len)
		return PM_E_PARAM;
	if (tomb) {
		hdr->seed = h->tomb_head;
		h->tomb_head = id;
		h->tombstones++;
		sh->tomb_bytes += node_footprint(h, hdr, level);
	} else {
		h->live++;
	}
	return PM_OK;
}

/* Drop the links of a restored list that this graph cannot hold (to free ids,
 * to itself, to nodes without the level, duplicates); returns how many. */
static uint32_t restore_clean_list(struct pm_shard *sh, struct pm_collection *c, uint32_t id,
				   unsigned lev)
{
	struct pm_hnsw *h = &c->hnsw;
	struct lst list = links_at(sh, c, id, lev);
	uint32_t kept = 0, n = *list.n;
	for (uint32_t j = 0; j < n; j++) {
		uint32_t x = list.id[j];
		bool ok = x != id && x < h->high && node_at(sh, h, x)->unit &&
			  node_at(sh, h, x)->level >= lev;
		for (uint32_t i = 0; i < kept && ok; i++)
			ok = list.id[i] != x;
		if (ok)
			list.id[kept++] = x;
	}
	*list.n = kept;
	return n - kept;
}

uint32_t pm_hnsw_restore_end(struct pm_shard *sh, struct pm_collection *c, uint32_t entry,
			     uint64_t rng)
{
	struct pm_hnsw *h = &c->hnsw;
	uint32_t dropped = 0;
	int top = -1;
	for (uint32_t id = h->high; id-- > 0;) {
		struct pm_hnsw_node *n = node_at(sh, h, id);
		if (!n->unit) { /* lowest ids first on the free list */
			node_release(sh, h, id);
			continue;
		}
		n->indeg = 0;
		if (!(n->flags & PM_HNSW_TOMBSTONE) && n->level > top)
			top = n->level;
	}
	for (uint32_t id = 0; id < h->high; id++) {
		const struct pm_hnsw_node *n = node_at(sh, h, id);
		for (unsigned lev = 0; n->unit && lev <= n->level; lev++)
			dropped += restore_clean_list(sh, c, id, lev);
		struct lst l0 = n->unit ? links_at(sh, c, id, 0) : (struct lst){ 0 };
		for (uint32_t j = 0; n->unit && j < *l0.n; j++)
			indeg_add(sh, h, l0.id[j], +1);
	}
	h->max_level = top;
	h->entry = entry;
	if (entry >= h->high || !node_at(sh, h, entry)->unit || is_tomb(sh, h, entry) ||
	    node_at(sh, h, entry)->level != top)
		h->entry = pick_entry(sh, h);
	h->rng = rng;
	h->inserts_since_walk = 0;
	if (dropped) /* links lost to a fuzzy snapshot may have stranded nodes */
		reconnect_unreachable(sh, c);
	return dropped;
}

/* ---------------------------------------------------------------- search */

/* Runs of equal distance are ordered by key, as pm_knn_flat orders them. */
static void order_ties(const struct pm_shard *sh, struct pm_knn_hit *hit, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) {
		struct pm_knn_hit x = hit[i];
		uint32_t j = i;
		while (j > 0 && hit[j - 1].dist == x.dist && pm_knn_hit_cmp(sh, &hit[j - 1], &x) > 0) {
			hit[j] = hit[j - 1];
			j--;
		}
		hit[j] = x;
	}
}

enum pm_status pm_hnsw_search_limited(struct pm_shard *sh, const struct pm_collection *c,
				      const float *qv, uint32_t k, uint32_t ef, uint64_t work_max,
				      struct pm_knn_hit *out, uint32_t *nhits, uint64_t *work)
{
	const struct pm_hnsw *h = &c->hnsw;
	*nhits = 0;
	*work = 0;
	if (h->entry == PM_HNSW_NODE_NONE)
		return PM_OK;
	struct query q = { qv, c->params.metric == PM_METRIC_COSINE ? pm_norm(qv, c->params.dim) : 0 };
	_Alignas(64) uint8_t qcode[PM_QUANT_CODE_BYTES_MAX];
	if (c->params.dtype != PM_DTYPE_F32)
		pm_quant_query(&c->params, qv, qcode, &q.code);
	/* the beam holds PM_EF_MAX; a re-rank takes up to its width of candidates */
	const uint32_t width = PM_MIN(PM_MAX(ef, k), PM_EF_MAX);
	const uint32_t kr = PM_MIN(pm_vec_rerank_candidates(c, k), width);
	struct beam b;
	PM_ASSERT(k >= 1 && k <= PM_K_MAX && kr <= PM_K_MAX);
	descend(sh, c, &q, 0, width, work_max, &b);
	if (!b.stopped)
		beam_run(sh, c, &q, 0, &b);
	*work = b.work;
	if (b.stopped)
		return PM_E_WORK_LIMIT;
	uint32_t n = 0;
	for (uint32_t i = 0; i < b.n; i++) {
		const struct pm_hnsw_node *nd = node_at(sh, h, b.e[i].id);
		if (nd->flags & PM_HNSW_TOMBSTONE)
			continue;
		/* collect one past k so a tie at the k-th place is ordered by key */
		if (n >= kr && b.e[i].d != out[n - 1].dist)
			break;
		if (n == PM_K_MAX)
			break;
		out[n++] = (struct pm_knn_hit){ .seed = unit_hdr(sh, nd->unit)->seed, .dist = b.e[i].d };
	}
	order_ties(sh, out, n);
	*nhits = pm_vec_reranks(c) ? pm_vec_rerank(sh, c, qv, q.code.norm, out, PM_MIN(n, kr), k)
				   : PM_MIN(n, k);
	return PM_OK;
}

uint32_t pm_hnsw_search(struct pm_shard *sh, const struct pm_collection *c, const float *qv,
			uint32_t k, uint32_t ef, struct pm_knn_hit *out)
{
	uint32_t n;
	uint64_t work;
	(void)pm_hnsw_search_limited(sh, c, qv, k, ef, UINT64_MAX, out, &n, &work);
	return n;
}

/* ---------------------------------------------------------------- checkers */

__attribute__((format(printf, 2, 3))) static enum pm_status broken(struct pm_hnsw_report *rep,
								   const char *fmt, ...)
{
	if (rep->why[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(rep->why, sizeof(rep->why), fmt, ap);
		va_end(ap);
	}
	return PM_E_INTERNAL;
}

/* Per-list rules; counts level-0 in-links into indeg[]. */
static enum pm_status check_list(const struct pm_shard *sh, const struct pm_collection *c,
				 uint32_t id, unsigned lev, uint32_t *indeg,
				 struct pm_hnsw_report *rep)
{
	const struct pm_hnsw *h = &c->hnsw;
	struct lst list = links_at(sh, c, id, lev);
	if (*list.n > max_links(h, lev))
		return broken(rep, "node %u level %u: %u links > %u", id, lev, *list.n, max_links(h, lev));
	for (uint32_t j = 0; j < *list.n; j++) {
		uint32_t x = list.id[j];
		if (x == id || x >= h->high || !node_at(sh, h, x)->unit) {
			rep->dangling++;
			return broken(rep, "node %u level %u: link to %s %u", id, lev,
				      x == id ? "itself" : "free id", x);
		}
		if (node_at(sh, h, x)->level < lev)
			return broken(rep, "node %u level %u: target %u has no level %u", id, lev, x, lev);
		if (is_tomb(sh, h, x) && h->tombstones == 0)
			return broken(rep, "node %u: link to tombstone %u with none pending", id, x);
		for (uint32_t i = 0; i < j; i++)
			if (list.id[i] == x)
				return broken(rep, "node %u level %u: duplicate link %u", id, lev, x);
		if (lev == 0)
			indeg[x]++;
		rep->links++;
	}
	return PM_OK;
}

/* Breadth-first from the entry point at level `lev` over live nodes and
 * tombstones (searches walk through both); returns the nodes reached. */
static uint32_t reached_at(struct pm_shard *sh, const struct pm_collection *c, unsigned lev,
			   uint32_t *queue, uint32_t *live)
{
	const struct pm_hnsw *h = &c->hnsw;
	uint32_t head = 0, tail = 0;
	*live = 0;
	visited_begin(sh);
	visit(sh, h->entry);
	queue[tail++] = h->entry;
	while (head < tail) {
		uint32_t id = queue[head++];
		*live += !is_tomb(sh, h, id);
		struct lst list = links_at(sh, c, id, lev);
		for (uint32_t j = 0; j < *list.n; j++)
			if (!visit(sh, list.id[j]))
				queue[tail++] = list.id[j];
	}
	return tail;
}

/* Nodes that have level lev >= 1 and that the entry point cannot reach at
 * lev, summed over the levels. Reported, not a rule: pruning at the upper
 * levels keeps no in-link count (level 0's does), and what it strands there
 * is left to the greedy descent, which only needs some path down. Measured
 * on 8,000 clustered 24-d points at M = 4: 9 % of level 1 after the build
 * (L2), up to 21 % after deleting three in four and sweeping, and up to 91 %
 * for inner product (its selection keeps the nearest, not a spread); 93 % of
 * level 2 for cosine at M = 2 -- as many as in a graph whose nodes all lost
 * their top level (95 % of level 1), so no bound on it tells them apart. */
static uint32_t upper_unreachable(struct pm_shard *sh, const struct pm_collection *c,
				  const uint32_t *at_level, uint32_t *queue)
{
	uint32_t missing = 0, live;
	for (int lev = 1; lev <= c->hnsw.max_level; lev++)
		missing += at_level[lev] - reached_at(sh, c, (unsigned)lev, queue, &live);
	return missing;
}

/* ln of the Chernoff bound on a binomial of mean mu reaching x (from either
 * side): P(X <= x) for x < mu and P(X >= x) for x > mu are both at most
 * e^-mu (e mu / x)^x. */
static double binomial_tail_ln(double mu, double x)
{
	return x > 0 ? -mu + x * (1.0 + log(mu / x)) : -mu;
}

/* The level counts against the level RNG. Each insert that took drew one
 * level, i.i.d. with P(level >= l) = M^-l (mL = 1 / ln M), and took one id,
 * so the ids handed out (high) are at most the draws k. The n nodes held
 * (live and tombstones) are n distinct draws; the other k - n were removed by
 * whatever removed them -- deletes, or eviction, which prefers nodes with
 * upper links (bigger), so survivors are not a level-blind sample -- and at
 * most k - n of the D_l draws at level >= l are gone: D_l - (k - n) <= X_l <=
 * D_l, with D_l ~ Binomial(k, M^-l). A count outside what D_l reaches with
 * odds 2^-PM_HNSW_LEVELS_ODDS_LOG2 is refused: over the 16 levels and both
 * tails a valid graph fails with probability below 2^-35 (with no removals,
 * k = n, this is a two-sided test of the counts themselves: a graph whose
 * nodes all lost their top level has a quarter of the level-1 nodes it
 * should at M = 4). A graph loaded from a fuzzy snapshot can hold nodes
 * inserted after its start in ids freed while it ran; their levels are draws
 * too, so only removals that chose nodes by level as well could push such a
 * graph past the bound. */
static enum pm_status check_levels(const struct pm_collection *c, const uint32_t *at_level,
				   uint32_t n, struct pm_hnsw_report *rep)
{
	const struct pm_hnsw *h = &c->hnsw;
	const double odds_ln = -PM_HNSW_LEVELS_ODDS_LOG2 * log(2.0);
	uint64_t k = pm_hnsw_level_draws(h->rng, c->params.dim);
	rep->draws = k;
	if (h->high > k) {
		rep->levels_implausible = true;
		return broken(rep, "%u ids handed out, but the level RNG drew %llu levels", h->high,
			      (unsigned long long)k);
	}
	for (unsigned lev = 1; lev <= PM_HNSW_LEVEL_MAX; lev++) {
		double mu = (double)k * exp(-(double)lev / h->level_mult);
		double least = (double)at_level[lev] + (double)(k - n), most = at_level[lev];
		if ((least < mu && binomial_tail_ln(mu, least) < odds_ln) ||
		    (most > mu && binomial_tail_ln(mu, most) < odds_ln)) {
			rep->levels_implausible = true;
			return broken(rep, "%u of %u nodes at level >= %u after %llu draws (mean %.1f)",
				      at_level[lev], n, lev, (unsigned long long)k, mu);
		}
	}
	return PM_OK;
}

enum pm_status pm_hnsw_validate(struct pm_shard *sh, const struct pm_collection *c,
				uint32_t *scratch, struct pm_hnsw_report *rep)
{
	const struct pm_hnsw *h = &c->hnsw;
	uint32_t at_level[PM_HNSW_LEVEL_MAX + 1] = { 0 }; /* nodes with level >= l */
	memset(rep, 0, sizeof(*rep));
	memset(scratch, 0, (size_t)h->high * sizeof(uint32_t));
	int top = -1;
	for (uint32_t id = 0; id < h->high; id++) {
		const struct pm_hnsw_node *n = node_at(sh, h, id);
		if (!n->unit)
			continue;
		if (n->flags & PM_HNSW_TOMBSTONE)
			rep->tombstones++;
		else
			rep->live++;
		if (unit_hdr(sh, n->unit)->node != id)
			return broken(rep, "node %u: its blob names node %u", id, unit_hdr(sh, n->unit)->node);
		if (n->level > PM_HNSW_LEVEL_MAX)
			return broken(rep, "node %u: level %u > %u", id, n->level, PM_HNSW_LEVEL_MAX);
		if (!(n->flags & PM_HNSW_TOMBSTONE) && n->level > top)
			top = n->level;
		for (unsigned lev = 0; lev <= n->level; lev++) {
			at_level[lev]++;
			if (check_list(sh, c, id, lev, scratch, rep) != PM_OK)
				return PM_E_INTERNAL;
		}
	}
	if (rep->live != h->live || rep->tombstones != h->tombstones)
		return broken(rep, "counts: %u live / %u tombstones, index says %u / %u", rep->live,
			      rep->tombstones, h->live, h->tombstones);
	for (uint32_t id = 0; id < h->high; id++) {
		const struct pm_hnsw_node *n = node_at(sh, h, id);
		if (n->unit && !(n->flags & PM_HNSW_TOMBSTONE) && n->indeg != INDEG_SATURATED &&
		    n->indeg != scratch[id])
			return broken(rep, "node %u: in-degree %u, counted %u", id, n->indeg, scratch[id]);
	}
	if (h->live == 0)
		return h->entry == PM_HNSW_NODE_NONE ? PM_OK : broken(rep, "empty index has an entry");
	if (h->entry >= h->high || is_tomb(sh, h, h->entry) || !node_at(sh, h, h->entry)->unit)
		return broken(rep, "entry point %u is not a live node", h->entry);
	if (node_at(sh, h, h->entry)->level != top || h->max_level != top)
		return broken(rep, "entry level %u / max level %d, top live level %d",
			      node_at(sh, h, h->entry)->level, h->max_level, top);
	uint32_t live;
	reached_at(sh, c, 0, scratch, &live);
	rep->unreachable = h->live - live;
	if (rep->unreachable)
		return broken(rep, "%u live nodes unreachable from the entry point", rep->unreachable);
	rep->upper_unreachable = upper_unreachable(sh, c, at_level, scratch);
	return check_levels(c, at_level, rep->live + rep->tombstones, rep);
}

double pm_hnsw_recall(struct pm_shard *sh, const struct pm_collection *c, const float *queries,
		      uint32_t nq, uint32_t k, uint32_t ef)
{
	struct pm_knn_hit exact[PM_K_MAX], approx[PM_K_MAX];
	uint64_t found = 0, wanted = 0;
	for (uint32_t i = 0; i < nq; i++) {
		const float *q = queries + (size_t)i * c->params.dim;
		uint32_t ne = pm_knn_flat(sh, c, q, k, exact);
		uint32_t na = pm_hnsw_search(sh, c, q, k, ef, approx);
		for (uint32_t a = 0; a < na; a++)
			for (uint32_t e = 0; e < ne; e++)
				if (approx[a].seed == exact[e].seed) {
					found++;
					break;
				}
		wanted += ne;
	}
	return wanted ? (double)found / (double)wanted : 1.0;
}

/* ---------------------------------------------------------------- filtered search */

/* The graph search under a filter (filter.h), ACORN-style (Patel et al.,
 * 2024, "ACORN-1"): the beam holds only nodes that pass the filter, so ef of
 * them are kept; expanding a node gathers up to 2 M passing nodes from its
 * level-0 links and, through each link that fails the filter, from that
 * node's links (two hops), so the search crosses regions where few nodes pass
 * without scoring the ones that fail. The entry point found by the greedy
 * descent (which ignores the filter) seeds the beam even when it fails; it is
 * never returned. Filter tests are bounded by `tests_max` (the FILTER-EF of
 * Redis vector sets): a search that reaches it ends with no hits, and the
 * caller (knn.c) scans exactly, as it does when the search ran out of
 * candidates with fewer than k. */
struct fsearch {
	const struct pm_filter_prog *f;
	uint32_t tests, tests_max;
};

static bool node_passes(const struct pm_shard *sh, const struct pm_collection *c, uint32_t id,
			struct fsearch *fs)
{
	const struct pm_hnsw_node *nd = node_at(sh, &c->hnsw, id);
	if (nd->flags & PM_HNSW_TOMBSTONE)
		return false; /* walked through, never returned */
	const struct pm_vec_header *hdr = unit_hdr(sh, nd->unit);
	fs->tests++;
	return pm_filter_match(fs->f, hdr->attr_off ? pm_at(&sh->arena, hdr->attr_off) : NULL);
}

/* Unvisited nodes of list that pass go to pass[] (at most cap), those that
 * fail to fail[] when it is given. */
static void gather(struct pm_shard *sh, const struct pm_collection *c, struct lst list,
		   struct fsearch *fs, uint32_t *pass, uint32_t *np, uint32_t cap, uint32_t *fail,
		   uint32_t *nf)
{
	for (uint32_t i = 0; i < *list.n && *np < cap && fs->tests < fs->tests_max; i++) {
		uint32_t id = list.id[i];
		if (visit(sh, id))
			continue;
		if (node_passes(sh, c, id, fs))
			pass[(*np)++] = id;
		else if (fail)
			fail[(*nf)++] = id;
	}
}

static void expand_filtered(struct pm_shard *sh, const struct pm_collection *c,
			    const struct query *q, uint32_t id, struct fsearch *fs, struct beam *b)
{
	uint32_t pass[PM_HNSW_M_MAX * 2], fail[PM_HNSW_M_MAX * 2], np = 0, nf = 0;
	const uint32_t cap = c->hnsw.m0;
	gather(sh, c, links_at(sh, c, id, 0), fs, pass, &np, cap, fail, &nf);
	for (uint32_t j = 0; j < nf && np < cap; j++)
		gather(sh, c, links_at(sh, c, fail[j], 0), fs, pass, &np, cap, NULL, NULL);
	for (uint32_t i = 0; i < np && work_take(b); i++) {
		beam_insert(b, dist_hdr(sh, c, q, node_hdr(sh, &c->hnsw, pass[i])), pass[i]);
	}
}

enum pm_status pm_hnsw_search_filtered(struct pm_shard *sh, const struct pm_collection *c,
				       const float *qv, uint32_t k, uint32_t ef,
				       const struct pm_filter_prog *filter, uint32_t tests_max,
				       uint64_t work_max, struct pm_knn_hit *out, uint32_t *nhits,
				       uint64_t *work)
{
	const struct pm_hnsw *h = &c->hnsw;
	*nhits = 0;
	*work = 0;
	if (h->entry == PM_HNSW_NODE_NONE)
		return PM_OK;
	PM_ASSERT(k >= 1 && k <= PM_K_MAX);
	struct query q = { qv, c->params.metric == PM_METRIC_COSINE ? pm_norm(qv, c->params.dim) : 0 };
	_Alignas(64) uint8_t qcode[PM_QUANT_CODE_BYTES_MAX];
	if (c->params.dtype != PM_DTYPE_F32)
		pm_quant_query(&c->params, qv, qcode, &q.code);
	struct fsearch fs = { .f = filter, .tests_max = tests_max };
	const uint32_t width = PM_MIN(PM_MAX(ef, k), PM_EF_MAX);
	const uint32_t kr = PM_MIN(pm_vec_rerank_candidates(c, k), width);
	struct beam b;
	descend(sh, c, &q, 0, width, work_max, &b);
	struct pm_hnsw_cand x;
	while (fs.tests < fs.tests_max && cand_next(&b, &x))
		expand_filtered(sh, c, &q, x.id, &fs, &b);
	beam_sort(&b);
	*work = b.work;
	if (b.stopped)
		return PM_E_WORK_LIMIT;
	if (fs.tests >= fs.tests_max)
		return PM_OK; /* cut short: no hits, the caller scans */
	uint32_t n = 0;
	for (uint32_t i = 0; i < b.n; i++) {
		uint32_t id = b.e[i].id & ID_MASK;
		if (!node_passes(sh, c, id, &fs))
			continue; /* the entry point, when it fails */
		if (n >= kr && b.e[i].d != out[n - 1].dist)
			break;
		if (n == PM_K_MAX)
			break;
		out[n++] = (struct pm_knn_hit){ .seed = node_hdr(sh, h, id)->seed, .dist = b.e[i].d };
	}
	order_ties(sh, out, n);
	*nhits = pm_vec_reranks(c) ? pm_vec_rerank(sh, c, qv, q.code.norm, out, PM_MIN(n, kr), k)
				   : PM_MIN(n, k);
	return PM_OK;
}

/* ---------------------------------------------------------------- range search (H4, batch.h) */

/* Walk out from the beam's nodes within radius (b->e[0..*n) on entry, all
 * visited): every unvisited level-0 neighbour of a node in the list is scored,
 * and joins the list (so is expanded in its turn) when it is within radius.
 * Stops once more than max live nodes are in it, or the list holds PM_EF_MAX
 * (*full), or the work cap is reached (b->stopped). Returns the live ones. */
static uint32_t range_walk(struct pm_shard *sh, const struct pm_collection *c,
			   const struct query *q, float radius, uint32_t max, struct beam *b,
			   uint32_t *n, bool *full)
{
	uint32_t live = 0;
	for (uint32_t i = 0; i < *n; i++)
		live += !is_tomb(sh, &c->hnsw, b->e[i].id);
	for (uint32_t i = 0; i < *n && live <= max && !*full && !b->stopped; i++) {
		struct lst list = links_at(sh, c, b->e[i].id, 0);
		for (uint32_t j = 0; j < *list.n; j++) {
			uint32_t id = list.id[j];
			if (visit(sh, id))
				continue;
			if (!work_take(b))
				break;
			float d = dist_hdr(sh, c, q, node_hdr(sh, &c->hnsw, id));
			if (!(d <= radius))
				continue;
			if (*n == PM_EF_MAX) {
				*full = true;
				break;
			}
			b->e[(*n)++] = (struct pm_hnsw_cand){ d, id };
			live += !is_tomb(sh, &c->hnsw, id);
		}
	}
	return live;
}

enum pm_status pm_hnsw_range(struct pm_shard *sh, const struct pm_collection *c, const float *qv,
			     float radius, uint32_t max, uint32_t ef, uint64_t work_max,
			     struct pm_knn_hit *out, uint32_t *nhits, bool *truncated,
			     uint64_t *work)
{
	const struct pm_hnsw *h = &c->hnsw;
	*nhits = 0;
	*work = 0;
	*truncated = false;
	PM_ASSERT(max >= 1 && max < PM_EF_MAX);
	if (h->entry == PM_HNSW_NODE_NONE)
		return PM_OK;
	struct query q = { qv, c->params.metric == PM_METRIC_COSINE ? pm_norm(qv, c->params.dim) : 0 };
	_Alignas(64) uint8_t qcode[PM_QUANT_CODE_BYTES_MAX];
	if (c->params.dtype != PM_DTYPE_F32)
		pm_quant_query(&c->params, qv, qcode, &q.code);
	struct beam b;
	descend(sh, c, &q, 0, PM_MIN(PM_MAX(ef, 1u), PM_EF_MAX), work_max, &b);
	if (!b.stopped)
		beam_run(sh, c, &q, 0, &b);
	uint32_t n = 0;
	while (n < b.n && b.e[n].d <= radius) /* the beam is sorted: a prefix is within */
		n++;
	visited_begin(sh); /* the walk's own marks: the beam's nodes, then what it finds */
	for (uint32_t i = 0; i < n; i++)
		visit(sh, b.e[i].id);
	bool full = false;
	uint32_t live = b.stopped ? 0 : range_walk(sh, c, &q, radius, max, &b, &n, &full);
	*work = b.work;
	if (b.stopped)
		return PM_E_WORK_LIMIT;
	for (uint32_t i = 0; i < n; i++) {
		const struct pm_hnsw_node *nd = node_at(sh, h, b.e[i].id);
		if (!(nd->flags & PM_HNSW_TOMBSTONE))
			pm_knn_heap_offer(sh, out, nhits, max, unit_hdr(sh, nd->unit)->seed, b.e[i].d);
	}
	*nhits = pm_knn_heap_sort(sh, out, *nhits);
	*truncated = live > max || full;
	return PM_OK;
}
