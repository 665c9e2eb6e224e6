/* SPDX-License-Identifier: MIT
 *
 * lazyfs.c — a FUSE file system for power-loss tests (in the spirit of LazyFS,
 * which Jepsen uses against etcd): every file and directory lives in this
 * process's memory in two states, the current one (what reads see) and the
 * durable one (what a disk would hold after a power cut). A completed fsync or
 * fdatasync of a file makes its data and size durable; an fsync of a directory
 * makes its entries durable (a file created, renamed or unlinked in it is, or
 * is not, there after a power loss accordingly, as POSIX promises and no
 * more). Everything else stays volatile until `crash` drops it.
 *
 *     lazyfs MOUNTPOINT [--bytes-max N] [--seed N]
 *
 * It mounts itself (root: mount(2); otherwise through fusermount3), prints
 * "ok mounted", and then takes one command per line on stdin, answering each
 * with one line on stdout that starts with "ok" or "error":
 *
 *   crash [KEEP_PCT]      power is lost now: the durable state is frozen and
 *                         every later request fails with EIO (an fsync still
 *                         running fails and persists nothing). KEEP_PCT (0 by
 *                         default) of the pending pages, sizes and directory
 *                         changes reach the disk all the same, chosen at
 *                         random, as a disk that reorders writes would leave
 *   crash skip-first      the same, but every pending page of a file reaches
 *                         the disk except its first (directories: none)
 *   remount               unmount, keep only the durable state (after a
 *                         crash) or everything (without one: a clean
 *                         shutdown), mount again: the kernel's caches start
 *                         empty, as after a reboot
 *   fsync-delay MIN MAX   each file fsync takes MIN..MAX microseconds (a disk)
 *   fsync-fail N          the next N file fsyncs fail with EIO (nothing
 *                         persisted)
 *   fsync-stall on|off    file fsyncs wait until "off" (or a crash)
 *   wait-stalled N MS     answers once N fsyncs wait, or "error" after MS
 *   stats                 counters and what is pending
 *   quit                  unmount and exit (also at the end of stdin)
 *
 * Not modelled: file modes, times and xattrs are never volatile; hard links,
 * symlinks, POSIX locks (the kernel keeps flock and fcntl locks locally);
 * a crash in the middle of one write (a page is written whole or not at all).
 * Data is kept in 4 KiB pages, copy-on-write between the two states, so a
 * preallocated, mostly empty file costs only its written pages.
 *
 * Inode numbers are never reused while mounted (forget is not tracked, so the
 * kernel may still know an old number); unreachable inodes are freed at
 * remount, when the kernel has forgotten them all.
 */
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Unit of data kept and of copy-on-write between the two states. */
#define LAZYFS_PAGE_BYTES 4096u
/* Default cap on the page bytes held (current and durable states together):
 * past it writes fail with ENOSPC. --bytes-max changes it. */
#define LAZYFS_BYTES_MAX_DEFAULT (1ull << 30)
/* Inode numbers one run may hand out (never reused while mounted). */
#define LAZYFS_INODES_MAX (1u << 20)
/* Largest file: its page table is sized from it. */
#define LAZYFS_FILE_BYTES_MAX (16ull << 30)
/* How long the kernel may cache names and attributes: every change comes
 * through this mount, so the caches stay right. */
#define LAZYFS_CACHE_S 1.0
/* FUSE worker threads: a stalled or slow fsync holds one; the rest serve. */
#define LAZYFS_THREADS_MAX 16u
#define LAZYFS_IDLE_THREADS 4u
/* How long `remount` waits for the old mount to go (something may hold it). */
#define LAZYFS_REMOUNT_WAIT_MS 30000
/* A command line on stdin; a stats answer. */
#define LAZYFS_LINE_BYTES 256u
#define LAZYFS_ANSWER_BYTES 512u
/* The longest fsync delay a command may set (a slow disk, not a hang). */
#define LAZYFS_FSYNC_DELAY_US_MAX 1000000u

/* ---------------------------------------------------------------- state */

struct page {
	uint8_t b[LAZYFS_PAGE_BYTES];
};

struct ent {
	char *name;
	uint64_t ino;
};

struct ents {
	struct ent *v;
	uint32_t n, cap;
};

struct node {
	uint64_t ino;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	uint32_t nlink;                /* names in current directory entries */
	struct timespec atime, mtime, ctime;
	/* a file: the current and the durable page tables, equal where clean */
	uint64_t size, dsize;
	struct page **cur, **dur;
	uint64_t slots;                /* entries of both tables */
	uint64_t dlo, dhi;             /* pages changed since the last fsync: [dlo, dhi) */
	/* a directory */
	struct ents ce, de;            /* current and durable entries */
	bool dirty;                    /* ce differs from de */
};

/* A directory listing as it was at opendir (fi->fh). */
struct listing {
	uint32_t n;
	struct {
		char *name;
		uint64_t ino;
		mode_t mode;
	} v[];
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;             /* stalled and delayed fsyncs; remount */
	struct node **tab;             /* by inode number */
	uint64_t next_ino;
	uint64_t bytes, bytes_max;     /* page bytes held */
	uint64_t rng;
	bool crashed;                  /* power is off: EIO, nothing persists */
	uint64_t epoch;                /* crashes and the quit: an fsync begun before one persists nothing */
	uint32_t delay_min_us, delay_max_us;
	uint32_t fail_left;
	bool stall;
	uint32_t stalled;
	/* counters */
	uint64_t writes, fsyncs, fsyncs_failed, dir_fsyncs, crashes;
	uint64_t lost_pages, lost_dirs, kept_pages;
	/* mounting */
	const char *mnt;
	bool quit, remount_asked;
	uint64_t mounts;
} fs = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.bytes_max = LAZYFS_BYTES_MAX_DEFAULT,
	.next_ino = FUSE_ROOT_ID,
};

