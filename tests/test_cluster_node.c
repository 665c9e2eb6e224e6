/* SPDX-License-Identifier: MIT
 *
 * test_cluster_node.c — pomaid's cluster mode (cluster = on, dataplane/
 * cluster.c) without etcd: the test plays pomai-control on the admin socket
 * of a real pomaid (argv[1]) on free loopback ports, and is its client over
 * UDP frames (tests/frames.h).
 *  - configuration: cluster = on is refused without the log, without a
 *    repl_port and with replica_of; CLUSTER is USAGE with cluster = off;
 *  - the write lease (CLUSTER LEASE, CLOCK_BOOTTIME ms): none at the start,
 *    writes READONLY with a zero primary; writes go once one is given and
 *    stop once its deadline is past (never before it), at once with 0; one
 *    further out than PM_CLUSTER_LEASE_MS_MAX is refused and changes
 *    nothing; reads go on throughout;
 *  - the map (CLUSTER MAP, in parts): keyed requests on another set's slots
 *    are MOVED with the map's epoch, the key's slot and that set's primary
 *    as the map says (zeros: none); the MAP operation returns exactly
 *    pm_cmap_encode() of it; lower epochs, an equal epoch with other
 *    content, malformed and oversized documents are refused, the map held
 *    staying in force; CLUSTER STATUS counts the MOVED replies;
 *  - persistence: after SIGKILL the map is back from data_dir/cluster.map
 *    and the lease is not; a corrupt cluster.map stops the start, naming it;
 *  - a promoted former replica without its lease: READONLY names no primary.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin_proto.h"
#include "auth.h"
#include "cluster_map.h"
#include "ctl.h"
#include "cu_main.h"
#include "frames.h"
#include "pomai.h"
#include "proc.h"
#include "route.h"

#define SHARDS 2u
/* The vectors the test adds: small, the default collection of this size. */
#define DIM 4u
/* A lease long enough for any step of a test on a loaded machine under
 * ASan: the writes that must succeed all fit in it. */
#define LEASE_LONG_MS 30000u
/* A lease the test waits out. */
#define LEASE_SHORT_MS 300u
/* Rounds of LEASE long, a write, LEASE 0, a write: each write must see the
 * lease of the reply before it, whatever turn a worker was in (a lease read
 * once per turn failed about 1 round in 600 on a loaded 2-core machine). */
#define LEASE_ROUNDS 100u
/* How long a condition the test polls for may take (a lapsed lease, a
 * replica's link, a counter): a bound, not a delay. */
#define WAIT_MS 15000u
/* pomaid's PM_CLUSTER_LEASE_MS_MAX (dataplane/cluster.h). */
#define LEASE_MS_MAX_TEST 60000u
/* Keys tried to find one of each set. */
#define KEYS_TRIED 100000u
/* A document's bytes in the tests (the longest: every part of CLUSTER MAP
 * full). */
#define DOC_BYTES (PM_CLUSTER_MAP_TEXT_BYTES_MAX + 1u)
/* Admin arguments after CLUSTER MAP self: the protocol's 16 less those 3. */
#define MAP_PARTS_MAX (PM_ADMIN_ARGS_MAX - 3u)

static const char *pomaid_path;

/* As pomai-control's pomaid runs (cluster-iface.md): the log in sync mode,
 * a repl_port (struct pomaid's repl). */
static const char *const cluster_flags[] = {
	"--arena-bytes", "64M", "--seeds", "65536", "--hugepages", "no", "--wal", "sync",
	"--cluster", "on", NULL
};
static const char *const plain_flags[] = {
	"--arena-bytes", "64M", "--seeds", "65536", "--hugepages", "no", "--wal", "batch", NULL
};

/* ---------------------------------------------------------------- nodes */

struct node {
	struct pomaid pm;
	char sock[PATH_MAX + 16];
	char log[PATH_MAX + 16];    /* what it printed after its ready line */
	struct wire c;
};

/* The nodes of the running test (each a test's static: a fatal assertion
 * leaves the function), removed at its end or at the next test's start. */
#define NODES_MAX 2u
static struct node *live[NODES_MAX];

static void node_init(struct node *n, const char *const *flags)
{
	memset(n, 0, sizeof(*n));
	n->pm.path = pomaid_path;
	n->pm.shards = SHARDS;
	n->pm.flags = flags;
	n->pm.repl = true;
	n->pm.after = PROC_AFTER_LOG;
	n->pm.log = n->log;
	n->c.fd = -1;
	CU_ASSERT_FATAL(proc_dir_make(n->pm.dir, "cnode"));
	snprintf(n->sock, sizeof(n->sock), "%s/admin.sock", n->pm.dir);
	snprintf(n->log, sizeof(n->log), "%s/pomaid.log", n->pm.dir);
	uint32_t i = 0;
	while (i < NODES_MAX && live[i])
		i++;
	CU_ASSERT_FATAL(i < NODES_MAX);
	live[i] = n;
}

/* Start it (again, on the same ports and directory), with a client. */
static bool node_start(struct node *n, const char *const *extra)
{
	wire_close(&n->c);
	if (!pomaid_start(&n->pm, extra, NULL)) {
		printf("\n  pomaid did not start (status 0x%x): %s", (unsigned)n->pm.proc.status,
		       n->pm.proc.out);
		return false;
	}
	if (!wire_open(&n->c, NULL, "127.0.0.1", n->pm.base, 1))
		return false;
	n->c.server = &n->pm.proc;
	return true;
}

/* Whether what it printed holds a sanitizer's report. */
static bool log_sanitized(const struct node *n)
{
	char line[1024];
	bool found = false;
	FILE *f = fopen(n->log, "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "runtime error") || strstr(line, "Sanitizer")) {
			printf("\n  pomaid: %s", line);
			found = true;
		}
	if (f)
		fclose(f);
	return found;
}

/* Stopped (SIGTERM: it must exit 0, leak checks included, had it not
 * died), its output free of sanitizer reports; its directory removed. */
static void node_free(struct node *n)
{
	wire_close(&n->c);
	if (pomaid_alive(&n->pm))
		CU_ASSERT(pomaid_stop(&n->pm));
	CU_ASSERT(!log_sanitized(n));
	proc_dir_remove(n->pm.dir);
	for (uint32_t i = 0; i < NODES_MAX; i++)
		if (live[i] == n)
			live[i] = NULL;
}

static void leftovers_remove(void)
{
	for (uint32_t i = 0; i < NODES_MAX; i++)
		if (live[i])
			node_free(live[i]);
}

/* A node started with the cluster's flags, or the test stops. */
static void node_up(struct node *n)
{
	leftovers_remove();
	node_init(n, cluster_flags);
	CU_ASSERT_FATAL(node_start(n, NULL));
}

/* ---------------------------------------------------------------- admin */

/* One admin request of argc arguments; its status (-1: no answer), the text
 * into out (cap bytes with the NUL). */
static int admin(const struct node *n, uint32_t argc, const char *const *argv, char *out,
		 size_t cap)
{
	static uint8_t buf[PM_ADMIN_BUFFER_BYTES];
	const char *text = NULL;
	size_t tlen = 0;
	uint8_t st = 0xff;
	int fd = pm_admin_connect(n->sock);
	int rc = fd >= 0 ? pm_admin_call(fd, argc, argv, buf, sizeof(buf), CTL_WAIT_MS, &st,
					 &text, &tlen)
			 : fd;
	if (fd >= 0)
		close(fd);
	size_t k = rc == 0 && text ? (tlen < cap - 1 ? tlen : cap - 1) : 0;
	memcpy(out, k ? text : "", k);
	out[k] = '\0';
	return rc == 0 ? st : -1;
}

