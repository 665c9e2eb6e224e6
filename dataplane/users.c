/* SPDX-License-Identifier: MIT
 *
 * users.c — the users table, the users file, rights, and each worker's
 * verification of the AUTH trailer with its replay table (users.h says the
 * rules; docs/protocol.md §14 the wire; docs/security.md why).
 *
 * The file is divided: the table as pure functions (parse, format, change;
 * tested without a daemon), the file, rights, the replay table, a worker's
 * checks, and the daemon's start-up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "bridge.h"
#include "common.h"
#include "datadir.h"
#include "hash.h"
#include "msg.h"
#include "users.h"
#include "worker.h"

/* ---------------------------------------------------------------- the table */

struct pm_users *pm_users_alloc(uint32_t n)
{
	struct pm_users *t = calloc(1, sizeof(*t) + (size_t)n * sizeof(struct pm_user));
	if (t)
		t->n = n;
	return t;
}

bool pm_user_word_ok(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '=')
			return false;
	return true;
}

static const char *const right_names[] = { "read", "write", "admin" };

bool pm_rights_parse(const char *text, uint8_t *rights)
{
	*rights = 0;
	if (!strcmp(text, "-"))
		return true;
	const char *p = text;
	while (*p) {
		size_t n = strcspn(p, ",");
		bool found = false;
		for (uint32_t i = 0; i < 3; i++)
			if (strlen(right_names[i]) == n && !strncmp(p, right_names[i], n)) {
				*rights |= (uint8_t)(1u << i);
				found = true;
			}
		if (!found)
			return false;
		p += n + (p[n] == ',');
	}
	return *rights != 0;
}

void pm_rights_format(uint8_t rights, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = '\0';
	for (uint32_t i = 0; i < 3; i++)
		if (rights & (1u << i))
			len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "",
						right_names[i]);
	if (len == 0)
		snprintf(out, cap, "-");
}

bool pm_user_format(const struct pm_user *u, char *out, size_t cap)
{
	char rights[24], hex[2 * PM_AUTH_MAC_KEY_BYTES + 1];
	pm_rights_format(u->rights, rights, sizeof(rights));
	pm_auth_hex(u->mac_key, PM_AUTH_MAC_KEY_BYTES, hex);
	int n = snprintf(out, cap, "%u %s %s %s", u->id, u->name, rights, hex);
	size_t len = n < 0 ? cap : (size_t)n;
	for (uint32_t i = 0; i < u->nkey && len < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, " key=%.*s", u->key[i].len, u->key[i].p);
	for (uint32_t i = 0; i < u->ncoll && len < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, " coll=%.*s", u->coll[i].len,
					u->coll[i].p);
	return len < cap;
}

size_t pm_users_format(const struct pm_users *t, char *out, size_t cap)
{
	size_t len = 0;
	int n = snprintf(out, cap, "# pomaid users: id name rights mac_key [key=P]... [coll=P]...\n");
	if (n < 0 || (size_t)n >= cap)
		return 0;
	len = (size_t)n;
	for (uint32_t i = 0; i < t->n; i++) {
		if (!pm_user_format(&t->u[i], out + len, cap - len) ||
		    (len += strlen(out + len)) + 1 >= cap)
			return 0;
		out[len++] = '\n';
		out[len] = '\0';
	}
	return len;
}

/* One `key=P` or `coll=P` word into u; false when it is neither or full. */
static bool parse_prefix(struct pm_user *u, const char *w)
{
	bool key = !strncmp(w, "key=", 4), coll = !strncmp(w, "coll=", 5);
	const char *p = w + (key ? 4 : 5);
	size_t len = strlen(p);
	if ((!key && !coll) || !pm_user_word_ok(p, len, PM_USER_PREFIX_BYTES_MAX))
		return false;
	uint8_t *n = key ? &u->nkey : &u->ncoll;
	struct pm_user_prefix *to = key ? u->key : u->coll;
	if (*n == PM_USER_PREFIXES_MAX)
		return false;
	to[*n].len = (uint8_t)len;
	memcpy(to[*n].p, p, len);
	(*n)++;
	return true;
}

