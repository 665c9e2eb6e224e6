/* SPDX-License-Identifier: MIT
 *
 * test_maxmemory.c — eviction in a real pomaid (path in argv[1]): evictions
 * reach the write-ahead log as deletes, so a restart does not bring evicted
 * keys back, whether it replays the log alone or loads a snapshot and replays
 * the log after it.
 *
 * pomaid runs with two shards, wal = sync, maxmemory = 1 MiB per shard and
 * maxmemory_policy = harvest. A client creates an evictable collection, then
 * writes about 2.5 times what fits: half of it, a SNAPSHOT (waited for in
 * INFO), the other half (which evicts keys the snapshot holds: only the log's
 * deletes keep them gone). Every write must succeed. The client then reads
 * every key: those present must hold their values, and some must be absent
 * (evicted) — among them keys present when the snapshot was taken. INFO says
 * mem_used <= maxmemory for each shard. pomaid is SIGKILLed and restarted on
 * the same directory: exactly the same keys are present, with the same
 * values, the collection is still evictable, mem_used <= maxmemory again, and
 * writes past the limit go on evicting.
 *
 * The daemon is waited for by reading its "ready" line, the snapshot by
 * polling INFO, the killed daemon by waitpid: nothing sleeps to synchronise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cu_main.h"
#include "pomai.h"
#include "ports.h"

#define SHARDS 2u
#define MAXMEMORY "1M"
#define MAXMEMORY_BYTES (UINT64_C(1) << 20)
/* Keys and their values: 700 B (a 768-byte class + a 64-byte seed), so the
 * 2 x 1 MiB limit holds about 2,500 of the 6,000 written. */
#define KEYS 6000u
#define VALUE_BYTES 700u
/* Waits: start-up (replay is slow under ASan), a snapshot, a kill. */
#define READY_WAIT_MS 60000
#define SNAP_WAIT_MS 30000
#define SNAP_POLL_MS 10
#define EXIT_WAIT_MS 30000
/* A write's budget: 1 + 2 + 4 + 8 + 16 s (a busy disk is not a hang); SETs in
 * flight at once (sync mode acknowledges a batch per fdatasync). */
#define CLIENT_TIMEOUT_MS 1000u
#define CLIENT_RETRIES 4u
#define CLIENT_IN_FLIGHT 64u
#define INFO_TEXT_BYTES (PM_CLIENT_INFO_REPLY_BYTES_MAX + 1)

static const char *pomaid_path;
static pid_t live_pid = -1;

struct daemon {
	pid_t pid;
	uint16_t base;
	char dir[PATH_MAX];
};

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void pause_ms(long ms) /* the interval of a bounded poll loop, never a wait for a thread */
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&t, NULL);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

/* ---------------------------------------------------------------- the daemon */

static void daemon_exec(const struct daemon *d, int out[2])
{
	char port[16], tport[16];
	snprintf(port, sizeof(port), "%u", d->base);
	snprintf(tport, sizeof(tport), "%u", d->base - 1u);
	dup2(out[1], 1);
	close(out[0]);
	close(out[1]);
	execl(pomaid_path, "pomaid", "--wal", "sync", "--shards", "2", "--data-dir", d->dir,
	      "--arena-bytes", "64M", "--seeds", "65536", "--maxmemory", MAXMEMORY,
	      "--maxmemory-policy", "harvest", "--wal-segment-bytes", "16M", "--tcp-port", tport,
	      "--base-port", port, "--knn-timeout-ms", "2000", "--hugepages", "no", (char *)NULL);
	_exit(127);
}

static bool read_ready(int fd)
{
	char buf[8192];
	size_t n = 0;
	uint64_t deadline = now_ms() + READY_WAIT_MS;
	for (;;) {
		buf[n] = '\0';
		const char *ready = strstr(buf, "pomaid: ready");
		int left = (int)(deadline - now_ms());
		if (ready && strchr(ready, '\n'))
			return true;
		if (n == sizeof(buf) - 1 || left <= 0)
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r = poll(&p, 1, left) > 0 ? read(fd, buf + n, sizeof(buf) - 1 - n) : 0;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	printf("\n  pomaid gave no ready line; its output: %s\n", buf);
	return false;
}

static bool wait_exit(pid_t pid, int ms, int *status)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0) {
		struct pollfd p = { .fd = pfd, .events = POLLIN };
		int r = poll(&p, 1, ms);
		close(pfd);
		if (r <= 0)
			return false;
	}
	return waitpid(pid, status, 0) == pid;
}

static bool daemon_start(struct daemon *d)
{
	int out[2];
	if (pipe(out) != 0)
		return false;
	pid_t pid = fork();
	if (pid == 0)
		daemon_exec(d, out);
	close(out[1]);
	bool ok = pid > 0 && read_ready(out[0]);
	close(out[0]);
	if (pid > 0 && !ok) {
		int st;
		kill(pid, SIGKILL);
		wait_exit(pid, EXIT_WAIT_MS, &st);
	}
	d->pid = live_pid = ok ? pid : -1;
	return ok;
}

