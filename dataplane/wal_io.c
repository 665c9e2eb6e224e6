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
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "common.h"
#include "datadir.h"
#include "msg.h"
#include "repl_io.h"
#include "shard.h"
#include "snap_io.h"
#include "snapshot.h"
#include "wal.h"
#include "wal_impl.h"
#include "wal_io.h"
#include "worker.h"

uint64_t pm_wall_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* Zeros: a torn tail cleared, a segment written ahead (fill), the probe's file. */
static const uint8_t zero_chunk[ZERO_CHUNK_BYTES];
_Static_assert(PM_WAL_FILL_CHUNK_BYTES <= ZERO_CHUNK_BYTES, "a fill writes from zero_chunk");
_Static_assert(2u * PM_WAL_PROBE_ROUNDS * PM_WAL_PROBE_BYTES <= ZERO_CHUNK_BYTES,
	       "the probe's file is written from zero_chunk");
_Static_assert(PM_WAL_FILL_AHEAD_BYTES >= 2u * PM_WAL_BATCH_BYTES,
	       "the fill stays a batch ahead of the next batch");

/* ---------------------------------------------------------------- segments */

/* The name of the segment whose first record is first_lsn. */
void pm_wal_seg_name(uint64_t first_lsn, char *out)
{
	snprintf(out, NAME_BYTES, "%020" PRIu64 ".wal", first_lsn);
}

/* The name a new file is made under until it becomes a segment: a spare. */
#define NEW_SPARE_NAME "next.spare"

/* The spare segments (regular files named *.spare) in the directory, read
 * once at start-up into l->spare (the first PM_WAL_SPARE_SEGMENTS + 1; more
 * are left alone, as before). Something else named NEW_SPARE_NAME (a link,
 * say) is removed: that name is made with O_EXCL. From then on the worker
 * keeps the list itself: a prepared segment takes one, a retired segment
 * gives one. */
static void scan_spares(struct pm_wal *l)
{
	DIR *d = pm_datadir_list(l->dirfd);
	l->nspares = 0;
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		const char *dot = strrchr(e->d_name, '.');
		size_t len = strlen(e->d_name);
		if (!dot || strcmp(dot, ".spare") || len >= NAME_BYTES)
			continue;
		if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN) {
			if (!strcmp(e->d_name, NEW_SPARE_NAME))
				(void)unlinkat(l->dirfd, e->d_name, 0);
			continue;
		}
		if (l->nspares <= PM_WAL_SPARE_SEGMENTS)
			memcpy(l->spare[l->nspares++], e->d_name, len + 1); /* len < NAME_BYTES */
	}
	if (d)
		closedir(d);
}

/* Spares on disk or on their way: the known ones, the renames in flight, and
 * the next segment while it is prepared (under a .spare name until its
 * switch), as a listing of *.spare files counted them. */
static uint32_t spares_held(const struct pm_wal *l)
{
	return l->nspares + l->spares_coming + (l->prep != PREP_NONE);
}

static void spare_add(struct pm_wal *l, const char *name)
{
	for (uint32_t i = 0; i < l->nspares; i++)
		if (!strcmp(l->spare[i], name))
			return;
	if (l->nspares <= PM_WAL_SPARE_SEGMENTS)
		snprintf(l->spare[l->nspares++], NAME_BYTES, "%s", name);
}

/* A named segment joins the list (kept sorted: LSNs only grow, but start
 * over after a replica's full sync, which retires every segment first). */
static void seg_named(struct pm_wal *l, uint64_t first_lsn)
{
	uint32_t i = l->nsegs;
	if (i == PM_WAL_SEGMENTS_MAX)
		return; /* a log of 65,536 segments: the oldest are still on disk */
	while (i > 0 && l->segs[i - 1] > first_lsn) {
		l->segs[i] = l->segs[i - 1];
		i--;
	}
	l->segs[i] = first_lsn;
	l->nsegs++;
}

/* A segment's name and the spare name it is retired under. */
static void retire_names(uint64_t first_lsn, char name[NAME_BYTES], char spare[NAME_BYTES])
{
	pm_wal_seg_name(first_lsn, name);
	snprintf(spare, NAME_BYTES, "%020" PRIu64 ".spare", first_lsn);
}

/* Retire one segment here and now: at start-up, and without io_uring. */
static void retire_here(struct pm_worker *w, uint64_t first_lsn)
{
	struct pm_wal *l = w->wal;
	char name[NAME_BYTES], spare[NAME_BYTES];
	retire_names(first_lsn, name, spare);
	/* never over another file: a spare of that name may be the next segment
	 * being prepared (LSNs start over after a replica's full sync) */
	if (spares_held(l) < PM_WAL_SPARE_SEGMENTS &&
	    renameat2(l->dirfd, name, l->dirfd, spare, RENAME_NOREPLACE) == 0) {
		l->st.retired++;
		spare_add(l, spare);
	} else {
		pm_snap_unlink(w, l->dirfd, name, true); /* counted in deleted when it is gone */
	}
}

void pm_wal_retire_step(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	while (l && l->nretiring > 0) {
		uint64_t first = l->retiring[l->nretiring - 1];
		if (!l->uring) {
			retire_here(w, first);
		} else {
			if (!pm_snap_slot_free(w))
				return; /* a later turn goes on */
			char name[NAME_BYTES], spare[NAME_BYTES];
			retire_names(first, name, spare);
			if (spares_held(l) < PM_WAL_SPARE_SEGMENTS) {
				if (!pm_snap_rename_spare(w, name, spare))
					return;
				l->spares_coming++;
			} else if (!pm_snap_unlink(w, l->dirfd, name, true)) {
				return;
			}
		}
		l->nretiring--;
	}
}

void pm_wal_retired(struct pm_worker *w, const char *seg, const char *spare, int res)
{
	struct pm_wal *l = w->wal;
	l->spares_coming--;
	if (res == 0) {
		l->st.retired++;
		spare_add(l, spare);
	} else { /* a file of that name is there (or another error): the segment goes */
		pm_snap_unlink(w, l->dirfd, seg, true);
	}
}

void pm_wal_retire_below(struct pm_worker *w, uint64_t keep)
{
	struct pm_wal *l = w->wal;
	uint32_t k = 0; /* segments that go: the oldest k */
	if (keep == UINT64_MAX)
		k = l->nsegs;
	else
		while (k + 1 < l->nsegs && l->segs[k + 1] <= keep)
			k++;
	/* retiring is a stack: the newest first in, so the oldest goes first */
	for (uint32_t i = k; i > 0 && l->nretiring < PM_WAL_SEGMENTS_MAX; i--)
		l->retiring[l->nretiring++] = l->segs[i - 1];
	memmove(l->segs, l->segs + k, (size_t)(l->nsegs - k) * sizeof(*l->segs));
	l->nsegs -= k;
	pm_wal_retire_step(w);
}

/* ---------------------------------------------------------------- the next segment */

/* The next segment is prepared as soon as the current one is in use, so a
 * switch never waits for the file system: a spare is zeroed in place
 * (FALLOC_FL_ZERO_RANGE; where the file system lacks it, its blocks punched
 * out and allocated again) so that its old records read as the end of the
 * log, or a new file is created and allocated (fallocate); then fdatasync.
 * It keeps a .spare name until the switch gives it a segment name, so a
 * crash never leaves stale records under a live name. With io_uring each step
 * is a request to the worker's ring (run by its kernel workers, off the
 * polling CPU) and the next is issued from its completion; without io_uring
 * they run on the worker thread, as the log's writes then do. */

static void prep_issue(struct pm_worker *w);

/* Bytes of the next segment written with zeros before it is used (sync mode). */
static uint64_t prep_fill_bytes(const struct pm_wal *l)
{
	return PM_MIN((uint64_t)PM_WAL_FILL_AHEAD_BYTES, l->seg_bytes);
}

/* A step failed: said once (not at every retry), tried again later. A
 * half-made file keeps its .spare name: the next attempt takes it as a spare. */
static void prep_fail(struct pm_worker *w, int res)
{
	struct pm_wal *l = w->wal;
	if (res != l->prep_err)
		fprintf(stderr, "pomaid: shard %u: preparing the next WAL segment (%s/%s): %s;"
				" tried again every %u ms\n", w->id, l->dir, l->prep_name,
			strerror(-res), PM_WAL_RETRY_MS);
	/* the file, made or half-made, is a spare for the next attempt; one the
	 * open could not make is not there */
	if ((l->prep_spare && res != -ENOENT) || l->prep_fd >= 0)
		spare_add(l, l->prep_name);
	if (l->prep_fd >= 0)
		close(l->prep_fd);
	l->prep_fd = -1;
	l->prep_err = res;
	l->prep = PREP_NONE;
	l->prep_retry_ms = w->now_ms + PM_WAL_RETRY_MS;
}

/* The current step completed with res: on to the next one. */
static void prep_step(struct pm_worker *w, int res)
{
	struct pm_wal *l = w->wal;
	struct stat sb;
	l->prep_inflight = false;
	if (l->prep == PREP_UNLINK && res == -ENOENT)
		res = 0; /* gone already: as good */
	if (res < 0 && l->prep == PREP_ZERO) { /* no ZERO_RANGE here (tmpfs): punch it out */
		l->prep = PREP_PUNCH;
	} else if (res < 0 && l->prep == PREP_PUNCH) { /* nor that: a new file instead (rare) */
		close(l->prep_fd);
		l->prep_fd = -1;
		l->prep = PREP_UNLINK;
	} else if (res < 0) {
		prep_fail(w, res);
		return;
	} else if (l->prep == PREP_OPEN) {
		l->prep_fd = res;
		if (fstat(res, &sb) != 0 || !S_ISREG(sb.st_mode)) {
			prep_fail(w, -EINVAL);
			return;
		}
		/* a spare from a run with larger segments is zeroed whole */
		l->prep_bytes = PM_MAX(l->seg_bytes, (uint64_t)sb.st_size);
		l->prep = l->prep_spare ? PREP_ZERO : PREP_ALLOC;
	} else if (l->prep == PREP_UNLINK) { /* the spare is gone: made anew under its name */
		l->prep_spare = false;
		l->prep = PREP_OPEN;
	} else if (l->prep == PREP_PUNCH) {
		l->prep = PREP_ALLOC;
	} else if (l->prep == PREP_ZERO || l->prep == PREP_ALLOC) {
		l->prep = l->fill_ahead ? PREP_FILL : PREP_SYNC;
	} else if (l->prep == PREP_FILL) {
		if (res == 0) { /* no progress: as an error */
			prep_fail(w, -EIO);
			return;
		}
		l->prep_filled += (uint64_t)res;
		l->st.fill_bytes += (uint64_t)res;
		if (l->prep_filled >= prep_fill_bytes(l))
			l->prep = PREP_SYNC;
	} else { /* PREP_SYNC */
		l->prep = PREP_READY;
		l->prep_err = 0;
		return;
	}
	prep_issue(w);
}

