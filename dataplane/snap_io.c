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
#define SNAP_OP_UNLINK 4u
#define SNAP_OP_BITS 4u /* user_data: slot << 8 | op << OP_BITS | OP_SNAP */
#define SNAP_SLOT_SHIFT 8u
/* Deletions in flight at once per shard. Deleting a GB file (an old snapshot,
 * a segment; with online discard) keeps the filesystem busy for 0.3 s and
 * more, so it runs in io_uring's workers, not on the worker thread; more than
 * this many pending (never at one snapshot per publish) fall back to unlink(). */
#define SNAP_UNLINKS_MAX 8u
enum stage { S_IDLE = 0, S_WRITING, S_WAIT_LOG, S_FSYNC, S_PUBLISH };

struct pm_snap {
	char dir[PATH_BYTES - 48]; /* data_dir/snap/shard-<i>, for messages */
	int dirfd;                 /* ... its descriptor: every file is reached through it */
	enum stage stage;
	int fd;                    /* the temporary file being written */
	uint8_t *buf;              /* PM_SNAP_SLICE_BYTES */
	uint32_t len, written;     /* the slice in the buffer, and how much of it is written */
	uint64_t file_off;         /* where the slice goes */
	bool inflight;             /* one of our SQEs is in the ring */
	uint64_t end_lsn;          /* the last record applied before the last slice */
	uint64_t t0_ns;
	uint64_t last_start_ms, wal_bytes_at_start; /* the schedule */
	struct pm_snap_writer wr;
	struct pm_snap_stats st;
	uint32_t unlink_busy;      /* bit i: unlink_name[i] is in the ring */
	uint32_t unlink_seg;       /* bit i: it is a log segment (counted as deleted) */
	int unlink_dirfd[SNAP_UNLINKS_MAX]; /* ... in this directory (the log's or ours) */
	char unlink_name[SNAP_UNLINKS_MAX][NAME_BYTES];
};

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void pm_snap_name(uint64_t lsn, bool tmp, char *out)
{
	snprintf(out, NAME_BYTES, "%020" PRIu64 ".snap%s", lsn, tmp ? ".tmp" : "");
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
	close(s->fd);
	s->fd = -1;
	pm_snap_name(s->wr.start_lsn, true, name);
	unlinkat(s->dirfd, name, 0);
	s->stage = S_IDLE;
	s->st.failed++;
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
	while (s && i < SNAP_UNLINKS_MAX && (s->unlink_busy >> i & 1u))
		i++;
	struct io_uring_sqe *sqe = s && l->uring && i < SNAP_UNLINKS_MAX ?
					   io_uring_get_sqe(&l->ring) : NULL;
	if (!sqe) {
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
	s->unlink_seg = (s->unlink_seg & ~(1u << i)) | (uint32_t)segment << i;
	return true;
}

/* An unlink's completion: the slot is free again. */
static void unlinked(struct pm_worker *w, uint64_t user_data, int res)
{
	struct pm_snap *s = w->wal->snap;
	uint32_t i = (uint32_t)(user_data >> SNAP_SLOT_SHIFT) % SNAP_UNLINKS_MAX;
	if (res < 0 && res != -ENOENT)
		fprintf(stderr, "pomaid: shard %u: deleting %s: %s\n", w->id, s->unlink_name[i],
			strerror(-res));
	if (res == 0 && (s->unlink_seg >> i & 1u))
		w->wal->st.deleted++;
	s->unlink_busy &= ~(1u << i);
}

/* Delete files whose names carry an LSN below `below` in dirfd: older
 * snapshots (suffix ".snap"); in the background when w is given. */
static void unlink_older(struct pm_worker *w, int dirfd, const char *suffix, uint64_t below)
{
	DIR *d = pm_datadir_list(dirfd);
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		char *end;
		uint64_t lsn = strtoull(e->d_name, &end, 10);
		if (end == e->d_name || strcmp(end, suffix) || lsn >= below ||
		    strlen(e->d_name) >= NAME_BYTES)
			continue;
		if (w)
			pm_snap_unlink(w, dirfd, e->d_name, false);
		else
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
	uint64_t *firsts = w->wal->segs;
	uint64_t lsn = s->wr.start_lsn;
	s->stage = S_IDLE;
	s->st.completed++;
	s->st.last_lsn = lsn;
	s->st.last_ms = (mono_ns() - s->t0_ns) / 1000000u;
	s->st.last_bytes = s->file_off;
	s->st.last_end_wall_ms = pm_wall_ms();
	unlink_older(w, s->dirfd, ".snap", lsn);
	/* what a replica still reads from the segments stays (repl.h) */
	uint64_t keep = PM_MIN(lsn + 1, pm_repl_keep_lsn(w));
	int n = pm_wal_list_segments(w->wal->dirfd, firsts, PM_WAL_SEGMENTS_MAX);
	for (int i = 0; i + 1 < n && firsts[i + 1] <= keep; i++)
		pm_wal_retire(w, firsts[i]);
	printf("pomaid: shard %u: snapshot at LSN %" PRIu64 " published: %" PRIu64 " records, %" PRIu64
	       " bytes in %" PRIu64 " ms\n", w->id, lsn, s->wr.records, s->file_off, s->st.last_ms);
	fflush(stdout); /* to a file or pipe too: the line is there now */
}

/* ---------------------------------------------------------------- I/O */

static void handle(struct pm_worker *w, unsigned op, int res);

/* Submit op for the snapshot (the slice's unwritten rest, an fsync of the
 * file or of the directory); without io_uring it runs here and now. */
static void submit(struct pm_worker *w, unsigned op)
{
	struct pm_wal *l = w->wal;
	struct pm_snap *s = l->snap;
	const uint8_t *p = s->buf + s->written;
	uint32_t n = s->len - s->written;
	off_t off = (off_t)(s->file_off + s->written);
	int fd = op == SNAP_OP_DIRSYNC ? s->dirfd : s->fd;
	if (!l->uring) {
		ssize_t r = op == SNAP_OP_WRITE ? pwrite(fd, p, n, off) : fsync(fd);
		handle(w, op, r < 0 ? -errno : (int)r);
		return;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
	if (!sqe)
		return; /* the ring is full: the next turn submits it */
	if (op == SNAP_OP_WRITE)
		io_uring_prep_write(sqe, fd, p, n, (uint64_t)off);
	else
		io_uring_prep_fsync(sqe, fd, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)op << OP_BITS | OP_SNAP);
	_Static_assert(SNAP_OP_UNLINK < (1u << SNAP_OP_BITS) &&
			       OP_BITS + SNAP_OP_BITS <= SNAP_SLOT_SHIFT,
		       "snapshot ops and slots share user_data");
	io_uring_submit(&l->ring);
	s->inflight = true;
}

static void handle(struct pm_worker *w, unsigned op, int res)
{
	struct pm_snap *s = w->wal->snap;
	if (res == -EAGAIN || res == -EINTR)
		return; /* the turn submits it again */
	if (res < 0) {
		fail(w, -res, op == SNAP_OP_WRITE ? "write" : "fsync");
		return;
	}
	if (op == SNAP_OP_WRITE) {
		s->written += (uint32_t)res; /* a short write: the turn writes the rest */
		if (s->written == s->len) {
			s->file_off += s->len;
			s->st.bytes = s->file_off;
			s->len = s->written = 0;
		}
		return;
	}
	if (op == SNAP_OP_FSYNC) {
		char tmp[NAME_BYTES], name[NAME_BYTES];
		pm_snap_name(s->wr.start_lsn, true, tmp);
		pm_snap_name(s->wr.start_lsn, false, name);
		if (renameat(s->dirfd, tmp, s->dirfd, name) != 0) {
			fail(w, errno, "rename");
			return;
		}
		close(s->fd);
		s->fd = -1;
		s->stage = S_PUBLISH;
		submit(w, SNAP_OP_DIRSYNC);
		return;
	}
	published(w);
}

void pm_snap_on_cqe(struct pm_worker *w, uint64_t user_data, int res)
{
	struct pm_snap *s = w->wal->snap;
	unsigned op = (unsigned)(user_data >> OP_BITS) & ((1u << SNAP_OP_BITS) - 1);
	if (op == SNAP_OP_UNLINK) {
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
	s->fd = pm_datadir_create(s->dirfd, name, O_WRONLY, 0640); /* never through a link */
	if (s->fd < 0) {
		int e = -s->fd;
		s->fd = -1;
		fprintf(stderr, "pomaid: shard %u: snapshot: %s/%s: %s\n", w->id, s->dir, name,
			strerror(e));
		s->st.failed++;
		return -e;
	}
	pm_snap_writer_init(&s->wr, &w->shard, w->id, lsn, w->now_ms);
	s->stage = S_WRITING;
	s->len = s->written = 0;
	s->file_off = 0;
	s->t0_ns = mono_ns();
	s->st.started++;
	s->st.bytes = s->st.slices = 0;
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
	if (cfg->snapshot_interval_s &&
	    w->now_ms - s->last_start_ms >= (uint64_t)cfg->snapshot_interval_s * 1000u)
		return "snapshot_interval_s";
	if (cfg->snapshot_wal_bytes && l->st.bytes - s->wal_bytes_at_start >= cfg->snapshot_wal_bytes)
		return "snapshot_wal_bytes";
	return NULL;
}

uint32_t pm_snap_turn(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	struct pm_snap *s = l ? l->snap : NULL;
	if (!s || s->inflight)
		return 0;
	const char *why;
	switch (s->stage) {
	case S_IDLE:
		return (why = due(w)) != NULL && start(w, why) == 0;
	case S_WRITING:
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
		s->stage = S_FSYNC;
		/* fall through */
	case S_FSYNC:
		submit(w, SNAP_OP_FSYNC);
		return 1;
	case S_PUBLISH:
		submit(w, SNAP_OP_DIRSYNC);
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
		if (!strcmp(end, ".snap.tmp"))
			unlinkat(s->dirfd, e->d_name, 0); /* a link too: removed, not followed */
		else if (!strcmp(end, ".snap") && (!found || x > *lsn))
			*lsn = x, found = true;
	}
	closedir(d);
	return found;
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
	char why[256];
	struct pm_snap_loader *loader = malloc(sizeof(*loader));
	enum pm_status st = loader ? pm_snap_load(loader, &w->shard, buf, (size_t)sb.st_size,
						  pm_wall_ms(), info, why, sizeof(why))
				   : PM_E_NOMEM;
	if (!loader)
		snprintf(why, sizeof(why), "out of memory for the loader");
	free(loader);
	munmap(buf, (size_t)sb.st_size);
	w->wal->snap->st.last_bytes = (uint64_t)sb.st_size;
	if (st == PM_OK && info->shard != w->id)
		return pm_errf(err, errlen, "%s: a snapshot of shard %u in shard %u's directory", path,
			       info->shard, w->id);
	if (st != PM_OK)
		return pm_errf(err, errlen, "%s: %s — refusing to start (moving it away starts from the"
			       " log alone, complete only if the log still begins at LSN 1)", path, why);
	return 0;
}

int pm_snap_recover(struct pm_worker *w, uint64_t *lsn, char *err, size_t errlen)
{
	*lsn = 0;
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
	uint64_t t0 = mono_ns();
	if (load(w, name, &info, err, errlen) != 0)
		return -1;
	s->st.load_ms = (mono_ns() - t0) / 1000000u;
	s->st.loaded_lsn = s->st.last_lsn = info.start_lsn;
	s->st.loaded_items = info.items;
	s->st.loaded_nodes = info.nodes;
	printf("pomaid: shard %u: snapshot %s/%s loaded: %" PRIu64 " items, %" PRIu64 " HNSW nodes"
	       " (restored, %" PRIu64 " links dropped) in %" PRIu64 " ms, %.0f MB/s\n", w->id, s->dir, name,
	       info.items, info.nodes, info.links_dropped, s->st.load_ms,
	       (double)s->st.last_bytes / 1e6 / ((double)PM_MAX(s->st.load_ms, 1u) / 1e3));
	fflush(stdout); /* to a file or pipe too: the line is there now */
	unlink_older(NULL, s->dirfd, ".snap", x);
	*lsn = info.start_lsn;
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

int pm_snap_check_tmp(struct pm_worker *w, uint64_t lsn, char *err, size_t errlen)
{
	struct pm_snap *s = w->wal->snap;
	char tmp[NAME_BYTES], why[256];
	pm_snap_name(lsn, true, tmp);
	int fd = pm_datadir_openat(s->dirfd, tmp, O_RDONLY, 0);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size == 0) {
		if (fd >= 0)
			close(fd);
		return pm_errf(err, errlen, "%s/%s: unreadable or empty", s->dir, tmp);
	}
	uint8_t *buf = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (buf == MAP_FAILED)
		return pm_errf(err, errlen, "%s/%s: %s", s->dir, tmp, strerror(errno));
	struct pm_snap_info info;
	enum pm_status st = pm_snap_check(buf, (size_t)sb.st_size, &info, why, sizeof(why));
	munmap(buf, (size_t)sb.st_size);
	if (st != PM_OK)
		return pm_errf(err, errlen, "%s/%s: %s", s->dir, tmp, why);
	if (info.shard != w->id || info.start_lsn != lsn)
		return pm_errf(err, errlen, "%s/%s: a snapshot of shard %u at LSN %" PRIu64
			       ", not of shard %u at %" PRIu64, s->dir, tmp, info.shard, info.start_lsn,
			       w->id, lsn);
	return 0;
}

int pm_snap_install(struct pm_worker *w, uint64_t lsn, char *err, size_t errlen)
{
	struct pm_snap *s = w->wal->snap;
	char tmp[NAME_BYTES], name[NAME_BYTES];
	pm_snap_name(lsn, true, tmp);
	pm_snap_name(lsn, false, name);
	/* every snapshot here is of the history given up, newer ones too */
	unlink_older(NULL, s->dirfd, ".snap", UINT64_MAX);
	if (renameat(s->dirfd, tmp, s->dirfd, name) != 0 || fsync(s->dirfd) != 0)
		return pm_errf(err, errlen, "%s/%s: %s", s->dir, name, strerror(errno));
	if (pm_worker_shard_reset(w, err, errlen) != 0)
		return -1;
	struct pm_snap_info info;
	uint64_t t0 = mono_ns();
	if (load(w, name, &info, err, errlen) != 0) {
		char e2[64];
		(void)pm_worker_shard_reset(w, e2, sizeof(e2)); /* partly loaded: empty again */
		return -1;
	}
	s->st.load_ms = (mono_ns() - t0) / 1000000u;
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
		if ((ud >> OP_BITS & ((1u << SNAP_OP_BITS) - 1)) == SNAP_OP_UNLINK)
			unlinked(w, ud, res);
		else
			s->inflight = false; /* no further I/O: the snapshot is abandoned below */
	}
	if (s->stage != S_IDLE && s->stage != S_PUBLISH) { /* unfinished: it goes */
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
					      "publishing" };
	const struct pm_snap_stats *t = &s->st;
	int n = snprintf(out, cap,
			 "# Snapshot\r\nsnapshot_in_progress:%d\r\nsnapshot_stage:%s\r\n"
			 "snapshot_progress_pct:%u\r\n"
			 "snapshot_start_lsn:%" PRIu64 "\r\nsnapshot_records:%" PRIu64
			 "\r\nsnapshot_bytes:%" PRIu64 "\r\nsnapshot_slices:%" PRIu64
			 "\r\nsnapshots_started:%" PRIu64 "\r\nsnapshots_completed:%" PRIu64
			 "\r\nsnapshots_failed:%" PRIu64 "\r\nsnapshot_last_lsn:%" PRIu64
			 "\r\nsnapshot_last_ms:%" PRIu64 "\r\nsnapshot_last_bytes:%" PRIu64
			 "\r\nsnapshot_last_unix_ms:%" PRIu64
			 "\r\nrecovery_snapshot_lsn:%" PRIu64 "\r\nrecovery_snapshot_items:%" PRIu64
			 "\r\nrecovery_snapshot_nodes:%" PRIu64 "\r\nrecovery_snapshot_ms:%" PRIu64 "\r\n",
			 s->stage != S_IDLE, stages[s->stage], s->stage ? pm_snap_progress(&s->wr) : 0,
			 s->stage ? s->wr.start_lsn : 0,
			 s->wr.records, t->bytes, t->slices, t->started, t->completed, t->failed,
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
