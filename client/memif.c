/* SPDX-License-Identifier: MIT
 *
 * memif.c — libpomai_memif: libpomai's UDP path over a DPDK ethdev port
 * (memif in practice), plugged in through libpomai's transport hooks
 * (client_impl.h struct pmc_hooks). The frames are Ethernet / IPv4 / UDP,
 * built and parsed by the dataplane's pure front end (netfe.h), the same code
 * pomaid's DPDK backend runs.
 *
 * Set-up (pm_client_memif_open): the EAL once per process (or the
 * application's), the port claimed in a process-wide table under a mutex, one
 * mbuf pool per client, one RX and one TX queue. Connect starts the port,
 * waits for the link, and resolves the daemon's MAC by ARP; disconnect stops
 * the port; close frees the pool and releases the port.
 *
 * TX: one datagram (the frames libpomai gathered, several per datagram up to
 * the MTU less headers and a cookie: issue 20's packing, unless pack_bytes
 * says otherwise) becomes one frame written straight into one mbuf, or,
 * when its IPv4 datagram exceeds the MTU, is staged whole (the UDP checksum
 * covers all of it) and cut into fragments of (MTU - 20) & ~7 bytes. A burst
 * the ring refuses entirely stays queued (libpomai retries it when polling);
 * a burst it takes partly is retried PMC_MEMIF_TX_RETRIES times, then the
 * rest is dropped and counted, and the request's timer resends.
 *
 * RX: bursts are parsed with pm_net_parse; UDP from the daemon's shard ports
 * goes to libpomai's frame handler straight from the mbuf (a chained mbuf is
 * linearised first); ARP requests for us and ICMP echo are answered in place.
 *
 * Reassembly is our own bounded code, not DPDK's ip_frag: ip_frag caps a
 * datagram at RTE_LIBRTE_IP_FRAG_MAX_FRAG (8) fragments, 11,840 bytes at MTU
 * 1500, and a reply may be 64 KiB (45 fragments). PMC_MEMIF_REASM_SLOTS
 * datagrams are assembled at once, each in a buffer of the largest datagram
 * with a bitmap of the 8-byte blocks received (overlaps are harmless);
 * a new datagram takes a free slot, else one older than PMC_MEMIF_REASM_MS,
 * else the oldest, and the partial datagram it held is counted as dropped.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>

#include "client_impl.h"
#include "netfe.h"
#include "pomai_memif.h"

/* ---------------------------------------------------------------- limits */

/* RX: packets per burst, and bursts per receive call before libpomai looks at
 * its timers again. */
#define PMC_MEMIF_RX_BURST 32u
#define PMC_MEMIF_RX_BURSTS_MAX 4u
/* Descriptors asked for per queue (memif sizes its rings from its rsize
 * devarg; other devices use this). */
#define PMC_MEMIF_RING_DESCS 1024u
/* mbufs per client: a largest fragmented request, RX bursts in hand, ARP and
 * ICMP answers; memif (copy mode) holds no mbufs between bursts. */
#define PMC_MEMIF_MBUFS 1023u
#define PMC_MEMIF_MBUF_CACHE 64u
/* Ethernet + one 802.1Q tag: the most L2 bytes in front of an IPv4 header. */
#define PMC_MEMIF_L2_BYTES_MAX (PM_NET_ETH_BYTES + PM_NET_VLAN_BYTES)
/* Largest IPv4 datagram; the largest UDP payload follows from it. */
#define PMC_MEMIF_IP_BYTES_MAX 65535u
#define PMC_MEMIF_IP_PAYLOAD_BYTES_MAX (PMC_MEMIF_IP_BYTES_MAX - PM_NET_IPV4_BYTES)
/* Fragments one datagram may need at the smallest MTU. */
#define PMC_MEMIF_FRAGS_MAX 128u
/* TX: further tries of a burst the ring took only partly (a few microseconds
 * of spinning), before the rest is dropped. */
#define PMC_MEMIF_TX_RETRIES 64u
/* Reassembly: datagrams in progress, and how long one may take. */
#define PMC_MEMIF_REASM_SLOTS 8u
#define PMC_MEMIF_REASM_MS 1000u
#define PMC_MEMIF_REASM_BLOCK_BYTES 8u
#define PMC_MEMIF_REASM_BLOCKS (PMC_MEMIF_IP_BYTES_MAX / PMC_MEMIF_REASM_BLOCK_BYTES + 1u)
/* Link-up wait: sleep between checks (the link comes up on the EAL's
 * interrupt thread). */
#define PMC_MEMIF_LINK_POLL_US 1000u
#define PMC_MEMIF_MS_PER_S 1000u

/* IPv4 header fields the fragmenter and reassembler touch. */
#define PMC_IP_OFF_TOTLEN 2u
#define PMC_IP_OFF_ID 4u
#define PMC_IP_OFF_FRAG 6u
#define PMC_IP_OFF_PROTO 9u
#define PMC_IP_OFF_CSUM 10u
#define PMC_IP_OFF_SRC 12u
#define PMC_IP_OFF_DST 16u
#define PMC_IP_FLAG_MF 0x2000u
#define PMC_IP_FRAG_OFF_MASK 0x1fffu
#define PMC_ETHERTYPE_IPV4 0x0800u
/* The UDP header's checksum field. */
#define PMC_UDP_OFF_CSUM 6u