static bool daemon_start_fresh(struct daemon *d)
{
	uint64_t rng = (uint64_t)getpid() * 7919u + (uint64_t)time(NULL) + now_ms();
	for (int attempt = 0; attempt < 20; attempt++) {
		d->base = (uint16_t)(20000 + pm_test_rand(&rng) % 40000);
		if (pm_test_ports_free(d->base, SHARDS) && daemon_start(d))
			return true;
	}
	return false;
}

/* SIGKILL; true once pomaid died of it (waited for however long it takes). */
static bool daemon_kill(struct daemon *d)
{
	int st = 0;
	kill(d->pid, SIGKILL);
	bool ok = waitpid(d->pid, &st, 0) == d->pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
	d->pid = live_pid = -1;
	return ok;
}

static void daemon_stop(struct daemon *d)
{
	int st;
	if (d->pid <= 0)
		return;
	kill(d->pid, SIGTERM);
	if (!wait_exit(d->pid, EXIT_WAIT_MS, &st)) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, &st, 0);
	}
	d->pid = live_pid = -1;
}

/* ---------------------------------------------------------------- client */

static struct pm_client *client_open(const struct daemon *d)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.base_port = d->base;
	cfg.shards = SHARDS;
	cfg.timeout_ms = CLIENT_TIMEOUT_MS;
	cfg.retries = CLIENT_RETRIES;
	cfg.max_in_flight = CLIENT_IN_FLIGHT;
	struct pm_client *c = NULL;
	return pm_client_open(&cfg, &c) == PM_CLIENT_OK ? c : NULL;
}

static int key_of(uint32_t i, char *k)
{
	return snprintf(k, 32, "mm:%05u", i);
}

static void value_of(uint32_t i, uint8_t *v)
{
	for (uint32_t j = 0; j < VALUE_BYTES; j++)
		v[j] = (uint8_t)(i * 131u + j);
}

static void on_set(void *arg, const struct pm_client_result *res)
{
	uint32_t *failed = arg;
	if (res->status != PM_CLIENT_OK && (*failed)++ == 0)
		printf("\n  SET: %s", pm_client_status_name(res->status));
}

/* Write keys [from, to), pipelined; true once every one was acknowledged OK. */
static bool write_keys(struct pm_client *c, uint32_t from, uint32_t to)
{
	uint8_t v[VALUE_BYTES];
	uint32_t failed = 0;
	for (uint32_t i = from; i < to; i++) {
		char k[32];
		int kl = key_of(i, k);
		value_of(i, v);
		struct pm_client_req q = { .op = PM_CLIENT_SET, .key = k, .klen = (uint32_t)kl,
					   .value = v, .vlen = VALUE_BYTES, .cb = on_set,
					   .arg = &failed };
		if (pm_client_submit(c, &q, NULL) != PM_CLIENT_OK)
			failed++;
	}
	pm_client_drain(c);
	return failed == 0;
}

/* present[i] for keys [0, n): there with the right value; false if a key is
 * there with a wrong value or a read fails. */
static bool read_keys(struct pm_client *c, uint32_t n, bool *present)
{
	uint8_t v[VALUE_BYTES], want[VALUE_BYTES];
	for (uint32_t i = 0; i < n; i++) {
		char k[32];
		int kl = key_of(i, k);
		size_t vlen = 0;
		enum pm_client_status st = pm_client_get(c, k, (size_t)kl, v, sizeof(v), &vlen);
		value_of(i, want);
		present[i] = st == PM_CLIENT_OK;
		if (st == PM_CLIENT_NOT_FOUND)
			continue;
		if (st != PM_CLIENT_OK || vlen != VALUE_BYTES || memcmp(v, want, VALUE_BYTES)) {
			printf("\n  GET %s: %s, %zu bytes", k, pm_client_status_name(st), vlen);
			return false;
		}
	}
	return true;
}

/* INFO memory of every shard: mem_used <= maxmemory in each (and in the
 * Total, which comes first); *evicted gets the Total's evicted_keys. */
static bool memory_within(struct pm_client *c, uint64_t *evicted, unsigned *shards_seen)
{
	static char text[INFO_TEXT_BYTES];
	size_t n = 0;
	if (pm_client_info(c, "memory", text, sizeof(text) - 1, &n) != PM_CLIENT_OK)
		return false;
	text[n] = '\0';
	bool ok = true;
	unsigned pairs = 0;
	for (const char *p = text; (p = strstr(p, "\nmem_used:")) != NULL; pairs++) {
		uint64_t used = strtoull(p + 10, NULL, 10);
		const char *m = strstr(p, "\nmaxmemory:");
		uint64_t max = m ? strtoull(m + 11, NULL, 10) : 0;
		ok &= m != NULL && max != 0 && used <= max;
		if (used > max)
			printf("\n  mem_used %" PRIu64 " > maxmemory %" PRIu64, used, max);
		p = m ? m : p + 1;
	}
	const char *e = strstr(text, "\nevicted_keys:");
	*evicted = e ? strtoull(e + 14, NULL, 10) : 0;
	*shards_seen = pairs ? pairs - 1 : 0; /* the Total, then one per shard */
	return ok;
}

