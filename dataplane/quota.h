/* SPDX-License-Identifier: MIT
 *
 * quota.h — access control and per-client quotas, as pure functions on plain
 * structs: no sockets, no threads, no clock (times are arguments), so that
 * they are tested without a daemon (tests/test_quota.c).
 *
 * The allowlist: at most PM_ALLOW_NETWORKS_MAX IPv4 networks (net, mask),
 * matched linearly; a source outside every one is dropped before any work is
 * done on its datagram or connection. It is read-only once the daemon runs.
 *
 * The token bucket: a bucket's level counts nano-tokens (1e-9 of a token), so
 * that a rate in tokens per second times an interval in nanoseconds is the
 * refill in nano-tokens exactly; the remainder of the division by the share
 * (below) is carried, so a bucket refilled every few nanoseconds loses
 * nothing to rounding. A bucket holds at most `cap` (the burst) and never goes
 * below zero: a request that finds too few tokens is refused, takes nothing,
 * and is told how long until there are enough.
 *
 * The share: each worker enforces a client's quota on its own, without locks
 * or shared counters, with rate / share tokens per second and a burst of
 * rate x burst_ms / share (share = the number of workers). A client whose
 * requests spread evenly over the workers — what routing by key hash does —
 * gets its whole rate; one whose requests all reach one worker gets rate /
 * share (docs/operations.md, "Quotas and access control").
 *
 * The client table: one per worker, at most PM_QUOTA_CLIENTS_MAX source
 * addresses, found by a keyed hash (a per-worker seed, so that an attacker who
 * picks source addresses cannot pile them into one chain). Entries that carry
 * a per-client override (pm_qtable_set) are pinned: never replaced, at most
 * PM_QUOTA_OVERRIDES_MAX of them. The others sit on a least-recently-seen
 * list; a new address in a full table replaces the one idle longest. The
 * newcomer starts with full buckets only if the entry it replaces had been
 * idle for at least the time an empty bucket takes to fill (refill_ns);
 * otherwise it starts empty: it gets the rate at once, but not the burst.
 * Why this cannot be used to escape a quota: the list is ordered by last
 * request, so when a client C that was evicted comes back, every entry still
 * in the table, the one C now replaces included, was seen after C's last
 * request. If that entry has been idle for refill_ns, C has been idle longer,
 * and C's own buckets would have been full anyway; if not, C starts empty,
 * which is at most what it had. Being evicted is never worth more than
 * waiting, whatever an attacker does to churn the table (and churning it
 * takes thousands of requests from other addresses, each of which is charged).
 *
 * The work budget: KNN work (engine/knn.h: bytes of vectors a search reads)
 * is known only once the search is done, so it is charged after the fact, to
 * a third bucket that may go into debt (pm_bucket_charge): a client that owes
 * work has its next VQUERY refused THROTTLED until the debt is repaid at its
 * rate, while its other requests are not (they cost no KNN work). What a
 * bucket may owe is bounded (PM_QUOTA_DEBT_MS_MAX of its rate). A client
 * evicted from the table loses its debt with its entry (a newcomer starts
 * with none, full or empty by the rule above); that takes PM_QUOTA_CLIENTS_MAX
 * other addresses active on the worker, each with a work budget of its own,
 * which an attacker who has them can spend directly: eviction gives nothing
 * the addresses do not. Every client has the same work budget
 * (quota_work_bytes_per_s): per-client overrides set requests and bytes.
 */
#ifndef POMAI_DATAPLANE_QUOTA_H
#define POMAI_DATAPLANE_QUOTA_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin_proto.h"

/* ---------------------------------------------------------------- allowlist */

/* Networks in allow_networks: a linear scan of this many stays within a few
 * cache lines; more belong in a firewall in front of the appliance. */
#define PM_ALLOW_NETWORKS_MAX 64u
/* Characters of one network in the config text: "255.255.255.255/32,". */
#define PM_ALLOW_NETWORK_TEXT_BYTES 19u

struct pm_allow_net {
	uint32_t net;  /* host byte order, host bits zero */
	uint32_t mask; /* host byte order */
};

struct pm_allowlist {
	uint32_t n;
	struct pm_allow_net e[PM_ALLOW_NETWORKS_MAX];
};

/* Parse "10.0.0.0/8,192.168.1.7/32" (a bare address is a /32). 0, or -1 with
 * a message in err: a bad address or prefix, host bits set (10.0.0.5/24 is
 * almost always a typo), or more than PM_ALLOW_NETWORKS_MAX networks. */
