/* SPDX-License-Identifier: MIT
 *
 * daemon.h — pomaid's workers: one per shard, pinned to its own core, owning
 * its shard outright. A worker reaches another only through the SPSC ring that
 * joins them (ring.h); nothing on the data path locks.
 *
 * The backend boundary: a backend delivers bursts of datagrams (each holding
 * one or more frames, with the sender's address) to a worker — rx_ptr, rx_len,
 * rx_from — and takes bursts of reply datagrams from its pm_tx queue. The
 * kernel backend (udp.c) does this with recvmmsg / sendmmsg on one UDP socket
 * per worker; the DPDK backend (dpdk.h) points rx_ptr into the mbufs it
 * received and turns pm_tx entries into Ethernet/IPv4/UDP frames.
 */
#ifndef POMAI_DATAPLANE_DAEMON_H
#define POMAI_DATAPLANE_DAEMON_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "knn.h"
#include "quota.h"
#include "ring.h"
#include "shard.h"
#include "stats.h"
#include "tcp_limits.h"

/* Datagrams a worker takes from its backend per burst. */
#define PM_RX_BURST 32u
/* Bytes of one RX slot: any UDP payload (kernel backend), or any whole IPv4
 * datagram (a reassembled one, DPDK backend). */
#define PM_RX_SLOT_BYTES 65536u
/* Reply datagrams a worker queues before it must flush (sendmmsg batch). */
#define PM_TX_BURST 64u
/* Bytes of reply datagrams a worker queues before it must flush. */
#define PM_TX_BYTES (1u << 20)
/* Fan-outs (KNN, collection ops, INFO) one worker coordinates at once. */
#define PM_PENDING_MAX 32u
/* Key bytes a KNN merge keeps per fan-out (kept hits' keys; compacted when full). */
#define PM_KNN_MERGE_BYTES (256u << 10)
/* Adaptive polling: idle turns spent spinning, then yielding, before sleeping. */
#define PM_IDLE_SPIN_TURNS 2000u
#define PM_IDLE_YIELD_TURNS 2100u
/* TCP connections: tcp_limits.h. */
/* Service-time clock: ticks are converted to nanoseconds once they have been
 * compared with the monotonic clock over at least this long. */
#define PM_TICKS_CALIBRATE_NS (100u * 1000u * 1000u)
/* Turns between two slices of background maintenance while busy. */
#define PM_MAINTAIN_EVERY_TURNS 64u
/* KNN parts (knn_sched.c) a worker holds at once: its own shard's parts of
 * the fan-outs it coordinates (PM_PENDING_MAX) and as many of other workers';
 * past it a part is answered BUSY. */
#define PM_KNN_PARTS_MAX (2u * PM_PENDING_MAX)
/* KNN work between two looks at the clock within a slice (knn_slice_us):
 * 2-6 us of a quiet core's scanning (10-28 GB/s), so a slice ends within a
 * few microseconds of its time, while the clock's ~30 ns stay below 1 %. */
#define PM_KNN_STEP_BYTES (64u << 10)

enum pm_msg_type {
	PM_MSG_FORWARD = 1,  /* a key frame for its owner; the owner replies to the client */
	PM_MSG_FANOUT,       /* a frame every shard applies; reply frames go back */
	PM_MSG_FANOUT_REPLY, /* encoded reply frames of one shard for a fan-out */
	PM_MSG_TCP_REPLY,    /* reply frames for a TCP connection of the receiving worker */
	PM_MSG_DGRAM_REPLY,  /* reply frames for a DPDK port only the receiving worker can send on */
	PM_MSG_ADMIN_FRAME,  /* admin -> worker: a request frame to serve as a client's */
	PM_MSG_ADMIN_REPLY,  /* worker -> admin: its reply frames (dest.gen: the call's tag) */
	PM_MSG_ADMIN_CALL,   /* admin -> worker: a struct pm_admin_call on its quota table */
};

/* The admin socket (admin.c): connections served at once, bytes of one
 * reply's text, how long a command waits for the workers, and how often the
 * admin thread looks at the quit flag while idle. */
