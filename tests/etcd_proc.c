/* SPDX-License-Identifier: MIT
 *
 * etcd_proc.c — a real etcd for a test (etcd_proc.h says what it promises).
 * libc only, like proc.c: the health check and etcd_proc_post() speak
 * HTTP/1.0 over a socket of their own, so that a suite links no HTTP
 * library for its harness (and test_etcd checks control/etcd.c against an
 * etcd it reaches without it).
 */
#define _GNU_SOURCE
#include "etcd_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bytes of a request etcd_proc_post() sends (its headers and the body). */
#define ETCD_PROC_REQUEST_BYTES 8192u
/* Bytes of an answer read (a health answer, a compaction's, a range of a
 * few keys): the rest is read and dropped. */
#define ETCD_PROC_ANSWER_BYTES 65536u
/* One health check's bound, and the interval of the poll for health. */
#define ETCD_PROC_HEALTH_CALL_MS 1000
#define ETCD_PROC_HEALTH_POLL_MS 50

/* ---------------------------------------------------------------- HTTP/1.0 by hand */

static int ms_left(uint64_t deadline)
{
	uint64_t now = proc_now_ms();
	return now < deadline ? (int)(deadline - now) : 0;
}

/* A connected TCP socket to 127.0.0.1:port, or -1 by the deadline. */
static int connect_by(uint16_t port, uint64_t deadline)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	struct pollfd pf = { .fd = fd, .events = POLLOUT };
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	if (poll(&pf, 1, ms_left(deadline)) != 1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool send_by(int fd, const char *p, size_t n, uint64_t deadline)
{
	while (n > 0) {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		if (poll(&pf, 1, ms_left(deadline)) != 1)
			return false;
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Read to the end (HTTP/1.0: the server closes) into buf; its length, or
 * -1 at the deadline. */
static ssize_t recv_by(int fd, char *buf, size_t cap, uint64_t deadline)
{
	size_t n = 0;
	char sink[4096];
	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, ms_left(deadline)) != 1)
			return -1;
		bool room = n + 1 < cap;
		ssize_t r = recv(fd, room ? buf + n : sink, room ? cap - 1 - n : sizeof(sink), 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			break;
		n += room ? (size_t)r : 0;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

static int http_call(uint16_t port, const char *method, const char *path, const char *body,
		     char *out, size_t cap, int ms)
{
	uint64_t deadline = proc_now_ms() + (uint64_t)ms;
	char *req = malloc(ETCD_PROC_REQUEST_BYTES), *ans = malloc(ETCD_PROC_ANSWER_BYTES);
	int fd = -1, status = 0;
	size_t blen = body ? strlen(body) : 0;
	int n = req ? snprintf(req, ETCD_PROC_REQUEST_BYTES,
			       "%s %s HTTP/1.0\r\nHost: 127.0.0.1:%u\r\n"
			       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			       method, path, port, blen, body ? body : "")
		    : -1;
	if (cap)
		out[0] = '\0';
	if (ans && n > 0 && (size_t)n < ETCD_PROC_REQUEST_BYTES &&
	    (fd = connect_by(port, deadline)) >= 0 && send_by(fd, req, (size_t)n, deadline) &&
	    recv_by(fd, ans, ETCD_PROC_ANSWER_BYTES, deadline) > 0 &&
	    sscanf(ans, "HTTP/1.%*d %d", &status) == 1) {
		const char *b = strstr(ans, "\r\n\r\n");
		if (cap && b)
			snprintf(out, cap, "%s", b + 4);
	}
	if (fd >= 0)
		close(fd);
	free(req);
	free(ans);
	return status;
}

int etcd_proc_post(const struct etcd_proc *e, const char *path, const char *body, char *out,
		   size_t cap, int ms)
{
	return http_call(e->client_port, "POST", path, body, out, cap, ms);
}

/* GET /health until {"health":"true"} or the deadline. */
static bool healthy_by(const struct etcd_proc *e, uint64_t deadline)
{
	char out[256];
	for (;; proc_pause_ms(ETCD_PROC_HEALTH_POLL_MS)) {
		if (http_call(e->client_port, "GET", "/health", NULL, out, sizeof(out),
			      ETCD_PROC_HEALTH_CALL_MS) == 200 &&
		    strstr(out, "\"health\":\"true\""))
			return true;
		if (ms_left(deadline) == 0 || !proc_alive(&e->proc))
			return false;
	}
}

/* ---------------------------------------------------------------- the process */

bool etcd_proc_installed(const struct etcd_proc *e)
{
	const char *name = e->path ? e->path : "etcd";
	if (strchr(name, '/'))
		return access(name, X_OK) == 0;
	const char *path = getenv("PATH");
	for (const char *dir = path ? path : ""; *dir;) {
		size_t len = strcspn(dir, ":");
		char cand[PATH_MAX];
		int n = snprintf(cand, sizeof(cand), "%.*s/%s", (int)len, len ? dir : ".", name);
		if (n > 0 && (size_t)n < sizeof(cand) && access(cand, X_OK) == 0)
			return true;
		dir += len + (dir[len] == ':');
	}
	return false;
}

static void etcd_argv(struct etcd_proc *e)
{
	struct proc *p = &e->proc;
	proc_init(p, e->path ? e->path : "etcd");
	proc_args(p, (const char *const[]){ "--name", "pm", "--data-dir", NULL });
	proc_argf(p, "%s/data", e->dir);
	proc_arg(p, "--listen-client-urls");
	proc_argf(p, "http://127.0.0.1:%u", e->client_port);
	proc_arg(p, "--advertise-client-urls");
	proc_argf(p, "http://127.0.0.1:%u", e->client_port);
	proc_arg(p, "--listen-peer-urls");
	proc_argf(p, "http://127.0.0.1:%u", e->peer_port);
	proc_arg(p, "--initial-advertise-peer-urls");
	proc_argf(p, "http://127.0.0.1:%u", e->peer_port);
	proc_arg(p, "--initial-cluster");
	proc_argf(p, "pm=http://127.0.0.1:%u", e->peer_port);
	proc_args(p, (const char *const[]){ "--logger", "zap", "--log-outputs", "stderr",
					    "--experimental-watch-progress-notify-interval", "1s",
					    NULL });
	proc_args(p, e->flags);
	p->ready = ETCD_PROC_READY_LINE;
	p->ready_ms = ETCD_PROC_READY_MS;
	p->after = PROC_AFTER_LOG;
	p->log = e->log;
}

static bool port_taken(const struct etcd_proc *e)
{
	return strcasestr(e->proc.out, "address already in use") != NULL;
}

/* etcd's directory on tmpfs where there is one (/dev/shm), else as every
 * test's: etcd commits every change (a lease's expiry too) with an fsync,
 * and behind the fsyncs of the pomaid logs (wal = sync) on a shared disk a
 * commit can wait seconds — etcd's own guidance is a disk of its own. */
static bool etcd_dir_make(char *out)
{
	snprintf(out, PATH_MAX, "/dev/shm/pomai-etcd-XXXXXX");
	return mkdtemp(out) != NULL || proc_dir_make(out, "etcd");
}

bool etcd_proc_start(struct etcd_proc *e)
{
	bool first = !e->dir[0];
	bool pick_client = first && !e->client_port, pick_peer = first && !e->peer_port;
	if (first && !etcd_dir_make(e->dir))
		return false;
	snprintf(e->log, sizeof(e->log), "%s/etcd.log", e->dir);
	uint32_t attempts = pick_client || pick_peer ? PROC_PORT_TRIES : 1u;
	for (uint32_t attempt = 0; attempt < attempts; attempt++) {
		if (pick_client && !(e->client_port = proc_port_pick(SOCK_STREAM, e->peer_port)))
			return false;
		if (pick_peer && !(e->peer_port = proc_port_pick(SOCK_STREAM, e->client_port)))
			return false;
		snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%u", e->client_port);
		etcd_argv(e);
		e->paused = false;
		uint64_t deadline = proc_now_ms() + ETCD_PROC_READY_MS;
		if (proc_start(&e->proc))
			return healthy_by(e, deadline);
		if (!port_taken(e))
			break;
	}
	return false;
}

bool etcd_proc_alive(const struct etcd_proc *e)
{
	return proc_alive(&e->proc);
}

/* Whether /proc/PID/stat shows it stopped (state T). */
static bool shows_stopped(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	return p && p[1] == ' ' && p[2] == 'T';
}

static bool signal_shown(struct etcd_proc *e, int sig, bool stopped)
{
	if (!etcd_proc_alive(e) || kill(e->proc.pid, sig) != 0)
		return false;
	for (uint64_t deadline = proc_now_ms() + ETCD_PROC_SIGNAL_MS;;
	     proc_pause_ms(PROC_POLL_MS)) {
		if (shows_stopped(e->proc.pid) == stopped) {
			e->paused = stopped;
			return true;
		}
		if (ms_left(deadline) == 0)
			return false;
	}
}

bool etcd_proc_pause(struct etcd_proc *e)
{
	return signal_shown(e, SIGSTOP, true);
}

bool etcd_proc_resume(struct etcd_proc *e)
{
	return signal_shown(e, SIGCONT, false);
}

bool etcd_proc_stop(struct etcd_proc *e)
{
	if (e->proc.pid <= 0)
		return false;
	if (e->paused)
		etcd_proc_resume(e); /* a stopped process does not act on SIGTERM */
	return proc_stop(&e->proc, SIGTERM, PROC_EXIT_WAIT_MS);
}

bool etcd_proc_kill(struct etcd_proc *e)
{
	e->paused = false;
	return e->proc.pid > 0 && proc_kill(&e->proc);
}

const char *etcd_proc_url(const struct etcd_proc *e)
{
	return e->url;
}

void etcd_proc_remove(struct etcd_proc *e)
{
	if (e->proc.pid > 0 && !e->proc.reaped && etcd_proc_alive(e))
		proc_kill(&e->proc);
	else if (e->proc.pid > 0 && !e->proc.reaped)
		proc_wait(&e->proc, -1); /* it died by itself: reaped */
	if (e->dir[0])
		proc_dir_remove(e->dir);
	e->dir[0] = '\0';
}