_Static_assert((PMC_MEMIF_IP_PAYLOAD_BYTES_MAX +
		((PM_CLIENT_MEMIF_MTU_MIN - PM_NET_IPV4_BYTES) & ~7u) - 1u) /
			       ((PM_CLIENT_MEMIF_MTU_MIN - PM_NET_IPV4_BYTES) & ~7u) <=
		       PMC_MEMIF_FRAGS_MAX,
	       "a largest datagram fits PMC_MEMIF_FRAGS_MAX fragments at the smallest MTU");
_Static_assert(PM_NET_IPV4_BYTES + PM_NET_UDP_BYTES + PM_FRAME_BYTES_MAX <= PMC_MEMIF_IP_BYTES_MAX,
	       "a largest frame fits one IPv4 datagram");
_Static_assert(RTE_PKTMBUF_HEADROOM + PMC_MEMIF_L2_BYTES_MAX + PM_CLIENT_MEMIF_MTU_MAX <=
		       UINT16_MAX,
	       "an MTU-sized frame fits one mbuf");
_Static_assert(PM_NET_DROP_REASONS <= PM_CLIENT_MEMIF_DROP_REASONS,
	       "every front-end drop reason has a counter");
_Static_assert(PMC_MEMIF_RX_BURST * PMC_MEMIF_RX_BURSTS_MAX + PMC_MEMIF_FRAGS_MAX +
			       PMC_MEMIF_MBUF_CACHE * 2u < PMC_MEMIF_MBUFS,
	       "the pool covers a burst of fragments, the RX bursts and a cache");

/* ---------------------------------------------------------------- state */

struct pmc_reasm {
	uint32_t src_be;        /* 0: free */
	uint16_t ip_id;
	uint8_t proto;
	uint32_t total;         /* IP payload bytes; 0 until the last fragment came */
	uint32_t blocks;        /* 8-byte blocks received */
	uint64_t started_ms;
	uint8_t *buf;           /* 20-byte header room + the IP payload */
	uint8_t *have;          /* bitmap of the blocks */
};

struct pmc_memif {
	uint16_t port;
	bool claimed;           /* port taken in g.ports */
	bool started;
	struct rte_mempool *pool;
	struct pm_net_local local;
	uint32_t peer_be;       /* the daemon */
	uint8_t peer_mac[6];
	bool have_mac, mac_fixed;
	uint32_t mtu;
	uint16_t ip_id;
	uint64_t tsc_per_ms;
	uint64_t arp_next_tsc;  /* next refresh of the daemon's MAC */
	uint8_t *stage;         /* a datagram being fragmented */
	uint8_t *linear;        /* a chained frame, made contiguous */
	struct pmc_reasm reasm[PMC_MEMIF_REASM_SLOTS];
	struct pm_client_memif_stats st;
	const char **why_out;   /* during open: where connect says why it failed */
};

/* Process-wide: the EAL is initialised once, a port serves one client. */
static struct {
	pthread_mutex_t lock;
	bool eal_up;
	bool eal_failed; /* rte_eal_init failed: it cannot be called again */
	char args[PM_CLIENT_MEMIF_EAL_ARGS_BYTES_MAX];
	char *argv[PM_CLIENT_MEMIF_EAL_ARGS_MAX + 2u];
	bool ports[RTE_MAX_ETHPORTS];
	uint32_t pools; /* pools created, for unique names */
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

static const struct pmc_hooks memif_hooks;

/* ---------------------------------------------------------------- configuration */

void pm_client_memif_default(struct pm_client_memif *m)
{
	*m = (struct pm_client_memif){ .mtu = PM_CLIENT_MEMIF_MTU_DEFAULT,
				       .local_port = PM_CLIENT_MEMIF_LOCAL_PORT_DEFAULT };
}

/* "a.b.c.d" or "a.b.c.d/len" into address and mask (no length: /32). */
static bool parse_cidr(const char *s, uint32_t *ip_be, uint32_t *mask_be)
{
	char buf[INET_ADDRSTRLEN + 4];
	if (s == NULL || strlen(s) >= sizeof buf)
		return false;
	strcpy(buf, s);
	uint32_t len = 32;
	char *slash = strchr(buf, '/');
	if (slash) {
		char *end;
		unsigned long v = strtoul(slash + 1, &end, 10);
		if (end == slash + 1 || *end || v < 1 || v > 32)
			return false;
		len = (uint32_t)v;
		*slash = '\0';
	}
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1 || a.s_addr == 0)
		return false;
	*ip_be = a.s_addr;
	*mask_be = htonl((uint32_t)(UINT64_C(0xffffffff) << (32u - len)));
	return true;
}

static const char *memif_problem(const struct pm_client_memif *m)
{
	uint32_t ip, mask;
	if (m == NULL)
		return "no memif configuration given";
	if (!parse_cidr(m->local_ip, &ip, &mask))
		return "local_ip must be an IPv4 address such as 10.0.0.1 (optionally /len)";
	if (m->mtu != 0 && (m->mtu < PM_CLIENT_MEMIF_MTU_MIN || m->mtu > PM_CLIENT_MEMIF_MTU_MAX))
		return "mtu must be 0 (1500) or 576..9000";
	if (m->eal_args && strlen(m->eal_args) >= PM_CLIENT_MEMIF_EAL_ARGS_BYTES_MAX)
		return "eal_args must be shorter than 4096 bytes";
	static const uint8_t zero[6];
	if (m->has_peer_mac && ((m->peer_mac[0] & 1u) || memcmp(m->peer_mac, zero, 6) == 0))
		return "peer_mac must be a unicast MAC, not zero";
	return NULL;
}

