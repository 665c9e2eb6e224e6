/* SPDX-License-Identifier: MIT
 *
 * cluster.c — pomaid's side of the cluster (cluster.h says what it does).
 */
#define _GNU_SOURCE
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "bridge.h"
#include "datadir.h"
#include "route.h"
#include "common.h"
#include "scan.h"
#include "wal_io.h"
#include "worker.h"

uint64_t pm_cluster_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---------------------------------------------------------------- views */

/* A view of the document for node self; NULL with err. */
static struct pm_cluster_view *view_build(const char *self, const char *text, size_t len,
					  char *err, size_t errlen)
{
	struct pm_cluster_view *v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory for a map view");
		return NULL;
	}
	if (len > sizeof(v->text)) {
		snprintf(err, errlen, "the map is %zu bytes, above %u", len,
			 PM_CLUSTER_MAP_TEXT_BYTES_MAX);
		free(v);
		return NULL;
	}
	if (pm_cmap_parse(text, len, &v->map, err, errlen) != 0) {
		free(v);
		return NULL;
	}
	memcpy(v->text, text, len);
	v->text_len = len;
	v->self = pm_cmap_node_index(&v->map, self);
	v->set = v->self == PM_CMAP_NONE ? PM_CMAP_NONE : v->map.nodes[v->self].set;
	for (uint32_t s = 0; s < PM_CLUSTER_SLOTS; s++)
		v->slots_owned += v->set != PM_CMAP_NONE && v->map.slot_set[s] == v->set;
	for (uint16_t i = 0; i < v->map.nsets; i++) {
		uint16_t p = v->map.sets[i].primary;
		if (p == PM_CMAP_NONE)
			continue;
		const struct pm_cmap_node *n = &v->map.nodes[p];
		v->primary[i] = (struct pm_wire_primary){ .addr_be = n->addr_be,
							  .udp_port = n->udp_port,
							  .tcp_port = n->tcp_port };
	}
	v->wire_len = (uint32_t)pm_cmap_encode(&v->map, v->self, v->wire, sizeof(v->wire));
	if (!v->wire_len) {
		snprintf(err, errlen, "the map's wire form does not fit %u bytes",
			 PM_CMAP_WIRE_BYTES_MAX);
		free(v);
		return NULL;
	}
	return v;
}

/* data_dir/cluster.map: "self <name>\n", then the document. */
static int view_save(struct pm_daemon *d, const struct pm_cluster_view *v, const char *self)
{
	size_t head = strlen(self) + 6, n = head + v->text_len;
	char *buf = malloc(n + 1);
	if (!buf)
		return -1;
	snprintf(buf, head + 1, "self %s\n", self);
	memcpy(buf + head, v->text, v->text_len);
	int rc = pm_datadir_replace(d->data_fd, PM_CLUSTER_MAP_FILE, buf, n);
	free(buf);
	return rc;
}

static struct pm_cluster_view *view_load(struct pm_daemon *d, char *self, char *err,
					 size_t errlen)
{
	int fd = pm_datadir_openat(d->data_fd, PM_CLUSTER_MAP_FILE, O_RDONLY, 0);
	if (fd < 0) {
		err[0] = '\0';
		return NULL; /* none yet: the first map comes from pomai-control */
	}
	size_t cap = PM_CLUSTER_MAP_TEXT_BYTES_MAX + PM_CLUSTER_NAME_BYTES_MAX + 8, n = 0;
	char *buf = malloc(cap + 1);
	ssize_t got = 0;
	while (buf && n < cap && (got = read(fd, buf + n, cap - n)) > 0)
		n += (size_t)got;
	close(fd);
	struct pm_cluster_view *v = NULL;
	char *nl = buf && got >= 0 ? memchr(buf, '\n', n) : NULL;
	if (!nl || strncmp(buf, "self ", 5) || (size_t)(nl - buf - 5) > PM_CLUSTER_NAME_BYTES_MAX) {
		snprintf(err, errlen, "%s: unreadable (remove it: pomai-control sends the map again)",
			 PM_CLUSTER_MAP_FILE);
	} else {
		memcpy(self, buf + 5, (size_t)(nl - buf - 5));
		self[nl - buf - 5] = '\0';
		char why[256];
		v = view_build(self, nl + 1, n - (size_t)(nl + 1 - buf), why, sizeof(why));
		if (!v)
			snprintf(err, errlen, "%s: %s (remove it: pomai-control sends the map again)",
				 PM_CLUSTER_MAP_FILE, why);
	}
	free(buf);
	return v;
}

