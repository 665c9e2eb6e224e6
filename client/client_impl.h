/* SPDX-License-Identifier: MIT
 *
 * client_impl.h — libpomai's internals, shared by its source files only.
 *
 * A request lives in a slot from submit to completion. The slot holds the
 * encoded frame (kept for resends) and the request id, which is
 * (seq << PMC_SLOT_BITS) | slot index, seq being the client's request counter:
 * a reply finds its slot in O(1), and a reply to an earlier request that used
 * the same slot carries another seq, so it is dropped as stale.
 *
 * Frames waiting to be sent are linked into one queue per destination (a UDP
 * shard, or the TCP stream) through the slots' prev/next indices, so queueing
 * needs no memory of its own. A slot is in a queue at most once.
 *
 * Slot states: FREE, or WAIT (queued or sent; a reply is expected). Over TCP
 * only the head of the queue can be partly written; a request that times out
 * in that state means the server stopped reading, and the stream is closed
 * (a frame cannot be taken back out of a stream).
 *
 * Links: the socket, queues and receive state of one server (struct
 * pmc_link). A client of one pomaid has one, link 0. A cluster client
 * (cluster.c) has one per node address it has talked to, at most
 * PMC_LINKS_MAX, link 0 being the seed; a link's socket and buffers are made
 * when it is first used and kept (closed or not) for the client's life. A
 * slot's dest names a link and one of its queues (PMC_DEST).
 *
 * Cluster slots, besides FREE and WAIT: a WAIT slot may be parked (its
 * attempt ended with MOVED, READONLY, a timeout or a lost link; it waits, in
 * no queue, for the map refresh that routes it again — after a MOVED or
 * READONLY only if that map sends it to another node, else for its back-off
 * first: cluster.c); a fan-out parent
 * (KNN, CCREATE, CDROP, SNAPSHOT) waits, in no queue and with no deadline,
 * for its legs, one per replica set. A leg is a slot of its own (its own id,
 * attempts, deadline and queue links) whose buffer holds only its frame
 * header and, with a user over UDP, its AUTH trailer (PMC_LEG_BUF_BYTES):
 * the body is its parent's (slot.body), so a fan-out over 64 sets costs no
 * frame buffers. The MAP request of a refresh has a slot of its own
 * too (cl.map_slot), outside max_in_flight.
 *
 * A transport other than the sockets (libpomai_memif) plugs in through struct
 * pmc_hooks: the queues, batching, retries and reply handling stay the same,
 * and the hooks replace connect / sendmsg / recv / poll. libpomai itself never
 * links such a transport; its open function passes the hooks to pmc_open().
 * Hook transports serve one server (link 0), never a cluster.
 */
#ifndef POMAI_CLIENT_IMPL_H
#define POMAI_CLIENT_IMPL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "auth.h"
#include "cluster_map.h"
#include "codec.h"
#include "pomai.h"

/* Slot index bits in a request id: every slot (below) fits. */
#define PMC_SLOT_BITS 16u
#define PMC_SLOT_MASK ((UINT64_C(1) << PMC_SLOT_BITS) - 1u)
#define PMC_NIL UINT32_MAX

/* A datagram of several frames stays within its link's pack_bytes (pomai.h
 * PM_CLIENT_PACK_*: 64 KiB to loopback, under a common Ethernet path MTU
 * elsewhere), so batching never causes IP fragmentation off loopback; a
 * single larger frame is sent alone. */
_Static_assert(PM_CLIENT_PACK_LOOPBACK_BYTES + PM_COOKIE_FRAME_BYTES == PM_FRAME_BYTES_MAX,
	       "a loopback datagram of frames and its cookie fit UDP's largest payload");
/* Frames in one sendmsg, datagram or TCP (iovec array on the stack; a leg's
 * frame takes up to PMC_FRAME_IOVS_MAX iovecs: its header, its parent's body
 * and, signed, its trailer). */
