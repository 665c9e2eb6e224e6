/* SPDX-License-Identifier: MIT
 *
 * test_auth.c — who may speak (issue 19; dataplane/users.h, docs/protocol.md
 * §14.3-14.4). Two parts:
 *  - the pieces alone: the users file (parse, format, a looser mode
 *    refused), the replay table (replays, reordering inside the window, a
 *    seq below it, a full table of live sessions BUSY, a forgotten session's
 *    slot reused only after 2 x skew), and the rights of every op;
 *  - a real pomaid (argv[1]) with auth = on, 2 shards, on free loopback
 *    ports, whose users file the test writes (mode 0600): over UDP a frame
 *    without a user, with a wrong key, a truncated MAC, a replay, a replay
 *    from another source address (a stolen frame), reordered frames, a
 *    stale clock and another port's frame are refused with their reason and
 *    counted; rights give NOPERM; INFO's per-client section is an admin's;
 *    over TCP HELLO/PROVE makes the stream its user's; USER ADD and USER
 *    RELOAD change the users without a restart; a users file with a looser
 *    mode is refused at RELOAD and the users in use are kept.
 *
 * Frames are signed here with proto/auth.h, as libpomai signs them. The
 * daemon is waited for by its ready line, counters by bounded polls.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "byteorder.h"
#include "bridge.h"
#include "ctl.h"
#include "cu_main.h"
#include "frames.h"
#include "pomai.h"
#include "proc.h"
#include "stats.h"
#include "stats_seg.h"
#include "users.h"

#define LOOPBACK "127.0.0.1"
#define THIEF "127.0.0.9"
#define SHARDS 2u
/* Users of the daemon's file: a writer, a reader limited to keys "r:", an
 * admin. */
#define U_RW 1u
#define U_RO 2u
#define U_ADMIN 3u
/* How long a reply may take (a loaded machine). */
#define REPLY_MS 3000
/* INFO polls until a counter another worker bumps shows. */
#define COUNTER_WAIT_MS 10000

static struct pomaid srv = {
	.flags = (const char *const[]){ "--arena-bytes", "32M", "--seeds", "4096", "--wal", "batch",
					"--auth", "on", NULL },
};
static uint8_t user_key[4][PM_AUTH_USER_KEY_BYTES]; /* [id] */
static uint8_t mac_key[4][PM_AUTH_MAC_KEY_BYTES];
static uint32_t session;
static uint64_t seq;

/* ---------------------------------------------------------------- the pieces alone */

static void test_users_file(void)
{
	const char *text = "# users\n"
			   "2 bob read key=r: key=s:\n"
			   "1 alice read,write,admin 00112233445566778899aabbccddeeff coll=c_\n";
	char err[256], out[4096];
	struct pm_users *t = pm_users_parse(text, strlen(text), err, sizeof(err));
	CU_ASSERT_PTR_NULL(t); /* bob's line has no MAC key: refused, naming the line */
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 2"));
	text = "2 bob read 000102030405060708090a0b0c0d0e0f key=r: key=s:\n"
	       "1 alice read,write,admin 00112233445566778899aabbccddeeff coll=c_\n";
	t = pm_users_parse(text, strlen(text), err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(t->n, 2);
	CU_ASSERT_EQUAL(t->u[0].id, 1); /* sorted by id */
	CU_ASSERT_EQUAL(t->u[0].rights, PM_RIGHTS_ALL);
	CU_ASSERT_EQUAL(t->u[1].nkey, 2);
	CU_ASSERT_PTR_EQUAL(pm_users_find(t, 2), &t->u[1]);
	CU_ASSERT_PTR_NULL(pm_users_find(t, 3));
	CU_ASSERT_EQUAL(pm_users_free_id(t), 3);
	size_t n = pm_users_format(t, out, sizeof(out));
	CU_ASSERT(n > 0);
	struct pm_users *back = pm_users_parse(out, n, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	CU_ASSERT_EQUAL(back->n, 2);
	CU_ASSERT_EQUAL(memcmp(back->u, t->u, 2 * sizeof(t->u[0])), 0);
	free(back);
	static const char *const bad[] = { "1 a read 00112233445566778899aabbccddeeff\n"
					   "1 b read 00112233445566778899aabbccddeeff\n",
					   "1 a read 00112233445566778899aabbccddeeff\n"
					   "2 a read 00112233445566778899aabbccddeeff\n",
					   "0 a read 00112233445566778899aabbccddeeff\n",
					   "70000 a read 00112233445566778899aabbccddeeff\n",
					   "1 a fly 00112233445566778899aabbccddeeff\n",
					   "1 a read 0011\n",
					   "1 a read 00112233445566778899aabbccddeeff pre=x\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pm_users *x = pm_users_parse(bad[i], strlen(bad[i]), err, sizeof(err));
		CU_ASSERT_PTR_NULL(x);
		free(x);
	}
	/* the file: saved 0600; a looser mode refused with what to do */
	char dir[] = "/tmp/pomai-auth-XXXXXX";
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct pm_users *got = NULL;
	CU_ASSERT_EQUAL(pm_users_load(dfd, &got, err, sizeof(err)), 0); /* none: empty */
	CU_ASSERT_EQUAL(got ? got->n : 99, 0);
	free(got);
	CU_ASSERT_EQUAL(pm_users_save(dfd, t, err, sizeof(err)), 0);
	struct stat sb;
	CU_ASSERT_EQUAL(fstatat(dfd, PM_USERS_FILE, &sb, 0), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
	CU_ASSERT_EQUAL(pm_users_load(dfd, &got, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(got ? got->n : 0, 2);
	free(got);
	CU_ASSERT_EQUAL(fchmodat(dfd, PM_USERS_FILE, 0640, 0), 0);
	got = NULL;
	CU_ASSERT_EQUAL(pm_users_load(dfd, &got, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "chmod 600"));
	unlinkat(dfd, PM_USERS_FILE, 0);
	close(dfd);
	rmdir(dir);
	free(t);
}

static void test_replay_table(void)
{
	static struct pm_auth a;
	const uint32_t skew = 30;
	pm_auth_state_init(&a, NULL, 7);
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, 9, 100, 1000, skew), 0);
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, 9, 100, 1000, skew), PM_AUTH_R_REPLAY);
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, 9, 98, 1000, skew), 0);   /* reordered */
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, 9, 99, 1000, skew), 0);
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, 9, 98, 1000, skew), PM_AUTH_R_REPLAY);
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, 9, 100 + 70, 1000, skew), 0); /* across a word */
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, 9, 99, 1000, skew), PM_AUTH_R_REPLAY);
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, 9, 101, 1000, skew), 0);
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, 9, 101, 1000, skew), PM_AUTH_R_REPLAY);
	/* 170 - 128 = 42: the oldest the window keeps is 43 */
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, 9, 170 - PM_AUTH_REPLAY_WINDOW, 1000, skew),
			PM_AUTH_R_REPLAY);
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, 9, 170 - PM_AUTH_REPLAY_WINDOW + 1, 1000, skew), 0);
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, 9, 10000, 1000, skew), 0); /* far ahead */
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, 9, 171, 1000, skew), PM_AUTH_R_REPLAY);
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 2, 9, 100, 1000, skew), 0); /* another user */
	/* a full table of live sessions: BUSY; once the oldest may be forgotten
	 * (2 x skew idle), its slot is reused */
	pm_auth_state_init(&a, NULL, 7);
	for (uint32_t s = 0; s < PM_AUTH_SESSIONS_MAX; s++)
		CU_ASSERT_EQUAL_FATAL(pm_auth_replay(&a, 1, s, 1, 1000 + s / 1024, skew), 0);
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, PM_AUTH_SESSIONS_MAX, 1, 1003, skew), PM_AUTH_R_BUSY);
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, 5, 2, 1003, skew), 0); /* known: still served */
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, PM_AUTH_SESSIONS_MAX, 1, 1000 + 2 * skew - 1, skew),
			PM_AUTH_R_BUSY);
	CU_ASSERT_EQUAL(pm_auth_replay(&a, 1, PM_AUTH_SESSIONS_MAX, 1, 1000 + 2 * skew, skew), 0);
	CU_ASSERT_EQUAL(a.st.sessions_replaced, 1);
	CU_ASSERT_EQUAL(a.live, PM_AUTH_SESSIONS_MAX);
}

