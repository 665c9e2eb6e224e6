/* SPDX-License-Identifier: MIT
 *
 * test_client.c — CUnit suite of libpomai and pomai-cli, against the fake
 * pomaid of client_fake.c (real engine shard, real codec, loopback sockets).
 *
 * Covered: configuration checks; every operation synchronously over UDP and
 * TCP, with binary keys and values; routing (the fake counts frames that
 * reach the wrong shard port: must stay 0); TTL through the fake's injected
 * clock (no sleeps); 10,000 pipelined SETs then GETs with every reply checked;
 * retries through dropped request and reply datagrams; duplicate replies
 * dropped; a server that never answers (E_TIMEOUT, with the backoff schedule's
 * duration); a TCP stream closed by the server (requests fail, the next one
 * reconnects); BUSY retried; a KNN reply paged over ~10 frames, also with a
 * page lost; local argument checks; SNAPSHOT's OK and PARAM answers through
 * the library and the CLI; and the pomai-cli binary (its path is argv[1],
 * given by meson) for every command and its exit codes.
 */
#define _GNU_SOURCE /* mkstemps */
#include <inttypes.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "client_fake.h"
#include "cu_main.h"
#include "pomai.h"
#include "proc.h"

/* Generous first timeout for tests that expect no loss: a resend would not
 * break them, it would only hide nothing. */
#define T_TIMEOUT_MS 1000u
/* Short timeouts for the loss and timeout tests. */
#define T_SHORT_TIMEOUT_MS 20u
#define T_PIPELINE_N 10000u
#define T_LOSSY_N 2000u
#define T_CLI_OUT_BYTES 65536u

static struct fake F, F2;
static const char *cli_path;

/* ---------------------------------------------------------------- helpers */

static void start(struct fake *f, struct fake_opts o)
{
	CU_ASSERT_FATAL(fake_start(f, &o) == 0);
}

/* The defaults, aimed at fake f over transport t. */
static struct pm_client_config fake_config(const struct fake *f, enum pm_client_transport t,
					   uint32_t timeout_ms)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.base_port = f->base_port;
	cfg.shards = f->o.shards;
	cfg.transport = t;
	cfg.timeout_ms = timeout_ms;
	return cfg;
}

static struct pm_client *open_config(const struct pm_client_config *cfg)
{
	struct pm_client *c = NULL;
	CU_ASSERT_EQUAL_FATAL(pm_client_open(cfg, &c), PM_CLIENT_OK);
	return c;
}

static struct pm_client *open_client(const struct fake *f, enum pm_client_transport t,
				     uint32_t timeout_ms, uint32_t retries)
{
	struct pm_client_config cfg = fake_config(f, t, timeout_ms);
	cfg.retries = retries;
	return open_config(&cfg);
}

static enum pm_client_status gets(struct pm_client *c, const char *k, char *buf, size_t cap)
{
	size_t n = 0;
	enum pm_client_status st = pm_client_get(c, k, strlen(k), buf, cap - 1, &n);
	buf[st == PM_CLIENT_OK ? n : 0] = '\0';
	return st;
}

/* ---------------------------------------------------------------- configuration */

static void expect_bad(struct pm_client_config cfg, const char *field)
{
	const char *why = NULL;
	struct pm_client *c = (struct pm_client *)&cfg; /* must be reset to NULL */
	CU_ASSERT_EQUAL(pm_client_config_check(&cfg, &why), PM_CLIENT_E_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, field));
	CU_ASSERT_EQUAL(pm_client_open(&cfg, &c), PM_CLIENT_E_CONFIG);
	CU_ASSERT_PTR_NULL(c);
}

static void test_config(void)
{
	struct pm_client_config d, b;
	pm_client_config_default(&d);
	const char *why = NULL;
	CU_ASSERT_EQUAL(pm_client_config_check(&d, &why), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_config_check(NULL, NULL), PM_CLIENT_E_CONFIG);
	CU_ASSERT_EQUAL(pm_client_open(&d, NULL), PM_CLIENT_E_ARG);
	b = d; b.host = "pomai.example"; expect_bad(b, "host");
	b = d; b.host = "300.1.1.1"; expect_bad(b, "host");
	b = d; b.shards = 0; expect_bad(b, "shards");
	b = d; b.shards = PM_CLIENT_SHARDS_MAX + 1; expect_bad(b, "shards");
	b = d; b.base_port = 0; expect_bad(b, "base_port");
	b = d; b.base_port = 65535; b.shards = 2; expect_bad(b, "base_port");
	b = d; b.base_port = 1; b.transport = PM_CLIENT_TCP; expect_bad(b, "TCP");
	b.tcp_port = 2;
	CU_ASSERT_EQUAL(pm_client_config_check(&b, NULL), PM_CLIENT_OK);
	b = d; b.tcp_port = 65536; expect_bad(b, "tcp_port");
	b = d; b.transport = (enum pm_client_transport)7; expect_bad(b, "transport");
	b = d; b.timeout_ms = 0; expect_bad(b, "timeout_ms");
	b = d; b.timeout_ms = PM_CLIENT_TIMEOUT_MS_MAX + 1; expect_bad(b, "timeout_ms");
	b = d; b.retries = PM_CLIENT_RETRIES_MAX + 1; expect_bad(b, "retries");
	b = d; b.max_in_flight = 0; expect_bad(b, "max_in_flight");
	b = d; b.max_in_flight = PM_CLIENT_IN_FLIGHT_MAX + 1; expect_bad(b, "max_in_flight");
	b = d; b.frame_bytes = PM_CLIENT_FRAME_BYTES_MIN - 1; expect_bad(b, "frame_bytes");
	b = d; b.frame_bytes = 65508; expect_bad(b, "frame_bytes");
	b = d; b.max_in_flight = PM_CLIENT_IN_FLIGHT_MAX; b.frame_bytes = 65507;
	expect_bad(b, "256 MiB");
	b = d; b.pack_bytes = PM_CLIENT_PACK_BYTES_MIN - 1; expect_bad(b, "pack_bytes");
	b = d; b.pack_bytes = PM_CLIENT_PACK_LOOPBACK_BYTES + 1; expect_bad(b, "pack_bytes");
	b = d; b.pack_flush_us = PM_CLIENT_PACK_FLUSH_US_MAX + 1; expect_bad(b, "pack_flush_us");
	b = d; b.spin_us = PM_CLIENT_SPIN_US_MAX + 1; expect_bad(b, "spin_us");
	b = d; b.host = "localhost"; b.shards = PM_CLIENT_SHARDS_MAX; b.base_port = 1000;
	CU_ASSERT_EQUAL(pm_client_config_check(&b, NULL), PM_CLIENT_OK);
	for (int s = 0; s <= PM_CLIENT_STATUS_COUNT; s++) {
		CU_ASSERT_PTR_NOT_NULL(pm_client_strerror((enum pm_client_status)s));
		CU_ASSERT_PTR_NOT_NULL(pm_client_status_name((enum pm_client_status)s));
	}
	CU_ASSERT_STRING_EQUAL(pm_client_status_name(PM_CLIENT_E_TIMEOUT), "E_TIMEOUT");
	struct pm_client *c = NULL;
	b = d;
	b.shards = 4; /* UDP: opening sends nothing */
	CU_ASSERT_EQUAL_FATAL(pm_client_open(&b, &c), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_shard_of(c, "hello", 5), 1); /* docs/protocol.md §2.1 */
	pm_client_close(c);
}

/* ---------------------------------------------------------------- every op, sync */

