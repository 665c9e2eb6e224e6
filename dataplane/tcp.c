/* SPDX-License-Identifier: MIT
 *
 * tcp.c — the stream side of the kernel backend. Every worker accepts from the
 * one listening socket (EPOLLEXCLUSIVE: one worker is woken per connection) and
 * serves its own connections from its loop: non-blocking reads into a bounded
 * buffer, frames executed as soon as they are whole, replies appended to a
 * bounded output buffer and written when the socket takes them. Nothing waits:
 * a client that sends half a frame, or never reads its replies, only fills its
 * own buffers; when it has made no progress for PM_TCP_STALL_MS its connection
 * is closed. A client that connects and sends nothing holds a slot only until
 * the table is full and a new connection needs it (PM_TCP_IDLE_EVICT_MS). A
 * frame whose header cannot be read closes the connection (a stream cannot be
 * resynchronised), after an error reply for its id when its header and magic
 * arrived (docs/protocol.md §6.3).
 *
 * Frames are the same as over UDP, concatenated; replies come back in order of
 * completion, matched by request id (a frame forwarded to another shard, or a
 * fan-out, may finish after a later local one).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec.h"
#include "daemon.h"

#define LISTEN_TOKEN UINT32_MAX
#define EVENTS_PER_TURN 64u
#define LISTEN_BACKLOG 256

int pm_tcp_listen(const struct pm_config *cfg, char *err, size_t errlen)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->tcp_port) };
	inet_pton(AF_INET, cfg->bind, &a.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
		snprintf(err, errlen, "tcp %s:%u: %s", cfg->bind, cfg->tcp_port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int pm_tcp_worker_open(struct pm_worker *w, int listen_fd)
{
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	w->conns = calloc(PM_TCP_CONNS_MAX, sizeof(*w->conns));
	if (w->ep < 0 || !w->conns)
		return -1;
	for (uint32_t i = 0; i < PM_TCP_CONNS_MAX; i++)
		w->conns[i].fd = -1;
	if (listen_fd < 0)
		return 0;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = LISTEN_TOKEN };
	return epoll_ctl(w->ep, EPOLL_CTL_ADD, listen_fd, &ev);
}

static void conn_close(struct pm_worker *w, uint32_t i)
{
	struct pm_conn *c = &w->conns[i];
	epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->rx);
	free(c->tx);
	*c = (struct pm_conn){ .fd = -1, .gen = c->gen + 1 };
	w->stats.tcp_closed++;
}

void pm_tcp_worker_close(struct pm_worker *w)
{
	for (uint32_t i = 0; w->conns && i < PM_TCP_CONNS_MAX; i++)
		if (w->conns[i].fd >= 0)
			conn_close(w, i);
	free(w->conns);
	if (w->ep >= 0)
		close(w->ep);
}

/* ---------------------------------------------------------------- accept */

/* A free slot for a new connection, or PM_TCP_CONNS_MAX. In a full table the
 * connection idle the longest (nothing read or written, nothing in flight)
 * gives its slot up once it has been idle for PM_TCP_IDLE_EVICT_MS, counted:
 * connections that never send cannot hold the table, and a client's idle
 * connection is only closed when a new client needs its slot. */
static uint32_t conn_slot(struct pm_worker *w)
{
	uint32_t victim = PM_TCP_CONNS_MAX;
	for (uint32_t i = 0; i < PM_TCP_CONNS_MAX; i++) {
		const struct pm_conn *c = &w->conns[i];
		if (c->fd < 0)
			return i;
		if (c->rx_len || c->tx_len || c->inflight || w->now_ms - c->last_ms < PM_TCP_IDLE_EVICT_MS)
			continue;
		if (victim == PM_TCP_CONNS_MAX || c->last_ms < w->conns[victim].last_ms)
			victim = i;
	}
	if (victim < PM_TCP_CONNS_MAX) {
		conn_close(w, victim);
		w->stats.tcp_idle_evicted++;
	}
	return victim;
}

