/* SPDX-License-Identifier: MIT
 *
 * pomaid_proc.h — for suites that look at how a real pomaid starts, refuses
 * to start, and lays out its data directory: run it (path in the suite's
 * argv[1]) on free loopback ports with the suite's flags, extra flags and an
 * environment variable, capture what it prints (stdout and stderr) up to its
 * ready line or its exit, stop it, read a field of INFO's Total section.
 * Nothing sleeps to synchronise: the ready line, exit and replies are waited
 * for, each with a deadline.
 */
#ifndef POMAI_TESTS_POMAID_PROC_H
#define POMAI_TESTS_POMAID_PROC_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cu_main.h"
#include "pomai.h"
#include "ports.h"

#define PROC_SHARDS 2u
/* What pomaid prints up to its ready line (or exit) that is kept. */
#define PROC_OUT_BYTES 16384u
/* Start-up (slow under ASan on a busy machine), and exit after SIGTERM. */
#define PROC_READY_WAIT_MS 60000
#define PROC_EXIT_WAIT_MS 30000
/* Extra flags a start may add. */
#define PROC_ARGS_MAX 16u

struct proc {
	const char *pomaid;
	pid_t pid;                     /* -1: not running */
	uint16_t base;                 /* UDP port of shard 0; TCP on base - 1 */
	char dir[PATH_MAX];            /* --data-dir */
	char out[PROC_OUT_BYTES];      /* what it printed up to ready or exit */
	int status;                    /* its wait status when it exited at start-up */
};

/* The pomaid a test started and has not stopped: what a fatal assertion
 * leaves for proc_cleanup (each test starts with it, and main ends with it). */
static pid_t proc_live = -1;

static inline void proc_cleanup(void)
{
	int st;
	if (proc_live > 0) {
		kill(proc_live, SIGKILL);
		waitpid(proc_live, &st, 0);
	}
	proc_live = -1;
}

static inline uint64_t proc_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* The interval of a bounded poll loop, never a wait for a thread. */
static inline void proc_pause_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&t, NULL);
}

/* Wait for pid to end, at most ms; true with *status once it has. */
static inline bool proc_wait_exit(pid_t pid, int ms, int *status)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0) {
		struct pollfd p = { .fd = pfd, .events = POLLIN };
		int r = poll(&p, 1, ms);
		close(pfd);
		if (r <= 0)
			return false;
	}
	return waitpid(pid, status, 0) == pid;
}

static inline void proc_exec(const struct proc *p, int out[2], const char *const *extra,
			     const char *env)
{
	char port[16], tport[16];
	const char *argv[32 + PROC_ARGS_MAX] = { "pomaid", "--shards", "2", "--data-dir", p->dir,
		"--arena-bytes", "64M", "--seeds", "65536", "--hugepages", "no",
		"--wal-segment-bytes", "16M", "--knn-timeout-ms", "2000",
		"--idle-sleep-us", "1000", "--base-port", port, "--tcp-port", tport };
	size_t n = 21;
	snprintf(port, sizeof(port), "%u", p->base);
	snprintf(tport, sizeof(tport), "%u", p->base - 1u);
	for (size_t i = 0; extra && extra[i] && i < PROC_ARGS_MAX; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	if (env)
		putenv((char *)env);
	dup2(out[1], 1);
	dup2(out[1], 2);
	close(out[0]);
	close(out[1]);
	execv(p->pomaid, (char *const *)argv);
	_exit(127);
}

/* Read pomaid's output until its ready line or its exit; true if ready. */
static inline bool proc_read(struct proc *p, int fd)
{
	size_t n = 0;
	uint64_t deadline = proc_now_ms() + PROC_READY_WAIT_MS;
	const char *ready = NULL;
	for (;;) {
		p->out[n] = '\0';
		ready = strstr(p->out, "pomaid: ready");
		int left = (int)(deadline - proc_now_ms());
		if ((ready && strchr(ready, '\n')) || n == sizeof(p->out) - 1 || left <= 0)
			break;
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, left) <= 0)
			break;
		ssize_t r = read(fd, p->out + n, sizeof(p->out) - 1 - n);
		if (r <= 0)
			break; /* it exited */
		n += (size_t)r;
	}
	return ready && strchr(ready, '\n');
}

