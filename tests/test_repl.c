/* SPDX-License-Identifier: MIT
 *
 * test_repl.c — replication (issue 16; docs/replication.md) between real
 * pomaid processes (path in argv[1], pomaictl's in argv[2]) on free loopback
 * ports, each with its own data directory, UDP and TCP ports, repl_port and
 * admin socket; 2 shards, wal = sync.
 *
 *  1. A primary and two replicas (one from the start, one that joins in the
 *     middle of the load: a full sync): SETs with and without TTL, DELs,
 *     vectors of a flat and an HNSW collection with their parameters, VDELs,
 *     a third collection dropped, every vector with attributes and some of
 *     them replaced (VSETATTR). Once every replica's repl_applied_lsn is the
 *     primary's last LSN on every shard: every key, value and vector equal,
 *     CLIST equal, exact KNN answers identical (filtered ones too), HNSW recall@10 within
 *     RECALL_SLACK of the primary's; keys whose TTL passed are gone
 *     everywhere. A write to a replica is READONLY and names the primary.
 *  2. Failover: repl_ack = durable, min_replicas = 1, one replica; writers
 *     pipeline SETs and DELs (crash_writers.h) and the primary is SIGKILLed
 *     after a seeded number of acknowledgements, POMAI_REPL_ROUNDS rounds
 *     (10). The replica is promoted (REPLICATION PROMOTE on its admin
 *     socket) with a higher epoch and holds every acknowledged write with its
 *     bytes; the old primary restarted as its replica resyncs, ends equal and
 *     takes its epoch. The next round runs the other way round.
 *  3. The stream (3a-3g): a replica SIGKILLed and restarted while the
 *     primary takes writes resumes from its LSN (a partial sync, no full
 *     one); one kept away while the primary's log rolls over and a snapshot
 *     retires the segments it needs gets a full sync (and, SIGKILLed after
 *     it, restarts on the log it kept and resumes); a stream cut in the
 *     middle of a RECORDS frame (a proxy of the test's own, repl_proxy.h)
 *     resumes without loss or duplication; a replica with another shard
 *     count is refused with a clear error; a replica that has seen a later
 *     epoch is refused by an old primary, which takes no writes from then
 *     on, and the replica refuses a primary of a lower epoch itself (one the
 *     test plays); that test promotes and follows through pomaictl
 *     (`replication promote | follow | status`); an old primary with a tail
 *     its promoted replica never saw follows it: the tail goes in a full
 *     sync, and promoted in its turn and SIGKILLed, it restarts on the log
 *     it wrote since; so does a node resynced by two full syncs (from two
 *     primaries), the first at LSN 0.
 *  4. min_replicas = 1 with the only replica stopped: writes NOREPLICAS
 *     (nothing applied), reads go on; writes resume once it is back.
 *
 * The seed is printed; POMAI_TEST_SEED=<n> replays a run's data, operations
 * and kill points (not the timing); POMAI_REPL_ONLY=<text> runs only the
 * tests whose name holds it; POMAI_REPL_KEEP=1 leaves the nodes' data
 * directories behind. Daemons are waited for by their ready line, writers
 * by their replies, replicas by INFO polled with a deadline (PROC_POLL_MS):
 * nothing sleeps to synchronise. Exits 77 (or fails under CI=true) only when
 * the pomaid given has no replication to test.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin_proto.h"
#include "crash_writers.h"
#include "ctl.h"
#include "cu_main.h"
#include "libclient.h"
#include "pomai.h"
#include "proc.h"
#include "repl.h"
#include "repl_proxy.h"

#define SHARDS 2u
/* Test 3: the replica whose shard count differs (fewer: pomaid wants a core
 * per shard, and CI has 2). */
#define SHARDS_OTHER 1u
/* The log's segment: the smallest pomaid takes, so that test 3 rolls it over quickly. */
#define SEGMENT_BYTES (16ull << 20)
#define SEGMENT_FLAG "16M"
/* How long replicas may take to link to their primary, and to reach its last
 * LSN once the load stops (a full sync of a few MB, and a log replayed at the
 * start, under ASan on a loaded 2-core machine). Bounds, not delays. */
#define LINK_WAIT_MS 30000
#define SYNC_WAIT_MS 60000
/* Requests in flight per client of the test's own loads. */
#define PIPE_DEPTH 64u
/* Mismatches printed per comparison (all are counted). */
#define DIFFS_PRINTED 5u
/* Bytes of a node's log printed when something about it fails. */
#define LOG_TAIL_BYTES 1500u

/* Test 1: keys (every 11th with a short TTL, every 7th a long one; every 3rd
 * overwritten, every 5th deleted), values, vectors, queries. */
#define KV_KEYS 3000u
#define KV_VALUE_BYTES_MAX 1500u
#define KV_TTL_LONG_MS 3600000u
#define KV_TTL_SHORT_MS 1500u
/* How long the primary may take to report the short-TTL keys gone: their TTL
 * and a loaded machine's delay. */
#define KV_EXPIRE_WAIT_MS 30000
#define VEC_DIM 16u
#define VEC_FLAT_N 800u
#define VEC_HNSW_N 2000u
#define VEC_GONE_N 100u
#define VEC_DEL_EVERY 9u
#define VEC_QUERIES 200u
#define VEC_K 10u
#define HNSW_M 16u
#define HNSW_EF_CONSTRUCTION 100u
#define HNSW_EF_SEARCH 40u
/* The bound on a replica's HNSW recall@10 against the primary's. */
#define RECALL_SLACK 0.005

/* Test 2: rounds, acknowledged writes before each kill, writers and values. */
#define ROUNDS_DEFAULT 10u
#define ACKS_MIN 300u
#define ACKS_MAX 1500u
#define WRITERS 3u
#define CW_VALUE_BYTES_MAX 1000u
/* Key numbers past the last one sent, probed by every check: absent. */
#define PROBE_KEYS 32u

/* Test 3: writes before and while a replica is away; the retention run's
 * values (large, so that the log rolls over quickly), its writes per chunk
 * and chunks at most; the cuts of the stream. */
#define RESUME_ACKS 1500u
#define RETENTION_VALUE_BYTES_MAX 6000u
#define RETENTION_CHUNK_ACKS 3000u
#define RETENTION_CHUNKS_MAX 24u
#define CUTS 3u
/* Test 3f: the old primary's writes its replica never sees, and the writes
 * the promoted replica takes before the old primary follows it: fewer than
 * the tail (with what the writers have in flight), so that the tail's LSNs
 * reach past the snapshot the full sync installs. */
#define TAIL_KEYS 600u
#define PROMOTED_ACKS 40u
/* Test 3g: the keys of each of its writes. */
#define TWICE_KEYS 300u
/* Test 3h: each node's keys, and the faulted images each shard gets at
 * least (every attempt is faulted while the fault is on). */
#define IMAGE_KEYS 300u
#define IMAGE_FAULTS_PER_SHARD 2u
#define CUT_WAIT_MS 30000

static const char *pomaid_path, *ctl_path;
static uint64_t suite_seed;
/* POMAI_REPL_KEEP=1: the nodes' directories are left for a look afterwards. */
static bool keep_dirs;
static unsigned rounds = ROUNDS_DEFAULT;
static struct cw_run run;
static struct cw_writer ws[WRITERS];

/* The flags of every pomaid of the suite, and the tests' own. */
static const char *const suite_flags[] = {
	"--wal", "sync", "--wal-segment-bytes", SEGMENT_FLAG, "--arena-bytes", "64M",
	"--seeds", "65536", "--hugepages", "no", "--knn-timeout-ms", "2000",
	"--snapshot-interval-s", "0", "--snapshot-wal-bytes", "0", NULL
};
static const char *const durable_flags[] = { "--repl-ack", "durable", "--min-replicas", "1",
					     NULL };
static const char *const min1_flags[] = { "--min-replicas", "1", NULL };

/* ---------------------------------------------------------------- nodes */

struct node {
	const char *name;
	struct pomaid pm;               /* pm.repl: every node has a repl_port */
	char sock[PATH_MAX + 16];       /* data_dir/admin.sock */
	char log[PATH_MAX + 16];        /* what it printed, every start appended */
	uint16_t follow;                /* replica_of 127.0.0.1:follow at its start; 0: none */
	const char *const *extra;       /* the test's flags (NULL-terminated, may be NULL) */
};

/* The data directories this run made and has not removed yet: a test that
 * stopped at a fatal assertion leaves its nodes' for the next test's start
 * (and main's end) to remove. Only this run's: other runs may share /tmp. */
#define DIRS_MAX 8u
static char made[DIRS_MAX][PATH_MAX];

static void dirs_forget(const char *dir)
{
	for (uint32_t i = 0; i < DIRS_MAX; i++)
		if (!strcmp(made[i], dir))
			made[i][0] = '\0';
}

/* What a test stopped by a fatal assertion left: processes, directories. */
static void leftovers_remove(void)
{
	proc_kill_all();
	for (uint32_t i = 0; i < DIRS_MAX; i++)
		if (made[i][0]) {
			if (keep_dirs)
				printf("\n  directory kept: %s", made[i]);
			else
				proc_dir_remove(made[i]);
			made[i][0] = '\0';
		}
}

static void node_init(struct node *n, const char *name, uint32_t shards, const char *const *extra)
{
	memset(n, 0, sizeof(*n));
	n->name = name;
	n->extra = extra;
	n->pm.path = pomaid_path;
	n->pm.shards = shards;
	n->pm.flags = suite_flags;
	n->pm.repl = true;
	n->pm.after = PROC_AFTER_LOG;
	n->pm.log = n->log;
	CU_ASSERT_FATAL(proc_dir_make(n->pm.dir, "repl"));
	uint32_t slot = 0;
	while (slot < DIRS_MAX && made[slot][0])
		slot++;
	CU_ASSERT_FATAL(slot < DIRS_MAX);
	snprintf(made[slot], PATH_MAX, "%s", n->pm.dir);
	snprintf(n->sock, sizeof(n->sock), "%s/admin.sock", n->pm.dir);
	snprintf(n->log, sizeof(n->log), "%s/pomaid.log", n->pm.dir);
}

static uint32_t node_shards(const struct node *n)
{
	return n->pm.shards ? n->pm.shards : POMAID_SHARDS_DEFAULT;
}

/* Its log's last bytes, printed. */
static void node_log_tail(const struct node *n)
{
	static char buf[LOG_TAIL_BYTES + 1];
	FILE *f = fopen(n->log, "r");
	size_t len = 0;
	if (f && fseek(f, 0, SEEK_END) == 0) {
		long end = ftell(f);
		fseek(f, end > (long)LOG_TAIL_BYTES ? end - (long)LOG_TAIL_BYTES : 0, SEEK_SET);
		len = fread(buf, 1, LOG_TAIL_BYTES, f);
	}
	if (f)
		fclose(f);
	buf[len] = '\0';
	printf("\n  --- %s (%s), last lines of its output:\n%s\n  ---", n->name, n->pm.dir, buf);
}

/* Whether a line of its output holds both words (case-insensitive). */
static bool node_log_has(const struct node *n, const char *a, const char *b)
{
	char line[1024];
	bool has = false;
	FILE *f = fopen(n->log, "r");
	while (f && !has && fgets(line, sizeof(line), f))
		has = strcasestr(line, a) && strcasestr(line, b);
	if (f)
		fclose(f);
	return has;
}

/* The files of its log and snapshots, with their sizes and first bytes'
 * LSN fields (what a start that refused its log found). */
static void node_files_print(const struct node *n)
{
	static const char *const subs[] = { "wal", "snap" };
	for (uint32_t k = 0; k < 2; k++)
		for (uint32_t s = 0; s < node_shards(n); s++) {
			char path[PATH_MAX + 64];
			snprintf(path, sizeof(path), "%s/%s/shard-%u", n->pm.dir, subs[k], s);
			DIR *d = opendir(path);
			printf("\n  %s/%s/shard-%u:", n->name, subs[k], s);
			for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
				struct stat sb;
				if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &sb, 0) != 0)
					continue;
				printf(" %s (%lld B)", e->d_name, (long long)sb.st_size);
			}
			if (d)
				closedir(d);
		}
}

/* Start it with its flags, as a replica of n->follow when that is set. */
static bool node_start(struct node *n)
{
	const char *argv[24];
	char follow[32];
	uint32_t k = 0;
	for (const char *const *f = n->extra; f && *f && k < 20; f++)
		argv[k++] = *f;
	if (n->follow) {
		snprintf(follow, sizeof(follow), "127.0.0.1:%u", n->follow);
		argv[k++] = "--replica-of";
		argv[k++] = follow;
	}
	argv[k] = NULL;
	bool ok = pomaid_start(&n->pm, argv, NULL);
	if (!ok) {
		printf("\n  %s did not start (status 0x%x): %s", n->name, (unsigned)n->pm.proc.status,
		       n->pm.proc.out);
		node_files_print(n);
		node_log_tail(n);
	}
	return ok;
}