#define PM_ADMIN_CONNS_MAX 8u
#define PM_ADMIN_TEXT_BYTES (512u << 10)
#define PM_ADMIN_REPLY_MS 5000u
#define PM_ADMIN_POLL_MS 100
/* Clients a CLIENTS answer lists at most (each worker's top that many, merged). */
#define PM_ADMIN_TOP_MAX 64u

/* An admin call a worker runs on its own quota table (PM_MSG_ADMIN_CALL); it
 * answers with a struct pm_admin_result, then its n overrides or talkers. */
enum pm_admin_call_op { PM_CALL_QUOTA_SET = 1, PM_CALL_QUOTA_DEL, PM_CALL_QUOTA_LIST,
			PM_CALL_CLIENTS };
struct pm_admin_call {
	uint32_t op;       /* enum pm_admin_call_op */
	uint32_t addr_be;
	uint64_t requests_per_s, bytes_per_s;
	uint32_t n;        /* LIST / CLIENTS: at most this many */
};
struct pm_admin_result {
	int32_t rc;        /* 0 or -errno */
	uint32_t n;
};

#define PM_CONN_NONE UINT32_MAX
#define PM_CONN_ADMIN (UINT32_MAX - 1) /* the reply goes to the admin thread */
#define PM_PORT_KERNEL UINT32_MAX

/* Where a reply goes: a UDP address, or a TCP connection of one worker. */
struct pm_dest {
	struct sockaddr_in addr;   /* UDP: the sender */
	uint32_t worker;           /* TCP: the worker that owns the connection; DPDK: the
				    * worker that received the request */
	uint32_t conn;             /* TCP: its slot there; PM_CONN_NONE for UDP */
	uint32_t gen;              /* TCP: the slot's generation (a reused slot differs) */
	uint32_t port;             /* UDP: the DPDK port it came in on, or PM_PORT_KERNEL */
	uint32_t owed;             /* TCP: output bytes the connection keeps for this reply */
};

/* Ring message header; the frame (or reply frames) follows. */
struct pm_msg {
	uint32_t origin;           /* worker that coordinates / received the frame */
	uint32_t seq;              /* fan-out sequence number at the origin */
	uint32_t shard;            /* the shard that answered (FANOUT_REPLY) */
	uint32_t created;          /* FANOUT_REPLY to a CCREATE: 1 if this shard created the
				    * collection (it did not exist there before) */
	struct pm_dest dest;       /* where the final reply goes */
	uint64_t work;             /* FANOUT_REPLY: KNN work of the part, charged to dest */
};

/* One reply datagram waiting for sendmmsg. */
struct pm_tx {
	uint32_t n;      /* datagrams queued */
	uint32_t bytes;  /* bytes used in buf */
	struct sockaddr_in to[PM_TX_BURST];
	uint32_t port[PM_TX_BURST]; /* DPDK port, or PM_PORT_KERNEL */
	uint32_t off[PM_TX_BURST], len[PM_TX_BURST];
	uint8_t *buf;    /* PM_TX_BYTES */
};

struct pm_hit_ref {
	float dist;
	uint32_t off, len; /* key bytes in the pending entry's key buffer */
};

/* A fan-out this worker coordinates. */
struct pm_pending {
	bool live;
	uint8_t op;                /* enum pm_op */
	uint32_t seq;
	uint64_t id;               /* client's request id */
	struct pm_dest dest;
	uint64_t start_ns, deadline_ns;
	uint32_t want, got;        /* shard answers expected / received */
	enum pm_status status;     /* first failure, or PM_OK */
	uint32_t removed;          /* CDROP: any shard removed */
	uint32_t k;                /* VQUERY */
	uint32_t nhits;
	struct pm_hit_ref *hits;   /* PM_K_MAX */
	uint8_t *keys;             /* PM_KNN_MERGE_BYTES: hit keys, INFO text, CLIST names */
	uint32_t keys_used;
	struct pm_coll_info *colls; /* CLIST: PM_COLLECTIONS_MAX */
	uint32_t ncolls;
	uint8_t info_flags;        /* INFO: the request's PM_INFO_* */
	uint32_t info_at[PM_INFO_SHARDS_MAX], info_len[PM_INFO_SHARDS_MAX]; /* INFO: each shard's
				    * text in keys (len 0: not answered), written in shard order */
	uint8_t list_flags;        /* CLIST: the request's PM_CLIST_* (the reply's layout) */
	uint32_t created;          /* CCREATE: shards that created the collection (bit per shard) */
	bool rolling_back;         /* CCREATE failed: waiting for the CDROPs that undo it */
};

