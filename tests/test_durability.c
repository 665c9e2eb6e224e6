/* SPDX-License-Identifier: MIT
 *
 * test_durability.c — crash tests of pomaid's write-ahead log (wal_io.h): a
 * real pomaid (path in argv[1]) on free loopback ports is SIGKILLed under
 * load, restarted on the same data directory, and what it recovered is checked
 * against what its clients were told.
 *
 *  1. wal = sync, POMAI_DURABILITY_ROUNDS rounds (20): four writer threads
 *     pipeline SETs (values of 1..2000 bytes), overwrites and DELs; pomaid is
 *     SIGKILLed after a seeded number of acknowledged writes, requests still in
 *     flight. After the restart every acknowledged write is there byte for
 *     byte, a write sent but never acknowledged may or may not be, and no key
 *     that was never sent exists. The data directory is carried over, so each
 *     restart replays a longer log over more 16 MiB segments.
 *  2. The same with snapshots (snap_io.h): some published while the writers
 *     run (the restart loads one and replays the log after it), some killed
 *     while being written; then the log rolls over, a snapshot retires the
 *     old segments as spares, new segments are made from them, and a kill
 *     still loses nothing acknowledged.
 *  3. Vectors of the default collection (exact KNN) and of a named HNSW one
 *     (KNN through the graph) give the same keys and distances before a
 *     SIGKILL and after the restart, which loads the graph from a snapshot
 *     and replays nothing; a damaged snapshot stops the start-up.
 *  4. wal = batch: acknowledged writes survive a crash of pomaid (killed once
 *     the writers have their replies; see the test for why).
 *  5. ENOSPC on a tmpfs (root; a mount namespace of the test's own): writes
 *     are refused with E_DISK_FULL, reads go on, writes resume once there is
 *     room, and a SIGKILL then loses nothing acknowledged.
 *
 * What a writer knows of each of its keys: the state it was last acknowledged
 * with (a value, or deleted), and at most one later write it sent without an
 * acknowledgement — the one in flight at the kill, or one that failed, after
 * which the writer sends nothing more that round. A writer never has two
 * writes to one key in flight, so the acknowledgements of a key come in the
 * order its writes were sent. After a restart the key must hold the
 * acknowledged state or the unacknowledged one; whichever it holds is then
 * known to be in the log and becomes the state later rounds expect. (A check
 * while pomaid runs settles nothing: a read may see a write whose record still
 * waits, e.g. for disk space. Writers leave such a key alone.)
 *
 * The seed is printed; POMAI_TEST_SEED=<n> replays a run's values, operations
 * and kill points (not the timing). The daemon is waited for by reading its
 * "ready" line, writers by their replies, the killed daemon by waitpid:
 * nothing sleeps to synchronise.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cu_main.h"
#include "pomai.h"
#include "ports.h"

#define SHARDS 2u
#define WRITERS 4u
/* Writes each writer keeps in flight, and GETs each checker does. */
#define WRITER_DEPTH 16u
#define CHECK_DEPTH 32u
/* Request contexts per thread: at least the larger depth. */
#define OPS_MAX 64u
/* Key numbers a writer may use ("t<writer>:<n>", n below this). */
#define KEYS_PER_WRITER_MAX 32768u
/* Key numbers past the last one sent, probed after every restart: absent. */
#define PROBE_KEYS 64u
#define VALUE_BYTES_MAX 2000u
/* Test 1: rounds, and the acknowledged writes before each kill: about 70k
 * writes of 1 KB on average in all, so each shard's log spans more than one
 * 16 MiB segment. */
#define ROUNDS_DEFAULT 20u
#define ACKS_MIN 1000u
#define ACKS_MAX 6000u
/* Test 2: rounds (even ones snapshot while the writers run, odd ones kill
 * right after a snapshot starts), and how long a snapshot may take. */
#define SNAP_ROUNDS 8u
#define SNAP_WAIT_MS 30000
#define SNAP_POLL_MS 10
/* Test 2, spare segments: writes per run while the log rolls over (about 2
 * MB each), and runs at most. */
#define RECYCLE_ACKS 4000u
#define RECYCLE_RUNS_MAX 200u
/* Test 4. */
#define BATCH_ROUNDS 3u
#define BATCH_ACKS 2000u
/* Writer mix, in percent: new keys, overwrites, then deletes. */
#define MIX_NEW_PCT 65u
#define MIX_DEL_PCT 12u
/* Waits: start-up replays the whole log (slow under ASan); a round's acks. */
#define READY_WAIT_MS 60000
#define ACK_WAIT_MS 60000
/* Test 4: how often INFO is read while the logs finish their writes. */
#define LOG_POLL_MS 5
#define EXIT_WAIT_MS 30000
#define KILL_NOTICE_MS 5000
/* A write's budget: 1 + 2 + 4 + 8 + 16 s, so that a disk slowed by other
 * work is not taken for a hang (a hang still fails, after 31 s). */
#define CLIENT_TIMEOUT_MS 1000u
#define CLIENT_RETRIES 4u
/* Test 5: the tmpfs (four 16 MiB segments at the start — each shard's first
 * and the next one, prepared ahead —, then after the filler goes up to four
 * more: each shard's next, and the one it prepares once it has switched to
 * it; mode 0700, as a tmpfs's default 1777 is refused), the space the filler
 * leaves, the values that fill a segment quickly, how long writes may take to
 * resume (pomaid retries every PM_WAL_RETRY_MS = 1 s) and how often they are
 * tried meanwhile. */
#define FULL_TMPFS_OPTS "size=136m,mode=0700"
#define FULL_LEFT_BYTES (1u << 20)
#define FULL_VALUE_BYTES_MAX 6000u
#define FULL_RESUME_WAIT_MS 15000
#define FULL_RESUME_POLL_MS 20
#define FULL_ACKS 600u
/* Test 3. */
#define VEC_DIM 16u
#define VEC_N 500u
#define VEC_COLL_N 200u
#define VEC_DELETED 25u
#define VEC_QUERIES 5u
#define VEC_K 10u

static const char *pomaid_path;
static uint64_t suite_seed;
static unsigned rounds = ROUNDS_DEFAULT;
/* What a test that stopped at a fatal assertion leaves for main to clean. */
static pid_t live_pid = -1;
static char live_mount[PATH_MAX];

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

/* ---------------------------------------------------------------- directories */

