/* SPDX-License-Identifier: MIT
 *
 * proto/wire.h — the vocabulary of the binary protocol (docs/protocol.md): its
 * bounds, opcodes, sub-ops, flags, status codes, and the values of the
 * collection parameters it carries. Everything a client and pomaid must agree
 * on is named here once; the codec (codec.h) reads and writes frames with it.
 *
 * The engine names its own bounds, ops and statuses (engine/pm_limits.h,
 * request.h, status.h). Where a bound is the same on both sides (a key's
 * bytes, a vector's dimension, k, ef, a collection's name, a TTL …) the two
 * names are checked equal by the dataplane's bridge (dataplane/bridge.c),
 * which is the one place that maps engine statuses to wire codes. Those bounds
 * are overridable (-DPM_WIRE_K_MAX=2048) like the engine's, but an override
 * of one side alone does not build.
 */
#ifndef POMAI_PROTO_WIRE_H
#define POMAI_PROTO_WIRE_H

#include <stdbool.h>
#include <stdint.h>

/* ---------------------------------------------------------------- bounds */

/* One frame must fit one UDP datagram over IPv4: 65535 - 20 (IP) - 8 (UDP). */
#ifndef PM_FRAME_BYTES_MAX
#define PM_FRAME_BYTES_MAX 65507u
#endif

/* Fixed frame header, see docs/protocol.md. */
#define PM_FRAME_HEADER_BYTES 24u

/* Keys are identifiers, not payloads: 1 KiB keeps key compares cheap and lets a
 * whole KNN reply page hold many results. */
#ifndef PM_WIRE_KEY_BYTES_MAX
#define PM_WIRE_KEY_BYTES_MAX 1024u
#endif

/* Values: 60 KiB, so that header + largest key + largest value + TTL still fit one
 * frame (checked below). Larger objects belong in a blob store, not a UDP cache. */
#ifndef PM_WIRE_VALUE_BYTES_MAX
#define PM_WIRE_VALUE_BYTES_MAX 61440u
#endif

/* Vector dimension: 4096 f32 components = 16 KiB, above every common embedding
 * size (384, 768, 1024, 1536, 3072). */
#ifndef PM_WIRE_DIM_MAX
#define PM_WIRE_DIM_MAX 4096u
#endif

/* Neighbours per KNN query. A reply larger than one frame is split into several
 * frames flagged MORE, so k is bounded by work, not by MTU. */
#ifndef PM_WIRE_K_MAX
#define PM_WIRE_K_MAX 1024u
#endif

/* Search breadth for approximate search (HNSW ef); bounds per-query work. */
#ifndef PM_WIRE_EF_MAX
#define PM_WIRE_EF_MAX 4096u
#endif

/* Collection names: short human-chosen identifiers. */
#ifndef PM_WIRE_COLLECTION_NAME_BYTES_MAX
#define PM_WIRE_COLLECTION_NAME_BYTES_MAX 64u
#endif

/* Collections a CLIST reply lists at most: what one shard holds (the engine's
 * PM_COLLECTIONS_MAX; every shard holds the same named ones). */
#ifndef PM_WIRE_COLLECTIONS_MAX
#define PM_WIRE_COLLECTIONS_MAX 256u
#endif

/* Attributes and filters (issue 18; the engine's attr.h and filter.h hold
 * the same bounds, checked in dataplane/bridge.c): a vector's attribute
 * record (VADD's ATTR trailer, VSETATTR, VGET's reply) and a VQUERY's filter
 * expression text (its FILTER trailer). */
#define PM_WIRE_ATTR_BYTES_MAX 512u
#define PM_WIRE_FILTER_BYTES_MAX 1024u
/* Items of one VADD or VQUERY batch (issue 18; the engine's
 * PM_BATCH_ITEMS_MAX, checked equal by the bridge). A batch of 0 or more is
 * E_BATCH; its bytes are bounded by the frame. */
#ifndef PM_WIRE_BATCH_ITEMS_MAX
#define PM_WIRE_BATCH_ITEMS_MAX 512u
#endif

/* Hits of one VQUERY batch reply, summed over its queries' k (the engine's
 * PM_BATCH_HITS_MAX), and of one VRANGE reply (its max is 1..this; the
 * engine's PM_RANGE_HITS_MAX). */
#define PM_WIRE_BATCH_HITS_MAX PM_WIRE_K_MAX
#define PM_WIRE_RANGE_HITS_MAX PM_WIRE_K_MAX

