/* SPDX-License-Identifier: MIT
 *
 * quant.h — per-collection element types: how a vector is stored, how it is
 * read back, and the distance kernels over stored codes.
 *
 * Every vector arrives as f32 and is quantised by the shard when it is stored;
 * quantisation is a pure function of the f32 components, so replaying a WAL
 * of f32 VADD records rebuilds the same codes.
 *
 *   F32  dim x f32, as sent.
 *   F16  dim x IEEE half (round to nearest even; beyond the half range it
 *        saturates to +-65504, never to infinity).
 *   Q8   dim x int8, symmetric: scale = max|x_i| / 127, code_i =
 *        round(x_i / scale) in -127..127 (never -128: the AVX-512 VNNI
 *        kernel negates codes). scale goes in the vector header; the header's
 *        norm stays the f32 norm of the vector as sent (as Redis vector sets'
 *        Q8 keeps it), so L2 and cosine use the exact norms and only the dot
 *        product is estimated.
 *   BIN  ceil(dim / 64) u64 words of sign bits (bit i = x_i > 0), plus the
 *        f32 norm. Distances come from the Hamming distance h of the two bit
 *        strings read as a cosine estimate: cos ~ 1 - 2 h / dim (the dot of
 *        the +-1 vectors over dim), so
 *          COSINE  2 h / dim
 *          IP      1 - |a| |b| (1 - 2 h / dim)
 *          L2      |a|^2 + |b|^2 - 2 |a| |b| (1 - 2 h / dim)   (at least 0)
 *        Sign bits only carry direction relative to the origin: data that is
 *        not centred (all components >= 0, as pixel data) loses most of it.
 *
 * Distances between two codes (the query is quantised like a stored vector,
 * so both sides are codes):
 *   F16  the f32 formulas over the halves (knn.h);
 *   Q8   dot = sa sb sum(a_i b_i) (an exact int32 sum), then
 *          L2 |a|^2 + |b|^2 - 2 dot (at least 0), IP 1 - dot,
 *          COSINE 1 - dot / (|a| |b|);
 *   BIN  as above.
 *
 * Re-rank: a collection created with rerank on keeps the f32 vector too; a
 * search ranks by codes, then computes exact f32 distances for its best
 * rerank_k candidates and answers from those (vector.h: pm_vec_rerank). A
 * vector blob (vector.h) is
 *
 *   [ header | codes, padded to 8 bytes (64 with re-rank) | level-0 links |
 *     kept f32 (re-rank) | long key ]
 *
 * so a graph search reads the header, the codes and the links as one run and
 * never the f32 it does not need; the re-rank reads the f32 of its few
 * candidates.
 *
 * Kernels: a scalar set (the reference, on every build), an AVX2 set (AVX2,
 * FMA, F16C, POPCNT) and an AVX-512 set (AVX-512F/BW, VNNI for the int8 dot,
 * VPOPCNTDQ for the Hamming distance), chosen at run time like distance.h's.
 * The int8 dot and the Hamming distance are exact integers, so every set
 * gives the same answer; the f16 kernels differ only by summation order.
 */
#ifndef POMAI_ENGINE_QUANT_H
#define POMAI_ENGINE_QUANT_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "distance.h"
#include "pm_limits.h"
#include "request.h"

/* Q8 codes lie in -PM_Q8_CODE_MAX..PM_Q8_CODE_MAX (symmetric; -128 unused). */
#define PM_Q8_CODE_MAX 127
/* Candidates re-ranked when a collection turns rerank on without a count: a
 * few times the usual k = 10, a small fraction of the distances a search at
 * the default ef computes. */
#define PM_RERANK_K_DEFAULT 64u
/* The most candidates a re-rank takes: they are held in the reply's hit array
 * (PM_K_MAX) and the beam (PM_EF_MAX >= PM_K_MAX). */
#define PM_RERANK_K_MAX PM_K_MAX
/* The largest code of one vector (f16 at PM_DIM_MAX): a query's codes are
 * built in a buffer of this size. */
#define PM_QUANT_CODE_BYTES_MAX (PM_DIM_MAX * 2u)
/* Bytes the codes are padded to (u64 words of bin, u32 links after them),
 * and with re-rank (the links and the kept f32 after them stay on 64-byte
 * boundaries when 2 M is a multiple of 16, as with the default M). */
#define PM_QUANT_CODE_ALIGN_BYTES 8u
#define PM_QUANT_RERANK_ALIGN_BYTES 64u

/* Bytes of the codes of one vector (unpadded). */
uint32_t pm_quant_code_bytes(uint8_t dtype, uint32_t dim);
/* A vector's payload (the header's payload_len: the f32, or the padded
 * codes), the kept f32 after its links (re-rank), and both (a snapshot's
 * copy of a vector: payload, then kept f32). */
