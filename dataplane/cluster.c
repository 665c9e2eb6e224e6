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
	uint64_t until = atomic_load_explicit(&w->d->cluster->lease_until_ms, memory_order_acquire);
	w->lease_ok = until && pm_cluster_now_ms() < until;
}

/* The keyed operations a slot's owner serves. */
static bool keyed(uint8_t op)
{
	return op == PM_OP_SET || op == PM_OP_GET || op == PM_OP_DEL || op == PM_OP_VADD ||
	       op == PM_OP_VGET || op == PM_OP_VDEL;
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
