/* SPDX-License-Identifier: MIT
 *
 * fanout_batch.c — VADD batches, VQUERY batches and range searches across
 * the shards (issue 18; docs/protocol.md "Batches and range search").
 *
 * All three are fan-outs (fanout.c): the worker that receives one posts the
 * frame to every other shard and coordinates the answers.
 *
 * A VADD batch is split by owner without copying a frame per shard: every
 * shard reads the whole batch and applies only the items whose key it owns
 * (pm_route_hash, as a single VADD is routed), each as one VADD through
 * pm_apply_logged — admitted, applied and logged as its own record with its
 * own LSN, so the log, its replay and replication see ordinary VADDs. Its
 * part lists a status per item (those of other shards' items are 0 and
 * ignored); the coordinator, which knows every item's owner, takes each
 * item's status from its owner's part. An item whose owner's part did not
 * come (a full ring: BUSY; the deadline: TIMEOUT) or failed whole gets that
 * status; the others are not affected. A part's reply is held until its
 * records are on disk, like a single VADD's (pm_wal_must_hold).
 *
 * A VQUERY batch runs on each shard as one engine call (pm_vquery_batch:
 * the exact queries of a collection as one blocked scan) and each query's
 * k best are merged across shards as a VQUERY's are, in a segment of the
 * pending slot's hit array per query (the batch's k summed is at most
 * PM_BATCH_HITS_MAX, the size of that array). A range search merges like a
 * VQUERY with k = its max, and is truncated when a part was or the parts'
 * hits together are more than the max.
 *
 * Departure: unlike a VQUERY's, these parts run whole on the worker's turn
 * (not in knn_sched.c's slices); the work cap (knn_work_bytes_max) bounds
 * each query of a batch as it bounds a VQUERY, and a frame's bytes bound the
 * queries (about 20 of 784 dimensions). The client is charged the summed work.
 */
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "cluster.h"
#include "common.h"
#include "fanout.h"
#include "fanout_batch.h"
#include "route.h"
#include "worker.h"

_Static_assert(PM_FRAME_HEADER_BYTES + 1u + 4u + PM_BATCH_ITEMS_MAX <= PM_REPLY_HOLD_BYTES,
	       "a VADD batch's reply can be held for the log");
_Static_assert(PM_BATCH_FLOATS_MAX * 4u >= PM_FRAME_BYTES_MAX,
	       "a batch's query vectors, all from one frame, fit the batch space");
_Static_assert(PM_SHARDS_MAX <= UINT8_MAX, "an item's owner is a byte");
_Static_assert(PM_BATCH_HITS_MAX <= UINT16_MAX, "segments are 16-bit");

bool pm_batch_is_op(uint8_t op)
{
	return op == PM_OP_VADDB || op == PM_OP_VQUERYB || op == PM_OP_VRANGE;
}

int pm_batch_alloc(struct pm_worker *w)
{
	w->batch_space = pm_batch_space_new();
	w->batch_items = calloc(PM_BATCH_ITEMS_MAX, sizeof(*w->batch_items));
	w->item_status = calloc(PM_BATCH_ITEMS_MAX, 1);
	bool ok = w->batch_space && w->batch_items && w->item_status;
	for (uint32_t i = 0; ok && i < PM_PENDING_MAX; i++)
		ok = (w->pending[i].batch = calloc(1, sizeof(*w->pending[i].batch))) != NULL;
	return ok ? 0 : -1;
}

void pm_batch_free(struct pm_worker *w)
{
	pm_batch_space_free(w->batch_space);
	free(w->batch_items);
	free(w->item_status);
	for (uint32_t i = 0; i < PM_PENDING_MAX; i++) {
		free(w->pending[i].batch);
		w->pending[i].batch = NULL;
	}
	w->batch_space = NULL;
	w->batch_items = NULL;
	w->item_status = NULL;
}

/* ---------------------------------------------------------------- a shard's part */