static bool dir_make(char *out)
{
	snprintf(out, PATH_MAX, "/tmp/pomai-durability-XXXXXX");
	return mkdtemp(out) != NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static void dir_remove(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Files named <number><suffix> in data_dir/sub/shard-<i>: over all shards,
 * and (*least) the fewest any shard has. */
static unsigned files_in(const char *data_dir, const char *sub, const char *suffix,
			 unsigned *least)
{
	unsigned total = 0, min = UINT32_MAX;
	for (unsigned i = 0; i < SHARDS; i++) {
		char path[PATH_MAX + 32];
		unsigned n = 0;
		snprintf(path, sizeof(path), "%s/%s/shard-%u", data_dir, sub, i);
		DIR *d = opendir(path);
		for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
			const char *dot = strchr(e->d_name, '.');
			n += dot && !strcmp(dot, suffix);
		}
		if (d)
			closedir(d);
		total += n;
		min = n < min ? n : min;
	}
	if (least)
		*least = min;
	return total;
}

static unsigned segments_in(const char *data_dir)
{
	return files_in(data_dir, "wal", ".wal", NULL);
}

static unsigned files_min(const char *data_dir, const char *sub, const char *suffix)
{
	unsigned least;
	files_in(data_dir, sub, suffix, &least);
	return least;
}

/* ---------------------------------------------------------------- the daemon */

struct daemon {
	pid_t pid;
	uint16_t base;       /* UDP port of shard 0; TCP on base - 1 */
	const char *wal;     /* "sync" or "batch" */
	char dir[PATH_MAX];
	uint64_t recovered;  /* records its shards said they replayed at start */
	unsigned snap_tmp_at_kill; /* snapshots being written when it was last killed */
};

static void daemon_exec(const struct daemon *d, int out[2])
{
	char port[16], tport[16];
	snprintf(port, sizeof(port), "%u", d->base);
	snprintf(tport, sizeof(tport), "%u", d->base - 1u);
	dup2(out[1], 1);
	close(out[0]);
	close(out[1]);
	execl(pomaid_path, "pomaid", "--wal", d->wal, "--wal-batch-ms", "10", "--wal-segment-bytes",
	      "16M", "--shards", "2", "--data-dir", d->dir, "--arena-bytes", "64M", "--seeds", "65536",
	      "--tcp-port", tport, "--base-port", port, "--knn-timeout-ms", "2000", "--hugepages", "no",
	      (char *)NULL);
	_exit(127);
}

/* Read pomaid's stdout up to its ready line; d->recovered sums the shards'
 * "recovered N records" lines printed before it. */
static bool read_ready(struct daemon *d, int fd)
{
	char buf[8192];
	size_t n = 0;
	uint64_t deadline = now_ms() + READY_WAIT_MS;
	const char *ready = NULL;
	for (;;) {
		buf[n] = '\0';
		ready = strstr(buf, "pomaid: ready");
		int left = (int)(deadline - now_ms());
		if ((ready && strchr(ready, '\n')) || n == sizeof(buf) - 1 || left <= 0)
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, left) <= 0)
			break;
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	d->recovered = 0;
	for (const char *p = buf; (p = strstr(p, "recovered ")) != NULL; p++)
		d->recovered += strtoull(p + 10, NULL, 10);
	if (!(ready && strchr(ready, '\n')))
		printf("\n  pomaid gave no ready line; its output: %s\n", buf);
	return ready && strchr(ready, '\n');
}

/* Wait for pid to end, at most ms; true with *status once it has. */
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

/* Start pomaid on d's ports and directory; wait for its ready line. */
static bool daemon_start(struct daemon *d)
{
	int out[2];
	if (pipe(out) != 0)
		return false;
	pid_t pid = fork();
	if (pid == 0)
		daemon_exec(d, out);
	close(out[1]);
	bool ok = pid > 0 && read_ready(d, out[0]);
	close(out[0]);
	if (pid > 0 && !ok) {
		int st;
		kill(pid, SIGKILL);
		wait_exit(pid, EXIT_WAIT_MS, &st);
	}
	d->pid = ok ? pid : -1;
	live_pid = d->pid;
	return ok;
}

/* The first start: free ports picked at random (not from the test seed). */
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

/* SIGKILL: true if pomaid was alive until then and died of it. Waits for it
 * however long the kernel takes (e.g. I/O in flight): its ports and data_dir
 * lock are free once waitpid has it. */
static bool daemon_kill(struct daemon *d)
{
	int st = 0;
	pid_t r = waitpid(d->pid, &st, WNOHANG);
	if (r == 0) {
		uint64_t t0 = now_ms();
		kill(d->pid, SIGKILL);
		if (!wait_exit(d->pid, KILL_NOTICE_MS, &st)) {
			printf("\n  pomaid %d still there %d ms after SIGKILL; waiting", (int)d->pid,
			       KILL_NOTICE_MS);
			fflush(stdout);
			waitpid(d->pid, &st, 0);
			printf("\n  ... it died after %" PRIu64 " ms", now_ms() - t0);
		}
	} else {
		printf("\n  pomaid died before it was killed: %s %d\n",
		       WIFSIGNALED(st) ? "signal" : "exit code",
		       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	}
	d->pid = live_pid = -1;
	return r == 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

/* SIGTERM: true if pomaid drained its log and exited 0 in time. */
static bool daemon_stop(struct daemon *d)
{
	int st = -1;
	if (d->pid <= 0)
		return false;
	kill(d->pid, SIGTERM);
	bool ended = wait_exit(d->pid, EXIT_WAIT_MS, &st);
	if (!ended) {
		printf("\n  pomaid did not exit within %d ms of SIGTERM\n", EXIT_WAIT_MS);
		kill(d->pid, SIGKILL);
		waitpid(d->pid, &st, 0);
	}
	d->pid = live_pid = -1;
	return ended && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* What a test stopped by a fatal assertion left: its daemon, its mount. Each
 * test starts with this, and main ends with it. */
static void cleanup_leftovers(void)
{
	int st;
	if (live_pid > 0) {
		kill(live_pid, SIGKILL);
		waitpid(live_pid, &st, 0);
		live_pid = -1;
	}
	if (live_mount[0]) {
		umount2(live_mount, MNT_DETACH);
		rmdir(live_mount);
		live_mount[0] = '\0';
	}
}

/* ---------------------------------------------------------------- clients */

static struct pm_client *client_open(const struct daemon *d)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.base_port = d->base;
	cfg.shards = SHARDS;
	cfg.timeout_ms = CLIENT_TIMEOUT_MS;
	cfg.retries = CLIENT_RETRIES;
	cfg.max_in_flight = OPS_MAX;
	struct pm_client *c = NULL;
	return pm_client_open(&cfg, &c) == PM_CLIENT_OK ? c : NULL;
}

/* A numeric field of INFO's Total section (UINT64_MAX: INFO failed). */
static uint64_t info_field(const struct daemon *d, const char *field)
{
	static char text[PM_CLIENT_INFO_REPLY_BYTES_MAX + 1]; /* every shard's text */
	struct pm_client *c = client_open(d);
	size_t n = 0;
	uint64_t v = UINT64_MAX;
	if (c && pm_client_info(c, NULL, text, sizeof(text) - 1, &n) == PM_CLIENT_OK) {
		text[n] = '\0';
		char pat[64];
		snprintf(pat, sizeof(pat), "\n%s:", field);
		const char *p = strstr(text, pat);
		v = p ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
	}
	pm_client_close(c);
	return v;
}

/* SNAPSHOT to every shard; true once each has started one. */
static bool request_snapshot(const struct daemon *d)
{
	struct pm_client *c = client_open(d);
	bool ok = c && pm_client_snapshot(c) == PM_CLIENT_OK;
	pm_client_close(c);
	return ok;
}

/* Snapshot files of every shard: published, or (tmp) being written. */
static unsigned snapshots_in(const char *data_dir, bool tmp)
{
	return files_in(data_dir, "snap", tmp ? ".snap.tmp" : ".snap", NULL);
}

/* Poll INFO until `field` (the shards' total) reaches want; false after SNAP_WAIT_MS. */
static bool info_reaches(const struct daemon *d, const char *field, uint64_t want)
{
	for (uint64_t t0 = now_ms(); now_ms() - t0 < SNAP_WAIT_MS; pause_ms(SNAP_POLL_MS)) {
		uint64_t v = info_field(d, field);
		if (v != UINT64_MAX && v >= want)
			return true;
	}
	return false;
}

/* ---------------------------------------------------------------- keys and values */

struct kstate {
	uint32_t ver;          /* writes sent so far; the i-th has version i */
	uint32_t known;        /* version of the state known to be there (0: none) */
	uint32_t maybe;        /* a version sent but not acknowledged (0: none) */
	bool known_del, maybe_del, inflight;
};

static bool absent(uint32_t ver, bool del)
{
	return ver == 0 || del;
}

static int key_name(uint32_t writer, uint32_t n, char *out)
{
	return snprintf(out, 32, "t%u:%u", writer, n);
}

/* The value of version ver of key n of a writer: length and bytes from the seed. */
static uint32_t value_of(uint32_t writer, uint32_t n, uint32_t ver, uint32_t max, uint8_t *out)
{
	uint64_t s = suite_seed ^ writer;
	s = pm_test_rand(&s) ^ n;
	s = pm_test_rand(&s) ^ ver;
	uint32_t len = 1 + (uint32_t)(pm_test_rand(&s) % max);
	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t x = pm_test_rand(&s);
		memcpy(out + i, &x, len - i < 8 ? len - i : 8);
	}
	return len;
}

/* ---------------------------------------------------------------- writers */

struct writer;

struct op {
	struct writer *w;
	uint32_t n, ver;
	bool del;
};

struct writer {
	uint32_t id;
	uint32_t value_max;
	bool full_expected;     /* E_DISK_FULL is the expected end of this run */
	uint64_t rng;
	struct kstate *keys;    /* KEYS_PER_WRITER_MAX */
	uint32_t next_new;      /* key numbers below it have been used */
	struct pm_client *c;
	struct op ops[OPS_MAX];
	struct op *free_ops[OPS_MAX];
	uint32_t nfree;
	bool stopped;           /* a write failed: nothing more is sent this run */
	/* this run */
	uint64_t acked, sent, failed, full, checked, mismatches;
	enum pm_client_status first_err, last_err;
	uint32_t first_err_key, full_key;
};

/* One run of the writers, shared with the main thread. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_uint_fast64_t acked, sent, done;
	uint64_t target;
	atomic_bool stop;    /* finish what is in flight, then end */
	atomic_bool killed;  /* pomaid is dead: drop what is in flight and end */
	unsigned live;
	const char *test;    /* for messages: which test, which round */
	unsigned round;
	bool snap_at_kill;   /* request a snapshot just before the SIGKILL */
} ctl = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void ctl_wake(void)
{
	pthread_mutex_lock(&ctl.mu);
	pthread_cond_broadcast(&ctl.cv);
	pthread_mutex_unlock(&ctl.mu);
}

