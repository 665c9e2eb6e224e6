/* SPDX-License-Identifier: MIT
 *
 * tcp.c — the stream side of the kernel backend. Every worker accepts from the
 * one listening socket (EPOLLEXCLUSIVE: one worker is woken per connection) and
 * serves its own connections from its loop: non-blocking reads into a bounded
 * buffer, frames executed as soon as they are whole, replies appended to a
 * bounded output buffer and written when the socket takes them. Nothing waits
 * on a client; every bound is in dp_limits.h (TCP connections).
 *
 * No reply is lost. Before a frame is executed, its reply's worst case
 * (pm_tcp_reply_bytes_max) is kept in the connection's output beside what is
 * buffered and what every earlier frame's reply may still take (c->owed);
 * when that does not fit, or the client has PM_TCP_TX_UNREAD_MAX unread, the
 * connection's frames wait. A frame for another shard also waits, in the
 * input buffer, until the ring to that shard has room and that shard may owe
 * this worker's connections one more reply (reply credit, worker.c); the
 * owner then always has somewhere to put the reply: the ring back or, when
 * that is full, a queue the credit keeps from overflowing. A reply therefore
 * always fits where it goes, and a frame either runs or waits, whole, in the
 * connection's input.
 *
 * Clients that hold resources: a frame must arrive whole within tcp_frame_ms
 * of its first byte (tcp_frame_deadline); a connection that holds bytes and
 * makes no progress for PM_TCP_STALL_MS is closed (tcp_stalled); one source
 * address holds at most tcp_conns_per_addr slots (tcp_addr_refused); all of a
 * worker's connections buffer at most tcp_buffer_bytes, past which the
 * stalest are closed first (tcp_buffer_evicted); a connection that connects
 * and sends nothing holds a slot only until the table is full and a new one
 * needs it (PM_TCP_IDLE_EVICT_MS). A frame whose header cannot be read closes
 * the connection (a stream cannot be resynchronised), after an error reply
 * for its id when its header and magic arrived (docs/protocol.md §6.3).
 *
 * Frames are the same as over UDP, concatenated; replies come back in order of
 * completion, matched by request id (a frame forwarded to another shard, or a
 * fan-out, may finish after a later local one); the replies to the key frames
 * one shard executes keep the order of those frames, except that in wal =
 * sync a write's reply waits for the disk while later reads go ahead.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access.h"
#include "bridge.h"
#include "cluster_map.h"
#include "common.h"
#include "msg.h"
#include "tcp.h"
#include "users.h"
#include "worker.h"

/* The listening socket's epoll token (a connection's is its slot). */
#define LISTEN_TOKEN UINT32_MAX
#define UDP_TOKEN (UINT32_MAX - 2u) /* PM_TCP_REPL_TOKEN is UINT32_MAX - 1 */
_Static_assert(UDP_TOKEN > PM_TCP_CONNS_MAX && PM_TCP_REPL_TOKEN > PM_TCP_CONNS_MAX,
	       "epoll tokens apart from connection slots");

/* ---------------------------------------------------------------- what a reply may take */

/* A page of a VQUERY or CLIST reply: header, sub-op, count. */
#define PAGE_HEAD_BYTES (PM_FRAME_HEADER_BYTES + 1u + 4u)
/* Largest item of a page: a hit (key length, key, distance); a collection
 * (name length, name, parameters 17, the element type fields 6, count 8,
 * bytes 8: PM_WIRE_COLL_BYTES_FIXED and the name). */
#define HIT_BYTES_MAX (4u + PM_KEY_BYTES_MAX + 4u)
#define COLL_BYTES_MAX (PM_WIRE_COLL_BYTES_FIXED + PM_COLLECTION_NAME_BYTES_MAX)
/* The encoder fills a page until the next item does not fit, so every page
 * but the last carries more item bytes than this; a reply of `items` item
 * bytes takes the items and a header per page. */
#define PAGE_ITEMS_MIN(item) (PM_FRAME_BYTES_MAX - PAGE_HEAD_BYTES - (item))
#define PAGED_BYTES(items, item) ((items) + ((items) / PAGE_ITEMS_MIN(item) + 1u) * PAGE_HEAD_BYTES)
/* A VQUERY's hits: k of them, whose keys the merge keeps in at most
 * PM_KNN_MERGE_BYTES (fanout.c); CLIST: every collection. */
