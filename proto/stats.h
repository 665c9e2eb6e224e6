/* SPDX-License-Identifier: MIT
 *
 * proto/stats.h — the stats segment: pomaid's counters in a shared-memory file
 * that pomai-control and pomaictl map read-only and read without locks. Its
 * layout is a contract between those processes, so it lives in proto/ (it was
 * control/stats.h) and depends on nothing of the engine.
 *
 * The file (data_dir/pomaid.stats, replaced at each start) is a header, one
 * global block, then one block per shard; every block is a whole number of
 * cache lines and is written by exactly one thread — a shard's by its worker
 * (every PM_STATS_PUBLISH_MS while it runs), the global one by the admin
 * thread. A block starts with a sequence counter: the writer makes it odd,
 * writes, makes it even again; a reader copies the block and keeps the copy
 * only if the counter was even and unchanged around the copy
 * (pm_stats_read), so it never sees a torn block. Counters only grow while a
 * pomaid runs (gauges — keys, bytes, lag — move both ways).
 *
 * The layout is versioned (PM_STATS_VERSION): a reader refuses a file whose
 * magic, version or block sizes it does not know.
 *
 * Latency histograms are log-linear (HdrHistogram's idea): values in
 * nanoseconds, PM_HIST_SUB buckets per power of two, so a quantile read from
 * them is within 1 / PM_HIST_SUB (12.5 %) of the truth.
 */
#ifndef POMAI_PROTO_STATS_H
#define POMAI_PROTO_STATS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PM_STATS_MAGIC "POMAISTA"
/* Version 4: ops[] has a slot more, PM_WIRE_OP_MAP (the cluster's slot map,
 * issue 17); the bytes are those of version 3. */
/* Version 5: ops[] has 24 slots (issue 18 adds VSETATTR and the batch and
 * range ops: more ops than 16 slots), and errors[] E_FILTER's, E_ATTR's and
 * E_BATCH's slots after E_DTYPE's (slots are the engine's status numbers). */
/* Version 6 (issues 18 and 19, one change of layout): ops[] has 32 slots
 * (issue 19 adds AUTH_HELLO and AUTH_PROVE), errors[] E_RETRY's, E_AUTH's
 * and E_NOPERM's slots before E_INTERNAL's (slots are the engine's status
 * numbers), and class_live_bytes[] has 138 slots: the arena's classes are
 * sixteen per power of two from 512 B to 8 KiB (vector blobs; issue 18's
 * memory target), so every slot from 18 on holds another class. */
/* Version 7 (issue 19): the shard block ends with the authentication and
 * guard counters (auth_*, guard_*), which INFO dataplane had alone; the
 * bytes before them are those of version 6. */
#define PM_STATS_VERSION 7u
/* How often a worker publishes its block. */
#define PM_STATS_PUBLISH_MS 10u
/* Shards a segment describes at most (pomaid's PM_SHARDS_MAX). */
#define PM_STATS_SHARDS_MAX 32u
/* Slots for per-op counters: ops[op] for each enum pm_wire_op (wire.h); more
 * than there are ops. */
#define PM_STATS_OPS 32u
/* Slots for per-status counters: errors[slot] counts the replies whose wire
 * status is pm_stats_status_code(slot). The first PM_STATS_STATUS_SLOTS are
 * given (in the order of version 2: the engine's status order when it was
 * written, so the layout is unchanged); a new status takes the next slot. */
#define PM_STATS_STATUSES 48u
#define PM_STATS_STATUS_SLOTS 40u
/* Slots for live bytes by blob size class: class_live_bytes[slot] is the
 * class of pm_stats_class_bytes(slot) bytes. They are pomaid's arena classes
 * (engine/arena.h), which pomaid checks at start-up against this list. */
#define PM_STATS_CLASSES 138u
/* Slots for frames refused authentication: auth_refused[r] for each enum
 * pm_auth_reason r (proto/auth.h; slot 0 unused); more than there are. */
#define PM_STATS_AUTH_REASONS 8u
/* Copies a reader tries before it gives up on a block being rewritten, and
 * how many of them it tries at once before yielding the CPU between tries. */
