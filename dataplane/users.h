/* SPDX-License-Identifier: MIT
 *
 * users.h — who may speak, and what they may do (issue 19; the wire:
 * docs/protocol.md §14.3-14.4; the threat model: docs/security.md).
 *
 * The users table: at most PM_USERS_MAX users, each an id (1..65535), a name,
 * rights (read, write, admin), optional key and collection-name prefixes it
 * is limited to, and the MAC key derived from its key (proto/auth.h: the key
 * printed to the operator is never stored). A table is immutable once built:
 * the admin thread builds a new one for every change (USER ADD/DEL/GRANT/
 * REVOKE/RELOAD), writes it to <data_dir>/users (mode 0600, text, atomically:
 * a temporary file, fdatasync, rename, fsync of the directory), and hands it
 * to every worker through its admin ring (PM_CALL_USERS): a worker swaps its
 * pointer between two frames, and the old table is freed once every worker
 * has answered. No worker ever reads a table another is changing.
 *
 * The users file: one user per line, `id name rights mac_key_hex [key=P]...
 * [coll=P]...`, rights a comma list of read, write, admin (or `-` for none);
 * `#` lines and blank lines are skipped. A file whose mode lets anyone but
 * its owner read or write it is refused (the MAC keys are credentials).
 *
 * Verification (pm_auth_frame, on the worker that received the frame): the
 * trailer's user exists and its tag is that user's, its port is the port the
 * frame came in on, its time_s is within auth_skew_s of the worker's clock,
 * and (user, session, seq) is new. The replay table is per worker: a session
 * remembers its highest seq and a bitmap of the PM_AUTH_REPLAY_WINDOW seqs
 * below it; a seq below the window is refused. A session is forgotten no
 * sooner than 2 x auth_skew_s after its last frame: any frame of it older
 * than that fails the clock check, so forgetting it lets no replay through.
 * The table holds PM_AUTH_SESSIONS_MAX sessions; a new one replaces the one
 * used longest ago if that one may be forgotten, else it is refused (BUSY).
 * The tag is checked before the table is touched: frames that are not a
 * user's cannot fill it.
 */
#ifndef POMAI_DATAPLANE_USERS_H
#define POMAI_DATAPLANE_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "request.h"
#include "status.h"

struct pm_daemon;
struct pm_worker;
struct pm_dest;

/* ---------------------------------------------------------------- limits */

/* Users one daemon knows: a lookup is a binary search of this many ids (ten
 * compares); an appliance's clients are services, not people. */
#define PM_USERS_MAX 1024u
/* A user's name: printable, no spaces (one word of the users file). */
#define PM_USER_NAME_BYTES_MAX 32u
/* Key prefixes, and collection-name prefixes, one user may be limited to:
 * each frame's key is compared with every one of them. */
#define PM_USER_PREFIXES_MAX 8u
/* One prefix: printable, no spaces, no '=' (a word of the users file). */
#define PM_USER_PREFIX_BYTES_MAX 64u
/* One line of the users file at most: id, name, rights, the MAC key's hex
 * and every prefix with its `key=` / `coll=` tag. */
#define PM_USERS_LINE_BYTES                                                                        \
	(8u + PM_USER_NAME_BYTES_MAX + 24u + 2u * PM_AUTH_MAC_KEY_BYTES +                          \
	 2u * PM_USER_PREFIXES_MAX * (6u + PM_USER_PREFIX_BYTES_MAX) + 8u)
/* The whole file at most (every user with every prefix). */
#define PM_USERS_FILE_BYTES_MAX (PM_USERS_MAX * PM_USERS_LINE_BYTES)
/* The file in data_dir. */
#define PM_USERS_FILE "users"

/* The replay window: frames of one session may arrive this far out of order
 * (UDP reorders, a client resends with new seqs); two u64 words of bitmap. */
#define PM_AUTH_REPLAY_WINDOW 128u
_Static_assert(PM_AUTH_REPLAY_WINDOW % 64u == 0, "the window is whole u64 words");
/* Default of auth_skew_s: how far a frame's time_s may be from the server's
 * clock (NTP keeps hosts within milliseconds; 30 s allows a host whose clock
 * drifts between syncs, and bounds how long a session must be remembered). */
