/* SPDX-License-Identifier: MIT
 *
 * test_control.c — pomai-control (argv[2]) between a real pomaid (argv[1])
 * and pomaictl (argv[3]), on free loopback ports and a fresh data_dir.
 * pomaid runs with its own snapshot schedule off, so every snapshot here is
 * one pomai-control asked for.
 *  - attach: pomaictl through pomai-control's socket (mode 0600): ping, info,
 *    shards as JSON, a config key; `control` shows the config file's quotas;
 *  - snapshots on schedule: snapshot_interval_s = 1 makes every shard's
 *    snapshots_completed grow; log writes past snapshot_wal_bytes ask for one
 *    with reason wal_bytes;
 *  - /metrics: `promtool check metrics` accepts a scrape; its values match
 *    the stats segment; other paths 404, other methods 405;
 *  - bounds: CTL_CONNS_MAX connections and one more, an oversized request,
 *    a malformed one, a bad QUOTA SET;
 *  - pomaid stopped (SIGSTOP): a command is answered UNAVAILABLE after
 *    daemon_timeout_ms, not hung; attached again after SIGCONT;
 *  - pomaid SIGKILLed: pomai_up goes 0 and commands answer UNAVAILABLE
 *    (pomaictl exits 3); restarted, pomai_up goes 1 and QUOTA LIST on the
 *    new daemon shows pomai-control's whole quota table;
 *  - SIGTERM: pomai-control exits 0 and removes its socket.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin_proto.h"
#include "ctl.h"
#include "cu_main.h"
#include "pomai.h"
#include "proc.h"
#include "stats.h"

#define SHARDS 2u
#define POLL_MS 20
#define WAIT_MS 15000
#define OUT_BYTES (1u << 20)
/* pomai-control's flags for this test */
#define DAEMON_TIMEOUT_MS 1500
/* ... and once test_daemon_stopped has run: pomai-control's default, pomaid's
 * PM_ADMIN_REPLY_MS (5 s) and a margin. A USER change fsyncs pomaid's users
 * file and waits for every worker to take the new table, which a loaded
 * machine can take longer than DAEMON_TIMEOUT_MS over. */
#define DAEMON_REPLY_MS 6000
#define RETRY_MS 100
#define WAL_TRIGGER_BYTES (64u << 10)
/* control.h's CTL_CONNS_MAX */
#define CTL_CONNS_MAX_TEST 8u
#define VALUE_BYTES 1024u
#define LOAD_KEYS 256u
/* Metrics ports tried for pomai-control (one another process took meanwhile
 * makes its start fail). */
#define METRICS_PORT_TRIES 20u

static const char *control_path, *ctl_path;
static char csock[PATH_MAX + 16], dsock[PATH_MAX + 16], conf[PATH_MAX + 16], log_path[PATH_MAX + 16];
static uint16_t metrics_port;
static char text[OUT_BYTES];
/* pomaid with its own snapshot schedule off: every snapshot here is one
 * pomai-control asked for; fan-outs have a deadline for a busy CI machine. */
static struct pomaid srv = {
	.flags = (const char *const[]){ "--arena-bytes", "64M", "--seeds", "65536", "--hugepages",
					"no", "--snapshot-interval-s", "0", "--snapshot-wal-bytes",
					"0", "--knn-timeout-ms", "2000", NULL },
};
static struct proc control;

/* ---------------------------------------------------------------- processes */

/* pomai-control on metrics_port (daemon_timeout_ms daemon_ms), its output in
 * DIR/control.log. */
static bool start_control(int daemon_ms)
{
	proc_init(&control, control_path);
	proc_args(&control, (const char *const[]){ "--config", conf, "--data-dir", srv.dir,
						   "--metrics-listen", NULL });
	proc_argf(&control, "127.0.0.1:%u", metrics_port);
	proc_args(&control, (const char *const[]){ "--snapshot-interval-s", "1",
						   "--snapshot-wal-bytes", NULL });
	proc_argf(&control, "%u", WAL_TRIGGER_BYTES);
	proc_arg(&control, "--daemon-timeout-ms");
	proc_argf(&control, "%d", daemon_ms);
	proc_arg(&control, "--retry-ms");
	proc_argf(&control, "%d", RETRY_MS);
	control.ready = CONTROL_READY_LINE;
	control.after = PROC_AFTER_LOG;
	control.log = log_path;
	return proc_start(&control);
}

