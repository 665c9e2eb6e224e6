/* SPDX-License-Identifier: MIT
 *
 * admin.c — pomaid's admin socket (proto/admin_proto.h, docs/admin.md),
 * served by the daemon's main thread once the workers run.
 *
 * The admin thread never touches a shard. What needs one goes to the workers
 * through their rings: a wire request (INFO, SNAPSHOT, the collection ops) is
 * posted to worker 0's admin ring as if a client had sent it, with a reply
 * destination that means "the admin" (PM_CONN_ADMIN, tagged); whichever
 * worker answers puts the reply frames in its own admin-out ring and wakes
 * this thread. What the workers publish anyway (shards, snapshot progress) is
 * read from the stats segment. The socket is created mode 0600 — the access
 * control — and serves at most PM_ADMIN_CONNS_MAX connections at once.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "repl_io.h"
#include "admin_proto.h"
#include "bridge.h"
#include "cluster.h"
#include "common.h"
#include "evict.h"
#include "fanout.h"
#include "msg.h"
#include "users.h"
#include "worker.h"

struct admin_conn {
	int fd;             /* -1: free */
	uint32_t len;       /* bytes of the request read so far */
	uint8_t buf[PM_ADMIN_BUFFER_BYTES];
};

struct pm_admin {
	int lfd, efd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint32_t tag;
	struct admin_conn conns[PM_ADMIN_CONNS_MAX];
	uint8_t frames[PM_RING_PAYLOAD_MAX]; /* a wire reply */
	uint32_t frames_len;
	char text[PM_ADMIN_TEXT_BYTES];      /* a reply's text */
	size_t text_len;
	uint8_t out[PM_ADMIN_BUFFER_BYTES];
};

/* ---------------------------------------------------------------- set-up */

