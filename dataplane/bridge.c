/* SPDX-License-Identifier: MIT
 *
 * bridge.c — the engine's types to the wire's and back (see bridge.h).
 *
 * Requests and replies are converted field by field: pointers and lengths,
 * never a payload. The one part whose layout differs is a reply's list: the
 * engine gives KNN hits as two arrays (hits[i].dist, keys[i]) and collections
 * as struct pm_coll_info, the codec takes struct pm_wire_hit and
 * pm_wire_coll_info. pm_reply_encode() converts the entries from the cursor
 * on into an array on its stack (bounded by PM_K_MAX and PM_COLLECTIONS_MAX,
 * 24 KiB at most, and only for a successful VQUERY or CLIST: the other
 * replies never reserve it), so it keeps the codec's signature and needs no
 * per-worker buffer; a paged reply converts what is left at each page.
 */
#include "bridge.h"
#include "quant.h"

#include <stdatomic.h>
#include <string.h>

#include "batch.h"
#include "pm_limits.h"
#include "attr.h"
#include "filter.h"

/* ---------------------------------------------------------------- the contract's bounds */

/* Each room names its bounds once; where they bound the same thing they agree. */
_Static_assert(PM_KEY_BYTES_MAX == PM_WIRE_KEY_BYTES_MAX, "key bytes: engine = wire");
_Static_assert(PM_VALUE_BYTES_MAX == PM_WIRE_VALUE_BYTES_MAX, "value bytes: engine = wire");
_Static_assert(PM_DIM_MAX == PM_WIRE_DIM_MAX, "dimension: engine = wire");
_Static_assert(PM_K_MAX == PM_WIRE_K_MAX, "k: engine = wire");
_Static_assert(PM_EF_MAX == PM_WIRE_EF_MAX, "ef: engine = wire");
_Static_assert(PM_COLLECTION_NAME_BYTES_MAX == PM_WIRE_COLLECTION_NAME_BYTES_MAX,
	       "collection name bytes: engine = wire");
_Static_assert(PM_COLLECTIONS_MAX == PM_WIRE_COLLECTIONS_MAX,
	       "a CLIST lists what a shard holds");
_Static_assert(PM_TTL_MS_MAX == PM_WIRE_TTL_MS_MAX, "TTL: engine = wire");
_Static_assert(PM_ATTR_BYTES_MAX == PM_WIRE_ATTR_BYTES_MAX, "attribute record: engine = wire");
_Static_assert(PM_FILTER_BYTES_MAX == PM_WIRE_FILTER_BYTES_MAX, "filter text: engine = wire");
_Static_assert(PM_BATCH_ITEMS_MAX == PM_WIRE_BATCH_ITEMS_MAX &&
		       PM_BATCH_HITS_MAX == PM_WIRE_BATCH_HITS_MAX &&
		       PM_RANGE_HITS_MAX == PM_WIRE_RANGE_HITS_MAX,
	       "batch and range bounds: engine = wire");
_Static_assert(PM_INFO_TEXT_BYTES_MAX == PM_WIRE_INFO_TEXT_BYTES_MAX,
	       "a shard's INFO text is an unpaged INFO reply's bound");

/* Ops, metrics, index kinds, element types and collection flags are the same
 * numbers, so an op or a parameter is copied as it is. (Compared as ints: they
 * are different enums.) */
