/* SPDX-License-Identifier: MIT
 *
 * dpdk_io.c — the DPDK backend's data path (see dpdk.h): per turn, each queue
 * this worker owns is polled; netfe.c classifies every packet; ARP and ping
 * are answered in the packet's own mbuf; UDP payloads go to the worker's RX
 * burst in place (single-segment mbufs) or copied into its RX slots
 * (reassembled or scattered datagrams); everything else is dropped and counted
 * by reason. Replies are built in recycled request mbufs, fragmented when
 * larger than the MTU, held while their next hop's MAC is being asked for, and
 * sent in bursts.
 */
#define _GNU_SOURCE
#include <string.h>

#include <rte_cycles.h>
#include <rte_ip.h>

#include "common.h"
#include "backend.h"
#include "dpdk_impl.h"
#include "worker.h"

/* Prefetch depth when freeing the reassembly death row. */
#define DEATH_ROW_PREFETCH 3u
_Static_assert(PM_DPDK_RX_BURST == PM_RX_BURST, "the held RX burst is the worker's");
/* RX slot bytes: one whole IPv4 datagram (header included) fits. */
_Static_assert(PM_RX_SLOT_BYTES >= 65535u, "an RX slot holds any IPv4 datagram");

static inline uint64_t now_ms(const struct pm_worker *w)
{
	return w->now_ms;
}

/* ---------------------------------------------------------------- TX */

static void tx_send(struct pm_worker *w, uint32_t port)
{
	struct pm_dpdk_worker *k = w->dp;
	uint32_t n = k->ntx[port], sent = 0;
	for (uint32_t tries = 0; sent < n && tries < PM_DPDK_TX_TRIES_MAX; tries++)
		sent += rte_eth_tx_burst(k->dp->ports[port].id, k->q, k->tx[port] + sent,
					 (uint16_t)(n - sent));
	k->c[port].tx_pkts += sent;
	if (sent < n) {
		k->c[port].tx_dropped += n - sent;
		rte_pktmbuf_free_bulk(k->tx[port] + sent, n - sent);
	}
	k->ntx[port] = 0;
}

static void tx_enqueue(struct pm_worker *w, uint32_t port, struct rte_mbuf *m)
{
	struct pm_dpdk_worker *k = w->dp;
	k->tx[port][k->ntx[port]++] = m;
	if (k->ntx[port] == PM_DPDK_TX_BURST)
		tx_send(w, port);
}

static void tx_send_all(struct pm_worker *w)
{
	for (uint32_t p = 0; p < w->dp->dp->nports; p++)
		if (w->dp->ntx[p])
			tx_send(w, p);
	w->dp->last_tx_tsc = rte_rdtsc();
}

/* An mbuf for a reply: a recycled request mbuf when there is one. */
static struct rte_mbuf *mbuf_get(struct pm_dpdk_worker *k)
{
	if (k->nrecycle) {
		struct rte_mbuf *m = k->recycle[--k->nrecycle];
		rte_pktmbuf_reset(m);
		return m;
	}
	return rte_pktmbuf_alloc(k->pool);
}

/* Ask for hop's MAC (at most once per PM_ARP_RETRY_MS). */
static void arp_ask(struct pm_worker *w, uint32_t port, uint32_t hop_be)
{
	struct pm_dpdk_port *p = &w->dp->dp->ports[port];
	if (!pm_arp_should_ask(&p->arp, hop_be, now_ms(w)))
		return;
	struct rte_mbuf *m = mbuf_get(w->dp);
	if (!m)
		return;
	uint8_t *d = (uint8_t *)rte_pktmbuf_append(m, PM_NET_FRAME_BYTES_MIN + PM_NET_VLAN_BYTES);
	uint32_t len = pm_net_arp_request(&p->local, hop_be, d);
	rte_pktmbuf_trim(m, (uint16_t)(PM_NET_FRAME_BYTES_MIN + PM_NET_VLAN_BYTES - len));
	w->dp->c[port].arp_asked++;
	tx_enqueue(w, port, m);
}

/* Send m (its L2 header written, destination MAC unknown yet) to hop: now if
 * the MAC is known, else held until the ARP answer comes. */
static void tx_route(struct pm_worker *w, uint32_t port, uint32_t hop_be, struct rte_mbuf *m)
{
	struct pm_dpdk_worker *k = w->dp;
	struct pm_dpdk_port *p = &k->dp->ports[port];
	uint8_t *eth = rte_pktmbuf_mtod(m, uint8_t *);
	if (pm_arp_lookup(&p->arp, hop_be, now_ms(w), eth)) {
		tx_enqueue(w, port, m);
		return;
	}
	arp_ask(w, port, hop_be);
	if (k->nhold == PM_DPDK_HOLD_MAX) {
		k->c[port].drops[PM_NET_DROP_NO_ROUTE]++;
		rte_pktmbuf_free(m);
		return;
	}
	k->hold[k->nhold++] = (struct pm_dpdk_held){ m, port, hop_be, now_ms(w) + PM_DPDK_HOLD_MS };
}

