/* SPDX-License-Identifier: MIT
 *
 * hnswlib_anchor.cpp — hnswlib's HierarchicalNSW behind the C interface of
 * hnswlib_anchor.h (why it exists and what ph_add_replace emulates: there).
 *
 * Nothing of hnswlib's algorithm is changed or tuned: the index is built and
 * searched through its public API, one query per searchKnn call, one thread.
 * The one thing done to it: with hugepages, its level-0 block (vectors and
 * level-0 links, 96 % of its memory) is advised onto transparent hugepages, as
 * Pomai's arena is, so both engines read their vectors through the same page
 * size. This is
 * the only file that includes hnswlib.h (it defines non-inline functions).
 * It must be compiled with -march=native (see perf/meson.build) so that
 * hnswlib's kernel macros see the CPU's AVX-512 / AVX.
 */
#include "hnswlib_anchor.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>

#include <hnswlib/hnswlib.h>
#include <sys/mman.h>

using hnsw_t = hnswlib::HierarchicalNSW<float>;

/* Transparent hugepages come in 2 MiB on x86-64. */
#define PH_HUGEPAGE_BYTES (UINT64_C(2) << 20)

static hnswlib::SpaceInterface<float> *new_space(enum ph_space s, uint32_t dim)
{
	if (s == PH_IP)
		return new hnswlib::InnerProductSpace(dim);
	return new hnswlib::L2Space(dim);
}

struct ph_index {
	std::unique_ptr<hnswlib::SpaceInterface<float>> space; /* before alg: alg uses it */
	std::unique_ptr<hnsw_t> alg;
	std::vector<hnswlib::tableint> vacant; /* deleted slots ph_add_replace may reuse */
	bool hugepages;
	ph_index(enum ph_space s, uint32_t dim, bool huge)
		: space(new_space(s, dim)), hugepages(huge) {}
};

/* Ask for hugepages on the 2 MiB-aligned inside of [p, p + len). */
static void advise_huge(void *p, size_t len)
{
	uintptr_t a = ((uintptr_t)p + PH_HUGEPAGE_BYTES - 1) & ~(uintptr_t)(PH_HUGEPAGE_BYTES - 1);
	uintptr_t e = ((uintptr_t)p + len) & ~(uintptr_t)(PH_HUGEPAGE_BYTES - 1);
	if (e > a)
		madvise((void *)a, e - a, MADV_HUGEPAGE);
}

/* Move the level-0 block to fresh memory advised for hugepages (after
 * loadIndex or resizeIndex wrote it on 4 KiB pages). */
static void rehome_level0(ph_index *h)
{
	hnsw_t &a = *h->alg;
	size_t len = a.max_elements_ * a.size_data_per_element_;
	char *p = (char *)malloc(len);
	if (!p)
		throw std::bad_alloc();
	advise_huge(p, len);
	memcpy(p, a.data_level0_memory_, a.cur_element_count * a.size_data_per_element_);
	free(a.data_level0_memory_);
	a.data_level0_memory_ = p;
}

const char *ph_simd(void)
{
#if defined(USE_AVX512)
	if (AVX512Capable())
		return "avx512";
#endif
#if defined(USE_AVX)
	if (AVXCapable())
		return "avx";
#endif
#if defined(USE_SSE)
	return "sse";
#else
	return "scalar";
#endif
}

const char *ph_cxxflags(void)
{
#ifdef POMAI_ANCHOR_CXXFLAGS
	return POMAI_ANCHOR_CXXFLAGS;
#else
	return "(not given by the build)";
#endif
}

/* Run f, mapping C++ exceptions to -errno with a message. */
template <typename F> static int guard(const char *what, char *err, size_t errlen, F f)
{
	try {
		f();
		return 0;
	} catch (const std::bad_alloc &) {
		snprintf(err, errlen, "hnswlib: %s: out of memory", what);
		return -ENOMEM;
	} catch (const std::exception &e) {
		snprintf(err, errlen, "hnswlib: %s: %s", what, e.what());
		return -EINVAL;
	}
}

struct ph_index *ph_new(enum ph_space space, uint32_t dim, uint32_t max_elements, uint32_t m, uint32_t ef_construction,
			uint32_t seed, bool hugepages, char *err, size_t errlen)
{
	ph_index *h = nullptr;
	int rc = guard("new index", err, errlen, [&] {
		std::unique_ptr<ph_index> p(new ph_index(space, dim, hugepages));
		p->alg.reset(new hnsw_t(p->space.get(), max_elements, m, ef_construction, seed));
		if (hugepages) /* not touched yet: every page faults in huge */
			advise_huge(p->alg->data_level0_memory_,
				    max_elements * p->alg->size_data_per_element_);
		h = p.release();
	});
	return rc == 0 ? h : nullptr;
}

void ph_free(struct ph_index *h)
{
	delete h;
}

int ph_add(struct ph_index *h, const float *v, uint64_t label, char *err, size_t errlen)
{
	if (h->alg->cur_element_count >= h->alg->max_elements_ &&
	    h->alg->label_lookup_.find(label) == h->alg->label_lookup_.end()) {
		snprintf(err, errlen, "hnswlib: addPoint: index full (%zu of max_elements %zu)",
			 h->alg->cur_element_count, h->alg->max_elements_);
		return -ENOSPC;
	}
	return guard("addPoint", err, errlen, [&] { h->alg->addPoint(v, label); });
}

