/* SPDX-License-Identifier: MIT
 *
 * pomai.h — libpomai, the C client of the Pomai key-value and vector store.
 *
 * A client talks to one pomaid over UDP (one socket; shard i listens on
 * base_port + i) or over one TCP connection (tcp_port, by default
 * base_port - 1). A third transport, UDP in Ethernet frames over a DPDK memif
 * shared-memory interface to a pomaid on the same machine, lives in the
 * separate library libpomai_memif (pomai_memif.h), so that programs which do
 * not use it do not link DPDK. Keys are routed to their shard with the server's hash
 * (XXH3-64 % shards, docs/protocol.md §2.1).
 *
 * Two ways to call it, usable together on one client:
 *  - synchronous calls (pm_client_set, pm_client_get, …) that return when the
 *    reply has arrived, the request timed out, or it failed;
 *  - pipelined calls: pm_client_submit() queues a request (several frames share
 *    one datagram per shard) and pm_client_poll() / pm_client_drain() deliver
 *    completions to the request's callback.
 *
 * Invariants: every request completes exactly once (callback or synchronous
 * return), after at most 1 + retries attempts over UDP or one deadline over TCP;
 * replies are matched by request id, and late or duplicate replies are dropped.
 * All memory is allocated by pm_client_open() and bounded by the configuration:
 * nothing grows afterwards. A client is not thread-safe: use one per thread.
 *
 * Cluster mode (cfg.cluster, docs/client.md "Cluster mode"): host and ports
 * name any node of a cluster (the seed); pm_client_open fetches the cluster's
 * slot map from it, and every keyed request goes to the primary (or, for
 * reads with PM_CLIENT_READ_REPLICA, a replica) of the replica set that owns
 * its key's hash slot, to the shard that node runs for it. A MOVED or
 * READONLY answer, a timeout or a lost connection fetches the map again
 * (from the seed first, then any node of the map) and retries the request
 * within its budget; a MOVED or READONLY whose refreshed map still names the
 * same node is retried after the back-off of a lost reply, so that the
 * budget spans a failover (docs/client.md). NOREPLICAS is not retried (the
 * client cannot tell whether the write was applied). KNN queries go to every
 * replica set and the client merges the nearest k. Memory stays bounded: a
 * node's socket and queues are made at its first use, for at most
 * PM_CLIENT_CLUSTER_NODES_MAX + 1 nodes.
 *
 * Byte strings (keys, values, collection names) are binary-safe: a pointer and
 * a length, no terminator. The synchronous helpers take collection names and
 * INFO sections as C strings for convenience; the pipelined request takes them
 * as bytes.
 */
#ifndef POMAI_CLIENT_POMAI_H
#define POMAI_CLIENT_POMAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- wire limits */

/* The limits of protocol version 1 (docs/protocol.md §8), for sizing buffers.
 * libpomai checks at compile time that they equal the wire's (proto/wire.h). */
#define PM_CLIENT_KEY_BYTES_MAX 1024u
#define PM_CLIENT_VALUE_BYTES_MAX 61440u
#define PM_CLIENT_DIM_MAX 4096u
#define PM_CLIENT_K_MAX 1024u
#define PM_CLIENT_EF_MAX 4096u
#define PM_CLIENT_COLLECTION_NAME_BYTES_MAX 64u
#define PM_CLIENT_INFO_SECTION_BYTES_MAX 32u
#define PM_CLIENT_INFO_TEXT_BYTES_MAX 8192u
/* Whole INFO text of a server with up to 32 shards (collected over several
 * frames: struct pm_client_text). */
#define PM_CLIENT_INFO_REPLY_BYTES_MAX (280u << 10)
#define PM_CLIENT_TTL_MS_MAX (UINT64_C(1) << 40)
#define PM_CLIENT_COLLECTIONS_MAX 256u
/* Attributes and filters (docs/protocol.md, "Attributes" and "Filter
 * expressions"): a vector's attribute record and a KNN filter's text. */
#define PM_CLIENT_ATTR_BYTES_MAX 512u
#define PM_CLIENT_ATTR_FIELDS_MAX 16u
#define PM_CLIENT_ATTR_NAME_BYTES_MAX 32u
#define PM_CLIENT_ATTR_TAG_BYTES_MAX 64u
#define PM_CLIENT_FILTER_BYTES_MAX 1024u
/* Key bytes a KNN result may need at most (every hit with a longest key). */
#define PM_CLIENT_KNN_KEY_BYTES_MAX ((size_t)PM_CLIENT_K_MAX * PM_CLIENT_KEY_BYTES_MAX)

/* ---------------------------------------------------------------- configuration */

#define PM_CLIENT_HOST_DEFAULT "127.0.0.1"
#define PM_CLIENT_BASE_PORT_DEFAULT 7700u
/* Shards a client can address: one sockaddr each, kept small on purpose. */
#define PM_CLIENT_SHARDS_MAX 1024u
/* First wait for a reply; each retry doubles it (plus up to 25 % jitter). */
#define PM_CLIENT_TIMEOUT_MS_DEFAULT 250u
#define PM_CLIENT_TIMEOUT_MS_MAX 60000u
/* Resends after the first attempt (UDP); over TCP the one attempt gets
 * timeout_ms * (1 + retries). Bounded so a request cannot wait for hours. */
