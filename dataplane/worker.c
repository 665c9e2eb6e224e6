/* SPDX-License-Identifier: MIT
 *
 * worker.c — the per-core loop of pomaid, in the shape of DPDK's l3fwd: set-up
 * before the loop, then `while (!quit)`: poll a burst, decode every frame,
 * execute what this shard owns (in one pm_shard_apply_burst), forward the rest
 * to its owner's ring, start fan-outs, serve the rings, hand the replies to
 * the backend in one burst (sendmmsg, or DPDK's TX burst). Slow paths
 * (malformed frames, full rings, full TX queues) drop and count; nothing here
 * blocks except the bounded sleep of an idle adaptive worker. The backend is
 * reached only through its table of operations (w->be, backend.h), a few
 * calls per turn.
 *
 * The file follows a frame: set-up; the loop; where frames arrive (the
 * backend's RX burst, a TCP connection's stream, the rings from the other
 * workers and the admin thread); where they are routed and executed (this
 * shard, its owner's ring, every shard); and, last, where a reply goes — one
 * switch (reply_path, deliver) for every reply, encoded there or earlier.
 *
 * Adaptive polling: a worker that found no work spins (pause) for
 * idle_spin_us (time, not turns: issue 20), yields as long again, then
 * sleeps in ppoll() on what its backend arms (its socket, or DPDK's RX interrupts), its TCP epoll, its
 * wake-up eventfd and its log's for at most idle_sleep_us. Producers that post
 * to a sleeping worker's ring write its eventfd; the sleeping flag and the ring
 * are checked in Dekker order (store, fence, load) on both sides, so a message
 * never waits for the timeout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "admin.h"
#include "backend.h"
#include "bridge.h"
#include "cluster.h"
#include "common.h"
#include "fanout.h"
#include "route.h"
#include "knn_sched.h"
#include "msg.h"
#include "repl_io.h"
#include "stats_pub.h"
#include "tcp.h"
#include "users.h"
#include "wal_io.h"
#include "worker.h"

/* A frame's way through this file, after set-up and the loop: it arrives
 * (serve_rx, pm_serve_frame, serve_rings), is routed and executed (route),
 * and its reply goes where it must (pm_send_reply, deliver). */
struct pm_burst;
static uint32_t serve_rx(struct pm_worker *w);
static uint32_t serve_rings(struct pm_worker *w);
static void route(struct pm_worker *w, struct pm_burst *b, const struct pm_request *req,
		  const uint8_t *frame, uint32_t len, const struct pm_dest *from);
static void execute(struct pm_worker *w, const struct pm_request *req, const struct pm_dest *from);
static void burst_apply(struct pm_burst *b);
static void send_error(struct pm_worker *w, const struct pm_dest *to, uint64_t id, uint8_t op,
		       enum pm_status st);
static void dgram_reply(struct pm_worker *w, const struct pm_dest *to, const struct pm_reply *rep);
static void dgram_frames(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
			 uint32_t len);

/* ---------------------------------------------------------------- set-up */

/* The frames of an RX burst this shard owns, applied in one
 * pm_shard_apply_burst, and where each one's reply goes. */
struct pm_burst {
	struct pm_worker *w;
	uint32_t n;
	struct pm_request req[PM_BURST_MAX];
	struct pm_dest to[PM_BURST_MAX]; /* copies: each frame of a datagram has its own budget
					  * and its own user (issue 19) */
};

/* A pending fan-out's buffers (fanout.h), all slots' in one mapping that a
 * start does not touch: the merge bytes, the hits, the CLIST entries. */
#define PENDING_HITS_BYTES ((size_t)PM_K_MAX * sizeof(struct pm_hit_ref))
#define PENDING_SLOT_BYTES \
	(PM_KNN_MERGE_BYTES + PENDING_HITS_BYTES + PM_COLLECTIONS_MAX * sizeof(struct pm_coll_info))
#define PENDING_MEM_BYTES (PM_PENDING_MAX * PENDING_SLOT_BYTES)
_Static_assert(PENDING_HITS_BYTES % 8u == 0 && PM_KNN_MERGE_BYTES % 64u == 0,
	       "each slot's parts stay aligned");

int pm_worker_alloc(struct pm_worker *w)
{
	w->rx_buf = malloc((size_t)PM_RX_BURST * PM_RX_SLOT_BYTES);
	w->tx.buf = malloc(PM_TX_BYTES);
	w->scratch = malloc(PM_RING_PAYLOAD_MAX);
	w->burst = calloc(1, sizeof(*w->burst));
	if (w->burst)
		w->burst->w = w;
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	bool ok = w->rx_buf && w->tx.buf && w->scratch && w->burst && w->wake_fd >= 0 &&
		  pm_tcp_worker_open(w, w->d->listen_fd) == 0 && pm_access_alloc(w) == 0 &&
		  pm_fanout_alloc(w) == 0 && pm_reply_wait_alloc(w) == 0 && pm_knn_alloc(w) == 0 &&
		  pm_guard_alloc(w) == 0 && pm_auth_alloc(w) == 0;
	uint8_t *mem = ok ? w->pending_mem = pm_pages_alloc(PENDING_MEM_BYTES) : NULL;
	for (uint32_t i = 0; mem && i < PM_PENDING_MAX; i++, mem += PENDING_SLOT_BYTES) {
		struct pm_pending *p = &w->pending[i];
		p->keys = mem; /* first: PM_KNN_MERGE_BYTES keeps what follows aligned */
		p->hits = (struct pm_hit_ref *)(mem + PM_KNN_MERGE_BYTES);
		p->colls = (struct pm_coll_info *)(mem + PM_KNN_MERGE_BYTES + PENDING_HITS_BYTES);
	}
	return ok && w->pending_mem ? 0 : -ENOMEM;
}