/* Start pomaid on p->dir with the suite's flags, `extra` (NULL-terminated,
 * may be NULL) and `env` ("NAME=value" or NULL), on free ports. True once it
 * is ready; false (p->out says why, p->status how it ended) if it exited. */
static inline bool proc_start(struct proc *p, const char *const *extra, const char *env)
{
	uint64_t rng = (uint64_t)getpid() * 7919u + proc_now_ms();
	do
		p->base = (uint16_t)(20000 + pm_test_rand(&rng) % 40000);
	while (!pm_test_ports_free(p->base, PROC_SHARDS));
	int out[2];
	p->pid = -1;
	p->status = 0;
	p->out[0] = '\0';
	if (pipe(out) != 0)
		return false;
	pid_t pid = fork();
	if (pid == 0)
		proc_exec(p, out, extra, env);
	close(out[1]);
	bool ok = pid > 0 && proc_read(p, out[0]);
	close(out[0]);
	if (pid > 0 && !ok) {
		if (!proc_wait_exit(pid, PROC_EXIT_WAIT_MS, &p->status)) {
			kill(pid, SIGKILL);
			waitpid(pid, &p->status, 0);
		}
	}
	p->pid = proc_live = ok ? pid : -1;
	return ok;
}

/* SIGTERM: true if pomaid drained and exited 0 in time. */
static inline bool proc_stop(struct proc *p)
{
	int st = -1;
	if (p->pid <= 0)
		return false;
	kill(p->pid, SIGTERM);
	bool ended = proc_wait_exit(p->pid, PROC_EXIT_WAIT_MS, &st);
	if (!ended) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &st, 0);
	}
	p->pid = proc_live = -1;
	return ended && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static inline struct pm_client *proc_client(const struct proc *p)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.base_port = p->base;
	cfg.shards = PROC_SHARDS;
	cfg.timeout_ms = 1000;
	cfg.retries = 4;
	struct pm_client *c = NULL;
	return pm_client_open(&cfg, &c) == PM_CLIENT_OK ? c : NULL;
}

/* A numeric field of INFO's Total section (UINT64_MAX: INFO failed, or no such field). */
static inline uint64_t proc_info(const struct proc *p, const char *field)
{
	static char text[PM_CLIENT_INFO_REPLY_BYTES_MAX + 1]; /* every shard's text */
	struct pm_client *c = proc_client(p);
	size_t n = 0;
	uint64_t v = UINT64_MAX;
	if (c && pm_client_info(c, NULL, text, sizeof(text) - 1, &n) == PM_CLIENT_OK) {
		text[n] = '\0';
		char pat[64];
		snprintf(pat, sizeof(pat), "\n%s:", field);
		const char *at = strstr(text, pat);
		v = at ? strtoull(at + strlen(pat), NULL, 10) : UINT64_MAX;
	}
	pm_client_close(c);
	return v;
}

/* Poll INFO until `field` (Total) is at least want; false after ms. */
static inline bool proc_info_reaches(const struct proc *p, const char *field, uint64_t want,
				     int ms)
{
	for (uint64_t t0 = proc_now_ms(); proc_now_ms() - t0 < (uint64_t)ms; proc_pause_ms(5)) {
		uint64_t v = proc_info(p, field);
		if (v != UINT64_MAX && v >= want)
			return true;
	}
	return false;
}

static inline bool proc_dir_make(char *out, const char *tag)
{
	snprintf(out, PATH_MAX, "/tmp/pomai-%s-XXXXXX", tag);
	return mkdtemp(out) != NULL;
}

static inline int proc_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static inline void proc_dir_remove(const char *dir)
{
	nftw(dir, proc_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Under CI=true nothing that can run may be skipped. */
static inline bool proc_ci(void)
{
	const char *ci = getenv("CI");
	return ci && !strcmp(ci, "true");
}

#endif
