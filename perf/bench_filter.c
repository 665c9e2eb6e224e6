/* SPDX-License-Identifier: MIT
 *
 * bench_filter.c — filtered k-NN on Fashion-MNIST, one process, one thread:
 * Pomai's filtered search (pm_shard_apply(VQUERY) with a filter expression,
 * engine/filter.h) side by side with hnswlib searched unfiltered for
 * k x oversampling and filtered afterwards, and with Pomai's exact filtered
 * scan.
 *
 * Data: the training images as base vectors (784 raw pixels as floats; the
 * first --base of them, default all 60,000), each with two attributes: its
 * class as a tag (label = 'c0'..'c9') and a seeded random integer r in
 * [0, 1000) as a number. Queries: the first --queries test images (default
 * 500); query q filters on class q % 10:
 *    10 %   label = 'cX'                 (one class)
 *     1 %   label = 'cX' and r < 100     (one class and a tenth of r)
 *   0.1 %   label = 'cX' and r < 10      (one class and a hundredth of r)
 * L2, k = 10, M = 16, ef_construction = 200 for both graphs. Ground truth:
 * a brute-force scan of the base vectors that pass (its own code, not
 * Pomai's). Each round runs every method over every query, the methods'
 * order rotating; the median of --rounds rounds (default 3) is reported, in
 * queries per second of this thread's CPU time.
 * hnswlib's post-filtering asks for k x 10 and k x 100 neighbours (ef at
 * least that), then keeps the first k that pass.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "benchutil.h"
#include "fmnist.h"
#include "hnswlib_anchor.h"
#include "knn.h"
#include "request.h"
#include "shard.h"
#include "vector.h"

/* This thread's CPU time: the machine is shared, and wall-clock rounds of
 * one method spread by 3x under the other processes' load, so a round is
 * timed by the CPU it used. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define FB_K 10u
#define FB_M 16u
#define FB_EF_CONSTRUCTION 200u
#define FB_QUERIES_DEFAULT 500u
#define FB_ROUNDS_DEFAULT 3u
#define FB_ROUNDS_MAX 15u
#define FB_CLASSES 10u
/* The numeric attribute r is uniform in [0, this). */
#define FB_R_RANGE 1000u
#define FB_SEED 0x5EEDF17Eu
/* hnswlib post-filtering: neighbours asked, as multiples of k. */
#define FB_NOVERSAMPLE 2u
static const uint32_t fb_oversample[FB_NOVERSAMPLE] = { 10, 100 };
/* Pomai's filtered graph search: ef values reported. */
#define FB_NEF 2u
static const uint32_t fb_efs[FB_NEF] = { 64, 128 };
#define FB_NCASES 3u
static const struct {
	const char *name;
	uint32_t r_below; /* FB_R_RANGE: no r condition */
} fb_cases[FB_NCASES] = { { "10 %", FB_R_RANGE }, { "1 %", 100 }, { "0.1 %", 10 } };
/* Methods per case: Pomai at each ef, Pomai exact, hnswlib at each oversampling. */
#define FB_NMETHODS (FB_NEF + 1u + FB_NOVERSAMPLE)
#define FB_ARENA_BYTES (UINT64_C(1) << 30)

struct fb {
	struct fmnist base, queries;
	uint8_t *label;      /* per base vector */
	uint16_t *r;         /* per base vector */
	uint32_t nq;
	struct pm_shard sh;
	struct ph_index *ph;
	uint32_t gt[FB_NCASES][FB_QUERIES_DEFAULT * 20][FB_K];
	uint32_t gt_n[FB_NCASES][FB_QUERIES_DEFAULT * 20];
};

static struct fb fb;

/* ---------------------------------------------------------------- data */

/* The first count labels of a gzipped IDX1 file (magic 0x00000801). */
static uint8_t *load_labels(const char *path, uint32_t count)
{
	gzFile f = gzopen(path, "rb");
	uint8_t head[8];
	uint8_t *out = malloc(count);
	if (!f || !out || gzread(f, head, 8) != 8 || head[2] != 8 || head[3] != 1 ||
	    gzread(f, out, count) != (int)count) {
		fprintf(stderr, "bench_filter: %s: cannot read %u labels\n", path, count);
		exit(2);
	}
	gzclose(f);
	return out;
}

