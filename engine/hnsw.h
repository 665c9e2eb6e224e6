/* SPDX-License-Identifier: MIT
 *
 * hnsw.h — a Hierarchical Navigable Small World index per collection, living in
 * the shard's arena (Malkov & Yashunin, 2016/2018).
 *
 * Where this departs from the paper and from hnswlib:
 *  1. Nodes do not own a copy of the vector. A node IS the vector's blob: the
 *     blob of a vector in an HNSW collection is
 *        [ 64-byte header | payload | level-0 links | long key ]
 *     (a collection that re-ranks, quant.h, keeps its f32 copy after the links)
 *     so the vector and its level-0 links arrive together, as in hnswlib's
 *     level-0 block, without a second copy. Links hold node ids; a dense node
 *     table maps an id to its blob (4 bytes) and carries the level and flags.
 *  2. Search keeps a bounded max-heap of the ef best nodes and a min-heap of
 *     the ones not yet expanded, as the paper does, but both in bounded
 *     arrays (the shard's beam scratch, PM_HNSW_BEAM_ENTRIES) and the
 *     candidates dropped lazily: a candidate pushed out of the results is
 *     not expanded (unless its distance ties the worst result's).
 *  3. Deletion is real, in two steps. Deleting a vector makes its node a
 *     tombstone at once (it is never returned and never linked to again, but
 *     searches may still walk through it). pm_hnsw_maintain() then sweeps the
 *     node table in bounded slices: every live node that links to a tombstone
 *     gets its list rebuilt from its other links and the tombstone's links
 *     (the heuristic of the paper's algorithm 4 picks among them), and once a
 *     sweep has passed over the whole table, the tombstones it started with are
 *     freed — blob, upper links, node id — and their memory is reused. This is
 *     FreshDiskANN's delete consolidation, adapted to HNSW's layers.
 *  4. Every node keeps at least one in-link at level 0: a node's in-degree is
 *     counted, and pruning never drops a node's last in-link, so pruning alone
 *     cannot strand a node (the validator checks reachability from the entry).
 *  5. Levels are drawn from a per-collection seeded RNG, so a build is a pure
 *     function of its inserts.
 *
 * Links are directed; the validator's rules: no self links, no duplicates, no
 * links to free node ids, every target exists at the link's level, list sizes
 * within bounds, in-degree counts exact, entry point live at the top level,
 * every live node reachable from the entry point at level 0, and the count of
 * nodes at each level one the level RNG's draws could give (no fewer ids
 * handed out than levels drawn; see check_levels in hnsw.c for the bound).
 * Links to tombstones are allowed only while tombstones are pending. Nodes
 * the entry point cannot reach at the upper levels are counted, not refused
 * (pruning there keeps no in-link count; the greedy descent needs only a path).
 */
#ifndef POMAI_ENGINE_HNSW_H
#define POMAI_ENGINE_HNSW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "request.h"
#include "status.h"

struct pm_shard;
struct pm_collection;

/* A collection's HNSW parameters (stored with it): the defaults, and the
 * bounds of M (links per node above level 0; 2 M at level 0), which size the
 * link lists, the candidate arrays of a prune and a snapshot's node records. */
#define PM_HNSW_M_DEFAULT 16u
#define PM_HNSW_M_MIN 2u
#define PM_HNSW_M_MAX 128u
#define PM_HNSW_EF_CONSTRUCTION_DEFAULT 200u
#define PM_HNSW_EF_SEARCH_DEFAULT 64u
/* Levels above 0 a node may have: with M >= 2 the chance of more is < 2^-16. */
#define PM_HNSW_LEVEL_MAX 16u
/* Collections smaller than this answer queries by exact scan: below it a flat
 * scan is as fast as the graph and exact. */
#define PM_HNSW_FLAT_BELOW 256u
/* Node ids per node-table chunk (8 bytes each: 32 KiB chunks). */
#define PM_HNSW_CHUNK_NODES 4096u
/* Nodes examined per pm_hnsw_maintain step when the caller gives no budget. */
#define PM_HNSW_MAINTAIN_NODES_DEFAULT 1024u
/* Inserts after which maintenance walks the graph from the entry point and
 * relinks unreachable nodes (pruning during inserts can strand a few):
 * max(this, live / 4), so the walk costs O(1) per insert amortised. */
