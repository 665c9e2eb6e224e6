/* SPDX-License-Identifier: MIT
 *
 * guard.h — anti-amplification (issue 19; docs/protocol.md §14.2, docs/security.md
 * "Cookies and the reply budget"): pomaid never sends more than
 * PM_AMPLIFY_FACTOR times the bytes of a frame in reply to it when the
 * datagram's source address is not validated, and proves an address with a
 * stateless cookie, as QUIC's Retry (RFC 9000 §8.1) and DNS cookies (RFC
 * 7873) do.
 *
 * The secrets: pomaid draws a random master secret at start-up
 * (pm_auth_random, pm_guard_root_init), the master of the epoch it starts in
 * (struct pm_guard_root), and erases its own copy once every worker holds
 * one; each cookie window (cookie_window_s
 * seconds of CLOCK_MONOTONIC, numbered from 1) has its own secret, keyed
 * BLAKE2b-128 of the window number with the master secret of its epoch.
 * Every PM_COOKIE_EPOCH_WINDOWS windows the master secret rotates by a
 * one-way ratchet (master' = keyed BLAKE2b of a label with master); each
 * worker ratchets its own copy on its own clock and erases the old one, so
 * the workers agree without sharing anything that changes, and a dump of a
 * worker's memory cannot give the secret of a window older than the one
 * before the current epoch. A restart draws a new master: every cookie made
 * before it is refused (the client is sent RETRY once and goes on).
 *
 * A cookie is the tag (SipHash-128, proto/auth.h) of the source IPv4 address
 * and a window with that window's secret. It is valid in the window it was
 * made in and the next one (lifetime: between one and two windows), and in
 * the window before the one it names: workers read the clock once per turn,
 * so two of them may stand a turn apart at a window's edge.
 *
 * The reply budget: a datagram reply's destination (struct pm_dest, msg.h)
 * carries the bytes it may receive for that frame; forwarded and fanned-out
 * frames keep it, and the one place datagram replies leave (worker.c,
 * deliver) enforces it: a reply larger than its budget is replaced by RETRY
 * with a fresh cookie, or withheld when even that does not fit (counted).
 * Everything here runs on a worker's own thread.
 */
#ifndef POMAI_DATAPLANE_GUARD_H
#define POMAI_DATAPLANE_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "msg.h"
#include "request.h"
#include "wire.h"

struct pm_worker;

/* ---------------------------------------------------------------- bounds */

/* Bytes pomaid may send in reply to a frame from an address it has not
 * validated, per byte of the frame (QUIC's factor, RFC 9000 §8). */
#define PM_AMPLIFY_FACTOR 3u
/* ... and per byte of a datagram whose cookie is not valid: nothing larger
 * than what it holds (docs/protocol.md §14.2). */
#define PM_AMPLIFY_FACTOR_BAD_COOKIE 1u
/* A cookie window, seconds (config cookie_window_s): a cookie lives one to two
 * of them. A minute costs a client one extra round trip a minute at most,
 * and a captured cookie (on-path: it is sent in the clear) is of use for two
 * minutes at most, and only from the address it names. */
#define PM_COOKIE_WINDOW_S_DEFAULT 60u
#define PM_COOKIE_WINDOW_S_MIN 1u
#define PM_COOKIE_WINDOW_S_MAX 3600u
/* Windows per master-secret epoch: the master ratchets forward every this many
 * windows (64 minutes with the default window). */
#define PM_COOKIE_EPOCH_WINDOWS 64u
/* The bytes of a RETRY reply frame at most: a header, a 'V' op's sub-op, a
 * cookie. Smaller than
 * PM_AMPLIFY_FACTOR x the smallest frame (a 24-byte header), so every frame
 * from an unvalidated address may be answered RETRY (checked). */
#define PM_RETRY_FRAME_BYTES (24u + 1u + PM_COOKIE_BYTES)
_Static_assert(PM_RETRY_FRAME_BYTES <= PM_AMPLIFY_FACTOR * 24u, "RETRY fits every budget");
/* The largest budget: a largest frame, after a COOKIE frame, times the factor. */
#define PM_BUDGET_BYTES_MAX (PM_AMPLIFY_FACTOR * (PM_FRAME_BYTES_MAX + PM_COOKIE_FRAME_BYTES))

/* ---------------------------------------------------------------- secrets */

/* The daemon's master secret at start-up and the epoch it is the master of:
 * the epoch of the window before the start's. A worker's guard ratchets from
 * there, never from epoch 0: CLOCK_MONOTONIC counts from boot, and a box up a
 * year at cookie_window_s = 1 is half a million ratchets past epoch 0. */
struct pm_guard_root {
	uint8_t secret[PM_COOKIE_SECRET_BYTES];
	uint32_t epoch;
};

/* One worker's cookie secrets: the master of the epoch of window - 1, and the
 * secrets of windows window - 1, window, window + 1. */
struct pm_guard {
	uint32_t window_s;           /* cookie_window_s */
	uint32_t window;             /* the current window (>= 1) */
	uint32_t epoch;              /* master's epoch */
	uint8_t master[PM_COOKIE_SECRET_BYTES];
	uint8_t secret[3][PM_COOKIE_SECRET_BYTES]; /* windows window-1, window, window+1 */
	uint8_t *buf;                /* PM_BUDGET_BYTES_MAX: a budgeted reply's frames */
};

