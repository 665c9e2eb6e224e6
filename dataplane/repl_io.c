/* SPDX-License-Identifier: MIT
 *
 * repl_io.c — replication (see repl_io.h): a primary shard's streams to its
 * replicas, a replica shard's link to its primary, the histories and roles,
 * and the admin thread's side (the repl_port listener, HELLOs).
 *
 * No file-system call of a replica's full sync, its install or a HISTORY
 * save runs on the worker thread while it polls (issue 20): repl_disk.c does
 * them through the worker's ring and a per-node helper thread, one step per
 * turn, and says which step goes where. A frame of the image waits in the
 * link's buffer while its step is under way; an install, once begun, runs
 * to its end even if the link goes down meanwhile, and REPLICATION FOLLOW /
 * STOP / PROMOTE wait for it (ctl_step); PROMOTE and FOLLOW are answered once
 * HISTORY is durable. HISTORY is read, and a new one written, at start-up
 * only, before the workers run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge.h"
#include "cluster.h"
#include "common.h"
#include "datadir.h"
#include "msg.h"
#include "repl.h"
#include "repl_disk.h"
#include "repl_io.h"
#include "snap_io.h"
#include "snapshot.h"
#include "stats.h"
#include "tcp.h"
#include "wal.h"
#include "wal_impl.h"
#include "wal_io.h"
#include "worker.h"

#define HISTORY_NAME PM_REPL_HISTORY_NAME
#define STATE_NAME "replication.state"
/* user_data of a segment read: peer slot above the op bits. */
#define PEER_SHIFT OP_BITS

/* ---------------------------------------------------------------- state */

struct history {
	uint64_t id, epoch;        /* this shard's history (id 0: none yet) */
	uint64_t prev_id, prev_end;/* the history it continued at a promotion, and where */
};

enum peer_state { PEER_FREE = 0, PEER_SNAP, PEER_CATCHUP, PEER_LIVE };
static const char *const peer_states[] = { "free", "snapshot", "catchup", "live" };

struct peer {
	int fd;                    /* -1: free */
	enum peer_state state;
	struct sockaddr_in addr;
	uint64_t next_lsn;         /* the next record it gets */
	uint64_t recv_lsn, dur_lsn;/* what it acknowledged */
	uint8_t *out;              /* repl_send_bytes, mapped: pages touched as used */
	uint64_t head, tail;       /* bytes to send: out[head, tail) */
	uint8_t in[4 * PM_REPL_ACK_BYTES];
	uint32_t in_len;
	bool want_out;             /* EPOLLOUT asked for */
	uint64_t last_in_ms, last_ping_ms;
	/* a full sync */
	struct pm_snap_writer *wr;
	uint64_t snap_bytes;
	/* catching up from the segments */
	int seg_fd;
	uint64_t seg_next;         /* first LSN of the segment after the open one (0: none) */
	uint64_t file_off;         /* of dbuf[0] in the segment */
	uint64_t scan_lsn;         /* the LSN of the record at dbuf[dpos] */
	uint8_t *dbuf;             /* PM_REPL_READ_BYTES */
	uint32_t dlen, dpos;
	bool reading, eof, reopen;
	bool opening;              /* the in-flight request (reading) is the segment's open */
	uint64_t open_first, open_next; /* ... of the segment from this LSN; the next one's (0: none) */
	char open_name[NAME_BYTES];
	uint32_t reopens;          /* segment opened again without a record found */
	uint64_t bytes_sent, records_sent;
};

enum link_state { LINK_NONE = 0, LINK_DOWN, LINK_CONNECTING, LINK_HANDSHAKE, LINK_SNAPSHOT,
		  LINK_INSTALL, LINK_STREAMING };
static const char *const link_states[] = { "none", "down", "connecting", "handshake", "snapshot",
					   "installing", "streaming" };

struct link {
	int fd;
	enum link_state st;
	struct sockaddr_in to;
	uint8_t *buf;              /* PM_REPL_LINK_BYTES */
	uint32_t len;
	uint64_t retry_ms, backoff_ms, last_in_ms;
	uint64_t sent_recv, sent_dur; /* the last ACK sent */
	bool ack_due;
	/* a full sync being received (its file: repl_disk.c) */
	uint64_t img_lsn;
	uint64_t had;              /* records the install discards (counted at its start) */
	uint64_t new_id, new_epoch;/* the history it joins */
	uint64_t primary_lsn, primary_ms; /* the last PING */
	char error[128];           /* why the link last went down */
};

struct lag_sample {
	uint64_t lsn, ms;
};

struct pm_repl {
	enum pm_repl_role role;
	struct history h;
	/* primary */
	struct peer peers[PM_REPL_REPLICAS_MAX];
	struct lag_sample lag[PM_REPL_LAG_SAMPLES];
	uint32_t lag_n;            /* samples written (ring) */
	uint64_t acked;            /* pm_repl_acked_lsn, as last computed */
	/* replica */
	struct link link;
	/* counters */
	uint64_t full_syncs, partial_syncs, bytes_sent, cut_slow, refused, dropped;
	uint64_t full_syncs_received, discarded, apply_errors, link_drops, records_applied;
	bool io;                   /* this turn reads the sockets (pm_repl_turn) */
	uint64_t last_io_ms;
	struct pm_repl_disk *disk; /* the files of a full sync and of HISTORY (repl_disk.c) */
	/* an admin request that waits (ctl_step): for an install to end, then
	 * for its HISTORY to be durable before it is answered */
	bool ctl_queued, ctl_applied;
	struct pm_repl_ctl ctl;
	struct pm_dest ctl_dest;
};

struct pending_conn {
	int fd;
	uint8_t buf[PM_REPL_HELLO_BYTES];
	uint32_t have;
	uint64_t deadline_ms;
	struct sockaddr_in addr;
};

struct pm_repl_node {
	int lfd;                   /* repl_port listener, -1: none */
	struct pending_conn pending[PM_REPL_PENDING_MAX];
	enum pm_repl_role role;
	struct sockaddr_in primary;
	uint64_t refused;
	struct pm_repl_helper *helper; /* repl_disk.c's thread (NULL: none needed) */
};

/* What the admin thread hands a worker with a connection. */
struct conn_handoff {
	int fd;
	struct sockaddr_in addr;
	uint64_t epoch, repl_id, lsn;
};

/* The worker's monotonic clock in ms (its turn's reading): every timer of
 * replication runs on it, so that a step of the wall clock moves none. */
static inline uint64_t mono_now(const struct pm_worker *w)
{
	return w->now_ns / 1000000u;
}

static uint64_t mono_ms(void)
{
	return pm_mono_ns() / 1000000u;
}

uint64_t pm_repl_new_id(void)
{
	uint64_t id = 0;
	while (id == 0)
		if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
			id = mono_ms() * 0x9E3779B97F4A7C15ull; /* cannot happen on Linux >= 3.17 */
	return id;
}

static const char *addr_text(const struct sockaddr_in *a, char *out, size_t n)
{
	char ip[INET_ADDRSTRLEN] = "?";
	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(out, n, "%s:%u", ip, ntohs(a->sin_port));
	return out;
}

/* ---------------------------------------------------------------- a shard's history file */

/* data_dir/wal/shard-<i>/HISTORY: one line, replaced atomically (written to
 * a temporary name, synced, renamed, the directory synced). */
static int history_line(const struct pm_repl *r, char line[PM_REPL_HISTORY_BYTES])
{
	int n = snprintf(line, PM_REPL_HISTORY_BYTES,
			 "id=%016" PRIx64 " epoch=%" PRIu64 " prev_id=%016" PRIx64 " prev_end=%" PRIu64
			 " fenced=%d\n", r->h.id, r->h.epoch, r->h.prev_id, r->h.prev_end,
			 r->role == PM_ROLE_FENCED);
	PM_ASSERT(n > 0 && n < (int)PM_REPL_HISTORY_BYTES);
	return n;
}

/* At start-up, before the workers run: here and now. */
static int history_save_now(struct pm_worker *w)
{
	char line[PM_REPL_HISTORY_BYTES];
	int n = history_line(w->repl, line);
	int rc = pm_datadir_replace(w->wal->dirfd, HISTORY_NAME, line, (size_t)n);
	if (rc != 0)
		fprintf(stderr, "pomaid: shard %u: cannot save its replication history: %s\n", w->id,
			strerror(-rc));
	return rc;
}

/* On the worker: in the background (repl_disk.c; a failure is printed there). */
static void history_save(struct pm_worker *w)
{
	char line[PM_REPL_HISTORY_BYTES];
	if (w->wal)
		pm_rd_history_save(w, w->repl->disk, line, (size_t)history_line(w->repl, line));
}

/* The history file, if any: 1 (read), 0 (none), -1 (unreadable). */
static int history_load(struct pm_worker *w, bool *fenced)
{
	struct pm_repl *r = w->repl;
	char line[PM_REPL_HISTORY_BYTES] = { 0 };
	int fd = w->wal ? pm_datadir_openat(w->wal->dirfd, HISTORY_NAME, O_RDONLY, 0) : -ENOENT;
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, line, sizeof(line) - 1);
	close(fd);
	int f = 0;
	if (n <= 0 || sscanf(line, "id=%" SCNx64 " epoch=%" SCNu64 " prev_id=%" SCNx64
			     " prev_end=%" SCNu64 " fenced=%d", &r->h.id, &r->h.epoch, &r->h.prev_id,
			     &r->h.prev_end, &f) != 5)
		return -1;
	*fenced = f != 0;
	return 1;
}

