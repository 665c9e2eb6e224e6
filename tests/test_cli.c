/* SPDX-License-Identifier: MIT
 *
 * test_cli.c — pomai-cli's behaviours of issue 21 against a real pomaid of 3
 * shards (argv[1]; pomai-cli is argv[2]):
 *  - the shard count learnt from the server: keys set and read without
 *    --shards each go straight to their shard (INFO's forwarded_out stays 0),
 *    while --shards 1 (the override) makes the server forward;
 *  - an unknown INFO section is an error (E_PARAM, exit 3, said so);
 *  - a value is raw bytes into a pipe and a line on a terminal (a
 *    pseudo-terminal: forkpty);
 *  - with no COMMAND, a prompt: commands typed on a terminal answered,
 *    `help set`, Tab, quoting, errors said without leaving, quit; the history
 *    file written, and read back by the next prompt (an up-arrow recalls a
 *    line of the run before); commands piped in run the same way;
 *  - the bash completions of pomai-cli and pomaictl (argv[3] pomaictl,
 *    argv[4] and argv[5] the two scripts): loaded by `complete`, a few words
 *    completed, and their lists the same as the commands and options each
 *    program's --help names and the INFO sections pomaid answers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cu_main.h"
#include "proc.h"

/* The server's shards: more than pomai-cli's default guess of 1, and more
 * than this machine's 2 cores (workers share CPUs through --cores). */
#define SHARDS 3u
/* Keys set one pomai-cli each: the chance that all hash to shard 0 (no
 * forward even with a wrong count) is (1/3)^24. */
#define KEYS 24
/* Keys set and read one pomai-cli process per command (the prompt does the
 * KEYS): each run learns the count itself. */
#define SHARDS_ONE_SHOT_KEYS 3
/* What one pomai-cli run prints, kept. */
#define OUT_BYTES (1u << 16)
/* What a terminal session printed, kept (the prompt redrawn per line). */
#define PTY_BYTES (1u << 16)
/* How long a terminal session may take to say what is waited for. */
#define PTY_WAIT_MS 20000

static const char *cli_path, *ctl_path, *comp_cli, *comp_ctl;
static char top[PATH_MAX];
static char out[OUT_BYTES];
static struct pomaid srv = {
	.shards = SHARDS,
	.flags = (const char *const[]){ "--arena-bytes", "16M", "--seeds", "65536", "--hugepages",
					"no", "--wal", "none", NULL },
};

/* ---------------------------------------------------------------- the daemon */

/* "a,b,a,...": n entries from the CPUs this process may run on. */
static void cores_list(uint32_t n, char *list, size_t cap)
{
	cpu_set_t set;
	int cpus[CPU_SETSIZE], ncpu = 0;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set))
				cpus[ncpu++] = i;
	if (ncpu == 0)
		cpus[ncpu++] = 0;
	size_t len = 0;
	list[0] = '\0';
	for (uint32_t i = 0; i < n && len < cap; i++)
		len += (size_t)snprintf(list + len, cap - len, "%s%d", i ? "," : "",
					cpus[i % (uint32_t)ncpu]);
}

static int suite_init(void)
{
	static char cores[64];
	if (!proc_dir_make(top, "cli"))
		return -1;
	cores_list(SHARDS, cores, sizeof(cores));
	const char *const extra[] = { "--cores", cores, NULL };
	if (pomaid_start(&srv, extra, NULL))
		return 0;
	fprintf(stderr, "pomaid did not start: %s\n", srv.proc.out);
	return -1;
}

static int suite_clean(void)
{
	if (pomaid_alive(&srv))
		pomaid_stop(&srv);
	proc_dir_remove(top);
	return 0;
}

/* ---------------------------------------------------------------- pomai-cli in a pipe */

/* pomai-cli --port BASE ARGS (NULL-terminated) with `input` on stdin (NULL:
 * none); its stdout (and stderr when both) in out; its exit code. */
