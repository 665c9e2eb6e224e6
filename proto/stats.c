/* SPDX-License-Identifier: MIT
 *
 * proto/stats.c — the stats segment's layout, histograms, and the lock-free
 * reader (see stats.h; this file was control/stats.c).
 */
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "wire.h"

#define HEADER_BYTES 64u
#define ALIGN_BYTES 64u

_Static_assert(sizeof(struct pm_stats_header) <= HEADER_BYTES, "header fits its line");
_Static_assert(sizeof(struct pm_stats_shard) % ALIGN_BYTES == 0, "shard blocks are whole lines");
_Static_assert(sizeof(struct pm_stats_global) % ALIGN_BYTES == 0, "global block is whole lines");

_Static_assert(PM_WIRE_OP_COUNT <= PM_STATS_OPS, "every op has a counter slot");
_Static_assert(PM_STATS_STATUS_SLOTS <= PM_STATS_STATUSES, "the given slots fit");
_Static_assert(PM_AUTH_R_COUNT <= PM_STATS_AUTH_REASONS, "every AUTH reason has a slot");

/* ---------------------------------------------------------------- slots */

/* errors[] slots 0..PM_STATS_STATUS_SLOTS-1. */
static const uint8_t status_codes[PM_STATS_STATUS_SLOTS] = {
	PM_WIRE_OK,
	PM_WIRE_NOT_FOUND,
	PM_WIRE_E_WRONGTYPE,
	PM_WIRE_E_NOMEM,
	PM_WIRE_E_EXISTS,
	PM_WIRE_E_KEY_LEN,
	PM_WIRE_E_VALUE_LEN,
	PM_WIRE_E_DIM,
	PM_WIRE_E_NAN,
	PM_WIRE_E_ZERO_VECTOR,
	PM_WIRE_E_K,
	PM_WIRE_E_EF,
	PM_WIRE_E_TTL,
	PM_WIRE_E_COLLECTION_NAME,
	PM_WIRE_E_COLLECTIONS_FULL,
	PM_WIRE_E_PARAM,
	PM_WIRE_E_DTYPE,
	PM_WIRE_E_FILTER,     /* version 5 (issue 18): after DTYPE, as the engine's */
	PM_WIRE_E_ATTR,
	PM_WIRE_E_BATCH,
	PM_WIRE_E_FRAME_TRUNCATED,
	PM_WIRE_E_FRAME_TOO_BIG,
	PM_WIRE_E_FRAME_MAGIC,
	PM_WIRE_E_FRAME_VERSION,
	PM_WIRE_E_FRAME_OPCODE,
	PM_WIRE_E_FRAME_FLAGS,
	PM_WIRE_E_FRAME_LENGTH,
	PM_WIRE_E_TIMEOUT,
	PM_WIRE_E_BUSY,
	PM_WIRE_E_DISK_FULL,
	PM_WIRE_E_LOG_FAILED,
	PM_WIRE_E_THROTTLED,
	PM_WIRE_E_QUOTA,
	PM_WIRE_E_WORK_LIMIT,
	PM_WIRE_E_READONLY,   /* version 3 */
	PM_WIRE_E_NOREPLICAS,
	PM_WIRE_E_RETRY,      /* version 6 (issue 19): before INTERNAL, as the engine's */
	PM_WIRE_E_AUTH,
	PM_WIRE_E_NOPERM,
	PM_WIRE_E_INTERNAL,
};

uint8_t pm_stats_status_code(unsigned slot)
{
	return slot < PM_STATS_STATUS_SLOTS ? status_codes[slot] : PM_WIRE_OK;
}

int pm_stats_status_slot(uint8_t code)
{
	for (unsigned i = 0; i < PM_STATS_STATUS_SLOTS; i++)
		if (status_codes[i] == code)
			return (int)i;
	return -1;
}

/* Size classes: SMALL 8-byte steps 24..64, then 2^SUB per power of two of
 * bytes: 4 up to 512 B, 16 up to 8 KiB (FINE), 8 up to 1 MiB. */
#define CLASS_SMALL 6u
#define CLASS_BYTES_MIN 24u
#define CLASS_FINE_LG 9u     /* 512 B */
#define CLASS_TOP_LG 13u     /* 8 KiB */
#define CLASS_END_LG 20u     /* 1 MiB */
#define CLASS_FINE_START (CLASS_SMALL + (CLASS_FINE_LG - 6u) * 4u)
#define CLASS_TOP_START (CLASS_FINE_START + (CLASS_TOP_LG - CLASS_FINE_LG) * 16u)
_Static_assert(CLASS_TOP_START + (CLASS_END_LG - CLASS_TOP_LG) * 8u == PM_STATS_CLASSES,
	       "every class has a slot");

uint32_t pm_stats_class_bytes(unsigned slot)
{
	if (slot < CLASS_SMALL)
		return CLASS_BYTES_MIN + 8u * slot;
	unsigned lg0, sub_bits, k;
	if (slot < CLASS_FINE_START)
		lg0 = 6u, sub_bits = 2u, k = slot - CLASS_SMALL;
	else if (slot < CLASS_TOP_START)
		lg0 = CLASS_FINE_LG, sub_bits = 4u, k = slot - CLASS_FINE_START;
	else
		lg0 = CLASS_TOP_LG, sub_bits = 3u, k = slot - CLASS_TOP_START;
	unsigned lg = lg0 + (k >> sub_bits), i = k & ((1u << sub_bits) - 1u);
	return (1u << lg) + (1u << (lg - sub_bits)) * (i + 1u);
}