/* ---------------------------------------------------------------- the node's role */

uint64_t pm_repl_node_refused(const struct pm_daemon *d)
{
	return d->repl ? d->repl->refused : 0;
}

enum pm_repl_role pm_repl_node_role(const struct pm_daemon *d)
{
	return d->repl ? d->repl->role : PM_ROLE_PRIMARY;
}

static const char *const role_names[] = { "primary", "replica", "detached", "fenced" };

int pm_repl_node_save(struct pm_daemon *d, enum pm_repl_role role,
		      const struct sockaddr_in *primary)
{
	char text[128], at[64];
	int n = snprintf(text, sizeof(text), "role=%s\nprimary=%s\n", role_names[role],
			 role == PM_ROLE_REPLICA ? addr_text(primary, at, sizeof(at)) : "");
	d->repl->role = role;
	if (primary)
		d->repl->primary = *primary;
	return pm_datadir_replace(d->data_fd, STATE_NAME, text, (size_t)n);
}

static void node_load(struct pm_daemon *d)
{
	struct pm_repl_node *n = d->repl;
	char text[256] = { 0 }, role[32] = "", prim[96] = "";
	int fd = pm_datadir_openat(d->data_fd, STATE_NAME, O_RDONLY, 0);
	if (fd < 0)
		return;
	ssize_t got = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (got <= 0)
		return;
	(void)sscanf(text, "role=%31s\nprimary=%95s", role, prim);
	if (!strcmp(role, "replica") && pm_hostport_parse(prim, &n->primary) == 0)
		n->role = PM_ROLE_REPLICA;
	else if (!strcmp(role, "detached"))
		n->role = PM_ROLE_DETACHED;
}

/* ---------------------------------------------------------------- epoll */

static void watch(struct pm_worker *w, int fd, uint32_t events, int op)
{
	struct epoll_event ev = { .events = events, .data.u32 = PM_TCP_REPL_TOKEN };
	(void)epoll_ctl(w->ep, op, fd, &ev);
}

static void close_fd(struct pm_worker *w, int *fd)
{
	if (*fd < 0)
		return;
	epoll_ctl(w->ep, EPOLL_CTL_DEL, *fd, NULL);
	close(*fd);
	*fd = -1;
}

/* ---------------------------------------------------------------- primary: peers */

static uint64_t out_room(const struct pm_worker *w, const struct peer *p)
{
	return w->d->cfg.repl_send_bytes - (p->tail - p->head);
}

/* n bytes at the end of the send buffer (moving what waits to its start
 * when the end is reached), or NULL when there is no room. */
static uint8_t *out_take(struct pm_worker *w, struct peer *p, uint64_t n)
{
	uint64_t cap = w->d->cfg.repl_send_bytes;
	if (p->tail - p->head + n > cap)
		return NULL;
	if (p->tail + n > cap) {
		memmove(p->out, p->out + p->head, p->tail - p->head);
		p->tail -= p->head;
		p->head = 0;
	}
	uint8_t *at = p->out + p->tail;
	p->tail += n;
	return at;
}

static void peer_drop(struct pm_worker *w, struct peer *p, const char *why)
{
	char at[64];
	struct pm_repl *r = w->repl;
	if (p->fd < 0)
		return;
	fprintf(stderr, "pomaid: shard %u: replica %s dropped: %s\n", w->id,
		addr_text(&p->addr, at, sizeof(at)), why);
	close_fd(w, &p->fd);
	if (p->seg_fd >= 0)
		close(p->seg_fd);
	p->seg_fd = -1;
	if (p->out)
		madvise(p->out, w->d->cfg.repl_send_bytes, MADV_DONTNEED);
	free(p->wr);
	p->wr = NULL;
	p->state = PEER_FREE;
	p->head = p->tail = 0;
	r->dropped++;
	/* a read in flight still completes into dbuf: the slot is reused only after */
}

