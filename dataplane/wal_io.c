/* SPDX-License-Identifier: MIT
 *
 * wal_io.c — a worker's write-ahead log (see wal_io.h): batches, segments,
 * io_uring submission and completion, held replies, recovery.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "common.h"
#include "daemon.h"
#include "shard.h"
#include "wal.h"
#include "snap_io.h"
#include "wal_impl.h"
#include "wal_io.h"

uint64_t pm_wall_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* ---------------------------------------------------------------- segments */

static void seg_path(const struct pm_wal *l, uint64_t first_lsn, char *out)
{
	snprintf(out, PATH_BYTES, "%s/%020" PRIu64 ".wal", l->dir, first_lsn);
}

int pm_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) ? -errno : 0;
	close(fd);
	return rc;
}

/* Spare segments in dir: their count, and the path of one (if any). */
static unsigned spares(const char *dir, char *one)
{
	DIR *d = opendir(dir);
	unsigned n = 0;
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		const char *dot = strrchr(e->d_name, '.');
		if (!dot || strcmp(dot, ".spare"))
			continue;
		if (n++ == 0 && one)
			snprintf(one, PATH_BYTES, "%s/%s", dir, e->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

void pm_wal_retire(struct pm_worker *w, uint64_t first_lsn)
{
	struct pm_wal *l = w->wal;
	char path[PATH_BYTES], spare[PATH_BYTES];
	seg_path(l, first_lsn, path);
	snprintf(spare, sizeof(spare), "%s/%020" PRIu64 ".spare", l->dir, first_lsn);
	if (spares(l->dir, NULL) < PM_WAL_SPARE_SEGMENTS && rename(path, spare) == 0)
		l->st.retired++;
	else
		pm_snap_unlink(w, path, true); /* counted in deleted when it is gone */
}

/* Make fd (a spare, or a new file) a segment for records from first_lsn:
 * seg_bytes of zeros (a spare's old records must read as the end of the log)
 * after the header, on disk. 0 or -errno. */
static int seg_prepare(const struct pm_wal *l, uint32_t shard, int fd, uint64_t first_lsn,
		       bool recycled)
{
	uint8_t hdr[PM_WAL_SEGMENT_HEADER_BYTES];
	struct pm_wal_segment_header h = { .version = PM_WAL_VERSION, .shard = shard,
					   .first_lsn = first_lsn };
	pm_wal_segment_header_encode(&h, hdr);
	off_t size = (off_t)l->seg_bytes;
	bool zeroed = recycled && ftruncate(fd, size) == 0 &&
		      fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, size) == 0;
	if (!zeroed && (ftruncate(fd, 0) != 0 || fallocate(fd, 0, 0, size) != 0))
		return -errno;
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || fdatasync(fd) != 0)
		return -errno;
	return 0;
}

/* A new segment for records from first_lsn: a spare one reused (zeroed and
 * given its header before it gets its new name, so a crash never leaves a
 * segment with stale records under a live name), else a new file;
 * preallocated, its directory entry durable. 0 or -errno. */
static int seg_create(struct pm_worker *w, uint64_t first_lsn)
{
	struct pm_wal *l = w->wal;
	char path[PATH_BYTES], spare[PATH_BYTES];
	if (l->fd >= 0) {
		if (l->mode == PM_WAL_BATCH && fdatasync(l->fd) != 0)
			return -errno;
		close(l->fd);
		l->fd = -1;
	}
	seg_path(l, first_lsn, path);
	bool recycled = spares(l->dir, spare) > 0;
	const char *at = recycled ? spare : path;
	int fd = open(at, O_CREAT | O_WRONLY | O_CLOEXEC | (recycled ? 0 : O_TRUNC), 0640);
	if (fd < 0)
		return -errno;
	int rc = seg_prepare(l, w->id, fd, first_lsn, recycled);
	if (rc == 0 && recycled && rename(spare, path) != 0)
		rc = -errno;
	if (rc == 0)
		rc = pm_fsync_dir(l->dir);
	if (rc != 0) {
		close(fd);
		unlink(recycled ? spare : path);
		return rc;
	}
	l->fd = fd;
	l->seg_off = PM_WAL_SEGMENT_HEADER_BYTES;
	l->st.segments++;
	l->st.recycled += recycled;
	return 0;
}

