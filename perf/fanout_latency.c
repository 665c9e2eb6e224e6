/* SPDX-License-Identifier: MIT
 *
 * fanout_latency.c — how long pomaid's fan-outs take, as a client sees them:
 * the measurement behind the default of knn_timeout_ms (perf/fanout_timeout.sh
 * runs it on a loaded machine; perf/RESULTS.md has the numbers).
 *
 * One client (libpomai, UDP, one request at a time, no resend: its timeout is
 * far above any answer) asks, --rounds times each, a KNN (k 10 over a flat
 * collection of 1,000 vectors of dim 16, every shard scanning its part), a
 * paged INFO, and a CCREATE followed by a CDROP; the daemon under test should
 * run with a knn_timeout_ms far above these too, so that no fan-out is cut
 * short and the whole distribution is seen. Prints, per kind, the percentiles
 * and how many took longer than 50, 100, 250, 500 and 1000 ms, and one
 * "RESULT ..." line each for scripts. Exit 0; 2 on a usage or set-up error;
 * 3 if a request failed.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pomai.h"

#define DIM 16u
#define VECTORS 1000u
#define ROUNDS_MAX 100000u
/* Thresholds counted: the old default (100 ms) and the candidates around it. */
static const double over_ms[] = { 50, 100, 250, 500, 1000 };

static char info_buf[PM_CLIENT_INFO_REPLY_BYTES_MAX];

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *kind, double *ms, unsigned n, unsigned shards)
{
	qsort(ms, n, sizeof(ms[0]), cmp_double);
	double p50 = ms[n / 2], p99 = ms[(unsigned)(n * 0.99)], p999 = ms[(unsigned)(n * 0.999)];
	printf("%-8s n=%u  p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  over:", kind, n,
	       p50, p99, p999, ms[n - 1]);
	unsigned over[sizeof(over_ms) / sizeof(over_ms[0])] = { 0 };
	for (size_t t = 0; t < sizeof(over_ms) / sizeof(over_ms[0]); t++) {
		for (unsigned i = 0; i < n; i++)
			over[t] += ms[i] > over_ms[t];
		printf(" >%.0fms %u", over_ms[t], over[t]);
	}
	printf("\nRESULT kind=%s shards=%u n=%u p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
	       "over100=%u over250=%u over500=%u over1000=%u\n",
	       kind, shards, n, p50, p99, p999, ms[n - 1], over[1], over[2], over[3], over[4]);
}

int main(int argc, char **argv)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	unsigned rounds = 1000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			cfg.base_port = (uint32_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--shards"))
			cfg.shards = (uint32_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--rounds"))
			rounds = (unsigned)atoi(argv[i + 1]);
		else {
			fprintf(stderr, "usage: fanout_latency [--port P] [--shards N] [--rounds R]\n");
			return 2;
		}
	}
	if (rounds == 0 || rounds > ROUNDS_MAX) {
		fprintf(stderr, "fanout_latency: --rounds is 1..%u\n", ROUNDS_MAX);
		return 2;
	}
	cfg.timeout_ms = 30000; /* far above any answer: one attempt, no resend */
	cfg.retries = 0;
	struct pm_client *c;
	if (pm_client_open(&cfg, &c) != PM_CLIENT_OK) {
		fprintf(stderr, "fanout_latency: cannot open the client\n");
		return 2;
	}
	struct pm_client_coll_params p = { .dim = DIM };
	enum pm_client_status st = pm_client_collection_create(c, "fanout-latency", &p);
	float v[DIM];
	char key[32];
	for (unsigned i = 0; st == PM_CLIENT_OK && i < VECTORS; i++) {
		for (unsigned d = 0; d < DIM; d++)
			v[d] = (float)((i * 31u + d * 7u) % 101u);
		snprintf(key, sizeof(key), "fl-%u", i);
		st = pm_client_vadd(c, key, strlen(key), v, DIM, "fanout-latency", 0);
	}
	if (st != PM_CLIENT_OK) {
		fprintf(stderr, "fanout_latency: set-up: %s\n", pm_client_status_name(st));
		return 2;
	}
	double *knn = calloc(rounds, sizeof(double)), *info = calloc(rounds, sizeof(double));
	double *coll = calloc(rounds, sizeof(double));
	struct pm_client_hit hits[10];
	uint8_t keys[10 * 32];
	unsigned failed = 0;
	for (unsigned r = 0; r < rounds && knn && info && coll; r++) {
		struct pm_client_knn_opts o = { .k = 10, .collection = "fanout-latency" };
		struct pm_client_knn_result res = { .hits = hits, .hits_cap = 10, .keys = keys,
						    .keys_cap = sizeof(keys) };
		double t0 = now_ms();
		failed += pm_client_knn(c, v, DIM, &o, &res) != PM_CLIENT_OK;
		double t1 = now_ms();
		size_t len;
		failed += pm_client_info(c, NULL, info_buf, sizeof(info_buf), &len) != PM_CLIENT_OK;
		double t2 = now_ms();
		snprintf(key, sizeof(key), "fl-tmp-%u", r);
		failed += pm_client_collection_create(c, key, &p) != PM_CLIENT_OK;
		failed += pm_client_collection_drop(c, key, NULL) != PM_CLIENT_OK;
		double t3 = now_ms();
		knn[r] = t1 - t0;
		info[r] = t2 - t1;
		coll[r] = (t3 - t2) / 2; /* two fan-outs */
	}
	if (!knn || !info || !coll) {
		fprintf(stderr, "fanout_latency: out of memory\n");
		return 2;
	}
	report("knn", knn, rounds, cfg.shards);
	report("info", info, rounds, cfg.shards);
	report("ccreate", coll, rounds, cfg.shards);
	(void)pm_client_collection_drop(c, "fanout-latency", NULL);
	pm_client_close(c);
	free(knn);
	free(info);
	free(coll);
	if (failed)
		fprintf(stderr, "fanout_latency: %u requests failed\n", failed);
	return failed ? 3 : 0;
}