#define PM_CLIENT_RETRIES_DEFAULT 3u
#define PM_CLIENT_RETRIES_MAX 10u
/* Requests outstanding at once (each holds a frame buffer of frame_bytes). */
#define PM_CLIENT_IN_FLIGHT_DEFAULT 256u
#define PM_CLIENT_IN_FLIGHT_MAX 16384u
/* Frame buffer per in-flight request: holds a SET of ~8 KB or a VADD of ~2000
 * dimensions. Larger requests take one of PM_CLIENT_LARGE_SLOTS buffers of the
 * largest frame size (65507 bytes). */
#define PM_CLIENT_FRAME_BYTES_DEFAULT 8192u
#define PM_CLIENT_FRAME_BYTES_MIN 256u
/* Issue 20 (docs/protocol.md §2): the frames queued for one shard share UDP
 * datagrams. pack_bytes (below) bounds a datagram's frames; 0 takes the
 * default: PM_CLIENT_PACK_LOOPBACK_BYTES to a server on loopback (no MTU
 * there; UDP's largest payload less a cookie frame's 48 bytes),
 * PM_CLIENT_PACK_PATH_BYTES to any other (an Ethernet path MTU less headers
 * and tunnel headroom, so a datagram is never fragmented), a memif port's
 * MTU less its headers. A frame larger than the bound goes alone. */
#define PM_CLIENT_PACK_LOOPBACK_BYTES 65459u
#define PM_CLIENT_PACK_PATH_BYTES 1400u
#define PM_CLIENT_PACK_BYTES_MIN 256u
/* How long a queued frame may wait for others to share its datagram
 * (pack_flush_us, below; 0 takes the default): a submit that finds the
 * shard's oldest queued frame this old sends the queue first.
 * pm_client_poll, pm_client_flush, a full datagram and the blocking calls
 * send at once; this bounds the wait of a caller that submits, then works
 * without polling (its last frames leave at its next submit or poll). */
#define PM_CLIENT_PACK_FLUSH_US 100u
#define PM_CLIENT_PACK_FLUSH_US_MAX 1000000u
/* spin_us (below): the longest pm_client_poll reads its sockets without
 * sleeping before it waits in poll(2) — a low-latency client's choice on a
 * core of its own (a sleeping wait costs a wake-up per reply); 0: never. */
#define PM_CLIENT_SPIN_US_MAX 1000000u
#define PM_CLIENT_LARGE_SLOTS 4u

enum pm_client_transport {
	PM_CLIENT_UDP = 0, /* one datagram socket, retries on timeout */
	PM_CLIENT_TCP = 1, /* one stream to tcp_port, no resends */
	/* UDP over a DPDK memif port, kernel bypassed; behaves as UDP (routing,
	 * batching, retries). Opened only by pm_client_memif_open() of
	 * libpomai_memif (pomai_memif.h); pm_client_open() refuses it. */
	PM_CLIENT_MEMIF = 2,
};

/* Cluster mode: where reads (GET, VGET, KNN) go. */
enum pm_client_read_from {
	PM_CLIENT_READ_PRIMARY = 0, /* the set's primary: a read sees every acknowledged write */
	PM_CLIENT_READ_REPLICA = 1, /* a replica of the set, round robin (its primary if it has
				       none): spreads reads, which may lag the primary */
};

/* A user's key (pm_client_config.key): 32 bytes. */
#define PM_CLIENT_USER_KEY_BYTES 32u