_Static_assert(PM_CLIENT_MEMIF_MTU_MIN == 576u && PM_CLIENT_MEMIF_MTU_MAX == 9000u,
	       "message says 576..9000");
_Static_assert(PM_CLIENT_MEMIF_EAL_ARGS_BYTES_MAX == 4096u, "message says 4096");

enum pm_client_status pm_client_memif_check(const struct pm_client_memif *m, const char **why)
{
	const char *problem = memif_problem(m);
	if (why)
		*why = problem ? problem : "ok";
	return problem ? PM_CLIENT_E_CONFIG : PM_CLIENT_OK;
}

/* ---------------------------------------------------------------- EAL and port */

/* Splits args at blanks into g.argv (after a program name); false if too many. */
static bool split_args(const char *args, int *argc)
{
	static char prog[] = "libpomai";
	strcpy(g.args, args);
	*argc = 0;
	g.argv[(*argc)++] = prog;
	for (char *save, *w = strtok_r(g.args, " \t\n", &save); w;
	     w = strtok_r(NULL, " \t\n", &save)) {
		if ((uint32_t)*argc > PM_CLIENT_MEMIF_EAL_ARGS_MAX)
			return false;
		g.argv[(*argc)++] = w;
	}
	g.argv[*argc] = NULL;
	return true;
}

/* The EAL up, ours or the application's. Called under g.lock. */
static const char *eal_up_locked(const char *args)
{
	if (g.eal_up || rte_lcore_count() > 0) {
		g.eal_up = true; /* initialised before: reuse it */
		return NULL;
	}
	if (g.eal_failed)
		return "rte_eal_init failed earlier in this process (it cannot be retried)";
	if (args == NULL || args[0] == '\0')
		return "the EAL is not initialised and eal_args is empty";
	int argc;
	if (!split_args(args, &argc))
		return "eal_args has more than 64 words";
	if (rte_eal_init(argc, g.argv) < 0 && rte_errno != EALREADY) {
		g.eal_failed = true;
		return "rte_eal_init failed (DPDK's log on stderr says why)";
	}
	g.eal_up = true;
	return NULL;
}

/* Claims the named port (or the first unclaimed one). Called under g.lock. */
static const char *port_claim_locked(const char *name, uint16_t *port)
{
	if (name) {
		if (rte_eth_dev_get_port_by_name(name, port) != 0)
			return "no ethdev port of that name (is its --vdev in eal_args?)";
		if (g.ports[*port])
			return "the port is in use by another client";
	} else {
		bool found = false;
		uint16_t p;
		RTE_ETH_FOREACH_DEV(p) {
			if (!g.ports[p]) {
				*port = p;
				found = true;
				break;
			}
		}
		if (!found)
			return "no ethdev port left (add a --vdev=net_memif... to eal_args)";
	}
	g.ports[*port] = true;
	return NULL;
}

static const char *setup_locked(const struct pm_client_memif *mc, struct pmc_memif *m)
{
	const char *why = eal_up_locked(mc->eal_args);
	if (why == NULL)
		why = port_claim_locked(mc->port, &m->port);
	if (why)
		return why;
	m->claimed = true;
	char name[RTE_MEMPOOL_NAMESIZE];
	snprintf(name, sizeof name, "pmc_memif_%u", g.pools++);
	uint32_t room = RTE_PKTMBUF_HEADROOM + PMC_MEMIF_L2_BYTES_MAX + m->mtu;
	if (room < RTE_MBUF_DEFAULT_BUF_SIZE)
		room = RTE_MBUF_DEFAULT_BUF_SIZE;
	m->pool = rte_pktmbuf_pool_create(name, PMC_MEMIF_MBUFS, PMC_MEMIF_MBUF_CACHE, 0,
					  (uint16_t)room, SOCKET_ID_ANY);
	return m->pool ? NULL : "rte_pktmbuf_pool_create failed (EAL memory: -m)";
}

static const char *port_configure(struct pmc_memif *m)
{
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof conf);
	int sock = rte_eth_dev_socket_id(m->port);
	unsigned int socket = sock < 0 ? (unsigned int)SOCKET_ID_ANY : (unsigned int)sock;
	if (rte_eth_dev_configure(m->port, 1, 1, &conf) != 0)
		return "rte_eth_dev_configure failed";
	if (rte_eth_rx_queue_setup(m->port, 0, PMC_MEMIF_RING_DESCS, socket, NULL, m->pool) != 0)
		return "rte_eth_rx_queue_setup failed";
	if (rte_eth_tx_queue_setup(m->port, 0, PMC_MEMIF_RING_DESCS, socket, NULL) != 0)
		return "rte_eth_tx_queue_setup failed";
	struct rte_ether_addr ea;
	if (rte_eth_macaddr_get(m->port, &ea) != 0)
		return "rte_eth_macaddr_get failed";
	memcpy(m->local.mac, ea.addr_bytes, sizeof m->local.mac);
	if (m->local.mac[0] & 1u) /* netfe (ours and the daemon's) drops group sources */
		return "the port's MAC is a group address (memif's default 01:ab:23:cd:45:ef): "
		       "give mac=02:... in its --vdev";
	/* memif copies frames between two processes' memory, which cannot
	 * corrupt them: no UDP checksum (netfe.h; pomaid leaves it out too) */
	struct rte_eth_dev_info di;
	m->local.udp_csum_none = rte_eth_dev_info_get(m->port, &di) == 0 &&
				 strcmp(di.driver_name, "net_memif") == 0;
	return NULL;
}

