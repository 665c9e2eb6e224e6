/* SPDX-License-Identifier: MIT
 *
 * evict.c — maxmemory: what counts, admission, sampling and eviction, and the
 * LFU word (design in evict.h).
 *
 * Sections: configuration; LFU; candidates and their score; eviction.
 */
#include "evict.h"

#include <string.h>

#include "common.h"
#include "hash.h"
#include "hnsw.h"
#include "kv.h"
#include "shard.h"
#include "vector.h"

/* LFU word layout: minute (mod 256) in the high byte, counter in the low. */
#define LFU_COUNTER_MASK 0xFFu
#define LFU_MINUTE_SHIFT 8u
#define LFU_MINUTES_WRAP 256u
/* A Morris increment happens when a 32-bit random draw x (base x factor + 1)
 * is below 2^32: probability 1 / (base x factor + 1), in integers. */
#define MORRIS_ONE (UINT64_C(1) << 32)

/* ---------------------------------------------------------------- configuration */

static const char *const policy_names[PM_EVICT_POLICY_COUNT] = {
	[PM_EVICT_NOEVICTION] = "noeviction",
	[PM_EVICT_HARVEST] = "harvest",
	[PM_EVICT_RANDOM] = "random",
};

const char *pm_evict_policy_name(unsigned policy)
{
	return policy < PM_EVICT_POLICY_COUNT ? policy_names[policy] : NULL;
}

enum pm_status pm_shard_set_maxmemory(struct pm_shard *sh, const struct pm_evict_config *cfg)
{
	if (cfg->policy >= PM_EVICT_POLICY_COUNT || cfg->samples > PM_EVICT_SAMPLES_MAX ||
	    cfg->maxmemory_bytes > sh->arena.bytes)
		return PM_E_PARAM;
	sh->evict.cfg = *cfg;
	if (sh->evict.cfg.samples == 0)
		sh->evict.cfg.samples = PM_EVICT_SAMPLES_DEFAULT;
	if (sh->evict.cfg.seed == 0)
		sh->evict.cfg.seed = PM_EVICT_SEED_DEFAULT;
	sh->evict.rng = sh->evict.cfg.seed;
	return PM_OK;
}

uint64_t pm_shard_mem_used(const struct pm_shard *sh)
{
	return pm_mem_used_bytes(sh->arena.seeds_used, sh->arena.bytes_live);
}

/* xorshift64*: the shard's one source of randomness (never 0: seeded non-zero). */
static uint64_t rng_next(struct pm_shard *sh)
{
	uint64_t x = sh->evict.rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	sh->evict.rng = x;
	return x * UINT64_C(0x2545F4914F6CDD1D);
}

/* ---------------------------------------------------------------- LFU */

static uint16_t *lfu_word(const struct pm_shard *sh, const struct pm_seed *s)
{
	if (s->kind == PM_SEED_KV)
		return (uint16_t *)&s->coll; /* KV seeds have no collection */
	struct pm_vec_header *h = pm_at(&sh->arena, pm_seed_blob(s));
	return &h->lfu;
}

static unsigned minute_of(uint64_t now_ms)
{
	return (unsigned)(now_ms / PM_LFU_MINUTE_MS) % LFU_MINUTES_WRAP;
}

/* The counter of word w, less one per decay period since its minute. */
static unsigned lfu_decayed(uint16_t w, uint64_t now_ms)
{
	unsigned counter = w & LFU_COUNTER_MASK;
	unsigned elapsed = (minute_of(now_ms) - (w >> LFU_MINUTE_SHIFT)) % LFU_MINUTES_WRAP;
	unsigned periods = elapsed / PM_LFU_DECAY_MINUTES;
	return periods >= counter ? 0 : counter - periods;
}

static uint16_t lfu_pack(unsigned counter, uint64_t now_ms)
{
	return (uint16_t)(minute_of(now_ms) << LFU_MINUTE_SHIFT | counter);
}

void pm_lfu_init(struct pm_shard *sh, struct pm_seed *s, uint64_t now_ms)
{
	*lfu_word(sh, s) = lfu_pack(PM_LFU_INIT, now_ms);
}

void pm_lfu_touch(struct pm_shard *sh, struct pm_seed *s, uint64_t now_ms)
{
	uint16_t *w = lfu_word(sh, s);
	unsigned counter = lfu_decayed(*w, now_ms);
	if (counter < PM_LFU_COUNTER_MAX) {
		uint64_t base = counter > PM_LFU_INIT ? counter - PM_LFU_INIT : 0;
		uint64_t draw = rng_next(sh) >> 32;
		if (draw * (base * PM_LFU_LOG_FACTOR + 1) < MORRIS_ONE)
			counter++;
	}
	*w = lfu_pack(counter, now_ms);
}

uint8_t pm_lfu_count(const struct pm_shard *sh, const struct pm_seed *s, uint64_t now_ms)
{
	return (uint8_t)lfu_decayed(*lfu_word(sh, s), now_ms);
}

/* ---------------------------------------------------------------- candidates */

/* May seed idx be evicted? Live, not the key being written, and a KV key or a
 * vector of an evictable collection. */
static bool candidate(const struct pm_shard *sh, uint32_t idx, uint32_t keep)
{
	const struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	if (idx == keep || s->kind == PM_SEED_FREE)
		return false;
	return s->kind == PM_SEED_KV || (sh->colls[s->coll].params.flags & PM_COLL_EVICTABLE);
}