/* The right each op needs, as docs/protocol.md §14.4 lists them; every op. */
static void test_rights_every_op(void)
{
	static const struct {
		uint8_t op;
		uint8_t right;
	} table[] = {
		{ PM_OP_GET, PM_RIGHT_READ },      { PM_OP_VGET, PM_RIGHT_READ },
		{ PM_OP_VQUERY, PM_RIGHT_READ },   { PM_OP_VQUERYB, PM_RIGHT_READ },
		{ PM_OP_VRANGE, PM_RIGHT_READ },   { PM_OP_CLIST, PM_RIGHT_READ },
		{ PM_OP_MAP, PM_RIGHT_READ },      { PM_OP_INFO, PM_RIGHT_READ },
		{ PM_OP_SET, PM_RIGHT_WRITE },     { PM_OP_DEL, PM_RIGHT_WRITE },
		{ PM_OP_VADD, PM_RIGHT_WRITE },    { PM_OP_VADDB, PM_RIGHT_WRITE },
		{ PM_OP_VDEL, PM_RIGHT_WRITE },    { PM_OP_VSETATTR, PM_RIGHT_WRITE },
		{ PM_OP_CCREATE, PM_RIGHT_ADMIN }, { PM_OP_CDROP, PM_RIGHT_ADMIN },
		{ PM_OP_SNAPSHOT, PM_RIGHT_ADMIN },
	};
	uint32_t seen = 0;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		for (uint8_t rights = 0; rights <= PM_RIGHTS_ALL; rights++) {
			struct pm_user u = { .id = 1, .rights = rights };
			struct pm_request req = { .op = table[i].op };
			enum pm_status want = (rights & table[i].right) ? PM_OK : PM_E_NOPERM;
			CU_ASSERT_EQUAL(pm_user_permits(&u, &req), want);
		}
		CU_ASSERT_EQUAL(pm_op_right(table[i].op), table[i].right);
		seen |= 1u << table[i].op;
	}
	/* every op but NONE and AUTH's own is in the table */
	for (uint32_t op = 1; op < PM_OP_COUNT; op++)
		if (op != PM_OP_AUTH_HELLO && op != PM_OP_AUTH_PROVE)
			CU_ASSERT(seen & (1u << op));
	/* prefixes: a key outside, a collection outside */
	struct pm_user u = { .id = 1, .rights = PM_RIGHTS_ALL, .nkey = 1, .ncoll = 1 };
	u.key[0] = (struct pm_user_prefix){ 2, "r:" };
	u.coll[0] = (struct pm_user_prefix){ 2, "c_" };
	struct pm_request get = { .op = PM_OP_GET, .key = { (const uint8_t *)"r:1", 3 } };
	CU_ASSERT_EQUAL(pm_user_permits(&u, &get), PM_OK);
	get.key = (struct pm_bytes){ (const uint8_t *)"x:1", 3 };
	CU_ASSERT_EQUAL(pm_user_permits(&u, &get), PM_E_NOPERM);
	get.key = (struct pm_bytes){ (const uint8_t *)"r", 1 }; /* shorter than the prefix */
	CU_ASSERT_EQUAL(pm_user_permits(&u, &get), PM_E_NOPERM);
	struct pm_request q = { .op = PM_OP_VQUERY, .collection = { (const uint8_t *)"c_a", 3 } };
	CU_ASSERT_EQUAL(pm_user_permits(&u, &q), PM_OK);
	q.collection = (struct pm_bytes){ (const uint8_t *)"d_a", 3 };
	CU_ASSERT_EQUAL(pm_user_permits(&u, &q), PM_E_NOPERM);
	q.collection = (struct pm_bytes){ NULL, 0 }; /* a default collection has no name */
	CU_ASSERT_EQUAL(pm_user_permits(&u, &q), PM_E_NOPERM);
}

/* Start-up: a users file others may read stops pomaid with what to do; a
 * pomaid listening beyond loopback with auth = off says so, with auth = on
 * it does not. */
static void test_startup(void)
{
	static const char *const flags[] = { "--arena-bytes", "16M", "--seeds", "1024", "--wal",
					     "none", NULL };
	static struct pomaid p = { .shards = 1, .flags = flags };
	char path[PATH_MAX + 16];
	p.path = srv.path;
	CU_ASSERT_FATAL(proc_dir_make(p.dir, "auth-start"));
	snprintf(path, sizeof(path), "%s/users", p.dir);
	FILE *f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	fprintf(f, "1 a read 00112233445566778899aabbccddeeff\n");
	fclose(f);
	CU_ASSERT_EQUAL(chmod(path, 0644), 0);
	CU_ASSERT(!pomaid_start(&p, NULL, NULL));
	CU_ASSERT_PTR_NOT_NULL(strstr(p.proc.out, "chmod 600"));
	CU_ASSERT_EQUAL(chmod(path, 0600), 0);
	static const char *const any_off[] = { "--bind", "0.0.0.0", NULL };
	static const char *const any_on[] = { "--bind", "0.0.0.0", "--auth", "on", NULL };
	CU_ASSERT_FATAL(pomaid_start(&p, any_off, NULL));
	CU_ASSERT_PTR_NOT_NULL(strstr(p.proc.out, "warning: auth = off on 0.0.0.0"));
	CU_ASSERT(pomaid_stop(&p));
	CU_ASSERT_FATAL(pomaid_start(&p, any_on, NULL));
	CU_ASSERT_PTR_NULL(strstr(p.proc.out, "warning: auth = off"));
	CU_ASSERT(pomaid_stop(&p));
	CU_ASSERT_FATAL(pomaid_start(&p, NULL, NULL)); /* loopback, auth = off: quiet */
	CU_ASSERT_PTR_NULL(strstr(p.proc.out, "warning: auth = off"));
	CU_ASSERT(pomaid_stop(&p));
	proc_dir_remove(p.dir);
}