/* This shard's items of a VADD batch, each one VADD. */
static void vaddb_part(struct pm_worker *w, const struct pm_request *req, struct pm_reply *rep)
{
	uint32_t at = 0;
	for (uint32_t i = 0; i < req->nitems; i++) {
		struct pm_request item;
		struct pm_reply ir;
		uint8_t code = PM_WIRE_OK; /* another shard's item: its owner answers it */
		enum pm_status st = pm_request_item(req, &at, &item);
		uint64_t hash = pm_route_hash(item.key.ptr, item.key.len);
		if (st != PM_OK) {
			code = pm_status_to_wire(st);
		} else if (pm_shard_of(hash, w->d->nshards) != w->id) {
			code = PM_WIRE_OK;
		} else if (w->cview && !pm_cluster_owns(w, item.key.ptr, item.key.len)) {
			code = PM_WIRE_E_MOVED; /* its slot is another replica set's */
		} else {
			pm_apply_logged(w, &item, &ir);
			code = pm_status_to_wire(ir.status);
		}
		w->item_status[i] = code;
	}
	w->shard.stats.ops[PM_OP_VADDB]++;
	*rep = (struct pm_reply){ .status = PM_OK, .op = PM_OP_VADDB, .id = req->id,
				  .item_status = w->item_status, .nitems = req->nitems };
}

/* A VQUERY batch's items, decoded into the worker's array. */
static enum pm_status decode_items(struct pm_worker *w, const struct pm_request *req)
{
	uint32_t at = 0;
	if (req->nitems == 0 || req->nitems > PM_BATCH_ITEMS_MAX)
		return PM_E_BATCH;
	for (uint32_t i = 0; i < req->nitems; i++) {
		enum pm_status st = pm_request_item(req, &at, &w->batch_items[i]);
		if (st != PM_OK)
			return st;
	}
	return PM_OK;
}

void pm_batch_part(struct pm_worker *w, const struct pm_request *req, struct pm_reply *rep)
{
	if (req->op == PM_OP_VADDB) {
		vaddb_part(w, req, rep);
	} else if (req->op == PM_OP_VRANGE) {
		pm_vrange(&w->shard, req, w->batch_space, rep);
	} else {
		enum pm_status st = decode_items(w, req);
		if (st == PM_OK)
			pm_vquery_batch(&w->shard, w->batch_items, req->nitems, w->batch_space, rep);
		else
			*rep = (struct pm_reply){ .status = st, .op = req->op, .id = req->id };
	}
	rep->id = req->id;
}

/* ---------------------------------------------------------------- the coordinator */

void pm_batch_start(const struct pm_worker *w, struct pm_pending *p, const struct pm_request *req)
{
	struct pm_batch_merge *bm = p->batch;
	uint32_t at = 0, base = 0;
	bm->n = PM_MIN(req->nitems, PM_BATCH_ITEMS_MAX);
	for (uint32_t i = 0; i < bm->n && req->op != PM_OP_VRANGE; i++) {
		struct pm_request item;
		enum pm_status st = pm_request_item(req, &at, &item);
		if (req->op == PM_OP_VADDB) {
			bm->owner[i] = (uint8_t)pm_shard_of(pm_route_hash(item.key.ptr, item.key.len),
							    w->d->nshards);
			bm->status[i] = st == PM_OK ? PM_WIRE_E_TIMEOUT : pm_status_to_wire(st);
		} else {
			bm->base[i] = (uint16_t)base;
			bm->k[i] = (uint16_t)(st == PM_OK ? item.k : 0);
			bm->nhits[i] = 0;
			base += bm->k[i]; /* the decoder bounds the sum (PM_BATCH_HITS_MAX) */
		}
	}
}

void pm_batch_part_failed(struct pm_pending *p, uint32_t shard, enum pm_wire_status st)
{
	struct pm_batch_merge *bm = p->batch;
	for (uint32_t i = 0; p->op == PM_OP_VADDB && i < bm->n; i++)
		if (bm->owner[i] == shard)
			bm->status[i] = (uint8_t)st;
}

/* (dist, key) against a kept hit, ordered as a shard orders them. */
static int qhit_cmp(const struct pm_pending *p, float d, const struct pm_wire_bytes *key,
		    const struct pm_hit_ref *h)
{
	if (d != h->dist)
		return d < h->dist ? -1 : 1;
	int c = memcmp(key->ptr, p->keys + h->off, PM_MIN(key->len, h->len));
	return c ? c : (int)key->len - (int)h->len;
}