/* TTL: 2^40 ms is about 34.8 years; expiry times are stored in 48 bits of ms. */
#define PM_WIRE_TTL_MS_MAX (UINT64_C(1) << 40)

/* INFO section names ("memory", "keyspace", …). */
#define PM_INFO_SECTION_BYTES_MAX 32u

/* One shard's INFO text, and the whole INFO reply to a request without the
 * PAGED flag (a client that does not ask for pages reads one frame of at most
 * this, as every client did before paging; docs/protocol.md 6.2). */
#define PM_WIRE_INFO_TEXT_BYTES_MAX 8192u

/* The cluster header and the Total section pomaid writes before the shards'
 * texts: 256 summed fields of at most 48-byte names and 20 digits, and more. */
#define PM_INFO_TOTAL_BYTES_MAX 24576u

/* Shards whose texts one INFO reply has room for: pomaid's most shards
 * (PM_SHARDS_MAX, checked where it is defined). */
#define PM_INFO_SHARDS_MAX 32u

/* Whole text of a paged INFO reply (280 KiB): the totals and every shard's
 * text at its bound. It travels as several frames (MORE); a client collects
 * it into a buffer of this size. */
#define PM_INFO_REPLY_BYTES_MAX \
	(PM_INFO_TOTAL_BYTES_MAX + PM_INFO_SHARDS_MAX * PM_WIRE_INFO_TEXT_BYTES_MAX)

/* ---------------------------------------------------------------- header */

#define PM_FRAME_MAGIC 0x4D50u /* bytes 'P' 'M' on the wire */
#define PM_FRAME_VERSION 1u
/* Byte of the header holding a reply's wire status (docs/protocol.md §3). */
#define PM_FRAME_STATUS_OFFSET 5u

/* Header opcodes (byte 3). PM_OPCODE_NONE only appears in an error reply to a
 * request whose opcode or sub-op could not be decoded. */
#define PM_OPCODE_NONE 0u
#define PM_OPCODE_SET 'S'
#define PM_OPCODE_GET 'G'
#define PM_OPCODE_DEL 'D'
#define PM_OPCODE_INFO 'I'
#define PM_OPCODE_SNAPSHOT 'P' /* empty body; the reply is its status only */
#define PM_OPCODE_VECTOR 'V'
#define PM_OPCODE_MAP 'M' /* empty body; the reply is the cluster's slot map (cluster_map.h) */
/* issue 19 (docs/protocol.md §14): a datagram's first frame may be a COOKIE
 * frame (never answered, not an op: it proves the source address); AUTH is
 * the stream's challenge-response (sub-ops below). */
#define PM_OPCODE_COOKIE 'K'
#define PM_OPCODE_AUTH 'A'

/* Sub-ops: the first body byte of every 'V' request and reply. */
#define PM_VOP_ADD 'A'
#define PM_VOP_GET 'G'
#define PM_VOP_DEL 'D'
#define PM_VOP_QUERY 'Q'
#define PM_VOP_CREATE 'C'
#define PM_VOP_DROP 'X'
#define PM_VOP_LIST 'L'
#define PM_VOP_SETATTR 'T'
/* issue 18 (H4): batches and range search */
#define PM_VOP_ADD_BATCH 'B'
#define PM_VOP_QUERY_BATCH 'N'
#define PM_VOP_RANGE 'R'
/* Sub-ops of 'A' (first body byte, in requests and replies). */
#define PM_AOP_HELLO 'H' /* asks for a challenge */
#define PM_AOP_PROVE 'P' /* answers it: the connection speaks as a user */

/* Request flags (byte 4). */
#define PM_FLAG_TTL 0x01u   /* SET, VADD: a u64 ttl_ms trailer follows */
#define PM_FLAG_COLL 0x02u  /* VADD, VQUERY: a u32 len + collection name trailer */
#define PM_FLAG_EF 0x04u    /* VQUERY: a u32 ef trailer */
#define PM_FLAG_EXACT 0x08u /* VQUERY: exact search; no payload */
#define PM_FLAG_ATTR 0x10u  /* VADD: a u32 len + attribute record trailer (after COLL's) */
#define PM_FLAG_FILTER 0x10u /* VQUERY: a u32 len + filter expression trailer (after COLL's) */
/* issue 20: VQUERY: a u32 shard-count trailer (after FILTER's) follows: only
 * the part of the shard whose port the datagram was sent to is searched and
 * answered, the client merging the shards' parts itself (docs/protocol.md) */
