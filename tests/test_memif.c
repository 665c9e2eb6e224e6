/* SPDX-License-Identifier: MIT
 *
 * test_memif.c — CUnit suite of libpomai_memif (the memif transport),
 * against a minimal memif server written here.
 *
 * main() forks a child before any EAL exists. The child is the server: its
 * own EAL (another --file-prefix, another lcore), net_memif0 in role=server
 * on a socket in a temporary directory, and a loop that parses every frame
 * with the dataplane's front end (netfe.h), answers ARP for 10.0.0.2,
 * reassembles fragmented requests with DPDK's ip_frag (as pomaid does), and
 * answers SET and GET from a tiny table with frames from the codec
 * (pm_reply_encode); replies above the MTU are fragmented with
 * rte_ipv4_fragment_packet (as pomaid does). So the client's own
 * fragmentation and reassembly are checked against DPDK's, and its frames
 * against netfe's validation. The server serves shard port base_port only:
 * shard 1's port is where requests go unanswered. It keeps its counters in
 * shared memory for the parent to check.
 *
 * The parent opens libpomai over memif (role=client): ARP resolution (and
 * the server ARPing the client), SET / GET round trips with their latency, a
 * request fragmented into 7 (DPDK's reassembly allows 8), a reply of 60 KB
 * in 41 fragments, pipelined requests packed into datagrams, the wait bound of
 * pm_client_poll and a timeout while busy polling, a configured peer MAC
 * (the port stopped and restarted), and the configuration checks.
 *
 * Exit 77 (skip) when it cannot run here: not root, the memif PMD or the EAL
 * missing or refused. With CI=true in the environment those are failures.
 */
#define _GNU_SOURCE
#define ALLOW_EXPERIMENTAL_API /* rte_intr_instance_alloc and its setters (srv_main) */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_interrupts.h>
#include <rte_lcore.h>
#include <rte_ip.h>
#include <rte_ip_frag.h>
#include <rte_mbuf.h>

#include "bridge.h"
#include "cu_main.h"
#include "netfe.h"
#include "pomai_memif.h"
#include "proc.h"

/* ---------------------------------------------------------------- set-up */

#define T_CLIENT_IP "10.0.0.1"
#define T_SERVER_IP "10.0.0.2"
#define T_CLIENT_MAC "02:00:00:00:00:01"
#define T_SERVER_MAC "02:00:00:00:00:02"
static const uint8_t server_mac[6] = { 2, 0, 0, 0, 0, 2 };
#define T_BASE_PORT 7700u
#define T_MTU 1500u
#define T_EAL_COMMON \
	"--no-huge --no-pci -m 512 --no-shconf --no-telemetry --log-level=lib.eal:warning"
#define T_ARGS_BYTES 1024u
/* The child's start-up (EAL, port), and the line it prints then. */
#define T_READY_MS 15000
#define T_SERVER_READY "memif server: ready"
#define T_TIMEOUT_MS 1000u
#define T_SHORT_TIMEOUT_MS 20u
/* How long a client with a short budget may keep trying to connect. */
#define T_OPEN_WAIT_MS 10000u
/* Round trips timed (after a warm-up that touches every slot of memif's
 * 1024-slot rings once: a first touch of their shared pages costs a page
 * fault, ~20 us in some VMs), and pipelined requests. */
#define T_WARMUP_N 2048u
#define T_LATENCY_N 2000u
#define T_PIPELINE_N 2000u
/* A request of 7 fragments (DPDK reassembles at most 8) and a reply of 41. */
#define T_MID_VALUE_BYTES 10000u
#define T_BIG_VALUE_BYTES 60000u
#define T_BIG_KEY "big"

/* Server: table, mbufs, fragmentation. */
#define S_KEYS_MAX 4096u
#define S_KEY_BYTES_MAX 64u
#define S_SMALL_VALUE_BYTES 64u
#define S_MBUFS 4095u
#define S_MBUF_CACHE 64u
#define S_RX_BURST 32u
#define S_FRAGS_MAX 64u
#define S_DATAGRAM_BYTES 1400u
#define S_FRAG_BUCKETS 16u
#define S_FRAG_BUCKET_ENTRIES 16u
#define S_FRAG_ENTRIES 256u
#define S_IP_BYTES_MAX 65535u

/* Counters the server shares with the parent. */
struct shared {
	uint64_t requests, replies, arp_answered, arp_replies_seen, frags_in, reassembled;
	uint64_t frags_out, datagrams_in;
	uint64_t udp_no_csum, udp_csum; /* whole datagrams without / with a UDP checksum */
	uint64_t drops[PM_NET_DROP_REASONS];
};

static struct shared *S;
static struct proc server;
static char tmpdir[64], sockpath[128];
static struct pm_client *C;

/* ---------------------------------------------------------------- server state */

struct entry {
	uint8_t key[S_KEY_BYTES_MAX];
	uint32_t klen;
	uint8_t *val;
	uint32_t vlen;
};

