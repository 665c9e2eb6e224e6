/* SPDX-License-Identifier: MIT
 *
 * test_pomaid.c — integration suite: starts a real pomaid (path in argv[1])
 * with 2 shards on free loopback ports and talks to it over UDP with the frame
 * codec: every KV and vector op, binary keys, TTL, misrouted frames, KNN across
 * shards against a single in-process shard holding the same data, collections
 * and INFO fanned out, bad datagrams, concurrent clients with every reply
 * checked, TCP streams (pipelined, half-sent frames, clients that never read),
 * and shutdown / restart on the same ports.
 *
 * The daemon is waited for by reading its "ready" line, never by sleeping.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge.h"
#include "fixture.h"
#include "route.h"
#include "knn.h"
#include "pomai.h"
#include "proc.h"
#include "vector.h"
#include "frames.h"

#define SHARDS 2u
#define LOOPBACK "127.0.0.1"
/* The TTL test: a key's TTL, how soon after its SET was sent a GET must be
 * answered to prove it is there (the rest of the TTL is the margin for
 * pomaid's clock, read once per worker turn), how often a pair that took
 * longer (a loaded machine) is tried again, and how long expiry may take. */
#define TTL_MS 300
#define TTL_PROOF_MS (TTL_MS / 2)
#define TTL_TRIES 10
#define TTL_EXPIRE_WAIT_MS 4000

static struct pomaid srv = {
	.flags = (const char *const[]){ "--arena-bytes", "64M", "--seeds", "65536",
					"--knn-timeout-ms", "2000", NULL },
};

/* ---------------------------------------------------------------- the daemon */

static int suite_init(void)
{
	return pomaid_start(&srv, NULL, NULL) ? 0 : -1;
}

static int suite_clean(void)
{
	pomaid_stop(&srv);
	return 0;
}

/* ---------------------------------------------------------------- a UDP client */

/* A client of the daemon whose calls fail fast once it is gone. */
static void client_open(struct wire *c, uint64_t first_id)
{
	CU_ASSERT_FATAL(wire_open(c, NULL, LOOPBACK, srv.base, first_id));
	c->server = &srv.proc;
}

static uint32_t owner(const void *key, size_t len)
{
	return pm_shard_of(pm_route_hash(key, len), SHARDS);
}

static enum pm_status kv(struct wire *c, uint8_t op, struct pm_bytes k, struct pm_bytes v,
			 uint64_t ttl, uint32_t shard, struct pm_reply_view *rv)
{
	struct pm_request r = { .op = op, .key = k, .value = v, .ttl_ms = ttl, .has_ttl = ttl != 0 };
	CU_ASSERT_FATAL(wire_call(c, &r, shard, rv));
	return pm_status_from_wire(rv->status);
}

/* ---------------------------------------------------------------- tests */

