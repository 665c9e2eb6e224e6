/* SPDX-License-Identifier: MIT
 *
 * snap_io.c — a worker's snapshots (see snap_io.h): the schedule, slices
 * written through the log's io_uring, the atomic publish, the clean-up of
 * what the new snapshot covers, and loading the newest one at start.
 *
 * A running snapshot goes through stages, one step per worker turn, never
 * waiting: WRITING (fill a slice when the previous one is written, submit
 * it), WAIT_LOG (the log must be durable past the last record applied while
 * the snapshot ran, so the snapshot never holds a change the log could lose),
 * FSYNC (the file), then rename and PUBLISH (fsync of the directory), then
 * the files it covers go. Any I/O error ends the snapshot: its temporary file
 * is removed, the failure logged and counted, the next one is tried on the
 * schedule; the log and the shard are not affected.
 *
 * With io_uring no file-system call runs on the worker thread (issue 20):
 * the temporary file is made by the ring (OPEN: a stale one of its name
 * unlinked, then opened O_EXCL), published by it (the rename, then the
 * directory's fsync), and what a snapshot covers is deleted or kept as a
 * spare by it, in the background, through a few slots whose names the kernel
 * reads at submission. Nothing is listed at run time: the log knows its
 * segments and spares (wal_impl.h), and this file the one snapshot it
 * published last. Without io_uring (wal_io_uring = no) the same steps run on
 * the worker thread, as the log's writes then do.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "datadir.h"
#include "snap_io.h"
#include "repl_io.h"
#include "snapshot.h"
#include "wal_impl.h"

#define SNAP_OP_WRITE 1u
#define SNAP_OP_FSYNC 2u
#define SNAP_OP_DIRSYNC 3u
#define SNAP_OP_UNLINK 4u /* a background unlink (a slot) */
#define SNAP_OP_CLEAR 5u  /* a stale temporary file of the new snapshot's name goes */
#define SNAP_OP_OPEN 6u   /* the temporary file is made */
#define SNAP_OP_RENAME 7u /* it takes its published name */
#define SNAP_OP_SPARE 8u  /* a background rename of a retired segment to a spare (a slot) */
#define SNAP_OP_BITS 4u /* user_data: slot << 8 | op << OP_BITS | OP_SNAP */
#define SNAP_SLOT_SHIFT 8u
/* Deletions in flight at once per shard. Deleting a GB file (an old snapshot,
 * a segment; with online discard) keeps the filesystem busy for 0.3 s and
 * more, so it runs in io_uring's workers, not on the worker thread; more than
 * this many pending (never at one snapshot per publish) fall back to unlink(). */
#define SNAP_UNLINKS_MAX 8u
/* Slots the log's retirement of segments leaves free, for the snapshot's own
 * unlinks (an old snapshot at a publish, a failed one's temporary file): at
 * most two per snapshot, and snapshots do not overlap, so those always find
 * one. */
#define SNAP_SLOTS_RESERVED 2u
/* S_OPEN, then S_HEADER last: the INFO names of the others keep their numbers.
 * S_HEADER writes the header again with where the log holds the start LSN's
 * record (pm_snap_header), once the log has written it. */
enum stage { S_IDLE = 0, S_WRITING, S_WAIT_LOG, S_FSYNC, S_PUBLISH, S_OPEN, S_HEADER };

struct pm_snap {
	char dir[PATH_BYTES - 48]; /* data_dir/snap/shard-<i>, for messages */
	int dirfd;                 /* ... its descriptor: every file is reached through it */
	enum stage stage;
	int fd;                    /* the temporary file being written */
	uint8_t *buf;              /* PM_SNAP_SLICE_BYTES */
	uint32_t len, written;     /* the slice in the buffer, and how much of it is written */
	uint64_t file_off;         /* where the slice goes (S_HEADER: the header, at 0) */
	bool inflight;             /* one of our SQEs is in the ring */
	uint64_t end_lsn;          /* the last record applied before the last slice */
	uint64_t t0_ns;
	uint64_t last_start_ms, wal_bytes_at_start; /* the schedule */
	struct pm_snap_writer wr;
	struct pm_snap_stats st;
	uint32_t unlink_busy;      /* bit i: unlink_name[i] is in the ring */
	uint32_t unlink_seg;       /* bit i: it is a log segment (counted as deleted) */
	uint32_t unlink_spare;     /* bit i: a rename of unlink_name[i] to unlink_to[i] */
	int unlink_dirfd[SNAP_UNLINKS_MAX]; /* ... in this directory (the log's or ours) */
	char unlink_name[SNAP_UNLINKS_MAX][NAME_BYTES];
	char unlink_to[SNAP_UNLINKS_MAX][NAME_BYTES];
	bool cleared, renamed;     /* S_OPEN: the stale name is gone; S_PUBLISH: renamed */
	bool pacing;               /* S_WRITING: the next slice waits for the pace */
	bool have_published;       /* published_lsn names the newest published snapshot */
	uint64_t published_lsn;
	uint64_t sync_fallbacks;   /* background unlinks that found no slot (none expected) */
};