static uint64_t rnd(void)
{
	uint64_t z = (fs.rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static struct timespec now_ts(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return t;
}

static struct node *get(fuse_ino_t ino)
{
	return ino < fs.next_ino ? fs.tab[ino] : NULL;
}

static struct node *node_new(mode_t mode)
{
	if (fs.next_ino >= LAZYFS_INODES_MAX)
		return NULL;
	struct node *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->ino = fs.next_ino++;
	n->mode = mode;
	n->uid = getuid();
	n->gid = getgid();
	n->atime = n->mtime = n->ctime = now_ts();
	fs.tab[n->ino] = n;
	return n;
}

/* ---------------------------------------------------------------- pages */

static void page_free(struct page *p)
{
	if (p) {
		free(p);
		fs.bytes -= LAZYFS_PAGE_BYTES;
	}
}

static int slots_reserve(struct node *n, uint64_t pages)
{
	if (pages <= n->slots)
		return 0;
	uint64_t want = n->slots ? n->slots : 16;
	while (want < pages)
		want *= 2;
	struct page **c = realloc(n->cur, want * sizeof(*c));
	if (!c)
		return -ENOMEM;
	n->cur = c;
	struct page **d = realloc(n->dur, want * sizeof(*d));
	if (!d)
		return -ENOMEM;
	n->dur = d;
	memset(n->cur + n->slots, 0, (want - n->slots) * sizeof(*c));
	memset(n->dur + n->slots, 0, (want - n->slots) * sizeof(*d));
	n->slots = want;
	return 0;
}

static void mark(struct node *n, uint64_t i)
{
	if (n->dlo == n->dhi)
		n->dlo = i, n->dhi = i + 1;
	n->dlo = i < n->dlo ? i : n->dlo;
	n->dhi = i + 1 > n->dhi ? i + 1 : n->dhi;
}

/* Page i of the current state, its own (not shared with the durable one). */
static struct page *page_own(struct node *n, uint64_t i)
{
	if (n->cur[i] && n->cur[i] != n->dur[i])
		return n->cur[i];
	if (fs.bytes + LAZYFS_PAGE_BYTES > fs.bytes_max)
		return NULL;
	struct page *p = malloc(sizeof(*p));
	if (!p)
		return NULL;
	fs.bytes += LAZYFS_PAGE_BYTES;
	if (n->cur[i])
		memcpy(p->b, n->cur[i]->b, LAZYFS_PAGE_BYTES);
	else
		memset(p->b, 0, LAZYFS_PAGE_BYTES);
	n->cur[i] = p;
	mark(n, i);
	return p;
}

/* Page i of the current state reads as zeros from now on. */
static void page_clear(struct node *n, uint64_t i)
{
	if (n->cur[i] != n->dur[i])
		page_free(n->cur[i]);
	if (n->cur[i] || n->dur[i])
		mark(n, i);
	n->cur[i] = NULL;
}

/* Zero [off, off + len) of the current state; whole pages become holes. */
static int zero_range(struct node *n, uint64_t off, uint64_t len)
{
	for (uint64_t end = off + len; off < end;) {
		uint64_t i = off / LAZYFS_PAGE_BYTES, po = off % LAZYFS_PAGE_BYTES;
		uint64_t k = LAZYFS_PAGE_BYTES - po < end - off ? LAZYFS_PAGE_BYTES - po : end - off;
		if (i >= n->slots)
			break;
		if (k == LAZYFS_PAGE_BYTES) {
			page_clear(n, i);
		} else if (n->cur[i]) {
			struct page *p = page_own(n, i);
			if (!p)
				return -ENOSPC;
			memset(p->b + po, 0, k);
		}
		off += k;
	}
	return 0;
}

static int file_truncate(struct node *n, uint64_t size)
{
	if (size > LAZYFS_FILE_BYTES_MAX)
		return -EFBIG;
	if (size < n->size) {
		uint64_t end = n->slots * LAZYFS_PAGE_BYTES;
		int rc = zero_range(n, size, (end > size ? end : size) - size);
		if (rc)
			return rc;
	}
	int rc = slots_reserve(n, (size + LAZYFS_PAGE_BYTES - 1) / LAZYFS_PAGE_BYTES);
	if (rc)
		return rc;
	n->size = size;
	n->mtime = n->ctime = now_ts();
	return 0;
}

/* fsync: the file's current data and size become durable. */
static void file_persist(struct node *n)
{
	for (uint64_t i = n->dlo; i < n->dhi && i < n->slots; i++)
		if (n->cur[i] != n->dur[i]) {
			page_free(n->dur[i]);
			n->dur[i] = n->cur[i];
		}
	n->dlo = n->dhi = 0;
	n->dsize = n->size;
}

/* How a crash treats what was pending (`crash` sets it). */
struct cut {
	unsigned keep_pct;   /* this many percent of pending pages, sizes, directories reach the disk */
	bool skip_first;     /* every pending page but each file's first reaches it */
};

/* Power loss: the file reads as its durable state, plus what c lets through. */
static void file_revert(struct node *n, const struct cut *c)
{
	bool first = true;
	for (uint64_t i = n->dlo; i < n->dhi && i < n->slots; i++) {
		if (n->cur[i] == n->dur[i])
			continue;
		bool keep = c->skip_first ? !first : c->keep_pct && rnd() % 100 < c->keep_pct;
		first = false;
		if (keep) {
			page_free(n->dur[i]);
			n->dur[i] = n->cur[i];
			fs.kept_pages++;
			continue;
		}
		page_free(n->cur[i]);
		n->cur[i] = n->dur[i];
		fs.lost_pages++;
	}
	n->dlo = n->dhi = 0;
	if (c->skip_first || (c->keep_pct && rnd() % 100 < c->keep_pct))
		n->dsize = n->size;
	n->size = n->dsize;
	/* a size kept shorter than a page kept: the page's bytes past it read as zeros */
	(void)zero_range(n, n->size, n->slots * LAZYFS_PAGE_BYTES - n->size);
	file_persist(n);
}

/* ---------------------------------------------------------------- directories */

static struct ent *ent_find(struct ents *e, const char *name)
{
	for (uint32_t i = 0; i < e->n; i++)
		if (!strcmp(e->v[i].name, name))
			return &e->v[i];
	return NULL;
}

static int ent_add(struct ents *e, const char *name, uint64_t ino)
{
	if (e->n == e->cap) {
		uint32_t cap = e->cap ? e->cap * 2 : 8;
		struct ent *v = realloc(e->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	char *s = strdup(name);
	if (!s)
		return -ENOMEM;
	e->v[e->n++] = (struct ent){ .name = s, .ino = ino };
	return 0;
}

static void ent_del(struct ents *e, struct ent *x)
{
	free(x->name);
	*x = e->v[--e->n];
}

static void ents_clear(struct ents *e)
{
	for (uint32_t i = 0; i < e->n; i++)
		free(e->v[i].name);
	e->n = 0;
}

/* dst = a copy of src (both of one directory). 0 or -ENOMEM. */
static int ents_copy(struct ents *dst, const struct ents *src)
{
	ents_clear(dst);
	for (uint32_t i = 0; i < src->n; i++)
		if (ent_add(dst, src->v[i].name, src->v[i].ino) != 0)
			return -ENOMEM;
	return 0;
}

static void dir_changed(struct node *d)
{
	d->dirty = true;
	d->mtime = d->ctime = now_ts();
}

/* ---------------------------------------------------------------- power */

static void node_free(struct node *n)
{
	for (uint64_t i = 0; i < n->slots; i++) {
		if (n->cur[i] != n->dur[i])
			page_free(n->cur[i]);
		page_free(n->dur[i]);
	}
	free(n->cur);
	free(n->dur);
	ents_clear(&n->ce);
	ents_clear(&n->de);
	free(n->ce.v);
	free(n->de.v);
	fs.tab[n->ino] = NULL;
	free(n);
}

/* Mark what the durable directory entries reach from n. */
static void reach(struct node *n, uint8_t *seen)
{
	if (seen[n->ino])
		return;
	seen[n->ino] = 1;
	if (S_ISDIR(n->mode))
		for (uint32_t i = 0; i < n->de.n; i++)
			if (get(n->de.v[i].ino))
				reach(get(n->de.v[i].ino), seen);
}

/* After a crash (keep: as `crash` chose) or at a clean shutdown (everything
 * persists): the current state becomes the durable one; inodes no name
 * reaches go; link counts are counted again. With the fs unmounted. */
static int settle(bool crashed, const struct cut *c)
{
	for (uint64_t ino = FUSE_ROOT_ID; ino < fs.next_ino; ino++) {
		struct node *n = fs.tab[ino];
		if (!n)
			continue;
		if (S_ISDIR(n->mode) && n->dirty) {
			bool keep = !crashed || (c->keep_pct && rnd() % 100 < c->keep_pct);
			fs.lost_dirs += !keep;
			if ((keep ? ents_copy(&n->de, &n->ce) : ents_copy(&n->ce, &n->de)) != 0)
				return -ENOMEM;
			n->dirty = false;
		} else if (!S_ISDIR(n->mode)) {
			if (crashed)
				file_revert(n, c);
			else
				file_persist(n);
		}
	}
	uint8_t *seen = calloc(fs.next_ino, 1);
	if (!seen)
		return -ENOMEM;
	reach(fs.tab[FUSE_ROOT_ID], seen);
	for (uint64_t ino = FUSE_ROOT_ID; ino < fs.next_ino; ino++)
		if (fs.tab[ino] && !seen[ino])
			node_free(fs.tab[ino]);
	for (uint64_t ino = FUSE_ROOT_ID; ino < fs.next_ino; ino++)
		if (fs.tab[ino])
			fs.tab[ino]->nlink = S_ISDIR(fs.tab[ino]->mode) ? 2 : 0;
	for (uint64_t ino = FUSE_ROOT_ID; ino < fs.next_ino; ino++) {
		struct node *d = fs.tab[ino];
		for (uint32_t i = 0; d && S_ISDIR(d->mode) && i < d->ce.n; i++)
			if (!S_ISDIR(get(d->ce.v[i].ino)->mode))
				get(d->ce.v[i].ino)->nlink++;
	}
	free(seen);
	return 0;
}

/* ---------------------------------------------------------------- replies */

static void fill_attr(const struct node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_mode = n->mode;
	st->st_nlink = n->nlink;
	st->st_uid = n->uid;
	st->st_gid = n->gid;
	st->st_size = (off_t)n->size;
	st->st_blksize = LAZYFS_PAGE_BYTES;
	uint64_t pages = 0;
	for (uint64_t i = 0; i < n->slots; i++)
		pages += n->cur[i] != NULL;
	st->st_blocks = (blkcnt_t)(pages * (LAZYFS_PAGE_BYTES / 512));
	st->st_atim = n->atime;
	st->st_mtim = n->mtime;
	st->st_ctim = n->ctime;
}

static void entry_of(const struct node *n, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = n->ino;
	e->attr_timeout = e->entry_timeout = LAZYFS_CACHE_S;
	fill_attr(n, &e->attr);
}

/* Under the lock at the top of a handler: the node, or NULL after replying
 * with the error (EIO once the power is off). */
static struct node *enter(fuse_req_t req, fuse_ino_t ino)
{
	pthread_mutex_lock(&fs.mu);
	struct node *n = get(ino);
	if (fs.crashed || !n) {
		pthread_mutex_unlock(&fs.mu);
		fuse_reply_err(req, fs.crashed ? EIO : ENOENT);
		return NULL;
	}
	return n;
}

static void leave_err(fuse_req_t req, int err)
{
	pthread_mutex_unlock(&fs.mu);
	fuse_reply_err(req, err);
}

/* ---------------------------------------------------------------- operations */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* writes must reach us when write() returns, as they reach a disk's cache */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *d = enter(req, parent);
	if (!d)
		return;
	struct ent *x = S_ISDIR(d->mode) ? ent_find(&d->ce, name) : NULL;
	if (!x)
		return leave_err(req, S_ISDIR(d->mode) ? ENOENT : ENOTDIR);
	struct fuse_entry_param e;
	entry_of(get(x->ino), &e);
	pthread_mutex_unlock(&fs.mu);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct node *n = enter(req, ino);
	if (!n)
		return;
	struct stat st;
	fill_attr(n, &st);
	pthread_mutex_unlock(&fs.mu);
	fuse_reply_attr(req, &st, LAZYFS_CACHE_S);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)fi;
	struct node *n = enter(req, ino);
	if (!n)
		return;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		int rc = S_ISREG(n->mode) ? file_truncate(n, (uint64_t)attr->st_size) : -EISDIR;
		if (rc)
			return leave_err(req, -rc);
	}
	if (to_set & FUSE_SET_ATTR_MODE)
		n->mode = (n->mode & S_IFMT) | (attr->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_UID)
		n->uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		n->gid = attr->st_gid;
	if (to_set & FUSE_SET_ATTR_ATIME)
		n->atime = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME)
		n->mtime = attr->st_mtim;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		n->atime = now_ts();
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		n->mtime = now_ts();
	n->ctime = now_ts();
	struct stat st;
	fill_attr(n, &st);
	pthread_mutex_unlock(&fs.mu);
	fuse_reply_attr(req, &st, LAZYFS_CACHE_S);
}

