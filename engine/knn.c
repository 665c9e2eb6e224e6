/* SPDX-License-Identifier: MIT
 *
 * knn.c — exact top-k with a bounded max-heap (the worst kept hit on top).
 *
 * The scan walks the collection's member chunks in order; a candidate is
 * compared with the heap's top by distance alone, and keys are read only on an
 * exact distance tie, so the common path touches nothing but the vectors.
 */
#include <string.h>

#include "common.h"
#include "knn.h"
#include "vector.h"

/* Members ahead of the one being scored whose vectors are prefetched. */
#define PREFETCH_DISTANCE 4u

float pm_knn_distance(const struct pm_kernels *kern, uint8_t metric, const float *q, float qnorm,
		      const float *v, float vnorm, uint32_t dim)
{
	switch (metric) {
	case PM_METRIC_IP:
		return 1.0f - kern->dot(q, v, dim);
	case PM_METRIC_COSINE:
		return 1.0f - kern->dot(q, v, dim) / (qnorm * vnorm);
	default:
		return kern->l2sq(q, v, dim);
	}
}

static int key_cmp(const struct pm_shard *sh, uint32_t a, uint32_t b)
{
	const struct pm_seed *sa = pm_seed_at(&sh->arena, a), *sb = pm_seed_at(&sh->arena, b);
	int c = memcmp(pm_seed_key(&sh->arena, sa), pm_seed_key(&sh->arena, sb),
		       PM_MIN(sa->klen, sb->klen));
	return c ? c : (int)sa->klen - (int)sb->klen;
}

int pm_knn_hit_cmp(const struct pm_shard *sh, const struct pm_knn_hit *a,
		   const struct pm_knn_hit *b)
{
	if (a->dist != b->dist)
		return a->dist < b->dist ? -1 : 1;
	return a->seed == b->seed ? 0 : key_cmp(sh, a->seed, b->seed);
}

/* ---------------------------------------------------------------- heap */

struct heap {
	const struct pm_shard *sh;
	struct pm_knn_hit *h;
	uint32_t n, cap;
};

static void sift_up(struct heap *hp, uint32_t i)
{
	struct pm_knn_hit x = hp->h[i];
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (pm_knn_hit_cmp(hp->sh, &hp->h[p], &x) >= 0)
			break;
		hp->h[i] = hp->h[p];
		i = p;
	}
	hp->h[i] = x;
}

static void sift_down(struct heap *hp, uint32_t i)
{
	struct pm_knn_hit x = hp->h[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= hp->n)
			break;
		if (c + 1 < hp->n && pm_knn_hit_cmp(hp->sh, &hp->h[c + 1], &hp->h[c]) > 0)
			c++;
		if (pm_knn_hit_cmp(hp->sh, &hp->h[c], &x) <= 0)
			break;
		hp->h[i] = hp->h[c];
		i = c;
	}
	hp->h[i] = x;
}

static inline void heap_offer(struct heap *hp, uint32_t seed, float dist)
{
	struct pm_knn_hit x = { .seed = seed, .dist = dist };
	if (hp->n < hp->cap) {
		hp->h[hp->n++] = x;
		sift_up(hp, hp->n - 1);
	} else if (dist < hp->h[0].dist ||
		   (dist == hp->h[0].dist && pm_knn_hit_cmp(hp->sh, &x, &hp->h[0]) < 0)) {
		hp->h[0] = x;
		sift_down(hp, 0);
	}
}

/* Pop everything: the heap array ends up sorted ascending. */
static void heap_sort(struct heap *hp)
{
	uint32_t n = hp->n;
	while (hp->n > 1) {
		struct pm_knn_hit top = hp->h[0];
		hp->h[0] = hp->h[--hp->n];
		sift_down(hp, 0);
		hp->h[hp->n] = top;
	}
	hp->n = n;
}

/* ---------------------------------------------------------------- scan */

uint32_t pm_knn_flat(const struct pm_shard *sh, const struct pm_collection *c, const float *q,
		     uint32_t k, struct pm_knn_hit *out)
{
	PM_ASSERT(k >= 1);
	const uint32_t dim = c->params.dim;
	const uint8_t metric = c->params.metric;
	const float qnorm = metric == PM_METRIC_COSINE ? pm_norm(q, dim) : 0.0f;
	struct heap hp = { .sh = sh, .h = out, .n = 0, .cap = k };
	const uint64_t *dir = c->count ? pm_at(&sh->arena, c->dir_off) : NULL;

	for (uint64_t base = 0; base < c->count; base += PM_MEMBER_CHUNK_ENTRIES) {
		const uint64_t *chunk = pm_at(&sh->arena, dir[base / PM_MEMBER_CHUNK_ENTRIES]);
		uint32_t n = (uint32_t)PM_MIN(c->count - base, PM_MEMBER_CHUNK_ENTRIES);
		for (uint32_t j = 0; j < n; j++) {
			if (j + PREFETCH_DISTANCE < n)
				__builtin_prefetch(pm_at(&sh->arena, chunk[j + PREFETCH_DISTANCE]));
			const struct pm_vec_header *h = pm_at(&sh->arena, chunk[j]);
			float d = pm_knn_distance(sh->kern, metric, q, qnorm, pm_vec_data(h), h->norm, dim);
			heap_offer(&hp, h->seed, d);
		}
	}
	heap_sort(&hp);
	return hp.n;
}
