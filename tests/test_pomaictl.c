/* SPDX-License-Identifier: MIT
 *
 * test_pomaictl.c — pomaictl's command line (issue 21) against a live pomaid
 * (argv[1]; pomaictl is argv[2]) whose data directory is <tmp>/var/pomai:
 *  - its options anywhere on the line: `info --json` prints JSON (it was
 *    taken for a section), `config get wal --timeout MS`, `--` ends them;
 *  - an unknown option, and an unknown INFO section (pomaid's answer: USAGE),
 *    exit 2 with usage; every section a full INFO shows is accepted;
 *  - the admin socket found without --socket: from the directory that holds
 *    ./var/pomai; from anywhere else through --config or POMAI_CONFIG (the
 *    data_dir, or admin_socket, in pomaid's config), then POMAI_ADMIN_SOCKET;
 *    each given source ahead of the next; and, when nothing is found, exit 3
 *    with where it looked. pomaictl runs with the test's cwd, so the test
 *    changes its own (it has no other thread then).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cu_main.h"
#include "proc.h"

/* pomaictl's answer kept per run (INFO of every shard as JSON fits). */
#define OUT_BYTES (1u << 20)
/* The words of one pomaictl line at most. */
#define WORDS_MAX 16
/* What pomaictl looks at when nothing names a socket (control/pomaictl.c). */
#define SOCKET_PACKAGED "/var/lib/pomai/admin.sock"

static const char *ctl_path;
static char top[PATH_MAX];      /* <tmp>: holds var/pomai, the configs */
static char sock[PATH_MAX + 32];
static char conf[PATH_MAX + 32], conf_sock[PATH_MAX + 32], conf_bad[PATH_MAX + 32];
static char out[OUT_BYTES];
static struct pomaid srv = {
	.flags = (const char *const[]){ "--arena-bytes", "64M", "--seeds", "65536", "--hugepages",
					"no", "--wal", "none", NULL },
};

/* ---------------------------------------------------------------- the daemon */

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	bool ok = f && fputs(text, f) >= 0;
	return f && fclose(f) == 0 && ok;
}

static int suite_init(void)
{
	char dir[PATH_MAX + 16], text[2 * PATH_MAX + 64];
	if (!proc_dir_make(top, "pomaictl"))
		return -1;
	snprintf(dir, sizeof(dir), "%s/var", top);
	if (mkdir(dir, 0700) != 0)
		return -1;
	if (snprintf(srv.dir, sizeof(srv.dir), "%s/var/pomai", top) >= (int)sizeof(srv.dir))
		return -1;
	snprintf(sock, sizeof(sock), "%s/admin.sock", srv.dir);
	/* pomaid's configs as an operator has them: one names data_dir, one
	 * admin_socket, one a directory with no daemon */
	snprintf(conf, sizeof(conf), "%s/pomai.conf", top);
	snprintf(text, sizeof(text), "# pomaid\nbase_port = 1\ndata_dir = %s\n", srv.dir);
	if (!write_file(conf, text))
		return -1;
	snprintf(conf_sock, sizeof(conf_sock), "%s/sock.conf", top);
	snprintf(text, sizeof(text), "data_dir = /nonexistent\nadmin_socket = %s\n", sock);
	if (!write_file(conf_sock, text))
		return -1;
	snprintf(conf_bad, sizeof(conf_bad), "%s/bad.conf", top);
	if (!write_file(conf_bad, "data_dir = /nonexistent/pomai\n"))
		return -1;
	return pomaid_start(&srv, NULL, NULL) ? 0 : -1;
}

static int suite_clean(void)
{
	if (pomaid_alive(&srv))
		pomaid_stop(&srv);
	proc_dir_remove(top);
	return 0;
}

/* ---------------------------------------------------------------- pomaictl */

/* pomaictl with args (words split at spaces) and up to two "NAME=value"
 * environment entries (NULL: none), run in directory cwd (NULL: the
 * test's); POMAI_CONFIG and POMAI_ADMIN_SOCKET are cleared unless given.
 * Its exit code; what it printed in out. */
