/* SPDX-License-Identifier: MIT
 *
 * proc.h — the one way a test starts a real process (pomaid, pomai-control,
 * pomaictl, pomai-cli, lazyfs, a child of its own): its argv and environment,
 * the line it prints once it is ready, a deadline for that line, free
 * loopback ports, a signal to stop it, its exit waited for with a deadline
 * and its status kept; what it prints captured up to the ready line (or its
 * exit), then forwarded, logged, dropped or left to the caller. Plus what
 * every integration suite needs around such a process: the clock, bounded
 * pauses, data directories, its CPU time and RSS from /proc, and the fields
 * of an INFO text.
 *
 * Nothing here sleeps to synchronise: a ready line, an exit and a reply are
 * waited for, each with a deadline; proc_pause_ms() is only the interval of
 * a bounded poll of a condition. Deadlines are bounds, not delays (a wait
 * ends when its event comes), so one generous value serves every build: the
 * sanitizer build on a loaded 2-core machine needs no scaling of its own.
 *
 * Every process started here is remembered until it is reaped: at exit (and
 * whenever a suite calls proc_kill_all(), e.g. at the start of a test after
 * one stopped at a fatal assertion) those still running are SIGKILLed and
 * reaped, so no test leaves a pomaid behind. A test that dies without its
 * atexit (killed by a signal, aborted at an assertion, stopped by meson's
 * timeout or by `timeout`) takes them with it: each child forked by the
 * test's main thread gets PR_SET_PDEATHSIG SIGKILL (one forked by a helper
 * thread does not, since the signal follows the forking thread's end).
 *
 * Depends on libc and pthreads only: perf/attack_review links it too.
 */
#ifndef POMAI_TESTS_PROC_H
#define POMAI_TESTS_PROC_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---------------------------------------------------------------- bounds */

/* How long a process may take to print its ready line: pomaid replaying a
 * long log (test_durability: 20 rounds) under ASan on a loaded 2-core
 * machine. Overridable per start (struct proc's ready_ms). */
#define PROC_READY_WAIT_MS 60000
/* How long a process may take to exit after SIGTERM (pomaid drains its log
 * and writes nothing new), or a command to run to its end. */
#define PROC_EXIT_WAIT_MS 30000
/* After SIGKILL: waited for however long the kernel takes (I/O in flight);
 * a notice is printed after this long. */
#define PROC_KILL_NOTICE_MS 5000
/* The interval of a bounded poll of a condition. */
#define PROC_POLL_MS 10
/* What a process printed that is kept: the last bytes up to its ready line
 * or its exit (recovery lines of 32 shards, a refusal's message, DPDK's EAL
 * at log-level error fit many times). */
#define PROC_OUT_BYTES 16384u
/* argv entries, extra environment entries, and the bytes of the strings
 * proc_argf() formats, per process. */
#define PROC_ARGS_MAX 64u
#define PROC_ENV_MAX 8u
#define PROC_STRS_BYTES 4096u
/* Processes started and not yet reaped, at most. */
#define PROC_LIVE_MAX 32u
/* Free ports: the range a base is picked from, and how many bases are tried
 * (a start that finds its port taken by someone else is tried again). Below
 * Linux's ephemeral range (32768..60999 by default): a node restarted on its
 * ports must not find one taken by some connection's local end meanwhile
 * (seen once in 42 kill rounds of the cluster suite). */
#define PROC_PORT_LO 20000u
#define PROC_PORT_SPAN 12700u
#define PROC_PORT_TRIES 20u

/* ---------------------------------------------------------------- ready lines */

/* What pomaid prints once every shard serves (dataplane/pomaid.c), and what
 * pomai-control prints once its sockets are open (control/pomai-control.c). */
#define POMAID_READY_LINE "pomaid: ready"
#define CONTROL_READY_LINE "pomai-control: ready"

/* ---------------------------------------------------------------- a process */

/* Which of its outputs go through the harness (the other is inherited: it
 * goes where the test's own goes). */
enum proc_capture {
	PROC_CAPTURE_BOTH = 0,  /* stdout and stderr, on one pipe */
	PROC_CAPTURE_STDOUT,
	PROC_CAPTURE_STDERR,
};

/* What becomes of what it prints after its ready line. */
enum proc_after {
	PROC_AFTER_FORWARD = 0, /* a thread copies it to the test's stderr */
	PROC_AFTER_LOG,         /* a thread appends it (and what came before) to `log` */
	PROC_AFTER_DROP,        /* a thread reads and drops it */
	PROC_AFTER_KEEP,        /* out_fd is the caller's (a command channel) */
};

