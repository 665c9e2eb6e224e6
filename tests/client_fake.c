/* SPDX-License-Identifier: MIT
 *
 * client_fake.c — the fake pomaid of the client suite (see client_fake.h).
 *
 * Its one thread polls every socket with a short timeout and checks a stop
 * flag, so fake_stop() returns within one poll period. Replies are built in
 * one datagram buffer per received datagram (or per TCP read) and sent when the
 * next frame would overflow it, so one request datagram can get several reply
 * datagrams, and one reply datagram can hold several frames.
 */
#define _GNU_SOURCE /* accept4 */
#include "client_fake.h"

#include "batch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "cu_main.h"
#include "route.h"

/* Port search: a random base in [FAKE_PORT_LO, FAKE_PORT_LO + FAKE_PORT_SPAN). */
#define FAKE_PORT_LO 20000u
#define FAKE_PORT_SPAN 40000u
#define FAKE_BIND_TRIES 200u
/* Poll period of the server thread: bounds how long fake_stop() waits. */
#define FAKE_POLL_MS 10
#define FAKE_SOCKBUF_BYTES (4 << 20)
#define FAKE_CONN_BYTES (2u * PM_FRAME_BYTES_MAX)

/* Where the replies to one datagram or one TCP read go. */
struct sink {
	int fd;
	bool tcp;
	struct sockaddr_in to;
	struct fake_conn *conn;
};

/* ---------------------------------------------------------------- sending */

static void conn_close(struct fake_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

static void tcp_write_all(struct fake_conn *c, const uint8_t *p, size_t n)
{
	while (n > 0 && c->fd >= 0) {
		ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
		} else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pf = { .fd = c->fd, .events = POLLOUT };
			(void)poll(&pf, 1, FAKE_POLL_MS);
		} else {
			conn_close(c);
		}
	}
}

static void sink_flush(struct fake *f, struct sink *k)
{
	if (f->out_len == 0)
		return;
	if (k->tcp) {
		tcp_write_all(k->conn, f->out, f->out_len);
	} else if (f->o.drop_tx_every && ++f->tx_count % f->o.drop_tx_every == 0) {
		f->tx_dropped++;
	} else {
		if (f->o.reply_delay_us) { /* what a slow server is: not a synchronisation */
			struct timespec ts = { 0, (long)f->o.reply_delay_us * 1000 };
			nanosleep(&ts, NULL);
		}
		for (int i = 0; i < (f->o.duplicate ? 2 : 1); i++)
			(void)sendto(k->fd, f->out, f->out_len, 0, (const struct sockaddr *)&k->to,
				     sizeof k->to);
	}
	f->out_len = 0;
}

static void sink_frame(struct fake *f, struct sink *k, const uint8_t *p, size_t n)
{
	if (f->out_len && f->out_len + n > FAKE_DATAGRAM_BYTES)
		sink_flush(f, k);
	memcpy(f->out + f->out_len, p, n);
	f->out_len += (uint32_t)n;
	if (f->out_len > FAKE_DATAGRAM_BYTES)
		sink_flush(f, k); /* a large frame goes alone */
}

/* ---------------------------------------------------------------- serving */

static uint32_t paged_items(const struct pm_reply *rep)
{
	return pm_reply_paged(rep) ? pm_reply_items(rep) : 0;
}

/* Every frame of a reply, through the cursor loop. */
static void answer(struct fake *f, struct sink *k, const struct pm_reply *rep)
{
	uint32_t cap = f->o.page_bytes ? f->o.page_bytes : PM_FRAME_BYTES_MAX;
	uint32_t cursor = 0, page = 0, items = paged_items(rep);
	do {
		size_t n = pm_reply_encode(rep, &cursor, f->frame, cap);
		if (n == 0) {
			fprintf(stderr, "fake: pm_reply_encode failed (op %u)\n", rep->op);
			return;
		}
		bool lose = f->o.lose_page1_once && !f->page1_lost && page == 1;
		f->page1_lost |= lose;
		if (!lose)
			sink_frame(f, k, f->frame, n);
		page++;
	} while (cursor < items);
}

