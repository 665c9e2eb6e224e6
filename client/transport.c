/* SPDX-License-Identifier: MIT
 *
 * transport.c — libpomai's sockets: send queues, datagram batching, the TCP
 * streams, receiving, and the poll loop.
 *
 * Every server the client talks to is a link (client_impl.h): one pomaid is
 * link 0; a cluster client has a link per node. A link has its own socket.
 *
 * UDP: one non-blocking socket per link sends to every shard of its server.
 * Frames queued for a shard are packed into datagrams of at most the link's
 * pack_bytes (several frames back to back, gathered with sendmsg from the
 * slots' buffers, no copy; issue 20: 64 KiB to a server on loopback, an
 * Ethernet path MTU's worth elsewhere); a frame larger than that goes alone,
 * up to PM_FRAME_BYTES_MAX. A queue is sent when its next frame would not fit,
 * when its oldest frame has waited pack_flush_us at a submit, and
 * whenever the caller polls or flushes (the pipeline drains). A send the
 * kernel refuses for lack of buffer space stays queued until the socket is
 * writable; any other send error counts as a lost datagram, which the
 * request's timer recovers from (each frame of it is retried on its own).
 * Reply datagrams carry one or more frames too (on_datagram splits them).
 *
 * TCP: one non-blocking stream per link; queued frames are written with
 * sendmsg (partial writes continue where they stopped) and replies are parsed
 * from the link's receive buffer of two largest frames. A header that cannot
 * be parsed, the peer closing, or any socket error ends the stream: with one
 * server every request on it fails with E_CONNECTION and the next submit
 * reconnects; in a cluster the requests on it are retried (cluster.c).
 *
 * A hook transport (c->hooks, client_impl.h) takes the place of the socket
 * calls of link 0; everything above them is shared.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "client_impl.h"

/* TCP: queued bytes that trigger a write at submit (one large write instead of
 * one per small frame). */
#define PMC_TCP_WRITE_BYTES (64u << 10)

/* ---------------------------------------------------------------- sockets */