/* ---------------------------------------------------------------- held replies */

static bool held_room(const struct pm_wal *l, uint32_t len)
{
	return l->held_tail - l->held_head < PM_WAL_HELD_MAX && l->held_used + len <= PM_WAL_HELD_BYTES;
}

/* Room for one more admitted mutation's reply beyond those reserved. */
static bool held_room_reserved(const struct pm_wal *l)
{
	uint32_t n = l->reserved_held + 1;
	return l->held_tail - l->held_head + n <= PM_WAL_HELD_MAX &&
	       l->held_used + n * PM_WAL_REPLY_BYTES_MAX <= PM_WAL_HELD_BYTES;
}

static struct held *held_push(struct pm_wal *l, const uint8_t *bytes, uint32_t len)
{
	struct held *h = &l->held[l->held_tail++ % PM_WAL_HELD_MAX];
	uint64_t tag = l->b[l->fill].len ? l->next_seq : l->next_seq - 1; /* filling, or in flight */
	*h = (struct held){ .seq = tag, .off = l->held_used, .len = len };
	memcpy(l->held_buf + l->held_used, bytes, len);
	l->held_used += len;
	l->st.held++;
	l->st.held_max = PM_MAX(l->st.held_max, l->held_tail - l->held_head);
	return h;
}

/* Send one held item; with st != PM_OK its frames say so instead. */
static void held_send(struct pm_worker *w, struct held *h, enum pm_status st)
{
	struct pm_wal *l = w->wal;
	uint8_t *p = l->held_buf + h->off;
	if (st != PM_OK && h->len >= PM_FRAME_HEADER_BYTES)
		p[PM_FRAME_STATUS_OFFSET] = pm_wire_status(st);
	if (h->type)
		pm_post(w, h->to_worker, h->type, &h->msg, p, h->len);
	else
		pm_deliver_frames(w, &h->dest, p, h->len);
}

/* Release every held item whose batch is durable (all of them with st != OK). */
static uint32_t held_release(struct pm_worker *w, enum pm_status st)
{
	struct pm_wal *l = w->wal;
	uint32_t n = 0;
	while (l->held_head != l->held_tail) {
		struct held *h = &l->held[l->held_head % PM_WAL_HELD_MAX];
		if (st == PM_OK && h->seq > l->durable_seq)
			break;
		held_send(w, h, st);
		l->held_head++;
		l->st.held--;
		n++;
	}
	if (l->held_head == l->held_tail)
		l->held_used = 0; /* FIFO drained: the buffer starts over */
	return n;
}

bool pm_wal_must_hold(const struct pm_worker *w, uint8_t op, enum pm_status st)
{
	const struct pm_wal *l = w->wal;
	bool refused = st == PM_E_DISK_FULL || st == PM_E_LOG_FAILED || st == PM_E_BUSY;
	return l && l->mode == PM_WAL_SYNC && pm_wal_logs(op) && !refused &&
	       (l->b[l->fill].len || l->inflight);
}

void pm_wal_hold_reply(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
		       uint32_t len)
{
	struct pm_wal *l = w->wal;
	if (!held_room(l, len)) { /* admit() keeps this from happening; never send early */
		l->st.refused_busy++;
		return;
	}
	held_push(l, frames, len)->dest = *to;
}

void pm_wal_hold_msg(struct pm_worker *w, uint32_t to, uint32_t type, const struct pm_msg *m,
		     const uint8_t *body, uint32_t len)
{
	struct pm_wal *l = w->wal;
	if (!held_room(l, len)) {
		l->st.refused_busy++;
		return;
	}
	struct held *h = held_push(l, body, len);
	h->to_worker = to;
	h->type = type;
	h->msg = *m;
}

/* ---------------------------------------------------------------- logging */

enum pm_status pm_wal_admit(struct pm_worker *w, const struct pm_request *req)
{
	struct pm_wal *l = w->wal;
	if (!l || l->mode == PM_WAL_NONE || !pm_wal_logs(req->op))
		return PM_OK;
	if (l->state == WAL_FULL) {
		l->st.refused_full++;
		return PM_E_DISK_FULL;
	}
	if (l->state == WAL_FAILED) {
		l->st.refused_failed++;
		return PM_E_LOG_FAILED;
	}
	uint32_t n = (uint32_t)pm_wal_record_bytes(req);
	if (l->b[l->fill].len + l->reserved + n > PM_WAL_BATCH_BYTES || !held_room_reserved(l)) {
		l->st.refused_busy++;
		return PM_E_BUSY;
	}
	l->reserved += n;
	l->reserved_held++;
	return PM_OK;
}