/* SIGTERM: true if it exited 0 in time. */
static bool node_stop(struct node *n)
{
	bool ok = pomaid_stop(&n->pm);
	if (!ok)
		node_log_tail(n);
	return ok;
}

/* Whatever runs is killed; its directory goes. What it printed held no
 * sanitizer report (run by hand, without meson's halt_on_error, UBSan only
 * prints and goes on). */
static void node_free(struct node *n)
{
	if (pomaid_alive(&n->pm))
		pomaid_kill(&n->pm);
	bool sanitized = node_log_has(n, "runtime error", ":") || node_log_has(n, "Sanitizer", "ERROR");
	if (sanitized)
		node_log_tail(n);
	CU_ASSERT(!sanitized);
	if (keep_dirs)
		printf("\n  %s's directory kept: %s", n->name, n->pm.dir);
	else
		proc_dir_remove(n->pm.dir);
	dirs_forget(n->pm.dir);
}

static struct pm_client *node_client(const struct node *n)
{
	return lib_open(&n->pm, LIB_TIMEOUT_MS, LIB_RETRIES, PIPE_DEPTH);
}

/* ---------------------------------------------------------------- INFO */

/* Every section of its INFO, NUL-terminated (free it); NULL if INFO failed. */
static char *node_info(const struct node *n)
{
	struct pm_client *c = lib_open(&n->pm, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
	char *text = lib_info_text(c, NULL);
	pm_client_close(c);
	return text;
}

static void shard_part(uint32_t shard, char *out, size_t cap)
{
	snprintf(out, cap, "@shard:%u\r\n", shard);
}

/* A field of one shard's part; -1 if absent. */
static long long sfield(const char *text, uint32_t shard, const char *field)
{
	char part[32];
	shard_part(shard, part, sizeof(part));
	return text ? info_text_field(text, part, field) : -1;
}

static bool sword(const char *text, uint32_t shard, const char *field, char *out, size_t cap)
{
	char part[32];
	shard_part(shard, part, sizeof(part));
	return text && info_text_word(text, part, field, out, cap);
}

/* A summable field over a node's shards: the Total section's, or the sum of
 * the shards' when Total does not carry it; -1 if no shard has it. */
static long long tfield(const char *text, uint32_t shards, const char *field)
{
	long long v = text ? info_text_field(text, "# Total\r\n", field) : -1, sum = -1;
	for (uint32_t s = 0; v < 0 && text && s < shards; s++) {
		long long x = sfield(text, s, field);
		sum = x < 0 ? sum : (sum < 0 ? 0 : sum) + x;
	}
	return v >= 0 ? v : sum;
}

/* A node's summable field now (-1: INFO failed or no such field). */
static long long node_total(const struct node *n, const char *field)
{
	char *text = node_info(n);
	long long v = tfield(text, node_shards(n), field);
	free(text);
	return v;
}

/* A field that is the node's, not a shard's (role, repl_epoch): shard 0's
 * part, else the first in the text. */
static long long node_field(const struct node *n, const char *field)
{
	char *text = node_info(n);
	long long v = sfield(text, 0, field);
	if (v < 0 && text)
		v = info_text_field(text, NULL, field);
	free(text);
	return v;
}

/* Print the replication fields of every shard of n. */
static void node_repl_print(const struct node *n, const char *text)
{
	static const char *const fields[] = {
		"role", "repl_epoch", "repl_id", "repl_link", "repl_primary", "repl_applied_lsn",
		"repl_durable_lsn", "wal_next_lsn", "repl_connected_replicas", "replica0_state",
		"replica0_acked_lsn", "repl_full_syncs", "repl_partial_syncs", "repl_refused",
		"repl_apply_errors", "repl_link_drops", NULL
	};
	printf("\n  %s:", n->name);
	if (!text) {
		printf(" INFO failed (alive: %d)", pomaid_alive(&n->pm));
		return;
	}
	for (uint32_t s = 0; s < node_shards(n); s++) {
		printf("\n    shard %u:", s);
		for (const char *const *f = fields; *f; f++) {
			char w[64];
			if (sword(text, s, *f, w, sizeof(w)))
				printf(" %s:%s", *f, w);
		}
	}
}

/* Poll until every shard of n has `field` at least want (a number), or is
 * the word `word` (when word is set), at most ms. */
static bool shards_reach(const struct node *n, const char *field, long long want,
			 const char *word, int ms)
{
	uint64_t deadline = proc_now_ms() + (uint64_t)ms;
	for (;;) {
		char *text = node_info(n);
		bool all = text != NULL;
		for (uint32_t s = 0; s < node_shards(n) && all; s++) {
			char w[64];
			all = word ? sword(text, s, field, w, sizeof(w)) && !strcmp(w, word)
				   : sfield(text, s, field) >= want;
		}
		if (all || proc_now_ms() >= deadline) {
			if (!all) {
				printf("\n  %s: %s did not reach %s%lld on every shard in %d ms", n->name,
				       field, word ? word : "", word ? 0 : want, ms);
				node_repl_print(n, text);
				node_log_tail(n);
			}
			free(text);
			return all;
		}
		free(text);
		proc_pause_ms(PROC_POLL_MS);
	}
}

/* Each replica serves its primary's every shard, live. */
static bool replicas_linked(const struct node *p, uint32_t replicas)
{
	return shards_reach(p, "repl_connected_replicas", replicas, NULL, LINK_WAIT_MS);
}

static bool replica_live(const struct node *p)
{
	return replicas_linked(p, 1) &&
	       shards_reach(p, "replica0_state", 0, "live", LINK_WAIT_MS);
}

/* Every replica streams from the primary and its repl_applied_lsn is the
 * primary's wal_next_lsn - 1, on every shard: polled until SYNC_WAIT_MS,
 * said when not. (The link, because a replica restarted on its data
 * directory may have replayed up to the primary's last LSN from its own log
 * before its handshake.) */
static bool synced(const struct node *p, struct node *const *rs, uint32_t nr)
{
	uint64_t deadline = proc_now_ms() + SYNC_WAIT_MS;
	char *rt[4] = { 0 };
	CU_ASSERT_FATAL(nr <= 4);
	for (;;) {
		char *pt = node_info(p);
		bool all = pt != NULL;
		for (uint32_t i = 0; i < nr; i++)
			all &= (rt[i] = node_info(rs[i])) != NULL;
		for (uint32_t s = 0; s < SHARDS && all; s++) {
			long long last = sfield(pt, s, "wal_next_lsn") - 1;
			for (uint32_t i = 0; i < nr && all; i++) {
				char link[32];
				all = last >= 0 && sfield(rt[i], s, "repl_applied_lsn") == last &&
				      sword(rt[i], s, "repl_link", link, sizeof(link)) &&
				      !strcmp(link, "streaming");
			}
		}
		bool done = all || proc_now_ms() >= deadline;
		if (done && !all) {
			printf("\n  the replicas did not reach the primary's last LSN in %d ms:", SYNC_WAIT_MS);
			node_repl_print(p, pt);
			node_log_tail(p);
			for (uint32_t i = 0; i < nr; i++) {
				node_repl_print(rs[i], rt[i]);
				node_log_tail(rs[i]);
			}
		}
		free(pt);
		for (uint32_t i = 0; i < nr; i++) {
			free(rt[i]);
			rt[i] = NULL;
		}
		if (done)
			return all;
		proc_pause_ms(PROC_POLL_MS);
	}
}

/* ---------------------------------------------------------------- admin */

/* REPLICATION PROMOTE over the admin socket, or `pomaictl replication
 * promote` (by_ctl); true once it said OK. */
static bool promote(const struct node *n, bool by_ctl)
{
	static char out[CTL_OUT_BYTES];
	int rc = by_ctl ? ctl_run(ctl_path, n->sock, "replication promote", out)
			: ctl_admin(n->sock, "REPLICATION PROMOTE", out, sizeof(out));
	if (rc != 0)
		printf("\n  %s on %s: %d: %.300s", by_ctl ? "pomaictl replication promote"
						     : "REPLICATION PROMOTE", n->name, rc, out);
	return rc == 0;
}

/* REPLICATION FOLLOW 127.0.0.1:port over the admin socket, or `pomaictl
 * replication follow 127.0.0.1:port` (by_ctl); true once it said OK. */
static bool follow(const struct node *n, uint16_t port, bool by_ctl)
{
	static char out[CTL_OUT_BYTES];
	char words[64];
	snprintf(words, sizeof(words), "%s 127.0.0.1:%u",
		 by_ctl ? "replication follow" : "REPLICATION FOLLOW", port);
	int rc = by_ctl ? ctl_run(ctl_path, n->sock, words, out)
			: ctl_admin(n->sock, words, out, sizeof(out));
	if (rc != 0)
		printf("\n  %s%s on %s: %d: %.300s", by_ctl ? "pomaictl " : "", words, n->name, rc, out);
	return rc == 0;
}

/* ---------------------------------------------------------------- pipelined writes */

/* A client's pipelined writes, counted. */

/* ---------------------------------------------------------------- test 1: data */

static uint64_t data_seed(uint64_t a, uint64_t b)
{
	uint64_t s = suite_seed ^ (a << 40) ^ b;
	return pm_test_rand(&s);
}

/* Key i's name and the value of its version ver. */
static uint32_t kv_key(uint32_t i, char *out)
{
	return (uint32_t)snprintf(out, 32, "k%u", i);
}

static uint32_t kv_value(uint32_t i, uint32_t ver, uint8_t *out)
{
	uint64_t s = data_seed(1, (uint64_t)i << 8 | ver);
	uint32_t len = 1 + (uint32_t)(pm_test_rand(&s) % KV_VALUE_BYTES_MAX);
	for (uint32_t j = 0; j < len; j++)
		out[j] = (uint8_t)pm_test_rand(&s);
	return len;
}

static bool kv_short(uint32_t i)
{
	return i % 11 == 0;
}

static uint64_t kv_ttl(uint32_t i)
{
	return kv_short(i) ? KV_TTL_SHORT_MS : i % 7 == 0 ? KV_TTL_LONG_MS : 0;
}

/* What key i holds once the load is over and its short TTL has passed: its
 * version, 0 for absent. */
static uint32_t kv_final(uint32_t i)
{
	return kv_short(i) || i % 5 == 0 ? 0 : i % 3 == 0 ? 2 : 1;
}

enum coll { COLL_FLAT, COLL_HNSW, COLL_GONE, COLLS };
static const char *const coll_name[COLLS] = { "vflat", "vhnsw", "vgone" };
static const uint32_t coll_n[COLLS] = { VEC_FLAT_N, VEC_HNSW_N, VEC_GONE_N };

static uint32_t vec_key(enum coll c, uint32_t i, char *out)
{
	return (uint32_t)snprintf(out, 32, "%c%u", "fhg"[c], i);
}

static void vec_of(enum coll c, uint32_t i, float *v)
{
	uint64_t s = data_seed(2 + (uint64_t)c, i);
	for (uint32_t j = 0; j < VEC_DIM; j++)
		v[j] = (float)(pm_test_rand(&s) >> 40) / (float)(1u << 24);
}

static void query_of(uint32_t q, float *v)
{
	uint64_t s = data_seed(9, q);
	for (uint32_t j = 0; j < VEC_DIM; j++)
		v[j] = (float)(pm_test_rand(&s) >> 40) / (float)(1u << 24);
}

static void kv_set(struct pipe *p, uint32_t i, uint32_t ver)
{
	static uint8_t val[KV_VALUE_BYTES_MAX];
	char key[32];
	struct pm_client_req r = { .op = PM_CLIENT_SET, .key = key, .klen = kv_key(i, key),
				   .value = val, .vlen = kv_value(i, ver, val), .ttl_ms = kv_ttl(i) };
	pipe_submit(p, &r);
}

static void kv_del(struct pipe *p, uint32_t i)
{
	char key[32];
	struct pm_client_req r = { .op = PM_CLIENT_DEL, .key = key, .klen = kv_key(i, key) };
	pipe_submit(p, &r);
}

/* Every vector's attributes: a tag g = g0..g3 and a number i. */
static void vec_add(struct pipe *p, enum coll c, uint32_t i)
{
	float v[VEC_DIM];
	char key[32], g[8];
	struct pm_client_attr at;
	vec_of(c, i, v);
	pm_client_attr_init(&at);
	CU_ASSERT_EQUAL(pm_client_attr_tag(&at, "g", g, (size_t)snprintf(g, sizeof g, "g%u", i % 4)),
			PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_attr_num(&at, "i", i), PM_CLIENT_OK);
	struct pm_client_req r = { .op = PM_CLIENT_VADD, .key = key, .klen = vec_key(c, i, key),
				   .vec = v, .dim = VEC_DIM, .name = coll_name[c],
				   .name_len = (uint32_t)strlen(coll_name[c]),
				   .attr = at.buf, .attr_len = at.len };
	pipe_submit(p, &r);
}

/* A vector's attributes replaced: g = moved. */
static void vec_setattr(struct pipe *p, enum coll c, uint32_t i)
{
	char key[32];
	struct pm_client_attr at;
	pm_client_attr_init(&at);
	CU_ASSERT_EQUAL(pm_client_attr_tag(&at, "g", "moved", 5), PM_CLIENT_OK);
	struct pm_client_req r = { .op = PM_CLIENT_VSETATTR, .key = key, .klen = vec_key(c, i, key),
				   .attr = at.buf, .attr_len = at.len };
	pipe_submit(p, &r);
}

static void vec_del(struct pipe *p, enum coll c, uint32_t i)
{
	char key[32];
	struct pm_client_req r = { .op = PM_CLIENT_VDEL, .key = key, .klen = vec_key(c, i, key) };
	pipe_submit(p, &r);
}

static const struct pm_client_coll_params coll_params[COLLS] = {
	{ .dim = VEC_DIM, .metric = PM_CLIENT_L2, .index = PM_CLIENT_FLAT },
	{ .dim = VEC_DIM, .metric = PM_CLIENT_L2, .index = PM_CLIENT_HNSW, .hnsw_m = HNSW_M,
	  .ef_construction = HNSW_EF_CONSTRUCTION, .ef_search = HNSW_EF_SEARCH },
	{ .dim = VEC_DIM, .metric = PM_CLIENT_COSINE, .index = PM_CLIENT_FLAT },
};

/* Phase A: every key, the collections, half of the vectors, all of the one to drop. */
static bool load_a(struct pm_client *c)
{
	struct pipe p = { .c = c };
	for (uint32_t k = 0; k < COLLS; k++)
		CU_ASSERT_EQUAL(pm_client_collection_create(c, coll_name[k], &coll_params[k]),
				PM_CLIENT_OK);
	for (uint32_t i = 0; i < KV_KEYS; i++)
		kv_set(&p, i, 1);
	for (uint32_t k = 0; k < COLLS; k++)
		for (uint32_t i = 0; i < (k == COLL_GONE ? coll_n[k] : coll_n[k] / 2); i++)
			vec_add(&p, (enum coll)k, i);
	return pipe_done(&p, "load A");
}

/* Phase B (while a replica makes its full sync): the rest of the vectors,
 * overwrites, DELs, VDELs, the drop. */
static bool load_b(struct pm_client *c)
{
	struct pipe p = { .c = c };
	for (uint32_t k = 0; k < COLL_GONE; k++)
		for (uint32_t i = coll_n[k] / 2; i < coll_n[k]; i++)
			vec_add(&p, (enum coll)k, i);
	for (uint32_t i = 0; i < KV_KEYS; i += 3)
		kv_set(&p, i, 2);
	bool ok = pipe_done(&p, "load B (adds, overwrites)");
	p = (struct pipe){ .c = c }; /* after the adds of their keys were answered */
	for (uint32_t k = 0; k < COLL_GONE; k++)
		for (uint32_t i = 1; i < coll_n[k]; i += VEC_DEL_EVERY - 2)
			vec_setattr(&p, (enum coll)k, i);
	ok &= pipe_done(&p, "load B (attributes)");
	/* the deletes after their keys' last writes have been answered */
	p = (struct pipe){ .c = c };
	for (uint32_t i = 0; i < KV_KEYS; i += 5)
		kv_del(&p, i);
	for (uint32_t k = 0; k < COLL_GONE; k++)
		for (uint32_t i = 0; i < coll_n[k]; i += VEC_DEL_EVERY)
			vec_del(&p, (enum coll)k, i);
	ok &= pipe_done(&p, "load B (deletes)");
	bool removed = false;
	CU_ASSERT_EQUAL(pm_client_collection_drop(c, coll_name[COLL_GONE], &removed), PM_CLIENT_OK);
	CU_ASSERT(removed);
	return ok;
}

/* ---------------------------------------------------------------- test 1: comparisons */

/* Every short-TTL key is gone on the primary: polled (their TTL runs from the load). */
static bool short_ttl_gone(struct pm_client *c)
{
	uint64_t deadline = proc_now_ms() + KV_EXPIRE_WAIT_MS;
	uint8_t buf[KV_VALUE_BYTES_MAX];
	char key[32];
	size_t n;
	for (uint32_t i = 0; i < KV_KEYS; i += 11)
		while (pm_client_get(c, key, kv_key(i, key), buf, sizeof(buf), &n) == PM_CLIENT_OK) {
			if (proc_now_ms() >= deadline)
				return false;
			proc_pause_ms(PROC_POLL_MS);
		}
	return true;
}

/* What one node answered for every key and vector of the load, read with
 * pipelined GETs and VGETs (a synchronous round trip costs milliseconds on a
 * loaded machine). */
struct reads {
	enum pm_client_status kv_st[KV_KEYS];
	uint32_t kv_len[KV_KEYS];
	uint8_t kv_val[KV_KEYS][KV_VALUE_BYTES_MAX];
	enum pm_client_status vec_st[COLLS][VEC_HNSW_N];
	uint32_t vec_dim[COLLS][VEC_HNSW_N];
	float vec[COLLS][VEC_HNSW_N][VEC_DIM];
	char vec_coll[COLLS][VEC_HNSW_N][16];
};

_Static_assert(VEC_HNSW_N >= VEC_FLAT_N && VEC_HNSW_N >= VEC_GONE_N, "room for every collection");

/* One read in flight: where its answer goes. */
struct read_op {
	struct reads *to;
	uint32_t coll, i;       /* coll COLLS: a key */
};

static void on_read(void *arg, const struct pm_client_result *r)
{
	const struct read_op *o = arg;
	struct reads *to = o->to;
	if (o->coll == COLLS) {
		to->kv_st[o->i] = r->status;
		to->kv_len[o->i] = r->status == PM_CLIENT_OK ? r->vlen : 0;
		if (r->status == PM_CLIENT_OK && r->vlen <= KV_VALUE_BYTES_MAX)
			memcpy(to->kv_val[o->i], r->value, r->vlen);
		return;
	}
	to->vec_st[o->coll][o->i] = r->status;
	to->vec_dim[o->coll][o->i] = r->status == PM_CLIENT_OK ? r->dim : 0;
	if (r->status == PM_CLIENT_OK && r->dim == VEC_DIM)
		memcpy(to->vec[o->coll][o->i], r->vec, sizeof(float) * VEC_DIM);
	if (r->status == PM_CLIENT_OK)
		snprintf(to->vec_coll[o->coll][o->i], 16, "%.*s", (int)r->collection_len,
			 (const char *)r->collection);
}

/* Read every key and vector of the load from c into to. */
static void reads_take(struct pm_client *c, struct reads *to)
{
	static struct read_op ops[KV_KEYS + COLLS * VEC_HNSW_N];
	uint32_t n = 0;
	char key[32];
	memset(to, 0, sizeof(*to));
	for (uint32_t i = 0; i < KV_KEYS; i++) {
		ops[n] = (struct read_op){ .to = to, .coll = COLLS, .i = i };
		struct pm_client_req r = { .op = PM_CLIENT_GET, .key = key, .klen = kv_key(i, key),
					   .cb = on_read, .arg = &ops[n++] };
		to->kv_st[i] = PM_CLIENT_STATUS_COUNT; /* no answer */
		if (pm_client_submit(c, &r, NULL) != PM_CLIENT_OK)
			to->kv_st[i] = PM_CLIENT_E_ARG;
	}
	for (uint32_t k = 0; k < COLLS; k++)
		for (uint32_t i = 0; i < coll_n[k]; i++) {
			ops[n] = (struct read_op){ .to = to, .coll = k, .i = i };
			struct pm_client_req r = { .op = PM_CLIENT_VGET, .key = key,
						   .klen = vec_key((enum coll)k, i, key), .cb = on_read,
						   .arg = &ops[n++] };
			to->vec_st[k][i] = PM_CLIENT_STATUS_COUNT;
			if (pm_client_submit(c, &r, NULL) != PM_CLIENT_OK)
				to->vec_st[k][i] = PM_CLIENT_E_ARG;
		}
	pm_client_drain(c);
}

static const char *st_name(enum pm_client_status st)
{
	return st == PM_CLIENT_STATUS_COUNT ? "no answer" : pm_client_status_name(st);
}

/* Every key on the primary (rd[0]) as the load left it; on each replica as
 * on the primary. The keys that differ. */
static uint64_t kv_compare(struct reads *const *rd, const char *const *names, uint32_t nc)
{
	static uint8_t want[KV_VALUE_BYTES_MAX];
	const struct reads *a = rd[0];
	uint64_t bad = 0;
	for (uint32_t i = 0; i < KV_KEYS; i++) {
		uint32_t ver = kv_final(i), nw = ver ? kv_value(i, ver, want) : 0;
		bool ok = ver ? a->kv_st[i] == PM_CLIENT_OK && a->kv_len[i] == nw &&
					!memcmp(a->kv_val[i], want, nw)
			      : a->kv_st[i] == PM_CLIENT_NOT_FOUND;
		if (!ok && bad++ < DIFFS_PRINTED)
			printf("\n  %s k%u: %s, %u bytes; the load left %s (%u bytes)", names[0], i,
			       st_name(a->kv_st[i]), a->kv_len[i], ver ? "a value" : "it absent", nw);
		for (uint32_t r = 1; r < nc; r++) {
			const struct reads *b = rd[r];
			if (b->kv_st[i] == a->kv_st[i] && b->kv_len[i] == a->kv_len[i] &&
			    !memcmp(b->kv_val[i], a->kv_val[i], a->kv_len[i]))
				continue;
			if (bad++ < DIFFS_PRINTED)
				printf("\n  %s k%u: %s, %u bytes; %s: %s, %u bytes", names[r], i,
				       st_name(b->kv_st[i]), b->kv_len[i], names[0], st_name(a->kv_st[i]),
				       a->kv_len[i]);
		}
	}
	return bad;
}

/* Every vector on the primary as loaded; on each replica as on the primary
 * (dimension, components bit for bit, collection); the dropped collection's
 * nowhere. The vectors that differ. */
static uint64_t vec_compare(struct reads *const *rd, const char *const *names, uint32_t nc)
{
	const struct reads *a = rd[0];
	uint64_t bad = 0;
	for (uint32_t k = 0; k < COLLS; k++)
		for (uint32_t i = 0; i < coll_n[k]; i++) {
			float want[VEC_DIM];
			bool there = k != COLL_GONE && i % VEC_DEL_EVERY != 0;
			vec_of((enum coll)k, i, want);
			bool ok = there ? a->vec_st[k][i] == PM_CLIENT_OK && a->vec_dim[k][i] == VEC_DIM &&
						  !memcmp(a->vec[k][i], want, sizeof(want)) &&
						  !strcmp(a->vec_coll[k][i], coll_name[k])
					: a->vec_st[k][i] == PM_CLIENT_NOT_FOUND;
			if (!ok && bad++ < DIFFS_PRINTED)
				printf("\n  %s vector %c%u: %s (collection \"%s\"); the load left it %s",
				       names[0], "fhg"[k], i, st_name(a->vec_st[k][i]), a->vec_coll[k][i],
				       there ? "there" : "absent");
			for (uint32_t r = 1; r < nc; r++) {
				const struct reads *b = rd[r];
				bool same = b->vec_st[k][i] == a->vec_st[k][i] &&
					    b->vec_dim[k][i] == a->vec_dim[k][i] &&
					    !memcmp(b->vec[k][i], a->vec[k][i], sizeof(a->vec[k][i])) &&
					    !strcmp(b->vec_coll[k][i], a->vec_coll[k][i]);
				if (!same && bad++ < DIFFS_PRINTED)
					printf("\n  %s vector %c%u: %s (dim %u, \"%s\"); %s: %s (dim %u, \"%s\")",
					       names[r], "fhg"[k], i, st_name(b->vec_st[k][i]), b->vec_dim[k][i],
					       b->vec_coll[k][i], names[0], st_name(a->vec_st[k][i]),
					       a->vec_dim[k][i], a->vec_coll[k][i]);
			}
		}
	return bad;
}

static int coll_cmp(const void *x, const void *y)
{
	const struct pm_client_coll_info *a = x, *b = y;
	uint32_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int c = memcmp(a->name, b->name, n);
	return c ? c : (int)a->name_len - (int)b->name_len;
}

static bool coll_same(const struct pm_client_coll_info *a, const struct pm_client_coll_info *b)
{
	const struct pm_client_coll_params *p = &a->params, *q = &b->params;
	return a->name_len == b->name_len && !memcmp(a->name, b->name, a->name_len) &&
	       p->dim == q->dim && p->metric == q->metric && p->index == q->index &&
	       p->hnsw_m == q->hnsw_m && p->ef_construction == q->ef_construction &&
	       p->ef_search == q->ef_search && p->evictable == q->evictable && a->count == b->count;
}

/* CLIST of each replica as the primary's (names, parameters, counts); the
 * primary's as loaded. The entries that differ. */
static uint64_t clist_compare(struct pm_client *const *cs, const char *const *names, uint32_t nc)
{
	static struct pm_client_coll_info items[2][PM_CLIENT_COLLECTIONS_MAX];
	struct pm_client_coll_list a = { .items = items[0], .cap = PM_CLIENT_COLLECTIONS_MAX };
	uint64_t bad = 0;
	CU_ASSERT_EQUAL_FATAL(pm_client_collection_list(cs[0], &a), PM_CLIENT_OK);
	qsort(items[0], a.count, sizeof(items[0][0]), coll_cmp);
	/* the primary: vflat and vhnsw with their parameters and counts; vgone gone */
	bool loaded = a.count == 2;
	for (uint32_t k = 0; k < 2 && loaded; k++) {
		const struct pm_client_coll_info *e = &items[0][k];
		const struct pm_client_coll_params *p = &coll_params[k];
		uint64_t want = coll_n[k] - (coll_n[k] + VEC_DEL_EVERY - 1) / VEC_DEL_EVERY;
		loaded = e->name_len == strlen(coll_name[k]) &&
			 !memcmp(e->name, coll_name[k], e->name_len) && e->params.dim == p->dim &&
			 e->params.index == p->index && e->params.metric == p->metric &&
			 (k != COLL_HNSW || (e->params.hnsw_m == p->hnsw_m &&
					     e->params.ef_construction == p->ef_construction &&
					     e->params.ef_search == p->ef_search)) &&
			 e->count == want;
	}
	if (!loaded) {
		bad++;
		printf("\n  %s: CLIST has %u collections, not vflat and vhnsw as loaded", names[0],
		       a.count);
	}
	for (uint32_t r = 1; r < nc; r++) {
		struct pm_client_coll_list b = { .items = items[1], .cap = PM_CLIENT_COLLECTIONS_MAX };
		CU_ASSERT_EQUAL_FATAL(pm_client_collection_list(cs[r], &b), PM_CLIENT_OK);
		qsort(items[1], b.count, sizeof(items[1][0]), coll_cmp);
		bool same = b.count == a.count;
		for (uint32_t k = 0; k < a.count && same; k++)
			same = coll_same(&items[0][k], &items[1][k]);
		if (!same) {
			bad++;
			printf("\n  %s: CLIST has %u collections, %s %u, or they differ", names[r],
			       b.count, names[0], a.count);
			for (uint32_t k = 0; k < b.count && k < 4; k++)
				printf("\n    %.*s dim %u index %u m %u count %" PRIu64,
				       (int)items[1][k].name_len, items[1][k].name, items[1][k].params.dim,
				       items[1][k].params.index, items[1][k].params.hnsw_m,
				       items[1][k].count);
		}
	}
	return bad;
}

/* One KNN answer: keys and distances. */
struct knn_ans {
	uint32_t count;
	uint32_t klen[VEC_K];
	char key[VEC_K][32];
	float dist[VEC_K];
};

static enum pm_client_status knn_filtered(struct pm_client *c, uint32_t q, const char *coll,
					  bool exact, const char *filter, struct knn_ans *a);

static enum pm_client_status knn_take(struct pm_client *c, uint32_t q, const char *coll,
				      bool exact, struct knn_ans *a)
{
	return knn_filtered(c, q, coll, exact, NULL, a);
}

/* The filter of the attribute checks: what a VSETATTR set, or one tag value. */
#define VEC_FILTER "g = 'moved' or (g = 'g1' and i >= 100)"

static enum pm_client_status knn_filtered(struct pm_client *c, uint32_t q, const char *coll,
					  bool exact, const char *filter, struct knn_ans *a)
{
	struct pm_client_hit hits[VEC_K];
	uint8_t keys[VEC_K * 32];
	float v[VEC_DIM];
	struct pm_client_knn_result res = { .hits = hits, .hits_cap = VEC_K, .keys = keys,
					    .keys_cap = sizeof(keys) };
	struct pm_client_knn_opts o = { .k = VEC_K, .exact = exact, .collection = coll,
					.filter = filter };
	query_of(q, v);
	memset(a, 0, sizeof(*a));
	enum pm_client_status st = pm_client_knn(c, v, VEC_DIM, &o, &res);
	a->count = st == PM_CLIENT_OK ? res.count : 0;
	for (uint32_t i = 0; i < a->count && i < VEC_K; i++) {
		a->klen[i] = hits[i].klen < 32 ? hits[i].klen : 32;
		memcpy(a->key[i], hits[i].key, a->klen[i]);
		a->dist[i] = hits[i].dist;
	}
	return st;
}

/* Hits of got among want's. */
static uint32_t knn_overlap(const struct knn_ans *got, const struct knn_ans *want)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < got->count; i++)
		for (uint32_t j = 0; j < want->count; j++)
			if (got->klen[i] == want->klen[j] &&
			    !memcmp(got->key[i], want->key[j], got->klen[i])) {
				n++;
				break;
			}
	return n;
}