void *pm_pages_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void pm_pages_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes);
}

void pm_worker_free(struct pm_worker *w)
{
	pm_pages_free(w->pending_mem, PENDING_MEM_BYTES);
	w->pending_mem = NULL;
	pm_tcp_worker_close(w);
	pm_reply_wait_free(w);
	pm_access_free(w);
	pm_fanout_free(w);
	pm_knn_free(w);
	pm_guard_free(w);
	pm_auth_free(w);
	free(w->rx_buf);
	free(w->tx.buf);
	free(w->scratch);
	free(w->burst);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->fd >= 0)
		close(w->fd);
}

/* ---------------------------------------------------------------- its shard */

struct pm_shard_config pm_worker_shard_config(const struct pm_worker *w)
{
	const struct pm_config *c = &w->d->cfg;
	return (struct pm_shard_config){ .arena_bytes = c->arena_bytes, .seed_capacity = c->seeds,
					 .hugepages = c->hugepages, .mem = w->arena_mem };
}

int pm_worker_shard_limits(struct pm_worker *w, char *err, size_t errlen)
{
	const struct pm_config *c = &w->d->cfg;
	struct pm_evict_config ec = { .maxmemory_bytes = c->maxmemory,
				      .policy = (uint8_t)c->maxmemory_policy,
				      .samples = c->maxmemory_samples,
				      .seed = PM_EVICT_SEED_DEFAULT ^ w->id };
	if (pm_shard_set_maxmemory(&w->shard, &ec) != PM_OK)
		return pm_errf(err, errlen, "maxmemory %llu is above arena_bytes %llu",
			       (unsigned long long)c->maxmemory, (unsigned long long)c->arena_bytes);
	w->shard.knn_work_max = c->knn_work_bytes_max; /* 0: no cap */
	if (w->wal) { /* every eviction is logged as a DEL before it happens */
		w->shard.evict_log = pm_wal_evict_log;
		w->shard.evict_ctx = w;
	}
	return 0;
}

int pm_worker_shard_reset(struct pm_worker *w, char *err, size_t errlen)
{
	struct pm_shard_config sc = pm_worker_shard_config(w);
	pm_shard_destroy(&w->shard);
	enum pm_status st = pm_shard_init(&w->shard, &sc);
	if (st != PM_OK)
		return pm_errf(err, errlen, "shard %u: arena of %llu bytes again: %s", w->id,
			       (unsigned long long)sc.arena_bytes, pm_status_name(st));
	return pm_worker_shard_limits(w, err, errlen);
}

/* ---------------------------------------------------------------- the loop */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void clock_turn(struct pm_worker *w)
{
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	w->now_ms = (uint64_t)rt.tv_sec * 1000u + (uint64_t)rt.tv_nsec / 1000000u;
	w->now_ns = pm_mono_ns();
	if (w->d->cluster)
		pm_cluster_turn(w); /* the write lease, on its own clock */
}

/* One turn: returns how much work it found. */
static uint32_t turn(struct pm_worker *w)
{
	clock_turn(w);
	/* TCP's epoll first: it also says whether the UDP socket has datagrams */
	w->udp_ready = false;
	uint32_t work = pm_tcp_turn(w);
	if (!w->udp_polled || w->udp_ready)
		work += serve_rx(w);
	work += serve_rings(w);
	work += pm_knn_turn(w); /* at most one slice of KNN work between two looks at the I/O */
	work += pm_wal_turn(w); /* this turn's writes become one log write */
	work += pm_repl_turn(w); /* ... which goes to the replicas now, or the primary's is applied */
	work += pm_reply_wait_flush(w); /* what still waits keeps the worker awake */
	pm_fanout_expire(w);
	if (w->now_ms - w->stats_pub_ms >= PM_STATS_PUBLISH_MS) {
		w->stats_pub_ms = w->now_ms;
		pm_ticks_calibrate(w);
		pm_stats_publish(w);
	}
	w->be->flush(w, work < PM_RX_BURST); /* ran out of work: send now */
	return work;
}

/* An idle worker's own fds to sleep on, after its backend's: the wake-up
 * eventfd, epoll of the TCP connections, the log's eventfd. */
#define SLEEP_FDS_OWN 3u
_Static_assert(PM_DPDK_PORTS_MAX <= 32u, "tx_ports has a bit per DPDK port");