struct pm_client_config {
	const char *host;        /* IPv4 address ("localhost" is 127.0.0.1); NULL: default */
	uint32_t base_port;      /* shard i is on UDP base_port + i */
	uint32_t shards;         /* shards the server runs (1 is always correct, but slower) */
	enum pm_client_transport transport;
	uint32_t tcp_port;       /* the server's TCP port; 0: base_port - 1 (its default) */
	uint32_t timeout_ms;     /* first attempt's wait, 1..PM_CLIENT_TIMEOUT_MS_MAX */
	uint32_t retries;        /* 0..PM_CLIENT_RETRIES_MAX */
	uint32_t max_in_flight;  /* 1..PM_CLIENT_IN_FLIGHT_MAX */
	uint32_t frame_bytes;    /* PM_CLIENT_FRAME_BYTES_MIN..65507; 0: default */
	/* Appended for the cluster (a zeroed field keeps the behaviour from before). */
	bool cluster;            /* host/base_port/tcp_port name a node of a cluster (the
				    seed); shards is ignored: the map gives each node's */
	uint8_t read_from;       /* cluster: enum pm_client_read_from */
	/* Issue 19 (docs/security.md): a user of the server (1..65535; 0: none)
	 * and its key, as `pomaictl user add` printed it. Every frame is then
	 * signed with it (over TCP the stream proves it once); in cluster mode
	 * every node's frames and streams too (docs/client.md). */
	uint32_t user;
	uint8_t key[PM_CLIENT_USER_KEY_BYTES];
	/* Issue 20 (docs/client.md): a KNN over a server of 2..64 shards, over
	 * UDP sockets without a user, goes to every shard at once, each answering
	 * its own part, and the client merges them (false, the default), or to
	 * one shard that asks the others and merges (true: one datagram each way;
	 * what every other case does). */
	bool knn_via_server;
	/* Issue 20: bytes of frames one UDP or memif datagram may carry
	 * (PM_CLIENT_PACK_BYTES_MIN..PM_CLIENT_PACK_LOOPBACK_BYTES); 0: the
	 * path's default (PM_CLIENT_PACK_*). */
	uint32_t pack_bytes;
	/* Issue 20: the longest a queued frame waits at a submit for others to
	 * share its datagram, 1..PM_CLIENT_PACK_FLUSH_US_MAX; 0: the default
	 * (PM_CLIENT_PACK_FLUSH_US). */
	uint32_t pack_flush_us;
	/* Issue 20: UDP and TCP sockets: how long pm_client_poll (and so every
	 * blocking call) goes on reading without sleeping, while requests are
	 * in flight and none has completed, before it sleeps in poll(2);
	 * 0..PM_CLIENT_SPIN_US_MAX, 0 (the default): it sleeps at once. memif
	 * always polls. */
	uint32_t spin_us;
};

/* ---------------------------------------------------------------- results */

enum pm_client_status {
	PM_CLIENT_OK = 0,
	PM_CLIENT_NOT_FOUND,          /* key or collection absent, or expired */
	/* The server's answers (docs/protocol.md §7). */
	PM_CLIENT_E_WRONGTYPE,        /* key holds the other kind (KV vs vector) */
	PM_CLIENT_E_SERVER_NOMEM,     /* the shard's memory is full */
	PM_CLIENT_E_EXISTS,           /* collection exists with other parameters */
	PM_CLIENT_E_KEY_LEN,          /* key empty or above PM_CLIENT_KEY_BYTES_MAX */
	PM_CLIENT_E_VALUE_LEN,        /* value above PM_CLIENT_VALUE_BYTES_MAX */
	PM_CLIENT_E_DIM,              /* dimension 0, too large, or not the collection's */
	PM_CLIENT_E_NAN,              /* a vector component is NaN or infinite */
	PM_CLIENT_E_ZERO_VECTOR,      /* all-zero vector in a cosine collection */
	PM_CLIENT_E_K,                /* k is 0 or above PM_CLIENT_K_MAX */
	PM_CLIENT_E_EF,               /* ef above PM_CLIENT_EF_MAX or below k */
	PM_CLIENT_E_TTL,              /* TTL above PM_CLIENT_TTL_MS_MAX */
	PM_CLIENT_E_COLLECTION_NAME,  /* collection name empty or too long */
	PM_CLIENT_E_COLLECTIONS_FULL, /* the server has its maximum of collections */
	PM_CLIENT_E_PARAM,            /* metric, index, HNSW parameter or section invalid;
				         SNAPSHOT: the server's log is off (wal = none) */
	PM_CLIENT_E_DTYPE,            /* vector element type not supported */
	PM_CLIENT_E_FRAME,            /* the server could not decode the frame */
	PM_CLIENT_E_SERVER_TIMEOUT,   /* a shard did not answer the server's fan-out */
	PM_CLIENT_E_BUSY,             /* the server was busy through every attempt */
	PM_CLIENT_E_DISK_FULL,        /* the shard's log disk is full: writes refused, reads work */
	PM_CLIENT_E_LOG_FAILED,       /* the shard's log failed (I/O error): writes refused */
	PM_CLIENT_E_SERVER,           /* internal or unknown server error */
	/* The client's own. */
	PM_CLIENT_E_TIMEOUT,          /* no complete reply after every attempt */
	PM_CLIENT_E_CONNECTION,       /* socket error, or the TCP connection was lost */
	PM_CLIENT_E_CONFIG,           /* invalid configuration (pm_client_config_check) */
	PM_CLIENT_E_ARG,              /* invalid argument (NULL pointer, missing field) */
	PM_CLIENT_E_NOSPACE,          /* the result does not fit the caller's buffer */
	PM_CLIENT_E_PROTOCOL,         /* the server's reply broke the protocol */
	PM_CLIENT_E_WOULD_BLOCK,      /* every slot is in flight and waiting is not allowed */
	PM_CLIENT_E_ALLOC,            /* pm_client_open could not allocate */
	/* Server answers added later (appended, so that no value above changes). */
	PM_CLIENT_E_THROTTLED,        /* over this client's quota; nothing was done. Retry after
					 the server's hint: result.retry_ms, pm_client_retry_ms() */
	PM_CLIENT_E_QUOTA,            /* the collection is at its byte cap on that shard */
	PM_CLIENT_E_WORK_LIMIT,       /* a KNN query past the server's per-shard work cap
					 (knn_work_bytes_max): smaller k / ef, or not exact */
	PM_CLIENT_E_READONLY,         /* a write sent to a replica; nothing was done. The primary
					 it follows: pm_client_primary() */
	PM_CLIENT_E_NOREPLICAS,       /* fewer replicas than the server's min_replicas confirmed
					 the write (docs/replication.md says what was done) */
	PM_CLIENT_E_MOVED,            /* the key's slot belongs to another replica set. Cluster
					 mode: the retry budget ran out while following MOVED
					 (the nodes' maps disagree for that long); otherwise the
					 server is a cluster node: open the client in cluster mode */
	PM_CLIENT_E_FILTER,           /* a filter expression is malformed or over its bounds
					 (docs/protocol.md, "Filter expressions") */
	PM_CLIENT_E_ATTR,             /* an attribute record is malformed or over its bounds */
	PM_CLIENT_E_BATCH,            /* issue 18: a batch of 0 items or above
					 PM_CLIENT_BATCH_ITEMS_MAX, or its k summed above
					 PM_CLIENT_K_MAX (pm_client_knn_many) */
	PM_CLIENT_E_RETRY,            /* issue 19: the server answered RETRY twice in a row (its
					 cookie was refused again: a NAT changing the client's
					 address, or a server restarting); one RETRY is handled
					 inside the library and never seen */
	PM_CLIENT_E_AUTH,             /* issue 19: the server wants a user (auth = on), or
					 refused this one's (unknown, wrong key, replay, clock) */
	PM_CLIENT_E_NOPERM,           /* the user may not do this op on this key or collection */
	PM_CLIENT_STATUS_COUNT
};

