/* SPDX-License-Identifier: MIT
 *
 * dpdk.h — pomaid's DPDK backend: frames straight from NIC (or memif) queues
 * into the shard workers, behind the same boundary as the kernel backend
 * (worker.h): RX fills the worker's datagram burst, replies leave from its
 * pm_tx queue.
 *
 * Set-up (dpdk.c): the EAL is initialised from dpdk_eal_args plus the lcore
 * list pomaid derives from its hwloc placement; every port the EAL probed is
 * served, each with the address of its position in dpdk_addrs. A port gets
 * one RX/TX queue pair per worker when it has that many; steering is an
 * rte_flow rule per worker (UDP destination base_port + i -> queue i: the
 * client picks the core), else the device's RSS, else one queue whose worker
 * forwards frames to their owners through the rings (the slow path, counted
 * as forwards). Workers without a queue on a port send their replies for it
 * through the worker that received the request.
 *
 * Data path (dpdk_io.c): the L2/L3 front end is netfe.c; ARP and ICMP echo are
 * answered in the request's own mbuf; UDP payloads are served in place from
 * single-segment mbufs; fragments are reassembled with DPDK's ip_frag library
 * in a per-port table under a spin lock (fragments of one datagram may land on
 * different queues: steering matches UDP ports, which only the first fragment
 * carries). Replies are written into mbufs (recycled RX mbufs first), larger
 * ones fragmented with rte_ipv4_fragment_packet, and sent in bursts: at once
 * when the worker runs out of work, at most dpdk_tx_drain_us later under load
 * (an interval computed from the TSC frequency).
 */
#ifndef POMAI_DATAPLANE_DPDK_H
#define POMAI_DATAPLANE_DPDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netfe.h"

struct pm_backend_ops;
struct pm_config;
struct pm_daemon;

/* Its bounds: dp_limits.h (DPDK backend). */

/* Per-port counters kept by one worker (single writer; INFO sums them). */
struct pm_dpdk_counters {
	uint64_t rx_pkts, tx_pkts, tx_dropped;
	uint64_t arp_answered, arp_learned, arp_asked, icmp_answered;
	uint64_t frags_in, reassembled, frags_out;
	uint64_t drops[PM_NET_DROP_REASONS];
};

/* Start the EAL with dpdk_eal_args and main lcore main_cpu (before the shards
 * are opened). 0, or -1 with a message. */
int pm_dpdk_init(struct pm_daemon *d, int main_cpu, char *err, size_t errlen);
/* Pools, ports, queues, flows, and every worker's state (after the workers
 * exist, before they start). 0, or -1 with a message. */
int pm_dpdk_open(struct pm_daemon *d, char *err, size_t errlen);
void pm_dpdk_close(struct pm_daemon *d);
/* A shard's arena from the EAL's hugepages on the first port's NUMA node
 * (zeroed, 2 MiB aligned), or NULL when the EAL has no hugepages (--no-huge)
 * or not enough: the shard then maps its own. */
void *pm_dpdk_arena(struct pm_daemon *d, uint64_t bytes);
void pm_dpdk_arena_free(void *mem);
/* Its operations (backend.h): RX bursts from every port's queue of the
 * worker, TX bursts of built replies, RX interrupts to sleep on, and the
 * backend's INFO lines and counters. A port's replies leave through the
 * worker that has a TX queue on it (w->tx_ports, set by pm_dpdk_open). */
extern const struct pm_backend_ops pm_dpdk_backend;
/* ... as pomaid's workers get them: from the DPDK module (dpdk_load.c) once
 * pm_dpdk_init has loaded it, NULL before; dpdk_none.c's table without DPDK. */
const struct pm_backend_ops *pm_dpdk_ops(void);
/* The ports' own IPv4 addresses (network order) into out; their count. */
uint32_t pm_dpdk_local_addrs(const struct pm_daemon *d, uint32_t *out, uint32_t max);
/* Steering mode chosen, for the ready line. */
const char *pm_dpdk_describe(const struct pm_daemon *d, char *buf, size_t len);

#endif
