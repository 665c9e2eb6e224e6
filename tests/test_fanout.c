/* SPDX-License-Identifier: MIT
 *
 * test_fanout.c — integration suite for what every shard takes part in, at
 * more shards than test_pomaid's two (issue 14, item 7): INFO at 4 shards and
 * at the most shards pomaid runs (PM_INFO_SHARDS_MAX = PM_SHARDS_MAX = 32),
 * with every shard's lines and a Total that counts each collection once; a
 * CCREATE that one shard refuses leaves the collection nowhere; a CDROP of a
 * large collection answers at once and its memory comes back in slices while
 * the shard serves other requests.
 *
 * pomaid polls one worker per CPU, and refuses more shards than cores with
 * `cores = auto`; listing the machine's CPUs again and again in `cores` runs
 * 4 or 32 shards on a 2-core CI machine (idle adaptive workers sleep).
 *
 * The daemon is waited for by reading its "ready" line, and every later state
 * by polling for it with a deadline, never by sleeping.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cu_main.h"
#include "pm_limits.h"
#include "route.h"
#include "wire.h"
#include "pomai.h"
#include "proc.h"

#define STATE_WAIT_MS 20000
/* Fan-outs with more shards than cores take up to seconds on a loaded machine
 * (perf/RESULTS.md, "Fan-out latency": 5 s seen at 32 shards on 2 CPUs): the
 * daemon's deadline and the client's first wait are far above that, so that
 * a slow fan-out is waited for rather than timed out or sent again. */
#define FANOUT_DEADLINE_MS "30000"
#define CLIENT_TIMEOUT_MS 10000u

/* Started by each test with its shards, on free ports. */
static struct pomaid srv = {
	.flags = (const char *const[]){ "--arena-bytes", "16M", "--seeds", "65536", "--hugepages",
					"no", "--wal", "none", "--knn-timeout-ms",
					FANOUT_DEADLINE_MS, NULL },
};
static char info[PM_CLIENT_INFO_REPLY_BYTES_MAX + 1];

/* ---------------------------------------------------------------- the daemon */

/* "a,b,a,b,...": n entries from the CPUs this process may run on. */
static void cores_list(uint32_t n, char *out, size_t cap)
{
	cpu_set_t set;
	int cpus[CPU_SETSIZE], ncpu = 0;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set))
				cpus[ncpu++] = i;
	if (ncpu == 0)
		cpus[ncpu++] = 0;
	size_t len = 0;
	out[0] = '\0';
	for (uint32_t i = 0; i < n && len < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%d", i ? "," : "",
					cpus[i % (uint32_t)ncpu]);
}

/* A fresh daemon of `shards` shards on free ports. */
static bool start_daemon(uint32_t shards, const char *maintain_nodes)
{
	static char cores[PM_INFO_SHARDS_MAX * 8];
	pomaid_stop(&srv);
	cores_list(shards, cores, sizeof(cores));
	srv.shards = shards;
	srv.base = 0;
	const char *const extra[] = { "--cores", cores, "--maintain-nodes", maintain_nodes, NULL };
	if (pomaid_start(&srv, extra, NULL))
		return true;
	fprintf(stderr, "pomaid did not start: %s\n", srv.proc.out);
	return false;
}

static struct pm_client *lib_open(void)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.base_port = srv.base;
	cfg.shards = srv.shards;
	cfg.timeout_ms = CLIENT_TIMEOUT_MS;
	cfg.retries = 3;
	struct pm_client *c = NULL;
	CU_ASSERT_EQUAL_FATAL(pm_client_open(&cfg, &c), PM_CLIENT_OK);
	return c;
}

/* ---------------------------------------------------------------- INFO text */

/* The whole INFO text (paged), NUL-terminated in info[]. */
static size_t info_all(struct pm_client *c)
{
	size_t n = 0;
	CU_ASSERT_EQUAL_FATAL(pm_client_info(c, NULL, info, sizeof(info) - 1, &n), PM_CLIENT_OK);
	info[n] = '\0';
	return n;
}