static void test_kv_ops(void)
{
	struct wire c;
	struct pm_reply_view rv;
	client_open(&c, 1);
	const uint8_t key[] = { 'k', 0, 1, 0, 'x' };
	struct pm_bytes k = fx_b(key, sizeof(key)), v = fx_s("value\0with nul");
	uint32_t o = owner(key, sizeof(key));
	CU_ASSERT_EQUAL(kv(&c, PM_OP_SET, k, v, 0, o, &rv), PM_OK);
	CU_ASSERT_EQUAL(kv(&c, PM_OP_GET, k, fx_b(NULL, 0), 0, o, &rv), PM_OK);
	CU_ASSERT(rv.value.len == v.len && !memcmp(rv.value.ptr, v.ptr, v.len));
	/* misrouted: the other shard forwards it to the owner */
	CU_ASSERT_EQUAL(kv(&c, PM_OP_GET, k, fx_b(NULL, 0), 0, 1 - o, &rv), PM_OK);
	CU_ASSERT(rv.value.len == v.len && !memcmp(rv.value.ptr, v.ptr, v.len));
	CU_ASSERT_EQUAL(kv(&c, PM_OP_DEL, k, fx_b(NULL, 0), 0, 1 - o, &rv), PM_OK);
	CU_ASSERT_EQUAL(rv.removed, 1);
	CU_ASSERT_EQUAL(kv(&c, PM_OP_GET, k, fx_b(NULL, 0), 0, o, &rv), PM_NOT_FOUND);
	/* TTL: present while it runs (a GET answered within TTL_PROOF_MS of the
	 * SET being sent: a slower pair proves nothing and is tried again), gone
	 * once it has passed (checked, bounded) */
	enum pm_status st0 = PM_E_INTERNAL;
	uint64_t took = 0;
	for (int i = 0; i < TTL_TRIES && (i == 0 || took >= TTL_PROOF_MS); i++) {
		uint64_t t0 = proc_now_ms();
		CU_ASSERT_EQUAL(kv(&c, PM_OP_SET, fx_s("ttl"), fx_s("v"), TTL_MS, owner("ttl", 3), &rv),
				PM_OK);
		st0 = kv(&c, PM_OP_GET, fx_s("ttl"), fx_b(NULL, 0), 0, 0, &rv);
		took = proc_now_ms() - t0;
	}
	if (st0 != PM_OK || took >= TTL_PROOF_MS)
		printf("\n  GET after SET with TTL: %s, %llu ms after the SET was sent\n",
		       pm_status_name(st0), (unsigned long long)took);
	CU_ASSERT(took < TTL_PROOF_MS);
	CU_ASSERT_EQUAL(st0, PM_OK);
	enum pm_status st = PM_OK;
	for (uint64_t t0 = proc_now_ms(); st == PM_OK && proc_now_ms() - t0 < TTL_EXPIRE_WAIT_MS;) {
		proc_pause_ms(10); /* waiting for wall time to pass, not for a thread */
		st = kv(&c, PM_OP_GET, fx_s("ttl"), fx_b(NULL, 0), 0, 0, &rv);
	}
	CU_ASSERT_EQUAL(st, PM_NOT_FOUND);
	wire_close(&c);
}

