/* SPDX-License-Identifier: MIT
 *
 * test_wal_io.c — what the crash tests (test_durability.c) cannot see of the
 * log's I/O (dataplane/wal_io.c), against a real pomaid (path in argv[1]):
 *
 *  1. sync mode: no reply leaves before its fsync completes. pomaid runs with
 *     POMAI_TEST_FSYNC=stall (a debug-build hook: the log's fsync completions
 *     are held back until SIGUSR1). For each SET: once INFO shows its fsync
 *     held, a GET sent on the same socket to the same shard is answered while
 *     the SET is not (one worker sends its replies to one socket in order, so
 *     a SET reply released before the fsync would arrive first); after SIGUSR1
 *     the SET's reply arrives, OK. Also for SETs sent together in one datagram.
 *  2. A failed fsync (POMAI_TEST_FSYNC=fail) is never acknowledged: in sync
 *     mode the write's reply is LOG_FAILED (with io_uring and with pwrite),
 *     and later writes are refused; in batch mode writes are refused once
 *     the first batch fsync has failed.
 *  3. The first writes and the first switch of segment do not wait for a
 *     segment to be made: when pomaid says it is ready each shard has its first
 *     segment (header written, space allocated) and the next one prepared;
 *     after the log rolls over, the next one is prepared again. The first
 *     writes' latency is printed (one SET at a time, sync mode).
 *  4. A segment whose switch was cut short by a crash (named, but neither
 *     header nor records on disk) is removed at start-up, not taken for a
 *     damaged log.
 *  5. Sync mode writes its segments ahead of the log with zeros (issue 20:
 *     fdatasync then flushes data only), through io_uring while batches are
 *     written: no record is overwritten. Distinct values over three segments
 *     per shard, a restart, every value read back. With wal_io_uring = auto
 *     the start-up probe ran and INFO says what it chose.
 *  6. wal_io_uring = auto goes on choosing under load: with
 *     POMAI_TEST_WAL_ADAPT=ring_slow (a debug-build hook: batches written
 *     through io_uring count as 50 ms slower) every shard ends writing its
 *     sync batches with pwrite after a few dozen, whatever the start-up
 *     probe chose; with pwrite_slow, through io_uring.
 *  7. A snapshot keeps its pace (snapshot_write_bytes_per_s, issue 20): at
 *     1 MiB/s a shard of PACE_BYTES_PER_SHARD cannot publish sooner than its
 *     bytes past the pace's one-second lead allow (a lower bound the clock
 *     cannot break however loaded the machine), and its slices waited; with
 *     the pace off (0, set while running) the next snapshot waits for none.
 *
 *  8. Sync mode overlaps a batch's write with the previous batch's fdatasync
 *     (wal_sync_overlap = yes, issue 20), and still acknowledges nothing
 *     early. POMAI_TEST_FSYNC=step (a debug-build hook: batches' fdatasync
 *     completions are held; SIGUSR1 releases the oldest, SIGUSR2 fails it):
 *     with SET A's fdatasync held, SET B's batch is written (wal_written_lsn)
 *     and a third SET's is not (PM_WAL_SYNCS_BEHIND_MAX = 2 batches behind);
 *     no reply leaves; A's fdatasync released, A alone is answered (B waits
 *     for its own); B's failed, B and the batch written after it are answered
 *     LOG_FAILED though that batch's own fdatasync then succeeds, and later
 *     writes are refused. With wal_sync_overlap = no, B is not written while
 *     A's fdatasync is held.
 *  9. A batch write the disk refuses (ENOSPC, POMAI_TEST_WAL_ENOSPC: a
 *     debug-build hook reports each shard's first writes so) is retried and
 *     acknowledged once a retry goes through; the next write goes at once.
 *     With io_uring and with pwrite.
 *
 * Tests 1, 2, 6, 8 and 9 need the hooks, compiled into debug builds only (no NDEBUG):
 * against a release build they are skipped with a notice — under CI=true,
 * which builds with the hook, they fail instead.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridge.h"
#include "ctl.h"
#include "cu_main.h"
#include "libclient.h"
#include "pomai.h"
#include "proc.h"
#include "frames.h"
#include "wal.h"

/* Test 1: SETs one at a time, then SETs in one datagram. */
#define STALL_ROUNDS 8u
#define STALL_BURST 6u
/* How long a reply, or INFO showing a held fsync, may take. */
#define WAIT_MS 20000
/* Test 2: batch mode fsyncs every wal_batch_ms. */
#define FAIL_BATCH_WRITES_MAX 2000u
/* Test 3: values that fill a 16 MiB segment quickly, writes in flight, and
 * the one-at-a-time writes whose latency is printed. */
#define ROLL_VALUE_BYTES 7000u
#define SEGMENT_BYTES (16u << 20)
#define LATENCY_WRITES 3000u
/* Test 5: distinct values written through at least this many segments per shard. */
#define AHEAD_SEGMENTS 3u
/* PM_WAL_FILL_AHEAD_BYTES (wal_io.h): what a prepared segment is written ahead */
#define FILL_AHEAD_BYTES (8u << 20)
/* Test 6: SETs one at a time (one batch each) per shard: well past auto's
 * first window and trial (32 + 4 batches, wal_io.h) and a second one. */
#define ADAPT_WRITES_PER_SHARD 120u

static const char *pomaid_path;
/* The flags of every start (with the ports, --shards and --data-dir). */
static const char *const pomaid_flags[] = { "--arena-bytes", "64M", "--seeds", "65536",
					    "--hugepages", "no", "--wal-segment-bytes", "16M",
					    "--knn-timeout-ms", "2000", "--idle-sleep-us", "1000",
					    NULL };

/* ---------------------------------------------------------------- a raw UDP client */

static bool raw_open(struct wire *r, const struct pomaid *p)
{
	return wire_open(r, NULL, "127.0.0.1", p->base, 1) &&
	       wire_validate(r); /* a write from an unvalidated address is RETRY (issue 19) */
}

/* Append the frame of req (its id set) to r->buf at *len. */
static void raw_add(struct wire *r, struct pm_request *req, size_t *len)
{
	req->id = r->next_id++;
	size_t n = pm_request_encode(req, r->buf + *len, sizeof(r->buf) - *len);
	CU_ASSERT_FATAL(n > 0);
	*len += n;
}

