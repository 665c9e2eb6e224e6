/* SPDX-License-Identifier: MIT
 *
 * crash_writers.c — writers that know what each key may hold after a crash,
 * and the check after a restart (crash_writers.h).
 */
#define _GNU_SOURCE
#include "crash_writers.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libclient.h"
#include "rand.h"

/* ---------------------------------------------------------------- the run */

void cw_run_init(struct cw_run *r, uint64_t seed, uint32_t probe_keys, uint32_t in_flight)
{
	pthread_condattr_t ca;
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	r->seed = seed;
	r->probe_keys = probe_keys;
	r->in_flight = in_flight;
}

static void run_wake(struct cw_run *r)
{
	pthread_mutex_lock(&r->mu);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* ---------------------------------------------------------------- keys and values */

static bool absent(uint32_t ver, bool del)
{
	return ver == 0 || del;
}

int cw_key_name(uint32_t writer, uint32_t n, char *out)
{
	return snprintf(out, CW_KEY_BYTES, "t%u:%u", writer, n);
}

/* The value of version ver of key n of w: length and bytes from the seed. */
static uint32_t value_of(const struct cw_writer *w, uint32_t n, uint32_t ver, uint8_t *out)
{
	uint64_t s = w->run->seed ^ w->id;
	s = pm_test_rand(&s) ^ n;
	s = pm_test_rand(&s) ^ ver;
	uint32_t len = 1 + (uint32_t)(pm_test_rand(&s) % w->value_max);
	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t x = pm_test_rand(&s);
		memcpy(out + i, &x, len - i < 8 ? len - i : 8);
	}
	return len;
}

/* ---------------------------------------------------------------- writers */

void cw_writer_init(struct cw_writer *w, struct cw_run *r, uint32_t id, uint32_t value_max)
{
	memset(w, 0, sizeof(*w));
	w->run = r;
	w->id = id;
	w->value_max = value_max;
	w->keys = calloc(CW_KEYS_PER_WRITER_MAX, sizeof(*w->keys));
	CU_ASSERT_FATAL(w->keys != NULL);
}

void cw_writer_free(struct cw_writer *w)
{
	free(w->keys);
	w->keys = NULL;
}

bool cw_writer_begin(struct cw_writer *w, const struct pomaid *d, uint64_t run_seed)
{
	w->c = lib_open(d, LIB_TIMEOUT_MS, LIB_RETRIES, w->run->in_flight);
	w->rng = run_seed ^ ((uint64_t)w->id << 32);
	w->stopped = false;
	w->acked = w->sent = w->failed = w->full = w->checked = w->mismatches = 0;
	w->first_err = PM_CLIENT_OK;
	w->nfree = CW_OPS_MAX;
	for (uint32_t i = 0; i < CW_OPS_MAX; i++)
		w->free_ops[i] = &w->ops[CW_OPS_MAX - 1 - i];
	return w->c != NULL;
}

void cw_writer_end(struct cw_writer *w)
{
	pm_client_close(w->c); /* requests in flight are dropped: they stay "maybe" */
	w->c = NULL;
}

/* A write failed: with the power off that is expected (the writer stops);
 * else it is counted, unless it is the E_DISK_FULL the run expects. */
static void writer_fail(struct cw_writer *w, enum pm_client_status st, uint32_t n)
{
	w->stopped = true;
	if (atomic_load(&w->run->cut))
		return;
	w->last_err = st;
	if (st == PM_CLIENT_E_DISK_FULL && w->full_expected) {
		if (!w->full++)
			w->full_key = n;
	} else if (!w->failed++) {
		w->first_err = st;
		w->first_err_key = n;
	}
}

static void on_write(void *arg, const struct pm_client_result *res)
{
	struct cw_op *o = arg;
	struct cw_writer *w = o->w;
	struct cw_run *r = w->run;
	struct cw_key *k = &w->keys[o->n];
	k->inflight = false;
	if (res->status == PM_CLIENT_OK) {
		k->known = o->ver;
		k->known_del = o->del;
		k->maybe = 0;
		w->acked++;
		if (atomic_load(&r->cut))
			atomic_fetch_add(&r->acked_after_cut, 1);
		if (atomic_fetch_add(&r->acked, 1) + 1 == r->target)
			run_wake(r);
	} else if (!atomic_load(&r->killed)) {
		writer_fail(w, res->status, o->n);
	}
	atomic_fetch_add(&r->done, 1);
	w->free_ops[w->nfree++] = o;
}

