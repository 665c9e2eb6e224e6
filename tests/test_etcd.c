/* SPDX-License-Identifier: MIT
 *
 * test_etcd.c — pomai-control's etcd client (control/etcd.h). Two parts, one
 * per meson test of suite `etcd`:
 *  - `test_etcd unit` (no etcd): the request bodies against the exact JSON
 *    etcd 3.4 was measured with (cluster-plan.md §2); the answer parsers on
 *    the recorded bodies (tests/etcd_bodies.h) — every error shape of §2.9,
 *    optional fields left out, bad base64, wrong types, every bound broken;
 *    the watch's line splitter fed whole, byte by byte and in random pieces,
 *    at its bound and one byte past it; endpoint lists refused at open; the
 *    HTTP side against a fake server of the test's own (a garbled answer, a
 *    503 that moves the handle on, a burst of watch messages, a stream's
 *    error object, a stream ended or cut).
 *  - `test_etcd live`: against a real etcd (tests/etcd_proc.h): leases
 *    (grant, keepalive, revoke; expiry -> LEASE_GONE), put/range/delete of
 *    keys and prefixes, the election txn and the MOD-compare update with the
 *    failure branch's range, a watch's PUT and DELETE events (a lease
 *    expiry's too), replay from a revision, a compacted start, answers and
 *    watch messages past PM_ETCD_MSG_BYTES_MAX, endpoint rotation past a
 *    dead port, calls to a SIGSTOPped etcd bounded by their timeout, and the
 *    watch ended by etcd's SIGKILL, then resumed after its restart. Exits 77
 *    without etcd (a failure under CI=true).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cu_main.h"
#include "etcd.h"
#include "etcd_bodies.h"
#include "etcd_json.h"
#include "etcd_proc.h"

/* A literal's bytes without its NUL. */
#define LIT(s) s, sizeof(s) - 1

static char err[PM_ETCD_ERR_BYTES];
static uint64_t seed;

/* rc of a call; on a mismatch the error line is printed. */
#define EXPECT_RC(call, want)                                                              \
	do {                                                                               \
		int rc_ = (call);                                                          \
		if (rc_ != (want))                                                         \
			printf("\n  %s:%d: rc %d, want %d (%s)\n", __FILE__, __LINE__, rc_, \
			       (int)(want), err);                                          \
		CU_ASSERT_EQUAL(rc_, want);                                                \
	} while (0)

/* err is one line holding what. */
static bool err_says(const char *what)
{
	return !strchr(err, '\n') && strstr(err, what) != NULL;
}

/* ---------------------------------------------------------------- base64 */

static bool b64_is(const void *p, size_t n, const char *want)
{
	char out[512];
	pm_etcd_b64_encode(p, n, out);
	return pm_etcd_b64_len(n) == strlen(want) && !strcmp(out, want);
}

static bool b64_refused(const char *s)
{
	uint8_t out[64];
	size_t n;
	return pm_etcd_b64_decode(s, strlen(s), out, &n) == -1;
}

static void test_b64(void)
{
	CU_ASSERT(b64_is("", 0, ""));
	CU_ASSERT(b64_is("f", 1, "Zg=="));
	CU_ASSERT(b64_is("fo", 2, "Zm8="));
	CU_ASSERT(b64_is("foo", 3, "Zm9v"));
	CU_ASSERT(b64_is(LIT("/pomai/c1/nodes/n1"), "L3BvbWFpL2MxL25vZGVzL24x"));
	CU_ASSERT(b64_is("\xff\xfe\x00", 3, "//4A"));
	/* round trips of random bytes of every length up to 300 */
	for (size_t len = 0; len <= 300; len++) {
		uint8_t in[300], back[300];
		char text[404];
		size_t n = 0;
		for (size_t i = 0; i < len; i++)
			in[i] = (uint8_t)pm_test_rand(&seed);
		pm_etcd_b64_encode(in, len, text);
		CU_ASSERT_EQUAL(strlen(text), pm_etcd_b64_len(len));
		CU_ASSERT_EQUAL(pm_etcd_b64_decode(text, strlen(text), back, &n), 0);
		CU_ASSERT(n == len && !memcmp(in, back, len));
	}
	/* what no encoder writes */
	CU_ASSERT(b64_refused("Zg="));     /* length */
	CU_ASSERT(b64_refused("Zg"));
	CU_ASSERT(b64_refused("Z==="));    /* '=' too early */
	CU_ASSERT(b64_refused("===="));
	CU_ASSERT(b64_refused("Zg=a"));    /* a character after '=' */
	CU_ASSERT(b64_refused("Zg==Zg==")); /* padding inside */
	CU_ASSERT(b64_refused("Zh=="));    /* unused bits set */
	CU_ASSERT(b64_refused("Zm9="));
	CU_ASSERT(b64_refused("Zm9v!A=="));
	CU_ASSERT(b64_refused("Zm-v"));    /* the URL alphabet is not etcd's */
	CU_ASSERT(b64_refused("Zm9 "));
}

/* ---------------------------------------------------------------- requests */

/* The body a builder made is exactly want (freed). */
static bool body_is(int rc, char **b, const char *want)
{
	char *body = *b;
	bool ok = rc == PM_ETCD_OK && body && !strcmp(body, want);
	if (!ok)
		printf("\n  rc %d, body %s\n  want %s\n", rc, body ? body : "(none)", want);
	free(body);
	return ok;
}

#define LEADER "/pomai/c1/sets/s1/leader"
#define LEADER_B64 "L3BvbWFpL2MxL3NldHMvczEvbGVhZGVy"
#define SLOTMAP "/pomai/c1/slotmap"
#define SLOTMAP_B64 "L3BvbWFpL2MxL3Nsb3RtYXA="
#define LEADER_VALUE "node=n1 addr=127.0.0.1:7000"

static void test_requests(void)
{
	char *b;
	CU_ASSERT(body_is(pm_etcd_req_grant(5, &b, LIT(err)), &b, "{\"TTL\":\"5\"}"));
	CU_ASSERT(body_is(pm_etcd_req_lease(4111120489558866451, &b, LIT(err)), &b,
			  "{\"ID\":\"4111120489558866451\"}"));
	CU_ASSERT(body_is(pm_etcd_req_range("/pomai/c1/nodes/n1", NULL, &b, LIT(err)), &b,
			  "{\"key\":\"L3BvbWFpL2MxL25vZGVzL24x\",\"limit\":\"4096\"}"));
	CU_ASSERT(body_is(pm_etcd_req_range("/pomai/c1/nodes/", "/pomai/c1/nodes0", &b, LIT(err)),
			  &b,
			  "{\"key\":\"L3BvbWFpL2MxL25vZGVzLw==\",\"range_end\":"
			  "\"L3BvbWFpL2MxL25vZGVzMA==\",\"limit\":\"4096\"}"));
	CU_ASSERT(body_is(pm_etcd_req_put("/pomai/c1/nodes/n1", "x", 1, 7001, &b, LIT(err)), &b,
			  "{\"key\":\"L3BvbWFpL2MxL25vZGVzL24x\",\"value\":\"eA==\",\"lease\":\"7001\"}"));
	CU_ASSERT(body_is(pm_etcd_req_put("k", NULL, 0, 0, &b, LIT(err)), &b,
			  "{\"key\":\"aw==\",\"value\":\"\"}"));
	CU_ASSERT(body_is(pm_etcd_req_delete("/pomai/c1/nodes/", "/pomai/c1/nodes0", &b, LIT(err)),
			  &b,
			  "{\"key\":\"L3BvbWFpL2MxL25vZGVzLw==\",\"range_end\":"
			  "\"L3BvbWFpL2MxL25vZGVzMA==\"}"));
	CU_ASSERT(body_is(pm_etcd_req_delete("k", NULL, &b, LIT(err)), &b, "{\"key\":\"aw==\"}"));
	CU_ASSERT(body_is(pm_etcd_req_watch("/pomai/c1/", "/pomai/c10", 0, &b, LIT(err)), &b,
			  "{\"create_request\":{\"key\":\"L3BvbWFpL2MxLw==\",\"range_end\":"
			  "\"L3BvbWFpL2MxMA==\",\"prev_kv\":true,\"progress_notify\":true}}"));
	CU_ASSERT(body_is(pm_etcd_req_watch("k", NULL, 19, &b, LIT(err)), &b,
			  "{\"create_request\":{\"key\":\"aw==\",\"start_revision\":\"19\","
			  "\"prev_kv\":true,\"progress_notify\":true}}"));
}

/* The campaign of cluster-plan §2.6: put-if-absent under a lease, the
 * holder handed back by the failure branch. */
static const struct pm_etcd_cmp elect_cmp[] = { { .key = LEADER, .target = PM_ETCD_CREATE } };
static const struct pm_etcd_op elect_put[] = { { .kind = PM_ETCD_PUT, .key = LEADER,
						  .value = LEADER_VALUE,
						  .value_len = sizeof(LEADER_VALUE) - 1,
						  .lease = 4111120489558866473 } };
static const struct pm_etcd_op read_leader[] = { { .kind = PM_ETCD_RANGE, .key = LEADER } };
static const struct pm_etcd_txn elect = { elect_cmp, 1, elect_put, read_leader, 1, 1 };

static const struct pm_etcd_op map_put[] = { { .kind = PM_ETCD_PUT, .key = SLOTMAP,
						.value = "epoch=2", .value_len = 7 } };
static const struct pm_etcd_op read_map[] = { { .kind = PM_ETCD_RANGE, .key = SLOTMAP } };

static void test_request_txn(void)
{
	char *b;
	CU_ASSERT(body_is(pm_etcd_req_txn(&elect, &b, LIT(err)), &b,
			  "{\"compare\":[{\"key\":\"" LEADER_B64 "\",\"target\":\"CREATE\","
			  "\"result\":\"EQUAL\",\"create_revision\":\"0\"}],\"success\":[{"
			  "\"request_put\":{\"key\":\"" LEADER_B64 "\",\"value\":"
			  "\"bm9kZT1uMSBhZGRyPTEyNy4wLjAuMTo3MDAw\",\"lease\":"
			  "\"4111120489558866473\"}}],\"failure\":[{\"request_range\":{\"key\":"
			  "\"" LEADER_B64 "\",\"limit\":\"4096\"}}]}"));
	/* the leader-only map update of §2.7: two compares, two ranges */
	const struct pm_etcd_cmp cmp[] = {
		{ .key = LEADER, .target = PM_ETCD_CREATE, .number = 11 },
		{ .key = SLOTMAP, .target = PM_ETCD_MOD, .number = 13 },
	};
	const struct pm_etcd_op fail[] = { read_map[0], read_leader[0] };
	const struct pm_etcd_txn upd = { cmp, 2, map_put, fail, 1, 2 };
	CU_ASSERT(body_is(pm_etcd_req_txn(&upd, &b, LIT(err)), &b,
			  "{\"compare\":[{\"key\":\"" LEADER_B64 "\",\"target\":\"CREATE\","
			  "\"result\":\"EQUAL\",\"create_revision\":\"11\"},{\"key\":\"" SLOTMAP_B64
			  "\",\"target\":\"MOD\",\"result\":\"EQUAL\",\"mod_revision\":\"13\"}],"
			  "\"success\":[{\"request_put\":{\"key\":\"" SLOTMAP_B64 "\",\"value\":"
			  "\"ZXBvY2g9Mg==\"}}],\"failure\":[{\"request_range\":{\"key\":\"" SLOTMAP_B64
			  "\",\"limit\":\"4096\"}},{\"request_range\":{\"key\":\"" LEADER_B64
			  "\",\"limit\":\"4096\"}}]}"));
	/* the other targets, a delete, no failure branch */
	const struct pm_etcd_cmp other[] = {
		{ .key = "k", .target = PM_ETCD_VERSION, .number = 2 },
		{ .key = "k", .target = PM_ETCD_VALUE, .value = "v", .value_len = 1 },
		{ .key = "k", .target = PM_ETCD_LEASE, .number = 12345 },
	};
	const struct pm_etcd_op del[] = { { .kind = PM_ETCD_DELETE, .key = "p/", .range_end = "p0" } };
	const struct pm_etcd_txn t = { other, 3, del, NULL, 1, 0 };
	CU_ASSERT(body_is(pm_etcd_req_txn(&t, &b, LIT(err)), &b,
			  "{\"compare\":[{\"key\":\"aw==\",\"target\":\"VERSION\",\"result\":"
			  "\"EQUAL\",\"version\":\"2\"},{\"key\":\"aw==\",\"target\":\"VALUE\","
			  "\"result\":\"EQUAL\",\"value\":\"dg==\"},{\"key\":\"aw==\",\"target\":"
			  "\"LEASE\",\"result\":\"EQUAL\",\"lease\":\"12345\"}],\"success\":[{"
			  "\"request_delete_range\":{\"key\":\"cC8=\",\"range_end\":\"cDA=\"}}],"
			  "\"failure\":[]}"));
}

/* A builder refused its arguments: E_ARG, no body, err says why. */
static bool refused(int rc, char **b, const char *why)
{
	bool ok = rc == PM_ETCD_E_ARG && !*b && err_says(why);
	if (!ok)
		printf("\n  rc %d, err '%s', want E_ARG '%s'\n", rc, err, why);
	free(*b);
	return ok;
}

