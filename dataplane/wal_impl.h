/* SPDX-License-Identifier: MIT
 *
 * wal_impl.h — a worker's log state, shared by wal_io.c (the log) and
 * snap_io.c (snapshots, which use the log's io_uring and LSNs). Nothing else
 * includes it.
 */
#ifndef POMAI_DATAPLANE_WAL_IMPL_H
#define POMAI_DATAPLANE_WAL_IMPL_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "msg.h"
#include "wal_io.h"
#include "worker.h"

/* user_data of a completion: what it was in the low OP_BITS; above them the
 * batch's sequence number (the log's ops) or the snapshot's op and slot
 * (snap_io.c). */
#define OP_BITS 4u
#define OP_MASK ((1u << OP_BITS) - 1)
#define OP_SNAP 0u
#define OP_WRITE 1u     /* a batch's write */
#define OP_FSYNC 2u     /* its linked fdatasync (sync mode); or, resubmitted, a batch's behind */
#define OP_BFSYNC 3u    /* the periodic fdatasync of batch mode */
#define OP_SEAL 4u      /* the previous segment's fdatasync, first in a new segment's first chain */
#define OP_DIRSYNC 5u   /* the directory's fsync, last in that chain: the new name is durable */
#define OP_PREP 6u      /* a step of preparing the next segment (wal_io.c: prep_*) */
#define OP_REPL 7u      /* a read of a segment for a replica that catches up (repl.c) */
#define OP_RENAME 8u    /* a new segment's name, first in its first chain after the seal */
#define OP_FILL 9u      /* zeros written ahead of the log's end (sync mode, fill_step) */
#define OP_FILLSYNC 10u /* ... their fdatasync, linked */
#define OP_DRAINSYNC 11u /* the last fdatasync of a stopping worker (pm_wal_drain) */
/* Bytes zeroed per write when a torn tail is cleared. */
#define ZERO_CHUNK_BYTES (1u << 20)
#define PATH_BYTES 512u
/* A file name in a shard's directory: "<20 digits>.spare" and the like. */
#define NAME_BYTES 32u

enum wal_state { WAL_OK = 0, WAL_FULL, WAL_FAILED };

struct batch {
	uint8_t *buf;
	uint32_t len;
	uint64_t seq;
	uint64_t first_lsn;        /* LSN of its first record (a new segment is named by it) */
	uint64_t last_lsn;         /* LSN of its last record, once submitted */
	uint32_t last_off;         /* where its last record starts in buf */
};

/* Sync mode: a batch whose write has completed, until it is durable — its
 * fdatasync and every earlier batch's completed (wal_io.c: syncs behind). */
struct sync_wait {
	uint64_t seq, last_lsn;
	uint64_t t0;               /* its submission (ns) when wal_io_uring = auto times it, else 0 */
	bool here;                 /* ... written with pwrite on the worker */
	bool done;                 /* its fdatasync completed */
};

struct held {
	uint64_t seq;              /* the batch that must be durable first */
	uint64_t lsn;              /* the last record logged before it: what replicas must
				    * acknowledge first (repl_ack) */
	uint64_t ms;               /* when it was held, monotonic ms (repl_ack_timeout_ms) */
	uint32_t to_worker, type;  /* type 0: a client reply to dest; else a ring message */
	struct pm_dest dest;
	struct pm_msg msg;
	uint32_t off, len;         /* bytes in held_buf */
};

/* The next segment, prepared ahead of need, one step at a time (each step a
 * completion of the worker's ring, or a call on the worker without io_uring):
 * a spare opened and zeroed, or a new file created and allocated, then
 * fdatasynced. A switch to it only writes its header and renames it. */
enum prep_stage { PREP_NONE = 0, PREP_OPEN, PREP_ZERO, PREP_PUNCH, PREP_ALLOC, PREP_SYNC,
		  PREP_READY, PREP_UNLINK /* a spare that cannot be zeroed goes, then PREP_OPEN */,
		  PREP_FILL /* sync mode: its first PM_WAL_FILL_AHEAD_BYTES written with zeros */ };

/* Debug builds (no NDEBUG): POMAI_TEST_FSYNC=stall|fail, read at start-up,
 * holds back or fails the log's fsync completions; POMAI_TEST_WAL_ADAPT=
 * ring_slow|pwrite_slow adds TEST_ADAPT_PENALTY_NS to the time wal_io_uring =
 * auto counts for each batch written that way (wal_io.c: test hooks). */
