/* SPDX-License-Identifier: MIT
 *
 * worker.h — pomaid's workers: one per shard, pinned to its own core, owning
 * its shard outright. A worker reaches another only through the SPSC ring that
 * joins them (msg.h, ring.h); nothing on the data path locks. And the daemon
 * that holds them: its configuration, the rings, and what the workers share
 * read-only once they run.
 *
 * The backend boundary (backend.h: the operations, w->be): a backend
 * delivers bursts of datagrams (each holding one or more frames, with the
 * sender's address) to a worker — rx_ptr, rx_len, rx_from — and takes bursts
 * of reply datagrams from its pm_tx queue. The kernel backend (udp.c) does
 * this with recvmmsg / sendmmsg on one UDP socket per worker; the DPDK backend
 * (dpdk.h) points rx_ptr into the mbufs it received and turns pm_tx entries
 * into Ethernet/IPv4/UDP frames.
 */
#ifndef POMAI_DATAPLANE_WORKER_H
#define POMAI_DATAPLANE_WORKER_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "access.h"
#include "config.h"
#include "dp_limits.h"
#include "fanout.h"
#include "guard.h"
#include "msg.h"
#include "shard.h"
#include "stats.h"
#include "wire.h"

/* Reply datagrams waiting for the backend (sendmmsg, or DPDK's TX burst). */
struct pm_tx {
	uint32_t n;      /* datagrams queued */
	uint32_t bytes;  /* bytes used in buf */
	struct sockaddr_in to[PM_TX_BURST];
	uint32_t port[PM_TX_BURST]; /* DPDK port, or PM_PORT_KERNEL */
	uint32_t off[PM_TX_BURST], len[PM_TX_BURST];
	uint8_t *buf;    /* PM_TX_BYTES */
};

/* KNN latency histogram (INFO knn_latency_us_lt_*): log2 buckets of
 * microseconds, [i] counting latencies < 2^i us, the last all longer too. */
#define PM_KNN_LATENCY_BUCKETS 16u

struct pm_worker_stats {
	uint64_t rx_datagrams, rx_frames, tx_datagrams, tx_errors;
	uint64_t forwarded_out, forwarded_in;
	uint64_t dropped_malformed;   /* datagrams whose header could not be read */
	uint64_t dropped_ring_full;   /* forwards / fan-outs that found a ring full */
	uint64_t dropped_tx_full;     /* replies that found the TX queue full */
	uint64_t fanouts, fanout_timeouts;
	uint64_t fanout_rollbacks;     /* failed CCREATEs undone on the shards that made them */
	uint64_t fanout_rollback_lost; /* ... whose CDROP could not be posted (ring full) */
	uint64_t tcp_accepted, tcp_closed, tcp_refused, tcp_stalled;
	uint64_t tcp_idle_evicted;      /* idle connections closed for a new one (full table) */
	uint64_t tcp_frame_deadline;    /* connections closed: a frame not whole in tcp_frame_ms */
	uint64_t tcp_addr_refused;      /* connections refused: their address at tcp_conns_per_addr */
	uint64_t tcp_buffer_evicted;    /* connections closed, stalest first, over tcp_buffer_bytes */
	uint64_t tcp_ring_waits;        /* TCP frames that waited for ring room or reply credit */
	uint64_t tcp_replies_held;      /* replies for a connection elsewhere that waited for ring room */
	uint64_t dropped_not_allowed;   /* datagrams and connections from outside allow_networks */
	uint64_t dropped_reply;         /* reply frames received: never answered (protocol §6.5) */
	uint64_t dropped_self;          /* datagrams claiming one of this daemon's own UDP sources */
	uint64_t throttled_requests;    /* frames answered THROTTLED (over the client's quota) */
	uint64_t collection_bytes_refused; /* VADDs answered QUOTA (collection_bytes_max) */
	uint64_t knn_parts_refused;   /* KNN parts answered BUSY: every part slot was taken */
	uint64_t knn_parts_shed;      /* KNN parts answered BUSY: the queue ahead would outlast
				       * their deadline */
	uint64_t knn_parts_expired;   /* KNN parts dropped unfinished at their fan-out's deadline */
	uint64_t knn_slices;          /* turns that ran KNN work */
	uint64_t knn_work_charged;    /* KNN work charged to this worker's clients, bytes */
	uint64_t knn_parts_direct;    /* issue 20: KNN parts a client asked of this shard alone
				       * (PART flag), answered to it directly */
	uint64_t knn_latency_us[PM_KNN_LATENCY_BUCKETS];
};

