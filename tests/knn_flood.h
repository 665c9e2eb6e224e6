/* SPDX-License-Identifier: MIT
 *
 * knn_flood.h — the expensive-KNN flood of issue 14 (item 5) against a real
 * pomaid, shared by the integration suite (test_work.c, which asserts on it)
 * and pomai-knn-flood (perf/knn_flood.sh, which records it).
 *
 * The scenario: pomaid on free loopback ports (UDP, no log), one flat (or,
 * with ef, HNSW) collection of `vectors` random vectors of `dim` floats, loaded through
 * libpomai, and a few KV keys. Then:
 *  1. the cost of one expensive query alone: `k` nearest neighbours over the
 *     whole collection, QUERY_SAMPLES times one after another, the median
 *     round trip;
 *  2. a polite client alone: GETs of the KV keys at polite_rps for `seconds`,
 *     open loop (each sent at its time whatever the replies do), each one's
 *     round trip measured, none resent: a GET unanswered after lost_ms is lost;
 *  3. the same polite client while a flooding client (its own address,
 *     127.0.0.3) sends such queries open loop at flood_qps to every shard in
 *     turn, draining their replies.
 * Percentiles count a lost GET as infinitely slow.
 */
#ifndef POMAI_TESTS_KNN_FLOOD_H
#define POMAI_TESTS_KNN_FLOOD_H

#include <stdbool.h>
#include <stdint.h>

#include "proc.h"

struct flood_cfg {
	const char *pomaid;          /* path of the daemon */
	const char *const *flags;    /* more pomaid flags, NULL-terminated; may be NULL */
	uint32_t shards;
	uint32_t vectors, dim;       /* the flat collection */
	uint32_t k;                  /* neighbours per flood query */
	uint32_t ef;                 /* 0: a flat collection; else an HNSW one, queried at this ef */
	uint32_t flood_qps;          /* flood queries per second (at least) */
	double overload;             /* > 0: at least this many times the rate of one
				      * query at a time (1000 / query_ms), so that the
				      * flood overloads the workers on any machine */
	uint32_t polite_rps;         /* GETs per second */
	uint32_t seconds;            /* each polite phase */
	uint32_t lost_ms;            /* a GET unanswered this long is lost */
	bool quiet;                  /* no progress lines */
};

struct flood_phase {
	uint64_t gets, answered, lost;
	uint64_t refused;            /* of the lost: answered with an error (BUSY) */
	double p50_ms, p99_ms, max_ms; /* INFINITY when lost GETs reach that rank */
};

struct flood_result {
	double load_s;               /* loading the collection */
	double query_ms;             /* one expensive query alone, median round trip */
	uint32_t query_status;       /* the last one's status (enum pm_wire_status) */
	uint32_t query_ok;           /* samples answered OK */
	struct flood_phase alone, flooded;
	uint64_t flood_sent, flood_ok, flood_timeout, flood_busy, flood_throttled;
	uint64_t flood_work_limit, flood_other;
	double flood_bytes_per_s;    /* request bytes the flood sent per second */
	uint32_t flood_qps;          /* the rate offered: cfg's, or raised by overload */
};

/* The pieces, for other tests: a daemon on free ports with cfg's flags (and
 * arena and seeds for cfg->vectors), the collection and keys loaded. */
/* The flags flood_daemon_start() gives pomaid before cfg's, at most. */
#define FLOOD_DAEMON_FLAGS_MAX 16u
struct flood_daemon {
	struct pomaid pm;            /* pm.base: UDP port of shard 0 */
	char arena[32], seeds[32];   /* its flags, sized for the vectors */
	const char *flags[FLOOD_DAEMON_FLAGS_MAX];
};
#define FLOOD_COLLECTION "flood"
#define FLOOD_KEY_FORMAT "v%u"       /* vector i's key */
#define FLOOD_POLITE_KEYS 16u    /* KV keys "polite0".. */
int flood_daemon_start(const struct flood_cfg *cfg, struct flood_daemon *d);
void flood_daemon_stop(struct flood_daemon *d);
int flood_load(const struct flood_cfg *cfg, const struct flood_daemon *d);
/* Vector i of the collection flood_load loads (dim floats into out). */
void flood_vector(uint32_t i, uint32_t dim, float *out);

/* Run the scenario; 0, or -1 with a message on stderr. */
int flood_run(const struct flood_cfg *cfg, struct flood_result *res);

/* The result as text lines, for people and for perf/RESULTS.md. */
void flood_print(const struct flood_cfg *cfg, const struct flood_result *res);

#endif
