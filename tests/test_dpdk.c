/* SPDX-License-Identifier: MIT
 *
 * test_dpdk.c — the DPDK suite: pomaid (argv[1]) with backend = dpdk on DPDK's
 * net_tap driver (--no-huge --no-pci), inside a network namespace this test
 * creates (unshare(CLONE_NEWNET)): every packet stays in that namespace. The
 * tap interface gets 10.77.0.1/24 on the kernel side; pomaid serves
 * 10.77.0.2 with two shards on two queues. Through libpomai's UDP client:
 * ARP resolved for real (the kernel's neighbour table holds pomaid's MAC), KV
 * and vector ops, KNN fan-out against a brute-force answer, a request and a
 * reply larger than the MTU (IP fragments both ways), one beyond the
 * reassembly bound (dropped, counted). Raw frames from an AF_PACKET socket:
 * bad IP/UDP headers and checksums, truncated frames, martian sources, other
 * protocols and ports, each dropped and counted under its reason while the
 * daemon keeps serving; a source outside allow_networks dropped and counted. Ping. Steering: both queues receive, and the
 * backend's per-queue counters agree with the device's.
 *
 * Runs as root with /dev/net/tun (CI); exits 77 elsewhere. The daemon is
 * waited for by its ready line, never by sleeping.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin_proto.h"
#include "auth.h"
#include "bridge.h"
#include "cu_main.h"
#include "libclient.h"
#include "netfe.h"
#include "netns.h"
#include "auth.h"
#include "pomai.h"
#include "pomai_memif.h"
#include "proc.h"
#include "users.h"

#define IFACE "pmtap0"
#define HOST_IP "10.77.0.1"
#define POMAI_IP "10.77.0.2"
/* The memif link: pomaid is its server, a child of this test its client. */
#define MEMIF_POMAI_IP "10.88.0.2"
#define MEMIF_CLIENT_IP "10.88.0.1"
#define MEMIF_POMAI_MAC "02:00:00:00:88:02"
#define MEMIF_CLIENT_MAC "02:00:00:00:88:01"
#define BASE_PORT 7700u
#define SHARDS 2u
#define REPLY_TIMEOUT_MS 2000
/* How long a counter another worker bumps may take to reach its value. */
#define INFO_WAIT_MS 10000
/* The memif client child: its own EAL's start-up and its round trips, under
 * ASan on a loaded machine (it fails rather than hang). */
#define MEMIF_CLIENT_WAIT_MS 120000
/* Largest request pomaid reassembles: 8 fragments of an MTU of 1500. */
#define REASM_PAYLOAD_MAX (8u * 1480u - 8u)

static const char *pomaid_path;
static const char *cli_path; /* pomai-cli (argv[2]) */
static struct proc dmn;
static uint8_t pomai_mac[6];
static struct pm_client *cli;
static char conf_path[64];
static char memif_sock[64];

/* ---------------------------------------------------------------- set-up */

/* The config file the daemon starts from: backend = dpdk from a file. */
static int write_config(void)
{
	snprintf(conf_path, sizeof(conf_path), "/tmp/pomai-dpdk-%d.conf", (int)getpid());
	snprintf(memif_sock, sizeof(memif_sock), "/tmp/pomai-dpdk-%d.sock", (int)getpid());
	FILE *f = fopen(conf_path, "w");
	if (!f)
		return -1;
	/* two ports: the tap (port 0) and a memif server (port 1) */
	fprintf(f, "backend = dpdk\n"
		   "dpdk_eal_args = --no-pci --no-huge -m 512 --vdev=net_tap0,iface=" IFACE
		   " --vdev=net_memif0,role=server,socket=%s,socket-abstract=no,mac=" MEMIF_POMAI_MAC
		   " --file-prefix=pmtest%d --log-level=lib.eal:error\n"
		   "dpdk_addrs = " POMAI_IP "/24," MEMIF_POMAI_IP "/24\n"
		   "shards = %u\nbase_port = %u\ntcp_port = 0\narena_bytes = 64M\nseeds = 65536\n"
		   "hugepages = no\ndata_dir = /tmp/pomai-dpdk-test-%d\nknn_timeout_ms = 2000\n"
		   "dpdk_mbufs = 8191\n"
		   /* the allowlist: the host, the memif peer and the far peer of
		    * test_arp_resolve; 10.77.0.128/25 is on the subnet but not allowed */
		   "allow_networks = 10.77.0.0/25,10.88.0.0/24,10.99.0.0/16\n",
		   memif_sock, (int)getpid(), SHARDS, BASE_PORT, (int)getpid());
	return fclose(f);
}

