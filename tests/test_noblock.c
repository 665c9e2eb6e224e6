/* SPDX-License-Identifier: MIT
 *
 * test_noblock.c — issue 20: a polling worker never waits for the file
 * system. pomaid runs under strace (ptrace, with a seccomp-bpf filter so that
 * only the calls below stop the process) while its log rolls over to new
 * segments, snapshots are taken and published, the segments they cover are
 * kept as spares and reused, and the snapshots they replace are deleted —
 * every file-system step a running node takes without replication. Then no
 * line of the trace may show a worker thread (named pomai-w<i>) making one of
 * those calls, up to its exit: with io_uring each is a request to the
 * worker's ring, run by the kernel's io-wq workers — at shutdown too, where
 * a worker drains its log and its last fdatasync goes through the ring.
 *
 * The scenario is checked too (INFO: segments switched, retired and reused;
 * snapshots published; one snapshot file left per shard), and the trace must
 * hold the calls the other threads made at start-up (the data directory's
 * files opened), so a trace that saw nothing cannot pass.
 *
 * The second test does the same for replication (repl_disk.c): a replica,
 * traced, starts empty and follows a primary that has data, so it takes a
 * full sync (the image received into a file, synced, checked, installed:
 * HISTORY removed, the log restarted, the image published and loaded, the
 * new HISTORY saved); the primary is promoted, so the replica resyncs
 * partially under a new history id (HISTORY saved again); then the replica
 * is promoted (HISTORY once more, answered once durable). Checked: the full
 * syncs received, the keys on the replica, the epochs, the roles, and the
 * HISTORY files holding the ids INFO says.
 *
 * Needs strace (Debian's; scripts/deps.sh installs it); without it the suite
 * exits 77, never under CI=true.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "cu_main.h"
#include "libclient.h"
#include "pomai.h"
#include "proc.h"

#define SHARDS 2u
/* The smallest segment pomaid accepts, so the log rolls over quickly. */
#define SEGMENT_FLAG "16M"
#define SEGMENT_BYTES (16u << 20)
/* Rounds of writes, each followed by a snapshot: the second retires what the
 * first covered and deletes the first snapshot; the third reuses spares. */
#define ROUNDS 3u
/* Each round writes this much per shard (well past a segment), as values of
 * VALUE_BYTES over KEYS keys (the arena holds them many times over). */
#define ROUND_BYTES_PER_SHARD (SEGMENT_BYTES + SEGMENT_BYTES / 2u)
#define VALUE_BYTES 8000u
#define KEYS 512u
#define IN_FLIGHT 64u
/* The calls a polling worker must not make. */
#define TRACED "unlink,unlinkat,rename,renameat,renameat2,open,openat,creat,fsync,fdatasync," \
	       "sync_file_range,fallocate,ftruncate"
#define TRACE_LINE_BYTES 4096u
/* The path of a traced pomaid's trace: its directory's, with ".trace". */
#define TRACE_PATH_BYTES (PATH_MAX + 16)
#define WORKERS_MAX 64u
/* The replication test: keys the primary holds before the replica starts
 * (its full sync carries them: about 1.5 MB per shard, a few SNAP_DATA
 * frames each) and keys written after each resync (streamed), their values'
 * bytes, and how long the replica may take to reach each state (a bound on
 * a loaded machine, not a delay). */
#define REPL_KEYS 1500u
#define REPL_MORE_KEYS 200u
#define REPL_VALUE_BYTES 2000u
#define REPL_WAIT_MS 30000
#define HISTORY_BYTES 256u

static const char *pomaid_path;

static bool have_strace(void)
{
	struct proc p;
	proc_init(&p, "strace");
	proc_arg(&p, "-V");
	char out[256];
	return proc_run(&p, NULL, out, sizeof(out), 10000) == 0;
}

/* The pid of the one child of the tracer: pomaid. */
static pid_t tracee_of(pid_t tracer)
{
	char path[64], buf[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)tracer, (int)tracer);
	FILE *f = fopen(path, "r");
	pid_t pid = 0;
	if (f && fgets(buf, sizeof(buf), f))
		pid = (pid_t)strtol(buf, NULL, 10);
	if (f)
		fclose(f);
	return pid;
}

