/* SPDX-License-Identifier: MIT
 *
 * arena.c — seed slots and size-classed blobs in one mapping (see arena.h).
 *
 * Size classes: 24, 32, 40, 48, 56, 64 bytes, then four per power of two up to
 * 1 KiB (80, 96, 112, 128, 160, …, 1024), then eight per power of two up to
 * 1 MiB (1152, 1280, …, 2048, 2304, …). For a request of n >= 20 bytes the waste
 * of its class is below 22 % (worst cases: 25 -> 32 wastes 7/32, 65 -> 80 wastes
 * 15/80) — within the 25 % the design allows — and below 12 % from 1 KiB up,
 * where vectors live (a 784-d f32 vector blob of 3200 bytes takes 3328). The engine never asks for less than 20 bytes (kv.c puts values under 24
 * bytes inline; a vector blob has a 32-byte header), and tests check the bound.
 */
#include <string.h>
#include <sys/mman.h>

#include "arena.h"
#include "common.h"

#define HUGEPAGE_BYTES (UINT64_C(2) << 20)
#define POISON_BYTE 0xDB
#define SMALL_CLASSES 6u    /* 24..64 in 8-byte steps */
#define MID_CLASSES_END 22u /* then 4 per power of two up to 1024 */
/* Classes from 256 bytes up are multiples of 64 and are cut 64-byte aligned, so
 * large blobs (vectors) start on a cache line; the skipped bytes (< 64 per
 * switch from a smaller class) are counted as gap. */
#define ALIGNED_CLASS_BYTES_MIN PM_BLOB_ALIGNED_BYTES_MIN

/* ---------------------------------------------------------------- size classes */

unsigned pm_blob_class(uint32_t bytes)
{
	PM_DEBUG_ASSERT(bytes >= 1 && bytes <= PM_BLOB_BYTES_MAX);
	if (bytes <= 64)
		return bytes <= PM_BLOB_BYTES_MIN ? 0 : (bytes + 7) / 8 - 3;
	uint32_t m = bytes - 1;
	unsigned lg = 31u - (unsigned)__builtin_clz(m); /* >= 6 */
	if (lg < 10)
		return SMALL_CLASSES + (lg - 6) * 4 + ((m >> (lg - 2)) - 4);
	return MID_CLASSES_END + (lg - 10) * 8 + ((m >> (lg - 3)) - 8);
}

uint32_t pm_blob_class_bytes(unsigned cls)
{
	PM_DEBUG_ASSERT(cls < PM_BLOB_CLASS_COUNT);
	if (cls < SMALL_CLASSES)
		return PM_BLOB_BYTES_MIN + 8 * cls;
	if (cls < MID_CLASSES_END) {
		unsigned g = (cls - SMALL_CLASSES) / 4, i = (cls - SMALL_CLASSES) % 4;
		return (64u << g) + (16u << g) * (i + 1);
	}
	unsigned g = (cls - MID_CLASSES_END) / 8, i = (cls - MID_CLASSES_END) % 8;
	return (1024u << g) + (128u << g) * (i + 1);
}

_Static_assert(MID_CLASSES_END + 10 * 8 == PM_BLOB_CLASS_COUNT, "class count");
_Static_assert(PM_BLOB_BYTES_MAX == (1024u << 10), "class table ends at 1 MiB");

/* ---------------------------------------------------------------- set-up */

static enum pm_status layout(struct pm_arena *a, uint64_t bytes, uint32_t seed_capacity)
{
	uint64_t seed_bytes = (uint64_t)seed_capacity * PM_SEED_BYTES;
	if (seed_capacity == 0 || seed_capacity > PM_SEEDS_MAX || seed_bytes >= bytes)
		return PM_E_PARAM;
	a->bytes = bytes;
	a->seed_capacity = seed_capacity;
	a->seeds_used = 0;
	a->seed_high = 0;
	a->seed_nfree = 0;
	a->seed_stack = seed_bytes; /* seed_bytes is a multiple of 64 */
	a->static_start = seed_bytes;
	a->blob_start = pm_align_up(seed_bytes + (uint64_t)seed_capacity * sizeof(uint32_t), 64);
	a->bump = a->blob_start;
	if (a->blob_start >= bytes)
		return PM_E_PARAM;
	a->bytes_requested = 0;
	a->bytes_live = 0;
	a->gap_bytes = 0;
	for (unsigned c = 0; c < PM_BLOB_CLASS_COUNT; c++) {
		a->free_head[c] = 0;
		a->class_live[c] = 0;
		a->class_free[c] = 0;
	}
	return PM_OK;
}

static void *map_region(uint64_t bytes, bool try_hugepages, bool *huge)
{
	void *p = MAP_FAILED;
	*huge = false;
	if (try_hugepages && bytes % HUGEPAGE_BYTES == 0) {
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
		*huge = p != MAP_FAILED;
	}
	if (p == MAP_FAILED) {
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p != MAP_FAILED && try_hugepages)
			(void)madvise(p, bytes, MADV_HUGEPAGE); /* best effort */
	}
	return p == MAP_FAILED ? NULL : p;
}

enum pm_status pm_arena_init(struct pm_arena *a, uint64_t bytes, uint32_t seed_capacity,
			     bool try_hugepages)
{
	memset(a, 0, sizeof(*a));
	if (bytes < PM_ARENA_BYTES_MIN || bytes > PM_ARENA_BYTES_MAX || bytes % 4096)
		return PM_E_PARAM;
	enum pm_status st = layout(a, bytes, seed_capacity);
	if (st != PM_OK)
		return st;
	a->base = map_region(bytes, try_hugepages, &a->hugepages);
	if (!a->base)
		return PM_E_NOMEM;
	a->mapped = true;
	return PM_OK;
}

