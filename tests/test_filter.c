/* SPDX-License-Identifier: MIT
 *
 * test_filter.c — attribute records (attr.h) and filter expressions
 * (filter.h) on one shard: every operator of the grammar on records that
 * pass and fail it, precedence and parentheses, every bound broken (the
 * expression's → E_FILTER, the record's → E_ATTR, with nothing else
 * changed), VSETATTR and VGET, the statistics kept through insert / update /
 * delete, filtered results against an exact filtered reference on a flat
 * collection, HNSW filtered recall at 10 %, 1 % and 0.1 % selectivity (with
 * a floor that searching unfiltered and filtering afterwards misses), and
 * attributes through a WAL record and its replay.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "filter.h"
#include "fixture.h"
#include "knn.h"
#include "vector.h"
#include "wal.h"

#define MIB (UINT64_C(1) << 20)

static struct pm_shard sh;
static struct pm_filter_prog prog;

/* A record: "label" tag, "price" numeric, "n" numeric. */
static uint32_t rec3(uint8_t *buf, const char *label, double price, double n)
{
	struct pm_attr_builder b;
	pm_attr_build_begin(&b, buf, PM_ATTR_BYTES_MAX);
	pm_attr_build_tag(&b, "label", (const uint8_t *)label, (uint32_t)strlen(label));
	pm_attr_build_num(&b, "price", price);
	pm_attr_build_num(&b, "n", n);
	return pm_attr_build_end(&b);
}

static enum pm_status compile(const char *s)
{
	return pm_filter_compile(&prog, (const uint8_t *)s, (uint32_t)strlen(s));
}

/* Does the expression accept the record? (It must compile.) */
static bool accepts(const char *expr, const uint8_t *rec)
{
	CU_ASSERT_EQUAL_FATAL(compile(expr), PM_OK);
	return pm_filter_match(&prog, rec);
}

static void test_operators(void)
{
	uint8_t r[PM_ATTR_BYTES_MAX];
	CU_ASSERT(rec3(r, "shirt", 12.5, 3) > 0);
	CU_ASSERT_EQUAL(pm_attr_check(r, rec3(r, "shirt", 12.5, 3)), PM_OK);
	CU_ASSERT(accepts("price = 12.5", r));
	CU_ASSERT(!accepts("price = 12", r));
	CU_ASSERT(accepts("price == 12.5", r));
	CU_ASSERT(accepts("price != 12", r));
	CU_ASSERT(!accepts("price != 12.5", r));
	CU_ASSERT(accepts("price < 13", r));
	CU_ASSERT(!accepts("price < 12.5", r));
	CU_ASSERT(accepts("price <= 12.5", r));
	CU_ASSERT(!accepts("price <= 12.4", r));
	CU_ASSERT(accepts("price > 12", r));
	CU_ASSERT(!accepts("price > 12.5", r));
	CU_ASSERT(accepts("price >= 12.5", r));
	CU_ASSERT(!accepts("price >= 1.3e1", r));
	CU_ASSERT(accepts("n > -1e3", r));
	CU_ASSERT(accepts("label = 'shirt'", r));
	CU_ASSERT(accepts("label = \"shirt\"", r));
	CU_ASSERT(!accepts("label = 'shir'", r));
	CU_ASSERT(accepts("label != 'hat'", r));
	CU_ASSERT(!accepts("label != 'shirt'", r));
	CU_ASSERT(accepts("label in ('hat', 'shirt')", r));
	CU_ASSERT(!accepts("label in ('hat', 'shoe')", r));
	CU_ASSERT(accepts("label = 'shirt' and price < 20", r));
	CU_ASSERT(!accepts("label = 'shirt' AND price > 20", r));
	CU_ASSERT(accepts("label = 'hat' or price < 20", r));
	CU_ASSERT(!accepts("label = 'hat' or price > 20", r));
	CU_ASSERT(!accepts("not label = 'shirt'", r));
	CU_ASSERT(accepts("NOT (label = 'hat')", r));
	/* and binds tighter than or; parentheses change it */
	CU_ASSERT(accepts("label = 'shirt' or price > 100 and n = 0", r));
	CU_ASSERT(!accepts("(label = 'shirt' or price > 100) and n = 0", r));
	CU_ASSERT(accepts("not not (n = 3)", r));
	/* a missing field or one of the other type compares false */
	CU_ASSERT(!accepts("size = 3", r));
	CU_ASSERT(accepts("not size = 3", r));
	CU_ASSERT(!accepts("label < 3", r));
	CU_ASSERT(!accepts("price = 'shirt'", r));
	CU_ASSERT(!pm_filter_match(&prog, NULL));
	CU_ASSERT(accepts("not price = 'x'", NULL));
	/* escapes in strings */
	uint8_t q[PM_ATTR_BYTES_MAX];
	struct pm_attr_builder b;
	pm_attr_build_begin(&b, q, sizeof q);
	pm_attr_build_tag(&b, "t", (const uint8_t *)"it's", 4);
	CU_ASSERT(pm_attr_build_end(&b) > 0);
	CU_ASSERT(accepts("t = 'it\\'s'", q));
}

