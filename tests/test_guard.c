/* SPDX-License-Identifier: MIT
 *
 * test_guard.c — anti-amplification and spoofing (issue 19; dataplane/guard.h,
 * docs/protocol.md §14.2):
 *  - the cookie secrets alone: mint and verify, the lifetime of one to two
 *    windows, another address's and forged cookies, the master secret's
 *    ratchet across epochs, workers that agree without sharing anything;
 *  - a real pomaid (argv[1], 2 shards, loopback): for every opcode and a
 *    spread of shapes (INFO, CLIST, a 60 KB GET, VQUERY with k = 1024 and
 *    250-byte keys, batches, multi-frame datagrams, paged replies), the bytes
 *    it sends an unvalidated source are at most 3 x what it received, and no
 *    write is executed; with a valid cookie the whole reply arrives; forged,
 *    expired, other-address and malformed cookies are refused and counted;
 *  - with `--spoof` (root: a network namespace the suite makes, raw sockets
 *    forging source addresses on its loopback): the allowlist bypass, the
 *    quota evasion by many sources and the lockout of a victim by its spoofed
 *    address, each of which the code before issue 19 allowed.
 *
 * Replies are waited for per request id with a deadline; counters by bounded
 * polls of INFO; nothing sleeps to synchronise.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "bridge.h"
#include "cu_main.h"
#include "frames.h"
#include "guard.h"
#include "netns.h"
#include "pomai.h"
#include "proc.h"
#include "quota.h"
#include "route.h"
#include "stats.h"
#include "stats_seg.h"

#define SHARDS 2u
#define LOOPBACK "127.0.0.1"
/* The unvalidated client's address, and another one's (a cookie is bound to
 * the address it was made for). */
#define SRC_A "127.0.0.5"
#define SRC_B "127.0.0.6"
/* Shapes: a value near the largest, the most hits with the longest keys. */
#define BIG_VALUE_BYTES 60000u
#define LONG_KEY_BYTES 250u
#define VECTORS 1100u
#define DIM 8u
#define COLLECTIONS 40u
/* How long the replies to one request shape may take (a loaded machine). */
#define SHOT_WAIT_MS 5000
/* The expiry test's cookie window, and how long a cookie may take to die: at
 * most two windows after it was made, and a margin for a loaded machine. */
#define SHORT_WINDOW_S 1u
#define EXPIRY_WAIT_MS 8000u

static struct pomaid srv = {
	.flags = (const char *const[]){ "--arena-bytes", "64M", "--seeds", "65536", "--wal", "none",
					NULL },
};

static void restart(const char *const *extra)
{
	pomaid_stop(&srv);
	CU_ASSERT_FATAL(pomaid_start(&srv, extra, NULL));
}

static int suite_clean(void)
{
	pomaid_stop(&srv);
	return 0;
}

static struct pm_client *lib(void)
{
	struct pm_client_config cfg;
	struct pm_client *c = NULL;
	pm_client_config_default(&cfg);
	cfg.base_port = srv.base;
	cfg.shards = SHARDS;
	cfg.timeout_ms = 2000;
	CU_ASSERT_FATAL(pm_client_open(&cfg, &c) == PM_CLIENT_OK);
	return c;
}

static long long info_total(const char *field)
{
	struct wire w;
	CU_ASSERT_FATAL(wire_open(&w, NULL, LOOPBACK, srv.base, 1u << 30)); /* INFO's RETRY:
	* wire_call validates it and asks again */
	long long v = wire_info(&w, "dataplane", NULL, field);
	wire_close(&w);
	return v;
}

/* ---------------------------------------------------------------- the secrets alone */

#define NS_PER_S 1000000000ull

static uint64_t at_window(uint32_t window, uint32_t window_s)
{
	return (uint64_t)(window - 1) * window_s * NS_PER_S + NS_PER_S / 2;
}

static void test_secrets(void)
{
	struct pm_guard_root root, other_root;
	pm_guard_root_init(&root, 60, 0); /* a daemon started at boot: epoch 0 */
	pm_guard_root_init(&other_root, 60, 0);
	CU_ASSERT_EQUAL(root.epoch, 0);
	const uint32_t a = inet_addr("10.1.2.3"), b = inet_addr("10.1.2.4");
	CU_ASSERT_EQUAL(pm_guard_window(0, 60), 1);
	CU_ASSERT_EQUAL(pm_guard_window(60 * NS_PER_S - 1, 60), 1);
	CU_ASSERT_EQUAL(pm_guard_window(60 * NS_PER_S, 60), 2);
	/* across the first epochs: made in window w, valid in w - 1 .. w + 1 */
	static const uint32_t windows[] = { 1, 2, 62, 63, 64, 65, 127, 128, 129, 1000 };
	for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
		uint32_t w = windows[i];
		struct pm_guard g = { 0 }, h = { 0 };
		struct pm_cookie c;
		pm_guard_init(&g, &root, 60, at_window(w, 60));
		CU_ASSERT_EQUAL(g.window, w);
		CU_ASSERT_EQUAL(g.epoch, (w - 1) / PM_COOKIE_EPOCH_WINDOWS);
		pm_guard_mint(&g, a, &c);
		CU_ASSERT_EQUAL(c.window, w);
		CU_ASSERT(pm_guard_verify(&g, a, &c));
		CU_ASSERT(!pm_guard_verify(&g, b, &c)); /* another address's */
		for (uint32_t later = w > 1 ? w - 1 : w; later <= w + 3; later++) {
			pm_guard_init(&h, &root, 60, at_window(later, 60)); /* another worker, then */
			CU_ASSERT_EQUAL(pm_guard_verify(&h, a, &c), later <= w + 1);
		}
		pm_guard_init(&h, &other_root, 60, at_window(w, 60)); /* another daemon's */
		CU_ASSERT(!pm_guard_verify(&h, a, &c));
		struct pm_cookie forged = c;
		forged.tag[i % PM_AUTH_TAG_BYTES] ^= 1;
		CU_ASSERT(!pm_guard_verify(&g, a, &forged));
		forged = c;
		forged.window = w + 1; /* the tag names its window */
		CU_ASSERT(!pm_guard_verify(&g, a, &forged));
		forged.window = UINT32_MAX;
		CU_ASSERT(!pm_guard_verify(&g, a, &forged));
	}
	/* a worker that ticks through three epochs agrees with one started there,
	 * and no longer holds the master it started with */
	struct pm_guard g = { 0 }, h = { 0 };
	struct pm_cookie c, d;
	pm_guard_init(&g, &root, 1, 0);
	for (uint32_t w = 2; w <= 3 * PM_COOKIE_EPOCH_WINDOWS + 5; w++)
		pm_guard_tick(&g, at_window(w, 1));
	pm_guard_init(&h, &root, 1, at_window(3 * PM_COOKIE_EPOCH_WINDOWS + 5, 1));
	CU_ASSERT_EQUAL(g.epoch, 3);
	CU_ASSERT_EQUAL(memcmp(g.master, h.master, sizeof g.master), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(g.master, root.secret, sizeof root.secret), 0);
	CU_ASSERT_EQUAL(memcmp(g.secret, h.secret, sizeof g.secret), 0);
	pm_guard_mint(&g, a, &c);
	pm_guard_mint(&h, a, &d);
	CU_ASSERT_EQUAL(memcmp(&c, &d, sizeof c), 0);
	/* each window has its own secret */
	CU_ASSERT_NOT_EQUAL(memcmp(g.secret[0], g.secret[1], PM_COOKIE_SECRET_BYTES), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(g.secret[1], g.secret[2], PM_COOKIE_SECRET_BYTES), 0);
}

