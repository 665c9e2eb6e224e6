/* SPDX-License-Identifier: MIT
 *
 * reply.c — libpomai's reply side: matching reply frames to requests,
 * assembling paged replies, retries and timeouts.
 *
 * A reply frame is decoded (and so fully validated) by the codec, then finds
 * its slot by id; a frame whose id matches no waiting request is stale (a
 * duplicate, or a late reply to a finished request) and is counted and dropped.
 *
 * Paged replies (KNN, CLIST; docs/protocol.md §6.2): items are copied into the
 * caller's result as frames arrive, and each frame's `first` must equal the
 * items received so far. A smaller `first` is a duplicate page (dropped); a
 * larger one means a page was lost or reordered: the items are forgotten and
 * the whole request is resent at once (one such resend per attempt; further
 * out-of-order pages of the old attempt are dropped until the new one makes
 * progress, and the timer covers the rest).
 *
 * Over UDP a request that times out is resent with the same id, so a late
 * reply to the first attempt satisfies the retry. A BUSY or server-side
 * TIMEOUT reply is remembered and left to the retry timer (back-off); if the
 * last attempt ends that way, that status is the result.
 *
 * Cluster mode (cluster.c) takes over what ends an attempt without a result
 * (MOVED, READONLY, a timeout): the request waits for a map refresh and is
 * routed again (after a MOVED or READONLY, at once only if the map changed
 * its node; else after its back-off). A reply counts only from the link its
 * request was sent to.
 */
#include <string.h>

#include "client_impl.h"

/* ---------------------------------------------------------------- resends */

void pmc_reset_items(struct pmc_slot *s)
{
	s->got = 0;
	if (s->knn) {
		s->knn->count = 0;
		s->knn->keys_used = 0;
	}
	if (s->colls)
		s->colls->count = 0;
	if (s->info)
		s->info->len = 0;
}

bool pmc_can_resend(const struct pm_client *c, const struct pmc_slot *s)
{
	return !c->tcp && s->attempts <= c->cfg.retries;
}

void pmc_resend(struct pm_client *c, struct pmc_slot *s, uint64_t now)
{
	s->attempts++;
	s->cookie_resent = false; /* a new attempt: its RETRY is answered again */
	pmc_reset_items(s);
	s->deadline_ms = now + pmc_attempt_wait_ms(c, s->attempts);
	pmc_deadline(c, s->deadline_ms);
	c->stats.resends++;
	if (!s->queued)
		pmc_enqueue(c, s);
}

static void on_timeout(struct pm_client *c, struct pmc_slot *s, uint64_t now)
{
	if (c->cluster) {
		pmc_cluster_on_timeout(c, s, now);
	} else if (pmc_can_resend(c, s)) {
		s->gap_resent = false;
		pmc_resend(c, s, now);
	} else if (c->tcp && s->queued && s->tx_off > 0) {
		/* Part of the frame is in the stream and the server stopped reading:
		 * the stream cannot be used again. */
		pmc_disconnect(c, PM_CLIENT_E_TIMEOUT);
	} else {
		pmc_fail(c, s, s->last_status ? (enum pm_client_status)s->last_status
					       : PM_CLIENT_E_TIMEOUT);
	}
}

void pmc_check_timeouts(struct pm_client *c, uint64_t now)
{
	if (now < c->next_deadline_ms)
		return;
	c->next_deadline_ms = UINT64_MAX; /* lowered by every deadline set below */
	uint64_t next = c->cluster ? pmc_cluster_tick(c, now) : UINT64_MAX;
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct pmc_slot *s = &c->slots[i];
		if (s->state == PMC_WAIT && s->deadline_ms <= now)
			on_timeout(c, s, now);
		if (s->state == PMC_WAIT && s->deadline_ms < next)
			next = s->deadline_ms;
	}
	if (next < c->next_deadline_ms)
		c->next_deadline_ms = next;
}

/* ---------------------------------------------------------------- paged replies */

