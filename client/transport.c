/* SPDX-License-Identifier: MIT
 *
 * transport.c — libpomai's sockets: send queues, datagram batching, the TCP
 * stream, receiving, and the poll loop.
 *
 * UDP: one non-blocking socket sends to every shard. Frames queued for a shard
 * are packed into datagrams of at most PMC_DATAGRAM_BYTES (several frames back
 * to back, gathered with sendmsg from the slots' buffers, no copy); a frame
 * larger than that goes alone, up to PM_FRAME_BYTES_MAX. A send the kernel
 * refuses for lack of buffer space stays queued until the socket is writable;
 * any other send error counts as a lost datagram, which the request's timer
 * recovers from.
 *
 * TCP: one non-blocking stream; queued frames are written with sendmsg (partial
 * writes continue where they stopped) and replies are parsed from a receive
 * buffer of two largest frames. A header that cannot be parsed, the peer
 * closing, or any socket error ends the stream: every request on it fails
 * with E_CONNECTION and the next submit reconnects.
 *
 * A hook transport (c->hooks, client_impl.h) takes the place of the socket
 * calls; everything above them is shared.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
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
static int tcp_connect(struct pm_client *c)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	set_bufs(fd);
	if (connect(fd, (const struct sockaddr *)&c->addrs[0], sizeof c->addrs[0]) != 0) {
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

enum pm_client_status pmc_connect(struct pm_client *c)
{
	if (pmc_is_open(c))
		return PM_CLIENT_OK;
	c->want_write = false;
	if (c->hooks) {
		enum pm_client_status st = c->hooks->connect(c);
		c->hook_up = st == PM_CLIENT_OK;
		return st;
	}
	if (c->tcp) {
		c->fd = tcp_connect(c);
		c->rx_len = 0;
	} else {
		c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd >= 0)
			set_bufs(c->fd);
	}
	return c->fd >= 0 ? PM_CLIENT_OK : PM_CLIENT_E_CONNECTION;
}

/* Close the socket and fail every request in flight with `why`. */
void pmc_disconnect(struct pm_client *c, enum pm_client_status why)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->hooks && c->hook_up)
		c->hooks->disconnect(c);
	c->hook_up = false;
	c->fd = -1;
	c->rx_len = 0;
	c->stream_gen++;
	for (uint32_t q = 0; q < c->nqueues; q++) {
		c->queues[q] = (struct pmc_queue){ .head = PMC_NIL, .tail = PMC_NIL };
	}
	c->ndirty = 0;
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct pmc_slot *s = &c->slots[i];
		s->queued = false;
		s->tx_off = 0;
		s->prev = s->next = PMC_NIL;
	}
	/* Only requests sent on this stream: a callback may submit new ones. */
	uint64_t last_seq = c->seq;
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct pmc_slot *s = &c->slots[i];
		if (s->state == PMC_WAIT && (s->id >> PMC_SLOT_BITS) <= last_seq)
			pmc_fail(c, s, why);
	}
}

/* ---------------------------------------------------------------- queues */

static void mark_dirty(struct pm_client *c, uint32_t qi)
{
	struct pmc_queue *q = &c->queues[qi];
	if (!q->dirty) {
		q->dirty = true;
		c->dirty[c->ndirty++] = qi;
	}
}

void pmc_unlink(struct pm_client *c, struct pmc_slot *s)
{
	struct pmc_queue *q = &c->queues[s->dest];
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

static void link_tail(struct pm_client *c, struct pmc_slot *s)
{
	struct pmc_queue *q = &c->queues[s->dest];
	uint32_t idx = (uint32_t)(s - c->slots);
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

static void flush_queue(struct pm_client *c, uint32_t qi);

/* Queue a frame; UDP sends the datagram it would overflow first, so queues
 * hold at most one datagram's worth unless the socket is full. */
void pmc_enqueue(struct pm_client *c, struct pmc_slot *s)
{
	struct pmc_queue *q = &c->queues[s->dest];
	PMC_ASSERT(!s->queued);
	if (!c->tcp && q->frames &&
	    (q->bytes + s->len > PMC_DATAGRAM_BYTES || q->frames >= PMC_BATCH_FRAMES_MAX))
		flush_queue(c, s->dest);
	link_tail(c, s);
	if (c->tcp ? q->bytes >= PMC_TCP_WRITE_BYTES : s->len > PMC_DATAGRAM_BYTES)
		flush_queue(c, s->dest);
}

/* ---------------------------------------------------------------- sending */

/* Gathers frames from the queue head: as many as fit one datagram (UDP), or
 * PMC_BATCH_FRAMES_MAX (TCP, the first from its written offset). */
static uint32_t gather(struct pm_client *c, const struct pmc_queue *q, struct iovec *iov,
		       size_t *total)
{
	uint32_t n = 0;
	*total = 0;
	for (uint32_t i = q->head; i != PMC_NIL && n < PMC_BATCH_FRAMES_MAX; i = c->slots[i].next) {
		const struct pmc_slot *s = &c->slots[i];
		if (!c->tcp && n > 0 && *total + s->len > PMC_DATAGRAM_BYTES)
			break;
		iov[n].iov_base = s->buf + s->tx_off;
		iov[n].iov_len = s->len - s->tx_off;
		*total += iov[n].iov_len;
		n++;
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
static bool hook_send(struct pm_client *c, uint32_t qi, const struct iovec *iov, uint32_t n,
		      size_t total)
{
	enum pmc_send_result r = c->hooks->send(c, qi, iov, n, total);
	if (r == PMC_SEND_FULL) {
		c->want_write = true;
		return false;
	}
	c->stats.datagrams_out++;
	advance(c, &c->queues[qi], total); /* sent, or lost */
	return true;
}

/* One sendmsg. Returns false when the queue must wait (socket full, or gone). */
static bool send_once(struct pm_client *c, uint32_t qi)
{
	struct pmc_queue *q = &c->queues[qi];
	struct iovec iov[PMC_BATCH_FRAMES_MAX];
	size_t total;
	uint32_t n = gather(c, q, iov, &total);
	if (c->hooks)
		return hook_send(c, qi, iov, n, total);
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = n };
	if (!c->tcp) {
		m.msg_name = &c->addrs[qi];
		m.msg_namelen = sizeof c->addrs[qi];
	}
	ssize_t r = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r < 0 && errno == EINTR)
		return true;
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || (!c->tcp && errno == ENOBUFS))) {
		c->want_write = true;
		return false;
	}
	if (r < 0 && c->tcp) {
		pmc_disconnect(c, PM_CLIENT_E_CONNECTION);
		return false;
	}
	c->stats.datagrams_out++;
	advance(c, q, r < 0 ? total : (size_t)r); /* UDP error: the datagram is lost */
	return true;
}

