/* SPDX-License-Identifier: MIT
 *
 * hash.h — the key hash shared by the seed map and by request routing.
 *
 * Pomai hashes keys with XXH3-64 (seed 0) from Debian's libxxhash: fast on short
 * keys, well studied, and available to every client language, which matters
 * because clients compute the same hash to pick a shard (shard = hash % shards,
 * docs/protocol.md). Inside a shard the seed map takes its bucket from the top
 * bits and its tag from bits 8..15, so it stays independent of the low bits that
 * routing consumes.
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

/* The shard that owns a key, for a deployment of nshards shards. */
static inline uint32_t pm_shard_of(uint64_t hash, uint32_t nshards)
{
	return (uint32_t)(hash % nshards);
}

#endif
