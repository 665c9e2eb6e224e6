/* SPDX-License-Identifier: MIT
 *
 * shard.c — set-up of a shard and pm_shard_apply, the one entry point that turns
 * a decoded request into a reply. Validation that the decoder already did is
 * repeated here (cheaply) because the engine is also called directly, by tests,
 * benchmarks and recovery, and must refuse bad input on every path.
 */
#include <stdio.h>
#include <string.h>

#include "attr.h"
#include "common.h"
#include "hash.h"
#include "knn.h"
#include "kv.h"
#include "quant.h"
#include "shard.h"
#include "vector.h"

/* ---------------------------------------------------------------- set-up */

void pm_shard_config_default(struct pm_shard_config *cfg)
{
	cfg->arena_bytes = PM_SHARD_ARENA_BYTES_DEFAULT;
	cfg->seed_capacity = PM_SHARD_SEEDS_DEFAULT;
	cfg->hugepages = true;
	cfg->mem = NULL;
}

static void *reserve(struct pm_shard *sh, uint64_t bytes)
{
	uint64_t off = pm_arena_reserve(&sh->arena, bytes);
	return off ? pm_at(&sh->arena, off) : NULL;
}

enum pm_status pm_shard_init(struct pm_shard *sh, const struct pm_shard_config *cfg)
{
	memset(sh, 0, sizeof(*sh));
	enum pm_status st = cfg->mem ? pm_arena_init_mem(&sh->arena, cfg->mem, cfg->arena_bytes,
							 cfg->seed_capacity)
				     : pm_arena_init(&sh->arena, cfg->arena_bytes, cfg->seed_capacity,
						     cfg->hugepages);
	if (st != PM_OK)
		return st;
	if (pm_seedmap_init(&sh->map, &sh->arena, cfg->seed_capacity) != PM_OK) {
		st = PM_E_PARAM; /* arena too small for its own seed map */
		goto fail;
	}
	sh->colls = reserve(sh, PM_COLLECTIONS_MAX * sizeof(*sh->colls));
	sh->query = reserve(sh, PM_DIM_MAX * sizeof(float));
	sh->hits = reserve(sh, PM_K_MAX * sizeof(*sh->hits));
	sh->keys = reserve(sh, PM_K_MAX * sizeof(*sh->keys));
	sh->cinfo = reserve(sh, PM_COLLECTIONS_MAX * sizeof(*sh->cinfo));
	sh->text = reserve(sh, PM_INFO_TEXT_BYTES_MAX);
	sh->beam = reserve(sh, PM_HNSW_BEAM_ENTRIES * sizeof(*sh->beam));
	sh->cands = reserve(sh, PM_HNSW_CANDIDATES_MAX * sizeof(*sh->cands));
	if (!sh->colls || !sh->query || !sh->hits || !sh->keys || !sh->cinfo || !sh->text ||
	    !sh->beam || !sh->cands) {
		st = PM_E_PARAM; /* arena too small for its own seed map and tables */
		goto fail;
	}
	sh->kern = pm_kernels_best();
	sh->qkern = pm_qkernels_best();
	sh->knn_work_max = PM_KNN_WORK_BYTES_MAX_DEFAULT;
	return PM_OK;
fail:
	pm_arena_destroy(&sh->arena);
	return st;
}

void pm_shard_destroy(struct pm_shard *sh)
{
	pm_arena_destroy(&sh->arena);
	memset(sh, 0, sizeof(*sh));
}

/* ---------------------------------------------------------------- expiry */

uint32_t pm_shard_expire(struct pm_shard *sh, uint64_t now_ms, uint32_t max_seeds)
{
	struct pm_arena *a = &sh->arena;
	uint32_t deleted = 0;
	max_seeds = PM_MIN(PM_MIN(max_seeds, PM_EXPIRE_SCAN_SEEDS_MAX), a->seed_high);
	for (uint32_t n = 0; n < max_seeds; n++) {
		if (sh->expire_cursor >= a->seed_high)
			sh->expire_cursor = 0;
		uint32_t idx = sh->expire_cursor++;
		const struct pm_seed *s = pm_seed_at(a, idx);
		uint64_t at = pm_seed_expiry(s);
		if (s->kind == PM_SEED_FREE || at == 0 || at > now_ms)
			continue;
		pm_ks_delete(sh, idx, pm_hash(pm_seed_key(a, s), s->klen));
		deleted++;
	}
	sh->stats.expired_active += deleted;
	return deleted;
}

/* ---------------------------------------------------------------- maintenance */

/* Near maxmemory (evict.h), every tombstone is worth sweeping: it holds bytes
 * writes are waiting for. */
static bool memory_pressure(const struct pm_shard *sh)
{
	uint64_t max = sh->evict.cfg.maxmemory_bytes;
	return max && sh->tomb_bytes &&
	       pm_shard_mem_used(sh) >= max / 100 * PM_EVICT_SWEEP_PRESSURE_PCT;
}

