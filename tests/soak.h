/* SPDX-License-Identifier: MIT
 *
 * soak.h — pomai-soak's bounds, its shared state, and the pieces its files
 * share (docs/soak.md says what the soak run does and why it fails).
 *
 * pomai-soak starts one pomaid, then runs three kinds of thread against it
 * until the run's time is up:
 *  - load threads (soak_load.c), each owning a disjoint key space and an
 *    exact model of it, checking every reply against the model;
 *  - one admin thread (soak_admin.c): snapshots and quota changes through
 *    the admin socket, and the windows in which THROTTLED is a right answer;
 *  - the main thread (soak.c): samples memory and latency, writes the CSV,
 *    and judges the run at the end.
 * Every limit of the run is here, so that one file says how big it is.
 */
#ifndef POMAI_TESTS_SOAK_H
#define POMAI_TESTS_SOAK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pomai.h"
#include "proc.h"
#include "stats.h"

/* ---------------------------------------------------------------- the load */

/* Load threads by default and at most (each has one client and its model). */
#define SOAK_THREADS_DEFAULT 4u
#define SOAK_THREADS_MAX 16u
/* KV keys each thread owns; with values of SOAK_VALUE_BYTES_MAX at most and
 * about 1.2 KB on average, about 5 MB of live values per thread. */
#define SOAK_KV_KEYS 4096u
/* Vectors each thread may hold in each of its two collections. */
#define SOAK_VEC_SLOTS 1024u
/* Dimensions of every vector: small, so that brute force in the checker is cheap. */
#define SOAK_DIM 16u
/* Components are multiples of 1/SOAK_VEC_STEPS_PER_UNIT in ±SOAK_VEC_UNITS_MAX:
 * every L2 distance is then exact in binary32 (at most 16 x 64^2 x 64 < 2^24
 * sixty-fourths), whatever order the server sums in. */
#define SOAK_VEC_STEPS_PER_UNIT 8
#define SOAK_VEC_UNITS_MAX 4
/* Neighbours asked for, and the HNSW search breadth. */
#define SOAK_K 10u
#define SOAK_HNSW_EF 64u
/* The largest value written (bytes); most are much smaller (soak_load.c). */
#define SOAK_VALUE_BYTES_MAX 16384u
/* TTLs given to a third of the SETs: a few seconds, so that keys expire
 * within a run and reads land before, in and after the uncertain window. */
#define SOAK_TTL_MS_MIN 500u
#define SOAK_TTL_MS_MAX 4000u
/* How far the server's expiry clock may be from the model's window (ms):
 * the worker reads its clock once per poll turn. */
#define SOAK_TTL_MARGIN_MS 20u
/* Distance tolerance: absolute plus relative to the distance (cosine is
 * computed in binary32 by the server and in double by the model). */
#define SOAK_DIST_TOL_ABS 1e-4
#define SOAK_DIST_TOL_REL 1e-5
/* A repair after a transient failure (timeout, BUSY): DEL or VDEL until the
 * server answers, at most this many times, backing off from
 * SOAK_REPAIR_BACKOFF_MS doubling up to SOAK_BACKOFF_MS_MAX between tries
 * (about 15 s in all) before the run gives up on the daemon. */
#define SOAK_REPAIR_TRIES 20u
#define SOAK_REPAIR_BACKOFF_MS 10u
/* The longest back-off taken after THROTTLED, whatever the hint says (ms). */
#define SOAK_BACKOFF_MS_MAX 1000u
/* The client's first wait and resends (UDP): 500 ms, 4 resends, 7.5 s in all,
 * longer than any stall a snapshot publish has shown (0.44 s, perf/RESULTS.md). */
#define SOAK_CLIENT_TIMEOUT_MS 500u
#define SOAK_CLIENT_RETRIES 4u

/* ---------------------------------------------------------------- the admin side */

/* A snapshot this often (s), and the longest it may take to complete (ms). */
#define SOAK_SNAPSHOT_EVERY_S 20u
#define SOAK_SNAPSHOT_DONE_MS 60000u
/* How often the snapshot's progress is read while it runs (ms). */
#define SOAK_SNAPSHOT_POLL_MS 200u
/* A quota cycle this often (s): the client's quota is tightened for
 * SOAK_QUOTA_TIGHT_MS, then relaxed (alternately by a generous QUOTA SET and
 * by QUOTA DEL, back to the daemon's default, unlimited). */
#define SOAK_QUOTA_EVERY_S 15u
#define SOAK_QUOTA_TIGHT_MS 2000u
/* Requests per second while tight (the load runs at thousands), and while
 * generous (never reached). */
#define SOAK_QUOTA_TIGHT_RPS 400u
#define SOAK_QUOTA_GENEROUS_RPS 10000000u
/* After a relax is acknowledged, THROTTLED is still right for this long (ms):
 * a worker's bucket refills at the new rate from where the tight one left it. */