#define PM_AUTH_SKEW_S_DEFAULT 30u
#define PM_AUTH_SKEW_S_MIN 1u
#define PM_AUTH_SKEW_S_MAX 3600u
/* Sessions one worker remembers at once (a client process is one session):
 * PM_AUTH_SESSIONS_MAX x ~64 bytes per worker. */
#define PM_AUTH_SESSIONS_MAX 4096u
#define PM_AUTH_SESSION_BUCKETS 4096u
_Static_assert((PM_AUTH_SESSION_BUCKETS & (PM_AUTH_SESSION_BUCKETS - 1u)) == 0,
	       "session hash buckets: a power of two");

/* ---------------------------------------------------------------- the table */

enum pm_right { PM_RIGHT_READ = 1u, PM_RIGHT_WRITE = 2u, PM_RIGHT_ADMIN = 4u };
#define PM_RIGHTS_ALL (PM_RIGHT_READ | PM_RIGHT_WRITE | PM_RIGHT_ADMIN)

struct pm_user_prefix {
	uint8_t len;
	char p[PM_USER_PREFIX_BYTES_MAX];
};

struct pm_user {
	uint16_t id;
	uint8_t rights;                /* enum pm_right bits */
	uint8_t nkey, ncoll;           /* 0: every key / every collection */
	char name[PM_USER_NAME_BYTES_MAX + 1];
	uint8_t mac_key[PM_AUTH_MAC_KEY_BYTES];
	struct pm_user_prefix key[PM_USER_PREFIXES_MAX];
	struct pm_user_prefix coll[PM_USER_PREFIXES_MAX];
};

/* Immutable once built; sorted by id. */
struct pm_users {
	uint32_t n;
	struct pm_user u[];
};

/* A table of n users (uninitialised), or NULL. */
struct pm_users *pm_users_alloc(uint32_t n);
/* Parse the users file's text (len bytes): a table, or NULL with a message
 * naming the line (a duplicate id or name, a bad field, more than
 * PM_USERS_MAX users). */
struct pm_users *pm_users_parse(const char *text, size_t len, char *err, size_t errlen);
/* The users file's text of t into out: its length, or 0 when cap is short. */
size_t pm_users_format(const struct pm_users *t, char *out, size_t cap);
/* One line of the users file (NUL-terminated, no newline; changed by the
 * parse) into u: NULL, or what is wrong with it. */
const char *pm_user_parse(char *line, struct pm_user *u);
/* One user as a line of the users file (no newline), or false. */
bool pm_user_format(const struct pm_user *u, char *out, size_t cap);
/* Parse "read,write" / "admin" / "-" into rights bits; false when a word is
 * not a right. */
bool pm_rights_parse(const char *text, uint8_t *rights);
/* "read,write,admin" (or "-") of rights bits into out (>= 24 bytes). */
void pm_rights_format(uint8_t rights, char *out, size_t cap);
/* A name or prefix word: 1..max printable bytes, no space, no '='. */
bool pm_user_word_ok(const char *s, size_t len, size_t max);

const struct pm_user *pm_users_find(const struct pm_users *t, uint32_t id);
const struct pm_user *pm_users_by_name(const struct pm_users *t, const char *name);
/* A copy of t with u put in (replacing the user of u->id), or NULL (no room). */
struct pm_users *pm_users_with(const struct pm_users *t, const struct pm_user *u);
/* A copy of t without user id (t's copy when there is none), or NULL. */
struct pm_users *pm_users_without(const struct pm_users *t, uint32_t id);
/* The lowest id no user has, or 0 when every id is taken. */
uint32_t pm_users_free_id(const struct pm_users *t);

/* Load <data_dir>/users from the directory dirfd: 0 and *out (an empty
 * table when the file does not exist), or -1 with a message (a mode that
 * lets others read or write it, not a regular file, unreadable, too large,
 * or a parse error). */
int pm_users_load(int dirfd, struct pm_users **out, char *err, size_t errlen);
/* Write t as <data_dir>/users, mode 0600, atomically and durably: 0 or -1
 * with a message. */
int pm_users_save(int dirfd, const struct pm_users *t, char *err, size_t errlen);

/* ---------------------------------------------------------------- rights */

/* The right an op needs (docs/protocol.md §14.4); 0 for ops any
 * authenticated frame may send (none today: INFO needs read). */