static void test_malformed(void)
{
	static const char *const bad[] = {
		"", "   ", "price", "price <", "price < ", "< 3", "price < 3 and", "and price < 3",
		"(price < 3", "price < 3)", "price < 'x' ", "label in 'a'", "label in ()",
		"label in ('a',)", "label in ('a' 'b')", "label in (3)", "price <> 3", "price ! 3",
		"price = 3x", "price = 1e", "price = 1.", "price = .5", "price = 1e999",
		"label = 'open", "label = 'x\\", "price < 3 price < 4", "not", "()", "3 = price",
		"price = 3 # x", "label = shirt", "and = 3", "pri$ce = 3",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CU_ASSERT_EQUAL(compile(bad[i]), PM_E_FILTER);
		if (compile(bad[i]) != PM_E_FILTER)
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
	}
}

static void test_bounds(void)
{
	static char s[PM_FILTER_BYTES_MAX + 64];
	/* text: exactly at the bound compiles, one past is refused */
	memset(s, ' ', sizeof s);
	memcpy(s, "a = 1", 5);
	CU_ASSERT_EQUAL(pm_filter_compile(&prog, (const uint8_t *)s, PM_FILTER_BYTES_MAX), PM_OK);
	CU_ASSERT_EQUAL(pm_filter_compile(&prog, (const uint8_t *)s, PM_FILTER_BYTES_MAX + 1),
			PM_E_FILTER);
	/* instructions: n comparisons and n - 1 ands */
	size_t n = 0;
	for (uint32_t i = 0; i < PM_FILTER_INSNS_MAX / 2; i++)
		n += (size_t)sprintf(s + n, "%sa = %u", i ? " and " : "", i);
	CU_ASSERT_EQUAL(compile(s), PM_OK); /* 2 x 32 - 1 = 63 */
	n += (size_t)sprintf(s + n, " and a = 99");
	CU_ASSERT_EQUAL(compile(s), PM_E_FILTER); /* 65 */
	/* depth */
	n = 0;
	for (uint32_t i = 0; i < PM_FILTER_DEPTH_MAX - 1; i++)
		s[n++] = '(';
	n += (size_t)sprintf(s + n, "a = 1");
	for (uint32_t i = 0; i < PM_FILTER_DEPTH_MAX - 1; i++)
		s[n++] = ')';
	s[n] = 0;
	CU_ASSERT_EQUAL(compile(s), PM_OK);
	memmove(s + 1, s, n + 1);
	s[0] = '(';
	strcat(s, ")");
	CU_ASSERT_EQUAL(compile(s), PM_E_FILTER);
	n = 0;
	for (uint32_t i = 0; i < PM_FILTER_DEPTH_MAX; i++)
		n += (size_t)sprintf(s + n, "not ");
	sprintf(s + n, "a = 1");
	CU_ASSERT_EQUAL(compile(s), PM_E_FILTER);
	/* distinct fields */
	n = 0;
	for (uint32_t i = 0; i < PM_FILTER_FIELDS_MAX; i++)
		n += (size_t)sprintf(s + n, "%sf%u = 1", i ? " or " : "", i);
	CU_ASSERT_EQUAL(compile(s), PM_OK);
	sprintf(s + n, " or g = 1");
	CU_ASSERT_EQUAL(compile(s), PM_E_FILTER);
	/* an in list */
	n = (size_t)sprintf(s, "t in (");
	for (uint32_t i = 0; i < PM_FILTER_IN_MAX; i++)
		n += (size_t)sprintf(s + n, "%s'%u'", i ? "," : "", i);
	sprintf(s + n, ")");
	CU_ASSERT_EQUAL(compile(s), PM_OK);
	sprintf(s + n, ",'x')");
	CU_ASSERT_EQUAL(compile(s), PM_E_FILTER);
	/* a name and a string over their bounds */
	memset(s, 'a', PM_ATTR_NAME_BYTES_MAX + 1);
	strcpy(s + PM_ATTR_NAME_BYTES_MAX + 1, " = 1");
	CU_ASSERT_EQUAL(compile(s), PM_E_FILTER);
	strcpy(s + PM_ATTR_NAME_BYTES_MAX, " = 1");
	CU_ASSERT_EQUAL(compile(s), PM_OK);
	n = (size_t)sprintf(s, "t = '");
	memset(s + n, 'x', PM_ATTR_TAG_BYTES_MAX + 1);
	strcpy(s + n + PM_ATTR_TAG_BYTES_MAX + 1, "'");
	CU_ASSERT_EQUAL(compile(s), PM_E_FILTER);
	/* all strings together: 24 strings of 64 bytes exceed the pool */
	n = 0;
	for (uint32_t i = 0; i < 24; i++) {
		n += (size_t)sprintf(s + n, "%st = '", i ? " or " : "");
		if (n + 80 > sizeof s)
			break;
		memset(s + n, 'a' + (char)i, PM_ATTR_TAG_BYTES_MAX);
		n += PM_ATTR_TAG_BYTES_MAX;
		s[n++] = '\'';
	}
	CU_ASSERT(n > PM_FILTER_BYTES_MAX); /* the text bound says no as well */
	CU_ASSERT_EQUAL(pm_filter_compile(&prog, (const uint8_t *)s, (uint32_t)n), PM_E_FILTER);
}

