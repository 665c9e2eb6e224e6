/* SPDX-License-Identifier: MIT
 *
 * metrics.h — the stats segment and pomai-control's own counters as
 * Prometheus text (exposition format 0.0.4), and the HTTP server that serves
 * it at /metrics (libmicrohttpd).
 *
 * Every field of a shard's block is one sample with a `shard` label; fields
 * that are one quantity cut several ways (ops by type, errors by status,
 * drops by reason, TCP connection events, ...) are one family with a label.
 * Counters end in _total; times are in seconds, sizes in bytes. The two
 * latency histograms are Prometheus histograms over a coarse `le` ladder
 * (1 µs .. 10 s, 1-2.5-5 steps): a `le` bucket counts the log-linear buckets
 * (proto/stats.h) that lie wholly at or below it, so it may miss the
 * observations up to 12.5 % below its bound — it never counts one above it.
 */
#ifndef POMAI_CONTROL_METRICS_H
#define POMAI_CONTROL_METRICS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.h"
#include "stats.h"

/* What one scrape shows: consistent copies of the blocks (pm_stats_read). */
struct ctl_scrape {
	bool up;           /* pomaid attached: the blocks below are valid */
	uint32_t nshards;
	struct pm_stats_global g;
	struct pm_stats_shard s[PM_STATS_SHARDS_MAX];
	const struct ctl_counters *c;
};

/* Copy the mapped segment's blocks into sc (up stays as the caller set it);
 * false if a block could not be read (a writer kept it busy). */
bool ctl_scrape_read(const struct pm_stats_map *m, struct ctl_scrape *sc);
/* The text into out; its length, or 0 if it does not fit cap bytes. */
size_t ctl_metrics_render(const struct ctl_scrape *sc, char *out, size_t cap);

/* The HTTP server. It calls `fill` for each scrape of /metrics; fill writes
 * the text into out and returns its length (0: 500 Internal Server Error). */
typedef size_t (*ctl_metrics_fill)(void *arg, char *out, size_t cap);
struct ctl_http;
/* Listen on addr:port (host order); NULL with err on failure. */
struct ctl_http *ctl_http_start(uint32_t addr, uint16_t port, ctl_metrics_fill fill, void *arg,
				char *err, size_t errlen);
void ctl_http_stop(struct ctl_http *h);

#endif