/* ---------------------------------------------------------------- the daemon */

static void admin_sock(char *out, size_t n)
{
	snprintf(out, n, "%s/admin.sock", srv.dir);
}

/* The users file the daemon starts with, mode 0600: fresh keys. */
static bool write_users(void)
{
	char path[PATH_MAX + 16], text[1024], hex[4][2 * PM_AUTH_MAC_KEY_BYTES + 1];
	for (uint32_t i = 1; i < 4; i++) {
		pm_auth_random(user_key[i], PM_AUTH_USER_KEY_BYTES);
		pm_auth_derive(user_key[i], mac_key[i]);
		pm_auth_hex(mac_key[i], PM_AUTH_MAC_KEY_BYTES, hex[i]);
	}
	snprintf(text, sizeof(text), "1 writer read,write %s\n2 reader read %s key=r:\n3 boss admin,read %s\n",
		 hex[1], hex[2], hex[3]);
	snprintf(path, sizeof(path), "%s/users", srv.dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	bool ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	if (fd >= 0)
		close(fd);
	return ok;
}

static int suite_init(void)
{
	if (pm_auth_init() != 0)
		return -1;
	pm_auth_random(&session, sizeof(session));
	seq = 0;
	snprintf(srv.dir, sizeof(srv.dir), "/tmp/pomai-auth-%d", (int)getpid());
	if (mkdir(srv.dir, 0700) != 0)
		return -1;
	if (!write_users())
		return -1;
	srv.shards = SHARDS;
	return pomaid_start(&srv, NULL, NULL) ? 0 : -1;
}

static int suite_clean(void)
{
	pomaid_stop(&srv);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", srv.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* req encoded and signed as user (key: its MAC key) for shard's port, at
 * time now + dt_s, with the next seq (or `at` when nonzero): its length. */
static size_t sign(struct pm_request *req, uint32_t user, const uint8_t *key, uint16_t port,
		   int64_t dt_s, uint64_t at, uint8_t *out, size_t cap)
{
	size_t n = pm_request_encode(req, out, cap);
	struct pm_auth_trailer t = { .user = user, .session = session, .seq = at ? at : ++seq,
				     .time_s = (uint32_t)((int64_t)time(NULL) + dt_s),
				     .port = port };
	return n ? pm_auth_append(out, n, cap, &t, key) : 0;
}

/* Send n bytes to shard and wait for the reply of id. */
static bool exchange(struct wire *c, uint32_t shard, const uint8_t *p, size_t n, uint64_t id,
		     struct pm_reply_view *rv)
{
	if (!wire_send(c, shard, p, n))
		return false;
	while (wire_recv(c, REPLY_MS, rv))
		if (rv->id == id)
			return true;
	return false;
}

/* A signed request to shard 0 as user u: its reply's status (-1: none). */
static int call_as(struct wire *c, struct pm_request *req, uint32_t u, struct pm_reply_view *rv)
{
	uint8_t f[PM_FRAME_BYTES_MAX];
	req->id = c->next_id++;
	size_t n = sign(req, u, mac_key[u], srv.base, 0, 0, f, sizeof(f));
	if (!n || !exchange(c, 0, f, n, req->id, rv))
		return -1;
	if (rv->status == PM_WIRE_E_RETRY) { /* a reply over an unvalidated address's
					      * budget (issue 19's cookies): wire_recv
					      * kept the cookie; signed anew, as libpomai
					      * does (the same seq would be a replay) */
		n = sign(req, u, mac_key[u], srv.base, 0, 0, f, sizeof(f));
		if (!n || !exchange(c, 0, f, n, req->id, rv))
			return -1;
	}
	return (int)rv->status;
}

/* A counter of INFO dataplane's Total (summed), through the admin socket. */
static long long counter(const char *name)
{
	static char text[1u << 19]; /* a whole INFO text */
	char sock[PATH_MAX + 16], field[64];
	admin_sock(sock, sizeof(sock));
	if (ctl_admin(sock, "INFO dataplane", text, sizeof(text)) != 0)
		return -1;
	snprintf(field, sizeof(field), "\n%s:", name);
	const char *p = strstr(text, field);
	return p ? atoll(p + strlen(field)) : -2;
}

static long long counter_reaches(const char *name, long long want)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long long v;
	do {
		v = counter(name);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (v < want && (t.tv_sec - t0.tv_sec) * 1000 < COUNTER_WAIT_MS);
	return v;
}

static void test_udp_refusals(void)
{
	struct wire c, thief;
	struct pm_reply_view rv;
	uint8_t f[PM_FRAME_BYTES_MAX], stolen[PM_FRAME_BYTES_MAX];
	CU_ASSERT_FATAL(wire_open(&c, LOOPBACK, LOOPBACK, srv.base, 1));
	CU_ASSERT_FATAL(wire_open(&thief, THIEF, LOOPBACK, srv.base, 1));
	long long replays0 = counter("auth_refused_replay");
	long long bad0 = counter("auth_refused_bad");
	long long req0 = counter("auth_refused_required");
	/* no user */
	struct pm_request set = { .op = PM_OP_SET, .id = 1, .key = { (const uint8_t *)"k1", 2 },
				  .value = { (const uint8_t *)"v", 1 } };
	size_t n = pm_request_encode(&set, f, sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 1, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_E_AUTH);
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_REQUIRED);
	/* the writer's signed SET */
	set.id = 2;
	n = sign(&set, U_RW, mac_key[U_RW], srv.base, 0, 0, f, sizeof(f));
	memcpy(stolen, f, n);
	size_t stolen_n = n;
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 2, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
	/* the same bytes again: a replay, from its sender or from another address */
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 2, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_E_AUTH);
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_REPLAY);
	CU_ASSERT_FATAL(exchange(&thief, 0, stolen, stolen_n, 2, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_E_AUTH);
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_REPLAY);
	/* a wrong key: another user's MAC key under the writer's id */
	set.id = 3;
	n = sign(&set, U_RW, mac_key[U_RO], srv.base, 0, 0, f, sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 3, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_E_AUTH);
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_BAD);
	/* a truncated MAC: the frame one byte shorter (body_len too) */
	set.id = 4;
	n = sign(&set, U_RW, mac_key[U_RW], srv.base, 0, 0, f, sizeof(f));
	struct pm_frame_header h;
	CU_ASSERT_EQUAL_FATAL(pm_header_decode(f, n, &h), PM_WIRE_OK);
	uint32_t bl = h.body_len - 1u;
	pm_put_le32(f + 16, bl); /* body_len (docs/protocol.md §3) */
	CU_ASSERT_FATAL(exchange(&c, 0, f, n - 1, 4, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_E_AUTH);
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_BAD);
	/* another port's frame (shard 1's) sent to shard 0 */
	set.id = 5;
	n = sign(&set, U_RW, mac_key[U_RW], (uint16_t)(srv.base + 1), 0, 0, f, sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 5, &rv));
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_BAD);
	/* a stale clock */
	set.id = 6;
	n = sign(&set, U_RW, mac_key[U_RW], srv.base, -1000, 0, f, sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 6, &rv));
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_CLOCK);
	/* reordered: seq s+2 then s+1 both served; s+1 again refused */
	uint64_t s = seq;
	struct pm_request get = { .op = PM_OP_GET, .id = 7, .key = { (const uint8_t *)"k1", 2 } };
	n = sign(&get, U_RW, mac_key[U_RW], srv.base, 0, s + 2, f, sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 7, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
	get.id = 8;
	n = sign(&get, U_RW, mac_key[U_RW], srv.base, 0, s + 1, f, sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 8, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 8, &rv));
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_REPLAY);
	seq = s + 2;
	/* a seq below the window */
	get.id = 9;
	n = sign(&get, U_RW, mac_key[U_RW], srv.base, 0, s + 3 + PM_AUTH_REPLAY_WINDOW, f,
		 sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 9, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
	get.id = 10;
	n = sign(&get, U_RW, mac_key[U_RW], srv.base, 0, s + 3, f, sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 10, &rv));
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_REPLAY);
	seq = s + 3 + PM_AUTH_REPLAY_WINDOW;
	/* counted, per reason */
	CU_ASSERT(counter_reaches("auth_refused_replay", replays0 + 4) >= replays0 + 4);
	CU_ASSERT(counter_reaches("auth_refused_bad", bad0 + 3) >= bad0 + 3);
	CU_ASSERT(counter_reaches("auth_refused_required", req0 + 1) >= req0 + 1);
	CU_ASSERT(counter("auth_refused_clock") >= 1);
	wire_close(&c);
	wire_close(&thief);
}