/* One shard's part of a VQUERY fan-out, kept while its search waits or runs
 * in slices between the worker's turns (knn_sched.c). */
struct pm_knn_part {
	bool local;                /* this worker coordinates the fan-out */
	uint32_t origin, seq;      /* the fan-out: its coordinator, its number there */
	struct pm_dest dest;       /* the client: where the reply goes, who pays the work */
	uint64_t deadline_ns;      /* nobody waits for the answer after this */
	struct pm_vquery q;        /* the engine's state of the search */
	float *qbuf;               /* PM_DIM_MAX floats, 64-byte aligned */
	struct pm_knn_hit *hits;   /* PM_K_MAX */
};

struct pm_conn {
	int fd;                    /* -1: free slot */
	uint32_t gen;              /* bumped when the slot is freed */
	uint8_t *rx;               /* PM_TCP_RX_BYTES, then tx: one mapping (tcp.c) */
	uint32_t rx_len;
	uint8_t *tx;               /* PM_TCP_TX_BYTES */
	uint32_t tx_off, tx_len;
	uint32_t inflight;         /* frames forwarded, replies not back yet */
	uint64_t last_ms;          /* last read or write progress */
	struct sockaddr_in peer;   /* the client: its quota is charged per frame */
	uint32_t owed;             /* output bytes kept for replies not written yet */
	uint32_t rx_high, tx_high; /* most bytes each buffer held since it last drained */
	uint32_t events;           /* the epoll events it is registered for */
	bool tx_blocked;           /* the socket took no more: written on EPOLLOUT */
	bool ring_wait;            /* its next frame waits for room in a ring, or credit */
	bool rx_eof;               /* the client sent FIN: no more reading */
	uint64_t frame_ms;         /* when the partial frame at the head began; 0: none */
	uint64_t seq;              /* accept order: the older of two equally stale goes first */
};

/* Replies for another worker's TCP connections that found the ring to it
 * full, in order (worker.c): records [u32 bytes, u32 frame bytes, pm_msg, frames]. */
struct pm_reply_wait {
	uint8_t *buf;              /* PM_TCP_CREDIT_BYTES, mapped: touched only when used */
	uint32_t head, tail;       /* the records are buf[head, tail) */
	uint32_t high;             /* most of buf used since it last drained */
};

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
	uint64_t knn_latency_us[16];  /* log2 buckets: [i] counts latencies < 2^i us */
};

struct pm_daemon;
struct pm_admin;
struct pm_dpdk_worker;
struct pm_dpdk;
struct pm_wal;

struct pm_worker {
	alignas(64) uint32_t id;
	struct pm_daemon *d;
	pthread_t thread;
	int cpu;                   /* OS CPU number it is pinned to, -1 if unpinned */
	int numa;                  /* its NUMA node, -1 if unknown */
	int fd;                    /* UDP socket (kernel backend), -1 with DPDK */
	struct pm_dpdk_worker *dp; /* DPDK backend state, NULL with the kernel one */
	struct pm_wal *wal;        /* write-ahead log, NULL with wal = none */
	int wake_fd;               /* eventfd: rings post here when the worker sleeps */
	int ep;                    /* epoll: the TCP listener and this worker's connections */
	struct pm_conn *conns;     /* PM_TCP_CONNS_MAX */
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
	struct pm_knn_part *knn_parts; /* PM_KNN_PARTS_MAX, a FIFO from knn_head (knn_sched.c) */
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
};

/* This daemon's own UDP sources (access.c): every local IPv4 address a
 * worker may send from, and the worker ports. A datagram that claims one of
 * them is a spoofed or looped one and is dropped unread: answering it would
 * be talking to itself. More local addresses than PM_SELF_ADDRS_MAX (a host
 * with that many is unusual) and every source address counts as local, so
 * only the port decides. */
#define PM_SELF_ADDRS_MAX 64u
struct pm_self {
	uint32_t naddrs;
	bool any_addr;
	uint32_t addr_be[PM_SELF_ADDRS_MAX];
	uint16_t port_lo, port_hi;       /* host order, inclusive */
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
};