static void test_vectors_and_knn(void)
{
	enum { N = 600, DIM = 12, Q = 20, K = 10 };
	static float base[N][DIM];
	struct wire c;
	struct pm_reply_view rv;
	struct pm_shard ref;
	client_open(&c, 100000);
	fx_shard(&ref, 32u << 20, 4096);
	uint64_t rng = 5;
	char key[32];
	for (int i = 0; i < N; i++) {
		for (int j = 0; j < DIM; j++)
			base[i][j] = (float)(pm_test_rand(&rng) % 100);
		int kl = snprintf(key, sizeof(key), "vec-%d", i);
		struct pm_request r = { .op = PM_OP_VADD, .key = fx_b(key, (size_t)kl),
					.vec = (const uint8_t *)base[i], .dim = DIM };
		CU_ASSERT_FATAL(wire_call(&c, &r, owner(key, (size_t)kl), &rv));
		CU_ASSERT_EQUAL_FATAL(rv.status, PM_WIRE_OK);
		CU_ASSERT_EQUAL_FATAL(fx_vadd(&ref, fx_b(key, (size_t)kl), NULL, base[i], DIM, 0, 0), PM_OK);
	}
	struct pm_request g = { .op = PM_OP_VGET, .key = fx_s("vec-7") };
	CU_ASSERT_FATAL(wire_call(&c, &g, 0, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
	CU_ASSERT(rv.dim == DIM && !memcmp(rv.value.ptr, base[7], sizeof(base[7])));
	int mismatches = 0;
	for (int q = 0; q < Q; q++) {
		float qv[DIM];
		for (int j = 0; j < DIM; j++)
			qv[j] = (float)(pm_test_rand(&rng) % 100);
		struct pm_request r = { .op = PM_OP_VQUERY, .vec = (const uint8_t *)qv, .dim = DIM, .k = K };
		CU_ASSERT_FATAL(wire_call(&c, &r, (uint32_t)q % SHARDS, &rv));
		CU_ASSERT_EQUAL_FATAL(rv.status, PM_WIRE_OK);
		struct pm_reply local;
		pm_shard_apply(&ref, &r, 0, &local);
		CU_ASSERT_EQUAL_FATAL(rv.count, local.nhits);
		struct pm_wire_bytes hk;
		float d;
		for (uint32_t i = 0; pm_reply_next_hit(&rv, &hk, &d); i++)
			mismatches += d != local.hits[i].dist || hk.len != local.keys[i].len ||
				      memcmp(hk.ptr, local.keys[i].ptr, hk.len);
	}
	CU_ASSERT_EQUAL(mismatches, 0);
	pm_shard_destroy(&ref);
	wire_close(&c);
}

static void test_collections_and_info(void)
{
	struct wire c;
	struct pm_reply_view rv;
	client_open(&c, 200000);
	struct pm_request cr = { .op = PM_OP_CCREATE, .collection = fx_s("coll"),
				 .params = { .dim = 3, .metric = PM_METRIC_COSINE } };
	CU_ASSERT_FATAL(wire_call(&c, &cr, 1, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
	float v[3] = { 1, 2, 3 };
	char key[16];
	for (int i = 0; i < 20; i++) { /* lands on both shards: the collection is on both */
		int kl = snprintf(key, sizeof(key), "c%d", i);
		struct pm_request r = { .op = PM_OP_VADD, .key = fx_b(key, (size_t)kl),
					.vec = (const uint8_t *)v, .dim = 3, .collection = fx_s("coll") };
		CU_ASSERT_FATAL(wire_call(&c, &r, 0, &rv));
		CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
	}
	struct pm_request l = { .op = PM_OP_CLIST,
				.list_flags = PM_CLIST_COLL_FLAGS | PM_CLIST_DTYPE };
	CU_ASSERT_FATAL(wire_call(&c, &l, 0, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
	struct pm_wire_coll_info ci;
	bool seen = false;
	while (pm_reply_next_coll(&rv, &ci))
		if (ci.name.len == 4 && !memcmp(ci.name.ptr, "coll", 4)) {
			seen = true;
			CU_ASSERT_EQUAL(ci.count, 20); /* summed over the shards */
		}
	CU_ASSERT(seen);
	struct pm_request info = { .op = PM_OP_INFO };
	CU_ASSERT_FATAL(wire_call(&c, &info, 1, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
	CU_ASSERT(memmem(rv.value.ptr, rv.value.len, "shards:2\r\n", 10) != NULL);
	CU_ASSERT(memmem(rv.value.ptr, rv.value.len, "shards_answered:2\r\n", 19) != NULL);
	CU_ASSERT(memmem(rv.value.ptr, rv.value.len, "forwarded_in:", 13) != NULL);
	struct pm_request drop = { .op = PM_OP_CDROP, .collection = fx_s("coll") };
	CU_ASSERT_FATAL(wire_call(&c, &drop, 0, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
	CU_ASSERT_EQUAL(rv.removed, 1);
	struct pm_request q = { .op = PM_OP_VQUERY, .vec = (const uint8_t *)v, .dim = 3, .k = 1,
				.collection = fx_s("coll") };
	CU_ASSERT_FATAL(wire_call(&c, &q, 0, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_NOT_FOUND);
	wire_close(&c);
}

/* Garbage and broken frames: never a crash, an error status where the frame can
 * be delimited, and well-formed requests keep being served. */
static void test_bad_traffic(void)
{
	struct wire c;
	struct pm_reply_view rv;
	client_open(&c, 300000);
	uint64_t rng = 77;
	uint8_t junk[2048];
	for (int i = 0; i < 3000; i++) {
		size_t n = 1 + pm_test_rand(&rng) % sizeof(junk);
		for (size_t j = 0; j < n; j++)
			junk[j] = (uint8_t)pm_test_rand(&rng);
		if (i % 3 == 0) { /* a valid header with a broken body */
			struct pm_request g = { .op = PM_OP_GET, .key = fx_s("x"), .id = 5 };
			size_t hn = pm_request_encode(&g, junk, sizeof(junk));
			junk[hn - 1] ^= 0xff;
			n = n < hn ? hn : n;
		}
		wire_send(&c, (uint32_t)i % SHARDS, junk, n);
		if (i % 500 == 0) { /* still serving */
			CU_ASSERT_EQUAL(kv(&c, PM_OP_SET, fx_s("alive"), fx_s("yes"), 0, 0, &rv), PM_OK);
		}
	}
	/* the replies to the junk are read first: left queued, they could fill the
	 * socket's buffer so that the kernel drops the reply this test waits for */
	CU_ASSERT_EQUAL(kv(&c, PM_OP_SET, fx_s("alive"), fx_s("yes"), 0, 0, &rv), PM_OK);
	wire_discard(&c);
	/* a frame with a bad body gets an error reply with its id */
	struct pm_request g = { .op = PM_OP_GET, .key = fx_s("abc") };
	g.id = 424242;
	size_t n = pm_request_encode(&g, c.buf, sizeof(c.buf));
	c.buf[24] = 0xff; /* key length now runs past the body */
	wire_send(&c, 0, c.buf, n);
	bool got = false;
	for (int i = 0; i < 1000 && !got && wire_recv(&c, WIRE_REPLY_WAIT_MS, &rv); i++)
		got = rv.id == 424242; /* every frame of every datagram */
	CU_ASSERT(got);
	CU_ASSERT(rv.status == PM_WIRE_E_KEY_LEN || rv.status == PM_WIRE_E_FRAME_LENGTH);
	CU_ASSERT_EQUAL(kv(&c, PM_OP_GET, fx_s("alive"), fx_b(NULL, 0), 0, 1, &rv), PM_OK);
	wire_close(&c);
}

struct mixed {
	int id;
	int bad;
};

static void *mixed_client(void *arg)
{
	struct mixed *m = arg;
	struct wire c;
	struct pm_reply_view rv;
	if (!wire_open(&c, NULL, LOOPBACK, srv.base, (uint64_t)(m->id + 1) << 40)) {
		m->bad++; /* no fatal assertion off the test's own thread */
		return NULL;
	}
	c.server = &srv.proc;
	char key[32], val[64];
	uint64_t rng = (uint64_t)m->id;
	for (int i = 0; i < 1500; i++) {
		int kn = snprintf(key, sizeof(key), "t%d-%d", m->id, i % 100);
		int vn = snprintf(val, sizeof(val), "v%d-%d", m->id, i);
		uint32_t shard = (uint32_t)(pm_test_rand(&rng) % SHARDS); /* half misrouted */
		struct pm_request s = { .op = PM_OP_SET, .key = fx_b(key, (size_t)kn),
					.value = fx_b(val, (size_t)vn) };
		if (!wire_call(&c, &s, shard, &rv) || rv.status != PM_WIRE_OK) {
			m->bad++;
			continue;
		}
		struct pm_request g = { .op = PM_OP_GET, .key = fx_b(key, (size_t)kn) };
		if (!wire_call(&c, &g, 1 - shard, &rv) || rv.status != PM_WIRE_OK || rv.value.len != (uint32_t)vn ||
		    memcmp(rv.value.ptr, val, (size_t)vn))
			m->bad++;
	}
	wire_close(&c);
	return NULL;
}

static void test_concurrent_clients(void)
{
	pthread_t t[4];
	struct mixed m[4];
	for (int i = 0; i < 4; i++) {
		m[i] = (struct mixed){ .id = i };
		pthread_create(&t[i], NULL, mixed_client, &m[i]);
	}
	int bad = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		bad += m[i].bad;
	}
	CU_ASSERT_EQUAL(bad, 0);
}

/* ---------------------------------------------------------------- packed replies */

/* GETs in one datagram, all of them the shard's own. */
#define PACK_FRAMES 32

/* Issue 20: the replies of one turn to one client share datagrams (up to
 * 64 KiB on loopback), in request order; a client splits them by each
 * frame's length (docs/protocol.md §2). One datagram of PACK_FRAMES GETs
 * (every other one a key that is there) is answered by one datagram holding
 * every reply. */
static void test_packed_replies(void)
{
	struct wire c;
	struct pm_reply_view rv;
	client_open(&c, 1);
	char key[PACK_FRAMES][32];
	int kn[PACK_FRAMES];
	for (int i = 0, n = 0; i < PACK_FRAMES; n++) { /* keys shard 0 owns */
		kn[i] = snprintf(key[i], sizeof(key[i]), "pack-%d", n);
		i += owner(key[i], (size_t)kn[i]) == 0;
	}
	for (int i = 0; i < PACK_FRAMES; i += 2)
		CU_ASSERT_EQUAL(kv(&c, PM_OP_SET, fx_b(key[i], (size_t)kn[i]), fx_s("packed"), 0, 0, &rv),
				PM_OK);
	wire_discard(&c);
	size_t len = 0;
	for (int i = 0; i < PACK_FRAMES; i++) {
		struct pm_request g = { .op = PM_OP_GET, .id = 9000u + (uint64_t)i,
					.key = fx_b(key[i], (size_t)kn[i]) };
		len += pm_request_encode(&g, c.buf + len, sizeof(c.buf) - len);
	}
	CU_ASSERT_FATAL(wire_send(&c, 0, c.buf, len));
	struct pollfd p = { .fd = c.fd, .events = POLLIN };
	CU_ASSERT_FATAL(poll(&p, 1, WIRE_REPLY_WAIT_MS) == 1);
	ssize_t r = recv(c.fd, c.in, sizeof(c.in), 0);
	size_t at = 0, used;
	int frames = 0, bad = 0;
	while (r > 0 && at < (size_t)r &&
	       pm_reply_decode(c.in + at, (size_t)r - at, &rv, &used) == PM_WIRE_OK) {
		bool there = frames % 2 == 0;
		bad += rv.id != 9000u + (uint64_t)frames ||
		       rv.status != (there ? PM_WIRE_OK : PM_WIRE_NOT_FOUND) ||
		       (there && (rv.value.len != 6 || memcmp(rv.value.ptr, "packed", 6)));
		frames++;
		at += used;
	}
	CU_ASSERT_EQUAL(at, (size_t)r); /* nothing after the last frame */
	CU_ASSERT_EQUAL(frames, PACK_FRAMES);
	CU_ASSERT_EQUAL(bad, 0);
	wire_close(&c);
}

/* ---------------------------------------------------------------- TCP */

static int tcp_connect(void)
{
	int fd = wire_tcp_connect(NULL, LOOPBACK, (uint16_t)(srv.base - 1u));
	struct timeval tv = { WIRE_REPLY_WAIT_MS / 1000, 0 };
	CU_ASSERT_FATAL(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Many frames in one stream, replies matched by id (they may come in any order). */
static void test_tcp_pipelined(void)
{
	enum { N = 400 };
	static uint8_t out[N * 128], in[1 << 20];
	static bool seen[N];
	int fd = tcp_connect();
	size_t len = 0;
	char key[32], val[32];
	for (int i = 0; i < N; i++) { /* SET then GET of the same key, owners on both shards */
		int kn = snprintf(key, sizeof(key), "tcp-%d", i / 2);
		int vn = snprintf(val, sizeof(val), "val-%d", i / 2);
		struct pm_request r = { .op = i % 2 ? PM_OP_GET : PM_OP_SET, .id = (uint64_t)i,
					.key = fx_b(key, (size_t)kn), .value = fx_b(val, (size_t)vn) };
		len += pm_request_encode(&r, out + len, sizeof(out) - len);
	}
	CU_ASSERT_FATAL(wire_write_all(fd, out, len));
	size_t have = 0;
	int replies = 0, bad = 0;
	while (replies < N) {
		ssize_t r = recv(fd, in + have, sizeof(in) - have, 0);
		if (r <= 0)
			break;
		have += (size_t)r;
		size_t off = 0, used;
		struct pm_reply_view rv;
		while (pm_reply_decode(in + off, have - off, &rv, &used) == PM_WIRE_OK) {
			uint64_t id = rv.id;
			bad += id >= N || seen[id] || rv.status != PM_WIRE_OK;
			if (id < N && id % 2) {
				int vn = snprintf(val, sizeof(val), "val-%d", (int)id / 2);
				bad += rv.value.len != (uint32_t)vn || memcmp(rv.value.ptr, val, (size_t)vn);
			}
			if (id < N)
				seen[id] = true;
			replies++;
			off += used;
		}
		memmove(in, in + off, have - off);
		have -= off;
	}
	CU_ASSERT_EQUAL(replies, N);
	CU_ASSERT_EQUAL(bad, 0);
	close(fd);
}

/* A client that sends half a frame and stalls, and one that never reads its
 * replies, hold no worker: others keep being served on UDP and TCP. */
static void test_tcp_stalled_clients(void)
{
	int half = tcp_connect(), deaf = tcp_connect();
	struct pm_request g = { .op = PM_OP_GET, .id = 1, .key = fx_s("alive") };
	uint8_t frame[128], flood[64 * 1024];
	size_t n = pm_request_encode(&g, frame, sizeof(frame));
	CU_ASSERT_FATAL(wire_write_all(half, frame, n / 2));
	size_t fl = 0;
	while (fl + n <= sizeof(flood)) {
		memcpy(flood + fl, frame, n);
		fl += n;
	}
	int fl_flags = MSG_DONTWAIT | MSG_NOSIGNAL;
	for (int i = 0; i < 64; i++) /* never read: fill its reply buffers */
		if (send(deaf, flood, fl, fl_flags) < 0)
			break;
	struct wire c;
	struct pm_reply_view rv;
	client_open(&c, 500000);
	for (int i = 0; i < 50; i++)
		CU_ASSERT_EQUAL(kv(&c, PM_OP_SET, fx_s("alive"), fx_s("yes"), 0, (uint32_t)i % SHARDS, &rv),
				PM_OK);
	int ok = tcp_connect();
	CU_ASSERT_FATAL(wire_write_all(ok, frame, n));
	uint8_t in[256];
	ssize_t r = recv(ok, in, sizeof(in), 0);
	size_t used;
	CU_ASSERT(r > 0 && pm_reply_decode(in, (size_t)r, &rv, &used) == PM_WIRE_OK &&
		  rv.status == PM_WIRE_OK);
	close(ok);
	close(half);
	close(deaf);
	wire_close(&c);
}

/* ---------------------------------------------------------------- libpomai */

static struct pm_client *lib_open(enum pm_client_transport t)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.base_port = srv.base;
	cfg.shards = SHARDS;
	cfg.transport = t;
	cfg.timeout_ms = 500;
	struct pm_client *c = NULL;
	CU_ASSERT_EQUAL_FATAL(pm_client_open(&cfg, &c), PM_CLIENT_OK);
	return c;
}

static void lib_every_op(struct pm_client *c, const char *tag)
{
	char key[32], coll[32], buf[256];
	size_t n;
	bool removed;
	memset(key, 0, sizeof(key));
	memcpy(key, tag, 3); /* "udp"/"tcp", then NUL bytes: a binary key of 12 bytes */
	key[7] = 'k';
	CU_ASSERT_EQUAL(pm_client_set(c, key, 12, "v\0v", 3, 0), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_get(c, key, 12, buf, sizeof(buf), &n), PM_CLIENT_OK);
	CU_ASSERT(n == 3 && !memcmp(buf, "v\0v", 3));
	CU_ASSERT_EQUAL(pm_client_del(c, key, 12, &removed), PM_CLIENT_OK);
	CU_ASSERT(removed);
	CU_ASSERT_EQUAL(pm_client_get(c, key, 12, buf, sizeof(buf), &n), PM_CLIENT_NOT_FOUND);
	snprintf(coll, sizeof(coll), "lib-%s", tag);
	struct pm_client_coll_params p = { .dim = 4, .metric = PM_CLIENT_L2, .index = PM_CLIENT_HNSW };
	CU_ASSERT_EQUAL(pm_client_collection_create(c, coll, &p), PM_CLIENT_OK);
	float v[4] = { 1, 2, 3, 4 }, back[4];
	for (int i = 0; i < 50; i++) {
		int kl = snprintf(key, sizeof(key), "%s-v%d", tag, i);
		v[0] = (float)i;
		CU_ASSERT_EQUAL(pm_client_vadd(c, key, (size_t)kl, v, 4, coll, 0), PM_CLIENT_OK);
	}
	struct pm_client_vector out = { .vec = back, .cap = 4 };
	int kl = snprintf(key, sizeof(key), "%s-v7", tag);
	CU_ASSERT_EQUAL(pm_client_vget(c, key, (size_t)kl, &out), PM_CLIENT_OK);
	CU_ASSERT(out.dim == 4 && back[0] == 7.0f && out.collection_len == strlen(coll));
	struct pm_client_hit hits[5];
	uint8_t keys[512];
	struct pm_client_knn_result res = { .hits = hits, .hits_cap = 5, .keys = keys,
					    .keys_cap = sizeof(keys) };
	struct pm_client_knn_opts o = { .k = 5, .collection = coll };
	v[0] = 7.2f;
	CU_ASSERT_EQUAL(pm_client_knn(c, v, 4, &o, &res), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(res.count, 5);
	CU_ASSERT(res.count > 0 && hits[0].klen == (uint32_t)kl && !memcmp(hits[0].key, key, (size_t)kl));
	CU_ASSERT_EQUAL(pm_client_vdel(c, key, (size_t)kl, &removed), PM_CLIENT_OK);
	CU_ASSERT(removed);
	static char info[PM_CLIENT_INFO_REPLY_BYTES_MAX]; /* the whole text, every shard */
	CU_ASSERT_EQUAL(pm_client_info(c, NULL, info, sizeof(info), &n), PM_CLIENT_OK);
	CU_ASSERT(memmem(info, n, "shards:2", 8) != NULL);
	/* every shard starts a snapshot (wal = batch), or goes on with its own */
	CU_ASSERT_EQUAL(pm_client_snapshot(c), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_collection_drop(c, coll, &removed), PM_CLIENT_OK);
	CU_ASSERT(removed);
}

struct lib_check {
	int done, bad;
};

static void lib_cb(void *arg, const struct pm_client_result *r)
{
	struct lib_check *k = arg;
	k->done++;
	k->bad += r->status != PM_CLIENT_OK;
}

/* Every op through libpomai over UDP and TCP, then 5,000 pipelined SETs. */
static void test_libpomai(void)
{
	struct pm_client *u = lib_open(PM_CLIENT_UDP), *t = lib_open(PM_CLIENT_TCP);
	lib_every_op(u, "udp");
	lib_every_op(t, "tcp");
	struct lib_check k = { 0 };
	char key[32];
	for (int i = 0; i < 5000; i++) {
		int kl = snprintf(key, sizeof(key), "pipe-%d", i);
		struct pm_client_req r = { .op = PM_CLIENT_SET, .key = key, .klen = (uint32_t)kl,
					   .value = key, .vlen = (uint32_t)kl, .cb = lib_cb, .arg = &k };
		CU_ASSERT_EQUAL_FATAL(pm_client_submit(u, &r, NULL), PM_CLIENT_OK);
	}
	pm_client_drain(u);
	CU_ASSERT_EQUAL(k.done, 5000);
	CU_ASSERT_EQUAL(k.bad, 0);
	char buf[64];
	size_t n;
	CU_ASSERT_EQUAL(pm_client_get(t, "pipe-4321", 9, buf, sizeof(buf), &n), PM_CLIENT_OK);
	CU_ASSERT(n == 9 && !memcmp(buf, "pipe-4321", 9));
	pm_client_close(u);
	pm_client_close(t);
}

static void test_shutdown_restart(void)
{
	CU_ASSERT(pomaid_stop(&srv)); /* exit code 0 */
	CU_ASSERT(proc_ports_free(srv.base, SHARDS)); /* released */
	CU_ASSERT_FATAL(pomaid_start(&srv, NULL, NULL)); /* on the same ports */
	struct wire c;
	struct pm_reply_view rv;
	client_open(&c, 400000);
	CU_ASSERT_EQUAL(kv(&c, PM_OP_SET, fx_s("after"), fx_s("restart"), 0, 0, &rv), PM_OK);
	/* what was written before the stop came back from the log (wal = batch) */
	CU_ASSERT_EQUAL(kv(&c, PM_OP_GET, fx_s("pipe-4321"), fx_s(""), 0, 0, &rv), PM_OK);
	CU_ASSERT(rv.value.len == 9 && !memcmp(rv.value.ptr, "pipe-4321", 9));
	wire_close(&c);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test_pomaid PATH-TO-POMAID\n");
		return 1;
	}
	srv.path = argv[1];
	if (!proc_dir_make(srv.dir, "test")) { /* fresh per run: the WAL lives there */
		perror("mkdtemp");
		return 1;
	}
	static CU_TestInfo tests[] = {
		{ "KV ops, binary keys, misrouting, TTL", test_kv_ops },
		{ "vectors; KNN across shards equals one shard", test_vectors_and_knn },
		{ "collections and INFO fanned out", test_collections_and_info },
		{ "bad traffic", test_bad_traffic },
		{ "4 concurrent clients, every reply checked", test_concurrent_clients },
		{ "replies of one turn packed into one datagram", test_packed_replies },
		{ "TCP: pipelined frames", test_tcp_pipelined },
		{ "TCP: stalled clients hold nothing", test_tcp_stalled_clients },
		{ "libpomai: every op over UDP and TCP, pipelined", test_libpomai },
		{ "shutdown and restart on the same ports", test_shutdown_restart },
		CU_TEST_INFO_NULL,
	};
	int rc = pm_cu_run_suite("pomaid", suite_init, suite_clean, tests);
	proc_dir_remove(srv.dir);
	return rc;
}
