/* SPDX-License-Identifier: MIT
 *
 * datadir.c — the data directory rule (see datadir.h): data_dir and every
 * sub-directory owned by pomaid's user and not writable by others, nothing
 * in them followed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "datadir.h"

/* The rule for a directory pomaid writes in, checked on its open descriptor
 * (what was checked is what is used). 0, or -1 with a message. */
static int check(int fd, const char *shown, char *err, size_t errlen)
{
	struct stat sb;
	if (fstat(fd, &sb) != 0)
		return pm_errf(err, errlen, "%s: %s", shown, strerror(errno));
	uid_t me = geteuid();
	if (sb.st_uid != me)
		return pm_errf(err, errlen, "%s: owned by uid %u, not by pomaid's user (uid %u):"
			       " refusing to start — whoever owns it could make pomaid follow a"
			       " link to another file; chown it to uid %u or run pomaid as its owner",
			       shown, (unsigned)sb.st_uid, (unsigned)me, (unsigned)me);
	if (sb.st_mode & (S_IWGRP | S_IWOTH))
		return pm_errf(err, errlen, "%s: mode %04o lets other users write in it: refusing to"
			       " start — anyone who can add a name there could make pomaid follow a"
			       " link to another file; chmod go-w it (pomaid creates it 0700)", shown,
			       (unsigned)(sb.st_mode & 07777));
	return 0;
}

/* A directory made now is durable only once its parent's entry is: fsync
 * the parent (POSIX promises no more; test_powerloss's lazyfs holds pomaid
 * to exactly that, and a fresh data_dir lost its whole log to a power cut
 * before this). dirfd: the parent, or -1 to open path's parent by name. */
static int sync_parent(int dirfd, const char *path)
{
	if (dirfd >= 0)
		return fsync(dirfd);
	if (!path)
		return -1; /* never: callers give one or the other */
	char buf[PM_CONFIG_STRING_BYTES];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, slash ? path : ".", slash ? n : 1);
	buf[slash ? (n ? n : 1) : 1] = '\0'; /* "/x": the parent is "/" */
	int fd = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = fd >= 0 ? fsync(fd) : -1;
	if (fd >= 0)
		close(fd);
	return rc;
}

/* mkdir(path, mode), made durable in its parent when it was created. */
static int make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) != 0)
		return errno == EEXIST ? 0 : -1;
	return sync_parent(-1, path);
}

/* mkdir -p of path's parents (not path itself), each PM_DATADIR_PARENT_MODE. */
static int make_parents(const char *path)
{
	char buf[PM_CONFIG_STRING_BYTES];
	if (strlen(path) >= sizeof(buf))
		return -1;
	memcpy(buf, path, strlen(path) + 1);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/' && p[1] != '\0') {
			*p = '\0';
			if (make_dir(buf, PM_DATADIR_PARENT_MODE) != 0)
				return -1;
			*p = '/';
		}
	return 0;
}

int pm_datadir_open(const char *path, char *err, size_t errlen)
{
	if (make_parents(path) != 0 || make_dir(path, PM_DATADIR_MODE) != 0)
		return pm_errf(err, errlen, "data_dir %s: %s", path, strerror(errno));
	/* the configured path may be a link the operator made: followed here, once */
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return pm_errf(err, errlen, "data_dir %s: %s", path, strerror(errno));
	char shown[PM_CONFIG_STRING_BYTES + 16];
	snprintf(shown, sizeof(shown), "data_dir %s", path);
	if (check(fd, shown, err, errlen) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int pm_datadir_sub(int dirfd, const char *name, const char *shown, char *err, size_t errlen)
{
	int made = mkdirat(dirfd, name, PM_DATADIR_MODE);
	if ((made != 0 && errno != EEXIST) || (made == 0 && sync_parent(dirfd, NULL) != 0))
		return pm_errf(err, errlen, "%s: %s", shown, strerror(errno));
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		struct stat sb;
		bool link = fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode);
		return pm_errf(err, errlen, "%s: %s: refusing to start — pomaid follows no link inside"
			       " its data_dir (to keep this on another disk, mount it there)", shown,
			       link ? "a symbolic link" : strerror(errno));
	}
	if (check(fd, shown, err, errlen) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int pm_datadir_create(int dirfd, const char *name, int flags, mode_t mode)
{
	if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
		return -errno; /* a directory there, say: not ours to remove */
	int fd = openat(dirfd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	return fd < 0 ? -errno : fd;
}

int pm_datadir_replace(int dirfd, const char *name, const void *p, size_t n)
{
	char tmp[NAME_MAX + 1];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = pm_datadir_create(dirfd, tmp, O_WRONLY, 0640);
	int rc = fd < 0 ? fd : 0;
	if (rc == 0 && (write(fd, p, n) != (ssize_t)n || fdatasync(fd) != 0))
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc == 0 && (renameat(dirfd, tmp, dirfd, name) != 0 || fsync(dirfd) != 0))
		rc = -errno;
	return rc;
}

int pm_datadir_openat(int dirfd, const char *name, int flags, mode_t mode)
{
	int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	return fd < 0 ? -errno : fd;
}

DIR *pm_datadir_list(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (fd >= 0 && !d)
		close(fd);
	return d;
}