/* A page of hits (VQUERY, VQUERYB, VRANGE); a batch's with their queries. */
static enum pm_client_status take_hits(struct pmc_slot *s, struct pm_reply_view *rv)
{
	struct pm_client_knn_result *k = s->knn;
	struct pm_wire_bytes key;
	uint32_t query;
	float dist;
	if (rv->op == PM_WIRE_OP_VRANGE && s->batch)
		s->batch->truncated |= (rv->range_flags & PM_WIRE_RANGE_TRUNCATED) != 0;
	while (pm_reply_next_qhit(rv, &query, &key, &dist)) {
		if (k->count >= k->hits_cap || (rv->op == PM_WIRE_OP_VQUERYB && query >= s->nitems))
			return PM_CLIENT_E_PROTOCOL; /* more hits than k, or no such query */
		if (rv->op == PM_WIRE_OP_VQUERYB)
			s->batch->query[k->count] = query;
		if (key.len > k->keys_cap - k->keys_used)
			return PM_CLIENT_E_NOSPACE;
		uint8_t *dst = k->keys + k->keys_used;
		memcpy(dst, key.ptr, key.len);
		k->keys_used += key.len;
		k->hits[k->count++] = (struct pm_client_hit){ dst, key.len, dist };
	}
	return PM_CLIENT_OK;
}

static enum pm_client_status take_colls(struct pm_client_coll_list *l,
					struct pm_reply_view *rv)
{
	struct pm_wire_coll_info ci;
	while (pm_reply_next_coll(rv, &ci)) {
		if (l->count >= l->cap)
			return PM_CLIENT_E_NOSPACE;
		struct pm_client_coll_info *o = &l->items[l->count++];
		memset(o, 0, sizeof *o);
		if (ci.name.len)
			memcpy(o->name, ci.name.ptr, ci.name.len);
		o->name_len = ci.name.len;
		o->params = (struct pm_client_coll_params){
			.dim = ci.params.dim, .metric = ci.params.metric,
			.index = ci.params.index, .hnsw_m = ci.params.hnsw_m,
			.ef_construction = ci.params.ef_construction,
			.ef_search = ci.params.ef_search,
			.evictable = (ci.params.flags & PM_WIRE_COLL_EVICTABLE) != 0,
			.dtype = ci.params.dtype, .rerank = ci.params.rerank != 0,
			.rerank_k = ci.params.rerank_k };
		o->count = ci.count;
		o->bytes = ci.bytes;
	}
	return PM_CLIENT_OK;
}

/* A frame whose `first` is past the items received: a page is missing. */
static void on_gap(struct pm_client *c, struct pmc_slot *s)
{
	if (s->gap_resent) {
		c->stats.stale++; /* more of the attempt already given up */
		return;
	}
	c->stats.page_gaps++;
	if (!pmc_can_resend(c, s)) {
		pmc_fail(c, s, c->tcp ? PM_CLIENT_E_PROTOCOL : PM_CLIENT_E_TIMEOUT);
		return;
	}
	s->gap_resent = true;
	pmc_resend(c, s, pmc_now_ms());
}

/* An INFO page: its bytes at offset rv->first of the text (on_page checked
 * that it follows the bytes received). */
static enum pm_client_status take_text(struct pm_client_text *t, const struct pm_reply_view *rv)
{
	if (t->len + rv->value.len > t->cap)
		return PM_CLIENT_E_NOSPACE;
	if (rv->value.len)
		memcpy(t->buf + t->len, rv->value.ptr, rv->value.len);
	t->len += rv->value.len;
	return PM_CLIENT_OK;
}

static void on_page(struct pm_client *c, struct pmc_slot *s, struct pm_reply_view *rv)
{
	if (rv->first < s->got) {
		c->stats.stale++; /* a page seen already */
		return;
	}
	if (rv->first > s->got) {
		on_gap(c, s);
		return;
	}
	s->gap_resent = false;
	enum pm_client_status st = s->leg ? pmc_fan_take_hits(c, s, rv)
				 : s->knn ? take_hits(s, rv)
				 : s->info ? take_text(s->info, rv) : take_colls(s->colls, rv);
	s->got += rv->count;
	if (st != PM_CLIENT_OK)
		pmc_fail(c, s, st);
	else if (!rv->more) {
		struct pm_client_result res = { .status = PM_CLIENT_OK };
		if (s->info) {
			res.value = (const uint8_t *)s->info->buf;
			res.vlen = (uint32_t)s->info->len;
		}
		pmc_complete(c, s, &res);
	}
}

/* ---------------------------------------------------------------- replies */

static void take_vector(struct pm_client *c, const struct pm_reply_view *rv,
			struct pm_client_result *res)
{
	memcpy(c->vscratch, rv->value.ptr, rv->value.len); /* dim <= PM_WIRE_DIM_MAX */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	for (uint32_t i = 0; i < rv->dim; i++) {
		uint32_t u;
		memcpy(&u, &c->vscratch[i], 4);
		u = __builtin_bswap32(u);
		memcpy(&c->vscratch[i], &u, 4);
	}
#endif
	res->vec = c->vscratch;
	res->dim = rv->dim;
	res->collection = rv->collection.ptr;
	res->collection_len = rv->collection.len;
	res->dtype = rv->dtype;
	res->attr = rv->attr.ptr;
	res->attr_len = rv->attr.len;
}