int pm_allow_parse(struct pm_allowlist *a, const char *text, char *err, size_t errlen);

/* Is addr_be (network order, as in a sockaddr_in) inside an allowed network? */
static inline bool pm_allow_match(const struct pm_allowlist *a, uint32_t addr_be)
{
	uint32_t h = ntohl(addr_be);
	for (uint32_t i = 0; i < a->n; i++)
		if ((h & a->e[i].mask) == a->e[i].net)
			return true;
	return false;
}

/* ---------------------------------------------------------------- token bucket */

/* Nano-tokens per token. */
#define PM_QUOTA_NANO 1000000000ull
/* Largest rate of one client (requests/s or bytes/s, over all workers):
 * PM_QUOTA_RATE_PER_S_MAX, 16 G/s, a bound of the admin protocol
 * (proto/admin_proto.h), chosen so that the largest burst, in nano-tokens,
 * fits 64 bits (checked here). */
/* Burst, in milliseconds of the rate: at least 1 ms, at most 1 s. */
#define PM_QUOTA_BURST_MS_MIN 1u
#define PM_QUOTA_BURST_MS_MAX 1000u
_Static_assert(PM_QUOTA_RATE_PER_S_MAX / 1000u * PM_QUOTA_BURST_MS_MAX <=
		       UINT64_MAX / PM_QUOTA_NANO,
	       "the largest burst, in nano-tokens, fits a u64");

/* What a work bucket may owe, in ms of its rate: a flood of queries admitted
 * before their work was known is paid back at the rate for up to 10 s, which
 * holds a client to about its budget over time; a client that overshot once
 * is not shut out for minutes. */
#define PM_QUOTA_DEBT_MS_MAX 10000u

/* A rate as one worker enforces it. */
struct pm_rate {
	uint64_t per_s;  /* tokens per second over all workers; 0 = unlimited */
	uint32_t share;  /* this worker refills per_s / share per second */
	uint64_t cap;    /* nano-tokens this worker's bucket holds at most (its burst) */
	uint64_t debt_max; /* nano-tokens a bucket may owe (pm_bucket_charge); 0: none */
};

struct pm_token_bucket {
	uint64_t level;   /* nano-tokens */
	uint64_t last_ns; /* time of the last refill */
	uint32_t rem;     /* per_s x ns not yet divided by share (< share) */
	uint64_t debt;    /* nano-tokens charged beyond the level; repaid before it refills */
};

/* A rate of per_s split over share workers, with a burst of burst_ms of it;
 * the burst is at least cost_max tokens, so that any single request can pass
 * once the bucket is full. per_s 0: unlimited. */
void pm_rate_init(struct pm_rate *r, uint64_t per_s, uint32_t share, uint32_t burst_ms,
		  uint64_t cost_max);
/* A full bucket at now_ns. */
void pm_bucket_fill(struct pm_token_bucket *b, const struct pm_rate *r, uint64_t now_ns);
/* Add what the rate gave since the last refill (up to cap). */
void pm_bucket_refill(struct pm_token_bucket *b, const struct pm_rate *r, uint64_t now_ns);
/* Nanoseconds until the (refilled) bucket holds cost tokens; 0 if it does. */
uint64_t pm_bucket_wait_ns(const struct pm_token_bucket *b, const struct pm_rate *r, uint64_t cost);
/* Take cost tokens (the caller checked pm_bucket_wait_ns() == 0). */
void pm_bucket_spend(struct pm_token_bucket *b, const struct pm_rate *r, uint64_t cost);
/* Take cost tokens whatever the level: what it lacks becomes debt (at most
 * r->debt_max; the rest is forgiven). For costs known only afterwards. */
void pm_bucket_charge(struct pm_token_bucket *b, const struct pm_rate *r, uint64_t cost);
/* A rate whose buckets may owe PM_QUOTA_DEBT_MS_MAX of it (pm_rate_init's, then this). */
void pm_rate_allow_debt(struct pm_rate *r);
static inline bool pm_bucket_full(const struct pm_token_bucket *b, const struct pm_rate *r)
{
	return r->per_s == 0 || b->level >= r->cap;
}

/* ---------------------------------------------------------------- client table */

/* Source addresses one worker tracks (quota state and top-talker counters). */
#define PM_QUOTA_CLIENTS_MAX 4096u
/* Per-client overrides one worker holds, PM_QUOTA_OVERRIDES_MAX (a bound of
 * the admin protocol, proto/admin_proto.h); they are never replaced, so they
 * must leave most of the table to the clients that come and go (checked). */
