/* SPDX-License-Identifier: MIT
 *
 * evict.h — a shard's memory limit (maxmemory) and what happens at it: refuse
 * the write (noeviction), or evict sampled keys until it fits — the one with
 * the lowest decayed access frequency per byte freed (harvest, the seed
 * plan's §6) or a random one (random, the baseline harvest is measured
 * against).
 *
 * What counts (pm_shard_mem_used): seed slots in use x 64 bytes, plus the
 * class bytes of every live blob — KV values and long keys, vector blobs
 * (header, payload, level-0 links), HNSW upper-level link blobs, tombstones
 * until a sweep frees them, collection member lists, HNSW node tables and
 * visited marks. Not counted: start-up reservations (seed map, tables,
 * scratch), free-list blobs waiting for reuse, alignment gaps and untouched
 * arena. So maxmemory bounds what the data holds, not the arena: blobs of
 * one class are not reused by another (no compaction), and the arena can
 * still run out first (PM_E_NOMEM, as without a limit).
 *
 * Admission: before a SET or VADD changes anything, the engine computes an
 * upper bound of what it can add to mem_used once it is done (a new seed,
 * the class bytes of a new blob less those of the one it replaces when it
 * replaces one, a new member-list chunk and directory, and for an HNSW
 * insert the upper-link blob of the level it will draw, a node-table chunk
 * and visited-marks chunk if it will need them). While mem_used + bound >
 * maxmemory the shard evicts (or refuses); so mem_used <= maxmemory holds
 * after every write. Transient peaks inside one request (an overwrite
 * allocates the new blob before it frees the old one) can pass it by that
 * blob; background maintenance (HNSW sweeps) only frees, apart from a short
 * walk list it frees before it returns.
 *
 * Victims: KV keys, and vectors of collections created evictable
 * (PM_COLL_EVICTABLE); never the key being written, never a vector of a
 * default collection. A sample is `samples` independent probes, each a
 * random seed slot scanned forward to the next candidate (bounded). Each
 * eviction first calls the shard's evict_log hook (the dataplane logs it as
 * a DEL, so a restart cannot bring the key back); when it refuses, nothing
 * is evicted and the write is refused PM_E_NOMEM. An evicted HNSW vector
 * becomes a tombstone (pm_ks_delete -> pm_vec_unlink): only its seed comes
 * back at once, its blobs when a sweep frees the tombstone; so once what
 * tombstones hold would make room (plus a headroom), the write is refused
 * PM_E_NOMEM (retry) instead of evicting more, and maintenance sweeps every
 * tombstone while the shard is near its limit.
 *
 * Access frequency, as Redis's LFU: 16 bits per key — an 8-bit logarithmic
 * (Morris) counter and the minute (mod 256) it was last decremented/touched.
 * A touch first decays the counter by one per PM_LFU_DECAY_MINUTES elapsed,
 * then increments it with probability 1 / ((counter - PM_LFU_INIT) x
 * PM_LFU_LOG_FACTOR + 1); new keys start at PM_LFU_INIT. A KV seed keeps the
 * word in its `coll` field (unused by KV), so a GET touches no other line; a
 * vector keeps it in its blob header (a VGET reads that line anyway). Reads
 * (GET/VGET hits) and writes touch it while a limit is set. Departure: the
 * minute is 8 bits (Redis: 16), so an idle time is known modulo 256 minutes;
 * a key idle for 256 minutes or more looks less idle than it is. Counters are
 * not logged or snapshotted: a restarted shard starts every key at INIT.
 *
 * Harvest's score is the estimated access count per byte freed: a Morris
 * counter c stands for about sum_{b < c - INIT} (b x LOG_FACTOR + 1) accesses
 * (what it takes to climb there), so the estimate is INIT + LOG_FACTOR x b x
 * (b - 1) / 2 + b for b = c - INIT above INIT, and c itself at or below it
 * (decayed keys). Dividing the logarithmic counter itself by bytes would let
 * size swamp frequency (a value 80 times larger would go before a key read
 * a million times more often); the estimate keeps both in proportion.
 *
 * Deterministic: victims and Morris increments come from one per-shard
 * xorshift RNG seeded by the config, time only from now_ms arguments.
 */
#ifndef POMAI_ENGINE_EVICT_H
#define POMAI_ENGINE_EVICT_H

#include <stdbool.h>
#include <stdint.h>

#include "pm_limits.h"
#include "status.h"

struct pm_shard;
struct pm_seed;

enum pm_evict_policy {
	PM_EVICT_NOEVICTION = 0, /* refuse a write that does not fit (PM_E_NOMEM) */
	PM_EVICT_HARVEST = 1,    /* evict the sampled key of least frequency per byte freed */
	PM_EVICT_RANDOM = 2,     /* evict a random key (baseline) */
	PM_EVICT_POLICY_COUNT
};

/* Seeds sampled per eviction (maxmemory_samples): the default, and the most
 * (each costs a probe of at most PM_EVICT_PROBE_SEEDS_MAX slots). */