/* Refuse a connection: one REFUSE frame (best effort), then close. */
static void refuse(int fd, uint16_t reason, const char *text)
{
	uint8_t f[PM_REPL_FRAME_HEADER_BYTES + 4 + PM_REPL_TEXT_BYTES_MAX];
	size_t n = pm_repl_encode_refuse(f, sizeof(f), reason, text, (uint32_t)strlen(text));
	if (n)
		(void)send(fd, f, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/* Times a catching-up replica's segment is opened again with no record
 * found in between before it is dropped (a log that cannot be read there). */
#define PM_REPL_REOPENS_MAX 64u

/* The lowest LSN of the log this shard still has on disk. */
static uint64_t oldest_lsn(struct pm_worker *w)
{
	return w->wal->nsegs > 0 ? w->wal->segs[0] : w->wal->next_lsn; /* the log keeps the list */
}

void pm_repl_adopt(struct pm_worker *w, const uint8_t *body, uint32_t len)
{
	struct pm_repl *r = w->repl;
	struct conn_handoff c;
	char at[64], why[PM_REPL_TEXT_BYTES_MAX];
	if (len != sizeof(c))
		return;
	memcpy(&c, body, sizeof(c));
	addr_text(&c.addr, at, sizeof(at));
	if (r->role != PM_ROLE_PRIMARY || !w->wal || w->wal->mode == PM_WAL_NONE) {
		bool role = r->role != PM_ROLE_PRIMARY;
		snprintf(why, sizeof(why), "%s", role ? "this node is not a primary (it is a replica,"
			 " detached or fenced)" : "the primary runs with wal = none");
		r->refused++;
		refuse(c.fd, role ? PM_REPL_REFUSE_ROLE : PM_REPL_REFUSE_NO_LOG, why);
		return;
	}
	if (c.epoch > r->h.epoch) {
		/* a replica has seen a later primary: this one is stale and takes no
		 * more writes until it follows the new one */
		snprintf(why, sizeof(why), "the replica has seen epoch %" PRIu64 ", this primary has %"
			 PRIu64 ": it stops taking writes", c.epoch, r->h.epoch);
		fprintf(stderr, "pomaid: shard %u: replica %s: %s (fenced)\n", w->id, at, why);
		r->role = PM_ROLE_FENCED;
		history_save(w);
		r->refused++;
		refuse(c.fd, PM_REPL_REFUSE_EPOCH, why);
		return;
	}
	struct peer *p = NULL;
	for (uint32_t i = 0; i < PM_REPL_REPLICAS_MAX && !p; i++)
		if (r->peers[i].fd < 0 && !r->peers[i].reading)
			p = &r->peers[i];
	if (!p || (!p->out && (p->out = mmap(NULL, w->d->cfg.repl_send_bytes, PROT_READ | PROT_WRITE,
					      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)) ==
				      MAP_FAILED) ||
	    (!p->dbuf && !(p->dbuf = malloc(PM_REPL_READ_BYTES)))) {
		if (p && p->out == MAP_FAILED)
			p->out = NULL;
		r->refused++;
		refuse(c.fd, PM_REPL_REFUSE_FULL, "this shard serves its most replicas");
		return;
	}
	struct pm_wal *l = w->wal;
	uint64_t last = l->next_lsn - 1, from = UINT64_MAX, diverged = 0;
	if (c.repl_id && c.repl_id == r->h.id) {
		if (c.lsn <= last)
			from = c.lsn;
		else
			diverged = c.lsn - last;
	} else if (c.repl_id && c.repl_id == r->h.prev_id) {
		if (c.lsn <= r->h.prev_end)
			from = c.lsn;
		else
			diverged = c.lsn - r->h.prev_end;
	}
	if (from != UINT64_MAX && from < last && from + 1 < oldest_lsn(w))
		from = UINT64_MAX; /* the log from there is gone: a full sync */
	if (diverged)
		fprintf(stderr, "pomaid: shard %u: replica %s has %" PRIu64 " records this history does"
				" not (a divergent tail): a full sync discards them\n", w->id, at,
			diverged);
	*p = (struct peer){ .fd = c.fd, .addr = c.addr, .out = p->out, .dbuf = p->dbuf, .seg_fd = -1,
			    .last_in_ms = mono_now(w), .last_ping_ms = mono_now(w) };
	int one = 1;
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	watch(w, p->fd, EPOLLIN, EPOLL_CTL_ADD);
	const struct pm_config *cfg = &w->d->cfg;
	struct in_addr bind = { 0 };
	inet_pton(AF_INET, cfg->bind, &bind);
	uint8_t *f = out_take(w, p, PM_REPL_WELCOME_BYTES + PM_REPL_SNAP_BEGIN_BYTES);
	uint8_t mode = from != UINT64_MAX ? PM_REPL_PARTIAL : PM_REPL_FULL;
	size_t n = pm_repl_encode_welcome(f, PM_REPL_WELCOME_BYTES, mode, r->h.epoch, r->h.id,
					  mode == PM_REPL_PARTIAL ? from : last, bind.s_addr,
					  (uint16_t)cfg->base_port, (uint16_t)cfg->tcp_port);
	PM_ASSERT(n == PM_REPL_WELCOME_BYTES);
	if (mode == PM_REPL_PARTIAL) {
		p->tail -= PM_REPL_SNAP_BEGIN_BYTES;
		p->next_lsn = from + 1;
		p->state = PEER_CATCHUP;
		r->partial_syncs++;
	} else {
		(void)pm_repl_encode_snap_begin(f + n, PM_REPL_SNAP_BEGIN_BYTES, last, 0);
		p->wr = malloc(sizeof(*p->wr));
		if (!p->wr) {
			peer_drop(w, p, "out of memory for a snapshot writer");
			return;
		}
		pm_snap_writer_init(p->wr, &w->shard, w->id, last, w->now_ms);
		p->next_lsn = last + 1;
		p->state = PEER_SNAP;
		r->full_syncs++;
	}
	printf("pomaid: shard %u: replica %s connected: %s sync from LSN %" PRIu64 "\n", w->id, at,
	       mode == PM_REPL_PARTIAL ? "partial" : "full", mode == PM_REPL_PARTIAL ? from + 1 : last);
	fflush(stdout);
}

/* RECORDS of whole records [p, p + n) starting at first (count of them). */
static bool send_records(struct pm_worker *w, struct peer *pe, const uint8_t *p, uint32_t n,
			 uint64_t first, uint32_t count)
{
	uint32_t hdr = PM_REPL_FRAME_HEADER_BYTES + PM_REPL_RECORDS_FIXED_BYTES;
	uint8_t *f = out_take(w, pe, (uint64_t)hdr + n);
	if (!f)
		return false;
	size_t fn = pm_repl_encode_records_header(f, first, count, n);
	PM_ASSERT(fn == (size_t)hdr + n);
	memcpy(f + hdr, p, n);
	pe->next_lsn = first + count;
	pe->records_sent += count;
	return true;
}

void pm_repl_on_batch(struct pm_worker *w, const uint8_t *p, uint32_t n, uint64_t first,
		      uint64_t last)
{
	struct pm_repl *r = w->repl;
	if (!r || r->role != PM_ROLE_PRIMARY || n == 0)
		return;
	struct lag_sample *top = r->lag_n ? &r->lag[(r->lag_n - 1) % PM_REPL_LAG_SAMPLES] : NULL;
	if (top && mono_now(w) - top->ms < PM_REPL_LAG_SAMPLE_MS)
		top->lsn = last; /* the window's last LSN: written no earlier than its start */
	else
		r->lag[r->lag_n++ % PM_REPL_LAG_SAMPLES] = (struct lag_sample){ last, mono_now(w) };
	for (uint32_t i = 0; i < PM_REPL_REPLICAS_MAX; i++) {
		struct peer *pe = &r->peers[i];
		if (pe->fd < 0 || pe->state != PEER_LIVE)
			continue;
		if (pe->next_lsn != first) {
			peer_drop(w, pe, "its stream lost its place in the log");
			continue;
		}
		if (!send_records(w, pe, p, n, first, (uint32_t)(last - first + 1))) {
			r->cut_slow++;
			peer_drop(w, pe, "it reads slower than this shard writes: its send buffer"
					 " (repl_send_bytes) is full; it resyncs");
		}
	}
}

/* ---------------------------------------------------------------- primary: catching up from disk */

static void seg_read(struct pm_worker *w, struct peer *p, uint32_t slot);

/* The segment's open completed with res (a descriptor, or -errno). */
static void seg_open_done(struct pm_worker *w, struct peer *p, int res)
{
	p->reading = p->opening = false;
	if (p->fd < 0) { /* dropped while the open was in flight */
		if (res >= 0)
			close(res);
		return;
	}
	if (res < 0) {
		peer_drop(w, p, "the log it needs is no longer on disk");
		return;
	}
	p->seg_fd = res;
	p->seg_next = p->open_next;
	p->file_off = PM_WAL_SEGMENT_HEADER_BYTES;
	p->scan_lsn = p->open_first;
	p->dlen = p->dpos = 0;
	p->eof = false;
}

/* Open the segment that holds p->next_lsn (issue 20: through the worker's
 * ring, as its reads; here and now only without io_uring): false when it
 * is gone. Its first read is issued once the open has completed. */
static bool seg_open(struct pm_worker *w, struct peer *p, uint32_t slot)
{
	struct pm_wal *l = w->wal;
	int n = (int)l->nsegs; /* the log keeps the list: nothing is listed at run time */
	int k = -1;
	for (int i = 0; i < n && l->segs[i] <= p->next_lsn; i++)
		k = i;
	if (k < 0)
		return false;
	PM_ASSERT(p->seg_fd < 0 && !p->reading);
	pm_wal_seg_name(l->segs[k], p->open_name);
	p->open_first = l->segs[k];
	p->open_next = k + 1 < n ? l->segs[k + 1] : 0;
	struct io_uring_sqe *s = l->uring ? io_uring_get_sqe(&l->ring) : NULL;
	if (!l->uring) {
		seg_open_done(w, p, pm_datadir_openat(l->dirfd, p->open_name, O_RDONLY, 0));
		return true; /* a failure dropped the peer already */
	}
	if (!s)
		return true; /* no free entry (rare): the next turn opens it */
	io_uring_prep_openat(s, l->dirfd, p->open_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	io_uring_sqe_set_data64(s, (uint64_t)slot << PEER_SHIFT | OP_REPL);
	io_uring_submit(&l->ring);
	p->reading = p->opening = true;
	return true;
}

/* Send what dbuf holds of records up to the last one written; false when
 * the peer must go (a bad record on this side's disk, or no room). */
static bool seg_scan(struct pm_worker *w, struct peer *p)
{
	struct pm_wal *l = w->wal;
	uint32_t start = p->dpos, count = 0;
	uint64_t first = 0;
	while (p->dpos < p->dlen && p->scan_lsn <= l->written_lsn) {
		struct pm_wal_record rec;
		size_t used = 0;
		const uint8_t *at = p->dbuf + p->dpos;
		uint32_t left = p->dlen - p->dpos;
		enum pm_wal_scan_result res = pm_wal_scan_next(at, left, p->scan_lsn, &rec, &used);
		if (res != PM_WAL_RECORD) {
			/* A record cut by the end of the buffer is read again from its
			 * start. Anything else (zeros) ends this segment's records as
			 * they were when read: the next segment, or this one again
			 * (read before its last write landed), is opened afresh. */
			uint32_t need = left >= 4 ? PM_WAL_RECORD_HEADER_BYTES + (at[0] | at[1] << 8 |
				(uint32_t)at[2] << 16 | (uint32_t)at[3] << 24) : UINT32_MAX;
			if (p->eof || (left >= PM_WAL_RECORD_HEADER_BYTES && need <= left))
				p->reopen = true;
			break;
		}
		if (rec.lsn < p->next_lsn) {
			start = p->dpos + (uint32_t)used; /* before what the replica has */
		} else {
			if (count == 0)
				first = rec.lsn;
			count++;
			/* one frame at most: send what is gathered, start the next */
			if (p->dpos + used - start > PM_REPL_FRAME_BYTES_MAX - 64u) {
				if (!send_records(w, p, p->dbuf + start, p->dpos - start, first, count - 1))
					return false;
				start = p->dpos;
				first = rec.lsn;
				count = 1;
			}
		}
		p->dpos += (uint32_t)used;
		p->scan_lsn++;
	}
	if (count && !send_records(w, p, p->dbuf + start, p->dpos - start, first, count))
		return false;
	p->dlen = p->dpos; /* what was not scanned is read again: it may have been read unwritten */
	if (p->eof && p->dpos == p->dlen)
		p->reopen = true; /* the end of the file */
	if (p->reopen) {
		p->reopens = count ? 0 : p->reopens + 1;
		close(p->seg_fd);
		p->seg_fd = -1;
		p->reopen = false;
		if (p->reopens > PM_REPL_REOPENS_MAX)
			return false; /* the same place, again and again: the log there is unreadable */
	}
	return true;
}

static void seg_read_done(struct pm_worker *w, struct peer *p, int res)
{
	p->reading = false;
	if (p->fd < 0)
		return; /* dropped while the read was in flight */
	if (res < 0) {
		peer_drop(w, p, "reading the log for it failed");
		return;
	}
	p->eof = res == 0;
	p->dlen += (uint32_t)res;
	if (!seg_scan(w, p))
		peer_drop(w, p, "its send buffer is full while it catches up, or the log on disk"
				" cannot be read where it needs it");
}

static void seg_read(struct pm_worker *w, struct peer *p, uint32_t slot)
{
	struct pm_wal *l = w->wal;
	if (p->dpos) { /* keep the unread tail at the front */
		memmove(p->dbuf, p->dbuf + p->dpos, p->dlen - p->dpos);
		p->file_off += p->dpos;
		p->dlen -= p->dpos;
		p->dpos = 0;
	}
	uint32_t n = PM_REPL_READ_BYTES - p->dlen;
	uint64_t off = p->file_off + p->dlen;
	struct io_uring_sqe *s = l->uring ? io_uring_get_sqe(&l->ring) : NULL;
	if (!s) { /* without io_uring (or no free entry, rare): here */
		ssize_t got = pread(p->seg_fd, p->dbuf + p->dlen, n, (off_t)off);
		p->reading = true;
		seg_read_done(w, p, got < 0 ? -errno : (int)got);
		return;
	}
	io_uring_prep_read(s, p->seg_fd, p->dbuf + p->dlen, n, off);
	io_uring_sqe_set_data64(s, (uint64_t)slot << PEER_SHIFT | OP_REPL);
	io_uring_submit(&l->ring);
	p->reading = true;
}

void pm_repl_on_cqe(struct pm_worker *w, uint64_t user_data, int res)
{
	uint32_t slot = (uint32_t)(user_data >> PEER_SHIFT);
	if (w->repl && (user_data & PM_RD_USER_DATA)) {
		pm_rd_on_cqe(w, w->repl->disk, user_data, res);
		return;
	}
	if (!w->repl || slot >= PM_REPL_REPLICAS_MAX)
		return;
	struct peer *p = &w->repl->peers[slot];
	if (p->opening)
		seg_open_done(w, p, res);
	else
		seg_read_done(w, p, res);
}

bool pm_repl_inflight(const struct pm_worker *w)
{
	if (w->repl && pm_rd_inflight(w->repl->disk))
		return true;
	for (uint32_t i = 0; w->repl && i < PM_REPL_REPLICAS_MAX; i++)
		if (w->repl->peers[i].reading)
			return true;
	return false;
}

bool pm_repl_installing(const struct pm_worker *w)
{
	return w->repl && (w->repl->link.st == LINK_INSTALL || pm_rd_installing(w->repl->disk));
}

uint64_t pm_repl_keep_lsn(const struct pm_worker *w)
{
	uint64_t keep = UINT64_MAX;
	for (uint32_t i = 0; w->repl && i < PM_REPL_REPLICAS_MAX; i++) {
		const struct peer *p = &w->repl->peers[i];
		if (p->fd >= 0 && p->state != PEER_LIVE)
			keep = PM_MIN(keep, p->next_lsn);
	}
	return keep;
}

/* A replica that catches up: from the batch in flight, the disk, or live. */
static void catch_up(struct pm_worker *w, struct peer *p, uint32_t slot)
{
	struct pm_wal *l = w->wal;
	if (p->reading)
		return;
	if (p->next_lsn == l->submitted_lsn + 1) {
		p->state = PEER_LIVE; /* every batch from now on goes to it as it is written */
		if (p->seg_fd >= 0)
			close(p->seg_fd);
		p->seg_fd = -1;
		return;
	}
	if (l->inflight && p->next_lsn == l->written_lsn + 1) { /* the batch in flight, from memory */
		const struct batch *b = &l->b[l->fill ^ 1];
		if (b->first_lsn == p->next_lsn && send_records(w, p, b->buf, b->len, b->first_lsn,
							   (uint32_t)(b->last_lsn - b->first_lsn + 1)))
			p->state = PEER_LIVE;
		return;
	}
	if (p->next_lsn > l->written_lsn || out_room(w, p) < PM_REPL_READ_BYTES + 64u)
		return; /* its write completes in a turn or two; or the replica reads first */
	if (p->seg_fd < 0) {
		if (!seg_open(w, p, slot))
			peer_drop(w, p, "the log it needs is no longer on disk");
		return; /* read once it is open: the next turn */
	}
	seg_read(w, p, slot);
}

/* A full sync: the next slice of the snapshot, when the buffer has room. */
static void snap_step(struct pm_worker *w, struct peer *p)
{
	uint64_t want = PM_REPL_FRAME_HEADER_BYTES + PM_SNAP_SLICE_BYTES;
	if (out_room(w, p) < want + PM_REPL_SNAP_END_BYTES)
		return;
	uint8_t *f = out_take(w, p, want);
	size_t n = pm_snap_fill(p->wr, &w->shard, w->now_ms, f + PM_REPL_FRAME_HEADER_BYTES,
				PM_SNAP_SLICE_BYTES, PM_SNAP_SLICE_ITEMS);
	p->tail -= want - (n ? PM_REPL_FRAME_HEADER_BYTES + n : 0);
	if (n) {
		(void)pm_repl_encode_snap_data_header(f, (uint32_t)n);
		p->snap_bytes += n;
	}
	if (pm_snap_done(p->wr)) {
		uint8_t *e = out_take(w, p, PM_REPL_SNAP_END_BYTES);
		(void)pm_repl_encode_snap_end(e, PM_REPL_SNAP_END_BYTES, p->snap_bytes);
		free(p->wr);
		p->wr = NULL;
		p->state = PEER_CATCHUP;
	}
}

/* Send what waits; read the replica's ACKs. */
static uint32_t peer_io(struct pm_worker *w, struct peer *p)
{
	struct pm_repl *r = w->repl;
	uint32_t work = 0;
	if (mono_now(w) - p->last_ping_ms >= PM_REPL_PING_MS) { /* a full sync too: its replica answers */
		uint8_t *f = out_take(w, p, PM_REPL_PING_BYTES);
		if (f)
			(void)pm_repl_encode_ping(f, PM_REPL_PING_BYTES, w->wal->next_lsn - 1, w->now_ms);
		p->last_ping_ms = mono_now(w);
	}
	while (p->tail > p->head) {
		ssize_t n = send(p->fd, p->out + p->head, p->tail - p->head, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				peer_drop(w, p, strerror(errno));
				return work;
			}
			break;
		}
		p->head += (uint64_t)n;
		p->bytes_sent += (uint64_t)n;
		r->bytes_sent += (uint64_t)n;
		work++;
	}
	if (p->head == p->tail)
		p->head = p->tail = 0;
	bool want_out = p->tail > p->head;
	if (want_out != p->want_out) {
		watch(w, p->fd, EPOLLIN | (want_out ? EPOLLOUT : 0), EPOLL_CTL_MOD);
		p->want_out = want_out;
	}
	for (; r->io;) {
		ssize_t n = recv(p->fd, p->in + p->in_len, sizeof(p->in) - p->in_len, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			peer_drop(w, p, n == 0 ? "it closed the connection" : strerror(errno));
			return work;
		}
		if (n < 0)
			break;
		p->in_len += (uint32_t)n;
		p->last_in_ms = mono_now(w);
		work++;
		struct pm_repl_frame f;
		size_t used;
		enum pm_repl_result res;
		uint32_t off = 0;
		while ((res = pm_repl_decode(p->in + off, p->in_len - off, &f, &used)) == PM_REPL_OK) {
			if (f.type != PM_REPL_ACK || f.u.ack.received_lsn >= p->next_lsn) {
				peer_drop(w, p, f.type != PM_REPL_ACK ? "it sent a frame other than ACK"
								     : "it acknowledged records never sent");
				return work;
			}
			p->recv_lsn = PM_MAX(p->recv_lsn, f.u.ack.received_lsn);
			p->dur_lsn = PM_MAX(p->dur_lsn, f.u.ack.durable_lsn);
			off += (uint32_t)used;
		}
		if (res != PM_REPL_MORE) {
			peer_drop(w, p, pm_repl_result_name(res));
			return work;
		}
		memmove(p->in, p->in + off, p->in_len - off);
		p->in_len -= off;
		if (p->in_len == sizeof(p->in)) { /* MORE with the buffer full: no ACK is that long */
			peer_drop(w, p, "it sent a frame longer than an ACK");
			return work;
		}
	}
	if (mono_now(w) - p->last_in_ms > PM_REPL_TIMEOUT_MS)
		peer_drop(w, p, "no acknowledgement within the link timeout");
	return work;
}

uint64_t pm_repl_acked_lsn(const struct pm_worker *w)
{
	const struct pm_repl *r = w->repl;
	uint32_t want = w->d->cfg.min_replicas, n = 0;
	uint64_t v[PM_REPL_REPLICAS_MAX];
	bool durable = w->d->cfg.repl_ack == PM_REPL_ACK_DURABLE;
	for (uint32_t i = 0; r && i < PM_REPL_REPLICAS_MAX; i++)
		if (r->peers[i].fd >= 0)
			v[n++] = durable ? r->peers[i].dur_lsn : r->peers[i].recv_lsn;
	if (want == 0 || n < want)
		return 0;
	/* the want-th largest: at least want replicas have everything up to it */
	for (uint32_t i = 0; i < want; i++)
		for (uint32_t j = i + 1; j < n; j++)
			if (v[j] > v[i]) {
				uint64_t t = v[i];
				v[i] = v[j];
				v[j] = t;
			}
	return v[want - 1];
}

bool pm_repl_must_hold(const struct pm_worker *w)
{
	return w->repl && w->repl->role == PM_ROLE_PRIMARY &&
	       w->d->cfg.repl_ack != PM_REPL_ACK_NONE && w->d->cfg.min_replicas > 0;
}

static uint32_t connected(const struct pm_repl *r)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < PM_REPL_REPLICAS_MAX; i++)
		n += r->peers[i].fd >= 0;
	return n;
}

