/* SPDX-License-Identifier: MIT
 *
 * knn_daemon.c — KNN over pomaid against the same shards in process, side by
 * side in one run (issue 20: over the daemon >= 0.8x the in-process
 * queries/s at recall >= 0.95, same shard layout).
 *
 * For each shard count of --shards: the first --base Fashion-MNIST training
 * images go into that many engine shards in this process (an HNSW
 * collection, L2, M 16, ef_construction 200, keys "fm:<row>" placed by the
 * daemon's own routing hash) and, through libpomai, into a pomaid of as many
 * shards started here (the same collection, the same keys: the same shard
 * layout; the graphs are built the same way, not byte for byte the same).
 * Then --rounds rounds, each running the first --queries test images at --ef
 * once in every mode, modes interleaved so that a change of the machine's
 * load falls on all of them:
 *   inproc  one thread searches every shard in turn (pm_shard_apply, the
 *           worker's own engine call) and merges the k nearest;
 *   direct  libpomai as it is (issue 20): every shard is asked its part,
 *           the client merges; --depth queries in flight;
 *   server  libpomai with knn_via_server: one shard coordinates the others
 *           over the rings and merges (the path before issue 20).
 * Every answer's recall@10 against the exact neighbours (perf/gtcache: the
 * cached file when it matches, else computed here). Prints per mode the
 * median queries/s (wall clock) over the rounds and the ratio to inproc, and
 * one "RESULT ..." line per shard count. Exit 0; 2 on a usage or set-up
 * error; 3 when a query failed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <time.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchutil.h"
#include "fmnist.h"
#include "gtcache.h"
#include "hash.h"
#include "pm_limits.h"
#include "pomai.h"
#include "route.h"
#include "shard.h"

#define KD_COLL "kd-fmnist"
#define KD_M 16u
#define KD_EF_CONSTRUCTION 200u
#define KD_K 10u
#define KD_SHARDS_MAX 8u
#define KD_ROUNDS_MAX 50u
#define KD_DEPTH_MAX 16u /* libpomai's fan-outs in flight (PMC_FANOUTS_MAX) */
#define KD_KEY_BYTES 16u
/* Each in-process shard's arena: its part of 60,000 vectors of 784 floats
 * with their graph, with room. */
#define KD_ARENA_BYTES (UINT64_C(512) << 20)
/* The daemon's first "ready" line, and a reply to a load or a query. */
#define KD_READY_WAIT_S 60u
#define KD_CLIENT_TIMEOUT_MS 2000u
#define KD_LOAD_IN_FLIGHT 64u
/* A mode's turn in a round runs the query set again until this long has
 * passed, so that a round is not a few scheduler time slices. */
#define KD_ROUND_NS_MIN (UINT64_C(1000) * 1000 * 1000)

enum { MODE_INPROC, MODE_DIRECT, MODE_SERVER, MODES };
static const char *const mode_names[MODES] = { "inproc", "direct", "server" };

struct opts {
	const char *pomaid, *data;
	uint32_t shards[KD_SHARDS_MAX], nshards;
	uint32_t base, queries, ef, rounds, depth, port;
	const char *spin_us; /* pomaid's idle_spin_us (NULL: its default) */
};

static struct fmnist train, test;
static struct gt truth;

static uint32_t key_of(uint32_t row, char *key)
{
	return (uint32_t)snprintf(key, KD_KEY_BYTES, "fm:%u", row);
}

static uint32_t row_of(const uint8_t *key, uint32_t klen)
{
	char buf[KD_KEY_BYTES] = { 0 };
	memcpy(buf, key, klen < KD_KEY_BYTES - 1 ? klen : KD_KEY_BYTES - 1);
	return (uint32_t)strtoul(buf + 3, NULL, 10);
}

static double recall_of(uint32_t q, const uint32_t *rows, uint32_t n)
{
	uint32_t found = 0;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < KD_K; j++)
			found += rows[i] == truth.ids[(size_t)q * truth.k + j];
	return (double)found / KD_K;
}