void pm_snap_name(uint64_t lsn, bool tmp, char *out)
{
	snprintf(out, NAME_BYTES, "%020" PRIu64 ".snap%s", lsn, tmp ? ".tmp" : "");
}

void pm_snap_image_name(uint64_t lsn, char *out)
{
	snprintf(out, NAME_BYTES, "%020" PRIu64 ".snap.image", lsn);
}

bool pm_snap_inflight(const struct pm_worker *w)
{
	return w->wal && w->wal->snap && (w->wal->snap->inflight || w->wal->snap->unlink_busy);
}

/* ---------------------------------------------------------------- ending */

static void fail(struct pm_worker *w, int err, const char *what)
{
	struct pm_snap *s = w->wal->snap;
	char name[NAME_BYTES];
	fprintf(stderr, "pomaid: shard %u: snapshot at LSN %" PRIu64 " FAILED (%s: %s): removed;"
			" the log is intact, the next snapshot is tried on the schedule\n",
		w->id, s->wr.start_lsn, what, strerror(err));
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	pm_snap_name(s->wr.start_lsn, true, name);
	pm_snap_unlink(w, s->dirfd, name, false);
	s->stage = S_IDLE;
	s->st.failed++;
}

/* A free background slot, keeping `reserve` free; SNAP_UNLINKS_MAX if none. */
static uint32_t free_slot(const struct pm_snap *s, uint32_t reserve)
{
	if ((uint32_t)__builtin_popcount(s->unlink_busy) + reserve >= SNAP_UNLINKS_MAX)
		return SNAP_UNLINKS_MAX;
	uint32_t i = 0;
	while (s->unlink_busy >> i & 1u)
		i++;
	return i;
}

bool pm_snap_rename_spare(struct pm_worker *w, const char *seg, const char *spare)
{
	struct pm_wal *l = w->wal;
	struct pm_snap *s = l->snap;
	uint32_t i = s && l->uring ? free_slot(s, SNAP_SLOTS_RESERVED) : SNAP_UNLINKS_MAX;
	struct io_uring_sqe *sqe = i < SNAP_UNLINKS_MAX ? io_uring_get_sqe(&l->ring) : NULL;
	if (!sqe)
		return false;
	snprintf(s->unlink_name[i], NAME_BYTES, "%s", seg); /* read by the kernel at submit */
	snprintf(s->unlink_to[i], NAME_BYTES, "%s", spare);
	s->unlink_dirfd[i] = l->dirfd;
	/* never over another file: a spare of that name may be the next segment
	 * being prepared (LSNs start over after a replica's full sync) */
	io_uring_prep_renameat(sqe, l->dirfd, s->unlink_name[i], l->dirfd, s->unlink_to[i],
			       RENAME_NOREPLACE);
	io_uring_sqe_set_data64(sqe, (uint64_t)i << SNAP_SLOT_SHIFT |
					     SNAP_OP_SPARE << OP_BITS | OP_SNAP);
	io_uring_submit(&l->ring);
	s->unlink_busy |= 1u << i;
	s->unlink_spare |= 1u << i;
	s->unlink_seg |= 1u << i;
	return true;
}

bool pm_snap_slot_free(const struct pm_worker *w)
{
	const struct pm_wal *l = w->wal;
	return l->snap && l->uring && free_slot(l->snap, SNAP_SLOTS_RESERVED) < SNAP_UNLINKS_MAX;
}

bool pm_snap_unlink(struct pm_worker *w, int dirfd, const char *name, bool segment)
{
	struct pm_wal *l = w->wal;
	struct pm_snap *s = l ? l->snap : NULL;
	uint32_t i = 0;
	for (uint32_t b = s ? s->unlink_busy : 0; b; b &= b - 1) /* already going */
		if (s->unlink_dirfd[__builtin_ctz(b)] == dirfd &&
		    !strcmp(s->unlink_name[__builtin_ctz(b)], name))
			return true;
	if (s)
		i = free_slot(s, segment ? SNAP_SLOTS_RESERVED : 0);
	struct io_uring_sqe *sqe = s && l->uring && i < SNAP_UNLINKS_MAX ?
					   io_uring_get_sqe(&l->ring) : NULL;
	if (!sqe) { /* without io_uring, as documented; with it, none expected (counted) */
		if (s && l->uring)
			s->sync_fallbacks++;
		bool gone = unlinkat(dirfd, name, 0) == 0;
		if (gone && segment && l)
			l->st.deleted++;
		return gone;
	}
	snprintf(s->unlink_name[i], NAME_BYTES, "%s", name); /* read by the kernel at submit */
	s->unlink_dirfd[i] = dirfd;
	io_uring_prep_unlinkat(sqe, dirfd, s->unlink_name[i], 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)i << SNAP_SLOT_SHIFT |
					     SNAP_OP_UNLINK << OP_BITS | OP_SNAP);
	io_uring_submit(&l->ring);
	s->unlink_busy |= 1u << i;
	s->unlink_spare &= ~(1u << i);
	s->unlink_seg = (s->unlink_seg & ~(1u << i)) | (uint32_t)segment << i;
	return true;
}