/* A request encoded by hand (what pm_admin_req_encode refuses to build):
 * argc arguments of lens[i] bytes each, all filled with fill; the status. */
static int admin_raw(const struct node *n, uint32_t argc, const char *const *head,
		     uint32_t nhead, const size_t *lens, char fill, char *out, size_t cap)
{
	static uint8_t req[PM_ADMIN_BUFFER_BYTES], buf[PM_ADMIN_BUFFER_BYTES];
	size_t at = PM_ADMIN_LEN_BYTES;
	req[at++] = PM_ADMIN_VERSION;
	req[at++] = (uint8_t)argc;
	for (uint32_t i = 0; i < argc; i++) {
		size_t len = i < nhead ? strlen(head[i]) : lens[i];
		req[at] = (uint8_t)len;
		req[at + 1] = (uint8_t)(len >> 8);
		if (i < nhead)
			memcpy(req + at + 2, head[i], len);
		else
			memset(req + at + 2, fill, len);
		at += 2 + len;
	}
	uint32_t body = (uint32_t)(at - PM_ADMIN_LEN_BYTES);
	memcpy(req, &body, sizeof(body)); /* little-endian host */
	int fd = pm_admin_connect(n->sock);
	size_t len = 0;
	int rc = fd >= 0 ? pm_admin_call_raw(fd, req, at, buf, sizeof(buf), CTL_WAIT_MS, &len) : fd;
	if (fd >= 0)
		close(fd);
	uint8_t st = 0xff;
	const char *text = "";
	size_t tlen = 0;
	if (rc == 0 && pm_admin_reply_decode(buf, len, &st, &text, &tlen) != 0)
		rc = -1;
	snprintf(out, cap, "%.*s", (int)(rc == 0 ? tlen : 0), text);
	return rc == 0 ? st : -1;
}

static uint64_t boot_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* CLUSTER LEASE until; its status, the reply in out. */
static int lease(const struct node *n, uint64_t until, char *out, size_t cap)
{
	char words[64];
	snprintf(words, sizeof(words), "CLUSTER LEASE %" PRIu64, until);
	return ctl_admin(n->sock, words, out, cap);
}

/* A field of a reply's text, its first line too (info_text_field() finds
 * those after a line's end); -1: absent. */
static long long reply_field(const char *text, const char *field)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "\n%s", text);
	return info_text_field(buf, NULL, field);
}

/* A field of CLUSTER STATUS (-1: absent, or STATUS failed). */
static long long status_field(const struct node *n, const char *field)
{
	char text[1024];
	if (ctl_admin(n->sock, "CLUSTER STATUS", text, sizeof(text)) != PM_ADMIN_OK)
		return -1;
	return info_text_field(text, NULL, field);
}

/* ---------------------------------------------------------------- the map */

/* The map documents of the tests: sets s1 (the node's: n1 under test, n2),
 * s2 (primary n3, or n5 after a failover) and s3 (no primary); s1 owns
 * 0..s1_last, s2 up to s2_last, s3 the rest. */
struct doc_spec {
	uint64_t epoch;
	uint16_t s1_last, s2_last;
	const char *s2_primary; /* "n3" or "n5" */
};

static size_t doc_make(const struct node *n, const struct doc_spec *s, char *out, size_t cap)
{
	int len = snprintf(out, cap,
		"pomai-map version=1 epoch=%" PRIu64 "\n"
		"set name=s1 epoch=2 primary=n1\n"
		"set name=s2 epoch=7 primary=%s\n"
		"set name=s3 epoch=1 primary=-\n"
		"node name=n1 set=s1 addr=127.0.0.1 udp=%u tcp=%u repl=%u shards=%u\n"
		"node name=n2 set=s1 addr=127.0.0.1 udp=1000 tcp=0 repl=1100 shards=%u\n"
		"node name=n3 set=s2 addr=127.0.0.2 udp=31000 tcp=30999 repl=31100 shards=2\n"
		"node name=n5 set=s2 addr=127.0.0.5 udp=35000 tcp=0 repl=35100 shards=3\n"
		"node name=n4 set=s3 addr=127.0.0.3 udp=32000 tcp=31999 repl=32100 shards=1\n"
		"slots first=0 last=%u set=s1\n"
		"slots first=%u last=%u set=s2\n"
		"slots first=%u last=16383 set=s3\n",
		s->epoch, s->s2_primary, n->pm.base, n->pm.base - 1u, n->pm.repl_port, SHARDS,
		SHARDS, s->s1_last, s->s1_last + 1u, s->s2_last, s->s2_last + 1u);
	CU_ASSERT_FATAL(len > 0 && (size_t)len < cap);
	return (size_t)len;
}

/* CLUSTER MAP self, the document split at line boundaries into parts of
 * lines_per_part lines each (0: into parts of PM_ADMIN_ARG_BYTES_MAX bytes,
 * wherever that cuts); its status and reply. */
static int map_send(const struct node *n, const char *self, const char *text, size_t len,
		    uint32_t lines_per_part, char *out, size_t cap)
{
	static char parts[MAP_PARTS_MAX][PM_ADMIN_ARG_BYTES_MAX + 1];
	const char *argv[PM_ADMIN_ARGS_MAX] = { "CLUSTER", "MAP", self };
	uint32_t argc = 3;
	size_t at = 0;
	while (at < len) {
		CU_ASSERT_FATAL(argc < PM_ADMIN_ARGS_MAX);
		size_t end = lines_per_part ? at : at + PM_ADMIN_ARG_BYTES_MAX;
		end = end < len ? end : len;
		for (uint32_t l = 0; l < lines_per_part && end < len; l++) {
			const char *nl = memchr(text + end, '\n', len - end);
			end = nl ? (size_t)(nl - text) + 1 : len;
		}
		CU_ASSERT_FATAL(end - at <= PM_ADMIN_ARG_BYTES_MAX);
		char *p = parts[argc - 3];
		memcpy(p, text + at, end - at);
		p[end - at] = '\0';
		argv[argc++] = p;
		at = end;
	}
	return admin(n, argc, argv, out, cap);
}

/* The map as the test reads the document (the reference for MOVED and MAP). */
static void doc_parse(const char *text, size_t len, struct pm_cmap *m)
{
	char err[256];
	int rc = pm_cmap_parse(text, len, m, err, sizeof(err));
	if (rc)
		printf("\n  the test's own document is refused: %s", err);
	CU_ASSERT_FATAL(rc == 0);
}

/* ---------------------------------------------------------------- requests */

struct key {
	char text[24];
	uint16_t slot;
};

/* The first key "<tag><i>" whose slot the map gives to set (by name). */
static struct key key_of_set(const struct pm_cmap *m, const char *set, const char *tag)
{
	uint16_t s = pm_cmap_set_index(m, set);
	CU_ASSERT_FATAL(s != PM_CMAP_NONE);
	struct key k;
	for (uint32_t i = 0; i < KEYS_TRIED; i++) {
		int len = snprintf(k.text, sizeof(k.text), "%s%u", tag, i);
		k.slot = pm_slot_of(pm_route_hash(k.text, (size_t)len));
		if (m->slot_set[k.slot] == s)
			return k;
	}
	CU_FAIL_FATAL("no key of that set");
	return k;
}

/* The first key "<tag><i>" whose slot is in first..last. */
static struct key key_in(uint16_t first, uint16_t last, const char *tag)
{
	struct key k;
	for (uint32_t i = 0; i < KEYS_TRIED; i++) {
		int len = snprintf(k.text, sizeof(k.text), "%s%u", tag, i);
		k.slot = pm_slot_of(pm_route_hash(k.text, (size_t)len));
		if (k.slot >= first && k.slot <= last)
			return k;
	}
	CU_FAIL_FATAL("no key in those slots");
	return k;
}