static void raw_send(struct wire *r, uint32_t shard, size_t len)
{
	CU_ASSERT(wire_send(r, shard, r->buf, len));
}

/* Next reply frame (each datagram may hold several: *at walks them); false
 * after ms. */
static bool raw_next(struct wire *r, int ms, size_t *at, size_t *have, struct pm_reply_view *rv)
{
	for (;;) {
		size_t used = 0;
		if (*at < *have && pm_reply_decode(r->in + *at, *have - *at, rv, &used) == PM_WIRE_OK &&
		    used > 0) {
			*at += used;
			return true;
		}
		struct pollfd pf = { .fd = r->fd, .events = POLLIN };
		if (poll(&pf, 1, ms) <= 0)
			return false;
		ssize_t n = recv(r->fd, r->in, sizeof(r->in), 0);
		*at = 0;
		*have = n > 0 ? (size_t)n : 0;
	}
}

/* A key whose shard is `shard`, numbered from *n on. */
static int key_on(struct pm_client *c, uint32_t shard, const char *tag, unsigned *n, char *key)
{
	int kl;
	do
		kl = snprintf(key, 48, "%s-%u", tag, (*n)++);
	while (pm_client_shard_of(c, key, (size_t)kl) != shard);
	return kl;
}

/* Whether pomaid has a test hook: it says so when it starts (`said`, a piece
 * of that line); a release build has none, which CI does not accept. */
static bool has_hook(const struct pomaid *p, const char *said, const char *what)
{
	if (strstr(p->proc.out, said))
		return true;
	printf("\n  NOTICE: this pomaid has no %s test hook (a release build?): not run%s", what,
	       proc_ci() ? " — but CI=true: failing" : "");
	CU_ASSERT(!proc_ci());
	return false;
}

static bool hook_on(const struct pomaid *p, const char *mode)
{
	char line[96];
	snprintf(line, sizeof(line), "TEST HOOK POMAI_TEST_FSYNC=%s: the log's fsync", mode);
	return has_hook(p, line, "fsync");
}

/* ---------------------------------------------------------------- 1. stalled fsyncs */

/* SETs sent (their ids first_id ..) are held: once an fsync is held, a GET
 * to the same shard on the same socket is answered before any of them. */
static void held_until_release(struct pomaid *p, struct wire *r, uint32_t shard, uint64_t first_id,
			       uint32_t nsets, const char *key, int kl)
{
	struct pm_reply_view rv;
	size_t at = 0, have = 0, len = 0;
	CU_ASSERT_FATAL(lib_info_reaches(p, "wal_test_fsync_held", 1, WAIT_MS));
	struct pm_request get = { .op = PM_OP_GET, .key = { (const uint8_t *)key, (uint32_t)kl } };
	raw_add(r, &get, &len);
	raw_send(r, shard, len);
	uint32_t early = 0;
	bool got = false;
	while (!got && raw_next(r, WAIT_MS, &at, &have, &rv)) {
		got = rv.id == get.id;
		early += rv.id >= first_id && rv.id < first_id + nsets;
	}
	if (early)
		printf("\n  %u SET replies left while their fsync was held", early);
	CU_ASSERT(got);
	CU_ASSERT_EQUAL(early, 0);
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK); /* reads see the write; they are never held */
	/* released (one SIGUSR1 releases what is held when pomaid sees it): every
	 * SET is answered OK; if the SETs took two batches, the second one's fsync
	 * is held in turn, and released once INFO shows it */
	uint32_t ok = 0, answered = 0;
	for (uint32_t release = 0; answered < nsets && release < nsets; release++) {
		if (release > 0)
			CU_ASSERT_FATAL(lib_info_reaches(p, "wal_test_fsync_held", 1, WAIT_MS));
		kill(p->proc.pid, SIGUSR1);
		uint64_t deadline = proc_now_ms() + WAIT_MS;
		while (answered < nsets && proc_now_ms() < deadline &&
		       raw_next(r, answered ? 200 : WAIT_MS, &at, &have, &rv))
			if (rv.id >= first_id && rv.id < first_id + nsets)
				answered++, ok += rv.status == PM_WIRE_OK;
	}
	CU_ASSERT_EQUAL(answered, nsets);
	CU_ASSERT_EQUAL(ok, nsets);
}