#define PMC_BATCH_FRAMES_MAX 64u
#define PMC_FRAME_IOVS_MAX 3u
/* Datagrams read per poll turn before timeouts are looked at again. */
#define PMC_RX_BURST 64u
/* Socket buffers asked for: a full pipeline of replies, or a paged KNN reply of
 * PM_WIRE_K_MAX long keys (~1 MiB), should fit without the kernel dropping any. The
 * kernel caps the request at net.core.rmem_max / wmem_max; a drop beyond that
 * is recovered by a resend. */
#define PMC_SOCKBUF_BYTES (4 << 20)
/* TCP receive buffer: two largest frames, so one is always parseable whole. */
#define PMC_TCP_RX_BYTES (2u * PM_FRAME_BYTES_MAX)
/* Retry backoff: the wait doubles per attempt up to 2^PMC_BACKOFF_SHIFT_MAX
 * times the first, plus jitter of up to 1/PMC_JITTER_DIV of the wait. */
#define PMC_BACKOFF_SHIFT_MAX 6u
#define PMC_JITTER_DIV 4u
/* Longest single poll(2) wait while draining. */
#define PMC_POLL_SLICE_MS 50u

/* A slot's dest: a link and one of its queues. */
#define PMC_DEST(link, q) (((uint32_t)(link) << 16) | (uint32_t)(q))
#define PMC_DEST_LINK(d) ((uint32_t)(d) >> 16)
#define PMC_DEST_QUEUE(d) ((uint32_t)(d) & 0xFFFFu)
_Static_assert(PM_CLIENT_SHARDS_MAX <= 0x10000u, "a shard fits a dest's queue bits");

/* ---------------------------------------------------------------- cluster bounds */

/* Links of a cluster client: every node of a map, and the seed, which need
 * not be one of them. */
#define PMC_LINKS_MAX (PM_CLUSTER_NODES_MAX + 1u)
/* Queues of a cluster link: one per shard of a node over UDP (a node's shard
 * count comes from the map, at most PM_CMAP_SHARDS_MAX), one over TCP. */
#define PMC_LINK_QUEUES_MAX PM_CMAP_SHARDS_MAX
/* Fan-outs (KNN, CCREATE, CDROP, SNAPSHOT in cluster mode) in flight at
 * once; each has a leg per replica set. A submit beyond waits for one to
 * finish, as for a slot. 16 queries over 64 sets keep 1024 legs in flight:
 * enough to keep every node of a cluster busy with KNN work. */
#define PMC_FANOUTS_MAX 16u
#define PMC_LEGS_MAX (PMC_FANOUTS_MAX * PM_CLUSTER_SETS_MAX)
/* A leg's buffer (and the map slot's): a frame header, and the AUTH trailer
 * a user's frame ends with over UDP (auth.c); the body is elsewhere. */
#define PMC_LEG_BUF_BYTES (PM_FRAME_HEADER_BYTES + PM_AUTH_TRAILER_BYTES)
/* Least time between the end of one map refresh and the start of the next:
 * every request in flight to a slot that moved gets MOVED, and they all wait
 * for one refresh; a node still on an older map keeps answering MOVED, and
 * this paces the retries to it. */
#define PMC_MAP_REFRESH_GAP_MS 20u

_Static_assert(PM_CLIENT_IN_FLIGHT_MAX + PM_CLIENT_LARGE_SLOTS + 1u + PMC_LEGS_MAX <=
		       (1u << PMC_SLOT_BITS),
	       "slot indexes (the map slot and the legs too) fit the id's slot bits");
_Static_assert(PMC_LINKS_MAX * PMC_LINK_QUEUES_MAX <= UINT32_MAX / 4u, "dirty list size");

enum pmc_state { PMC_FREE = 0, PMC_WAIT };