/* ---------------------------------------------------------------- TX */

/* Sends n mbufs: PMC_SEND_FULL if the ring took none (all freed), else
 * PMC_SENT, or PMC_SEND_LOST when some had to be dropped. */
static enum pmc_send_result tx_burst(struct pmc_memif *m, struct rte_mbuf **pkts, uint16_t n)
{
	uint16_t sent = rte_eth_tx_burst(m->port, 0, pkts, n);
	if (sent == 0) {
		rte_pktmbuf_free_bulk(pkts, n);
		m->st.tx_full++;
		return PMC_SEND_FULL;
	}
	for (uint32_t i = 0; sent < n && i < PMC_MEMIF_TX_RETRIES; i++) {
		rte_pause();
		sent += rte_eth_tx_burst(m->port, 0, pkts + sent, (uint16_t)(n - sent));
	}
	m->st.tx_packets += sent;
	if (sent == n)
		return PMC_SENT;
	rte_pktmbuf_free_bulk(pkts + sent, n - sent);
	m->st.tx_dropped += n - sent;
	return PMC_SEND_LOST;
}

/* A frame of len bytes padded to the Ethernet minimum, in a fresh mbuf. */
static uint8_t *frame_alloc(struct pmc_memif *m, uint32_t len, struct rte_mbuf **out)
{
	uint32_t padded = len < PM_NET_FRAME_BYTES_MIN ? PM_NET_FRAME_BYTES_MIN : len;
	struct rte_mbuf *mb = rte_pktmbuf_alloc(m->pool);
	uint8_t *p = mb ? (uint8_t *)rte_pktmbuf_append(mb, (uint16_t)padded) : NULL;
	if (p == NULL) {
		if (mb)
			rte_pktmbuf_free(mb);
		m->st.tx_dropped++;
		return NULL;
	}
	if (padded > len)
		memset(p + len, 0, padded - len);
	*out = mb;
	return p;
}

static void arp_ask(struct pmc_memif *m)
{
	struct rte_mbuf *mb;
	uint8_t *p = frame_alloc(m, PM_NET_FRAME_BYTES_MIN, &mb);
	if (p == NULL)
		return;
	uint32_t len = pm_net_arp_request(&m->local, m->peer_be, p);
	PMC_ASSERT(len <= PM_NET_FRAME_BYTES_MIN); /* the frame is padded to the minimum */
	m->st.arp_sent++;
	(void)tx_burst(m, &mb, 1);
}

static void copy_iov(uint8_t *dst, const struct iovec *iov, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		memcpy(dst, iov[i].iov_base, iov[i].iov_len);
		dst += iov[i].iov_len;
	}
}

/* The datagram fits the MTU: written straight into one mbuf. */
static enum pmc_send_result send_whole(struct pm_client *c, struct pmc_memif *m, uint32_t dest,
				       const struct iovec *iov, uint32_t n, size_t total)
{
	uint32_t l2 = pm_net_l2_bytes(&m->local);
	struct rte_mbuf *mb;
	uint8_t *p = frame_alloc(m, l2 + PM_NET_IPV4_BYTES + PM_NET_UDP_BYTES + (uint32_t)total, &mb);
	if (p == NULL)
		return PMC_SEND_LOST;
	pm_net_eth_write(&m->local, m->peer_mac, PMC_ETHERTYPE_IPV4, p);
	copy_iov(p + l2 + PM_NET_IPV4_BYTES + PM_NET_UDP_BYTES, iov, n);
	pm_net_ipv4_udp_write(&m->local, m->peer_be, m->local.port_lo,
			      ntohs(c->links[0].addrs[dest].sin_port), m->ip_id++, p + l2, (uint32_t)total);
	return tx_burst(m, &mb, 1);
}

/* One fragment of the staged datagram: Ethernet, the IPv4 header with its
 * own length, offset and checksum, and its slice [off, off + len) of the
 * IP payload. */
static struct rte_mbuf *fragment(struct pmc_memif *m, uint32_t off, uint32_t len, bool more)
{
	uint32_t l2 = pm_net_l2_bytes(&m->local);
	struct rte_mbuf *mb;
	uint8_t *p = frame_alloc(m, l2 + PM_NET_IPV4_BYTES + len, &mb);
	if (p == NULL)
		return NULL;
	pm_net_eth_write(&m->local, m->peer_mac, PMC_ETHERTYPE_IPV4, p);
	uint8_t *ip = p + l2;
	memcpy(ip, m->stage, PM_NET_IPV4_BYTES);
	memcpy(ip + PM_NET_IPV4_BYTES, m->stage + PM_NET_IPV4_BYTES + off, len);
	uint16_t totlen = htons((uint16_t)(PM_NET_IPV4_BYTES + len));
	uint16_t frag = htons((uint16_t)(off / 8u | (more ? PMC_IP_FLAG_MF : 0u)));
	uint16_t zero = 0;
	memcpy(ip + PMC_IP_OFF_TOTLEN, &totlen, 2);
	memcpy(ip + PMC_IP_OFF_FRAG, &frag, 2);
	memcpy(ip + PMC_IP_OFF_CSUM, &zero, 2);
	uint16_t csum = (uint16_t)~pm_net_fold(pm_net_sum(ip, PM_NET_IPV4_BYTES, 0));
	memcpy(ip + PMC_IP_OFF_CSUM, &csum, 2);
	return mb;
}