static struct {
	uint16_t port;
	struct rte_mempool *pool, *indirect;
	struct rte_ip_frag_tbl *frag;
	struct rte_ip_frag_death_row dr;
	struct pm_net_local local;
	uint8_t client_mac[6];
	bool asked_client;
	uint16_t ip_id;
	struct entry table[S_KEYS_MAX];
	uint32_t nkeys;
	uint8_t out[PM_FRAME_BYTES_MAX];
	uint32_t out_len;
	uint8_t stage[S_IP_BYTES_MAX + PM_NET_ETH_BYTES];
	uint8_t rxbuf[S_IP_BYTES_MAX + PM_NET_ETH_BYTES];
} srv;

static volatile sig_atomic_t srv_quit;

static void on_term(int sig)
{
	(void)sig;
	srv_quit = 1;
}

/* The byte at i of the big value (the parent checks the reply with it). */
static uint8_t big_byte(uint32_t i)
{
	return (uint8_t)(i * 131u + (i >> 8));
}

static struct entry *table_find(const uint8_t *k, uint32_t klen, bool create)
{
	for (uint32_t i = 0; i < srv.nkeys; i++)
		if (srv.table[i].klen == klen && memcmp(srv.table[i].key, k, klen) == 0)
			return &srv.table[i];
	if (!create || srv.nkeys == S_KEYS_MAX || klen > S_KEY_BYTES_MAX)
		return NULL;
	struct entry *e = &srv.table[srv.nkeys++];
	memcpy(e->key, k, klen);
	e->klen = klen;
	e->val = NULL;
	e->vlen = 0;
	return e;
}

static void table_set(const uint8_t *k, uint32_t klen, const uint8_t *v, uint32_t vlen)
{
	struct entry *e = table_find(k, klen, true);
	if (e == NULL)
		return;
	free(e->val);
	e->val = malloc(vlen ? vlen : 1u);
	if (e->val && vlen)
		memcpy(e->val, v, vlen);
	e->vlen = e->val ? vlen : 0;
}

/* ---------------------------------------------------------------- server TX */

static void srv_tx(struct rte_mbuf **pkts, uint16_t n)
{
	uint16_t sent = 0;
	for (uint32_t tries = 0; sent < n && tries < 1000u; tries++)
		sent += rte_eth_tx_burst(srv.port, 0, pkts + sent, (uint16_t)(n - sent));
	if (sent < n)
		rte_pktmbuf_free_bulk(pkts + sent, n - sent);
}

static struct rte_mbuf *srv_frame(const uint8_t *bytes, uint32_t len)
{
	struct rte_mbuf *mb = rte_pktmbuf_alloc(srv.pool);
	uint32_t padded = len < PM_NET_FRAME_BYTES_MIN ? PM_NET_FRAME_BYTES_MIN : len;
	uint8_t *p = mb ? (uint8_t *)rte_pktmbuf_append(mb, (uint16_t)padded) : NULL;
	if (p == NULL) {
		rte_pktmbuf_free(mb);
		return NULL;
	}
	memset(p, 0, padded);
	memcpy(p, bytes, len);
	return mb;
}

/* The IPv4 datagram at ip (len bytes) as a chain of mbufs, for ip_frag. */
static struct rte_mbuf *srv_chain(const uint8_t *ip, uint32_t len)
{
	struct rte_mbuf *head = NULL;
	const uint32_t seg = rte_pktmbuf_data_room_size(srv.pool) - RTE_PKTMBUF_HEADROOM;
	for (uint32_t off = 0; off < len; off += seg) {
		uint32_t n = len - off < seg ? len - off : seg;
		struct rte_mbuf *mb = rte_pktmbuf_alloc(srv.pool);
		uint8_t *p = mb ? (uint8_t *)rte_pktmbuf_append(mb, (uint16_t)n) : NULL;
		if (p == NULL || (head && rte_pktmbuf_chain(head, mb) != 0)) {
			rte_pktmbuf_free(mb);
			rte_pktmbuf_free(head);
			return NULL;
		}
		memcpy(p, ip + off, n);
		if (head == NULL)
			head = mb;
	}
	return head;
}

/* Fragments the datagram at ip with DPDK's rte_ipv4_fragment_packet. */
static void srv_send_fragmented(uint8_t *ip, uint32_t len)
{
	struct rte_mbuf *frags[S_FRAGS_MAX];
	uint16_t zero = 0;
	memcpy(ip + 6, &zero, 2); /* no DF: fragmenting is allowed */
	struct rte_mbuf *in = srv_chain(ip, len);
	if (in == NULL)
		return;
	int32_t n = rte_ipv4_fragment_packet(in, frags, S_FRAGS_MAX, T_MTU, srv.pool, srv.indirect);
	rte_pktmbuf_free(in);
	if (n <= 0)
		return;
	for (int32_t i = 0; i < n; i++) {
		uint8_t *p = (uint8_t *)rte_pktmbuf_prepend(frags[i], PM_NET_ETH_BYTES);
		pm_net_eth_write(&srv.local, srv.client_mac, 0x0800, p);
		struct rte_ipv4_hdr *h = (struct rte_ipv4_hdr *)(p + PM_NET_ETH_BYTES);
		h->hdr_checksum = 0;
		h->hdr_checksum = rte_ipv4_cksum(h);
	}
	S->frags_out += (uint64_t)n;
	srv_tx(frags, (uint16_t)n);
}

