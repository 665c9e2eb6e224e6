/* SPDX-License-Identifier: MIT
 *
 * test_quant.c — element types (engine/quant.h): encoding and its error
 * bounds per type, every code kernel set the CPU runs against the scalar one,
 * the code distances against f32, and collections of each type in a shard —
 * parameters refused, bytes per vector, recall with and without re-rank,
 * VGET, updates in place, and a snapshot round trip that keeps every stored
 * byte.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "knn.h"
#include "quant.h"
#include "snapshot.h"
#include "vector.h"

#define MIB (UINT64_C(1) << 20)
/* Every n from 1 to this is run through the kernels, then big_sizes[]. */
#define N_SMALL_MAX 300u
static const uint32_t big_sizes[] = { 511, 512, 784, 1023, 1024, 4095, 4096 };
#define BIG_SIZES (sizeof(big_sizes) / sizeof(big_sizes[0]))
/* f16 kernels against the scalar one: float sums in another order. */
#define F16_TOL_REL 1e-5

/* The shard collections: dimension, vectors, queries, k. */
#define DIM 32u
#define NVEC 2000u
#define NQ 50u
#define K 10u

static uint64_t rng = 0x0DD7E5ull;
static struct pm_shard sh;

static uint32_t rnd(uint32_t n)
{
	return (uint32_t)(pm_test_rand(&rng) % n);
}

static float rfloat(void)
{
	return (float)rnd(200001) / 100000.0f - 1.0f; /* -1..1 */
}

/* ---------------------------------------------------------------- encoding */

static float f16_round_trip(float x)
{
	return pm_f32_from_f16(pm_f16_from_f32(x));
}

static void test_f16_encoding(void)
{
	/* every finite half converts to f32 and back to itself */
	for (uint32_t h = 0; h < 0x10000u; h++) {
		if ((h & 0x7C00u) == 0x7C00u)
			continue; /* inf, NaN: never stored (inputs are finite) */
		float f = pm_f32_from_f16((uint16_t)h);
		CU_ASSERT_EQUAL_FATAL(pm_f16_from_f32(f), h);
	}
	CU_ASSERT_EQUAL(pm_f32_from_f16(0x3C00u), 1.0f);
	CU_ASSERT_EQUAL(pm_f32_from_f16(0x0001u), ldexpf(1.0f, -24)); /* smallest subnormal */
	/* ties go to even; beyond the range it saturates, never to infinity */
	CU_ASSERT_EQUAL(pm_f16_from_f32(1.0f + ldexpf(1.0f, -11)), 0x3C00u);
	CU_ASSERT_EQUAL(pm_f16_from_f32(1.0f + 3.0f * ldexpf(1.0f, -11)), 0x3C02u);
	CU_ASSERT_EQUAL(pm_f16_from_f32(1e9f), 0x7BFFu);
	CU_ASSERT_EQUAL(pm_f16_from_f32(-1e9f), 0xFBFFu);
	CU_ASSERT_EQUAL(pm_f16_from_f32(65519.0f), 0x7BFFu);
	CU_ASSERT_EQUAL(pm_f16_from_f32(ldexpf(1.0f, -26)), 0x0000u); /* below half a subnormal */
	CU_ASSERT_EQUAL(pm_f16_from_f32(-ldexpf(3.0f, -25)), 0x8002u); /* 1.5 subnormals: even */
	/* random floats: the nearest half (relative error <= 2^-11 in the normal range) */
	for (int i = 0; i < 100000; i++) {
		float x = rfloat() * ldexpf(1.0f, (int)rnd(30) - 14);
		float y = f16_round_trip(x);
		CU_ASSERT_FATAL(fabsf(x - y) <= ldexpf(fabsf(x), -11) + ldexpf(1.0f, -25));
	}
}

