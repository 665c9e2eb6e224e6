/* SPDX-License-Identifier: MIT
 *
 * proto/netfe.c — the L2/L3 front end (netfe.h): frame classification, the
 * builders, the Internet checksum and the ARP table (this file was
 * dataplane/netfe.c).
 *
 * Every header field is read with byte loads or memcpy (frames are unaligned
 * and may come from a fuzzer), and every read is preceded by a check of the
 * bytes it needs, so no input makes the parser read past len. Checks run in a
 * fixed order and the first failure names the drop reason: Ethernet (length,
 * destination, source, VLAN, ethertype), then ARP or IPv4 (header fields,
 * checksum, source, destination), then fragments, then ICMP or UDP (length,
 * ports, checksum: the cheap checks before the sum over the payload).
 *
 * Checksums are summed over 16-bit words in the host's own byte order (RFC
 * 1071 §2(B)): the complement of the folded sum, stored with memcpy, is the
 * right checksum on either byte order, and a header with a correct checksum
 * sums to 0xffff.
 *
 * Beyond the brief: a multicast Ethernet source is dropped as DROP_MAC, an ARP
 * whose sender is martian (as for IPv4 sources) or whose sender MAC is zero or
 * multicast is dropped as DROP_ARP, a gratuitous ARP request (sender ==
 * target) is a PM_NET_ARP_REPLY (learnt, not answered), and a UDP datagram
 * from port 0 (which cannot be answered) is DROP_UDP_HEADER.
 *
 * ARP table: a seqlock per entry. Readers copy the fields with relaxed atomic
 * loads between two reads of seq (acquire load, acquire fence) and retry a
 * bounded number of times; writers, serialised by the spin flag, make seq odd,
 * store the fields with relaxed atomic stores and publish an even seq with a
 * release store. An entry whose MAC is all zero is pending (asked, not yet
 * answered) and is never returned by a lookup.
 */
#include "netfe.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- wire constants */

#define MAC_BYTES 6u
#define IPV4_ADDR_BYTES 4u
#define MAC_GROUP_BIT 0x01u        /* first octet: multicast / broadcast */
#define ETH_OFF_DST 0u
#define ETH_OFF_SRC 6u
#define ETH_OFF_TYPE 12u
#define VLAN_OFF_TCI 14u           /* after the 0x8100 TPID at ETH_OFF_TYPE */
#define VLAN_OFF_TYPE 16u          /* the encapsulated ethertype */
#define VLAN_VID_MASK 0x0fffu
#define ETHERTYPE_IPV4 0x0800u
#define ETHERTYPE_ARP 0x0806u
#define ETHERTYPE_VLAN 0x8100u

#define ARP_OFF_HTYPE 0u
#define ARP_OFF_PTYPE 2u
#define ARP_OFF_HLEN 4u
#define ARP_OFF_PLEN 5u
#define ARP_OFF_OP 6u
#define ARP_OFF_SHA 8u
#define ARP_OFF_SPA 14u
#define ARP_OFF_THA 18u
#define ARP_OFF_TPA 24u
#define ARP_HTYPE_ETHER 1u
#define ARP_HLEN_ETHER 6u
#define ARP_PLEN_IPV4 4u
#define ARP_OP_REQUEST 1u
#define ARP_OP_REPLY 2u

#define IP_OFF_VIHL 0u
#define IP_OFF_TOS 1u
#define IP_OFF_TOTLEN 2u
#define IP_OFF_ID 4u
#define IP_OFF_FRAG 6u
#define IP_OFF_TTL 8u
#define IP_OFF_PROTO 9u
#define IP_OFF_CSUM 10u
#define IP_OFF_SRC 12u
#define IP_OFF_DST 16u
#define IP_VERSION 4u
#define IP_VERSION_SHIFT 4u        /* version in the high nibble of octet 0 */
#define IP_IHL_MASK 0x0fu
#define IP_IHL_UNIT_BYTES 4u       /* IHL counts 32-bit words */
#define IP_VIHL_NO_OPTIONS 0x45u   /* version 4, IHL 5 */
#define IP_FLAG_RESERVED 0x8000u
#define IP_FLAG_MF 0x2000u
#define IP_FRAG_OFF_MASK 0x1fffu
#define IP_PROTO_ICMP 1u
#define IP_PROTO_UDP 17u

/* Address classes, host order. */
#define IPV4_NET8_MASK 0xff000000u
#define IPV4_ZERONET 0x00000000u   /* 0/8: "this network", never a source */
#define IPV4_LOOPBACK 0x7f000000u  /* 127/8 */
#define IPV4_MCAST_MASK 0xf0000000u
#define IPV4_MCAST 0xe0000000u     /* 224/4 */
#define IPV4_BCAST 0xffffffffu
/* A subnet has a broadcast address when it has at least two host bits
 * (RFC 3021: a /31 has none). */
#define IPV4_BCAST_HOSTS_MIN 3u