#define PM_HNSW_WALK_INSERTS_MIN 1024u
/* Tombstones that make pm_shard_* trigger a sweep: max(this, live / 16). */
#define PM_HNSW_TOMBSTONES_SWEEP_MIN 64u

#define PM_HNSW_NODE_NONE UINT32_MAX

/* A node's blob starts on a 32-byte boundary (vector.c gives an HNSW blob at
 * least PM_BLOB_ALIGNED_BYTES_MIN, which the arena cuts on 64 bytes, or on 32
 * for its 32-byte steps between 512 B and 1 KiB: arena.h), so the node table
 * keeps its offset in units of 32 bytes: 32 bits of units address the first
 * 128 GiB of an arena (PM_HNSW_ARENA_BYTES_MAX); a node blob above that is
 * refused (PM_E_NOMEM), never truncated. */
#define PM_HNSW_UNIT_SHIFT 5u
#define PM_HNSW_UNIT_BYTES (1u << PM_HNSW_UNIT_SHIFT)
#define PM_HNSW_ARENA_BYTES_MAX ((UINT64_C(1) << 32) << PM_HNSW_UNIT_SHIFT)

/* One node-table entry (8 bytes). */
struct pm_hnsw_node {
	uint32_t unit;            /* blob offset / PM_HNSW_UNIT_BYTES; 0 = free id */
	union {
		struct {
			uint8_t level;    /* top level of the node */
			uint8_t flags;    /* PM_HNSW_TOMBSTONE, PM_HNSW_DOOMED */
			uint16_t indeg;   /* level-0 in-links, saturating */
		};
		uint32_t next_free;   /* free ids: the next free id */
	};
};
/* The blob offset of a node-table entry's vector. */
static inline uint64_t pm_hnsw_node_off(const struct pm_hnsw_node *n)
{
	return (uint64_t)n->unit << PM_HNSW_UNIT_SHIFT;
}
#define PM_HNSW_TOMBSTONE 0x01u
#define PM_HNSW_DOOMED 0x02u /* tombstone the running sweep will free */

/* A beam / candidate entry: distance and node id (bit 31: expanded). */
struct pm_hnsw_cand {
	float d;
	uint32_t id;
};
/* Candidates a list repair or prune considers (own links + a tombstone's). */
#define PM_HNSW_CANDIDATES_MAX 1024u
/* The beam scratch of a search of width ef: ef results and room for this many
 * times ef candidates not yet expanded (stale ones are pruned when it fills:
 * after a prune at most ef are left, so the prunes cost O(1) per insert). */
#define PM_HNSW_BEAM_CANDS_PER_EF 2u
#define PM_HNSW_BEAM_ENTRIES ((1u + PM_HNSW_BEAM_CANDS_PER_EF) * PM_EF_MAX)

/* Index state, embedded in struct pm_collection (so: in the arena). */
struct pm_hnsw {
	uint16_t m;              /* links per node at levels >= 1 */
	uint16_t m0;             /* links per node at level 0 (2 M) */
	uint32_t ef_construction;
	uint32_t ef_search;
	uint32_t entry;          /* entry point, PM_HNSW_NODE_NONE when empty */
	int32_t max_level;       /* -1 when empty */
	uint64_t rng;            /* level RNG state */
	double level_mult;       /* 1 / ln(M) */
	uint64_t dir_off;        /* blob: node-table chunk offsets */
	uint32_t dir_cap;
	uint32_t nchunks;
	uint32_t high;           /* ids [0, high) have been handed out */
	uint32_t free_head;      /* freed ids, threaded through unit */
	uint32_t live;           /* nodes that are not tombstones */
	uint32_t tombstones;     /* pending, including doomed ones */
	uint32_t tomb_head;      /* tombstones not yet doomed, threaded through hdr->seed */
	uint32_t doomed_head;    /* tombstones the running sweep frees at its end */
	uint32_t sweep_cursor;   /* next id the sweep looks at */
	bool sweeping;
	uint64_t upper_bytes;    /* bytes of upper-level link blobs */
	uint64_t reconnected;    /* nodes relinked after a sweep left them unreachable */
	uint32_t inserts_since_walk; /* inserts since the last reachability walk */
	uint32_t destroy_next;   /* a dropped collection's teardown: next id to free */
};

/* Bytes a vector blob of an HNSW collection reserves for level-0 links. */
uint32_t pm_hnsw_links0_bytes(uint16_t m0);