/* Held packets whose MAC arrived go out; expired ones are dropped. */
static void hold_turn(struct pm_worker *w)
{
	struct pm_dpdk_worker *k = w->dp;
	uint32_t keep = 0;
	for (uint32_t i = 0; i < k->nhold; i++) {
		struct pm_dpdk_held *h = &k->hold[i];
		struct pm_dpdk_port *p = &k->dp->ports[h->port];
		uint8_t *eth = rte_pktmbuf_mtod(h->m, uint8_t *);
		if (pm_arp_lookup(&p->arp, h->hop_be, now_ms(w), eth)) {
			tx_enqueue(w, h->port, h->m);
		} else if (now_ms(w) > h->until_ms) {
			k->c[h->port].drops[PM_NET_DROP_NO_ROUTE]++;
			rte_pktmbuf_free(h->m);
		} else {
			arp_ask(w, h->port, h->hop_be);
			k->hold[keep++] = *h;
		}
	}
	k->nhold = keep;
}

/* An mbuf chain holding len bytes of src, with room for L2 in front. */
static struct rte_mbuf *chain_of(struct pm_dpdk_worker *k, const uint8_t *src, uint32_t len)
{
	struct rte_mbuf *head = NULL, *tail = NULL;
	for (uint32_t off = 0; off < len;) {
		struct rte_mbuf *m = mbuf_get(k);
		if (!m) {
			rte_pktmbuf_free(head);
			return NULL;
		}
		uint32_t n = PM_MIN(len - off, (uint32_t)rte_pktmbuf_tailroom(m));
		memcpy(rte_pktmbuf_append(m, (uint16_t)n), src + off, n);
		off += n;
		if (!head) {
			head = tail = m;
		} else {
			tail->next = m;
			tail = m;
			head->nb_segs++;
			head->pkt_len += n;
		}
	}
	return head;
}

/* Rewrite an IPv4 header's checksum (words summed in memory order, stored
 * as they are: netfe.h's convention). */
static void ip_sum(uint8_t *ip)
{
	uint32_t ihl = (ip[0] & 0xfu) * 4u;
	ip[10] = ip[11] = 0;
	uint16_t s = (uint16_t)~pm_net_fold(pm_net_sum(ip, ihl, 0));
	memcpy(ip + 10, &s, sizeof(s));
}

/* Fragment an IPv4 datagram chain to the port's MTU and route every piece. */
static void tx_fragments(struct pm_worker *w, uint32_t port, uint32_t hop_be, struct rte_mbuf *dg)
{
	struct pm_dpdk_worker *k = w->dp;
	struct pm_dpdk_port *p = &k->dp->ports[port];
	struct rte_mbuf *frags[PM_DPDK_FRAGS_MAX];
	uint16_t mtu = (uint16_t)(PM_NET_IPV4_BYTES + ((p->mtu - PM_NET_IPV4_BYTES) & ~7u));
	int32_t n = rte_ipv4_fragment_packet(dg, frags, PM_DPDK_FRAGS_MAX, mtu, k->pool, k->indirect);
	rte_pktmbuf_free(dg);
	if (n <= 0) {
		k->c[port].tx_dropped++;
		return;
	}
	uint32_t l2 = pm_net_l2_bytes(&p->local);
	static const uint8_t unknown[6];
	for (int32_t i = 0; i < n; i++) {
		uint8_t *eth = (uint8_t *)rte_pktmbuf_prepend(frags[i], (uint16_t)l2);
		if (!eth) {
			k->c[port].tx_dropped++;
			rte_pktmbuf_free(frags[i]);
			continue;
		}
		pm_net_eth_write(&p->local, unknown, RTE_ETHER_TYPE_IPV4, eth);
		ip_sum(eth + l2); /* the library leaves it to us (or to an offload) */
		k->c[port].frags_out++;
		tx_route(w, port, hop_be, frags[i]);
	}
}