/* Issue the current step: to the ring, or here and now without io_uring. */
static void prep_issue(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	int flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (l->prep_spare ? 0 : O_CREAT | O_EXCL);
	int mode = l->prep == PREP_ZERO	 ? FALLOC_FL_ZERO_RANGE
		   : l->prep == PREP_PUNCH ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
					   : 0;
	PM_ASSERT(l->prep != PREP_NONE && l->prep != PREP_READY && !l->prep_inflight);
	uint32_t fill = (uint32_t)PM_MIN(prep_fill_bytes(l) - l->prep_filled,
					 (uint64_t)PM_WAL_FILL_CHUNK_BYTES);
	if (!l->uring) {
		ssize_t rc = l->prep == PREP_OPEN   ? openat(l->dirfd, l->prep_name, flags, 0640)
			   : l->prep == PREP_UNLINK ? unlinkat(l->dirfd, l->prep_name, 0)
			   : l->prep == PREP_SYNC   ? fdatasync(l->prep_fd)
			   : l->prep == PREP_FILL   ? pwrite(l->prep_fd, zero_chunk, fill,
							     (off_t)l->prep_filled)
						    : fallocate(l->prep_fd, mode, 0, (off_t)l->prep_bytes);
		prep_step(w, rc < 0 ? -errno : (int)rc);
		return;
	}
	struct io_uring_sqe *s = io_uring_get_sqe(&l->ring);
	if (!s)
		return; /* the ring is full: the next turn issues it */
	if (l->prep == PREP_FILL)
		io_uring_prep_write(s, l->prep_fd, zero_chunk, fill, l->prep_filled);
	else if (l->prep == PREP_OPEN)
		io_uring_prep_openat(s, l->dirfd, l->prep_name, flags, 0640);
	else if (l->prep == PREP_UNLINK)
		io_uring_prep_unlinkat(s, l->dirfd, l->prep_name, 0);
	else if (l->prep == PREP_SYNC)
		io_uring_prep_fsync(s, l->prep_fd, IORING_FSYNC_DATASYNC);
	else
		io_uring_prep_fallocate(s, l->prep_fd, mode, 0, (off_t)l->prep_bytes);
	io_uring_sqe_set_data64(s, OP_PREP);
	io_uring_submit(&l->ring);
	l->prep_inflight = true;
}

/* Start preparing the next segment: from a spare if there is one. */
static void prep_start(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	PM_ASSERT(l->prep == PREP_NONE && l->prep_fd < 0);
	l->prep_spare = l->nspares > 0;
	l->prep_filled = 0;
	if (l->prep_spare) /* taken: a failure puts it back (prep_fail) */
		memcpy(l->prep_name, l->spare[--l->nspares], NAME_BYTES);
	else
		snprintf(l->prep_name, sizeof(l->prep_name), "%s", NEW_SPARE_NAME);
	l->prep = PREP_OPEN;
	prep_issue(w);
}

/* Make the prepared segment the current one, for records from first_lsn: its
 * header written (to the page cache) and its segment name given — nothing
 * here waits for the disk. What makes the switch durable goes first and last
 * in the chain of the batch's write (submit_write): the previous segment's
 * last fdatasync (batch mode; sync mode synced it with its last batch), and
 * the directory's fsync. A crash before the header reaches the disk leaves a
 * segment without header or records, which recovery removes. 0 or -errno. */