static bool parse_mac(const char *line)
{
	const char *p = strstr(line, POMAI_IP " ");
	unsigned m[6];
	if (!p || sscanf(p + strlen(POMAI_IP " "), "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3],
			 &m[4], &m[5]) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		pomai_mac[i] = (uint8_t)m[i];
	return true;
}

/* pomaid from the config file; its MAC from the lines before its ready line. */
static bool start_daemon(void)
{
	proc_init(&dmn, pomaid_path);
	proc_args(&dmn, (const char *const[]){ "--config", conf_path, NULL });
	dmn.ready = POMAID_READY_LINE;
	bool ok = proc_start(&dmn);
	printf("\n  %s", dmn.out);
	return ok && parse_mac(dmn.out);
}

/* A UDP client of the daemon on the tap. */
static struct pm_client *open_client(uint32_t timeout_ms, uint32_t retries)
{
	struct pm_client_config cfg;
	struct pm_client *c = NULL;
	pm_client_config_default(&cfg);
	cfg.host = POMAI_IP;
	cfg.base_port = BASE_PORT;
	cfg.shards = SHARDS;
	cfg.timeout_ms = timeout_ms;
	cfg.retries = retries;
	return pm_client_open(&cfg, &c) == PM_CLIENT_OK ? c : NULL;
}

/* ---------------------------------------------------------------- auth (issue 19) */

/* A user of the daemon (its users file, written before it starts). */
#define AUTH_USER 7u
static uint8_t auth_key[PM_AUTH_USER_KEY_BYTES], auth_mac[PM_AUTH_MAC_KEY_BYTES];

static int write_users(void)
{
	char dir[64], path[96], hex[2 * PM_AUTH_MAC_KEY_BYTES + 1];
	snprintf(dir, sizeof(dir), "/tmp/pomai-dpdk-test-%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/users", dir);
	if (pm_auth_init() != 0 || (mkdir(dir, 0700) != 0 && errno != EEXIST))
		return -1;
	pm_auth_random(auth_key, sizeof(auth_key));
	pm_auth_derive(auth_key, auth_mac);
	pm_auth_hex(auth_mac, sizeof(auth_mac), hex);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	int n = dprintf(fd, "%u dpdkuser read,write %s\n", AUTH_USER, hex);
	close(fd);
	return n > 0 ? 0 : -1;
}

static int suite_init(void)
{
	if (write_config() != 0 || write_users() != 0 || !start_daemon())
		return -1;
	char path[96];
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", IFACE);
	pm_ns_write_file(path, "1"); /* no router solicitations or MLD reports in the counters */
	if (pm_ns_iface_addr(IFACE, HOST_IP, "255.255.255.0") != 0 || pm_ns_iface_up(IFACE) != 0)
		return -1;
	cli = open_client(REPLY_TIMEOUT_MS, 2);
	return cli ? 0 : -1;
}

static int suite_clean(void)
{
	if (cli)
		pm_client_close(cli);
	proc_stop(&dmn, SIGTERM, PROC_EXIT_WAIT_MS);
	unlink(conf_path);
	unlink(memif_sock);
	char dir[64];
	snprintf(dir, sizeof(dir), "/tmp/pomai-dpdk-test-%d", (int)getpid());
	proc_dir_remove(dir);
	snprintf(dir, sizeof(dir), "/tmp/pomai-dpdk-bounds-%d", (int)getpid());
	proc_dir_remove(dir);
	return 0;
}

/* ---------------------------------------------------------------- helpers */

/* A numeric field of the INFO "Total" section (the first occurrence). */
static long long info_field(const char *name)
{
	return lib_info(cli, "dataplane", NULL, name);
}

/* A counter another worker may still be about to bump (it counts on its own
 * turn, and INFO's parts travel other rings): asked again, for at most
 * INFO_WAIT_MS, until it reaches want. Its last value. */
static long long info_reaches(const char *name, long long want)
{
	return lib_info_until(cli, "dataplane", name, want, INFO_WAIT_MS);
}

static void drop_field(const char *reason, char *out, size_t n)
{
	snprintf(out, n, "dpdk_p0_drop_%s", reason);
}

/* ---------------------------------------------------------------- tests */

static void test_arp_and_kv(void)
{
	char v[64];
	size_t vlen = 0;
	CU_ASSERT_EQUAL_FATAL(pm_client_set(cli, "alpha", 5, "one", 3, 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_get(cli, "alpha", 5, v, sizeof(v), &vlen), PM_CLIENT_OK);
	CU_ASSERT(vlen == 3 && memcmp(v, "one", 3) == 0);
	bool removed = false;
	CU_ASSERT_EQUAL(pm_client_del(cli, "alpha", 5, &removed), PM_CLIENT_OK);
	CU_ASSERT(removed);
	CU_ASSERT_EQUAL(pm_client_get(cli, "alpha", 5, v, sizeof(v), &vlen), PM_CLIENT_NOT_FOUND);
	for (int i = 0; i < 200; i++) { /* keys on both shards */
		char k[16], val[16];
		int kl = snprintf(k, sizeof(k), "k%d", i), vl = snprintf(val, sizeof(val), "v%d", i);
		CU_ASSERT_EQUAL(pm_client_set(cli, k, (size_t)kl, val, (size_t)vl, 0), PM_CLIENT_OK);
	}
	for (int i = 0; i < 200; i++) {
		char k[16], val[16];
		int kl = snprintf(k, sizeof(k), "k%d", i), vl = snprintf(val, sizeof(val), "v%d", i);
		CU_ASSERT_EQUAL(pm_client_get(cli, k, (size_t)kl, v, sizeof(v), &vlen), PM_CLIENT_OK);
		CU_ASSERT(vlen == (size_t)vl && memcmp(v, val, vlen) == 0);
	}
	/* the kernel resolved 10.77.0.2 by ARP, and got pomaid's MAC */
	FILE *f = fopen("/proc/net/arp", "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	char line[256], mac[32];
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", pomai_mac[0], pomai_mac[1],
		 pomai_mac[2], pomai_mac[3], pomai_mac[4], pomai_mac[5]);
	bool found = false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, POMAI_IP " ", strlen(POMAI_IP " ")) && strstr(line, " 0x2 ") &&
		    strstr(line, mac))
			found = true;
	fclose(f);
	CU_ASSERT(found);
	CU_ASSERT(info_field("dpdk_p0_arp_answered") >= 1);
	CU_ASSERT(info_field("dpdk_p0_arp_learned") >= 1);
}

static uint16_t icmp_sum(const void *p, size_t n)
{
	return (uint16_t)~pm_net_fold(pm_net_sum(p, (uint32_t)n, 0));
}

static void test_ping(void)
{
	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	CU_ASSERT_FATAL(fd >= 0);
	uint8_t req[64] = { ICMP_ECHO, 0 }, buf[256];
	req[4] = 0x12, req[5] = 0x34, req[7] = 7; /* id 0x1234, seq 7 */
	for (size_t i = 8; i < sizeof(req); i++)
		req[i] = (uint8_t)i;
	uint16_t s = icmp_sum(req, sizeof(req));
	memcpy(req + 2, &s, 2);
	struct sockaddr_in to = { .sin_family = AF_INET };
	inet_pton(AF_INET, POMAI_IP, &to.sin_addr);
	CU_ASSERT_EQUAL(sendto(fd, req, sizeof(req), 0, (struct sockaddr *)&to, sizeof(to)),
			(ssize_t)sizeof(req));
	struct pollfd p = { .fd = fd, .events = POLLIN };
	bool answered = false;
	while (!answered && poll(&p, 1, REPLY_TIMEOUT_MS) == 1) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 20)
			break;
		uint32_t ihl = (buf[0] & 0xfu) * 4u;
		const uint8_t *icmp = buf + ihl;
		answered = (size_t)n == ihl + sizeof(req) && icmp[0] == ICMP_ECHOREPLY &&
			   !memcmp(icmp + 4, req + 4, sizeof(req) - 4) && icmp_sum(icmp, sizeof(req)) == 0;
	}
	close(fd);
	CU_ASSERT(answered);
	CU_ASSERT(info_field("dpdk_p0_icmp_answered") >= 1);
}

