/* SPDX-License-Identifier: MIT
 *
 * fanout.c — requests that every shard must see: KNN (scatter/gather), the
 * collection ops (a collection exists in every shard), INFO and SNAPSHOT.
 *
 * The worker that receives one coordinates it: it takes a slot in its bounded
 * pending table (full: BUSY), posts the frame to every other shard's ring,
 * answers its own part at once, and merges the parts as they arrive. Every
 * shard answers with ordinary encoded reply frames, so one decoder and one
 * merge serve the local part and the remote ones. A fan-out that is not
 * complete by its deadline (knn_timeout_ms) is answered TIMEOUT and its late
 * parts are ignored (their sequence number no longer matches) — a shard that
 * does not answer costs the client a timeout, never a hang.
 *
 * Merges: KNN keeps the k best (distance, key) across shards, ordered as a
 * single shard orders them; CCREATE / CDROP report the first failure (DROP:
 * removed if any shard removed); CLIST sums counts and bytes per collection;
 * INFO writes a "Total" section (numeric fields summed, but for the few that
 * are not additive: see not_summed[]) and then every shard's own text; SNAPSHOT
 * reports the first failure, like CCREATE.
 *
 * A CCREATE that a shard refused (an error status, or its ring was full) is
 * rolled back: before the client gets the failure, the coordinator sends
 * CDROP to exactly the shards whose part created the collection (it did not
 * exist there before; a shard that already had it keeps it and its vectors),
 * and waits for them like a second fan-out, so no collection is left on some
 * shards only. A CCREATE that only timed out is not rolled back: the slow
 * shard is still creating it, and a retry (CCREATE is idempotent) completes it
 * everywhere; rolling back would leave it on the slow shard alone.
 *
 * INFO replies to a request with PM_INFO_PAGED hold every shard's text (up to
 * PM_INFO_REPLY_BYTES_MAX, several frames); without it, the reply is cut at
 * the last whole line within PM_INFO_TEXT_BYTES_MAX, as before paging.
 *
 * A VQUERY's part on each shard (this worker's own and those of the fan-outs
 * other workers coordinate) is handed to knn_sched.c, which runs its search
 * in slices between the worker's turns and answers it the same way, with the
 * work it did; the coordinator charges that work to the client
 * (pm_fanout_collect), also for parts that answer after a timeout.
 *
 * SNAPSHOT's part is no engine call and no logged mutation: it asks this
 * worker's snapshot I/O to start one (snap_io.h), so it is never admitted to
 * nor held by the WAL (pm_wal_logs() does not list it).
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "access.h"
#include "backend.h"
#include "bridge.h"
#include "common.h"
#include "cluster.h"
#include "fanout.h"
#include "fanout_batch.h"
#include "hash.h"
#include "knn_sched.h"
#include "msg.h"
#include "repl_io.h"
#include "snap_io.h"
#include "users.h"
#include "vector.h"
#include "wal_io.h"
#include "worker.h"

/* INFO: distinct numeric fields summed across shards, and their name length. */
#define INFO_FIELDS_MAX 256u
#define INFO_FIELD_BYTES 48u
/* INFO: room a shard's text leaves for the "@shard:N" line that heads it in the
 * merged text, so that every shard's part fits the merge buffer. */
#define INFO_SHARD_LINE_BYTES 16u
/* INFO: collection lines the Total's `collections` tells apart (every line of
 * every shard's text fits: PM_COLLECTIONS_MAX per shard). */
#define INFO_COLL_LINES_MAX (PM_INFO_SHARDS_MAX * PM_COLLECTIONS_MAX)

_Static_assert(PM_SHARDS_MAX <= PM_INFO_SHARDS_MAX, "an INFO reply has room for every shard");
_Static_assert(PM_INFO_SHARDS_MAX * PM_INFO_TEXT_BYTES_MAX <= PM_KNN_MERGE_BYTES,
	       "every shard's INFO text fits the merge buffer");
_Static_assert(sizeof("# Cluster\r\nshards:99\r\nshards_answered:99\r\n# Total\r\n") +
		       INFO_FIELDS_MAX * (INFO_FIELD_BYTES + 24u) <= PM_INFO_TOTAL_BYTES_MAX,
	       "the Total section fits its bound");
_Static_assert(PM_SHARDS_MAX <= 32u, "a CCREATE's created shards are a 32-bit mask");

/* How the Total section merges a field; SUM unless not_summed[] says otherwise. */
enum info_merge { INFO_SUM, INFO_MAX, INFO_MIN, INFO_SKIP, INFO_DISTINCT };