/* A background unlink's (or rename's) completion: the slot is free again. */
static void unlinked(struct pm_worker *w, uint64_t user_data, int res)
{
	struct pm_snap *s = w->wal->snap;
	uint32_t i = (uint32_t)(user_data >> SNAP_SLOT_SHIFT) % SNAP_UNLINKS_MAX;
	if (s->unlink_spare >> i & 1u) {
		s->unlink_busy &= ~(1u << i);
		s->unlink_spare &= ~(1u << i);
		char seg[NAME_BYTES], spare[NAME_BYTES];
		memcpy(seg, s->unlink_name[i], NAME_BYTES);
		memcpy(spare, s->unlink_to[i], NAME_BYTES);
		pm_wal_retired(w, seg, spare, res);
		return;
	}
	if (res < 0 && res != -ENOENT)
		fprintf(stderr, "pomaid: shard %u: deleting %s: %s\n", w->id, s->unlink_name[i],
			strerror(-res));
	if (res == 0 && (s->unlink_seg >> i & 1u))
		w->wal->st.deleted++;
	s->unlink_busy &= ~(1u << i);
}

/* Delete files whose names carry an LSN below `below` in dirfd: older
 * snapshots (suffix ".snap"). At start-up and in a replica's full sync
 * only: a running worker knows the one snapshot it published last. */
static void unlink_older(int dirfd, const char *suffix, uint64_t below)
{
	DIR *d = pm_datadir_list(dirfd);
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		char *end;
		uint64_t lsn = strtoull(e->d_name, &end, 10);
		if (end == e->d_name || strcmp(end, suffix) || lsn >= below ||
		    strlen(e->d_name) >= NAME_BYTES)
			continue;
		unlinkat(dirfd, e->d_name, 0);
	}
	if (d)
		closedir(d);
}

/* The snapshot is published: older snapshots and the log segments wholly
 * before its start go (the newest segment, the one being written, stays). */
static void published(struct pm_worker *w)
{
	struct pm_snap *s = w->wal->snap;
	uint64_t lsn = s->wr.start_lsn;
	s->stage = S_IDLE;
	s->st.completed++;
	s->st.last_lsn = lsn;
	s->st.last_ms = (pm_mono_ns() - s->t0_ns) / 1000000u;
	s->st.last_bytes = s->file_off;
	s->st.last_end_wall_ms = pm_wall_ms();
	if (s->have_published && s->published_lsn != lsn) {
		char old[NAME_BYTES];
		pm_snap_name(s->published_lsn, false, old);
		pm_snap_unlink(w, s->dirfd, old, false);
	}
	s->have_published = true;
	s->published_lsn = lsn;
	/* what a replica still reads from the segments stays (repl.h) */
	pm_wal_retire_below(w, PM_MIN(lsn + 1, pm_repl_keep_lsn(w)));
	printf("pomaid: shard %u: snapshot at LSN %" PRIu64 " published: %" PRIu64 " records, %" PRIu64
	       " bytes in %" PRIu64 " ms\n", w->id, lsn, s->wr.records, s->file_off, s->st.last_ms);
	fflush(stdout); /* to a file or pipe too: the line is there now */
}

/* ---------------------------------------------------------------- I/O */

static void handle(struct pm_worker *w, unsigned op, int res);

/* The temporary file's flags: never through a link, never over a file. */
#define TMP_FLAGS (O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC)
#define TMP_MODE 0640

/* Without io_uring: op here and now, its result as a completion's. */
static int run_here(struct pm_snap *s, unsigned op, const char *tmp, const char *name,
		    const uint8_t *p, uint32_t n, off_t off)
{
	ssize_t r;
	switch (op) {
	case SNAP_OP_WRITE:
		r = pwrite(s->fd, p, n, off);
		break;
	case SNAP_OP_CLEAR:
		r = unlinkat(s->dirfd, tmp, 0);
		break;
	case SNAP_OP_OPEN:
		r = openat(s->dirfd, tmp, TMP_FLAGS, TMP_MODE);
		break;
	case SNAP_OP_RENAME:
		r = renameat(s->dirfd, tmp, s->dirfd, name);
		break;
	default:
		r = fsync(op == SNAP_OP_DIRSYNC ? s->dirfd : s->fd);
		break;
	}
	return r < 0 ? -errno : (int)r;
}

/* Submit op for the snapshot (the slice's unwritten rest, an fsync of the
 * file or of the directory, making or publishing the temporary file);
 * without io_uring it runs here and now. */