/* Exact answers of both collections identical on every node (full answers
 * from the primary); HNSW recall@10 of each node against them. The answers
 * that differ. */
static uint64_t knn_compare(struct pm_client *const *cs, const char *const *names, uint32_t nc,
			    double *recall)
{
	static struct knn_ans exact[VEC_QUERIES][2];
	uint64_t bad = 0, hits[4] = { 0 };
	for (uint32_t q = 0; q < VEC_QUERIES; q++)
		for (uint32_t k = 0; k < 2; k++) {
			enum pm_client_status st = knn_take(cs[0], q, coll_name[k], true, &exact[q][k]);
			if ((st != PM_CLIENT_OK || exact[q][k].count != VEC_K) && bad++ < DIFFS_PRINTED)
				printf("\n  %s exact KNN %u in %s: %s, %u hits", names[0], q, coll_name[k],
				       pm_client_status_name(st), exact[q][k].count);
		}
	for (uint32_t r = 0; r < nc; r++)
		for (uint32_t q = 0; q < VEC_QUERIES; q++) {
			struct knn_ans a;
			for (uint32_t k = 0; k < 2 && r > 0; k++) {
				knn_take(cs[r], q, coll_name[k], true, &a);
				if (memcmp(&a, &exact[q][k], sizeof(a)) && bad++ < DIFFS_PRINTED)
					printf("\n  %s exact KNN %u in %s: %u hits, first %.*s %g; %s: %u hits,"
					       " first %.*s %g", names[r], q, coll_name[k], a.count,
					       (int)a.klen[0], a.key[0], a.dist[0], names[0], exact[q][k].count,
					       (int)exact[q][k].klen[0], exact[q][k].key[0], exact[q][k].dist[0]);
			}
			CU_ASSERT_EQUAL(knn_take(cs[r], q, coll_name[COLL_HNSW], false, &a), PM_CLIENT_OK);
			hits[r] += knn_overlap(&a, &exact[q][COLL_HNSW]);
		}
	/* attributes replicated (the stream's VADD and VSETATTR records, a full
	 * sync's snapshot): exact filtered answers identical on every node */
	for (uint32_t q = 0; q < VEC_QUERIES; q += 8)
		for (uint32_t k = 0; k < 2; k++) {
			struct knn_ans want, a;
			enum pm_client_status st = knn_filtered(cs[0], q, coll_name[k], true, VEC_FILTER, &want);
			if ((st != PM_CLIENT_OK || want.count != VEC_K) && bad++ < DIFFS_PRINTED)
				printf("\n  %s filtered KNN %u in %s: %s, %u hits", names[0], q, coll_name[k],
				       pm_client_status_name(st), want.count);
			for (uint32_t r = 1; r < nc; r++) {
				knn_filtered(cs[r], q, coll_name[k], true, VEC_FILTER, &a);
				if (memcmp(&a, &want, sizeof(a)) && bad++ < DIFFS_PRINTED)
					printf("\n  %s filtered KNN %u in %s: %u hits; %s: %u hits", names[r], q,
					       coll_name[k], a.count, names[0], want.count);
			}
		}
	for (uint32_t r = 0; r < nc; r++)
		recall[r] = (double)hits[r] / (double)(VEC_QUERIES * VEC_K);
	return bad;
}