static const struct {
	const char *name;
	enum info_merge how;
} not_summed[] = {
	{ "collections", INFO_DISTINCT }, /* named ones exist on every shard: count each once */
	{ "collections_dropping", INFO_MAX }, /* each shard frees its part of the same ones */
	{ "worker_cpu", INFO_SKIP },      /* a CPU number */
	{ "arena_hugepages", INFO_MIN },  /* 1 when every shard's arena has them */
	{ "wal_next_lsn", INFO_SKIP },    /* each shard's log numbers its own records */
	{ "wal_written_lsn", INFO_SKIP }, /* likewise */
	{ "wal_submitted_lsn", INFO_SKIP },
	{ "wal_held_max", INFO_MAX },
	{ "wal_recovery_ms", INFO_MAX },  /* the shards recover side by side */
	{ "quota_overrides", INFO_MAX },  /* every worker holds the same configured list */
	{ "auth_users", INFO_MAX },       /* every worker holds the same users table (issue 19) */
	{ "repl_epoch", INFO_MAX },       /* a promotion raises every shard's to the same */
	{ "repl_id", INFO_SKIP },         /* hexadecimal names, the same on every shard */
	{ "repl_prev_id", INFO_SKIP },
	{ "repl_prev_end_lsn", INFO_SKIP }, /* LSNs: each shard's own */
	{ "repl_applied_lsn", INFO_SKIP },
	{ "repl_durable_lsn", INFO_SKIP },
	{ "repl_primary_lsn", INFO_SKIP },
};

struct pm_info_field {
	char name[INFO_FIELD_BYTES];
	unsigned long long v;
	uint8_t how;                      /* enum info_merge */
};

/* A worker's INFO merge space (pm_fanout_alloc): the Total's fields and the
 * hashes of the collection lines seen. */
struct pm_info_sum {
	struct pm_info_field f[INFO_FIELDS_MAX];
	uint64_t coll[INFO_COLL_LINES_MAX];
};

int pm_fanout_alloc(struct pm_worker *w)
{
	w->info_text = malloc(PM_INFO_REPLY_BYTES_MAX);
	w->info_sum = malloc(sizeof(*w->info_sum));
	return w->info_text && w->info_sum && pm_batch_alloc(w) == 0 ? 0 : -ENOMEM;
}

void pm_fanout_free(struct pm_worker *w)
{
	free(w->info_text);
	free(w->info_sum);
	pm_batch_free(w);
	w->info_text = NULL;
	w->info_sum = NULL;
}

bool pm_is_fanout(uint8_t op)
{
	return op == PM_OP_VQUERY || op == PM_OP_CCREATE || op == PM_OP_CDROP ||
	       op == PM_OP_CLIST || op == PM_OP_INFO || op == PM_OP_SNAPSHOT || pm_batch_is_op(op);
}

/* ---------------------------------------------------------------- one shard's part */

bool pm_info_section_known(const char *name, uint32_t len)
{
	if (len == 0)
		return true;
	for (const char *at = PM_INFO_SECTION_NAMES; *at; at += strspn(at, ", ")) {
		size_t n = strcspn(at, ",");
		if (n == len && !strncasecmp(name, at, len))
			return true;
		at += n;
	}
	return false;
}

/* Engine INFO text followed by this worker's dataplane counters, leaving room
 * for the line that heads it in the merged text. */
static uint32_t shard_info(struct pm_worker *w, const struct pm_request *req, char *out,
			   bool clients)
{
	const uint32_t cap = PM_INFO_TEXT_BYTES_MAX - INFO_SHARD_LINE_BYTES;
	const char *sec = (const char *)req->section.ptr;
	uint32_t n = pm_shard_info(&w->shard, sec, req->section.len, out, cap);
	if (req->section.len == 0 || (req->section.len == 9 && !strncasecmp(sec, "dataplane", 9)))
		n += pm_worker_info(w, out + n, cap - n, clients);
	else if (req->section.len == 11 && !strncasecmp(sec, "replication", 11))
		n += pm_repl_info(w, out + n, cap - n);
	return n;
}

/* Apply req to this worker's shard; write its reply as frames into out.
 * Returns the bytes written (0: the part does not fit, and must be refused).
 * *created: a CCREATE made the collection here (it did not exist before).
 * *work: a batch or range part's KNN work, charged to the client.
 * client: who asked (INFO's per-client section is admin-only, users.h). */
static uint32_t part_frames(struct pm_worker *w, const struct pm_request *req,
			    const struct pm_dest *client, uint8_t *out, uint32_t cap, bool *created,
			    uint64_t *work)
{
	struct pm_reply rep;
	*created = false;
	*work = 0;
	if (pm_batch_is_op(req->op)) {
		pm_batch_part(w, req, &rep);
		*work = rep.work;
	} else if (req->op == PM_OP_INFO) {
		char *text = w->info_text; /* free: the merged text is built at the end */
		rep = (struct pm_reply){ .status = PM_OK, .op = req->op, .id = req->id };
		rep.value = (struct pm_bytes){ (const uint8_t *)text,
					       shard_info(w, req, text,
							  pm_auth_sees_clients(w, client)) };
	} else if (req->op == PM_OP_CCREATE) {
		bool existed = pm_coll_find(&w->shard, req->collection.ptr, req->collection.len);
		pm_apply_logged(w, req, &rep);
		*created = rep.status == PM_OK && !existed;
	} else if (req->op == PM_OP_SNAPSHOT) {
		w->shard.stats.ops[PM_OP_SNAPSHOT]++; /* the engine never sees it */
		rep = (struct pm_reply){ .op = req->op, .id = req->id };
		if (pm_snap_busy(w)) /* one at a time: its progress, nothing queued (issue 19) */
			rep.snap_running = 1, rep.snap_pct = (uint8_t)pm_snap_pct(w);
		else
			rep.status = pm_snap_request(w);
	} else {
		pm_apply_logged(w, req, &rep);
		rep.list_flags = PM_CLIST_COLL_FLAGS | PM_CLIST_DTYPE; /* parts: whole entries; finish() writes the
						       * client's layout */
	}
	return pm_reply_frames(&rep, out, cap);
}