static int seg_switch(struct pm_worker *w, uint64_t first_lsn)
{
	struct pm_wal *l = w->wal;
	uint8_t hdr[PM_WAL_SEGMENT_HEADER_BYTES];
	char name[NAME_BYTES];
	struct pm_wal_segment_header h = { .version = PM_WAL_VERSION, .shard = w->id,
					   .first_lsn = first_lsn };
	PM_ASSERT(l->prep == PREP_READY && l->seal_fd < 0 && !l->bfsync_inflight && !l->behind_n);
	pm_wal_segment_header_encode(&h, hdr);
	pm_wal_seg_name(first_lsn, name);
	if (pwrite(l->prep_fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) /* the page cache */
		return -errno;
	if (!l->uring) { /* at start-up, or the documented fallback: here and now */
		if (renameat(l->dirfd, l->prep_name, l->dirfd, name) != 0)
			return -errno;
		seg_named(l, first_lsn);
	} else { /* first in the next chain, after the seal (submit_write) */
		memcpy(l->seg_from, l->prep_name, NAME_BYTES);
		memcpy(l->seg_to, name, NAME_BYTES);
		l->seg_to_lsn = first_lsn;
		l->seg_rename = true;
	}
	if (l->fd >= 0 && l->mode == PM_WAL_BATCH && l->dirty)
		l->seal_fd = l->fd; /* closed once its fdatasync completes */
	else if (l->fd >= 0)
		close(l->fd);
	l->dirty = false;
	l->fd = l->prep_fd;
	l->prep_fd = -1;
	l->prep = PREP_NONE;
	l->seg_first = first_lsn;
	l->seg_off = PM_WAL_SEGMENT_HEADER_BYTES;
	l->fill_off = PM_MAX(l->prep_filled, l->seg_off);
	l->dirsync = true;
	l->st.segments++;
	l->st.recycled += l->prep_spare;
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

static struct held *held_push(struct pm_worker *w, const uint8_t *bytes, uint32_t len)
{
	struct pm_wal *l = w->wal;
	struct held *h = &l->held[l->held_tail++ % PM_WAL_HELD_MAX];
	uint64_t tag = l->b[l->fill].len ? l->next_seq : l->next_seq - 1; /* filling, or in flight */
	*h = (struct held){ .seq = tag, .lsn = l->next_lsn - 1, .ms = w->now_ns / 1000000u,
			    .off = l->held_used, .len = len };
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
		p[PM_FRAME_STATUS_OFFSET] = pm_status_to_wire(st);
	if (h->type)
		pm_post(w, h->to_worker, h->type, &h->msg, p, h->len);
	else
		pm_deliver_frames(w, &h->dest, p, h->len);
}

/* Release every held item whose batch is durable and, with repl_ack, that
 * min_replicas replicas acknowledged (all of them with st != OK). One that
 * waited for replicas past repl_ack_timeout_ms leaves as NOREPLICAS. */
static uint32_t held_release(struct pm_worker *w, enum pm_status st)
{
	struct pm_wal *l = w->wal;
	uint32_t n = 0;
	bool repl = st == PM_OK && pm_repl_must_hold(w);
	uint64_t acked = repl ? pm_repl_acked_lsn(w) : 0;
	while (l->held_head != l->held_tail) {
		struct held *h = &l->held[l->held_head % PM_WAL_HELD_MAX];
		enum pm_status hs = st;
		if (st == PM_OK && h->seq > l->durable_seq)
			break;
		if (repl && h->lsn > acked) {
			if (w->now_ns / 1000000u - h->ms < w->d->cfg.repl_ack_timeout_ms)
				break;
			hs = PM_E_NOREPLICAS; /* applied and logged here; not confirmed in time */
			l->st.repl_timeouts++;
		}
		held_send(w, h, hs);
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
	bool refused = st == PM_E_DISK_FULL || st == PM_E_LOG_FAILED || st == PM_E_BUSY ||
		       st == PM_E_READONLY || st == PM_E_NOREPLICAS;
	/* a VADD batch is logged as its items' VADD records (issue 18) */
	if (!l || l->mode == PM_WAL_NONE || !(pm_wal_logs(op) || op == PM_OP_VADDB) || refused)
		return false;
	return (l->mode == PM_WAL_SYNC && (l->b[l->fill].len || l->inflight || l->behind_n)) ||
	       pm_repl_must_hold(w);
}

void pm_wal_hold_reply(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
		       uint32_t len)
{
	struct pm_wal *l = w->wal;
	if (!held_room(l, len)) { /* admit() keeps this from happening; never send early */
		l->st.refused_busy++;
		return;
	}
	held_push(w, frames, len)->dest = *to;
}

void pm_wal_hold_msg(struct pm_worker *w, uint32_t to, uint32_t type, const struct pm_msg *m,
		     const uint8_t *body, uint32_t len)
{
	struct pm_wal *l = w->wal;
	if (!held_room(l, len)) {
		l->st.refused_busy++;
		return;
	}
	struct held *h = held_push(w, body, len);
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
	b->last_off = b->len;
	b->len += (uint32_t)n;
	l->next_lsn++;
	l->st.records++;
}

bool pm_wal_evict_log(void *ctx, const uint8_t *key, uint32_t klen)
{
	struct pm_worker *w = ctx;
	struct pm_wal *l = w->wal;
	if (!pm_repl_takes_writes(w)) {
		if (l) /* a replica's log is its primary's: it never evicts */
			l->st.evict_refused++;
		return false;
	}
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

/* ---------------------------------------------------------------- test hooks */

static void complete(struct pm_worker *w, uint64_t ud, int res);
static void fill_done(struct pm_worker *w, unsigned op, int res);

#ifdef PM_WAL_TEST_HOOKS
/* POMAI_TEST_FSYNC (debug builds only; compiled out under NDEBUG), read at
 * start-up: "fail" turns every successful fsync completion of the log (a
 * batch's, batch mode's, a segment switch's) into -EIO; "stall" (io_uring
 * only) holds each one back, unprocessed, until the process gets SIGUSR1,
 * which releases every held completion of every shard. Tests use them to see
 * that no sync-mode reply leaves before its fsync completes. "step" (io_uring
 * only) holds back the completions of batches' fdatasyncs (OP_FSYNC) only,
 * and each signal each worker sees releases its oldest one: SIGUSR1 as it
 * was, SIGUSR2 failed with EIO (a signal seen with nothing held is spent;
 * signals sent together may count once: a test waits for each one's effect). */
static atomic_uint test_releases, test_fails;

static void test_on_sigusr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&test_releases, 1u);
}

static void test_on_sigusr2(int sig)
{
	(void)sig;
	atomic_fetch_add(&test_fails, 1u);
}

static void test_open(struct pm_worker *w)
{
	struct test_hook *t = &w->wal->test;
	const char *v = getenv("POMAI_TEST_FSYNC");
	t->fsync = !v				 ? TEST_FSYNC_OFF
		   : !strcmp(v, "stall") && w->wal->uring ? TEST_FSYNC_STALL
		   : !strcmp(v, "step") && w->wal->uring ? TEST_FSYNC_STEP
		   : !strcmp(v, "fail")		 ? TEST_FSYNC_FAIL
							 : TEST_FSYNC_OFF;
	if (v && w->id == 0)
		printf("pomaid: TEST HOOK POMAI_TEST_FSYNC=%s: %s\n", v,
		       t->fsync == TEST_FSYNC_STALL ? "the log's fsync completions are held until SIGUSR1"
		       : t->fsync == TEST_FSYNC_STEP ? "the log's fsync completions of batches are held,"
						       " the oldest released by SIGUSR1 (as it was) or"
						       " SIGUSR2 (failed)"
		       : t->fsync == TEST_FSYNC_FAIL ? "the log's fsyncs fail with EIO"
						      : "not understood (stall and step need io_uring): ignored");
	const char *e = getenv("POMAI_TEST_WAL_ENOSPC");
	t->enospc_left = e ? (uint32_t)strtoul(e, NULL, 10) : 0;
	if (e && w->id == 0)
		printf("pomaid: TEST HOOK POMAI_TEST_WAL_ENOSPC=%u: each shard's first %u batch writes"
		       " fail with ENOSPC\n", t->enospc_left, t->enospc_left);
	const char *a = getenv("POMAI_TEST_WAL_ADAPT");
	t->adapt = !a			      ? TEST_ADAPT_OFF
		   : !strcmp(a, "ring_slow")  ? TEST_ADAPT_RING_SLOW
		   : !strcmp(a, "pwrite_slow") ? TEST_ADAPT_PWRITE_SLOW
					       : TEST_ADAPT_OFF;
	if (a && w->id == 0)
		printf("pomaid: TEST HOOK POMAI_TEST_WAL_ADAPT=%s: %s\n", a,
		       t->adapt == TEST_ADAPT_OFF ? "not understood: ignored"
						  : "batches written that way count as 50 ms slower");
	if ((t->fsync == TEST_FSYNC_STALL || t->fsync == TEST_FSYNC_STEP) && w->id == 0) {
		struct sigaction sa = { .sa_handler = test_on_sigusr1, .sa_flags = SA_RESTART };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR1, &sa, NULL);
		sa.sa_handler = test_on_sigusr2;
		sigaction(SIGUSR2, &sa, NULL);
	}
}

static bool test_is_fsync(unsigned op)
{
	return op == OP_FSYNC || op == OP_BFSYNC || op == OP_SEAL || op == OP_DIRSYNC;
}

/* A completion (or, without io_uring, a call's result): true if the stall
 * holds it back; with "fail" a success becomes -EIO. */
static bool test_fsync_hook(struct pm_wal *l, uint64_t ud, int *res)
{
	struct test_hook *t = &l->test;
	if (t->fsync == TEST_FSYNC_OFF || !test_is_fsync((unsigned)(ud & OP_MASK)) ||
	    (t->fsync == TEST_FSYNC_STEP && (ud & OP_MASK) != OP_FSYNC))
		return false;
	if (t->fsync == TEST_FSYNC_FAIL) {
		*res = *res == 0 ? -EIO : *res;
		return false;
	}
	PM_ASSERT(t->held < TEST_HELD_MAX); /* a chain, a batch fsync, PM_WAL_SYNCS_BEHIND_MAX */
	t->ud[t->held] = ud;
	t->res[t->held++] = *res;
	return true;
}

/* POMAI_TEST_WAL_ENOSPC: a batch write that went through is reported
 * -ENOSPC (what a disk without room says); its retry writes the same bytes
 * again at the same offset. */
static void test_write_hook(struct pm_wal *l, unsigned op, int *res)
{
	if (op == OP_WRITE && *res > 0 && l->test.enospc_left) {
		l->test.enospc_left--;
		*res = -ENOSPC;
	}
}

/* Process every held completion, as if it had just arrived. */
static void test_release(struct pm_worker *w)
{
	struct test_hook *t = &w->wal->test;
	uint32_t n = t->held;
	t->releases_seen = atomic_load(&test_releases);
	t->held = 0;
	for (uint32_t i = 0; i < n; i++)
		complete(w, t->ud[i], t->res[i]);
}

/* step: a signal not seen yet releases the oldest held completion. */
static void test_step(struct pm_worker *w)
{
	struct test_hook *t = &w->wal->test;
	unsigned rel = atomic_load(&test_releases), fail = atomic_load(&test_fails);
	bool failed = rel == t->releases_seen;
	if (rel == t->releases_seen && fail == t->fails_seen)
		return;
	if (failed)
		t->fails_seen = fail;
	else
		t->releases_seen = rel; /* one per turn: a SIGUSR2 seen with it is taken next turn */
	if (t->held == 0)
		return;
	uint64_t ud = t->ud[0];
	int res = t->res[0];
	t->held--;
	memmove(t->ud, t->ud + 1, t->held * sizeof(t->ud[0]));
	memmove(t->res, t->res + 1, t->held * sizeof(t->res[0]));
	complete(w, ud, failed && res == 0 ? -EIO : res);
}
#endif

/* ---------------------------------------------------------------- submission */

/* One request of a batch's chain: what (OP_*), on which file; and, without
 * io_uring, its result. */
struct link {
	unsigned op;
	int fd, res;
};

static void submit_write_here(struct pm_worker *w, const uint8_t *p, uint32_t n, uint64_t off);

/* Submit the batch in flight (or its rest: written bytes are not written
 * again) as one chain of linked requests: the previous segment's fdatasync
 * (after a switch in batch mode), the new segment's rename to its name
 * (after a switch), the write, its fdatasync (sync mode), the directory's
 * fsync (after a switch). A failed link cancels the rest. */
static bool submit_write(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	struct batch *b = &l->b[l->fill ^ 1];
	const uint8_t *p = b->buf + l->written;
	uint32_t n = b->len - l->written;
	uint64_t off = l->seg_off + l->written;
	bool sync = l->mode == PM_WAL_SYNC;
	l->err = 0;
	l->fsync_ok = !sync;
	/* without a ring (the documented fallback), or chosen by the probe
	 * (probe_io): on this thread — but a segment switch's chain (a rename,
	 * the directory's fsync) goes to the ring all the same */
	if (!l->uring ||
	    (l->batch_here != l->adapt_trial && l->seal_fd < 0 && !l->seg_rename && !l->dirsync)) {
		submit_write_here(w, p, n, off);
		return true;
	}
	struct link chain[5];
	uint32_t k = 0;
	if (l->seal_fd >= 0)
		chain[k++] = (struct link){ .op = OP_SEAL, .fd = l->seal_fd };
	if (l->seg_rename)
		chain[k++] = (struct link){ .op = OP_RENAME, .fd = l->dirfd };
	chain[k++] = (struct link){ .op = OP_WRITE, .fd = l->fd };
	if (sync)
		chain[k++] = (struct link){ .op = OP_FSYNC, .fd = l->fd };
	if (l->dirsync)
		chain[k++] = (struct link){ .op = OP_DIRSYNC, .fd = l->dirfd };
	for (uint32_t i = 0; i < k; i++) {
		struct io_uring_sqe *s = io_uring_get_sqe(&l->ring);
		PM_ASSERT(s != NULL); /* the queue depth holds a chain and a batch fsync */
		if (chain[i].op == OP_WRITE)
			io_uring_prep_write(s, chain[i].fd, p, n, off);
		else if (chain[i].op == OP_RENAME) /* the names are read at submission */
			io_uring_prep_renameat(s, l->dirfd, l->seg_from, l->dirfd, l->seg_to, 0);
		else
			io_uring_prep_fsync(s, chain[i].fd, chain[i].op == OP_DIRSYNC ? 0
										 : IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(s, b->seq << OP_BITS | chain[i].op);
		if (i + 1 < k)
			s->flags |= IOSQE_IO_LINK;
	}
	l->cqes_left = k;
	io_uring_submit(&l->ring);
	return false;
}

/* Take the next segment for the filled batch if it needs one: 0 (go on),
 * or 1 (the batch waits: the segment is not ready yet, or the log is full). */
static int take_segment(struct pm_worker *w, struct batch *b)
{
	struct pm_wal *l = w->wal;
	if (l->fd >= 0 && l->seg_off + b->len <= l->seg_bytes)
		return 0;
	if (l->prep != PREP_READY) {
		if (l->prep == PREP_NONE && l->prep_err && !l->seg_waiting) {
			/* The last try failed, perhaps long ago: there may be room
			 * again (a write on this shard succeeding says nothing about
			 * the next segment). Try now; refuse only if this try fails. */
			l->st.segment_waits++;
			l->seg_waiting = true;
			prep_start(w);
			return 1;
		}
		if (l->prep == PREP_NONE && l->prep_err) { /* it could not be made: say why */
			l->state = l->prep_err == -ENOSPC || l->prep_err == -EDQUOT ? WAL_FULL : WAL_FAILED;
			l->retry_ms = l->prep_retry_ms;
			fprintf(stderr, "pomaid: shard %u: no next WAL segment: %s%s\n", w->id,
				strerror(-l->prep_err), l->state == WAL_FULL
								? " (writes refused until there is room)"
								: " (writes refused until restart)");
			return 1;
		}
		l->st.segment_waits += !l->seg_waiting; /* counted once per switch */
		l->seg_waiting = true;
		return 1;
	}
	if (l->bfsync_inflight || l->behind_n)
		return 1; /* the segment's fsyncs go first (its descriptor is closed after them) */
	int rc = seg_switch(w, b->first_lsn);
	if (rc != 0) {
		l->state = rc == -ENOSPC || rc == -EDQUOT ? WAL_FULL : WAL_FAILED;
		l->retry_ms = w->now_ms + PM_WAL_RETRY_MS;
		fprintf(stderr, "pomaid: shard %u: WAL segment switch: %s%s\n", w->id, strerror(-rc),
			l->state == WAL_FULL ? " (writes refused until there is room)"
					     : " (writes refused until restart)");
		return 1;
	}
	l->seg_waiting = false;
	return 0;
}

/* Start writing the filled batch (the queue depth holds its chain and one
 * batch fsync, so an SQE is always there); in sync mode, with fewer than
 * PM_WAL_SYNCS_BEHIND_MAX batches behind (pm_wal_turn). */
static void start_batch(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	struct batch *b = &l->b[l->fill];
	if (l->fill_hi && l->fill_lo < l->seg_off + b->len) {
		/* zeros on their way to where it would write (or it needs the next
		 * segment, and the fill holds the current one's descriptor): a turn */
		l->st.fill_waits++;
		return;
	}
	if (take_segment(w, b) != 0)
		return;
	b->seq = l->next_seq++;
	b->last_lsn = l->next_lsn - 1;
	/* where its records go: the batch is written whole at seg_off */
	l->tail_lsn = b->last_lsn;
	l->tail_seg = l->seg_first;
	l->tail_off = l->seg_off + b->last_off;
	if (l->mark_in_fill) {
		l->mark_seg = l->seg_first;
		l->mark_off = l->seg_off + l->mark_rel;
		l->mark_in_fill = false;
	}
	l->fill ^= 1;
	l->inflight = true;
	l->written = 0;
	l->submitted_lsn = b->last_lsn;
	l->st.sync_overlaps += l->behind_running > 0; /* written while an fdatasync runs */
	bool plain = l->seal_fd < 0 && !l->seg_rename && !l->dirsync; /* no switch in its chain */
	l->batch_t0 = l->adapt ? pm_mono_ns() : 0;
	l->batch_way_here = submit_write(w);
	l->batch_sample = l->adapt && plain;
	pm_repl_on_batch(w, b->buf, b->len, b->first_lsn, b->last_lsn); /* the live replicas' copy */
}

static const char *op_name(unsigned op)
{
	return op == OP_WRITE ? "write" : op == OP_FSYNC ? "fsync" : op == OP_SEAL ?
	       "fsync of the previous segment" : op == OP_DIRSYNC ? "fsync of its directory" :
	       op == OP_RENAME ? "rename of the new segment" : "I/O";
}

/* wal_io_uring = auto: one batch's time, from its submission to its replies'
 * release (ns), written on the worker (way_here) or through the ring. At the end
 * of a window a trial of the other way starts; at the end of a trial the way
 * with the lower mean is kept (pwrite only by PM_WAL_PROBE_PWRITE_PCT). */
static void adapt_note(struct pm_worker *w, bool way_here, uint64_t ns)
{
	struct pm_wal *l = w->wal;
#ifdef PM_WAL_TEST_HOOKS
	if (l->test.adapt == (way_here ? TEST_ADAPT_PWRITE_SLOW : TEST_ADAPT_RING_SLOW))
		ns += TEST_ADAPT_PENALTY_NS;
#endif
	l->adapt_ns[way_here] += ns;
	l->adapt_n[way_here]++;
	if (--l->adapt_left > 0)
		return;
	if (!l->adapt_trial) {
		l->adapt_trial = true;
		l->adapt_left = PM_WAL_ADAPT_TRIAL_BATCHES;
		return;
	}
	l->adapt_trial = false;
	if (l->adapt_n[0] && l->adapt_n[1]) {
		uint64_t ring = l->adapt_ns[0] / l->adapt_n[0], here = l->adapt_ns[1] / l->adapt_n[1];
		bool want_here = here * 100u < ring * PM_WAL_PROBE_PWRITE_PCT;
		l->adapt_ring_us = (uint32_t)PM_MIN(ring / 1000u, (uint64_t)UINT32_MAX);
		l->adapt_here_us = (uint32_t)PM_MIN(here / 1000u, (uint64_t)UINT32_MAX);
		if (want_here != l->batch_here) {
			l->batch_here = want_here;
			l->adapt_switches++;
			l->adapt_window = PM_WAL_ADAPT_WINDOW_MIN;
		} else {
			l->adapt_window = PM_MIN(2u * l->adapt_window, PM_WAL_ADAPT_WINDOW_MAX);
		}
	}
	l->adapt_ns[0] = l->adapt_ns[1] = l->adapt_n[0] = l->adapt_n[1] = 0;
	l->adapt_left = l->adapt_window;
}

/* ---------------------------------------------------------------- syncs behind */

/* Every batch whose write has completed enters `behind` (FIFO) and leaves it,
 * durable, once its fdatasync has completed (sync mode) and every earlier
 * batch has left: completions may come out of order (one fdatasync slower
 * than the next, or held back by a test hook), and a later fdatasync's
 * success says nothing of an earlier one that fails (Linux reports a
 * write-back error to one fsync of a file description). Sync mode through
 * the ring with wal_sync_overlap (detach_batch): a batch enters as soon as
 * its write has completed, its linked fdatasync still running, and the next
 * batch is written meanwhile — its own fdatasync, linked after its write,
 * starts once that write has completed. Otherwise a batch enters, done, once
 * its whole chain has completed, and leaves at once. */

static struct sync_wait *behind_at(struct pm_wal *l, uint32_t i)
{
	return &l->behind[(l->behind_head + i) % PM_WAL_SYNCS_BEHIND_MAX];
}

/* The entry of batch seq whose fdatasync is in flight, or NULL. */
static struct sync_wait *behind_find(struct pm_wal *l, uint64_t seq)
{
	for (uint32_t i = 0; i < l->behind_n; i++) {
		struct sync_wait *s = behind_at(l, i);
		if (s->seq == seq && !s->done)
			return s;
	}
	return NULL;
}

/* The batch in flight is written whole: it goes behind, its fdatasync done or not. */
static void batch_written(struct pm_worker *w, bool done)
{
	struct pm_wal *l = w->wal;
	struct batch *b = &l->b[l->fill ^ 1];
	PM_ASSERT(l->behind_n < PM_WAL_SYNCS_BEHIND_MAX); /* pm_wal_turn starts a batch below it */
	*behind_at(l, l->behind_n++) = (struct sync_wait){
		.seq = b->seq, .last_lsn = b->last_lsn, .here = l->batch_way_here,
		.t0 = l->batch_sample ? l->batch_t0 : 0, .done = done };
	l->batch_sample = false;
	l->seg_off += b->len;
	l->st.bytes += b->len;
	l->st.batches++;
	l->written_lsn = b->last_lsn;
	b->len = 0; /* its buffer is free: the next batch fills it */
	l->inflight = false;
	l->cqes_left = 0;
}

/* The batches at the head of `behind` whose fdatasync completed are durable:
 * their replies leave. Once the log has failed, every held reply leaves
 * LOG_FAILED (and no batch is durable any more). */
static uint32_t behind_settle(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	if (l->state == WAL_FAILED)
		return l->held_head != l->held_tail ? held_release(w, PM_E_LOG_FAILED) : 0;
	uint32_t n = 0;
	while (l->behind_n && behind_at(l, 0)->done) {
		const struct sync_wait *s = behind_at(l, 0);
		l->durable_seq = s->seq;
		l->durable_lsn = s->last_lsn;
		if (s->t0)
			adapt_note(w, s->here, pm_mono_ns() - s->t0);
		l->behind_head = (l->behind_head + 1) % PM_WAL_SYNCS_BEHIND_MAX;
		l->behind_n--;
		n++;
	}
	return n ? n + held_release(w, PM_OK) : 0;
}

/* The fdatasync of a batch behind completed. EAGAIN or EINTR: again (a
 * chain's would be resubmitted); a failure fails the log: nothing held is
 * acknowledged, not even a later batch whose own fdatasync succeeds. */
static void behind_done(struct pm_worker *w, struct sync_wait *s, int res)
{
	struct pm_wal *l = w->wal;
	l->behind_running--;
	if (res == -EAGAIN || res == -EINTR) {
		struct io_uring_sqe *q = io_uring_get_sqe(&l->ring);
		PM_ASSERT(q != NULL); /* PM_WAL_QUEUE_DEPTH: every SQE is submitted at once */
		io_uring_prep_fsync(q, l->fd, IORING_FSYNC_DATASYNC); /* no switch while one is behind */
		io_uring_sqe_set_data64(q, s->seq << OP_BITS | OP_FSYNC);
		io_uring_submit(&l->ring);
		l->behind_running++;
		l->st.resubmits++;
		return;
	}
	if (res < 0) {
		if (l->state != WAL_FAILED)
			fprintf(stderr, "pomaid: shard %u: WAL fsync FAILED: %s — writes on this shard"
					" are refused until restart; replies held for it get"
					" E_LOG_FAILED\n", w->id, strerror(-res));
		l->state = WAL_FAILED;
		return;
	}
	l->st.fsyncs++;
	s->done = true;
}

/* Sync mode with wal_sync_overlap: the batch in flight is written and only
 * its own fdatasync is left (no switch of segment in its chain). */
static bool may_detach(const struct pm_wal *l)
{
	return l->overlap && l->inflight && l->state == WAL_OK && l->cqes_left == 1 &&
	       l->err == 0 && !l->fsync_ok && l->written == l->b[l->fill ^ 1].len &&
	       l->seal_fd < 0 && !l->seg_rename && !l->dirsync;
}

/* ... then it waits behind, its fdatasync in flight: the next batch may go. */
static void detach_batch(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	batch_written(w, false);
	l->behind_running++;
}

/* The batch in flight has every completion: done, again, or an error. */
static uint32_t finish_batch(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	struct batch *b = &l->b[l->fill ^ 1];
	if (l->state == WAL_FAILED) { /* an fdatasync behind it failed meanwhile: never acknowledged */
		l->inflight = false;
		return behind_settle(w);
	}
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
			w->id, op_name(l->err_op), strerror(-l->err));
		l->state = WAL_FAILED;
		l->inflight = false;
		return behind_settle(w);
	}
	if (l->written < b->len || !l->fsync_ok || l->seal_fd >= 0 || l->seg_rename || l->dirsync) {
		/* a short write, EAGAIN, a cancelled link: the rest again */
		l->st.resubmits++;
		l->batch_sample = false;
		l->full_retry = l->state == WAL_FULL; /* a retry's rest: finished as the retry */
		submit_write(w);
		return 1;
	}
	l->state = WAL_OK;
	l->st.fsyncs += l->mode == PM_WAL_SYNC;
	l->dirty = l->mode == PM_WAL_BATCH;
	batch_written(w, true);
	return 1 + behind_settle(w); /* durable now, or once the batches behind it are */
}