static void test_request_bounds(void)
{
	char *b, key[PM_ETCD_KEY_BYTES_MAX + 2];
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0'; /* PM_ETCD_KEY_BYTES_MAX + 1 bytes */
	CU_ASSERT(refused(pm_etcd_req_range(key, NULL, &b, LIT(err)), &b, "PM_ETCD_KEY_BYTES_MAX"));
	CU_ASSERT(refused(pm_etcd_req_range("a", key, &b, LIT(err)), &b, "range_end"));
	key[PM_ETCD_KEY_BYTES_MAX] = '\0'; /* at the bound */
	CU_ASSERT_EQUAL(pm_etcd_req_range(key, NULL, &b, LIT(err)), PM_ETCD_OK);
	free(b);
	CU_ASSERT(refused(pm_etcd_req_range(NULL, NULL, &b, LIT(err)), &b, "no key"));
	/* "" (what pm_etcd_prefix_end writes when there is no end) would be
	 * etcd's "\0", every key from key on */
	CU_ASSERT(refused(pm_etcd_req_delete("a", "", &b, LIT(err)), &b, "range_end: no key"));
	CU_ASSERT(refused(pm_etcd_req_put("", "v", 1, 0, &b, LIT(err)), &b, "no key"));
	CU_ASSERT(refused(pm_etcd_req_put("k", NULL, 3, 0, &b, LIT(err)), &b, "NULL"));
	CU_ASSERT(refused(pm_etcd_req_put("k", "v", 1, -1, &b, LIT(err)), &b, "lease"));
	CU_ASSERT(refused(pm_etcd_req_grant(0, &b, LIT(err)), &b, "TTL"));
	CU_ASSERT(refused(pm_etcd_req_lease(0, &b, LIT(err)), &b, "lease ID"));
	CU_ASSERT(refused(pm_etcd_req_watch("k", NULL, -1, &b, LIT(err)), &b, "revision"));
	/* a value past PM_ETCD_VALUE_BYTES_MAX, and one at it */
	char *big = calloc(1, PM_ETCD_VALUE_BYTES_MAX + 1u);
	CU_ASSERT_FATAL(big != NULL);
	CU_ASSERT(refused(pm_etcd_req_put("k", big, PM_ETCD_VALUE_BYTES_MAX + 1u, 0, &b, LIT(err)),
			  &b, "PM_ETCD_VALUE_BYTES_MAX"));
	CU_ASSERT_EQUAL(pm_etcd_req_put("k", big, PM_ETCD_VALUE_BYTES_MAX, 0, &b, LIT(err)),
			PM_ETCD_OK);
	CU_ASSERT(b && strlen(b) <= PM_ETCD_MSG_BYTES_MAX);
	free(b);
	free(big);
	/* a txn: too many compares or operations, a bad target or kind */
	struct pm_etcd_cmp cmp[PM_ETCD_TXN_OPS_MAX + 1];
	struct pm_etcd_op ops[PM_ETCD_TXN_OPS_MAX + 1];
	for (uint32_t i = 0; i <= PM_ETCD_TXN_OPS_MAX; i++) {
		cmp[i] = (struct pm_etcd_cmp){ .key = "k", .target = PM_ETCD_MOD, .number = i };
		ops[i] = (struct pm_etcd_op){ .kind = PM_ETCD_RANGE, .key = "k" };
	}
	struct pm_etcd_txn t = { cmp, PM_ETCD_TXN_OPS_MAX, ops, ops, PM_ETCD_TXN_OPS_MAX,
				 PM_ETCD_TXN_OPS_MAX };
	CU_ASSERT_EQUAL(pm_etcd_req_txn(&t, &b, LIT(err)), PM_ETCD_OK);
	free(b);
	t.ncmp++;
	CU_ASSERT(refused(pm_etcd_req_txn(&t, &b, LIT(err)), &b, "PM_ETCD_TXN_OPS_MAX"));
	t.ncmp--, t.nfailure++;
	CU_ASSERT(refused(pm_etcd_req_txn(&t, &b, LIT(err)), &b, "failure operations"));
	t.nfailure--;
	cmp[3].target = (enum pm_etcd_target)7;
	CU_ASSERT(refused(pm_etcd_req_txn(&t, &b, LIT(err)), &b, "target"));
	cmp[3].target = PM_ETCD_MOD;
	ops[2].kind = (enum pm_etcd_op_kind)9;
	CU_ASSERT(refused(pm_etcd_req_txn(&t, &b, LIT(err)), &b, "kind"));
	ops[2].kind = PM_ETCD_RANGE;
	ops[5].key = NULL;
	CU_ASSERT(refused(pm_etcd_req_txn(&t, &b, LIT(err)), &b, "no key"));
	t = (struct pm_etcd_txn){ .ncmp = 1 };
	CU_ASSERT(refused(pm_etcd_req_txn(&t, &b, LIT(err)), &b, "NULL"));
}

/* ---------------------------------------------------------------- answers */

static bool kv_is(const struct pm_etcd_kv *kv, const char *key, const char *value,
		  int64_t create, int64_t mod, int64_t version, int64_t lease)
{
	bool ok = !strcmp(kv->key, key) && kv->value_len == strlen(value) &&
		  !memcmp(kv->value, value, kv->value_len) && kv->value[kv->value_len] == '\0' &&
		  kv->create_revision == create && kv->mod_revision == mod &&
		  kv->version == version && kv->lease == lease;
	if (!ok)
		printf("\n  kv %s=%.*s %" PRId64 "/%" PRId64 "/%" PRId64 " lease %" PRId64 "\n",
		       kv->key, (int)kv->value_len, (const char *)kv->value, kv->create_revision,
		       kv->mod_revision, kv->version, kv->lease);
	return ok;
}

static void test_answers_kv(void)
{
	struct pm_etcd_kvs kvs;
	int64_t rev = -1, del = -1;
	EXPECT_RC(pm_etcd_ans_header(LIT(EB_PUT), &rev, LIT(err)), PM_ETCD_OK);
	CU_ASSERT_EQUAL(rev, 4);
	EXPECT_RC(pm_etcd_ans_header(LIT(EB_PUT_PREV), &rev, LIT(err)), PM_ETCD_OK);
	CU_ASSERT_EQUAL(rev, 6);
	EXPECT_RC(pm_etcd_ans_header(LIT(EB_REVOKE), NULL, LIT(err)), PM_ETCD_OK);

	EXPECT_RC(pm_etcd_ans_range(LIT(EB_RANGE_ONE), &kvs, LIT(err)), PM_ETCD_OK);
	CU_ASSERT(kvs.n == 1 && kvs.revision == 6);
	CU_ASSERT(kvs.n == 1 && kv_is(&kvs.kv[0], "/pomai/c1/nodes/n1", "addr=127.0.0.1", 4, 4, 1, 0));
	pm_etcd_kvs_free(&kvs);
	CU_ASSERT(kvs.n == 0 && kvs.kv == NULL);
	EXPECT_RC(pm_etcd_ans_range(LIT(EB_RANGE_PREFIX), &kvs, LIT(err)), PM_ETCD_OK);
	CU_ASSERT_FATAL(kvs.n == 2);
	CU_ASSERT(kv_is(&kvs.kv[1], "/pomai/c1/nodes/n2", "v2b", 5, 6, 2, 0));
	pm_etcd_kvs_free(&kvs);
	/* values left out (keys_only), kvs left out (count_only, nothing found) */
	EXPECT_RC(pm_etcd_ans_range(LIT(EB_RANGE_KEYS_ONLY), &kvs, LIT(err)), PM_ETCD_OK);
	CU_ASSERT(kvs.n == 2 && kv_is(&kvs.kv[0], "/pomai/c1/nodes/n1", "", 4, 4, 1, 0));
	pm_etcd_kvs_free(&kvs);
	EXPECT_RC(pm_etcd_ans_range(LIT(EB_RANGE_COUNT_ONLY), &kvs, LIT(err)), PM_ETCD_OK);
	CU_ASSERT(kvs.n == 0 && kvs.revision == 6);
	EXPECT_RC(pm_etcd_ans_range(LIT(EB_RANGE_NONE), &kvs, LIT(err)), PM_ETCD_OK);
	CU_ASSERT(kvs.n == 0 && kvs.revision == 6);

	EXPECT_RC(pm_etcd_ans_delete(LIT(EB_DELETE_PREV), &del, &rev, LIT(err)), PM_ETCD_OK);
	CU_ASSERT(del == 1 && rev == 7);
	EXPECT_RC(pm_etcd_ans_delete(LIT(EB_DELETE_NONE), &del, &rev, LIT(err)), PM_ETCD_OK);
	CU_ASSERT(del == 0 && rev == 7);
	EXPECT_RC(pm_etcd_ans_delete(LIT(EB_DELETE_PREFIX), &del, NULL, LIT(err)), PM_ETCD_OK);
	CU_ASSERT_EQUAL(del, 1);
}

static void test_answers_lease(void)
{
	int64_t id = 0, ttl = 0;
	EXPECT_RC(pm_etcd_ans_grant(LIT(EB_GRANT), &id, &ttl, LIT(err)), PM_ETCD_OK);
	CU_ASSERT(id == 4111120489558866451 && ttl == 5);
	EXPECT_RC(pm_etcd_ans_grant(LIT(EB_GRANT_MIN), &id, &ttl, LIT(err)), PM_ETCD_OK);
	CU_ASSERT(id == 4111120489558866455 && ttl == 2);
	EXPECT_RC(pm_etcd_ans_keepalive(LIT(EB_KEEPALIVE), 7001, &ttl, LIT(err)), PM_ETCD_OK);
	CU_ASSERT_EQUAL(ttl, 5);
	/* a dead lease: HTTP 200 without a TTL */
	EXPECT_RC(pm_etcd_ans_keepalive(LIT(EB_KEEPALIVE_DEAD), 7001, &ttl, LIT(err)),
		  PM_ETCD_LEASE_GONE);
	CU_ASSERT(ttl == 0 && err_says("7001 is gone"));
	/* an answer about another lease is not ours */
	EXPECT_RC(pm_etcd_ans_keepalive(LIT(EB_KEEPALIVE), 7002, &ttl, LIT(err)), PM_ETCD_E_PROTO);
	CU_ASSERT(err_says("result.ID"));
	/* the unwrapped shape is not a keepalive's answer */
	EXPECT_RC(pm_etcd_ans_keepalive(LIT(EB_GRANT), 4111120489558866451, &ttl, LIT(err)),
		  PM_ETCD_E_PROTO);
	CU_ASSERT(err_says("result: missing"));
	/* a stream's error object */
	EXPECT_RC(pm_etcd_ans_keepalive(LIT("{\"error\":{\"grpc_code\":14,\"http_code\":503,"
					    "\"message\":\"etcdserver: no leader\"}}"),
					7001, &ttl, LIT(err)),
		  PM_ETCD_E_HTTP);
	CU_ASSERT(err_says("no leader"));
	/* a grant etcd refused in its answer's "error" */
	EXPECT_RC(pm_etcd_ans_grant(LIT("{\"header\":{},\"ID\":\"1\",\"TTL\":\"2\",\"error\":\"no\"}"),
				    &id, &ttl, LIT(err)),
		  PM_ETCD_E_HTTP);
	EXPECT_RC(pm_etcd_ans_grant(LIT("{\"header\":{},\"TTL\":\"2\"}"), &id, &ttl, LIT(err)),
		  PM_ETCD_E_PROTO);
	CU_ASSERT(err_says("ID"));
}

static void test_answers_txn(void)
{
	struct pm_etcd_kvs kvs;
	int64_t rev = 0;
	EXPECT_RC(pm_etcd_ans_txn(LIT(EB_TXN_ELECT_WON), &elect, &rev, &kvs, LIT(err)), PM_ETCD_OK);
	CU_ASSERT(rev == 11 && kvs.n == 0);
	pm_etcd_kvs_free(&kvs);
	/* lost: no "succeeded"; the holder from the failure branch */
	EXPECT_RC(pm_etcd_ans_txn(LIT(EB_TXN_ELECT_LOST), &elect, &rev, &kvs, LIT(err)),
		  PM_ETCD_FAILED);
	CU_ASSERT(rev == 11 && kvs.revision == 11 && kvs.n == 1);
	CU_ASSERT(kvs.n == 1 && kv_is(&kvs.kv[0], LEADER, LEADER_VALUE, 11, 11, 1,
				      4111120489558866473));
	pm_etcd_kvs_free(&kvs);
	EXPECT_RC(pm_etcd_ans_txn(LIT(EB_TXN_ELECT_LOST), &elect, NULL, NULL, LIT(err)),
		  PM_ETCD_FAILED);
	/* failed with an empty failure branch */
	const struct pm_etcd_txn no_failure = { elect_cmp, 1, elect_put, NULL, 1, 0 };
	EXPECT_RC(pm_etcd_ans_txn(LIT(EB_TXN_FAILED_EMPTY), &no_failure, &rev, &kvs, LIT(err)),
		  PM_ETCD_FAILED);
	/* the map: updated; a conflict hands back the current map */
	const struct pm_etcd_cmp mod12[] = { { .key = SLOTMAP, .target = PM_ETCD_MOD, .number = 12 } };
	const struct pm_etcd_txn upd = { mod12, 1, map_put, read_map, 1, 1 };
	EXPECT_RC(pm_etcd_ans_txn(LIT(EB_TXN_MAP_UPDATED), &upd, &rev, &kvs, LIT(err)), PM_ETCD_OK);
	CU_ASSERT_EQUAL(rev, 13);
	EXPECT_RC(pm_etcd_ans_txn(LIT(EB_TXN_MAP_CONFLICT), &upd, &rev, &kvs, LIT(err)),
		  PM_ETCD_FAILED);
	CU_ASSERT(kvs.n == 1 && kv_is(&kvs.kv[0], SLOTMAP, "epoch=2", 12, 13, 2, 0));
	pm_etcd_kvs_free(&kvs);
	/* a success branch's range */
	const struct pm_etcd_txn value = { NULL, 0, read_map, NULL, 1, 0 };
	EXPECT_RC(pm_etcd_ans_txn(LIT(EB_TXN_VALUE_RANGE), &value, &rev, &kvs, LIT(err)),
		  PM_ETCD_OK);
	CU_ASSERT(kvs.n == 1 && kv_is(&kvs.kv[0], SLOTMAP, "", 12, 14, 3, 0));
	pm_etcd_kvs_free(&kvs);
	/* responses that do not match the branch that ran */
	EXPECT_RC(pm_etcd_ans_txn(LIT(EB_TXN_ELECT_WON), &value, &rev, &kvs, LIT(err)),
		  PM_ETCD_E_PROTO); /* a put's response to a range */
	CU_ASSERT(err_says("responses[0].response_range"));
	EXPECT_RC(pm_etcd_ans_txn(LIT(EB_TXN_ELECT_LOST), &no_failure, &rev, &kvs, LIT(err)),
		  PM_ETCD_E_PROTO); /* a response to no operation */
	CU_ASSERT(err_says("1 responses to the failure branch's 0 operations"));
	CU_ASSERT(kvs.n == 0 && kvs.kv == NULL);
}

