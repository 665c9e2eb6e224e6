/* SPDX-License-Identifier: MIT
 *
 * soak_admin.c — pomai-soak's admin thread: over pomaid's admin socket it
 *  - starts a snapshot every SOAK_SNAPSHOT_EVERY_S ("SNAPSHOT now") and
 *    follows "SNAPSHOT STATUS" until every shard has completed one more,
 *    failing the run if one fails or none completes in SOAK_SNAPSHOT_DONE_MS;
 *  - every SOAK_QUOTA_EVERY_S tightens the load's quota (all load threads
 *    share 127.0.0.1) to SOAK_QUOTA_TIGHT_RPS for SOAK_QUOTA_TIGHT_MS, then
 *    relaxes it, alternately with a generous QUOTA SET and with QUOTA DEL;
 *    each tight window is recorded so that the load threads can tell a right
 *    THROTTLED from a wrong one (soak_throttle_ok).
 * Every admin reply must be OK; anything else fails the run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_proto.h"
#include "soak.h"

#define SOAK_CLIENT_ADDR "127.0.0.1"
/* --auth: the quota table is keyed by user (issue 19). */
#define SOAK_CLIENT_USER "user:1"
_Static_assert(SOAK_AUTH_USER == 1, "SOAK_CLIENT_USER names it");

static const char *soak_client(const struct soak *s)
{
	return s->o.auth ? SOAK_CLIENT_USER : SOAK_CLIENT_ADDR;
}

struct soak_admin {
	struct soak *s;
	int fd;
	uint8_t buf[SOAK_ADMIN_BUF_BYTES];
	char text[SOAK_ADMIN_BUF_BYTES];
};

/* One command; its reply text (terminated) in a->text. 0, or -1 (failure recorded). */
static int admin(struct soak_admin *a, uint32_t argc, const char *const *argv)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (a->fd < 0)
			a->fd = pm_admin_connect(a->s->admin_sock);
		if (a->fd < 0)
			continue;
		uint8_t st;
		const char *t;
		size_t tlen;
		int rc = pm_admin_call(a->fd, argc, argv, a->buf, sizeof(a->buf),
				       SOAK_ADMIN_TIMEOUT_MS, &st, &t, &tlen);
		if (rc != 0) {
			close(a->fd); /* reconnect once: the daemon may have closed an idle one */
			a->fd = -1;
			continue;
		}
		tlen = tlen < sizeof(a->text) - 1 ? tlen : sizeof(a->text) - 1;
		memcpy(a->text, t, tlen);
		a->text[tlen] = 0;
		if (st == PM_ADMIN_OK)
			return 0;
		soak_fail(a->s, "admin %s %s: status %u: %s", argv[0], argc > 1 ? argv[1] : "",
			  st, a->text);
		return -1;
	}
	soak_fail(a->s, "admin %s: socket %s unreachable", argv[0], a->s->admin_sock);
	return -1;
}

/* The sum over the reply's lines "name:value". */
static uint64_t field_sum(const char *text, const char *name)
{
	uint64_t sum = 0;
	size_t nlen = strlen(name);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, name, nlen) == 0 && p[nlen] == ':')
			sum += strtoull(p + nlen + 1, NULL, 10);
	return sum;
}

/* ---------------------------------------------------------------- snapshots */

static int snapshot_status(struct soak_admin *a, uint64_t *running, uint64_t *done,
			   uint64_t *failed)
{
	static const char *const argv[] = { "SNAPSHOT", "STATUS" };
	if (admin(a, 2, argv) != 0)
		return -1;
	*running = field_sum(a->text, "snapshot_in_progress");
	*done = field_sum(a->text, "snapshots_completed");
	*failed = field_sum(a->text, "snapshots_failed");
	return 0;
}