/* One UDP datagram of srv.out to the client. */
static void srv_send(uint32_t dst_be, uint16_t dst_port, uint16_t src_port)
{
	if (srv.out_len == 0)
		return;
	uint8_t *ip = srv.stage + PM_NET_ETH_BYTES;
	memcpy(ip + PM_NET_IPV4_BYTES + PM_NET_UDP_BYTES, srv.out, srv.out_len);
	pm_net_ipv4_udp_write(&srv.local, dst_be, src_port, dst_port, srv.ip_id++, ip, srv.out_len);
	uint32_t iplen = PM_NET_IPV4_BYTES + PM_NET_UDP_BYTES + srv.out_len;
	srv.out_len = 0;
	if (iplen > T_MTU) {
		srv_send_fragmented(ip, iplen);
		return;
	}
	pm_net_eth_write(&srv.local, srv.client_mac, 0x0800, srv.stage);
	struct rte_mbuf *mb = srv_frame(srv.stage, PM_NET_ETH_BYTES + iplen);
	if (mb)
		srv_tx(&mb, 1);
}

static void srv_ask_client(uint32_t client_be)
{
	uint8_t frame[PM_NET_FRAME_BYTES_MIN];
	uint32_t len = pm_net_arp_request(&srv.local, client_be, frame);
	struct rte_mbuf *mb = srv_frame(frame, len);
	if (mb)
		srv_tx(&mb, 1);
	srv.asked_client = true;
}

/* ---------------------------------------------------------------- server RX */

/* Answers one request into srv.out, sending what was there first when the
 * reply does not fit the datagram. */
static void srv_answer(const struct pm_request *q, enum pm_status st, const struct pm_net_pkt *pkt)
{
	struct pm_reply r = { .status = st, .op = q->op, .id = q->id };
	if (st == PM_OK && q->op == PM_OP_SET) {
		table_set(q->key.ptr, q->key.len, q->value.ptr, q->value.len);
	} else if (st == PM_OK && q->op == PM_OP_GET) {
		const struct entry *e = table_find(q->key.ptr, q->key.len, false);
		if (e)
			r.value = (struct pm_bytes){ .ptr = e->val, .len = e->vlen };
		else
			r.status = PM_NOT_FOUND;
	} else if (st == PM_OK) {
		r.status = PM_E_PARAM; /* this server knows SET and GET only */
	}
	size_t n = 0;
	if (srv.out_len > 0)
		n = pm_reply_encode(&r, NULL, srv.out + srv.out_len, S_DATAGRAM_BYTES - srv.out_len);
	if (n == 0) {
		srv_send(pkt->src_ip_be, pkt->src_port, pkt->dst_port);
		n = pm_reply_encode(&r, NULL, srv.out, sizeof srv.out);
	}
	srv.out_len += (uint32_t)n;
	S->replies += n != 0;
}

/* Every request frame of a datagram; replies packed as the daemon does. */
static void srv_datagram(const uint8_t *p, uint32_t len, const struct pm_net_pkt *pkt)
{
	S->datagrams_in++;
	size_t off = 0, used;
	while (off < len) {
		struct pm_request q;
		enum pm_status st = pm_request_decode(p + off, len - off, &q, &used);
		if (used == 0)
			break;
		S->requests++;
		srv_answer(&q, st, pkt);
		off += used;
	}
	srv_send(pkt->src_ip_be, pkt->src_port, pkt->dst_port);
}

/* A fragment goes to DPDK's reassembly, as in pomaid; the whole datagram is
 * parsed again with pm_net_parse_ipv4. */
static void srv_fragment(struct rte_mbuf *mb, const struct pm_net_pkt *pkt)
{
	S->frags_in++;
	uint8_t *frame = rte_pktmbuf_mtod(mb, uint8_t *);
	struct rte_ipv4_hdr *h = (struct rte_ipv4_hdr *)(frame + pkt->l3_off);
	mb->l2_len = pkt->l3_off;
	mb->l3_len = rte_ipv4_hdr_len(h);
	struct rte_mbuf *whole =
		rte_ipv4_frag_reassemble_packet(srv.frag, &srv.dr, mb, rte_rdtsc(), h);
	rte_ip_frag_free_death_row(&srv.dr, 3);
	if (whole == NULL)
		return; /* kept by the table until the datagram is complete */
	S->reassembled++;
	uint32_t len = rte_pktmbuf_pkt_len(whole), l2 = whole->l2_len;
	const uint8_t *b = len <= sizeof srv.rxbuf ? rte_pktmbuf_read(whole, 0, len, srv.rxbuf) : NULL;
	struct pm_net_pkt ip;
	if (b && pm_net_parse_ipv4(&srv.local, b + l2, len - l2, &ip) == PM_NET_UDP)
		srv_datagram(b + l2 + ip.payload_off, ip.payload_len, &ip);
	else
		S->drops[PM_NET_DROP_FRAG]++;
	rte_pktmbuf_free(whole);
}

