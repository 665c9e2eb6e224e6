/* SPDX-License-Identifier: MIT
 *
 * test_netfe.c — the L2/L3 front end: frames written by the builders parse
 * back (UDP with and without VLAN, ARP request -> answer, ICMP echo -> reply),
 * every drop reason has a frame that triggers exactly it, truncated and
 * mutated frames never classify as what they are not and never read out of
 * bounds (each parse gets an exact-size heap copy, so the ASan build catches
 * overreads), the checksum matches simple references at every alignment, and
 * the ARP table learns, expires, evicts, rate-limits requests and never hands
 * a reader a torn entry while a writer rewrites it.
 *
 * Checksums are verified with an independent reference (network-order byte
 * pairs), not with pm_net_sum.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "netfe.h"

#define ETHERTYPE_IPV4 0x0800u
#define ETHERTYPE_ARP 0x0806u
#define ETHERTYPE_IPV6 0x86ddu
#define ETHERTYPE_VLAN 0x8100u
#define IP_PROTO_ICMP 1u
#define IP_PROTO_TCP 6u
#define IP_PROTO_UDP 17u
#define IP_PROTO_GRE 47u
#define IP_FLAG_DF 0x4000u
#define IP_FLAG_MF 0x2000u
#define ICMP_ECHO_REQUEST 8u
#define ICMP_ECHO_REPLY 0u
#define ICMP_TIMESTAMP 13u

#define SRV_PORT_LO 9000u
#define SRV_PORT_HI 9007u
#define CLI_PORT 40000u
#define TEST_VLAN 100u
#define PAYLOAD_BYTES 100u
#define FRAME_BUF_BYTES 2048u
#define FUZZ_ROUNDS 100000u
#define SUM_LEN_MAX 300u
#define SUM_ALIGN_MAX 8u
#define T0_MS 10000u

static bool seen[PM_NET_DROP_REASONS]; /* drop reasons some test triggered */

static uint32_t ip4(uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
	return htonl(a << 24 | b << 16 | c << 8 | d);
}

static struct pm_net_local local_of(uint8_t host, uint16_t vlan, uint16_t lo, uint16_t hi)
{
	struct pm_net_local l = {
		.mac = { 0x02, 0, 0, 0, 0, host },
		.vlan = vlan,
		.ip_be = ip4(10, 0, 0, host),
		.mask_be = ip4(255, 255, 255, 0),
		.gateway_be = ip4(10, 0, 0, 254),
		.port_lo = lo,
		.port_hi = hi,
	};
	return l;
}

static struct pm_net_local srv_of(uint16_t vlan)
{
	return local_of(1, vlan, SRV_PORT_LO, SRV_PORT_HI);
}

static struct pm_net_local cli_of(uint16_t vlan)
{
	return local_of(2, vlan, CLI_PORT, CLI_PORT);
}