/* A free TCP port for /metrics, none of pomaid's. */
static uint16_t metrics_port_pick(uint64_t *rng)
{
	for (uint32_t i = 0; i < PROC_PORT_TRIES; i++) {
		uint16_t p = (uint16_t)(PROC_PORT_LO + pm_test_rand(rng) % PROC_PORT_SPAN);
		if (proc_port_free(SOCK_STREAM, p) && (p + 1u < srv.base || p > srv.base + SHARDS))
			return p;
	}
	return 0;
}

static int suite_init(void)
{
	if (!proc_dir_make(srv.dir, "control"))
		return -1;
	snprintf(csock, sizeof(csock), "%s/control.sock", srv.dir);
	snprintf(dsock, sizeof(dsock), "%s/admin.sock", srv.dir);
	snprintf(conf, sizeof(conf), "%s/control.conf", srv.dir);
	snprintf(log_path, sizeof(log_path), "%s/control.log", srv.dir);
	FILE *f = fopen(conf, "w"); /* the file's values; the flags override some */
	if (!f)
		return -1;
	fprintf(f, "snapshot_interval_s = 0\nquota = 10.0.0.7 1000 1000000\n"
		   "quota = 10.0.0.8 2000 0\n");
	fclose(f);
	if (!pomaid_start(&srv, NULL, NULL))
		return -1;
	uint64_t rng = (uint64_t)getpid() * 7919u ^ proc_now_ns();
	for (uint32_t attempt = 0; attempt < METRICS_PORT_TRIES; attempt++)
		if ((metrics_port = metrics_port_pick(&rng)) != 0 &&
		    start_control(DAEMON_TIMEOUT_MS))
			return 0;
	return -1;
}

static int suite_clean(void)
{
	if (proc_alive(&control))
		proc_stop(&control, SIGKILL, PROC_EXIT_WAIT_MS);
	if (pomaid_alive(&srv))
		proc_stop(&srv.proc, SIGKILL, PROC_EXIT_WAIT_MS);
	proc_dir_remove(srv.dir);
	return 0;
}

/* ---------------------------------------------------------------- clients */

static int ctl(const char *sock, const char *args, char *out)
{
	return ctl_run(ctl_path, sock, args, out);
}

static void expect(const char *sock, const char *args, int code, const char *has)
{
	ctl_expect(ctl_path, sock, args, code, has);
}

/* An HTTP/1.0 request to the metrics port: the status code, the body in text. */
static int http(const char *method, const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(metrics_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char req[256];
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n", method, path);
	size_t got = 0;
	text[0] = '\0';
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    write(fd, req, (size_t)n) != n) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct pollfd p = { .fd = fd, .events = POLLIN };
	for (ssize_t r = 1; r > 0 && got < sizeof(text) - 1 && poll(&p, 1, WAIT_MS) > 0; got += (size_t)r)
		if ((r = read(fd, text + got, sizeof(text) - 1 - got)) <= 0)
			break;
	close(fd);
	text[got] = '\0';
	int code = -1;
	char *body = strstr(text, "\r\n\r\n");
	if (sscanf(text, "HTTP/1.%*d %d", &code) != 1 || !body)
		return -1;
	memmove(text, body + 4, strlen(body + 4) + 1);
	return code;
}

/* The value of the sample starting a line with head ("name{labels}"), or -1. */
static double metric(const char *head)
{
	size_t n = strlen(head);
	double v;
	for (const char *p = text; p; p = strchr(p, '\n')) {
		p += *p == '\n';
		if (!strncmp(p, head, n) && p[n] == ' ' && sscanf(p + n + 1, "%lf", &v) == 1)
			return v;
	}
	return -1;
}

/* Scrape until the sample `head` is at least want (bounded); its last value. */
static double metric_reaches(const char *head, double want)
{
	uint64_t t0 = proc_now_ms();
	double v = -1;
	while (proc_now_ms() - t0 < WAIT_MS) {
		if (http("GET", "/metrics") == 200 && (v = metric(head)) >= want)
			break;
		proc_pause_ms(POLL_MS);
	}
	return v;
}

