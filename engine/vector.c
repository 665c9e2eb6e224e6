/* SPDX-License-Identifier: MIT
 *
 * vector.c — collections, their member lists, and vector put / get / delete
 * (layout in vector.h).
 *
 * Every mutation acquires what it needs (blob, collection slot, member slot)
 * before it changes anything, so a request refused for lack of memory leaves the
 * shard exactly as it was.
 */
#include <string.h>

#include "attr.h"
#include "common.h"
#include "evict.h"
#include "hash.h"
#include "knn.h"
#include "kv.h"
#include "quant.h"
#include "vector.h"

#define KEY_INLINE_KLEN_MAX (PM_SEED_INLINE_BYTES - sizeof(uint64_t)) /* 40 */
/* Re-rank candidates whose f32 is being fetched while one is measured: one
 * vector's lines in flight cover a 784-d f32 (49 lines) on this class of
 * machine; more only evicts what the search left in the cache. */
#define RERANK_PREFETCH_AHEAD 1u
#define DIR_CAP_INITIAL 8u
#define CHUNK_BYTES (PM_MEMBER_CHUNK_ENTRIES * sizeof(uint64_t))

static inline struct pm_vec_header *vec_header(const struct pm_shard *sh, uint64_t off)
{
	return pm_at(&sh->arena, off);
}

static inline uint32_t vec_blob_bytes(const struct pm_shard *sh, const struct pm_seed *s)
{
	return vec_header(sh, pm_seed_blob(s))->blob_bytes;
}

/* ---------------------------------------------------------------- parameters */

enum pm_status pm_coll_params_check(struct pm_collection_params *p)
{
	if (p->dim == 0 || p->dim > PM_DIM_MAX)
		return PM_E_DIM;
	if (p->metric >= PM_METRIC_COUNT || p->index >= PM_INDEX_COUNT)
		return PM_E_PARAM;
	if (p->hnsw_m == 0)
		p->hnsw_m = PM_HNSW_M_DEFAULT;
	if (p->ef_construction == 0)
		p->ef_construction = PM_HNSW_EF_CONSTRUCTION_DEFAULT;
	if (p->ef_search == 0)
		p->ef_search = PM_HNSW_EF_SEARCH_DEFAULT;
	if (p->hnsw_m < PM_HNSW_M_MIN || p->hnsw_m > PM_HNSW_M_MAX)
		return PM_E_PARAM;
	if (p->ef_construction > PM_EF_MAX || p->ef_search > PM_EF_MAX)
		return PM_E_EF;
	if (p->flags & ~PM_COLL_FLAGS_ALL)
		return PM_E_PARAM;
	if (p->dtype >= PM_DTYPE_COUNT)
		return PM_E_DTYPE;
	/* f32 has nothing to re-rank with; a count needs rerank on */
	if (p->rerank > 1 || (p->rerank && p->dtype == PM_DTYPE_F32) ||
	    (!p->rerank && p->rerank_k) || p->rerank_k > PM_RERANK_K_MAX)
		return PM_E_PARAM;
	if (p->rerank && p->rerank_k == 0)
		p->rerank_k = PM_RERANK_K_DEFAULT;
	p->reserved = 0;
	return PM_OK;
}

/* ---------------------------------------------------------------- collections */

struct pm_collection *pm_coll_find(struct pm_shard *sh, const uint8_t *name, uint32_t nlen)
{
	for (uint32_t i = 0; i < PM_COLLECTIONS_MAX; i++) {
		struct pm_collection *c = &sh->colls[i];
		if (c->live && !c->is_default && !c->dropping && c->name_len == nlen &&
		    !memcmp(c->name, name, nlen))
			return c;
	}
	return NULL;
}

struct pm_collection *pm_coll_default(struct pm_shard *sh, uint32_t dim)
{
	for (uint32_t i = 0; i < PM_COLLECTIONS_MAX; i++) {
		struct pm_collection *c = &sh->colls[i];
		if (c->live && c->is_default && c->params.dim == dim)
			return c;
	}
	return NULL;
}

static struct pm_collection *coll_claim(struct pm_shard *sh)
{
	/* the table is full of live and dropped ones: finish a drop now */
	for (uint32_t i = 0; sh->ncolls == PM_COLLECTIONS_MAX && i < PM_COLLECTIONS_MAX; i++)
		if (sh->colls[i].live && sh->colls[i].dropping)
			(void)pm_coll_drop_slice(sh, &sh->colls[i], UINT32_MAX);
	for (uint32_t i = 0; i < PM_COLLECTIONS_MAX; i++) {
		struct pm_collection *c = &sh->colls[i];
		if (!c->live) {
			memset(c, 0, sizeof(*c));
			c->live = true;
			if (++sh->coll_gen == 0)
				sh->coll_gen = 1;
			c->gen = sh->coll_gen;
			sh->ncolls++;
			return c;
		}
	}
	return NULL;
}