static void submit(struct pm_worker *w, unsigned op)
{
	struct pm_wal *l = w->wal;
	struct pm_snap *s = l->snap;
	const uint8_t *p = s->buf + s->written;
	uint32_t n = s->len - s->written;
	off_t off = (off_t)((s->stage == S_HEADER ? 0 : s->file_off) + s->written);
	int fd = op == SNAP_OP_DIRSYNC ? s->dirfd : s->fd;
	char tmp[NAME_BYTES], name[NAME_BYTES]; /* the kernel reads them at submission */
	pm_snap_name(s->wr.start_lsn, true, tmp);
	pm_snap_name(s->wr.start_lsn, false, name);
	if (!l->uring) {
		handle(w, op, run_here(s, op, tmp, name, p, n, off));
		return;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
	if (!sqe)
		return; /* the ring is full: the next turn submits it */
	if (op == SNAP_OP_WRITE)
		io_uring_prep_write(sqe, fd, p, n, (uint64_t)off);
	else if (op == SNAP_OP_CLEAR)
		io_uring_prep_unlinkat(sqe, s->dirfd, tmp, 0);
	else if (op == SNAP_OP_OPEN)
		io_uring_prep_openat(sqe, s->dirfd, tmp, TMP_FLAGS, TMP_MODE);
	else if (op == SNAP_OP_RENAME)
		io_uring_prep_renameat(sqe, s->dirfd, tmp, s->dirfd, name, 0);
	else
		io_uring_prep_fsync(sqe, fd, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)op << OP_BITS | OP_SNAP);
	_Static_assert(SNAP_OP_SPARE < (1u << SNAP_OP_BITS) &&
			       OP_BITS + SNAP_OP_BITS <= SNAP_SLOT_SHIFT,
		       "snapshot ops and slots share user_data");
	io_uring_submit(&l->ring);
	s->inflight = true;
}

static const char *snap_op_name(unsigned op)
{
	return op == SNAP_OP_WRITE ? "write" : op == SNAP_OP_OPEN ? "create" :
	       op == SNAP_OP_RENAME ? "rename" : "fsync";
}

static void handle(struct pm_worker *w, unsigned op, int res)
{
	struct pm_snap *s = w->wal->snap;
	if (op == SNAP_OP_CLEAR) { /* gone, or there was none: either way on */
		s->cleared = true;
		return;
	}
	if (res == -EAGAIN || res == -EINTR)
		return; /* the turn submits it again */
	if (res < 0) {
		fail(w, -res, snap_op_name(op));
		return;
	}
	if (op == SNAP_OP_OPEN) {
		s->fd = res;
		s->stage = S_WRITING;
		return;
	}
	if (op == SNAP_OP_RENAME) {
		s->renamed = true;
		submit(w, SNAP_OP_DIRSYNC);
		return;
	}
	if (op == SNAP_OP_WRITE) {
		s->written += (uint32_t)res; /* a short write: the turn writes the rest */
		if (s->written == s->len && s->stage == S_HEADER) {
			s->len = s->written = 0;
			s->stage = S_FSYNC;
			submit(w, SNAP_OP_FSYNC);
		} else if (s->written == s->len) {
			s->file_off += s->len;
			s->st.bytes = s->file_off;
			s->len = s->written = 0;
		}
		return;
	}
	if (op == SNAP_OP_FSYNC) {
		close(s->fd);
		s->fd = -1;
		s->stage = S_PUBLISH;
		s->renamed = false;
		submit(w, SNAP_OP_RENAME);
		return;
	}
	published(w);
}

void pm_snap_on_cqe(struct pm_worker *w, uint64_t user_data, int res)
{
	struct pm_snap *s = w->wal->snap;
	unsigned op = (unsigned)(user_data >> OP_BITS) & ((1u << SNAP_OP_BITS) - 1);
	if (op == SNAP_OP_UNLINK || op == SNAP_OP_SPARE) {
		unlinked(w, user_data, res);
		return;
	}
	s->inflight = false;
	if (s->stage != S_IDLE)
		handle(w, op, res);
}

/* ---------------------------------------------------------------- starting */

static int start(struct pm_worker *w, const char *why)
{
	struct pm_wal *l = w->wal;
	struct pm_snap *s = l->snap;
	char name[NAME_BYTES];
	uint64_t lsn = l->next_lsn - 1; /* every record up to it is applied to the shard */
	s->last_start_ms = w->now_ms;
	s->wal_bytes_at_start = l->st.bytes;
	if (l->state == WAL_FAILED)
		return -EIO;
	pm_snap_name(lsn, true, name);
	if (!l->uring) { /* here and now, as the log's own I/O then runs */
		s->fd = pm_datadir_create(s->dirfd, name, O_WRONLY, TMP_MODE); /* never through a link */
		if (s->fd < 0) {
			int e = -s->fd;
			s->fd = -1;
			fprintf(stderr, "pomaid: shard %u: snapshot: %s/%s: %s\n", w->id, s->dir,
				name, strerror(e));
			s->st.failed++;
			return -e;
		}
	}
	pm_snap_writer_init(&s->wr, &w->shard, w->id, lsn, w->now_ms);
	pm_wal_mark(w); /* where record lsn lies: the header says so at the end */
	s->stage = l->uring ? S_OPEN : S_WRITING; /* the ring makes the file first */
	s->cleared = false;
	s->len = s->written = 0;
	s->file_off = 0;
	s->t0_ns = pm_mono_ns();
	s->st.started++;
	s->st.bytes = s->st.slices = 0;
	s->pacing = false;
	printf("pomaid: shard %u: snapshot at LSN %" PRIu64 " started (%s)\n", w->id, lsn, why);
	fflush(stdout); /* to a file or pipe too: the line is there now */
	return 0;
}