/* A completion of the log (or, without io_uring, a call's result). */
static void complete(struct pm_worker *w, uint64_t ud, int res)
{
	struct pm_wal *l = w->wal;
	unsigned op = (unsigned)(ud & OP_MASK);
	if (op == OP_SNAP) {
		pm_snap_on_cqe(w, ud, res);
		return;
	}
	if (op == OP_PREP) {
		prep_step(w, res);
		return;
	}
	if (op == OP_REPL) {
		pm_repl_on_cqe(w, ud, res);
		return;
	}
	if (op == OP_FILL || op == OP_FILLSYNC) {
		fill_done(w, op, res);
		return;
	}
	if (op == OP_DRAINSYNC) {
		l->drain_syncs--;
		return;
	}
	if (op == OP_BFSYNC) {
		l->bfsync_inflight = false;
		l->st.fsyncs += res == 0;
		if (res < 0 && l->state == WAL_OK) {
			fprintf(stderr, "pomaid: shard %u: WAL fsync FAILED: %s — writes on this shard"
					" are refused until restart\n", w->id, strerror(-res));
			l->state = WAL_FAILED;
		}
		return;
	}
	struct sync_wait *behind = op == OP_FSYNC ? behind_find(l, ud >> OP_BITS) : NULL;
	if (behind) { /* not the batch in flight's: one written before it */
		behind_done(w, behind, res);
		return;
	}
	l->cqes_left--;
	if (op == OP_WRITE && res > 0)
		l->written += (uint32_t)res;
	else if (op == OP_FSYNC && res == 0)
		l->fsync_ok = true;
	else if (op == OP_SEAL && res == 0) /* its last request has completed */
		close(l->seal_fd), l->seal_fd = -1;
	else if (op == OP_DIRSYNC && res == 0)
		l->dirsync = false;
	else if (op == OP_RENAME && res == 0) /* named: the list has it from now */
		l->seg_rename = false, seg_named(l, l->seg_to_lsn);
	if (res < 0 && (l->err == 0 || l->err == -ECANCELED))
		l->err = res, l->err_op = op;
}