/* HTTP status, body -> rc and the words of the error line (cluster-plan §2.9). */
static const struct {
	long http;
	const char *body;
	int rc;
	const char *says;
} errors[] = {
	{ 404, EB_LEASE_NOT_FOUND, PM_ETCD_LEASE_GONE,
	  "HTTP 404: etcdserver: requested lease not found (code 5)" },
	{ 412, EB_GRANT_EXISTS, PM_ETCD_E_HTTP, "HTTP 412: etcdserver: lease already exists (code 9)" },
	{ 400, EB_TTL_TOO_LARGE, PM_ETCD_E_HTTP, "too large lease TTL (code 11)" },
	{ 400, EB_COMPACTED, PM_ETCD_E_HTTP, "required revision has been compacted (code 11)" },
	{ 400, EB_FUTURE, PM_ETCD_E_HTTP, "is a future revision (code 11)" },
	{ 400, EB_KEY_MISSING, PM_ETCD_E_HTTP, "key is not provided (code 3)" },
	{ 400, EB_BAD_BASE64, PM_ETCD_E_HTTP, "illegal base64 data at input byte 3 (code 3)" },
	{ 400, EB_TRUNCATED, PM_ETCD_E_HTTP, "HTTP 400: unexpected EOF (code 3)" },
	{ 400, EB_WRONG_TYPE, PM_ETCD_E_HTTP, "invalid character 'a'" },
	{ 400, EB_TXN_DUPLICATE, PM_ETCD_E_HTTP, "duplicate key given in txn request" },
	{ 500, EB_STREAM_EOF, PM_ETCD_E_HTTP, "HTTP 500: unexpected EOF (code 2)" },
	{ 500, EB_WATCH_BAD, PM_ETCD_E_HTTP, "illegal base64 data at input byte 0 (code 2)" },
	{ 404, EB_NOT_FOUND, PM_ETCD_E_HTTP, "HTTP 404: Not Found" },
	{ 405, EB_NOT_ALLOWED, PM_ETCD_E_HTTP, "HTTP 405: Method Not Allowed" },
	{ 502, "", PM_ETCD_E_HTTP, "HTTP 502: (no body)" },
	{ 503, "<html>\r\nbusy\r\n</html>", PM_ETCD_E_HTTP, "HTTP 503: <html>?" "?busy?" "?</html>" },
};

static void test_answers_errors(void)
{
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		int rc = pm_etcd_ans_error(errors[i].http, errors[i].body, strlen(errors[i].body),
					   LIT(err));
		if (rc != errors[i].rc || !err_says(errors[i].says))
			printf("\n  HTTP %ld: rc %d '%s', want %d '%s'\n", errors[i].http, rc, err,
			       errors[i].rc, errors[i].says);
		CU_ASSERT(rc == errors[i].rc && err_says(errors[i].says));
	}
	/* a long body is quoted in part, and the line stays within its bound */
	char *big = malloc(PM_ETCD_MSG_BYTES_MAX + 2u);
	CU_ASSERT_FATAL(big != NULL);
	memset(big, 'x', PM_ETCD_MSG_BYTES_MAX + 1u);
	char small[32];
	EXPECT_RC(pm_etcd_ans_error(500, big, PM_ETCD_MSG_BYTES_MAX + 1u, small, sizeof(small)),
		  PM_ETCD_E_HTTP);
	CU_ASSERT(strlen(small) == sizeof(small) - 1 && !strncmp(small, "HTTP 500: xxx", 13));
	free(big);
}

/* A body that breaks a rule -> E_PROTO naming it (parser: 'r' range, 't'
 * the election txn, 'k' keepalive of 7001, 'g' grant). */
static const struct {
	char parser;
	const char *body;
	const char *says;
} bad[] = {
	{ 'r', "", "not JSON" },
	{ 'r', "[]", "not a JSON object" },
	{ 'r', EB_RANGE_NONE " x", "not JSON" },
	{ 'r', "{\"header\":{},\"header\":{}}", "not JSON" },
	{ 'r', "{\"kvs\":[]}", "header: missing" },
	{ 'r', "{\"header\":1}", "header: not an object" },
	{ 'r', "{\"header\":{\"revision\":true}}", "header.revision: not an int64" },
	{ 'r', "{\"header\":{\"revision\":1.5}}", "header.revision: not an int64" },
	{ 'r', "{\"header\":{\"revision\":\"12a\"}}", "header.revision: not an int64" },
	{ 'r', "{\"header\":{\"revision\":\"-\"}}", "header.revision: not an int64" },
	{ 'r', "{\"header\":{\"revision\":\"007\"}}", "header.revision: not an int64" },
	{ 'r', "{\"header\":{\"revision\":\"\"}}", "header.revision: not an int64" },
	{ 'r', "{\"header\":{\"revision\":\" 7\"}}", "header.revision: not an int64" },
	{ 'r', "{\"header\":{\"revision\":\"9223372036854775808\"}}", "header.revision: not an int64" },
	{ 'r', "{\"header\":{\"revision\":\"-1\"}}", "header.revision: -1 below 0" },
	{ 'r', "{\"header\":{\"raft_term\":[]}}", "header.raft_term: not a uint64" },
	{ 'r', "{\"header\":{\"cluster_id\":\"18446744073709551616\"}}",
	  "header.cluster_id: not a uint64" },
	{ 'r', "{\"header\":{\"member_id\":-1}}", "header.member_id: not a uint64" },
	{ 'r', "{\"header\":{},\"kvs\":{}}", "kvs: not an array" },
	{ 'r', "{\"header\":{},\"kvs\":[1],\"count\":\"1\"}", "kvs[0]: not an object" },
	{ 'r', "{\"header\":{},\"kvs\":[{\"value\":\"eA==\"}],\"count\":\"1\"}", "kvs[0].key: missing" },
	{ 'r', "{\"header\":{},\"kvs\":[{\"key\":5}],\"count\":\"1\"}", "kvs[0].key: not a string" },
	{ 'r', "{\"header\":{},\"kvs\":[{\"key\":\"eA=\"}],\"count\":\"1\"}", "kvs[0].key: not base64" },
	{ 'r', "{\"header\":{},\"kvs\":[{\"key\":\"eA==\",\"value\":\"e===\"}],\"count\":\"1\"}",
	  "kvs[0].value: not base64" },
	{ 'r', "{\"header\":{},\"kvs\":[{\"key\":\"\"}],\"count\":\"1\"}", "kvs[0].key: 0 bytes" },
	{ 'r', "{\"header\":{},\"kvs\":[{\"key\":\"YQBi\"}],\"count\":\"1\"}", "kvs[0].key: holds a NUL" },
	{ 'r', "{\"header\":{},\"kvs\":[{\"key\":\"eA==\",\"lease\":false}],\"count\":\"1\"}",
	  "kvs[0].lease: not an int64" },
	{ 'r', "{\"header\":{},\"kvs\":[{\"key\":\"eA==\",\"version\":\"-2\"}],\"count\":\"1\"}",
	  "kvs[0].version: -2 below 0" },
	{ 'r', "{\"header\":{},\"kvs\":[{\"key\":\"eA==\"}],\"count\":\"0\"}", "count 0 below 1 kvs" },
	{ 'r', "{\"header\":{},\"kvs\":[{\"key\":\"eA==\"}]}", "count 0 below 1 kvs" },
	{ 'r', "{\"header\":{},\"kvs\":[{\"key\":\"eA==\"}],\"count\":\"9\",\"more\":true}",
	  "more than PM_ETCD_KVS_MAX" },
	{ 'r', "{\"header\":{},\"more\":\"yes\"}", "more: not a boolean" },
	{ 't', "{\"header\":{},\"succeeded\":\"yes\"}", "succeeded: not a boolean" },
	{ 't', "{\"header\":{},\"succeeded\":true,\"responses\":{}}", "responses: not an array" },
	{ 't', "{\"header\":{},\"succeeded\":true,\"responses\":[1]}",
	  "responses[0].response_put: not the one member" },
	{ 't',
	  "{\"header\":{},\"succeeded\":true,\"responses\":[{\"response_put\":{},"
	  "\"response_range\":{}}]}",
	  "responses[0].response_put: not the one member" },
	{ 't',
	  "{\"header\":{},\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":"
	  "{\"revision\":\"x\"}}}]}",
	  "responses[0].response_put.header.revision: not an int64" },
	{ 't',
	  "{\"header\":{},\"responses\":[{\"response_range\":{\"kvs\":[{\"key\":\"eA==\"}],"
	  "\"count\":\"1\"}},"
	       "{\"response_range\":{}}]}", "2 responses to the failure branch's 1 operations" },
	{ 't', "{\"succeeded\":true,\"responses\":[{\"response_put\":{}}]}", "header: missing" },
	{ 'k', "{\"result\":{\"header\":{},\"ID\":\"7001\",\"TTL\":true}}", "result.TTL: not an int64" },
	{ 'k', "{\"result\":{\"header\":{},\"TTL\":\"5\"}}", "result.ID: 0 answers lease 7001" },
	{ 'k', "{\"result\":[]}", "result: not an object" },
	{ 'k', "{\"result\":{\"ID\":\"7001\",\"TTL\":\"5\"}}", "result.header: missing" },
	{ 'g', "{\"header\":{},\"ID\":\"4\",\"TTL\":\"0\"}", "TTL: 0 below 1" },
	{ 'g', "{\"header\":{},\"ID\":\"-4\",\"TTL\":\"3\"}", "ID: -4 below 1" },
	{ 'g', "{\"header\":{},\"ID\":\"4\",\"TTL\":\"3\",\"error\":7}", "error" },
};

static int parse_as(char parser, const char *body, size_t len)
{
	struct pm_etcd_kvs kvs = { 0 };
	int64_t a, b;
	int rc = PM_ETCD_E_ARG;
	switch (parser) {
	case 'r':
		rc = pm_etcd_ans_range(body, len, &kvs, LIT(err));
		break;
	case 't':
		rc = pm_etcd_ans_txn(body, len, &elect, &a, &kvs, LIT(err));
		break;
	case 'k':
		rc = pm_etcd_ans_keepalive(body, len, 7001, &a, LIT(err));
		break;
	case 'g':
		rc = pm_etcd_ans_grant(body, len, &a, &b, LIT(err));
		break;
	}
	CU_ASSERT(rc != PM_ETCD_OK || parser == 'k' || kvs.n || !kvs.kv);
	pm_etcd_kvs_free(&kvs);
	return rc;
}

static void test_answers_bad(void)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse_as(bad[i].parser, bad[i].body, strlen(bad[i].body));
		if (rc != PM_ETCD_E_PROTO || !err_says(bad[i].says))
			printf("\n  %s: rc %d '%s', want E_PROTO '%s'\n", bad[i].body, rc, err,
			       bad[i].says);
		CU_ASSERT(rc == PM_ETCD_E_PROTO && err_says(bad[i].says));
	}
	/* what proto3 JSON allows besides etcd's own form: int64s as numbers, an
	 * enum by number, unknown members */
	struct pm_etcd_kvs kvs;
	EXPECT_RC(pm_etcd_ans_range(LIT("{\"header\":{\"revision\":6,\"new\":[1]},\"kvs\":[{\"key\":"
					"\"eA==\",\"mod_revision\":3}],\"count\":1,\"x\":{}}"),
				    &kvs, LIT(err)),
		  PM_ETCD_OK);
	CU_ASSERT(kvs.revision == 6 && kvs.n == 1 && kvs.kv[0].mod_revision == 3);
	pm_etcd_kvs_free(&kvs);
	int64_t ttl;
	EXPECT_RC(pm_etcd_ans_keepalive(LIT("{\"result\":{\"header\":{},\"ID\":7001,\"TTL\":\"0\"}}"),
					7001, &ttl, LIT(err)),
		  PM_ETCD_LEASE_GONE);
	EXPECT_RC(pm_etcd_ans_keepalive(LIT("{\"result\":{\"header\":{},\"ID\":7001,\"TTL\":\"-1\"}}"),
					7001, &ttl, LIT(err)),
		  PM_ETCD_LEASE_GONE);
	EXPECT_RC(pm_etcd_ans_header(LIT("{\"header\":{\"revision\":\"9223372036854775807\"}}"),
				     &ttl, LIT(err)),
		  PM_ETCD_OK);
	CU_ASSERT_EQUAL(ttl, INT64_MAX);
}

/* ---------------------------------------------------------------- bounds of answers */

/* A range answer of n keys "k<i>" (and one key of klen 'k's when klen > 0)
 * into a malloc'd body. */
static char *range_body(uint32_t n, size_t klen, size_t *len)
{
	size_t cap = 128u + (size_t)n * 64u + klen * 2u;
	char *b = malloc(cap), key[PM_ETCD_KEY_BYTES_MAX + 16], k64[PM_ETCD_KEY_BYTES_MAX * 2];
	size_t at = (size_t)snprintf(b, cap, "{\"header\":{\"revision\":\"9\"},\"kvs\":[");
	for (uint32_t i = 0; i < n + (klen > 0); i++) {
		size_t kl = i < n ? (size_t)snprintf(key, sizeof(key), "k%u", i) : klen;
		if (i == n)
			memset(key, 'k', klen);
		pm_etcd_b64_encode(key, kl, k64);
		at += (size_t)snprintf(b + at, cap - at, "%s{\"key\":\"%s\",\"mod_revision\":\"%u\"}",
				       i ? "," : "", k64, i + 1);
	}
	at += (size_t)snprintf(b + at, cap - at, "],\"count\":\"%u\"}", n + (klen > 0));
	*len = at;
	return b;
}