enum pm_status pm_snap_request(struct pm_worker *w)
{
	struct pm_snap *s = w->wal ? w->wal->snap : NULL;
	if (!s)
		return PM_E_PARAM; /* wal = none: nothing to replay over a fuzzy snapshot */
	if (s->stage != S_IDLE)
		return PM_OK;
	if (pm_repl_installing(w))
		return PM_E_BUSY; /* a full sync replaces the shard and its snapshots now */
	int rc = start(w, "requested");
	return rc == 0 ? PM_OK : rc == -ENOSPC || rc == -EDQUOT ? PM_E_DISK_FULL : PM_E_LOG_FAILED;
}

/* Why a scheduled snapshot is due, or NULL. */
static const char *due(const struct pm_worker *w)
{
	const struct pm_config *cfg = &w->d->cfg;
	const struct pm_wal *l = w->wal;
	const struct pm_snap *s = l->snap;
	if (l->next_lsn - 1 == s->st.last_lsn || l->next_lsn == 1)
		return NULL; /* nothing new since the last one */
	if (pm_repl_installing(w))
		return NULL; /* a full sync replaces the shard and its snapshots now */
	if (cfg->snapshot_interval_s &&
	    w->now_ms - s->last_start_ms >= (uint64_t)cfg->snapshot_interval_s * 1000u)
		return "snapshot_interval_s";
	if (cfg->snapshot_wal_bytes && l->st.bytes - s->wal_bytes_at_start >= cfg->snapshot_wal_bytes)
		return "snapshot_wal_bytes";
	return NULL;
}

/* Whether the next slice must wait for the pace (snapshot_write_bytes_per_s):
 * the bytes written so far may lead the pace's line from the snapshot's start
 * by one second of it, and by one slice at least. Read each time: CONFIG SET
 * changes it while a snapshot runs. */
static bool pace_wait(struct pm_worker *w)
{
	struct pm_snap *s = w->wal->snap;
	uint64_t rate = w->d->cfg.snapshot_write_bytes_per_s;
	if (rate == 0)
		return false;
	uint64_t ran_ns = w->now_ns > s->t0_ns ? w->now_ns - s->t0_ns : 0;
	double allowed = (double)rate * (double)ran_ns / 1e9 +
			 (double)PM_MAX(rate, (uint64_t)PM_SNAP_SLICE_BYTES);
	bool wait = (double)s->st.bytes >= allowed;
	s->st.pace_waits += wait && !s->pacing; /* once per wait, not per turn */
	s->pacing = wait;
	return wait;
}

uint32_t pm_snap_turn(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	struct pm_snap *s = l ? l->snap : NULL;
	if (l && l->nretiring)
		pm_wal_retire_step(w); /* what a publish left for free slots */
	if (!s || s->inflight)
		return 0;
	const char *why;
	switch (s->stage) {
	case S_IDLE:
		return (why = due(w)) != NULL && start(w, why) == 0;
	case S_WRITING:
		if (s->len == 0 && pace_wait(w))
			return 0; /* the worker may idle (and sleep) until the pace allows */
		if (s->len == 0) {
			s->len = (uint32_t)pm_snap_fill(&s->wr, &w->shard, w->now_ms, s->buf,
							PM_SNAP_SLICE_BYTES, PM_SNAP_SLICE_ITEMS);
			s->st.slices += s->len != 0;
		}
		if (s->len) {
			submit(w, SNAP_OP_WRITE);
			return 1;
		}
		if (!pm_snap_done(&s->wr))
			return 1; /* a slice of slots with nothing to write: the next turn goes on */
		s->end_lsn = l->next_lsn - 1;
		s->stage = S_WAIT_LOG;
		/* fall through */
	case S_WAIT_LOG:
		if (l->state == WAL_FAILED) {
			fail(w, EIO, "the log failed");
			return 1;
		}
		if (l->durable_lsn < s->end_lsn)
			return 0;
		uint64_t seg, off; /* the log has written the start's record: say where */
		if (pm_wal_mark_pos(w, s->wr.start_lsn, &seg, &off)) {
			pm_snap_header(&s->wr, seg, off, s->buf);
			s->len = PM_SNAP_HEADER_BYTES;
			s->written = 0;
			s->stage = S_HEADER;
			submit(w, SNAP_OP_WRITE);
			return 1;
		}
		s->stage = S_FSYNC;
		/* fall through */
	case S_FSYNC:
		submit(w, SNAP_OP_FSYNC);
		return 1;
	case S_HEADER:
		submit(w, SNAP_OP_WRITE); /* the rest of a short write */
		return 1;
	case S_PUBLISH:
		submit(w, s->renamed ? SNAP_OP_DIRSYNC : SNAP_OP_RENAME);
		return 1;
	case S_OPEN:
		submit(w, s->cleared ? SNAP_OP_OPEN : SNAP_OP_CLEAR);
		return 1;
	}
	return 0;
}