bool pm_repl_takes_writes(const struct pm_worker *w)
{
	return !w->repl || w->repl->role == PM_ROLE_PRIMARY;
}

enum pm_status pm_repl_admit(struct pm_worker *w, const struct pm_request *req)
{
	const struct pm_repl *r = w->repl;
	if (!r || !pm_wal_logs(req->op))
		return PM_OK;
	if (!pm_repl_takes_writes(w) || (w->d->cluster && !pm_cluster_may_write(w)))
		return PM_E_READONLY; /* a replica; or a primary without its write lease */
	if (w->d->cfg.min_replicas && connected(r) < w->d->cfg.min_replicas)
		return PM_E_NOREPLICAS;
	return PM_OK;
}

static uint32_t primary_turn(struct pm_worker *w)
{
	struct pm_repl *r = w->repl;
	uint32_t work = 0;
	for (uint32_t i = 0; i < PM_REPL_REPLICAS_MAX; i++) {
		struct peer *p = &r->peers[i];
		if (p->fd < 0)
			continue;
		if (p->state == PEER_SNAP)
			snap_step(w, p);
		if (p->fd >= 0 && p->state == PEER_CATCHUP)
			catch_up(w, p, i);
		if (p->fd >= 0)
			work += peer_io(w, p);
	}
	uint64_t acked = pm_repl_acked_lsn(w);
	if (acked != r->acked || pm_repl_must_hold(w)) {
		r->acked = acked;
		work += pm_wal_release_held(w); /* acknowledged, or past repl_ack_timeout_ms */
	}
	return work;
}