/* A daemon started on a box up for years (CLOCK_MONOTONIC counts from boot):
 * its root is the master of the epoch it starts in, so a worker's guard
 * starts there with no ratchet, and a worker that ticks through epochs agrees
 * with one started later. From epoch 0 this was 31 million ratchets per
 * worker (1-second windows), the fuzzer's timeout in CI. */
static void test_late_root(void)
{
	const uint32_t start = 2000000000u, later = start + 3 * PM_COOKIE_EPOCH_WINDOWS + 5;
	const uint32_t a = inet_addr("10.1.2.3");
	struct pm_guard_root root;
	pm_guard_root_init(&root, 1, at_window(start, 1));
	CU_ASSERT_EQUAL(root.epoch, (start - 1) / PM_COOKIE_EPOCH_WINDOWS);
	struct pm_guard g = { 0 }, h = { 0 };
	struct pm_cookie c, d;
	pm_guard_init(&g, &root, 1, at_window(start, 1));
	CU_ASSERT_EQUAL(g.epoch, root.epoch);
	CU_ASSERT_EQUAL(memcmp(g.master, root.secret, sizeof g.master), 0);
	pm_guard_mint(&g, a, &c);
	CU_ASSERT_EQUAL(c.window, start);
	pm_guard_init(&h, &root, 1, at_window(start + 1, 1)); /* a worker a window later */
	CU_ASSERT(pm_guard_verify(&h, a, &c));
	for (uint32_t w = start + 1; w <= later; w++)
		pm_guard_tick(&g, at_window(w, 1));
	pm_guard_init(&h, &root, 1, at_window(later, 1));
	CU_ASSERT_EQUAL(g.epoch, (later - 1) / PM_COOKIE_EPOCH_WINDOWS);
	CU_ASSERT(g.epoch >= root.epoch + 3);
	CU_ASSERT_EQUAL(memcmp(g.secret, h.secret, sizeof g.secret), 0);
	pm_guard_mint(&g, a, &c);
	pm_guard_mint(&h, a, &d);
	CU_ASSERT_EQUAL(memcmp(&c, &d, sizeof c), 0);
	/* the daemon's copy, erased once the workers hold theirs */
	static const uint8_t zero[PM_COOKIE_SECRET_BYTES];
	pm_guard_root_erase(&root);
	CU_ASSERT_EQUAL(memcmp(root.secret, zero, sizeof zero), 0);
}

static void test_budget(void)
{
	struct pm_guard_dgram none = { .factor = PM_AMPLIFY_FACTOR };
	struct pm_guard_dgram bad = { .factor = PM_AMPLIFY_FACTOR_BAD_COOKIE,
				      .skip = PM_COOKIE_FRAME_BYTES };
	struct pm_guard_dgram good = { .validated = true, .skip = PM_COOKIE_FRAME_BYTES };
	CU_ASSERT_EQUAL(pm_guard_budget(&none, 29, 0), 87);
	CU_ASSERT_EQUAL(pm_guard_budget(&bad, 29, PM_COOKIE_FRAME_BYTES), 29 + 48);
	CU_ASSERT_EQUAL(pm_guard_budget(&bad, 29, 0), 29);
	CU_ASSERT_EQUAL(pm_guard_budget(&good, 29, 48), PM_BUDGET_NONE);
	/* the RETRY frame: what PM_RETRY_FRAME_BYTES says, for both kinds of op */
	uint8_t cookie[PM_COOKIE_BYTES] = { 0 }, out[128];
	CU_ASSERT_EQUAL(pm_reply_encode_retry(PM_WIRE_OP_VQUERY, 1, cookie, out, sizeof out),
			PM_RETRY_FRAME_BYTES);
	CU_ASSERT_EQUAL(pm_reply_encode_retry(PM_WIRE_OP_GET, 1, cookie, out, sizeof out),
			PM_RETRY_FRAME_BYTES - 1);
	/* the ops that change data (§14.2) */
	for (uint8_t op = 0; op < PM_OP_COUNT; op++) {
		bool w = op == PM_OP_SET || op == PM_OP_DEL || op == PM_OP_VADD || op == PM_OP_VADDB ||
			 op == PM_OP_VDEL || op == PM_OP_VSETATTR || op == PM_OP_CCREATE ||
			 op == PM_OP_CDROP || op == PM_OP_SNAPSHOT;
		CU_ASSERT_EQUAL(pm_guard_op_writes(op), w);
	}
}

/* ---------------------------------------------------------------- one request shape */

/* What one datagram brought back: bytes in and out, and each frame's end. */
struct shot {
	size_t in, out;
	uint32_t retry, ok, other, items;
	bool done;
};

#define SHOT_IDS_MAX 64u

