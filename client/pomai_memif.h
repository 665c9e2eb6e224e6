/* SPDX-License-Identifier: MIT
 *
 * pomai_memif.h — libpomai_memif: libpomai over a DPDK memif port, for a
 * client on the same machine as a pomaid running its DPDK backend (the daemon
 * is the memif server, this end the client). Frames go through shared memory
 * as real Ethernet / IPv4 / UDP frames, kernel bypassed at both ends.
 *
 * Everything above the wire is libpomai's UDP path (pomai.h): routing by key
 * to base_port + shard, several frames per datagram, retries with back-off,
 * paged replies. What this library adds:
 *  - the EAL: initialised once per process from eal_args, or the
 *    application's own if it initialised the EAL first (the EAL cannot be
 *    initialised twice; this library never calls rte_eal_cleanup). rte_eal_init
 *    pins the calling thread to the EAL main lcore (its -l / --lcores option);
 *  - one ethdev port per client (one RX and one TX queue), claimed at open and
 *    released at close, with its own mbuf pool;
 *  - ARP: the daemon's MAC is resolved at open (or configured), refreshed
 *    every PM_CLIENT_MEMIF_ARP_REFRESH_MS while sending, and ARP requests for
 *    local_ip and ICMP echo are answered;
 *  - IPv4 fragmentation of requests above the MTU, and reassembly of replies
 *    above it (up to 64 KiB, a few datagrams at once);
 *  - busy polling: pm_client_poll(c, wait_ms) spins on the RX queue for up to
 *    wait_ms (never past a request's deadline) instead of sleeping in poll(2).
 *
 * Not thread-safe, like every pm_client: one client per thread and per port.
 * Nothing here is specific to memif: any ethdev the EAL probes works (a tap,
 * af_packet, a NIC), the frames are the same.
 *
 * libpomai_memif is a static library; link it with the static libpomai and
 * DPDK (`pkg-config --libs libdpdk`). It is built only when libdpdk is found.
 */
#ifndef POMAI_CLIENT_POMAI_MEMIF_H
#define POMAI_CLIENT_POMAI_MEMIF_H

#include <stdbool.h>
#include <stdint.h>

#include "pomai.h"

#ifdef __cplusplus
extern "C" {
#endif

/* IPv4 bytes per frame (the link MTU). The daemon's port must use the same. */
#define PM_CLIENT_MEMIF_MTU_DEFAULT 1500u
#define PM_CLIENT_MEMIF_MTU_MIN 576u  /* the IPv4 minimum */
#define PM_CLIENT_MEMIF_MTU_MAX 9000u /* jumbo frames */
/* UDP port the client sends from, where the replies come back. */
#define PM_CLIENT_MEMIF_LOCAL_PORT_DEFAULT 49152u
/* The longest EAL command line accepted, and its most words. */
#define PM_CLIENT_MEMIF_EAL_ARGS_BYTES_MAX 4096u
#define PM_CLIENT_MEMIF_EAL_ARGS_MAX 64u
/* A learned MAC is asked again this often while requests are sent. */
#define PM_CLIENT_MEMIF_ARP_REFRESH_MS 5000u
/* Reasons a received frame is dropped (pm_client_memif_drop_name). */
#define PM_CLIENT_MEMIF_DROP_REASONS 24u

struct pm_client_memif {
	/* EAL command line, words split at blanks (no quoting), e.g.
	 * "-l 1 --no-huge --no-pci -m 512 --file-prefix=app --vdev=net_memif0,
	 * role=client,socket=/run/pomai/memif.sock,socket-abstract=no". NULL or "":
	 * the application has initialised the EAL itself. Ignored once the EAL
	 * is up. */
	const char *eal_args;
	const char *port;      /* ethdev name ("net_memif0"); NULL: the first port not in use */
	const char *local_ip;  /* this end's IPv4 address, e.g. "10.0.0.1" (required); the
				  daemon's is the config's host */
	uint16_t local_port;   /* 0: PM_CLIENT_MEMIF_LOCAL_PORT_DEFAULT */
	uint32_t mtu;          /* 0: PM_CLIENT_MEMIF_MTU_DEFAULT */
	bool has_peer_mac;     /* use peer_mac instead of asking by ARP */
	uint8_t peer_mac[6];
};

/* Counters of the memif transport (pm_client_stats counts the frames). */
struct pm_client_memif_stats {
	uint64_t rx_packets;    /* Ethernet frames received */
	uint64_t tx_packets;    /* Ethernet frames sent (fragments, ARP and ICMP included) */
	uint64_t tx_full;       /* sends that found the TX ring full (retried later) */
	uint64_t tx_dropped;    /* frames dropped: the ring stayed full, or no mbuf */
	uint64_t frags_out;     /* fragments sent */
	uint64_t frags_in;      /* fragments received */
	uint64_t reassembled;   /* datagrams reassembled */
	uint64_t reasm_dropped; /* partial datagrams given up (evicted, timed out, invalid) */
	uint64_t rx_dropped;    /* frames the front end refused (bad header, not ours, ...) */
	uint64_t rx_drops[PM_CLIENT_MEMIF_DROP_REASONS]; /* rx_dropped by reason */
	uint64_t rx_foreign;    /* valid datagrams not from the daemon's shard ports */
	uint64_t rx_no_csum;    /* the daemon's datagrams without a UDP checksum (0: pomaid
				 * leaves it out on memif, as this client does; issue 20) */
	uint64_t arp_sent;      /* requests for the daemon's MAC */
	uint64_t arp_answered;  /* requests for ours */
	uint64_t icmp_answered;
};

/* Fills *m with the defaults (no EAL arguments, first port, MTU 1500, ARP). */
void pm_client_memif_default(struct pm_client_memif *m);

/* PM_CLIENT_OK, or PM_CLIENT_E_CONFIG with *why (if why) naming the field. */
enum pm_client_status pm_client_memif_check(const struct pm_client_memif *m, const char **why);

/* Open a client over memif. cfg is checked as by pm_client_open (its
 * transport is taken to be PM_CLIENT_MEMIF; host is the daemon's address on
 * the memif link). Initialises the EAL if needed, claims and starts the port,
 * waits for the link and the daemon's ARP reply within timeout_ms x
 * (1 + retries). E_CONFIG, E_ALLOC or E_CONNECTION (EAL, port, link or ARP
 * failed) with *why (if why) a sentence; *out = NULL then. Close with
 * pm_client_close, which stops and releases the port. */
enum pm_client_status pm_client_memif_open(const struct pm_client_config *cfg,
					   const struct pm_client_memif *m, struct pm_client **out,
					   const char **why);

/* The transport's counters; zeros for a client of another transport. */
void pm_client_memif_stats(const struct pm_client *c, struct pm_client_memif_stats *out);

/* Short name of drop reason i ("ip_cksum", "udp_port", ...; those of the
 * daemon's INFO), "unknown" past the last. */
const char *pm_client_memif_drop_name(uint32_t reason);

#ifdef __cplusplus
}
#endif

#endif