static void on_success(struct pm_client *c, struct pmc_slot *s, struct pm_reply_view *rv)
{
	struct pm_client_result res = { .status = PM_CLIENT_OK };
	switch (rv->op) {
	case PM_WIRE_OP_VQUERY:
	case PM_WIRE_OP_CLIST:
	case PM_WIRE_OP_VQUERYB:
	case PM_WIRE_OP_VRANGE:
		on_page(c, s, rv);
		return;
	case PM_WIRE_OP_VADDB: /* each item's own status */
		if (rv->item_status.len != s->nitems || !s->batch) {
			pmc_fail(c, s, PM_CLIENT_E_PROTOCOL);
			return;
		}
		for (uint32_t i = 0; i < s->nitems; i++)
			s->batch->status[i] = pmc_from_wire(rv->item_status.ptr[i]);
		break;
	case PM_WIRE_OP_INFO:
		if (s->info) {
			on_page(c, s, rv);
			return;
		}
		if (rv->more || rv->first) { /* pages we did not ask for */
			pmc_fail(c, s, PM_CLIENT_E_PROTOCOL);
			return;
		}
		res.value = rv->value.ptr;
		res.vlen = rv->value.len;
		break;
	case PM_WIRE_OP_GET:
		res.value = rv->value.ptr;
		res.vlen = rv->value.len;
		break;
	case PM_WIRE_OP_DEL:
	case PM_WIRE_OP_VDEL:
	case PM_WIRE_OP_CDROP:
		res.removed = rv->removed != 0;
		break;
	case PM_WIRE_OP_VGET:
		take_vector(c, rv, &res);
		break;
	case PM_WIRE_OP_MAP:
		pmc_cluster_map_reply(c, s, rv);
		return;
	default:
		break; /* SET, VADD, CCREATE, SNAPSHOT: nothing to return */
	}
	pmc_complete(c, s, &res);
}

static void on_error(struct pm_client *c, struct pmc_slot *s, const struct pm_reply_view *rv)
{
	enum pm_client_status cs = pmc_from_wire(rv->status);
	c->stats.moved += cs == PM_CLIENT_E_MOVED;
	if (cs == PM_CLIENT_E_RETRY && pmc_on_retry(c, PMC_DEST_LINK(s->dest), s, rv))
		return; /* resent at once with the cookie (guard.c) */
	if ((cs == PM_CLIENT_E_BUSY || cs == PM_CLIENT_E_SERVER_TIMEOUT) &&
	    (c->cluster ? s->attempts <= c->cfg.retries : pmc_can_resend(c, s))) {
		s->last_status = (uint8_t)cs; /* the retry timer backs off, then resends */
		return;
	}
	if (c->cluster && (cs == PM_CLIENT_E_MOVED || cs == PM_CLIENT_E_READONLY)) {
		pmc_cluster_refused(c, s, cs); /* refresh the map, route again */
		return;
	}
	struct pm_client_result res = { .status = cs };
	if (cs == PM_CLIENT_E_THROTTLED) /* not retried here: pomai.h says why */
		res.retry_ms = c->last_retry_ms = rv->retry_ms;
	if (cs == PM_CLIENT_E_READONLY)
		c->last_primary = rv->primary;
	pmc_complete(c, s, &res);
}

size_t pmc_on_frame(struct pm_client *c, uint32_t l, const uint8_t *p, size_t len)
{
	struct pm_reply_view rv;
	size_t used;
	enum pm_wire_status dst = pm_reply_decode(p, len, &rv, &used);
	if (used == 0)
		return 0;
	c->stats.frames_in++;
	struct pmc_slot *s = pmc_slot_by_id(c, rv.id);
	/* From another link than its request's, or to a fan-out's parent (its id
	 * is never sent): not this request's reply. */
	if (s != NULL && (PMC_DEST_LINK(s->dest) != l || (s->fan != PMC_NIL && !s->leg)))
		s = NULL;
	if (s == NULL) {
		c->stats.stale++;
		return used;
	}
	if (dst != PM_WIRE_OK || (rv.op != PM_WIRE_OP_NONE && rv.op != s->op))
		pmc_fail(c, s, PM_CLIENT_E_PROTOCOL);
	else if (rv.status != PM_WIRE_OK)
		on_error(c, s, &rv);
	else
		on_success(c, s, &rv);
	return used;
}