/* Start one and follow it to completion on every shard. */
static void snapshot(struct soak_admin *a)
{
	static const char *const now[] = { "SNAPSHOT", "now" };
	uint64_t run, done0, failed0, done, failed;
	if (snapshot_status(a, &run, &done0, &failed0) != 0 || admin(a, 2, now) != 0)
		return;
	uint64_t t0 = proc_now_ms();
	for (;;) {
		if (!soak_wait_ms(a->s, SOAK_SNAPSHOT_POLL_MS))
			return;
		if (snapshot_status(a, &run, &done, &failed) != 0)
			return;
		if (failed > failed0) {
			soak_fail(a->s, "snapshot failed on a shard: %s", a->text);
			return;
		}
		if (run == 0 && done >= done0 + a->s->o.shards)
			break;
		if (proc_now_ms() - t0 > SOAK_SNAPSHOT_DONE_MS) {
			soak_fail(a->s, "snapshot not done after %u ms: %s", SOAK_SNAPSHOT_DONE_MS,
				  a->text);
			return;
		}
	}
	atomic_fetch_add(&a->s->snapshots, 1);
	fprintf(stderr, "pomai-soak: snapshot %" PRIu64 " done in %" PRIu64 " ms\n",
		atomic_load(&a->s->snapshots), proc_now_ms() - t0);
}

/* ---------------------------------------------------------------- quotas */

static int quota_set(struct soak_admin *a, uint32_t rps)
{
	char r[16];
	snprintf(r, sizeof(r), "%u", rps);
	const char *const argv[] = { "QUOTA", "SET", soak_client(a->s), r, "0" };
	return admin(a, 5, argv);
}

static void quota_cycle(struct soak_admin *a, uint64_t cycle)
{
	struct soak *s = a->s;
	pthread_mutex_lock(&s->quota_lock);
	struct soak_window *w = &s->windows[s->nwindows++ % SOAK_QUOTA_WINDOWS];
	*w = (struct soak_window){ .start_ms = proc_now_ms(), .end_ms = UINT64_MAX };
	pthread_mutex_unlock(&s->quota_lock);
	int rc = quota_set(a, SOAK_QUOTA_TIGHT_RPS);
	soak_wait_ms(s, SOAK_QUOTA_TIGHT_MS); /* relaxed below even when the run stops */
	if (cycle % 2u == 0) {
		rc |= quota_set(a, SOAK_QUOTA_GENEROUS_RPS);
	} else {
		const char *const del[] = { "QUOTA", "DEL", soak_client(s) };
		rc |= admin(a, 3, del);
	}
	uint64_t end = proc_now_ms();
	pthread_mutex_lock(&s->quota_lock);
	w->end_ms = end;
	pthread_mutex_unlock(&s->quota_lock);
	if (rc == 0)
		atomic_fetch_add(&s->quota_cycles, 1);
}

bool soak_throttle_ok(struct soak *s, uint64_t sent_ms, uint64_t done_ms)
{
	bool ok = false;
	pthread_mutex_lock(&s->quota_lock);
	uint32_t n = s->nwindows < SOAK_QUOTA_WINDOWS ? s->nwindows : SOAK_QUOTA_WINDOWS;
	for (uint32_t i = 0; i < n && !ok; i++) {
		const struct soak_window *w = &s->windows[i];
		ok = done_ms >= w->start_ms &&
		     (w->end_ms == UINT64_MAX || sent_ms <= w->end_ms + SOAK_QUOTA_GRACE_MS);
	}
	pthread_mutex_unlock(&s->quota_lock);
	return ok;
}

/* ---------------------------------------------------------------- the thread */

void *soak_admin_thread(void *arg)
{
	struct soak_admin *a = calloc(1, sizeof(*a));
	if (!a) {
		soak_fail(arg, "admin thread: out of memory");
		return NULL;
	}
	a->s = arg;
	a->fd = -1;
	const uint64_t snap_ms = SOAK_SNAPSHOT_EVERY_S * 1000ull;
	const uint64_t quota_ms = SOAK_QUOTA_EVERY_S * 1000ull;
	uint64_t t0 = proc_now_ms(), next_snap = t0 + snap_ms, next_quota = t0 + quota_ms / 2u;
	uint64_t cycle = 0;
	quota_set(a, SOAK_QUOTA_GENEROUS_RPS); /* the client's own quota from the start */
	while (soak_wait_ms(a->s, SOAK_ADMIN_TICK_MS)) {
		uint64_t now = proc_now_ms();
		if (now >= next_quota) {
			quota_cycle(a, cycle++);
			next_quota = proc_now_ms() + quota_ms;
		}
		if (now >= next_snap) {
			snapshot(a);
			next_snap = proc_now_ms() + snap_ms;
		}
	}
	if (a->fd >= 0)
		close(a->fd);
	free(a);
	return NULL;
}