struct pmc_slot {
	uint64_t id;
	uint8_t *buf;           /* encoded frame (a leg: its header only) */
	const uint8_t *body;    /* a leg: the frame's body, its parent's; else NULL */
	uint32_t cap, len;
	uint8_t op;             /* enum pm_wire_op */
	uint8_t state;          /* enum pmc_state */
	bool queued;
	bool large;             /* buffer of PM_FRAME_BYTES_MAX */
	bool gap_resent;        /* paged: resent after a gap, no progress since */
	bool cookie_resent;     /* resent after a RETRY, no other reply since (guard.c) */
	uint8_t last_status;    /* enum pm_client_status of a BUSY-like reply, else 0;
				   cluster: what ended the last attempt */
	uint32_t attempts;
	uint32_t dest;          /* PMC_DEST(link, queue): the UDP shard, or 0 for TCP */
	uint32_t prev, next;    /* queue links */
	uint32_t free_next;
	uint32_t tx_off;        /* TCP: bytes of the frame already written */
	bool auth_signed;       /* len counts an AUTH trailer (auth.c; a leg's is in buf
				   after its header) */
	uint32_t got;           /* paged replies: items received so far */
	uint64_t deadline_ms;
	pm_client_cb cb;
	void *arg;
	struct pm_client_knn_result *knn;
	struct pm_client_coll_list *colls;
	struct pm_client_text *info; /* INFO: the text collected over pages (got: its bytes) */
	struct pm_client_batch_result *batch; /* VADD_MANY, KNN_MANY, RANGE (issue 18) */
	uint32_t nitems;        /* VADD_MANY: the items sent */
	/* cluster mode */
	uint64_t hash;          /* keyed: the key's routing hash (its slot and shard) */
	uint32_t fan;           /* a fan-out's parent or leg: the fan-out; else PMC_NIL */
	uint16_t set;           /* a leg: the replica set it asks */
	bool keyed;             /* routed by its key's slot */
	bool leg;
	bool parked;            /* waits to be routed again (last_status: why) */
	bool unroutable;        /* parked: its set had no primary or its node could not be
				   reached; routed again at its deadline or by a newer map */
	bool refused;           /* parked: its node answered READONLY or MOVED; routed again
				   when a map sends it elsewhere, or after its back-off (and
				   a refresh) */
	uint64_t route_epoch;   /* epoch of the map its attempt was routed by */
	uint32_t refused_ip_be; /* refused: the node that refused it (IPv4, network order, */
	uint16_t refused_udp;   /* base UDP port, TCP port), found again in a newer map by */
	uint16_t refused_tcp;   /* its address */
};

struct pmc_queue {
	uint32_t head, tail;
	uint32_t frames;
	uint32_t bytes;         /* of the queued frames */
	uint64_t since_us;      /* UDP: when its oldest queued frame was queued */
	bool dirty;             /* listed in c->dirty */
};

/* What a hook transport did with one datagram. */
enum pmc_send_result {
	PMC_SENT = 0,   /* handed to the device */
	PMC_SEND_FULL,  /* nothing sent, the device is full: keep it queued, try again */
	PMC_SEND_LOST,  /* dropped (counted by the transport); the request's timer recovers */
};

/* A transport outside libpomai. It owns c->hook_state from pmc_open() on
 * (close frees it, also when pmc_open fails). */
struct pmc_hooks {
	/* Bring the device up (at open, and at a submit after a disconnect). */
	enum pm_client_status (*connect)(struct pm_client *c);
	/* Take it down (pmc_disconnect); the state stays until close. */
	void (*disconnect)(struct pm_client *c);
	/* Free the state (device up or not). */
	void (*close)(void *state);
	/* One datagram: n frames, total bytes, to shard dest (c->links[0].addrs[dest]). */
	enum pmc_send_result (*send)(struct pm_client *c, uint32_t dest, const struct iovec *iov,
				     uint32_t n, size_t total);
	/* Handle what has arrived, without waiting. */
	void (*receive)(struct pm_client *c);
	/* Wait at most wait_ms for replies (handling them); pmc_flush_all when a
	 * send waits for room (c->links[0].want_write). */
	void (*wait)(struct pm_client *c, uint32_t wait_ms);
};

/* One server: its socket, per-shard addresses and send queues, and (TCP)
 * the stream's receive buffer. */