/* ---------------------------------------------------------------- records */

static void test_record_bounds(void)
{
	uint8_t r[PM_ATTR_BYTES_MAX + 64];
	struct pm_attr_builder b;
	char name[PM_ATTR_NAME_BYTES_MAX + 2];
	/* fields */
	pm_attr_build_begin(&b, r, sizeof r);
	for (uint32_t i = 0; i <= PM_ATTR_FIELDS_MAX; i++) {
		sprintf(name, "f%u", i);
		pm_attr_build_num(&b, name, i);
		uint32_t len = b.len;
		CU_ASSERT_EQUAL(pm_attr_check(r, len), i < PM_ATTR_FIELDS_MAX ? PM_OK : PM_E_ATTR);
	}
	/* a name */
	memset(name, 'a', sizeof name);
	name[PM_ATTR_NAME_BYTES_MAX] = 0;
	pm_attr_build_begin(&b, r, sizeof r);
	pm_attr_build_num(&b, name, 1);
	CU_ASSERT_EQUAL(pm_attr_check(r, pm_attr_build_end(&b)), PM_OK);
	name[PM_ATTR_NAME_BYTES_MAX] = 'a';
	name[PM_ATTR_NAME_BYTES_MAX + 1] = 0;
	pm_attr_build_begin(&b, r, sizeof r);
	pm_attr_build_num(&b, name, 1);
	CU_ASSERT_EQUAL(pm_attr_check(r, pm_attr_build_end(&b)), PM_E_ATTR);
	/* a tag */
	uint8_t tag[PM_ATTR_TAG_BYTES_MAX + 1];
	memset(tag, 'x', sizeof tag);
	pm_attr_build_begin(&b, r, sizeof r);
	pm_attr_build_tag(&b, "t", tag, PM_ATTR_TAG_BYTES_MAX);
	CU_ASSERT_EQUAL(pm_attr_check(r, pm_attr_build_end(&b)), PM_OK);
	pm_attr_build_begin(&b, r, sizeof r);
	pm_attr_build_tag(&b, "t", tag, PM_ATTR_TAG_BYTES_MAX + 1);
	CU_ASSERT_EQUAL(pm_attr_check(r, pm_attr_build_end(&b)), PM_E_ATTR);
	/* total bytes: 8 tags of 64 bytes (8 x 68 = 544 > 512) */
	pm_attr_build_begin(&b, r, sizeof r);
	for (uint32_t i = 0; i < 8; i++) {
		sprintf(name, "t%u", i);
		pm_attr_build_tag(&b, name, tag, PM_ATTR_TAG_BYTES_MAX);
	}
	CU_ASSERT(b.len > PM_ATTR_BYTES_MAX);
	CU_ASSERT_EQUAL(pm_attr_check(r, b.len), PM_E_ATTR);
	/* a name twice, a bad name, a NaN, a truncated record, a trailing byte */
	pm_attr_build_begin(&b, r, sizeof r);
	pm_attr_build_num(&b, "a", 1);
	pm_attr_build_num(&b, "a", 2);
	CU_ASSERT_EQUAL(pm_attr_check(r, pm_attr_build_end(&b)), PM_E_ATTR);
	pm_attr_build_begin(&b, r, sizeof r);
	pm_attr_build_num(&b, "1a", 1);
	CU_ASSERT_EQUAL(pm_attr_check(r, pm_attr_build_end(&b)), PM_E_ATTR);
	pm_attr_build_begin(&b, r, sizeof r);
	pm_attr_build_num(&b, "a", NAN);
	CU_ASSERT_EQUAL(pm_attr_check(r, pm_attr_build_end(&b)), PM_E_ATTR);
	pm_attr_build_begin(&b, r, sizeof r);
	pm_attr_build_num(&b, "a", 1);
	uint32_t len = pm_attr_build_end(&b);
	CU_ASSERT_EQUAL(pm_attr_check(r, len - 1), PM_E_ATTR);
	CU_ASSERT_EQUAL(pm_attr_check(r, len + 1), PM_E_ATTR);
	r[1] = 9; /* an unknown type */
	CU_ASSERT_EQUAL(pm_attr_check(r, len), PM_E_ATTR);
	CU_ASSERT_EQUAL(pm_attr_check(r, 0), PM_E_ATTR);
	uint8_t empty = 0;
	CU_ASSERT_EQUAL(pm_attr_check(&empty, 1), PM_OK);
}