/* The datagram exceeds the MTU: staged whole (IPv4 + UDP headers written over
 * it, checksum included), then cut into fragments sent in one burst. */
static enum pmc_send_result send_fragmented(struct pm_client *c, struct pmc_memif *m,
					    uint32_t dest, const struct iovec *iov, uint32_t n,
					    size_t total)
{
	struct rte_mbuf *frags[PMC_MEMIF_FRAGS_MAX];
	copy_iov(m->stage + PM_NET_IPV4_BYTES + PM_NET_UDP_BYTES, iov, n);
	pm_net_ipv4_udp_write(&m->local, m->peer_be, m->local.port_lo,
			      ntohs(c->links[0].addrs[dest].sin_port), m->ip_id++, m->stage, (uint32_t)total);
	const uint32_t payload = PM_NET_UDP_BYTES + (uint32_t)total;
	const uint32_t step = (m->mtu - PM_NET_IPV4_BYTES) & ~7u;
	uint16_t nf = 0;
	for (uint32_t off = 0; off < payload; off += step) {
		uint32_t len = payload - off < step ? payload - off : step;
		PMC_ASSERT(nf < PMC_MEMIF_FRAGS_MAX);
		frags[nf] = fragment(m, off, len, off + len < payload);
		if (frags[nf] == NULL) {
			rte_pktmbuf_free_bulk(frags, nf);
			return PMC_SEND_LOST;
		}
		nf++;
	}
	enum pmc_send_result r = tx_burst(m, frags, nf);
	if (r != PMC_SEND_FULL)
		m->st.frags_out += nf;
	return r;
}

static void arp_refresh(struct pmc_memif *m)
{
	uint64_t now = rte_rdtsc();
	if (m->mac_fixed || now < m->arp_next_tsc)
		return;
	m->arp_next_tsc = now + (uint64_t)PM_CLIENT_MEMIF_ARP_REFRESH_MS * m->tsc_per_ms;
	arp_ask(m);
}

static enum pmc_send_result memif_send(struct pm_client *c, uint32_t dest, const struct iovec *iov,
				       uint32_t n, size_t total)
{
	struct pmc_memif *m = c->hook_state;
	PMC_ASSERT(m->have_mac);
	PMC_ASSERT(total <= PM_FRAME_BYTES_MAX);
	arp_refresh(m);
	if (PM_NET_IPV4_BYTES + PM_NET_UDP_BYTES + total <= m->mtu)
		return send_whole(c, m, dest, iov, n, total);
	return send_fragmented(c, m, dest, iov, n, total);
}

/* ---------------------------------------------------------------- RX */

static void rx_drop(struct pmc_memif *m, enum pm_net_drop why)
{
	m->st.rx_dropped++;
	m->st.rx_drops[why < PM_NET_DROP_REASONS ? why : PM_NET_DROP_NONE]++;
}

/* The daemon's MAC from its ARP request or reply (unless configured). */
static void learn(struct pmc_memif *m, const struct pm_net_pkt *pkt)
{
	if (m->mac_fixed || pkt->src_ip_be != m->peer_be)
		return;
	memcpy(m->peer_mac, pkt->src_mac, sizeof m->peer_mac);
	m->have_mac = true;
}

/* A UDP datagram (offsets relative to base) from one of the daemon's shard
 * ports goes to libpomai's frame handler. */
static void deliver(struct pm_client *c, struct pmc_memif *m, const uint8_t *base,
		    const struct pm_net_pkt *pkt)
{
	if (pkt->src_ip_be != m->peer_be || pkt->src_port < c->cfg.base_port ||
	    pkt->src_port - c->cfg.base_port >= c->cfg.shards) {
		m->st.rx_foreign++;
		return;
	}
	const uint8_t *csum = base + pkt->l4_off + PMC_UDP_OFF_CSUM;
	m->st.rx_no_csum += csum[0] == 0 && csum[1] == 0;
	pmc_on_datagram(c, base + pkt->payload_off, pkt->payload_len);
}

static void reasm_free(struct pmc_memif *m, struct pmc_reasm *r, bool dropped)
{
	if (dropped && r->src_be != 0)
		m->st.reasm_dropped++;
	r->src_be = 0;
}

/* The slot of datagram (src, id, proto), or a new one: a free slot, else
 * the oldest (its partial datagram dropped). Expired slots are freed first. */
static struct pmc_reasm *reasm_find(struct pmc_memif *m, uint32_t src, uint16_t id,
				    uint8_t proto, uint64_t now)
{
	struct pmc_reasm *pick = NULL;
	for (uint32_t i = 0; i < PMC_MEMIF_REASM_SLOTS; i++) {
		struct pmc_reasm *r = &m->reasm[i];
		if (r->src_be != 0 && now - r->started_ms > PMC_MEMIF_REASM_MS)
			reasm_free(m, r, true);
		if (r->src_be == src && r->ip_id == id && r->proto == proto)
			return r;
		if (pick == NULL ||
		    (pick->src_be != 0 && (r->src_be == 0 || r->started_ms < pick->started_ms)))
			pick = r;
	}
	reasm_free(m, pick, true);
	pick->src_be = src;
	pick->ip_id = id;
	pick->proto = proto;
	pick->total = 0;
	pick->blocks = 0;
	pick->started_ms = now;
	memset(pick->have, 0, (PMC_MEMIF_REASM_BLOCKS + 7u) / 8u);
	return pick;
}