#define VDIM 16u
#define NVEC 300u
#define KNN_K 10u

/* The KNN_K nearest of n vectors of VDIM to q by L2, brute force, into idx. */
static void brute_knn(const float (*vecs)[VDIM], uint32_t n, const float *q, uint32_t *idx)
{
	float best[KNN_K];
	uint32_t nb = 0;
	for (uint32_t i = 0; i < n; i++) {
		float dd = 0;
		for (uint32_t d = 0; d < VDIM; d++)
			dd += (vecs[i][d] - q[d]) * (vecs[i][d] - q[d]);
		uint32_t j = nb < KNN_K ? nb++ : KNN_K;
		for (; j > 0 && best[j - 1] > dd; j--)
			if (j < KNN_K)
				best[j] = best[j - 1], idx[j] = idx[j - 1];
		if (j < KNN_K)
			best[j] = dd, idx[j] = i;
	}
}

static void random_vectors(float (*vecs)[VDIM], uint32_t n, uint64_t seed)
{
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t d = 0; d < VDIM; d++)
			vecs[i][d] = (float)(pm_test_rand(&seed) % 10000) / 100.0f;
}

/* KNN through client c equals brute force: the hits are prefix + index. */
static bool knn_matches(struct pm_client *c, const float (*vecs)[VDIM], uint32_t n,
			const char *prefix, uint32_t qi, const char *collection)
{
	uint32_t bi[KNN_K];
	brute_knn(vecs, n, vecs[qi], bi);
	struct pm_client_hit hits[KNN_K];
	static uint8_t keys[PM_CLIENT_KNN_KEY_BYTES_MAX];
	struct pm_client_knn_result res = { .hits = hits, .hits_cap = KNN_K, .keys = keys,
					    .keys_cap = sizeof(keys) };
	struct pm_client_knn_opts o = { .k = KNN_K, .exact = true, .collection = collection };
	if (pm_client_knn(c, vecs[qi], VDIM, &o, &res) != PM_CLIENT_OK || res.count != KNN_K)
		return false;
	for (uint32_t i = 0; i < KNN_K; i++) {
		char k[32];
		int kl = snprintf(k, sizeof(k), "%s%u", prefix, bi[i]);
		if (hits[i].klen != (uint32_t)kl || memcmp(hits[i].key, k, (size_t)kl))
			return false;
	}
	return true;
}

static void test_vectors_knn(void)
{
	static float vecs[NVEC][VDIM];
	random_vectors(vecs, NVEC, 42);
	for (uint32_t i = 0; i < NVEC; i++) {
		char k[16];
		int kl = snprintf(k, sizeof(k), "vec%u", i);
		CU_ASSERT_EQUAL(pm_client_vadd(cli, k, (size_t)kl, vecs[i], VDIM, NULL, 0), PM_CLIENT_OK);
	}
	float back[VDIM];
	struct pm_client_vector out = { .vec = back, .cap = VDIM };
	CU_ASSERT_EQUAL(pm_client_vget(cli, "vec7", 4, &out), PM_CLIENT_OK);
	CU_ASSERT(memcmp(back, vecs[7], sizeof(back)) == 0);
	/* exact KNN across both shards == brute force here */
	CU_ASSERT(knn_matches(cli, (const float (*)[VDIM])vecs, NVEC, "vec", 3, NULL));
	bool removed = false;
	CU_ASSERT_EQUAL(pm_client_vdel(cli, "vec7", 4, &removed), PM_CLIENT_OK);
	CU_ASSERT(removed);
}

#define BIG_DIM 1024u /* a 4 KiB vector: its frame is three IP fragments */

