/* SPDX-License-Identifier: MIT
 *
 * demo.c — pomai-demo: Pomai on its embedded default, end to end, in one process.
 *
 * One shard with the default configuration (only the arena is enlarged, see
 * DEMO_ARENA_BYTES) gets an HNSW collection (M 16, ef_construction 200, ef 64)
 * and is loaded with the 60,000 Fashion-MNIST training images as 784-dimensional
 * vectors through pm_shard_apply(VADD), exactly as decoded frames would arrive
 * (the graph is built as they arrive); then Q test images are asked for their k
 * nearest neighbours through pm_shard_apply(VQUERY), once by exact scan and
 * once through the graph. Both answers are checked against a brute-force
 * reference computed here, independently of the engine's kernels, in double
 * precision (exact for these integer pixels). It prints the load rate,
 * queries/s, recall@k and the shard's INFO memory section.
 *
 * Recall counts a returned neighbour as right when its true distance is within
 * the true k-th distance (so a tie at the k-th place cannot count as a miss);
 * the stricter id-set agreement is printed beside it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "fmnist.h"
#include "request.h"
#include "shard.h"

/* 60,000 vectors of 784 floats: each blob (vector header + 3,136 B of floats,
 * rounded up to its size class) is about 3.3 KiB, some 200 MiB in all, beside the
 * 64 MiB of seed slots and the seed map: more than the 256 MiB default arena,
 * so the demo doubles it. */
#define DEMO_ARENA_BYTES (UINT64_C(512) << 20)
#define DEMO_QUERIES_DEFAULT 200u
#define DEMO_K_DEFAULT 10u
#define DEMO_KEY_PREFIX "fmnist:"
#define DEMO_KEY_BYTES_MAX 32u
#define DEMO_COLLECTION "fmnist"
#define DEMO_HNSW_M 16u
#define DEMO_HNSW_EF_CONSTRUCTION 200u
#define DEMO_HNSW_EF_SEARCH 64u

struct demo_opts {
	const char *dir;
	uint32_t queries;
	uint32_t k;
};

/* ---------------------------------------------------------------- arguments */

static void usage(FILE *f)
{
	fprintf(f, "usage: pomai-demo [--data DIR] [--queries N] [--k K]\n"
		   "  --data DIR    Fashion-MNIST directory (default %s)\n"
		   "  --queries N   test images to query, 1..10000 (default %u)\n"
		   "  --k K         neighbours per query, 1..%u (default %u)\n",
		FMNIST_DIR_DEFAULT, DEMO_QUERIES_DEFAULT, PM_K_MAX, DEMO_K_DEFAULT);
}

static int parse_args(int argc, char **argv, struct demo_opts *o)
{
	*o = (struct demo_opts){ FMNIST_DIR_DEFAULT, DEMO_QUERIES_DEFAULT, DEMO_K_DEFAULT };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		}
		int rc = -EINVAL;
		if (v && !strcmp(a, "--data")) {
			o->dir = v;
			rc = 0;
		} else if (v && !strcmp(a, "--queries")) {
			rc = bu_parse_u32(v, 10000, &o->queries);
		} else if (v && !strcmp(a, "--k")) {
			rc = bu_parse_u32(v, PM_K_MAX, &o->k);
		}
		if (rc != 0 || o->queries == 0 || o->k == 0) {
			fprintf(stderr, "pomai-demo: bad argument '%s'%s%s\n", a, v ? " " : "",
				v ? v : "");
			usage(stderr);
			return -EINVAL;
		}
		i++;
	}
	return 0;
}

/* ---------------------------------------------------------------- helpers */

/* The request wants little-endian f32 bytes; on this host floats already are. */
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

