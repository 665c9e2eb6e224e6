/* SPDX-License-Identifier: MIT
 *
 * repl_disk.h — a replication shard's file work, kept off its worker thread
 * (issue 20): the image a replica receives in a full sync, its install, and
 * the shard's HISTORY file. repl_io.c drives it; repl_disk.c says which step
 * runs where. Nothing else includes it.
 *
 * Each step that takes more than one request is a small state machine: the
 * worker starts it, gets PM_RD_WAIT until its requests complete (completions
 * of the worker's ring: pm_rd_on_cqe; a helper job: seen by pm_rd_turn), and
 * asks again on a later turn; it never waits itself.
 */
#ifndef POMAI_DATAPLANE_REPL_DISK_H
#define POMAI_DATAPLANE_REPL_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pm_daemon;
struct pm_worker;
struct pm_repl_frame;
struct pm_repl_disk;   /* a shard's */
struct pm_repl_helper; /* the node's helper thread */

/* data_dir/wal/shard-<i>/HISTORY: a shard's replication history, one line. */
#define PM_REPL_HISTORY_NAME "HISTORY"
/* Bytes of that line at most. */
#define PM_REPL_HISTORY_BYTES 192u
/* user_data of a completion of this file's requests: OP_REPL, this bit, the
 * request's op above the peer bits (repl_io.c's segment reads have a slot
 * below PM_REPL_REPLICAS_MAX there, never this bit). */
#define PM_RD_USER_DATA (1ull << 40)

enum pm_rd_step {
	PM_RD_DONE = 0, /* finished (a frame: taken) */
	PM_RD_WAIT,     /* requests in flight: ask again on a later turn (a frame: it stays) */
	PM_RD_FAIL,     /* failed: the message says why */
};

/* The node's helper thread (started when a shard has an io_uring; without
 * one its jobs run on the worker, as the log's I/O then does): 0, or -1
 * with a message. *out NULL when none is needed. Stopped (joined) after the
 * workers, before the shards' states are freed. */
int pm_rd_helper_start(struct pm_daemon *d, struct pm_repl_helper **out, char *err,
		       size_t errlen);
void pm_rd_helper_stop(struct pm_repl_helper *h);
/* Its memory (the shards' job slots): after pm_rd_free of every shard. */
void pm_rd_helper_free(struct pm_repl_helper *h);

/* A shard's state (NULL: out of memory); freed once its worker has stopped
 * (pm_repl_close: the helper stopped first, the ring drained by pm_wal_drain). */
struct pm_repl_disk *pm_rd_new(struct pm_worker *w, struct pm_repl_helper *h);
void pm_rd_free(struct pm_repl_disk *rd);

/* HISTORY replaced by the n bytes of line, in the background: a temporary
 * file made, written, fdatasynced, renamed over HISTORY, the directory
 * fsynced. A save asked while one runs follows it (the last line asked wins). */
void pm_rd_history_save(struct pm_worker *w, struct pm_repl_disk *rd, const char *line,
			size_t n);
/* A save runs or waits. */
bool pm_rd_history_busy(const struct pm_repl_disk *rd);

/* One frame of a full sync (SNAP_BEGIN, SNAP_DATA, SNAP_END) into
 * <LSN>.snap.image: DONE (taken), WAIT (present it again later), FAIL. After
 * SNAP_END's DONE the image is whole, synced, checked, and mapped for the
 * install. */
enum pm_rd_step pm_rd_image(struct pm_worker *w, struct pm_repl_disk *rd,
			    const struct pm_repl_frame *f, char *err, size_t errlen);
/* The link went down: the image being received is given up (its file stays
 * for the next SNAP_BEGIN of that name, or the next start, to remove). An
 * install already begun is not affected: it runs to its end. */
void pm_rd_image_abandon(struct pm_worker *w, struct pm_repl_disk *rd);
/* The checked image at lsn replaces the shard: HISTORY removed, the log
 * restarted after lsn, older snapshots deleted, the image renamed to
 * <lsn>.snap and its directory synced, the shard loaded from it. Asked each
 * turn until DONE or FAIL; after FAIL the shard is empty when the log had
 * been restarted already (*emptied), else it keeps its data. */
enum pm_rd_step pm_rd_install(struct pm_worker *w, struct pm_repl_disk *rd, uint64_t lsn,
			      bool *emptied, char *err, size_t errlen);
/* An install has begun and not ended. */
bool pm_rd_installing(const struct pm_repl_disk *rd);
/* Requests of the ring in flight (the log's reap looks for completions). */
bool pm_rd_inflight(const struct pm_repl_disk *rd);
/* Anything under way: requests, a helper job, an install (a replica does
 * not connect again before it is done). */
bool pm_rd_busy(const struct pm_repl_disk *rd);
/* Each turn: what found the ring full is submitted, a helper job's end is taken. */
void pm_rd_turn(struct pm_worker *w, struct pm_repl_disk *rd);
/* A completion whose user_data has PM_RD_USER_DATA. */
void pm_rd_on_cqe(struct pm_worker *w, struct pm_repl_disk *rd, uint64_t user_data, int res);

#endif