/* op (SET GET DEL VADD VGET VDEL) on key to shard (owner + bump) % SHARDS:
 * bump 0 is the shard that owns it, 1 the other (which forwards); the
 * reply's wire status (rv filled). */
static enum pm_wire_status call_on(struct node *n, uint8_t op, const char *key, uint32_t bump,
				   struct pm_reply_view *rv)
{
	static const float vec[DIM] = { 0.25f, 0.5f, 0.75f, 1.0f };
	struct pm_request r = { .op = op,
				.key = { (const uint8_t *)key, (uint32_t)strlen(key) } };
	if (op == PM_OP_SET)
		r.value = (struct pm_bytes){ (const uint8_t *)"value", 5 };
	if (op == PM_OP_VADD) {
		r.vec = (const uint8_t *)vec;
		r.dim = DIM;
	}
	uint32_t shard = (pm_shard_of(pm_route_hash(key, strlen(key)), SHARDS) + bump) % SHARDS;
	CU_ASSERT_FATAL(wire_call(&n->c, &r, shard, rv));
	return rv->status;
}

static enum pm_wire_status call(struct node *n, uint8_t op, const char *key,
				struct pm_reply_view *rv)
{
	return call_on(n, op, key, 0, rv);
}

static enum pm_wire_status call_st(struct node *n, uint8_t op, const char *key)
{
	struct pm_reply_view rv;
	return call(n, op, key, &rv);
}

static const uint8_t keyed_ops[] = { PM_OP_SET, PM_OP_GET, PM_OP_DEL,
				     PM_OP_VADD, PM_OP_VGET, PM_OP_VDEL };
static const char *const keyed_names[] = { "SET", "GET", "DEL", "VADD", "VGET", "VDEL" };
#define KEYED_OPS (sizeof(keyed_ops) / sizeof(keyed_ops[0]))

/* A write that is refused READONLY naming no primary (the node has no write
 * lease), its key unchanged. */
static void expect_fenced(struct node *n, const char *key)
{
	struct pm_reply_view rv;
	CU_ASSERT_EQUAL(call(n, PM_OP_SET, key, &rv), PM_WIRE_E_READONLY);
	CU_ASSERT_EQUAL(rv.primary.addr_be, 0);
	CU_ASSERT_EQUAL(rv.primary.udp_port, 0);
	CU_ASSERT_EQUAL(rv.primary.tcp_port, 0);
	CU_ASSERT_EQUAL(call_st(n, PM_OP_VADD, key), PM_WIRE_E_READONLY);
	CU_ASSERT_EQUAL(call_st(n, PM_OP_DEL, key), PM_WIRE_E_READONLY);
}

/* The MAP operation's reply: its status, the body into out (cap). */
static enum pm_wire_status map_op(struct node *n, uint8_t *out, size_t cap, size_t *len)
{
	struct pm_request r = { .op = PM_OP_MAP };
	struct pm_reply_view rv;
	CU_ASSERT_FATAL(wire_call(&n->c, &r, 0, &rv));
	*len = rv.value.len <= cap ? rv.value.len : 0;
	if (*len)
		memcpy(out, rv.value.ptr, *len); /* a NOT_FOUND has no body (ptr NULL) */
	return rv.status;
}

/* The MAP operation answers exactly pm_cmap_encode(m, index of self). */
static void expect_map_op(struct node *n, const struct pm_cmap *m, const char *self)
{
	static uint8_t want[PM_CMAP_WIRE_BYTES_MAX], got[PM_CMAP_WIRE_BYTES_MAX];
	size_t wlen = pm_cmap_encode(m, pm_cmap_node_index(m, self), want, sizeof(want)), glen;
	CU_ASSERT_FATAL(wlen > 0);
	CU_ASSERT_EQUAL(map_op(n, got, sizeof(got), &glen), PM_WIRE_OK);
	CU_ASSERT_EQUAL(glen, wlen);
	CU_ASSERT(glen == wlen && memcmp(got, want, wlen) == 0);
}

/* Every keyed op on key (another set's) is MOVED: the map's epoch, the
 * key's slot, the set's primary as m says (zeros when it has none), and the
 * body on the wire is those 20 bytes exactly. Returns the MOVED replies. */
static uint32_t expect_moved(struct node *n, const struct pm_cmap *m, const struct key *k)
{
	uint16_t set = m->slot_set[k->slot], p = m->sets[set].primary;
	struct pm_wire_primary want = { 0 };
	if (p != PM_CMAP_NONE)
		want = (struct pm_wire_primary){ m->nodes[p].addr_be, m->nodes[p].udp_port,
						 m->nodes[p].tcp_port };
	uint32_t moved = 0;
	for (uint32_t i = 0; i < KEYED_OPS; i++) {
		struct pm_reply_view rv;
		enum pm_wire_status st = call_on(n, keyed_ops[i], k->text, i, &rv); /* both workers */
		if (st != PM_WIRE_E_MOVED)
			printf("\n  %s %s (slot %u): status %d, not MOVED", keyed_names[i], k->text,
			       k->slot, (int)st);
		CU_ASSERT_EQUAL(st, PM_WIRE_E_MOVED);
		if (st != PM_WIRE_E_MOVED)
			continue;
		moved++;
		CU_ASSERT_EQUAL(rv.map_epoch, m->epoch);
		CU_ASSERT_EQUAL(rv.slot, k->slot);
		CU_ASSERT_EQUAL(rv.primary.addr_be, want.addr_be);
		CU_ASSERT_EQUAL(rv.primary.udp_port, want.udp_port);
		CU_ASSERT_EQUAL(rv.primary.tcp_port, want.tcp_port);
		/* the bytes: header, the sub-op byte of 'V', then the 20 of MOVED */
		const uint8_t *f = n->c.in;
		uint32_t body_len;
		memcpy(&body_len, f + 16, sizeof(body_len));
		uint32_t at = PM_FRAME_HEADER_BYTES + (f[3] == 'V');
		CU_ASSERT_EQUAL(body_len, at - PM_FRAME_HEADER_BYTES + PM_WIRE_MOVED_BYTES);
		uint8_t b[PM_WIRE_MOVED_BYTES] = { 0 };
		for (int j = 0; j < 8; j++)
			b[j] = (uint8_t)(m->epoch >> (8 * j));
		b[8] = (uint8_t)k->slot, b[9] = (uint8_t)(k->slot >> 8);
		memcpy(b + 12, &want.addr_be, 4);
		b[16] = (uint8_t)want.udp_port, b[17] = (uint8_t)(want.udp_port >> 8);
		b[18] = (uint8_t)want.tcp_port, b[19] = (uint8_t)(want.tcp_port >> 8);
		CU_ASSERT(memcmp(f + at, b, sizeof(b)) == 0);
	}
	return moved;
}

/* Every keyed op on key (this node's set) is served: with the lease, SET and
 * VADD OK, GET and VGET find them, DEL and VDEL remove them. */
static void expect_served(struct node *n, const struct key *k)
{
	struct pm_reply_view rv;
	CU_ASSERT_EQUAL(call_st(n, PM_OP_SET, k->text), PM_WIRE_OK);
	CU_ASSERT_EQUAL(call(n, PM_OP_GET, k->text, &rv), PM_WIRE_OK);
	CU_ASSERT(rv.value.len == 5 && memcmp(rv.value.ptr, "value", 5) == 0);
	CU_ASSERT_EQUAL(call(n, PM_OP_DEL, k->text, &rv), PM_WIRE_OK);
	CU_ASSERT_EQUAL(rv.removed, 1);
	CU_ASSERT_EQUAL(call_st(n, PM_OP_VADD, k->text), PM_WIRE_OK);
	CU_ASSERT_EQUAL(call(n, PM_OP_VGET, k->text, &rv), PM_WIRE_OK);
	CU_ASSERT_EQUAL(rv.dim, DIM);
	CU_ASSERT_EQUAL(call(n, PM_OP_VDEL, k->text, &rv), PM_WIRE_OK);
	CU_ASSERT_EQUAL(rv.removed, 1);
}