/* A field of the Total section: from "# Total" to the first shard's text. */
static long long total_of(const char *name)
{
	return info_text_field(info, "# Total\r\n", name);
}

/* Shard s's text: [*from, *to), its head line in head. */
static bool shard_part(uint32_t s, const char **from, const char **to, char *head)
{
	char next[32];
	snprintf(head, 32, "@shard:%u\r\n", s);
	snprintf(next, sizeof(next), "@shard:%u\r\n", s + 1);
	*from = strstr(info, head);
	if (!*from)
		return false;
	*to = s + 1 < srv.shards ? strstr(*from, next) : *from + strlen(*from);
	return *to != NULL;
}

/* Every shard's text is there, in order, and whole: each section, and the
 * last line a shard writes in this configuration (wal = none, no DPDK). */
static void expect_every_shard(void)
{
	static const char *const parts[] = { "# Keyspace\r\n", "# Memory\r\n", "# Vectors\r\n",
					     "# Stats\r\n",    "# Dataplane\r\n" };
	uint32_t whole = 0;
	for (uint32_t s = 0; s < srv.shards; s++) {
		const char *from, *to;
		char head[32];
		if (!shard_part(s, &from, &to, head))
			continue;
		bool ok = info_text_field(info, head, "quota_clients_replaced") >= 0 && to[-1] == '\n';
		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
			const char *at = strstr(from, parts[i]);
			ok &= at != NULL && at < to;
		}
		whole += ok;
	}
	CU_ASSERT_EQUAL(whole, srv.shards);
	CU_ASSERT_EQUAL(total_of("shards"), -1); /* the Cluster section has it */
	CU_ASSERT(strstr(info, "# Cluster\r\n") == info);
	char line[48];
	snprintf(line, sizeof(line), "shards_answered:%u\r\n", srv.shards);
	CU_ASSERT(strstr(info, line) != NULL);
}

/* Named collections, each with a long name (a longer text), and one vector. */
static void make_collections(struct pm_client *c, int n)
{
	struct pm_client_coll_params p = { .dim = 4 };
	char name[64];
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "a-collection-with-a-rather-long-name-%02d", i);
		CU_ASSERT_EQUAL(pm_client_collection_create(c, name, &p), PM_CLIENT_OK);
	}
	float v[4] = { 1, 2, 3, 4 };
	CU_ASSERT_EQUAL(pm_client_vadd(c, "one", 3, v, 4, name, 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_vadd(c, "dflt", 4, v, 4, NULL, 0), PM_CLIENT_OK);
}

struct old_info {
	bool done;
	enum pm_client_status st;
	size_t len;
	bool whole_lines;
};

static void old_info_cb(void *arg, const struct pm_client_result *r)
{
	struct old_info *o = arg;
	o->done = true;
	o->st = r->status;
	o->len = r->vlen;
	o->whole_lines = r->vlen > 0 && r->value[r->vlen - 1] == '\n';
}

/* A client that does not ask for pages (as every client before them) gets
 * the single frame it always got: at most PM_INFO_TEXT_BYTES_MAX, whole lines. */
static void expect_old_client_info(struct pm_client *c)
{
	struct old_info o = { 0 };
	struct pm_client_req r = { .op = PM_CLIENT_INFO, .cb = old_info_cb, .arg = &o };
	CU_ASSERT_EQUAL_FATAL(pm_client_submit(c, &r, NULL), PM_CLIENT_OK);
	pm_client_drain(c);
	CU_ASSERT(o.done);
	CU_ASSERT_EQUAL(o.st, PM_CLIENT_OK);
	CU_ASSERT(o.len > 0 && o.len <= PM_INFO_TEXT_BYTES_MAX);
	CU_ASSERT(o.whole_lines);
}

/* ---------------------------------------------------------------- tests */

/* At 4 shards the text passed 8 KiB and the last shard's lines were cut; the
 * Total summed `collections`, counting each named collection once per shard. */