uint32_t pm_quant_payload_bytes(const struct pm_collection_params *p);
uint32_t pm_quant_kept_bytes(const struct pm_collection_params *p);
uint32_t pm_quant_stored_bytes(const struct pm_collection_params *p);
/* Whether a collection's vectors carry an f32 copy (rerank) or are f32. */
static inline bool pm_quant_has_f32(const struct pm_collection_params *p)
{
	return p->dtype == PM_DTYPE_F32 || p->rerank;
}

/* Quantise x (dim finite floats) into code (pm_quant_code_bytes, padding
 * left to the caller); *scale is Q8's scale (0 for the others). */
void pm_quant_encode(uint8_t dtype, const float *x, uint32_t dim, uint8_t *code, float *scale);
/* The f32 the codes stand for (Q8: code x scale; BIN: +-norm / sqrt(dim), so
 * the result has the vector's norm and signs). */
void pm_quant_decode(uint8_t dtype, const uint8_t *code, float scale, float norm, uint32_t dim,
		     float *out);

uint16_t pm_f16_from_f32(float x);
float pm_f32_from_f16(uint16_t h);

/* ---------------------------------------------------------------- kernels */

typedef int32_t (*pm_dot_q8_fn)(const int8_t *a, const int8_t *b, uint32_t n);
typedef uint32_t (*pm_hamming_fn)(const uint64_t *a, const uint64_t *b, uint32_t words);
typedef float (*pm_dist_f16_fn)(const uint16_t *a, const uint16_t *b, uint32_t n);

struct pm_qkernels {
	const char *name;        /* "scalar", "avx2", "avx512" */
	enum pm_isa isa;
	pm_dot_q8_fn dot_q8;     /* sum a_i b_i, codes in -127..127 */
	pm_hamming_fn hamming;   /* popcount(a xor b) over whole words */
	pm_dist_f16_fn l2sq_f16; /* sum (a_i - b_i)^2 */
	pm_dist_f16_fn dot_f16;  /* sum a_i b_i */
};

/* The best set this CPU runs (chosen once), and the set of one ISA or NULL
 * when the CPU or the build lacks it (never NULL for PM_ISA_SCALAR). */
const struct pm_qkernels *pm_qkernels_best(void);
const struct pm_qkernels *pm_qkernels_for(enum pm_isa isa);

/* One side of a code distance: its codes and the header fields they need. */
struct pm_qref {
	const void *code;
	float norm;  /* L2 norm of the f32 vector */
	float scale; /* Q8 */
};

/* A query as codes of p's element type, in buf (PM_QUANT_CODE_BYTES_MAX,
 * 64-byte aligned), with its norm and scale. */
void pm_quant_query(const struct pm_collection_params *p, const float *q, uint8_t *buf,
		    struct pm_qref *out);

/* Distance (the metric's, smaller is nearer) between two vectors of a
 * non-f32 element type; inline, as the graph's and the scan's inner loops
 * call it once per vector. */
/* A metric's distance from the dot product and the two norms. */
static inline float pm_quant_from_dot(uint8_t metric, float dot, float na, float nb)
{
	switch (metric) {
	case PM_METRIC_IP:
		return 1.0f - dot;
	case PM_METRIC_COSINE:
		return 1.0f - dot / (na * nb);
	default:
		return fmaxf(na * na + nb * nb - 2.0f * dot, 0.0f);
	}
}

static inline float pm_quant_distance(const struct pm_qkernels *k, uint8_t dtype,
				      uint8_t metric, uint32_t dim, const struct pm_qref *a,
				      const struct pm_qref *b)
{
	switch (dtype) {
	case PM_DTYPE_Q8: {
		int32_t d = k->dot_q8(a->code, b->code, dim);
		return pm_quant_from_dot(metric, a->scale * b->scale * (float)d, a->norm, b->norm);
	}
	case PM_DTYPE_BIN: {
		uint32_t h = k->hamming(a->code, b->code, (dim + 63u) / 64u);
		float cos = 1.0f - 2.0f * (float)h / (float)dim;
		if (metric == PM_METRIC_COSINE)
			return 1.0f - cos;
		return pm_quant_from_dot(metric, cos * a->norm * b->norm, a->norm, b->norm);
	}
	case PM_DTYPE_F16:
		if (metric == PM_METRIC_L2)
			return k->l2sq_f16(a->code, b->code, dim);
		return pm_quant_from_dot(metric, k->dot_f16(a->code, b->code, dim), a->norm, b->norm);
	default: /* f32 is measured by distance.h's kernels, never here */
		return NAN;
	}
}

#endif
