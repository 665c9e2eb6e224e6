/* SPDX-License-Identifier: MIT
 *
 * client_fake.h — an in-process stand-in for pomaid, for the client suite.
 *
 * One thread serves `shards` UDP sockets on consecutive loopback ports
 * (base_port + i) and a TCP listener on base_port - 1, like pomaid. Every
 * frame is decoded with pm_request_decode, applied to ONE real engine shard
 * (under a mutex) at the fake's injected clock, and answered with
 * pm_reply_encode (paged replies with the cursor loop), several reply frames
 * per datagram as the daemon may. SNAPSHOT, which the engine does not apply,
 * is answered with fake_opts.snapshot_status and counted in `snapshots`. It
 * checks the client's routing: a keyed frame must arrive on its key's shard
 * port, INFO, SNAPSHOT and collection ops on shard 0 (KNN anywhere); every
 * other arrival is counted in `misroutes`.
 *
 * Faults it can inject (set in fake_opts before fake_start): drop every Nth
 * request or reply datagram, send every reply datagram twice, never answer,
 * answer the first N requests with BUSY, and lose the second page of the first
 * multi-page reply. fake_mute() stops (and resumes) answering at any time.
 *
 * A cluster node (fake_cluster_set, tests/test_client_cluster.c): the fake
 * then answers MAP with the wire form it was given (NOT_FOUND without one),
 * answers a keyed request whose slot its view gives to another set with
 * MOVED (the view's epoch, the slot, that set's primary), and a write to a
 * node that is not its set's primary with READONLY (that primary), as a
 * cluster pomaid does (cluster-iface.md); the rest it serves.
 */
#ifndef POMAI_TESTS_CLIENT_FAKE_H
#define POMAI_TESTS_CLIENT_FAKE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster_map.h"
#include "codec.h"
#include "shard.h"

#define FAKE_SHARDS_MAX 8u
#define FAKE_CONNS_MAX 4u
/* Reply frames are packed into datagrams of at most this size (a larger
 * frame goes alone), like the client's own batching. */
#define FAKE_DATAGRAM_BYTES 1400u
/* The fake's single engine shard. */
#define FAKE_ARENA_BYTES (UINT64_C(64) << 20)
#define FAKE_SEEDS (1u << 16)
/* Clock the shard starts at (ms), so TTL arithmetic never nears 0. */
#define FAKE_CLOCK_START_MS UINT64_C(1000000)

struct fake_opts {
	uint32_t shards;          /* UDP ports, 1..FAKE_SHARDS_MAX */
	uint32_t drop_rx_every;   /* drop every Nth request datagram; 0: none */
	uint32_t drop_tx_every;   /* drop every Nth reply datagram; 0: none */
	bool duplicate;           /* send each reply datagram twice */
	bool mute;                /* read everything, answer nothing */
	uint32_t busy_first;      /* answer the first N requests with BUSY */
	uint32_t page_bytes;      /* cap of one paged reply frame; 0: largest frame */
	bool lose_page1_once;     /* drop page 1 of the first reply of >= 2 pages */
	enum pm_status snapshot_status; /* the answer to SNAPSHOT (PM_OK: started) */
	uint32_t reply_delay_us;  /* a slow server: each UDP reply datagram this late */
};

/* A cluster node's view of the map (fake_cluster_set). */
struct fake_cnode {
	bool on;                  /* a cluster node: MAP, MOVED and READONLY as above */
	uint8_t map[PM_CMAP_WIRE_BYTES_MAX]; /* what MAP answers; map_len 0: NOT_FOUND */
	uint32_t map_len;
	uint64_t epoch;           /* MOVED's map epoch */
	uint16_t set;             /* the node's set */
	bool primary;             /* writes are served (else READONLY) */
	uint16_t slot_set[PM_CLUSTER_SLOTS];
	struct pm_wire_primary set_primary[PM_CLUSTER_SETS_MAX];
};

struct fake_conn {
	int fd;                   /* -1: unused */
	uint8_t *buf;             /* 2 x PM_FRAME_BYTES_MAX */
	uint32_t len;
};

struct fake {
	struct fake_opts o;
	uint32_t base_port;
	int udp[FAKE_SHARDS_MAX];
	int listen_fd;
	struct fake_conn conns[FAKE_CONNS_MAX];
	pthread_t thread;
	atomic_bool stop;
	atomic_bool close_conns;  /* set by fake_close_conns, cleared when done */
	pthread_mutex_t mu;
	struct pm_shard shard;
	_Atomic uint64_t now_ms;  /* the shard's clock: tests advance it */
	_Atomic uint64_t misroutes, frames, rx_datagrams, rx_dropped, tx_dropped;
	_Atomic uint64_t snapshots; /* SNAPSHOT requests answered (not BUSY) */
	atomic_bool muted;        /* fake_mute: read everything, answer nothing */
	struct fake_cnode *cn;    /* the cluster view (under mu); NULL: not a cluster node */
	/* cluster counters */
	_Atomic uint64_t maps_served, moved_sent, readonly_sent, keyed_served;
	uint64_t rx_count, tx_count, requests; /* server thread only */
	bool page1_lost;
	uint8_t *out;             /* reply datagram being built */
	uint32_t out_len;
	uint8_t *frame;           /* one encoded reply frame */
};

/* Bind the ports (a random base in 20000..60000, retried while in use), set
 * up the shard and start the thread. 0, or -1 (message on stderr). */
int fake_start(struct fake *f, const struct fake_opts *o);
void fake_stop(struct fake *f);
void fake_advance(struct fake *f, uint64_t ms);
/* Close every TCP connection (as a restarting server would); returns when done. */
void fake_close_conns(struct fake *f);
/* Stop (true) or resume answering. */
void fake_mute(struct fake *f, bool mute);
/* Make f a cluster node with view v (copied); 0, or -1 (no memory). */
int fake_cluster_set(struct fake *f, const struct fake_cnode *v);
/* Whether f's shard holds key (a KV pair or a vector). */
bool fake_holds(struct fake *f, const void *key, uint32_t klen);

#endif