static inline struct pm_ring *pm_ring_between(struct pm_daemon *d, uint32_t from, uint32_t to)
{
	return &d->rings[(size_t)from * d->nshards + to];
}

/* admin.c: the admin socket, served by the main thread until the daemon stops */
int pm_admin_open(struct pm_daemon *d, char *err, size_t errlen);
void pm_admin_run(struct pm_daemon *d);
void pm_admin_close(struct pm_daemon *d);

/* stats_pub.c: the stats segment (created before the workers start) */
int pm_stats_create(struct pm_daemon *d, char *err, size_t errlen);
void pm_stats_destroy(struct pm_daemon *d);
void pm_stats_publish(struct pm_worker *w);
uint64_t pm_ticks(void);
void pm_ticks_calibrate(struct pm_worker *w);
/* One KV request served since tick `since`: its service time into lat_kv;
 * w->last_tick becomes now (the next request of a burst starts there). */
void pm_lat_kv(struct pm_worker *w, uint64_t since);

/* worker.c */
void *pm_worker_main(void *arg);
int pm_worker_alloc(struct pm_worker *w);
void pm_worker_free(struct pm_worker *w);
/* Queue a reply datagram; false (counted) when the TX queue is full. */
bool pm_tx_queue(struct pm_worker *w, const struct pm_dest *to, const uint8_t *p, uint32_t len);
/* Hand the queued reply datagrams to the backend. */
void pm_tx_flush(struct pm_worker *w);
/* Encode a reply (every page of it) for its destination: UDP datagrams, this
 * worker's TCP connection, or a message to the worker owning the connection. */
void pm_send_reply(struct pm_worker *w, const struct pm_dest *to, const struct pm_reply *rep);
/* Every page of a reply as consecutive frames in out; the bytes written, or 0
 * when they do not all fit in cap. */
uint32_t pm_reply_frames(const struct pm_reply *rep, uint8_t *out, uint32_t cap);
/* Reply frames encoded earlier (held for the log, or from another worker)
 * to their destination: datagrams, or a TCP connection here or elsewhere. */
void pm_deliver_frames(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
		       uint32_t len);
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
/* Execute one decoded frame received from `from` (worker.c). */
void pm_serve_frame(struct pm_worker *w, const struct pm_request *req, const uint8_t *frame,
		    uint32_t len, const struct pm_dest *from);
/* May a TCP connection's frame be executed now? A frame for another shard
 * needs room in that shard's ring and reply credit for `owed` bytes (its
 * reply's worst case); anything else can always go. */
bool pm_tcp_forward_ready(struct pm_worker *w, const struct pm_request *req, uint32_t len,
			  uint32_t owed);
/* Post the replies waiting in reply_wait; how many still wait. */
uint32_t pm_reply_wait_flush(struct pm_worker *w);
/* A ring message: header m, then body; false (nothing queued) when the ring is full. */
bool pm_ring_send(struct pm_ring *r, uint32_t type, const struct pm_msg *m, const uint8_t *body,
		  uint32_t len);
/* Wake worker `to` if it sleeps (after a message was queued for it). */
void pm_wake(struct pm_daemon *d, uint32_t to);
/* Post a message to another worker's ring and wake it if it sleeps. */
bool pm_post(struct pm_worker *w, uint32_t to, uint32_t type, const struct pm_msg *m,
	     const uint8_t *body, uint32_t len);

/* fanout.c */
bool pm_is_fanout(uint8_t op);
void pm_fanout_start(struct pm_worker *w, const struct pm_request *req, const uint8_t *frame,
		     uint32_t len, const struct pm_dest *client);
void pm_fanout_serve(struct pm_worker *w, const struct pm_msg *m, const uint8_t *frame,
		     uint32_t len);
void pm_fanout_collect(struct pm_worker *w, const struct pm_msg *m, const uint8_t *frames,
		       uint32_t len);
void pm_fanout_expire(struct pm_worker *w);
/* The worker's INFO merge buffers (from pm_worker_alloc / pm_worker_free). */
int pm_fanout_alloc(struct pm_worker *w);
void pm_fanout_free(struct pm_worker *w);
/* This worker's dataplane counters as INFO lines. */
uint32_t pm_worker_info(const struct pm_worker *w, char *out, uint32_t cap);