static void test_stalled_fsync(void)
{
	proc_kill_all();
	static const char *const args[] = { "--wal", "sync", NULL };
	struct pomaid p = { .path = pomaid_path, .flags = pomaid_flags };
	struct wire r;
	CU_ASSERT_FATAL(proc_dir_make(p.dir, "walio"));
	CU_ASSERT_FATAL(pomaid_start(&p, args, "POMAI_TEST_FSYNC=stall"));
	if (!hook_on(&p, "stall")) {
		pomaid_stop(&p);
		proc_dir_remove(p.dir);
		return;
	}
	struct pm_client *c = lib_open(&p, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
	CU_ASSERT_FATAL(c != NULL && raw_open(&r, &p));
	char key[48];
	unsigned n = 0;
	uint8_t value[100] = { 0 };
	for (uint32_t round = 0; round < STALL_ROUNDS + 2; round++) {
		uint32_t shard = round % POMAID_SHARDS_DEFAULT;
		uint32_t sets = round < STALL_ROUNDS ? 1 : STALL_BURST; /* the last rounds: one datagram */
		size_t len = 0;
		uint64_t first = r.next_id;
		int kl = 0;
		for (uint32_t i = 0; i < sets; i++) {
			kl = key_on(c, shard, "stall", &n, key);
			struct pm_request set = { .op = PM_OP_SET, .key = { (uint8_t *)key, (uint32_t)kl },
						  .value = { value, sizeof(value) } };
			raw_add(&r, &set, &len);
		}
		raw_send(&r, shard, len);
		held_until_release(&p, &r, shard, first, sets, key, kl);
	}
	long long fsyncs = lib_info_of(&p, "wal_fsyncs");
	printf("\n  %u SETs, each held until its fsync was released; %lld fsyncs",
	       STALL_ROUNDS + 2 * STALL_BURST, fsyncs);
	CU_ASSERT(fsyncs >= STALL_ROUNDS + 2);
	pm_client_close(c);
	wire_close(&r);
	CU_ASSERT(pomaid_stop(&p));
	proc_dir_remove(p.dir);
}

/* ---------------------------------------------------------------- 2. failed fsyncs */

static void failed_sync(const char *io)
{
	const char *args[] = { "--wal", "sync", "--wal-io-uring", io, NULL };
	struct pomaid p = { .path = pomaid_path, .flags = pomaid_flags };
	CU_ASSERT_FATAL(proc_dir_make(p.dir, "walio"));
	CU_ASSERT_FATAL(pomaid_start(&p, args, "POMAI_TEST_FSYNC=fail"));
	if (hook_on(&p, "fail")) {
		struct pm_client *c = lib_open(&p, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
		CU_ASSERT_FATAL(c != NULL);
		/* the write's fsync fails: never OK; later writes are refused */
		for (uint32_t shard = 0; shard < POMAID_SHARDS_DEFAULT; shard++) {
			char key[48];
			unsigned n = 0;
			int kl = key_on(c, shard, "fail", &n, key);
			CU_ASSERT_EQUAL(pm_client_set(c, key, (size_t)kl, "v", 1, 0), PM_CLIENT_E_LOG_FAILED);
			kl = key_on(c, shard, "fail", &n, key);
			CU_ASSERT_EQUAL(pm_client_set(c, key, (size_t)kl, "v", 1, 0), PM_CLIENT_E_LOG_FAILED);
		}
		pm_client_close(c);
		printf("\n  wal_io_uring = %s: LOG_FAILED, wal_refused_failed %lld", io,
		       lib_info_of(&p, "wal_refused_failed"));
	}
	CU_ASSERT(pomaid_stop(&p));
	proc_dir_remove(p.dir);
}

static void failed_batch(void)
{
	static const char *const args[] = { "--wal", "batch", NULL };
	struct pomaid p = { .path = pomaid_path, .flags = pomaid_flags };
	CU_ASSERT_FATAL(proc_dir_make(p.dir, "walio"));
	CU_ASSERT_FATAL(pomaid_start(&p, args, "POMAI_TEST_FSYNC=fail"));
	if (hook_on(&p, "fail")) {
		struct pm_client *c = lib_open(&p, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
		CU_ASSERT_FATAL(c != NULL);
		enum pm_client_status st = PM_CLIENT_OK;
		uint32_t i = 0;
		char key[48];
		/* acknowledged at once, until the first batch fsync fails */
		for (; i < FAIL_BATCH_WRITES_MAX && st == PM_CLIENT_OK; i++) {
			int kl = snprintf(key, sizeof(key), "batch-%u", i);
			st = pm_client_set(c, key, (size_t)kl, "v", 1, 0);
			if (st == PM_CLIENT_OK)
				proc_pause_ms(1); /* the interval of this bounded loop */
		}
		printf("\n  batch: LOG_FAILED after %u writes", i);
		CU_ASSERT_EQUAL(st, PM_CLIENT_E_LOG_FAILED);
		pm_client_close(c);
	}
	CU_ASSERT(pomaid_stop(&p));
	proc_dir_remove(p.dir);
}

static void test_failed_fsync(void)
{
	proc_kill_all();
	failed_sync("yes");
	failed_sync("no");
	failed_batch();
}

/* ---------------------------------------------------------------- 3. segments ahead */

struct seg_count {
	unsigned wal, spare, spare_ready; /* segments, spares, spares allocated in full */
};

/* What shard's log directory holds; *bad counts segments that are not whole. */
static struct seg_count segs_of(const char *data, uint32_t shard, unsigned *bad)
{
	struct seg_count n = { 0 };
	char dir[PATH_MAX], path[PATH_MAX + NAME_MAX + 2];
	snprintf(dir, sizeof(dir), "%s/wal/shard-%u", data, shard);
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		const char *dot = strrchr(e->d_name, '.');
		struct stat sb;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!dot || lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
			continue;
		bool full = sb.st_size >= SEGMENT_BYTES && (uint64_t)sb.st_blocks * 512u >= SEGMENT_BYTES;
		if (!strcmp(dot, ".spare")) {
			n.spare++;
			n.spare_ready += full;
		} else if (!strcmp(dot, ".wal")) {
			uint8_t hdr[PM_WAL_SEGMENT_HEADER_BYTES];
			struct pm_wal_segment_header h;
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			bool ok = fd >= 0 && read(fd, hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr) &&
				  pm_wal_segment_header_decode(hdr, sizeof(hdr), &h) == PM_OK &&
				  h.shard == shard && full;
			if (fd >= 0)
				close(fd);
			n.wal++;
			*bad += !ok;
		}
	}
	if (d)
		closedir(d);
	return n;
}

/* Every shard: at least `wal` whole segments and a spare allocated in full. */
static bool segments_ready(const char *data, unsigned wal)
{
	bool ok = true;
	for (uint32_t i = 0; i < POMAID_SHARDS_DEFAULT; i++) {
		unsigned bad = 0;
		struct seg_count n = segs_of(data, i, &bad);
		if (n.wal < wal || bad || n.spare_ready < 1) {
			printf("\n  shard %u: %u segments (%u not whole), %u spares (%u allocated)", i,
			       n.wal, bad, n.spare, n.spare_ready);
			ok = false;
		}
	}
	return ok;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* One SET at a time, each timed: printed as the first, median, p99, max. */
static void first_writes(struct pm_client *c)
{
	static uint64_t us[LATENCY_WRITES];
	char key[48];
	for (uint32_t i = 0; i < LATENCY_WRITES; i++) {
		int kl = snprintf(key, sizeof(key), "lat-%u", i);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		CU_ASSERT_EQUAL(pm_client_set(c, key, (size_t)kl, "first", 5, 0), PM_CLIENT_OK);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		us[i] = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
	}
	uint64_t first = us[0], second = us[1];
	qsort(us, LATENCY_WRITES, sizeof(us[0]), cmp_u64);
	printf("\n  first writes (sync, one at a time): 1st %" PRIu64 " us, 2nd %" PRIu64
	       " us; of %u: median %" PRIu64 " us, p99 %" PRIu64 " us, max %" PRIu64 " us",
	       first, second, LATENCY_WRITES, us[LATENCY_WRITES / 2], us[LATENCY_WRITES * 99 / 100],
	       us[LATENCY_WRITES - 1]);
}

static void on_set(void *arg, const struct pm_client_result *res)
{
	uint32_t *failed = arg;
	*failed += res->status != PM_CLIENT_OK;
}

/* Pipelined SETs of ROLL_VALUE_BYTES until every shard's log has rolled over. */
static bool roll_over(const struct pomaid *p, struct pm_client *c)
{
	static uint8_t value[ROLL_VALUE_BYTES];
	uint32_t failed = 0;
	char key[48];
	for (uint32_t i = 0, per_check = (2u * SEGMENT_BYTES) / ROLL_VALUE_BYTES; failed == 0; i++) {
		if (i % per_check == 0) {
			pm_client_drain(c);
			unsigned least = UINT32_MAX, bad = 0;
			for (uint32_t s = 0; s < POMAID_SHARDS_DEFAULT; s++) {
				unsigned n = segs_of(p->dir, s, &bad).wal;
				least = n < least ? n : least;
			}
			if (least >= 2)
				return true;
			if (i >= 4 * per_check)
				return false;
		}
		int kl = snprintf(key, sizeof(key), "roll-%u", i);
		memset(value, (int)i, sizeof(value));
		struct pm_client_req q = { .op = PM_CLIENT_SET, .key = key, .klen = (uint32_t)kl,
					   .value = value, .vlen = sizeof(value), .cb = on_set,
					   .arg = &failed };
		failed += pm_client_submit(c, &q, NULL) != PM_CLIENT_OK; /* waits for a free slot */
	}
	pm_client_drain(c);
	return false;
}

static void test_segments_ahead(void)
{
	proc_kill_all();
	static const char *const args[] = { "--wal", "sync", NULL };
	struct pomaid p = { .path = pomaid_path, .flags = pomaid_flags };
	CU_ASSERT_FATAL(proc_dir_make(p.dir, "walio"));
	CU_ASSERT_FATAL(pomaid_start(&p, args, NULL));
	/* ready: the first segment and the next one, before any write */
	CU_ASSERT(segments_ready(p.dir, 1));
	CU_ASSERT_EQUAL(lib_info_of(&p, "wal_segments_ready"), POMAID_SHARDS_DEFAULT);
	CU_ASSERT_EQUAL(lib_info_of(&p, "wal_segments_created"), POMAID_SHARDS_DEFAULT);
	struct pm_client *c = lib_open(&p, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
	CU_ASSERT_FATAL(c != NULL);
	first_writes(c);
	/* the log rolls over into the prepared segment; the next is prepared again */
	CU_ASSERT_FATAL(roll_over(&p, c));
	CU_ASSERT(lib_info_reaches(&p, "wal_segments_ready", POMAID_SHARDS_DEFAULT, WAIT_MS));
	CU_ASSERT(segments_ready(p.dir, 2));
	printf("\n  rolled over: %lld segments made, %lld batches waited for one",
	       lib_info_of(&p, "wal_segments_created"), lib_info_of(&p, "wal_segment_waits"));
	pm_client_close(c);
	CU_ASSERT(pomaid_stop(&p));
	/* a restart appends to the last segment and prepares the next again */
	CU_ASSERT_FATAL(pomaid_start(&p, args, NULL));
	CU_ASSERT(lib_info_reaches(&p, "wal_segments_ready", POMAID_SHARDS_DEFAULT, WAIT_MS));
	CU_ASSERT(segments_ready(p.dir, 2));
	CU_ASSERT(pomaid_stop(&p));
	proc_dir_remove(p.dir);
}

/* ---------------------------------------------------------------- 4. an unborn segment */

static void test_unborn_segment(void)
{
	proc_kill_all();
	static const char *const args[] = { "--wal", "sync", NULL };
	struct pomaid p = { .path = pomaid_path, .flags = pomaid_flags };
	char path[PATH_MAX + 64];
	CU_ASSERT_FATAL(proc_dir_make(p.dir, "walio"));
	CU_ASSERT_FATAL(pomaid_start(&p, args, NULL));
	struct pm_client *c = lib_open(&p, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
	CU_ASSERT_FATAL(c != NULL);
	CU_ASSERT_EQUAL(pm_client_set(c, "kept", 4, "v", 1, 0), PM_CLIENT_OK);
	pm_client_close(c);
	CU_ASSERT(pomaid_stop(&p));
	/* each shard: a segment after its last, named but all zeros (its header
	 * never reached the disk) */
	for (uint32_t i = 0; i < POMAID_SHARDS_DEFAULT; i++) {
		snprintf(path, sizeof(path), "%s/wal/shard-%u/00000000000000000009.wal", p.dir, i);
		int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0640);
		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT(fallocate(fd, 0, 0, SEGMENT_BYTES) == 0);
		close(fd);
	}
	bool started = pomaid_start(&p, args, NULL);
	if (!started)
		printf("\n  refused: %s", p.proc.out);
	CU_ASSERT_FATAL(started);
	CU_ASSERT(strstr(p.proc.out, "00000000000000000009.wal: no header and no records") != NULL);
	for (uint32_t i = 0; i < POMAID_SHARDS_DEFAULT; i++) {
		snprintf(path, sizeof(path), "%s/wal/shard-%u/00000000000000000009.wal", p.dir, i);
		CU_ASSERT(access(path, F_OK) != 0);
	}
	c = lib_open(&p, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
	CU_ASSERT_FATAL(c != NULL);
	char v[8];
	size_t vlen = 0;
	CU_ASSERT_EQUAL(pm_client_get(c, "kept", 4, v, sizeof(v), &vlen), PM_CLIENT_OK);
	pm_client_close(c);
	CU_ASSERT(pomaid_stop(&p));
	proc_dir_remove(p.dir);
}

/* ---------------------------------------------------------------- 5. written ahead */

/* Key i's value: its number, then bytes that depend on it and the offset. */
static void ahead_value(uint32_t i, uint8_t *v)
{
	memcpy(v, &i, sizeof(i));
	for (uint32_t j = sizeof(i); j < ROLL_VALUE_BYTES; j++)
		v[j] = (uint8_t)(i * 31u + j * 7u);
}

/* Submit SET "<prefix>-<i>" of ahead_value(i), its completion counted into
 * *failed (on_set); false if the submit itself failed. */
static bool submit_ahead(struct pm_client *c, const char *prefix, uint32_t i, uint32_t *failed)
{
	static uint8_t value[ROLL_VALUE_BYTES];
	char key[48];
	int kl = snprintf(key, sizeof(key), "%s-%u", prefix, i);
	ahead_value(i, value);
	struct pm_client_req q = { .op = PM_CLIENT_SET, .key = key, .klen = (uint32_t)kl,
				   .value = value, .vlen = sizeof(value), .cb = on_set, .arg = failed };
	return pm_client_submit(c, &q, NULL) == PM_CLIENT_OK;
}

/* Pipelined SETs of distinct values until every shard holds AHEAD_SEGMENTS
 * segments; the number of keys written, or 0. */
static uint32_t write_ahead(const struct pomaid *p, struct pm_client *c)
{
	uint32_t failed = 0, per_check = SEGMENT_BYTES / ROLL_VALUE_BYTES;
	for (uint32_t i = 0; failed == 0; i++) {
		if (i % per_check == 0) {
			pm_client_drain(c);
			unsigned least = UINT32_MAX, bad = 0;
			for (uint32_t s = 0; s < POMAID_SHARDS_DEFAULT; s++) {
				unsigned n = segs_of(p->dir, s, &bad).wal;
				least = n < least ? n : least;
			}
			if (least >= AHEAD_SEGMENTS)
				return i;
			if (i >= 4u * AHEAD_SEGMENTS * POMAID_SHARDS_DEFAULT * per_check)
				return 0;
		}
		failed += !submit_ahead(c, "ahead", i, &failed);
	}
	pm_client_drain(c);
	return 0;
}

static void test_written_ahead(void)
{
	proc_kill_all();
	static const char *const ring[] = { "--wal", "sync", "--wal-io-uring", "yes", NULL };
	static const char *const autom[] = { "--wal", "sync", NULL };
	struct pomaid p = { .path = pomaid_path, .flags = pomaid_flags };
	CU_ASSERT_FATAL(proc_dir_make(p.dir, "walio"));
	CU_ASSERT_FATAL(pomaid_start(&p, ring, NULL));
	struct pm_client *c = lib_open(&p, LIB_TIMEOUT_MS, LIB_RETRIES, 64);
	CU_ASSERT_FATAL(c != NULL);
	uint32_t n = write_ahead(&p, c);
	CU_ASSERT_FATAL(n > 0);
	long long filled = lib_info(c, NULL, NULL, "wal_fill_bytes");
	printf("\n  %u values over %u segments per shard; %lld bytes written ahead, %lld batches"
	       " waited for a fill", n, AHEAD_SEGMENTS, filled,
	       lib_info(c, NULL, NULL, "wal_fill_waits"));
	/* each shard: its first segment and every one prepared since, at least */
	CU_ASSERT(filled >= (long long)AHEAD_SEGMENTS * POMAID_SHARDS_DEFAULT * FILL_AHEAD_BYTES);
	pm_client_close(c);
	CU_ASSERT(pomaid_stop(&p));
	/* restarted with the default (auto): every value is there */
	CU_ASSERT_FATAL(pomaid_start(&p, autom, NULL));
	CU_ASSERT(strstr(p.proc.out, "wal_io_uring = auto: a write + fdatasync takes") != NULL);
	c = lib_open(&p, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
	CU_ASSERT_FATAL(c != NULL);
	CU_ASSERT(lib_info(c, NULL, NULL, "wal_io_probe_uring_us") > 0);
	CU_ASSERT(lib_info(c, NULL, NULL, "wal_io_probe_pwrite_us") > 0);
	static uint8_t want[ROLL_VALUE_BYTES], got[ROLL_VALUE_BYTES];
	uint32_t wrong = 0;
	for (uint32_t i = 0; i < n; i++) {
		char key[48];
		int kl = snprintf(key, sizeof(key), "ahead-%u", i);
		size_t len = 0;
		ahead_value(i, want);
		enum pm_client_status st = pm_client_get(c, key, (size_t)kl, got, sizeof(got), &len);
		bool ok = st == PM_CLIENT_OK && len == sizeof(want) && !memcmp(got, want, len);
		if (!ok && wrong++ < 5)
			printf("\n  %s: status %d, %zu bytes%s", key, (int)st, len,
			       st == PM_CLIENT_OK ? " (not its value)" : "");
	}
	CU_ASSERT_EQUAL(wrong, 0);
	pm_client_close(c);
	CU_ASSERT(pomaid_stop(&p));
	proc_dir_remove(p.dir);
}

/* ---------------------------------------------------------------- 6. auto under load */

/* How many shards' INFO says "wal_io:<way>". */
static uint32_t shards_writing(const char *text, const char *way)
{
	char line[48];
	uint32_t n = 0;
	snprintf(line, sizeof(line), "\nwal_io:%s\r", way);
	for (const char *at = text; (at = strstr(at, line)) != NULL; at++)
		n++;
	return n;
}

static void adapted(const char *hook, const char *want)
{
	static const char *const args[] = { "--wal", "sync", NULL };
	struct pomaid p = { .path = pomaid_path, .flags = pomaid_flags };
	char env[64];
	snprintf(env, sizeof(env), "POMAI_TEST_WAL_ADAPT=%s", hook);
	CU_ASSERT_FATAL(proc_dir_make(p.dir, "walio"));
	CU_ASSERT_FATAL(pomaid_start(&p, args, env));
	if (has_hook(&p, "count as 50 ms slower", "adapt")) { /* POMAI_TEST_WAL_ADAPT's line */
		struct pm_client *c = lib_open(&p, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
		CU_ASSERT_FATAL(c != NULL);
		char key[48];
		for (uint32_t i = 0; i < ADAPT_WRITES_PER_SHARD * POMAID_SHARDS_DEFAULT; i++) {
			int kl = snprintf(key, sizeof(key), "adapt-%u", i);
			CU_ASSERT_EQUAL_FATAL(pm_client_set(c, key, (size_t)kl, "v", 1, 0), PM_CLIENT_OK);
		}
		char *text = lib_info_text(c, NULL);
		CU_ASSERT_FATAL(text != NULL);
		uint32_t n = shards_writing(text, want);
		printf("\n  %s: %u of %u shards write their batches with %s; probe (us): io_uring"
		       " %lld, pwrite %lld; switches %lld", hook, n, POMAID_SHARDS_DEFAULT, want,
		       info_text_field(text, NULL, "wal_io_probe_uring_us"),
		       info_text_field(text, NULL, "wal_io_probe_pwrite_us"),
		       info_text_field(text, NULL, "wal_io_switches"));
		CU_ASSERT_EQUAL(n, POMAID_SHARDS_DEFAULT);
		free(text);
		pm_client_close(c);
	}
	CU_ASSERT(pomaid_stop(&p));
	proc_dir_remove(p.dir);
}

static void test_auto_adapts(void)
{
	proc_kill_all();
	adapted("ring_slow", "pwrite");
	adapted("pwrite_slow", "io_uring");
}

/* ---------------------------------------------------------------- 8. overlapped fdatasyncs */

/* PM_WAL_SYNCS_BEHIND_MAX (wal_io.h): batches written whose fdatasync has not completed. */
#define SYNCS_BEHIND_MAX 2

/* The replies read from one socket (a datagram may hold several frames). */
struct replies {
	struct wire *r;
	size_t at, have;
};

/* A SET to shard 0 on the raw socket; its id. */
static uint64_t overlap_set(struct replies *rp, struct pm_client *c, unsigned *n)
{
	static const uint8_t value[100];
	char key[48];
	size_t len = 0;
	int kl = key_on(c, 0, "overlap", n, key);
	struct pm_request set = { .op = PM_OP_SET, .key = { (const uint8_t *)key, (uint32_t)kl },
				  .value = { value, sizeof(value) } };
	raw_add(rp->r, &set, &len);
	raw_send(rp->r, 0, len);
	return set.id;
}

/* Wait for the replies to ids[0..n) (their statuses into st); false if one
 * did not come in WAIT_MS or a reply to anything else came first. */
static bool overlap_replies(struct replies *rp, const uint64_t *ids, uint8_t *st, uint32_t n)
{
	struct pm_reply_view rv;
	uint32_t got = 0;
	while (got < n && raw_next(rp->r, WAIT_MS, &rp->at, &rp->have, &rv)) {
		uint32_t i = 0;
		while (i < n && ids[i] != rv.id)
			i++;
		if (i == n) {
			printf("\n  an early reply: id %" PRIu64, rv.id);
			return false;
		}
		st[i] = rv.status;
		got++;
	}
	return got == n;
}

/* A GET to shard 0 on the same socket: answered before any held SET. */
static bool overlap_get(struct replies *rp)
{
	size_t len = 0;
	uint8_t st;
	struct pm_request get = { .op = PM_OP_GET, .key = { (const uint8_t *)"none", 4 } };
	raw_add(rp->r, &get, &len);
	raw_send(rp->r, 0, len);
	return overlap_replies(rp, &get.id, &st, 1);
}

/* One SIGUSR1 or SIGUSR2 (the hook's step), once INFO shows held at least
 * `held` fdatasync completions. */
static void overlap_step(const struct pomaid *p, int sig, long long held)
{
	CU_ASSERT_FATAL(lib_info_reaches(p, "wal_test_fsync_held", held, WAIT_MS));
	kill(p->proc.pid, sig);
}

/* wal_sync_overlap = yes: B written while A's fdatasync runs; the failure. */
static void overlap_on(const struct pomaid *p, struct replies *rp, struct pm_client *c,
		       unsigned *n, long long w0)
{
	uint64_t ids[SYNCS_BEHIND_MAX + 1];
	uint8_t st[SYNCS_BEHIND_MAX + 1] = { 0 };
	for (uint32_t i = 0; i < SYNCS_BEHIND_MAX + 1; i++) {
		ids[i] = overlap_set(rp, c, n);
		if (i < SYNCS_BEHIND_MAX) /* written while the fdatasyncs before it are held */
			CU_ASSERT_FATAL(lib_info_reaches(p, "wal_written_lsn", w0 + i + 1, WAIT_MS));
	}
	/* the third is applied (the GET after it is answered) but not submitted:
	 * two batches are behind; none of the SETs is answered */
	CU_ASSERT_FATAL(overlap_get(rp));
	CU_ASSERT_EQUAL(lib_info_of(p, "wal_submitted_lsn"), w0 + SYNCS_BEHIND_MAX);
	CU_ASSERT_EQUAL(lib_info_of(p, "wal_written_lsn"), w0 + SYNCS_BEHIND_MAX);
	CU_ASSERT_EQUAL(lib_info_of(p, "wal_held"), SYNCS_BEHIND_MAX + 1);
	CU_ASSERT(lib_info_of(p, "wal_sync_overlaps") >= 1);
	/* A's fdatasync completes: A is answered, B waits for its own */
	overlap_step(p, SIGUSR1, SYNCS_BEHIND_MAX);
	CU_ASSERT_FATAL(overlap_replies(rp, ids, st, 1));
	CU_ASSERT_EQUAL(st[0], PM_WIRE_OK);
	CU_ASSERT_EQUAL(lib_info_of(p, "wal_held"), SYNCS_BEHIND_MAX);
	/* the third is written now, while B's fdatasync is held */
	CU_ASSERT(lib_info_reaches(p, "wal_written_lsn", w0 + SYNCS_BEHIND_MAX + 1, WAIT_MS));
	/* B's fails: B and the third LOG_FAILED, though the third's then succeeds */
	overlap_step(p, SIGUSR2, SYNCS_BEHIND_MAX);
	CU_ASSERT(overlap_replies(rp, ids + 1, st + 1, SYNCS_BEHIND_MAX));
	for (uint32_t i = 1; i < SYNCS_BEHIND_MAX + 1; i++)
		CU_ASSERT_EQUAL(st[i], PM_WIRE_E_LOG_FAILED);
	overlap_step(p, SIGUSR1, 1);
	CU_ASSERT(lib_info_reaches(p, "wal_fsyncs", 3, WAIT_MS)); /* warm-up, A, the third */
	uint64_t later = overlap_set(rp, c, n);
	CU_ASSERT(overlap_replies(rp, &later, st, 1));
	CU_ASSERT_EQUAL(st[0], PM_WIRE_E_LOG_FAILED);
	printf("\n  wal_sync_overlap = yes: B written while A's fdatasync ran; %lld overlaps",
	       lib_info_of(p, "wal_sync_overlaps"));
}

/* wal_sync_overlap = no: B is not written while A's fdatasync is held. */
static void overlap_off(const struct pomaid *p, struct replies *rp, struct pm_client *c,
			unsigned *n, long long w0)
{
	uint64_t ids[2];
	uint8_t st[2] = { 0 };
	ids[0] = overlap_set(rp, c, n);
	CU_ASSERT_FATAL(lib_info_reaches(p, "wal_test_fsync_held", 1, WAIT_MS)); /* A written */
	ids[1] = overlap_set(rp, c, n);
	CU_ASSERT_FATAL(overlap_get(rp)); /* B applied; its batch waits for A's fdatasync */
	CU_ASSERT_EQUAL(lib_info_of(p, "wal_submitted_lsn"), w0 + 1);
	CU_ASSERT_EQUAL(lib_info_of(p, "wal_sync_overlaps"), 0);
	overlap_step(p, SIGUSR1, 1);
	CU_ASSERT_FATAL(overlap_replies(rp, ids, st, 1));
	CU_ASSERT(lib_info_reaches(p, "wal_submitted_lsn", w0 + 2, WAIT_MS));
	overlap_step(p, SIGUSR1, 1);
	CU_ASSERT_FATAL(overlap_replies(rp, ids + 1, st + 1, 1));
	CU_ASSERT(st[0] == PM_WIRE_OK && st[1] == PM_WIRE_OK);
	printf("\n  wal_sync_overlap = no: B written after A's fdatasync");
}

static void overlapped(const char *overlap)
{
	const char *args[] = { "--wal", "sync", "--wal-io-uring", "yes", "--wal-sync-overlap",
			       overlap, NULL };
	struct pomaid p = { .path = pomaid_path, .flags = pomaid_flags };
	struct wire r;
	CU_ASSERT_FATAL(proc_dir_make(p.dir, "walio"));
	CU_ASSERT_FATAL(pomaid_start(&p, args, "POMAI_TEST_FSYNC=step"));
	if (hook_on(&p, "step")) {
		struct pm_client *c = lib_open(&p, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
		CU_ASSERT_FATAL(c != NULL && raw_open(&r, &p));
		struct replies rp = { .r = &r };
		unsigned n = 0;
		uint8_t st = 0;
		/* the first batch's chain also fsyncs the directory (a new
		 * segment's name), which never overlaps: written first */
		uint64_t id = overlap_set(&rp, c, &n);
		overlap_step(&p, SIGUSR1, 1);
		CU_ASSERT_FATAL(overlap_replies(&rp, &id, &st, 1));
		CU_ASSERT_EQUAL(st, PM_WIRE_OK);
		long long w0 = lib_info_of(&p, "wal_written_lsn");
		if (!strcmp(overlap, "yes"))
			overlap_on(&p, &rp, c, &n, w0);
		else
			overlap_off(&p, &rp, c, &n, w0);
		pm_client_close(c);
		wire_close(&r);
	}
	CU_ASSERT(pomaid_stop(&p));
	proc_dir_remove(p.dir);
}

static void test_overlapped_syncs(void)
{
	proc_kill_all();
	overlapped("yes");
	overlapped("no");
}

/* ---------------------------------------------------------------- 9. a write without room */

/* Batch writes each shard's hook fails with ENOSPC before one goes through:
 * the disk full twice, then room. */
#define ENOSPC_WRITES 2u
/* How often the log tries a refused batch again (dataplane/wal_io.h's
 * PM_WAL_RETRY_MS). */
#define WAL_RETRY_MS 1000u
/* The client waits that long for the SET: the log retries every
 * WAL_RETRY_MS, so ENOSPC_WRITES retries and a margin. */
#define ENOSPC_REPLY_MS 15000u

static void enospc_write(const char *io)
{
	const char *args[] = { "--wal", "sync", "--wal-io-uring", io, NULL };
	char env[64], line[96];
	struct pomaid p = { .path = pomaid_path, .flags = pomaid_flags };
	snprintf(env, sizeof(env), "POMAI_TEST_WAL_ENOSPC=%u", ENOSPC_WRITES);
	snprintf(line, sizeof(line), "TEST HOOK POMAI_TEST_WAL_ENOSPC=%u", ENOSPC_WRITES);
	CU_ASSERT_FATAL(proc_dir_make(p.dir, "walio"));
	CU_ASSERT_FATAL(pomaid_start(&p, args, env));
	if (has_hook(&p, line, "ENOSPC")) {
		struct pm_client *c = lib_open(&p, ENOSPC_REPLY_MS, 0, 0);
		CU_ASSERT_FATAL(c != NULL);
		char key[48], buf[8];
		unsigned n = 0;
		size_t vlen = 0;
		int kl = key_on(c, 0, "full", &n, key);
		uint64_t t0 = proc_now_ms();
		enum pm_client_status st = pm_client_set(c, key, (size_t)kl, "v", 1, 0);
		uint64_t ms = proc_now_ms() - t0;
		printf("\n  wal_io_uring = %s: the SET answered %s after %" PRIu64 " ms (%u writes"
		       " refused ENOSPC, retried every %u ms)", io, pm_client_status_name(st), ms,
		       ENOSPC_WRITES, WAL_RETRY_MS);
		CU_ASSERT_EQUAL(st, PM_CLIENT_OK);
		CU_ASSERT(ms >= (uint64_t)ENOSPC_WRITES * WAL_RETRY_MS / 2u); /* it did wait */
		CU_ASSERT_EQUAL(pm_client_get(c, key, (size_t)kl, buf, sizeof(buf), &vlen), PM_CLIENT_OK);
		CU_ASSERT(vlen == 1 && buf[0] == 'v');
		/* room again: the next write goes through at once */
		kl = key_on(c, 0, "full", &n, key);
		CU_ASSERT_EQUAL(pm_client_set(c, key, (size_t)kl, "w", 1, 0), PM_CLIENT_OK);
		pm_client_close(c);
	}
	CU_ASSERT(pomaid_stop(&p));
	proc_dir_remove(p.dir);
}

/* 9. A batch write the disk refuses (ENOSPC) waits for room: retried every
 * WAL_RETRY_MS, its reply held, and acknowledged once a retry goes
 * through; writes after it go at once. It was never acknowledged before: the
 * retry's completions were not looked at while the log said the disk was
 * full. With io_uring and with pwrite. */
static void test_enospc_write(void)
{
	enospc_write("yes");
	enospc_write("no");
}

/* ---------------------------------------------------------------- 7. the snapshot's pace */

#define PACE_BYTES_PER_S (1u << 20)
/* Data per shard: a few seconds of the pace past its one-second lead. */
#define PACE_BYTES_PER_SHARD (3u << 20)

static void test_snapshot_pace(void)
{
	proc_kill_all();
	static const char *const args[] = { "--wal", "batch", "--snapshot-interval-s", "0",
					    "--snapshot-wal-bytes", "0",
					    "--snapshot-write-bytes-per-s", "1M", NULL };
	struct pomaid p = { .path = pomaid_path, .flags = pomaid_flags };
	CU_ASSERT_FATAL(proc_dir_make(p.dir, "walio"));
	CU_ASSERT_FATAL(pomaid_start(&p, args, NULL));
	struct pm_client *c = lib_open(&p, LIB_TIMEOUT_MS, LIB_RETRIES, 64);
	CU_ASSERT_FATAL(c != NULL);
	uint32_t failed = 0, n = POMAID_SHARDS_DEFAULT * PACE_BYTES_PER_SHARD / ROLL_VALUE_BYTES;
	for (uint32_t i = 0; i < n; i++)
		failed += !submit_ahead(c, "pace", i, &failed);
	pm_client_drain(c);
	CU_ASSERT_FATAL(failed == 0);

	CU_ASSERT_FATAL(lib_snapshot(&p));
	CU_ASSERT_FATAL(lib_info_until(c, NULL, "snapshots_completed", POMAID_SHARDS_DEFAULT,
				       LIB_INFO_WAIT_MS) >= POMAID_SHARDS_DEFAULT);
	for (uint32_t s = 0; s < POMAID_SHARDS_DEFAULT; s++) {
		char part[32];
		snprintf(part, sizeof(part), "@shard:%u\r\n", s);
		long long bytes = lib_info(c, "dataplane", part, "snapshot_last_bytes");
		long long ms = lib_info(c, "dataplane", part, "snapshot_last_ms");
		long long waits = lib_info(c, "dataplane", part, "snapshot_pace_waits");
		/* the last slice left once the bytes before it were within the
		 * pace's line plus its lead: bytes <= rate * t + lead + a slice */
		long long floor_ms = (bytes - 2ll * PACE_BYTES_PER_S) * 1000ll / PACE_BYTES_PER_S;
		printf("\n  shard %u: %lld bytes in %lld ms (no sooner than %lld), %lld waits", s,
		       bytes, ms, floor_ms, waits);
		CU_ASSERT(bytes >= (long long)PACE_BYTES_PER_SHARD / 2);
		CU_ASSERT(ms >= floor_ms);
		CU_ASSERT(waits >= 1);
	}
	/* off while running: the next snapshot waits for nothing */
	long long waits0 = lib_info(c, "dataplane", NULL, "snapshot_pace_waits");
	char sock[PATH_MAX + 16], said[256];
	snprintf(sock, sizeof(sock), "%s/admin.sock", p.dir);
	CU_ASSERT_EQUAL(ctl_admin(sock, "CONFIG SET snapshot_write_bytes_per_s 0", said,
				  sizeof(said)), 0);
	CU_ASSERT_FATAL(lib_snapshot(&p));
	CU_ASSERT(lib_info_until(c, NULL, "snapshots_completed", 2 * POMAID_SHARDS_DEFAULT,
				 LIB_INFO_WAIT_MS) >= 2 * POMAID_SHARDS_DEFAULT);
	CU_ASSERT_EQUAL(lib_info(c, "dataplane", NULL, "snapshot_pace_waits"), waits0);
	pm_client_close(c);
	CU_ASSERT(pomaid_stop(&p));
	proc_dir_remove(p.dir);
}

int main(int argc, char **argv)
{
	if (argc < 2 || access(argv[1], X_OK) != 0) {
		fprintf(stderr, "test_wal_io: no pomaid to run (usage: test_wal_io PATH-TO-POMAID)\n");
		return PM_TEST_SKIP;
	}
	pomaid_path = argv[1];
	static CU_TestInfo tests[] = {
		{ "1. sync: no reply before its fsync completes (stalled fsyncs)", test_stalled_fsync },
		{ "2. a failed fsync is never acknowledged", test_failed_fsync },
		{ "3. first segment and the next are ready before they are needed", test_segments_ahead },
		{ "4. a segment cut short by a crash mid-switch is removed at start", test_unborn_segment },
		{ "5. sync mode writes ahead of the log; every record survives", test_written_ahead },
		{ "6. wal_io_uring = auto goes on choosing under load", test_auto_adapts },
		{ "7. a snapshot keeps its pace; none with the pace off", test_snapshot_pace },
		{ "8. sync: the next batch is written while an fdatasync runs; nothing early",
		  test_overlapped_syncs },
		{ "9. a batch write refused ENOSPC is retried and acknowledged once it goes",
		  test_enospc_write },
		CU_TEST_INFO_NULL,
	};
	int rc = pm_cu_run("wal_io", tests);
	proc_kill_all();
	return rc;
}