/* ---------------------------------------------------------------- replica: the link */

static void link_down(struct pm_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void link_down(struct pm_worker *w, const char *fmt, ...)
{
	struct link *k = &w->repl->link;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(k->error, sizeof(k->error), fmt, ap);
	va_end(ap);
	if (k->st >= LINK_HANDSHAKE)
		fprintf(stderr, "pomaid: shard %u: link to the primary down: %s\n", w->id, k->error);
	close_fd(w, &k->fd);
	pm_rd_image_abandon(w, w->repl->disk);
	w->repl->link_drops += k->st >= LINK_HANDSHAKE;
	k->st = w->repl->role == PM_ROLE_REPLICA ? LINK_DOWN : LINK_NONE;
	k->len = 0;
	k->backoff_ms = PM_MIN(PM_MAX(k->backoff_ms * 2, PM_REPL_RETRY_MS), PM_REPL_RETRY_MS_MAX);
	k->retry_ms = mono_now(w) + k->backoff_ms;
}

static void link_connect(struct pm_worker *w)
{
	struct link *k = &w->repl->link;
	k->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (k->fd < 0) {
		link_down(w, "socket: %s", strerror(errno));
		return;
	}
	int one = 1;
	setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(k->fd, (const struct sockaddr *)&k->to, sizeof(k->to)) != 0 &&
	    errno != EINPROGRESS) {
		link_down(w, "connect: %s", strerror(errno));
		return;
	}
	watch(w, k->fd, EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
	k->st = LINK_CONNECTING;
	k->last_in_ms = mono_now(w);
}

static bool link_send(struct pm_worker *w, const uint8_t *p, size_t n)
{
	ssize_t s = send(w->repl->link.fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	return s == (ssize_t)n; /* small frames on a socket that drains: else the link goes */
}

/* The connection is up: say who this shard is and what it has. */
static void link_hello(struct pm_worker *w)
{
	struct pm_repl *r = w->repl;
	struct link *k = &r->link;
	int err = 0;
	socklen_t el = sizeof(err);
	struct pollfd pf = { .fd = k->fd, .events = POLLOUT };
	if (poll(&pf, 1, 0) <= 0) {
		if (mono_now(w) - k->last_in_ms > PM_REPL_TIMEOUT_MS)
			link_down(w, "connect: timed out");
		return;
	}
	if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err) {
		link_down(w, "connect: %s", strerror(err ? err : errno));
		return;
	}
	uint8_t f[PM_REPL_HELLO_BYTES];
	uint64_t applied = pm_wal_next_lsn(w) - 1;
	size_t n = pm_repl_encode_hello(f, sizeof(f), w->id, w->d->nshards, r->h.epoch, r->h.id,
					r->h.id ? applied : 0);
	if (!link_send(w, f, n)) {
		link_down(w, "sending HELLO: %s", strerror(errno));
		return;
	}
	watch(w, k->fd, EPOLLIN, EPOLL_CTL_MOD);
	k->st = LINK_HANDSHAKE;
	k->last_in_ms = mono_now(w);
}

static void link_welcome(struct pm_worker *w, const struct pm_repl_frame *f)
{
	struct pm_repl *r = w->repl;
	struct link *k = &r->link;
	if (f->u.welcome.epoch < r->h.epoch) {
		r->refused++;
		link_down(w, "the primary's epoch %" PRIu64 " is lower than this shard's %" PRIu64
			  ": its stream is refused", f->u.welcome.epoch, r->h.epoch);
		k->retry_ms = mono_now(w) + PM_REPL_RETRY_MS_MAX;
		return;
	}
	struct pm_wire_primary pr = { .addr_be = f->u.welcome.addr_be,
				      .udp_port = f->u.welcome.udp_port,
				      .tcp_port = f->u.welcome.tcp_port };
	if (pr.addr_be == 0) /* it listens on every address: the one we reached it at */
		pr.addr_be = k->to.sin_addr.s_addr;
	pm_reply_set_primary(&pr);
	k->new_id = f->u.welcome.repl_id;
	k->new_epoch = f->u.welcome.epoch;
	k->backoff_ms = 0;
	if (f->u.welcome.mode == PM_REPL_PARTIAL) {
		if (f->u.welcome.lsn != pm_wal_next_lsn(w) - 1) {
			link_down(w, "the primary resumes at LSN %" PRIu64 ", this shard is at %" PRIu64,
				  f->u.welcome.lsn, pm_wal_next_lsn(w) - 1);
			return;
		}
		if (r->h.id != k->new_id || r->h.epoch != k->new_epoch) {
			r->h.id = k->new_id; /* the same records, under the history's new name */
			r->h.epoch = k->new_epoch;
			history_save(w);
		}
		k->st = LINK_STREAMING;
		return;
	}
	k->st = LINK_SNAPSHOT;
}

/* SNAP_BEGIN / SNAP_DATA / SNAP_END: the image into <lsn>.snap.image
 * (repl_disk.c); *wait: its step is under way (the frame stays). After
 * SNAP_END the image is on disk and checked: the install comes next. */
static bool link_image(struct pm_worker *w, const struct pm_repl_frame *f, bool *wait)
{
	struct link *k = &w->repl->link;
	char err[256];
	switch (pm_rd_image(w, w->repl->disk, f, err, sizeof(err))) {
	case PM_RD_WAIT:
		*wait = true;
		return true;
	case PM_RD_FAIL:
		link_down(w, "full sync: %s", err);
		return true; /* said: the link is down already */
	case PM_RD_DONE:
		break;
	}
	if (f->type == PM_REPL_SNAP_BEGIN)
		k->img_lsn = f->u.snap_begin.start_lsn;
	else if (f->type == PM_REPL_SNAP_END)
		k->st = LINK_INSTALL;
	return true;
}

/* The received image replaces the shard, when nothing else uses it: the
 * history given up (its file removed, so that a crash in between starts a
 * full sync again), the log started over after the image's LSN, the image
 * published and loaded, the new history saved (repl_disk.c, a step per
 * turn). Once begun it runs to its end, the link up or not. */
static void link_install(struct pm_worker *w)
{
	struct pm_repl *r = w->repl;
	struct link *k = &r->link;
	char err[256];
	bool emptied;
	if (!pm_rd_installing(r->disk)) {
		if (pm_snap_busy(w))
			return; /* a local snapshot finishes first */
		k->had = pm_wal_next_lsn(w) - 1;
	}
	switch (pm_rd_install(w, r->disk, k->img_lsn, &emptied, err, sizeof(err))) {
	case PM_RD_WAIT:
		return;
	case PM_RD_FAIL:
		if (emptied)
			r->h.id = 0; /* nothing is left: the next connection asks for a full sync */
		if (k->st == LINK_INSTALL)
			link_down(w, "full sync: %s", err);
		else
			fprintf(stderr, "pomaid: shard %u: full sync: %s\n", w->id, err);
		return;
	case PM_RD_DONE:
		break;
	}
	r->h.id = k->new_id;
	r->h.epoch = k->new_epoch;
	history_save(w);
	r->full_syncs_received++;
	r->discarded += k->had;
	printf("pomaid: shard %u: full sync done at LSN %" PRIu64 " (this shard's previous %" PRIu64
	       " records discarded)\n", w->id, k->img_lsn, k->had);
	fflush(stdout);
	if (k->st == LINK_INSTALL) {
		k->st = LINK_STREAMING;
		k->ack_due = true;
	}
}

/* RECORDS: checked, logged at their LSNs and applied; false: the link goes.
 * *wait: the log has no room for them now (the frame stays). */
static bool link_records(struct pm_worker *w, const struct pm_repl_frame *f, bool *wait)
{
	struct pm_repl *r = w->repl;
	const uint8_t *p = f->u.records.bytes;
	uint32_t left = f->u.records.len;
	if (f->u.records.first_lsn != pm_wal_next_lsn(w)) {
		link_down(w, "RECORDS from LSN %" PRIu64 ", this shard expects %" PRIu64,
			  f->u.records.first_lsn, pm_wal_next_lsn(w));
		return false;
	}
	if (!pm_wal_has_room(w, left)) {
		*wait = true;
		return true;
	}
	for (uint32_t i = 0; i < f->u.records.count; i++) {
		struct pm_wal_record rec;
		size_t used = 0;
		uint64_t want = pm_wal_next_lsn(w);
		if (pm_wal_scan_next(p, left, want, &rec, &used) != PM_WAL_RECORD) {
			link_down(w, "record %" PRIu64 " from the primary is damaged", want);
			return false;
		}
		if (pm_wal_append_record(w, p, (uint32_t)used, rec.lsn) != 1) {
			link_down(w, "record %" PRIu64 " could not be logged", want);
			return false;
		}
		struct pm_reply rep;
		pm_wal_apply_record(w, &rec, &rep);
		if (rep.status != PM_OK && rep.status != PM_NOT_FOUND) {
			r->apply_errors++;
			if (rep.status == PM_E_NOMEM)
				fprintf(stderr, "pomaid: shard %u: record %" PRIu64 " from the primary:"
						" out of memory here (a replica needs the primary's memory)\n",
					w->id, rec.lsn);
		}
		r->records_applied++;
		p += used;
		left -= (uint32_t)used;
	}
	if (left) {
		link_down(w, "RECORDS with %u bytes past its %u records", left, f->u.records.count);
		return false;
	}
	w->repl->link.ack_due = true;
	return true;
}

static void link_ack(struct pm_worker *w)
{
	struct link *k = &w->repl->link;
	uint64_t recv = pm_wal_next_lsn(w) - 1, dur = PM_MIN(pm_wal_durable_lsn(w), recv);
	if (k->st == LINK_SNAPSHOT)
		recv = dur = 0; /* what it holds now is of the history being replaced */
	if (!k->ack_due && recv == k->sent_recv && dur == k->sent_dur)
		return;
	uint8_t f[PM_REPL_ACK_BYTES];
	size_t n = pm_repl_encode_ack(f, sizeof(f), recv, dur);
	ssize_t s = send(k->fd, f, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (s == (ssize_t)n) {
		k->sent_recv = recv;
		k->sent_dur = dur;
		k->ack_due = false;
	} else if (s >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
		link_down(w, "sending an ACK: %s", s >= 0 ? "short write" : strerror(errno));
	}
}

/* Read what the primary sent and act on whole frames. */
static uint32_t link_read(struct pm_worker *w)
{
	struct link *k = &w->repl->link;
	uint32_t work = 0;
	bool wait = false;
	for (uint32_t rounds = 0; rounds < 4 && k->fd >= 0 && !wait && k->st != LINK_INSTALL;
	     rounds++) {
		if (k->len < PM_REPL_LINK_BYTES && (w->repl->io || rounds > 0)) {
			ssize_t n = recv(k->fd, k->buf + k->len, PM_REPL_LINK_BYTES - k->len, MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
				link_down(w, "%s", n == 0 ? "the primary closed the connection"
							  : strerror(errno));
				return work;
			}
			if (n > 0) {
				k->len += (uint32_t)n;
				k->last_in_ms = mono_now(w);
				work++;
			}
		}
		uint32_t off = 0;
		struct pm_repl_frame f;
		size_t used;
		enum pm_repl_result res = PM_REPL_MORE;
		while (k->fd >= 0 && !wait && k->st != LINK_INSTALL &&
		       (res = pm_repl_decode(k->buf + off, k->len - off, &f, &used)) == PM_REPL_OK) {
			bool ok = true;
			if (f.type == PM_REPL_WELCOME && k->st == LINK_HANDSHAKE)
				link_welcome(w, &f);
			else if (f.type == PM_REPL_REFUSE) {
				w->repl->refused++;
				link_down(w, "refused by the primary: %.*s", (int)f.u.refuse.text_len,
					  f.u.refuse.text);
				k->retry_ms = mono_now(w) + PM_REPL_RETRY_MS_MAX;
			} else if (f.type >= PM_REPL_SNAP_BEGIN && f.type <= PM_REPL_SNAP_END &&
				   k->st == LINK_SNAPSHOT)
				ok = link_image(w, &f, &wait);
			else if (f.type == PM_REPL_RECORDS && k->st == LINK_STREAMING)
				ok = link_records(w, &f, &wait);
			else if (f.type == PM_REPL_PING && k->st >= LINK_SNAPSHOT) {
				k->primary_lsn = f.u.ping.lsn;
				k->primary_ms = f.u.ping.wall_ms;
				k->ack_due = true;
			} else
				ok = false;
			if (!ok && k->fd >= 0)
				link_down(w, "unexpected %s frame in state %s", pm_repl_type_name(f.type),
					  link_states[k->st]);
			if (!wait)
				off += (uint32_t)used;
		}
		if (k->fd < 0)
			return work;
		if (res != PM_REPL_MORE && res != PM_REPL_OK) {
			link_down(w, "bad frame from the primary: %s", pm_repl_result_name(res));
			return work;
		}
		memmove(k->buf, k->buf + off, k->len - off);
		k->len -= off;
		if (off == 0 && k->len < PM_REPL_LINK_BYTES && !wait)
			break; /* nothing whole: wait for more */
	}
	return work;
}

static uint32_t replica_turn(struct pm_worker *w)
{
	struct pm_repl *r = w->repl;
	struct link *k = &r->link;
	if (r->role != PM_ROLE_REPLICA)
		return 0;
	if (k->st == LINK_DOWN || k->st == LINK_NONE) {
		if (mono_now(w) < k->retry_ms || pm_rd_busy(r->disk))
			return 0; /* the last link's file work ends first */
		link_connect(w);
	}
	if (k->st == LINK_CONNECTING)
		link_hello(w);
	if (k->st == LINK_INSTALL)
		link_install(w);
	uint32_t work = k->fd >= 0 && k->st >= LINK_HANDSHAKE ? link_read(w) : 0;
	if (k->fd >= 0 && k->st >= LINK_SNAPSHOT && k->st != LINK_INSTALL)
		link_ack(w);
	if (k->fd >= 0 && k->st >= LINK_HANDSHAKE && mono_now(w) - k->last_in_ms > PM_REPL_TIMEOUT_MS)
		link_down(w, "nothing from the primary in %u ms", PM_REPL_TIMEOUT_MS);
	return work;
}

static void ctl_step(struct pm_worker *w);

uint32_t pm_repl_turn(struct pm_worker *w)
{
	struct pm_repl *r = w->repl;
	if (!r)
		return 0;
	if (w->d->listen_fd < 0 && !w->repl_ready && (r->link.fd >= 0 || connected(r))) {
		/* no TCP turn looked at the set: look here, when there is a socket to look for */
		struct epoll_event ev;
		w->repl_ready = epoll_wait(w->ep, &ev, 1, 0) > 0;
	}
	/* a system call per socket only when one is ready, or on the timers' clock */
	r->io = w->repl_ready || mono_now(w) - r->last_io_ms >= PM_REPL_IO_POLL_MS;
	if (r->io)
		r->last_io_ms = mono_now(w);
	w->repl_ready = false;
	pm_rd_turn(w, r->disk);
	if (pm_rd_installing(r->disk) && r->link.st != LINK_INSTALL)
		link_install(w); /* begun before the link went down: it ends */
	ctl_step(w);
	return r->role == PM_ROLE_PRIMARY ? primary_turn(w) : replica_turn(w);
}

/* ---------------------------------------------------------------- roles */

static void drop_all(struct pm_worker *w, const char *why)
{
	for (uint32_t i = 0; i < PM_REPL_REPLICAS_MAX; i++)
		peer_drop(w, &w->repl->peers[i], why);
}

static void ctl_apply(struct pm_worker *w, const struct pm_repl_ctl *c)
{
	struct pm_repl *r = w->repl;
	if (c->op == PM_REPL_CTL_FOLLOW) {
		drop_all(w, "this node now follows another primary");
		if (r->link.fd >= 0)
			link_down(w, "following another primary");
		r->role = PM_ROLE_REPLICA;
		r->link.to = c->primary;
		r->link.st = LINK_DOWN;
		r->link.retry_ms = 0;
		r->link.backoff_ms = 0;
		history_save(w); /* not fenced any more */
	} else if (c->op == PM_REPL_CTL_STOP) {
		if (r->link.fd >= 0)
			link_down(w, "replication stopped");
		r->role = r->role == PM_ROLE_PRIMARY ? PM_ROLE_PRIMARY : PM_ROLE_DETACHED;
		r->link.st = LINK_NONE;
	} else if (c->op == PM_REPL_CTL_PROMOTE) {
		if (r->link.fd >= 0)
			link_down(w, "promoted");
		drop_all(w, "this node was promoted: its replicas say HELLO again");
		r->h.prev_id = r->h.id;
		r->h.prev_end = pm_wal_next_lsn(w) - 1;
		r->h.id = c->repl_id;
		r->h.epoch = c->epoch;
		r->role = PM_ROLE_PRIMARY;
		r->link.st = LINK_NONE;
		history_save(w);
		/* the primary it followed is not where writes go now: a READONLY
		 * of its own (cluster mode, no write lease) names none */
		pm_reply_set_primary(&(struct pm_wire_primary){ 0 });
	}
}

/* The answer to the admin thread: the shard's history now, and its INFO. */
static void ctl_answer(struct pm_worker *w, const struct pm_dest *dest)
{
	const struct pm_repl *r = w->repl;
	uint8_t *out = w->scratch;
	uint32_t n = sizeof(struct pm_repl_ctl_reply);
	struct pm_repl_ctl_reply rep = { .role = r ? r->role : PM_ROLE_PRIMARY,
					 .epoch = r ? r->h.epoch : 0, .repl_id = r ? r->h.id : 0,
					 .lsn = pm_wal_next_lsn(w) - 1 };
	memcpy(out, &rep, sizeof(rep));
	n += pm_repl_info(w, (char *)out + n, PM_RING_PAYLOAD_MAX - (uint32_t)sizeof(struct pm_msg) - n);
	struct pm_msg reply = { .origin = w->id, .dest = *dest };
	pm_post_admin(w, &reply, out, n);
}

/* The request that waits: applied once no install runs (an install replaces
 * the history it would change), answered once its HISTORY is durable. */
static void ctl_step(struct pm_worker *w)
{
	struct pm_repl *r = w->repl;
	if (!r->ctl_queued)
		return;
	if (!r->ctl_applied) {
		if (pm_rd_installing(r->disk))
			return;
		ctl_apply(w, &r->ctl);
		r->ctl_applied = true;
	}
	if (pm_rd_history_busy(r->disk))
		return;
	r->ctl_queued = false;
	ctl_answer(w, &r->ctl_dest);
}

void pm_repl_ctl(struct pm_worker *w, const struct pm_msg *m, const uint8_t *body, uint32_t len)
{
	struct pm_repl *r = w->repl;
	struct pm_repl_ctl c;
	if (len != sizeof(c) || !r) {
		ctl_answer(w, &m->dest);
		return;
	}
	memcpy(&c, body, sizeof(c));
	if (c.op == PM_REPL_CTL_STATUS) { /* changes nothing: answered now */
		ctl_answer(w, &m->dest);
		return;
	}
	if (r->ctl_queued) /* the admin thread stopped waiting for it: answered as things stand */
		ctl_answer(w, &r->ctl_dest);
	r->ctl = c;
	r->ctl_dest = m->dest;
	r->ctl_queued = true;
	r->ctl_applied = false;
	ctl_step(w);
}

/* ---------------------------------------------------------------- INFO and stats */

__attribute__((format(printf, 4, 5))) static bool put(char *out, uint32_t cap, uint32_t *len,
						       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (uint32_t)n >= cap - *len)
		return false;
	*len += (uint32_t)n;
	return true;
}

uint32_t pm_repl_info(const struct pm_worker *w, char *out, uint32_t cap)
{
	const struct pm_repl *r = w->repl;
	uint32_t len = 0;
	if (!r)
		return 0;
	uint64_t last = pm_wal_next_lsn(w) - 1;
	bool ok = put(out, cap, &len,
		      "# Replication\r\nrole:%s\r\nrepl_epoch:%" PRIu64 "\r\nrepl_id:%016" PRIx64
		      "\r\nrepl_prev_id:%016" PRIx64 "\r\nrepl_prev_end_lsn:%" PRIu64
		      "\r\nrepl_connected_replicas:%u\r\nrepl_full_syncs:%" PRIu64
		      "\r\nrepl_partial_syncs:%" PRIu64 "\r\nrepl_bytes_sent:%" PRIu64
		      "\r\nrepl_cut_slow:%" PRIu64 "\r\nrepl_refused:%" PRIu64
		      "\r\nrepl_replicas_dropped:%" PRIu64 "\r\nrepl_ack_timeouts:%" PRIu64 "\r\n",
		      role_names[r->role], r->h.epoch, r->h.id, r->h.prev_id, r->h.prev_end,
		      connected(r), r->full_syncs, r->partial_syncs, r->bytes_sent, r->cut_slow,
		      r->refused, r->dropped, w->wal ? w->wal->st.repl_timeouts : 0);
	for (uint32_t i = 0, k = 0; ok && i < PM_REPL_REPLICAS_MAX; i++) {
		const struct peer *p = &r->peers[i];
		if (p->fd < 0)
			continue;
		char at[64];
		uint64_t lag_ms = 0;
		for (uint32_t s = 0; s < PM_MIN(r->lag_n, PM_REPL_LAG_SAMPLES); s++) {
			const struct lag_sample *x = &r->lag[s];
			if (x->lsn > p->recv_lsn && mono_now(w) - x->ms > lag_ms)
				lag_ms = mono_now(w) - x->ms; /* its oldest window not acknowledged */
		}
		ok = put(out, cap, &len,
			 "replica%u_addr:%s\r\nreplica%u_state:%s\r\nreplica%u_acked_lsn:%" PRIu64
			 "\r\nreplica%u_durable_lsn:%" PRIu64 "\r\nreplica%u_lag_records:%" PRIu64
			 "\r\nreplica%u_lag_bytes:%" PRIu64 "\r\nreplica%u_lag_ms:%" PRIu64
			 "\r\nreplica%u_bytes_sent:%" PRIu64 "\r\n",
			 k, addr_text(&p->addr, at, sizeof(at)), k, peer_states[p->state], k, p->recv_lsn,
			 k, p->dur_lsn, k, last - PM_MIN(last, p->recv_lsn), k, p->tail - p->head, k,
			 lag_ms, k, p->bytes_sent);
		k++;
	}
	if (ok && r->role != PM_ROLE_PRIMARY) {
		char at[64];
		const struct link *k = &r->link;
		uint64_t lag = k->primary_lsn > last ? k->primary_lsn - last : 0;
		ok = put(out, cap, &len,
			 "repl_primary:%s\r\nrepl_link:%s\r\nrepl_link_error:%s\r\nrepl_applied_lsn:%"
			 PRIu64 "\r\nrepl_durable_lsn:%" PRIu64 "\r\nrepl_primary_lsn:%" PRIu64
			 "\r\nrepl_lag_records:%" PRIu64 "\r\nrepl_records_applied:%" PRIu64
			 "\r\nrepl_full_syncs_received:%" PRIu64 "\r\nrepl_discarded_records:%" PRIu64
			 "\r\nrepl_apply_errors:%" PRIu64 "\r\nrepl_link_drops:%" PRIu64 "\r\n",
			 r->role == PM_ROLE_REPLICA ? addr_text(&k->to, at, sizeof(at)) : "",
			 link_states[k->st], k->error, last, PM_MIN(pm_wal_durable_lsn(w), last),
			 k->primary_lsn, lag, r->records_applied, r->full_syncs_received, r->discarded,
			 r->apply_errors, r->link_drops);
	}
	return ok ? len : 0;
}

void pm_repl_counters(const struct pm_worker *w, struct pm_stats_shard *s)
{
	const struct pm_repl *r = w->repl;
	if (!r)
		return;
	uint64_t last = pm_wal_next_lsn(w) - 1, lag = 0;
	s->repl_role = r->role;
	s->repl_epoch = r->h.epoch;
	s->repl_connected = connected(r);
	for (uint32_t i = 0; i < PM_REPL_REPLICAS_MAX; i++)
		if (r->peers[i].fd >= 0)
			lag = PM_MAX(lag, last - PM_MIN(last, r->peers[i].recv_lsn));
	s->repl_lag_records = r->role == PM_ROLE_PRIMARY ? lag
				: (r->link.primary_lsn > last ? r->link.primary_lsn - last : 0);
	s->repl_bytes_sent = r->bytes_sent;
	s->repl_full_syncs = r->full_syncs;
	s->repl_applied_lsn = last;
	s->repl_link_up = r->link.st == LINK_STREAMING;
}

/* ---------------------------------------------------------------- start-up, close */

static int listen_on(const struct pm_config *cfg, char *err, size_t errlen)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->repl_port) };
	if (inet_pton(AF_INET, cfg->bind, &a.sin_addr) != 1)
		return pm_errf(err, errlen, "repl_port: bind '%s' is not an IPv4 address", cfg->bind);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 64) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return pm_errf(err, errlen, "repl_port %u on %s: %s", cfg->repl_port, cfg->bind,
			       strerror(e));
	}
	return fd;
}

