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

#define XXH_INLINE_ALL
#include <xxhash.h>

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