/* CLUSTER STATUS's moved_replies reaches want (the workers count after they
 * answer) and stays there. */
static void expect_moved_count(const struct node *n, long long want)
{
	uint64_t deadline = proc_now_ms() + WAIT_MS;
	long long got = status_field(n, "moved_replies");
	while (got < want && proc_now_ms() < deadline) {
		proc_pause_ms(PROC_POLL_MS);
		got = status_field(n, "moved_replies");
	}
	CU_ASSERT_EQUAL(got, want);
}

/* ---------------------------------------------------------------- configuration */

/* cluster = on needs the log and a repl_port, and takes no replica_of:
 * pomaid says so and does not start. With cluster = off, CLUSTER is USAGE,
 * MAP is NOT_FOUND and writes need no lease. */
static void test_config(void)
{
	static const char *const no_wal[] = { "--wal", "none", NULL };
	static const char *const follows[] = { "--replica-of", "127.0.0.1:9", NULL };
	static const struct {
		const char *const *extra;
		bool repl;
		const char *what, *says;
	} bad[] = {
		/* replication refuses it first: a repl_port needs the log */
		{ no_wal, true, "wal = none", "needs the log: wal = none" },
		{ NULL, false, "no repl_port", "cluster = on needs the log (wal = sync or batch), a"
					       " repl_port, and no replica_of" },
		{ follows, true, "replica_of", "cluster = on needs" },
	};
	leftovers_remove();
	for (uint32_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		static struct node n;
		node_init(&n, cluster_flags);
		n.pm.repl = bad[i].repl;
		bool up = pomaid_start(&n.pm, bad[i].extra, NULL);
		bool said = strstr(n.pm.proc.out, bad[i].says) != NULL;
		if (up || !said)
			printf("\n  cluster = on with %s: %s; it said: %s", bad[i].what,
			       up ? "started" : "refused", n.pm.proc.out);
		CU_ASSERT(!up);
		CU_ASSERT(said);
		CU_ASSERT(n.pm.proc.reaped && proc_exit_code(&n.pm.proc) > 0);
		node_free(&n);
	}

	static struct node n;
	char out[512];
	uint8_t body[64];
	size_t len;
	node_init(&n, plain_flags);
	CU_ASSERT_FATAL(node_start(&n, NULL));
	static const char *const refused[] = { "CLUSTER STATUS", "CLUSTER LEASE 0",
					       "CLUSTER MAP n1 x" };
	for (uint32_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		CU_ASSERT_EQUAL(ctl_admin(n.sock, refused[i], out, sizeof(out)), PM_ADMIN_USAGE);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "cluster = off"));
	}
	CU_ASSERT_EQUAL(map_op(&n, body, sizeof(body), &len), PM_WIRE_NOT_FOUND);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_EQUAL(call_st(&n, PM_OP_SET, "plain"), PM_WIRE_OK);
	node_free(&n);
}

/* ---------------------------------------------------------------- the write lease */

/* Writes until one is READONLY (the lease lapsed), at most WAIT_MS past
 * until; the CLOCK_BOOTTIME ms at which that reply was in (0: none came). */
static uint64_t writes_until_fenced(struct node *n, const char *key, uint64_t until)
{
	while (boot_ms() < until + WAIT_MS) {
		enum pm_wire_status st = call_st(n, PM_OP_SET, key);
		uint64_t at = boot_ms();
		if (st == PM_WIRE_E_READONLY)
			return at;
		CU_ASSERT_EQUAL(st, PM_WIRE_OK);
		proc_pause_ms(PROC_POLL_MS);
	}
	return 0;
}

static void test_lease(void)
{
	static struct node n;
	struct pm_reply_view rv;
	char out[512];
	node_up(&n);

	/* a fresh node: no lease, writes READONLY with no primary; reads go */
	expect_fenced(&n, "lease-a");
	CU_ASSERT_EQUAL(call_st(&n, PM_OP_GET, "lease-a"), PM_WIRE_NOT_FOUND);
	CU_ASSERT_EQUAL(status_field(&n, "write_lease_ms"), 0);

	/* a lease: writes go, and the reply says how long it has left */
	uint64_t t0 = boot_ms(), until = t0 + LEASE_LONG_MS;
	CU_ASSERT_EQUAL(lease(&n, until, out, sizeof(out)), PM_ADMIN_OK);
	long long left = reply_field(out, "write_lease_ms");
	CU_ASSERT(left > 0 && left <= (long long)LEASE_LONG_MS);
	CU_ASSERT_EQUAL(call_st(&n, PM_OP_SET, "lease-a"), PM_WIRE_OK);
	CU_ASSERT_EQUAL(call_st(&n, PM_OP_VADD, "lease-v"), PM_WIRE_OK);

	/* further out than PM_CLUSTER_LEASE_MS_MAX: ERROR, the lease as it was;
	 * not a number: USAGE */
	CU_ASSERT_EQUAL(lease(&n, boot_ms() + LEASE_MS_MAX_TEST + 1000u, out, sizeof(out)),
			PM_ADMIN_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "60000 ms"));
	CU_ASSERT_EQUAL(lease(&n, UINT64_MAX, out, sizeof(out)), PM_ADMIN_ERROR);
	CU_ASSERT_EQUAL(ctl_admin(n.sock, "CLUSTER LEASE -5", out, sizeof(out)), PM_ADMIN_USAGE);
	CU_ASSERT_EQUAL(ctl_admin(n.sock, "CLUSTER LEASE 12x", out, sizeof(out)), PM_ADMIN_USAGE);
	CU_ASSERT_EQUAL(ctl_admin(n.sock, "CLUSTER LEASE", out, sizeof(out)), PM_ADMIN_USAGE);
	uint64_t a = boot_ms();
	left = status_field(&n, "write_lease_ms");
	uint64_t b = boot_ms();
	CU_ASSERT(left >= (long long)(until - b) && left <= (long long)(until - a));
	CU_ASSERT_EQUAL(call_st(&n, PM_OP_SET, "lease-a"), PM_WIRE_OK);

	/* a short lease: writes go until its deadline, READONLY past it — never
	 * before (pomaid and the test read the same clock) */
	uint64_t short_until = boot_ms() + LEASE_SHORT_MS;
	CU_ASSERT_EQUAL(lease(&n, short_until, out, sizeof(out)), PM_ADMIN_OK);
	uint64_t fenced_at = writes_until_fenced(&n, "lease-a", short_until);
	if (fenced_at && fenced_at < short_until)
		printf("\n  READONLY at %" PRIu64 ", before the deadline %" PRIu64, fenced_at,
		       short_until);
	CU_ASSERT(fenced_at != 0);
	CU_ASSERT(fenced_at >= short_until);
	expect_fenced(&n, "lease-b");
	CU_ASSERT_EQUAL(status_field(&n, "write_lease_ms"), 0);
	/* reads go on: what was written before is there */
	CU_ASSERT_EQUAL(call(&n, PM_OP_GET, "lease-a", &rv), PM_WIRE_OK);
	CU_ASSERT(rv.value.len == 5 && memcmp(rv.value.ptr, "value", 5) == 0);
	CU_ASSERT_EQUAL(call(&n, PM_OP_VGET, "lease-v", &rv), PM_WIRE_OK);
	CU_ASSERT_EQUAL(rv.dim, DIM);
	CU_ASSERT_EQUAL(call_st(&n, PM_OP_GET, "lease-b"), PM_WIRE_NOT_FOUND);

	/* LEASE 0 fences at once, a grant admits at once: the write sent after
	 * the reply is judged by that lease */
	for (uint32_t round = 0; round < LEASE_ROUNDS; round++) {
		CU_ASSERT_EQUAL(lease(&n, boot_ms() + LEASE_LONG_MS, out, sizeof(out)), PM_ADMIN_OK);
		CU_ASSERT_EQUAL(call_st(&n, PM_OP_SET, "lease-c"), PM_WIRE_OK);
		CU_ASSERT_EQUAL(lease(&n, 0, out, sizeof(out)), PM_ADMIN_OK);
		CU_ASSERT_STRING_EQUAL(out, "write_lease_ms:0\r\n");
		expect_fenced(&n, "lease-c");
	}
	CU_ASSERT_EQUAL(call_st(&n, PM_OP_GET, "lease-c"), PM_WIRE_OK);
	node_free(&n);
}