#define UDP_OFF_SPORT 0u
#define UDP_OFF_DPORT 2u
#define UDP_OFF_LEN 4u
#define UDP_OFF_CSUM 6u
#define UDP_PSEUDO_BYTES 12u       /* source, destination, zero, protocol, length */
#define PSEUDO_OFF_SRC 0u
#define PSEUDO_OFF_DST 4u
#define PSEUDO_OFF_ZERO 8u
#define PSEUDO_OFF_PROTO 9u
#define PSEUDO_OFF_LEN 10u

#define ICMP_OFF_TYPE 0u
#define ICMP_OFF_CODE 1u
#define ICMP_OFF_CSUM 2u
#define ICMP_ECHO_REPLY 0u
#define ICMP_ECHO_REQUEST 8u
#define ICMP_ECHO_BYTES 8u         /* type, code, checksum, id, sequence */

#define CSUM_VALID 0xffffu         /* folded sum over data with a correct checksum */
#define CSUM_BYTE_MASK 0xffu

_Static_assert(PM_NET_ETH_BYTES == ETH_OFF_TYPE + 2u, "Ethernet header layout");
_Static_assert(PM_NET_ETH_BYTES + PM_NET_VLAN_BYTES == VLAN_OFF_TYPE + 2u, "802.1Q layout");
_Static_assert(PM_NET_ARP_BYTES == ARP_OFF_TPA + IPV4_ADDR_BYTES, "ARP payload layout");
_Static_assert(PM_NET_ETH_BYTES + PM_NET_VLAN_BYTES + PM_NET_ARP_BYTES <= PM_NET_FRAME_BYTES_MIN,
	       "an ARP frame is padded, never cut");
_Static_assert(PM_NET_UDP_PAYLOAD_BYTES_MAX + PM_NET_IPV4_BYTES + PM_NET_UDP_BYTES == 0xffffu,
	       "the largest datagram fills the IPv4 total length");
_Static_assert(PM_NET_IPV4_BYTES_MAX == IP_IHL_MASK * IP_IHL_UNIT_BYTES, "IHL 15");
_Static_assert(PM_NET_TTL > 0 && PM_NET_TTL <= 255u, "TTL is one octet");

/* ---------------------------------------------------------------- helpers */

#define NF_LIKELY(x) __builtin_expect(!!(x), 1)
#define NF_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Survives release builds: a builder called on a frame the parser did not
 * classify so is a caller bug, and writing past the frame would be worse. */