/* One reply frame of a shot: counted, and its id's end noted. */
static void shot_note(struct shot *s, const struct pm_reply_view *rv, const uint64_t *ids,
		      uint32_t n, bool *end, uint32_t *left)
{
	s->retry += rv->status == PM_WIRE_E_RETRY;
	s->ok += rv->status == PM_WIRE_OK || rv->status == PM_WIRE_NOT_FOUND;
	s->other += rv->status != PM_WIRE_E_RETRY && rv->status != PM_WIRE_OK &&
		    rv->status != PM_WIRE_NOT_FOUND;
	s->items += rv->op == PM_WIRE_OP_VQUERY && rv->status == PM_WIRE_OK ? rv->count : 0;
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == rv->id && !end[i] && (rv->status != PM_WIRE_OK || !rv->more)) {
			end[i] = true;
			(*left)--;
		}
}

/* Send one datagram (frames with ids ids[0..n)), and read every reply
 * datagram until each id has its last frame (or SHOT_WAIT_MS passed), then
 * whatever else comes within a short drain. */
static struct shot shoot(struct wire *c, uint32_t shard, const uint8_t *dgram, size_t len,
			 const uint64_t *ids, uint32_t n)
{
	struct shot s = { .in = len + (c->cookie ? PM_COOKIE_FRAME_BYTES : 0) };
	bool end[SHOT_IDS_MAX] = { false };
	uint32_t left = n;
	CU_ASSERT_FATAL(wire_send(c, shard, dgram, len));
	uint64_t deadline = proc_now_ms() + SHOT_WAIT_MS;
	while (proc_now_ms() < deadline) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int wait = left ? (int)(deadline - proc_now_ms()) : 50; /* the drain: nothing more */
		if (poll(&p, 1, wait) != 1)
			break;
		ssize_t r = recv(c->fd, c->in, sizeof(c->in), MSG_DONTWAIT);
		struct pm_reply_view rv;
		size_t used;
		if (r <= 0)
			continue;
		s.out += (size_t)r;
		/* every frame of the datagram (replies are packed, issue 20) */
		for (size_t at = 0; at < (size_t)r &&
				    pm_reply_decode(c->in + at, (size_t)r - at, &rv, &used) == PM_WIRE_OK;
		     at += used)
			shot_note(&s, &rv, ids, n, end, &left);
	}
	s.done = left == 0;
	return s;
}

static struct shot shoot_one(struct wire *c, uint32_t shard, struct pm_request *r)
{
	uint8_t *buf = malloc(PM_FRAME_BYTES_MAX);
	CU_ASSERT_FATAL(buf != NULL);
	r->id = c->next_id++;
	size_t n = pm_request_encode(r, buf, PM_FRAME_BYTES_MAX);
	CU_ASSERT_FATAL(n > 0);
	struct shot s = shoot(c, shard, buf, n, &r->id, 1);
	free(buf);
	return s;
}

/* A wire request (batches) as one datagram. */
static struct shot shoot_wire(struct wire *c, uint32_t shard, struct pm_wire_request *r)
{
	uint8_t *buf = malloc(PM_FRAME_BYTES_MAX);
	CU_ASSERT_FATAL(buf != NULL);
	r->id = c->next_id++;
	size_t n = pm_wire_request_encode(r, buf, PM_FRAME_BYTES_MAX);
	CU_ASSERT_FATAL(n > 0);
	struct shot s = shoot(c, shard, buf, n, &r->id, 1);
	free(buf);
	return s;
}

/* ---------------------------------------------------------------- the data the shapes read */

static char long_key[VECTORS][LONG_KEY_BYTES + 1];
static uint8_t big_value[BIG_VALUE_BYTES];
static float vec[DIM] = { 1, 2, 3, 4, 5, 6, 7, 8 };

static void load_data(void)
{
	struct pm_client *c = lib(); /* validates itself on its first write */
	memset(big_value, 'v', sizeof big_value);
	CU_ASSERT_EQUAL_FATAL(pm_client_set(c, "big", 3, big_value, sizeof big_value, 0),
			      PM_CLIENT_OK);
	CU_ASSERT_EQUAL_FATAL(pm_client_set(c, "small", 5, "0123456789", 10, 0), PM_CLIENT_OK);
	for (uint32_t i = 0; i < VECTORS; i++) {
		memset(long_key[i], 'k', LONG_KEY_BYTES);
		snprintf(long_key[i], 12, "%010u", i);
		long_key[i][10] = 'k';
		float v[DIM];
		for (uint32_t j = 0; j < DIM; j++)
			v[j] = (float)((i * 7 + j * 13) % 101);
		CU_ASSERT_EQUAL_FATAL(pm_client_vadd(c, long_key[i], LONG_KEY_BYTES, v, DIM, NULL, 0),
				      PM_CLIENT_OK);
	}
	struct pm_client_coll_params p = { .dim = DIM };
	for (uint32_t i = 0; i < COLLECTIONS; i++) {
		char name[PM_WIRE_COLLECTION_NAME_BYTES_MAX + 1];
		memset(name, 'c', PM_WIRE_COLLECTION_NAME_BYTES_MAX);
		snprintf(name, 8, "c%05u", i);
		name[6] = 'c';
		name[PM_WIRE_COLLECTION_NAME_BYTES_MAX] = '\0';
		CU_ASSERT_EQUAL_FATAL(pm_client_collection_create(c, name, &p), PM_CLIENT_OK);
	}
	pm_client_close(c);
}

/* ---------------------------------------------------------------- every op, unvalidated */

#define B(s) ((struct pm_bytes){ (const uint8_t *)(s), (uint32_t)strlen(s) })