static void test_rights(void)
{
	struct wire c;
	struct pm_reply_view rv;
	CU_ASSERT_FATAL(wire_open(&c, LOOPBACK, LOOPBACK, srv.base, 100));
	struct pm_request set = { .op = PM_OP_SET, .key = { (const uint8_t *)"r:1", 3 },
				  .value = { (const uint8_t *)"v", 1 } };
	CU_ASSERT_EQUAL(call_as(&c, &set, U_RO, &rv), PM_WIRE_E_NOPERM); /* read only */
	CU_ASSERT_EQUAL(call_as(&c, &set, U_RW, &rv), PM_WIRE_OK);
	struct pm_request get = { .op = PM_OP_GET, .key = { (const uint8_t *)"r:1", 3 } };
	CU_ASSERT_EQUAL(call_as(&c, &get, U_RO, &rv), PM_WIRE_OK);
	get.key = (struct pm_bytes){ (const uint8_t *)"k1", 2 }; /* outside r: */
	CU_ASSERT_EQUAL(call_as(&c, &get, U_RO, &rv), PM_WIRE_E_NOPERM);
	struct pm_request snap = { .op = PM_OP_SNAPSHOT };
	CU_ASSERT_EQUAL(call_as(&c, &snap, U_RW, &rv), PM_WIRE_E_NOPERM); /* admin's */
	struct pm_request cc = { .op = PM_OP_CCREATE, .collection = { (const uint8_t *)"c1", 2 },
				 .params = { .dim = 4 } };
	CU_ASSERT_EQUAL(call_as(&c, &cc, U_RW, &rv), PM_WIRE_E_NOPERM);
	/* INFO: the per-client section is the admin's alone */
	struct pm_request info = { .op = PM_OP_INFO, .section = { (const uint8_t *)"dataplane", 9 } };
	c.whole = true;
	CU_ASSERT_EQUAL_FATAL(call_as(&c, &info, U_RO, &rv), PM_WIRE_OK);
	CU_ASSERT_PTR_NULL(memmem(rv.value.ptr, rv.value.len, "user_", 5));
	CU_ASSERT_PTR_NOT_NULL(memmem(rv.value.ptr, rv.value.len, "auth_ok:", 8));
	CU_ASSERT_EQUAL_FATAL(call_as(&c, &info, U_ADMIN, &rv), PM_WIRE_OK);
	CU_ASSERT_PTR_NOT_NULL(memmem(rv.value.ptr, rv.value.len, "user_", 5)); /* keyed by user */
	CU_ASSERT_PTR_NULL(memmem(rv.value.ptr, rv.value.len, "client_127", 10));
	CU_ASSERT(counter_reaches("auth_noperm", 4) >= 4);
	/* CLIENTS: the quota table's clients are users */
	char sock[PATH_MAX + 16], text[4096];
	admin_sock(sock, sizeof(sock));
	CU_ASSERT_EQUAL(ctl_admin(sock, "CLIENTS 64", text, sizeof(text)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "# user_1\r\n"));
	CU_ASSERT_PTR_NULL(strstr(text, "# 127.0.0.1\r\n"));
	wire_close(&c);
}

/* Every op over the wire, as a user without rights, as one with only the
 * others, and as one with the op's right (docs/protocol.md §14.4): NOPERM,
 * NOPERM, then anything but NOPERM; a refused write changed nothing. */
static void add_user(const char *name, const char *rights, uint32_t id, uint8_t *mac)
{
	char sock[PATH_MAX + 16], cmd[256], text[256], hex[2 * PM_AUTH_MAC_KEY_BYTES + 1];
	uint8_t key[PM_AUTH_USER_KEY_BYTES];
	admin_sock(sock, sizeof(sock));
	pm_auth_random(key, sizeof(key));
	pm_auth_derive(key, mac);
	pm_auth_hex(mac, PM_AUTH_MAC_KEY_BYTES, hex);
	snprintf(cmd, sizeof(cmd), "USER ADD %s %s %s id=%u", name, rights, hex, id);
	CU_ASSERT_EQUAL(ctl_admin(sock, cmd, text, sizeof(text)), 0);
}

/* A wire request of op, encoded, signed as user: its reply's status. */
static int wire_as(struct wire *c, struct pm_wire_request *r, uint32_t user, const uint8_t *mac)
{
	uint8_t f[PM_FRAME_BYTES_MAX];
	struct pm_reply_view rv;
	r->id = c->next_id++;
	size_t n = pm_wire_request_encode(r, f, sizeof(f));
	struct pm_auth_trailer t = { .user = user, .session = session, .seq = ++seq,
				     .time_s = (uint32_t)time(NULL), .port = srv.base };
	n = n ? pm_auth_append(f, n, sizeof(f), &t, mac) : 0;
	return n && exchange(c, 0, f, n, r->id, &rv) ? (int)rv.status : -1;
}

