/* SPDX-License-Identifier: MIT
 *
 * dpdk.c — set-up of the DPDK backend (see dpdk.h): the EAL, one mbuf pool per
 * worker on its NUMA node, every probed port with a queue pair per worker,
 * steering (rte_flow, else RSS, else one queue), reassembly tables, and the
 * backend's INFO lines. Every failure here stops start-up with a message; the
 * data path (dpdk_io.c) only drops and counts.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "common.h"
#include "dpdk_impl.h"
#include "worker.h"

/* EAL arguments pomaid passes: its own name, the user's, and the lcore list;
 * the argv slots after the user's: "-l", the list, the closing NULL. */
#define EAL_ARGS_MAX 64u
#define EAL_ARGS_AFTER 3u
/* Hash buckets of a reassembly table: entries per bucket (the library's
 * maximum is 16, a power of two). */
#define FRAG_BUCKET_ENTRIES 16u

/* ---------------------------------------------------------------- EAL */

/* Split dpdk_eal_args on blanks into argv (no quoting: EAL values have none).
 * The lcore flags are pomaid's to choose. */
static int eal_argv(const struct pm_config *cfg, int main_cpu, char *buf, char **argv,
		    char *err, size_t errlen)
{
	static char lcores[32];
	int argc = 0;
	argv[argc++] = "pomaid";
	strcpy(buf, cfg->dpdk_eal_args);
	for (char *save = NULL, *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (!strcmp(t, "-l") || !strcmp(t, "-c") || !strncmp(t, "--lcores", 8) ||
		    !strncmp(t, "--main-lcore", 12))
			return pm_errf(err, errlen, "dpdk_eal_args: '%s' is pomaid's to set (from 'cores');"
				    " remove it", t);
		if (argc >= (int)(EAL_ARGS_MAX - EAL_ARGS_AFTER))
			return pm_errf(err, errlen, "dpdk_eal_args: more than %u arguments",
				    EAL_ARGS_MAX - EAL_ARGS_AFTER);
		argv[argc++] = t;
	}
	snprintf(lcores, sizeof(lcores), "%d", main_cpu);
	argv[argc++] = "-l";
	argv[argc++] = lcores;
	argv[argc] = NULL;
	return argc;
}

int pm_dpdk_init(struct pm_daemon *d, int main_cpu, char *err, size_t errlen)
{
	static char buf[PM_CONFIG_EAL_BYTES];
	char *argv[EAL_ARGS_MAX + 1];
	int argc = eal_argv(&d->cfg, main_cpu, buf, argv, err, errlen);
	if (argc < 0)
		return -1;
	if (rte_eal_init(argc, argv) < 0)
		return pm_errf(err, errlen, "DPDK EAL start failed: %s (dpdk_eal_args = %s)",
			    rte_strerror(rte_errno), d->cfg.dpdk_eal_args);
	d->dpdk = calloc(1, sizeof(*d->dpdk));
	if (!d->dpdk)
		return pm_errf(err, errlen, "out of memory");
	d->dpdk->tsc_hz = rte_get_tsc_hz();
	/* the drain interval in TSC cycles, rounded up (l3fwd's BURST_TX_DRAIN_US) */
	d->dpdk->drain_tsc = (d->dpdk->tsc_hz + 999999u) / 1000000u * d->cfg.dpdk_tx_drain_us;
	return 0;
}

/* Alignment of a shard arena taken from the EAL's hugepages. */
#define ARENA_ALIGN_BYTES (2u << 20)

void *pm_dpdk_arena(struct pm_daemon *d, uint64_t bytes)
{
	(void)d;
	if (!rte_eal_has_hugepages())
		return NULL;
	uint16_t first = (uint16_t)rte_eth_find_next_owned_by(0, RTE_ETH_DEV_NO_OWNER);
	void *mem = rte_zmalloc_socket("pm_arena", bytes, ARENA_ALIGN_BYTES,
				       rte_eth_dev_socket_id(first));
	if (!mem)
		fprintf(stderr, "pomaid: no %llu bytes of EAL hugepages for a shard arena;"
				" mapping it instead\n", (unsigned long long)bytes);
	return mem;
}