void pm_wal_note(struct pm_worker *w, const struct pm_request *req, const struct pm_reply *rep)
{
	struct pm_wal *l = w->wal;
	if (!l || l->mode == PM_WAL_NONE || !pm_wal_logs(req->op))
		return;
	uint32_t want = (uint32_t)pm_wal_record_bytes(req);
	l->reserved -= PM_MIN(l->reserved, want);
	l->reserved_held -= l->reserved_held > 0;
	if (rep->status != PM_OK)
		return;
	if ((req->op == PM_OP_DEL || req->op == PM_OP_VDEL || req->op == PM_OP_CDROP) &&
	    !rep->removed)
		return; /* nothing changed */
	struct batch *b = &l->b[l->fill];
	size_t n = pm_wal_encode(req, w->now_ms, l->next_lsn, b->buf + b->len,
				 PM_WAL_BATCH_BYTES - b->len);
	if (n == 0) { /* admit() made room for the largest record: cannot happen */
		fprintf(stderr, "pomaid: shard %u: WAL record of op %u did not fit its batch\n", w->id,
			req->op);
		l->state = WAL_FAILED;
		return;
	}
	if (b->len == 0)
		b->first_lsn = l->next_lsn;
	b->len += (uint32_t)n;
	l->next_lsn++;
	l->st.records++;
}

bool pm_wal_evict_log(void *ctx, const uint8_t *key, uint32_t klen)
{
	struct pm_worker *w = ctx;
	struct pm_wal *l = w->wal;
	if (!l || l->mode == PM_WAL_NONE)
		return true;
	struct pm_request del = { .op = PM_OP_DEL, .key = { key, klen } };
	struct batch *b = &l->b[l->fill];
	size_t n = pm_wal_record_bytes(&del);
	if (l->state != WAL_OK || b->len + l->reserved + n > PM_WAL_BATCH_BYTES) {
		l->st.evict_refused++;
		return false;
	}
	n = pm_wal_encode(&del, w->now_ms, l->next_lsn, b->buf + b->len, PM_WAL_BATCH_BYTES - b->len);
	PM_ASSERT(n > 0); /* its room was checked */
	if (b->len == 0)
		b->first_lsn = l->next_lsn;
	b->len += (uint32_t)n;
	l->next_lsn++;
	l->st.records++;
	l->st.evictions++;
	return true;
}

/* ---------------------------------------------------------------- submission */