#define VQUERY_REPLY_BYTES_MAX PAGED_BYTES(PM_KNN_MERGE_BYTES + 8u * PM_K_MAX, HIT_BYTES_MAX)
#define CLIST_REPLY_BYTES_MAX PAGED_BYTES(PM_COLLECTIONS_MAX * COLL_BYTES_MAX, COLL_BYTES_MAX)
/* Issue 18: a VQUERY batch's hits carry their query's index (4 bytes more,
 * PM_BATCH_HITS_MAX of them), a range reply's pages a flags byte each; a
 * VADD batch's reply is a status byte per item. */
#define VQUERYB_REPLY_BYTES_MAX \
	PAGED_BYTES(PM_KNN_MERGE_BYTES + 12u * PM_K_MAX, 4u + HIT_BYTES_MAX + 1u)
#define VADDB_REPLY_BYTES (PM_FRAME_HEADER_BYTES + 1u + 4u + PM_WIRE_BATCH_ITEMS_MAX)
_Static_assert(VQUERYB_REPLY_BYTES_MAX <= PM_TCP_TX_UNREAD_MAX,
	       "the largest batch reply can run on a connection whose client has read everything");
_Static_assert(VQUERY_REPLY_BYTES_MAX <= PM_TCP_TX_UNREAD_MAX,
	       "the largest reply can run on a connection whose client has read everything");

/* A paged INFO reply (PM_INFO_PAGED): each frame but the last carries at
 * least a frame's room less one line, and no line is longer than one shard's
 * text (PM_INFO_TEXT_BYTES_MAX); so it takes at most this many frames. */
#define INFO_PAGE_TEXT_MIN                                                                         \
	(PM_FRAME_BYTES_MAX - PM_FRAME_HEADER_BYTES - 4u - PM_INFO_TEXT_BYTES_MAX)
#define INFO_REPLY_FRAMES_MAX (PM_INFO_REPLY_BYTES_MAX / INFO_PAGE_TEXT_MIN + 1u)
#define INFO_REPLY_WIRE_BYTES_MAX                                                                  \
	(PM_INFO_REPLY_BYTES_MAX + INFO_REPLY_FRAMES_MAX * (PM_FRAME_HEADER_BYTES + 4u))

uint32_t pm_tcp_reply_bytes_max(uint8_t op)
{
	switch (op) {
	case PM_OP_GET:
		return PM_FRAME_HEADER_BYTES + 4u + PM_VALUE_BYTES_MAX;
	case PM_OP_INFO: /* every page of the whole text (docs/protocol.md: INFO) */
		return INFO_REPLY_WIRE_BYTES_MAX;
	case PM_OP_VGET: /* sub-op, dim, dtype, the vector, the collection's name, and
			  * the attribute record's trailer (docs/protocol.md: VGET) */
		return PM_FRAME_HEADER_BYTES + 1u + 4u + 1u + 4u * PM_DIM_MAX + 4u +
		       PM_COLLECTION_NAME_BYTES_MAX + 4u + PM_WIRE_ATTR_BYTES_MAX;
	case PM_OP_VQUERY:
		return VQUERY_REPLY_BYTES_MAX;
	case PM_OP_VQUERYB:
	case PM_OP_VRANGE:
		return VQUERYB_REPLY_BYTES_MAX;
	case PM_OP_VADDB:
		return VADDB_REPLY_BYTES;
	case PM_OP_CLIST:
		return CLIST_REPLY_BYTES_MAX;
	case PM_OP_MAP: /* the node's slot map (cluster mode): u32 len, its wire form */
		return PM_FRAME_HEADER_BYTES + 4u + PM_CMAP_WIRE_BYTES_MAX;
	default:
		return PM_TCP_REPLY_SMALL_BYTES;
	}
}

/* ---------------------------------------------------------------- set-up */

int pm_tcp_listen(const struct pm_config *cfg, char *err, size_t errlen)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->tcp_port) };
	inet_pton(AF_INET, cfg->bind, &a.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, PM_TCP_LISTEN_BACKLOG) != 0) {
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

int pm_tcp_watch_udp(struct pm_worker *w)
{
	if (w->d->listen_fd < 0 || w->ep < 0 || w->fd < 0)
		return 0; /* no epoll wait per turn: the socket is read every turn */
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = UDP_TOKEN };
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->fd, &ev) != 0)
		return -errno;
	w->udp_polled = true;
	return 0;
}