void cw_write_key(struct cw_writer *w, uint32_t n, bool del)
{
	char key[CW_KEY_BYTES];
	struct cw_key *k = &w->keys[n];
	struct cw_op *o = w->free_ops[--w->nfree];
	k->ver++;
	*o = (struct cw_op){ .w = w, .n = n, .ver = k->ver, .del = del };
	struct pm_client_req r = { .op = del ? PM_CLIENT_DEL : PM_CLIENT_SET, .key = key,
				   .klen = (uint32_t)cw_key_name(w->id, n, key), .cb = on_write,
				   .arg = o };
	if (!del) {
		r.value = w->val;
		r.vlen = value_of(w, n, k->ver, w->val);
	}
	k->maybe = k->ver;
	k->maybe_del = del;
	k->inflight = true;
	enum pm_client_status st = pm_client_submit(w->c, &r, NULL);
	if (st != PM_CLIENT_OK) { /* refused before sending: the key keeps a "maybe" all the same */
		k->inflight = false;
		w->free_ops[w->nfree++] = o;
		writer_fail(w, st, n);
		return;
	}
	w->sent++;
	atomic_fetch_add(&w->run->sent, 1);
}

/* The next write of the mix: a new key, or an overwrite or DEL of one not in flight. */
static void write_next(struct cw_writer *w)
{
	uint32_t pct = (uint32_t)(pm_test_rand(&w->rng) % 100);
	bool room = w->next_new < CW_KEYS_PER_WRITER_MAX - w->run->probe_keys;
	if (w->next_new > 0 && (pct >= CW_MIX_NEW_PCT || !room)) {
		for (int tries = 0; tries < 4; tries++) {
			uint32_t n = (uint32_t)(pm_test_rand(&w->rng) % w->next_new);
			if (!w->keys[n].inflight && !w->keys[n].maybe) {
				cw_write_key(w, n, pct >= 100 - CW_MIX_DEL_PCT);
				return;
			}
		}
	}
	if (room)
		cw_write_key(w, w->next_new++, false);
}

static void *writer_main(void *arg)
{
	struct cw_writer *w = arg;
	struct cw_run *r = w->run;
	while (!atomic_load(&r->killed)) {
		bool stop = w->stopped || atomic_load(&r->stop) || atomic_load(&r->cut);
		for (uint32_t i = 0; i < CW_WRITER_DEPTH && !stop &&
				     pm_client_in_flight(w->c) < CW_WRITER_DEPTH && w->nfree > 0; i++) {
			write_next(w);
			stop = w->stopped;
		}
		if (stop && pm_client_in_flight(w->c) == 0)
			break;
		pm_client_poll(w->c, 2);
	}
	pthread_mutex_lock(&r->mu);
	r->live--;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* ---------------------------------------------------------------- a run */

bool cw_start(struct cw_run *r, struct cw_writer *ws, uint32_t nw, pthread_t *t,
	      const struct pomaid *d, uint64_t run_seed, uint64_t target)
{
	atomic_store(&r->acked, 0);
	atomic_store(&r->sent, 0);
	atomic_store(&r->done, 0);
	atomic_store(&r->acked_after_cut, 0);
	atomic_store(&r->stop, false);
	atomic_store(&r->cut, false);
	atomic_store(&r->killed, false);
	r->target = target;
	for (uint32_t i = 0; i < nw; i++)
		if (!cw_writer_begin(&ws[i], d, run_seed)) {
			while (i-- > 0)
				cw_writer_end(&ws[i]);
			return false;
		}
	r->live = nw;
	for (uint32_t i = 0; i < nw; i++)
		pthread_create(&t[i], NULL, writer_main, &ws[i]);
	return true;
}

void cw_wait(struct cw_run *r, uint64_t want, bool quiet)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += CW_ACK_WAIT_MS / 1000;
	pthread_mutex_lock(&r->mu);
	r->target = want;
	while (r->live > 0 && (quiet || atomic_load(&r->acked) < want))
		if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&r->mu);
}

void cw_join(struct cw_run *r, struct cw_writer *ws, uint32_t nw, pthread_t *t)
{
	atomic_store(&r->killed, true);
	for (uint32_t i = 0; i < nw; i++) {
		pthread_join(t[i], NULL);
		cw_writer_end(&ws[i]);
	}
}

/* ---------------------------------------------------------------- checking */

static bool value_is(struct cw_writer *w, uint32_t n, uint32_t ver,
		     const struct pm_client_result *res)
{
	uint32_t len = value_of(w, n, ver, w->want);
	return res->vlen == len && memcmp(res->value, w->want, len) == 0;
}

static void describe_state(char *out, size_t cap, uint32_t ver, bool del)
{
	if (ver == 0)
		snprintf(out, cap, "absent (never acknowledged)");
	else
		snprintf(out, cap, "%s of version %u", del ? "deleted (DEL)" : "the value", ver);
}

