/* SPDX-License-Identifier: MIT
 *
 * gtcache.h — exact k-NN ground truth of a benchmark, cached in a file.
 *
 * Computing exact top-k for 1,000 (or 10,000) queries against 60,000 to
 * 340,000 vectors takes seconds to a minute, so bench_hnsw computes it once
 * and keeps it in a file keyed by (data set, base count, dim, queries, k). A
 * file with more neighbours per query than asked for serves the first k of
 * each (bench_hnsw keeps GT_K_FILE; recall@10 reads ten). A cached file is
 * used only if it proves it belongs to this data: its header repeats the sizes
 * and a 64-bit hash of every base and query float, its payload ends with its
 * own checksum, ids must be below the base count and each query's distances
 * must be ascending. Anything else is reported and the truth recomputed.
 *
 * File: header (struct gt_header, little-endian host layout), then nq x k u32
 * ids, nq x k f32 distances, then a u64 checksum of those two arrays. Written to
 * a temporary name and renamed, so a crash never leaves a half file behind.
 * Results are 0 / -errno with a message in err.
 */
#ifndef POMAI_PERF_GTCACHE_H
#define POMAI_PERF_GTCACHE_H

#include <stddef.h>
#include <stdint.h>

#define GT_MAGIC "PMGTRUTH"
#define GT_VERSION 1u
/* Longest cache path (directory from $XDG_CACHE_HOME or $HOME + file name). */
#define GT_PATH_BYTES 4096u
/* Neighbours per query bench_hnsw computes and caches: the top 100, so the
 * same file serves recall@10 and any k up to 100. */
#define GT_K_FILE 100u

struct gt {
	uint32_t n, dim, nq, k;
	uint64_t data_hash;
	uint32_t *ids; /* nq x k base indexes, nearest first (malloc'd) */
	float *dist;   /* nq x k distances */
};

/* Hash of the base and query vectors (their float bits). */
uint64_t gt_data_hash(const float *base, uint64_t nbase_floats, const float *queries,
		      uint64_t nquery_floats);

/* $XDG_CACHE_HOME/rel, or ~/.cache/rel (the user's cache, where the
 * benchmarks keep what they compute or fetch once): 0 / -errno. */
int gt_cache_path(char *out, size_t outlen, const char *rel, char *err, size_t errlen);

/* $XDG_CACHE_HOME/pomai (or ~/.cache/pomai), created if missing, plus
 * "<name>-gt-n<N>-d<D>-q<Q>-k<K>.bin" (name: the data set, e.g. "fmnist").
 * 0 / -errno. */
int gt_default_path(char *out, size_t outlen, const char *name, uint32_t n, uint32_t dim,
		    uint32_t nq, uint32_t k, char *err, size_t errlen);

/* Allocate g's arrays for the sizes already in g. */
int gt_alloc(struct gt *g);
void gt_free(struct gt *g);

/* Load a cached truth matching g's sizes and hash (a file of k >= g->k
 * neighbours per query gives each query's first g->k): 0, -ENOENT (no file),
 * or -EINVAL (it does not match or is damaged; err says why). */
int gt_load(const char *path, struct gt *g, char *err, size_t errlen);
int gt_save(const char *path, const struct gt *g, char *err, size_t errlen);

#endif