static bool up_is(int want)
{
	uint64_t t0 = proc_now_ms();
	while (proc_now_ms() - t0 < WAIT_MS) {
		if (http("GET", "/metrics") == 200 && metric("pomai_up") == want)
			return true;
		proc_pause_ms(POLL_MS);
	}
	return false;
}

static bool read_shards(struct pm_stats_shard *s)
{
	char path[PATH_MAX + 16], why[256];
	struct pm_stats_map m;
	snprintf(path, sizeof(path), "%s/pomaid.stats", srv.dir);
	if (pm_stats_open(path, &m, why, sizeof(why)) != 0)
		return false;
	bool ok = m.nshards == SHARDS;
	for (uint32_t i = 0; ok && i < SHARDS; i++)
		ok = pm_stats_read(pm_stats_shard_at(m.base, i), &s[i], sizeof(s[i]));
	pm_stats_close(&m);
	return ok;
}

/* The segment once it stands still: every key written is in it, and two
 * reads POLL_MS apart agree on what test_metrics compares. A worker publishes
 * every PM_STATS_PUBLISH_MS, so the last writes may be newer than the segment
 * for a while (an ASan run on a loaded machine once read it that early). */
static bool shards_settled(struct pm_stats_shard *s)
{
	struct pm_stats_shard t[SHARDS];
	for (uint64_t t0 = proc_now_ms(); proc_now_ms() - t0 < WAIT_MS;) {
		if (!read_shards(s))
			return false;
		proc_pause_ms(POLL_MS);
		if (!read_shards(t))
			return false;
		uint64_t keys = 0;
		bool same = true;
		for (uint32_t i = 0; i < SHARDS; i++) {
			same = same && s[i].keys == t[i].keys && s[i].wal_bytes == t[i].wal_bytes &&
			       s[i].ops[1] == t[i].ops[1] && s[i].lat_kv.count == t[i].lat_kv.count;
			keys += t[i].keys;
		}
		if (same && keys >= LOAD_KEYS)
			return true;
	}
	return false;
}

/* ---------------------------------------------------------------- tests */

static void test_attach(void)
{
	CU_ASSERT_FATAL(up_is(1));
	struct stat sb;
	CU_ASSERT_EQUAL_FATAL(stat(csock, &sb), 0);
	CU_ASSERT(S_ISSOCK(sb.st_mode) && (sb.st_mode & 0777) == 0600);
	expect(csock, "ping", 0, "PONG");
	expect(csock, "info", 0, "# Total");
	expect(csock, "shards", 0, "# Shard 1");
	expect(csock, "config get snapshot_interval_s", 0, "snapshot_interval_s:0");
	expect(csock, "control", 0, "attached:1");
	expect(csock, "control", 0, "# 10.0.0.8\r\nrequests_per_s:2000\r\nbytes_per_s:0");
	expect(csock, "collection create docs --dim 9", 0, "OK");
	expect(csock, "collection list", 0, "# docs");
	CU_ASSERT_EQUAL(ctl_json(ctl_path, csock, "shards",
				 "d['status'] == 'ok' and d['Shard 1']['arena_bytes'] > 0"), 0);
}

static void test_snapshot_interval(void)
{
	struct pm_stats_shard s0[SHARDS], s[SHARDS];
	CU_ASSERT_FATAL(read_shards(s0));
	uint64_t t0 = proc_now_ms();
	bool grew = false;
	while (!grew && proc_now_ms() - t0 < WAIT_MS) {
		proc_pause_ms(POLL_MS * 5);
		grew = read_shards(s);
		for (uint32_t i = 0; grew && i < SHARDS; i++)
			grew = s[i].snapshots_completed >= s0[i].snapshots_completed + 2;
	}
	printf("\n  snapshots completed: shard 0 %llu -> %llu in %llu ms",
	       (unsigned long long)s0[0].snapshots_completed,
	       (unsigned long long)s[0].snapshots_completed, (unsigned long long)(proc_now_ms() - t0));
	CU_ASSERT(grew);
	CU_ASSERT(metric_reaches("pomai_control_snapshots_requested_total{reason=\"interval\"}", 2) >= 2);
	CU_ASSERT_EQUAL(metric("pomai_snapshots_failed_total{shard=\"0\"}"), 0);
}

