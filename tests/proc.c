/* SPDX-License-Identifier: MIT
 *
 * proc.c — the process harness (proc.h says what it promises).
 *
 * A started process writes what the harness captures to one pipe; the
 * harness reads it into p->out until the ready line is whole (a sliding
 * window: the last PROC_OUT_BYTES - 1 bytes are kept), then hands the pipe to
 * a drain thread (forward, log, drop) or to the caller. The child gets its
 * environment built before the fork, so that between fork and exec it calls
 * only async-signal-safe functions (the test may run threads of its own).
 * Exits are waited for on a pidfd with a deadline; without pidfds (older
 * kernels) by bounded polls of waitpid(WNOHANG).
 */
#define _GNU_SOURCE
#include "proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rand.h"

extern char **environ;

/* ---------------------------------------------------------------- clock */

uint64_t proc_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

uint64_t proc_now_ms(void)
{
	return proc_now_ns() / 1000000u;
}

void proc_pause_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&t, NULL);
}

/* ms left until deadline (a proc_now_ms() value), at least 0. */
static int ms_left(uint64_t deadline)
{
	uint64_t now = proc_now_ms();
	return now < deadline ? (int)(deadline - now) : 0;
}

/* ---------------------------------------------------------------- the live list */

/* A test's own mistake (more than the harness keeps): said, and fatal. */
static void too_many(const char *what)
{
	fprintf(stderr, "proc: more %s than a test may give (proc.h)\n", what);
	abort();
}

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t live[PROC_LIVE_MAX];
static bool live_atexit;

static void live_add(pid_t pid)
{
	pthread_mutex_lock(&live_lock);
	if (!live_atexit) {
		atexit(proc_kill_all);
		live_atexit = true;
	}
	uint32_t i = 0;
	while (i < PROC_LIVE_MAX && live[i] > 0)
		i++;
	if (i == PROC_LIVE_MAX)
		too_many("processes running at once");
	live[i] = pid;
	pthread_mutex_unlock(&live_lock);
}

static bool live_has(pid_t pid)
{
	bool has = false;
	pthread_mutex_lock(&live_lock);
	for (uint32_t i = 0; i < PROC_LIVE_MAX && !has; i++)
		has = live[i] == pid;
	pthread_mutex_unlock(&live_lock);
	return has;
}

static void live_remove(pid_t pid)
{
	pthread_mutex_lock(&live_lock);
	for (uint32_t i = 0; i < PROC_LIVE_MAX; i++)
		if (live[i] == pid)
			live[i] = 0;
	pthread_mutex_unlock(&live_lock);
}

void proc_kill_all(void)
{
	proc_kill_all_but(NULL);
}

void proc_kill_all_but(const struct proc *keep)
{
	pid_t spare = keep && !keep->reaped ? keep->pid : 0;
	pthread_mutex_lock(&live_lock);
	for (uint32_t i = 0; i < PROC_LIVE_MAX; i++) {
		int st;
		if (live[i] <= 0 || live[i] == spare)
			continue;
		kill(live[i], SIGKILL);
		waitpid(live[i], &st, 0);
		live[i] = 0;
	}
	pthread_mutex_unlock(&live_lock);
}

/* ---------------------------------------------------------------- building a process */

void proc_init(struct proc *p, const char *path)
{
	memset(p, 0, sizeof(*p));
	p->argv[0] = path;
	p->argc = 1;
	p->pid = -1;
	p->out_fd = p->in_fd = p->log_fd = -1;
}

void proc_arg(struct proc *p, const char *a)
{
	if (p->argc >= PROC_ARGS_MAX)
		too_many("arguments");
	p->argv[p->argc++] = a;
	p->argv[p->argc] = NULL;
}

void proc_argf(struct proc *p, const char *fmt, ...)
{
	va_list ap;
	size_t room = sizeof(p->strs) - p->strs_used;
	va_start(ap, fmt);
	int n = vsnprintf(p->strs + p->strs_used, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room)
		too_many("argument bytes");
	proc_arg(p, p->strs + p->strs_used);
	p->strs_used += (size_t)n + 1;
}

void proc_args(struct proc *p, const char *const *list)
{
	for (; list && *list; list++)
		proc_arg(p, *list);
}

