/* SPDX-License-Identifier: MIT
 *
 * repl_disk.c — a replication shard's file work, off its worker thread
 * (issue 20; repl_disk.h). Which step runs where, and why:
 *
 * Through the worker's own io_uring (the log's ring; one request per step,
 * as snap_io.c's snapshots; completions come back by user_data: OP_REPL,
 * PM_RD_USER_DATA and the op), because each is one request io_uring does:
 *   - a full sync's image file <LSN>.snap.image: whatever held its name
 *     unlinked (UNLINKAT), then made with O_EXCL (OPENAT), never through a
 *     link (datadir.h's rule);
 *   - each SNAP_DATA frame's bytes (WRITE), copied out of the link's buffer
 *     (which moves as frames are taken); one write in flight, the next frame
 *     waits for it; a short write goes on with the rest;
 *   - at SNAP_END the image's fdatasync (FSYNC); a bad image's removal;
 *   - the install: HISTORY removed (UNLINKAT), the image renamed to
 *     <LSN>.snap (RENAMEAT), the snapshot directory fsynced (FSYNC);
 *   - HISTORY replaced (a partial resync under a new id, an install,
 *     PROMOTE, FOLLOW, a fence): HISTORY.tmp unlinked, made, written,
 *     fdatasynced, renamed over HISTORY, the directory fsynced.
 * On the node's helper thread (pomai-repl-io: one per node, a job slot per
 * shard; the worker posts a job and polls an atomic state on later turns,
 * taking no lock; the helper wakes a sleeping worker), because io_uring
 * cannot do it in a request:
 *   - the image's check: opened, mapped and populated, checked whole (every
 *     section's CRC): io_uring has no mmap and the check needs every byte;
 *     the mapping is kept for the load, so the file is opened once;
 *   - every older snapshot deleted before the rename: a listing of the
 *     directory (io_uring 2.3 has no getdents), since snapshots of the
 *     history given up may be newer than the image and must not win at the
 *     next start.
 * On the worker: the shard's load from the helper's mapping (its own CPU
 * work, from memory: pm_snap_install_mapped), close(), and the log's restart
 * (pm_wal_restart_at: its files go through the log's background slots).
 * HISTORY is read at start-up only (repl_io.c: before the workers run).
 *
 * Without io_uring (wal_io_uring = no) the same steps run here and now on
 * the worker, the helper's jobs too, as the log's writes then do.
 *
 * Crash safety is the synchronous code's: the image is synced and checked
 * before anything is given up for it; HISTORY's removal has completed before
 * the log restarts (a crash in between starts a full sync again); HISTORY is
 * replaced atomically; a PROMOTE is answered once its HISTORY is durable
 * (repl_io.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"
#include "msg.h"
#include "repl.h"
#include "repl_disk.h"
#include "snap_io.h"
#include "wal_impl.h"
#include "worker.h"

/* A request's op sits above the completion's OP_* bits. */
#define RD_OP_SHIFT OP_BITS
#define RD_OP_MASK 0x3fu
/* Files made here: never through a link, never over a file; their mode. */
#define RD_TMP_FLAGS (O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC)
#define RD_FILE_MODE 0640
#define RD_HISTORY_TMP PM_REPL_HISTORY_NAME ".tmp"
/* Bytes of a check's message (the helper's), and of a failure's message
 * kept for the link's error (a check's, with what it means). */
#define RD_CHECK_WHY_BYTES 256u
#define RD_WHY_BYTES (RD_CHECK_WHY_BYTES + 128u)

enum rd_op {
	RD_NONE = 0,
	IMG_CLEAR, IMG_OPEN, IMG_WRITE, IMG_SYNC, IMG_DROP,         /* the image */
	INS_UNLINK_HISTORY, INS_RENAME, INS_DIRSYNC,                        /* its install */
	HS_CLEAR, HS_OPEN, HS_WRITE, HS_SYNC, HS_RENAME, HS_DIRSYNC, /* HISTORY */
	RD_OPS
};
_Static_assert(RD_OPS <= RD_OP_MASK + 1u &&
		       ((uint64_t)RD_OP_MASK << RD_OP_SHIFT) < PM_RD_USER_DATA,
	       "the op and PM_RD_USER_DATA share user_data");