/* ---------------------------------------------------------------- truth */

static int load_truth(const struct opts *o)
{
	char path[GT_PATH_BYTES], err[256];
	truth = (struct gt){ .n = o->base, .dim = train.dim, .nq = o->queries, .k = KD_K };
	truth.data_hash = gt_data_hash(train.data, (uint64_t)o->base * train.dim, test.data,
				       (uint64_t)o->queries * test.dim);
	if (gt_alloc(&truth) != 0)
		return -1;
	if (gt_default_path(path, sizeof(path), "fmnist", o->base, train.dim, o->queries, 100,
			    err, sizeof(err)) == 0 &&
	    gt_load(path, &truth, err, sizeof(err)) == 0)
		return printf("truth:    %s\n", path), 0;
	printf("truth:    computing (%u queries x %u vectors)\n", o->queries, o->base);
	for (uint32_t q = 0; q < o->queries; q++) {
		const float *x = fmnist_image(&test, q);
		float best[KD_K];
		uint32_t *ids = truth.ids + (size_t)q * KD_K;
		for (uint32_t j = 0; j < KD_K; j++)
			best[j] = __builtin_inff(), ids[j] = UINT32_MAX;
		for (uint32_t i = 0; i < o->base; i++) {
			const float *y = fmnist_image(&train, i);
			float d = 0;
			for (uint32_t c = 0; c < train.dim; c++)
				d += (x[c] - y[c]) * (x[c] - y[c]);
			uint32_t p = KD_K;
			while (p > 0 && d < best[p - 1])
				p--;
			if (p == KD_K)
				continue;
			memmove(best + p + 1, best + p, (KD_K - 1 - p) * sizeof(float));
			memmove(ids + p + 1, ids + p, (KD_K - 1 - p) * sizeof(uint32_t));
			best[p] = d, ids[p] = i;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- in process */

static struct pm_shard sh[KD_SHARDS_MAX];

static int inproc_load(const struct opts *o, uint32_t n)
{
	struct pm_shard_config cfg;
	pm_shard_config_default(&cfg);
	cfg.arena_bytes = KD_ARENA_BYTES;
	cfg.seed_capacity = o->base + 1024u;
	cfg.hugepages = false;
	struct pm_reply rep;
	struct pm_request cc = { .op = PM_OP_CCREATE,
				 .collection = { (const uint8_t *)KD_COLL, sizeof(KD_COLL) - 1 },
				 .params = { .dim = train.dim, .metric = PM_METRIC_L2,
					     .index = PM_INDEX_HNSW, .hnsw_m = KD_M,
					     .ef_construction = KD_EF_CONSTRUCTION } };
	for (uint32_t s = 0; s < n; s++) {
		if (pm_shard_init(&sh[s], &cfg) != PM_OK)
			return -1;
		pm_shard_apply(&sh[s], &cc, 0, &rep);
		if (rep.status != PM_OK)
			return -1;
	}
	char key[KD_KEY_BYTES];
	for (uint32_t i = 0; i < o->base; i++) {
		uint32_t klen = key_of(i, key);
		uint32_t s = pm_shard_of(pm_route_hash(key, klen), n);
		struct pm_request r = { .op = PM_OP_VADD, .key = { (const uint8_t *)key, klen },
					.collection = cc.collection, .dim = train.dim,
					.vec = (const uint8_t *)fmnist_image(&train, i) };
		pm_shard_apply(&sh[s], &r, 0, &rep);
		if (rep.status != PM_OK)
			return -1;
	}
	return 0;
}

/* One query over every shard, merged (distance, then row: enough here). */
static double inproc_query(const struct opts *o, uint32_t n, uint32_t q)
{
	float dist[KD_K];
	uint32_t rows[KD_K], kept = 0;
	struct pm_request r = { .op = PM_OP_VQUERY, .k = KD_K, .ef = o->ef, .dim = test.dim,
				.collection = { (const uint8_t *)KD_COLL, sizeof(KD_COLL) - 1 },
				.vec = (const uint8_t *)fmnist_image(&test, q) };
	for (uint32_t s = 0; s < n; s++) {
		struct pm_reply rep;
		pm_shard_apply(&sh[s], &r, 0, &rep);
		if (rep.status != PM_OK)
			return -1.0;
		for (uint32_t i = 0; i < rep.nhits; i++) {
			float d = rep.hits[i].dist;
			uint32_t p = kept;
			while (p > 0 && d < dist[p - 1])
				p--;
			if (p == KD_K)
				continue;
			uint32_t move = (kept < KD_K ? kept : KD_K - 1) - p;
			memmove(dist + p + 1, dist + p, move * sizeof(float));
			memmove(rows + p + 1, rows + p, move * sizeof(uint32_t));
			dist[p] = d;
			rows[p] = row_of(rep.keys[i].ptr, rep.keys[i].len);
			kept += kept < KD_K;
		}
	}
	return recall_of(q, rows, kept);
}

/* Where a mode runs. This VM's two vCPUs do not run at one speed (a busy
 * loop took 120-137 ms on one and 133-158 ms on the other, minutes apart), so
 * the in-process search runs on CPU 0, the CPU of pomaid's shard 0 worker
 * (--cores 0,1,...): both sides search on the same CPU. The client of direct
 * and server runs on the last CPU when pomaid leaves it free (fewer shards
 * than CPUs), else wherever the scheduler puts it. cpu < 0: every CPU. */
static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	for (long c = 0; c < ncpu && c < CPU_SETSIZE; c++)
		if (cpu < 0 || c == cpu)
			CPU_SET((int)c, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

static int client_cpu(uint32_t n)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	return (long)n < ncpu ? (int)(ncpu - 1) : -1;
}

/* ---------------------------------------------------------------- the daemon */

static pid_t daemon_pid = -1;
static FILE *daemon_out; /* its stdout, read to "ready", open until it stops */

static int daemon_start(const struct opts *o, uint32_t n, const char *dir)
{
	int fds[2];
	char shards[16], port[16], tcp[16], cores[8 * KD_SHARDS_MAX] = "";
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN); /* more shards than CPUs: list them again */
	for (uint32_t i = 0, len = 0; i < n && len < sizeof(cores); i++)
		len += (uint32_t)snprintf(cores + len, sizeof(cores) - len, "%s%ld", i ? "," : "",
					  (long)i % (ncpu > 0 ? ncpu : 1));
	snprintf(shards, sizeof(shards), "%u", n);
	snprintf(port, sizeof(port), "%u", o->port);
	snprintf(tcp, sizeof(tcp), "%u", 0u);
	if (pipe(fds) != 0)
		return -1;
	daemon_pid = fork();
	if (daemon_pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDERR_FILENO);
		close(fds[0]);
		execl(o->pomaid, o->pomaid, "--shards", shards, "--base-port", port, "--tcp-port",
		      tcp, "--data-dir", dir, "--wal", "none", "--hugepages", "no",
		      "--arena-bytes", "1G", "--knn-timeout-ms", "5000", "--cores", cores,
		      o->spin_us ? "--idle-spin-us" : (char *)NULL, o->spin_us, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	FILE *f = daemon_out = fdopen(fds[0], "r");
	char line[512] = "";
	alarm(KD_READY_WAIT_S);
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "ready"))
			break;
	alarm(0);
	return f && strstr(line, "ready") ? 0 : -1;
}

/* CPU time of every pomaid thread (schedstat: ns on a CPU), and this thread's. */
static uint64_t daemon_cpu_ns(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)daemon_pid);
	DIR *d = opendir(path);
	uint64_t sum = 0;
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.')
			continue;
		char p[400];
		snprintf(p, sizeof(p), "%s/%s/schedstat", path, e->d_name);
		FILE *f = fopen(p, "r");
		unsigned long long ns = 0;
		if (f && fscanf(f, "%llu", &ns) == 1)
			sum += ns;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return sum;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void daemon_stop(void)
{
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGTERM);
		waitpid(daemon_pid, NULL, 0);
	}
	if (daemon_out)
		fclose(daemon_out);
	daemon_out = NULL;
	daemon_pid = -1;
}