/* ---------------------------------------------------------------- the map */

/* Its reply to a CLUSTER MAP that the map held is still in force: MAP and
 * MOVED answer from m. */
static void expect_still(struct node *n, const struct pm_cmap *m, const struct key *other)
{
	expect_map_op(n, m, "n1");
	CU_ASSERT_EQUAL(expect_moved(n, m, other), KEYED_OPS);
	CU_ASSERT_EQUAL(status_field(n, "map_epoch"), (long long)m->epoch);
}

/* A document pomaid must refuse with the parser's own reason (sent in parts
 * of lines_per_part lines, as map_send). */
static void expect_malformed(struct node *n, const char *text, size_t len,
			     uint32_t lines_per_part)
{
	static struct pm_cmap scratch;
	char why[256], want[260], out[512];
	CU_ASSERT_FATAL(pm_cmap_parse(text, len, &scratch, why, sizeof(why)) != 0);
	snprintf(want, sizeof(want), "%s\n", why);
	CU_ASSERT_EQUAL(map_send(n, "n1", text, len, lines_per_part, out, sizeof(out)),
			PM_ADMIN_ERROR);
	if (strcmp(out, want))
		printf("\n  refused with \"%s\", not the parser's \"%s\"", out, why);
	CU_ASSERT_STRING_EQUAL(out, want);
}

static void test_map(void)
{
	static char text[DOC_BYTES], other[DOC_BYTES];
	static struct pm_cmap m1, m2;
	static struct node n;
	char out[1024], word[32];
	uint8_t body[64];
	size_t len;
	node_up(&n);

	/* no map yet: MAP is NOT_FOUND, nothing is MOVED */
	CU_ASSERT_EQUAL(map_op(&n, body, sizeof(body), &len), PM_WIRE_NOT_FOUND);
	CU_ASSERT_EQUAL(call_st(&n, PM_OP_GET, "any"), PM_WIRE_NOT_FOUND);
	CU_ASSERT_EQUAL(status_field(&n, "map_epoch"), 0);

	/* map 1 in parts of 4 lines: s1 (this node's) 0-5460 */
	struct doc_spec s1 = { 1, 5460, 10922, "n3" };
	size_t len1 = doc_make(&n, &s1, text, sizeof(text));
	doc_parse(text, len1, &m1);
	CU_ASSERT_EQUAL(map_send(&n, "n1", text, len1, 4, out, sizeof(out)), PM_ADMIN_OK);
	CU_ASSERT_STRING_EQUAL(out, "map_epoch:1\r\nset:s1\r\nslots_owned:5461\r\n");
	CU_ASSERT_EQUAL(lease(&n, boot_ms() + LEASE_LONG_MS, out, sizeof(out)), PM_ADMIN_OK);
	struct key own = key_of_set(&m1, "s1", "own"), two = key_of_set(&m1, "s2", "two"),
		   three = key_of_set(&m1, "s3", "three"), comes = key_in(5461, 8191, "comes");
	expect_served(&n, &own);
	long long moved = expect_moved(&n, &m1, &two) + expect_moved(&n, &m1, &three) +
			  expect_moved(&n, &m1, &comes);
	CU_ASSERT_EQUAL(moved, 3 * KEYED_OPS);
	expect_map_op(&n, &m1, "n1");
	CU_ASSERT_EQUAL(ctl_admin(n.sock, "CLUSTER STATUS", out, sizeof(out)), PM_ADMIN_OK);
	CU_ASSERT(info_text_word(out, NULL, "cluster", word, sizeof(word)) && !strcmp(word, "on"));
	CU_ASSERT(info_text_word(out, NULL, "node", word, sizeof(word)) && !strcmp(word, "n1"));
	CU_ASSERT(info_text_word(out, NULL, "set", word, sizeof(word)) && !strcmp(word, "s1"));
	CU_ASSERT_EQUAL(info_text_field(out, NULL, "map_epoch"), 1);
	CU_ASSERT_EQUAL(info_text_field(out, NULL, "slots_owned"), 5461);
	CU_ASSERT(info_text_field(out, NULL, "write_lease_ms") > 0);
	expect_moved_count(&n, moved);

	/* map 2, a line per part: s1 grows to 0-8191, s2's primary is n5 */
	struct doc_spec s2 = { 2, 8191, 12000, "n5" };
	size_t len2 = doc_make(&n, &s2, text, sizeof(text));
	doc_parse(text, len2, &m2);
	CU_ASSERT_EQUAL(map_send(&n, "n1", text, len2, 1, out, sizeof(out)), PM_ADMIN_OK);
	CU_ASSERT_STRING_EQUAL(out, "map_epoch:2\r\nset:s1\r\nslots_owned:8192\r\n");
	expect_served(&n, &comes); /* its slot is this set's now */
	two = key_of_set(&m2, "s2", "two");
	three = key_of_set(&m2, "s3", "three");
	moved += expect_moved(&n, &m2, &two) + expect_moved(&n, &m2, &three);
	expect_map_op(&n, &m2, "n1");

	/* refused, map 2 staying in force: a lower epoch; the same epoch with
	 * other content (also when it names this node otherwise); malformed */
	size_t len_low = doc_make(&n, &s1, other, sizeof(other));
	CU_ASSERT_EQUAL(map_send(&n, "n1", other, len_low, 4, out, sizeof(out)), PM_ADMIN_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "epoch 1"));
	struct doc_spec s2b = { 2, 8191, 12000, "n3" };
	size_t len_eq = doc_make(&n, &s2b, other, sizeof(other));
	CU_ASSERT_EQUAL(map_send(&n, "n1", other, len_eq, 4, out, sizeof(out)), PM_ADMIN_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "other content"));
	CU_ASSERT_EQUAL(map_send(&n, "n2", other, len_eq, 4, out, sizeof(out)), PM_ADMIN_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "other content"));
	moved += expect_moved(&n, &m2, &two);
	expect_malformed(&n, text, len2 - 1, 3); /* no '\n' after the last line */
	memcpy(other, text, len2);
	char *at = strstr(other, "set=s2\n");
	CU_ASSERT_FATAL(at != NULL);
	at[5] = '9'; /* a range of an undeclared set */
	expect_malformed(&n, other, len2, 3);
	memcpy(other, text, len2);
	memcpy(strstr(other, "epoch=2"), "epoch=0", 7);
	expect_malformed(&n, other, len2, 3);
	moved += expect_moved(&n, &m2, &three);
	expect_map_op(&n, &m2, "n1");

	/* not a node name: refused */
	CU_ASSERT_EQUAL(map_send(&n, "N1", text, len2, 4, out, sizeof(out)), PM_ADMIN_ERROR);
	CU_ASSERT_EQUAL(map_send(&n, "n1234567890123456", text, len2, 4, out, sizeof(out)),
			PM_ADMIN_ERROR);

	/* the most CLUSTER MAP carries: every part full (read whole, refused by
	 * the parser); more parts than the protocol's arguments, or a part past
	 * PM_ADMIN_ARG_BYTES_MAX, is refused whole (USAGE) */
	size_t most = MAP_PARTS_MAX * PM_ADMIN_ARG_BYTES_MAX;
	memset(other, 'x', most);
	memcpy(other, text, len2);
	other[most - 1] = '\n';
	expect_malformed(&n, other, most, 0);
	const char *head[] = { "CLUSTER", "MAP", "n1" };
	size_t lens[PM_ADMIN_ARGS_MAX + 1];
	for (uint32_t i = 0; i <= PM_ADMIN_ARGS_MAX; i++)
		lens[i] = PM_ADMIN_ARG_BYTES_MAX;
	CU_ASSERT_EQUAL(admin_raw(&n, PM_ADMIN_ARGS_MAX + 1, head, 3, lens, '\n', out, sizeof(out)),
			PM_ADMIN_USAGE);
	lens[5] = PM_ADMIN_ARG_BYTES_MAX + 1;
	CU_ASSERT_EQUAL(admin_raw(&n, 6, head, 3, lens, '\n', out, sizeof(out)), PM_ADMIN_USAGE);
	expect_still(&n, &m2, &two);
	moved += KEYED_OPS;

	/* the same map again, in other parts: OK, nothing changes */
	CU_ASSERT_EQUAL(map_send(&n, "n1", text, len2, 2, out, sizeof(out)), PM_ADMIN_OK);
	CU_ASSERT_STRING_EQUAL(out, "map_epoch:2\r\nset:s1\r\nslots_owned:8192\r\n");
	expect_map_op(&n, &m2, "n1");
	expect_served(&n, &own);
	expect_moved_count(&n, moved);

	/* the same map as a node it does not name: no set, every key MOVED */
	CU_ASSERT_EQUAL(map_send(&n, "n9", text, len2, 4, out, sizeof(out)), PM_ADMIN_OK);
	CU_ASSERT_STRING_EQUAL(out, "map_epoch:2\r\nset:-\r\nslots_owned:0\r\n");
	expect_map_op(&n, &m2, "n9");
	moved += expect_moved(&n, &m2, &own);
	CU_ASSERT_EQUAL(status_field(&n, "slots_owned"), 0);
	expect_moved_count(&n, moved);
	node_free(&n);
}

