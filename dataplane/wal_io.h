/* SPDX-License-Identifier: MIT
 *
 * wal_io.h — a worker's write-ahead log: the I/O around engine/wal.h's format.
 *
 * Each worker logs its own shard into segments under
 * data_dir/wal/shard-<i>/<first LSN, 20 digits>.wal, each preallocated
 * (fallocate) to wal_segment_bytes. The next segment is always prepared
 * ahead — a spare zeroed, or a new file allocated, and fdatasynced, as
 * requests to the worker's io_uring — so that a switch only writes its header
 * and renames it; the first segment and the next are made at start-up. Every
 * file is reached through the shard directory's descriptor, never through a
 * link (datadir.h). Every mutation the worker applies
 * successfully is encoded into the batch being filled; at the end of the
 * worker's turn that batch becomes one write (group commit), through the
 * worker's own io_uring — in `sync` mode linked to an fdatasync — while the
 * next turn's mutations fill the other buffer. The poller never waits for the
 * disk: at most one batch write is in flight per worker (plus one fsync in
 * `batch` mode), and completions are reaped every turn. In sync mode through
 * the ring (wal_sync_overlap), once a batch's write has completed the next
 * batch may be written while its fdatasync still runs; replies still wait for
 * their own batch's fdatasync and every earlier one's (PM_WAL_SYNCS_BEHIND_MAX).
 *
 * Modes (wal = ...):
 *   sync   a reply to a mutation leaves only when everything logged before it
 *          is on disk (write + fdatasync completed): nothing acknowledged is lost.
 *   batch  replies leave at once; the log is written every turn and fsynced
 *          every wal_batch_ms: a crash of the machine loses at most the last
 *          wal_batch_ms of acknowledged writes (a crash of pomaid alone loses
 *          none that reached the kernel, i.e. nothing older than one turn).
 *   none   no log; a restart starts empty.
 *
 * Errors: ENOSPC (writing, or no next segment when one is needed because
 * preparing it failed) keeps the batch and its held replies, refuses new
 * mutations with E_DISK_FULL (reads go on) and retries every
 * PM_WAL_RETRY_MS; once space is back the batch is written and the replies
 * leave. A next segment still being prepared when it is needed makes the
 * batch wait a turn or more (counted: wal_segment_waits), refusing nothing. An fsync or write I/O error is fatal for writes on that
 * shard: held replies and new mutations get E_LOG_FAILED, logged loudly.
 * Without io_uring (ENOSYS, EPERM in some containers) the same batches are
 * written with pwrite + fdatasync on the worker thread, said at start-up.
 *
 * Issue 20 (wal_io_uring = auto, the default; docs/durability.md): in sync
 * mode a batch's write + fdatasync goes through the ring or runs on the
 * worker with pwrite, whichever is faster — timed at start-up (pm_wal_probe)
 * and kept measured while the worker runs (trials of the other way); and the
 * current segment is kept written with zeros ahead of the log, so that an
 * fdatasync flushes data only (no extent conversion to journal).
 *
 * Recovery (pm_wal_recover, before the workers start): the shard's segments
 * in LSN order, every record applied; a newest segment with neither header
 * nor records (a crash mid-switch) is removed; a torn tail is zeroed and
 * reported; corruption before the tail stops start-up naming the segment and offset,
 * unless wal_truncate_corrupt = yes drops everything from there.
 */
#ifndef POMAI_DATAPLANE_WAL_IO_H
#define POMAI_DATAPLANE_WAL_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "request.h"

struct pm_worker;
struct pm_daemon;
struct pm_dest;
struct pm_msg;

/* Bytes of one batch buffer (two per worker): mutations past it in one turn
 * are refused BUSY until the batch in flight completes. */
#define PM_WAL_BATCH_BYTES (4u << 20)
/* io_uring submission queue entries per worker: a batch's chain (the
 * previous segment's fsync, the new one's rename, the write, its fsync, the
 * directory's fsync), a batch fsync or a resubmitted fdatasync of a batch
 * behind (PM_WAL_SYNCS_BEHIND_MAX), a step of the next segment's
 * preparation, a snapshot's request, a fill's write and fdatasync (every SQE
 * is submitted at once: never more than one chain waits; requests in flight
 * hold no SQE, and the completion queue is twice as deep). */
#define PM_WAL_QUEUE_DEPTH 16u
/* Sync mode through io_uring with wal_sync_overlap = yes: batches written
 * but not yet durable (their fdatasync, or an earlier batch's, still running);
 * a batch is submitted only while fewer are, so at most this many batch
 * fdatasyncs are in flight. Each batch's fdatasync is linked after its own
 * write, and its replies wait for it and, in order, for every earlier one's.
 * Two: one batch's fdatasync runs while the next is written and fdatasynced
 * (more would only split the same requests into smaller batches). */