/* One reply datagram from the pm_tx queue into mbufs. */
static void tx_datagram(struct pm_worker *w, uint32_t i)
{
	struct pm_dpdk_worker *k = w->dp;
	struct pm_tx *t = &w->tx;
	uint32_t port = t->port[i], len = t->len[i];
	struct pm_dpdk_port *p = &k->dp->ports[port];
	uint32_t dst = t->to[i].sin_addr.s_addr, hop = pm_net_next_hop(&p->local, dst);
	uint16_t sport = (uint16_t)(w->d->cfg.base_port + w->id), dport = ntohs(t->to[i].sin_port);
	static const uint8_t unknown[6];
	if (hop == 0) {
		k->c[port].drops[PM_NET_DROP_NO_ROUTE]++;
		return;
	}
	uint32_t l2 = pm_net_l2_bytes(&p->local), ip_len = PM_NET_IPV4_BYTES + PM_NET_UDP_BYTES + len;
	if (l2 + ip_len <= PM_DPDK_MBUF_DATA_BYTES - RTE_PKTMBUF_HEADROOM && ip_len <= p->mtu) {
		struct rte_mbuf *m = mbuf_get(k);
		if (!m) {
			k->c[port].tx_dropped++;
			return;
		}
		uint8_t *eth = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(l2 + ip_len));
		memcpy(eth + l2 + PM_NET_IPV4_BYTES + PM_NET_UDP_BYTES, t->buf + t->off[i], len);
		pm_net_eth_write(&p->local, unknown, RTE_ETHER_TYPE_IPV4, eth);
		pm_net_ipv4_udp_write(&p->local, dst, sport, dport, k->ip_id++, eth + l2, len);
		tx_route(w, port, hop, m);
		return;
	}
	/* larger than one frame: the whole datagram (checksummed) in the big
	 * buffer, then a chain, then fragments */
	memcpy(k->big + PM_NET_IPV4_BYTES + PM_NET_UDP_BYTES, t->buf + t->off[i], len);
	pm_net_ipv4_udp_write(&p->local, dst, sport, dport, k->ip_id++, k->big, len);
	struct rte_mbuf *dg = chain_of(k, k->big, ip_len);
	if (!dg) {
		k->c[port].tx_dropped++;
		return;
	}
	dg->l3_len = PM_NET_IPV4_BYTES;
	tx_fragments(w, port, hop, dg);
}

static void dpdk_flush(struct pm_worker *w, bool now)
{
	struct pm_dpdk_worker *k = w->dp;
	for (uint32_t i = 0; i < w->tx.n; i++)
		tx_datagram(w, i);
	w->stats.tx_datagrams += w->tx.n;
	w->tx.n = 0;
	w->tx.bytes = 0;
	if (k->nhold)
		hold_turn(w);
	if (now || rte_rdtsc() - k->last_tx_tsc >= k->dp->drain_tsc)
		tx_send_all(w);
}

/* ---------------------------------------------------------------- RX */

static uint32_t offload_flags(const struct rte_mbuf *m)
{
	uint64_t ip = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	return (ip == RTE_MBUF_F_RX_IP_CKSUM_GOOD ? PM_NET_OFL_IP_GOOD : 0) |
	       (ip == RTE_MBUF_F_RX_IP_CKSUM_BAD ? PM_NET_OFL_IP_BAD : 0) |
	       (l4 == RTE_MBUF_F_RX_L4_CKSUM_GOOD ? PM_NET_OFL_L4_GOOD : 0) |
	       (l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD ? PM_NET_OFL_L4_BAD : 0);
}

/* A datagram for the shard workers: into the RX burst, if its source is in
 * allow_networks (else dropped before it is decoded, and counted). */
static void rx_deliver(struct pm_worker *w, uint32_t port, const uint8_t *payload, uint32_t len,
		       const struct pm_net_pkt *pkt)
{
	if (!pm_allow_match(&w->d->allow, pkt->src_ip_be)) {
		w->stats.dropped_not_allowed++;
		return;
	}
	uint32_t i = w->rx_n++;
	w->rx_ptr[i] = payload;
	w->rx_len[i] = len;
	w->rx_from[i] = (struct pm_dest){
		.addr = { .sin_family = AF_INET, .sin_port = htons(pkt->src_port),
			  .sin_addr.s_addr = pkt->src_ip_be },
		.worker = w->id, .conn = PM_CONN_NONE, .port = port,
		.dport = pkt->dst_port }; /* an AUTH trailer names it (users.h) */
	w->stats.rx_datagrams++;
}

/* Reassembly: the datagram, when this fragment completes it, is copied whole
 * into the next RX slot and parsed again. */