static void test_answer_bounds(void)
{
	struct pm_etcd_kvs kvs;
	size_t len;
	char *b = range_body(PM_ETCD_KVS_MAX, 0, &len);
	EXPECT_RC(pm_etcd_ans_range(b, len, &kvs, LIT(err)), PM_ETCD_OK);
	CU_ASSERT(kvs.n == PM_ETCD_KVS_MAX && !strcmp(kvs.kv[PM_ETCD_KVS_MAX - 1].key, "k4095"));
	pm_etcd_kvs_free(&kvs);
	free(b);
	b = range_body(PM_ETCD_KVS_MAX + 1, 0, &len);
	EXPECT_RC(pm_etcd_ans_range(b, len, &kvs, LIT(err)), PM_ETCD_E_PROTO);
	CU_ASSERT(err_says("more than PM_ETCD_KVS_MAX") && kvs.n == 0 && !kvs.kv);
	free(b);
	/* a key at PM_ETCD_KEY_BYTES_MAX, one past it */
	b = range_body(1, PM_ETCD_KEY_BYTES_MAX, &len);
	EXPECT_RC(pm_etcd_ans_range(b, len, &kvs, LIT(err)), PM_ETCD_OK);
	CU_ASSERT(kvs.n == 2 && strlen(kvs.kv[1].key) == PM_ETCD_KEY_BYTES_MAX);
	pm_etcd_kvs_free(&kvs);
	free(b);
	b = range_body(1, PM_ETCD_KEY_BYTES_MAX + 1, &len);
	EXPECT_RC(pm_etcd_ans_range(b, len, &kvs, LIT(err)), PM_ETCD_E_PROTO);
	CU_ASSERT(err_says("kvs[1].key: 513 bytes"));
	free(b);
	/* a txn's ranges together past PM_ETCD_KVS_MAX */
	b = range_body(PM_ETCD_KVS_MAX / 2 + 1, 0, &len);
	const char *kvs_at = strstr(b, "\"kvs\"");
	size_t rlen = len - (size_t)(kvs_at - b) - 1; /* "kvs":[…],"count":"…" */
	size_t cap = 2 * rlen + 256;
	char *t = malloc(cap);
	snprintf(t, cap,
		 "{\"header\":{\"revision\":\"9\"},\"responses\":[{\"response_range\":{%.*s}},"
		 "{\"response_range\":{%.*s}}]}",
		 (int)rlen, kvs_at, (int)rlen, kvs_at);
	const struct pm_etcd_op two[] = { read_map[0], read_leader[0] };
	const struct pm_etcd_txn tt = { NULL, 0, NULL, two, 0, 2 };
	EXPECT_RC(pm_etcd_ans_txn(t, strlen(t), &tt, NULL, &kvs, LIT(err)), PM_ETCD_E_PROTO);
	CU_ASSERT(err_says("responses[1].response_range.kvs: more than PM_ETCD_KVS_MAX"));
	CU_ASSERT(kvs.n == 0 && !kvs.kv);
	free(t);
	free(b);
	/* an answer past PM_ETCD_MSG_BYTES_MAX is not parsed at all */
	b = malloc(PM_ETCD_MSG_BYTES_MAX + 1u);
	memset(b, ' ', PM_ETCD_MSG_BYTES_MAX + 1u);
	memcpy(b, LIT(EB_RANGE_NONE));
	EXPECT_RC(pm_etcd_ans_range(b, PM_ETCD_MSG_BYTES_MAX, &kvs, LIT(err)), PM_ETCD_OK);
	EXPECT_RC(pm_etcd_ans_range(b, PM_ETCD_MSG_BYTES_MAX + 1u, &kvs, LIT(err)), PM_ETCD_E_PROTO);
	CU_ASSERT(err_says("past PM_ETCD_MSG_BYTES_MAX"));
	free(b);
}

/* ---------------------------------------------------------------- watch messages */

static int watch_msg(const char *line, struct pm_etcd_wmsg *m)
{
	size_t len = strlen(line);
	if (len && line[len - 1] == '\n')
		len--; /* the splitter hands lines over without it */
	return pm_etcd_ans_watch(line, len, m, LIT(err));
}

static void test_watch_messages(void)
{
	struct pm_etcd_wmsg m;
	EXPECT_RC(watch_msg(EB_W_CREATED, &m), PM_ETCD_OK);
	CU_ASSERT(m.kind == PM_ETCD_W_CREATED && m.revision == 14 && m.n == 0);
	EXPECT_RC(watch_msg(EB_W_PUT, &m), PM_ETCD_OK);
	CU_ASSERT_FATAL(m.kind == PM_ETCD_W_EVENTS && m.n == 1);
	CU_ASSERT(!m.ev[0].deleted && !m.ev[0].has_prev && m.revision == 15);
	CU_ASSERT(kv_is(&m.ev[0].kv, "/pomai/c1/nodes/n9", "v1", 15, 15, 1, 4111120489558866486));
	pm_etcd_wmsg_free(&m);
	EXPECT_RC(watch_msg(EB_W_PUT_PREV, &m), PM_ETCD_OK);
	CU_ASSERT_FATAL(m.n == 1 && m.ev[0].has_prev);
	CU_ASSERT(kv_is(&m.ev[0].kv, "/pomai/c1/nodes/n9", "v2", 15, 16, 2, 4111120489558866486));
	CU_ASSERT(kv_is(&m.ev[0].prev, "/pomai/c1/nodes/n9", "v1", 15, 15, 1, 4111120489558866486));
	pm_etcd_wmsg_free(&m);
	EXPECT_RC(watch_msg(EB_W_DELETE, &m), PM_ETCD_OK);
	CU_ASSERT_FATAL(m.n == 1 && m.ev[0].deleted && m.ev[0].has_prev);
	CU_ASSERT(kv_is(&m.ev[0].kv, SLOTMAP, "", 0, 17, 0, 0));
	CU_ASSERT(kv_is(&m.ev[0].prev, SLOTMAP, "epoch=3", 12, 14, 3, 0));
	pm_etcd_wmsg_free(&m);
	EXPECT_RC(watch_msg(EB_W_EXPIRY, &m), PM_ETCD_OK);
	CU_ASSERT(m.n == 1 && m.ev[0].deleted && m.ev[0].prev.lease == 4111120489558866486);
	pm_etcd_wmsg_free(&m);
	EXPECT_RC(watch_msg(EB_W_PROGRESS, &m), PM_ETCD_OK);
	CU_ASSERT(m.kind == PM_ETCD_W_PROGRESS && m.revision == 18);
	/* enum values by number and by name */
	EXPECT_RC(watch_msg("{\"result\":{\"events\":[{\"type\":1,\"kv\":{\"key\":\"eA==\"}},"
			    "{\"type\":\"PUT\",\"kv\":{\"key\":\"eA==\"}},{\"type\":0,\"kv\":{\"key\":\"eA==\"}}]}}",
			    &m),
		  PM_ETCD_OK);
	CU_ASSERT(m.n == 3 && m.ev[0].deleted && !m.ev[1].deleted && !m.ev[2].deleted);
	pm_etcd_wmsg_free(&m);
	/* the ends: canceled (compacted, or a reason), a stream's error object */
	EXPECT_RC(watch_msg(EB_W_CANCELED, &m), PM_ETCD_E_HTTP);
	CU_ASSERT(err_says("compacted (compact_revision 15)"));
	EXPECT_RC(watch_msg("{\"result\":{\"header\":{},\"created\":true,\"canceled\":true,"
			    "\"cancel_reason\":\"permission denied\"}}", &m),
		  PM_ETCD_E_HTTP);
	CU_ASSERT(err_says("watch canceled by etcd: permission denied"));
	EXPECT_RC(watch_msg("{\"error\":{\"grpc_code\":5,\"http_code\":404,\"message\":\"gone\","
			    "\"http_status\":\"Not Found\"}}", &m),
		  PM_ETCD_E_HTTP);
	CU_ASSERT(err_says("gone (code 5)"));
	/* what etcd does not send */
	static const struct {
		const char *line, *says;
	} no[] = {
		{ "{\"result\":{\"fragment\":true}}", "fragment" },
		{ "{\"result\":{\"created\":true,\"events\":[{\"kv\":{\"key\":\"eA==\"}}]}}",
		  "events in a created" },
		{ "{\"result\":{\"events\":[{\"type\":\"EXPIRE\",\"kv\":{\"key\":\"eA==\"}}]}}",
		  "events[0].type" },
		{ "{\"result\":{\"events\":[{\"type\":2,\"kv\":{\"key\":\"eA==\"}}]}}", "events[0].type" },
		{ "{\"result\":{\"events\":{}}}", "events: not an array" },
		{ "{\"result\":{\"events\":[{\"type\":\"DELETE\"}]}}", "events[0].kv: missing" },
		{ "{\"result\":{\"events\":[{\"kv\":{\"key\":\"eA==\"},\"prev_kv\":{\"key\":\"%%%%\"}}]}}",
		  "events[0].prev_kv.key: not base64" },
		{ "{\"result\":{\"events\":[1]}}", "events[0]: not an object" },
		{ "{\"result\":{\"created\":\"yes\"}}", "result: " },
		{ "{\"result\":{\"canceled\":true,\"compact_revision\":\"x\"}}", "compact_revision" },
		{ "{\"result\":{\"watch_id\":{}}}", "watch_id" },
		{ "{\"result\":1}", "result: not an object" },
		{ "{}", "result: missing" },
		{ "{\"result\":{}", "not JSON" },
	};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		int rc = watch_msg(no[i].line, &m);
		if (rc != PM_ETCD_E_PROTO || !err_says(no[i].says))
			printf("\n  %s: rc %d '%s', want '%s'\n", no[i].line, rc, err, no[i].says);
		CU_ASSERT(rc == PM_ETCD_E_PROTO && err_says(no[i].says) && m.n == 0 && !m.ev);
	}
}

/* ---------------------------------------------------------------- the line splitter */

/* The lines handed over, each with its '\n' again. */
struct lines_seen {
	char *buf;
	size_t len, cap;
	uint32_t n;
	uint32_t stop_at; /* return 7 at this line (1-based; 0: never) */
};

static int line_seen(void *arg, const char *line, size_t len)
{
	struct lines_seen *s = arg;
	CU_ASSERT(len > 0 && !memchr(line, '\n', len));
	if (s->len + len + 1 <= s->cap) {
		memcpy(s->buf + s->len, line, len);
		s->buf[s->len + len] = '\n';
	}
	s->len += len + 1;
	return ++s->n == s->stop_at ? 7 : 0;
}

/* stream fed in pieces of 1..max bytes (max 0: whole); what feed returned last. */
static int feed_pieces(struct pm_etcd_lines *l, const char *stream, size_t len, size_t max,
		       struct lines_seen *s)
{
	int rc = 0;
	for (size_t at = 0; at < len && rc == 0;) {
		size_t n = max ? 1 + pm_test_rand(&seed) % max : len;
		n = n < len - at ? n : len - at;
		rc = pm_etcd_lines_feed(l, stream + at, n, line_seen, s);
		at += n;
	}
	return rc;
}

static void test_lines(void)
{
	static const char stream[] = EB_W_STREAM;
	static const size_t max[] = { 0, 1, 2, 7, 64, 4096 };
	struct pm_etcd_lines l;
	char buf[sizeof(stream)];
	CU_ASSERT_FATAL(pm_etcd_lines_init(&l, PM_ETCD_MSG_BYTES_MAX) == 0);
	for (size_t i = 0; i < sizeof(max) / sizeof(max[0]); i++)
		for (int round = 0; round < (max[i] > 1 ? 20 : 1); round++) {
			struct lines_seen s = { .buf = buf, .cap = sizeof(buf) };
			pm_etcd_lines_reset(&l);
			CU_ASSERT_EQUAL(feed_pieces(&l, LIT(stream), max[i], &s), 0);
			CU_ASSERT(s.n == 6 && s.len == sizeof(stream) - 1 &&
				  !memcmp(buf, stream, sizeof(stream) - 1));
		}
	/* empty lines are skipped; a line not ended yet is kept */
	struct lines_seen s = { .buf = buf, .cap = sizeof(buf) };
	pm_etcd_lines_reset(&l);
	CU_ASSERT_EQUAL(pm_etcd_lines_feed(&l, LIT("\n\nab\n\n{\"c"), line_seen, &s), 0);
	CU_ASSERT(s.n == 1 && s.len == 3 && !memcmp(buf, "ab\n", 3));
	CU_ASSERT_EQUAL(pm_etcd_lines_feed(&l, LIT("\"}\n"), line_seen, &s), 0);
	CU_ASSERT(s.n == 2 && !memcmp(buf + 3, "{\"c\"}\n", 6));
	/* fn's nonzero return: fed back, the bytes after that line not taken */
	s = (struct lines_seen){ .buf = buf, .cap = sizeof(buf), .stop_at = 2 };
	pm_etcd_lines_reset(&l);
	CU_ASSERT_EQUAL(pm_etcd_lines_feed(&l, LIT("a\nb\nc\n"), line_seen, &s), 7);
	CU_ASSERT_EQUAL(s.n, 2);
	pm_etcd_lines_free(&l);
}

/* A watch message of exactly len bytes (its value's base64 and spaces fill it). */
static char *message_of(size_t len)
{
	static const char head[] = "{\"result\":{\"header\":{\"revision\":\"5\"},\"events\":[{\"kv\":"
				   "{\"key\":\"eA==\",\"mod_revision\":\"5\",\"value\":\"";
	static const char tail[] = "\"}}]}}";
	char *m = malloc(len + 1);
	size_t fill = (len - (sizeof(head) - 1) - (sizeof(tail) - 1)) / 4 * 4;
	memcpy(m, head, sizeof(head) - 1);
	memset(m + sizeof(head) - 1, 'A', fill);
	memcpy(m + sizeof(head) - 1 + fill, tail, sizeof(tail) - 1);
	size_t at = sizeof(head) - 1 + fill + sizeof(tail) - 1;
	memset(m + at, ' ', len - at); /* JSON's whitespace after the object */
	m[len] = '\n';
	return m;
}

static int line_parsed(void *arg, const char *line, size_t len)
{
	struct pm_etcd_wmsg m;
	int rc = pm_etcd_ans_watch(line, len, &m, LIT(err));
	CU_ASSERT(rc == PM_ETCD_OK && m.n == 1 && m.ev[0].kv.value_len > 700000);
	pm_etcd_wmsg_free(&m);
	(*(uint32_t *)arg)++;
	return 0;
}

static void test_lines_bound(void)
{
	struct pm_etcd_lines l;
	struct lines_seen s;
	char buf[64];
	/* a small bound: a line of cap bytes is whole; one more byte ends it */
	CU_ASSERT_FATAL(pm_etcd_lines_init(&l, 16) == 0);
	s = (struct lines_seen){ .buf = buf, .cap = sizeof(buf) };
	CU_ASSERT_EQUAL(pm_etcd_lines_feed(&l, LIT("0123456789abcdef\n"), line_seen, &s), 0);
	CU_ASSERT_EQUAL(s.n, 1);
	CU_ASSERT_EQUAL(pm_etcd_lines_feed(&l, LIT("0123456789"), line_seen, &s), 0);
	CU_ASSERT_EQUAL(pm_etcd_lines_feed(&l, LIT("abcdef"), line_seen, &s), 0);
	CU_ASSERT_EQUAL(pm_etcd_lines_feed(&l, LIT("g"), line_seen, &s), -1);
	CU_ASSERT_EQUAL(pm_etcd_lines_feed(&l, LIT("\nok\n"), line_seen, &s), -1); /* sticky */
	CU_ASSERT_EQUAL(s.n, 1);
	pm_etcd_lines_reset(&l);
	CU_ASSERT_EQUAL(pm_etcd_lines_feed(&l, LIT("ok\n"), line_seen, &s), 0);
	CU_ASSERT_EQUAL(s.n, 2);
	pm_etcd_lines_free(&l);
	/* the watch's bound: a message of PM_ETCD_MSG_BYTES_MAX bytes is taken
	 * (in any pieces), one of a byte more ends the stream */
	CU_ASSERT_FATAL(pm_etcd_lines_init(&l, PM_ETCD_MSG_BYTES_MAX) == 0);
	char *m = message_of(PM_ETCD_MSG_BYTES_MAX);
	for (size_t max = 0; max <= 65536; max = max ? max * 16 : 1) {
		uint32_t n = 0;
		pm_etcd_lines_reset(&l);
		int rc = 0;
		for (size_t at = 0, len = PM_ETCD_MSG_BYTES_MAX + 1u; at < len && rc == 0;) {
			size_t k = max ? 1 + pm_test_rand(&seed) % (max * 4) : len;
			k = k < len - at ? k : len - at;
			rc = pm_etcd_lines_feed(&l, m + at, k, line_parsed, &n);
			at += k;
		}
		CU_ASSERT(rc == 0 && n == 1);
	}
	free(m);
	m = message_of(PM_ETCD_MSG_BYTES_MAX + 1u);
	uint32_t n = 0;
	pm_etcd_lines_reset(&l);
	CU_ASSERT_EQUAL(pm_etcd_lines_feed(&l, m, PM_ETCD_MSG_BYTES_MAX + 2u, line_parsed, &n), -1);
	CU_ASSERT_EQUAL(n, 0);
	free(m);
	pm_etcd_lines_free(&l);
}