static void set_bufs(int fd)
{
	int bytes = PMC_SOCKBUF_BYTES;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

/* Non-blocking connect, waited for with poll() for at most timeout_ms. */
static int tcp_connect(struct pm_client *c, const struct sockaddr_in *to)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	set_bufs(fd);
	if (connect(fd, (const struct sockaddr *)to, sizeof *to) != 0) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int err = 0;
		socklen_t el = sizeof err;
		if (errno != EINPROGRESS || poll(&p, 1, (int)c->cfg.timeout_ms) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* Each queue's address: shard q on udp_port + q (UDP), the TCP port. A
 * cluster link has queues for PMC_LINK_QUEUES_MAX shards; those past its
 * node's shard count are never routed to. */
static void link_addrs(struct pm_client *c, struct pmc_link *k)
{
	for (uint32_t q = 0; q < k->nqueues && k->addrs; q++) {
		uint32_t port = c->tcp ? k->tcp_port : (uint32_t)k->udp_port + q;
		k->addrs[q] = (struct sockaddr_in){ .sin_family = AF_INET,
						    .sin_port = htons((uint16_t)(port & 0xFFFFu)),
						    .sin_addr.s_addr = k->ip_be };
	}
}

bool pmc_link_alloc(struct pm_client *c, uint32_t l)
{
	struct pmc_link *k = &c->links[l];
	if (k->addrs != NULL)
		return true;
	k->nqueues = c->tcp ? 1u : c->cluster ? PMC_LINK_QUEUES_MAX : c->cfg.shards;
	k->addrs = calloc(k->nqueues, sizeof *k->addrs);
	k->queues = calloc(k->nqueues, sizeof *k->queues);
	k->rx = c->tcp ? malloc(PMC_TCP_RX_BYTES) : NULL;
	if (!k->addrs || !k->queues || (c->tcp && !k->rx))
		return false;
	for (uint32_t q = 0; q < k->nqueues; q++)
		k->queues[q] = (struct pmc_queue){ .head = PMC_NIL, .tail = PMC_NIL };
	link_addrs(c, k);
	return true;
}

void pmc_link_set(struct pm_client *c, uint32_t l, uint32_t ip_be, uint16_t udp_port,
		  uint16_t tcp_port)
{
	struct pmc_link *k = &c->links[l];
	PMC_ASSERT(k->fd < 0);
	k->ip_be = ip_be;
	k->udp_port = udp_port;
	k->tcp_port = tcp_port;
	pmc_link_cookie_forget(k); /* a cookie names the server that made it */
	link_addrs(c, k);
	/* issue 20: how many bytes of frames share a datagram to this server */
	bool loopback = (ntohl(ip_be) >> 24) == 127u;
	k->pack_bytes = c->cfg.pack_bytes       ? c->cfg.pack_bytes
			: loopback ? PM_CLIENT_PACK_LOOPBACK_BYTES
				   : PM_CLIENT_PACK_PATH_BYTES;
}

void pmc_link_free(struct pmc_link *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	free(k->addrs);
	free(k->queues);
	free(k->rx);
	k->addrs = NULL;
	k->queues = NULL;
	k->rx = NULL;
}

enum pm_client_status pmc_link_open(struct pm_client *c, uint32_t l)
{
	struct pmc_link *k = &c->links[l];
	if (k->fd >= 0)
		return PM_CLIENT_OK;
	if (!pmc_link_alloc(c, l))
		return PM_CLIENT_E_ALLOC;
	k->want_write = false;
	k->rx_len = 0;
	if (c->tcp) {
		k->fd = k->tcp_port ? tcp_connect(c, &k->addrs[0]) : -1;
		enum pm_client_status st = k->fd >= 0 && c->cfg.user ? pmc_auth_prove(c, k->fd)
								     : PM_CLIENT_OK;
		if (st != PM_CLIENT_OK) { /* the stream is no user's: not kept */
			close(k->fd);
			k->fd = -1;
			return st;
		}
	} else {
		k->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (k->fd >= 0)
			set_bufs(k->fd);
	}
	return k->fd >= 0 ? PM_CLIENT_OK : PM_CLIENT_E_CONNECTION;
}

enum pm_client_status pmc_connect(struct pm_client *c)
{
	if (pmc_is_open(c))
		return PM_CLIENT_OK;
	if (c->hooks) {
		c->links[0].want_write = false;
		enum pm_client_status st = c->hooks->connect(c);
		c->hook_up = st == PM_CLIENT_OK;
		return st;
	}
	return pmc_link_open(c, 0);
}

void pmc_link_close(struct pm_client *c, uint32_t l)
{
	struct pmc_link *k = &c->links[l];
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	k->rx_len = 0;
	k->want_write = false;
	k->stream_gen++;
	for (uint32_t q = 0; q < k->nqueues && k->queues; q++) {
		struct pmc_queue *qu = &k->queues[q];
		while (qu->head != PMC_NIL) {
			struct pmc_slot *s = &c->slots[qu->head];
			s->tx_off = 0; /* the stream is gone: the frame goes whole or not at all */
			pmc_unlink(c, s);
		}
	}
}

/* One server: close the socket and fail every request in flight with `why`. */
void pmc_disconnect(struct pm_client *c, enum pm_client_status why)
{
	PMC_ASSERT(!c->cluster);
	pmc_link_close(c, 0);
	if (c->hooks && c->hook_up)
		c->hooks->disconnect(c);
	c->hook_up = false;
	c->ndirty = 0;
	for (uint32_t q = 0; q < c->links[0].nqueues; q++)
		c->links[0].queues[q].dirty = false;
	/* Only requests sent on this stream: a callback may submit new ones. */
	uint64_t last_seq = c->seq;
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct pmc_slot *s = &c->slots[i];
		if (s->state == PMC_WAIT && (s->id >> PMC_SLOT_BITS) <= last_seq)
			pmc_fail(c, s, why);
	}
}

/* The stream of link l broke: one server fails everything, a cluster retries
 * what was routed to that node. */
static void link_broken(struct pm_client *c, uint32_t l)
{
	if (c->cluster)
		pmc_cluster_link_down(c, l, PM_CLIENT_E_CONNECTION);
	else
		pmc_disconnect(c, PM_CLIENT_E_CONNECTION);
}

/* ---------------------------------------------------------------- queues */

static void mark_dirty(struct pm_client *c, uint32_t dest)
{
	struct pmc_queue *q = pmc_queue_of(c, dest);
	if (!q->dirty) {
		q->dirty = true;
		c->dirty[c->ndirty++] = dest;
	}
}

void pmc_unlink(struct pm_client *c, struct pmc_slot *s)
{
	struct pmc_queue *q = pmc_queue_of(c, s->dest);
	PMC_ASSERT(s->queued && s->tx_off == 0);
	if (s->prev != PMC_NIL)
		c->slots[s->prev].next = s->next;
	else
		q->head = s->next;
	if (s->next != PMC_NIL)
		c->slots[s->next].prev = s->prev;
	else
		q->tail = s->prev;
	s->prev = s->next = PMC_NIL;
	s->queued = false;
	q->frames--;
	q->bytes -= s->len;
}

static void link_tail(struct pm_client *c, struct pmc_slot *s, uint64_t now_us)
{
	struct pmc_queue *q = pmc_queue_of(c, s->dest);
	uint32_t idx = (uint32_t)(s - c->slots);
	if (q->frames == 0)
		q->since_us = now_us;
	s->prev = q->tail;
	s->next = PMC_NIL;
	if (q->tail != PMC_NIL)
		c->slots[q->tail].next = idx;
	else
		q->head = idx;
	q->tail = idx;
	s->queued = true;
	s->tx_off = 0;
	q->frames++;
	q->bytes += s->len;
	mark_dirty(c, s->dest);
}

static void flush_queue(struct pm_client *c, uint32_t dest);

/* The bytes of frames one datagram to dest may carry (issue 20). */
static uint32_t pack_bytes(const struct pm_client *c, uint32_t dest)
{
	return c->links[PMC_DEST_LINK(dest)].pack_bytes;
}

/* Queue a frame; UDP sends the datagram it would overflow first, so queues
 * hold at most one datagram's worth unless the socket is full, and a queue
 * whose oldest frame has waited pack_flush_us goes before the new
 * frame joins it (issue 20: packing waits for a poll only so long). */
void pmc_enqueue(struct pm_client *c, struct pmc_slot *s)
{
	pmc_enqueue_at(c, s, c->tcp ? 0 : pmc_now_us());
}

void pmc_enqueue_at(struct pm_client *c, struct pmc_slot *s, uint64_t now_us)
{
	struct pmc_queue *q = pmc_queue_of(c, s->dest);
	PMC_ASSERT(!s->queued);
	pmc_auth_sign(c, s); /* every (re)send anew (auth.c) */
	now_us = c->tcp ? 0 : now_us;
	uint32_t pack = pack_bytes(c, s->dest);
	if (!c->tcp && q->frames &&
	    (q->bytes + s->len > pack || q->frames >= PMC_BATCH_FRAMES_MAX ||
	     now_us - q->since_us >= c->cfg.pack_flush_us))
		flush_queue(c, s->dest);
	link_tail(c, s, now_us);
	if (c->tcp ? q->bytes >= PMC_TCP_WRITE_BYTES : s->len > pack)
		flush_queue(c, s->dest);
}

/* ---------------------------------------------------------------- sending */

/* The frame of s from byte `off` on, as one iovec, or for a leg up to
 * PMC_FRAME_IOVS_MAX: its own header, its parent's body, and its own AUTH
 * trailer once signed (auth.c). Returns the iovecs used. */
static uint32_t frame_iov(const struct pmc_slot *s, uint32_t off, struct iovec *iov)
{
	if (s->body == NULL) {
		iov[0] = (struct iovec){ s->buf + off, s->len - off };
		return 1;
	}
	uint32_t tail = s->auth_signed ? PM_AUTH_TRAILER_BYTES : 0u;
	const struct iovec part[PMC_FRAME_IOVS_MAX] = {
		{ s->buf, PM_FRAME_HEADER_BYTES },
		{ (void *)(uintptr_t)s->body, s->len - PM_FRAME_HEADER_BYTES - tail },
		{ s->buf + PM_FRAME_HEADER_BYTES, tail },
	};
	uint32_t n = 0;
	for (uint32_t i = 0; i < PMC_FRAME_IOVS_MAX; i++) {
		if (off >= part[i].iov_len) { /* written already, or empty */
			off -= (uint32_t)part[i].iov_len;
			continue;
		}
		iov[n++] = (struct iovec){ (uint8_t *)part[i].iov_base + off, part[i].iov_len - off };
		off = 0;
	}
	return n;
}

/* Gathers frames from the queue head: as many as fit one datagram (UDP), or
 * PMC_BATCH_FRAMES_MAX (TCP, the first from its written offset). */
static uint32_t gather(struct pm_client *c, const struct pmc_queue *q, uint32_t pack,
		       struct iovec *iov, size_t *total)
{
	uint32_t n = 0, frames = 0;
	*total = 0;
	for (uint32_t i = q->head; i != PMC_NIL && frames < PMC_BATCH_FRAMES_MAX;
	     i = c->slots[i].next) {
		const struct pmc_slot *s = &c->slots[i];
		if (!c->tcp && frames > 0 && *total + s->len > pack)
			break;
		n += frame_iov(s, s->tx_off, iov + n);
		*total += s->len - s->tx_off;
		frames++;
	}
	return n;
}

/* Marks `sent` bytes of the queue head as written and unlinks whole frames. */
static void advance(struct pm_client *c, struct pmc_queue *q, size_t sent)
{
	while (sent > 0 && q->head != PMC_NIL) {
		struct pmc_slot *s = &c->slots[q->head];
		size_t left = s->len - s->tx_off;
		if (sent < left) {
			s->tx_off += (uint32_t)sent;
			return;
		}
		sent -= left;
		s->tx_off = 0;
		pmc_unlink(c, s);
		c->stats.frames_out++;
	}
}

/* A hook transport's send; false when the queue must wait for room. */
static bool hook_send(struct pm_client *c, uint32_t dest, const struct iovec *iov, uint32_t n,
		      size_t total, size_t lead)
{
	enum pmc_send_result r = c->hooks->send(c, PMC_DEST_QUEUE(dest), iov, n, total + lead);
	if (r == PMC_SEND_FULL) {
		c->links[0].want_write = true;
		return false;
	}
	c->stats.datagrams_out++;
	advance(c, pmc_queue_of(c, dest), total); /* sent, or lost */
	return true;
}

/* One sendmsg. Returns false when the queue must wait (socket full, or gone).
 * A datagram starts with the link's cookie once one is known (guard.c); the
 * queue advances by its frames' bytes. */
static bool send_once(struct pm_client *c, uint32_t dest)
{
	struct pmc_queue *q = pmc_queue_of(c, dest);
	struct pmc_link *k = &c->links[PMC_DEST_LINK(dest)];
	struct iovec all[1 + PMC_FRAME_IOVS_MAX * PMC_BATCH_FRAMES_MAX], *iov = all + 1;
	size_t total;
	uint32_t n = gather(c, q, k->pack_bytes, iov, &total);
	if (total + PM_COOKIE_FRAME_BYTES <= PM_FRAME_BYTES_MAX && pmc_link_cookie_iov(c, k, all)) {
		iov = all; /* the cookie first; a frame within 48 bytes of the largest goes alone */
		n++;
	}
	size_t lead = iov == all ? PM_COOKIE_FRAME_BYTES : 0;
	if (c->hooks)
		return hook_send(c, dest, iov, n, total, lead);
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = n };
	if (!c->tcp) {
		m.msg_name = &k->addrs[PMC_DEST_QUEUE(dest)];
		m.msg_namelen = sizeof k->addrs[0];
	}
	ssize_t r = sendmsg(k->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r < 0 && errno == EINTR)
		return true;
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || (!c->tcp && errno == ENOBUFS))) {
		k->want_write = true;
		return false;
	}
	if (r < 0 && c->tcp) {
		link_broken(c, PMC_DEST_LINK(dest));
		return false;
	}
	c->stats.datagrams_out++;
	/* UDP: the datagram went whole (with its cookie) or is lost */
	advance(c, q, r < 0 || !c->tcp ? total : (size_t)r);
	return true;
}