static uint64_t info_total(struct pm_client *c, const char *field)
{
	static char text[INFO_TEXT_BYTES];
	size_t n = 0;
	if (pm_client_info(c, NULL, text, sizeof(text) - 1, &n) != PM_CLIENT_OK)
		return UINT64_MAX;
	text[n] = '\0';
	char pat[64];
	snprintf(pat, sizeof(pat), "\n%s:", field);
	const char *p = strstr(text, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
}

static bool snapshot_done(struct pm_client *c)
{
	if (pm_client_snapshot(c) != PM_CLIENT_OK)
		return false;
	for (uint64_t t0 = now_ms(); now_ms() - t0 < SNAP_WAIT_MS; pause_ms(SNAP_POLL_MS)) {
		uint64_t v = info_total(c, "snapshots_completed");
		if (v != UINT64_MAX && v >= SHARDS)
			return true;
	}
	return false;
}

static bool evictable_listed(struct pm_client *c)
{
	struct pm_client_coll_info items[4];
	struct pm_client_coll_list l = { .items = items, .cap = 4 };
	if (pm_client_collection_list(c, &l) != PM_CLIENT_OK)
		return false;
	for (uint32_t i = 0; i < l.count; i++)
		if (items[i].name_len == 5 && !memcmp(items[i].name, "cache", 5))
			return items[i].params.evictable;
	return false;
}

/* ---------------------------------------------------------------- the test */

static bool present_at_snap[KEYS], present[KEYS], after[KEYS];

static void check_round(struct pm_client *c, const char *when)
{
	uint64_t evicted = 0;
	unsigned shards = 0;
	CU_ASSERT(memory_within(c, &evicted, &shards));
	CU_ASSERT_EQUAL(shards, SHARDS);
	printf("\n  %s: evicted_keys %" PRIu64, when, evicted);
}

static void test_evictions_survive_restart(void)
{
	struct daemon d = { 0 };
	snprintf(d.dir, sizeof(d.dir), "/tmp/pomai-maxmemory-XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(d.dir) != NULL);
	CU_ASSERT_FATAL(daemon_start_fresh(&d));
	struct pm_client *c = client_open(&d);
	CU_ASSERT_FATAL(c != NULL);
	struct pm_client_coll_params p = { .dim = 4, .evictable = true };
	CU_ASSERT_EQUAL(pm_client_collection_create(c, "cache", &p), PM_CLIENT_OK);
	CU_ASSERT_FATAL(write_keys(c, 0, KEYS / 2));
	CU_ASSERT_FATAL(read_keys(c, KEYS / 2, present_at_snap));
	CU_ASSERT_FATAL(snapshot_done(c));
	CU_ASSERT_FATAL(write_keys(c, KEYS / 2, KEYS));
	CU_ASSERT_FATAL(read_keys(c, KEYS, present));
	uint32_t kept = 0, gone_since_snap = 0;
	for (uint32_t i = 0; i < KEYS; i++) {
		kept += present[i];
		gone_since_snap += i < KEYS / 2 && present_at_snap[i] && !present[i];
	}
	printf("\n  %u of %u keys kept, %u evicted after the snapshot held them", kept, KEYS,
	       gone_since_snap);
	CU_ASSERT(kept > KEYS / 4 && kept < KEYS / 2);
	CU_ASSERT(gone_since_snap > 0);
	check_round(c, "before the kill");
	pm_client_close(c);

	CU_ASSERT_FATAL(daemon_kill(&d));
	CU_ASSERT_FATAL(daemon_start(&d));
	c = client_open(&d);
	CU_ASSERT_FATAL(c != NULL);
	CU_ASSERT(info_total(c, "wal_recovered_records") > 0);
	CU_ASSERT_FATAL(read_keys(c, KEYS, after));
	uint32_t back = 0, lost = 0;
	for (uint32_t i = 0; i < KEYS; i++) {
		back += !present[i] && after[i];
		lost += present[i] && !after[i];
	}
	CU_ASSERT_EQUAL(back, 0); /* evicted keys stay gone */
	CU_ASSERT_EQUAL(lost, 0); /* acknowledged keys stay */
	CU_ASSERT(evictable_listed(c));
	check_round(c, "after the restart");
	/* the limit holds after recovery: more writes go on evicting */
	CU_ASSERT(write_keys(c, KEYS, KEYS + KEYS / 4));
	check_round(c, "after more writes");
	pm_client_close(c);
	daemon_stop(&d);
	nftw(d.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-POMAID\n", argv[0]);
		return 1;
	}
	pomaid_path = argv[1];
	static CU_TestInfo tests[] = {
		{ "evictions survive a SIGKILL (log, snapshot + log)", test_evictions_survive_restart },
		CU_TEST_INFO_NULL,
	};
	int rc = pm_cu_run("maxmemory", tests);
	if (live_pid > 0) {
		int st;
		kill(live_pid, SIGKILL);
		waitpid(live_pid, &st, 0);
	}
	return rc;
}
