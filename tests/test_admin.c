/* SPDX-License-Identifier: MIT
 *
 * test_admin.c — the control plane against a live pomaid (argv[1]; pomaictl
 * is argv[2]) on free loopback ports:
 *  - the stats segment: a reader hammering it while clients load the daemon
 *    never keeps a torn block (a histogram's count always equals the sum of
 *    its buckets) nor sees a counter go back, and the counters add up to what
 *    the clients sent;
 *  - pomaictl: every subcommand, as text and as JSON (checked by Python's
 *    json module), bad arguments give usage and exit 2, an unreachable
 *    socket exits 3, a key that needs a restart exits 1;
 *  - the admin socket: mode 0600, a request past PM_ADMIN_MESSAGE_BYTES_MAX
 *    or a malformed one, and one connection too many, each handled without
 *    harm to the others;
 *  - shutdown: pomaictl stops the daemon, which exits 0 and removes its socket.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin_proto.h"
#include "ctl.h"
#include "cu_main.h"
#include "pomai.h"
#include "proc.h"
#include "request.h"
#include "stats.h"

#define SHARDS 2u
#define LOAD_OPS 20000u
#define LOAD_DEPTH 32u
#define POLL_MS 10
#define WAIT_MS 10000
/* pomaid's PM_ADMIN_CONNS_MAX (dataplane/dp_limits.h) */
#define PM_ADMIN_CONNS_MAX_TEST 8u

static const char *ctl_path;
static char sock[PATH_MAX + 16];
static struct pomaid srv = {
	.flags = (const char *const[]){ "--arena-bytes", "64M", "--seeds", "65536", "--hugepages",
					"no", "--knn-timeout-ms", "2000", NULL },
};

/* ---------------------------------------------------------------- the daemon */

static int suite_init(void)
{
	if (!proc_dir_make(srv.dir, "admin"))
		return -1;
	snprintf(sock, sizeof(sock), "%s/admin.sock", srv.dir);
	return pomaid_start(&srv, NULL, NULL) ? 0 : -1;
}

static int suite_clean(void)
{
	if (pomaid_alive(&srv))
		proc_stop(&srv.proc, SIGKILL, PROC_EXIT_WAIT_MS);
	proc_dir_remove(srv.dir);
	return 0;
}

/* ---------------------------------------------------------------- pomaictl */

static void expect(const char *args, int code, const char *has)
{
	ctl_expect(ctl_path, sock, args, code, has);
}

/* ---------------------------------------------------------------- the stats segment */

static atomic_int load_done;
static atomic_uint_fast64_t load_acked;

static void on_reply(void *arg, const struct pm_client_result *r)
{
	(void)arg;
	if (r->status == PM_CLIENT_OK || r->status == PM_CLIENT_NOT_FOUND)
		atomic_fetch_add(&load_acked, 1);
}

static void *load(void *arg)
{
	(void)arg;
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.base_port = srv.base;
	cfg.shards = SHARDS;
	cfg.timeout_ms = 1000;
	struct pm_client *c = NULL;
	if (pm_client_open(&cfg, &c) == PM_CLIENT_OK) {
		char key[32];
		for (uint32_t i = 0; i < LOAD_OPS; i++) {
			int kl = snprintf(key, sizeof(key), "load-%u", i % 3000u);
			struct pm_client_req r = { .op = i % 2 ? PM_CLIENT_GET : PM_CLIENT_SET,
						   .key = key, .klen = (uint32_t)kl, .value = key,
						   .vlen = (uint32_t)kl, .cb = on_reply };
			if (pm_client_submit(c, &r, NULL) != PM_CLIENT_OK)
				break;
		}
		pm_client_drain(c);
		pm_client_close(c);
	}
	atomic_store(&load_done, 1);
	return NULL;
}

struct seen {
	uint64_t publishes, frames, ops, lat;
};

/* One consistent read of every shard: false if torn or a counter went back
 * (a block the reader gave up on, being rewritten all along, is counted in *busy). */
