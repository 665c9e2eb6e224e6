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
 * The writers and the check after a restart are crash_writers.h's (shared
 * with test_powerloss): what a writer knows of each of its keys is the state
 * it was last acknowledged with and at most one later write it sent without
 * an acknowledgement; after a restart the key must hold one of the two.
 *
 * The seed is printed; POMAI_TEST_SEED=<n> replays a run's values, operations
 * and kill points (not the timing). The daemon is waited for by reading its
 * "ready" line, writers by their replies, the killed daemon by waitpid:
 * nothing sleeps to synchronise.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "crash_writers.h"
#include "cu_main.h"
#include "libclient.h"
#include "pomai.h"
#include "proc.h"
#include "wal.h" /* pm_crc32c: a snapshot header made to pass its check */

#define SHARDS 2u
#define WRITERS 4u
/* Request contexts in flight per client: the writers' and checkers' depths. */
#define OPS_MAX CW_OPS_MAX
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
/* Test 3: keys set after the snapshot, read back after its hint is moved. */
#define HINT_KEYS 64u

static const char *pomaid_path;
static uint64_t suite_seed;
static unsigned rounds = ROUNDS_DEFAULT;
/* The mount a test that stopped at a fatal assertion leaves for the next. */
static char live_mount[PATH_MAX];
/* The writers' run, and whether a snapshot is requested right before a kill. */
static struct cw_run run;
static bool snap_at_kill;

/* ---------------------------------------------------------------- directories */