static struct pm_client *client_open(const struct opts *o, uint32_t n, bool via_server)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.base_port = o->port;
	cfg.shards = n;
	cfg.timeout_ms = KD_CLIENT_TIMEOUT_MS;
	cfg.knn_via_server = via_server;
	cfg.max_in_flight = KD_LOAD_IN_FLIGHT;
	struct pm_client *c = NULL;
	return pm_client_open(&cfg, &c) == PM_CLIENT_OK ? c : NULL;
}

static uint32_t load_failed;

static void on_load(void *arg, const struct pm_client_result *r)
{
	(void)arg;
	if (r->status != PM_CLIENT_OK && load_failed++ == 0)
		fprintf(stderr, "knn_daemon: a VADD failed: %s\n", pm_client_status_name(r->status));
}

static int daemon_load(const struct opts *o, struct pm_client *c)
{
	struct pm_client_coll_params p = { .dim = train.dim, .metric = PM_CLIENT_L2,
					   .index = PM_CLIENT_HNSW, .hnsw_m = KD_M,
					   .ef_construction = KD_EF_CONSTRUCTION };
	enum pm_client_status st = pm_client_collection_create(c, KD_COLL, &p);
	if (st != PM_CLIENT_OK)
		return fprintf(stderr, "knn_daemon: CCREATE: %s\n", pm_client_status_name(st)), -1;
	static char keys[KD_LOAD_IN_FLIGHT][KD_KEY_BYTES];
	for (uint32_t i = 0; i < o->base; i++) {
		char *key = keys[i % KD_LOAD_IN_FLIGHT];
		struct pm_client_req r = { .op = PM_CLIENT_VADD, .key = key, .klen = key_of(i, key),
					   .vec = fmnist_image(&train, i), .dim = train.dim,
					   .name = KD_COLL, .name_len = sizeof(KD_COLL) - 1,
					   .cb = on_load };
		if (pm_client_submit(c, &r, NULL) != PM_CLIENT_OK)
			return -1;
	}
	pm_client_drain(c);
	return load_failed ? -1 : 0;
}