struct proc {
	/* set by proc_init() and the caller before proc_start() */
	const char *argv[PROC_ARGS_MAX + 1];  /* argv[0]: the file run (without a '/': on PATH) */
	uint32_t argc;
	const char *env[PROC_ENV_MAX + 1];    /* "NAME=value", over the test's environment */
	uint32_t envc;
	const char *ready;          /* the line to wait for; NULL: none (a command, a channel) */
	int ready_ms;               /* 0: PROC_READY_WAIT_MS */
	enum proc_capture capture;
	enum proc_after after;
	const char *log;            /* PROC_AFTER_LOG: the file */
	bool stdin_pipe;            /* its stdin is in_fd (else /dev/null) */
	/* state */
	pid_t pid;                  /* -1: never started */
	bool reaped;                /* it exited and was waited for: status holds how */
	int status;                 /* its wait status once reaped */
	int out_fd, in_fd, log_fd;
	size_t out_len;
	char out[PROC_OUT_BYTES];   /* NUL-terminated */
	bool draining;
	pthread_t drain;
	size_t strs_used;
	char strs[PROC_STRS_BYTES];
};

/* A process to run `path`; nothing started yet. */
void proc_init(struct proc *p, const char *path);
/* Append argument(s): a string that outlives the start, a formatted one
 * (kept in p), or a NULL-terminated list (may be NULL). Aborts past
 * PROC_ARGS_MAX / PROC_STRS_BYTES: a test's own mistake. */
