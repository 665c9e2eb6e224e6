/* SPDX-License-Identifier: MIT
 *
 * request.h — a decoded request and the reply the shard produces for it.
 *
 * pomaid's dataplane decodes a frame with the wire codec (proto/codec.h) and
 * converts it into a struct pm_request whose pointers point into the received
 * frame (zero copy; byte arrays may be unaligned; dataplane/bridge.c). The
 * shard (shard.c) applies it and fills a struct pm_reply whose pointers point
 * into the shard's arena or its scratch space; they stay valid until the next
 * call that mutates the shard. The dataplane then encodes the reply frame.
 * These are the engine's own types: the wire names its own, and the bridge
 * checks that the numbers both use for ops, metrics, index kinds and
 * collection flags agree.
 */
#ifndef POMAI_ENGINE_REQUEST_H
#define POMAI_ENGINE_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

enum pm_op {
	PM_OP_NONE = 0,
	PM_OP_SET,
	PM_OP_GET,
	PM_OP_DEL,
	PM_OP_INFO,
	PM_OP_VADD,     /* 'V' 'A' */
	PM_OP_VGET,     /* 'V' 'G' */
	PM_OP_VDEL,     /* 'V' 'D' */
	PM_OP_VQUERY,   /* 'V' 'Q' */
	PM_OP_CCREATE,  /* 'V' 'C' */
	PM_OP_CDROP,    /* 'V' 'X' */
	PM_OP_CLIST,    /* 'V' 'L' */
	PM_OP_SNAPSHOT, /* 'P': every shard starts a snapshot (dataplane only) */
	PM_OP_MAP,      /* 'M': the cluster's slot map (dataplane only) */
	PM_OP_VSETATTR, /* 'V' 'T': replace a vector's attribute record */
	PM_OP_VADDB,    /* 'V' 'B': VADD batch (dataplane: one VADD per item) */
	PM_OP_VQUERYB,  /* 'V' 'N': VQUERY batch (batch.h) */
	PM_OP_VRANGE,   /* 'V' 'R': range search (batch.h) */
	PM_OP_AUTH_HELLO, /* 'A' 'H': a stream's challenge (dataplane only, issue 19) */
	PM_OP_AUTH_PROVE, /* 'A' 'P': its answer (dataplane only) */
	PM_OP_COUNT
};

enum pm_metric {
	PM_METRIC_L2 = 0, /* squared Euclidean distance (the default) */
	PM_METRIC_IP = 1, /* 1 - dot(a, b) */
	PM_METRIC_COSINE = 2, /* 1 - dot(a, b) / (|a| |b|) */
	PM_METRIC_COUNT
};

/* A collection's element type (quant.h): how its vectors are stored. */
enum pm_dtype {
	PM_DTYPE_F32 = 0, /* 4 bytes per component, as sent (the default) */
	PM_DTYPE_F16 = 1, /* IEEE half, round to nearest even */
	PM_DTYPE_Q8 = 2,  /* int8 with a per-vector scale (symmetric, -127..127) */
	PM_DTYPE_BIN = 3, /* one sign bit per component */
	PM_DTYPE_COUNT
};

enum pm_index_kind {
	PM_INDEX_FLAT = 0, /* exact scan */
	PM_INDEX_HNSW = 1, /* approximate graph index (parameters kept; see docs) */
	PM_INDEX_COUNT
};

/* Collection flags (struct pm_collection_params.flags). */
#define PM_COLL_EVICTABLE 0x01u /* its vectors may be evicted under maxmemory */
#define PM_COLL_FLAGS_ALL PM_COLL_EVICTABLE

struct pm_collection_params {
	uint32_t dim;
	uint8_t metric;     /* enum pm_metric */
	uint8_t index;      /* enum pm_index_kind */
	uint16_t hnsw_m;    /* HNSW links per node; 0 = default */
	uint32_t ef_construction; /* 0 = default */
	uint32_t ef_search;       /* 0 = default */
	uint8_t flags;      /* PM_COLL_*; default collections have none */
	uint8_t dtype;      /* enum pm_dtype; default collections are f32 */
	uint8_t rerank;     /* 1: keep the f32 vectors too and re-rank the best
			     * rerank_k candidates with them (not for f32) */
	uint8_t reserved;   /* zero (pm_coll_params_check clears it: params compare by bytes) */
	uint32_t rerank_k;  /* candidates re-ranked; 0 = PM_RERANK_K_DEFAULT when rerank */
};