void proc_env(struct proc *p, const char *name_value)
{
	if (p->envc >= PROC_ENV_MAX)
		too_many("environment entries");
	p->env[p->envc++] = name_value;
}

/* The child's environment: the test's, with p->env's names replaced. */
static char **env_build(const struct proc *p)
{
	size_t n = 0;
	while (environ && environ[n])
		n++;
	char **e = calloc(n + p->envc + 1, sizeof(*e));
	if (!e)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool replaced = false;
		for (uint32_t j = 0; j < p->envc && !replaced; j++) {
			const char *eq = strchr(p->env[j], '=');
			size_t len = eq ? (size_t)(eq - p->env[j]) + 1 : strlen(p->env[j]);
			replaced = !strncmp(environ[i], p->env[j], len);
		}
		if (!replaced)
			e[k++] = environ[i];
	}
	for (uint32_t j = 0; j < p->envc; j++)
		e[k++] = (char *)p->env[j];
	e[k] = NULL;
	return e;
}

/* The file argv[0] names: itself when it holds a '/', else the first
 * executable of that name on PATH (as a shell finds it), into out. */
static void resolve(const char *name, char *out, size_t cap)
{
	const char *path = getenv("PATH");
	snprintf(out, cap, "%s", name);
	if (strchr(name, '/') || !path)
		return;
	for (const char *dir = path; *dir;) {
		size_t len = strcspn(dir, ":");
		char cand[PATH_MAX];
		int n = snprintf(cand, sizeof(cand), "%.*s/%s", (int)len, len ? dir : ".", name);
		if (n > 0 && (size_t)n < sizeof(cand) && access(cand, X_OK) == 0) {
			snprintf(out, cap, "%s", cand);
			return;
		}
		dir += len + (dir[len] == ':');
	}
}

/* A function a forked child runs instead of exec (proc_start_fn). */
struct proc_fn {
	int (*fn)(void *arg);
	void *arg;
};

/* In the child: only async-signal-safe calls until exec (or fn, which is the
 * test's own code, run in a copy of the test).
 *
 * A child forked by the test's main thread dies with the test: meson stops a
 * timed-out test with SIGTERM to the test alone when the children are in
 * other sessions, a `timeout` wrapper signals only the test, and an abort()
 * skips atexit(); each of those used to leave pomaid and pomai-control nodes
 * running (dozens of them, for an hour, on one machine). The death signal is
 * tied to the forking thread, so a child forked by a test's helper thread,
 * which may end first, does not get it (proc.h). */
static void child(const struct proc *p, const char *file, const int out[2], const int in[2],
		  char **envp, const struct proc_fn *run, pid_t parent, bool die_with_parent)
{
	if (die_with_parent) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) /* the test died before the line above */
			_exit(127);
	}
	int null = open("/dev/null", O_RDWR);
	dup2(p->stdin_pipe ? in[0] : null, 0);
	if (p->capture != PROC_CAPTURE_STDERR)
		dup2(out[1], 1);
	if (p->capture != PROC_CAPTURE_STDOUT)
		dup2(out[1], 2);
	if (run) {
		/* the test's processes are not this copy's to stop (it may exit()) */
		memset(live, 0, sizeof(live));
		int rc = run->fn(run->arg);
		fflush(NULL);
		_exit(rc);
	}
	execve(file, (char *const *)p->argv, envp);
	_exit(127);
}

/* ---------------------------------------------------------------- output */

/* Append what was read to p->out, keeping the last PROC_OUT_BYTES - 1 bytes. */
static void out_append(struct proc *p, const char *b, size_t n)
{
	size_t cap = sizeof(p->out) - 1;
	if (n >= cap) {
		b += n - cap;
		n = cap;
	}
	if (p->out_len + n > cap) {
		size_t drop = p->out_len + n - cap;
		memmove(p->out, p->out + drop, p->out_len - drop);
		p->out_len -= drop;
	}
	memcpy(p->out + p->out_len, b, n);
	p->out_len += n;
	p->out[p->out_len] = '\0';
	if (p->log_fd >= 0 && write(p->log_fd, b, n) != (ssize_t)n)
		fprintf(stderr, "proc: writing %s: %s\n", p->log, strerror(errno));
}

static bool ready_seen(const struct proc *p)
{
	const char *at = strstr(p->out, p->ready);
	return at && strchr(at, '\n');
}

