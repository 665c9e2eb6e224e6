/* SPDX-License-Identifier: MIT
 *
 * pomai-control — the control-plane process (control.h says what it does;
 * docs/admin.md how to run it).
 *
 * One thread, one poll loop: its own admin socket's clients, the connection
 * to pomaid (pomaid never speaks unasked, so that socket becoming readable
 * means pomaid closed it: it stopped or died), and a tick of CTL_TICK_MS for
 * attaching, noticing a replaced stats segment and the snapshot schedule.
 * The metrics server (libmicrohttpd's thread) reads the mapping under `lock`,
 * which the loop takes only to map or unmap it.
 *
 * Attached means: one admin connection to pomaid answered PING, and the
 * stats segment is mapped and was written by that same process (the global
 * block's pid is the socket peer's, SO_PEERCRED) — a segment left by the
 * previous pomaid is never taken for the new one's. At every attach the whole
 * quota table is pushed (QUOTA SET per entry): a restarted pomaid gets it back.
 * So are the users (issue 19): after every USER change that went through
 * here, pomai-control asks pomaid for its users file (USER EXPORT) and keeps
 * it, in memory and in users_file (mode 0600, written atomically, read at
 * start: a restart of pomai-control keeps them); at each attach it sends
 * every user back (USER SET per line), so a pomaid that lost its
 * data_dir/users, or a new one, gets them.
 *
 * Forwarding blocks the loop for at most daemon_timeout_ms per command; past
 * that pomaid counts as gone (its late reply would put the stream out of
 * step), the connection is closed and attaching starts again.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "admin_proto.h"
#include "byteorder.h"
#include "agent.h"
#include "control.h"
#include "metrics.h"
#include "stats.h"

/* Text of a reply pomai-control writes itself (CONTROL lists the quota
 * table: an entry's lines are well under 128 bytes). */
#define CTL_TEXT_BYTES (256u << 10)
_Static_assert(PM_QUOTA_OVERRIDES_MAX * 128u + 4096u <= CTL_TEXT_BYTES,
	       "CONTROL's text fits");
#define MSG_BYTES PM_ADMIN_BUFFER_BYTES
#define ARG_TEXT_BYTES 64u
/* users_file at most: what one USER EXPORT reply can bring (a longer file
 * was not written by pomai-control, and is refused at start). */
#define CTL_USERS_FILE_BYTES_MAX MSG_BYTES

struct client {
	int fd; /* -1: free */
	uint32_t len;
	uint8_t *buf; /* MSG_BYTES */
};

struct ctl {
	struct ctl_config cfg;
	char daemon_sock[CTL_PATH_BYTES + 16], control_sock[CTL_PATH_BYTES + 16],
		stats_path[CTL_PATH_BYTES + 16], users_path[CTL_PATH_BYTES + 16];
	int lfd, ufd; /* listening socket; pomaid's admin connection (-1: detached) */
	struct client clients[CTL_CONNS_MAX];
	uint8_t *out; /* MSG_BYTES: a reply on its way to a client */
	char text[CTL_TEXT_BYTES];
	size_t text_len;
	/* the attachment: changed by the loop under lock, read by the metrics thread */
	pthread_mutex_t lock;
	bool up;
	bool pushed;        /* the quota table went to this pomaid: pomai_up says 1 from then */
	struct pm_stats_map map;
	ino_t ino;
	uint64_t pid;
	/* the schedule (CLOCK_MONOTONIC ms) */
	uint64_t next_attach_ms, last_snap_ms, next_snap_try_ms, wal_base;
	bool attach_failed_said;
	struct ctl_counters c;
	struct ctl_scrape scrape; /* the metrics thread's */
	struct ctl_cluster *cluster; /* etcd_endpoints set: the cluster agent (cluster.h) */
	/* issue 19: pomaid's users file as of the last USER change through here
	 * (NULL: none yet), pushed at attach; users_dirty: ask for it again */
	char *users;
	size_t users_len;
	bool users_dirty;
	struct ctl_http *http;
};

static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static uint64_t unix_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