static void srv_rx(struct rte_mbuf *mb)
{
	uint32_t len = rte_pktmbuf_pkt_len(mb);
	const uint8_t *f = len <= sizeof srv.rxbuf ? rte_pktmbuf_read(mb, 0, len, srv.rxbuf) : NULL;
	struct pm_net_pkt pkt = { 0 };
	enum pm_net_kind kind = f ? pm_net_parse(&srv.local, f, len, 0, &pkt) : PM_NET_DROP;
	switch (kind) {
	case PM_NET_ARP_REQUEST: {
		memcpy(srv.client_mac, pkt.src_mac, 6);
		uint8_t frame[PM_NET_FRAME_BYTES_MIN * 2];
		memcpy(frame, f, len < sizeof frame ? len : sizeof frame);
		uint32_t n = pm_net_arp_answer(&srv.local, frame, len < sizeof frame ? len : sizeof frame);
		struct rte_mbuf *ans = n ? srv_frame(frame, n) : NULL;
		if (ans)
			srv_tx(&ans, 1);
		S->arp_answered++;
		break;
	}
	case PM_NET_ARP_REPLY:
		S->arp_replies_seen++;
		break;
	case PM_NET_UDP:
		if (f[pkt.l4_off + 6] == 0 && f[pkt.l4_off + 7] == 0) /* its checksum field */
			S->udp_no_csum++;
		else
			S->udp_csum++;
		memcpy(srv.client_mac, pkt.src_mac, 6);
		if (!srv.asked_client)
			srv_ask_client(pkt.src_ip_be); /* the client must answer for its address */
		srv_datagram(f + pkt.payload_off, pkt.payload_len, &pkt);
		break;
	case PM_NET_FRAGMENT:
		srv_fragment(mb, &pkt);
		return;
	case PM_NET_ICMP_ECHO:
		break;
	case PM_NET_DROP:
		S->drops[pkt.drop]++;
		break;
	}
	rte_pktmbuf_free(mb);
}

static int split(char *args, char **argv, int cap)
{
	int n = 0;
	argv[n++] = (char *)"test_memif";
	for (char *save, *w = strtok_r(args, " ", &save); w && n < cap - 1;
	     w = strtok_r(NULL, " ", &save))
		argv[n++] = w;
	argv[n] = NULL;
	return n;
}

static int srv_port_up(void)
{
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof conf);
	if (rte_eth_dev_count_avail() != 1 || rte_eth_dev_configure(srv.port, 1, 1, &conf) != 0 ||
	    rte_eth_rx_queue_setup(srv.port, 0, 1024, SOCKET_ID_ANY, NULL, srv.pool) != 0 ||
	    rte_eth_tx_queue_setup(srv.port, 0, 1024, SOCKET_ID_ANY, NULL) != 0 ||
	    rte_eth_dev_start(srv.port) != 0)
		return -1;
	struct rte_ether_addr ea;
	rte_eth_macaddr_get(srv.port, &ea);
	memcpy(srv.local.mac, ea.addr_bytes, 6);
	return 0;
}

static int srv_init(char *args)
{
	char *argv[32];
	int argc = split(args, argv, 32);
	if (rte_eal_init(argc, argv) < 0)
		return -1;
	srv.pool = rte_pktmbuf_pool_create("srv", S_MBUFS, S_MBUF_CACHE, 0,
					   RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	srv.indirect = rte_pktmbuf_pool_create("srv_ind", S_MBUFS, S_MBUF_CACHE, 0, 0,
					       SOCKET_ID_ANY);
	srv.frag = rte_ip_frag_table_create(S_FRAG_BUCKETS, S_FRAG_BUCKET_ENTRIES, S_FRAG_ENTRIES,
					    rte_get_tsc_hz(), SOCKET_ID_ANY);
	if (!srv.pool || !srv.indirect || !srv.frag || srv_port_up() != 0)
		return -1;
	inet_pton(AF_INET, T_SERVER_IP, &srv.local.ip_be);
	srv.local.mask_be = htonl(0xffffff00u);
	srv.local.port_lo = srv.local.port_hi = T_BASE_PORT; /* shard 1 is mute */
	static uint8_t big[T_BIG_VALUE_BYTES];
	for (uint32_t i = 0; i < T_BIG_VALUE_BYTES; i++)
		big[i] = big_byte(i);
	table_set((const uint8_t *)T_BIG_KEY, sizeof T_BIG_KEY - 1, big, T_BIG_VALUE_BYTES);
	return 0;
}

/* One burst of the server's port, on the EAL's interrupt thread (an
 * eventfd that stays readable calls it again at once). */
static void srv_poll(void *arg)
{
	(void)arg;
	static bool pinned;
	if (!pinned) { /* to the lcore's CPU, which sleeps: EAL put this thread on the client's */
		rte_cpuset_t cpus = rte_lcore_cpuset(rte_get_main_lcore());
		pinned = pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus) == 0;
	}
	struct rte_mbuf *pkts[S_RX_BURST];
	uint16_t n = rte_eth_rx_burst(srv.port, 0, pkts, S_RX_BURST);
	for (uint16_t i = 0; i < n; i++)
		srv_rx(pkts[i]);
}

/* The child: serve until SIGTERM (or the parent's death); it says
 * T_SERVER_READY once its port is up. */
