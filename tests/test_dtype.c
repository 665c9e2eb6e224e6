/* SPDX-License-Identifier: MIT
 *
 * test_dtype.c — integration suite for element types (engine/quant.h): a
 * real pomaid (path in argv[1], 2 shards, wal = sync, a data directory) with
 * a collection of each type, through libpomai and raw frames:
 *
 *  1. CLIST reports each collection's dtype and re-rank; VGET returns f32 and
 *     the collection's type, within the type's error bound (exact where f32
 *     is kept); KNN through the graph and by exact scan answers; a re-ranked
 *     collection's exact scan gives the exact f32 distances.
 *  2. SIGKILL, restart from the log alone: every KNN answer and every VGET
 *     is the same, bit for bit (the shard quantises the logged f32 again, to
 *     the same codes). Then a snapshot, SIGKILL, restart from the snapshot
 *     with nothing replayed: the same again.
 *  3. Bad values: a dtype past the known ones is E_DTYPE, rerank not 0 or 1
 *     or a count past PM_WIRE_RERANK_K_MAX is E_PARAM (raw frames, as the
 *     library refuses them itself), rerank on an f32 collection is E_PARAM
 *     (the server's engine), and nothing was created by any of them.
 *
 * Replication streams the same log records (the CCREATE record carries the
 * type), so it is not run again here.
 *
 * The daemon is waited for by its "ready" line and INFO counters polled with
 * a deadline: nothing sleeps to synchronise.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "frames.h"
#include "libclient.h"
#include "pomai.h"
#include "proc.h"

#define SHARDS 2u
#define DIM 16u
#define NVEC 600u  /* per collection: above PM_HNSW_FLAT_BELOW on each shard */
#define NQ 5u
#define K 10u
#define KEY_BYTES 24u
#define OPS_MAX 64u
#define LOOPBACK "127.0.0.1"
/* Where a frame header keeps body_len (docs/protocol.md 3). */
#define FRAME_BODY_LEN_OFF 16u

static const char *pomaid_path;
static const char *const flags[] = { "--wal", "sync", "--wal-batch-ms", "10", "--arena-bytes",
				     "64M", "--seeds", "65536", "--knn-timeout-ms", "2000",
				     "--hugepages", "no", NULL };
static struct pomaid srv = { .flags = flags };

static const struct {
	const char *name;
	uint8_t dtype, index;
	bool rerank;
	uint32_t rerank_k;
} colls[] = {
	{ "f16", PM_CLIENT_F16, PM_CLIENT_HNSW, false, 0 },
	{ "q8", PM_CLIENT_Q8, PM_CLIENT_HNSW, false, 0 },
	{ "q8r", PM_CLIENT_Q8, PM_CLIENT_HNSW, true, 40 },
	{ "bin", PM_CLIENT_BIN, PM_CLIENT_HNSW, false, 0 },
	{ "binr", PM_CLIENT_BIN, PM_CLIENT_FLAT, true, 0 },
};
#define NCOLLS (sizeof(colls) / sizeof(colls[0]))

static float data[NVEC][DIM], queries[NQ][DIM];

/* What the server answered: every collection's KNN (graph and exact) and VGETs. */
struct answers {
	uint32_t count[NCOLLS][NQ][2];
	uint8_t key[NCOLLS][NQ][2][K][KEY_BYTES];
	float dist[NCOLLS][NQ][2][K];
	float vget[NCOLLS][8][DIM];
};
static struct answers before, after;

static struct pm_client *open_client(void)
{
	return lib_open(&srv, LIB_TIMEOUT_MS, LIB_RETRIES, OPS_MAX);
}