/* One request per opcode, and the heavy shapes. */
static uint32_t requests(struct pm_request *r, uint32_t cap)
{
	uint32_t n = 0;
	const struct pm_bytes lk = { (const uint8_t *)long_key[3], LONG_KEY_BYTES };
	const struct pm_bytes v = { (const uint8_t *)vec, sizeof vec };
	CU_ASSERT_FATAL(cap >= 20);
	r[n++] = (struct pm_request){ .op = PM_OP_SET, .key = B("new"), .value = B("x") };
	r[n++] = (struct pm_request){ .op = PM_OP_GET, .key = B("small") };
	r[n++] = (struct pm_request){ .op = PM_OP_GET, .key = B("big") };
	r[n++] = (struct pm_request){ .op = PM_OP_DEL, .key = B("small") };
	r[n++] = (struct pm_request){ .op = PM_OP_INFO };
	r[n++] = (struct pm_request){ .op = PM_OP_INFO, .section = B("dataplane") };
	r[n++] = (struct pm_request){ .op = PM_OP_VADD, .key = B("newv"), .vec = v.ptr, .dim = DIM };
	r[n++] = (struct pm_request){ .op = PM_OP_VGET, .key = lk };
	r[n++] = (struct pm_request){ .op = PM_OP_VDEL, .key = lk };
	r[n++] = (struct pm_request){ .op = PM_OP_VQUERY, .vec = v.ptr, .dim = DIM,
				      .k = PM_WIRE_K_MAX, .exact = true };
	r[n++] = (struct pm_request){ .op = PM_OP_CCREATE, .collection = B("newc"),
				      .params = { .dim = DIM } };
	r[n++] = (struct pm_request){ .op = PM_OP_CDROP, .collection = B("newc") };
	r[n++] = (struct pm_request){ .op = PM_OP_CLIST };
	r[n++] = (struct pm_request){ .op = PM_OP_SNAPSHOT };
	r[n++] = (struct pm_request){ .op = PM_OP_MAP };
	r[n++] = (struct pm_request){ .op = PM_OP_VSETATTR, .key = lk, .attr = { (const uint8_t *)"", 1 } };
	r[n++] = (struct pm_request){ .op = PM_OP_VRANGE, .vec = v.ptr, .dim = DIM,
				      .k = PM_WIRE_RANGE_HITS_MAX, .radius = 1e30f };
	r[n++] = (struct pm_request){ .op = PM_OP_AUTH_HELLO };
	return n;
}

static void check_shot(const char *what, const struct shot *s)
{
	printf("\n  %-28s in %6zu out %6zu (%.2fx) retry %u", what, s->in, s->out,
	       (double)s->out / (double)s->in, s->retry);
	CU_ASSERT(s->done);
	CU_ASSERT(s->out <= PM_AMPLIFY_FACTOR * s->in);
}

/* A batch of 8 VQUERYs of k = 128 (their hits: the most a batch may sum to),
 * or of 64 VADDs. */
static struct pm_wire_request batch(uint8_t op, struct pm_wire_request *items, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		items[i] = (struct pm_wire_request){
			.op = op == PM_WIRE_OP_VQUERYB ? PM_WIRE_OP_VQUERY : PM_WIRE_OP_VADD,
			.key = { (const uint8_t *)long_key[i], LONG_KEY_BYTES / 4 },
			.vec = (const uint8_t *)vec, .dim = DIM, .k = PM_WIRE_K_MAX / n };
	return (struct pm_wire_request){ .op = op, .nitems = n, .item_list = items };
}

static void test_every_op(void)
{
	restart(NULL);
	load_data();
	struct wire c;
	CU_ASSERT_FATAL(wire_open(&c, SRC_A, LOOPBACK, srv.base, 1));
	c.no_cookies = true; /* it stays unvalidated */
	long long keys0 = info_total("rx_frames");
	static struct pm_request r[32];
	uint32_t n = requests(r, 32);
	for (uint32_t i = 0; i < n; i++) {
		char what[64];
		snprintf(what, sizeof what, "%s%s", pm_wire_op_name(r[i].op) ? pm_wire_op_name(r[i].op) : "?",
			 r[i].op == PM_OP_GET && r[i].key.len == 3 ? " (60 KB)" : "");
		for (uint32_t shard = 0; shard < SHARDS; shard++) { /* and forwarded */
			struct shot s = shoot_one(&c, shard, &r[i]);
			check_shot(what, &s);
			if (pm_guard_op_writes(r[i].op))
				CU_ASSERT_EQUAL(s.retry, 1); /* not executed: RETRY */
		}
	}
	static struct pm_wire_request items[64];
	struct pm_wire_request q = batch(PM_WIRE_OP_VQUERYB, items, 8);
	struct shot s = shoot_wire(&c, 0, &q);
	check_shot("vqueryb 8 x k=128", &s);
	CU_ASSERT_EQUAL(s.retry, 1);
	q = batch(PM_WIRE_OP_VADDB, items, 64);
	s = shoot_wire(&c, 1, &q);
	check_shot("vaddb 64", &s);
	CU_ASSERT_EQUAL(s.retry, 1);
	/* one datagram of many small frames, each answered on its own budget:
	 * GETs of the 60 KB value, then small GETs and INFOs mixed */
	static uint8_t dgram[PM_FRAME_BYTES_MAX];
	uint64_t ids[SHOT_IDS_MAX];
	size_t len = 0;
	for (uint32_t i = 0; i < 40; i++) {
		struct pm_request g = { .op = i % 4 == 3 ? PM_OP_INFO : PM_OP_GET,
					.key = i % 2 ? B("big") : B("small"), .id = c.next_id++ };
		ids[i] = g.id;
		len += pm_request_encode(&g, dgram + len, sizeof dgram - len);
	}
	s = shoot(&c, 0, dgram, len, ids, 40);
	check_shot("40 frames in one datagram", &s);
	CU_ASSERT(s.retry >= 20); /* the 60 KB GETs and the INFOs */
	/* nothing was written: the keys the writes named are not there */
	struct pm_client *lc = lib();
	char buf[16];
	size_t got;
	CU_ASSERT_EQUAL(pm_client_get(lc, "new", 3, buf, sizeof buf, &got), PM_CLIENT_NOT_FOUND);
	CU_ASSERT_EQUAL(pm_client_get(lc, "small", 5, buf, sizeof buf, &got), PM_CLIENT_OK);
	float back[DIM];
	static struct pm_client_vector out;
	out.vec = back;
	out.cap = DIM;
	CU_ASSERT_EQUAL(pm_client_vget(lc, long_key[3], LONG_KEY_BYTES, &out), PM_CLIENT_OK);
	pm_client_close(lc);
	CU_ASSERT(info_total("guard_retry_write") >= 2 * 9);
	CU_ASSERT(info_total("guard_retry_budget") > 0);
	CU_ASSERT(info_total("rx_frames") > keys0);
	wire_close(&c);
}

/* ---------------------------------------------------------------- with a cookie */