/* ---------------------------------------------------------------- merging */

static int hit_cmp(const struct pm_pending *p, float d, const uint8_t *key, uint32_t klen,
		   const struct pm_hit_ref *h)
{
	if (d != h->dist)
		return d < h->dist ? -1 : 1;
	int c = memcmp(key, p->keys + h->off, PM_MIN(klen, h->len));
	return c ? c : (int)klen - (int)h->len;
}

/* Move the kept keys to the front of the key buffer. */
static void compact_keys(struct pm_pending *p)
{
	uint32_t order[PM_K_MAX], n = p->nhits, at = 0;
	for (uint32_t i = 0; i < n; i++) { /* hits by key offset, insertion sort */
		uint32_t j = i;
		for (; j > 0 && p->hits[order[j - 1]].off > p->hits[i].off; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct pm_hit_ref *h = &p->hits[order[i]];
		memmove(p->keys + at, p->keys + h->off, h->len);
		h->off = at;
		at += h->len;
	}
	p->keys_used = at;
}

static bool merge_hit(struct pm_pending *p, const struct pm_wire_bytes *key, float dist)
{
	uint32_t pos = p->nhits;
	while (pos > 0 && hit_cmp(p, dist, key->ptr, key->len, &p->hits[pos - 1]) < 0)
		pos--;
	if (pos >= p->k)
		return true; /* not among the k best */
	if (p->keys_used + key->len > PM_KNN_MERGE_BYTES)
		compact_keys(p);
	if (p->keys_used + key->len > PM_KNN_MERGE_BYTES)
		return false;
	uint32_t n = PM_MIN(p->nhits, p->k - 1);
	memmove(&p->hits[pos + 1], &p->hits[pos], (n - pos) * sizeof(p->hits[0]));
	memcpy(p->keys + p->keys_used, key->ptr, key->len);
	p->hits[pos] = (struct pm_hit_ref){ dist, p->keys_used, key->len };
	p->keys_used += key->len;
	p->nhits = n + 1;
	return true;
}

/* The next hit of a frame whose key this node's set owns: in a cluster a
 * node holds copies of keys of slots moving in or not yet purged after they
 * moved out, and a KNN over the cluster must count each key once. */
static bool next_hit(const struct pm_worker *w, struct pm_reply_view *it,
		     struct pm_wire_bytes *key, float *dist)
{
	while (pm_reply_next_hit(it, key, dist))
		if (!w->cview || pm_cluster_owns(w, key->ptr, key->len))
			return true;
	return false;
}

/* One reply frame's hits merged with the kept ones in one pass: both are
 * sorted by (distance, key) (every shard sends its hits in order), so the k
 * best of both take O(k), not the O(k^2) compares and moves of inserting one
 * hit at a time (k = 1024: half a million, on the coordinator's turn). When
 * the frame's keys do not fit the key buffer even compacted, one at a time
 * after all. false: keys too long for the merge buffer. */
static bool merge_frame_hits(const struct pm_worker *w, struct pm_pending *p,
			     const struct pm_reply_view *frame)
{
	struct pm_reply_view it = *frame;
	struct pm_wire_bytes key;
	float dist;
	uint32_t bytes = 0;
	while (next_hit(w, &it, &key, &dist))
		bytes += key.len;
	if (p->keys_used + bytes > PM_KNN_MERGE_BYTES)
		compact_keys(p);
	it = *frame;
	if (p->keys_used + bytes > PM_KNN_MERGE_BYTES) {
		bool ok = true;
		while (next_hit(w, &it, &key, &dist))
			ok &= merge_hit(p, &key, dist);
		return ok;
	}
	struct pm_hit_ref out[PM_K_MAX];
	uint32_t n = 0, i = 0;
	bool have = next_hit(w, &it, &key, &dist);
	while (n < p->k && (have || i < p->nhits)) {
		bool take = have && (i == p->nhits ||
				     hit_cmp(p, dist, key.ptr, key.len, &p->hits[i]) < 0);
		if (take) {
			memcpy(p->keys + p->keys_used, key.ptr, key.len);
			out[n++] = (struct pm_hit_ref){ dist, p->keys_used, key.len };
			p->keys_used += key.len;
			have = next_hit(w, &it, &key, &dist);
		} else {
			out[n++] = p->hits[i++];
		}
	}
	memcpy(p->hits, out, n * sizeof(out[0]));
	p->nhits = n;
	return true;
}

static void merge_coll(struct pm_pending *p, const struct pm_coll_info *ci)
{
	for (uint32_t i = 0; i < p->ncolls; i++) {
		struct pm_coll_info *c = &p->colls[i];
		if (c->name.len == ci->name.len && c->params.dim == ci->params.dim &&
		    (!ci->name.len || !memcmp(c->name.ptr, ci->name.ptr, ci->name.len))) {
			c->count += ci->count;
			c->bytes += ci->bytes;
			return;
		}
	}
	if (p->ncolls == PM_COLLECTIONS_MAX || p->keys_used + ci->name.len > PM_KNN_MERGE_BYTES)
		return; /* every shard has the same named collections; cannot overflow */
	struct pm_coll_info *c = &p->colls[p->ncolls++];
	*c = *ci;
	if (ci->name.len) /* a default collection has no name (and maybe no pointer) */
		memcpy(p->keys + p->keys_used, ci->name.ptr, ci->name.len);
	c->name.ptr = p->keys + p->keys_used;
	p->keys_used += ci->name.len;
}

/* A shard's text, headed by its "@shard:N" line (room for both: shard_info);
 * where it is, so that the reply lists the shards in order. */
static void merge_info(struct pm_pending *p, uint32_t shard, const struct pm_wire_bytes *text)
{
	int n = snprintf((char *)p->keys + p->keys_used, PM_KNN_MERGE_BYTES - p->keys_used,
			 "@shard:%u\r\n", shard);
	if (n < 0 || shard >= PM_INFO_SHARDS_MAX ||
	    p->keys_used + (uint32_t)n + text->len > PM_KNN_MERGE_BYTES)
		return; /* cannot happen: the static assertions above */
	if (text->len) /* an empty text (a section a shard does not have) may have no pointer */
		memcpy(p->keys + p->keys_used + n, text->ptr, text->len);
	p->info_at[shard] = p->keys_used;
	p->info_len[shard] = (uint32_t)n + text->len;
	p->keys_used += (uint32_t)n + text->len;
}

/* Merge one shard's reply frames into the fan-out. */
static void merge_part(const struct pm_worker *w, struct pm_pending *p, uint32_t shard,
		       const uint8_t *buf, uint32_t len)
{
	for (uint32_t off = 0; off < len;) {
		struct pm_reply_view rv;
		size_t used;
		enum pm_wire_status st = pm_reply_decode(buf + off, len - off, &rv, &used);
		if (st != PM_WIRE_OK || used == 0) {
			p->status = p->status ? p->status : PM_E_INTERNAL;
			return;
		}
		off += (uint32_t)used;
		if (rv.status != PM_WIRE_OK && p->op == PM_OP_VADDB) {
			pm_batch_part_failed(p, shard, rv.status); /* its items only */
			continue;
		}
		if (rv.status != PM_WIRE_OK) {
			p->status = p->status ? p->status : pm_status_from_wire(rv.status);
			continue;
		}
		if ((p->op == PM_OP_VADDB || p->op == PM_OP_VQUERYB) && !pm_batch_merge(w, p, shard, &rv))
			p->status = PM_E_K; /* keys too long for the merge buffer */
		if (p->op == PM_OP_VRANGE) {
			p->truncated |= (rv.range_flags & PM_WIRE_RANGE_TRUNCATED) != 0;
			p->seen += rv.count;
		}
		struct pm_wire_coll_info wci;
		struct pm_coll_info ci;
		if ((p->op == PM_OP_VQUERY || p->op == PM_OP_VRANGE) && !merge_frame_hits(w, p, &rv))
			p->status = PM_E_K; /* keys too long for the merge buffer */
		while (p->op == PM_OP_CLIST && pm_reply_next_coll(&rv, &wci)) {
			pm_coll_info_from_wire(&wci, &ci);
			merge_coll(p, &ci);
		}
		if (p->op == PM_OP_CDROP)
			p->removed |= rv.removed;
		if (p->op == PM_OP_SNAPSHOT && rv.snap_running) { /* the least progress */
			p->snap_pct = p->snap_running ? PM_MIN(p->snap_pct, rv.snap_pct) : rv.snap_pct;
			p->snap_running += rv.snap_running;
		}
		if (p->op == PM_OP_INFO)
			merge_info(p, shard, &rv.value);
	}
}

/* ---------------------------------------------------------------- INFO totals */

static enum info_merge merge_rule(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(not_summed) / sizeof(not_summed[0]); i++)
		if (strlen(not_summed[i].name) == len && !memcmp(not_summed[i].name, name, len))
			return not_summed[i].how;
	if (len > 7 && !memcmp(name, "replica", 7) && name[7] >= '0' && name[7] <= '9')
		return INFO_SKIP; /* replica<k>_*: the k-th replica of each shard is another one */
	return INFO_SUM;
}