static const char *const op_names[RD_OPS] = {
	"", "clearing", "creating", "writing", "syncing", "removing", "removing", "renaming",
	"syncing", "clearing", "creating", "writing", "syncing", "renaming", "syncing"
};

/* The image: IDLE, then OPENING (clear, create) until OPENED; WRITING once
 * SNAP_BEGIN is taken; SYNCING and CHECKING at SNAP_END, then CHECKED, and
 * READY once SNAP_END is taken (the install takes it from there); BAD (its
 * removal under way) or FAILED (a request failed) until the link hears why. */
enum img_stage { IMG_IDLE = 0, IMG_OPENING, IMG_OPENED, IMG_WRITING, IMG_SYNCING, IMG_CHECKING,
		 IMG_CHECKED, IMG_READY, IMG_BAD, IMG_FAILED };
/* The install: HISTORY's removal, the log's restart, the older snapshots'
 * deletion (a job), the publish (rename, directory fsync), the load. */
enum ins_stage { INS_IDLE = 0, INS_UNHIST, INS_RESTART, INS_CLEAR, INS_PUBLISH, INS_LOAD,
		 INS_FAILED };

/* ---------------------------------------------------------------- the helper's jobs */

enum job_kind { JOB_CHECK = 1, JOB_CLEAR };
enum job_state { JOB_FREE = 0, JOB_QUEUED, JOB_DONE };

/* One shard's job: the worker writes the inputs, then QUEUED (release); the
 * helper runs it, writes the outputs, then DONE (release); the worker takes
 * them (acquire) and sets FREE. */
struct rd_job {
	_Atomic uint32_t state;
	enum job_kind kind;
	int dirfd;                 /* the snapshot directory */
	const char *dir;           /* its path (messages): snap_io.c's, alive until the worker's end */
	uint32_t shard;
	uint64_t lsn;
	char name[NAME_BYTES];     /* JOB_CHECK: the image */
	int rc;
	struct pm_snap_map map;    /* JOB_CHECK: the image, mapped, when rc is 0 */
	char why[RD_CHECK_WHY_BYTES];
};

struct pm_repl_helper {
	struct pm_daemon *d;
	pthread_t thread;
	int efd;                   /* a posted job's wake-up */
	atomic_bool quit;
	uint32_t n;
	struct rd_job jobs[];      /* one per shard */
};

/* ---------------------------------------------------------------- a shard's state */

struct chan {
	enum rd_op next;           /* to submit on the next turn (the ring was full; a retry) */
	bool inflight;
};

struct pm_repl_disk {
	struct pm_repl_helper *helper; /* NULL: jobs run on the worker (no io_uring) */
	struct rd_job *job;        /* this shard's slot: the helper's, or own */
	struct rd_job own;
	bool job_busy;             /* posted, its end not taken */
	struct chan ic, hc;        /* requests of the image and its install; of HISTORY */
	/* the image */
	enum img_stage img;
	bool abandon;              /* given up while a request or job of it was under way */
	int img_fd;
	uint64_t img_lsn, img_bytes; /* its LSN; bytes received */
	uint64_t img_off;          /* where buf's bytes go in the file */
	uint8_t *buf;              /* PM_REPL_FRAME_BYTES_MAX: a SNAP_DATA frame's bytes */
	uint32_t len, written;
	char img_tmp[NAME_BYTES], img_name[NAME_BYTES];
	struct pm_snap_map map;    /* the checked image: CHECKED until the install's end */
	char why[RD_WHY_BYTES];    /* IMG_BAD, IMG_FAILED, INS_FAILED: why */
	/* the install */
	enum ins_stage ins;
	bool ins_emptied;          /* INS_FAILED after the log's restart: the shard was emptied */
	/* HISTORY */
	bool hs_running, hs_pending;
	int hs_fd;
	uint32_t line_len, next_len, hs_written;
	char line[PM_REPL_HISTORY_BYTES], next[PM_REPL_HISTORY_BYTES];
};

/* ---------------------------------------------------------------- requests */

enum req_kind { K_UNLINK, K_OPEN, K_WRITE, K_DSYNC, K_RENAME, K_DIRSYNC };

struct req {
	enum req_kind k;
	int fd;                    /* the file, or the directory the names are in */
	const char *a, *b;         /* names (the kernel reads them at submission) */
	const void *p;
	uint32_t n;
	uint64_t off;
};

