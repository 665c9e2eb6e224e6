/* SPDX-License-Identifier: MIT
 *
 * test_shard.c — the single entry point: every op through pm_shard_apply, the
 * burst path giving exactly the sequential results, reply ids, statistics, INFO
 * text and its sections, unknown ops, and shard set-up bounds.
 */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

#define MIB (UINT64_C(1) << 20)

static struct pm_shard sh;

static void test_init_bounds(void)
{
	struct pm_shard_config cfg;
	pm_shard_config_default(&cfg);
	CU_ASSERT(cfg.arena_bytes == PM_SHARD_ARENA_BYTES_DEFAULT);
	cfg.hugepages = false;
	cfg.arena_bytes = PM_ARENA_BYTES_MIN;
	cfg.seed_capacity = 100000; /* 6.4 MB of seeds in a 1 MiB arena */
	CU_ASSERT_EQUAL(pm_shard_init(&sh, &cfg), PM_E_PARAM);
	cfg.seed_capacity = 14000; /* seeds fit, but not the map and tables */
	CU_ASSERT_EQUAL(pm_shard_init(&sh, &cfg), PM_E_PARAM);
	cfg.arena_bytes = 8 * MIB;
	CU_ASSERT_EQUAL(pm_shard_init(&sh, &cfg), PM_OK);
	CU_ASSERT_PTR_NOT_NULL(sh.kern);
	pm_shard_destroy(&sh);
}

static void test_every_op(void)
{
	fx_shard(&sh, 16 * MIB, 256);
	struct pm_reply rep;
	float v[4] = { 1, 2, 3, 4 };
	struct pm_request reqs[] = {
		{ .op = PM_OP_SET, .id = 1, .key = fx_s("k"), .value = fx_s("value") },
		{ .op = PM_OP_GET, .id = 2, .key = fx_s("k") },
		{ .op = PM_OP_CCREATE, .id = 3, .collection = fx_s("c"), .params = { .dim = 4 } },
		{ .op = PM_OP_VADD, .id = 4, .key = fx_s("v"), .vec = (const uint8_t *)v, .dim = 4,
		  .collection = fx_s("c") },
		{ .op = PM_OP_VGET, .id = 5, .key = fx_s("v") },
		{ .op = PM_OP_VQUERY, .id = 6, .vec = (const uint8_t *)v, .dim = 4, .k = 3,
		  .collection = fx_s("c") },
		{ .op = PM_OP_CLIST, .id = 7 },
		{ .op = PM_OP_INFO, .id = 8 },
		{ .op = PM_OP_VDEL, .id = 9, .key = fx_s("v") },
		{ .op = PM_OP_DEL, .id = 10, .key = fx_s("k") },
		{ .op = PM_OP_CDROP, .id = 11, .collection = fx_s("c") },
	};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		pm_shard_apply(&sh, &reqs[i], 0, &rep);
		CU_ASSERT_EQUAL(rep.status, PM_OK);
		CU_ASSERT_EQUAL(rep.id, reqs[i].id);
		CU_ASSERT_EQUAL(rep.op, reqs[i].op);
		switch (reqs[i].op) {
		case PM_OP_GET:
			CU_ASSERT(rep.value.len == 5 && !memcmp(rep.value.ptr, "value", 5));
			break;
		case PM_OP_VQUERY:
			CU_ASSERT_EQUAL(rep.nhits, 1);
			CU_ASSERT_EQUAL(rep.hits[0].dist, 0.0f);
			break;
		case PM_OP_CLIST:
			CU_ASSERT_EQUAL(rep.ncolls, 1);
			break;
		case PM_OP_INFO:
			CU_ASSERT(rep.value.len > 0 && rep.value.len <= PM_INFO_TEXT_BYTES_MAX);
			break;
		case PM_OP_DEL:
		case PM_OP_VDEL:
		case PM_OP_CDROP:
			CU_ASSERT_EQUAL(rep.removed, 1);
			break;
		default:
			break;
		}
	}
	CU_ASSERT_EQUAL(sh.stats.ops[PM_OP_SET], 1);
	CU_ASSERT_EQUAL(sh.stats.hits, 2);
	struct pm_request bad = { .op = PM_OP_COUNT + 3, .id = 77 };
	pm_shard_apply(&sh, &bad, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_FRAME_OPCODE);
	CU_ASSERT_EQUAL(rep.id, 77);
	CU_ASSERT_EQUAL(sh.stats.errors[PM_E_FRAME_OPCODE], 1);
	struct pm_request snap = { .op = PM_OP_SNAPSHOT, .id = 78 }; /* the dataplane's op */
	pm_shard_apply(&sh, &snap, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_E_FRAME_OPCODE);
	CU_ASSERT_EQUAL(rep.op, PM_OP_SNAPSHOT);
	pm_shard_destroy(&sh);
}

/* ---------------------------------------------------------------- bursts */

struct log {
	int n;
	enum pm_status st[PM_BURST_MAX];
	uint64_t id[PM_BURST_MAX];
	uint8_t val[PM_BURST_MAX][64];
	uint32_t vlen[PM_BURST_MAX];
};

static void record(void *ctx, const struct pm_request *req, const struct pm_reply *rep)
{
	struct log *l = ctx;
	CU_ASSERT_EQUAL(rep->id, req->id);
	l->st[l->n] = rep->status;
	l->id[l->n] = rep->id;
	l->vlen[l->n] = rep->value.len < 64 ? rep->value.len : 64;
	if (rep->value.len)
		memcpy(l->val[l->n], rep->value.ptr, l->vlen[l->n]);
	l->n++;
}