void pm_dpdk_arena_free(void *mem)
{
	rte_free(mem);
}

/* ---------------------------------------------------------------- addresses */

/* Field i of a comma list into out (empty when absent). */
static void list_item(const char *list, uint32_t i, char *out, size_t n)
{
	const char *p = list;
	for (uint32_t k = 0; k < i && p; k++)
		if ((p = strchr(p, ',')) != NULL)
			p++;
	size_t len = p ? strcspn(p, ",") : 0;
	snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), p ? p : "");
}

static uint32_t list_count(const char *list)
{
	uint32_t n = 1;
	for (const char *p = list; (p = strchr(p, ',')) != NULL; p++)
		n++;
	return n;
}

/* Port i's address, netmask, gateway, VLAN and UDP ports. */
static int port_local(const struct pm_daemon *d, uint32_t i, struct pm_net_local *l, char *err,
		      size_t errlen)
{
	char a[64], g[64];
	list_item(d->cfg.dpdk_addrs, i, a, sizeof(a));
	list_item(d->cfg.dpdk_gateways, i, g, sizeof(g));
	char *slash = strchr(a, '/');
	if (!slash)
		return pm_errf(err, errlen, "dpdk_addrs: port %u has no address/prefix", i);
	*slash = '\0';
	uint32_t bits = (uint32_t)atoi(slash + 1);
	struct in_addr ip, gw = { 0 };
	if (inet_pton(AF_INET, a, &ip) != 1 || (g[0] && strcmp(g, "none") &&
						 inet_pton(AF_INET, g, &gw) != 1))
		return pm_errf(err, errlen, "dpdk_addrs/dpdk_gateways: port %u: bad address", i);
	l->ip_be = ip.s_addr;
	l->mask_be = htonl(bits >= 32 ? UINT32_MAX : ~(UINT32_MAX >> bits));
	l->gateway_be = gw.s_addr;
	l->vlan = (uint16_t)d->cfg.dpdk_vlan;
	l->port_lo = (uint16_t)d->cfg.base_port;
	l->port_hi = (uint16_t)(d->cfg.base_port + d->nshards - 1);
	return 0;
}

/* ---------------------------------------------------------------- ports */

static int make_pools(struct pm_daemon *d, char *err, size_t errlen)
{
	struct pm_dpdk *dp = d->dpdk;
	/* packet memory on the NUMA node of the (first) port: the NIC DMAs into it */
	uint16_t first = (uint16_t)rte_eth_find_next_owned_by(0, RTE_ETH_DEV_NO_OWNER);
	int socket = rte_eth_dev_socket_id(first);
	for (uint32_t i = 0; i < d->nshards; i++) {
		struct pm_dpdk_worker *k = &dp->wk[i];
		char name[RTE_MEMPOOL_NAMESIZE];
		snprintf(name, sizeof(name), "pm_mbuf_%u", i);
		k->pool = rte_pktmbuf_pool_create(name, d->cfg.dpdk_mbufs, PM_DPDK_MBUF_CACHE, 0,
						  PM_DPDK_MBUF_DATA_BYTES, socket);
		snprintf(name, sizeof(name), "pm_indirect_%u", i);
		k->indirect = rte_pktmbuf_pool_create(name, d->cfg.dpdk_mbufs, PM_DPDK_MBUF_CACHE, 0, 0,
						      socket);
		k->big = rte_malloc_socket("pm_big", PM_DPDK_BIG_BYTES, RTE_CACHE_LINE_SIZE, socket);
		if (!k->pool || !k->indirect || !k->big)
			return pm_errf(err, errlen, "worker %u: %u mbufs: %s (raise -m in dpdk_eal_args or"
				    " lower dpdk_mbufs)", i, d->cfg.dpdk_mbufs, rte_strerror(rte_errno));
		k->dp = dp;
		k->ip_id = (uint16_t)(i << 12);
		for (uint32_t p = 0; p < PM_DPDK_PORTS_MAX; p++)
			k->intr_fd[p] = -1;
	}
	return 0;
}