/* ---------------------------------------------------------------- references */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t fold_ref(uint64_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

/* Network-order words, one at a time. */
static uint32_t sum_be(const uint8_t *p, uint32_t n, uint64_t s)
{
	for (uint32_t i = 0; i + 1 < n; i += 2)
		s += get16(p + i);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return fold_ref(s);
}

/* Host-order words, one at a time: what pm_net_sum must equal exactly. */
static uint32_t sum_native(const uint8_t *p, uint32_t n, uint32_t init)
{
	uint64_t s = init;
	for (uint32_t i = 0; i + 1 < n; i += 2) {
		uint16_t w;
		memcpy(&w, p + i, 2);
		s += w;
	}
	if (n & 1) {
		uint8_t last[2] = { p[n - 1], 0 };
		uint16_t w;
		memcpy(&w, last, 2);
		s += w;
	}
	return fold_ref(s);
}

static uint32_t pseudo_be(const uint8_t *ip, uint32_t udp_len)
{
	return sum_be(ip + 12, 8, IP_PROTO_UDP + udp_len);
}

static bool ip_csum_ok(const uint8_t *ip)
{
	return sum_be(ip, (ip[0] & 0xfu) * 4u, 0) == 0xffff;
}

static bool udp_csum_ok(const uint8_t *ip)
{
	uint32_t ihl = (ip[0] & 0xfu) * 4u, n = get16(ip + 2) - ihl;
	return sum_be(ip + ihl, n, pseudo_be(ip, n)) == 0xffff;
}

static void fix_ip(uint8_t *ip)
{
	put16(ip + 10, 0);
	put16(ip + 10, ~sum_be(ip, (ip[0] & 0xfu) * 4u, 0) & 0xffff);
}

static void fix_udp(uint8_t *ip)
{
	uint32_t ihl = (ip[0] & 0xfu) * 4u, n = get16(ip + 2) - ihl;
	uint8_t *u = ip + ihl;
	put16(u + 6, 0);
	uint32_t c = ~sum_be(u, n, pseudo_be(ip, n)) & 0xffff;
	put16(u + 6, c ? c : 0xffff);
}

/* ---------------------------------------------------------------- frames */

static void fill(uint8_t *p, uint32_t n, uint32_t seed)
{
	for (uint32_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7u + seed);
}

/* A UDP frame from -> to with plen payload bytes; its length. */
static uint32_t udp_frame(const struct pm_net_local *from, const struct pm_net_local *to,
			  uint16_t dport, uint32_t plen, uint8_t *out)
{
	uint32_t l2 = pm_net_l2_bytes(from);
	fill(out + l2 + 28, plen, 3);
	CU_ASSERT_EQUAL(pm_net_eth_write(from, to->mac, ETHERTYPE_IPV4, out), l2);
	CU_ASSERT_EQUAL(pm_net_ipv4_udp_write(from, to->ip_be, CLI_PORT, dport, 0x1234, out + l2, plen),
			28);
	return l2 + 28 + plen;
}

/* An ICMP echo request from -> to with data_len bytes of data; its length. */
static uint32_t icmp_frame(const struct pm_net_local *from, const struct pm_net_local *to,
			   uint32_t data_len, uint8_t *out)
{
	uint32_t l2 = pm_net_eth_write(from, to->mac, ETHERTYPE_IPV4, out);
	uint8_t *ip = out + l2, *ic = ip + 20;
	memset(ip, 0, 28);
	ip[0] = 0x45;
	put16(ip + 2, 28 + data_len);
	put16(ip + 4, 77);
	put16(ip + 6, IP_FLAG_DF);
	ip[8] = 33;
	ip[9] = IP_PROTO_ICMP;
	memcpy(ip + 12, &from->ip_be, 4);
	memcpy(ip + 16, &to->ip_be, 4);
	fix_ip(ip);
	ic[0] = ICMP_ECHO_REQUEST;
	put16(ic + 4, 0x1234); /* id */
	put16(ic + 6, 7);      /* sequence */
	fill(ic + 8, data_len, 11);
	put16(ic + 2, ~sum_be(ic, 8 + data_len, 0) & 0xffff);
	return l2 + 28 + data_len;
}

/* Parse an exact-size heap copy of f[0..n) (overreads reach ASan). */
static enum pm_net_kind parse_copy(const struct pm_net_local *l, const uint8_t *f, uint32_t n,
				   uint32_t offload, struct pm_net_pkt *pkt)
{
	uint8_t *c = malloc(n ? n : 1);
	CU_ASSERT_FATAL(c != NULL);
	memcpy(c, f, n);
	enum pm_net_kind k = pm_net_parse(l, c, n, offload, pkt);
	free(c);
	CU_ASSERT((k == PM_NET_DROP) == (pkt->drop != PM_NET_DROP_NONE));
	CU_ASSERT(pkt->kind == k && (uint32_t)pkt->drop < PM_NET_DROP_REASONS);
	if (k == PM_NET_DROP)
		seen[pkt->drop] = true;
	return k;
}

static enum pm_net_kind parse_ipv4_copy(const struct pm_net_local *l, const uint8_t *ip, uint32_t n,
					struct pm_net_pkt *pkt)
{
	uint8_t *c = malloc(n ? n : 1);
	CU_ASSERT_FATAL(c != NULL);
	memcpy(c, ip, n);
	enum pm_net_kind k = pm_net_parse_ipv4(l, c, n, pkt);
	free(c);
	CU_ASSERT((k == PM_NET_DROP) == (pkt->drop != PM_NET_DROP_NONE));
	if (k == PM_NET_DROP)
		seen[pkt->drop] = true;
	return k;
}

#define EXPECT_DROP(l, f, n, ofl, why) expect_drop(l, f, n, ofl, why, __LINE__)
#define EXPECT_KIND(l, f, n, ofl, kind) expect_kind(l, f, n, ofl, kind, __LINE__)

static void expect_drop(const struct pm_net_local *l, const uint8_t *f, uint32_t n, uint32_t ofl,
			enum pm_net_drop why, int line)
{
	struct pm_net_pkt pkt;
	enum pm_net_kind k = parse_copy(l, f, n, ofl, &pkt);
	if (k != PM_NET_DROP || pkt.drop != why)
		printf("\n  line %d: kind %d drop %s, expected drop %s", line, k,
		       pm_net_drop_name(pkt.drop), pm_net_drop_name(why));
	CU_ASSERT(k == PM_NET_DROP && pkt.drop == why);
}

static void expect_kind(const struct pm_net_local *l, const uint8_t *f, uint32_t n, uint32_t ofl,
			enum pm_net_kind kind, int line)
{
	struct pm_net_pkt pkt;
	enum pm_net_kind k = parse_copy(l, f, n, ofl, &pkt);
	if (k != kind)
		printf("\n  line %d: kind %d drop %s, expected kind %d", line, k,
		       pm_net_drop_name(pkt.drop), kind);
	CU_ASSERT_EQUAL(k, kind);
}

/* ---------------------------------------------------------------- round trips */

static void check_udp_roundtrip(uint16_t vlan, uint32_t plen, uint16_t dport)
{
	struct pm_net_local srv = srv_of(vlan), cli = cli_of(vlan);
	static uint8_t f[FRAME_BUF_BYTES];
	uint32_t n = udp_frame(&cli, &srv, dport, plen, f), l2 = vlan ? 18 : 14;
	const uint8_t *ip = f + l2;
	CU_ASSERT_EQUAL(pm_net_l2_bytes(&cli), l2);
	CU_ASSERT_EQUAL(get16(f + 12), vlan ? ETHERTYPE_VLAN : ETHERTYPE_IPV4);
	if (vlan) {
		CU_ASSERT_EQUAL(get16(f + 14), vlan);
		CU_ASSERT_EQUAL(get16(f + 16), ETHERTYPE_IPV4);
	}
	CU_ASSERT(memcmp(f, srv.mac, 6) == 0 && memcmp(f + 6, cli.mac, 6) == 0);
	CU_ASSERT_EQUAL(ip[0], 0x45);
	CU_ASSERT_EQUAL(get16(ip + 2), 28 + plen);
	CU_ASSERT_EQUAL(get16(ip + 4), 0x1234);
	CU_ASSERT_EQUAL(get16(ip + 6), 0); /* DF clear, no fragment */
	CU_ASSERT_EQUAL(ip[8], PM_NET_TTL);
	CU_ASSERT_EQUAL(ip[9], IP_PROTO_UDP);
	CU_ASSERT(ip_csum_ok(ip));
	CU_ASSERT(udp_csum_ok(ip));
	CU_ASSERT(get16(ip + 26) != 0);
	struct pm_net_pkt pkt;
	CU_ASSERT_EQUAL_FATAL(parse_copy(&srv, f, n, 0, &pkt), PM_NET_UDP);
	CU_ASSERT_EQUAL(pkt.drop, PM_NET_DROP_NONE);
	CU_ASSERT_EQUAL(pkt.src_port, CLI_PORT);
	CU_ASSERT_EQUAL(pkt.dst_port, dport);
	CU_ASSERT_EQUAL(pkt.l3_off, l2);
	CU_ASSERT_EQUAL(pkt.l4_off, l2 + 20);
	CU_ASSERT_EQUAL(pkt.payload_off, l2 + 28);
	CU_ASSERT_EQUAL(pkt.payload_len, plen);
	CU_ASSERT_EQUAL(pkt.src_ip_be, cli.ip_be);
	CU_ASSERT(memcmp(pkt.src_mac, cli.mac, 6) == 0);
	uint8_t want[FRAME_BUF_BYTES];
	fill(want, plen, 3);
	CU_ASSERT(memcmp(f + pkt.payload_off, want, plen) == 0);
}

static void test_udp_roundtrip(void)
{
	check_udp_roundtrip(0, PAYLOAD_BYTES, SRV_PORT_LO + 1);
	check_udp_roundtrip(TEST_VLAN, PAYLOAD_BYTES, SRV_PORT_LO + 1);
	check_udp_roundtrip(0, 0, SRV_PORT_LO);                 /* empty payload, lowest port */
	check_udp_roundtrip(TEST_VLAN, 1, SRV_PORT_HI);         /* odd payload, highest port */
	check_udp_roundtrip(4094, 1471, SRV_PORT_HI);
	check_udp_roundtrip(0, 1472, SRV_PORT_LO);
}

/* Ethernet padding after the datagram, broadcast MAC, off-subnet source,
 * jumbo datagrams. */
static void test_udp_variants(void)
{
	struct pm_net_local srv = srv_of(0), cli = cli_of(0);
	static uint8_t f[FRAME_BUF_BYTES];
	struct pm_net_pkt pkt;
	uint32_t n = udp_frame(&cli, &srv, SRV_PORT_LO, 5, f); /* 47 bytes */
	memset(f + n, 0xa5, PM_NET_FRAME_BYTES_MIN - n);        /* padding, not zero */
	CU_ASSERT_EQUAL(parse_copy(&srv, f, PM_NET_FRAME_BYTES_MIN, 0, &pkt), PM_NET_UDP);
	CU_ASSERT_EQUAL(pkt.payload_len, 5);
	memset(f, 0xff, 6); /* broadcast destination MAC, our IP */
	EXPECT_KIND(&srv, f, n, 0, PM_NET_UDP);
	uint8_t *ip = f + 14;
	memcpy(ip + 12, &(uint32_t){ ip4(192, 168, 7, 7) }, 4); /* via the gateway */
	fix_ip(ip);
	fix_udp(ip);
	CU_ASSERT_EQUAL(parse_copy(&srv, f, n, 0, &pkt), PM_NET_UDP);
	CU_ASSERT_EQUAL(pkt.src_ip_be, ip4(192, 168, 7, 7));
	/* a /31 has no broadcast address: the peer is the "all ones" host */
	struct pm_net_local p0 = srv, p1 = cli;
	p0.ip_be = ip4(10, 0, 0, 4);
	p1.ip_be = ip4(10, 0, 0, 5);
	p0.mask_be = p1.mask_be = ip4(255, 255, 255, 254);
	n = udp_frame(&p1, &p0, SRV_PORT_LO, 8, f);
	EXPECT_KIND(&p0, f, n, 0, PM_NET_UDP);
	/* the largest datagram, without Ethernet, through pm_net_parse_ipv4 */
	uint8_t *big = malloc(28 + PM_NET_UDP_PAYLOAD_BYTES_MAX);
	CU_ASSERT_FATAL(big != NULL);
	fill(big + 28, PM_NET_UDP_PAYLOAD_BYTES_MAX, 9);
	pm_net_ipv4_udp_write(&cli, srv.ip_be, CLI_PORT, SRV_PORT_HI, 1, big, PM_NET_UDP_PAYLOAD_BYTES_MAX);
	CU_ASSERT(ip_csum_ok(big) && udp_csum_ok(big));
	CU_ASSERT_EQUAL(get16(big + 2), 0xffff);
	CU_ASSERT_EQUAL(parse_ipv4_copy(&srv, big, 28 + PM_NET_UDP_PAYLOAD_BYTES_MAX, &pkt), PM_NET_UDP);
	CU_ASSERT_EQUAL(pkt.payload_len, PM_NET_UDP_PAYLOAD_BYTES_MAX);
	free(big);
}

/* A zero UDP checksum is accepted unchecked; one that computes to zero is
 * sent as 0xffff. */
static void test_udp_csum_zero(void)
{
	struct pm_net_local srv = srv_of(0), cli = cli_of(0);
	static uint8_t f[FRAME_BUF_BYTES];
	uint32_t n = udp_frame(&cli, &srv, SRV_PORT_LO, 20, f);
	uint8_t *ip = f + 14, *u = ip + 20;
	u[6] = u[7] = 0;
	u[8] ^= 0xff; /* payload changed: no checksum to disagree */
	EXPECT_KIND(&srv, f, n, 0, PM_NET_UDP);
	/* payload words chosen so the sum is 0xffff: checksum 0, sent as 0xffff */
	memset(u + 8, 0, 20);
	pm_net_ipv4_udp_write(&cli, srv.ip_be, CLI_PORT, SRV_PORT_LO, 1, ip, 20);
	memcpy(u + 8 + 18, u + 6, 2); /* the last word := the checksum over the rest */
	pm_net_ipv4_udp_write(&cli, srv.ip_be, CLI_PORT, SRV_PORT_LO, 1, ip, 20);
	CU_ASSERT_EQUAL(get16(u + 6), 0xffff);
	CU_ASSERT(udp_csum_ok(ip));
	EXPECT_KIND(&srv, f, n, 0, PM_NET_UDP);
}

/* issue 20: a sender whose link cannot corrupt a frame (udp_csum_none:
 * memif) writes checksum 0, the rest of the headers as always; the peer
 * takes it, and still refuses a wrong checksum from a sender that wrote
 * one. */
static void test_udp_csum_none(void)
{
	struct pm_net_local srv = srv_of(0), cli = cli_of(0);
	static uint8_t f[FRAME_BUF_BYTES], g[FRAME_BUF_BYTES];
	uint32_t n = udp_frame(&cli, &srv, SRV_PORT_LO, 300, f);
	cli.udp_csum_none = true;
	CU_ASSERT_EQUAL(udp_frame(&cli, &srv, SRV_PORT_LO, 300, g), n);
	const uint8_t *ip = f + 14, *gip = g + 14;
	CU_ASSERT_EQUAL(get16(gip + 20 + 6), 0);
	CU_ASSERT(get16(ip + 20 + 6) != 0 && udp_csum_ok(ip));
	CU_ASSERT(ip_csum_ok(gip));
	CU_ASSERT(memcmp(f, g, 14 + 20 + 6) == 0); /* all but the UDP checksum agree */
	CU_ASSERT(memcmp(f + 14 + 28, g + 14 + 28, n - 14 - 28) == 0);
	EXPECT_KIND(&srv, g, n, 0, PM_NET_UDP);
	f[n - 1] ^= 0x5a; /* a checksum that is there is checked */
	EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_UDP_CKSUM);
}

