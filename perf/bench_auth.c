/* SPDX-License-Identifier: MIT
 *
 * bench_auth — what authentication costs a GET (issue 19): the same pomaid,
 * the same keys, GETs at depth 1 from a client without a user and from one
 * whose every frame carries an AUTH trailer (signed by libpomai, verified by
 * pomaid: a trailer is checked whether auth is on or off), interleaved in
 * one process: round after round, each side opens its client, runs --ops
 * GETs, closes it, so that the machine's load (other jobs) falls on both
 * alike. Over kernel UDP or a DPDK memif port (--memif: one ethdev port per
 * client, so the two sides take turns on it).
 *
 * Prints per side ops/s (the median over its rounds: a round the machine's
 * other jobs stalled does not move it), p50 and p99 of the round trip; and
 * the paired figure: the median over rounds of (on / off) of the two rounds
 * run back to back, which cancels load that drifts slower than a round.
 * perf/auth_cost.sh runs it.
 *
 *   bench_auth --host H --port P --shards N --user ID --key-file F
 *              [--memif EAL_ARGS --memif-ip A/LEN] [--rounds R] [--ops N] [--keys K]
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "pomai.h"
#ifdef POMAI_BENCH_MEMIF
#include "pomai_memif.h"
#endif

/* Defaults: enough rounds that load drifts average out, enough GETs per round
 * that a client's open (a memif port's start and ARP) is not in the figure. */
#define ROUNDS_DEFAULT 10u
#define OPS_DEFAULT 20000u
#define KEYS_DEFAULT 1000u
#define VALUE_BYTES 32u

struct opts {
	struct pm_client_config cfg;
	const char *memif_eal, *memif_ip;
	uint32_t rounds, ops, keys;
	uint32_t user;
	uint8_t key[PM_CLIENT_USER_KEY_BYTES];
};

struct side {
	const char *name;
	uint64_t ns;       /* time in its rounds */
	uint64_t n;        /* latencies recorded */
	double *round_ops; /* each round's ops/s */
	double *lat_us;    /* rounds x ops */
};

