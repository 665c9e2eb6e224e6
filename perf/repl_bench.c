/* SPDX-License-Identifier: MIT
 *
 * repl_bench.c — what perf/repl_vs_redis.sh needs beside the load generators
 * (pomai-bench, redis-benchmark) to measure replication, Pomai and Redis alike:
 *
 *   pomai-repl-bench lag  --pomai|--redis --primary PORT --replica PORT
 *       Samples, every --interval-ms (10), the primary's position in its
 *       stream and the replica's applied position, while a load runs that
 *       another process generates: Pomai — the sum over shards of the primary's
 *       last LSN (INFO replication: replica0_acked_lsn + replica0_lag_records)
 *       and of the replica's repl_applied_lsn (and repl_records_applied);
 *       Redis — master_repl_offset and the replica's slave_repl_offset (bytes
 *       of the replication stream). Each sample asks the primary, then the
 *       replica, then the primary again; the primary's position at the moment
 *       the replica answered is interpolated between its two answers (each
 *       answer timed at the middle of its round trip), so the lag is neither
 *       flattered by asking the replica last nor inflated by asking it first.
 *       The lag in ms of a sample: the age of the oldest write the replica
 *       lacks — how long before the replica's answer the primary passed the
 *       position the replica reports, found in the primary's answers of all
 *       samples and interpolated linearly between the two around it (exact to
 *       the interval if the write rate is steady within it); 0 when the
 *       replica lacks nothing. The load
 *       window runs from the first sample that sees the primary move to the
 *       last; the sampler stops once the primary has not moved for --idle-ms
 *       and the replica has caught up (or after --max-s: caught_up=0).
 *       Reported over the window: records/s written on the primary and applied
 *       on the replica, lag p50/p99/max (records; Redis: bytes, and records as
 *       bytes / --record-bytes), lag in ms, and how long the replica needed to
 *       catch up after the last write.
 *
 *   pomai-repl-bench wait --port P --clients C --requests N | --duration-ms MS
 *       Redis's durable replicated write: C connections, each sending SET and
 *       `WAIT <replicas> 0` together and waiting for both replies before its
 *       next pair (redis-benchmark cannot send WAIT). Latency runs from the
 *       write of the pair to the WAIT reply; a WAIT that reports fewer replicas
 *       than asked, or an error reply, is counted, not hidden. With
 *       --duration-ms, pairs answered after that time are neither counted nor
 *       followed by another (pomai-bench --duration's rule).
 *
 *   pomai-repl-bench sync --primary PORT --replica PORT --shards N --t0 S
 *                         [--stats FILE]
 *       A full sync's duration: reads each primary shard's last LSN (INFO
 *       dataplane, wal_next_lsn - 1; the primary takes no writes meanwhile),
 *       then, with --stats (the replica's data_dir/pomaid.stats), reads the
 *       replica's stats segment every RB_STATS_POLL_MS until every shard's
 *       link is up with repl_applied_lsn at its primary shard's (each worker
 *       publishes its block every PM_STATS_PUBLISH_MS, 10 ms, whatever its
 *       fan-outs wait for: the time is known to ~10 ms); then polls the
 *       replica's INFO replication every --interval-ms until every shard's
 *       repl_link says streaming at that LSN (without --stats, this is the
 *       measure; a fan-out INFO waits for shards that are loading the image,
 *       so these polls may be far apart). Prints the seconds from --t0 (a
 *       CLOCK_REALTIME time, bash's $EPOCHREALTIME when the replica was
 *       started) to the read that said so (an upper bound) and to the read
 *       before it (a lower bound), for both, and when each shard was first
 *       seen by INFO in snapshot and in streaming.
 *
 * Pomai is read over TCP through libpomai (pm_client_info); Redis through a
 * RESP reader of its own (a few lines: INFO is one bulk string, SET and WAIT
 * answer one line each). Output: a few human lines and one "RESULT ..." line.
 * Exit 0; 2 on a usage or set-up error; 3 if the thing measured failed (a
 * replica that never caught up, an error reply, a WAIT short of replicas).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "pomai.h"
#include "stats.h"

/* ---------------------------------------------------------------- limits */

#define RB_INTERVAL_MS_DEFAULT 10u
#define RB_IDLE_MS_DEFAULT 500u     /* the primary still this long: the load has ended */
#define RB_MAX_S_DEFAULT 300u       /* a replica not caught up by then: failure */
#define RB_MAX_S_MAX 3600u
/* Samples kept: --max-s at --interval-ms 1 fits. */
#define RB_SAMPLES_MAX (RB_MAX_S_MAX * 1000u)
/* A SET of a 16-byte key and a 32-byte value in Redis's replication stream:
 * *3 $3 SET $16 <key> $32 <value>, each with its CRLF. */
#define RB_RECORD_BYTES_DEFAULT 75u
#define RB_SHARDS_MAX 64u
/* INFO replication of one Redis server is under 2 KB; room for growth. */
#define RB_RESP_BUF_BYTES (64u << 10)
/* A RESP request or reply line of the wait mode: SET + WAIT with a key and a
 * value of at most RB_VALUE_BYTES_MAX. */
