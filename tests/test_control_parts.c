/* SPDX-License-Identifier: MIT
 *
 * test_control_parts.c — pomai-control's parts in one process:
 *  - its configuration: the shipped config/pomai-control.conf (argv[1])
 *    parses, states the embedded defaults and documents every key; every
 *    bound of every key is refused one past it, with the key named; the
 *    quota table holds PM_QUOTA_OVERRIDES_MAX entries and refuses one more;
 *  - its Prometheus text: a segment of PM_STATS_SHARDS_MAX shards with every
 *    counter near its largest fits CTL_METRICS_BYTES_MAX and passes
 *    `promtool check metrics`; a buffer one byte short is refused, not cut;
 *    histogram buckets are cumulative, never count a value above their `le`,
 *    and end in _count; labels, not names, tell ops and drop reasons apart.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.h"
#include "ctl.h"
#include "cu_main.h"
#include "metrics.h"
#include "request.h"

static const char *conf_path;

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s = NULL;
	size_t n = 0;
	if (!f)
		return NULL;
	FILE *m = open_memstream(&s, &n);
	for (int ch; (ch = fgetc(f)) != EOF;)
		fputc(ch, m);
	fclose(m);
	fclose(f);
	return s;
}

/* ---------------------------------------------------------------- configuration */

static void test_shipped_file(void)
{
	static struct ctl_config def, c;
	char err[CTL_ERR_BYTES];
	ctl_config_defaults(&def);
	ctl_config_defaults(&c);
	int rc = ctl_config_load(&c, conf_path, err, sizeof(err));
	if (rc)
		printf("\n  %s\n", err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT(memcmp(&c, &def, sizeof(c)) == 0); /* the file states the defaults */
	/* every key ctl_config_print knows (a quota too) is in the file as "key =" */
	struct ctl_quota q = { .addr = 0x0a000001, .rps = 1, .bps = 2 };
	CU_ASSERT_EQUAL(ctl_quota_set(&c, &q), 0);
	char *printed = NULL, *file = slurp(conf_path), want[96];
	size_t plen = 0;
	FILE *p = open_memstream(&printed, &plen);
	ctl_config_print(&c, p);
	fclose(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(file);
	unsigned keys = 0;
	for (char *line = strtok(printed, "\n"); line; line = strtok(NULL, "\n")) {
		char *eq = strstr(line, " =");
		CU_ASSERT_PTR_NOT_NULL_FATAL(eq);
		*eq = '\0';
		snprintf(want, sizeof(want), "\n%s =", line);
		char example[96]; /* a repeatable key is shown by a commented example */
		snprintf(example, sizeof(example), "#     %s =", line);
		bool there = strstr(file, want) || strstr(file, example);
		if (!there)
			printf("\n  %s is not documented in %s", line, conf_path);
		CU_ASSERT(there);
		keys++;
	}
	CU_ASSERT(keys >= 9);
	free(printed);
	free(file);
}

static void refused(const char *key, const char *value)
{
	static struct ctl_config c;
	char err[CTL_ERR_BYTES] = "";
	ctl_config_defaults(&c);
	int rc = ctl_config_set(&c, key, value, err, sizeof(err));
	if (rc == 0 || !strstr(err, key))
		printf("\n  %s = %s: rc %d, '%s'", key, value, rc, err);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, key));
}

static void accepted(const char *key, const char *value)
{
	static struct ctl_config c;
	char err[CTL_ERR_BYTES] = "";
	ctl_config_defaults(&c);
	int rc = ctl_config_set(&c, key, value, err, sizeof(err));
	if (rc != 0)
		printf("\n  %s = %s: %s", key, value, err);
	CU_ASSERT_EQUAL(rc, 0);
}

static void test_bounds(void)
{
	accepted("snapshot_interval_s", "604800");
	refused("snapshot_interval_s", "604801");
	accepted("snapshot_wal_bytes", "1T");
	refused("snapshot_wal_bytes", "1099511627777");
	accepted("daemon_timeout_ms", "100");
	refused("daemon_timeout_ms", "99");
	refused("daemon_timeout_ms", "600001");
	accepted("retry_ms", "10");
	refused("retry_ms", "9");
	refused("retry_ms", "60001");
	refused("retry_ms", "-1");
	/* the cluster's keys (agent.h) */
	accepted("lease_ttl_ms", "2000");
	accepted("lease_ttl_ms", "60000");
	refused("lease_ttl_ms", "1000");  /* below etcd's least TTL */
	refused("lease_ttl_ms", "61000"); /* above PM_CLUSTER_LEASE_MS_MAX */
	refused("lease_ttl_ms", "2500");  /* not whole seconds */
	accepted("node_name", "n-1_a");
	accepted("node_name", "abcdefghijklmnop");
	refused("node_name", "abcdefghijklmnopq"); /* 17 bytes */
	refused("cluster_name", "Prod");
	refused("replica_set", "s/1");
	accepted("advertise_addr", "10.0.0.7");
	refused("advertise_addr", "node7");
	accepted("metrics_listen", "off");
	accepted("metrics_listen", "0.0.0.0:1");
	refused("metrics_listen", "127.0.0.1:0");
	refused("metrics_listen", "127.0.0.1:65536");
	refused("metrics_listen", "localhost:9750");
	refused("metrics_listen", "127.0.0.1");
	refused("data_dir", "");
	char longpath[CTL_PATH_BYTES + 1];
	memset(longpath, 'a', CTL_PATH_BYTES);
	longpath[CTL_PATH_BYTES] = '\0';
	refused("control_socket", longpath);
	accepted("quota", "10.0.0.1 17179869184 0");
	refused("quota", "10.0.0.1 17179869185 0"); /* PM_QUOTA_RATE_PER_S_MAX + 1 */
	refused("quota", "10.0.0.256 1 1");
	refused("quota", "10.0.0.1 1");
	refused("quota", "10.0.0.1 1 1 1");
	refused("no_such_key", "1");
}

