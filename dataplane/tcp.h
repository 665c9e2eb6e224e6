/* SPDX-License-Identifier: MIT
 *
 * tcp.h — the stream side of pomaid (tcp.c): every worker accepts from the
 * one listening socket and serves its own connections from its loop, with
 * bounded buffers and a reply's room kept before its frame runs; every bound
 * is in dp_limits.h.
 */
#ifndef POMAI_DATAPLANE_TCP_H
#define POMAI_DATAPLANE_TCP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

#include "dp_limits.h"

struct pm_config;
struct pm_dest;
struct pm_reply;
struct pm_worker;

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
	/* issue 19: the user the stream proved (AUTH HELLO / PROVE; 0: none) and
	 * the challenge its next PROVE must answer */
	uint16_t user;
	bool challenged;
	uint8_t challenge[PM_AUTH_CHALLENGE_BYTES];
};

/* The listening socket (tcp_port), before the workers start: its fd, or -1
 * with a message. */
int pm_tcp_listen(const struct pm_config *cfg, char *err, size_t errlen);
/* The epoll token of replication's sockets in a worker's set: pm_tcp_turn
 * sets w->repl_ready, and repl_io.c reads them in its turn (and wakes a
 * sleeping worker for them). */
#define PM_TCP_REPL_TOKEN (UINT32_MAX - 1u)
/* A worker's epoll set and connection table; listen_fd < 0: no TCP. */
int pm_tcp_worker_open(struct pm_worker *w, int listen_fd);
/* With TCP, the worker's UDP socket joins the epoll set it waits on every
 * turn anyway: the turn then reads the socket only when epoll says a
 * datagram waits (w->udp_ready), one system call per idle turn instead of
 * two (recvmmsg found nothing). Without TCP it is read every turn, as before.
 * 0, or -errno (the socket is then read every turn). */
int pm_tcp_watch_udp(struct pm_worker *w);
void pm_tcp_worker_close(struct pm_worker *w);
/* Accept, read, execute, write, and apply the deadlines; how much work it found. */
uint32_t pm_tcp_turn(struct pm_worker *w);
/* Output bytes the reply to a frame of op may take at most (every page). */
uint32_t pm_tcp_reply_bytes_max(uint8_t op);
/* A reply for a connection of this worker, encoded into its output. */
void pm_tcp_reply(struct pm_worker *w, const struct pm_dest *to, const struct pm_reply *rep);
/* Reply frames another worker sent for a connection here (settles a forward). */
void pm_tcp_deliver(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
		    uint32_t len);
/* Append reply frames of this worker's own to a connection (no forward to settle). */
void pm_tcp_queue(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
		  uint32_t len);

#endif