static struct req req_of(struct pm_worker *w, const struct pm_repl_disk *rd, enum rd_op op)
{
	int snap = pm_snap_dirfd(w), wal = w->wal->dirfd;
	switch (op) {
	case IMG_CLEAR:
	case IMG_DROP:
		return (struct req){ .k = K_UNLINK, .fd = snap, .a = rd->img_tmp };
	case IMG_OPEN:
		return (struct req){ .k = K_OPEN, .fd = snap, .a = rd->img_tmp };
	case IMG_WRITE:
		return (struct req){ .k = K_WRITE, .fd = rd->img_fd, .p = rd->buf + rd->written,
				     .n = rd->len - rd->written, .off = rd->img_off + rd->written };
	case IMG_SYNC:
		return (struct req){ .k = K_DSYNC, .fd = rd->img_fd };
	case INS_UNLINK_HISTORY:
		return (struct req){ .k = K_UNLINK, .fd = wal, .a = PM_REPL_HISTORY_NAME };
	case INS_RENAME:
		return (struct req){ .k = K_RENAME, .fd = snap, .a = rd->img_tmp, .b = rd->img_name };
	case INS_DIRSYNC:
		return (struct req){ .k = K_DIRSYNC, .fd = snap };
	case HS_CLEAR:
		return (struct req){ .k = K_UNLINK, .fd = wal, .a = RD_HISTORY_TMP };
	case HS_OPEN:
		return (struct req){ .k = K_OPEN, .fd = wal, .a = RD_HISTORY_TMP };
	case HS_WRITE:
		return (struct req){ .k = K_WRITE, .fd = rd->hs_fd, .p = rd->line + rd->hs_written,
				     .n = rd->line_len - rd->hs_written, .off = rd->hs_written };
	case HS_SYNC:
		return (struct req){ .k = K_DSYNC, .fd = rd->hs_fd };
	case HS_RENAME:
		return (struct req){ .k = K_RENAME, .fd = wal, .a = RD_HISTORY_TMP,
				     .b = PM_REPL_HISTORY_NAME };
	default:
		return (struct req){ .k = K_DIRSYNC, .fd = wal };
	}
}

/* Without io_uring: the request here and now, its result as a completion's. */
static int run_here(const struct req *q)
{
	ssize_t r;
	switch (q->k) {
	case K_UNLINK:
		r = unlinkat(q->fd, q->a, 0);
		break;
	case K_OPEN:
		r = openat(q->fd, q->a, RD_TMP_FLAGS, RD_FILE_MODE);
		break;
	case K_WRITE:
		r = pwrite(q->fd, q->p, q->n, (off_t)q->off);
		break;
	case K_DSYNC:
		r = fdatasync(q->fd);
		break;
	case K_RENAME:
		r = renameat(q->fd, q->a, q->fd, q->b);
		break;
	default:
		r = fsync(q->fd);
		break;
	}
	return r < 0 ? -errno : (int)r;
}

static void prep(struct io_uring_sqe *s, const struct req *q)
{
	switch (q->k) {
	case K_UNLINK:
		io_uring_prep_unlinkat(s, q->fd, q->a, 0);
		break;
	case K_OPEN:
		io_uring_prep_openat(s, q->fd, q->a, RD_TMP_FLAGS, RD_FILE_MODE);
		break;
	case K_WRITE:
		io_uring_prep_write(s, q->fd, q->p, q->n, q->off);
		break;
	case K_DSYNC:
		io_uring_prep_fsync(s, q->fd, IORING_FSYNC_DATASYNC);
		break;
	case K_RENAME:
		io_uring_prep_renameat(s, q->fd, q->a, q->fd, q->b, 0);
		break;
	default:
		io_uring_prep_fsync(s, q->fd, 0);
		break;
	}
}

static struct chan *chan_of(struct pm_repl_disk *rd, enum rd_op op)
{
	return op >= HS_CLEAR ? &rd->hc : &rd->ic;
}

static void done(struct pm_worker *w, struct pm_repl_disk *rd, enum rd_op op, int res);