/* The queries over the daemon, depth in flight: their recall sum, or < 0. */
struct inflight {
	struct pm_client_hit hits[KD_K];
	uint8_t keys[KD_K * KD_KEY_BYTES];
	struct pm_client_knn_result res;
	uint32_t q;
	bool busy;
};
static struct inflight fl[KD_DEPTH_MAX];
static double recall_sum;
static uint32_t failed, done_n;

static void on_knn(void *arg, const struct pm_client_result *r)
{
	struct inflight *f = arg;
	f->busy = false;
	done_n++;
	if (r->status != PM_CLIENT_OK) {
		failed++;
		return;
	}
	uint32_t rows[KD_K];
	for (uint32_t i = 0; i < r->knn->count && i < KD_K; i++)
		rows[i] = row_of(r->knn->hits[i].key, r->knn->hits[i].klen);
	recall_sum += recall_of(f->q, rows, r->knn->count < KD_K ? r->knn->count : KD_K);
}

static double daemon_queries(const struct opts *o, struct pm_client *c)
{
	recall_sum = 0;
	failed = done_n = 0;
	uint32_t next = 0;
	while (done_n < o->queries) {
		for (uint32_t i = 0; i < o->depth && next < o->queries; i++) {
			struct inflight *f = &fl[i];
			if (f->busy)
				continue;
			f->res = (struct pm_client_knn_result){ .hits = f->hits, .hits_cap = KD_K,
								.keys = f->keys,
								.keys_cap = sizeof(f->keys) };
			f->q = next;
			struct pm_client_req r = { .op = PM_CLIENT_KNN, .vec = fmnist_image(&test, next),
						   .dim = test.dim, .k = KD_K, .ef = o->ef,
						   .name = KD_COLL, .name_len = sizeof(KD_COLL) - 1,
						   .knn = &f->res, .cb = on_knn, .arg = f };
			if (pm_client_submit(c, &r, NULL) != PM_CLIENT_OK)
				return -1.0;
			f->busy = true;
			next++;
		}
		pm_client_poll(c, 1);
	}
	return failed ? -1.0 : recall_sum;
}

