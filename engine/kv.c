/* SPDX-License-Identifier: MIT
 *
 * kv.c — keyspace lookups with lazy expiry, deletes, and SET / GET / DEL
 * (layouts in kv.h).
 */
#include <string.h>

#include "common.h"
#include "evict.h"
#include "kv.h"
#include "vector.h"

#define KEY_INLINE_KLEN_MAX (PM_SEED_INLINE_BYTES - sizeof(uint64_t)) /* 40 */
#define KEY_INLINE_VLEN_MIN PM_BLOB_BYTES_MIN                          /* 24 */

/* ---------------------------------------------------------------- keyspace */

static inline bool expired(const struct pm_seed *s, uint64_t now_ms)
{
	uint64_t at = pm_seed_expiry(s);
	return at != 0 && at <= now_ms;
}

uint32_t pm_ks_find(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
		    uint64_t now_ms)
{
	uint32_t idx = pm_seedmap_find(&sh->map, &sh->arena, key, klen, hash);
	if (idx == PM_SEED_NONE)
		return idx;
	const struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	if (unlikely(expired(s, now_ms))) {
		pm_ks_delete(sh, idx, hash);
		sh->stats.expired_lazy++;
		return PM_SEED_NONE;
	}
	if (unlikely(s->kind == PM_SEED_VECTOR && sh->colls[s->coll].dropping)) {
		pm_ks_delete(sh, idx, hash); /* its collection was dropped: gone already */
		return PM_SEED_NONE;
	}
	return idx;
}

uint32_t pm_kv_blob_bytes(const struct pm_seed *s)
{
	switch (s->layout) {
	case PM_LAYOUT_KEY_INLINE:
		return s->vlen;
	case PM_LAYOUT_BLOB:
		return s->klen + s->vlen;
	default:
		return 0;
	}
}

void pm_ks_delete(struct pm_shard *sh, uint32_t idx, uint64_t hash)
{
	struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	pm_seedmap_remove(&sh->map, &sh->arena, hash, idx);
	if (s->kind == PM_SEED_VECTOR) {
		pm_vec_unlink(sh, idx);
		sh->stats.vectors--;
	} else {
		PM_ASSERT(s->kind == PM_SEED_KV);
		if (s->layout != PM_LAYOUT_INLINE)
			pm_blob_free(&sh->arena, pm_seed_blob(s), pm_kv_blob_bytes(s));
		sh->stats.keys--;
	}
	pm_seed_free(&sh->arena, idx);
}

/* ---------------------------------------------------------------- SET */

static uint8_t kv_layout(uint32_t klen, uint32_t vlen)
{
	if (klen + vlen <= PM_SEED_INLINE_BYTES)
		return PM_LAYOUT_INLINE;
	if (klen <= KEY_INLINE_KLEN_MAX && vlen >= KEY_INLINE_VLEN_MIN)
		return PM_LAYOUT_KEY_INLINE;
	return PM_LAYOUT_BLOB;
}

static uint32_t layout_blob_bytes(uint8_t layout, uint32_t klen, uint32_t vlen)
{
	return layout == PM_LAYOUT_INLINE ? 0 : layout == PM_LAYOUT_KEY_INLINE ? vlen : klen + vlen;
}

/* Write key and value into a seed whose blob (if its layout has one) is `off`. */
static void kv_fill(struct pm_shard *sh, struct pm_seed *s, uint8_t layout, uint64_t off,
		    const uint8_t *key, uint32_t klen, const uint8_t *val, uint32_t vlen)
{
	s->kind = PM_SEED_KV;
	s->layout = layout;
	s->klen = (uint16_t)klen;
	s->vlen = vlen; /* `coll` is the LFU word (evict.h): an overwrite keeps it */
	if (layout == PM_LAYOUT_INLINE) {
		memcpy(s->data, key, klen);
		if (vlen) /* an empty value may come with no pointer at all */
			memcpy(s->data + klen, val, vlen);
		return;
	}
	memcpy(s->data, &off, sizeof(off));
	uint8_t *blob = pm_at(&sh->arena, off);
	if (layout == PM_LAYOUT_KEY_INLINE) {
		memcpy(s->data + sizeof(off), key, klen);
		memcpy(blob, val, vlen);
	} else {
		memcpy(blob, key, klen);
		memcpy(blob + klen, val, vlen);
	}
}

/* Overwrite an existing KV seed, reusing its blob when the class matches. */
static enum pm_status kv_overwrite(struct pm_shard *sh, struct pm_seed *s, const uint8_t *key,
				  uint32_t klen, const uint8_t *val, uint32_t vlen)
{
	uint8_t layout = kv_layout(klen, vlen);
	uint32_t need = layout_blob_bytes(layout, klen, vlen);
	uint32_t have = pm_kv_blob_bytes(s);
	uint64_t off = s->layout == PM_LAYOUT_INLINE ? 0 : pm_seed_blob(s);

	if (need && have && layout == s->layout && pm_blob_fits(have, need)) {
		pm_blob_resize(&sh->arena, have, need);
	} else {
		uint64_t fresh = 0;
		if (need && !(fresh = pm_blob_alloc(&sh->arena, need)))
			return PM_E_NOMEM; /* old value untouched */
		if (have)
			pm_blob_free(&sh->arena, off, have);
		off = fresh;
	}
	kv_fill(sh, s, layout, off, key, klen, val, vlen);
	return PM_OK;
}