/* One sentence saying what happened; never NULL. */
const char *pm_client_strerror(enum pm_client_status st);
/* Short stable name ("NOT_FOUND", "E_TIMEOUT", …); never NULL. */
const char *pm_client_status_name(enum pm_client_status st);

/* ---------------------------------------------------------------- data types */

enum pm_client_op {
	PM_CLIENT_SET = 1,
	PM_CLIENT_GET,
	PM_CLIENT_DEL,
	PM_CLIENT_INFO,
	PM_CLIENT_VADD,
	PM_CLIENT_VGET,
	PM_CLIENT_VDEL,
	PM_CLIENT_KNN,
	PM_CLIENT_CCREATE,
	PM_CLIENT_CDROP,
	PM_CLIENT_CLIST,
	PM_CLIENT_SNAPSHOT,
	PM_CLIENT_VSETATTR = 14, /* replace a vector's attribute record */
	/* issue 18: batches and range search (their wire op numbers; 13 is the
	 * cluster map's, not a client op) */
	PM_CLIENT_VADD_MANY = 15,
	PM_CLIENT_KNN_MANY,
	PM_CLIENT_RANGE,
};

/* Items of one batch (pm_client_vadd_many, pm_client_knn_many): the server's
 * bound; the items must also fit one frame together. */
#define PM_CLIENT_BATCH_ITEMS_MAX 512u

/* One item of a batch: a vector to add under key (with its attribute
 * record, optional), or a query (key and record unused). */
struct pm_client_item {
	const void *key;
	uint32_t klen;
	const float *vec;
	uint32_t dim;
	const void *attr;  /* VADD_MANY: an attribute record (struct pm_client_attr), or NULL */
	uint32_t attr_len; /* 0: the vector keeps the record it has */
};

/* What a batch or a range search gives back besides its hits (caller's
 * memory, must outlive the request). */
struct pm_client_batch_result {
	enum pm_client_status *status; /* VADD_MANY: one per item, the item's own result */
	uint32_t *query;               /* KNN_MANY: knn->hits_cap entries: query[i] is the
					  index of the query whose hit knn->hits[i] is */
	bool truncated;                /* RANGE, out: more vectors were within the radius
					  than k; the k nearest were sent */
};

enum pm_client_metric { PM_CLIENT_L2 = 0, PM_CLIENT_IP = 1, PM_CLIENT_COSINE = 2 };
enum pm_client_index { PM_CLIENT_FLAT = 0, PM_CLIENT_HNSW = 1 };
/* A collection's element type: how the server stores its vectors (vectors
 * are sent and returned as f32 whatever the type; docs/protocol.md). */
enum pm_client_dtype {
	PM_CLIENT_F32 = 0,
	PM_CLIENT_F16 = 1,
	PM_CLIENT_Q8 = 2,  /* int8 with a per-vector scale */
	PM_CLIENT_BIN = 3, /* one sign bit per component */
};
/* Re-rank candidates a collection may ask for. */
#define PM_CLIENT_RERANK_K_MAX 1024u

