/* SPDX-License-Identifier: MIT
 *
 * stats_seg.h — reading pomaid's stats segment (proto/stats.h) from a test.
 * Header-only: only the suites that link the stats reader include it.
 */
#ifndef POMAI_TESTS_STATS_SEG_H
#define POMAI_TESTS_STATS_SEG_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proc.h"
#include "stats.h"

/* The sum over the shards of the u64 at byte off of the segment's shard
 * block (data_dir/pomaid.stats); -1 when it cannot be read. */
static inline long long stats_seg_total(const char *data_dir, size_t off)
{
	static struct pm_stats_shard sh;
	char path[PATH_MAX + 16], why[256];
	struct pm_stats_map m;
	snprintf(path, sizeof(path), "%s/pomaid.stats", data_dir);
	if (pm_stats_open(path, &m, why, sizeof(why)) != 0)
		return -1;
	long long sum = 0;
	for (uint32_t i = 0; i < m.nshards && sum >= 0; i++) {
		uint64_t v;
		if (!pm_stats_read(pm_stats_shard_at(m.base, i), &sh, sizeof(sh)))
			sum = -1;
		memcpy(&v, (const uint8_t *)&sh + off, sizeof(v));
		sum = sum >= 0 ? sum + (long long)v : sum;
	}
	pm_stats_close(&m);
	return sum;
}

/* stats_seg_total asked again (every PROC_POLL_MS) until it is at least want,
 * at most ms: workers publish every PM_STATS_PUBLISH_MS. Its last value. */
static inline long long stats_seg_reaches(const char *data_dir, size_t off, long long want, int ms)
{
	long long got = stats_seg_total(data_dir, off);
	for (uint64_t deadline = proc_now_ms() + (uint64_t)ms;
	     got < want && proc_now_ms() < deadline; got = stats_seg_total(data_dir, off))
		proc_pause_ms(PROC_POLL_MS);
	return got;
}

#endif