/* The device configuration: MTU, checksum offloads, RSS when several queues. */
static void port_conf(const struct pm_daemon *d, const struct rte_eth_dev_info *di, uint16_t nq,
		      bool intr, struct rte_eth_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->rxmode.mtu = PM_MIN(d->cfg.dpdk_mtu, di->max_mtu);
	/* fragments of large replies are mbuf chains */
	conf->txmode.offloads = di->tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
	uint64_t want = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
	conf->rxmode.offloads = di->rx_offload_capa & want;
	if (conf->rxmode.mtu + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN >
	    PM_DPDK_MBUF_DATA_BYTES - RTE_PKTMBUF_HEADROOM)
		conf->rxmode.offloads |= di->rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER;
	if (nq > 1 && d->cfg.dpdk_steering != PM_STEER_SINGLE) {
		conf->rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf->rx_adv_conf.rss_conf.rss_hf = di->flow_type_rss_offloads &
			(RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_UDP);
	}
	conf->intr_conf.rxq = intr ? 1 : 0;
}

static int port_queues(struct pm_daemon *d, struct pm_dpdk_port *p, const struct rte_eth_dev_info *di,
		       const struct rte_eth_conf *conf, char *err, size_t errlen)
{
	uint16_t rxd = (uint16_t)d->cfg.dpdk_rx_desc, txd = (uint16_t)d->cfg.dpdk_tx_desc;
	rte_eth_dev_adjust_nb_rx_tx_desc(p->id, &rxd, &txd);
	struct rte_eth_rxconf rxc = di->default_rxconf;
	struct rte_eth_txconf txc = di->default_txconf;
	rxc.offloads = conf->rxmode.offloads;
	txc.offloads = conf->txmode.offloads;
	int socket = rte_eth_dev_socket_id(p->id);
	for (uint16_t q = 0; q < p->nq; q++) {
		int rc = rte_eth_rx_queue_setup(p->id, q, rxd, (unsigned)socket, &rxc, d->dpdk->wk[q].pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(p->id, q, txd, (unsigned)socket, &txc);
		if (rc != 0)
			return pm_errf(err, errlen, "port %s: queue %u: %s", p->name, q, rte_strerror(-rc));
	}
	return 0;
}

/* One rte_flow rule: IPv4 to our address, UDP to base_port + q -> queue q. */
static struct rte_flow *flow_rule(struct pm_dpdk_port *p, uint16_t q, struct rte_flow_error *fe)
{
	struct rte_flow_attr attr = { .ingress = 1 };
	struct rte_flow_item_ipv4 ip = { .hdr.dst_addr = p->local.ip_be };
	struct rte_flow_item_ipv4 ipm = { .hdr.dst_addr = UINT32_MAX };
	struct rte_flow_item_udp udp = { .hdr.dst_port = htons((uint16_t)(p->local.port_lo + q)) };
	struct rte_flow_item_udp udpm = { .hdr.dst_port = UINT16_MAX };
	struct rte_flow_item pattern[] = {
		{ .type = RTE_FLOW_ITEM_TYPE_ETH },
		{ .type = RTE_FLOW_ITEM_TYPE_IPV4, .spec = &ip, .mask = &ipm },
		{ .type = RTE_FLOW_ITEM_TYPE_UDP, .spec = &udp, .mask = &udpm },
		{ .type = RTE_FLOW_ITEM_TYPE_END },
	};
	struct rte_flow_action_queue queue = { .index = q };
	struct rte_flow_action actions[] = {
		{ .type = RTE_FLOW_ACTION_TYPE_QUEUE, .conf = &queue },
		{ .type = RTE_FLOW_ACTION_TYPE_END },
	};
	if (rte_flow_validate(p->id, &attr, pattern, actions, fe) != 0)
		return NULL;
	return rte_flow_create(p->id, &attr, pattern, actions, fe);
}

/* Steering in the order of preference; the mode in effect goes in p->steering. */
static int port_steering(struct pm_daemon *d, struct pm_dpdk_port *p, char *err, size_t errlen)
{
	uint32_t want = d->cfg.dpdk_steering;
	if (p->nq == 1) {
		p->steering = PM_STEER_SINGLE;
		if (want == PM_STEER_FLOW || want == PM_STEER_RSS)
			fprintf(stderr, "pomaid: port %s has one queue: steering is single (the"
					" worker on it forwards frames to their owners)\n", p->name);
		return 0;
	}
	if (want == PM_STEER_AUTO || want == PM_STEER_FLOW) {
		struct rte_flow_error fe = { 0 };
		for (uint16_t q = 0; q < p->nq; q++) {
			struct rte_flow *f = flow_rule(p, q, &fe);
			if (!f)
				break;
			p->flows[p->nflows++] = f;
		}
		if (p->nflows == p->nq) {
			p->steering = PM_STEER_FLOW;
			return 0;
		}
		rte_flow_flush(p->id, NULL);
		p->nflows = 0;
		if (want == PM_STEER_FLOW)
			return pm_errf(err, errlen, "port %s refuses rte_flow rules: %s (use dpdk_steering ="
				    " rss or auto)", p->name, fe.message ? fe.message : "unknown");
	}
	p->steering = PM_STEER_RSS;
	return 0;
}

static int port_frag(struct pm_daemon *d, struct pm_dpdk_port *p, char *err, size_t errlen)
{
	uint32_t flows = d->cfg.dpdk_frag_flows;
	uint32_t buckets = 1;
	while (buckets * FRAG_BUCKET_ENTRIES < flows)
		buckets <<= 1;
	uint64_t cycles = d->dpdk->tsc_hz / 1000u * d->cfg.dpdk_frag_ms;
	rte_spinlock_init(&p->frag_lock);
	p->frag = rte_ip_frag_table_create(buckets, FRAG_BUCKET_ENTRIES, flows, cycles,
					   rte_eth_dev_socket_id(p->id));
	if (!p->frag)
		return pm_errf(err, errlen, "port %s: reassembly table of %u datagrams: %s", p->name,
			    flows, rte_strerror(rte_errno));
	return 0;
}

/* Configure, start and address one port. */
static int port_open(struct pm_daemon *d, uint16_t pid, uint32_t idx, char *err, size_t errlen)
{
	struct pm_dpdk_port *p = &d->dpdk->ports[idx];
	struct rte_eth_dev_info di;
	struct rte_eth_conf conf;
	p->id = pid;
	rte_eth_dev_get_name_by_port(pid, p->name);
	int rc = rte_eth_dev_info_get(pid, &di);
	if (rc != 0)
		return pm_errf(err, errlen, "port %u: %s", pid, rte_strerror(-rc));
	if (port_local(d, idx, &p->local, err, errlen) != 0)
		return -1;
	p->nq = (uint16_t)PM_MIN(PM_MIN(d->nshards, di.max_rx_queues), di.max_tx_queues);
	/* memif: the client decides how many rings there are; it opens one pair;
	 * and its frames are copied between two processes' memory, which cannot
	 * corrupt them: the UDP checksum is left out (netfe.h, docs/protocol.md) */
	bool memif = !strcmp(di.driver_name, "net_memif");
	if (d->cfg.dpdk_steering == PM_STEER_SINGLE || memif)
		p->nq = 1;
	p->local.udp_csum_none = memif;
	p->mtu = PM_MIN(d->cfg.dpdk_mtu, di.max_mtu);
	if (p->mtu < d->cfg.dpdk_mtu)
		fprintf(stderr, "pomaid: port %s: MTU %u (its maximum; dpdk_mtu asks %u)\n", p->name,
			p->mtu, d->cfg.dpdk_mtu);
	p->rx_intr = true;
	port_conf(d, &di, p->nq, true, &conf);
	if (rte_eth_dev_configure(pid, p->nq, p->nq, &conf) != 0) { /* without RX interrupts */
		p->rx_intr = false;
		port_conf(d, &di, p->nq, false, &conf);
		if ((rc = rte_eth_dev_configure(pid, p->nq, p->nq, &conf)) != 0)
			return pm_errf(err, errlen, "port %s: configure %u queues, MTU %u: %s", p->name,
				    p->nq, p->mtu, rte_strerror(-rc));
	}
	if (port_queues(d, p, &di, &conf, err, errlen) != 0)
		return -1;
	if ((rc = rte_eth_dev_start(pid)) != 0)
		return pm_errf(err, errlen, "port %s: start: %s", p->name, rte_strerror(-rc));
	struct rte_ether_addr mac;
	rte_eth_macaddr_get(pid, &mac);
	memcpy(p->local.mac, mac.addr_bytes, 6);
	pm_arp_init(&p->arp);
	if (port_steering(d, p, err, errlen) != 0 || port_frag(d, p, err, errlen) != 0)
		return -1;
	for (uint16_t q = 0; p->rx_intr && q < p->nq; q++)
		d->dpdk->wk[q].intr_fd[idx] = rte_eth_dev_rx_intr_ctl_q_get_fd(pid, q);
	return 0;
}

int pm_dpdk_open(struct pm_daemon *d, char *err, size_t errlen)
{
	struct pm_dpdk *dp = d->dpdk;
	uint32_t have = rte_eth_dev_count_avail(), want = list_count(d->cfg.dpdk_addrs);
	if (have == 0)
		return pm_errf(err, errlen, "DPDK found no port: name one in dpdk_eal_args (-a PCI"
			    " address of a NIC bound to vfio-pci, or --vdev)");
	if (have != want)
		return pm_errf(err, errlen, "DPDK found %u port(s) but dpdk_addrs gives %u address(es):"
			    " one per port, in port order", have, want);
	/* a pool must fill every RX ring, sit in every TX ring, and hold the
	 * fragments waiting in reassembly, with room for the bursts in flight */
	uint64_t need = (uint64_t)have * (d->cfg.dpdk_rx_desc + d->cfg.dpdk_tx_desc) +
			(uint64_t)d->cfg.dpdk_frag_flows * (PM_DPDK_REASM_FRAGS_MAX - 1) +
			PM_DPDK_MBUF_SLACK;
	if (d->cfg.dpdk_mbufs < need)
		return pm_errf(err, errlen, "dpdk_mbufs = %u is too few for %u port(s) of %u RX + %u TX"
			    " descriptors and %u datagrams in reassembly: want at least %llu",
			    d->cfg.dpdk_mbufs, have, d->cfg.dpdk_rx_desc, d->cfg.dpdk_tx_desc,
			    d->cfg.dpdk_frag_flows, (unsigned long long)need);
	dp->wk = calloc(d->nshards, sizeof(*dp->wk));
	if (!dp->wk || make_pools(d, err, errlen) != 0)
		return -1;
	uint16_t pid;
	RTE_ETH_FOREACH_DEV(pid) {
		if (port_open(d, pid, dp->nports, err, errlen) != 0)
			return -1;
		dp->nports++;
	}
	for (uint32_t i = 0; i < d->nshards; i++) {
		dp->wk[i].q = (uint16_t)i; /* queue i of every port that has one */
		d->workers[i].dp = &dp->wk[i];
		d->workers[i].tx_ports = 0;
		for (uint32_t p = 0; p < dp->nports; p++) {
			d->workers[i].tx_ports |= (uint32_t)(i < dp->ports[p].nq) << p;
			d->workers[i].tx_pack_bytes[p] = dp->ports[p].mtu - PM_NET_IPV4_BYTES -
							 PM_NET_UDP_BYTES;
		}
	}
	dp->started = true;
	return 0;
}

void pm_dpdk_close(struct pm_daemon *d)
{
	struct pm_dpdk *dp = d->dpdk;
	if (!dp)
		return;
	for (uint32_t i = 0; i < dp->nports; i++) {
		struct pm_dpdk_port *p = &dp->ports[i];
		if (p->nflows)
			rte_flow_flush(p->id, NULL);
		rte_eth_dev_stop(p->id);
		rte_eth_dev_close(p->id);
		if (p->frag)
			rte_ip_frag_table_destroy(p->frag);
	}
	for (uint32_t i = 0; dp->wk && i < d->nshards; i++) {
		rte_mempool_free(dp->wk[i].pool);
		rte_mempool_free(dp->wk[i].indirect);
		rte_free(dp->wk[i].big);
		if (d->workers) { /* close_daemon may have freed them already */
			d->workers[i].dp = NULL;
			d->workers[i].tx_ports = 0;
		}
	}
	free(dp->wk);
	free(dp);
	d->dpdk = NULL;
	rte_eal_cleanup();
}

/* ---------------------------------------------------------------- workers */

int pm_dpdk_worker_enter(struct pm_worker *w)
{
	(void)w;
	/* an EAL lcore id for this thread (per-lcore mempool caches); the thread
	 * is already pinned, so the EAL records its CPU and NUMA node */
	if (rte_thread_register() != 0) {
		fprintf(stderr, "pomaid: worker %u: not an EAL lcore (%s): mbuf caches off\n", w->id,
			rte_strerror(rte_errno));
	}
	return 0;
}

void pm_dpdk_worker_leave(struct pm_worker *w)
{
	(void)w;
	rte_thread_unregister();
}

static const char *const steering_text[] = { "auto", "flow", "rss", "single" };

uint32_t pm_dpdk_local_addrs(const struct pm_daemon *d, uint32_t *out, uint32_t max)
{
	uint32_t n = 0;
	for (uint32_t i = 0; d->dpdk && i < d->dpdk->nports && n < max; i++)
		out[n++] = d->dpdk->ports[i].local.ip_be;
	return n;
}

const char *pm_dpdk_describe(const struct pm_daemon *d, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (uint32_t i = 0; d->dpdk && i < d->dpdk->nports && n < len; i++) {
		const struct pm_dpdk_port *p = &d->dpdk->ports[i];
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &p->local.ip_be, ip, sizeof(ip));
		n += (size_t)snprintf(buf + n, len - n, "%s%s %s %02x:%02x:%02x:%02x:%02x:%02x"
				      " queues %u steering %s", i ? ", " : "", p->name, ip,
				      p->local.mac[0], p->local.mac[1], p->local.mac[2],
				      p->local.mac[3], p->local.mac[4], p->local.mac[5], p->nq,
				      steering_text[p->steering]);
	}
	return buf;
}

