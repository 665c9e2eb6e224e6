/* SPDX-License-Identifier: MIT
 *
 * bench_knn.c — exact (flat) k-NN, Pomai against FAISS IndexFlatL2, one thread.
 *
 * Both engines hold the 60,000 Fashion-MNIST training images (784 floats each,
 * raw pixel values) and answer the first 1,000 test images, k = 10, one query
 * per call: Pomai through pm_shard_apply(VQUERY) on one shard (default L2
 * collection, exact scan), FAISS through IndexFlatL2::search with n = 1 and
 * OpenMP limited to one thread. They run in the same process, alternating: each
 * round runs all queries on one engine and then on the other, and the order
 * flips every round so neither always goes first (warm caches, turbo, noise).
 * The median queries/s over the rounds is reported for each, and the ratio.
 *
 * The answers are compared too: the share of identical ids in the two top-k sets,
 * and, for queries whose sets differ, whether they differ only by ties (same
 * multiset of exact distances, recomputed here in double precision, which is
 * exact for integer pixels).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "distance.h"
#include "faiss_flat.h"
#include "fmnist.h"
#include "request.h"
#include "shard.h"

#define KNN_QUERIES_DEFAULT 1000u
#define KNN_K_DEFAULT 10u
#define KNN_ROUNDS_DEFAULT 5u
#define KNN_ROUNDS_MAX 101u
/* 60,000 vector blobs of about 3.3 KiB (header + 3,136 B of floats, rounded up
 * to a size class) = some 200 MiB, plus seed slots and the seed map: more than
 * the 256 MiB default arena, so twice that. */
#define KNN_ARENA_BYTES (UINT64_C(512) << 20)
#define KNN_KEY_PREFIX "fmnist:"
#define KNN_KEY_BYTES_MAX 32u

struct opts {
	const char *dir;
	uint32_t queries, k, rounds;
	int cpu;
};

struct bench {
	struct opts o;
	struct fmnist train, test;
	struct pm_shard sh;
	struct pf_flat *faiss;
	int64_t *pomai_ids; /* queries x k, from the last round */
	int64_t *faiss_ids;
	float *faiss_dist;
};

/* ---------------------------------------------------------------- arguments */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_knn [--data DIR] [--queries N] [--k K] [--rounds R] [--cpu C]\n"
		"  --data DIR    Fashion-MNIST directory (default %s)\n"
		"  --queries N   first N test images, 1..10000 (default %u)\n"
		"  --k K         neighbours, 1..%u (default %u)\n"
		"  --rounds R    alternating rounds, median reported (default %u)\n"
		"  --cpu C       pin to CPU C, -1 to not pin (default 0)\n",
		FMNIST_DIR_DEFAULT, KNN_QUERIES_DEFAULT, PM_K_MAX, KNN_K_DEFAULT,
		KNN_ROUNDS_DEFAULT);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ FMNIST_DIR_DEFAULT, KNN_QUERIES_DEFAULT, KNN_K_DEFAULT,
			    KNN_ROUNDS_DEFAULT, 0 };
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
			rc = bu_parse_u32(v, KNN_ROUNDS_MAX, &o->rounds);
		else if (!strcmp(a, "--cpu") && !strcmp(v, "-1"))
			o->cpu = -1, rc = 0;
		else if (!strcmp(a, "--cpu") && (rc = bu_parse_u32(v, 4095, &cpu)) == 0)
			o->cpu = (int)cpu;
		if (rc != 0 || o->queries == 0 || o->k == 0 || o->rounds == 0) {
			fprintf(stderr, "bench_knn: bad argument '%s'%s%s\n", a, v ? " " : "",
				v ? v : "");
			usage(stderr);
			return -EINVAL;
		}
		i++;
	}
	return 0;
}

/* ---------------------------------------------------------------- helpers */

static const uint8_t *vec_bytes(const float *v, uint32_t dim, uint8_t *scratch)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	(void)dim, (void)scratch;
	return (const uint8_t *)v;
#else
	for (uint32_t i = 0; i < dim; i++) {
		uint32_t b;
		memcpy(&b, &v[i], 4);
		b = __builtin_bswap32(b);
		memcpy(scratch + 4 * (size_t)i, &b, 4);
	}
	return scratch;