/* Level-0 links per node of a graph of hnsw_m links per node above it. */
static inline uint16_t pm_hnsw_m0_of(uint16_t hnsw_m)
{
	return (uint16_t)(2 * hnsw_m);
}

void pm_hnsw_init(struct pm_hnsw *h, const struct pm_collection_params *p);
/* Levels drawn by the level RNG of a collection of dimension dim whose state
 * is rng: the inserts that took since pm_hnsw_init. Each took one id, so a
 * graph's id bound (high) is never above it. */
uint64_t pm_hnsw_level_draws(uint64_t rng, uint32_t dim);

/* Add the vector whose blob is at `off` (its header already written). Fails
 * only for memory (PM_E_NOMEM), leaving the index unchanged. */
enum pm_status pm_hnsw_insert(struct pm_shard *sh, struct pm_collection *c, uint64_t off);
/* Most class bytes the next pm_hnsw_insert into c can allocate: the upper
 * links of the level it will draw, and a node-table and a visited-marks chunk
 * (with their directories) when it will need them. */
uint64_t pm_hnsw_insert_bytes(const struct pm_shard *sh, const struct pm_collection *c);
/* Class bytes the node of the vector with header hdr holds (blob + upper links). */
struct pm_vec_header;
uint64_t pm_hnsw_node_footprint(const struct pm_shard *sh, const struct pm_collection *c,
				const struct pm_vec_header *hdr);
/* The vector at `off` changed in place: find it new neighbours. */
enum pm_status pm_hnsw_update(struct pm_shard *sh, struct pm_collection *c, uint64_t off);
/* The vector at `off` is deleted: its node becomes a tombstone. The blob now
 * belongs to the index, which frees it (pm_blob_free with blob_bytes from the
 * header) when the tombstone is reclaimed. */
void pm_hnsw_remove(struct pm_shard *sh, struct pm_collection *c, uint64_t off);
/* Release everything (the collection is dropped): all node blobs and tables. */
void pm_hnsw_destroy(struct pm_shard *sh, struct pm_collection *c);

/* Sweep up to `nodes` node-table entries; returns true while work remains.
 * With no tombstones, walks the graph and relinks unreachable nodes once
 * enough inserts have happened since the last walk. */
bool pm_hnsw_maintain(struct pm_shard *sh, struct pm_collection *c, uint32_t nodes);

/* Free up to *budget nodes (and their blobs) of a dropped collection's graph,
 * from where the last call stopped, taking what it used from *budget; true
 * once the whole graph is freed (then h is as after pm_hnsw_init of nothing).
 * Its vectors' seeds were deleted first (pm_vec_unlink of a dropping
 * collection leaves the graph alone), so the graph is never searched again. */
bool pm_hnsw_destroy_slice(struct pm_shard *sh, struct pm_collection *c, uint32_t *budget);

static inline bool pm_hnsw_walk_due(const struct pm_hnsw *h)
{
	uint32_t due = h->live / 4 > PM_HNSW_WALK_INSERTS_MIN ? h->live / 4 : PM_HNSW_WALK_INSERTS_MIN;
	return h->inserts_since_walk >= due;
}

/* The k nearest live vectors to q with beam width max(ef, k), sorted by
 * (distance, key) like pm_knn_flat. out must hold PM_K_MAX hits (a tie at the
 * k-th place is ordered by key before the list is cut). The shard is written:
 * its visited marks and beam are the search's scratch. */
uint32_t pm_hnsw_search(struct pm_shard *sh, const struct pm_collection *c, const float *q,
			uint32_t k, uint32_t ef, struct pm_knn_hit *out);
/* pm_hnsw_search that stops once its distance computations would read more
 * than work_max bytes of vectors (knn.h: pm_knn_distance_bytes each):
 * PM_E_WORK_LIMIT with no hits. *work: the bytes read, either way. */
enum pm_status pm_hnsw_search_limited(struct pm_shard *sh, const struct pm_collection *c,
				      const float *q, uint32_t k, uint32_t ef, uint64_t work_max,
				      struct pm_knn_hit *out, uint32_t *nhits, uint64_t *work);

/* The k nearest live vectors to q whose attributes pass filter (filter.h),
 * searched ACORN-style (hnsw.c, "filtered search"): fewer than k when the
 * graph search ran out of candidates, none when it would have made more than
 * tests_max filter tests (the caller then scans exactly); PM_E_WORK_LIMIT as
 * pm_hnsw_search_limited. */