static void submit_write(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	struct batch *b = &l->b[l->fill ^ 1];
	const uint8_t *p = b->buf + l->written;
	uint32_t n = b->len - l->written;
	uint64_t off = l->seg_off + l->written;
	bool sync = l->mode == PM_WAL_SYNC;
	l->err = 0;
	l->fsync_ok = !sync;
	if (!l->uring) { /* the documented fallback: on this thread */
		ssize_t r = pwrite(l->fd, p, n, (off_t)off);
		l->written += r > 0 ? (uint32_t)r : 0;
		l->err = r < 0 ? -errno : 0;
		if (sync && r == (ssize_t)n)
			l->fsync_ok = fdatasync(l->fd) == 0, l->err = l->fsync_ok ? 0 : -errno;
		l->cqes_left = 0;
		return;
	}
	struct io_uring_sqe *s = io_uring_get_sqe(&l->ring);
	io_uring_prep_write(s, l->fd, p, n, off);
	io_uring_sqe_set_data64(s, b->seq << 2 | OP_WRITE);
	l->cqes_left = 1;
	if (sync) {
		s->flags |= IOSQE_IO_LINK;
		s = io_uring_get_sqe(&l->ring);
		io_uring_prep_fsync(s, l->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(s, b->seq << 2 | OP_FSYNC);
		l->cqes_left = 2;
	}
	io_uring_submit(&l->ring);
}

/* Start writing the filled batch (the queue depth holds one write + fsync
 * and one batch fsync, so a SQE is always there). */
static void start_batch(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	struct batch *b = &l->b[l->fill];
	if (l->fd < 0 || l->seg_off + b->len > l->seg_bytes) {
		int rc = seg_create(w, b->first_lsn);
		if (rc != 0) {
			l->state = rc == -ENOSPC || rc == -EDQUOT ? WAL_FULL : WAL_FAILED;
			l->retry_ms = w->now_ms + PM_WAL_RETRY_MS;
			fprintf(stderr, "pomaid: shard %u: WAL segment: %s%s\n", w->id, strerror(-rc),
				l->state == WAL_FULL ? " (writes refused until there is room)"
						     : " (writes refused until restart)");
			return;
		}
	}
	b->seq = l->next_seq++;
	b->last_lsn = l->next_lsn - 1;
	l->fill ^= 1;
	l->inflight = true;
	l->written = 0;
	submit_write(w);
}

/* The batch in flight has every completion: done, again, or an error. */
static uint32_t finish_batch(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	struct batch *b = &l->b[l->fill ^ 1];
	if (l->err == -ENOSPC || l->err == -EDQUOT) {
		if (l->state != WAL_FULL)
			fprintf(stderr, "pomaid: shard %u: WAL disk full: writes refused, reads go on;"
					" retrying every %u ms\n", w->id, PM_WAL_RETRY_MS);
		l->state = WAL_FULL;
		l->retry_ms = w->now_ms + PM_WAL_RETRY_MS;
		return 0;
	}
	if (l->err && l->err != -EAGAIN && l->err != -EINTR && l->err != -ECANCELED) {
		fprintf(stderr, "pomaid: shard %u: WAL %s FAILED: %s — writes on this shard are"
				" refused until restart; replies held for it get E_LOG_FAILED\n",
			w->id, l->fsync_ok ? "write" : "fsync", strerror(-l->err));
		l->state = WAL_FAILED;
		l->inflight = false;
		return held_release(w, PM_E_LOG_FAILED);
	}
	if (l->written < b->len || !l->fsync_ok) { /* short write, EAGAIN, cancelled fsync */
		l->st.resubmits++;
		submit_write(w);
		return 1;
	}
	l->state = WAL_OK;
	l->seg_off += b->len;
	l->st.bytes += b->len;
	l->st.batches++;
	l->st.fsyncs += l->mode == PM_WAL_SYNC;
	l->dirty = l->mode == PM_WAL_BATCH;
	l->durable_seq = b->seq;
	l->durable_lsn = b->last_lsn;
	b->len = 0;
	l->inflight = false;
	return 1 + held_release(w, PM_OK);
}

/* One completion, consumed. */
static void on_cqe(struct pm_worker *w, struct io_uring_cqe *cqe)
{
	struct pm_wal *l = w->wal;
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	int res = cqe->res;
	io_uring_cqe_seen(&l->ring, cqe);
	if ((ud & OP_MASK) == OP_SNAP) {
		pm_snap_on_cqe(w, ud, res);
		return;
	}
	if ((ud & OP_MASK) == OP_BFSYNC) {
		l->bfsync_inflight = false;
		l->st.fsyncs += res == 0;
		if (res < 0 && l->state == WAL_OK) {
			fprintf(stderr, "pomaid: shard %u: WAL fsync FAILED: %s — writes on this shard"
					" are refused until restart\n", w->id, strerror(-res));
			l->state = WAL_FAILED;
		}
		return;
	}
	l->cqes_left--;
	if ((ud & OP_MASK) == OP_WRITE && res > 0)
		l->written += (uint32_t)res;
	else if ((ud & OP_MASK) == OP_FSYNC && res == 0)
		l->fsync_ok = true;
	if (res < 0 && (l->err == 0 || l->err == -ECANCELED))
		l->err = res;
}

static void reap(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	struct io_uring_cqe *cqe;
	if (!l->uring || (!l->inflight && !l->bfsync_inflight && !pm_snap_inflight(w)))
		return; /* nothing can complete: no system call on the turn */
	bool any = false;
	while (io_uring_peek_cqe(&l->ring, &cqe) == 0) /* shared memory, no system call */
		on_cqe(w, cqe), any = true;
	if (any) { /* the eventfd counted them: clear it, or an idle worker would not sleep */
		uint64_t v;
		ssize_t r = read(l->efd, &v, sizeof(v));
		(void)r;
		/* one that completed before the read was cleared with it: take it now */
		while (io_uring_peek_cqe(&l->ring, &cqe) == 0)
			on_cqe(w, cqe);
	}
}

uint32_t pm_wal_turn(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	uint32_t work = 0;
	if (!l || l->mode == PM_WAL_NONE)
		return 0;
	reap(w);
	if (l->inflight && l->cqes_left == 0 && l->state != WAL_FULL)
		work += finish_batch(w);
	if (l->state == WAL_FULL && w->now_ms >= l->retry_ms) { /* try again */
		l->retry_ms = w->now_ms + PM_WAL_RETRY_MS;
		if (l->inflight)
			submit_write(w);
		else
			l->state = WAL_OK;
	}
	if (!l->inflight && l->state == WAL_OK && l->b[l->fill].len)
		start_batch(w), work++;
	if (l->mode == PM_WAL_BATCH && l->dirty && !l->bfsync_inflight && l->uring &&
	    w->now_ms - l->last_fsync_ms >= w->d->cfg.wal_batch_ms) {
		struct io_uring_sqe *s = io_uring_get_sqe(&l->ring);
		io_uring_prep_fsync(s, l->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(s, OP_BFSYNC);
		io_uring_submit(&l->ring);
		l->bfsync_inflight = true;
		l->dirty = false;
		l->last_fsync_ms = w->now_ms;
	} else if (l->mode == PM_WAL_BATCH && l->dirty && !l->uring &&
		   w->now_ms - l->last_fsync_ms >= w->d->cfg.wal_batch_ms) {
		l->st.fsyncs += fdatasync(l->fd) == 0;
		l->dirty = false;
		l->last_fsync_ms = w->now_ms;
	}
	return work + pm_snap_turn(w);
}

int pm_wal_wake_fd(const struct pm_worker *w)
{
	return w->wal && w->wal->uring ? w->wal->efd : -1;
}

void pm_wal_drain(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	for (int i = 0; l && l->mode != PM_WAL_NONE && i < 1000 && l->state == WAL_OK &&
			(l->inflight || l->b[l->fill].len); i++) {
		struct io_uring_cqe *cqe;
		if (l->uring && (l->inflight || l->bfsync_inflight) &&
		    io_uring_wait_cqe(&l->ring, &cqe) == 0)
			on_cqe(w, cqe);
		pm_wal_turn(w);
	}
	if (l && l->fd >= 0)
		(void)fdatasync(l->fd);
}

/* ---------------------------------------------------------------- recovery */

static int lsn_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int pm_wal_list_segments(const char *dir, uint64_t *out, int cap)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		char *end;
		uint64_t lsn = strtoull(e->d_name, &end, 10);
		if (end != e->d_name && !strcmp(end, ".wal") && n < cap)
			out[n++] = lsn;
	}
	closedir(d);
	qsort(out, (size_t)n, sizeof(*out), lsn_cmp);
	return n;
}