#define SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME(PM_OP_NONE, PM_WIRE_OP_NONE) && SAME(PM_OP_SET, PM_WIRE_OP_SET) &&
		       SAME(PM_OP_GET, PM_WIRE_OP_GET) && SAME(PM_OP_DEL, PM_WIRE_OP_DEL) &&
		       SAME(PM_OP_INFO, PM_WIRE_OP_INFO) && SAME(PM_OP_VADD, PM_WIRE_OP_VADD) &&
		       SAME(PM_OP_VGET, PM_WIRE_OP_VGET) && SAME(PM_OP_VDEL, PM_WIRE_OP_VDEL) &&
		       SAME(PM_OP_VQUERY, PM_WIRE_OP_VQUERY) && SAME(PM_OP_CCREATE, PM_WIRE_OP_CCREATE) &&
		       SAME(PM_OP_CDROP, PM_WIRE_OP_CDROP) && SAME(PM_OP_CLIST, PM_WIRE_OP_CLIST) &&
		       SAME(PM_OP_SNAPSHOT, PM_WIRE_OP_SNAPSHOT) && SAME(PM_OP_MAP, PM_WIRE_OP_MAP) &&
		       SAME(PM_OP_VADDB, PM_WIRE_OP_VADDB) && SAME(PM_OP_VQUERYB, PM_WIRE_OP_VQUERYB) &&
		       SAME(PM_OP_VRANGE, PM_WIRE_OP_VRANGE) &&
		       SAME(PM_OP_AUTH_HELLO, PM_WIRE_OP_AUTH_HELLO) &&
		       SAME(PM_OP_AUTH_PROVE, PM_WIRE_OP_AUTH_PROVE) &&
		       SAME(PM_OP_COUNT, PM_WIRE_OP_COUNT),
	       "engine ops are the wire's op numbers");
_Static_assert(SAME(PM_METRIC_L2, PM_WIRE_METRIC_L2) && SAME(PM_METRIC_IP, PM_WIRE_METRIC_IP) &&
		       SAME(PM_METRIC_COSINE, PM_WIRE_METRIC_COSINE) &&
		       SAME(PM_METRIC_COUNT, PM_WIRE_METRIC_COUNT),
	       "metrics: engine = wire");
_Static_assert(SAME(PM_INDEX_FLAT, PM_WIRE_INDEX_FLAT) && SAME(PM_INDEX_HNSW, PM_WIRE_INDEX_HNSW) &&
		       SAME(PM_INDEX_COUNT, PM_WIRE_INDEX_COUNT),
	       "index kinds: engine = wire");
_Static_assert(SAME(PM_DTYPE_F32, PM_WIRE_DTYPE_F32) && SAME(PM_DTYPE_F16, PM_WIRE_DTYPE_F16) &&
		       SAME(PM_DTYPE_Q8, PM_WIRE_DTYPE_Q8) && SAME(PM_DTYPE_BIN, PM_WIRE_DTYPE_BIN) &&
		       SAME(PM_DTYPE_COUNT, PM_WIRE_DTYPE_COUNT) &&
		       PM_RERANK_K_MAX == PM_WIRE_RERANK_K_MAX,
	       "element types: engine = wire");
_Static_assert(PM_COLL_EVICTABLE == PM_WIRE_COLL_EVICTABLE &&
		       PM_COLL_FLAGS_ALL == PM_WIRE_COLL_FLAGS_ALL,
	       "collection flags: engine = wire");

/* ---------------------------------------------------------------- statuses */