__attribute__((format(printf, 1, 2))) static void logf_(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("pomai-control: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

__attribute__((format(printf, 2, 3))) static void say(struct ctl *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = sizeof(x->text) - x->text_len;
	int n = vsnprintf(x->text + x->text_len, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		x->text_len += (size_t)n < room ? (size_t)n : room - 1;
}

#define BUMP(x, f) atomic_fetch_add_explicit(&(x)->c.f, 1, memory_order_relaxed)

/* ---------------------------------------------------------------- pomaid */

static void detach(struct ctl *x, const char *why)
{
	if (x->ufd >= 0)
		close(x->ufd);
	x->ufd = -1;
	pthread_mutex_lock(&x->lock);
	bool was = x->up;
	x->up = false;
	x->pushed = false;
	pm_stats_close(&x->map);
	pthread_mutex_unlock(&x->lock);
	if (was) {
		BUMP(x, detaches);
		logf_("detached from pomaid pid %" PRIu64 ": %s", x->pid, why);
	}
	x->attach_failed_said = false;
	x->next_attach_ms = now_ms() + x->cfg.retry_ms;
}

/* One command to pomaid; 0 with its reply, or -errno (and detached). */
static int daemon_call(struct ctl *x, uint32_t argc, const char *const *argv, uint8_t *status,
		       const char **text, size_t *tlen)
{
	int rc = pm_admin_call(x->ufd, argc, argv, x->out, MSG_BYTES, (int)x->cfg.daemon_timeout_ms,
			       status, text, tlen);
	if (rc != 0) {
		char why[128];
		snprintf(why, sizeof(why), "%s: %s", argv[0], strerror(-rc));
		detach(x, why);
	}
	return rc;
}

/* QUOTA SET for one entry; false if pomaid refused it or went away. */
static bool push_quota(struct ctl *x, const struct ctl_quota *q)
{
	char a[INET_ADDRSTRLEN], r[24], b[24];
	ctl_format_ipv4(q->addr, a, sizeof(a));
	snprintf(r, sizeof(r), "%" PRIu64, q->rps);
	snprintf(b, sizeof(b), "%" PRIu64, q->bps);
	const char *argv[] = { "QUOTA", "SET", a, r, b }, *text;
	uint8_t st;
	size_t tlen;
	BUMP(x, quota_pushes);
	if (daemon_call(x, 5, argv, &st, &text, &tlen) != 0)
		return false;
	if (st != PM_ADMIN_OK) {
		BUMP(x, quota_push_errors);
		logf_("pomaid refused QUOTA SET %s %s %s: %.*s", a, r, b, (int)tlen, text);
	}
	return true;
}

/* ---------------------------------------------------------------- users_file */

/* The directory of path into dir: "." when it names none, "/" for a file
 * at the root. */
static void dir_of(const char *path, char *dir, size_t cap)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(dir, cap, ".");
	else
		snprintf(dir, cap, "%.*s", (int)(slash == path ? 1 : slash - path), path);
}

/* x->users into users_path: a temporary file of mode 0600 beside it, written
 * whole and fdatasync'd, renamed over it, the directory fsync'd (a crash
 * leaves the old file or the new one, never a part). false (said why) when
 * a step failed; the copy in memory is pushed all the same. */
static bool users_save(const struct ctl *x)
{
	char tmp[sizeof(x->users_path) + 8], dir[sizeof(x->users_path)];
	snprintf(tmp, sizeof(tmp), "%s.new", x->users_path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && fchmod(fd, 0600) == 0; /* whatever the umask or an old .new */
	for (size_t off = 0; ok && off < x->users_len;) {
		ssize_t w = write(fd, x->users + off, x->users_len - off);
		ok = w > 0 || (w < 0 && errno == EINTR);
		off += w > 0 ? (size_t)w : 0;
	}
	ok = ok && fdatasync(fd) == 0;
	if (fd >= 0)
		ok = close(fd) == 0 && ok;
	ok = ok && rename(tmp, x->users_path) == 0;
	dir_of(x->users_path, dir, sizeof(dir));
	int dfd = ok ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	ok = ok && dfd >= 0 && fsync(dfd) == 0;
	if (dfd >= 0)
		close(dfd);
	if (!ok) {
		logf_("users_file %s: not written: %s", x->users_path, strerror(errno));
		unlink(tmp);
	}
	return ok;
}

/* users_path into x->users at start: 0 (absent: no users yet), or -1 with
 * err when it cannot be read, is larger than CTL_USERS_FILE_BYTES_MAX, holds
 * a NUL byte, or may be read or written by anyone but its owner (it holds
 * MAC keys, which are credentials: pomaid refuses its own users file so). */
static int users_load(struct ctl *x, char *err, size_t n)
{
	struct stat sb;
	int fd = open(x->users_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		snprintf(err, n, "users_file %s: %s", x->users_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	const char *bad = (sb.st_mode & 077) ? "others may read or write it: chmod 600 it"
			  : !S_ISREG(sb.st_mode) ? "not a regular file"
			  : sb.st_size > (off_t)CTL_USERS_FILE_BYTES_MAX ? "too large"
									 : NULL;
	char *text = bad ? NULL : malloc((size_t)sb.st_size + 1);
	size_t len = 0;
	while (text && len < (size_t)sb.st_size) {
		ssize_t r = read(fd, text + len, (size_t)sb.st_size - len);
		if (r <= 0 && !(r < 0 && errno == EINTR))
			break;
		len += r > 0 ? (size_t)r : 0;
	}
	close(fd);
	if (!bad && (!text || len != (size_t)sb.st_size))
		bad = text ? "short read" : "out of memory";
	if (!bad && memchr(text, '\0', len))
		bad = "a NUL byte: not a users file";
	if (bad) {
		free(text);
		snprintf(err, n, "users_file %s: %s", x->users_path, bad);
		return -1;
	}
	text[len] = '\0';
	x->users = text;
	x->users_len = len;
	return 0;
}

/* The users pomaid has, kept to push them at the next attach (USER EXPORT),
 * and saved in users_file. */
static void users_refresh(struct ctl *x)
{
	const char *argv[] = { "USER", "EXPORT" }, *text;
	uint8_t st;
	size_t tlen;
	x->users_dirty = false;
	if (x->ufd < 0 || daemon_call(x, 2, argv, &st, &text, &tlen) != 0 || st != PM_ADMIN_OK)
		return; /* kept as it was: the last export that worked */
	char *copy = malloc(tlen + 1);
	if (!copy)
		return;
	memcpy(copy, text, tlen);
	copy[tlen] = '\0';
	free(x->users);
	x->users = copy;
	x->users_len = tlen;
	(void)users_save(x);
}

/* USER SET for every user kept (one line of the users file each). */
static void users_push(struct ctl *x)
{
	char line[4096];
	for (const char *p = x->users; p && *p && x->up;) {
		size_t n = strcspn(p, "\n");
		if (n && *p != '#' && n < sizeof(line)) {
			memcpy(line, p, n);
			line[n] = '\0';
			const char *argv[] = { "USER", "SET", line }, *text;
			uint8_t st;
			size_t tlen;
			if (daemon_call(x, 3, argv, &st, &text, &tlen) != 0)
				return;
			if (st != PM_ADMIN_OK)
				logf_("pomaid refused a user: %.*s", (int)tlen, text);
		}
		p += n + (p[n] == '\n');
	}
}

static uint64_t wal_sum(struct ctl *x)
{
	static struct pm_stats_shard s;
	uint64_t sum = 0;
	for (uint32_t i = 0; i < x->map.nshards; i++)
		if (pm_stats_read(pm_stats_shard_at(x->map.base, i), &s, sizeof(s)))
			sum += s.wal_bytes;
	return sum;
}

/* The admin connection and the segment of the same pomaid, or why not. */
static const char *connect_daemon(struct ctl *x, struct pm_stats_map *m, uint64_t *pid)
{
	static char why[320];
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	const char *argv[] = { "PING" }, *text;
	uint8_t st;
	size_t tlen;
	int fd = pm_admin_connect(x->daemon_sock), rc;
	if (fd < 0)
		return snprintf(why, sizeof(why), "%s: %s", x->daemon_sock, strerror(-fd)), why;
	x->ufd = fd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0)
		return "SO_PEERCRED failed";
	rc = pm_admin_call(fd, 1, argv, x->out, MSG_BYTES, (int)x->cfg.daemon_timeout_ms, &st,
			   &text, &tlen);
	if (rc != 0 || st != PM_ADMIN_OK)
		return snprintf(why, sizeof(why), "PING: %s", rc ? strerror(-rc) : "not OK"), why;
	if (pm_stats_open(x->stats_path, m, why, sizeof(why)) != 0)
		return why;
	struct pm_stats_global g;
	struct stat sb;
	if (!pm_stats_read(pm_stats_global_at(m->base), &g, sizeof(g)) ||
	    g.pid != (uint64_t)cred.pid || stat(x->stats_path, &sb) != 0) {
		pm_stats_close(m);
		return snprintf(why, sizeof(why), "%s is not pomaid pid %d's (yet)", x->stats_path,
				(int)cred.pid), why;
	}
	*pid = g.pid;
	x->ino = sb.st_ino;
	return NULL;
}

static void attach(struct ctl *x)
{
	struct pm_stats_map m;
	uint64_t pid = 0;
	const char *why = connect_daemon(x, &m, &pid);
	if (why) {
		if (x->ufd >= 0)
			close(x->ufd);
		x->ufd = -1;
		BUMP(x, attach_failures);
		if (!x->attach_failed_said)
			logf_("waiting for pomaid: %s (trying every %u ms)", why, x->cfg.retry_ms);
		x->attach_failed_said = true;
		x->next_attach_ms = now_ms() + x->cfg.retry_ms;
		return;
	}
	pthread_mutex_lock(&x->lock);
	x->map = m;
	x->pid = pid;
	x->up = true;
	pthread_mutex_unlock(&x->lock);
	BUMP(x, attaches);
	logf_("attached to pomaid pid %" PRIu64 " (%u shards); pushing %u quotas", pid, m.nshards,
	      x->cfg.nquotas);
	x->wal_base = wal_sum(x);
	x->last_snap_ms = x->next_snap_try_ms = now_ms();
	for (uint32_t i = 0; i < x->cfg.nquotas && x->up; i++)
		push_quota(x, &x->cfg.quotas[i]);
	users_push(x);
	pthread_mutex_lock(&x->lock);
	x->pushed = x->up;
	pthread_mutex_unlock(&x->lock);
}

/* While attached: has pomaid been replaced or died without our noticing? */
static void check_daemon(struct ctl *x)
{
	struct stat sb;
	if (stat(x->stats_path, &sb) != 0 || sb.st_ino != x->ino)
		detach(x, "its stats segment was replaced (a new pomaid)");
	else if (kill((pid_t)x->pid, 0) != 0 && errno == ESRCH)
		detach(x, "the process is gone");
}

/* ---------------------------------------------------------------- snapshots */

static void request_snapshot(struct ctl *x, enum ctl_snap_reason why, uint64_t wal)
{
	const char *argv[] = { "SNAPSHOT", "now" }, *text;
	uint8_t st;
	size_t tlen;
	uint64_t t = now_ms();
	if (daemon_call(x, 2, argv, &st, &text, &tlen) != 0)
		return;
	if (st != PM_ADMIN_OK) {
		BUMP(x, snapshot_errors);
		logf_("pomaid refused SNAPSHOT: %.*s", (int)tlen, text);
		x->next_snap_try_ms = t + x->cfg.retry_ms;
		return;
	}
	BUMP(x, snapshots_requested[why]);
	x->last_snap_ms = t;
	x->wal_base = wal;
}

static void schedule(struct ctl *x)
{
	uint64_t t = now_ms(), wal = wal_sum(x);
	if (wal < x->wal_base)
		x->wal_base = wal; /* cannot happen within one pomaid; be safe */
	atomic_store_explicit(&x->c.wal_bytes_since_snapshot, wal - x->wal_base,
			      memory_order_relaxed);
	if (t < x->next_snap_try_ms)
		return;
	if (x->cfg.snapshot_interval_s &&
	    t - x->last_snap_ms >= (uint64_t)x->cfg.snapshot_interval_s * 1000u)
		request_snapshot(x, CTL_SNAP_INTERVAL, wal);
	else if (x->cfg.snapshot_wal_bytes && wal - x->wal_base >= x->cfg.snapshot_wal_bytes)
		request_snapshot(x, CTL_SNAP_WAL_BYTES, wal);
}

static void tick(struct ctl *x)
{
	if (x->ufd < 0 && now_ms() >= x->next_attach_ms)
		attach(x);
	if (x->ufd >= 0)
		check_daemon(x);
	if (x->ufd >= 0)
		schedule(x);
}

/* ---------------------------------------------------------------- commands */

/* Argument i as text ("" when absent or too long). */
static const char *arg(const struct pm_admin_req *r, uint32_t i, char *buf)
{
	buf[0] = '\0';
	if (i < r->argc && r->arg[i].len < ARG_TEXT_BYTES) {
		memcpy(buf, r->arg[i].p, r->arg[i].len);
		buf[r->arg[i].len] = '\0';
	}
	return buf;
}

/* Forward the request in c->buf as it is; the reply into x->out (prefixed). */
static size_t forward(struct ctl *x, struct client *c, uint8_t *status)
{
	size_t rlen;
	const char *text;
	size_t tlen;
	BUMP(x, forwarded);
	uint8_t *reply = x->out + PM_ADMIN_LEN_BYTES; /* the prefix is written below */
	int rc = pm_admin_call_raw(x->ufd, c->buf, PM_ADMIN_LEN_BYTES + c->len, reply,
				   MSG_BYTES - PM_ADMIN_LEN_BYTES, (int)x->cfg.daemon_timeout_ms, &rlen);
	if (rc == 0 && pm_admin_reply_decode(reply, rlen, status, &text, &tlen) != 0)
		rc = -EPROTO;
	if (rc != 0) {
		detach(x, strerror(-rc));
		say(x, "pomaid did not answer: %s\n", strerror(-rc));
		*status = PM_ADMIN_UNAVAILABLE;
		return 0;
	}
	pm_put_le32(x->out, (uint32_t)rlen);
	return PM_ADMIN_LEN_BYTES + rlen;
}

static enum pm_admin_status unavailable(struct ctl *x, const char *what)
{
	BUMP(x, unavailable);
	say(x, "pomaid is not attached (%s; pomai-control tries every %u ms)%s\n", x->daemon_sock,
	    x->cfg.retry_ms, what);
	return PM_ADMIN_UNAVAILABLE;
}

/* QUOTA SET / DEL: checked, remembered, forwarded (0 = x->out holds pomaid's reply). */
static size_t cmd_quota(struct ctl *x, struct client *c, const struct pm_admin_req *r,
			uint8_t *status)
{
	char a[ARG_TEXT_BYTES], rps[ARG_TEXT_BYTES], bps[ARG_TEXT_BYTES];
	bool set = pm_admin_arg_is(r, 1, "set");
	struct ctl_quota q = { 0 };
	if ((set ? r->argc != 5 : r->argc != 3) || ctl_parse_ipv4(arg(r, 2, a), &q.addr) ||
	    (set && (ctl_parse_rate(arg(r, 3, rps), &q.rps) || ctl_parse_rate(arg(r, 4, bps), &q.bps)))) {
		say(x, "usage: QUOTA SET ipv4 requests_per_s bytes_per_s | QUOTA DEL ipv4 (rates"
		       " 0..%llu, 0 = unlimited)\n", PM_QUOTA_RATE_PER_S_MAX);
		return *status = PM_ADMIN_USAGE, 0;
	}
	bool known = false;
	for (uint32_t i = 0; i < x->cfg.nquotas; i++)
		known |= x->cfg.quotas[i].addr == q.addr;
	if (set && !known && x->cfg.nquotas == PM_QUOTA_OVERRIDES_MAX) {
		say(x, "pomai-control's quota table is full (%u entries)\n", PM_QUOTA_OVERRIDES_MAX);
		return *status = PM_ADMIN_ERROR, 0;
	}
	if (!set)
		ctl_quota_del(&x->cfg, q.addr); /* gone from the table whatever pomaid says */
	if (x->ufd < 0) {
		if (set)
			ctl_quota_set(&x->cfg, &q);
		*status = unavailable(x, set ? "; the quota is remembered and pushed when it attaches"
					     : "; removed from pomai-control's table");
		return 0;
	}
	size_t n = forward(x, c, status);
	if (set && n && *status == PM_ADMIN_OK)
		ctl_quota_set(&x->cfg, &q); /* pomaid took it: it is pushed again at each attach */
	if (set && x->ufd < 0) {        /* pomaid went away meanwhile: as if it had been */
		ctl_quota_set(&x->cfg, &q);
		say(x, "the quota is remembered and pushed when pomaid attaches\n");
	}
	return n;
}

/* CONTROL: pomai-control's own state. */
static enum pm_admin_status cmd_control(struct ctl *x)
{
	say(x, "# Control\r\nattached:%d\r\ndaemon_socket:%s\r\ndaemon_pid:%" PRIu64
	       "\r\nshards:%u\r\nattaches:%" PRIu64 "\r\nsnapshot_interval_s:%u\r\n"
	       "snapshot_wal_bytes:%" PRIu64 "\r\nwal_bytes_since_snapshot:%" PRIu64
	       "\r\nsnapshots_requested:%" PRIu64 "\r\nquotas:%u\r\n",
	    x->ufd >= 0, x->daemon_sock, x->ufd >= 0 ? x->pid : 0, x->map.nshards,
	    atomic_load(&x->c.attaches), x->cfg.snapshot_interval_s, x->cfg.snapshot_wal_bytes,
	    atomic_load(&x->c.wal_bytes_since_snapshot),
	    atomic_load(&x->c.snapshots_requested[CTL_SNAP_INTERVAL]) +
		    atomic_load(&x->c.snapshots_requested[CTL_SNAP_WAL_BYTES]),
	    x->cfg.nquotas);
	for (uint32_t i = 0; i < x->cfg.nquotas; i++) {
		char a[INET_ADDRSTRLEN];
		ctl_format_ipv4(x->cfg.quotas[i].addr, a, sizeof(a));
		say(x, "# %s\r\nrequests_per_s:%" PRIu64 "\r\nbytes_per_s:%" PRIu64 "\r\n", a,
		    x->cfg.quotas[i].rps, x->cfg.quotas[i].bps);
	}
	return PM_ADMIN_OK;
}

/* The reply to the request in c (x->out, prefixed); its bytes. */
static size_t dispatch(struct ctl *x, struct client *c)
{
	struct pm_admin_req r;
	uint8_t st = PM_ADMIN_OK;
	size_t n = 0;
	x->text_len = 0;
	if (pm_admin_req_decode(c->buf + PM_ADMIN_LEN_BYTES, c->len, &r) != 0) {
		say(x, "malformed request\n");
		st = PM_ADMIN_USAGE;
	} else if (pm_admin_arg_is(&r, 0, "control") && r.argc == 1) {
		st = cmd_control(x);
	} else if (pm_admin_arg_is(&r, 0, "cluster")) {
		st = ctl_cluster_command(x->cluster, &r, x->text, sizeof(x->text), &x->text_len);
	} else if (pm_admin_arg_is(&r, 0, "quota") &&
		   (pm_admin_arg_is(&r, 1, "set") || pm_admin_arg_is(&r, 1, "del"))) {
		n = cmd_quota(x, c, &r, &st);
		atomic_store_explicit(&x->c.quotas, x->cfg.nquotas, memory_order_relaxed);
	} else if (x->ufd < 0) {
		st = unavailable(x, "");
	} else {
		n = forward(x, c, &st);
		/* a USER change: the users are asked for once the reply is sent */
		x->users_dirty |= pm_admin_arg_is(&r, 0, "user") && st == PM_ADMIN_OK &&
				  !pm_admin_arg_is(&r, 1, "list") && !pm_admin_arg_is(&r, 1, "export");
	}
	if (n == 0)
		n = pm_admin_reply_encode(st, x->text, x->text_len, x->out, MSG_BYTES);
	BUMP(x, commands);
	if (st != PM_ADMIN_OK)
		BUMP(x, command_errors);
	return n;
}

/* ---------------------------------------------------------------- clients */

/* Read what is there; answer a whole request. False: close the connection. */
static bool serve_client(struct ctl *x, struct client *c)
{
	uint32_t have = c->len, len; /* bytes of buf so far, prefix included */
	int rc = pm_admin_read_request(c->fd, c->buf, &have, &len);
	c->len = have;
	if (rc <= 0)
		return rc == 0;
	c->len = len; /* dispatch reads the payload's length here */
	size_t n = dispatch(x, c);
	c->len = 0;
	bool sent = n && pm_admin_send_all(c->fd, x->out, n, (int)x->cfg.daemon_timeout_ms);
	if (x->users_dirty) /* x->out is free again */
		users_refresh(x);
	return sent;
}

static void accept_clients(struct ctl *x)
{
	int fd;
	while ((fd = accept4(x->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		uint32_t i = 0;
		while (i < CTL_CONNS_MAX && x->clients[i].fd >= 0)
			i++;
		if (i == CTL_CONNS_MAX) {
			close(fd); /* full: the client sees the connection closed */
			continue;
		}
		x->clients[i].fd = fd;
		x->clients[i].len = 0;
	}
}

static void run(struct ctl *x)
{
	struct pollfd pf[CTL_CONNS_MAX + 2];
	uint32_t idx[CTL_CONNS_MAX];
	while (!quit) {
		uint32_t n = 0, nc = 0;
		pf[n++] = (struct pollfd){ .fd = x->lfd, .events = POLLIN };
		pf[n++] = (struct pollfd){ .fd = x->ufd, .events = POLLIN }; /* -1: ignored */
		for (uint32_t i = 0; i < CTL_CONNS_MAX; i++)
			if (x->clients[i].fd >= 0) {
				idx[nc++] = i;
				pf[n++] = (struct pollfd){ .fd = x->clients[i].fd, .events = POLLIN };
			}
		int k = poll(pf, n, CTL_TICK_MS);
		if (k > 0 && pf[1].revents && x->ufd >= 0)
			detach(x, "it closed its admin socket");
		for (uint32_t i = 0; k > 0 && i < nc; i++) {
			struct client *c = &x->clients[idx[i]];
			if (pf[2 + i].revents && !serve_client(x, c)) {
				close(c->fd);
				c->fd = -1;
			}
		}
		if (k > 0 && pf[0].revents) /* after the clients: their closes free slots */
			accept_clients(x);
		tick(x);
	}
}

/* ---------------------------------------------------------------- set-up */

static size_t metrics_fill(void *arg, char *out, size_t cap)
{
	struct ctl *x = arg;
	size_t n = 0;
	pthread_mutex_lock(&x->lock);
	x->scrape.up = x->up && x->pushed; /* attached and given its quotas */
	x->scrape.c = &x->c;
	if (!x->scrape.up || ctl_scrape_read(&x->map, &x->scrape))
		n = ctl_metrics_render(&x->scrape, out, cap);
	pthread_mutex_unlock(&x->lock);
	if (n)
		ctl_cluster_metrics(x->cluster, out, cap, &n);
	BUMP(x, scrapes);
	if (n == 0)
		BUMP(x, scrape_errors);
	return n;
}

static int listen_control(struct ctl *x, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(x->control_sock) >= sizeof(sa.sun_path))
		return snprintf(err, errlen, "control_socket %s: path too long", x->control_sock), -1;
	int probe = pm_admin_connect(x->control_sock);
	if (probe >= 0) {
		close(probe);
		return snprintf(err, errlen, "%s: another pomai-control serves it", x->control_sock),
		       -1;
	}
	unlink(x->control_sock); /* a stale one: nobody answers on it */
	memcpy(sa.sun_path, x->control_sock, strlen(x->control_sock) + 1);
	mode_t old = umask(0177); /* created 0600: only its owner may use it */
	x->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int bad = x->lfd < 0 || bind(x->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		  listen(x->lfd, (int)CTL_CONNS_MAX) != 0;
	umask(old);
	if (bad)
		return snprintf(err, errlen, "control_socket %s: %s", x->control_sock,
				strerror(errno)), -1;
	return 0;
}

/* --config first, then every other flag over it. 1: exit 0 (printed). */
static int parse_args(struct ctl_config *cfg, int argc, char **argv, char *err, size_t n)
{
	ctl_config_defaults(cfg);
	bool print = false;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--config") && i + 1 < argc &&
		    ctl_config_load(cfg, argv[i + 1], err, n) != 0)
			return -1;
	for (int i = 1; i < argc; i++) {
		char key[64];
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			ctl_config_usage(stdout);
			return 1;
		}
		if (!strcmp(argv[i], "--print-config")) {
			print = true;
			continue;
		}
		if (strncmp(argv[i], "--", 2) || i + 1 >= argc || strlen(argv[i]) - 2 >= sizeof(key))
			return snprintf(err, n, "%s: want --KEY VALUE (--help)", argv[i]), -1;
		size_t j = 0;
		for (const char *p = argv[i] + 2; *p; p++)
			key[j++] = *p == '-' ? '_' : *p;
		key[j] = '\0';
		if (strcmp(key, "config") && ctl_config_set(cfg, key, argv[i + 1], err, n) != 0)
			return -1;
		i++;
	}
	if (print)
		ctl_config_print(cfg, stdout);
	return print;
}

static int setup(struct ctl *x, char *err, size_t n)
{
	ctl_daemon_socket(&x->cfg, x->daemon_sock, sizeof(x->daemon_sock));
	ctl_control_socket(&x->cfg, x->control_sock, sizeof(x->control_sock));
	ctl_stats_path(&x->cfg, x->stats_path, sizeof(x->stats_path));
	ctl_users_path(&x->cfg, x->users_path, sizeof(x->users_path));
	x->lfd = x->ufd = -1;
	pthread_mutex_init(&x->lock, NULL);
	atomic_store(&x->c.start_unix_ms, unix_ms());
	atomic_store(&x->c.quotas, x->cfg.nquotas);
	if (!(x->out = malloc(MSG_BYTES)))
		return snprintf(err, n, "out of memory"), -1;
	for (uint32_t i = 0; i < CTL_CONNS_MAX; i++) {
		x->clients[i].fd = -1;
		if (!(x->clients[i].buf = malloc(MSG_BYTES)))
			return snprintf(err, n, "out of memory"), -1;
	}
	if (users_load(x, err, n) != 0 || listen_control(x, err, n) != 0)
		return -1;
	if (x->cfg.etcd_endpoints[0] &&
	    !(x->cluster = ctl_cluster_start(&x->cfg, x->daemon_sock, err, n)))
		return -1;
	if (x->cfg.metrics_port &&
	    !(x->http = ctl_http_start(x->cfg.metrics_addr, x->cfg.metrics_port, metrics_fill, x,
				       err, n)))
		return -1;
	return 0;
}

static void teardown(struct ctl *x)
{
	ctl_http_stop(x->http);
	ctl_cluster_stop(x->cluster);
	if (x->ufd >= 0)
		close(x->ufd);
	pm_stats_close(&x->map);
	for (uint32_t i = 0; i < CTL_CONNS_MAX; i++) {
		if (x->clients[i].fd >= 0)
			close(x->clients[i].fd);
		free(x->clients[i].buf);
	}
	if (x->lfd >= 0) {
		close(x->lfd);
		unlink(x->control_sock);
	}
	free(x->out);
	free(x->users);
}

int main(int argc, char **argv)
{
	static struct ctl x;
	char err[CTL_ERR_BYTES];
	int rc = parse_args(&x.cfg, argc, argv, err, sizeof(err));
	if (rc != 0) {
		if (rc < 0)
			fprintf(stderr, "pomai-control: %s\n", err);
		return rc < 0 ? 2 : 0;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (setup(&x, err, sizeof(err)) != 0) {
		fprintf(stderr, "pomai-control: %s\n", err);
		teardown(&x);
		return 1;
	}
	char a[INET_ADDRSTRLEN];
	ctl_format_ipv4(x.cfg.metrics_addr, a, sizeof(a));
	printf("pomai-control: ready: socket %s, daemon %s, metrics ", x.control_sock, x.daemon_sock);
	if (x.cfg.metrics_port)
		printf("http://%s:%u/metrics\n", a, x.cfg.metrics_port);
	else
		printf("off\n");
	fflush(stdout);
	run(&x);
	logf_("stopping");
	teardown(&x);
	return 0;
}