static void test_validated(void)
{
	struct wire c;
	CU_ASSERT_FATAL(wire_open(&c, SRC_A, LOOPBACK, srv.base, 1u << 20));
	CU_ASSERT_FATAL(wire_validate(&c));
	c.no_cookies = true; /* keep this cookie; a RETRY now would be a failure */
	struct pm_request g = { .op = PM_OP_GET, .key = B("big") };
	struct shot s = shoot_one(&c, 1, &g);
	printf("\n  validated GET 60 KB: in %zu out %zu", s.in, s.out);
	CU_ASSERT(s.done && s.retry == 0 && s.ok == 1);
	CU_ASSERT(s.out > BIG_VALUE_BYTES);
	struct pm_request q = { .op = PM_OP_VQUERY, .vec = (const uint8_t *)vec, .dim = DIM,
				.k = PM_WIRE_K_MAX, .exact = true };
	s = shoot_one(&c, 0, &q);
	printf("\n  validated VQUERY k=1024: in %zu out %zu, %u hits", s.in, s.out, s.items);
	CU_ASSERT(s.done && s.retry == 0);
	CU_ASSERT_EQUAL(s.items, PM_WIRE_K_MAX); /* every page */
	struct pm_request w = { .op = PM_OP_SET, .key = B("validated"), .value = B("yes") };
	s = shoot_one(&c, 0, &w);
	CU_ASSERT(s.done && s.retry == 0 && s.ok == 1); /* a validated write is executed */
	CU_ASSERT(info_total("guard_validated") >= 3);
	wire_close(&c);
}

/* A datagram with cookie frame `frame` in front of a 60 KB GET: what came back. */
static struct shot with_cookie(struct wire *c, const uint8_t frame[PM_COOKIE_FRAME_BYTES])
{
	memcpy(c->cookie_frame, frame, PM_COOKIE_FRAME_BYTES);
	c->cookie = true;
	struct pm_request g = { .op = PM_OP_GET, .key = B("big") };
	return shoot_one(c, 0, &g);
}

static void test_refused_cookies(void)
{
	struct wire a, b;
	CU_ASSERT_FATAL(wire_open(&a, SRC_A, LOOPBACK, srv.base, 1u << 21));
	CU_ASSERT_FATAL(wire_open(&b, SRC_B, LOOPBACK, srv.base, 1u << 22));
	a.no_cookies = b.no_cookies = true;
	a.no_cookies = false;
	CU_ASSERT_FATAL(wire_validate(&a));
	a.no_cookies = true;
	uint8_t good[PM_COOKIE_FRAME_BYTES], forged[PM_COOKIE_FRAME_BYTES];
	memcpy(good, a.cookie_frame, sizeof good);
	memcpy(forged, good, sizeof forged);
	forged[PM_COOKIE_FRAME_BYTES - 1] ^= 0x80; /* a bit of the tag */
	long long bad0 = info_total("guard_bad_cookies");
	struct shot s = with_cookie(&a, good);
	CU_ASSERT(s.ok == 1 && s.out > BIG_VALUE_BYTES);
	/* forged, and another address's: RETRY at most, nothing larger than the datagram */
	s = with_cookie(&a, forged);
	printf("\n  forged cookie: in %zu out %zu", s.in, s.out);
	CU_ASSERT(s.retry == 1 && s.ok == 0 && s.out <= s.in);
	s = with_cookie(&b, good);
	printf("\n  another address's cookie: in %zu out %zu", s.in, s.out);
	CU_ASSERT(s.retry == 1 && s.ok == 0 && s.out <= s.in);
	CU_ASSERT(info_total("guard_bad_cookies") >= bad0 + 2);
	/* a bad cookie before several frames: each after the first gets 1 x,
	 * less than a RETRY: nothing at all */
	uint8_t dgram[256];
	uint64_t ids[4];
	size_t len = 0;
	for (uint32_t i = 0; i < 4; i++) {
		struct pm_request g = { .op = PM_OP_GET, .key = B("big"), .id = b.next_id++ };
		ids[i] = g.id;
		len += pm_request_encode(&g, dgram + len, sizeof dgram - len);
	}
	s = shoot(&b, 0, dgram, len, ids, 1); /* the first one's RETRY; the rest: nothing */
	printf("\n  bad cookie, 4 frames: in %zu out %zu", s.in, s.out);
	CU_ASSERT(s.retry == 1 && s.out <= s.in);
	/* a malformed COOKIE frame: the datagram is dropped, counted */
	long long drop0 = info_total("guard_dropped_cookie_frame");
	uint8_t broken[PM_COOKIE_FRAME_BYTES];
	memcpy(broken, good, sizeof broken);
	broken[PM_FRAME_HEADER_BYTES + 4] = 1; /* the cookie's reserved field */
	s = with_cookie(&a, broken);
	CU_ASSERT(s.out == 0 && !s.done);
	struct wire w;
	CU_ASSERT_FATAL(wire_open(&w, NULL, LOOPBACK, srv.base, 1u << 23));
	CU_ASSERT_FATAL(wire_validate(&w));
	CU_ASSERT(wire_info_reaches(&w, "dataplane", "guard_dropped_cookie_frame", drop0 + 1) ==
		  drop0 + 1);
	wire_close(&w);
	wire_close(&a);
	wire_close(&b);
}

/* ---------------------------------------------------------------- the stats segment */

/* The segment's guard counters (version 7) hold what INFO dataplane says:
 * each, once the workers have published, is at least INFO's value read
 * before, which the tests above made nonzero. */
static void test_stats_segment(void)
{
	static const struct { const char *info; size_t off; } f[] = {
		{ "guard_cookies_issued", offsetof(struct pm_stats_shard, guard_cookies_issued) },
		{ "guard_retry_budget", offsetof(struct pm_stats_shard, guard_retry_budget) },
		{ "guard_retry_write", offsetof(struct pm_stats_shard, guard_retry_write) },
		{ "guard_validated", offsetof(struct pm_stats_shard, guard_validated) },
		{ "guard_bad_cookies", offsetof(struct pm_stats_shard, guard_bad_cookies) },
		{ "guard_dropped_cookie_frame",
		  offsetof(struct pm_stats_shard, guard_dropped_cookie_frame) },
		{ "guard_bytes_withheld", offsetof(struct pm_stats_shard, guard_bytes_withheld) },
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		long long want = info_total(f[i].info);
		long long got = stats_seg_reaches(srv.dir, f[i].off, want, WIRE_INFO_WAIT_MS);
		if (want <= 0 || got < want)
			printf("\n  %s: INFO %lld, the segment %lld", f[i].info, want, got);
		CU_ASSERT(want > 0 && got >= want);
	}
}