static bool dir_make(char *out)
{
	return proc_dir_make(out, "durability");
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

/* The log's modes, each with the suite's flags. */
static const char *const sync_flags[] = { "--wal", "sync", "--wal-batch-ms", "10",
					  "--wal-segment-bytes", "16M", "--arena-bytes", "64M",
					  "--seeds", "65536", "--knn-timeout-ms", "2000",
					  "--hugepages", "no", NULL };
static const char *const batch_flags[] = { "--wal", "batch", "--wal-batch-ms", "10",
					   "--wal-segment-bytes", "16M", "--arena-bytes", "64M",
					   "--seeds", "65536", "--knn-timeout-ms", "2000",
					   "--hugepages", "no", NULL };

struct daemon {
	struct pomaid pm;          /* restarts keep its ports and data directory */
	unsigned snap_tmp_at_kill; /* snapshots being written when it was last killed */
};

static void daemon_init(struct daemon *d, bool batch)
{
	memset(d, 0, sizeof(*d));
	d->pm.path = pomaid_path;
	d->pm.flags = batch ? batch_flags : sync_flags;
}

/* On its ports and directory. */
static bool daemon_start(struct daemon *d)
{
	return pomaid_start(&d->pm, NULL, NULL);
}

/* The first start: free ports picked at random (not from the test seed). */
static bool daemon_start_fresh(struct daemon *d)
{
	d->pm.base = 0;
	return pomaid_start(&d->pm, NULL, NULL);
}

/* SIGKILL: true if pomaid was alive until then and died of it. Waits for it
 * however long the kernel takes (e.g. I/O in flight): its ports and data_dir
 * lock are free once it has been reaped. */
static bool daemon_kill(struct daemon *d)
{
	return pomaid_kill(&d->pm);
}

/* SIGTERM: true if pomaid drained its log and exited 0 in time. */
static bool daemon_stop(struct daemon *d)
{
	return pomaid_stop(&d->pm);
}

/* What a test stopped by a fatal assertion left: its daemon, its mount. Each
 * test starts with this, and main ends with it. */
static void cleanup_leftovers(void)
{
	proc_kill_all();
	if (live_mount[0]) {
		umount2(live_mount, MNT_DETACH);
		rmdir(live_mount);
		live_mount[0] = '\0';
	}
}

/* ---------------------------------------------------------------- clients */

static struct pm_client *client_open(const struct daemon *d)
{
	return lib_open(&d->pm, LIB_TIMEOUT_MS, LIB_RETRIES, OPS_MAX);
}

/* A numeric field of INFO's Total section (UINT64_MAX: INFO failed). */
static uint64_t info_field(const struct daemon *d, const char *field)
{
	long long v = lib_info_of(&d->pm, field);
	return v < 0 ? UINT64_MAX : (uint64_t)v;
}

/* SNAPSHOT to every shard; true once each has started one. */
static bool request_snapshot(const struct daemon *d)
{
	return lib_snapshot(&d->pm);
}

/* Snapshot files of every shard: published, or (tmp) being written. */
static unsigned snapshots_in(const char *data_dir, bool tmp)
{
	return files_in(data_dir, "snap", tmp ? ".snap.tmp" : ".snap", NULL);
}

/* Poll INFO until `field` (the shards' total) reaches want; false after SNAP_WAIT_MS. */
static bool info_reaches(const struct daemon *d, const char *field, uint64_t want)
{
	return lib_info_reaches(&d->pm, field, (long long)want, SNAP_WAIT_MS);
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
 * wal_written_lsn + 1 == wal_next_lsn), polled until CW_ACK_WAIT_MS: in batch
 * mode that is when a crash of pomaid can no longer lose them (test 4;
 * docs/durability.md). The Total section has neither field. */
static bool log_written(const struct daemon *d)
{
	static char text[PM_CLIENT_INFO_REPLY_BYTES_MAX + 1];
	uint64_t deadline = proc_now_ms() + CW_ACK_WAIT_MS;
	struct pm_client *c = client_open(d);
	bool done = false;
	while (c && !done && proc_now_ms() < deadline) {
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
			proc_pause_ms(PROC_POLL_MS);
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

static void run_collect(struct cw_writer *ws, uint32_t nw, struct run_result *out)
{
	out->acked = atomic_load(&run.acked);
	out->sent = atomic_load(&run.sent);
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
static bool run_writers(struct cw_writer *ws, uint32_t nw, struct daemon *d, uint64_t target,
			enum run_end end, uint64_t run_seed, struct run_result *out)
{
	pthread_t t[WRITERS];
	memset(out, 0, sizeof(*out));
	if (!cw_start(&run, ws, nw, t, &d->pm, run_seed, target))
		return false;
	cw_wait(&run, target, end == RUN_UNTIL_FAIL);
	out->target_reached = atomic_load(&run.acked) >= target;
	if (end == RUN_QUIET_KILL || end == RUN_QUIET) {
		atomic_store(&run.stop, true);
		cw_wait(&run, target, true);
		out->target_reached &= touch_shards(d);
		CU_ASSERT(end != RUN_QUIET_KILL || log_written(d));
	}
	if (end == RUN_KILL || end == RUN_QUIET_KILL) {
		if (snap_at_kill)
			request_snapshot(d);
		out->in_flight_at_kill = atomic_load(&run.sent) - atomic_load(&run.done);
		out->killed_ok = daemon_kill(d);
	}
	cw_join(&run, ws, nw, t);
	run_collect(ws, nw, out);
	return true;
}

/* ---------------------------------------------------------------- crash rounds */

static void print_round(const char *tag, unsigned r, uint64_t target, const struct run_result *rr,
			const struct daemon *d, uint64_t info_rec, uint64_t keys, uint64_t ms)
{
	printf("\n  %s round %2u: target %4" PRIu64 " acked %4" PRIu64 " sent %4" PRIu64
	       " in flight at kill %3" PRIu64 "; recovered %7" PRIu64 " records (INFO %" PRIu64
	       ", %u segments); %5" PRIu64 " keys checked; %" PRIu64 " ms",
	       tag, r, target, rr->acked, rr->sent, rr->in_flight_at_kill, pomaid_recovered(&d->pm), info_rec,
	       segments_in(d->pm.dir), keys, ms);
	if (rr->failed)
		printf("\n  first failure while pomaid ran: writer %u key %u: %s", rr->first_err_writer,
		       rr->first_err_key, pm_client_status_name(rr->first_err));
	fflush(stdout);
}

/* Write, kill, restart, check. The daemon runs on entry and on a true return. */
static bool crash_round(const char *tag, struct cw_writer *ws, struct daemon *d, unsigned r,
			uint64_t target, enum run_end end, uint64_t *in_flight_kills)
{
	uint64_t t0 = proc_now_ms(), keys = 0;
	struct run_result rr;
	run.test = tag;
	run.round = r;
	CU_ASSERT_FATAL(run_writers(ws, WRITERS, d, target, end, suite_seed + 1000003u * r, &rr));
	d->snap_tmp_at_kill = snapshots_in(d->pm.dir, true);
	bool restarted = daemon_start(d);
	uint64_t bad = restarted ? cw_check(&run, ws, WRITERS, &d->pm, true, &keys) : 0;
	uint64_t info_rec = restarted ? info_field(d, "wal_recovered_records") : 0;
	print_round(tag, r, target, &rr, d, info_rec, keys, proc_now_ms() - t0);
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

static void writers_free(struct cw_writer *ws)
{
	for (uint32_t i = 0; i < WRITERS; i++)
		cw_writer_free(&ws[i]);
}

/* After the last round: a clean shutdown and restart recover the same state. */
static void clean_restart_check(struct cw_writer *ws, struct daemon *d)
{
	uint64_t keys;
	CU_ASSERT(daemon_stop(d));
	CU_ASSERT_FATAL(daemon_start(d));
	uint64_t bad = cw_check(&run, ws, WRITERS, &d->pm, true, &keys);
	printf("\n  after SIGTERM and a restart: %" PRIu64 " keys checked, %" PRIu64 " wrong", keys,
	       bad);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(daemon_stop(d));
}

/* A fresh data directory and daemon for a test with writers. */
static void writers_setup(struct cw_writer *ws, struct daemon *d)
{
	cleanup_leftovers();
	for (uint32_t i = 0; i < WRITERS; i++)
		cw_writer_init(&ws[i], &run, i, VALUE_BYTES_MAX);
	CU_ASSERT_FATAL(dir_make(d->pm.dir));
	CU_ASSERT_FATAL(daemon_start_fresh(d));
}

/* After the rounds: if they went well, a clean restart recovers the same
 * state; the directory goes unless something failed. */
static void writers_finish(struct cw_writer *ws, struct daemon *d, bool ok)
{
	if (ok)
		clean_restart_check(ws, d);
	else
		daemon_stop(d);
	if (ok && !CU_get_number_of_failures())
		proc_dir_remove(d->pm.dir);
	else
		printf("\n  data dir kept for inspection: %s", d->pm.dir);
	writers_free(ws);
}

/* Test 1. */
static void test_sync_crash_loop(void)
{
	static struct cw_writer ws[WRITERS];
	struct daemon d;
	daemon_init(&d, false);
	uint64_t rng = suite_seed ^ 0x51c0ffeeull, in_flight_kills = 0, t0 = proc_now_ms();
	writers_setup(ws, &d);
	printf("\n  data dir %s, %u rounds", d.pm.dir, rounds);
	bool ok = true;
	unsigned r;
	for (r = 0; r < rounds && ok; r++) {
		uint64_t target = ACKS_MIN + pm_test_rand(&rng) % (ACKS_MAX - ACKS_MIN + 1);
		ok = crash_round("sync", ws, &d, r, target, RUN_KILL, &in_flight_kills);
	}
	printf("\n  %u rounds in %" PRIu64 " ms; %" PRIu64 " kills landed with writes in flight", r,
	       proc_now_ms() - t0, in_flight_kills);
	CU_ASSERT(in_flight_kills * 2 >= r); /* the kills did catch writes in flight */
	if (rounds >= ROUNDS_DEFAULT) /* the log rolled over to new segments */
		CU_ASSERT(segments_in(d.pm.dir) >= 2 * SHARDS);
	writers_finish(ws, &d, ok);
}

/* Write (quietly) until every shard's log has rolled over to n segments, at
 * most `runs` runs of RECYCLE_ACKS writes; true once it has. */
static bool roll_over(struct cw_writer *ws, struct daemon *d, unsigned n, const char *field,
		      uint64_t want)
{
	for (unsigned i = 0; i < RECYCLE_RUNS_MAX; i++) {
		if (field ? info_field(d, field) >= want : files_min(d->pm.dir, "wal", ".wal") >= n)
			return true;
		struct run_result rr;
		if (!run_writers(ws, WRITERS, d, RECYCLE_ACKS, RUN_QUIET, suite_seed + 31u * i, &rr) ||
		    rr.failed)
			return false;
	}
	return false;
}

/* Segments a snapshot covers become spares (at most PM_WAL_SPARE_SEGMENTS
 * per shard counting the next segment prepared ahead, the rest deleted), the
 * next segments are made from them, and a kill after that still loses nothing
 * acknowledged. */
static bool segments_recycle(struct cw_writer *ws, struct daemon *d)
{
	uint64_t unused = 0, done = info_field(d, "snapshots_completed");
	CU_ASSERT_FATAL(roll_over(ws, d, 3, NULL, 0));
	CU_ASSERT(request_snapshot(d));
	CU_ASSERT_FATAL(info_reaches(d, "snapshots_completed", done + SHARDS));
	/* a segment that is not kept is deleted in the background (io_uring's
	 * workers), and counted once it is gone: polled, with a deadline */
	uint64_t retired = 0, deleted = 0;
	for (uint64_t t0 = proc_now_ms(); proc_now_ms() - t0 < SNAP_WAIT_MS; proc_pause_ms(SNAP_POLL_MS)) {
		retired = info_field(d, "wal_segments_retired");
		deleted = info_field(d, "wal_segments_deleted");
		if (retired != UINT64_MAX && deleted != UINT64_MAX && retired + deleted >= 2 * SHARDS)
			break;
	}
	unsigned spares = files_min(d->pm.dir, "wal", ".spare");
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
	static struct cw_writer ws[WRITERS];
	struct daemon d;
	daemon_init(&d, false);
	uint64_t rng = suite_seed ^ 0x5a4907ull, unused = 0;
	unsigned tmp_at_kill = 0, loaded = 0, published = 0;
	writers_setup(ws, &d);
	bool ok = true;
	for (unsigned r = 0; r < SNAP_ROUNDS && ok; r++) {
		uint64_t target = ACKS_MIN + pm_test_rand(&rng) % (ACKS_MAX - ACKS_MIN + 1);
		uint64_t done = info_field(&d, "snapshots_completed");
		snap_at_kill = r % 2 == 1;
		if (r % 2 == 0)
			CU_ASSERT(request_snapshot(&d));
		if (r % 2 == 0) { /* the writers run while it is written; it must complete */
			struct run_result rr;
			run.test = "snapshot";
			run.round = r;
			CU_ASSERT_FATAL(run_writers(ws, WRITERS, &d, target, RUN_QUIET, suite_seed + 7u * r, &rr));
			CU_ASSERT_EQUAL(rr.failed, 0);
			CU_ASSERT(info_reaches(&d, "snapshots_completed", done + SHARDS));
			published += snapshots_in(d.pm.dir, false) == SHARDS;
		}
		/* the kill, with writes in flight (and in odd rounds a snapshot) */
		ok = crash_round("snapshot", ws, &d, r, target, RUN_KILL, &unused);
		loaded += info_field(&d, "recovery_snapshot_lsn") > 0;
		tmp_at_kill += d.snap_tmp_at_kill > 0;
	}
	snap_at_kill = false;
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
	static struct cw_writer ws[WRITERS];
	struct daemon d;
	daemon_init(&d, true);
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

/* The snapshot file of a shard, opened read-write; -1 if there is none. */
static int snapshot_open(const char *data_dir, uint32_t shard)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/snap/shard-%u", data_dir, shard);
	DIR *d = opendir(path);
	struct dirent *e = NULL;
	while (d && (e = readdir(d)) != NULL && !strstr(e->d_name, ".snap"))
		;
	int fd = -1;
	if (e) {
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", e->d_name);
		fd = open(path, O_RDWR);
	}
	if (d)
		closedir(d);
	return fd;
}

/* Flip one byte in the middle of shard 0's snapshot (twice: back as it was). */
static bool snapshot_flip(const char *data_dir)
{
	int fd = snapshot_open(data_dir, 0);
	struct stat sb;
	uint8_t b;
	bool ok = fd >= 0 && fstat(fd, &sb) == 0 && pread(fd, &b, 1, sb.st_size / 2) == 1;
	b ^= 0x10;
	ok = ok && pwrite(fd, &b, 1, sb.st_size / 2) == 1;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Move the log hint in every shard's snapshot header (engine/snapshot.h: the
 * u64 byte offset at 40 of the start LSN's record in its segment) by delta
 * bytes, its CRC made right again: a header that passes its check and points
 * into the middle of a record. True if each shard's had a hint to move. */
#define SNAP_HINT_OFF 40u
#define SNAP_HEADER_CRC_OFF 60u
static bool snapshot_hint_move(const char *data_dir, int64_t delta)
{
	bool ok = true;
	for (uint32_t shard = 0; shard < SHARDS; shard++) {
		int fd = snapshot_open(data_dir, shard);
		uint8_t h[64];
		uint64_t off = 0;
		bool one = fd >= 0 && pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h);
		if (one) {
			memcpy(&off, h + SNAP_HINT_OFF, sizeof(off));
			one = off != 0;
			off = (uint64_t)((int64_t)off + delta);
			memcpy(h + SNAP_HINT_OFF, &off, sizeof(off));
			uint32_t crc = pm_crc32c(0, h, SNAP_HEADER_CRC_OFF);
			memcpy(h + SNAP_HEADER_CRC_OFF, &crc, sizeof(crc));
			one = one && pwrite(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h);
		}
		if (fd >= 0)
			close(fd);
		ok = ok && one;
	}
	return ok;
}

/* Test 3. */
static void test_vectors_survive(void)
{
	struct daemon d;
	daemon_init(&d, false);
	static float q[VEC_QUERIES][VEC_DIM];
	static struct knn_snap before[VEC_QUERIES][2], after[VEC_QUERIES][2];
	uint64_t rng = suite_seed ^ 0x7ec70ull;
	cleanup_leftovers();
	CU_ASSERT_FATAL(dir_make(d.pm.dir));
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
	/* each snapshot said where its start LSN's record is: the log before it
	 * was not read again (issue 20: a restart takes the snapshot's load) */
	uint64_t skipped = info_field(&d, "wal_recovery_skipped_bytes");
	printf("\n  log bytes the snapshots' hints spared reading: %" PRIu64, skipped);
	CU_ASSERT(skipped > 0 && skipped != UINT64_MAX);
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
	       " records)", VEC_QUERIES, differ, pomaid_recovered(&d.pm));
	CU_ASSERT_EQUAL(differ, 0);
	struct pm_client_vector out = { .vec = q[0], .cap = VEC_DIM };
	CU_ASSERT_EQUAL(pm_client_vget(c, "c600", 4, &out), PM_CLIENT_OK);
	CU_ASSERT(out.collection_len == 7 && !memcmp(out.collection, "durable", 7));
	CU_ASSERT_EQUAL(pm_client_vget(c, "v7", 2, &out), PM_CLIENT_NOT_FOUND); /* deleted */
	/* records after the snapshots, then each hint moved into the middle of a
	 * record (a header that passes its CRC): recovery reads the segments from
	 * their start instead, and nothing is lost */
	char key[16], val[16], got[16];
	for (uint32_t i = 0; i < HINT_KEYS; i++) {
		int n = snprintf(key, sizeof(key), "h%u", i);
		CU_ASSERT_EQUAL(pm_client_set(c, key, (size_t)n, val, (size_t)snprintf(val, sizeof(val),
				"v%u", i), 0), PM_CLIENT_OK);
	}
	pm_client_close(c);
	CU_ASSERT_FATAL(daemon_kill(&d));
	CU_ASSERT_FATAL(snapshot_hint_move(d.pm.dir, 1));
	CU_ASSERT_FATAL(daemon_start(&d));
	CU_ASSERT_EQUAL(info_field(&d, "wal_recovery_skipped_bytes"), 0);
	CU_ASSERT_EQUAL(info_field(&d, "wal_recovered_records"), HINT_KEYS);
	c = client_open(&d);
	CU_ASSERT_FATAL(c != NULL);
	uint32_t right = 0;
	for (uint32_t i = 0; i < HINT_KEYS; i++) {
		size_t vlen = 0;
		int n = snprintf(key, sizeof(key), "h%u", i), m = snprintf(val, sizeof(val), "v%u", i);
		right += pm_client_get(c, key, (size_t)n, got, sizeof(got), &vlen) == PM_CLIENT_OK &&
			 vlen == (size_t)m && !memcmp(got, val, vlen);
	}
	CU_ASSERT_EQUAL(right, HINT_KEYS);
	CU_ASSERT_EQUAL(pm_client_vget(c, "c600", 4, &out), PM_CLIENT_OK);
	pm_client_close(c);
	CU_ASSERT(daemon_stop(&d));
	/* a damaged snapshot stops the start-up; repaired, it starts again */
	CU_ASSERT(snapshot_flip(d.pm.dir));
	CU_ASSERT(!daemon_start(&d));
	CU_ASSERT(snapshot_flip(d.pm.dir));
	CU_ASSERT_FATAL(daemon_start(&d));
	CU_ASSERT(daemon_stop(&d));
	proc_dir_remove(d.pm.dir);
}

/* ---------------------------------------------------------------- ENOSPC */

/* Whether test 5 can run: root and a mount namespace of our own. Not root (or
 * no namespace) skips it with a notice — except under CI=true, which fails.
 * The test process itself moves into the new namespace (the pomaid it starts
 * inherits it, tmpfs and all), which is why this test runs last. */
static bool full_disk_setup(char *dir)
{
	bool must = proc_ci();
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
static enum pm_client_status set_on_shard(struct cw_writer *w, uint32_t shard)
{
	char key[32];
	while (w->next_new < CW_KEYS_PER_WRITER_MAX - PROBE_KEYS &&
	       pm_client_shard_of(w->c, key, (size_t)cw_key_name(w->id, w->next_new, key)) != shard)
		w->next_new++;
	w->stopped = false;
	atomic_store(&run.killed, false); /* a failure is this write's, not a dead daemon's */
	cw_write_key(w, w->next_new++, false);
	pm_client_drain(w->c);
	return w->stopped ? w->last_err : PM_CLIENT_OK;
}

/* Until a write on the full shard succeeds: pomaid retries its log every
 * second. A bounded poll; E_DISK_FULL meanwhile. */
static bool writes_resume(struct cw_writer *w, const struct daemon *d, uint32_t shard, int *tries)
{
	uint64_t deadline = proc_now_ms() + FULL_RESUME_WAIT_MS;
	enum pm_client_status st = PM_CLIENT_E_DISK_FULL;
	CU_ASSERT_FATAL(cw_writer_begin(w, &d->pm, 0));
	w->full_expected = true;
	for (*tries = 0; st == PM_CLIENT_E_DISK_FULL && proc_now_ms() < deadline; ++*tries) {
		st = set_on_shard(w, shard);
		if (st == PM_CLIENT_E_DISK_FULL)
			proc_pause_ms(FULL_RESUME_POLL_MS);
	}
	cw_writer_end(w);
	return st == PM_CLIENT_OK;
}

/* Fill the disk: both shards get their first segment, a filler file takes
 * what is left, and the writers go on until each has been refused. */
static uint32_t disk_fill(struct cw_writer *ws, struct daemon *d, const char *filler)
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
	const struct cw_writer *w = ws[0].full ? &ws[0] : &ws[1];
	uint32_t shard = pm_client_shard_of(c, key, (size_t)cw_key_name(w->id, w->full_key, key));
	pm_client_close(c);
	return shard;
}

/* Test 5. */
static void test_disk_full(void)
{
	static struct cw_writer ws[2];
	struct daemon d;
	daemon_init(&d, false);
	char filler[PATH_MAX + 16];
	uint64_t keys;
	int tries = 0;
	cleanup_leftovers();
	if (!full_disk_setup(d.pm.dir))
		return;
	snprintf(filler, sizeof(filler), "%s/filler", d.pm.dir);
	run.test = "enospc";
	run.round = 0;
	for (uint32_t i = 0; i < 2; i++)
		cw_writer_init(&ws[i], &run, 10 + i, FULL_VALUE_BYTES_MAX);
	CU_ASSERT_FATAL(daemon_start_fresh(&d));
	uint32_t shard = disk_fill(ws, &d, filler);
	/* still refused; and reads go on: every key as acknowledged */
	CU_ASSERT_FATAL(cw_writer_begin(&ws[0], &d.pm, 0));
	CU_ASSERT_EQUAL(set_on_shard(&ws[0], shard), PM_CLIENT_E_DISK_FULL);
	cw_writer_end(&ws[0]);
	CU_ASSERT_EQUAL(cw_check(&run, ws, 2, &d.pm, false, &keys), 0);
	uint64_t refused = info_field(&d, "wal_refused_disk_full");
	printf("\n  shard %u full: %" PRIu64 " keys read back, INFO wal_refused_disk_full %" PRIu64,
	       shard, keys, refused);
	CU_ASSERT(refused > 0 && refused != UINT64_MAX);
	/* room again: writes resume within pomaid's retry */
	CU_ASSERT_EQUAL(unlink(filler), 0);
	uint64_t t0 = proc_now_ms();
	CU_ASSERT_FATAL(writes_resume(&ws[0], &d, shard, &tries));
	printf("\n  writes resumed after %d tries, %" PRIu64 " ms", tries, proc_now_ms() - t0);
	/* the other shard may have been refused too (the filler takes the whole
	 * disk) and retries on its own clock: the writers below start once every
	 * shard takes writes again (a CI run failed on E_DISK_FULL from it) */
	for (uint32_t s = 0; s < SHARDS; s++) {
		int more = 0;
		CU_ASSERT_FATAL(s == shard || writes_resume(&ws[0], &d, s, &more));
	}
	/* ... and once every shard has its next segment again: one whose current
	 * segment had room took writes at once, but the next one the full disk
	 * refused is made again only on its own 1 s clock, and a switch before
	 * that is refused E_DISK_FULL (an ASan run failed so) */
	CU_ASSERT_FATAL(info_reaches(&d, "wal_segments_ready", SHARDS));
	/* more writes, a SIGKILL with some in flight, and everything is there */
	struct run_result rr;
	ws[0].full_expected = ws[1].full_expected = false;
	CU_ASSERT_FATAL(run_writers(ws, 2, &d, FULL_ACKS, RUN_KILL, suite_seed + 13, &rr));
	if (!(rr.target_reached && rr.killed_ok && rr.failed == 0))
		print_round("enospc", 1, FULL_ACKS, &rr, &d, 0, 0, 0);
	CU_ASSERT(rr.target_reached && rr.killed_ok && rr.failed == 0);
	CU_ASSERT_FATAL(daemon_start(&d));
	uint64_t bad = cw_check(&run, ws, 2, &d.pm, true, &keys);
	printf("\n  after SIGKILL and a restart: %" PRIu64 " keys checked, %" PRIu64
	       " wrong; recovered %" PRIu64 " records", keys, bad, pomaid_recovered(&d.pm));
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(daemon_stop(&d));
	cleanup_leftovers(); /* the tmpfs goes */
	for (uint32_t i = 0; i < 2; i++)
		cw_writer_free(&ws[i]);
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
	cw_run_init(&run, suite_seed, PROBE_KEYS, OPS_MAX);
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