static void add_field(struct pm_info_field *f, uint32_t *nf, const char *name, size_t len,
		      unsigned long long v)
{
	for (uint32_t i = 0; i < *nf; i++)
		if (strlen(f[i].name) == len && !memcmp(f[i].name, name, len)) {
			if (f[i].how == INFO_SUM)
				f[i].v += v;
			else if (f[i].how == INFO_MAX)
				f[i].v = PM_MAX(f[i].v, v);
			else if (f[i].how == INFO_MIN)
				f[i].v = PM_MIN(f[i].v, v);
			return;
		}
	enum info_merge how = merge_rule(name, len);
	if (*nf == INFO_FIELDS_MAX || len >= INFO_FIELD_BYTES || how == INFO_SKIP)
		return;
	memcpy(f[*nf].name, name, len);
	f[*nf].name[len] = '\0';
	f[*nf].how = (uint8_t)how;
	f[(*nf)++].v = v;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* A collection line names its collection up to ",count=" (name, default, dim,
 * metric: the same on every shard); its hash goes into the list. */
static void add_coll_line(struct pm_info_sum *sum, uint32_t *nc, const char *line,
			  const char *eol)
{
	size_t n = (size_t)(eol - line);
	const char *cut = memmem(line, n, ",count=", 7);
	if (*nc < INFO_COLL_LINES_MAX)
		sum->coll[(*nc)++] = pm_hash(line, cut ? (size_t)(cut - line) : n);
}

/* Distinct collections among the nc lines' hashes. */
static unsigned long long distinct_colls(struct pm_info_sum *sum, uint32_t nc)
{
	qsort(sum->coll, nc, sizeof(sum->coll[0]), u64_cmp);
	unsigned long long d = 0;
	for (uint32_t i = 0; i < nc; i++)
		d += i == 0 || sum->coll[i] != sum->coll[i - 1];
	return d;
}

/* Merge every "name:digits" line of the shards' texts; returns the fields. */
static uint32_t sum_fields(const char *t, uint32_t len, struct pm_info_sum *sum)
{
	uint32_t nf = 0, nc = 0;
	for (const char *line = t, *end = t + len; line < end;) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		eol = eol ? eol : end;
		const char *colon = memchr(line, ':', (size_t)(eol - line));
		if (colon && colon - line == 10 && !memcmp(line, "collection", 10))
			add_coll_line(sum, &nc, colon + 1, eol);
		if (colon && line[0] != '#' && line[0] != '@' && colon + 1 < eol) {
			char *stop;
			unsigned long long v = strtoull(colon + 1, &stop, 10);
			if (stop > colon + 1 && (*stop == '\r' || stop == eol))
				add_field(sum->f, &nf, line, (size_t)(colon - line), v);
		}
		line = eol + 1;
	}
	for (uint32_t i = 0; i < nf; i++)
		if (sum->f[i].how == INFO_DISTINCT)
			sum->f[i].v = distinct_colls(sum, nc);
	return nf;
}