/* Writes to a replica: READONLY, the primary named, nothing changed. */
static void readonly_check(const struct node *rep, const struct node *p)
{
	struct pm_client *c = node_client(rep);
	char key[32], want[96], named[96] = "";
	uint8_t val[KV_VALUE_BYTES_MAX], before[KV_VALUE_BYTES_MAX];
	size_t n = 0, nb = 0;
	float v[VEC_DIM] = { 1.0f };
	bool removed = false;
	CU_ASSERT_FATAL(c != NULL);
	uint32_t klen = kv_key(1, key); /* a key the load left with a value */
	CU_ASSERT_EQUAL(pm_client_get(c, key, klen, before, sizeof(before), &nb), PM_CLIENT_OK);
	enum pm_client_status st[] = {
		pm_client_set(c, key, klen, "x", 1, 0),
		pm_client_del(c, key, klen, &removed),
		pm_client_vadd(c, "ro-vec", 6, v, VEC_DIM, coll_name[COLL_FLAT], 0),
		pm_client_vdel(c, "f1", 2, &removed),
		pm_client_collection_create(c, "ro-coll", &coll_params[COLL_FLAT]),
		pm_client_collection_drop(c, coll_name[COLL_FLAT], &removed),
	};
	static const char *const op[] = { "SET", "DEL", "VADD", "VDEL", "CCREATE", "CDROP" };
	for (uint32_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		if (st[i] != PM_CLIENT_E_READONLY)
			printf("\n  %s to %s: %s, not E_READONLY", op[i], rep->name,
			       pm_client_status_name(st[i]));
		CU_ASSERT_EQUAL(st[i], PM_CLIENT_E_READONLY);
	}
	snprintf(want, sizeof(want), "127.0.0.1:%u/udp,%u/tcp", p->pm.base, p->pm.base - 1u);
	CU_ASSERT_EQUAL(pm_client_primary(c, named, sizeof(named)), 0);
	if (strcmp(named, want))
		printf("\n  READONLY from %s named the primary \"%s\", not \"%s\"", rep->name, named, want);
	CU_ASSERT_STRING_EQUAL(named, want);
	/* nothing was done: the key as before, the vectors and collections as they were */
	CU_ASSERT_EQUAL(pm_client_get(c, key, klen, val, sizeof(val), &n), PM_CLIENT_OK);
	CU_ASSERT(n == nb && !memcmp(val, before, n));
	struct pm_client_vector out = { .vec = v, .cap = VEC_DIM };
	CU_ASSERT_EQUAL(pm_client_vget(c, "ro-vec", 6, &out), PM_CLIENT_NOT_FOUND);
	CU_ASSERT_EQUAL(pm_client_vget(c, "f1", 2, &out), PM_CLIENT_OK);
	pm_client_close(c);
}

/* ---------------------------------------------------------------- test 1 */

static void test_replicate(void)
{
	struct node p, r1, r2;
	leftovers_remove();
	node_init(&p, "primary", SHARDS, NULL);
	node_init(&r1, "replica1", SHARDS, NULL);
	node_init(&r2, "replica2", SHARDS, NULL);
	CU_ASSERT_FATAL(node_start(&p));
	r1.follow = r2.follow = p.pm.repl_port;
	CU_ASSERT_FATAL(node_start(&r1));
	CU_ASSERT_FATAL(replicas_linked(&p, 1));
	struct pm_client *pc = node_client(&p);
	CU_ASSERT_FATAL(pc != NULL);
	uint64_t t0 = proc_now_ms();
	CU_ASSERT(load_a(pc));
	/* the second replica joins with data there: a snapshot, then the log */
	CU_ASSERT_FATAL(node_start(&r2));
	CU_ASSERT(load_b(pc));
	uint64_t t_load = proc_now_ms() - t0;
	struct node *reps[] = { &r1, &r2 };
	CU_ASSERT_FATAL(synced(&p, reps, 2));
	uint64_t t_sync = proc_now_ms() - t0 - t_load;
	CU_ASSERT(short_ttl_gone(pc));
	struct pm_client *cs[3] = { pc, node_client(&r1), node_client(&r2) };
	const char *names[3] = { p.name, r1.name, r2.name };
	CU_ASSERT_FATAL(cs[1] && cs[2]);
	uint64_t t1 = proc_now_ms();
	struct reads *rd[3];
	for (uint32_t i = 0; i < 3; i++) {
		CU_ASSERT_FATAL((rd[i] = malloc(sizeof(*rd[i]))) != NULL);
		reads_take(cs[i], rd[i]);
	}
	uint64_t t2 = proc_now_ms();
	uint64_t kv_bad = kv_compare(rd, names, 3);
	uint64_t vec_bad = vec_compare(rd, names, 3);
	for (uint32_t i = 0; i < 3; i++)
		free(rd[i]);
	uint64_t t3 = proc_now_ms();
	uint64_t coll_bad = clist_compare(cs, names, 3);
	double recall[3];
	uint64_t knn_bad = knn_compare(cs, names, 3, recall);
	uint64_t t4 = proc_now_ms();
	printf("\n  TTL expiry waited %" PRIu64 " ms; keys and vectors read in %" PRIu64 " ms,"
	       " compared in %" PRIu64 " ms; collections and KNN %" PRIu64 " ms",
	       t1 - t0 - t_load - t_sync, t2 - t1, t3 - t2, t4 - t3);
	long long full = node_total(&r2, "repl_full_syncs_received");
	printf("\n  loaded in %" PRIu64 " ms, replicas at the primary's LSN %" PRIu64
	       " ms later; replica2 received %lld full syncs; differ: %" PRIu64 " keys, %" PRIu64
	       " vectors, %" PRIu64 " collections, %" PRIu64 " exact answers; recall@%u %.4f %.4f"
	       " %.4f",
	       t_load, t_sync, full, kv_bad, vec_bad, coll_bad, knn_bad, VEC_K, recall[0], recall[1],
	       recall[2]);
	CU_ASSERT_EQUAL(kv_bad, 0);
	CU_ASSERT_EQUAL(vec_bad, 0);
	CU_ASSERT_EQUAL(coll_bad, 0);
	CU_ASSERT_EQUAL(knn_bad, 0);
	CU_ASSERT(recall[0] > 0.5); /* the graph answers at all */
	CU_ASSERT(fabs(recall[1] - recall[0]) <= RECALL_SLACK);
	CU_ASSERT(fabs(recall[2] - recall[0]) <= RECALL_SLACK);
	/* the late replica had a full sync of each shard (a snapshot, the HNSW graph in it) */
	CU_ASSERT(full >= (long long)SHARDS);
	readonly_check(&r1, &p);
	readonly_check(&r2, &p);
	for (uint32_t i = 0; i < 3; i++)
		pm_client_close(cs[i]);
	CU_ASSERT(node_stop(&r2));
	CU_ASSERT(node_stop(&r1));
	CU_ASSERT(node_stop(&p));
	node_free(&r2);
	node_free(&r1);
	node_free(&p);
}

