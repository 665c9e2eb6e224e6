/* SPDX-License-Identifier: MIT
 *
 * dp_limits.h — the bounds of pomaid's workers and backends, in one place:
 * what a worker takes per turn (bursts, ring messages), what it holds at once
 * (fan-outs, KNN parts, queued replies), how it idles, and what the admin
 * socket allows. Each is fixed at build time, with its unit in its name and
 * why it is what it is beside it; the ones an operator may change are
 * configuration keys (config.h, config/pomai.conf).
 *
 * Other bounds live with the subsystem that owns them: the log's and the
 * snapshots' (wal_io.h, snap_io.h), the quota table's (quota.h), the wire's
 * (engine/pm_limits.h), the configuration keys' ranges (config.h).
 */
#ifndef POMAI_DATAPLANE_DP_LIMITS_H
#define POMAI_DATAPLANE_DP_LIMITS_H

#include "pm_limits.h"
#include "tcp_limits.h"

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

/* Adaptive polling: idle turns spent spinning, then yielding, before sleeping. */
#define PM_IDLE_SPIN_TURNS 2000u
#define PM_IDLE_YIELD_TURNS 2100u
/* Turns between two slices of background maintenance while busy. */
#define PM_MAINTAIN_EVERY_TURNS 64u
/* Service-time clock: ticks are converted to nanoseconds once they have been
 * compared with the monotonic clock over at least this long. */
#define PM_TICKS_CALIBRATE_NS (100u * 1000u * 1000u)

/* ---------------------------------------------------------------- admin socket */

/* The admin socket (admin.c): connections served at once, bytes of one
 * reply's text, how long a command waits for the workers, and how often the
 * admin thread looks at the quit flag while idle. */
#define PM_ADMIN_CONNS_MAX 8u
#define PM_ADMIN_TEXT_BYTES (512u << 10)
#define PM_ADMIN_REPLY_MS 5000u
#define PM_ADMIN_POLL_MS 100
/* Clients a CLIENTS answer lists at most (each worker's top that many, merged). */
#define PM_ADMIN_TOP_MAX 64u

/* ---------------------------------------------------------------- own sources */

/* Local addresses the daemon tells apart as its own UDP sources (access.c);
 * a host with more (unusual) counts every source address as local, so only
 * the port decides. */
#define PM_SELF_ADDRS_MAX 64u

#endif