static void test_info_4_shards(void)
{
	CU_ASSERT_FATAL(start_daemon(4, "1024"));
	struct pm_client *c = lib_open();
	make_collections(c, 3);
	size_t n = info_all(c);
	CU_ASSERT(n > PM_INFO_TEXT_BYTES_MAX);
	expect_every_shard();
	CU_ASSERT_EQUAL(total_of("collections"), 3 + 1); /* 3 named, 1 default (dim 4) */
	CU_ASSERT_EQUAL(total_of("vectors"), 2);          /* additive fields still add up */
	CU_ASSERT_EQUAL(total_of("worker_cpu"), -1);      /* a CPU number is no total */
	CU_ASSERT_EQUAL(total_of("arena_hugepages"), 0);
	expect_old_client_info(c);
	pm_client_close(c);
}

/* At the most shards pomaid runs the text takes several frames. */
static void test_info_max_shards(void)
{
	CU_ASSERT_FATAL(start_daemon(PM_INFO_SHARDS_MAX, "1024"));
	struct pm_client *c = lib_open();
	make_collections(c, 20);
	size_t n = info_all(c);
	CU_ASSERT(n > PM_FRAME_BYTES_MAX); /* more than one frame: paged */
	expect_every_shard();
	CU_ASSERT_EQUAL(total_of("collections"), 20 + 1);
	CU_ASSERT_EQUAL(total_of("shards"), -1);
	expect_old_client_info(c);
	pm_client_close(c);
}

/* A key that lives on shard s. */
static int key_on(uint32_t s, const char *prefix, uint32_t *next, char *key, size_t cap)
{
	for (;; (*next)++) {
		int n = snprintf(key, cap, "%s-%u", prefix, *next);
		if (pm_shard_of(pm_route_hash(key, (size_t)n), srv.shards) == s) {
			(*next)++;
			return n;
		}
	}
}

static bool listed(struct pm_client *c, const char *name)
{
	static struct pm_client_coll_info items[PM_CLIENT_COLLECTIONS_MAX];
	struct pm_client_coll_list l = { .items = items, .cap = PM_CLIENT_COLLECTIONS_MAX };
	CU_ASSERT_EQUAL_FATAL(pm_client_collection_list(c, &l), PM_CLIENT_OK);
	for (uint32_t i = 0; i < l.count; i++)
		if (items[i].name_len == strlen(name) && !memcmp(items[i].name, name, strlen(name)))
			return true;
	return false;
}

/* Shards whose own INFO lines list collection `name`. */
static uint32_t shards_listing(struct pm_client *c, const char *name)
{
	char line[96];
	snprintf(line, sizeof(line), "collection:name=%s,", name);
	info_all(c);
	uint32_t n = 0;
	for (uint32_t s = 0; s < srv.shards; s++) {
		const char *from, *to, *at;
		char head[32];
		n += shard_part(s, &from, &to, head) && (at = strstr(from, line)) && at < to;
	}
	return n;
}

/* One shard's collection table is made full (PM_COLLECTIONS_MAX default
 * collections there: one VADD of each dimension 1..256, every key routed to
 * that shard), so it refuses the CCREATE that the three others accept. The
 * collection must then be on no shard; once there is room, a retry puts it
 * on every shard. */
static void test_ccreate_refused_rolls_back(void)
{
	CU_ASSERT_FATAL(start_daemon(4, "1024"));
	struct pm_client *c = lib_open();
	const uint32_t full = 2;
	char key[48], first[48];
	uint32_t next = 0;
	float v[PM_COLLECTIONS_MAX];
	for (uint32_t d = 0; d < PM_COLLECTIONS_MAX; d++)
		v[d] = 1.0f + (float)d;
	for (uint32_t dim = 1; dim <= PM_COLLECTIONS_MAX; dim++) {
		int n = key_on(full, "full", &next, key, sizeof(key));
		if (dim == 1)
			memcpy(first, key, (size_t)n + 1);
		CU_ASSERT_EQUAL_FATAL(pm_client_vadd(c, key, (size_t)n, v, dim, NULL, 0), PM_CLIENT_OK);
	}
	struct pm_client_coll_params p = { .dim = 8 };
	CU_ASSERT_EQUAL(pm_client_collection_create(c, "rolled", &p), PM_CLIENT_E_COLLECTIONS_FULL);
	CU_ASSERT(!listed(c, "rolled"));
	CU_ASSERT_EQUAL(shards_listing(c, "rolled"), 0);
	CU_ASSERT_EQUAL(total_of("fanout_rollbacks"), 1);
	/* room again on that shard (its dim-1 default collection goes with its only
	 * vector): the retry creates it everywhere */
	bool removed = false;
	CU_ASSERT_EQUAL(pm_client_vdel(c, first, strlen(first), &removed), PM_CLIENT_OK);
	CU_ASSERT(removed);
	CU_ASSERT_EQUAL(pm_client_collection_create(c, "rolled", &p), PM_CLIENT_OK);
	CU_ASSERT(listed(c, "rolled"));
	CU_ASSERT_EQUAL(shards_listing(c, "rolled"), srv.shards);
	pm_client_close(c);
}