enum pm_status pm_arena_init_mem(struct pm_arena *a, void *mem, uint64_t bytes,
				 uint32_t seed_capacity)
{
	memset(a, 0, sizeof(*a));
	if (!mem || (uintptr_t)mem % 64 || bytes < PM_ARENA_BYTES_MIN || bytes > PM_ARENA_BYTES_MAX)
		return PM_E_PARAM;
	enum pm_status st = layout(a, bytes, seed_capacity);
	if (st == PM_OK)
		a->base = mem;
	return st;
}

void pm_arena_destroy(struct pm_arena *a)
{
	if (a->mapped && a->base)
		munmap(a->base, a->bytes);
	memset(a, 0, sizeof(*a));
}

uint64_t pm_arena_reserve(struct pm_arena *a, uint64_t bytes)
{
	PM_ASSERT(a->bump == a->blob_start); /* only before the first blob */
	uint64_t off = pm_align_up(a->blob_start, 64);
	if (bytes > a->bytes || off > a->bytes - bytes)
		return 0;
	a->blob_start = pm_align_up(off + bytes, 64);
	a->bump = a->blob_start;
	return off;
}

/* ---------------------------------------------------------------- seeds */

static void poison(void *p, size_t n)
{
#ifndef NDEBUG
	memset(p, POISON_BYTE, n);
#else
	(void)p, (void)n;
#endif
}

static void check_poison(const void *p, size_t n)
{
#ifndef NDEBUG
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		PM_ASSERT(b[i] == POISON_BYTE); /* written after free */
#else
	(void)p, (void)n;
#endif
}

uint32_t pm_seed_alloc(struct pm_arena *a)
{
	uint32_t idx;
	if (a->seed_nfree) {
		idx = ((const uint32_t *)pm_at(a, a->seed_stack))[--a->seed_nfree];
		PM_DEBUG_ASSERT(pm_seed_at(a, idx)->kind == PM_SEED_FREE);
		check_poison(pm_seed_at(a, idx)->data, PM_SEED_INLINE_BYTES);
	} else if (a->seed_high < a->seed_capacity) {
		idx = a->seed_high++;
	} else {
		return PM_SEED_NONE;
	}
	memset(pm_seed_at(a, idx), 0, PM_SEED_BYTES);
	a->seeds_used++;
	return idx;
}

void pm_seed_free(struct pm_arena *a, uint32_t idx)
{
	PM_ASSERT(idx < a->seed_high);
	struct pm_seed *s = pm_seed_at(a, idx);
	PM_ASSERT(s->kind != PM_SEED_FREE);
	poison(s, PM_SEED_BYTES);
	s->kind = PM_SEED_FREE;
	((uint32_t *)pm_at(a, a->seed_stack))[a->seed_nfree++] = idx;
	a->seeds_used--;
}

/* ---------------------------------------------------------------- blobs */

uint64_t pm_blob_alloc(struct pm_arena *a, uint32_t bytes)
{
	PM_ASSERT(bytes >= 1 && bytes <= PM_BLOB_BYTES_MAX);
	unsigned cls = pm_blob_class(bytes);
	uint32_t cb = pm_blob_class_bytes(cls);
	uint64_t off = a->free_head[cls];
	if (off) {
		uint8_t *p = pm_at(a, off);
		memcpy(&a->free_head[cls], p, sizeof(uint64_t));
		check_poison(p + 8, cb - 8);
		a->class_free[cls]--;
	} else {
		uint64_t at = cb >= ALIGNED_CLASS_BYTES_MIN ? pm_align_up(a->bump, 64) : a->bump;
		if (at > a->bytes || cb > a->bytes - at)
			return 0;
		a->gap_bytes += at - a->bump;
		off = at;
		a->bump = at + cb;
	}
	a->class_live[cls]++;
	a->bytes_requested += bytes;
	a->bytes_live += cb;
	return off;
}

void pm_blob_free(struct pm_arena *a, uint64_t off, uint32_t bytes)
{
	PM_ASSERT(off >= a->blob_start && off < a->bump);
	unsigned cls = pm_blob_class(bytes);
	PM_ASSERT(a->class_live[cls] > 0);
	uint8_t *p = pm_at(a, off);
	poison(p, pm_blob_class_bytes(cls));
	memcpy(p, &a->free_head[cls], sizeof(uint64_t));
	a->free_head[cls] = off;
	a->class_live[cls]--;
	a->class_free[cls]++;
	a->bytes_requested -= bytes;
	a->bytes_live -= pm_blob_class_bytes(cls);
}

void pm_blob_resize(struct pm_arena *a, uint32_t old_bytes, uint32_t new_bytes)
{
	PM_DEBUG_ASSERT(pm_blob_fits(old_bytes, new_bytes));
	a->bytes_requested = a->bytes_requested - old_bytes + new_bytes;
}

void pm_arena_stats(const struct pm_arena *a, struct pm_arena_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->bytes_total = a->bytes;
	st->seed_bytes = a->static_start;
	st->static_bytes = a->blob_start - a->static_start; /* free-seed stack + reservations */
	st->blob_bytes_requested = a->bytes_requested;
	st->blob_bytes_unused = a->bytes - a->bump;
	st->blob_bytes_gap = a->gap_bytes;
	st->seeds_used = a->seeds_used;
	st->seeds_capacity = a->seed_capacity;
	for (unsigned c = 0; c < PM_BLOB_CLASS_COUNT; c++) {
		uint64_t cb = pm_blob_class_bytes(c);
		st->class_live[c] = a->class_live[c];
		st->class_free[c] = a->class_free[c];
		st->blob_bytes_used += cb * a->class_live[c];
		st->blob_bytes_free += cb * a->class_free[c];
	}
	PM_ASSERT(st->blob_bytes_used == a->bytes_live); /* the running count agrees */
}