int pm_repl_open(struct pm_daemon *d, char *err, size_t errlen)
{
	const struct pm_config *cfg = &d->cfg;
	if (cfg->repl_ack != PM_REPL_ACK_NONE && cfg->min_replicas == 0)
		return pm_errf(err, errlen, "repl_ack = %s needs min_replicas >= 1 (replicas that"
			       " must confirm a write)", cfg->repl_ack == PM_REPL_ACK_DURABLE
			       ? "durable" : "received");
	if (cfg->wal == PM_WAL_NONE && (cfg->min_replicas || cfg->repl_port || cfg->replica_of[0]))
		return pm_errf(err, errlen, "replication needs the log: wal = none cannot stream to a"
			       " replica nor keep one's place (set wal = sync or batch)");
	struct pm_repl_node *n = d->repl = calloc(1, sizeof(*n));
	if (!n)
		return pm_errf(err, errlen, "out of memory");
	n->lfd = -1;
	for (uint32_t i = 0; i < PM_REPL_PENDING_MAX; i++)
		n->pending[i].fd = -1;
	if (cfg->wal != PM_WAL_NONE)
		node_load(d);
	if (cfg->replica_of[0]) {
		(void)pm_hostport_parse(cfg->replica_of, &n->primary); /* checked by the config */
		n->role = PM_ROLE_REPLICA;
	}
	if (cfg->wal == PM_WAL_NONE)
		return 0; /* every worker a primary without replicas: w->repl stays NULL */
	if (cfg->repl_port && (n->lfd = listen_on(cfg, err, errlen)) < 0)
		return -1;
	if (pm_rd_helper_start(d, &n->helper, err, errlen) != 0)
		return -1;
	uint64_t id = pm_repl_new_id();
	for (uint32_t i = 0; i < d->nshards; i++) {
		struct pm_worker *w = &d->workers[i];
		struct pm_repl *r = w->repl = calloc(1, sizeof(*r));
		if (!r || !(r->link.buf = malloc(PM_REPL_LINK_BYTES)) ||
		    !(r->disk = pm_rd_new(w, n->helper)))
			return pm_errf(err, errlen, "out of memory for replication");
		r->link.fd = -1;
		for (uint32_t k = 0; k < PM_REPL_REPLICAS_MAX; k++)
			r->peers[k].fd = r->peers[k].seg_fd = -1;
		bool fenced = false;
		int got = history_load(w, &fenced);
		if (got < 0)
			return pm_errf(err, errlen, "%s/%s: unreadable; remove it to start this shard"
				       " with no history (a replica then makes a full sync)",
				       w->wal->dir, HISTORY_NAME);
		r->role = n->role;
		if (fenced && n->role == PM_ROLE_PRIMARY)
			r->role = PM_ROLE_FENCED; /* until it follows the primary that replaced it */
		if (got == 0 && n->role == PM_ROLE_PRIMARY) { /* a new history */
			r->h.id = id;
			r->h.epoch = 1;
			if (history_save_now(w) != 0)
				return pm_errf(err, errlen, "shard %u: cannot write %s/%s", i, w->wal->dir,
					       HISTORY_NAME);
		}
		if (n->role == PM_ROLE_REPLICA) {
			r->link.to = n->primary;
			r->link.st = LINK_DOWN;
		}
	}
	char at[64] = "";
	if (n->role == PM_ROLE_REPLICA) {
		pm_reply_set_primary(&(struct pm_wire_primary){ .addr_be = n->primary.sin_addr.s_addr });
		addr_text(&n->primary, at, sizeof(at));
	}
	if (cfg->repl_port || n->role != PM_ROLE_PRIMARY)
		printf("pomaid: replication: %s%s%s, repl_port %u, repl_ack %s, min_replicas %u\n",
		       role_names[n->role], *at ? " of " : "", at, cfg->repl_port,
		       cfg->repl_ack == PM_REPL_ACK_DURABLE	   ? "durable"
		       : cfg->repl_ack == PM_REPL_ACK_RECEIVED ? "received" : "none",
		       cfg->min_replicas);
	return 0;
}