static void kv_ops(struct pm_client *c)
{
	const uint8_t key[] = { 'a', 0, 'b', 0, 0xff };
	const uint8_t val[] = { 0, 1, 2, 0, 'x', 0 };
	uint8_t buf[64];
	size_t n = 0;
	bool removed = false;
	CU_ASSERT_EQUAL(pm_client_set(c, key, sizeof key, val, sizeof val, 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_get(c, key, sizeof key, buf, sizeof buf, &n), PM_CLIENT_OK);
	CU_ASSERT(n == sizeof val && memcmp(buf, val, n) == 0);
	CU_ASSERT_EQUAL(pm_client_get(c, key, 2, buf, sizeof buf, &n), PM_CLIENT_NOT_FOUND);
	CU_ASSERT_EQUAL(pm_client_get(c, key, sizeof key, buf, 2, &n), PM_CLIENT_E_NOSPACE);
	CU_ASSERT_EQUAL(n, sizeof val);
	CU_ASSERT_EQUAL(pm_client_set(c, "empty", 5, NULL, 0, 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_get(c, "empty", 5, buf, sizeof buf, &n), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(pm_client_del(c, key, sizeof key, &removed), PM_CLIENT_OK);
	CU_ASSERT(removed);
	CU_ASSERT_EQUAL(pm_client_del(c, key, sizeof key, &removed), PM_CLIENT_OK);
	CU_ASSERT(!removed);
	CU_ASSERT_EQUAL(pm_client_get(c, key, sizeof key, buf, sizeof buf, &n), PM_CLIENT_NOT_FOUND);
	for (int i = 0; i < 64; i++) { /* keys on every shard */
		char k[16], v[16];
		snprintf(k, sizeof k, "key%d", i);
		snprintf(v, sizeof v, "val%d", i);
		CU_ASSERT_EQUAL(pm_client_set(c, k, strlen(k), v, strlen(v), 0), PM_CLIENT_OK);
		CU_ASSERT_EQUAL(gets(c, k, (char *)buf, sizeof buf), PM_CLIENT_OK);
		CU_ASSERT_STRING_EQUAL((char *)buf, v);
	}
}

/* Largest key and value: a frame above the client's frame_bytes (a large slot)
 * and above one datagram's batch size (sent alone); several in flight at once
 * wait for the PM_CLIENT_LARGE_SLOTS large slots. */
static void large_ops(struct pm_client *c)
{
	static uint8_t key[PM_CLIENT_KEY_BYTES_MAX], val[PM_CLIENT_VALUE_BYTES_MAX],
		back[PM_CLIENT_VALUE_BYTES_MAX];
	for (size_t i = 0; i < sizeof val; i++)
		val[i] = (uint8_t)(i * 31u);
	for (uint32_t r = 0; r < 3 * PM_CLIENT_LARGE_SLOTS; r++) {
		memset(key, 'A' + (int)r, sizeof key);
		struct pm_client_req q = { .op = PM_CLIENT_SET, .key = key, .klen = sizeof key,
					   .value = val, .vlen = sizeof val - r };
		CU_ASSERT_EQUAL(pm_client_submit(c, &q, NULL), PM_CLIENT_OK);
	}
	pm_client_drain(c);
	for (uint32_t r = 0; r < 3 * PM_CLIENT_LARGE_SLOTS; r++) {
		size_t n = 0;
		memset(key, 'A' + (int)r, sizeof key);
		memset(back, 0, sizeof back);
		CU_ASSERT_EQUAL(pm_client_get(c, key, sizeof key, back, sizeof back, &n),
				PM_CLIENT_OK);
		CU_ASSERT(n == sizeof val - r && memcmp(back, val, n) == 0);
	}
}

static void vector_ops(struct pm_client *c)
{
	const float v1[4] = { 1, 2, 3, 4 }, v2[4] = { 1, 2, 3, 5 }, d1[4] = { 0, 0, 0, 1 };
	struct pm_client_coll_params p = { .dim = 4 };
	float out[8];
	struct pm_client_vector vo = { .vec = out, .cap = 8 };
	bool removed = false;
	char buf[16];
	CU_ASSERT_EQUAL(pm_client_collection_create(c, "emb", &p), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_vadd(c, "v1", 2, v1, 4, "emb", 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_vadd(c, "v2", 2, v2, 4, "emb", 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_vadd(c, "d1", 2, d1, 4, NULL, 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_vget(c, "v1", 2, &vo), PM_CLIENT_OK);
	CU_ASSERT(vo.dim == 4 && memcmp(out, v1, sizeof v1) == 0);
	CU_ASSERT(vo.collection_len == 3 && memcmp(vo.collection, "emb", 3) == 0);
	CU_ASSERT_EQUAL(pm_client_vget(c, "d1", 2, &vo), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(vo.collection_len, 0);
	vo.cap = 2;
	CU_ASSERT_EQUAL(pm_client_vget(c, "v1", 2, &vo), PM_CLIENT_E_NOSPACE);
	CU_ASSERT_EQUAL(vo.dim, 4);
	CU_ASSERT_EQUAL(gets(c, "v1", buf, sizeof buf), PM_CLIENT_E_WRONGTYPE);
	CU_ASSERT_EQUAL(pm_client_vadd(c, "v3", 2, v1, 3, "emb", 0), PM_CLIENT_E_DIM);
	p.dim = 8;
	CU_ASSERT_EQUAL(pm_client_collection_create(c, "emb", &p), PM_CLIENT_E_EXISTS);
	p.dim = 4;
	p.evictable = true; /* the flag is a parameter too */
	CU_ASSERT_EQUAL(pm_client_collection_create(c, "emb", &p), PM_CLIENT_E_EXISTS);
	CU_ASSERT_EQUAL(pm_client_collection_create(c, "cache", &p), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_vdel(c, "v2", 2, &removed), PM_CLIENT_OK);
	CU_ASSERT(removed);
	CU_ASSERT_EQUAL(pm_client_vget(c, "v2", 2, &vo), PM_CLIENT_NOT_FOUND);
	CU_ASSERT_EQUAL(pm_client_vdel(c, "v2", 2, &removed), PM_CLIENT_OK);
	CU_ASSERT(!removed);
}

static void knn_and_collections(struct pm_client *c)
{
	const float q[4] = { 1, 2, 3, 4 };
	struct pm_client_hit hits[4];
	uint8_t keys[64];
	struct pm_client_knn_result res = { .hits = hits, .hits_cap = 4, .keys = keys,
					    .keys_cap = sizeof keys };
	struct pm_client_knn_opts o = { .k = 4, .exact = true, .collection = "emb" };
	CU_ASSERT_EQUAL(pm_client_vadd(c, "v2", 2, (const float[4]){ 1, 2, 3, 6 }, 4, "emb", 0),
			PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_knn(c, q, 4, &o, &res), PM_CLIENT_OK);
	CU_ASSERT_EQUAL_FATAL(res.count, 2);
	CU_ASSERT(hits[0].klen == 2 && memcmp(hits[0].key, "v1", 2) == 0 && hits[0].dist == 0.0f);
	CU_ASSERT(hits[1].klen == 2 && memcmp(hits[1].key, "v2", 2) == 0 && hits[1].dist == 4.0f);
	o.collection = NULL;
	CU_ASSERT_EQUAL(pm_client_knn(c, q, 4, &o, &res), PM_CLIENT_OK);
	CU_ASSERT(res.count == 1 && memcmp(hits[0].key, "d1", 2) == 0);
	o.collection = "nope";
	CU_ASSERT_EQUAL(pm_client_knn(c, q, 4, &o, &res), PM_CLIENT_NOT_FOUND);
	struct pm_client_coll_info items[8];
	struct pm_client_coll_list l = { .items = items, .cap = 8 };
	CU_ASSERT_EQUAL(pm_client_collection_list(c, &l), PM_CLIENT_OK);
	bool seen = false, cache = false;
	for (uint32_t i = 0; i < l.count; i++) {
		seen |= items[i].name_len == 3 && memcmp(items[i].name, "emb", 3) == 0 &&
			items[i].count == 2 && items[i].params.dim == 4 && !items[i].params.evictable;
		cache |= items[i].name_len == 5 && memcmp(items[i].name, "cache", 5) == 0 &&
			 items[i].params.evictable;
	}
	CU_ASSERT(l.count == 3 && seen && cache);
	bool removed = false;
	CU_ASSERT_EQUAL(pm_client_collection_drop(c, "emb", &removed), PM_CLIENT_OK);
	CU_ASSERT(removed);
	CU_ASSERT_EQUAL(pm_client_collection_drop(c, "emb", &removed), PM_CLIENT_OK);
	CU_ASSERT(!removed);
	char text[PM_CLIENT_INFO_TEXT_BYTES_MAX + 1];
	size_t n = 0;
	CU_ASSERT_EQUAL(pm_client_info(c, NULL, text, sizeof text - 1, &n), PM_CLIENT_OK);
	text[n] = '\0';
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "keys:"));
	CU_ASSERT_EQUAL(pm_client_info(c, "memory", text, sizeof text - 1, &n), PM_CLIENT_OK);
	text[n] = '\0';
	CU_ASSERT(strstr(text, "arena_bytes:") && !strstr(text, "# Keyspace")); /* one section */
	CU_ASSERT_EQUAL(pm_client_info(c, NULL, text, 4, &n), PM_CLIENT_E_NOSPACE);
}

static void every_op(enum pm_client_transport t)
{
	start(&F, (struct fake_opts){ .shards = 4 });
	struct pm_client *c = open_client(&F, t, T_TIMEOUT_MS, 3);
	kv_ops(c);
	large_ops(c);
	vector_ops(c);
	knn_and_collections(c);
	CU_ASSERT_EQUAL(pm_client_in_flight(c), 0);
	CU_ASSERT_EQUAL(atomic_load(&F.misroutes), 0);
	CU_ASSERT(atomic_load(&F.frames) > 90);
	pm_client_close(c);
	fake_stop(&F);
}

static void test_ops_udp(void)
{
	every_op(PM_CLIENT_UDP);
}

static void test_ops_tcp(void)
{
	every_op(PM_CLIENT_TCP);
}

/* ---------------------------------------------------------------- TTL */

static void test_ttl(void)
{
	start(&F, (struct fake_opts){ .shards = 2 });
	struct pm_client *c = open_client(&F, PM_CLIENT_UDP, T_TIMEOUT_MS, 3);
	const float v[2] = { 1, 2 };
	float out[2];
	struct pm_client_vector vo = { .vec = out, .cap = 2 };
	char buf[16];
	CU_ASSERT_EQUAL(pm_client_set(c, "t", 1, "x", 1, 1000), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_vadd(c, "tv", 2, v, 2, NULL, 500), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_set(c, "forever", 7, "y", 1, 0), PM_CLIENT_OK);
	fake_advance(&F, 499);
	CU_ASSERT_EQUAL(gets(c, "t", buf, sizeof buf), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_vget(c, "tv", 2, &vo), PM_CLIENT_OK);
	fake_advance(&F, 1);
	CU_ASSERT_EQUAL(pm_client_vget(c, "tv", 2, &vo), PM_CLIENT_NOT_FOUND);
	CU_ASSERT_EQUAL(gets(c, "t", buf, sizeof buf), PM_CLIENT_OK);
	fake_advance(&F, 500);
	CU_ASSERT_EQUAL(gets(c, "t", buf, sizeof buf), PM_CLIENT_NOT_FOUND);
	fake_advance(&F, UINT64_C(1) << 32);
	CU_ASSERT_EQUAL(gets(c, "forever", buf, sizeof buf), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_set(c, "t", 1, "x", 1, PM_CLIENT_TTL_MS_MAX + 1), PM_CLIENT_E_TTL);
	pm_client_close(c);
	fake_stop(&F);
}

/* ---------------------------------------------------------------- pipelined */

struct pipe_state {
	uint32_t ok, bad;
	uint8_t seen[T_PIPELINE_N];
};

static struct pipe_state P;

static size_t value_of(uint32_t i, char *out, size_t cap)
{
	int n = snprintf(out, cap, "value-%u-", i);
	size_t len = (size_t)n + i % 97; /* lengths vary: batches vary */
	for (size_t j = (size_t)n; j < len && j < cap; j++)
		out[j] = (char)('a' + (i + j) % 26);
	return len < cap ? len : cap;
}

static void set_cb(void *arg, const struct pm_client_result *r)
{
	uint32_t i = (uint32_t)(uintptr_t)arg;
	if (r->status == PM_CLIENT_OK && r->op == PM_CLIENT_SET)
		P.ok++;
	else
		P.bad++;
	P.seen[i]++;
}

static void get_cb(void *arg, const struct pm_client_result *r)
{
	uint32_t i = (uint32_t)(uintptr_t)arg;
	char want[160];
	size_t n = value_of(i, want, sizeof want);
	if (r->status == PM_CLIENT_OK && r->vlen == n && memcmp(r->value, want, n) == 0)
		P.ok++;
	else
		P.bad++;
	P.seen[i]++;
}

/* n SETs then n GETs, every reply checked; each request completes once. */
static void pipeline(struct pm_client *c, uint32_t n)
{
	char key[32], val[160];
	for (int phase = 0; phase < 2; phase++) {
		memset(&P, 0, sizeof P);
		for (uint32_t i = 0; i < n; i++) {
			struct pm_client_req q = { .op = phase ? PM_CLIENT_GET : PM_CLIENT_SET,
						   .key = key, .value = val,
						   .cb = phase ? get_cb : set_cb,
						   .arg = (void *)(uintptr_t)i };
			q.klen = (uint32_t)snprintf(key, sizeof key, "pipe:%u", i);
			q.vlen = phase ? 0 : (uint32_t)value_of(i, val, sizeof val);
			CU_ASSERT_EQUAL_FATAL(pm_client_submit(c, &q, NULL), PM_CLIENT_OK);
			CU_ASSERT(pm_client_in_flight(c) <= PM_CLIENT_IN_FLIGHT_DEFAULT);
		}
		pm_client_drain(c);
		CU_ASSERT_EQUAL(P.ok, n);
		CU_ASSERT_EQUAL(P.bad, 0);
		uint32_t once = 0;
		for (uint32_t i = 0; i < n; i++)
			once += P.seen[i] == 1;
		CU_ASSERT_EQUAL(once, n);
	}
}

static void test_pipeline_udp(void)
{
	start(&F, (struct fake_opts){ .shards = 4 });
	struct pm_client *c = open_client(&F, PM_CLIENT_UDP, T_TIMEOUT_MS, 3);
	pipeline(c, T_PIPELINE_N);
	struct pm_client_stats st;
	pm_client_stats(c, &st);
	CU_ASSERT_EQUAL(st.completed, 2 * T_PIPELINE_N);
	CU_ASSERT(st.datagrams_out < st.frames_out); /* frames were batched */
	CU_ASSERT_EQUAL(atomic_load(&F.misroutes), 0);
	pm_client_close(c);
	fake_stop(&F);
}

static void test_pipeline_tcp(void)
{
	start(&F, (struct fake_opts){ .shards = 4 });
	struct pm_client *c = open_client(&F, PM_CLIENT_TCP, T_TIMEOUT_MS, 3);
	pipeline(c, T_PIPELINE_N);
	pm_client_close(c);
	fake_stop(&F);
}

/* ---------------------------------------------------------------- packing (issue 20) */

/* SETs of PACK_VALUE_BYTES queued together: more than one Ethernet path's
 * datagram (1400 bytes) holds, fewer than PMC_BATCH_FRAMES_MAX frames. */
#define PACK_SETS 48u
#define PACK_VALUE_BYTES 120u

/* A UDP client of the one-shard fake F with these pack_flush_us and spin_us. */
static struct pm_client *open_packing(uint32_t flush_us, uint32_t spin_us)
{
	struct pm_client_config cfg = fake_config(&F, PM_CLIENT_UDP, T_TIMEOUT_MS);
	cfg.pack_flush_us = flush_us;
	cfg.spin_us = spin_us;
	return open_config(&cfg);
}

static enum pm_client_status submit_set(struct pm_client *c, uint32_t i)
{
	char key[32], val[PACK_VALUE_BYTES];
	memset(val, 'p', sizeof val);
	struct pm_client_req q = { .op = PM_CLIENT_SET, .key = key, .value = val,
				   .vlen = sizeof val, .cb = set_cb,
				   .arg = (void *)(uintptr_t)i };
	q.klen = (uint32_t)snprintf(key, sizeof key, "pack:%u", i);
	return pm_client_submit(c, &q, NULL);
}

/* To a server on loopback the frames queued for a shard leave in one datagram
 * of up to 64 KiB (an MTU's 1400 bytes before issue 20). */
static void test_pack_loopback(void)
{
	start(&F, (struct fake_opts){ .shards = 1 });
	struct pm_client *c = open_packing(PM_CLIENT_PACK_FLUSH_US_MAX, 0); /* no deadline here */
	memset(&P, 0, sizeof P);
	uint64_t before = atomic_load(&F.rx_datagrams);
	for (uint32_t i = 0; i < PACK_SETS; i++)
		CU_ASSERT_EQUAL_FATAL(submit_set(c, i), PM_CLIENT_OK);
	pm_client_drain(c);
	CU_ASSERT_EQUAL(P.ok, PACK_SETS);
	CU_ASSERT_EQUAL(atomic_load(&F.rx_datagrams) - before, 1);
	struct pm_client_stats st;
	pm_client_stats(c, &st);
	CU_ASSERT_EQUAL(st.datagrams_out, 1);
	CU_ASSERT_EQUAL(st.frames_out, PACK_SETS);
	pm_client_close(c);
	fake_stop(&F);
}

/* A frame queued without a poll waits for others at most pack_flush_us: the
 * submit that finds it older sends it first. */
static void test_pack_deadline(void)
{
	const uint32_t flush_us = 20000; /* longer than a loaded machine's preemption */
	start(&F, (struct fake_opts){ .shards = 1 });
	struct pm_client *c = open_packing(flush_us, 0);
	struct pm_client_stats st;
	memset(&P, 0, sizeof P);
	CU_ASSERT_EQUAL_FATAL(submit_set(c, 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL_FATAL(submit_set(c, 1), PM_CLIENT_OK);
	pm_client_stats(c, &st);
	CU_ASSERT_EQUAL(st.datagrams_out, 0); /* both wait to share a datagram */
	uint64_t t0 = proc_now_ns();
	while (proc_now_ns() - t0 <= (uint64_t)flush_us * 1000u)
		proc_pause_ms(1); /* the deadline itself is what this test is about: let it pass */
	CU_ASSERT_EQUAL_FATAL(submit_set(c, 2), PM_CLIENT_OK);
	pm_client_stats(c, &st);
	CU_ASSERT_EQUAL(st.datagrams_out, 1); /* the first two left, together */
	CU_ASSERT_EQUAL(st.frames_out, 2);
	pm_client_drain(c);
	CU_ASSERT_EQUAL(P.ok, 3);
	pm_client_close(c);
	fake_stop(&F);
}

/* spin_us: a poll with requests in flight reads without sleeping until a
 * reply completes one (counted), up to spin_us; 0 sleeps in poll(2) at once. */
#define SPIN_SETS 20u
#define SPIN_REPLY_DELAY_US 2000u

static uint64_t spin_answered(uint32_t spin_us)
{
	struct pm_client *c = open_packing(0, spin_us);
	memset(&P, 0, sizeof P);
	for (uint32_t i = 0; i < SPIN_SETS; i++) { /* one at a time: each waits for its reply */
		CU_ASSERT_EQUAL_FATAL(submit_set(c, i), PM_CLIENT_OK);
		pm_client_drain(c);
	}
	CU_ASSERT_EQUAL(P.ok, SPIN_SETS);
	struct pm_client_stats st;
	pm_client_stats(c, &st);
	pm_client_close(c);
	return st.spin_answered;
}

static void test_spin(void)
{
	/* replies SPIN_REPLY_DELAY_US late, so that none is there at the poll's
	 * first read; the longest spin: each comes while it reads (a resend's
	 * deadline, T_TIMEOUT_MS, would end a spin: it takes a lost datagram) */
	start(&F, (struct fake_opts){ .shards = 1, .reply_delay_us = SPIN_REPLY_DELAY_US });
	uint64_t spun = spin_answered(PM_CLIENT_SPIN_US_MAX);
	printf("\n  %" PRIu64 " of %u replies answered a spinning poll", spun, SPIN_SETS);
	CU_ASSERT(spun >= SPIN_SETS - 2);
	CU_ASSERT_EQUAL(spin_answered(0), 0); /* off: every wait sleeps */
	fake_stop(&F);
}

/* ---------------------------------------------------------------- loss, duplicates */

static void test_retries(void)
{
	start(&F, (struct fake_opts){ .shards = 2, .drop_rx_every = 9, .drop_tx_every = 11 });
	struct pm_client *c = open_client(&F, PM_CLIENT_UDP, T_SHORT_TIMEOUT_MS,
					  PM_CLIENT_RETRIES_MAX);
	pipeline(c, T_LOSSY_N);
	char buf[16];
	for (int i = 0; i < 40; i++) {
		CU_ASSERT_EQUAL(pm_client_set(c, "sync", 4, "v", 1, 0), PM_CLIENT_OK);
		CU_ASSERT_EQUAL(gets(c, "sync", buf, sizeof buf), PM_CLIENT_OK);
	}
	struct pm_client_stats st;
	pm_client_stats(c, &st);
	CU_ASSERT(st.resends > 0);
	CU_ASSERT(atomic_load(&F.rx_dropped) > 0 && atomic_load(&F.tx_dropped) > 0);
	CU_ASSERT_EQUAL(st.timeouts, 0);
	CU_ASSERT_EQUAL(atomic_load(&F.misroutes), 0);
	pm_client_close(c);
	fake_stop(&F);
}

static void test_duplicates(void)
{
	start(&F, (struct fake_opts){ .shards = 3, .duplicate = true });
	struct pm_client *c = open_client(&F, PM_CLIENT_UDP, T_TIMEOUT_MS, 3);
	pipeline(c, 1000);
	char buf[16];
	CU_ASSERT_EQUAL(pm_client_set(c, "d", 1, "v", 1, 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(gets(c, "d", buf, sizeof buf), PM_CLIENT_OK);
	pm_client_poll(c, 20); /* let the last duplicates arrive */
	struct pm_client_stats st;
	pm_client_stats(c, &st);
	CU_ASSERT(st.stale >= 1000); /* at least half of the 2 x 1002 duplicates seen */
	CU_ASSERT_EQUAL(st.completed, 2002);
	pm_client_close(c);
	fake_stop(&F);
}

/* ---------------------------------------------------------------- timeouts, busy */

static uint32_t timeouts_seen;

static void timeout_cb(void *arg, const struct pm_client_result *r)
{
	(void)arg;
	timeouts_seen += r->status == PM_CLIENT_E_TIMEOUT && r->attempts == 3;
}

static void test_timeout_udp(void)
{
	start(&F, (struct fake_opts){ .shards = 2, .mute = true });
	struct pm_client *c = open_client(&F, PM_CLIENT_UDP, T_SHORT_TIMEOUT_MS, 2);
	uint64_t t0 = proc_now_ms();
	CU_ASSERT_EQUAL(pm_client_set(c, "k", 1, "v", 1, 0), PM_CLIENT_E_TIMEOUT);
	uint64_t dt = proc_now_ms() - t0;
	CU_ASSERT(dt >= 20 + 40 + 80 - 2 && dt < 2000); /* the backoff schedule, jitter <= 25 % */
	struct pm_client_stats st;
	pm_client_stats(c, &st);
	CU_ASSERT(st.resends == 2 && st.timeouts == 1);
	CU_ASSERT_EQUAL(atomic_load(&F.rx_datagrams), 3);
	timeouts_seen = 0;
	for (int i = 0; i < 10; i++) {
		struct pm_client_req q = { .op = PM_CLIENT_GET, .key = &i, .klen = sizeof i,
					   .cb = timeout_cb };
		CU_ASSERT_EQUAL(pm_client_submit(c, &q, NULL), PM_CLIENT_OK);
	}
	pm_client_drain(c);
	CU_ASSERT_EQUAL(timeouts_seen, 10);
	pm_client_close(c);
	fake_stop(&F);
}

static void test_timeout_tcp(void)
{
	start(&F, (struct fake_opts){ .shards = 1, .mute = true });
	struct pm_client *c = open_client(&F, PM_CLIENT_TCP, T_SHORT_TIMEOUT_MS, 2);
	uint64_t t0 = proc_now_ms();
	CU_ASSERT_EQUAL(pm_client_del(c, "k", 1, NULL), PM_CLIENT_E_TIMEOUT);
	CU_ASSERT(proc_now_ms() - t0 >= 3 * T_SHORT_TIMEOUT_MS - 2);
	pm_client_close(c);
	/* Nothing listens on the TCP port of base_port + 1 (it is a UDP port). */
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.base_port = F.base_port + 1;
	cfg.transport = PM_CLIENT_TCP;
	cfg.timeout_ms = 200;
	CU_ASSERT_EQUAL(pm_client_open(&cfg, &c), PM_CLIENT_E_CONNECTION);
	CU_ASSERT_PTR_NULL(c);
	fake_stop(&F);
}

static void test_tcp_reconnect(void)
{
	start(&F, (struct fake_opts){ .shards = 2 });
	struct pm_client *c = open_client(&F, PM_CLIENT_TCP, T_TIMEOUT_MS, 3);
	char buf[16];
	CU_ASSERT_EQUAL(pm_client_set(c, "r", 1, "v", 1, 0), PM_CLIENT_OK);
	fake_close_conns(&F);
	CU_ASSERT_EQUAL(gets(c, "r", buf, sizeof buf), PM_CLIENT_E_CONNECTION);
	CU_ASSERT_EQUAL(gets(c, "r", buf, sizeof buf), PM_CLIENT_OK); /* reconnected */
	CU_ASSERT_STRING_EQUAL(buf, "v");
	pm_client_close(c);
	fake_stop(&F);
}

static void test_busy(void)
{
	start(&F, (struct fake_opts){ .shards = 1, .busy_first = 2 });
	struct pm_client *c = open_client(&F, PM_CLIENT_UDP, T_SHORT_TIMEOUT_MS, 3);
	CU_ASSERT_EQUAL(pm_client_set(c, "b", 1, "v", 1, 0), PM_CLIENT_OK);
	struct pm_client_stats st;
	pm_client_stats(c, &st);
	CU_ASSERT(st.resends >= 2); /* more if a timer beat a BUSY reply */
	pm_client_close(c);
	fake_stop(&F);
	start(&F, (struct fake_opts){ .shards = 1, .busy_first = 5 });
	c = open_client(&F, PM_CLIENT_UDP, T_SHORT_TIMEOUT_MS, 1);
	CU_ASSERT_EQUAL(pm_client_set(c, "b", 1, "v", 1, 0), PM_CLIENT_E_BUSY);
	pm_client_close(c);
	c = open_client(&F, PM_CLIENT_TCP, T_SHORT_TIMEOUT_MS, 1);
	CU_ASSERT_EQUAL(pm_client_set(c, "b", 1, "v", 1, 0), PM_CLIENT_E_BUSY);
	pm_client_close(c);
	fake_stop(&F);
}

/* ---------------------------------------------------------------- paged KNN */

#define KNN_N 150u
#define KNN_K 120u
#define KNN_KEY_BYTES 600u
#define KNN_DIM 8u
/* ~13 hits of 612 bytes per 8 KiB frame: a reply of ~10 frames. */
#define KNN_PAGE_BYTES 8192u

static uint8_t knn_keys[KNN_N][KNN_KEY_BYTES];
static float knn_vecs[KNN_N][KNN_DIM];

static void knn_data(void)
{
	for (uint32_t i = 0; i < KNN_N; i++) {
		int n = snprintf((char *)knn_keys[i], KNN_KEY_BYTES, "item-%04u-", i);
		for (uint32_t j = (uint32_t)n; j < KNN_KEY_BYTES; j++)
			knn_keys[i][j] = (uint8_t)('a' + (i + j) % 26);
		for (uint32_t d = 0; d < KNN_DIM; d++) /* small integers: exact distances */
			knn_vecs[i][d] = (float)((i * 7 + d * 13) % 11);
	}
}

static float knn_l2(const float *a, const float *b)
{
	float s = 0;
	for (uint32_t d = 0; d < KNN_DIM; d++)
		s += (a[d] - b[d]) * (a[d] - b[d]);
	return s;
}

static const float *knn_query;

static int by_dist_key(const void *a, const void *b)
{
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
	float da = knn_l2(knn_vecs[i], knn_query), db = knn_l2(knn_vecs[j], knn_query);
	if (da != db)
		return da < db ? -1 : 1;
	return memcmp(knn_keys[i], knn_keys[j], KNN_KEY_BYTES);
}

static void knn_check(struct pm_client *c)
{
	static struct pm_client_hit hits[KNN_K];
	static uint8_t keys[KNN_K * KNN_KEY_BYTES];
	static uint32_t order[KNN_N];
	const float q[KNN_DIM] = { 3, 1, 4, 1, 5, 9, 2, 6 };
	struct pm_client_knn_result res = { .hits = hits, .hits_cap = KNN_K, .keys = keys,
					    .keys_cap = sizeof keys };
	struct pm_client_knn_opts o = { .k = KNN_K, .exact = true };
	CU_ASSERT_EQUAL_FATAL(pm_client_knn(c, q, KNN_DIM, &o, &res), PM_CLIENT_OK);
	CU_ASSERT_EQUAL_FATAL(res.count, KNN_K);
	CU_ASSERT_EQUAL(res.keys_used, KNN_K * KNN_KEY_BYTES);
	for (uint32_t i = 0; i < KNN_N; i++)
		order[i] = i;
	knn_query = q;
	qsort(order, KNN_N, sizeof order[0], by_dist_key);
	uint32_t same = 0;
	for (uint32_t i = 0; i < KNN_K; i++)
		same += hits[i].klen == KNN_KEY_BYTES &&
			memcmp(hits[i].key, knn_keys[order[i]], KNN_KEY_BYTES) == 0 &&
			hits[i].dist == knn_l2(knn_vecs[order[i]], q);
	CU_ASSERT_EQUAL(same, KNN_K);
	o.k = KNN_K + 1;
	CU_ASSERT_EQUAL(pm_client_knn(c, q, KNN_DIM, &o, &res), PM_CLIENT_E_ARG); /* hits_cap < k */
	o.k = KNN_K;
	res.keys_cap = KNN_KEY_BYTES * 3;
	CU_ASSERT_EQUAL(pm_client_knn(c, q, KNN_DIM, &o, &res), PM_CLIENT_E_NOSPACE);
}

static void knn_paged(enum pm_client_transport t, bool lose)
{
	start(&F, (struct fake_opts){ .shards = 3, .page_bytes = KNN_PAGE_BYTES,
				      .lose_page1_once = lose });
	struct pm_client *c = open_client(&F, t, T_TIMEOUT_MS, 3);
	for (uint32_t i = 0; i < KNN_N; i++) {
		struct pm_client_req q = { .op = PM_CLIENT_VADD, .key = knn_keys[i],
					   .klen = KNN_KEY_BYTES, .vec = knn_vecs[i], .dim = KNN_DIM };
		CU_ASSERT_EQUAL(pm_client_submit(c, &q, NULL), PM_CLIENT_OK);
	}
	pm_client_drain(c);
	knn_check(c);
	struct pm_client_stats st;
	pm_client_stats(c, &st);
	CU_ASSERT(st.frames_in >= KNN_N + 8); /* the first reply alone took >= 9 frames */
	CU_ASSERT(lose ? st.page_gaps >= 1 : st.page_gaps == 0);
	CU_ASSERT_EQUAL(atomic_load(&F.misroutes), 0);
	pm_client_close(c);
	fake_stop(&F);
	CU_ASSERT_EQUAL(F.page1_lost, lose); /* read after the thread ended */
}

static void test_knn_paged(void)
{
	knn_data();
	knn_paged(PM_CLIENT_UDP, false);
	knn_paged(PM_CLIENT_UDP, true);
	knn_paged(PM_CLIENT_TCP, false);
}

/* ---------------------------------------------------------------- argument checks */

static enum pm_client_status nested_status;

static void nested_cb(void *arg, const struct pm_client_result *r)
{
	char buf[4];
	(void)r;
	nested_status = pm_client_get(arg, "x", 1, buf, sizeof buf, NULL);
}

static void test_args(void)
{
	start(&F, (struct fake_opts){ .shards = 1 });
	struct pm_client *c = open_client(&F, PM_CLIENT_UDP, T_TIMEOUT_MS, 3);
	static uint8_t big[PM_CLIENT_VALUE_BYTES_MAX + 1];
	const float v[2] = { 1, 2 };
	struct pm_client_hit hits[2];
	struct pm_client_knn_result res = { .hits = hits, .hits_cap = 2 };
	struct pm_client_knn_opts o = { .k = 2 };
	CU_ASSERT_EQUAL(pm_client_set(c, "", 0, "v", 1, 0), PM_CLIENT_E_KEY_LEN);
	CU_ASSERT_EQUAL(pm_client_set(c, big, PM_CLIENT_KEY_BYTES_MAX + 1, "v", 1, 0),
			PM_CLIENT_E_KEY_LEN);
	CU_ASSERT_EQUAL(pm_client_set(c, "k", 1, big, sizeof big, 0), PM_CLIENT_E_VALUE_LEN);
	CU_ASSERT_EQUAL(pm_client_set(c, "k", 1, NULL, 3, 0), PM_CLIENT_E_ARG);
	CU_ASSERT_EQUAL(pm_client_vadd(c, "k", 1, v, 0, NULL, 0), PM_CLIENT_E_DIM);
	CU_ASSERT_EQUAL(pm_client_vadd(c, "k", 1, v, PM_CLIENT_DIM_MAX + 1, NULL, 0), PM_CLIENT_E_DIM);
	memset(big, 'n', PM_CLIENT_COLLECTION_NAME_BYTES_MAX + 1); /* big[65] stays 0 */
	CU_ASSERT_EQUAL(pm_client_vadd(c, "k", 1, v, 2, (const char *)big, 0),
			PM_CLIENT_E_COLLECTION_NAME);
	CU_ASSERT_EQUAL(pm_client_knn(c, v, 2, &o, &res), PM_CLIENT_OK);
	o.k = 0;
	CU_ASSERT_EQUAL(pm_client_knn(c, v, 2, &o, &res), PM_CLIENT_E_K);
	o.k = 2;
	o.ef = 1;
	CU_ASSERT_EQUAL(pm_client_knn(c, v, 2, &o, &res), PM_CLIENT_E_EF);
	o.ef = 0;
	o.k = 3;
	CU_ASSERT_EQUAL(pm_client_knn(c, v, 2, &o, &res), PM_CLIENT_E_ARG);
	struct pm_client_coll_params p = { .dim = 2 };
	CU_ASSERT_EQUAL(pm_client_collection_create(c, "", &p), PM_CLIENT_E_COLLECTION_NAME);
	p.metric = 3;
	CU_ASSERT_EQUAL(pm_client_collection_create(c, "c", &p), PM_CLIENT_E_PARAM);
	CU_ASSERT_EQUAL(pm_client_collection_list(c, NULL), PM_CLIENT_E_ARG);
	CU_ASSERT_EQUAL(pm_client_info(c, "a-section-name-longer-than-32-bytes", NULL, 0, NULL),
			PM_CLIENT_E_PARAM);
	struct pm_client_req bad = { .op = (enum pm_client_op)99 };
	CU_ASSERT_EQUAL(pm_client_submit(c, &bad, NULL), PM_CLIENT_E_ARG);
	nested_status = PM_CLIENT_OK;
	struct pm_client_req q = { .op = PM_CLIENT_DEL, .key = "x", .klen = 1, .cb = nested_cb,
				   .arg = c };
	CU_ASSERT_EQUAL(pm_client_submit(c, &q, NULL), PM_CLIENT_OK);
	pm_client_drain(c);
	CU_ASSERT_EQUAL(nested_status, PM_CLIENT_E_WOULD_BLOCK);
	struct pm_client_stats st;
	pm_client_stats(c, &st);
	CU_ASSERT_EQUAL(st.requests, 2); /* only the good KNN and the DEL were sent */
	pm_client_close(c);
	fake_stop(&F);
}

/* ---------------------------------------------------------------- pomai-cli */

static char cli_out[T_CLI_OUT_BYTES];

/* Runs pomai-cli against fake f with the given arguments; returns its exit
 * code, and its stdout in cli_out. */
static int cli_run(const struct fake *f, const char *const *args)
{
	static struct proc cli;
	proc_init(&cli, cli_path);
	proc_arg(&cli, "--port");
	proc_argf(&cli, "%u", f->base_port);
	proc_arg(&cli, "--shards");
	proc_argf(&cli, "%u", f->o.shards);
	proc_args(&cli, args);
	cli.capture = PROC_CAPTURE_STDOUT;
	return proc_run(&cli, NULL, cli_out, sizeof(cli_out), 0);
}

#define CLI(f, code, ...)                                                              \
	CU_ASSERT_EQUAL(cli_run(f, (const char *const[]){ __VA_ARGS__, NULL }), code)

static void cli_kv(void)
{
	CLI(&F, 0, "set", "clikey", "clival");
	CU_ASSERT_STRING_EQUAL(cli_out, "OK\n");
	CLI(&F, 0, "get", "clikey");
	CU_ASSERT_STRING_EQUAL(cli_out, "clival"); /* raw: no newline when not a tty */
	CLI(&F, 0, "--hex", "get", "clikey");
	CU_ASSERT_STRING_EQUAL(cli_out, "636c6976616c\n");
	CLI(&F, 0, "set", "--ttl=1000", "tkey", "v");
	CLI(&F, 1, "get", "nokey");
	CLI(&F, 0, "del", "clikey");
	CU_ASSERT_STRING_EQUAL(cli_out, "1\n");
	CLI(&F, 1, "del", "clikey");
	CU_ASSERT_STRING_EQUAL(cli_out, "0\n");
	CLI(&F, 0, "info", "keyspace");
	CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "keys:"));
}

static void cli_vectors(void)
{
	CLI(&F, 0, "vadd", "vk", "1,2,3");
	CLI(&F, 0, "vadd", "vn", "-1,2,3");
	CLI(&F, 0, "vget", "vk");
	CU_ASSERT_STRING_EQUAL(cli_out, "1,2,3\n");
	CLI(&F, 0, "knn", "1,2,3", "--k", "1");
	CU_ASSERT_STRING_EQUAL(cli_out, "vk\t0\n");
	CLI(&F, 0, "knn", "-1,2,3.5", "--k=2", "--exact");
	CU_ASSERT_STRING_EQUAL(cli_out, "vn\t0.25\nvk\t4.25\n");
	CLI(&F, 0, "collection", "create", "c1", "--dim", "3", "--metric", "cosine", "--index",
	    "hnsw", "--m", "8", "--ef-construction", "100", "--ef-search", "20");
	CLI(&F, 3, "collection", "create", "c1", "--dim", "4");
	CLI(&F, 0, "vadd", "ck", "0,0,1", "--collection", "c1");
	CLI(&F, 0, "collection", "list");
	CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "c1 "));
	CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "cosine hnsw"));
	CLI(&F, 0, "knn", "0,1,1", "--collection", "c1", "--k", "1");
	CU_ASSERT_STRING_EQUAL(cli_out, "ck\t0.292893\n");
	CLI(&F, 0, "collection", "drop", "c1");
	CLI(&F, 1, "collection", "drop", "c1");
	/* element types: created, listed, read back as f32 */
	CLI(&F, 0, "collection", "create", "q1", "--dim", "3", "--dtype", "q8", "--rerank", "on",
	    "--rerank-candidates", "16");
	CLI(&F, 0, "collection", "create", "b1", "--dim", "3", "--dtype", "bin");
	CLI(&F, 0, "collection", "list");
	CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "q8     16"));
	CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "bin    off"));
	CLI(&F, 0, "vadd", "qk", "1,2,3", "--collection", "q1");
	CLI(&F, 0, "vget", "qk");
	CU_ASSERT_STRING_EQUAL(cli_out, "1,2,3\n"); /* the kept f32 */
	CLI(&F, 3, "collection", "create", "f1", "--dim", "3", "--rerank", "on"); /* f32: E_PARAM */
	CLI(&F, 2, "collection", "create", "x1", "--dim", "3", "--dtype", "q4");
	CLI(&F, 2, "collection", "create", "x1", "--dim", "3", "--rerank", "yes");
	CLI(&F, 2, "collection", "list", "--dtype", "q8");
	CLI(&F, 0, "collection", "drop", "q1");
	CLI(&F, 0, "collection", "drop", "b1");
	CLI(&F, 0, "vdel", "vn");
	CLI(&F, 1, "vget", "vn");
	CLI(&F, 3, "get", "vk"); /* WRONGTYPE */
}

