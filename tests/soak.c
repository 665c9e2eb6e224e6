/* SPDX-License-Identifier: MIT
 *
 * soak.c — pomai-soak: pomaid under mixed load for a set time, sampled and
 * judged (docs/soak.md).
 *
 *   pomai-soak --pomaid PATH --data-dir DIR [--seconds N] [--sample-s N]
 *              [--threads N] [--csv FILE]
 *
 * It starts pomaid on free loopback ports (2 shards, log on, no timed
 * snapshots, its output in DIR/pomaid.log), runs the load threads
 * (soak_load.c) and the admin thread (soak_admin.c), and every --sample-s
 * seconds writes a CSV row: pomaid's RSS, the arenas' touched and live
 * bytes, keys and vectors (from the stats segment), the interval's operations
 * and KV / KNN latency percentiles measured by the clients, and the running
 * counts of transient errors, wrong replies, THROTTLED replies and snapshots.
 * At the end it judges the run against the criteria of soak.h and exits
 * 0 (pass), 1 (fail) or 2 (could not run).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "proc.h"
#include "soak.h"

/* How long pomaid may take to exit after SIGTERM (ms). */
#define SOAK_EXIT_WAIT_MS 30000
/* Failures printed as they happen (all are counted). */
#define SOAK_FAILS_PRINTED_MAX 20u
#define SOAK_SHARDS 2u

struct soak_sample {
	double t_s;
	uint64_t rss, arena_touched, blob_live, keys, vectors, ops, transient, wrong, throttled,
		snapshots;
	double kv_us[3], knn_us[3], recall; /* p50, p99, p99.9 */
};

static const double quantiles[3] = { 0.5, 0.99, 0.999 };

/* ---------------------------------------------------------------- shared helpers */

void soak_fail(struct soak *s, const char *fmt, ...)
{
	char line[SOAK_WHY_BYTES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	uint64_t n = atomic_fetch_add(&s->n.wrong, 1);
	atomic_store(&s->failed, true);
	pthread_mutex_lock(&s->why_lock);
	if (!s->why[0])
		snprintf(s->why, sizeof(s->why), "%s", line);
	pthread_mutex_unlock(&s->why_lock);
	if (n < SOAK_FAILS_PRINTED_MAX)
		fprintf(stderr, "pomai-soak: WRONG: %s\n", line);
}

bool soak_wait_ms(struct soak *s, uint64_t ms)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	uint64_t ns = (uint64_t)t.tv_nsec + (ms % 1000u) * 1000000u;
	t.tv_sec += (time_t)(ms / 1000u + ns / 1000000000u);
	t.tv_nsec = (long)(ns % 1000000000u);
	pthread_mutex_lock(&s->stop_lock);
	while (!atomic_load(&s->stop) && pthread_cond_timedwait(&s->stop_cond, &s->stop_lock, &t) == 0)
		;
	pthread_mutex_unlock(&s->stop_lock);
	return !atomic_load(&s->stop);
}

static void soak_stop(struct soak *s)
{
	pthread_mutex_lock(&s->stop_lock);
	atomic_store(&s->stop, true);
	pthread_cond_broadcast(&s->stop_cond);
	pthread_mutex_unlock(&s->stop_lock);
}

static int soak_init(struct soak *s)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0 ||
	    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&s->stop_cond, &ca) != 0)
		return -1;
	pthread_condattr_destroy(&ca);
	if (pthread_mutex_init(&s->stop_lock, NULL) != 0 ||
	    pthread_mutex_init(&s->hist_lock, NULL) != 0 ||
	    pthread_mutex_init(&s->quota_lock, NULL) != 0 ||
	    pthread_mutex_init(&s->why_lock, NULL) != 0)
		return -1;
	return 0;
}

/* ---------------------------------------------------------------- the daemon */

/* --auth: one user with every right, a fresh key; its MAC key in
 * DIR/users (mode 0600). */
