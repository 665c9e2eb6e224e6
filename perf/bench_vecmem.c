/* SPDX-License-Identifier: MIT
 *
 * bench_vecmem.c — bytes per vector of an HNSW collection, by dimension and
 * element type: what the arena's size classes make of a node blob.
 *
 * For each element type (f32, q8) and each dimension (96, 100, 128, 384, 768,
 * 784, 1536 by default), one shard gets an HNSW collection (M 16) and
 * VEC_COUNT random vectors under 4-byte keys, and the arena's accounting is
 * read back, as bench_hnsw reads it:
 *   blob   the vector blob's request (header, payload, level-0 links) and the
 *          size class the arena gives it;
 *   class  class bytes of every blob in use (node blobs, upper links, node
 *          table, visited marks, member lists) + the seed slots + the seed
 *          map's share, per vector;
 *   held   the same with what the arena keeps but does not use: alignment
 *          gaps and blobs on free lists (the footprint).
 * Memory is a function of the inserts (the level RNG is seeded per
 * collection, the vectors by VEC_SEED), so one run is the measurement; no
 * timing. ef_construction is low (VEC_EF_CONSTRUCTION) to keep the builds
 * short: it changes which links a node keeps, never how many bytes it holds.
 *
 *   bench_vecmem [--count N] [--dims 96,100,...]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "benchutil.h"
#include "hnsw.h"
#include "quant.h"
#include "seedmap.h"
#include "shard.h"
#include "vector.h"

/* Vectors per collection: two node-table chunks exactly, so the table's
 * share is its real 8 bytes a node. */
#define VEC_COUNT_DEFAULT (2u * PM_HNSW_CHUNK_NODES)
#define VEC_COUNT_MAX 65536u
#define VEC_DIMS_MAX 16u
#define VEC_M 16u
#define VEC_EF_CONSTRUCTION 16u
#define VEC_SEED 20261207u
/* One shard per configuration: VEC_COUNT_MAX 1536-d f32 nodes (6,656-byte
 * class) are 416 MiB; the default 8,192 fit many times over. */
#define VEC_ARENA_BYTES (UINT64_C(512) << 20)
#define VEC_SEEDS 65536u
#define VEC_COLL "m"

static const uint32_t dims_default[] = { 96, 100, 128, 384, 768, 784, 1536 };

static const struct {
	const char *name;
	uint8_t dtype;
} types[] = { { "f32", PM_DTYPE_F32 }, { "q8", PM_DTYPE_Q8 } };

struct held {
	uint64_t used, footprint;
};

static struct held arena_held(const struct pm_shard *sh)
{
	struct pm_arena_stats st;
	pm_arena_stats(&sh->arena, &st);
	uint64_t seeds = (uint64_t)st.seeds_used * PM_SEED_BYTES;
	return (struct held){ .used = st.blob_bytes_used + seeds,
			      .footprint = st.blob_bytes_used + st.blob_bytes_free +
					   st.blob_bytes_gap + seeds };
}

/* One collection of n vectors; prints its line. Returns 0 or -1. */
static int measure(uint8_t dtype, const char *tname, uint32_t dim, uint32_t n, float *vec)
{
	struct pm_shard sh;
	struct pm_shard_config cfg;
	pm_shard_config_default(&cfg);
	cfg.arena_bytes = VEC_ARENA_BYTES;
	cfg.seed_capacity = VEC_SEEDS;
	if (pm_shard_init(&sh, &cfg) != PM_OK)
		return -1;
	struct pm_reply rep;
	struct pm_request cr = {
		.op = PM_OP_CCREATE, .collection = { (const uint8_t *)VEC_COLL, 1 },
		.params = { .dim = dim, .index = PM_INDEX_HNSW, .hnsw_m = VEC_M,
			    .ef_construction = VEC_EF_CONSTRUCTION, .dtype = dtype }
	};
	pm_shard_apply(&sh, &cr, 0, &rep);
	int rc = rep.status == PM_OK ? 0 : -1;
	struct held h0 = arena_held(&sh);
	struct bu_rng rng = { VEC_SEED ^ dim };
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		for (uint32_t j = 0; j < dim; j++)
			vec[j] = (float)(bu_rng_next(&rng) >> 40) / (float)(1u << 24) - 0.5f;
		struct pm_request r = { .op = PM_OP_VADD, .key = { (const uint8_t *)&i, 4 },
					.collection = { (const uint8_t *)VEC_COLL, 1 },
					.vec = (const uint8_t *)vec, .dim = dim };
		pm_shard_apply(&sh, &r, 0, &rep);
		rc = rep.status == PM_OK ? 0 : -1;
	}
	if (rc == 0) {
		const struct pm_collection *c = pm_coll_find(&sh, (const uint8_t *)VEC_COLL, 1);
		struct held h1 = arena_held(&sh);
		double map = (double)pm_seedmap_bytes(VEC_SEEDS) / VEC_SEEDS;
		uint32_t req = PM_VEC_HEADER_BYTES + pm_quant_stored_bytes(&c->params) +
			       pm_hnsw_links0_bytes(c->hnsw.m0);
		printf("%-4s %5u  blob %5u -> %5u  class %7.1f  held %7.1f  B/vector\n", tname, dim,
		       req, pm_blob_footprint(req), (double)(h1.used - h0.used) / n + map,
		       (double)(h1.footprint - h0.footprint) / n + map);
	}
	pm_shard_destroy(&sh);
	return rc;
}

static uint32_t parse_dims(char *s, uint32_t *dims)
{
	uint32_t nd = 0;
	for (char *tok = strtok(s, ","); tok && nd < VEC_DIMS_MAX; tok = strtok(NULL, ","))
		if (bu_parse_u32(tok, PM_DIM_MAX, &dims[nd]) == 0 && dims[nd])
			nd++;
		else
			return 0;
	return nd;
}

int main(int argc, char **argv)
{
	uint32_t n = VEC_COUNT_DEFAULT, dims[VEC_DIMS_MAX], nd = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--count") && i + 1 < argc &&
		    bu_parse_u32(argv[i + 1], VEC_COUNT_MAX, &n) == 0 && n) {
			i++;
		} else if (!strcmp(argv[i], "--dims") && i + 1 < argc &&
			   (nd = parse_dims(argv[i + 1], dims)) != 0) {
			i++;
		} else {
			fprintf(stderr, "usage: %s [--count N<=%u] [--dims d1,d2,...]\n", argv[0],
				VEC_COUNT_MAX);
			return 2;
		}
	}
	if (!nd)
		for (; nd < sizeof dims_default / sizeof dims_default[0]; nd++)
			dims[nd] = dims_default[nd];
	bu_print_header("bench_vecmem: HNSW (M 16) bytes per vector by dimension", argc, argv);
	printf("vectors per collection: %u; class = class bytes in use + seed slots + seed map "
	       "share; held = class + alignment gaps + free lists\n", n);
	float *vec = malloc((size_t)PM_DIM_MAX * sizeof(float));
	if (!vec)
		return 1;
	int rc = 0;
	for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
		for (uint32_t d = 0; d < nd && rc == 0; d++)
			if ((rc = measure(types[t].dtype, types[t].name, dims[d], n, vec)) != 0)
				fprintf(stderr, "bench_vecmem: %s %u-d failed\n", types[t].name, dims[d]);
	free(vec);
	return rc ? 1 : 0;
}