/* ---------------------------------------------------------------- prefixes, open */

static bool prefix_end_is(const char *prefix, size_t cap, const char *want)
{
	char out[64] = "unset";
	pm_etcd_prefix_end(prefix, out, cap);
	return !strcmp(out, want);
}

static void test_prefix_end(void)
{
	CU_ASSERT(prefix_end_is("/pomai/c1/", 64, "/pomai/c10"));
	CU_ASSERT(prefix_end_is("/pomai/c1/nodes/", 64, "/pomai/c1/nodes0"));
	CU_ASSERT(prefix_end_is("a\xff", 64, "b"));
	CU_ASSERT(prefix_end_is("a\xfe\xff\xff", 64, "a\xff"));
	CU_ASSERT(prefix_end_is("\xff\xff", 64, ""));
	CU_ASSERT(prefix_end_is("", 64, ""));
	CU_ASSERT(prefix_end_is("abc", 4, "abd"));
	CU_ASSERT(prefix_end_is("abc", 3, "")); /* does not fit: "" */
}

static void test_open(void)
{
	static const char *const refused_lists[] = {
		"", " , ", "http://127.0.0.1:2379,", "127.0.0.1:2379", "etcd:2379",
		"ftp://127.0.0.1:2379", "http://127.0.0.1:2379/v3", "http://u@127.0.0.1:2379",
		"http://127.0.0.1:2379?x=1", "http://127.0.0.1:2379#f", "http://:2379",
		"http://a:1,http://a:2,http://a:3,http://a:4,http://a:5,http://a:6,http://a:7,"
		"http://a:8,http://a:9",
	};
	char why[256];
	CU_ASSERT(pm_etcd_open(NULL, why, sizeof(why)) == NULL);
	for (size_t i = 0; i < sizeof(refused_lists) / sizeof(refused_lists[0]); i++) {
		why[0] = '\0';
		struct pm_etcd *e = pm_etcd_open(refused_lists[i], why, sizeof(why));
		if (e || !why[0])
			printf("\n  '%s' taken (%s)\n", refused_lists[i], why);
		CU_ASSERT(!e && why[0]);
		pm_etcd_close(e);
	}
	char long_url[PM_ETCD_URL_BYTES_MAX + 8];
	snprintf(long_url, sizeof(long_url), "http://%0*d:1", PM_ETCD_URL_BYTES_MAX - 9, 0);
	CU_ASSERT(strlen(long_url) == PM_ETCD_URL_BYTES_MAX);
	CU_ASSERT(pm_etcd_open(long_url, why, sizeof(why)) == NULL);
	/* taken: spaces and a trailing '/' trimmed, 8 endpoints */
	struct pm_etcd *e = pm_etcd_open(" http://127.0.0.1:1/ ,https://localhost:2,http://a:3,"
					 "http://a:4,http://a:5,http://a:6,http://a:7,http://a:8",
					 why, sizeof(why));
	CU_ASSERT_FATAL(e != NULL);
	CU_ASSERT_STRING_EQUAL(pm_etcd_endpoint(e), "http://127.0.0.1:1");
	CU_ASSERT_STRING_EQUAL(pm_etcd_error(e), "");
	CU_ASSERT(!pm_etcd_watching(e));
	/* bad arguments fail before any I/O, naming the call */
	struct pm_etcd_kvs kvs;
	int64_t rev;
	CU_ASSERT_EQUAL(pm_etcd_range(e, "k", NULL, &kvs, 0), PM_ETCD_E_ARG);
	CU_ASSERT(strstr(pm_etcd_error(e), "http://127.0.0.1:1/v3/kv/range: a timeout of 0 ms") != NULL);
	CU_ASSERT_EQUAL(pm_etcd_put(e, "", "v", 1, 0, NULL, 1000), PM_ETCD_E_ARG);
	CU_ASSERT(strstr(pm_etcd_error(e), "/v3/kv/put: key: no key") != NULL);
	CU_ASSERT_EQUAL(pm_etcd_watch_wait(e, 0, NULL, NULL, &rev), PM_ETCD_E_ARG);
	CU_ASSERT(strstr(pm_etcd_error(e), "no watch started") != NULL);
	CU_ASSERT_EQUAL(pm_etcd_watch_start(e, NULL, NULL, 0), PM_ETCD_E_ARG);
	CU_ASSERT(!pm_etcd_watching(e));
	CU_ASSERT_STRING_EQUAL(pm_etcd_endpoint(e), "http://127.0.0.1:1"); /* no I/O: not moved */
	pm_etcd_close(e);
}

/* ---------------------------------------------------------------- live: helpers */

/* A call's timeout against the live etcd: every call answers in ms; the
 * margin is for a loaded 2-core machine running the sanitizer build. */
#define CALL_MS 5000
/* The deadline for an event, a watch's end, a notification to come. */
#define WAIT_MS 15000
/* One wait's bound inside a loop polling for an event. */
#define TURN_MS 200
/* A call's timeout against a stopped etcd, and how much later than that it
 * may return (libcurl's timer, scheduling on a loaded machine, ASan). */
#define STOPPED_CALL_MS 400
#define TIMEOUT_SLACK_MS 1500
/* etcd's minimum lease TTL (heartbeat 100 ms, election 1000 ms): the
 * fastest expiry. */
#define LEASE_MIN_TTL_S 2
/* A value whose base64 (933,336 bytes) fits one answer, two of which do not. */
#define BIG_VALUE_BYTES 700000u

static struct etcd_proc etcd;
static char pfx[64]; /* /test_etcd/<pid>/: this run's keys */

/* pfx + name into out (PM_ETCD_KEY_BYTES_MAX + 1). */
static const char *key_of(char *out, const char *name)
{
	snprintf(out, PM_ETCD_KEY_BYTES_MAX + 1, "%s%s", pfx, name);
	return out;
}

static struct pm_etcd *open_list(const char *list)
{
	char why[256];
	struct pm_etcd *e = pm_etcd_open(list, why, sizeof(why));
	if (!e)
		printf("\n  pm_etcd_open(%s): %s\n", list, why);
	return e;
}

/* A call's rc, with the handle's error line printed on a mismatch. */
#define LIVE_RC(e, call, want)                                                             \
	do {                                                                               \
		int rc_ = (call);                                                          \
		if (rc_ != (want))                                                         \
			printf("\n  %s:%d: rc %d, want %d (%s)\n", __FILE__, __LINE__, rc_, \
			       (int)(want), pm_etcd_error(e));                             \
		CU_ASSERT_EQUAL(rc_, want);                                                \
	} while (0)

/* Events a watch handed over, copied. */
#define SEEN_MAX 64u
struct seen_ev {
	bool deleted, has_prev;
	char key[PM_ETCD_KEY_BYTES_MAX + 1];
	char value[64], prev[64];
	size_t value_len;
	int64_t mod, lease;
};
struct seen {
	struct seen_ev ev[SEEN_MAX];
	uint32_t n;
};

static void on_event(void *arg, const struct pm_etcd_event *ev)
{
	struct seen *s = arg;
	if (s->n == SEEN_MAX)
		return;
	struct seen_ev *x = &s->ev[s->n++];
	x->deleted = ev->deleted;
	x->has_prev = ev->prev_kv != NULL;
	snprintf(x->key, sizeof(x->key), "%s", ev->kv->key);
	snprintf(x->value, sizeof(x->value), "%s", (const char *)ev->kv->value);
	snprintf(x->prev, sizeof(x->prev), "%s", ev->prev_kv ? (const char *)ev->prev_kv->value : "");
	x->value_len = ev->kv->value_len;
	x->mod = ev->kv->mod_revision;
	x->lease = ev->prev_kv && ev->deleted ? ev->prev_kv->lease : ev->kv->lease;
}

/* Wait on e's watch until it hands over an event of key (of that kind):
 * the event, or NULL (the deadline, or the watch ended: *rc says how). */
static const struct seen_ev *await_event(struct pm_etcd *e, struct seen *s, const char *key,
					 bool deleted, int64_t *rev, int *rc)
{
	uint32_t from = s->n;
	for (uint64_t deadline = proc_now_ms() + WAIT_MS; proc_now_ms() < deadline;) {
		*rc = pm_etcd_watch_wait(e, TURN_MS, on_event, s, rev);
		for (uint32_t i = from; i < s->n; i++)
			if (!strcmp(s->ev[i].key, key) && s->ev[i].deleted == deleted)
				return &s->ev[i];
		from = s->n;
		if (*rc < 0)
			return NULL;
	}
	return NULL;
}

/* Wait until the watch is on (its created message, start_revision 0). */
static bool await_created(struct pm_etcd *e, int64_t *rev)
{
	*rev = 0;
	for (uint64_t deadline = proc_now_ms() + WAIT_MS; proc_now_ms() < deadline;)
		if (pm_etcd_watch_wait(e, TURN_MS, NULL, NULL, rev) < 0 || *rev > 0)
			return *rev > 0;
	return false;
}

static int live_init(void)
{
	snprintf(pfx, sizeof(pfx), "/test_etcd/%d/", (int)getpid());
	if (!etcd_proc_start(&etcd)) {
		printf("etcd did not start: %s\n", etcd.proc.out);
		return -1;
	}
	return 0;
}

static int live_clean(void)
{
	if (etcd.proc.pid > 0 && !etcd_proc_stop(&etcd))
		printf("etcd did not stop on SIGTERM in time\n");
	etcd_proc_remove(&etcd);
	return 0;
}

/* ---------------------------------------------------------------- a fake etcd */

/* A server of the test's own on a free loopback port: it accepts one
 * connection per canned answer, reads the request, writes the answer's bytes
 * as they are (status line, headers, body; chunked or not) and closes. What
 * etcd does not do on purpose (a 503, a garbled body, a stream cut or ended,
 * a burst of messages) comes from here. */
#define FAKE_ANSWERS_MAX 8u
/* How long it waits for a request, or for the client to go after the answer. */
#define FAKE_IO_MS 5000
/* Messages of the burst: more than one 16 KiB piece of libcurl's holds. */
#define BURST_EVENTS 300u

struct fake {
	int lfd;
	uint16_t port;
	char url[64];
	pthread_t thread;
	char *answer[FAKE_ANSWERS_MAX];
	size_t len[FAKE_ANSWERS_MAX];
	uint32_t n, served;
};

/* Read a request whole (headers, then Content-Length bytes). */
static bool fake_read_request(int fd)
{
	char buf[8192];
	size_t n = 0;
	for (uint64_t deadline = proc_now_ms() + FAKE_IO_MS; proc_now_ms() < deadline;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, FAKE_IO_MS) != 1)
			return false;
		ssize_t r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
		if (r <= 0)
			return false;
		n += (size_t)r;
		buf[n] = '\0';
		const char *end = strstr(buf, "\r\n\r\n"), *cl = strcasestr(buf, "Content-Length:");
		if (end && (!cl || n >= (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10)))
			return true;
		if (n == sizeof(buf) - 1)
			return false;
	}
	return false;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	for (uint32_t i = 0; i < f->n; i++) {
		struct pollfd pf = { .fd = f->lfd, .events = POLLIN };
		if (poll(&pf, 1, FAKE_IO_MS * 4) != 1)
			break;
		int c = accept(f->lfd, NULL, NULL);
		if (c < 0)
			break;
		if (fake_read_request(c) && proc_send_all(c, f->answer[i], f->len[i]))
			f->served++;
		shutdown(c, SHUT_WR);
		char sink[4096]; /* until the client goes: no RST for what it still sends */
		pf = (struct pollfd){ .fd = c, .events = POLLIN };
		while (poll(&pf, 1, FAKE_IO_MS) == 1 && recv(c, sink, sizeof(sink), 0) > 0)
			;
		close(c);
	}
	return NULL;
}

/* An answer: a status line, headers and body as given. */
static void fake_add(struct fake *f, const char *head, const char *body, size_t blen)
{
	size_t hl = strlen(head);
	char *a = malloc(hl + blen);
	memcpy(a, head, hl);
	memcpy(a + hl, body, blen);
	f->answer[f->n] = a;
	f->len[f->n++] = hl + blen;
}

/* A unary answer with a Content-Length. */
static void fake_unary(struct fake *f, int status, const char *body, size_t blen)
{
	char head[256];
	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n",
		 status, blen);
	fake_add(f, head, body, blen);
}

/* A chunked answer: body cut into chunks of `piece` bytes (0: one). */
static void fake_chunked(struct fake *f, int status, const char *body, size_t piece, bool end)
{
	size_t blen = strlen(body), cap = blen * 2 + 64 + (blen / (piece ? piece : 1) + 1) * 16;
	char *c = malloc(cap), head[256];
	size_t at = 0;
	for (size_t off = 0; off < blen;) {
		size_t k = piece && piece < blen - off ? piece : blen - off;
		at += (size_t)snprintf(c + at, cap - at, "%zx\r\n", k);
		memcpy(c + at, body + off, k);
		at += k;
		memcpy(c + at, "\r\n", 2);
		at += 2;
		off += k;
	}
	if (end)
		at += (size_t)snprintf(c + at, cap - at, "0\r\n\r\n");
	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n",
		 status);
	fake_add(f, head, c, at);
	free(c);
}

