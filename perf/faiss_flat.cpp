/* SPDX-License-Identifier: MIT
 *
 * faiss_flat.cpp — FAISS IndexFlatL2 behind the C interface of faiss_flat.h.
 *
 * Nothing here is tuned: the index is FAISS's own exact L2 index as Debian's
 * libfaiss-dev builds it, searched with n = 1. For one query FAISS takes its
 * sequential path (below distance_compute_blas_threshold = 20 queries it
 * computes each distance with fvec_L2sqr and keeps a heap), so BLAS plays no
 * part in the timings.
 */
#include "faiss_flat.h"

#include <cerrno>
#include <cstdio>
#include <new>

#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <omp.h>

static_assert(sizeof(faiss::Index::idx_t) == sizeof(int64_t), "FAISS ids are 64-bit");

struct pf_flat {
	faiss::IndexFlatL2 index;
	explicit pf_flat(uint32_t dim) : index((faiss::Index::idx_t)dim) {}
};

#define PF_STR2(x) #x
#define PF_STR(x) PF_STR2(x)

const char *pf_version(void)
{
	return PF_STR(FAISS_VERSION_MAJOR) "." PF_STR(FAISS_VERSION_MINOR) "." PF_STR(
		FAISS_VERSION_PATCH);
}

void pf_set_threads(int n)
{
	omp_set_num_threads(n);
}

struct pf_flat *pf_flat_new(uint32_t dim, char *err, size_t errlen)
{
	try {
		return new pf_flat(dim);
	} catch (const std::exception &e) {
		snprintf(err, errlen, "faiss: IndexFlatL2(%u): %s", dim, e.what());
	}
	return nullptr;
}

void pf_flat_free(struct pf_flat *f)
{
	delete f;
}

int pf_flat_add(struct pf_flat *f, const float *x, uint64_t n, char *err, size_t errlen)
{
	try {
		f->index.add((faiss::Index::idx_t)n, x);
		return 0;
	} catch (const std::bad_alloc &) {
		snprintf(err, errlen, "faiss: out of memory adding %llu vectors",
			 (unsigned long long)n);
		return -ENOMEM;
	} catch (const std::exception &e) {
		snprintf(err, errlen, "faiss: add: %s", e.what());
		return -EINVAL;
	}
}

int pf_flat_search1(const struct pf_flat *f, const float *q, uint32_t k, float *dist,
		    int64_t *ids)
{
	try {
		f->index.search(1, q, (faiss::Index::idx_t)k, dist,
				reinterpret_cast<faiss::Index::idx_t *>(ids));
		return 0;
	} catch (const std::bad_alloc &) {
		return -ENOMEM;
	} catch (const std::exception &) {
		return -EINVAL;
	}
}

/* ---------------------------------------------------------------- batches (issue 18) */

/* n queries in one call: from distance_compute_blas_threshold (20) queries
 * on, IndexFlatL2 computes the distances block by block with the BLAS's
 * sgemm (|x|^2 + |y|^2 - 2 x.y) and keeps a heap per query. */
int pf_flat_search(const struct pf_flat *f, uint32_t n, const float *q, uint32_t k, float *dist,
		   int64_t *ids)
{
	try {
		f->index.search((faiss::Index::idx_t)n, q, (faiss::Index::idx_t)k, dist,
				reinterpret_cast<faiss::Index::idx_t *>(ids));
		return 0;
	} catch (const std::bad_alloc &) {
		return -ENOMEM;
	} catch (const std::exception &) {
		return -EINVAL;
	}
}