static int srv_main(void *arg)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGTERM, on_term);
	if (srv_init(arg) != 0) {
		printf("memif server: start-up failed\n");
		return 1;
	}
	/* The port is polled on the EAL's interrupt thread, the thread that runs
	 * memif's control channel. DPDK 22.11's memif PMD unmaps a departed
	 * client's regions there (memif_disconnect) without waiting for an
	 * lcore that is inside rte_eth_rx_burst: polled from this thread
	 * instead, a burst and a disconnect never overlap. (CI saw the server
	 * die of SEGV in eth_memif_rx under ASan as the client restarted its
	 * port; pomaid's workers have the same exposure: docs/operations.md.) */
	int efd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC); /* readable for good */
	struct rte_intr_handle *ih = rte_intr_instance_alloc(RTE_INTR_INSTANCE_F_PRIVATE);
	if (efd < 0 || !ih || rte_intr_fd_set(ih, efd) != 0 ||
	    rte_intr_type_set(ih, RTE_INTR_HANDLE_EXT) != 0 ||
	    rte_intr_callback_register(ih, srv_poll, NULL) != 0) {
		printf("memif server: no interrupt-thread callback\n");
		return 1;
	}
	printf(T_SERVER_READY "\n");
	fflush(stdout);
	sigset_t term;
	sigemptyset(&term);
	while (!srv_quit)
		sigsuspend(&term);
	/* Exit without rte_eth_dev_stop: stopping a memif server whose client
	 * has left logs "EAL: Error: Invalid memory" (DPDK 22.11). */
	return 0;
}

/* ---------------------------------------------------------------- parent: helpers */

static char client_args[T_ARGS_BYTES];


static enum pm_client_status open_memif(uint32_t shards, uint32_t timeout_ms, uint32_t retries,
					bool fixed_mac, struct pm_client **out, const char **why)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.host = T_SERVER_IP;
	cfg.base_port = T_BASE_PORT;
	cfg.shards = shards;
	cfg.timeout_ms = timeout_ms;
	cfg.retries = retries;
	struct pm_client_memif m;
	pm_client_memif_default(&m);
	m.eal_args = client_args;
	m.port = "net_memif0";
	m.local_ip = T_CLIENT_IP "/24";
	m.mtu = T_MTU;
	m.has_peer_mac = fixed_mac;
	memcpy(m.peer_mac, server_mac, 6);
	return pm_client_memif_open(&cfg, &m, out, why);
}

/* open_memif() for a client whose budget to connect (timeout_ms x (1 +
 * retries) for the link and the server's ARP reply) is short by design: on a
 * loaded machine the server may answer later than that, which says nothing of
 * what the test checks with the client. Tried again, for at most
 * T_OPEN_WAIT_MS (a failed open leaves the port stopped). */
static enum pm_client_status open_memif_short(uint32_t shards, uint32_t timeout_ms,
					      uint32_t retries, struct pm_client **out,
					      const char **why)
{
	enum pm_client_status st;
	uint64_t t0 = proc_now_ms();
	while ((st = open_memif(shards, timeout_ms, retries, false, out, why)) ==
		       PM_CLIENT_E_CONNECTION &&
	       proc_now_ms() - t0 < T_OPEN_WAIT_MS)
		;
	if (st != PM_CLIENT_OK)
		printf("\n  memif open (%u ms x %u): %s: %s", timeout_ms, 1 + retries,
		       pm_client_status_name(st), *why);
	return st;
}

static struct pm_client_memif_stats mstats(struct pm_client *c)
{
	struct pm_client_memif_stats st;
	pm_client_memif_stats(c, &st);
	return st;
}

static void fill(uint8_t *p, uint32_t n, uint32_t seed)
{
	for (uint32_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7u + seed);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------- tests */

static void test_config(void)
{
	struct pm_client_memif m;
	const char *why = NULL;
	pm_client_memif_default(&m);
	CU_ASSERT_EQUAL(pm_client_memif_check(&m, &why), PM_CLIENT_E_CONFIG); /* no local_ip */
	m.local_ip = "10.0.0.1";
	CU_ASSERT_EQUAL(pm_client_memif_check(&m, &why), PM_CLIENT_OK);
	m.local_ip = "10.0.0.1/33";
	CU_ASSERT_EQUAL(pm_client_memif_check(&m, &why), PM_CLIENT_E_CONFIG);
	m.local_ip = "10.0.0.1/24";
	m.mtu = 100;
	CU_ASSERT_EQUAL(pm_client_memif_check(&m, &why), PM_CLIENT_E_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "mtu"));
	m.mtu = 0;
	m.has_peer_mac = true;
	m.peer_mac[0] = 1; /* multicast */
	CU_ASSERT_EQUAL(pm_client_memif_check(&m, &why), PM_CLIENT_E_CONFIG);
	/* libpomai alone refuses memif; the port is taken by C. */
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.transport = PM_CLIENT_MEMIF;
	struct pm_client *c = (struct pm_client *)&cfg; /* any non-NULL: open must clear it */
	CU_ASSERT_EQUAL(pm_client_open(&cfg, &c), PM_CLIENT_E_CONFIG);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(open_memif(1, T_TIMEOUT_MS, 0, false, &c, &why), PM_CLIENT_E_CONNECTION);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "in use"));
	struct pm_client_memif_stats st;
	pm_client_memif_stats(NULL, &st);
	CU_ASSERT_EQUAL(st.tx_packets, 0);
}