int ph_add_replace(struct ph_index *h, const float *v, uint64_t label, char *err, size_t errlen)
{
	hnsw_t &a = *h->alg;
	if (h->vacant.empty())
		return ph_add(h, v, label, err, errlen);
	return guard("addPoint(replace_deleted)", err, errlen, [&] {
		hnswlib::tableint slot = h->vacant.back();
		h->vacant.pop_back();
		hnswlib::labeltype old = a.getExternalLabel(slot);
		a.setExternalLabel(slot, label);
		/* hnswlib 0.7 erases the old label's entry unconditionally; here
		 * only if it still points at this slot, so a deleted label that
		 * was re-added into another slot keeps its entry */
		auto it = a.label_lookup_.find(old);
		if (it != a.label_lookup_.end() && it->second == slot)
			a.label_lookup_.erase(it);
		a.label_lookup_[label] = slot;
		a.unmarkDeletedInternal(slot);
		a.updatePoint(v, slot, 1.0f);
	});
}

int ph_mark_deleted(struct ph_index *h, uint64_t label, char *err, size_t errlen)
{
	return guard("markDelete", err, errlen, [&] {
		auto it = h->alg->label_lookup_.find(label);
		if (it == h->alg->label_lookup_.end())
			throw std::runtime_error("label not found");
		h->alg->markDelete(label);
		h->vacant.push_back(it->second);
	});
}

int ph_resize(struct ph_index *h, uint32_t max_elements, char *err, size_t errlen)
{
	return guard("resizeIndex", err, errlen, [&] {
		h->alg->resizeIndex(max_elements);
		if (h->hugepages)
			rehome_level0(h);
	});
}

void ph_set_ef(struct ph_index *h, uint32_t ef)
{
	h->alg->setEf(ef);
}

uint32_t ph_search(const struct ph_index *h, const float *q, uint32_t k, uint64_t *labels)
{
	auto res = h->alg->searchKnn(q, k); /* max-heap: farthest on top */
	uint32_t n = (uint32_t)res.size();
	for (uint32_t i = n; i-- > 0; res.pop())
		labels[i] = res.top().second;
	return n;
}

uint32_t ph_count(const struct ph_index *h)
{
	return (uint32_t)h->alg->cur_element_count;
}

uint32_t ph_deleted(const struct ph_index *h)
{
	return (uint32_t)h->alg->num_deleted_;
}

uint32_t ph_max_elements(const struct ph_index *h)
{
	return (uint32_t)h->alg->max_elements_;
}

void ph_memory(const struct ph_index *h, struct ph_mem *m)
{
	const hnsw_t &a = *h->alg;
	const uint64_t n = a.cur_element_count, cap = a.max_elements_;
	const uint64_t labels = sizeof(hnswlib::labeltype);
	*m = ph_mem{};
	m->vectors = n * a.data_size_;
	m->level0_links = n * a.size_links_level0_;
	m->labels = n * labels;
	m->level0_spare = (cap - n) * a.size_data_per_element_;
	for (uint64_t i = 0; i < n; i++)
		if (a.element_levels_[i] > 0) /* addPoint asks for one byte more */
			m->upper_links += a.size_links_per_element_ * (uint64_t)a.element_levels_[i] + 1;
	m->per_element = cap * (sizeof(char *) + sizeof(int) + sizeof(std::mutex) +
				sizeof(hnswlib::vl_type));
	m->fixed = (uint64_t)a.link_list_update_locks_.size() * sizeof(std::mutex);
	/* libstdc++: a node is {next, key, value} = 24 bytes (a 32-byte malloc
	 * chunk), and one pointer per bucket */
	m->label_lookup = a.label_lookup_.bucket_count() * sizeof(void *) +
			  a.label_lookup_.size() * 32u;
	m->total = m->vectors + m->level0_links + m->labels + m->level0_spare + m->upper_links +
		   m->per_element + m->fixed + m->label_lookup;
	m->graph = m->level0_links + m->upper_links + cap * sizeof(int);
}

int ph_save(const struct ph_index *h, const char *path, char *err, size_t errlen)
{
	return guard("saveIndex", err, errlen, [&] { h->alg->saveIndex(path); });
}

struct ph_index *ph_load(const char *path, enum ph_space space, uint32_t dim, uint32_t max_elements, bool hugepages,
			 char *err, size_t errlen)
{
	ph_index *h = nullptr;
	int rc = guard("loadIndex", err, errlen, [&] {
		std::unique_ptr<ph_index> p(new ph_index(space, dim, hugepages));
		p->alg.reset(new hnsw_t(p->space.get(), path, false, max_elements));
		/* 0.6.2's loading constructor counts deleted marks into a
		 * num_deleted_ it never zeroed: count them again */
		hnsw_t &a = *p->alg;
		a.num_deleted_ = 0;
		for (size_t i = 0; i < a.cur_element_count; i++)
			a.num_deleted_ += a.isMarkedDeleted((hnswlib::tableint)i);
		if (hugepages)
			rehome_level0(p.get());
		h = p.release();
	});
	return rc == 0 ? h : nullptr;
}