static void writer_init(struct writer *w, uint32_t id, uint32_t value_max)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->value_max = value_max;
	w->keys = calloc(KEYS_PER_WRITER_MAX, sizeof(*w->keys));
	CU_ASSERT_FATAL(w->keys != NULL);
}

/* A new run: counters cleared, ops free, a client of its own. */
static bool writer_begin(struct writer *w, const struct daemon *d, uint64_t run_seed)
{
	w->c = client_open(d);
	w->rng = run_seed ^ ((uint64_t)w->id << 32);
	w->stopped = false;
	w->acked = w->sent = w->failed = w->full = w->checked = w->mismatches = 0;
	w->first_err = PM_CLIENT_OK;
	w->nfree = OPS_MAX;
	for (uint32_t i = 0; i < OPS_MAX; i++)
		w->free_ops[i] = &w->ops[OPS_MAX - 1 - i];
	return w->c != NULL;
}

static void writer_end(struct writer *w)
{
	pm_client_close(w->c); /* requests in flight are dropped: they stay "maybe" */
	w->c = NULL;
}

static void writer_fail(struct writer *w, enum pm_client_status st, uint32_t n)
{
	w->last_err = st;
	if (st == PM_CLIENT_E_DISK_FULL && w->full_expected) {
		if (!w->full++)
			w->full_key = n;
	} else if (!w->failed++) {
		w->first_err = st;
		w->first_err_key = n;
	}
	w->stopped = true;
}

static void on_write(void *arg, const struct pm_client_result *res)
{
	struct op *o = arg;
	struct writer *w = o->w;
	struct kstate *k = &w->keys[o->n];
	k->inflight = false;
	if (res->status == PM_CLIENT_OK) {
		k->known = o->ver;
		k->known_del = o->del;
		k->maybe = 0;
		w->acked++;
		if (atomic_fetch_add(&ctl.acked, 1) + 1 == ctl.target)
			ctl_wake();
	} else if (!atomic_load(&ctl.killed)) {
		writer_fail(w, res->status, o->n);
	}
	atomic_fetch_add(&ctl.done, 1);
	w->free_ops[w->nfree++] = o;
}

/* Send the next version of key n: a SET, or a DEL. */
static void write_key(struct writer *w, uint32_t n, bool del)
{
	static _Thread_local uint8_t val[PM_CLIENT_VALUE_BYTES_MAX];
	char key[32];
	struct kstate *k = &w->keys[n];
	struct op *o = w->free_ops[--w->nfree];
	k->ver++;
	*o = (struct op){ .w = w, .n = n, .ver = k->ver, .del = del };
	struct pm_client_req r = { .op = del ? PM_CLIENT_DEL : PM_CLIENT_SET, .key = key,
				   .klen = (uint32_t)key_name(w->id, n, key), .cb = on_write, .arg = o };
	if (!del) {
		r.value = val;
		r.vlen = value_of(w->id, n, k->ver, w->value_max, val);
	}
	k->maybe = k->ver;
	k->maybe_del = del;
	k->inflight = true;
	enum pm_client_status st = pm_client_submit(w->c, &r, NULL);
	if (st != PM_CLIENT_OK) { /* refused before sending: the key keeps a "maybe" all the same */
		k->inflight = false;
		w->free_ops[w->nfree++] = o;
		writer_fail(w, st, n);
		return;
	}
	w->sent++;
	atomic_fetch_add(&ctl.sent, 1);
}

/* The next write of the mix: a new key, or an overwrite or DEL of one not in flight. */
static void write_next(struct writer *w)
{
	uint64_t r = pm_test_rand(&w->rng);
	uint32_t pct = (uint32_t)(r % 100);
	bool room = w->next_new < KEYS_PER_WRITER_MAX - PROBE_KEYS;
	if (w->next_new > 0 && (pct >= MIX_NEW_PCT || !room)) {
		for (int tries = 0; tries < 4; tries++) {
			uint32_t n = (uint32_t)(pm_test_rand(&w->rng) % w->next_new);
			if (!w->keys[n].inflight && !w->keys[n].maybe) {
				write_key(w, n, pct >= 100 - MIX_DEL_PCT);
				return;
			}
		}
	}
	if (room)
		write_key(w, w->next_new++, false);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	while (!atomic_load(&ctl.killed)) {
		bool stop = w->stopped || atomic_load(&ctl.stop);
		for (uint32_t i = 0; i < WRITER_DEPTH && !stop &&
				     pm_client_in_flight(w->c) < WRITER_DEPTH && w->nfree > 0; i++) {
			write_next(w);
			stop = w->stopped;
		}
		if (stop && pm_client_in_flight(w->c) == 0)
			break;
		pm_client_poll(w->c, 2);
	}
	pthread_mutex_lock(&ctl.mu);
	ctl.live--;
	pthread_cond_broadcast(&ctl.cv);
	pthread_mutex_unlock(&ctl.mu);
	return NULL;
}

/* Wait (bounded) until the run's target is acknowledged or every writer has
 * ended; with quiet, until every writer has ended. */
static void ctl_wait(bool quiet)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += ACK_WAIT_MS / 1000;
	pthread_mutex_lock(&ctl.mu);
	while (ctl.live > 0 && (quiet || atomic_load(&ctl.acked) < ctl.target))
		if (pthread_cond_timedwait(&ctl.cv, &ctl.mu, &dl) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&ctl.mu);
}

/* ---------------------------------------------------------------- a run */

enum run_end {
	RUN_KILL,        /* SIGKILL as the target is reached, writes in flight */
	RUN_QUIET_KILL,  /* writers stop at the target and get their replies; then SIGKILL */
	RUN_QUIET,       /* writers stop at the target and get their replies; no kill */
	RUN_UNTIL_FAIL,  /* writers go on until each has had a failure; no kill */
};

struct run_result {
	uint64_t acked, sent, in_flight_at_kill, failed, full;
	bool killed_ok, target_reached;
	enum pm_client_status first_err;
	uint32_t first_err_writer, first_err_key;
};