static void sleep_idle(struct pm_worker *w)
{
	struct pollfd fds[PM_SLEEP_FDS_MAX];
	int raw[PM_SLEEP_FDS_MAX];
	uint32_t us = w->d->cfg.idle_sleep_us;
	uint32_t n = w->be->arm(w, raw, PM_SLEEP_FDS_MAX - SLEEP_FDS_OWN, &us);
	if (w->be->arm_misses_rx && serve_rx(w)) { /* a packet that came before arming */
		w->be->disarm(w);
		return;
	}
	raw[n++] = w->wake_fd;
	raw[n++] = w->ep;
	if (pm_wal_wake_fd(w) >= 0)
		raw[n++] = pm_wal_wake_fd(w); /* a log completion releases held replies */
	for (uint32_t i = 0; i < n; i++)
		fds[i] = (struct pollfd){ .fd = raw[i], .events = POLLIN };
	atomic_store_explicit(&w->sleeping, true, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (pm_rings_empty(w) && !atomic_load(&w->d->quit)) {
		struct timespec ts = { us / 1000000u, (long)(us % 1000000u) * 1000 };
		(void)ppoll(fds, n, &ts, NULL);
		uint64_t v;
		ssize_t r = read(w->wake_fd, &v, sizeof(v));
		(void)r;
	}
	atomic_store_explicit(&w->sleeping, false, memory_order_relaxed);
	w->be->disarm(w);
}

void *pm_worker_main(void *arg)
{
	struct pm_worker *w = arg;
	const struct pm_config *cfg = &w->d->cfg;
	uint32_t idle = 0, turns = 0;
	uint64_t idle_ns0 = 0; /* the first idle turn's clock */
	if (w->be->enter(w) != 0)
		return NULL; /* cannot happen: DPDK's registration was checked at start-up */
	while (!atomic_load_explicit(&w->d->quit, memory_order_relaxed)) {
		if (turn(w)) {
			idle = 0;
			if (++turns % PM_MAINTAIN_EVERY_TURNS == 0)
				pm_shard_maintain(&w->shard, w->now_ms, cfg->maintain_nodes);
			continue;
		}
		if (pm_shard_maintain(&w->shard, w->now_ms, cfg->maintain_nodes)) {
			idle = 0; /* background work done while idle */
			continue;
		}
		if (idle++ == 0)
			idle_ns0 = w->now_ns;
		uint64_t idle_us = (w->now_ns - idle_ns0) / 1000u; /* spin, yield, sleep: issue 20 */
		if (cfg->polling == PM_POLL_BUSY || idle_us < cfg->idle_spin_us)
			cpu_relax();
		else if (idle_us < 2u * (uint64_t)cfg->idle_spin_us)
			sched_yield();
		else
			sleep_idle(w);
	}
	/* drain: answer what the rings still hold, then send everything queued */
	for (uint32_t i = 0; i < PM_DRAIN_TURNS_MAX && turn(w); i++)
		;
	pm_wal_drain(w); /* what is logged reaches the disk; held replies leave */
	pm_stats_publish(w);
	w->be->flush(w, true);
	w->be->leave(w);
	return NULL;
}

/* ---------------------------------------------------------------- frames arrive: the backend's burst */

/* A datagram claiming one of this daemon's own sources is dropped unread: it
 * is spoofed, or a reply of ours come back, and any answer would go to
 * ourselves (docs/protocol.md §6.5). A datagram may start with a COOKIE frame
 * (§14.2, guard.h): it says whether the source is validated, and every frame
 * after it gets its reply budget from that (each frame's dest is its own
 * copy). A frame whose header cannot be read ends the datagram (the rest
 * cannot be delimited); it is answered only when its header and magic
 * arrived (pm_answer_unusable). */
static void serve_datagram(struct pm_worker *w, struct pm_burst *b, const uint8_t *buf,
			   uint32_t len, const struct pm_dest *from)
{
	struct pm_guard_dgram g;
	if (unlikely(pm_from_self(w->d, &from->addr))) {
		w->stats.dropped_self++;
		return;
	}
	if (unlikely(!pm_guard_datagram(w, buf, len, from, &g)))
		return; /* a malformed COOKIE frame: not a valid datagram (counted) */
	if (len == g.skip)
		w->stats.dropped_malformed++; /* an empty datagram (or a cookie alone) holds no frame */
	bool deferred = false; /* a write of this datagram was answered RETRY */
	for (uint32_t off = g.skip; off < len;) {
		/* decoded into the burst's next slot: a frame of this shard
		 * stays there (burst_add), the others are read from it */
		struct pm_request *req = &b->req[b->n];
		size_t used;
		struct pm_dest to = *from;
		enum pm_status st = pm_request_decode(buf + off, len - off, req, &used);
		to.budget = pm_guard_budget(&g, used ? (uint32_t)used : len - off,
					    off == g.skip ? g.skip : 0);
		if (used == 0) {
			w->stats.dropped_malformed++;
			pm_answer_unusable(w, buf + off, len - off, st, &to);
			return;
		}
		w->stats.rx_frames++;
		if (pm_refuse_reply(w, buf + off, (uint32_t)used))
			; /* a reply is never answered, not even THROTTLED */
		else if (!pm_auth_admit(w, req, st, buf + off, (uint32_t)used, &to))
			; /* answered AUTH or NOPERM (users.c) */
		else if (deferred) /* after a write answered RETRY: so are the frames that
				    * follow it, and the client sends them again in order */
			pm_guard_retry(w, &to, req->op, req->id, PM_GUARD_WHY_WRITE);
		else if (st == PM_OK && (deferred = !pm_guard_write_ok(w, req, &to, to.user != 0)))
			; /* answered RETRY: a write from an address neither validated
			   * (cookie) nor authenticated */
		else if (!pm_quota_admit(w, req, (uint32_t)used, &to))
			; /* answered THROTTLED (RETRY when unvalidated) */
		else if (st == PM_OK)
			route(w, b, req, buf + off, (uint32_t)used, &to);
		else
			send_error(w, &to, req->id, req->op, st);
		off += (uint32_t)used;
	}
}

/* One RX burst from the backend; returns how much work it found (datagrams
 * plus, for DPDK, packets the front end handled itself). */
static uint32_t serve_rx(struct pm_worker *w)
{
	struct pm_burst *b = w->burst;
	uint32_t work = 0;
	uint32_t n = w->be->rx(w, &work);
	b->n = 0;
	for (uint32_t i = 0; i < n; i++)
		serve_datagram(w, b, w->rx_ptr[i], w->rx_len[i], &w->rx_from[i]);
	burst_apply(b); /* before the RX slots (or mbufs) are reused */
	w->be->rx_done(w);
	return n + work;
}

/* A frame whose extent is unknown (FRAME_TRUNCATED, _VERSION, _TOO_BIG) is
 * still answered, with opcode 0, when its 24 header bytes and the magic
 * arrived (docs/protocol.md §6.3): its id is known, and a 24-byte reply to a
 * datagram of at least 24 bytes amplifies nothing. Without the magic it is
 * not answered: the daemon must not reflect other protocols' traffic. The
 * reply is charged to the client's quota like any other. */
void pm_answer_unusable(struct pm_worker *w, const uint8_t *buf, uint32_t len, enum pm_status st,
			const struct pm_dest *from)
{
	struct pm_frame_header h;
	if (st == PM_E_FRAME_MAGIC || len < PM_FRAME_HEADER_BYTES)
		return;
	if (pm_frame_is_reply(buf, len)) {
		w->stats.dropped_reply++; /* never an error reply to a reply (§6.5) */
		return;
	}
	(void)pm_header_decode(buf, len, &h); /* fills h.id even when it fails */
	struct pm_request req = { .op = PM_OP_NONE, .id = h.id };
	if (pm_quota_admit(w, &req, len, from))
		send_error(w, from, h.id, PM_OP_NONE, st);
}

bool pm_refuse_reply(struct pm_worker *w, const uint8_t *frame, uint32_t len)
{
	if (!pm_frame_is_reply(frame, len))
		return false;
	w->stats.dropped_reply++;
	return true;
}

/* ---------------------------------------------------------------- frames arrive: a TCP connection */

/* A whole frame of one of this worker's connections (tcp.c), admitted. */
void pm_serve_frame(struct pm_worker *w, const struct pm_request *req, const uint8_t *frame,
		    uint32_t len, const struct pm_dest *from)
{
	route(w, NULL, req, frame, len, from);
}

/* ---------------------------------------------------------------- frames arrive: the rings */

/* A forwarded key frame: apply it here and reply to the client from here. */
static void serve_forward(struct pm_worker *w, const struct pm_msg *m, const uint8_t *frame,
			  uint32_t len)
{
	struct pm_request req;
	size_t used;
	w->stats.forwarded_in++;
	enum pm_status st = pm_request_decode(frame, len, &req, &used);
	if (st != PM_OK) { /* it decoded at the receiving worker: cannot happen; never silent */
		send_error(w, &m->dest, req.id, req.op, st);
		return;
	}
	execute(w, &req, &m->dest);
}

/* A reply from worker `from` for a connection here: its credit comes back. */
static void tcp_reply_in(struct pm_worker *w, uint32_t from, const struct pm_msg *m,
			 const uint8_t *frames, uint32_t len)
{
	pm_credit_return(w, from, m->dest.owed);
	pm_tcp_deliver(w, &m->dest, frames, len);
}

static uint32_t serve_ring(struct pm_worker *w, uint32_t from)
{
	struct pm_ring *r = pm_ring_between(w->d, from, w->id);
	uint32_t n = 0, type, len;
	const uint8_t *p;
	while (n < PM_RING_TURN_MESSAGES && (p = pm_ring_peek(r, &type, &len)) != NULL) {
		const struct pm_msg *m = (const struct pm_msg *)p;
		const uint8_t *body = p + sizeof(*m);
		uint32_t blen = len - (uint32_t)sizeof(*m);
		if (type == PM_MSG_FORWARD)
			serve_forward(w, m, body, blen);
		else if (type == PM_MSG_FANOUT)
			pm_fanout_serve(w, m, body, blen);
		else if (type == PM_MSG_FANOUT_REPLY)
			pm_fanout_collect(w, m, body, blen);
		else if (type == PM_MSG_TCP_REPLY)
			tcp_reply_in(w, from, m, body, blen);
		else if (type == PM_MSG_DGRAM_REPLY) /* only this worker sends on its port */
			dgram_frames(w, &m->dest, body, blen);
		pm_ring_pop(r, len);
		n++;
	}
	return n;
}

/* The answer is built in the worker's scratch buffer: the result, then its
 * items (overrides or talkers) written there by the quota table. */
_Static_assert(sizeof(struct pm_admin_result) % alignof(struct pm_quota_override) == 0 &&
		       sizeof(struct pm_admin_result) % alignof(struct pm_quota_talker) == 0,
	       "the items after the result are aligned");
_Static_assert(sizeof(struct pm_admin_result) +
			       PM_QUOTA_OVERRIDES_MAX * sizeof(struct pm_quota_override) <=
		       PM_RING_PAYLOAD_MAX - sizeof(struct pm_msg) &&
		       sizeof(struct pm_admin_result) +
				       PM_ADMIN_TOP_MAX * sizeof(struct pm_quota_talker) <=
			       PM_RING_PAYLOAD_MAX - sizeof(struct pm_msg),
	       "every override, or the top talkers, fit one admin reply");

/* A call on this worker's quota table; the result goes back to the admin. */
static void admin_call(struct pm_worker *w, const struct pm_msg *m, const uint8_t *body,
		       uint32_t len)
{
	uint8_t *items = w->scratch + sizeof(struct pm_admin_result);
	struct pm_admin_call c;
	struct pm_admin_result res = { .rc = -EINVAL };
	size_t item = 0;
	if (len == sizeof(c)) {
		memcpy(&c, body, sizeof(c));
		if (c.op == PM_CALL_QUOTA_SET)
			res.rc = pm_quota_set(w, c.addr_be, c.requests_per_s, c.bytes_per_s);
		else if (c.op == PM_CALL_QUOTA_DEL)
			res.rc = pm_quota_del(w, c.addr_be);
		else if (c.op == PM_CALL_QUOTA_LIST)
			res.rc = 0, item = sizeof(struct pm_quota_override),
			res.n = pm_quota_list(w, (struct pm_quota_override *)items,
					      PM_MIN(c.n, PM_QUOTA_OVERRIDES_MAX));
		else if (c.op == PM_CALL_CLIENTS)
			res.rc = 0, item = sizeof(struct pm_quota_talker),
			res.n = pm_quota_top(w, (struct pm_quota_talker *)items,
					     PM_MIN(c.n, PM_ADMIN_TOP_MAX));
		else if (c.op == PM_CALL_USERS)
			res.rc = 0, w->auth->users = c.users; /* from the next frame on */
		else if (c.op == PM_CALL_CLUSTER_VIEW)
			res.rc = 0, w->cview = c.view; /* from the next frame on */
		else if (c.op == PM_CALL_CLUSTER_EXPORT || c.op == PM_CALL_CLUSTER_PURGE)
			item = 1, res.n = pm_cluster_call(w, &c, items,
							  PM_RING_PAYLOAD_MAX - sizeof(struct pm_msg) -
								  sizeof(res),
							  &res.rc);
	}
	memcpy(w->scratch, &res, sizeof(res));
	struct pm_msg r = { .origin = w->id, .dest = m->dest };
	pm_post_admin(w, &r, w->scratch, (uint32_t)(sizeof(res) + res.n * item));
}

/* Frames the admin thread sent: served as a client's, replies back to it. */
static uint32_t serve_admin(struct pm_worker *w)
{
	struct pm_ring *r = &w->d->admin_in[w->id];
	uint32_t n = 0, type, len;
	const uint8_t *p;
	while (n < PM_RING_TURN_MESSAGES && (p = pm_ring_peek(r, &type, &len)) != NULL) {
		const struct pm_msg *m = (const struct pm_msg *)p;
		const uint8_t *body = p + sizeof(*m);
		uint32_t blen = len - (uint32_t)sizeof(*m);
		struct pm_request req;
		size_t used;
		enum pm_status st = pm_request_decode(body, blen, &req, &used);
		if (type == PM_MSG_ADMIN_CALL)
			admin_call(w, m, body, blen);
		else if (type == PM_MSG_REPL_CONN)
			pm_repl_adopt(w, body, blen);
		else if (type == PM_MSG_REPL_CTL)
			pm_repl_ctl(w, m, body, blen);
		else if (type == PM_MSG_ADMIN_FRAME && st == PM_OK)
			route(w, NULL, &req, body, (uint32_t)used, &m->dest);
		else if (type == PM_MSG_ADMIN_FRAME)
			send_error(w, &m->dest, req.id, req.op, st);
		pm_ring_pop(r, len);
		n++;
	}
	return n;
}

static uint32_t serve_rings(struct pm_worker *w)
{
	uint32_t n = w->d->admin_in ? serve_admin(w) : 0;
	for (uint32_t from = 0; from < w->d->nshards; from++)
		if (from != w->id)
			n += serve_ring(w, from);
	return n;
}

/* ---------------------------------------------------------------- routing and execution */

static uint32_t owner_of(const struct pm_worker *w, const struct pm_request *req)
{
	if (req->op == PM_OP_MAP)
		return w->id; /* the node's, answered where it arrives */
	return pm_shard_of(pm_route_hash(req->key.ptr, req->key.len), w->d->nshards);
}

/* May this write be applied now? The role (a replica takes none), the
 * collection byte cap, then the log. */
static enum pm_status admit_write(struct pm_worker *w, const struct pm_request *req)
{
	enum pm_status st = pm_repl_admit(w, req);
	if (st == PM_OK && w->cview && w->cview->map.nmoves)
		st = pm_cluster_admit(w, req); /* slots moving out: frozen, or noted */
	if (st == PM_OK)
		st = pm_collection_cap_check(w, req);
	return st == PM_OK ? pm_wal_admit(w, req) : st;
}

void pm_apply_logged(struct pm_worker *w, const struct pm_request *req, struct pm_reply *rep)
{
	enum pm_status st = admit_write(w, req);
	if (st != PM_OK) {
		*rep = (struct pm_reply){ .status = st, .op = req->op, .id = req->id };
		return;
	}
	pm_shard_apply(&w->shard, req, w->now_ms, rep);
	pm_wal_note(w, req, rep);
}

/* A frame of this shard, alone (from a connection, a ring, the admin): applied now. */
static void execute(struct pm_worker *w, const struct pm_request *req, const struct pm_dest *from)
{
	struct pm_reply rep;
	uint64_t t0 = pm_ticks();
	pm_apply_logged(w, req, &rep);
	pm_lat_kv(w, t0);
	pm_send_reply(w, from, &rep);
}

static void burst_emit(void *ctx, const struct pm_request *req, const struct pm_reply *rep)
{
	struct pm_burst *b = ctx;
	pm_wal_note(b->w, req, rep); /* admitted in burst_add() */
	pm_lat_kv(b->w, b->w->last_tick); /* the burst's requests are served one after another */
	pm_send_reply(b->w, &b->to[req - b->req], rep);
}

static void burst_apply(struct pm_burst *b)
{
	if (b->n) {
		b->w->last_tick = pm_ticks();
		pm_shard_apply_burst(&b->w->shard, b->req, b->n, b->w->now_ms, burst_emit, b);
	}
	b->n = 0;
}

/* A frame of this shard from the RX burst: applied with the others, once
 * admitted (a VADD under collection_bytes_max after those before it). */
static void burst_add(struct pm_burst *b, const struct pm_request *req, const struct pm_dest *from)
{
	struct pm_worker *w = b->w;
	if (req->op == PM_OP_VADD && w->d->cfg.collection_bytes_max)
		burst_apply(b); /* the cap is checked against bytes already applied */
	enum pm_status st = admit_write(w, req);
	if (st != PM_OK) {
		send_error(w, from, req->id, req->op, st);
		return;
	}
	if (req != &b->req[b->n]) /* serve_datagram decodes into that slot */
		b->req[b->n] = *req;
	b->to[b->n] = *from;
	if (++b->n == PM_BURST_MAX)
		burst_apply(b);
}

/* A frame of another shard: to its owner's ring (BUSY when that is full). */
static void forward(struct pm_worker *w, uint32_t owner, const struct pm_request *req,
		    const uint8_t *frame, uint32_t len, const struct pm_dest *from)
{
	struct pm_msg m = { .origin = w->id, .dest = *from };
	if (!pm_post(w, owner, PM_MSG_FORWARD, &m, frame, len)) {
		send_error(w, from, req->id, req->op, PM_E_BUSY);
		return;
	}
	w->stats.forwarded_out++;
	if (from->conn < PM_TCP_CONNS_MAX) { /* its reply comes back by ring */
		w->conns[from->conn].inflight++;
		pm_credit_take(w, owner, from->owed);
	}
}

/* Route one decoded frame: out to every shard, to its owner's ring, or here
 * (into the burst when b is given, else at once). */
static void route(struct pm_worker *w, struct pm_burst *b, const struct pm_request *req,
		  const uint8_t *frame, uint32_t len, const struct pm_dest *from)
{
	if (pm_is_fanout(req->op)) {
		pm_fanout_start(w, req, frame, len, from);
		return;
	}
	if (req->op == PM_OP_MAP) {
		pm_cluster_serve_map(w, req, from);
		return;
	}
	if (req->op == PM_OP_AUTH_HELLO || req->op == PM_OP_AUTH_PROVE) {
		/* a stream's challenge-response (issue 19): over a datagram there is
		 * no connection for it to authenticate */
		send_error(w, from, req->id, req->op, PM_E_PARAM);
		return;
	}
	uint64_t hash = pm_route_hash(req->key.ptr, req->key.len);
	if (w->cview && pm_cluster_moved(w, req, hash, from))
		return; /* its slot is another replica set's */
	uint32_t owner = pm_shard_of(hash, w->d->nshards);
	if (owner != w->id)
		forward(w, owner, req, frame, len, from);
	else if (b)
		burst_add(b, req, from);
	else
		execute(w, req, from);
}

bool pm_tcp_forward_ready(struct pm_worker *w, const struct pm_request *req, uint32_t len,
			  uint32_t owed)
{
	if (pm_is_fanout(req->op))
		return true;
	uint32_t owner = owner_of(w, req);
	return owner == w->id || pm_forward_fits(w, owner, len, owed);
}

/* ---------------------------------------------------------------- where a reply goes */

/* Every reply takes its path from here. */
enum reply_path {
	PATH_DGRAM,     /* a datagram this worker sends: its socket, or a DPDK port it has a
			 * TX queue on */
	PATH_DGRAM_VIA, /* a datagram for a DPDK port only the receiving worker sends on: by
			 * ring to it */
	PATH_CONN,      /* this worker's TCP connection */
	PATH_CONN_VIA,  /* another worker's TCP connection (a forwarded frame's reply): by ring */
	PATH_ADMIN,     /* the admin thread: this worker's admin-out ring */
};

static enum reply_path reply_path(const struct pm_worker *w, const struct pm_dest *to)
{
	if (to->conn == PM_CONN_ADMIN)
		return PATH_ADMIN;
	if (to->conn != PM_CONN_NONE)
		return to->worker == w->id ? PATH_CONN : PATH_CONN_VIA;
	bool sends = to->port == PM_PORT_KERNEL ||
		     (to->port < PM_DPDK_PORTS_MAX && (w->tx_ports >> to->port & 1u));
	return sends ? PATH_DGRAM : PATH_DGRAM_VIA;
}

/* rep's frames in the scratch buffer, for a message: their bytes, 0 when
 * they do not fit one. */
static uint32_t msg_frames(struct pm_worker *w, const struct pm_reply *rep, const uint8_t **frames)
{
	*frames = w->scratch;
	return pm_reply_frames(rep, w->scratch, PM_RING_PAYLOAD_MAX - (uint32_t)sizeof(struct pm_msg));
}

/* A reply to its destination, given as rep (encoded here: in place into the
 * TX queue or the connection's output when it stays on this worker, else
 * into a message) or as frames encoded earlier (rep NULL). A reply for
 * another worker's connection always leaves: INTERNAL for its id when its
 * frames do not fit a message (cannot happen for the key operations that are
 * forwarded); others that do not fit are dropped. A datagram reply to an
 * address not validated (issue 19) leaves only within its budget, else RETRY
 * goes in its place: the one gate all of them pass. Inlined into its two doors,
 * so that each keeps only its own branches on the per-request path. */
static inline __attribute__((always_inline)) void
deliver(struct pm_worker *w, const struct pm_dest *to, const struct pm_reply *rep,
	const uint8_t *frames, uint32_t len)
{
	struct pm_msg m;
	if (unlikely(pm_dest_unvalidated(to))) { /* the reply budget (guard.h): within it, */
		if (rep ? (len = pm_guard_gate_reply(w, to, rep, &frames)) == 0
			: !pm_guard_gate_frames(w, to, frames, len))
			return; /* ... or RETRY in its place (sent there) */
		rep = NULL; /* its frames, encoded within the budget */
	}
	switch (reply_path(w, to)) {
	case PATH_DGRAM:
		if (rep)
			dgram_reply(w, to, rep);
		else
			dgram_frames(w, to, frames, len);
		break;
	case PATH_CONN:
		if (rep)
			pm_tcp_reply(w, to, rep);
		else
			pm_tcp_queue(w, to, frames, len); /* not a forward's: nothing to settle */
		break;
	case PATH_DGRAM_VIA:
		m = (struct pm_msg){ .origin = w->id, .dest = *to };
		if (!rep || (len = msg_frames(w, rep, &frames)) != 0)
			pm_post(w, to->worker, PM_MSG_DGRAM_REPLY, &m, frames, len);
		break;
	case PATH_CONN_VIA:
		m = (struct pm_msg){ .origin = w->id, .dest = *to };
		if (rep && (len = msg_frames(w, rep, &frames)) == 0) {
			struct pm_reply e = { .status = PM_E_INTERNAL, .op = rep->op, .id = rep->id };
			len = msg_frames(w, &e, &frames);
		}
		pm_post_tcp_reply(w, to->worker, &m, frames, len);
		break;
	case PATH_ADMIN:
		m = (struct pm_msg){ .origin = w->id, .dest = *to };
		if (!rep || (len = msg_frames(w, rep, &frames)) != 0)
			pm_post_admin(w, &m, frames, len);
		break;
	}
}

void pm_send_reply(struct pm_worker *w, const struct pm_dest *to, const struct pm_reply *rep)
{
	if (pm_wal_must_hold(w, rep->op, rep->status)) { /* sync WAL: once logged work is on disk */
		uint8_t frame[PM_REPLY_HOLD_BYTES];
		uint32_t n = pm_reply_frames(rep, frame, sizeof(frame));
		if (n) {
			pm_wal_hold_reply(w, to, frame, n);
			return;
		}
	}
	deliver(w, to, rep, NULL, 0);
}

void pm_deliver_frames(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
		       uint32_t len)
{
	deliver(w, to, NULL, frames, len);
}

static void send_error(struct pm_worker *w, const struct pm_dest *to, uint64_t id, uint8_t op,
		       enum pm_status st)
{
	struct pm_reply rep = { .status = st, .op = op, .id = id };
	pm_send_reply(w, to, &rep);
}

/* ---------------------------------------------------------------- replies as frames and datagrams */

/* The most payload bytes of one reply datagram to `to` that several frames
 * may share (docs/protocol.md §2, issue 20): UDP's largest payload to a peer
 * on loopback, which has no MTU to respect; reply_pack_bytes to any other
 * peer of the kernel backend; a DPDK port's own MTU (less its IPv4 and UDP
 * headers), so that a packed datagram is never fragmented. reply_pack_bytes
 * = 0 turns packing off everywhere. */
static uint32_t pack_bytes(const struct pm_worker *w, const struct pm_dest *to)
{
	uint32_t cfg = w->d->cfg.reply_pack_bytes;
	if (cfg == 0)
		return 0;
	if (to->port != PM_PORT_KERNEL)
		return to->port < PM_DPDK_PORTS_MAX ? w->tx_pack_bytes[to->port] : 0;
	return (ntohl(to->addr.sin_addr.s_addr) >> 24) == PM_LOOPBACK_NET ? PM_PACK_LOOPBACK_BYTES
									 : cfg;
}

/* The frame(s) of len bytes just written at the end of the TX buffer join
 * the last datagram when it goes to the same peer on the same port and has
 * room (pack_bytes), else they begin a datagram of their own. Replies of one
 * turn to one client are consecutive here (a burst is applied datagram by
 * datagram), so a pipeline's replies leave in as few datagrams as fit; a
 * frame larger than the bound still goes alone. Loss of a datagram loses only
 * the frames in it: each is a whole reply frame, retried by its client. */
static void tx_commit(struct pm_worker *w, const struct pm_dest *to, uint32_t len)
{
	struct pm_tx *t = &w->tx;
	uint32_t last = t->n - 1u;
	if (t->n && t->port[last] == to->port &&
	    t->to[last].sin_addr.s_addr == to->addr.sin_addr.s_addr &&
	    t->to[last].sin_port == to->addr.sin_port && t->len[last] + len <= pack_bytes(w, to)) {
		PM_DEBUG_ASSERT(t->off[last] + t->len[last] == t->bytes);
		t->len[last] += len;
		t->bytes += len;
		return;
	}
	t->to[t->n] = to->addr;
	t->port[t->n] = to->port;
	t->off[t->n] = t->bytes;
	t->len[t->n] = len;
	t->n++;
	t->bytes += len;
}

/* Room for one frame at the end of the TX buffer, flushing first if needed. */
static uint8_t *tx_room(struct pm_worker *w)
{
	struct pm_tx *t = &w->tx;
	if (t->n == PM_TX_BURST || t->bytes + PM_FRAME_BYTES_MAX > PM_TX_BYTES)
		w->be->flush(w, false);
	return t->buf + t->bytes;
}

/* Every page of a reply (a reply that is not paged is one page), each one
 * frame: one after another into out, at most cap bytes; or, with dgram given,
 * each page a frame for dgram in this worker's TX queue, encoded in place
 * (packed with the peer's other replies of this turn, tx_commit).
 * Returns the bytes encoded, 0 when a page did not fit. Inlined into its two
 * callers, each of which keeps only its own way. */
static inline __attribute__((always_inline)) uint32_t
encode_pages(struct pm_worker *w, const struct pm_dest *dgram, const struct pm_reply *rep,
	     uint8_t *out, uint32_t cap)
{
	bool paged = pm_reply_paged(rep);
	uint32_t total = paged ? pm_reply_items(rep) : 0, cursor = 0, used = 0;
	do {
		uint8_t *at = dgram ? tx_room(w) : out + used;
		uint32_t room = dgram ? PM_FRAME_BYTES_MAX : PM_MIN(cap - used, PM_FRAME_BYTES_MAX);
		size_t n = pm_reply_encode(rep, paged ? &cursor : NULL, at, room);
		if (n == 0)
			return 0;
		if (dgram)
			tx_commit(w, dgram, (uint32_t)n);
		used += (uint32_t)n;
	} while (paged && cursor < total);
	return used;
}

uint32_t pm_reply_frames(const struct pm_reply *rep, uint8_t *out, uint32_t cap)
{
	return encode_pages(NULL, NULL, rep, out, cap);
}

/* A reply into this worker's TX queue, a frame per page; its bytes
 * count against the client's byte quota. */
static void dgram_reply(struct pm_worker *w, const struct pm_dest *to, const struct pm_reply *rep)
{
	uint32_t n = encode_pages(w, to, rep, NULL, 0);
	if (n == 0) /* cannot happen for replies the engine built */
		w->stats.dropped_tx_full++;
	pm_quota_charge_reply(w, to, n);
}

/* Queue one reply datagram (a copy of p); dropped and counted when it could
 * never fit the TX queue. */
static void tx_queue(struct pm_worker *w, const struct pm_dest *to, const uint8_t *p, uint32_t len)
{
	struct pm_tx *t = &w->tx;
	if (t->n == PM_TX_BURST || t->bytes + len > PM_TX_BYTES)
		w->be->flush(w, false);
	if (len > PM_TX_BYTES) {
		w->stats.dropped_tx_full++;
		return;
	}
	memcpy(t->buf + t->bytes, p, len);
	tx_commit(w, to, len);
}

/* Reply frames encoded earlier (held for the log, from another worker, a
 * THROTTLED frame) into the TX queue frame by frame, as dgram_reply would
 * have queued them (packed with the peer's other replies, tx_commit). */
static void dgram_frames(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
			 uint32_t len)
{
	struct pm_frame_header h;
	for (uint32_t off = 0; off + PM_FRAME_HEADER_BYTES <= len;) {
		(void)pm_header_decode(frames + off, len - off, &h);
		uint32_t n = PM_FRAME_HEADER_BYTES + h.body_len;
		if (n > len - off)
			return; /* encoded by a worker: cannot happen */
		tx_queue(w, to, frames + off, n);
		off += n;
	}
	pm_quota_charge_reply(w, to, len);
}