/* ---------------------------------------------------------------- histograms */

unsigned pm_hist_bucket(uint64_t ns)
{
	if (ns < PM_HIST_SUB)
		return (unsigned)ns;
	unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* >= PM_HIST_SUB_BITS */
	if (e >= PM_HIST_TOP_BITS)
		return PM_HIST_BUCKETS - 1;
	unsigned sub = (unsigned)(ns >> (e - PM_HIST_SUB_BITS)) & (PM_HIST_SUB - 1);
	return (e - PM_HIST_SUB_BITS + 1) * PM_HIST_SUB + sub;
}

uint64_t pm_hist_floor(unsigned bucket)
{
	if (bucket < PM_HIST_SUB)
		return bucket;
	unsigned e = bucket / PM_HIST_SUB + PM_HIST_SUB_BITS - 1, sub = bucket % PM_HIST_SUB;
	return (uint64_t)(PM_HIST_SUB + sub) << (e - PM_HIST_SUB_BITS);
}

void pm_hist_add(struct pm_hist *h, uint64_t ns)
{
	h->count++;
	h->sum += ns;
	h->max = ns > h->max ? ns : h->max;
	h->b[pm_hist_bucket(ns)]++;
}

uint64_t pm_hist_quantile(const struct pm_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
	rank = rank ? rank : 1;
	uint64_t seen = 0;
	for (unsigned b = 0; b < PM_HIST_BUCKETS - 1; b++) {
		seen += h->b[b];
		if (seen >= rank) {
			uint64_t edge = pm_hist_floor(b + 1) - 1;
			return edge < h->max ? edge : h->max;
		}
	}
	return h->max;
}

/* ---------------------------------------------------------------- layout */

size_t pm_stats_file_bytes(uint32_t nshards)
{
	return HEADER_BYTES + sizeof(struct pm_stats_global) +
	       (size_t)nshards * sizeof(struct pm_stats_shard);
}

void pm_stats_format(void *base, uint32_t nshards)
{
	struct pm_stats_header *h = base;
	memcpy(h->magic, PM_STATS_MAGIC, sizeof(h->magic));
	h->version = PM_STATS_VERSION;
	h->nshards = nshards;
	h->header_bytes = HEADER_BYTES;
	h->global_bytes = sizeof(struct pm_stats_global);
	h->shard_bytes = sizeof(struct pm_stats_shard);
	h->global_off = HEADER_BYTES;
	h->shards_off = HEADER_BYTES + sizeof(struct pm_stats_global);
	h->file_bytes = pm_stats_file_bytes(nshards);
}

/* ---------------------------------------------------------------- reading */

bool pm_stats_read(const void *src, void *dst, size_t bytes)
{
	_Atomic uint64_t *seq = (_Atomic uint64_t *)src;
	for (unsigned i = 0; i < PM_STATS_READ_TRIES; i++) {
		if (i >= PM_STATS_READ_SPINS)
			sched_yield(); /* the writer may have been preempted mid-write */
		uint64_t a = atomic_load_explicit(seq, memory_order_acquire);
		if (a & 1u)
			continue;
		/* byte copy through volatile: the writer may be changing it, and
		 * the sequence check below throws such a copy away */
		const volatile uint8_t *s = src;
		uint8_t *d = dst;
		for (size_t k = 0; k < bytes; k++)
			d[k] = s[k];
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(seq, memory_order_relaxed) == a)
			return true;
	}
	return false;
}

int pm_stats_open(const char *path, struct pm_stats_map *m, char *why, size_t whylen)
{
	memset(m, 0, sizeof(*m));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		int e = errno;
		snprintf(why, whylen, "%s: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	void *base = sb.st_size >= (off_t)HEADER_BYTES
			     ? mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0)
			     : MAP_FAILED;
	close(fd);
	if (base == MAP_FAILED) {
		snprintf(why, whylen, "%s: too short, or cannot be mapped", path);
		return -EINVAL;
	}
	const struct pm_stats_header *h = base;
	if (memcmp(h->magic, PM_STATS_MAGIC, sizeof(h->magic)) || h->version != PM_STATS_VERSION ||
	    h->shard_bytes != sizeof(struct pm_stats_shard) ||
	    h->global_bytes != sizeof(struct pm_stats_global) || h->nshards == 0 ||
	    h->nshards > PM_STATS_SHARDS_MAX || h->file_bytes != pm_stats_file_bytes(h->nshards) ||
	    (size_t)sb.st_size < h->file_bytes) {
		snprintf(why, whylen, "%s: not a stats segment of this version (%u)", path,
			 PM_STATS_VERSION);
		munmap(base, (size_t)sb.st_size);
		return -EINVAL;
	}
	m->base = base;
	m->bytes = (size_t)sb.st_size;
	m->nshards = h->nshards;
	return 0;
}

void pm_stats_close(struct pm_stats_map *m)
{
	if (m->base)
		munmap(m->base, m->bytes);
	memset(m, 0, sizeof(*m));
}