/* ---------------------------------------------------------------- persistence */

static void file_write(const char *dir, const char *name, const void *p, size_t len)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT(fwrite(p, 1, len, f) == len);
	CU_ASSERT(fclose(f) == 0);
}

/* A start refused because of data_dir/cluster.map, saying so (and says, has
 * when not NULL). */
static void expect_refused_start(struct node *n, const char *says)
{
	wire_close(&n->c);
	bool up = pomaid_start(&n->pm, NULL, NULL);
	bool named = strstr(n->pm.proc.out, "cluster.map") != NULL;
	bool said = !says || strstr(n->pm.proc.out, says) != NULL;
	if (up || !named || !said)
		printf("\n  a corrupt cluster.map: %s; it said: %s (wanted \"%s\")",
		       up ? "started" : "refused", n->pm.proc.out, says ? says : "");
	CU_ASSERT(!up);
	CU_ASSERT(named && said);
	CU_ASSERT(n->pm.proc.reaped && proc_exit_code(&n->pm.proc) > 0);
	if (up)
		pomaid_kill(&n->pm);
}

static void test_restart(void)
{
	static char text[DOC_BYTES], broken[DOC_BYTES];
	static struct pm_cmap m;
	static struct node n;
	struct pm_reply_view rv;
	char out[1024], word[32];
	uint8_t before[PM_CMAP_WIRE_BYTES_MAX], body[64];
	size_t blen, len;
	node_up(&n);
	struct doc_spec s = { 7, 9000, 12000, "n3" };
	size_t tlen = doc_make(&n, &s, text, sizeof(text));
	doc_parse(text, tlen, &m);
	CU_ASSERT_EQUAL(map_send(&n, "n1", text, tlen, 5, out, sizeof(out)), PM_ADMIN_OK);
	CU_ASSERT_EQUAL(lease(&n, boot_ms() + LEASE_LONG_MS, out, sizeof(out)), PM_ADMIN_OK);
	struct key own = key_of_set(&m, "s1", "own"), two = key_of_set(&m, "s2", "two"),
		   three = key_of_set(&m, "s3", "three");
	CU_ASSERT_EQUAL(call_st(&n, PM_OP_SET, own.text), PM_WIRE_OK);
	CU_ASSERT_EQUAL(map_op(&n, before, sizeof(before), &blen), PM_WIRE_OK);

	/* SIGKILL, and a start on the same directory: the map is back, the
	 * lease is not */
	CU_ASSERT_FATAL(pomaid_kill(&n.pm));
	CU_ASSERT_FATAL(node_start(&n, NULL));
	CU_ASSERT_PTR_NOT_NULL(strstr(n.pm.proc.out, "map epoch 7"));
	expect_map_op(&n, &m, "n1");
	uint8_t after[PM_CMAP_WIRE_BYTES_MAX];
	CU_ASSERT_EQUAL(map_op(&n, after, sizeof(after), &len), PM_WIRE_OK);
	CU_ASSERT(len == blen && memcmp(after, before, len) == 0);
	CU_ASSERT_EQUAL(expect_moved(&n, &m, &two), KEYED_OPS);
	CU_ASSERT_EQUAL(expect_moved(&n, &m, &three), KEYED_OPS);
	CU_ASSERT_EQUAL(ctl_admin(n.sock, "CLUSTER STATUS", out, sizeof(out)), PM_ADMIN_OK);
	CU_ASSERT_EQUAL(info_text_field(out, NULL, "map_epoch"), 7);
	CU_ASSERT(info_text_word(out, NULL, "node", word, sizeof(word)) && !strcmp(word, "n1"));
	CU_ASSERT(info_text_word(out, NULL, "set", word, sizeof(word)) && !strcmp(word, "s1"));
	CU_ASSERT_EQUAL(info_text_field(out, NULL, "slots_owned"), 9001);
	CU_ASSERT_EQUAL(info_text_field(out, NULL, "write_lease_ms"), 0);
	CU_ASSERT_EQUAL(info_text_field(out, NULL, "moved_replies"), 2 * KEYED_OPS);
	expect_fenced(&n, own.text);
	CU_ASSERT_EQUAL(call(&n, PM_OP_GET, own.text, &rv), PM_WIRE_OK); /* from the log */
	CU_ASSERT_EQUAL(lease(&n, boot_ms() + LEASE_LONG_MS, out, sizeof(out)), PM_ADMIN_OK);
	CU_ASSERT_EQUAL(call_st(&n, PM_OP_DEL, own.text), PM_WIRE_OK);
	/* an older map is still refused: the epoch held came back too */
	struct doc_spec older = { 6, 9000, 12000, "n3" };
	size_t olen = doc_make(&n, &older, broken, sizeof(broken));
	CU_ASSERT_EQUAL(map_send(&n, "n1", broken, olen, 5, out, sizeof(out)), PM_ADMIN_ERROR);

	/* a corrupt cluster.map: the start is refused, naming it and why */
	CU_ASSERT_FATAL(pomaid_kill(&n.pm));
	static struct pm_cmap scratch;
	char why[256];
	int hlen = snprintf(broken, sizeof(broken), "self n1\n");
	memcpy(broken + hlen, text, tlen);
	memcpy(strstr(broken, "last=16383"), "last=16384", 10);
	CU_ASSERT_FATAL(pm_cmap_parse(broken + hlen, tlen, &scratch, why, sizeof(why)) != 0);
	file_write(n.pm.dir, "cluster.map", broken, (size_t)hlen + tlen);
	expect_refused_start(&n, why);
	file_write(n.pm.dir, "cluster.map", broken, (size_t)hlen + tlen / 2); /* cut short */
	expect_refused_start(&n, NULL);
	file_write(n.pm.dir, "cluster.map", "\x7f" "ELF garbage", 12);
	expect_refused_start(&n, NULL);
	file_write(n.pm.dir, "cluster.map", "", 0);
	expect_refused_start(&n, NULL);

	/* removed: a start with no map, as pomaid's message says to do */
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/cluster.map", n.pm.dir);
	CU_ASSERT(unlink(path) == 0);
	CU_ASSERT_FATAL(node_start(&n, NULL));
	CU_ASSERT_EQUAL(map_op(&n, body, sizeof(body), &len), PM_WIRE_NOT_FOUND);
	CU_ASSERT_EQUAL(status_field(&n, "map_epoch"), 0);
	CU_ASSERT_EQUAL(call_st(&n, PM_OP_GET, two.text), PM_WIRE_NOT_FOUND);
	node_free(&n);
}