static void write_keys(uint32_t from, uint32_t n)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.base_port = srv.base;
	cfg.shards = SHARDS;
	cfg.timeout_ms = 1000;
	struct pm_client *c = NULL;
	static char value[VALUE_BYTES];
	memset(value, 'v', sizeof(value));
	CU_ASSERT_EQUAL_FATAL(pm_client_open(&cfg, &c), PM_CLIENT_OK);
	char key[32];
	for (uint32_t i = from; i < from + n; i++) {
		int kl = snprintf(key, sizeof(key), "wal-%u", i);
		struct pm_client_req r = { .op = PM_CLIENT_SET, .key = key, .klen = (uint32_t)kl,
					   .value = value, .vlen = VALUE_BYTES };
		CU_ASSERT_EQUAL(pm_client_submit(c, &r, NULL), PM_CLIENT_OK);
	}
	pm_client_drain(c);
	pm_client_close(c);
}

static void test_snapshot_wal_bytes(void)
{
	const char *head = "pomai_control_snapshots_requested_total{reason=\"wal_bytes\"}";
	CU_ASSERT_FATAL(http("GET", "/metrics") == 200);
	double before = metric(head), now = before;
	CU_ASSERT_EQUAL(before, 0);
	/* each round writes four times the trigger; the 1 s timer may take a
	 * round's turn (it resets the count), not every round's */
	uint64_t t0 = proc_now_ms();
	for (uint32_t round = 0; now <= before && proc_now_ms() - t0 < WAIT_MS; round++) {
		write_keys(round * LOAD_KEYS, LOAD_KEYS);
		for (int k = 0; k < 10 && now <= before; k++) {
			proc_pause_ms(POLL_MS);
			if (http("GET", "/metrics") == 200)
				now = metric(head);
		}
	}
	CU_ASSERT(now >= 1);
	_Static_assert(LOAD_KEYS * VALUE_BYTES >= 4 * WAL_TRIGGER_BYTES, "a round crosses it");
}

static void test_metrics(void)
{
	CU_ASSERT_EQUAL_FATAL(http("GET", "/metrics"), 200);
	static char said[4096];
	int rc = ctl_promtool(text, said, sizeof(said));
	if (rc != 0)
		printf("\n  promtool check metrics: %d: %s", rc, said);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(metric("pomai_up"), 1);
	CU_ASSERT_EQUAL(metric("pomai_shards"), SHARDS);
	CU_ASSERT_EQUAL(metric("pomai_daemon_pid"), srv.proc.pid);
	/* no writes run now: once the segment stands still, scrape and segment agree */
	struct pm_stats_shard s[SHARDS];
	CU_ASSERT_FATAL(shards_settled(s));
	CU_ASSERT_EQUAL_FATAL(http("GET", "/metrics"), 200);
	uint64_t keys = 0;
	for (uint32_t i = 0; i < SHARDS; i++) {
		char head[128];
		snprintf(head, sizeof(head), "pomai_keys{shard=\"%u\"}", i);
		CU_ASSERT_EQUAL(metric(head), (double)s[i].keys);
		snprintf(head, sizeof(head), "pomai_wal_bytes_total{shard=\"%u\"}", i);
		CU_ASSERT_EQUAL(metric(head), (double)s[i].wal_bytes);
		snprintf(head, sizeof(head), "pomai_ops_total{shard=\"%u\",op=\"set\"}", i);
		CU_ASSERT_EQUAL(metric(head), (double)s[i].ops[1]);
		snprintf(head, sizeof(head), "pomai_kv_service_seconds_count{shard=\"%u\"}", i);
		CU_ASSERT_EQUAL(metric(head), (double)s[i].lat_kv.count);
		keys += s[i].keys;
	}
	CU_ASSERT(keys >= LOAD_KEYS); /* test_snapshot_wal_bytes wrote them */
	CU_ASSERT_EQUAL(http("GET", "/nothing"), 404);
	CU_ASSERT_EQUAL(http("POST", "/metrics"), 405);
}