static void test_fragments(void)
{
	static float v[BIG_DIM], back[BIG_DIM];
	for (uint32_t i = 0; i < BIG_DIM; i++)
		v[i] = (float)i * 0.25f - 100.0f;
	long long in0 = info_field("dpdk_p0_reassembled"), out0 = info_field("dpdk_p0_frags_out");
	CU_ASSERT_EQUAL_FATAL(pm_client_vadd(cli, "bigvec", 6, v, BIG_DIM, NULL, 0), PM_CLIENT_OK);
	struct pm_client_vector out = { .vec = back, .cap = BIG_DIM };
	CU_ASSERT_EQUAL_FATAL(pm_client_vget(cli, "bigvec", 6, &out), PM_CLIENT_OK);
	CU_ASSERT(memcmp(v, back, sizeof(v)) == 0);
	/* a value just under the reassembly bound, and its read back */
	/* (the datagram also carries libpomai's 48-byte COOKIE frame, issue 19) */
	static uint8_t val[REASM_PAYLOAD_MAX - 64 - PM_COOKIE_FRAME_BYTES], got[REASM_PAYLOAD_MAX];
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (uint8_t)(i * 7u);
	size_t glen = 0;
	CU_ASSERT_EQUAL(pm_client_set(cli, "bigval", 6, val, sizeof(val), 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_get(cli, "bigval", 6, got, sizeof(got), &glen), PM_CLIENT_OK);
	CU_ASSERT(glen == sizeof(val) && memcmp(got, val, glen) == 0);
	CU_ASSERT(info_field("dpdk_p0_reassembled") >= in0 + 2);
	CU_ASSERT(info_field("dpdk_p0_frags_out") >= out0 + 3 + 8);
}

/* A request past the reassembly bound (more than 8 fragments) is dropped and
 * counted; the client times out; the daemon keeps serving. */
static void test_reassembly_bound(void)
{
	struct pm_client *c = open_client(300, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	static uint8_t val[REASM_PAYLOAD_MAX + 4096];
	memset(val, 0xab, sizeof(val));
	long long before = info_field("dpdk_p0_drop_frag");
	CU_ASSERT_EQUAL(pm_client_set(c, "toolong", 7, val, sizeof(val), 0), PM_CLIENT_E_TIMEOUT);
	pm_client_close(c);
	CU_ASSERT(info_reaches("dpdk_p0_drop_frag", before + 1) >= before + 1);
	char v[16];
	size_t vlen;
	CU_ASSERT_EQUAL(pm_client_get(cli, "toolong", 7, v, sizeof(v), &vlen), PM_CLIENT_NOT_FOUND);
	CU_ASSERT_EQUAL(pm_client_set(cli, "after", 5, "ok", 2, 0), PM_CLIENT_OK);
}

/* ---------------------------------------------------------------- bad packets */

struct rawctx {
	int fd;               /* AF_PACKET on the tap */
	struct sockaddr_ll to;
	struct pm_net_local host; /* the kernel side, for the builders */
	uint8_t good[256];
	uint32_t good_len, ip_off;
};

/* A valid GET request frame from src_ip (the host's MAC) to shard 0. */
static void raw_open(struct rawctx *r, const char *src_ip, uint16_t sport)
{
	r->fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	CU_ASSERT_FATAL(r->fd >= 0);
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", IFACE);
	CU_ASSERT_FATAL(pm_ns_ifreq_ioctl(SIOCGIFINDEX, &ifr) == 0);
	r->to = (struct sockaddr_ll){ .sll_family = AF_PACKET, .sll_ifindex = ifr.ifr_ifindex,
				      .sll_halen = 6 };
	memcpy(r->to.sll_addr, pomai_mac, 6);
	CU_ASSERT_FATAL(pm_ns_ifreq_ioctl(SIOCGIFHWADDR, &ifr) == 0);
	memset(&r->host, 0, sizeof(r->host));
	memcpy(r->host.mac, ifr.ifr_hwaddr.sa_data, 6);
	inet_pton(AF_INET, src_ip, &r->host.ip_be);
	inet_pton(AF_INET, "255.255.255.0", &r->host.mask_be);
	uint8_t frame[PM_FRAME_HEADER_BYTES + 16];
	struct pm_request req = { .op = PM_OP_GET, .id = 99, .key = { (const uint8_t *)"k1", 2 } };
	uint32_t flen = (uint32_t)pm_request_encode(&req, frame, sizeof(frame));
	CU_ASSERT_FATAL(flen > 0);
	uint32_t dst;
	inet_pton(AF_INET, POMAI_IP, &dst);
	r->ip_off = pm_net_eth_write(&r->host, pomai_mac, 0x0800, r->good);
	memcpy(r->good + r->ip_off + 28, frame, flen);
	pm_net_ipv4_udp_write(&r->host, dst, sport, BASE_PORT, 1, r->good + r->ip_off, flen);
	r->good_len = r->ip_off + 28 + flen;
}

static void raw_send(struct rawctx *r, const uint8_t *f, uint32_t len)
{
	CU_ASSERT_EQUAL(sendto(r->fd, f, len, 0, (struct sockaddr *)&r->to, sizeof(r->to)),
			(ssize_t)len);
}

/* Rewrite the IP header checksum of frame f after a change. */
static void fix_ip_sum(struct rawctx *r, uint8_t *f)
{
	uint8_t *ip = f + r->ip_off;
	ip[10] = ip[11] = 0;
	uint16_t s = (uint16_t)~pm_net_fold(pm_net_sum(ip, (ip[0] & 0xfu) * 4u, 0));
	memcpy(ip + 10, &s, 2);
}

struct bad_case {
	const char *reason;
	int which;
};

/* Mutate the good frame into bad case `which`; the length to send. */
static uint32_t make_bad(struct rawctx *r, int which, uint8_t *f)
{
	memcpy(f, r->good, r->good_len);
	uint8_t *ip = f + r->ip_off, *udp = ip + 20;
	uint32_t len = r->good_len;
	switch (which) {
	case 0: ip[10] ^= 0x5a; break;                                  /* ip_cksum */
	case 1: udp[6] ^= 0x5a; if (!udp[6] && !udp[7]) udp[7] = 1; break; /* udp_cksum */
	case 2: ip[0] = 0x44; fix_ip_sum(r, f); break;                  /* IHL 4: ip header */
	case 3: ip[0] = 0x65; fix_ip_sum(r, f); break;                  /* version 6 */
	case 4: ip[3] = (uint8_t)(ip[3] + 40); fix_ip_sum(r, f); break;  /* total > frame */
	case 5: len = r->ip_off + 10; break;                             /* truncated header */
	case 6: ip[12] = 127; ip[13] = 0; ip[14] = 0; ip[15] = 1; fix_ip_sum(r, f); break; /* src */
	case 7: ip[9] = 47; fix_ip_sum(r, f); break;                     /* GRE: protocol */
	case 8: udp[2] = (uint8_t)((BASE_PORT + 50) >> 8); udp[3] = (uint8_t)(BASE_PORT + 50);
		udp[6] = udp[7] = 0; break;                                /* port (no checksum) */
	case 9: udp[5] = (uint8_t)(udp[5] + 3); udp[6] = udp[7] = 0; break; /* udp length */
	case 10: f[12] = 0x86; f[13] = 0xdd; break;                      /* IPv6 ethertype */
	case 11: ip[16] = 10; ip[17] = 77; ip[18] = 0; ip[19] = 9; fix_ip_sum(r, f); break; /* dst */
	}
	return len;
}

static void test_bad_packets(void)
{
	static const struct bad_case cases[] = {
		{ "ip_cksum", 0 }, { "udp_cksum", 1 }, { "ip_header", 2 }, { "ip_header", 3 },
		{ "ip_header", 4 }, { "short", 5 }, { "ip_src", 6 }, { "ip_proto", 7 },
		{ "udp_port", 8 }, { "udp_header", 9 }, { "ethertype", 10 }, { "ip_dst", 11 },
	};
	struct rawctx r;
	int rx = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(40001) };
	inet_pton(AF_INET, HOST_IP, &me.sin_addr);
	CU_ASSERT_FATAL(bind(rx, (struct sockaddr *)&me, sizeof(me)) == 0);
	raw_open(&r, HOST_IP, 40001);
	uint8_t f[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char field[64];
		drop_field(cases[i].reason, field, sizeof(field));
		long long before = info_field(field);
		raw_send(&r, f, make_bad(&r, cases[i].which, f));
		long long after = info_reaches(field, before + 1);
		if (after != before + 1)
			printf("\n  case %d (%s): %lld -> %lld", cases[i].which, field, before, after);
		CU_ASSERT_EQUAL(after, before + 1);
	}
	/* the untouched frame is served: its reply comes back to our socket */
	raw_send(&r, r.good, r.good_len);
	struct pollfd p = { .fd = rx, .events = POLLIN };
	uint8_t buf[512];
	CU_ASSERT_FATAL(poll(&p, 1, REPLY_TIMEOUT_MS) == 1);
	ssize_t n = recv(rx, buf, sizeof(buf), 0);
	struct pm_reply_view rv;
	size_t used = 0;
	CU_ASSERT(n > 0 && pm_reply_decode(buf, (size_t)n, &rv, &used) == PM_WIRE_OK && rv.id == 99);
	close(r.fd);
	close(rx);
	CU_ASSERT_EQUAL(pm_client_set(cli, "still", 5, "serving", 7, 0), PM_CLIENT_OK);
}

/* A reply to a peer pomaid has never heard an ARP from: it asks (ARP request),
 * holds the reply, and sends it when the answer comes. A peer off the subnet
 * with no gateway configured: dropped as no_route. */
static void test_arp_resolve(void)
{
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s:1", IFACE); /* a second address on the tap */
	struct sockaddr_in *a = (struct sockaddr_in *)&ifr.ifr_addr;
	a->sin_family = AF_INET;
	inet_pton(AF_INET, "10.77.0.50", &a->sin_addr);
	CU_ASSERT_FATAL(pm_ns_ifreq_ioctl(SIOCSIFADDR, &ifr) == 0);
	int rx = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(40002) };
	inet_pton(AF_INET, "10.77.0.50", &me.sin_addr);
	CU_ASSERT_FATAL(bind(rx, (struct sockaddr *)&me, sizeof(me)) == 0);
	long long asked = info_field("dpdk_p0_arp_asked");
	struct rawctx r;
	raw_open(&r, "10.77.0.50", 40002);
	raw_send(&r, r.good, r.good_len);
	struct pollfd p = { .fd = rx, .events = POLLIN };
	uint8_t buf[512];
	struct pm_reply_view rv;
	size_t used = 0;
	CU_ASSERT_FATAL(poll(&p, 1, REPLY_TIMEOUT_MS) == 1);
	ssize_t n = recv(rx, buf, sizeof(buf), 0);
	CU_ASSERT(n > 0 && pm_reply_decode(buf, (size_t)n, &rv, &used) == PM_WIRE_OK && rv.id == 99);
	CU_ASSERT(info_field("dpdk_p0_arp_asked") >= asked + 1);
	close(r.fd);
	close(rx);
	long long none = info_field("dpdk_p0_drop_no_route");
	raw_open(&r, "10.99.0.5", 40003);
	raw_send(&r, r.good, r.good_len);
	long long now = info_reaches("dpdk_p0_drop_no_route", none + 1);
	if (now != none + 1)
		printf("\n  no_route %lld -> %lld", none, now);
	CU_ASSERT_EQUAL(now, none + 1);
	close(r.fd);
}