void pm_repl_close(struct pm_daemon *d)
{
	if (d->repl)
		pm_rd_helper_stop(d->repl->helper); /* no job runs from here on */
	for (uint32_t i = 0; d->workers && i < d->nshards; i++) {
		struct pm_worker *w = &d->workers[i];
		struct pm_repl *r = w->repl;
		if (!r)
			continue;
		for (uint32_t k = 0; k < PM_REPL_REPLICAS_MAX; k++) {
			struct peer *p = &r->peers[k];
			if (p->fd >= 0)
				close(p->fd);
			if (p->seg_fd >= 0)
				close(p->seg_fd);
			if (p->out)
				munmap(p->out, d->cfg.repl_send_bytes);
			free(p->dbuf);
			free(p->wr);
		}
		if (r->link.fd >= 0)
			close(r->link.fd);
		pm_rd_free(r->disk);
		free(r->link.buf);
		free(r);
		w->repl = NULL;
	}
	if (d->repl) {
		for (uint32_t i = 0; i < PM_REPL_PENDING_MAX; i++)
			if (d->repl->pending[i].fd >= 0)
				close(d->repl->pending[i].fd);
		if (d->repl->lfd >= 0)
			close(d->repl->lfd);
		pm_rd_helper_free(d->repl->helper);
		free(d->repl);
		d->repl = NULL;
	}
}