int pm_cluster_open(struct pm_daemon *d, char *err, size_t errlen)
{
	const struct pm_config *cfg = &d->cfg;
	if (!cfg->cluster)
		return 0;
	if (cfg->wal == PM_WAL_NONE || !cfg->repl_port || cfg->replica_of[0])
		return pm_errf(err, errlen, "cluster = on needs the log (wal = sync or batch), a"
			       " repl_port, and no replica_of (pomai-control chooses whom a node"
			       " follows)");
	struct pm_cluster *c = d->cluster = calloc(1, sizeof(*c));
	if (!c)
		return pm_errf(err, errlen, "out of memory");
	for (uint32_t i = 0; i < d->nshards; i++) {
		struct pm_cluster_dirty *y = d->workers[i].dirty = calloc(1, sizeof(*y));
		if (!y || !(y->buf = malloc(PM_CLUSTER_DIRTY_BYTES)) ||
		    !(y->gone = malloc(PM_CLUSTER_PURGE_KEYS * sizeof(*y->gone))))
			return pm_errf(err, errlen, "out of memory for the changed-keys lists");
	}
	char why[512];
	c->view = view_load(d, c->self, why, sizeof(why));
	if (!c->view && why[0])
		return pm_errf(err, errlen, "%s", why);
	for (uint32_t i = 0; i < d->nshards; i++)
		d->workers[i].cview = c->view;
	if (c->view)
		printf("pomaid: cluster: map epoch %" PRIu64 " from %s, node %s, %u slots\n",
		       c->view->map.epoch, PM_CLUSTER_MAP_FILE, c->self, c->view->slots_owned);
	else
		printf("pomaid: cluster: no map yet; writes wait for a write lease\n");
	return 0;
}

void pm_cluster_close(struct pm_daemon *d)
{
	if (!d->cluster)
		return;
	for (uint32_t i = 0; i < d->nshards; i++) {
		if (d->workers[i].dirty) {
			free(d->workers[i].dirty->buf);
			free(d->workers[i].dirty->gone);
		}
		free(d->workers[i].dirty);
		d->workers[i].dirty = NULL;
	}
	free(d->cluster->view);
	free(d->cluster);
	d->cluster = NULL;
}

/* ---------------------------------------------------------------- admin */

int pm_cluster_lease(struct pm_daemon *d, uint64_t until_ms, char *out, size_t cap)
{
	struct pm_cluster *c = d->cluster;
	uint64_t now = pm_cluster_now_ms();
	if (until_ms > now + PM_CLUSTER_LEASE_MS_MAX) {
		snprintf(out, cap, "a lease until %" PRIu64 " is more than %u ms from now (%" PRIu64
			 ")\n", until_ms, PM_CLUSTER_LEASE_MS_MAX, now);
		return -1;
	}
	atomic_store_explicit(&c->lease_until_ms, until_ms, memory_order_release);
	snprintf(out, cap, "write_lease_ms:%" PRIu64 "\r\n", until_ms > now ? until_ms - now : 0);
	return 0;
}