/* Bytes evicting seed s gives back: its slot and its blobs' class bytes (a
 * vector of an HNSW collection: once its tombstone is swept). */
static uint64_t bytes_freed(const struct pm_shard *sh, const struct pm_seed *s)
{
	uint64_t bytes = PM_SEED_BYTES;
	if (s->kind == PM_SEED_KV) {
		uint32_t blob = pm_kv_blob_bytes(s);
		return bytes + (blob ? pm_blob_footprint(blob) : 0);
	}
	const struct pm_vec_header *h = pm_at(&sh->arena, pm_seed_blob(s));
	const struct pm_collection *c = &sh->colls[s->coll];
	if (c->params.index == PM_INDEX_HNSW)
		return bytes + pm_hnsw_node_footprint(sh, c, h);
	return bytes + pm_blob_footprint(h->blob_bytes);
}

/* Estimated accesses behind a (decayed) counter (evict.h); +1 so that keys of
 * no frequency still compare by size. */
static uint64_t lfu_estimate(unsigned counter)
{
	if (counter <= PM_LFU_INIT)
		return counter + 1u;
	uint64_t b = counter - PM_LFU_INIT;
	return PM_LFU_INIT + PM_LFU_LOG_FACTOR * b * (b - 1) / 2 + b + 1u;
}

/* One probe: a random slot, scanned forward (wrapping) to the first
 * candidate within PM_EVICT_PROBE_SEEDS_MAX slots; PM_SEED_NONE if none. */
static uint32_t probe(struct pm_shard *sh, uint32_t keep)
{
	uint32_t high = sh->arena.seed_high;
	uint32_t idx = (uint32_t)(rng_next(sh) % high);
	for (uint32_t n = 0; n < PM_EVICT_PROBE_SEEDS_MAX && n < high; n++) {
		if (candidate(sh, idx, keep))
			return idx;
		idx = idx + 1 == high ? 0 : idx + 1;
	}
	return PM_SEED_NONE;
}

/* The victim among `samples` candidates found by at most PM_EVICT_PROBES_MAX
 * probes: harvest takes the least estimated accesses per byte freed, the
 * first found on a tie; random takes the first found. PM_SEED_NONE when no
 * probe found one. */
static uint32_t pick_victim(struct pm_shard *sh, uint32_t keep, uint64_t now_ms)
{
	const bool harvest = sh->evict.cfg.policy == PM_EVICT_HARVEST;
	uint32_t best = PM_SEED_NONE, found = 0;
	uint64_t best_f = 0, best_b = 1;
	if (sh->arena.seed_high == 0)
		return PM_SEED_NONE;
	for (uint32_t i = 0; i < PM_EVICT_PROBES_MAX && found < sh->evict.cfg.samples; i++) {
		uint32_t idx = probe(sh, keep);
		if (idx == PM_SEED_NONE)
			continue;
		if (!harvest)
			return idx;
		found++;
		const struct pm_seed *s = pm_seed_at(&sh->arena, idx);
		uint64_t f = lfu_estimate(pm_lfu_count(sh, s, now_ms)), b = bytes_freed(sh, s);
		if (best == PM_SEED_NONE || f * best_b < best_f * b) {
			best = idx;
			best_f = f;
			best_b = b;
		}
	}
	return best;
}

/* ---------------------------------------------------------------- eviction */

/* Evict seed idx through the real delete path; false if the log hook refused. */
static bool evict_one(struct pm_shard *sh, uint32_t idx)
{
	struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	const uint8_t *key = pm_seed_key(&sh->arena, s);
	uint32_t klen = s->klen;
	if (sh->evict_log && !sh->evict_log(sh->evict_ctx, key, klen)) {
		sh->stats.evict_log_refused++;
		return false;
	}
	sh->stats.evicted_bytes += bytes_freed(sh, s);
	if (s->kind == PM_SEED_KV)
		sh->stats.evicted_keys++;
	else
		sh->stats.evicted_vectors++;
	pm_ks_delete(sh, idx, pm_hash(key, klen));
	return true;
}

enum pm_status pm_evict_make_room(struct pm_shard *sh, uint64_t add, uint32_t keep,
				  uint64_t now_ms)
{
	const struct pm_evict_config *cfg = &sh->evict.cfg;
	if (cfg->maxmemory_bytes == 0)
		return PM_OK;
	const uint64_t max = cfg->maxmemory_bytes, headroom = max / PM_EVICT_SWEEP_HEADROOM_DIV;
	for (uint32_t victims = 0;; victims++) {
		uint64_t used = pm_shard_mem_used(sh);
		if (used + add <= max)
			return PM_OK;
		/* Refuse rather than evict: no policy, a request larger than the
		 * limit, the per-write bound reached, or room (and headroom) that
		 * the next sweep of the tombstones gives back: evicting more would
		 * not help now. */
		if (cfg->policy == PM_EVICT_NOEVICTION || add > max ||
		    victims == PM_EVICT_VICTIMS_PER_WRITE_MAX ||
		    (sh->tomb_bytes && used - sh->tomb_bytes + add + headroom <= max))
			break;
		uint32_t idx = pick_victim(sh, keep, now_ms);
		if (idx == PM_SEED_NONE || !evict_one(sh, idx))
			break;
	}
	sh->stats.evict_refused++;
	return PM_E_NOMEM;
}
