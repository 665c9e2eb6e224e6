/* SPDX-License-Identifier: MIT
 *
 * faiss_flat.h — a C view of FAISS's exact L2 index, for bench_knn.
 *
 * Debian ships FAISS as a C++ library only (no libfaiss_c), so faiss_flat.cpp
 * wraps the four calls the benchmark needs behind extern "C" and turns C++
 * exceptions into error codes (0 / -errno: -ENOMEM for bad_alloc, -EINVAL for a
 * FAISS error) with a message in the caller's buffer. Searches are one query per
 * call, like Pomai's VQUERY, so both engines pay the same per-query overhead.
 */
#ifndef POMAI_PERF_FAISS_FLAT_H
#define POMAI_PERF_FAISS_FLAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pf_flat;

/* FAISS version, "major.minor.patch". */
const char *pf_version(void);

/* OpenMP threads FAISS may use (the benchmark sets 1). */
void pf_set_threads(int n);

/* A new faiss::IndexFlatL2 of dimension dim, or NULL (message in err). */
struct pf_flat *pf_flat_new(uint32_t dim, char *err, size_t errlen);
void pf_flat_free(struct pf_flat *f);

/* Add n vectors (n x dim floats); their ids are 0..n-1 in order. */
int pf_flat_add(struct pf_flat *f, const float *x, uint64_t n, char *err, size_t errlen);

/* The k nearest to one query: squared L2 distances and ids, ascending. */
int pf_flat_search1(const struct pf_flat *f, const float *q, uint32_t k, float *dist,
		    int64_t *ids);

/* The k nearest to each of n queries (n x dim floats), in one call: n x k
 * distances and ids, each query's ascending. */
int pf_flat_search(const struct pf_flat *f, uint32_t n, const float *q, uint32_t k, float *dist,
		   int64_t *ids);

#ifdef __cplusplus
}
#endif

#endif