/* Most bytes a SET of klen + vlen adds to pm_shard_mem_used once done: a new
 * key's slot and blob; an overwrite's new blob less the old one it frees
 * (nothing when the old blob is kept). */
static uint64_t kv_growth(const struct pm_seed *s, uint32_t klen, uint32_t vlen)
{
	uint8_t layout = kv_layout(klen, vlen);
	uint32_t need = layout_blob_bytes(layout, klen, vlen);
	uint64_t fresh = need ? pm_blob_footprint(need) : 0;
	if (!s)
		return PM_SEED_BYTES + fresh;
	uint32_t have = pm_kv_blob_bytes(s);
	if (need && have && layout == s->layout && pm_blob_fits(have, need))
		return 0;
	uint64_t old = have ? pm_blob_footprint(have) : 0;
	return fresh > old ? fresh - old : 0;
}

static enum pm_status kv_insert(struct pm_shard *sh, const uint8_t *key, uint32_t klen,
				uint64_t hash, const uint8_t *val, uint32_t vlen, uint64_t at,
				uint64_t now_ms)
{
	uint8_t layout = kv_layout(klen, vlen);
	uint32_t need = layout_blob_bytes(layout, klen, vlen);
	uint64_t off = 0;
	if (pm_evict_make_room(sh, kv_growth(NULL, klen, vlen), PM_SEED_NONE, now_ms) != PM_OK)
		return PM_E_NOMEM;
	if (need && !(off = pm_blob_alloc(&sh->arena, need)))
		return PM_E_NOMEM;
	uint32_t idx = pm_seed_alloc(&sh->arena);
	if (idx == PM_SEED_NONE) {
		if (off)
			pm_blob_free(&sh->arena, off, need);
		return PM_E_NOMEM;
	}
	struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	kv_fill(sh, s, layout, off, key, klen, val, vlen);
	pm_seed_set_expiry(s, at);
	pm_lfu_init(sh, s, now_ms);
	pm_seedmap_insert(&sh->map, &sh->arena, hash, idx);
	sh->stats.keys++;
	return PM_OK;
}

enum pm_status pm_kv_set(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			 const uint8_t *val, uint32_t vlen, uint64_t expire_at_ms, uint64_t now_ms)
{
	if (klen == 0 || klen > PM_KEY_BYTES_MAX)
		return PM_E_KEY_LEN;
	if (vlen > PM_VALUE_BYTES_MAX)
		return PM_E_VALUE_LEN;
	uint32_t idx = pm_ks_find(sh, key, klen, hash, now_ms);
	if (idx == PM_SEED_NONE)
		return kv_insert(sh, key, klen, hash, val, vlen, expire_at_ms, now_ms);
	struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	if (s->kind != PM_SEED_KV)
		return PM_E_WRONGTYPE;
	if (pm_evict_make_room(sh, kv_growth(s, klen, vlen), idx, now_ms) != PM_OK)
		return PM_E_NOMEM; /* the old value is untouched */
	enum pm_status st = kv_overwrite(sh, s, key, klen, val, vlen);
	if (st == PM_OK) {
		pm_seed_set_expiry(s, expire_at_ms);
		if (sh->evict.cfg.maxmemory_bytes)
			pm_lfu_touch(sh, s, now_ms);
	}
	return st;
}

/* ---------------------------------------------------------------- GET / DEL */

enum pm_status pm_kv_get(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			 uint64_t now_ms, struct pm_bytes *val)
{
	if (klen == 0 || klen > PM_KEY_BYTES_MAX)
		return PM_E_KEY_LEN;
	uint32_t idx = pm_ks_find(sh, key, klen, hash, now_ms);
	if (idx == PM_SEED_NONE)
		return PM_NOT_FOUND;
	struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	if (s->kind != PM_SEED_KV)
		return PM_E_WRONGTYPE;
	if (sh->evict.cfg.maxmemory_bytes)
		pm_lfu_touch(sh, s, now_ms);
	*val = pm_kv_value(&sh->arena, s);
	return PM_OK;
}

struct pm_bytes pm_kv_value(const struct pm_arena *a, const struct pm_seed *s)
{
	struct pm_bytes v = { .len = s->vlen };
	switch (s->layout) {
	case PM_LAYOUT_INLINE:
		v.ptr = s->data + s->klen;
		break;
	case PM_LAYOUT_KEY_INLINE:
		v.ptr = pm_at(a, pm_seed_blob(s));
		break;
	default:
		v.ptr = (const uint8_t *)pm_at(a, pm_seed_blob(s)) + s->klen;
	}
	return v;
}

enum pm_status pm_ks_del(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			 uint64_t now_ms, uint8_t kind)
{
	if (klen == 0 || klen > PM_KEY_BYTES_MAX)
		return PM_E_KEY_LEN;
	uint32_t idx = pm_ks_find(sh, key, klen, hash, now_ms);
	if (idx == PM_SEED_NONE)
		return PM_NOT_FOUND;
	if (kind != PM_SEED_FREE && pm_seed_at(&sh->arena, idx)->kind != kind)
		return PM_E_WRONGTYPE;
	pm_ks_delete(sh, idx, hash);
	return PM_OK;
}

enum pm_status pm_kv_del(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			 uint64_t now_ms)
{
	return pm_ks_del(sh, key, klen, hash, now_ms, PM_SEED_FREE); /* DEL removes any kind */
}