/* The whole datagram: an IPv4 header written in front of the payload, parsed
 * again (UDP length, checksum, ports), and delivered. */
static void reasm_done(struct pm_client *c, struct pmc_memif *m, struct pmc_reasm *r)
{
	uint8_t *ip = r->buf;
	uint16_t totlen = htons((uint16_t)(PM_NET_IPV4_BYTES + r->total));
	uint16_t id = htons(r->ip_id);
	memset(ip, 0, PM_NET_IPV4_BYTES);
	ip[0] = 0x45; /* version 4, IHL 5 */
	ip[8] = PM_NET_TTL;
	ip[PMC_IP_OFF_PROTO] = r->proto;
	memcpy(ip + PMC_IP_OFF_TOTLEN, &totlen, 2);
	memcpy(ip + PMC_IP_OFF_ID, &id, 2);
	memcpy(ip + PMC_IP_OFF_SRC, &r->src_be, 4);
	memcpy(ip + PMC_IP_OFF_DST, &m->local.ip_be, 4);
	uint16_t csum = (uint16_t)~pm_net_fold(pm_net_sum(ip, PM_NET_IPV4_BYTES, 0));
	memcpy(ip + PMC_IP_OFF_CSUM, &csum, 2);
	m->st.reassembled++;
	struct pm_net_pkt pkt;
	if (pm_net_parse_ipv4(&m->local, ip, PM_NET_IPV4_BYTES + r->total, &pkt) == PM_NET_UDP)
		deliver(c, m, ip, &pkt);
	else
		rx_drop(m, pkt.drop);
	reasm_free(m, r, false);
}

/* Marks blocks [first, end) received; returns how many were new. */
static uint32_t reasm_mark(struct pmc_reasm *r, uint32_t first, uint32_t end)
{
	uint32_t fresh = 0;
	for (uint32_t b = first; b < end; b++) {
		uint8_t bit = (uint8_t)(1u << (b & 7u));
		fresh += !(r->have[b >> 3] & bit);
		r->have[b >> 3] |= bit;
	}
	return fresh;
}

/* One fragment (its IPv4 header validated by pm_net_parse). */
static void reasm_add(struct pm_client *c, struct pmc_memif *m, const uint8_t *frame,
		      const struct pm_net_pkt *pkt)
{
	const uint8_t *ip = frame + pkt->l3_off;
	uint32_t ihl = (ip[0] & 0x0fu) * 4u;
	uint16_t totlen, frag, id;
	memcpy(&totlen, ip + PMC_IP_OFF_TOTLEN, 2);
	memcpy(&frag, ip + PMC_IP_OFF_FRAG, 2);
	memcpy(&id, ip + PMC_IP_OFF_ID, 2);
	frag = ntohs(frag);
	const uint32_t off = (frag & PMC_IP_FRAG_OFF_MASK) * 8u, len = ntohs(totlen) - ihl;
	const bool more = frag & PMC_IP_FLAG_MF;
	m->st.frags_in++;
	if (len == 0 || off + len > PMC_MEMIF_IP_PAYLOAD_BYTES_MAX || (more && len % 8u)) {
		m->st.reasm_dropped++;
		return;
	}
	struct pmc_reasm *r = reasm_find(m, pkt->src_ip_be, ntohs(id), ip[PMC_IP_OFF_PROTO],
					 pmc_now_ms());
	if (r->total != 0 && (off + len > r->total || (!more && off + len != r->total))) {
		reasm_free(m, r, true); /* disagrees with the last fragment's end */
		return;
	}
	if (!more)
		r->total = off + len;
	memcpy(r->buf + PM_NET_IPV4_BYTES + off, ip + ihl, len);
	r->blocks += reasm_mark(r, off / PMC_MEMIF_REASM_BLOCK_BYTES,
				(off + len + PMC_MEMIF_REASM_BLOCK_BYTES - 1u) /
					PMC_MEMIF_REASM_BLOCK_BYTES);
	uint32_t need = (r->total + PMC_MEMIF_REASM_BLOCK_BYTES - 1u) / PMC_MEMIF_REASM_BLOCK_BYTES;
	if (r->total != 0 && r->blocks > need)
		reasm_free(m, r, true); /* blocks beyond the end */
	else if (r->total != 0 && r->blocks == need)
		reasm_done(c, m, r);
}

/* Sends the frame an in-place builder made of mb (len bytes); false when it
 * could not (the caller frees mb). */
static bool answer(struct pmc_memif *m, struct rte_mbuf *mb, uint32_t len)
{
	if (mb->nb_segs != 1 || len == 0 || len > mb->data_len)
		return false;
	rte_pktmbuf_trim(mb, (uint16_t)(mb->data_len - len));
	(void)tx_burst(m, &mb, 1);
	return true;
}

/* Frames up to the largest MTU the daemon may use are taken whole. */
#define PMC_MEMIF_LINEAR_BYTES (PMC_MEMIF_L2_BYTES_MAX + PM_CLIENT_MEMIF_MTU_MAX)