static void test_rights_wire(void)
{
	static const float v4[4] = { 1, 2, 3, 4 };
	const uint8_t *vec = (const uint8_t *)v4;
	uint8_t mac[4][PM_AUTH_MAC_KEY_BYTES]; /* none, read, write, admin */
	static const char *const rights[4] = { "-", "read", "write", "admin" };
	static const char *const names[4] = { "tnone", "tread", "twrite", "tadmin" };
	for (uint32_t i = 0; i < 4; i++)
		add_user(names[i], rights[i], 20 + i, mac[i]);
	struct pm_wire_request item = { .op = PM_WIRE_OP_VADD, .key = { (const uint8_t *)"ti", 2 },
					.vec = vec, .dim = 4, .collection = { (const uint8_t *)"tc", 2 } };
	struct pm_wire_request qitem = { .op = PM_WIRE_OP_VQUERY, .vec = vec, .dim = 4, .k = 1,
					 .collection = { (const uint8_t *)"tc", 2 } };
	const struct pm_wire_bytes k = { (const uint8_t *)"tk", 2 }, coll = { (const uint8_t *)"tc", 2 };
	struct {
		struct pm_wire_request r;
		uint32_t right; /* 1 read, 2 write, 3 admin */
	} table[] = {
		{ { .op = PM_WIRE_OP_GET, .key = k }, 1 },
		{ { .op = PM_WIRE_OP_VGET, .key = k }, 1 },
		{ { .op = PM_WIRE_OP_VQUERY, .vec = vec, .dim = 4, .k = 1, .collection = coll }, 1 },
		{ { .op = PM_WIRE_OP_VQUERYB, .nitems = 1, .item_list = &qitem, .collection = coll }, 1 },
		{ { .op = PM_WIRE_OP_VRANGE, .vec = vec, .dim = 4, .k = 1, .radius = 1.0f,
		    .collection = coll }, 1 },
		{ { .op = PM_WIRE_OP_CLIST }, 1 },
		{ { .op = PM_WIRE_OP_MAP }, 1 },
		{ { .op = PM_WIRE_OP_INFO }, 1 },
		{ { .op = PM_WIRE_OP_SET, .key = k, .value = { (const uint8_t *)"v", 1 } }, 2 },
		{ { .op = PM_WIRE_OP_DEL, .key = k }, 2 },
		{ { .op = PM_WIRE_OP_VADD, .key = k, .vec = vec, .dim = 4, .collection = coll }, 2 },
		{ { .op = PM_WIRE_OP_VADDB, .nitems = 1, .item_list = &item, .collection = coll }, 2 },
		{ { .op = PM_WIRE_OP_VDEL, .key = k }, 2 },
		{ { .op = PM_WIRE_OP_VSETATTR, .key = k, .attr = { (const uint8_t *)"", 1 } }, 2 },
		{ { .op = PM_WIRE_OP_CCREATE, .collection = coll, .params = { .dim = 4 } }, 3 },
		{ { .op = PM_WIRE_OP_CDROP, .collection = coll }, 3 },
		{ { .op = PM_WIRE_OP_SNAPSHOT }, 3 },
	};
	struct wire c;
	CU_ASSERT_FATAL(wire_open(&c, LOOPBACK, LOOPBACK, srv.base, 5000));
	c.whole = true;
	uint32_t seen = 0;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		struct pm_wire_request *r = &table[i].r;
		seen |= 1u << r->op;
		for (uint32_t u = 0; u < 4; u++) {
			int st = wire_as(&c, r, 20 + u, mac[u]);
			bool may = u == table[i].right;
			if ((st == PM_WIRE_E_NOPERM) == may || st < 0)
				printf("\n  op %s as %s: %s", pm_wire_op_name(r->op), names[u],
				       st < 0 ? "no reply" : pm_wire_status_name((enum pm_wire_status)st));
			CU_ASSERT(st >= 0 && (st == PM_WIRE_E_NOPERM) != may);
		}
	}
	for (uint32_t op = 1; op < PM_WIRE_OP_COUNT; op++) /* every op but AUTH's own */
		if (op != PM_WIRE_OP_AUTH_HELLO && op != PM_WIRE_OP_AUTH_PROVE)
			CU_ASSERT(seen & (1u << op));
	/* a refused write changed nothing */
	struct pm_wire_request set = { .op = PM_WIRE_OP_SET, .key = { (const uint8_t *)"tk2", 3 },
				       .value = { (const uint8_t *)"v", 1 } };
	CU_ASSERT_EQUAL(wire_as(&c, &set, 20 + 1, mac[1]), PM_WIRE_E_NOPERM);
	struct pm_wire_request get = { .op = PM_WIRE_OP_GET, .key = { (const uint8_t *)"tk2", 3 } };
	CU_ASSERT_EQUAL(wire_as(&c, &get, 20 + 1, mac[1]), PM_WIRE_NOT_FOUND);
	wire_close(&c);
}

/* Values the snapshot test writes first: more than two snapshot slices
 * (dataplane/snap_io.h: 1 MiB) on each shard, so that at a pace of 4 KiB/s
 * (the least: a multiple of 4096) a snapshot started stays running for
 * minutes, until the pace is lifted. */
#define SNAP_FILL_KEYS 3000u
#define SNAP_FILL_VALUE_BYTES 2048u

/* Every shard holds more than two snapshot slices (written by the writer). */
static void snapshot_fill(void)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.host = LOOPBACK;
	cfg.base_port = srv.base;
	cfg.shards = SHARDS;
	cfg.user = U_RW;
	memcpy(cfg.key, user_key[U_RW], sizeof(cfg.key));
	struct pm_client *c;
	CU_ASSERT_EQUAL_FATAL(pm_client_open(&cfg, &c), PM_CLIENT_OK);
	static char v[SNAP_FILL_VALUE_BYTES];
	memset(v, 'v', sizeof(v));
	for (uint32_t i = 0; i < SNAP_FILL_KEYS; i++) {
		char k[16];
		int kn = snprintf(k, sizeof(k), "sf%u", i);
		CU_ASSERT_EQUAL(pm_client_set(c, k, (size_t)kn, v, sizeof(v), 0), PM_CLIENT_OK);
	}
	pm_client_close(c);
}

/* SNAPSHOT needs admin; two in one datagram: the second finds the first
 * running on every shard and is answered with its progress, starting nothing
 * (snapshots_started counts one each). The first is held running by the
 * pace (4 KiB/s: a shard's snapshot writes a slice or two, then waits):
 * a shard reached through a ring may get the two requests turns apart, and
 * an unpaced snapshot of a small shard can be done by then. */