/* ---------------------------------------------------------------- INFO */

#define INFO_ADD(...)                                                                  \
	do {                                                                           \
		int r_ = snprintf(out + n, cap - n, __VA_ARGS__);                      \
		if (r_ < 0 || (uint32_t)r_ >= cap - n)                                 \
			return n;                                                      \
		n += (uint32_t)r_;                                                     \
	} while (0)

/* This worker's counters on port i (per queue, and summed by INFO's total). */
static uint32_t info_counters(const struct pm_worker *w, uint32_t i, char *out, uint32_t cap)
{
	const struct pm_dpdk_counters *c = &w->dp->c[i];
	uint32_t n = 0;
	INFO_ADD("dpdk_p%u_q%u_rx_pkts:%llu\r\n", i, w->dp->q, (unsigned long long)c->rx_pkts);
	INFO_ADD("dpdk_p%u_rx_pkts:%llu\r\ndpdk_p%u_tx_pkts:%llu\r\ndpdk_p%u_tx_dropped:%llu\r\n", i,
		 (unsigned long long)c->rx_pkts, i, (unsigned long long)c->tx_pkts, i,
		 (unsigned long long)c->tx_dropped);
	INFO_ADD("dpdk_p%u_arp_answered:%llu\r\ndpdk_p%u_arp_learned:%llu\r\n"
		 "dpdk_p%u_arp_asked:%llu\r\ndpdk_p%u_icmp_answered:%llu\r\n",
		 i, (unsigned long long)c->arp_answered, i, (unsigned long long)c->arp_learned, i,
		 (unsigned long long)c->arp_asked, i, (unsigned long long)c->icmp_answered);
	INFO_ADD("dpdk_p%u_frags_in:%llu\r\ndpdk_p%u_reassembled:%llu\r\ndpdk_p%u_frags_out:%llu\r\n",
		 i, (unsigned long long)c->frags_in, i, (unsigned long long)c->reassembled, i,
		 (unsigned long long)c->frags_out);
	for (uint32_t r = 1; r < PM_NET_DROP_REASONS; r++)
		INFO_ADD("dpdk_p%u_drop_%s:%llu\r\n", i, pm_net_drop_name((enum pm_net_drop)r),
			 (unsigned long long)c->drops[r]);
	return n;
}