/* Every shard's log has written each record it numbered (INFO per shard:
 * wal_written_lsn + 1 == wal_next_lsn), polled until ACK_WAIT_MS: in batch
 * mode that is when a crash of pomaid can no longer lose them (test 4;
 * docs/durability.md). The Total section has neither field. */
static bool log_written(const struct daemon *d)
{
	static char text[PM_CLIENT_INFO_REPLY_BYTES_MAX + 1];
	uint64_t deadline = now_ms() + ACK_WAIT_MS;
	struct pm_client *c = client_open(d);
	bool done = false;
	while (c && !done && now_ms() < deadline) {
		size_t n = 0;
		if (pm_client_info(c, "dataplane", text, sizeof(text) - 1, &n) != PM_CLIENT_OK)
			break;
		text[n] = '\0';
		unsigned shards = 0, behind = 0;
		for (const char *p = strstr(text, "\nwal_next_lsn:"); p;
		     p = strstr(p + 1, "\nwal_next_lsn:")) {
			const char *q = strstr(p, "\nwal_written_lsn:");
			if (!q)
				break;
			uint64_t next = strtoull(p + strlen("\nwal_next_lsn:"), NULL, 10);
			uint64_t written = strtoull(q + strlen("\nwal_written_lsn:"), NULL, 10);
			shards++;
			behind += written + 1 < next;
		}
		done = shards == SHARDS && behind == 0;
		if (!done)
			pause_ms(LOG_POLL_MS);
	}
	pm_client_close(c);
	return done;
}

/* One round trip to every shard after the writers are quiet: each shard has
 * run a worker turn past the one of the last write (see test 4). */
static bool touch_shards(const struct daemon *d)
{
	struct pm_client *c = client_open(d);
	bool ok = c != NULL;
	char key[32], buf[8];
	size_t n;
	for (uint32_t shard = 0, i = 0; ok && shard < SHARDS && i < 1000; i++) {
		int kl = snprintf(key, sizeof(key), "touch-%u", i);
		if (pm_client_shard_of(c, key, (size_t)kl) != shard)
			continue;
		ok = pm_client_get(c, key, (size_t)kl, buf, sizeof(buf), &n) == PM_CLIENT_NOT_FOUND;
		shard++;
	}
	pm_client_close(c);
	return ok;
}

static void run_collect(struct writer *ws, uint32_t nw, struct run_result *out)
{
	out->acked = atomic_load(&ctl.acked);
	out->sent = atomic_load(&ctl.sent);
	for (uint32_t i = 0; i < nw; i++) {
		out->full += ws[i].full;
		if (ws[i].failed && !out->failed) {
			out->first_err = ws[i].first_err;
			out->first_err_writer = ws[i].id;
			out->first_err_key = ws[i].first_err_key;
		}
		out->failed += ws[i].failed;
	}
}

/* Run nw writers against d until `end`; false if they could not start. */
static bool run_writers(struct writer *ws, uint32_t nw, struct daemon *d, uint64_t target,
			enum run_end end, uint64_t run_seed, struct run_result *out)
{
	pthread_t t[WRITERS];
	memset(out, 0, sizeof(*out));
	atomic_store(&ctl.acked, 0);
	atomic_store(&ctl.sent, 0);
	atomic_store(&ctl.done, 0);
	atomic_store(&ctl.stop, false);
	atomic_store(&ctl.killed, false);
	ctl.target = target;
	for (uint32_t i = 0; i < nw; i++)
		if (!writer_begin(&ws[i], d, run_seed)) {
			while (i-- > 0)
				writer_end(&ws[i]);
			return false;
		}
	ctl.live = nw;
	for (uint32_t i = 0; i < nw; i++)
		pthread_create(&t[i], NULL, writer_main, &ws[i]);
	ctl_wait(end == RUN_UNTIL_FAIL);
	out->target_reached = atomic_load(&ctl.acked) >= target;
	if (end == RUN_QUIET_KILL || end == RUN_QUIET) {
		atomic_store(&ctl.stop, true);
		ctl_wait(true);
		out->target_reached &= touch_shards(d);
		CU_ASSERT(end != RUN_QUIET_KILL || log_written(d));
	}
	if (end == RUN_KILL || end == RUN_QUIET_KILL) {
		if (ctl.snap_at_kill)
			request_snapshot(d);
		out->in_flight_at_kill = atomic_load(&ctl.sent) - atomic_load(&ctl.done);
		out->killed_ok = daemon_kill(d);
	}
	atomic_store(&ctl.killed, true);
	for (uint32_t i = 0; i < nw; i++) {
		pthread_join(t[i], NULL);
		writer_end(&ws[i]);
	}
	run_collect(ws, nw, out);
	return true;
}

/* ---------------------------------------------------------------- checking */

static bool value_is(const struct writer *w, uint32_t n, uint32_t ver,
		     const struct pm_client_result *res)
{
	static _Thread_local uint8_t want[PM_CLIENT_VALUE_BYTES_MAX];
	uint32_t len = value_of(w->id, n, ver, w->value_max, want);
	return res->vlen == len && memcmp(res->value, want, len) == 0;
}

static void describe_state(char *out, size_t cap, uint32_t ver, bool del)
{
	if (ver == 0)
		snprintf(out, cap, "absent (never acknowledged)");
	else
		snprintf(out, cap, "%s of version %u", del ? "deleted (DEL)" : "the value", ver);
}

/* Print what key n holds against what it may hold (the first few per writer). */
static void mismatch(struct writer *w, uint32_t n, const struct pm_client_result *res)
{
	const struct kstate *k = &w->keys[n];
	char want[64], alt[80] = "", got[96];
	if (w->mismatches++ >= 5)
		return;
	describe_state(want, sizeof(want), k->known, k->known_del);
	if (k->maybe)
		snprintf(alt, sizeof(alt), " or (unacknowledged) %s version %u",
			 k->maybe_del ? "deleted by" : "the value of", k->maybe);
	if (res->status == PM_CLIENT_NOT_FOUND) {
		snprintf(got, sizeof(got), "absent");
	} else if (res->status != PM_CLIENT_OK) {
		snprintf(got, sizeof(got), "status %s", pm_client_status_name(res->status));
	} else {
		uint32_t match = 0;
		for (uint32_t v = 1; v <= k->ver && !match; v++)
			match = value_is(w, n, v, res) ? v : 0;
		snprintf(got, sizeof(got), "%u bytes, %s %u", res->vlen,
			 match ? "the value of version" : "no value this key was ever sent; versions sent:",
			 match ? match : k->ver);
	}
	printf("\n  LOST/WRONG: seed %" PRIu64 " %s round %u key t%u:%u (%s): expected %s%s; got %s\n",
	       suite_seed, ctl.test, ctl.round, w->id, n, k->ver ? "written" : "never sent", want, alt,
	       got);
}

/* Whether the state a check finds becomes the known one: after a restart
 * (what pomaid recovered is in its log), not while it runs (a read may see a
 * write whose log record is still waiting, e.g. for disk space). */
static bool check_settles;

/* A GET's answer against the states the key may be in. */
static void on_get(void *arg, const struct pm_client_result *res)
{
	struct op *o = arg;
	struct writer *w = o->w;
	struct kstate *k = &w->keys[o->n];
	bool found = res->status == PM_CLIENT_OK;
	bool is_known = found ? !absent(k->known, k->known_del) && value_is(w, o->n, k->known, res)
			      : absent(k->known, k->known_del);
	bool is_maybe = k->maybe && k->maybe_del == !found &&
			(!found || value_is(w, o->n, k->maybe, res));
	w->checked++;
	if ((!found && res->status != PM_CLIENT_NOT_FOUND) || (!is_known && !is_maybe)) {
		mismatch(w, o->n, res);
	} else if (check_settles) {
		if (!is_known) {
			k->known = k->maybe;
			k->known_del = k->maybe_del;
		}
		k->maybe = 0;
	}
	w->free_ops[w->nfree++] = o;
}