/* One completion, consumed. */
static void on_cqe(struct pm_worker *w, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	int res = cqe->res;
	io_uring_cqe_seen(&w->wal->ring, cqe);
#ifdef PM_WAL_TEST_HOOKS
	test_write_hook(w->wal, (unsigned)(ud & OP_MASK), &res);
	if (test_fsync_hook(w->wal, ud, &res))
		return;
#endif
	complete(w, ud, res);
}

/* Without io_uring: the chain submit_write would submit, here and now; a
 * failure (or a short write) ends it, as a failed link cancels the rest. */
static void submit_write_here(struct pm_worker *w, const uint8_t *p, uint32_t n, uint64_t off)
{
	struct pm_wal *l = w->wal;
	struct link r[4];
	uint32_t k = 0;
	bool ok = true;
	if (l->seal_fd >= 0) {
		r[k] = (struct link){ .op = OP_SEAL, .res = fdatasync(l->seal_fd) ? -errno : 0 };
		ok = r[k++].res == 0;
	}
	if (ok) {
		ssize_t wr = pwrite(l->fd, p, n, (off_t)off);
		r[k++] = (struct link){ .op = OP_WRITE, .res = wr < 0 ? -errno : (int)wr };
		ok = wr == (ssize_t)n;
	}
	if (ok && l->mode == PM_WAL_SYNC) {
		r[k] = (struct link){ .op = OP_FSYNC, .res = fdatasync(l->fd) ? -errno : 0 };
		ok = r[k++].res == 0;
	}
	if (ok && l->dirsync)
		r[k++] = (struct link){ .op = OP_DIRSYNC, .res = fsync(l->dirfd) ? -errno : 0 };
	l->cqes_left = k;
	for (uint32_t i = 0; i < k; i++) {
#ifdef PM_WAL_TEST_HOOKS
		test_write_hook(l, r[i].op, &r[i].res);
		(void)test_fsync_hook(l, r[i].op, &r[i].res); /* "fail" only: a stall needs io_uring */
#endif
		complete(w, r[i].op, r[i].res);
	}
}

/* ---------------------------------------------------------------- writing ahead */

/* Sync mode with a ring: keep the current segment written (zeros) up to
 * PM_WAL_FILL_AHEAD_BYTES past the log's end, one chunk at a time, each
 * linked to its fdatasync. A chunk never reaches where a batch may be written
 * before it completes: it starts a whole batch past the batch in flight, and
 * a batch whose range a fill in flight reaches waits (start_batch). Recovery
 * reads the zeros as the end of the log, as it does unwritten blocks. */