/* access.c: the allowlist's counters, quotas and the collection byte cap */
/* Fill d->self from the bind address (every local address when it is the
 * wildcard) or the DPDK ports' addresses; after the backend is open. */
int pm_self_init(struct pm_daemon *d, char *err, size_t errlen);
/* True when a datagram's source is one of the daemon's own (d->self). */
bool pm_from_self(const struct pm_daemon *d, const struct sockaddr_in *from);
int pm_access_alloc(struct pm_worker *w);
void pm_access_free(struct pm_worker *w);
/* Charge one request frame of len bytes from `from` to its client's quota:
 * true if admitted; false if it was answered THROTTLED (and counted). */
bool pm_quota_admit(struct pm_worker *w, const struct pm_request *req, uint32_t len,
		    const struct pm_dest *from);
/* PM_E_QUOTA if req is a VADD that could take its collection past
 * collection_bytes_max on this shard (counted), else PM_OK. */
enum pm_status pm_collection_cap_check(struct pm_worker *w, const struct pm_request *req);
/* The control plane's per-client overrides (quota.h: pm_qtable_*). Call on
 * the worker's own thread: the admin thread will deliver them by ring. */
int pm_quota_set(struct pm_worker *w, uint32_t addr_be, uint64_t requests_per_s,
		 uint64_t bytes_per_s);
int pm_quota_del(struct pm_worker *w, uint32_t addr_be);
uint32_t pm_quota_list(const struct pm_worker *w, struct pm_quota_override *out, uint32_t n);
/* The n clients with the most requests on this worker (pomaictl clients). */
uint32_t pm_quota_top(const struct pm_worker *w, struct pm_quota_talker *out, uint32_t n);
/* INFO lines: counters and the top talkers. */
uint32_t pm_access_info(const struct pm_worker *w, char *out, uint32_t cap);

/* access.c: KNN work done for a client (FANOUT_REPLY's work), charged to its
 * quota's work budget. */
void pm_quota_charge_work(struct pm_worker *w, const struct pm_dest *client, uint64_t work);

/* knn_sched.c: VQUERY parts, run in slices of knn_slice_us between turns */
int pm_knn_alloc(struct pm_worker *w);
void pm_knn_free(struct pm_worker *w);
/* This shard's part of a VQUERY fan-out coordinated by `origin` (its number
 * seq there; this worker's own when origin == w->id), for client, due by
 * deadline_ns: answered now when it needs no search (an error, nothing to
 * search), else queued for pm_knn_turn. */
void pm_knn_part_start(struct pm_worker *w, const struct pm_request *req, uint32_t origin,
		       uint32_t seq, const struct pm_dest *client, uint64_t deadline_ns);
/* Run queued parts, oldest first, for about knn_slice_us (an exact scan
 * PM_KNN_STEP_BYTES at a time, the clock read between; a graph search runs
 * whole); returns the parts it finished plus those still waiting (a worker
 * with parts waiting does not sleep). */
uint32_t pm_knn_turn(struct pm_worker *w);
/* INFO lines: the KNN part counters. */
uint32_t pm_knn_info(const struct pm_worker *w, char *out, uint32_t cap);

/* tcp.c: the stream side of the kernel backend */
int pm_tcp_listen(const struct pm_config *cfg, char *err, size_t errlen);
int pm_tcp_worker_open(struct pm_worker *w, int listen_fd);
void pm_tcp_worker_close(struct pm_worker *w);
uint32_t pm_tcp_turn(struct pm_worker *w);
/* Output bytes the reply to a frame of op may take at most (every page). */
uint32_t pm_tcp_reply_bytes_max(uint8_t op);
void pm_tcp_reply(struct pm_worker *w, const struct pm_dest *to, const struct pm_reply *rep);
/* Reply frames another worker sent for a connection here (settles a forward). */
void pm_tcp_deliver(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
		    uint32_t len);
/* Append reply frames of this worker's own to a connection (no forward to settle). */
void pm_tcp_queue(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
		  uint32_t len);

/* udp.c: the kernel backend */
int pm_udp_open(const struct pm_config *cfg, uint32_t shard, char *err, size_t errlen);
uint32_t pm_udp_rx(struct pm_worker *w);
void pm_udp_flush(struct pm_worker *w);

#endif