static void rx_one(struct pm_client *c, struct pmc_memif *m, struct rte_mbuf *mb)
{
	uint32_t len = rte_pktmbuf_pkt_len(mb);
	uint8_t *frame = mb->nb_segs == 1 ? rte_pktmbuf_mtod(mb, uint8_t *) : NULL;
	if (frame == NULL && len <= PMC_MEMIF_LINEAR_BYTES)
		frame = (uint8_t *)(uintptr_t)rte_pktmbuf_read(mb, 0, len, m->linear);
	struct pm_net_pkt pkt;
	enum pm_net_kind kind = frame ? pm_net_parse(&m->local, frame, len, 0, &pkt) : PM_NET_DROP;
	m->st.rx_packets++;
	switch (kind) {
	case PM_NET_UDP:
		deliver(c, m, frame, &pkt);
		break;
	case PM_NET_FRAGMENT:
		reasm_add(c, m, frame, &pkt);
		break;
	case PM_NET_ARP_REPLY:
		learn(m, &pkt);
		break;
	case PM_NET_ARP_REQUEST:
		learn(m, &pkt);
		if (answer(m, mb, pm_net_arp_answer(&m->local, frame, len))) {
			m->st.arp_answered++;
			return;
		}
		break;
	case PM_NET_ICMP_ECHO:
		if (answer(m, mb, pm_net_icmp_answer(&m->local, frame, len, &pkt))) {
			m->st.icmp_answered++;
			return;
		}
		break;
	case PM_NET_DROP:
		rx_drop(m, frame ? pkt.drop : PM_NET_DROP_SHORT);
		break;
	}
	rte_pktmbuf_free(mb);
}

/* Up to PMC_MEMIF_RX_BURSTS_MAX bursts; the packets taken. */
static uint32_t rx_poll(struct pm_client *c, struct pmc_memif *m)
{
	struct rte_mbuf *pkts[PMC_MEMIF_RX_BURST];
	uint32_t total = 0;
	for (uint32_t b = 0; b < PMC_MEMIF_RX_BURSTS_MAX; b++) {
		uint16_t n = rte_eth_rx_burst(m->port, 0, pkts, PMC_MEMIF_RX_BURST);
		for (uint16_t i = 0; i < n; i++)
			rx_one(c, m, pkts[i]);
		total += n;
		if (n < PMC_MEMIF_RX_BURST)
			break;
	}
	return total;
}

static void memif_receive(struct pm_client *c)
{
	(void)rx_poll(c, c->hook_state);
}

/* Busy-polls for up to wait_ms (libpomai has cut it to the next deadline):
 * returns when a reply frame arrived, or the time is up. A send waiting for
 * room in the TX ring is retried on every turn. */
static void memif_wait(struct pm_client *c, uint32_t wait_ms)
{
	struct pmc_memif *m = c->hook_state;
	const uint64_t frames = c->stats.frames_in;
	const uint64_t end = rte_rdtsc() + (uint64_t)wait_ms * m->tsc_per_ms;
	do {
		if (c->links[0].want_write) {
			c->links[0].want_write = false;
			pmc_flush_all(c);
		}
		(void)rx_poll(c, m);
		if (c->stats.frames_in != frames)
			return;
		rte_pause();
	} while (rte_rdtsc() < end);
}

/* ---------------------------------------------------------------- connect, close */

static bool link_wait(const struct pmc_memif *m, uint64_t end_tsc)
{
	for (;;) {
		struct rte_eth_link link;
		memset(&link, 0, sizeof link);
		if (rte_eth_link_get_nowait(m->port, &link) == 0 && link.link_status == RTE_ETH_LINK_UP)
			return true;
		if (rte_rdtsc() >= end_tsc)
			return false;
		rte_delay_us_sleep(PMC_MEMIF_LINK_POLL_US);
	}
}

/* ARP for the daemon every timeout_ms until it answers or end_tsc. */
static bool resolve(struct pm_client *c, struct pmc_memif *m, uint64_t end_tsc)
{
	const uint64_t resend = (uint64_t)c->cfg.timeout_ms * m->tsc_per_ms;
	uint64_t next = 0;
	while (!m->have_mac) {
		uint64_t now = rte_rdtsc();
		if (now >= end_tsc)
			return false;
		if (now >= next) {
			arp_ask(m);
			next = now + resend;
		}
		(void)rx_poll(c, m);
		rte_pause();
	}
	m->arp_next_tsc = rte_rdtsc() + (uint64_t)PM_CLIENT_MEMIF_ARP_REFRESH_MS * m->tsc_per_ms;
	return true;
}

static void port_stop(struct pmc_memif *m)
{
	if (m->started)
		(void)rte_eth_dev_stop(m->port);
	m->started = false;
	m->have_mac = m->mac_fixed;
}

/* Start the port, wait for the link and the daemon's MAC, all within
 * timeout_ms x (1 + retries). */
static enum pm_client_status memif_connect(struct pm_client *c)
{
	struct pmc_memif *m = c->hook_state;
	const uint64_t budget_ms = (uint64_t)c->cfg.timeout_ms * (1u + c->cfg.retries);
	const uint64_t end = rte_rdtsc() + budget_ms * m->tsc_per_ms;
	const char *why = NULL;
	m->peer_be = c->links[0].addrs[0].sin_addr.s_addr;
	if (rte_eth_dev_start(m->port) != 0)
		why = "rte_eth_dev_start failed";
	m->started = why == NULL;
	if (why == NULL && !link_wait(m, end))
		why = "the memif link did not come up (is pomaid's memif server on that socket?)";
	if (why == NULL && !resolve(c, m, end))
		why = "the daemon did not answer ARP for its address (host)";
	if (why == NULL && c->cfg.pack_bytes == 0) /* issue 20: a datagram of frames and
						    * its cookie fill one MTU */
		c->links[0].pack_bytes = m->mtu - PM_NET_IPV4_BYTES - PM_NET_UDP_BYTES -
					 PM_COOKIE_FRAME_BYTES;
	if (why == NULL)
		return PM_CLIENT_OK;
	if (m->why_out)
		*m->why_out = why;
	port_stop(m);
	return PM_CLIENT_E_CONNECTION;
}