static void fill_step(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	if (!l->fill_ahead || !l->uring || l->fill_hi || l->fd < 0 || l->state != WAL_OK)
		return;
	uint64_t inflight = l->inflight ? l->b[l->fill ^ 1].len : 0;
	uint64_t lo = PM_MAX(l->fill_off, l->seg_off + inflight + PM_WAL_BATCH_BYTES);
	if (lo >= l->seg_bytes || lo >= l->seg_off + PM_WAL_FILL_AHEAD_BYTES)
		return;
	uint32_t n = (uint32_t)PM_MIN(l->seg_bytes - lo, (uint64_t)PM_WAL_FILL_CHUNK_BYTES);
	if (io_uring_sq_space_left(&l->ring) < 2)
		return; /* cannot happen (PM_WAL_QUEUE_DEPTH): a later turn tries again */
	struct io_uring_sqe *s = io_uring_get_sqe(&l->ring), *f = io_uring_get_sqe(&l->ring);
	io_uring_prep_write(s, l->fd, zero_chunk, n, lo);
	io_uring_sqe_set_data64(s, OP_FILL);
	s->flags |= IOSQE_IO_LINK;
	io_uring_prep_fsync(f, l->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(f, OP_FILLSYNC);
	io_uring_submit(&l->ring);
	l->fill_lo = lo;
	l->fill_hi = lo + n;
	l->fill_cqes = 2;
}

/* A completion of the fill in flight. A failed one stops writing ahead (said
 * once): the log goes on without it, its fsyncs slower. */
static void fill_done(struct pm_worker *w, unsigned op, int res)
{
	struct pm_wal *l = w->wal;
	if (op == OP_FILL && res > 0) {
		l->fill_off = l->fill_lo + (uint64_t)res;
		l->st.fill_bytes += (uint64_t)res;
	}
	if (res < 0 && res != -ECANCELED && l->fill_ahead) {
		fprintf(stderr, "pomaid: shard %u: writing the WAL segment ahead of the log: %s;"
				" no longer done (each fdatasync then also commits metadata)\n", w->id,
			strerror(-res));
		l->fill_ahead = false;
	}
	if (--l->fill_cqes == 0)
		l->fill_hi = 0;
}

static void reap(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	struct io_uring_cqe *cqe;
	if (!l->uring || (!l->inflight && !l->behind_running && !l->bfsync_inflight &&
			  !l->prep_inflight && !l->fill_hi && !pm_snap_inflight(w) &&
			  !pm_repl_inflight(w)))
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

/* Batch mode: fdatasync the segment every wal_batch_ms while it has unsynced writes. */
static void batch_fsync(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	if (l->mode != PM_WAL_BATCH || !l->dirty || l->bfsync_inflight ||
	    w->now_ms - l->last_fsync_ms < w->d->cfg.wal_batch_ms)
		return;
	l->dirty = false;
	l->last_fsync_ms = w->now_ms;
	if (!l->uring) {
		int rc = fdatasync(l->fd) ? -errno : 0;
#ifdef PM_WAL_TEST_HOOKS
		(void)test_fsync_hook(l, OP_BFSYNC, &rc);
#endif
		complete(w, OP_BFSYNC, rc);
		return;
	}
	struct io_uring_sqe *s = io_uring_get_sqe(&l->ring);
	if (!s) { /* cannot happen (see PM_WAL_QUEUE_DEPTH): the next turn tries again */
		l->dirty = true;
		return;
	}
	io_uring_prep_fsync(s, l->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(s, OP_BFSYNC);
	io_uring_submit(&l->ring);
	l->bfsync_inflight = true;
}

uint32_t pm_wal_turn(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	uint32_t work = 0;
	if (!l || l->mode == PM_WAL_NONE)
		return 0;
#ifdef PM_WAL_TEST_HOOKS
	/* each SIGUSR1 releases what is held when it is seen, nothing held later */
	if (l->test.fsync == TEST_FSYNC_STALL &&
	    atomic_load(&test_releases) != l->test.releases_seen)
		test_release(w);
	else if (l->test.fsync == TEST_FSYNC_STEP)
		test_step(w);
#endif
	reap(w);
	work += behind_settle(w);
	/* a batch the disk had no room for waits for its retry; the retry's
	 * completions end it as any chain's do (done, or full again) */
	if (l->inflight && l->cqes_left == 0 && (l->state != WAL_FULL || l->full_retry)) {
		l->full_retry = false;
		work += finish_batch(w);
	} else if (may_detach(l)) {
		detach_batch(w), work++;
	}
	if (l->state == WAL_FULL && l->inflight && !l->full_retry && w->now_ms >= l->retry_ms) {
		l->retry_ms = w->now_ms + PM_WAL_RETRY_MS; /* try again */
		l->full_retry = true;
		submit_write(w);
	}
	/* not while the last prepared file's rename waits in the chain: a new
	 * file would be made under the name it still has */
	if (l->state != WAL_FAILED && l->prep == PREP_NONE && !l->seg_rename &&
	    w->now_ms >= l->prep_retry_ms)
		prep_start(w), work++;
	else if (l->prep != PREP_NONE && l->prep != PREP_READY && !l->prep_inflight)
		prep_issue(w); /* the ring was full when its step was due */
	if (l->state == WAL_FULL && !l->inflight && l->prep == PREP_READY && w->now_ms >= l->retry_ms)
		l->state = WAL_OK; /* the next segment could be made: there is room again */
	if (!l->inflight && l->state == WAL_OK && l->b[l->fill].len &&
	    l->behind_n < PM_WAL_SYNCS_BEHIND_MAX) {
		start_batch(w), work++;
		if (l->inflight && l->cqes_left == 0) /* written here (pwrite): the replies now */
			work += finish_batch(w);
	}
	batch_fsync(w);
	fill_step(w);
	return work + pm_snap_turn(w);
}

int pm_wal_wake_fd(const struct pm_worker *w)
{
	return w->wal && w->wal->uring ? w->wal->efd : -1;
}

/* The stopping worker's last fdatasync of its segments: through the ring
 * (issue 20: no file-system call on a worker, even at shutdown), waited for
 * there; on this thread without one. */
static void drain_sync(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	int fds[] = { l->fd, l->seal_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		struct io_uring_sqe *s = fds[i] >= 0 && l->uring ? io_uring_get_sqe(&l->ring) : NULL;
		if (!s) {
			if (fds[i] >= 0)
				(void)fdatasync(fds[i]);
			continue;
		}
		io_uring_prep_fsync(s, fds[i], IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(s, OP_DRAINSYNC);
		l->drain_syncs++;
	}
	if (l->drain_syncs)
		io_uring_submit(&l->ring);
	struct io_uring_cqe *cqe;
	/* replication's requests too: their buffers are freed after the worker's end */
	while ((l->drain_syncs || (l->uring && pm_repl_inflight(w))) &&
	       io_uring_wait_cqe(&l->ring, &cqe) == 0)
		on_cqe(w, cqe); /* the log's other completions are taken as usual */
}

void pm_wal_drain(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	if (!l || l->mode == PM_WAL_NONE)
		return;
#ifdef PM_WAL_TEST_HOOKS
	test_release(w); /* nothing more is held back: the log drains as usual */
	l->test.fsync = TEST_FSYNC_OFF;
#endif
	for (uint32_t i = 0;
	     i < PM_WAL_DRAIN_TURNS_MAX && l->state == WAL_OK &&
	     (l->inflight || l->b[l->fill].len || l->behind_n);
	     i++) {
		struct io_uring_cqe *cqe;
		pm_wal_turn(w);
		bool pending = (l->inflight && l->cqes_left) || l->behind_running ||
			       l->bfsync_inflight || l->prep_inflight || l->fill_hi;
		if (l->uring && pending && io_uring_wait_cqe(&l->ring, &cqe) == 0)
			on_cqe(w, cqe);
	}
	drain_sync(w);
}

/* ---------------------------------------------------------------- replication */

int pm_wal_append_record(struct pm_worker *w, const uint8_t *rec, uint32_t n, uint64_t lsn)
{
	struct pm_wal *l = w->wal;
	if (lsn != l->next_lsn)
		return -1;
	struct batch *b = &l->b[l->fill];
	if (l->state != WAL_OK || b->len + l->reserved + n > PM_WAL_BATCH_BYTES)
		return 0;
	memcpy(b->buf + b->len, rec, n);
	if (b->len == 0)
		b->first_lsn = lsn;
	b->last_off = b->len;
	b->len += n;
	l->next_lsn++;
	l->st.records++;
	return 1;
}

bool pm_wal_has_room(const struct pm_worker *w, uint32_t n)
{
	const struct pm_wal *l = w->wal;
	return l->state == WAL_OK && l->b[l->fill].len + l->reserved + n <= PM_WAL_BATCH_BYTES;
}

uint64_t pm_wal_next_lsn(const struct pm_worker *w)
{
	return w->wal ? w->wal->next_lsn : 1;
}

uint64_t pm_wal_durable_lsn(const struct pm_worker *w)
{
	return w->wal ? w->wal->durable_lsn : 0;
}

uint32_t pm_wal_release_held(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	return l && l->held_head != l->held_tail ? held_release(w, PM_OK) : 0;
}

int pm_wal_restart_at(struct pm_worker *w, uint64_t lsn)
{
	struct pm_wal *l = w->wal;
	if (l->inflight || l->b[l->fill].len || l->behind_n || l->bfsync_inflight || l->seal_fd >= 0 ||
	    l->prep_inflight || l->seg_rename || l->fill_hi)
		return 1;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1; /* the next batch takes the prepared segment, named lsn + 1 */
	pm_wal_retire_below(w, UINT64_MAX);
	l->next_lsn = lsn + 1;
	l->durable_lsn = l->written_lsn = l->submitted_lsn = lsn;
	l->dirty = false;
	l->tail_lsn = l->mark_lsn = l->mark_seg = 0; /* no record placed in the new log yet */
	l->mark_in_fill = false;
	return 0;
}

void pm_wal_mark(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	const struct batch *b = &l->b[l->fill];
	l->mark_lsn = l->next_lsn - 1;
	l->mark_seg = l->mark_off = 0;
	l->mark_in_fill = false;
	if (b->len) { /* the batch being filled ends with it: placed when it starts */
		l->mark_rel = b->last_off;
		l->mark_in_fill = true;
	} else if (l->tail_lsn == l->mark_lsn && l->tail_seg) { /* the batch started last */
		l->mark_seg = l->tail_seg;
		l->mark_off = l->tail_off;
	} /* else not in this run's log (recovered, or none yet): no hint */
}

bool pm_wal_mark_pos(const struct pm_worker *w, uint64_t lsn, uint64_t *seg, uint64_t *off)
{
	const struct pm_wal *l = w->wal;
	if (!l || l->mark_lsn != lsn || l->mark_seg == 0)
		return false;
	*seg = l->mark_seg;
	*off = l->mark_off;
	return true;
}

/* ---------------------------------------------------------------- recovery */

static int lsn_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int pm_wal_list_segments(int dirfd, uint64_t *out, int cap)
{
	DIR *d = pm_datadir_list(dirfd);
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
static int zero_from(int dirfd, const char *name, const uint8_t *buf, size_t size, size_t off)
{
	size_t end = size;
	while (end > off && buf[end - 1] == 0)
		end--;
	int fd = pm_datadir_openat(dirfd, name, O_WRONLY, 0);
	int rc = fd < 0 ? fd : 0;
	for (size_t p = off; rc == 0 && p < end; p += ZERO_CHUNK_BYTES) {
		size_t n = PM_MIN(end - p, (size_t)ZERO_CHUNK_BYTES);
		if (pwrite(fd, zero_chunk, n, (off_t)p) != (ssize_t)n)
			rc = -errno;
	}
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Bytes at the start of a segment that are all zero when its switch was
 * interrupted before its header reached the disk: its first page (header and
 * first records are written together). */
#define UNBORN_CHECK_BYTES 4096u

/* Whether a segment holds neither a header nor a record: the newest segment
 * after a crash in the middle of a switch (its name was durable, its header
 * not yet; see seg_switch). */
static bool unborn(const uint8_t *buf, size_t size)
{
	for (size_t i = 0; i < PM_MIN(size, (size_t)UNBORN_CHECK_BYTES); i++)
		if (buf[i])
			return false;
	return true;
}

static void replay(struct pm_worker *w, const struct pm_wal_record *rec, uint64_t now,
		   struct pm_reply *out)
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
	pm_shard_apply(&w->shard, &req, now, out ? out : &rep);
}

void pm_wal_apply_record(struct pm_worker *w, const struct pm_wal_record *rec,
			 struct pm_reply *rep)
{
	replay(w, rec, w->now_ms, rep);
}

struct scan_ctx {
	uint64_t skip;      /* records up to this LSN are in the snapshot loaded */
	uint64_t hint_seg, hint_off; /* where the snapshot says record skip is (0: not known) */
	uint64_t want;      /* the next LSN */
	size_t end;         /* where writing resumes in the last segment */
	size_t last_rec;    /* where the last record read starts (0: none read) */
	bool cut;           /* an operator-approved cut: later segments go */
};

/* Where reading segment h starts: after record c->skip when the snapshot's
 * hint names this segment and a whole record with that LSN is there (its
 * CRC checked), so the records the snapshot holds are not read again; else
 * at the first record. The records skipped are the snapshot's: recovery
 * needs none of them. */
static size_t scan_start(struct pm_wal *l, const struct pm_wal_segment_header *h,
			 const uint8_t *buf, size_t size, struct scan_ctx *c)
{
	size_t off = PM_WAL_SEGMENT_HEADER_BYTES;
	if (c->hint_seg != h->first_lsn || c->skip < h->first_lsn || c->hint_off < off ||
	    c->hint_off >= size)
		return off;
	struct pm_wal_record rec;
	size_t used = 0;
	if (pm_wal_scan_next(buf + c->hint_off, size - c->hint_off, c->skip, &rec, &used) !=
	    PM_WAL_RECORD)
		return off; /* not there: read the segment from its start */
	l->st.recovery_skipped_bytes += c->hint_off - off;
	c->want = c->skip + 1;
	c->last_rec = (size_t)c->hint_off;
	return (size_t)c->hint_off + used;
}

/* Replay one segment file; 0, 1 (the newest one, never born: removed), or -1
 * with a message. */
static int replay_segment(struct pm_worker *w, uint64_t first, bool newest, struct scan_ctx *c,
			  char *err, size_t errlen)
{
	struct pm_wal *l = w->wal;
	char name[NAME_BYTES];
	pm_wal_seg_name(first, name);
	int fd = pm_datadir_openat(l->dirfd, name, O_RDONLY, 0);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		int e = fd < 0 ? -fd : errno;
		return pm_errf(err, errlen, "%s/%s: %s%s", l->dir, name, strerror(e),
			       e == ELOOP ? " (a symbolic link: pomaid follows no link inside its"
					    " data_dir; refusing to start)" : "");
	}
	/* mapped, not read: only the written part of a preallocated segment is touched */
	size_t size = (size_t)sb.st_size;
	uint8_t *buf = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
	close(fd);
	struct pm_wal_segment_header h;
	if (newest && (size == 0 || (buf != MAP_FAILED && unborn(buf, size)))) {
		fprintf(stderr, "pomaid: shard %u: %s/%s: no header and no records (a crash while"
				" it was being made): removed\n", w->id, l->dir, name);
		if (buf != MAP_FAILED)
			munmap(buf, size);
		return unlinkat(l->dirfd, name, 0) == 0
			       ? 1 : pm_errf(err, errlen, "%s/%s: %s", l->dir, name, strerror(errno));
	}
	if (buf == MAP_FAILED)
		return pm_errf(err, errlen, "%s/%s: empty or unreadable", l->dir, name);
	madvise(buf, size, MADV_SEQUENTIAL);
	if (pm_wal_segment_header_decode(buf, size, &h) != PM_OK || h.shard != w->id ||
	    (c->want && h.first_lsn != c->want) || h.first_lsn != first) {
		munmap(buf, size);
		return pm_errf(err, errlen, "%s/%s: not a WAL segment of shard %u starting at LSN %" PRIu64
			       " (bad header, or a gap before it)", l->dir, name, w->id,
			       c->want ? c->want : first);
	}
	c->want = h.first_lsn;
	c->last_rec = 0;
	uint64_t now = pm_wall_ms();
	size_t off = scan_start(l, &h, buf, size, c);
	for (;;) {
		struct pm_wal_record rec;
		size_t used = 0;
		enum pm_wal_scan_result r = pm_wal_scan_next(buf + off, size - off, c->want, &rec, &used);
		if (r == PM_WAL_RECORD) {
			if (rec.lsn > c->skip) {
				replay(w, &rec, now, NULL);
				l->st.recovered_records++;
			}
			c->want++;
			c->last_rec = off;
			off += used;
			continue;
		}
		if (r == PM_WAL_CORRUPT && !w->d->cfg.wal_truncate_corrupt) {
			munmap(buf, size);
			return pm_errf(err, errlen, "%s/%s: corrupt record at offset %zu (expected LSN %"
				       PRIu64 "): refusing to start; wal_truncate_corrupt = yes drops the"
				       " log from there", l->dir, name, off, c->want);
		}
		if (r != PM_WAL_END) {
			fprintf(stderr, "pomaid: shard %u: %s/%s: %s at offset %zu (LSN %" PRIu64 "):"
					" truncated there\n", w->id, l->dir, name,
				r == PM_WAL_TORN ? "torn tail" : "corruption", off, c->want);
			l->st.torn_truncated++;
			c->cut = r == PM_WAL_CORRUPT;
			int rc = zero_from(l->dirfd, name, buf, size, off);
			if (rc != 0) {
				munmap(buf, size);
				return pm_errf(err, errlen, "%s/%s: cannot clear its tail: %s", l->dir, name,
					       strerror(-rc));
			}
		}
		break;
	}
	munmap(buf, size);
	c->end = off;
	return 0;
}

/* Replay the log after the snapshot loaded (its start LSN: snap_lsn, 0 for
 * none); segments wholly before it are deleted. */
static int recover(struct pm_worker *w, const struct pm_snap_info *snap, char *err, size_t errlen)
{
	struct pm_wal *l = w->wal;
	uint64_t *firsts = l->segs, snap_lsn = snap->start_lsn;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int n = pm_wal_list_segments(l->dirfd, firsts, PM_WAL_SEGMENTS_MAX);
	struct scan_ctx c = { .skip = snap_lsn, .hint_seg = snap->log_seg, .hint_off = snap->log_off };
	int last = -1;
	for (int i = 0; i < n; i++) {
		char name[NAME_BYTES];
		pm_wal_seg_name(firsts[i], name);
		if (c.cut) { /* after an approved cut nothing later is trusted */
			fprintf(stderr, "pomaid: shard %u: %s/%s removed (after the cut)\n", w->id, l->dir,
				name);
			unlinkat(l->dirfd, name, 0);
			continue;
		}
		if (i + 1 < n && firsts[i + 1] <= snap_lsn + 1) { /* wholly in the snapshot */
			retire_here(w, firsts[i]);
			continue;
		}
		if (last < 0 && firsts[i] > snap_lsn + 1)
			return pm_errf(err, errlen, "%s/%s: the log starts at LSN %" PRIu64 " but the"
				       " snapshot ends at %" PRIu64 ": records in between are missing",
				       l->dir, name, firsts[i], snap_lsn);
		int rc = replay_segment(w, firsts[i], i + 1 == n, &c, err, errlen);
		if (rc < 0)
			return -1;
		if (rc == 0)
			last = i;
	}
	l->next_lsn = PM_MAX(c.want ? c.want : 1, snap_lsn + 1);
	l->written_lsn = l->next_lsn - 1; /* what recovery read is in the log */
	if (last >= 0 && c.want <= snap_lsn) {
		/* the log ends inside the snapshot (a batch-mode machine crash lost its
		 * last unsynced writes): new records start a new segment after it */
		last = -1;
	}
	if (last >= 0) {
		char name[NAME_BYTES];
		pm_wal_seg_name(firsts[last], name);
		l->fd = pm_datadir_openat(l->dirfd, name, O_WRONLY, 0);
		if (l->fd < 0)
			return pm_errf(err, errlen, "%s/%s: %s", l->dir, name, strerror(-l->fd));
		struct stat sb;
		fstat(l->fd, &sb);
		l->seg_bytes = PM_MAX(l->seg_bytes, (uint64_t)sb.st_size);
		l->seg_off = l->fill_off = c.end;
		l->seg_first = firsts[last];
		if (c.last_rec) { /* the last record read: a snapshot started now names it */
			l->tail_lsn = c.want - 1;
			l->tail_seg = firsts[last];
			l->tail_off = c.last_rec;
		}
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
	if (w->d->cfg.wal_uring == PM_WAL_IO_PWRITE) {
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

/* One write + fdatasync of the probe through the ring, waited for: 0 or -errno. */
static int probe_ring_once(struct pm_wal *l, int fd, uint64_t off)
{
	struct io_uring_sqe *s = io_uring_get_sqe(&l->ring), *f = io_uring_get_sqe(&l->ring);
	PM_ASSERT(s && f); /* nothing else is in flight at start-up */
	io_uring_prep_write(s, fd, zero_chunk, PM_WAL_PROBE_BYTES, off);
	s->flags |= IOSQE_IO_LINK;
	io_uring_prep_fsync(f, fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(s, OP_PREP); /* no completion of the probe reaches complete() */
	io_uring_sqe_set_data64(f, OP_PREP);
	io_uring_submit(&l->ring);
	int rc = 0;
	for (int i = 0; i < 2; i++) {
		struct io_uring_cqe *cqe;
		int w = io_uring_wait_cqe(&l->ring, &cqe);
		if (w != 0)
			return w;
		if (cqe->res < 0 && rc == 0)
			rc = cqe->res;
		io_uring_cqe_seen(&l->ring, cqe);
	}
	return rc;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Time write + fdatasync round trips through w's ring and with pwrite,
 * PM_WAL_PROBE_ROUNDS times each, alternating (the same load for both), on an
 * unnamed file of w's log directory written whole first (the shape of a
 * segment written ahead): their medians into w's log, or false (said). */
static bool probe_io(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	uint32_t ring_us[PM_WAL_PROBE_ROUNDS], here_us[PM_WAL_PROBE_ROUNDS];
	const uint32_t bytes = 2u * PM_WAL_PROBE_ROUNDS * PM_WAL_PROBE_BYTES;
	int fd = openat(l->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	int rc = fd < 0 ? -errno : 0;
	if (rc == 0 && (pwrite(fd, zero_chunk, bytes, 0) != (ssize_t)bytes || fdatasync(fd) != 0))
		rc = -errno;
	for (uint32_t r = 0; rc == 0 && r < PM_WAL_PROBE_ROUNDS; r++) {
		for (uint32_t k = 0; rc == 0 && k < 2; k++) {
			bool ring = (r + k) % 2 == 0; /* each goes first every other round */
			uint64_t off = (2u * r + k) * PM_WAL_PROBE_BYTES, t0 = pm_mono_ns();
			if (ring)
				rc = probe_ring_once(l, fd, off);
			else if (pwrite(fd, zero_chunk, PM_WAL_PROBE_BYTES, (off_t)off) !=
					 (ssize_t)PM_WAL_PROBE_BYTES || fdatasync(fd) != 0)
				rc = -errno;
			uint32_t us = (uint32_t)PM_MIN((pm_mono_ns() - t0) / 1000u, (uint64_t)UINT32_MAX);
			(ring ? ring_us : here_us)[r] = us;
		}
	}
	if (fd >= 0)
		close(fd);
	uint64_t v; /* the eventfd counted the probe's completions */
	if (read(l->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		rc = rc ? rc : -errno;
	if (rc != 0) {
		fprintf(stderr, "pomaid: wal_io_uring = auto: the probe failed (%s): the log's"
				" writes go through io_uring\n", strerror(-rc));
		return false;
	}
	qsort(ring_us, PM_WAL_PROBE_ROUNDS, sizeof(uint32_t), cmp_u32);
	qsort(here_us, PM_WAL_PROBE_ROUNDS, sizeof(uint32_t), cmp_u32);
	l->probe_ring_us = PM_MAX(ring_us[PM_WAL_PROBE_ROUNDS / 2], 1u);
	l->probe_here_us = PM_MAX(here_us[PM_WAL_PROBE_ROUNDS / 2], 1u);
	return true;
}

/* Whether the log's test hooks are on (they test the ring's path). */
static bool test_hooked(const struct pm_wal *l)
{
#ifdef PM_WAL_TEST_HOOKS
	return l->test.fsync != TEST_FSYNC_OFF;
#else
	(void)l;
	return false;
#endif
}

void pm_wal_probe(struct pm_daemon *d)
{
	struct pm_wal *l0 = d->nshards ? d->workers[0].wal : NULL;
	if (!l0 || l0->mode != PM_WAL_SYNC || d->cfg.wal_uring != PM_WAL_IO_AUTO || !l0->uring ||
	    test_hooked(l0) || !probe_io(&d->workers[0]))
		return;
	bool here = (uint64_t)l0->probe_here_us * 100u <
		    (uint64_t)l0->probe_ring_us * PM_WAL_PROBE_PWRITE_PCT;
	for (uint32_t i = 0; i < d->nshards; i++) {
		struct pm_wal *l = d->workers[i].wal;
		l->probe_ring_us = l0->probe_ring_us;
		l->probe_here_us = l0->probe_here_us;
		l->batch_here = here && l->uring;
		l->adapt = l->uring;
		l->adapt_window = l->adapt_left = PM_WAL_ADAPT_WINDOW_MIN;
	}
	printf("pomaid: wal_io_uring = auto: a write + fdatasync takes %u us through io_uring, %u us"
	       " with pwrite on the worker (medians of %u): sync-mode batches use %s\n",
	       l0->probe_ring_us, l0->probe_here_us, PM_WAL_PROBE_ROUNDS,
	       here ? "pwrite (segments and snapshots: io_uring)" : "io_uring");
}

/* data_dir/wal/shard-<i>, made and checked (datadir.h). 0, or -1 with a message. */
static int open_dir(struct pm_worker *w, char *err, size_t errlen)
{
	struct pm_wal *l = w->wal;
	char shown[PATH_BYTES], sub[NAME_BYTES];
	snprintf(l->dir, sizeof(l->dir), "%s/wal/shard-%u", w->d->cfg.data_dir, w->id);
	snprintf(shown, sizeof(shown), "%s/wal", w->d->cfg.data_dir);
	snprintf(sub, sizeof(sub), "shard-%u", w->id);
	int wal = pm_datadir_sub(w->d->data_fd, "wal", shown, err, errlen);
	if (wal < 0)
		return -1;
	l->dirfd = pm_datadir_sub(wal, sub, l->dir, err, errlen);
	close(wal);
	return l->dirfd < 0 ? -1 : 0;
}

/* A restart that appends to the segment recovery found leaves the next
 * one to the worker's ring (its first turn) when at least this much of the
 * current one is free: the ring prepares it long before writes fill that. */
#define RESTART_ROOM_BYTES_MIN (16u << 20)

/* Before the worker starts (here waiting for the disk costs no request
 * anything): the first segment, if recovery left none to append to, and the
 * next one, so that neither the first writes nor the first switch wait for
 * one — except on a restart into a segment with RESTART_ROOM_BYTES_MIN free,
 * where zeroing and syncing the next one here (1.6 ms on the test machine)
 * would only delay `ready` (issue 20). A segment that cannot be prepared
 * (ENOSPC) is said and tried again once the worker runs; until one is there,
 * writes are refused DISK_FULL. */
static int first_segments(struct pm_worker *w, char *err, size_t errlen)
{
	struct pm_wal *l = w->wal;
	PM_ASSERT(!l->uring); /* every step runs here and now */
	bool room = l->fd >= 0 && l->seg_bytes - PM_MIN(l->seg_off, l->seg_bytes) >=
					  RESTART_ROOM_BYTES_MIN;
	if (l->fd < 0) {
		prep_start(w);
		int rc = l->prep == PREP_READY ? seg_switch(w, l->next_lsn) : 0;
		if (rc != 0)
			return pm_errf(err, errlen, "%s: the first segment: %s", l->dir, strerror(-rc));
	}
	if (!room && l->prep == PREP_NONE && l->prep_err == 0)
		prep_start(w);
	return 0;
}

/* Before the snapshot is loaded: the newest segments, up to
 * PM_WAL_READAHEAD_BYTES, read ahead by the kernel while the load runs (a
 * hint: failures change nothing). */
static void read_ahead(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	int n = pm_wal_list_segments(l->dirfd, l->segs, PM_WAL_SEGMENTS_MAX);
	uint64_t asked = 0;
	for (int i = n - 1; i >= 0 && asked < PM_WAL_READAHEAD_BYTES; i--) {
		char name[NAME_BYTES];
		struct stat sb;
		pm_wal_seg_name(l->segs[i], name);
		int fd = pm_datadir_openat(l->dirfd, name, O_RDONLY, 0);
		if (fd < 0)
			continue;
		if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
			off_t len = (off_t)PM_MIN((uint64_t)sb.st_size, PM_WAL_READAHEAD_BYTES - asked);
			(void)posix_fadvise(fd, 0, len, POSIX_FADV_WILLNEED);
			asked += (uint64_t)len;
		}
		close(fd);
	}
}

/* Sync mode, at start-up: the segment recovery appends to, written ahead
 * from where its log ends (as fill_step keeps it while the worker runs). A
 * failure is said and writing ahead is given up. */
static void fill_current(struct pm_worker *w)
{
	struct pm_wal *l = w->wal;
	if (!l->fill_ahead || l->fd < 0)
		return;
	uint64_t end = PM_MIN(l->seg_off + PM_WAL_FILL_AHEAD_BYTES, l->seg_bytes);
	int rc = 0;
	for (uint64_t off = l->seg_off; rc == 0 && off < end; off += PM_WAL_FILL_CHUNK_BYTES) {
		size_t n = (size_t)PM_MIN(end - off, (uint64_t)PM_WAL_FILL_CHUNK_BYTES);
		if (pwrite(l->fd, zero_chunk, n, (off_t)off) != (ssize_t)n)
			rc = errno ? -errno : -EIO; /* a short write: no room, say */
	}
	if (rc == 0 && fdatasync(l->fd) != 0)
		rc = -errno;
	if (rc != 0) {
		fprintf(stderr, "pomaid: shard %u: writing the WAL segment ahead of the log: %s;"
				" not done\n", w->id, strerror(-rc));
		l->fill_ahead = false;
		return;
	}
	l->fill_off = PM_MAX(l->fill_off, end);
	l->st.fill_bytes += end - PM_MIN(end, l->seg_off);
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
	l->fd = l->efd = l->dirfd = l->seal_fd = l->prep_fd = -1;
	l->seg_bytes = cfg->wal_segment_bytes;
	l->next_seq = 1;
	l->b[0].buf = malloc(PM_WAL_BATCH_BYTES);
	l->b[1].buf = malloc(PM_WAL_BATCH_BYTES);
	l->held = calloc(PM_WAL_HELD_MAX, sizeof(*l->held));
	l->held_buf = malloc(PM_WAL_HELD_BYTES);
	l->segs = calloc(PM_WAL_SEGMENTS_MAX, sizeof(*l->segs));
	l->retiring = calloc(PM_WAL_SEGMENTS_MAX, sizeof(*l->retiring));
	if (!l->b[0].buf || !l->b[1].buf || !l->held || !l->held_buf || !l->segs || !l->retiring)
		return pm_errf(err, errlen, "out of memory for the WAL buffers");
	if (open_dir(w, err, errlen) != 0)
		return -1;
	scan_spares(l);
	read_ahead(w);
	struct pm_snap_info snap = { 0 };
	if (pm_snap_recover(w, &snap, err, errlen) != 0 || recover(w, &snap, err, errlen) != 0)
		return -1;
	/* the segments recovery left: the list the worker keeps from now on */
	int nsegs = pm_wal_list_segments(l->dirfd, l->segs, PM_WAL_SEGMENTS_MAX);
	l->nsegs = nsegs > 0 ? (uint32_t)nsegs : 0;
	l->durable_lsn = l->submitted_lsn = l->next_lsn - 1;
	l->fill_ahead = l->mode == PM_WAL_SYNC && cfg->wal_uring != PM_WAL_IO_PWRITE;
	fill_current(w);
	if (first_segments(w, err, errlen) != 0)
		return -1;
	if (open_ring(w) != 0)
		return pm_errf(err, errlen, "shard %u: io_uring eventfd: %s", w->id, strerror(errno));
	l->fill_ahead &= l->uring; /* without a ring, not on the worker */
	l->overlap = l->mode == PM_WAL_SYNC && l->uring && cfg->wal_sync_overlap;
#ifdef PM_WAL_TEST_HOOKS
	test_open(w);
#endif
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
	int fds[] = { l->fd, l->seal_fd, l->prep_fd, l->dirfd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(l->b[0].buf);
	free(l->b[1].buf);
	free(l->held);
	free(l->held_buf);
	free(l->segs);
	free(l->retiring);
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
	static const char *const choices[] = { "no", "yes", "auto" }; /* enum pm_wal_io */
	const struct pm_wal_stats *s = &l->st;
	int n = snprintf(out, cap,
			 "# WAL\r\nwal_mode:%s\r\nwal_state:%s\r\nwal_io:%s\r\nwal_next_lsn:%" PRIu64
			 "\r\nwal_written_lsn:%" PRIu64 "\r\nwal_records:%" PRIu64 "\r\nwal_bytes:%" PRIu64 "\r\nwal_batches:%" PRIu64
			 "\r\nwal_fsyncs:%" PRIu64 "\r\nwal_resubmits:%" PRIu64 "\r\nwal_held:%" PRIu64
			 "\r\nwal_held_max:%" PRIu64 "\r\nwal_refused_disk_full:%" PRIu64
			 "\r\nwal_refused_failed:%" PRIu64 "\r\nwal_refused_busy:%" PRIu64
			 "\r\nwal_evictions:%" PRIu64 "\r\nwal_evict_refused:%" PRIu64
			 "\r\nwal_segments_created:%" PRIu64 "\r\nwal_segments_recycled:%" PRIu64
			 "\r\nwal_segments_retired:%" PRIu64 "\r\nwal_segments_deleted:%" PRIu64
			 "\r\nwal_segments_ready:%u\r\nwal_segment_waits:%" PRIu64
			 "\r\nwal_recovered_records:%" PRIu64
			 "\r\nwal_recovery_ms:%" PRIu64 "\r\nwal_recovery_skipped_bytes:%" PRIu64
			 "\r\nwal_torn_truncated:%" PRIu64
			 "\r\nwal_io_ring:%s\r\nwal_io_choice:%s\r\nwal_io_probe_uring_us:%u"
			 "\r\nwal_io_probe_pwrite_us:%u\r\nwal_fill_ahead:%s\r\nwal_fill_bytes:%" PRIu64
			 "\r\nwal_fill_waits:%" PRIu64 "\r\nwal_io_adapt_uring_us:%u"
			 "\r\nwal_io_adapt_pwrite_us:%u\r\nwal_io_switches:%" PRIu64
			 "\r\nwal_sync_overlap:%s\r\nwal_sync_overlaps:%" PRIu64
			 "\r\nwal_submitted_lsn:%" PRIu64 "\r\n",
			 modes[l->mode], states[l->state],
			 l->uring && !l->batch_here ? "io_uring" : "pwrite",
			 l->next_lsn, l->written_lsn, s->records, s->bytes, s->batches, s->fsyncs,
			 s->resubmits, s->held,
			 s->held_max, s->refused_full, s->refused_failed, s->refused_busy, s->evictions,
			 s->evict_refused, s->segments,
			 s->recycled, s->retired, s->deleted, l->prep == PREP_READY, s->segment_waits,
			 s->recovered_records, s->recovery_ms, s->recovery_skipped_bytes,
			 s->torn_truncated,
			 l->uring ? "yes" : "no", choices[w->d->cfg.wal_uring % 3], l->probe_ring_us,
			 l->probe_here_us, l->fill_ahead ? "yes" : "no", s->fill_bytes, s->fill_waits,
			 l->adapt_ring_us, l->adapt_here_us, l->adapt_switches,
			 l->overlap ? "yes" : "no", s->sync_overlaps, l->submitted_lsn);
	if (n < 0 || (uint32_t)n >= cap)
		return 0;
#ifdef PM_WAL_TEST_HOOKS
	int t = l->test.fsync == TEST_FSYNC_OFF ? 0
		: snprintf(out + n, cap - (uint32_t)n, "wal_test_fsync_held:%u\r\n", l->test.held);
	if (t < 0 || (uint32_t)(n + t) >= cap)
		return 0;
	n += t;
#endif
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