/* ---------------------------------------------------------------- a promoted replica */

/* B follows A, then is promoted; without its write lease it answers writes
 * READONLY naming no primary (the one it followed is not where writes go). */
static void test_promoted(void)
{
	static struct node a, b;
	struct pm_reply_view rv;
	char out[4096], words[64];
	leftovers_remove();
	node_init(&a, cluster_flags);
	CU_ASSERT_FATAL(node_start(&a, NULL));
	node_init(&b, cluster_flags);
	CU_ASSERT_FATAL(node_start(&b, NULL));
	CU_ASSERT_EQUAL(lease(&a, boot_ms() + LEASE_LONG_MS, out, sizeof(out)), PM_ADMIN_OK);
	CU_ASSERT_EQUAL(call_st(&a, PM_OP_SET, "promo"), PM_WIRE_OK);
	snprintf(words, sizeof(words), "REPLICATION FOLLOW 127.0.0.1:%u", a.pm.repl_port);
	CU_ASSERT_EQUAL_FATAL(ctl_admin(b.sock, words, out, sizeof(out)), PM_ADMIN_OK);
	/* a replica's READONLY names A once its shards have reached it */
	uint64_t deadline = proc_now_ms() + WAIT_MS;
	bool named = false;
	while (!named && proc_now_ms() < deadline) {
		named = call(&b, PM_OP_SET, "promo", &rv) == PM_WIRE_E_READONLY &&
			rv.primary.addr_be == htonl(INADDR_LOOPBACK) &&
			rv.primary.udp_port == a.pm.base && rv.primary.tcp_port == a.pm.base - 1u;
		if (!named)
			proc_pause_ms(PROC_POLL_MS);
	}
	CU_ASSERT_FATAL(named);
	CU_ASSERT_EQUAL_FATAL(ctl_admin(b.sock, "REPLICATION PROMOTE", out, sizeof(out)),
			      PM_ADMIN_OK);
	expect_fenced(&b, "promo");
	CU_ASSERT_EQUAL(lease(&b, boot_ms() + LEASE_LONG_MS, out, sizeof(out)), PM_ADMIN_OK);
	CU_ASSERT_EQUAL(call_st(&b, PM_OP_SET, "promo"), PM_WIRE_OK);
	node_free(&b);
	node_free(&a);
}

/* ---------------------------------------------------------------- users in a cluster (issue 19) */

/* Users of the cluster test, the same on both nodes (as pomai-control
 * pushes them): a writer, a reader, an admin. */
#define CU_RW 1u
#define CU_RO 2u
#define CU_ADMIN 3u
/* Keys and vectors the cluster client writes per transport: enough that
 * both sets get several (half the slots each). */
#define CLUSTER_KEYS 16u

static const char *const auth_on[] = { "--auth", "on", NULL };
static uint8_t cu_key[4][PM_AUTH_USER_KEY_BYTES]; /* [user id] */

/* Both nodes' map: n1 is s1's primary (slots 0..8191), n2 s2's (the rest). */
static size_t doc_two(const struct node *a, const struct node *b, char *out, size_t cap)
{
	int len = snprintf(out, cap,
		"pomai-map version=1 epoch=1\n"
		"set name=s1 epoch=1 primary=n1\n"
		"set name=s2 epoch=1 primary=n2\n"
		"node name=n1 set=s1 addr=127.0.0.1 udp=%u tcp=%u repl=%u shards=%u\n"
		"node name=n2 set=s2 addr=127.0.0.1 udp=%u tcp=%u repl=%u shards=%u\n"
		"slots first=0 last=8191 set=s1\n"
		"slots first=8192 last=16383 set=s2\n",
		a->pm.base, a->pm.base - 1u, a->pm.repl_port, SHARDS, b->pm.base, b->pm.base - 1u,
		b->pm.repl_port, SHARDS);
	CU_ASSERT_FATAL(len > 0 && (size_t)len < cap);
	return (size_t)len;
}

/* A node of the two: auth = on, the map (as self), a long lease, the users. */
static void auth_node_up(struct node *n, const char *self, const char *doc, size_t len)
{
	static const char *const users[4] = { NULL, "rw read,write", "ro read", "boss read,write,admin" };
	char out[1024], words[256], hex[2 * PM_AUTH_MAC_KEY_BYTES + 1];
	CU_ASSERT_EQUAL_FATAL(map_send(n, self, doc, len, 0, out, sizeof(out)), PM_ADMIN_OK);
	CU_ASSERT_EQUAL_FATAL(lease(n, boot_ms() + LEASE_LONG_MS, out, sizeof(out)), PM_ADMIN_OK);
	for (uint32_t u = CU_RW; u <= CU_ADMIN; u++) {
		uint8_t mac[PM_AUTH_MAC_KEY_BYTES];
		pm_auth_derive(cu_key[u], mac);
		pm_auth_hex(mac, sizeof(mac), hex);
		snprintf(words, sizeof(words), "USER ADD %s %s id=%u", users[u], hex, u);
		CU_ASSERT_EQUAL_FATAL(ctl_admin(n->sock, words, out, sizeof(out)), PM_ADMIN_OK);
	}
}

/* A cluster client seeded at n as user (key: that of key_of), or its open
 * status in *st. */
static struct pm_client *cluster_client(const struct node *n, bool tcp, uint32_t user,
					uint32_t key_of, enum pm_client_status *st)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.host = "127.0.0.1";
	cfg.base_port = n->pm.base;
	cfg.transport = tcp ? PM_CLIENT_TCP : PM_CLIENT_UDP;
	cfg.cluster = true;
	cfg.timeout_ms = 1000;
	cfg.retries = 3;
	cfg.user = user;
	memcpy(cfg.key, cu_key[key_of], sizeof(cfg.key));
	struct pm_client *c = NULL;
	*st = pm_client_open(&cfg, &c);
	return c;
}

/* An INFO dataplane counter of a node (summed over its workers). */
static long long dp_counter(const struct node *n, const char *name)
{
	static char text[1u << 19];
	if (ctl_admin(n->sock, "INFO dataplane", text, sizeof(text)) != PM_ADMIN_OK)
		return -1;
	return info_text_field(text, NULL, name);
}

/* The writer over one transport: keys of both sets written and read back,
 * vectors on both, a KNN (a leg per set) finding every one of them. */