static void cli_usage(void)
{
	CLI(&F, 0, "--help");
	CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "exit codes"));
	CLI(&F, 0, "knn", "--help");
	CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "--ef EF"));
	CLI(&F, 2, "bogus");
	CLI(&F, 2, "set", "onlykey");
	CLI(&F, 2, "get", "--ttl", "5", "k");
	CLI(&F, 2, "vadd", "k", "1,x,3");
	CLI(&F, 2, "knn", "1,2", "--k", "0");
	CLI(&F, 2, "--timeout", "0", "get", "k");
	CLI(&F, 2, "--host", "not-an-ip", "get", "k");
	CLI(&F, 2, "collection", "create", "c2");
	CLI(&F, 2, "load", "/nonexistent/file.csv");
}

/* A file of the given bytes with the given suffix; its path in path. */
static void write_file(char *path, const char *suffix, const void *data, size_t n)
{
	snprintf(path, 64, "/tmp/pomai-cli-XXXXXX%s", suffix);
	int fd = mkstemps(path, (int)strlen(suffix));
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(write(fd, data, n) == (ssize_t)n);
	close(fd);
}

/* What pomai-cli knn prints for each query alone, each line led by the
 * query's row: what knn --file must print for the queries together. */
static void cli_knn_each(const char *const *queries, uint32_t nq, const char *k,
			 const char *filter, char *want, size_t cap)
{
	size_t used = 0;
	want[0] = '\0';
	for (uint32_t i = 0; i < nq; i++) {
		if (filter) {
			CLI(&F, 0, "knn", queries[i], "filter", filter, "--k", k);
		} else {
			CLI(&F, 0, "knn", queries[i], "--k", k);
		}
		for (const char *line = cli_out; *line;) {
			const char *nl = strchr(line, '\n');
			CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
			int n = snprintf(want + used, cap - used, "%u\t%.*s\n", i, (int)(nl - line), line);
			CU_ASSERT_FATAL(n > 0 && (size_t)n < cap - used);
			used += (size_t)n;
			line = nl + 1;
		}
	}
}

