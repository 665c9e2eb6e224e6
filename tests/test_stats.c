/* SPDX-License-Identifier: MIT
 *
 * test_stats.c — the stats segment's pieces (proto/stats.h), in one
 * process: histogram buckets cover every value once and in order, a quantile
 * is within 1/8 of the exact one over random data of many scales; a reader
 * copying a block while another thread rewrites it in a loop never keeps a
 * torn copy (every field of a block carries the same number) and never sees
 * the number go back; the layout round-trips through pm_stats_format and
 * pm_stats_open, which refuses a file of another version; the slots of
 * statuses and size classes (proto's labels) are the engine's, where
 * version 2 put them.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"
#include "bridge.h"
#include "cu_main.h"
#include "stats.h"

#define SAMPLES 200000u
#define HAMMER_WRITES 3000000u
/* Consistent copies the reader must take while the writer runs: the writer
 * goes on past HAMMER_WRITES until the reader has them (how many it gets in
 * 3 M writes depends on how the two threads are scheduled: 45 and 63 were
 * seen beside other suites on 2 cores), up to HAMMER_WRITES_MAX. */
#define HAMMER_READS_MIN 100u
#define HAMMER_WRITES_MAX (100u * HAMMER_WRITES)
#define BLOCK_FIELDS 255u

static uint64_t rng = 0x57A75ull;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_buckets(void)
{
	unsigned prev = 0;
	for (uint64_t v = 0; v < (1u << 20); v++) { /* monotone, and floor(bucket(v)) <= v */
		unsigned b = pm_hist_bucket(v);
		CU_ASSERT_FATAL(b >= prev && b < PM_HIST_BUCKETS);
		CU_ASSERT_FATAL(pm_hist_floor(b) <= v && v < pm_hist_floor(b + 1));
		prev = b;
	}
	CU_ASSERT_EQUAL(pm_hist_bucket(UINT64_MAX), PM_HIST_BUCKETS - 1);
	for (unsigned b = PM_HIST_SUB; b + 1 < PM_HIST_BUCKETS; b++) /* width / floor <= 1/8 */
		CU_ASSERT((pm_hist_floor(b + 1) - pm_hist_floor(b)) * PM_HIST_SUB <= pm_hist_floor(b));
}

static void test_quantiles(void)
{
	static uint64_t v[SAMPLES];
	static struct pm_hist h;
	for (unsigned scale = 0; scale < 4; scale++) {
		memset(&h, 0, sizeof(h));
		for (unsigned i = 0; i < SAMPLES; i++) {
			uint64_t r = pm_test_rand(&rng);
			v[i] = (r % 1000u + 1) << (10u * scale) >> (r >> 60); /* ns .. seconds, skewed */
			pm_hist_add(&h, v[i]);
		}
		qsort(v, SAMPLES, sizeof(v[0]), cmp_u64);
		static const double qs[] = { 0.5, 0.9, 0.99, 0.999, 1.0 };
		for (unsigned k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
			uint64_t exact = v[(size_t)(qs[k] * SAMPLES + 0.999999) - 1];
			uint64_t got = pm_hist_quantile(&h, qs[k]);
			CU_ASSERT(got >= exact);
			CU_ASSERT((double)(got - exact) <= (double)exact / PM_HIST_SUB + 1.0);
		}
		CU_ASSERT_EQUAL(h.count, SAMPLES);
		CU_ASSERT_EQUAL(h.max, v[SAMPLES - 1]);
	}
	memset(&h, 0, sizeof(h));
	CU_ASSERT_EQUAL(pm_hist_quantile(&h, 0.99), 0);
}

/* A block whose every field holds the number of the write that wrote it. */
struct block {
	_Atomic uint64_t seq;
	uint64_t f[BLOCK_FIELDS];
};
static struct block shared;
static _Atomic int writing;
static _Atomic uint64_t copies; /* consistent copies the reader took */

static void *writer(void *arg)
{
	(void)arg;
	for (uint64_t k = 1; k <= HAMMER_WRITES_MAX &&
			     (k <= HAMMER_WRITES || atomic_load(&copies) < HAMMER_READS_MIN); k++) {
		pm_stats_begin(&shared.seq);
		for (unsigned i = 0; i < BLOCK_FIELDS; i++)
			shared.f[i] = k;
		pm_stats_end(&shared.seq);
	}
	atomic_store(&writing, 0);
	return NULL;
}