#define PM_WAL_SYNCS_BEHIND_MAX 2u
/* Sync mode with io_uring: bytes of the current segment kept written (with
 * zeros) ahead of the log's end, so that a batch's fdatasync flushes data
 * only. A write into allocated but never written blocks (fallocate, or a
 * spare zeroed with ZERO_RANGE) makes its fdatasync also commit the extent's
 * conversion to the file system's journal: on ext4 here 693 against 281 us
 * per write + fdatasync (perf/fsync_bound.c). Twice PM_WAL_BATCH_BYTES: the
 * fill stays a batch ahead of the next batch. */
#define PM_WAL_FILL_AHEAD_BYTES (8u << 20)
/* Bytes of one fill request (a write linked to its own fdatasync, so that
 * its zeros are not left dirty for a batch's fdatasync to flush). */
#define PM_WAL_FILL_CHUNK_BYTES (1u << 20)
/* wal_io_uring = auto, sync mode: write + fdatasync round trips of
 * PM_WAL_PROBE_BYTES the start-up probe times each way (alternating) ... */
#define PM_WAL_PROBE_ROUNDS 16u
#define PM_WAL_PROBE_BYTES 4096u
/* ... and the percentage of the ring's median that pwrite's must be under to
 * be chosen: on the worker it holds the poller for the flush, which the ring
 * does not, so it must be clearly faster. */
#define PM_WAL_PROBE_PWRITE_PCT 90u
/* ... and while the worker runs, under its real load (a start-up probe on an
 * idle machine cannot see a client that keeps the other cores busy): every
 * window of batches written the chosen way is followed by a trial of
 * PM_WAL_ADAPT_TRIAL_BATCHES the other way, and the way whose batches took
 * less time from submission to their replies' release wins (pwrite by the
 * same margin). A trial that loses doubles the next window, from
 * PM_WAL_ADAPT_WINDOW_MIN up to PM_WAL_ADAPT_WINDOW_MAX batches: a wrong
 * start-up choice is undone after 36 batches; a right one is checked ever
 * less often (24 trial batches in the first 2,040, 4 in 65,540 at last:
 * under 1 %, too few to reach a p99). */
#define PM_WAL_ADAPT_TRIAL_BATCHES 4u
#define PM_WAL_ADAPT_WINDOW_MIN 32u
#define PM_WAL_ADAPT_WINDOW_MAX 65536u
/* Replies held for durability per worker, and their bytes. */
#define PM_WAL_HELD_MAX 4096u
#define PM_WAL_HELD_BYTES (2u << 20)
/* Segments a snapshot made unnecessary that a shard keeps (renamed
 * <LSN>.spare) to reuse as its next segments instead of allocating new ones;
 * the next segment prepared ahead (a .spare too) counts among them. */
#define PM_WAL_SPARE_SEGMENTS 2u
/* Segments of one shard's log that recovery and a published snapshot's
 * clean-up list at most (their first LSNs, 512 KiB per worker, touched only
 * when listed): at the default wal_segment_bytes, 4 TiB of log. */
#define PM_WAL_SEGMENTS_MAX 65536u
/* Turns a stopping worker gives its log at most to get its last batches to
 * the disk (each waits for a completion): a few suffice; the bound keeps a
 * log that never settles from holding the exit. */
#define PM_WAL_DRAIN_TURNS_MAX 1000u
/* Bytes of the newest log segments a recovering shard asks the kernel to
 * read ahead (POSIX_FADV_WILLNEED) before it loads its snapshot: the load is
 * bound by the CPU, so the disk reads the log meanwhile, and the replay after
 * it finds the segments in the page cache (issue 20: a restart from
 * snapshots spent 165-215 ms per shard reading its last segment afterwards). */
#define PM_WAL_READAHEAD_BYTES (256u << 20)
/* How often a shard whose disk was full tries its batch again. */
#define PM_WAL_RETRY_MS 1000u
/* Bytes reserved in the held-reply buffer per admitted mutation: its reply
 * is one small frame (status, and for deletes whether something was removed). */
#define PM_WAL_REPLY_BYTES_MAX 128u

enum pm_wal_mode { PM_WAL_NONE = 0, PM_WAL_BATCH = 1, PM_WAL_SYNC = 2 };

struct pm_wal_stats {
	uint64_t records, bytes, batches, fsyncs, resubmits;
	uint64_t held, held_max;       /* replies held now, most ever */
	uint64_t refused_full, refused_failed, refused_busy;
	uint64_t evictions;            /* DEL records of evictions (evict_log) */
	uint64_t evict_refused;        /* evictions refused: no room in the batch, or log down */
	uint64_t segments;             /* segments created by this run */
	uint64_t recycled;             /* ... of them made from a spare */
	uint64_t retired, deleted;     /* covered by a snapshot: kept as spares, deleted */
	uint64_t segment_waits;        /* switches that waited for the next segment's preparation */
	uint64_t fill_bytes;           /* zeros written ahead of the log (sync mode) */
	uint64_t fill_waits;           /* batches that waited a turn for a fill in their range */
	uint64_t sync_overlaps;        /* batches submitted while an earlier one's fdatasync ran */
	uint64_t recovered_records, recovery_ms, torn_truncated;
	uint64_t recovery_skipped_bytes; /* log bytes recovery did not read: the snapshot's hint */
	uint64_t repl_timeouts;        /* replies answered NOREPLICAS: no replica acks in time */
};

