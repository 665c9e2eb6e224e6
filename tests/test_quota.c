/* SPDX-License-Identifier: MIT
 *
 * test_quota.c — the allowlist matcher, the token bucket and the per-worker
 * client table (dataplane/quota.h), without a daemon: time is an argument, so
 * every rate below is checked exactly, not against a clock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "access.h"
#include "cu_main.h"
#include "pm_limits.h"
#include "quota.h"
#include "worker.h"

#define MS 1000000ull  /* ns */
#define SEC 1000000000ull

static uint32_t ip(const char *s)
{
	struct in_addr a;
	CU_ASSERT_FATAL(inet_pton(AF_INET, s, &a) == 1);
	return a.s_addr;
}

/* ---------------------------------------------------------------- allowlist */

static void test_allow_match(void)
{
	struct pm_allowlist a;
	char err[128];
	CU_ASSERT_EQUAL_FATAL(pm_allow_parse(&a, "0.0.0.0/0", err, sizeof(err)), 0);
	CU_ASSERT(pm_allow_match(&a, ip("1.2.3.4")) && pm_allow_match(&a, ip("255.255.255.255")));
	CU_ASSERT_EQUAL_FATAL(pm_allow_parse(&a, "127.0.0.1/32", err, sizeof(err)), 0);
	CU_ASSERT(pm_allow_match(&a, ip("127.0.0.1")));
	CU_ASSERT_FALSE(pm_allow_match(&a, ip("127.0.0.2")));
	CU_ASSERT_EQUAL_FATAL(pm_allow_parse(&a, "10.0.0.0/8,192.168.1.0/24,172.16.0.9", err,
					     sizeof(err)), 0);
	CU_ASSERT_EQUAL(a.n, 3);
	CU_ASSERT(pm_allow_match(&a, ip("10.255.0.1")));
	CU_ASSERT(pm_allow_match(&a, ip("192.168.1.200")));
	CU_ASSERT_FALSE(pm_allow_match(&a, ip("192.168.2.1")));
	CU_ASSERT(pm_allow_match(&a, ip("172.16.0.9"))); /* a bare address is a /32 */
	CU_ASSERT_FALSE(pm_allow_match(&a, ip("172.16.0.8")));
	CU_ASSERT_FALSE(pm_allow_match(&a, ip("11.0.0.0")));
	/* /0 among others: one entry, everyone */
	CU_ASSERT_EQUAL_FATAL(pm_allow_parse(&a, "10.0.0.0/8,0.0.0.0/0,1.1.1.1", err, sizeof(err)), 0);
	CU_ASSERT(pm_allow_match(&a, ip("8.8.8.8")));
	CU_ASSERT_EQUAL(a.n, 1);
}

