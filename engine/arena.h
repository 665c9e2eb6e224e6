/* SPDX-License-Identifier: MIT
 *
 * arena.h — one shard's memory: a single mapping holding seed slots and blobs.
 *
 * Layout of the region (offsets from its base):
 *
 *   [ seed slots: seed_capacity x 64 B ][ static reservations ][ blobs -> bump ... end ]
 *
 * - Seeds are fixed 64-byte slots (one cache line) addressed by a 32-bit index.
 *   Freed slots go on a stack of indexes (4 bytes per slot, a start-up
 *   reservation), not a list threaded through the slots: popping one never waits
 *   on a cold slot, and a burst can prefetch the slots it will take. Slots above
 *   the high-water mark have never been touched, so a large, mostly empty arena
 *   costs no resident memory.
 * - Static reservations (the seed map's buckets, collection tables) are carved once
 *   at start-up and never freed.
 * - Blobs come in size classes (see pm_limits.h): each class has its own free list
 *   (threaded through the first 8 bytes of each free blob); otherwise blobs are cut
 *   from the bump pointer. Classes of 256 bytes and more are cut aligned: on a
 *   cache line when the class is a multiple of 64 bytes (so a request of a
 *   multiple of 64 always gets one), on 32 bytes for the 32-byte steps between
 *   512 B and 1 KiB. A blob's size is not stored with it: its owner (the seed)
 *   knows it and passes it back on free. Blobs of different classes do not coalesce;
 *   a shard whose value sizes drift keeps freed blobs of the old classes for reuse.
 * - Everything is addressed by offset from the base, never by pointer, so the
 *   region is position independent (snapshots, shared mappings). Offset 0 is never
 *   a blob (seed slot 0 lives there), so 0 means "no blob".
 *
 * Debug builds (no NDEBUG) poison freed seeds and blobs with 0xDB and check the
 * poison when the memory is handed out again, catching writes after free.
 */
#ifndef POMAI_ENGINE_ARENA_H
#define POMAI_ENGINE_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pm_limits.h"
#include "status.h"

#define PM_SEED_NONE UINT32_MAX

/* 6 classes of 8-byte steps (24..64), 4 per power of two from 64 B to 512 B,
 * 16 from 512 B to 8 KiB (vector blobs: 32-byte steps to 1 KiB, 64-byte steps
 * to 2 KiB), 8 per power of two from 8 KiB to 1 MiB (arena.c). */
#define PM_BLOB_CLASS_COUNT 138u

enum pm_seed_kind {
	PM_SEED_FREE = 0,
	PM_SEED_KV = 1,
	PM_SEED_VECTOR = 2,
};

/* Where a seed's key and value live (see kv.c / vector.c). */
enum pm_seed_layout {
	PM_LAYOUT_INLINE = 0,     /* data = key | value */
	PM_LAYOUT_KEY_INLINE = 1, /* data = u64 blob offset | key; blob = value */
	PM_LAYOUT_BLOB = 2,       /* data = u64 blob offset; blob = key | value */
};

/* One cache line. Field order keeps natural alignment; 16-byte header. */
struct pm_seed {
	uint32_t vlen;    /* KV: value bytes; VECTOR: blob bytes (header + payload) */
	uint16_t klen;    /* key bytes */
	uint8_t kind;     /* enum pm_seed_kind */
	uint8_t layout;   /* enum pm_seed_layout */
	uint16_t coll;    /* VECTOR: collection id */
	uint16_t exp_hi;  /* expiry, ms since the epoch, 48 bits; 0 = none */
	uint32_t exp_lo;
	uint8_t data[PM_SEED_INLINE_BYTES];
};
_Static_assert(sizeof(struct pm_seed) == PM_SEED_BYTES, "seed is one cache line");

struct pm_arena_stats {
	uint64_t bytes_total;     /* size of the region */
	uint64_t seed_bytes;      /* seed slot area (capacity x 64) */
	uint64_t static_bytes;    /* start-up reservations */
	uint64_t blob_bytes_used; /* class bytes of live blobs */
	uint64_t blob_bytes_requested; /* bytes asked for by live blobs */
	uint64_t blob_bytes_free; /* class bytes waiting in free lists */
	uint64_t blob_bytes_unused; /* never-cut space between bump and end */
	uint64_t blob_bytes_gap;  /* skipped to align blobs >= 256 B to 64 B */
	uint32_t seeds_used;
	uint32_t seeds_capacity;
	uint64_t class_live[PM_BLOB_CLASS_COUNT];
	uint64_t class_free[PM_BLOB_CLASS_COUNT];
};

struct pm_arena {
	uint8_t *base;
	uint64_t bytes;
	bool mapped;      /* region was mmap'd by pm_arena_init (and is unmapped by destroy) */
	bool hugepages;   /* region is backed by explicit hugepages */