/* A new node named name in directory parent: its entry, or an error. */
static int make(fuse_ino_t parent, const char *name, mode_t mode, struct fuse_entry_param *e)
{
	struct node *d = get(parent);
	if (!S_ISDIR(d->mode))
		return ENOTDIR;
	if (strlen(name) > NAME_MAX)
		return ENAMETOOLONG;
	if (ent_find(&d->ce, name))
		return EEXIST;
	struct node *n = node_new(mode);
	if (!n)
		return ENOSPC;
	if (ent_add(&d->ce, name, n->ino) != 0) {
		node_free(n);
		return ENOMEM;
	}
	n->nlink = S_ISDIR(mode) ? 2 : 1;
	dir_changed(d);
	entry_of(n, e);
	return 0;
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)rdev;
	if (!enter(req, parent))
		return;
	struct fuse_entry_param e;
	int err = S_ISREG(mode) || S_ISFIFO(mode) || S_ISSOCK(mode) ? make(parent, name, mode, &e)
								     : EPERM;
	if (err)
		return leave_err(req, err);
	pthread_mutex_unlock(&fs.mu);
	fuse_reply_entry(req, &e);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	if (!enter(req, parent))
		return;
	struct fuse_entry_param e;
	int err = make(parent, name, S_IFDIR | (mode & 07777), &e);
	if (err)
		return leave_err(req, err);
	pthread_mutex_unlock(&fs.mu);
	fuse_reply_entry(req, &e);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	if (!enter(req, parent))
		return;
	struct fuse_entry_param e;
	int err = make(parent, name, S_IFREG | (mode & 07777), &e);
	if (err)
		return leave_err(req, err);
	pthread_mutex_unlock(&fs.mu);
	fi->fh = 0;
	fuse_reply_create(req, &e, fi);
}

