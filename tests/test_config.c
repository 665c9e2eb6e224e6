/* SPDX-License-Identifier: MIT
 *
 * test_config.c — pomaid's configuration: the shipped config/pomai.conf parses,
 * equals the embedded defaults and documents every key; every kind of bad
 * value is refused with a message naming the key.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "pm_limits.h"
#include "snap_io.h"
#include "cu_main.h"

static const char *conf_path;

static void test_shipped_file(void)
{
	struct pm_config def, c;
	char err[PM_CONFIG_ERR_BYTES];
	pm_config_defaults(&def);
	pm_config_defaults(&c);
	int rc = pm_config_load(&c, conf_path, err, sizeof(err));
	if (rc)
		printf("\n  %s\n", err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT(memcmp(&c, &def, sizeof(c)) == 0); /* the file states the defaults */
	/* every key pm_config_print knows appears in the file as "key =" */
	char *printed = NULL, *file = NULL;
	size_t plen = 0, flen = 0;
	FILE *p = open_memstream(&printed, &plen);
	pm_config_print(&c, p);
	fclose(p);
	FILE *f = fopen(conf_path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	FILE *m = open_memstream(&file, &flen);
	for (int ch; (ch = fgetc(f)) != EOF;)
		fputc(ch, m);
	fclose(m);
	fclose(f);
	int keys = 0, missing = 0;
	for (char *line = strtok(printed, "\n"); line; line = strtok(NULL, "\n")) {
		char want[96];
		snprintf(want, sizeof(want), "\n%.*s =", (int)strcspn(line, " "), line);
		keys++;
		if (!strstr(file, want)) {
			printf("\n  undocumented key: %s", want + 1);
			missing++;
		}
	}
	CU_ASSERT(keys >= 12);
	CU_ASSERT_EQUAL(missing, 0);
	free(printed);
	free(file);
}

static void expect_bad(const char *key, const char *value)
{
	struct pm_config c;
	char err[PM_CONFIG_ERR_BYTES] = "";
	pm_config_defaults(&c);
	CU_ASSERT_EQUAL(pm_config_set(&c, key, value, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, key));
}