/* ---------------------------------------------------------------- on a shard */

static enum pm_status vadd_attr(const char *key, const char *coll, const float *v, uint32_t dim,
				const uint8_t *rec, uint32_t len)
{
	struct pm_request r = { .op = PM_OP_VADD, .key = fx_s(key), .vec = (const uint8_t *)v,
				.dim = dim, .collection = coll ? fx_s(coll) : fx_b(NULL, 0),
				.attr = fx_b(rec, len), .has_attr = rec != NULL };
	struct pm_reply rep;
	pm_shard_apply(&sh, &r, 0, &rep);
	return rep.status;
}

static enum pm_status setattr(const char *key, const uint8_t *rec, uint32_t len)
{
	struct pm_request r = { .op = PM_OP_VSETATTR, .key = fx_s(key), .attr = fx_b(rec, len) };
	struct pm_reply rep;
	pm_shard_apply(&sh, &r, 0, &rep);
	return rep.status;
}

static enum pm_status fquery(const char *coll, const float *q, uint32_t dim, uint32_t k,
			     uint32_t ef, const char *filter, struct pm_reply *rep)
{
	struct pm_request r = { .op = PM_OP_VQUERY, .vec = (const uint8_t *)q, .dim = dim, .k = k,
				.ef = ef, .collection = coll ? fx_s(coll) : fx_b(NULL, 0),
				.filter = filter ? fx_s(filter) : fx_b(NULL, 0) };
	pm_shard_apply(&sh, &r, 0, rep);
	return rep->status;
}