/* The guard's counters (INFO dataplane, guard_*). */
struct pm_guard_stats {
	uint64_t cookies_issued;      /* RETRY replies sent (each carries a fresh cookie) */
	uint64_t retry_budget;        /* ... for a reply over its budget */
	uint64_t retry_write;         /* ... for a write from an unvalidated address */
	uint64_t retry_throttled;     /* ... for a frame of an unvalidated address over the
				       * shared quota (THROTTLED becomes RETRY) */
	uint64_t validated;           /* datagrams with a valid cookie */
	uint64_t bad_cookies;         /* datagrams with a cookie not valid (forged, expired,
				       * another address's) */
	uint64_t dropped_cookie_frame; /* datagrams with a malformed COOKIE frame: dropped */
	uint64_t bytes_withheld;      /* reply bytes not sent for want of budget */
	uint64_t withheld;            /* replies not sent at all: even RETRY was over budget */
};

/* The window of a monotonic time with windows of window_s seconds (from 1). */
uint32_t pm_guard_window(uint64_t now_ns, uint32_t window_s);
/* A worker's guard from the daemon's root at now_ns (not before the root's
 * epoch); buf NULL: no budgeted replies (tests of the secrets). */
void pm_guard_init(struct pm_guard *g, const struct pm_guard_root *root, uint32_t window_s,
		   uint64_t now_ns);
/* Move to the window of now_ns (ratchets the master as epochs pass). */
void pm_guard_tick(struct pm_guard *g, uint64_t now_ns);
/* The cookie for addr_be in the current window. */
void pm_guard_mint(const struct pm_guard *g, uint32_t addr_be, struct pm_cookie *c);
/* Whether c is one this guard's secrets made for addr_be and not expired. */
bool pm_guard_verify(const struct pm_guard *g, uint32_t addr_be, const struct pm_cookie *c);

/* ---------------------------------------------------------------- the worker's side */

/* The daemon's master secret at start-up: random, the master of the epoch of
 * now_ns's window - 1. */
void pm_guard_root_init(struct pm_guard_root *root, uint32_t window_s, uint64_t now_ns);
/* Erase it (the workers' guards are made: pm_guard_alloc). */
void pm_guard_root_erase(struct pm_guard_root *root);
/* A worker's guard and buffer (pm_worker_alloc / pm_worker_free). */
int pm_guard_alloc(struct pm_worker *w);
void pm_guard_free(struct pm_worker *w);

/* What a datagram's first bytes say about its source (serve_datagram step 1). */
struct pm_guard_dgram {
	bool validated;     /* a valid COOKIE frame came first */
	uint32_t factor;    /* budget per byte when not validated */
	uint32_t skip;      /* bytes of the COOKIE frame: the first frame starts after it */
};
/* Read a datagram's COOKIE frame, if any: false when it is malformed (the
 * datagram is dropped, counted). */
bool pm_guard_datagram(struct pm_worker *w, const uint8_t *buf, uint32_t len,
		       const struct pm_dest *from, struct pm_guard_dgram *g);
/* The budget of a frame of len bytes (extra: a COOKIE frame before it that
 * it is charged with, the datagram's first frame only). */
static inline uint32_t pm_guard_budget(const struct pm_guard_dgram *g, uint32_t len,
				       uint32_t extra)
{
	return g->validated ? PM_BUDGET_NONE : g->factor * (len + extra);
}
/* A datagram destination whose replies are budgeted (a TCP or admin one never is). */
static inline bool pm_dest_unvalidated(const struct pm_dest *d)
{
	return d->conn == PM_CONN_NONE && d->budget != PM_BUDGET_NONE;
}
/* Does req change data (docs/protocol.md §14.2's list)? */
bool pm_guard_op_writes(uint8_t op);
/* Step 5: a write from an unvalidated, unauthenticated address is answered
 * RETRY and not executed: false then. */
bool pm_guard_write_ok(struct pm_worker *w, const struct pm_request *req,
		       const struct pm_dest *from, bool authenticated);
/* Answer op/id with RETRY and a fresh cookie for to's address (why: the
 * counter to bump). */
enum pm_guard_why { PM_GUARD_WHY_BUDGET, PM_GUARD_WHY_WRITE, PM_GUARD_WHY_THROTTLED };
void pm_guard_retry(struct pm_worker *w, const struct pm_dest *to, uint8_t op, uint64_t id,
		    enum pm_guard_why why);
/* The frame bytes a reply may leave as, to a budgeted destination: the
 * reply's pages encoded into the guard's buffer when they fit the budget
 * (their bytes), else 0 and RETRY was sent (or withheld). */
uint32_t pm_guard_gate_reply(struct pm_worker *w, const struct pm_dest *to,
			     const struct pm_reply *rep, const uint8_t **frames);
/* The same for frames encoded earlier: true when they may leave. */
bool pm_guard_gate_frames(struct pm_worker *w, const struct pm_dest *to, const uint8_t *frames,
			  uint32_t len);
/* INFO lines (guard_*). */
uint32_t pm_guard_info(const struct pm_worker *w, char *out, uint32_t cap);

#endif