static void coll_release(struct pm_shard *sh, struct pm_collection *c)
{
	PM_ASSERT(c->count == 0);
	if (c->params.index == PM_INDEX_HNSW)
		pm_hnsw_destroy(sh, c);
	if (c->attr_stats_off)
		pm_blob_free(&sh->arena, c->attr_stats_off, sizeof(struct pm_attr_stats));
	const uint64_t *dir = c->dir_off ? pm_at(&sh->arena, c->dir_off) : NULL;
	for (uint32_t i = 0; i < c->nchunks; i++)
		pm_blob_free(&sh->arena, dir[i], CHUNK_BYTES);
	if (c->dir_off)
		pm_blob_free(&sh->arena, c->dir_off, c->dir_cap * sizeof(uint64_t));
	memset(c, 0, sizeof(*c));
	sh->ncolls--;
}

enum pm_status pm_coll_create(struct pm_shard *sh, const uint8_t *name, uint32_t nlen,
			      const struct pm_collection_params *p)
{
	if (nlen == 0 || nlen > PM_COLLECTION_NAME_BYTES_MAX)
		return PM_E_COLLECTION_NAME;
	struct pm_collection_params q = *p;
	enum pm_status st = pm_coll_params_check(&q);
	if (st != PM_OK)
		return st;
	struct pm_collection *c = pm_coll_find(sh, name, nlen);
	if (c)
		return memcmp(&c->params, &q, sizeof(q)) ? PM_E_EXISTS : PM_OK;
	if (!(c = coll_claim(sh)))
		return PM_E_COLLECTIONS_FULL;
	c->name_len = (uint8_t)nlen;
	memcpy(c->name, name, nlen);
	c->params = q;
	if (q.index == PM_INDEX_HNSW)
		pm_hnsw_init(&c->hnsw, &q);
	return PM_OK;
}

static uint64_t seed_hash(const struct pm_shard *sh, uint32_t idx)
{
	const struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	return pm_hash(pm_seed_key(&sh->arena, s), s->klen);
}

/* O(1): the collection is marked; no request finds it or its vectors from
 * now on (pm_ks_find deletes a dropped collection's vector it meets), and
 * pm_shard_maintain frees it in slices. */
enum pm_status pm_coll_drop(struct pm_shard *sh, const uint8_t *name, uint32_t nlen)
{
	if (nlen == 0 || nlen > PM_COLLECTION_NAME_BYTES_MAX)
		return PM_E_COLLECTION_NAME;
	struct pm_collection *c = pm_coll_find(sh, name, nlen);
	if (!c)
		return PM_NOT_FOUND;
	c->dropping = true;
	sh->ncolls_dropping++;
	return PM_OK;
}

bool pm_coll_drop_slice(struct pm_shard *sh, struct pm_collection *c, uint32_t budget)
{
	PM_ASSERT(c->live && c->dropping);
	for (; budget && c->count; budget--) {
		uint64_t off = pm_coll_member(sh, c, c->count - 1);
		uint32_t idx = vec_header(sh, off)->seed;
		pm_ks_delete(sh, idx, seed_hash(sh, idx));
	}
	if (c->count || (c->params.index == PM_INDEX_HNSW && !pm_hnsw_destroy_slice(sh, c, &budget)))
		return false;
	sh->ncolls_dropping--;
	coll_release(sh, c);
	return true;
}

uint32_t pm_coll_list(const struct pm_shard *sh, struct pm_coll_info *out)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < PM_COLLECTIONS_MAX; i++) {
		const struct pm_collection *c = &sh->colls[i];
		if (!c->live || c->dropping)
			continue;
		out[n].name.ptr = c->name;
		out[n].name.len = c->name_len;
		out[n].params = c->params;
		out[n].count = c->count;
		out[n].bytes = c->bytes;
		n++;
	}
	return n;
}

/* ---------------------------------------------------------------- member lists */

static bool dir_grow(struct pm_shard *sh, struct pm_collection *c)
{
	uint32_t cap = c->dir_cap ? c->dir_cap * 2 : DIR_CAP_INITIAL;
	uint64_t off = pm_blob_alloc(&sh->arena, cap * sizeof(uint64_t));
	if (!off)
		return false;
	if (c->dir_off) {
		memcpy(pm_at(&sh->arena, off), pm_at(&sh->arena, c->dir_off),
		       c->nchunks * sizeof(uint64_t));
		pm_blob_free(&sh->arena, c->dir_off, c->dir_cap * sizeof(uint64_t));
	}
	c->dir_off = off;
	c->dir_cap = cap;
	return true;
}