/* How waiting for the ready line ended. */
enum ready_end { READY_SEEN, READY_EOF, READY_LATE };

/* Read until the ready line is whole, the output ends, or the deadline. */
static enum ready_end read_ready(struct proc *p)
{
	int wait_ms = p->ready_ms > 0 ? p->ready_ms : PROC_READY_WAIT_MS;
	uint64_t deadline = proc_now_ms() + (uint64_t)wait_ms;
	char buf[4096];
	while (!ready_seen(p)) {
		struct pollfd pf = { .fd = p->out_fd, .events = POLLIN };
		int left = ms_left(deadline);
		int polled = left > 0 ? poll(&pf, 1, left) : 0;
		if (polled < 0 && errno == EINTR)
			continue;
		if (polled <= 0)
			return READY_LATE;
		ssize_t r = read(p->out_fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return READY_EOF; /* it exited, or is exiting */
		out_append(p, buf, (size_t)r);
	}
	return READY_SEEN;
}

static void *drain_main(void *arg)
{
	struct proc *p = arg;
	int to = p->after == PROC_AFTER_LOG ? p->log_fd : p->after == PROC_AFTER_FORWARD ? 2 : -1;
	char buf[4096];
	for (;;) {
		ssize_t r = read(p->out_fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (to >= 0 && write(to, buf, (size_t)r) != r)
			to = -1; /* the sink is gone: keep reading, so that the child never blocks */
	}
	return NULL;
}

/* After the ready line: the pipe goes to a drain thread, or to the caller. */
static bool hand_over(struct proc *p)
{
	if (p->after == PROC_AFTER_KEEP)
		return true;
	p->draining = pthread_create(&p->drain, NULL, drain_main, p) == 0;
	return p->draining;
}

/* Close what the harness holds of a process that has exited. */
static void release(struct proc *p)
{
	if (p->draining) {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += PROC_EXIT_WAIT_MS / 1000;
		if (pthread_timedjoin_np(p->drain, NULL, &dl) != 0) {
			/* a grandchild holds the pipe: stop reading it */
			pthread_cancel(p->drain);
			pthread_join(p->drain, NULL);
		}
		p->draining = false;
	}
	if (p->out_fd >= 0)
		close(p->out_fd);
	if (p->in_fd >= 0)
		close(p->in_fd);
	if (p->log_fd >= 0)
		close(p->log_fd);
	p->out_fd = p->in_fd = p->log_fd = -1;
}

/* ---------------------------------------------------------------- start, wait, stop */

static bool open_pipes(struct proc *p, int out[2], int in[2])
{
	in[0] = in[1] = -1;
	if (pipe2(out, O_CLOEXEC) != 0)
		return false;
	if (p->stdin_pipe && pipe2(in, O_CLOEXEC) != 0) {
		close(out[0]);
		close(out[1]);
		return false;
	}
	if (p->after == PROC_AFTER_LOG) {
		p->log_fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (p->log_fd < 0)
			fprintf(stderr, "proc: cannot open %s: %s\n", p->log, strerror(errno));
	}
	return true;
}

static bool spawn(struct proc *p, const struct proc_fn *run)
{
	int out[2], in[2];
	char file[PATH_MAX];
	char **envp = env_build(p);
	resolve(p->argv[0], file, sizeof(file));
	p->pid = -1;
	p->reaped = false;
	p->status = 0;
	p->out_len = 0;
	p->out[0] = '\0';
	if (!envp || !open_pipes(p, out, in)) {
		free(envp);
		return false;
	}
	fflush(NULL); /* nothing of the test's buffers twice */
	pid_t parent = getpid();
	bool main_thread = (pid_t)syscall(SYS_gettid) == parent;
	pid_t pid = fork();
	if (pid == 0)
		child(p, file, out, in, envp, run, parent, main_thread);
	free(envp);
	close(out[1]);
	if (in[0] >= 0)
		close(in[0]);
	p->out_fd = out[0];
	p->in_fd = in[1];
	if (pid < 0) {
		release(p);
		return false;
	}
	p->pid = pid;
	live_add(pid);
	return true;
}

/* Spawned: wait for the ready line (if any), then hand the output over. */
static bool started(struct proc *p)
{
	if (!p->ready)
		return hand_over(p);
	enum ready_end end = read_ready(p);
	if (end == READY_SEEN && hand_over(p))
		return true;
	/* it will not be ready: its exit status says why, or it is killed */
	if (!proc_wait(p, end == READY_EOF ? PROC_EXIT_WAIT_MS : 0)) {
		kill(p->pid, SIGKILL);
		proc_wait(p, -1);
	}
	return false;
}

bool proc_start(struct proc *p)
{
	return spawn(p, NULL) && started(p);
}

bool proc_start_fn(struct proc *p, int (*fn)(void *arg), void *arg)
{
	const struct proc_fn run = { fn, arg };
	return spawn(p, &run) && started(p);
}

/* Whether p is a child of ours not yet reaped. One that proc_kill_all()
 * reaped is marked so (killed by SIGKILL), and its pid, which the system may
 * have given to another process since, is never signalled again. */
static bool ours(struct proc *p)
{
	if (p->pid <= 0 || p->reaped)
		return false;
	if (live_has(p->pid))
		return true;
	p->reaped = true;
	p->status = SIGKILL; /* a wait status: killed by SIGKILL */
	release(p);
	return false;
}

bool proc_alive(const struct proc *p)
{
	siginfo_t si = { 0 };
	return p->pid > 0 && !p->reaped && live_has(p->pid) &&
	       waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
}

/* Wait for pid to end, at most ms (-1: for ever); true with *status once it has. */
static bool wait_pid(pid_t pid, int ms, int *status)
{
	if (ms < 0)
		return waitpid(pid, status, 0) == pid;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0) {
		struct pollfd pf = { .fd = pfd, .events = POLLIN };
		int r = poll(&pf, 1, ms);
		close(pfd);
		return r > 0 && waitpid(pid, status, 0) == pid;
	}
	for (uint64_t deadline = proc_now_ms() + (uint64_t)ms;; proc_pause_ms(PROC_POLL_MS)) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r != 0)
			return r == pid;
		if (ms_left(deadline) == 0)
			return false;
	}
}