/* Submit op through the worker's ring; without io_uring run it here. */
static void go(struct pm_worker *w, struct pm_repl_disk *rd, enum rd_op op)
{
	struct pm_wal *l = w->wal;
	struct chan *c = chan_of(rd, op);
	PM_ASSERT(!c->inflight);
	struct req q = req_of(w, rd, op);
	c->next = RD_NONE;
	if (!l->uring) {
		done(w, rd, op, run_here(&q));
		return;
	}
	struct io_uring_sqe *s = io_uring_get_sqe(&l->ring);
	if (!s) {
		c->next = op; /* the ring is full: pm_rd_turn submits it */
		return;
	}
	prep(s, &q);
	io_uring_sqe_set_data64(s, PM_RD_USER_DATA | (uint64_t)op << RD_OP_SHIFT | OP_REPL);
	io_uring_submit(&l->ring);
	c->inflight = true;
}

/* ---------------------------------------------------------------- HISTORY */

static void history_start(struct pm_worker *w, struct pm_repl_disk *rd)
{
	memcpy(rd->line, rd->next, rd->next_len);
	rd->line_len = rd->next_len;
	rd->hs_pending = false;
	rd->hs_running = true;
	rd->hs_written = 0;
	go(w, rd, HS_CLEAR);
}

static void history_end(struct pm_worker *w, struct pm_repl_disk *rd, enum rd_op op, int res)
{
	if (rd->hs_fd >= 0)
		close(rd->hs_fd);
	rd->hs_fd = -1;
	rd->hs_running = false;
	if (res < 0)
		fprintf(stderr, "pomaid: shard %u: cannot save its replication history (%s %s/%s):"
				" %s\n", w->id, op_names[op], w->wal->dir,
			op == HS_RENAME || op == HS_DIRSYNC ? PM_REPL_HISTORY_NAME : RD_HISTORY_TMP,
			strerror(-res));
	if (rd->hs_pending)
		history_start(w, rd); /* a newer line was asked for meanwhile */
}

static void history_done(struct pm_worker *w, struct pm_repl_disk *rd, enum rd_op op, int res)
{
	if (op == HS_CLEAR) { /* gone, or there was none: either way on */
		go(w, rd, HS_OPEN);
		return;
	}
	if (op == HS_WRITE && res == 0)
		res = -EIO; /* a regular file takes bytes or fails */
	if (res < 0) {
		history_end(w, rd, op, res);
		return;
	}
	switch (op) {
	case HS_OPEN:
		rd->hs_fd = res;
		go(w, rd, HS_WRITE);
		return;
	case HS_WRITE:
		rd->hs_written += (uint32_t)res; /* a short write: the rest next */
		go(w, rd, rd->hs_written < rd->line_len ? HS_WRITE : HS_SYNC);
		return;
	case HS_SYNC:
		close(rd->hs_fd);
		rd->hs_fd = -1;
		go(w, rd, HS_RENAME);
		return;
	case HS_RENAME:
		go(w, rd, HS_DIRSYNC);
		return;
	default:
		history_end(w, rd, op, 0);
		return;
	}
}

void pm_rd_history_save(struct pm_worker *w, struct pm_repl_disk *rd, const char *line, size_t n)
{
	PM_ASSERT(n <= PM_REPL_HISTORY_BYTES);
	memcpy(rd->next, line, n);
	rd->next_len = (uint32_t)n;
	rd->hs_pending = true;
	if (!rd->hs_running)
		history_start(w, rd);
}

bool pm_rd_history_busy(const struct pm_repl_disk *rd)
{
	return rd->hs_running || rd->hs_pending;
}

/* ---------------------------------------------------------------- jobs */

static void job_run(struct rd_job *j)
{
	if (j->kind == JOB_CHECK) {
		j->rc = pm_snap_map_check(j->dirfd, j->dir, j->name, j->shard, j->lsn, &j->map, j->why,
					  sizeof(j->why));
		return;
	}
	pm_snap_clear_dir(j->dirfd);
	j->rc = 0;
}

static void job_end(struct pm_worker *w, struct pm_repl_disk *rd);

