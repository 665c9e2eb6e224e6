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
 * A transport other than the sockets (libpomai_memif) plugs in through struct
 * pmc_hooks: the queues, batching, retries and reply handling stay the same,
 * and the hooks replace connect / sendmsg / recv / poll. libpomai itself never
 * links such a transport; its open function passes the hooks to pmc_open().
 */
#ifndef POMAI_CLIENT_IMPL_H
#define POMAI_CLIENT_IMPL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "codec.h"
#include "pomai.h"

/* Slot index bits in a request id: PM_CLIENT_IN_FLIGHT_MAX + large slots fit. */
#define PMC_SLOT_BITS 16u
#define PMC_SLOT_MASK ((UINT64_C(1) << PMC_SLOT_BITS) - 1u)
#define PMC_NIL UINT32_MAX

/* A datagram of several frames stays under a common Ethernet path MTU (1500
 * minus IP and UDP headers, minus headroom for tunnels), so batching never
 * causes IP fragmentation; a single larger frame is sent alone. */
#define PMC_DATAGRAM_BYTES 1400u
/* Frames in one sendmsg, datagram or TCP (iovec array on the stack). */
#define PMC_BATCH_FRAMES_MAX 64u
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

_Static_assert(PM_CLIENT_IN_FLIGHT_MAX + PM_CLIENT_LARGE_SLOTS <= (1u << PMC_SLOT_BITS),
	       "slot indexes fit the id's slot bits");

enum pmc_state { PMC_FREE = 0, PMC_WAIT };

struct pmc_slot {
	uint64_t id;
	uint8_t *buf;           /* encoded frame */
	uint32_t cap, len;
	uint8_t op;             /* enum pm_wire_op */
	uint8_t state;          /* enum pmc_state */
	bool queued;
	bool large;             /* buffer of PM_FRAME_BYTES_MAX */
	bool gap_resent;        /* paged: resent after a gap, no progress since */
	uint8_t last_status;    /* enum pm_client_status of a BUSY-like reply, else 0 */
	uint32_t attempts;
	uint32_t dest;          /* UDP shard, or 0 for TCP */
	uint32_t prev, next;    /* queue links */
	uint32_t free_next;
	uint32_t tx_off;        /* TCP: bytes of the frame already written */
	uint32_t got;           /* paged replies: items received so far */
	uint64_t deadline_ms;
	pm_client_cb cb;
	void *arg;
	struct pm_client_knn_result *knn;
	struct pm_client_coll_list *colls;
	struct pm_client_text *info; /* INFO: the text collected over pages (got: its bytes) */
};

struct pmc_queue {
	uint32_t head, tail;
	uint32_t frames;
	uint32_t bytes;         /* of the queued frames */
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
	/* One datagram: n frames, total bytes, to shard dest (c->addrs[dest]). */
	enum pmc_send_result (*send)(struct pm_client *c, uint32_t dest, const struct iovec *iov,
				     uint32_t n, size_t total);
	/* Handle what has arrived, without waiting. */
	void (*receive)(struct pm_client *c);
	/* Wait at most wait_ms for replies (handling them); pmc_flush_all when a
	 * send waits for room (c->want_write). */
	void (*wait)(struct pm_client *c, uint32_t wait_ms);
};

struct pm_client {
	struct pm_client_config cfg;
	int fd;
	const struct pmc_hooks *hooks; /* NULL: the sockets */
	void *hook_state;
	bool hook_up;              /* hooks: the device is connected */
	bool tcp;
	uint32_t stream_gen;       /* TCP: incremented when the stream is closed */
	struct sockaddr_in *addrs; /* UDP: one per shard; TCP: [0] */
	struct pmc_queue *queues;  /* UDP: one per shard; TCP: [0] */
	uint32_t nqueues;
	uint32_t *dirty;           /* queues with frames to send */
	uint32_t ndirty;
	struct pmc_slot *slots;
	uint32_t nslots;           /* max_in_flight + PM_CLIENT_LARGE_SLOTS */
	uint32_t free_small, free_large;
	uint32_t busy;             /* slots in PMC_WAIT */
	uint64_t seq;
	uint64_t next_deadline_ms; /* earliest deadline of a waiting slot (or later) */
	uint64_t rng;
	bool in_cb;                /* a callback is running: no blocking, no receive */
	bool want_write;           /* the socket refused a send: wait for POLLOUT */
	uint8_t *small_bufs, *large_bufs;
	uint8_t *rx;               /* receive buffer */
	uint32_t rx_cap, rx_len;   /* TCP: bytes buffered */
	float *vscratch;           /* PM_WIRE_DIM_MAX floats: VGET results */
	float *vec_le;             /* PM_WIRE_DIM_MAX floats: vectors swapped on big endian */
	uint32_t completed_turn;   /* completions during the current poll */
	uint32_t last_retry_ms;    /* hint of the last E_THROTTLED completion */
	struct pm_wire_primary last_primary; /* body of the last E_READONLY completion */
	struct pm_client_stats stats;
};

/* client.c */
/* pm_client_open with a hook transport (hooks NULL: the sockets). The client
 * owns state from here on, also on failure (hooks->close frees it). */
enum pm_client_status pmc_open(const struct pm_client_config *cfg, const struct pmc_hooks *hooks,
			       void *state, struct pm_client **out);
uint64_t pmc_now_ms(void);
uint64_t pmc_attempt_wait_ms(struct pm_client *c, uint32_t attempt);
struct pmc_slot *pmc_slot_by_id(struct pm_client *c, uint64_t id);
/* Release a completed slot: run the callback (if any), then free or park it. */
void pmc_complete(struct pm_client *c, struct pmc_slot *s, struct pm_client_result *res);
void pmc_fail(struct pm_client *c, struct pmc_slot *s, enum pm_client_status st);
/* Free a slot: the waiting one (unlinked from its queue), or an unused one. */
void pmc_slot_release(struct pm_client *c, struct pmc_slot *s);
void pmc_slot_free_unused(struct pm_client *c, struct pmc_slot *s);

/* errors.c */
enum pm_client_status pmc_from_wire(enum pm_wire_status st);

/* transport.c */
enum pm_client_status pmc_connect(struct pm_client *c);
void pmc_disconnect(struct pm_client *c, enum pm_client_status why);
void pmc_enqueue(struct pm_client *c, struct pmc_slot *s);
void pmc_unlink(struct pm_client *c, struct pmc_slot *s);
void pmc_flush_all(struct pm_client *c);
void pmc_receive(struct pm_client *c);
/* Hand every frame of one received datagram to pmc_on_frame. */
void pmc_on_datagram(struct pm_client *c, const uint8_t *p, size_t len);

/* Whether the transport is open: the socket, or a hook transport's device. */
static inline bool pmc_is_open(const struct pm_client *c)
{
	return c->hooks ? c->hook_up : c->fd >= 0;
}

/* reply.c */
/* Handle the reply frame at p; returns its length, 0 if its header is unusable. */
size_t pmc_on_frame(struct pm_client *c, const uint8_t *p, size_t len);
/* Forget the items a paged request has received (before a resend). */
void pmc_reset_items(struct pmc_slot *s);
void pmc_check_timeouts(struct pm_client *c, uint64_t now);

#define PMC_ASSERT(cond)                                                                \
	do {                                                                            \
		if (__builtin_expect(!(cond), 0))                                       \
			pmc_panic(__FILE__, __LINE__, #cond);                           \
	} while (0)
_Noreturn void pmc_panic(const char *file, int line, const char *what);

#endif