/* A datagram from an address on the port's subnet but outside allow_networks:
 * the front end passes it, the worker drops it before decoding and counts it;
 * the allowed host is still served. */
static void test_allowlist(void)
{
	long long before = info_field("dropped_not_allowed");
	struct rawctx r;
	raw_open(&r, "10.77.0.200", 40005);
	raw_send(&r, r.good, r.good_len);
	long long after = info_reaches("dropped_not_allowed", before + 1);
	CU_ASSERT_EQUAL(after, before + 1);
	close(r.fd);
	CU_ASSERT_EQUAL(pm_client_set(cli, "allowed", 7, "yes", 3, 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(info_field("dropped_not_allowed"), before + 1);
}

/* ---------------------------------------------------------------- auth */

/* CONFIG SET key value on the daemon's admin socket: true when it answered OK. */
static bool config_set(const char *key, const char *value)
{
	static uint8_t buf[PM_ADMIN_BUFFER_BYTES];
	char sock[96];
	snprintf(sock, sizeof(sock), "/tmp/pomai-dpdk-test-%d/admin.sock", (int)getpid());
	const char *argv[] = { "CONFIG", "SET", key, value };
	int fd = pm_admin_connect(sock);
	uint8_t status = 0xff;
	const char *text;
	size_t tlen;
	bool ok = fd >= 0 && pm_admin_call(fd, 4, argv, buf, sizeof(buf), INFO_WAIT_MS, &status,
					   &text, &tlen) == 0 && status == PM_ADMIN_OK;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* A GET signed as the user for shard 0's port (or `port`), seq given. */
static size_t signed_get(uint64_t id, uint64_t seq, uint16_t port, const uint8_t *mac,
			 uint8_t *out, size_t cap)
{
	struct pm_request g = { .op = PM_OP_GET, .id = id, .key = { (const uint8_t *)"auth", 4 } };
	size_t n = pm_request_encode(&g, out, cap);
	struct pm_auth_trailer t = { .user = AUTH_USER, .session = 0xd0d0, .seq = seq,
				     .time_s = (uint32_t)time(NULL), .port = port };
	return n ? pm_auth_append(out, n, cap, &t, mac) : 0;
}

/* Send a datagram from a kernel socket in the namespace; the reply to id. */
static bool udp_exchange(int fd, const uint8_t *p, size_t n, uint64_t id,
			 struct pm_reply_view *rv)
{
	static uint8_t in[PM_FRAME_BYTES_MAX];
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(BASE_PORT) };
	inet_pton(AF_INET, POMAI_IP, &to.sin_addr);
	if (sendto(fd, p, n, 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)n)
		return false;
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	size_t used;
	while (poll(&pf, 1, REPLY_TIMEOUT_MS) == 1) {
		ssize_t r = recv(fd, in, sizeof(in), 0);
		/* every frame of the datagram (replies are packed, issue 20) */
		for (size_t at = 0; r > 0 && at < (size_t)r &&
				    pm_reply_decode(in + at, (size_t)r - at, rv, &used) == PM_WIRE_OK;
		     at += used)
			if (rv->id == id)
				return true;
	}
	return false;
}

/* Over the DPDK backend: the trailer's port is the datagram's destination
 * port; a wrong key, a replay, a reordered pair, a seq below the window; a
 * libpomai client with the user; auth = on: no user refused; all counted. */
static void test_auth(void)
{
	uint8_t f[256], other[PM_AUTH_MAC_KEY_BYTES] = { 1 };
	struct pm_reply_view rv;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(fd >= 0);
	long long replays = info_field("auth_refused_replay"), bad = info_field("auth_refused_bad");
	/* The same bytes three times. This suite's port has two queues steered
	 * by RSS, and the tap device may put one flow's datagrams on either:
	 * each worker keeps its own replay table (docs/security.md, "Limit"),
	 * so a captured frame is executed at most once per worker — here at most
	 * twice of three, and at least one is refused REPLAY. The window itself
	 * (reordering, below it) is test_auth's, over UDP ports of one worker. */
	size_t n = signed_get(1, 10, BASE_PORT, auth_mac, f, sizeof(f));
	uint32_t executed = 0, refused = 0;
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_FATAL(udp_exchange(fd, f, n, 1, &rv));
		executed += rv.status == PM_WIRE_NOT_FOUND;
		refused += rv.status == PM_WIRE_E_AUTH && rv.auth_reason == PM_AUTH_R_REPLAY;
	}
	printf("\n  the same signed GET three times: executed %u, refused as a replay %u", executed,
	       refused);
	CU_ASSERT(executed >= 1 && executed <= 2);
	CU_ASSERT_EQUAL(executed + refused, 3);
	n = signed_get(5, 500, BASE_PORT, other, f, sizeof(f)); /* a wrong key */
	CU_ASSERT_FATAL(udp_exchange(fd, f, n, 5, &rv));
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_BAD);
	n = signed_get(6, 501, BASE_PORT + 1, auth_mac, f, sizeof(f)); /* shard 1's port */
	CU_ASSERT_FATAL(udp_exchange(fd, f, n, 6, &rv));
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_BAD);
	CU_ASSERT(info_reaches("auth_refused_replay", replays + refused) >= replays + refused);
	CU_ASSERT(info_reaches("auth_refused_bad", bad + 2) >= bad + 2);
	/* libpomai as the user; then auth = on: the anonymous client is refused */
	struct pm_client_config cfg;
	struct pm_client *uc = NULL;
	pm_client_config_default(&cfg);
	cfg.host = POMAI_IP;
	cfg.base_port = BASE_PORT;
	cfg.shards = SHARDS;
	cfg.timeout_ms = REPLY_TIMEOUT_MS;
	cfg.user = AUTH_USER;
	memcpy(cfg.key, auth_key, sizeof(cfg.key));
	CU_ASSERT_EQUAL_FATAL(pm_client_open(&cfg, &uc), PM_CLIENT_OK);
	long long required = info_field("auth_refused_required");
	CU_ASSERT_FATAL(config_set("auth", "on"));
	char v[8];
	size_t vlen;
	CU_ASSERT_EQUAL(pm_client_set(uc, "auth", 4, "yes", 3, 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_get(uc, "auth", 4, v, sizeof(v), &vlen), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_get(cli, "auth", 4, v, sizeof(v), &vlen), PM_CLIENT_E_AUTH);
	CU_ASSERT_FATAL(config_set("auth", "off")); /* the other tests' client has no user */
	CU_ASSERT(info_reaches("auth_refused_required", required + 1) >= required + 1);
	close(fd);
	pm_client_close(uc);
}

