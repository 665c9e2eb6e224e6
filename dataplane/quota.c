/* SPDX-License-Identifier: MIT
 *
 * quota.c — the allowlist, the token bucket and the per-worker client table
 * (see quota.h for the rules and why).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "hash.h"
#include "wire.h"
#include "quota.h"

/* ---------------------------------------------------------------- allowlist */

/* One "a.b.c.d[/bits]" of len characters into *out; 0 or -1 with a message. */
static int parse_network(const char *p, size_t len, struct pm_allow_net *out, char *err,
			 size_t errlen)
{
	char buf[32];
	struct in_addr a;
	unsigned long bits = 32;
	if (len == 0 || len >= sizeof(buf)) {
		snprintf(err, errlen, "'%.*s': want a.b.c.d/bits", (int)len, p);
		return -1;
	}
	memcpy(buf, p, len);
	buf[len] = '\0';
	char *slash = strchr(buf, '/');
	if (slash) {
		char *end;
		*slash = '\0';
		bits = strtoul(slash + 1, &end, 10);
		if (!isdigit((unsigned char)slash[1]) || *end || bits > 32) {
			snprintf(err, errlen, "'%.*s': prefix length 0..32", (int)len, p);
			return -1;
		}
	}
	if (inet_pton(AF_INET, buf, &a) != 1) {
		snprintf(err, errlen, "'%.*s': not an IPv4 address", (int)len, p);
		return -1;
	}
	uint32_t mask = bits ? ~0u << (32 - bits) : 0, net = ntohl(a.s_addr);
	if (net & ~mask) {
		snprintf(err, errlen, "'%.*s': host bits set (did you mean %s/%lu or a /32?)", (int)len,
			 p, inet_ntoa((struct in_addr){ htonl(net & mask) }), bits);
		return -1;
	}
	*out = (struct pm_allow_net){ net, mask };
	return 0;
}

int pm_allow_parse(struct pm_allowlist *a, const char *text, char *err, size_t errlen)
{
	bool all = false;
	a->n = 0;
	for (const char *p = text;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (a->n == PM_ALLOW_NETWORKS_MAX) {
			snprintf(err, errlen, "more than %u networks", PM_ALLOW_NETWORKS_MAX);
			return -1;
		}
		if (parse_network(p, len, &a->e[a->n], err, errlen) != 0)
			return -1;
		all |= a->e[a->n++].mask == 0;
		if (!comma)
			break;
		p = comma + 1;
	}
	if (all) { /* 0.0.0.0/0: everyone; one entry says it */
		a->e[0] = (struct pm_allow_net){ 0, 0 };
		a->n = 1;
	}
	return 0;
}

/* ---------------------------------------------------------------- token bucket */

typedef unsigned __int128 u128;

void pm_rate_init(struct pm_rate *r, uint64_t per_s, uint32_t share, uint32_t burst_ms,
		  uint64_t cost_max)
{
	r->per_s = per_s;
	r->share = share ? share : 1;
	u128 cap = (u128)per_s * burst_ms * (PM_QUOTA_NANO / 1000u) / r->share;
	u128 least = (u128)cost_max * PM_QUOTA_NANO;
	cap = cap < least ? least : cap;
	r->cap = cap > UINT64_MAX ? UINT64_MAX : (uint64_t)cap;
	r->debt_max = 0;
}

void pm_rate_allow_debt(struct pm_rate *r)
{
	u128 debt = (u128)r->per_s * PM_QUOTA_DEBT_MS_MAX * (PM_QUOTA_NANO / 1000u) / r->share;
	r->debt_max = debt > UINT64_MAX ? UINT64_MAX : (uint64_t)debt;
}

void pm_bucket_fill(struct pm_token_bucket *b, const struct pm_rate *r, uint64_t now_ns)
{
	*b = (struct pm_token_bucket){ .level = r->cap, .last_ns = now_ns };
}