struct pm_client_coll_params {
	uint32_t dim;             /* 1..PM_CLIENT_DIM_MAX */
	uint8_t metric;           /* enum pm_client_metric */
	uint8_t index;            /* enum pm_client_index */
	uint16_t hnsw_m;          /* 0: server default */
	uint32_t ef_construction; /* 0: server default */
	uint32_t ef_search;       /* 0: server default */
	bool evictable;           /* its vectors may be evicted when a shard reaches its
				   * maxmemory (policy harvest or random); default no */
	/* added with element types (the struct grew here: rebuild against this header) */
	uint8_t dtype;            /* enum pm_client_dtype; 0: f32 */
	bool rerank;              /* keep the f32 too and re-rank the best candidates by it
				   * (not for f32) */
	uint32_t rerank_k;        /* candidates re-ranked, 0..PM_CLIENT_RERANK_K_MAX; 0:
				   * the server's default when rerank */
};

struct pm_client_coll_info {
	uint8_t name[PM_CLIENT_COLLECTION_NAME_BYTES_MAX];
	uint32_t name_len; /* 0: the default collection of its dimension */
	struct pm_client_coll_params params;
	uint64_t count;    /* vectors */
	uint64_t bytes;    /* server memory of their blobs */
};

/* Where a collection list goes (caller's memory). */
struct pm_client_coll_list {
	struct pm_client_coll_info *items;
	uint32_t cap;   /* entries items can hold; PM_CLIENT_COLLECTIONS_MAX always suffices */
	uint32_t count; /* out */
};

struct pm_client_hit {
	const uint8_t *key; /* into the result's keys buffer */
	uint32_t klen;
	float dist;         /* the metric's distance; smaller is nearer */
};

/* Where KNN hits go (caller's memory), nearest first. */
struct pm_client_knn_result {
	struct pm_client_hit *hits;
	uint32_t hits_cap;  /* must be >= k */
	uint8_t *keys;      /* key bytes of the hits */
	size_t keys_cap;    /* PM_CLIENT_KNN_KEY_BYTES_MAX always suffices */
	uint32_t count;     /* out: hits */
	size_t keys_used;   /* out: bytes of keys used */
};

/* Where an INFO text goes (caller's memory). The server's reply may take
 * several frames; they are collected here. PM_CLIENT_INFO_REPLY_BYTES_MAX
 * always suffices. */
struct pm_client_text {
	char *buf;          /* not NUL-terminated */
	size_t cap;
	size_t len;         /* out: bytes received */
};

/* A vector read back (caller's memory). */
struct pm_client_vector {
	float *vec;
	uint32_t cap;       /* floats vec can hold */
	uint32_t dim;       /* out; set even when it exceeds cap (E_NOSPACE) */
	uint8_t collection[PM_CLIENT_COLLECTION_NAME_BYTES_MAX];
	uint32_t collection_len; /* out; 0: the default collection */
	uint8_t dtype;      /* out: the collection's element type (enum pm_client_dtype);
			     * vec holds f32 either way, decoded from its codes */
	uint8_t attr[PM_CLIENT_ATTR_BYTES_MAX]; /* out: its attribute record */
	uint32_t attr_len;       /* out; 0: none (read it with pm_client_attr_next) */
};

/* ---------------------------------------------------------------- pipelined API */

/* What a completed request delivers to its callback. Pointers are valid only
 * during the callback. */
struct pm_client_result {
	enum pm_client_status status;
	enum pm_client_op op;
	uint64_t id;
	uint32_t attempts;          /* sends of this request (1 + resends) */
	const uint8_t *value;       /* GET value, INFO text */
	uint32_t vlen;
	const float *vec;           /* VGET */
	uint32_t dim;
	const uint8_t *collection;  /* VGET: the vector's collection (len 0: default) */
	uint32_t collection_len;
	uint8_t dtype;              /* VGET: the collection's element type */
	bool removed;               /* DEL, VDEL, CDROP: something was removed */
	struct pm_client_knn_result *knn;   /* KNN: the request's result, filled */
	struct pm_client_coll_list *colls;  /* CLIST: idem */
	struct pm_client_text *info;        /* INFO with a text buffer: idem */
	uint32_t retry_ms;          /* E_THROTTLED: ms until the server admits this client's
				       requests again (its hint; 0: none) */
	const uint8_t *attr;        /* VGET: the vector's attribute record (len 0: none) */
	uint32_t attr_len;
};

typedef void (*pm_client_cb)(void *arg, const struct pm_client_result *res);

/* One request. Every pointer except knn / colls / arg only needs to be valid
 * during pm_client_submit() (the frame is encoded at once). */