static int cli_io(const char *input, bool both, const char *const *args)
{
	static struct proc p;
	proc_init(&p, cli_path);
	proc_arg(&p, "--port");
	proc_argf(&p, "%u", srv.base);
	proc_args(&p, args);
	proc_env(&p, "POMAI_SHARDS=");   /* nothing from the test's environment */
	proc_env(&p, "POMAI_CLI_HISTORY=");
	p.capture = both ? PROC_CAPTURE_BOTH : PROC_CAPTURE_STDOUT;
	p.stdin_pipe = input != NULL;
	return proc_run(&p, input, out, sizeof(out), 0);
}

#define CLI(code, ...) CU_ASSERT_EQUAL(cli_io(NULL, false, (const char *const[]){ __VA_ARGS__, NULL }), code)

/* The Total of INFO dataplane's forwarded_out, asked with the right count. */
static long long forwarded(void)
{
	if (cli_io(NULL, false, (const char *const[]){ "--shards", "3", "info", "dataplane", NULL }) != 0)
		return -1;
	return info_text_field(out, "# Total\r\n", "forwarded_out");
}

/* ---------------------------------------------------------------- shards */

static void test_shards_learnt(void)
{
	static char script[KEYS * 64], want[KEYS * 32];
	char key[32], val[32];
	size_t at = 0, wat = 0;
	long long before = forwarded();
	CU_ASSERT_FATAL(before >= 0);
	/* one command per process (each learns the count), a few keys */
	for (int i = 0; i < SHARDS_ONE_SHOT_KEYS; i++) {
		snprintf(key, sizeof(key), "once%d", i);
		CLI(0, "set", key, "v");
		CLI(0, "get", key);
		CU_ASSERT_STRING_EQUAL(out, "v");
	}
	/* the prompt (the count learnt once, for the process), many keys */
	for (int i = 0; i < KEYS; i++) {
		at += (size_t)snprintf(script + at, sizeof(script) - at,
				       "set learnt%d v%d\nget learnt%d\n", i, i, i);
		wat += (size_t)snprintf(want + wat, sizeof(want) - wat, "OK\nv%d\n", i);
	}
	CU_ASSERT_EQUAL(cli_io(script, false, (const char *const[]){ NULL }), 0);
	CU_ASSERT_STRING_EQUAL(out, want);
	CU_ASSERT_EQUAL(forwarded(), before); /* every key went to its shard */
	/* the override: one shard assumed, so the server forwards */
	at = 0;
	for (int i = 0; i < KEYS; i++)
		at += (size_t)snprintf(script + at, sizeof(script) - at, "get learnt%d\n", i);
	CU_ASSERT_EQUAL(cli_io(script, false, (const char *const[]){ "--shards", "1", NULL }), 0);
	CU_ASSERT(forwarded() > before);
	snprintf(key, sizeof(key), "once%d", 0);
	snprintf(val, sizeof(val), "%s", "v");
	CLI(0, "--shards", "1", "get", key); /* one-shot, overridden: still served */
	CU_ASSERT_STRING_EQUAL(out, val);
	/* the cluster header answers alone, in any case */
	CLI(0, "info", "CLUSTER");
	CU_ASSERT_EQUAL(info_text_field(out, NULL, "shards"), SHARDS);
}

static void test_info_section(void)
{
	CU_ASSERT_EQUAL(cli_io(NULL, true, (const char *const[]){ "info", "nosuch", NULL }), 3);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "E_PARAM: the server has no section 'nosuch'"));
	CLI(0, "info", "keyspace");
	CU_ASSERT(info_text_field(out, "# Total\r\n", "keys") >= KEYS);
}

/* ---------------------------------------------------------------- a terminal */

struct pty {
	pid_t pid;
	int fd;
	size_t len, mark; /* said so far; where the last expect() may look from */
	char buf[PTY_BYTES];
};

/* pomai-cli --port BASE ARGS on a new pseudo-terminal, HOME in the test's
 * directory (so the history file is <top>/.pomai_cli_history). */