/* A cookie lives one to two windows: with windows of 1 s, the one learnt now
 * is still good a moment later and refused within two windows and a margin. */
static void test_expired_cookie(void)
{
	char window[16];
	snprintf(window, sizeof window, "%u", SHORT_WINDOW_S);
	restart((const char *const[]){ "--cookie-window-s", window, NULL });
	struct pm_client *lc = lib();
	CU_ASSERT_EQUAL_FATAL(pm_client_set(lc, "big", 3, big_value, sizeof big_value, 0),
			      PM_CLIENT_OK);
	pm_client_close(lc);
	struct wire c;
	CU_ASSERT_FATAL(wire_open(&c, SRC_A, LOOPBACK, srv.base, 1));
	CU_ASSERT_FATAL(wire_validate(&c));
	uint64_t t0 = proc_now_ms();
	c.no_cookies = true;
	uint8_t frame[PM_COOKIE_FRAME_BYTES];
	memcpy(frame, c.cookie_frame, sizeof frame);
	struct shot s = with_cookie(&c, frame);
	CU_ASSERT(s.ok == 1 && s.out > BIG_VALUE_BYTES); /* good at first */
	uint64_t dead_at = 0;
	while (proc_now_ms() - t0 < EXPIRY_WAIT_MS) { /* a bounded poll of the cookie */
		s = with_cookie(&c, frame);
		if (s.retry) {
			dead_at = proc_now_ms();
			break;
		}
		proc_pause_ms(20);
	}
	printf("\n  a cookie of a %u s window refused after %llu ms", SHORT_WINDOW_S,
	       (unsigned long long)(dead_at - t0));
	CU_ASSERT(dead_at != 0);
	CU_ASSERT(dead_at - t0 >= SHORT_WINDOW_S * 1000u * 9 / 10); /* lived a window at least */
	CU_ASSERT(s.out <= s.in);
	wire_close(&c);
	/* libpomai meets the same expiry and goes on, RETRY unseen */
	lc = lib();
	char buf[16];
	size_t got;
	for (uint64_t t = proc_now_ms(); proc_now_ms() - t < 2500;) {
		CU_ASSERT_EQUAL(pm_client_get(lc, "big", 3, buf, sizeof buf, &got), PM_CLIENT_E_NOSPACE);
		proc_pause_ms(100);
	}
	struct pm_client_stats st;
	pm_client_stats(lc, &st);
	printf(", libpomai took %llu cookies", (unsigned long long)st.cookies);
	CU_ASSERT(st.cookies >= 2 && st.resends == 0);
	pm_client_close(lc);
}

/* ---------------------------------------------------------------- libpomai against a scripted server */

/* A server that answers as the script says: the client's RETRY rules
 * without a pomaid (client/guard.c). */
struct fake {
	int fd;
	bool ok;             /* every datagram was what the script expected */
	uint32_t seen;       /* datagrams received */
};

static void fake_cookie(uint8_t tag0, uint8_t out[PM_COOKIE_BYTES])
{
	struct pm_cookie c = { .window = 9 };
	memset(c.tag, tag0, sizeof c.tag);
	pm_cookie_write(&c, out);
}

/* The next datagram: its request id, and the tag byte of its cookie (0: none). */
static bool fake_recv(struct fake *f, uint64_t *id, uint8_t *tag0, struct sockaddr_in *from)
{
	uint8_t in[2048];
	socklen_t fl = sizeof *from;
	struct pollfd p = { .fd = f->fd, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		return false;
	ssize_t r = recvfrom(f->fd, in, sizeof in, 0, (struct sockaddr *)from, &fl);
	struct pm_cookie c;
	struct pm_request req;
	size_t used;
	int k = r > 0 ? pm_cookie_frame_read(in, (size_t)r, &c) : -1;
	size_t skip = k == 1 ? PM_COOKIE_FRAME_BYTES : 0;
	if (k < 0 || pm_request_decode(in + skip, (size_t)r - skip, &req, &used) != PM_OK)
		return false;
	f->seen++;
	*id = req.id;
	*tag0 = k == 1 ? c.tag[0] : 0;
	return true;
}

static void fake_send(struct fake *f, const struct sockaddr_in *to, uint64_t id, uint8_t tag0)
{
	uint8_t out[128], cookie[PM_COOKIE_BYTES];
	size_t n;
	if (tag0) {
		fake_cookie(tag0, cookie);
		n = pm_reply_encode_retry(PM_WIRE_OP_GET, id, cookie, out, sizeof out);
	} else {
		struct pm_reply rep = { .status = PM_OK, .op = PM_OP_GET, .id = id, .value = B("v") };
		n = pm_reply_encode(&rep, NULL, out, sizeof out);
	}
	(void)sendto(f->fd, out, n, 0, (const struct sockaddr *)to, sizeof *to);
}

/* 1: a GET without a cookie is answered RETRY (cookie 'A') twice, as if a
 * resend had crossed the first; the client resends once, with A, and gets
 * its value. 2: the next GET carries A; the server refuses it (RETRY with
 * B), then refuses B too (RETRY with C): the caller gets E_RETRY. */
static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct sockaddr_in from;
	uint64_t id, id2;
	uint8_t tag;
	f->ok = fake_recv(f, &id, &tag, &from) && tag == 0;
	fake_send(f, &from, id, 'A');
	fake_send(f, &from, id, 'A');
	f->ok = f->ok && fake_recv(f, &id2, &tag, &from) && id2 == id && tag == 'A';
	fake_send(f, &from, id, 0);
	f->ok = f->ok && fake_recv(f, &id, &tag, &from) && tag == 'A';
	fake_send(f, &from, id, 'B');
	f->ok = f->ok && fake_recv(f, &id2, &tag, &from) && id2 == id && tag == 'B';
	fake_send(f, &from, id, 'C');
	return NULL;
}