#define PM_FLAG_PART 0x01u
/* The most shards a PART trailer may name: libpomai's bound on the shards of
 * one server (PM_CLIENT_SHARDS_MAX); a server answers a count other than its
 * own E_PARAM. */
#define PM_WIRE_PART_SHARDS_MAX 1024u
#define PM_FLAG_AUTH 0x20u /* every request: a PM_AUTH_TRAILER_BYTES trailer ends the body
			    * (proto/auth.h; docs/protocol.md §14) */
/* Reply flags (byte 4). */
#define PM_FLAG_MORE 0x40u  /* VQUERY, CLIST: another frame with this id follows */
#define PM_FLAG_REPLY 0x80u /* set on every reply, never on a request */

/* Wire size of one KNN hit and of one CLIST entry (with coll_flags and the
 * element type fields), without
 * their names. */
#define PM_WIRE_HIT_BYTES_FIXED (4u + 4u)
/* A VQUERY batch hit: u32 query index, then a KNN hit. */
#define PM_WIRE_QHIT_BYTES_FIXED (4u + PM_WIRE_HIT_BYTES_FIXED)
#define PM_WIRE_COLL_BYTES_FIXED (4u + 4u + 1u + 1u + 2u + 4u + 4u + 1u + 8u + 8u + 1u + 1u + 4u)

/* ---------------------------------------------------------------- ops */

/* What a frame asks for: its (opcode, sub-op) pair, as one number. The
 * numbers are also the slots of the stats segment's per-op counters
 * (proto/stats.h) and the client's pm_client_op values (client/pomai.h). */
enum pm_wire_op {
	PM_WIRE_OP_NONE = 0,  /* an undecodable opcode or sub-op */
	PM_WIRE_OP_SET,       /* 'S' */
	PM_WIRE_OP_GET,       /* 'G' */
	PM_WIRE_OP_DEL,       /* 'D' */
	PM_WIRE_OP_INFO,      /* 'I' */
	PM_WIRE_OP_VADD,      /* 'V' 'A' */
	PM_WIRE_OP_VGET,      /* 'V' 'G' */
	PM_WIRE_OP_VDEL,      /* 'V' 'D' */
	PM_WIRE_OP_VQUERY,    /* 'V' 'Q' */
	PM_WIRE_OP_CCREATE,   /* 'V' 'C' */
	PM_WIRE_OP_CDROP,     /* 'V' 'X' */
	PM_WIRE_OP_CLIST,     /* 'V' 'L' */
	PM_WIRE_OP_SNAPSHOT,  /* 'P' */
	PM_WIRE_OP_MAP,       /* 'M' */
	PM_WIRE_OP_VSETATTR,  /* 'V' 'T' (issue 18) */
	PM_WIRE_OP_VADDB,     /* 'V' 'B': VADD batch (issue 18) */
	PM_WIRE_OP_VQUERYB,   /* 'V' 'N': VQUERY batch */
	PM_WIRE_OP_VRANGE,    /* 'V' 'R': range search */
	PM_WIRE_OP_AUTH_HELLO, /* 'A' 'H': a stream's challenge (issue 19) */
	PM_WIRE_OP_AUTH_PROVE, /* 'A' 'P': its answer */
	PM_WIRE_OP_COUNT
};

/* The op's label ("set", "vquery" …, as pomai-control's metrics print it);
 * NULL for PM_WIRE_OP_NONE and numbers past the last op. */
const char *pm_wire_op_name(uint8_t op);

/* ---------------------------------------------------------------- statuses */

/* The status byte of a reply (docs/protocol.md §3 has the table). The codes
 * are stable: a code once given keeps its meaning; new ones take free codes. */
