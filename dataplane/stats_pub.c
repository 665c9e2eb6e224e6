/* SPDX-License-Identifier: MIT
 *
 * stats_pub.c — pomaid's side of the stats segment (proto/stats.h): the
 * file is created at start (through the data_dir's descriptor, datadir.h),
 * each worker publishes its own block every
 * PM_STATS_PUBLISH_MS, the admin thread the global one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "bridge.h"
#include "common.h"
#include "repl_io.h"
#include "datadir.h"
#include "snap_io.h"
#include "stats.h"
#include "stats_pub.h"
#include "users.h"
#include "wal_io.h"
#include "worker.h"

/* The layout is proto's (stats.h); the engine's counters fit it: its ops are
 * the wire's op numbers (checked in bridge.c), each of its statuses has the
 * slot of its wire code, and its size classes are the layout's (checked at
 * start-up: stats_fits). */
_Static_assert(PM_OP_COUNT <= PM_STATS_OPS, "every op has a counter slot");
_Static_assert(PM_STATUS_COUNT <= PM_STATS_STATUSES, "every status has a counter slot");
_Static_assert(PM_BLOB_CLASS_COUNT == PM_STATS_CLASSES, "every size class has a slot");
_Static_assert(PM_SHARDS_MAX <= PM_STATS_SHARDS_MAX, "every shard has a block");

/* Every engine status has an errors[] slot, and every size class the bytes
 * the layout labels it with; an error names what does not fit. */
static int stats_fits(char *err, size_t errlen)
{
	for (int st = PM_OK; st < PM_STATUS_COUNT; st++)
		if (pm_stats_status_slot(pm_status_to_wire((enum pm_status)st)) < 0)
			return pm_errf(err, errlen, "stats segment: status %s has no counter slot",
				       pm_status_name((enum pm_status)st));
	for (unsigned c = 0; c < PM_BLOB_CLASS_COUNT; c++)
		if (pm_blob_class_bytes(c) != pm_stats_class_bytes(c))
			return pm_errf(err, errlen,
				       "stats segment: size class %u is %u bytes, the layout says %u",
				       c, pm_blob_class_bytes(c), pm_stats_class_bytes(c));
	return 0;
}

int pm_stats_create(struct pm_daemon *d, char *err, size_t errlen)
{
	static const char name[] = "pomaid.stats", tmp[] = "pomaid.stats.new";
	size_t bytes = pm_stats_file_bytes(d->nshards);
	if (stats_fits(err, errlen) != 0)
		return -1;
	/* a new file each start: readers of the old one keep their mapping of it.
	 * Made anew under its temporary name (whatever held that name, a link
	 * included, is removed, not followed) and renamed over the old one. */
	int fd = pm_datadir_create(d->data_fd, tmp, O_RDWR, 0640);
	if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0) {
		int e = fd < 0 ? -fd : errno;
		if (fd >= 0)
			close(fd);
		return pm_errf(err, errlen, "%s/%s: %s", d->cfg.data_dir, tmp, strerror(e));
	}
	void *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED)
		return pm_errf(err, errlen, "%s/%s: mmap: %s", d->cfg.data_dir, tmp, strerror(errno));
	pm_stats_format(base, d->nshards);
	struct pm_stats_global *g = pm_stats_global_at(base);
	g->pid = (uint64_t)getpid();
	if (renameat(d->data_fd, tmp, d->data_fd, name) != 0) {
		munmap(base, bytes);
		return pm_errf(err, errlen, "%s/%s: %s", d->cfg.data_dir, name, strerror(errno));
	}
	d->stats_base = base;
	d->stats_bytes = bytes;
	return 0;
}

void pm_stats_destroy(struct pm_daemon *d)
{
	if (d->stats_base)
		munmap(d->stats_base, d->stats_bytes);
	d->stats_base = NULL;
}

/* Engine counters and arena accounting into s. */
static void shard_part(const struct pm_worker *w, struct pm_stats_shard *s)
{
	const struct pm_shard_stats *e = &w->shard.stats;
	struct pm_arena_stats a;
	pm_arena_stats(&w->shard.arena, &a);
	memcpy(s->ops, e->ops, sizeof(e->ops));
	for (int st = PM_OK; st < PM_STATUS_COUNT; st++) /* a slot each: stats_fits */
		s->errors[pm_stats_status_slot(pm_status_to_wire((enum pm_status)st))] = e->errors[st];
	s->hits = e->hits;
	s->misses = e->misses;
	s->keys = e->keys;
	s->vectors = e->vectors;
	s->collections = w->shard.ncolls - w->shard.ncolls_dropping;
	s->expired_lazy = e->expired_lazy;
	s->expired_active = e->expired_active;
	s->evicted = e->evicted_keys + e->evicted_vectors;
	s->knn_queries = e->knn_queries;
	s->knn_scanned = e->knn_scanned;
	s->arena_bytes = a.bytes_total;
	s->seed_bytes = a.seed_bytes;
	s->seeds_used = a.seeds_used;
	s->blob_bytes_used = a.blob_bytes_used;
	s->blob_bytes_free = a.blob_bytes_free;
	s->blob_bytes_unused = a.blob_bytes_unused;
	for (unsigned c = 0; c < PM_BLOB_CLASS_COUNT; c++)
		s->class_live_bytes[c] = a.class_live[c] * pm_blob_class_bytes(c);
}