static void test_bounds(void)
{
	/* pomai-control may close with the test's bytes unread: a reset */
	ctl_socket_bounds(csock, CTL_CONNS_MAX_TEST, CTL_CONNS_MAX_TEST - 1, true);
	expect(csock, "quota set 10.0.0.300 1 1", 2, "usage");
	expect(csock, "quota set 10.0.0.9 17179869185 1", 2, "usage");
	expect(csock, "ping", 0, "PONG");
}

static void test_daemon_stopped(void)
{
	CU_ASSERT_EQUAL_FATAL(kill(srv.proc.pid, SIGSTOP), 0);
	uint64_t t0 = proc_now_ms();
	/* the ping, or a scheduled SNAPSHOT just before it, waits daemon_timeout_ms;
	 * then an attach attempt may hold the ping as long again: not pomaictl's
	 * own 10 s */
	expect(csock, "ping", 3, NULL);
	uint64_t took = proc_now_ms() - t0;
	printf("\n  pomaid stopped: UNAVAILABLE after %llu ms", (unsigned long long)took);
	CU_ASSERT(took < 2 * DAEMON_TIMEOUT_MS + 1000);
	CU_ASSERT(up_is(0));
	kill(srv.proc.pid, SIGCONT);
	CU_ASSERT(up_is(1));
	expect(csock, "ping", 0, "PONG");
}

/* Whether the "# addr" section of an INFO-like text has the line field:v. */
static bool section_has(const char *t, const char *addr, const char *field, uint64_t v)
{
	char head[64], line[96];
	snprintf(head, sizeof(head), "# %s", addr);
	snprintf(line, sizeof(line), "%s:%llu", field, (unsigned long long)v);
	for (const char *p = strstr(t, head); p; p = strstr(p + 1, head)) {
		const char *body = p + strlen(head);
		if (*body != '\r' && *body != '\n')
			continue; /* "# 10.0.0.1" is not "# 10.0.0.11" */
		const char *end = strstr(body, "# ");
		size_t n = end ? (size_t)(end - body) : strlen(body), k = strlen(line);
		for (const char *q = body; (q = memmem(q, n - (size_t)(q - body), line, k)); q += k)
			if (q[-1] == '\n' && (q[k] == '\r' || q[k] == '\n' || q[k] == '\0'))
				return true;
	}
	return false;
}

static void test_restart(void)
{
	CU_ASSERT_FATAL(up_is(1));
	double attaches = metric("pomai_control_attaches_total");
	expect(csock, "quota set 10.0.0.9 3000 4000", 0, NULL); /* through pomai-control */
	expect(csock, "quota set 10.0.0.10 5 5", 0, NULL);
	expect(csock, "quota del 10.0.0.10", 0, NULL);
	expect(dsock, "quota get 10.0.0.9", 0, "requests_per_s:3000");
	expect(csock, "user add alice read,write key=a:", 0, "key:"); /* issue 19 */
	expect(csock, "user grant alice admin", 0, "OK");
	expect(csock, "ping", 0, "PONG"); /* one loop: the users were asked for before this */
	CU_ASSERT(pomaid_kill(&srv));
	char users[PATH_MAX + 16]; /* a pomaid that lost its users file gets them back */
	snprintf(users, sizeof(users), "%s/users", srv.dir);
	CU_ASSERT_EQUAL(unlink(users), 0);
	CU_ASSERT(up_is(0));
	expect(csock, "ping", 3, "not attached");
	expect(csock, "quota set 10.0.0.11 6 6", 3, "remembered"); /* pushed at attach */
	CU_ASSERT_FATAL(pomaid_start(&srv, NULL, NULL)); /* on the same ports */
	CU_ASSERT(up_is(1));
	CU_ASSERT(metric("pomai_control_attaches_total") >= attaches + 1);
	static char out[OUT_BYTES];
	int rc = ctl(dsock, "quota list", out); /* straight to the new daemon */
	static const struct {
		const char *addr;
		uint64_t rps, bps;
	} want[] = { { "10.0.0.7", 1000, 1000000 }, { "10.0.0.8", 2000, 0 },
		     { "10.0.0.9", 3000, 4000 }, { "10.0.0.11", 6, 6 } };
	CU_ASSERT_EQUAL(rc, 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		bool ok = section_has(out, want[i].addr, "requests_per_s", want[i].rps) &&
			  section_has(out, want[i].addr, "bytes_per_s", want[i].bps);
		if (!ok)
			printf("\n  QUOTA LIST lacks %s: %.400s", want[i].addr, out);
		CU_ASSERT(ok);
	}
	CU_ASSERT(!section_has(out, "10.0.0.10", "requests_per_s", 5)); /* deleted */
	CU_ASSERT_EQUAL(metric("pomai_control_quota_push_errors_total"), 0);
	expect(dsock, "user list", 0, "# alice\r\nid:1\r\nrights:read,write,admin\r\nkey_prefixes:a:");
	expect(csock, "ping", 0, "PONG");
}