/* ---------------------------------------------------------------- one layout */

static int run_layout(const struct opts *o, uint32_t n)
{
	char dir[] = "/tmp/pomai-knn-daemon-XXXXXX";
	if (!mkdtemp(dir))
		return -1;
	pin(-1); /* the builds and the daemon's start: anywhere */
	printf("\n== %u shard(s): building in process ...\n", n);
	fflush(stdout);
	uint64_t t0 = bu_now_ns();
	if (inproc_load(o, n) != 0)
		return fprintf(stderr, "knn_daemon: in-process load failed\n"), -1;
	printf("   in process: %.1f s; loading pomaid ...\n", (double)(bu_now_ns() - t0) / 1e9);
	fflush(stdout);
	t0 = bu_now_ns();
	struct pm_client *cd = NULL, *cs = NULL;
	if (daemon_start(o, n, dir) != 0 || !(cd = client_open(o, n, false)) ||
	    !(cs = client_open(o, n, true)) || daemon_load(o, cd) != 0) {
		fprintf(stderr, "knn_daemon: pomaid %s\n",
			cd ? "load failed" : "did not start (or its clients did not open)");
		daemon_stop();
		return -1;
	}
	printf("   pomaid: %.1f s; in process on CPU 0 (pomaid's shard 0 worker's), clients on %s\n",
	       (double)(bu_now_ns() - t0) / 1e9, client_cpu(n) < 0 ? "any CPU" : "the last CPU");
	double qps[MODES][KD_ROUNDS_MAX], rec[MODES] = { 0 };
	double cpu_q[MODES][KD_ROUNDS_MAX], srv_q[MODES][KD_ROUNDS_MAX]; /* us per query */
	int rc = 0;
	for (uint32_t r = 0; r < o->rounds && rc == 0; r++) {
		for (int m = 0; m < MODES && rc == 0; m++) {
			double sum = 0, part = 0;
			uint32_t passes = 0;
			pin(m == MODE_INPROC ? 0 : client_cpu(n));
			uint64_t c0 = thread_cpu_ns(), d0 = daemon_cpu_ns();
			t0 = bu_now_ns();
			do {
				if (m == MODE_INPROC)
					for (uint32_t q = 0; q < o->queries; q++)
						part += inproc_query(o, n, q);
				else
					part = daemon_queries(o, m == MODE_DIRECT ? cd : cs);
				if (part < 0)
					break;
				sum += part, part = 0, passes++;
			} while (bu_now_ns() - t0 < KD_ROUND_NS_MIN);
			double s = (double)(bu_now_ns() - t0) / 1e9;
			if (part < 0) {
				fprintf(stderr, "knn_daemon: %s queries failed\n", mode_names[m]);
				rc = 3;
			}
			qps[m][r] = (double)o->queries * passes / s;
			cpu_q[m][r] = (double)(thread_cpu_ns() - c0) / 1e3 / (o->queries * passes);
			srv_q[m][r] = (double)(daemon_cpu_ns() - d0) / 1e3 / (o->queries * passes);
			rec[m] = sum / ((double)o->queries * passes);
		}
		printf("   round %u: inproc %.0f q/s, direct %.0f q/s, server %.0f q/s; CPU us/query "
		       "(this thread + pomaid): inproc %.1f, direct %.1f + %.1f, server %.1f + %.1f\n",
		       r + 1, qps[MODE_INPROC][r], qps[MODE_DIRECT][r], qps[MODE_SERVER][r],
		       cpu_q[MODE_INPROC][r], cpu_q[MODE_DIRECT][r], srv_q[MODE_DIRECT][r],
		       cpu_q[MODE_SERVER][r], srv_q[MODE_SERVER][r]);
		fflush(stdout);
	}
	for (int m = MODE_DIRECT; m < MODES; m++) {
		struct pm_client_stats stats, *st = &stats;
		pm_client_stats(m == MODE_DIRECT ? cd : cs, st);
		printf("   %s client: %llu requests, %llu datagrams out, %llu resends, %llu "
		       "timeouts\n", mode_names[m], (unsigned long long)st->requests,
		       (unsigned long long)st->datagrams_out, (unsigned long long)st->resends,
		       (unsigned long long)st->timeouts);
	}
	static char info[PM_CLIENT_INFO_REPLY_BYTES_MAX];
	size_t ilen = 0;
	if (pm_client_info(cs, NULL, info, sizeof(info) - 1, &ilen) == PM_CLIENT_OK) {
		info[ilen] = '\0';
		static const char *const fields[] = { "knn_parts_refused:", "knn_parts_shed:",
						      "knn_parts_expired:", "knn_parts_direct:",
						      "fanouts:", "fanout_timeouts:", "dropped_ring_full:",
						      "cookie_retries:" };
		printf("   pomaid:");
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
			const char *at = strstr(info, fields[i]);
			if (at)
				printf(" %.*s", (int)strcspn(at, "\r\n"), at);
		}
		printf("\n");
	}
	if (rc == 0) {
		double med[MODES], cm[MODES], sm[MODES];
		for (int m = 0; m < MODES; m++) {
			med[m] = bu_median(qps[m], o->rounds);
			cm[m] = bu_median(cpu_q[m], o->rounds);
			sm[m] = bu_median(srv_q[m], o->rounds);
		}
		printf("   median CPU us/query: inproc %.1f; direct client %.1f + pomaid %.1f = %.1f "
		       "(%.2fx inproc's queries per CPU second); server client %.1f + pomaid %.1f = "
		       "%.1f (%.2fx)\n", cm[MODE_INPROC], cm[MODE_DIRECT], sm[MODE_DIRECT],
		       cm[MODE_DIRECT] + sm[MODE_DIRECT],
		       cm[MODE_INPROC] / (cm[MODE_DIRECT] + sm[MODE_DIRECT]), cm[MODE_SERVER],
		       sm[MODE_SERVER], cm[MODE_SERVER] + sm[MODE_SERVER],
		       cm[MODE_INPROC] / (cm[MODE_SERVER] + sm[MODE_SERVER]));
		printf("   median over %u rounds (recall@10): inproc %.0f q/s (%.4f), direct %.0f q/s "
		       "(%.4f) = %.2fx, server %.0f q/s (%.4f) = %.2fx\n", o->rounds,
		       med[MODE_INPROC], rec[MODE_INPROC], med[MODE_DIRECT], rec[MODE_DIRECT],
		       med[MODE_DIRECT] / med[MODE_INPROC], med[MODE_SERVER], rec[MODE_SERVER],
		       med[MODE_SERVER] / med[MODE_INPROC]);
		printf("RESULT shards=%u base=%u queries=%u ef=%u depth=%u rounds=%u inproc_qps=%.0f "
		       "direct_qps=%.0f server_qps=%.0f direct_ratio=%.3f server_ratio=%.3f "
		       "recall_inproc=%.4f recall_direct=%.4f recall_server=%.4f\n",
		       n, o->base, o->queries, o->ef, o->depth, o->rounds, med[MODE_INPROC],
		       med[MODE_DIRECT], med[MODE_SERVER], med[MODE_DIRECT] / med[MODE_INPROC],
		       med[MODE_SERVER] / med[MODE_INPROC], rec[MODE_INPROC], rec[MODE_DIRECT],
		       rec[MODE_SERVER]);
	}
	pm_client_close(cd);
	pm_client_close(cs);
	daemon_stop();
	for (uint32_t s = 0; s < n; s++)
		pm_shard_destroy(&sh[s]);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "knn_daemon: %s left behind\n", dir);
	return rc;
}