static uint64_t fake_frames(void)
{
	pthread_mutex_lock(&F.mu);
	uint64_t n = F.frames;
	pthread_mutex_unlock(&F.mu);
	return n;
}

/* Issue 18: knn --file sends the file's queries in VQUERY batch frames and
 * prints what one knn per query prints, each line led by the query's row;
 * with a filter too; range takes a filter. fv: the 2-d vectors f:0..f:3 at
 * (i, 10 + i), loaded. */
static void cli_knn_batch(const char *fv)
{
	static char want[4096];
	const char *const qs[] = { "0,10", "3,13", "1.2,11", "2.4,12.4" };
	char txt[64], one[64], bad[64];
	const char text[] = "0,10\n# a comment\n\n3,13\n  1.2,11\n2.4 12.4\n";
	write_file(txt, ".txt", text, sizeof text - 1);
	cli_knn_each(qs, 4, "3", NULL, want, sizeof want);
	uint64_t frames = fake_frames();
	CLI(&F, 0, "knn", "--file", txt, "--k", "3");
	CU_ASSERT_STRING_EQUAL(cli_out, want);
	CU_ASSERT_EQUAL(fake_frames() - frames, 1); /* one VQUERY batch */
	/* k summed over a batch is at most 1024: 600 per query, one a frame */
	cli_knn_each(qs, 4, "600", NULL, want, sizeof want);
	frames = fake_frames();
	CLI(&F, 0, "knn", "--file", txt, "--k", "600");
	CU_ASSERT_STRING_EQUAL(cli_out, want);
	CU_ASSERT_EQUAL(fake_frames() - frames, 4);
	/* every record of a .fvecs file: the rows are the file's */
	const char *const fq[] = { "0,10", "1,11", "2,12", "3,13" };
	cli_knn_each(fq, 4, "2", NULL, want, sizeof want);
	CLI(&F, 0, "knn", "--file", fv, "--k", "2");
	CU_ASSERT_STRING_EQUAL(cli_out, want);
	/* filtered: only g:0 and g:1 have attributes */
	CLI(&F, 0, "vadd", "g:0", "0.5,10.5", "attr", "grp=a");
	CLI(&F, 0, "vadd", "g:1", "2.5,12.5", "attr", "grp=b");
	cli_knn_each(qs, 4, "2", "grp = 'a' or grp = 'b'", want, sizeof want);
	CU_ASSERT_PTR_NOT_NULL(strstr(want, "g:1"));
	CU_ASSERT_PTR_NULL(strstr(want, "f:"));
	CLI(&F, 0, "knn", "--file", txt, "filter", "grp = 'a' or grp = 'b'", "--k", "2");
	CU_ASSERT_STRING_EQUAL(cli_out, want);
	CLI(&F, 3, "knn", "--file", txt, "filter", "grp = ", "--k", "2"); /* E_FILTER */
	/* one query: the single-query format */
	write_file(one, ".txt", "3,13\n", 5);
	CLI(&F, 0, "knn", "--file", one, "--k", "1");
	CU_ASSERT_STRING_EQUAL(cli_out, "f:3\t0\n");
	/* a bad line: a usage error, and nothing sent */
	write_file(bad, ".txt", "1,2\n1,x\n", 8);
	frames = fake_frames();
	CLI(&F, 2, "knn", "--file", bad);
	CU_ASSERT_EQUAL(fake_frames(), frames);
	/* range with a filter: within squared L2 8 of (1,11), grp = 'a' only */
	CLI(&F, 0, "range", "1,11", "--radius", "8", "filter", "grp = 'a'");
	CU_ASSERT_STRING_EQUAL(cli_out, "g:0\t0.5\n");
	CLI(&F, 0, "vdel", "g:0");
	CLI(&F, 0, "vdel", "g:1");
	unlink(txt);
	unlink(one);
	unlink(bad);
}