static void test_shard_attrs(void)
{
	fx_shard(&sh, 16 * MIB, 1024);
	float v[4] = { 1, 2, 3, 4 };
	uint8_t r[PM_ATTR_BYTES_MAX + 64];
	uint32_t len = rec3(r, "shirt", 12.5, 1);
	CU_ASSERT_EQUAL(vadd_attr("a", NULL, v, 4, r, len), PM_OK);
	/* VGET returns the record as given */
	struct pm_request g = { .op = PM_OP_VGET, .key = fx_s("a") };
	struct pm_reply rep;
	pm_shard_apply(&sh, &g, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	CU_ASSERT_EQUAL(rep.attr.len, len);
	CU_ASSERT(rep.attr.ptr && !memcmp(rep.attr.ptr, r, len));
	/* a VADD with a bad record stores nothing: the key stays absent */
	uint8_t bad[PM_ATTR_BYTES_MAX];
	memcpy(bad, r, len);
	bad[2] = 0; /* name length 0 */
	CU_ASSERT_EQUAL(vadd_attr("b", NULL, v, 4, bad, len), PM_E_ATTR);
	struct pm_request gb = { .op = PM_OP_VGET, .key = fx_s("b") };
	pm_shard_apply(&sh, &gb, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_NOT_FOUND);
	/* and a VADD with one over its bounds neither changes a's vector or record */
	float w[4] = { 9, 9, 9, 9 };
	CU_ASSERT_EQUAL(vadd_attr("a", NULL, w, 4, bad, len), PM_E_ATTR);
	pm_shard_apply(&sh, &g, 0, &rep);
	CU_ASSERT(!memcmp(rep.value.ptr, v, sizeof v));
	CU_ASSERT_EQUAL(rep.attr.len, len);
	/* a VADD without a record keeps the vector's */
	CU_ASSERT_EQUAL(vadd_attr("a", NULL, w, 4, NULL, 0), PM_OK);
	pm_shard_apply(&sh, &g, 0, &rep);
	CU_ASSERT_EQUAL(rep.attr.len, len);
	/* VSETATTR replaces it; a bad one is refused and changes nothing */
	uint32_t len2 = rec3(r, "hat", 3, 2);
	CU_ASSERT_EQUAL(setattr("a", r, len2), PM_OK);
	CU_ASSERT_EQUAL(setattr("a", bad, len), PM_E_ATTR);
	CU_ASSERT_EQUAL(setattr("nope", r, len2), PM_NOT_FOUND);
	pm_shard_apply(&sh, &g, 0, &rep);
	CU_ASSERT_EQUAL(rep.attr.len, len2);
	CU_ASSERT(!memcmp(rep.attr.ptr, r, len2));
	CU_ASSERT_EQUAL(fquery(NULL, v, 4, 5, 0, "label = 'hat'", &rep), PM_OK);
	CU_ASSERT_EQUAL(rep.nhits, 1);
	CU_ASSERT_EQUAL(fquery(NULL, v, 4, 5, 0, "label = 'shirt'", &rep), PM_OK);
	CU_ASSERT_EQUAL(rep.nhits, 0);
	/* a malformed filter: E_FILTER, the shard unchanged */
	CU_ASSERT_EQUAL(fquery(NULL, v, 4, 5, 0, "label = ", &rep), PM_E_FILTER);
	CU_ASSERT_EQUAL(rep.nhits, 0);
	CU_ASSERT_EQUAL(sh.stats.vectors, 1);
	/* the empty record removes it */
	uint8_t empty = 0;
	CU_ASSERT_EQUAL(setattr("a", &empty, 1), PM_OK);
	pm_shard_apply(&sh, &g, 0, &rep);
	CU_ASSERT_EQUAL(rep.attr.len, 0);
	CU_ASSERT_EQUAL(fquery(NULL, v, 4, 5, 0, "not label = 'x'", &rep), PM_OK);
	CU_ASSERT_EQUAL(rep.nhits, 1);
	/* a KV key is the wrong type */
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("kv"), fx_s("x"), 0, 0), PM_OK);
	CU_ASSERT_EQUAL(setattr("kv", r, len2), PM_E_WRONGTYPE);
	pm_shard_destroy(&sh);
}

/* Statistics follow insert, update and delete exactly for tags. */
static void test_stats(void)
{
	fx_shard(&sh, 16 * MIB, 4096);
	struct pm_request c = { .op = PM_OP_CCREATE, .collection = fx_s("c"),
				.params = { .dim = 2 } };
	struct pm_reply rep;
	pm_shard_apply(&sh, &c, 0, &rep);
	uint8_t r[PM_ATTR_BYTES_MAX];
	char key[16];
	for (int i = 0; i < 100; i++) {
		float v[2] = { (float)i, 1 };
		sprintf(key, "k%d", i);
		CU_ASSERT_EQUAL(vadd_attr(key, "c", v, 2, r, rec3(r, i < 30 ? "x" : "y", i, i)), PM_OK);
	}
	struct pm_collection *cl = pm_coll_find(&sh, (const uint8_t *)"c", 1);
	const struct pm_attr_stats *st = pm_coll_attr_stats(&sh, cl);
	CU_ASSERT_FATAL(st != NULL);
	uint64_t lh = pm_attr_hash_name((const uint8_t *)"label", 5);
	CU_ASSERT_EQUAL(pm_attr_stats_tag(st, pm_attr_hash_tag(lh, (const uint8_t *)"x", 1)), 30);
	CU_ASSERT_EQUAL(compile("label = 'x'"), PM_OK);
	CU_ASSERT(fabs(pm_filter_selectivity(&prog, st, cl->count) - 0.30) < 1e-9);
	CU_ASSERT_EQUAL(compile("price < 50"), PM_OK);
	double s = pm_filter_selectivity(&prog, st, cl->count);
	CU_ASSERT(s > 0.40 && s < 0.60);
	CU_ASSERT_EQUAL(compile("price >= 1000"), PM_OK);
	CU_ASSERT(pm_filter_selectivity(&prog, st, cl->count) < 0.05);
	/* update: 10 x -> y; delete: 5 y */
	for (int i = 0; i < 10; i++) {
		sprintf(key, "k%d", i);
		CU_ASSERT_EQUAL(setattr(key, r, rec3(r, "y", i, i)), PM_OK);
	}
	for (int i = 90; i < 100; i++) {
		sprintf(key, "k%d", i);
		struct pm_request d = { .op = PM_OP_VDEL, .key = fx_s(key) };
		pm_shard_apply(&sh, &d, 0, &rep);
		CU_ASSERT_EQUAL(rep.removed, 1);
	}
	CU_ASSERT_EQUAL(pm_attr_stats_tag(st, pm_attr_hash_tag(lh, (const uint8_t *)"x", 1)), 20);
	CU_ASSERT_EQUAL(pm_attr_stats_tag(st, pm_attr_hash_tag(lh, (const uint8_t *)"y", 1)), 70);
	const struct pm_attr_hist *hs = pm_attr_stats_num(st, pm_attr_hash_name((const uint8_t *)"price", 5));
	CU_ASSERT_FATAL(hs != NULL);
	CU_ASSERT_EQUAL(hs->total, 90);
	pm_shard_destroy(&sh);
}