/* ---------------------------------------------------------------- buffers */

static uintptr_t page_up(uintptr_t x)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	return (x + page - 1) & ~(page - 1);
}

/* A connection's buffers: input, rounded up to whole pages, then output, in
 * one anonymous mapping, so that closing gives every page back. */
static size_t conn_map_bytes(void)
{
	return page_up(PM_TCP_RX_BYTES) + PM_TCP_TX_BYTES;
}

static uint8_t *conn_map(void)
{
	void *p = mmap(NULL, conn_map_bytes(), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* A drained buffer's pages past PM_TCP_KEEP_BYTES, up to its high-water mark,
 * go back to the kernel. */
static void buf_release(uint8_t *buf, uint32_t high)
{
	uintptr_t from = page_up((uintptr_t)buf + PM_TCP_KEEP_BYTES);
	uintptr_t to = page_up((uintptr_t)buf + high);
	if (to > from)
		(void)madvise((void *)from, to - from, MADV_DONTNEED);
}

/* Give back the pages of whichever buffer is drained and holds more than
 * PM_TCP_KEEP_BYTES. Not on every drain: madvise costs a TLB shootdown on
 * every core the process runs on, so it waits until the connection is quiet
 * (PM_TCP_RELEASE_MS) or the worker is over its budget. */
static void conn_release(struct pm_conn *c)
{
	if (c->rx_len == 0 && c->rx_high > PM_TCP_KEEP_BYTES) {
		buf_release(c->rx, c->rx_high);
		c->rx_high = 0;
	}
	if (c->tx_len == 0 && c->tx_high > PM_TCP_KEEP_BYTES) {
		buf_release(c->tx, c->tx_high);
		c->tx_high = 0;
	}
}

/* Bytes a connection holds for its client: input not executed, output not
 * written (what the stall and idle rules look at). */
static uint64_t conn_pending(const struct pm_conn *c)
{
	return (uint64_t)c->rx_len + (c->tx_len - c->tx_off);
}

/* Buffer a connection has in use: what tcp_buffer_bytes bounds. */
static uint64_t conn_held(const struct pm_conn *c)
{
	return (uint64_t)PM_MAX(c->rx_high, c->rx_len) + c->tx_high;
}

static void conn_close(struct pm_worker *w, uint32_t i)
{
	struct pm_conn *c = &w->conns[i];
	epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->rx)
		munmap(c->rx, conn_map_bytes());
	*c = (struct pm_conn){ .fd = -1, .gen = c->gen + 1 };
	w->stats.tcp_closed++;
	while (w->conn_hi && w->conns[w->conn_hi - 1].fd < 0)
		w->conn_hi--;
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

/* Has a made progress less recently than b (the older first on a tie)? */
static bool conn_staler(const struct pm_conn *a, const struct pm_conn *b)
{
	return a->last_ms < b->last_ms || (a->last_ms == b->last_ms && a->seq < b->seq);
}

/* A free slot for a new connection, or PM_TCP_CONNS_MAX. In a full table the
 * connection idle the longest (nothing read or written, nothing owed) gives
 * its slot up once it has been idle for PM_TCP_IDLE_EVICT_MS, counted:
 * connections that never send cannot hold the table, and a client's idle
 * connection is only closed when a new client needs its slot. */
static uint32_t conn_slot(struct pm_worker *w)
{
	uint32_t victim = PM_TCP_CONNS_MAX;
	for (uint32_t i = 0; i < PM_TCP_CONNS_MAX; i++) {
		const struct pm_conn *c = &w->conns[i];
		if (c->fd < 0)
			return i;
		if (conn_pending(c) || c->owed || c->inflight ||
		    w->now_ms - c->last_ms < PM_TCP_IDLE_EVICT_MS)
			continue;
		if (victim == PM_TCP_CONNS_MAX || conn_staler(c, &w->conns[victim]))
			victim = i;
	}
	if (victim < PM_TCP_CONNS_MAX) {
		conn_close(w, victim);
		w->stats.tcp_idle_evicted++;
	}
	return victim;
}

/* Connections of this worker from one source address. */
static uint32_t conns_from(const struct pm_worker *w, in_addr_t addr)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < PM_TCP_CONNS_MAX; i++)
		n += w->conns[i].fd >= 0 && w->conns[i].peer.sin_addr.s_addr == addr;
	return n;
}