/* ---------------------------------------------------------------- steering */

static void test_two_queues(void)
{
	CU_ASSERT_EQUAL(info_field("dpdk_p0_queues"), 2);
	/* many flows (source ports): the device spreads them over both queues */
	for (int i = 0; i < 64; i++) {
		struct pm_client *c = open_client(REPLY_TIMEOUT_MS, 2);
		CU_ASSERT_PTR_NOT_NULL_FATAL(c);
		char k[16];
		int kl = snprintf(k, sizeof(k), "flow%d", i);
		CU_ASSERT_EQUAL(pm_client_set(c, k, (size_t)kl, "x", 1, 0), PM_CLIENT_OK);
		pm_client_close(c);
	}
	long long q0 = info_field("dpdk_p0_q0_rx_pkts"), q1 = info_field("dpdk_p0_q1_rx_pkts");
	long long d0 = info_field("dpdk_p0_dev_q0_ipackets"), d1 = info_field("dpdk_p0_dev_q1_ipackets");
	printf("\n  queue 0: %lld packets (device %lld), queue 1: %lld (device %lld)", q0, d0, q1, d1);
	CU_ASSERT(q0 > 0 && q1 > 0);
	CU_ASSERT(d0 >= q0 && d1 >= q1); /* the device counted at least what the workers saw */
	CU_ASSERT(d0 > 0 && d1 > 0);
}

/* ---------------------------------------------------------------- start-up bounds */

/* Run pomaid (path) with extra flags; its exit status and the start of its stderr. */
static int run_pomaid_at(const char *path, char *err, size_t cap, const char *const *extra)
{
	static struct proc p;
	proc_init(&p, path);
	/* its own data_dir: the suite's daemon holds the lock on its own */
	proc_args(&p, (const char *const[]){ "--config", conf_path, "--data-dir", NULL });
	proc_argf(&p, "/tmp/pomai-dpdk-bounds-%d", (int)getpid());
	proc_args(&p, extra);
	p.capture = PROC_CAPTURE_STDERR;
	return proc_run(&p, NULL, err, cap, 0);
}

static int run_pomaid(char *err, size_t cap, const char *const *extra)
{
	return run_pomaid_at(pomaid_path, err, cap, extra);
}

/* A copy of pomaid without its DPDK module beside it (pomaid-dpdk.so, loaded
 * for backend = dpdk only: dataplane/dpdk_load.c) refuses backend = dpdk at
 * start-up and says where it looked. */
