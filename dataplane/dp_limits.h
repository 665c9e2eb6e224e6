/* SPDX-License-Identifier: MIT
 *
 * dp_limits.h — the bounds of pomaid's workers and backends, in one place:
 * what a worker takes per turn (bursts, ring messages, epoll events), what it
 * holds at once (fan-outs, KNN parts, queued replies, TCP connections and
 * their buffers), how it idles and stops, and what the admin socket allows.
 * Each has its unit in its name and why it is what it is beside it; the ones
 * an operator may change are configuration keys (config.h, whose ranges use
 * the _DEFAULT / _MIN / _MAX here, and config/pomai.conf); the TCP ones are
 * listed with what happens at each in docs/protocol.md §2.3.
 *
 * Other bounds live with the subsystem that owns them: the log's and the
 * snapshots' (wal_io.h, snap_io.h), the quota table's (quota.h), the L2/L3
 * front end's (netfe.h), the wire's and the engine's (engine/pm_limits.h),
 * the configuration's own (config.h).
 */
#ifndef POMAI_DATAPLANE_DP_LIMITS_H
#define POMAI_DATAPLANE_DP_LIMITS_H

#include "pm_limits.h"
#include "wire.h"

/* ---------------------------------------------------------------- rings and messages */

/* Bytes of one ring (a power of two; one per ordered pair of workers, and
 * two per worker for the admin): room for about a thousand forwarded frames
 * of typical size, or a few maximum-size ones. A test build lowers it to keep
 * rings full (pomaid-small-ring: -DPM_RING_BYTES=...). */
#ifndef PM_RING_BYTES
#define PM_RING_BYTES (1u << 20)
#endif
/* Ring messages one turn takes from one ring at most: the rings cannot starve
 * the worker's own RX, nor one ring the others. A test build lowers it to
 * keep rings full (pomaid-small-ring: -DPM_RING_TURN_MESSAGES=...). */
#ifndef PM_RING_TURN_MESSAGES
#define PM_RING_TURN_MESSAGES 64u
#endif

/* ---------------------------------------------------------------- bursts */

/* Datagrams a worker takes from its backend per burst. */
#define PM_RX_BURST 32u
/* Bytes of one RX slot: any UDP payload (kernel backend), or any whole IPv4
 * datagram (a reassembled one, DPDK backend). */
#define PM_RX_SLOT_BYTES 65536u
/* Reply datagrams a worker queues before it must flush (sendmmsg batch). */
#define PM_TX_BURST 64u
/* Bytes of reply datagrams a worker queues before it must flush. */
#define PM_TX_BYTES (1u << 20)
/* Reply packing (issue 20, docs/protocol.md §2): the replies of one turn to
 * one peer share datagrams. To a peer on loopback (127/8), which has no MTU to
 * respect, up to UDP's largest payload; to others, up to reply_pack_bytes
 * (config; default an Ethernet MTU of 1500 less IPv4 and UDP headers, so a
 * packed datagram is never fragmented); on a DPDK port, up to its MTU's. */
#define PM_LOOPBACK_NET 127u
#define PM_PACK_LOOPBACK_BYTES 65507u
#define PM_REPLY_PACK_BYTES_DEFAULT 1472u
_Static_assert(PM_PACK_LOOPBACK_BYTES <= PM_FRAME_BYTES_MAX && PM_PACK_LOOPBACK_BYTES <= PM_TX_BYTES,
	       "a packed datagram is a datagram the TX queue holds");

/* ---------------------------------------------------------------- fan-outs and KNN */

/* Fan-outs (KNN, collection ops, INFO) one worker coordinates at once. */
#define PM_PENDING_MAX 32u
/* Key bytes a KNN merge keeps per fan-out (kept hits' keys; compacted when full). */
#define PM_KNN_MERGE_BYTES (256u << 10)
/* KNN parts (knn_sched.c) a worker holds at once: its own shard's parts of
 * the fan-outs it coordinates (PM_PENDING_MAX) and as many of other workers';
 * past it a part is answered BUSY. */