static void cli_load_csv_fvecs(void)
{
	char csv[64], fv[64];
	const char text[] = "a,1,0,0\nb,0,1,0\n# comment\n\nc,0,0,1\n";
	write_file(csv, ".csv", text, sizeof text - 1);
	CLI(&F, 0, "load", csv, "--prefix", "csv:");
	CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "loaded 3 vectors"));
	CLI(&F, 0, "knn", "0,1,0", "--k", "1");
	CU_ASSERT_STRING_EQUAL(cli_out, "csv:b\t0\n");
	uint8_t rec[4][4 + 2 * 4];
	for (uint32_t i = 0; i < 4; i++) {
		float x[2] = { (float)i, (float)(10 + i) };
		uint32_t dim = 2;
		memcpy(rec[i], &dim, 4); /* little-endian host */
		memcpy(rec[i] + 4, x, 8);
	}
	write_file(fv, ".fvecs", rec, sizeof rec);
	pthread_mutex_lock(&F.mu);
	uint64_t frames = F.frames;
	pthread_mutex_unlock(&F.mu);
	CLI(&F, 0, "load", fv, "--prefix", "f:", "--inflight", "2");
	CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "loaded 4 vectors"));
	pthread_mutex_lock(&F.mu);
	CU_ASSERT_EQUAL(F.frames - frames, 1); /* issue 18: one VADD batch frame */
	pthread_mutex_unlock(&F.mu);
	/* range: the vectors within squared L2 2.5 of (1,11): f:0..f:2 */
	CLI(&F, 0, "range", "1,11", "--radius", "2.5");
	CU_ASSERT_STRING_EQUAL(cli_out, "f:1\t0\nf:0\t2\nf:2\t2\n");
	CLI(&F, 0, "range", "1,11", "--radius", "2.5", "--k", "1");
	CU_ASSERT_STRING_EQUAL(cli_out, "f:1\t0\n");
	CLI(&F, 2, "range", "1,11");
	CLI(&F, 0, "vget", "f:2");
	CU_ASSERT_STRING_EQUAL(cli_out, "2,12\n");
	CLI(&F, 0, "knn", "--file", fv, "--row", "3", "--k", "1");
	CU_ASSERT_STRING_EQUAL(cli_out, "f:3\t0\n");
	CLI(&F, 2, "knn", "--file", fv, "--row", "4");
	cli_knn_batch(fv);
	unlink(csv);
	unlink(fv);
}