#ifndef NDEBUG
#define PM_WAL_TEST_HOOKS 1
#define TEST_HELD_MAX PM_WAL_QUEUE_DEPTH
/* What POMAI_TEST_WAL_ADAPT adds to a batch's counted time: far above any
 * disk's flush, so the choice it makes does not depend on the machine. */
#define TEST_ADAPT_PENALTY_NS (50u * 1000000u)
enum test_adapt { TEST_ADAPT_OFF = 0, TEST_ADAPT_RING_SLOW, TEST_ADAPT_PWRITE_SLOW };
enum test_fsync { TEST_FSYNC_OFF = 0, TEST_FSYNC_STALL, TEST_FSYNC_FAIL, TEST_FSYNC_STEP };
struct test_hook {
	enum test_fsync fsync;
	uint32_t held;             /* completions held back (stall) */
	uint64_t ud[TEST_HELD_MAX];
	int res[TEST_HELD_MAX];
	unsigned releases_seen;    /* of the process's release count (SIGUSR1) */
	unsigned fails_seen;       /* ... and, step, of its fail count (SIGUSR2) */
	enum test_adapt adapt;
	uint32_t enospc_left;      /* batch writes still to fail ENOSPC (POMAI_TEST_WAL_ENOSPC) */
};
#endif

struct pm_snap;