static void test_q8_encoding(void)
{
	static float x[PM_DIM_MAX], y[PM_DIM_MAX];
	static int8_t code[PM_DIM_MAX];
	for (uint32_t dim = 1; dim <= PM_DIM_MAX; dim = dim * 3 + 1) {
		for (uint32_t i = 0; i < dim; i++)
			x[i] = rfloat() * 50.0f;
		float scale, amax = 0.0f;
		pm_quant_encode(PM_DTYPE_Q8, x, dim, (uint8_t *)code, &scale);
		pm_quant_decode(PM_DTYPE_Q8, (uint8_t *)code, scale, 0.0f, dim, y);
		for (uint32_t i = 0; i < dim; i++)
			amax = fmaxf(amax, fabsf(x[i]));
		CU_ASSERT_EQUAL(scale, amax / PM_Q8_CODE_MAX);
		for (uint32_t i = 0; i < dim; i++) {
			CU_ASSERT_FATAL(code[i] >= -PM_Q8_CODE_MAX && code[i] <= PM_Q8_CODE_MAX);
			/* rounding: off by at most half a step (and float slack) */
			CU_ASSERT_FATAL(fabsf(x[i] - y[i]) <= scale * 0.5f * (1.0f + 1e-5f));
		}
	}
	/* the zero vector: scale 0, codes 0, decodes to zeros */
	memset(x, 0, 16 * sizeof(float));
	float scale = 1.0f;
	pm_quant_encode(PM_DTYPE_Q8, x, 16, (uint8_t *)code, &scale);
	CU_ASSERT_EQUAL(scale, 0.0f);
	for (int i = 0; i < 16; i++)
		CU_ASSERT_EQUAL(code[i], 0);
	/* the largest magnitude maps to +-127 exactly */
	x[0] = -3.0f;
	x[1] = 3.0f;
	pm_quant_encode(PM_DTYPE_Q8, x, 16, (uint8_t *)code, &scale);
	CU_ASSERT_EQUAL(code[0], -PM_Q8_CODE_MAX);
	CU_ASSERT_EQUAL(code[1], PM_Q8_CODE_MAX);
}

static void test_bin_encoding(void)
{
	static float x[130], y[130];
	uint64_t words[3];
	float scale;
	for (uint32_t i = 0; i < 130; i++)
		x[i] = i % 3 == 0 ? -1.0f - (float)i : (i % 3 == 1 ? 0.0f : 0.5f);
	pm_quant_encode(PM_DTYPE_BIN, x, 130, (uint8_t *)words, &scale);
	CU_ASSERT_EQUAL(pm_quant_code_bytes(PM_DTYPE_BIN, 130), 24);
	for (uint32_t i = 0; i < 130; i++) /* bit i: x_i > 0 (zero is not) */
		CU_ASSERT_EQUAL((words[i / 64] >> (i % 64)) & 1u, x[i] > 0.0f);
	CU_ASSERT_EQUAL(words[2] >> 2, 0); /* padding bits clear */
	/* decoded: the signs, each of magnitude norm / sqrt(dim) */
	pm_quant_decode(PM_DTYPE_BIN, (uint8_t *)words, 0.0f, 13.0f, 130, y);
	double n2 = 0;
	for (uint32_t i = 0; i < 130; i++) {
		CU_ASSERT_EQUAL(y[i] > 0.0f, x[i] > 0.0f);
		n2 += (double)y[i] * y[i];
	}
	CU_ASSERT_DOUBLE_EQUAL(sqrt(n2), 13.0, 1e-4);
}

static void test_payload_sizes(void)
{
	struct pm_collection_params p = { .dim = 784 };
	CU_ASSERT_EQUAL(pm_quant_payload_bytes(&p), 3136);
	p.dtype = PM_DTYPE_Q8;
	CU_ASSERT_EQUAL(pm_quant_payload_bytes(&p), 784);
	p.dtype = PM_DTYPE_F16;
	CU_ASSERT_EQUAL(pm_quant_payload_bytes(&p), 1568);
	p.dtype = PM_DTYPE_BIN;
	CU_ASSERT_EQUAL(pm_quant_payload_bytes(&p), 104); /* 13 words */
	CU_ASSERT_EQUAL(pm_quant_kept_bytes(&p), 0);
	p.rerank = 1; /* codes padded to 64; the f32 after the links */
	CU_ASSERT_EQUAL(pm_quant_payload_bytes(&p), 128);
	CU_ASSERT_EQUAL(pm_quant_kept_bytes(&p), 3136);
	CU_ASSERT_EQUAL(pm_quant_stored_bytes(&p), 128 + 3136);
	p.dtype = PM_DTYPE_Q8;
	p.dim = 5;
	p.rerank = 0;
	CU_ASSERT_EQUAL(pm_quant_payload_bytes(&p), 8); /* codes padded to 8 */
}

/* ---------------------------------------------------------------- kernels */

static uint32_t qsets(const struct pm_qkernels *out[PM_ISA_COUNT])
{
	uint32_t n = 0;
	for (int isa = 0; isa < PM_ISA_COUNT; isa++)
		if ((out[n] = pm_qkernels_for((enum pm_isa)isa)) != NULL)
			n++;
	return n;
}

