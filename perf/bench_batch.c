/* SPDX-License-Identifier: MIT
 *
 * bench_batch.c — exact k-NN of a batch of queries, one thread: Pomai's
 * blocked batch scan (engine/batch.h, pm_knn_flat_batch) against FAISS
 * IndexFlatL2 searching the same batch in one call (which, from 20 queries
 * on, computes distances with the BLAS's sgemm).
 *
 * Both hold the 60,000 Fashion-MNIST training images (784 floats) and answer
 * the first 1,000 test images (k = 10) as one batch. They run in the same
 * process, alternating, the order flipped every round; the median batch time
 * of each is reported, and the ratio. Run it with OPENBLAS_NUM_THREADS=1 (the
 * BLAS is told one thread here too, and FAISS's OpenMP is set to one): it
 * prints which BLAS the process loaded, since Debian picks it through
 * alternatives (reference libblas3, or OpenBLAS once libopenblas0-* is
 * installed).
 *
 * The answers are compared: the share of identical ids in the two top-k
 * sets (FAISS's sgemm distances round differently from Pomai's kernel
 * distances, so near ties may order differently).
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "benchutil.h"
#include "distance.h"
#include "faiss_flat.h"
#include "fmnist.h"
#include "knn.h"
#include "request.h"
#include "shard.h"
#include "vector.h"

#define BATCH_QUERIES_DEFAULT 1000u
#define BATCH_K_DEFAULT 10u
#define BATCH_ROUNDS_DEFAULT 3u
#define BATCH_ROUNDS_MAX 51u
/* As bench_knn: 60,000 blobs of about 3.3 KiB and their seeds. */
#define BATCH_ARENA_BYTES (UINT64_C(512) << 20)
#define BATCH_KEY_PREFIX "fmnist:"
#define BATCH_KEY_BYTES_MAX 32u

struct opts {
	const char *dir;
	uint32_t queries, k, rounds;
	int cpu;
};

struct bench {
	struct opts o;
	struct fmnist train, test;
	struct pm_shard sh;
	const struct pm_collection *coll;
	struct pf_flat *faiss;
	struct pm_batch_query *qs;
	struct pm_knn_hit *hits; /* queries x k */
	int64_t *pomai_ids, *faiss_ids;
	float *faiss_dist;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_batch [--data DIR] [--queries N] [--k K] [--rounds R] [--cpu C]\n"
		"  --data DIR    Fashion-MNIST directory (default %s)\n"
		"  --queries N   first N test images as one batch, 1..10000 (default %u)\n"
		"  --k K         neighbours, 1..%u (default %u)\n"
		"  --rounds R    alternating rounds, median reported (default %u)\n"
		"  --cpu C       pin to CPU C, -1 to not pin (default -1)\n"
		"Run with OPENBLAS_NUM_THREADS=1.\n",
		FMNIST_DIR_DEFAULT, BATCH_QUERIES_DEFAULT, PM_K_MAX, BATCH_K_DEFAULT,
		BATCH_ROUNDS_DEFAULT);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ FMNIST_DIR_DEFAULT, BATCH_QUERIES_DEFAULT, BATCH_K_DEFAULT,
			    BATCH_ROUNDS_DEFAULT, -1 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		}
		uint32_t cpu = 0;
		int rc = -EINVAL;
		if (!v)
			rc = -EINVAL;
		else if (!strcmp(a, "--data"))
			o->dir = v, rc = 0;
		else if (!strcmp(a, "--queries"))
			rc = bu_parse_u32(v, 10000, &o->queries);
		else if (!strcmp(a, "--k"))
			rc = bu_parse_u32(v, PM_K_MAX, &o->k);
		else if (!strcmp(a, "--rounds"))
			rc = bu_parse_u32(v, BATCH_ROUNDS_MAX, &o->rounds);
		else if (!strcmp(a, "--cpu") && !strcmp(v, "-1"))
			o->cpu = -1, rc = 0;
		else if (!strcmp(a, "--cpu") && (rc = bu_parse_u32(v, 4095, &cpu)) == 0)
			o->cpu = (int)cpu;
		if (rc != 0 || o->queries == 0 || o->k == 0 || o->rounds == 0) {
			fprintf(stderr, "bench_batch: bad argument '%s'\n", a);
			usage(stderr);
			return -EINVAL;
		}
		i++;
	}
	return 0;
}