static void conn_accept(struct pm_worker *w)
{
	int listen_fd = w->d->listen_fd;
	for (uint32_t n = 0; n < PM_TCP_ACCEPT_BURST; n++) {
		struct sockaddr_in peer = { 0 };
		socklen_t plen = sizeof(peer);
		int fd = accept4(listen_fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (!pm_allow_match(&w->d->allow, peer.sin_addr.s_addr)) {
			close(fd); /* outside allow_networks: not one byte is read */
			w->stats.dropped_not_allowed++;
			continue;
		}
		uint32_t i = conn_slot(w);
		struct pm_conn *c = &w->conns[i < PM_TCP_CONNS_MAX ? i : 0];
		uint8_t *rx = i < PM_TCP_CONNS_MAX ? malloc(PM_TCP_RX_BYTES) : NULL;
		uint8_t *tx = rx ? malloc(PM_TCP_TX_BYTES) : NULL;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = i };
		if (!tx || epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			free(rx);
			free(tx);
			close(fd); /* table full or no memory: refuse, counted */
			w->stats.tcp_refused++;
			continue;
		}
		*c = (struct pm_conn){ .fd = fd, .gen = c->gen, .rx = rx, .tx = tx,
				       .last_ms = w->now_ms, .peer = peer };
		w->stats.tcp_accepted++;
	}
}

/* ---------------------------------------------------------------- output */

/* Room for `len` more bytes of output, compacting first; false if it cannot be had. */
static bool tx_room(struct pm_conn *c, uint32_t len)
{
	if (PM_TCP_TX_BYTES - c->tx_len >= len)
		return true;
	memmove(c->tx, c->tx + c->tx_off, c->tx_len - c->tx_off);
	c->tx_len -= c->tx_off;
	c->tx_off = 0;
	return PM_TCP_TX_BYTES - c->tx_len >= len;
}

static struct pm_conn *dest_conn(struct pm_worker *w, const struct pm_dest *to)
{
	struct pm_conn *c = &w->conns[to->conn];
	return c->fd >= 0 && c->gen == to->gen ? c : NULL;
}

void pm_tcp_reply(struct pm_worker *w, const struct pm_dest *to, const struct pm_reply *rep)
{
	struct pm_conn *c = dest_conn(w, to);
	if (!c)
		return;
	(void)tx_room(c, PM_TCP_TX_BYTES); /* compact: all the room there is */
	uint32_t n = pm_reply_frames(rep, c->tx + c->tx_len, PM_TCP_TX_BYTES - c->tx_len);
	if (n == 0) {
		w->stats.dropped_tx_full++; /* the client does not read: give up on it */
		conn_close(w, to->conn);
		return;
	}
	c->tx_len += n;
}

void pm_tcp_deliver(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
		    uint32_t len)
{
	struct pm_conn *c = dest_conn(w, to);
	if (!c)
		return; /* closed since: the reply has nowhere to go */
	c->inflight -= c->inflight > 0;
	pm_tcp_queue(w, to, frames, len);
}

void pm_tcp_queue(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
		  uint32_t len)
{
	struct pm_conn *c = dest_conn(w, to);
	if (!c)
		return;
	if (!tx_room(c, len)) {
		w->stats.dropped_tx_full++;
		conn_close(w, to->conn);
		return;
	}
	memcpy(c->tx + c->tx_len, frames, len);
	c->tx_len += len;
}

static void conn_write(struct pm_worker *w, uint32_t i)
{
	struct pm_conn *c = &w->conns[i];
	while (c->tx_off < c->tx_len) {
		ssize_t n = send(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				conn_close(w, i);
			return;
		}
		c->tx_off += (uint32_t)n;
		c->last_ms = w->now_ms;
	}
	c->tx_off = c->tx_len = 0;
}

/* ---------------------------------------------------------------- input */

