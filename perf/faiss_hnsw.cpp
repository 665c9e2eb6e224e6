/* SPDX-License-Identifier: MIT
 *
 * faiss_hnsw.cpp — FAISS IndexHNSWFlat behind the C interface of faiss_hnsw.h.
 *
 * Nothing is tuned: M and efConstruction are set as the benchmark asks, efSearch
 * before each batch of queries, and every search is IndexHNSW::search with
 * n = 1 (OpenMP is limited to one thread by the caller, pf_set_threads). FAISS
 * builds the graph in its own order (highest levels first), which is its
 * normal IndexHNSW::add.
 */
#include "faiss_hnsw.h"

#include <cerrno>
#include <cstdio>
#include <new>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <sys/mman.h>

static_assert(sizeof(faiss::Index::idx_t) == sizeof(int64_t), "FAISS ids are 64-bit");

/* Transparent hugepages come in 2 MiB on x86-64. */
#define PF_HUGEPAGE_BYTES (UINT64_C(2) << 20)

struct pf_hnsw {
	faiss::IndexHNSWFlat index;
	bool hugepages;
	pf_hnsw(uint32_t dim, uint32_t m, bool huge) : index((int)dim, (int)m), hugepages(huge) {}
};

/* Reserve room for n more vectors and ask for hugepages on the 2 MiB-aligned
 * inside of it, before FAISS's add writes (and so faults in) those pages. */
static void reserve_huge(pf_hnsw *f, uint64_t n)
{
	auto *flat = dynamic_cast<faiss::IndexFlatCodes *>(f->index.storage);
	if (!flat)
		return;
	std::vector<uint8_t> &codes = flat->codes;
	codes.reserve(codes.size() + n * flat->code_size);
	uintptr_t p = (uintptr_t)codes.data(), len = codes.capacity();
	uintptr_t a = (p + PF_HUGEPAGE_BYTES - 1) & ~(uintptr_t)(PF_HUGEPAGE_BYTES - 1);
	uintptr_t e = (p + len) & ~(uintptr_t)(PF_HUGEPAGE_BYTES - 1);
	if (e > a)
		madvise((void *)a, e - a, MADV_HUGEPAGE);
}

struct pf_hnsw *pf_hnsw_new(uint32_t dim, uint32_t m, uint32_t ef_construction, bool hugepages,
			    char *err, size_t errlen)
{
	try {
		pf_hnsw *f = new pf_hnsw(dim, m, hugepages);
		f->index.hnsw.efConstruction = (int)ef_construction;
		return f;
	} catch (const std::exception &e) {
		snprintf(err, errlen, "faiss: IndexHNSWFlat(%u, %u): %s", dim, m, e.what());
	}
	return nullptr;
}

void pf_hnsw_free(struct pf_hnsw *f)
{
	delete f;
}

int pf_hnsw_add(struct pf_hnsw *f, const float *x, uint64_t n, char *err, size_t errlen)
{
	try {
		if (f->hugepages)
			reserve_huge(f, n);
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

void pf_hnsw_set_ef(struct pf_hnsw *f, uint32_t ef)
{
	f->index.hnsw.efSearch = (int)ef;
}

int pf_hnsw_search1(const struct pf_hnsw *f, const float *q, uint32_t k, float *dist,
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

void pf_hnsw_memory(const struct pf_hnsw *f, struct pf_hnsw_mem *m)
{
	const faiss::HNSW &h = f->index.hnsw;
	const auto *flat = dynamic_cast<const faiss::IndexFlatCodes *>(f->index.storage);
	*m = pf_hnsw_mem{};
	m->vectors = flat ? flat->codes.size() : 0;
	m->neighbors = h.neighbors.size() * sizeof(h.neighbors[0]);
	m->levels = h.levels.size() * sizeof(h.levels[0]);
	m->offsets = h.offsets.size() * sizeof(h.offsets[0]);
	m->other = h.assign_probas.size() * sizeof(h.assign_probas[0]) +
		   h.cum_nneighbor_per_level.size() * sizeof(h.cum_nneighbor_per_level[0]);
	m->graph = m->neighbors + m->levels + m->offsets;
	m->total = m->vectors + m->graph + m->other;
}
