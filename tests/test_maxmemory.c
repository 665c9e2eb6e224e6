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
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cu_main.h"
#include "libclient.h"
#include "pomai.h"
#include "proc.h"

#define SHARDS 2u
#define MAXMEMORY "1M"
#define MAXMEMORY_BYTES (UINT64_C(1) << 20)
/* Keys and their values: 700 B (a 768-byte class + a 64-byte seed), so the
 * 2 x 1 MiB limit holds about 2,500 of the 6,000 written. */
#define KEYS 6000u
#define VALUE_BYTES 700u
/* Waits: a snapshot (polled). */
#define SNAP_WAIT_MS 30000
#define SNAP_POLL_MS 10
/* SETs in flight at once (sync mode acknowledges a batch per fdatasync). */
#define CLIENT_IN_FLIGHT 64u
#define INFO_TEXT_BYTES (PM_CLIENT_INFO_REPLY_BYTES_MAX + 1)

static struct pomaid srv = {
	.flags = (const char *const[]){ "--wal", "sync", "--arena-bytes", "64M", "--seeds",
					"65536", "--maxmemory", MAXMEMORY, "--maxmemory-policy",
					"harvest", "--wal-segment-bytes", "16M", "--knn-timeout-ms",
					"2000", "--hugepages", "no", NULL },
};

/* ---------------------------------------------------------------- client */

/* A write's budget: 1 + 2 + 4 + 8 + 16 s (a busy disk is not a hang). */
static struct pm_client *client_open(void)
{
	return lib_open(&srv, LIB_TIMEOUT_MS, LIB_RETRIES, CLIENT_IN_FLIGHT);
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

/* A field of INFO (every section, the first occurrence); -1 if absent. */
static long long info_total(struct pm_client *c, const char *field)
{
	return lib_info(c, NULL, NULL, field);
}

static bool snapshot_done(struct pm_client *c)
{
	if (pm_client_snapshot(c) != PM_CLIENT_OK)
		return false;
	for (uint64_t t0 = proc_now_ms(); proc_now_ms() - t0 < SNAP_WAIT_MS;
	     proc_pause_ms(SNAP_POLL_MS))
		if (info_total(c, "snapshots_completed") >= SHARDS)
			return true;
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
	CU_ASSERT_FATAL(proc_dir_make(srv.dir, "maxmemory"));
	CU_ASSERT_FATAL(pomaid_start(&srv, NULL, NULL));
	struct pm_client *c = client_open();
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

	CU_ASSERT_FATAL(pomaid_kill(&srv));
	CU_ASSERT_FATAL(pomaid_start(&srv, NULL, NULL)); /* same ports, same directory */
	c = client_open();
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
	pomaid_stop(&srv);
	proc_dir_remove(srv.dir);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-POMAID\n", argv[0]);
		return 1;
	}
	srv.path = argv[1];
	static CU_TestInfo tests[] = {
		{ "evictions survive a SIGKILL (log, snapshot + log)", test_evictions_survive_restart },
		CU_TEST_INFO_NULL,
	};
	int rc = pm_cu_run("maxmemory", tests);
	proc_kill_all(); /* what a fatal assertion left */
	return rc;
}