static bool check_shards(const struct pm_stats_map *m, struct seen *last, uint64_t *ops_total,
			 uint64_t *busy)
{
	static struct pm_stats_shard s;
	bool ok = true;
	*ops_total = 0;
	for (uint32_t i = 0; i < m->nshards; i++) {
		if (!pm_stats_read(pm_stats_shard_at(m->base, i), &s, sizeof(s))) {
			(*busy)++;
			continue;
		}
		uint64_t buckets = 0, ops = s.ops[PM_OP_SET] + s.ops[PM_OP_GET];
		for (unsigned b = 0; b < PM_HIST_BUCKETS; b++)
			buckets += s.lat_kv.b[b];
		ok &= buckets == s.lat_kv.count; /* a torn copy would break this */
		ok &= s.publishes >= last[i].publishes && s.rx_frames >= last[i].frames &&
		      ops >= last[i].ops && s.lat_kv.count >= last[i].lat;
		last[i] = (struct seen){ s.publishes, s.rx_frames, ops, s.lat_kv.count };
		*ops_total += ops;
	}
	return ok;
}

static void test_stats_hammered(void)
{
	char path[PATH_MAX + 16], why[256];
	snprintf(path, sizeof(path), "%s/pomaid.stats", srv.dir);
	struct pm_stats_map m;
	CU_ASSERT_EQUAL_FATAL(pm_stats_open(path, &m, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(m.nshards, SHARDS);
	struct seen last[SHARDS] = { 0 };
	uint64_t reads = 0, bad = 0, ops = 0, busy = 0;
	pthread_t t;
	atomic_store(&load_done, 0);
	pthread_create(&t, NULL, load, NULL);
	while (!atomic_load(&load_done)) {
		bad += !check_shards(&m, last, &ops, &busy);
		reads++;
	}
	pthread_join(t, NULL);
	/* the workers publish every PM_STATS_PUBLISH_MS: wait for the last ops to show */
	uint64_t acked = atomic_load(&load_acked), t0 = proc_now_ms();
	while (ops < acked && proc_now_ms() - t0 < WAIT_MS) {
		bad += !check_shards(&m, last, &ops, &busy);
		proc_pause_ms(POLL_MS);
	}
	printf("\n  %llu reads of %u blocks while %llu requests were served; %llu bad, %llu"
	       " given up", (unsigned long long)reads, SHARDS, (unsigned long long)acked,
	       (unsigned long long)bad, (unsigned long long)busy);
	CU_ASSERT(reads > 100);
	CU_ASSERT(busy * 100 < reads); /* a copy is almost always had */
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(acked, LOAD_OPS);
	CU_ASSERT(ops >= acked);
	CU_ASSERT(last[0].lat > 0 && last[1].lat > 0);
	pm_stats_close(&m);
}

/* ---------------------------------------------------------------- pomaictl */

static void test_pomaictl(void)
{
	expect("ping", 0, "PONG");
	expect("info", 0, "# Total");
	expect("info keyspace", 0, "keys:");
	expect("shards", 0, "# Shard 1");
	expect("config get knn_timeout_ms", 0, "knn_timeout_ms:2000");
	expect("config set knn_timeout_ms 3000", 0, "OK");
	expect("config get knn_timeout_ms", 0, "knn_timeout_ms:3000");
	expect("config set shards 4", 1, "restart");          /* needs a restart */
	expect("config set knn_timeout_ms 0", 1, "knn_timeout_ms"); /* below its bound */
	expect("config get no_such_key", 1, "no such key");
	expect("collection create docs --dim 8 --index hnsw --m 8", 0, "OK");
	expect("collection list", 0, "# docs");
	expect("collection create docs --dim 9", 1, "E_EXISTS"); /* other parameters */
	expect("collection create codes --dim 8 --dtype q8 --rerank 32", 0, "OK");
	expect("collection list", 0, "dtype:q8\r\nrerank:32");
	expect("collection create codes2 --dim 8 --dtype q4", 2, "dtype=q4"); /* usage */
	expect("collection create codes2 --dim 8 --rerank 5", 1, "E_PARAM"); /* f32 */
	expect("collection drop codes", 0, "removed:1");
	expect("collection drop docs", 0, "removed:1");
	expect("collection drop docs", 0, "removed:0");
	expect("quota set 127.0.0.9 5000 1000000", 0, "OK");
	expect("quota get 127.0.0.9", 0, "requests_per_s:5000");
	expect("quota list", 0, "# 127.0.0.9");
	expect("quota set 127.0.0.9 99999999999999 0", 1, "rate above");
	expect("quota del 127.0.0.9", 0, "OK");
	expect("quota del 127.0.0.9", 1, "default");
	expect("quota get 127.0.0.9", 1, "default");
	expect("clients", 0, "# 127.0.0.1"); /* the load test's client */
	expect("clients 1", 0, "requests:");
	expect("snapshot", 0, "OK");
	expect("snapshot now", 0, "OK");
	uint64_t t0 = proc_now_ms();
	static char out[CTL_OUT_BYTES];
	while (proc_now_ms() - t0 < WAIT_MS && (ctl_run(ctl_path, sock, "snapshot status", out) != 0 ||
					   strstr(out, "snapshots_completed:0")))
		proc_pause_ms(POLL_MS);
	CU_ASSERT_PTR_NULL(strstr(out, "snapshots_completed:0")); /* both shards have one */
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "# Shard 1"));
	/* JSON: every answer parses, and says ok */
	static const char *const json[] = { "ping", "info", "info memory", "shards", "clients",
					    "config get wal", "config set knn_timeout_ms 2000",
					    "collection create j --dim 4", "collection list",
					    "collection drop j", "snapshot", "snapshot status",
					    "quota set 127.0.0.8 10 1000", "quota get 127.0.0.8",
					    "quota list", "quota del 127.0.0.8" };
	for (size_t i = 0; i < sizeof(json) / sizeof(json[0]); i++) {
		int rc = ctl_json(ctl_path, sock, json[i], "d['status'] == 'ok'");
		if (rc != 0)
			printf("\n  pomaictl --json %s: not valid JSON or not ok (%d)", json[i], rc);
		CU_ASSERT_EQUAL(rc, 0);
	}
	/* usage */
	static const char *const bad[] = { "", "nosuch", "collection", "collection create",
					   "collection create x", "collection create x --dim",
					   "collection frob", "config get", "config set k",
					   "ping extra", "snapshot later", "--bogus ping",
					   "quota", "quota set 1.2.3.4 10", "quota set nohost 1 1",
					   "quota get", "clients 0", "clients 65" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect(bad[i], 2, "usage");
	static const char *const subs[] = { "info", "snapshot", "config", "collection", "shards",
					    "clients", "quota", "ping", "shutdown" };
	char args[64];
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(args, sizeof(args), "%s --help", subs[i]);
		expect(args, 0, "usage: pomaictl");
	}
	/* unreachable */
	CU_ASSERT_EQUAL(ctl_run(ctl_path, "/nonexistent/admin.sock", "ping", out), 3);
}