#define PM_STATS_READ_TRIES 1000u
#define PM_STATS_READ_SPINS 16u

/* Log-linear histogram: bucket b < PM_HIST_SUB holds value b exactly; above,
 * each power of two is cut into PM_HIST_SUB equal buckets; values of 2^40 ns
 * (18 minutes) and more share the last bucket. */
#define PM_HIST_SUB_BITS 3u
#define PM_HIST_SUB (1u << PM_HIST_SUB_BITS)
#define PM_HIST_TOP_BITS 40u
#define PM_HIST_BUCKETS ((PM_HIST_TOP_BITS - PM_HIST_SUB_BITS + 1u) * PM_HIST_SUB)

struct pm_hist {
	uint64_t count, sum, max; /* nanoseconds */
	uint64_t b[PM_HIST_BUCKETS];
};

void pm_hist_add(struct pm_hist *h, uint64_t ns);
/* The bucket of a value, and the smallest value of a bucket. */
unsigned pm_hist_bucket(uint64_t ns);
uint64_t pm_hist_floor(unsigned bucket);
/* The q-quantile (0 < q <= 1): the upper edge of the bucket holding it, 0 when empty. */
uint64_t pm_hist_quantile(const struct pm_hist *h, double q);

/* Why datagrams or frames were dropped (the shard's dropped[] slots). */
enum pm_stats_drop {
	PM_DROP_MALFORMED = 0, /* a header that cannot be read */
	PM_DROP_RING_FULL,     /* a forward or fan-out found a ring full */
	PM_DROP_TX_FULL,       /* a reply found the TX queue full */
	PM_DROP_NOT_ALLOWED,   /* the source is outside allow_networks */
	PM_DROP_REPLY,         /* a reply frame: never answered */
	PM_DROP_SELF,          /* a datagram claiming the daemon's own address and port */
	PM_DROP_REASONS = 8
};

struct pm_stats_shard {
	alignas(64) _Atomic uint64_t seq;
	uint64_t publish_unix_ms, publishes;
	int64_t cpu, numa_node;
	/* the engine */
	uint64_t ops[PM_STATS_OPS], errors[PM_STATS_STATUSES];
	uint64_t hits, misses, keys, vectors, collections;
	uint64_t expired_lazy, expired_active, evicted;
	uint64_t knn_queries, knn_scanned;
	uint64_t arena_bytes, seed_bytes, seeds_used, blob_bytes_used, blob_bytes_free,
		blob_bytes_unused;
	uint64_t class_live_bytes[PM_STATS_CLASSES];
	/* the worker */
	uint64_t rx_datagrams, rx_frames, tx_datagrams, tx_errors;
	uint64_t forwarded_out, forwarded_in, dropped[PM_DROP_REASONS], throttled;
	uint64_t fanouts, fanout_timeouts;
	uint64_t tcp_accepted, tcp_closed, tcp_refused, tcp_stalled;
	/* version 2: connections closed for a slot (idle), at the frame deadline,
	 * over the buffer budget; refused at the address cap (issue 14) */
	uint64_t tcp_idle_evicted, tcp_frame_deadline, tcp_buffer_evicted, tcp_addr_refused;
	/* its NIC queue (DPDK backend; 0 with kernel sockets) */
	uint64_t nic_rx_packets, nic_tx_packets, nic_rx_dropped, nic_tx_dropped;
	/* the log and snapshots */
	uint64_t wal_records, wal_bytes, wal_fsyncs, wal_lag_records, wal_held;
	uint64_t snapshot_running, snapshot_progress_pct, snapshots_completed, snapshots_failed;
	uint64_t snapshot_last_lsn, snapshot_last_unix_ms;
	/* version 3: replication (docs/replication.md): role (0 primary, 1 replica,
	 * 2 detached, 3 fenced), epoch, replicas connected, lag in records (a
	 * primary: its slowest replica's; a replica: behind its primary), bytes
	 * streamed, full syncs served, the last LSN applied, the link up (replica) */
	uint64_t repl_role, repl_epoch, repl_connected, repl_lag_records;
	uint64_t repl_bytes_sent, repl_full_syncs, repl_applied_lsn, repl_link_up;
	/* service time of each KV request in the worker, and KNN fan-outs end to end */
	struct pm_hist lat_kv, lat_knn;
	/* version 7 (issue 19, docs/security.md): authentication — frames whose
	 * AUTH trailer was accepted, refused by reason (auth_refused[enum
	 * pm_auth_reason]), answered NOPERM; TCP streams proved; replay sessions
	 * whose slot a new one took */
	uint64_t auth_ok, auth_refused[PM_STATS_AUTH_REASONS], auth_noperm, auth_proved,
		auth_sessions_replaced;
	/* ... and the guard (anti-amplification): RETRY replies (each carries a
	 * cookie) and why (a reply over its budget, a write, the shared quota of
	 * unvalidated sources); datagrams with a valid cookie, with an invalid
	 * one, with a malformed COOKIE frame (dropped); reply bytes withheld for
	 * want of budget, and replies not sent at all */
	uint64_t guard_cookies_issued, guard_retry_budget, guard_retry_write, guard_retry_quota;
	uint64_t guard_validated, guard_bad_cookies, guard_dropped_cookie_frame;
	uint64_t guard_bytes_withheld, guard_withheld;
};