/* Make room for one more member; false (nothing changed) when out of memory. */
static bool members_reserve(struct pm_shard *sh, struct pm_collection *c)
{
	if (c->count < (uint64_t)c->nchunks * PM_MEMBER_CHUNK_ENTRIES)
		return true;
	if (c->nchunks == c->dir_cap && !dir_grow(sh, c))
		return false;
	uint64_t chunk = pm_blob_alloc(&sh->arena, CHUNK_BYTES);
	if (!chunk)
		return false;
	uint64_t *dir = pm_at(&sh->arena, c->dir_off);
	dir[c->nchunks++] = chunk;
	return true;
}

static void member_set(struct pm_shard *sh, struct pm_collection *c, uint64_t i, uint64_t off)
{
	const uint64_t *dir = pm_at(&sh->arena, c->dir_off);
	uint64_t *chunk = pm_at(&sh->arena, dir[i / PM_MEMBER_CHUNK_ENTRIES]);
	chunk[i % PM_MEMBER_CHUNK_ENTRIES] = off;
	vec_header(sh, off)->member = (uint32_t)i;
}

/* Swap-remove member i; keep at most one spare chunk. */
static void member_remove(struct pm_shard *sh, struct pm_collection *c, uint64_t i)
{
	uint64_t last = c->count - 1;
	c->mutations++;
	if (i != last)
		member_set(sh, c, i, pm_coll_member(sh, c, last));
	c->count = last;
	uint32_t in_use = (uint32_t)((c->count + PM_MEMBER_CHUNK_ENTRIES - 1) / PM_MEMBER_CHUNK_ENTRIES);
	uint64_t *dir = pm_at(&sh->arena, c->dir_off);
	while (c->nchunks > in_use + 1)
		pm_blob_free(&sh->arena, dir[--c->nchunks], CHUNK_BYTES);
}

/* ---------------------------------------------------------------- vectors */

enum pm_status pm_vec_load(float *dst, const uint8_t *src, uint32_t dim)
{
	for (uint32_t i = 0; i < dim; i++) {
		uint32_t bits;
		memcpy(&bits, src + 4 * (size_t)i, 4);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
		bits = __builtin_bswap32(bits);
#endif
		if ((bits & 0x7F800000u) == 0x7F800000u) /* exponent all ones: NaN or Inf */
			return PM_E_NAN;
		memcpy(&dst[i], &bits, 4);
	}
	return PM_OK;
}

static void attr_detach(struct pm_shard *sh, struct pm_collection *c, struct pm_vec_header *h);

void pm_vec_unlink(struct pm_shard *sh, uint32_t idx)
{
	struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	PM_ASSERT(s->kind == PM_SEED_VECTOR);
	uint64_t off = pm_seed_blob(s);
	uint32_t bytes = vec_blob_bytes(sh, s);
	struct pm_collection *c = &sh->colls[s->coll];
	PM_ASSERT(c->live && vec_header(sh, off)->seed == idx);
	attr_detach(sh, c, vec_header(sh, off));
	member_remove(sh, c, vec_header(sh, off)->member);
	c->bytes -= pm_blob_class_bytes(pm_blob_class(bytes));
	if (c->params.index == PM_INDEX_HNSW && c->dropping)
		; /* the graph goes whole, blobs included (pm_hnsw_destroy_slice) */
	else if (c->params.index == PM_INDEX_HNSW)
		pm_hnsw_remove(sh, c, off); /* the index frees the blob once unlinked */
	else
		pm_blob_free(&sh->arena, off, bytes);
	if (c->is_default && c->count == 0)
		coll_release(sh, c);
}

/* Find the target collection; a default one is created on demand. */
static enum pm_status coll_for_put(struct pm_shard *sh, const uint8_t *name, uint32_t nlen,
				   uint32_t dim, struct pm_collection **out)
{
	struct pm_collection *c = nlen ? pm_coll_find(sh, name, nlen) : pm_coll_default(sh, dim);
	if (!c && nlen)
		return PM_NOT_FOUND;
	if (!c) {
		if (!(c = coll_claim(sh)))
			return PM_E_COLLECTIONS_FULL;
		c->is_default = true;
		c->params = (struct pm_collection_params){ .dim = dim };
		(void)pm_coll_params_check(&c->params);
	}
	if (c->params.dim != dim)
		return PM_E_DIM;
	*out = c;
	return PM_OK;
}

/* Drop a default collection that a failed put created and left empty. */
static void coll_abandon(struct pm_shard *sh, struct pm_collection *c)
{
	if (c->is_default && c->count == 0)
		coll_release(sh, c);
}

/* Bytes of a vector blob of a collection of params p: header, payload,
 * level-0 links (HNSW). */
static uint32_t vec_vlen_of(const struct pm_collection_params *p)
{
	uint32_t links = p->index == PM_INDEX_HNSW ? pm_hnsw_links0_bytes(pm_hnsw_m0_of(p->hnsw_m)) : 0;
	return PM_VEC_HEADER_BYTES + pm_quant_stored_bytes(p) + links;
}