static void flush_queue(struct pm_client *c, uint32_t qi)
{
	while (pmc_is_open(c) && c->queues[qi].head != PMC_NIL)
		if (!send_once(c, qi))
			return;
}

void pmc_flush_all(struct pm_client *c)
{
	uint32_t keep = 0;
	const uint32_t gen = c->stream_gen;
	for (uint32_t i = 0; i < c->ndirty; i++) {
		uint32_t qi = c->dirty[i];
		flush_queue(c, qi);
		if (c->stream_gen != gen)
			return; /* the stream closed (its callbacks may have queued anew) */
		if (c->queues[qi].head != PMC_NIL)
			c->dirty[keep++] = qi; /* socket full: again when writable */
		else
			c->queues[qi].dirty = false;
	}
	c->ndirty = keep;
}

void pm_client_flush(struct pm_client *c)
{
	if (c)
		pmc_flush_all(c);
}

/* ---------------------------------------------------------------- receiving */

void pmc_on_datagram(struct pm_client *c, const uint8_t *p, size_t len)
{
	size_t off = 0, used;
	while (off < len && (used = pmc_on_frame(c, p + off, len - off)))
		off += used;
}

static void udp_receive(struct pm_client *c)
{
	for (uint32_t n = 0; n < PMC_RX_BURST && c->fd >= 0; n++) {
		ssize_t r = recv(c->fd, c->rx, c->rx_cap, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return; /* EAGAIN, or an ICMP error for an earlier send */
		pmc_on_datagram(c, c->rx, (size_t)r);
	}
}

/* Handles every whole frame in the stream buffer and keeps the partial rest. */
static void tcp_parse(struct pm_client *c)
{
	size_t off = 0;
	const uint32_t gen = c->stream_gen;
	while (c->rx_len - off >= PM_FRAME_HEADER_BYTES) {
		struct pm_frame_header h;
		enum pm_wire_status st = pm_header_decode(c->rx + off, c->rx_len - off, &h);
		if (st == PM_WIRE_E_FRAME_TRUNCATED)
			break; /* the rest of the body has not arrived yet */
		if (!pm_header_usable(st)) {
			pmc_disconnect(c, PM_CLIENT_E_CONNECTION); /* framing lost */
			return;
		}
		size_t used = pmc_on_frame(c, c->rx + off, c->rx_len - off);
		if (used == 0) {
			pmc_disconnect(c, PM_CLIENT_E_CONNECTION);
			return;
		}
		off += used;
		if (c->stream_gen != gen)
			return; /* a callback's submit found the stream broken */
	}
	memmove(c->rx, c->rx + off, c->rx_len - off);
	c->rx_len -= (uint32_t)off;
}

static void tcp_receive(struct pm_client *c)
{
	const uint32_t gen = c->stream_gen;
	for (uint32_t n = 0; n < PMC_RX_BURST && c->fd >= 0 && c->stream_gen == gen; n++) {
		ssize_t r = recv(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			pmc_disconnect(c, PM_CLIENT_E_CONNECTION);
			return;
		}
		c->rx_len += (uint32_t)r;
		tcp_parse(c);
	}
}

void pmc_receive(struct pm_client *c)
{
	if (c->hooks)
		c->hooks->receive(c);
	else if (c->tcp)
		tcp_receive(c);
	else
		udp_receive(c);
}

/* ---------------------------------------------------------------- the poll loop */

/* Waits for the socket to become readable (or writable, when a send waits) for
 * at most wait_ms, and not past the earliest request deadline. */
static void wait_io(struct pm_client *c, uint32_t wait_ms)
{
	uint64_t now = pmc_now_ms();
	if (c->next_deadline_ms <= now)
		return;
	if (c->next_deadline_ms - now < wait_ms)
		wait_ms = (uint32_t)(c->next_deadline_ms - now);
	if (c->hooks) {
		c->hooks->wait(c, wait_ms);
		return;
	}
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	if (c->want_write)
		p.events |= POLLOUT;
	if (poll(&p, 1, (int)wait_ms) > 0 && (p.revents & POLLOUT)) {
		c->want_write = false;
		pmc_flush_all(c);
	}
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
	if (c->completed_turn == 0 && c->busy > 0 && pmc_is_open(c) && wait_ms > 0) {
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
