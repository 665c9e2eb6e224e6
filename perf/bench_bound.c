/* SPDX-License-Identifier: MIT
 *
 * bench_bound.c — what the bounded L2 (engine/distance.h: l2sq_bounded, a
 * distance that stops once its partial sum is past the worst result kept)
 * saves, against the same engine computing every distance whole.
 *
 * One shard holds the Fashion-MNIST training images twice: in a flat
 * collection (exact scans) and in an HNSW one. Each round answers the queries
 * with the shard's own kernels (bounded) and with a copy whose l2sq_bounded
 * computes the whole distance (whole), alternating which goes first; each
 * side is timed in the thread's CPU time (CLOCK_THREAD_CPUTIME_ID: other
 * processes on a loaded machine do not stretch it). The medians and their
 * ratio are printed, and every answer of the two sides is compared: the
 * bounded L2 changes no hit (the run fails if one differs). The HNSW rows
 * are the control: the graph search does not use the bounded L2 (distance.h
 * says why), so their ratio shows the run's noise.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"
#include "distance.h"
#include "fmnist.h"
#include "hnsw.h"
#include "knn.h"
#include "request.h"
#include "shard.h"
#include "vector.h"

#define BOUND_QUERIES_DEFAULT 500u
#define BOUND_ROUNDS_DEFAULT 5u
#define BOUND_ROUNDS_MAX 51u
#define BOUND_K 10u
/* Two copies of 60,000 blobs of 3.3 KiB and the graph: about 420 MiB. */
#define BOUND_ARENA_BYTES (UINT64_C(1) << 30)
#define BOUND_EFS 3u
static const uint32_t efs[BOUND_EFS] = { 20, 40, 160 };

static const struct pm_kernels *best;