void pm_bucket_refill(struct pm_token_bucket *b, const struct pm_rate *r, uint64_t now_ns)
{
	if (now_ns <= b->last_ns)
		return;
	uint64_t dt = now_ns - b->last_ns;
	b->last_ns = now_ns;
	if (r->per_s == 0 || b->level >= r->cap) {
		b->level = r->cap;
		b->rem = 0;
		b->debt = 0;
		return;
	}
	u128 total = (u128)r->per_s * dt + b->rem;
	u128 add = total / r->share;
	b->rem = (uint32_t)(total % r->share);
	if (b->debt) { /* repaid first */
		u128 repay = add < b->debt ? add : b->debt;
		b->debt -= (uint64_t)repay;
		add -= repay;
	}
	if (add >= r->cap - b->level) {
		b->level = r->cap;
		b->rem = 0;
	} else {
		b->level += (uint64_t)add;
	}
}

uint64_t pm_bucket_wait_ns(const struct pm_token_bucket *b, const struct pm_rate *r, uint64_t cost)
{
	u128 need = (u128)cost * PM_QUOTA_NANO + b->debt;
	if (r->per_s == 0 || b->level >= need)
		return 0;
	u128 ns = ((need - b->level) * r->share + r->per_s - 1) / r->per_s;
	return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

void pm_bucket_spend(struct pm_token_bucket *b, const struct pm_rate *r, uint64_t cost)
{
	if (r->per_s)
		b->level -= cost * PM_QUOTA_NANO;
}

void pm_bucket_charge(struct pm_token_bucket *b, const struct pm_rate *r, uint64_t cost)
{
	if (r->per_s == 0)
		return;
	u128 take = (u128)cost * PM_QUOTA_NANO;
	if (take <= b->level) {
		b->level -= (uint64_t)take;
		return;
	}
	u128 owe = take - b->level + b->debt;
	b->level = 0;
	b->debt = owe > r->debt_max ? r->debt_max : (uint64_t)owe;
}

/* ---------------------------------------------------------------- client table */

static uint32_t bucket_of(const struct pm_quota_table *t, uint32_t addr_be)
{
	uint64_t h = XXH3_64bits_withSeed(&addr_be, sizeof(addr_be), t->seed);
	return (uint32_t)(h >> 32) & (PM_QUOTA_HASH_BUCKETS - 1);
}

/* Nanoseconds an empty bucket takes to fill up. */
static uint64_t refill_ns(const struct pm_rate *r)
{
	if (r->per_s == 0)
		return 0;
	u128 ns = ((u128)r->cap * r->share + r->per_s - 1) / r->per_s;
	return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

static void table_refill_ns(struct pm_quota_table *t)
{
	uint64_t rq = refill_ns(&t->def_req), rb = refill_ns(&t->def_bytes);
	t->refill_ns = PM_MAX(PM_MAX(rq, rb), refill_ns(&t->work));
}

void pm_qtable_init(struct pm_quota_table *t, const struct pm_quota_limits *def, uint32_t burst_ms,
		    uint32_t share, uint64_t seed)
{
	/* The header and hash only: entries are handed out in index order and never
	 * given back (a full table replaces its least recent), so e[live..] is
	 * never read, and its pages are first touched when a client arrives. */
	memset(t, 0, offsetof(struct pm_quota_table, e));
	t->share = share ? share : 1;
	t->burst_ms = burst_ms;
	t->seed = seed;
	pm_rate_init(&t->def_req, def->requests_per_s, t->share, burst_ms, 1);
	pm_rate_init(&t->def_bytes, def->bytes_per_s, t->share, burst_ms, PM_FRAME_BYTES_MAX);
	pm_rate_allow_debt(&t->def_bytes); /* reply bytes are charged after they left */
	pm_rate_init(&t->work, 0, t->share, burst_ms, 1);
	table_refill_ns(t);
	t->lru_head = t->lru_tail = PM_QUOTA_NONE;
	for (uint32_t i = 0; i < PM_QUOTA_HASH_BUCKETS; i++)
		t->hash[i] = PM_QUOTA_NONE;
}

void pm_qtable_set_work(struct pm_quota_table *t, uint64_t work_bytes_per_s)
{
	/* a bucket holds at least one token: admission asks for one (pm_qtable_admit_knn) */
	pm_rate_init(&t->work, work_bytes_per_s, t->share, t->burst_ms, 1);
	pm_rate_allow_debt(&t->work);
	table_refill_ns(t);
}

/* The entry of addr_be, or NULL. A client's frames come in runs (a
 * datagram's, a pipeline's, each frame admitted and its reply charged), so
 * the entry found last is looked at before the hash is computed: entries are
 * never freed, only given to another address, so one that is live with this
 * address is its entry. */
static struct pm_quota_entry *find(struct pm_quota_table *t, uint32_t addr_be)
{
	struct pm_quota_entry *last = &t->e[t->found];
	if (t->found < t->live && last->addr_be == addr_be) /* e[0..live) are in use */
		return last;
	for (uint32_t i = t->hash[bucket_of(t, addr_be)]; i != PM_QUOTA_NONE; i = t->e[i].hnext)
		if (t->e[i].addr_be == addr_be) {
			t->found = i;
			return &t->e[i];
		}
	return NULL;
}

static void lru_unlink(struct pm_quota_table *t, struct pm_quota_entry *e)
{
	if (e->prev != PM_QUOTA_NONE)
		t->e[e->prev].next = e->next;
	else
		t->lru_head = e->next;
	if (e->next != PM_QUOTA_NONE)
		t->e[e->next].prev = e->prev;
	else
		t->lru_tail = e->prev;
}

static void lru_push(struct pm_quota_table *t, struct pm_quota_entry *e)
{
	uint32_t i = (uint32_t)(e - t->e);
	e->prev = PM_QUOTA_NONE;
	e->next = t->lru_head;
	if (t->lru_head != PM_QUOTA_NONE)
		t->e[t->lru_head].prev = i;
	else
		t->lru_tail = i;
	t->lru_head = i;
}

static void hash_unlink(struct pm_quota_table *t, struct pm_quota_entry *e)
{
	uint32_t i = (uint32_t)(e - t->e), *p = &t->hash[bucket_of(t, e->addr_be)];
	while (*p != i)
		p = &t->e[*p].hnext;
	*p = e->hnext;
}

static const struct pm_rate *req_rate(const struct pm_quota_table *t, const struct pm_quota_entry *e)
{
	return e->pinned ? &e->req_rate : &t->def_req;
}

static const struct pm_rate *byte_rate(const struct pm_quota_table *t,
				       const struct pm_quota_entry *e)
{
	return e->pinned ? &e->byte_rate : &t->def_bytes;
}

/* A slot for a new address: a free one, or the one idle longest (quota.h says
 * why the newcomer then starts full or empty). */
static struct pm_quota_entry *insert(struct pm_quota_table *t, uint32_t addr_be, uint64_t now_ns)
{
	struct pm_quota_entry *e;
	bool full = true;
	if (t->live < PM_QUOTA_CLIENTS_MAX) {
		e = &t->e[t->live++];
	} else {
		e = &t->e[t->lru_tail]; /* never pinned: pinned entries are off the list */
		full = now_ns - e->last_ns >= t->refill_ns;
		lru_unlink(t, e);
		hash_unlink(t, e);
		t->replaced++;
	}
	uint32_t b = bucket_of(t, addr_be);
	*e = (struct pm_quota_entry){ .addr_be = addr_be, .hnext = t->hash[b],
				      .last_ns = now_ns };
	t->hash[b] = (uint32_t)(e - t->e);
	pm_bucket_fill(&e->req, &t->def_req, now_ns);
	pm_bucket_fill(&e->bytes, &t->def_bytes, now_ns);
	pm_bucket_fill(&e->work, &t->work, now_ns);
	if (!full)
		e->req.level = e->bytes.level = e->work.level = 0;
	lru_push(t, e);
	return e;
}

static uint32_t ns_to_ms_up(uint64_t ns)
{
	uint64_t ms = ns / 1000000u + (ns % 1000000u != 0);
	return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)(ms ? ms : 1);
}

static uint32_t admit(struct pm_quota_table *t, uint32_t addr_be, uint32_t bytes, bool knn,
		      uint64_t now_ns)
{
	struct pm_quota_entry *e = find(t, addr_be);
	if (!e)
		e = insert(t, addr_be, now_ns);
	else if (!e->pinned && t->lru_head != (uint32_t)(e - t->e)) {
		lru_unlink(t, e);
		lru_push(t, e);
	}
	e->last_ns = now_ns;
	const struct pm_rate *rr = req_rate(t, e), *br = byte_rate(t, e);
	pm_bucket_refill(&e->req, rr, now_ns);
	pm_bucket_refill(&e->bytes, br, now_ns);
	pm_bucket_refill(&e->work, &t->work, now_ns);
	uint64_t wr = pm_bucket_wait_ns(&e->req, rr, 1), wb = pm_bucket_wait_ns(&e->bytes, br, bytes);
	uint64_t ww = knn ? pm_bucket_wait_ns(&e->work, &t->work, 1) : 0;
	if (wr == 0 && wb == 0 && ww == 0) {
		pm_bucket_spend(&e->req, rr, 1);
		pm_bucket_spend(&e->bytes, br, bytes);
		e->requests++;
		e->bytes_in += bytes;
		return 0;
	}
	e->throttled++;
	t->throttled++;
	return ns_to_ms_up(PM_MAX(PM_MAX(wr, wb), ww));
}

uint32_t pm_qtable_admit(struct pm_quota_table *t, uint32_t addr_be, uint32_t bytes,
			 uint64_t now_ns)
{
	return admit(t, addr_be, bytes, false, now_ns);
}

uint32_t pm_qtable_admit_knn(struct pm_quota_table *t, uint32_t addr_be, uint32_t bytes,
			     uint64_t now_ns)
{
	return admit(t, addr_be, bytes, true, now_ns);
}

void pm_qtable_charge_work(struct pm_quota_table *t, uint32_t addr_be, uint64_t work,
			   uint64_t now_ns)
{
	struct pm_quota_entry *e = find(t, addr_be);
	if (!e) /* replaced since it was admitted: it comes back owing the work */
		e = insert(t, addr_be, now_ns);
	pm_bucket_refill(&e->work, &t->work, now_ns);
	pm_bucket_charge(&e->work, &t->work, work);
	e->work_bytes += work;
}

/* Buckets above a (lower) new cap are cut to it. */
static void clip(struct pm_token_bucket *b, const struct pm_rate *r)
{
	if (r->per_s && b->level > r->cap)
		b->level = r->cap;
}

int pm_qtable_set(struct pm_quota_table *t, uint32_t addr_be, const struct pm_quota_limits *lim,
		  uint64_t now_ns)
{
	if (lim->requests_per_s > PM_QUOTA_RATE_PER_S_MAX || lim->bytes_per_s > PM_QUOTA_RATE_PER_S_MAX)
		return -EINVAL;
	struct pm_quota_entry *e = find(t, addr_be);
	if ((!e || !e->pinned) && t->pinned == PM_QUOTA_OVERRIDES_MAX)
		return -ENOSPC;
	bool fresh = !e;
	if (fresh)
		e = insert(t, addr_be, now_ns);
	if (!e->pinned) {
		lru_unlink(t, e);
		e->pinned = true;
		t->pinned++;
	}
	pm_rate_init(&e->req_rate, lim->requests_per_s, t->share, t->burst_ms, 1);
	pm_rate_init(&e->byte_rate, lim->bytes_per_s, t->share, t->burst_ms, PM_FRAME_BYTES_MAX);
	pm_rate_allow_debt(&e->byte_rate);
	if (fresh) { /* never seen: it starts with its own full burst */
		pm_bucket_fill(&e->req, &e->req_rate, now_ns);
		pm_bucket_fill(&e->bytes, &e->byte_rate, now_ns);
	}
	pm_bucket_refill(&e->req, &e->req_rate, now_ns);
	pm_bucket_refill(&e->bytes, &e->byte_rate, now_ns);
	clip(&e->req, &e->req_rate);
	clip(&e->bytes, &e->byte_rate);
	return 0;
}

int pm_qtable_del(struct pm_quota_table *t, uint32_t addr_be)
{
	struct pm_quota_entry *e = find(t, addr_be);
	if (!e || !e->pinned)
		return -ENOENT;
	e->pinned = false;
	t->pinned--;
	lru_push(t, e);
	clip(&e->req, &t->def_req);
	clip(&e->bytes, &t->def_bytes);
	return 0;
}

uint32_t pm_qtable_list(const struct pm_quota_table *t, struct pm_quota_override *out, uint32_t n)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < t->live && k < n; i++) {
		const struct pm_quota_entry *e = &t->e[i];
		if (e->pinned)
			out[k++] = (struct pm_quota_override){
				e->addr_be, { e->req_rate.per_s, e->byte_rate.per_s } };
	}
	return k;
}

