/* SPDX-License-Identifier: MIT
 *
 * snap_io.h — a worker's snapshots: the I/O around engine/snapshot.h's format.
 *
 * A snapshot of shard i is written to data_dir/snap/shard-<i>/<start LSN, 20
 * digits>.snap.tmp (made anew, never through a link: datadir.h; every file
 * here is reached through the directory's descriptor) in slices of
 * PM_SNAP_SLICE_BYTES, each filled between two
 * polling turns and written through the worker's own io_uring (the WAL's ring;
 * pwrite on the worker thread without io_uring). The worker goes on serving
 * while it runs: the snapshot is fuzzy, and recovery replays the log from its
 * start LSN over it. Once every slice is written and the log is durable past
 * the last record applied while it ran, the file is fsynced, renamed to
 * <start LSN>.snap and its directory fsynced (atomic publish); then older
 * snapshots and the WAL segments wholly before its start LSN are deleted.
 *
 * Started by the SNAPSHOT request (every shard) and by the schedule
 * (snapshot_interval_s, snapshot_wal_bytes). Snapshots need the log: with
 * wal = none a SNAPSHOT request is refused E_PARAM.
 *
 * Recovery (pm_wal_open) loads the newest published snapshot, then replays the
 * log from its start LSN; the HNSW graphs are restored from it, not rebuilt.
 */
#ifndef POMAI_DATAPLANE_SNAP_IO_H
#define POMAI_DATAPLANE_SNAP_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct pm_snap_info;

struct pm_worker;

/* Bytes of one snapshot slice buffer (two per worker while a snapshot runs):
 * the most a worker copies between two polling turns. */
#define PM_SNAP_SLICE_BYTES (1u << 20)
/* Seed slots and HNSW node ids one slice looks at, at most (empty ones are
 * cheap but not free). */
#define PM_SNAP_SLICE_ITEMS 16384u
/* snapshot_write_bytes_per_s: the most a pace may be (1 TiB/s: unpaced on any
 * disk there is), and the default, per shard: writing a large shard back to
 * back at the disk's full rate left two cores to the page cache's copy and
 * writeback instead of the requests (issue 20's snapshot_cost: 0.10x), so a
 * snapshot is background work at a bounded rate, as compaction is elsewhere.
 * A snapshot may run ahead of its pace by one second of it (at least a slice):
 * a small shard's snapshot is not slowed at all. */
#define PM_SNAP_PACE_BYTES_PER_S_MAX (UINT64_C(1) << 40)
#define PM_SNAP_PACE_BYTES_PER_S_DEFAULT (UINT64_C(64) << 20)

struct pm_snap_stats {
	uint64_t started, completed, failed;
	uint64_t bytes;                /* written by the running (or last) snapshot */
	uint64_t slices;
	uint64_t pace_waits;           /* times a slice waited for snapshot_write_bytes_per_s */
	uint64_t last_lsn;             /* start LSN of the newest published snapshot */
	uint64_t last_ms;              /* how long it took */
	uint64_t last_bytes;
	uint64_t last_end_wall_ms;     /* when it was published (wall clock) */
	/* recovery */
	uint64_t loaded_lsn, loaded_items, loaded_nodes, load_ms;
};

/* Start a snapshot of w's shard now (PM_OK also when one is running), or
 * PM_E_PARAM when the log is off. */
enum pm_status pm_snap_request(struct pm_worker *w);
/* Between turns: the schedule, the next slice, completions, the publish.
 * Returns work done. Called from pm_wal_turn's owner (the worker loop). */
uint32_t pm_snap_turn(struct pm_worker *w);
/* A completion of the shared ring that belongs to the snapshot. */
void pm_snap_on_cqe(struct pm_worker *w, uint64_t user_data, int res);
bool pm_snap_inflight(const struct pm_worker *w);
/* Delete file `name` of the directory dirfd (which stays open until it is
 * gone) in io_uring's workers (a GB file can keep the filesystem busy for
 * 0.3 s and more), or here and now without io_uring or a free slot; a log
 * segment is counted in wal_segments_deleted once it is gone. False only
 * when a synchronous unlink failed. */
bool pm_snap_unlink(struct pm_worker *w, int dirfd, const char *name, bool segment);
/* A retired segment renamed to a spare in the background (RENAME_NOREPLACE;
 * pm_wal_retired() hears how it went): false when no slot is free (the log
 * tries again on a later turn). */
bool pm_snap_rename_spare(struct pm_worker *w, const char *seg, const char *spare);
/* Whether a background slot is free for the log's retirements (a few stay
 * reserved for the snapshot's own unlinks). */
bool pm_snap_slot_free(const struct pm_worker *w);
/* Recovery: load the newest snapshot of w's shard into it; *info says what
 * was loaded (all zeros: none — start LSN 0). 0, or -1 with a message. Called
 * from pm_wal_open. */
int pm_snap_recover(struct pm_worker *w, struct pm_snap_info *info, char *err, size_t errlen);
/* The name of the snapshot at lsn in a shard's snapshot directory:
 * "<20 digits>.snap", or ".snap.tmp" while it is written (NAME_BYTES). */
void pm_snap_name(uint64_t lsn, bool tmp, char *out);
/* A replica's full-sync image of lsn while it is received and checked:
 * "<20 digits>.snap.image" — a name of its own, so that it never meets a
 * local snapshot of the same LSN being written (both removed at start). */
void pm_snap_image_name(uint64_t lsn, char *out);
/* A replica's full sync (repl_io.c, repl_disk.c): the snapshot directory
 * (its descriptor, and its path for messages), where the image is received
 * as <LSN>.snap.image; whether a local snapshot is under way (the shard
 * cannot be replaced then). */
int pm_snap_dirfd(const struct pm_worker *w);
const char *pm_snap_dir(const struct pm_worker *w);
bool pm_snap_busy(const struct pm_worker *w);
/* The running snapshot's progress, % (0 when none runs). */
unsigned pm_snap_pct(const struct pm_worker *w);
/* A snapshot image mapped read-only (munmap(buf, bytes) when done). */
struct pm_snap_map {
	uint8_t *buf;
	size_t bytes;
};
/* File `name` of the directory dirfd (dir: its path, for messages) opened,
 * mapped (populated) and checked whole (pm_snap_check: header, every
 * section's CRC, the counts) as a snapshot of shard `shard` at lsn: 0 with
 * the mapping in *m, or -1 with a message (nothing mapped). Touches no
 * worker state: repl_disk.c's helper thread runs it. */
int pm_snap_map_check(int dirfd, const char *dir, const char *name, uint32_t shard, uint64_t lsn,
		      struct pm_snap_map *m, char *err, size_t errlen);
/* Delete every published snapshot (".snap") of the directory dirfd: a
 * listing, so the helper thread's, never a worker's (no worker state). */
void pm_snap_clear_dir(int dirfd);
/* The install of a received image that the caller has published as
 * <lsn>.snap (renamed, the directory synced) and mapped (m): the shard
 * emptied and loaded from the mapping, as at start-up, on the worker: no
 * file-system call. 0, or -1 with a message (the shard is then empty). */
int pm_snap_install_mapped(struct pm_worker *w, uint64_t lsn, const struct pm_snap_map *m,
			   char *err, size_t errlen);
/* Stop a running snapshot (shutdown): its temporary file is removed. */
void pm_snap_close(struct pm_worker *w);
uint32_t pm_snap_info(const struct pm_worker *w, char *out, uint32_t cap);
struct pm_stats_shard;
void pm_snap_counters(const struct pm_worker *w, struct pm_stats_shard *s);

#endif