/* ---------------------------------------------------------------- results */

struct ref {
	uint32_t i;
	float d;
};

static int ref_cmp(const void *pa, const void *pb)
{
	const struct ref *a = pa, *b = pb;
	return a->d < b->d ? -1 : a->d > b->d ? 1 : (a->i > b->i) - (a->i < b->i);
}

enum { DIM = 16 };

static void rand_vec(float *v, uint64_t *rng)
{
	for (uint32_t i = 0; i < DIM; i++)
		v[i] = (float)(pm_test_rand(rng) % 20001) / 10000.0f - 1.0f;
}

/* The record of vector i: cat = i % 10, sub = i % 100, id = i. */
static uint32_t rec_of(uint32_t i, uint8_t *buf)
{
	char cat[8], sub[8];
	sprintf(cat, "c%u", i % 10);
	sprintf(sub, "s%u", i % 100);
	struct pm_attr_builder b;
	pm_attr_build_begin(&b, buf, PM_ATTR_BYTES_MAX);
	pm_attr_build_tag(&b, "cat", (const uint8_t *)cat, (uint32_t)strlen(cat));
	pm_attr_build_tag(&b, "sub", (const uint8_t *)sub, (uint32_t)strlen(sub));
	pm_attr_build_num(&b, "id", i);
	return pm_attr_build_end(&b);
}

static void load(const char *coll, uint8_t index, uint32_t n, float (*base)[DIM], uint64_t seed)
{
	struct pm_request c = { .op = PM_OP_CCREATE, .collection = fx_s(coll),
				.params = { .dim = DIM, .index = index, .ef_construction = 100 } };
	struct pm_reply rep;
	pm_shard_apply(&sh, &c, 0, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
	uint64_t rng = seed;
	uint8_t r[PM_ATTR_BYTES_MAX];
	char key[16];
	for (uint32_t i = 0; i < n; i++) {
		rand_vec(base[i], &rng);
		sprintf(key, "v%u", i);
		CU_ASSERT_EQUAL_FATAL(vadd_attr(key, coll, base[i], DIM, r, rec_of(i, r)), PM_OK);
	}
}

/* The exact filtered top k of q over base[0, n): its size. */
static uint32_t reference(float (*base)[DIM], uint32_t n, const float *q, const char *filter,
			  uint32_t k, struct ref *out)
{
	static struct ref all[20000];
	uint8_t r[PM_ATTR_BYTES_MAX];
	CU_ASSERT_EQUAL_FATAL(compile(filter), PM_OK);
	uint32_t m = 0;
	for (uint32_t i = 0; i < n; i++) {
		rec_of(i, r);
		if (!pm_filter_match(&prog, r))
			continue;
		float d = 0;
		for (uint32_t j = 0; j < DIM; j++)
			d += (q[j] - base[i][j]) * (q[j] - base[i][j]);
		all[m++] = (struct ref){ i, d };
	}
	qsort(all, m, sizeof all[0], ref_cmp);
	m = m < k ? m : k;
	memcpy(out, all, m * sizeof out[0]);
	return m;
}

static uint32_t key_index(struct pm_bytes key)
{
	char buf[16] = { 0 };
	memcpy(buf, key.ptr + 1, key.len - 1);
	return (uint32_t)atoi(buf);
}

/* Flat: the filtered results are the exact filtered reference, key for key. */
static void test_flat_exact(void)
{
	enum { N = 3000, K = 10, Q = 8 };
	static float base[N][DIM];
	static const char *const filters[] = {
		"cat = 'c3'", "sub in ('s1', 's2', 's77')", "id >= 100 and id < 400",
		"not cat = 'c0' and (id < 50 or sub = 's5')", "cat != 'c1' or id = 7", "id = 2999",
		"sub = 'nothing'",
	};
	fx_shard(&sh, 64 * MIB, 8192);
	load("f", PM_INDEX_FLAT, N, base, 11);
	uint64_t rng = 99;
	for (size_t f = 0; f < sizeof filters / sizeof filters[0]; f++)
		for (int t = 0; t < Q; t++) {
			float q[DIM];
			rand_vec(q, &rng);
			struct ref want[K];
			uint32_t n = reference(base, N, q, filters[f], K, want);
			struct pm_reply rep;
			CU_ASSERT_EQUAL_FATAL(fquery("f", q, DIM, K, 0, filters[f], &rep), PM_OK);
			CU_ASSERT_EQUAL(rep.nhits, n);
			for (uint32_t i = 0; i < n && i < rep.nhits; i++) {
				CU_ASSERT_EQUAL(key_index(rep.keys[i]), want[i].i);
				CU_ASSERT_DOUBLE_EQUAL(rep.hits[i].dist, want[i].d, 1e-4);
			}
		}
	pm_shard_destroy(&sh);
}

/* Recall@k of reply rep against want[0, n). */
static double recall(const struct pm_reply *rep, const struct ref *want, uint32_t n)
{
	if (n == 0)
		return 1.0;
	uint32_t found = 0;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < rep->nhits; j++)
			if (key_index(rep->keys[j]) == want[i].i) {
				found++;
				break;
			}
	return (double)found / n;
}