static void test_client_retry(void)
{
	static struct fake f;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	f = (struct fake){ .fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0) };
	CU_ASSERT_FATAL(f.fd >= 0 && bind(f.fd, (struct sockaddr *)&a, sizeof a) == 0 &&
			getsockname(f.fd, (struct sockaddr *)&a, &al) == 0);
	struct pm_client_config cfg;
	struct pm_client *c = NULL;
	pm_client_config_default(&cfg);
	cfg.base_port = ntohs(a.sin_port);
	cfg.shards = 1;
	cfg.timeout_ms = 3000; /* no timer resend within the script */
	cfg.retries = 0;
	CU_ASSERT_FATAL(pm_client_open(&cfg, &c) == PM_CLIENT_OK);
	pthread_t t;
	CU_ASSERT_FATAL(pthread_create(&t, NULL, fake_main, &f) == 0);
	char buf[8];
	size_t got = 0;
	CU_ASSERT_EQUAL(pm_client_get(c, "k", 1, buf, sizeof buf, &got), PM_CLIENT_OK);
	CU_ASSERT(got == 1 && buf[0] == 'v');
	CU_ASSERT_EQUAL(pm_client_get(c, "k", 1, buf, sizeof buf, &got), PM_CLIENT_E_RETRY);
	pthread_join(t, NULL);
	struct pm_client_stats st;
	pm_client_stats(c, &st);
	printf("\n  scripted server: %u datagrams, script %s, %llu cookies, %llu resends", f.seen,
	       f.ok ? "followed" : "broken", (unsigned long long)st.cookies,
	       (unsigned long long)st.resends);
	CU_ASSERT(f.ok);
	CU_ASSERT_EQUAL(f.seen, 4); /* the duplicate RETRY made no second resend */
	CU_ASSERT_EQUAL(st.resends, 0); /* RETRY resends are not retries */
	pm_client_close(c);
	close(f.fd);
}

/* ---------------------------------------------------------------- spoofing (--spoof) */

/* The raw socket of the spoofing tests, in the suite's own network namespace. */
static int raw_fd = -1;

/* A GET or SET from a forged source (src:port) to shard `shard`. */
static void forged(const char *src, uint16_t port, uint32_t shard, struct pm_request *r)
{
	uint8_t frame[WIRE_FORGED_PAYLOAD_MAX];
	size_t n = pm_request_encode(r, frame, sizeof frame);
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT(wire_udp_forged(raw_fd, src, port, LOOPBACK, (uint16_t)(srv.base + shard), frame, n));
}

/* (a) allow_networks = one address: a datagram claiming it, from elsewhere,
 * must not write. Before issue 19 it did. */
static void test_spoof_allowlist(void)
{
	restart((const char *const[]){ "--allow-networks", "127.0.0.1/32", NULL });
	long long rx0 = info_total("rx_frames");
	struct pm_request set = { .op = PM_OP_SET, .id = 1, .key = B("spoofed"), .value = B("evil") };
	for (uint32_t s = 0; s < SHARDS; s++)
		forged(LOOPBACK, 40000, s, &set);
	struct wire w; /* wire_call validates it when its INFO is answered RETRY */
	CU_ASSERT_FATAL(wire_open(&w, NULL, LOOPBACK, srv.base, 1u << 20));
	CU_ASSERT(wire_info_reaches(&w, "dataplane", "rx_frames", rx0 + SHARDS + 1) >=
		  rx0 + SHARDS + 1);
	wire_close(&w);
	struct pm_client *lc = lib();
	char buf[16];
	size_t got;
	CU_ASSERT_EQUAL(pm_client_get(lc, "spoofed", 7, buf, sizeof buf, &got), PM_CLIENT_NOT_FOUND);
	pm_client_close(lc);
}

/* (b) many spoofed sources get no more than the budget they share. */
#define QUOTA_RPS 10u
#define SPOOF_SOURCES 3000u

/* An INFO field for an observer held to QUOTA_RPS itself: asked again while
 * it is THROTTLED, within WIRE_INFO_WAIT_MS. */
static long long info_quota(struct wire *w, const char *section, const char *field)
{
	uint64_t deadline = proc_now_ms() + WIRE_INFO_WAIT_MS;
	long long v = wire_info(w, section, NULL, field);
	while (v == WIRE_INFO_FAILED && proc_now_ms() < deadline) {
		proc_pause_ms(10); /* the interval of this bounded poll: a token per 200 ms */
		v = wire_info(w, section, NULL, field);
	}
	return v;
}

static void test_spoof_quota(void)
{
	char rps[16];
	snprintf(rps, sizeof rps, "%u", QUOTA_RPS);
	restart((const char *const[]){ "--quota-requests-per-s", rps, NULL });
	struct wire w; /* validated by wire_call at its first RETRY */
	CU_ASSERT_FATAL(wire_open(&w, NULL, LOOPBACK, srv.base, 1u << 20));
	long long rx0 = info_quota(&w, "dataplane", "rx_frames");
	long long miss0 = info_quota(&w, "stats", "misses");
	CU_ASSERT_FATAL(rx0 >= 0 && miss0 >= 0);
	uint64_t t0 = proc_now_ns();
	for (uint32_t i = 0; i < SPOOF_SOURCES; i++) {
		char src[INET_ADDRSTRLEN];
		snprintf(src, sizeof src, "127.10.%u.%u", i % 250u, 1u + i / 250u);
		struct pm_request get = { .op = PM_OP_GET, .id = i + 1, .key = B("absent") };
		forged(src, (uint16_t)(20000 + i % 1000), i % SHARDS, &get);
	}
	long long rx = wire_info_reaches(&w, "dataplane", "rx_frames", rx0 + SPOOF_SOURCES);
	double secs = (double)(proc_now_ns() - t0) / 1e9; /* sent and served */
	long long admitted = info_quota(&w, "stats", "misses") - miss0;
	/* all unvalidated sources: 16 clients' worth per second, and each
	 * worker's burst of it (at least one request), and the /24s' own */
	double bound = QUOTA_RPS * PM_QUOTA_UNVALIDATED_CLIENTS * (secs + 0.1) + 4.0 * SHARDS;
	printf("\n  %u spoofed sources: %lld of %lld frames served in %.2f s (bound %.0f)",
	       SPOOF_SOURCES, admitted, rx - rx0, secs, bound);
	CU_ASSERT(rx - rx0 >= SPOOF_SOURCES / 2); /* most arrived */
	CU_ASSERT(admitted >= 1 && (double)admitted <= bound);
	wire_close(&w);
}

