/* SPDX-License-Identifier: MIT
 *
 * kv.h — the keyspace of a shard (lookup with lazy expiry, delete of any kind of
 * seed) and the key-value operations SET / GET / DEL.
 *
 * Where a KV seed keeps its bytes (the seed's 48-byte inline area, see arena.h):
 *   klen + vlen <= 48          INLINE      key | value in the seed, no blob
 *   klen <= 40 and vlen >= 24  KEY_INLINE  key in the seed, value in a blob
 *   otherwise                  BLOB        key | value in one blob
 * so a GET of a small item touches one cache line of seed, and every blob request
 * is at least 24 bytes (the arena's waste bound holds). An overwrite keeps its
 * blob when the new size has the same class; otherwise the new blob is allocated
 * before the old one is freed, so a failed overwrite leaves the old value intact.
 */
#ifndef POMAI_ENGINE_KV_H
#define POMAI_ENGINE_KV_H

#include <stdint.h>

#include "shard.h"

static inline uint64_t pm_seed_expiry(const struct pm_seed *s)
{
	return ((uint64_t)s->exp_hi << 32) | s->exp_lo;
}

static inline void pm_seed_set_expiry(struct pm_seed *s, uint64_t at_ms)
{
	s->exp_hi = (uint16_t)(at_ms >> 32);
	s->exp_lo = (uint32_t)at_ms;
}

static inline uint64_t pm_seed_blob(const struct pm_seed *s)
{
	uint64_t off;
	__builtin_memcpy(&off, s->data, sizeof(off));
	return off;
}

/* Absolute expiry for a TTL, 0 when there is none. */
static inline uint64_t pm_expiry_at(uint64_t now_ms, uint64_t ttl_ms)
{
	return ttl_ms ? now_ms + ttl_ms : 0;
}

/* The live seed for key (expired seeds are deleted on the way), or PM_SEED_NONE. */
uint32_t pm_ks_find(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
		    uint64_t now_ms);
/* Delete a live seed of any kind: blobs, collection membership, map entry, slot. */
void pm_ks_delete(struct pm_shard *sh, uint32_t idx, uint64_t hash);
/* Look up and delete key if it holds `kind` (PM_SEED_FREE: any kind). */
enum pm_status pm_ks_del(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			 uint64_t now_ms, uint8_t kind);

enum pm_status pm_kv_set(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			 const uint8_t *val, uint32_t vlen, uint64_t expire_at_ms, uint64_t now_ms);
enum pm_status pm_kv_get(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			 uint64_t now_ms, struct pm_bytes *val);
/* Bytes a live KV seed's blob was allocated with (0: INLINE, no blob). */
uint32_t pm_kv_blob_bytes(const struct pm_seed *s);
/* The value bytes of a live KV seed, wherever its layout keeps them. */
struct pm_bytes pm_kv_value(const struct pm_arena *a, const struct pm_seed *s);
enum pm_status pm_kv_del(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			 uint64_t now_ms);

#endif