/* Zero [off, the last non-zero byte] of a segment: a torn tail or a cut. */
static int zero_from(const char *path, const uint8_t *buf, size_t size, size_t off)
{
	size_t end = size;
	while (end > off && buf[end - 1] == 0)
		end--;
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	static const uint8_t zeros[ZERO_CHUNK_BYTES];
	int rc = fd < 0 ? -errno : 0;
	for (size_t p = off; rc == 0 && p < end; p += ZERO_CHUNK_BYTES) {
		size_t n = PM_MIN(end - p, (size_t)ZERO_CHUNK_BYTES);
		if (pwrite(fd, zeros, n, (off_t)p) != (ssize_t)n)
			rc = -errno;
	}
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	return rc;
}

static void replay(struct pm_worker *w, const struct pm_wal_record *rec, uint64_t now)
{
	struct pm_request req;
	struct pm_reply rep;
	bool expired = false;
	pm_wal_to_request(rec, now, &req, &expired);
	if (expired) { /* the key must not come back with its older value */
		req.op = rec->type == PM_WAL_SET ? PM_OP_DEL : PM_OP_VDEL;
		req.has_ttl = false;
	}
	if (req.has_ttl && req.ttl_ms > PM_TTL_MS_MAX)
		req.ttl_ms = PM_TTL_MS_MAX; /* the clock went back since: keep the key, bounded */
	pm_shard_apply(&w->shard, &req, now, &rep);
	w->wal->st.recovered_records++;
}