/* The blob request of a vector of c whose blob content is `bytes` (vlen and
 * a long key). A graph node is at least PM_BLOB_ALIGNED_BYTES_MIN (the arena
 * cuts it aligned: the node table addresses it in PM_HNSW_UNIT_BYTES units).
 * A payload of whole cache lines (f32 of a dimension divisible by 16, q8 of
 * one divisible by 64) is kept on a cache line, so its loads never split two
 * lines: the request is padded to whole lines, which the arena cuts 64-byte
 * aligned. A payload that ends inside a line (100 floats) spans a partial
 * line wherever it starts; its blob takes the nearest class, which may be a
 * 32-byte step (a 100-d f32 node: 592 bytes in 608, not 640). */
#define VEC_LINE_BYTES 64u /* a cache line: what a payload is kept aligned to */
_Static_assert(PM_VEC_HEADER_BYTES % VEC_LINE_BYTES == 0, "the payload starts a line");

static uint32_t vec_blob_request_of(const struct pm_collection_params *p, uint32_t bytes,
				    bool node)
{
	if (node)
		bytes = PM_MAX(bytes, PM_BLOB_ALIGNED_BYTES_MIN);
	if (bytes >= PM_BLOB_ALIGNED_BYTES_MIN && pm_quant_payload_bytes(p) % VEC_LINE_BYTES == 0)
		bytes = (uint32_t)pm_align_up(bytes, VEC_LINE_BYTES);
	return bytes;
}

/* The blob request of a new vector of params p and a key of klen bytes. */
static uint32_t vec_new_request(const struct pm_collection_params *p, uint32_t klen, bool node)
{
	return vec_blob_request_of(p, vec_vlen_of(p) + (klen > KEY_INLINE_KLEN_MAX ? klen : 0), node);
}

uint64_t pm_vec_blob_bytes(const struct pm_collection_params *p, uint32_t klen)
{
	return pm_blob_class_bytes(pm_blob_class(vec_new_request(p, klen, p->index == PM_INDEX_HNSW)));
}

/* Where a re-ranking collection keeps the f32: after the level-0 links. */
static uint8_t *vec_kept_at(const struct pm_collection *c, const struct pm_vec_header *h)
{
	uint32_t links = c->params.index == PM_INDEX_HNSW ? pm_hnsw_links0_bytes(c->hnsw.m0) : 0;
	return (uint8_t *)(h + 1) + h->payload_len + links;
}

const float *pm_vec_kept(const struct pm_collection *c, const struct pm_vec_header *h)
{
	PM_ASSERT(pm_vec_reranks(c));
	return (const float *)vec_kept_at(c, h);
}

/* What a put stores: the f32 vector in sh->query, quantised here, or (stored
 * not NULL) a snapshot's stored form, copied. */
struct vec_src {
	const struct pm_vec_stored *stored;
	float norm;
};

/* Write the payload of h (payload_len set) and its norm and scale from src. */
static void vec_encode(const struct pm_shard *sh, const struct pm_collection *c,
		       struct pm_vec_header *h, const struct vec_src *src)
{
	uint8_t *p = (uint8_t *)(h + 1);
	const uint8_t dtype = c->params.dtype;
	const uint32_t dim = c->params.dim;
	h->norm = src->norm;
	const uint32_t kept = pm_quant_kept_bytes(&c->params);
	if (src->stored) {
		memcpy(p, src->stored->payload, h->payload_len);
		memcpy(vec_kept_at(c, h), src->stored->payload + h->payload_len, kept);
		h->qscale = src->stored->qscale;
		return;
	}
	uint32_t code = pm_quant_code_bytes(dtype, dim);
	pm_quant_encode(dtype, sh->query, dim, p, &h->qscale);
	if (dtype == PM_DTYPE_F32)
		return;
	memset(p + code, 0, h->payload_len - code); /* padding is zero: snapshots copy it */
	memcpy(vec_kept_at(c, h), sh->query, kept);
}

/* Write header and payload (from src) into a fresh blob. */
static void vec_fill(struct pm_shard *sh, uint64_t off, const struct pm_collection *c,
		     uint32_t dim, const struct vec_src *src, uint32_t blob_bytes)
{
	struct pm_vec_header *h = vec_header(sh, off);
	*h = (struct pm_vec_header){
		.payload_len = pm_quant_payload_bytes(&c->params),
		.dim = dim,
		.dtype = c->params.dtype,
		.coll = (uint16_t)(c - sh->colls),
		.seed = PM_SEED_NONE,
		.node = PM_VEC_NODE_NONE,
		.blob_bytes = blob_bytes,
	};
	vec_encode(sh, c, h, src);
}

/* Point seed idx at the filled blob off and append it to c's members (room was
 * reserved). */
