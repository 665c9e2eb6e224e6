/* SPDX-License-Identifier: MIT
 *
 * faiss_hnsw.h — a C view of FAISS's IndexHNSWFlat (L2), for bench_hnsw.
 *
 * Like faiss_flat.h: Debian ships FAISS as a static C++ library only, so
 * faiss_hnsw.cpp wraps the calls the benchmark needs behind extern "C" and maps
 * C++ exceptions to 0 / -errno (-ENOMEM, -EINVAL) with a message. The wrapper
 * is compiled with -O3 -march=native, but FAISS's own code (graph walk and
 * distance kernels) is Debian's prebuilt libfaiss.a: compiler flags here cannot
 * change it. FAISS's HNSW has no deletion.
 */
#ifndef POMAI_PERF_FAISS_HNSW_H
#define POMAI_PERF_FAISS_HNSW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pf_hnsw;

/* IndexHNSWFlat(dim, m) with hnsw.efConstruction = ef_construction. With
 * hugepages, pf_hnsw_add reserves the vector storage first and advises it onto
 * transparent hugepages (as Pomai's arena and hnswlib_anchor do). */
struct pf_hnsw *pf_hnsw_new(uint32_t dim, uint32_t m, uint32_t ef_construction, bool hugepages,
			    char *err, size_t errlen);
void pf_hnsw_free(struct pf_hnsw *f);

/* Add n vectors (n x dim floats); their ids are 0..n-1 in order. */
int pf_hnsw_add(struct pf_hnsw *f, const float *x, uint64_t n, char *err, size_t errlen);

void pf_hnsw_set_ef(struct pf_hnsw *f, uint32_t ef);
/* The k nearest to one query (n = 1): squared L2 distances and ids, ascending. */
int pf_hnsw_search1(const struct pf_hnsw *f, const float *q, uint32_t k, float *dist,
		    int64_t *ids);

/* FAISS's memory, from its data structures (bytes in use, vector sizes). */
struct pf_hnsw_mem {
	uint64_t vectors;   /* storage codes: ntotal x dim x 4 */
	uint64_t neighbors; /* hnsw.neighbors: every level's slots, -1 = empty */
	uint64_t levels;    /* hnsw.levels */
	uint64_t offsets;   /* hnsw.offsets */
	uint64_t other;     /* level tables */
	uint64_t total;
	uint64_t graph;     /* neighbors + levels + offsets */
};
void pf_hnsw_memory(const struct pf_hnsw *f, struct pf_hnsw_mem *m);

#ifdef __cplusplus
}
#endif

#endif