struct pm_client_req {
	enum pm_client_op op;
	const void *key;        /* SET GET DEL VADD VGET VDEL */
	uint32_t klen;
	const void *value;      /* SET */
	uint32_t vlen;
	const float *vec;       /* VADD, KNN: dim floats */
	uint32_t dim;
	const void *name;       /* collection (VADD, KNN: optional; CCREATE, CDROP);
				   INFO: section (optional) */
	uint32_t name_len;
	uint64_t ttl_ms;        /* SET, VADD: 0 = no expiry */
	uint32_t k;             /* KNN */
	uint32_t ef;            /* KNN: 0 = collection default */
	bool exact;             /* KNN: exact (flat) search */
	struct pm_client_coll_params params;  /* CCREATE */
	struct pm_client_knn_result *knn;     /* KNN: must outlive the request */
	struct pm_client_coll_list *colls;    /* CLIST: must outlive the request */
	struct pm_client_text *info;          /* INFO: must outlive the request; the whole
						 text is collected here (res.value points
						 to it). NULL: the server sends one frame of
						 at most PM_CLIENT_INFO_TEXT_BYTES_MAX (cut at
						 a whole line), res.value points into it */
	pm_client_cb cb;        /* may be NULL */
	void *arg;
	/* Appended for attributes and filters. */
	const void *attr;       /* VADD (optional: 0 bytes keeps the vector's record),
				   VSETATTR: an attribute record (struct pm_client_attr) */
	uint32_t attr_len;
	const char *filter;     /* KNN, KNN_MANY (every query), RANGE: a filter expression,
				   NULL or "" for none */
	/* issue 18. VADD_MANY: nitems items (key, vec); name and ttl_ms apply to
	 * every one. KNN_MANY: nitems queries (vec); k, ef, exact, name apply to
	 * every one; knn gets all hits, query by query. RANGE: vec, dim, radius;
	 * k is the most hits; knn gets them. Not in cluster mode (E_ARG). */
	const struct pm_client_item *items;
	uint32_t nitems;
	float radius;
	struct pm_client_batch_result *batch; /* VADD_MANY, KNN_MANY, RANGE */
};

struct pm_client;

struct pm_client_stats {
	uint64_t requests;      /* submitted */
	uint64_t completed;
	uint64_t datagrams_out; /* UDP datagrams sent (TCP: writes) */
	uint64_t frames_out;    /* frames sent, resends included */
	uint64_t frames_in;     /* reply frames received */
	uint64_t resends;       /* retries after a timeout, a gap or BUSY */
	uint64_t timeouts;      /* requests completed with E_TIMEOUT */
	uint64_t stale;         /* replies matching no request: late or duplicate */
	uint64_t page_gaps;     /* paged replies restarted because a page was missing */
	/* Appended for the cluster. */
	uint64_t moved;         /* MOVED replies received */
	uint64_t map_refreshes; /* maps received (the bootstrap's too), newer or not */
	uint64_t maps_stale;    /* maps ignored: their epoch was lower than the one held */
	/* Appended for issue 19. */
	uint64_t cookies;       /* RETRY replies received: a cookie stored, the request resent
				   at once (not counted in resends) */
	/* Appended for issue 20. */
	uint64_t spin_answered; /* polls a reply answered while spinning (spin_us), no sleep */
};

/* Fills *cfg with the defaults (127.0.0.1:7700, 1 shard, UDP, 250 ms, 3 retries). */
void pm_client_config_default(struct pm_client_config *cfg);

/* PM_CLIENT_OK, or PM_CLIENT_E_CONFIG with *why (if why) set to a sentence
 * naming the field and its allowed range. */
enum pm_client_status pm_client_config_check(const struct pm_client_config *cfg,
					     const char **why);

/* Check cfg, allocate everything, open the socket (TCP: connect within
 * timeout_ms). E_CONFIG, E_ALLOC or E_CONNECTION on failure (*out = NULL).
 * PM_CLIENT_MEMIF is E_CONFIG here: use pm_client_memif_open(). */
enum pm_client_status pm_client_open(const struct pm_client_config *cfg, struct pm_client **out);

/* Close the socket and free everything. Requests still in flight are dropped
 * without their callbacks (call pm_client_drain first to finish them). */
void pm_client_close(struct pm_client *c);

/* Queue one request. Argument errors are returned at once (and the callback
 * is not called). When every slot is in flight, waits for one by polling
 * (callbacks of other requests run meanwhile); inside a callback it returns
 * E_WOULD_BLOCK instead. *id (if id) receives the request id. */
enum pm_client_status pm_client_submit(struct pm_client *c, const struct pm_client_req *req,
				       uint64_t *id);

/* Send every queued frame now (submit batches them into datagrams). */
void pm_client_flush(struct pm_client *c);

/* Flush, wait up to wait_ms for replies, handle timeouts and retries, and run
 * the callbacks of completed requests. Returns how many completed. */
uint32_t pm_client_poll(struct pm_client *c, uint32_t wait_ms);

/* Poll until no request is in flight (each one ends by its deadline). */
void pm_client_drain(struct pm_client *c);

/* Requests submitted and not yet completed. */
uint32_t pm_client_in_flight(const struct pm_client *c);

void pm_client_stats(const struct pm_client *c, struct pm_client_stats *out);