static void vec_link(struct pm_shard *sh, uint32_t idx, uint64_t off, struct pm_collection *c,
		     const uint8_t *key, uint32_t klen, uint32_t vlen)
{
	struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	s->kind = PM_SEED_VECTOR;
	s->klen = (uint16_t)klen;
	s->vlen = vlen;
	s->layout = klen <= KEY_INLINE_KLEN_MAX ? PM_LAYOUT_KEY_INLINE : PM_LAYOUT_BLOB;
	s->coll = (uint16_t)(c - sh->colls);
	memcpy(s->data, &off, sizeof(off));
	struct pm_vec_header *h = vec_header(sh, off);
	h->seed = idx;
	if (s->layout == PM_LAYOUT_KEY_INLINE)
		memcpy(s->data + sizeof(off), key, klen);
	else
		memcpy((uint8_t *)h + vlen, key, klen);
	member_set(sh, c, c->count++, off);
	c->mutations++;
	c->bytes += pm_blob_class_bytes(pm_blob_class(h->blob_bytes));
}

/* Most bytes an insert of a `need`-byte blob into c adds to mem_used (the
 * old blob of a vector that moves is not subtracted): the seed of a new key,
 * the blob, a member-list chunk and directory if due, and what the HNSW
 * insert can allocate. */
static uint64_t vec_growth(const struct pm_shard *sh, const struct pm_collection *c,
			   uint32_t need, bool new_key)
{
	uint64_t bytes = (new_key ? PM_SEED_BYTES : 0) + pm_blob_footprint(need);
	if (c->count >= (uint64_t)c->nchunks * PM_MEMBER_CHUNK_ENTRIES) {
		bytes += pm_blob_footprint(CHUNK_BYTES);
		if (c->nchunks == c->dir_cap)
			bytes += pm_blob_footprint((c->dir_cap ? c->dir_cap * 2 : DIR_CAP_INITIAL) *
						   (uint32_t)sizeof(uint64_t));
	}
	return bytes + (c->params.index == PM_INDEX_HNSW ? pm_hnsw_insert_bytes(sh, c) : 0);
}

/* A new vector seed, or an existing one moving to another collection. Every
 * resource is secured before the first change, so a refusal changes nothing
 * (but for what was evicted to make room). */
static enum pm_status vec_insert(struct pm_shard *sh, uint32_t *idxp, const uint8_t *key,
				 uint32_t klen, uint64_t hash, struct pm_collection *c,
				 uint32_t dim, const struct vec_src *src, uint64_t now_ms)
{
	const bool hnsw = c->params.index == PM_INDEX_HNSW;
	PM_ASSERT(dim == c->params.dim);
	PM_ASSERT(!hnsw || c->hnsw.m0 == pm_hnsw_m0_of(c->params.hnsw_m));
	uint32_t vlen = vec_vlen_of(&c->params);
	uint32_t need = vec_new_request(&c->params, klen, hnsw);
	uint32_t idx = *idxp;
	uint64_t off = 0;
	if (pm_evict_make_room(sh, vec_growth(sh, c, need, idx == PM_SEED_NONE), idx, now_ms) != PM_OK)
		goto nomem;
	off = pm_blob_alloc(&sh->arena, need);
	if (!off || !members_reserve(sh, c) || (idx == PM_SEED_NONE && !pm_seed_available(&sh->arena)))
		goto nomem;
	vec_fill(sh, off, c, dim, src, need);
	if (hnsw && pm_hnsw_insert(sh, c, off) != PM_OK)
		goto nomem;
	if (idx != PM_SEED_NONE) { /* a move keeps the key's access frequency */
		vec_header(sh, off)->lfu = vec_header(sh, pm_seed_blob(pm_seed_at(&sh->arena, idx)))->lfu;
		pm_vec_unlink(sh, idx);
	} else {
		idx = pm_seed_alloc(&sh->arena);
		pm_seedmap_insert(&sh->map, &sh->arena, hash, idx);
		sh->stats.vectors++;
	}
	vec_link(sh, idx, off, c, key, klen, vlen);
	if (*idxp == PM_SEED_NONE)
		pm_lfu_init(sh, pm_seed_at(&sh->arena, idx), now_ms);
	*idxp = idx;
	return PM_OK;
nomem:
	if (off)
		pm_blob_free(&sh->arena, off, need);
	coll_abandon(sh, c);
	return PM_E_NOMEM;
}

