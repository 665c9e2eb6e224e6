/* SPDX-License-Identifier: MIT
 *
 * hash.h — the engine's key hash (seed map, eviction sample, snapshots).
 *
 * The engine hashes keys with XXH3-64 (seed 0) from Debian's libxxhash: fast on
 * short keys and well studied. Request routing uses the same hash (shard = hash
 * % shards; proto/route.h owns that contract), so the keys of one shard share
 * their hash's low bits: the seed map takes its bucket from the top bits and its
 * tag from bits 8..15, so it stays independent of the low bits that routing
 * consumes.
 */
#ifndef POMAI_ENGINE_HASH_H
#define POMAI_ENGINE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Inlined for short keys; GCC 12 misreads XXH3's small-key loads from short
 * stack buffers as out of bounds (-Warray-bounds false positive), so the
 * warning is silenced for the library's own lines only. */
#define XXH_INLINE_ALL
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#include <xxhash.h>
#pragma GCC diagnostic pop

static inline uint64_t pm_hash(const void *key, size_t len)
{
	return XXH3_64bits(key, len);
}

#endif