/* pomai-control restarted keeps the users (issue 19): its users_file, mode
 * 0600, holds the users test_restart added through it; a new pomai-control
 * reads it and pushes them to a pomaid that lost its own users file. One
 * that others may read stops the start, saying to chmod it. */
static void test_users_file(void)
{
	char path[PATH_MAX + 16], users[PATH_MAX + 16];
	static char out[OUT_BYTES];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/control.users", srv.dir);
	snprintf(users, sizeof(users), "%s/users", srv.dir);
	CU_ASSERT_FATAL(stat(path, &sb) == 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
	CU_ASSERT_FATAL(proc_stop(&control, SIGTERM, PROC_EXIT_WAIT_MS));
	CU_ASSERT(proc_exited_ok(&control));
	CU_ASSERT(pomaid_kill(&srv));
	CU_ASSERT_EQUAL(unlink(users), 0); /* both gone but control.users */
	CU_ASSERT_FATAL(pomaid_start(&srv, NULL, NULL));
	CU_ASSERT_EQUAL(ctl(dsock, "user list", out), 0);
	CU_ASSERT_PTR_NULL(strstr(out, "alice")); /* this pomaid knows nobody */
	CU_ASSERT_EQUAL_FATAL(chmod(path, 0644), 0);
	CU_ASSERT(!start_control(DAEMON_REPLY_MS));
	CU_ASSERT_PTR_NOT_NULL(strstr(control.out, "chmod 600"));
	CU_ASSERT_EQUAL_FATAL(chmod(path, 0600), 0);
	CU_ASSERT_FATAL(start_control(DAEMON_REPLY_MS));
	CU_ASSERT(up_is(1));
	expect(dsock, "user list", 0, "# alice\r\nid:1\r\nrights:read,write,admin\r\nkey_prefixes:a:");
	expect(csock, "user del alice", 0, "OK"); /* saved too: gone after the next restart */
	expect(csock, "ping", 0, "PONG");
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(out, 1, OUT_BYTES - 1, f) : 0;
	out[n] = '\0';
	if (f)
		fclose(f);
	CU_ASSERT_PTR_NOT_NULL(f);
	CU_ASSERT_PTR_NULL(strstr(out, "alice"));
}

static void test_stop(void)
{
	CU_ASSERT_FATAL(proc_stop(&control, SIGTERM, PROC_EXIT_WAIT_MS));
	CU_ASSERT(proc_exited_ok(&control));
	CU_ASSERT(access(csock, F_OK) != 0);
	expect(dsock, "ping", 0, "PONG"); /* pomaid is not stopped with it */
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: test_control POMAID POMAI-CONTROL POMAICTL\n");
		return 1;
	}
	srv.path = argv[1];
	control_path = argv[2];
	ctl_path = argv[3];
	signal(SIGPIPE, SIG_IGN);
	static CU_TestInfo tests[] = {
		{ "attach: pomaictl through pomai-control", test_attach },
		{ "snapshots every snapshot_interval_s", test_snapshot_interval },
		{ "a snapshot once the logs grew snapshot_wal_bytes", test_snapshot_wal_bytes },
		{ "/metrics: promtool, values match the segment, 404, 405", test_metrics },
		{ "control socket: connections, sizes, bad requests", test_bounds },
		{ "pomaid stopped: UNAVAILABLE after daemon_timeout_ms", test_daemon_stopped },
		{ "pomaid killed and restarted: pomai_up 0 then 1, quotas again", test_restart },
		{ "pomai-control restarted: its users_file (0600) pushes the users again",
		  test_users_file },
		{ "SIGTERM: pomai-control exits 0", test_stop },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run_suite("control", suite_init, suite_clean, tests);
}