/* "fmnist:000123" -> 123; UINT32_MAX if the key is not one of ours. */
static uint32_t key_index(const struct pm_bytes *key)
{
	const size_t plen = sizeof(DEMO_KEY_PREFIX) - 1;
	if (key->len <= plen || key->len > DEMO_KEY_BYTES_MAX ||
	    memcmp(key->ptr, DEMO_KEY_PREFIX, plen) != 0)
		return UINT32_MAX;
	uint32_t v = 0;
	for (uint32_t i = (uint32_t)plen; i < key->len; i++) {
		if (key->ptr[i] < '0' || key->ptr[i] > '9')
			return UINT32_MAX;
		v = v * 10 + (uint32_t)(key->ptr[i] - '0');
	}
	return v;
}

/* Squared Euclidean distance in double, independent of the engine's kernels. */
static double l2_ref(const float *a, const float *b, uint32_t dim)
{
	double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	uint32_t i = 0;
	for (; i + 4 <= dim; i += 4) {
		double d0 = (double)a[i] - b[i], d1 = (double)a[i + 1] - b[i + 1];
		double d2 = (double)a[i + 2] - b[i + 2], d3 = (double)a[i + 3] - b[i + 3];
		s0 += d0 * d0, s1 += d1 * d1, s2 += d2 * d2, s3 += d3 * d3;
	}
	for (; i < dim; i++) {
		double d = (double)a[i] - b[i];
		s0 += d * d;
	}
	return (s0 + s1) + (s2 + s3);
}

/* The k smallest reference distances to q, ascending, with their ids. */
static void brute_force(const struct fmnist *base, const float *q, uint32_t k, double *dist,
			uint32_t *ids)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < base->count; i++) {
		double d = l2_ref(q, fmnist_image(base, i), base->dim);
		if (n == k && d >= dist[k - 1])
			continue;
		uint32_t j = n < k ? n++ : k - 1;
		for (; j > 0 && dist[j - 1] > d; j--) {
			dist[j] = dist[j - 1];
			ids[j] = ids[j - 1];
		}
		dist[j] = d;
		ids[j] = i;
	}
}

/* ---------------------------------------------------------------- phases */

static const struct pm_bytes demo_coll = { (const uint8_t *)DEMO_COLLECTION,
					    sizeof(DEMO_COLLECTION) - 1 };

static int load_vectors(struct pm_shard *sh, const struct fmnist *train)
{
	static uint8_t scratch[PM_DIM_MAX * 4];
	char key[DEMO_KEY_BYTES_MAX];
	struct pm_reply rep;
	struct pm_request create = {
		.op = PM_OP_CCREATE,
		.collection = demo_coll,
		.params = { .dim = train->dim, .metric = PM_METRIC_L2, .index = PM_INDEX_HNSW,
			    .hnsw_m = DEMO_HNSW_M, .ef_construction = DEMO_HNSW_EF_CONSTRUCTION,
			    .ef_search = DEMO_HNSW_EF_SEARCH },
	};
	pm_shard_apply(sh, &create, 0, &rep);
	if (rep.status != PM_OK) {
		fprintf(stderr, "pomai-demo: create collection failed: %s\n",
			pm_status_name(rep.status));
		return -1;
	}
	uint64_t t0 = bu_now_ns();
	for (uint32_t i = 0; i < train->count; i++) {
		int klen = snprintf(key, sizeof(key), DEMO_KEY_PREFIX "%06u", i);
		struct pm_request req = {
			.op = PM_OP_VADD,
			.id = i,
			.key = { (const uint8_t *)key, (uint32_t)klen },
			.vec = vec_bytes(fmnist_image(train, i), train->dim, scratch),
			.dim = train->dim,
			.collection = demo_coll,
		};
		pm_shard_apply(sh, &req, 0, &rep);
		if (rep.status != PM_OK) {
			fprintf(stderr, "pomai-demo: VADD %s failed: %s\n", key,
				pm_status_name(rep.status));
			return -1;
		}
	}
	double s = (double)(bu_now_ns() - t0) / 1e9;
	printf("load:     %u vectors of dim %u into HNSW collection '%s' (M %u, ef_construction"
	       " %u) in %.3f s = %.0f vectors/s\n",
	       train->count, train->dim, DEMO_COLLECTION, DEMO_HNSW_M, DEMO_HNSW_EF_CONSTRUCTION, s,
	       train->count / s);
	return 0;
}

