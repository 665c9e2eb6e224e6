/* SPDX-License-Identifier: MIT
 *
 * bench_dtype.c — element types side by side: Pomai's HNSW over f32, f16, q8
 * and bin vectors, q8 and bin with the f32 re-rank, and hnswlib (f32), in one
 * process, one thread.
 *
 * Data: Fashion-MNIST (perf/fmnist.c), the 60,000 training images as base
 * vectors (784 raw pixel values 0..255 as floats) and the first 1,000 test
 * images as queries. L2, k = 10, M = 16, ef_construction = 200, ef in {10,
 * 20, 40, 80, 160, 320}; re-rank candidates 64 (--rerank-k).
 *
 * Per configuration: bytes per vector — the payload (what the element type
 * stores: codes, and the f32 when re-ranking), the vector blob's size class
 * (header, payload, level-0 links) and everything the index holds per vector
 * (blobs, upper links, node table); build time (pm_shard_apply VADD, one shard
 * each); recall@10 against exact f32 ground truth (pm_knn_flat, cached as
 * bench_hnsw caches it, gtcache.h) and queries/s at each ef through
 * pm_hnsw_search, one query per call. Build times and queries/s are in this
 * thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not wall time: the machine is
 * shared and loaded. Each round runs every configuration at
 * every ef, the order rotating from round to round (the machine is shared),
 * and the median over the rounds is reported. hnswlib (Debian's 0.6.2,
 * compiled -O3 -march=native by hnswlib_anchor.cpp) is the external anchor.
 * At the end, for each configuration the lowest ef whose recall is at least
 * 0.95 and its queries/s against f32's at its own such ef. The medians go to
 * a data file too (--dat, default bench_dtype.dat in the current directory)
 * for perf/plot_dtype.gp: one block per configuration, in the order of the
 * table, its first line the title; columns ef, recall@10, median, lowest and
 * highest queries/s of the rounds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"
#include "fmnist.h"
#include "gtcache.h"
#include "hash.h"
#include "hnsw.h"
#include "hnswlib_anchor.h"
#include "knn.h"
#include "quant.h"
#include "shard.h"
#include "vector.h"

#define BD_QUERIES 1000u
#define BD_K 10u
#define BD_M 16u
#define BD_EF_CONSTRUCTION 200u
#define BD_NEF 6u
static const uint32_t bd_efs[BD_NEF] = { 10, 20, 40, 80, 160, 320 };
#define BD_ROUNDS_DEFAULT 5u
#define BD_ROUNDS_MAX 15u
/* Recall at which configurations are compared (the target). */
#define BD_RECALL_TARGET 0.95
/* One shard per configuration: its arena holds 60,000 784-d vectors with
 * codes and f32 (4,608-byte blobs) and their upper links, with room. */
#define BD_ARENA_BYTES (768ull << 20)
#define BD_SEEDS 131072u
#define BD_COLL "fm"
#define BD_DAT_DEFAULT "bench_dtype.dat"
#define MIB (1024.0 * 1024.0)

enum { C_F32, C_F16, C_Q8, C_Q8R, C_BIN, C_BINR, C_POMAI, C_HNSWLIB = C_POMAI, C_COUNT };
static const struct {
	const char *name;
	uint8_t dtype, rerank;
} cfgs[C_POMAI] = {
	[C_F32] = { "f32", PM_DTYPE_F32, 0 },  [C_F16] = { "f16", PM_DTYPE_F16, 0 },
	[C_Q8] = { "q8", PM_DTYPE_Q8, 0 },     [C_Q8R] = { "q8+rerank", PM_DTYPE_Q8, 1 },
	[C_BIN] = { "bin", PM_DTYPE_BIN, 0 },  [C_BINR] = { "bin+rerank", PM_DTYPE_BIN, 1 },
};

struct engine {
	struct pm_shard sh;
	const struct pm_collection *c;
	uint32_t *seed2idx;
	double build_s;
	double payload, blob, total; /* bytes per vector */
};