static void test_reader_never_torn(void)
{
	pthread_t t;
	atomic_store(&writing, 1);
	atomic_store(&copies, 0);
	pthread_create(&t, NULL, writer, NULL);
	uint64_t reads = 0, busy = 0, torn = 0, back = 0, last = 0;
	static struct block copy;
	while (atomic_load(&writing)) {
		if (!pm_stats_read(&shared, &copy, sizeof(copy))) {
			busy++;
			continue;
		}
		atomic_store(&copies, ++reads);
		for (unsigned i = 1; i < BLOCK_FIELDS; i++)
			torn += copy.f[i] != copy.f[0];
		back += copy.f[0] < last;
		last = copy.f[0];
	}
	pthread_join(t, NULL);
	printf("\n  %llu consistent copies (%llu gave up while rewritten), last write seen %llu",
	       (unsigned long long)reads, (unsigned long long)busy, (unsigned long long)last);
	CU_ASSERT(reads >= HAMMER_READS_MIN);
	CU_ASSERT(last > 1); /* copies were taken while the writer ran */
	CU_ASSERT_EQUAL(torn, 0);
	CU_ASSERT_EQUAL(back, 0);
}

static void test_layout(void)
{
	char path[] = "/tmp/pomai-stats-XXXXXX";
	int fd = mkstemp(path);
	size_t bytes = pm_stats_file_bytes(3);
	CU_ASSERT_FATAL(fd >= 0 && ftruncate(fd, (off_t)bytes) == 0);
	void *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CU_ASSERT_FATAL(base != MAP_FAILED);
	pm_stats_format(base, 3);
	pm_stats_shard_at(base, 2)->keys = 42;
	struct pm_stats_map m;
	char why[256];
	CU_ASSERT_EQUAL_FATAL(pm_stats_open(path, &m, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(m.nshards, 3);
	CU_ASSERT_EQUAL(pm_stats_shard_at(m.base, 2)->keys, 42);
	CU_ASSERT_EQUAL((uintptr_t)pm_stats_shard_at(m.base, 1) % 64, 0);
	pm_stats_close(&m);
	((struct pm_stats_header *)base)->version = PM_STATS_VERSION + 1;
	CU_ASSERT(pm_stats_open(path, &m, why, sizeof(why)) < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "version"));
	munmap(base, bytes);
	close(fd);
	unlink(path);
}

/* The layout's labels are proto's; pomaid counts with the engine's numbers.
 * Each engine status lands in the errors[] slot of its enum value (version
 * 3 put READONLY and NOREPLICAS before INTERNAL) under its own name, and each size class in its slot with the
 * engine's class bytes; unused slots are never counted. */
static void test_slots_are_the_engines(void)
{
	for (int st = PM_OK; st < PM_STATUS_COUNT; st++) {
		int slot = pm_stats_status_slot(pm_status_to_wire((enum pm_status)st));
		CU_ASSERT_EQUAL(slot, st);
		CU_ASSERT_STRING_EQUAL(pm_wire_status_name(pm_stats_status_code((unsigned)st)),
				       pm_status_name((enum pm_status)st));
	}
	CU_ASSERT_EQUAL(PM_STATS_STATUS_SLOTS, PM_STATUS_COUNT);
	for (unsigned i = PM_STATS_STATUS_SLOTS; i < PM_STATS_STATUSES; i++)
		CU_ASSERT_EQUAL(pm_stats_status_code(i), PM_WIRE_OK);
	CU_ASSERT_EQUAL(pm_stats_status_slot(14), -1); /* a code no status has */
	for (unsigned c = 0; c < PM_STATS_CLASSES; c++)
		CU_ASSERT_EQUAL(pm_stats_class_bytes(c), pm_blob_class_bytes(c));
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "histogram buckets: monotone, within 1/8", test_buckets },
		{ "quantiles within 1/8 of the exact ones", test_quantiles },
		{ "a reader never keeps a torn or older copy", test_reader_never_torn },
		{ "layout: format, open, version refused", test_layout },
		{ "status and size-class slots are the engine's", test_slots_are_the_engines },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("stats", tests);
}