const char *pm_user_parse(char *line, struct pm_user *u)
{
	char *save = NULL, *w[4];
	for (int i = 0; i < 4; i++)
		if ((w[i] = strtok_r(i ? NULL : line, " \t", &save)) == NULL)
			return "want: id name rights mac_key [key=P]... [coll=P]...";
	char *end;
	unsigned long id = strtoul(w[0], &end, 10);
	memset(u, 0, sizeof(*u));
	if (*end || id == 0 || id > PM_AUTH_USER_ID_MAX)
		return "the id is not 1..65535";
	u->id = (uint16_t)id;
	if (!pm_user_word_ok(w[1], strlen(w[1]), PM_USER_NAME_BYTES_MAX))
		return "the name is not 1..32 printable characters without spaces or '='";
	strcpy(u->name, w[1]);
	if (!pm_rights_parse(w[2], &u->rights))
		return "rights: want a comma list of read, write, admin, or -";
	if (pm_auth_unhex(w[3], u->mac_key, PM_AUTH_MAC_KEY_BYTES) != 0)
		return "the MAC key is not 32 hex digits";
	for (char *p; (p = strtok_r(NULL, " \t", &save)) != NULL;)
		if (!parse_prefix(u, p))
			return "a prefix: want key=P or coll=P (at most 8 of each, 1..64 characters)";
	return NULL;
}

static int user_cmp(const void *x, const void *y)
{
	const struct pm_user *a = x, *b = y;
	return (int)a->id - (int)b->id;
}

/* Sorted by id, no two alike in id or name: NULL, or what is wrong. */
static const char *check_table(struct pm_users *t)
{
	qsort(t->u, t->n, sizeof(t->u[0]), user_cmp);
	for (uint32_t i = 1; i < t->n; i++)
		if (t->u[i].id == t->u[i - 1].id)
			return "two users have the same id";
	for (uint32_t i = 0; i < t->n; i++)
		for (uint32_t j = i + 1; j < t->n; j++)
			if (!strcmp(t->u[i].name, t->u[j].name))
				return "two users have the same name";
	return NULL;
}

struct pm_users *pm_users_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct pm_users *t = pm_users_alloc(PM_USERS_MAX);
	char line[PM_USERS_LINE_BYTES + 1];
	uint32_t lineno = 0, n = 0;
	if (!t) {
		pm_errf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t off = 0; off < len;) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t l = nl ? (size_t)(nl - (text + off)) : len - off;
		const char *why = NULL;
		lineno++;
		if (l > PM_USERS_LINE_BYTES || memchr(text + off, '\0', l))
			why = "too long, or not text";
		else {
			memcpy(line, text + off, l);
			line[l] = '\0';
			if (l && line[l - 1] == '\r')
				line[l - 1] = '\0';
			char *s = line + strspn(line, " \t");
			if (*s == '\0' || *s == '#')
				why = NULL;
			else if (n == PM_USERS_MAX)
				why = "more users than PM_USERS_MAX (1024)";
			else
				why = pm_user_parse(s, &t->u[n++]);
		}
		if (why) {
			pm_errf(err, errlen, "users file line %u: %s", lineno, why);
			free(t);
			return NULL;
		}
		off += l + (nl != NULL);
	}
	t->n = n;
	const char *why = check_table(t);
	if (why) {
		pm_errf(err, errlen, "users file: %s", why);
		free(t);
		return NULL;
	}
	return t;
}