#define NF_ASSERT(cond)                                    \
	do {                                               \
		if (NF_UNLIKELY(!(cond)))                  \
			nf_panic(__LINE__, #cond);         \
	} while (0)

__attribute__((cold)) static _Noreturn void nf_panic(int line, const char *what)
{
	fprintf(stderr, "netfe.c:%d: assertion failed: %s\n", line, what);
	abort();
}

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* A network-order 32-bit field as it sits in the frame (an _be value). */
static inline uint32_t get32be(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

/* A checksum from pm_net_sum()/pm_net_fold(): stored in host byte order. */
static inline void put_csum(uint8_t *p, uint16_t c)
{
	memcpy(p, &c, sizeof c);
}

static const uint8_t mac_bcast[MAC_BYTES] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t mac_zero[MAC_BYTES];

static inline bool mac_is_zero(const uint8_t *m)
{
	return memcmp(m, mac_zero, MAC_BYTES) == 0;
}

static inline uint32_t ihl_bytes(const uint8_t *ip)
{
	return (ip[IP_OFF_VIHL] & IP_IHL_MASK) * IP_IHL_UNIT_BYTES;
}

static enum pm_net_kind drop(struct pm_net_pkt *pkt, enum pm_net_drop why)
{
	pkt->kind = PM_NET_DROP;
	pkt->drop = why;
	return PM_NET_DROP;
}

static enum pm_net_kind classify(struct pm_net_pkt *pkt, enum pm_net_kind kind)
{
	pkt->kind = kind;
	pkt->drop = PM_NET_DROP_NONE;
	return kind;
}

static const char *const drop_names[PM_NET_DROP_REASONS] = {
	[PM_NET_DROP_NONE] = "none",
	[PM_NET_DROP_SHORT] = "short",
	[PM_NET_DROP_MAC] = "mac",
	[PM_NET_DROP_VLAN] = "vlan",
	[PM_NET_DROP_ETHERTYPE] = "ethertype",
	[PM_NET_DROP_ARP] = "arp",
	[PM_NET_DROP_IP_HEADER] = "ip_header",
	[PM_NET_DROP_IP_CKSUM] = "ip_cksum",
	[PM_NET_DROP_IP_SRC] = "ip_src",
	[PM_NET_DROP_IP_DST] = "ip_dst",
	[PM_NET_DROP_IP_PROTO] = "ip_proto",
	[PM_NET_DROP_ICMP] = "icmp",
	[PM_NET_DROP_UDP_HEADER] = "udp_header",
	[PM_NET_DROP_UDP_CKSUM] = "udp_cksum",
	[PM_NET_DROP_UDP_PORT] = "udp_port",
	[PM_NET_DROP_FRAG] = "frag",
	[PM_NET_DROP_NO_ROUTE] = "no_route",
};

const char *pm_net_drop_name(enum pm_net_drop d)
{
	if ((uint32_t)d >= PM_NET_DROP_REASONS || drop_names[d] == NULL)
		return "unknown";
	return drop_names[d];
}

/* ---------------------------------------------------------------- checksum */

/* 64 bits of one's complement sum folded to 16; a non-zero sum stays non-zero,
 * so the result depends only on the sum's value modulo 0xffff. */
static inline uint32_t fold64(uint64_t acc)
{
	acc = (acc & UINT32_MAX) + (acc >> 32);
	acc = (acc & UINT32_MAX) + (acc >> 32);
	return pm_net_fold((uint32_t)acc);
}

static inline uint64_t add_carry(uint64_t acc, uint64_t w)
{
	acc += w;
	return acc + (acc < w); /* end-around carry */
}

/* Eight bytes at a time: a 64-bit word is four 16-bit words, and 2^16 == 1
 * modulo 0xffff, so its one's complement sum folds to theirs. Loads go through
 * memcpy, so the result depends on the bytes only, not on their alignment. */
uint32_t pm_net_sum(const void *p, uint32_t len, uint32_t sum)
{
	const uint8_t *b = p;
	uint64_t acc = sum;
	for (; len >= sizeof(uint64_t); b += sizeof(uint64_t), len -= sizeof(uint64_t)) {
		uint64_t w;
		memcpy(&w, b, sizeof w);
		acc = add_carry(acc, w);
	}
	if (len >= sizeof(uint32_t)) {
		uint32_t w;
		memcpy(&w, b, sizeof w);
		acc = add_carry(acc, w);
		b += sizeof w;
		len -= sizeof w;
	}
	if (len >= sizeof(uint16_t)) {
		uint16_t w;
		memcpy(&w, b, sizeof w);
		acc = add_carry(acc, w);
		b += sizeof w;
		len -= sizeof w;
	}
	if (len) { /* the odd byte, padded with a zero byte (RFC 1071) */
		const uint8_t last[2] = { b[0], 0 };
		uint16_t w;
		memcpy(&w, last, sizeof w);
		acc = add_carry(acc, w);
	}
	return fold64(acc);
}

uint16_t pm_net_fold(uint32_t sum)
{
	sum = (sum & UINT16_MAX) + (sum >> 16);
	sum = (sum & UINT16_MAX) + (sum >> 16);
	return (uint16_t)sum;
}

/* The UDP pseudo header's sum. */
static uint32_t pseudo_sum(uint32_t src_be, uint32_t dst_be, uint32_t udp_len)
{
	uint8_t ph[UDP_PSEUDO_BYTES];
	memcpy(ph + PSEUDO_OFF_SRC, &src_be, IPV4_ADDR_BYTES);
	memcpy(ph + PSEUDO_OFF_DST, &dst_be, IPV4_ADDR_BYTES);
	ph[PSEUDO_OFF_ZERO] = 0;
	ph[PSEUDO_OFF_PROTO] = IP_PROTO_UDP;
	put16(ph + PSEUDO_OFF_LEN, udp_len);
	return pm_net_sum(ph, sizeof ph, 0);
}

/* Zero the checksum field at p + field, sum len bytes from p, store the sum. */
static void write_csum(uint8_t *p, uint32_t len, uint32_t field)
{
	put16(p + field, 0);
	put_csum(p + field, (uint16_t)~pm_net_fold(pm_net_sum(p, len, 0)));
}

/* ---------------------------------------------------------------- parsing */

/* A martian source: 0/8, loopback, multicast, broadcast (limited or our
 * subnet's), or our own address. */
static bool ip_martian(const struct pm_net_local *l, uint32_t ip_be)
{
	uint32_t h = ntohl(ip_be), mask = ntohl(l->mask_be), net = ntohl(l->ip_be) & mask;
	if ((h & IPV4_NET8_MASK) == IPV4_ZERONET || (h & IPV4_NET8_MASK) == IPV4_LOOPBACK ||
	    (h & IPV4_MCAST_MASK) == IPV4_MCAST || h == IPV4_BCAST || ip_be == l->ip_be)
		return true;
	return ~mask >= IPV4_BCAST_HOSTS_MIN && (h & mask) == net && (h | mask) == IPV4_BCAST;
}

/* Ethernet and 802.1Q: the L2 header length and the ethertype, or why not. */
static enum pm_net_drop eth_parse(const struct pm_net_local *l, const uint8_t *f, uint32_t len,
				  uint32_t *l2, uint16_t *type)
{
	if (len < PM_NET_ETH_BYTES)
		return PM_NET_DROP_SHORT;
	if (memcmp(f + ETH_OFF_DST, l->mac, MAC_BYTES) != 0 &&
	    memcmp(f + ETH_OFF_DST, mac_bcast, MAC_BYTES) != 0)
		return PM_NET_DROP_MAC;
	if (f[ETH_OFF_SRC] & MAC_GROUP_BIT)
		return PM_NET_DROP_MAC;
	uint16_t t = get16(f + ETH_OFF_TYPE);
	*l2 = PM_NET_ETH_BYTES;
	if (t == ETHERTYPE_VLAN) {
		if (len < PM_NET_ETH_BYTES + PM_NET_VLAN_BYTES)
			return PM_NET_DROP_SHORT;
		uint32_t vid = get16(f + VLAN_OFF_TCI) & VLAN_VID_MASK;
		if (l->vlan == 0 || vid != (l->vlan & VLAN_VID_MASK))
			return PM_NET_DROP_VLAN;
		t = get16(f + VLAN_OFF_TYPE);
		*l2 += PM_NET_VLAN_BYTES;
	} else if (l->vlan != 0) {
		return PM_NET_DROP_VLAN;
	}
	*type = t;
	return PM_NET_DROP_NONE;
}

static enum pm_net_kind arp_parse(const struct pm_net_local *l, const uint8_t *a, uint32_t avail,
				  uint32_t l3_off, struct pm_net_pkt *pkt)
{
	if (avail < PM_NET_ARP_BYTES)
		return drop(pkt, PM_NET_DROP_SHORT);
	uint32_t op = get16(a + ARP_OFF_OP);
	if (get16(a + ARP_OFF_HTYPE) != ARP_HTYPE_ETHER || get16(a + ARP_OFF_PTYPE) != ETHERTYPE_IPV4 ||
	    a[ARP_OFF_HLEN] != ARP_HLEN_ETHER || a[ARP_OFF_PLEN] != ARP_PLEN_IPV4 ||
	    (op != ARP_OP_REQUEST && op != ARP_OP_REPLY))
		return drop(pkt, PM_NET_DROP_ARP);
	uint32_t spa = get32be(a + ARP_OFF_SPA), tpa = get32be(a + ARP_OFF_TPA);
	if (ip_martian(l, spa) || (a[ARP_OFF_SHA] & MAC_GROUP_BIT) || mac_is_zero(a + ARP_OFF_SHA))
		return drop(pkt, PM_NET_DROP_ARP);
	bool gratuitous = spa == tpa;
	if (op == ARP_OP_REQUEST && !gratuitous && tpa != l->ip_be)
		return drop(pkt, PM_NET_DROP_ARP);
	memcpy(pkt->src_mac, a + ARP_OFF_SHA, MAC_BYTES);
	pkt->src_ip_be = spa;
	pkt->l3_off = (uint16_t)l3_off;
	return classify(pkt, op == ARP_OP_REQUEST && !gratuitous ? PM_NET_ARP_REQUEST : PM_NET_ARP_REPLY);
}

/* The IPv4 header both parsers check: fields, checksum (when asked), source
 * and destination. */
static enum pm_net_drop ipv4_check(const struct pm_net_local *l, const uint8_t *ip, uint32_t avail,
				   bool check_csum, uint32_t offload)
{
	if (avail < PM_NET_IPV4_BYTES)
		return PM_NET_DROP_SHORT;
	uint32_t ihl = ihl_bytes(ip), tot = get16(ip + IP_OFF_TOTLEN);
	if (ip[IP_OFF_VIHL] >> IP_VERSION_SHIFT != IP_VERSION || ihl < PM_NET_IPV4_BYTES || ihl > avail ||
	    tot < ihl || tot > avail || (get16(ip + IP_OFF_FRAG) & IP_FLAG_RESERVED) ||
	    ip[IP_OFF_TTL] == 0)
		return PM_NET_DROP_IP_HEADER;
	if (check_csum && ((offload & PM_NET_OFL_IP_BAD) ||
			   (!(offload & PM_NET_OFL_IP_GOOD) &&
			    pm_net_fold(pm_net_sum(ip, ihl, 0)) != CSUM_VALID)))
		return PM_NET_DROP_IP_CKSUM;
	if (ip_martian(l, get32be(ip + IP_OFF_SRC)))
		return PM_NET_DROP_IP_SRC;
	if (get32be(ip + IP_OFF_DST) != l->ip_be)
		return PM_NET_DROP_IP_DST;
	return PM_NET_DROP_NONE;
}

static enum pm_net_kind icmp_parse(const uint8_t *ip, uint32_t l3_off, struct pm_net_pkt *pkt)
{
	uint32_t ihl = ihl_bytes(ip), n = get16(ip + IP_OFF_TOTLEN) - ihl;
	const uint8_t *icmp = ip + ihl;
	if (n < ICMP_ECHO_BYTES || icmp[ICMP_OFF_TYPE] != ICMP_ECHO_REQUEST || icmp[ICMP_OFF_CODE] != 0 ||
	    pm_net_fold(pm_net_sum(icmp, n, 0)) != CSUM_VALID)
		return drop(pkt, PM_NET_DROP_ICMP);
	pkt->l4_off = (uint16_t)(l3_off + ihl);
	return classify(pkt, PM_NET_ICMP_ECHO);
}

/* UDP after a checked IPv4 header at ip (l3_off bytes into what the caller
 * parses): offsets in pkt are relative to that start. */
static enum pm_net_kind udp_parse(const struct pm_net_local *l, const uint8_t *ip, uint32_t l3_off,
				  uint32_t offload, struct pm_net_pkt *pkt)
{
	uint32_t ihl = ihl_bytes(ip), n = get16(ip + IP_OFF_TOTLEN) - ihl;
	const uint8_t *u = ip + ihl;
	if (n < PM_NET_UDP_BYTES || get16(u + UDP_OFF_LEN) != n || get16(u + UDP_OFF_SPORT) == 0)
		return drop(pkt, PM_NET_DROP_UDP_HEADER);
	uint16_t dport = get16(u + UDP_OFF_DPORT);
	if (dport < l->port_lo || dport > l->port_hi)
		return drop(pkt, PM_NET_DROP_UDP_PORT);
	if (get16(u + UDP_OFF_CSUM) != 0) { /* zero: the sender did not checksum */
		uint32_t s = pseudo_sum(get32be(ip + IP_OFF_SRC), get32be(ip + IP_OFF_DST), n);
		if ((offload & PM_NET_OFL_L4_BAD) ||
		    (!(offload & PM_NET_OFL_L4_GOOD) && pm_net_fold(pm_net_sum(u, n, s)) != CSUM_VALID))
			return drop(pkt, PM_NET_DROP_UDP_CKSUM);
	}
	pkt->src_port = get16(u + UDP_OFF_SPORT);
	pkt->dst_port = dport;
	pkt->l4_off = (uint16_t)(l3_off + ihl);
	pkt->payload_off = l3_off + ihl + PM_NET_UDP_BYTES;
	pkt->payload_len = n - PM_NET_UDP_BYTES;
	return classify(pkt, PM_NET_UDP);
}

static bool ip_is_fragment(const uint8_t *ip)
{
	return (get16(ip + IP_OFF_FRAG) & (IP_FLAG_MF | IP_FRAG_OFF_MASK)) != 0;
}

static enum pm_net_kind ipv4_parse(const struct pm_net_local *l, const uint8_t *f, uint32_t len,
				   uint32_t l2, uint32_t offload, struct pm_net_pkt *pkt)
{
	const uint8_t *ip = f + l2;
	enum pm_net_drop d = ipv4_check(l, ip, len - l2, true, offload);
	if (d != PM_NET_DROP_NONE)
		return drop(pkt, d);
	memcpy(pkt->src_mac, f + ETH_OFF_SRC, MAC_BYTES);
	pkt->src_ip_be = get32be(ip + IP_OFF_SRC);
	pkt->l3_off = (uint16_t)l2;
	if (ip_is_fragment(ip))
		return classify(pkt, PM_NET_FRAGMENT);
	switch (ip[IP_OFF_PROTO]) {
	case IP_PROTO_UDP:
		return udp_parse(l, ip, l2, offload, pkt);
	case IP_PROTO_ICMP:
		return icmp_parse(ip, l2, pkt);
	default:
		return drop(pkt, PM_NET_DROP_IP_PROTO);
	}
}

enum pm_net_kind pm_net_parse(const struct pm_net_local *l, const uint8_t *frame, uint32_t len,
			      uint32_t offload, struct pm_net_pkt *pkt)
{
	*pkt = (struct pm_net_pkt){ .kind = PM_NET_DROP };
	uint32_t l2 = 0;
	uint16_t type = 0;
	enum pm_net_drop d = eth_parse(l, frame, len, &l2, &type);
	if (d != PM_NET_DROP_NONE)
		return drop(pkt, d);
	switch (type) {
	case ETHERTYPE_IPV4:
		return ipv4_parse(l, frame, len, l2, offload, pkt);
	case ETHERTYPE_ARP:
		return arp_parse(l, frame + l2, len - l2, l2, pkt);
	default:
		return drop(pkt, PM_NET_DROP_ETHERTYPE);
	}
}

enum pm_net_kind pm_net_parse_ipv4(const struct pm_net_local *l, const uint8_t *ip, uint32_t len,
				   struct pm_net_pkt *pkt)
{
	*pkt = (struct pm_net_pkt){ .kind = PM_NET_DROP };
	enum pm_net_drop d = ipv4_check(l, ip, len, false, 0);
	if (d != PM_NET_DROP_NONE)
		return drop(pkt, d);
	if (ip_is_fragment(ip)) /* reassembly should have cleared them */
		return drop(pkt, PM_NET_DROP_FRAG);
	if (ip[IP_OFF_PROTO] != IP_PROTO_UDP)
		return drop(pkt, PM_NET_DROP_IP_PROTO);
	pkt->src_ip_be = get32be(ip + IP_OFF_SRC);
	return udp_parse(l, ip, 0, 0, pkt);
}

/* ---------------------------------------------------------------- builders */

/* The L2 header length of a frame the parser accepted. */
static uint32_t frame_l2(const uint8_t *f)
{
	return get16(f + ETH_OFF_TYPE) == ETHERTYPE_VLAN ? PM_NET_ETH_BYTES + PM_NET_VLAN_BYTES
							 : PM_NET_ETH_BYTES;
}

uint32_t pm_net_arp_answer(const struct pm_net_local *l, uint8_t *frame, uint32_t len)
{
	NF_ASSERT(len >= PM_NET_ETH_BYTES);
	uint32_t l2 = frame_l2(frame), end = l2 + PM_NET_ARP_BYTES;
	NF_ASSERT(len >= end);
	uint8_t *a = frame + l2, who_mac[MAC_BYTES], who_ip[IPV4_ADDR_BYTES];
	NF_ASSERT(get16(a + ARP_OFF_OP) == ARP_OP_REQUEST);
	memcpy(who_mac, a + ARP_OFF_SHA, MAC_BYTES);
	memcpy(who_ip, a + ARP_OFF_SPA, sizeof who_ip);
	memcpy(frame + ETH_OFF_DST, who_mac, MAC_BYTES);
	memcpy(frame + ETH_OFF_SRC, l->mac, MAC_BYTES);
	put16(a + ARP_OFF_OP, ARP_OP_REPLY);
	memcpy(a + ARP_OFF_SHA, l->mac, MAC_BYTES);
	memcpy(a + ARP_OFF_SPA, &l->ip_be, IPV4_ADDR_BYTES);
	memcpy(a + ARP_OFF_THA, who_mac, MAC_BYTES);
	memcpy(a + ARP_OFF_TPA, who_ip, sizeof who_ip);
	/* the reply is the minimum frame (or the request's length when shorter);
	 * the padding is ours, zeroed */
	uint32_t n = end > PM_NET_FRAME_BYTES_MIN ? end : PM_NET_FRAME_BYTES_MIN;
	n = n < len ? n : len;
	memset(frame + end, 0, n - end);
	return n;
}

uint32_t pm_net_icmp_answer(const struct pm_net_local *l, uint8_t *frame, uint32_t len,
			    const struct pm_net_pkt *pkt)
{
	NF_ASSERT(pkt->kind == PM_NET_ICMP_ECHO);
	NF_ASSERT(pkt->l3_off + PM_NET_IPV4_BYTES <= len);
	uint8_t *ip = frame + pkt->l3_off;
	uint32_t ihl = ihl_bytes(ip), tot = get16(ip + IP_OFF_TOTLEN);
	NF_ASSERT(pkt->l4_off == pkt->l3_off + ihl && pkt->l3_off + tot <= len);
	NF_ASSERT(tot >= ihl + ICMP_ECHO_BYTES);
	uint8_t *icmp = ip + ihl;
	memcpy(frame + ETH_OFF_DST, frame + ETH_OFF_SRC, MAC_BYTES);
	memcpy(frame + ETH_OFF_SRC, l->mac, MAC_BYTES);
	memcpy(ip + IP_OFF_DST, ip + IP_OFF_SRC, IPV4_ADDR_BYTES);
	memcpy(ip + IP_OFF_SRC, &l->ip_be, IPV4_ADDR_BYTES);
	ip[IP_OFF_TTL] = PM_NET_TTL;
	write_csum(ip, ihl, IP_OFF_CSUM);
	icmp[ICMP_OFF_TYPE] = ICMP_ECHO_REPLY;
	icmp[ICMP_OFF_CODE] = 0;
	write_csum(icmp, tot - ihl, ICMP_OFF_CSUM);
	return len;
}

uint32_t pm_net_arp_request(const struct pm_net_local *l, uint32_t target_be, uint8_t *out)
{
	uint32_t l2 = pm_net_eth_write(l, mac_bcast, ETHERTYPE_ARP, out);
	uint8_t *a = out + l2;
	put16(a + ARP_OFF_HTYPE, ARP_HTYPE_ETHER);
	put16(a + ARP_OFF_PTYPE, ETHERTYPE_IPV4);
	a[ARP_OFF_HLEN] = ARP_HLEN_ETHER;
	a[ARP_OFF_PLEN] = ARP_PLEN_IPV4;
	put16(a + ARP_OFF_OP, ARP_OP_REQUEST);
	memcpy(a + ARP_OFF_SHA, l->mac, MAC_BYTES);
	memcpy(a + ARP_OFF_SPA, &l->ip_be, IPV4_ADDR_BYTES);
	memset(a + ARP_OFF_THA, 0, MAC_BYTES);
	memcpy(a + ARP_OFF_TPA, &target_be, IPV4_ADDR_BYTES);
	memset(a + PM_NET_ARP_BYTES, 0, PM_NET_FRAME_BYTES_MIN - (l2 + PM_NET_ARP_BYTES));
	return PM_NET_FRAME_BYTES_MIN;
}

uint32_t pm_net_l2_bytes(const struct pm_net_local *l)
{
	return l->vlan ? PM_NET_ETH_BYTES + PM_NET_VLAN_BYTES : PM_NET_ETH_BYTES;
}

uint32_t pm_net_eth_write(const struct pm_net_local *l, const uint8_t dst_mac[6], uint16_t ethertype,
			  uint8_t *out)
{
	memmove(out + ETH_OFF_DST, dst_mac, MAC_BYTES); /* dst_mac may be the frame's own */
	memcpy(out + ETH_OFF_SRC, l->mac, MAC_BYTES);
	if (l->vlan == 0) {
		put16(out + ETH_OFF_TYPE, ethertype);
		return PM_NET_ETH_BYTES;
	}
	put16(out + ETH_OFF_TYPE, ETHERTYPE_VLAN);
	put16(out + VLAN_OFF_TCI, l->vlan & VLAN_VID_MASK); /* priority 0 */
	put16(out + VLAN_OFF_TYPE, ethertype);
	return PM_NET_ETH_BYTES + PM_NET_VLAN_BYTES;
}

uint32_t pm_net_ipv4_udp_write(const struct pm_net_local *l, uint32_t dst_be, uint16_t src_port,
			       uint16_t dst_port, uint16_t ip_id, uint8_t *ip, uint32_t payload_len)
{
	NF_ASSERT(payload_len <= PM_NET_UDP_PAYLOAD_BYTES_MAX);
	uint32_t udp_len = PM_NET_UDP_BYTES + payload_len;
	ip[IP_OFF_VIHL] = IP_VIHL_NO_OPTIONS;
	ip[IP_OFF_TOS] = 0;
	put16(ip + IP_OFF_TOTLEN, PM_NET_IPV4_BYTES + udp_len);
	put16(ip + IP_OFF_ID, ip_id);
	put16(ip + IP_OFF_FRAG, 0); /* DF clear: the datagram may be fragmented */
	ip[IP_OFF_TTL] = PM_NET_TTL;
	ip[IP_OFF_PROTO] = IP_PROTO_UDP;
	memcpy(ip + IP_OFF_SRC, &l->ip_be, IPV4_ADDR_BYTES);
	memcpy(ip + IP_OFF_DST, &dst_be, IPV4_ADDR_BYTES);
	write_csum(ip, PM_NET_IPV4_BYTES, IP_OFF_CSUM);
	uint8_t *u = ip + PM_NET_IPV4_BYTES;
	put16(u + UDP_OFF_SPORT, src_port);
	put16(u + UDP_OFF_DPORT, dst_port);
	put16(u + UDP_OFF_LEN, udp_len);
	put16(u + UDP_OFF_CSUM, 0);
	if (l->udp_csum_none)
		return PM_NET_IPV4_BYTES + PM_NET_UDP_BYTES; /* 0: none (memif) */
	uint16_t c = (uint16_t)~pm_net_fold(pm_net_sum(u, udp_len, pseudo_sum(l->ip_be, dst_be, udp_len)));
	put_csum(u + UDP_OFF_CSUM, c == 0 ? UINT16_MAX : c); /* 0 would mean "none" */
	return PM_NET_IPV4_BYTES + PM_NET_UDP_BYTES;
}

uint32_t pm_net_next_hop(const struct pm_net_local *l, uint32_t dst_be)
{
	if (((dst_be ^ l->ip_be) & l->mask_be) == 0)
		return dst_be;
	return l->gateway_be;
}

/* ---------------------------------------------------------------- ARP table */

#define ARP_SLOT_MASK (PM_ARP_ENTRIES - 1u)
#define ARP_HASH_BITS ((uint32_t)__builtin_ctz(PM_ARP_ENTRIES))
#define ARP_HASH_MUL 2654435761u   /* Knuth's multiplicative constant, 2^32 / phi */
/* How often a lookup re-reads an entry a writer keeps changing before it
 * gives up (a miss: the caller asks or holds the packet). */
#define ARP_READ_TRIES 256u
#define ARP_NEVER UINT64_MAX       /* asked_ms: no request sent */

_Static_assert(PM_ARP_ENTRIES >= 2 && (PM_ARP_ENTRIES & (PM_ARP_ENTRIES - 1u)) == 0,
	       "PM_ARP_ENTRIES is a power of two");
_Static_assert(PM_ARP_PROBE >= 1 && PM_ARP_PROBE <= PM_ARP_ENTRIES, "probe within the table");
_Static_assert(PM_ARP_RETRY_MS < PM_ARP_TTL_MS, "pending entries expire before learnt ones");

/* What a reader copied out of an entry. */
struct arp_snap {
	uint32_t ip_be;
	uint8_t mac[MAC_BYTES];
	uint64_t expires_ms;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static uint32_t arp_home(uint32_t ip_be)
{
	return (ntohl(ip_be) * ARP_HASH_MUL) >> (32u - ARP_HASH_BITS);
}

static void table_lock(struct pm_arp_table *t)
{
	while (atomic_flag_test_and_set_explicit(&t->lock, memory_order_acquire))
		cpu_relax();
}

static void table_unlock(struct pm_arp_table *t)
{
	atomic_flag_clear_explicit(&t->lock, memory_order_release);
}

/* A consistent copy of e, or false when writers kept it busy. */
static bool entry_read(const struct pm_arp_entry *e, struct arp_snap *s)
{
	for (uint32_t i = 0; i < ARP_READ_TRIES; i++) {
		uint32_t seq = atomic_load_explicit(&e->seq, memory_order_acquire);
		if (seq & 1u) {
			cpu_relax();
			continue;
		}
		s->ip_be = __atomic_load_n(&e->ip_be, __ATOMIC_RELAXED);
		for (uint32_t j = 0; j < MAC_BYTES; j++)
			s->mac[j] = __atomic_load_n(&e->mac[j], __ATOMIC_RELAXED);
		s->expires_ms = __atomic_load_n(&e->expires_ms, __ATOMIC_RELAXED);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&e->seq, memory_order_relaxed) == seq)
			return true;
	}
	return false;
}

static void entry_write_locked(struct pm_arp_entry *e, uint32_t ip_be, const uint8_t mac[6],
			       uint64_t expires_ms)
{
	uint32_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
	atomic_store_explicit(&e->seq, seq + 1u, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	__atomic_store_n(&e->ip_be, ip_be, __ATOMIC_RELAXED);
	for (uint32_t j = 0; j < MAC_BYTES; j++)
		__atomic_store_n(&e->mac[j], mac[j], __ATOMIC_RELAXED);
	__atomic_store_n(&e->expires_ms, expires_ms, __ATOMIC_RELAXED);
	atomic_store_explicit(&e->seq, seq + 2u, memory_order_release);
}

/* The entry for ip_be in its probe window; else the first empty or expired
 * one; else the one that expires first. */
static struct pm_arp_entry *slot_for_locked(struct pm_arp_table *t, uint32_t ip_be, uint64_t now_ms)
{
	uint32_t home = arp_home(ip_be);
	struct pm_arp_entry *free_e = NULL, *oldest = NULL;
	for (uint32_t i = 0; i < PM_ARP_PROBE; i++) {
		struct pm_arp_entry *e = &t->e[(home + i) & ARP_SLOT_MASK];
		if (e->ip_be == ip_be)
			return e;
		if (!free_e && (e->ip_be == 0 || e->expires_ms <= now_ms))
			free_e = e;
		if (!oldest || e->expires_ms < oldest->expires_ms)
			oldest = e;
	}
	return free_e ? free_e : oldest;
}

void pm_arp_init(struct pm_arp_table *t)
{
	memset(t->e, 0, sizeof t->e);
	for (uint32_t i = 0; i < PM_ARP_ENTRIES; i++) {
		atomic_init(&t->e[i].seq, 0);
		t->e[i].asked_ms = ARP_NEVER;
	}
	atomic_flag_clear(&t->lock);
}

bool pm_arp_lookup(struct pm_arp_table *t, uint32_t ip_be, uint64_t now_ms, uint8_t mac[6])
{
	if (ip_be == 0)
		return false;
	uint32_t home = arp_home(ip_be);
	for (uint32_t i = 0; i < PM_ARP_PROBE; i++) {
		struct arp_snap s;
		if (!entry_read(&t->e[(home + i) & ARP_SLOT_MASK], &s) || s.ip_be != ip_be)
			continue;
		if (s.expires_ms <= now_ms || mac_is_zero(s.mac)) /* expired or pending */
			return false;
		memcpy(mac, s.mac, MAC_BYTES);
		return true;
	}
	return false;
}

void pm_arp_learn(struct pm_arp_table *t, uint32_t ip_be, const uint8_t mac[6], uint64_t now_ms)
{
	if (ip_be == 0)
		return;
	table_lock(t);
	struct pm_arp_entry *e = slot_for_locked(t, ip_be, now_ms);
	entry_write_locked(e, ip_be, mac, now_ms + PM_ARP_TTL_MS);
	e->asked_ms = ARP_NEVER;
	table_unlock(t);
}

/* A request is due unless the entry is resolved and fresh, or one went out
 * less than PM_ARP_RETRY_MS ago. Asking makes the entry pending (no MAC) for
 * PM_ARP_RETRY_MS, so an unanswered one is the first to be reused. */
bool pm_arp_should_ask(struct pm_arp_table *t, uint32_t ip_be, uint64_t now_ms)
{
	if (ip_be == 0)
		return false;
	table_lock(t);
	struct pm_arp_entry *e = slot_for_locked(t, ip_be, now_ms);
	bool ask = true;
	if (e->ip_be == ip_be) {
		bool fresh = e->expires_ms > now_ms && !mac_is_zero(e->mac);
		bool recent = e->asked_ms != ARP_NEVER && now_ms < e->asked_ms + PM_ARP_RETRY_MS;
		ask = !fresh && !recent;
	}
	if (ask) {
		entry_write_locked(e, ip_be, mac_zero, now_ms + PM_ARP_RETRY_MS);
		e->asked_ms = now_ms;
	}
	table_unlock(t);
	return ask;
}