static void test_dispatch(void)
{
	const struct pm_qkernels *k = pm_qkernels_for(PM_ISA_SCALAR);
	CU_ASSERT_FATAL(k != NULL);
	CU_ASSERT_STRING_EQUAL(k->name, "scalar");
	const struct pm_qkernels *sets[PM_ISA_COUNT];
	uint32_t n = qsets(sets);
	CU_ASSERT_PTR_EQUAL(pm_qkernels_best(), sets[n - 1]); /* the highest supported */
#if defined(__x86_64__)
	__builtin_cpu_init();
	bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		      __builtin_cpu_supports("avx512vnni") &&
		      __builtin_cpu_supports("avx512vpopcntdq");
	CU_ASSERT_EQUAL(pm_qkernels_for(PM_ISA_AVX512) != NULL, avx512);
	printf("\n  code kernels: %s (of %u sets)\n", pm_qkernels_best()->name, n);
#endif
}

/* One length: random codes (the extremes included) at an odd offset, every
 * set against the scalar one. */
static void kernels_at(uint32_t n, const struct pm_qkernels *const *sets, uint32_t nsets)
{
	static _Alignas(64) int8_t qa[PM_DIM_MAX + 64], qb[PM_DIM_MAX + 64];
	static _Alignas(64) uint64_t ba[PM_DIM_MAX / 64 + 8], bb[PM_DIM_MAX / 64 + 8];
	static _Alignas(64) uint16_t ha[PM_DIM_MAX + 32], hb[PM_DIM_MAX + 32];
	const uint32_t off = n % 7; /* no alignment assumed */
	int8_t *a = qa + off, *b = qb + off;
	for (uint32_t i = 0; i < n; i++) {
		a[i] = (int8_t)((int)rnd(255) - PM_Q8_CODE_MAX);
		b[i] = (int8_t)(i % 5 == 0 ? (i % 2 ? PM_Q8_CODE_MAX : -PM_Q8_CODE_MAX)
					   : (int)rnd(255) - PM_Q8_CODE_MAX);
		ha[off + i] = pm_f16_from_f32(rfloat() * 4.0f);
		hb[off + i] = pm_f16_from_f32(rfloat() * 4.0f);
	}
	uint32_t words = (n + 63) / 64;
	for (uint32_t i = 0; i < words; i++) {
		ba[i] = pm_test_rand(&rng);
		bb[i] = pm_test_rand(&rng);
	}
	const struct pm_qkernels *s = sets[0];
	int32_t dot = s->dot_q8(a, b, n);
	uint32_t ham = s->hamming(ba, bb, words);
	float l2h = s->l2sq_f16(ha + off, hb + off, n), doth = s->dot_f16(ha + off, hb + off, n);
	int64_t want = 0;
	for (uint32_t i = 0; i < n; i++)
		want += (int64_t)a[i] * b[i];
	CU_ASSERT_EQUAL_FATAL(dot, want);
	for (uint32_t k = 1; k < nsets; k++) {
		CU_ASSERT_EQUAL_FATAL(sets[k]->dot_q8(a, b, n), dot);
		CU_ASSERT_EQUAL_FATAL(sets[k]->hamming(ba, bb, words), ham);
		float l2 = sets[k]->l2sq_f16(ha + off, hb + off, n);
		float d = sets[k]->dot_f16(ha + off, hb + off, n);
		CU_ASSERT_FATAL(fabsf(l2 - l2h) <= F16_TOL_REL * (fabsf(l2h) + 16.0f * n));
		CU_ASSERT_FATAL(fabsf(d - doth) <= F16_TOL_REL * (fabsf(doth) + 16.0f * n));
	}
}

static void test_kernels_vs_scalar(void)
{
	const struct pm_qkernels *sets[PM_ISA_COUNT];
	uint32_t nsets = qsets(sets);
	for (uint32_t n = 1; n <= N_SMALL_MAX; n++)
		kernels_at(n, sets, nsets);
	for (size_t i = 0; i < BIG_SIZES; i++)
		kernels_at(big_sizes[i], sets, nsets);
	/* the largest magnitudes everywhere: no saturation in any set */
	static int8_t a[PM_DIM_MAX], b[PM_DIM_MAX];
	memset(a, PM_Q8_CODE_MAX, sizeof a);
	memset(b, -PM_Q8_CODE_MAX, sizeof b);
	for (uint32_t k = 0; k < nsets; k++) {
		CU_ASSERT_EQUAL(sets[k]->dot_q8(a, b, PM_DIM_MAX), -127 * 127 * (int32_t)PM_DIM_MAX);
		CU_ASSERT_EQUAL(sets[k]->dot_q8(a, a, PM_DIM_MAX), 127 * 127 * (int32_t)PM_DIM_MAX);
		/* 0x7F ^ 0x81: 7 bits differ in every byte */
		CU_ASSERT_EQUAL(sets[k]->hamming((const uint64_t *)a, (const uint64_t *)b, 64), 7 * 8 * 64);
	}
}

