/* SPDX-License-Identifier: MIT
 *
 * seedmap.c — bucketized open addressing with tag compare and overflow counters
 * (see seedmap.h for the design).
 */
#include <string.h>

#include "common.h"
#include "seedmap.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define LOAD_PERCENT 80u
#define OVERFLOW_SATURATED UINT16_MAX

/* ---------------------------------------------------------------- hashing */

static inline uint64_t home_bucket(const struct pm_seedmap *m, uint64_t hash)
{
	/* top bits: independent of the low bits used for routing (hash.h) */
	return m->shift >= 64 ? 0 : hash >> m->shift;
}

static inline uint8_t tag_of(uint64_t hash)
{
	uint8_t t = (uint8_t)(hash >> 8);
	return t ? t : 1;
}

static inline struct pm_bucket *bucket_at(const struct pm_seedmap *m, const struct pm_arena *a,
					  uint64_t b)
{
	return (struct pm_bucket *)pm_at(a, m->buckets_off) + b;
}

/* Bit i set when tag[i] == t, for the 12 slots. */
static inline uint32_t match_tags(const struct pm_bucket *bk, uint8_t t)
{
#if defined(__SSE2__)
	__m128i v = _mm_loadu_si128((const __m128i *)bk->tag);
	uint32_t mask = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)t)));
	return mask & ((1u << PM_SEEDMAP_SLOTS) - 1);
#else
	uint32_t mask = 0;
	for (unsigned i = 0; i < PM_SEEDMAP_SLOTS; i++)
		mask |= (uint32_t)(bk->tag[i] == t) << i;
	return mask;
#endif
}

/* ---------------------------------------------------------------- keys */

const uint8_t *pm_seed_key(const struct pm_arena *a, const struct pm_seed *s)
{
	uint64_t off;
	switch (s->layout) {
	case PM_LAYOUT_INLINE:
		return s->data;
	case PM_LAYOUT_KEY_INLINE:
		return s->data + sizeof(uint64_t);
	default:
		memcpy(&off, s->data, sizeof(off));
		/* KV blobs hold key | value; vector blobs hold header | payload | key */
		return (const uint8_t *)pm_at(a, off) + (s->kind == PM_SEED_VECTOR ? s->vlen : 0);
	}
}

/* ---------------------------------------------------------------- set-up */

static uint64_t bucket_count(uint32_t seed_capacity)
{
	uint64_t need = ((uint64_t)seed_capacity * 100 / LOAD_PERCENT + PM_SEEDMAP_SLOTS - 1) /
			PM_SEEDMAP_SLOTS;
	uint64_t n = 1;
	while (n < need)
		n <<= 1;
	return n;
}

uint64_t pm_seedmap_bytes(uint32_t seed_capacity)
{
	return bucket_count(seed_capacity) * sizeof(struct pm_bucket);
}

enum pm_status pm_seedmap_init(struct pm_seedmap *m, struct pm_arena *a, uint32_t seed_capacity)
{
	uint64_t n = bucket_count(seed_capacity);
	uint64_t off = pm_arena_reserve(a, n * sizeof(struct pm_bucket));
	if (!off)
		return PM_E_NOMEM;
	m->buckets_off = off;
	m->mask = n - 1;
	m->shift = 64u - (unsigned)__builtin_ctzll(n);
	m->count = 0;
	return PM_OK;
}

/* ---------------------------------------------------------------- operations */

void pm_seedmap_prefetch(const struct pm_seedmap *m, const struct pm_arena *a, uint64_t hash)
{
	__builtin_prefetch(bucket_at(m, a, home_bucket(m, hash)));
}

void pm_seedmap_prefetch_seeds(const struct pm_seedmap *m, const struct pm_arena *a,
			       uint64_t hash)
{
	const struct pm_bucket *bk = bucket_at(m, a, home_bucket(m, hash));
	for (uint32_t hit = match_tags(bk, tag_of(hash)); hit; hit &= hit - 1)
		__builtin_prefetch(pm_seed_at(a, bk->seed[__builtin_ctz(hit)]));
}

uint32_t pm_seedmap_find(const struct pm_seedmap *m, const struct pm_arena *a, const void *key,
			 uint32_t klen, uint64_t hash)
{
	uint8_t t = tag_of(hash);
	uint64_t b = home_bucket(m, hash);
	for (uint64_t probes = 0; probes <= m->mask; probes++) {
		const struct pm_bucket *bk = bucket_at(m, a, b);
		for (uint32_t hit = match_tags(bk, t); hit; hit &= hit - 1) {
			uint32_t idx = bk->seed[__builtin_ctz(hit)];
			const struct pm_seed *s = pm_seed_at(a, idx);
			if (s->klen == klen && memcmp(pm_seed_key(a, s), key, klen) == 0)
				return idx;
		}
		if (bk->overflow == 0)
			return PM_SEED_NONE;
		b = (b + 1) & m->mask;
	}
	return PM_SEED_NONE;
}

void pm_seedmap_insert(struct pm_seedmap *m, struct pm_arena *a, uint64_t hash, uint32_t seed)
{
	PM_ASSERT(m->count < (m->mask + 1) * PM_SEEDMAP_SLOTS); /* never: sized from seed capacity */
	uint64_t b = home_bucket(m, hash);
	for (;;) {
		struct pm_bucket *bk = bucket_at(m, a, b);
		uint32_t empty = match_tags(bk, 0);
		if (empty) {
			unsigned i = (unsigned)__builtin_ctz(empty);
			bk->tag[i] = tag_of(hash);
			bk->seed[i] = seed;
			m->count++;
			return;
		}
		if (bk->overflow != OVERFLOW_SATURATED)
			bk->overflow++;
		b = (b + 1) & m->mask;
	}
}

void pm_seedmap_remove(struct pm_seedmap *m, struct pm_arena *a, uint64_t hash, uint32_t seed)
{
	uint8_t t = tag_of(hash);
	uint64_t b = home_bucket(m, hash);
	for (uint64_t probes = 0; probes <= m->mask; probes++) {
		struct pm_bucket *bk = bucket_at(m, a, b);
		for (uint32_t hit = match_tags(bk, t); hit; hit &= hit - 1) {
			unsigned i = (unsigned)__builtin_ctz(hit);
			if (bk->seed[i] != seed)
				continue;
			bk->tag[i] = 0;
			m->count--;
			return;
		}
		PM_ASSERT(bk->overflow != 0); /* the seed must be further along */
		if (bk->overflow != OVERFLOW_SATURATED)
			bk->overflow--;
		b = (b + 1) & m->mask;
	}
	PM_ASSERT(!"seed not in map");
}