void proc_arg(struct proc *p, const char *a);
void proc_argf(struct proc *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void proc_args(struct proc *p, const char *const *list);
/* One more "NAME=value" in its environment (replacing the test's NAME). */
void proc_env(struct proc *p, const char *name_value);

/* Fork and exec it; with a ready line, wait (at most ready_ms) until it has
 * printed the whole line. True once it is running (and ready; its output is
 * then handed over as `after` says, at once when there is no ready line).
 * False if it could not start, exited first (p->status says how, p->out
 * what it said) or missed the deadline (then it is SIGKILLed and reaped). */
bool proc_start(struct proc *p);
/* The same for a child that runs fn(arg) in a copy of the test instead of
 * exec (its exit code is fn's return): a server or a client of the test's
 * own in a process of its own (one DPDK EAL per process). argv[0] (from
 * proc_init) only names it in messages. */
bool proc_start_fn(struct proc *p, int (*fn)(void *arg), void *arg);
/* Whether it runs (not exited, not a zombie). Never reaps: safe from any thread. */
bool proc_alive(const struct proc *p);
/* Wait at most ms (-1: for ever) for it to exit; true once it has (reaped,
 * p->status set). */
bool proc_wait(struct proc *p, int ms);
/* Send sig and wait at most ms for the exit; SIGKILL and reap if it did not
 * come. True if it exited within ms. */
bool proc_stop(struct proc *p, int sig, int ms);
/* SIGKILL, and its exit waited for however long it takes. True if it was
 * running until then and died of it. */
bool proc_kill(struct proc *p);
/* How it ended (valid once reaped): exited with code 0; its exit code (-1:
 * killed by a signal, or not reaped); killed by sig. */
bool proc_exited_ok(const struct proc *p);
int proc_exit_code(const struct proc *p);
bool proc_killed_by(const struct proc *p, int sig);

/* Run it to its end: `input` (may be NULL) on its stdin, its captured output
 * into out (cap bytes with the NUL; the rest is read and dropped), at most ms
 * (0: PROC_EXIT_WAIT_MS; then SIGKILLed). Its exit code, or -1 (a signal,
 * the deadline, or no start). */
int proc_run(struct proc *p, const char *input, char *out, size_t cap, int ms);

/* SIGKILL and reap every process started here that still runs; or all but
 * one (keep: a helper the suite runs throughout, e.g. a file system). A
 * struct proc of one of them is stale afterwards: proc_init() it again. */
void proc_kill_all(void);
void proc_kill_all_but(const struct proc *keep);

/* ---------------------------------------------------------------- pomaid */

#define POMAID_SHARDS_DEFAULT 2u

/* pomaid on loopback: its flags are the ports (--base-port, --tcp-port
 * base - 1), --shards, --data-dir (when dir is set), the suite's flags, then
 * those of one start. */
struct pomaid {
	const char *path;
	uint32_t shards;            /* 0: POMAID_SHARDS_DEFAULT */
	uint16_t base;              /* UDP port of shard 0; 0: free ports picked at the start */
	char dir[PATH_MAX];         /* --data-dir ("": none passed) */
	const char *const *flags;   /* the suite's, for every start; NULL-terminated, may be NULL */
	int ready_ms;               /* 0: PROC_READY_WAIT_MS */
	enum proc_after after;      /* its output after the ready line */
	const char *log;            /* PROC_AFTER_LOG: the file */
	/* A replication port too (--repl-port): picked with the others when
	 * base is 0 (a free TCP port, not base - 1), else repl_port as set. */
	bool repl;
	uint16_t repl_port;
	/* A command pomaid runs under (a tracer: strace and its flags, NULL-
	 * terminated; argv[0] found on PATH); NULL: none. */
	const char *const *wrap;
	struct proc proc;
};

/* Start it with `extra` flags (NULL-terminated, may be NULL) and `env`
 * ("NAME=value" or NULL) on d->base, or on free ports (d->base set to them)
 * when d->base is 0 — tried again on other ports when the ones picked were
 * taken meanwhile. True once ready; false if it exited or missed its
 * deadline (d->proc.out says why, d->proc.status how it ended). */
bool pomaid_start(struct pomaid *d, const char *const *extra, const char *env);
/* SIGTERM: true if it drained and exited 0 within PROC_EXIT_WAIT_MS (or had
 * exited 0 already); says so when it did not. */
bool pomaid_stop(struct pomaid *d);
/* SIGKILL (a crash): true if it was running until then and died of it. */
bool pomaid_kill(struct pomaid *d);
bool pomaid_alive(const struct pomaid *d);
/* Records its shards said they replayed from the log at the start (the
 * "recovered N records" lines before the ready line). */
uint64_t pomaid_recovered(const struct pomaid *d);

/* ---------------------------------------------------------------- ports */

/* Whether a loopback port of `type` (SOCK_STREAM, SOCK_DGRAM) is free. */
bool proc_port_free(int type, uint16_t port);
/* pomaid's ports free: TCP base - 1 and UDP base .. base + shards - 1. */
bool proc_ports_free(uint16_t base, uint32_t shards);
/* A random base whose ports are free (0: none found in PROC_PORT_TRIES). */
uint16_t proc_ports_pick(uint32_t shards);
/* A random free loopback port of `type` other than `not` (0: none found in
 * PROC_PORT_TRIES): a port of one more listener (pomaid's repl_port, a
 * test's own proxy). */
uint16_t proc_port_pick(int type, uint16_t not);
/* A TCP socket listening on a free loopback port other than `not` (*port
 * set), tried on PROC_PORT_TRIES ports; -1 if none would do. */
int proc_tcp_listen(uint16_t not, uint16_t *port);

/* ---------------------------------------------------------------- sockets */

/* All n bytes at p to a stream socket (blocking, no SIGPIPE); false when the
 * peer is gone or a send fails. */
bool proc_send_all(int fd, const void *p, size_t n);

/* ---------------------------------------------------------------- clock */

uint64_t proc_now_ms(void);
uint64_t proc_now_ns(void);
/* The interval of a bounded poll loop, never a wait for an event. */
void proc_pause_ms(long ms);

/* ---------------------------------------------------------------- files, machine */

/* mkdtemp of /tmp/pomai-<tag>-XXXXXX into out (PATH_MAX). */
bool proc_dir_make(char *out, const char *tag);
/* Remove a file or a directory tree (links not followed); nothing if absent. */
void proc_dir_remove(const char *path);
/* CI=true: nothing that can run may be skipped. */
bool proc_ci(void);
/* CPU seconds pid has used (utime + stime, /proc/PID/stat), or -1. */
double proc_cpu_s(pid_t pid);
/* Its resident set (VmRSS, /proc/PID/status) in KiB, or -1. */
long proc_rss_kib(pid_t pid);

/* ---------------------------------------------------------------- INFO text */

/* The value of `field` in an INFO text ("field:value" at a line's start):
 * the first in the text when part is NULL, else the first in the part that
 * starts with the line `part` ("# Total\r\n", "@shard:1\r\n") and ends at
 * the next "@shard:". -1 if absent. */
long long info_text_field(const char *text, const char *part, const char *field);
/* The same for a field whose value is a word ("role:replica"): copied into
 * out (cap bytes with the NUL, cut to fit); false if absent. */
bool info_text_word(const char *text, const char *part, const char *field, char *out,
		    size_t cap);

#endif