struct pm_wal;

/* Open (and recover into) worker w's log: replays its segments into w->shard.
 * 0, or -1 with a message. Called before the workers start. */
int pm_wal_open(struct pm_worker *w, char *err, size_t errlen);
void pm_wal_close(struct pm_worker *w);
/* wal_io_uring = auto, sync mode: once every shard is open, before the
 * workers start, time a write + fdatasync through shard 0's io_uring and with
 * pwrite, and write every shard's sync batches the faster way (said, and in
 * INFO: wal_io, wal_io_probe_*). */
void pm_wal_probe(struct pm_daemon *d);

/* Before applying a mutation: PM_OK (room for its record and its held reply
 * is reserved), or the status to refuse it with. */
enum pm_status pm_wal_admit(struct pm_worker *w, const struct pm_request *req);
/* After applying an admitted req with result rep: log it if it changed the
 * shard; the reservation is released either way. */
void pm_wal_note(struct pm_worker *w, const struct pm_request *req, const struct pm_reply *rep);
/* The shard's evict_log hook (engine/evict.h; ctx is the worker): encode a
 * DEL of key into the batch being filled, ahead of the write that needed the
 * room, if the batch has room beyond what admitted mutations reserved; false
 * (the eviction does not happen, the write is refused NOMEM) if not. */
bool pm_wal_evict_log(void *ctx, const uint8_t *key, uint32_t klen);
/* Whether a reply (op, status) must wait for the log: sync mode, a batch
 * pending, a mutation — unless it was refused (DISK_FULL, LOG_FAILED, BUSY:
 * nothing was applied), which leaves at once. */
bool pm_wal_must_hold(const struct pm_worker *w, uint8_t op, enum pm_status st);
/* Hold encoded reply frames for dest (a client), or a ring message (type,
 * m, body) — released when everything logged so far is durable. */
void pm_wal_hold_reply(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
		       uint32_t len);
void pm_wal_hold_msg(struct pm_worker *w, uint32_t to, uint32_t type, const struct pm_msg *m,
		     const uint8_t *body, uint32_t len);
/* End of a turn: submit the filled batch if none is in flight, reap
 * completions, release held replies, fsync in batch mode. Returns work done. */
uint32_t pm_wal_turn(struct pm_worker *w);
/* File descriptor that becomes readable on a completion (-1: none). */
int pm_wal_wake_fd(const struct pm_worker *w);
/* Drain at shutdown: wait for what is in flight, write and sync the rest. */
void pm_wal_drain(struct pm_worker *w);
uint32_t pm_wal_info(const struct pm_worker *w, char *out, uint32_t cap);

/* ---------------------------------------------------------------- replication (repl.c) */

struct pm_wal_record;
struct pm_reply;
/* Apply a record as recovery does (an expired SET or VADD becomes a delete). */
void pm_wal_apply_record(struct pm_worker *w, const struct pm_wal_record *rec,
			 struct pm_reply *rep);
/* Log n bytes of one record exactly as the primary logged it, at its LSN:
 * 1, 0 (no room in the batch, or the log waits for its disk: try later), or
 * -1 (lsn is not the next one). */
int pm_wal_append_record(struct pm_worker *w, const uint8_t *rec, uint32_t n, uint64_t lsn);
/* Whether n bytes of records fit the batch being filled now. */
bool pm_wal_has_room(const struct pm_worker *w, uint32_t n);
/* The log's LSNs: the next to be given, the last durable (sync: synced;
 * batch: written), the last submitted and the last written. */
uint64_t pm_wal_next_lsn(const struct pm_worker *w);
/* Mark the last record logged (next_lsn - 1: a snapshot's start) to learn
 * where it lies in the log once its batch has started; one mark at a time.
 * pm_wal_mark_pos: true with the record's segment (its first LSN) and byte
 * offset in it when the mark is lsn and placed. */
void pm_wal_mark(struct pm_worker *w);
bool pm_wal_mark_pos(const struct pm_worker *w, uint64_t lsn, uint64_t *seg, uint64_t *off);
uint64_t pm_wal_durable_lsn(const struct pm_worker *w);
/* Release held replies that wait for replicas: acknowledged, or timed out. */
uint32_t pm_wal_release_held(struct pm_worker *w);
/* Start the log over after lsn (a replica's full sync: the history before it
 * is gone): every segment retired; 0, or 1 when a batch is in flight or
 * being filled (try again next turn). */
int pm_wal_restart_at(struct pm_worker *w, uint64_t lsn);
struct pm_stats_shard;
/* The log's counters in a stats block (zeros with wal = none). */
void pm_wal_counters(const struct pm_worker *w, struct pm_stats_shard *s);

#endif