enum pm_wire_status pm_status_to_wire(enum pm_status st)
{
	switch (st) {
	case PM_OK: return PM_WIRE_OK;
	case PM_NOT_FOUND: return PM_WIRE_NOT_FOUND;
	case PM_E_WRONGTYPE: return PM_WIRE_E_WRONGTYPE;
	case PM_E_NOMEM: return PM_WIRE_E_NOMEM;
	case PM_E_EXISTS: return PM_WIRE_E_EXISTS;
	case PM_E_TIMEOUT: return PM_WIRE_E_TIMEOUT;
	case PM_E_BUSY: return PM_WIRE_E_BUSY;
	case PM_E_DISK_FULL: return PM_WIRE_E_DISK_FULL;
	case PM_E_LOG_FAILED: return PM_WIRE_E_LOG_FAILED;
	case PM_E_THROTTLED: return PM_WIRE_E_THROTTLED;
	case PM_E_QUOTA: return PM_WIRE_E_QUOTA;
	case PM_E_WORK_LIMIT: return PM_WIRE_E_WORK_LIMIT;
	case PM_E_READONLY: return PM_WIRE_E_READONLY;
	case PM_E_NOREPLICAS: return PM_WIRE_E_NOREPLICAS;
	case PM_E_RETRY: return PM_WIRE_E_RETRY;
	case PM_E_AUTH: return PM_WIRE_E_AUTH;
	case PM_E_NOPERM: return PM_WIRE_E_NOPERM;
	case PM_E_KEY_LEN: return PM_WIRE_E_KEY_LEN;
	case PM_E_VALUE_LEN: return PM_WIRE_E_VALUE_LEN;
	case PM_E_DIM: return PM_WIRE_E_DIM;
	case PM_E_NAN: return PM_WIRE_E_NAN;
	case PM_E_ZERO_VECTOR: return PM_WIRE_E_ZERO_VECTOR;
	case PM_E_K: return PM_WIRE_E_K;
	case PM_E_EF: return PM_WIRE_E_EF;
	case PM_E_TTL: return PM_WIRE_E_TTL;
	case PM_E_COLLECTION_NAME: return PM_WIRE_E_COLLECTION_NAME;
	case PM_E_COLLECTIONS_FULL: return PM_WIRE_E_COLLECTIONS_FULL;
	case PM_E_PARAM: return PM_WIRE_E_PARAM;
	case PM_E_DTYPE: return PM_WIRE_E_DTYPE;
	case PM_E_FILTER: return PM_WIRE_E_FILTER;
	case PM_E_ATTR: return PM_WIRE_E_ATTR;
	case PM_E_BATCH: return PM_WIRE_E_BATCH;
	case PM_E_FRAME_TRUNCATED: return PM_WIRE_E_FRAME_TRUNCATED;
	case PM_E_FRAME_TOO_BIG: return PM_WIRE_E_FRAME_TOO_BIG;
	case PM_E_FRAME_MAGIC: return PM_WIRE_E_FRAME_MAGIC;
	case PM_E_FRAME_VERSION: return PM_WIRE_E_FRAME_VERSION;
	case PM_E_FRAME_OPCODE: return PM_WIRE_E_FRAME_OPCODE;
	case PM_E_FRAME_FLAGS: return PM_WIRE_E_FRAME_FLAGS;
	case PM_E_FRAME_LENGTH: return PM_WIRE_E_FRAME_LENGTH;
	case PM_E_INTERNAL: return PM_WIRE_E_INTERNAL;
	case PM_STATUS_COUNT: break;
	}
	return PM_WIRE_E_INTERNAL;
}

/* The inverse of the one switch above, so the table is written once. */
enum pm_status pm_status_from_wire(uint8_t code)
{
	if (code == PM_WIRE_OK)
		return PM_OK;
	for (int st = PM_OK; st < PM_E_INTERNAL; st++)
		if (pm_status_to_wire((enum pm_status)st) == code)
			return (enum pm_status)st;
	return PM_E_INTERNAL;
}

/* ---------------------------------------------------------------- messages */

static struct pm_collection_params params_from_wire(const struct pm_wire_coll_params *p)
{
	return (struct pm_collection_params){
		.dim = p->dim, .metric = p->metric, .index = p->index, .hnsw_m = p->hnsw_m,
		.ef_construction = p->ef_construction, .ef_search = p->ef_search,
		.flags = p->flags, .dtype = p->dtype, .rerank = p->rerank, .rerank_k = p->rerank_k,
	};
}

static struct pm_wire_coll_params params_to_wire(const struct pm_collection_params *p)
{
	return (struct pm_wire_coll_params){
		.dim = p->dim, .metric = p->metric, .index = p->index, .hnsw_m = p->hnsw_m,
		.ef_construction = p->ef_construction, .ef_search = p->ef_search,
		.flags = p->flags, .dtype = p->dtype, .rerank = p->rerank, .rerank_k = p->rerank_k,
	};
}

void pm_request_from_wire(const struct pm_wire_request *in, struct pm_request *out)
{
	*out = (struct pm_request){
		.op = in->op,
		.id = in->id,
		.key = pm_bytes_from_wire(in->key),
		.value = pm_bytes_from_wire(in->value),
		.collection = pm_bytes_from_wire(in->collection),
		.section = pm_bytes_from_wire(in->section),
		.info_flags = in->info_flags,
		.list_flags = in->list_flags,
		.vec = in->vec,
		.dim = in->dim,
		.k = in->k,
		.ef = in->ef,
		.ttl_ms = in->ttl_ms,
		.has_ttl = in->has_ttl,
		.exact = in->exact,
		.params = params_from_wire(&in->params),
		.attr = pm_bytes_from_wire(in->attr),
		.has_attr = in->attr.len != 0,
		.filter = pm_bytes_from_wire(in->filter),
		.part_shards = in->part_shards,
		.nitems = in->nitems,
		.items = pm_bytes_from_wire(in->items),
		.item_flags = in->item_flags,
		.radius = in->radius,
		.auth = in->auth,
		.auth_user = in->auth_user,
		.auth_proof = pm_bytes_from_wire(in->auth_proof),
	};
}