/* The server's retry hint (milliseconds) of the last request that completed
 * with E_THROTTLED, for the synchronous calls; 0 before any. libpomai does
 * not retry a throttled request itself: the quota is the operator's policy,
 * and the caller decides whether to wait, shed or slow down. */
uint32_t pm_client_retry_ms(const struct pm_client *c);

/* The primary named by the last E_READONLY completion, as
 * "a.b.c.d:UDP/udp,TCP/tcp" into out (cap bytes): 0, or -1 when none was
 * named (the replica did not know its primary yet) or out is too small.
 * libpomai does not redirect writes itself: which node to write to is the
 * caller's (or, in a cluster, the slot map's) choice. */
int pm_client_primary(const struct pm_client *c, char *out, size_t cap);

/* The shard that owns a key (what the client routes by; cluster mode: the
 * shard of the node that takes its writes now, 0 if none). */
uint32_t pm_client_shard_of(const struct pm_client *c, const void *key, size_t klen);

/* ---------------------------------------------------------------- cluster */

/* The bounds of a cluster's slot map (proto/cluster_map.h). */
#define PM_CLIENT_CLUSTER_SLOTS 16384u
#define PM_CLIENT_CLUSTER_SETS_MAX 64u
#define PM_CLIENT_CLUSTER_NODES_MAX 128u
#define PM_CLIENT_CLUSTER_RANGES_MAX 512u
#define PM_CLIENT_CLUSTER_NONE 0xFFFFu /* no node */

/* The epoch of the slot map the client routes by (it only grows); 0 when
 * not in cluster mode. */
uint64_t pm_client_map_epoch(const struct pm_client *c);

/* A copy of the slot map (pomai-cli --cluster map prints it). */
struct pm_client_map_node {
	uint32_t addr_be;         /* IPv4, network order */
	uint16_t udp_port;        /* base UDP port: shard i on udp_port + i */
	uint16_t tcp_port;        /* 0: none */
	uint16_t set;             /* index into sets */
	uint8_t shards;
	bool primary;             /* its set's primary */
};
struct pm_client_map_set {
	uint64_t epoch;           /* replication epoch of its primary */
	uint16_t primary;         /* node index, PM_CLIENT_CLUSTER_NONE: none now */
};
struct pm_client_map_range {
	uint16_t first, last;     /* slots first..last (inclusive) */
	uint16_t set;
};
struct pm_client_map {
	uint64_t epoch;
	uint16_t nsets, nnodes, nranges;
	uint16_t answered;        /* the node that sent it (PM_CLIENT_CLUSTER_NONE: a
				     node outside it, the seed) */
	struct pm_client_map_set sets[PM_CLIENT_CLUSTER_SETS_MAX];
	struct pm_client_map_node nodes[PM_CLIENT_CLUSTER_NODES_MAX];
	struct pm_client_map_range ranges[PM_CLIENT_CLUSTER_RANGES_MAX];
};

/* Copy the map held into *out: OK, or E_ARG when c is not in cluster mode. */
enum pm_client_status pm_client_map(const struct pm_client *c, struct pm_client_map *out);

/* ---------------------------------------------------------------- synchronous API */

/* Each call submits one request and waits for its completion; other pipelined
 * requests progress meanwhile. Not callable from a callback (E_WOULD_BLOCK). */

enum pm_client_status pm_client_set(struct pm_client *c, const void *key, size_t klen,
				    const void *val, size_t vlen, uint64_t ttl_ms);

/* Copies the value into buf; *vlen gets its length (also when it exceeds cap:
 * E_NOSPACE, nothing copied). */
enum pm_client_status pm_client_get(struct pm_client *c, const void *key, size_t klen,
				    void *buf, size_t cap, size_t *vlen);

/* *removed (if removed) tells whether the key existed. */
enum pm_client_status pm_client_del(struct pm_client *c, const void *key, size_t klen,
				    bool *removed);

/* collection: NULL or "" for the default collection of the vector's dimension. */
enum pm_client_status pm_client_vadd(struct pm_client *c, const void *key, size_t klen,
				     const float *vec, uint32_t dim, const char *collection,
				     uint64_t ttl_ms);

enum pm_client_status pm_client_vget(struct pm_client *c, const void *key, size_t klen,
				     struct pm_client_vector *out);

enum pm_client_status pm_client_vdel(struct pm_client *c, const void *key, size_t klen,
				     bool *removed);

struct pm_client_knn_opts {
	uint32_t k;             /* neighbours wanted, 1..PM_CLIENT_K_MAX */
	uint32_t ef;            /* 0: collection default */
	bool exact;
	const char *collection; /* NULL or "": default collection of dim */
	const char *filter;     /* NULL or "": none; else only vectors whose attributes pass
				   it (docs/protocol.md, "Filter expressions") */
};

/* res->hits_cap must be >= k; res->count and res->keys_used are set. */
enum pm_client_status pm_client_knn(struct pm_client *c, const float *vec, uint32_t dim,
				    const struct pm_client_knn_opts *opts,
				    struct pm_client_knn_result *res);

