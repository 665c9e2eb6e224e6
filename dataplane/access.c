/* SPDX-License-Identifier: MIT
 *
 * access.c — the worker's side of access control and quotas (quota.h has the
 * rules): the per-worker client table and its API for the control plane, the
 * admission of each request frame (THROTTLED replies with their retry hint),
 * the per-collection byte cap checked before a VADD is applied, the KNN work
 * charged to each client after its queries ran, and the INFO lines an
 * operator watches. The allowlist itself is checked by the backends
 * as soon as a source is known (udp.c, tcp.c, dpdk_io.c).
 *
 * Everything here runs on the worker's own thread and touches only that
 * worker's table: no locks, no shared counters. The control plane will reach
 * pm_quota_set / _del / _list / _top through the worker's ring (a later
 * issue); they are plain functions so that tests can call them directly.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "access.h"
#include "bridge.h"
#include "common.h"
#include "dpdk.h"
#include "hnsw.h"
#include "users.h"
#include "vector.h"
#include "worker.h"

/* ---------------------------------------------------------------- own sources */

static void self_add(struct pm_self *s, uint32_t addr_be)
{
	for (uint32_t i = 0; i < s->naddrs; i++)
		if (s->addr_be[i] == addr_be)
			return;
	if (s->naddrs == PM_SELF_ADDRS_MAX)
		s->any_addr = true; /* too many to list: the port alone decides */
	else
		s->addr_be[s->naddrs++] = addr_be;
}