#define RB_VALUE_BYTES_MAX 1024u
#define RB_CONN_BUF_BYTES (4u * RB_VALUE_BYTES_MAX)
#define RB_CLIENTS_MAX 1024u
#define RB_REQUESTS_MAX 100000000u
#define RB_IO_TIMEOUT_MS 5000u      /* a Redis server silent this long: set-up error */
#define RB_POMAI_TIMEOUT_MS 1000u   /* libpomai's wait for an INFO over TCP */
#define RB_KEYS_DEFAULT 100000u
/* --duration-ms: latencies kept at first (the array doubles as needed). */
#define RB_LATENCIES_INITIAL 65536u
#define RB_VALUE_BYTES_DEFAULT 32u
#define RB_SEED 42u
/* How often sync mode reads the replica's stats segment (a copy of a few KB
 * per shard, no request to the server); its workers publish every
 * PM_STATS_PUBLISH_MS. */
#define RB_STATS_POLL_MS 1u

enum kind { K_POMAI, K_REDIS };

static double now_s(clockid_t clk)
{
	struct timespec t;
	clock_gettime(clk, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double mono(void)
{
	return now_s(CLOCK_MONOTONIC);
}

static void sleep_until(double t)
{
	double d = t - mono();
	if (d <= 0)
		return;
	struct timespec ts = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) };
	nanosleep(&ts, NULL);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The q-quantile of v[0..n) (sorts v); NAN when n = 0. */
static double quantile(double *v, size_t n, double q)
{
	if (n == 0)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	size_t i = (size_t)ceil(q * (double)n);
	return v[i ? i - 1 : 0];
}

__attribute__((format(printf, 1, 2))) static _Noreturn void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "pomai-repl-bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* ---------------------------------------------------------------- Redis (RESP) */

static int tcp_connect(uint32_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write to redis: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

/* INFO <section> on a blocking connection: the bulk string's text into buf
 * (terminated). */
static void redis_info(int fd, const char *section, char *buf, size_t cap)
{
	char req[128];
	int n = snprintf(req, sizeof(req), "*2\r\n$4\r\nINFO\r\n$%zu\r\n%s\r\n", strlen(section),
			 section);
	write_all(fd, req, (size_t)n);
	size_t have = 0, need = 0, hdr = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, RB_IO_TIMEOUT_MS) != 1)
			die("redis INFO %s: no answer", section);
		ssize_t r = read(fd, buf + have, cap - 1 - have);
		if (r <= 0)
			die("redis INFO %s: connection closed", section);
		have += (size_t)r;
		buf[have] = '\0';
		if (!hdr) {
			char *crlf = strstr(buf, "\r\n");
			if (!crlf)
				continue;
			if (buf[0] != '$')
				die("redis INFO: unexpected reply '%.40s'", buf);
			hdr = (size_t)(crlf - buf) + 2;
			need = hdr + strtoull(buf + 1, NULL, 10) + 2;
			if (need > cap - 1)
				die("redis INFO %s: reply too large", section);
		}
		if (have >= need)
			break;
	}
	memmove(buf, buf + hdr, need - hdr - 2);
	buf[need - hdr - 2] = '\0';
}

/* The value of "name:" in an INFO text (Redis or one Pomai shard's part), as a
 * number; -1 when absent. */
static int64_t field(const char *text, const char *end, const char *name)
{
	size_t len = strlen(name);
	for (const char *p = text; p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
		if (*p == '\n')
			p++;
		if ((size_t)(end - p) > len && !memcmp(p, name, len) && p[len] == ':')
			return strtoll(p + len + 1, NULL, 10);
	}
	return -1;
}

/* The text of "name:" (up to the line's end) into out; false when absent. */
static bool field_text(const char *text, const char *end, const char *name, char *out,
		       size_t cap)
{
	size_t len = strlen(name);
	for (const char *p = text; p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
		if (*p == '\n')
			p++;
		if ((size_t)(end - p) > len && !memcmp(p, name, len) && p[len] == ':') {
			size_t i = 0;
			for (p += len + 1; p < end && *p != '\r' && *p != '\n' && i + 1 < cap; p++)
				out[i++] = *p;
			out[i] = '\0';
			return true;
		}
	}
	return false;
}

/* ---------------------------------------------------------------- Pomai (libpomai) */

static char info_text[PM_CLIENT_INFO_REPLY_BYTES_MAX + 1];

static struct pm_client *pomai_open(uint32_t port, uint32_t shards)
{
	struct pm_client_config cfg;
	struct pm_client *c;
	pm_client_config_default(&cfg);
	cfg.base_port = port;
	cfg.shards = shards;
	cfg.transport = PM_CLIENT_TCP;
	cfg.timeout_ms = RB_POMAI_TIMEOUT_MS;
	cfg.retries = 0;
	enum pm_client_status st = pm_client_open(&cfg, &c);
	if (st != PM_CLIENT_OK)
		die("cannot reach pomaid: %s", pm_client_strerror(st));
	return c;
}