static int write_users(struct soak *s)
{
	char path[PATH_MAX + 16], hex[2 * PM_AUTH_MAC_KEY_BYTES + 1];
	uint8_t mac[PM_AUTH_MAC_KEY_BYTES];
	if (pm_auth_init() != 0)
		return -1;
	pm_auth_random(s->o.key, sizeof(s->o.key));
	pm_auth_derive(s->o.key, mac);
	pm_auth_hex(mac, sizeof(mac), hex);
	snprintf(path, sizeof(path), "%s/users", s->o.data_dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int n = fd >= 0 ? dprintf(fd, "%u soak read,write,admin %s\n", SOAK_AUTH_USER, hex) : -1;
	if (fd >= 0)
		close(fd);
	return n > 0 ? 0 : -1;
}

/* pomaid on free loopback ports (log on, no timed snapshots); true once it
 * printed its ready line. All it prints goes to DIR/pomaid.log. */
static bool start_daemon(struct soak *s)
{
	static char log[PATH_MAX + 16];
	snprintf(log, sizeof(log), "%s/pomaid.log", s->o.data_dir);
	s->pm = (struct pomaid){
		.path = s->o.pomaid, .shards = s->o.shards, .after = PROC_AFTER_LOG, .log = log,
		.flags = (const char *const[]){ "--arena-bytes", "128M", "--seeds", "131072",
						"--hugepages", "no", "--knn-timeout-ms", "2000",
						"--wal", "batch", "--snapshot-interval-s", "0",
						"--snapshot-wal-bytes", "0", NULL },
	};
	snprintf(s->pm.dir, sizeof(s->pm.dir), "%s", s->o.data_dir);
	static const char *const auth_on[] = { "--auth", "on", NULL };
	if (s->o.auth && write_users(s) != 0)
		return false;
	if (!pomaid_start(&s->pm, s->o.auth ? auth_on : NULL, NULL))
		return false;
	s->o.base_port = s->pm.base;
	return true;
}

/* SIGTERM, and pomaid's exit status (0: it stopped cleanly); -1 if it had to be killed. */
static int stop_daemon(struct soak *s)
{
	struct proc *p = &s->pm.proc;
	if (!proc_stop(p, SIGTERM, SOAK_EXIT_WAIT_MS))
		return -1;
	return WIFEXITED(p->status) ? WEXITSTATUS(p->status) : 128 + WTERMSIG(p->status);
}

/* ---------------------------------------------------------------- sampling */

static uint64_t rss_bytes(pid_t pid)
{
	long kib = proc_rss_kib(pid);
	return kib > 0 ? (uint64_t)kib << 10 : 0;
}

/* The arenas' touched bytes (total minus never-cut), live blob bytes, keys
 * and vectors, summed over the shards of the stats segment. */
static int sample_stats(const struct pm_stats_map *m, struct soak_sample *x)
{
	static struct pm_stats_shard sh;
	for (uint32_t i = 0; i < m->nshards; i++) {
		if (!pm_stats_read(pm_stats_shard_at(m->base, i), &sh, sizeof(sh)))
			return -EAGAIN;
		x->arena_touched += sh.arena_bytes - sh.blob_bytes_unused;
		x->blob_live += sh.blob_bytes_used;
		x->keys += sh.keys;
		x->vectors += sh.vectors;
	}
	return 0;
}

static void sample_latency(struct soak *s, struct soak_sample *x)
{
	pthread_mutex_lock(&s->hist_lock);
	for (int i = 0; i < 3; i++) {
		x->kv_us[i] = (double)pm_hist_quantile(&s->lat_kv, quantiles[i]) / 1000.0;
		x->knn_us[i] = (double)pm_hist_quantile(&s->lat_knn, quantiles[i]) / 1000.0;
	}
	memset(&s->lat_kv, 0, sizeof(s->lat_kv));
	memset(&s->lat_knn, 0, sizeof(s->lat_knn));
	pthread_mutex_unlock(&s->hist_lock);
}

static void sample(struct soak *s, const struct pm_stats_map *m, uint64_t t0_ms,
		   struct soak_sample *x)
{
	memset(x, 0, sizeof(*x));
	x->t_s = (double)(proc_now_ms() - t0_ms) / 1000.0;
	x->rss = rss_bytes(s->pm.proc.pid);
	if (sample_stats(m, x) != 0)
		fprintf(stderr, "pomai-soak: stats segment busy; memory sample incomplete\n");
	sample_latency(s, x);
	x->ops = atomic_load(&s->n.ops);
	x->transient = atomic_load(&s->n.transient);
	x->wrong = atomic_load(&s->n.wrong);
	x->throttled = atomic_load(&s->n.throttled);
	x->snapshots = atomic_load(&s->snapshots);
	uint64_t want = atomic_exchange(&s->n.recall_want, 0);
	uint64_t hits = atomic_exchange(&s->n.recall_hits, 0);
	x->recall = want ? (double)hits / (double)want : NAN;
}

static const char csv_header[] =
	"t_s,rss_bytes,arena_touched_bytes,blob_live_bytes,keys,vectors,ops,ops_per_s,"
	"kv_p50_us,kv_p99_us,kv_p999_us,knn_p50_us,knn_p99_us,knn_p999_us,transient,wrong,"
	"throttled,snapshots,hnsw_recall\n";

static void csv_row(FILE *f, const struct soak_sample *x, const struct soak_sample *prev)
{
	double dt = prev ? x->t_s - prev->t_s : x->t_s;
	uint64_t dops = x->ops - (prev ? prev->ops : 0);
	fprintf(f, "%.1f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
		   ",%.0f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
		   ",%.4f\n",
		x->t_s, x->rss, x->arena_touched, x->blob_live, x->keys, x->vectors, x->ops,
		dt > 0 ? (double)dops / dt : 0.0, x->kv_us[0], x->kv_us[1], x->kv_us[2],
		x->knn_us[0], x->knn_us[1], x->knn_us[2], x->transient, x->wrong, x->throttled,
		x->snapshots, x->recall);
	fflush(f);
}

/* ---------------------------------------------------------------- the verdict */

enum { MEM_RSS, MEM_ARENA, MEM_KINDS };
static const char *const mem_name[MEM_KINDS] = { "rss", "arena_touched" };

static double mem_of(const struct soak_sample *x, int kind)
{
	return (double)(kind == MEM_RSS ? x->rss : x->arena_touched);
}

/* Least-squares slope of memory over time, samples [from, to), bytes/s. */
static double mem_slope(const struct soak_sample *x, size_t from, size_t to, int kind)
{
	double n = (double)(to - from), st = 0, sm = 0, stt = 0, stm = 0;
	for (size_t i = from; i < to; i++) {
		st += x[i].t_s;
		sm += mem_of(&x[i], kind);
		stt += x[i].t_s * x[i].t_s;
		stm += x[i].t_s * mem_of(&x[i], kind);
	}
	double den = n * stt - st * st;
	return den > 0 ? (n * stm - st * sm) / den : 0.0;
}

/* End within SOAK_MEM_GROWTH_PCT % + slack of the post-warm-up level, and the
 * last half's trend projecting under slack over that half. */
static bool judge_memory(const struct soak_sample *x, size_t n, size_t w)
{
	bool ok = true;
	size_t half = w;
	while (half < n && x[half].t_s < x[n - 1].t_s / 2.0)
		half++;
	for (int k = 0; k < MEM_KINDS; k++) {
		double base = mem_of(&x[w], k), end = mem_of(&x[n - 1], k);
		double cap = base * (1.0 + SOAK_MEM_GROWTH_PCT / 100.0) + SOAK_MEM_SLACK_BYTES;
		double slope = n - half >= 3 ? mem_slope(x, half, n, k) : 0.0;
		double trend = slope * (x[n - 1].t_s - x[half].t_s);
		bool good = end <= cap && trend <= SOAK_MEM_SLACK_BYTES;
		printf("memory %s: after warm-up %.1f MiB, end %.1f MiB (cap %.1f MiB), last-half slope "
		       "%.0f B/s = %.2f MiB over %.0f s (cap %.1f MiB): %s\n",
		       mem_name[k], base / 1048576.0, end / 1048576.0, cap / 1048576.0, slope,
		       trend / 1048576.0, x[n - 1].t_s - x[half].t_s,
		       SOAK_MEM_SLACK_BYTES / 1048576.0, good ? "ok" : "FAIL");
		ok = ok && good;
	}
	return ok;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The median of field `off` (a double in struct soak_sample) over [from, to). */
static double median_at(const struct soak_sample *x, size_t from, size_t to, size_t off)
{
	double v[SOAK_SAMPLES_MAX];
	size_t m = 0;
	for (size_t i = from; i < to; i++)
		v[m++] = *(const double *)((const char *)&x[i] + off);
	qsort(v, m, sizeof(v[0]), cmp_d);
	return m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2.0;
}

static bool judge_latency(const struct soak_sample *x, size_t n, size_t w)
{
	static const struct { const char *name; size_t off; } f[] = {
		{ "kv p50", offsetof(struct soak_sample, kv_us[0]) },
		{ "kv p99", offsetof(struct soak_sample, kv_us[1]) },
		{ "knn p50", offsetof(struct soak_sample, knn_us[0]) },
		{ "knn p99", offsetof(struct soak_sample, knn_us[1]) },
	};
	size_t third = (n - w) / 3u;
	bool ok = true;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		double first = median_at(x, w, w + third, f[i].off);
		double last = median_at(x, n - third, n, f[i].off);
		bool good = last <= SOAK_LAT_DRIFT_FACTOR * first || last <= SOAK_LAT_FLOOR_US;
		printf("latency %s: median over first third %.1f us, last third %.1f us (x%.2f, cap "
		       "x%.1f): %s\n", f[i].name, first, last, first > 0 ? last / first : 0.0,
		       SOAK_LAT_DRIFT_FACTOR, good ? "ok" : "FAIL");
		ok = ok && good;
	}
	return ok;
}

/* Every criterion; true when the run passes. */
static bool judge(struct soak *s, const struct soak_sample *x, size_t n, int exit_status)
{
	const struct soak_sample *e = &x[n - 1];
	uint64_t ops = e->ops, knn = atomic_load(&s->n.knn_hnsw);
	uint64_t transient_max = ops * SOAK_TRANSIENT_PER_MILLION_MAX / 1000000u;
	double recall = NAN;
	uint64_t rw = 0, rh = 0;
	for (size_t i = 0; i < n; i++)
		if (!isnan(x[i].recall)) {
			rh += (uint64_t)llround(x[i].recall * 1e6);
			rw += 1000000u;
		}
	recall = rw ? (double)rh / (double)rw : NAN;
	bool ok = e->wrong == 0 && e->transient <= transient_max && exit_status == 0;
	printf("run: %.0f s, %" PRIu64 " operations (%.0f/s), %" PRIu64 " HNSW queries\n", e->t_s,
	       ops, (double)ops / e->t_s, knn);
	printf("wrong replies: %" PRIu64 " (cap 0)%s%s\n", e->wrong, s->why[0] ? "; first: " : "",
	       s->why);
	printf("transient errors: %" PRIu64 " (cap %" PRIu64 ", %u per million)", e->transient,
	       transient_max, SOAK_TRANSIENT_PER_MILLION_MAX);
	for (int st = 0; st < PM_CLIENT_STATUS_COUNT; st++)
		if (atomic_load(&s->n.by_status[st]))
			printf(" %s %" PRIu64, pm_client_status_name((enum pm_client_status)st),
			       atomic_load(&s->n.by_status[st]));
	printf("\n");
	printf("throttled replies: %" PRIu64 " in %" PRIu64 " quota cycles; snapshots: %" PRIu64 "\n",
	       e->throttled, atomic_load(&s->quota_cycles), e->snapshots);
	if (atomic_load(&s->quota_cycles) > 0 && e->throttled == 0) {
		printf("FAIL: a tight quota was in force and nothing was throttled\n");
		ok = false;
	}
	if (e->t_s >= 2.0 * SOAK_SNAPSHOT_EVERY_S && e->snapshots == 0) {
		printf("FAIL: no snapshot completed\n");
		ok = false;
	}
	printf("hnsw recall@%u: %.4f (floor %.2f)\n", SOAK_K, recall, SOAK_HNSW_RECALL_MIN);
	if (!isnan(recall) && recall < SOAK_HNSW_RECALL_MIN)
		ok = false;
	printf("pomaid exit status after SIGTERM: %d\n", exit_status);
	size_t w = 0;
	while (w < n && x[w].t_s < x[n - 1].t_s * SOAK_WARMUP_PCT / 100.0)
		w++;
	if (n - w < 6) {
		printf("memory and latency: too few samples after warm-up (%zu); not judged\n", n - w);
	} else {
		ok = judge_memory(x, n, w) && ok;
		ok = judge_latency(x, n, w) && ok;
	}
	printf("verdict: %s\n", ok ? "PASS" : "FAIL");
	return ok;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr, "usage: pomai-soak --pomaid PATH --data-dir DIR [--seconds N (%u)] "
			"[--sample-s N (%u)] [--threads N (%u, at most %u)] [--csv FILE] [--auth]\n",
		SOAK_SECONDS_DEFAULT, SOAK_SAMPLE_S_DEFAULT, SOAK_THREADS_DEFAULT, SOAK_THREADS_MAX);
	exit(2);
}