struct pmc_link {
	int fd;                    /* -1: closed */
	bool used;                 /* cluster: the entry holds a node's address */
	bool want_write;           /* the socket refused a send: wait for POLLOUT */
	uint32_t stream_gen;       /* TCP: incremented when the stream is closed */
	uint32_t ip_be;            /* the server: IPv4 (network order) */
	uint16_t udp_port;         /* its base port (shard i: + i) */
	uint16_t tcp_port;         /* its TCP port */
	uint32_t nqueues;          /* UDP: shards (cluster: PMC_LINK_QUEUES_MAX); TCP: 1 */
	struct sockaddr_in *addrs; /* one per queue; NULL until first used (cluster) */
	struct pmc_queue *queues;
	uint8_t *rx;               /* TCP: the stream's receive buffer; UDP: NULL (c->rx) */
	uint32_t rx_len;           /* TCP: bytes buffered */
	bool cookie;               /* UDP: cookie_frame goes in front of every datagram (guard.c) */
	uint8_t cookie_frame[PM_COOKIE_FRAME_BYTES];
	uint32_t pack_bytes;       /* UDP: frames one datagram may carry (issue 20) */
};

/* A fan-out in flight (cluster mode): one parent slot, a leg per set. */
struct pmc_fan {
	uint32_t parent;           /* slot index; PMC_NIL: the entry is free */
	uint32_t k;                /* KNN: hits wanted */
	uint16_t left;             /* legs not finished */
	uint8_t status;            /* enum pm_client_status: the first failure, or OK */
	bool removed;              /* CDROP: some set removed it */
};

/* The cluster mode's state (cluster.c). */
struct pmc_cluster {
	struct pm_cmap *map;       /* the map held; epoch 0 until the bootstrap */
	struct pm_cmap *scratch;   /* a MAP reply, decoded before it may replace map */
	uint16_t link_of[PM_CLUSTER_NODES_MAX]; /* map node -> link */
	uint16_t self;             /* map node that sent the map (PM_CMAP_NONE: none) */
	uint32_t home;             /* link of INFO and CLIST: the node that answered the
				      last map (the seed, link 0, at first) */
	uint32_t map_slot;         /* slot index of the MAP request */
	uint32_t legs0;            /* slot index of the first leg */
	bool booting;              /* pm_client_open's bootstrap is running */
	bool refreshing;           /* the MAP request is out */
	bool wanted;               /* a refresh is due (not before refresh_at_ms) */
	uint32_t refresh_from;     /* the candidate a refresh asks first: 0 the seed, i >= 1
				      the map's node i - 1 */
	uint32_t candidate;        /* refresh: candidates tried, from refresh_from on */
	uint32_t asked;            /* refresh: the candidate asked now */
	uint8_t boot_status;       /* enum pm_client_status of the bootstrap */
	uint64_t refresh_at_ms;
	uint32_t rr;               /* replica reads: round robin */
	uint8_t *leg_hdrs;         /* PMC_LEGS_MAX + 1 buffers of PMC_LEG_BUF_BYTES */
	struct pmc_fan fans[PMC_FANOUTS_MAX];
};

/* The client's user (auth.c): its MAC key, session and last seq. */
struct pmc_auth {
	uint8_t mac_key[PM_AUTH_MAC_KEY_BYTES];
	uint32_t session;
	uint64_t seq;
};

