/* SPDX-License-Identifier: MIT
 *
 * test_batch_io.c — batches and range search through a real pomaid (3
 * shards, wal = sync, a data directory; its path is argv[1]) and libpomai:
 *
 *  - a VADD batch across the shards, then VGET of every item: the vectors
 *    are there; after a restart on the data directory too (each item was
 *    logged as its own VADD record, and replayed); a replica following the
 *    primary gets every item;
 *  - a mixed batch: a NaN item and an item of the wrong dimension get their
 *    own statuses, the others are added;
 *  - a VQUERY batch equals the same queries one by one (keys and distances
 *    bit for bit, the order too), on a flat and on an HNSW collection;
 *  - VRANGE on a flat collection equals the exact radius set (the prefix of
 *    an exact KNN of every member within the radius); with a smaller max,
 *    the max nearest and the truncated flag; through an HNSW graph, only
 *    members within the radius;
 *  - the bounds: E_BATCH for a batch of 0 items and of one item above
 *    PM_WIRE_BATCH_ITEMS_MAX, sent as raw frames (libpomai refuses both
 *    before sending), and from libpomai's own check.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec.h"
#include "cu_main.h"
#include "libclient.h"
#include "pomai.h"
#include "proc.h"

#define SHARDS 2u
#define DIM 8u
#define N_ADD 300u     /* vectors of the VADD batch test */
#define N_COLL 600u    /* members of the search collections */
#define NQ 17u         /* queries of a batch */
#define K 10u
#define BATCH 100u     /* items per VADD batch frame */
#define TIMEOUT_MS 5000u
/* How long a replica may take to apply 150 records on a loaded machine: a
 * bound of the poll, not a delay. */
#define REPL_WAIT_MS 30000
#define PM_MIN(a, b) ((a) < (b) ? (a) : (b))

static const char *pomaid_path;
static struct pomaid D;
static struct pm_client *C;

static const char *const FLAGS[] = { "--wal", "sync", "--arena-bytes", "64M", "--seeds", "65536",
				     "--hugepages", "no", "--wal-segment-bytes", "16M", NULL };

static float frand(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (float)((*s >> 33) % 20001) / 1000.0f - 10.0f;
}

static void vec_of(uint32_t i, float *v)
{
	uint64_t s = 0x9E37u + i;
	for (uint32_t d = 0; d < DIM; d++)
		v[d] = frand(&s);
}

static bool start(void)
{
	D.flags = FLAGS;
	if (!pomaid_start(&D, NULL, NULL)) {
		fprintf(stderr, "pomaid did not start: %s\n", D.proc.out);
		return false;
	}
	C = lib_open(&D, TIMEOUT_MS, LIB_RETRIES, 0);
	return C != NULL;
}

static void stop(void)
{
	pm_client_close(C);
	C = NULL;
	CU_ASSERT(pomaid_stop(&D));
}

/* Add vectors [from, to) under "<prefix><i>" into coll, BATCH per frame. */
static void add_range(const char *prefix, const char *coll, uint32_t from, uint32_t to)
{
	static float vecs[BATCH][DIM];
	static char keys[BATCH][24];
	struct pm_client_item items[BATCH];
	enum pm_client_status st[BATCH];
	for (uint32_t at = from; at < to; at += BATCH) {
		uint32_t n = PM_MIN(BATCH, to - at);
		for (uint32_t i = 0; i < n; i++) {
			vec_of(at + i, vecs[i]);
			int kl = snprintf(keys[i], sizeof(keys[i]), "%s%u", prefix, at + i);
			items[i] = (struct pm_client_item){ keys[i], (uint32_t)kl, vecs[i], DIM };
		}
		CU_ASSERT_EQUAL_FATAL(pm_client_vadd_many(C, items, n, coll, 0, st), PM_CLIENT_OK);
		for (uint32_t i = 0; i < n; i++)
			CU_ASSERT_EQUAL(st[i], PM_CLIENT_OK);
	}
}

static uint32_t vget_matches(const char *prefix, uint32_t n)
{
	uint32_t same = 0;
	for (uint32_t i = 0; i < n; i++) {
		float want[DIM], got[DIM];
		char key[24];
		int kl = snprintf(key, sizeof(key), "%s%u", prefix, i);
		struct pm_client_vector out = { .vec = got, .cap = DIM };
		vec_of(i, want);
		same += pm_client_vget(C, key, (size_t)kl, &out) == PM_CLIENT_OK && out.dim == DIM &&
			memcmp(got, want, sizeof(want)) == 0;
	}
	return same;
}

static void make_coll(const char *name, uint8_t index)
{
	struct pm_client_coll_params p = { .dim = DIM, .metric = PM_CLIENT_L2, .index = index };
	CU_ASSERT_EQUAL_FATAL(pm_client_collection_create(C, name, &p), PM_CLIENT_OK);
}