enum pm_status pm_vec_restore(struct pm_shard *sh, struct pm_collection *c, const uint8_t *key,
			      uint32_t klen, uint64_t hash, const struct pm_vec_stored *st,
			      uint64_t expire_at_ms, uint64_t now_ms, uint64_t *offp)
{
	uint32_t dim = c->params.dim;
	uint32_t vlen = vec_vlen_of(&c->params);
	uint32_t need = vec_new_request(&c->params, klen, true);
	uint64_t off = pm_blob_alloc(&sh->arena, need);
	if (!off || (klen && (!members_reserve(sh, c) || !pm_seed_available(&sh->arena)))) {
		if (off)
			pm_blob_free(&sh->arena, off, need);
		return PM_E_NOMEM;
	}
	vec_fill(sh, off, c, dim, &(struct vec_src){ st, st->norm }, need);
	if (klen) {
		uint32_t idx = pm_seed_alloc(&sh->arena);
		pm_seedmap_insert(&sh->map, &sh->arena, hash, idx);
		sh->stats.vectors++;
		vec_link(sh, idx, off, c, key, klen, vlen);
		pm_seed_set_expiry(pm_seed_at(&sh->arena, idx), expire_at_ms);
		pm_lfu_init(sh, pm_seed_at(&sh->arena, idx), now_ms);
	}
	*offp = off;
	return PM_OK;
}

/* The put of pm_vec_put and pm_vec_put_stored, its arguments checked and
 * the vector in src (sh->query holding the f32 when src->stored is NULL). */
static enum pm_status vec_put(struct pm_shard *sh, const uint8_t *key, uint32_t klen,
			      uint64_t hash, const uint8_t *name, uint32_t nlen, uint32_t dim,
			      const struct vec_src *src, uint64_t expire_at_ms, uint64_t now_ms)
{
	uint32_t idx = pm_ks_find(sh, key, klen, hash, now_ms);
	if (idx != PM_SEED_NONE && pm_seed_at(&sh->arena, idx)->kind != PM_SEED_VECTOR)
		return PM_E_WRONGTYPE;
	struct pm_collection *c;
	enum pm_status st = coll_for_put(sh, name, nlen, dim, &c);
	if (st != PM_OK)
		return st;
	if (c->params.metric == PM_METRIC_COSINE && !(src->norm > 0.0f))
		return PM_E_ZERO_VECTOR;
	struct pm_seed *s = idx == PM_SEED_NONE ? NULL : pm_seed_at(&sh->arena, idx);
	if (s && &sh->colls[s->coll] == c) { /* same collection: update in place (no memory) */
		vec_encode(sh, c, vec_header(sh, pm_seed_blob(s)), src);
		c->mutations++;
		if (c->params.index == PM_INDEX_HNSW)
			pm_hnsw_update(sh, c, pm_seed_blob(s));
	} else if ((st = vec_insert(sh, &idx, key, klen, hash, c, dim, src, now_ms)) != PM_OK) {
		return st;
	}
	s = pm_seed_at(&sh->arena, idx);
	pm_seed_set_expiry(s, expire_at_ms);
	if (sh->evict.cfg.maxmemory_bytes)
		pm_lfu_touch(sh, s, now_ms);
	return PM_OK;
}

static enum pm_status put_args_check(uint32_t klen, uint32_t nlen, uint32_t dim)
{
	if (klen == 0 || klen > PM_KEY_BYTES_MAX)
		return PM_E_KEY_LEN;
	if (nlen > PM_COLLECTION_NAME_BYTES_MAX)
		return PM_E_COLLECTION_NAME;
	if (dim == 0 || dim > PM_DIM_MAX)
		return PM_E_DIM;
	return PM_OK;
}

enum pm_status pm_vec_put(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			  const uint8_t *name, uint32_t nlen, const uint8_t *vec, uint32_t dim,
			  uint64_t expire_at_ms, uint64_t now_ms)
{
	enum pm_status st = put_args_check(klen, nlen, dim);
	if (st == PM_OK)
		st = pm_vec_load(sh->query, vec, dim);
	if (st != PM_OK)
		return st;
	struct vec_src src = { NULL, pm_norm(sh->query, dim) };
	return vec_put(sh, key, klen, hash, name, nlen, dim, &src, expire_at_ms, now_ms);
}

enum pm_status pm_vec_put_stored(struct pm_shard *sh, const uint8_t *key, uint32_t klen,
				 uint64_t hash, const uint8_t *name, uint32_t nlen, uint32_t dim,
				 const struct pm_vec_stored *stored, uint64_t expire_at_ms,
				 uint64_t now_ms)
{
	enum pm_status st = put_args_check(klen, nlen, dim);
	if (st != PM_OK)
		return st;
	struct vec_src src = { stored, stored->norm };
	return vec_put(sh, key, klen, hash, name, nlen, dim, &src, expire_at_ms, now_ms);
}