static void check_arp_roundtrip(uint16_t vlan)
{
	struct pm_net_local srv = srv_of(vlan), cli = cli_of(vlan);
	uint32_t l2 = vlan ? 18 : 14;
	uint8_t f[PM_NET_FRAME_BYTES_MIN];
	memset(f, 0xee, sizeof(f));
	CU_ASSERT_EQUAL(pm_net_arp_request(&cli, srv.ip_be, f), PM_NET_FRAME_BYTES_MIN);
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	CU_ASSERT(memcmp(f, bcast, 6) == 0 && memcmp(f + 6, cli.mac, 6) == 0);
	CU_ASSERT_EQUAL(get16(f + l2 - 2), ETHERTYPE_ARP);
	if (vlan)
		CU_ASSERT_EQUAL(get16(f + 14), vlan);
	for (uint32_t i = l2 + 28; i < sizeof(f); i++)
		CU_ASSERT_EQUAL(f[i], 0);
	struct pm_net_pkt pkt;
	CU_ASSERT_EQUAL_FATAL(parse_copy(&srv, f, sizeof(f), 0, &pkt), PM_NET_ARP_REQUEST);
	CU_ASSERT_EQUAL(pkt.src_ip_be, cli.ip_be);
	CU_ASSERT(memcmp(pkt.src_mac, cli.mac, 6) == 0);
	CU_ASSERT_EQUAL(pkt.l3_off, l2);
	CU_ASSERT_EQUAL(pm_net_arp_answer(&srv, f, sizeof(f)), PM_NET_FRAME_BYTES_MIN);
	CU_ASSERT(memcmp(f, cli.mac, 6) == 0 && memcmp(f + 6, srv.mac, 6) == 0);
	if (vlan)
		CU_ASSERT_EQUAL(get16(f + 14), vlan);
	CU_ASSERT_EQUAL(get16(f + l2 + 6), 2);
	CU_ASSERT(memcmp(f + l2 + 18, cli.mac, 6) == 0);
	CU_ASSERT(memcmp(f + l2 + 24, &cli.ip_be, 4) == 0);
	/* the peer learns us from it */
	CU_ASSERT_EQUAL_FATAL(parse_copy(&cli, f, sizeof(f), 0, &pkt), PM_NET_ARP_REPLY);
	CU_ASSERT_EQUAL(pkt.src_ip_be, srv.ip_be);
	CU_ASSERT(memcmp(pkt.src_mac, srv.mac, 6) == 0);
}

static void test_arp_roundtrip(void)
{
	check_arp_roundtrip(0);
	check_arp_roundtrip(TEST_VLAN);
	struct pm_net_local srv = srv_of(0), cli = cli_of(0);
	uint8_t f[PM_NET_FRAME_BYTES_MIN];
	/* an unpadded request (42 bytes) is answered in its own length */
	pm_net_arp_request(&cli, srv.ip_be, f);
	uint8_t *small = malloc(42);
	CU_ASSERT_FATAL(small != NULL);
	memcpy(small, f, 42);
	struct pm_net_pkt pkt;
	CU_ASSERT_EQUAL(pm_net_parse(&srv, small, 42, 0, &pkt), PM_NET_ARP_REQUEST);
	CU_ASSERT_EQUAL(pm_net_arp_answer(&srv, small, 42), 42);
	CU_ASSERT_EQUAL(pm_net_parse(&cli, small, 42, 0, &pkt), PM_NET_ARP_REPLY);
	free(small);
	/* a gratuitous request (sender == target) is learnt, not answered */
	pm_net_arp_request(&cli, cli.ip_be, f);
	CU_ASSERT_EQUAL(parse_copy(&srv, f, sizeof(f), 0, &pkt), PM_NET_ARP_REPLY);
	CU_ASSERT_EQUAL(pkt.src_ip_be, cli.ip_be);
	/* a reply about someone else's target is still a reply (learnt) */
	pm_net_arp_request(&cli, ip4(10, 0, 0, 9), f);
	put16(f + 14 + 6, 2);
	EXPECT_KIND(&srv, f, sizeof(f), 0, PM_NET_ARP_REPLY);
}

static void check_icmp_echo(uint16_t vlan, uint32_t data_len)
{
	struct pm_net_local srv = srv_of(vlan), cli = cli_of(vlan);
	static uint8_t f[FRAME_BUF_BYTES];
	uint32_t n = icmp_frame(&cli, &srv, data_len, f), l2 = vlan ? 18 : 14;
	struct pm_net_pkt pkt;
	CU_ASSERT_EQUAL_FATAL(parse_copy(&srv, f, n, 0, &pkt), PM_NET_ICMP_ECHO);
	CU_ASSERT_EQUAL(pkt.l3_off, l2);
	CU_ASSERT_EQUAL(pkt.l4_off, l2 + 20);
	CU_ASSERT_EQUAL(pkt.src_ip_be, cli.ip_be);
	CU_ASSERT_EQUAL(pm_net_icmp_answer(&srv, f, n, &pkt), n);
	uint8_t *ip = f + l2, *ic = ip + 20;
	CU_ASSERT(memcmp(f, cli.mac, 6) == 0 && memcmp(f + 6, srv.mac, 6) == 0);
	if (vlan)
		CU_ASSERT_EQUAL(get16(f + 14), vlan);
	CU_ASSERT(memcmp(ip + 12, &srv.ip_be, 4) == 0 && memcmp(ip + 16, &cli.ip_be, 4) == 0);
	CU_ASSERT_EQUAL(ip[8], PM_NET_TTL);
	CU_ASSERT_EQUAL(get16(ip + 2), 28 + data_len);
	CU_ASSERT(ip_csum_ok(ip));
	CU_ASSERT_EQUAL(ic[0], ICMP_ECHO_REPLY);
	CU_ASSERT_EQUAL(ic[1], 0);
	CU_ASSERT_EQUAL(get16(ic + 4), 0x1234);
	CU_ASSERT_EQUAL(get16(ic + 6), 7);
	CU_ASSERT_EQUAL(sum_be(ic, 8 + data_len, 0), 0xffff);
	uint8_t want[FRAME_BUF_BYTES];
	fill(want, data_len, 11);
	CU_ASSERT(memcmp(ic + 8, want, data_len) == 0);
	/* the peer accepts every header of the reply; only echo requests are served */
	EXPECT_DROP(&cli, f, n, 0, PM_NET_DROP_ICMP);
}

