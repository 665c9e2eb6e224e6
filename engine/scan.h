/* SPDX-License-Identifier: MIT
 *
 * scan.h — walking a shard's live keys, in pieces: what moving keys to
 * another shard of another node needs (the dataplane's resharding,
 * docs/cluster.md). A walk is a cursor over the seed slots, so that it can
 * stop anywhere and go on later while the shard keeps changing: a key that
 * exists from the walk's start to its end is visited once; a key added or
 * removed meanwhile may or may not be (the caller notes those changes
 * itself). Expired keys are skipped, not deleted: a walk reads only.
 */
#ifndef POMAI_ENGINE_SCAN_H
#define POMAI_ENGINE_SCAN_H

#include <stdbool.h>
#include <stdint.h>

#include "shard.h"

/* One live key as a walk or a lookup sees it; pointers valid until the
 * shard's next mutation. */
struct pm_scan_item {
	struct pm_bytes key;
	uint64_t hash;           /* the key's hash (the routing hash) */
	bool vector;             /* a vector; else a value */
	struct pm_bytes value;   /* value */
	const float *vec;        /* vector: dim f32 (a collection of another element type:
				  * its codes decoded, in the shard's scratch, valid until
				  * the next item — quant.h) */
	uint32_t dim;
	struct pm_bytes collection; /* vector: its collection's name (len 0: the default one) */
	uint64_t expire_at_ms;   /* 0: none */
	struct pm_bytes attr;    /* vector: its attribute record (len 0: none; attr.h) */
};

/* Visit the live keys from seed slot *cursor on, at most `seeds` slots:
 * fn(ctx, item) for each; a false from fn stops the walk before that slot
 * (the cursor stays on it, to be visited again). The cursor moves past what
 * was visited; true when the walk has passed the last slot. */
typedef bool (*pm_scan_fn)(void *ctx, const struct pm_scan_item *it);
bool pm_shard_scan(const struct pm_shard *sh, uint32_t *cursor, uint32_t seeds, uint64_t now_ms,
		   pm_scan_fn fn, void *ctx);

/* The one key, live: true and *it, or false when it is absent or expired. */
bool pm_shard_lookup(const struct pm_shard *sh, const uint8_t *key, uint32_t klen,
		     uint64_t now_ms, struct pm_scan_item *it);

#endif