static void cluster_rw(const struct node *seed, bool tcp, const struct pm_cmap *m)
{
	enum pm_client_status st;
	struct pm_client *c = cluster_client(seed, tcp, CU_RW, CU_RW, &st);
	CU_ASSERT_EQUAL_FATAL(st, PM_CLIENT_OK);
	uint32_t per_set[2] = { 0, 0 }; /* vectors */
	for (uint32_t i = 0; i < CLUSTER_KEYS; i++) {
		char k[24], vk[24], v[24], got[24];
		int kn = snprintf(k, sizeof(k), "%s%u", tcp ? "t" : "u", i);
		int vkn = snprintf(vk, sizeof(vk), "%sv%u", tcp ? "t" : "u", i);
		int vn = snprintf(v, sizeof(v), "value%u", i);
		size_t glen = 0;
		CU_ASSERT_EQUAL(pm_client_set(c, k, (size_t)kn, v, (size_t)vn, 0), PM_CLIENT_OK);
		CU_ASSERT_EQUAL(pm_client_get(c, k, (size_t)kn, got, sizeof(got), &glen),
				PM_CLIENT_OK);
		CU_ASSERT(glen == (size_t)vn && memcmp(got, v, glen) == 0);
		const float vec[DIM] = { (float)i, tcp ? 1.0f : 0.0f, 0, 0 };
		per_set[m->slot_set[pm_slot_of(pm_route_hash(vk, (size_t)vkn))]]++;
		CU_ASSERT_EQUAL(pm_client_vadd(c, vk, (size_t)vkn, vec, DIM, NULL, 0), PM_CLIENT_OK);
	}
	CU_ASSERT(per_set[0] > 0 && per_set[1] > 0); /* both nodes hold vectors */
	struct pm_client_hit hits[2 * CLUSTER_KEYS];
	uint8_t keys[2 * CLUSTER_KEYS * 24];
	struct pm_client_knn_result r = { .hits = hits, .hits_cap = 2 * CLUSTER_KEYS,
					  .keys = keys, .keys_cap = sizeof(keys) };
	struct pm_client_knn_opts o = { .k = 2 * CLUSTER_KEYS, .exact = true };
	const float q[DIM] = { 0, tcp ? 1.0f : 0.0f, 0, 0 };
	CU_ASSERT_EQUAL(pm_client_knn(c, q, DIM, &o, &r), PM_CLIENT_OK);
	uint32_t mine[2] = { 0, 0 }; /* this transport's keys found, per set */
	for (uint32_t i = 0; i < r.count; i++)
		if (hits[i].key[0] == (tcp ? 't' : 'u'))
			mine[m->slot_set[pm_slot_of(pm_route_hash(hits[i].key, hits[i].klen))]]++;
	CU_ASSERT_EQUAL(mine[0], per_set[0]);
	CU_ASSERT_EQUAL(mine[1], per_set[1]);
	/* a fan-out write needs admin: the writer's legs are refused NOPERM */
	struct pm_client_coll_params p = { .dim = DIM };
	CU_ASSERT_EQUAL(pm_client_collection_create(c, "cauth", &p), PM_CLIENT_E_NOPERM);
	pm_client_close(c);
}

/* libpomai in cluster mode with a user: over UDP every frame (the MAP
 * requests and each leg of a fan-out) is signed for its node with its own
 * seq, over TCP each node's stream proves the user once. Reads, writes and a
 * KNN across both nodes; a wrong key refused at open; a reader's writes and
 * fan-out writes NOPERM; an admin's fan-out write reaches both nodes; no
 * frame was refused as a replay. */
static void test_cluster_users(void)
{
	static struct node a, b;
	static char doc[4096];
	struct pm_cmap m;
	leftovers_remove();
	CU_ASSERT_FATAL(pm_auth_init() == 0);
	for (uint32_t u = CU_RW; u <= CU_ADMIN; u++)
		pm_auth_random(cu_key[u], PM_AUTH_USER_KEY_BYTES);
	node_init(&a, cluster_flags);
	node_init(&b, cluster_flags);
	CU_ASSERT_FATAL(node_start(&a, auth_on) && node_start(&b, auth_on));
	size_t len = doc_two(&a, &b, doc, sizeof(doc));
	doc_parse(doc, len, &m);
	auth_node_up(&a, "n1", doc, len);
	auth_node_up(&b, "n2", doc, len);
	for (int tcp = 0; tcp < 2; tcp++) {
		enum pm_client_status st;
		cluster_rw(&a, tcp, &m);
		/* the writer's id with the reader's key: every node refuses it */
		struct pm_client *c = cluster_client(&b, tcp, CU_RW, CU_RO, &st);
		CU_ASSERT_EQUAL(st, PM_CLIENT_E_AUTH);
		CU_ASSERT_PTR_NULL(c);
		c = cluster_client(&b, tcp, CU_RO, CU_RO, &st);
		CU_ASSERT_EQUAL_FATAL(st, PM_CLIENT_OK);
		char v[24];
		size_t vlen = 0;
		CU_ASSERT_EQUAL(pm_client_get(c, "u0", 2, v, sizeof(v), &vlen), PM_CLIENT_OK);
		CU_ASSERT_EQUAL(pm_client_set(c, "u0", 2, "x", 1, 0), PM_CLIENT_E_NOPERM);
		struct pm_client_coll_params p = { .dim = DIM };
		CU_ASSERT_EQUAL(pm_client_collection_create(c, "cauth", &p), PM_CLIENT_E_NOPERM);
		pm_client_close(c);
		/* the admin's fan-out write: a leg per set, both accepted */
		c = cluster_client(&a, tcp, CU_ADMIN, CU_ADMIN, &st);
		CU_ASSERT_EQUAL_FATAL(st, PM_CLIENT_OK);
		bool removed = false;
		CU_ASSERT_EQUAL(pm_client_collection_create(c, "cauth", &p), PM_CLIENT_OK);
		CU_ASSERT_EQUAL(pm_client_collection_drop(c, "cauth", &removed), PM_CLIENT_OK);
		CU_ASSERT(removed);
		pm_client_close(c);
	}
	CU_ASSERT(dp_counter(&b, "auth_refused_bad") > 0); /* the wrong key, at the seed */
	const struct node *both[2] = { &a, &b };
	for (uint32_t i = 0; i < 2; i++) {
		CU_ASSERT(dp_counter(both[i], "auth_ok") > 0);       /* UDP frames were signed */
		CU_ASSERT(dp_counter(both[i], "auth_proved") > 0);   /* TCP streams proved */
		CU_ASSERT_EQUAL(dp_counter(both[i], "auth_refused_replay"), 0);
		CU_ASSERT_EQUAL(dp_counter(both[i], "auth_refused_required"), 0);
	}
	node_free(&b);
	node_free(&a);
}

int main(int argc, char **argv)
{
	if (argc < 2 || access(argv[1], X_OK) != 0) {
		fprintf(stderr, "usage: test_cluster_node PATH-TO-POMAID\n");
		return 1;
	}
	pomaid_path = argv[1];
	static CU_TestInfo tests[] = {
		{ "config: cluster = on needs the log and a repl_port; CLUSTER is USAGE when off",
		  test_config },
		{ "the write lease: none at start, writes until its deadline, 0 fences at once",
		  test_lease },
		{ "the map: MOVED as it says, MAP is its wire form, refusals keep it", test_map },
		{ "SIGKILL: the map is back from cluster.map, the lease is not; corrupt: refused",
		  test_restart },
		{ "a promoted replica without its lease: READONLY names no primary", test_promoted },
		{ "users: libpomai in cluster mode signs every leg (UDP) or proves each stream (TCP)",
		  test_cluster_users },
		CU_TEST_INFO_NULL,
	};
	int rc = pm_cu_run("cluster_node", tests);
	leftovers_remove();
	return rc;
}
