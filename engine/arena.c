/* SPDX-License-Identifier: MIT
 *
 * arena.c — seed slots and size-classed blobs in one mapping (see arena.h).
 *
 * Size classes: 24, 32, 40, 48, 56, 64 bytes, then four per power of two up to
 * 512 B (80, 96, 112, 128, 160, …, 448, 512), sixteen per power of two from
 * 512 B to 8 KiB (544, 576, …, 1024 in 32-byte steps; 1088, 1152, …, 2048 in
 * 64-byte steps; 128- and 256-byte steps up to 8 KiB), then eight per power
 * of two up to 1 MiB. For a request of n >= 20 bytes the waste of its class
 * is below 22 % (worst cases: 25 -> 32 wastes 7/32, 65 -> 80 wastes 15/80) —
 * within the 25 % the design allows — below 6.25 % from 512 B to 8 KiB, where
 * vectors and their graph nodes live, and below 12.5 % above. The fine steps
 * from 512 B are for vector blobs: a 100-d f32 HNSW node of 592 bytes takes
 * 608 (it took 640 with 128-byte steps there), a 128-d one of 704 bytes takes
 * 704 (768). The engine never asks for less than 20 bytes (kv.c puts values
 * under 24 bytes inline; a vector blob has a 64-byte header), and tests check
 * the bounds.
 *
 * Alignment: blobs of classes from 256 bytes up are cut on a boundary of
 * their class's largest power-of-two divisor, at most 64: every class that is
 * a multiple of 64 starts on a cache line, and the 32-byte steps between 512
 * B and 1 KiB (544, 608, …) start on a 32-byte boundary, so blobs of one such
 * class pack with no gap between them. A caller that needs a cache line (a
 * vector whose payload is whole lines, vector.c) asks for a multiple of 64.
 */
#include <string.h>
#include <sys/mman.h>

#include "arena.h"
#include "common.h"

#define HUGEPAGE_BYTES (UINT64_C(2) << 20)
#define POISON_BYTE 0xDB
#define SMALL_CLASSES 6u /* 24..64 in 8-byte steps */
/* Classes by power of two of the request (lg = floor(log2(bytes - 1))): four
 * per power below 512 B, FINE_SUB_BITS (sixteen) from 512 B to 8 KiB, eight
 * above. */
#define MID_SUB_BITS 2u
#define FINE_LG_MIN 9u  /* 512 B */
#define FINE_LG_END 13u /* 8 KiB */
#define FINE_SUB_BITS 4u
#define TOP_SUB_BITS 3u
#define FINE_CLASSES_START (SMALL_CLASSES + (FINE_LG_MIN - 6u) * (1u << MID_SUB_BITS))
#define TOP_CLASSES_START (FINE_CLASSES_START + (FINE_LG_END - FINE_LG_MIN) * (1u << FINE_SUB_BITS))
/* Classes from 256 bytes up are cut aligned (see the top of the file); the
 * skipped bytes (< 64 per switch from a smaller class) are counted as gap. */
#define ALIGNED_CLASS_BYTES_MIN PM_BLOB_ALIGNED_BYTES_MIN
#define CLASS_ALIGN_BYTES_MAX 64u

/* ---------------------------------------------------------------- size classes */

unsigned pm_blob_class(uint32_t bytes)
{
	PM_DEBUG_ASSERT(bytes >= 1 && bytes <= PM_BLOB_BYTES_MAX);
	if (bytes <= 64)
		return bytes <= PM_BLOB_BYTES_MIN ? 0 : (bytes + 7) / 8 - 3;
	uint32_t m = bytes - 1;
	unsigned lg = 31u - (unsigned)__builtin_clz(m); /* >= 6 */
	unsigned base, sb;
	if (lg < FINE_LG_MIN)
		base = SMALL_CLASSES + (lg - 6u) * (1u << MID_SUB_BITS), sb = MID_SUB_BITS;
	else if (lg < FINE_LG_END)
		base = FINE_CLASSES_START + (lg - FINE_LG_MIN) * (1u << FINE_SUB_BITS), sb = FINE_SUB_BITS;
	else
		base = TOP_CLASSES_START + (lg - FINE_LG_END) * (1u << TOP_SUB_BITS), sb = TOP_SUB_BITS;
	return base + ((m >> (lg - sb)) - (1u << sb));
}

uint32_t pm_blob_class_bytes(unsigned cls)
{
	PM_DEBUG_ASSERT(cls < PM_BLOB_CLASS_COUNT);
	if (cls < SMALL_CLASSES)
		return PM_BLOB_BYTES_MIN + 8 * cls;
	unsigned lg0, sb, k;
	if (cls < FINE_CLASSES_START)
		lg0 = 6u, sb = MID_SUB_BITS, k = cls - SMALL_CLASSES;
	else if (cls < TOP_CLASSES_START)
		lg0 = FINE_LG_MIN, sb = FINE_SUB_BITS, k = cls - FINE_CLASSES_START;
	else
		lg0 = FINE_LG_END, sb = TOP_SUB_BITS, k = cls - TOP_CLASSES_START;
	unsigned lg = lg0 + (k >> sb), i = k & ((1u << sb) - 1u);
	return (1u << lg) + (1u << (lg - sb)) * (i + 1);
}

/* The boundary a blob of class bytes cb is cut on (1 below 256 bytes). */
static uint64_t class_align(uint32_t cb)
{
	if (cb < ALIGNED_CLASS_BYTES_MIN)
		return 1;
	return PM_MIN((uint64_t)(cb & -cb), (uint64_t)CLASS_ALIGN_BYTES_MAX);
}

_Static_assert(TOP_CLASSES_START + (20u - FINE_LG_END) * (1u << TOP_SUB_BITS) == PM_BLOB_CLASS_COUNT,
	       "class count");
_Static_assert(PM_BLOB_BYTES_MAX == (1u << 20), "class table ends at 1 MiB");
_Static_assert((1u << FINE_LG_MIN) >> FINE_SUB_BITS == 32u, "finest aligned step is 32 bytes");

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
		uint64_t at = pm_align_up(a->bump, class_align(cb));
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