/* One shard's part of a merged INFO text: [*from, *to) after "@shard:<i>". */
static bool shard_part(const char *text, size_t len, uint32_t i, const char **from,
		       const char **to)
{
	char tag[32];
	int n = snprintf(tag, sizeof(tag), "@shard:%u\r\n", i);
	const char *end = text + len, *p = memmem(text, len, tag, (size_t)n);
	if (!p)
		return false;
	*from = p + n;
	const char *next = memmem(*from, (size_t)(end - *from), "@shard:", 7);
	*to = next ? next : end;
	return true;
}

/* INFO <section> of a pomaid into info_text; its length, or 0 on failure. */
static size_t pomai_info(struct pm_client *c, const char *section)
{
	size_t len = 0;
	if (pm_client_info(c, section, info_text, sizeof(info_text) - 1, &len) != PM_CLIENT_OK)
		return 0;
	info_text[len] = '\0';
	return len;
}

/* ---------------------------------------------------------------- lag mode */

struct sample {
	double tp1, ta, tp2;  /* each answer at the middle of its round trip */
	double p1, a, p2;     /* primary, replica, primary (records or bytes) */
	double applied;       /* Pomai: repl_records_applied (sum); Redis: = a */
	double own_lag_ms;    /* Pomai: the primary's replica0_lag_ms (max); -1 */
};

struct lag_opts {
	enum kind kind;
	uint32_t primary, replica, shards, interval_ms, idle_ms, max_s, record_bytes;
	const char *samples; /* a file for every sample, or NULL */
};

struct lag_src {
	const struct lag_opts *o;
	struct pm_client *pc, *rc; /* Pomai */
	int pfd, rfd;              /* Redis */
	char *buf;
	uint64_t failed;           /* samples with a missing answer or field */
};

/* The primary's position: sum over shards of its last LSN, or the master's
 * offset; own_lag_ms gets the primary's own lag estimate (Pomai). */
static bool primary_pos(struct lag_src *s, double *pos, double *own_lag_ms)
{
	if (s->o->kind == K_REDIS) {
		redis_info(s->pfd, "replication", s->buf, RB_RESP_BUF_BYTES);
		int64_t off = field(s->buf, s->buf + strlen(s->buf), "master_repl_offset");
		*pos = (double)off;
		*own_lag_ms = -1;
		return off >= 0;
	}
	size_t len = pomai_info(s->pc, "replication");
	double sum = 0, lag_ms = 0;
	for (uint32_t i = 0; i < s->o->shards; i++) {
		const char *a, *b;
		if (!len || !shard_part(info_text, len, i, &a, &b))
			return false;
		int64_t acked = field(a, b, "replica0_acked_lsn");
		int64_t lag = field(a, b, "replica0_lag_records");
		int64_t ms = field(a, b, "replica0_lag_ms");
		if (acked < 0 || lag < 0 || ms < 0)
			return false; /* no replica connected */
		sum += (double)(acked + lag);
		lag_ms = fmax(lag_ms, (double)ms);
	}
	*pos = sum;
	*own_lag_ms = lag_ms;
	return true;
}

static bool replica_pos(struct lag_src *s, double *pos, double *applied)
{
	if (s->o->kind == K_REDIS) {
		redis_info(s->rfd, "replication", s->buf, RB_RESP_BUF_BYTES);
		int64_t off = field(s->buf, s->buf + strlen(s->buf), "slave_repl_offset");
		*pos = *applied = (double)off;
		return off >= 0;
	}
	size_t len = pomai_info(s->rc, "replication");
	double sum = 0, app = 0;
	for (uint32_t i = 0; i < s->o->shards; i++) {
		const char *a, *b;
		if (!len || !shard_part(info_text, len, i, &a, &b))
			return false;
		int64_t lsn = field(a, b, "repl_applied_lsn");
		int64_t n = field(a, b, "repl_records_applied");
		if (lsn < 0 || n < 0)
			return false;
		sum += (double)lsn;
		app += (double)n;
	}
	*pos = sum;
	*applied = app;
	return true;
}

static bool take_sample(struct lag_src *s, struct sample *x)
{
	double t0 = mono(), t1, t2, t3, dummy;
	bool ok = primary_pos(s, &x->p1, &x->own_lag_ms);
	t1 = mono();
	ok = ok && replica_pos(s, &x->a, &x->applied);
	t2 = mono();
	ok = ok && primary_pos(s, &x->p2, &dummy);
	t3 = mono();
	x->tp1 = (t0 + t1) / 2;
	x->ta = (t1 + t2) / 2;
	x->tp2 = (t2 + t3) / 2;
	if (!ok)
		s->failed++;
	return ok;
}

/* The primary's position at the replica's answer, between its two answers. */
static double primary_at_replica(const struct sample *x)
{
	if (x->tp2 <= x->tp1)
		return x->p2;
	return x->p1 + (x->p2 - x->p1) * (x->ta - x->tp1) / (x->tp2 - x->tp1);
}

/* Primary answer k of samples [0, n): even k the first of sample k / 2, odd
 * k the second. */