static void memif_disconnect(struct pm_client *c)
{
	port_stop(c->hook_state);
}

static void memif_close(void *state)
{
	struct pmc_memif *m = state;
	if (m == NULL)
		return;
	port_stop(m);
	if (m->claimed) {
		pthread_mutex_lock(&g.lock);
		g.ports[m->port] = false;
		pthread_mutex_unlock(&g.lock);
	}
	rte_mempool_free(m->pool); /* NULL-safe */
	for (uint32_t i = 0; i < PMC_MEMIF_REASM_SLOTS; i++) {
		free(m->reasm[i].buf);
		free(m->reasm[i].have);
	}
	free(m->stage);
	free(m->linear);
	free(m);
}

static const struct pmc_hooks memif_hooks = {
	.connect = memif_connect,
	.disconnect = memif_disconnect,
	.close = memif_close,
	.send = memif_send,
	.receive = memif_receive,
	.wait = memif_wait,
};

/* ---------------------------------------------------------------- open */

static struct pmc_memif *state_alloc(const struct pm_client_memif *mc)
{
	struct pmc_memif *m = calloc(1, sizeof *m);
	if (m == NULL)
		return NULL;
	bool ok = (m->stage = malloc(PMC_MEMIF_IP_BYTES_MAX)) != NULL &&
		  (m->linear = malloc(PMC_MEMIF_LINEAR_BYTES)) != NULL;
	for (uint32_t i = 0; ok && i < PMC_MEMIF_REASM_SLOTS; i++) {
		struct pmc_reasm *r = &m->reasm[i];
		ok = (r->buf = malloc(PMC_MEMIF_IP_BYTES_MAX)) != NULL &&
		     (r->have = malloc((PMC_MEMIF_REASM_BLOCKS + 7u) / 8u)) != NULL;
	}
	if (!ok) {
		memif_close(m);
		return NULL;
	}
	(void)parse_cidr(mc->local_ip, &m->local.ip_be, &m->local.mask_be); /* checked */
	m->local.port_lo = m->local.port_hi =
		mc->local_port ? mc->local_port : (uint16_t)PM_CLIENT_MEMIF_LOCAL_PORT_DEFAULT;
	m->mtu = mc->mtu ? mc->mtu : PM_CLIENT_MEMIF_MTU_DEFAULT;
	m->mac_fixed = m->have_mac = mc->has_peer_mac;
	memcpy(m->peer_mac, mc->peer_mac, sizeof m->peer_mac);
	return m;
}

/* EAL, port, pool, queues; the why of a failure, or NULL. */
static const char *device_open(const struct pm_client_memif *mc, struct pmc_memif *m)
{
	pthread_mutex_lock(&g.lock);
	const char *why = setup_locked(mc, m);
	pthread_mutex_unlock(&g.lock);
	if (why == NULL)
		why = port_configure(m);
	if (why == NULL)
		m->tsc_per_ms = rte_get_tsc_hz() / PMC_MEMIF_MS_PER_S;
	return why;
}

enum pm_client_status pm_client_memif_open(const struct pm_client_config *cfg,
					   const struct pm_client_memif *mc, struct pm_client **out,
					   const char **why)
{
	const char *problem = NULL;
	if (why)
		*why = "ok";
	if (out == NULL || cfg == NULL)
		return PM_CLIENT_E_ARG;
	*out = NULL;
	struct pm_client_config cc = *cfg;
	cc.transport = PM_CLIENT_MEMIF;
	if (pm_client_config_check(&cc, &problem) != PM_CLIENT_OK ||
	    (problem = memif_problem(mc)) != NULL) {
		if (why)
			*why = problem;
		return PM_CLIENT_E_CONFIG;
	}
	struct pmc_memif *m = state_alloc(mc);
	if (m == NULL) {
		if (why)
			*why = "out of memory";
		return PM_CLIENT_E_ALLOC;
	}
	problem = device_open(mc, m);
	if (problem) {
		if (why)
			*why = problem;
		memif_close(m);
		return PM_CLIENT_E_CONNECTION;
	}
	m->why_out = why;
	enum pm_client_status st = pmc_open(&cc, &memif_hooks, m, out); /* owns m now */
	if (st == PM_CLIENT_OK)
		m->why_out = NULL;
	else if (why && strcmp(*why, "ok") == 0)
		*why = pm_client_strerror(st);
	return st;
}

const char *pm_client_memif_drop_name(uint32_t reason)
{
	return reason < PM_NET_DROP_REASONS ? pm_net_drop_name((enum pm_net_drop)reason)
					    : "unknown";
}

void pm_client_memif_stats(const struct pm_client *c, struct pm_client_memif_stats *out)
{
	if (out == NULL)
		return;
	if (c && c->hooks == &memif_hooks)
		*out = ((const struct pmc_memif *)c->hook_state)->st;
	else
		memset(out, 0, sizeof *out);
}