static int ctl_in(const char *cwd, const char *env1, const char *env2, const char *args)
{
	static char words[2 * PATH_MAX];
	char back[PATH_MAX];
	struct proc p;
	proc_init(&p, ctl_path);
	snprintf(words, sizeof(words), "%s", args);
	int n = 0;
	for (char *w = strtok(words, " "); w && n < WORDS_MAX; w = strtok(NULL, " "), n++)
		proc_arg(&p, w);
	/* one entry per name: the one given, else the name cleared */
	static const char *const names[] = { "POMAI_CONFIG=", "POMAI_ADMIN_SOCKET=" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t len = strlen(names[i]);
		proc_env(&p, env1 && !strncmp(env1, names[i], len)   ? env1
			     : env2 && !strncmp(env2, names[i], len) ? env2
								     : names[i]);
	}
	if (cwd && (!getcwd(back, sizeof(back)) || chdir(cwd) != 0))
		return -2;
	int rc = proc_run(&p, NULL, out, sizeof(out), 0);
	if (cwd && chdir(back) != 0)
		return -2;
	return rc;
}

static int ctl(const char *args)
{
	char line[2 * PATH_MAX];
	snprintf(line, sizeof(line), "--socket %s %s", sock, args);
	return ctl_in(NULL, NULL, NULL, line);
}

/* exits with code and said `has` (NULL: anything); printed when not */
static void expect_in(const char *cwd, const char *env1, const char *env2, const char *args,
		      int code, const char *has)
{
	int rc = ctl_in(cwd, env1, env2, args);
	bool ok = rc == code && (!has || strstr(out, has));
	if (!ok)
		printf("\n  [cwd %s] pomaictl %s: exit %d (want %d, saying '%s'):\n%.2000s\n",
		       cwd ? cwd : ".", args, rc, code, has ? has : "", out);
	CU_ASSERT(ok);
}

static void expect(const char *args, int code, const char *has)
{
	char line[2 * PATH_MAX];
	snprintf(line, sizeof(line), "--socket %s %s", sock, args);
	expect_in(NULL, NULL, NULL, line, code, has);
}

/* ---------------------------------------------------------------- options */

static void test_options_anywhere(void)
{
	expect("info --json", 0, "{\"status\":\"ok\"");
	expect("info memory --json", 0, "\"Memory\":{");
	expect("--json ping", 0, "{\"status\":\"ok\"");
	expect("config get wal --timeout 5000", 0, "wal:none");
	expect("ping --timeout", 2, "needs a value");
	expect("info --help", 0, "usage: pomaictl [OPTIONS] info");
	expect("-- ping", 0, "PONG");
	/* after the command, --socket is still pomaictl's */
	char line[PATH_MAX + 64];
	snprintf(line, sizeof(line), "ping --socket %s", sock);
	expect_in(NULL, NULL, NULL, line, 0, "PONG");
}

static void test_unknown_option_and_section(void)
{
	expect("info --bogus", 2, "--bogus: unknown option");
	expect("--bogus info", 2, "usage");
	expect("shards -x", 2, "-x: unknown option");
	expect("collection create c --dim 4 --bogus 1", 2, "usage");
	/* pomaid judges the section (one list, the daemon's): USAGE, exit 2 */
	expect("info nosuchsection", 2, "no such section 'nosuchsection'");
	expect("--json info nosuchsection", 2, "\"status\":\"error\"");
	expect("info NoSuchSection --json", 2, "no such section");
	/* every section a full INFO shows is one pomaictl takes, and answers */
	CU_ASSERT_EQUAL_FATAL(ctl("info"), 0);
	static char full[OUT_BYTES];
	memcpy(full, out, sizeof(full));
	unsigned asked = 0;
	for (char *l = full; (l = strstr(l, "\n# ")) != NULL; l++) {
		char name[64];
		size_t n = 0;
		for (const char *c = l + 3; *c && *c != '\r' && *c != '\n' && n + 1 < sizeof(name);)
			name[n++] = (char)*c++;
		name[n] = '\0';
		if (!strcmp(name, "Total") || !strncmp(name, "Shard ", 6))
			continue;
		char args[96];
		snprintf(args, sizeof(args), "info %s", name);
		expect(args, 0, name);
		asked++;
	}
	CU_ASSERT(asked >= 5); /* keyspace, memory, vectors, stats, dataplane at least */
	expect("info replication", 0, NULL); /* empty on a node that does not replicate */
	expect("info cluster", 0, "shards:");
}