enum pm_wire_status {
	PM_WIRE_OK = 0,
	PM_WIRE_NOT_FOUND = 1,          /* key / collection absent (or expired) */
	PM_WIRE_E_WRONGTYPE = 2,        /* key holds the other kind (KV vs vector) */
	PM_WIRE_E_NOMEM = 3,            /* the shard's memory is exhausted for this request */
	PM_WIRE_E_EXISTS = 4,           /* collection already exists with other parameters */
	/* the server could not serve a valid request now */
	PM_WIRE_E_TIMEOUT = 5,          /* a shard did not answer a fan-out in time */
	PM_WIRE_E_BUSY = 6,             /* a ring or pending table was full; retry later */
	PM_WIRE_E_DISK_FULL = 7,        /* the shard's log disk is full: writes refused */
	PM_WIRE_E_LOG_FAILED = 8,       /* the shard's log failed: writes refused */
	PM_WIRE_E_THROTTLED = 9,        /* over the client's quota; the body has a retry hint */
	PM_WIRE_E_QUOTA = 10,           /* the collection holds its byte cap on that shard */
	PM_WIRE_E_WORK_LIMIT = 11,      /* a KNN search would read past the shard's work cap */
	PM_WIRE_E_READONLY = 12,        /* a write to a replica (or a fenced old primary); the
					 * body names the primary (docs/replication.md) */
	PM_WIRE_E_NOREPLICAS = 13,      /* fewer than min_replicas replicas connected, or their
					 * acks did not come in repl_ack_timeout_ms */
	PM_WIRE_E_MOVED = 14,           /* cluster: the key's slot belongs to another replica
					 * set; the body has the map epoch, the slot and that
					 * set's primary (docs/cluster.md) */
	PM_WIRE_E_RETRY = 15,           /* the reply would send an unvalidated source more than
					 * PM_AMPLIFY_FACTOR x what it sent, or the frame
					 * writes: the body is a cookie to echo (§14) */
	/* a value breaks a bound */
	PM_WIRE_E_KEY_LEN = 16,         /* key empty or above PM_WIRE_KEY_BYTES_MAX */
	PM_WIRE_E_VALUE_LEN = 17,       /* value above PM_WIRE_VALUE_BYTES_MAX */
	PM_WIRE_E_DIM = 18,             /* dimension 0, above the bound, or not the collection's */
	PM_WIRE_E_NAN = 19,             /* a vector component is NaN or infinite */
	PM_WIRE_E_ZERO_VECTOR = 20,     /* all-zero vector in a cosine collection */
	PM_WIRE_E_K = 21,               /* k is 0 or above PM_WIRE_K_MAX */
	PM_WIRE_E_EF = 22,              /* ef above PM_WIRE_EF_MAX, or below k */
	PM_WIRE_E_TTL = 23,             /* TTL 0 or above PM_WIRE_TTL_MS_MAX */
	PM_WIRE_E_COLLECTION_NAME = 24, /* collection name empty or too long */
	PM_WIRE_E_COLLECTIONS_FULL = 25,/* the shard holds its most collections */
	PM_WIRE_E_PARAM = 26,           /* metric, index kind, M, flags or section invalid */
	PM_WIRE_E_DTYPE = 27,           /* vector element type not supported */
	PM_WIRE_E_FILTER = 28,          /* filter expression malformed or over its bounds */
	PM_WIRE_E_ATTR = 29,            /* attribute record malformed or over its bounds */
	PM_WIRE_E_BATCH = 30,           /* batch count 0 or above its bound, or batch
					 * bytes over the frame */
	/* the frame could not be decoded */
	PM_WIRE_E_FRAME_TRUNCATED = 32, /* fewer bytes than the header or body length says */
	PM_WIRE_E_FRAME_TOO_BIG = 33,   /* body length above PM_FRAME_BYTES_MAX */
	PM_WIRE_E_FRAME_MAGIC = 34,     /* not a Pomai frame */
	PM_WIRE_E_FRAME_VERSION = 35,   /* unknown protocol version */
	PM_WIRE_E_FRAME_OPCODE = 36,    /* unknown opcode or sub-op */
	PM_WIRE_E_FRAME_FLAGS = 37,     /* flags not defined for this opcode, or reserved != 0 */
	PM_WIRE_E_FRAME_LENGTH = 38,    /* a length field disagrees with the body */
	/* who may speak (issue 19, docs/protocol.md §14) */
	PM_WIRE_E_AUTH = 40,            /* not authenticated: no, a bad or a replayed AUTH
					 * trailer, or auth required; the body is a u8 reason */
	PM_WIRE_E_NOPERM = 41,          /* the user has no right to this op, key or collection */
	PM_WIRE_E_INTERNAL = 255,       /* an internal error, or a result with no code */
};

/* The status's name ("NOT_FOUND", "E_DIM" …; the engine's pm_status_name()
 * gives the same names, checked by tests/test_codec.c); "E_UNKNOWN" for a
 * code that names none. */