/* ---------------------------------------------------------------- writers */

static void writers_init(uint32_t value_max)
{
	for (uint32_t i = 0; i < WRITERS; i++)
		cw_writer_init(&ws[i], &run, i, value_max);
}

static void writers_free(void)
{
	for (uint32_t i = 0; i < WRITERS; i++)
		cw_writer_free(&ws[i]);
}

static uint64_t writers_failed(bool print)
{
	uint64_t failed = 0;
	for (uint32_t i = 0; i < WRITERS; i++) {
		if (ws[i].failed && print)
			printf("\n  writer %u: %" PRIu64 " writes failed, the first key %u: %s", ws[i].id,
			       ws[i].failed, ws[i].first_err_key, pm_client_status_name(ws[i].first_err));
		failed += ws[i].failed;
	}
	return failed;
}

/* Writers on n until `target` acknowledgements, then every reply waited
 * for; true if they got there with no failure. */
static bool writers_quiet(const struct node *n, uint64_t target, uint64_t seed)
{
	pthread_t t[WRITERS];
	if (!cw_start(&run, ws, WRITERS, t, &n->pm, seed, target))
		return false;
	cw_wait(&run, target, false);
	bool reached = atomic_load(&run.acked) >= target;
	atomic_store(&run.stop, true);
	cw_wait(&run, target, true);
	cw_join(&run, ws, WRITERS, t);
	if (!reached)
		printf("\n  writers on %s: %" PRIu64 " of %" PRIu64 " writes acknowledged", n->name,
		       (uint64_t)atomic_load(&run.acked), target);
	return reached && writers_failed(true) == 0;
}

/* Writers on n in the background, until writers_stop(): what the test does
 * meanwhile happens under load. */
static void writers_go(const struct node *n, pthread_t *t, uint64_t seed)
{
	CU_ASSERT_FATAL(cw_start(&run, ws, WRITERS, t, &n->pm, seed, UINT64_MAX));
}

/* Until `more` further writes are acknowledged (at most CW_ACK_WAIT_MS). */
static void writers_more(uint64_t more)
{
	cw_wait(&run, atomic_load(&run.acked) + more, false);
}

/* Stop them: every reply waited for. The writes acknowledged. */
static uint64_t writers_stop(pthread_t *t)
{
	atomic_store(&run.stop, true);
	cw_wait(&run, 0, true);
	cw_join(&run, ws, WRITERS, t);
	return atomic_load(&run.acked);
}

/* Every key of the writers on n as they were acknowledged (and a write in
 * flight at a kill settled to what n holds when settle); the keys wrong. */
static uint64_t writers_check(const struct node *n, bool settle, uint64_t *keys)
{
	uint64_t bad = cw_check(&run, ws, WRITERS, &n->pm, settle, keys);
	if (bad)
		printf("\n  %s: %" PRIu64 " of %" PRIu64 " keys wrong", n->name, bad, *keys);
	return bad;
}

/* ---------------------------------------------------------------- test 2 */

struct round_result {
	uint64_t target, acked, sent, in_flight, failed, bad, bad_after, keys;
	long long epoch0, epoch1, epoch_old;
	bool killed, promoted, primary, restarted, synced, live;
};

/* Writers on prim until the target, then SIGKILL with writes in flight. */
static void round_kill(struct node *prim, uint64_t seed, struct round_result *rr)
{
	pthread_t t[WRITERS];
	CU_ASSERT_FATAL(cw_start(&run, ws, WRITERS, t, &prim->pm, seed, rr->target));
	cw_wait(&run, rr->target, false);
	rr->acked = atomic_load(&run.acked);
	rr->in_flight = atomic_load(&run.sent) - atomic_load(&run.done);
	rr->killed = pomaid_kill(&prim->pm);
	cw_join(&run, ws, WRITERS, t);
	rr->sent = atomic_load(&run.sent);
	rr->failed = writers_failed(true);
}

/* One failover: kill the primary, promote the replica, check it, bring the
 * old primary back as its replica and check that too. */
static bool failover_round(struct node *prim, struct node *rep, unsigned r)
{
	struct round_result rr = { 0 };
	uint64_t rng = suite_seed ^ (0xfa11ull << 32) ^ r, t0 = proc_now_ms(), keys2 = 0;
	rr.target = ACKS_MIN + pm_test_rand(&rng) % (ACKS_MAX - ACKS_MIN);
	run.round = r;
	rr.epoch0 = node_field(rep, "repl_epoch");
	round_kill(prim, suite_seed + 1000003u * r, &rr);
	rr.promoted = promote(rep, false);
	rr.primary = rr.promoted && shards_reach(rep, "role", 0, "primary", LINK_WAIT_MS);
	rr.epoch1 = node_field(rep, "repl_epoch");
	rr.bad = writers_check(rep, true, &rr.keys);
	/* the old primary as the new one's replica: its divergent tail goes */
	prim->follow = rep->pm.repl_port;
	rr.restarted = node_start(prim);
	rr.synced = rr.restarted && synced(rep, &prim, 1);
	rr.epoch_old = rr.restarted ? node_field(prim, "repl_epoch") : -1;
	long long discarded = rr.restarted ? node_total(prim, "repl_discarded_records") : -1;
	rr.bad_after = rr.synced ? writers_check(prim, false, &keys2) : UINT64_MAX;
	rr.live = rr.synced && replica_live(rep);
	printf("\n  round %2u: %s killed after %4" PRIu64 " acks (target %4" PRIu64 ", %3" PRIu64
	       " in flight); %s promoted, epoch %lld -> %lld; %5" PRIu64 " keys, %" PRIu64
	       " wrong; %s back as its replica (epoch %lld, discarded %lld), %" PRIu64 " wrong; %" PRIu64
	       " ms", r, prim->name, rr.acked, rr.target, rr.in_flight, rep->name, rr.epoch0, rr.epoch1,
	       rr.keys, rr.bad, prim->name, rr.epoch_old, discarded, rr.bad_after, proc_now_ms() - t0);
	fflush(stdout);
	CU_ASSERT(rr.acked >= rr.target);
	CU_ASSERT(rr.killed);
	CU_ASSERT_EQUAL(rr.failed, 0);
	CU_ASSERT(rr.promoted);
	CU_ASSERT(rr.primary);
	CU_ASSERT(rr.epoch0 >= 0 && rr.epoch1 > rr.epoch0);
	CU_ASSERT_EQUAL(rr.bad, 0);
	CU_ASSERT(rr.restarted);
	CU_ASSERT(rr.synced);
	CU_ASSERT_EQUAL(rr.epoch_old, rr.epoch1);
	CU_ASSERT_EQUAL(rr.bad_after, 0);
	CU_ASSERT(rr.live);
	return rr.acked >= rr.target && rr.killed && rr.failed == 0 && rr.primary &&
	       rr.epoch1 > rr.epoch0 && rr.bad == 0 && rr.synced && rr.epoch_old == rr.epoch1 &&
	       rr.bad_after == 0 && rr.live;
}

static void test_failover(void)
{
	struct node a, b;
	leftovers_remove();
	node_init(&a, "a", SHARDS, durable_flags);
	node_init(&b, "b", SHARDS, durable_flags);
	writers_init(CW_VALUE_BYTES_MAX);
	run.test = "failover";
	CU_ASSERT_FATAL(node_start(&a));
	b.follow = a.pm.repl_port;
	CU_ASSERT_FATAL(node_start(&b));
	struct node *first[] = { &b };
	CU_ASSERT_FATAL(replica_live(&a));
	CU_ASSERT_FATAL(synced(&a, first, 1)); /* b has the primary's epoch before round 0 reads it */
	struct node *prim = &a, *rep = &b;
	bool ok = true;
	for (unsigned r = 0; r < rounds && ok; r++) {
		ok = failover_round(prim, rep, r);
		struct node *t = prim;
		prim = rep;
		rep = t;
	}
	if (ok) {
		CU_ASSERT(node_stop(rep));
		CU_ASSERT(node_stop(prim));
	}
	writers_free();
	node_free(&a);
	node_free(&b);
}

/* ---------------------------------------------------------------- test 3: resume */

/* A primary and a replica, named and given writers of values up to
 * value_max for test `test`, the replica caught up with RESUME_ACKS writes. */
static void pair_up(struct node *p, const char *pname, struct node *r, const char *rname,
		    uint32_t value_max, const char *test, uint64_t seed)
{
	struct node *reps[] = { r };
	leftovers_remove();
	node_init(p, pname, SHARDS, NULL);
	node_init(r, rname, SHARDS, NULL);
	writers_init(value_max);
	run.test = test;
	CU_ASSERT_FATAL(node_start(p));
	r->follow = p->pm.repl_port;
	CU_ASSERT_FATAL(node_start(r));
	CU_ASSERT_FATAL(writers_quiet(p, RESUME_ACKS, seed));
	CU_ASSERT_FATAL(synced(p, reps, 1));
}

static void test_resume(void)
{
	struct node p, r;
	struct node *reps[] = { &r };
	uint64_t keys = 0;
	pair_up(&p, "primary", &r, "replica", CW_VALUE_BYTES_MAX, "resume", suite_seed + 31);
	long long full0 = node_total(&p, "repl_full_syncs");
	long long part0 = node_total(&p, "repl_partial_syncs");
	CU_ASSERT_FATAL(pomaid_kill(&r.pm));
	CU_ASSERT_FATAL(writers_quiet(&p, RESUME_ACKS, suite_seed + 32));
	/* back while the primary takes writes: it catches up from the log on
	 * disk and joins the live stream */
	pthread_t t[WRITERS];
	writers_go(&p, t, suite_seed + 33);
	CU_ASSERT_FATAL(node_start(&r));
	bool linked = shards_reach(&r, "repl_link", 0, "streaming", LINK_WAIT_MS);
	writers_more(RESUME_ACKS);
	uint64_t acked = writers_stop(t);
	CU_ASSERT_EQUAL(writers_failed(true), 0);
	CU_ASSERT_FATAL(linked);
	CU_ASSERT(acked >= RESUME_ACKS);
	CU_ASSERT_FATAL(synced(&p, reps, 1));
	long long full1 = node_total(&p, "repl_full_syncs");
	long long part1 = node_total(&p, "repl_partial_syncs");
	long long received = node_total(&r, "repl_full_syncs_received");
	uint64_t bad = writers_check(&r, false, &keys);
	printf("\n  replica SIGKILLed, restarted (replayed %" PRIu64 " records of its own log):"
	       " primary's full syncs %lld -> %lld, partial %lld -> %lld; the replica received %lld"
	       " full syncs; %" PRIu64 " keys, %" PRIu64 " wrong",
	       pomaid_recovered(&r.pm), full0, full1, part0, part1, received, keys, bad);
	CU_ASSERT(full0 >= 0 && full1 == full0);
	CU_ASSERT(part0 >= 0 && part1 >= part0 + (long long)SHARDS);
	CU_ASSERT_EQUAL(received, 0);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(node_stop(&r));
	CU_ASSERT(node_stop(&p));
	writers_free();
	node_free(&r);
	node_free(&p);
}

/* ---------------------------------------------------------------- test 3: retention */