struct bench {
	struct fmnist train, test;
	uint32_t n, nq, dim, rounds, rerank_k;
	struct engine e[C_POMAI];
	struct ph_index *ph;
	double ph_build_s, ph_bytes;
	struct gt gt;
	struct pm_knn_hit hits[PM_K_MAX];
	uint32_t *ids; /* nq x K of the pass just run */
	double recall[C_COUNT][BD_NEF];
	double qps[C_COUNT][BD_NEF][BD_ROUNDS_MAX];
	char err[512];
};

static double secs_since(uint64_t t0)
{
	return (double)(bu_now_ns() - t0) / 1e9;
}

/* This thread's CPU time: the machine is shared (load 10-30 on 2 CPUs while
 * this was written), so a pass is timed by the CPU it used, not by the wall
 * clock, which also counts the time other processes held the core. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_secs_since(uint64_t t0)
{
	return (double)(cpu_ns() - t0) / 1e9;
}

static const float *query_at(const struct bench *b, uint32_t q)
{
	return fmnist_image(&b->test, q);
}

static void loadavg(const char *when)
{
	char buf[128] = "";
	FILE *f = fopen("/proc/loadavg", "r");
	if (f && fgets(buf, sizeof buf, f))
		printf("load:     %s %s", when, buf);
	if (f)
		fclose(f);
}

/* ---------------------------------------------------------------- builds */

static int pomai_build(struct bench *b, int ci)
{
	struct engine *e = &b->e[ci];
	struct pm_shard_config cfg;
	pm_shard_config_default(&cfg);
	cfg.arena_bytes = BD_ARENA_BYTES;
	cfg.seed_capacity = BD_SEEDS;
	if (pm_shard_init(&e->sh, &cfg) != PM_OK)
		return -1;
	struct pm_reply rep;
	struct pm_request cr = {
		.op = PM_OP_CCREATE, .collection = { (const uint8_t *)BD_COLL, 2 },
		.params = { .dim = b->dim, .index = PM_INDEX_HNSW, .hnsw_m = BD_M,
			    .ef_construction = BD_EF_CONSTRUCTION, .dtype = cfgs[ci].dtype,
			    .rerank = cfgs[ci].rerank,
			    .rerank_k = cfgs[ci].rerank ? b->rerank_k : 0 } };
	pm_shard_apply(&e->sh, &cr, 0, &rep);
	if (rep.status != PM_OK)
		return -1;
	uint64_t t0 = cpu_ns();
	for (uint32_t i = 0; i < b->n; i++) {
		struct pm_request r = { .op = PM_OP_VADD, .key = { (const uint8_t *)&i, 4 },
					.collection = { (const uint8_t *)BD_COLL, 2 },
					.vec = (const uint8_t *)fmnist_image(&b->train, i),
					.dim = b->dim };
		pm_shard_apply(&e->sh, &r, 0, &rep);
		if (rep.status != PM_OK)
			return -1;
	}
	e->build_s = cpu_secs_since(t0);
	e->c = pm_coll_find(&e->sh, (const uint8_t *)BD_COLL, 2);
	e->seed2idx = calloc(BD_SEEDS, sizeof(uint32_t));
	if (!e->c || !e->seed2idx)
		return -1;
	for (uint32_t i = 0; i < b->n; i++) {
		const struct pm_vec_header *h;
		struct pm_bytes cn;
		if (pm_vec_get(&e->sh, (const uint8_t *)&i, 4, pm_hash((const uint8_t *)&i, 4), 0, &h,
			       &cn) != PM_OK)
			return -1;
		e->seed2idx[h->seed] = i;
	}
	e->payload = pm_quant_stored_bytes(&e->c->params);
	e->blob = (double)e->c->bytes / b->n;
	uint64_t table = (uint64_t)e->c->hnsw.nchunks * PM_HNSW_CHUNK_NODES * 8u;
	e->total = ((double)e->c->bytes + (double)e->c->hnsw.upper_bytes + (double)table) / b->n;
	printf("build:    %-10s %6.1f CPU-s (%5.0f vectors/s); bytes/vector: payload %5.0f, blob %5.0f, "
	       "all %5.0f; code kernels %s\n",
	       cfgs[ci].name, e->build_s, b->n / e->build_s, e->payload, e->blob, e->total,
	       e->sh.qkern->name);
	fflush(stdout);
	return 0;
}

