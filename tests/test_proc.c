/* SPDX-License-Identifier: MIT
 *
 * test_proc.c — the process harness's own promise (proc.h): a process a test
 * starts does not outlive the test, even when the test dies without running
 * its atexit (SIGKILL, abort, meson's timeout, a `timeout` wrapper).
 *
 * The "test" here is a middle process (proc_start_fn) that starts a
 * long-lived grandchild through the harness, tells us its pid, and kills
 * itself with SIGKILL. This process is a child subreaper
 * (PR_SET_CHILD_SUBREAPER), so the orphaned grandchild becomes our child and
 * its end can be waited for: it must be killed by SIGKILL within a bound,
 * where without the harness's death signal it would sleep on for a minute.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cu_main.h"
#include "proc.h"

/* The grandchild: says it runs (so that it is past the harness's fork and
 * exec before its parent dies: the death signal, not the harness's check of
 * an already dead parent, is what is tested), then would live far past the
 * bound below, so that surviving its parent shows as a failure, not a slow
 * pass. */
#define GRANDCHILD_SCRIPT "echo up; exec sleep 60"
#define GRANDCHILD_READY "up"

/* The middle process: start the grandchild, write its pid to the pipe, die
 * without any clean-up. */
static int middle_main(void *arg)
{
	int fd = *(const int *)arg;
	struct proc g;
	proc_init(&g, "sh");
	proc_arg(&g, "-c");
	proc_arg(&g, GRANDCHILD_SCRIPT);
	g.ready = GRANDCHILD_READY;
	g.after = PROC_AFTER_DROP;
	if (!proc_start(&g))
		return 2;
	if (write(fd, &g.pid, sizeof(g.pid)) != (ssize_t)sizeof(g.pid))
		return 3;
	raise(SIGKILL);
	return 4;
}

static void test_child_dies_with_test(void)
{
	CU_ASSERT_FATAL(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
	int fds[2];
	CU_ASSERT_FATAL(pipe(fds) == 0);
	struct proc mid;
	proc_init(&mid, "middle");
	CU_ASSERT_FATAL(proc_start_fn(&mid, middle_main, &fds[1]));
	close(fds[1]);

	pid_t grandchild = -1;
	struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
	CU_ASSERT_FATAL(poll(&pfd, 1, PROC_READY_WAIT_MS) == 1);
	CU_ASSERT_FATAL(read(fds[0], &grandchild, sizeof(grandchild)) == (ssize_t)sizeof(grandchild));
	close(fds[0]);
	CU_ASSERT_FATAL(grandchild > 0);
	CU_ASSERT(proc_wait(&mid, PROC_EXIT_WAIT_MS));
	CU_ASSERT(proc_killed_by(&mid, SIGKILL));

	/* the orphan is ours now (subreaper): it ends, killed, within the bound */
	int st = 0;
	pid_t got = 0;
	for (uint64_t deadline = proc_now_ms() + PROC_KILL_NOTICE_MS;
	     (got = waitpid(grandchild, &st, WNOHANG)) == 0 && proc_now_ms() < deadline;)
		proc_pause_ms(PROC_POLL_MS);
	CU_ASSERT(got == grandchild);
	CU_ASSERT(got == grandchild && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	if (got == 0) { /* it outlived its test: the failure above; end it here */
		kill(grandchild, SIGKILL);
		waitpid(grandchild, &st, 0);
	}
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "a child started by the test dies with the test", test_child_dies_with_test },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("proc", tests);
}
