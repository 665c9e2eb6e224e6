/* SPDX-License-Identifier: MIT
 *
 * test_datadir.c — the data directory rule (dataplane/datadir.h) against a
 * real pomaid (path in argv[1]):
 *
 *  1. A data_dir that other users can write (group- or world-writable, or
 *     owned by another user — as root, chowned to nobody) stops the start-up
 *     with a message naming it and saying what to do, before anything is
 *     created in it; so does such a sub-directory. A data_dir pomaid creates
 *     is 0700, and so is every sub-directory it makes.
 *  2. Links planted in the data directory are never followed: a symlinked
 *     wal/, wal/shard-<i>/, snap/, snap/shard-<i>/, LOCK, log segment or
 *     published snapshot stops the start-up naming it; a link at a temporary
 *     or spare name (pomaid.stats.new, pomaid.stats, next.spare, <LSN>.spare,
 *     <LSN>.snap.tmp) is removed or replaced, and the file it points to is
 *     left as it was.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <inttypes.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cu_main.h"
#include "libclient.h"
#include "pomai.h"
#include "proc.h"

/* The contents of the files the planted links point to. */
#define VICTIM_TEXT "precious: not pomaid's\n"
/* uid and gid of "nobody": another user than pomaid's (root in CI). */
#define OTHER_UID 65534u
#define OTHER_GID 65534u
/* How long a snapshot of a few keys may take to be published. */
#define SNAP_WAIT_MS 30000

static const char *pomaid_path;
/* The flags of every start (with the ports, --shards and --data-dir). */
static const char *const pomaid_flags[] = { "--arena-bytes", "64M", "--seeds", "65536",
					    "--hugepages", "no", "--wal-segment-bytes", "16M",
					    "--knn-timeout-ms", "2000", "--idle-sleep-us", "1000",
					    NULL };

static void path_join(char *out, const char *a, const char *b)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", a, b);
	CU_ASSERT_FATAL(n > 0 && n < PATH_MAX);
}