enum pm_status pm_vec_get(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			  uint64_t now_ms, const struct pm_vec_header **hdr, struct pm_bytes *coll)
{
	if (klen == 0 || klen > PM_KEY_BYTES_MAX)
		return PM_E_KEY_LEN;
	uint32_t idx = pm_ks_find(sh, key, klen, hash, now_ms);
	if (idx == PM_SEED_NONE)
		return PM_NOT_FOUND;
	struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	if (s->kind != PM_SEED_VECTOR)
		return PM_E_WRONGTYPE;
	if (sh->evict.cfg.maxmemory_bytes)
		pm_lfu_touch(sh, s, now_ms);
	const struct pm_collection *c = &sh->colls[s->coll];
	*hdr = vec_header(sh, pm_seed_blob(s));
	coll->ptr = c->name;
	coll->len = c->is_default ? 0 : c->name_len;
	return PM_OK;
}

enum pm_status pm_vec_del(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			  uint64_t now_ms)
{
	return pm_ks_del(sh, key, klen, hash, now_ms, PM_SEED_VECTOR);
}

/* ---------------------------------------------------------------- element types */

void pm_vec_f32(const struct pm_collection *c, const struct pm_vec_header *h, float *out)
{
	const uint8_t dtype = c->params.dtype;
	const uint32_t dim = c->params.dim;
	if (pm_vec_reranks(c))
		memcpy(out, vec_kept_at(c, h), 4u * (size_t)dim);
	else
		pm_quant_decode(dtype, pm_vec_payload(h), h->qscale, h->norm, dim, out);
}

uint32_t pm_vec_rerank_candidates(const struct pm_collection *c, uint32_t k)
{
	return pm_vec_reranks(c) ? PM_MAX(k, c->params.rerank_k) : k;
}

/* Heapsort by (distance, key): n is up to PM_RERANK_K_MAX, so no quadratic sort. */
static void hits_sift(const struct pm_shard *sh, struct pm_knn_hit *h, uint32_t i, uint32_t n)
{
	struct pm_knn_hit x = h[i];
	for (uint32_t c; (c = 2 * i + 1) < n; i = c) {
		if (c + 1 < n && pm_knn_hit_cmp(sh, &h[c + 1], &h[c]) > 0)
			c++;
		if (pm_knn_hit_cmp(sh, &h[c], &x) <= 0)
			break;
		h[i] = h[c];
	}
	h[i] = x;
}

static void hits_sort(const struct pm_shard *sh, struct pm_knn_hit *h, uint32_t n)
{
	for (uint32_t i = n / 2; i-- > 0;)
		hits_sift(sh, h, i, n);
	for (uint32_t end = n; end > 1; end--) {
		struct pm_knn_hit top = h[0];
		h[0] = h[end - 1];
		h[end - 1] = top;
		hits_sift(sh, h, 0, end - 1);
	}
}

uint32_t pm_vec_rerank(const struct pm_shard *sh, const struct pm_collection *c, const float *q,
		       float qnorm, struct pm_knn_hit *hits, uint32_t n, uint32_t k)
{
	PM_ASSERT(pm_vec_reranks(c));
	const uint32_t dim = c->params.dim;
	const struct pm_vec_header *h[RERANK_PREFETCH_AHEAD + 1] = { 0 };
	/* the f32 of candidate i + RERANK_PREFETCH_AHEAD is fetched, whole, while
	 * candidate i is measured: the candidates' vectors are cold */
	for (uint32_t i = 0; i < n + RERANK_PREFETCH_AHEAD; i++) {
		uint32_t slot = i % (RERANK_PREFETCH_AHEAD + 1);
		if (i >= RERANK_PREFETCH_AHEAD) {
			uint32_t j = i - RERANK_PREFETCH_AHEAD;
			const struct pm_vec_header *x = h[j % (RERANK_PREFETCH_AHEAD + 1)];
			hits[j].dist = pm_knn_distance(sh->kern, c->params.metric, q, qnorm,
						       (const float *)vec_kept_at(c, x), x->norm, dim);
		}
		if (i < n) {
			const struct pm_seed *s = pm_seed_at(&sh->arena, hits[i].seed);
			h[slot] = vec_header(sh, pm_seed_blob(s));
			const uint8_t *v = vec_kept_at(c, h[slot]);
			for (uint32_t off = 0; off < 4u * dim; off += 64)
				__builtin_prefetch(v + off);
		}
	}
	hits_sort(sh, hits, n);
	return PM_MIN(n, k);
}

/* ---------------------------------------------------------------- attributes */

const struct pm_attr_stats *pm_coll_attr_stats(const struct pm_shard *sh,
					       const struct pm_collection *c)
{
	return c->attr_stats_off ? pm_at(&sh->arena, c->attr_stats_off) : NULL;
}

/* The record leaves the vector: out of c's statistics, its blob freed. */
static void attr_detach(struct pm_shard *sh, struct pm_collection *c, struct pm_vec_header *h)
{
	if (!h->attr_off)
		return;
	const uint8_t *rec = pm_at(&sh->arena, h->attr_off);
	if (c->attr_stats_off)
		pm_attr_stats_apply(pm_at(&sh->arena, c->attr_stats_off), rec, -1);
	pm_blob_free(&sh->arena, h->attr_off, pm_attr_len(rec));
	h->attr_off = 0;
	c->mutations++;
}