/* ---------------------------------------------------------------- VADD batches */

static void test_vadd_batch(void)
{
	proc_kill_all();
	CU_ASSERT_FATAL(proc_dir_make(D.dir, "batch_io"));
	CU_ASSERT_FATAL(start());
	add_range("b:", NULL, 0, N_ADD);
	CU_ASSERT_EQUAL(vget_matches("b:", N_ADD), N_ADD);
	/* in all: each item once, on its owner (the Total sums the shards) */
	CU_ASSERT_EQUAL(lib_info(C, "keyspace", NULL, "vectors"), (long long)N_ADD);
	for (uint32_t s = 0; s < SHARDS; s++) { /* and every shard holds some */
		char part[16];
		snprintf(part, sizeof(part), "@shard:%u\r\n", s);
		CU_ASSERT(lib_info(C, "keyspace", part, "vectors") > 0);
	}
	stop();
	/* replayed from the log: logged as VADD records */
	CU_ASSERT_FATAL(start());
	CU_ASSERT(pomaid_recovered(&D) >= N_ADD);
	CU_ASSERT_EQUAL(vget_matches("b:", N_ADD), N_ADD);
	stop();
	proc_dir_remove(D.dir);
	D.dir[0] = '\0';
}

/* A replica follows: a batch's items are VADD records in the log, which is
 * what replication streams. */
static void test_vadd_batch_replicated(void)
{
	static struct pomaid R;
	char follow[32];
	proc_kill_all();
	CU_ASSERT_FATAL(proc_dir_make(D.dir, "batch_io_p"));
	D.repl = true;
	D.base = 0; /* free ports picked again, a repl_port with them */
	CU_ASSERT_FATAL(start());
	R = (struct pomaid){ .path = pomaid_path, .shards = SHARDS, .flags = FLAGS, .repl = true };
	CU_ASSERT_FATAL(proc_dir_make(R.dir, "batch_io_r"));
	snprintf(follow, sizeof(follow), "127.0.0.1:%u", D.repl_port);
	const char *const extra[] = { "--replica-of", follow, NULL };
	if (!pomaid_start(&R, extra, NULL))
		fprintf(stderr, "replica did not start: %s\n", R.proc.out);
	CU_ASSERT_FATAL(pomaid_alive(&R));
	add_range("r:", NULL, 0, 150);
	struct pm_client *primary = C;
	C = lib_open(&R, TIMEOUT_MS, LIB_RETRIES, 0);
	CU_ASSERT_FATAL(C != NULL);
	uint32_t same = 0;
	for (uint64_t until = proc_now_ms() + REPL_WAIT_MS; same < 150 && proc_now_ms() < until;) {
		same = vget_matches("r:", 150);
		if (same < 150)
			proc_pause_ms(PROC_POLL_MS);
	}
	CU_ASSERT_EQUAL(same, 150);
	pm_client_close(C);
	C = primary;
	CU_ASSERT(pomaid_stop(&R));
	stop();
	proc_dir_remove(R.dir);
	proc_dir_remove(D.dir);
	D.dir[0] = '\0';
	D.repl = false;
	D.repl_port = 0;
	D.base = 0;
}