static void test_icmp_echo(void)
{
	check_icmp_echo(0, 56);
	check_icmp_echo(0, 0);
	check_icmp_echo(0, 37);
	check_icmp_echo(TEST_VLAN, 56);
	check_icmp_echo(TEST_VLAN, 1000);
}

/* ---------------------------------------------------------------- drop reasons */

static void test_drop_l2(void)
{
	struct pm_net_local srv = srv_of(0), srv_v = srv_of(TEST_VLAN);
	struct pm_net_local cli = cli_of(0), cli_v = cli_of(TEST_VLAN);
	uint8_t good[FRAME_BUF_BYTES], good_v[FRAME_BUF_BYTES], f[FRAME_BUF_BYTES];
	uint32_t n = udp_frame(&cli, &srv, SRV_PORT_LO, 10, good);
	uint32_t nv = udp_frame(&cli_v, &srv_v, SRV_PORT_LO, 10, good_v);
	EXPECT_DROP(&srv, good, 0, 0, PM_NET_DROP_SHORT);
	EXPECT_DROP(&srv, good, 13, 0, PM_NET_DROP_SHORT);
	EXPECT_DROP(&srv_v, good_v, 17, 0, PM_NET_DROP_SHORT); /* tag cut short */
	memcpy(f, good, n);
	f[5] = 0x03; /* another host */
	EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_MAC);
	memcpy(f, (const uint8_t[]){ 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 }, 6); /* multicast */
	EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_MAC);
	memcpy(f, good, n);
	f[6] |= 0x01; /* multicast source */
	EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_MAC);
	EXPECT_DROP(&srv, good_v, nv, 0, PM_NET_DROP_VLAN);   /* tagged, none configured */
	EXPECT_DROP(&srv_v, good, n, 0, PM_NET_DROP_VLAN);    /* untagged, one configured */
	memcpy(f, good_v, nv);
	put16(f + 14, TEST_VLAN + 1);
	EXPECT_DROP(&srv_v, f, nv, 0, PM_NET_DROP_VLAN);      /* another VLAN */
	put16(f + 14, 0xe000u | TEST_VLAN);                   /* priority bits are not the id */
	EXPECT_KIND(&srv_v, f, nv, 0, PM_NET_UDP);
	memcpy(f, good, n);
	put16(f + 12, ETHERTYPE_IPV6);
	EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_ETHERTYPE);
	memcpy(f, good_v, nv);
	put16(f + 16, ETHERTYPE_IPV6);
	EXPECT_DROP(&srv_v, f, nv, 0, PM_NET_DROP_ETHERTYPE);
}

static void test_drop_arp(void)
{
	struct pm_net_local srv = srv_of(0), cli = cli_of(0);
	uint8_t good[PM_NET_FRAME_BYTES_MIN], f[PM_NET_FRAME_BYTES_MIN];
	pm_net_arp_request(&cli, srv.ip_be, good);
	uint8_t *a = f + 14;
	EXPECT_DROP(&srv, good, 14 + 27, 0, PM_NET_DROP_SHORT);
	static const struct {
		uint32_t off, len;
		uint8_t bytes[6];
	} cases[] = {
		{ 0, 2, { 0x00, 0x06 } },                   /* htype IEEE 802 */
		{ 2, 2, { 0x86, 0xdd } },                   /* ptype IPv6 */
		{ 4, 1, { 8 } },                            /* hlen */
		{ 5, 1, { 16 } },                           /* plen */
		{ 6, 2, { 0, 3 } },                         /* op RARP request */
		{ 6, 2, { 0, 0 } },                         /* op 0 */
		{ 24, 4, { 10, 0, 0, 9 } },                 /* a request for another host */
		{ 14, 4, { 0, 0, 0, 0 } },                  /* probe: sender 0 */
		{ 14, 4, { 224, 0, 0, 5 } },                /* multicast sender */
		{ 14, 4, { 255, 255, 255, 255 } },          /* broadcast sender */
		{ 14, 4, { 10, 0, 0, 255 } },               /* subnet broadcast sender */
		{ 14, 4, { 127, 0, 0, 1 } },                /* loopback sender */
		{ 14, 4, { 10, 0, 0, 1 } },                 /* claims our address */
		{ 8, 6, { 0x01, 0, 0x5e, 0, 0, 1 } },       /* multicast sender MAC */
		{ 8, 6, { 0, 0, 0, 0, 0, 0 } },             /* zero sender MAC */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(f, good, sizeof(f));
		memcpy(a + cases[i].off, cases[i].bytes, cases[i].len);
		EXPECT_DROP(&srv, f, sizeof(f), 0, PM_NET_DROP_ARP);
	}
}

#define IP_HEADER_CASES 8u

/* Header field mutation `which` of a 58-byte IPv4 datagram. */
static void mutate_ip_header(uint8_t *ip, uint32_t which)
{
	switch (which) {
	case 0: ip[0] = 0x65; break;                      /* version 6 */
	case 1: ip[0] = 0x44; break;                      /* IHL 4 */
	case 2: ip[0] = 0x40; break;                      /* IHL 0 */
	case 3: ip[0] = 0x4f; break;                      /* IHL 15: 60 bytes > 58 */
	case 4: put16(ip + 2, get16(ip + 2) + 40); break; /* total length > frame */
	case 5: put16(ip + 2, 19); break;                 /* total length < IHL */
	case 6: ip[6] |= 0x80; break;                     /* reserved flag */
	case 7: ip[8] = 0; break;                         /* TTL 0 */
	}
}

static void test_drop_ip(void)
{
	struct pm_net_local srv = srv_of(0), cli = cli_of(0);
	uint8_t good[FRAME_BUF_BYTES], f[FRAME_BUF_BYTES];
	uint32_t n = udp_frame(&cli, &srv, SRV_PORT_LO, 30, good);
	uint8_t *ip = f + 14;
	EXPECT_DROP(&srv, good, 14 + 19, 0, PM_NET_DROP_SHORT);
	/* header fields: each mutation keeps a valid header checksum */
	for (uint32_t which = 0; which < IP_HEADER_CASES; ++which) {
		memcpy(f, good, n);
		mutate_ip_header(ip, which);
		fix_ip(ip);
		EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_IP_HEADER);
	}
	/* checksum, and the offload verdicts */
	memcpy(f, good, n);
	ip[10] ^= 0x5a;
	EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_IP_CKSUM);
	EXPECT_KIND(&srv, f, n, PM_NET_OFL_IP_GOOD, PM_NET_UDP);
	EXPECT_DROP(&srv, good, n, PM_NET_OFL_IP_BAD, PM_NET_DROP_IP_CKSUM);
	EXPECT_DROP(&srv, good, n, PM_NET_OFL_IP_BAD | PM_NET_OFL_IP_GOOD, PM_NET_DROP_IP_CKSUM);
	/* martian sources */
	static const uint8_t src[][4] = {
		{ 0, 0, 0, 0 }, { 0, 1, 2, 3 }, { 127, 0, 0, 1 }, { 127, 9, 9, 9 }, { 224, 0, 0, 1 },
		{ 239, 255, 255, 250 }, { 255, 255, 255, 255 }, { 10, 0, 0, 1 }, { 10, 0, 0, 255 },
	};
	for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++) {
		memcpy(f, good, n);
		memcpy(ip + 12, src[i], 4);
		fix_ip(ip);
		fix_udp(ip);
		EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_IP_SRC);
	}
	static const uint8_t dst[][4] = { { 10, 0, 0, 3 }, { 10, 0, 0, 255 }, { 255, 255, 255, 255 } };
	for (size_t i = 0; i < sizeof(dst) / sizeof(dst[0]); i++) {
		memcpy(f, good, n);
		memset(f, 0xff, 6);
		memcpy(ip + 16, dst[i], 4);
		fix_ip(ip);
		fix_udp(ip);
		EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_IP_DST);
	}
	static const uint8_t proto[] = { IP_PROTO_GRE, IP_PROTO_TCP, 0, 255 };
	for (size_t i = 0; i < sizeof(proto); i++) {
		memcpy(f, good, n);
		ip[9] = proto[i];
		fix_ip(ip);
		EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_IP_PROTO);
	}
}