/* Run the queries; found[q * k + i] is the train index of hit i (or UINT32_MAX). */
static int run_queries(struct pm_shard *sh, const struct fmnist *test, uint32_t k, bool exact,
		       uint32_t *found)
{
	static uint8_t scratch[PM_DIM_MAX * 4];
	struct pm_reply rep;
	uint64_t t0 = bu_now_ns();
	for (uint32_t q = 0; q < test->count; q++) {
		struct pm_request req = {
			.op = PM_OP_VQUERY,
			.id = q,
			.vec = vec_bytes(fmnist_image(test, q), test->dim, scratch),
			.dim = test->dim,
			.k = k,
			.collection = demo_coll,
			.exact = exact, /* flat scan, or the graph at the collection's ef */
		};
		pm_shard_apply(sh, &req, 0, &rep);
		if (rep.status != PM_OK || rep.nhits != k) {
			fprintf(stderr, "pomai-demo: VQUERY %u failed: %s (%u hits)\n", q,
				pm_status_name(rep.status), rep.nhits);
			return -1;
		}
		for (uint32_t i = 0; i < k; i++)
			found[(size_t)q * k + i] = key_index(&rep.keys[i]);
	}
	double s = (double)(bu_now_ns() - t0) / 1e9;
	if (exact)
		printf("query:    %u queries, k=%u, exact scan of %u vectors (kernels: %s): "
		       "%.3f s = %.1f queries/s\n",
		       test->count, k, (uint32_t)sh->stats.vectors, sh->kern->name, s,
		       test->count / s);
	else
		printf("query:    %u queries, k=%u, HNSW at ef %u: %.3f s = %.1f queries/s\n",
		       test->count, k, DEMO_HNSW_EF_SEARCH, s, test->count / s);
	return 0;
}

/* The double-precision reference: for each query its k nearest train ids and
 * the k-th distance, computed once and used to check both passes. */
struct reference {
	uint32_t *ids;  /* queries x k */
	double *kth;    /* queries */
};

static int compute_reference(const struct fmnist *train, const struct fmnist *test, uint32_t k,
			     struct reference *ref)
{
	double *dist = malloc(k * sizeof(*dist));
	ref->ids = malloc((size_t)test->count * k * sizeof(*ref->ids));
	ref->kth = malloc(test->count * sizeof(*ref->kth));
	if (!dist || !ref->ids || !ref->kth) {
		fprintf(stderr, "pomai-demo: out of memory for the reference search\n");
		free(dist);
		return -1;
	}
	uint64_t t0 = bu_now_ns();
	for (uint32_t q = 0; q < test->count; q++) {
		brute_force(train, fmnist_image(test, q), k, dist, ref->ids + (size_t)q * k);
		ref->kth[q] = dist[k - 1];
	}
	printf("exact:    reference brute force in double, %u queries: %.3f s\n", test->count,
	       (double)(bu_now_ns() - t0) / 1e9);
	free(dist);
	return 0;
}

/* Recall@k (tie-aware) and id-set agreement against the reference. */
static int check_recall(const struct fmnist *train, const struct fmnist *test, uint32_t k,
			const struct reference *ref, const uint32_t *found)
{
	uint64_t right = 0, same_id = 0, bad_keys = 0;
	for (uint32_t q = 0; q < test->count; q++) {
		const float *qv = fmnist_image(test, q);
		const uint32_t *ids = ref->ids + (size_t)q * k;
		for (uint32_t i = 0; i < k; i++) {
			uint32_t id = found[(size_t)q * k + i];
			if (id >= train->count) {
				bad_keys++;
				continue;
			}
			right += l2_ref(qv, fmnist_image(train, id), train->dim) <= ref->kth[q];
			for (uint32_t j = 0; j < k; j++)
				same_id += ids[j] == id;
		}
	}
	double total = (double)test->count * k;
	printf("recall:   recall@%u = %.4f (id-set agreement %.4f; unknown keys %llu)\n", k,
	       right / total, same_id / total, (unsigned long long)bad_keys);
	return bad_keys ? -1 : 0;
}