/* Remove name from parent (rmdir: a directory, which must be empty). */
static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, bool rmdir_)
{
	struct node *d = enter(req, parent);
	if (!d)
		return;
	struct ent *x = S_ISDIR(d->mode) ? ent_find(&d->ce, name) : NULL;
	if (!x)
		return leave_err(req, ENOENT);
	struct node *n = get(x->ino);
	if (rmdir_ && !S_ISDIR(n->mode))
		return leave_err(req, ENOTDIR);
	if (!rmdir_ && S_ISDIR(n->mode))
		return leave_err(req, EISDIR);
	if (rmdir_ && n->ce.n)
		return leave_err(req, ENOTEMPTY);
	ent_del(&d->ce, x);
	n->nlink -= n->nlink > 0;
	if (rmdir_)
		n->nlink = 0;
	n->ctime = now_ts();
	dir_changed(d);
	pthread_mutex_unlock(&fs.mu);
	fuse_reply_err(req, 0);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, true);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct node *d = enter(req, parent);
	if (!d)
		return;
	struct node *nd = get(newparent);
	if (flags & ~RENAME_NOREPLACE)
		return leave_err(req, EINVAL);
	if (!nd || !S_ISDIR(d->mode) || !S_ISDIR(nd->mode))
		return leave_err(req, ENOTDIR);
	if (strlen(newname) > NAME_MAX)
		return leave_err(req, ENAMETOOLONG);
	struct ent *x = ent_find(&d->ce, name);
	if (!x)
		return leave_err(req, ENOENT);
	uint64_t ino = x->ino;
	struct ent *y = ent_find(&nd->ce, newname);
	if (y && y->ino == ino)
		return leave_err(req, 0);
	if (y && (flags & RENAME_NOREPLACE))
		return leave_err(req, EEXIST);
	struct node *n = get(ino), *old = y ? get(y->ino) : NULL;
	if (old && S_ISDIR(old->mode) != S_ISDIR(n->mode))
		return leave_err(req, S_ISDIR(old->mode) ? EISDIR : ENOTDIR);
	if (old && S_ISDIR(old->mode) && old->ce.n)
		return leave_err(req, ENOTEMPTY);
	if (old) {
		old->nlink = S_ISDIR(old->mode) ? 0 : old->nlink - (old->nlink > 0);
		ent_del(&nd->ce, y);
	}
	if (ent_add(&nd->ce, newname, ino) != 0)
		return leave_err(req, ENOMEM);
	ent_del(&d->ce, ent_find(&d->ce, name));
	n->ctime = now_ts();
	dir_changed(d);
	dir_changed(nd);
	pthread_mutex_unlock(&fs.mu);
	fuse_reply_err(req, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = enter(req, ino);
	if (!n)
		return;
	if (S_ISDIR(n->mode))
		return leave_err(req, EISDIR);
	if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY) {
		int rc = file_truncate(n, 0);
		if (rc)
			return leave_err(req, -rc);
	}
	pthread_mutex_unlock(&fs.mu);
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)fi;
	struct node *n = enter(req, ino);
	if (!n)
		return;
	uint64_t o = (uint64_t)off;
	size_t len = o >= n->size ? 0 : (n->size - o < size ? (size_t)(n->size - o) : size);
	char *buf = malloc(len ? len : 1);
	if (!buf)
		return leave_err(req, ENOMEM);
	for (size_t done = 0; done < len;) {
		uint64_t i = (o + done) / LAZYFS_PAGE_BYTES, po = (o + done) % LAZYFS_PAGE_BYTES;
		size_t k = LAZYFS_PAGE_BYTES - po < len - done ? LAZYFS_PAGE_BYTES - po : len - done;
		if (i < n->slots && n->cur[i])
			memcpy(buf + done, n->cur[i]->b + po, k);
		else
			memset(buf + done, 0, k);
		done += k;
	}
	pthread_mutex_unlock(&fs.mu);
	fuse_reply_buf(req, buf, len);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)fi;
	struct node *n = enter(req, ino);
	if (!n)
		return;
	uint64_t o = (uint64_t)off;
	if (o + size > LAZYFS_FILE_BYTES_MAX)
		return leave_err(req, EFBIG);
	if (slots_reserve(n, (o + size + LAZYFS_PAGE_BYTES - 1) / LAZYFS_PAGE_BYTES) != 0)
		return leave_err(req, ENOMEM);
	size_t done = 0;
	while (done < size) {
		uint64_t i = (o + done) / LAZYFS_PAGE_BYTES, po = (o + done) % LAZYFS_PAGE_BYTES;
		size_t k = LAZYFS_PAGE_BYTES - po < size - done ? LAZYFS_PAGE_BYTES - po : size - done;
		struct page *p = page_own(n, i);
		if (!p)
			break;
		memcpy(p->b + po, buf + done, k);
		done += k;
	}
	if (o + done > n->size)
		n->size = o + done;
	n->mtime = n->ctime = now_ts();
	fs.writes++;
	pthread_mutex_unlock(&fs.mu);
	if (done == 0 && size > 0)
		fuse_reply_err(req, ENOSPC);
	else
		fuse_reply_write(req, done);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	fuse_reply_err(req, 0); /* close() persists nothing, as on a disk */
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	fuse_reply_err(req, 0);
}