struct pm_bytes {
	const uint8_t *ptr;
	uint32_t len;
};

struct pm_request {
	uint8_t op;          /* enum pm_op */
	uint64_t id;         /* request id, echoed in the reply */
	struct pm_bytes key;
	struct pm_bytes value;      /* SET */
	struct pm_bytes collection; /* vector ops; len 0 = default collection */
	struct pm_bytes section;    /* INFO */
	uint8_t info_flags;         /* INFO: the request's flags (the dataplane's; opaque here) */
	uint8_t list_flags;         /* CLIST: the request's flags, copied to the reply */
	const uint8_t *vec;  /* little-endian f32 components, possibly unaligned */
	uint32_t dim;
	uint32_t k;
	uint32_t ef;         /* 0 = collection default */
	uint64_t ttl_ms;     /* 0 = no TTL */
	bool has_ttl;
	bool exact;          /* VQUERY: force exact (flat) search */
	struct pm_collection_params params; /* CCREATE */
	/* attributes and filters (attr.h, filter.h) */
	struct pm_bytes attr;       /* VADD (when has_attr), VSETATTR: an attribute record */
	bool has_attr;              /* VADD: attr given (else the vector keeps its record) */
	struct pm_bytes filter;     /* VQUERY: filter expression text; len 0 = none */
	uint32_t part_shards;       /* issue 20 (dataplane only), VQUERY: 0, or the shards a
				       client asks one by one: this shard's part only */
	/* issue 18: VADDB, VQUERYB: nitems items, their bytes (after the count),
	 * read one by one with the dataplane's pm_request_item(); item_flags: the
	 * frame's flags, which say the items' optional fields. VRANGE: radius
	 * (and k is the most hits). */
	uint32_t nitems;
	struct pm_bytes items;
	uint8_t item_flags;
	float radius;
	/* issue 19 (dataplane only): auth: the frame ends with an AUTH trailer
	 * (its body proper was decoded); AUTH_PROVE: the user, and its nonce and
	 * tag (auth_proof) */
	bool auth;
	uint32_t auth_user;
	struct pm_bytes auth_proof;
};

struct pm_knn_hit {
	uint32_t seed;  /* seed index in the shard (for the key) */
	float dist;     /* the metric's distance; smaller is nearer */
};

struct pm_coll_info {
	struct pm_bytes name;
	struct pm_collection_params params;
	uint64_t count;  /* vectors in the collection */
	uint64_t bytes;  /* arena bytes of its vector blobs */
};

struct pm_reply {
	enum pm_status status;
	uint8_t op;
	uint64_t id;
	uint32_t removed;         /* DEL, VDEL, CDROP: 0 or 1 */
	struct pm_bytes value;    /* GET value; VGET f32 bytes (decoded from codes if need be); INFO text */
	uint32_t dim;             /* VGET */
	uint8_t dtype;            /* VGET: the collection's element type (value is f32 either way) */
	struct pm_bytes collection; /* VGET: the vector's collection name */
	struct pm_bytes attr;     /* VGET: the vector's attribute record (len 0: none) */
	/* VQUERY: hits sorted by (dist, key); keys[i] is the key of hits[i]. */
	const struct pm_knn_hit *hits;
	const struct pm_bytes *keys;
	uint32_t nhits;
	uint64_t work;            /* VQUERY: bytes of vectors the search read (knn.h) */
	/* CLIST */
	const struct pm_coll_info *colls;
	uint32_t ncolls;
	uint8_t list_flags;       /* the request's list_flags: the entries' layout */
	/* issue 18: VADDB: each item's wire status (nitems); VQUERYB: hit i
	 * answers query hit_query[i]; VRANGE: more were within than sent */
	const uint8_t *item_status;
	uint32_t nitems;
	const uint32_t *hit_query;
	bool truncated;
	/* issue 19 (dataplane only): E_AUTH: its reason (the wire's enum
	 * pm_auth_reason); AUTH_HELLO: the challenge (16 bytes) */
	uint8_t auth_reason;
	/* SNAPSHOT (dataplane only, issue 19): shards whose snapshot was running
	 * already (none started there), and the least progress of theirs, % */
	uint32_t snap_running;
	uint8_t snap_pct;
	const uint8_t *challenge;
};

#endif