/* The thread ids of pomaid's workers (named pomai-w<i>): their count. */
static uint32_t worker_tids(pid_t pid, pid_t *out, uint32_t cap)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	uint32_t n = 0;
	for (struct dirent *e; d && (e = readdir(d)) != NULL && n < cap;) {
		if (e->d_name[0] == '.')
			continue;
		char cpath[sizeof(path) + sizeof(e->d_name) + 8], comm[32] = "";
		snprintf(cpath, sizeof(cpath), "%s/%s/comm", path, e->d_name);
		FILE *f = fopen(cpath, "r");
		if (f && fgets(comm, sizeof(comm), f) && !strncmp(comm, "pomai-w", 7))
			out[n++] = (pid_t)strtol(e->d_name, NULL, 10);
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

static bool is_worker(pid_t tid, const pid_t *w, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (w[i] == tid)
			return true;
	return false;
}

/* One round's writes: SETs of VALUE_BYTES, pipelined. */
static bool write_round(const struct pomaid *d, uint32_t round)
{
	struct pm_client *c = lib_open(d, LIB_TIMEOUT_MS, LIB_RETRIES, IN_FLIGHT);
	CU_ASSERT_FATAL(c != NULL);
	static uint8_t value[VALUE_BYTES];
	memset(value, 'a' + (int)round, sizeof(value));
	struct pipe p = { .c = c };
	uint32_t n = SHARDS * ROUND_BYTES_PER_SHARD / VALUE_BYTES;
	for (uint32_t i = 0; i < n; i++) {
		char key[32];
		int kl = snprintf(key, sizeof(key), "nb-%u", i % KEYS);
		struct pm_client_req r = { .op = PM_CLIENT_SET, .key = key, .klen = (uint32_t)kl,
					   .value = value, .vlen = sizeof(value) };
		pipe_submit(&p, &r);
	}
	bool ok = pipe_done(&p, "writes");
	pm_client_close(c);
	return ok;
}

static uint32_t files_with_suffix(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	uint32_t n = 0;
	size_t sl = strlen(suffix);
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		size_t l = strlen(e->d_name);
		n += l > sl && !strcmp(e->d_name + l - sl, suffix);
	}
	if (d)
		closedir(d);
	return n;
}

/* pomaid d started under strace (the trace into `trace`, d's directory
 * made with tag), with the flags of one start (extra); the traced pomaid's
 * pid, its workers' thread ids into workers (SHARDS of them). */
static pid_t traced_start(struct pomaid *d, const char *tag, char trace[TRACE_PATH_BYTES],
			  const char *const *extra, pid_t *workers)
{
	CU_ASSERT_FATAL(proc_dir_make(d->dir, tag));
	snprintf(trace, TRACE_PATH_BYTES, "%s.trace", d->dir);
	static const char *wrap[] = { "strace", "-f", "-qq", "--seccomp-bpf", "-o", NULL, "-e",
				      "trace=" TRACED, NULL };
	wrap[5] = trace;
	d->wrap = wrap;
	CU_ASSERT_FATAL(pomaid_start(d, extra, NULL));
	pid_t pid = tracee_of(d->proc.pid);
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_EQUAL_FATAL(worker_tids(pid, workers, WORKERS_MAX), SHARDS);
	return pid;
}

/* Stop the traced pomaid itself (the tracer follows it out), then read its
 * trace: no line may be a worker's call; other threads' calls must be
 * there (it was tracing). */