static float l2sq_whole(const float *a, const float *b, uint32_t n, float bound)
{
	(void)bound;
	return best->l2sq(a, b, n);
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct answers {
	struct pm_knn_hit flat[BOUND_K], graph[BOUND_EFS][BOUND_K];
	uint32_t nflat, ngraph[BOUND_EFS];
};

struct bench {
	struct pm_shard sh;
	struct fmnist train, test;
	uint32_t queries, rounds;
	struct answers *ans[2]; /* [side][query] */
};

/* One pass of every query, exact scan (what == BOUND_EFS) or graph at efs[what]:
 * CPU ns, answers kept in ans. */
static uint64_t pass(struct bench *b, const struct pm_kernels *kern, unsigned what,
		     struct answers *ans)
{
	b->sh.kern = kern;
	struct pm_collection *flat = pm_coll_find(&b->sh, (const uint8_t *)"flat", 4);
	struct pm_collection *graph = pm_coll_find(&b->sh, (const uint8_t *)"graph", 5);
	uint64_t t0 = thread_cpu_ns();
	for (uint32_t q = 0; q < b->queries; q++) {
		const float *v = fmnist_image(&b->test, q);
		if (what == BOUND_EFS) {
			struct pm_knn_scan s;
			pm_knn_scan_begin(&s, flat, v, BOUND_K, ans[q].flat);
			while (!pm_knn_scan_step(&s, &b->sh, flat, UINT64_MAX))
				;
			ans[q].nflat = pm_knn_scan_end(&s, &b->sh);
		} else {
			ans[q].ngraph[what] =
				pm_hnsw_search(&b->sh, graph, v, BOUND_K, efs[what], ans[q].graph[what]);
		}
	}
	return thread_cpu_ns() - t0;
}

static int load(struct bench *b)
{
	struct pm_shard_config cfg;
	pm_shard_config_default(&cfg);
	cfg.arena_bytes = BOUND_ARENA_BYTES;
	if (pm_shard_init(&b->sh, &cfg) != PM_OK)
		return -1;
	struct pm_collection_params fp = { .dim = b->train.dim, .index = PM_INDEX_FLAT };
	struct pm_collection_params gp = { .dim = b->train.dim, .index = PM_INDEX_HNSW };
	if (pm_coll_params_check(&fp) != PM_OK || pm_coll_params_check(&gp) != PM_OK ||
	    pm_coll_create(&b->sh, (const uint8_t *)"flat", 4, &fp) != PM_OK ||
	    pm_coll_create(&b->sh, (const uint8_t *)"graph", 5, &gp) != PM_OK)
		return -1;
	uint64_t t0 = bu_now_ns();
	for (uint32_t i = 0; i < b->train.count; i++)
		for (int g = 0; g < 2; g++) {
			char key[32];
			int kl = snprintf(key, sizeof(key), "%s:%06u", g ? "g" : "f", i);
			struct pm_request r = { .op = PM_OP_VADD,
						.key = { (const uint8_t *)key, (uint32_t)kl },
						.vec = (const uint8_t *)fmnist_image(&b->train, i),
						.dim = b->train.dim,
						.collection = { (const uint8_t *)(g ? "graph" : "flat"),
								g ? 5u : 4u } };
			struct pm_reply rep;
			pm_shard_apply(&b->sh, &r, 0, &rep);
			if (rep.status != PM_OK) {
				fprintf(stderr, "bench_bound: VADD %s: %s\n", key,
					pm_status_name(rep.status));
				return -1;
			}
		}
	printf("loaded %u vectors into a flat and an HNSW collection in %.1f s; kernels %s\n",
	       b->train.count, (double)(bu_now_ns() - t0) / 1e9, best->name);
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench b;
	const char *dir = FMNIST_DIR_DEFAULT;
	b.queries = BOUND_QUERIES_DEFAULT;
	b.rounds = BOUND_ROUNDS_DEFAULT;
	uint32_t base = 0;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = -1;
		if (!strcmp(argv[i], "--data") && v)
			dir = v, rc = 0;
		else if (!strcmp(argv[i], "--queries") && v)
			rc = bu_parse_u32(v, 10000, &b.queries);
		else if (!strcmp(argv[i], "--rounds") && v)
			rc = bu_parse_u32(v, BOUND_ROUNDS_MAX, &b.rounds);
		else if (!strcmp(argv[i], "--base") && v)
			rc = bu_parse_u32(v, 60000, &base);
		if (rc != 0 || b.queries == 0 || b.rounds == 0) {
			fprintf(stderr, "usage: bench_bound [--data DIR] [--queries N] [--rounds R] "
					"[--base N]\n");
			return 2;
		}
		i++;
	}
	bu_print_header("bench_bound: bounded L2 against whole distances, same engine", argc, argv);
	char err[256];
	if (fmnist_load_split(dir, "train", base, &b.train, err, sizeof(err)) != 0 ||
	    fmnist_load_split(dir, "t10k", b.queries, &b.test, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_bound: %s\n", err);
		return 1;
	}
	b.queries = b.test.count;
	best = pm_kernels_best();
	struct pm_kernels whole = *best;
	whole.l2sq_bounded = l2sq_whole;
	const struct pm_kernels *side_kern[2] = { best, &whole };
	b.ans[0] = calloc(b.queries, sizeof(struct answers));
	b.ans[1] = calloc(b.queries, sizeof(struct answers));
	if (!b.ans[0] || !b.ans[1] || load(&b) != 0)
		return 1;

	static double q_s[BOUND_EFS + 1][2][BOUND_ROUNDS_MAX];
	uint64_t differ = 0;
	for (uint32_t r = 0; r < b.rounds; r++)
		for (unsigned what = 0; what <= BOUND_EFS; what++) {
			for (int k = 0; k < 2; k++) {
				int side = (int)((r + what + (unsigned)k) % 2); /* alternate who goes first */
				uint64_t ns = pass(&b, side_kern[side], what, b.ans[side]);
				q_s[what][side][r] = b.queries / ((double)ns / 1e9);
			}
			for (uint32_t q = 0; q < b.queries; q++) {
				const struct answers *x = &b.ans[0][q], *y = &b.ans[1][q];
				differ += what == BOUND_EFS
						  ? x->nflat != y->nflat ||
							    memcmp(x->flat, y->flat, x->nflat * sizeof(x->flat[0]))
						  : x->ngraph[what] != y->ngraph[what] ||
							    memcmp(x->graph[what], y->graph[what],
								   x->ngraph[what] * sizeof(x->graph[what][0]));
			}
		}
	printf("\n%-14s %14s %14s %8s   (queries/s per thread-CPU second, median of %u rounds)\n",
	       "search", "bounded", "whole", "ratio", b.rounds);
	for (unsigned what = 0; what <= BOUND_EFS; what++) {
		double bq = bu_median(q_s[what][0], b.rounds), wq = bu_median(q_s[what][1], b.rounds);
		char name[32];
		if (what == BOUND_EFS)
			snprintf(name, sizeof(name), "exact scan");
		else
			snprintf(name, sizeof(name), "HNSW ef %u", efs[what]);
		printf("%-14s %14.1f %14.1f %7.2fx\n", name, bq, wq, bq / wq);
	}
	printf("answers that differ between the two: %llu (must be 0)\n", (unsigned long long)differ);
	return differ ? 1 : 0;
}