const char *pm_wire_status_name(uint8_t code);

/* Whether a code names a status (a client maps the others to an internal error). */
bool pm_wire_status_known(uint8_t code);

/* ---------------------------------------------------------------- values */

/* Distance metrics (CCREATE, CLIST). */
enum pm_wire_metric {
	PM_WIRE_METRIC_L2 = 0,     /* squared Euclidean distance */
	PM_WIRE_METRIC_IP = 1,     /* 1 - dot(a, b) */
	PM_WIRE_METRIC_COSINE = 2, /* 1 - dot(a, b) / (|a| |b|) */
	PM_WIRE_METRIC_COUNT
};

/* Index kinds (CCREATE, CLIST). */
enum pm_wire_index {
	PM_WIRE_INDEX_FLAT = 0, /* exact scan */
	PM_WIRE_INDEX_HNSW = 1, /* approximate graph index */
	PM_WIRE_INDEX_COUNT
};

/* Vector element types: a collection's (CCREATE, CLIST) and a VGET reply's
 * (its values are f32 whatever the type; docs/protocol.md). */
enum pm_wire_dtype {
	PM_WIRE_DTYPE_F32 = 0,
	PM_WIRE_DTYPE_F16 = 1,
	PM_WIRE_DTYPE_Q8 = 2,  /* int8 with a per-vector scale */
	PM_WIRE_DTYPE_BIN = 3, /* one sign bit per component */
	PM_WIRE_DTYPE_COUNT
};
/* Re-rank candidates a CCREATE may ask for (the engine's PM_RERANK_K_MAX). */
#define PM_WIRE_RERANK_K_MAX 1024u

/* Collection flags (CCREATE's and CLIST's coll_flags byte). */
#define PM_WIRE_COLL_EVICTABLE 0x01u /* its vectors may be evicted under maxmemory */
#define PM_WIRE_COLL_FLAGS_ALL PM_WIRE_COLL_EVICTABLE

/* INFO request flags (a byte at the end of the body). */
#define PM_INFO_PAGED 0x01u /* the client collects a reply over several frames */
#define PM_INFO_FLAGS_ALL PM_INFO_PAGED

/* VRANGE reply flags (a byte before the hits of every frame). */
#define PM_WIRE_RANGE_TRUNCATED 0x01u /* more vectors were within the radius than
				       * the request's max: the max nearest are sent */

/* CLIST request flags (a byte at the end of the body), and so the entry
 * layout of its reply. */
#define PM_CLIST_COLL_FLAGS 0x01u /* each entry carries coll_flags */
#define PM_CLIST_DTYPE 0x02u      /* each entry carries dtype, rerank, rerank_k */
#define PM_CLIST_FLAGS_ALL (PM_CLIST_COLL_FLAGS | PM_CLIST_DTYPE)

/* ---------------------------------------------------------------- sanity */

_Static_assert(PM_FRAME_HEADER_BYTES + 4 + PM_WIRE_KEY_BYTES_MAX + 4 + PM_WIRE_VALUE_BYTES_MAX +
			       8 <=
		       PM_FRAME_BYTES_MAX,
	       "largest SET must fit one frame");
_Static_assert(PM_FRAME_HEADER_BYTES + 1 + 4 + PM_WIRE_KEY_BYTES_MAX + 4 + 4 * PM_WIRE_DIM_MAX +
			       8 + 4 + PM_WIRE_COLLECTION_NAME_BYTES_MAX <=
		       PM_FRAME_BYTES_MAX,
	       "largest vector add must fit one frame");
_Static_assert(PM_FRAME_HEADER_BYTES + 4 + 4 + PM_WIRE_KEY_BYTES_MAX + 4 <= PM_FRAME_BYTES_MAX,
	       "one KNN result must fit one reply frame");
_Static_assert(PM_FRAME_HEADER_BYTES + 4 + PM_WIRE_INFO_TEXT_BYTES_MAX <= PM_FRAME_BYTES_MAX,
	       "INFO text must fit one frame");
_Static_assert(PM_WIRE_EF_MAX >= PM_WIRE_K_MAX, "ef must be able to reach k");
_Static_assert(PM_WIRE_DIM_MAX <= UINT32_MAX / 4u, "dim * 4 fits 32 bits");
_Static_assert(PM_FRAME_BYTES_MAX <= UINT32_MAX, "frame sizes fit 32 bits");

#endif