/* ---------------------------------------------------------------- recovery */

static int snap_open(struct pm_worker *w, char *err, size_t errlen)
{
	struct pm_snap *s = calloc(1, sizeof(*s));
	if (!s)
		return pm_errf(err, errlen, "out of memory");
	w->wal->snap = s;
	s->fd = s->dirfd = -1;
	s->last_start_ms = pm_wall_ms();
	const char *data = w->d->cfg.data_dir;
	char shown[PATH_BYTES], sub[NAME_BYTES];
	snprintf(s->dir, sizeof(s->dir), "%s/snap/shard-%u", data, w->id);
	snprintf(shown, sizeof(shown), "%s/snap", data);
	snprintf(sub, sizeof(sub), "shard-%u", w->id);
	if (!(s->buf = malloc(PM_SNAP_SLICE_BYTES)))
		return pm_errf(err, errlen, "out of memory for the snapshot buffer");
	int snap = pm_datadir_sub(w->d->data_fd, "snap", shown, err, errlen);
	if (snap < 0)
		return -1;
	s->dirfd = pm_datadir_sub(snap, sub, s->dir, err, errlen);
	close(snap);
	return s->dirfd < 0 ? -1 : 0;
}

/* The newest published snapshot's LSN (0: none); interrupted ones go. */
static int newest(struct pm_snap *s, uint64_t *lsn)
{
	DIR *d = pm_datadir_list(s->dirfd);
	if (!d)
		return -1;
	*lsn = 0;
	bool found = false;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		char *end;
		uint64_t x = strtoull(e->d_name, &end, 10);
		if (end == e->d_name)
			continue;
		if (!strcmp(end, ".snap.tmp") || !strcmp(end, ".snap.image"))
			unlinkat(s->dirfd, e->d_name, 0); /* a link too: removed, not followed */
		else if (!strcmp(end, ".snap") && (!found || x > *lsn))
			*lsn = x, found = true;
	}
	closedir(d);
	return found;
}

/* Load the image [buf, buf + bytes) (named path in messages) into w's
 * shard: the shard's own CPU work, from memory. */
static int load_mem(struct pm_worker *w, const char *path, const uint8_t *buf, size_t bytes,
		    struct pm_snap_info *info, char *err, size_t errlen)
{
	char why[256];
	struct pm_snap_loader *loader = malloc(sizeof(*loader));
	enum pm_status st = loader ? pm_snap_load(loader, &w->shard, buf, bytes, pm_wall_ms(), info,
						  why, sizeof(why))
				   : PM_E_NOMEM;
	if (!loader)
		snprintf(why, sizeof(why), "out of memory for the loader");
	free(loader);
	w->wal->snap->st.last_bytes = (uint64_t)bytes;
	if (st == PM_OK && info->shard != w->id)
		return pm_errf(err, errlen, "%s: a snapshot of shard %u in shard %u's directory", path,
			       info->shard, w->id);
	if (st != PM_OK)
		return pm_errf(err, errlen, "%s: %s — refusing to start (moving it away starts from the"
			       " log alone, complete only if the log still begins at LSN 1)", path, why);
	return 0;
}

static int load(struct pm_worker *w, const char *name, struct pm_snap_info *info, char *err,
		size_t errlen)
{
	char path[PATH_BYTES];
	snprintf(path, sizeof(path), "%s/%s", w->wal->snap->dir, name);
	int fd = pm_datadir_openat(w->wal->snap->dirfd, name, O_RDONLY, 0);
	struct stat sb;
	if (fd == -ELOOP)
		return pm_errf(err, errlen, "%s: a symbolic link: refusing to start (pomaid follows"
			       " no link inside its data_dir)", path);
	if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size == 0) {
		if (fd >= 0)
			close(fd);
		return pm_errf(err, errlen, "%s: unreadable or empty", path);
	}
	uint8_t *buf = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (buf == MAP_FAILED)
		return pm_errf(err, errlen, "%s: %s", path, strerror(errno));
	madvise(buf, (size_t)sb.st_size, MADV_SEQUENTIAL);
	int rc = load_mem(w, path, buf, (size_t)sb.st_size, info, err, errlen);
	munmap(buf, (size_t)sb.st_size);
	return rc;
}