static void cli_load_idx(void)
{
	char path[64] = "/tmp/pomai-cli-XXXXXX-idx3-ubyte.gz";
	int fd = mkstemps(path, (int)strlen("-idx3-ubyte.gz"));
	CU_ASSERT_FATAL(fd >= 0);
	gzFile gz = gzdopen(fd, "wb");
	const uint8_t head[16] = { 0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2 };
	uint8_t px[12];
	for (int i = 0; i < 12; i++)
		px[i] = (uint8_t)i;
	CU_ASSERT(gzwrite(gz, head, sizeof head) == sizeof head);
	CU_ASSERT(gzwrite(gz, px, sizeof px) == sizeof px);
	gzclose(gz);
	CLI(&F, 3, "load", path, "--prefix", "img:", "--collection", "pix");
	CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "3 failed: NOT_FOUND 3")); /* no collection yet */
	CLI(&F, 0, "collection", "create", "pix", "--dim", "4");
	CLI(&F, 0, "load", path, "--prefix", "img:", "--collection", "pix");
	CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "loaded 3 vectors"));
	CLI(&F, 0, "vget", "img:1");
	CU_ASSERT_STRING_EQUAL(cli_out, "4,5,6,7\n");
	unlink(path);
}

static void test_cli(void)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(cli_path);
	start(&F, (struct fake_opts){ .shards = 2 });
	cli_kv();
	cli_vectors();
	cli_usage();
	cli_load_csv_fvecs();
	cli_load_idx();
	CLI(&F, 0, "--tcp", "get", "tkey", "--hex");
	CU_ASSERT_STRING_EQUAL(cli_out, "76\n");
	char tcp_port[16];
	snprintf(tcp_port, sizeof tcp_port, "%u", F.base_port - 1);
	CLI(&F, 0, "--tcp", "--tcp-port", tcp_port, "get", "tkey");
	CU_ASSERT_STRING_EQUAL(cli_out, "v");
	CU_ASSERT_EQUAL(atomic_load(&F.misroutes), 0);
	start(&F2, (struct fake_opts){ .shards = 1, .mute = true });
	CLI(&F2, 4, "--timeout", "10", "--retries", "0", "get", "k");
	CLI(&F2, 4, "--timeout", "10", "--tcp", "get", "k");
	fake_stop(&F2);
	fake_stop(&F);
}