static void test_drop_udp(void)
{
	struct pm_net_local srv = srv_of(0), cli = cli_of(0);
	uint8_t good[FRAME_BUF_BYTES], f[FRAME_BUF_BYTES];
	uint32_t n = udp_frame(&cli, &srv, SRV_PORT_LO + 3, 30, good);
	uint8_t *ip = f + 14, *u = ip + 20;
	/* UDP length vs the IP payload */
	static const int delta[] = { 3, 1, -1, -30 };
	for (size_t i = 0; i < sizeof(delta) / sizeof(delta[0]); i++) {
		memcpy(f, good, n);
		put16(u + 4, (uint32_t)((int)get16(u + 4) + delta[i]));
		u[6] = u[7] = 0;
		EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_UDP_HEADER);
	}
	memcpy(f, good, n); /* an IP payload too short for a UDP header */
	put16(ip + 2, 24);
	put16(u + 4, 4);
	fix_ip(ip);
	EXPECT_DROP(&srv, f, 14 + 24, 0, PM_NET_DROP_UDP_HEADER);
	memcpy(f, good, n); /* source port 0: nowhere to answer */
	put16(u, 0);
	fix_udp(ip);
	EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_UDP_HEADER);
	/* checksum and the offload verdicts */
	memcpy(f, good, n);
	u[8 + 17] ^= 0x40;
	EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_UDP_CKSUM);
	EXPECT_KIND(&srv, f, n, PM_NET_OFL_L4_GOOD, PM_NET_UDP);
	EXPECT_DROP(&srv, good, n, PM_NET_OFL_L4_BAD, PM_NET_DROP_UDP_CKSUM);
	memcpy(f, good, n);
	u[6] ^= 0x5a;
	EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_UDP_CKSUM);
	/* ports outside [lo, hi], checksums right */
	static const uint16_t ports[] = { SRV_PORT_LO - 1, SRV_PORT_HI + 1, 0, 65535 };
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		memcpy(f, good, n);
		put16(u + 2, ports[i]);
		fix_udp(ip);
		EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_UDP_PORT);
	}
}

static void test_drop_icmp(void)
{
	struct pm_net_local srv = srv_of(0), cli = cli_of(0);
	uint8_t good[FRAME_BUF_BYTES], f[FRAME_BUF_BYTES];
	uint32_t n = icmp_frame(&cli, &srv, 24, good);
	uint8_t *ip = f + 14, *ic = ip + 20;
	static const uint8_t type_code[][2] = {
		{ ICMP_ECHO_REPLY, 0 }, { ICMP_ECHO_REQUEST, 1 }, { ICMP_TIMESTAMP, 0 }, { 3, 3 },
	};
	for (size_t i = 0; i < sizeof(type_code) / sizeof(type_code[0]); i++) {
		memcpy(f, good, n);
		ic[0] = type_code[i][0];
		ic[1] = type_code[i][1];
		put16(ic + 2, 0);
		put16(ic + 2, ~sum_be(ic, 32, 0) & 0xffff);
		EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_ICMP);
	}
	memcpy(f, good, n);
	ic[9] ^= 1;
	EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_ICMP);
	memcpy(f, good, n); /* 4 bytes of ICMP, checksum right */
	put16(ip + 2, 24);
	fix_ip(ip);
	put16(ic + 2, 0);
	put16(ic + 2, ~sum_be(ic, 4, 0) & 0xffff);
	EXPECT_DROP(&srv, f, 14 + 24, 0, PM_NET_DROP_ICMP);
}

/* Fragments are classified after the IP checks; parse_ipv4 refuses them. */
static void test_fragments(void)
{
	struct pm_net_local srv = srv_of(0), cli = cli_of(0);
	uint8_t good[FRAME_BUF_BYTES], f[FRAME_BUF_BYTES];
	uint32_t n = udp_frame(&cli, &srv, SRV_PORT_LO, 40, good);
	uint8_t *ip = f + 14;
	static const uint16_t frag[] = { IP_FLAG_MF, IP_FLAG_MF | 1, 1, 0x1fff, IP_FLAG_DF | 5 };
	struct pm_net_pkt pkt;
	for (size_t i = 0; i < sizeof(frag) / sizeof(frag[0]); i++) {
		memcpy(f, good, n);
		put16(ip + 6, frag[i]);
		fix_ip(ip);
		CU_ASSERT_EQUAL(parse_copy(&srv, f, n, 0, &pkt), PM_NET_FRAGMENT);
		CU_ASSERT_EQUAL(pkt.l3_off, 14);
		CU_ASSERT_EQUAL(pkt.l4_off, 0);
		CU_ASSERT_EQUAL(pkt.src_ip_be, cli.ip_be);
		CU_ASSERT_EQUAL(parse_ipv4_copy(&srv, ip, n - 14, &pkt), PM_NET_DROP);
		CU_ASSERT_EQUAL(pkt.drop, PM_NET_DROP_FRAG);
	}
	put16(ip + 6, IP_FLAG_MF); /* the header checks come first */
	ip[10] ^= 1;
	EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_IP_CKSUM);
	put16(ip + 6, IP_FLAG_MF | 0x8000u);
	fix_ip(ip);
	EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_IP_HEADER);
	put16(ip + 6, IP_FLAG_MF);
	ip[19] = 3;
	fix_ip(ip);
	EXPECT_DROP(&srv, f, n, 0, PM_NET_DROP_IP_DST);
}

/* A reassembled datagram: no Ethernet, IP checksum not checked, offsets from ip. */
static void test_parse_ipv4(void)
{
	struct pm_net_local srv = srv_of(0), cli = cli_of(TEST_VLAN);
	uint8_t d[FRAME_BUF_BYTES];
	fill(d + 28, 500, 5);
	pm_net_ipv4_udp_write(&cli, srv.ip_be, CLI_PORT, SRV_PORT_HI, 9, d, 500);
	struct pm_net_pkt pkt;
	CU_ASSERT_EQUAL_FATAL(parse_ipv4_copy(&srv, d, 528, &pkt), PM_NET_UDP);
	CU_ASSERT_EQUAL(pkt.l3_off, 0);
	CU_ASSERT_EQUAL(pkt.l4_off, 20);
	CU_ASSERT_EQUAL(pkt.payload_off, 28);
	CU_ASSERT_EQUAL(pkt.payload_len, 500);
	CU_ASSERT_EQUAL(pkt.src_ip_be, cli.ip_be);
	CU_ASSERT_EQUAL(pkt.src_port, CLI_PORT);
	CU_ASSERT_EQUAL(pkt.dst_port, SRV_PORT_HI);
	d[10] = d[11] = 0; /* the reassembler zeroed the header checksum */
	CU_ASSERT_EQUAL(parse_ipv4_copy(&srv, d, 528, &pkt), PM_NET_UDP);
	CU_ASSERT_EQUAL(parse_ipv4_copy(&srv, d, 527, &pkt), PM_NET_DROP);
	CU_ASSERT_EQUAL(pkt.drop, PM_NET_DROP_IP_HEADER);
	CU_ASSERT_EQUAL(parse_ipv4_copy(&srv, d, 19, &pkt), PM_NET_DROP);
	CU_ASSERT_EQUAL(pkt.drop, PM_NET_DROP_SHORT);
	d[40] ^= 1;
	CU_ASSERT_EQUAL(parse_ipv4_copy(&srv, d, 528, &pkt), PM_NET_DROP);
	CU_ASSERT_EQUAL(pkt.drop, PM_NET_DROP_UDP_CKSUM);
	d[40] ^= 1;
	d[9] = IP_PROTO_ICMP;
	CU_ASSERT_EQUAL(parse_ipv4_copy(&srv, d, 528, &pkt), PM_NET_DROP);
	CU_ASSERT_EQUAL(pkt.drop, PM_NET_DROP_IP_PROTO);
	d[9] = IP_PROTO_UDP;
	d[19] = 7;
	CU_ASSERT_EQUAL(parse_ipv4_copy(&srv, d, 528, &pkt), PM_NET_DROP);
	CU_ASSERT_EQUAL(pkt.drop, PM_NET_DROP_IP_DST);
}

/* ---------------------------------------------------------------- robustness */

/* Every strict prefix of a valid frame: never what the full frame is. */
static void check_truncation(const struct pm_net_local *l, const uint8_t *f, uint32_t n,
			     enum pm_net_kind full)
{
	struct pm_net_pkt pkt;
	CU_ASSERT_EQUAL(parse_copy(l, f, n, 0, &pkt), full);
	uint32_t bad = 0;
	for (uint32_t len = 0; len < n; len++)
		bad += parse_copy(l, f, len, 0, &pkt) != PM_NET_DROP;
	CU_ASSERT_EQUAL(bad, 0);
}