/* Code distances against the f32 ones they stand for. */
static void test_code_distances(void)
{
	enum { D = 256 };
	static float x[D], y[D];
	static _Alignas(64) uint8_t cx[PM_QUANT_CODE_BYTES_MAX], cy[PM_QUANT_CODE_BYTES_MAX];
	const struct pm_qkernels *k = pm_qkernels_best();
	for (int t = 0; t < 200; t++) {
		for (uint32_t i = 0; i < D; i++) {
			x[i] = rfloat();
			y[i] = rfloat();
		}
		struct pm_collection_params p = { .dim = D, .dtype = PM_DTYPE_Q8 };
		for (uint8_t m = 0; m < PM_METRIC_COUNT; m++) {
			p.metric = m;
			struct pm_qref a, b;
			float exact = pm_knn_distance(pm_kernels_best(), m, x, pm_norm(x, D), y,
						      pm_norm(y, D), D);
			p.dtype = PM_DTYPE_Q8;
			pm_quant_query(&p, x, cx, &a);
			pm_quant_query(&p, y, cy, &b);
			float q8 = pm_quant_distance(k, PM_DTYPE_Q8, m, D, &a, &b);
			/* dot error <= sum |x| |dy| + |y| |dx| + |dx||dy| with |d| <= scale / 2 */
			float bound = (m == PM_METRIC_L2 ? 2.0f : 1.0f) *
				      (0.5f * a.scale * 128.0f + 0.5f * b.scale * 128.0f +
				       0.25f * a.scale * b.scale * D) /
				      (m == PM_METRIC_COSINE ? a.norm * b.norm : 1.0f);
			CU_ASSERT_FATAL(fabsf(q8 - exact) <= bound);
			p.dtype = PM_DTYPE_F16;
			pm_quant_query(&p, x, cx, &a);
			pm_quant_query(&p, y, cy, &b);
			float f16 = pm_quant_distance(k, PM_DTYPE_F16, m, D, &a, &b);
			CU_ASSERT_FATAL(fabsf(f16 - exact) <= 2e-3f * (fabsf(exact) + 1.0f));
			p.dtype = PM_DTYPE_BIN;
			pm_quant_query(&p, x, cx, &a);
			pm_quant_query(&p, y, cy, &b);
			uint32_t h = 0;
			for (uint32_t i = 0; i < D; i++)
				h += (x[i] > 0.0f) != (y[i] > 0.0f);
			float cos = 1.0f - 2.0f * (float)h / D, bin = pm_quant_distance(k, PM_DTYPE_BIN, m, D, &a, &b);
			float want = m == PM_METRIC_COSINE ? 1.0f - cos
				   : m == PM_METRIC_IP ? 1.0f - cos * a.norm * b.norm
						       : fmaxf(a.norm * a.norm + b.norm * b.norm -
								       2.0f * cos * a.norm * b.norm, 0.0f);
			CU_ASSERT_DOUBLE_EQUAL_FATAL(bin, want, 1e-4 * (fabsf(want) + 1.0f));
		}
	}
}

/* ---------------------------------------------------------------- collections */

static enum pm_status ccreate(const char *name, uint32_t dim, uint8_t index, uint8_t dtype,
			      uint8_t rerank, uint32_t rerank_k)
{
	struct pm_request r = { .op = PM_OP_CCREATE, .collection = fx_s(name),
				.params = { .dim = dim, .index = index, .dtype = dtype,
					    .rerank = rerank, .rerank_k = rerank_k } };
	struct pm_reply rep;
	pm_shard_apply(&sh, &r, 0, &rep);
	return rep.status;
}