/* ---------------------------------------------------------------- main */

static int parse(int argc, char **argv, struct opts *o)
{
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];
		int rc = 0;
		if (!strcmp(a, "--pomaid"))
			o->pomaid = v;
		else if (!strcmp(a, "--data"))
			o->data = v;
		else if (!strcmp(a, "--spin-us"))
			o->spin_us = v;
		else if (!strcmp(a, "--base"))
			rc = bu_parse_u32(v, FMNIST_IMAGES_MAX, &o->base);
		else if (!strcmp(a, "--queries"))
			rc = bu_parse_u32(v, 10000, &o->queries);
		else if (!strcmp(a, "--ef"))
			rc = bu_parse_u32(v, PM_EF_MAX, &o->ef);
		else if (!strcmp(a, "--rounds"))
			rc = bu_parse_u32(v, KD_ROUNDS_MAX, &o->rounds);
		else if (!strcmp(a, "--depth"))
			rc = bu_parse_u32(v, KD_DEPTH_MAX, &o->depth);
		else if (!strcmp(a, "--port"))
			rc = bu_parse_u32(v, 65000, &o->port);
		else if (!strcmp(a, "--shards")) {
			o->nshards = 0;
			for (char *s = (char *)v; *s && o->nshards < KD_SHARDS_MAX;) {
				o->shards[o->nshards] = (uint32_t)strtoul(s, &s, 10);
				if (o->shards[o->nshards] == 0 || o->shards[o->nshards] > KD_SHARDS_MAX)
					return -1;
				o->nshards++;
				s += *s == ',';
			}
		} else
			return -1;
		if (rc != 0)
			return -1;
	}
	return o->pomaid && o->base && o->queries && o->rounds && o->depth && o->nshards ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct opts o = { .data = FMNIST_DIR_DEFAULT, .shards = { 1, 2, 4 }, .nshards = 3,
			  .base = 60000, .queries = 1000, .ef = 20, .rounds = 5, .depth = 8,
			  .port = 17900 };
	if ((argc - 1) % 2 || parse(argc, argv, &o) != 0) {
		fprintf(stderr, "usage: knn_daemon --pomaid PATH [--shards 1,2,4] [--base 60000] "
				"[--queries 1000] [--ef 20] [--rounds 5] [--depth 1..%u (8)] "
				"[--port 17900] [--spin-us pomaid's idle_spin_us] [--data DIR]\n",
			KD_DEPTH_MAX);
		return 2;
	}
	bu_print_header("knn_daemon: KNN over pomaid vs in process, same shard layout", argc, argv);
	char err[FMNIST_ERR_BYTES];
	if (fmnist_load_split(o.data, "train", o.base, &train, err, sizeof(err)) != 0 ||
	    fmnist_load_split(o.data, "t10k", o.queries, &test, err, sizeof(err)) != 0) {
		fprintf(stderr, "knn_daemon: %s\n", err);
		return 2;
	}
	o.base = train.count;
	o.queries = test.count;
	if (load_truth(&o) != 0)
		return 2;
	int rc = 0;
	for (uint32_t i = 0; i < o.nshards && rc == 0; i++)
		rc = run_layout(&o, o.shards[i]);
	daemon_stop();
	return rc < 0 ? 2 : rc;
}