static bool passes(uint32_t i, uint32_t cls, uint32_t r_below)
{
	return fb.label[i] == cls && fb.r[i] < r_below;
}

static int fexpr(char *out, size_t cap, uint32_t cls, uint32_t r_below)
{
	if (r_below >= FB_R_RANGE)
		return snprintf(out, cap, "label = 'c%u'", cls);
	return snprintf(out, cap, "label = 'c%u' and r < %u", cls, r_below);
}

static float l2(const float *a, const float *b, uint32_t dim)
{
	float s = 0;
	for (uint32_t j = 0; j < dim; j++)
		s += (a[j] - b[j]) * (a[j] - b[j]);
	return s;
}

/* Exact filtered top k of every query, for every case. */
static void ground_truth(void)
{
	const uint32_t dim = fb.base.dim;
	for (uint32_t c = 0; c < FB_NCASES; c++)
		for (uint32_t q = 0; q < fb.nq; q++) {
			const float *qv = fmnist_image(&fb.queries, q);
			float best[FB_K];
			uint32_t n = 0;
			for (uint32_t i = 0; i < fb.base.count; i++) {
				if (!passes(i, q % FB_CLASSES, fb_cases[c].r_below))
					continue;
				float d = l2(qv, fmnist_image(&fb.base, i), dim);
				if (n == FB_K && !(d < best[n - 1]))
					continue;
				uint32_t at = n < FB_K ? n++ : n - 1;
				while (at > 0 && best[at - 1] > d) {
					best[at] = best[at - 1];
					fb.gt[c][q][at] = fb.gt[c][q][at - 1];
					at--;
				}
				best[at] = d;
				fb.gt[c][q][at] = i;
			}
			fb.gt_n[c][q] = n;
		}
}

/* ---------------------------------------------------------------- builds */

static void build_pomai(void)
{
	struct pm_shard_config cfg;
	pm_shard_config_default(&cfg);
	cfg.arena_bytes = FB_ARENA_BYTES;
	cfg.seed_capacity = 1u << 17;
	if (pm_shard_init(&fb.sh, &cfg) != PM_OK) {
		fprintf(stderr, "bench_filter: pm_shard_init failed\n");
		exit(2);
	}
	struct pm_reply rep;
	struct pm_request cc = { .op = PM_OP_CCREATE, .collection = { (const uint8_t *)"f", 1 },
				 .params = { .dim = fb.base.dim, .index = PM_INDEX_HNSW, .hnsw_m = FB_M,
					     .ef_construction = FB_EF_CONSTRUCTION } };
	pm_shard_apply(&fb.sh, &cc, 0, &rep);
	for (uint32_t i = 0; i < fb.base.count; i++) {
		char key[16], tag[8];
		uint8_t rec[PM_ATTR_BYTES_MAX];
		struct pm_attr_builder b;
		pm_attr_build_begin(&b, rec, sizeof rec);
		pm_attr_build_tag(&b, "label", (const uint8_t *)tag,
				  (uint32_t)snprintf(tag, sizeof tag, "c%u", fb.label[i]));
		pm_attr_build_num(&b, "r", fb.r[i]);
		struct pm_request r = { .op = PM_OP_VADD, .collection = { (const uint8_t *)"f", 1 },
					.key = { (const uint8_t *)key,
						 (uint32_t)snprintf(key, sizeof key, "%u", i) },
					.vec = (const uint8_t *)fmnist_image(&fb.base, i),
					.dim = fb.base.dim, .attr = { rec, pm_attr_build_end(&b) },
					.has_attr = true };
		pm_shard_apply(&fb.sh, &r, 0, &rep);
		if (rep.status != PM_OK) {
			fprintf(stderr, "bench_filter: VADD %u: %s\n", i, pm_status_name(rep.status));
			exit(2);
		}
	}
	while (pm_shard_maintain(&fb.sh, 0, 0))
		;
}

static void build_hnswlib(void)
{
	char err[256];
	fb.ph = ph_new(PH_L2, fb.base.dim, fb.base.count, FB_M, FB_EF_CONSTRUCTION, 100, true, err,
		       sizeof err);
	for (uint32_t i = 0; fb.ph && i < fb.base.count; i++)
		if (ph_add(fb.ph, fmnist_image(&fb.base, i), i, err, sizeof err) != 0)
			break;
	if (!fb.ph || ph_count(fb.ph) != fb.base.count) {
		fprintf(stderr, "bench_filter: hnswlib: %s\n", err);
		exit(2);
	}
}