/* A file fsync: a delay (the disk), maybe a stall or an injected failure,
 * then the file's data and size are durable — unless the power went first. */
static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync, (void)fi; /* fdatasync persists the size too: it is needed to read the data */
	if (!enter(req, ino))
		return;
	uint64_t epoch = fs.epoch;
	uint32_t span = fs.delay_max_us - fs.delay_min_us;
	uint64_t us = fs.delay_min_us + (span ? rnd() % (span + 1u) : 0);
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_nsec += (long)(us % 1000000u) * 1000L;
	dl.tv_sec += (time_t)(us / 1000000u) + dl.tv_nsec / 1000000000L;
	dl.tv_nsec %= 1000000000L;
	bool stalled = false;
	while (fs.epoch == epoch) {
		if (fs.stall) { /* held until "fsync-stall off" or a crash */
			if (!stalled)
				fs.stalled++, stalled = true, pthread_cond_broadcast(&fs.cv);
			pthread_cond_wait(&fs.cv, &fs.mu);
			continue;
		}
		if (stalled)
			fs.stalled--, stalled = false;
		if (pthread_cond_timedwait(&fs.cv, &fs.mu, &dl) == ETIMEDOUT)
			break;
	}
	if (stalled)
		fs.stalled--;
	struct node *n = get(ino);
	int err = 0;
	if (fs.epoch != epoch || fs.crashed || !n) {
		err = EIO;
	} else if (fs.fail_left) {
		fs.fail_left--;
		err = EIO;
	} else if (S_ISREG(n->mode)) {
		file_persist(n);
	}
	fs.fsyncs += err == 0;
	fs.fsyncs_failed += err != 0;
	pthread_mutex_unlock(&fs.mu);
	fuse_reply_err(req, err);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *d = enter(req, ino);
	if (!d)
		return;
	if (!S_ISDIR(d->mode))
		return leave_err(req, ENOTDIR);
	struct listing *l = malloc(sizeof(*l) + d->ce.n * sizeof(l->v[0]));
	if (!l)
		return leave_err(req, ENOMEM);
	l->n = 0;
	for (uint32_t i = 0; i < d->ce.n; i++) {
		char *s = strdup(d->ce.v[i].name);
		if (!s)
			continue;
		l->v[l->n].name = s;
		l->v[l->n].ino = d->ce.v[i].ino;
		l->v[l->n++].mode = get(d->ce.v[i].ino)->mode;
	}
	pthread_mutex_unlock(&fs.mu);
	fi->fh = (uint64_t)(uintptr_t)l;
	fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	const struct listing *l = (const struct listing *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	/* entry i: 0 ".", 1 "..", 2 + k the k-th name; its offset (the next one's) i + 1 */
	for (off_t i = off; i < (off_t)l->n + 2; i++) {
		struct stat st = { .st_ino = ino, .st_mode = S_IFDIR };
		const char *name = i == 0 ? "." : "..";
		if (i >= 2) {
			name = l->v[i - 2].name;
			st.st_ino = l->v[i - 2].ino;
			st.st_mode = l->v[i - 2].mode & S_IFMT;
		}
		size_t k = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
		if (k > size - used)
			break;
		used += k;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct listing *l = (struct listing *)(uintptr_t)fi->fh;
	for (uint32_t i = 0; l && i < l->n; i++)
		free(l->v[i].name);
	free(l);
	fuse_reply_err(req, 0);
}

/* A directory fsync: its entries are durable (no delay: a journal commit). */
static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync, (void)fi;
	struct node *d = enter(req, ino);
	if (!d)
		return;
	int err = ents_copy(&d->de, &d->ce) != 0 ? ENOMEM : 0;
	d->dirty = err != 0;
	fs.dir_fsyncs++;
	pthread_mutex_unlock(&fs.mu);
	fuse_reply_err(req, err);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct statvfs s = { .f_bsize = LAZYFS_PAGE_BYTES, .f_frsize = LAZYFS_PAGE_BYTES,
			     .f_namemax = NAME_MAX };
	pthread_mutex_lock(&fs.mu);
	s.f_blocks = fs.bytes_max / LAZYFS_PAGE_BYTES;
	s.f_bfree = s.f_bavail = (fs.bytes_max - fs.bytes) / LAZYFS_PAGE_BYTES;
	s.f_files = LAZYFS_INODES_MAX;
	s.f_ffree = s.f_favail = LAZYFS_INODES_MAX - fs.next_ino;
	pthread_mutex_unlock(&fs.mu);
	fuse_reply_statfs(req, &s);
}