void pm_request_to_wire(const struct pm_request *in, struct pm_wire_request *out)
{
	*out = (struct pm_wire_request){
		.op = in->op,
		.id = in->id,
		.key = pm_bytes_to_wire(in->key),
		.value = pm_bytes_to_wire(in->value),
		.collection = pm_bytes_to_wire(in->collection),
		.section = pm_bytes_to_wire(in->section),
		.info_flags = in->info_flags,
		.list_flags = in->list_flags,
		.vec = in->vec,
		.dim = in->dim,
		.k = in->k,
		.ef = in->ef,
		.ttl_ms = in->ttl_ms,
		.has_ttl = in->has_ttl,
		.exact = in->exact,
		.params = params_to_wire(&in->params),
		.attr = in->has_attr || in->op == PM_OP_VSETATTR ? pm_bytes_to_wire(in->attr)
								 : (struct pm_wire_bytes){ 0 },
		.filter = pm_bytes_to_wire(in->filter),
		.part_shards = in->part_shards,
		.nitems = in->nitems,
		.items = pm_bytes_to_wire(in->items),
		.item_flags = in->item_flags,
		.radius = in->radius,
		.auth = in->auth,
		.auth_user = in->auth_user,
		.auth_proof = pm_bytes_to_wire(in->auth_proof),
	};
}

enum pm_status pm_request_item(const struct pm_request *batch, uint32_t *at,
			       struct pm_request *item)
{
	struct pm_wire_request b, it;
	pm_request_to_wire(batch, &b);
	enum pm_wire_status st = pm_wire_item_decode(&b, at, &it);
	pm_request_from_wire(&it, item);
	return st == PM_WIRE_OK ? PM_OK : pm_status_from_wire(st);
}

void pm_coll_info_from_wire(const struct pm_wire_coll_info *in, struct pm_coll_info *out)
{
	*out = (struct pm_coll_info){
		.name = pm_bytes_from_wire(in->name),
		.params = params_from_wire(&in->params),
		.count = in->count,
		.bytes = in->bytes,
	};
}

/* Everything of a reply but its list (hits, collections): their counts only,
 * which an error reply needs too (its cursor ends past them). */
static void reply_to_wire(const struct pm_reply *in, struct pm_wire_reply *out)
{
	*out = (struct pm_wire_reply){
		.status = pm_status_to_wire(in->status),
		.op = in->op,
		.id = in->id,
		.removed = in->removed,
		.value = pm_bytes_to_wire(in->value),
		.dim = in->dim,
		.dtype = in->dtype,
		.collection = pm_bytes_to_wire(in->collection),
		.attr = pm_bytes_to_wire(in->attr),
		.nhits = in->nhits,
		.ncolls = in->ncolls,
		.list_flags = in->list_flags,
		.item_status = in->item_status,
		.nitems = in->nitems,
		.range_flags = in->truncated ? PM_WIRE_RANGE_TRUNCATED : 0,
		.auth_reason = in->auth_reason,
		.snap_running = (uint8_t)(in->snap_running < UINT8_MAX ? in->snap_running : UINT8_MAX),
		.snap_pct = in->snap_pct,
	};
	if (in->op == PM_OP_AUTH_HELLO && in->challenge != NULL)
		memcpy(out->challenge, in->challenge, PM_AUTH_CHALLENGE_BYTES);
}

/* ---------------------------------------------------------------- frames */

enum pm_status pm_request_decode(const uint8_t *buf, size_t len, struct pm_request *req,
				 size_t *used)
{
	struct pm_wire_key_request k;
	if (pm_wire_key_request_decode(buf, len, &k, used)) { /* SET, GET, DEL: most of them */
		*req = (struct pm_request){
			.op = k.op,
			.id = k.id,
			.key = pm_bytes_from_wire(k.key),
			.value = pm_bytes_from_wire(k.value),
			.ttl_ms = k.ttl_ms,
			.has_ttl = k.has_ttl,
		};
		return PM_OK;
	}
	struct pm_wire_request w;
	enum pm_wire_status st = pm_wire_request_decode(buf, len, &w, used);
	pm_request_from_wire(&w, req);
	return st == PM_WIRE_OK ? PM_OK : pm_status_from_wire(st);
}