static void test_truncation(void)
{
	struct pm_net_local srv = srv_of(0), cli = cli_of(0);
	struct pm_net_local srv_v = srv_of(TEST_VLAN), cli_v = cli_of(TEST_VLAN);
	static uint8_t f[FRAME_BUF_BYTES];
	uint32_t n = udp_frame(&cli, &srv, SRV_PORT_LO, PAYLOAD_BYTES, f);
	check_truncation(&srv, f, n, PM_NET_UDP);
	n = udp_frame(&cli_v, &srv_v, SRV_PORT_LO, PAYLOAD_BYTES + 1, f);
	check_truncation(&srv_v, f, n, PM_NET_UDP);
	n = icmp_frame(&cli, &srv, 56, f);
	check_truncation(&srv, f, n, PM_NET_ICMP_ECHO);
	n = icmp_frame(&cli_v, &srv_v, 3, f);
	check_truncation(&srv_v, f, n, PM_NET_ICMP_ECHO);
	/* ARP: prefixes shorter than the ARP payload (the rest is padding) */
	pm_net_arp_request(&cli, srv.ip_be, f);
	struct pm_net_pkt pkt;
	for (uint32_t len = 0; len < 14 + PM_NET_ARP_BYTES; len++)
		CU_ASSERT_EQUAL(parse_copy(&srv, f, len, 0, &pkt), PM_NET_DROP);
	CU_ASSERT_EQUAL(parse_copy(&srv, f, 14 + PM_NET_ARP_BYTES, 0, &pkt), PM_NET_ARP_REQUEST);
}

/* What a parse result promises about the frame it came from. */
static void check_promises(const struct pm_net_local *l, uint8_t *c, uint32_t len,
			   const struct pm_net_pkt *pkt, uint32_t *bad)
{
	switch (pkt->kind) {
	case PM_NET_UDP:
		*bad += pkt->payload_off + pkt->payload_len > len ||
			pkt->l4_off + PM_NET_UDP_BYTES != pkt->payload_off;
		break;
	case PM_NET_ICMP_ECHO:
		*bad += pkt->l4_off + 8u > len;
		pm_net_icmp_answer(l, c, len, pkt);
		break;
	case PM_NET_ARP_REQUEST:
		*bad += pkt->l3_off + PM_NET_ARP_BYTES > len;
		*bad += pm_net_arp_answer(l, c, len) > len;
		break;
	case PM_NET_ARP_REPLY:
		*bad += pkt->l3_off + PM_NET_ARP_BYTES > len;
		break;
	case PM_NET_FRAGMENT:
		*bad += pkt->l3_off + PM_NET_IPV4_BYTES > len || pkt->l4_off != 0;
		break;
	case PM_NET_DROP:
		*bad += pkt->drop == PM_NET_DROP_NONE || pkt->drop >= PM_NET_DROP_REASONS;
		break;
	}
}

/* Valid frames with a few random bytes changed and random lengths. */
static void test_fuzz(void)
{
	struct pm_net_local srv = srv_of(0), cli = cli_of(0);
	struct pm_net_local srv_v = srv_of(TEST_VLAN), cli_v = cli_of(TEST_VLAN);
	static uint8_t base[4][FRAME_BUF_BYTES];
	uint32_t blen[4];
	const struct pm_net_local *bl[4] = { &srv, &srv_v, &srv, &srv };
	blen[0] = udp_frame(&cli, &srv, SRV_PORT_LO, 64, base[0]);
	blen[1] = udp_frame(&cli_v, &srv_v, SRV_PORT_HI, 65, base[1]);
	blen[2] = pm_net_arp_request(&cli, srv.ip_be, base[2]);
	blen[3] = icmp_frame(&cli, &srv, 40, base[3]);
	uint64_t seed = 0x6e657466; /* "netf" */
	uint32_t bad = 0, kinds[PM_NET_FRAGMENT + 1] = { 0 };
	for (uint32_t r = 0; r < FUZZ_ROUNDS; r++) {
		uint32_t b = (uint32_t)(pm_test_rand(&seed) % 4), len = blen[b];
		uint64_t x = pm_test_rand(&seed);
		if (x % 4 == 0)
			len = (uint32_t)((x >> 8) % (len + 1));
		uint8_t *c = malloc(len ? len : 1);
		CU_ASSERT_FATAL(c != NULL);
		memcpy(c, base[b], len);
		for (uint32_t k = (uint32_t)(x >> 40) % 4; k > 0 && len; k--) {
			uint64_t y = pm_test_rand(&seed);
			c[y % len] = (uint8_t)(y >> 32);
		}
		struct pm_net_pkt pkt, whole;
		enum pm_net_kind kind = pm_net_parse(bl[b], c, len, (uint32_t)(x >> 48) & 0xf, &pkt);
		bad += kind != pkt.kind;
		kinds[kind]++;
		check_promises(bl[b], c, len, &pkt, &bad);
		uint32_t l2 = pm_net_l2_bytes(bl[b]);
		if (len >= l2 && pm_net_parse_ipv4(bl[b], c + l2, len - l2, &whole) == PM_NET_UDP)
			bad += whole.payload_off + whole.payload_len > len - l2;
		free(c);
	}
	if (bad)
		printf("\n  %u broken promises", bad);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(kinds[PM_NET_DROP] > 0 && kinds[PM_NET_UDP] > 0 && kinds[PM_NET_ARP_REQUEST] > 0 &&
		  kinds[PM_NET_ICMP_ECHO] > 0);
}

/* ---------------------------------------------------------------- builders, names */

static void test_builders(void)
{
	struct pm_net_local srv = srv_of(0), srv_v = srv_of(TEST_VLAN);
	uint8_t f[32];
	static const uint8_t to[6] = { 0x02, 9, 8, 7, 6, 5 };
	CU_ASSERT_EQUAL(pm_net_l2_bytes(&srv), PM_NET_ETH_BYTES);
	CU_ASSERT_EQUAL(pm_net_l2_bytes(&srv_v), PM_NET_ETH_BYTES + PM_NET_VLAN_BYTES);
	CU_ASSERT_EQUAL(pm_net_eth_write(&srv, to, ETHERTYPE_ARP, f), 14);
	CU_ASSERT(memcmp(f, to, 6) == 0 && memcmp(f + 6, srv.mac, 6) == 0);
	CU_ASSERT_EQUAL(get16(f + 12), ETHERTYPE_ARP);
	CU_ASSERT_EQUAL(pm_net_eth_write(&srv_v, to, ETHERTYPE_IPV4, f), 18);
	CU_ASSERT(memcmp(f, to, 6) == 0 && memcmp(f + 6, srv.mac, 6) == 0);
	CU_ASSERT_EQUAL(get16(f + 12), ETHERTYPE_VLAN);
	CU_ASSERT_EQUAL(get16(f + 14), TEST_VLAN);
	CU_ASSERT_EQUAL(get16(f + 16), ETHERTYPE_IPV4);
	CU_ASSERT_EQUAL(pm_net_next_hop(&srv, ip4(10, 0, 0, 77)), ip4(10, 0, 0, 77));
	CU_ASSERT_EQUAL(pm_net_next_hop(&srv, ip4(10, 0, 1, 77)), srv.gateway_be);
	CU_ASSERT_EQUAL(pm_net_next_hop(&srv, ip4(8, 8, 8, 8)), srv.gateway_be);
	srv.gateway_be = 0;
	CU_ASSERT_EQUAL(pm_net_next_hop(&srv, ip4(8, 8, 8, 8)), 0);
	CU_ASSERT_EQUAL(pm_net_next_hop(&srv, ip4(10, 0, 0, 2)), ip4(10, 0, 0, 2));
}

static void test_drop_names(void)
{
	CU_ASSERT_STRING_EQUAL(pm_net_drop_name(PM_NET_DROP_NONE), "none");
	CU_ASSERT_STRING_EQUAL(pm_net_drop_name(PM_NET_DROP_IP_CKSUM), "ip_cksum");
	CU_ASSERT_STRING_EQUAL(pm_net_drop_name(PM_NET_DROP_UDP_PORT), "udp_port");
	CU_ASSERT_STRING_EQUAL(pm_net_drop_name(PM_NET_DROP_NO_ROUTE), "no_route");
	CU_ASSERT_STRING_EQUAL(pm_net_drop_name(PM_NET_DROP_REASONS), "unknown");
	CU_ASSERT_STRING_EQUAL(pm_net_drop_name((enum pm_net_drop)1000), "unknown");
	CU_ASSERT_STRING_EQUAL(pm_net_drop_name((enum pm_net_drop)-1), "unknown");
	for (uint32_t i = 0; i < PM_NET_DROP_REASONS; i++) {
		const char *s = pm_net_drop_name((enum pm_net_drop)i);
		CU_ASSERT_FATAL(s != NULL);
		CU_ASSERT(strlen(s) > 0 && strlen(s) < 16 && strcmp(s, "unknown") != 0);
		CU_ASSERT(strspn(s, "abcdefghijklmnopqrstuvwxyz_") == strlen(s));
		for (uint32_t j = 0; j < i; j++)
			CU_ASSERT(strcmp(s, pm_net_drop_name((enum pm_net_drop)j)) != 0);
	}
}