struct scan_ctx {
	uint64_t skip;      /* records up to this LSN are in the snapshot loaded */
	uint64_t want;      /* the next LSN */
	size_t end;         /* where writing resumes in the last segment */
	bool cut;           /* an operator-approved cut: later segments go */
};

/* Replay one segment file; 0, or -1 with a message. */
static int replay_segment(struct pm_worker *w, uint64_t first, struct scan_ctx *c, char *err,
			  size_t errlen)
{
	struct pm_wal *l = w->wal;
	char path[PATH_BYTES];
	seg_path(l, first, path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0)
		return pm_errf(err, errlen, "%s: %s", path, strerror(errno));
	/* mapped, not read: only the written part of a preallocated segment is touched */
	size_t size = (size_t)sb.st_size;
	uint8_t *buf = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
	close(fd);
	struct pm_wal_segment_header h;
	if (buf == MAP_FAILED)
		return pm_errf(err, errlen, "%s: empty or unreadable", path);
	madvise(buf, size, MADV_SEQUENTIAL);
	if (pm_wal_segment_header_decode(buf, size, &h) != PM_OK || h.shard != w->id ||
	    (c->want && h.first_lsn != c->want) || h.first_lsn != first) {
		munmap(buf, size);
		return pm_errf(err, errlen, "%s: not a WAL segment of shard %u starting at LSN %" PRIu64
			       " (bad header, or a gap before it)", path, w->id, c->want ? c->want : first);
	}
	c->want = h.first_lsn;
	uint64_t now = pm_wall_ms();
	size_t off = PM_WAL_SEGMENT_HEADER_BYTES;
	for (;;) {
		struct pm_wal_record rec;
		size_t used = 0;
		enum pm_wal_scan_result r = pm_wal_scan_next(buf + off, size - off, c->want, &rec, &used);
		if (r == PM_WAL_RECORD) {
			if (rec.lsn > c->skip)
				replay(w, &rec, now);
			c->want++;
			off += used;
			continue;
		}
		if (r == PM_WAL_CORRUPT && !w->d->cfg.wal_truncate_corrupt) {
			munmap(buf, size);
			return pm_errf(err, errlen, "%s: corrupt record at offset %zu (expected LSN %" PRIu64
				       "): refusing to start; wal_truncate_corrupt = yes drops the log"
				       " from there", path, off, c->want);
		}
		if (r != PM_WAL_END) {
			fprintf(stderr, "pomaid: shard %u: %s: %s at offset %zu (LSN %" PRIu64 "):"
					" truncated there\n", w->id, path,
				r == PM_WAL_TORN ? "torn tail" : "corruption", off, c->want);
			l->st.torn_truncated++;
			c->cut = r == PM_WAL_CORRUPT;
			if (zero_from(path, buf, size, off) != 0) {
				munmap(buf, size);
				return pm_errf(err, errlen, "%s: cannot clear its tail: %s", path,
					       strerror(errno));
			}
		}
		break;
	}
	munmap(buf, size);
	c->end = off;
	return 0;
}

/* Segments of at most this many per shard are recovered. */
#define SEGMENTS_MAX 65536

/* Replay the log after the snapshot loaded (its start LSN: snap_lsn, 0 for
 * none); segments wholly before it are deleted. */