static void create_and_load(struct pm_client *c)
{
	uint64_t rng = 0xD7E5u;
	for (uint32_t i = 0; i < NVEC; i++)
		for (uint32_t j = 0; j < DIM; j++)
			data[i][j] = (float)(pm_test_rand(&rng) % 20001) / 10000.0f - 1.0f;
	for (uint32_t i = 0; i < NQ; i++)
		for (uint32_t j = 0; j < DIM; j++)
			queries[i][j] = (float)(pm_test_rand(&rng) % 20001) / 10000.0f - 1.0f;
	for (size_t ci = 0; ci < NCOLLS; ci++) {
		struct pm_client_coll_params p = { .dim = DIM, .index = colls[ci].index,
						   .dtype = colls[ci].dtype,
						   .rerank = colls[ci].rerank,
						   .rerank_k = colls[ci].rerank_k };
		CU_ASSERT_EQUAL_FATAL(pm_client_collection_create(c, colls[ci].name, &p),
				      PM_CLIENT_OK);
		/* pipelined: with wal = sync a turn's VADDs share one fsync */
		struct pipe pp = { .c = c };
		for (uint32_t i = 0; i < NVEC; i++) {
			char key[KEY_BYTES];
			int kl = snprintf(key, sizeof key, "%s/%u", colls[ci].name, i);
			struct pm_client_req r = { .op = PM_CLIENT_VADD, .key = key,
						   .klen = (uint32_t)kl, .vec = data[i], .dim = DIM,
						   .name = colls[ci].name,
						   .name_len = (uint32_t)strlen(colls[ci].name) };
			pipe_submit(&pp, &r);
		}
		CU_ASSERT_FATAL(pipe_done(&pp, colls[ci].name));
	}
}

static void take_answers(struct pm_client *c, struct answers *a)
{
	memset(a, 0, sizeof *a);
	for (size_t ci = 0; ci < NCOLLS; ci++) {
		for (uint32_t q = 0; q < NQ; q++)
			for (int exact = 0; exact < 2; exact++) {
				struct pm_client_hit hits[K];
				uint8_t keys[K * KEY_BYTES];
				struct pm_client_knn_result res = { .hits = hits, .hits_cap = K,
								    .keys = keys,
								    .keys_cap = sizeof keys };
				struct pm_client_knn_opts o = { .k = K, .exact = exact,
								.collection = colls[ci].name };
				CU_ASSERT_EQUAL_FATAL(pm_client_knn(c, queries[q], DIM, &o, &res),
						      PM_CLIENT_OK);
				a->count[ci][q][exact] = res.count;
				for (uint32_t i = 0; i < res.count; i++) {
					memcpy(a->key[ci][q][exact][i], hits[i].key,
					       hits[i].klen < KEY_BYTES ? hits[i].klen : KEY_BYTES);
					a->dist[ci][q][exact][i] = hits[i].dist;
				}
			}
		for (uint32_t i = 0; i < 8; i++) {
			char key[KEY_BYTES];
			int kl = snprintf(key, sizeof key, "%s/%u", colls[ci].name, i * 37);
			struct pm_client_vector v = { .vec = a->vget[ci][i], .cap = DIM };
			CU_ASSERT_EQUAL_FATAL(pm_client_vget(c, key, (size_t)kl, &v), PM_CLIENT_OK);
			CU_ASSERT_EQUAL(v.dim, DIM);
			CU_ASSERT_EQUAL(v.dtype, colls[ci].dtype);
		}
	}
}

static double l2(const float *a, const float *b)
{
	double s = 0;
	for (uint32_t j = 0; j < DIM; j++)
		s += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
	return s;
}