static int hnswlib_build(struct bench *b)
{
	b->ph = ph_new(PH_L2, b->dim, b->n, BD_M, BD_EF_CONSTRUCTION, 100, true, b->err, sizeof b->err);
	if (!b->ph)
		return -1;
	uint64_t t0 = cpu_ns();
	for (uint32_t i = 0; i < b->n; i++)
		if (ph_add(b->ph, fmnist_image(&b->train, i), i, b->err, sizeof b->err) != 0)
			return -1;
	b->ph_build_s = cpu_secs_since(t0);
	struct ph_mem m;
	ph_memory(b->ph, &m);
	b->ph_bytes = (double)m.total / b->n;
	printf("build:    %-10s %6.1f CPU-s (%5.0f vectors/s); bytes/vector: vector %5u, all %5.0f; "
	       "kernel %s\n",
	       "hnswlib", b->ph_build_s, b->n / b->ph_build_s, 4u * b->dim, b->ph_bytes, ph_simd());
	fflush(stdout);
	return 0;
}

/* ---------------------------------------------------------------- truth */

static int ground_truth(struct bench *b)
{
	char path[GT_PATH_BYTES];
	const struct engine *e = &b->e[C_F32];
	b->gt = (struct gt){ .n = b->n, .dim = b->dim, .nq = b->nq, .k = BD_K };
	b->gt.data_hash = gt_data_hash(b->train.data, (uint64_t)b->n * b->dim, b->test.data,
				       (uint64_t)b->nq * b->dim);
	if (gt_alloc(&b->gt) != 0)
		return -1;
	if (gt_default_path(path, sizeof path, "fmnist", b->n, b->dim, b->nq, BD_K, b->err,
			    sizeof b->err) == 0 &&
	    gt_load(path, &b->gt, b->err, sizeof b->err) == 0) {
		printf("truth:    loaded from %s\n", path);
		return 0;
	}
	uint64_t t0 = bu_now_ns();
	for (uint32_t q = 0; q < b->nq; q++) {
		if (pm_knn_flat(&e->sh, e->c, query_at(b, q), BD_K, b->hits) != BD_K)
			return -1;
		for (uint32_t i = 0; i < BD_K; i++) {
			b->gt.ids[(size_t)q * BD_K + i] = e->seed2idx[b->hits[i].seed];
			b->gt.dist[(size_t)q * BD_K + i] = b->hits[i].dist;
		}
	}
	printf("truth:    exact top-%u by pm_knn_flat (f32) in %.1f s\n", BD_K, secs_since(t0));
	if (gt_default_path(path, sizeof path, "fmnist", b->n, b->dim, b->nq, BD_K, b->err,
			    sizeof b->err) == 0)
		(void)gt_save(path, &b->gt, b->err, sizeof b->err);
	return 0;
}

static double recall_of(const struct bench *b)
{
	uint32_t hit = 0;
	for (uint32_t q = 0; q < b->nq; q++)
		for (uint32_t i = 0; i < BD_K; i++)
			for (uint32_t j = 0; j < BD_K; j++)
				hit += b->ids[(size_t)q * BD_K + i] == b->gt.ids[(size_t)q * BD_K + j];
	return (double)hit / ((double)b->nq * BD_K);
}

/* ---------------------------------------------------------------- passes */

/* One pass of every query through configuration ci at ef; its queries/s. */
static double pass(struct bench *b, int ci, uint32_t ef)
{
	uint64_t t0 = cpu_ns();
	if (ci == C_HNSWLIB) {
		uint64_t labels[BD_K];
		ph_set_ef(b->ph, ef);
		for (uint32_t q = 0; q < b->nq; q++) {
			uint32_t n = ph_search(b->ph, query_at(b, q), BD_K, labels);
			for (uint32_t i = 0; i < BD_K; i++)
				b->ids[(size_t)q * BD_K + i] = i < n ? (uint32_t)labels[i] : UINT32_MAX;
		}
	} else {
		struct engine *e = &b->e[ci];
		for (uint32_t q = 0; q < b->nq; q++) {
			uint32_t n = pm_hnsw_search(&e->sh, e->c, query_at(b, q), BD_K, ef, b->hits);
			for (uint32_t i = 0; i < BD_K; i++)
				b->ids[(size_t)q * BD_K + i] = i < n ? e->seed2idx[b->hits[i].seed]
								     : UINT32_MAX;
		}
	}
	return b->nq / cpu_secs_since(t0);
}