/* INFO total of a field, polled until pred holds or the deadline passes. */
static long long total_until(struct pm_client *c, const char *name, long long want)
{
	for (uint64_t t0 = proc_now_ms();; proc_pause_ms(PROC_POLL_MS)) {
		info_all(c);
		long long v = total_of(name);
		if (v == want || proc_now_ms() - t0 > STATE_WAIT_MS)
			return v;
	}
}

/* CDROP of a large collection answers at once; its vectors are gone for every
 * request from then on; its memory comes back in slices of maintain_nodes
 * (small here) while the shards serve GETs; the name can be made again. */
static void test_cdrop_large(void)
{
	CU_ASSERT_FATAL(start_daemon(2, "64"));
	struct pm_client *c = lib_open();
	struct pm_client_coll_params p = { .dim = 8 };
	CU_ASSERT_EQUAL_FATAL(pm_client_collection_create(c, "big", &p), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_set(c, "kv", 2, "value", 5, 0), PM_CLIENT_OK);
	info_all(c);
	long long blob0 = total_of("blob_bytes_used");
	enum { N = 40000 };
	float v[8] = { 0 };
	char key[32];
	for (int i = 0; i < N; i++) { /* pipelined: no reply is waited for one by one */
		v[0] = (float)i;
		int n = snprintf(key, sizeof(key), "big-%d", i);
		struct pm_client_req r = { .op = PM_CLIENT_VADD, .key = key, .klen = (uint32_t)n,
					   .vec = v, .dim = 8, .name = "big", .name_len = 3 };
		CU_ASSERT_EQUAL_FATAL(pm_client_submit(c, &r, NULL), PM_CLIENT_OK);
	}
	pm_client_drain(c);
	CU_ASSERT_EQUAL_FATAL(total_until(c, "vectors", N), N);
	long long blob_full = total_of("blob_bytes_used");
	CU_ASSERT(blob_full > blob0);
	bool removed = false;
	CU_ASSERT_EQUAL(pm_client_collection_drop(c, "big", &removed), PM_CLIENT_OK);
	CU_ASSERT(removed);
	/* gone for requests at once, while the slices run */
	struct pm_client_vector out = { .vec = v, .cap = 8 };
	CU_ASSERT_EQUAL(pm_client_vget(c, "big-7", 5, &out), PM_CLIENT_NOT_FOUND);
	CU_ASSERT(!listed(c, "big"));
	char val[16];
	size_t vlen = 0;
	CU_ASSERT_EQUAL(pm_client_get(c, "kv", 2, val, sizeof(val), &vlen), PM_CLIENT_OK);
	CU_ASSERT(vlen == 5 && !memcmp(val, "value", 5));
	CU_ASSERT_EQUAL(pm_client_collection_create(c, "big", &p), PM_CLIENT_OK);
	/* and the memory comes back */
	CU_ASSERT_EQUAL(total_until(c, "collections_dropping", 0), 0);
	CU_ASSERT_EQUAL(total_until(c, "vectors", 0), 0);
	CU_ASSERT(total_of("blob_bytes_used") <= blob0 + 64 * 1024); /* + the new empty "big" */
	CU_ASSERT_EQUAL(total_of("collections"), 1);
	pm_client_close(c);
}