static void job_post(struct pm_worker *w, struct pm_repl_disk *rd, enum job_kind kind)
{
	struct rd_job *j = rd->job;
	PM_ASSERT(!rd->job_busy);
	j->kind = kind;
	j->dirfd = pm_snap_dirfd(w);
	j->dir = pm_snap_dir(w);
	j->shard = w->id;
	j->lsn = rd->img_lsn;
	snprintf(j->name, sizeof(j->name), "%s", rd->img_tmp);
	rd->job_busy = true;
	if (!rd->helper) { /* without io_uring: here, as the rest */
		job_run(j);
		job_end(w, rd);
		return;
	}
	atomic_store_explicit(&j->state, JOB_QUEUED, memory_order_release);
	uint64_t one = 1;
	ssize_t n = write(rd->helper->efd, &one, sizeof(one)); /* an eventfd: never blocks */
	(void)n; /* a full counter wakes it already */
}

static void *helper_main(void *arg)
{
	struct pm_repl_helper *h = arg;
	while (!atomic_load(&h->quit)) {
		uint64_t v;
		if (read(h->efd, &v, sizeof(v)) < 0 && errno != EINTR)
			break;
		for (uint32_t i = 0; i < h->n; i++) {
			struct rd_job *j = &h->jobs[i];
			if (atomic_load_explicit(&j->state, memory_order_acquire) != JOB_QUEUED)
				continue;
			job_run(j);
			atomic_store_explicit(&j->state, JOB_DONE, memory_order_release);
			pm_wake(h->d, i);
		}
	}
	return NULL;
}

int pm_rd_helper_start(struct pm_daemon *d, struct pm_repl_helper **out, char *err, size_t errlen)
{
	bool ring = false;
	*out = NULL;
	for (uint32_t i = 0; i < d->nshards; i++)
		ring |= d->workers[i].wal && d->workers[i].wal->uring;
	if (!ring)
		return 0;
	struct pm_repl_helper *h = calloc(1, sizeof(*h) + d->nshards * sizeof(h->jobs[0]));
	if (!h)
		return pm_errf(err, errlen, "out of memory for the replication helper");
	h->d = d;
	h->n = d->nshards;
	h->efd = eventfd(0, EFD_CLOEXEC);
	int rc = h->efd < 0 ? errno : pthread_create(&h->thread, NULL, helper_main, h);
	if (rc != 0) {
		if (h->efd >= 0)
			close(h->efd);
		free(h);
		return pm_errf(err, errlen, "the replication helper thread: %s", strerror(rc));
	}
	(void)pthread_setname_np(h->thread, "pomai-repl-io"); /* not pomai-w: a worker's prefix */
	*out = h;
	return 0;
}

void pm_rd_helper_stop(struct pm_repl_helper *h)
{
	if (!h || h->efd < 0)
		return;
	atomic_store(&h->quit, true);
	uint64_t one = 1;
	ssize_t n = write(h->efd, &one, sizeof(one));
	(void)n;
	pthread_join(h->thread, NULL);
	close(h->efd);
	h->efd = -1;
}

void pm_rd_helper_free(struct pm_repl_helper *h)
{
	free(h);
}

/* ---------------------------------------------------------------- the image */

static void image_reset(struct pm_repl_disk *rd)
{
	if (rd->img_fd >= 0)
		close(rd->img_fd);
	rd->img_fd = -1;
	if (rd->map.buf && rd->ins == INS_IDLE) /* once the install began, the mapping is its */
		munmap(rd->map.buf, rd->map.bytes);
	if (rd->ins == INS_IDLE)
		rd->map = (struct pm_snap_map){ 0 };
	rd->img = IMG_IDLE;
	rd->abandon = false;
	rd->len = rd->written = 0;
}

static void image_fail(struct pm_worker *w, struct pm_repl_disk *rd, enum rd_op op, int res)
{
	snprintf(rd->why, sizeof(rd->why), "%s the image %s/%s: %s", op_names[op], pm_snap_dir(w),
		 rd->img_tmp, strerror(-res));
	if (rd->img_fd >= 0)
		close(rd->img_fd);
	rd->img_fd = -1;
	rd->img = IMG_FAILED;
}

