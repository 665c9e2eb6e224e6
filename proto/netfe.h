/* SPDX-License-Identifier: MIT
 *
 * proto/netfe.h — the L2/L3 front end of the DPDK backend, as pure functions
 * on raw Ethernet frames: no EAL, no mbufs, no threads. pomaid's DPDK backend
 * and libpomai's memif transport both use it (the frames on a NIC and on memif
 * are the same), and the fuzzers feed it raw bytes. It was dataplane/netfe.h;
 * it lives in proto/ because it is the framing under the binary protocol that
 * a memif client and pomaid must both speak, and the client may include
 * nothing but proto/ (it is its own static library, so only programs that use
 * it link it).
 *
 * pm_net_parse() classifies one received frame and validates every header
 * field on the way: Ethernet (destination is us or broadcast; optional 802.1Q
 * tag, which must match the configured VLAN), ARP (Ethernet/IPv4 only,
 * lengths 6/4, request or reply), IPv4 (version 4, IHL >= 5 and within the
 * frame, total length within the frame and >= IHL, reserved flag clear, a
 * source that is not multicast, broadcast, zero or loopback, destination our
 * address, header checksum), ICMP echo requests (checksum), and UDP (length
 * equal to the IP payload, checksum when non-zero, destination port within the
 * configured range). IP fragments are classified as such: the caller hands
 * them to DPDK's ip_frag library and parses the reassembled datagram again with
 * pm_net_parse_ipv4(). Anything else is PM_NET_DROP with a reason, which the
 * caller counts.
 *
 * Builders write headers into caller buffers; the in-place ones turn a request
 * frame into its answer (ARP reply, ICMP echo reply) without a copy. All
 * multi-byte fields in struct pm_net_* are host order unless named _be.
 *
 * The ARP table is shared by the workers of one port: lookups are lock-free
 * (a sequence counter per entry), updates take a spin flag (ARP is the slow
 * path), the table is bounded and entries expire.
 */
#ifndef POMAI_PROTO_NETFE_H
#define POMAI_PROTO_NETFE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define PM_NET_ETH_BYTES 14u
#define PM_NET_VLAN_BYTES 4u
#define PM_NET_IPV4_BYTES 20u       /* without options; the builders never add any */
#define PM_NET_IPV4_BYTES_MAX 60u   /* IHL 15 */
#define PM_NET_UDP_BYTES 8u
#define PM_NET_ARP_BYTES 28u        /* Ethernet/IPv4 ARP payload */
#define PM_NET_FRAME_BYTES_MIN 60u  /* Ethernet minimum without FCS: builders pad to it */
/* Headers in front of a UDP payload as the builders write them: Ethernet
 * (+ 802.1Q when a VLAN is configured), IPv4 without options, UDP. */
#define PM_NET_UDP_HEADROOM_BYTES (PM_NET_ETH_BYTES + PM_NET_VLAN_BYTES + PM_NET_IPV4_BYTES + \
				   PM_NET_UDP_BYTES)
/* Largest UDP payload an IPv4 datagram can carry. */
#define PM_NET_UDP_PAYLOAD_BYTES_MAX 65507u
/* Default TTL of the datagrams the builders write. */
#define PM_NET_TTL 64u

/* ARP table: entries (power of two), how far a probe looks, how long an entry
 * is trusted, and how often a missing peer is asked again. */
#define PM_ARP_ENTRIES 256u
#define PM_ARP_PROBE 8u
#define PM_ARP_TTL_MS 300000u
#define PM_ARP_RETRY_MS 1000u

/* What a received frame is. */
enum pm_net_kind {
	PM_NET_DROP = 0,
	PM_NET_ARP_REQUEST,  /* asks for our address: answer with pm_net_arp_answer() */
	PM_NET_ARP_REPLY,    /* a peer's answer (or a gratuitous ARP): learn it */
	PM_NET_ICMP_ECHO,    /* ping: answer with pm_net_icmp_answer() */
	PM_NET_UDP,          /* a datagram for one of our ports: payload at pkt->payload_off */
	PM_NET_FRAGMENT,     /* an IPv4 fragment for us: reassemble, then pm_net_parse_ipv4() */
};

/* Why a frame was dropped; the backend keeps one counter per reason. */
enum pm_net_drop {
	PM_NET_DROP_NONE = 0,
	PM_NET_DROP_SHORT,          /* shorter than the headers it announces */
	PM_NET_DROP_MAC,            /* destination MAC neither ours nor broadcast */
	PM_NET_DROP_VLAN,           /* tagged when no VLAN is configured, or another VLAN */
	PM_NET_DROP_ETHERTYPE,      /* not ARP or IPv4 */
	PM_NET_DROP_ARP,            /* malformed ARP, or one not about our address */
	PM_NET_DROP_IP_HEADER,      /* version, IHL, total length, reserved flag */
	PM_NET_DROP_IP_CKSUM,
	PM_NET_DROP_IP_SRC,         /* martian source address */
	PM_NET_DROP_IP_DST,         /* not our address */
	PM_NET_DROP_IP_PROTO,       /* neither UDP nor ICMP */
	PM_NET_DROP_ICMP,           /* not an echo request, too short, or bad checksum */
	PM_NET_DROP_UDP_HEADER,     /* UDP length disagrees with the IP payload */
	PM_NET_DROP_UDP_CKSUM,
	PM_NET_DROP_UDP_PORT,       /* destination port outside [port_lo, port_hi] */
	PM_NET_DROP_FRAG,           /* fragment reassembly failed, timed out or was too large */
	PM_NET_DROP_NO_ROUTE,       /* a reply whose next hop did not resolve in time */
	PM_NET_DROP_REASONS
};