static void primary_point(const struct sample *v, size_t k, double *t, double *p)
{
	const struct sample *x = &v[k / 2];
	*t = k % 2 ? x->tp2 : x->tp1;
	*p = k % 2 ? x->p2 : x->p1;
}

/* When (monotonic s) the primary first reached position pos, from its answers
 * in samples [0, n), interpolated linearly between the last answer below pos
 * and the first at or above it; NAN if it never did, or was there at the first
 * answer (no earlier point to interpolate from). *cursor only moves forward:
 * the positions asked for never decrease. */
static double primary_reached(const struct sample *v, size_t n, double pos, size_t *cursor)
{
	for (size_t k = *cursor; k < 2 * n; k++) {
		double t, p, tprev, pprev;
		primary_point(v, k, &t, &p);
		if (p < pos)
			continue;
		*cursor = k;
		if (k == 0)
			return NAN;
		primary_point(v, k - 1, &tprev, &pprev);
		return tprev + (t - tprev) * (pos - pprev) / (p - pprev);
	}
	return NAN;
}

static void lag_report(const struct lag_opts *o, const struct sample *v, size_t n, size_t w0,
		       size_t w1, double t_caught, bool caught, uint64_t failed)
{
	const bool redis = o->kind == K_REDIS;
	const double unit = redis ? o->record_bytes : 1.0; /* position units per record */
	size_t m = w1 >= w0 ? w1 - w0 + 1 : 0, cursor = 0;
	double *lag = calloc(m + 1, sizeof(double)), *ms = calloc(m + 1, sizeof(double));
	double *own = calloc(m + 1, sizeof(double)), *br = calloc(m + 1, sizeof(double));
	size_t nown = 0;
	if (!lag || !ms || !own || !br)
		die("%s", "out of memory");
	for (size_t i = 0; i < m; i++) {
		const struct sample *x = &v[w0 + i];
		lag[i] = fmax(0, primary_at_replica(x) - x->a);
		/* the age of the oldest write the replica lacks: when the primary
		 * passed the replica's position (by one unit); 0 when it lacks none */
		double t = lag[i] < 1 ? NAN : primary_reached(v, n, x->a + 1, &cursor);
		ms[i] = isnan(t) ? 0 : fmax(0, (x->ta - t) * 1e3);
		br[i] = x->p2 - x->p1;
		if (x->own_lag_ms >= 0)
			own[nown++] = x->own_lag_ms;
	}
	const struct sample *a = &v[w0], *b = &v[w1];
	double secs = b->tp2 - a->tp1;
	double prate = secs > 0 ? (b->p2 - a->p1) / unit / secs : 0;
	double arate = b->ta > a->ta ? (b->applied - a->applied) / unit / (b->ta - a->ta) : 0;
	double catchup_ms = caught ? fmax(0, t_caught - b->tp2) * 1e3 : -1;
	double total_s = caught ? t_caught - a->tp1 : -1;
	double total = (v[n - 1].p2 - v[0].p1) / unit;
	double l50 = quantile(lag, m, 0.5), l99 = quantile(lag, m, 0.99), lmax = quantile(lag, m, 1);
	double m50 = quantile(ms, m, 0.5), m99 = quantile(ms, m, 0.99), mmax = quantile(ms, m, 1);
	double o50 = quantile(own, nown, 0.5), o99 = quantile(own, nown, 0.99);
	double b50 = quantile(br, m, 0.5);
	const char *u = redis ? "bytes" : "records";
	printf("load window %.3f s, %zu samples (%zu in all, %" PRIu64 " failed): primary %.0f"
	       " records/s, replica applied %.0f records/s during the load\n",
	       secs, m, n, failed, prate, arate);
	printf("lag p50 %.0f p99 %.0f max %.0f %s (records: %.1f %.1f %.1f); %.2f %.2f %.2f ms;"
	       " primary moved %.0f %s between its two answers (median)\n",
	       l50, l99, lmax, u, l50 / unit, l99 / unit, lmax / unit, m50, m99, mmax, b50, u);
	if (caught)
		printf("caught up %.1f ms after the primary's last move (%.0f records in all,"
		       " %.0f records/s from the first write to caught up)\n",
		       catchup_ms, total, total / total_s);
	else
		printf("NOT CAUGHT UP within %u s: replica at %.0f, primary at %.0f %s\n", o->max_s,
		       v[n - 1].a, v[n - 1].p2, u);
	printf("RESULT mode=lag kind=%s window_s=%.3f samples=%zu failed=%" PRIu64
	       " records=%.0f primary_rps=%.0f replica_rps=%.0f lag_unit=%s lag_p50=%.0f"
	       " lag_p99=%.0f lag_max=%.0f lag_rec_p50=%.1f lag_rec_p99=%.1f lag_ms_p50=%.3f"
	       " lag_ms_p99=%.3f lag_ms_max=%.3f own_lag_ms_p50=%.0f own_lag_ms_p99=%.0f"
	       " bracket_p50=%.0f caught_up=%d catchup_ms=%.1f end_to_end_rps=%.0f\n",
	       redis ? "redis" : "pomai", secs, m, failed, total, prate, arate, u, l50, l99, lmax,
	       l50 / unit, l99 / unit, m50, m99, mmax, nown ? o50 : -1, nown ? o99 : -1, b50,
	       caught, catchup_ms, caught ? total / total_s : 0);
	free(lag);
	free(ms);
	free(own);
	free(br);
}