static void image_done(struct pm_worker *w, struct pm_repl_disk *rd, enum rd_op op, int res)
{
	if (rd->abandon) { /* given up: nothing more of it */
		if (op == IMG_OPEN && res >= 0)
			close(res);
		image_reset(rd);
		return;
	}
	if (op == IMG_WRITE && res == 0)
		res = -EIO; /* a regular file takes bytes or fails */
	if (op == IMG_CLEAR) { /* gone, or there was none: either way on */
		go(w, rd, IMG_OPEN);
	} else if (op == IMG_DROP) {
		/* the bad image is gone (or left for the next start): IMG_BAD says why */
	} else if (res < 0) {
		image_fail(w, rd, op, res);
	} else if (op == IMG_OPEN) {
		rd->img_fd = res;
		rd->img = IMG_OPENED;
	} else if (op == IMG_WRITE) {
		rd->written += (uint32_t)res;
		if (rd->written < rd->len) {
			go(w, rd, IMG_WRITE); /* a short write: the rest */
			return;
		}
		rd->img_off += rd->len;
		rd->len = rd->written = 0;
	} else { /* IMG_SYNC: on disk; checked whole by the helper */
		close(rd->img_fd);
		rd->img_fd = -1;
		rd->img = IMG_CHECKING;
		job_post(w, rd, JOB_CHECK);
	}
}

static void check_done(struct pm_worker *w, struct pm_repl_disk *rd, struct rd_job *j)
{
	if (rd->abandon) {
		if (j->rc == 0)
			munmap(j->map.buf, j->map.bytes);
		image_reset(rd);
		return;
	}
	if (j->rc == 0) {
		rd->map = j->map;
		rd->img = IMG_CHECKED;
		return;
	}
	snprintf(rd->why, sizeof(rd->why), "the image received fails its checks (%s): the shard"
		 " keeps its data", j->why);
	rd->img = IMG_BAD;
	go(w, rd, IMG_DROP);
}

static enum pm_rd_step say(char *err, size_t errlen, const char *text)
{
	snprintf(err, errlen, "%s", text);
	return PM_RD_FAIL;
}

static enum pm_rd_step image_step(struct pm_worker *w, struct pm_repl_disk *rd,
				  const struct pm_repl_frame *f, char *err, size_t errlen)
{
	if (f->type == PM_REPL_SNAP_BEGIN) {
		if (rd->img == IMG_OPENED) {
			rd->img = IMG_WRITING;
			return PM_RD_DONE;
		}
		if (rd->img != IMG_IDLE || rd->ins != INS_IDLE)
			return say(err, errlen, "SNAP_BEGIN while an image is being received or installed");
		if (!rd->buf && !(rd->buf = malloc(PM_REPL_FRAME_BYTES_MAX)))
			return say(err, errlen, "out of memory for the image's buffer");
		rd->img_lsn = f->u.snap_begin.start_lsn;
		rd->img_bytes = rd->img_off = 0;
		pm_snap_image_name(rd->img_lsn, rd->img_tmp);
		pm_snap_name(rd->img_lsn, false, rd->img_name);
		rd->img = IMG_OPENING;
		go(w, rd, IMG_CLEAR);
		return PM_RD_WAIT;
	}
	if (f->type == PM_REPL_SNAP_DATA) {
		if (rd->img != IMG_WRITING)
			return say(err, errlen, "SNAP_DATA outside an image");
		memcpy(rd->buf, f->u.snap_data.bytes, f->u.snap_data.len);
		rd->len = f->u.snap_data.len;
		rd->written = 0;
		rd->img_bytes += f->u.snap_data.len;
		go(w, rd, IMG_WRITE);
		return PM_RD_DONE;
	}
	if (rd->img == IMG_CHECKED) { /* SNAP_END: whole, synced, checked */
		rd->img = IMG_READY;
		return PM_RD_DONE;
	}
	if (rd->img != IMG_WRITING)
		return say(err, errlen, "SNAP_END outside an image");
	if (f->u.snap_end.bytes != rd->img_bytes) {
		snprintf(err, errlen, "SNAP_END says %" PRIu64 " bytes, %" PRIu64 " were received",
			 f->u.snap_end.bytes, rd->img_bytes);
		image_reset(rd);
		return PM_RD_FAIL;
	}
	rd->img = IMG_SYNCING;
	go(w, rd, IMG_SYNC);
	return PM_RD_WAIT;
}