static void test_params_refused(void)
{
	fx_shard(&sh, 16 * MIB, 256);
	CU_ASSERT_EQUAL(ccreate("x", 8, PM_INDEX_FLAT, PM_DTYPE_COUNT, 0, 0), PM_E_DTYPE);
	CU_ASSERT_EQUAL(ccreate("x", 8, PM_INDEX_FLAT, 0xFF, 0, 0), PM_E_DTYPE);
	CU_ASSERT_EQUAL(ccreate("x", 8, PM_INDEX_FLAT, PM_DTYPE_F32, 1, 0), PM_E_PARAM);
	CU_ASSERT_EQUAL(ccreate("x", 8, PM_INDEX_FLAT, PM_DTYPE_Q8, 2, 0), PM_E_PARAM);
	CU_ASSERT_EQUAL(ccreate("x", 8, PM_INDEX_FLAT, PM_DTYPE_Q8, 0, 10), PM_E_PARAM);
	CU_ASSERT_EQUAL(ccreate("x", 8, PM_INDEX_FLAT, PM_DTYPE_Q8, 1, PM_RERANK_K_MAX + 1),
			PM_E_PARAM);
	CU_ASSERT_EQUAL(sh.ncolls, 0);
	CU_ASSERT_EQUAL(ccreate("x", 8, PM_INDEX_FLAT, PM_DTYPE_Q8, 1, PM_RERANK_K_MAX), PM_OK);
	/* idempotent with the same parameters; the default count is filled in */
	CU_ASSERT_EQUAL(ccreate("y", 8, PM_INDEX_FLAT, PM_DTYPE_BIN, 1, 0), PM_OK);
	CU_ASSERT_EQUAL(ccreate("y", 8, PM_INDEX_FLAT, PM_DTYPE_BIN, 1, PM_RERANK_K_DEFAULT), PM_OK);
	CU_ASSERT_EQUAL(ccreate("y", 8, PM_INDEX_FLAT, PM_DTYPE_Q8, 1, 0), PM_E_EXISTS);
	uint32_t n = pm_coll_list(&sh, sh.cinfo);
	CU_ASSERT_EQUAL(n, 2);
	for (uint32_t i = 0; i < n; i++)
		if (sh.cinfo[i].name.ptr[0] == 'y') {
			CU_ASSERT_EQUAL(sh.cinfo[i].params.dtype, PM_DTYPE_BIN);
			CU_ASSERT_EQUAL(sh.cinfo[i].params.rerank, 1);
			CU_ASSERT_EQUAL(sh.cinfo[i].params.rerank_k, PM_RERANK_K_DEFAULT);
		}
	pm_shard_destroy(&sh);
}

static const struct pm_collection *coll(const char *name)
{
	return pm_coll_find(&sh, (const uint8_t *)name, (uint32_t)strlen(name));
}

static void test_bytes_per_vector(void)
{
	fx_shard(&sh, 64 * MIB, 4096);
	static const char *const names[] = { "f32", "f16", "q8", "bin", "q8r" };
	static const uint8_t types[] = { PM_DTYPE_F32, PM_DTYPE_F16, PM_DTYPE_Q8, PM_DTYPE_BIN,
					 PM_DTYPE_Q8 };
	static float v[784];
	for (int c = 0; c < 5; c++) {
		CU_ASSERT_EQUAL_FATAL(ccreate(names[c], 784, PM_INDEX_HNSW, types[c], c == 4, 0), PM_OK);
		for (int i = 0; i < 100; i++) {
			for (uint32_t j = 0; j < 784; j++)
				v[j] = rfloat();
			char key[16]; /* a key of another collection would move there */
			int kl = snprintf(key, sizeof key, "%s/%d", names[c], i);
			CU_ASSERT_EQUAL_FATAL(fx_vadd(&sh, fx_b(key, (size_t)kl), names[c], v, 784, 0, 0), PM_OK);
		}
	}
	double f32 = (double)coll("f32")->bytes, q8 = (double)coll("q8")->bytes;
	printf("\n  bytes per 784-d HNSW vector: f32 %.0f f16 %.0f q8 %.0f bin %.0f q8+f32 %.0f\n",
	       f32 / 100, (double)coll("f16")->bytes / 100, q8 / 100,
	       (double)coll("bin")->bytes / 100, (double)coll("q8r")->bytes / 100);
	CU_ASSERT(q8 <= 0.35 * f32); /* the bound, without the f32 copy */
	CU_ASSERT(coll("bin")->bytes < coll("q8")->bytes);
	CU_ASSERT(coll("f16")->bytes < coll("f32")->bytes);
	CU_ASSERT(coll("q8r")->bytes > coll("f32")->bytes); /* codes and the f32 */
	pm_shard_destroy(&sh);
}

static float data[NVEC][DIM], queries[NQ][DIM];

/* The true k nearest (L2, f32, ties by index) of query q. */
static void truth(const float *q, uint32_t *out)
{
	static double d[NVEC];
	for (uint32_t i = 0; i < NVEC; i++) {
		d[i] = 0;
		for (uint32_t j = 0; j < DIM; j++)
			d[i] += ((double)q[j] - data[i][j]) * ((double)q[j] - data[i][j]);
	}
	for (uint32_t r = 0; r < K; r++) {
		uint32_t best = UINT32_MAX;
		for (uint32_t i = 0; i < NVEC; i++)
			if (d[i] >= 0 && (best == UINT32_MAX || d[i] < d[best]))
				best = i;
		out[r] = best;
		d[best] = -1;
	}
}