bool proc_wait(struct proc *p, int ms)
{
	if (!ours(p))
		return p->reaped;
	if (!wait_pid(p->pid, ms, &p->status))
		return false;
	p->reaped = true;
	live_remove(p->pid);
	release(p);
	return true;
}

bool proc_stop(struct proc *p, int sig, int ms)
{
	if (!ours(p))
		return p->reaped;
	kill(p->pid, sig);
	if (proc_wait(p, ms))
		return true;
	kill(p->pid, SIGKILL);
	proc_wait(p, -1);
	return false;
}

bool proc_kill(struct proc *p)
{
	if (!ours(p))
		return false;
	bool running = proc_alive(p);
	if (!running) {
		proc_wait(p, -1);
		printf("\n  %s died before it was killed: %s %d\n", p->argv[0],
		       WIFSIGNALED(p->status) ? "signal" : "exit code",
		       WIFSIGNALED(p->status) ? WTERMSIG(p->status) : WEXITSTATUS(p->status));
		return false;
	}
	uint64_t t0 = proc_now_ms();
	kill(p->pid, SIGKILL);
	if (!proc_wait(p, PROC_KILL_NOTICE_MS)) {
		printf("\n  %s %d still there %d ms after SIGKILL; waiting", p->argv[0], (int)p->pid,
		       PROC_KILL_NOTICE_MS);
		fflush(stdout);
		proc_wait(p, -1);
		printf("\n  ... it died after %llu ms", (unsigned long long)(proc_now_ms() - t0));
	}
	return proc_killed_by(p, SIGKILL);
}

bool proc_exited_ok(const struct proc *p)
{
	return proc_exit_code(p) == 0;
}

int proc_exit_code(const struct proc *p)
{
	return p->reaped && WIFEXITED(p->status) ? WEXITSTATUS(p->status) : -1;
}

bool proc_killed_by(const struct proc *p, int sig)
{
	return p->reaped && WIFSIGNALED(p->status) && WTERMSIG(p->status) == sig;
}

/* ---------------------------------------------------------------- a command to its end */