/* Every sample, one line each: times in ms from the first answer. */
static void dump_samples(const char *path, const struct sample *v, size_t n, size_t w0, size_t w1)
{
	FILE *f = fopen(path, "w");
	if (!f)
		die("%s: %s", path, strerror(errno));
	fprintf(f, "# t_p1_ms p1 t_a_ms a t_p2_ms p2 applied own_lag_ms in_window\n");
	for (size_t i = 0; i < n; i++) {
		const struct sample *x = &v[i];
		double z = v[0].tp1;
		fprintf(f, "%.3f %.0f %.3f %.0f %.3f %.0f %.0f %.0f %d\n", (x->tp1 - z) * 1e3, x->p1,
			(x->ta - z) * 1e3, x->a, (x->tp2 - z) * 1e3, x->p2, x->applied, x->own_lag_ms,
			i >= w0 && i <= w1);
	}
	fclose(f);
}

static int run_lag(const struct lag_opts *o)
{
	struct lag_src s = { .o = o, .pfd = -1, .rfd = -1 };
	struct sample *v = malloc(sizeof(*v) * RB_SAMPLES_MAX);
	s.buf = malloc(RB_RESP_BUF_BYTES);
	if (!v || !s.buf)
		die("%s", "out of memory");
	if (o->kind == K_REDIS) {
		s.pfd = tcp_connect(o->primary);
		s.rfd = tcp_connect(o->replica);
		if (s.pfd < 0 || s.rfd < 0)
			die("%s", "cannot connect to the redis servers");
	} else {
		s.pc = pomai_open(o->primary, o->shards);
		s.rc = pomai_open(o->replica, o->shards);
	}
	const double t_start = mono(), dt = o->interval_ms / 1e3, idle = o->idle_ms / 1e3;
	size_t n = 0, w0 = SIZE_MAX, w1 = 0;
	double p0 = NAN, t_caught = 0;
	bool caught = false;
	for (uint64_t tick = 1;; tick++) {
		struct sample x;
		if (take_sample(&s, &x)) {
			if (isnan(p0))
				p0 = x.p1;
			if (n == RB_SAMPLES_MAX)
				break;
			v[n] = x;
			if (x.p2 > p0 && w0 == SIZE_MAX)
				w0 = n;
			if (n > 0 && x.p2 > v[n - 1].p2)
				w1 = n;
			n++;
			bool ended = w0 != SIZE_MAX && x.tp2 - v[w1].tp2 >= idle;
			if (ended && x.a >= x.p2) {
				caught = true;
				t_caught = x.ta;
				break;
			}
		}
		if (mono() - t_start > o->max_s)
			break;
		sleep_until(t_start + (double)tick * dt);
	}
	if (w0 == SIZE_MAX || n == 0) {
		printf("RESULT mode=lag kind=%s error=no-load samples=%zu failed=%" PRIu64 "\n",
		       o->kind == K_REDIS ? "redis" : "pomai", n, s.failed);
		return 3;
	}
	if (caught) /* when it caught up: the first sample after the load that did */
		for (size_t i = w1; i < n; i++)
			if (v[i].a >= v[w1].p2) {
				t_caught = v[i].ta;
				break;
			}
	lag_report(o, v, n, w0, w1, t_caught, caught, s.failed);
	if (o->samples)
		dump_samples(o->samples, v, n, w0, w1);
	free(v);
	free(s.buf);
	return caught ? 0 : 3;
}

/* ---------------------------------------------------------------- wait mode */

struct conn {
	int fd;
	double t0;
	uint32_t lines;       /* reply lines of the pair in flight */
	uint32_t have;
	bool busy;
	char in[RB_CONN_BUF_BYTES];
};

struct wait_opts {
	uint32_t port, clients, requests, duration_ms, keys, value_bytes, replicas;
};

struct wait_run {
	const struct wait_opts *o;
	struct bu_rng rng;
	char val[RB_VALUE_BYTES_MAX + 1];
	uint32_t issued, done, cap; /* cap: latencies the array holds */
	uint64_t errors, short_waits;
	double end;                 /* --duration-ms: no pair counted or sent after it */
	double *lat_us;
};

static void wait_issue(struct wait_run *r, struct conn *c)
{
	char req[RB_CONN_BUF_BYTES];
	uint32_t key = bu_rng_below(&r->rng, r->o->keys);
	int n = snprintf(req, sizeof(req),
			 "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012" PRIu32 "\r\n$%" PRIu32 "\r\n%s\r\n"
			 "*3\r\n$4\r\nWAIT\r\n$%d\r\n%" PRIu32 "\r\n$1\r\n0\r\n",
			 key, r->o->value_bytes, r->val, snprintf(NULL, 0, "%" PRIu32, r->o->replicas),
			 r->o->replicas);
	c->t0 = mono();
	c->busy = true;
	c->lines = 0;
	r->issued++;
	write_all(c->fd, req, (size_t)n);
}