/* Blob rec_off (a copy of a valid record, or 0 for none) becomes the record
 * of the vector h of c. */
static void attr_attach(struct pm_shard *sh, struct pm_collection *c, struct pm_vec_header *h,
			uint64_t rec_off)
{
	attr_detach(sh, c, h);
	if (!rec_off)
		return;
	h->attr_off = rec_off;
	c->mutations++;
	if (!c->attr_stats_off && !c->attr_stats_lost) {
		c->attr_stats_off = pm_blob_alloc(&sh->arena, sizeof(struct pm_attr_stats));
		if (c->attr_stats_off)
			pm_attr_stats_init(pm_at(&sh->arena, c->attr_stats_off));
		else
			c->attr_stats_lost = true; /* estimates turn "unknown"; results stay exact */
	}
	if (c->attr_stats_off)
		pm_attr_stats_apply(pm_at(&sh->arena, c->attr_stats_off),
				    pm_at(&sh->arena, rec_off), +1);
}

/* A blob holding a copy of the record attr[0, alen): its offset, 0 for the
 * empty record (no blob needed); PM_E_ATTR / PM_E_NOMEM. */
static enum pm_status attr_copy(struct pm_shard *sh, const uint8_t *attr, uint32_t alen,
				uint64_t *off)
{
	*off = 0;
	if (pm_attr_check(attr, alen) != PM_OK)
		return PM_E_ATTR;
	if (attr[0] == 0)
		return PM_OK;
	if (!(*off = pm_blob_alloc(&sh->arena, alen)))
		return PM_E_NOMEM;
	memcpy(pm_at(&sh->arena, *off), attr, alen);
	return PM_OK;
}

/* The vector seed of key, or PM_SEED_NONE with *st set. */
static uint32_t vec_find(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			 uint64_t now_ms, enum pm_status *st)
{
	uint32_t idx = pm_ks_find(sh, key, klen, hash, now_ms);
	*st = idx == PM_SEED_NONE ? PM_NOT_FOUND : PM_OK;
	if (idx != PM_SEED_NONE && pm_seed_at(&sh->arena, idx)->kind != PM_SEED_VECTOR) {
		*st = PM_E_WRONGTYPE;
		return PM_SEED_NONE;
	}
	return idx;
}

enum pm_status pm_vec_put_attr(struct pm_shard *sh, const uint8_t *key, uint32_t klen,
			       uint64_t hash, const uint8_t *name, uint32_t nlen, const uint8_t *vec,
			       uint32_t dim, const uint8_t *attr, uint32_t alen,
			       uint64_t expire_at_ms, uint64_t now_ms)
{
	uint64_t rec;
	enum pm_status st = attr_copy(sh, attr, alen, &rec);
	if (st != PM_OK)
		return st;
	st = pm_vec_put(sh, key, klen, hash, name, nlen, vec, dim, expire_at_ms, now_ms);
	if (st != PM_OK) {
		if (rec)
			pm_blob_free(&sh->arena, rec, alen);
		return st;
	}
	uint32_t idx = vec_find(sh, key, klen, hash, now_ms, &st);
	PM_ASSERT(idx != PM_SEED_NONE);
	struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	attr_attach(sh, &sh->colls[s->coll], vec_header(sh, pm_seed_blob(s)), rec);
	return PM_OK;
}

enum pm_status pm_vec_set_attr(struct pm_shard *sh, const uint8_t *key, uint32_t klen,
			       uint64_t hash, const uint8_t *attr, uint32_t alen, uint64_t now_ms)
{
	if (klen == 0 || klen > PM_KEY_BYTES_MAX)
		return PM_E_KEY_LEN;
	enum pm_status st;
	uint32_t idx = vec_find(sh, key, klen, hash, now_ms, &st);
	if (idx == PM_SEED_NONE)
		return st;
	if (pm_attr_check(attr, alen) != PM_OK)
		return PM_E_ATTR;
	uint64_t rec;
	if ((st = attr_copy(sh, attr, alen, &rec)) != PM_OK)
		return st;
	struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	attr_attach(sh, &sh->colls[s->coll], vec_header(sh, pm_seed_blob(s)), rec);
	return PM_OK;
}

enum pm_status pm_vec_attr_restore(struct pm_shard *sh, struct pm_collection *c, uint64_t off,
				   const uint8_t *attr, uint32_t alen)
{
	uint64_t rec;
	enum pm_status st = attr_copy(sh, attr, alen, &rec);
	if (st == PM_OK)
		attr_attach(sh, c, vec_header(sh, off), rec);
	return st;
}