/* ---------------------------------------------------------------- attributes */

/* An attribute record under construction: numeric (f64) and tag (bytes)
 * fields, within PM_CLIENT_ATTR_* (a name is [A-Za-z_][A-Za-z0-9_]*, once
 * per record). A field that breaks a bound is refused E_ATTR and leaves the
 * record as it was. An initialised record with no fields is the empty one:
 * VSETATTR with it removes a vector's record. */
struct pm_client_attr {
	uint8_t buf[PM_CLIENT_ATTR_BYTES_MAX];
	uint32_t len;
};
void pm_client_attr_init(struct pm_client_attr *a);
enum pm_client_status pm_client_attr_num(struct pm_client_attr *a, const char *name, double v);
enum pm_client_status pm_client_attr_tag(struct pm_client_attr *a, const char *name,
					 const void *tag, size_t tag_len);

/* One field of a record read back (VGET). */
struct pm_client_attr_field {
	const char *name;       /* not NUL-terminated */
	uint32_t name_len;
	bool is_tag;
	double num;             /* !is_tag */
	const uint8_t *tag;     /* is_tag */
	uint32_t tag_len;
};
/* The field at *pos of the record rec[0, len) (start with *pos = 0); false
 * after the last one or at a malformed byte. */
bool pm_client_attr_next(const uint8_t *rec, uint32_t len, uint32_t *pos,
			 struct pm_client_attr_field *f);

/* pm_client_vadd that also gives the vector the record attr (replacing its
 * record; attr NULL: keep the one it has). */
enum pm_client_status pm_client_vadd_attr(struct pm_client *c, const void *key, size_t klen,
					  const float *vec, uint32_t dim, const char *collection,
					  uint64_t ttl_ms, const struct pm_client_attr *attr);
/* Replace the attribute record of key's vector (NOT_FOUND: no vector). */
enum pm_client_status pm_client_vsetattr(struct pm_client *c, const void *key, size_t klen,
					 const struct pm_client_attr *attr);

enum pm_client_status pm_client_collection_create(struct pm_client *c, const char *name,
						  const struct pm_client_coll_params *params);

enum pm_client_status pm_client_collection_drop(struct pm_client *c, const char *name,
						bool *removed);

enum pm_client_status pm_client_collection_list(struct pm_client *c,
						struct pm_client_coll_list *out);

/* section: NULL for every section. Copies the whole text into buf (not
 * terminated; it may take several reply frames); *len gets the bytes received
 * (E_NOSPACE when the text exceeds cap; PM_CLIENT_INFO_REPLY_BYTES_MAX always
 * suffices). */
enum pm_client_status pm_client_info(struct pm_client *c, const char *section, char *buf,
				     size_t cap, size_t *len);

/* Issue 18. Add n vectors in one frame (a bulk load): items' key, vec, dim;
 * collection NULL or "" for each vector's default collection; ttl_ms for all
 * (0: none). OK when the server answered the batch: status[i] is then item
 * i's own result (one bad item fails alone). Otherwise the batch's failure,
 * nothing known of the items (E_BATCH: n is 0 or above
 * PM_CLIENT_BATCH_ITEMS_MAX; E_ARG: the items do not fit one frame). */
enum pm_client_status pm_client_vadd_many(struct pm_client *c, const struct pm_client_item *items,
					  uint32_t n, const char *collection, uint64_t ttl_ms,
					  enum pm_client_status *status);

/* The k nearest of each of n query vectors (items' vec, dim), in one frame.
 * res gets every query's hits, query 0's first, each query's nearest first;
 * query[i] says whose res->hits[i] is. res->hits_cap must be >= n x k and
 * n x k at most PM_CLIENT_K_MAX (else E_BATCH). The same answers as n
 * pm_client_knn() calls. */
enum pm_client_status pm_client_knn_many(struct pm_client *c, const struct pm_client_item *queries,
					 uint32_t n, const struct pm_client_knn_opts *opts,
					 struct pm_client_knn_result *res, uint32_t *query);

/* Every vector within radius of vec (the metric's distance: squared L2,
 * 1 - dot, 1 - cosine), nearest first, at most opts->k of them (1..
 * PM_CLIENT_K_MAX); *truncated (may be NULL) when more were within. Exact on
 * flat collections (and with opts->exact), approximate through an HNSW graph. */
enum pm_client_status pm_client_vrange(struct pm_client *c, const float *vec, uint32_t dim,
				       float radius, const struct pm_client_knn_opts *opts,
				       struct pm_client_knn_result *res, bool *truncated);

/* Ask every shard of the server to start a snapshot. OK: one was started on
 * every shard, or was already running there; it completes in the background
 * (the call does not wait for it). E_PARAM: the server's write-ahead log is
 * off (wal = none), and snapshots need it. Otherwise the first failure of a
 * shard (E_SERVER_TIMEOUT when one did not answer in time). */
enum pm_client_status pm_client_snapshot(struct pm_client *c);

#ifdef __cplusplus
}
#endif

#endif