/* Hash chains: a power of two, one per entry. */
#define PM_QUOTA_HASH_BUCKETS 4096u
/* Top talkers a worker lists in INFO. */
#define PM_QUOTA_INFO_TOP 4u
#define PM_QUOTA_NONE UINT32_MAX
_Static_assert(PM_QUOTA_OVERRIDES_MAX < PM_QUOTA_CLIENTS_MAX,
	       "a full table always has an unpinned entry to replace");
_Static_assert((PM_QUOTA_HASH_BUCKETS & (PM_QUOTA_HASH_BUCKETS - 1)) == 0,
	       "hash buckets: a power of two");

/* A client's quota over all workers; 0 = unlimited. */
struct pm_quota_limits {
	uint64_t requests_per_s;
	uint64_t bytes_per_s;
};

struct pm_quota_entry {
	uint32_t addr_be;
	bool pinned;                  /* has an override; not on the LRU list */
	uint32_t hnext;               /* hash chain */
	uint32_t prev, next;          /* LRU list (unpinned) */
	struct pm_rate req_rate, byte_rate; /* the override (pinned only) */
	struct pm_token_bucket req, bytes;
	struct pm_token_bucket work;  /* KNN work, charged after the fact (the table's rate) */
	uint64_t last_ns;             /* last request seen */
	uint64_t requests, bytes_in;  /* admitted */
	uint64_t throttled;           /* refused */
	uint64_t work_bytes;          /* KNN work charged */
};

struct pm_quota_table {
	struct pm_rate def_req, def_bytes; /* everyone without an override */
	struct pm_rate work;          /* everyone's KNN work budget (bytes of vectors read) */
	uint32_t share, burst_ms;
	uint64_t refill_ns;           /* an empty default bucket fills up in this long */
	uint64_t seed;
	uint32_t live, pinned;        /* e[0..live) are in use: taken in order, never given back */
	uint32_t lru_head, lru_tail;  /* head: seen most recently */
	uint32_t found;               /* the entry find() returned last (a hint) */
	uint64_t replaced;            /* entries given to a new address */
	uint64_t throttled;           /* requests refused, all clients */
	uint32_t hash[PM_QUOTA_HASH_BUCKETS];
	struct pm_quota_entry e[PM_QUOTA_CLIENTS_MAX]; /* last: pm_qtable_init leaves it untouched */
};

/* One override, as pm_qtable_list() reports it. */
struct pm_quota_override {
	uint32_t addr_be;
	struct pm_quota_limits lim;
};

/* One client's counters, as pm_qtable_top() reports them. */
struct pm_quota_talker {
	uint32_t addr_be;
	bool pinned;
	uint64_t requests, bytes, throttled;
	uint64_t idle_ns;
	uint64_t work;    /* KNN work charged, bytes */
};

/* An empty table: def for everyone, split over share workers, burst_ms of
 * burst; seed keys the hash. */
void pm_qtable_init(struct pm_quota_table *t, const struct pm_quota_limits *def, uint32_t burst_ms,
		    uint32_t share, uint64_t seed);
/* Everyone's KNN work budget, bytes of vectors read per second over all
 * workers (0: unlimited); the table is otherwise as pm_qtable_init left it. */
void pm_qtable_set_work(struct pm_quota_table *t, uint64_t work_bytes_per_s);
/* Charge one request of `bytes` bytes from addr_be at now_ns: 0 if admitted,
 * else the milliseconds until it would be (>= 1). */
uint32_t pm_qtable_admit(struct pm_quota_table *t, uint32_t addr_be, uint32_t bytes,
			 uint64_t now_ns);
/* The same for a request that does KNN work (VQUERY): also refused while the
 * client owes work. */
uint32_t pm_qtable_admit_knn(struct pm_quota_table *t, uint32_t addr_be, uint32_t bytes,
			     uint64_t now_ns);
/* Charge KNN work done for addr_be (bytes of vectors read): its work bucket
 * may go into debt. */
void pm_qtable_charge_work(struct pm_quota_table *t, uint32_t addr_be, uint64_t work,
			   uint64_t now_ns);
/* Give addr_be its own quota (pinned): 0, -EINVAL (a rate above
 * PM_QUOTA_RATE_PER_S_MAX) or -ENOSPC (PM_QUOTA_OVERRIDES_MAX reached). */
