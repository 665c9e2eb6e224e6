/* SPDX-License-Identifier: MIT
 *
 * scan.c — walking a shard's live keys (scan.h).
 */
#include "scan.h"

#include "attr.h"
#include "hash.h"
#include "kv.h"
#include "seedmap.h"
#include "vector.h"

/* The item of a live seed; false when it is free or expired. */
static bool item_of(const struct pm_shard *sh, uint32_t idx, uint64_t now_ms,
		    struct pm_scan_item *it)
{
	const struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	uint64_t exp = pm_seed_expiry(s);
	if (s->kind == PM_SEED_FREE || (exp && exp <= now_ms))
		return false;
	const uint8_t *key = pm_seed_key(&sh->arena, s);
	*it = (struct pm_scan_item){ .key = { key, s->klen }, .hash = pm_hash(key, s->klen),
				     .expire_at_ms = exp };
	if (s->kind == PM_SEED_KV) {
		it->value = pm_kv_value(&sh->arena, s);
		return true;
	}
	const struct pm_collection *c = &sh->colls[s->coll];
	const struct pm_vec_header *h = pm_at(&sh->arena, pm_seed_blob(s));
	it->vector = true;
	if (h->dtype == PM_DTYPE_F32) {
		it->vec = pm_vec_data(h);
	} else { /* codes (quant.h): their f32, in the shard's query scratch */
		pm_vec_f32(c, h, sh->query);
		it->vec = sh->query;
	}
	it->dim = h->dim;
	it->collection = (struct pm_bytes){ c->name, c->is_default ? 0u : c->name_len };
	const uint8_t *rec = pm_vec_attr(sh, h);
	it->attr = (struct pm_bytes){ rec, rec ? pm_attr_len(rec) : 0u };
	return true;
}

bool pm_shard_scan(const struct pm_shard *sh, uint32_t *cursor, uint32_t seeds, uint64_t now_ms,
		   pm_scan_fn fn, void *ctx)
{
	uint32_t end = sh->arena.seed_high;
	for (; *cursor < end && seeds; seeds--) {
		struct pm_scan_item it;
		if (item_of(sh, *cursor, now_ms, &it) && !fn(ctx, &it))
			return false;
		(*cursor)++;
	}
	return *cursor >= end;
}

bool pm_shard_lookup(const struct pm_shard *sh, const uint8_t *key, uint32_t klen,
		     uint64_t now_ms, struct pm_scan_item *it)
{
	uint32_t idx = pm_seedmap_find(&sh->map, &sh->arena, key, klen, pm_hash(key, klen));
	return idx != PM_SEED_NONE && item_of(sh, idx, now_ms, it);
}