/* GET every key number the writer used, and PROBE_KEYS past them. */
static void *checker_main(void *arg)
{
	struct writer *w = arg;
	char key[32];
	uint32_t end = w->next_new + PROBE_KEYS;
	for (uint32_t n = 0; n < end;) {
		while (n < end && pm_client_in_flight(w->c) < CHECK_DEPTH && w->nfree > 0) {
			struct op *o = w->free_ops[--w->nfree];
			*o = (struct op){ .w = w, .n = n };
			struct pm_client_req r = { .op = PM_CLIENT_GET, .key = key, .cb = on_get, .arg = o,
						   .klen = (uint32_t)key_name(w->id, n++, key) };
			if (pm_client_submit(w->c, &r, NULL) != PM_CLIENT_OK) {
				w->free_ops[w->nfree++] = o;
				if (!w->mismatches++)
					printf("\n  a GET of writer %u could not be submitted", w->id);
			}
		}
		pm_client_poll(w->c, 5);
	}
	pm_client_drain(w->c);
	return NULL;
}

/* Check every writer's keys in parallel; the keys that disagree. */
static uint64_t check_all(struct writer *ws, uint32_t nw, const struct daemon *d, bool settle,
			  uint64_t *keys)
{
	pthread_t t[WRITERS];
	uint64_t bad = 0;
	*keys = 0;
	check_settles = settle;
	for (uint32_t i = 0; i < nw; i++)
		CU_ASSERT_FATAL(writer_begin(&ws[i], d, 0));
	for (uint32_t i = 0; i < nw; i++)
		pthread_create(&t[i], NULL, checker_main, &ws[i]);
	for (uint32_t i = 0; i < nw; i++) {
		pthread_join(t[i], NULL);
		writer_end(&ws[i]);
		bad += ws[i].mismatches;
		*keys += ws[i].checked;
	}
	return bad;
}

/* ---------------------------------------------------------------- crash rounds */

static void print_round(const char *tag, unsigned r, uint64_t target, const struct run_result *rr,
			const struct daemon *d, uint64_t info_rec, uint64_t keys, uint64_t ms)
{
	printf("\n  %s round %2u: target %4" PRIu64 " acked %4" PRIu64 " sent %4" PRIu64
	       " in flight at kill %3" PRIu64 "; recovered %7" PRIu64 " records (INFO %" PRIu64
	       ", %u segments); %5" PRIu64 " keys checked; %" PRIu64 " ms",
	       tag, r, target, rr->acked, rr->sent, rr->in_flight_at_kill, d->recovered, info_rec,
	       segments_in(d->dir), keys, ms);
	if (rr->failed)
		printf("\n  first failure while pomaid ran: writer %u key %u: %s", rr->first_err_writer,
		       rr->first_err_key, pm_client_status_name(rr->first_err));
	fflush(stdout);
}

/* Write, kill, restart, check. The daemon runs on entry and on a true return. */
static bool crash_round(const char *tag, struct writer *ws, struct daemon *d, unsigned r,
			uint64_t target, enum run_end end, uint64_t *in_flight_kills)
{
	uint64_t t0 = now_ms(), keys = 0;
	struct run_result rr;
	ctl.test = tag;
	ctl.round = r;
	CU_ASSERT_FATAL(run_writers(ws, WRITERS, d, target, end, suite_seed + 1000003u * r, &rr));
	d->snap_tmp_at_kill = snapshots_in(d->dir, true);
	bool restarted = daemon_start(d);
	uint64_t bad = restarted ? check_all(ws, WRITERS, d, true, &keys) : 0;
	uint64_t info_rec = restarted ? info_field(d, "wal_recovered_records") : 0;
	print_round(tag, r, target, &rr, d, info_rec, keys, now_ms() - t0);
	*in_flight_kills += rr.in_flight_at_kill > 0;
	CU_ASSERT(rr.target_reached);
	CU_ASSERT(rr.killed_ok);
	CU_ASSERT_EQUAL(rr.failed, 0);
	CU_ASSERT(restarted);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(info_rec > 0 && info_rec != UINT64_MAX);
	return rr.target_reached && rr.killed_ok && rr.failed == 0 && restarted && bad == 0 &&
	       info_rec > 0 && info_rec != UINT64_MAX;
}

static void writers_free(struct writer *ws)
{
	for (uint32_t i = 0; i < WRITERS; i++)
		free(ws[i].keys);
}

/* After the last round: a clean shutdown and restart recover the same state. */
static void clean_restart_check(struct writer *ws, struct daemon *d)
{
	uint64_t keys;
	CU_ASSERT(daemon_stop(d));
	CU_ASSERT_FATAL(daemon_start(d));
	uint64_t bad = check_all(ws, WRITERS, d, true, &keys);
	printf("\n  after SIGTERM and a restart: %" PRIu64 " keys checked, %" PRIu64 " wrong", keys,
	       bad);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(daemon_stop(d));
}

/* A fresh data directory and daemon for a test with writers. */
static void writers_setup(struct writer *ws, struct daemon *d)
{
	cleanup_leftovers();
	for (uint32_t i = 0; i < WRITERS; i++)
		writer_init(&ws[i], i, VALUE_BYTES_MAX);
	CU_ASSERT_FATAL(dir_make(d->dir));
	CU_ASSERT_FATAL(daemon_start_fresh(d));
}

/* After the rounds: if they went well, a clean restart recovers the same
 * state; the directory goes unless something failed. */
static void writers_finish(struct writer *ws, struct daemon *d, bool ok)
{
	if (ok)
		clean_restart_check(ws, d);
	else
		daemon_stop(d);
	if (ok && !CU_get_number_of_failures())
		dir_remove(d->dir);
	else
		printf("\n  data dir kept for inspection: %s", d->dir);
	writers_free(ws);
}

/* Test 1. */
static void test_sync_crash_loop(void)
{
	static struct writer ws[WRITERS];
	struct daemon d = { .wal = "sync" };
	uint64_t rng = suite_seed ^ 0x51c0ffeeull, in_flight_kills = 0, t0 = now_ms();
	writers_setup(ws, &d);
	printf("\n  data dir %s, %u rounds", d.dir, rounds);
	bool ok = true;
	unsigned r;
	for (r = 0; r < rounds && ok; r++) {
		uint64_t target = ACKS_MIN + pm_test_rand(&rng) % (ACKS_MAX - ACKS_MIN + 1);
		ok = crash_round("sync", ws, &d, r, target, RUN_KILL, &in_flight_kills);
	}
	printf("\n  %u rounds in %" PRIu64 " ms; %" PRIu64 " kills landed with writes in flight", r,
	       now_ms() - t0, in_flight_kills);
	CU_ASSERT(in_flight_kills * 2 >= r); /* the kills did catch writes in flight */
	if (rounds >= ROUNDS_DEFAULT) /* the log rolled over to new segments */
		CU_ASSERT(segments_in(d.dir) >= 2 * SHARDS);
	writers_finish(ws, &d, ok);
}

/* Write (quietly) until every shard's log has rolled over to n segments, at
 * most `runs` runs of RECYCLE_ACKS writes; true once it has. */
static bool roll_over(struct writer *ws, struct daemon *d, unsigned n, const char *field,
		      uint64_t want)
{
	for (unsigned run = 0; run < RECYCLE_RUNS_MAX; run++) {
		if (field ? info_field(d, field) >= want : files_min(d->dir, "wal", ".wal") >= n)
			return true;
		struct run_result rr;
		if (!run_writers(ws, WRITERS, d, RECYCLE_ACKS, RUN_QUIET, suite_seed + 31u * run, &rr) ||
		    rr.failed)
			return false;
	}
	return false;
}