static void test_quota_table(void)
{
	static struct ctl_config c;
	char err[CTL_ERR_BYTES], v[64];
	ctl_config_defaults(&c);
	for (uint32_t i = 0; i < PM_QUOTA_OVERRIDES_MAX; i++) {
		snprintf(v, sizeof(v), "10.1.%u.%u %u 0", i >> 8, i & 255, i + 1);
		CU_ASSERT_EQUAL_FATAL(ctl_config_set(&c, "quota", v, err, sizeof(err)), 0);
	}
	CU_ASSERT_EQUAL(c.nquotas, PM_QUOTA_OVERRIDES_MAX);
	CU_ASSERT_EQUAL(ctl_config_set(&c, "quota", "10.2.0.0 1 1", err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "1024"));
	/* a known address is replaced, not added, even when full */
	CU_ASSERT_EQUAL(ctl_config_set(&c, "quota", "10.1.0.0 7 7", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.nquotas, PM_QUOTA_OVERRIDES_MAX);
	CU_ASSERT_EQUAL(c.quotas[0].rps, 7);
	uint32_t a;
	CU_ASSERT_EQUAL(ctl_parse_ipv4("10.1.0.0", &a), 0);
	CU_ASSERT_EQUAL(ctl_quota_del(&c, a), 0);
	CU_ASSERT_EQUAL(ctl_quota_del(&c, a), -1);
	CU_ASSERT_EQUAL(c.nquotas, PM_QUOTA_OVERRIDES_MAX - 1);
}

/* ---------------------------------------------------------------- metrics */

static struct ctl_scrape sc;
static struct ctl_counters counters;

/* The value of the sample that starts a line with `head` ("name{labels}"). */
static bool sample(const char *text, const char *head, double *v)
{
	size_t n = strlen(head);
	for (const char *p = text; p; p = strchr(p, '\n')) {
		p += *p == '\n';
		if (!strncmp(p, head, n) && p[n] == ' ')
			return sscanf(p + n + 1, "%lf", v) == 1;
	}
	return false;
}

static void fill_big(void)
{
	memset(&sc, 0, sizeof(sc));
	sc.up = true;
	sc.nshards = PM_STATS_SHARDS_MAX;
	sc.c = &counters;
	sc.g.pid = 4194304;
	sc.g.admin_commands = UINT64_MAX;
	for (uint32_t i = 0; i < sc.nshards; i++) {
		uint64_t *w = (uint64_t *)&sc.s[i];
		for (size_t k = 1; k < sizeof(sc.s[i]) / sizeof(uint64_t); k++)
			w[k] = UINT64_MAX / 3; /* 20 digits: the longest a u64 prints */
		sc.s[i].cpu = -1;
		sc.s[i].snapshot_progress_pct = 100;
		memset(&sc.s[i].lat_kv, 0, sizeof(sc.s[i].lat_kv));
		for (unsigned b = 0; b < PM_HIST_BUCKETS; b++)
			sc.s[i].lat_knn.b[b] = UINT64_MAX / 3 / PM_HIST_BUCKETS;
	}
}

/* promtool's verdict on the first n bytes of text (NUL-terminated there). */
static int promtool(const char *text, size_t n)
{
	static char said[4096];
	CU_ASSERT_FATAL(text[n] == '\0');
	int rc = ctl_promtool(text, said, sizeof(said));
	if (rc != 0)
		printf("\n  promtool: %s", said);
	return rc;
}

static void test_metrics_bound(void)
{
	static char text[CTL_METRICS_BYTES_MAX];
	fill_big();
	size_t n = ctl_metrics_render(&sc, text, sizeof(text));
	printf("\n  %u shards, every counter 20 digits: %zu bytes of %u", PM_STATS_SHARDS_MAX, n,
	       CTL_METRICS_BYTES_MAX);
	CU_ASSERT(n > 0 && n < sizeof(text));
	CU_ASSERT_EQUAL(ctl_metrics_render(&sc, text, n), 0); /* no room for the last byte */
	CU_ASSERT_EQUAL(ctl_metrics_render(&sc, text, n + 1), n);
	int rc = promtool(text, n);
	if (rc != 0)
		printf("\n  promtool check metrics: exit %d (is the prometheus package in?)", rc);
	CU_ASSERT_EQUAL(rc, 0);
	double v;
	CU_ASSERT(sample(text, "pomai_shard_cpu{shard=\"31\"}", &v) && v == -1);
	CU_ASSERT(sample(text, "pomai_snapshot_progress_ratio{shard=\"0\"}", &v) && v == 1.0);
	/* detached: pomai_up 0 and no shard samples */
	sc.up = false;
	n = ctl_metrics_render(&sc, text, sizeof(text));
	CU_ASSERT(n > 0 && sample(text, "pomai_up", &v) && v == 0);
	CU_ASSERT_PTR_NULL(strstr(text, "shard=\""));
	CU_ASSERT_EQUAL(promtool(text, n), 0);
}

static void test_metrics_values(void)
{
	static char text[CTL_METRICS_BYTES_MAX];
	memset(&sc, 0, sizeof(sc));
	sc.up = true;
	sc.nshards = 2;
	sc.c = &counters;
	sc.s[1].ops[PM_OP_SET] = 5;
	sc.s[1].ops[PM_OP_VQUERY] = 6;
	sc.s[0].dropped[PM_DROP_RING_FULL] = 7;
	sc.s[1].snapshot_last_unix_ms = 1700000000123;
	/* 900 ns lies in a bucket wholly below 1 µs; 1000 ns in one that crosses it */
	static const uint64_t ns[] = { 900, 1000, 2200, 3000000000ull, 40000000000ull };
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		pm_hist_add(&sc.s[1].lat_kv, ns[i]);
	atomic_store(&counters.snapshots_requested[CTL_SNAP_WAL_BYTES], 3);
	size_t n = ctl_metrics_render(&sc, text, sizeof(text));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL(promtool(text, n), 0);
	double v = -1;
	CU_ASSERT(sample(text, "pomai_ops_total{shard=\"1\",op=\"set\"}", &v) && v == 5);
	CU_ASSERT(sample(text, "pomai_ops_total{shard=\"1\",op=\"vquery\"}", &v) && v == 6);
	CU_ASSERT(sample(text, "pomai_dropped_total{shard=\"0\",reason=\"ring_full\"}", &v) && v == 7);
	CU_ASSERT(sample(text, "pomai_snapshot_last_timestamp_seconds{shard=\"1\"}", &v) &&
		  v == 1700000000.123);
	CU_ASSERT(sample(text, "pomai_control_snapshots_requested_total{reason=\"wal_bytes\"}", &v) &&
		  v == 3);
	static const struct {
		const char *le;
		double want;
	} b[] = { { "1e-06", 1 }, { "2.5e-06", 3 }, { "2.5", 3 }, { "5", 4 }, { "10", 4 },
		  { "+Inf", 5 } };
	char head[128];
	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
		snprintf(head, sizeof(head), "pomai_kv_service_seconds_bucket{shard=\"1\",le=\"%s\"}",
			 b[i].le);
		bool ok = sample(text, head, &v) && v == b[i].want;
		if (!ok)
			printf("\n  %s: %g, want %g", head, v, b[i].want);
		CU_ASSERT(ok);
	}
	CU_ASSERT(sample(text, "pomai_kv_service_seconds_count{shard=\"1\"}", &v) && v == 5);
	CU_ASSERT(sample(text, "pomai_kv_service_seconds_sum{shard=\"1\"}", &v) &&
		  v > 43.000004 && v < 43.0000042);
	CU_ASSERT(sample(text, "pomai_kv_service_seconds_count{shard=\"0\"}", &v) && v == 0);
	CU_ASSERT_PTR_NULL(strstr(text, "pomai_ops_set")); /* labels, not names */
	/* one HELP and one TYPE per family */
	const char *first = strstr(text, "# TYPE pomai_blob_bytes gauge");
	CU_ASSERT(first && !strstr(first + 1, "# TYPE pomai_blob_bytes gauge"));
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test_control_parts PATH-TO-pomai-control.conf\n");
		return 1;
	}
	conf_path = argv[1];
	static CU_TestInfo tests[] = {
		{ "config: the shipped file, every key documented", test_shipped_file },
		{ "config: every bound refused one past it", test_bounds },
		{ "quota table: PM_QUOTA_OVERRIDES_MAX, replace, delete", test_quota_table },
		{ "metrics: 32 shards fit CTL_METRICS_BYTES_MAX, promtool", test_metrics_bound },
		{ "metrics: values, labels, histogram buckets", test_metrics_values },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("control_parts", tests);
}