/* The final INFO text: totals, then the shards' own sections. Ends at the last
 * whole line that fits cap. */
static uint32_t info_text(struct pm_worker *w, const struct pm_pending *p, char *out,
			  uint32_t cap)
{
	struct pm_info_field *f = w->info_sum->f;
	uint32_t nf = sum_fields((const char *)p->keys, p->keys_used, w->info_sum);
	int n = snprintf(out, cap, "# Cluster\r\nshards:%u\r\nshards_answered:%u\r\n# Total\r\n",
			 w->d->nshards, p->got);
	uint32_t len = (uint32_t)n;
	for (uint32_t i = 0; i < nf && len < cap; i++) {
		n = snprintf(out + len, cap - len, "%s:%llu\r\n", f[i].name, f[i].v);
		if (n < 0 || (uint32_t)n >= cap - len)
			return len;
		len += (uint32_t)n;
	}
	for (uint32_t s = 0; s < PM_INFO_SHARDS_MAX && len < cap; s++) {
		uint32_t rest = PM_MIN(p->info_len[s], cap - len);
		memcpy(out + len, p->keys + p->info_at[s], rest);
		len += rest;
		while (rest < p->info_len[s] && len > 0 && out[len - 1] != '\n')
			len--; /* cut back to a whole line */
		if (rest < p->info_len[s])
			break;
	}
	return len;
}

/* ---------------------------------------------------------------- completion */

void pm_knn_latency(struct pm_worker *w, uint64_t start_ns)
{
	uint64_t us = (w->now_ns - start_ns) / 1000u;
	unsigned b = us ? 64u - (unsigned)__builtin_clzll(us) : 0;
	w->stats.knn_latency_us[PM_MIN(b, PM_KNN_LATENCY_BUCKETS - 1u)]++;
	pm_hist_add(&w->lat_knn, w->now_ns - start_ns);
}

static void latency(struct pm_worker *w, const struct pm_pending *p)
{
	pm_knn_latency(w, p->start_ns);
}

static void finish(struct pm_worker *w, struct pm_pending *p)
{
	struct pm_reply rep = { .status = p->status, .op = p->op, .id = p->id };
	if (p->status == PM_OK && (p->op == PM_OP_VADDB || p->op == PM_OP_VQUERYB)) {
		pm_batch_finish(w, p, &rep);
		if (p->op == PM_OP_VQUERYB)
			latency(w, p);
	}
	rep.truncated = p->truncated || p->seen > p->k; /* VRANGE */
	if (p->status == PM_OK && (p->op == PM_OP_VQUERY || p->op == PM_OP_VRANGE)) {
		for (uint32_t i = 0; i < p->nhits; i++) {
			w->shard.hits[i] = (struct pm_knn_hit){ .seed = 0, .dist = p->hits[i].dist };
			w->shard.keys[i] = (struct pm_bytes){ p->keys + p->hits[i].off, p->hits[i].len };
		}
		rep.hits = w->shard.hits;
		rep.keys = w->shard.keys;
		rep.nhits = p->nhits;
		latency(w, p);
	}
	if (p->status == PM_OK && p->op == PM_OP_CLIST) {
		rep.colls = p->colls;
		rep.ncolls = p->ncolls;
		rep.list_flags = p->list_flags;
	}
	if (p->status == PM_OK && p->op == PM_OP_INFO) {
		uint32_t cap = p->info_flags & PM_INFO_PAGED ? PM_INFO_REPLY_BYTES_MAX
							     : PM_INFO_TEXT_BYTES_MAX;
		rep.value = (struct pm_bytes){ (const uint8_t *)w->info_text,
					       info_text(w, p, w->info_text, cap) };
	}
	rep.removed = p->removed;
	rep.snap_running = p->snap_running;
	rep.snap_pct = p->snap_pct;
	pm_send_reply(w, &p->dest, &rep);
	p->live = false;
}