/* Feed input and read the output until both are done or the deadline. */
static void run_io(struct proc *p, const char *input, char *out, size_t cap, uint64_t deadline)
{
	size_t in_len = input ? strlen(input) : 0, in_off = 0, n = 0;
	char sink[4096];
	if (p->in_fd >= 0 && in_len == 0) {
		close(p->in_fd);
		p->in_fd = -1;
	}
	while (p->out_fd >= 0 && ms_left(deadline) > 0) {
		struct pollfd pf[2] = { { .fd = p->out_fd, .events = POLLIN },
					{ .fd = p->in_fd, .events = POLLOUT } };
		if (poll(pf, p->in_fd >= 0 ? 2 : 1, ms_left(deadline)) <= 0)
			break;
		if (p->in_fd >= 0 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(p->in_fd, input + in_off, in_len - in_off);
			in_off += w > 0 ? (size_t)w : 0;
			if (w < 0 || in_off == in_len) {
				close(p->in_fd);
				p->in_fd = -1;
			}
		}
		if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		bool room = n + 1 < cap;
		ssize_t r = read(p->out_fd, room ? out + n : sink, room ? cap - 1 - n : sizeof(sink));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += room ? (size_t)r : 0;
	}
	if (cap)
		out[n] = '\0';
}

int proc_run(struct proc *p, const char *input, char *out, size_t cap, int ms)
{
	uint64_t deadline = proc_now_ms() + (uint64_t)(ms > 0 ? ms : PROC_EXIT_WAIT_MS);
	p->ready = NULL;
	p->stdin_pipe = input != NULL;
	if (cap)
		out[0] = '\0';
	if (!spawn(p, NULL))
		return -1;
	run_io(p, input, out, cap, deadline);
	if (!proc_wait(p, ms_left(deadline))) {
		kill(p->pid, SIGKILL);
		proc_wait(p, -1);
		return -1;
	}
	return proc_exit_code(p);
}

/* ---------------------------------------------------------------- pomaid */

static bool port_taken(const struct proc *p)
{
	return strstr(p->out, "Address already in use") != NULL;
}

static void pomaid_argv(struct pomaid *d, const char *const *extra, const char *env)
{
	struct proc *p = &d->proc;
	proc_init(p, d->wrap ? d->wrap[0] : d->path);
	if (d->wrap) {
		proc_args(p, d->wrap + 1);
		proc_arg(p, d->path);
	}
	proc_arg(p, "--shards");
	proc_argf(p, "%u", d->shards ? d->shards : POMAID_SHARDS_DEFAULT);
	proc_arg(p, "--base-port");
	proc_argf(p, "%u", d->base);
	proc_arg(p, "--tcp-port");
	proc_argf(p, "%u", d->base - 1u);
	if (d->dir[0]) {
		proc_arg(p, "--data-dir");
		proc_arg(p, d->dir);
	}
	if (d->repl) {
		proc_arg(p, "--repl-port");
		proc_argf(p, "%u", d->repl_port);
	}
	proc_args(p, d->flags);
	proc_args(p, extra);
	if (env)
		proc_env(p, env);
	p->ready = POMAID_READY_LINE;
	p->ready_ms = d->ready_ms;
	p->after = d->after;
	p->log = d->log;
}

bool pomaid_start(struct pomaid *d, const char *const *extra, const char *env)
{
	uint32_t shards = d->shards ? d->shards : POMAID_SHARDS_DEFAULT;
	bool pick = d->base == 0;
	for (uint32_t attempt = 0; attempt < (pick ? PROC_PORT_TRIES : 1u); attempt++) {
		if (pick && (d->base = proc_ports_pick(shards)) == 0)
			return false;
		if (pick && d->repl && (d->repl_port = proc_port_pick(SOCK_STREAM, d->base - 1u)) == 0)
			return false;
		pomaid_argv(d, extra, env);
		if (proc_start(&d->proc))
			return true;
		if (!port_taken(&d->proc))
			break;
	}
	return false;
}

bool pomaid_stop(struct pomaid *d)
{
	struct proc *p = &d->proc;
	if (p->pid <= 0)
		return false;
	if (!p->reaped && !proc_stop(p, SIGTERM, PROC_EXIT_WAIT_MS)) {
		printf("\n  pomaid did not exit within %d ms of SIGTERM\n", PROC_EXIT_WAIT_MS);
		return false;
	}
	if (!proc_exited_ok(p))
		printf("\n  pomaid ended abnormally: status 0x%x\n", (unsigned)p->status);
	return proc_exited_ok(p);
}