static void parse(int argc, char **argv, struct soak_opts *o)
{
	static const struct option lo[] = {
		{ "pomaid", 1, NULL, 'p' }, { "data-dir", 1, NULL, 'd' }, { "seconds", 1, NULL, 's' },
		{ "sample-s", 1, NULL, 'i' }, { "threads", 1, NULL, 't' }, { "csv", 1, NULL, 'c' },
		{ "auth", 0, NULL, 'a' }, { NULL, 0, NULL, 0 },
	};
	*o = (struct soak_opts){ .seconds = SOAK_SECONDS_DEFAULT, .sample_s = SOAK_SAMPLE_S_DEFAULT,
				 .threads = SOAK_THREADS_DEFAULT, .shards = SOAK_SHARDS };
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'p': o->pomaid = optarg; break;
		case 'd': o->data_dir = optarg; break;
		case 's': o->seconds = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'i': o->sample_s = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 't': o->threads = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'c': o->csv = optarg; break;
		case 'a': o->auth = true; break;
		default: usage();
		}
	}
	if (!o->pomaid || !o->data_dir || o->seconds == 0 || o->sample_s == 0 ||
	    o->threads == 0 || o->threads > SOAK_THREADS_MAX ||
	    o->seconds / o->sample_s + 2u > SOAK_SAMPLES_MAX)
		usage();
}

