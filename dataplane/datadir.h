/* SPDX-License-Identifier: MIT
 *
 * datadir.h — the data directory rule: pomaid keeps its files in a directory
 * only its own user can change, and follows no link inside it.
 *
 * data_dir, the path the operator configured (itself possibly a symlink the
 * operator made), is opened once at start-up and must be owned by pomaid's
 * effective user and be neither group- nor world-writable, as PostgreSQL
 * requires of its data directory: anyone else who could add names to it could
 * make pomaid — perhaps running as root — write through a symlink into a file
 * of their choice, or log into a directory they control. A data_dir that does
 * not exist is created with mode 0700 (its missing parents 0750).
 *
 * Below it everything is reached through directory descriptors: every
 * sub-directory (wal/, wal/shard-<i>/, snap/, snap/shard-<i>/) is made 0700,
 * opened with O_NOFOLLOW and checked by the same rule; files are opened,
 * renamed and removed with openat/renameat/unlinkat relative to their
 * directory, with O_NOFOLLOW; a temporary file is made with O_CREAT|O_EXCL
 * after whatever held its name (a symlink included) is removed — never
 * followed. A symlink where a directory or a persistent file should be stops
 * the start-up with a message naming it.
 */
#ifndef POMAI_DATAPLANE_DATADIR_H
#define POMAI_DATAPLANE_DATADIR_H

#include <dirent.h>
#include <stddef.h>
#include <sys/types.h>

/* Modes of what pomaid creates: data_dir and its sub-directories, and data_dir's
 * missing parents (as before the rule; a parent is not pomaid's to lock down). */
#define PM_DATADIR_MODE 0700
#define PM_DATADIR_PARENT_MODE 0750

/* Open data_dir (creating it, and its parents, if missing) and check it: a
 * directory descriptor, or -1 with a message saying what is wrong and what
 * to do about it. */
int pm_datadir_open(const char *path, char *err, size_t errlen);

/* Open sub-directory `name` of the directory dirfd (shown as `shown` in
 * messages), creating it 0700 if missing; refused if it is a symlink, not a
 * directory, or fails the ownership rule. A descriptor, or -1 with a message. */
int pm_datadir_sub(int dirfd, const char *name, const char *shown, char *err, size_t errlen);

/* A new file `name` in dirfd, opened with flags | O_CREAT | O_EXCL |
 * O_NOFOLLOW | O_CLOEXEC: whatever had the name before (a stale temporary
 * file, a symlink) is unlinked first, never followed. A descriptor or -errno. */
int pm_datadir_create(int dirfd, const char *name, int flags, mode_t mode);

/* Replace file `name` in dirfd by the n bytes at p, atomically and durably:
 * written to `name`.tmp (pm_datadir_create), fdatasynced, renamed over
 * `name`, the directory fsynced. A crash leaves the old file or the new one.
 * 0 or -errno. For small files (a replication history, a role). */
int pm_datadir_replace(int dirfd, const char *name, const void *p, size_t n);

/* File `name` in dirfd with flags | O_NOFOLLOW | O_CLOEXEC (mode: for
 * O_CREAT): a descriptor or -errno (-ELOOP for a symlink). */
int pm_datadir_openat(int dirfd, const char *name, int flags, mode_t mode);

/* A listing of the directory dirfd (which stays open, and is not followed
 * anywhere else), or NULL with errno. */
DIR *pm_datadir_list(int dirfd);

#endif