/* A fan-out's sequence number: never 0, which marks a KNN part passed on by
 * part_only (issue 20). */
static uint32_t fanout_seq(struct pm_worker *w)
{
	if (++w->next_seq == 0)
		++w->next_seq;
	return w->next_seq;
}

/* ---------------------------------------------------------------- CCREATE roll-back */

/* The failed CCREATE's collection is dropped on the shards that created it,
 * as a second round under a new sequence number (a late CCREATE part is not
 * taken for a CDROP answer); the client's reply waits for it. Returns false
 * when nothing is to be dropped. The name is at the start of p->keys. */
static bool rollback_start(struct pm_worker *w, struct pm_pending *p)
{
	struct pm_request drop = { .op = PM_OP_CDROP, .id = p->id,
				   .collection = { p->keys, p->keys_used } };
	uint8_t frame[PM_FRAME_HEADER_BYTES + 8u + PM_COLLECTION_NAME_BYTES_MAX];
	uint32_t len = (uint32_t)pm_request_encode(&drop, frame, sizeof(frame));
	if (p->created == 0 || p->rolling_back || len == 0)
		return false;
	p->rolling_back = true;
	p->seq = fanout_seq(w);
	p->want = p->got = 0;
	p->deadline_ns = w->now_ns + (uint64_t)w->d->cfg.knn_timeout_ms * 1000000u;
	struct pm_msg m = { .origin = w->id, .seq = p->seq };
	for (uint32_t s = 0; s < w->d->nshards; s++) {
		if (!(p->created & (1u << s)) || s == w->id)
			continue;
		if (pm_post(w, s, PM_MSG_FANOUT, &m, frame, len))
			p->want++;
		else
			w->stats.fanout_rollback_lost++;
	}
	if (p->created & (1u << w->id)) {
		struct pm_reply rep;
		pm_apply_logged(w, &drop, &rep); /* answered below, with the others' */
	}
	w->stats.fanout_rollbacks++;
	return p->want > 0;
}

/* Every part answered (or the deadline passed): roll back a failed CCREATE
 * first, then answer the client. */
static void complete(struct pm_worker *w, struct pm_pending *p)
{
	if (p->op == PM_OP_CCREATE && p->status != PM_OK && p->status != PM_E_TIMEOUT &&
	    rollback_start(w, p))
		return;
	finish(w, p);
}

static struct pm_pending *find(struct pm_worker *w, uint32_t seq)
{
	for (uint32_t i = 0; i < PM_PENDING_MAX; i++)
		if (w->pending[i].live && w->pending[i].seq == seq)
			return &w->pending[i];
	return NULL;
}

/* ---------------------------------------------------------------- one shard's part, asked alone */

/* Issue 20: a client that fans a KNN out itself sends every shard its own
 * VQUERY with the PART flag, to that shard's port: the shard searches its
 * part and answers the client directly — no pending slot, no ring hop, no
 * merge here, the reply encoded once. The PART trailer says how many shards
 * the client asks; a client that counts other than this daemon would merge
 * a partial answer, so it is refused PARAM, as is a PART frame that did not
 * come to a shard's UDP port (TCP: one stream, no shard to name). A node of
 * a cluster merges away copies of keys of slots moving in or out, which only
 * a coordinator can: there shard 0's part is the whole node's answer,
 * coordinated as without PART (returns false: go on as a fan-out), and the
 * other shards' parts answer no hits. A frame that a DPDK queue gave
 * another worker goes to its shard's ring (sequence number 0: a part, not a
 * coordinator's fan-out). */
static bool part_only(struct pm_worker *w, const struct pm_request *req, const uint8_t *frame,
		      uint32_t len, const struct pm_dest *client)
{
	const uint32_t base = w->d->cfg.base_port, n = w->d->nshards;
	uint32_t shard = client->dport - base; /* wraps above n for a port below base */
	uint64_t due = w->now_ns + (uint64_t)w->d->cfg.knn_timeout_ms * 1000000u;
	enum pm_status st = PM_OK;
	if (req->part_shards != n || client->dport < base || shard >= n)
		st = PM_E_PARAM;
	else if (w->cview && shard == 0)
		return false;
	else if (w->cview) { /* no hits: shard 0's part has the node's answer */
		struct pm_reply none = { .status = PM_OK, .op = req->op, .id = req->id };
		pm_send_reply(w, client, &none);
	} else if (shard == w->id)
		pm_knn_direct_start(w, req, client, due);
	else if (!pm_post(w, shard, PM_MSG_FANOUT, &(struct pm_msg){ .origin = w->id,
								    .dest = *client },
			  frame, len))
		st = PM_E_BUSY;
	if (st != PM_OK) {
		struct pm_reply e = { .status = st, .op = req->op, .id = req->id };
		pm_send_reply(w, client, &e);
	}
	return true;
}