/* May this peer have a slot? Refused (closed, counted) when outside
 * allow_networks or at its address's cap. */
static bool peer_admitted(struct pm_worker *w, int fd, const struct sockaddr_in *peer)
{
	if (!pm_allow_match(&w->d->allow, peer->sin_addr.s_addr)) {
		close(fd); /* outside allow_networks: not one byte is read */
		w->stats.dropped_not_allowed++;
		return false;
	}
	if (conns_from(w, peer->sin_addr.s_addr) >= w->d->cfg.tcp_conns_per_addr) {
		close(fd); /* one address may not take the table */
		w->stats.tcp_addr_refused++;
		return false;
	}
	return true;
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
		if (!peer_admitted(w, fd, &peer))
			continue;
		/* replies go out as they are ready: without this, Nagle holds a
		 * pipeline's replies back while the previous ones are unacknowledged */
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		uint32_t i = conn_slot(w);
		struct pm_conn *c = &w->conns[i < PM_TCP_CONNS_MAX ? i : 0];
		uint8_t *rx = i < PM_TCP_CONNS_MAX ? conn_map() : NULL;
		uint32_t events = EPOLLIN | EPOLLRDHUP;
		struct epoll_event ev = { .events = events, .data.u32 = i };
		if (!rx || epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			if (rx)
				munmap(rx, conn_map_bytes());
			close(fd); /* table full or no memory: refuse, counted */
			w->stats.tcp_refused++;
			continue;
		}
		*c = (struct pm_conn){ .fd = fd, .gen = c->gen, .rx = rx,
				       .tx = rx + page_up(PM_TCP_RX_BYTES), .events = events,
				       .last_ms = w->now_ms, .peer = peer, .seq = w->tcp_seq++ };
		w->conn_hi = PM_MAX(w->conn_hi, i + 1); /* conn_slot takes the lowest free slot */
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

/* A reply is here: the room kept for it is its own now. */
static void settle(struct pm_conn *c, const struct pm_dest *to)
{
	PM_DEBUG_ASSERT(c->owed >= to->owed);
	c->owed -= PM_MIN(c->owed, to->owed);
}

/* n bytes of output were added for a reply that kept `owed` bytes. */
static void tx_added(struct pm_conn *c, uint32_t n, uint32_t owed)
{
	PM_DEBUG_ASSERT(owed == 0 || n <= owed); /* pm_tcp_reply_bytes_max holds */
	(void)owed;
	c->tx_len += n;
	c->tx_high = PM_MAX(c->tx_high, c->tx_len);
}

void pm_tcp_reply(struct pm_worker *w, const struct pm_dest *to, const struct pm_reply *rep)
{
	struct pm_conn *c = dest_conn(w, to);
	if (!c)
		return;
	settle(c, to);
	(void)tx_room(c, to->owed ? to->owed : PM_TCP_REPLY_SMALL_BYTES); /* compacts if need be */
	uint32_t n = pm_reply_frames(rep, c->tx + c->tx_len, PM_TCP_TX_BYTES - c->tx_len);
	if (n == 0) { /* cannot happen while every reply keeps its room */
		w->stats.dropped_tx_full++;
		conn_close(w, to->conn);
		return;
	}
	tx_added(c, n, to->owed);
	pm_quota_charge_reply(w, to, n); /* reply bytes count in the byte quota (issue 19) */
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
	settle(c, to);
	if (!tx_room(c, len)) { /* cannot happen while every reply keeps its room */
		w->stats.dropped_tx_full++;
		conn_close(w, to->conn);
		return;
	}
	memcpy(c->tx + c->tx_len, frames, len);
	tx_added(c, len, to->owed);
	pm_quota_charge_reply(w, to, len); /* reply bytes count in the byte quota (issue 19) */
}

static void conn_write(struct pm_worker *w, uint32_t i)
{
	struct pm_conn *c = &w->conns[i];
	c->tx_blocked = false;
	while (c->tx_off < c->tx_len) {
		ssize_t n = send(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				conn_close(w, i);
			else
				c->tx_blocked = true; /* EPOLLOUT says when it takes more */
			return;
		}
		c->tx_off += (uint32_t)n;
		c->last_ms = w->now_ms;
	}
	c->tx_off = c->tx_len = 0;
}

/* ---------------------------------------------------------------- input */

/* Is a whole frame at the front of p? (Its header was read before: a header
 * that cannot be read has broken the stream.) */
static bool frame_whole(const uint8_t *p, uint32_t len)
{
	struct pm_frame_header h;
	if (len < PM_FRAME_HEADER_BYTES)
		return false;
	(void)pm_header_decode(p, len, &h);
	return (uint64_t)PM_FRAME_HEADER_BYTES + h.body_len <= len;
}

/* The frame deadline's clock: it runs while part of a frame is at the front
 * of the input, from that frame's first byte. */
static void frame_clock(struct pm_worker *w, struct pm_conn *c)
{
	if (c->rx_len == 0 || frame_whole(c->rx, c->rx_len))
		c->frame_ms = 0;
	else if (c->frame_ms == 0)
		c->frame_ms = w->now_ms;
}

/* AUTH HELLO / PROVE: a challenge, or the stream becomes the proven user's
 * (docs/protocol.md §14.3); a PROVE that fails leaves it as it was. */
static void conn_auth(struct pm_worker *w, struct pm_conn *c, const struct pm_request *req,
		      const struct pm_dest *from)
{
	struct pm_reply rep;
	uint16_t user;
	pm_auth_stream(w, req, c->challenge, &c->challenged, &user, &rep);
	if (user)
		c->user = user;
	pm_send_reply(w, from, &rep);
}

/* Execute one whole frame of `flen` bytes at f, its reply keeping `owed`
 * bytes of output. */
static void conn_exec(struct pm_worker *w, struct pm_conn *c, struct pm_dest *from,
		      const uint8_t *f, uint32_t flen, const struct pm_request *req,
		      enum pm_status st, uint32_t owed)
{
	w->stats.rx_frames++;
	if (pm_refuse_reply(w, f, flen))
		return; /* a reply is never answered (protocol §6.5): nothing is owed */
	from->owed = owed;
	from->user = c->user;
	c->owed += owed;
	bool stream_auth = st == PM_OK &&
			   (req->op == PM_OP_AUTH_HELLO || req->op == PM_OP_AUTH_PROVE);
	if (stream_auth && pm_quota_admit(w, req, flen, from)) /* HELLOs cost a getrandom */
		conn_auth(w, c, req, from); /* the stream's challenge (users.c) */
	else if (stream_auth)
		; /* answered THROTTLED */
	else if (!pm_auth_admit(w, req, st, f, flen, from))
		; /* answered AUTH or NOPERM */
	else if (!pm_quota_admit(w, req, flen, from))
		; /* answered THROTTLED */
	else if (st == PM_OK)
		pm_serve_frame(w, req, f, flen, from);
	else
		pm_send_reply(w, from, &(struct pm_reply){ .status = st, .op = req->op, .id = req->id });
	from->owed = 0;
}

/* The leading whole frames of the input buffer (headers that decode), at
 * most PM_BURST_MAX, decoded once here for conn_frames, and their keys'
 * buckets and seeds prefetched together (pm_shard_prefetch_keys), as a UDP
 * burst's are, so that their cache misses overlap: a pipelined stream spent
 * a third of its worker's time in pm_seedmap_find waiting for them one by
 * one (issue 20). A frame for another shard costs a prefetch that goes
 * unused. Returns how many were decoded. */
struct conn_burst {
	struct pm_request req[PM_BURST_MAX];
	enum pm_status st[PM_BURST_MAX];
};

static uint32_t conn_decode(struct pm_worker *w, const struct pm_conn *c, struct conn_burst *cb)
{
	struct pm_bytes keys[PM_BURST_MAX];
	uint32_t n = 0, nkeys = 0;
	for (uint32_t off = 0; n < PM_BURST_MAX && c->rx_len - off >= PM_FRAME_HEADER_BYTES; n++) {
		struct pm_frame_header h;
		if (pm_header_decode(c->rx + off, c->rx_len - off, &h) != PM_WIRE_OK)
			break;
		uint32_t flen = PM_FRAME_HEADER_BYTES + h.body_len;
		if (flen > c->rx_len - off)
			break;
		size_t used;
		cb->st[n] = pm_request_decode(c->rx + off, flen, &cb->req[n], &used);
		if (cb->st[n] == PM_OK && cb->req[n].key.len)
			keys[nkeys++] = cb->req[n].key;
		off += flen;
	}
	if (nkeys > 1)
		pm_shard_prefetch_keys(&w->shard, keys, nkeys);
	return n;
}

/* Execute every whole frame of the input buffer whose reply has room and,
 * for another shard, whose ring has room and credit; false if the stream is
 * broken. */
static bool conn_frames(struct pm_worker *w, uint32_t i)
{
	struct pm_conn *c = &w->conns[i];
	struct pm_dest from = { .addr = c->peer, .worker = w->id, .conn = i, .gen = c->gen,
				.dport = (uint16_t)w->d->cfg.tcp_port };
	uint32_t off = 0;
	bool waited = c->ring_wait; /* its head frame waited last turn already */
	c->ring_wait = false;
	struct conn_burst cb;
	uint32_t decoded = conn_decode(w, c, &cb);
	for (uint32_t k = 0;
	     c->rx_len - off >= PM_FRAME_HEADER_BYTES && c->inflight < PM_TCP_INFLIGHT_MAX; k++) {
		const uint8_t *f = c->rx + off;
		struct pm_frame_header h;
		enum pm_wire_status hst = pm_header_decode(f, c->rx_len - off, &h);
		if (hst != PM_WIRE_OK && hst != PM_WIRE_E_FRAME_TRUNCATED && !pm_header_usable(hst)) {
			pm_answer_unusable(w, f, c->rx_len - off, pm_status_from_wire(hst), &from);
			return false;
		}
		uint32_t flen = PM_FRAME_HEADER_BYTES + h.body_len;
		if (flen > c->rx_len - off)
			break; /* the rest of the frame has not arrived */
		struct pm_request one;
		size_t used;
		const struct pm_request *req = k < decoded ? &cb.req[k] : &one;
		enum pm_status st = k < decoded ? cb.st[k] : pm_request_decode(f, flen, &one, &used);
		uint32_t owed = st == PM_OK ? pm_tcp_reply_bytes_max(req->op) : PM_TCP_REPLY_SMALL_BYTES;
		uint64_t unread = c->tx_len - c->tx_off;
		if (unread + owed > PM_TCP_TX_UNREAD_MAX ||
		    unread + c->owed + owed > PM_TCP_TX_BYTES)
			break; /* its reply might not fit, or the client reads nothing: wait */
		if (st == PM_OK && !pm_tcp_forward_ready(w, req, flen, owed)) {
			w->stats.tcp_ring_waits += !(waited && off == 0); /* once per frame */
			c->ring_wait = true; /* tried again next turn */
			break;
		}
		conn_exec(w, c, &from, f, flen, req, st, owed);
		if (c->fd < 0)
			return true; /* closed while replying */
		off += flen;
	}
	memmove(c->rx, c->rx + off, c->rx_len - off);
	c->rx_len -= off;
	frame_clock(w, c);
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
	while (!c->rx_eof && c->rx_len < PM_TCP_RX_BYTES) { /* full: frames wait for room */
		uint32_t room = PM_TCP_RX_BYTES - c->rx_len;
		ssize_t n = recv(c->fd, c->rx + c->rx_len, room, MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			conn_close(w, i);
			return;
		}
		if (n > 0) {
			c->rx_len += (uint32_t)n;
			c->rx_high = PM_MAX(c->rx_high, c->rx_len);
			c->last_ms = w->now_ms;
		}
		c->rx_eof = n == 0; /* the client is done sending: its replies still go out */
		if (!conn_frames(w, i)) {
			conn_broken(w, i);
			return;
		}
		/* less than there was room for: the socket is drained (what comes
		 * next, epoll says: it is level-triggered), so no second recv to
		 * hear EAGAIN — a system call per read saved at depth 1 */
		if (c->fd < 0 || n <= 0 || (uint32_t)n < room)
			return; /* drained, finished or closed */
	}
}

/* ---------------------------------------------------------------- the turn */

/* The epoll events a connection wants: input while its buffer has room and
 * its client sends, output while the socket refuses more. */
static void conn_events(struct pm_worker *w, uint32_t i)
{
	struct pm_conn *c = &w->conns[i];
	bool in = !c->rx_eof && c->rx_len < PM_TCP_RX_BYTES;
	uint32_t want = (in ? EPOLLIN | EPOLLRDHUP : 0) | (c->tx_blocked ? EPOLLOUT : 0);
	struct epoll_event ev = { .events = want, .data.u32 = i };
	if (want != c->events && epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = want;
}

/* Close a connection past a deadline: its frame not whole in time, no
 * progress while it holds bytes, or, once its client sent FIN, nothing left
 * to answer or write. */
static void conn_expire(struct pm_worker *w, uint32_t i)
{
	struct pm_conn *c = &w->conns[i];
	if (c->frame_ms && w->now_ms - c->frame_ms > w->d->cfg.tcp_frame_ms) {
		w->stats.tcp_frame_deadline++;
		conn_close(w, i);
	} else if (conn_pending(c) && w->now_ms - c->last_ms > PM_TCP_STALL_MS) {
		w->stats.tcp_stalled++;
		conn_close(w, i);
	} else if (c->rx_eof && (c->rx_len == 0 || c->frame_ms) && !c->owed &&
		   c->tx_len == c->tx_off) {
		conn_close(w, i); /* a partial frame after FIN can never be whole */
	}
}

/* All connections together have at most tcp_buffer_bytes of buffer in use:
 * past it, drained buffers give their pages back first, then the connections
 * holding bytes that made progress least recently are closed first (a client
 * that reads its replies has just made progress). */
static void conn_budget(struct pm_worker *w, uint64_t held)
{
	for (uint32_t i = 0; i < w->conn_hi && held > w->d->cfg.tcp_buffer_bytes; i++) {
		struct pm_conn *c = &w->conns[i];
		if (c->fd >= 0) {
			held -= conn_held(c);
			conn_release(c);
			held += conn_held(c);
		}
	}
	while (held > w->d->cfg.tcp_buffer_bytes) {
		uint32_t v = PM_TCP_CONNS_MAX;
		for (uint32_t i = 0; i < w->conn_hi; i++) {
			const struct pm_conn *c = &w->conns[i];
			if (c->fd >= 0 && conn_pending(c) &&
			    (v == PM_TCP_CONNS_MAX || conn_staler(c, &w->conns[v])))
				v = i;
		}
		if (v == PM_TCP_CONNS_MAX)
			return;
		held -= conn_held(&w->conns[v]);
		conn_close(w, v);
		w->stats.tcp_buffer_evicted++;
	}
}

/* Write, execute frames held back for room, apply the deadlines; how many
 * connections wait for a ring (work: they are tried again next turn). */
static uint32_t conn_sweep(struct pm_worker *w)
{
	uint64_t held = 0;
	uint32_t waiting = 0;
	for (uint32_t i = 0; i < w->conn_hi; i++) { /* slots past it: all free */
		struct pm_conn *c = &w->conns[i];
		if (c->fd < 0)
			continue;
		if (c->tx_len > c->tx_off)
			conn_write(w, i);
		if (c->fd >= 0 && c->rx_len && !conn_frames(w, i)) /* frames held back for room */
			conn_broken(w, i);
		if (c->fd >= 0)
			conn_expire(w, i);
		if (c->fd < 0)
			continue;
		if (w->now_ms - c->last_ms >= PM_TCP_RELEASE_MS)
			conn_release(c);
		conn_events(w, i);
		held += conn_held(c);
		waiting += c->ring_wait;
	}
	conn_budget(w, held);
	return waiting;
}

uint32_t pm_tcp_turn(struct pm_worker *w)
{
	struct epoll_event ev[PM_TCP_EVENTS_PER_TURN];
	if (w->d->listen_fd < 0)
		return 0; /* tcp_port = 0: no connections, and no system call per turn */
	int n = epoll_wait(w->ep, ev, PM_TCP_EVENTS_PER_TURN, 0);
	for (int e = 0; e < n; e++) {
		uint32_t i = ev[e].data.u32;
		if (i == UDP_TOKEN)
			w->udp_ready = true; /* read in this turn (worker.c: turn) */
		else if (i == LISTEN_TOKEN)
			conn_accept(w);
		else if (i == PM_TCP_REPL_TOKEN)
			w->repl_ready = true; /* replication's: served in its own turn */
		else if (w->conns[i].fd >= 0 && (ev[e].events & (EPOLLERR | EPOLLHUP)))
			conn_close(w, i); /* reset, or shut both ways: nothing can be written */
		else if (w->conns[i].fd >= 0 && (ev[e].events & (EPOLLIN | EPOLLRDHUP)))
			conn_read(w, i);
	}
	return (n > 0 ? (uint32_t)n : 0) + conn_sweep(w);
}
