/* SPDX-License-Identifier: MIT
 *
 * hnswlib_anchor.h — a C view of hnswlib's HierarchicalNSW (float; L2Space,
 * or InnerProductSpace = 1 - dot, which is hnswlib's cosine on normalised
 * vectors), for bench_hnsw.
 *
 * hnswlib is a header-only C++ library that picks its distance kernel from
 * compile-time macros (__AVX512F__, __AVX__, __SSE__), so hnswlib_anchor.cpp is
 * compiled with -O3 -march=native: it is the anchor, and it must run with the
 * best kernel this CPU has. ph_simd() says which one it got.
 *
 * Debian's hnswlib is 0.6.2, which predates allow_replace_deleted (hnswlib
 * 0.7.0). ph_add_replace() does what 0.7's addPoint(replace_deleted = true)
 * does, with the public members of 0.6.2: take a deleted slot, give it the new
 * label, unmark it and call updatePoint(data, slot, 1.0) on it — the same graph
 * work as the real flag. ph_add() is plain addPoint, which needs a free slot
 * below max_elements (ph_resize grows it).
 *
 * Results are 0 / -errno (-ENOMEM, -EINVAL for an hnswlib exception, -ENOSPC
 * when the index is full) with a message in the caller's buffer. Labels are
 * uint64_t (hnswlib's labeltype is size_t).
 */
#ifndef POMAI_PERF_HNSWLIB_ANCHOR_H
#define POMAI_PERF_HNSWLIB_ANCHOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ph_index;

/* hnswlib's spaces: L2Space (squared L2) and InnerProductSpace (1 - dot). */
enum ph_space { PH_L2, PH_IP };

/* The L2 kernel hnswlib was compiled with and chose: "avx512", "avx", "sse",
 * "scalar". */
const char *ph_simd(void);
/* The flags this wrapper (and so hnswlib) was compiled with. */
const char *ph_cxxflags(void);

/* hugepages: put the level-0 block (vectors + level-0 links, 96 % of the
 * index) on transparent hugepages with madvise(MADV_HUGEPAGE), as Pomai's
 * arena does for itself (glibc's malloc would leave it on 4 KiB pages), so
 * that both engines read their vectors through the same page size. */
struct ph_index *ph_new(enum ph_space space, uint32_t dim, uint32_t max_elements, uint32_t m, uint32_t ef_construction,
			uint32_t seed, bool hugepages, char *err, size_t errlen);
void ph_free(struct ph_index *h);

/* addPoint(v, label): a new element (or an update if the label exists). */
int ph_add(struct ph_index *h, const float *v, uint64_t label, char *err, size_t errlen);
/* addPoint(v, label, replace_deleted = true) of hnswlib 0.7, emulated: reuse a
 * deleted slot if there is one, else a plain add. */
int ph_add_replace(struct ph_index *h, const float *v, uint64_t label, char *err, size_t errlen);
int ph_mark_deleted(struct ph_index *h, uint64_t label, char *err, size_t errlen);
int ph_resize(struct ph_index *h, uint32_t max_elements, char *err, size_t errlen);

void ph_set_ef(struct ph_index *h, uint32_t ef);
/* The k nearest labels to q, nearest first; returns how many. */
uint32_t ph_search(const struct ph_index *h, const float *q, uint32_t k, uint64_t *labels);

uint32_t ph_count(const struct ph_index *h);       /* slots in use (incl. deleted) */
uint32_t ph_deleted(const struct ph_index *h);     /* marked deleted */
uint32_t ph_max_elements(const struct ph_index *h);

/* hnswlib's own memory, from its data structures (bytes asked of malloc). */
struct ph_mem {
	uint64_t vectors;      /* count x dim x 4, inside the level-0 block */
	uint64_t level0_links; /* max_elements x (count + 2 M links) */
	uint64_t labels;       /* max_elements x 8, inside the level-0 block */
	uint64_t level0_spare; /* the level-0 block's slots above count */
	uint64_t upper_links;  /* linkLists_[i] blobs */
	uint64_t per_element;  /* linkLists_ pointers, element_levels_, a mutex per
				* element, the visited list */
	uint64_t fixed;        /* 65,536 update mutexes */
	uint64_t label_lookup; /* unordered_map: buckets + one node per label (est.) */
	uint64_t total;
	uint64_t graph;        /* level-0 links + upper links + element levels */
};
void ph_memory(const struct ph_index *h, struct ph_mem *m);

/* saveIndex / loadIndex (with room for max_elements), to copy an index. */
int ph_save(const struct ph_index *h, const char *path, char *err, size_t errlen);
struct ph_index *ph_load(const char *path, enum ph_space space, uint32_t dim, uint32_t max_elements, bool hugepages,
			 char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