struct pm_client {
	struct pm_client_config cfg;
	struct pmc_auth auth;
	const struct pmc_hooks *hooks; /* NULL: the sockets */
	void *hook_state;
	bool hook_up;              /* hooks: the device is connected */
	bool tcp;
	bool cluster;
	struct pmc_link *links;    /* one server: [0]; cluster: PMC_LINKS_MAX */
	uint32_t nlinks;
	uint32_t *dirty;           /* dests of queues with frames to send */
	uint32_t ndirty;
	struct pmc_slot *slots;
	uint32_t nslots;           /* max_in_flight + PM_CLIENT_LARGE_SLOTS (cluster: + the
				      map slot + PMC_LEGS_MAX legs) */
	uint32_t free_small, free_large;
	uint32_t busy;             /* request slots in PMC_WAIT (not legs, not the map's) */
	uint64_t seq;
	uint64_t next_deadline_ms; /* earliest deadline of a waiting slot (or later) */
	uint64_t rng;
	bool in_cb;                /* a callback is running: no blocking, no receive */
	uint8_t *small_bufs, *large_bufs;
	uint8_t *rx;               /* UDP receive buffer */
	uint32_t rx_cap;
	float *vscratch;           /* PM_WIRE_DIM_MAX floats: VGET results */
	float *vec_le;             /* PM_WIRE_DIM_MAX floats: vectors swapped on big endian */
	struct pm_wire_request *witems; /* PM_WIRE_BATCH_ITEMS_MAX: a batch's items, encoding */
	float *batch_le;           /* PM_FRAME_BYTES_MAX bytes: a batch's vectors, big endian */
	uint32_t completed_turn;   /* completions during the current poll */
	uint32_t last_retry_ms;    /* hint of the last E_THROTTLED completion */
	struct pm_wire_primary last_primary; /* body of the last E_READONLY completion */
	struct pm_client_stats stats;
	struct pmc_cluster cl;     /* cluster mode only */
};

/* client.c */
/* pm_client_open with a hook transport (hooks NULL: the sockets). The client
 * owns state from here on, also on failure (hooks->close frees it). */
enum pm_client_status pmc_open(const struct pm_client_config *cfg, const struct pmc_hooks *hooks,
			       void *state, struct pm_client **out);
uint64_t pmc_now_ms(void);
/* Microseconds per millisecond: pmc_now_us() / PMC_US_PER_MS == pmc_now_ms()
 * read at the same instant. */
#define PMC_US_PER_MS 1000u
uint64_t pmc_now_us(void);
uint64_t pmc_attempt_wait_ms(struct pm_client *c, uint32_t attempt);
struct pmc_slot *pmc_slot_by_id(struct pm_client *c, uint64_t id);
/* Release a completed slot: run the callback (if any), then free or park it.
 * A leg's end goes to its fan-out, the map slot's to the refresh. */
void pmc_complete(struct pm_client *c, struct pmc_slot *s, struct pm_client_result *res);
void pmc_fail(struct pm_client *c, struct pmc_slot *s, enum pm_client_status st);
/* Free a slot: the waiting one (unlinked from its queue), or an unused one. */
void pmc_slot_release(struct pm_client *c, struct pmc_slot *s);
void pmc_slot_free_unused(struct pm_client *c, struct pmc_slot *s);
/* A request slot waiting for its reply, as slot_start leaves it. */
void pmc_slot_arm(struct pm_client *c, struct pmc_slot *s, uint64_t now);

static inline bool pmc_op_keyed(uint8_t op)
{
	return op == PM_WIRE_OP_SET || op == PM_WIRE_OP_GET || op == PM_WIRE_OP_DEL ||
	       op == PM_WIRE_OP_VADD || op == PM_WIRE_OP_VGET || op == PM_WIRE_OP_VDEL ||
	       op == PM_WIRE_OP_VSETATTR;
}

/* errors.c */
enum pm_client_status pmc_from_wire(enum pm_wire_status st);

/* transport.c */
enum pm_client_status pmc_connect(struct pm_client *c);
void pmc_disconnect(struct pm_client *c, enum pm_client_status why);
/* A link's address (its socket closed); its queues and addresses, made at
 * its first use (a cluster's) or at open (one server's); their memory. */
void pmc_link_set(struct pm_client *c, uint32_t l, uint32_t ip_be, uint16_t udp_port,
		  uint16_t tcp_port);
bool pmc_link_alloc(struct pm_client *c, uint32_t l);
void pmc_link_free(struct pmc_link *k);
/* Open link l's socket (TCP: connect within timeout_ms), making its queues
 * at first use. E_CONNECTION or E_ALLOC when it cannot. */