static void trace_check(struct pomaid *d, pid_t pid, const char *trace, const pid_t *workers)
{
	CU_ASSERT_FATAL(kill(pid, SIGTERM) == 0);
	CU_ASSERT(proc_wait(&d->proc, PROC_EXIT_WAIT_MS));
	FILE *f = fopen(trace, "r");
	CU_ASSERT_FATAL(f != NULL);
	char line[TRACE_LINE_BYTES];
	uint32_t lines = 0, others = 0, bad = 0;
	bool stopping = false;
	while (fgets(line, sizeof(line), f)) {
		pid_t tid = (pid_t)strtol(line, NULL, 10);
		const char *call = strchr(line, ' '); /* strace pads the pid: "%-5d " */
		if (!call)
			continue;
		while (*call == ' ')
			call++;
		stopping |= !strncmp(call, "--- SIGTERM", 11);
		if (!strncmp(call, "---", 3) || !strncmp(call, "+++", 3) || !strncmp(call, "<...", 4))
			continue;
		lines++;
		if (!is_worker(tid, workers, SHARDS)) {
			others++;
			continue;
		}
		if (bad++ < 10)
			printf("\n  a worker (tid %d) called%s: %.200s", (int)tid,
			       stopping ? " (stopping)" : "", call);
	}
	fclose(f);
	printf("\n  %u traced calls, %u by other threads, %u by workers", lines, others, bad);
	CU_ASSERT(others > 0); /* the tracer saw the start-up's opens: it was tracing */
	CU_ASSERT_EQUAL(bad, 0);
	unlink(trace);
}