static int recover(struct pm_worker *w, uint64_t snap_lsn, char *err, size_t errlen)
{
	struct pm_wal *l = w->wal;
	static uint64_t firsts[SEGMENTS_MAX];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int n = pm_wal_list_segments(l->dir, firsts, SEGMENTS_MAX);
	struct scan_ctx c = { .skip = snap_lsn };
	int last = -1;
	for (int i = 0; i < n; i++) {
		char path[PATH_BYTES];
		seg_path(l, firsts[i], path);
		if (c.cut) { /* after an approved cut nothing later is trusted */
			fprintf(stderr, "pomaid: shard %u: %s removed (after the cut)\n", w->id, path);
			unlink(path);
			continue;
		}
		if (i + 1 < n && firsts[i + 1] <= snap_lsn + 1) { /* wholly in the snapshot */
			pm_wal_retire(w, firsts[i]);
			continue;
		}
		if (last < 0 && firsts[i] > snap_lsn + 1)
			return pm_errf(err, errlen, "%s: the log starts at LSN %" PRIu64 " but the snapshot"
				       " ends at %" PRIu64 ": records in between are missing", path,
				       firsts[i], snap_lsn);
		if (replay_segment(w, firsts[i], &c, err, errlen) != 0)
			return -1;
		last = i;
	}
	l->next_lsn = PM_MAX(c.want ? c.want : 1, snap_lsn + 1);
	if (last >= 0 && c.want <= snap_lsn) {
		/* the log ends inside the snapshot (a batch-mode machine crash lost its
		 * last unsynced writes): new records start a new segment after it */
		last = -1;
	}
	if (last >= 0) {
		char path[PATH_BYTES];
		seg_path(l, firsts[last], path);
		l->fd = open(path, O_WRONLY | O_CLOEXEC);
		if (l->fd < 0)
			return pm_errf(err, errlen, "%s: %s", path, strerror(errno));
		struct stat sb;
		fstat(l->fd, &sb);
		l->seg_bytes = PM_MAX(l->seg_bytes, (uint64_t)sb.st_size);
		l->seg_off = c.end;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* signed: the nanoseconds' difference may be negative */
	l->st.recovery_ms = (uint64_t)(((int64_t)t1.tv_sec - t0.tv_sec) * 1000 +
				       ((int64_t)t1.tv_nsec - t0.tv_nsec) / 1000000);
	if (n > 0)
		printf("pomaid: shard %u: recovered %" PRIu64 " records from %d segment(s) in %" PRIu64
		       " ms\n", w->id, l->st.recovered_records, n, l->st.recovery_ms);
	return 0;
}

/* ---------------------------------------------------------------- open, close */

int pm_mkdir_p(char *path)
{
	for (char *p = path + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			int rc = mkdir(path, 0750) && errno != EEXIST;
			*p = '/';
			if (rc)
				return -1;
		}
	return mkdir(path, 0750) && errno != EEXIST ? -1 : 0;
}

/* io_uring's kernel workers (which do the blocking write and fsync) run
 * anywhere but on this worker's own CPU: a polling worker would starve them. */
static void iowq_affinity(struct pm_worker *w)
{
	cpu_set_t cpus;
	if (w->cpu < 0 || sched_getaffinity(0, sizeof(cpus), &cpus) != 0)
		return;
	CPU_CLR(w->cpu, &cpus);
	if (CPU_COUNT(&cpus) > 0)
		(void)io_uring_register_iowq_aff(&w->wal->ring, sizeof(cpus), &cpus);
}

static int open_ring(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	if (!w->d->cfg.wal_uring) {
		if (w->id == 0)
			printf("pomaid: wal_io = pwrite: log writes and fsyncs run on the worker threads\n");
		return 0;
	}
	int rc = io_uring_queue_init(PM_WAL_QUEUE_DEPTH, &l->ring, 0);
	if (rc != 0) {
		if (w->id == 0)
			fprintf(stderr, "pomaid: io_uring unavailable (%s): WAL writes and fsyncs run on"
					" the worker threads (pwrite + fdatasync), which then wait for"
					" the disk\n", strerror(-rc));
		return 0;
	}
	l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->efd < 0 || io_uring_register_eventfd(&l->ring, l->efd) != 0) {
		io_uring_queue_exit(&l->ring);
		return -1;
	}
	l->uring = true;
	iowq_affinity(w);
	return 0;
}