int pm_cluster_status(struct pm_daemon *d, char *out, size_t cap)
{
	struct pm_cluster *c = d->cluster;
	const struct pm_cluster_view *v = c->view;
	uint64_t now = pm_cluster_now_ms(), until = atomic_load(&c->lease_until_ms), moved = 0;
	for (uint32_t i = 0; i < d->nshards; i++)
		moved += atomic_load_explicit(&d->workers[i].moved, memory_order_relaxed);
	snprintf(out, cap,
		 "# Cluster\r\ncluster:on\r\nmap_epoch:%" PRIu64 "\r\nnode:%s\r\nset:%s\r\n"
		 "slots_owned:%u\r\nwrite_lease_ms:%" PRIu64 "\r\nmoved_replies:%" PRIu64 "\r\n",
		 v ? v->map.epoch : 0, c->self[0] ? c->self : "-",
		 v && v->set != PM_CMAP_NONE ? v->map.sets[v->set].name : "-",
		 v ? v->slots_owned : 0, until > now ? until - now : 0, moved);
	return 0;
}

/* Give v to every worker (between two of its turns), then free the view they
 * used. */
static int view_publish(struct pm_daemon *d, struct pm_cluster_view *v, char *out, size_t cap)
{
	for (uint32_t i = 0; i < d->nshards; i++)
		if (pm_admin_give_view(d, i, v) != 0) {
			/* the message may still reach that worker: neither view can be
			 * freed now; the old one is kept for good (logged) */
			fprintf(stderr, "pomaid: cluster: worker %u did not take map epoch %" PRIu64
				" in time; the previous view is kept\n", i, v->map.epoch);
			d->cluster->view = v;
			snprintf(out, cap, "worker %u did not answer in time\n", i);
			return -2;
		}
	free(d->cluster->view);
	d->cluster->view = v;
	return 0;
}

int pm_cluster_map(struct pm_daemon *d, const char *self, const char *text, size_t len,
		   char *out, size_t cap)
{
	struct pm_cluster *c = d->cluster;
	char why[256];
	if (!pm_cmap_name_ok(self, strlen(self))) {
		snprintf(out, cap, "%s: not a node name ([a-z0-9_-], 1 to %u bytes)\n", self,
			 PM_CLUSTER_NAME_BYTES_MAX);
		return -1;
	}
	struct pm_cluster_view *v = view_build(self, text, len, why, sizeof(why));
	if (!v) {
		snprintf(out, cap, "%s\n", why);
		return -1;
	}
	const struct pm_cluster_view *old = c->view;
	bool same_self = !strcmp(self, c->self);
	if (old && v->map.epoch < old->map.epoch) {
		snprintf(out, cap, "map epoch %" PRIu64 " < %" PRIu64 " held\n", v->map.epoch,
			 old->map.epoch);
		free(v);
		return -1;
	}
	/* an equal epoch with other content is another map, whatever node it names */
	if (old && v->map.epoch == old->map.epoch &&
	    (v->text_len != old->text_len || memcmp(v->text, old->text, v->text_len))) {
		snprintf(out, cap, "map epoch %" PRIu64 " held with other content\n", v->map.epoch);
		free(v);
		return -1;
	}
	if (old && v->map.epoch == old->map.epoch && same_self) {
		free(v); /* the same map again: nothing to do */
	} else {
		if (view_save(d, v, self) != 0)
			fprintf(stderr, "pomaid: cluster: %s could not be written: map epoch %" PRIu64
				" holds until a restart\n", PM_CLUSTER_MAP_FILE, v->map.epoch);
		snprintf(c->self, sizeof(c->self), "%s", self);
		int rc = view_publish(d, v, out, cap);
		if (rc != 0)
			return rc;
	}
	v = c->view;
	snprintf(out, cap, "map_epoch:%" PRIu64 "\r\nset:%s\r\nslots_owned:%u\r\n", v->map.epoch,
		 v->set != PM_CMAP_NONE ? v->map.sets[v->set].name : "-", v->slots_owned);
	return 0;
}

/* ---------------------------------------------------------------- workers */

void pm_cluster_turn(struct pm_worker *w)
{
	w->boot_ms = pm_cluster_now_ms();
}