struct pm_daemon;
struct pm_admin;
struct pm_backend_ops;
struct pm_burst;
struct pm_conn;
struct pm_dpdk_worker;
struct pm_dpdk;
struct pm_knn_part;
struct pm_auth;
struct pm_users;
struct pm_quota_table;
struct pm_wal;
struct pm_repl;
struct pm_repl_node;

struct pm_worker {
	alignas(64) uint32_t id;
	struct pm_daemon *d;
	pthread_t thread;
	int cpu;                   /* OS CPU number it is pinned to, -1 if unpinned */
	int numa;                  /* its NUMA node, -1 if unknown */
	const struct pm_backend_ops *be; /* its backend (backend.h), chosen at start-up */
	int fd;                    /* UDP socket (kernel backend), -1 with DPDK */
	struct pm_dpdk_worker *dp; /* DPDK backend state, NULL with the kernel one */
	uint32_t tx_ports;         /* DPDK ports it has a TX queue on, a bit each: a reply
				    * for another goes through the worker that received it */
	uint32_t tx_pack_bytes[PM_DPDK_PORTS_MAX]; /* a DPDK port's largest UDP payload
						    * that needs no fragment: replies pack
						    * up to it (worker.c pack_bytes) */
	struct pm_wal *wal;        /* write-ahead log, NULL with wal = none */
	struct pm_repl *repl;      /* replication: this shard's role, replicas or link (repl_io.c) */
	/* cluster = on (cluster.c): the slot map this worker routes by (NULL: none
	 * yet), CLOCK_BOOTTIME ms at this turn's start (the write lease's clock),
	 * and the MOVED replies it sent (read by the admin thread) */
	const struct pm_cluster_view *cview;
	struct pm_cluster_dirty *dirty;  /* keys changed in slots it moves out */
	uint64_t boot_ms;
	_Atomic uint64_t moved;
	bool repl_ready;           /* epoll saw one of replication's sockets ready (tcp.c) */
	bool udp_polled;           /* the UDP socket is in the epoll set (pm_tcp_watch_udp) */
	bool udp_ready;            /* ... and epoll saw it readable this turn */
	int wake_fd;               /* eventfd: rings post here when the worker sleeps */
	int ep;                    /* epoll: the TCP listener and this worker's connections */
	struct pm_conn *conns;     /* PM_TCP_CONNS_MAX */
	uint32_t conn_hi;           /* conns[conn_hi..] are all free: what a turn walks */
	uint64_t tcp_seq;          /* connections accepted */
	/* reply credit: bytes of replies (worst case, as they would wait) that
	 * each other worker owes this worker's connections; PM_TCP_CREDIT_BYTES */
	uint32_t tcp_credit[PM_SHARDS_MAX];
	/* nshards (NULL without TCP): replies for worker i's connections that
	 * found the ring to it full, in order, until they fit */
	struct pm_reply_wait *reply_wait;
	_Atomic bool sleeping;
	enum pm_status init_status;
	struct pm_shard shard;
	void *arena_mem;           /* the shard's arena when it came from DPDK hugepages */
	uint64_t now_ms;           /* wall clock for TTLs, read once per turn */
	uint64_t now_ns;           /* monotonic, for deadlines */
	uint32_t next_seq;
	struct pm_tx tx;
	uint8_t *rx_buf;           /* PM_RX_BURST x PM_RX_SLOT_BYTES */
	/* the RX burst a backend delivered: datagrams and their senders */
	uint32_t rx_n;
	const uint8_t *rx_ptr[PM_RX_BURST];
	uint32_t rx_len[PM_RX_BURST];
	struct pm_dest rx_from[PM_RX_BURST];
	uint8_t *scratch;          /* PM_RING_PAYLOAD_MAX: outgoing message / reply frames */
	struct pm_burst *burst;    /* this shard's frames of the RX burst, applied together
				    * (worker.c) */
	struct pm_pending pending[PM_PENDING_MAX];
	struct pm_quota_table *quota; /* this worker's clients: quotas and counters (access.c) */
	struct pm_auth *auth;      /* its users table copy, replay table, counters (users.c) */
	void *pending_mem;         /* the pending slots' buffers, one mapping (pm_worker_alloc) */
	struct pm_knn_part *knn_parts; /* PM_KNN_PARTS_MAX, a FIFO from knn_head (knn_sched.c) */
	void *knn_mem;             /* the parts' query and hit buffers, one mapping */
	uint32_t knn_head, knn_n;
	double knn_ns_per_byte;    /* how fast this worker gets through KNN work with parts
				    * waiting, its other work included (average) */
	uint64_t knn_rate_t0, knn_rate_bytes; /* the measurement under way: since, and work */
	uint64_t knn_graph_bytes;  /* work of a graph search here (average) */
	struct pm_worker_stats stats;
	/* the stats segment: service-time histograms, the tick clock, publishing */
	struct pm_hist lat_kv, lat_knn;
	uint64_t tick0, tick0_ns, last_tick, stats_pub_ms;
	double ns_per_tick;        /* 0 until calibrated */
	/* INFO merging (fanout.c, pm_fanout_alloc) */
	char *info_text;           /* PM_INFO_REPLY_BYTES_MAX: a part's or the merged text */
	struct pm_info_sum *info_sum; /* the Total section's fields */
	/* batches and range search (fanout_batch.c, issue 18): the engine's
	 * scratch, a batch's decoded items, a VADDB part's item statuses */
	struct pm_batch_space *batch_space;
	struct pm_request *batch_items;   /* PM_BATCH_ITEMS_MAX */
	uint8_t *item_status;             /* PM_BATCH_ITEMS_MAX */
	/* anti-amplification (guard.c, issue 19): this worker's cookie secrets
	 * and budgeted-reply buffer, its counters, and the shared quota of the
	 * addresses it has not validated (access.c) */
	struct pm_guard guard;
	struct pm_guard_stats guard_stats;
	struct pm_quota_shared *quota_shared;
};