/* Worker counters into s. */
static void worker_part(const struct pm_worker *w, struct pm_stats_shard *s)
{
	const struct pm_worker_stats *t = &w->stats;
	s->cpu = w->cpu;
	s->numa_node = w->numa;
	s->rx_datagrams = t->rx_datagrams;
	s->rx_frames = t->rx_frames;
	s->tx_datagrams = t->tx_datagrams;
	s->tx_errors = t->tx_errors;
	s->forwarded_out = t->forwarded_out;
	s->forwarded_in = t->forwarded_in;
	s->dropped[PM_DROP_MALFORMED] = t->dropped_malformed;
	s->dropped[PM_DROP_RING_FULL] = t->dropped_ring_full;
	s->dropped[PM_DROP_TX_FULL] = t->dropped_tx_full;
	s->dropped[PM_DROP_NOT_ALLOWED] = t->dropped_not_allowed;
	s->dropped[PM_DROP_REPLY] = t->dropped_reply;
	s->dropped[PM_DROP_SELF] = t->dropped_self;
	s->throttled = t->throttled_requests;
	s->fanouts = t->fanouts;
	s->fanout_timeouts = t->fanout_timeouts;
	s->tcp_accepted = t->tcp_accepted;
	s->tcp_closed = t->tcp_closed;
	s->tcp_refused = t->tcp_refused;
	s->tcp_stalled = t->tcp_stalled;
	s->tcp_idle_evicted = t->tcp_idle_evicted;
	s->tcp_frame_deadline = t->tcp_frame_deadline;
	s->tcp_buffer_evicted = t->tcp_buffer_evicted;
	s->tcp_addr_refused = t->tcp_addr_refused;
	s->lat_kv = w->lat_kv;
	s->lat_knn = w->lat_knn;
}

/* Authentication and guard counters into s (version 7, issue 19). */
static void access_part(const struct pm_worker *w, struct pm_stats_shard *s)
{
	const struct pm_guard_stats *g = &w->guard_stats;
	if (w->auth) { /* (allocated with the worker; NULL only if that failed) */
		const struct pm_auth_stats *a = &w->auth->st;
		s->auth_ok = a->ok;
		for (unsigned r = 0; r < PM_AUTH_R_COUNT; r++)
			s->auth_refused[r] = a->refused[r];
		s->auth_noperm = a->noperm;
		s->auth_proved = a->proved;
		s->auth_sessions_replaced = a->sessions_replaced;
	}
	s->guard_cookies_issued = g->cookies_issued;
	s->guard_retry_budget = g->retry_budget;
	s->guard_retry_write = g->retry_write;
	s->guard_retry_quota = g->retry_throttled;
	s->guard_validated = g->validated;
	s->guard_bad_cookies = g->bad_cookies;
	s->guard_dropped_cookie_frame = g->dropped_cookie_frame;
	s->guard_bytes_withheld = g->bytes_withheld;
	s->guard_withheld = g->withheld;
}

void pm_stats_publish(struct pm_worker *w)
{
	struct pm_daemon *d = w->d;
	if (!d->stats_base)
		return;
	struct pm_stats_shard *s = pm_stats_shard_at(d->stats_base, w->id);
	pm_stats_begin(&s->seq);
	s->publish_unix_ms = w->now_ms;
	s->publishes++;
	shard_part(w, s);
	worker_part(w, s);
	access_part(w, s);
	pm_wal_counters(w, s);
	pm_repl_counters(w, s);
	pm_snap_counters(w, s);
	w->be->counters(w, s);
	pm_stats_end(&s->seq);
}

/* ---------------------------------------------------------------- service time */

#if defined(__x86_64__)
#include <x86intrin.h>
static inline uint64_t ticks(void)
{
	return __rdtsc();
}
#else
static inline uint64_t ticks(void)
{
	return pm_mono_ns();
}
#endif

uint64_t pm_ticks(void)
{
	return ticks();
}

/* Ticks per nanosecond, from two readings of ticks and the monotonic clock
 * at least PM_TICKS_CALIBRATE_NS apart (1.0 until then: on machines without
 * a TSC the ticks are nanoseconds). */
void pm_ticks_calibrate(struct pm_worker *w)
{
	uint64_t t = ticks();
	if (w->tick0 == 0) {
		/* a first estimate now, over PM_TICKS_FIRST_CALIBRATE_NS (both clocks
		 * go on while the thread is preempted, so the ratio holds): without
		 * it no latency is counted before the first PM_TICKS_CALIBRATE_NS,
		 * and a load that ends sooner has none (test_admin's) */
		uint64_t ns0 = pm_mono_ns(), ns1;
		while ((ns1 = pm_mono_ns()) - ns0 < PM_TICKS_FIRST_CALIBRATE_NS)
			;
		uint64_t t1 = ticks();
#if defined(__x86_64__)
		if (t1 > t)
			w->ns_per_tick = (double)(ns1 - ns0) / (double)(t1 - t);
#else
		(void)t1;
		w->ns_per_tick = 1.0;
#endif
		w->tick0 = t;
		w->tick0_ns = ns0;
		return;
	}
#if defined(__x86_64__)
	if (w->now_ns - w->tick0_ns >= PM_TICKS_CALIBRATE_NS && t > w->tick0)
		w->ns_per_tick = (double)(w->now_ns - w->tick0_ns) / (double)(t - w->tick0);
#else
	w->ns_per_tick = 1.0;
#endif
}

void pm_lat_kv(struct pm_worker *w, uint64_t since)
{
	uint64_t t = ticks();
	if (w->ns_per_tick > 0.0 && t >= since)
		pm_hist_add(&w->lat_kv, (uint64_t)((double)(t - since) * w->ns_per_tick));
	w->last_tick = t;
}
