/* SPDX-License-Identifier: MIT
 *
 * udp.c — the kernel-socket backend: one non-blocking UDP socket per worker on
 * base_port + shard; bursts in with recvmmsg, bursts out with sendmmsg. A reply
 * the kernel will not take (EAGAIN: the socket buffer is full) is dropped and
 * counted — UDP clients retry; the worker never blocks on a send.
 */
#define _GNU_SOURCE /* recvmmsg, sendmmsg */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend.h"
#include "udp.h"
#include "worker.h"

int pm_udp_open(const struct pm_config *cfg, uint32_t shard, char *err, size_t errlen)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)(cfg->base_port + shard)) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	int buf = (int)PM_UDP_SOCKBUF_BYTES;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	inet_pton(AF_INET, cfg->bind, &a.sin_addr);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		snprintf(err, errlen, "bind %s:%u (shard %u): %s", cfg->bind,
			 cfg->base_port + shard, shard, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* ---------------------------------------------------------------- the backend's operations */

/* Receive up to PM_RX_BURST datagrams into the worker's RX slots. */
static uint32_t udp_rx(struct pm_worker *w, uint32_t *work)
{
	*work = 0; /* every datagram is the workers' */
	struct sockaddr_in from[PM_RX_BURST];
	struct mmsghdr msgs[PM_RX_BURST];
	struct iovec iov[PM_RX_BURST];
	for (uint32_t i = 0; i < PM_RX_BURST; i++) {
		iov[i] = (struct iovec){ w->rx_buf + (size_t)i * PM_RX_SLOT_BYTES, PM_FRAME_BYTES_MAX };
		msgs[i].msg_hdr = (struct msghdr){ .msg_name = &from[i], .msg_namelen = sizeof(from[i]),
						   .msg_iov = &iov[i], .msg_iovlen = 1 };
	}
	int n = recvmmsg(w->fd, msgs, PM_RX_BURST, MSG_DONTWAIT, NULL);
	uint32_t k = 0;
	for (int i = 0; i < n; i++) {
		if (!pm_allow_match(&w->d->allow, from[i].sin_addr.s_addr)) {
			w->stats.dropped_not_allowed++; /* before anything reads it; no reply */
			continue;
		}
		w->rx_ptr[k] = w->rx_buf + (size_t)i * PM_RX_SLOT_BYTES;
		w->rx_len[k] = msgs[i].msg_len;
		w->rx_from[k++] = (struct pm_dest){ .addr = from[i], .worker = w->id,
						    .conn = PM_CONN_NONE, .port = PM_PORT_KERNEL,
						    .dport = (uint16_t)(w->d->cfg.base_port + w->id) };
	}
	w->stats.rx_datagrams += k;
	return k;
}

static void udp_flush(struct pm_worker *w, bool now)
{
	struct pm_tx *t = &w->tx;
	(void)now; /* sendmmsg sends at once */
	if (t->n == 0)
		return;
	struct mmsghdr msgs[PM_TX_BURST];
	struct iovec iov[PM_TX_BURST];
	for (uint32_t i = 0; i < t->n; i++) {
		iov[i] = (struct iovec){ t->buf + t->off[i], t->len[i] };
		msgs[i].msg_hdr = (struct msghdr){ .msg_name = &t->to[i], .msg_namelen = sizeof(t->to[i]),
						   .msg_iov = &iov[i], .msg_iovlen = 1 };
	}
	uint32_t done = 0;
	while (done < t->n) {
		int r = sendmmsg(w->fd, msgs + done, t->n - done, MSG_DONTWAIT);
		if (r > 0) {
			done += (uint32_t)r;
			w->stats.tx_datagrams += (uint64_t)r;
		} else if (r < 0 && errno != EINTR) {
			done++; /* this datagram fails (EAGAIN, unreachable peer): drop it */
			w->stats.tx_errors++;
		}
	}
	t->n = 0;
	t->bytes = 0;
}

/* Idle: the socket wakes the worker. */
static uint32_t udp_arm(struct pm_worker *w, int *fds, uint32_t cap, uint32_t *sleep_us)
{
	(void)cap;
	(void)sleep_us;
	fds[0] = w->fd;
	return 1;
}

static int udp_enter(struct pm_worker *w)
{
	(void)w;
	return 0;
}

static void udp_nothing(struct pm_worker *w)
{
	(void)w; /* the kernel's buffers are its own; no state to release or disarm */
}

static uint32_t udp_info(const struct pm_worker *w, char *out, uint32_t cap)
{
	(void)w;
	(void)out;
	(void)cap;
	return 0; /* its counters are the worker's own (rx_datagrams, tx_datagrams, tx_errors) */
}

static void udp_counters(const struct pm_worker *w, struct pm_stats_shard *s)
{
	(void)w;
	(void)s; /* no queues of its own: the kernel's counters are the NIC's */
}

const struct pm_backend_ops pm_udp_backend = {
	.name = "kernel",
	.enter = udp_enter,
	.leave = udp_nothing,
	.rx = udp_rx,
	.rx_done = udp_nothing,
	.flush = udp_flush,
	.arm = udp_arm,
	.disarm = udp_nothing,
	.arm_misses_rx = false, /* the socket is readable while a datagram waits */
	.info = udp_info,
	.counters = udp_counters,
};