/* ---------------------------------------------------------------- methods */

static uint32_t hits_of_gt(uint32_t c, uint32_t q, const uint32_t *ids, uint32_t n)
{
	uint32_t found = 0;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < fb.gt_n[c][q]; j++)
			if (ids[i] == fb.gt[c][q][j]) {
				found++;
				break;
			}
	return found;
}

/* Pomai, filtered: ef 0 = exact scan. The hits that are in the truth. */
static uint32_t run_pomai(uint32_t c, uint32_t q, uint32_t ef)
{
	char expr[64];
	int n = fexpr(expr, sizeof expr, q % FB_CLASSES, fb_cases[c].r_below);
	struct pm_request r = { .op = PM_OP_VQUERY, .collection = { (const uint8_t *)"f", 1 },
				.vec = (const uint8_t *)fmnist_image(&fb.queries, q),
				.dim = fb.queries.dim, .k = FB_K, .ef = ef, .exact = ef == 0,
				.filter = { (const uint8_t *)expr, (uint32_t)n } };
	struct pm_reply rep;
	pm_shard_apply(&fb.sh, &r, 0, &rep);
	uint32_t ids[FB_K];
	for (uint32_t i = 0; i < rep.nhits && i < FB_K; i++) {
		char key[16] = { 0 };
		memcpy(key, rep.keys[i].ptr, rep.keys[i].len < 15 ? rep.keys[i].len : 15);
		ids[i] = (uint32_t)strtoul(key, NULL, 10);
	}
	return rep.status == PM_OK ? hits_of_gt(c, q, ids, rep.nhits) : 0;
}

/* hnswlib, unfiltered for k x os, then the first k that pass. */
static uint32_t run_hnswlib(uint32_t c, uint32_t q, uint32_t os)
{
	static uint64_t labels[FB_K * 100];
	uint32_t want = FB_K * os, ids[FB_K], n = 0;
	ph_set_ef(fb.ph, want);
	uint32_t got = ph_search(fb.ph, fmnist_image(&fb.queries, q), want, labels);
	for (uint32_t i = 0; i < got && n < FB_K; i++)
		if (passes((uint32_t)labels[i], q % FB_CLASSES, fb_cases[c].r_below))
			ids[n++] = (uint32_t)labels[i];
	return hits_of_gt(c, q, ids, n);
}

static uint32_t run_method(uint32_t m, uint32_t c, uint32_t q)
{
	if (m < FB_NEF)
		return run_pomai(c, q, fb_efs[m]);
	if (m == FB_NEF)
		return run_pomai(c, q, 0);
	return run_hnswlib(c, q, fb_oversample[m - FB_NEF - 1]);
}