/* fallocate: preallocation only sets the size (pages stay holes until
 * written); ZERO_RANGE and PUNCH_HOLE zero the range. */
static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)fi;
	struct node *n = enter(req, ino);
	if (!n)
		return;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return leave_err(req, EOPNOTSUPP);
	uint64_t end = (uint64_t)off + (uint64_t)len;
	if (end > LAZYFS_FILE_BYTES_MAX)
		return leave_err(req, EFBIG);
	if (slots_reserve(n, (end + LAZYFS_PAGE_BYTES - 1) / LAZYFS_PAGE_BYTES) != 0)
		return leave_err(req, ENOMEM);
	int rc = 0;
	uint64_t zend = n->size < end ? n->size : end; /* past the size it reads as zeros already */
	if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) && (uint64_t)off < zend)
		rc = zero_range(n, (uint64_t)off, zend - (uint64_t)off);
	if (rc == 0 && !(mode & FALLOC_FL_KEEP_SIZE) && end > n->size)
		n->size = end;
	n->mtime = n->ctime = now_ts();
	pthread_mutex_unlock(&fs.mu);
	fuse_reply_err(req, -rc);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.create = op_create,
	.fallocate = op_fallocate,
};

/* ---------------------------------------------------------------- mounting */

static void answer(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void answer(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* Detach the mount: the kernel ends the session once nothing holds it. */
static int unmount_now(void)
{
	if (geteuid() == 0)
		return umount2(fs.mnt, MNT_DETACH) == 0 ? 0 : -errno;
	pid_t pid = fork();
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", "-q", fs.mnt, (char *)NULL);
		_exit(127);
	}
	int st;
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : -EIO;
}

static struct timespec deadline_in(long ms)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	t.tv_sec += t.tv_nsec / 1000000000L;
	t.tv_nsec %= 1000000000L;
	return t;
}