int pm_snap_recover(struct pm_worker *w, struct pm_snap_info *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (snap_open(w, err, errlen) != 0)
		return -1;
	struct pm_snap *s = w->wal->snap;
	uint64_t x;
	int found = newest(s, &x);
	if (found < 0)
		return pm_errf(err, errlen, "%s: %s", s->dir, strerror(errno));
	if (!found)
		return 0;
	char name[NAME_BYTES];
	pm_snap_name(x, false, name);
	struct pm_snap_info info;
	uint64_t t0 = pm_mono_ns();
	if (load(w, name, &info, err, errlen) != 0)
		return -1;
	s->st.load_ms = (pm_mono_ns() - t0) / 1000000u;
	s->st.loaded_lsn = s->st.last_lsn = info.start_lsn;
	s->st.loaded_items = info.items;
	s->st.loaded_nodes = info.nodes;
	printf("pomaid: shard %u: snapshot %s/%s loaded: %" PRIu64 " items, %" PRIu64 " HNSW nodes"
	       " (restored, %" PRIu64 " links dropped) in %" PRIu64 " ms, %.0f MB/s\n", w->id, s->dir, name,
	       info.items, info.nodes, info.links_dropped, s->st.load_ms,
	       (double)s->st.last_bytes / 1e6 / ((double)PM_MAX(s->st.load_ms, 1u) / 1e3));
	fflush(stdout); /* to a file or pipe too: the line is there now */
	unlink_older(s->dirfd, ".snap", x);
	s->have_published = true; /* the next publish deletes it */
	s->published_lsn = x;
	*out = info;
	return 0;
}

/* ---------------------------------------------------------------- a replica's full sync */

int pm_snap_dirfd(const struct pm_worker *w)
{
	return w->wal && w->wal->snap ? w->wal->snap->dirfd : -1;
}

bool pm_snap_busy(const struct pm_worker *w)
{
	const struct pm_snap *s = w->wal ? w->wal->snap : NULL;
	return s && (s->stage != S_IDLE || s->inflight);
}

unsigned pm_snap_pct(const struct pm_worker *w)
{
	const struct pm_snap *s = w->wal ? w->wal->snap : NULL;
	return s && s->stage != S_IDLE ? pm_snap_progress(&s->wr) : 0;
}

const char *pm_snap_dir(const struct pm_worker *w)
{
	return w->wal->snap->dir;
}

void pm_snap_clear_dir(int dirfd)
{
	unlink_older(dirfd, ".snap", UINT64_MAX);
}

int pm_snap_map_check(int dirfd, const char *dir, const char *name, uint32_t shard, uint64_t lsn,
		      struct pm_snap_map *m, char *err, size_t errlen)
{
	char why[256];
	*m = (struct pm_snap_map){ 0 };
	int fd = pm_datadir_openat(dirfd, name, O_RDONLY, 0);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size == 0) {
		if (fd >= 0)
			close(fd);
		return pm_errf(err, errlen, "%s/%s: unreadable or empty", dir, name);
	}
	/* populated here: the worker that loads it later takes no page fault
	 * that reads the disk */
	uint8_t *buf = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (buf == MAP_FAILED)
		return pm_errf(err, errlen, "%s/%s: %s", dir, name, strerror(errno));
	struct pm_snap_info info;
	enum pm_status st = pm_snap_check(buf, (size_t)sb.st_size, &info, why, sizeof(why));
	if (st == PM_OK && (info.shard != shard || info.start_lsn != lsn)) {
		st = PM_E_PARAM;
		snprintf(why, sizeof(why), "a snapshot of shard %u at LSN %" PRIu64 ", not of shard %u"
			 " at %" PRIu64, info.shard, info.start_lsn, shard, lsn);
	}
	if (st != PM_OK) {
		munmap(buf, (size_t)sb.st_size);
		return pm_errf(err, errlen, "%s/%s: %s", dir, name, why);
	}
	*m = (struct pm_snap_map){ .buf = buf, .bytes = (size_t)sb.st_size };
	return 0;
}

int pm_snap_install_mapped(struct pm_worker *w, uint64_t lsn, const struct pm_snap_map *m,
			   char *err, size_t errlen)
{
	struct pm_snap *s = w->wal->snap;
	char name[NAME_BYTES], path[PATH_BYTES];
	pm_snap_name(lsn, false, name);
	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	s->have_published = true; /* published by the caller: renamed, the directory synced */
	s->published_lsn = lsn;
	if (pm_worker_shard_reset(w, err, errlen) != 0)
		return -1;
	struct pm_snap_info info;
	uint64_t t0 = pm_mono_ns();
	if (load_mem(w, path, m->buf, m->bytes, &info, err, errlen) != 0) {
		char e2[64];
		(void)pm_worker_shard_reset(w, e2, sizeof(e2)); /* partly loaded: empty again */
		return -1;
	}
	s->st.load_ms = (pm_mono_ns() - t0) / 1000000u;
	s->st.loaded_lsn = s->st.last_lsn = info.start_lsn;
	s->st.loaded_items = info.items;
	s->st.loaded_nodes = info.nodes;
	printf("pomaid: shard %u: full sync: snapshot at LSN %" PRIu64 " loaded: %" PRIu64
	       " items, %" PRIu64 " HNSW nodes in %" PRIu64 " ms\n", w->id, lsn, info.items, info.nodes,
	       s->st.load_ms);
	fflush(stdout);
	return 0;
}