static bool keyed(uint8_t op)
{
	return op == PM_OP_SET || op == PM_OP_GET || op == PM_OP_DEL || op == PM_OP_VADD ||
	       op == PM_OP_VGET || op == PM_OP_VDEL;
}

static bool writes(uint8_t op)
{
	return op == PM_OP_SET || op == PM_OP_DEL || op == PM_OP_VADD || op == PM_OP_VDEL ||
	       op == PM_OP_CCREATE || op == PM_OP_CDROP;
}

/* One reply frame the engine's types cannot say (MAP, MOVED, READONLY). */
static void answer_wire(struct fake *f, struct sink *k, const struct pm_wire_reply *w)
{
	size_t n = pm_wire_reply_encode(w, NULL, f->frame, PM_FRAME_BYTES_MAX);
	if (n == 0) {
		fprintf(stderr, "fake: pm_wire_reply_encode failed (op %u)\n", w->op);
		return;
	}
	sink_frame(f, k, f->frame, n);
}

/* A cluster node's own answers (under mu): true when it answered. */
static bool cluster_frame(struct fake *f, struct sink *k, const struct pm_request *req)
{
	const struct fake_cnode *cn = f->cn;
	struct pm_wire_reply w = { .op = req->op, .id = req->id };
	if (req->op == PM_OP_MAP) {
		w.status = cn->map_len ? PM_WIRE_OK : PM_WIRE_NOT_FOUND;
		w.value = (struct pm_wire_bytes){ cn->map, cn->map_len };
		f->maps_served++;
		answer_wire(f, k, &w);
		return true;
	}
	uint16_t slot = 0, owner = cn->set;
	if (keyed(req->op)) {
		slot = pm_slot_of(pm_route_hash(req->key.ptr, req->key.len));
		owner = cn->slot_set[slot];
	}
	if (owner != cn->set) {
		w.status = PM_WIRE_E_MOVED;
		w.map_epoch = cn->epoch;
		w.slot = slot;
		w.primary = cn->set_primary[owner];
		f->moved_sent++;
	} else if (writes(req->op) && !cn->primary) {
		w.status = PM_WIRE_E_READONLY;
		w.primary = cn->set_primary[cn->set];
		f->readonly_sent++;
	} else {
		f->keyed_served += keyed(req->op);
		return false;
	}
	answer_wire(f, k, &w);
	return true;
}

static void check_route(struct fake *f, const struct pm_request *req, uint32_t shard)
{
	bool ok = true;
	if (keyed(req->op) && req->key.len)
		ok = pm_shard_of(pm_route_hash(req->key.ptr, req->key.len), f->o.shards) == shard;
	else if (req->op != PM_OP_VQUERY && req->op != PM_OP_VQUERYB && req->op != PM_OP_VRANGE &&
		 req->op != PM_OP_NONE)
		ok = shard == 0;
	if (!ok)
		f->misroutes++;
}

/* Issue 18: the fake's one shard applies a batch or a range as pomaid's
 * shards do together (each VADD item applied, its status; the engine's
 * batch and range calls). Under mu. */
static struct pm_batch_space *batch_space;
static struct pm_request batch_items[PM_BATCH_ITEMS_MAX];
static uint8_t item_status[PM_BATCH_ITEMS_MAX];

