/* SPDX-License-Identifier: MIT
 *
 * seedmap.h — key -> seed index for one shard.
 *
 * Open addressing over 64-byte buckets (one cache line each): 12 one-byte tags,
 * an overflow counter and 12 seed indexes. A lookup compares the 12 tags of a
 * bucket at once (SSE2 on x86-64, SWAR elsewhere) and only touches the seeds whose
 * tag matches. Probing is linear over buckets. Instead of tombstones each bucket
 * counts the keys that probed past it (the F14 idea): a lookup stops at the first
 * bucket whose counter is zero, and a delete decrements the counters on its probe
 * path, so deletes leave no debris and the map never needs a cleanup pass.
 *
 * Capacity is planned, not grown: the map is sized once from the shard's seed
 * capacity (load <= 80 %), and its buckets are a start-up reservation in the
 * arena. Since there can never be more keys than seed slots, the map cannot fill
 * up, and no insert ever stalls the shard on a rehash.
 */
#ifndef POMAI_ENGINE_SEEDMAP_H
#define POMAI_ENGINE_SEEDMAP_H

#include <stdint.h>

#include "arena.h"

#define PM_SEEDMAP_SLOTS 12u

struct pm_bucket {
	uint8_t tag[PM_SEEDMAP_SLOTS]; /* 0 = empty slot */
	uint16_t reserved;
	uint16_t overflow;             /* keys living past this bucket; saturates */
	uint32_t seed[PM_SEEDMAP_SLOTS];
};
_Static_assert(sizeof(struct pm_bucket) == 64, "bucket is one cache line");

struct pm_seedmap {
	uint64_t buckets_off;  /* offset of the bucket array in the arena */
	uint64_t mask;         /* bucket count - 1 */
	unsigned shift;        /* 64 - log2(bucket count) */
	uint64_t count;
};

/* Bytes of arena a map for `seed_capacity` keys reserves. */
uint64_t pm_seedmap_bytes(uint32_t seed_capacity);
enum pm_status pm_seedmap_init(struct pm_seedmap *m, struct pm_arena *a, uint32_t seed_capacity);

/* The seed holding key, or PM_SEED_NONE. */
uint32_t pm_seedmap_find(const struct pm_seedmap *m, const struct pm_arena *a, const void *key,
			 uint32_t klen, uint64_t hash);
/* Add a seed whose key is not in the map. */
void pm_seedmap_insert(struct pm_seedmap *m, struct pm_arena *a, uint64_t hash, uint32_t seed);
/* Remove a seed that is in the map. */
void pm_seedmap_remove(struct pm_seedmap *m, struct pm_arena *a, uint64_t hash, uint32_t seed);

/* Prefetch the bucket a key hashes to (for batched lookups). */
void pm_seedmap_prefetch(const struct pm_seedmap *m, const struct pm_arena *a, uint64_t hash);

/* Prefetch the seeds whose tags match in the home bucket (call once the bucket
 * itself is likely cached, e.g. after pm_seedmap_prefetch for a whole burst). */
void pm_seedmap_prefetch_seeds(const struct pm_seedmap *m, const struct pm_arena *a,
			       uint64_t hash);

/* The key bytes of a live seed, wherever its layout keeps them. */
const uint8_t *pm_seed_key(const struct pm_arena *a, const struct pm_seed *s);

#endif