/* Serve one mount until it goes; false if it could not be made. */
static bool serve_once(const char *argv0)
{
	/* fresh arguments each time: fuse_session_new may rewrite them */
	char *fargv[] = { (char *)argv0, "-o", "fsname=lazyfs,subtype=lazyfs", NULL };
	struct fuse_args fa = FUSE_ARGS_INIT(3, fargv), *args = &fa;
	struct fuse_session *se = fuse_session_new(args, &ops, sizeof(ops), NULL);
	if (!se)
		return false;
	if (fuse_session_mount(se, fs.mnt) != 0) {
		fuse_session_destroy(se);
		return false;
	}
	pthread_mutex_lock(&fs.mu);
	fs.mounts++;
	pthread_cond_broadcast(&fs.cv);
	pthread_mutex_unlock(&fs.mu);
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(cfg, LAZYFS_THREADS_MAX);
	fuse_loop_cfg_set_idle_threads(cfg, LAZYFS_IDLE_THREADS);
	fuse_session_loop_mt(se, cfg); /* until the kernel ends the session */
	fuse_loop_cfg_destroy(cfg);
	fuse_session_unmount(se);
	fuse_session_destroy(se);
	fuse_opt_free_args(args);
	return true;
}

/* ---------------------------------------------------------------- commands */

static struct cut cut_at_crash;

static void cmd_crash(struct cut c)
{
	pthread_mutex_lock(&fs.mu);
	if (!fs.crashed) {
		fs.crashed = true;
		fs.epoch++;
		fs.crashes++;
		cut_at_crash = c;
		cut_at_crash.keep_pct = c.keep_pct > 100 ? 100 : c.keep_pct;
	}
	fs.stall = false;
	pthread_cond_broadcast(&fs.cv);
	pthread_mutex_unlock(&fs.mu);
	answer("ok crashed");
}

static void cmd_remount(void)
{
	pthread_mutex_lock(&fs.mu);
	uint64_t m = fs.mounts;
	fs.remount_asked = true;
	pthread_mutex_unlock(&fs.mu);
	int rc = unmount_now();
	if (rc != 0) {
		answer("error unmount: %s", strerror(-rc));
		return;
	}
	struct timespec dl = deadline_in(LAZYFS_REMOUNT_WAIT_MS);
	pthread_mutex_lock(&fs.mu);
	while (fs.mounts == m && pthread_cond_timedwait(&fs.cv, &fs.mu, &dl) != ETIMEDOUT)
		; /* main settles the state and mounts again (or exits, ending stdout) */
	bool ok = fs.mounts > m;
	uint64_t lost = fs.lost_pages, dirs = fs.lost_dirs, kept = fs.kept_pages;
	pthread_mutex_unlock(&fs.mu);
	if (ok)
		answer("ok mounted (lost so far: %" PRIu64 " pages, %" PRIu64 " directories' changes;"
		       " kept %" PRIu64 " pages)", lost, dirs, kept);
	else
		answer("error not mounted again within %d ms (is something holding the mount?)",
		       LAZYFS_REMOUNT_WAIT_MS);
}

static void cmd_wait_stalled(unsigned n, unsigned ms)
{
	struct timespec dl = deadline_in((long)ms);
	pthread_mutex_lock(&fs.mu);
	while (fs.stalled < n && pthread_cond_timedwait(&fs.cv, &fs.mu, &dl) != ETIMEDOUT)
		;
	uint32_t have = fs.stalled;
	pthread_mutex_unlock(&fs.mu);
	if (have >= n)
		answer("ok %u stalled", have);
	else
		answer("error %u stalled after %u ms", have, ms);
}

static void cmd_stats(void)
{
	pthread_mutex_lock(&fs.mu);
	uint64_t pending = 0, dirs = 0, files = 0;
	for (uint64_t ino = FUSE_ROOT_ID; ino < fs.next_ino; ino++) {
		const struct node *n = fs.tab[ino];
		if (!n)
			continue;
		dirs += S_ISDIR(n->mode);
		files += !S_ISDIR(n->mode);
		for (uint64_t i = n->dlo; i < n->dhi && i < n->slots; i++)
			pending += n->cur[i] != n->dur[i];
	}
	answer("ok writes=%" PRIu64 " fsyncs=%" PRIu64 " fsyncs_failed=%" PRIu64 " dir_fsyncs=%" PRIu64
	       " crashes=%" PRIu64 " mounts=%" PRIu64 " files=%" PRIu64 " dirs=%" PRIu64
	       " bytes=%" PRIu64 " pending_pages=%" PRIu64 " lost_pages=%" PRIu64
	       " kept_pages=%" PRIu64 " lost_dirs=%" PRIu64, fs.writes, fs.fsyncs, fs.fsyncs_failed,
	       fs.dir_fsyncs, fs.crashes, fs.mounts, files, dirs, fs.bytes, pending, fs.lost_pages,
	       fs.kept_pages, fs.lost_dirs);
	pthread_mutex_unlock(&fs.mu);
}