struct pm_wal {
	enum pm_wal_mode mode;
	enum wal_state state;
	bool uring;
	struct io_uring ring;
	int efd;                   /* eventfd registered with the ring */
	char dir[PATH_BYTES - 32]; /* data_dir/wal/shard-<i>, for messages */
	int dirfd;                 /* ... its descriptor: every file is reached through it */
	int fd;                    /* current segment, -1 before the first */
	uint64_t seg_off, seg_bytes;
	uint64_t seg_first;        /* the current segment's first LSN (its name) */
	/* Where records are in the segments (a snapshot's header says where its
	 * start LSN's record is: pm_wal_mark): the last record of the batch
	 * started last, and the one record marked */
	uint64_t tail_lsn, tail_seg, tail_off;
	uint64_t mark_lsn, mark_seg, mark_off; /* mark_seg 0: not placed yet */
	uint32_t mark_rel;         /* the mark's offset in the batch being filled */
	bool mark_in_fill;         /* ... placed when that batch starts */
	uint64_t next_lsn;
	uint64_t durable_lsn;      /* every record up to it is written (sync: and synced) */
	struct batch b[2];
	uint32_t fill;             /* index of the batch being filled */
	uint32_t reserved;         /* batch bytes admitted mutations may still write */
	uint32_t reserved_held;    /* replies admitted mutations may still hold */
	/* the batch in flight */
	bool inflight;
	uint32_t written, cqes_left;
	int err;
	unsigned err_op;           /* OP_* of the first error */
	bool fsync_ok;
	uint64_t durable_seq;
	/* sync mode through the ring, wal_sync_overlap: a batch whose write has
	 * completed waits here (FIFO, oldest first) for its fdatasync while the
	 * next batch is written; in sync mode every batch passes through here,
	 * and leaves — durable — only after every earlier one */
	bool overlap;
	struct sync_wait behind[PM_WAL_SYNCS_BEHIND_MAX];
	uint32_t behind_head, behind_n;
	uint32_t behind_running;   /* ... whose fdatasync is still in flight */
	uint64_t written_lsn;      /* the last record whose batch write completed (INFO) */
	uint64_t submitted_lsn;    /* the last record of the last batch submitted (and streamed
				    * to the replicas that are live) */
	uint64_t next_seq;         /* seq of the batch being filled */
	/* a switch of segment, finished by the next batch's chain */
	int seal_fd;               /* the previous segment until its last writes are synced */
	bool dirsync;              /* a segment was named since the directory was fsynced */
	bool seg_waiting;          /* the filled batch waits for the next segment */
	/* the next segment */
	enum prep_stage prep;
	bool prep_inflight, prep_spare;
	int prep_fd, prep_err;
	uint64_t prep_bytes, prep_retry_ms;
	char prep_name[NAME_BYTES];
	/* issue 20: no file-system call on the worker thread with io_uring. The
	 * segment switch's rename goes in the next chain (seg_from -> seg_to,
	 * then the write); the segments and spares are known here, never listed
	 * at run time; a retired segment waits in `retiring` for a free slot of
	 * snap_io.c's background renames and unlinks. */
	bool seg_rename;
	char seg_from[NAME_BYTES], seg_to[NAME_BYTES];
	uint64_t seg_to_lsn;
	uint32_t nsegs;            /* live segments in segs[], sorted by first LSN */
	uint32_t nspares, spares_coming; /* spares known, and renames to spares in flight */
	char spare[PM_WAL_SPARE_SEGMENTS + 1][NAME_BYTES];
	uint64_t *retiring;        /* PM_WAL_SEGMENTS_MAX: first LSNs of segments to retire */
	uint32_t nretiring;
	/* issue 20: where a sync-mode batch's write + fdatasync run, and the
	 * zeros written ahead of the log (wal_io.c: probe_io, fill_step) */
	bool batch_here;           /* pwrite + fdatasync on the worker; the ring does the rest */
	bool fill_ahead;           /* sync mode with a ring: segments are written ahead */
	uint32_t probe_ring_us, probe_here_us; /* the start-up probe's medians (0: none ran) */
	/* ... and kept measured while the worker runs (adapt_note) */
	bool adapt;                /* the probe ran: the choice is re-made from batch times */
	bool adapt_trial;          /* this window writes the other way */
	bool batch_sample;         /* the batch in flight is timed: first submission, no switch */
	bool batch_way_here;       /* ... and written on the worker */
	uint32_t adapt_left;       /* batches left in this window or trial */
	uint32_t adapt_window;     /* batches of the next window (doubles while trials lose) */
	uint64_t batch_t0;         /* when the batch in flight was submitted, ns */
	uint64_t adapt_ns[2], adapt_n[2]; /* batch times of the window and its trial: [0] ring */
	uint32_t adapt_ring_us, adapt_here_us; /* the last comparison's means (INFO) */
	uint64_t adapt_switches;
	uint64_t fill_off;         /* [0, fill_off) of the current segment is written */
	uint64_t fill_lo, fill_hi; /* the fill in flight (fill_hi 0: none) */
	uint32_t fill_cqes;        /* ... its completions still to come */
	uint64_t prep_filled;      /* bytes of the next segment written with zeros */
	uint32_t drain_syncs;      /* a stopping worker's last fdatasyncs still to complete */
	/* batch mode */
	bool bfsync_inflight, dirty;
	uint64_t last_fsync_ms, retry_ms;
	bool full_retry;           /* disk full: the batch's retry is in flight (pm_wal_turn) */
	/* held replies, FIFO */
	struct held *held;
	uint32_t held_head, held_tail;
	uint8_t *held_buf;
	uint32_t held_used;
	struct pm_wal_stats st;
	struct pm_snap *snap;      /* snapshots of this shard (snap_io.c) */
	uint64_t *segs;            /* PM_WAL_SEGMENTS_MAX: the live segments' first LSNs
				    * (listed at start, then kept: nsegs) */
#ifdef PM_WAL_TEST_HOOKS
	struct test_hook test;
#endif
};

/* The name of the segment whose first record is first_lsn: "<20 digits>.wal". */
void pm_wal_seg_name(uint64_t first_lsn, char *out);
/* The first LSNs of the segments in directory dirfd, sorted; their count (or -1). */
int pm_wal_list_segments(int dirfd, uint64_t *out, int cap);
/* The live segments' first LSNs wholly before `keep` (every segment but the
 * newest whose successor starts at or before keep) leave the list and are
 * retired in the background: kept as spares (PM_WAL_SPARE_SEGMENTS) or
 * deleted. keep UINT64_MAX: every segment, the newest too. */
void pm_wal_retire_below(struct pm_worker *w, uint64_t keep);
/* Retire what waits, as far as free slots allow (each worker turn). */
void pm_wal_retire_step(struct pm_worker *w);
/* A retired segment's rename to a spare completed (snap_io.c): res 0, or
 * -errno (then it is deleted instead). */
void pm_wal_retired(struct pm_worker *w, const char *seg, const char *spare, int res);
uint64_t pm_wall_ms(void);

#endif