#define PM_KNN_PARTS_MAX (2u * PM_PENDING_MAX)
/* KNN work between two looks at the clock within a slice (knn_slice_us):
 * 2-6 us of a quiet core's scanning (10-28 GB/s), so a slice ends within a
 * few microseconds of its time, while the clock's ~30 ns stay below 1 %. */
#define PM_KNN_STEP_BYTES (64u << 10)

/* ---------------------------------------------------------------- the loop */

/* Adaptive polling (issue 20): an idle worker spins for idle_spin_us, yields
 * for as long again, then sleeps. Time, not turns: an idle turn costs a few
 * system calls, 1 us on a quiet host and 5-10 us in a VM, where 2000 turns
 * kept a worker spinning for 10-20 ms after every request — through every
 * gap of a KNN load, taking the cores the client and the other shards
 * needed (perf/RESULTS.md, "KNN over the daemon, issue 20"). The default
 * covers a client's round trip on loopback (20-60 us) several times over, so
 * a pipelined or ping-pong client still finds its worker awake. */
#define PM_IDLE_SPIN_US_DEFAULT 200u
#define PM_IDLE_SPIN_US_MAX 100000u
/* File descriptors an idle worker sleeps on: its backend's (a socket, or an
 * RX interrupt per DPDK port) and its own three. */
#define PM_SLEEP_FDS_MAX 16u
/* Turns between two slices of background maintenance while busy. */
#define PM_MAINTAIN_EVERY_TURNS 64u
/* Service-time clock: ticks are converted to nanoseconds once they have been
 * compared with the monotonic clock over at least this long. */
#define PM_TICKS_CALIBRATE_NS (100u * 1000u * 1000u)
/* The first estimate of the tick rate, made at a worker's first turn by
 * spinning this long on the monotonic clock (latencies count from then on;
 * PM_TICKS_CALIBRATE_NS refines it): 1 ms, a one-time cost at start. */
#define PM_TICKS_FIRST_CALIBRATE_NS (1000u * 1000u)
/* Turns a stopping worker takes at most to answer what its rings still hold
 * and send what is queued: a few suffice once no new frame comes in, and a
 * bound keeps a peer that goes on sending from holding the exit. */
#define PM_DRAIN_TURNS_MAX 16u
/* Bytes of a mutation's reply a worker holds until the log is on disk (wal =
 * sync): one small frame (status, and for a delete whether it removed
 * something); a reply that does not fit is sent at once. */
#define PM_REPLY_HOLD_BYTES 1024u

/* ---------------------------------------------------------------- admin socket */

/* The admin socket (admin.c): connections served at once, bytes of one
 * reply's text, how long a command waits for the workers, and how often the
 * admin thread looks at the quit flag while idle. */
#define PM_ADMIN_CONNS_MAX 8u
#define PM_ADMIN_TEXT_BYTES (512u << 10)
#define PM_ADMIN_REPLY_MS 5000u
#define PM_ADMIN_POLL_MS 100
/* Clients a CLIENTS answer lists at most (each worker's top that many,
 * merged), and without a count. */
#define PM_ADMIN_TOP_MAX 64u
#define PM_ADMIN_TOP_DEFAULT 10u

/* ---------------------------------------------------------------- own sources */

/* Local addresses the daemon tells apart as its own UDP sources (access.c);
 * a host with more (unusual) counts every source address as local, so only
 * the port decides. */
#define PM_SELF_ADDRS_MAX 64u

/* ---------------------------------------------------------------- kernel backend (udp.c) */

/* Socket buffers asked for (the kernel may cap them at net.core.*mem_max):
 * a few milliseconds of a busy worker's datagrams either way. */
#define PM_UDP_SOCKBUF_BYTES (4u << 20)

/* ---------------------------------------------------------------- TCP connections (tcp.c) */

/* A connection maps PM_TCP_RX_BYTES + PM_TCP_TX_BYTES of buffers and touches
 * what it uses; all of a worker's connections together hold at most
 * tcp_buffer_bytes of buffer in use (input not executed, output since it last
 * drained; the stalest offenders are closed past it). A frame must arrive
 * whole within tcp_frame_ms of its first byte; one source address holds at
 * most tcp_conns_per_addr of a worker's PM_TCP_CONNS_MAX slots. */