static void run_rounds(struct bench *b)
{
	for (uint32_t r = 0; r < b->rounds; r++) {
		for (int k = 0; k < C_COUNT; k++) {
			int ci = (k + (int)r) % C_COUNT; /* the order rotates */
			for (uint32_t f = 0; f < BD_NEF; f++) {
				b->qps[ci][f][r] = pass(b, ci, bd_efs[f]);
				if (r == 0)
					b->recall[ci][f] = recall_of(b);
			}
		}
		printf("rounds:   %u of %u done\n", r + 1, b->rounds);
		fflush(stdout);
	}
}

static const char *name_of(int ci)
{
	return ci == C_HNSWLIB ? "hnswlib" : cfgs[ci].name;
}

static void report(struct bench *b)
{
	double med[C_COUNT][BD_NEF];
	for (int ci = 0; ci < C_COUNT; ci++)
		for (uint32_t f = 0; f < BD_NEF; f++)
			med[ci][f] = bu_median(b->qps[ci][f], b->rounds);
	printf("\n%-11s %8s %8s %8s %7s", "config", "payload", "blob", "all", "build");
	for (uint32_t f = 0; f < BD_NEF; f++)
		printf(" | ef %-3u rec   q/s", bd_efs[f]);
	printf("\n");
	for (int ci = 0; ci < C_COUNT; ci++) {
		if (ci == C_HNSWLIB)
			printf("%-11s %8u %8s %8.0f %6.1fs", "hnswlib", 4u * b->dim, "-", b->ph_bytes,
			       b->ph_build_s);
		else
			printf("%-11s %8.0f %8.0f %8.0f %6.1fs", cfgs[ci].name, b->e[ci].payload,
			       b->e[ci].blob, b->e[ci].total, b->e[ci].build_s);
		for (uint32_t f = 0; f < BD_NEF; f++)
			printf(" | %.4f %6.0f", b->recall[ci][f], med[ci][f]);
		printf("\n");
	}
	printf("\nat recall@10 >= %.2f (the lowest ef that reaches it):\n", BD_RECALL_TARGET);
	double base = 0.0;
	for (int ci = 0; ci < C_COUNT; ci++) {
		uint32_t f = 0;
		while (f < BD_NEF && b->recall[ci][f] < BD_RECALL_TARGET)
			f++;
		if (f == BD_NEF) {
			printf("  %-11s never (best %.4f at ef %u)\n", name_of(ci), b->recall[ci][BD_NEF - 1],
			       bd_efs[BD_NEF - 1]);
			continue;
		}
		if (ci == C_F32)
			base = med[ci][f];
		printf("  %-11s ef %3u recall %.4f %7.0f q/s = %.2fx f32\n", name_of(ci), bd_efs[f],
		       b->recall[ci][f], med[ci][f], base > 0 ? med[ci][f] / base : 0.0);
	}
	printf("\nbytes per vector against f32: payload q8 %.3f, bin %.3f, f16 %.3f; blob q8 %.3f, "
	       "bin %.3f; all q8 %.3f\n",
	       b->e[C_Q8].payload / b->e[C_F32].payload, b->e[C_BIN].payload / b->e[C_F32].payload,
	       b->e[C_F16].payload / b->e[C_F32].payload, b->e[C_Q8].blob / b->e[C_F32].blob,
	       b->e[C_BIN].blob / b->e[C_F32].blob, b->e[C_Q8].total / b->e[C_F32].total);
}

