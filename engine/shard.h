/* SPDX-License-Identifier: MIT
 *
 * shard.h — one shard: arena, seed map, collections; and the single entry point
 * that applies a decoded request to it.
 *
 * A shard belongs to exactly one thread (its worker); nothing here locks. Time is
 * passed in (now_ms), never read here, so the engine is deterministic under test.
 * Every byte a shard uses after pm_shard_init comes from its arena: the seed map,
 * the collection table and the per-request scratch space are start-up
 * reservations, keys, values, vectors and member lists are blobs.
 */
#ifndef POMAI_ENGINE_SHARD_H
#define POMAI_ENGINE_SHARD_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "distance.h"
#include "evict.h"
#include "hnsw.h"
#include "pm_limits.h"
#include "request.h"
#include "seedmap.h"

struct pm_qkernels; /* quant.h */

/* Defaults an embedded shard gets (the daemon's config overrides them). */
#define PM_SHARD_ARENA_BYTES_DEFAULT (UINT64_C(256) << 20)
#define PM_SHARD_SEEDS_DEFAULT (1u << 20)

/* Members of a collection are kept in chunks of this many blob offsets (32 KiB),
 * so the list grows without ever copying more than its small chunk directory. */
#define PM_MEMBER_CHUNK_ENTRIES 4096u

struct pm_shard_config {
	uint64_t arena_bytes;   /* size of the shard's region */
	uint32_t seed_capacity; /* keys + vectors the shard can hold */
	bool hugepages;         /* try explicit / transparent hugepages */
	void *mem;              /* NULL, or arena_bytes of zeroed, 64-byte aligned memory the
				 * caller owns (DPDK hugepages on the port's NUMA node) */
};

struct pm_collection {
	bool live;
	bool is_default;          /* implicit collection of its dimension (no name) */
	uint8_t name_len;
	uint8_t name[PM_COLLECTION_NAME_BYTES_MAX];
	struct pm_collection_params params;
	uint64_t count;           /* vectors */
	uint64_t bytes;           /* class bytes of their blobs */
	uint64_t dir_off;         /* blob: array of chunk offsets */
	uint32_t dir_cap;         /* chunk slots in the directory */
	uint32_t nchunks;         /* chunks allocated (at most one beyond those in use) */
	struct pm_hnsw hnsw;      /* index state when params.index == PM_INDEX_HNSW */
	uint32_t gen;             /* which collection this slot holds (never 0 while live):
				   * a snapshot tells a dropped and re-created one apart */
	bool dropping;            /* CDROP done: no request finds it; pm_shard_maintain
				   * frees it in slices (pm_coll_drop_slice), then the slot */
	uint64_t mutations;       /* members added, removed or changed in place: a scan
				   * in steps (pm_vquery_step) begins again when it moved */
	uint64_t attr_stats_off;  /* blob: struct pm_attr_stats (attr.h), 0 until a record */
	bool attr_stats_lost;     /* a record came when that blob could not be had:
				   * estimates are "unknown" from then on */
};

struct pm_shard_stats {
	uint64_t ops[PM_OP_COUNT];
	uint64_t errors[PM_STATUS_COUNT];
	uint64_t hits, misses;
	uint64_t expired_lazy, expired_active;
	uint64_t knn_queries, knn_scanned, knn_graph;
	uint64_t knn_work;        /* bytes of vectors KNN searches read (knn.h), refused ones too */
	uint64_t knn_restarts;    /* exact scans begun again, after some of their work: their
				   * collection changed between two steps */
	uint64_t keys, vectors;
	uint64_t evicted_keys, evicted_vectors; /* by maxmemory (evict.h) */
	uint64_t evicted_bytes;   /* bytes their eviction freed (vectors: once swept) */
	uint64_t evict_refused;   /* writes refused PM_E_NOMEM for maxmemory */
	uint64_t evict_log_refused; /* evictions the evict_log hook refused */
};