/* Every IPv4 address of the host's interfaces (a wildcard bind sends from any). */
static int self_add_local(struct pm_self *s, char *err, size_t errlen)
{
	struct ifaddrs *ifs;
	if (getifaddrs(&ifs) != 0) {
		snprintf(err, errlen, "listing the local addresses: %s", strerror(errno));
		return -1;
	}
	for (const struct ifaddrs *i = ifs; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
			self_add(s, ((const struct sockaddr_in *)(const void *)i->ifa_addr)
					    ->sin_addr.s_addr);
	freeifaddrs(ifs);
	return 0;
}

int pm_self_init(struct pm_daemon *d, char *err, size_t errlen)
{
	struct pm_self *s = &d->self;
	*s = (struct pm_self){ .port_lo = (uint16_t)d->cfg.base_port,
			       .port_hi = (uint16_t)(d->cfg.base_port + d->nshards - 1) };
	if (d->dpdk) {
		s->naddrs = pm_dpdk_local_addrs(d, s->addr_be, PM_SELF_ADDRS_MAX);
		return 0;
	}
	struct in_addr a;
	if (inet_pton(AF_INET, d->cfg.bind, &a) != 1) {
		snprintf(err, errlen, "bind %s: not an IPv4 address", d->cfg.bind);
		return -1;
	}
	if (a.s_addr != htonl(INADDR_ANY)) {
		self_add(s, a.s_addr);
		return 0;
	}
	return self_add_local(s, err, errlen);
}

bool pm_from_self(const struct pm_daemon *d, const struct sockaddr_in *from)
{
	const struct pm_self *s = &d->self;
	uint16_t port = ntohs(from->sin_port);
	if (port < s->port_lo || port > s->port_hi)
		return false;
	if (s->any_addr)
		return true;
	for (uint32_t i = 0; i < s->naddrs; i++)
		if (s->addr_be[i] == from->sin_addr.s_addr)
			return true;
	return false;
}

/* ---------------------------------------------------------------- quotas */

/* Bytes of a THROTTLED reply frame: header, sub-op, retry hint. */
#define THROTTLED_FRAME_BYTES (PM_FRAME_HEADER_BYTES + 1u + 4u)

int pm_access_alloc(struct pm_worker *w)
{
	const struct pm_config *cfg = &w->d->cfg;
	struct pm_quota_limits def = { cfg->quota_requests_per_s, cfg->quota_bytes_per_s };
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull + w->id;
	w->quota = malloc(sizeof(*w->quota));
	w->quota_shared = malloc(sizeof(*w->quota_shared));
	if (!w->quota || !w->quota_shared)
		return -ENOMEM;
	pm_qtable_init(w->quota, &def, cfg->quota_burst_ms, w->d->nshards, seed);
	pm_qtable_set_work(w->quota, cfg->quota_work_bytes_per_s);
	pm_qshared_init(w->quota_shared, &def, cfg->quota_unvalidated_prefix_requests_per_s,
			cfg->quota_unvalidated_requests_per_s, cfg->quota_burst_ms, w->d->nshards,
			seed ^ 0x5bd1e9955bd1e995ull, w->now_ns);
	pm_qtable_set_work(&w->quota_shared->prefixes, cfg->quota_work_bytes_per_s);
	return 0;
}

void pm_access_free(struct pm_worker *w)
{
	free(w->quota);
	free(w->quota_shared);
	w->quota = NULL;
	w->quota_shared = NULL;
}

/* ---------------------------------------------------------------- the control plane's API */

int pm_quota_set(struct pm_worker *w, uint32_t addr_be, uint64_t requests_per_s,
		 uint64_t bytes_per_s)
{
	struct pm_quota_limits lim = { requests_per_s, bytes_per_s };
	return pm_qtable_set(w->quota, addr_be, &lim, w->now_ns);
}

int pm_quota_del(struct pm_worker *w, uint32_t addr_be)
{
	return pm_qtable_del(w->quota, addr_be);
}

uint32_t pm_quota_list(const struct pm_worker *w, struct pm_quota_override *out, uint32_t n)
{
	return pm_qtable_list(w->quota, out, n);
}

uint32_t pm_quota_top(const struct pm_worker *w, struct pm_quota_talker *out, uint32_t n)
{
	return pm_qtable_top(w->quota, out, n, w->now_ns);
}

/* ---------------------------------------------------------------- admission */

/* A THROTTLED reply: one small frame, to a UDP or DPDK sender (or the worker
 * that can send on its port), or to this worker's TCP connection. */
static void send_throttled(struct pm_worker *w, const struct pm_dest *to, uint8_t op, uint64_t id,
			   uint32_t retry_ms)
{
	uint8_t frame[THROTTLED_FRAME_BYTES];
	size_t n = pm_reply_encode_throttled(op, id, retry_ms, frame, sizeof(frame));
	if (n == 0)
		return; /* cannot happen: the frame is fixed-size */
	pm_deliver_frames(w, to, frame, (uint32_t)n);
}

bool pm_quota_admit(struct pm_worker *w, const struct pm_request *req, uint32_t len,
		    const struct pm_dest *from)
{
	uint32_t addr = pm_auth_quota_key(w, from), retry_ms; /* the user's, with auth = on */
	bool knn = req->op == PM_OP_VQUERY || req->op == PM_OP_VQUERYB ||
		   req->op == PM_OP_VRANGE; /* also refused while the client owes KNN work */
	if (from->user == 0 && pm_dest_unvalidated(from)) {
		/* neither validated nor authenticated: no bucket of its own
		 * (quota.h), its /24's and everyone's; RETRY validates */
		retry_ms = pm_qshared_admit(w->quota_shared, from->addr.sin_addr.s_addr, len, knn,
					    w->now_ns);
		if (retry_ms)
			pm_guard_retry(w, from, req->op, req->id, PM_GUARD_WHY_THROTTLED);
		return retry_ms == 0;
	}
	if (knn)
		retry_ms = pm_qtable_admit_knn(w->quota, addr, len, w->now_ns);
	else
		retry_ms = pm_qtable_admit(w->quota, addr, len, w->now_ns);
	if (retry_ms == 0)
		return true;
	w->stats.throttled_requests++;
	send_throttled(w, from, req->op, req->id, retry_ms);
	return false;
}

void pm_quota_charge_work(struct pm_worker *w, const struct pm_dest *client, uint64_t work)
{
	if (work == 0 || client->conn == PM_CONN_ADMIN)
		return; /* the admin socket's requests are the operator's, not a client's */
	if (client->user == 0 && pm_dest_unvalidated(client)) /* its /24's, never the address's own */
		pm_qtable_charge_work(&w->quota_shared->prefixes,
				      pm_quota_prefix(client->addr.sin_addr.s_addr), work, w->now_ns);
	else
		pm_qtable_charge_work(w->quota, pm_auth_quota_key(w, client), work, w->now_ns);
	w->stats.knn_work_charged += work;
}

void pm_quota_charge_reply(struct pm_worker *w, const struct pm_dest *to, uint32_t bytes)
{
	if (bytes == 0 || to->conn == PM_CONN_ADMIN)
		return;
	uint32_t addr = to->addr.sin_addr.s_addr;
	if (pm_dest_unvalidated(to))
		pm_qshared_charge_bytes(w->quota_shared, addr, bytes, w->now_ns);
	else
		pm_qtable_charge_bytes(w->quota, addr, bytes, w->now_ns);
}

/* The bytes a VADD's blob can take at most in collection c (NULL: a default
 * collection not created yet): header, payload, key (if not inline), level-0
 * links of an HNSW node, rounded up to the arena's size class. */
/* What a VADD adds to its collection's bytes: its blob's size class, as the
 * engine computes it (the collection's parameters; a default collection
 * not yet made has a default's). A VADD that replaces a vector of the same
 * collection adds less; the bound is exact for a new one. */
static uint64_t vadd_bytes_bound(const struct pm_collection *c, const struct pm_request *req)
{
	struct pm_collection_params p = { .dim = req->dim };
	if (c)
		p = c->params;
	else if (pm_coll_params_check(&p) != PM_OK)
		return 0; /* the engine refuses it */
	return pm_vec_blob_bytes(&p, req->key.len);
}

enum pm_status pm_collection_cap_check(struct pm_worker *w, const struct pm_request *req)
{
	uint64_t cap = w->d->cfg.collection_bytes_max;
	if (cap == 0 || req->op != PM_OP_VADD || req->dim == 0 || req->dim > PM_DIM_MAX)
		return PM_OK; /* the engine answers a bad dimension itself */
	const struct pm_collection *c =
		req->collection.len ? pm_coll_find(&w->shard, req->collection.ptr, req->collection.len)
				    : pm_coll_default(&w->shard, req->dim);
	if (!c && req->collection.len)
		return PM_OK; /* no such collection: the engine says NOT_FOUND */
	if ((c ? c->bytes : 0) + vadd_bytes_bound(c, req) <= cap)
		return PM_OK;
	w->stats.collection_bytes_refused++;
	return PM_E_QUOTA;
}

/* ---------------------------------------------------------------- INFO */

/* One "name:value" line; false when it does not fit. */
static bool line(char *out, uint32_t cap, uint32_t *len, const char *name, const char *suffix,
		 unsigned long long v)
{
	int n = snprintf(out + *len, cap - *len, "%s%s:%llu\r\n", name, suffix, v);
	if (n < 0 || (uint32_t)n >= cap - *len)
		return false;
	*len += (uint32_t)n;
	return true;
}

/* A talker's INFO name: client_<address>, or user_<id> (issue 19). */
static void talker_name(uint32_t key, char *name, size_t n)
{
	char addr[INET_ADDRSTRLEN];
	if (pm_quota_key_user(key)) {
		snprintf(name, n, "user_%u", pm_quota_key_user(key));
		return;
	}
	inet_ntop(AF_INET, &key, addr, sizeof(addr)); /* not inet_ntoa: threads */
	snprintf(name, n, "client_%s", addr);
}

uint32_t pm_access_info(const struct pm_worker *w, char *out, uint32_t cap)
{
	return pm_access_info_for(w, out, cap, true);
}

uint32_t pm_access_info_for(const struct pm_worker *w, char *out, uint32_t cap, bool clients)
{
	const struct pm_quota_table *t = w->quota;
	struct pm_quota_talker top[PM_QUOTA_INFO_TOP];
	uint32_t len = 0, n = pm_qtable_top(t, top, PM_QUOTA_INFO_TOP, w->now_ns);
	bool ok = line(out, cap, &len, "dropped_not_allowed", "", w->stats.dropped_not_allowed) &&
		  line(out, cap, &len, "dropped_reply", "", w->stats.dropped_reply) &&
		  line(out, cap, &len, "dropped_self", "", w->stats.dropped_self) &&
		  line(out, cap, &len, "throttled_requests", "", w->stats.throttled_requests) &&
		  line(out, cap, &len, "collection_bytes_refused", "",
		       w->stats.collection_bytes_refused) &&
		  line(out, cap, &len, "quota_clients", "", t->live) &&
		  line(out, cap, &len, "quota_overrides", "", t->pinned) &&
		  line(out, cap, &len, "quota_clients_replaced", "", t->replaced) &&
		  line(out, cap, &len, "quota_unvalidated_admitted", "", w->quota_shared->admitted) &&
		  line(out, cap, &len, "quota_unvalidated_refused", "",
		       w->quota_shared->throttled) &&
		  line(out, cap, &len, "quota_unvalidated_prefixes", "",
		       w->quota_shared->prefixes.live);
	if (ok)
		len += pm_guard_info(w, out + len, cap - len);
	for (uint32_t i = 0; ok && clients && i < n; i++) { /* summed per address in INFO's Total */
		char name[32];
		talker_name(top[i].addr_be, name, sizeof(name));
		ok = line(out, cap, &len, name, "_requests", top[i].requests) &&
		     line(out, cap, &len, name, "_bytes", top[i].bytes) &&
		     line(out, cap, &len, name, "_throttled", top[i].throttled) &&
		     line(out, cap, &len, name, "_work", top[i].work);
	}
	return len;
}