/* Print what key n holds against what it may hold (the first few per writer). */
static void mismatch(struct cw_writer *w, uint32_t n, const struct pm_client_result *res)
{
	const struct cw_key *k = &w->keys[n];
	char want[64], alt[80] = "", got[96];
	if (w->mismatches++ >= CW_MISMATCHES_PRINTED)
		return;
	describe_state(want, sizeof(want), k->known, k->known_del);
	if (k->maybe)
		snprintf(alt, sizeof(alt), " or (unacknowledged) %s version %u",
			 k->maybe_del ? "deleted by" : "the value of", k->maybe);
	if (res->status == PM_CLIENT_NOT_FOUND) {
		snprintf(got, sizeof(got), "absent");
	} else if (res->status != PM_CLIENT_OK) {
		snprintf(got, sizeof(got), "status %s", pm_client_status_name(res->status));
	} else {
		uint32_t match = 0;
		for (uint32_t v = 1; v <= k->ver && !match; v++)
			match = value_is(w, n, v, res) ? v : 0;
		snprintf(got, sizeof(got), "%u bytes, %s %u", res->vlen,
			 match ? "the value of version" : "no value this key was ever sent; versions sent:",
			 match ? match : k->ver);
	}
	printf("\n  LOST/WRONG: seed %" PRIu64 " %s round %u key t%u:%u (%s): expected %s%s; got %s\n",
	       w->run->seed, w->run->test ? w->run->test : "", w->run->round, w->id, n,
	       k->ver ? "written" : "never sent", want, alt, got);
}

/* A GET's answer against the states the key may be in. */
static void on_get(void *arg, const struct pm_client_result *res)
{
	struct cw_op *o = arg;
	struct cw_writer *w = o->w;
	struct cw_key *k = &w->keys[o->n];
	bool found = res->status == PM_CLIENT_OK;
	bool is_known = found ? !absent(k->known, k->known_del) && value_is(w, o->n, k->known, res)
			      : absent(k->known, k->known_del);
	bool is_maybe = k->maybe && k->maybe_del == !found &&
			(!found || value_is(w, o->n, k->maybe, res));
	w->checked++;
	if ((!found && res->status != PM_CLIENT_NOT_FOUND) || (!is_known && !is_maybe)) {
		mismatch(w, o->n, res);
	} else if (w->run->check_settles) {
		if (!is_known) {
			k->known = k->maybe;
			k->known_del = k->maybe_del;
		}
		k->maybe = 0;
	}
	w->free_ops[w->nfree++] = o;
}

/* GET every key number the writer used, and probe_keys past them. */
static void *checker_main(void *arg)
{
	struct cw_writer *w = arg;
	char key[CW_KEY_BYTES];
	uint32_t end = w->next_new + w->run->probe_keys;
	for (uint32_t n = 0; n < end;) {
		while (n < end && pm_client_in_flight(w->c) < CW_CHECK_DEPTH && w->nfree > 0) {
			struct cw_op *o = w->free_ops[--w->nfree];
			*o = (struct cw_op){ .w = w, .n = n };
			struct pm_client_req r = { .op = PM_CLIENT_GET, .key = key, .cb = on_get, .arg = o,
						   .klen = (uint32_t)cw_key_name(w->id, n++, key) };
			if (pm_client_submit(w->c, &r, NULL) != PM_CLIENT_OK) {
				w->free_ops[w->nfree++] = o;
				if (!w->mismatches++)
					printf("\n  a GET of writer %u could not be submitted", w->id);
			}
		}
		pm_client_poll(w->c, 5);
	}
	pm_client_drain(w->c);
	return NULL;
}

uint64_t cw_check(struct cw_run *r, struct cw_writer *ws, uint32_t nw, const struct pomaid *d,
		  bool settle, uint64_t *keys)
{
	pthread_t t[CW_WRITERS_MAX];
	uint64_t bad = 0;
	*keys = 0;
	r->check_settles = settle;
	CU_ASSERT_FATAL(nw <= CW_WRITERS_MAX);
	for (uint32_t i = 0; i < nw; i++)
		CU_ASSERT_FATAL(cw_writer_begin(&ws[i], d, 0));
	for (uint32_t i = 0; i < nw; i++)
		pthread_create(&t[i], NULL, checker_main, &ws[i]);
	for (uint32_t i = 0; i < nw; i++) {
		pthread_join(t[i], NULL);
		cw_writer_end(&ws[i]);
		bad += ws[i].mismatches;
		*keys += ws[i].checked;
	}
	return bad;
}
