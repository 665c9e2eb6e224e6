/* SPDX-License-Identifier: MIT
 *
 * fuzz_netfe.c — the DPDK backend's L2/L3 front end (proto/netfe.h) on
 * raw Ethernet frames, without EAL: pm_net_parse under a few port
 * configurations (untagged, 802.1Q VLAN 100, a single port and no gateway)
 * and device checksum verdicts; the input also read as a reassembled IPv4
 * datagram (pm_net_parse_ipv4).
 *
 * Invariants: every frame gets a kind, a dropped one a reason and an accepted
 * one none; offsets and the UDP payload lie inside the frame, the payload's
 * destination port within the configured range; an ARP request or ICMP echo
 * answered in place (on a copy of exactly the frame's length, so ASan sees
 * any write past it) never grows past the frame, and the echo reply's IPv4
 * header checksum is valid.
 */
#include <arpa/inet.h>
#include <string.h>

#include "fuzz.h"
#include "netfe.h"

/* Frames longer than a jumbo frame never reach the parser (the NIC's MTU). */
#define NETFE_FRAME_BYTES_MAX 9018u
/* A valid Internet checksum sums (folded, not complemented) to all ones. */
#define NETFE_CSUM_OK 0xFFFFu

/* a.b.c.d in network order, as a constant expression */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define IP4(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#else
#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#endif

static const struct pm_net_local locals[] = {
	{ .mac = { 0x02, 0, 0, 0, 0, 1 }, .vlan = 0, .ip_be = IP4(10, 0, 0, 1),
	  .mask_be = IP4(255, 255, 255, 0), .gateway_be = IP4(10, 0, 0, 254),
	  .port_lo = 7700, .port_hi = 7703 },
	{ .mac = { 0x02, 0, 0, 0, 0, 1 }, .vlan = 100, .ip_be = IP4(10, 0, 0, 1),
	  .mask_be = IP4(255, 255, 255, 0), .gateway_be = IP4(10, 0, 0, 254),
	  .port_lo = 7700, .port_hi = 7703 },
	{ .mac = { 0x02, 0, 0, 0, 0, 2 }, .vlan = 0, .ip_be = IP4(10, 0, 0, 2),
	  .mask_be = IP4(255, 255, 0, 0), .gateway_be = 0, .port_lo = 7700, .port_hi = 7700 },
};
#define NLOCALS (sizeof(locals) / sizeof(locals[0]))

static const uint32_t offloads[] = {
	0, PM_NET_OFL_IP_GOOD | PM_NET_OFL_L4_GOOD, PM_NET_OFL_IP_BAD | PM_NET_OFL_L4_BAD,
};
#define NOFFLOADS (sizeof(offloads) / sizeof(offloads[0]))

static uint8_t frame_copy[NETFE_FRAME_BYTES_MAX];

static void check_pkt(const struct pm_net_local *l, enum pm_net_kind k,
		      const struct pm_net_pkt *p, uint32_t len)
{
	FUZZ_CHECK(k == p->kind && k <= PM_NET_FRAGMENT);
	FUZZ_CHECK(p->drop < PM_NET_DROP_REASONS);
	FUZZ_CHECK((k == PM_NET_DROP) == (p->drop != PM_NET_DROP_NONE));
	FUZZ_CHECK(pm_net_drop_name(p->drop) != NULL);
	if (k == PM_NET_DROP)
		return;
	FUZZ_CHECK(p->l3_off < len && p->l4_off < len);
	if (k == PM_NET_ARP_REQUEST || k == PM_NET_ARP_REPLY)
		FUZZ_CHECK(p->l3_off + PM_NET_ARP_BYTES <= len);
	if (k == PM_NET_UDP) {
		FUZZ_CHECK(p->l4_off + PM_NET_UDP_BYTES <= len);
		FUZZ_CHECK(p->payload_off == p->l4_off + PM_NET_UDP_BYTES);
		FUZZ_CHECK(p->payload_len <= len - p->payload_off);
		FUZZ_CHECK(p->payload_len <= PM_NET_UDP_PAYLOAD_BYTES_MAX);
		FUZZ_CHECK(p->dst_port >= l->port_lo && p->dst_port <= l->port_hi);
	}
}

/* Answer an ARP request or ping on a heap copy of exactly len bytes. */
static void answer(const struct pm_net_local *l, const uint8_t *f, uint32_t len,
		   const struct pm_net_pkt *p)
{
	uint8_t *copy = malloc(len);
	FUZZ_CHECK(copy != NULL);
	memcpy(copy, f, len);
	if (p->kind == PM_NET_ARP_REQUEST) {
		uint32_t n = pm_net_arp_answer(l, copy, len);
		FUZZ_CHECK(n <= len && n >= p->l3_off + PM_NET_ARP_BYTES);
		FUZZ_CHECK(!memcmp(copy + 6, l->mac, 6)); /* from us */
	} else {
		uint32_t n = pm_net_icmp_answer(l, copy, len, p);
		FUZZ_CHECK(n <= len);
		const uint8_t *ip = copy + p->l3_off;
		uint32_t ihl = (ip[0] & 0x0Fu) * 4u;
		FUZZ_CHECK(pm_net_fold(pm_net_sum(ip, ihl, 0)) == NETFE_CSUM_OK);
		FUZZ_CHECK(!memcmp(ip + 12, &l->ip_be, 4)); /* from us */
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > NETFE_FRAME_BYTES_MAX)
		return 0;
	uint32_t len = (uint32_t)size;
	/* a copy of exactly the frame, so a read past it is ASan's */
	memcpy(frame_copy, data, size);
	for (uint32_t i = 0; i < NLOCALS; i++) {
		for (uint32_t o = 0; o < (i == 0 ? NOFFLOADS : 1u); o++) {
			struct pm_net_pkt p;
			enum pm_net_kind k = pm_net_parse(&locals[i], data, len, offloads[o], &p);
			check_pkt(&locals[i], k, &p, len);
			if (k == PM_NET_ARP_REQUEST || k == PM_NET_ICMP_ECHO)
				answer(&locals[i], data, len, &p);
			if (k == PM_NET_FRAGMENT) { /* as if it had been reassembled */
				k = pm_net_parse_ipv4(&locals[i], data + p.l3_off, len - p.l3_off, &p);
				check_pkt(&locals[i], k, &p, len - p.l3_off);
			}
		}
		struct pm_net_pkt p;
		enum pm_net_kind k = pm_net_parse_ipv4(&locals[i], data, len, &p);
		FUZZ_CHECK(k == PM_NET_DROP || k == PM_NET_UDP);
		check_pkt(&locals[i], k, &p, len);
	}
	FUZZ_CHECK(!memcmp(frame_copy, data, size)); /* parsing never writes */
	return 0;
}