struct pm_daemon {
	struct pm_config cfg;
	uint32_t nshards;
	struct pm_worker *workers;       /* nshards */
	struct pm_ring *rings;           /* nshards x nshards: [from * n + to] */
	atomic_int quit;                 /* set by the first SIGTERM / SIGINT */
	int listen_fd;                   /* TCP, -1 when tcp_port = 0 */
	struct pm_dpdk *dpdk;            /* DPDK backend, NULL with the kernel one */
	struct pm_allowlist allow;       /* allow_networks; read-only once workers run */
	struct pm_self self;             /* its own UDP sources; read-only once workers run */
	pthread_barrier_t ready;
	void *stats_base;                /* the stats segment (control/stats.h) */
	size_t stats_bytes;
	struct pm_ring *admin_in;        /* nshards: admin -> worker i */
	struct pm_ring *admin_out;       /* nshards: worker i -> admin */
	int admin_efd;                   /* a worker writes it after an admin reply */
	struct pm_admin *admin;
	int data_fd;                     /* data_dir, opened and checked at start-up (datadir.h) */
	struct pm_repl_node *repl;       /* the node's role, the repl_port listener (repl.c) */
	struct pm_cluster *cluster;      /* cluster = on: the map and the write lease (cluster.c) */
	struct pm_guard_root cookie_root; /* the cookies' master secret at start-up, random
					   * (guard.h); each worker ratchets its own copy,
					   * and this one is erased once they all have it */
	struct pm_users *users;          /* the users table (users.h): the admin thread's; each
					  * worker holds a pointer to it, swapped by PM_CALL_USERS */
};