/* One reply line: the SET's (+OK), then the WAIT's (:replicas acknowledged). */
static void wait_line(struct wait_run *r, struct conn *c, const char *line)
{
	if (line[0] == '-')
		r->errors++;
	else if (c->lines == 1 && (line[0] != ':' || strtoul(line + 1, NULL, 10) < r->o->replicas))
		r->short_waits++;
	if (++c->lines < 2)
		return;
	double t = mono();
	c->busy = false;
	if (t > r->end)
		return;
	if (r->done == r->cap) {
		r->cap *= 2;
		if (!(r->lat_us = realloc(r->lat_us, sizeof(double) * r->cap)))
			die("%s", "out of memory");
	}
	r->lat_us[r->done++] = (t - c->t0) * 1e6;
	if (r->o->duration_ms || r->issued < r->o->requests)
		wait_issue(r, c);
}

static void wait_read(struct wait_run *r, struct conn *c)
{
	ssize_t got = read(c->fd, c->in + c->have, sizeof(c->in) - 1 - c->have);
	if (got <= 0)
		die("%s", "redis closed a connection");
	c->have += (uint32_t)got;
	c->in[c->have] = '\0';
	char *p = c->in, *crlf;
	while ((crlf = strstr(p, "\r\n"))) {
		*crlf = '\0';
		wait_line(r, c, p);
		p = crlf + 2;
	}
	c->have -= (uint32_t)(p - c->in);
	memmove(c->in, p, c->have);
}

static int run_wait(const struct wait_opts *o)
{
	struct wait_run r = { .o = o, .rng = { RB_SEED } };
	struct conn *cs = calloc(o->clients, sizeof(*cs));
	struct pollfd *pf = calloc(o->clients, sizeof(*pf));
	r.cap = o->requests ? o->requests : RB_LATENCIES_INITIAL;
	r.lat_us = malloc(sizeof(double) * r.cap);
	if (!cs || !pf || !r.lat_us)
		die("%s", "out of memory");
	memset(r.val, 'x', o->value_bytes);
	r.val[o->value_bytes] = '\0';
	for (uint32_t i = 0; i < o->clients; i++)
		if ((cs[i].fd = tcp_connect(o->port)) < 0)
			die("cannot connect to redis: %s", strerror(errno));
	double t0 = mono();
	r.end = o->duration_ms ? t0 + o->duration_ms / 1e3 : INFINITY;
	for (uint32_t i = 0; i < o->clients && (o->duration_ms || r.issued < o->requests); i++)
		wait_issue(&r, &cs[i]);
	for (;;) {
		uint32_t busy = 0;
		for (uint32_t i = 0; i < o->clients; i++)
			busy += cs[i].busy;
		if (!busy)
			break;
		for (uint32_t i = 0; i < o->clients; i++)
			pf[i] = (struct pollfd){ .fd = cs[i].fd, .events = POLLIN };
		int k = poll(pf, o->clients, RB_IO_TIMEOUT_MS);
		if (k <= 0)
			die("%s", "redis did not answer (is a replica connected?)");
		for (uint32_t i = 0; i < o->clients; i++)
			if (pf[i].revents)
				wait_read(&r, &cs[i]);
	}
	double secs = (o->duration_ms ? r.end : mono()) - t0;
	double p50 = quantile(r.lat_us, r.done, 0.5), p99 = quantile(r.lat_us, r.done, 0.99);
	double p999 = quantile(r.lat_us, r.done, 0.999), mx = quantile(r.lat_us, r.done, 1);
	printf("SET + WAIT %u 0, %u connections: %u pairs in %.3f s, %.0f/s; p50 %.1f p99 %.1f"
	       " p99.9 %.1f max %.1f us; %" PRIu64 " error replies, %" PRIu64 " short WAITs\n",
	       o->replicas, o->clients, r.done, secs, r.done / secs, p50, p99, p999, mx, r.errors,
	       r.short_waits);
	printf("RESULT mode=wait clients=%u ops_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f"
	       " max_us=%.1f replies=%u errors=%" PRIu64 " short_waits=%" PRIu64 "\n",
	       o->clients, r.done / secs, p50, p99, p999, mx, r.done, r.errors, r.short_waits);
	for (uint32_t i = 0; i < o->clients; i++)
		close(cs[i].fd);
	free(cs);
	free(pf);
	free(r.lat_us);
	return r.errors || r.short_waits ? 3 : 0;
}

/* ---------------------------------------------------------------- sync mode */

struct sync_opts {
	uint32_t primary, replica, shards, interval_ms, max_s;
	double t0;         /* CLOCK_REALTIME seconds */
	const char *stats; /* the replica's stats segment, or NULL */
};

/* Every shard's link up with its primary's last LSN applied, as the replica's
 * stats segment says (each worker publishes every PM_STATS_PUBLISH_MS, also
 * while its fan-outs wait); *prev: when the last read that said no began. */