/* Connections one worker serves: its table is scanned once per turn. */
#define PM_TCP_CONNS_MAX 256u
/* Input buffered per connection: a whole frame of the largest size and the
 * start of the next; full, pomaid stops reading that socket. */
#define PM_TCP_RX_BYTES (2u * PM_FRAME_BYTES_MAX)
/* A connection's output buffer. A frame is executed only when its reply's
 * worst case fits beside what is buffered and what every earlier frame's
 * reply may still take (tcp.c, pm_tcp_reply_bytes_max): a reply, local or
 * from another shard, always has room. 4 MiB holds the replies of
 * PM_TCP_INFLIGHT_MAX forwarded GETs of the largest value (3.9 MiB), so a
 * pipeline of GETs is not held back by what they might return. */
#define PM_TCP_TX_BYTES (4u << 20)
/* Replies a client has not read (and local replies that would add to them)
 * past which its frames wait: a client that does not read stops its own
 * stream, no one else's, holding at most this plus the replies it is owed. */
#define PM_TCP_TX_UNREAD_MAX (1u << 20)
/* Reply credit: bytes of replies (each at its worst case, as it would wait:
 * pm_tcp_reply_bytes_max + a message header) that another worker may owe one
 * worker's connections at once. Past it, a frame for that worker waits in its
 * connection's input. The owner keeps a reply that finds the ring back full
 * in a queue of this size (worker.c), which the credit keeps from
 * overflowing. 4 MiB: PM_TCP_INFLIGHT_MAX GETs of the largest value. */
#define PM_TCP_CREDIT_BYTES (4u << 20)
/* A connection's buffers are one anonymous mapping (unmapped when it
 * closes). Once a drained buffer has been quiet PM_TCP_RELEASE_MS (or the
 * worker is over tcp_buffer_bytes), its pages past PM_TCP_KEEP_BYTES go back
 * to the kernel: a connection that once held a megabyte keeps no more than
 * this per buffer, so a worker's TCP buffers hold at most tcp_buffer_bytes +
 * PM_TCP_CONNS_MAX x 2 x PM_TCP_KEEP_BYTES (8 MiB) of memory. Not sooner:
 * giving pages back costs a TLB shootdown on every core of the process. */
#define PM_TCP_KEEP_BYTES (16u << 10)
#define PM_TCP_RELEASE_MS 1000u
/* A connection that holds part of a frame or replies it does not read, and
 * has made no progress (no byte read or written) for this long, is closed. */
#define PM_TCP_STALL_MS 10000u
/* A full table gives the slot of its longest-idle connection (no bytes
 * either way, nothing owed) to a new one once it has been idle this long:
 * connections that never send cannot lock clients out. */
#define PM_TCP_IDLE_EVICT_MS 2000u
/* Frames of one connection forwarded to other shards and not answered yet: a
 * connection past this waits, so one client cannot fill the rings that every
 * client's forwarded frames share. */
#define PM_TCP_INFLIGHT_MAX 64u
/* Connections one worker accepts per turn, and epoll events it takes per
 * turn: its other connections and the rings are served between two. */
#define PM_TCP_ACCEPT_BURST 16u
#define PM_TCP_EVENTS_PER_TURN 64u
/* Connections the kernel queues on the listening socket before the workers
 * accept them (listen()'s backlog; the kernel caps it at somaxconn). */
#define PM_TCP_LISTEN_BACKLOG 256
/* The reply of a frame whose reply carries no payload (SET, VADD, DEL, VDEL,
 * CCREATE, CDROP, SNAPSHOT) or of any refused frame: header, sub-op, a u32
 * (removed) and a THROTTLED reply's retry_ms are 33 bytes. */
#define PM_TCP_REPLY_SMALL_BYTES 64u

/* tcp_frame_ms: the longest a frame may take to arrive whole, from its first
 * byte. 5 s for at most PM_FRAME_BYTES_MAX bytes is 13 KB/s, far below any
 * link a client of an in-memory store sits behind; a slowloris client that
 * trickles a byte now and then (progress, so the stall rule spares it) is
 * closed at it. */