static bool fake_start(struct fake *f)
{
	f->lfd = proc_tcp_listen(0, &f->port);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", f->port);
	return f->lfd >= 0 && pthread_create(&f->thread, NULL, fake_main, f) == 0;
}

/* Every answer served, the thread joined. */
static bool fake_done(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
	for (uint32_t i = 0; i < f->n; i++)
		free(f->answer[i]);
	return f->served == f->n;
}

static void test_fake_unary(void)
{
	struct fake f = { 0 };
	struct pm_etcd_kvs kvs;
	char list[160], dead_url[64];
	int64_t ttl, rev;
	uint16_t dead = proc_port_pick(SOCK_STREAM, 0);
	fake_unary(&f, 200, LIT("not json"));
	fake_unary(&f, 404, LIT(EB_NOT_FOUND));
	fake_chunked(&f, 200, EB_KEEPALIVE_DEAD, 7, true);
	fake_unary(&f, 200, LIT(EB_KEEPALIVE)); /* a keepalive's answer to a put */
	fake_unary(&f, 503, LIT("{\"error\":\"etcdserver: no leader\",\"code\":14}"));
	CU_ASSERT_FATAL(dead && fake_start(&f));
	snprintf(dead_url, sizeof(dead_url), "http://127.0.0.1:%u", dead);
	snprintf(list, sizeof(list), "%s,%s", f.url, dead_url);
	struct pm_etcd *e = open_list(list);
	CU_ASSERT_FATAL(e != NULL);
	LIVE_RC(e, pm_etcd_range(e, "k", NULL, &kvs, CALL_MS), PM_ETCD_E_PROTO);
	CU_ASSERT(strstr(pm_etcd_error(e), "/v3/kv/range: not JSON") != NULL);
	LIVE_RC(e, pm_etcd_range(e, "k", NULL, &kvs, CALL_MS), PM_ETCD_E_HTTP);
	CU_ASSERT(strstr(pm_etcd_error(e), "/v3/kv/range: HTTP 404: Not Found") != NULL);
	LIVE_RC(e, pm_etcd_keepalive(e, 7001, &ttl, CALL_MS), PM_ETCD_LEASE_GONE);
	LIVE_RC(e, pm_etcd_put(e, "k", "v", 1, 0, &rev, CALL_MS), PM_ETCD_E_PROTO);
	CU_ASSERT(strstr(pm_etcd_error(e), "/v3/kv/put: header: missing") != NULL);
	CU_ASSERT_STRING_EQUAL(pm_etcd_endpoint(e), f.url); /* answers, however bad: it stays */
	LIVE_RC(e, pm_etcd_grant(e, 5, &rev, &ttl, CALL_MS), PM_ETCD_E_HTTP);
	CU_ASSERT(strstr(pm_etcd_error(e), "HTTP 503: etcdserver: no leader (code 14)") != NULL);
	CU_ASSERT_STRING_EQUAL(pm_etcd_endpoint(e), dead_url); /* moved on */
	CU_ASSERT(fake_done(&f));
	pm_etcd_close(e);
}

/* A burst of n event lines, mod revisions 1..n, then what follows. */
static char *burst_of(uint32_t n, const char *after)
{
	size_t cap = (size_t)n * 256u + strlen(after) + sizeof(EB_W_CREATED);
	char *s = malloc(cap);
	size_t at = (size_t)snprintf(s, cap, "%s", EB_W_CREATED);
	for (uint32_t i = 1; i <= n; i++)
		at += (size_t)snprintf(s + at, cap - at,
				       "{\"result\":{\"header\":{\"revision\":\"%u\"},\"events\":[{\"kv\":"
				       "{\"key\":\"L3BvbWFpL2MxL2Iv\",\"mod_revision\":\"%u\",\"value\":"
				       "\"cGFkZGluZyBwYWRkaW5nIHBhZGRpbmcgcGFkZGluZw==\"}}]}}\n",
				       i, i);
	snprintf(s + at, cap - at, "%s", after);
	return s;
}

/* Wait until the watch ends: its rc, the events in s. */
static int watch_to_end(struct pm_etcd *e, struct seen *s, int64_t *rev)
{
	int rc = 0;
	for (uint64_t deadline = proc_now_ms() + WAIT_MS; rc >= 0 && proc_now_ms() < deadline;)
		rc = pm_etcd_watch_wait(e, TURN_MS, on_event, s, rev);
	return rc;
}

static void test_fake_watch(void)
{
	struct fake f = { 0 };
	struct seen *s = calloc(1, sizeof(*s));
	int64_t rev = 0;
	/* a burst (many lines per piece: the write callback pauses), chunks cut
	 * mid-line, then a malformed message: every event before it, then E_PROTO */
	char *burst = burst_of(BURST_EVENTS, "{\"result\":{\"events\":[{\"kv\":{\"key\":\"!!\"}}]}}\n");
	fake_chunked(&f, 200, burst, 4093, false);
	free(burst);
	/* a stream's error object; a refused create request; etcd closing the
	 * stream; the stream cut */
	fake_chunked(&f, 200,
		     EB_W_CREATED
		     "{\"error\":{\"grpc_code\":14,\"message\":\"etcdserver: no leader\"}}\n",
		     0, false);
	fake_unary(&f, 500, LIT(EB_WATCH_BAD));
	fake_chunked(&f, 200, EB_W_CREATED EB_W_PUT, 0, true);
	fake_chunked(&f, 200, EB_W_CREATED EB_W_PUT, 0, false);
	CU_ASSERT_FATAL(s && fake_start(&f));
	struct pm_etcd *e = open_list(f.url);
	CU_ASSERT_FATAL(e != NULL);
	struct {
		uint32_t events;
		int rc;
		const char *says;
	} want[] = {
		{ BURST_EVENTS, PM_ETCD_E_PROTO, "/v3/watch: result.events[0].kv.key: not base64" },
		{ 0, PM_ETCD_E_HTTP, "/v3/watch: etcdserver: no leader (code 14)" },
		{ 0, PM_ETCD_E_HTTP, "/v3/watch: HTTP 500: illegal base64 data at input byte 0 (code 2)" },
		{ 1, PM_ETCD_E_NET, "/v3/watch: the watch stream ended (etcd closed it)" },
		{ 1, PM_ETCD_E_NET, "(curl 18)" },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		s->n = 0;
		LIVE_RC(e, pm_etcd_watch_start(e, "/pomai/c1/", "/pomai/c10", 0), PM_ETCD_OK);
		LIVE_RC(e, watch_to_end(e, s, &rev), want[i].rc);
		uint32_t got = s->n; /* at most SEEN_MAX kept */
		CU_ASSERT(strstr(pm_etcd_error(e), want[i].says) != NULL);
		CU_ASSERT(!pm_etcd_watching(e));
		if (i == 0) {
			CU_ASSERT(rev == BURST_EVENTS && got == SEEN_MAX);
			for (uint32_t k = 0; k < got; k++)
				CU_ASSERT_EQUAL(s->ev[k].mod, (int64_t)k + 1);
		} else {
			CU_ASSERT_EQUAL(got, want[i].events);
		}
	}
	CU_ASSERT(fake_done(&f));
	free(s);
	pm_etcd_close(e);
}

/* ---------------------------------------------------------------- live: leases, kv, txn */

static void test_live_lease(void)
{
	struct pm_etcd *e = open_list(etcd_proc_url(&etcd));
	char k[PM_ETCD_KEY_BYTES_MAX + 1];
	int64_t id = 0, id2 = 0, ttl = 0;
	CU_ASSERT_FATAL(e != NULL);
	LIVE_RC(e, pm_etcd_grant(e, 5, &id, &ttl, CALL_MS), PM_ETCD_OK);
	CU_ASSERT(id > 0 && ttl == 5);
	CU_ASSERT_STRING_EQUAL(pm_etcd_error(e), "");
	LIVE_RC(e, pm_etcd_grant(e, 1, &id2, &ttl, CALL_MS), PM_ETCD_OK);
	CU_ASSERT(id2 > 0 && id2 != id && ttl == LEASE_MIN_TTL_S); /* raised to etcd's minimum */
	LIVE_RC(e, pm_etcd_keepalive(e, id, &ttl, CALL_MS), PM_ETCD_OK);
	CU_ASSERT_EQUAL(ttl, 5);
	LIVE_RC(e, pm_etcd_put(e, key_of(k, "lease/a"), "x", 1, id, NULL, CALL_MS), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_revoke(e, id, CALL_MS), PM_ETCD_OK);
	/* revoked: its key went with it, and every use of it is LEASE_GONE */
	struct pm_etcd_kvs kvs;
	LIVE_RC(e, pm_etcd_range(e, k, NULL, &kvs, CALL_MS), PM_ETCD_OK);
	CU_ASSERT_EQUAL(kvs.n, 0);
	LIVE_RC(e, pm_etcd_keepalive(e, id, &ttl, CALL_MS), PM_ETCD_LEASE_GONE);
	CU_ASSERT(ttl == 0 && strstr(pm_etcd_error(e), "/v3/lease/keepalive: lease "));
	LIVE_RC(e, pm_etcd_revoke(e, id, CALL_MS), PM_ETCD_LEASE_GONE);
	CU_ASSERT(strstr(pm_etcd_error(e), "requested lease not found (code 5)") != NULL);
	LIVE_RC(e, pm_etcd_put(e, k, "x", 1, id, NULL, CALL_MS), PM_ETCD_LEASE_GONE);
	LIVE_RC(e, pm_etcd_revoke(e, id2, CALL_MS), PM_ETCD_OK);
	pm_etcd_close(e);
}

static void test_live_kv(void)
{
	struct pm_etcd *e = open_list(etcd_proc_url(&etcd));
	char a[PM_ETCD_KEY_BYTES_MAX + 1], b[PM_ETCD_KEY_BYTES_MAX + 1], c[PM_ETCD_KEY_BYTES_MAX + 1];
	char p[PM_ETCD_KEY_BYTES_MAX + 1], end[PM_ETCD_KEY_BYTES_MAX + 1];
	static const char bin[] = "\x00\xff\n\"\\ b"; /* bytes JSON and C strings find awkward */
	struct pm_etcd_kvs kvs;
	int64_t r1 = 0, r2 = 0, r3 = 0, deleted = -1;
	CU_ASSERT_FATAL(e != NULL);
	key_of(p, "kv/");
	pm_etcd_prefix_end(p, end, sizeof(end));
	LIVE_RC(e, pm_etcd_put(e, key_of(a, "kv/a"), "va", 2, 0, &r1, CALL_MS), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_put(e, key_of(b, "kv/b"), bin, sizeof(bin) - 1, 0, &r2, CALL_MS), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_put(e, key_of(c, "kv/c"), NULL, 0, 0, &r3, CALL_MS), PM_ETCD_OK);
	CU_ASSERT(r1 > 0 && r2 == r1 + 1 && r3 == r2 + 1);
	LIVE_RC(e, pm_etcd_range(e, a, NULL, &kvs, CALL_MS), PM_ETCD_OK);
	CU_ASSERT(kvs.n == 1 && kvs.revision == r3 && kv_is(&kvs.kv[0], a, "va", r1, r1, 1, 0));
	pm_etcd_kvs_free(&kvs);
	LIVE_RC(e, pm_etcd_range(e, p, end, &kvs, CALL_MS), PM_ETCD_OK);
	CU_ASSERT_FATAL(kvs.n == 3);
	CU_ASSERT(!strcmp(kvs.kv[0].key, a) && !strcmp(kvs.kv[1].key, b) && !strcmp(kvs.kv[2].key, c));
	CU_ASSERT(kvs.kv[1].value_len == sizeof(bin) - 1 &&
		  !memcmp(kvs.kv[1].value, bin, sizeof(bin) - 1));
	CU_ASSERT(kvs.kv[2].value_len == 0 && kvs.kv[2].value[0] == '\0');
	pm_etcd_kvs_free(&kvs);
	/* a second put: version 2, the create revision kept */
	LIVE_RC(e, pm_etcd_put(e, a, "va2", 3, 0, &r3, CALL_MS), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_range(e, a, NULL, &kvs, CALL_MS), PM_ETCD_OK);
	CU_ASSERT(kvs.n == 1 && kv_is(&kvs.kv[0], a, "va2", r1, r3, 2, 0));
	pm_etcd_kvs_free(&kvs);
	/* [a, c): a and b */
	LIVE_RC(e, pm_etcd_range(e, a, c, &kvs, CALL_MS), PM_ETCD_OK);
	CU_ASSERT_EQUAL(kvs.n, 2);
	pm_etcd_kvs_free(&kvs);
	LIVE_RC(e, pm_etcd_delete(e, a, NULL, &deleted, CALL_MS), PM_ETCD_OK);
	CU_ASSERT_EQUAL(deleted, 1);
	LIVE_RC(e, pm_etcd_delete(e, a, NULL, &deleted, CALL_MS), PM_ETCD_OK);
	CU_ASSERT_EQUAL(deleted, 0);
	LIVE_RC(e, pm_etcd_delete(e, p, end, &deleted, CALL_MS), PM_ETCD_OK);
	CU_ASSERT_EQUAL(deleted, 2);
	LIVE_RC(e, pm_etcd_range(e, p, end, &kvs, CALL_MS), PM_ETCD_OK);
	CU_ASSERT(kvs.n == 0 && kvs.revision > r3);
	/* etcd's own refusals come back as E_HTTP with its words */
	const struct pm_etcd_op twice[] = { { .kind = PM_ETCD_PUT, .key = a, .value = "1",
					      .value_len = 1 },
					    { .kind = PM_ETCD_PUT, .key = a, .value = "2", .value_len = 1 } };
	const struct pm_etcd_txn dup = { NULL, 0, twice, NULL, 2, 0 };
	LIVE_RC(e, pm_etcd_txn(e, &dup, NULL, NULL, CALL_MS), PM_ETCD_E_HTTP);
	CU_ASSERT(strstr(pm_etcd_error(e),
			 "HTTP 400: etcdserver: duplicate key given in txn request") != NULL);
	pm_etcd_close(e);
}

/* The campaign of cluster-plan §2.6 for leader key k under lease: put if
 * absent, else the holder. */