static bool sweep_due(const struct pm_hnsw *h, bool pressure)
{
	return h->sweeping || h->tombstones >= PM_MAX(PM_HNSW_TOMBSTONES_SWEEP_MIN, h->live / 16) ||
	       (pressure && h->tombstones) || (h->tombstones == 0 && pm_hnsw_walk_due(h));
}

/* Active expiry while idle: a cycle that deleted something is followed at
 * once by the next; one that found nothing waits for the caller's clock to
 * pass its millisecond. A worker idles in turns of a few microseconds, and a
 * cycle of PM_EXPIRE_SCAN_SEEDS_MAX slots on every one of them was up to a
 * quarter of its idle CPU (issue 20's profile) and delayed the packet that
 * came during it; once per ms still sweeps a million slots a second. */
static bool expire_due(const struct pm_shard *sh, uint64_t now_ms)
{
	return sh->expire_busy || now_ms != sh->expire_last_ms;
}

bool pm_shard_maintain(struct pm_shard *sh, uint64_t now_ms, uint32_t budget)
{
	bool more = false;
	if (expire_due(sh, now_ms)) {
		sh->expire_last_ms = now_ms;
		sh->expire_busy = more = pm_shard_expire(sh, now_ms, PM_EXPIRE_SCAN_SEEDS_MAX) > 0;
	}
	bool pressure = memory_pressure(sh);
	/* the live slots only: no stride over all PM_COLLECTIONS_MAX of them */
	for (uint32_t i = 0, seen = 0; seen < sh->ncolls && i < PM_COLLECTIONS_MAX; i++) {
		struct pm_collection *c = &sh->colls[i];
		seen += c->live;
		if (c->live && c->dropping)
			more |= !pm_coll_drop_slice(sh, c, budget ? budget : PM_HNSW_MAINTAIN_NODES_DEFAULT);
		else if (c->live && c->params.index == PM_INDEX_HNSW && sweep_due(&c->hnsw, pressure))
			more |= pm_hnsw_maintain(sh, c, budget);
	}
	return more;
}

/* ---------------------------------------------------------------- vector query */

/* The whole query at once (knn.h has it in steps). */
static enum pm_status do_vquery(struct pm_shard *sh, const struct pm_request *req,
				struct pm_reply *rep)
{
	struct pm_vquery v;
	if (pm_vquery_begin(sh, &v, req, sh->query, sh->hits) == PM_OK)
		while (!pm_vquery_step(sh, &v, UINT64_MAX))
			;
	pm_vquery_reply(sh, &v, rep);
	return rep->status;
}

/* ---------------------------------------------------------------- dispatch */

static enum pm_status do_vget(struct pm_shard *sh, const struct pm_request *req, uint64_t hash,
			      uint64_t now_ms, struct pm_reply *rep)
{
	const struct pm_vec_header *h;
	enum pm_status st = pm_vec_get(sh, req->key.ptr, req->key.len, hash, now_ms, &h,
				       &rep->collection);
	if (st == PM_OK) { /* f32 as stored: the kept copy, or the codes decoded (quant.h) */
		const struct pm_collection *c = &sh->colls[h->coll];
		rep->dim = h->dim;
		rep->dtype = h->dtype;
		if (h->dtype == PM_DTYPE_F32) {
			rep->value.ptr = pm_vec_payload(h);
		} else {
			pm_vec_f32(c, h, sh->query);
			rep->value.ptr = (const uint8_t *)sh->query;
		}
		rep->value.len = 4u * h->dim;
		const uint8_t *rec = pm_vec_attr(sh, h);
		rep->attr.ptr = rec;
		rep->attr.len = rec ? pm_attr_len(rec) : 0;
	}
	return st;
}

static enum pm_status removed(enum pm_status st, struct pm_reply *rep)
{
	rep->removed = st == PM_OK;
	return st == PM_NOT_FOUND ? PM_OK : st;
}