/* Execute every whole frame in the input buffer; false if the stream is broken. */
static bool conn_frames(struct pm_worker *w, uint32_t i)
{
	struct pm_conn *c = &w->conns[i];
	struct pm_dest from = { .addr = c->peer, .worker = w->id, .conn = i, .gen = c->gen };
	uint32_t off = 0;
	while (c->rx_len - off >= PM_FRAME_HEADER_BYTES && c->inflight < PM_TCP_INFLIGHT_MAX &&
	       tx_room(c, PM_TCP_TX_RESERVE_BYTES)) {
		struct pm_frame_header h;
		enum pm_status st = pm_header_decode(c->rx + off, c->rx_len - off, &h);
		if (st != PM_OK && st != PM_E_FRAME_TRUNCATED && !pm_header_usable(st)) {
			pm_answer_unusable(w, c->rx + off, c->rx_len - off, st, &from);
			return false;
		}
		uint32_t flen = PM_FRAME_HEADER_BYTES + h.body_len;
		if (flen > c->rx_len - off)
			break; /* the rest of the frame has not arrived */
		struct pm_request req;
		size_t used;
		st = pm_request_decode(c->rx + off, flen, &req, &used);
		w->stats.rx_frames++;
		if (pm_refuse_reply(w, c->rx + off, flen))
			; /* a reply is never answered (protocol §6.5) */
		else if (!pm_quota_admit(w, &req, flen, &from))
			; /* answered THROTTLED */
		else if (st == PM_OK)
			pm_serve_frame(w, &req, c->rx + off, flen, &from);
		else
			pm_send_reply(w, &from, &(struct pm_reply){ .status = st, .op = req.op,
								    .id = req.id });
		if (c->fd < 0)
			return true; /* closed while replying */
		off += flen;
	}
	memmove(c->rx, c->rx + off, c->rx_len - off);
	c->rx_len -= off;
	return true;
}

/* The stream lost its framing: what was answered is written if the socket
 * takes it at once, then the connection is closed (counted). */
static void conn_broken(struct pm_worker *w, uint32_t i)
{
	w->stats.dropped_malformed++;
	if (w->conns[i].fd >= 0)
		conn_write(w, i);
	if (w->conns[i].fd >= 0)
		conn_close(w, i);
}

static void conn_read(struct pm_worker *w, uint32_t i)
{
	struct pm_conn *c = &w->conns[i];
	while (c->rx_len < PM_TCP_RX_BYTES) { /* full: frames wait for output room */
		ssize_t n = recv(c->fd, c->rx + c->rx_len, PM_TCP_RX_BYTES - c->rx_len, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_close(w, i);
			return;
		}
		if (n > 0) {
			c->rx_len += (uint32_t)n;
			c->last_ms = w->now_ms;
		}
		if (!conn_frames(w, i)) {
			conn_broken(w, i);
			return;
		}
		if (c->fd < 0 || n < 0)
			return; /* drained or closed */
	}
}

/* ---------------------------------------------------------------- the turn */

uint32_t pm_tcp_turn(struct pm_worker *w)
{
	struct epoll_event ev[EVENTS_PER_TURN];
	if (w->d->listen_fd < 0)
		return 0; /* tcp_port = 0: no connections, and no system call per turn */
	int n = epoll_wait(w->ep, ev, EVENTS_PER_TURN, 0);
	for (int e = 0; e < n; e++) {
		if (ev[e].data.u32 == LISTEN_TOKEN)
			conn_accept(w);
		else if (w->conns[ev[e].data.u32].fd >= 0)
			conn_read(w, ev[e].data.u32);
	}
	for (uint32_t i = 0; i < PM_TCP_CONNS_MAX; i++) {
		struct pm_conn *c = &w->conns[i];
		if (c->fd < 0)
			continue;
		if (c->tx_len)
			conn_write(w, i);
		if (c->fd >= 0 && c->rx_len && !conn_frames(w, i)) /* frames held back for room */
			conn_broken(w, i);
		if (c->fd >= 0 && (c->rx_len || c->tx_len) && w->now_ms - c->last_ms > PM_TCP_STALL_MS) {
			w->stats.tcp_stalled++;
			conn_close(w, i);
		}
	}
	return n > 0 ? (uint32_t)n : 0;
}
