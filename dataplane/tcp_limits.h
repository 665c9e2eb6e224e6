/* SPDX-License-Identifier: MIT
 *
 * tcp_limits.h — every bound of pomaid's TCP connections (tcp.c), in one
 * place: worker.h and tcp.h use them, config.c bounds the tcp_* keys with them, and
 * docs/protocol.md §2.3 lists them with what happens at each.
 *
 * A connection maps PM_TCP_RX_BYTES + PM_TCP_TX_BYTES of buffers and touches
 * what it uses;
 * all of a worker's connections together hold at most tcp_buffer_bytes of
 * buffer in use (input not executed, output since it last drained; the
 * stalest offenders are closed past it). A frame must arrive whole within
 * tcp_frame_ms of its first byte; one source address holds at most
 * tcp_conns_per_addr of a worker's PM_TCP_CONNS_MAX slots.
 */
#ifndef POMAI_DATAPLANE_TCP_LIMITS_H
#define POMAI_DATAPLANE_TCP_LIMITS_H

#include "pm_limits.h"

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
/* Connections one worker accepts per turn. */
#define PM_TCP_ACCEPT_BURST 16u
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

#endif