	uint32_t seed_capacity;
	uint32_t seeds_used;
	uint32_t seed_high;       /* slots [0, seed_high) have been handed out at least once */
	uint32_t seed_nfree;      /* freed slots on the stack */
	uint64_t seed_stack;      /* offset of the stack of freed slot indexes */

	uint64_t static_start;    /* first byte after the seed slots */
	uint64_t blob_start;      /* first byte after static reservations */
	uint64_t bump;            /* next never-used blob byte */

	uint64_t free_head[PM_BLOB_CLASS_COUNT];
	uint64_t class_live[PM_BLOB_CLASS_COUNT];
	uint64_t class_free[PM_BLOB_CLASS_COUNT];
	uint64_t bytes_requested;
	uint64_t bytes_live;      /* class bytes of live blobs (kept as they change: O(1) to read) */
	uint64_t gap_bytes;
};

/* Map a region of `bytes` and lay out `seed_capacity` slots. With try_hugepages,
 * explicit 2 MiB pages are tried first (MAP_HUGETLB), then transparent hugepages
 * are requested on plain pages. Returns PM_E_PARAM for bad sizes, PM_E_NOMEM if
 * the mapping fails. */
enum pm_status pm_arena_init(struct pm_arena *a, uint64_t bytes, uint32_t seed_capacity,
			     bool try_hugepages);
/* Lay out an arena in memory the caller owns (DPDK hugepages, a NUMA-bound mapping).
 * mem must be 64-byte aligned and zero-filled. */
enum pm_status pm_arena_init_mem(struct pm_arena *a, void *mem, uint64_t bytes,
				 uint32_t seed_capacity);
void pm_arena_destroy(struct pm_arena *a);

/* Start-up reservation of `bytes`, 64-byte aligned, zero-filled, never freed.
 * Only valid before the first blob is allocated. Returns the offset, 0 if full. */
uint64_t pm_arena_reserve(struct pm_arena *a, uint64_t bytes);

uint32_t pm_seed_alloc(struct pm_arena *a);
void pm_seed_free(struct pm_arena *a, uint32_t idx);

static inline struct pm_seed *pm_seed_at(const struct pm_arena *a, uint32_t idx)
{
	return (struct pm_seed *)(a->base + (uint64_t)idx * PM_SEED_BYTES);
}

static inline void *pm_at(const struct pm_arena *a, uint64_t off)
{
	return a->base + off;
}

/* Size class for a request of `bytes` (1..PM_BLOB_BYTES_MAX), and its size. */
unsigned pm_blob_class(uint32_t bytes);
uint32_t pm_blob_class_bytes(unsigned cls);

/* Bytes a blob requested with `bytes` really takes: its class's size. */
static inline uint32_t pm_blob_footprint(uint32_t bytes)
{
	return pm_blob_class_bytes(pm_blob_class(bytes));
}

/* Blobs of at least this many bytes start on a 64-byte boundary when their
 * class is a multiple of 64 bytes (every request of a multiple of 64 is), on
 * a 32-byte one otherwise. */
#define PM_BLOB_ALIGNED_BYTES_MIN 256u

/* Is a seed slot available (pm_seed_alloc will not fail)? */
static inline bool pm_seed_available(const struct pm_arena *a)
{
	return a->seed_nfree != 0 || a->seed_high < a->seed_capacity;
}

/* Prefetch (for writing) the next n slots pm_seed_alloc will hand out. */
static inline void pm_seed_prefetch_next(const struct pm_arena *a, uint32_t n)
{
	const uint32_t *stack = (const uint32_t *)(a->base + a->seed_stack);
	for (uint32_t i = 0; i < n && i < a->seed_nfree; i++)
		__builtin_prefetch(a->base + (uint64_t)stack[a->seed_nfree - 1 - i] * PM_SEED_BYTES, 1);
}

/* A blob of at least `bytes`; returns its offset, or 0 when the arena is full. */
uint64_t pm_blob_alloc(struct pm_arena *a, uint32_t bytes);
/* Return a blob; `bytes` must be what was passed to pm_blob_alloc. */
void pm_blob_free(struct pm_arena *a, uint64_t off, uint32_t bytes);
/* Can a blob allocated for `old_bytes` hold `new_bytes` without moving? */
static inline bool pm_blob_fits(uint32_t old_bytes, uint32_t new_bytes)
{
	return pm_blob_class(old_bytes) == pm_blob_class(new_bytes);
}
/* Re-account a blob kept in place for a new request size of the same class. */
void pm_blob_resize(struct pm_arena *a, uint32_t old_bytes, uint32_t new_bytes);

void pm_arena_stats(const struct pm_arena *a, struct pm_arena_stats *st);

#endif