#define PM_TCP_FRAME_MS_DEFAULT 5000u
#define PM_TCP_FRAME_MS_MIN 100u
#define PM_TCP_FRAME_MS_MAX 600000u
/* tcp_conns_per_addr: slots of one worker's table that one source address
 * may hold; past it a new connection from that address is closed at once.
 * 64 of 256: a connection pool of any usual size fits, and one address
 * cannot take more than a quarter of the table. */
#define PM_TCP_CONNS_PER_ADDR_DEFAULT 64u
/* tcp_buffer_bytes: bytes of buffer all of one worker's connections may have
 * in use (input read and not executed, output written into since it last
 * drained: the pages they hold); past it the connections that have made no
 * progress for the longest are closed until it holds. The smallest value is
 * one connection's full buffers; the default, 32 MiB, is about 30
 * connections whose clients read nothing, or every slot with 128 KiB. */
#define PM_TCP_BUFFER_BYTES_MIN ((uint64_t)PM_TCP_RX_BYTES + PM_TCP_TX_BYTES)
#define PM_TCP_BUFFER_BYTES_DEFAULT (UINT64_C(32) << 20)
#define PM_TCP_BUFFER_BYTES_MAX ((uint64_t)PM_TCP_CONNS_MAX * PM_TCP_BUFFER_BYTES_MIN)

_Static_assert(PM_TCP_TX_BYTES >= PM_TCP_INFLIGHT_MAX * (uint64_t)PM_FRAME_BYTES_MAX,
	       "an output buffer holds the replies of every frame a connection may forward");
_Static_assert(PM_TCP_TX_UNREAD_MAX <= PM_TCP_TX_BYTES && PM_TCP_TX_UNREAD_MAX >= 4u * PM_FRAME_BYTES_MAX,
	       "a client may leave a few of the largest replies unread");
_Static_assert(PM_TCP_CONNS_PER_ADDR_DEFAULT <= PM_TCP_CONNS_MAX, "the cap is within the table");

/* ---------------------------------------------------------------- DPDK backend (dpdk.c, dpdk_io.c) */

/* Packets a worker takes from one queue per burst. */
#define PM_DPDK_RX_BURST 32u
/* Packets a worker gathers before rte_eth_tx_burst. */
#define PM_DPDK_TX_BURST 64u
/* rte_eth_tx_burst calls per burst while the queue takes only part of it;
 * what it has not taken then is dropped (counted): the worker never waits
 * for a NIC. */
#define PM_DPDK_TX_TRIES_MAX 4u
/* Reply packets waiting for their next hop's ARP answer, per worker; they are
 * dropped (counted as no_route) after PM_DPDK_HOLD_MS. */
#define PM_DPDK_HOLD_MAX 64u
#define PM_DPDK_HOLD_MS 3000u
/* Fragments one reply may become: 65,507 bytes over the smallest MTU (576). */
#define PM_DPDK_FRAGS_MAX 128u
/* Fragments a request may arrive in: DPDK's ip_frag limit. */
#define PM_DPDK_REASM_FRAGS_MAX 8u
/* How often a worker returns the fragments of timed-out datagrams. */
#define PM_DPDK_FRAG_EXPIRE_EVERY_MS 100u
/* mbufs a pool needs beyond its rings and reassembly: the RX burst held
 * while served, the recycled ones, held replies and the per-lcore cache. */
#define PM_DPDK_MBUF_SLACK (PM_DPDK_RX_BURST + PM_DPDK_TX_BURST + PM_DPDK_HOLD_MAX + \
			    PM_DPDK_MBUF_CACHE)
/* Per-lcore mempool cache. */
#define PM_DPDK_MBUF_CACHE 256u
/* Data room of an mbuf: one MTU-sized frame plus headroom. */
#define PM_DPDK_MBUF_DATA_BYTES (2048u + 128u)
/* Bytes of a worker's big-reply buffer: the largest IPv4 datagram, built
 * whole before it is fragmented. */
#define PM_DPDK_BIG_BYTES 65536u
/* A worker whose queues cannot wake it (no RX interrupt) sleeps at most this
 * long when idle, so a request waits at most this long after an idle spell. */
#define PM_DPDK_NOINTR_SLEEP_US 1000u

#endif