/* HNSW: filtered recall at 10 %, 1 % and 0.1 % selectivity stays high, where
 * searching unfiltered for k x 10 and filtering after loses most at 1 % and
 * below; every query returns k hits when k pass. */
static void test_hnsw_recall(void)
{
	enum { N = 10000, K = 10, Q = 40, OVERSAMPLE = 10 };
	static float base[N][DIM];
	static const struct {
		const char *filter;
		double floor;     /* our recall must reach this */
		double post_max;  /* post-filtering must stay below this */
	} cases[] = {
		{ "cat = 'c3'", 0.90, 2.0 },                 /* 10 %: post-filtering may do well */
		{ "sub = 's42'", 0.90, 0.50 },               /* 1 % */
		{ "cat = 'c7' and id >= 5000 and id < 5100", 0.90, 0.50 }, /* 0.1 % */
	};
	uint64_t graph10 = 0;
	fx_shard(&sh, 128 * MIB, 16384);
	load("h", PM_INDEX_HNSW, N, base, 5);
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		uint64_t rng = 1234;
		double ours = 0, post = 0;
		for (int t = 0; t < Q; t++) {
			float q[DIM];
			rand_vec(q, &rng);
			struct ref want[K];
			uint32_t n = reference(base, N, q, cases[c].filter, K, want);
			CU_ASSERT_EQUAL(n, K);
			struct pm_reply rep;
			uint64_t g0 = sh.stats.knn_graph;
			CU_ASSERT_EQUAL_FATAL(fquery("h", q, DIM, K, 64, cases[c].filter, &rep), PM_OK);
			graph10 += c == 0 ? sh.stats.knn_graph - g0 : 0;
			CU_ASSERT_EQUAL(rep.nhits, K);
			ours += recall(&rep, want, n);
			/* post-filtering: k x OVERSAMPLE unfiltered, then the filter */
			CU_ASSERT_EQUAL_FATAL(fquery("h", q, DIM, K * OVERSAMPLE, K * OVERSAMPLE, NULL, &rep),
					      PM_OK);
			struct pm_reply kept = rep;
			static struct pm_bytes keys[K * OVERSAMPLE];
			uint8_t r[PM_ATTR_BYTES_MAX];
			CU_ASSERT_EQUAL_FATAL(compile(cases[c].filter), PM_OK);
			kept.nhits = 0;
			for (uint32_t j = 0; j < rep.nhits && kept.nhits < K; j++) {
				rec_of(key_index(rep.keys[j]), r);
				if (pm_filter_match(&prog, r))
					keys[kept.nhits++] = rep.keys[j];
			}
			kept.keys = keys;
			post += recall(&kept, want, n);
		}
		ours /= Q;
		post /= Q;
		printf("\n  %-45s recall %.3f, post-filtered %.3f ", cases[c].filter, ours, post);
		CU_ASSERT(ours >= cases[c].floor);
		CU_ASSERT(post < cases[c].post_max);
	}
	/* the graph answered most 10 % queries (below PM_FILTER_SCAN_SELECTIVITY
	 * a scan does; a graph search cut short falls back to one) */
	CU_ASSERT(graph10 >= Q * 3 / 4);
	pm_shard_destroy(&sh);
}