enum pm_rd_step pm_rd_image(struct pm_worker *w, struct pm_repl_disk *rd,
			    const struct pm_repl_frame *f, char *err, size_t errlen)
{
	/* without io_uring a step's requests have run when it returns: the next
	 * one at once (a bounded few: clear, open; sync, check, removal) */
	for (;;) {
		if (rd->ic.inflight || rd->ic.next != RD_NONE || rd->job_busy)
			return PM_RD_WAIT;
		if (rd->img == IMG_FAILED || rd->img == IMG_BAD) {
			snprintf(err, errlen, "%s", rd->why);
			image_reset(rd);
			return PM_RD_FAIL;
		}
		enum img_stage was = rd->img;
		enum pm_rd_step st = image_step(w, rd, f, err, errlen);
		if (st != PM_RD_WAIT || rd->img == was)
			return st;
	}
}

void pm_rd_image_abandon(struct pm_worker *w, struct pm_repl_disk *rd)
{
	(void)w;
	if (rd->img == IMG_IDLE)
		return;
	if (rd->ic.inflight || rd->job_busy) {
		rd->abandon = true; /* their ends reset it */
		return;
	}
	rd->ic.next = RD_NONE; /* what waited for room in the ring is not submitted */
	image_reset(rd);
}

/* ---------------------------------------------------------------- the install */

static void install_end(struct pm_repl_disk *rd)
{
	if (rd->map.buf)
		munmap(rd->map.buf, rd->map.bytes);
	rd->map = (struct pm_snap_map){ 0 };
	rd->ins = INS_IDLE;
}

/* A step failed; after the log's restart the shard holds what the log no
 * longer has: emptied (the next connection asks for a full sync). */
static void install_fail(struct pm_worker *w, struct pm_repl_disk *rd, const char *what,
			 const char *name, int res, bool restarted)
{
	char e2[64];
	snprintf(rd->why, sizeof(rd->why), "%s %s: %s%s", what, name, strerror(-res),
		 restarted ? "; the shard is emptied" : "; the shard keeps its data");
	if (restarted)
		(void)pm_worker_shard_reset(w, e2, sizeof(e2));
	rd->ins_emptied = restarted;
	rd->ins = INS_FAILED;
}

static void install_done(struct pm_worker *w, struct pm_repl_disk *rd, enum rd_op op, int res)
{
	if (op == INS_UNLINK_HISTORY) {
		if (res < 0 && res != -ENOENT)
			install_fail(w, rd, "removing", PM_REPL_HISTORY_NAME, res, false);
		else
			rd->ins = INS_RESTART;
	} else if (res < 0) {
		install_fail(w, rd, op_names[op], op == INS_RENAME ? rd->img_name : pm_snap_dir(w), res,
			     true);
	} else if (op == INS_RENAME) {
		go(w, rd, INS_DIRSYNC);
	} else {
		rd->ins = INS_LOAD; /* published: <lsn>.snap is durable */
	}
}

static void job_end(struct pm_worker *w, struct pm_repl_disk *rd)
{
	struct rd_job *j = rd->job;
	rd->job_busy = false;
	atomic_store_explicit(&j->state, JOB_FREE, memory_order_relaxed);
	if (j->kind == JOB_CHECK) {
		check_done(w, rd, j);
		return;
	}
	rd->ins = INS_PUBLISH; /* JOB_CLEAR: no older snapshot is left to win at the next start */
	go(w, rd, INS_RENAME);
}

static enum pm_rd_step install_step(struct pm_worker *w, struct pm_repl_disk *rd, uint64_t lsn,
				    bool *emptied, char *err, size_t errlen)
{
	int rc;
	switch (rd->ins) {
	case INS_IDLE:
		if (rd->img != IMG_READY || rd->img_lsn != lsn)
			return say(err, errlen, "no checked image to install");
		if (pm_rd_history_busy(rd))
			return PM_RD_WAIT; /* a save in flight would rename a HISTORY over the removal */
		rd->img = IMG_IDLE; /* the install holds the mapping now */
		rd->ins = INS_UNHIST;
		go(w, rd, INS_UNLINK_HISTORY);
		return PM_RD_WAIT;
	case INS_RESTART:
		if (pm_wal_restart_at(w, lsn) != 0)
			return PM_RD_WAIT; /* a batch of the old history is still being written */
		rd->ins = INS_CLEAR;
		job_post(w, rd, JOB_CLEAR);
		return PM_RD_WAIT;
	case INS_LOAD:
		rc = pm_snap_install_mapped(w, lsn, &rd->map, err, errlen);
		install_end(rd);
		*emptied = rc != 0;
		return rc == 0 ? PM_RD_DONE : PM_RD_FAIL;
	case INS_FAILED:
		*emptied = rd->ins_emptied;
		snprintf(err, errlen, "%s", rd->why);
		install_end(rd);
		return PM_RD_FAIL;
	default:
		return PM_RD_WAIT;
	}
}