/* A burst of mixed ops, including several on the same key, gives what the
 * same requests give one by one. */
static void test_burst_equals_sequential(void)
{
	static struct pm_request reqs[PM_BURST_MAX];
	static char keys[PM_BURST_MAX][16], vals[PM_BURST_MAX][40];
	uint64_t rng = 17;
	for (int round = 0; round < 50; round++) {
		uint32_t n = 1 + (uint32_t)(pm_test_rand(&rng) % PM_BURST_MAX);
		for (uint32_t i = 0; i < n; i++) {
			snprintf(keys[i], sizeof(keys[i]), "b%u", (unsigned)(pm_test_rand(&rng) % 8));
			uint32_t vl = (uint32_t)(pm_test_rand(&rng) % 40);
			memset(vals[i], 'a' + (int)(i % 26), vl);
			uint8_t op = (uint8_t[]){ PM_OP_SET, PM_OP_GET, PM_OP_DEL }[pm_test_rand(&rng) % 3];
			reqs[i] = (struct pm_request){ .op = op, .id = i + 1000, .key = fx_s(keys[i]),
						       .value = fx_b(vals[i], vl) };
		}
		struct log burst = { 0 }, seq = { 0 };
		fx_shard(&sh, 8 * MIB, 64);
		pm_shard_apply_burst(&sh, reqs, n, 0, record, &burst);
		pm_shard_destroy(&sh);
		fx_shard(&sh, 8 * MIB, 64);
		for (uint32_t i = 0; i < n; i++) {
			struct pm_reply rep;
			pm_shard_apply(&sh, &reqs[i], 0, &rep);
			record(&seq, &reqs[i], &rep);
		}
		pm_shard_destroy(&sh);
		CU_ASSERT_EQUAL_FATAL(burst.n, (int)n);
		CU_ASSERT(memcmp(burst.st, seq.st, n * sizeof(burst.st[0])) == 0);
		CU_ASSERT(memcmp(burst.id, seq.id, n * sizeof(burst.id[0])) == 0);
		CU_ASSERT(memcmp(burst.vlen, seq.vlen, n * sizeof(burst.vlen[0])) == 0);
		for (uint32_t i = 0; i < n; i++)
			CU_ASSERT(memcmp(burst.val[i], seq.val[i], burst.vlen[i]) == 0);
	}
}

/* ---------------------------------------------------------------- INFO */

static const char *info(const char *section, uint32_t *len)
{
	struct pm_request r = { .op = PM_OP_INFO, .section = section ? fx_s(section) : fx_b(NULL, 0) };
	struct pm_reply rep;
	pm_shard_apply(&sh, &r, 0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	*len = rep.value.len;
	return (const char *)rep.value.ptr;
}

static bool has(const char *text, uint32_t len, const char *needle)
{
	return memmem(text, len, needle, strlen(needle)) != NULL;
}

static void test_info(void)
{
	fx_shard(&sh, 16 * MIB, 1024);
	CU_ASSERT_EQUAL(fx_set(&sh, fx_s("a"), fx_s("1"), 0, 0), PM_OK);
	float v[2] = { 1, 2 };
	CU_ASSERT_EQUAL(fx_vadd(&sh, fx_s("v"), NULL, v, 2, 0, 0), PM_OK);
	uint32_t len;
	const char *t = info(NULL, &len);
	CU_ASSERT(has(t, len, "# Keyspace\r\nkeys:1\r\nvectors:1\r\n"));
	CU_ASSERT(has(t, len, "# Memory\r\n"));
	CU_ASSERT(has(t, len, "collection:name=,default=1,dim=2,"));
	CU_ASSERT(has(t, len, "ops_set:1\r\n"));
	CU_ASSERT(!has(t, len, "errors_E_KEY_LEN"));
	CU_ASSERT_EQUAL(fx_set(&sh, fx_b("k", 0), fx_s("v"), 0, 0), PM_E_KEY_LEN);
	t = info("stats", &len);
	CU_ASSERT(has(t, len, "errors:1\r\nerrors_E_KEY_LEN:1\r\n"));
	t = info("MEMORY", &len); /* case-insensitive, one section only */
	CU_ASSERT(has(t, len, "arena_bytes:16777216\r\n"));
	CU_ASSERT(!has(t, len, "# Keyspace"));
	t = info("nosuch", &len);
	CU_ASSERT_EQUAL(len, 0);
	/* the text is bounded by the caller's buffer */
	char small[40];
	uint32_t n = pm_shard_info(&sh, NULL, 0, small, sizeof(small));
	CU_ASSERT(n < sizeof(small));
	CU_ASSERT_EQUAL(strlen(small), n);
	/* with every collection slot in use it still fits its limit */
	char k[16];
	for (uint32_t d = 3; d < 3 + PM_COLLECTIONS_MAX - 1; d++) {
		static float w[PM_COLLECTIONS_MAX + 3];
		snprintf(k, sizeof(k), "d%u", d);
		CU_ASSERT_EQUAL_FATAL(fx_vadd(&sh, fx_s(k), NULL, w, d, 0, 0), PM_OK);
	}
	t = info(NULL, &len);
	CU_ASSERT(len <= PM_INFO_TEXT_BYTES_MAX - 1);
	CU_ASSERT(len >= 2 && t[len - 2] == '\r' && t[len - 1] == '\n'); /* whole lines only */
	pm_shard_destroy(&sh);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "init bounds", test_init_bounds },
		{ "every op through pm_shard_apply", test_every_op },
		{ "burst equals sequential", test_burst_equals_sequential },
		{ "INFO", test_info },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("shard", tests);
}