uint32_t pm_qtable_top(const struct pm_quota_table *t, struct pm_quota_talker *out, uint32_t n,
		       uint64_t now_ns)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < t->live && n; i++) {
		const struct pm_quota_entry *e = &t->e[i];
		uint64_t load = e->requests + e->throttled;
		uint32_t j = k < n ? k++ : n; /* insertion into the sorted prefix */
		for (; j > 0 && out[j - 1].requests + out[j - 1].throttled < load; j--)
			if (j < n)
				out[j] = out[j - 1];
		if (j < n)
			out[j] = (struct pm_quota_talker){
				e->addr_be, e->pinned, e->requests, e->bytes_in, e->throttled,
				now_ns > e->last_ns ? now_ns - e->last_ns : 0, e->work_bytes };
	}
	return k;
}

void pm_qtable_charge_bytes(struct pm_quota_table *t, uint32_t addr_be, uint64_t bytes,
			    uint64_t now_ns)
{
	struct pm_quota_entry *e = find(t, addr_be);
	if (!e)
		return; /* replaced since: its newcomer owes nothing of it */
	const struct pm_rate *br = byte_rate(t, e);
	pm_bucket_refill(&e->bytes, br, now_ns);
	pm_bucket_charge(&e->bytes, br, bytes);
}

/* ---------------------------------------------------------------- unvalidated sources */