/* Mean recall@K of collection name (keys "v<i>") over the queries. */
static double recall(const char *name, bool exact)
{
	uint32_t hits = 0, want[K];
	for (uint32_t q = 0; q < NQ; q++) {
		struct pm_request r = { .op = PM_OP_VQUERY, .vec = (const uint8_t *)queries[q],
					.dim = DIM, .k = K, .exact = exact, .collection = fx_s(name) };
		struct pm_reply rep;
		pm_shard_apply(&sh, &r, 0, &rep);
		CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
		CU_ASSERT_EQUAL_FATAL(rep.nhits, K);
		for (uint32_t i = 1; i < rep.nhits; i++)
			CU_ASSERT_FATAL(rep.hits[i - 1].dist <= rep.hits[i].dist);
		truth(queries[q], want);
		for (uint32_t i = 0; i < rep.nhits; i++) {
			uint32_t id = (uint32_t)atoi((const char *)rep.keys[i].ptr + 1);
			for (uint32_t j = 0; j < K; j++)
				hits += want[j] == id;
		}
	}
	return (double)hits / (NQ * K);
}

static void load_data(void)
{
	for (uint32_t i = 0; i < NVEC; i++)
		for (uint32_t j = 0; j < DIM; j++)
			data[i][j] = rfloat();
	for (uint32_t q = 0; q < NQ; q++)
		for (uint32_t j = 0; j < DIM; j++)
			queries[q][j] = rfloat();
}

static void fill(const char *name)
{
	for (uint32_t i = 0; i < NVEC; i++) {
		char key[16];
		int kl = snprintf(key, sizeof key, "v%u", i);
		CU_ASSERT_EQUAL_FATAL(fx_vadd(&sh, fx_b(key, (size_t)kl), name, data[i], DIM, 0, 0), PM_OK);
	}
}

static const struct { const char *name; uint8_t dtype, rerank; double min_recall; } kinds[] = {
	{ "f32", PM_DTYPE_F32, 0, 0.95 },   { "f16", PM_DTYPE_F16, 0, 0.95 },
	{ "q8", PM_DTYPE_Q8, 0, 0.85 },     { "q8r", PM_DTYPE_Q8, 1, 0.95 },
	{ "bin", PM_DTYPE_BIN, 0, 0.10 },   { "binr", PM_DTYPE_BIN, 1, 0.50 },
	{ "f16r", PM_DTYPE_F16, 1, 0.95 },
};
#define KINDS (sizeof(kinds) / sizeof(kinds[0]))

static void test_recall(void)
{
	fx_shard(&sh, 128 * MIB, 32768);
	load_data();
	for (size_t c = 0; c < KINDS; c++) {
		CU_ASSERT_EQUAL_FATAL(ccreate(kinds[c].name, DIM, PM_INDEX_HNSW, kinds[c].dtype,
					      kinds[c].rerank, 0), PM_OK);
		fill(kinds[c].name);
		double graph = recall(kinds[c].name, false), flat = recall(kinds[c].name, true);
		printf("\n  %-5s recall@10 graph %.3f exact scan %.3f", kinds[c].name, graph, flat);
		CU_ASSERT(graph >= kinds[c].min_recall);
		CU_ASSERT(flat >= kinds[c].min_recall);
		if (kinds[c].dtype == PM_DTYPE_F32)
			CU_ASSERT_EQUAL(flat, 1.0);
	}
	printf("\n");
	/* re-rank answers with exact f32 distances: those of the f32 collection */
	struct pm_request r = { .op = PM_OP_VQUERY, .vec = (const uint8_t *)queries[0], .dim = DIM,
				.k = K, .exact = true, .collection = fx_s("f32") };
	struct pm_reply rep;
	float want[K];
	pm_shard_apply(&sh, &r, 0, &rep);
	for (uint32_t i = 0; i < K; i++)
		want[i] = rep.hits[i].dist;
	r.collection = fx_s("q8r");
	pm_shard_apply(&sh, &r, 0, &rep);
	for (uint32_t i = 0; i < K; i++)
		CU_ASSERT_EQUAL(rep.hits[i].dist, want[i]);
	pm_shard_destroy(&sh);
}