struct pm_stats_global {
	alignas(64) _Atomic uint64_t seq;
	uint64_t pid, start_unix_ms, publish_unix_ms;
	uint64_t admin_connections, admin_commands, admin_errors;
};

struct pm_stats_header {
	char magic[8];
	uint32_t version, nshards;
	uint32_t header_bytes, global_bytes, shard_bytes, reserved;
	uint64_t global_off, shards_off, file_bytes;
};

/* The wire status counted in errors[slot] (PM_WIRE_OK for a slot past
 * PM_STATS_STATUS_SLOTS: never counted), and the slot of a wire status (-1:
 * none). */
uint8_t pm_stats_status_code(unsigned slot);
int pm_stats_status_slot(uint8_t code);

/* The size in bytes of the blob class counted in class_live_bytes[slot]
 * (slot < PM_STATS_CLASSES): 8-byte steps from 24 to 64 bytes, then four
 * classes per power of two up to 512 B, sixteen up to 8 KiB and eight up to
 * 1 MiB. */
uint32_t pm_stats_class_bytes(unsigned slot);

/* Bytes of a segment for n shards, and where shard i's block is. */
size_t pm_stats_file_bytes(uint32_t nshards);
static inline struct pm_stats_shard *pm_stats_shard_at(void *base, uint32_t i)
{
	const struct pm_stats_header *h = base;
	return (struct pm_stats_shard *)((uint8_t *)base + h->shards_off +
					 (size_t)i * h->shard_bytes);
}
static inline struct pm_stats_global *pm_stats_global_at(void *base)
{
	const struct pm_stats_header *h = base;
	return (struct pm_stats_global *)((uint8_t *)base + h->global_off);
}

/* Lay out a zeroed mapping of pm_stats_file_bytes(nshards) bytes. */
void pm_stats_format(void *base, uint32_t nshards);

/* Writer side: around an update of a block (its own thread only). */
static inline void pm_stats_begin(_Atomic uint64_t *seq)
{
	atomic_store_explicit(seq, atomic_load_explicit(seq, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}
static inline void pm_stats_end(_Atomic uint64_t *seq)
{
	atomic_store_explicit(seq, atomic_load_explicit(seq, memory_order_relaxed) + 1,
			      memory_order_release);
}

/* Reader side: copy `bytes` of the block at src (whose first field is its
 * sequence counter) into dst, consistently. False if the writer kept it busy
 * for PM_STATS_READ_TRIES tries. */
bool pm_stats_read(const void *src, void *dst, size_t bytes);

/* A mapped segment, checked (read-only). 0, or -errno with a reason. */
struct pm_stats_map {
	void *base;
	size_t bytes;
	uint32_t nshards;
};
int pm_stats_open(const char *path, struct pm_stats_map *m, char *why, size_t whylen);
void pm_stats_close(struct pm_stats_map *m);

#endif