/* ---------------------------------------------------------------- entry points */

void pm_fanout_start(struct pm_worker *w, const struct pm_request *req, const uint8_t *frame,
		     uint32_t len, const struct pm_dest *client)
{
	if (req->op == PM_OP_INFO &&
	    !pm_info_section_known((const char *)req->section.ptr, req->section.len)) {
		struct pm_reply bad = { .status = PM_E_PARAM, .op = req->op, .id = req->id };
		pm_send_reply(w, client, &bad); /* issue 21: an unknown section is an error */
		return;
	}
	if (req->op == PM_OP_VQUERY && req->part_shards && part_only(w, req, frame, len, client))
		return;
	struct pm_pending *p = NULL;
	for (uint32_t i = 0; i < PM_PENDING_MAX && !p; i++)
		p = w->pending[i].live ? NULL : &w->pending[i];
	if (!p) {
		struct pm_reply busy = { .status = PM_E_BUSY, .op = req->op, .id = req->id };
		pm_send_reply(w, client, &busy);
		return;
	}
	*p = (struct pm_pending){ .live = true, .op = req->op, .seq = fanout_seq(w), .id = req->id,
				  .dest = *client, .want = w->d->nshards, .k = req->k,
				  .info_flags = req->info_flags, .list_flags = req->list_flags,
				  .hits = p->hits, .keys = p->keys, .colls = p->colls, .batch = p->batch,
				  .start_ns = w->now_ns, .deadline_ns = w->now_ns + (uint64_t)w->d->cfg.knn_timeout_ms * 1000000u };
	w->stats.fanouts++;
	if (req->op == PM_OP_CCREATE) { /* the name, for a roll-back */
		memcpy(p->keys, req->collection.ptr, req->collection.len);
		p->keys_used = req->collection.len;
	}
	if (pm_batch_is_op(req->op))
		pm_batch_start(w, p, req);
	struct pm_msg m = { .origin = w->id, .seq = p->seq, .dest = *client };
	for (uint32_t s = 0; s < w->d->nshards; s++)
		if (s != w->id && !pm_post(w, s, PM_MSG_FANOUT, &m, frame, len)) {
			if (req->op == PM_OP_VADDB) /* its items only: the others are applied */
				pm_batch_part_failed(p, s, PM_WIRE_E_BUSY);
			else
				p->status = p->status ? p->status : PM_E_BUSY;
			p->want--;
		}
	if (req->op == PM_OP_VQUERY) { /* answered through pm_fanout_collect */
		pm_knn_part_start(w, req, w->id, p->seq, client, p->deadline_ns);
		return;
	}
	bool created;
	uint64_t work;
	uint32_t n = part_frames(w, req, client, w->scratch, PM_RING_PAYLOAD_MAX, &created, &work);
	pm_quota_charge_work(w, client, work);
	if (n)
		merge_part(w, p, w->id, w->scratch, n);
	else
		p->status = p->status ? p->status : PM_E_K;
	p->created |= (uint32_t)created << w->id;
	if (++p->got == p->want)
		complete(w, p);
}

void pm_fanout_serve(struct pm_worker *w, const struct pm_msg *m, const uint8_t *frame,
		     uint32_t len)
{
	struct pm_request req;
	size_t used;
	struct pm_msg r = { .origin = m->origin, .seq = m->seq, .shard = w->id };
	uint32_t cap = PM_RING_PAYLOAD_MAX - (uint32_t)sizeof(r), n = 0;
	bool created = false;
	enum pm_status st = pm_request_decode(frame, len, &req, &used);
	if (st == PM_OK && req.op == PM_OP_VQUERY && req.part_shards && m->seq == 0) { /* part_only's */
		uint64_t due = w->now_ns + (uint64_t)w->d->cfg.knn_timeout_ms * 1000000u;
		pm_knn_direct_start(w, &req, &m->dest, due);
		return;
	}
	if (st == PM_OK && req.op == PM_OP_VQUERY) { /* its deadline: the origin's, give or take */
		uint64_t due = w->now_ns + (uint64_t)w->d->cfg.knn_timeout_ms * 1000000u;
		pm_knn_part_start(w, &req, m->origin, m->seq, &m->dest, due);
		return;
	}
	if (st == PM_OK)
		n = part_frames(w, &req, &m->dest, w->scratch, cap, &created, &r.work);
	r.created = created;
	if (n == 0) { /* the part does not fit a message: say so in one error frame */
		struct pm_reply e = { .status = PM_E_K, .op = req.op, .id = req.id };
		n = (uint32_t)pm_reply_encode(&e, NULL, w->scratch, cap);
	}
	/* a collection op: once it is on disk here, by the same rule as replies */
	if (pm_wal_must_hold(w, req.op, pm_status_from_wire(w->scratch[PM_FRAME_STATUS_OFFSET])))
		pm_wal_hold_msg(w, m->origin, PM_MSG_FANOUT_REPLY, &r, w->scratch, n);
	else
		pm_post(w, m->origin, PM_MSG_FANOUT_REPLY, &r, w->scratch, n);
}