/* The medians (and the rounds' range) for perf/plot_dtype.gp. */
static int write_dat(struct bench *b, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "bench_dtype: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "# bench_dtype: Fashion-MNIST %u x %u, L2, %u queries, k=%u, M=%u, "
		   "ef_construction=%u, rerank_k=%u, %u rounds, one thread, queries per CPU second\n"
		   "# one block per configuration, always in this order (gnuplot: index i), first\n"
		   "# line = title\n"
		   "# columns: ef recall@%u qps_median qps_min qps_max\n",
		b->n, b->dim, b->nq, BD_K, BD_M, BD_EF_CONSTRUCTION, b->rerank_k, b->rounds, BD_K);
	for (int ci = 0; ci < C_COUNT; ci++) {
		fprintf(f, "%s\"%s\" ef recall qps qps_min qps_max\n", ci ? "\n\n" : "", name_of(ci));
		for (uint32_t e = 0; e < BD_NEF; e++) {
			double lo = b->qps[ci][e][0], hi = lo;
			for (uint32_t r = 1; r < b->rounds; r++) {
				lo = b->qps[ci][e][r] < lo ? b->qps[ci][e][r] : lo;
				hi = b->qps[ci][e][r] > hi ? b->qps[ci][e][r] : hi;
			}
			fprintf(f, "%u %.4f %.1f %.1f %.1f\n", bd_efs[e], b->recall[ci][e],
				bu_median(b->qps[ci][e], b->rounds), lo, hi);
		}
	}
	int rc = fclose(f) == 0 ? 0 : -1;
	printf("data:     %s (plot: gnuplot -e \"dat='%s'\" perf/plot_dtype.gp)\n", path, path);
	return rc;
}

/* ---------------------------------------------------------------- main */

static int usage(void)
{
	fprintf(stderr, "usage: bench_dtype [--dir FMNIST_DIR] [--n N] [--queries Q] "
			"[--rounds R] [--rerank-k K] [--dat FILE]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static struct bench b;
	const char *dir = FMNIST_DIR_DEFAULT, *dat = BD_DAT_DEFAULT;
	b.n = 60000;
	b.nq = BD_QUERIES;
	b.rounds = BD_ROUNDS_DEFAULT;
	b.rerank_k = PM_RERANK_K_DEFAULT;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--dir") && v)
			dir = v;
		else if (!strcmp(argv[i], "--dat") && v)
			dat = v;
		else if (!strcmp(argv[i], "--n") && v && bu_parse_u32(v, 60000, &b.n) == 0 && b.n)
			;
		else if (!strcmp(argv[i], "--queries") && v && bu_parse_u32(v, 10000, &b.nq) == 0 && b.nq)
			;
		else if (!strcmp(argv[i], "--rounds") && v &&
			 bu_parse_u32(v, BD_ROUNDS_MAX, &b.rounds) == 0 && b.rounds)
			;
		else if (!strcmp(argv[i], "--rerank-k") && v &&
			 bu_parse_u32(v, PM_RERANK_K_MAX, &b.rerank_k) == 0 && b.rerank_k)
			;
		else
			return usage();
		i++;
	}
	bu_print_header("bench_dtype: element types, Pomai HNSW vs hnswlib", argc, argv);
	loadavg("at start");
	if (fmnist_load_split(dir, "train", b.n, &b.train, b.err, sizeof b.err) != 0 ||
	    fmnist_load_split(dir, "t10k", b.nq, &b.test, b.err, sizeof b.err) != 0) {
		fprintf(stderr, "bench_dtype: %s\n", b.err);
		return 1;
	}
	b.n = b.train.count;
	b.nq = b.test.count;
	b.dim = b.train.dim;
	b.ids = calloc((size_t)b.nq * BD_K, sizeof(uint32_t));
	printf("data:     %u base x %u, %u queries, k %u, M %u, ef_construction %u, rerank_k %u\n",
	       b.n, b.dim, b.nq, BD_K, BD_M, BD_EF_CONSTRUCTION, b.rerank_k);
	for (int ci = 0; ci < C_POMAI; ci++)
		if (pomai_build(&b, ci) != 0) {
			fprintf(stderr, "bench_dtype: %s build failed\n", cfgs[ci].name);
			return 1;
		}
	if (hnswlib_build(&b) != 0 || ground_truth(&b) != 0) {
		fprintf(stderr, "bench_dtype: %s\n", b.err[0] ? b.err : "ground truth failed");
		return 1;
	}
	run_rounds(&b);
	report(&b);
	loadavg("at end");
	return write_dat(&b, dat) == 0 ? 0 : 1;
}