/* (c) a spoofer flooding with the victim's address does not get the
 * victim's validated requests THROTTLED. */
#define VICTIM "127.0.0.7"
#define VICTIM_REQUESTS 8u
#define VICTIM_EVERY_MS 250
#define SPOOF_RPS 400u

struct spoofer {
	atomic_bool stop;
	atomic_ullong sent;
};

static void *spoofer_main(void *arg)
{
	struct spoofer *sp = arg;
	uint64_t t0 = proc_now_ns(), sent = 0;
	while (!atomic_load(&sp->stop)) {
		uint64_t due = (proc_now_ns() - t0) * SPOOF_RPS / 1000000000u;
		for (; sent < due; sent++) {
			struct pm_request get = { .op = PM_OP_GET, .id = sent, .key = B("absent") };
			uint8_t frame[64];
			size_t n = pm_request_encode(&get, frame, sizeof frame);
			(void)wire_udp_forged(raw_fd, VICTIM, 40000, LOOPBACK,
					      (uint16_t)(srv.base + sent % SHARDS), frame, n);
		}
		atomic_store(&sp->sent, sent);
		(void)poll(NULL, 0, 1); /* pacing the load */
	}
	return NULL;
}

static void test_spoof_victim(void)
{
	char rps[16];
	snprintf(rps, sizeof rps, "%u", QUOTA_RPS);
	restart((const char *const[]){ "--quota-requests-per-s", rps, NULL });
	static struct spoofer sp;
	atomic_store(&sp.stop, false);
	pthread_t t;
	CU_ASSERT_FATAL(pthread_create(&t, NULL, spoofer_main, &sp) == 0);
	while (atomic_load(&sp.sent) < SPOOF_RPS / 4) /* bounded: the spoofer runs at its rate */
		(void)poll(NULL, 0, 1);
	struct wire v;
	CU_ASSERT_FATAL(wire_open(&v, VICTIM, LOOPBACK, srv.base, 1u << 24));
	/* its first GET meets its /24's empty shared bucket: RETRY, which
	 * wire_call answers at once with the cookie (as libpomai does); from
	 * then on the victim is validated and has its own bucket */
	uint32_t ok = 0, throttled = 0;
	for (uint32_t i = 0; i < VICTIM_REQUESTS; i++) {
		struct pm_request get = { .op = PM_OP_GET, .key = B("absent") };
		struct pm_reply_view rv;
		if (wire_call(&v, &get, i % SHARDS, &rv)) {
			ok += rv.status == PM_WIRE_NOT_FOUND;
			throttled += rv.status == PM_WIRE_E_THROTTLED || rv.status == PM_WIRE_E_RETRY;
		} else {
			throttled++; /* no answer at all counts against it too */
		}
		(void)poll(NULL, 0, VICTIM_EVERY_MS); /* the victim's pace: 4/s, under its 10/s */
	}
	atomic_store(&sp.stop, true);
	pthread_join(t, NULL);
	printf("\n  victim: %u of %u answered, %u THROTTLED or lost, while %llu spoofed in its name", ok,
	       VICTIM_REQUESTS, throttled, (unsigned long long)atomic_load(&sp.sent));
	CU_ASSERT_EQUAL(ok, VICTIM_REQUESTS);
	CU_ASSERT_EQUAL(throttled, 0);
	wire_close(&v);
}

/* The suite's own network namespace, its loopback up, and a raw socket. 0,
 * or why not. */
static const char *spoof_setup(void)
{
	if (geteuid() != 0)
		return "not root";
	if (unshare(CLONE_NEWNET) != 0)
		return "unshare(CLONE_NEWNET) failed";
	if (pm_ns_iface_up("lo") != 0)
		return "loopback would not come up";
	raw_fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	return raw_fd < 0 ? "no raw socket" : NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test_guard PATH-TO-POMAID [--spoof]\n");
		return 1;
	}
	srv.path = argv[1];
	srv.shards = SHARDS;
	bool spoof = argc > 2 && !strcmp(argv[2], "--spoof");
	if (pm_auth_init() != 0)
		return 1;
	if (spoof) {
		const char *why = spoof_setup();
		if (why) {
			printf("test_guard --spoof: %s: not run%s\n", why,
			       proc_ci() ? " — but CI=true: failing" : "");
			return proc_ci() ? 1 : 77;
		}
	}
	if (!proc_dir_make(srv.dir, "guard")) {
		perror("mkdtemp");
		return 1;
	}
	static CU_TestInfo tests[] = {
		{ "cookies: mint, verify, lifetime, addresses, the ratchet", test_secrets },
		{ "cookies: a root made years after boot starts at its epoch", test_late_root },
		{ "budget: 3x, 1x after a bad cookie, RETRY fits, the writes", test_budget },
		{ "every op and shape unvalidated: out <= 3x in, no write", test_every_op },
		{ "validated: the whole reply, writes executed", test_validated },
		{ "forged, other-address and malformed cookies refused", test_refused_cookies },
		{ "the stats segment counts the guard as INFO does", test_stats_segment },
		{ "expired cookies refused; libpomai goes on", test_expired_cookie },
		{ "libpomai: one resend per RETRY, duplicates ignored, E_RETRY", test_client_retry },
		CU_TEST_INFO_NULL,
	};
	static CU_TestInfo spoof_tests[] = {
		{ "spoofed allowed address cannot write", test_spoof_allowlist },
		{ "many spoofed sources share one budget", test_spoof_quota },
		{ "a spoofed victim's own requests are not throttled", test_spoof_victim },
		CU_TEST_INFO_NULL,
	};
	int rc = pm_cu_run_suite(spoof ? "guard_spoof" : "guard", NULL, suite_clean,
				 spoof ? spoof_tests : tests);
	if (raw_fd >= 0)
		close(raw_fd);
	proc_dir_remove(srv.dir);
	return rc;
}