static void apply_batch(struct fake *f, const struct pm_request *req, struct pm_reply *rep)
{
	uint32_t at = 0;
	enum pm_status st = PM_OK;
	if (!batch_space && !(batch_space = pm_batch_space_new())) {
		*rep = (struct pm_reply){ .status = PM_E_NOMEM, .op = req->op, .id = req->id };
		return;
	}
	if (req->op == PM_OP_VRANGE) {
		pm_vrange(&f->shard, req, batch_space, rep);
		rep->id = req->id;
		return;
	}
	for (uint32_t i = 0; i < req->nitems && st == PM_OK; i++)
		st = pm_request_item(req, &at, &batch_items[i]);
	if (st != PM_OK) {
		*rep = (struct pm_reply){ .status = st, .op = req->op, .id = req->id };
	} else if (req->op == PM_OP_VQUERYB) {
		pm_vquery_batch(&f->shard, batch_items, req->nitems, batch_space, rep);
	} else {
		for (uint32_t i = 0; i < req->nitems; i++) {
			struct pm_reply ir;
			pm_shard_apply(&f->shard, &batch_items[i], atomic_load(&f->now_ms), &ir);
			item_status[i] = (uint8_t)pm_status_to_wire(ir.status);
		}
		*rep = (struct pm_reply){ .status = PM_OK, .op = req->op, .item_status = item_status,
					  .nitems = req->nitems };
	}
	rep->id = req->id;
}

/* One request frame: decode, route check (UDP), apply, answer. */
static size_t serve_frame(struct fake *f, struct sink *k, uint32_t shard, const uint8_t *p,
			  size_t len)
{
	struct pm_request req;
	size_t used;
	enum pm_status st = pm_request_decode(p, len, &req, &used);
	if (used == 0)
		return 0;
	f->frames++;
	if (!k->tcp)
		check_route(f, &req, shard);
	struct pm_reply rep = { .status = st, .op = req.op, .id = req.id };
	pthread_mutex_lock(&f->mu);
	if (st == PM_OK && f->requests++ < f->o.busy_first) {
		rep.status = PM_E_BUSY;
	} else if (st == PM_OK && f->cn && f->cn->on && cluster_frame(f, k, &req)) {
		pthread_mutex_unlock(&f->mu);
		return used;
	} else if (st == PM_OK && req.op == PM_OP_SNAPSHOT) { /* pomaid's, not the engine's */
		rep.status = f->o.snapshot_status;
		atomic_fetch_add(&f->snapshots, 1);
	} else if (st == PM_OK && (req.op == PM_OP_VADDB || req.op == PM_OP_VQUERYB ||
				   req.op == PM_OP_VRANGE)) {
		apply_batch(f, &req, &rep);
	} else if (st == PM_OK) {
		pm_shard_apply(&f->shard, &req, atomic_load(&f->now_ms), &rep);
	}
	answer(f, k, &rep); /* reply pointers are valid until the next apply */
	pthread_mutex_unlock(&f->mu);
	return used;
}

static void serve_datagram(struct fake *f, uint32_t shard, const uint8_t *buf, size_t n,
			   const struct sockaddr_in *from)
{
	f->rx_datagrams++;
	if (f->o.drop_rx_every && ++f->rx_count % f->o.drop_rx_every == 0) {
		f->rx_dropped++;
		return;
	}
	if (f->o.mute || atomic_load(&f->muted))
		return;
	struct sink k = { .fd = f->udp[shard], .to = *from };
	size_t off = 0, used;
	while (off < n && (used = serve_frame(f, &k, shard, buf + off, n - off)) != 0)
		off += used;
	sink_flush(f, &k);
}

static void serve_stream(struct fake *f, struct fake_conn *c)
{
	struct sink k = { .fd = c->fd, .tcp = true, .conn = c };
	size_t off = 0;
	while (c->len - off >= PM_FRAME_HEADER_BYTES) {
		struct pm_frame_header h;
		enum pm_wire_status st = pm_header_decode(c->buf + off, c->len - off, &h);
		if (st == PM_WIRE_E_FRAME_TRUNCATED)
			break;
		if (!pm_header_usable(st)) {
			conn_close(c);
			return;
		}
		off += f->o.mute || atomic_load(&f->muted)
			       ? PM_FRAME_HEADER_BYTES + h.body_len
			       : serve_frame(f, &k, 0, c->buf + off, c->len - off);
	}
	sink_flush(f, &k);
	if (c->fd < 0)
		return;
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= (uint32_t)off;
}

