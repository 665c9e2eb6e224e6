/* SPDX-License-Identifier: MIT
 *
 * repl_proxy.c — a TCP proxy that cuts the replication stream mid-frame
 * (repl_proxy.h).
 */
#define _GNU_SOURCE
#include "repl_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proc.h"
#include "repl.h"

/* pollfds of the thread: the wake and listening sockets, two per pair. */
#define POLLFDS_MAX (2u + 2u * REPL_PROXY_PAIRS_MAX)

/* ---------------------------------------------------------------- sockets */

static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Close with a reset rather than a FIN: the connection is killed. */
static void reset_close(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static int upstream_connect(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* ---------------------------------------------------------------- pairs */

static void pair_close(struct repl_proxy_pair *q, bool reset)
{
	if (q->down >= 0)
		reset ? reset_close(q->down) : (void)close(q->down);
	if (q->up >= 0)
		reset ? reset_close(q->up) : (void)close(q->up);
	memset(q, 0, sizeof(*q));
	q->down = q->up = -1;
}

static void pair_accept(struct repl_proxy *p)
{
	int down = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (down < 0)
		return;
	atomic_fetch_add(&p->accepted, 1);
	int up = upstream_connect(p->upstream);
	struct repl_proxy_pair *q = NULL;
	for (uint32_t i = 0; i < REPL_PROXY_PAIRS_MAX && !q; i++)
		q = p->pairs[i].down < 0 ? &p->pairs[i] : NULL;
	if (up < 0 || !q) { /* the replica sees its connection end, and connects again */
		close(down);
		if (up >= 0)
			close(up);
		return;
	}
	nodelay(down);
	nodelay(up);
	memset(q, 0, sizeof(*q));
	q->down = down;
	q->up = up;
}

/* The frame whose type byte is at b[pos] (its body, type byte included,
 * q->body_left bytes): how far in it is cut (0: not cut). Armed, a RECORDS
 * frame is cut in the middle of its records; with an image fault, every
 * SNAP_DATA frame in the middle of its payload. */
static uint32_t cut_at(struct repl_proxy *p, const struct repl_proxy_pair *q, uint8_t type)
{
	const uint32_t head = PM_REPL_FRAME_HEADER_BYTES - 4u; /* type, version, reserved */
	if (type == PM_REPL_SNAP_DATA && q->body_left > head &&
	    atomic_load(&p->image_fault) == REPL_PROXY_IMAGE_CUT) {
		atomic_fetch_add(&p->image_faults, 1);
		return head + (q->body_left - head) / 2u;
	}
	if (type == PM_REPL_RECORDS &&
	    q->body_left >= head + PM_REPL_RECORDS_FIXED_BYTES + PM_REPL_RECORD_BYTES_MIN &&
	    atomic_exchange(&p->armed, false)) /* the header, the fixed part, half of the records */
		return head + PM_REPL_RECORDS_FIXED_BYTES +
		       (q->body_left - head - PM_REPL_RECORDS_FIXED_BYTES) / 2u;
	return 0;
}

/* Follow the frames in b (n bytes from the primary): how many of them to
 * forward, and (*cut) whether the pair is to be reset once they are (a cut:
 * cut_at). A flipped bit is flipped in b. */
static size_t frames_walk(struct repl_proxy *p, struct repl_proxy_pair *q, uint8_t *b, size_t n,
			  bool *cut)
{
	size_t pos = 0;
	*cut = false;
	while (pos < n) {
		if (q->hdr_have < 4) {
			q->hdr[q->hdr_have++] = b[pos++];
			if (q->hdr_have == 4) {
				q->body_left = (uint32_t)q->hdr[0] | (uint32_t)q->hdr[1] << 8 |
					       (uint32_t)q->hdr[2] << 16 | (uint32_t)q->hdr[3] << 24;
				q->typed = false;
				q->hdr_have = q->body_left ? 4 : 0;
			}
			continue;
		}
		if (!q->typed) {
			q->typed = true;
			const uint32_t head = PM_REPL_FRAME_HEADER_BYTES - 4u;
			if (b[pos] == PM_REPL_SNAP_DATA && q->body_left > head &&
			    atomic_load(&p->image_fault) == REPL_PROXY_IMAGE_FLIP) {
				q->flipping = true; /* a bit in the middle of the payload */
				q->flip_left = head + (q->body_left - head) / 2u;
				atomic_fetch_add(&p->image_faults, 1);
			}
			uint32_t send = cut_at(p, q, b[pos]);
			if (send) {
				atomic_store(&p->cut_frame_bytes, q->body_left + 4u);
				atomic_store(&p->cut_after_bytes, send + 4u);
				if (send <= n - pos) {
					*cut = true;
					return pos + send;
				}
				/* the middle comes in a later read: the frame is cut there */
				q->body_left = send - (uint32_t)(n - pos);
				q->cutting = true; /* body_left counts down to the cut */
				return n;
			}
		}
		size_t k = q->body_left < n - pos ? q->body_left : n - pos;
		if (q->flipping && q->flip_left < k) {
			b[pos + q->flip_left] ^= 0x10u;
			q->flipping = false;
		} else if (q->flipping) {
			q->flip_left -= (uint32_t)k;
		}
		pos += k;
		q->body_left -= (uint32_t)k;
		if (q->body_left == 0) {
			*cut = q->cutting;
			if (*cut)
				return pos;
			q->hdr_have = 0;
		}
	}
	return n;
}

/* Relay what one side has; false when the pair is done with (closed or cut). */
static bool pair_relay(struct repl_proxy *p, struct repl_proxy_pair *q, bool from_up)
{
	ssize_t r = recv(from_up ? q->up : q->down, p->buf, sizeof(p->buf), 0);
	if (r < 0 && errno == EINTR)
		return true;
	if (r <= 0) {
		pair_close(q, false);
		return false;
	}
	if (!from_up) {
		if (!proc_send_all(q->up, p->buf, (size_t)r))
			pair_close(q, false);
		return q->down >= 0;
	}
	bool cut;
	size_t n = frames_walk(p, q, p->buf, (size_t)r, &cut);
	if (!proc_send_all(q->down, p->buf, n)) {
		pair_close(q, false);
		return false;
	}
	if (cut) {
		pair_close(q, true);
		atomic_fetch_add(&p->cuts, 1);
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------- the thread */

static void *proxy_main(void *arg)
{
	struct repl_proxy *p = arg;
	struct pollfd pf[POLLFDS_MAX];
	uint32_t who[POLLFDS_MAX];
	while (!atomic_load(&p->quit)) {
		uint32_t n = 0;
		pf[n++] = (struct pollfd){ .fd = p->wake_fd, .events = POLLIN };
		pf[n++] = (struct pollfd){ .fd = p->listen_fd, .events = POLLIN };
		for (uint32_t i = 0; i < REPL_PROXY_PAIRS_MAX; i++) {
			if (p->pairs[i].down < 0)
				continue;
			who[n] = i * 2u;
			pf[n++] = (struct pollfd){ .fd = p->pairs[i].down, .events = POLLIN };
			who[n] = i * 2u + 1u;
			pf[n++] = (struct pollfd){ .fd = p->pairs[i].up, .events = POLLIN };
		}
		if (poll(pf, n, REPL_PROXY_POLL_MS) <= 0)
			continue;
		if (pf[1].revents & POLLIN)
			pair_accept(p);
		for (uint32_t k = 2; k < n; k++) {
			struct repl_proxy_pair *q = &p->pairs[who[k] / 2u];
			if (q->down >= 0 && (pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
				pair_relay(p, q, who[k] & 1u);
		}
	}
	return NULL;
}

bool repl_proxy_start(struct repl_proxy *p, uint16_t upstream)
{
	memset(p, 0, sizeof(*p));
	for (uint32_t i = 0; i < REPL_PROXY_PAIRS_MAX; i++)
		p->pairs[i].down = p->pairs[i].up = -1;
	p->upstream = upstream;
	p->listen_fd = proc_tcp_listen(upstream, &p->port);
	p->wake_fd = eventfd(0, EFD_CLOEXEC);
	p->running = p->listen_fd >= 0 && p->wake_fd >= 0 &&
		     pthread_create(&p->thread, NULL, proxy_main, p) == 0;
	if (!p->running)
		repl_proxy_stop(p);
	return p->running;
}

void repl_proxy_arm(struct repl_proxy *p)
{
	atomic_store(&p->armed, true);
}

void repl_proxy_stop(struct repl_proxy *p)
{
	if (p->running) {
		uint64_t one = 1;
		atomic_store(&p->quit, true);
		if (write(p->wake_fd, &one, sizeof(one)) != sizeof(one))
			(void)0; /* the thread still sees quit within REPL_PROXY_POLL_MS */
		pthread_join(p->thread, NULL);
		p->running = false;
	}
	for (uint32_t i = 0; i < REPL_PROXY_PAIRS_MAX; i++)
		if (p->pairs[i].down >= 0)
			pair_close(&p->pairs[i], false);
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	p->listen_fd = p->wake_fd = -1;
}