static bool pty_start(struct pty *t, const char *const *args)
{
	const char *argv[16] = { cli_path, "--port" };
	char port[16];
	snprintf(port, sizeof(port), "%u", srv.base);
	argv[2] = port;
	int n = 3;
	for (; args && *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	struct winsize ws = { .ws_row = 24, .ws_col = 200 };
	fflush(NULL);
	t->len = t->mark = 0;
	t->pid = forkpty(&t->fd, NULL, NULL, &ws);
	if (t->pid < 0)
		return false;
	if (t->pid == 0) {
		setenv("HOME", top, 1);
		setenv("TERM", "xterm", 1);
		unsetenv("POMAI_CLI_HISTORY");
		unsetenv("POMAI_SHARDS");
		execv(cli_path, (char *const *)argv);
		_exit(127);
	}
	return true;
}

/* Read until `text` appears after the mark (then the mark moves past it), at
 * most PTY_WAIT_MS. */
static bool pty_expect(struct pty *t, const char *text)
{
	uint64_t deadline = proc_now_ms() + PTY_WAIT_MS;
	for (;;) {
		t->buf[t->len] = '\0';
		char *at = strstr(t->buf + t->mark, text);
		if (at) {
			t->mark = (size_t)(at - t->buf) + strlen(text);
			return true;
		}
		uint64_t now = proc_now_ms();
		struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
		if (now >= deadline || t->len + 1 >= sizeof(t->buf) ||
		    poll(&pfd, 1, (int)(deadline - now)) <= 0)
			break;
		ssize_t r = read(t->fd, t->buf + t->len, sizeof(t->buf) - 1 - t->len);
		if (r <= 0) /* EIO: the other side closed */
			break;
		t->len += (size_t)r;
	}
	printf("\n  terminal: no '%s' in:\n%.4000s\n", text, t->buf + t->mark);
	return false;
}

static void pty_send(struct pty *t, const char *keys)
{
	t->mark = t->len; /* what came before (the echo too) is not the answer */
	size_t n = strlen(keys);
	CU_ASSERT_EQUAL(write(t->fd, keys, n), (ssize_t)n);
}

/* Its exit code, waited for (SIGKILLed past the deadline: -1). */
static int pty_end(struct pty *t)
{
	uint64_t deadline = proc_now_ms() + PTY_WAIT_MS;
	int status = 0;
	pid_t got;
	char sink[4096];
	while ((got = waitpid(t->pid, &status, WNOHANG)) == 0 && proc_now_ms() < deadline) {
		struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
		if (poll(&pfd, 1, PROC_POLL_MS) > 0 && read(t->fd, sink, sizeof(sink)) <= 0)
			proc_pause_ms(PROC_POLL_MS); /* closed: only the exit to come */
	}
	if (got == 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, &status, 0);
	}
	close(t->fd);
	return got > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_value_lines(void)
{
	CLI(0, "set", "tty", "on a terminal");
	CLI(0, "get", "tty");
	CU_ASSERT_STRING_EQUAL(out, "on a terminal"); /* a pipe: the bytes alone */
	struct pty t;
	CU_ASSERT_FATAL(pty_start(&t, (const char *const[]){ "get", "tty", NULL }));
	/* the terminal's own \r\n for the value's line end; nothing after it */
	CU_ASSERT(pty_expect(&t, "on a terminal\r\n"));
	CU_ASSERT_EQUAL(pty_end(&t), 0);
	t.buf[t.len] = '\0';
	CU_ASSERT_STRING_EQUAL(t.buf, "on a terminal\r\n");
}

static void test_prompt(void)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/.pomai_cli_history", top);
	unlink(path);
	struct pty t;
	CU_ASSERT_FATAL(pty_start(&t, NULL));
	CU_ASSERT_FATAL(pty_expect(&t, "> "));
	pty_send(&t, "set said 'two words'\r");
	CU_ASSERT(pty_expect(&t, "OK\r\n"));
	pty_send(&t, "get said\r");
	CU_ASSERT(pty_expect(&t, "two words\r\n"));
	pty_send(&t, "help set\r");
	CU_ASSERT(pty_expect(&t, "Store VALUE under KEY"));
	pty_send(&t, "help\r");
	CU_ASSERT(pty_expect(&t, "help COMMAND"));
	pty_send(&t, "he\tdel\r"); /* Tab completes the command: help del */
	CU_ASSERT(pty_expect(&t, "Delete KEY"));
	pty_send(&t, "info nosuch\r"); /* said, and the prompt goes on */
	CU_ASSERT(pty_expect(&t, "no section 'nosuch'"));
	pty_send(&t, "get said --port 1\r");
	CU_ASSERT(pty_expect(&t, "given when pomai-cli starts"));
	pty_send(&t, "get 'un closed\r");
	CU_ASSERT(pty_expect(&t, "not closed"));
	pty_send(&t, "del said\r");
	CU_ASSERT(pty_expect(&t, "1\r\n"));
	pty_send(&t, "quit\r");
	CU_ASSERT_EQUAL(pty_end(&t), 0);
	/* the history file holds the lines typed (libedit's format: a first line
	 * _HiStOrY_V2_, blanks written as \040) */
	static char hist[OUT_BYTES];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(hist, 1, sizeof(hist) - 1, f) : 0;
	if (f)
		fclose(f);
	hist[n] = '\0';
	CU_ASSERT_PTR_NOT_NULL(strstr(hist, "_HiStOrY_V2_\n"));
	struct stat st;
	CU_ASSERT(stat(path, &st) == 0 && (st.st_mode & 077) == 0); /* the user's alone */
	CU_ASSERT_PTR_NOT_NULL(strstr(hist, "\nhelp\\040set\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(hist, "\ndel\\040said\nquit\n"));
	/* the next prompt reads it: up twice is "del said" (then "quit") */
	CLI(0, "set", "said", "again");
	CU_ASSERT_FATAL(pty_start(&t, NULL));
	CU_ASSERT_FATAL(pty_expect(&t, "> "));
	pty_send(&t, "\033[A\033[A\r");
	CU_ASSERT(pty_expect(&t, "1\r\n"));
	CLI(1, "get", "said"); /* the recalled DEL ran */
	pty_send(&t, "\004"); /* Ctrl-D: the end, exit 0 */
	CU_ASSERT_EQUAL(pty_end(&t), 0);
	/* Ctrl-C ends pomai-cli (SIGINT) and keeps the lines typed before it */
	CU_ASSERT_FATAL(pty_start(&t, NULL));
	CU_ASSERT_FATAL(pty_expect(&t, "> "));
	pty_send(&t, "set ctrlc kept\r");
	CU_ASSERT(pty_expect(&t, "OK\r\n"));
	CU_ASSERT(pty_expect(&t, "> "));
	pty_send(&t, "\003");
	CU_ASSERT_EQUAL(pty_end(&t), -1); /* ended by the signal */
	f = fopen(path, "r");
	n = f ? fread(hist, 1, sizeof(hist) - 1, f) : 0;
	if (f)
		fclose(f);
	hist[n] = '\0';
	CU_ASSERT_PTR_NOT_NULL(strstr(hist, "\nset\\040ctrlc\\040kept\n"));
}

static void test_piped_commands(void)
{
	static const char script[] = "set piped \"a \\\"quoted\\\" value\"\n"
				     "get piped\n"
				     "\n"
				     "help del\n"
				     "nosuchcommand\n"
				     "del piped\n";
	CU_ASSERT_EQUAL(cli_io(script, true, (const char *const[]){ NULL }), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "OK\na \"quoted\" value\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Delete KEY"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "unknown command 'nosuchcommand'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\n1\n"));
	CU_ASSERT_PTR_NULL(strstr(out, "> ")); /* no prompt into a pipe */
	/* a command run twice starts afresh (load's counts) */
	char csv[PATH_MAX + 16], twice[2 * PATH_MAX + 128];
	snprintf(csv, sizeof(csv), "%s/two.csv", top);
	FILE *f = fopen(csv, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs("a,1,2\nb,3,4\n", f);
	fclose(f);
	snprintf(twice, sizeof(twice), "load %s --prefix p:\nload %s --prefix q:\n", csv, csv);
	CU_ASSERT_EQUAL(cli_io(twice, false, (const char *const[]){ NULL }), 0);
	const char *first = strstr(out, "loaded 2 vectors");
	CU_ASSERT(first && strstr(first + 1, "loaded 2 vectors"));
	/* an option that belongs to a command, with none: a usage error */
	CU_ASSERT_EQUAL(cli_io("", true, (const char *const[]){ "--k", "3", NULL }), 2);
}

/* ---------------------------------------------------------------- bash completion */

/* The completion of WORDS (a bash array's words: `pomai-cli get --`, the last
 * the one completed; '' for an empty one) with both scripts sourced, one
 * word a line in out; bash's exit code (9: `complete -p` did not know a
 * command). */
static int complete_words(const char *words)
{
	static struct proc p;
	char script[1024];
	int n = snprintf(script, sizeof(script),
		 "source \"$1\" && source \"$2\" || exit 8\n"
		 "complete -p pomai-cli pomaictl > /dev/null || exit 9\n"
		 "COMP_WORDS=(%s); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
		 "[[ ${COMP_WORDS[0]} == pomaictl ]] && _pomaictl || _pomai_cli\n"
		 "printf '%%s\\n' \"${COMPREPLY[@]}\"\n", words);
	if (n < 0 || (size_t)n >= sizeof(script))
		return -1; /* words too long for the script: not run */
	proc_init(&p, "bash");
	proc_args(&p, (const char *const[]){ "--norc", "--noprofile", "-c", script, "bash", comp_cli,
					     comp_ctl, NULL });
	p.capture = PROC_CAPTURE_STDOUT;
	return proc_run(&p, NULL, out, sizeof(out), 0);
}

/* The completion of words is exactly `want` (words a line each). */
static void expect_completion(const char *words, const char *want)
{
	int rc = complete_words(words);
	bool ok = rc == 0 && !strcmp(out, want);
	if (!ok)
		printf("\n  complete [%s]: exit %d, got\n%s  want\n%s", words, rc, out, want);
	CU_ASSERT(ok);
}

static void test_completion_words(void)
{
	expect_completion("pomai-cli s", "set\nsnapshot\n");
	expect_completion("pomai-cli --port 7700 collection ''", "create\nlist\ndrop\n");
	expect_completion("pomai-cli collection create c --metric ''", "l2\nip\ncosine\n");
	expect_completion("pomai-cli get --h", "--hex\n--host\n--help\n");
	expect_completion("pomai-cli info re", "replication\n");
	expect_completion("pomai-cli --port ''", "\n"); /* a value: nothing offered */
	expect_completion("pomaictl --json sn", "snapshot\n");
	expect_completion("pomaictl replication ''", "follow\nstop\npromote\nstatus\n");
	expect_completion("pomaictl info --j", "--json\n");
	/* a file where one is wanted */
	char words[PATH_MAX + 64];
	snprintf(words, sizeof(words), "pomai-cli load %s/compl", top);
	static char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "%s/completion-file.fvecs\n", top);
	char file[PATH_MAX + 32];
	snprintf(file, sizeof(file), "%s/completion-file.fvecs", top);
	FILE *f = fopen(file, "w");
	CU_ASSERT_FATAL(f != NULL);
	fclose(f);
	expect_completion(words, want);
}

/* lines holds each word of list (blank-separated) as a line, and no other. */
static bool same_words(const char *list, const char *lines)
{
	char copy[2048], line[80];
	unsigned n = 0, nl = 0;
	snprintf(copy, sizeof(copy), "%s", list);
	for (char *w = strtok(copy, " \n"); w; w = strtok(NULL, " \n"), n++) {
		snprintf(line, sizeof(line), "\n%s\n", w);
		if (strncmp(lines, line + 1, strlen(line + 1)) != 0 && !strstr(lines, line))
			return false;
	}
	for (const char *c = lines; *c; c++)
		nl += *c == '\n';
	if (n != nl)
		printf("\n  want the words '%s', got\n%s", list, lines);
	return n == nl;
}

static void test_completion_lists(void)
{
	static char help[OUT_BYTES], words[2048];
	/* pomai-cli: its commands and every option its --help names */
	CU_ASSERT_EQUAL_FATAL(cli_io(NULL, false, (const char *const[]){ "--help", NULL }), 0);
	memcpy(help, out, sizeof(help));
	const char *cmds = strstr(help, "\ncommands: ");
	CU_ASSERT_FATAL(cmds != NULL);
	cmds += strlen("\ncommands: ");
	snprintf(words, sizeof(words), "%.*s", (int)strcspn(cmds, "\n"), cmds);
	CU_ASSERT_EQUAL(complete_words("pomai-cli ''"), 0);
	CU_ASSERT(same_words(words, out));
	size_t at = 0;
	words[0] = '\0';
	for (const char *l = help; (l = strstr(l, "\n  --")) != NULL; l += 3)
		at += (size_t)snprintf(words + at, sizeof(words) - at, "%.*s ",
				       (int)strcspn(l + 3, " \n"), l + 3);
	CU_ASSERT_EQUAL(complete_words("pomai-cli --"), 0);
	CU_ASSERT(same_words(words, out));
	/* pomaictl: the commands its --help lists */
	static struct proc p;
	proc_init(&p, ctl_path);
	proc_arg(&p, "--help");
	CU_ASSERT_EQUAL_FATAL(proc_run(&p, NULL, help, sizeof(help), 0), 0);
	const char *l = strstr(help, "\ncommands:\n");
	CU_ASSERT_FATAL(l != NULL);
	at = 0;
	for (l += strlen("\ncommands:\n"); !strncmp(l, "  ", 2); l = strchr(l, '\n') + 1)
		at += (size_t)snprintf(words + at, sizeof(words) - at, "%.*s ",
				       (int)strcspn(l + 2, " "), l + 2);
	CU_ASSERT_EQUAL(complete_words("pomaictl ''"), 0);
	CU_ASSERT(same_words(words, out));
	/* the INFO sections offered: each one pomaid answers */
	CU_ASSERT_EQUAL(complete_words("pomaictl info ''"), 0);
	static char sections[OUT_BYTES];
	snprintf(sections, sizeof(sections), "%s", out);
	CU_ASSERT_EQUAL(complete_words("pomai-cli info ''"), 0);
	CU_ASSERT_STRING_EQUAL(out, sections);
	static char script[OUT_BYTES];
	unsigned n = 0;
	at = 0;
	for (char *s = strtok(sections, "\n"); s; s = strtok(NULL, "\n"), n++)
		at += (size_t)snprintf(script + at, sizeof(script) - at, "info %s\n", s);
	CU_ASSERT_EQUAL(n, 7);
	CU_ASSERT_EQUAL(cli_io(script, true, (const char *const[]){ NULL }), 0);
	CU_ASSERT_PTR_NULL(strstr(out, "no section")); /* every one answered */
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "shards:3"));
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: test_cli POMAID POMAI_CLI POMAICTL COMPLETION_CLI "
				"COMPLETION_CTL\n");
		return 1;
	}
	srv.path = argv[1];
	cli_path = argv[2];
	ctl_path = argv[3];
	comp_cli = argv[4];
	comp_ctl = argv[5];
	static CU_TestInfo tests[] = {
		{ "the shard count learnt from the server", test_shards_learnt },
		{ "an unknown INFO section is an error", test_info_section },
		{ "a value is a line on a terminal, bytes into a pipe", test_value_lines },
		{ "the prompt on a terminal, its history", test_prompt },
		{ "commands piped into the prompt", test_piped_commands },
		{ "bash completion: words completed", test_completion_words },
		{ "bash completion: the lists match the programs", test_completion_lists },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run_suite("cli", suite_init, suite_clean, tests);
}