static void test_snapshot_once(void)
{
	struct wire c;
	struct pm_reply_view rv;
	uint8_t f[2 * 256];
	char sock[PATH_MAX + 16], text[256];
	admin_sock(sock, sizeof(sock));
	snapshot_fill();
	long long started0 = counter("snapshots_started"), done0 = counter("snapshots_completed");
	CU_ASSERT_EQUAL_FATAL(ctl_admin(sock, "CONFIG SET snapshot_write_bytes_per_s 4096", text,
					sizeof(text)), 0);
	CU_ASSERT_FATAL(wire_open(&c, LOOPBACK, LOOPBACK, srv.base, 700));
	struct pm_request snap = { .op = PM_OP_SNAPSHOT, .id = 701 };
	size_t n = sign(&snap, U_ADMIN, mac_key[U_ADMIN], srv.base, 0, 0, f, 256);
	snap.id = 702;
	size_t n2 = sign(&snap, U_ADMIN, mac_key[U_ADMIN], srv.base, 0, 0, f + n, 256);
	CU_ASSERT_FATAL(n && n2);
	CU_ASSERT_FATAL(wire_send(&c, 0, f, n + n2));
	bool got1 = false, got2 = false;
	while ((!got1 || !got2) && wire_recv(&c, REPLY_MS, &rv)) {
		if (rv.id == 701) {
			got1 = true;
			CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
			CU_ASSERT_EQUAL(rv.snap_running, 0); /* started on every shard */
		} else if (rv.id == 702) {
			got2 = true;
			CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
			CU_ASSERT_EQUAL(rv.snap_running, SHARDS); /* its progress, nothing new */
			CU_ASSERT(rv.snap_pct < 100);
		}
	}
	CU_ASSERT(got1 && got2);
	wire_close(&c);
	/* unpaced, it finishes: one snapshot started on each shard, and done */
	CU_ASSERT_EQUAL(ctl_admin(sock, "CONFIG SET snapshot_write_bytes_per_s 0", text,
				  sizeof(text)), 0);
	CU_ASSERT(counter_reaches("snapshots_completed", done0 + SHARDS) >= done0 + SHARDS);
	CU_ASSERT_EQUAL(counter("snapshots_started"), started0 + SHARDS);
}

/* One frame over a stream and its reply. */
static bool tcp_call(int fd, const uint8_t *f, size_t n, struct pm_reply_view *rv, uint8_t *in,
		     size_t cap)
{
	if (!wire_write_all(fd, f, n))
		return false;
	size_t have = 0, used;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	while (poll(&p, 1, REPLY_MS) == 1) {
		ssize_t r = recv(fd, in + have, cap - have, 0);
		if (r <= 0)
			return false;
		have += (size_t)r;
		if (pm_reply_decode(in, have, rv, &used) == PM_WIRE_OK)
			return true;
	}
	return false;
}

static void test_tcp_prove(void)
{
	uint16_t tport = (uint16_t)(srv.base - 1); /* pomaid_start's TCP port */
	int fd = wire_tcp_connect(LOOPBACK, LOOPBACK, tport);
	CU_ASSERT_FATAL(fd >= 0);
	uint8_t f[256], in[4096];
	struct pm_reply_view rv;
	struct pm_request get = { .op = PM_OP_GET, .id = 1, .key = { (const uint8_t *)"r:1", 3 } };
	size_t n = pm_request_encode(&get, f, sizeof(f));
	CU_ASSERT_FATAL(tcp_call(fd, f, n, &rv, in, sizeof(in)));
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_REQUIRED);
	/* PROVE without a HELLO, then with a wrong tag: refused */
	uint8_t proof[PM_AUTH_NONCE_BYTES + PM_AUTH_TAG_BYTES] = { 0 };
	struct pm_request prove = { .op = PM_OP_AUTH_PROVE, .id = 2, .auth_user = U_RO,
				    .auth_proof = { proof, sizeof(proof) } };
	n = pm_request_encode(&prove, f, sizeof(f));
	CU_ASSERT_FATAL(tcp_call(fd, f, n, &rv, in, sizeof(in)));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_E_AUTH);
	struct pm_request hello = { .op = PM_OP_AUTH_HELLO, .id = 3 };
	n = pm_request_encode(&hello, f, sizeof(f));
	CU_ASSERT_FATAL(tcp_call(fd, f, n, &rv, in, sizeof(in)));
	CU_ASSERT_EQUAL_FATAL(rv.status, PM_WIRE_OK);
	uint8_t challenge[PM_AUTH_CHALLENGE_BYTES];
	memcpy(challenge, rv.challenge, sizeof(challenge));
	pm_auth_random(proof, PM_AUTH_NONCE_BYTES);
	pm_auth_proof(mac_key[U_RW], challenge, proof, U_RO, proof + PM_AUTH_NONCE_BYTES);
	prove.id = 4; /* the writer's key for the reader's id: refused */
	n = pm_request_encode(&prove, f, sizeof(f));
	CU_ASSERT_FATAL(tcp_call(fd, f, n, &rv, in, sizeof(in)));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_E_AUTH);
	hello.id = 5;
	n = pm_request_encode(&hello, f, sizeof(f));
	CU_ASSERT_FATAL(tcp_call(fd, f, n, &rv, in, sizeof(in)));
	memcpy(challenge, rv.challenge, sizeof(challenge));
	pm_auth_proof(mac_key[U_RO], challenge, proof, U_RO, proof + PM_AUTH_NONCE_BYTES);
	prove.id = 6;
	n = pm_request_encode(&prove, f, sizeof(f));
	CU_ASSERT_FATAL(tcp_call(fd, f, n, &rv, in, sizeof(in)));
	CU_ASSERT_EQUAL_FATAL(rv.status, PM_WIRE_OK);
	/* the stream is the reader's now: its GET unsigned, its rights apply */
	get.id = 7;
	n = pm_request_encode(&get, f, sizeof(f));
	CU_ASSERT_FATAL(tcp_call(fd, f, n, &rv, in, sizeof(in)));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
	struct pm_request set = { .op = PM_OP_SET, .id = 8, .key = { (const uint8_t *)"r:1", 3 },
				  .value = { (const uint8_t *)"w", 1 } };
	n = pm_request_encode(&set, f, sizeof(f));
	CU_ASSERT_FATAL(tcp_call(fd, f, n, &rv, in, sizeof(in)));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_E_NOPERM);
	CU_ASSERT(counter_reaches("auth_proved", 1) >= 1);
	close(fd);
}

/* libpomai with a user: every frame signed (UDP and TCP); a wrong key is
 * E_AUTH, a right it lacks E_NOPERM, no user E_AUTH. */
