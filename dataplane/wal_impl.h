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

#include "daemon.h"
#include "wal_io.h"

/* user_data of a completion: batch sequence number << 2 | what it was;
 * 0 in the low bits: a snapshot's (snap_io.c: its op << 2). */
#define OP_SNAP 0u
#define OP_WRITE 1u
#define OP_FSYNC 2u
#define OP_BFSYNC 3u
#define OP_MASK 3u
/* Bytes zeroed per write when a torn tail is cleared. */
#define ZERO_CHUNK_BYTES (1u << 20)
#define PATH_BYTES 512u

enum wal_state { WAL_OK = 0, WAL_FULL, WAL_FAILED };

struct batch {
	uint8_t *buf;
	uint32_t len;
	uint64_t seq;
	uint64_t first_lsn;        /* LSN of its first record (a new segment is named by it) */
	uint64_t last_lsn;         /* LSN of its last record, once submitted */
};

struct held {
	uint64_t seq;              /* the batch that must be durable first */
	uint32_t to_worker, type;  /* type 0: a client reply to dest; else a ring message */
	struct pm_dest dest;
	struct pm_msg msg;
	uint32_t off, len;         /* bytes in held_buf */
};

struct pm_snap;

struct pm_wal {
	enum pm_wal_mode mode;
	enum wal_state state;
	bool uring;
	struct io_uring ring;
	int efd;                   /* eventfd registered with the ring */
	char dir[PATH_BYTES - 32]; /* room for "/<20 digits>.wal" */
	int fd;                    /* current segment, -1 before the first */
	uint64_t seg_off, seg_bytes;
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
	bool fsync_ok;
	uint64_t durable_seq;
	uint64_t next_seq;         /* seq of the batch being filled */
	/* batch mode */
	bool bfsync_inflight, dirty;
	uint64_t last_fsync_ms, retry_ms;
	/* held replies, FIFO */
	struct held *held;
	uint32_t held_head, held_tail;
	uint8_t *held_buf;
	uint32_t held_used;
	struct pm_wal_stats st;
	struct pm_snap *snap;      /* snapshots of this shard (snap_io.c) */
};

/* The first LSNs of the segments in dir, sorted; their count (or -1). */
int pm_wal_list_segments(const char *dir, uint64_t *out, int cap);
int pm_fsync_dir(const char *dir);
/* A segment a snapshot covers: kept as a spare (PM_WAL_SPARE_SEGMENTS) or deleted. */
void pm_wal_retire(struct pm_worker *w, uint64_t first_lsn);
int pm_mkdir_p(char *path);
uint64_t pm_wall_ms(void);

#endif