int pm_qtable_set(struct pm_quota_table *t, uint32_t addr_be, const struct pm_quota_limits *lim,
		  uint64_t now_ns);
/* Drop addr_be's override (it goes back to the default): 0 or -ENOENT. */
int pm_qtable_del(struct pm_quota_table *t, uint32_t addr_be);
/* Up to n overrides into out; how many. */
uint32_t pm_qtable_list(const struct pm_quota_table *t, struct pm_quota_override *out, uint32_t n);
/* The n clients with the most requests (admitted + throttled), most first;
 * how many. */
uint32_t pm_qtable_top(const struct pm_quota_table *t, struct pm_quota_talker *out, uint32_t n,
		       uint64_t now_ns);
/* Charge reply bytes sent to addr_be to its byte bucket (it may go into
 * debt, as KNN work does); an address not in the table is not added. */
void pm_qtable_charge_bytes(struct pm_quota_table *t, uint32_t addr_be, uint64_t bytes,
			    uint64_t now_ns);

/* ---------------------------------------------------------------- unvalidated sources (issue 19) */

/* A UDP source that has not proven it receives replies at its address (no
 * valid cookie, guard.h) may be anyone's spoofed address, so it earns no
 * bucket of its own: a fresh per-address bucket is what let 12,000 spoofed
 * sources each spend a full burst, and charging the address's own bucket is
 * what let a spoofer lock its victim out. Unvalidated frames are charged
 * instead to the bucket of their /24 (PM_QUOTA_PREFIX_BITS; a table like the
 * clients', with the same replacement rule) and to one bucket all of them
 * share; over either, the frame is answered RETRY (access.c), with which any
 * real client validates and reaches its own per-address bucket at once.
 * Rates (config): a /24 gets quota_unvalidated_prefix_requests_per_s (0: one
 * client's quota_requests_per_s, and its quota_bytes_per_s), all of them
 * quota_unvalidated_requests_per_s (0: PM_QUOTA_UNVALIDATED_CLIENTS clients'
 * worth). Nothing per address is kept for them, so the client table, the
 * per-client overrides and INFO's top talkers hold validated clients only. */
#define PM_QUOTA_PREFIX_BITS 24u
#define PM_QUOTA_UNVALIDATED_CLIENTS 16u

struct pm_quota_shared {
	struct pm_quota_table prefixes;  /* keyed by the source's /24 */
	struct pm_rate req, bytes;       /* all unvalidated sources together */
	struct pm_token_bucket req_b, bytes_b;
	uint64_t admitted, throttled;
};

/* def: one client's quota (per-address); prefix_rps / global_rps: the
 * config's rates (0: derived as above). */
void pm_qshared_init(struct pm_quota_shared *s, const struct pm_quota_limits *def,
		     uint64_t prefix_rps, uint64_t global_rps, uint32_t burst_ms, uint32_t share,
		     uint64_t seed, uint64_t now_ns);
/* The address's /24, network order. */
static inline uint32_t pm_quota_prefix(uint32_t addr_be)
{
	return addr_be & htonl(~0u << (32u - PM_QUOTA_PREFIX_BITS));
}
/* Charge one unvalidated frame: 0 if admitted, else ms until it would be. */
uint32_t pm_qshared_admit(struct pm_quota_shared *s, uint32_t addr_be, uint32_t bytes, bool knn,
			  uint64_t now_ns);
/* Reply bytes sent to an unvalidated address (its /24's and the shared bucket). */
void pm_qshared_charge_bytes(struct pm_quota_shared *s, uint32_t addr_be, uint64_t bytes,
			     uint64_t now_ns);

/* ---------------------------------------------------------------- keyed by user (issue 19) */

/* The client table is keyed by a u32 (an IPv4 source address in network
 * order). With auth = on an authenticated client's entry is keyed by its
 * user instead (users.h): user u gets the key of address 0.0.u/256.u%256,
 * inside 0.0.0.0/8, which no datagram or connection can come from, so a
 * user's key never meets an address's. */
static inline uint32_t pm_quota_user_key(uint16_t user)
{
	return htonl((uint32_t)user);
}
/* The user whose key k is, or 0 when k is an address. */
static inline uint16_t pm_quota_key_user(uint32_t k)
{
	uint32_t h = ntohl(k);
	return h != 0 && h <= UINT16_MAX ? (uint16_t)h : 0;
}

#endif