static void print_info_memory(struct pm_shard *sh)
{
	static const char section[] = "memory";
	struct pm_request req = {
		.op = PM_OP_INFO,
		.section = { (const uint8_t *)section, sizeof(section) - 1 },
	};
	struct pm_reply rep;
	pm_shard_apply(sh, &req, 0, &rep);
	printf("INFO memory:\n");
	for (uint32_t i = 0; i < rep.value.len; i++)
		if (rep.value.ptr[i] != '\r')
			putchar(rep.value.ptr[i]);
}

/* ---------------------------------------------------------------- main */

static int load_dataset(const struct demo_opts *o, struct fmnist *train, struct fmnist *test)
{
	char err[FMNIST_ERR_BYTES];
	uint64_t t0 = bu_now_ns();
	if (fmnist_load_split(o->dir, "train", 0, train, err, sizeof(err)) != 0 ||
	    fmnist_load_split(o->dir, "t10k", o->queries, test, err, sizeof(err)) != 0) {
		fprintf(stderr, "pomai-demo: %s\n"
				"pomai-demo: Fashion-MNIST is needed (Debian package "
				"dataset-fashion-mnist, or --data DIR with the four IDX .gz files)\n",
			err);
		fmnist_free(train);
		return -1;
	}
	if (test->count < o->queries || test->dim != train->dim) {
		fprintf(stderr, "pomai-demo: test set has %u images of dim %u (want %u of dim %u)\n",
			test->count, test->dim, o->queries, train->dim);
		fmnist_free(train);
		fmnist_free(test);
		return -1;
	}
	printf("dataset:  %s: %u train, %u test queries, %ux%u = %u dims (read in %.3f s)\n",
	       o->dir, train->count, test->count, train->rows, train->cols, train->dim,
	       (double)(bu_now_ns() - t0) / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	struct demo_opts o;
	if (parse_args(argc, argv, &o) != 0)
		return 2;
	printf("pomai-demo: one embedded shard, Fashion-MNIST, exact and HNSW k-NN\n");
	struct fmnist train, test;
	if (load_dataset(&o, &train, &test) != 0)
		return 1;

	struct pm_shard_config cfg;
	pm_shard_config_default(&cfg);
	cfg.arena_bytes = DEMO_ARENA_BYTES;
	struct pm_shard sh;
	enum pm_status st = pm_shard_init(&sh, &cfg);
	if (st != PM_OK) {
		fprintf(stderr, "pomai-demo: shard init (%llu MiB arena) failed: %s\n",
			(unsigned long long)(cfg.arena_bytes >> 20), pm_status_name(st));
		return 1;
	}
	uint32_t *found = malloc((size_t)test.count * o.k * sizeof(*found));
	struct reference ref = { 0 };
	int rc = found ? 0 : -1;
	if (rc == 0)
		rc = load_vectors(&sh, &train);
	if (rc == 0)
		rc = compute_reference(&train, &test, o.k, &ref);
	for (int exact = 1; exact >= 0 && rc == 0; exact--) {
		rc = run_queries(&sh, &test, o.k, exact, found);
		if (rc == 0)
			rc = check_recall(&train, &test, o.k, &ref, found);
	}
	if (rc == 0)
		print_info_memory(&sh);
	free(ref.ids);
	free(ref.kth);
	free(found);
	pm_shard_destroy(&sh);
	fmnist_free(&train);
	fmnist_free(&test);
	return rc == 0 ? 0 : 1;
}