/* The least log bytes any shard of n has written. */
static long long wal_bytes_min(const struct node *n)
{
	char *text = node_info(n);
	long long least = -1;
	for (uint32_t s = 0; text && s < SHARDS; s++) {
		long long b = sfield(text, s, "wal_bytes");
		least = least < 0 || b < least ? b : least;
	}
	free(text);
	return least;
}

static long long segments_let_go(const struct node *n)
{
	return node_total(n, "wal_segments_retired") + node_total(n, "wal_segments_deleted");
}

static void test_retention(void)
{
	struct node p, r;
	struct node *reps[] = { &r };
	uint64_t keys = 0;
	pair_up(&p, "primary", &r, "replica", RETENTION_VALUE_BYTES_MAX, "retention",
		suite_seed + 41);
	CU_ASSERT_FATAL(node_stop(&r));
	long long full0 = node_total(&p, "repl_full_syncs");
	long long bytes0 = wal_bytes_min(&p), let0 = segments_let_go(&p);
	long long snaps0 = node_total(&p, "snapshots_completed");
	/* every shard writes a whole segment past the replica's last record ... */
	unsigned chunks = 0;
	while (wal_bytes_min(&p) < bytes0 + (long long)SEGMENT_BYTES && chunks < RETENTION_CHUNKS_MAX)
		CU_ASSERT_FATAL(writers_quiet(&p, RETENTION_CHUNK_ACKS, suite_seed + 42 + chunks++));
	CU_ASSERT_FATAL(wal_bytes_min(&p) >= bytes0 + (long long)SEGMENT_BYTES);
	/* ... and a snapshot lets go of the segments before it */
	CU_ASSERT_FATAL(lib_snapshot(&p.pm));
	CU_ASSERT_FATAL(lib_info_reaches(&p.pm, "snapshots_completed", snaps0 + SHARDS,
					 LIB_INFO_WAIT_MS));
	long long let1 = segments_let_go(&p);
	if (let1 < let0 + (long long)SHARDS)
		printf("\n  the snapshot let go of %lld segments (before: %lld): the replica's records"
		       " may still be on disk", let1, let0);
	CU_ASSERT_FATAL(let1 >= let0 + (long long)SHARDS);
	CU_ASSERT_FATAL(node_start(&r));
	CU_ASSERT_FATAL(synced(&p, reps, 1));
	long long full1 = node_total(&p, "repl_full_syncs");
	long long received = node_total(&r, "repl_full_syncs_received");
	uint64_t bad = writers_check(&r, false, &keys);
	printf("\n  %u chunks of %u writes while the replica was away; segments let go %lld -> %lld;"
	       " primary's full syncs %lld -> %lld, the replica received %lld; %" PRIu64 " keys, %" PRIu64
	       " wrong", chunks, RETENTION_CHUNK_ACKS, let0, let1, full0, full1, received, keys, bad);
	CU_ASSERT(full0 >= 0 && full1 >= full0 + (long long)SHARDS);
	CU_ASSERT(received >= (long long)SHARDS);
	CU_ASSERT_EQUAL(bad, 0);
	/* the log it keeps after the snapshot it installed is its own again: a
	 * SIGKILL and a restart resume from it */
	long long part1 = node_total(&p, "repl_partial_syncs");
	CU_ASSERT_FATAL(pomaid_kill(&r.pm));
	CU_ASSERT_FATAL(writers_quiet(&p, RESUME_ACKS, suite_seed + 60));
	bool restarted = node_start(&r);
	bool again = restarted && synced(&p, reps, 1);
	long long full2 = node_total(&p, "repl_full_syncs");
	long long part2 = node_total(&p, "repl_partial_syncs");
	uint64_t bad2 = again ? writers_check(&r, false, &keys) : UINT64_MAX;
	printf("\n  after its full sync, the replica SIGKILLed and restarted: %s; primary's full"
	       " syncs %lld -> %lld, partial %lld -> %lld; %" PRIu64 " keys, %" PRIu64 " wrong",
	       restarted ? "started" : "did not start", full1, full2, part1, part2, keys, bad2);
	CU_ASSERT(restarted);
	CU_ASSERT(again);
	CU_ASSERT_EQUAL(full2, full1);
	CU_ASSERT(part2 >= part1 + (long long)SHARDS);
	CU_ASSERT_EQUAL(bad2, 0);
	CU_ASSERT(!restarted || node_stop(&r));
	CU_ASSERT(node_stop(&p));
	writers_free();
	node_free(&r);
	node_free(&p);
}

/* ---------------------------------------------------------------- test 3: a cut stream */

/* Every shard's log on the replica ends where the primary's does: a record
 * applied twice, or skipped, would put it elsewhere. */
static bool logs_end_alike(const struct node *p, const struct node *r)
{
	char *pt = node_info(p), *rt = node_info(r);
	bool same = pt && rt;
	for (uint32_t s = 0; s < SHARDS && same; s++) {
		long long a = sfield(pt, s, "wal_next_lsn"), b = sfield(rt, s, "wal_next_lsn");
		same = a > 0 && a == b;
		if (!same)
			printf("\n  shard %u: the primary's next LSN %lld, the replica's %lld", s, a, b);
	}
	free(pt);
	free(rt);
	return same;
}

/* Poll until the proxy counter reaches want (a bounded poll of the proxy's thread). */
static bool proxy_reaches(atomic_uint *counter, unsigned want)
{
	uint64_t deadline = proc_now_ms() + CUT_WAIT_MS;
	while (atomic_load(counter) < want && proc_now_ms() < deadline)
		proc_pause_ms(PROC_POLL_MS);
	return atomic_load(counter) >= want;
}

static void test_cut_stream(void)
{
	struct node p, r;
	struct node *reps[] = { &r };
	static struct repl_proxy px;
	pthread_t t[WRITERS];
	uint64_t keys = 0;
	leftovers_remove();
	node_init(&p, "primary", SHARDS, NULL);
	node_init(&r, "replica", SHARDS, NULL);
	writers_init(CW_VALUE_BYTES_MAX);
	run.test = "cut";
	CU_ASSERT_FATAL(node_start(&p));
	CU_ASSERT_FATAL(repl_proxy_start(&px, p.pm.repl_port));
	r.follow = px.port;
	CU_ASSERT_FATAL(node_start(&r));
	CU_ASSERT_FATAL(replica_live(&p));
	long long full0 = node_total(&p, "repl_full_syncs");
	long long part0 = node_total(&p, "repl_partial_syncs");
	/* writers go on while the stream is cut CUTS times, each in a RECORDS frame */
	writers_go(&p, t, suite_seed + 51);
	unsigned cuts = 0;
	bool cut_ok = true;
	for (unsigned i = 0; i < CUTS && cut_ok; i++) {
		unsigned accepted = atomic_load(&px.accepted);
		repl_proxy_arm(&px);
		cut_ok = proxy_reaches(&px.cuts, i + 1) && proxy_reaches(&px.accepted, accepted + 1);
		cuts = atomic_load(&px.cuts);
		printf("\n  cut %u: a RECORDS frame of %" PRIu64 " bytes cut after %" PRIu64
		       "; the replica connected again: %s", i + 1,
		       (uint64_t)atomic_load(&px.cut_frame_bytes),
		       (uint64_t)atomic_load(&px.cut_after_bytes), cut_ok ? "yes" : "no");
	}
	uint64_t acked = writers_stop(t);
	CU_ASSERT_EQUAL(writers_failed(true), 0);
	CU_ASSERT_EQUAL(cuts, CUTS);
	CU_ASSERT_FATAL(synced(&p, reps, 1));
	long long full1 = node_total(&p, "repl_full_syncs");
	long long part1 = node_total(&p, "repl_partial_syncs");
	long long errors = node_total(&r, "repl_apply_errors");
	long long drops = node_total(&r, "repl_link_drops");
	uint64_t bad = writers_check(&r, false, &keys);
	uint64_t bad_p = writers_check(&p, false, &keys);
	printf("\n  %" PRIu64 " writes; primary's full syncs %lld -> %lld, partial %lld -> %lld;"
	       " replica: %lld link drops, %lld apply errors; %" PRIu64 " keys, %" PRIu64 " wrong",
	       acked, full0, full1, part0, part1, drops, errors, keys, bad);
	CU_ASSERT(logs_end_alike(&p, &r));
	CU_ASSERT_EQUAL(errors, 0);
	CU_ASSERT(drops >= (long long)CUTS);
	CU_ASSERT(full0 >= 0 && full1 == full0);
	CU_ASSERT(part1 >= part0 + (long long)CUTS);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(bad_p, 0);
	CU_ASSERT(node_stop(&r));
	CU_ASSERT(node_stop(&p));
	repl_proxy_stop(&px);
	writers_free();
	node_free(&r);
	node_free(&p);
}

/* ---------------------------------------------------------------- test 3: a divergent tail */

/* (3f) An old primary's tail that its replica never saw: the replica,
 * promoted, takes fewer writes than that tail; the old primary follows it
 * and loses the tail in a full sync whose snapshot ends before the tail
 * did; promoted in its turn, written to and SIGKILLed, it starts again
 * on the log it wrote after the snapshot it installed (the sequence of test
 * 2's rounds, made certain; 3b restarts a replica after a full sync). */

/* SET <prefix><i> for i < n on n's node (pipelined); true if every one was
 * acknowledged. */
static bool keys_write(const struct node *at, const char *prefix, uint32_t n)
{
	struct pipe p = { .c = node_client(at) };
	char key[32];
	if (!p.c)
		return false;
	for (uint32_t i = 0; i < n; i++) {
		struct pm_client_req r = { .op = PM_CLIENT_SET, .key = key,
					   .klen = (uint32_t)snprintf(key, sizeof(key), "%s%u", prefix, i),
					   .value = prefix, .vlen = (uint32_t)strlen(prefix) };
		pipe_submit(&p, &r);
	}
	bool ok = pipe_done(&p, prefix);
	pm_client_close(p.c);
	return ok;
}

/* How many of <prefix><i>, i < n, the node holds (UINT32_MAX: no client). */
static uint32_t keys_count(const struct node *at, const char *prefix, uint32_t n)
{
	struct pm_client *c = node_client(at);
	uint32_t there = 0;
	char key[32], buf[32];
	size_t len;
	for (uint32_t i = 0; c && i < n; i++)
		there += pm_client_get(c, key, (size_t)snprintf(key, sizeof(key), "%s%u", prefix, i),
				       buf, sizeof(buf), &len) == PM_CLIENT_OK;
	pm_client_close(c);
	return c ? there : UINT32_MAX;
}

static void test_divergent_tail(void)
{
	struct node p, r;
	struct node *olds[] = { &p };
	uint64_t keys = 0;
	pair_up(&p, "old-primary", &r, "new-primary", CW_VALUE_BYTES_MAX, "divergent",
		suite_seed + 71);
	/* the replica goes; the primary logs a tail it never sees, then dies */
	CU_ASSERT_FATAL(pomaid_kill(&r.pm));
	CU_ASSERT_FATAL(keys_write(&p, "tail", TAIL_KEYS));
	CU_ASSERT_FATAL(pomaid_kill(&p.pm));
	/* the replica comes back alone, is promoted and takes writes */
	r.follow = 0; /* its persisted role: a replica of the dead primary */
	CU_ASSERT_FATAL(node_start(&r));
	CU_ASSERT_FATAL(promote(&r, false));
	CU_ASSERT_FATAL(shards_reach(&r, "role", 0, "primary", LINK_WAIT_MS));
	CU_ASSERT_FATAL(writers_quiet(&r, PROMOTED_ACKS, suite_seed + 72));
	/* the old primary follows it: its tail is discarded by a full sync */
	long long full0 = node_total(&r, "repl_full_syncs");
	p.follow = r.pm.repl_port;
	CU_ASSERT_FATAL(node_start(&p));
	CU_ASSERT_FATAL(synced(&r, olds, 1));
	long long full1 = node_total(&r, "repl_full_syncs");
	long long discarded = node_total(&p, "repl_discarded_records");
	uint32_t tail = keys_count(&p, "tail", TAIL_KEYS);
	uint64_t bad = writers_check(&p, false, &keys);
	printf("\n  the old primary's tail of %u writes: full syncs %lld -> %lld, %lld records"
	       " discarded, %u tail keys left, %" PRIu64 " keys, %" PRIu64 " wrong", TAIL_KEYS, full0,
	       full1, discarded, tail, keys, bad);
	CU_ASSERT(full0 >= 0 && full1 >= full0 + 1);
	CU_ASSERT(discarded >= (long long)TAIL_KEYS);
	CU_ASSERT(node_log_has(&p, "discard", "record"));
	CU_ASSERT_EQUAL(tail, 0);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(node_stop(&r));
	/* promoted in its turn, it writes its own log after the installed
	 * snapshot; SIGKILLed, it starts again on that log */
	CU_ASSERT_FATAL(promote(&p, false));
	CU_ASSERT_FATAL(shards_reach(&p, "role", 0, "primary", LINK_WAIT_MS));
	CU_ASSERT_FATAL(writers_quiet(&p, RESUME_ACKS, suite_seed + 74));
	CU_ASSERT_FATAL(pomaid_kill(&p.pm));
	p.follow = 0;
	bool again2 = node_start(&p);
	uint64_t bad3 = again2 ? writers_check(&p, false, &keys) : UINT64_MAX;
	printf("\n  promoted, written to, SIGKILLed and restarted: %s; %" PRIu64 " keys, %" PRIu64
	       " wrong", again2 ? "started" : "did not start", keys, bad3);
	CU_ASSERT(again2);
	CU_ASSERT_EQUAL(bad3, 0);
	CU_ASSERT(!again2 || node_stop(&p));
	writers_free();
	node_free(&r);
	node_free(&p);
}