#define PM_EVICT_SAMPLES_DEFAULT 16u
#define PM_EVICT_SAMPLES_MAX 64u
/* Seed slots one probe scans forward from its random start for a candidate,
 * at most, and probes one eviction makes at most while collecting its
 * samples: a probe that finds none adds nothing, so a table where candidates
 * are sparse (after mass deletes, or among many vectors of non-evictable
 * collections) costs more probes. One victim costs at most 256 x 64 = 16 Ki
 * slot reads (~1 MiB, a fraction of a millisecond); past it the write is
 * refused PM_E_NOMEM. */
#define PM_EVICT_PROBE_SEEDS_MAX 64u
#define PM_EVICT_PROBES_MAX 256u
/* Victims one write may evict at most. Every victim frees at least its 64-byte
 * seed, so a write within the limit never needs more than about 1,000 (the
 * largest value, 60 KiB in a 64 KiB class); more are needed only when the
 * shard is far above its limit (a limit lowered at run time, or a recovery
 * that ended above it), and then each write evicts at most this many, is
 * refused PM_E_NOMEM, and the next ones go on. */
#define PM_EVICT_VICTIMS_PER_WRITE_MAX 2048u
/* Evicting HNSW vectors makes tombstones, whose bytes come back only at the
 * next sweep; so once tombstones hold what a write needs plus maxmemory / this
 * (1.6 %), the write is refused instead of evicting more, and the sweep then
 * serves many writes, not one. */
#define PM_EVICT_SWEEP_HEADROOM_DIV 64u
/* Maintenance sweeps every HNSW collection with tombstones (not only those
 * past the usual threshold) while mem_used is within this share of
 * maxmemory, so memory evicted vectors hold comes back (percent). */
#define PM_EVICT_SWEEP_PRESSURE_PCT 90u
/* RNG seed of a shard whose config gives none. */
#define PM_EVICT_SEED_DEFAULT UINT64_C(0x9E3779B97F4A7C15)

/* LFU: the initial counter (so new keys are not the first victims), the
 * log factor (about 1M touches take a counter to 255), the decay period. */
#define PM_LFU_INIT 5u
#define PM_LFU_COUNTER_MAX 255u
#define PM_LFU_LOG_FACTOR 10u
#define PM_LFU_DECAY_MINUTES 1u
#define PM_LFU_MINUTE_MS UINT64_C(60000)

struct pm_evict_config {
	uint64_t maxmemory_bytes; /* limit of pm_shard_mem_used(); 0 = none (no admission check) */
	uint8_t policy;           /* enum pm_evict_policy */
	uint32_t samples;         /* 1..PM_EVICT_SAMPLES_MAX; 0 = default */
	uint64_t seed;            /* RNG seed; 0 = PM_EVICT_SEED_DEFAULT */
};

/* Called before a key is evicted; false forbids the eviction (the write that
 * needed room is then refused PM_E_NOMEM). NULL: always allowed. */
typedef bool (*pm_evict_log_fn)(void *ctx, const uint8_t *key, uint32_t klen);

/* A shard's eviction state; counters are in struct pm_shard_stats. */
struct pm_evict {
	struct pm_evict_config cfg;
	uint64_t rng;
};

/* Set (or, with maxmemory 0, lift) the shard's limit. PM_E_PARAM for an
 * unknown policy, samples above the maximum, or a limit above the arena. */
enum pm_status pm_shard_set_maxmemory(struct pm_shard *sh, const struct pm_evict_config *cfg);
/* Bytes that count against maxmemory (see above). */
uint64_t pm_shard_mem_used(const struct pm_shard *sh);
/* The same from a shard's counters (its arena's seeds in use and class
 * bytes of live blobs): for a reader that has the counters, not the shard. */
static inline uint64_t pm_mem_used_bytes(uint64_t seeds_used, uint64_t blob_bytes_live)
{
	return seeds_used * PM_SEED_BYTES + blob_bytes_live;
}
/* "noeviction", "harvest", "random"; NULL for an unknown policy. */
const char *pm_evict_policy_name(unsigned policy);

/* Make room for a write that adds at most `add` bytes to mem_used; `keep`
 * (a seed index, or PM_SEED_NONE) is never evicted. PM_OK, or PM_E_NOMEM
 * with nothing of the write done (evictions made on the way stay made). */
enum pm_status pm_evict_make_room(struct pm_shard *sh, uint64_t add, uint32_t keep,
				  uint64_t now_ms);

/* LFU word of a live seed: a new key's (counter PM_LFU_INIT), an access. */
void pm_lfu_init(struct pm_shard *sh, struct pm_seed *s, uint64_t now_ms);
void pm_lfu_touch(struct pm_shard *sh, struct pm_seed *s, uint64_t now_ms);
/* The decayed counter of a live seed as of now_ms (nothing written). */
uint8_t pm_lfu_count(const struct pm_shard *sh, const struct pm_seed *s, uint64_t now_ms);

#endif