int pm_admin_open(struct pm_daemon *d, char *err, size_t errlen)
{
	/* 10 MB of buffers (eight connections' requests, a reply's text), their
	 * pages touched only when used: a mapping of its own, as malloc may hand
	 * out reused heap and calloc then clears all of it (1 ms of a restart) */
	struct pm_admin *a = pm_pages_alloc(sizeof(*a));
	uint32_t n = d->nshards;
	d->admin_in = calloc(n, sizeof(*d->admin_in));
	d->admin_out = calloc(n, sizeof(*d->admin_out));
	if (!a || !d->admin_in || !d->admin_out)
		return pm_errf(err, errlen, "out of memory for the admin socket");
	d->admin = a;
	a->lfd = a->efd = -1;
	for (uint32_t i = 0; i < PM_ADMIN_CONNS_MAX; i++)
		a->conns[i].fd = -1;
	for (uint32_t i = 0; i < n; i++)
		if (!(d->admin_in[i].buf = malloc(PM_RING_BYTES)) ||
		    !(d->admin_out[i].buf = malloc(PM_RING_BYTES)))
			return pm_errf(err, errlen, "out of memory for the admin rings");
	if ((a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return pm_errf(err, errlen, "admin eventfd: %s", strerror(errno));
	d->admin_efd = a->efd;
	const char *path = d->cfg.admin_socket;
	char def[PM_CONFIG_STRING_BYTES + 16];
	if (!path[0]) {
		snprintf(def, sizeof(def), "%s/admin.sock", d->cfg.data_dir);
		path = def;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return pm_errf(err, errlen, "admin socket %s: path too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	memcpy(a->path, path, strlen(path) + 1);
	unlink(path); /* a stale one (the data_dir lock is ours) */
	mode_t old = umask(0177);  /* created 0600: only its owner may talk to pomaid */
	a->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rc = a->lfd < 0 || bind(a->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		 listen(a->lfd, PM_ADMIN_CONNS_MAX) != 0;
	umask(old);
	if (rc)
		return pm_errf(err, errlen, "admin socket %s: %s", path, strerror(errno));
	return 0;
}

void pm_admin_close(struct pm_daemon *d)
{
	struct pm_admin *a = d->admin;
	for (uint32_t i = 0; d->admin_in && i < d->nshards; i++) {
		free(d->admin_in[i].buf);
		free(d->admin_out[i].buf);
	}
	free(d->admin_in);
	free(d->admin_out);
	d->admin_in = d->admin_out = NULL;
	if (!a)
		return;
	for (uint32_t i = 0; i < PM_ADMIN_CONNS_MAX; i++)
		if (a->conns[i].fd >= 0)
			close(a->conns[i].fd);
	if (a->lfd >= 0) {
		close(a->lfd);
		unlink(a->path);
	}
	if (a->efd >= 0)
		close(a->efd);
	pm_pages_free(a, sizeof(*a));
	d->admin = NULL;
}

/* ---------------------------------------------------------------- reply text */

__attribute__((format(printf, 2, 3))) static void say(struct pm_admin *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = sizeof(a->text) - a->text_len;
	int n = vsnprintf(a->text + a->text_len, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		a->text_len += (size_t)n < room ? (size_t)n : room - 1;
}

/* ---------------------------------------------------------------- wire requests */

/* Post to worker `to`'s admin ring and wake it if it sleeps. */
static bool admin_post(struct pm_daemon *d, uint32_t to, uint32_t type, const struct pm_msg *m,
		       const uint8_t *body, uint32_t len)
{
	if (!pm_ring_send(&d->admin_in[to], type, m, body, len))
		return false;
	pm_wake(d, to);
	return true;
}

/* Take every reply the workers left; keep the one tagged `tag`. */
static bool collect(struct pm_daemon *d, uint32_t tag)
{
	struct pm_admin *a = d->admin;
	bool got = false;
	for (uint32_t i = 0; i < d->nshards; i++) {
		struct pm_ring *r = &d->admin_out[i];
		uint32_t type, len;
		const uint8_t *p;
		while ((p = pm_ring_peek(r, &type, &len)) != NULL) {
			const struct pm_msg *m = (const struct pm_msg *)p;
			uint32_t blen = len - (uint32_t)sizeof(*m);
			if (m->dest.gen == tag && blen <= sizeof(a->frames)) {
				memcpy(a->frames, p + sizeof(*m), blen);
				a->frames_len = blen;
				got = true;
			}
			pm_ring_pop(r, len);
		}
	}
	return got;
}

/* Post a message to worker `to` and wait for its answer (a->frames). */
static enum pm_admin_status post_wait(struct pm_daemon *d, uint32_t to, uint32_t type,
				      const uint8_t *body, uint32_t n)
{
	struct pm_admin *a = d->admin;
	struct pm_msg m = { .origin = to,
			    .dest = { .worker = to, .conn = PM_CONN_ADMIN, .gen = ++a->tag,
				      .port = PM_PORT_KERNEL } };
	if (!admin_post(d, to, type, &m, body, n)) {
		say(a, "worker %u is busy: its admin ring is full\n", to);
		return PM_ADMIN_UNAVAILABLE;
	}
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (collect(d, a->tag))
			return PM_ADMIN_OK;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= (long)PM_ADMIN_REPLY_MS || atomic_load(&d->quit)) {
			say(a, "no answer from the workers in %u ms\n", PM_ADMIN_REPLY_MS);
			return PM_ADMIN_UNAVAILABLE;
		}
		struct pollfd pf = { .fd = a->efd, .events = POLLIN };
		if (poll(&pf, 1, (int)(PM_ADMIN_REPLY_MS - ms)) > 0) {
			uint64_t v;
			ssize_t r = read(a->efd, &v, sizeof(v));
			(void)r;
		}
	}
}

/* Send req through worker 0 and wait for its reply frames (a->frames). */
static enum pm_admin_status wire(struct pm_daemon *d, struct pm_request *req)
{
	uint8_t frame[PM_FRAME_BYTES_MAX];
	req->id = d->admin->tag + 1;
	size_t n = pm_request_encode(req, frame, sizeof(frame));
	if (n == 0) {
		say(d->admin, "request too large\n");
		return PM_ADMIN_USAGE;
	}
	return post_wait(d, 0, PM_MSG_ADMIN_FRAME, frame, (uint32_t)n);
}

/* The first reply frame's status as the command's: OK, or the status name. */
static enum pm_admin_status wire_status(struct pm_admin *a, struct pm_reply_view *rv)
{
	size_t used;
	if (pm_reply_decode(a->frames, a->frames_len, rv, &used) != PM_WIRE_OK) {
		say(a, "undecodable reply\n");
		return PM_ADMIN_ERROR;
	}
	if (rv->status != PM_WIRE_OK && rv->status != PM_WIRE_NOT_FOUND) {
		say(a, "%s\n", pm_wire_status_name(rv->status));
		return PM_ADMIN_ERROR;
	}
	return PM_ADMIN_OK;
}

/* ---------------------------------------------------------------- commands */

typedef enum pm_admin_status (*admin_fn)(struct pm_daemon *d, const struct pm_admin_req *r);

/* Argument i as a NUL-terminated string (empty when absent or too long). */
static const char *arg(const struct pm_admin_req *r, uint32_t i, char *buf, size_t n)
{
	buf[0] = '\0';
	if (i < r->argc && r->arg[i].len < n) {
		memcpy(buf, r->arg[i].p, r->arg[i].len);
		buf[r->arg[i].len] = '\0';
	}
	return buf;
}

static enum pm_admin_status cmd_ping(struct pm_daemon *d, const struct pm_admin_req *r)
{
	(void)r;
	say(d->admin, "PONG\n");
	return PM_ADMIN_OK;
}

_Static_assert(PM_ADMIN_TEXT_BYTES > PM_INFO_REPLY_BYTES_MAX, "a whole INFO text fits");

/* The whole text: every shard's (PAGED: the reply frames, in order). */
static enum pm_admin_status cmd_info(struct pm_daemon *d, const struct pm_admin_req *r)
{
	struct pm_admin *a = d->admin;
	struct pm_request req = { .op = PM_OP_INFO, .info_flags = PM_INFO_PAGED };
	if (r->argc > 1)
		req.section = (struct pm_bytes){ r->arg[1].p, r->arg[1].len };
	if (!pm_info_section_known((const char *)req.section.ptr, req.section.len)) {
		say(a, "error: no such section '%.*s' (INFO has %s)\n", (int)PM_MIN(req.section.len, 64u),
		    (const char *)req.section.ptr, PM_INFO_SECTION_NAMES);
		return PM_ADMIN_USAGE;
	}
	struct pm_reply_view rv;
	enum pm_admin_status st = wire(d, &req);
	if (st == PM_ADMIN_OK)
		st = wire_status(a, &rv);
	for (size_t off = 0, used; st == PM_ADMIN_OK && off < a->frames_len; off += used) {
		if (pm_reply_decode(a->frames + off, a->frames_len - off, &rv, &used) != PM_WIRE_OK) {
			say(a, "undecodable reply\n");
			return PM_ADMIN_ERROR;
		}
		say(a, "%.*s", (int)rv.value.len, (const char *)rv.value.ptr);
	}
	return st;
}

/* A consistent copy of shard i's stats block; false if it could not be read. */
static bool shard_stats(struct pm_daemon *d, uint32_t i, struct pm_stats_shard *s)
{
	return d->stats_base && pm_stats_read(pm_stats_shard_at(d->stats_base, i), s, sizeof(*s));
}

static enum pm_admin_status cmd_snapshot(struct pm_daemon *d, const struct pm_admin_req *r)
{
	struct pm_admin *a = d->admin;
	if (r->argc < 2 || pm_admin_arg_is(r, 1, "now")) {
		struct pm_request req = { .op = PM_OP_SNAPSHOT };
		struct pm_reply_view rv;
		enum pm_admin_status st = wire(d, &req);
		if (st == PM_ADMIN_OK && (st = wire_status(a, &rv)) == PM_ADMIN_OK)
			say(a, "OK: every shard is writing a snapshot\n");
		return st;
	}
	if (!pm_admin_arg_is(r, 1, "status")) {
		say(a, "usage: SNAPSHOT [now|status]\n");
		return PM_ADMIN_USAGE;
	}
	static struct pm_stats_shard s;
	for (uint32_t i = 0; i < d->nshards; i++) {
		if (!shard_stats(d, i, &s))
			return PM_ADMIN_UNAVAILABLE;
		say(a, "# Shard %u\r\nsnapshot_in_progress:%" PRIu64 "\r\nsnapshot_progress_pct:%" PRIu64
		       "\r\nsnapshots_completed:%" PRIu64 "\r\nsnapshots_failed:%" PRIu64
		       "\r\nsnapshot_last_lsn:%" PRIu64 "\r\nsnapshot_last_unix_ms:%" PRIu64 "\r\n",
		    i, s.snapshot_running, s.snapshot_progress_pct, s.snapshots_completed,
		    s.snapshots_failed, s.snapshot_last_lsn, s.snapshot_last_unix_ms);
	}
	return PM_ADMIN_OK;
}

static enum pm_admin_status cmd_shutdown(struct pm_daemon *d, const struct pm_admin_req *r)
{
	(void)r;
	atomic_store(&d->quit, 1);
	for (uint32_t i = 0; i < d->nshards; i++) {
		uint64_t one = 1;
		ssize_t n = write(d->workers[i].wake_fd, &one, sizeof(one));
		(void)n;
	}
	say(d->admin, "OK: stopping\n");
	return PM_ADMIN_OK;
}

static enum pm_admin_status cmd_shards(struct pm_daemon *d, const struct pm_admin_req *r)
{
	(void)r;
	static struct pm_stats_shard s;
	for (uint32_t i = 0; i < d->nshards; i++) {
		if (!shard_stats(d, i, &s))
			return PM_ADMIN_UNAVAILABLE;
		uint64_t ops = 0;
		for (unsigned o = 0; o < PM_STATS_OPS; o++)
			ops += s.ops[o];
		say(d->admin, "# Shard %u\r\ncpu:%" PRId64 "\r\nnuma_node:%" PRId64 "\r\n", i, s.cpu,
		    s.numa_node);
		if (d->dpdk)
			say(d->admin, "queue:dpdk\r\n");
		else
			say(d->admin, "queue:udp/%u\r\n", d->cfg.base_port + i);
		say(d->admin, "keys:%" PRIu64 "\r\nvectors:%" PRIu64 "\r\ncollections:%" PRIu64
			       "\r\narena_bytes:%" PRIu64 "\r\nused_bytes:%" PRIu64 "\r\nops:%" PRIu64
			       "\r\nkv_p50_ns:%" PRIu64 "\r\nkv_p99_ns:%" PRIu64 "\r\n",
		    s.keys, s.vectors, s.collections, s.arena_bytes,
		    pm_mem_used_bytes(s.seeds_used, s.blob_bytes_used), ops,
		    pm_hist_quantile(&s.lat_kv, 0.5), pm_hist_quantile(&s.lat_kv, 0.99));
	}
	return PM_ADMIN_OK;
}

static enum pm_admin_status cmd_config(struct pm_daemon *d, const struct pm_admin_req *r)
{
	struct pm_admin *a = d->admin;
	char key[64], val[PM_CONFIG_EAL_BYTES], err[256];
	arg(r, 2, key, sizeof(key));
	if (pm_admin_arg_is(r, 1, "get") && r->argc == 3) {
		if (pm_config_get(&d->cfg, key, val, sizeof(val)) != 0) {
			say(a, "%s: no such key\n", key);
			return PM_ADMIN_ERROR;
		}
		say(a, "%s:%s\r\n", key, val);
		return PM_ADMIN_OK;
	}
	if (pm_admin_arg_is(r, 1, "set") && r->argc == 4) {
		if (pm_config_set_live(&d->cfg, key, arg(r, 3, val, sizeof(val)), err,
				       sizeof(err)) != 0) {
			say(a, "%s\n", err);
			return PM_ADMIN_ERROR;
		}
		say(a, "OK\n");
		return PM_ADMIN_OK;
	}
	say(a, "usage: CONFIG GET key | CONFIG SET key value\n");
	return PM_ADMIN_USAGE;
}

static const char *const metric_names[PM_METRIC_COUNT] = { "l2", "ip", "cosine" };
static const char *const index_names[PM_INDEX_COUNT] = { "flat", "hnsw" };
static const char *const dtype_names[PM_DTYPE_COUNT] = { "f32", "f16", "q8", "bin" };

static enum pm_admin_status coll_list(struct pm_daemon *d)
{
	struct pm_admin *a = d->admin;
	struct pm_request req = { .op = PM_OP_CLIST,
				  .list_flags = PM_CLIST_COLL_FLAGS | PM_CLIST_DTYPE };
	enum pm_admin_status st = wire(d, &req);
	for (size_t off = 0, used; st == PM_ADMIN_OK && off < a->frames_len; off += used) {
		struct pm_reply_view rv;
		struct pm_wire_coll_info ci;
		if (pm_reply_decode(a->frames + off, a->frames_len - off, &rv, &used) != PM_WIRE_OK ||
		    rv.status != PM_WIRE_OK) {
			say(a, "%s\n", pm_wire_status_name(rv.status));
			return PM_ADMIN_ERROR;
		}
		while (pm_reply_next_coll(&rv, &ci)) {
			if (ci.name.len)
				say(a, "# %.*s\r\n", (int)ci.name.len, (const char *)ci.name.ptr);
			else
				say(a, "# (default, dim %u)\r\n", ci.params.dim);
			say(a, "dim:%u\r\nmetric:%s\r\nindex:%s\r\nvectors:%" PRIu64 "\r\nbytes:%" PRIu64
			       "\r\n", ci.params.dim, metric_names[ci.params.metric % PM_METRIC_COUNT],
			    index_names[ci.params.index % PM_INDEX_COUNT], ci.count, ci.bytes);
			say(a, "dtype:%s\r\nrerank:%u\r\n", dtype_names[ci.params.dtype % PM_DTYPE_COUNT],
			    ci.params.rerank ? ci.params.rerank_k : 0u);
		}
	}
	return st;
}

static bool dtype_of(const char *s, uint8_t *out)
{
	for (uint8_t j = 0; j < PM_DTYPE_COUNT; j++)
		if (!strcmp(s, dtype_names[j])) {
			*out = j;
			return true;
		}
	return false;
}

/* "key=value" arguments of COLLECTION CREATE into p; false on a bad one. */
static bool coll_params(struct pm_admin *a, const struct pm_admin_req *r,
			struct pm_collection_params *p)
{
	for (uint32_t i = 3; i < r->argc; i++) {
		char kv[64], *eq;
		arg(r, i, kv, sizeof(kv));
		if (!(eq = strchr(kv, '='))) {
			say(a, "%s: want key=value\n", kv);
			return false;
		}
		*eq++ = '\0';
		char *end;
		unsigned long v = strtoul(eq, &end, 10);
		bool num = end != eq && !*end && v <= UINT32_MAX;
		int m = -1;
		for (int j = 0; j < (int)PM_METRIC_COUNT; j++)
			m = !strcmp(eq, metric_names[j]) ? j : m;
		if (!strcmp(kv, "dim") && num)
			p->dim = (uint32_t)v;
		else if (!strcmp(kv, "metric") && m >= 0)
			p->metric = (uint8_t)m;
		else if (!strcmp(kv, "index") && (!strcmp(eq, "flat") || !strcmp(eq, "hnsw")))
			p->index = !strcmp(eq, "hnsw") ? PM_INDEX_HNSW : PM_INDEX_FLAT;
		else if (!strcmp(kv, "m") && num && v <= UINT16_MAX)
			p->hnsw_m = (uint16_t)v;
		else if (!strcmp(kv, "ef_construction") && num)
			p->ef_construction = (uint32_t)v;
		else if (!strcmp(kv, "ef_search") && num)
			p->ef_search = (uint32_t)v;
		else if (!strcmp(kv, "dtype") && dtype_of(eq, &p->dtype))
			;
		else if (!strcmp(kv, "rerank") && num) /* candidates; 0 off */
			p->rerank = v != 0, p->rerank_k = (uint32_t)v;
		else {
			say(a, "%s=%s: unknown key or bad value\n", kv, eq);
			return false;
		}
	}
	return true;
}

static enum pm_admin_status cmd_collection(struct pm_daemon *d, const struct pm_admin_req *r)
{
	struct pm_admin *a = d->admin;
	if (pm_admin_arg_is(r, 1, "list") && r->argc == 2)
		return coll_list(d);
	bool create = pm_admin_arg_is(r, 1, "create"), drop = pm_admin_arg_is(r, 1, "drop");
	struct pm_request req = { .op = create ? PM_OP_CCREATE : PM_OP_CDROP };
	if (r->argc >= 3)
		req.collection = (struct pm_bytes){ r->arg[2].p, r->arg[2].len };
	if (!((create && r->argc >= 3 && coll_params(a, r, &req.params)) || (drop && r->argc == 3))) {
		say(a, "usage: COLLECTION LIST | COLLECTION CREATE name dim=D [metric=l2|ip|cosine]"
		       " [index=flat|hnsw] [m=M] [ef_construction=N] [ef_search=N]"
		       " [dtype=f32|f16|q8|bin] [rerank=N] | COLLECTION DROP name\n");
		return PM_ADMIN_USAGE;
	}
	struct pm_reply_view rv;
	enum pm_admin_status st = wire(d, &req);
	if (st == PM_ADMIN_OK && (st = wire_status(a, &rv)) == PM_ADMIN_OK)
		say(a, drop ? "removed:%u\r\n" : "OK\n", rv.status == PM_WIRE_OK && rv.removed);
	return st;
}

/* ---------------------------------------------------------------- quotas, clients */

/* Run a call on worker i; its result (and items) in a->frames. */
static enum pm_admin_status call_worker(struct pm_daemon *d, uint32_t i,
					const struct pm_admin_call *c, struct pm_admin_result *res)
{
	struct pm_admin *a = d->admin;
	enum pm_admin_status st = post_wait(d, i, PM_MSG_ADMIN_CALL, (const uint8_t *)c,
					    (uint32_t)sizeof(*c));
	if (st == PM_ADMIN_OK && a->frames_len < sizeof(*res))
		st = PM_ADMIN_ERROR;
	if (st == PM_ADMIN_OK)
		memcpy(res, a->frames, sizeof(*res));
	return st;
}

static bool parse_addr(struct pm_admin *a, const struct pm_admin_req *r, uint32_t i,
		       uint32_t *addr_be)
{
	char text[INET_ADDRSTRLEN + 1], *end;
	struct in_addr in;
	arg(r, i, text, sizeof(text));
	if (!strncmp(text, "user:", 5)) { /* auth = on: a user's entry (issue 19) */
		unsigned long u = strtoul(text + 5, &end, 10);
		if (*end || u == 0 || u > PM_AUTH_USER_ID_MAX) {
			say(a, "%s: want user:ID, ID 1..65535\n", text);
			return false;
		}
		*addr_be = pm_quota_user_key((uint16_t)u);
		return true;
	}
	if (inet_pton(AF_INET, text, &in) != 1) {
		say(a, "%s: want an IPv4 address, or user:ID\n", text);
		return false;
	}
	*addr_be = in.s_addr;
	return true;
}

static bool parse_rate(struct pm_admin *a, const struct pm_admin_req *r, uint32_t i,
		       uint64_t *v)
{
	char text[32], *end;
	*v = strtoull(arg(r, i, text, sizeof(text)), &end, 10);
	if (!text[0] || *end || text[0] == '-') {
		say(a, "%s: want a rate per second (0: unlimited)\n", text);
		return false;
	}
	return true;
}

/* QUOTA SET / DEL: the same call on every worker (each holds its share). */
static enum pm_admin_status quota_change(struct pm_daemon *d, const struct pm_admin_call *c)
{
	struct pm_admin *a = d->admin;
	struct pm_admin_result res;
	int rc = 0;
	for (uint32_t i = 0; i < d->nshards; i++) {
		enum pm_admin_status st = call_worker(d, i, c, &res);
		if (st != PM_ADMIN_OK)
			return st;
		rc = rc ? rc : res.rc;
	}
	if (rc == -ENOENT)
		say(a, "no quota of its own: that client has the default\n");
	else if (rc == -ENOSPC)
		say(a, "%u clients have quotas of their own: no more\n", PM_QUOTA_OVERRIDES_MAX);
	else if (rc)
		say(a, "rate above %llu per second\n", (unsigned long long)PM_QUOTA_RATE_PER_S_MAX);
	else
		say(a, "OK\n");
	return rc ? PM_ADMIN_ERROR : PM_ADMIN_OK;
}

/* QUOTA LIST / GET: worker 0's overrides (every worker holds the same ones). */
static enum pm_admin_status quota_show(struct pm_daemon *d, const uint32_t *only)
{
	struct pm_admin *a = d->admin;
	struct pm_admin_call c = { .op = PM_CALL_QUOTA_LIST, .n = PM_QUOTA_OVERRIDES_MAX };
	struct pm_admin_result res;
	enum pm_admin_status st = call_worker(d, 0, &c, &res);
	const struct pm_quota_override *o = (const void *)(a->frames + sizeof(res));
	uint32_t shown = 0;
	for (uint32_t i = 0; st == PM_ADMIN_OK && i < res.n; i++) {
		char ip[INET_ADDRSTRLEN + 8];
		if (only && o[i].addr_be != *only)
			continue;
		if (pm_quota_key_user(o[i].addr_be))
			snprintf(ip, sizeof(ip), "user:%u", pm_quota_key_user(o[i].addr_be));
		else
			inet_ntop(AF_INET, &o[i].addr_be, ip, sizeof(ip));
		say(a, "# %s\r\nrequests_per_s:%llu\r\nbytes_per_s:%llu\r\n", ip,
		    (unsigned long long)o[i].lim.requests_per_s,
		    (unsigned long long)o[i].lim.bytes_per_s);
		shown++;
	}
	if (st == PM_ADMIN_OK && only && !shown) {
		say(a, "no quota of its own: that client has the default\n");
		return PM_ADMIN_ERROR;
	}
	return st;
}

static enum pm_admin_status cmd_quota(struct pm_daemon *d, const struct pm_admin_req *r)
{
	struct pm_admin *a = d->admin;
	struct pm_admin_call c = { 0 };
	if (pm_admin_arg_is(r, 1, "list") && r->argc == 2)
		return quota_show(d, NULL);
	if (pm_admin_arg_is(r, 1, "get") && r->argc == 3)
		return parse_addr(a, r, 2, &c.addr_be) ? quota_show(d, &c.addr_be) : PM_ADMIN_USAGE;
	if (pm_admin_arg_is(r, 1, "del") && r->argc == 3) {
		c.op = PM_CALL_QUOTA_DEL;
		return parse_addr(a, r, 2, &c.addr_be) ? quota_change(d, &c) : PM_ADMIN_USAGE;
	}
	if (pm_admin_arg_is(r, 1, "set") && r->argc == 5) {
		c.op = PM_CALL_QUOTA_SET;
		if (!parse_addr(a, r, 2, &c.addr_be) || !parse_rate(a, r, 3, &c.requests_per_s) ||
		    !parse_rate(a, r, 4, &c.bytes_per_s))
			return PM_ADMIN_USAGE;
		return quota_change(d, &c);
	}
	say(a, "usage: QUOTA SET addr requests_per_s bytes_per_s | QUOTA GET addr | QUOTA LIST |"
	       " QUOTA DEL addr\n");
	return PM_ADMIN_USAGE;
}

/* Merge one worker's talkers into the running list (by address). */
static uint32_t merge_talkers(struct pm_quota_talker *all, uint32_t n,
			      const struct pm_quota_talker *t, uint32_t m)
{
	for (uint32_t i = 0; i < m; i++) {
		uint32_t j = 0;
		while (j < n && all[j].addr_be != t[i].addr_be)
			j++;
		if (j == n && n == PM_ADMIN_TOP_MAX * PM_STATS_SHARDS_MAX)
			continue;
		if (j == n)
			all[n++] = (struct pm_quota_talker){ .addr_be = t[i].addr_be };
		all[j].requests += t[i].requests;
		all[j].bytes += t[i].bytes;
		all[j].throttled += t[i].throttled;
		all[j].pinned |= t[i].pinned;
	}
	return n;
}

static int talker_cmp(const void *x, const void *y)
{
	const struct pm_quota_talker *a = x, *b = y;
	uint64_t u = a->requests + a->throttled, v = b->requests + b->throttled;
	return u < v ? 1 : u > v ? -1 : 0;
}

static enum pm_admin_status cmd_clients(struct pm_daemon *d, const struct pm_admin_req *r)
{
	struct pm_admin *a = d->admin;
	static struct pm_quota_talker all[PM_ADMIN_TOP_MAX * PM_STATS_SHARDS_MAX];
	char text[16];
	unsigned long want = r->argc > 1 ? strtoul(arg(r, 1, text, sizeof(text)), NULL, 10)
					 : PM_ADMIN_TOP_DEFAULT;
	if (r->argc > 2 || want == 0 || want > PM_ADMIN_TOP_MAX) {
		say(a, "usage: CLIENTS [n]  (n = 1..%u, default %u)\n", PM_ADMIN_TOP_MAX,
		    PM_ADMIN_TOP_DEFAULT);
		return PM_ADMIN_USAGE;
	}
	struct pm_admin_call c = { .op = PM_CALL_CLIENTS, .n = PM_ADMIN_TOP_MAX };
	struct pm_admin_result res;
	uint32_t n = 0;
	for (uint32_t i = 0; i < d->nshards; i++) {
		enum pm_admin_status st = call_worker(d, i, &c, &res);
		if (st != PM_ADMIN_OK)
			return st;
		n = merge_talkers(all, n, (const void *)(a->frames + sizeof(res)), res.n);
	}
	qsort(all, n, sizeof(all[0]), talker_cmp);
	for (uint32_t i = 0; i < n && i < want; i++) {
		char ip[INET_ADDRSTRLEN + 8];
		if (pm_quota_key_user(all[i].addr_be)) /* auth = on: a user (issue 19) */
			snprintf(ip, sizeof(ip), "user_%u", pm_quota_key_user(all[i].addr_be));
		else
			inet_ntop(AF_INET, &all[i].addr_be, ip, sizeof(ip));
		say(a, "# %s\r\nrequests:%llu\r\nbytes:%llu\r\nthrottled:%llu\r\nown_quota:%d\r\n",
		    ip, (unsigned long long)all[i].requests, (unsigned long long)all[i].bytes,
		    (unsigned long long)all[i].throttled, all[i].pinned);
	}
	return PM_ADMIN_OK;
}

/* One replication request to every worker, in shard order: its answers'
 * histories into rep[] and their INFO texts into the reply. */
static enum pm_admin_status repl_all(struct pm_daemon *d, const struct pm_repl_ctl *c,
				     struct pm_repl_ctl_reply *rep, bool text)
{
	struct pm_admin *a = d->admin;
	for (uint32_t i = 0; i < d->nshards; i++) {
		enum pm_admin_status st = post_wait(d, i, PM_MSG_REPL_CTL, (const uint8_t *)c,
						    sizeof(*c));
		if (st != PM_ADMIN_OK)
			return st;
		if (a->frames_len < sizeof(rep[i])) {
			say(a, "worker %u: no replication state\n", i);
			return PM_ADMIN_ERROR;
		}
		memcpy(&rep[i], a->frames, sizeof(rep[i]));
		const char *t = (const char *)a->frames + sizeof(rep[i]);
		int tl = (int)(a->frames_len - sizeof(rep[i]));
		static const char head[] = "# Replication\r\n"; /* the shard's heading replaces it */
		if (tl >= (int)sizeof(head) - 1 && !memcmp(t, head, sizeof(head) - 1))
			t += sizeof(head) - 1, tl -= (int)sizeof(head) - 1;
		if (text)
			say(a, "# Shard %u\r\n%.*s", i, tl, t);
	}
	return PM_ADMIN_OK;
}

static enum pm_admin_status cmd_replication(struct pm_daemon *d, const struct pm_admin_req *r)
{
	struct pm_admin *a = d->admin;
	struct pm_repl_ctl c = { .op = PM_REPL_CTL_STATUS };
	struct pm_repl_ctl_reply rep[PM_SHARDS_MAX];
	static const char *const roles[] = { "primary", "replica", "detached", "fenced" };
	char buf[PM_ADMIN_ARG_BYTES_MAX + 1];
	if (d->cfg.wal == 0) {
		say(a, "replication needs the log (wal = sync or batch)\n");
		return PM_ADMIN_ERROR;
	}
	if (pm_admin_arg_is(r, 1, "FOLLOW") && r->argc == 3) {
		if (pm_hostport_parse(arg(r, 2, buf, sizeof(buf)), &c.primary) != 0) {
			say(a, "FOLLOW host:port: an IPv4 address and the primary's repl_port\n");
			return PM_ADMIN_USAGE;
		}
		c.op = PM_REPL_CTL_FOLLOW;
	} else if (pm_admin_arg_is(r, 1, "STOP") && r->argc == 2) {
		c.op = PM_REPL_CTL_STOP;
	} else if (pm_admin_arg_is(r, 1, "PROMOTE") && r->argc == 2) {
		enum pm_admin_status st = repl_all(d, &c, rep, false); /* the highest epoch known */
		if (st != PM_ADMIN_OK)
			return st;
		for (uint32_t i = 0; i < d->nshards; i++)
			c.epoch = rep[i].epoch > c.epoch ? rep[i].epoch : c.epoch;
		c.epoch++;
		c.repl_id = pm_repl_new_id();
		c.op = PM_REPL_CTL_PROMOTE;
	} else if (!(pm_admin_arg_is(r, 1, "STATUS") && r->argc == 2) && r->argc != 1) {
		say(a, "REPLICATION FOLLOW host:port | STOP | PROMOTE | STATUS\n");
		return PM_ADMIN_USAGE;
	}
	enum pm_repl_role role = c.op == PM_REPL_CTL_FOLLOW    ? PM_ROLE_REPLICA
				 : c.op == PM_REPL_CTL_STOP    ? PM_ROLE_DETACHED
				 : c.op == PM_REPL_CTL_PROMOTE ? PM_ROLE_PRIMARY
							       : pm_repl_node_role(d);
	if (c.op == PM_REPL_CTL_STOP && pm_repl_node_role(d) == PM_ROLE_PRIMARY)
		role = PM_ROLE_PRIMARY; /* a primary stays one: it follows no one to stop */
	if (c.op != PM_REPL_CTL_STATUS && pm_repl_node_save(d, role, &c.primary) != 0)
		say(a, "warning: %s could not be saved: the role holds until a restart\n",
		    "data_dir/replication.state");
	size_t at = a->text_len;
	enum pm_admin_status st = repl_all(d, &c, rep, true); /* each answers with its state */
	if (st == PM_ADMIN_OK) {
		char head[256];
		int n = snprintf(head, sizeof(head), "# Node\r\nrole:%s\r\nrepl_epoch:%llu\r\n"
				 "shards:%u\r\nrepl_refused_connections:%llu\r\n",
				 roles[pm_repl_node_role(d)], (unsigned long long)rep[0].epoch,
				 d->nshards, (unsigned long long)pm_repl_node_refused(d));
		if (n > 0 && a->text_len + (size_t)n < sizeof(a->text)) {
			memmove(a->text + at + n, a->text + at, a->text_len - at);
			memcpy(a->text + at, head, (size_t)n);
			a->text_len += (size_t)n;
		}
	}
	return st;
}

int pm_admin_give_view(struct pm_daemon *d, uint32_t i, const struct pm_cluster_view *v)
{
	struct pm_admin_call c = { .op = PM_CALL_CLUSTER_VIEW, .view = v };
	struct pm_admin_result res;
	return call_worker(d, i, &c, &res) == PM_ADMIN_OK && res.rc == 0 ? 0 : -1;
}

/* CLUSTER EXPORT shard first last cursor|DIRTY, CLUSTER PURGE shard cursor
 * [first last]: one step of moving slots out, or of dropping the copies of
 * slots being moved in (cluster.h); the answer is the worker's bytes as they
 * are (binary: the head, then request frames). */
static enum pm_admin_status cluster_walk(struct pm_daemon *d, const struct pm_admin_req *r)
{
	struct pm_admin *a = d->admin;
	bool purge = pm_admin_arg_is(r, 1, "PURGE");
	char v[4][24];
	unsigned long long x[4] = { 0 };
	uint32_t nums = purge ? r->argc - 2 : 4;
	struct pm_admin_call c = { .op = purge ? PM_CALL_CLUSTER_PURGE : PM_CALL_CLUSTER_EXPORT,
				   .dirty = !purge && pm_admin_arg_is(r, 5, "DIRTY"),
				   .ranged = purge && r->argc == 6 };
	for (uint32_t i = 0; i < nums; i++) {
		char *end;
		if (i == 3 && c.dirty)
			continue;
		x[i] = strtoull(arg(r, 2 + i, v[i], sizeof(v[i])), &end, 10);
		if (!v[i][0] || *end || v[i][0] == '-') {
			say(a, "CLUSTER EXPORT shard first last cursor|DIRTY | CLUSTER PURGE shard"
			       " cursor [first last]\n");
			return PM_ADMIN_USAGE;
		}
	}
	if (c.ranged) { /* PURGE shard cursor first last: in EXPORT's order */
		unsigned long long cur = x[1];
		x[1] = x[2], x[2] = x[3], x[3] = cur;
	}
	uint64_t shard = x[0], cursor = purge && !c.ranged ? x[1] : x[3];
	if (shard >= d->nshards || cursor > UINT32_MAX ||
	    ((!purge || c.ranged) && (x[1] > x[2] || x[2] >= PM_CLUSTER_SLOTS))) {
		say(a, "shard below %u, slots first <= last < %u, a 32-bit cursor\n", d->nshards,
		    PM_CLUSTER_SLOTS);
		return PM_ADMIN_USAGE;
	}
	c.first = (uint16_t)x[1], c.last = (uint16_t)x[2], c.cursor = (uint32_t)cursor;
	struct pm_admin_result res;
	enum pm_admin_status st = call_worker(d, (uint32_t)shard, &c, &res);
	if (st != PM_ADMIN_OK)
		return st;
	if (res.rc != 0) {
		say(a, "%s\n", res.rc == -ENOENT ? "no map yet" : res.rc == -EAGAIN
			? "a deletion was refused (write lease, log): again" : strerror(-res.rc));
		return res.rc == -EAGAIN ? PM_ADMIN_UNAVAILABLE : PM_ADMIN_ERROR;
	}
	if (res.n > sizeof(a->text) || a->frames_len < sizeof(res) + res.n)
		return PM_ADMIN_ERROR;
	memcpy(a->text, a->frames + sizeof(res), res.n);
	a->text_len = res.n;
	return PM_ADMIN_OK;
}

/* CLUSTER LEASE until_ms | MAP self part... | STATUS: what pomai-control
 * tells its pomaid (cluster.h); refused unless cluster = on. */
static enum pm_admin_status cmd_cluster(struct pm_daemon *d, const struct pm_admin_req *r)
{
	struct pm_admin *a = d->admin;
	static const char usage[] = "CLUSTER LEASE until_ms | MAP self part... | STATUS\n";
	char out[512], num[32], self[PM_CLUSTER_NAME_BYTES_MAX + 2];
	int rc;
	if (!d->cluster) {
		say(a, "this pomaid is not in a cluster (cluster = off)\n");
		return PM_ADMIN_USAGE;
	}
	if (pm_admin_arg_is(r, 1, "LEASE") && r->argc == 3) {
		char *end;
		uint64_t until = strtoull(arg(r, 2, num, sizeof(num)), &end, 10);
		if (!num[0] || *end || num[0] == '-') {
			say(a, "LEASE until_ms: CLOCK_BOOTTIME milliseconds (0: fence now)\n");
			return PM_ADMIN_USAGE;
		}
		rc = pm_cluster_lease(d, until, out, sizeof(out));
	} else if (pm_admin_arg_is(r, 1, "MAP") && r->argc >= 4) {
		size_t len = 0;
		for (uint32_t i = 3; i < r->argc; i++)
			len += r->arg[i].len;
		char *text = malloc(len ? len : 1);
		if (!text) {
			say(a, "out of memory\n");
			return PM_ADMIN_ERROR;
		}
		len = 0;
		for (uint32_t i = 3; i < r->argc; i++) {
			memcpy(text + len, r->arg[i].p, r->arg[i].len);
			len += r->arg[i].len;
		}
		rc = pm_cluster_map(d, arg(r, 2, self, sizeof(self)), text, len, out, sizeof(out));
		free(text);
	} else if (pm_admin_arg_is(r, 1, "STATUS") && r->argc == 2) {
		rc = pm_cluster_status(d, out, sizeof(out));
	} else if ((pm_admin_arg_is(r, 1, "EXPORT") && r->argc == 6) ||
		   (pm_admin_arg_is(r, 1, "PURGE") && (r->argc == 4 || r->argc == 6))) {
		return cluster_walk(d, r);
	} else {
		say(a, "%s", usage);
		return PM_ADMIN_USAGE;
	}
	say(a, "%s", out);
	return rc == 0 ? PM_ADMIN_OK : rc == -2 ? PM_ADMIN_UNAVAILABLE : PM_ADMIN_ERROR;
}

/* ---------------------------------------------------------------- users (issue 19) */

/* Hand table t to every worker (PM_CALL_USERS) and make it the daemon's;
 * the old one is freed once every worker answered (a worker that did not
 * may still read it: it is then kept, and the command says so). */
static enum pm_admin_status users_install(struct pm_daemon *d, struct pm_users *t)
{
	struct pm_admin *a = d->admin;
	struct pm_admin_call c = { .op = PM_CALL_USERS, .users = t };
	struct pm_admin_result res;
	struct pm_users *old = d->users;
	bool all = true;
	d->users = t;
	for (uint32_t i = 0; i < d->nshards; i++)
		all &= call_worker(d, i, &c, &res) == PM_ADMIN_OK;
	if (!all) {
		say(a, "a worker did not take the new users table in time; it will at its next"
		       " turn (the old table is kept)\n");
		return PM_ADMIN_UNAVAILABLE;
	}
	free(old);
	return PM_ADMIN_OK;
}

/* Save t as the users file, then install it; t is the daemon's or freed. */
static enum pm_admin_status users_commit(struct pm_daemon *d, struct pm_users *t)
{
	char err[256];
	if (!t) {
		say(d->admin, "out of memory, or %u users already\n", PM_USERS_MAX);
		return PM_ADMIN_ERROR;
	}
	if (pm_users_save(d->data_fd, t, err, sizeof(err)) != 0) {
		free(t);
		say(d->admin, "%s\n", err);
		return PM_ADMIN_ERROR;
	}
	return users_install(d, t);
}

/* A user's rights or one prefix word (GRANT / REVOKE / ADD): into u, added
 * (grant) or taken away; false when the word is none of them. */
static bool user_change(struct pm_user *u, const char *w, bool grant)
{
	uint8_t rights;
	if (pm_rights_parse(w, &rights)) {
		u->rights = grant ? u->rights | rights : u->rights & (uint8_t)~rights;
		return true;
	}
	bool key = !strncmp(w, "key=", 4);
	if (!key && strncmp(w, "coll=", 5))
		return false;
	const char *p = w + (key ? 4 : 5);
	size_t len = strlen(p);
	uint8_t *n = key ? &u->nkey : &u->ncoll;
	struct pm_user_prefix *v = key ? u->key : u->coll;
	if (!pm_user_word_ok(p, len, PM_USER_PREFIX_BYTES_MAX))
		return false;
	uint32_t i = 0;
	while (i < *n && (v[i].len != len || memcmp(v[i].p, p, len)))
		i++;
	if (grant && i == *n) {
		if (*n == PM_USER_PREFIXES_MAX)
			return false;
		v[*n].len = (uint8_t)len;
		memcpy(v[(*n)++].p, p, len);
	} else if (!grant && i < *n) {
		v[i] = v[--(*n)];
	}
	return true;
}

/* USER ADD name rights mac_key_hex [id=N] [key=P]... [coll=P]... */
static enum pm_admin_status user_add(struct pm_daemon *d, const struct pm_admin_req *r)
{
	struct pm_admin *a = d->admin;
	struct pm_user u = { 0 };
	char w[PM_USER_PREFIX_BYTES_MAX + 8];
	arg(r, 2, u.name, sizeof(u.name));
	if (!pm_user_word_ok(u.name, strlen(u.name), PM_USER_NAME_BYTES_MAX) ||
	    !pm_rights_parse(arg(r, 3, w, sizeof(w)), &u.rights) ||
	    pm_auth_unhex(arg(r, 4, w, sizeof(w)), u.mac_key, PM_AUTH_MAC_KEY_BYTES) != 0) {
		say(a, "usage: USER ADD name read,write,admin mac_key_hex [id=N] [key=P]... [coll=P]...\n");
		return PM_ADMIN_USAGE;
	}
	if (pm_users_by_name(d->users, u.name)) {
		say(a, "user %s exists\n", u.name);
		return PM_ADMIN_ERROR;
	}
	u.id = (uint16_t)pm_users_free_id(d->users);
	for (uint32_t i = 5; i < r->argc; i++) {
		char *end;
		arg(r, i, w, sizeof(w));
		unsigned long id = !strncmp(w, "id=", 3) ? strtoul(w + 3, &end, 10) : 0;
		if (!strncmp(w, "id=", 3) && (*end || id == 0 || id > PM_AUTH_USER_ID_MAX ||
					       pm_users_find(d->users, (uint32_t)id))) {
			say(a, "%s: want a free id 1..65535\n", w);
			return PM_ADMIN_USAGE;
		}
		if (id)
			u.id = (uint16_t)id;
		else if (!user_change(&u, w, true)) {
			say(a, "%s: want id=N, key=PREFIX or coll=PREFIX (at most %u of each)\n", w,
			    PM_USER_PREFIXES_MAX);
			return PM_ADMIN_USAGE;
		}
	}
	if (u.id == 0) {
		say(a, "every user id is taken\n");
		return PM_ADMIN_ERROR;
	}
	enum pm_admin_status st = users_commit(d, pm_users_with(d->users, &u));
	if (st == PM_ADMIN_OK)
		say(a, "id:%u\r\n", u.id);
	return st;
}

/* USER GRANT / REVOKE name right|key=P|coll=P ... */
static enum pm_admin_status user_grant(struct pm_daemon *d, const struct pm_admin_req *r,
				       bool grant)
{
	struct pm_admin *a = d->admin;
	char name[PM_USER_NAME_BYTES_MAX + 2], w[PM_USER_PREFIX_BYTES_MAX + 8];
	const struct pm_user *found = pm_users_by_name(d->users, arg(r, 2, name, sizeof(name)));
	if (!found) {
		say(a, "no user %s\n", name);
		return PM_ADMIN_ERROR;
	}
	struct pm_user u = *found;
	for (uint32_t i = 3; i < r->argc; i++)
		if (!user_change(&u, arg(r, i, w, sizeof(w)), grant)) {
			say(a, "%s: want read, write, admin, key=PREFIX or coll=PREFIX (at most %u"
			       " of each)\n", w, PM_USER_PREFIXES_MAX);
			return PM_ADMIN_USAGE;
		}
	enum pm_admin_status st = users_commit(d, pm_users_with(d->users, &u));
	if (st == PM_ADMIN_OK)
		say(a, "OK\n");
	return st;
}

/* USER LIST: a section per user (pomaictl --json makes each an object),
 * without its MAC key; prefixes space-separated (they hold no spaces). */
static enum pm_admin_status user_list(struct pm_daemon *d)
{
	for (uint32_t i = 0; d->users && i < d->users->n; i++) {
		const struct pm_user *u = &d->users->u[i];
		char rights[24];
		pm_rights_format(u->rights, rights, sizeof(rights));
		say(d->admin, "# %s\r\nid:%u\r\nrights:%s\r\nkey_prefixes:", u->name, u->id, rights);
		for (uint32_t k = 0; k < u->nkey; k++)
			say(d->admin, "%s%.*s", k ? " " : "", u->key[k].len, u->key[k].p);
		say(d->admin, "\r\ncoll_prefixes:");
		for (uint32_t k = 0; k < u->ncoll; k++)
			say(d->admin, "%s%.*s", k ? " " : "", u->coll[k].len, u->coll[k].p);
		say(d->admin, "\r\n");
	}
	return PM_ADMIN_OK;
}

/* USER EXPORT: the users file's text, MAC keys included (pomai-control keeps
 * it to push the users to a pomaid that lost them); USER SET line: one user
 * as a line of that file, added or replaced (by name; its id may not be
 * another user's). */
static enum pm_admin_status user_export(struct pm_daemon *d)
{
	size_t cap = 128u + (size_t)d->users->n * PM_USERS_LINE_BYTES;
	char *text = malloc(cap);
	size_t n = text ? pm_users_format(d->users, text, cap) : 0;
	bool fits = n && n < sizeof(d->admin->text) - d->admin->text_len;
	if (fits)
		say(d->admin, "%s", text);
	else
		say(d->admin, "the users file does not fit a reply of %u bytes\n",
		    PM_ADMIN_TEXT_BYTES);
	free(text);
	return fits ? PM_ADMIN_OK : PM_ADMIN_ERROR;
}

static enum pm_admin_status user_set(struct pm_daemon *d, const struct pm_admin_req *r)
{
	struct pm_admin *a = d->admin;
	char line[PM_USERS_LINE_BYTES + 1];
	struct pm_user u;
	const char *why = r->arg[2].len <= PM_USERS_LINE_BYTES
				  ? pm_user_parse((char *)arg(r, 2, line, sizeof(line)), &u)
				  : "too long";
	if (why) {
		say(a, "USER SET: %s\n", why);
		return PM_ADMIN_USAGE;
	}
	const struct pm_user *same = pm_users_by_name(d->users, u.name),
			     *at = pm_users_find(d->users, u.id);
	if (at && (!same || same->id != u.id)) {
		say(a, "id %u is user %s's\n", u.id, at->name);
		return PM_ADMIN_ERROR;
	}
	struct pm_users *t = same && same->id != u.id ? pm_users_without(d->users, same->id)
							: NULL;
	enum pm_admin_status st = users_commit(d, pm_users_with(t ? t : d->users, &u));
	free(t);
	if (st == PM_ADMIN_OK)
		say(a, "OK\n");
	return st;
}

static enum pm_admin_status cmd_user(struct pm_daemon *d, const struct pm_admin_req *r)
{
	struct pm_admin *a = d->admin;
	char name[PM_USER_NAME_BYTES_MAX + 2], err[256];
	if (pm_admin_arg_is(r, 1, "LIST") && r->argc == 2)
		return user_list(d);
	if (pm_admin_arg_is(r, 1, "EXPORT") && r->argc == 2)
		return user_export(d);
	if (pm_admin_arg_is(r, 1, "SET") && r->argc == 3)
		return user_set(d, r);
	if (pm_admin_arg_is(r, 1, "ADD") && r->argc >= 5)
		return user_add(d, r);
	if ((pm_admin_arg_is(r, 1, "GRANT") || pm_admin_arg_is(r, 1, "REVOKE")) && r->argc >= 4)
		return user_grant(d, r, pm_admin_arg_is(r, 1, "GRANT"));
	if (pm_admin_arg_is(r, 1, "DEL") && r->argc == 3) {
		const struct pm_user *u = pm_users_by_name(d->users, arg(r, 2, name, sizeof(name)));
		if (!u) {
			say(a, "no user %s\n", name);
			return PM_ADMIN_ERROR;
		}
		enum pm_admin_status st = users_commit(d, pm_users_without(d->users, u->id));
		if (st == PM_ADMIN_OK)
			say(a, "OK\n");
		return st;
	}
	if (pm_admin_arg_is(r, 1, "RELOAD") && r->argc == 2) {
		struct pm_users *t;
		if (pm_users_load(d->data_fd, &t, err, sizeof(err)) != 0) {
			say(a, "%s (the users in use are unchanged)\n", err);
			return PM_ADMIN_ERROR;
		}
		enum pm_admin_status st = users_install(d, t);
		if (st == PM_ADMIN_OK)
			say(a, "users:%u\r\n", t->n);
		return st;
	}
	say(a, "usage: USER LIST | ADD name rights mac_key_hex [id=N] [key=P]... [coll=P]... |"
	       " DEL name | GRANT name what... | REVOKE name what... | RELOAD | EXPORT |"
	       " SET 'line of the users file'\n");
	return PM_ADMIN_USAGE;
}

static const struct {
	const char *name;
	admin_fn fn;
	const char *help;
} commands[] = {
	{ "PING", cmd_ping, "PING" },
	{ "INFO", cmd_info, "INFO [section]" },
	{ "SNAPSHOT", cmd_snapshot, "SNAPSHOT [now|status]" },
	{ "SHARDS", cmd_shards, "SHARDS" },
	{ "CONFIG", cmd_config, "CONFIG GET key | CONFIG SET key value" },
	{ "COLLECTION", cmd_collection, "COLLECTION LIST | CREATE name dim=D ... | DROP name" },
	{ "QUOTA", cmd_quota, "QUOTA SET addr rps bps | GET addr | LIST | DEL addr" },
	{ "CLIENTS", cmd_clients, "CLIENTS [n]" },
	{ "REPLICATION", cmd_replication, "REPLICATION FOLLOW host:port | STOP | PROMOTE | STATUS" },
	{ "CLUSTER", cmd_cluster, "CLUSTER LEASE until_ms | MAP self part... | STATUS" },
	{ "USER", cmd_user, "USER LIST | ADD name rights mac_key [id=N] [key=P] [coll=P] | DEL name |"
			    " GRANT name what | REVOKE name what | RELOAD" },
	{ "SHUTDOWN", cmd_shutdown, "SHUTDOWN" },
};

static enum pm_admin_status dispatch(struct pm_daemon *d, const struct pm_admin_req *r)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (pm_admin_arg_is(r, 0, commands[i].name))
			return commands[i].fn(d, r);
	say(d->admin, "unknown command; commands:");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		say(d->admin, "%s %s", i ? "," : "", commands[i].help);
	say(d->admin, "\n");
	return PM_ADMIN_USAGE;
}

/* ---------------------------------------------------------------- connections */

/* Serve the complete request in c; false when the connection must go. */
static bool serve_request(struct pm_daemon *d, struct admin_conn *c, uint32_t len)
{
	struct pm_admin *a = d->admin;
	struct pm_admin_req r;
	enum pm_admin_status st;
	a->text_len = 0;
	a->text[0] = '\0';
	struct pm_stats_global *g = d->stats_base ? pm_stats_global_at(d->stats_base) : NULL;
	if (pm_admin_req_decode(c->buf + PM_ADMIN_LEN_BYTES, len, &r) != 0) {
		say(a, "malformed request\n");
		st = PM_ADMIN_USAGE;
	} else {
		st = dispatch(d, &r);
	}
	if (g) { /* only this thread writes the global block */
		pm_stats_begin(&g->seq);
		g->admin_commands++;
		g->admin_errors += st != PM_ADMIN_OK;
		pm_stats_end(&g->seq);
	}
	size_t n = pm_admin_reply_encode((uint8_t)st, a->text, a->text_len, a->out, sizeof(a->out));
	c->len = 0;
	return n && pm_admin_send_all(c->fd, a->out, n, (int)PM_ADMIN_REPLY_MS);
}

/* Read what is there; serve a request once it is whole. False: close it. */
static bool serve_conn(struct pm_daemon *d, struct admin_conn *c)
{
	uint32_t len;
	int rc = pm_admin_read_request(c->fd, c->buf, &c->len, &len);
	return rc == 0 || (rc > 0 && serve_request(d, c, len));
}

static void accept_conns(struct pm_daemon *d)
{
	struct pm_admin *a = d->admin;
	int fd;
	while ((fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		uint32_t i = 0;
		while (i < PM_ADMIN_CONNS_MAX && a->conns[i].fd >= 0)
			i++;
		if (i == PM_ADMIN_CONNS_MAX) {
			close(fd); /* full: the client sees the connection closed */
			continue;
		}
		a->conns[i].fd = fd;
		a->conns[i].len = 0;
		if (d->stats_base) {
			struct pm_stats_global *g = pm_stats_global_at(d->stats_base);
			pm_stats_begin(&g->seq);
			g->admin_connections++;
			pm_stats_end(&g->seq);
		}
	}
}

void pm_admin_run(struct pm_daemon *d)
{
	struct pm_admin *a = d->admin;
	struct pollfd pf[PM_ADMIN_CONNS_MAX + 2 + PM_REPL_PENDING_MAX];
	while (!atomic_load(&d->quit)) {
		uint32_t n = 0, idx[PM_ADMIN_CONNS_MAX];
		pf[n++] = (struct pollfd){ .fd = a->lfd, .events = POLLIN };
		for (uint32_t i = 0; i < PM_ADMIN_CONNS_MAX; i++)
			if (a->conns[i].fd >= 0) {
				idx[n - 1] = i;
				pf[n++] = (struct pollfd){ .fd = a->conns[i].fd, .events = POLLIN };
			}
		/* the replication listener and the connections owing a HELLO */
		uint32_t nrepl = pm_repl_admin_fds(d, pf + n);
		int ready = poll(pf, n + nrepl, PM_ADMIN_POLL_MS);
		pm_repl_admin_serve(d, pf + n, nrepl); /* also when idle: HELLO deadlines */
		if (ready <= 0)
			continue;
		for (uint32_t k = 1; k < n; k++) { /* first: a closed one frees its slot */
			struct admin_conn *c = &a->conns[idx[k - 1]];
			if (pf[k].revents && !serve_conn(d, c)) {
				close(c->fd);
				c->fd = -1;
			}
		}
		if (pf[0].revents)
			accept_conns(d);
		collect(d, 0); /* late replies of calls that timed out */
	}
}
