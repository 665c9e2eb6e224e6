/* SPDX-License-Identifier: MIT
 *
 * knn.h — exact (flat) k-nearest-neighbour search over one collection.
 *
 * Scores are the collection metric's distance (smaller is nearer):
 *   L2      sum (q_i - v_i)^2
 *   IP      1 - dot(q, v)
 *   COSINE  1 - dot(q, v) / (|q| |v|)
 * Results are ordered by (distance, key): ties are broken by the key's bytes
 * (shorter first on a common prefix), so the same data always gives the same
 * answer whatever order it was inserted in.
 */
#ifndef POMAI_ENGINE_KNN_H
#define POMAI_ENGINE_KNN_H

#include <stdint.h>

#include "shard.h"

/* The k nearest members of c to query q (dim floats, aligned scratch allowed).
 * Writes min(k, count) hits to out, sorted; returns how many. k must be >= 1. */
uint32_t pm_knn_flat(const struct pm_shard *sh, const struct pm_collection *c, const float *q,
		     uint32_t k, struct pm_knn_hit *out);

/* Distance between q and a stored vector under a metric (qnorm used by cosine). */
float pm_knn_distance(const struct pm_kernels *kern, uint8_t metric, const float *q, float qnorm,
		      const float *v, float vnorm, uint32_t dim);

/* Compare two hits by (distance, key): <0, 0, >0. */
int pm_knn_hit_cmp(const struct pm_shard *sh, const struct pm_knn_hit *a,
		   const struct pm_knn_hit *b);

#endif