/* CLOCK_MONOTONIC in nanoseconds (the workers' turn clock, w->now_ns). */
static inline uint64_t pm_mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline struct pm_ring *pm_ring_between(struct pm_daemon *d, uint32_t from, uint32_t to)
{
	return &d->rings[(size_t)from * d->nshards + to];
}

/* Set-up (pomaid.c, before the thread starts) and the thread. */
int pm_worker_alloc(struct pm_worker *w);
/* Zeroed anonymous memory whose pages are first touched when used (a
 * worker's tables for the most it may ever hold: a start does not pay to
 * fault them all in); NULL when out of memory. Freed with pm_pages_free. */
void *pm_pages_alloc(size_t bytes);
void pm_pages_free(void *p, size_t bytes);
/* The shard emptied: destroyed and made again with its configuration and
 * limits (pomaid.c; a replica's full sync loads a snapshot into it). 0, or
 * -1 with a message (the shard is then unusable). */
int pm_worker_shard_reset(struct pm_worker *w, char *err, size_t errlen);
/* The shard's configuration, and what it gets once its data is in (after
 * recovery: maxmemory, the KNN work cap, the eviction log); 0, or -1 with a
 * message. */
struct pm_shard_config pm_worker_shard_config(const struct pm_worker *w);
int pm_worker_shard_limits(struct pm_worker *w, char *err, size_t errlen);
void pm_worker_free(struct pm_worker *w);
void *pm_worker_main(void *arg);

/* A reply to its destination (msg.h: pm_dest): datagrams of this worker,
 * or a message to the worker that receives on its DPDK port; this worker's
 * TCP connection, or a message to the worker owning it; the admin thread.
 * Encoded once, where it goes (every page of it); held first, encoded, when
 * the log must reach the disk before it may leave (wal = sync). */
void pm_send_reply(struct pm_worker *w, const struct pm_dest *to, const struct pm_reply *rep);
/* Reply frames encoded earlier (held for the log, from another worker, a
 * THROTTLED frame) to their destination, by the same paths. */
void pm_deliver_frames(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
		       uint32_t len);
/* Every page of a reply as consecutive frames in out; the bytes written, or 0
 * when they do not all fit in cap. */
uint32_t pm_reply_frames(const struct pm_reply *rep, uint8_t *out, uint32_t cap);
/* Apply a request to this worker's shard through the log: refused when the
 * log cannot take a write, logged when it changed the shard. */
void pm_apply_logged(struct pm_worker *w, const struct pm_request *req, struct pm_reply *rep);
/* A frame whose header is not usable (pm_request_decode's status st, len
 * bytes from its start): an error reply with opcode 0 for its id when the
 * header and the magic arrived, else nothing (docs/protocol.md §6.3). */
void pm_answer_unusable(struct pm_worker *w, const uint8_t *buf, uint32_t len, enum pm_status st,
			const struct pm_dest *from);
/* A frame with the REPLY flag (counted in dropped_reply): true when it must
 * be skipped without an answer of any kind (docs/protocol.md §6.5). */
bool pm_refuse_reply(struct pm_worker *w, const uint8_t *frame, uint32_t len);
/* Execute one decoded frame received from `from`. */
void pm_serve_frame(struct pm_worker *w, const struct pm_request *req, const uint8_t *frame,
		    uint32_t len, const struct pm_dest *from);
/* May a TCP connection's frame be executed now? A frame for another shard
 * needs room in that shard's ring and reply credit for `owed` bytes (its
 * reply's worst case); anything else can always go. */
bool pm_tcp_forward_ready(struct pm_worker *w, const struct pm_request *req, uint32_t len,
			  uint32_t owed);

#endif
