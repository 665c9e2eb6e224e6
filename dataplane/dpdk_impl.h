/* SPDX-License-Identifier: MIT
 *
 * dpdk_impl.h — the DPDK backend's state, shared by dpdk.c (set-up, INFO) and
 * dpdk_io.c (the data path). Only these two files include DPDK headers.
 */
#ifndef POMAI_DATAPLANE_DPDK_IMPL_H
#define POMAI_DATAPLANE_DPDK_IMPL_H

#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_ip_frag.h>
#include <rte_mbuf.h>
#include <rte_spinlock.h>

#include "config.h"
#include "dp_limits.h"
#include "dpdk.h"

#define PM_DPDK_NO_QUEUE UINT16_MAX

/* One port (NIC or memif) and what its workers share. */
struct pm_dpdk_port {
	uint16_t id;                 /* DPDK port id */
	uint16_t nq;                 /* RX/TX queue pairs: queue i belongs to worker i */
	uint32_t steering;           /* enum pm_steering in effect */
	uint32_t mtu;                /* IP MTU */
	bool rx_intr;                /* its queues have interrupt fds */
	char name[RTE_ETH_NAME_MAX_LEN];
	struct pm_net_local local;
	struct pm_arp_table arp;     /* written by whoever receives ARP */
	rte_spinlock_t frag_lock;    /* fragments of one datagram may arrive on any queue */
	struct rte_ip_frag_tbl *frag;
	struct rte_flow *flows[PM_SHARDS_MAX];
	uint32_t nflows;
};

/* A reply packet waiting for its next hop's MAC. */
struct pm_dpdk_held {
	struct rte_mbuf *m;
	uint32_t port;
	uint32_t hop_be;
	uint64_t until_ms;
};

/* One worker's side of the backend. */
struct pm_dpdk_worker {
	struct pm_dpdk *dp;
	struct rte_mempool *pool;      /* RX queues of this worker and every reply */
	struct rte_mempool *indirect;  /* fragments of large replies */
	uint16_t q;                    /* queue on every port it polls; NO_QUEUE: none */
	uint32_t nheld;                /* mbufs behind the current RX burst */
	struct rte_mbuf *held[PM_RX_BURST];
	uint32_t nrecycle;             /* request mbufs kept to build replies in */
	struct rte_mbuf *recycle[PM_DPDK_TX_BURST];
	uint32_t ntx[PM_DPDK_PORTS_MAX];
	struct rte_mbuf *tx[PM_DPDK_PORTS_MAX][PM_DPDK_TX_BURST];
	uint64_t last_tx_tsc;
	uint64_t frag_expired_ms;      /* last sweep of the reassembly tables */
	uint32_t next_port;            /* the port polled first next turn */
	uint32_t nhold;
	struct pm_dpdk_held hold[PM_DPDK_HOLD_MAX];
	struct rte_ip_frag_death_row dr;
	uint16_t ip_id;
	uint8_t *big;                  /* one IPv4 datagram of a large reply: 65,536 bytes */
	int intr_fd[PM_DPDK_PORTS_MAX];
	struct pm_dpdk_counters c[PM_DPDK_PORTS_MAX];
};

struct pm_dpdk {
	uint32_t nports;
	struct pm_dpdk_port ports[PM_DPDK_PORTS_MAX];
	struct pm_dpdk_worker *wk;     /* one per worker */
	uint64_t tsc_hz, drain_tsc;
	bool started;
};

/* dpdk.c's part of the backend's operations (the table: dpdk_io.c). */
struct pm_stats_shard;
struct pm_worker;
/* First on the worker's thread: registers it as an EAL lcore. */
int pm_dpdk_worker_enter(struct pm_worker *w);
void pm_dpdk_worker_leave(struct pm_worker *w);
/* The backend's INFO lines (ports, queues, drops by reason); worker 0 adds the
 * port-wide rte_eth_stats. */
uint32_t pm_dpdk_info(const struct pm_worker *w, char *out, uint32_t cap);
/* This worker's queues' packet counters (all ports) in a stats block. */
void pm_dpdk_counters(const struct pm_worker *w, struct pm_stats_shard *s);

#endif