const struct pm_user *pm_users_find(const struct pm_users *t, uint32_t id)
{
	uint32_t lo = 0, hi = t ? t->n : 0;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (t->u[mid].id == id)
			return &t->u[mid];
		if (t->u[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct pm_user *pm_users_by_name(const struct pm_users *t, const char *name)
{
	for (uint32_t i = 0; t && i < t->n; i++)
		if (!strcmp(t->u[i].name, name))
			return &t->u[i];
	return NULL;
}

struct pm_users *pm_users_with(const struct pm_users *t, const struct pm_user *u)
{
	bool replace = pm_users_find(t, u->id) != NULL;
	if (!replace && t->n == PM_USERS_MAX)
		return NULL;
	struct pm_users *c = pm_users_alloc(t->n + !replace);
	if (!c)
		return NULL;
	uint32_t k = 0;
	for (uint32_t i = 0; i < t->n; i++)
		if (t->u[i].id != u->id)
			c->u[k++] = t->u[i];
	c->u[k] = *u;
	qsort(c->u, c->n, sizeof(c->u[0]), user_cmp);
	return c;
}

struct pm_users *pm_users_without(const struct pm_users *t, uint32_t id)
{
	bool there = pm_users_find(t, id) != NULL;
	struct pm_users *c = pm_users_alloc(t->n - there);
	if (!c)
		return NULL;
	uint32_t k = 0;
	for (uint32_t i = 0; i < t->n; i++)
		if (t->u[i].id != id)
			c->u[k++] = t->u[i];
	return c;
}

uint32_t pm_users_free_id(const struct pm_users *t)
{
	uint32_t want = 1;
	for (uint32_t i = 0; i < t->n && t->u[i].id == want; i++) /* sorted by id */
		want++;
	return want <= PM_AUTH_USER_ID_MAX ? want : 0;
}

/* ---------------------------------------------------------------- the file */

int pm_users_load(int dirfd, struct pm_users **out, char *err, size_t errlen)
{
	int fd = pm_datadir_openat(dirfd, PM_USERS_FILE, O_RDONLY, 0);
	if (fd == -ENOENT) {
		*out = pm_users_alloc(0);
		return *out ? 0 : pm_errf(err, errlen, "out of memory");
	}
	if (fd < 0)
		return pm_errf(err, errlen, "users file: %s", strerror(-fd));
	struct stat sb;
	char *text = NULL;
	int rc = -1;
	if (fstat(fd, &sb) != 0)
		pm_errf(err, errlen, "users file: %s", strerror(errno));
	else if (!S_ISREG(sb.st_mode))
		pm_errf(err, errlen, "users file: not a regular file");
	else if (sb.st_mode & 077)
		pm_errf(err, errlen,
			"users file: mode %03o lets others than its owner read or change the users'"
			" keys; chmod 600 it", (unsigned)(sb.st_mode & 0777));
	else if (sb.st_size > (off_t)PM_USERS_FILE_BYTES_MAX)
		pm_errf(err, errlen, "users file: larger than %u bytes", PM_USERS_FILE_BYTES_MAX);
	else if ((text = malloc((size_t)sb.st_size + 1)) == NULL)
		pm_errf(err, errlen, "out of memory");
	else if (pread(fd, text, (size_t)sb.st_size, 0) != sb.st_size)
		pm_errf(err, errlen, "users file: short read");
	else if ((*out = pm_users_parse(text, (size_t)sb.st_size, err, errlen)) != NULL)
		rc = 0;
	free(text);
	close(fd);
	return rc;
}

int pm_users_save(int dirfd, const struct pm_users *t, char *err, size_t errlen)
{
	size_t cap = 128u + (size_t)t->n * PM_USERS_LINE_BYTES;
	char *text = malloc(cap);
	size_t n = text ? pm_users_format(t, text, cap) : 0;
	int fd = n ? pm_datadir_create(dirfd, PM_USERS_FILE ".tmp", O_WRONLY, 0600) : -ENOMEM;
	int rc = fd < 0 ? fd : 0;
	if (rc == 0 && (fchmod(fd, 0600) != 0 || write(fd, text, n) != (ssize_t)n ||
			fdatasync(fd) != 0))
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc == 0 && (renameat(dirfd, PM_USERS_FILE ".tmp", dirfd, PM_USERS_FILE) != 0 ||
			fsync(dirfd) != 0))
		rc = -errno;
	free(text);
	return rc == 0 ? 0 : pm_errf(err, errlen, "users file: %s", strerror(-rc));
}

/* ---------------------------------------------------------------- rights */

uint8_t pm_op_right(uint8_t op)
{
	switch (op) {
	case PM_OP_GET: case PM_OP_VGET: case PM_OP_VQUERY: case PM_OP_VQUERYB:
	case PM_OP_VRANGE: case PM_OP_CLIST: case PM_OP_MAP: case PM_OP_INFO:
		return PM_RIGHT_READ;
	case PM_OP_SET: case PM_OP_DEL: case PM_OP_VADD: case PM_OP_VADDB: case PM_OP_VDEL:
	case PM_OP_VSETATTR:
		return PM_RIGHT_WRITE;
	case PM_OP_CCREATE: case PM_OP_CDROP: case PM_OP_SNAPSHOT:
		return PM_RIGHT_ADMIN;
	default: /* AUTH's own ops, and ops that do not decode: nothing to guard */
		return 0;
	}
}

static bool prefixed(const struct pm_user_prefix *p, uint32_t n, const uint8_t *s, uint32_t len)
{
	if (n == 0)
		return true;
	for (uint32_t i = 0; i < n; i++)
		if (p[i].len <= len && !memcmp(p[i].p, s, p[i].len))
			return true;
	return false;
}

/* Does the op name a key, a collection? (A collection of length 0 is the
 * default collection of a dimension: no name, so no prefix matches it.) */
static bool op_has_key(uint8_t op)
{
	return op == PM_OP_GET || op == PM_OP_SET || op == PM_OP_DEL || op == PM_OP_VADD ||
	       op == PM_OP_VGET || op == PM_OP_VDEL || op == PM_OP_VSETATTR;
}

static bool op_has_coll(uint8_t op)
{
	return op == PM_OP_VADD || op == PM_OP_VQUERY || op == PM_OP_CCREATE ||
	       op == PM_OP_CDROP || op == PM_OP_VADDB || op == PM_OP_VQUERYB || op == PM_OP_VRANGE;
}

static bool within(const struct pm_user *u, const struct pm_request *req)
{
	if (u->nkey && op_has_key(req->op) && !prefixed(u->key, u->nkey, req->key.ptr, req->key.len))
		return false;
	return !u->ncoll || !op_has_coll(req->op) ||
	       prefixed(u->coll, u->ncoll, req->collection.ptr, req->collection.len);
}

enum pm_status pm_user_permits(const struct pm_user *u, const struct pm_request *req)
{
	uint8_t need = pm_op_right(req->op);
	if ((u->rights & need) != need || !within(u, req))
		return PM_E_NOPERM;
	if (req->op == PM_OP_VADDB && u->nkey) { /* every item's key */
		uint32_t at = 0;
		for (uint32_t i = 0; i < req->nitems; i++) {
			struct pm_request item;
			if (pm_request_item(req, &at, &item) != PM_OK)
				break; /* the batch answers the bad item itself */
			if (!prefixed(u->key, u->nkey, item.key.ptr, item.key.len))
				return PM_E_NOPERM;
		}
	}
	return PM_OK;
}

/* ---------------------------------------------------------------- the replay table */

void pm_auth_state_init(struct pm_auth *a, const struct pm_users *users, uint64_t seed)
{
	memset(a->hash, 0xff, sizeof(a->hash));
	a->users = users;
	a->seed = seed;
	a->live = 0;
	a->lru_head = a->lru_tail = PM_QUOTA_NONE;
	/* sessions are taken in index order (session_slot): s[] is first touched
	 * when a session arrives, not at start */
}

static uint32_t bucket_of(const struct pm_auth *a, uint32_t user, uint32_t session)
{
	uint64_t k = ((uint64_t)user << 32 | session) ^ a->seed;
	k *= 0x9e3779b97f4a7c15ull;
	return (uint32_t)(k >> 40) & (PM_AUTH_SESSION_BUCKETS - 1u);
}

static void lru_unlink(struct pm_auth *a, uint32_t i)
{
	struct pm_auth_session *s = &a->s[i];
	if (s->prev != PM_QUOTA_NONE)
		a->s[s->prev].next = s->next;
	else
		a->lru_head = s->next;
	if (s->next != PM_QUOTA_NONE)
		a->s[s->next].prev = s->prev;
	else
		a->lru_tail = s->prev;
}

static void lru_push(struct pm_auth *a, uint32_t i)
{
	struct pm_auth_session *s = &a->s[i];
	s->prev = PM_QUOTA_NONE;
	s->next = a->lru_head;
	if (a->lru_head != PM_QUOTA_NONE)
		a->s[a->lru_head].prev = i;
	a->lru_head = i;
	if (a->lru_tail == PM_QUOTA_NONE)
		a->lru_tail = i;
}

static void hash_unlink(struct pm_auth *a, uint32_t i)
{
	uint32_t *p = &a->hash[bucket_of(a, a->s[i].user, a->s[i].session)];
	while (*p != i)
		p = &a->s[*p].hnext;
	*p = a->s[i].hnext;
}

/* A slot for a new session: a free one, or the one used longest ago when it
 * may be forgotten (2 x skew idle); PM_QUOTA_NONE when every one is live. */
static uint32_t session_slot(struct pm_auth *a, uint64_t now_s, uint32_t skew_s)
{
	if (a->live < PM_AUTH_SESSIONS_MAX)
		return a->live++;
	uint32_t i = a->lru_tail;
	if (i == PM_QUOTA_NONE || now_s < a->s[i].last_s + 2ull * skew_s)
		return PM_QUOTA_NONE;
	lru_unlink(a, i);
	hash_unlink(a, i);
	a->st.sessions_replaced++;
	return i;
}

/* Move the window up by sh seqs (bit i goes to bit i + sh). */
static void window_shift(uint64_t *bits, uint64_t sh)
{
	const uint32_t words = PM_AUTH_REPLAY_WINDOW / 64u;
	uint32_t ws = (uint32_t)(sh / 64u), bs = (uint32_t)(sh % 64u);
	for (uint32_t j = words; j-- > 0;) {
		uint64_t v = 0;
		if (j >= ws) {
			v = bits[j - ws] << bs;
			if (bs && j > ws)
				v |= bits[j - ws - 1] >> (64u - bs);
		}
		bits[j] = v;
	}
}

/* Mark seq in session s: 0, or PM_AUTH_R_REPLAY. */
static uint8_t window_take(struct pm_auth_session *s, uint64_t seq)
{
	if (seq > s->top) {
		if (seq - s->top >= PM_AUTH_REPLAY_WINDOW)
			memset(s->bits, 0, sizeof(s->bits));
		else
			window_shift(s->bits, seq - s->top);
		s->top = seq;
		s->bits[0] |= 1u;
		return 0;
	}
	uint64_t back = s->top - seq;
	if (back >= PM_AUTH_REPLAY_WINDOW)
		return PM_AUTH_R_REPLAY; /* older than the window keeps */
	uint64_t bit = 1ull << (back % 64u);
	if (s->bits[back / 64u] & bit)
		return PM_AUTH_R_REPLAY;
	s->bits[back / 64u] |= bit;
	return 0;
}

uint8_t pm_auth_replay(struct pm_auth *a, uint32_t user, uint32_t session, uint64_t seq,
		       uint64_t now_s, uint32_t skew_s)
{
	uint32_t b = bucket_of(a, user, session), i = a->hash[b];
	while (i != PM_QUOTA_NONE && (a->s[i].user != user || a->s[i].session != session))
		i = a->s[i].hnext;
	if (i == PM_QUOTA_NONE) {
		if ((i = session_slot(a, now_s, skew_s)) == PM_QUOTA_NONE)
			return PM_AUTH_R_BUSY;
		a->s[i] = (struct pm_auth_session){ .user = user, .session = session, .top = seq,
						    .hnext = a->hash[b] };
		a->s[i].bits[0] = 1u;
		a->hash[b] = i;
	} else {
		uint8_t r = window_take(&a->s[i], seq);
		if (r)
			return r;
		lru_unlink(a, i);
	}
	a->s[i].last_s = now_s;
	lru_push(a, i);
	return 0;
}

/* ---------------------------------------------------------------- a worker's checks */

int pm_auth_alloc(struct pm_worker *w)
{
	w->auth = malloc(sizeof(*w->auth));
	if (!w->auth)
		return -ENOMEM;
	uint64_t seed;
	pm_auth_random(&seed, sizeof(seed));
	pm_auth_state_init(w->auth, w->d->users, seed);
	memset(&w->auth->st, 0, sizeof(w->auth->st));
	return 0;
}

void pm_auth_free(struct pm_worker *w)
{
	free(w->auth);
	w->auth = NULL;
}

static void send_auth(struct pm_worker *w, const struct pm_dest *to, const struct pm_request *req,
		      enum pm_status st, uint8_t reason)
{
	struct pm_reply rep = { .status = st, .op = req->op, .id = req->id, .auth_reason = reason };
	pm_send_reply(w, to, &rep);
}

/* auth and auth_skew_s: CONFIG SET changes them while the workers run. */
static bool auth_on(const struct pm_worker *w)
{
	return __atomic_load_n(&w->d->cfg.auth, __ATOMIC_RELAXED);
}

static uint32_t auth_skew_s(const struct pm_worker *w)
{
	return __atomic_load_n(&w->d->cfg.auth_skew_s, __ATOMIC_RELAXED);
}

/* A frame's trailer t: 0 and *user, or the reason it is refused. */
static uint8_t check_trailer(struct pm_worker *w, const uint8_t *f, uint32_t len,
			     const struct pm_auth_trailer *t, const struct pm_dest *from,
			     uint16_t *user)
{
	struct pm_auth *a = w->auth;
	const struct pm_user *u = pm_users_find(a->users, t->user);
	if (!u || !pm_auth_verify(f, len, u->mac_key) || t->port != from->dport)
		return PM_AUTH_R_BAD;
	uint64_t now_s = w->now_ms / 1000u, skew = auth_skew_s(w);
	if ((uint64_t)t->time_s + skew < now_s || t->time_s > now_s + skew)
		return PM_AUTH_R_CLOCK;
	uint8_t r = pm_auth_replay(a, t->user, t->session, t->seq, now_s, (uint32_t)skew);
	*user = (uint16_t)t->user;
	return r;
}

/* The frame's user: 0 and from->user set (or left 0: no trailer), or the
 * reason it is refused. The trailer is read from the frame itself, so that
 * a signed frame whose body does not decode is still checked (and answered
 * AUTH when it is not its user's: a truncated MAC). */
static uint8_t frame_user(struct pm_worker *w, enum pm_status st, const uint8_t *f,
			  uint32_t len, struct pm_dest *from)
{
	struct pm_auth_trailer t;
	uint16_t user = 0;
	/* A header that breaks the rules (an opcode, or flags it may not take: the
	 * AUTH flag on AUTH's own ops) gets the decoder's answer; so does a flag
	 * without room for a trailer (FRAME_LENGTH). Unless auth = on. */
	bool header_bad = st == PM_E_FRAME_OPCODE || st == PM_E_FRAME_FLAGS;
	if (header_bad || !pm_auth_trailer_read(f, len, &t))
		return from->user == 0 && auth_on(w) ? PM_AUTH_R_REQUIRED : 0;
	uint8_t r = check_trailer(w, f, len, &t, from, &user);
	if (r == 0) {
		from->user = user;
		w->auth->st.ok++;
	}
	return r;
}

bool pm_auth_admit(struct pm_worker *w, const struct pm_request *req, enum pm_status st,
		   const uint8_t *f, uint32_t len, struct pm_dest *from)
{
	struct pm_auth *a = w->auth;
	uint8_t reason = frame_user(w, st, f, len, from);
	if (reason) {
		a->st.refused[reason]++;
		send_auth(w, from, req, PM_E_AUTH, reason);
		return false;
	}
	if (from->user == 0 || st != PM_OK)
		return true; /* auth = off and no user: every right, as before issue 19 */
	const struct pm_user *u = pm_users_find(a->users, from->user);
	if (u && pm_user_permits(u, req) == PM_OK)
		return true; /* (a stream's user deleted since its PROVE: no rights) */
	a->st.noperm++;
	send_auth(w, from, req, PM_E_NOPERM, 0);
	return false;
}

bool pm_auth_sees_clients(const struct pm_worker *w, const struct pm_dest *client)
{
	if (client->conn == PM_CONN_ADMIN || (client->user == 0 && !auth_on(w)))
		return true;
	const struct pm_user *u = pm_users_find(w->auth->users, client->user);
	return u && (u->rights & PM_RIGHT_ADMIN);
}

uint32_t pm_auth_quota_key(const struct pm_worker *w, const struct pm_dest *client)
{
	if (auth_on(w) && client->user)
		return pm_quota_user_key(client->user);
	return client->addr.sin_addr.s_addr;
}

void pm_auth_stream(struct pm_worker *w, const struct pm_request *req, uint8_t *challenge,
		    bool *have, uint16_t *user, struct pm_reply *rep)
{
	*rep = (struct pm_reply){ .status = PM_OK, .op = req->op, .id = req->id };
	*user = 0;
	if (req->op == PM_OP_AUTH_HELLO) { /* a new challenge replaces the last */
		pm_auth_random(challenge, PM_AUTH_CHALLENGE_BYTES);
		*have = true;
		rep->challenge = challenge;
		return;
	}
	const struct pm_user *u = pm_users_find(w->auth->users, req->auth_user);
	uint8_t tag[PM_AUTH_TAG_BYTES];
	bool ok = *have && u && req->auth_proof.len == PM_AUTH_NONCE_BYTES + PM_AUTH_TAG_BYTES;
	if (ok) {
		pm_auth_proof(u->mac_key, challenge, req->auth_proof.ptr, req->auth_user, tag);
		ok = pm_auth_tag_equal(tag, req->auth_proof.ptr + PM_AUTH_NONCE_BYTES);
	}
	*have = false; /* a challenge answers one PROVE */
	if (!ok) {
		w->auth->st.refused[PM_AUTH_R_BAD]++;
		*rep = (struct pm_reply){ .status = PM_E_AUTH, .op = req->op, .id = req->id,
					  .auth_reason = PM_AUTH_R_BAD };
		return;
	}
	w->auth->st.proved++;
	*user = u->id;
}

uint32_t pm_auth_info(const struct pm_worker *w, char *out, uint32_t cap)
{
	const struct pm_auth *a = w->auth;
	const struct pm_auth_stats *s = &a->st;
	int n = snprintf(out, cap,
			 "auth:%s\r\nauth_users:%u\r\nauth_ok:%llu\r\nauth_refused_required:%llu\r\n"
			 "auth_refused_bad:%llu\r\nauth_refused_replay:%llu\r\n"
			 "auth_refused_clock:%llu\r\nauth_refused_busy:%llu\r\nauth_noperm:%llu\r\n"
			 "auth_sessions:%u\r\nauth_sessions_replaced:%llu\r\nauth_proved:%llu\r\n",
			 auth_on(w) ? "on" : "off", a->users ? a->users->n : 0,
			 (unsigned long long)s->ok,
			 (unsigned long long)s->refused[PM_AUTH_R_REQUIRED],
			 (unsigned long long)s->refused[PM_AUTH_R_BAD],
			 (unsigned long long)s->refused[PM_AUTH_R_REPLAY],
			 (unsigned long long)s->refused[PM_AUTH_R_CLOCK],
			 (unsigned long long)s->refused[PM_AUTH_R_BUSY],
			 (unsigned long long)s->noperm, a->live,
			 (unsigned long long)s->sessions_replaced, (unsigned long long)s->proved);
	return n < 0 || (uint32_t)n >= cap ? 0 : (uint32_t)n;
}

/* ---------------------------------------------------------------- the daemon */

int pm_users_open(struct pm_daemon *d, char *err, size_t errlen)
{
	if (pm_auth_init() != 0)
		return pm_errf(err, errlen, "libsodium did not initialise");
	return pm_users_load(d->data_fd, &d->users, err, errlen);
}

void pm_users_close(struct pm_daemon *d)
{
	free(d->users);
	d->users = NULL;
}