#endif
}

/* "fmnist:000123" -> 123, or -1. */
static int64_t key_index(const struct pm_bytes *key)
{
	const size_t plen = sizeof(KNN_KEY_PREFIX) - 1;
	if (key->len <= plen || key->len > KNN_KEY_BYTES_MAX ||
	    memcmp(key->ptr, KNN_KEY_PREFIX, plen) != 0)
		return -1;
	int64_t v = 0;
	for (uint32_t i = (uint32_t)plen; i < key->len; i++) {
		if (key->ptr[i] < '0' || key->ptr[i] > '9')
			return -1;
		v = v * 10 + (key->ptr[i] - '0');
	}
	return v;
}

static double l2_exact(const float *a, const float *b, uint32_t dim)
{
	double s = 0;
	for (uint32_t i = 0; i < dim; i++) {
		double d = (double)a[i] - b[i];
		s += d * d;
	}
	return s;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* ---------------------------------------------------------------- set-up */

static int load_pomai(struct bench *b)
{
	static uint8_t scratch[PM_DIM_MAX * 4];
	struct pm_shard_config cfg;
	pm_shard_config_default(&cfg);
	cfg.arena_bytes = KNN_ARENA_BYTES;
	enum pm_status st = pm_shard_init(&b->sh, &cfg);
	if (st != PM_OK) {
		fprintf(stderr, "bench_knn: shard init failed: %s\n", pm_status_name(st));
		return -1;
	}
	char key[KNN_KEY_BYTES_MAX];
	struct pm_reply rep;
	uint64_t t0 = bu_now_ns();
	for (uint32_t i = 0; i < b->train.count; i++) {
		int klen = snprintf(key, sizeof(key), KNN_KEY_PREFIX "%06u", i);
		struct pm_request req = {
			.op = PM_OP_VADD,
			.key = { (const uint8_t *)key, (uint32_t)klen },
			.vec = vec_bytes(fmnist_image(&b->train, i), b->train.dim, scratch),
			.dim = b->train.dim,
		};
		pm_shard_apply(&b->sh, &req, 0, &rep);
		if (rep.status != PM_OK) {
			fprintf(stderr, "bench_knn: VADD %s: %s\n", key, pm_status_name(rep.status));
			return -1;
		}
	}
	printf("pomai:    %u vectors loaded in %.3f s; distance kernels: %s\n", b->train.count,
	       (double)(bu_now_ns() - t0) / 1e9, pm_kernels_best()->name);
	return 0;
}

static int load_faiss(struct bench *b)
{
	char err[256];
	pf_set_threads(1);
	uint64_t t0 = bu_now_ns();
	if (!(b->faiss = pf_flat_new(b->train.dim, err, sizeof(err))) ||
	    pf_flat_add(b->faiss, b->train.data, b->train.count, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_knn: %s\n", err);
		return -1;
	}
	printf("faiss:    %s IndexFlatL2, %u vectors added in %.3f s; OpenMP threads: 1\n",
	       pf_version(), b->train.count, (double)(bu_now_ns() - t0) / 1e9);
	return 0;
}

/* ---------------------------------------------------------------- rounds */

/* All queries through Pomai; returns queries/s, or a negative on failure. */
static double round_pomai(struct bench *b)
{
	static uint8_t scratch[PM_DIM_MAX * 4];
	const uint32_t k = b->o.k;
	struct pm_reply rep;
	uint64_t t0 = bu_now_ns();
	for (uint32_t q = 0; q < b->test.count; q++) {
		struct pm_request req = {
			.op = PM_OP_VQUERY,
			.vec = vec_bytes(fmnist_image(&b->test, q), b->test.dim, scratch),
			.dim = b->test.dim,
			.k = k,
			.exact = true, /* flat scan, whatever the collection's index */
		};
		pm_shard_apply(&b->sh, &req, 0, &rep);
		if (rep.status != PM_OK || rep.nhits != k) {
			fprintf(stderr, "bench_knn: VQUERY %u: %s, %u hits\n", q,
				pm_status_name(rep.status), rep.nhits);
			return -1;
		}
		for (uint32_t i = 0; i < k; i++)
			b->pomai_ids[(size_t)q * k + i] = key_index(&rep.keys[i]);
	}
	return b->test.count / ((double)(bu_now_ns() - t0) / 1e9);
}

static double round_faiss(struct bench *b)
{
	const uint32_t k = b->o.k;
	uint64_t t0 = bu_now_ns();
	for (uint32_t q = 0; q < b->test.count; q++) {
		size_t at = (size_t)q * k;
		if (pf_flat_search1(b->faiss, fmnist_image(&b->test, q), k, b->faiss_dist + at,
				    b->faiss_ids + at) != 0) {
			fprintf(stderr, "bench_knn: faiss search %u failed\n", q);
			return -1;
		}
	}
	return b->test.count / ((double)(bu_now_ns() - t0) / 1e9);
}

/* For scale: one core reading the base vectors (FAISS's contiguous copy) once,
 * plainly, front to back, with no software prefetch. The words are XOR-ed
 * (integer, associative: the compiler vectorises it freely and its one-cycle
 * latency keeps the loop memory-bound). Returns GB/s. */
static double stream_read_gbps(const float *x, size_t nfloats)
{
	const uint64_t *w = (const uint64_t *)x;
	size_t n = nfloats / 2;
	uint64_t acc = 0;
	uint64_t t0 = bu_now_ns();
	for (size_t i = 0; i < n; i++)
		acc ^= w[i];
	double s = (double)(bu_now_ns() - t0) / 1e9;
	__asm__ volatile("" : : "r"(acc)); /* keep the loop */
	return (double)n * sizeof(uint64_t) / s / 1e9;
}

static int run_rounds(struct bench *b)
{
	double *pq = calloc(b->o.rounds, sizeof(double)), *fq = calloc(b->o.rounds, sizeof(double));
	int rc = pq && fq ? 0 : -1;
	for (uint32_t r = 0; r < b->o.rounds && rc == 0; r++) {
		bool pomai_first = r % 2 == 0;
		double first = pomai_first ? round_pomai(b) : round_faiss(b);
		double second = pomai_first ? round_faiss(b) : round_pomai(b);
		pq[r] = pomai_first ? first : second;
		fq[r] = pomai_first ? second : first;
		if (pq[r] < 0 || fq[r] < 0)
			rc = -1;
		else
			printf("  round %u (%s first): pomai %8.2f q/s   faiss %8.2f q/s\n", r + 1,
			       pomai_first ? "pomai" : "faiss", pq[r], fq[r]);
		fflush(stdout);
	}
	if (rc == 0) {
		double pm = bu_median(pq, b->o.rounds), fm = bu_median(fq, b->o.rounds);
		double scan = (double)b->train.count * b->train.dim * sizeof(float);
		double gbps[KNN_ROUNDS_DEFAULT];
		for (unsigned i = 0; i < KNN_ROUNDS_DEFAULT; i++)
			gbps[i] = stream_read_gbps(b->train.data, (size_t)b->train.count * b->train.dim);
		printf("memory:   for scale, a plain sequential read of the %.0f MB of base vectors"
		       " runs at %.1f GB/s on this core (median of %u)\n",
		       scan / 1e6, bu_median(gbps, KNN_ROUNDS_DEFAULT), KNN_ROUNDS_DEFAULT);
		printf("median:   pomai %.2f q/s (%.2f ms/query, %.1f GB/s of vector data)\n"
		       "          faiss %.2f q/s (%.2f ms/query, %.1f GB/s of vector data)\n"
		       "ratio:    pomai / faiss = %.2fx\n",
		       pm, 1e3 / pm, pm * scan / 1e9, fm, 1e3 / fm, fm * scan / 1e9, pm / fm);
	}
	free(pq);
	free(fq);
	return rc;
}

/* ---------------------------------------------------------------- agreement */

/* Do two id lists hold the same multiset of exact distances to query q? */
static bool same_up_to_ties(const struct bench *b, uint32_t q, const int64_t *x,
			    const int64_t *y, double *dx, double *dy)
{
	const float *qv = fmnist_image(&b->test, q);
	for (uint32_t i = 0; i < b->o.k; i++) {
		if (x[i] < 0 || y[i] < 0 || x[i] >= b->train.count || y[i] >= b->train.count)
			return false;
		dx[i] = l2_exact(qv, fmnist_image(&b->train, (uint32_t)x[i]), b->train.dim);
		dy[i] = l2_exact(qv, fmnist_image(&b->train, (uint32_t)y[i]), b->train.dim);
	}
	qsort(dx, b->o.k, sizeof(double), cmp_double);
	qsort(dy, b->o.k, sizeof(double), cmp_double);
	return memcmp(dx, dy, b->o.k * sizeof(double)) == 0;
}

static void report_agreement(const struct bench *b)
{
	const uint32_t k = b->o.k;
	double *dx = malloc(k * sizeof(double)), *dy = malloc(k * sizeof(double));
	uint64_t same = 0, differ = 0, ties = 0;
	for (uint32_t q = 0; q < b->test.count && dx && dy; q++) {
		const int64_t *x = b->pomai_ids + (size_t)q * k, *y = b->faiss_ids + (size_t)q * k;
		uint32_t common = 0;
		for (uint32_t i = 0; i < k; i++)
			for (uint32_t j = 0; j < k; j++)
				common += x[i] == y[j];
		same += common;
		if (common != k) {
			differ++;
			ties += same_up_to_ties(b, q, x, y, dx, dy);
		}
	}
	printf("agree:    id-set agreement %.4f (%llu of %llu ids); %llu queries differ, "
	       "%llu of them only by distance ties\n",
	       (double)same / ((double)b->test.count * k), (unsigned long long)same,
	       (unsigned long long)b->test.count * k, (unsigned long long)differ,
	       (unsigned long long)ties);
	free(dx);
	free(dy);
}

/* ---------------------------------------------------------------- main */

static int load_dataset(struct bench *b)
{
	char err[FMNIST_ERR_BYTES];
	if (fmnist_load_split(b->o.dir, "train", 0, &b->train, err, sizeof(err)) != 0 ||
	    fmnist_load_split(b->o.dir, "t10k", b->o.queries, &b->test, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_knn: %s\nbench_knn: Fashion-MNIST is needed (package "
				"dataset-fashion-mnist, or --data DIR)\n", err);
		return -1;
	}
	if (b->test.dim != b->train.dim || b->test.count < b->o.queries) {
		fprintf(stderr, "bench_knn: test set: %u images of dim %u, want %u of dim %u\n",
			b->test.count, b->test.dim, b->o.queries, b->train.dim);
		return -1;
	}
	printf("dataset:  %s: %u base vectors, %u queries, dim %u, k=%u, %u rounds, CPU %d\n",
	       b->o.dir, b->train.count, b->test.count, b->train.dim, b->o.k, b->o.rounds,
	       b->o.cpu);
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench b;
	if (parse_args(argc, argv, &b.o) != 0)
		return 2;
	bu_print_header("bench_knn: exact k-NN, Pomai vs FAISS IndexFlatL2, one thread", argc,
			argv);
	if (b.o.cpu >= 0 && bu_pin_cpu(b.o.cpu) != 0)
		fprintf(stderr, "bench_knn: could not pin to CPU %d; running unpinned\n", b.o.cpu);
	if (load_dataset(&b) != 0)
		return 1;
	size_t n = (size_t)b.test.count * b.o.k;
	b.pomai_ids = malloc(n * sizeof(int64_t));
	b.faiss_ids = malloc(n * sizeof(int64_t));
	b.faiss_dist = malloc(n * sizeof(float));
	if (!b.pomai_ids || !b.faiss_ids || !b.faiss_dist) {
		fprintf(stderr, "bench_knn: out of memory\n");
		return 1;
	}
	int rc = load_pomai(&b) == 0 && load_faiss(&b) == 0 ? 0 : -1;
	if (rc == 0 && (rc = run_rounds(&b)) == 0)
		report_agreement(&b);
	pf_flat_free(b.faiss);
	pm_shard_destroy(&b.sh);
	fmnist_free(&b.train);
	fmnist_free(&b.test);
	free(b.pomai_ids);
	free(b.faiss_ids);
	free(b.faiss_dist);
	return rc == 0 ? 0 : 1;
}