static void module_missing(const char *eal)
{
	static char err[8192];
	char dir[64], copy[96], cmd[256];
	snprintf(dir, sizeof(dir), "/tmp/pomai-nomodule-%d", (int)getpid());
	snprintf(copy, sizeof(copy), "%s/pomaid", dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && cp %s %s", dir, pomaid_path, copy);
	CU_ASSERT_FATAL(system(cmd) == 0);
	const char *args[] = { "--dpdk-eal-args", eal, "--dpdk-addrs", "10.99.0.2/24", NULL };
	CU_ASSERT_NOT_EQUAL(run_pomaid_at(copy, err, sizeof(err), args), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "the DPDK module could not be loaded"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/pomai-nomodule-")); /* the path beside it, tried */
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CU_ASSERT(system(cmd) == 0);
}

/* A packet pool too small for the rings and reassembly: refused at start-up,
 * with a message naming the key; and an EAL flag that is pomaid's to set. */
static void test_startup_bounds(void)
{
	static char err[8192];
	char prefix[160];
	snprintf(prefix, sizeof(prefix), "--no-pci --no-huge -m 256 --vdev=net_tap1,iface=pmtap9"
		 " --file-prefix=pmtestb%d", (int)getpid());
	const char *small[] = { "--dpdk-eal-args", prefix, "--dpdk-addrs", "10.99.0.2/24",
				"--dpdk-mbufs", "2047", NULL };
	CU_ASSERT_NOT_EQUAL(run_pomaid(err, sizeof(err), small), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "dpdk_mbufs = 2047 is too few"));
	const char *lcores[] = { "--dpdk-eal-args", "--no-huge -l 0", NULL };
	CU_ASSERT_NOT_EQUAL(run_pomaid(err, sizeof(err), lcores), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "'-l' is pomaid's to set"));
	const char *addrs[] = { "--dpdk-eal-args", prefix, "--dpdk-addrs", "10.99.0.2/24,10.98.0.2/24",
				NULL };
	CU_ASSERT_NOT_EQUAL(run_pomaid(err, sizeof(err), addrs), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "found 1 port(s) but dpdk_addrs gives 2"));
	module_missing(prefix);
	CU_ASSERT_EQUAL(pm_client_set(cli, "alive", 5, "yes", 3, 0), PM_CLIENT_OK);
}

/* ---------------------------------------------------------------- memif */

#define MEMIF_KEYS 100u
#define MEMIF_NVEC 200u

/* The memif client's part, in a child process (its own EAL): KV and KNN round
 * trips; NULL, or what failed. */
static const char *memif_client(void)
{
	static char eal[512];
	snprintf(eal, sizeof(eal), "-l 0 --no-huge --no-pci -m 256 --no-shconf --file-prefix=pmtestc%d"
		 " --log-level=lib.eal:error --vdev=net_memif0,role=client,socket=%s,"
		 "socket-abstract=no,mac=" MEMIF_CLIENT_MAC, (int)getpid(), memif_sock);
	struct pm_client_config cfg;
	struct pm_client_memif m;
	struct pm_client *c;
	const char *why = NULL;
	pm_client_config_default(&cfg);
	cfg.host = MEMIF_POMAI_IP;
	cfg.base_port = BASE_PORT;
	cfg.shards = SHARDS;
	cfg.timeout_ms = REPLY_TIMEOUT_MS;
	pm_client_memif_default(&m);
	m.eal_args = eal;
	m.local_ip = MEMIF_CLIENT_IP "/24";
	if (pm_client_memif_open(&cfg, &m, &c, &why) != PM_CLIENT_OK)
		return why ? why : "memif open";
	for (uint32_t i = 0; i < MEMIF_KEYS; i++) { /* keys of both shards */
		char k[16], v[16], got[16];
		size_t gl = 0;
		int kl = snprintf(k, sizeof(k), "mk%u", i), vl = snprintf(v, sizeof(v), "mv%u", i);
		if (pm_client_set(c, k, (size_t)kl, v, (size_t)vl, 0) != PM_CLIENT_OK)
			return "SET over memif";
		if (pm_client_get(c, k, (size_t)kl, got, sizeof(got), &gl) != PM_CLIENT_OK ||
		    gl != (size_t)vl || memcmp(got, v, gl))
			return "GET over memif";
	}
	/* issue 20: pomaid leaves the UDP checksum out on memif (netfe.h) */
	struct pm_client_memif_stats ms;
	pm_client_memif_stats(c, &ms);
	if (ms.rx_no_csum < MEMIF_KEYS)
		return "pomaid's datagrams over memif carry a UDP checksum";
	static float vecs[MEMIF_NVEC][VDIM];
	random_vectors(vecs, MEMIF_NVEC, 7);
	struct pm_client_coll_params cp = { .dim = VDIM, .metric = PM_CLIENT_L2 };
	if (pm_client_collection_create(c, "memifc", &cp) != PM_CLIENT_OK)
		return "collection create over memif";
	for (uint32_t i = 0; i < MEMIF_NVEC; i++) {
		char k[16];
		int kl = snprintf(k, sizeof(k), "mvec%u", i);
		if (pm_client_vadd(c, k, (size_t)kl, vecs[i], VDIM, "memifc", 0) != PM_CLIENT_OK)
			return "VADD over memif";
	}
	if (!knn_matches(c, (const float (*)[VDIM])vecs, MEMIF_NVEC, "mvec", 11, "memifc"))
		return "KNN over memif differs from brute force";
	/* issue 19: its first write was answered RETRY; it took the cookie and
	 * every later datagram carried it (the writes were executed) */
	struct pm_client_stats cs;
	pm_client_stats(c, &cs);
	if (cs.cookies < 1)
		return "memif client did not validate with a cookie";
	pm_client_close(c);
	/* issue 19: libpomai_memif signs too — the user's GET is served, a
	 * wrong key's refused (a trailer is checked with auth = off as well) */
	for (int wrong = 0; wrong < 2; wrong++) {
		char got[16];
		size_t gl = 0;
		cfg.user = AUTH_USER;
		memcpy(cfg.key, auth_key, sizeof(cfg.key));
		cfg.key[0] ^= (uint8_t)wrong;
		if (pm_client_memif_open(&cfg, &m, &c, &why) != PM_CLIENT_OK)
			return why ? why : "memif open with a user";
		enum pm_client_status st = pm_client_get(c, "mk1", 3, got, sizeof(got), &gl);
		pm_client_close(c);
		if (st != (wrong ? PM_CLIENT_E_AUTH : PM_CLIENT_OK))
			return wrong ? "a wrong key over memif was not refused" : "signed GET over memif";
	}
	return NULL;
}