/* One command line; false for quit. */
static bool command(const char *line)
{
	unsigned a = 0, b = 0;
	char word[16];
	if (!strcmp(line, "crash skip-first")) {
		cmd_crash((struct cut){ .skip_first = true });
	} else if (!strncmp(line, "crash", 5) && (line[5] == '\0' || line[5] == ' ')) {
		cmd_crash((struct cut){ .keep_pct = sscanf(line + 5, "%u", &a) == 1 ? a : 0 });
	} else if (!strcmp(line, "remount")) {
		cmd_remount();
	} else if (sscanf(line, "fsync-delay %u %u", &a, &b) == 2 && a <= b &&
		   b <= LAZYFS_FSYNC_DELAY_US_MAX) {
		pthread_mutex_lock(&fs.mu);
		fs.delay_min_us = a, fs.delay_max_us = b;
		pthread_mutex_unlock(&fs.mu);
		answer("ok fsync takes %u..%u us", a, b);
	} else if (sscanf(line, "fsync-fail %u", &a) == 1) {
		pthread_mutex_lock(&fs.mu);
		fs.fail_left = a;
		pthread_mutex_unlock(&fs.mu);
		answer("ok the next %u fsyncs fail", a);
	} else if (sscanf(line, "fsync-stall %15s", word) == 1 &&
		   (!strcmp(word, "on") || !strcmp(word, "off"))) {
		pthread_mutex_lock(&fs.mu);
		fs.stall = !strcmp(word, "on");
		pthread_cond_broadcast(&fs.cv);
		pthread_mutex_unlock(&fs.mu);
		answer("ok fsync-stall %s", word);
	} else if (sscanf(line, "wait-stalled %u %u", &a, &b) == 2) {
		cmd_wait_stalled(a, b);
	} else if (!strcmp(line, "stats")) {
		cmd_stats();
	} else if (!strcmp(line, "quit")) {
		return false;
	} else {
		answer("error unknown command: %s", line);
	}
	return true;
}

static void *control_main(void *arg)
{
	(void)arg;
	char line[LAZYFS_LINE_BYTES];
	pthread_mutex_lock(&fs.mu); /* the first mount (main exits if it fails) */
	while (fs.mounts == 0)
		pthread_cond_wait(&fs.cv, &fs.mu);
	pthread_mutex_unlock(&fs.mu);
	answer("ok mounted %s", fs.mnt);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!command(line))
			break;
	}
	answer("ok quitting");
	pthread_mutex_lock(&fs.mu); /* quit, or the end of stdin */
	fs.quit = true;
	fs.stall = false;
	fs.epoch++; /* fsyncs still waiting end now */
	pthread_cond_broadcast(&fs.cv);
	pthread_mutex_unlock(&fs.mu);
	int rc = unmount_now();
	if (rc != 0)
		fprintf(stderr, "lazyfs: unmount %s: %s\n", fs.mnt, strerror(-rc));
	return NULL;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr, "usage: lazyfs MOUNTPOINT [--bytes-max BYTES] [--seed N]\n"
			"then commands on stdin (see the top of tests/lazyfs.c)\n");
}

int main(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') {
		usage();
		return 2;
	}
	fs.mnt = argv[1];
	fs.rng = (uint64_t)getpid() ^ (uint64_t)time(NULL);
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--bytes-max"))
			fs.bytes_max = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--seed"))
			fs.rng = strtoull(argv[i + 1], NULL, 0);
		else {
			usage();
			return 2;
		}
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fs.cv, &ca);
	fs.tab = calloc(LAZYFS_INODES_MAX, sizeof(*fs.tab));
	struct node *root = fs.tab ? node_new(S_IFDIR | 0755) : NULL;
	if (!root) {
		fprintf(stderr, "lazyfs: out of memory\n");
		return 1;
	}
	root->nlink = 2;
	pthread_t ctl;
	if (pthread_create(&ctl, NULL, control_main, NULL) != 0) {
		fprintf(stderr, "lazyfs: cannot start the control thread\n");
		return 1;
	}
	for (;;) {
		if (!serve_once(argv[0])) {
			answer("error cannot mount %s (FUSE: /dev/fuse, root or fusermount3)", fs.mnt);
			return 1;
		}
		pthread_mutex_lock(&fs.mu);
		bool quit = fs.quit, asked = fs.remount_asked;
		int rc = quit || !asked ? 0 : settle(fs.crashed, &cut_at_crash);
		fs.crashed = false;
		fs.remount_asked = false;
		pthread_mutex_unlock(&fs.mu);
		if (quit)
			break;
		if (!asked || rc != 0) {
			fprintf(stderr, "lazyfs: %s\n", !asked ? "unmounted from outside: exiting"
							       : "out of memory settling the state");
			return 1;
		}
	}
	pthread_join(ctl, NULL);
	return 0;
}