static void test_libpomai(void)
{
	for (int tcp = 0; tcp < 2; tcp++) {
		struct pm_client_config cfg;
		pm_client_config_default(&cfg);
		cfg.host = LOOPBACK;
		cfg.base_port = srv.base;
		cfg.shards = SHARDS;
		cfg.transport = tcp ? PM_CLIENT_TCP : PM_CLIENT_UDP;
		cfg.user = U_RW;
		memcpy(cfg.key, user_key[U_RW], sizeof(cfg.key));
		struct pm_client *c;
		CU_ASSERT_EQUAL_FATAL(pm_client_open(&cfg, &c), PM_CLIENT_OK);
		char v[16];
		size_t vlen;
		for (int i = 0; i < 50; i++) { /* both shards, many seqs */
			char k[16];
			int kn = snprintf(k, sizeof(k), "lp%d", i);
			CU_ASSERT_EQUAL(pm_client_set(c, k, (size_t)kn, "x", 1, 0), PM_CLIENT_OK);
			CU_ASSERT_EQUAL(pm_client_get(c, k, (size_t)kn, v, sizeof(v), &vlen), PM_CLIENT_OK);
		}
		pm_client_close(c);
		cfg.user = U_RO; /* the reader's id, the writer's key */
		memcpy(cfg.key, user_key[U_RW], sizeof(cfg.key));
		if (tcp) { /* the stream proves its user when it connects: refused there */
			CU_ASSERT_EQUAL(pm_client_open(&cfg, &c), PM_CLIENT_E_AUTH);
		} else {
			CU_ASSERT_EQUAL_FATAL(pm_client_open(&cfg, &c), PM_CLIENT_OK);
			CU_ASSERT_EQUAL(pm_client_get(c, "r:1", 3, v, sizeof(v), &vlen),
					PM_CLIENT_E_AUTH);
			pm_client_close(c);
		}
		memcpy(cfg.key, user_key[U_RO], sizeof(cfg.key));
		CU_ASSERT_EQUAL_FATAL(pm_client_open(&cfg, &c), PM_CLIENT_OK);
		CU_ASSERT_EQUAL(pm_client_set(c, "r:1", 3, "x", 1, 0), PM_CLIENT_E_NOPERM);
		pm_client_close(c);
		cfg.user = 0;
		CU_ASSERT_EQUAL_FATAL(pm_client_open(&cfg, &c), PM_CLIENT_OK);
		CU_ASSERT_EQUAL(pm_client_get(c, "r:1", 3, v, sizeof(v), &vlen), PM_CLIENT_E_AUTH);
		pm_client_close(c);
	}
}

/* pomai-cli --user with the key from a file or POMAI_KEY. */
static const char *cli_path;

static int cli(const char *env, const char *args)
{
	char cmd[PATH_MAX * 2];
	snprintf(cmd, sizeof(cmd), "%s %s --port %u --shards %u %s >/dev/null 2>&1", env, cli_path,
		 srv.base, SHARDS, args);
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_cli(void)
{
	char hex[2 * PM_AUTH_USER_KEY_BYTES + 1], path[PATH_MAX + 16], env[160], args[PATH_MAX + 64];
	pm_auth_hex(user_key[U_RW], PM_AUTH_USER_KEY_BYTES, hex);
	snprintf(path, sizeof(path), "%s/writer.key", srv.dir);
	FILE *f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	fprintf(f, "%s\n", hex);
	fclose(f);
	snprintf(args, sizeof(args), "--user 1 --key-file %s set cli1 v", path);
	CU_ASSERT_EQUAL(cli("", args), 0);
	snprintf(env, sizeof(env), "POMAI_KEY=%s", hex);
	CU_ASSERT_EQUAL(cli(env, "--user 1 get cli1"), 0);
	CU_ASSERT_EQUAL(cli("", "get cli1"), 3);         /* no user: AUTH, an error status */
	CU_ASSERT_EQUAL(cli("", "--user 1 get cli1"), 2); /* no key: a usage error */
}

/* pomaictl user: add prints a key once (its MAC key is what the daemon
 * got: a frame signed with it is served), list (text and JSON), grant,
 * revoke, del. */
static const char *ctl_path;

static void test_pomaictl_user(void)
{
	static char out[CTL_OUT_BYTES];
	char sock[PATH_MAX + 16];
	admin_sock(sock, sizeof(sock));
	CU_ASSERT_EQUAL_FATAL(ctl_run(ctl_path, sock, "user add carol read key=c:", out), 0);
	const char *k = strstr(out, "key:"), *id = strstr(out, "id:");
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	CU_ASSERT_PTR_NOT_NULL_FATAL(id);
	char hex[2 * PM_AUTH_USER_KEY_BYTES + 1];
	memcpy(hex, k + 4, sizeof(hex) - 1);
	hex[sizeof(hex) - 1] = '\0';
	uint8_t key[PM_AUTH_USER_KEY_BYTES], mk[PM_AUTH_MAC_KEY_BYTES];
	CU_ASSERT_EQUAL_FATAL(pm_auth_unhex(hex, key, sizeof(key)), 0);
	pm_auth_derive(key, mk);
	uint32_t uid = (uint32_t)atoi(id + 3);
	struct wire c;
	struct pm_reply_view rv;
	uint8_t f[PM_FRAME_BYTES_MAX];
	CU_ASSERT_FATAL(wire_open(&c, LOOPBACK, LOOPBACK, srv.base, 900));
	struct pm_request get = { .op = PM_OP_GET, .id = 901, .key = { (const uint8_t *)"c:1", 3 } };
	size_t n = sign(&get, uid, mk, srv.base, 0, 0, f, sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 901, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_NOT_FOUND);
	ctl_expect(ctl_path, sock, "user list", 0, "# carol");
	CU_ASSERT_EQUAL(ctl_json(ctl_path, sock, "user list",
				 "d['carol']['rights'] == 'read' and d['carol']['key_prefixes'] == 'c:'"),
			0);
	CU_ASSERT_EQUAL(ctl_json(ctl_path, sock, "user add dave write", "len(d['key']) == 64"), 0);
	ctl_expect(ctl_path, sock, "user add carol read", 1, "exists");
	ctl_expect(ctl_path, sock, "user grant carol write key=d:", 0, "OK");
	CU_ASSERT_EQUAL(ctl_json(ctl_path, sock, "user list",
				 "d['carol']['rights'] == 'read,write' and"
				 " d['carol']['key_prefixes'] == 'c: d:'"), 0);
	ctl_expect(ctl_path, sock, "user revoke carol read", 0, "OK");
	get.id = 902;
	n = sign(&get, uid, mk, srv.base, 0, 0, f, sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 902, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_E_NOPERM);
	ctl_expect(ctl_path, sock, "user del carol", 0, "OK");
	ctl_expect(ctl_path, sock, "user del dave", 0, "OK");
	ctl_expect(ctl_path, sock, "user del nobody", 1, "no user");
	wire_close(&c);
}

/* auth turned off and on again while pomaid runs (CONFIG SET). */
static void test_config_live(void)
{
	char sock[PATH_MAX + 16], text[256];
	admin_sock(sock, sizeof(sock));
	struct wire c;
	struct pm_reply_view rv;
	uint8_t f[256];
	CU_ASSERT_FATAL(wire_open(&c, LOOPBACK, LOOPBACK, srv.base, 800));
	struct pm_request get = { .op = PM_OP_GET, .id = 801, .key = { (const uint8_t *)"zz", 2 } };
	size_t n = pm_request_encode(&get, f, sizeof(f));
	CU_ASSERT_EQUAL(ctl_admin(sock, "CONFIG SET auth off", text, sizeof(text)), 0);
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 801, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_NOT_FOUND); /* no user needed */
	CU_ASSERT_EQUAL(ctl_admin(sock, "CONFIG SET auth on", text, sizeof(text)), 0);
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 801, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_E_AUTH);
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_REQUIRED);
	CU_ASSERT_EQUAL(ctl_admin(sock, "CONFIG GET auth", text, sizeof(text)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "auth:yes"));
	wire_close(&c);
}