enum pm_client_status pmc_link_open(struct pm_client *c, uint32_t l);
/* Close link l's socket; its queued frames leave their queues (the caller
 * decides what becomes of their requests). */
void pmc_link_close(struct pm_client *c, uint32_t l);
void pmc_enqueue(struct pm_client *c, struct pmc_slot *s);
/* pmc_enqueue() with the clock read already (pmc_now_us(): a submit reads it
 * once for the deadline and the queue, issue 20). */
void pmc_enqueue_at(struct pm_client *c, struct pmc_slot *s, uint64_t now_us);
void pmc_unlink(struct pm_client *c, struct pmc_slot *s);
void pmc_flush_all(struct pm_client *c);
void pmc_receive(struct pm_client *c);
/* Hand every frame of one datagram received from link 0 to pmc_on_frame
 * (the hook transports'). */
void pmc_on_datagram(struct pm_client *c, const uint8_t *p, size_t len);

static inline struct pmc_queue *pmc_queue_of(struct pm_client *c, uint32_t dest)
{
	return &c->links[PMC_DEST_LINK(dest)].queues[PMC_DEST_QUEUE(dest)];
}

/* Whether the transport is open: the socket, or a hook transport's device.
 * A cluster client opens its links as it routes: always open. */
static inline bool pmc_is_open(const struct pm_client *c)
{
	return c->cluster || (c->hooks ? c->hook_up : c->links[0].fd >= 0);
}

/* reply.c */
/* Handle the reply frame at p, received from link l; returns its length, 0
 * if its header is unusable. */
size_t pmc_on_frame(struct pm_client *c, uint32_t l, const uint8_t *p, size_t len);

/* Cookies (guard.c, issue 19): the link's COOKIE frame as an iovec in front
 * of a datagram (1, or 0 when none is known or the link is TCP); a RETRY
 * reply for s from link l: true when s was resent at once, false when the
 * caller gets E_RETRY. */
uint32_t pmc_link_cookie_iov(const struct pm_client *c, struct pmc_link *k, struct iovec *iov);
void pmc_link_cookie_forget(struct pmc_link *k);
bool pmc_on_retry(struct pm_client *c, uint32_t l, struct pmc_slot *s,
		  const struct pm_reply_view *rv);
/* Forget the items a paged request has received (before a resend). */
void pmc_reset_items(struct pmc_slot *s);
void pmc_check_timeouts(struct pm_client *c, uint64_t now);
/* Send a slot again (the same frame, the same id) with the next attempt's wait. */
void pmc_resend(struct pm_client *c, struct pmc_slot *s, uint64_t now);
bool pmc_can_resend(const struct pm_client *c, const struct pmc_slot *s);

/* Lower next_deadline_ms to t. */
static inline void pmc_deadline(struct pm_client *c, uint64_t t)
{
	if (t < c->next_deadline_ms)
		c->next_deadline_ms = t;
}

/* cluster.c */
/* The map slot and the legs' slots at the end of the slot array, each leg's
 * buffer buf_bytes (its header, and room for an AUTH trailer in a cluster),
 * and every fan free. */
enum pm_client_status pmc_legs_alloc(struct pm_client *c, uint32_t buf_bytes);
enum pm_client_status pmc_cluster_alloc(struct pm_client *c);
void pmc_cluster_free(struct pm_client *c);
/* Fetch the first map from the seed (pm_client_open), within the budget. */
enum pm_client_status pmc_cluster_bootstrap(struct pm_client *c);
/* Route a request slot by the map: its dest (its link opened). false when it
 * has none now; *why says why (E_READONLY: its set has no primary;
 * E_CONNECTION: the node cannot be reached). */
bool pmc_cluster_route(struct pm_client *c, struct pmc_slot *s, enum pm_client_status *why);
/* An attempt ended without a result (a timeout, a lost link): park the
 * request for a map refresh, or fail it with st when its attempts are spent. */