/* ---------------------------------------------------------------- KNN parts (issue 20) */

#define PARTS_VECTORS 240
#define PARTS_QUERIES 12
#define PARTS_K 16u
#define PARTS_DIM 8u

/* Vector i of the parts tests: distinct squared distances to every query. */
static void parts_vec(uint32_t i, float *v)
{
	for (uint32_t d = 0; d < PARTS_DIM; d++)
		v[d] = (float)((i * 7u + d * 13u) % 61u) + (float)i * 0.001f;
}

static struct pm_client *lib_open_as(uint32_t shards, bool via_server)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.base_port = srv.base;
	cfg.shards = shards;
	cfg.timeout_ms = CLIENT_TIMEOUT_MS;
	cfg.retries = 3;
	cfg.knn_via_server = via_server;
	struct pm_client *c = NULL;
	CU_ASSERT_EQUAL_FATAL(pm_client_open(&cfg, &c), PM_CLIENT_OK);
	return c;
}

/* One exact KNN of query q (k PARTS_K) into keys (PARTS_K x 32 bytes) and dists. */
static enum pm_client_status parts_knn(struct pm_client *c, uint32_t q, char *keys, float *dists)
{
	static struct pm_client_hit hits[PARTS_K];
	static uint8_t kbuf[PARTS_K * 64];
	float v[PARTS_DIM];
	parts_vec(q * 17u + 5u, v);
	v[0] += 0.5f;
	struct pm_client_knn_result r = { .hits = hits, .hits_cap = PARTS_K, .keys = kbuf,
					  .keys_cap = sizeof(kbuf) };
	struct pm_client_knn_opts o = { .k = PARTS_K, .exact = true, .collection = "parts" };
	enum pm_client_status st = pm_client_knn(c, v, PARTS_DIM, &o, &r);
	memset(keys, 0, PARTS_K * 32);
	for (uint32_t i = 0; st == PM_CLIENT_OK && i < r.count && i < PARTS_K; i++) {
		memcpy(keys + i * 32, hits[i].key, hits[i].klen < 31 ? hits[i].klen : 31);
		dists[i] = hits[i].dist;
	}
	if (st == PM_CLIENT_OK && r.count != PARTS_K)
		return PM_CLIENT_E_PROTOCOL;
	return st;
}

/* A client that fans a KNN out itself (the default over several shards)
 * sends every shard its part: each shard answers it directly (INFO
 * knn_parts_direct counts them, and no fan-out is coordinated), and the
 * merged answer is the one the server's own fan-out gives, hit for hit. */
static void test_knn_parts_direct(void)
{
	CU_ASSERT_FATAL(start_daemon(4, "1024"));
	struct pm_client *c = lib_open_as(srv.shards, false);
	struct pm_client *via = lib_open_as(srv.shards, true);
	struct pm_client_coll_params p = { .dim = PARTS_DIM };
	CU_ASSERT_EQUAL_FATAL(pm_client_collection_create(c, "parts", &p), PM_CLIENT_OK);
	float v[PARTS_DIM];
	char key[32];
	for (uint32_t i = 0; i < PARTS_VECTORS; i++) {
		parts_vec(i, v);
		int n = snprintf(key, sizeof(key), "part-%u", i);
		struct pm_client_req r = { .op = PM_CLIENT_VADD, .key = key, .klen = (uint32_t)n,
					   .vec = v, .dim = PARTS_DIM, .name = "parts",
					   .name_len = 5 };
		CU_ASSERT_EQUAL_FATAL(pm_client_submit(c, &r, NULL), PM_CLIENT_OK);
	}
	pm_client_drain(c);
	info_all(c);
	long long fanouts0 = total_of("fanouts"), direct0 = total_of("knn_parts_direct");
	CU_ASSERT_EQUAL_FATAL(direct0, 0);
	static char k1[PARTS_QUERIES][PARTS_K * 32], k2[PARTS_K * 32];
	static float d1[PARTS_QUERIES][PARTS_K], d2[PARTS_K];
	for (uint32_t q = 0; q < PARTS_QUERIES; q++) {
		CU_ASSERT_EQUAL_FATAL(parts_knn(c, q, k1[q], d1[q]), PM_CLIENT_OK);
		for (uint32_t i = 1; i < PARTS_K; i++)
			CU_ASSERT(d1[q][i - 1] <= d1[q][i]);
	}
	info_all(c);
	CU_ASSERT_EQUAL(total_of("knn_parts_direct") - direct0,
			(long long)PARTS_QUERIES * srv.shards);
	/* no fan-out was coordinated for them (INFO is one, and is resent when a
	 * page is lost: fewer than the queries all the same) */
	long long fanouts1 = total_of("fanouts");
	CU_ASSERT(fanouts1 - fanouts0 < PARTS_QUERIES);
	for (uint32_t q = 0; q < PARTS_QUERIES; q++) {
		CU_ASSERT_EQUAL_FATAL(parts_knn(via, q, k2, d2), PM_CLIENT_OK);
		CU_ASSERT(memcmp(k1[q], k2, sizeof(k2)) == 0);
		CU_ASSERT(memcmp(d1[q], d2, sizeof(d2)) == 0);
	}
	info_all(c);
	CU_ASSERT(total_of("fanouts") - fanouts1 >= PARTS_QUERIES); /* the server's fan-outs */
	pm_client_close(via);
	pm_client_close(c);
}