static bool link_is_open(const struct pm_client *c, uint32_t l)
{
	return c->hooks ? c->hook_up : c->links[l].fd >= 0;
}

static void flush_queue(struct pm_client *c, uint32_t dest)
{
	while (link_is_open(c, PMC_DEST_LINK(dest)) && pmc_queue_of(c, dest)->head != PMC_NIL)
		if (!send_once(c, dest))
			return;
}

void pmc_flush_all(struct pm_client *c)
{
	uint32_t keep = 0;
	const uint32_t gen = c->links[0].stream_gen;
	/* Entries added meanwhile (a callback's submit) are taken in this pass. */
	for (uint32_t i = 0; i < c->ndirty; i++) {
		uint32_t dest = c->dirty[i];
		flush_queue(c, dest);
		if (!c->cluster && c->links[0].stream_gen != gen)
			return; /* the stream closed (its callbacks may have queued anew) */
		if (pmc_queue_of(c, dest)->head != PMC_NIL && link_is_open(c, PMC_DEST_LINK(dest)))
			c->dirty[keep++] = dest; /* socket full: again when writable */
		else
			pmc_queue_of(c, dest)->dirty = false;
	}
	c->ndirty = keep;
}

void pm_client_flush(struct pm_client *c)
{
	if (c)
		pmc_flush_all(c);
}

