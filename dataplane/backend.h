/* SPDX-License-Identifier: MIT
 *
 * backend.h — what a worker asks of the backend that moves its datagrams:
 * one table of operations per backend (the kernel's sockets, udp.c; DPDK,
 * dpdk_io.c), chosen once at start-up from `backend` (pomaid.c) and reached
 * through w->be. The worker calls it a few times per turn, never per frame:
 * frames come in through the RX burst the backend fills (w->rx_ptr, rx_len,
 * rx_from) and replies go out through the TX queue it drains (w->tx).
 *
 * TCP is not a backend: its connections are the kernel's whatever the
 * datagram backend is (tcp.c, one more source of frames in every turn).
 */
#ifndef POMAI_DATAPLANE_BACKEND_H
#define POMAI_DATAPLANE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

struct pm_worker;
struct pm_stats_shard;

struct pm_backend_ops {
	const char *name;
	/* On the worker's thread, before its first turn (0, or -1: the worker
	 * stops) and after its last. */
	int (*enter)(struct pm_worker *w);
	void (*leave)(struct pm_worker *w);
	/* One RX burst into the worker's rx_ptr / rx_len / rx_from: returns the
	 * datagrams for the shard workers; *work: packets the backend handled
	 * itself (ARP, ICMP, fragments). */
	uint32_t (*rx)(struct pm_worker *w, uint32_t *work);
	/* The burst's frames are served: its buffers may be reused. */
	void (*rx_done)(struct pm_worker *w);
	/* Hand the TX queue's datagrams to the wire, emptying it; now: the
	 * worker ran out of work, so nothing may wait for a fuller burst. */
	void (*flush)(struct pm_worker *w, bool now);
	/* Idle: what wakes the worker when a packet arrives, at most cap fds;
	 * may shorten *sleep_us (a queue that cannot wake it). Their count. */
	uint32_t (*arm)(struct pm_worker *w, int *fds, uint32_t cap, uint32_t *sleep_us);
	void (*disarm)(struct pm_worker *w);
	/* arm's wake-ups are edges (RX interrupts): a packet that came before
	 * they were armed raises none, so the worker looks at RX once more
	 * after arm before it sleeps. */
	bool arm_misses_rx;
	/* INFO lines of the backend; its packet counters in a stats block. */
	uint32_t (*info)(const struct pm_worker *w, char *out, uint32_t cap);
	void (*counters)(const struct pm_worker *w, struct pm_stats_shard *s);
};

#endif