/* (3g) A node that takes full syncs twice keeps a log it can restart on:
 * with a log of its own it follows an empty primary (a full sync at LSN 0:
 * its first segment is let go and begun again under the same name), streams
 * from it, then follows another primary (a second full sync lets that
 * segment go), streams more, and is SIGKILLed. It must start on its log and
 * hold the second primary's writes, and nothing else. */
static void test_full_sync_twice(void)
{
	struct node p, q, r;
	struct node *reps[] = { &r };
	leftovers_remove();
	node_init(&p, "first-primary", SHARDS, NULL);
	node_init(&q, "second-primary", SHARDS, NULL);
	node_init(&r, "twice", SHARDS, NULL);
	CU_ASSERT_FATAL(node_start(&p));
	CU_ASSERT_FATAL(node_start(&q));
	CU_ASSERT_FATAL(keys_write(&q, "q1-", TWICE_KEYS));
	CU_ASSERT_FATAL(node_start(&r)); /* a primary of its own first */
	CU_ASSERT_FATAL(keys_write(&r, "own-", TWICE_KEYS));
	CU_ASSERT_FATAL(follow(&r, p.pm.repl_port, false));
	CU_ASSERT_FATAL(synced(&p, reps, 1));
	CU_ASSERT_FATAL(keys_write(&p, "p-", TWICE_KEYS));
	CU_ASSERT_FATAL(synced(&p, reps, 1));
	long long full0 = node_total(&q, "repl_full_syncs");
	CU_ASSERT_FATAL(follow(&r, q.pm.repl_port, false));
	CU_ASSERT_FATAL(synced(&q, reps, 1));
	CU_ASSERT_FATAL(keys_write(&q, "q2-", TWICE_KEYS));
	CU_ASSERT_FATAL(synced(&q, reps, 1));
	long long full1 = node_total(&q, "repl_full_syncs");
	long long received = node_total(&r, "repl_full_syncs_received");
	CU_ASSERT_FATAL(pomaid_kill(&r.pm));
	r.follow = q.pm.repl_port;
	bool restarted = node_start(&r);
	bool again = restarted && synced(&q, reps, 1);
	uint32_t q1 = again ? keys_count(&r, "q1-", TWICE_KEYS) : 0;
	uint32_t q2 = again ? keys_count(&r, "q2-", TWICE_KEYS) : 0;
	uint32_t other = again ? keys_count(&r, "own-", TWICE_KEYS) + keys_count(&r, "p-", TWICE_KEYS)
			       : 0;
	printf("\n  full syncs received: %lld, the second primary's %lld -> %lld; SIGKILLed and"
	       " restarted: %s; the second primary's keys %u + %u of %u + %u, others %u", received,
	       full0, full1, restarted ? "started" : "did not start", q1, q2, TWICE_KEYS, TWICE_KEYS,
	       other);
	CU_ASSERT(received >= 2 * (long long)SHARDS);
	CU_ASSERT(full1 >= full0 + (long long)SHARDS);
	CU_ASSERT(restarted);
	CU_ASSERT(again);
	CU_ASSERT_EQUAL(q1, TWICE_KEYS);
	CU_ASSERT_EQUAL(q2, TWICE_KEYS);
	CU_ASSERT_EQUAL(other, 0);
	CU_ASSERT(!restarted || node_stop(&r));
	CU_ASSERT(node_stop(&q));
	CU_ASSERT(node_stop(&p));
	node_free(&r);
	node_free(&q);
	node_free(&p);
}

/* (3h) A full sync's image cut half-way, again and again, then damaged (one
 * bit flipped, caught by the image's CRCs), again and again: the replica — a
 * node with keys of its own — installs none of them, keeps its data and
 * tries again; once the images come whole it installs one and holds exactly
 * the primary's keys. (The proxy faults every SNAP_DATA frame while the fault
 * is on, so each shard's attempts all fail until it is off.) */
static void test_image_faults(void)
{
	struct node p, r;
	struct node *reps[] = { &r };
	static struct repl_proxy px;
	leftovers_remove();
	node_init(&p, "image-primary", SHARDS, NULL);
	node_init(&r, "image-replica", SHARDS, NULL);
	CU_ASSERT_FATAL(node_start(&p));
	CU_ASSERT_FATAL(keys_write(&p, "p-", IMAGE_KEYS));
	CU_ASSERT_FATAL(node_start(&r)); /* a primary of its own first */
	CU_ASSERT_FATAL(keys_write(&r, "own-", IMAGE_KEYS));
	CU_ASSERT_FATAL(repl_proxy_start(&px, p.pm.repl_port));
	static const char *const what[] = { "", "cut half-way", "with a bit flipped" };
	for (int fault = REPL_PROXY_IMAGE_CUT; fault <= REPL_PROXY_IMAGE_FLIP; fault++) {
		unsigned before = atomic_load(&px.image_faults);
		atomic_store(&px.image_fault, fault);
		if (fault == REPL_PROXY_IMAGE_CUT)
			CU_ASSERT_FATAL(follow(&r, px.port, false));
		bool tried = proxy_reaches(&px.image_faults, before + IMAGE_FAULTS_PER_SHARD * SHARDS);
		uint32_t own = keys_count(&r, "own-", IMAGE_KEYS), theirs = keys_count(&r, "p-", IMAGE_KEYS);
		long long installed = node_total(&r, "repl_full_syncs_received");
		printf("\n  images %s: %u (of at least %u); the replica's own keys %u of %u, the"
		       " primary's %u; full syncs installed %lld", what[fault],
		       atomic_load(&px.image_faults) - before, IMAGE_FAULTS_PER_SHARD * SHARDS, own,
		       IMAGE_KEYS, theirs, installed);
		CU_ASSERT(tried);
		CU_ASSERT_EQUAL(own, IMAGE_KEYS);
		CU_ASSERT_EQUAL(theirs, 0);
		CU_ASSERT_EQUAL(installed, 0);
	}
	atomic_store(&px.image_fault, REPL_PROXY_IMAGE_NONE);
	CU_ASSERT_FATAL(synced(&p, reps, 1));
	uint32_t own = keys_count(&r, "own-", IMAGE_KEYS), theirs = keys_count(&r, "p-", IMAGE_KEYS);
	printf("\n  images whole: installed %lld; the primary's keys %u of %u, the replica's own %u",
	       node_total(&r, "repl_full_syncs_received"), theirs, IMAGE_KEYS, own);
	CU_ASSERT_EQUAL(theirs, IMAGE_KEYS);
	CU_ASSERT_EQUAL(own, 0);
	CU_ASSERT(node_total(&r, "repl_full_syncs_received") >= (long long)SHARDS);
	CU_ASSERT(node_stop(&r));
	CU_ASSERT(node_stop(&p));
	repl_proxy_stop(&px);
	node_free(&r);
	node_free(&p);
}

/* ---------------------------------------------------------------- test 3: refusals */

/* The node's refused connections (REPLICATION STATUS's Node part: those the
 * admin thread refuses before any shard sees them); -1 if it did not answer. */
static long long node_refused_connections(const struct node *n)
{
	static char out[CTL_OUT_BYTES];
	if (ctl_admin(n->sock, "REPLICATION STATUS", out, sizeof(out)) != PM_ADMIN_OK)
		return -1;
	return info_text_field(out, NULL, "repl_refused_connections");
}

static void test_shards_differ(void)
{
	struct node p, x;
	char why[256] = "";
	leftovers_remove();
	node_init(&p, "primary", SHARDS, NULL);
	node_init(&x, "replica-1-shard", SHARDS_OTHER, NULL);
	CU_ASSERT_FATAL(node_start(&p));
	CU_ASSERT_FATAL(keys_write(&p, "k", 100));
	x.follow = p.pm.repl_port;
	long long refused0 = node_refused_connections(&p);
	CU_ASSERT_FATAL(node_start(&x));
	/* refused: the primary counts it, and the replica says why (INFO) */
	bool counted = false;
	for (uint64_t deadline = proc_now_ms() + LINK_WAIT_MS; !counted && proc_now_ms() < deadline;
	     proc_pause_ms(PROC_POLL_MS))
		counted = node_refused_connections(&p) > refused0;
	bool said = false;
	for (uint64_t deadline = proc_now_ms() + LINK_WAIT_MS; !said && proc_now_ms() < deadline;
	     proc_pause_ms(PROC_POLL_MS)) {
		char *xt = node_info(&x);
		said = sword(xt, 0, "repl_link_error", why, sizeof(why)) && strcasestr(why, "shard");
		free(xt);
	}
	char *xt = node_info(&x), link[32] = "";
	bool x_refused = tfield(xt, SHARDS_OTHER, "repl_refused") >= 1;
	bool streaming = sword(xt, 0, "repl_link", link, sizeof(link)) && !strcmp(link, "streaming");
	long long keys = tfield(xt, SHARDS_OTHER, "keys");
	free(xt);
	printf("\n  a %u-shard replica of a %u-shard primary: the primary's refused connections"
	       " %lld -> %lld; the replica: refused %s, link %s, keys %lld, repl_link_error \"%s\"",
	       SHARDS_OTHER, SHARDS, refused0, node_refused_connections(&p), x_refused ? "yes" : "no",
	       link, keys, why);
	if (!said)
		node_log_tail(&x);
	CU_ASSERT(refused0 >= 0 && counted);
	CU_ASSERT(said);
	CU_ASSERT(x_refused);
	CU_ASSERT(!streaming);
	CU_ASSERT_EQUAL(keys, 0);
	CU_ASSERT(node_stop(&x));
	CU_ASSERT(node_stop(&p));
	node_free(&x);
	node_free(&p);
}

/* One HELLO from fd, read whole within ms; false if none came. */
static bool hello_read(int fd, struct pm_repl_frame *f, int ms)
{
	static uint8_t buf[PM_REPL_HELLO_BYTES];
	size_t have = 0, used = 0;
	uint64_t deadline = proc_now_ms() + (uint64_t)ms;
	while (have < sizeof(buf) && proc_now_ms() < deadline) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, (int)(deadline - proc_now_ms())) != 1)
			break;
		ssize_t r = read(fd, buf + have, sizeof(buf) - have);
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	return pm_repl_decode(buf, have, f, &used) == PM_REPL_OK && f->type == PM_REPL_HELLO;
}

/* Whether the peer closes fd within ms (EOF or a reset). */
static bool closed_within(int fd, int ms)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	uint8_t b[64];
	uint64_t deadline = proc_now_ms() + (uint64_t)ms;
	while (proc_now_ms() < deadline) {
		if (poll(&pf, 1, (int)(deadline - proc_now_ms())) != 1)
			return false;
		ssize_t r = read(fd, b, sizeof(b));
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return true;
		if (r < 0 && errno != EINTR)
			return false;
	}
	return false;
}

/* The test plays a primary of a lower epoch: r follows it; each of r's
 * shards says HELLO and is WELCOMEd (partial, from its own LSN) at one epoch
 * below the one it has seen. How many of them closed the link on it. */
static uint32_t lower_primary_refused(const struct node *r)
{
	uint16_t port = 0;
	uint32_t closed = 0;
	int lfd = proc_tcp_listen(r->pm.repl_port, &port);
	CU_ASSERT_FATAL(lfd >= 0);
	CU_ASSERT_FATAL(follow(r, port, false));
	for (uint32_t s = 0; s < SHARDS; s++) {
		struct pollfd pf = { .fd = lfd, .events = POLLIN };
		struct pm_repl_frame f;
		uint8_t w[PM_REPL_WELCOME_BYTES];
		if (poll(&pf, 1, LINK_WAIT_MS) != 1)
			break;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		bool hello = fd >= 0 && hello_read(fd, &f, LINK_WAIT_MS);
		size_t n = hello && f.u.hello.epoch > 0
				   ? pm_repl_encode_welcome(w, sizeof(w), PM_REPL_PARTIAL,
							    f.u.hello.epoch - 1, f.u.hello.repl_id,
							    f.u.hello.lsn, htonl(INADDR_LOOPBACK), 0, 0)
				   : 0;
		bool sent = n && write(fd, w, n) == (ssize_t)n;
		bool refused = sent && closed_within(fd, LINK_WAIT_MS);
		if (!refused)
			printf("\n  the fake primary's connection %u: HELLO %s (epoch %" PRIu64 "), WELCOME"
			       " %s, closed by the replica: no", s, hello ? "read" : "not read",
			       hello ? f.u.hello.epoch : 0, sent ? "sent" : "not sent");
		closed += refused;
		if (fd >= 0)
			close(fd);
	}
	close(lfd);
	return closed;
}