/* ---------------------------------------------------------------- receiving */

static void on_datagram(struct pm_client *c, uint32_t l, const uint8_t *p, size_t len)
{
	size_t off = 0, used;
	while (off < len && (used = pmc_on_frame(c, l, p + off, len - off)))
		off += used;
}

void pmc_on_datagram(struct pm_client *c, const uint8_t *p, size_t len)
{
	on_datagram(c, 0, p, len);
}

static void udp_receive(struct pm_client *c, uint32_t l)
{
	struct pmc_link *k = &c->links[l];
	for (uint32_t n = 0; n < PMC_RX_BURST && k->fd >= 0; n++) {
		ssize_t r = recv(k->fd, c->rx, c->rx_cap, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return; /* EAGAIN, or an ICMP error for an earlier send */
		on_datagram(c, l, c->rx, (size_t)r);
	}
}

/* Handles every whole frame in the stream buffer and keeps the partial rest. */
static void tcp_parse(struct pm_client *c, uint32_t l)
{
	struct pmc_link *k = &c->links[l];
	size_t off = 0;
	const uint32_t gen = k->stream_gen;
	while (k->rx_len - off >= PM_FRAME_HEADER_BYTES) {
		struct pm_frame_header h;
		enum pm_wire_status st = pm_header_decode(k->rx + off, k->rx_len - off, &h);
		if (st == PM_WIRE_E_FRAME_TRUNCATED)
			break; /* the rest of the body has not arrived yet */
		size_t used = pm_header_usable(st) ? pmc_on_frame(c, l, k->rx + off, k->rx_len - off)
						   : 0;
		if (k->stream_gen != gen)
			return; /* a callback's submit found the stream broken */
		if (used == 0) {
			link_broken(c, l); /* framing lost */
			return;
		}
		off += used;
	}
	memmove(k->rx, k->rx + off, k->rx_len - off);
	k->rx_len -= (uint32_t)off;
}

static void tcp_receive(struct pm_client *c, uint32_t l)
{
	struct pmc_link *k = &c->links[l];
	const uint32_t gen = k->stream_gen;
	for (uint32_t n = 0; n < PMC_RX_BURST && k->fd >= 0 && k->stream_gen == gen; n++) {
		size_t room = PMC_TCP_RX_BYTES - k->rx_len;
		ssize_t r = recv(k->fd, k->rx + k->rx_len, room, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			link_broken(c, l);
			return;
		}
		k->rx_len += (uint32_t)r;
		tcp_parse(c, l);
		if ((size_t)r < room)
			return; /* drained: the next poll (or spin) reads what comes next */
	}
}

static void receive_link(struct pm_client *c, uint32_t l)
{
	if (c->tcp)
		tcp_receive(c, l);
	else
		udp_receive(c, l);
}

/* Every open link's socket in one poll(2) of at most wait_ms: sends that
 * waited for room go out, and only the links with something to read are
 * read (a cluster client may hold a hundred sockets; reading each one every
 * turn would cost a system call each). No socket open (a cluster whose
 * requests wait for their deadlines): poll only sleeps, so a caller's poll
 * loop does not spin. */
static void links_poll(struct pm_client *c, uint32_t wait_ms, bool read)
{
	struct pollfd p[PMC_LINKS_MAX];
	uint32_t at[PMC_LINKS_MAX], n = 0;
	bool writable = false;
	for (uint32_t l = 0; l < c->nlinks; l++) {
		const struct pmc_link *k = &c->links[l];
		if (k->fd < 0)
			continue;
		p[n] = (struct pollfd){ .fd = k->fd,
					.events = POLLIN | (k->want_write ? POLLOUT : 0) };
		at[n++] = l;
	}
	if (poll(n ? p : NULL, n, (int)wait_ms) <= 0)
		return;
	for (uint32_t i = 0; i < n; i++) {
		if (p[i].revents & POLLOUT) {
			c->links[at[i]].want_write = false;
			writable = true;
		}
	}
	if (writable)
		pmc_flush_all(c);
	for (uint32_t i = 0; read && i < n; i++)
		if ((p[i].revents & (POLLIN | POLLERR | POLLHUP)) && c->links[at[i]].fd == p[i].fd)
			receive_link(c, at[i]);
}

void pmc_receive(struct pm_client *c)
{
	if (c->hooks)
		c->hooks->receive(c);
	else if (c->cluster)
		links_poll(c, 0, true);
	else if (c->links[0].fd >= 0)
		receive_link(c, 0);
}

/* ---------------------------------------------------------------- the poll loop */

/* Waits for a socket to become readable (or writable, when a send waits) for
 * at most wait_ms, and not past the earliest deadline. */
static void wait_io(struct pm_client *c, uint32_t wait_ms)
{
	uint64_t now = pmc_now_ms();
	if (c->next_deadline_ms <= now)
		return;
	if (c->next_deadline_ms - now < wait_ms)
		wait_ms = (uint32_t)(c->next_deadline_ms - now);
	if (c->hooks)
		c->hooks->wait(c, wait_ms);
	else /* one server: the caller reads its one socket next, without a poll */
		links_poll(c, wait_ms, c->cluster);
}

/* Something to wait for: a request, or the cluster's MAP request. */
static bool waiting(const struct pm_client *c)
{
	return c->busy > 0 || (c->cluster && c->cl.refreshing);
}

/* spin_us: the sockets read again and again, without sleeping, until a
 * request completes or spin_us pass (or the earliest deadline comes); true
 * when one completed. A sleeping poll(2) costs the reply a wake-up of this
 * thread, several µs in a VM; a client with a core to itself saves it. */
static bool spin(struct pm_client *c)
{
	uint64_t t0 = pmc_now_us();
	do {
		pmc_receive(c);
		if (c->completed_turn) {
			c->stats.spin_answered++;
			return true;
		}
	} while (pmc_is_open(c) && pmc_now_us() - t0 < c->cfg.spin_us &&
		 c->next_deadline_ms > pmc_now_ms());
	return false;
}

uint32_t pm_client_poll(struct pm_client *c, uint32_t wait_ms)
{
	if (c == NULL || c->in_cb)
		return 0;
	c->completed_turn = 0;
	pmc_flush_all(c);
	if (pmc_is_open(c))
		pmc_receive(c);
	pmc_check_timeouts(c, pmc_now_ms());
	if (c->completed_turn == 0 && waiting(c) && pmc_is_open(c) && wait_ms > 0) {
		pmc_flush_all(c);
		if (c->cfg.spin_us && !c->hooks && spin(c)) {
			pmc_flush_all(c);
			return c->completed_turn;
		}
		wait_io(c, wait_ms);
		pmc_receive(c);
		pmc_check_timeouts(c, pmc_now_ms());
	}
	pmc_flush_all(c);
	return c->completed_turn;
}

void pm_client_drain(struct pm_client *c)
{
	while (c && !c->in_cb && c->busy > 0)
		(void)pm_client_poll(c, PMC_POLL_SLICE_MS);
}