static void test_vadd_batch_mixed(void)
{
	proc_kill_all();
	CU_ASSERT_FATAL(start());
	make_coll("m", PM_CLIENT_FLAT);
	float good[DIM], nan_vec[DIM], wide[DIM + 1];
	vec_of(1, good);
	memcpy(nan_vec, good, sizeof(good));
	nan_vec[3] = NAN;
	for (uint32_t d = 0; d <= DIM; d++)
		wide[d] = 1.0f;
	struct pm_client_item items[5] = {
		{ "m:0", 3, good, DIM }, { "m:nan", 5, nan_vec, DIM }, { "m:2", 3, good, DIM },
		{ "m:wide", 6, wide, DIM + 1 }, { "m:4", 3, good, DIM },
	};
	enum pm_client_status st[5];
	CU_ASSERT_EQUAL_FATAL(pm_client_vadd_many(C, items, 5, "m", 0, st), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(st[0], PM_CLIENT_OK);
	CU_ASSERT_EQUAL(st[1], PM_CLIENT_E_NAN);
	CU_ASSERT_EQUAL(st[2], PM_CLIENT_OK);
	CU_ASSERT_EQUAL(st[3], PM_CLIENT_E_DIM);
	CU_ASSERT_EQUAL(st[4], PM_CLIENT_OK);
	float got[DIM + 1];
	struct pm_client_vector out = { .vec = got, .cap = DIM + 1 };
	CU_ASSERT_EQUAL(pm_client_vget(C, "m:4", 3, &out), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_vget(C, "m:nan", 5, &out), PM_CLIENT_NOT_FOUND);
	CU_ASSERT_EQUAL(pm_client_vget(C, "m:wide", 6, &out), PM_CLIENT_NOT_FOUND);
	stop();
}

/* ---------------------------------------------------------------- VQUERY batches */

static void batch_equals_single(const char *coll)
{
	static float qv[NQ][DIM];
	static struct pm_client_hit bh[NQ * K], sh[K];
	static uint8_t bkeys[NQ * K * 32], skeys[K * 32];
	static uint32_t query[NQ * K];
	struct pm_client_item qs[NQ];
	for (uint32_t i = 0; i < NQ; i++) {
		vec_of(100000 + i, qv[i]);
		qs[i] = (struct pm_client_item){ NULL, 0, qv[i], DIM };
	}
	struct pm_client_knn_opts o = { .k = K, .collection = coll };
	struct pm_client_knn_result br = { .hits = bh, .hits_cap = NQ * K, .keys = bkeys,
					   .keys_cap = sizeof(bkeys) };
	CU_ASSERT_EQUAL_FATAL(pm_client_knn_many(C, qs, NQ, &o, &br, query), PM_CLIENT_OK);
	if (br.count != NQ * K)
		fprintf(stderr, "batch hits %u, want %u\n", br.count, NQ * K);
	CU_ASSERT_EQUAL_FATAL(br.count, NQ * K);
	int mismatches = 0;
	for (uint32_t i = 0; i < NQ; i++) {
		struct pm_client_knn_result sr = { .hits = sh, .hits_cap = K, .keys = skeys,
						   .keys_cap = sizeof(skeys) };
		CU_ASSERT_EQUAL_FATAL(pm_client_knn(C, qv[i], DIM, &o, &sr), PM_CLIENT_OK);
		CU_ASSERT_EQUAL_FATAL(sr.count, K);
		for (uint32_t j = 0; j < K; j++) {
			const struct pm_client_hit *b = &bh[i * K + j], *s = &sh[j];
			mismatches += query[i * K + j] != i || b->klen != s->klen ||
				      memcmp(b->key, s->key, s->klen) != 0 ||
				      memcmp(&b->dist, &s->dist, sizeof(float)) != 0;
		}
	}
	CU_ASSERT_EQUAL(mismatches, 0);
}

static void test_vquery_batch(void)
{
	proc_kill_all();
	CU_ASSERT_FATAL(start());
	make_coll("flat", PM_CLIENT_FLAT);
	make_coll("graph", PM_CLIENT_HNSW);
	add_range("f:", "flat", 0, N_COLL);
	add_range("g:", "graph", 0, N_COLL);
	batch_equals_single("flat");
	batch_equals_single("graph");
	stop();
}

/* ---------------------------------------------------------------- VRANGE */

static void test_vrange(void)
{
	static struct pm_client_hit all[N_COLL], got[PM_CLIENT_K_MAX];
	static uint8_t akeys[N_COLL * 32], gkeys[PM_CLIENT_K_MAX * 32];
	proc_kill_all();
	CU_ASSERT_FATAL(start());
	make_coll("flat", PM_CLIENT_FLAT);
	make_coll("graph", PM_CLIENT_HNSW);
	add_range("f:", "flat", 0, N_COLL);
	add_range("g:", "graph", 0, N_COLL);
	float q[DIM];
	vec_of(777777, q);
	/* every member, ordered, with the server's distances: the exact reference */
	struct pm_client_knn_opts all_o = { .k = N_COLL, .exact = true, .collection = "flat" };
	struct pm_client_knn_result ar = { .hits = all, .hits_cap = N_COLL, .keys = akeys,
					   .keys_cap = sizeof(akeys) };
	CU_ASSERT_EQUAL_FATAL(pm_client_knn(C, q, DIM, &all_o, &ar), PM_CLIENT_OK);
	CU_ASSERT_EQUAL_FATAL(ar.count, N_COLL);
	float radius = all[39].dist;
	uint32_t within = 0;
	while (within < N_COLL && all[within].dist <= radius)
		within++;
	struct pm_client_knn_opts o = { .k = PM_CLIENT_K_MAX, .collection = "flat" };
	struct pm_client_knn_result gr = { .hits = got, .hits_cap = PM_CLIENT_K_MAX, .keys = gkeys,
					   .keys_cap = sizeof(gkeys) };
	bool trunc = true;
	CU_ASSERT_EQUAL_FATAL(pm_client_vrange(C, q, DIM, radius, &o, &gr, &trunc), PM_CLIENT_OK);
	CU_ASSERT_EQUAL_FATAL(gr.count, within);
	CU_ASSERT_FALSE(trunc);
	int mismatches = 0;
	for (uint32_t i = 0; i < within; i++)
		mismatches += got[i].klen != all[i].klen ||
			      memcmp(got[i].key, all[i].key, all[i].klen) != 0 ||
			      got[i].dist != all[i].dist;
	CU_ASSERT_EQUAL(mismatches, 0);
	/* a max below the set: the max nearest, flagged */
	o.k = 5;
	gr.count = 0;
	gr.keys_used = 0;
	CU_ASSERT_EQUAL_FATAL(pm_client_vrange(C, q, DIM, radius, &o, &gr, &trunc), PM_CLIENT_OK);
	CU_ASSERT_EQUAL_FATAL(gr.count, 5);
	CU_ASSERT_TRUE(trunc);
	for (uint32_t i = 0; i < 5; i++)
		mismatches += memcmp(got[i].key, all[i].key, all[i].klen) != 0;
	CU_ASSERT_EQUAL(mismatches, 0);
	/* through the graph: only members within the radius, sorted */
	o = (struct pm_client_knn_opts){ .k = PM_CLIENT_K_MAX, .collection = "graph" };
	gr.count = 0;
	gr.keys_used = 0;
	CU_ASSERT_EQUAL_FATAL(pm_client_vrange(C, q, DIM, radius, &o, &gr, &trunc), PM_CLIENT_OK);
	CU_ASSERT(gr.count >= within / 2); /* the same vectors: the graph finds most */
	CU_ASSERT(gr.count <= within);
	for (uint32_t i = 0; i < gr.count; i++) {
		CU_ASSERT(got[i].dist <= radius);
		CU_ASSERT(i == 0 || got[i - 1].dist <= got[i].dist);
	}
	stop();
}

/* ---------------------------------------------------------------- bounds */

/* One raw VADD batch frame of `count` (no items) to shard 0; the reply's status. */
static int raw_batch_status(uint32_t count)
{
	uint8_t f[PM_FRAME_HEADER_BYTES + 5], r[256];
	struct pm_frame_header h = { .version = PM_FRAME_VERSION, .opcode = PM_OPCODE_VECTOR,
				     .id = 4242, .body_len = 5 };
	pm_header_encode(&h, f);
	f[PM_FRAME_HEADER_BYTES] = PM_VOP_ADD_BATCH;
	memcpy(f + PM_FRAME_HEADER_BYTES + 1, &count, 4); /* little endian hosts */
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(D.base),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int st = -1;
	if (sendto(fd, f, sizeof(f), 0, (struct sockaddr *)&a, sizeof(a)) == (ssize_t)sizeof(f)) {
		ssize_t n = recv(fd, r, sizeof(r), 0);
		struct pm_reply_view rv;
		size_t used;
		if (n > 0 && pm_reply_decode(r, (size_t)n, &rv, &used) == PM_WIRE_OK && rv.id == 4242)
			st = rv.status;
	}
	close(fd);
	return st;
}

static void test_bounds(void)
{
	proc_kill_all();
	CU_ASSERT_FATAL(start());
	CU_ASSERT_EQUAL(raw_batch_status(0), PM_WIRE_E_BATCH);
	CU_ASSERT_EQUAL(raw_batch_status(PM_WIRE_BATCH_ITEMS_MAX + 1), PM_WIRE_E_BATCH);
	enum pm_client_status st[1];
	struct pm_client_item one = { "x", 1, (const float[DIM]){ 1 }, DIM };
	CU_ASSERT_EQUAL(pm_client_vadd_many(C, &one, 0, NULL, 0, st), PM_CLIENT_E_BATCH);
	CU_ASSERT_EQUAL(pm_client_vadd_many(C, &one, PM_CLIENT_BATCH_ITEMS_MAX + 1, NULL, 0, st),
			PM_CLIENT_E_BATCH);
	stop();
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test_batch_io POMAID\n");
		return 2;
	}
	pomaid_path = argv[1];
	D = (struct pomaid){ .path = pomaid_path, .shards = SHARDS };
	static CU_TestInfo tests[] = {
		{ "VADD batch across shards = VGET each; replayed after a restart", test_vadd_batch },
		{ "VADD batch replicates (its items are VADD records)", test_vadd_batch_replicated },
		{ "mixed VADD batch: bad items fail alone", test_vadd_batch_mixed },
		{ "VQUERY batch = one by one (flat, HNSW)", test_vquery_batch },
		{ "VRANGE = the exact radius set; max, truncated; HNSW", test_vrange },
		{ "E_BATCH at 0 and above the bound", test_bounds },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("batch_io", tests);
}