/* The device's own counters (rte_eth_stats), reported once, by worker 0. */
static uint32_t info_device(const struct pm_dpdk_port *p, uint32_t i, char *out, uint32_t cap)
{
	struct rte_eth_stats st;
	uint32_t n = 0;
	if (rte_eth_stats_get(p->id, &st) != 0)
		return 0;
	INFO_ADD("dpdk_p%u_name:%s\r\ndpdk_p%u_steering:%s\r\ndpdk_p%u_queues:%u\r\n", i, p->name, i,
		 steering_text[p->steering], i, p->nq);
	INFO_ADD("dpdk_p%u_dev_ipackets:%llu\r\ndpdk_p%u_dev_opackets:%llu\r\n"
		 "dpdk_p%u_dev_imissed:%llu\r\ndpdk_p%u_dev_ierrors:%llu\r\n"
		 "dpdk_p%u_dev_oerrors:%llu\r\ndpdk_p%u_dev_rx_nombuf:%llu\r\n",
		 i, (unsigned long long)st.ipackets, i, (unsigned long long)st.opackets, i,
		 (unsigned long long)st.imissed, i, (unsigned long long)st.ierrors, i,
		 (unsigned long long)st.oerrors, i, (unsigned long long)st.rx_nombuf);
	for (uint32_t q = 0; q < p->nq && q < RTE_ETHDEV_QUEUE_STAT_CNTRS; q++)
		INFO_ADD("dpdk_p%u_dev_q%u_ipackets:%llu\r\ndpdk_p%u_dev_q%u_opackets:%llu\r\n", i, q,
			 (unsigned long long)st.q_ipackets[q], i, q,
			 (unsigned long long)st.q_opackets[q]);
	return n;
}

uint32_t pm_dpdk_info(const struct pm_worker *w, char *out, uint32_t cap)
{
	const struct pm_dpdk *dp = w->dp->dp;
	uint32_t n = 0;
	INFO_ADD("# DPDK\r\n");
	for (uint32_t i = 0; i < dp->nports; i++) {
		if (w->dp->q != PM_DPDK_NO_QUEUE && w->dp->q < dp->ports[i].nq)
			n += info_counters(w, i, out + n, cap - n);
		if (w->id == 0)
			n += info_device(&dp->ports[i], i, out + n, cap - n);
	}
	return n;
}

void pm_dpdk_counters(const struct pm_worker *w, struct pm_stats_shard *s)
{
	if (!w->dp)
		return;
	for (uint32_t i = 0; i < w->dp->dp->nports; i++) {
		const struct pm_dpdk_counters *c = &w->dp->c[i];
		s->nic_rx_packets += c->rx_pkts;
		s->nic_tx_packets += c->tx_pkts;
		s->nic_tx_dropped += c->tx_dropped;
		for (unsigned r = 0; r < PM_NET_DROP_REASONS; r++)
			s->nic_rx_dropped += c->drops[r];
	}
}