/* The deadline as the admin thread holds it now (not at the turn's start:
 * a turn that began before CLUSTER LEASE answered may serve a write sent
 * after it); the clock as the turn began, so the lease may hold up to one
 * turn past its deadline, never less than given. */
bool pm_cluster_may_write(const struct pm_worker *w)
{
	uint64_t until = atomic_load_explicit(&w->d->cluster->lease_until_ms, memory_order_acquire);
	return until && w->boot_ms < until;
}

/* The keyed operations a slot's owner serves. */
static bool keyed(uint8_t op)
{
	return op == PM_OP_SET || op == PM_OP_GET || op == PM_OP_DEL || op == PM_OP_VADD ||
	       op == PM_OP_VGET || op == PM_OP_VDEL || op == PM_OP_VSETATTR;
}

bool pm_cluster_moved(struct pm_worker *w, const struct pm_request *req, uint64_t hash,
		      const struct pm_dest *from)
{
	const struct pm_cluster_view *v = w->cview;
	if (!v || !keyed(req->op))
		return false;
	uint16_t slot = pm_slot_of(hash), owner = v->map.slot_set[slot];
	if (owner == v->set)
		return false;
	for (uint16_t i = 0; i < v->map.nmoves; i++)
		if (v->map.moves[i].to == v->set && v->map.moves[i].first <= slot &&
		    slot <= v->map.moves[i].last)
			return false; /* coming here: the copier writes them */
	struct pm_wire_reply rep = { .status = PM_WIRE_E_MOVED, .op = req->op, .id = req->id,
				     .map_epoch = v->map.epoch, .slot = slot,
				     .primary = v->primary[owner] };
	uint8_t frame[PM_FRAME_HEADER_BYTES + 64];
	size_t n = pm_wire_reply_encode(&rep, NULL, frame, sizeof(frame));
	if (n)
		pm_deliver_frames(w, from, frame, (uint32_t)n);
	atomic_store_explicit(&w->moved, atomic_load_explicit(&w->moved, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	return true;
}

void pm_cluster_serve_map(struct pm_worker *w, const struct pm_request *req,
			  const struct pm_dest *from)
{
	const struct pm_cluster_view *v = w->cview;
	struct pm_reply rep = { .status = v ? PM_OK : PM_NOT_FOUND, .op = req->op, .id = req->id };
	if (v)
		rep.value = (struct pm_bytes){ v->wire, v->wire_len };
	pm_send_reply(w, from, &rep);
}

/* ---------------------------------------------------------------- moving slots */

/* The move out of this node's set that covers slot, or NULL. */
static const struct pm_cmap_move *move_out(const struct pm_cluster_view *v, uint16_t slot)
{
	for (uint16_t i = 0; i < v->map.nmoves; i++) {
		const struct pm_cmap_move *m = &v->map.moves[i];
		if (m->from == v->set && m->first <= slot && slot <= m->last)
			return m;
	}
	return NULL;
}

/* The keyed operations that change a key: what a move must copy again, and
 * what its freeze refuses. Reads are served throughout (noting them would
 * only copy keys again, and refusing them would stop reads in a freeze). */
static bool changes_key(uint8_t op)
{
	return op == PM_OP_SET || op == PM_OP_DEL || op == PM_OP_VADD || op == PM_OP_VDEL ||
	       op == PM_OP_VSETATTR;
}

enum pm_status pm_cluster_admit(struct pm_worker *w, const struct pm_request *req)
{
	if (!changes_key(req->op))
		return PM_OK;
	const struct pm_cmap_move *m =
		move_out(w->cview, pm_slot_of(pm_route_hash(req->key.ptr, req->key.len)));
	if (!m)
		return PM_OK;
	if (m->state == PM_CMAP_MOVE_FREEZE)
		return PM_E_BUSY; /* its last changes are being copied: retry */
	struct pm_cluster_dirty *y = w->dirty;
	if (y->len + 2u + req->key.len > PM_CLUSTER_DIRTY_BYTES)
		return PM_E_BUSY; /* until the copier takes the list: a change let through
				   * unnoted (a deletion above all: a walk copies only
				   * the keys there are) would never reach the target */
	y->buf[y->len] = (uint8_t)req->key.len;
	y->buf[y->len + 1] = (uint8_t)(req->key.len >> 8);
	memcpy(y->buf + y->len + 2, req->key.ptr, req->key.len);
	y->len += 2u + req->key.len;
	return PM_OK;
}

bool pm_cluster_owns(const struct pm_worker *w, const uint8_t *key, uint32_t klen)
{
	const struct pm_cluster_view *v = w->cview;
	return !v || v->map.slot_set[pm_slot_of(pm_route_hash(key, klen))] == v->set;
}

/* An export's answer being built: the frames after the head. */
struct exp {
	struct pm_worker *w;
	uint16_t first, last;
	uint8_t *out;
	uint32_t cap, len, keys;
};

static bool frame_put(struct exp *e, const struct pm_request *req)
{
	size_t n = pm_request_encode(req, e->out + e->len, e->cap - e->len);
	if (!n)
		return false;
	e->len += (uint32_t)n;
	return true;
}

/* The request that makes a key on the target what it is here. */
static bool item_frame(struct exp *e, const struct pm_scan_item *it)
{
	uint64_t now = e->w->now_ms;
	struct pm_request req = { .op = it->vector ? PM_OP_VADD : PM_OP_SET, .key = it->key };
	if (it->expire_at_ms) {
		if (it->expire_at_ms <= now)
			return true;
		req.ttl_ms = it->expire_at_ms - now, req.has_ttl = true;
	}
	if (it->vector) {
		req.vec = (const uint8_t *)it->vec;
		req.dim = it->dim;
		req.collection = it->collection;
		req.attr = it->attr; /* a moved vector keeps its attributes */
		req.has_attr = it->attr.len != 0;
	} else {
		req.value = it->value;
	}
	if (!frame_put(e, &req))
		return false;
	e->keys++;
	return true;
}

static bool in_slots(const struct exp *e, uint64_t hash)
{
	uint16_t slot = pm_slot_of(hash);
	return e->first <= slot && slot <= e->last;
}

static bool export_one(void *ctx, const struct pm_scan_item *it)
{
	struct exp *e = ctx;
	return !in_slots(e, it->hash) || item_frame(e, it);
}

/* Purge: a key this node's set does not own (nor receives) — or, ranged, a
 * key of slots first..last that it receives in a move (never one it owns) —
 * noted for deletion after the walk step (a walk only reads). */
struct purge {
	const struct pm_cluster_view *v;
	struct pm_cluster_gone *gone; /* PM_CLUSTER_PURGE_KEYS */
	uint32_t n;
	bool ranged;
	uint16_t first, last;
};

static bool purge_one(void *ctx, const struct pm_scan_item *it)
{
	struct purge *g = ctx;
	const struct pm_cluster_view *v = g->v;
	uint16_t slot = pm_slot_of(it->hash);
	bool incoming = false;
	if (v->map.slot_set[slot] == v->set)
		return true;
	for (uint16_t i = 0; i < v->map.nmoves; i++)
		if (v->map.moves[i].to == v->set && v->map.moves[i].first <= slot &&
		    slot <= v->map.moves[i].last)
			incoming = true;
	if (incoming != g->ranged || (g->ranged && (slot < g->first || slot > g->last)))
		return true;
	if (g->n == PM_CLUSTER_PURGE_KEYS)
		return false; /* the rest at the next call */
	struct pm_cluster_gone *k = &g->gone[g->n++];
	k->vector = it->vector;
	k->klen = (uint16_t)it->key.len;
	memcpy(k->key, it->key.ptr, it->key.len);
	return true;
}

static uint32_t purge(struct pm_worker *w, const struct pm_admin_call *c, uint32_t *cursor,
		      uint32_t *flags, int32_t *rc)
{
	struct purge g = { .v = w->cview, .gone = w->dirty->gone, .ranged = c->ranged,
			   .first = c->first, .last = c->last };
	uint32_t from = *cursor;
	if (pm_shard_scan(&w->shard, cursor, PM_CLUSTER_EXPORT_SEEDS, w->now_ms, purge_one, &g))
		*flags |= PM_CLUSTER_EXPORT_DONE;
	for (uint32_t i = 0; i < g.n; i++) {
		struct pm_request req = { .op = g.gone[i].vector ? PM_OP_VDEL : PM_OP_DEL,
					  .key = { g.gone[i].key, g.gone[i].klen } };
		struct pm_reply rep;
		pm_apply_logged(w, &req, &rep); /* logged: the replicas purge too */
		if (rep.status != PM_OK && rep.status != PM_NOT_FOUND) {
			*rc = -EAGAIN; /* no write lease, the log refused: this step again */
			*cursor = from;
			*flags = 0;
			return 0;
		}
	}
	return g.n;
}

/* The changed keys noted, as frames: each as it is now, or its deletion. */
static uint32_t export_dirty(struct exp *e, uint32_t *flags)
{
	struct pm_cluster_dirty *y = e->w->dirty;
	uint32_t at = 0;
	while (at < y->len) {
		uint32_t klen = y->buf[at] | (uint32_t)y->buf[at + 1] << 8;
		struct pm_bytes key = { y->buf + at + 2, klen };
		struct pm_scan_item it;
		uint32_t len0 = e->len, keys0 = e->keys;
		bool ok;
		if (pm_shard_lookup(&e->w->shard, key.ptr, klen, e->w->now_ms, &it)) {
			ok = item_frame(e, &it);
		} else {
			struct pm_request del = { .op = PM_OP_DEL, .key = key };
			struct pm_request vdel = { .op = PM_OP_VDEL, .key = key };
			ok = frame_put(e, &del) && frame_put(e, &vdel);
			e->keys++;
		}
		if (!ok) { /* full: this key and those after it wait for the next call */
			e->len = len0, e->keys = keys0;
			break;
		}
		at += 2u + klen;
	}
	memmove(y->buf, y->buf + at, y->len - at);
	y->len -= at;
	if (y->len == 0)
		*flags |= PM_CLUSTER_EXPORT_DONE;
	return 0;
}

uint32_t pm_cluster_call(struct pm_worker *w, const struct pm_admin_call *c, uint8_t *out,
			 uint32_t cap, int32_t *rc)
{
	if (!w->cview || cap < PM_CLUSTER_EXPORT_HEAD_BYTES) {
		*rc = -ENOENT; /* no map yet */
		return 0;
	}
	uint32_t cursor = c->cursor, flags = 0;
	struct exp e = { .w = w, .first = c->first, .last = c->last,
			 .out = out + PM_CLUSTER_EXPORT_HEAD_BYTES,
			 .cap = PM_MIN(cap, PM_CLUSTER_EXPORT_BYTES) - PM_CLUSTER_EXPORT_HEAD_BYTES };
	*rc = 0;
	if (c->op == PM_CALL_CLUSTER_PURGE) {
		e.keys = purge(w, c, &cursor, &flags, rc);
	} else if (c->dirty) {
		export_dirty(&e, &flags);
	} else if (pm_shard_scan(&w->shard, &cursor, PM_CLUSTER_EXPORT_SEEDS, w->now_ms, export_one,
				 &e)) {
		flags |= PM_CLUSTER_EXPORT_DONE;
	}
	uint32_t head[3] = { cursor, flags, e.keys };
	memcpy(out, head, sizeof(head));
	return PM_CLUSTER_EXPORT_HEAD_BYTES + e.len;
}