static void test_bad_values(void)
{
	expect_bad("base_port", "0");
	expect_bad("base_port", "65536");
	expect_bad("base_port", "-1");
	expect_bad("base_port", "12ab");
	expect_bad("shards", "33");
	expect_bad("arena_bytes", "1000");       /* below the minimum */
	expect_bad("arena_bytes", "1048577");    /* not a multiple of 4096 */
	expect_bad("arena_bytes", "99999999T");  /* overflows */
	expect_bad("arena_bytes", "4Q");
	expect_bad("bind", "localhost");
	expect_bad("bind", "300.1.1.1");
	expect_bad("polling", "sometimes");
	expect_bad("hugepages", "maybe");
	expect_bad("maxmemory", "1000");          /* not a multiple of 4096 */
	expect_bad("maxmemory", "65T");           /* above the largest arena */
	expect_bad("maxmemory_policy", "lru");
	expect_bad("maxmemory_policy", "");
	expect_bad("maxmemory_samples", "0");
	expect_bad("maxmemory_samples", "65");    /* PM_EVICT_SAMPLES_MAX + 1 */
	expect_bad("cores", "1,x");
	expect_bad("knn_timeout_ms", "0");
	expect_bad("idle_sleep_us", "5");
	expect_bad("idle_spin_us", "100001");     /* PM_IDLE_SPIN_US_MAX + 1 */
	expect_bad("reply_pack_bytes", "65508"); /* past UDP's largest payload */
	expect_bad("snapshot_write_bytes_per_s", "1099511627777"); /* PM_SNAP_PACE_BYTES_PER_S_MAX + 1 */
	expect_bad("backend", "xdp");
	expect_bad("dpdk_steering", "magic");
	expect_bad("dpdk_addrs", "10.0.0.2");          /* no prefix */
	expect_bad("dpdk_addrs", "10.0.0.2/33");
	expect_bad("dpdk_addrs", "10.0.0.2/24,");
	expect_bad("dpdk_addrs", "1.1.1.1/8,2.2.2.2/8,3.3.3.3/8,4.4.4.4/8,5.5.5.5/8"); /* > ports max */
	expect_bad("dpdk_gateways", "10.0.0.1/24");
	expect_bad("dpdk_mtu", "575");
	expect_bad("dpdk_mtu", "9001");
	expect_bad("dpdk_vlan", "4095");
	expect_bad("dpdk_mbufs", "100");
	char big[PM_CONFIG_EAL_BYTES + 1];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_bad("dpdk_eal_args", big);
	expect_bad("allow_networks", "10.0.0.5/24");   /* host bits */
	expect_bad("allow_networks", "10.0.0.0/33");
	expect_bad("allow_networks", "");
	expect_bad("quota_requests_per_s", "17179869185"); /* PM_QUOTA_RATE_PER_S_MAX + 1 */
	expect_bad("quota_bytes_per_s", "17G");
	expect_bad("quota_burst_ms", "0");
	expect_bad("quota_burst_ms", "1001");
	expect_bad("collection_bytes_max", "-1");
	expect_bad("tcp_frame_ms", "99");              /* PM_TCP_FRAME_MS_MIN - 1 */
	expect_bad("tcp_frame_ms", "600001");
	expect_bad("tcp_conns_per_addr", "0");
	expect_bad("tcp_conns_per_addr", "257");       /* PM_TCP_CONNS_MAX + 1 */
	expect_bad("tcp_buffer_bytes", "1M");          /* below one connection's buffers */
	expect_bad("tcp_buffer_bytes", "2G");          /* above every connection's */
	expect_bad("knn_work_bytes_max", "65T");       /* above the largest arena */
	expect_bad("knn_slice_us", "9");               /* below 10 us */
	expect_bad("knn_slice_us", "100001");          /* above 0.1 s */
	expect_bad("quota_work_bytes_per_s", "17G");   /* PM_QUOTA_RATE_PER_S_MAX is 16 G */
	expect_bad("cookie_window_s", "0");            /* PM_COOKIE_WINDOW_S_MIN is 1 */
	expect_bad("cookie_window_s", "3601");         /* PM_COOKIE_WINDOW_S_MAX + 1 */
	expect_bad("quota_unvalidated_prefix_requests_per_s", "17179869185");
	expect_bad("quota_unvalidated_requests_per_s", "17179869185");
	expect_bad("wal_io_uring", "sometimes");       /* auto, yes or no (issue 20) */
	expect_bad("wal_sync_overlap", "auto");        /* a bool (issue 20) */
	struct pm_config c;
	char err[PM_CONFIG_ERR_BYTES];
	pm_config_defaults(&c);
	CU_ASSERT_EQUAL(pm_config_set(&c, "no_such_key", "1", err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "no_such_key"));
	/* good values with units */
	CU_ASSERT_EQUAL(pm_config_set(&c, "arena_bytes", "2G", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.arena_bytes, UINT64_C(2) << 30);
	CU_ASSERT_EQUAL(pm_config_set(&c, "polling", "busy", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.polling, PM_POLL_BUSY);
	CU_ASSERT_EQUAL(pm_config_set(&c, "cores", "2,3", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(pm_config_set(&c, "backend", "dpdk", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.backend, PM_BACKEND_DPDK);
	CU_ASSERT_EQUAL(pm_config_set(&c, "dpdk_steering", "rss", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.dpdk_steering, PM_STEER_RSS);
	CU_ASSERT_EQUAL(pm_config_set(&c, "dpdk_addrs", "10.0.0.2/24,10.0.1.2/24", err,
				      sizeof(err)), 0);
	CU_ASSERT_EQUAL(pm_config_set(&c, "dpdk_gateways", "10.0.0.1,none", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(pm_config_set(&c, "allow_networks", "127.0.0.1/32,10.0.0.0/8", err,
				      sizeof(err)), 0);
	CU_ASSERT_EQUAL(pm_config_set(&c, "quota_bytes_per_s", "10M", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.quota_bytes_per_s, UINT64_C(10) << 20);
	/* issue 20: packing off (0) and a jumbo-frame path are both valid */
	CU_ASSERT_EQUAL(c.reply_pack_bytes, PM_REPLY_PACK_BYTES_DEFAULT);
	CU_ASSERT_EQUAL(pm_config_set(&c, "reply_pack_bytes", "0", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(pm_config_set(&c, "reply_pack_bytes", "8972", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.reply_pack_bytes, 8972u);
	CU_ASSERT_EQUAL(pm_config_set(&c, "collection_bytes_max", "1000", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.collection_bytes_max, 1000); /* no multiple-of-4096 rule */
	CU_ASSERT_EQUAL(pm_config_set(&c, "tcp_buffer_bytes", "8M", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.tcp_buffer_bytes, UINT64_C(8) << 20);
	CU_ASSERT_EQUAL(pm_config_set(&c, "tcp_conns_per_addr", "256", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.tcp_conns_per_addr, PM_TCP_CONNS_MAX);
	CU_ASSERT_EQUAL(c.knn_work_bytes_max, PM_KNN_WORK_BYTES_MAX_DEFAULT);
	CU_ASSERT_EQUAL(pm_config_set(&c, "knn_work_bytes_max", "0", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.knn_slice_us, 500);
	CU_ASSERT_EQUAL(pm_config_set(&c, "knn_slice_us", "10", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.knn_slice_us, 10);
	CU_ASSERT_EQUAL(c.idle_spin_us, PM_IDLE_SPIN_US_DEFAULT); /* issue 20 */
	CU_ASSERT_EQUAL(c.snapshot_write_bytes_per_s, PM_SNAP_PACE_BYTES_PER_S_DEFAULT);
	CU_ASSERT_EQUAL(pm_config_set(&c, "snapshot_write_bytes_per_s", "0", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(pm_config_set(&c, "snapshot_write_bytes_per_s", "1T", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.snapshot_write_bytes_per_s, PM_SNAP_PACE_BYTES_PER_S_MAX);
	CU_ASSERT_EQUAL(pm_config_set(&c, "idle_spin_us", "0", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.idle_spin_us, 0);
	CU_ASSERT_EQUAL(pm_config_set(&c, "quota_work_bytes_per_s", "1G", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.quota_work_bytes_per_s, UINT64_C(1) << 30);
	/* wal_io_uring: auto by default; yes and no (and the bool's other spellings) override */
	CU_ASSERT_EQUAL(c.wal_uring, PM_WAL_IO_AUTO);
	CU_ASSERT_EQUAL(pm_config_set(&c, "wal_io_uring", "no", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.wal_uring, PM_WAL_IO_PWRITE);
	CU_ASSERT_EQUAL(pm_config_set(&c, "wal_io_uring", "on", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.wal_uring, PM_WAL_IO_URING);
	CU_ASSERT_EQUAL(pm_config_set(&c, "wal_io_uring", "auto", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.wal_uring, PM_WAL_IO_AUTO);
	/* wal_sync_overlap: no by default (issue 20), a bool */
	CU_ASSERT(!c.wal_sync_overlap);
	CU_ASSERT_EQUAL(pm_config_set(&c, "wal_sync_overlap", "yes", err, sizeof(err)), 0);
	CU_ASSERT(c.wal_sync_overlap);
	CU_ASSERT_EQUAL(pm_config_set(&c, "wal_sync_overlap", "off", err, sizeof(err)), 0);
	CU_ASSERT(!c.wal_sync_overlap);
}

static void test_bad_files(void)
{
	struct pm_config c;
	char err[PM_CONFIG_ERR_BYTES];
	pm_config_defaults(&c);
	CU_ASSERT_EQUAL(pm_config_load(&c, "/nonexistent/pomai.conf", err, sizeof(err)), -1);
	char path[] = "/tmp/pomai-conf-XXXXXX";
	int fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fprintf(f, "# fine\nbase_port = 9000\nthis line has no equals sign\n");
	fclose(f);
	CU_ASSERT_EQUAL(pm_config_load(&c, path, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, ":3:"));
	CU_ASSERT_EQUAL(c.base_port, 9000);
	f = fopen(path, "w");
	for (unsigned i = 0; i < PM_CONFIG_LINE_BYTES; i++)
		fputc('x', f);
	fputc('\n', f);
	fclose(f);
	CU_ASSERT_EQUAL(pm_config_load(&c, path, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "longer than"));
	unlink(path);
}

int main(int argc, char **argv)
{
	conf_path = argc > 1 ? argv[1] : "config/pomai.conf";
	static CU_TestInfo tests[] = {
		{ "config/pomai.conf: defaults, every key documented", test_shipped_file },
		{ "bad values", test_bad_values },
		{ "bad files", test_bad_files },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("config", tests);
}