/* A client that counts other shards than the server (2 of 4) would merge a
 * partial answer: every part is refused PARAM; a client of one shard (always
 * right) still gets the whole answer through the server's fan-out. */
static void test_knn_parts_wrong_count(void)
{
	CU_ASSERT_FATAL(start_daemon(4, "1024"));
	struct pm_client *c = lib_open_as(srv.shards, false);
	struct pm_client_coll_params p = { .dim = PARTS_DIM };
	CU_ASSERT_EQUAL_FATAL(pm_client_collection_create(c, "parts", &p), PM_CLIENT_OK);
	float v[PARTS_DIM];
	char key[32];
	for (uint32_t i = 0; i < 64; i++) {
		parts_vec(i, v);
		int n = snprintf(key, sizeof(key), "part-%u", i);
		CU_ASSERT_EQUAL_FATAL(pm_client_vadd(c, key, (size_t)n, v, PARTS_DIM, "parts", 0),
				      PM_CLIENT_OK);
	}
	struct pm_client *two = lib_open_as(2, false), *one = lib_open_as(1, false);
	static char k1[PARTS_K * 32], k2[PARTS_K * 32];
	float d1[PARTS_K], d2[PARTS_K];
	CU_ASSERT_EQUAL(parts_knn(two, 0, k1, d1), PM_CLIENT_E_PARAM);
	CU_ASSERT_EQUAL(parts_knn(one, 0, k1, d1), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(parts_knn(c, 0, k2, d2), PM_CLIENT_OK);
	CU_ASSERT(memcmp(k1, k2, sizeof(k1)) == 0);
	pm_client_close(one);
	pm_client_close(two);
	pm_client_close(c);
}

static int suite_clean(void)
{
	pomaid_stop(&srv);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test_fanout PATH-TO-POMAID\n");
		return 1;
	}
	srv.path = argv[1];
	if (!proc_dir_make(srv.dir, "cluster")) {
		perror("mkdtemp");
		return 1;
	}
	static CU_TestInfo tests[] = {
		{ "INFO at 4 shards: every shard, and a Total that adds up", test_info_4_shards },
		{ "INFO at the most shards: paged, every shard", test_info_max_shards },
		{ "CCREATE one shard refuses is rolled back", test_ccreate_refused_rolls_back },
		{ "CDROP of a large collection: at once, reclaimed in slices", test_cdrop_large },
		{ "KNN parts: every shard answers the client, same hits", test_knn_parts_direct },
		{ "KNN parts: a client counting other shards gets PARAM", test_knn_parts_wrong_count },
		CU_TEST_INFO_NULL,
	};
	int rc = pm_cu_run_suite("fanout", NULL, suite_clean, tests);
	proc_dir_remove(srv.dir);
	return rc;
}
