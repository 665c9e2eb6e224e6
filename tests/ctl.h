/* SPDX-License-Identifier: MIT
 *
 * ctl.h — pomaictl and the admin protocol from a test, for the suites of the
 * two servers that speak it (test_admin: pomaid's admin socket; test_control:
 * pomai-control's socket): pomaictl run to its end with its output and exit
 * code checked, its --json output through a strict JSON parser, and the
 * socket's bounds (one connection too many, a request past
 * PM_ADMIN_MESSAGE_BYTES_MAX, a malformed one). Asserts with CUnit.
 */
#ifndef POMAI_TESTS_CTL_H
#define POMAI_TESTS_CTL_H

#include <stdbool.h>
#include <stddef.h>

/* pomaictl's output kept per run (the longest: INFO of every shard as JSON). */
#define CTL_OUT_BYTES (1u << 20)
/* How long a server may take to answer, or to close a connection it refuses. */
#define CTL_WAIT_MS 15000

/* pomaictl (path ctl) --socket sock ARGS, ARGS a list of words split at
 * spaces: its stdout and stderr in out (CTL_OUT_BYTES); its exit code (-1:
 * killed, or not ended within PROC_EXIT_WAIT_MS). */
int ctl_run(const char *ctl, const char *sock, const char *args, char *out);
/* ctl_run() exits with `code` and its output holds `has` (NULL: anything);
 * printed when not. */
void ctl_expect(const char *ctl, const char *sock, const char *args, int code, const char *has);
/* One request to the admin socket sock without pomaictl: WORDS split at
 * spaces ("REPLICATION PROMOTE"); the reply's text into out (cap bytes with
 * the NUL, cut to fit). Its status (enum pm_admin_status), or -1 when the
 * socket could not be reached or did not answer within CTL_WAIT_MS. */
int ctl_admin(const char *sock, const char *words, char *out, size_t cap);
/* pomaictl --json ARGS parsed by Python's json module, which then exits 0
 * when `check` (a Python expression over the document d) holds: its exit
 * code. */
int ctl_json(const char *ctl, const char *sock, const char *args, const char *check);

/* `promtool check metrics` on a Prometheus text: its exit code (-1: it did
 * not run or end); what it said in said (cap bytes). */
int ctl_promtool(const char *text, char *said, size_t cap);

/* How a server left a connection, waited for at most CTL_WAIT_MS. */
enum ctl_closed { CTL_OPEN, CTL_EOF, CTL_RESET };
enum ctl_closed ctl_closed_by_peer(int fd);
/* PING on an open connection is answered OK. */
bool ctl_ping_on(int fd);
/* The bounds every admin-protocol server keeps, on sock: a request one byte
 * past the largest message closes its connection unanswered; a malformed one
 * (an unknown version) gets USAGE; conns_max connections are served and one
 * more is closed at once (served_at: which of them answers a PING
 * meanwhile); and once they are closed, a new connection is served again.
 * reset_ok: a close may come as a reset (a server that closes with the
 * test's bytes unread). */
void ctl_socket_bounds(const char *sock, unsigned conns_max, unsigned served_at, bool reset_ok);

#endif