/* VGET: f32 with the collection's type; updates in place re-quantise. */
static void test_vget_and_update(void)
{
	fx_shard(&sh, 32 * MIB, 1024);
	float v[DIM], w[DIM];
	for (uint32_t j = 0; j < DIM; j++)
		v[j] = rfloat();
	for (size_t c = 0; c < KINDS; c++) {
		CU_ASSERT_EQUAL_FATAL(ccreate(kinds[c].name, DIM, PM_INDEX_FLAT, kinds[c].dtype,
					      kinds[c].rerank, 0), PM_OK);
		CU_ASSERT_EQUAL_FATAL(fx_vadd(&sh, fx_s(kinds[c].name), kinds[c].name, v, DIM, 0, 0), PM_OK);
		struct pm_request r = { .op = PM_OP_VGET, .key = fx_s(kinds[c].name) };
		struct pm_reply rep;
		pm_shard_apply(&sh, &r, 0, &rep);
		CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
		CU_ASSERT_EQUAL(rep.dtype, kinds[c].dtype);
		CU_ASSERT_EQUAL_FATAL(rep.value.len, 4 * DIM);
		memcpy(w, rep.value.ptr, sizeof w);
		float amax = 0.0f, n = pm_norm(v, DIM);
		for (uint32_t j = 0; j < DIM; j++)
			amax = fmaxf(amax, fabsf(v[j]));
		for (uint32_t j = 0; j < DIM; j++) {
			float err = fabsf(w[j] - v[j]);
			bool ok;
			if (kinds[c].rerank || kinds[c].dtype == PM_DTYPE_F32)
				ok = err == 0.0f; /* the f32 kept */
			else if (kinds[c].dtype == PM_DTYPE_F16)
				ok = err <= ldexpf(fabsf(v[j]), -11) + 1e-7f;
			else if (kinds[c].dtype == PM_DTYPE_Q8)
				ok = err <= amax / 127.0f * 0.5f * 1.0001f;
			else
				ok = w[j] > 0.0f ? v[j] > 0.0f : v[j] <= 0.0f;
			CU_ASSERT(ok);
		}
		if (kinds[c].dtype == PM_DTYPE_BIN && !kinds[c].rerank)
			CU_ASSERT_DOUBLE_EQUAL(pm_norm(w, DIM), n, 1e-4);
		/* in place: the new vector's codes, not the old ones */
		for (uint32_t j = 0; j < DIM; j++)
			w[j] = -v[j];
		CU_ASSERT_EQUAL(fx_vadd(&sh, fx_s(kinds[c].name), kinds[c].name, w, DIM, 0, 0), PM_OK);
		pm_shard_apply(&sh, &r, 0, &rep);
		for (uint32_t j = 0; j < DIM; j++)
			CU_ASSERT(v[j] == 0.0f || (((const float *)rep.value.ptr)[j] > 0.0f) == (v[j] < 0.0f));
	}
	pm_shard_destroy(&sh);
}

/* ---------------------------------------------------------------- snapshots */

static void snapshot_round_trip(struct pm_shard *a, struct pm_shard *b)
{
	static struct pm_snap_writer w;
	static struct pm_snap_loader loader;
	size_t cap = 64 * MIB, len = 0;
	uint8_t *img = malloc(cap);
	CU_ASSERT_FATAL(img != NULL);
	pm_snap_writer_init(&w, a, 0, 1, 0);
	for (;;) {
		CU_ASSERT_FATAL(len + PM_SNAP_FILL_BYTES_MIN <= cap);
		size_t n = pm_snap_fill(&w, a, 0, img + len, PM_SNAP_FILL_BYTES_MIN, 1000);
		if (n == 0 && pm_snap_done(&w))
			break;
		len += n;
	}
	struct pm_snap_info info;
	char why[200] = "";
	CU_ASSERT_EQUAL_FATAL(pm_snap_load(&loader, b, img, len, 0, &info, why, sizeof why), PM_OK);
	free(img);
}