void pm_fanout_collect(struct pm_worker *w, const struct pm_msg *m, const uint8_t *frames,
		       uint32_t len)
{
	pm_quota_charge_work(w, &m->dest, m->work); /* KNN work, even when too late */
	struct pm_pending *p = find(w, m->seq);
	if (!p)
		return; /* answered already (timed out) */
	if (!p->rolling_back) /* a roll-back's CDROP answers only count */
		merge_part(w, p, m->shard, frames, len);
	if (m->created && m->shard < PM_SHARDS_MAX) /* a bit of the created mask */
		p->created |= 1u << m->shard;
	if (++p->got == p->want)
		complete(w, p);
}

void pm_fanout_expire(struct pm_worker *w)
{
	for (uint32_t i = 0; i < PM_PENDING_MAX; i++) {
		struct pm_pending *p = &w->pending[i];
		if (p->live && w->now_ns > p->deadline_ns) {
			w->stats.fanout_timeouts++;
			/* a roll-back keeps the failure it undoes; a CCREATE a shard
			 * refused reports (and undoes) that, not the timeout */
			if (!p->rolling_back && !(p->op == PM_OP_CCREATE && p->status) &&
			    p->op != PM_OP_VADDB) /* a batch's unanswered items say TIMEOUT */
				p->status = PM_E_TIMEOUT;
			complete(w, p);
		}
	}
}

/* ---------------------------------------------------------------- counters */

/* The CCREATE roll-back counters (INFO dataplane). */
static uint32_t rollback_info(const struct pm_worker *w, char *out, uint32_t cap)
{
	int n = snprintf(out, cap, "fanout_rollbacks:%llu\r\nfanout_rollback_lost:%llu\r\n",
			 (unsigned long long)w->stats.fanout_rollbacks,
			 (unsigned long long)w->stats.fanout_rollback_lost);
	return n < 0 || (uint32_t)n >= cap ? 0 : (uint32_t)n;
}

uint32_t pm_worker_info(const struct pm_worker *w, char *out, uint32_t cap, bool clients)
{
	const struct pm_worker_stats *s = &w->stats;
	int n = snprintf(out, cap,
			 "# Dataplane\r\nworker_cpu:%d\r\nrx_datagrams:%llu\r\nrx_frames:%llu\r\n"
			 "tx_datagrams:%llu\r\ntx_errors:%llu\r\nforwarded_out:%llu\r\n"
			 "forwarded_in:%llu\r\ndropped_malformed:%llu\r\ndropped_ring_full:%llu\r\n"
			 "dropped_tx_full:%llu\r\nfanouts:%llu\r\nfanout_timeouts:%llu\r\n"
			 "tcp_accepted:%llu\r\ntcp_closed:%llu\r\ntcp_refused:%llu\r\n"
			 "tcp_stalled:%llu\r\ntcp_idle_evicted:%llu\r\n",
			 w->cpu, (unsigned long long)s->rx_datagrams, (unsigned long long)s->rx_frames,
			 (unsigned long long)s->tx_datagrams, (unsigned long long)s->tx_errors,
			 (unsigned long long)s->forwarded_out, (unsigned long long)s->forwarded_in,
			 (unsigned long long)s->dropped_malformed,
			 (unsigned long long)s->dropped_ring_full,
			 (unsigned long long)s->dropped_tx_full, (unsigned long long)s->fanouts,
			 (unsigned long long)s->fanout_timeouts, (unsigned long long)s->tcp_accepted,
			 (unsigned long long)s->tcp_closed, (unsigned long long)s->tcp_refused,
			 (unsigned long long)s->tcp_stalled, (unsigned long long)s->tcp_idle_evicted);
	if (n < 0 || (uint32_t)n >= cap)
		return 0;
	uint32_t len = (uint32_t)n;
	n = snprintf(out + len, cap - len, /* issue 14: the TCP bounds (tcp.c) */
		     "tcp_frame_deadline:%llu\r\ntcp_addr_refused:%llu\r\ntcp_buffer_evicted:%llu\r\n"
		     "tcp_ring_waits:%llu\r\ntcp_replies_held:%llu\r\n",
		     (unsigned long long)s->tcp_frame_deadline, (unsigned long long)s->tcp_addr_refused,
		     (unsigned long long)s->tcp_buffer_evicted, (unsigned long long)s->tcp_ring_waits,
		     (unsigned long long)s->tcp_replies_held);
	if (n > 0 && (uint32_t)n < cap - len)
		len += (uint32_t)n;
	for (unsigned b = 0; b < PM_KNN_LATENCY_BUCKETS && len < cap; b++) {
		n = snprintf(out + len, cap - len, "knn_latency_us_lt_%u:%llu\r\n", 1u << b,
			     (unsigned long long)s->knn_latency_us[b]);
		if (n < 0 || (uint32_t)n >= cap - len)
			break;
		len += (uint32_t)n;
	}
	len += rollback_info(w, out + len, cap - len);
	len += pm_access_info_for(w, out + len, cap - len, clients);
	len += pm_auth_info(w, out + len, cap - len);
	len += pm_knn_info(w, out + len, cap - len);
	len += w->be->info(w, out + len, cap - len);
	len += pm_wal_info(w, out + len, cap - len);
	len += pm_repl_info(w, out + len, cap - len);
	return len;
}