/* ---------------------------------------------------------------- checksum */

static void test_sum(void)
{
	static uint8_t buf[SUM_LEN_MAX + SUM_ALIGN_MAX];
	uint64_t seed = 42;
	for (uint32_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)pm_test_rand(&seed);
	uint32_t bad = 0;
	for (uint32_t align = 0; align < SUM_ALIGN_MAX; align++) {
		const uint8_t *p = buf + align;
		for (uint32_t len = 0; len <= SUM_LEN_MAX; len++) {
			uint32_t init = (uint32_t)pm_test_rand(&seed) >> (len % 32);
			uint32_t s = pm_net_sum(p, len, init);
			bad += s != sum_native(p, len, init);
			/* the byte-order-independent view: stored, it is the network-order sum */
			uint16_t s0 = (uint16_t)pm_net_sum(p, len, 0);
			uint8_t b[2];
			memcpy(b, &s0, 2);
			bad += get16(b) != sum_be(p, len, 0);
			/* chaining at every even split */
			for (uint32_t cut = 0; cut <= len; cut += 2)
				bad += pm_net_sum(p + cut, len - cut, pm_net_sum(p, cut, init)) != s;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* the same bytes at every alignment give the same sum */
	static uint8_t moved[SUM_LEN_MAX + SUM_ALIGN_MAX];
	uint32_t want = pm_net_sum(buf, SUM_LEN_MAX - 1, 0);
	for (uint32_t align = 0; align < SUM_ALIGN_MAX; align++) {
		memmove(moved + align, buf, SUM_LEN_MAX - 1);
		CU_ASSERT_EQUAL(pm_net_sum(moved + align, SUM_LEN_MAX - 1, 0), want);
	}
	uint8_t zeros[16] = { 0 }, ones[16];
	memset(ones, 0xff, sizeof(ones));
	CU_ASSERT_EQUAL(pm_net_sum(zeros, sizeof(zeros), 0), 0);
	CU_ASSERT_EQUAL(pm_net_sum(ones, sizeof(ones), 0), 0xffff);
	CU_ASSERT_EQUAL(pm_net_sum(ones, sizeof(ones), UINT32_MAX), 0xffff);
	CU_ASSERT_EQUAL(pm_net_fold(0), 0);
	CU_ASSERT_EQUAL(pm_net_fold(0x1fffe), 0xffff);
	CU_ASSERT_EQUAL(pm_net_fold(0x12345678), 0x68ac);
	CU_ASSERT_EQUAL(pm_net_fold(UINT32_MAX), 0xffff);
	/* RFC 1071 §3's example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 (network order) */
	static const uint8_t rfc[8] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	uint16_t s = (uint16_t)pm_net_sum(rfc, sizeof(rfc), 0);
	uint8_t b[2];
	memcpy(b, &s, 2);
	CU_ASSERT_EQUAL(get16(b), 0xddf2);
}

/* ---------------------------------------------------------------- ARP table */

static struct pm_arp_table table, scratch;

static uint32_t slot_of(const struct pm_arp_table *t, uint32_t ip_be)
{
	for (uint32_t i = 0; i < PM_ARP_ENTRIES; i++)
		if (t->e[i].ip_be == ip_be)
			return i;
	return UINT32_MAX;
}

static uint32_t count_of(const struct pm_arp_table *t, uint32_t ip_be)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < PM_ARP_ENTRIES; i++)
		n += t->e[i].ip_be == ip_be;
	return n;
}

/* n addresses whose home slot is the same (found by learning each alone into
 * an empty table); the home slot. */
static uint32_t colliding(uint32_t *ips, uint32_t n)
{
	uint32_t home = UINT32_MAX, found = 0;
	for (uint32_t host = 1; found < n && host < (1u << 20); host++) {
		uint32_t ip = htonl(0x0a000000u | host);
		pm_arp_init(&scratch);
		pm_arp_learn(&scratch, ip, (const uint8_t[6]){ 2, 1, 1, 1, 1, 1 }, 0);
		uint32_t s = slot_of(&scratch, ip);
		if (home == UINT32_MAX)
			home = s;
		if (s == home)
			ips[found++] = ip;
	}
	CU_ASSERT_FATAL(found == n);
	return home;
}

static void mac_of(uint32_t i, uint8_t v, uint8_t mac[6])
{
	mac[0] = 0x02;
	mac[1] = mac[2] = mac[3] = mac[4] = v;
	mac[5] = (uint8_t)i;
}

static void test_arp_learn(void)
{
	uint8_t m1[6] = { 2, 0xa, 0xb, 0xc, 0xd, 0xe }, m2[6] = { 2, 1, 2, 3, 4, 5 }, got[6];
	uint32_t a = ip4(10, 0, 0, 2), b = ip4(10, 0, 0, 3);
	pm_arp_init(&table);
	CU_ASSERT_FALSE(pm_arp_lookup(&table, a, T0_MS, got));
	pm_arp_learn(&table, a, m1, T0_MS);
	memset(got, 0, 6);
	CU_ASSERT(pm_arp_lookup(&table, a, T0_MS, got) && memcmp(got, m1, 6) == 0);
	CU_ASSERT_FALSE(pm_arp_lookup(&table, b, T0_MS, got));
	CU_ASSERT(pm_arp_lookup(&table, a, T0_MS + PM_ARP_TTL_MS - 1, got));
	CU_ASSERT_FALSE(pm_arp_lookup(&table, a, T0_MS + PM_ARP_TTL_MS, got)); /* expired */
	pm_arp_learn(&table, a, m2, T0_MS + PM_ARP_TTL_MS);                      /* refresh */
	CU_ASSERT(pm_arp_lookup(&table, a, T0_MS + 2 * PM_ARP_TTL_MS - 1, got) && memcmp(got, m2, 6) == 0);
	CU_ASSERT_EQUAL(count_of(&table, a), 1);
	pm_arp_learn(&table, 0, m1, T0_MS); /* address 0 is never an entry */
	CU_ASSERT_FALSE(pm_arp_lookup(&table, 0, T0_MS, got));
	CU_ASSERT_EQUAL(count_of(&table, 0), PM_ARP_ENTRIES - 1);
}

/* A full probe window: the entry that expires first goes; an expired one is
 * reused before that, first in window order. */
static void test_arp_eviction(void)
{
	uint32_t ips[PM_ARP_PROBE + 2], mask = PM_ARP_ENTRIES - 1;
	uint32_t home = colliding(ips, PM_ARP_PROBE + 2);
	uint8_t mac[6], got[6];
	pm_arp_init(&table);
	for (uint32_t i = 0; i < PM_ARP_PROBE; i++) { /* later slots expire sooner */
		mac_of(i, 0x11, mac);
		pm_arp_learn(&table, ips[i], mac, T0_MS + (PM_ARP_PROBE - i) * 10u);
		CU_ASSERT_EQUAL(slot_of(&table, ips[i]), (home + i) & mask);
	}
	mac_of(PM_ARP_PROBE, 0x11, mac);
	pm_arp_learn(&table, ips[PM_ARP_PROBE], mac, T0_MS + 5);
	CU_ASSERT_EQUAL(slot_of(&table, ips[PM_ARP_PROBE]), (home + PM_ARP_PROBE - 1) & mask);
	CU_ASSERT_FALSE(pm_arp_lookup(&table, ips[PM_ARP_PROBE - 1], T0_MS + 5, got));
	for (uint32_t i = 0; i <= PM_ARP_PROBE; i++) {
		if (i == PM_ARP_PROBE - 1)
			continue;
		mac_of(i, 0x11, mac);
		CU_ASSERT(pm_arp_lookup(&table, ips[i], T0_MS + 5, got) && memcmp(got, mac, 6) == 0);
	}
	/* 20 ms after the TTL: slot PROBE-2 (expired, first) is reused, not the
	 * last slot (which expires first) */
	uint64_t now = T0_MS + 20 + PM_ARP_TTL_MS;
	mac_of(PM_ARP_PROBE + 1, 0x22, mac);
	pm_arp_learn(&table, ips[PM_ARP_PROBE + 1], mac, now);
	CU_ASSERT_EQUAL(slot_of(&table, ips[PM_ARP_PROBE + 1]), (home + PM_ARP_PROBE - 2) & mask);
	CU_ASSERT(pm_arp_lookup(&table, ips[PM_ARP_PROBE + 1], now, got) && memcmp(got, mac, 6) == 0);
	CU_ASSERT(pm_arp_lookup(&table, ips[0], now, got));
	/* a refresh stays in its slot */
	mac_of(0, 0x33, mac);
	pm_arp_learn(&table, ips[0], mac, now);
	CU_ASSERT_EQUAL(slot_of(&table, ips[0]), home);
	CU_ASSERT_EQUAL(count_of(&table, ips[0]), 1);
	CU_ASSERT(pm_arp_lookup(&table, ips[0], now, got) && memcmp(got, mac, 6) == 0);
}