/* Segments a snapshot covers become spares (at most PM_WAL_SPARE_SEGMENTS
 * per shard counting the next segment prepared ahead, the rest deleted), the
 * next segments are made from them, and a kill after that still loses nothing
 * acknowledged. */
static bool segments_recycle(struct writer *ws, struct daemon *d)
{
	uint64_t unused = 0, done = info_field(d, "snapshots_completed");
	CU_ASSERT_FATAL(roll_over(ws, d, 3, NULL, 0));
	CU_ASSERT(request_snapshot(d));
	CU_ASSERT_FATAL(info_reaches(d, "snapshots_completed", done + SHARDS));
	/* a segment that is not kept is deleted in the background (io_uring's
	 * workers), and counted once it is gone: polled, with a deadline */
	uint64_t retired = 0, deleted = 0;
	for (uint64_t t0 = now_ms(); now_ms() - t0 < SNAP_WAIT_MS; pause_ms(SNAP_POLL_MS)) {
		retired = info_field(d, "wal_segments_retired");
		deleted = info_field(d, "wal_segments_deleted");
		if (retired != UINT64_MAX && deleted != UINT64_MAX && retired + deleted >= 2 * SHARDS)
			break;
	}
	unsigned spares = files_min(d->dir, "wal", ".spare");
	printf("\n  after the snapshot: %" PRIu64 " segments kept as spares, %" PRIu64 " deleted;"
	       " %u spares per shard at least", retired, deleted, spares);
	CU_ASSERT(retired >= SHARDS && retired <= 2 * SHARDS);
	CU_ASSERT(retired + deleted >= 2 * SHARDS);
	CU_ASSERT(spares >= 1 && spares <= 2);
	CU_ASSERT_FATAL(roll_over(ws, d, 0, "wal_segments_recycled", SHARDS));
	printf("; then %" PRIu64 " new segments made from spares",
	       info_field(d, "wal_segments_recycled"));
	return crash_round("recycled", ws, d, 0, ACKS_MIN, RUN_KILL, &unused);
}

/* Test 2. Snapshots under the same load: in even rounds one starts as the
 * writers start (a fuzzy snapshot of a shard that keeps changing) and is
 * published before the kill, so the restart loads it and replays the log
 * after it; in odd rounds one is requested right before the SIGKILL, so the
 * kill lands while it is being written (its temporary file is there after
 * the kill) and the restart ignores it. Every acknowledged write survives. */
static void test_snapshot_crash_loop(void)
{
	static struct writer ws[WRITERS];
	struct daemon d = { .wal = "sync" };
	uint64_t rng = suite_seed ^ 0x5a4907ull, unused = 0;
	unsigned tmp_at_kill = 0, loaded = 0, published = 0;
	writers_setup(ws, &d);
	bool ok = true;
	for (unsigned r = 0; r < SNAP_ROUNDS && ok; r++) {
		uint64_t target = ACKS_MIN + pm_test_rand(&rng) % (ACKS_MAX - ACKS_MIN + 1);
		uint64_t done = info_field(&d, "snapshots_completed");
		ctl.snap_at_kill = r % 2 == 1;
		if (r % 2 == 0)
			CU_ASSERT(request_snapshot(&d));
		if (r % 2 == 0) { /* the writers run while it is written; it must complete */
			struct run_result rr;
			ctl.test = "snapshot";
			ctl.round = r;
			CU_ASSERT_FATAL(run_writers(ws, WRITERS, &d, target, RUN_QUIET, suite_seed + 7u * r, &rr));
			CU_ASSERT_EQUAL(rr.failed, 0);
			CU_ASSERT(info_reaches(&d, "snapshots_completed", done + SHARDS));
			published += snapshots_in(d.dir, false) == SHARDS;
		}
		/* the kill, with writes in flight (and in odd rounds a snapshot) */
		ok = crash_round("snapshot", ws, &d, r, target, RUN_KILL, &unused);
		loaded += info_field(&d, "recovery_snapshot_lsn") > 0;
		tmp_at_kill += d.snap_tmp_at_kill > 0;
	}
	ctl.snap_at_kill = false;
	if (ok)
		ok = segments_recycle(ws, &d);
	printf("\n  %u rounds published snapshots before the kill, %u kills caught one being"
	       " written, %u restarts loaded one", published, tmp_at_kill, loaded);
	CU_ASSERT(published >= SNAP_ROUNDS / 2);
	CU_ASSERT(tmp_at_kill >= 1);
	CU_ASSERT(loaded >= SNAP_ROUNDS / 2);
	writers_finish(ws, &d, ok);
}

/* Test 4. In batch mode a reply leaves before its write reaches the log;
 * wal_io.h promises that a crash of pomaid alone — SIGKILL, not a crash of the
 * machine — loses nothing older than one worker turn, because what the worker
 * wrote is in the kernel's page cache, which outlives the process. (The
 * wal_batch_ms window is what a machine crash can lose: this test cannot
 * simulate one.) So the kill comes after the writers have their replies,
 * every shard has answered one request more, and every shard's INFO says its
 * log has written all it numbered: a batch waits while the one before it is
 * in flight, and a write still queued in io_uring at the kill is cancelled
 * (a CI run under load lost the last turns' records when the kill came one
 * turn after the last reply). */
static void test_batch_mode(void)
{
	static struct writer ws[WRITERS];
	struct daemon d = { .wal = "batch" };
	uint64_t unused = 0;
	writers_setup(ws, &d);
	bool ok = true;
	for (unsigned r = 0; r < BATCH_ROUNDS && ok; r++)
		ok = crash_round("batch", ws, &d, r, BATCH_ACKS, RUN_QUIET_KILL, &unused);
	writers_finish(ws, &d, ok);
}

/* ---------------------------------------------------------------- vectors */

struct knn_snap {
	uint32_t count;
	uint32_t klen[VEC_K];
	uint8_t key[VEC_K][32];
	float dist[VEC_K];
};

static float rand_unit(uint64_t *rng)
{
	return (float)(pm_test_rand(rng) >> 40) / (float)(1u << 24);
}

static void knn_take(struct pm_client *c, const float *q, const char *coll, struct knn_snap *s)
{
	struct pm_client_hit hits[VEC_K];
	uint8_t keys[VEC_K * 32];
	struct pm_client_knn_result res = { .hits = hits, .hits_cap = VEC_K, .keys = keys,
					    .keys_cap = sizeof(keys) };
	/* the HNSW collection is asked through its graph: the restored graph must
	 * answer as the one before the kill did */
	struct pm_client_knn_opts o = { .k = VEC_K, .exact = coll == NULL, .collection = coll };
	memset(s, 0, sizeof(*s));
	CU_ASSERT_EQUAL_FATAL(pm_client_knn(c, q, VEC_DIM, &o, &res), PM_CLIENT_OK);
	s->count = res.count;
	for (uint32_t i = 0; i < res.count && i < VEC_K; i++) {
		s->klen[i] = hits[i].klen < 32 ? hits[i].klen : 32;
		memcpy(s->key[i], hits[i].key, s->klen[i]);
		s->dist[i] = hits[i].dist;
	}
}

static void vectors_load(struct pm_client *c, uint64_t *rng)
{
	float v[VEC_DIM];
	char key[32];
	for (uint32_t i = 0; i < VEC_N + VEC_COLL_N; i++) {
		for (uint32_t j = 0; j < VEC_DIM; j++)
			v[j] = rand_unit(rng);
		bool named = i >= VEC_N;
		int kl = snprintf(key, sizeof(key), "%s%u", named ? "c" : "v", i);
		CU_ASSERT_EQUAL_FATAL(pm_client_vadd(c, key, (size_t)kl, v, VEC_DIM,
						     named ? "durable" : NULL, 0), PM_CLIENT_OK);
	}
	for (uint32_t i = 0; i < VEC_DELETED; i++) { /* deletes must survive too */
		bool removed = false;
		int kl = snprintf(key, sizeof(key), "v%u", i * 7);
		CU_ASSERT_EQUAL(pm_client_vdel(c, key, (size_t)kl, &removed), PM_CLIENT_OK);
		CU_ASSERT(removed);
	}
}