bool pomaid_kill(struct pomaid *d)
{
	return proc_kill(&d->proc);
}

bool pomaid_alive(const struct pomaid *d)
{
	return proc_alive(&d->proc);
}

uint64_t pomaid_recovered(const struct pomaid *d)
{
	uint64_t n = 0;
	for (const char *p = d->proc.out; (p = strstr(p, "recovered ")) != NULL; p++)
		n += strtoull(p + 10, NULL, 10);
	return n;
}

/* ---------------------------------------------------------------- ports */

bool proc_port_free(int type, uint16_t port)
{
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd >= 0 && type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

bool proc_ports_free(uint16_t base, uint32_t shards)
{
	bool ok = proc_port_free(SOCK_STREAM, (uint16_t)(base - 1));
	for (uint32_t i = 0; i < shards && ok; i++)
		ok = proc_port_free(SOCK_DGRAM, (uint16_t)(base + i));
	return ok;
}

/* Seeded from the pid and the clock on first use: never from a test's seed,
 * so that replaying a seed does not replay a port another run holds. */
static uint64_t port_rng;

uint16_t proc_ports_pick(uint32_t shards)
{
	if (!port_rng)
		port_rng = (uint64_t)getpid() * 7919u ^ proc_now_ns();
	for (uint32_t i = 0; i < PROC_PORT_TRIES; i++) {
		uint16_t base =
			(uint16_t)(PROC_PORT_LO + pm_test_rand(&port_rng) % (PROC_PORT_SPAN - shards));
		if (proc_ports_free(base, shards))
			return base;
	}
	return 0;
}

uint16_t proc_port_pick(int type, uint16_t not)
{
	if (!port_rng)
		port_rng = (uint64_t)getpid() * 7919u ^ proc_now_ns();
	for (uint32_t i = 0; i < PROC_PORT_TRIES; i++) {
		uint16_t port = (uint16_t)(PROC_PORT_LO + pm_test_rand(&port_rng) % PROC_PORT_SPAN);
		if (port != not && proc_port_free(type, port))
			return port;
	}
	return 0;
}

int proc_tcp_listen(uint16_t not, uint16_t *port)
{
	for (uint32_t i = 0; i < PROC_PORT_TRIES; i++) {
		uint16_t at = proc_port_pick(SOCK_STREAM, not);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(at),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int fd = at ? socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1, one = 1;
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 16) == 0) {
			*port = at;
			return fd;
		}
		close(fd);
	}
	return -1;
}

/* ---------------------------------------------------------------- files, machine */

bool proc_dir_make(char *out, const char *tag)
{
	snprintf(out, PATH_MAX, "/tmp/pomai-%s-XXXXXX", tag);
	return mkdtemp(out) != NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

void proc_dir_remove(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

bool proc_ci(void)
{
	const char *ci = getenv("CI");
	return ci && !strcmp(ci, "true");
}

double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	unsigned long long ut, st;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			 &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kib = -1;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kib = atol(line + 6);
	if (f)
		fclose(f);
	return kib;
}

/* ---------------------------------------------------------------- INFO text */

/* Where the value of `field` starts in text (its part), or NULL. */
static const char *info_value_at(const char *text, const char *part, const char *field)
{
	const char *from = part ? strstr(text, part) : text;
	if (!from)
		return NULL;
	const char *to = part ? strstr(from + 1, "@shard:") : NULL;
	char want[96];
	int n = snprintf(want, sizeof(want), "\n%s:", field);
	const char *at = n > 0 && (size_t)n < sizeof(want) ? strstr(from, want) : NULL;
	return at && (!to || at < to) ? at + n : NULL;
}

long long info_text_field(const char *text, const char *part, const char *field)
{
	const char *at = info_value_at(text, part, field);
	return at ? atoll(at) : -1;
}

bool info_text_word(const char *text, const char *part, const char *field, char *out,
		    size_t cap)
{
	const char *at = info_value_at(text, part, field);
	if (!at || cap == 0)
		return false;
	size_t n = strcspn(at, "\r\n");
	n = n < cap - 1 ? n : cap - 1;
	memcpy(out, at, n);
	out[n] = '\0';
	return true;
}

/* ---------------------------------------------------------------- sockets */

bool proc_send_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		b += w;
		n -= (size_t)w;
	}
	return true;
}