struct pm_shard {
	struct pm_arena arena;
	struct pm_seedmap map;
	struct pm_collection *colls; /* PM_COLLECTIONS_MAX entries, in the arena */
	uint32_t ncolls;             /* slots in use, dropping ones included */
	uint32_t ncolls_dropping;    /* of them, dropped and being freed in slices */
	uint32_t coll_gen;           /* the last collection generation handed out */
	uint32_t expire_cursor;      /* next seed slot the active expiry looks at */
	bool expire_busy;            /* the last idle expiry cycle deleted a key */
	uint64_t expire_last_ms;     /* the caller's clock at that cycle */
	const struct pm_kernels *kern;
	const struct pm_qkernels *qkern; /* kernels over codes (quant.h) */
	struct pm_shard_stats stats;
	struct pm_evict evict;       /* maxmemory, policy, RNG (evict.h) */
	/* Called before each eviction (evict.h); the dataplane logs a DEL. NULL: allowed. */
	bool (*evict_log)(void *ctx, const uint8_t *key, uint32_t klen);
	void *evict_ctx;
	uint64_t tomb_bytes;         /* class bytes HNSW tombstones hold until swept */
	uint64_t knn_work_max;       /* bytes one KNN search may read here (knn.h); 0: no cap */
	/* scratch for one request's reply, in the arena */
	float *query;                /* PM_DIM_MAX floats, 64-byte aligned */
	struct pm_knn_hit *hits;     /* PM_K_MAX */
	struct pm_bytes *keys;       /* PM_K_MAX */
	struct pm_coll_info *cinfo;  /* PM_COLLECTIONS_MAX */
	char *text;                  /* PM_INFO_TEXT_BYTES_MAX */
	/* HNSW scratch: one search or repair at a time */
	struct pm_hnsw_cand *beam;   /* PM_HNSW_BEAM_ENTRIES */
	struct pm_hnsw_cand *cands;  /* PM_HNSW_CANDIDATES_MAX */
	uint64_t visit_dir_off;      /* chunked u16 visited marks, one per node id */
	uint32_t visit_dir_cap, visit_chunks;
	uint16_t visit_epoch;
};

void pm_shard_config_default(struct pm_shard_config *cfg);
enum pm_status pm_shard_init(struct pm_shard *sh, const struct pm_shard_config *cfg);
void pm_shard_destroy(struct pm_shard *sh);

/* Apply one decoded request; fills *rep (pointers valid until the next mutation). */
void pm_shard_apply(struct pm_shard *sh, const struct pm_request *req, uint64_t now_ms,
		    struct pm_reply *rep);

/* The reply of a VQUERY run in steps (knn.h: pm_vquery_*), done: what
 * pm_shard_apply would have replied, counted in the shard's stats as it would. */
struct pm_vquery;
void pm_shard_vquery_end(struct pm_shard *sh, const struct pm_vquery *v, struct pm_reply *rep);

/* Requests per burst (pm_shard_apply_burst): the dataplane's RX burst size. */
#define PM_BURST_MAX 64u

typedef void (*pm_reply_fn)(void *ctx, const struct pm_request *req, const struct pm_reply *rep);

/* Apply up to PM_BURST_MAX requests in order, overlapping their memory accesses
 * (prefetch passes); emit(ctx, req, rep) is called after each one, before the
 * next is applied, so reply pointers are valid inside emit. */
void pm_shard_apply_burst(struct pm_shard *sh, const struct pm_request *reqs, uint32_t n,
			  uint64_t now_ms, pm_reply_fn emit, void *ctx);
/* The same memory, prefetched only, for up to PM_BURST_MAX keys of requests
 * a caller then applies one by one (a TCP stream's frames, whose replies go
 * out in order through the connection's own checks). */
void pm_shard_prefetch_keys(const struct pm_shard *sh, const struct pm_bytes *keys, uint32_t n);

/* Active expiry: look at up to max_seeds slots (<= PM_EXPIRE_SCAN_SEEDS_MAX) from
 * a rotating cursor and delete the expired ones. Returns how many were deleted. */
uint32_t pm_shard_expire(struct pm_shard *sh, uint64_t now_ms, uint32_t max_seeds);

/* Background work between bursts: bounded active expiry (at most one cycle
 * per millisecond of now_ms while cycles find nothing to delete), a slice of at most
 * `budget` nodes (0: default) of the tombstone sweep of each HNSW collection
 * that has enough tombstones (max(PM_HNSW_TOMBSTONES_SWEEP_MIN, live / 16)) or
 * a sweep running, and a slice of `budget` vectors, then graph nodes, of each
 * dropped collection's teardown. Returns true while work remains. */
bool pm_shard_maintain(struct pm_shard *sh, uint64_t now_ms, uint32_t budget);

/* INFO text (Redis-like "field:value\r\n" lines) for a section or all (NULL). */
uint32_t pm_shard_info(struct pm_shard *sh, const char *section, uint32_t section_len,
		       char *out, uint32_t cap);

#endif