static void knn_all(struct pm_client *c, const float (*q)[VEC_DIM], struct knn_snap (*out)[2])
{
	for (uint32_t i = 0; i < VEC_QUERIES; i++) {
		knn_take(c, q[i], NULL, &out[i][0]);
		knn_take(c, q[i], "durable", &out[i][1]);
	}
}

/* Flip one byte in the middle of shard 0's snapshot (twice: back as it was). */
static bool snapshot_flip(const char *data_dir)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/snap/shard-0", data_dir);
	DIR *d = opendir(path);
	struct dirent *e = NULL;
	while (d && (e = readdir(d)) != NULL && !strstr(e->d_name, ".snap"))
		;
	bool ok = false;
	if (e) {
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", e->d_name);
		int fd = open(path, O_RDWR);
		struct stat sb;
		uint8_t b;
		ok = fd >= 0 && fstat(fd, &sb) == 0 && pread(fd, &b, 1, sb.st_size / 2) == 1;
		b ^= 0x10;
		ok = ok && pwrite(fd, &b, 1, sb.st_size / 2) == 1;
		if (fd >= 0)
			close(fd);
	}
	if (d)
		closedir(d);
	return ok;
}

/* Test 3. */
static void test_vectors_survive(void)
{
	struct daemon d = { .wal = "sync" };
	static float q[VEC_QUERIES][VEC_DIM];
	static struct knn_snap before[VEC_QUERIES][2], after[VEC_QUERIES][2];
	uint64_t rng = suite_seed ^ 0x7ec70ull;
	cleanup_leftovers();
	CU_ASSERT_FATAL(dir_make(d.dir));
	CU_ASSERT_FATAL(daemon_start_fresh(&d));
	struct pm_client *c = client_open(&d);
	CU_ASSERT_FATAL(c != NULL);
	struct pm_client_coll_params p = { .dim = VEC_DIM, .metric = PM_CLIENT_L2,
					   .index = PM_CLIENT_HNSW };
	CU_ASSERT_EQUAL_FATAL(pm_client_collection_create(c, "durable", &p), PM_CLIENT_OK);
	vectors_load(c, &rng);
	for (uint32_t i = 0; i < VEC_QUERIES; i++)
		for (uint32_t j = 0; j < VEC_DIM; j++)
			q[i][j] = rand_unit(&rng);
	knn_all(c, (const float(*)[VEC_DIM])q, before);
	/* a snapshot holds all of it: the restart loads the graph, replays nothing */
	CU_ASSERT_EQUAL(pm_client_snapshot(c), PM_CLIENT_OK);
	CU_ASSERT(info_reaches(&d, "snapshots_completed", SHARDS));
	pm_client_close(c);
	CU_ASSERT_FATAL(daemon_kill(&d));
	CU_ASSERT_FATAL(daemon_start(&d));
	uint64_t nodes = info_field(&d, "recovery_snapshot_nodes");
	printf("\n  restart: %" PRIu64 " HNSW nodes loaded from the snapshot, %" PRIu64
	       " log records replayed", nodes, info_field(&d, "wal_recovered_records"));
	CU_ASSERT_EQUAL(nodes, VEC_COLL_N);
	CU_ASSERT_EQUAL(info_field(&d, "wal_recovered_records"), 0);
	c = client_open(&d);
	CU_ASSERT_FATAL(c != NULL);
	knn_all(c, (const float(*)[VEC_DIM])q, after);
	int differ = 0;
	for (uint32_t i = 0; i < VEC_QUERIES; i++)
		for (uint32_t s = 0; s < 2; s++) {
			CU_ASSERT_EQUAL(before[i][s].count, VEC_K);
			differ += memcmp(&before[i][s], &after[i][s], sizeof(before[i][s])) != 0;
		}
	printf("\n  %u queries x 2 collections, %d differ after the restart (recovered %" PRIu64
	       " records)", VEC_QUERIES, differ, d.recovered);
	CU_ASSERT_EQUAL(differ, 0);
	struct pm_client_vector out = { .vec = q[0], .cap = VEC_DIM };
	CU_ASSERT_EQUAL(pm_client_vget(c, "c600", 4, &out), PM_CLIENT_OK);
	CU_ASSERT(out.collection_len == 7 && !memcmp(out.collection, "durable", 7));
	CU_ASSERT_EQUAL(pm_client_vget(c, "v7", 2, &out), PM_CLIENT_NOT_FOUND); /* deleted */
	pm_client_close(c);
	CU_ASSERT(daemon_stop(&d));
	/* a damaged snapshot stops the start-up; repaired, it starts again */
	CU_ASSERT(snapshot_flip(d.dir));
	CU_ASSERT(!daemon_start(&d));
	CU_ASSERT(snapshot_flip(d.dir));
	CU_ASSERT_FATAL(daemon_start(&d));
	CU_ASSERT(daemon_stop(&d));
	dir_remove(d.dir);
}

/* ---------------------------------------------------------------- ENOSPC */

/* Whether test 5 can run: root and a mount namespace of our own. Not root (or
 * no namespace) skips it with a notice — except under CI=true, which fails.
 * The test process itself moves into the new namespace (the pomaid it starts
 * inherits it, tmpfs and all), which is why this test runs last. */
static bool full_disk_setup(char *dir)
{
	const char *ci = getenv("CI");
	bool must = ci && !strcmp(ci, "true");
	const char *why = NULL;
	errno = 0;
	if (geteuid() != 0)
		why = "not root";
	else if (unshare(CLONE_NEWNS) != 0)
		why = "unshare(CLONE_NEWNS) failed";
	else if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		why = "cannot make / private";
	else if (!dir_make(dir))
		why = "mkdtemp failed";
	else if (mount("tmpfs", dir, "tmpfs", 0, FULL_TMPFS_OPTS) != 0)
		why = "cannot mount a tmpfs";
	if (!why) {
		snprintf(live_mount, sizeof(live_mount), "%s", dir);
		return true;
	}
	printf("\n  NOTICE: full-disk test not run: %s%s%s%s", why, errno ? ": " : "",
	       errno ? strerror(errno) : "", must ? " — but CI=true: failing" : "");
	CU_ASSERT(!must);
	return false;
}

/* Take all but FULL_LEFT_BYTES of the filesystem's free space. */
static bool filler_make(const char *path)
{
	struct statvfs sv;
	int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && statvfs(path, &sv) == 0;
	uint64_t free_bytes = ok ? (uint64_t)sv.f_bavail * sv.f_frsize : 0;
	ok = ok && free_bytes > FULL_LEFT_BYTES &&
	     fallocate(fd, 0, 0, (off_t)(free_bytes - FULL_LEFT_BYTES)) == 0;
	if (fd >= 0)
		close(fd);
	printf("\n  filler: %" PRIu64 " of %" PRIu64 " free bytes taken",
	       ok ? free_bytes - FULL_LEFT_BYTES : 0, free_bytes);
	return ok;
}

/* Set a new key of writer w that lives on `shard`; its status. */
static enum pm_client_status set_on_shard(struct writer *w, uint32_t shard)
{
	char key[32];
	while (w->next_new < KEYS_PER_WRITER_MAX - PROBE_KEYS &&
	       pm_client_shard_of(w->c, key, (size_t)key_name(w->id, w->next_new, key)) != shard)
		w->next_new++;
	w->stopped = false;
	atomic_store(&ctl.killed, false); /* a failure is this write's, not a dead daemon's */
	write_key(w, w->next_new++, false);
	pm_client_drain(w->c);
	return w->stopped ? w->last_err : PM_CLIENT_OK;
}