#define SOAK_QUOTA_GRACE_MS 1000u
/* Tight windows remembered (a request is judged against every one of them). */
#define SOAK_QUOTA_WINDOWS 8u
/* An admin command's longest wait for its reply (ms); pomaid's own is 5 s. */
#define SOAK_ADMIN_TIMEOUT_MS 10000
#define SOAK_ADMIN_BUF_BYTES (64u << 10)
/* The admin thread's tick while it waits for its next action (ms). */
#define SOAK_ADMIN_TICK_MS 100u

/* ---------------------------------------------------------------- sampling and verdict */

#define SOAK_SAMPLE_S_DEFAULT 5u
#define SOAK_SECONDS_DEFAULT 180u
/* Samples kept for the verdict: a week at one per second would not fit, a day at 5 s does. */
#define SOAK_SAMPLES_MAX 20000u
/* The first SOAK_WARMUP_PCT % of the run fills the key spaces and the arenas
 * and is judged only for wrong replies. */
#define SOAK_WARMUP_PCT 20u
/* Memory: the last sample may exceed the first one after warm-up by at most
 * SOAK_MEM_GROWTH_PCT % + SOAK_MEM_SLACK_BYTES, and the least-squares slope
 * over the last half of the run, times that half's length, at most
 * SOAK_MEM_SLACK_BYTES. 8 MiB over a 30-minute run's last 15 minutes is a
 * leak of 9.3 KB/s; docs/soak.md explains the choice. */
#define SOAK_MEM_GROWTH_PCT 10u
#define SOAK_MEM_SLACK_BYTES (8u << 20)
/* Latency: the median of the per-interval p50 and p99 over the last third
 * after warm-up may be at most this many times that over the first third
 * (the machine is shared with other builds; docs/soak.md). */
#define SOAK_LAT_DRIFT_FACTOR 3.0
/* Latency below this is noise in the drift ratio (µs): a p99 moving from 40
 * to 130 µs is not a drift worth failing for. */
#define SOAK_LAT_FLOOR_US 200.0
/* Transient failures (timeouts, BUSY, a fan-out timeout) allowed per million
 * requests; more says the daemon stalls. Wrong replies: none allowed. */
#define SOAK_TRANSIENT_PER_MILLION_MAX 100u
/* Mean HNSW recall@K below this fails the run (the graph is broken, not just
 * approximate: with ef = 64 over 1,024 vectors it is above 0.95). */
#define SOAK_HNSW_RECALL_MIN 0.5
/* Bytes of the first wrong reply's description, kept for the report. */
#define SOAK_WHY_BYTES 512u

/* ---------------------------------------------------------------- shared state */

/* --auth: the load's user id. */
#define SOAK_AUTH_USER 1u

struct soak_opts {
	const char *pomaid, *data_dir, *csv;
	uint32_t seconds, sample_s, threads, shards;
	uint16_t base_port;
	/* --auth (issue 19): pomaid with auth = on; every load thread is user
	 * SOAK_AUTH_USER with this key, and the quota cycles are that user's */
	bool auth;
	uint8_t key[32];
};

/* What the load threads count; read by the sampler. */
struct soak_counts {
	_Atomic uint64_t ops, transient, wrong, throttled, knn_hnsw, recall_hits, recall_want;
	_Atomic uint64_t by_status[PM_CLIENT_STATUS_COUNT]; /* transient failures by status */
};

/* One tight-quota window: THROTTLED is right for a request that was
 * answered after start_ms and sent before end_ms + SOAK_QUOTA_GRACE_MS
 * (end_ms is UINT64_MAX while the quota is tight). */
struct soak_window {
	uint64_t start_ms, end_ms;
};

struct soak {
	struct soak_opts o;
	struct pomaid pm;
	char admin_sock[256], stats_path[256];
	_Atomic bool stop, failed;
	struct soak_counts n;
	/* per-interval latency histograms, merged from the threads' by the sampler */
	pthread_mutex_t hist_lock;
	struct pm_hist lat_kv, lat_knn;
	/* the quota windows, written by the admin thread */
	pthread_mutex_t quota_lock;
	struct soak_window windows[SOAK_QUOTA_WINDOWS];
	uint32_t nwindows;
	_Atomic uint64_t snapshots, quota_cycles;
	/* the first wrong reply or failure */
	pthread_mutex_t why_lock;
	char why[SOAK_WHY_BYTES];
	/* wakes the admin thread and the sampler at stop */
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
};

/* Record a failure (the first one's text is kept) and count it as wrong. */
void soak_fail(struct soak *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Wait until ms have passed or the run stops; false once it stopped. */
bool soak_wait_ms(struct soak *s, uint64_t ms);
/* Whether THROTTLED is right for a request sent at sent_ms and answered at done_ms. */
bool soak_throttle_ok(struct soak *s, uint64_t sent_ms, uint64_t done_ms);

void *soak_load_thread(void *arg);  /* arg: a struct soak_load * (soak_load.c) */
void *soak_admin_thread(void *arg); /* arg: the struct soak */
struct soak_load *soak_load_new(struct soak *s, uint32_t id);
/* Print the thread's client counters (transport, resends, timeouts, stale), then free it. */
void soak_load_free(struct soak_load *l);
/* Create the thread's collections (before the clock starts). 0 or -1. */
int soak_load_setup(struct soak_load *l);

#endif