static void test_workers_never_block(void)
{
	char trace[TRACE_PATH_BYTES];
	pid_t workers[WORKERS_MAX];
	struct pomaid d = { .path = pomaid_path, .shards = SHARDS };
	const char *flags[] = { "--wal", "batch", "--wal-segment-bytes", SEGMENT_FLAG,
				"--snapshot-interval-s", "0", "--snapshot-wal-bytes", "0", NULL };
	d.flags = flags;
	pid_t pid = traced_start(&d, "noblock", trace, NULL, workers);

	for (uint32_t r = 1; r <= ROUNDS; r++) {
		CU_ASSERT_FATAL(write_round(&d, r));
		CU_ASSERT_FATAL(lib_snapshot(&d));
		CU_ASSERT_FATAL(lib_info_reaches(&d, "snapshots_completed", (long long)(SHARDS * r),
						 LIB_INFO_WAIT_MS));
	}
	/* the scenario happened: switches, retirements, reuse */
	struct pm_client *c = lib_open(&d, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
	CU_ASSERT_FATAL(c != NULL);
	long long created = lib_info(c, NULL, NULL, "wal_segments_created");
	long long retired = lib_info(c, NULL, NULL, "wal_segments_retired");
	long long recycled = lib_info(c, NULL, NULL, "wal_segments_recycled");
	long long failed = lib_info(c, NULL, NULL, "snapshots_failed");
	pm_client_close(c);
	printf("\n  segments created %lld, retired %lld, recycled %lld; snapshots failed %lld",
	       created, retired, recycled, failed);
	CU_ASSERT(created >= (long long)(SHARDS * ROUNDS));
	CU_ASSERT(retired >= (long long)SHARDS);
	CU_ASSERT(recycled >= (long long)SHARDS);
	CU_ASSERT_EQUAL(failed, 0);

	/* the trace holds what the workers did, their drain at shutdown included */
	trace_check(&d, pid, trace, workers);
	for (uint32_t s = 0; s < SHARDS; s++) { /* the replaced snapshots are gone */
		char dir[PATH_MAX + 32];
		snprintf(dir, sizeof(dir), "%s/snap/shard-%u", d.dir, s);
		CU_ASSERT_EQUAL(files_with_suffix(dir, ".snap"), 1);
	}
	proc_dir_remove(d.dir);
}

/* ---------------------------------------------------------------- replication */

/* SET <prefix><i> = REPL_VALUE_BYTES bytes for i < n, pipelined: true if
 * every one was acknowledged. */
static bool keys_write(const struct pomaid *d, const char *prefix, uint32_t n)
{
	static uint8_t value[REPL_VALUE_BYTES];
	struct pipe p = { .c = lib_open(d, LIB_TIMEOUT_MS, LIB_RETRIES, IN_FLIGHT) };
	if (!p.c)
		return false;
	memset(value, prefix[0], sizeof(value));
	for (uint32_t i = 0; i < n; i++) {
		char key[32];
		int kl = snprintf(key, sizeof(key), "%s%u", prefix, i);
		struct pm_client_req r = { .op = PM_CLIENT_SET, .key = key, .klen = (uint32_t)kl,
					   .value = value, .vlen = sizeof(value) };
		pipe_submit(&p, &r);
	}
	bool ok = pipe_done(&p, prefix);
	pm_client_close(p.c);
	return ok;
}

/* How many of <prefix><i>, i < n, d holds, polled until all are there or
 * REPL_WAIT_MS passed (a replica applies them shortly after the primary). */
static uint32_t keys_reach(const struct pomaid *d, const char *prefix, uint32_t n)
{
	static uint8_t buf[REPL_VALUE_BYTES];
	uint64_t deadline = proc_now_ms() + REPL_WAIT_MS;
	uint32_t there = 0;
	for (;;) {
		struct pm_client *c = lib_open(d, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
		there = 0;
		for (uint32_t i = 0; c && i < n; i++) {
			char key[32];
			size_t len;
			int kl = snprintf(key, sizeof(key), "%s%u", prefix, i);
			there += pm_client_get(c, key, (size_t)kl, buf, sizeof(buf), &len) ==
					 PM_CLIENT_OK && len == REPL_VALUE_BYTES;
		}
		pm_client_close(c);
		if (there == n || proc_now_ms() >= deadline)
			return there;
		proc_pause_ms(PROC_POLL_MS);
	}
}

/* Every shard of d has `field` at least want (word NULL) or equal to word,
 * polled until REPL_WAIT_MS; said when not. */
static bool shards_reach(const struct pomaid *d, const char *field, long long want,
			 const char *word)
{
	uint64_t deadline = proc_now_ms() + REPL_WAIT_MS;
	for (;;) {
		struct pm_client *c = lib_open(d, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
		char *text = c ? lib_info_text(c, NULL) : NULL;
		pm_client_close(c);
		bool all = text != NULL;
		for (uint32_t s = 0; all && s < SHARDS; s++) {
			char part[32], got[64];
			snprintf(part, sizeof(part), "@shard:%u\r\n", s);
			all = word ? info_text_word(text, part, field, got, sizeof(got)) && !strcmp(got, word)
				   : info_text_field(text, part, field) >= want;
		}
		free(text);
		if (all || proc_now_ms() >= deadline) {
			if (!all)
				printf("\n  %s: %s did not reach %s%lld on every shard", d->dir, field,
				       word ? word : "", word ? 0 : want);
			return all;
		}
		proc_pause_ms(PROC_POLL_MS);
	}
}

/* Shard s's repl_id as INFO says it (hex), into out (32 bytes). */
static bool repl_id_of(const struct pomaid *d, uint32_t s, char *out)
{
	struct pm_client *c = lib_open(d, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
	char *text = c ? lib_info_text(c, NULL) : NULL;
	char part[32];
	snprintf(part, sizeof(part), "@shard:%u\r\n", s);
	bool ok = text && info_text_word(text, part, "repl_id", out, 32);
	free(text);
	pm_client_close(c);
	return ok;
}

/* Whether shard s's HISTORY file names history id (hex, as INFO has it). */
static bool history_has(const struct pomaid *d, uint32_t s, const char *id)
{
	char path[PATH_MAX + 64], line[HISTORY_BYTES] = "", want[HISTORY_BYTES];
	snprintf(path, sizeof(path), "%s/wal/shard-%u/HISTORY", d->dir, s);
	snprintf(want, sizeof(want), "id=%s ", id);
	FILE *f = fopen(path, "r");
	bool ok = f && fgets(line, sizeof(line), f) && !strncmp(line, want, strlen(want));
	if (f)
		fclose(f);
	if (!ok)
		printf("\n  %s: \"%.100s\", not %s", path, line, want);
	return ok;
}

static bool promote(const struct pomaid *d)
{
	static char out[CTL_OUT_BYTES];
	char sock[PATH_MAX + 16];
	snprintf(sock, sizeof(sock), "%s/admin.sock", d->dir);
	int rc = ctl_admin(sock, "REPLICATION PROMOTE", out, sizeof(out));
	if (rc != 0)
		printf("\n  REPLICATION PROMOTE on %s: %d: %.200s", d->dir, rc, out);
	return rc == 0;
}

static void test_replica_never_blocks(void)
{
	char trace[TRACE_PATH_BYTES], follow[32], id[SHARDS][32];
	pid_t workers[WORKERS_MAX];
	const char *flags[] = { "--wal", "batch", "--snapshot-interval-s", "0",
				"--snapshot-wal-bytes", "0", NULL };
	struct pomaid p = { .path = pomaid_path, .shards = SHARDS, .flags = flags, .repl = true };
	struct pomaid r = { .path = pomaid_path, .shards = SHARDS, .flags = flags };
	CU_ASSERT_FATAL(proc_dir_make(p.dir, "noblock-primary"));
	CU_ASSERT_FATAL(pomaid_start(&p, NULL, NULL));
	CU_ASSERT_FATAL(keys_write(&p, "full-", REPL_KEYS));
	/* the replica starts empty: a full sync of what the primary holds */
	snprintf(follow, sizeof(follow), "127.0.0.1:%u", p.repl_port);
	const char *extra[] = { "--replica-of", follow, NULL };
	pid_t pid = traced_start(&r, "noblock-replica", trace, extra, workers);
	CU_ASSERT_FATAL(shards_reach(&r, "repl_full_syncs_received", 1, NULL));
	CU_ASSERT_FATAL(shards_reach(&r, "repl_link", 0, "streaming"));
	uint32_t full = keys_reach(&r, "full-", REPL_KEYS);
	/* the primary is promoted (epoch 2, a new id): the replica resumes
	 * where it was, partially, under the new history */
	CU_ASSERT_FATAL(promote(&p));
	CU_ASSERT_FATAL(shards_reach(&p, "repl_partial_syncs", 1, NULL));
	CU_ASSERT_FATAL(shards_reach(&r, "repl_epoch", 2, NULL));
	CU_ASSERT_FATAL(shards_reach(&r, "repl_link", 0, "streaming"));
	CU_ASSERT_FATAL(keys_write(&p, "more-", REPL_MORE_KEYS));
	uint32_t more = keys_reach(&r, "more-", REPL_MORE_KEYS);
	long long fulls = lib_info_of(&r, "repl_full_syncs_received");
	/* the replica is promoted in its turn: answered once HISTORY is durable */
	CU_ASSERT_FATAL(promote(&r));
	CU_ASSERT(shards_reach(&r, "role", 0, "primary"));
	CU_ASSERT(shards_reach(&r, "repl_epoch", 3, NULL));
	for (uint32_t s = 0; s < SHARDS; s++)
		CU_ASSERT_FATAL(repl_id_of(&r, s, id[s]));
	printf("\n  replica: %u of %u keys after its full sync, %u of %u streamed after the"
	       " partial one; full syncs received %lld", full, REPL_KEYS, more,
	       REPL_MORE_KEYS, fulls);
	CU_ASSERT_EQUAL(full, REPL_KEYS);
	CU_ASSERT_EQUAL(more, REPL_MORE_KEYS);
	CU_ASSERT_EQUAL(fulls, (long long)SHARDS); /* the Total section: one per shard */

	trace_check(&r, pid, trace, workers);
	for (uint32_t s = 0; s < SHARDS; s++) {
		char dir[PATH_MAX + 32];
		snprintf(dir, sizeof(dir), "%s/snap/shard-%u", r.dir, s);
		CU_ASSERT_EQUAL(files_with_suffix(dir, ".snap"), 1); /* the image, published */
		CU_ASSERT_EQUAL(files_with_suffix(dir, ".tmp"), 0);
		CU_ASSERT(history_has(&r, s, id[s]));
	}
	CU_ASSERT(pomaid_stop(&p));
	proc_dir_remove(r.dir);
	proc_dir_remove(p.dir);
}

static CU_TestInfo tests[] = {
	{ "workers make no blocking file-system call (strace)", test_workers_never_block },
	{ "a replica's workers make none through full and partial syncs and PROMOTE (strace)",
	  test_replica_never_blocks },
	CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s POMAID\n", argv[0]);
		return 2;
	}
	pomaid_path = argv[1];
	if (!have_strace()) {
		fprintf(stderr, "strace not found: skipped (apt-get install strace)\n");
		return proc_ci() ? 1 : 77;
	}
	return pm_cu_run("noblock", tests);
}