int pm_wal_open(struct pm_worker *w, char *err, size_t errlen)
{
	const struct pm_config *cfg = &w->d->cfg;
	if (cfg->wal == PM_WAL_NONE)
		return 0;
	struct pm_wal *l = calloc(1, sizeof(*l));
	if (!l)
		return pm_errf(err, errlen, "out of memory");
	w->wal = l;
	l->mode = (enum pm_wal_mode)cfg->wal;
	l->fd = l->efd = -1;
	l->seg_bytes = cfg->wal_segment_bytes;
	l->next_seq = 1;
	l->b[0].buf = malloc(PM_WAL_BATCH_BYTES);
	l->b[1].buf = malloc(PM_WAL_BATCH_BYTES);
	l->held = calloc(PM_WAL_HELD_MAX, sizeof(*l->held));
	l->held_buf = malloc(PM_WAL_HELD_BYTES);
	if (!l->b[0].buf || !l->b[1].buf || !l->held || !l->held_buf)
		return pm_errf(err, errlen, "out of memory for the WAL buffers");
	snprintf(l->dir, sizeof(l->dir), "%s/wal/shard-%u", cfg->data_dir, w->id);
	if (pm_mkdir_p(l->dir) != 0)
		return pm_errf(err, errlen, "%s: %s", l->dir, strerror(errno));
	uint64_t snap_lsn = 0;
	if (pm_snap_recover(w, &snap_lsn, err, errlen) != 0 || recover(w, snap_lsn, err, errlen) != 0)
		return -1;
	l->durable_lsn = l->next_lsn - 1;
	if (open_ring(w) != 0)
		return pm_errf(err, errlen, "shard %u: io_uring eventfd: %s", w->id, strerror(errno));
	l->last_fsync_ms = pm_wall_ms();
	return 0;
}

void pm_wal_close(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	if (!l)
		return;
	pm_snap_close(w);
	if (l->uring) {
		io_uring_queue_exit(&l->ring);
		close(l->efd);
	}
	if (l->fd >= 0)
		close(l->fd);
	free(l->b[0].buf);
	free(l->b[1].buf);
	free(l->held);
	free(l->held_buf);
	free(l);
	w->wal = NULL;
}

uint32_t pm_wal_info(const struct pm_worker *w, char *out, uint32_t cap)
{
	const struct pm_wal *l = w->wal;
	if (!l)
		return 0;
	static const char *const modes[] = { "none", "batch", "sync" };
	static const char *const states[] = { "ok", "disk_full", "failed" };
	const struct pm_wal_stats *s = &l->st;
	int n = snprintf(out, cap,
			 "# WAL\r\nwal_mode:%s\r\nwal_state:%s\r\nwal_io:%s\r\nwal_next_lsn:%" PRIu64
			 "\r\nwal_records:%" PRIu64 "\r\nwal_bytes:%" PRIu64 "\r\nwal_batches:%" PRIu64
			 "\r\nwal_fsyncs:%" PRIu64 "\r\nwal_resubmits:%" PRIu64 "\r\nwal_held:%" PRIu64
			 "\r\nwal_held_max:%" PRIu64 "\r\nwal_refused_disk_full:%" PRIu64
			 "\r\nwal_refused_failed:%" PRIu64 "\r\nwal_refused_busy:%" PRIu64
			 "\r\nwal_evictions:%" PRIu64 "\r\nwal_evict_refused:%" PRIu64
			 "\r\nwal_segments_created:%" PRIu64 "\r\nwal_segments_recycled:%" PRIu64
			 "\r\nwal_segments_retired:%" PRIu64 "\r\nwal_segments_deleted:%" PRIu64
			 "\r\nwal_recovered_records:%" PRIu64
			 "\r\nwal_recovery_ms:%" PRIu64 "\r\nwal_torn_truncated:%" PRIu64 "\r\n",
			 modes[l->mode], states[l->state], l->uring ? "io_uring" : "pwrite",
			 l->next_lsn, s->records, s->bytes, s->batches, s->fsyncs, s->resubmits, s->held,
			 s->held_max, s->refused_full, s->refused_failed, s->refused_busy, s->evictions,
			 s->evict_refused, s->segments,
			 s->recycled, s->retired, s->deleted,
			 s->recovered_records, s->recovery_ms, s->torn_truncated);
	if (n < 0 || (uint32_t)n >= cap)
		return 0;
	return (uint32_t)n + pm_snap_info(w, out + n, cap - (uint32_t)n);
}

void pm_wal_counters(const struct pm_worker *w, struct pm_stats_shard *s)
{
	const struct pm_wal *l = w->wal;
	if (!l)
		return;
	s->wal_records = l->st.records;
	s->wal_bytes = l->st.bytes;
	s->wal_fsyncs = l->st.fsyncs;
	s->wal_lag_records = l->next_lsn - 1 - l->durable_lsn;
	s->wal_held = l->st.held;
}