/* ---------------------------------------------------------------- the admin thread */

uint32_t pm_repl_admin_fds(struct pm_daemon *d, struct pollfd *pf)
{
	struct pm_repl_node *n = d->repl;
	uint32_t k = 0;
	if (!n || n->lfd < 0)
		return 0;
	pf[k++] = (struct pollfd){ .fd = n->lfd, .events = POLLIN };
	for (uint32_t i = 0; i < PM_REPL_PENDING_MAX; i++)
		if (n->pending[i].fd >= 0)
			pf[k++] = (struct pollfd){ .fd = n->pending[i].fd, .events = POLLIN };
	return k;
}

/* A whole HELLO: to the worker of its shard (or refused here). */
static void hand_over(struct pm_daemon *d, struct pending_conn *c)
{
	struct pm_repl_frame f;
	size_t used;
	char why[PM_REPL_TEXT_BYTES_MAX];
	enum pm_repl_result res = pm_repl_decode(c->buf, c->have, &f, &used);
	if (res != PM_REPL_OK || f.type != PM_REPL_HELLO) {
		d->repl->refused++;
		close(c->fd); /* not this protocol: no answer */
	} else if (f.u.hello.shards != d->nshards) {
		snprintf(why, sizeof(why), "the replica has %u shards, this primary %u: shard i follows"
			 " shard i, so the counts must be equal", f.u.hello.shards, d->nshards);
		d->repl->refused++;
		refuse(c->fd, PM_REPL_REFUSE_SHARDS, why);
	} else {
		struct conn_handoff h = { .fd = c->fd, .addr = c->addr, .epoch = f.u.hello.epoch,
					  .repl_id = f.u.hello.repl_id, .lsn = f.u.hello.lsn };
		struct pm_msg m = { .origin = f.u.hello.shard };
		if (pm_ring_send(&d->admin_in[f.u.hello.shard], PM_MSG_REPL_CONN, &m,
				 (const uint8_t *)&h, sizeof(h)))
			pm_wake(d, f.u.hello.shard);
		else
			close(c->fd); /* the worker's admin ring is full: the replica retries */
	}
	c->fd = -1;
}

void pm_repl_admin_serve(struct pm_daemon *d, const struct pollfd *pf, uint32_t npf)
{
	struct pm_repl_node *n = d->repl;
	if (!n || n->lfd < 0)
		return;
	uint64_t now = mono_ms();
	for (uint32_t k = 1; k < npf; k++) {
		if (!pf[k].revents)
			continue;
		for (uint32_t i = 0; i < PM_REPL_PENDING_MAX; i++) {
			struct pending_conn *c = &n->pending[i];
			if (c->fd != pf[k].fd)
				continue;
			ssize_t got = recv(c->fd, c->buf + c->have, sizeof(c->buf) - c->have, MSG_DONTWAIT);
			if (got <= 0 && !(got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
				close(c->fd);
				c->fd = -1;
			} else if (got > 0 && (c->have += (uint32_t)got) >= PM_REPL_FRAME_HEADER_BYTES) {
				size_t used;
				struct pm_repl_frame f;
				enum pm_repl_result res = pm_repl_decode(c->buf, c->have, &f, &used);
				if (res != PM_REPL_MORE || c->have == sizeof(c->buf))
					hand_over(d, c);
			}
		}
	}
	for (uint32_t i = 0; i < PM_REPL_PENDING_MAX; i++) { /* the slow ones go */
		struct pending_conn *c = &n->pending[i];
		if (c->fd >= 0 && now >= c->deadline_ms) {
			close(c->fd);
			c->fd = -1;
			n->refused++;
		}
	}
	if (npf && pf[0].revents) {
		struct sockaddr_in a;
		socklen_t al = sizeof(a);
		int fd;
		while ((fd = accept4(n->lfd, (struct sockaddr *)&a, &al,
				     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
			uint32_t i = 0;
			while (i < PM_REPL_PENDING_MAX && n->pending[i].fd >= 0)
				i++;
			if (i == PM_REPL_PENDING_MAX || !pm_allow_match(&d->allow, a.sin_addr.s_addr)) {
				close(fd); /* full, or from outside allow_networks */
				n->refused++;
			} else {
				n->pending[i] = (struct pending_conn){ .fd = fd, .addr = a,
								       .deadline_ms = now + PM_REPL_HELLO_MS };
			}
			al = sizeof(a);
		}
	}
}