static void method_name(uint32_t m, char *out, size_t cap)
{
	if (m < FB_NEF)
		snprintf(out, cap, "Pomai filtered, ef %u", fb_efs[m]);
	else if (m == FB_NEF)
		snprintf(out, cap, "Pomai exact filtered scan");
	else
		snprintf(out, cap, "hnswlib k x %u, post-filtered", fb_oversample[m - FB_NEF - 1]);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	uint32_t nbase = 0, rounds = FB_ROUNDS_DEFAULT;
	int cpu = 0;
	fb.nq = FB_QUERIES_DEFAULT;
	const char *dir = FMNIST_DIR_DEFAULT;
	for (int i = 1; i + 1 < argc; i += 2) {
		uint32_t v;
		if (!strcmp(argv[i], "--base") && bu_parse_u32(argv[i + 1], 60000, &nbase) == 0)
			continue;
		if (!strcmp(argv[i], "--queries") && bu_parse_u32(argv[i + 1], FB_QUERIES_DEFAULT * 20, &fb.nq) == 0)
			continue;
		if (!strcmp(argv[i], "--rounds") && bu_parse_u32(argv[i + 1], FB_ROUNDS_MAX, &rounds) == 0)
			continue;
		if (!strcmp(argv[i], "--cpu") && bu_parse_u32(argv[i + 1], 4095, &v) == 0) {
			cpu = (int)v;
			continue;
		}
		if (!strcmp(argv[i], "--dir")) {
			dir = argv[i + 1];
			continue;
		}
		fprintf(stderr, "usage: bench_filter [--base N] [--queries Q] [--rounds R] [--cpu C]"
				" [--dir D]\n");
		return 2;
	}
	if (rounds == 0 || fb.nq == 0) {
		fprintf(stderr, "bench_filter: --rounds and --queries must be >= 1\n");
		return 2;
	}
	bu_print_header("bench_filter", argc, argv);
	if (bu_pin_cpu(cpu) != 0)
		fprintf(stderr, "bench_filter: could not pin to CPU %d\n", cpu);
	char err[FMNIST_ERR_BYTES], path[512];
	if (fmnist_load_split(dir, "train", nbase, &fb.base, err, sizeof err) != 0 ||
	    fmnist_load_split(dir, "t10k", fb.nq, &fb.queries, err, sizeof err) != 0) {
		fprintf(stderr, "bench_filter: %s\n", err);
		return 2;
	}
	snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
	fb.label = load_labels(path, fb.base.count);
	fb.r = malloc(fb.base.count * sizeof fb.r[0]);
	struct bu_rng rng = { FB_SEED };
	for (uint32_t i = 0; i < fb.base.count; i++)
		fb.r[i] = (uint16_t)bu_rng_below(&rng, FB_R_RANGE);
	printf("base %u x %u, queries %u, k %u, M %u, ef_construction %u, rounds %u\n",
	       fb.base.count, fb.base.dim, fb.nq, FB_K, FB_M, FB_EF_CONSTRUCTION, rounds);
	uint64_t t0 = bu_now_ns();
	ground_truth();
	uint64_t t1 = bu_now_ns();
	build_pomai();
	uint64_t t2 = bu_now_ns();
	build_hnswlib();
	uint64_t t3 = bu_now_ns();
	printf("ground truth %.1f s; build: Pomai %.1f s, hnswlib %.1f s (hnswlib L2 kernel: %s)\n",
	       (t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9, ph_simd());
	for (uint32_t c = 0; c < FB_NCASES; c++) {
		uint64_t pass = 0;
		for (uint32_t q = 0; q < fb.nq; q++)
			for (uint32_t i = 0; i < fb.base.count; i++)
				pass += passes(i, q % FB_CLASSES, fb_cases[c].r_below);
		printf("\nselectivity %s (measured %.3f %%):\n", fb_cases[c].name,
		       100.0 * (double)pass / ((double)fb.nq * fb.base.count));
		static double qps[FB_NMETHODS][FB_ROUNDS_MAX];
		uint64_t found[FB_NMETHODS] = { 0 }, graph[FB_NMETHODS] = { 0 }, truth = 0;
		for (uint32_t q = 0; q < fb.nq; q++)
			truth += fb.gt_n[c][q];
		for (uint32_t r = 0; r < rounds; r++)
			for (uint32_t j = 0; j < FB_NMETHODS; j++) {
				uint32_t m = (j + r) % FB_NMETHODS;
				uint64_t a = thread_cpu_ns(), f = 0, g0 = fb.sh.stats.knn_graph;
				for (uint32_t q = 0; q < fb.nq; q++)
					f += run_method(m, c, q);
				qps[m][r] = fb.nq / ((thread_cpu_ns() - a) / 1e9);
				if (r == 0) {
					found[m] = f;
					graph[m] = fb.sh.stats.knn_graph - g0;
				}
			}
		for (uint32_t m = 0; m < FB_NMETHODS; m++) {
			char name[64];
			method_name(m, name, sizeof name);
			printf("  %-34s recall@%u %.4f  %10.1f q/CPU-s", name, FB_K,
			       truth ? (double)found[m] / truth : 1.0, bu_median(qps[m], rounds));
			if (m < FB_NEF) /* the rest fell back to (or chose) the exact scan */
				printf("  (graph answered %llu of %u)", (unsigned long long)graph[m], fb.nq);
			putchar('\n');
		}
	}
	printf("\nPomai graph searches %llu, KNN queries %llu\n",
	       (unsigned long long)fb.sh.stats.knn_graph, (unsigned long long)fb.sh.stats.knn_queries);
	ph_free(fb.ph);
	pm_shard_destroy(&fb.sh);
	return 0;
}