static void test_arp_should_ask(void)
{
	uint32_t x = ip4(10, 0, 0, 50), y = ip4(10, 0, 0, 51);
	uint8_t mac[6] = { 2, 5, 5, 5, 5, 5 }, got[6];
	pm_arp_init(&table);
	CU_ASSERT(pm_arp_should_ask(&table, x, 0));
	CU_ASSERT_FALSE(pm_arp_should_ask(&table, x, 1));
	CU_ASSERT_FALSE(pm_arp_should_ask(&table, x, PM_ARP_RETRY_MS - 1));
	CU_ASSERT(pm_arp_should_ask(&table, y, PM_ARP_RETRY_MS - 1)); /* per address */
	CU_ASSERT_FALSE(pm_arp_lookup(&table, x, 1, got));             /* pending: no MAC */
	CU_ASSERT(pm_arp_should_ask(&table, x, PM_ARP_RETRY_MS));
	CU_ASSERT_FALSE(pm_arp_should_ask(&table, x, PM_ARP_RETRY_MS + 1));
	CU_ASSERT_FALSE(pm_arp_lookup(&table, x, PM_ARP_RETRY_MS + 1, got));
	CU_ASSERT_EQUAL(count_of(&table, x), 1);
	/* answered: known and fresh, nothing to ask */
	pm_arp_learn(&table, x, mac, T0_MS);
	CU_ASSERT(pm_arp_lookup(&table, x, T0_MS, got) && memcmp(got, mac, 6) == 0);
	CU_ASSERT_FALSE(pm_arp_should_ask(&table, x, T0_MS + 1));
	CU_ASSERT_EQUAL(count_of(&table, x), 1);
	/* expired: ask again, once per retry interval */
	uint64_t late = T0_MS + PM_ARP_TTL_MS;
	CU_ASSERT(pm_arp_should_ask(&table, x, late));
	CU_ASSERT_FALSE(pm_arp_should_ask(&table, x, late + PM_ARP_RETRY_MS / 2));
	CU_ASSERT_FALSE(pm_arp_lookup(&table, x, late, got));
	CU_ASSERT(pm_arp_should_ask(&table, x, late + PM_ARP_RETRY_MS));
	pm_arp_learn(&table, x, mac, late + PM_ARP_RETRY_MS + 1);
	CU_ASSERT(pm_arp_lookup(&table, x, late + PM_ARP_RETRY_MS + 1, got));
	CU_ASSERT_EQUAL(count_of(&table, x), 1);
	/* pending entries give way first when a window fills */
	uint32_t ips[PM_ARP_PROBE + 1];
	colliding(ips, PM_ARP_PROBE + 1);
	pm_arp_init(&table);
	pm_arp_learn(&table, ips[0], mac, T0_MS);
	for (uint32_t i = 1; i < PM_ARP_PROBE; i++)
		CU_ASSERT(pm_arp_should_ask(&table, ips[i], T0_MS));
	pm_arp_learn(&table, ips[PM_ARP_PROBE], mac, T0_MS);
	CU_ASSERT(pm_arp_lookup(&table, ips[0], T0_MS, got));
	CU_ASSERT(pm_arp_lookup(&table, ips[PM_ARP_PROBE], T0_MS, got));
}

/* ---------------------------------------------------------------- ARP table, two threads */

#define RACE_IPS (PM_ARP_PROBE + 4)  /* more than a window holds: entries get evicted */
#define RACE_LOOKUPS 400000u
#define RACE_LEARNS_MAX 100000000u

static uint32_t race_ips[RACE_IPS];
static atomic_bool race_done;

/* Learns the addresses in turn, each alternating two MACs, evicting as it
 * goes (time advances so the window's oldest entry rotates). */
static void *race_writer(void *arg)
{
	(void)arg;
	uint8_t mac[6];
	for (uint32_t n = 0; n < RACE_LEARNS_MAX && !atomic_load(&race_done); n++) {
		uint32_t i = n % RACE_IPS;
		mac_of(i, (n / RACE_IPS) & 1 ? 0x22 : 0x11, mac);
		pm_arp_learn(&table, race_ips[i], mac, 1 + n);
	}
	return NULL;
}

static void test_arp_threads(void)
{
	colliding(race_ips, RACE_IPS);
	pm_arp_init(&table);
	uint8_t mac[6], got[6], a[6], b[6];
	for (uint32_t i = 0; i < RACE_IPS; i++) {
		mac_of(i, 0x11, mac);
		pm_arp_learn(&table, race_ips[i], mac, 0);
	}
	atomic_store(&race_done, false);
	pthread_t t;
	CU_ASSERT_FATAL(pthread_create(&t, NULL, race_writer, NULL) == 0);
	uint32_t hits = 0, torn = 0;
	for (uint32_t k = 0; k < RACE_LOOKUPS; k++) {
		uint32_t i = k % RACE_IPS;
		if (!pm_arp_lookup(&table, race_ips[i], 0, got))
			continue;
		hits++;
		mac_of(i, 0x11, a);
		mac_of(i, 0x22, b);
		torn += memcmp(got, a, 6) != 0 && memcmp(got, b, 6) != 0;
	}
	atomic_store(&race_done, true);
	pthread_join(t, NULL);
	printf("\n  %u of %u lookups hit, %u torn", hits, RACE_LOOKUPS, torn);
	CU_ASSERT(hits > 0);
	CU_ASSERT_EQUAL(torn, 0);
}

/* ---------------------------------------------------------------- coverage */

/* Every reason the parsers can give was produced by some test above
 * (NO_ROUTE is the caller's). */
static void test_every_reason(void)
{
	for (uint32_t d = PM_NET_DROP_SHORT; d < PM_NET_DROP_REASONS; d++) {
		if (d == PM_NET_DROP_NO_ROUTE)
			continue;
		if (!seen[d])
			printf("\n  never produced: %s", pm_net_drop_name((enum pm_net_drop)d));
		CU_ASSERT(seen[d]);
	}
}

static CU_TestInfo tests[] = {
	{ "UDP round trip (VLAN, sizes, ports)", test_udp_roundtrip },
	{ "UDP padding, broadcast MAC, /31, largest", test_udp_variants },
	{ "UDP checksum 0 and 0xffff", test_udp_csum_zero },
	{ "UDP checksum left out (memif)", test_udp_csum_none },
	{ "ARP request -> answer -> reply", test_arp_roundtrip },
	{ "ICMP echo -> reply", test_icmp_echo },
	{ "drops: Ethernet and VLAN", test_drop_l2 },
	{ "drops: ARP", test_drop_arp },
	{ "drops: IPv4 (+ offload)", test_drop_ip },
	{ "drops: UDP (+ offload)", test_drop_udp },
	{ "drops: ICMP", test_drop_icmp },
	{ "fragments", test_fragments },
	{ "reassembled datagram", test_parse_ipv4 },
	{ "truncation at every length", test_truncation },
	{ "mutated frames", test_fuzz },
	{ "builders, next hop", test_builders },
	{ "drop names", test_drop_names },
	{ "checksum vs references", test_sum },
	{ "ARP learn, lookup, expiry", test_arp_learn },
	{ "ARP eviction", test_arp_eviction },
	{ "ARP should_ask", test_arp_should_ask },
	{ "ARP lock-free reads vs a writer", test_arp_threads },
	{ "every drop reason produced", test_every_reason },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	return pm_cu_run("netfe", tests);
}