/* ---------------------------------------------------------------- the socket */

static void test_socket_found(void)
{
	char env[PATH_MAX + 64], env2[PATH_MAX + 64], args[PATH_MAX + 64];
	/* where pomaid was started: ./var/pomai/admin.sock */
	expect_in(top, NULL, NULL, "ping", 0, "PONG");
	/* anywhere else: nothing, unless the package's daemon runs here */
	if (access(SOCKET_PACKAGED, F_OK) != 0) {
		expect_in("/", NULL, NULL, "ping", 3, "looked at " SOCKET_PACKAGED);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "./var/pomai/admin.sock"));
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "POMAI_CONFIG"));
	}
	/* pomaid's config names data_dir, or admin_socket */
	snprintf(env, sizeof(env), "POMAI_CONFIG=%s", conf);
	expect_in("/", env, NULL, "ping", 0, "PONG");
	snprintf(args, sizeof(args), "ping --config %s", conf);
	expect_in("/", NULL, NULL, args, 0, "PONG");
	snprintf(args, sizeof(args), "--config %s info --json", conf_sock);
	expect_in("/", NULL, NULL, args, 0, "{\"status\":\"ok\"");
	/* then POMAI_ADMIN_SOCKET */
	snprintf(env2, sizeof(env2), "POMAI_ADMIN_SOCKET=%s", sock);
	expect_in("/", env2, NULL, "ping", 0, "PONG");
}

static void test_socket_order(void)
{
	char env[PATH_MAX + 64], env2[PATH_MAX + 64], args[PATH_MAX + 64];
	/* --socket over a config that names no daemon */
	snprintf(env, sizeof(env), "POMAI_CONFIG=%s", conf_bad);
	snprintf(args, sizeof(args), "ping --socket %s", sock);
	expect_in("/", env, NULL, args, 0, "PONG");
	/* --config over POMAI_CONFIG */
	snprintf(args, sizeof(args), "ping --config %s", conf);
	expect_in("/", env, NULL, args, 0, "PONG");
	/* POMAI_CONFIG over POMAI_ADMIN_SOCKET, both given: the config decides */
	snprintf(env2, sizeof(env2), "POMAI_ADMIN_SOCKET=%s", sock);
	expect_in("/", env, env2, "ping", 3, "/nonexistent/pomai/admin.sock");
	snprintf(env, sizeof(env), "POMAI_CONFIG=%s", conf);
	expect_in("/", env, "POMAI_ADMIN_SOCKET=/nonexistent/admin.sock", "ping", 0, "PONG");
	/* a config that cannot be read is the caller's mistake */
	expect_in("/", NULL, NULL, "ping --config /nonexistent/pomai.conf", 2,
		  "/nonexistent/pomai.conf");
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: test_pomaictl POMAID POMAICTL\n");
		return 1;
	}
	static char ctl_abs[PATH_MAX];
	srv.path = argv[1];
	/* absolute: pomaictl runs from other directories */
	if (!realpath(argv[2], ctl_abs)) {
		fprintf(stderr, "test_pomaictl: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	ctl_path = ctl_abs;
	static CU_TestInfo tests[] = {
		{ "options anywhere on the line", test_options_anywhere },
		{ "unknown options and INFO sections exit 2", test_unknown_option_and_section },
		{ "the admin socket found without --socket", test_socket_found },
		{ "which source of the socket decides", test_socket_order },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run_suite("pomaictl", suite_init, suite_clean, tests);
}
