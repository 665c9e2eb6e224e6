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
#define WORKERS_MAX 64u

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

static void test_workers_never_block(void)
{
	char trace[PATH_MAX + 16];
	struct pomaid d = { .path = pomaid_path, .shards = SHARDS };
	CU_ASSERT_FATAL(proc_dir_make(d.dir, "noblock"));
	snprintf(trace, sizeof(trace), "%s.trace", d.dir);
	const char *wrap[] = { "strace", "-f", "-qq", "--seccomp-bpf", "-o", trace, "-e",
			       "trace=" TRACED, NULL };
	const char *flags[] = { "--wal", "batch", "--wal-segment-bytes", SEGMENT_FLAG,
				"--snapshot-interval-s", "0", "--snapshot-wal-bytes", "0", NULL };
	d.wrap = wrap;
	d.flags = flags;
	CU_ASSERT_FATAL(pomaid_start(&d, NULL, NULL));
	pid_t pid = tracee_of(d.proc.pid);
	CU_ASSERT_FATAL(pid > 0);
	pid_t workers[WORKERS_MAX];
	uint32_t nw = worker_tids(pid, workers, WORKERS_MAX);
	CU_ASSERT_EQUAL_FATAL(nw, SHARDS);

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

	/* stop pomaid itself (the tracer follows it out); the trace holds what
	 * the workers did, their drain at shutdown included */
	CU_ASSERT_FATAL(kill(pid, SIGTERM) == 0);
	CU_ASSERT(proc_wait(&d.proc, PROC_EXIT_WAIT_MS));
	for (uint32_t s = 0; s < SHARDS; s++) { /* the replaced snapshots are gone */
		char dir[PATH_MAX + 32];
		snprintf(dir, sizeof(dir), "%s/snap/shard-%u", d.dir, s);
		CU_ASSERT_EQUAL(files_with_suffix(dir, ".snap"), 1);
	}
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
		if (!is_worker(tid, workers, nw)) {
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
	proc_dir_remove(d.dir);
}

static CU_TestInfo tests[] = {
	{ "workers make no blocking file-system call (strace)", test_workers_never_block },
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