static int ref_off_cmp(const void *a, const void *b)
{
	const struct pm_hit_ref *x = *(struct pm_hit_ref *const *)a,
				*y = *(struct pm_hit_ref *const *)b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Move every query's kept keys to the front of the key buffer. */
static void compact_segments(struct pm_pending *p)
{
	struct pm_hit_ref *refs[PM_BATCH_HITS_MAX];
	const struct pm_batch_merge *bm = p->batch;
	uint32_t n = 0, at = 0;
	for (uint32_t q = 0; q < bm->n; q++)
		for (uint32_t j = 0; j < bm->nhits[q]; j++)
			refs[n++] = &p->hits[bm->base[q] + j];
	qsort(refs, n, sizeof(refs[0]), ref_off_cmp);
	for (uint32_t i = 0; i < n; i++) {
		memmove(p->keys + at, p->keys + refs[i]->off, refs[i]->len);
		refs[i]->off = at;
		at += refs[i]->len;
	}
	p->keys_used = at;
}

/* One hit of query q, kept if among its k best; false: no room for its key. */
static bool merge_qhit(struct pm_pending *p, uint32_t q, const struct pm_wire_bytes *key,
		       float dist)
{
	struct pm_batch_merge *bm = p->batch;
	struct pm_hit_ref *seg = p->hits + bm->base[q];
	uint32_t n = bm->nhits[q], pos = n;
	while (pos > 0 && qhit_cmp(p, dist, key, &seg[pos - 1]) < 0)
		pos--;
	if (pos >= bm->k[q])
		return true;
	if (p->keys_used + key->len > PM_KNN_MERGE_BYTES)
		compact_segments(p);
	if (p->keys_used + key->len > PM_KNN_MERGE_BYTES)
		return false;
	n = PM_MIN(n, bm->k[q] - 1u);
	memmove(&seg[pos + 1], &seg[pos], (n - pos) * sizeof(seg[0]));
	memcpy(p->keys + p->keys_used, key->ptr, key->len);
	seg[pos] = (struct pm_hit_ref){ dist, p->keys_used, key->len };
	p->keys_used += key->len;
	bm->nhits[q] = (uint16_t)(n + 1);
	return true;
}

bool pm_batch_merge(const struct pm_worker *w, struct pm_pending *p, uint32_t shard,
		    const struct pm_reply_view *rv)
{
	struct pm_batch_merge *bm = p->batch;
	if (p->op == PM_OP_VADDB) {
		for (uint32_t i = 0; i < bm->n && i < rv->item_status.len; i++)
			if (bm->owner[i] == shard)
				bm->status[i] = rv->item_status.ptr[i];
		return true;
	}
	struct pm_reply_view it = *rv;
	struct pm_wire_bytes key;
	uint32_t q;
	float dist;
	bool ok = true;
	while (pm_reply_next_qhit(&it, &q, &key, &dist))
		if (q < bm->n && (!w->cview || pm_cluster_owns(w, key.ptr, key.len)))
			ok &= merge_qhit(p, q, &key, dist);
	return ok;
}

void pm_batch_finish(struct pm_worker *w, struct pm_pending *p, struct pm_reply *rep)
{
	const struct pm_batch_merge *bm = p->batch;
	if (p->op == PM_OP_VADDB) {
		memcpy(w->item_status, bm->status, bm->n);
		rep->item_status = w->item_status;
		rep->nitems = bm->n;
		return;
	}
	uint32_t m = 0;
	uint32_t *hq = w->batch_space->hit_query;
	for (uint32_t q = 0; q < bm->n; q++)
		for (uint32_t j = 0; j < bm->nhits[q]; j++, m++) {
			const struct pm_hit_ref *h = &p->hits[bm->base[q] + j];
			w->shard.hits[m] = (struct pm_knn_hit){ .seed = 0, .dist = h->dist };
			w->shard.keys[m] = (struct pm_bytes){ p->keys + h->off, h->len };
			hq[m] = q;
		}
	rep->hits = w->shard.hits;
	rep->keys = w->shard.keys;
	rep->hit_query = hq;
	rep->nhits = m;
}