static bool sync_by_stats(const struct sync_opts *o, const int64_t *target, double *done,
			  double *prev)
{
	struct pm_stats_map m;
	char why[256];
	if (pm_stats_open(o->stats, &m, why, sizeof(why)) != 0)
		die("%s: %s", o->stats, why);
	struct pm_stats_shard *blk = malloc(sizeof(*blk));
	if (!blk || m.nshards != o->shards)
		die("%s: not a segment of %u shards", o->stats, o->shards);
	const double start = mono(), dt = RB_STATS_POLL_MS / 1e3;
	bool ok = false;
	*prev = 0;
	for (uint64_t tick = 1; mono() - start <= o->max_s; tick++) {
		double asked = now_s(CLOCK_REALTIME) - o->t0;
		uint32_t n = 0;
		for (uint32_t i = 0; i < o->shards; i++)
			n += pm_stats_read(pm_stats_shard_at(m.base, i), blk, sizeof(*blk)) &&
			     blk->repl_link_up && (int64_t)blk->repl_applied_lsn == target[i];
		if (n == o->shards) {
			*done = now_s(CLOCK_REALTIME) - o->t0;
			ok = true;
			break;
		}
		*prev = asked;
		sleep_until(start + (double)tick * dt);
	}
	free(blk);
	pm_stats_close(&m);
	return ok;
}

static int run_sync(const struct sync_opts *o)
{
	struct pm_client *pc = pomai_open(o->primary, o->shards);
	struct pm_client *rc = pomai_open(o->replica, o->shards);
	int64_t target[RB_SHARDS_MAX];
	double t_snap[RB_SHARDS_MAX], t_stream[RB_SHARDS_MAX], st_done = -1, st_prev = -1;
	size_t len = pomai_info(pc, "dataplane");
	for (uint32_t i = 0; i < o->shards; i++) {
		const char *a, *b;
		if (!len || !shard_part(info_text, len, i, &a, &b) ||
		    (target[i] = field(a, b, "wal_next_lsn") - 1) < 0)
			die("%s", "the primary's INFO dataplane has no wal_next_lsn");
		t_snap[i] = t_stream[i] = -1;
	}
	pm_client_close(pc);
	if (o->stats && !sync_by_stats(o, target, &st_done, &st_prev)) {
		printf("RESULT mode=sync shards=%u error=not-synced-within-%us (stats segment)\n",
		       o->shards, o->max_s);
		return 3;
	}
	uint64_t polls = 0, failed = 0;
	double prev = 0; /* when the last poll that found it not done was sent */
	const double start = mono(), dt = o->interval_ms / 1e3;
	for (uint64_t tick = 1;; tick++) {
		double asked = now_s(CLOCK_REALTIME) - o->t0;
		len = pomai_info(rc, "replication");
		double since = now_s(CLOCK_REALTIME) - o->t0; /* the state is at most this old */
		polls++;
		uint32_t done = 0;
		for (uint32_t i = 0; i < o->shards; i++) {
			const char *a, *b;
			char link[32];
			if (!len || !shard_part(info_text, len, i, &a, &b) ||
			    !field_text(a, b, "repl_link", link, sizeof(link))) {
				failed++;
				continue;
			}
			if (!strcmp(link, "snapshot") && t_snap[i] < 0)
				t_snap[i] = since;
			if (!strcmp(link, "streaming") && t_stream[i] < 0)
				t_stream[i] = since;
			done += !strcmp(link, "streaming") && field(a, b, "repl_applied_lsn") == target[i];
		}
		if (done == o->shards) {
			double s_done = o->stats ? st_done : since, s_prev = o->stats ? st_prev : prev;
			printf("full sync: %u shard(s) streaming at their primary's LSN %.3f s after"
			       " the replica's start (not yet at %.3f s)%s; INFO replication said so at"
			       " %.3f s (not yet at the poll sent at %.3f s; %" PRIu64 " polls, %" PRIu64
			       " unanswered)\n",
			       o->shards, s_done, s_prev, o->stats ? ", by the stats segment" : "", since,
			       prev, polls, failed);
			printf("RESULT mode=sync shards=%u sync_s=%.3f prev_s=%.3f info_s=%.3f"
			       " info_prev_s=%.3f", o->shards, s_done, s_prev, since, prev);
			for (uint32_t i = 0; i < o->shards; i++)
				printf(" shard%u_lsn=%" PRId64 " shard%u_snapshot_s=%.3f"
				       " shard%u_streaming_s=%.3f", i, target[i], i, t_snap[i], i,
				       t_stream[i]);
			printf(" polls=%" PRIu64 " unanswered=%" PRIu64 "\n", polls, failed);
			pm_client_close(rc);
			return 0;
		}
		if (mono() - start > o->max_s)
			break;
		prev = asked; /* not done when this poll was answered: later than it was asked */
		sleep_until(start + (double)tick * dt);
	}
	printf("RESULT mode=sync shards=%u error=not-synced-within-%us polls=%" PRIu64
	       " unanswered=%" PRIu64 "\n", o->shards, o->max_s, polls, failed);
	pm_client_close(rc);
	return 3;
}