/* Test 1. */
static void test_types_served(void)
{
	struct pm_client *c = open_client();
	CU_ASSERT_FATAL(c != NULL);
	create_and_load(c);
	static struct pm_client_coll_info items[PM_CLIENT_COLLECTIONS_MAX];
	struct pm_client_coll_list l = { .items = items, .cap = PM_CLIENT_COLLECTIONS_MAX };
	CU_ASSERT_EQUAL_FATAL(pm_client_collection_list(c, &l), PM_CLIENT_OK);
	uint32_t seen = 0;
	for (uint32_t i = 0; i < l.count; i++)
		for (size_t ci = 0; ci < NCOLLS; ci++)
			if (items[i].name_len == strlen(colls[ci].name) &&
			    !memcmp(items[i].name, colls[ci].name, items[i].name_len)) {
				seen++;
				CU_ASSERT_EQUAL(items[i].params.dtype, colls[ci].dtype);
				CU_ASSERT_EQUAL(items[i].params.rerank, colls[ci].rerank);
				/* 0 asks for the server's default, which CLIST then says */
				CU_ASSERT_EQUAL(items[i].params.rerank_k,
						colls[ci].rerank ? (colls[ci].rerank_k ? colls[ci].rerank_k : 64u)
								 : 0u);
				CU_ASSERT_EQUAL(items[i].count, NVEC);
			}
	CU_ASSERT_EQUAL(seen, NCOLLS);
	take_answers(c, &before);
	for (size_t ci = 0; ci < NCOLLS; ci++) {
		for (uint32_t i = 0; i < 8; i++) { /* VGET: the type's bound */
			const float *x = data[i * 37], *y = before.vget[ci][i];
			float amax = 0;
			for (uint32_t j = 0; j < DIM; j++)
				amax = fmaxf(amax, fabsf(x[j]));
			for (uint32_t j = 0; j < DIM; j++) {
				float err = fabsf(x[j] - y[j]);
				bool ok = colls[ci].rerank ? err == 0.0f
					: colls[ci].dtype == PM_CLIENT_F16 ? err <= ldexpf(fabsf(x[j]), -11) + 1e-7f
					: colls[ci].dtype == PM_CLIENT_Q8 ? err <= amax / 127.0f * 0.50001f
									  : (y[j] > 0) == (x[j] > 0);
				CU_ASSERT(ok);
			}
		}
		for (uint32_t q = 0; q < NQ; q++) {
			CU_ASSERT_EQUAL(before.count[ci][q][0], K);
			CU_ASSERT_EQUAL(before.count[ci][q][1], K);
		}
		if (!colls[ci].rerank)
			continue;
		/* re-ranked: the exact scan's distances are the f32 ones of its keys */
		for (uint32_t q = 0; q < NQ; q++)
			for (uint32_t i = 0; i < K; i++) {
				const char *slash = strchr((const char *)before.key[ci][q][1][i], '/');
				CU_ASSERT_FATAL(slash != NULL);
				uint32_t id = (uint32_t)atoi(slash + 1);
				CU_ASSERT_DOUBLE_EQUAL(before.dist[ci][q][1][i], l2(queries[q], data[id]),
						       1e-4);
			}
	}
	pm_client_close(c);
}

static void expect_same_answers(const char *after_what)
{
	struct pm_client *c = open_client();
	CU_ASSERT_FATAL(c != NULL);
	take_answers(c, &after);
	pm_client_close(c);
	int differ = 0;
	for (size_t ci = 0; ci < NCOLLS; ci++) {
		differ += memcmp(before.count[ci], after.count[ci], sizeof before.count[ci]) != 0;
		differ += memcmp(before.key[ci], after.key[ci], sizeof before.key[ci]) != 0;
		differ += memcmp(before.dist[ci], after.dist[ci], sizeof before.dist[ci]) != 0;
		differ += memcmp(before.vget[ci], after.vget[ci], sizeof before.vget[ci]) != 0;
	}
	printf("\n  %s: %d of %zu collections answer differently\n", after_what, differ, NCOLLS);
	CU_ASSERT_EQUAL(differ, 0);
}

/* Test 2. */
static void test_restart_from_log_and_snapshot(void)
{
	CU_ASSERT_FATAL(pomaid_kill(&srv));
	CU_ASSERT_FATAL(pomaid_start(&srv, NULL, NULL));
	CU_ASSERT(pomaid_recovered(&srv) >= NCOLLS * (NVEC + 1));
	expect_same_answers("restart from the log");
	CU_ASSERT_FATAL(lib_snapshot(&srv));
	CU_ASSERT(lib_info_reaches(&srv, "snapshots_completed", SHARDS, LIB_INFO_WAIT_MS));
	CU_ASSERT_FATAL(pomaid_kill(&srv));
	CU_ASSERT_FATAL(pomaid_start(&srv, NULL, NULL));
	CU_ASSERT_EQUAL(lib_info_of(&srv, "wal_recovered_records"), 0);
	CU_ASSERT(lib_info_of(&srv, "recovery_snapshot_nodes") > 0);
	expect_same_answers("restart from the snapshot");
}

/* A CCREATE of "bad" (dim 4, f32 flat) encoded, with its tail replaced by
 * `tail` (the bytes after coll_flags), sent raw to shard 0; the reply status. */