/* ---------------------------------------------------------------- the thread */

static void read_udp(struct fake *f, uint32_t shard, uint8_t *buf)
{
	for (;;) {
		struct sockaddr_in from;
		socklen_t fl = sizeof from;
		ssize_t n = recvfrom(f->udp[shard], buf, PM_FRAME_BYTES_MAX, MSG_DONTWAIT,
				     (struct sockaddr *)&from, &fl);
		if (n < 0)
			return;
		serve_datagram(f, shard, buf, (size_t)n, &from);
	}
}

static void read_conn(struct fake *f, struct fake_conn *c)
{
	ssize_t n = recv(c->fd, c->buf + c->len, FAKE_CONN_BYTES - c->len, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		conn_close(c);
	if (n <= 0)
		return;
	c->len += (uint32_t)n;
	serve_stream(f, c);
}

static void accept_conn(struct fake *f)
{
	int fd = accept4(f->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	for (uint32_t i = 0; i < FAKE_CONNS_MAX; i++) {
		if (f->conns[i].fd < 0) {
			f->conns[i].fd = fd;
			f->conns[i].len = 0;
			return;
		}
	}
	close(fd); /* full: the client sees the stream close */
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	uint8_t *buf = malloc(PM_FRAME_BYTES_MAX);
	while (buf && !atomic_load(&f->stop)) {
		struct pollfd p[FAKE_SHARDS_MAX + 1 + FAKE_CONNS_MAX];
		uint32_t n = 0;
		for (uint32_t i = 0; i < f->o.shards; i++)
			p[n++] = (struct pollfd){ .fd = f->udp[i], .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = f->listen_fd, .events = POLLIN };
		for (uint32_t i = 0; i < FAKE_CONNS_MAX; i++)
			p[n++] = (struct pollfd){ .fd = f->conns[i].fd, .events = POLLIN };
		if (atomic_load(&f->close_conns)) {
			for (uint32_t i = 0; i < FAKE_CONNS_MAX; i++)
				conn_close(&f->conns[i]);
			atomic_store(&f->close_conns, false);
			continue;
		}
		if (poll(p, n, FAKE_POLL_MS) <= 0)
			continue;
		for (uint32_t i = 0; i < f->o.shards; i++)
			if (p[i].revents)
				read_udp(f, i, buf);
		if (p[f->o.shards].revents)
			accept_conn(f);
		for (uint32_t i = 0; i < FAKE_CONNS_MAX; i++)
			if (f->conns[i].fd >= 0 && p[f->o.shards + 1 + i].revents)
				read_conn(f, &f->conns[i]);
	}
	free(buf);
	return NULL;
}

/* ---------------------------------------------------------------- set-up */

static int bind_port(int type, uint32_t port)
{
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1, bytes = FAKE_SOCKBUF_BYTES;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    (type == SOCK_STREAM && listen(fd, (int)FAKE_CONNS_MAX) != 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void close_ports(struct fake *f)
{
	for (uint32_t i = 0; i < FAKE_SHARDS_MAX; i++) {
		if (f->udp[i] >= 0)
			close(f->udp[i]);
		f->udp[i] = -1;
	}
	if (f->listen_fd >= 0)
		close(f->listen_fd);
	f->listen_fd = -1;
}

/* The TCP port base - 1 and UDP ports base .. base + shards - 1, all or none. */
static bool bind_all(struct fake *f, uint32_t base)
{
	f->listen_fd = bind_port(SOCK_STREAM, base - 1);
	for (uint32_t i = 0; i < f->o.shards && f->listen_fd >= 0; i++)
		if ((f->udp[i] = bind_port(SOCK_DGRAM, base + i)) < 0)
			break;
	if (f->listen_fd >= 0 && f->udp[f->o.shards - 1] >= 0)
		return true;
	close_ports(f);
	return false;
}

static bool alloc_buffers(struct fake *f)
{
	f->out = malloc(PM_FRAME_BYTES_MAX + FAKE_DATAGRAM_BYTES);
	f->frame = malloc(PM_FRAME_BYTES_MAX);
	for (uint32_t i = 0; i < FAKE_CONNS_MAX; i++) {
		f->conns[i].fd = -1;
		f->conns[i].buf = malloc(FAKE_CONN_BYTES);
		if (!f->conns[i].buf)
			return false;
	}
	return f->out && f->frame;
}

int fake_start(struct fake *f, const struct fake_opts *o)
{
	static uint64_t seed;
	memset(f, 0, sizeof *f);
	f->o = *o;
	f->listen_fd = -1;
	for (uint32_t i = 0; i < FAKE_SHARDS_MAX; i++)
		f->udp[i] = -1;
	atomic_store(&f->now_ms, FAKE_CLOCK_START_MS);
	if (o->shards == 0 || o->shards > FAKE_SHARDS_MAX || !alloc_buffers(f))
		return -1;
	struct pm_shard_config cfg;
	pm_shard_config_default(&cfg);
	cfg.arena_bytes = FAKE_ARENA_BYTES;
	cfg.seed_capacity = FAKE_SEEDS;
	cfg.hugepages = false;
	if (pm_shard_init(&f->shard, &cfg) != PM_OK) {
		fprintf(stderr, "fake: pm_shard_init failed\n");
		return -1;
	}
	seed ^= (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	for (uint32_t t = 0; t < FAKE_BIND_TRIES && f->base_port == 0; t++) {
		uint32_t base = FAKE_PORT_LO + (uint32_t)(pm_test_rand(&seed) % FAKE_PORT_SPAN);
		if (bind_all(f, base))
			f->base_port = base;
	}
	pthread_mutex_init(&f->mu, NULL);
	if (f->base_port == 0 || pthread_create(&f->thread, NULL, fake_main, f) != 0) {
		fprintf(stderr, "fake: no free ports / thread\n");
		return -1;
	}
	return 0;
}

void fake_stop(struct fake *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	close_ports(f);
	for (uint32_t i = 0; i < FAKE_CONNS_MAX; i++) {
		conn_close(&f->conns[i]);
		free(f->conns[i].buf);
	}
	free(f->out);
	free(f->frame);
	free(f->cn);
	pthread_mutex_destroy(&f->mu);
	pm_shard_destroy(&f->shard);
}

void fake_advance(struct fake *f, uint64_t ms)
{
	pthread_mutex_lock(&f->mu);
	atomic_fetch_add(&f->now_ms, ms);
	pthread_mutex_unlock(&f->mu);
}

void fake_close_conns(struct fake *f)
{
	atomic_store(&f->close_conns, true);
	while (atomic_load(&f->close_conns)) {
		struct timespec ts = { .tv_nsec = 1000000 }; /* the thread polls every 10 ms */
		nanosleep(&ts, NULL);
	}
}

void fake_mute(struct fake *f, bool mute)
{
	atomic_store(&f->muted, mute);
}

int fake_cluster_set(struct fake *f, const struct fake_cnode *v)
{
	pthread_mutex_lock(&f->mu);
	if (f->cn == NULL)
		f->cn = malloc(sizeof *f->cn);
	if (f->cn)
		*f->cn = *v;
	pthread_mutex_unlock(&f->mu);
	return f->cn ? 0 : -1;
}

bool fake_holds(struct fake *f, const void *key, uint32_t klen)
{
	struct pm_request q = { .op = PM_OP_GET, .id = 1,
				.key = { (const uint8_t *)key, klen } };
	struct pm_reply rep;
	pthread_mutex_lock(&f->mu);
	pm_shard_apply(&f->shard, &q, atomic_load(&f->now_ms), &rep);
	pthread_mutex_unlock(&f->mu);
	return rep.status != PM_NOT_FOUND; /* a vector answers WRONGTYPE */
}