/* ---------------------------------------------------------------- the socket */

static void test_socket_bounds(void)
{
	struct stat sb;
	CU_ASSERT_EQUAL_FATAL(stat(sock, &sb), 0);
	CU_ASSERT(S_ISSOCK(sb.st_mode));
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
	/* pomaid closes what it refuses before reading it: an end of file */
	ctl_socket_bounds(sock, PM_ADMIN_CONNS_MAX_TEST, 0, false);
}

static void test_shutdown(void)
{
	expect("shutdown", 0, "stopping");
	CU_ASSERT_FATAL(proc_wait(&srv.proc, PROC_EXIT_WAIT_MS));
	CU_ASSERT(proc_exited_ok(&srv.proc));
	CU_ASSERT(access(sock, F_OK) != 0); /* the socket went with it */
	expect("ping", 3, NULL);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: test_admin PATH-TO-POMAID PATH-TO-POMAICTL\n");
		return 1;
	}
	srv.path = argv[1];
	ctl_path = argv[2];
	signal(SIGPIPE, SIG_IGN);
	static CU_TestInfo tests[] = {
		{ "stats segment: hammered, never torn or decreasing", test_stats_hammered },
		{ "pomaictl: every subcommand, text and JSON, usage, exit codes", test_pomaictl },
		{ "admin socket: mode, bounds, too many connections", test_socket_bounds },
		{ "pomaictl shutdown: pomaid exits 0", test_shutdown },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run_suite("admin", suite_init, suite_clean, tests);
}