size_t pm_request_encode(const struct pm_request *req, uint8_t *out, size_t cap)
{
	struct pm_wire_request w;
	pm_request_to_wire(req, &w);
	return pm_wire_request_encode(&w, out, cap);
}

/* A successful VQUERY's or CLIST's page: its entries from the cursor on are
 * converted into a list on this function's stack, at the indexes the
 * engine's arrays use (the codec reads them from *cursor on). */
static __attribute__((noinline)) size_t encode_list(const struct pm_reply *rep,
						    struct pm_wire_reply *w, uint32_t *cursor,
						    uint8_t *out, size_t cap)
{
	union {
		struct pm_wire_hit hits[PM_K_MAX];
		struct pm_wire_coll_info colls[PM_COLLECTIONS_MAX];
	} list;
	uint32_t from = cursor ? *cursor : 0;
	if (rep->op == PM_OP_VQUERY || rep->op == PM_OP_VQUERYB || rep->op == PM_OP_VRANGE) {
		if (rep->nhits > PM_K_MAX)
			return 0;
		for (uint32_t i = from; i < rep->nhits; i++)
			list.hits[i] = (struct pm_wire_hit){ pm_bytes_to_wire(rep->keys[i]),
							     rep->hits[i].dist,
							     rep->hit_query ? rep->hit_query[i] : 0 };
		w->hits = list.hits;
	} else {
		if (rep->ncolls > PM_COLLECTIONS_MAX)
			return 0;
		for (uint32_t i = from; i < rep->ncolls; i++)
			list.colls[i] = (struct pm_wire_coll_info){
				.name = pm_bytes_to_wire(rep->colls[i].name),
				.params = params_to_wire(&rep->colls[i].params),
				.count = rep->colls[i].count,
				.bytes = rep->colls[i].bytes,
			};
		w->colls = list.colls;
	}
	return pm_wire_reply_encode(w, cursor, out, cap);
}

/* The primary a READONLY reply names: one per node (a replica follows one
 * primary), packed address << 32 | UDP port << 16 | TCP port, so that every
 * worker reads it whole without a lock. */
static _Atomic uint64_t readonly_primary;

void pm_reply_set_primary(const struct pm_wire_primary *p)
{
	uint64_t v = (uint64_t)p->addr_be << 32 | (uint64_t)p->udp_port << 16 | p->tcp_port;
	atomic_store_explicit(&readonly_primary, v, memory_order_relaxed);
}

void pm_reply_get_primary(struct pm_wire_primary *p)
{
	uint64_t v = atomic_load_explicit(&readonly_primary, memory_order_relaxed);
	*p = (struct pm_wire_primary){ .addr_be = (uint32_t)(v >> 32),
				       .udp_port = (uint16_t)(v >> 16), .tcp_port = (uint16_t)v };
}

size_t pm_reply_encode(const struct pm_reply *rep, uint32_t *cursor, uint8_t *out, size_t cap)
{
	struct pm_wire_reply w;
	reply_to_wire(rep, &w);
	if (rep->status == PM_E_READONLY)
		pm_reply_get_primary(&w.primary);
	if (rep->status == PM_OK && (rep->op == PM_OP_VQUERY || rep->op == PM_OP_CLIST ||
				     rep->op == PM_OP_VQUERYB || rep->op == PM_OP_VRANGE))
		return encode_list(rep, &w, cursor, out, cap);
	return pm_wire_reply_encode(&w, cursor, out, cap);
}

uint32_t pm_reply_items(const struct pm_reply *rep)
{
	struct pm_wire_reply w = { .op = rep->op, .value = pm_bytes_to_wire(rep->value),
				   .nhits = rep->nhits, .ncolls = rep->ncolls };
	return pm_wire_reply_items(&w);
}

bool pm_reply_paged(const struct pm_reply *rep)
{
	return rep->status == PM_OK && pm_wire_op_paged(rep->op);
}