void pm_qshared_init(struct pm_quota_shared *s, const struct pm_quota_limits *def,
		     uint64_t prefix_rps, uint64_t global_rps, uint32_t burst_ms, uint32_t share,
		     uint64_t seed, uint64_t now_ns)
{
	struct pm_quota_limits prefix = { prefix_rps ? prefix_rps : def->requests_per_s,
					  def->bytes_per_s };
	uint64_t rps = global_rps ? global_rps
				  : PM_MIN(def->requests_per_s * PM_QUOTA_UNVALIDATED_CLIENTS,
					   PM_QUOTA_RATE_PER_S_MAX);
	uint64_t bps = PM_MIN(def->bytes_per_s * PM_QUOTA_UNVALIDATED_CLIENTS,
			      PM_QUOTA_RATE_PER_S_MAX);
	pm_qtable_init(&s->prefixes, &prefix, burst_ms, share, seed);
	pm_rate_init(&s->req, rps, share, burst_ms, 1);
	pm_rate_init(&s->bytes, bps, share, burst_ms, PM_FRAME_BYTES_MAX);
	pm_rate_allow_debt(&s->bytes);
	pm_bucket_fill(&s->req_b, &s->req, now_ns);
	pm_bucket_fill(&s->bytes_b, &s->bytes, now_ns);
	s->admitted = s->throttled = 0;
}