static void rx_fragment(struct pm_worker *w, uint32_t port, struct rte_mbuf *m,
			const struct pm_net_pkt *pkt)
{
	struct pm_dpdk_worker *k = w->dp;
	struct pm_dpdk_port *p = &k->dp->ports[port];
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, pkt->l3_off);
	m->l2_len = pkt->l3_off;
	m->l3_len = (uint16_t)((ip->version_ihl & 0xf) * 4u);
	k->c[port].frags_in++;
	rte_spinlock_lock(&p->frag_lock);
	struct rte_mbuf *dg = rte_ipv4_frag_reassemble_packet(p->frag, &k->dr, m, rte_rdtsc(), ip);
	rte_spinlock_unlock(&p->frag_lock);
	k->c[port].drops[PM_NET_DROP_FRAG] += k->dr.cnt; /* timed out, overflowed, invalid */
	rte_ip_frag_free_death_row(&k->dr, DEATH_ROW_PREFETCH);
	if (!dg)
		return; /* kept in the table (or counted above) */
	k->c[port].reassembled++;
	uint8_t *slot = w->rx_buf + (size_t)w->rx_n * PM_RX_SLOT_BYTES;
	uint32_t len = dg->pkt_len - dg->l2_len;
	struct pm_net_pkt whole;
	const uint8_t *d = len <= PM_RX_SLOT_BYTES ? rte_pktmbuf_read(dg, dg->l2_len, len, slot) : NULL;
	if (d && d != slot)
		memcpy(slot, d, len);
	if (d && pm_net_parse_ipv4(&p->local, slot, len, &whole) == PM_NET_UDP)
		rx_deliver(w, port, slot + whole.payload_off, whole.payload_len, &whole);
	else
		k->c[port].drops[d ? whole.drop : PM_NET_DROP_FRAG]++;
	rte_pktmbuf_free(dg);
}

/* Fragments of datagrams that timed out go back to their pools now, not
 * only when a later fragment happens to meet their table entry. */
static void frag_expire(struct pm_worker *w)
{
	struct pm_dpdk_worker *k = w->dp;
	uint64_t tsc = rte_rdtsc();
	k->frag_expired_ms = w->now_ms;
	for (uint32_t port = 0; port < k->dp->nports; port++) {
		struct pm_dpdk_port *p = &k->dp->ports[port];
		if (k->q >= p->nq || !rte_spinlock_trylock(&p->frag_lock))
			continue; /* another worker is at it */
		rte_ip_frag_table_del_expired_entries(p->frag, &k->dr, tsc);
		rte_spinlock_unlock(&p->frag_lock);
		k->c[port].drops[PM_NET_DROP_FRAG] += k->dr.cnt;
		rte_ip_frag_free_death_row(&k->dr, DEATH_ROW_PREFETCH);
	}
}

/* Keep m until the burst is served (its payload is referenced in place). */
static void rx_hold(struct pm_dpdk_worker *k, struct rte_mbuf *m)
{
	k->held[k->nheld++] = m;
}

static void rx_packet(struct pm_worker *w, uint32_t port, struct rte_mbuf *m)
{
	struct pm_dpdk_worker *k = w->dp;
	struct pm_dpdk_port *p = &k->dp->ports[port];
	struct pm_net_pkt pkt;
	uint8_t *d = rte_pktmbuf_mtod(m, uint8_t *);
	uint32_t len = m->pkt_len;
	k->c[port].rx_pkts++;
	if (m->nb_segs > 1) { /* scattered (jumbo): linearise into the next RX slot */
		uint8_t *slot = w->rx_buf + (size_t)w->rx_n * PM_RX_SLOT_BYTES;
		d = len <= PM_RX_SLOT_BYTES ? (uint8_t *)rte_pktmbuf_read(m, 0, len, slot) : NULL;
		if (!d) {
			k->c[port].drops[PM_NET_DROP_SHORT]++;
			rte_pktmbuf_free(m);
			return;
		}
	}
	switch (pm_net_parse(&p->local, d, len, offload_flags(m), &pkt)) {
	case PM_NET_UDP:
		rx_deliver(w, port, d + pkt.payload_off, pkt.payload_len, &pkt);
		rx_hold(k, m);
		return;
	case PM_NET_FRAGMENT:
		/* a scattered (jumbo) fragment is fine if its headers are in the first segment */
		if (m->nb_segs == 1 || rte_pktmbuf_data_len(m) >= pkt.l3_off + PM_NET_IPV4_BYTES_MAX) {
			rx_fragment(w, port, m, &pkt);
			return;
		}
		k->c[port].drops[PM_NET_DROP_FRAG]++;
		break;
	case PM_NET_ARP_REQUEST:
	case PM_NET_ARP_REPLY:
		pm_arp_learn(&p->arp, pkt.src_ip_be, pkt.src_mac, now_ms(w));
		k->c[port].arp_learned++;
		if (pkt.kind == PM_NET_ARP_REQUEST && m->nb_segs == 1) {
			uint32_t n = pm_net_arp_answer(&p->local, d, len);
			rte_pktmbuf_trim(m, (uint16_t)(len - PM_MIN(n, len)));
			k->c[port].arp_answered++;
			tx_enqueue(w, port, m);
			return;
		}
		break;
	case PM_NET_ICMP_ECHO:
		if (m->nb_segs == 1) {
			pm_net_icmp_answer(&p->local, d, len, &pkt);
			k->c[port].icmp_answered++;
			tx_enqueue(w, port, m);
			return;
		}
		break;
	case PM_NET_DROP:
		k->c[port].drops[pkt.drop]++;
		break;
	}
	rte_pktmbuf_free(m);
}