static int campaign(struct pm_etcd *e, const char *k, const char *node, int64_t lease,
		    int64_t *rev, struct pm_etcd_kvs *holder)
{
	const struct pm_etcd_cmp cmp[] = { { .key = k, .target = PM_ETCD_CREATE } };
	const struct pm_etcd_op put[] = { { .kind = PM_ETCD_PUT, .key = k, .value = node,
					    .value_len = strlen(node), .lease = lease } };
	const struct pm_etcd_op get[] = { { .kind = PM_ETCD_RANGE, .key = k } };
	const struct pm_etcd_txn t = { cmp, 1, put, get, 1, 1 };
	return pm_etcd_txn(e, &t, rev, holder, CALL_MS);
}

static void test_live_txn(void)
{
	struct pm_etcd *e = open_list(etcd_proc_url(&etcd));
	char leader[PM_ETCD_KEY_BYTES_MAX + 1], map[PM_ETCD_KEY_BYTES_MAX + 1];
	struct pm_etcd_kvs kvs;
	int64_t la, lb, ttl, won = 0, rev = 0, m1 = 0, m2 = 0;
	CU_ASSERT_FATAL(e != NULL);
	key_of(leader, "sets/s1/leader");
	key_of(map, "slotmap");
	LIVE_RC(e, pm_etcd_grant(e, 5, &la, &ttl, CALL_MS), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_grant(e, 5, &lb, &ttl, CALL_MS), PM_ETCD_OK);
	/* A wins; B loses and is told who holds it, since when, under which lease */
	LIVE_RC(e, campaign(e, leader, "node=a", la, &won, &kvs), PM_ETCD_OK);
	CU_ASSERT(won > 0 && kvs.n == 0);
	pm_etcd_kvs_free(&kvs);
	LIVE_RC(e, campaign(e, leader, "node=b", lb, &rev, &kvs), PM_ETCD_FAILED);
	CU_ASSERT_STRING_EQUAL(pm_etcd_error(e), "");
	CU_ASSERT(rev == won && kvs.n == 1 && kv_is(&kvs.kv[0], leader, "node=a", won, won, 1, la));
	pm_etcd_kvs_free(&kvs);
	/* the map: created once; updated with MOD == what was read; a stale
	 * writer gets the current map back */
	const struct pm_etcd_op put1[] = { { .kind = PM_ETCD_PUT, .key = map, .value = "epoch=1",
					     .value_len = 7 } };
	const struct pm_etcd_op put2[] = { { .kind = PM_ETCD_PUT, .key = map, .value = "epoch=2",
					     .value_len = 7 } };
	const struct pm_etcd_op get_map[] = { { .kind = PM_ETCD_RANGE, .key = map } };
	struct pm_etcd_cmp absent[] = { { .key = map, .target = PM_ETCD_CREATE } };
	const struct pm_etcd_txn create = { absent, 1, put1, get_map, 1, 1 };
	LIVE_RC(e, pm_etcd_txn(e, &create, &m1, NULL, CALL_MS), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_txn(e, &create, &rev, &kvs, CALL_MS), PM_ETCD_FAILED);
	CU_ASSERT(kvs.n == 1 && kv_is(&kvs.kv[0], map, "epoch=1", m1, m1, 1, 0));
	pm_etcd_kvs_free(&kvs);
	struct pm_etcd_cmp mod[] = { { .key = map, .target = PM_ETCD_MOD, .number = m1 } };
	const struct pm_etcd_txn update = { mod, 1, put2, get_map, 1, 1 };
	LIVE_RC(e, pm_etcd_txn(e, &update, &m2, NULL, CALL_MS), PM_ETCD_OK);
	CU_ASSERT(m2 > m1);
	LIVE_RC(e, pm_etcd_txn(e, &update, &rev, &kvs, CALL_MS), PM_ETCD_FAILED);
	CU_ASSERT(rev == m2 && kvs.n == 1 && kv_is(&kvs.kv[0], map, "epoch=2", m1, m2, 2, 0));
	pm_etcd_kvs_free(&kvs);
	/* leader-only: my election AND the map as read; the failure branch
	 * hands back both, in order */
	struct pm_etcd_cmp guard[] = { { .key = leader, .target = PM_ETCD_CREATE, .number = won + 1000 },
				       { .key = map, .target = PM_ETCD_MOD, .number = m2 } };
	const struct pm_etcd_op both[] = { get_map[0], { .kind = PM_ETCD_RANGE, .key = leader } };
	const struct pm_etcd_txn guarded = { guard, 2, put1, both, 1, 2 };
	LIVE_RC(e, pm_etcd_txn(e, &guarded, &rev, &kvs, CALL_MS), PM_ETCD_FAILED);
	CU_ASSERT(kvs.n == 2 && !strcmp(kvs.kv[0].key, map) && !strcmp(kvs.kv[1].key, leader));
	pm_etcd_kvs_free(&kvs);
	guard[0].number = won;
	LIVE_RC(e, pm_etcd_txn(e, &guarded, &rev, &kvs, CALL_MS), PM_ETCD_OK);
	CU_ASSERT(rev > m2 && kvs.n == 0);
	/* A's lease revoked: its key goes, B wins; a campaign under the dead
	 * lease is an error, never a silent loss */
	LIVE_RC(e, pm_etcd_revoke(e, la, CALL_MS), PM_ETCD_OK);
	LIVE_RC(e, campaign(e, leader, "node=a", la, &rev, NULL), PM_ETCD_LEASE_GONE);
	CU_ASSERT(strstr(pm_etcd_error(e),
			 "/v3/kv/txn: HTTP 404: etcdserver: requested lease not found") != NULL);
	LIVE_RC(e, campaign(e, leader, "node=b", lb, &rev, NULL), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_revoke(e, lb, CALL_MS), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_delete(e, map, NULL, NULL, CALL_MS), PM_ETCD_OK);
	pm_etcd_close(e);
}

/* ---------------------------------------------------------------- live: the watch */

/* The store's revision now (a range's header). */
static int64_t store_revision(struct pm_etcd *e)
{
	struct pm_etcd_kvs kvs;
	int64_t rev = pm_etcd_range(e, "/", NULL, &kvs, CALL_MS) == PM_ETCD_OK ? kvs.revision : -1;
	pm_etcd_kvs_free(&kvs);
	return rev;
}

static void test_live_watch(void)
{
	struct pm_etcd *e = open_list(etcd_proc_url(&etcd));
	char p[PM_ETCD_KEY_BYTES_MAX + 1], end[PM_ETCD_KEY_BYTES_MAX + 1];
	char a[PM_ETCD_KEY_BYTES_MAX + 1], l[PM_ETCD_KEY_BYTES_MAX + 1], out[PM_ETCD_KEY_BYTES_MAX + 1];
	struct seen *s = calloc(1, sizeof(*s));
	const struct seen_ev *ev;
	int64_t rev = 0, r1 = 0, r2 = 0, lease, ttl;
	int rc;
	CU_ASSERT_FATAL(e != NULL && s != NULL);
	key_of(p, "w/");
	pm_etcd_prefix_end(p, end, sizeof(end));
	LIVE_RC(e, pm_etcd_watch_start(e, p, end, 0), PM_ETCD_OK);
	CU_ASSERT(pm_etcd_watching(e));
	CU_ASSERT_FATAL(await_created(e, &rev));
	/* the handle's other calls run between waits */
	LIVE_RC(e, pm_etcd_put(e, key_of(a, "w/a"), "v1", 2, 0, &r1, CALL_MS), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_put(e, key_of(out, "elsewhere"), "x", 1, 0, NULL, CALL_MS), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_put(e, a, "v2", 2, 0, &r2, CALL_MS), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_delete(e, a, NULL, NULL, CALL_MS), PM_ETCD_OK);
	ev = await_event(e, s, a, true, &rev, &rc);
	CU_ASSERT_FATAL(ev != NULL);
	CU_ASSERT_EQUAL_FATAL(s->n, 3); /* nothing of the key outside the range */
	CU_ASSERT(!s->ev[0].deleted && !s->ev[0].has_prev && !strcmp(s->ev[0].value, "v1") &&
		  s->ev[0].mod == r1);
	CU_ASSERT(!s->ev[1].deleted && s->ev[1].has_prev && !strcmp(s->ev[1].value, "v2") &&
		  !strcmp(s->ev[1].prev, "v1") && s->ev[1].mod == r2);
	CU_ASSERT(s->ev[2].deleted && s->ev[2].has_prev && !strcmp(s->ev[2].prev, "v2") &&
		  s->ev[2].value_len == 0 && s->ev[2].mod > r2);
	CU_ASSERT_EQUAL(rev, s->ev[2].mod);
	/* a lease's expiry: an ordinary DELETE of its key, then LEASE_GONE */
	LIVE_RC(e, pm_etcd_grant(e, LEASE_MIN_TTL_S, &lease, &ttl, CALL_MS), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_put(e, key_of(l, "w/leased"), "n9", 2, lease, NULL, CALL_MS), PM_ETCD_OK);
	uint64_t t0 = proc_now_ms();
	ev = await_event(e, s, l, false, &rev, &rc);
	CU_ASSERT(ev && ev->lease == lease);
	ev = await_event(e, s, l, true, &rev, &rc);
	CU_ASSERT_FATAL(ev != NULL);
	CU_ASSERT(ev->lease == lease && !strcmp(ev->prev, "n9"));
	CU_ASSERT(proc_now_ms() - t0 >= (LEASE_MIN_TTL_S - 1) * 1000u); /* not before its TTL */
	LIVE_RC(e, pm_etcd_keepalive(e, lease, &ttl, CALL_MS), PM_ETCD_LEASE_GONE);
	LIVE_RC(e, pm_etcd_put(e, l, "n9", 2, lease, NULL, CALL_MS), PM_ETCD_LEASE_GONE);
	/* progress notifications move *revision past writes outside the range */
	LIVE_RC(e, pm_etcd_put(e, out, "y", 1, 0, NULL, CALL_MS), PM_ETCD_OK);
	int64_t now = store_revision(e);
	for (uint64_t deadline = proc_now_ms() + WAIT_MS; rev < now && proc_now_ms() < deadline;)
		CU_ASSERT_FATAL(pm_etcd_watch_wait(e, TURN_MS, on_event, s, &rev) >= 0);
	CU_ASSERT_EQUAL(rev, now);
	/* replay from a revision: every event since, in order */
	uint32_t before = s->n;
	LIVE_RC(e, pm_etcd_watch_start(e, p, end, r1), PM_ETCD_OK);
	ev = await_event(e, s, l, true, &rev, &rc);
	CU_ASSERT(ev && s->n - before == 5 && !strcmp(s->ev[before].value, "v1") &&
		  s->ev[before].mod == r1);
	pm_etcd_watch_stop(e);
	CU_ASSERT(!pm_etcd_watching(e));
	/* a compacted start revision: etcd cancels the watch */
	char body[128], ans[512];
	snprintf(body, sizeof(body), "{\"revision\":\"%" PRId64 "\"}", now);
	CU_ASSERT_EQUAL(etcd_proc_post(&etcd, "/v3/kv/compaction", body, ans, sizeof(ans), CALL_MS), 200);
	LIVE_RC(e, pm_etcd_watch_start(e, p, end, r1), PM_ETCD_OK);
	rc = PM_ETCD_OK;
	for (uint64_t deadline = proc_now_ms() + WAIT_MS; rc >= 0 && proc_now_ms() < deadline;)
		rc = pm_etcd_watch_wait(e, TURN_MS, on_event, s, &rev);
	LIVE_RC(e, rc, PM_ETCD_E_HTTP);
	CU_ASSERT(strstr(pm_etcd_error(e), "/v3/watch: watch canceled by etcd: its start revision "
					   "was compacted") != NULL);
	CU_ASSERT(!pm_etcd_watching(e));
	LIVE_RC(e, pm_etcd_delete(e, out, NULL, NULL, CALL_MS), PM_ETCD_OK);
	free(s);
	pm_etcd_close(e);
}

/* An event function that reads the key again on the watch's own handle. */
struct reread {
	struct pm_etcd *e;
	int rc;
	char value[64];
	uint32_t n;
};

static void on_event_reread(void *arg, const struct pm_etcd_event *ev)
{
	struct reread *r = arg;
	struct pm_etcd_kvs kvs;
	r->rc = pm_etcd_range(r->e, ev->kv->key, NULL, &kvs, CALL_MS);
	snprintf(r->value, sizeof(r->value), "%s", kvs.n ? (const char *)kvs.kv[0].value : "");
	r->n++;
	pm_etcd_kvs_free(&kvs);
}

/* The event function may call the handle's unary functions: it runs
 * outside libcurl's callbacks. */
static void test_live_event_calls(void)
{
	struct pm_etcd *e = open_list(etcd_proc_url(&etcd));
	char k[PM_ETCD_KEY_BYTES_MAX + 1];
	struct reread r = { .e = e };
	int64_t rev;
	CU_ASSERT_FATAL(e != NULL);
	LIVE_RC(e, pm_etcd_watch_start(e, key_of(k, "reread"), NULL, 0), PM_ETCD_OK);
	CU_ASSERT_FATAL(await_created(e, &rev));
	LIVE_RC(e, pm_etcd_put(e, k, "seen", 4, 0, NULL, CALL_MS), PM_ETCD_OK);
	for (uint64_t deadline = proc_now_ms() + WAIT_MS; r.n == 0 && proc_now_ms() < deadline;)
		CU_ASSERT_FATAL(pm_etcd_watch_wait(e, TURN_MS, on_event_reread, &r, &rev) >= 0);
	CU_ASSERT(r.n == 1 && r.rc == PM_ETCD_OK && !strcmp(r.value, "seen"));
	CU_ASSERT(pm_etcd_watching(e));
	LIVE_RC(e, pm_etcd_delete(e, k, NULL, NULL, CALL_MS), PM_ETCD_OK);
	pm_etcd_close(e);
}

/* Answers and watch messages past PM_ETCD_MSG_BYTES_MAX end the call or
 * the watch with E_PROTO; the handle goes on. */