/* ---------------------------------------------------------------- arguments */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pomai-repl-bench lag  --pomai|--redis --primary PORT --replica PORT\n"
		"                             [--shards N] [--interval-ms MS] [--idle-ms MS]\n"
		"                             [--max-s S] [--record-bytes B] [--cpus C]\n"
		"                             [--samples FILE]\n"
		"       pomai-repl-bench wait --port P --clients C --requests N|--duration-ms MS\n"
		"                             [--keys K] [--value-size B] [--replicas R] [--cpus C]\n"
		"       pomai-repl-bench sync --primary PORT --replica PORT --shards N --t0 S\n"
		"                             [--stats FILE] [--interval-ms MS] [--max-s S]\n"
		"                             [--cpus C]\n"
		"PORT: Pomai's base UDP port (TCP on PORT - 1) or Redis's port. See the top of\n"
		"perf/repl_bench.c for what each mode measures.\n");
}

static uint32_t num(const char *name, const char *v, uint32_t lo, uint32_t hi)
{
	uint32_t x;
	if (!v || bu_parse_u32(v, hi, &x) != 0 || x < lo) {
		fprintf(stderr, "pomai-repl-bench: %s wants a number in %u..%u\n", name, lo, hi);
		exit(2);
	}
	return x;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *mode = argv[1];
	struct lag_opts lo = { .kind = K_POMAI, .shards = 1, .interval_ms = RB_INTERVAL_MS_DEFAULT,
			       .idle_ms = RB_IDLE_MS_DEFAULT, .max_s = RB_MAX_S_DEFAULT,
			       .record_bytes = RB_RECORD_BYTES_DEFAULT };
	struct wait_opts wo = { .clients = 1, .keys = RB_KEYS_DEFAULT,
				.value_bytes = RB_VALUE_BYTES_DEFAULT, .replicas = 1 };
	struct sync_opts so = { .shards = 1, .interval_ms = RB_INTERVAL_MS_DEFAULT,
				.max_s = RB_MAX_S_DEFAULT };
	int cpu = -1;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--pomai") || !strcmp(a, "--redis")) {
			lo.kind = a[2] == 'r' ? K_REDIS : K_POMAI;
			continue;
		}
		i++;
		if (!strcmp(a, "--primary"))
			lo.primary = so.primary = num(a, v, 2, 65535);
		else if (!strcmp(a, "--replica"))
			lo.replica = so.replica = num(a, v, 2, 65535);
		else if (!strcmp(a, "--port"))
			wo.port = num(a, v, 1, 65535);
		else if (!strcmp(a, "--shards"))
			lo.shards = so.shards = num(a, v, 1, RB_SHARDS_MAX);
		else if (!strcmp(a, "--interval-ms"))
			lo.interval_ms = so.interval_ms = num(a, v, 1, 1000);
		else if (!strcmp(a, "--idle-ms"))
			lo.idle_ms = num(a, v, 1, 60000);
		else if (!strcmp(a, "--max-s"))
			lo.max_s = so.max_s = num(a, v, 1, RB_MAX_S_MAX);
		else if (!strcmp(a, "--record-bytes"))
			lo.record_bytes = num(a, v, 1, 1u << 20);
		else if (!strcmp(a, "--clients"))
			wo.clients = num(a, v, 1, RB_CLIENTS_MAX);
		else if (!strcmp(a, "--requests"))
			wo.requests = num(a, v, 1, RB_REQUESTS_MAX);
		else if (!strcmp(a, "--duration-ms"))
			wo.duration_ms = num(a, v, 1, RB_MAX_S_MAX * 1000u);
		else if (!strcmp(a, "--keys"))
			wo.keys = num(a, v, 1, 999999999);
		else if (!strcmp(a, "--value-size"))
			wo.value_bytes = num(a, v, 1, RB_VALUE_BYTES_MAX);
		else if (!strcmp(a, "--replicas"))
			wo.replicas = num(a, v, 1, 16);
		else if (!strcmp(a, "--cpus"))
			cpu = (int)num(a, v, 0, 1023);
		else if (!strcmp(a, "--stats") && v)
			so.stats = v;
		else if (!strcmp(a, "--samples") && v)
			lo.samples = v;
		else if (!strcmp(a, "--t0") && v)
			so.t0 = strtod(v, NULL);
		else {
			usage(stderr);
			return 2;
		}
	}
	if (cpu >= 0 && bu_pin_cpu(cpu) != 0)
		fprintf(stderr, "pomai-repl-bench: cannot pin to CPU %d\n", cpu);
	if (!strcmp(mode, "lag")) {
		if (!lo.primary || !lo.replica)
			die("%s", "lag needs --primary and --replica");
		return run_lag(&lo);
	}
	if (!strcmp(mode, "wait")) {
		if (!wo.port || !wo.requests == !wo.duration_ms)
			die("%s", "wait needs --port and one of --requests, --duration-ms");
		return run_wait(&wo);
	}
	if (!strcmp(mode, "sync")) {
		if (!so.primary || !so.replica || so.t0 <= 0)
			die("%s", "sync needs --primary, --replica and --t0");
		return run_sync(&so);
	}
	usage(stderr);
	return 2;
}