struct pm_filter_prog;
enum pm_status pm_hnsw_search_filtered(struct pm_shard *sh, const struct pm_collection *c,
				       const float *q, uint32_t k, uint32_t ef,
				       const struct pm_filter_prog *filter, uint32_t tests_max,
				       uint64_t work_max, struct pm_knn_hit *out, uint32_t *nhits,
				       uint64_t *work);
/* Range search through the graph (batch.h): the live vectors within radius of
 * q that a walk reaches — a beam search of width max(ef, 1) finds q's
 * neighbourhood, then every level-0 neighbour of a node within radius is
 * scored and, when within radius too, expanded in its turn, until no new node
 * is within radius or more than max are found. Approximate, as every graph
 * search: a vector within radius that no walk from the beam reaches through
 * nodes within radius is missed. Writes at most max (1 .. PM_EF_MAX - 1) hits
 * to out, nearest first (sorted like pm_knn_flat); *truncated when more
 * were found (the walk stops there) or the walk's list filled. Stops with
 * PM_E_WORK_LIMIT (no hits) past work_max bytes; *work as for
 * pm_hnsw_search_limited. */
enum pm_status pm_hnsw_range(struct pm_shard *sh, const struct pm_collection *c, const float *q,
			     float radius, uint32_t max, uint32_t ef, uint64_t work_max,
			     struct pm_knn_hit *out, uint32_t *nhits, bool *truncated,
			     uint64_t *work);

/* ------------------------------------------------------------ save and restore (snapshots) */

/* Node id's table entry, or NULL for a free id or one at or above high. */
const struct pm_hnsw_node *pm_hnsw_node_get(const struct pm_shard *sh,
					    const struct pm_collection *c, uint32_t id);
/* Write node id's link lists (levels 0..level: LE u32 count, then ids) into
 * out; the bytes written, 0 if they exceed cap. */
size_t pm_hnsw_links_save(const struct pm_shard *sh, const struct pm_collection *c, uint32_t id,
			  uint8_t *out, size_t cap);

/* Restoring a saved graph with its node ids and links as they were: begin
 * with the id bound `high` (every id free), restore each node whose blob
 * pm_vec_restore built (links: for levels 0..level, LE u32 count then ids),
 * then end: free ids are listed, links the restored graph cannot hold are
 * dropped (a fuzzy snapshot can have some), in-degrees counted, the entry
 * point checked (else the highest live node), the level RNG set. Returns the
 * links dropped; when there were any, the graph is walked and nodes they
 * stranded are linked in again. */
enum pm_status pm_hnsw_restore_begin(struct pm_shard *sh, struct pm_collection *c, uint32_t high);
enum pm_status pm_hnsw_restore_node(struct pm_shard *sh, struct pm_collection *c, uint32_t id,
				    unsigned level, bool tomb, uint64_t off, const uint8_t *links,
				    size_t len);
uint32_t pm_hnsw_restore_end(struct pm_shard *sh, struct pm_collection *c, uint32_t entry,
			     uint64_t rng);

/* ------------------------------------------------------------ checkers */

/* The validator refuses level counts that the level RNG's draws reach with
 * odds below 2^-this (pm_hnsw_validate, check_levels in hnsw.c). */
#define PM_HNSW_LEVELS_ODDS_LOG2 40

struct pm_hnsw_report {
	uint32_t live, tombstones, unreachable, links, dangling;
	uint32_t upper_unreachable; /* nodes the entry cannot reach at a level >= 1 (summed
				     * over levels; reported, not a rule) */
	uint64_t draws;             /* levels the RNG has drawn: inserts that took */
	bool levels_implausible;    /* the rule broken was the level counts' */
	char why[160];  /* first broken rule, "" when valid */
};
/* Check every rule in the header comment; returns PM_OK or PM_E_INTERNAL with
 * the first broken rule in rep->why. scratch holds c->hnsw.high u32s. */
enum pm_status pm_hnsw_validate(struct pm_shard *sh, const struct pm_collection *c,
				uint32_t *scratch, struct pm_hnsw_report *rep);
/* Mean recall@k of pm_hnsw_search against pm_knn_flat over nq queries (dim
 * floats each, contiguous): the same arguments as the search, plus the count. */
double pm_hnsw_recall(struct pm_shard *sh, const struct pm_collection *c, const float *queries,
		      uint32_t nq, uint32_t k, uint32_t ef);

#endif
