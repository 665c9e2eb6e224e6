/* SPDX-License-Identifier: MIT
 *
 * guard.c — cookies and the reply budget (guard.h has the rules and why):
 * the window secrets and their ratchet, minting and verifying, a datagram's
 * COOKIE frame, RETRY replies, and the gate every datagram reply to an
 * unvalidated address passes (worker.c, deliver).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bridge.h"
#include "common.h"
#include "guard.h"
#include "worker.h"

_Static_assert(PM_COOKIE_WINDOW_S_MAX <= UINT64_MAX / 1000000000u,
	       "a window's nanoseconds fit a u64");
_Static_assert(crypto_generichash_BYTES_MIN <= PM_COOKIE_SECRET_BYTES &&
		       crypto_generichash_KEYBYTES_MIN <= PM_COOKIE_SECRET_BYTES,
	       "BLAKE2b makes and takes 16-byte secrets");
_Static_assert(PM_BUDGET_BYTES_MAX < PM_BUDGET_NONE, "a budget never reads as none");

/* Domain separation: a window's secret and the master's next epoch are
 * never the same BLAKE2b input. */
static const char window_label[] = "pomai cookie window v1";
static const char ratchet_label[] = "pomai cookie ratchet v1";

/* ---------------------------------------------------------------- secrets */

uint32_t pm_guard_window(uint64_t now_ns, uint32_t window_s)
{
	return (uint32_t)(now_ns / ((uint64_t)window_s * 1000000000u)) + 1u;
}

static uint32_t epoch_of(uint32_t window)
{
	return window / PM_COOKIE_EPOCH_WINDOWS;
}

/* The master of the next epoch, in place; the old one is gone. */
static void ratchet(uint8_t master[PM_COOKIE_SECRET_BYTES])
{
	uint8_t next[PM_COOKIE_SECRET_BYTES];
	crypto_generichash(next, sizeof next, (const uint8_t *)ratchet_label,
			   sizeof ratchet_label - 1, master, PM_COOKIE_SECRET_BYTES);
	memcpy(master, next, sizeof next);
	sodium_memzero(next, sizeof next);
}

static void window_secret(const uint8_t master[PM_COOKIE_SECRET_BYTES], uint32_t window,
			  uint8_t out[PM_COOKIE_SECRET_BYTES])
{
	uint8_t in[sizeof window_label - 1 + 4];
	memcpy(in, window_label, sizeof window_label - 1);
	in[sizeof in - 4] = (uint8_t)window;
	in[sizeof in - 3] = (uint8_t)(window >> 8);
	in[sizeof in - 2] = (uint8_t)(window >> 16);
	in[sizeof in - 1] = (uint8_t)(window >> 24);
	crypto_generichash(out, PM_COOKIE_SECRET_BYTES, in, sizeof in, master,
			   PM_COOKIE_SECRET_BYTES);
}

void pm_guard_init(struct pm_guard *g, const struct pm_guard_root *root, uint32_t window_s,
		   uint64_t now_ns)
{
	uint8_t *buf = g->buf;
	*g = (struct pm_guard){ .window_s = window_s, .epoch = root->epoch, .buf = buf };
	memcpy(g->master, root->secret, PM_COOKIE_SECRET_BYTES);
	pm_guard_tick(g, now_ns);
}

void pm_guard_tick(struct pm_guard *g, uint64_t now_ns)
{
	uint32_t win = pm_guard_window(now_ns, g->window_s);
	if (likely(win == g->window))
		return;
	uint32_t base = win - 1; /* the oldest window still valid */
	while (g->epoch < epoch_of(base)) {
		ratchet(g->master);
		g->epoch++;
	}
	uint8_t m[PM_COOKIE_SECRET_BYTES];
	uint32_t e = g->epoch;
	memcpy(m, g->master, sizeof m);
	for (uint32_t i = 0; i < 3; i++) {
		for (; e < epoch_of(base + i); e++)
			ratchet(m); /* window + 1 may open the next epoch */
		window_secret(m, base + i, g->secret[i]);
	}
	sodium_memzero(m, sizeof m);
	g->window = win;
}

void pm_guard_mint(const struct pm_guard *g, uint32_t addr_be, struct pm_cookie *c)
{
	c->window = g->window;
	pm_cookie_tag(g->secret[1], addr_be, g->window, c->tag);
}

bool pm_guard_verify(const struct pm_guard *g, uint32_t addr_be, const struct pm_cookie *c)
{
	/* windows window - 1 (made in the last one), window, window + 1 (a worker a
	 * turn ahead at the edge); c->window + 1 wraps to 0 for UINT32_MAX */
	if (c->window == UINT32_MAX || c->window + 1u < g->window || c->window > g->window + 1u)
		return false;
	uint8_t tag[PM_AUTH_TAG_BYTES];
	pm_cookie_tag(g->secret[c->window + 1u - g->window], addr_be, c->window, tag);
	return pm_auth_tag_equal(tag, c->tag);
}

/* ---------------------------------------------------------------- the worker's side */

void pm_guard_root_init(struct pm_guard_root *root, uint32_t window_s, uint64_t now_ns)
{
	pm_auth_random(root->secret, PM_COOKIE_SECRET_BYTES);
	root->epoch = epoch_of(pm_guard_window(now_ns, window_s) - 1u);
}

void pm_guard_root_erase(struct pm_guard_root *root)
{
	sodium_memzero(root->secret, sizeof root->secret);
}

int pm_guard_alloc(struct pm_worker *w)
{
	w->guard.buf = malloc(PM_BUDGET_BYTES_MAX);
	if (!w->guard.buf)
		return -1;
	pm_guard_init(&w->guard, &w->d->cookie_root, w->d->cfg.cookie_window_s, pm_mono_ns());
	return 0;
}