static enum pm_wire_status raw_ccreate(struct wire *w, const uint8_t *tail, size_t tail_len)
{
	static uint8_t buf[512];
	struct pm_request r = { .op = PM_OP_CCREATE, .id = w->next_id++,
				.collection = { (const uint8_t *)"bad", 3 },
				.params = { .dim = 4 } };
	size_t n = pm_request_encode(&r, buf, sizeof buf);
	CU_ASSERT_FATAL(n > 0 && n + tail_len <= sizeof buf);
	memcpy(buf + n, tail, tail_len);
	n += tail_len;
	uint32_t len = (uint32_t)(n - PM_FRAME_HEADER_BYTES); /* the body length field */
	memcpy(buf + FRAME_BODY_LEN_OFF, &len, 4); /* little-endian hosts (the codec's too) */
	struct pm_reply_view rv;
	for (int attempt = 0; attempt < WIRE_ATTEMPTS; attempt++) {
		CU_ASSERT_FATAL(wire_send(w, 0, buf, n));
		while (wire_recv(w, WIRE_REPLY_WAIT_MS, &rv))
			if (rv.id == r.id)
				return rv.status;
	}
	CU_FAIL_FATAL("no reply to a raw CCREATE");
	return PM_WIRE_E_INTERNAL;
}

/* Test 3. */
static void test_bad_values(void)
{
	struct wire w;
	CU_ASSERT_FATAL(wire_open(&w, NULL, LOOPBACK, srv.base, 500000));
	CU_ASSERT_FATAL(wire_validate(&w)); /* a write from an unvalidated address is RETRY */
	static const uint8_t dtype_unknown[] = { PM_WIRE_DTYPE_COUNT };
	static const uint8_t rerank_two[] = { PM_WIRE_DTYPE_Q8, 2, 0, 0, 0, 0 };
	static const uint8_t rerank_k_big[] = { PM_WIRE_DTYPE_Q8, 1, 0x01, 0x04, 0, 0 }; /* 1025 */
	static const uint8_t good[] = { PM_WIRE_DTYPE_Q8, 1, 0x00, 0x04, 0, 0 }; /* 1024 */
	CU_ASSERT_EQUAL(raw_ccreate(&w, dtype_unknown, sizeof dtype_unknown), PM_WIRE_E_DTYPE);
	CU_ASSERT_EQUAL(raw_ccreate(&w, rerank_two, sizeof rerank_two), PM_WIRE_E_PARAM);
	CU_ASSERT_EQUAL(raw_ccreate(&w, rerank_k_big, sizeof rerank_k_big), PM_WIRE_E_PARAM);
	struct pm_client *c = open_client();
	CU_ASSERT_FATAL(c != NULL);
	struct pm_client_coll_params p = { .dim = 4, .rerank = true }; /* f32: the engine says no */
	CU_ASSERT_EQUAL(pm_client_collection_create(c, "bad", &p), PM_CLIENT_E_PARAM);
	p = (struct pm_client_coll_params){ .dim = 4, .dtype = 9 };
	CU_ASSERT_EQUAL(pm_client_collection_create(c, "bad", &p), PM_CLIENT_E_DTYPE);
	static struct pm_client_coll_info items[PM_CLIENT_COLLECTIONS_MAX];
	struct pm_client_coll_list l = { .items = items, .cap = PM_CLIENT_COLLECTIONS_MAX };
	CU_ASSERT_EQUAL_FATAL(pm_client_collection_list(c, &l), PM_CLIENT_OK);
	for (uint32_t i = 0; i < l.count; i++)
		CU_ASSERT(!(items[i].name_len == 3 && !memcmp(items[i].name, "bad", 3)));
	/* the largest count is taken */
	CU_ASSERT_EQUAL(raw_ccreate(&w, good, sizeof good), PM_WIRE_OK);
	pm_client_close(c);
	wire_close(&w);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s POMAID\n", argv[0]);
		return 2;
	}
	pomaid_path = argv[1];
	srv.path = pomaid_path;
	srv.shards = SHARDS;
	if (!proc_dir_make(srv.dir, "dtype")) {
		fprintf(stderr, "no data directory\n");
		return 1;
	}
	if (!pomaid_start(&srv, NULL, NULL)) {
		fprintf(stderr, "pomaid did not start: %s\n", srv.proc.out);
		proc_dir_remove(srv.dir);
		return 1;
	}
	static CU_TestInfo tests[] = {
		{ "1. each type served: CLIST, VGET, KNN", test_types_served },
		{ "2. restart from the log, then from a snapshot", test_restart_from_log_and_snapshot },
		{ "3. bad dtype and rerank values", test_bad_values },
		CU_TEST_INFO_NULL,
	};
	int rc = pm_cu_run("dtype", tests);
	pomaid_stop(&srv);
	proc_dir_remove(srv.dir);
	return rc;
}