/* ---------------------------------------------------------------- snapshot */

/* F answers SNAPSHOT OK (started), F2 PARAM (a server without its log). */
static void test_snapshot(void)
{
	CU_ASSERT_EQUAL(pm_client_snapshot(NULL), PM_CLIENT_E_ARG);
	start(&F, (struct fake_opts){ .shards = 4 });
	start(&F2, (struct fake_opts){ .shards = 2, .snapshot_status = PM_E_PARAM });
	static const enum pm_client_transport ts[] = { PM_CLIENT_UDP, PM_CLIENT_TCP };
	for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
		struct pm_client *c = open_client(&F, ts[i], T_TIMEOUT_MS, 3);
		CU_ASSERT_EQUAL(pm_client_snapshot(c), PM_CLIENT_OK);
		CU_ASSERT_EQUAL(pm_client_in_flight(c), 0);
		pm_client_close(c);
		c = open_client(&F2, ts[i], T_TIMEOUT_MS, 3);
		CU_ASSERT_EQUAL(pm_client_snapshot(c), PM_CLIENT_E_PARAM);
		pm_client_close(c);
	}
	CU_ASSERT_EQUAL(atomic_load(&F.snapshots), 2);
	CU_ASSERT_EQUAL(atomic_load(&F2.snapshots), 2);
	CU_ASSERT_PTR_NOT_NULL(cli_path);
	if (cli_path) {
		CLI(&F, 0, "snapshot");
		CU_ASSERT_STRING_EQUAL(cli_out, "OK\n");
		CLI(&F, 0, "--tcp", "snapshot");
		CLI(&F, 2, "snapshot", "now");
		CLI(&F, 2, "snapshot", "--k", "3");
		CLI(&F2, 3, "snapshot");
		CU_ASSERT_STRING_EQUAL(cli_out, "");
		CLI(&F, 0, "snapshot", "--help");
		CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "wal = none"));
		CLI(&F, 0, "--help");
		CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "snapshot"));
		CU_ASSERT_EQUAL(atomic_load(&F.snapshots), 4);
	}
	CU_ASSERT_EQUAL(atomic_load(&F.misroutes) + atomic_load(&F2.misroutes), 0);
	fake_stop(&F2);
	fake_stop(&F);
}

/* ---------------------------------------------------------------- main */

static CU_TestInfo tests[] = {
	{ "config", test_config },
	{ "ops_udp", test_ops_udp },
	{ "ops_tcp", test_ops_tcp },
	{ "ttl", test_ttl },
	{ "pipeline_udp", test_pipeline_udp },
	{ "pipeline_tcp", test_pipeline_tcp },
	{ "pack_loopback", test_pack_loopback },
	{ "pack_deadline", test_pack_deadline },
	{ "spin_us: polls read without sleeping", test_spin },
	{ "retries", test_retries },
	{ "duplicates", test_duplicates },
	{ "timeout_udp", test_timeout_udp },
	{ "timeout_tcp", test_timeout_tcp },
	{ "tcp_reconnect", test_tcp_reconnect },
	{ "busy", test_busy },
	{ "knn_paged", test_knn_paged },
	{ "args", test_args },
	{ "cli", test_cli },
	{ "snapshot", test_snapshot },
	CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
	cli_path = argc > 1 ? argv[1] : getenv("POMAI_CLI");
	return pm_cu_run("client", tests);
}