void pm_guard_free(struct pm_worker *w)
{
	sodium_memzero(w->guard.master, sizeof w->guard.master);
	sodium_memzero(w->guard.secret, sizeof w->guard.secret);
	free(w->guard.buf);
	w->guard.buf = NULL;
}

bool pm_guard_datagram(struct pm_worker *w, const uint8_t *buf, uint32_t len,
		       const struct pm_dest *from, struct pm_guard_dgram *g)
{
	struct pm_cookie c;
	*g = (struct pm_guard_dgram){ .factor = PM_AMPLIFY_FACTOR };
	int r = pm_cookie_frame_read(buf, len, &c);
	if (likely(r == 0))
		return true;
	if (r < 0) {
		w->guard_stats.dropped_cookie_frame++;
		return false;
	}
	g->skip = PM_COOKIE_FRAME_BYTES;
	pm_guard_tick(&w->guard, w->now_ns);
	if (pm_guard_verify(&w->guard, from->addr.sin_addr.s_addr, &c)) {
		g->validated = true;
		w->guard_stats.validated++;
	} else {
		g->factor = PM_AMPLIFY_FACTOR_BAD_COOKIE;
		w->guard_stats.bad_cookies++;
	}
	return true;
}

bool pm_guard_op_writes(uint8_t op)
{
	switch (op) {
	case PM_OP_SET:
	case PM_OP_DEL:
	case PM_OP_VADD:
	case PM_OP_VADDB:
	case PM_OP_VDEL:
	case PM_OP_VSETATTR:
	case PM_OP_CCREATE:
	case PM_OP_CDROP:
	case PM_OP_SNAPSHOT:
		return true;
	default:
		return false;
	}
}

bool pm_guard_write_ok(struct pm_worker *w, const struct pm_request *req,
		       const struct pm_dest *from, bool authenticated)
{
	if (authenticated || !pm_dest_unvalidated(from) || !pm_guard_op_writes(req->op))
		return true;
	pm_guard_retry(w, from, req->op, req->id, PM_GUARD_WHY_WRITE);
	return false;
}

/* ---------------------------------------------------------------- RETRY and the gate */

void pm_guard_retry(struct pm_worker *w, const struct pm_dest *to, uint8_t op, uint64_t id,
		    enum pm_guard_why why)
{
	uint8_t frame[PM_RETRY_FRAME_BYTES], cookie[PM_COOKIE_BYTES];
	struct pm_cookie c;
	pm_guard_tick(&w->guard, w->now_ns);
	pm_guard_mint(&w->guard, to->addr.sin_addr.s_addr, &c);
	pm_cookie_write(&c, cookie);
	size_t n = pm_reply_encode_retry(op, id, cookie, frame, sizeof frame);
	if (n == 0 || n > to->budget) { /* a frame past its datagram's cookie at 1x */
		w->guard_stats.withheld++;
		return;
	}
	w->guard_stats.cookies_issued++;
	w->guard_stats.retry_budget += why == PM_GUARD_WHY_BUDGET;
	w->guard_stats.retry_write += why == PM_GUARD_WHY_WRITE;
	w->guard_stats.retry_throttled += why == PM_GUARD_WHY_THROTTLED;
	struct pm_dest d = *to;
	if (pm_dest_unvalidated(to))
		d.budget = (uint32_t)n; /* within it: the gate lets it pass, and its bytes are
					 * charged to the unvalidated sources' quota */
	pm_deliver_frames(w, &d, frame, (uint32_t)n);
}

uint32_t pm_guard_gate_reply(struct pm_worker *w, const struct pm_dest *to,
			     const struct pm_reply *rep, const uint8_t **frames)
{
	uint32_t n = pm_reply_frames(rep, w->guard.buf, PM_BUDGET_BYTES_MAX);
	if (n != 0 && n <= to->budget) {
		*frames = w->guard.buf;
		return n;
	}
	/* past the buffer: at least that much was withheld */
	w->guard_stats.bytes_withheld += n ? n : PM_BUDGET_BYTES_MAX;
	pm_guard_retry(w, to, rep->op, rep->id, PM_GUARD_WHY_BUDGET);
	return 0;
}

bool pm_guard_gate_frames(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
			  uint32_t len)
{
	struct pm_reply_view rv;
	size_t used;
	if (len <= to->budget)
		return true;
	w->guard_stats.bytes_withheld += len;
	(void)pm_reply_decode(frames, len, &rv, &used); /* encoded by a worker: its op and id */
	pm_guard_retry(w, to, rv.op, rv.id, PM_GUARD_WHY_BUDGET);
	return false;
}

/* ---------------------------------------------------------------- INFO */

uint32_t pm_guard_info(const struct pm_worker *w, char *out, uint32_t cap)
{
	const struct pm_guard_stats *s = &w->guard_stats;
	int n = snprintf(out, cap,
			 "guard_cookies_issued:%llu\r\nguard_retry_budget:%llu\r\n"
			 "guard_retry_write:%llu\r\nguard_retry_quota:%llu\r\n"
			 "guard_validated:%llu\r\nguard_bad_cookies:%llu\r\n"
			 "guard_dropped_cookie_frame:%llu\r\nguard_bytes_withheld:%llu\r\n"
			 "guard_withheld:%llu\r\n",
			 (unsigned long long)s->cookies_issued, (unsigned long long)s->retry_budget,
			 (unsigned long long)s->retry_write, (unsigned long long)s->retry_throttled,
			 (unsigned long long)s->validated, (unsigned long long)s->bad_cookies,
			 (unsigned long long)s->dropped_cookie_frame,
			 (unsigned long long)s->bytes_withheld, (unsigned long long)s->withheld);
	return n < 0 || (uint32_t)n >= cap ? 0 : (uint32_t)n;
}