enum pm_rd_step pm_rd_install(struct pm_worker *w, struct pm_repl_disk *rd, uint64_t lsn,
			      bool *emptied, char *err, size_t errlen)
{
	*emptied = false;
	for (;;) { /* without io_uring: the next stage at once, as in pm_rd_image */
		if (rd->ic.inflight || rd->ic.next != RD_NONE || rd->job_busy)
			return PM_RD_WAIT;
		enum ins_stage was = rd->ins;
		enum pm_rd_step st = install_step(w, rd, lsn, emptied, err, errlen);
		if (st != PM_RD_WAIT || rd->ins == was)
			return st;
	}
}

bool pm_rd_installing(const struct pm_repl_disk *rd)
{
	return rd && rd->ins != INS_IDLE;
}

/* ---------------------------------------------------------------- turns, completions */

static void done(struct pm_worker *w, struct pm_repl_disk *rd, enum rd_op op, int res)
{
	if (res == -EAGAIN || res == -EINTR) {
		chan_of(rd, op)->next = op; /* the next turn submits it again */
		return;
	}
	if (op >= HS_CLEAR)
		history_done(w, rd, op, res);
	else if (op >= INS_UNLINK_HISTORY)
		install_done(w, rd, op, res);
	else
		image_done(w, rd, op, res);
}

void pm_rd_on_cqe(struct pm_worker *w, struct pm_repl_disk *rd, uint64_t user_data, int res)
{
	enum rd_op op = (enum rd_op)(user_data >> RD_OP_SHIFT & RD_OP_MASK);
	if (op == RD_NONE || op >= RD_OPS)
		return;
	chan_of(rd, op)->inflight = false;
	done(w, rd, op, res);
}

void pm_rd_turn(struct pm_worker *w, struct pm_repl_disk *rd)
{
	if (rd->ic.next != RD_NONE && !rd->ic.inflight)
		go(w, rd, rd->ic.next);
	if (rd->hc.next != RD_NONE && !rd->hc.inflight)
		go(w, rd, rd->hc.next);
	if (rd->job_busy && rd->helper &&
	    atomic_load_explicit(&rd->job->state, memory_order_acquire) == JOB_DONE)
		job_end(w, rd);
}

bool pm_rd_inflight(const struct pm_repl_disk *rd)
{
	return rd && (rd->ic.inflight || rd->hc.inflight);
}

bool pm_rd_busy(const struct pm_repl_disk *rd)
{
	return rd && (pm_rd_inflight(rd) || rd->ic.next != RD_NONE || rd->job_busy ||
		      rd->ins != INS_IDLE);
}

/* ---------------------------------------------------------------- start, end */

struct pm_repl_disk *pm_rd_new(struct pm_worker *w, struct pm_repl_helper *h)
{
	struct pm_repl_disk *rd = calloc(1, sizeof(*rd));
	if (!rd)
		return NULL;
	rd->helper = w->wal && w->wal->uring ? h : NULL;
	rd->job = rd->helper ? &h->jobs[w->id] : &rd->own;
	rd->img_fd = rd->hs_fd = -1;
	return rd;
}

void pm_rd_free(struct pm_repl_disk *rd)
{
	if (!rd)
		return;
	struct rd_job *j = rd->job;
	if (rd->job_busy && atomic_load(&j->state) == JOB_DONE && j->kind == JOB_CHECK && j->rc == 0)
		munmap(j->map.buf, j->map.bytes); /* checked after the worker's last turn */
	if (rd->img_fd >= 0)
		close(rd->img_fd);
	if (rd->hs_fd >= 0)
		close(rd->hs_fd);
	if (rd->map.buf)
		munmap(rd->map.buf, rd->map.bytes);
	free(rd->buf);
	free(rd);
}