static void test_lower_epoch(void)
{
	struct node p, r1, r2;
	struct node *reps[] = { &r2 };
	char w[64];
	leftovers_remove();
	node_init(&p, "old-primary", SHARDS, NULL);
	node_init(&r1, "promoted", SHARDS, NULL);
	node_init(&r2, "replica", SHARDS, NULL);
	CU_ASSERT_FATAL(node_start(&p));
	r1.follow = r2.follow = p.pm.repl_port;
	CU_ASSERT_FATAL(node_start(&r1));
	CU_ASSERT_FATAL(node_start(&r2));
	CU_ASSERT_FATAL(replicas_linked(&p, 2));
	long long e0 = node_field(&p, "repl_epoch");
	/* r1 is promoted; r2 follows it and sees its epoch (pomaictl, this time) */
	CU_ASSERT_FATAL(promote(&r1, true));
	long long e1 = node_field(&r1, "repl_epoch");
	CU_ASSERT_FATAL(e0 >= 0 && e1 > e0);
	CU_ASSERT_FATAL(follow(&r2, r1.pm.repl_port, true));
	ctl_expect(ctl_path, r1.sock, "replication status", 0, "role:primary");
	/* --json: each shard an object; an id stays text (its digits may all be decimal) */
	CU_ASSERT_EQUAL(ctl_json(ctl_path, r1.sock, "replication status",
				 "d['Node']['role'] == 'primary' and "
				 "isinstance(d['Shard 1']['repl_id'], str) and "
				 "len(d['Shard 1']['repl_id']) == 16 and d['Shard 1']['repl_epoch'] >= 2"),
			0);
	ctl_expect(ctl_path, r2.sock, "replication status", 0, "role:replica");
	struct pm_client *c1 = node_client(&r1), *cp = node_client(&p), *c2 = node_client(&r2);
	CU_ASSERT_FATAL(c1 && cp && c2);
	CU_ASSERT_EQUAL(pm_client_set(c1, "after-promote", 13, "new", 3, 0), PM_CLIENT_OK);
	CU_ASSERT_FATAL(synced(&r1, reps, 1));
	CU_ASSERT_EQUAL(node_field(&r2, "repl_epoch"), e1);
	/* the old primary, still at its lower epoch, takes a write r2 must never see */
	CU_ASSERT_EQUAL(pm_client_set(cp, "old-history", 11, "old", 3, 0), PM_CLIENT_OK);
	long long refused0 = node_total(&p, "repl_refused");
	CU_ASSERT_FATAL(follow(&r2, p.pm.repl_port, false));
	bool refused = lib_info_reaches(&p.pm, "repl_refused", refused0 + SHARDS, LINK_WAIT_MS);
	char *text = node_info(&r2);
	bool streaming = false;
	for (uint32_t s = 0; s < SHARDS; s++)
		streaming |= sword(text, s, "repl_link", w, sizeof(w)) && !strcmp(w, "streaming");
	long long e2 = node_field(&r2, "repl_epoch");
	char buf[8];
	size_t n = 0;
	enum pm_client_status old = pm_client_get(c2, "old-history", 11, buf, sizeof(buf), &n);
	enum pm_client_status kept = pm_client_get(c2, "after-promote", 13, buf, sizeof(buf), &n);
	printf("\n  epochs: old primary %lld, promoted %lld; the replica that saw %lld told to"
	       " follow the old primary: refused %s (repl_refused %lld -> %lld), its epoch %lld,"
	       " the old primary's write %s, the promoted one's %s", e0, e1, e1,
	       refused ? "yes" : "no", refused0, node_total(&p, "repl_refused"), e2,
	       pm_client_status_name(old), pm_client_status_name(kept));
	if (!refused || streaming)
		node_repl_print(&r2, text);
	free(text);
	CU_ASSERT(refused0 >= 0 && refused);
	CU_ASSERT(!streaming);
	CU_ASSERT_EQUAL(e2, e1);
	CU_ASSERT_EQUAL(old, PM_CLIENT_NOT_FOUND);
	CU_ASSERT_EQUAL(kept, PM_CLIENT_OK);
	/* the old primary has met a later epoch: fenced, it takes no writes */
	enum pm_client_status fenced = pm_client_set(cp, "after-fence", 11, "x", 1, 0);
	printf("\n  a write to the old primary after that: %s", pm_client_status_name(fenced));
	CU_ASSERT_EQUAL(fenced, PM_CLIENT_E_READONLY);
	/* and the replica's own rule: a primary of a lower epoch than it has
	 * seen is refused by it (a primary played by the test, since a real one
	 * refuses such a replica first) */
	long long rref0 = node_total(&r2, "repl_refused");
	uint32_t closed = lower_primary_refused(&r2);
	char *t2 = node_info(&r2), why[256] = "";
	bool said = sword(t2, 0, "repl_link_error", why, sizeof(why)) && strcasestr(why, "epoch");
	long long rref1 = tfield(t2, SHARDS, "repl_refused"), e3 = sfield(t2, 0, "repl_epoch");
	free(t2);
	printf("\n  a primary one epoch lower WELCOMEs the replica: %u of %u shards closed the link;"
	       " its repl_refused %lld -> %lld, epoch %lld, repl_link_error \"%s\"", closed, SHARDS,
	       rref0, rref1, e3, why);
	CU_ASSERT_EQUAL(closed, SHARDS);
	CU_ASSERT(rref0 >= 0 && rref1 >= rref0 + (long long)SHARDS);
	CU_ASSERT(said);
	CU_ASSERT_EQUAL(e3, e1);
	pm_client_close(c1);
	pm_client_close(cp);
	pm_client_close(c2);
	CU_ASSERT(node_stop(&r2));
	CU_ASSERT(node_stop(&r1));
	CU_ASSERT(node_stop(&p));
	node_free(&r2);
	node_free(&r1);
	node_free(&p);
}

/* ---------------------------------------------------------------- test 4 */

/* A key of the given prefix that lives on shard s, into key; its length. */
static uint32_t key_on(struct pm_client *c, const char *prefix, uint32_t s, char *key)
{
	for (uint32_t i = 0;; i++) {
		uint32_t n = (uint32_t)snprintf(key, 32, "%s%u", prefix, i);
		if (pm_client_shard_of(c, key, n) == s)
			return n;
	}
}

static void test_noreplicas(void)
{
	struct node p, r;
	char key[32], buf[16];
	size_t n;
	leftovers_remove();
	node_init(&p, "primary", SHARDS, min1_flags);
	node_init(&r, "replica", SHARDS, NULL);
	CU_ASSERT_FATAL(node_start(&p));
	r.follow = p.pm.repl_port;
	CU_ASSERT_FATAL(node_start(&r));
	CU_ASSERT_FATAL(replicas_linked(&p, 1));
	struct pm_client *c = node_client(&p);
	CU_ASSERT_FATAL(c != NULL);
	for (uint32_t s = 0; s < SHARDS; s++) {
		uint32_t kl = key_on(c, "before", s, key);
		CU_ASSERT_EQUAL(pm_client_set(c, key, kl, "there", 5, 0), PM_CLIENT_OK);
	}
	CU_ASSERT_FATAL(node_stop(&r));
	for (uint64_t deadline = proc_now_ms() + LINK_WAIT_MS;
	     node_total(&p, "repl_connected_replicas") != 0 && proc_now_ms() < deadline;)
		proc_pause_ms(PROC_POLL_MS);
	CU_ASSERT_FATAL(node_total(&p, "repl_connected_replicas") == 0);
	for (uint32_t s = 0; s < SHARDS; s++) {
		float v[VEC_DIM] = { 1.0f };
		char vkey[32];
		uint32_t vl = key_on(c, "vduring", s, vkey);
		enum pm_client_status vadd = pm_client_vadd(c, vkey, vl, v, VEC_DIM, NULL, 0);
		uint32_t kl = key_on(c, "during", s, key);
		enum pm_client_status set = pm_client_set(c, key, kl, "no", 2, 0);
		enum pm_client_status got = pm_client_get(c, key, kl, buf, sizeof(buf), &n);
		uint32_t bl = key_on(c, "before", s, key);
		enum pm_client_status read = pm_client_get(c, key, bl, buf, sizeof(buf), &n);
		printf("\n  shard %u, its only replica stopped: SET %s, VADD %s, GET of it %s, GET of an"
		       " older key %s", s, pm_client_status_name(set), pm_client_status_name(vadd),
		       pm_client_status_name(got), pm_client_status_name(read));
		CU_ASSERT_EQUAL(set, PM_CLIENT_E_NOREPLICAS);
		CU_ASSERT_EQUAL(vadd, PM_CLIENT_E_NOREPLICAS);
		CU_ASSERT_EQUAL(got, PM_CLIENT_NOT_FOUND); /* nothing applied */
		CU_ASSERT(read == PM_CLIENT_OK && n == 5 && !memcmp(buf, "there", 5));
	}
	/* the replica back: writes go on */
	CU_ASSERT_FATAL(node_start(&r));
	CU_ASSERT_FATAL(replicas_linked(&p, 1));
	for (uint32_t s = 0; s < SHARDS; s++) {
		uint32_t kl = key_on(c, "after", s, key);
		CU_ASSERT_EQUAL(pm_client_set(c, key, kl, "yes", 3, 0), PM_CLIENT_OK);
	}
	pm_client_close(c);
	CU_ASSERT(node_stop(&r));
	CU_ASSERT(node_stop(&p));
	node_free(&r);
	node_free(&p);
}

/* ---------------------------------------------------------------- main */

/* Whether this pomaid replicates at all: its --help names the keys. */
static bool pomaid_replicates(void)
{
	static char out[1 << 16];
	struct proc h;
	proc_init(&h, pomaid_path);
	proc_arg(&h, "--help");
	proc_run(&h, NULL, out, sizeof(out), 0);
	return strstr(out, "--repl-port") && strstr(out, "--replica-of") &&
	       strstr(out, "--min-replicas") && strstr(out, "--repl-ack");
}

int main(int argc, char **argv)
{
	if (argc < 3 || access(argv[1], X_OK) != 0 || access(argv[2], X_OK) != 0) {
		fprintf(stderr, "usage: test_repl PATH-TO-POMAID PATH-TO-POMAICTL\n");
		return 1;
	}
	pomaid_path = argv[1];
	ctl_path = argv[2];
	if (!pomaid_replicates())
		return pm_cu_cannot_run("test_repl", "this pomaid has no replication",
					"its --help lists no repl_port, replica_of, repl_ack, min_replicas");
	const char *s = getenv("POMAI_TEST_SEED"), *r = getenv("POMAI_REPL_ROUNDS");
	keep_dirs = getenv("POMAI_REPL_KEEP") != NULL;
	suite_seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	if (r && strtoul(r, NULL, 0) > 0)
		rounds = (unsigned)strtoul(r, NULL, 0);
	printf("test_repl: seed %" PRIu64 " (POMAI_TEST_SEED=%" PRIu64 " replays it)\n", suite_seed,
	       suite_seed);
	cw_run_init(&run, suite_seed, PROBE_KEYS, PIPE_DEPTH);
	static CU_TestInfo tests[] = {
		{ "1. a primary and two replicas: KV, TTL, vectors, collections equal; READONLY",
		  test_replicate },
		{ "2. SIGKILL the primary under durable writes, promote: nothing acknowledged lost",
		  test_failover },
		{ "3a. a replica SIGKILLed and restarted resumes from its LSN", test_resume },
		{ "3b. a replica away past the log's retention gets a full sync", test_retention },
		{ "3c. a stream cut mid-record resumes without loss or duplication", test_cut_stream },
		{ "3d. a replica with another shard count is refused", test_shards_differ },
		{ "3f. an old primary's divergent tail goes in a full sync; it restarts after it",
		  test_divergent_tail },
		{ "3g. a node resynced by two full syncs restarts on its log", test_full_sync_twice },
		{ "3h. full-sync images cut, then damaged: refused, data kept, whole one installed",
		  test_image_faults },
		{ "3e. epochs: an old primary refuses (and is fenced), a replica refuses a lower one",
		  test_lower_epoch },
		{ "4. min_replicas = 1, no replica: writes NOREPLICAS, reads go on", test_noreplicas },
		CU_TEST_INFO_NULL,
	};
	/* POMAI_REPL_ONLY=text: only the tests whose name holds it (a quick rerun) */
	const char *only = getenv("POMAI_REPL_ONLY");
	static CU_TestInfo chosen[sizeof(tests) / sizeof(tests[0])];
	size_t n = 0;
	for (CU_TestInfo *t = tests; t->pName; t++)
		if (!only || strstr(t->pName, only))
			chosen[n++] = *t;
	chosen[n] = (CU_TestInfo)CU_TEST_INFO_NULL;
	int rc = pm_cu_run("repl", chosen);
	leftovers_remove();
	printf("test_repl: seed %" PRIu64 "\n", suite_seed);
	return rc;
}