uint8_t pm_op_right(uint8_t op);
/* May user u send req? PM_OK, or PM_E_NOPERM (a right it lacks, a key or a
 * collection outside its prefixes; for a VADD batch, any item's). */
enum pm_status pm_user_permits(const struct pm_user *u, const struct pm_request *req);

/* ---------------------------------------------------------------- a worker's side */

/* Counters of verification, per reason (INFO auth_*). */
struct pm_auth_stats {
	uint64_t ok;                        /* frames whose trailer was accepted */
	uint64_t refused[PM_AUTH_R_COUNT];  /* [reason] */
	uint64_t noperm;                    /* frames answered NOPERM */
	uint64_t sessions_replaced;         /* forgotten sessions whose slot a new one took */
	uint64_t proved;                    /* TCP connections authenticated by PROVE */
};

struct pm_auth_session {
	uint32_t user, session;
	uint64_t top;                       /* highest seq seen */
	uint64_t bits[PM_AUTH_REPLAY_WINDOW / 64u]; /* bit i: seq top - i seen */
	uint64_t last_s;                    /* server time of its last frame */
	uint32_t hnext, prev, next;         /* hash chain; LRU list (head: newest) */
};

/* One worker's: its copy of the users table, the replay table, counters. */
struct pm_auth {
	const struct pm_users *users;       /* the admin thread's, swapped at a turn boundary */
	uint64_t seed;                      /* keys the session hash */
	uint32_t live;                      /* s[0..live) in use: taken in order, never given back */
	uint32_t lru_head, lru_tail;
	struct pm_auth_stats st;
	uint32_t hash[PM_AUTH_SESSION_BUCKETS];
	struct pm_auth_session s[PM_AUTH_SESSIONS_MAX]; /* untouched until taken */
};

/* The replay table alone, for tests: init, and one (user, session, seq)
 * seen at now_s with a skew of skew_s: 0 (new: recorded), PM_AUTH_R_REPLAY
 * or PM_AUTH_R_BUSY. */
void pm_auth_state_init(struct pm_auth *a, const struct pm_users *users, uint64_t seed);
uint8_t pm_auth_replay(struct pm_auth *a, uint32_t user, uint32_t session, uint64_t seq,
		       uint64_t now_s, uint32_t skew_s);

/* A worker's (pm_worker_alloc / _free). */
int pm_auth_alloc(struct pm_worker *w);
void pm_auth_free(struct pm_worker *w);

/* Check a request frame of len bytes at f, decoded as req with status st,
 * arriving from `from` (its dest.user: a stream's authenticated user, or 0):
 * the AUTH trailer, auth = on, then the user's rights. True: it may go on,
 * with from->user set to its user; false: it was answered AUTH (with the
 * reason) or NOPERM, and counted. */
bool pm_auth_admit(struct pm_worker *w, const struct pm_request *req, enum pm_status st,
		   const uint8_t *f, uint32_t len, struct pm_dest *from);
/* May `client` see INFO's per-client section? The admin socket, anyone
 * when auth = off and the frame had no user, else a user with admin. */
bool pm_auth_sees_clients(const struct pm_worker *w, const struct pm_dest *client);
/* The quota table's key of a client: its user's (pm_quota_user_key) when
 * auth = on and it has one, else its source address. */
uint32_t pm_auth_quota_key(const struct pm_worker *w, const struct pm_dest *client);
/* The AUTH HELLO / PROVE of a stream: the reply (OK with a challenge, OK,
 * or AUTH BAD), and *user the authenticated user after a PROVE that held
 * (0 otherwise); challenge: the connection's (16 bytes), *have: whether one
 * was given and not answered yet. */
void pm_auth_stream(struct pm_worker *w, const struct pm_request *req, uint8_t *challenge,
		    bool *have, uint16_t *user, struct pm_reply *rep);
/* INFO lines: auth_ok, auth_refused_<reason>, auth_noperm, auth_users ... */
uint32_t pm_auth_info(const struct pm_worker *w, char *out, uint32_t cap);

/* The admin thread's: load the table at start (0, or -1 with a message),
 * and hand a new one to every worker (then free the old one). */
int pm_users_open(struct pm_daemon *d, char *err, size_t errlen);
void pm_users_close(struct pm_daemon *d);

#endif