/* ---------------------------------------------------------------- close, INFO */

void pm_snap_close(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	struct pm_snap *s = l ? l->snap : NULL;
	if (!s)
		return;
	struct io_uring_cqe *cqe;
	while ((s->inflight || s->unlink_busy) && io_uring_wait_cqe(&l->ring, &cqe) == 0) {
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&l->ring, cqe);
		if ((ud & OP_MASK) != OP_SNAP)
			continue;
		unsigned op = (unsigned)(ud >> OP_BITS & ((1u << SNAP_OP_BITS) - 1));
		if (op == SNAP_OP_UNLINK || op == SNAP_OP_SPARE)
			unlinked(w, ud, res);
		else if (op == SNAP_OP_OPEN && res >= 0 && s->fd < 0)
			s->fd = res; /* closed below */
		else
			s->inflight = false; /* no further I/O: the snapshot is abandoned below */
	}
	if (s->stage != S_IDLE && !(s->stage == S_PUBLISH && s->renamed)) { /* unfinished: it goes */
		char name[NAME_BYTES];
		pm_snap_name(s->wr.start_lsn, true, name);
		unlinkat(s->dirfd, name, 0);
		printf("pomaid: shard %u: snapshot at LSN %" PRIu64 " abandoned at shutdown\n", w->id,
		       s->wr.start_lsn);
		fflush(stdout); /* to a file or pipe too: the line is there now */
	}
	if (s->fd >= 0)
		close(s->fd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->buf);
	free(s);
	l->snap = NULL;
}

uint32_t pm_snap_info(const struct pm_worker *w, char *out, uint32_t cap)
{
	const struct pm_snap *s = w->wal ? w->wal->snap : NULL;
	if (!s)
		return 0;
	static const char *const stages[] = { "idle", "writing", "waiting_for_log", "fsync",
					      "publishing", "opening", "header" };
	const struct pm_snap_stats *t = &s->st;
	int n = snprintf(out, cap,
			 "# Snapshot\r\nsnapshot_in_progress:%d\r\nsnapshot_stage:%s\r\n"
			 "snapshot_progress_pct:%u\r\n"
			 "snapshot_start_lsn:%" PRIu64 "\r\nsnapshot_records:%" PRIu64
			 "\r\nsnapshot_bytes:%" PRIu64 "\r\nsnapshot_slices:%" PRIu64
			 "\r\nsnapshot_pace_waits:%" PRIu64
			 "\r\nsnapshots_started:%" PRIu64 "\r\nsnapshots_completed:%" PRIu64
			 "\r\nsnapshots_failed:%" PRIu64 "\r\nsnapshot_last_lsn:%" PRIu64
			 "\r\nsnapshot_last_ms:%" PRIu64 "\r\nsnapshot_last_bytes:%" PRIu64
			 "\r\nsnapshot_last_unix_ms:%" PRIu64
			 "\r\nrecovery_snapshot_lsn:%" PRIu64 "\r\nrecovery_snapshot_items:%" PRIu64
			 "\r\nrecovery_snapshot_nodes:%" PRIu64 "\r\nrecovery_snapshot_ms:%" PRIu64 "\r\n",
			 s->stage != S_IDLE, stages[s->stage], s->stage ? pm_snap_progress(&s->wr) : 0,
			 s->stage ? s->wr.start_lsn : 0,
			 s->wr.records, t->bytes, t->slices, t->pace_waits, t->started, t->completed, t->failed,
			 t->last_lsn, t->last_ms, t->last_bytes, t->last_end_wall_ms, t->loaded_lsn, t->loaded_items, t->loaded_nodes, t->load_ms);
	return n < 0 || (uint32_t)n >= cap ? 0 : (uint32_t)n;
}

void pm_snap_counters(const struct pm_worker *w, struct pm_stats_shard *s)
{
	const struct pm_snap *p = w->wal ? w->wal->snap : NULL;
	if (!p)
		return;
	s->snapshot_running = p->stage != S_IDLE;
	s->snapshot_progress_pct = p->stage != S_IDLE ? pm_snap_progress(&p->wr) : 0;
	s->snapshots_completed = p->st.completed;
	s->snapshots_failed = p->st.failed;
	s->snapshot_last_lsn = p->st.last_lsn;
	s->snapshot_last_unix_ms = p->st.last_end_wall_ms;
}