static void test_allow_bounds(void)
{
	static const char *bad[] = { "", "10.0.0.0/33", "10.0.0.0/", "10.0.0.5/24", "10.0.0/8",
				     "10.0.0.0/8,", "localhost", "10.0.0.0/8x", "1.2.3.4/-1" };
	struct pm_allowlist a;
	char err[128];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(pm_allow_parse(&a, bad[i], err, sizeof(err)), -1);
		CU_ASSERT(err[0] != '\0');
	}
	CU_ASSERT_EQUAL(pm_allow_parse(&a, "10.0.0.5/24", err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "10.0.0.0/24")); /* says what was meant */
	/* PM_ALLOW_NETWORKS_MAX networks parse; one more does not */
	static char list[PM_ALLOW_NETWORKS_MAX * PM_ALLOW_NETWORK_TEXT_BYTES + 32];
	size_t n = 0;
	for (uint32_t i = 0; i < PM_ALLOW_NETWORKS_MAX; i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s10.%u.0.0/16", i ? "," : "", i);
	CU_ASSERT_EQUAL(pm_allow_parse(&a, list, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(a.n, PM_ALLOW_NETWORKS_MAX);
	CU_ASSERT(pm_allow_match(&a, ip("10.63.4.4")) && !pm_allow_match(&a, ip("10.64.0.0")));
	snprintf(list + n, sizeof(list) - n, ",11.0.0.0/8");
	CU_ASSERT_EQUAL(pm_allow_parse(&a, list, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "more than"));
}

/* ---------------------------------------------------------------- token bucket */

/* Offer one request every `every_ns` for `for_ns`; how many were admitted. */
static uint64_t offer(struct pm_token_bucket *b, const struct pm_rate *r, uint64_t start, uint64_t every_ns,
		      uint64_t for_ns, uint64_t cost)
{
	uint64_t ok = 0;
	for (uint64_t t = start; t < start + for_ns; t += every_ns) {
		pm_bucket_refill(b, r, t);
		if (pm_bucket_wait_ns(b, r, cost) == 0) {
			pm_bucket_spend(b, r, cost);
			ok++;
		}
	}
	return ok;
}

static void test_bucket_burst_and_wait(void)
{
	struct pm_rate r;
	struct pm_token_bucket b;
	pm_rate_init(&r, 1000, 1, 100, 1); /* 1000/s, 100 ms of burst = 100 tokens */
	CU_ASSERT_EQUAL(r.cap, 100 * PM_QUOTA_NANO);
	pm_bucket_fill(&b, &r, 5 * SEC);
	for (int i = 0; i < 100; i++) {
		CU_ASSERT_EQUAL(pm_bucket_wait_ns(&b, &r, 1), 0);
		pm_bucket_spend(&b, &r, 1);
	}
	CU_ASSERT_EQUAL(pm_bucket_wait_ns(&b, &r, 1), 1 * MS); /* one token per ms */
	CU_ASSERT_EQUAL(pm_bucket_wait_ns(&b, &r, 3), 3 * MS);
	pm_bucket_refill(&b, &r, 5 * SEC + MS - 1);
	CU_ASSERT_EQUAL(pm_bucket_wait_ns(&b, &r, 1), 1);
	pm_bucket_refill(&b, &r, 5 * SEC + MS);
	CU_ASSERT_EQUAL(pm_bucket_wait_ns(&b, &r, 1), 0);
	/* never above the burst, however long it waits (and no overflow) */
	pm_bucket_refill(&b, &r, UINT64_MAX);
	CU_ASSERT_EQUAL(b.level, r.cap);
	/* unlimited */
	pm_rate_init(&r, 0, 4, 100, 1);
	CU_ASSERT_EQUAL(pm_bucket_wait_ns(&b, &r, 1000000), 0);
}

static void test_bucket_rate_and_share(void)
{
	struct pm_rate r;
	struct pm_token_bucket b;
	/* 1000/s offered 100,000/s for 10 s: the burst, then exactly the rate */
	pm_rate_init(&r, 1000, 1, 100, 1);
	pm_bucket_fill(&b, &r, 0);
	CU_ASSERT_EQUAL(offer(&b, &r, 0, 10000, 10 * SEC + 1, 1), 100 + 10000);
	/* split over 4 workers: each gets 250/s and a quarter of the burst */
	pm_rate_init(&r, 1000, 4, 100, 1);
	CU_ASSERT_EQUAL(r.cap, 25 * PM_QUOTA_NANO);
	pm_bucket_fill(&b, &r, 0);
	CU_ASSERT_EQUAL(offer(&b, &r, 0, 10000, 10 * SEC + 1, 1), 25 + 2500);
	/* refilled every nanosecond at 1000/s over 3 workers: 333 1/3 nano-tokens
	 * a step; the remainder is carried, so one token takes exactly 3 ms (with
	 * the remainder dropped it would take 0.1 % longer) */
	pm_rate_init(&r, 1000, 3, 1000, 1);
	pm_bucket_fill(&b, &r, 0);
	b.level = 0;
	for (uint64_t t = 1; t < 3 * MS; t++)
		pm_bucket_refill(&b, &r, t);
	CU_ASSERT_NOT_EQUAL(pm_bucket_wait_ns(&b, &r, 1), 0);
	pm_bucket_refill(&b, &r, 3 * MS);
	CU_ASSERT_EQUAL(pm_bucket_wait_ns(&b, &r, 1), 0);
	CU_ASSERT_EQUAL(b.level, PM_QUOTA_NANO);
	pm_rate_init(&r, 1, 4, 1000, 1);
	CU_ASSERT_EQUAL(r.cap, PM_QUOTA_NANO); /* a burst of at least one request */
	/* bytes: the burst holds at least one largest frame, or it could never pass */
	pm_rate_init(&r, 1000, 2, 10, PM_FRAME_BYTES_MAX);
	CU_ASSERT_EQUAL(r.cap, (uint64_t)PM_FRAME_BYTES_MAX * PM_QUOTA_NANO);
	pm_bucket_fill(&b, &r, 0);
	CU_ASSERT_EQUAL(offer(&b, &r, 0, MS, 10 * SEC, PM_FRAME_BYTES_MAX), 1);
	/* the largest rate and burst fit */
	pm_rate_init(&r, PM_QUOTA_RATE_PER_S_MAX, 1, PM_QUOTA_BURST_MS_MAX, 1);
	CU_ASSERT_EQUAL(r.cap, PM_QUOTA_RATE_PER_S_MAX * PM_QUOTA_NANO);
}

/* Work is charged after the fact: past the level it becomes debt, repaid by
 * the refill before the level grows, owed at most PM_QUOTA_DEBT_MS_MAX of
 * the rate. */
static void test_bucket_debt(void)
{
	struct pm_rate r;
	struct pm_token_bucket b;
	pm_rate_init(&r, 1000, 1, 100, 1); /* 1000/s, a burst of 100 */
	pm_rate_allow_debt(&r);
	CU_ASSERT_EQUAL(r.debt_max, 1000ull * PM_QUOTA_DEBT_MS_MAX / 1000 * PM_QUOTA_NANO);
	pm_bucket_fill(&b, &r, 0);
	pm_bucket_charge(&b, &r, 40); /* within the level: no debt */
	CU_ASSERT(b.level == 60 * PM_QUOTA_NANO && b.debt == 0);
	pm_bucket_charge(&b, &r, 560); /* 500 past it */
	CU_ASSERT(b.level == 0 && b.debt == 500 * PM_QUOTA_NANO);
	CU_ASSERT_EQUAL(pm_bucket_wait_ns(&b, &r, 0), 500 * MS); /* the debt first */
	CU_ASSERT_EQUAL(pm_bucket_wait_ns(&b, &r, 1), 501 * MS);
	pm_bucket_refill(&b, &r, 200 * MS); /* 200 repaid, the level still 0 */
	CU_ASSERT(b.level == 0 && b.debt == 300 * PM_QUOTA_NANO);
	pm_bucket_refill(&b, &r, 510 * MS); /* repaid, and 10 tokens */
	CU_ASSERT(b.debt == 0 && b.level == 10 * PM_QUOTA_NANO);
	/* what is owed is bounded: PM_QUOTA_DEBT_MS_MAX of the rate */
	pm_bucket_charge(&b, &r, UINT64_MAX / PM_QUOTA_NANO);
	CU_ASSERT_EQUAL(b.debt, r.debt_max);
	CU_ASSERT_EQUAL(pm_bucket_wait_ns(&b, &r, 0), PM_QUOTA_DEBT_MS_MAX * MS);
	/* a rate without debt (requests, bytes) stops at zero */
	pm_rate_init(&r, 1000, 1, 100, 1);
	pm_bucket_fill(&b, &r, 0);
	pm_bucket_charge(&b, &r, 1000);
	CU_ASSERT(b.level == 0 && b.debt == 0);
	/* unlimited: charges change nothing */
	pm_rate_init(&r, 0, 1, 100, 1);
	pm_rate_allow_debt(&r);
	pm_bucket_fill(&b, &r, 0);
	pm_bucket_charge(&b, &r, 1u << 30);
	CU_ASSERT(b.debt == 0 && pm_bucket_wait_ns(&b, &r, 1) == 0);
	/* the largest work rate: its debt bound saturates, no overflow */
	pm_rate_init(&r, PM_QUOTA_RATE_PER_S_MAX, 1, PM_QUOTA_BURST_MS_MAX, 1);
	pm_rate_allow_debt(&r);
	CU_ASSERT_EQUAL(r.debt_max, UINT64_MAX);
}

/* ---------------------------------------------------------------- client table */

static struct pm_quota_table table;

static bool tracked(const struct pm_quota_table *t, uint32_t addr_be)
{
	for (uint32_t i = 0; i < t->live; i++)
		if (t->e[i].addr_be == addr_be)
			return true;
	return false;
}

static void test_table_admit_and_top(void)
{
	struct pm_quota_limits def = { .requests_per_s = 100, .bytes_per_s = 0 };
	pm_qtable_init(&table, &def, 100, 2, 7); /* 50/s per worker, burst 5 */
	uint32_t a = ip("10.0.0.1"), b = ip("10.0.0.2");
	uint32_t ok = 0, hint = 0;
	for (int i = 0; i < 8; i++) {
		uint32_t r = pm_qtable_admit(&table, a, 100, SEC);
		ok += r == 0;
		hint = r ? r : hint;
	}
	CU_ASSERT_EQUAL(ok, 5);
	CU_ASSERT_EQUAL(hint, 20); /* 50/s per worker: a token every 20 ms */
	CU_ASSERT_EQUAL(pm_qtable_admit(&table, a, 100, SEC + 20 * MS), 0);
	CU_ASSERT_EQUAL(pm_qtable_admit(&table, b, 10, SEC), 0);
	struct pm_quota_talker top[4];
	CU_ASSERT_EQUAL_FATAL(pm_qtable_top(&table, top, 4, SEC + 30 * MS), 2);
	CU_ASSERT(top[0].addr_be == a && top[0].requests == 6 && top[0].throttled == 3);
	CU_ASSERT(top[0].bytes == 600 && top[0].idle_ns == 10 * MS);
	CU_ASSERT(top[1].addr_be == b && top[1].requests == 1 && top[1].bytes == 10);
	CU_ASSERT_EQUAL(pm_qtable_top(&table, top, 1, SEC), 1);
	CU_ASSERT_EQUAL(top[0].addr_be, a);
	CU_ASSERT_EQUAL(table.throttled, 3);
	/* a byte quota: one 1000-byte request per 10 ms at 100 kB/s on one worker */
	def = (struct pm_quota_limits){ .bytes_per_s = 100000 };
	pm_qtable_init(&table, &def, 100, 1, 7);
	ok = 0;
	for (uint64_t t = 0; t < SEC; t += MS)
		ok += pm_qtable_admit(&table, a, 1000, 10 * SEC + t) == 0;
	/* one second of rate, plus a burst of one largest frame (65 of these) */
	CU_ASSERT(ok >= 100 + 65 - 1 && ok <= 100 + 65 + 1);
}

static void test_table_overrides(void)
{
	struct pm_quota_limits def = { .requests_per_s = 10 }, lim = { .requests_per_s = 0 };
	pm_qtable_init(&table, &def, 100, 1, 9);
	uint32_t vip = ip("10.1.0.1");
	CU_ASSERT_EQUAL(pm_qtable_set(&table, vip, &lim, 0), 0); /* unlimited */
	for (int i = 0; i < 1000; i++)
		CU_ASSERT_EQUAL(pm_qtable_admit(&table, vip, 64, SEC), 0);
	struct pm_quota_override o[4];
	CU_ASSERT_EQUAL_FATAL(pm_qtable_list(&table, o, 4), 1);
	CU_ASSERT(o[0].addr_be == vip && o[0].lim.requests_per_s == 0);
	CU_ASSERT_EQUAL(pm_qtable_del(&table, vip), 0);
	CU_ASSERT_EQUAL(pm_qtable_del(&table, vip), -ENOENT);
	CU_ASSERT_EQUAL(pm_qtable_list(&table, o, 4), 0);
	(void)pm_qtable_admit(&table, vip, 64, SEC); /* back to 10/s, a burst of 1 */
	CU_ASSERT_NOT_EQUAL(pm_qtable_admit(&table, vip, 64, SEC), 0);
	lim.requests_per_s = PM_QUOTA_RATE_PER_S_MAX + 1;
	CU_ASSERT_EQUAL(pm_qtable_set(&table, vip, &lim, SEC), -EINVAL);
	/* PM_QUOTA_OVERRIDES_MAX pinned; one more is refused; updating one is not */
	lim.requests_per_s = 5;
	for (uint32_t i = 0; i < PM_QUOTA_OVERRIDES_MAX; i++)
		CU_ASSERT_EQUAL(pm_qtable_set(&table, htonl(0x0b000000u + i), &lim, SEC), 0);
	CU_ASSERT_EQUAL(pm_qtable_set(&table, ip("12.0.0.1"), &lim, SEC), -ENOSPC);
	lim.requests_per_s = 6;
	CU_ASSERT_EQUAL(pm_qtable_set(&table, htonl(0x0b000000u), &lim, SEC), 0);
	CU_ASSERT_EQUAL(table.pinned, PM_QUOTA_OVERRIDES_MAX);
	/* a full table of churning clients never replaces a pinned entry */
	for (uint32_t i = 0; i < 2 * PM_QUOTA_CLIENTS_MAX; i++)
		(void)pm_qtable_admit(&table, htonl(0x0c000000u + i), 64, 2 * SEC);
	CU_ASSERT_EQUAL(pm_qtable_list(&table, o, 1), 1);
	uint32_t pinned = 0;
	for (uint32_t i = 0; i < PM_QUOTA_OVERRIDES_MAX; i++)
		pinned += tracked(&table, htonl(0x0b000000u + i));
	CU_ASSERT_EQUAL(pinned, PM_QUOTA_OVERRIDES_MAX);
	CU_ASSERT_EQUAL(table.live, PM_QUOTA_CLIENTS_MAX);
}

/* The table bound and the replacement rule: the idle-longest entry goes; a
 * client evicted while its bucket was still refilling comes back empty (no
 * free burst), one evicted after its bucket had refilled comes back full. */
static void test_table_replacement(void)
{
	struct pm_quota_limits def = { .requests_per_s = 1000 };
	pm_qtable_init(&table, &def, 100, 1, 11); /* burst: 100 requests, refilled in 100 ms */
	uint32_t greedy = ip("10.2.0.1");
	uint64_t t = SEC;
	while (pm_qtable_admit(&table, greedy, 64, t) == 0)
		;
	/* PM_QUOTA_CLIENTS_MAX others within 10 ms: the greedy one is idle longest */
	for (uint32_t i = 0; i < PM_QUOTA_CLIENTS_MAX; i++)
		(void)pm_qtable_admit(&table, htonl(0x0d000000u + i), 64, t + 10 * MS);
	CU_ASSERT_FALSE(tracked(&table, greedy));
	CU_ASSERT_EQUAL(table.replaced, 1);
	CU_ASSERT_EQUAL(table.live, PM_QUOTA_CLIENTS_MAX);
	/* back within its refill time: it starts empty, and waits as if it had stayed */
	uint32_t ok = 0;
	for (int i = 0; i < 100; i++)
		ok += pm_qtable_admit(&table, greedy, 64, t + 11 * MS) == 0;
	CU_ASSERT(ok <= 1);
	/* a new client in a table that churns faster than buckets refill: the
	 * rate, not the burst */
	uint32_t idle = ip("10.2.0.2");
	(void)pm_qtable_admit(&table, idle, 64, t + 20 * MS);
	for (uint32_t i = 0; i < PM_QUOTA_CLIENTS_MAX; i++)
		(void)pm_qtable_admit(&table, htonl(0x0e000000u + i), 64, t + 200 * MS);
	CU_ASSERT_FALSE(tracked(&table, idle));
	CU_ASSERT_NOT_EQUAL(pm_qtable_admit(&table, ip("10.2.0.3"), 64, t + 201 * MS), 0);
	/* once the entry it replaces has been idle a full refill time (100 ms),
	 * forgetting that entry forgets nothing: a full burst */
	ok = 0;
	for (int i = 0; i < 100; i++)
		ok += pm_qtable_admit(&table, idle, 64, t + 301 * MS) == 0;
	CU_ASSERT_EQUAL(ok, 100);
}

/* The work budget: a client whose KNN work passed its budget is THROTTLED on
 * its next VQUERY until it has paid, with the exact wait as its hint; its
 * other requests pass, and so do another client's queries. */
static void test_table_work_budget(void)
{
	struct pm_quota_limits def = { 0 }; /* no request or byte quota */
	pm_qtable_init(&table, &def, 100, 2, 13);
	pm_qtable_set_work(&table, 1000000); /* 1 MB/s: 500 kB/s per worker, burst 50 kB */
	uint32_t a = ip("10.3.0.1"), b = ip("10.3.0.2");
	uint64_t t = SEC;
	CU_ASSERT_EQUAL(pm_qtable_admit_knn(&table, a, 64, t), 0);
	pm_qtable_charge_work(&table, a, 550000, t); /* 500 kB past the burst: 1 s to repay */
	CU_ASSERT_EQUAL(pm_qtable_admit_knn(&table, a, 64, t), 1001); /* the debt and a byte */
	CU_ASSERT_EQUAL(pm_qtable_admit(&table, a, 64, t), 0);         /* a GET passes */
	CU_ASSERT_EQUAL(pm_qtable_admit_knn(&table, b, 64, t), 0);     /* another client too */
	CU_ASSERT_EQUAL(pm_qtable_admit_knn(&table, a, 64, t + 500 * MS), 501);
	CU_ASSERT_NOT_EQUAL(pm_qtable_admit_knn(&table, a, 64, t + SEC), 0);
	CU_ASSERT_EQUAL(pm_qtable_admit_knn(&table, a, 64, t + SEC + MS), 0);
	struct pm_quota_talker top[2];
	CU_ASSERT_EQUAL_FATAL(pm_qtable_top(&table, top, 2, t + SEC + MS), 2);
	CU_ASSERT(top[0].addr_be == a && top[0].work == 550000 && top[0].throttled == 3);
	CU_ASSERT(top[1].addr_be == b && top[1].work == 0 && top[1].throttled == 0);
	/* queries admitted before their work was known: all of it is owed, up to
	 * PM_QUOTA_DEBT_MS_MAX of the rate */
	t = 100 * SEC;
	for (int i = 0; i < 50; i++)
		CU_ASSERT_EQUAL(pm_qtable_admit_knn(&table, b, 64, t), 0);
	for (int i = 0; i < 50; i++)
		pm_qtable_charge_work(&table, b, 1000000, t);
	uint32_t hint = pm_qtable_admit_knn(&table, b, 64, t);
	CU_ASSERT(hint > PM_QUOTA_DEBT_MS_MAX && hint <= PM_QUOTA_DEBT_MS_MAX + 1);
	/* work charged to a client the table has forgotten is owed when it comes back */
	uint32_t c = ip("10.3.0.3");
	pm_qtable_charge_work(&table, c, 100000, t);
	CU_ASSERT_NOT_EQUAL(pm_qtable_admit_knn(&table, c, 64, t), 0);
	/* no work budget (the default): nothing is ever owed */
	pm_qtable_set_work(&table, 0);
	pm_qtable_charge_work(&table, a, 1ull << 40, t);
	CU_ASSERT_EQUAL(pm_qtable_admit_knn(&table, a, 64, t), 0);
}

/* The worker's API for the control plane (access.c), and its INFO lines. */
/* Issue 19: unvalidated sources share a /24's bucket and one for all of
 * them; fresh addresses get no fresh burst; reply bytes are charged after
 * the fact, as debt. */
static struct pm_quota_shared shared;

static void test_unvalidated_shared(void)
{
	/* one client's quota 100/s over 2 workers, burst 100 ms: 5 tokens here;
	 * the /24: one client's (5), everyone: 16 clients' (80) */
	struct pm_quota_limits def = { .requests_per_s = 100 };
	pm_qshared_init(&shared, &def, 0, 0, 100, 2, 9, SEC);
	CU_ASSERT_EQUAL(shared.req.per_s, 100 * PM_QUOTA_UNVALIDATED_CLIENTS);
	CU_ASSERT_EQUAL(shared.prefixes.def_req.per_s, 100);
	/* 1,000 addresses of one /24, each new: 5 pass, not 1,000 x 5 */
	uint32_t ok = 0;
	for (uint32_t i = 0; i < 1000; i++)
		ok += pm_qshared_admit(&shared, htonl(0x0a010100u | (i & 0xffu)), 30, false, SEC) == 0;
	CU_ASSERT_EQUAL(ok, 5);
	CU_ASSERT_EQUAL(shared.prefixes.live, 1); /* one entry: the /24 */
	/* 1,000 addresses in 1,000 /24s: the shared bucket's 80 pass */
	ok = 0;
	for (uint32_t i = 0; i < 1000; i++)
		ok += pm_qshared_admit(&shared, htonl(0x0b000001u + (i << 8)), 30, false, SEC) == 0;
	CU_ASSERT_EQUAL(ok, 80 - 5);
	CU_ASSERT_EQUAL(shared.admitted, 80);
	CU_ASSERT_EQUAL(shared.throttled, 2000 - 80);
	/* the hint: the shared bucket's (800/s per worker: a token per 1.25 ms) */
	CU_ASSERT_EQUAL(pm_qshared_admit(&shared, ip("12.0.0.1"), 30, false, SEC), 2);
	/* explicit rates override the derived ones; 0 everywhere: unlimited */
	pm_qshared_init(&shared, &def, 7, 70, 100, 1, 9, SEC);
	CU_ASSERT(shared.prefixes.def_req.per_s == 7 && shared.req.per_s == 70);
	def = (struct pm_quota_limits){ 0 };
	pm_qshared_init(&shared, &def, 0, 0, 100, 1, 9, SEC);
	for (uint32_t i = 0; i < 10000; i++)
		CU_ASSERT_EQUAL_FATAL(pm_qshared_admit(&shared, htonl(i), 30, false, SEC), 0);
	/* reply bytes: 100 kB/s on one worker; a 60 kB reply owes what the bucket
	 * lacks, and the next request waits until it is paid */
	def = (struct pm_quota_limits){ .bytes_per_s = 100000 };
	pm_qtable_init(&table, &def, 100, 1, 7);
	uint32_t a = ip("10.0.0.1");
	CU_ASSERT_EQUAL(pm_qtable_admit(&table, a, 100, SEC), 0);
	pm_qtable_charge_bytes(&table, a, 60000, SEC);
	pm_qtable_charge_bytes(&table, a, 60000, SEC); /* 120 kB out: past the 65.5 kB burst */
	uint32_t wait = pm_qtable_admit(&table, a, 100, SEC);
	CU_ASSERT(wait >= 540 && wait <= 560); /* ~54.6 kB of debt + 100 bytes at 100 kB/s */
	CU_ASSERT_EQUAL(pm_qtable_admit(&table, a, 100, SEC + (uint64_t)wait * MS), 0);
	pm_qtable_charge_bytes(&table, ip("10.0.0.9"), 60000, SEC); /* not tracked: not added */
	CU_ASSERT(!tracked(&table, ip("10.0.0.9")));
}

static void test_worker_api(void)
{
	static struct pm_daemon d;
	static struct pm_worker w;
	static char text[PM_INFO_TEXT_BYTES_MAX];
	pm_config_defaults(&d.cfg);
	d.cfg.quota_requests_per_s = 100;
	d.nshards = 4;
	w.d = &d;
	CU_ASSERT_EQUAL_FATAL(pm_access_alloc(&w), 0);
	CU_ASSERT_EQUAL(w.quota->share, 4); /* each worker enforces rate / shards */
	CU_ASSERT_EQUAL(w.quota->def_req.per_s, 100);
	w.now_ns = SEC;
	uint32_t vip = ip("10.9.0.1"), other = ip("10.9.0.2");
	CU_ASSERT_EQUAL(pm_quota_set(&w, vip, 1000, 1 << 20), 0);
	CU_ASSERT_EQUAL(pm_quota_set(&w, vip, PM_QUOTA_RATE_PER_S_MAX + 1, 0), -EINVAL);
	struct pm_quota_override o[2];
	CU_ASSERT_EQUAL_FATAL(pm_quota_list(&w, o, 2), 1);
	CU_ASSERT(o[0].addr_be == vip && o[0].lim.requests_per_s == 1000 &&
		  o[0].lim.bytes_per_s == 1 << 20);
	for (int i = 0; i < 3; i++)
		(void)pm_qtable_admit(w.quota, other, 10, SEC);
	(void)pm_qtable_admit(w.quota, vip, 10, SEC);
	struct pm_quota_talker top[2];
	CU_ASSERT_EQUAL_FATAL(pm_quota_top(&w, top, 2), 2);
	CU_ASSERT(top[0].addr_be == other && top[1].addr_be == vip && top[1].pinned);
	uint32_t n = pm_access_info(&w, text, sizeof(text) - 1);
	text[n] = '\0';
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "quota_clients:2\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "quota_overrides:1\r\n"));
	/* 100/s over 4 workers, 100 ms of burst: 2.5 tokens here, so 2 of 3 pass */
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "client_10.9.0.2_requests:2\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "client_10.9.0.2_throttled:1\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "client_10.9.0.1_bytes:10\r\n"));
	CU_ASSERT_EQUAL(pm_access_info(&w, text, 8), 0); /* nothing half-written */
	/* INFO lists PM_QUOTA_INFO_TOP clients, the busiest */
	for (uint32_t i = 0; i < PM_QUOTA_INFO_TOP + 2; i++)
		for (uint32_t j = 0; j <= i; j++)
			(void)pm_qtable_admit(w.quota, htonl(0x0a0a0000u + i), 1, SEC + j * SEC);
	n = pm_access_info(&w, text, sizeof(text) - 1);
	text[n] = '\0';
	uint32_t listed = 0;
	for (const char *p = text; (p = strstr(p, "_throttled:")) != NULL; p++)
		listed++;
	CU_ASSERT_EQUAL(listed, PM_QUOTA_INFO_TOP);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "client_10.10.0.5_requests:6\r\n")); /* the busiest */
	CU_ASSERT_PTR_NULL(strstr(text, "client_10.10.0.0_")); /* the least busy */
	CU_ASSERT_EQUAL(pm_quota_del(&w, vip), 0);
	CU_ASSERT_EQUAL(pm_quota_del(&w, vip), -ENOENT);
	CU_ASSERT_EQUAL(pm_quota_list(&w, o, 2), 0);
	pm_access_free(&w);
	/* the work budget from the config; charged work shows in INFO; the admin
	 * socket's own queries are charged to nobody */
	d.cfg.quota_work_bytes_per_s = 4000000;
	CU_ASSERT_EQUAL_FATAL(pm_access_alloc(&w), 0);
	CU_ASSERT_EQUAL(w.quota->work.per_s, 4000000);
	struct pm_dest client = { .addr = { .sin_family = AF_INET, .sin_addr.s_addr = other },
				  .conn = PM_CONN_NONE, .budget = PM_BUDGET_NONE }; /* validated */
	struct pm_dest admin = { .conn = PM_CONN_ADMIN };
	pm_quota_charge_work(&w, &client, 12345);
	pm_quota_charge_work(&w, &admin, 999);
	CU_ASSERT_EQUAL(w.stats.knn_work_charged, 12345);
	n = pm_access_info(&w, text, sizeof(text) - 1);
	text[n] = '\0';
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "client_10.9.0.2_work:12345\r\n"));
	CU_ASSERT_EQUAL(w.quota->live, 1);
	pm_access_free(&w);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "allowlist: match", test_allow_match },
		{ "allowlist: bad networks and the bound", test_allow_bounds },
		{ "bucket: burst, wait, cap, unlimited", test_bucket_burst_and_wait },
		{ "bucket: long-run rate, share, remainder, byte burst", test_bucket_rate_and_share },
		{ "bucket: work charged after the fact, debt and its bound", test_bucket_debt },
		{ "table: admit, hints, counters, top talkers", test_table_admit_and_top },
		{ "table: overrides and their bound", test_table_overrides },
		{ "table: bound and replacement rule", test_table_replacement },
		{ "table: work budget, the client in debt THROTTLED, others not",
		  test_table_work_budget },
		{ "unvalidated sources: shared /24 and global buckets, reply bytes",
		  test_unvalidated_shared },
		{ "worker API: set, del, list, top, INFO", test_worker_api },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("quota", tests);
}