static int unhex(const char *t, uint8_t *out, size_t n)
{
	if (strlen(t) < 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(t + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static int read_key(const char *path, uint8_t *key)
{
	char text[256] = "";
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
	if (f)
		fclose(f);
	text[n] = '\0';
	return unhex(text, key, PM_CLIENT_USER_KEY_BYTES);
}

static struct pm_client *open_side(const struct opts *o, bool signed_)
{
	struct pm_client_config cfg = o->cfg;
	struct pm_client *c = NULL;
	const char *why = NULL;
	if (signed_) {
		cfg.user = o->user;
		memcpy(cfg.key, o->key, sizeof(cfg.key));
	}
	enum pm_client_status st;
#ifdef POMAI_BENCH_MEMIF
	if (o->memif_eal) {
		struct pm_client_memif m;
		pm_client_memif_default(&m);
		m.eal_args = o->memif_eal;
		m.local_ip = o->memif_ip;
		cfg.transport = PM_CLIENT_MEMIF;
		st = pm_client_memif_open(&cfg, &m, &c, &why);
	} else
#endif
		st = pm_client_open(&cfg, &c);
	if (st != PM_CLIENT_OK) {
		fprintf(stderr, "bench_auth: open: %s%s%s\n", pm_client_strerror(st), why ? ": " : "",
			why ? why : "");
		exit(1);
	}
	return c;
}

static int key_of(uint32_t i, char *k)
{
	return snprintf(k, 24, "bench:%u", i);
}

static void preload(const struct opts *o)
{
	struct pm_client *c = open_side(o, true);
	char k[24], v[VALUE_BYTES];
	memset(v, 'v', sizeof(v));
	for (uint32_t i = 0; i < o->keys; i++)
		if (pm_client_set(c, k, (size_t)key_of(i, k), v, sizeof(v), 0) != PM_CLIENT_OK) {
			fprintf(stderr, "bench_auth: preload failed\n");
			exit(1);
		}
	pm_client_close(c);
}

/* One round of one side: ops GETs at depth 1, each timed. */
static void round_of(const struct opts *o, struct side *s, bool signed_, uint32_t r)
{
	struct pm_client *c = open_side(o, signed_);
	char k[24], v[VALUE_BYTES];
	size_t vlen;
	uint64_t t0 = bu_now_ns();
	for (uint32_t i = 0; i < o->ops; i++) {
		int kl = key_of((i * 7919u + r) % o->keys, k);
		uint64_t a = bu_now_ns();
		if (pm_client_get(c, k, (size_t)kl, v, sizeof(v), &vlen) != PM_CLIENT_OK ||
		    vlen != VALUE_BYTES) {
			fprintf(stderr, "bench_auth: %s GET failed\n", s->name);
			exit(1);
		}
		s->lat_us[s->n++] = (double)(bu_now_ns() - a) / 1000.0;
	}
	uint64_t dt = bu_now_ns() - t0;
	s->ns += dt;
	s->round_ops[r] = (double)o->ops * 1e9 / (double)dt;
	pm_client_close(c);
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

static double pct(const struct side *s, double p)
{
	return s->lat_us[(uint64_t)(p * (double)(s->n - 1))];
}

static int parse(int argc, char **argv, struct opts *o)
{
	pm_client_config_default(&o->cfg);
	o->rounds = ROUNDS_DEFAULT;
	o->ops = OPS_DEFAULT;
	o->keys = KEYS_DEFAULT;
	const char *key_file = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];
		uint32_t u;
		if (!strcmp(a, "--host"))
			o->cfg.host = v;
		else if (!strcmp(a, "--port") && bu_parse_u32(v, 65535, &u) == 0)
			o->cfg.base_port = u;
		else if (!strcmp(a, "--shards") && bu_parse_u32(v, 1024, &u) == 0)
			o->cfg.shards = u;
		else if (!strcmp(a, "--user") && bu_parse_u32(v, 65535, &u) == 0)
			o->user = u;
		else if (!strcmp(a, "--key-file"))
			key_file = v;
		else if (!strcmp(a, "--memif"))
			o->memif_eal = v;
		else if (!strcmp(a, "--memif-ip"))
			o->memif_ip = v;
		else if (!strcmp(a, "--rounds") && bu_parse_u32(v, 1000, &u) == 0 && u)
			o->rounds = u;
		else if (!strcmp(a, "--ops") && bu_parse_u32(v, 10000000, &u) == 0 && u)
			o->ops = u;
		else if (!strcmp(a, "--keys") && bu_parse_u32(v, 10000000, &u) == 0 && u)
			o->keys = u;
		else
			return -1;
	}
	return o->user && key_file && read_key(key_file, o->key) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static struct opts o;
	if (parse(argc, argv, &o) != 0) {
		fprintf(stderr, "usage: bench_auth --host H --port P --shards N --user ID --key-file F"
				" [--memif EAL_ARGS --memif-ip A/LEN] [--rounds R] [--ops N] [--keys K]\n");
		return 2;
	}
	bu_print_header("bench_auth", argc, argv);
	preload(&o);
	struct side sides[2] = { { .name = "off" }, { .name = "on" } };
	for (int i = 0; i < 2; i++)
		if (!(sides[i].lat_us = malloc((size_t)o.rounds * o.ops * sizeof(double))) ||
		    !(sides[i].round_ops = calloc(o.rounds, sizeof(double))))
			return 1;
	for (uint32_t r = 0; r < o.rounds; r++) /* interleaved; which goes first alternates */
		for (int k = 0; k < 2; k++) {
			int i = (int)((r + (uint32_t)k) % 2u);
			round_of(&o, &sides[i], i == 1, r);
		}
	double *ratio = calloc(o.rounds, sizeof(double));
	for (uint32_t r = 0; ratio && r < o.rounds; r++)
		ratio[r] = sides[1].round_ops[r] / sides[0].round_ops[r];
	double paired = ratio ? bu_median(ratio, o.rounds) : 0;
	free(ratio);
	for (int i = 0; i < 2; i++)
		qsort(sides[i].lat_us, sides[i].n, sizeof(double), cmp_double);
	double ops[2], p50[2], p99[2];
	for (int i = 0; i < 2; i++) {
		ops[i] = bu_median(sides[i].round_ops, o.rounds);
		p50[i] = pct(&sides[i], 0.50);
		p99[i] = pct(&sides[i], 0.99);
		printf("RESULT transport=%s auth=%s rounds=%u ops=%" PRIu64 " ops_s=%.0f p50_us=%.2f"
		       " p99_us=%.2f\n", o.memif_eal ? "memif" : "udp", sides[i].name, o.rounds,
		       sides[i].n, ops[i], p50[i], p99[i]);
	}
	printf("DIFF transport=%s ops_s_pct=%+.2f paired_ops_s_pct=%+.2f p50_us=%+.2f"
	       " p99_us=%+.2f\n", o.memif_eal ? "memif" : "udp", 100.0 * (ops[1] - ops[0]) / ops[0],
	       100.0 * (paired - 1.0), p50[1] - p50[0], p99[1] - p99[0]);
	for (int i = 0; i < 2; i++) {
		free(sides[i].lat_us);
		free(sides[i].round_ops);
	}
	return 0;
}