/* Every stored byte, norm and scale of collection name is the same in a and b. */
static void expect_same_store(struct pm_shard *a, struct pm_shard *b, const char *name)
{
	const struct pm_collection *ca = pm_coll_find(a, (const uint8_t *)name, (uint32_t)strlen(name));
	const struct pm_collection *cb = pm_coll_find(b, (const uint8_t *)name, (uint32_t)strlen(name));
	CU_ASSERT_FATAL(ca && cb);
	CU_ASSERT(memcmp(&ca->params, &cb->params, sizeof ca->params) == 0);
	CU_ASSERT_EQUAL_FATAL(ca->count, cb->count);
	for (uint32_t i = 0; i < NVEC; i++) {
		char key[16];
		int kl = snprintf(key, sizeof key, "v%u", i);
		const struct pm_vec_header *ha, *hb;
		struct pm_bytes cn;
		uint64_t h = pm_hash((const uint8_t *)key, (uint32_t)kl);
		CU_ASSERT_EQUAL_FATAL(pm_vec_get(a, (const uint8_t *)key, (uint32_t)kl, h, 0, &ha, &cn), PM_OK);
		CU_ASSERT_EQUAL_FATAL(pm_vec_get(b, (const uint8_t *)key, (uint32_t)kl, h, 0, &hb, &cn), PM_OK);
		CU_ASSERT_EQUAL_FATAL(ha->payload_len, hb->payload_len);
		CU_ASSERT_FATAL(memcmp(ha + 1, hb + 1, ha->payload_len) == 0);
		if (pm_vec_reranks(ca))
			CU_ASSERT_FATAL(memcmp(pm_vec_kept(ca, ha), pm_vec_kept(cb, hb),
					       pm_quant_kept_bytes(&ca->params)) == 0);
		CU_ASSERT_EQUAL(ha->norm, hb->norm);
		CU_ASSERT_EQUAL(ha->qscale, hb->qscale);
		CU_ASSERT_EQUAL(hb->dtype, ca->params.dtype);
	}
}

static void test_snapshot_round_trip(void)
{
	static struct pm_shard b;
	struct pm_shard *a = &sh; /* ccreate and fill work on sh */
	fx_shard(&sh, 128 * MIB, 32768);
	fx_shard(&b, 128 * MIB, 32768);
	load_data();
	for (size_t c = 0; c < KINDS; c++)
		for (uint8_t index = 0; index < PM_INDEX_COUNT; index++) {
			char name[16];
			snprintf(name, sizeof name, "%s%c", kinds[c].name, index ? 'h' : 'f');
			CU_ASSERT_EQUAL_FATAL(ccreate(name, DIM, index, kinds[c].dtype, kinds[c].rerank, 0),
					      PM_OK);
			/* keys are per shard: each collection gets its own prefix */
			for (uint32_t i = 0; i < NVEC / 4; i++) { /* above PM_HNSW_FLAT_BELOW */
				char key[24];
				int kl = snprintf(key, sizeof key, "%s/%u", name, i);
				CU_ASSERT_EQUAL_FATAL(fx_vadd(&sh, fx_b(key, (size_t)kl), name, data[i],
							      DIM, 0, 0), PM_OK);
			}
		}
	/* the last collection holds the keys expect_same_store reads */
	CU_ASSERT_EQUAL_FATAL(ccreate("all", DIM, PM_INDEX_HNSW, PM_DTYPE_Q8, 1, 0), PM_OK);
	fill("all");
	snapshot_round_trip(a, &b);
	expect_same_store(a, &b, "all");
	/* and every other collection answers the same queries the same way */
	for (size_t c = 0; c < KINDS; c++)
		for (uint8_t index = 0; index < PM_INDEX_COUNT; index++) {
			char name[16];
			snprintf(name, sizeof name, "%s%c", kinds[c].name, index ? 'h' : 'f');
			for (uint32_t q = 0; q < 5; q++) {
				struct pm_request r = { .op = PM_OP_VQUERY,
							.vec = (const uint8_t *)queries[q], .dim = DIM,
							.k = K, .collection = fx_s(name) };
				struct pm_reply ra, rb;
				static struct pm_knn_hit ha[K];
				pm_shard_apply(a, &r, 0, &ra);
				memcpy(ha, ra.hits, sizeof ha);
				pm_shard_apply(&b, &r, 0, &rb);
				CU_ASSERT_EQUAL_FATAL(ra.nhits, rb.nhits);
				for (uint32_t i = 0; i < ra.nhits; i++)
					CU_ASSERT_EQUAL(ha[i].dist, rb.hits[i].dist);
			}
		}
	pm_shard_destroy(a);
	pm_shard_destroy(&b);
}

static CU_TestInfo tests[] = {
	{ "f16 encoding", test_f16_encoding },
	{ "q8 encoding and its error bound", test_q8_encoding },
	{ "bin encoding", test_bin_encoding },
	{ "payload sizes", test_payload_sizes },
	{ "kernel dispatch", test_dispatch },
	{ "kernels vs scalar", test_kernels_vs_scalar },
	{ "code distances vs f32", test_code_distances },
	{ "bad dtype and rerank refused", test_params_refused },
	{ "bytes per vector", test_bytes_per_vector },
	{ "recall per type, with and without re-rank", test_recall },
	{ "VGET and updates in place", test_vget_and_update },
	{ "snapshot round trip keeps every code", test_snapshot_round_trip },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	return pm_cu_run("quant", tests);
}