uint32_t pm_qshared_admit(struct pm_quota_shared *s, uint32_t addr_be, uint32_t bytes, bool knn,
			  uint64_t now_ns)
{
	pm_bucket_refill(&s->req_b, &s->req, now_ns);
	pm_bucket_refill(&s->bytes_b, &s->bytes, now_ns);
	uint64_t wait = PM_MAX(pm_bucket_wait_ns(&s->req_b, &s->req, 1),
			       pm_bucket_wait_ns(&s->bytes_b, &s->bytes, bytes));
	uint32_t retry_ms = wait ? ns_to_ms_up(wait)
				 : admit(&s->prefixes, pm_quota_prefix(addr_be), bytes, knn, now_ns);
	if (retry_ms) {
		s->throttled++;
		return retry_ms;
	}
	pm_bucket_spend(&s->req_b, &s->req, 1);
	pm_bucket_spend(&s->bytes_b, &s->bytes, bytes);
	s->admitted++;
	return 0;
}

void pm_qshared_charge_bytes(struct pm_quota_shared *s, uint32_t addr_be, uint64_t bytes,
			     uint64_t now_ns)
{
	pm_bucket_refill(&s->bytes_b, &s->bytes, now_ns);
	pm_bucket_charge(&s->bytes_b, &s->bytes, bytes);
	pm_qtable_charge_bytes(&s->prefixes, pm_quota_prefix(addr_be), bytes, now_ns);
}