/* The child: memif_client(), its failure on stderr. */
static int memif_child(void *arg)
{
	(void)arg;
	const char *err = memif_client();
	if (err)
		fprintf(stderr, "memif client: %s\n", err);
	return err ? 1 : 0;
}

static void test_memif(void)
{
	static struct proc child;
	long long rx0 = info_field("dpdk_p1_rx_pkts"), fwd0 = info_field("forwarded_out");
	long long val0 = info_field("guard_validated");
	CU_ASSERT_EQUAL(info_field("dpdk_p1_queues"), 1); /* memif: one ring pair, steering single */
	proc_init(&child, "memif client");
	CU_ASSERT_FATAL(proc_start_fn(&child, memif_child, NULL));
	if (!proc_wait(&child, MEMIF_CLIENT_WAIT_MS))
		proc_stop(&child, SIGKILL, PROC_EXIT_WAIT_MS);
	CU_ASSERT(proc_exited_ok(&child));
	CU_ASSERT(info_field("dpdk_p1_rx_pkts") >= rx0 + (long long)(2 * MEMIF_KEYS + MEMIF_NVEC));
	/* one queue, two shards: the frames of shard 1 went through the rings */
	CU_ASSERT(info_field("forwarded_out") > fwd0);
	CU_ASSERT(info_field("guard_validated") > val0); /* its datagrams carried the cookie */
}

/* pomai-cli --memif (issue 21) on the memif link, as the memif client child's
 * end (its address and MAC): ARGS, `input` on its stdin (NULL: none); its
 * output in out, its exit code. */
static int memif_cli(const char *input, const char *const *args, char *out, size_t cap)
{
	static struct proc p;
	proc_init(&p, cli_path);
	proc_args(&p, (const char *const[]){ "--memif", memif_sock, "--memif-ip",
					     MEMIF_CLIENT_IP "/24", "--memif-mac", MEMIF_CLIENT_MAC,
					     "--host", MEMIF_POMAI_IP, NULL });
	proc_arg(&p, "--port");
	proc_argf(&p, "%u", BASE_PORT);
	proc_arg(&p, "--timeout");
	proc_argf(&p, "%d", REPLY_TIMEOUT_MS);
	proc_args(&p, args);
	proc_env(&p, "POMAI_SHARDS="); /* the count learnt over the link */
	p.stdin_pipe = input != NULL;
	p.capture = PROC_CAPTURE_STDOUT; /* what it says on stderr goes to the test's */
	int rc = proc_run(&p, input, out, cap, MEMIF_CLIENT_WAIT_MS);
	if (rc != 0)
		printf("\n  pomai-cli --memif: exit %d:\n%s\n", rc, out);
	return rc;
}

static void test_memif_cli(void)
{
	static char out[PROC_OUT_BYTES];
	char got[32];
	size_t gl = 0;
	long long rx0 = info_field("dpdk_p1_rx_pkts");
	CU_ASSERT_FATAL(cli_path != NULL);
	CU_ASSERT_EQUAL(memif_cli(NULL, (const char *const[]){ "set", "mcli", "over memif", NULL },
				  out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "OK\n");
	CU_ASSERT_EQUAL(memif_cli(NULL, (const char *const[]){ "get", "mcli", NULL }, out,
				  sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "over memif");
	/* what it set is the daemon's: read over the tap */
	CU_ASSERT_EQUAL(pm_client_get(cli, "mcli", 4, got, sizeof(got), &gl), PM_CLIENT_OK);
	CU_ASSERT(gl == 10 && memcmp(got, "over memif", 10) == 0);
	/* the prompt's commands, piped, over the same link */
	CU_ASSERT_EQUAL(memif_cli("set mcli2 'two words'\nget mcli2\ndel mcli\n",
				  (const char *const[]){ NULL }, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "OK\ntwo words\n1\n");
	CU_ASSERT(info_field("dpdk_p1_rx_pkts") >= rx0 + 5); /* through the memif port */
	/* without its address: a usage error, nothing opened */
	CU_ASSERT_EQUAL(memif_cli(NULL, (const char *const[]){ "--memif-ip", "", "get", "x",
							       NULL }, out, sizeof(out)), 2);
}

int main(int argc, char **argv)
{
	pomaid_path = argc > 1 ? argv[1] : "./dataplane/pomaid";
	cli_path = argc > 2 ? argv[2] : NULL;
	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0) {
		printf("test_dpdk: needs root and /dev/net/tun: skipped\n");
		return PM_TEST_SKIP;
	}
	if (unshare(CLONE_NEWNET) != 0) {
		printf("test_dpdk: cannot create a network namespace (%s): skipped\n",
		       strerror(errno));
		return PM_TEST_SKIP;
	}
	if (pm_ns_iface_up("lo") != 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	static CU_TestInfo tests[] = {
		{ "ARP resolved, KV round trips", test_arp_and_kv },
		{ "ping", test_ping },
		{ "vectors, KNN fan-out == brute force", test_vectors_knn },
		{ "fragmented requests and replies", test_fragments },
		{ "request beyond the reassembly bound", test_reassembly_bound },
		{ "bad packets dropped and counted", test_bad_packets },
		{ "ARP: peers resolved for replies; no route dropped", test_arp_resolve },
		{ "allowlist: a source outside allow_networks dropped and counted", test_allowlist },
		{ "two queues: steering by per-queue counters", test_two_queues },
		{ "memif: KV, KNN and a user's signed GET through libpomai_memif", test_memif },
		{ "pomai-cli --memif: commands and the prompt over the memif port", test_memif_cli },
		{ "auth: signed frames, replays, wrong key and port, auth = on", test_auth },
		{ "start-up refuses a small pool, lcore flags, missing addresses, no module",
		  test_startup_bounds },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run_suite("dpdk", suite_init, suite_clean, tests);
}