/* The BLAS this process loaded, told to use one thread when it is OpenBLAS. */
static void blas_one_thread(void)
{
	const char *(*config)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT,
								    "openblas_get_config");
	void (*threads)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
	int (*get)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
	if (threads)
		threads(1);
	const char *env = getenv("OPENBLAS_NUM_THREADS");
	if (config)
		printf("blas:     OpenBLAS (%s), threads %d, OPENBLAS_NUM_THREADS=%s\n", config(),
		       get ? get() : -1, env ? env : "(unset)");
	else
		printf("blas:     not OpenBLAS (no openblas_get_config): the reference BLAS\n");
}

static int load(struct bench *b)
{
	char err[FMNIST_ERR_BYTES], key[BATCH_KEY_BYTES_MAX];
	if (fmnist_load_split(b->o.dir, "train", 0, &b->train, err, sizeof(err)) != 0 ||
	    fmnist_load_split(b->o.dir, "t10k", b->o.queries, &b->test, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_batch: %s\n", err);
		return -1;
	}
	struct pm_shard_config cfg;
	pm_shard_config_default(&cfg);
	cfg.arena_bytes = BATCH_ARENA_BYTES;
	if (pm_shard_init(&b->sh, &cfg) != PM_OK)
		return -1;
	struct pm_reply rep;
	for (uint32_t i = 0; i < b->train.count; i++) {
		int klen = snprintf(key, sizeof(key), BATCH_KEY_PREFIX "%06u", i);
		struct pm_request req = { .op = PM_OP_VADD,
					  .key = { (const uint8_t *)key, (uint32_t)klen },
					  .vec = (const uint8_t *)fmnist_image(&b->train, i),
					  .dim = b->train.dim };
		pm_shard_apply(&b->sh, &req, 0, &rep);
		if (rep.status != PM_OK)
			return -1;
	}
	b->coll = pm_coll_default(&b->sh, b->train.dim);
	pf_set_threads(1);
	if (!(b->faiss = pf_flat_new(b->train.dim, err, sizeof(err))) ||
	    pf_flat_add(b->faiss, b->train.data, b->train.count, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_batch: %s\n", err);
		return -1;
	}
	printf("dataset:  %s: %u base vectors, a batch of %u queries, dim %u, k=%u, %u rounds\n"
	       "pomai:    distance kernels %s; faiss %s IndexFlatL2, OpenMP threads 1\n",
	       b->o.dir, b->train.count, b->test.count, b->train.dim, b->o.k, b->o.rounds,
	       pm_kernels_best()->name, pf_version());
	return 0;
}

/* "fmnist:000123" of a hit's seed -> 123. */
static int64_t hit_index(const struct pm_shard *sh, const struct pm_knn_hit *h)
{
	const struct pm_seed *s = pm_seed_at(&sh->arena, h->seed);
	const uint8_t *k = pm_seed_key(&sh->arena, s);
	const size_t plen = sizeof(BATCH_KEY_PREFIX) - 1;
	int64_t v = 0;
	for (uint32_t i = (uint32_t)plen; i < s->klen; i++)
		v = v * 10 + (k[i] - '0');
	return v;
}

/* The batch through Pomai; seconds, or negative. */
static double round_pomai(struct bench *b)
{
	const uint32_t k = b->o.k, nq = b->test.count;
	for (uint32_t q = 0; q < nq; q++)
		b->qs[q] = (struct pm_batch_query){ .q = fmnist_image(&b->test, q), .k = k,
						    .hits = b->hits + (size_t)q * k };
	uint64_t t0 = bu_now_ns();
	pm_knn_flat_batch(&b->sh, b->coll, b->qs, nq);
	double s = (double)(bu_now_ns() - t0) / 1e9;
	for (uint32_t q = 0; q < nq; q++) {
		if (b->qs[q].nhits != k)
			return -1;
		for (uint32_t i = 0; i < k; i++)
			b->pomai_ids[(size_t)q * k + i] = hit_index(&b->sh, &b->qs[q].hits[i]);
	}
	return s;
}

static double round_faiss(struct bench *b)
{
	uint64_t t0 = bu_now_ns();
	if (pf_flat_search(b->faiss, b->test.count, b->test.data, b->o.k, b->faiss_dist,
			   b->faiss_ids) != 0)
		return -1;
	return (double)(bu_now_ns() - t0) / 1e9;
}

static int run_rounds(struct bench *b)
{
	double pt[BATCH_ROUNDS_MAX], ft[BATCH_ROUNDS_MAX];
	for (uint32_t r = 0; r < b->o.rounds; r++) {
		bool pomai_first = r % 2 == 0;
		double first = pomai_first ? round_pomai(b) : round_faiss(b);
		double second = pomai_first ? round_faiss(b) : round_pomai(b);
		pt[r] = pomai_first ? first : second;
		ft[r] = pomai_first ? second : first;
		if (pt[r] < 0 || ft[r] < 0) {
			fprintf(stderr, "bench_batch: a search failed\n");
			return -1;
		}
		printf("  round %u (%s first): pomai %.3f s   faiss %.3f s\n", r + 1,
		       pomai_first ? "pomai" : "faiss", pt[r], ft[r]);
		fflush(stdout);
	}
	double pm = bu_median(pt, b->o.rounds), fm = bu_median(ft, b->o.rounds);
	double flops = 2.0 * b->train.count * b->test.count * b->train.dim;
	printf("median:   pomai %.3f s (%.0f q/s, %.1f GFLOP/s of dot products)\n"
	       "          faiss %.3f s (%.0f q/s, %.1f GFLOP/s)\n"
	       "ratio:    pomai / faiss speed = %.2fx\n",
	       pm, b->test.count / pm, flops / pm / 1e9, fm, b->test.count / fm, flops / fm / 1e9,
	       fm / pm);
	return 0;
}

static void report_agreement(const struct bench *b)
{
	const uint32_t k = b->o.k;
	uint64_t same = 0;
	for (uint32_t q = 0; q < b->test.count; q++)
		for (uint32_t i = 0; i < k; i++)
			for (uint32_t j = 0; j < k; j++)
				same += b->pomai_ids[(size_t)q * k + i] == b->faiss_ids[(size_t)q * k + j];
	printf("agree:    id-set agreement %.4f (%llu of %llu ids)\n",
	       (double)same / ((double)b->test.count * k), (unsigned long long)same,
	       (unsigned long long)b->test.count * k);
}

int main(int argc, char **argv)
{
	static struct bench b;
	if (parse_args(argc, argv, &b.o) != 0)
		return 2;
	bu_print_header("bench_batch: exact k-NN of one batch, Pomai vs FAISS IndexFlatL2 (BLAS), "
			"one thread",
			argc, argv);
	if (b.o.cpu >= 0 && bu_pin_cpu(b.o.cpu) != 0)
		fprintf(stderr, "bench_batch: could not pin to CPU %d\n", b.o.cpu);
	blas_one_thread();
	if (load(&b) != 0)
		return 1;
	size_t n = (size_t)b.test.count * b.o.k;
	b.qs = calloc(b.test.count, sizeof(*b.qs));
	b.hits = calloc(n, sizeof(*b.hits));
	b.pomai_ids = calloc(n, sizeof(int64_t));
	b.faiss_ids = calloc(n, sizeof(int64_t));
	b.faiss_dist = calloc(n, sizeof(float));
	int rc = -1;
	if (b.qs && b.hits && b.pomai_ids && b.faiss_ids && b.faiss_dist &&
	    (rc = run_rounds(&b)) == 0)
		report_agreement(&b);
	pf_flat_free(b.faiss);
	pm_shard_destroy(&b.sh);
	fmnist_free(&b.train);
	fmnist_free(&b.test);
	free(b.qs);
	free(b.hits);
	free(b.pomai_ids);
	free(b.faiss_ids);
	free(b.faiss_dist);
	return rc == 0 ? 0 : 1;
}