/* Checksum verdicts a device may already have (from mbuf offload flags). */
#define PM_NET_OFL_IP_GOOD 1u
#define PM_NET_OFL_IP_BAD 2u
#define PM_NET_OFL_L4_GOOD 4u
#define PM_NET_OFL_L4_BAD 8u

/* This end of one port. */
struct pm_net_local {
	uint8_t mac[6];
	uint16_t vlan;        /* 802.1Q id, 0 = untagged */
	uint32_t ip_be;       /* our IPv4 address, network order */
	uint32_t mask_be;     /* its netmask */
	uint32_t gateway_be;  /* next hop for peers outside the subnet; 0 = none */
	uint16_t port_lo, port_hi; /* UDP destination ports we serve (inclusive) */
	/* The builders leave the UDP checksum 0, "none" (RFC 768; IPv4 allows
	 * it): for a link that cannot corrupt a frame, memif's shared memory
	 * between two processes of one host (issue 20: the sum over every
	 * payload byte, at both ends, was 3 % of each side's time). The
	 * parser takes 0 on any link and checks a checksum that is there. */
	bool udp_csum_none;
};

/* A parsed frame: offsets into it and the fields the caller needs. */
struct pm_net_pkt {
	enum pm_net_kind kind;
	enum pm_net_drop drop;
	uint8_t src_mac[6];
	uint16_t l3_off;          /* IPv4 header or ARP payload */
	uint16_t l4_off;          /* UDP / ICMP header (UDP: 0 for fragments) */
	uint32_t src_ip_be;       /* IPv4 / ARP sender */
	uint16_t src_port, dst_port;
	uint32_t payload_off, payload_len; /* UDP payload */
};

const char *pm_net_drop_name(enum pm_net_drop d);

/* Classify and validate one frame of len bytes. offload: PM_NET_OFL_* bits. */
enum pm_net_kind pm_net_parse(const struct pm_net_local *l, const uint8_t *frame, uint32_t len,
			      uint32_t offload, struct pm_net_pkt *pkt);
/* Parse a reassembled IPv4 datagram (ip points to its header, len bytes from
 * there; no Ethernet header): PM_NET_UDP with offsets relative to ip, or
 * PM_NET_DROP. The IP header checksum is not checked (the library rewrote it). */
enum pm_net_kind pm_net_parse_ipv4(const struct pm_net_local *l, const uint8_t *ip, uint32_t len,
				   struct pm_net_pkt *pkt);

/* Turn a frame classified PM_NET_ARP_REQUEST into our reply, in place; the
 * reply's length (the frame's, at least PM_NET_FRAME_BYTES_MIN if len allows). */
uint32_t pm_net_arp_answer(const struct pm_net_local *l, uint8_t *frame, uint32_t len);
/* Turn a frame classified PM_NET_ICMP_ECHO into the echo reply, in place. */
uint32_t pm_net_icmp_answer(const struct pm_net_local *l, uint8_t *frame, uint32_t len,
			    const struct pm_net_pkt *pkt);
/* Write a broadcast ARP request for target_be into out (>= PM_NET_FRAME_BYTES_MIN
 * bytes); its length. */
uint32_t pm_net_arp_request(const struct pm_net_local *l, uint32_t target_be, uint8_t *out);

/* Bytes of Ethernet (+ VLAN) header the builders write for l. */
uint32_t pm_net_l2_bytes(const struct pm_net_local *l);
/* Write Ethernet (+ VLAN) header to dst_mac; returns its length. */
uint32_t pm_net_eth_write(const struct pm_net_local *l, const uint8_t dst_mac[6], uint16_t ethertype,
			  uint8_t *out);
/* Write IPv4 + UDP headers in front of payload_len bytes of payload that
 * already sit at ip + 28. The UDP checksum covers the payload (computed here),
 * or is 0 when l->udp_csum_none; ip_id identifies the datagram for
 * fragmentation. Returns 28. */
uint32_t pm_net_ipv4_udp_write(const struct pm_net_local *l, uint32_t dst_be, uint16_t src_port,
			       uint16_t dst_port, uint16_t ip_id, uint8_t *ip, uint32_t payload_len);
/* The next hop for dst: dst itself on our subnet, else the gateway (0: none). */
uint32_t pm_net_next_hop(const struct pm_net_local *l, uint32_t dst_be);

/* Internet checksum (RFC 1071) of len bytes, folded, not complemented, added
 * to sum (host-order partial sums in a uint32_t). */
uint32_t pm_net_sum(const void *p, uint32_t len, uint32_t sum);
uint16_t pm_net_fold(uint32_t sum);

/* ---------------------------------------------------------------- ARP table */

struct pm_arp_entry {
	_Atomic uint32_t seq;   /* odd while being written */
	uint32_t ip_be;         /* 0 = empty */
	uint8_t mac[6];
	uint64_t expires_ms;
	uint64_t asked_ms;      /* last request we sent for it (pending entries) */
};

struct pm_arp_table {
	atomic_flag lock;       /* writers only */
	struct pm_arp_entry e[PM_ARP_ENTRIES];
};

void pm_arp_init(struct pm_arp_table *t);
/* The MAC of ip_be if known and not expired at now_ms; lock-free. */
bool pm_arp_lookup(struct pm_arp_table *t, uint32_t ip_be, uint64_t now_ms, uint8_t mac[6]);
/* Learn (or refresh) ip_be -> mac. A full probe window evicts its oldest entry. */
void pm_arp_learn(struct pm_arp_table *t, uint32_t ip_be, const uint8_t mac[6], uint64_t now_ms);
/* True when a request for ip_be should be sent now (none in the last
 * PM_ARP_RETRY_MS); records that one is being sent. */
bool pm_arp_should_ask(struct pm_arp_table *t, uint32_t ip_be, uint64_t now_ms);

#endif