/* Until a write on the full shard succeeds: pomaid retries its log every
 * second. A bounded poll; E_DISK_FULL meanwhile. */
static bool writes_resume(struct writer *w, const struct daemon *d, uint32_t shard, int *tries)
{
	uint64_t deadline = now_ms() + FULL_RESUME_WAIT_MS;
	enum pm_client_status st = PM_CLIENT_E_DISK_FULL;
	CU_ASSERT_FATAL(writer_begin(w, d, 0));
	w->full_expected = true;
	for (*tries = 0; st == PM_CLIENT_E_DISK_FULL && now_ms() < deadline; ++*tries) {
		st = set_on_shard(w, shard);
		if (st == PM_CLIENT_E_DISK_FULL)
			pause_ms(FULL_RESUME_POLL_MS);
	}
	writer_end(w);
	return st == PM_CLIENT_OK;
}

/* Fill the disk: both shards get their first segment, a filler file takes
 * what is left, and the writers go on until each has been refused. */
static uint32_t disk_fill(struct writer *ws, struct daemon *d, const char *filler)
{
	struct run_result rr;
	CU_ASSERT_FATAL(run_writers(ws, 2, d, 200, RUN_QUIET, suite_seed + 11, &rr));
	CU_ASSERT_FATAL(rr.target_reached && rr.failed == 0);
	uint64_t segs = info_field(d, "wal_segments_created");
	CU_ASSERT_FATAL(segs >= SHARDS && segs != UINT64_MAX);
	CU_ASSERT_FATAL(filler_make(filler));
	ws[0].full_expected = ws[1].full_expected = true;
	CU_ASSERT_FATAL(run_writers(ws, 2, d, UINT64_MAX, RUN_UNTIL_FAIL, suite_seed + 12, &rr));
	printf("\n  until the disk was full: acked %" PRIu64 " sent %" PRIu64 ", %" PRIu64
	       " refused E_DISK_FULL", rr.acked, rr.sent, rr.full);
	if (rr.failed)
		printf("\n  other failure: writer %u key %u: %s%s", rr.first_err_writer, rr.first_err_key,
		       pm_client_status_name(rr.first_err),
		       rr.first_err == PM_CLIENT_E_TIMEOUT && !rr.full
			       ? " — the full shard answered neither OK nor E_DISK_FULL: a refusal"
				 " must not wait for the log it could not write"
			       : "");
	CU_ASSERT_EQUAL(rr.failed, 0);
	CU_ASSERT_FATAL(rr.full > 0);
	struct pm_client *c = client_open(d);
	char key[32];
	const struct writer *w = ws[0].full ? &ws[0] : &ws[1];
	uint32_t shard = pm_client_shard_of(c, key, (size_t)key_name(w->id, w->full_key, key));
	pm_client_close(c);
	return shard;
}

/* Test 5. */
static void test_disk_full(void)
{
	static struct writer ws[2];
	struct daemon d = { .wal = "sync" };
	char filler[PATH_MAX + 16];
	uint64_t keys;
	int tries = 0;
	cleanup_leftovers();
	if (!full_disk_setup(d.dir))
		return;
	snprintf(filler, sizeof(filler), "%s/filler", d.dir);
	ctl.test = "enospc";
	ctl.round = 0;
	for (uint32_t i = 0; i < 2; i++)
		writer_init(&ws[i], 10 + i, FULL_VALUE_BYTES_MAX);
	CU_ASSERT_FATAL(daemon_start_fresh(&d));
	uint32_t shard = disk_fill(ws, &d, filler);
	/* still refused; and reads go on: every key as acknowledged */
	CU_ASSERT_FATAL(writer_begin(&ws[0], &d, 0));
	CU_ASSERT_EQUAL(set_on_shard(&ws[0], shard), PM_CLIENT_E_DISK_FULL);
	writer_end(&ws[0]);
	CU_ASSERT_EQUAL(check_all(ws, 2, &d, false, &keys), 0);
	uint64_t refused = info_field(&d, "wal_refused_disk_full");
	printf("\n  shard %u full: %" PRIu64 " keys read back, INFO wal_refused_disk_full %" PRIu64,
	       shard, keys, refused);
	CU_ASSERT(refused > 0 && refused != UINT64_MAX);
	/* room again: writes resume within pomaid's retry */
	CU_ASSERT_EQUAL(unlink(filler), 0);
	uint64_t t0 = now_ms();
	CU_ASSERT_FATAL(writes_resume(&ws[0], &d, shard, &tries));
	printf("\n  writes resumed after %d tries, %" PRIu64 " ms", tries, now_ms() - t0);
	/* the other shard may have been refused too (the filler takes the whole
	 * disk) and retries on its own clock: the writers below start once every
	 * shard takes writes again (a CI run failed on E_DISK_FULL from it) */
	for (uint32_t s = 0; s < SHARDS; s++) {
		int more = 0;
		CU_ASSERT_FATAL(s == shard || writes_resume(&ws[0], &d, s, &more));
	}
	/* more writes, a SIGKILL with some in flight, and everything is there */
	struct run_result rr;
	ws[0].full_expected = ws[1].full_expected = false;
	CU_ASSERT_FATAL(run_writers(ws, 2, &d, FULL_ACKS, RUN_KILL, suite_seed + 13, &rr));
	if (!(rr.target_reached && rr.killed_ok && rr.failed == 0))
		print_round("enospc", 1, FULL_ACKS, &rr, &d, 0, 0, 0);
	CU_ASSERT(rr.target_reached && rr.killed_ok && rr.failed == 0);
	CU_ASSERT_FATAL(daemon_start(&d));
	uint64_t bad = check_all(ws, 2, &d, true, &keys);
	printf("\n  after SIGKILL and a restart: %" PRIu64 " keys checked, %" PRIu64
	       " wrong; recovered %" PRIu64 " records", keys, bad, d.recovered);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(daemon_stop(&d));
	cleanup_leftovers(); /* the tmpfs goes */
	for (uint32_t i = 0; i < 2; i++)
		free(ws[i].keys);
}

/* ---------------------------------------------------------------- main */


int main(int argc, char **argv)
{
	if (argc < 2 || access(argv[1], X_OK) != 0) {
		fprintf(stderr, "test_durability: no pomaid to run (usage: test_durability PATH-TO-POMAID)\n");
		return PM_TEST_SKIP;
	}
	pomaid_path = argv[1];
	const char *s = getenv("POMAI_TEST_SEED"), *r = getenv("POMAI_DURABILITY_ROUNDS");
	suite_seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	if (r && strtoul(r, NULL, 0) > 0)
		rounds = (unsigned)strtoul(r, NULL, 0);
	printf("test_durability: seed %" PRIu64 " (POMAI_TEST_SEED=%" PRIu64 " replays it)\n",
	       suite_seed, suite_seed);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ctl.cv, &ca);
	static CU_TestInfo tests[] = {
		{ "1. sync: SIGKILL under load, every acknowledged write recovered",
		  test_sync_crash_loop },
		{ "2. sync: SIGKILL with snapshots running and published", test_snapshot_crash_loop },
		{ "3. vectors and a collection: KNN identical after SIGKILL", test_vectors_survive },
		{ "4. batch: acknowledged writes survive a crash of pomaid", test_batch_mode },
		{ "5. ENOSPC: refused, reads go on, resumes, nothing lost", test_disk_full },
		CU_TEST_INFO_NULL,
	};
	int rc = pm_cu_run("durability", tests);
	cleanup_leftovers();
	printf("test_durability: seed %" PRIu64 "\n", suite_seed);
	return rc;
}
