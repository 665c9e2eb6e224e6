/* SPDX-License-Identifier: MIT
 *
 * msg.h — what one worker sends another, and how: a message is a ring record
 * (ring.h) holding a struct pm_msg header, then a frame or reply frames. Every
 * ordered pair of workers has its own ring (pm_ring_between, worker.h), the
 * admin thread one each way per worker; a producer that finds a ring full is
 * told so and drops (counted) or keeps what it wanted to send — no core ever
 * waits for another. A worker that sleeps is woken through its eventfd after
 * a message was queued for it (pm_wake).
 *
 * A pm_dest says where a reply goes: a UDP (or DPDK) sender, a TCP
 * connection of one worker, or the admin thread; it travels with a forwarded
 * frame so that the shard's owner replies to the client itself.
 */
#ifndef POMAI_DATAPLANE_MSG_H
#define POMAI_DATAPLANE_MSG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "ring.h"

struct pm_daemon;
struct pm_worker;

enum pm_msg_type {
	PM_MSG_FORWARD = 1,  /* a key frame for its owner; the owner replies to the client */
	PM_MSG_FANOUT,       /* a frame every shard applies; reply frames go back */
	PM_MSG_FANOUT_REPLY, /* encoded reply frames of one shard for a fan-out */
	PM_MSG_TCP_REPLY,    /* reply frames for a TCP connection of the receiving worker */
	PM_MSG_DGRAM_REPLY,  /* reply frames for a DPDK port only the receiving worker can send on */
	PM_MSG_ADMIN_FRAME,  /* admin -> worker: a request frame to serve as a client's */
	PM_MSG_ADMIN_REPLY,  /* worker -> admin: its reply frames (dest.gen: the call's tag) */
	PM_MSG_ADMIN_CALL,   /* admin -> worker: a struct pm_admin_call on its quota table */
	PM_MSG_REPL_CONN,    /* admin -> worker: a replica's connection and its HELLO (repl.h) */
	PM_MSG_REPL_CTL,     /* admin -> worker: a struct pm_repl_ctl (follow, stop, promote) */
};

#define PM_CONN_NONE UINT32_MAX
#define PM_CONN_ADMIN (UINT32_MAX - 1) /* the reply goes to the admin thread */
#define PM_PORT_KERNEL UINT32_MAX
/* struct pm_dest's budget: no limit (a validated address; issue 19). */
#define PM_BUDGET_NONE UINT32_MAX

/* Where a reply goes: a UDP address, or a TCP connection of one worker. */
struct pm_dest {
	struct sockaddr_in addr;   /* UDP: the sender */
	uint32_t worker;           /* TCP: the worker that owns the connection; DPDK: the
				    * worker that received the request */
	uint32_t conn;             /* TCP: its slot there; PM_CONN_NONE for UDP */
	uint32_t gen;              /* TCP: the slot's generation (a reused slot differs) */
	uint32_t port;             /* UDP: the DPDK port it came in on, or PM_PORT_KERNEL */
	uint32_t owed;             /* TCP: output bytes the connection keeps for this reply */
	uint32_t budget;           /* UDP: reply bytes this frame may receive (guard.h), set by
				    * serve_datagram for every datagram's frame; PM_BUDGET_NONE
				    * once its address is validated. Read only on the datagram
				    * paths: a TCP or admin dest (zero-initialised) never is. */
	/* issue 19 (users.h): the authenticated user whose frame this answers (0:
	 * none), kept by forwards and fan-outs for rights and quotas; and the
	 * server port the datagram came in on (host order; 0 for TCP and the
	 * admin), which a frame's AUTH trailer must name */
	uint16_t user;
	uint16_t dport;
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

/* Replies for another worker's TCP connections that found the ring to it
 * full, in order (msg.c): records [u32 bytes, u32 frame bytes, pm_msg, frames]. */
struct pm_reply_wait {
	uint8_t *buf;              /* PM_TCP_CREDIT_BYTES, mapped: touched only when used */
	uint32_t head, tail;       /* the records are buf[head, tail) */
	uint32_t high;             /* most of buf used since it last drained */
};

/* ---------------------------------------------------------------- posting */

/* A ring message: header m, then body; false (nothing queued) when the ring is full. */
bool pm_ring_send(struct pm_ring *r, uint32_t type, const struct pm_msg *m, const uint8_t *body,
		  uint32_t len);
/* Wake worker `to` if it sleeps (after a message was queued for it). */
void pm_wake(struct pm_daemon *d, uint32_t to);
/* Post a message to another worker's ring and wake it if it sleeps; false
 * (counted in dropped_ring_full) when the ring is full. */
bool pm_post(struct pm_worker *w, uint32_t to, uint32_t type, const struct pm_msg *m,
	     const uint8_t *body, uint32_t len);
/* Reply bytes for the admin thread (ADMIN_REPLY): into this worker's
 * admin-out ring, and the admin woken; counted and dropped when the ring is
 * full (the admin command then times out). */
void pm_post_admin(struct pm_worker *w, const struct pm_msg *m, const uint8_t *body,
		   uint32_t len);

/* ---------------------------------------------------------------- reading */

/* Nothing waits in any ring to this worker (the admin's included). */
bool pm_rings_empty(struct pm_worker *w);

/* ---------------------------------------------------------------- reply credit */

/* May a TCP connection's frame of len bytes, whose reply takes at most
 * `owed` bytes, be forwarded to `owner` now: room in the ring to it, and
 * credit for the reply? */
bool pm_forward_fits(struct pm_worker *w, uint32_t owner, uint32_t len, uint32_t owed);
/* A frame was forwarded to owner: its reply's credit is taken ... */
void pm_credit_take(struct pm_worker *w, uint32_t owner, uint32_t owed);
/* ... and comes back with the reply from worker `from`. */
void pm_credit_return(struct pm_worker *w, uint32_t from, uint32_t owed);

/* ---------------------------------------------------------------- replies for other workers' connections */

/* With TCP: a reply queue per other worker (pm_worker_alloc / _free). */
int pm_reply_wait_alloc(struct pm_worker *w);
void pm_reply_wait_free(struct pm_worker *w);
/* A reply for a connection of worker `to`: into the ring to it, or, when
 * that is full (or replies wait already: they leave in order), into the
 * queue that waits for it. */
void pm_post_tcp_reply(struct pm_worker *w, uint32_t to, const struct pm_msg *m,
		       const uint8_t *frames, uint32_t len);
/* Post the replies waiting in reply_wait; how many still wait. */
uint32_t pm_reply_wait_flush(struct pm_worker *w);

#endif