static void test_set_get(void)
{
	char buf[64];
	size_t n = 0;
	CU_ASSERT(mstats(C).arp_sent >= 1);
	CU_ASSERT(S->arp_answered >= 1);
	CU_ASSERT_EQUAL(pm_client_set(C, "hello", 5, "world", 5, 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_get(C, "hello", 5, buf, sizeof buf, &n), PM_CLIENT_OK);
	CU_ASSERT(n == 5 && memcmp(buf, "world", 5) == 0);
	CU_ASSERT_EQUAL(pm_client_get(C, "nope", 4, buf, sizeof buf, &n), PM_CLIENT_NOT_FOUND);
	CU_ASSERT_EQUAL(pm_client_del(C, "hello", 5, NULL), PM_CLIENT_E_PARAM); /* server's answer */
}

/* issue 20: the client leaves the UDP checksum out on memif (0, "none");
 * this server sends one, which the client checks and does not count as
 * missing. */
static void test_no_udp_checksum(void)
{
	char buf[64];
	size_t n = 0;
	uint64_t none = S->udp_no_csum;
	CU_ASSERT_EQUAL(pm_client_get(C, "hello", 5, buf, sizeof buf, &n), PM_CLIENT_OK);
	CU_ASSERT(S->udp_no_csum > none);
	CU_ASSERT_EQUAL(S->udp_csum, 0);
	CU_ASSERT_EQUAL(mstats(C).rx_no_csum, 0);
	CU_ASSERT_EQUAL(mstats(C).rx_drops[PM_NET_DROP_UDP_CKSUM], 0);
}

/* Round trips of a small GET, one at a time: the latency the suite reports. */
static void test_latency(void)
{
	static uint64_t ns[T_LATENCY_N];
	char buf[64];
	size_t n;
	uint64_t sum = 0;
	for (uint32_t i = 0; i < T_WARMUP_N; i++)
		CU_ASSERT_EQUAL_FATAL(pm_client_get(C, "hello", 5, buf, sizeof buf, &n), PM_CLIENT_OK);
	for (uint32_t i = 0; i < T_LATENCY_N; i++) {
		uint64_t t0 = proc_now_ns();
		enum pm_client_status st = pm_client_get(C, "hello", 5, buf, sizeof buf, &n);
		ns[i] = proc_now_ns() - t0;
		sum += ns[i];
		if (st != PM_CLIENT_OK) {
			CU_FAIL("GET failed");
			return;
		}
	}
	qsort(ns, T_LATENCY_N, sizeof ns[0], cmp_u64);
	printf("\n  memif round trip, sync GET (%u): mean %.1f us, p50 %.1f us, p99 %.1f us, "
	       "max %.1f us\n", T_LATENCY_N, (double)sum / T_LATENCY_N / 1e3,
	       (double)ns[T_LATENCY_N / 2] / 1e3, (double)ns[T_LATENCY_N * 99 / 100] / 1e3,
	       (double)ns[T_LATENCY_N - 1] / 1e3);
	/* The server ARPed us at its first datagram: we answered. */
	CU_ASSERT(mstats(C).arp_answered >= 1);
	CU_ASSERT(S->arp_replies_seen >= 1);
}

/* A request of 7 fragments (reassembled by DPDK in the server) and its
 * value back in a reply of 7 (reassembled by the client). */
static void test_fragmented_request(void)
{
	static uint8_t val[T_MID_VALUE_BYTES], got[T_MID_VALUE_BYTES];
	fill(val, sizeof val, 3);
	struct pm_client_memif_stats a = mstats(C);
	uint64_t reasm = S->reassembled;
	CU_ASSERT_EQUAL(pm_client_set(C, "mid", 3, val, sizeof val, 0), PM_CLIENT_OK);
	struct pm_client_memif_stats b = mstats(C);
	CU_ASSERT_EQUAL(b.frags_out - a.frags_out, 7);
	CU_ASSERT_EQUAL(S->reassembled - reasm, 1);
	size_t n = 0;
	CU_ASSERT_EQUAL(pm_client_get(C, "mid", 3, got, sizeof got, &n), PM_CLIENT_OK);
	CU_ASSERT(n == sizeof val && memcmp(got, val, n) == 0);
	struct pm_client_memif_stats c = mstats(C);
	CU_ASSERT_EQUAL(c.frags_in - b.frags_in, 7);
	CU_ASSERT_EQUAL(c.reassembled - b.reassembled, 1);
}

/* A 60 KB value: a reply of 41 fragments from rte_ipv4_fragment_packet. */
static void test_large_reply(void)
{
	static uint8_t got[PM_CLIENT_VALUE_BYTES_MAX];
	struct pm_client_memif_stats a = mstats(C);
	size_t n = 0;
	CU_ASSERT_EQUAL(pm_client_get(C, T_BIG_KEY, sizeof T_BIG_KEY - 1, got, sizeof got, &n),
			PM_CLIENT_OK);
	CU_ASSERT_EQUAL(n, T_BIG_VALUE_BYTES);
	uint32_t bad = 0;
	for (uint32_t i = 0; i < n; i++)
		bad += got[i] != big_byte(i);
	CU_ASSERT_EQUAL(bad, 0);
	struct pm_client_memif_stats b = mstats(C);
	CU_ASSERT_EQUAL(b.frags_in - a.frags_in, 41);
	CU_ASSERT_EQUAL(b.reassembled - a.reassembled, 1);
	CU_ASSERT_EQUAL(b.reasm_dropped, 0);
}

static uint32_t pipe_ok;

static void on_done(void *arg, const struct pm_client_result *r)
{
	(void)arg;
	pipe_ok += r->status == PM_CLIENT_OK;
}

/* Pipelined SETs then GETs: several frames per datagram, every reply checked. */
static void test_pipelined(void)
{
	struct pm_client_stats a, b;
	pm_client_stats(C, &a);
	char key[32], val[16];
	pipe_ok = 0;
	for (uint32_t i = 0; i < T_PIPELINE_N; i++) {
		int kl = snprintf(key, sizeof key, "p:%u", i);
		fill((uint8_t *)val, sizeof val, i);
		struct pm_client_req q = { .op = PM_CLIENT_SET, .key = key, .klen = (uint32_t)kl,
					   .value = val, .vlen = sizeof val, .cb = on_done };
		CU_ASSERT_EQUAL_FATAL(pm_client_submit(C, &q, NULL), PM_CLIENT_OK);
	}
	pm_client_drain(C);
	CU_ASSERT_EQUAL(pipe_ok, T_PIPELINE_N);
	pm_client_stats(C, &b);
	CU_ASSERT(b.frames_out - a.frames_out >= T_PIPELINE_N);
	CU_ASSERT(b.datagrams_out - a.datagrams_out < (b.frames_out - a.frames_out) / 4u);
	uint32_t wrong = 0;
	for (uint32_t i = 0; i < T_PIPELINE_N; i += 7) {
		char got[16];
		size_t n = 0;
		int kl = snprintf(key, sizeof key, "p:%u", i);
		fill((uint8_t *)val, sizeof val, i);
		wrong += pm_client_get(C, key, (size_t)kl, got, sizeof got, &n) != PM_CLIENT_OK ||
			 n != sizeof val || memcmp(got, val, n) != 0;
	}
	CU_ASSERT_EQUAL(wrong, 0);
	CU_ASSERT_EQUAL(b.resends, 0);
}

/* A key of shard 1, whose port the server does not serve. */
static uint32_t mute_key(struct pm_client *c, char *key, size_t cap)
{
	for (uint32_t i = 0;; i++) {
		int kl = snprintf(key, cap, "mute:%u", i);
		if (pm_client_shard_of(c, key, (size_t)kl) == 1)
			return (uint32_t)kl;
	}
}

/* While busy polling, pm_client_poll honours wait_ms and a request times out
 * on the back-off schedule: 20 ms + 40 ms (+ up to 25 % jitter). */
static void test_wait_and_timeout(void)
{
	pm_client_close(C);
	C = NULL;
	struct pm_client *c = NULL;
	const char *why = NULL;
	CU_ASSERT_EQUAL_FATAL(open_memif_short(2, T_SHORT_TIMEOUT_MS, 1, &c, &why), PM_CLIENT_OK);
	char key[32], buf[16];
	uint32_t kl = mute_key(c, key, sizeof key);
	uint64_t drops = S->drops[PM_NET_DROP_UDP_PORT];
	size_t n;
	uint64_t t0 = proc_now_ns();
	CU_ASSERT_EQUAL(pm_client_get(c, key, kl, buf, sizeof buf, &n), PM_CLIENT_E_TIMEOUT);
	double ms = (double)(proc_now_ns() - t0) / 1e6;
	CU_ASSERT(ms >= 55.0 && ms < 1000.0);
	CU_ASSERT_EQUAL(S->drops[PM_NET_DROP_UDP_PORT] - drops, 2);
	pm_client_close(c);
	CU_ASSERT_EQUAL_FATAL(open_memif_short(2, T_TIMEOUT_MS, 0, &c, &why), PM_CLIENT_OK);
	struct pm_client_req q = { .op = PM_CLIENT_GET, .key = key, .klen = kl };
	CU_ASSERT_EQUAL(pm_client_submit(c, &q, NULL), PM_CLIENT_OK);
	t0 = proc_now_ns();
	CU_ASSERT_EQUAL(pm_client_poll(c, 30), 0);
	ms = (double)(proc_now_ns() - t0) / 1e6;
	CU_ASSERT(ms >= 29.0 && ms < 200.0);
	CU_ASSERT_EQUAL(pm_client_in_flight(c), 1);
	pm_client_close(c); /* drops the request */
}

/* A configured peer MAC: no ARP; the port restarts and reconnects. */
static void test_fixed_mac(void)
{
	const char *why = NULL;
	CU_ASSERT_EQUAL_FATAL(open_memif(1, T_TIMEOUT_MS, 3, true, &C, &why), PM_CLIENT_OK);
	char buf[16];
	size_t n = 0;
	CU_ASSERT_EQUAL(pm_client_set(C, "fixed", 5, "mac", 3, 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_get(C, "fixed", 5, buf, sizeof buf, &n), PM_CLIENT_OK);
	CU_ASSERT(n == 3 && memcmp(buf, "mac", 3) == 0);
	struct pm_client_memif_stats st = mstats(C);
	CU_ASSERT_EQUAL(st.arp_sent, 0);
	CU_ASSERT_EQUAL(st.tx_dropped, 0);
	CU_ASSERT_EQUAL(st.rx_dropped, 0);
	/* The server's front end found nothing wrong with any frame we sent. */
	for (uint32_t r = 0; r < PM_NET_DROP_REASONS; r++)
		if (r != PM_NET_DROP_UDP_PORT && S->drops[r]) {
			printf("\n  server dropped %" PRIu64 " frames: %s\n", S->drops[r],
			       pm_net_drop_name((enum pm_net_drop)r));
			CU_FAIL("server drops");
		}
}

static CU_TestInfo tests[] = {
	{ "configuration checks", test_config },
	{ "ARP, SET and GET", test_set_get },
	{ "no UDP checksum sent, the server's checked", test_no_udp_checksum },
	{ "round-trip latency", test_latency },
	{ "request above the MTU (7 fragments)", test_fragmented_request },
	{ "reply of 60 KB (41 fragments)", test_large_reply },
	{ "pipelined requests share datagrams", test_pipelined },
	{ "poll's wait bound and a timeout, busy polling", test_wait_and_timeout },
	{ "configured peer MAC, port restarted", test_fixed_mac },
	CU_TEST_INFO_NULL,
};

/* ---------------------------------------------------------------- main */

static int cannot_run(const char *what)
{
	return pm_cu_cannot_run("test_memif", what, NULL);
}

/* Two CPUs we may run on: the server spins on one, the client on the other. */
static void pick_cpus(int *srv_cpu, int *cli_cpu)
{
	cpu_set_t set;
	*srv_cpu = *cli_cpu = 0;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return;
	int found = 0;
	for (int i = 0; i < CPU_SETSIZE && found < 2; i++)
		if (CPU_ISSET(i, &set))
			*(found++ == 0 ? srv_cpu : cli_cpu) = i;
	if (found == 1)
		*cli_cpu = *srv_cpu;
}

static int start_server(int cpu)
{
	static char args[T_ARGS_BYTES];
	snprintf(args, sizeof args,
		 "-l %d " T_EAL_COMMON " --file-prefix=pomai-memif-s%d "
		 "--vdev=net_memif0,role=server,socket=%s,socket-abstract=no,mac=" T_SERVER_MAC,
		 cpu, (int)getpid(), sockpath);
	proc_init(&server, "memif server");
	server.ready = T_SERVER_READY;
	server.ready_ms = T_READY_MS;
	return proc_start_fn(&server, srv_main, args) ? 0 : -1;
}

static void stop_server(void)
{
	proc_stop(&server, SIGTERM, PROC_EXIT_WAIT_MS);
	unlink(sockpath);
	rmdir(tmpdir);
}

/* --no-shconf leaves each EAL's runtime directory empty: remove both. */
static void remove_runtime_dirs(void)
{
	char dir[256];
	snprintf(dir, sizeof dir, "%s", rte_eal_get_runtime_dir());
	(void)rmdir(dir);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		return;
	snprintf(slash + 1, sizeof dir - (size_t)(slash + 1 - dir), "pomai-memif-s%d", (int)getpid());
	(void)rmdir(dir);
}

int main(void)
{
	if (geteuid() != 0)
		return cannot_run("DPDK's EAL and memif need root");
	S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/pomai-memif-XXXXXX");
	if (S == MAP_FAILED || mkdtemp(tmpdir) == NULL)
		return cannot_run("no shared memory or temporary directory");
	snprintf(sockpath, sizeof sockpath, "%s/memif.sock", tmpdir);
	int srv_cpu, cli_cpu;
	pick_cpus(&srv_cpu, &cli_cpu);
	snprintf(client_args, sizeof client_args,
		 "-l %d " T_EAL_COMMON " --file-prefix=pomai-memif-c%d "
		 "--vdev=net_memif0,role=client,socket=%s,socket-abstract=no,mac=" T_CLIENT_MAC,
		 cli_cpu, (int)getpid(), sockpath);
	if (start_server(srv_cpu) != 0) {
		stop_server();
		return cannot_run("the memif server (EAL, memif PMD) did not start");
	}
	const char *why = NULL;
	enum pm_client_status st = open_memif(1, T_TIMEOUT_MS, 3, false, &C, &why);
	if (st != PM_CLIENT_OK) {
		stop_server();
		fprintf(stderr, "test_memif: pm_client_memif_open: %s: %s\n", pm_client_status_name(st),
			why);
		/* Only the EAL's refusal is the machine's; anything else is a bug. */
		return why && strstr(why, "rte_eal_init") ? cannot_run("the client's EAL did not start")
							  : 1;
	}
	int rc = pm_cu_run("memif", tests);
	pm_client_close(C);
	stop_server();
	remove_runtime_dirs();
	return rc;
}
