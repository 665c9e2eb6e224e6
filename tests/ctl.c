/* SPDX-License-Identifier: MIT
 *
 * ctl.c — pomaictl and the admin protocol from a test (ctl.h).
 */
#define _GNU_SOURCE
#include "ctl.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_proto.h"
#include "proc.h"

/* Arguments of one pomaictl run, at most (ctl_run splits them). */
#define CTL_ARGS_BYTES 1024u

static char out_buf[CTL_OUT_BYTES];
static uint8_t msg[PM_ADMIN_LEN_BYTES + PM_ADMIN_MESSAGE_BYTES_MAX];

/* pomaictl --socket sock [--json] ARGS in p. */
static void ctl_argv(struct proc *p, const char *ctl, const char *sock, bool json,
		     const char *args)
{
	char words[CTL_ARGS_BYTES], *save = NULL;
	proc_init(p, ctl);
	proc_args(p, (const char *const[]){ "--socket", sock, NULL });
	if (json)
		proc_arg(p, "--json");
	snprintf(words, sizeof(words), "%s", args);
	for (char *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save))
		proc_argf(p, "%s", w);
}

int ctl_run(const char *ctl, const char *sock, const char *args, char *out)
{
	static struct proc p;
	ctl_argv(&p, ctl, sock, false, args);
	return proc_run(&p, NULL, out, CTL_OUT_BYTES, 0);
}

void ctl_expect(const char *ctl, const char *sock, const char *args, int code, const char *has)
{
	int rc = ctl_run(ctl, sock, args, out_buf);
	if (rc != code || (has && !strstr(out_buf, has)))
		printf("\n  pomaictl %s: exit %d (want %d), output: %.300s", args, rc, code, out_buf);
	CU_ASSERT_EQUAL(rc, code);
	CU_ASSERT(!has || strstr(out_buf, has) != NULL);
}

int ctl_json(const char *ctl, const char *sock, const char *args, const char *check)
{
	static struct proc p, py;
	char prog[512];
	ctl_argv(&p, ctl, sock, true, args);
	p.capture = PROC_CAPTURE_STDOUT; /* what a pipe into the parser would carry */
	proc_run(&p, NULL, out_buf, CTL_OUT_BYTES, 0);
	snprintf(prog, sizeof(prog), "import json,sys; d=json.load(sys.stdin); sys.exit(0 if %s else 1)",
		 check);
	proc_init(&py, "python3");
	proc_args(&py, (const char *const[]){ "-c", prog, NULL });
	char none[1];
	return proc_run(&py, out_buf, none, sizeof(none), 0);
}

int ctl_promtool(const char *text, char *said, size_t cap)
{
	static struct proc p;
	proc_init(&p, "promtool");
	proc_args(&p, (const char *const[]){ "check", "metrics", NULL });
	return proc_run(&p, text, said, cap, 0);
}

int ctl_admin(const char *sock, const char *words, char *out, size_t cap)
{
	char buf[CTL_ARGS_BYTES], *save = NULL;
	const char *argv[PM_ADMIN_ARGS_MAX], *text = NULL;
	uint32_t argc = 0;
	uint8_t status = 0xff;
	size_t tlen = 0;
	snprintf(buf, sizeof(buf), "%s", words);
	for (char *w = strtok_r(buf, " ", &save); w && argc < PM_ADMIN_ARGS_MAX;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	int fd = pm_admin_connect(sock);
	int rc = fd >= 0 ? pm_admin_call(fd, argc, argv, msg, sizeof(msg), CTL_WAIT_MS, &status,
					 &text, &tlen)
			 : fd;
	if (fd >= 0)
		close(fd);
	if (cap) {
		size_t n = rc == 0 ? (tlen < cap - 1 ? tlen : cap - 1) : 0;
		memcpy(out, text ? text : "", n);
		out[n] = '\0';
	}
	return rc == 0 ? status : -1;
}

enum ctl_closed ctl_closed_by_peer(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;
	if (poll(&p, 1, CTL_WAIT_MS) != 1)
		return CTL_OPEN;
	ssize_t r = read(fd, &c, 1);
	return r == 0 ? CTL_EOF : r < 0 && errno == ECONNRESET ? CTL_RESET : CTL_OPEN;
}

bool ctl_ping_on(int fd)
{
	const char *argv[] = { "PING" }, *text;
	uint8_t status = 0xff;
	size_t tlen;
	return fd >= 0 &&
	       pm_admin_call(fd, 1, argv, msg, sizeof(msg), CTL_WAIT_MS, &status, &text, &tlen) == 0 &&
	       status == PM_ADMIN_OK;
}

static bool closed(int fd, bool reset_ok)
{
	enum ctl_closed c = ctl_closed_by_peer(fd);
	return c == CTL_EOF || (reset_ok && c == CTL_RESET);
}

/* A new connection answers PING, once the server has seen the last ones
 * close (until then it may find its table full: closed at once); bounded. */
static bool served_again(const char *sock)
{
	for (uint64_t t0 = proc_now_ms(); proc_now_ms() - t0 < CTL_WAIT_MS;
	     proc_pause_ms(PROC_POLL_MS)) {
		int fd = pm_admin_connect(sock);
		bool ok = ctl_ping_on(fd);
		if (fd >= 0)
			close(fd);
		if (ok)
			return true;
	}
	return false;
}

void ctl_socket_bounds(const char *sock, unsigned conns_max, unsigned served_at, bool reset_ok)
{
	/* one byte past the largest message: the connection goes, unanswered */
	int fd = pm_admin_connect(sock);
	uint32_t big = PM_ADMIN_MESSAGE_BYTES_MAX + 1;
	uint8_t len[PM_ADMIN_LEN_BYTES];
	memcpy(len, &big, sizeof(len));
	CU_ASSERT_EQUAL(write(fd, len, sizeof(len)), (ssize_t)sizeof(len));
	CU_ASSERT(closed(fd, reset_ok));
	close(fd);
	/* a malformed request (unknown version): a USAGE reply */
	fd = pm_admin_connect(sock);
	uint8_t junk[] = { 3, 0, 0, 0, 9, 1, 0 }, rep[64];
	CU_ASSERT_EQUAL(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	ssize_t n = read(fd, rep, sizeof(rep));
	CU_ASSERT(n >= 6 && rep[5] == PM_ADMIN_USAGE);
	close(fd);
	/* conns_max connections are served; one more is closed at once. Last:
	 * the next connections of the test could find the table full until
	 * the server has seen these close, which is waited for */
	int *fds = calloc(conns_max + 1u, sizeof(int));
	CU_ASSERT_FATAL(fds != NULL && served_at < conns_max);
	for (unsigned i = 0; i <= conns_max; i++)
		fds[i] = pm_admin_connect(sock);
	CU_ASSERT(closed(fds[conns_max], reset_ok));
	CU_ASSERT(ctl_ping_on(fds[served_at]));
	for (unsigned i = 0; i <= conns_max; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	CU_ASSERT(served_again(sock));
}