static void test_user_changes(void)
{
	char sock[PATH_MAX + 16], text[4096], cmd[256], hex[2 * PM_AUTH_MAC_KEY_BYTES + 1];
	admin_sock(sock, sizeof(sock));
	struct wire c;
	struct pm_reply_view rv;
	CU_ASSERT_FATAL(wire_open(&c, LOOPBACK, LOOPBACK, srv.base, 500));
	/* USER ADD: a new user, served at once, written to the file 0600 */
	uint8_t k[PM_AUTH_USER_KEY_BYTES], mk[PM_AUTH_MAC_KEY_BYTES];
	pm_auth_random(k, sizeof(k));
	pm_auth_derive(k, mk);
	pm_auth_hex(mk, sizeof(mk), hex);
	snprintf(cmd, sizeof(cmd), "USER ADD newbie read %s id=10", hex);
	CU_ASSERT_EQUAL(ctl_admin(sock, cmd, text, sizeof(text)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "id:10"));
	uint8_t f[PM_FRAME_BYTES_MAX];
	struct pm_request get = { .op = PM_OP_GET, .id = 501, .key = { (const uint8_t *)"r:1", 3 } };
	size_t n = sign(&get, 10, mk, srv.base, 0, 0, f, sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 501, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
	char path[PATH_MAX + 16];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/users", srv.dir);
	CU_ASSERT_EQUAL(stat(path, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
	CU_ASSERT_EQUAL(ctl_admin(sock, "USER LIST", text, sizeof(text)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "# newbie\r\nid:10\r\nrights:read\r\n"));
	CU_ASSERT_PTR_NULL(strstr(text, hex)); /* never the MAC key */
	/* REVOKE read: NOPERM from the next frame on */
	CU_ASSERT_EQUAL(ctl_admin(sock, "USER REVOKE newbie read", text, sizeof(text)), 0);
	get.id = 502;
	n = sign(&get, 10, mk, srv.base, 0, 0, f, sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 502, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_E_NOPERM);
	/* RELOAD of a file with a looser mode: refused, the users kept */
	CU_ASSERT_EQUAL(chmod(path, 0644), 0);
	CU_ASSERT_NOT_EQUAL(ctl_admin(sock, "USER RELOAD", text, sizeof(text)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "chmod 600"));
	CU_ASSERT_EQUAL(chmod(path, 0600), 0);
	/* the file edited by hand, then RELOAD: newbie gone */
	CU_ASSERT_FATAL(write_users()); /* fresh keys for 1..3, no user 10 */
	CU_ASSERT_EQUAL(ctl_admin(sock, "USER RELOAD", text, sizeof(text)), 0);
	get.id = 503;
	n = sign(&get, 10, mk, srv.base, 0, 0, f, sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 503, &rv));
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_BAD);
	get.id = 504; /* and the reader's new key works */
	n = sign(&get, U_RO, mac_key[U_RO], srv.base, 0, 0, f, sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 504, &rv));
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_OK);
	CU_ASSERT_EQUAL(ctl_admin(sock, "USER DEL reader", text, sizeof(text)), 0);
	get.id = 505;
	n = sign(&get, U_RO, mac_key[U_RO], srv.base, 0, 0, f, sizeof(f));
	CU_ASSERT_FATAL(exchange(&c, 0, f, n, 505, &rv));
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_BAD);
	wire_close(&c);
}

/* ---------------------------------------------------------------- the stats segment */

/* The segment's counters (version 7) hold what INFO dataplane says: each,
 * once the workers have published (every PM_STATS_PUBLISH_MS), is at least
 * INFO's value read before, which the tests above made nonzero. */
static void test_stats_segment(void)
{
	static const struct { const char *info; size_t off; } f[] = {
		{ "auth_ok", offsetof(struct pm_stats_shard, auth_ok) },
		{ "auth_refused_required",
		  offsetof(struct pm_stats_shard, auth_refused[PM_AUTH_R_REQUIRED]) },
		{ "auth_refused_bad", offsetof(struct pm_stats_shard, auth_refused[PM_AUTH_R_BAD]) },
		{ "auth_refused_replay",
		  offsetof(struct pm_stats_shard, auth_refused[PM_AUTH_R_REPLAY]) },
		{ "auth_refused_clock",
		  offsetof(struct pm_stats_shard, auth_refused[PM_AUTH_R_CLOCK]) },
		{ "auth_noperm", offsetof(struct pm_stats_shard, auth_noperm) },
		{ "auth_proved", offsetof(struct pm_stats_shard, auth_proved) },
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		long long want = counter(f[i].info);
		long long got = stats_seg_reaches(srv.dir, f[i].off, want, COUNTER_WAIT_MS);
		if (want <= 0 || got < want)
			printf("\n  %s: INFO %lld, the segment %lld", f[i].info, want, got);
		CU_ASSERT(want > 0 && got >= want);
	}
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: test_auth POMAID POMAI_CLI POMAICTL\n");
		return 2;
	}
	ctl_path = argv[3];
	srv.path = argv[1];
	cli_path = argv[2];
	static CU_TestInfo alone[] = {
		{ "the users file: parse, format, 0600, a looser mode refused", test_users_file },
		{ "the replay table: replays, reordering, the window, BUSY, reuse", test_replay_table },
		{ "every op's right, and prefixes", test_rights_every_op },
		{ "start-up: a users file others may read, the warning beyond loopback", test_startup },
		CU_TEST_INFO_NULL,
	};
	static CU_TestInfo live[] = {
		{ "UDP: no user, wrong key, truncated MAC, replays, reordering, clock, port",
		  test_udp_refusals },
		{ "rights: NOPERM, INFO's per-client section", test_rights },
		{ "SNAPSHOT: one at a time, a second answered with its progress", test_snapshot_once },
		{ "rights over the wire: every op as no right, another, its own", test_rights_wire },
		{ "TCP: HELLO / PROVE", test_tcp_prove },
		{ "libpomai with a user, over UDP and TCP", test_libpomai },
		{ "pomai-cli --user with --key-file or POMAI_KEY", test_cli },
		{ "pomaictl user add/list/grant/revoke/del, text and JSON", test_pomaictl_user },
		{ "USER ADD / REVOKE / RELOAD / DEL without a restart", test_user_changes },
		{ "CONFIG SET auth off / on while pomaid runs", test_config_live },
		{ "the stats segment counts authentication as INFO does", test_stats_segment },
		CU_TEST_INFO_NULL,
	};
	CU_SuiteInfo suites[] = {
		{ "auth_parts", NULL, NULL, NULL, NULL, alone },
		{ "auth_daemon", suite_init, suite_clean, NULL, NULL, live },
		CU_SUITE_INFO_NULL,
	};
	if (CU_initialize_registry() != CUE_SUCCESS || CU_register_suites(suites) != CUE_SUCCESS)
		return 1;
	return pm_cu_run_registered();
}