/* A victim file holding VICTIM_TEXT in dir; its path in out. */
static bool victim_make(const char *dir, const char *name, char *out)
{
	path_join(out, dir, name);
	int fd = open(out, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	bool ok = fd >= 0 && write(fd, VICTIM_TEXT, strlen(VICTIM_TEXT)) == (ssize_t)strlen(VICTIM_TEXT);
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Whether the victim still holds exactly VICTIM_TEXT. */
static bool victim_intact(const char *path)
{
	char buf[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	if (fd >= 0)
		close(fd);
	return n == (ssize_t)strlen(VICTIM_TEXT) && !memcmp(buf, VICTIM_TEXT, (size_t)n);
}

static bool exists(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat sb;
	path_join(path, dir, name);
	return lstat(path, &sb) == 0;
}

static unsigned mode_of(const char *path)
{
	struct stat sb;
	return lstat(path, &sb) == 0 ? (unsigned)(sb.st_mode & 07777) : 0u;
}

static bool is_link(const char *path)
{
	struct stat sb;
	return lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode);
}

static bool is_regular(const char *path)
{
	struct stat sb;
	return lstat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Replace data_dir/rel with a symlink to target. */
static bool plant(const char *data, const char *rel, const char *target)
{
	char path[PATH_MAX];
	path_join(path, data, rel);
	proc_dir_remove(path); /* a file or a directory tree; nothing if absent */
	return symlink(target, path) == 0;
}

/* A start that must be refused, with `what` in its message. */
static void refused(struct pomaid *p, const char *what, const char *case_name)
{
	bool started = pomaid_start(p, NULL, NULL);
	bool said = strstr(p->proc.out, what) != NULL;
	if (started || !said)
		printf("\n  %s: %s; output: %s", case_name, started ? "STARTED" : "refused without"
			" the expected message", p->proc.out);
	CU_ASSERT(!started);
	CU_ASSERT(said);
	CU_ASSERT(WIFEXITED(p->proc.status) && WEXITSTATUS(p->proc.status) != 0);
	if (started)
		pomaid_stop(p);
}

/* ---------------------------------------------------------------- 1. ownership and modes */

static void test_modes(void)
{
	proc_kill_all();
	struct pomaid p = { .path = pomaid_path, .flags = pomaid_flags };
	char sub[PATH_MAX];
	CU_ASSERT_FATAL(proc_dir_make(p.dir, "datadir"));
	/* writable by others: refused, nothing made in it */
	static const unsigned bad[] = { 0770, 0730, 0777, 01777, 0702 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_FATAL(chmod(p.dir, bad[i]) == 0);
		refused(&p, "lets other users write in it", "group/world-writable data_dir");
		CU_ASSERT(!exists(p.dir, "LOCK") && !exists(p.dir, "wal") && !exists(p.dir, "snap"));
	}
	/* readable by the group is fine (a monitoring group may read pomaid.stats) */
	CU_ASSERT_FATAL(chmod(p.dir, 0750) == 0);
	CU_ASSERT_FATAL(pomaid_start(&p, NULL, NULL));
	CU_ASSERT(pomaid_stop(&p));
	/* a sub-directory that others can write: refused too */
	path_join(sub, p.dir, "snap");
	CU_ASSERT_FATAL(chmod(sub, 0777) == 0);
	refused(&p, "snap: mode 0777 lets other users write in it", "world-writable snap/");
	CU_ASSERT_FATAL(chmod(sub, 0700) == 0);
	/* owned by another user (root only: as anyone else chown fails) */
	if (geteuid() == 0) {
		CU_ASSERT_FATAL(chown(p.dir, OTHER_UID, OTHER_GID) == 0);
		refused(&p, "owned by uid 65534, not by pomaid's user (uid 0)", "data_dir of nobody");
		CU_ASSERT_FATAL(chown(p.dir, 0, 0) == 0);
		path_join(sub, p.dir, "wal/shard-1");
		CU_ASSERT_FATAL(chown(sub, OTHER_UID, OTHER_GID) == 0);
		refused(&p, "wal/shard-1: owned by uid 65534", "wal/shard-1 of nobody");
		CU_ASSERT_FATAL(chown(sub, 0, 0) == 0);
	} else {
		printf("\n  NOTICE: not root: a data_dir owned by another user not tried%s",
		       proc_ci() ? " — but CI=true: failing" : "");
		CU_ASSERT(!proc_ci());
	}
	CU_ASSERT_FATAL(pomaid_start(&p, NULL, NULL));
	CU_ASSERT(pomaid_stop(&p));
	/* one pomaid makes, with its missing parents: 0700 throughout */
	snprintf(p.dir + strlen(p.dir), sizeof(p.dir) - strlen(p.dir), "/made/by/pomaid");
	CU_ASSERT_FATAL(pomaid_start(&p, NULL, NULL));
	CU_ASSERT(pomaid_stop(&p));
	static const char *const made[] = { "", "/wal", "/wal/shard-0", "/wal/shard-1", "/snap",
					    "/snap/shard-0", "/snap/shard-1" };
	for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
		snprintf(sub, sizeof(sub), "%s%s", p.dir, made[i]);
		if (mode_of(sub) != 0700)
			printf("\n  %s: mode %04o, not 0700", sub, mode_of(sub));
		CU_ASSERT_EQUAL(mode_of(sub), 0700);
	}
	*strstr(p.dir, "/made") = '\0';
	proc_dir_remove(p.dir);
}

/* ---------------------------------------------------------------- 2. links */

/* A link where a directory pomaid uses should be: refused, the target untouched. */
static void refused_dir_links(struct pomaid *p, const char *elsewhere)
{
	static const char *const dirs[] = { "wal", "wal/shard-1", "snap", "snap/shard-0" };
	char target[PATH_MAX];
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char what[PATH_MAX + 64];
		int tn = snprintf(target, sizeof(target), "%s/dir%zu", elsewhere, i);
		CU_ASSERT_FATAL(tn > 0 && tn < (int)sizeof(target));
		CU_ASSERT_FATAL(mkdir(target, 0700) == 0);
		CU_ASSERT_FATAL(pomaid_start(p, NULL, NULL)); /* the directories as pomaid makes them */
		CU_ASSERT(pomaid_stop(p));
		CU_ASSERT_FATAL(plant(p->dir, dirs[i], target));
		snprintf(what, sizeof(what), "%s/%s: a symbolic link: refusing to start", p->dir, dirs[i]);
		refused(p, what, dirs[i]);
		DIR *d = opendir(target);
		unsigned n = 0;
		for (struct dirent *e; d && (e = readdir(d)) != NULL;)
			n += e->d_name[0] != '.';
		if (d)
			closedir(d);
		CU_ASSERT_EQUAL(n, 0); /* pomaid made nothing where the link points */
		char path[PATH_MAX];
		path_join(path, p->dir, dirs[i]);
		CU_ASSERT(unlink(path) == 0);
	}
}

/* A link where a persistent file should be: refused, the target untouched. */
static void refused_file_links(struct pomaid *p, const char *victim)
{
	char what[PATH_MAX + 64], path[PATH_MAX];
	/* LOCK */
	CU_ASSERT_FATAL(plant(p->dir, "LOCK", victim));
	refused(p, "LOCK: a symbolic link: refusing to start", "LOCK");
	CU_ASSERT(victim_intact(victim));
	path_join(path, p->dir, "LOCK");
	CU_ASSERT(unlink(path) == 0);
	/* a log segment: shard 0's first one, made at the last start */
	CU_ASSERT_FATAL(pomaid_start(p, NULL, NULL));
	CU_ASSERT(pomaid_stop(p));
	CU_ASSERT_FATAL(plant(p->dir, "wal/shard-0/00000000000000000001.wal", victim));
	snprintf(what, sizeof(what), "wal/shard-0/00000000000000000001.wal: %s", strerror(ELOOP));
	refused(p, what, "a segment");
	CU_ASSERT(victim_intact(victim));
	path_join(path, p->dir, "wal/shard-0/00000000000000000001.wal");
	CU_ASSERT(unlink(path) == 0);
	/* the stats segment's temporary name held by a directory: it is made on
	 * the main thread while the shards load (pomaid.c, open_beside); the start
	 * stops there, says why, and the shards opened beside it are closed */
	path_join(path, p->dir, "pomaid.stats.new");
	CU_ASSERT_FATAL(mkdir(path, 0700) == 0);
	snprintf(what, sizeof(what), "pomaid.stats.new: %s", strerror(EISDIR));
	refused(p, what, "the stats segment");
	CU_ASSERT(rmdir(path) == 0);
	CU_ASSERT_FATAL(pomaid_start(p, NULL, NULL)); /* and starts once it is gone */
	CU_ASSERT(pomaid_stop(p));
}

/* Links at names pomaid makes anew (temporary files, spares): removed or
 * replaced, never followed; pomaid starts and the victims are intact. */
static void replaced_links(struct pomaid *p, const char *v1, const char *v2)
{
	char path[PATH_MAX];
	CU_ASSERT_FATAL(pomaid_start(p, NULL, NULL));
	CU_ASSERT(pomaid_stop(p));
	CU_ASSERT_FATAL(plant(p->dir, "pomaid.stats.new", v1));
	CU_ASSERT_FATAL(plant(p->dir, "pomaid.stats", v2));
	CU_ASSERT_FATAL(plant(p->dir, "wal/shard-0/next.spare", v1));
	CU_ASSERT_FATAL(plant(p->dir, "wal/shard-1/00000000000000000007.spare", v2));
	CU_ASSERT_FATAL(plant(p->dir, "snap/shard-0/00000000000000000003.snap.tmp", v1));
	CU_ASSERT_FATAL(plant(p->dir, "snap/shard-1/00000000000000000004.snap.image", v2));
	CU_ASSERT_FATAL(pomaid_start(p, NULL, NULL));
	path_join(path, p->dir, "pomaid.stats");
	CU_ASSERT(is_regular(path));
	CU_ASSERT(!exists(p->dir, "pomaid.stats.new"));
	CU_ASSERT(!exists(p->dir, "snap/shard-0/00000000000000000003.snap.tmp"));
	CU_ASSERT(!exists(p->dir, "snap/shard-1/00000000000000000004.snap.image")); /* a full
	   sync's image, interrupted: removed like a snapshot's temporary file */
	path_join(path, p->dir, "wal/shard-0/next.spare");
	CU_ASSERT(!is_link(path));
	CU_ASSERT(victim_intact(v1));
	CU_ASSERT(victim_intact(v2));
	/* a running snapshot's temporary name, planted while pomaid runs: shard
	 * 0 gets one record (LSN 1), shard 1 none (its snapshot starts at LSN 0) */
	struct pm_client *c = lib_open(p, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
	CU_ASSERT_FATAL(c != NULL);
	char key[32];
	int kl = snprintf(key, sizeof(key), "k0");
	for (unsigned i = 1; pm_client_shard_of(c, key, (size_t)kl) != 0; i++)
		kl = snprintf(key, sizeof(key), "k%u", i);
	CU_ASSERT_EQUAL(pm_client_set(c, key, (size_t)kl, "v", 1, 0), PM_CLIENT_OK);
	CU_ASSERT_FATAL(plant(p->dir, "snap/shard-0/00000000000000000001.snap.tmp", v1));
	CU_ASSERT_FATAL(plant(p->dir, "snap/shard-1/00000000000000000000.snap.tmp", v2));
	CU_ASSERT_EQUAL(pm_client_snapshot(c), PM_CLIENT_OK);
	pm_client_close(c);
	CU_ASSERT(lib_info_reaches(p, "snapshots_completed", POMAID_SHARDS_DEFAULT, SNAP_WAIT_MS));
	path_join(path, p->dir, "snap/shard-0/00000000000000000001.snap");
	CU_ASSERT(is_regular(path));
	CU_ASSERT(victim_intact(v1));
	CU_ASSERT(victim_intact(v2));
	CU_ASSERT(pomaid_stop(p));
	/* the published snapshot itself as a link: refused */
	CU_ASSERT_FATAL(plant(p->dir, "snap/shard-0/00000000000000000001.snap", v1));
	refused(p, "snap/shard-0/00000000000000000001.snap: a symbolic link", "a snapshot");
	CU_ASSERT(victim_intact(v1));
}

static void test_links(void)
{
	proc_kill_all();
	struct pomaid p = { .path = pomaid_path, .flags = pomaid_flags };
	char elsewhere[PATH_MAX], v1[PATH_MAX], v2[PATH_MAX];
	CU_ASSERT_FATAL(proc_dir_make(p.dir, "datadir"));
	CU_ASSERT_FATAL(proc_dir_make(elsewhere, "elsewhere"));
	CU_ASSERT_FATAL(victim_make(elsewhere, "victim1", v1));
	CU_ASSERT_FATAL(victim_make(elsewhere, "victim2", v2));
	refused_dir_links(&p, elsewhere);
	refused_file_links(&p, v1);
	replaced_links(&p, v1, v2);
	proc_dir_remove(p.dir);
	proc_dir_remove(elsewhere);
}

int main(int argc, char **argv)
{
	if (argc < 2 || access(argv[1], X_OK) != 0) {
		fprintf(stderr, "test_datadir: no pomaid to run (usage: test_datadir PATH-TO-POMAID)\n");
		return PM_TEST_SKIP;
	}
	pomaid_path = argv[1];
	static CU_TestInfo tests[] = {
		{ "1. a data_dir others can write is refused; pomaid makes its own 0700", test_modes },
		{ "2. links in the data_dir are refused or removed, never followed", test_links },
		CU_TEST_INFO_NULL,
	};
	int rc = pm_cu_run("datadir", tests);
	proc_kill_all();
	return rc;
}