static enum pm_status dispatch(struct pm_shard *sh, const struct pm_request *req, uint64_t hash,
			       uint64_t now_ms, struct pm_reply *rep)
{
	const uint8_t *key = req->key.ptr;
	const uint32_t klen = req->key.len;
	const uint64_t at = pm_expiry_at(now_ms, req->has_ttl ? req->ttl_ms : 0);

	if (req->has_ttl && (req->ttl_ms == 0 || req->ttl_ms > PM_TTL_MS_MAX))
		return PM_E_TTL;
	switch (req->op) {
	case PM_OP_SET:
		return pm_kv_set(sh, key, klen, hash, req->value.ptr, req->value.len, at, now_ms);
	case PM_OP_GET:
		return pm_kv_get(sh, key, klen, hash, now_ms, &rep->value);
	case PM_OP_DEL:
		return removed(pm_kv_del(sh, key, klen, hash, now_ms), rep);
	case PM_OP_INFO:
		rep->value.ptr = (const uint8_t *)sh->text;
		rep->value.len = pm_shard_info(sh, (const char *)req->section.ptr, req->section.len,
					       sh->text, PM_INFO_TEXT_BYTES_MAX);
		return PM_OK;
	case PM_OP_VADD:
		if (req->has_attr)
			return pm_vec_put_attr(sh, key, klen, hash, req->collection.ptr,
					       req->collection.len, req->vec, req->dim, req->attr.ptr,
					       req->attr.len, at, now_ms);
		return pm_vec_put(sh, key, klen, hash, req->collection.ptr, req->collection.len,
				  req->vec, req->dim, at, now_ms);
	case PM_OP_VSETATTR:
		return pm_vec_set_attr(sh, key, klen, hash, req->attr.ptr, req->attr.len, now_ms);
	case PM_OP_VGET:
		return do_vget(sh, req, hash, now_ms, rep);
	case PM_OP_VDEL:
		return removed(pm_vec_del(sh, key, klen, hash, now_ms), rep);
	case PM_OP_VQUERY:
		return do_vquery(sh, req, rep);
	case PM_OP_CCREATE:
		return pm_coll_create(sh, req->collection.ptr, req->collection.len, &req->params);
	case PM_OP_CDROP:
		return removed(pm_coll_drop(sh, req->collection.ptr, req->collection.len), rep);
	case PM_OP_CLIST:
		rep->ncolls = pm_coll_list(sh, sh->cinfo);
		rep->colls = sh->cinfo;
		rep->list_flags = req->list_flags;
		return PM_OK;
	case PM_OP_SNAPSHOT: /* the dataplane's (snap_io.c), never the engine's */
	case PM_OP_MAP:      /* the dataplane's (the cluster's map), never the engine's */
	default:
		return PM_E_FRAME_OPCODE;
	}
}

static inline uint64_t request_hash(const struct pm_request *req)
{
	return req->key.len ? pm_hash(req->key.ptr, req->key.len) : 0;
}

static void count_reply(struct pm_shard *sh, uint8_t op, enum pm_status st)
{
	sh->stats.ops[op < PM_OP_COUNT ? op : PM_OP_NONE]++;
	if (st == PM_OK && (op == PM_OP_GET || op == PM_OP_VGET))
		sh->stats.hits++;
	else if (st == PM_NOT_FOUND)
		sh->stats.misses++;
	else if (st != PM_OK)
		sh->stats.errors[st]++;
}

static void apply_hashed(struct pm_shard *sh, const struct pm_request *req, uint64_t hash,
			 uint64_t now_ms, struct pm_reply *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->op = req->op;
	rep->id = req->id;
	rep->status = dispatch(sh, req, hash, now_ms, rep);
	count_reply(sh, req->op, rep->status);
}

void pm_shard_vquery_end(struct pm_shard *sh, const struct pm_vquery *v, struct pm_reply *rep)
{
	*rep = (struct pm_reply){ .op = PM_OP_VQUERY, .id = v->id };
	pm_vquery_reply(sh, v, rep);
	count_reply(sh, PM_OP_VQUERY, rep->status);
}

void pm_shard_apply(struct pm_shard *sh, const struct pm_request *req, uint64_t now_ms,
		    struct pm_reply *rep)
{
	apply_hashed(sh, req, request_hash(req), now_ms, rep);
}

/* The seeds whose tags match in each (prefetched) home bucket: a burst's
 * second pass. */
static void prefetch_seeds(const struct pm_shard *sh, uint64_t *hash, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (hash[i])
			pm_seedmap_prefetch_seeds(&sh->map, &sh->arena, hash[i]);
}

/* A burst's first two passes (below), for keys applied one by one later. */
void pm_shard_prefetch_keys(const struct pm_shard *sh, const struct pm_bytes *keys, uint32_t n)
{
	uint64_t hash[PM_BURST_MAX];
	n = PM_MIN(n, PM_BURST_MAX);
	for (uint32_t i = 0; i < n; i++) {
		hash[i] = pm_hash(keys[i].ptr, keys[i].len);
		pm_seedmap_prefetch(&sh->map, &sh->arena, hash[i]);
	}
	prefetch_seeds(sh, hash, n);
}

/* Three passes over the burst so that its cache misses overlap instead of queueing
 * one after another: hash and prefetch every home bucket; then, with the buckets
 * in cache, prefetch the seeds whose tags match; then execute in order. */
void pm_shard_apply_burst(struct pm_shard *sh, const struct pm_request *reqs, uint32_t n,
			  uint64_t now_ms, pm_reply_fn emit, void *ctx)
{
	uint64_t hash[PM_BURST_MAX];
	struct pm_reply rep;
	PM_ASSERT(n <= PM_BURST_MAX);
	for (uint32_t i = 0; i < n; i++) {
		hash[i] = request_hash(&reqs[i]);
		pm_seedmap_prefetch(&sh->map, &sh->arena, hash[i]);
	}
	prefetch_seeds(sh, hash, n); /* request_hash: 0 without a key */
	pm_seed_prefetch_next(&sh->arena, n); /* slots that inserts will take */
	for (uint32_t i = 0; i < n; i++) {
		apply_hashed(sh, &reqs[i], hash[i], now_ms, &rep);
		emit(ctx, &reqs[i], &rep);
	}
}
