/* SPDX-License-Identifier: MIT
 *
 * proto/route.h — which shard owns a key: the routing contract between every
 * client and pomaid (docs/protocol.md §1).
 *
 * A key's hash is XXH3-64 (seed 0) from Debian's libxxhash: fast on short
 * keys, well studied, and available to every client language, which matters
 * because clients compute it themselves to pick a shard. The owner is
 * hash % shards; a client and a pomaid that disagree on either would send
 * every key to the wrong worker, so both come from here.
 *
 * The engine hashes keys for its seed map with the same XXH3 (engine/hash.h)
 * and takes its bucket and tag from bits that routing does not consume; that
 * is the engine's choice, not part of this contract.
 */
#ifndef POMAI_PROTO_ROUTE_H
#define POMAI_PROTO_ROUTE_H

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

/* The routing hash of a key. */
static inline uint64_t pm_route_hash(const void *key, size_t len)
{
	return XXH3_64bits(key, len);
}

/* The shard that owns a key of this hash, for a deployment of nshards shards:
 * hash % nshards, a mask when nshards is a power of two (1, 2, 4, ...: most
 * deployments), since a 64-bit division is tens of cycles on every frame of
 * both ends (issue 20). */
static inline uint32_t pm_shard_of(uint64_t hash, uint32_t nshards)
{
	if (nshards != 0 && (nshards & (nshards - 1u)) == 0)
		return (uint32_t)(hash & (nshards - 1u));
	return (uint32_t)(hash % nshards);
}

#endif