/* Sample every sample_s until the time is up or the daemon is gone. */
static size_t run_samples(struct soak *s, const struct pm_stats_map *m, FILE *csv,
			  struct soak_sample *x)
{
	uint64_t t0 = proc_now_ms(), end = t0 + s->o.seconds * 1000ull;
	size_t n = 0;
	while (n < SOAK_SAMPLES_MAX) {
		uint64_t now = proc_now_ms(), next = t0 + (n + 1u) * s->o.sample_s * 1000ull;
		next = next < end ? next : end;
		soak_wait_ms(s, next > now ? next - now : 0);
		sample(s, m, t0, &x[n]);
		if (csv)
			csv_row(csv, &x[n], n ? &x[n - 1] : NULL);
		fprintf(stderr, "pomai-soak: t=%.0fs rss %.1f MiB arena %.1f MiB ops %" PRIu64
				" kv p99 %.0f us knn p99 %.0f us wrong %" PRIu64 " throttled %" PRIu64 "\n",
			x[n].t_s, x[n].rss / 1048576.0, x[n].arena_touched / 1048576.0, x[n].ops,
			x[n].kv_us[1], x[n].knn_us[1], x[n].wrong, x[n].throttled);
		n++;
		if (!pomaid_alive(&s->pm)) {
			soak_fail(s, "pomaid exited during the run (see its log)");
			break;
		}
		if (proc_now_ms() >= end)
			break;
	}
	return n;
}