static uint32_t dpdk_rx(struct pm_worker *w, uint32_t *work)
{
	struct pm_dpdk_worker *k = w->dp;
	struct rte_mbuf *pkts[PM_RX_BURST];
	uint32_t nports = k->dp->nports;
	w->rx_n = 0;
	*work = 0;
	/* the first port polled rotates, so a saturated port cannot starve the others */
	k->next_port = (k->next_port + 1) % nports;
	for (uint32_t i = 0; i < nports; i++) {
		uint32_t port = (k->next_port + i) % nports;
		const struct pm_dpdk_port *p = &k->dp->ports[port];
		uint32_t room = PM_RX_BURST - PM_MAX(w->rx_n, k->nheld);
		if (k->q >= p->nq || room == 0)
			continue;
		uint16_t n = rte_eth_rx_burst(p->id, k->q, pkts, (uint16_t)room);
		for (uint16_t j = 0; j < n; j++)
			rx_packet(w, port, pkts[j]);
		*work += n;
	}
	*work -= PM_MIN(*work, w->rx_n);
	if (w->now_ms - k->frag_expired_ms >= PM_DPDK_FRAG_EXPIRE_EVERY_MS)
		frag_expire(w);
	return w->rx_n;
}

static void dpdk_rx_done(struct pm_worker *w)
{
	struct pm_dpdk_worker *k = w->dp;
	for (uint32_t i = 0; i < k->nheld; i++) {
		struct rte_mbuf *m = k->held[i];
		if (k->nrecycle < PM_DPDK_TX_BURST && m->nb_segs == 1 && rte_mbuf_refcnt_read(m) == 1 &&
		    m->pool == k->pool)
			k->recycle[k->nrecycle++] = m;
		else
			rte_pktmbuf_free(m);
	}
	k->nheld = 0;
}

/* ---------------------------------------------------------------- sleeping */

static uint32_t dpdk_arm(struct pm_worker *w, int *fds, uint32_t cap, uint32_t *sleep_us)
{
	struct pm_dpdk_worker *k = w->dp;
	uint32_t n = 0;
	bool all = true;
	tx_send_all(w);
	for (uint32_t port = 0; port < k->dp->nports; port++) {
		const struct pm_dpdk_port *p = &k->dp->ports[port];
		if (k->q == PM_DPDK_NO_QUEUE || k->q >= p->nq)
			continue;
		if (k->intr_fd[port] < 0 || n == cap) {
			all = false;
			continue;
		}
		(void)rte_eth_dev_rx_intr_enable(p->id, k->q); /* -ENOTSUP: always on (tap) */
		fds[n++] = k->intr_fd[port];
	}
	if (!all || k->nhold)
		*sleep_us = PM_MIN(*sleep_us, PM_DPDK_NOINTR_SLEEP_US);
	return n;
}

static void dpdk_disarm(struct pm_worker *w)
{
	struct pm_dpdk_worker *k = w->dp;
	for (uint32_t port = 0; port < k->dp->nports; port++) {
		const struct pm_dpdk_port *p = &k->dp->ports[port];
		if (k->q != PM_DPDK_NO_QUEUE && k->q < p->nq && k->intr_fd[port] >= 0)
			(void)rte_eth_dev_rx_intr_disable(p->id, k->q);
	}
}

/* ---------------------------------------------------------------- the backend's operations */

const struct pm_backend_ops pm_dpdk_backend = {
	.name = "dpdk",
	.enter = pm_dpdk_worker_enter,
	.leave = pm_dpdk_worker_leave,
	.rx = dpdk_rx,
	.rx_done = dpdk_rx_done,
	.flush = dpdk_flush,
	.arm = dpdk_arm,
	.disarm = dpdk_disarm,
	.arm_misses_rx = true, /* an RX interrupt fires for packets after it is armed */
	.info = pm_dpdk_info,
	.counters = pm_dpdk_counters,
};