void pmc_cluster_retry(struct pm_client *c, struct pmc_slot *s, enum pm_client_status st);
/* Its node refused it (st: E_MOVED or E_READONLY): park it for a map
 * refresh that routes it elsewhere, or for its back-off when the map does
 * not; fail it with st when its attempts are spent. */
void pmc_cluster_refused(struct pm_client *c, struct pmc_slot *s, enum pm_client_status st);
/* A request that pmc_cluster_route could not route (why): parked until its
 * attempt's time has passed or a newer map comes, or failed when its
 * attempts are spent. */
void pmc_cluster_unroutable(struct pm_client *c, struct pmc_slot *s, enum pm_client_status why);
void pmc_cluster_on_timeout(struct pm_client *c, struct pmc_slot *s, uint64_t now);
/* Link l failed (its TCP stream was lost or timed out): what was routed to
 * it is retried. */
void pmc_cluster_link_down(struct pm_client *c, uint32_t l, enum pm_client_status why);
/* Start the refresh that is due; returns the earliest time one is due, or
 * UINT64_MAX. */
uint64_t pmc_cluster_tick(struct pm_client *c, uint64_t now);
/* The MAP request's reply (a map to decode), or its end without one. */
void pmc_cluster_map_reply(struct pm_client *c, struct pmc_slot *s, const struct pm_reply_view *rv);
void pmc_cluster_map_done(struct pm_client *c, struct pmc_slot *s, enum pm_client_status st);
/* Whether an op fans out to every replica set in cluster mode. */
bool pmc_fans_out(uint8_t op);
/* Fan-outs: a free entry (polling until one is), legs started for a parent,
 * a leg's pages and its end. */
enum pm_client_status pmc_fan_wait(struct pm_client *c);
void pmc_fan_start(struct pm_client *c, struct pmc_slot *parent, uint32_t k);
/* Leg j of fan f, taken and armed: the parent's frame with the leg's own
 * request id (its body is the parent's); the caller sets its destination
 * and queues it. */
struct pmc_slot *pmc_leg_take(struct pm_client *c, struct pmc_slot *parent, uint32_t f,
			      uint16_t j, uint64_t now);
enum pm_client_status pmc_fan_take_hits(struct pm_client *c, struct pmc_slot *leg,
					struct pm_reply_view *rv);
void pmc_fan_leg_done(struct pm_client *c, struct pmc_slot *leg,
		      const struct pm_client_result *res);

/* shard_fan.c (issue 20): a KNN over one server's shards, fanned out by
 * the client. Whether this client does (its configuration), whether it does
 * for op, the legs' slots (pm_client_open), and a parent's legs started. */
bool pmc_shard_fan_on(const struct pm_client *c);
bool pmc_shard_fans(const struct pm_client *c, uint8_t op);
enum pm_client_status pmc_shard_fan_alloc(struct pm_client *c);
void pmc_shard_fan_start(struct pm_client *c, struct pmc_slot *parent, uint32_t k);

#define PMC_ASSERT(cond)                                                                \
	do {                                                                            \
		if (__builtin_expect(!(cond), 0))                                       \
			pmc_panic(__FILE__, __LINE__, #cond);                           \
	} while (0)
_Noreturn void pmc_panic(const char *file, int line, const char *what);

/* ---------------------------------------------------------------- auth.c (issue 19) */

/* The MAC key and session of cfg.user (nothing without one). */
void pmc_auth_init(struct pm_client *c);
/* Bytes a frame grows by when signed (0 without a user). */
uint32_t pmc_auth_bytes(const struct pm_client *c);
/* Sign s's frame for its queue's port with the next seq (again for a resend);
 * nothing over TCP, whose stream proved its user (pmc_auth_prove). */
void pmc_auth_sign(struct pm_client *c, struct pmc_slot *s);
/* A fresh TCP stream fd (nothing sent on it yet) proves cfg.user: AUTH
 * HELLO, then PROVE, waited for (timeout_ms each). OK, E_AUTH when the server
 * refused the user, E_CONNECTION when the stream failed or was too slow. */
enum pm_client_status pmc_auth_prove(struct pm_client *c, int fd);

#endif