static void test_live_bounds(void)
{
	struct pm_etcd *e = open_list(etcd_proc_url(&etcd));
	char p[PM_ETCD_KEY_BYTES_MAX + 1], end[PM_ETCD_KEY_BYTES_MAX + 1];
	char k1[PM_ETCD_KEY_BYTES_MAX + 1], k2[PM_ETCD_KEY_BYTES_MAX + 1];
	struct seen *s = calloc(1, sizeof(*s));
	uint8_t *big = malloc(BIG_VALUE_BYTES);
	struct pm_etcd_kvs kvs;
	int64_t rev;
	int rc;
	CU_ASSERT_FATAL(e && s && big);
	for (uint32_t i = 0; i < BIG_VALUE_BYTES; i++)
		big[i] = (uint8_t)pm_test_rand(&seed);
	key_of(p, "big/");
	pm_etcd_prefix_end(p, end, sizeof(end));
	LIVE_RC(e, pm_etcd_watch_start(e, p, end, 0), PM_ETCD_OK);
	CU_ASSERT_FATAL(await_created(e, &rev));
	key_of(k1, "big/1");
	key_of(k2, "big/2");
	LIVE_RC(e, pm_etcd_put(e, k1, big, BIG_VALUE_BYTES, 0, NULL, CALL_MS), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_put(e, k2, big, BIG_VALUE_BYTES, 0, NULL, CALL_MS), PM_ETCD_OK);
	CU_ASSERT(await_event(e, s, k2, false, &rev, &rc) && s->ev[0].value_len == BIG_VALUE_BYTES);
	LIVE_RC(e, pm_etcd_range(e, k1, NULL, &kvs, CALL_MS), PM_ETCD_OK);
	CU_ASSERT(kvs.n == 1 && kvs.kv[0].value_len == BIG_VALUE_BYTES &&
		  !memcmp(kvs.kv[0].value, big, BIG_VALUE_BYTES));
	pm_etcd_kvs_free(&kvs);
	/* both values: an answer of 1.87 MB */
	LIVE_RC(e, pm_etcd_range(e, p, end, &kvs, CALL_MS), PM_ETCD_E_PROTO);
	CU_ASSERT(strstr(pm_etcd_error(e), "/v3/kv/range: an answer past PM_ETCD_MSG_BYTES_MAX") != NULL);
	CU_ASSERT(kvs.n == 0 && !kvs.kv);
	/* an event with its prev_kv: a message of 1.87 MB ends the watch */
	LIVE_RC(e, pm_etcd_put(e, k1, big, BIG_VALUE_BYTES, 0, NULL, CALL_MS), PM_ETCD_OK);
	CU_ASSERT(await_event(e, s, k1, false, &rev, &rc) == NULL);
	LIVE_RC(e, rc, PM_ETCD_E_PROTO);
	CU_ASSERT(strstr(pm_etcd_error(e),
			 "/v3/watch: a watch message past PM_ETCD_MSG_BYTES_MAX") != NULL);
	CU_ASSERT(!pm_etcd_watching(e));
	CU_ASSERT_STRING_EQUAL(pm_etcd_endpoint(e), etcd_proc_url(&etcd));
	LIVE_RC(e, pm_etcd_delete(e, p, end, NULL, CALL_MS), PM_ETCD_OK);
	free(big);
	free(s);
	pm_etcd_close(e);
}

/* ---------------------------------------------------------------- live: failures */

static void test_live_rotation(void)
{
	uint16_t dead = proc_port_pick(SOCK_STREAM, etcd.client_port); /* nothing listens there */
	char list[256], dead_url[64], k[PM_ETCD_KEY_BYTES_MAX + 1];
	struct pm_etcd_kvs kvs;
	int64_t rev;
	CU_ASSERT_FATAL(dead != 0);
	snprintf(dead_url, sizeof(dead_url), "http://127.0.0.1:%u", dead);
	snprintf(list, sizeof(list), "%s,%s", dead_url, etcd_proc_url(&etcd));
	struct pm_etcd *e = open_list(list);
	CU_ASSERT_FATAL(e != NULL);
	CU_ASSERT_STRING_EQUAL(pm_etcd_endpoint(e), dead_url);
	LIVE_RC(e, pm_etcd_range(e, key_of(k, "x"), NULL, &kvs, CALL_MS), PM_ETCD_E_NET);
	CU_ASSERT(!strncmp(pm_etcd_error(e), dead_url, strlen(dead_url)) &&
		  strstr(pm_etcd_error(e), "/v3/kv/range: ") && strstr(pm_etcd_error(e), "(curl 7)"));
	CU_ASSERT_STRING_EQUAL(pm_etcd_endpoint(e), etcd_proc_url(&etcd));
	LIVE_RC(e, pm_etcd_range(e, k, NULL, &kvs, CALL_MS), PM_ETCD_OK);
	CU_ASSERT_STRING_EQUAL(pm_etcd_error(e), "");
	pm_etcd_close(e);
	/* the watch moves on too */
	e = open_list(list);
	CU_ASSERT_FATAL(e != NULL);
	LIVE_RC(e, pm_etcd_watch_start(e, k, NULL, 0), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_watch_wait(e, CALL_MS, NULL, NULL, &rev), PM_ETCD_E_NET);
	CU_ASSERT(!pm_etcd_watching(e) && strstr(pm_etcd_error(e), "/v3/watch: "));
	CU_ASSERT_STRING_EQUAL(pm_etcd_endpoint(e), etcd_proc_url(&etcd));
	LIVE_RC(e, pm_etcd_watch_start(e, k, NULL, 0), PM_ETCD_OK);
	CU_ASSERT(await_created(e, &rev));
	/* and around: live, dead, live */
	snprintf(list, sizeof(list), "%s,%s", etcd_proc_url(&etcd), dead_url);
	pm_etcd_close(e);
	e = open_list(list);
	CU_ASSERT_FATAL(e != NULL);
	LIVE_RC(e, pm_etcd_range(e, k, NULL, &kvs, CALL_MS), PM_ETCD_OK);
	CU_ASSERT_STRING_EQUAL(pm_etcd_endpoint(e), etcd_proc_url(&etcd)); /* stays while it answers */
	pm_etcd_close(e);
}

/* A call's time against a stopped etcd: E_NET within its timeout. */
static bool bounded(struct pm_etcd *e, int rc, uint64_t t0)
{
	uint64_t took = proc_now_ms() - t0;
	bool ok = rc == PM_ETCD_E_NET && took + 50u >= STOPPED_CALL_MS &&
		  took <= STOPPED_CALL_MS + TIMEOUT_SLACK_MS;
	if (!ok)
		printf("\n  rc %d after %llu ms (timeout %d): %s\n", rc, (unsigned long long)took,
		       STOPPED_CALL_MS, pm_etcd_error(e));
	return ok;
}

static void test_live_stopped(void)
{
	struct pm_etcd *e = open_list(etcd_proc_url(&etcd)), *fresh;
	char k[PM_ETCD_KEY_BYTES_MAX + 1];
	struct pm_etcd_kvs kvs;
	struct seen *s = calloc(1, sizeof(*s));
	int64_t rev, id = 0, ttl, ttl2;
	int rc;
	CU_ASSERT_FATAL(e && s);
	LIVE_RC(e, pm_etcd_grant(e, 30, &id, &ttl, CALL_MS), PM_ETCD_OK); /* a connection to reuse */
	LIVE_RC(e, pm_etcd_watch_start(e, key_of(k, "stop/k"), NULL, 0), PM_ETCD_OK);
	CU_ASSERT_FATAL(await_created(e, &rev));
	CU_ASSERT_FATAL(etcd_proc_pause(&etcd));
	uint64_t t0 = proc_now_ms();
	CU_ASSERT(bounded(e, pm_etcd_range(e, k, NULL, &kvs, STOPPED_CALL_MS), t0));
	CU_ASSERT(strstr(pm_etcd_error(e), "(curl 28)") != NULL); /* a timeout */
	t0 = proc_now_ms();
	CU_ASSERT(bounded(e, pm_etcd_keepalive(e, id, &ttl2, STOPPED_CALL_MS), t0));
	t0 = proc_now_ms();
	CU_ASSERT(bounded(e, pm_etcd_put(e, k, "v", 1, 0, NULL, STOPPED_CALL_MS), t0));
	/* a new connection (the kernel still accepts it) is bounded too */
	fresh = open_list(etcd_proc_url(&etcd));
	t0 = proc_now_ms();
	CU_ASSERT(fresh && bounded(fresh, pm_etcd_grant(fresh, 5, &rev, &ttl2, STOPPED_CALL_MS), t0));
	pm_etcd_close(fresh);
	/* the watch: silent, not ended */
	t0 = proc_now_ms();
	CU_ASSERT_EQUAL(pm_etcd_watch_wait(e, STOPPED_CALL_MS, on_event, s, &rev), 0);
	CU_ASSERT(pm_etcd_watching(e) && proc_now_ms() - t0 <= STOPPED_CALL_MS + TIMEOUT_SLACK_MS);
	CU_ASSERT_FATAL(etcd_proc_resume(&etcd));
	/* back: the same handle answers, and the watch carries on */
	LIVE_RC(e, pm_etcd_put(e, k, "after", 5, 0, NULL, CALL_MS), PM_ETCD_OK);
	/* the put that timed out while etcd was stopped may be applied once it
	 * runs (its bytes were in the socket already): the watch may bring "v"
	 * before "after", never "after" alone lost */
	const struct seen_ev *ev = NULL;
	for (uint64_t deadline = proc_now_ms() + WAIT_MS; !ev && proc_now_ms() < deadline;) {
		if ((rc = pm_etcd_watch_wait(e, TURN_MS, on_event, s, &rev)) < 0)
			break;
		for (uint32_t i = 0; i < s->n && !ev; i++)
			if (!strcmp(s->ev[i].key, k) && !s->ev[i].deleted &&
			    !strcmp(s->ev[i].value, "after"))
				ev = &s->ev[i];
	}
	CU_ASSERT(ev != NULL);
	LIVE_RC(e, pm_etcd_delete(e, k, NULL, NULL, CALL_MS), PM_ETCD_OK);
	pm_etcd_revoke(e, id, CALL_MS);
	free(s);
	pm_etcd_close(e);
}

static void test_live_killed(void)
{
	struct pm_etcd *e = open_list(etcd_proc_url(&etcd));
	char k[PM_ETCD_KEY_BYTES_MAX + 1];
	struct pm_etcd_kvs kvs;
	struct seen *s = calloc(1, sizeof(*s));
	int64_t rev, put_rev;
	int rc;
	CU_ASSERT_FATAL(e && s);
	LIVE_RC(e, pm_etcd_watch_start(e, key_of(k, "kill/k"), NULL, 0), PM_ETCD_OK);
	CU_ASSERT_FATAL(await_created(e, &rev));
	LIVE_RC(e, pm_etcd_put(e, k, "before", 6, 0, &put_rev, CALL_MS), PM_ETCD_OK);
	CU_ASSERT_FATAL(await_event(e, s, k, false, &rev, &rc) != NULL);
	CU_ASSERT_FATAL(etcd_proc_kill(&etcd));
	/* the watch ends at once (a cut stream), with the revision seen */
	uint64_t t0 = proc_now_ms();
	rc = 0;
	while (rc >= 0 && proc_now_ms() - t0 < WAIT_MS)
		rc = pm_etcd_watch_wait(e, TURN_MS, on_event, s, &rev);
	LIVE_RC(e, rc, PM_ETCD_E_NET);
	CU_ASSERT(!pm_etcd_watching(e) && rev == put_rev);
	CU_ASSERT(strstr(pm_etcd_error(e), "/v3/watch: ") != NULL);
	CU_ASSERT(proc_now_ms() - t0 < TIMEOUT_SLACK_MS);
	t0 = proc_now_ms();
	LIVE_RC(e, pm_etcd_range(e, k, NULL, &kvs, CALL_MS), PM_ETCD_E_NET);
	CU_ASSERT(proc_now_ms() - t0 < TIMEOUT_SLACK_MS); /* refused, not timed out */
	/* restarted on its directory: the data is there, the watch resumes after
	 * what it saw */
	CU_ASSERT_FATAL(etcd_proc_start(&etcd));
	LIVE_RC(e, pm_etcd_range(e, k, NULL, &kvs, CALL_MS), PM_ETCD_OK);
	CU_ASSERT(kvs.n == 1 && kv_is(&kvs.kv[0], k, "before", put_rev, put_rev, 1, 0));
	pm_etcd_kvs_free(&kvs);
	LIVE_RC(e, pm_etcd_watch_start(e, k, NULL, rev + 1), PM_ETCD_OK);
	LIVE_RC(e, pm_etcd_put(e, k, "after", 5, 0, NULL, CALL_MS), PM_ETCD_OK);
	uint32_t before = s->n;
	const struct seen_ev *ev = await_event(e, s, k, false, &rev, &rc);
	CU_ASSERT(ev && s->n == before + 1 && !strcmp(ev->value, "after") && ev->has_prev &&
		  !strcmp(ev->prev, "before"));
	LIVE_RC(e, pm_etcd_delete(e, k, NULL, NULL, CALL_MS), PM_ETCD_OK);
	free(s);
	pm_etcd_close(e);
}

/* ---------------------------------------------------------------- main */

static CU_TestInfo unit_tests[] = {
	{ "base64", test_b64 },
	{ "requests", test_requests },
	{ "request_txn", test_request_txn },
	{ "request_bounds", test_request_bounds },
	{ "answers_kv", test_answers_kv },
	{ "answers_lease", test_answers_lease },
	{ "answers_txn", test_answers_txn },
	{ "answers_errors", test_answers_errors },
	{ "answers_bad", test_answers_bad },
	{ "answer_bounds", test_answer_bounds },
	{ "watch_messages", test_watch_messages },
	{ "lines", test_lines },
	{ "lines_bound", test_lines_bound },
	{ "prefix_end", test_prefix_end },
	{ "open", test_open },
	{ "fake_unary", test_fake_unary },
	{ "fake_watch", test_fake_watch },
	CU_TEST_INFO_NULL,
};

/* In this order: the last two stop and kill etcd (the last restarts it). */
static CU_TestInfo live_tests[] = {
	{ "lease", test_live_lease },
	{ "kv", test_live_kv },
	{ "txn", test_live_txn },
	{ "watch", test_live_watch },
	{ "event_calls", test_live_event_calls },
	{ "bounds", test_live_bounds },
	{ "rotation", test_live_rotation },
	{ "stopped", test_live_stopped },
	{ "killed", test_live_killed },
	CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
	const char *part = argc > 1 ? argv[1] : "";
	seed = (uint64_t)getpid() * 7919u ^ proc_now_ns();
	printf("test_etcd %s: seed %llu\n", part, (unsigned long long)seed);
	if (!strcmp(part, "unit"))
		return pm_cu_run("etcd_unit", unit_tests);
	if (strcmp(part, "live")) {
		fprintf(stderr, "usage: test_etcd unit|live\n");
		return 1;
	}
	if (!etcd_proc_installed(&etcd))
		return pm_cu_cannot_run("etcd_live", "etcd is not installed",
					"scripts/deps.sh installs etcd-server");
	return pm_cu_run_suite("etcd_live", live_init, live_clean, live_tests);
}