/* ---------------------------------------------------------------- WAL */

static void test_wal(void)
{
	uint8_t r[PM_ATTR_BYTES_MAX], buf[4096];
	uint32_t len = rec3(r, "shirt", 12.5, 7);
	float v[4] = { 1, 2, 3, 4 };
	struct pm_request add = { .op = PM_OP_VADD, .key = fx_s("a"), .vec = (const uint8_t *)v,
				  .dim = 4, .attr = fx_b(r, len), .has_attr = true };
	size_t n = pm_wal_encode(&add, 0, 1, buf, sizeof buf);
	CU_ASSERT_FATAL(n > 0);
	uint8_t r2[PM_ATTR_BYTES_MAX];
	uint32_t len2 = rec3(r2, "hat", 1, 1);
	struct pm_request set = { .op = PM_OP_VSETATTR, .key = fx_s("a"), .attr = fx_b(r2, len2) };
	CU_ASSERT(pm_wal_logs(PM_OP_VSETATTR));
	size_t n2 = pm_wal_encode(&set, 0, 2, buf + n, sizeof buf - n);
	CU_ASSERT_FATAL(n2 > 0);
	/* replay both into a fresh shard: the record is the VSETATTR's */
	fx_shard(&sh, 16 * MIB, 1024);
	struct pm_wal_record rec;
	size_t used;
	CU_ASSERT_EQUAL_FATAL(pm_wal_scan_next(buf, n + n2, 1, &rec, &used), PM_WAL_RECORD);
	CU_ASSERT_EQUAL(rec.type, PM_WAL_VADD);
	CU_ASSERT_EQUAL(rec.attr.len, len);
	struct pm_request req;
	struct pm_reply rep;
	bool expired;
	pm_wal_to_request(&rec, 0, &req, &expired);
	CU_ASSERT(req.has_attr);
	pm_shard_apply(&sh, &req, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	struct pm_request g = { .op = PM_OP_VGET, .key = fx_s("a") };
	pm_shard_apply(&sh, &g, 0, &rep);
	CU_ASSERT(rep.attr.len == len && !memcmp(rep.attr.ptr, r, len));
	CU_ASSERT_EQUAL_FATAL(pm_wal_scan_next(buf + used, n + n2 - used, 2, &rec, &used),
			      PM_WAL_RECORD);
	CU_ASSERT_EQUAL(rec.type, PM_WAL_VSETATTR);
	pm_wal_to_request(&rec, 0, &req, &expired);
	CU_ASSERT_EQUAL(req.op, PM_OP_VSETATTR);
	pm_shard_apply(&sh, &req, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	pm_shard_apply(&sh, &g, 0, &rep);
	CU_ASSERT(rep.attr.len == len2 && !memcmp(rep.attr.ptr, r2, len2));
	/* a VADD without a record logs none, and replays without one */
	add.has_attr = false;
	n = pm_wal_encode(&add, 0, 3, buf, sizeof buf);
	CU_ASSERT_EQUAL_FATAL(pm_wal_scan_next(buf, n, 3, &rec, &used), PM_WAL_RECORD);
	CU_ASSERT_EQUAL(rec.attr.len, 0);
	pm_wal_to_request(&rec, 0, &req, &expired);
	CU_ASSERT(!req.has_attr);
	/* a record over its bound is not logged */
	set.attr.len = PM_ATTR_BYTES_MAX + 1;
	CU_ASSERT_EQUAL(pm_wal_encode(&set, 0, 4, buf, sizeof buf), 0);
	pm_shard_destroy(&sh);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "every operator", test_operators },
		{ "malformed expressions", test_malformed },
		{ "expression bounds", test_bounds },
		{ "record bounds", test_record_bounds },
		{ "attributes on a shard", test_shard_attrs },
		{ "statistics", test_stats },
		{ "flat: exact filtered results", test_flat_exact },
		{ "hnsw: filtered recall", test_hnsw_recall },
		{ "wal: records and replay", test_wal },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("filter", tests);
}