/* Start the load and admin threads, sample, stop them. Samples taken, or 0. */
static size_t run(struct soak *s, const struct pm_stats_map *m, FILE *csv, struct soak_sample *x)
{
	struct soak_load *l[SOAK_THREADS_MAX] = { 0 };
	pthread_t th[SOAK_THREADS_MAX], admin;
	uint32_t started = 0;
	size_t n = 0;
	for (uint32_t i = 0; i < s->o.threads; i++)
		if (!(l[i] = soak_load_new(s, i)) || soak_load_setup(l[i]) != 0)
			goto out;
	for (; started < s->o.threads; started++)
		if (pthread_create(&th[started], NULL, soak_load_thread, l[started]) != 0)
			goto out;
	if (pthread_create(&admin, NULL, soak_admin_thread, s) != 0)
		goto out;
	n = run_samples(s, m, csv, x);
	soak_stop(s);
	pthread_join(admin, NULL);
out:
	soak_stop(s);
	for (uint32_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (uint32_t i = 0; i < s->o.threads; i++)
		soak_load_free(l[i]);
	return n;
}

int main(int argc, char **argv)
{
	static struct soak s;
	static struct soak_sample x[SOAK_SAMPLES_MAX];
	parse(argc, argv, &s.o);
	signal(SIGPIPE, SIG_IGN);
	if (soak_init(&s) != 0)
		return 2;
	snprintf(s.admin_sock, sizeof(s.admin_sock), "%s/admin.sock", s.o.data_dir);
	snprintf(s.stats_path, sizeof(s.stats_path), "%s/pomaid.stats", s.o.data_dir);
	if (!start_daemon(&s)) {
		fprintf(stderr, "pomai-soak: pomaid did not start (see %s/pomaid.log)\n", s.o.data_dir);
		return 2;
	}
	fprintf(stderr, "pomai-soak: pomaid %d on udp %u.. tcp %u, %u s, %u threads\n",
		(int)s.pm.proc.pid,
		s.o.base_port, s.o.base_port - 1u, s.o.seconds, s.o.threads);
	struct pm_stats_map m;
	char why[256];
	FILE *csv = s.o.csv ? fopen(s.o.csv, "w") : NULL;
	if ((s.o.csv && !csv) || pm_stats_open(s.stats_path, &m, why, sizeof(why)) != 0) {
		fprintf(stderr, "pomai-soak: %s: %s\n", csv ? s.stats_path : s.o.csv,
			csv ? why : strerror(errno));
		stop_daemon(&s);
		return 2;
	}
	if (csv)
		fputs(csv_header, csv);
	size_t n = run(&s, &m, csv, x);
	int exit_status = stop_daemon(&s);
	pm_stats_close(&m);
	if (csv)
		fclose(csv);
	if (n == 0) {
		fprintf(stderr, "pomai-soak: the load did not start%s%s\n", s.why[0] ? ": " : "", s.why);
		return 2;
	}
	return judge(&s, x, n, exit_status) ? 0 : 1;
}
