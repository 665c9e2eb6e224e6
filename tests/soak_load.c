/* SPDX-License-Identifier: MIT
 *
 * soak_load.c — one load thread of pomai-soak: its own client (UDP for even
 * threads, TCP for odd ones), its own key space ("s<id>:k<n>" KV keys,
 * "s<id>:f<n>" and "s<id>:h<n>" vectors in its collections "soak<id>f", flat
 * L2, and "soak<id>h", HNSW cosine), and an exact model of all of it.
 *
 * Every reply is checked against the model:
 *  - GET: the value is the one last written (regenerated from key, version
 *    and length), or a miss when the key is absent. A key with a TTL must hit
 *    when the read was answered before set_sent + ttl - margin, must miss when
 *    it was sent after set_acked + ttl + margin, and may do either in between
 *    (a miss there makes the model forget the key). These windows are on
 *    the wall clock, as pomaid's expiry is (an absolute time, CLOCK_REALTIME,
 *    so that it means the same after a restart): a step of the host's clock
 *    (an NTP step; a VM resumed from a snapshot, which once made every key
 *    within seconds of its end expire at once in CI) moves both alike;
 *  - DEL and VDEL: removed says whether the model had the key (either, when
 *    the request was resent: a first attempt may have removed it);
 *  - VGET: the vector and collection written;
 *  - flat KNN: exactly the min(K, live) nearest — every hit a live key at its
 *    model distance, sorted, no duplicates, and no live key left out that is
 *    nearer than the farthest hit (ties either way);
 *  - HNSW KNN: every hit a live key at its model distance, sorted, no
 *    duplicates, at most min(K, live) of them; recall against brute force is
 *    counted, not judged per query.
 * A request that failed transiently (timeout) leaves its key unknown; the
 * thread then deletes the key until the server answers, so that the model is
 * exact again before the next operation.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "soak.h"

enum soak_state { SOAK_ABSENT = 0, SOAK_PRESENT };

struct soak_kv {
	uint32_t ver, len;
	uint8_t state;
	uint64_t ttl_ms, sent_ms, acked_ms; /* the SET's window (wall clock), when ttl_ms != 0 */
};

struct soak_vec {
	float v[SOAK_DIM];
	uint8_t state;
};

/* One completed request, copied out of the callback. */
struct soak_call {
	bool done;
	enum pm_client_status status;
	uint32_t attempts, retry_ms, vlen, dim, coll_len;
	bool removed;
	uint8_t *value;                  /* SOAK_VALUE_BYTES_MAX (GET) */
	float vec[SOAK_DIM];             /* VGET */
	char coll[PM_CLIENT_COLLECTION_NAME_BYTES_MAX];
};

struct soak_load {
	struct soak *s;
	uint32_t id;
	uint64_t rng;
	struct pm_client *c;
	struct soak_kv kv[SOAK_KV_KEYS];
	struct soak_vec vecs[2][SOAK_VEC_SLOTS]; /* [0] flat, [1] HNSW */
	uint32_t live[2];
	char coll[2][PM_CLIENT_COLLECTION_NAME_BYTES_MAX];
	uint8_t *value;                           /* a value being written */
	struct soak_call call;
	uint64_t wall_sent_ms, wall_done_ms; /* the last call's window on the wall clock */
	struct pm_client_hit hits[SOAK_K];
	uint8_t hit_keys[SOAK_K * PM_CLIENT_KEY_BYTES_MAX];
};

/* ---------------------------------------------------------------- helpers */

/* The wall clock in ms: what a TTL is measured on (see the top). */
static uint64_t wall_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static uint64_t rnd(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint32_t below(struct soak_load *l, uint32_t n)
{
	return (uint32_t)(rnd(&l->rng) % n);
}

/* The value of (thread, key, version): len bytes the checker can regenerate. */
static void value_fill(uint8_t *out, uint32_t id, uint32_t key, uint32_t ver, uint32_t len)
{
	uint64_t st = ((uint64_t)id << 48) ^ ((uint64_t)key << 24) ^ ver, w = 0;
	for (uint32_t i = 0; i < len; i++) {
		if ((i & 7u) == 0)
			w = rnd(&st);
		out[i] = (uint8_t)(w >> ((i & 7u) * 8u));
	}
}

/* Sizes: 70 % up to 256 bytes, 25 % up to 4 KB, 5 % up to SOAK_VALUE_BYTES_MAX. */
static uint32_t value_len(struct soak_load *l)
{
	uint32_t p = below(l, 100);
	if (p < 70)
		return 1u + below(l, 256);
	if (p < 95)
		return 1u + below(l, 4096);
	return 1u + below(l, SOAK_VALUE_BYTES_MAX);
}

static int key_of(char *out, size_t cap, uint32_t id, char kind, uint32_t n)
{
	return snprintf(out, cap, "s%u:%c%u", id, kind, n);
}

static void vec_random(struct soak_load *l, float *v)
{
	const uint32_t span = 2u * SOAK_VEC_UNITS_MAX * SOAK_VEC_STEPS_PER_UNIT + 1u;
	bool zero = true;
	for (uint32_t i = 0; i < SOAK_DIM; i++) {
		int q = (int)below(l, span) - SOAK_VEC_UNITS_MAX * SOAK_VEC_STEPS_PER_UNIT;
		v[i] = (float)q / (float)SOAK_VEC_STEPS_PER_UNIT;
		zero = zero && q == 0;
	}
	if (zero)
		v[0] = 1.0f; /* cosine refuses the zero vector */
}

/* The model's distance: L2 squared (flat) or 1 - cos (HNSW). */
static double model_dist(int coll, const float *a, const float *b)
{
	double dot = 0, na = 0, nb = 0, l2 = 0;
	for (uint32_t i = 0; i < SOAK_DIM; i++) {
		double d = (double)a[i] - (double)b[i];
		l2 += d * d;
		dot += (double)a[i] * b[i];
		na += (double)a[i] * a[i];
		nb += (double)b[i] * b[i];
	}
	return coll == 0 ? l2 : 1.0 - dot / (sqrt(na) * sqrt(nb));
}

static bool dist_close(double a, double b)
{
	return fabs(a - b) <= SOAK_DIST_TOL_ABS + SOAK_DIST_TOL_REL * fabs(b);
}

static void record(struct soak *s, bool knn, uint64_t ns)
{
	pthread_mutex_lock(&s->hist_lock);
	pm_hist_add(knn ? &s->lat_knn : &s->lat_kv, ns);
	pthread_mutex_unlock(&s->hist_lock);
}

static bool transient(enum pm_client_status st)
{
	return st == PM_CLIENT_E_TIMEOUT || st == PM_CLIENT_E_BUSY ||
	       st == PM_CLIENT_E_SERVER_TIMEOUT || st == PM_CLIENT_E_CONNECTION;
}

/* ---------------------------------------------------------------- one request */

static void on_done(void *arg, const struct pm_client_result *r)
{
	struct soak_call *c = arg;
	c->done = true;
	c->status = r->status;
	c->attempts = r->attempts;
	c->retry_ms = r->retry_ms;
	c->removed = r->removed;
	c->vlen = 0;
	c->dim = 0;
	if (r->status != PM_CLIENT_OK)
		return;
	if (r->op == PM_CLIENT_GET && r->vlen <= SOAK_VALUE_BYTES_MAX) {
		memcpy(c->value, r->value, r->vlen);
		c->vlen = r->vlen;
	} else if (r->op == PM_CLIENT_GET) {
		c->vlen = UINT32_MAX; /* longer than anything written */
	}
	if (r->op == PM_CLIENT_VGET) {
		c->dim = r->dim;
		if (r->dim == SOAK_DIM)
			memcpy(c->vec, r->vec, sizeof(c->vec));
		c->coll_len = r->collection_len < sizeof(c->coll) ? r->collection_len : 0;
		memcpy(c->coll, r->collection, c->coll_len);
	}
}

/* Send req and wait for its completion; THROTTLED is judged against the
 * quota windows, backed off and retried. The latency of the answered
 * attempt is recorded. *sent_ms / *done_ms bound when the server acted
 * (the test's monotonic clock); l->wall_sent_ms / wall_done_ms the same on
 * the wall clock. */
static enum pm_client_status call(struct soak_load *l, struct pm_client_req *req, bool knn,
				  uint64_t *sent_ms, uint64_t *done_ms)
{
	struct soak *s = l->s;
	req->cb = on_done;
	req->arg = &l->call;
	for (;;) {
		l->call.done = false;
		uint64_t t0 = proc_now_ns();
		l->wall_sent_ms = wall_ms();
		enum pm_client_status st = pm_client_submit(l->c, req, NULL);
		if (st != PM_CLIENT_OK) {
			soak_fail(s, "thread %u: submit op %d: %s", l->id, (int)req->op,
				  pm_client_status_name(st));
			return st;
		}
		while (!l->call.done)
			pm_client_poll(l->c, SOAK_CLIENT_TIMEOUT_MS);
		uint64_t t1 = proc_now_ns();
		l->wall_done_ms = wall_ms() + 1u;
		*sent_ms = t0 / 1000000u;
		*done_ms = t1 / 1000000u + 1u;
		atomic_fetch_add(&s->n.ops, 1);
		if (l->call.status != PM_CLIENT_E_THROTTLED) {
			record(s, knn, t1 - t0);
			if (transient(l->call.status)) {
				atomic_fetch_add(&s->n.transient, 1);
				atomic_fetch_add(&s->n.by_status[l->call.status], 1);
			}
			return l->call.status;
		}
		atomic_fetch_add(&s->n.throttled, 1);
		if (!soak_throttle_ok(s, *sent_ms, *done_ms))
			soak_fail(s, "thread %u: THROTTLED outside any tight-quota window (op %d)",
				  l->id, (int)req->op);
		uint32_t ms = l->call.retry_ms;
		ms = ms == 0 ? 1u : ms > SOAK_BACKOFF_MS_MAX ? SOAK_BACKOFF_MS_MAX : ms;
		proc_pause_ms(ms); /* the protocol's back-off, not synchronisation */
		if (atomic_load(&s->stop))
			return PM_CLIENT_E_THROTTLED;
	}
}

/* Delete key (KV: coll < 0; else a vector) until the server answers, so that
 * the model (absent) is exact again. */
static void repair(struct soak_load *l, int coll, uint32_t n)
{
	static const char kinds[] = { 'f', 'h' };
	char key[32];
	int klen = key_of(key, sizeof(key), l->id, coll < 0 ? 'k' : kinds[coll], n);
	struct pm_client_req req = { .op = coll < 0 ? PM_CLIENT_DEL : PM_CLIENT_VDEL,
				     .key = key, .klen = (uint32_t)klen };
	uint64_t a, b;
	uint32_t backoff = SOAK_REPAIR_BACKOFF_MS;
	for (uint32_t i = 0; i < SOAK_REPAIR_TRIES && !atomic_load(&l->s->stop); i++) {
		enum pm_client_status st = call(l, &req, false, &a, &b);
		if (st == PM_CLIENT_OK)
			break;
		if (!transient(st) && st != PM_CLIENT_E_THROTTLED) {
			soak_fail(l->s, "thread %u: repair of %s: %s", l->id, key,
				  pm_client_status_name(st));
			break;
		}
		if (i + 1 == SOAK_REPAIR_TRIES)
			soak_fail(l->s, "thread %u: %s: no answer after %u repairs (last %s)", l->id,
				  key, i + 1, pm_client_status_name(st));
		proc_pause_ms(backoff); /* a back-off, not synchronisation */
		backoff = backoff * 2u < SOAK_BACKOFF_MS_MAX ? backoff * 2u : SOAK_BACKOFF_MS_MAX;
	}
	if (coll < 0) {
		l->kv[n].state = SOAK_ABSENT;
	} else if (l->vecs[coll][n].state == SOAK_PRESENT) {
		l->vecs[coll][n].state = SOAK_ABSENT;
		l->live[coll]--;
	}
}

/* ---------------------------------------------------------------- KV */

static void op_set(struct soak_load *l)
{
	uint32_t n = below(l, SOAK_KV_KEYS), len = value_len(l);
	struct soak_kv *e = &l->kv[n];
	uint32_t ver = e->ver + 1u;
	uint64_t ttl = below(l, 3) == 0 ? SOAK_TTL_MS_MIN + below(l, SOAK_TTL_MS_MAX - SOAK_TTL_MS_MIN)
				       : 0;
	char key[32];
	int klen = key_of(key, sizeof(key), l->id, 'k', n);
	value_fill(l->value, l->id, n, ver, len);
	struct pm_client_req req = { .op = PM_CLIENT_SET, .key = key, .klen = (uint32_t)klen,
				     .value = l->value, .vlen = len, .ttl_ms = ttl };
	uint64_t sent, done;
	enum pm_client_status st = call(l, &req, false, &sent, &done);
	if (st == PM_CLIENT_OK) {
		*e = (struct soak_kv){ .ver = ver, .len = len, .state = SOAK_PRESENT, .ttl_ms = ttl,
				       .sent_ms = l->wall_sent_ms, .acked_ms = l->wall_done_ms };
	} else if (transient(st) || st == PM_CLIENT_E_THROTTLED) {
		e->ver = ver; /* the next write must not reuse a version the server may hold */
		repair(l, -1, n);
	} else {
		soak_fail(l->s, "thread %u: SET %s: %s", l->id, key, pm_client_status_name(st));
	}
}

/* What a read of e, sent at sent and answered at done, may see:
 * 1 must hit, 0 must miss, -1 either. */
static int kv_expect(const struct soak_kv *e, uint64_t sent, uint64_t done)
{
	if (e->state != SOAK_PRESENT)
		return 0;
	if (e->ttl_ms == 0)
		return 1;
	if (done + SOAK_TTL_MARGIN_MS < e->sent_ms + e->ttl_ms)
		return 1;
	if (sent > e->acked_ms + e->ttl_ms + SOAK_TTL_MARGIN_MS)
		return 0;
	return -1;
}

static void op_get(struct soak_load *l)
{
	uint32_t n = below(l, SOAK_KV_KEYS);
	struct soak_kv *e = &l->kv[n];
	char key[32];
	int klen = key_of(key, sizeof(key), l->id, 'k', n);
	struct pm_client_req req = { .op = PM_CLIENT_GET, .key = key, .klen = (uint32_t)klen };
	uint64_t sent, done;
	enum pm_client_status st = call(l, &req, false, &sent, &done);
	if (transient(st) || st == PM_CLIENT_E_THROTTLED)
		return; /* a read changes nothing */
	sent = l->wall_sent_ms; /* TTLs are judged on the wall clock */
	done = l->wall_done_ms;
	int want = kv_expect(e, sent, done);
	if (st == PM_CLIENT_NOT_FOUND && want != 1) {
		e->state = SOAK_ABSENT; /* expired: it stays so */
		return;
	}
	if (st != PM_CLIENT_OK || want == 0) {
		soak_fail(l->s, "thread %u: GET %s: %s, model %s (ttl %llu, set %llu..%llu, get %llu..%llu)",
			  l->id, key, pm_client_status_name(st),
			  want == 0 ? "absent" : want == 1 ? "present" : "either",
			  (unsigned long long)e->ttl_ms, (unsigned long long)e->sent_ms,
			  (unsigned long long)e->acked_ms, (unsigned long long)sent,
			  (unsigned long long)done);
		return;
	}
	value_fill(l->value, l->id, n, e->ver, e->len);
	if (l->call.vlen != e->len || memcmp(l->call.value, l->value, e->len) != 0)
		soak_fail(l->s, "thread %u: GET %s: %u bytes, not version %u of %u bytes", l->id, key,
			  l->call.vlen, e->ver, e->len);
}

static void op_del(struct soak_load *l)
{
	uint32_t n = below(l, SOAK_KV_KEYS);
	struct soak_kv *e = &l->kv[n];
	char key[32];
	int klen = key_of(key, sizeof(key), l->id, 'k', n);
	struct pm_client_req req = { .op = PM_CLIENT_DEL, .key = key, .klen = (uint32_t)klen };
	uint64_t sent, done;
	enum pm_client_status st = call(l, &req, false, &sent, &done);
	if (transient(st) || st == PM_CLIENT_E_THROTTLED) {
		repair(l, -1, n);
		return;
	}
	int want = kv_expect(e, l->wall_sent_ms, l->wall_done_ms);
	e->state = SOAK_ABSENT;
	if (st != PM_CLIENT_OK) {
		soak_fail(l->s, "thread %u: DEL %s: %s", l->id, key, pm_client_status_name(st));
		return;
	}
	if (want >= 0 && l->call.attempts == 1 && l->call.removed != (want == 1))
		soak_fail(l->s, "thread %u: DEL %s: removed %d, model %s", l->id, key,
			  (int)l->call.removed, want ? "present" : "absent");
}

/* ---------------------------------------------------------------- vectors */

static const char vec_kind[2] = { 'f', 'h' };

static void op_vadd(struct soak_load *l, int coll)
{
	uint32_t n = below(l, SOAK_VEC_SLOTS);
	struct soak_vec *e = &l->vecs[coll][n];
	float v[SOAK_DIM];
	vec_random(l, v);
	char key[32];
	int klen = key_of(key, sizeof(key), l->id, vec_kind[coll], n);
	struct pm_client_req req = { .op = PM_CLIENT_VADD, .key = key, .klen = (uint32_t)klen,
				     .vec = v, .dim = SOAK_DIM, .name = l->coll[coll],
				     .name_len = (uint32_t)strlen(l->coll[coll]) };
	uint64_t sent, done;
	enum pm_client_status st = call(l, &req, false, &sent, &done);
	if (st == PM_CLIENT_OK) {
		memcpy(e->v, v, sizeof(v));
		if (e->state != SOAK_PRESENT)
			l->live[coll]++;
		e->state = SOAK_PRESENT;
	} else if (transient(st) || st == PM_CLIENT_E_THROTTLED) {
		repair(l, coll, n);
	} else {
		soak_fail(l->s, "thread %u: VADD %s: %s", l->id, key, pm_client_status_name(st));
	}
}

static void op_vdel(struct soak_load *l, int coll)
{
	uint32_t n = below(l, SOAK_VEC_SLOTS);
	struct soak_vec *e = &l->vecs[coll][n];
	char key[32];
	int klen = key_of(key, sizeof(key), l->id, vec_kind[coll], n);
	struct pm_client_req req = { .op = PM_CLIENT_VDEL, .key = key, .klen = (uint32_t)klen };
	uint64_t sent, done;
	enum pm_client_status st = call(l, &req, false, &sent, &done);
	if (transient(st) || st == PM_CLIENT_E_THROTTLED) {
		repair(l, coll, n);
		return;
	}
	bool had = e->state == SOAK_PRESENT;
	if (had)
		l->live[coll]--;
	e->state = SOAK_ABSENT;
	if (st != PM_CLIENT_OK)
		soak_fail(l->s, "thread %u: VDEL %s: %s", l->id, key, pm_client_status_name(st));
	else if (l->call.attempts == 1 && l->call.removed != had)
		soak_fail(l->s, "thread %u: VDEL %s: removed %d, model %s", l->id, key,
			  (int)l->call.removed, had ? "present" : "absent");
}

static void op_vget(struct soak_load *l, int coll)
{
	uint32_t n = below(l, SOAK_VEC_SLOTS);
	const struct soak_vec *e = &l->vecs[coll][n];
	char key[32];
	int klen = key_of(key, sizeof(key), l->id, vec_kind[coll], n);
	struct pm_client_req req = { .op = PM_CLIENT_VGET, .key = key, .klen = (uint32_t)klen };
	uint64_t sent, done;
	enum pm_client_status st = call(l, &req, false, &sent, &done);
	if (transient(st) || st == PM_CLIENT_E_THROTTLED)
		return;
	size_t nlen = strlen(l->coll[coll]);
	if (e->state != SOAK_PRESENT) {
		if (st != PM_CLIENT_NOT_FOUND)
			soak_fail(l->s, "thread %u: VGET %s: %s, model absent", l->id, key,
				  pm_client_status_name(st));
	} else if (st != PM_CLIENT_OK) {
		soak_fail(l->s, "thread %u: VGET %s: %s, model present", l->id, key,
			  pm_client_status_name(st));
	} else if (l->call.dim != SOAK_DIM || memcmp(l->call.vec, e->v, sizeof(e->v)) != 0 ||
		   l->call.coll_len != nlen || memcmp(l->call.coll, l->coll[coll], nlen) != 0) {
		soak_fail(l->s, "thread %u: VGET %s: dim %u or vector or collection differ", l->id,
			  key, l->call.dim);
	}
}

/* ---------------------------------------------------------------- KNN */

/* The slot a hit's key names in collection coll of this thread; -1 if none. */
static int hit_slot(const struct soak_load *l, int coll, const struct pm_client_hit *h)
{
	char want[16], key[32];
	int wlen = snprintf(want, sizeof(want), "s%u:%c", l->id, vec_kind[coll]);
	if (h->klen <= (uint32_t)wlen || h->klen >= sizeof(key))
		return -1;
	memcpy(key, h->key, h->klen);
	key[h->klen] = 0;
	if (memcmp(key, want, (size_t)wlen) != 0)
		return -1;
	char *end;
	unsigned long n = strtoul(key + wlen, &end, 10);
	return *end == 0 && n < SOAK_VEC_SLOTS ? (int)n : -1;
}

/* Every hit a live key of ours, at its model distance, sorted, once each.
 * slots[] gets the hits' slots; false (and a failure recorded) otherwise. */
static bool hits_valid(struct soak_load *l, int coll, const float *q,
		       const struct pm_client_knn_result *r, int *slots)
{
	for (uint32_t i = 0; i < r->count; i++) {
		const struct pm_client_hit *h = &r->hits[i];
		int n = hit_slot(l, coll, h);
		const char *bad = NULL;
		if (n < 0 || l->vecs[coll][n].state != SOAK_PRESENT)
			bad = "not a live key of the model";
		else if (!dist_close(h->dist, model_dist(coll, q, l->vecs[coll][n].v)))
			bad = "distance differs from the model's";
		else if (i > 0 && (double)h->dist < (double)r->hits[i - 1].dist - SOAK_DIST_TOL_ABS)
			bad = "hits not sorted";
		for (uint32_t j = 0; j < i && !bad; j++)
			if (slots[j] == n)
				bad = "a key twice";
		if (bad) {
			soak_fail(l->s, "thread %u: KNN %s hit %u (%.*s, %g): %s", l->id, l->coll[coll],
				  i, (int)h->klen, (const char *)h->key, (double)h->dist, bad);
			return false;
		}
		slots[i] = n;
	}
	return true;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The k-th smallest model distance from q over live vectors (k <= live). */
static double kth_dist(const struct soak_load *l, int coll, const float *q, uint32_t k)
{
	static _Thread_local double d[SOAK_VEC_SLOTS];
	uint32_t m = 0;
	for (uint32_t i = 0; i < SOAK_VEC_SLOTS; i++)
		if (l->vecs[coll][i].state == SOAK_PRESENT)
			d[m++] = model_dist(coll, q, l->vecs[coll][i].v);
	qsort(d, m, sizeof(d[0]), cmp_double);
	return d[k - 1];
}

/* Flat: exactly the nearest; nothing live left out nearer than the farthest hit. */
static void check_exact(struct soak_load *l, const float *q, const struct pm_client_knn_result *r,
			const int *slots)
{
	uint32_t want = l->live[0] < SOAK_K ? l->live[0] : SOAK_K;
	if (r->count != want) {
		soak_fail(l->s, "thread %u: exact KNN: %u hits, model has %u live (k %u)", l->id,
			  r->count, l->live[0], SOAK_K);
		return;
	}
	double worst = 0;
	for (uint32_t i = 0; i < r->count; i++)
		worst = fmax(worst, model_dist(0, q, l->vecs[0][slots[i]].v));
	for (uint32_t n = 0; n < SOAK_VEC_SLOTS; n++) {
		if (l->vecs[0][n].state != SOAK_PRESENT)
			continue;
		bool hit = false;
		for (uint32_t i = 0; i < r->count && !hit; i++)
			hit = slots[i] == (int)n;
		double d = model_dist(0, q, l->vecs[0][n].v);
		if (!hit && d < worst - SOAK_DIST_TOL_ABS) {
			soak_fail(l->s, "thread %u: exact KNN left out s%u:f%u at %g, nearer than %g",
				  l->id, l->id, n, d, worst);
			return;
		}
	}
}

static void check_hnsw(struct soak_load *l, const float *q, const struct pm_client_knn_result *r)
{
	uint32_t want = l->live[1] < SOAK_K ? l->live[1] : SOAK_K;
	if (r->count > want) {
		soak_fail(l->s, "thread %u: HNSW KNN: %u hits, model has %u live", l->id, r->count,
			  l->live[1]);
		return;
	}
	if (want == 0)
		return;
	double kth = kth_dist(l, 1, q, want);
	uint32_t good = 0;
	for (uint32_t i = 0; i < r->count; i++)
		good += (double)r->hits[i].dist <= kth + SOAK_DIST_TOL_ABS;
	atomic_fetch_add(&l->s->n.knn_hnsw, 1);
	atomic_fetch_add(&l->s->n.recall_hits, good);
	atomic_fetch_add(&l->s->n.recall_want, want);
}

static void op_knn(struct soak_load *l, int coll)
{
	float q[SOAK_DIM];
	int slots[SOAK_K];
	vec_random(l, q);
	struct pm_client_knn_result r = { .hits = l->hits, .hits_cap = SOAK_K, .keys = l->hit_keys,
					  .keys_cap = sizeof(l->hit_keys) };
	struct pm_client_req req = { .op = PM_CLIENT_KNN, .vec = q, .dim = SOAK_DIM,
				     .name = l->coll[coll], .name_len = (uint32_t)strlen(l->coll[coll]),
				     .k = SOAK_K, .ef = coll ? SOAK_HNSW_EF : 0, .exact = coll == 0,
				     .knn = &r };
	uint64_t sent, done;
	enum pm_client_status st = call(l, &req, true, &sent, &done);
	if (transient(st) || st == PM_CLIENT_E_THROTTLED)
		return;
	if (st == PM_CLIENT_NOT_FOUND && l->live[coll] == 0)
		return;
	if (st != PM_CLIENT_OK) {
		soak_fail(l->s, "thread %u: KNN %s: %s (%u live)", l->id, l->coll[coll],
			  pm_client_status_name(st), l->live[coll]);
		return;
	}
	if (!hits_valid(l, coll, q, &r, slots))
		return;
	if (coll == 0)
		check_exact(l, q, &r, slots);
	else
		check_hnsw(l, q, &r);
}

/* ---------------------------------------------------------------- the thread */

/* The mix, in percent of operations (cumulative bounds below). Vectors are
 * added 8:3 against deletes, so a collection settles near 8/11 full. */
enum soak_op { OP_GET, OP_SET, OP_DEL, OP_VADD_F, OP_VADD_H, OP_VDEL_F, OP_VDEL_H, OP_VGET_F,
	       OP_VGET_H, OP_KNN_F, OP_KNN_H, OP_COUNT };
static const uint8_t mix_pct[OP_COUNT] = { 34, 22, 6, 8, 8, 3, 3, 2, 2, 6, 6 };
_Static_assert(34 + 22 + 6 + 8 + 8 + 3 + 3 + 2 + 2 + 6 + 6 == 100, "the mix is whole");

static void one_op(struct soak_load *l)
{
	uint32_t p = below(l, 100), op = 0;
	while (op + 1 < OP_COUNT && p >= mix_pct[op])
		p -= mix_pct[op++];
	switch ((enum soak_op)op) {
	case OP_GET: op_get(l); break;
	case OP_SET: op_set(l); break;
	case OP_DEL: op_del(l); break;
	case OP_VADD_F: op_vadd(l, 0); break;
	case OP_VADD_H: op_vadd(l, 1); break;
	case OP_VDEL_F: op_vdel(l, 0); break;
	case OP_VDEL_H: op_vdel(l, 1); break;
	case OP_VGET_F: op_vget(l, 0); break;
	case OP_VGET_H: op_vget(l, 1); break;
	case OP_KNN_F: op_knn(l, 0); break;
	case OP_KNN_H: op_knn(l, 1); break;
	case OP_COUNT: break;
	}
}

void *soak_load_thread(void *arg)
{
	struct soak_load *l = arg;
	while (!atomic_load(&l->s->stop))
		one_op(l);
	pm_client_drain(l->c);
	return NULL;
}

struct soak_load *soak_load_new(struct soak *s, uint32_t id)
{
	struct soak_load *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->s = s;
	l->id = id;
	l->rng = 0x50A4ull * (id + 1u) ^ (uint64_t)proc_now_ns();
	l->value = malloc(SOAK_VALUE_BYTES_MAX);
	l->call.value = malloc(SOAK_VALUE_BYTES_MAX);
	snprintf(l->coll[0], sizeof(l->coll[0]), "soak%uf", id);
	snprintf(l->coll[1], sizeof(l->coll[1]), "soak%uh", id);
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.base_port = s->o.base_port;
	cfg.shards = s->o.shards;
	cfg.transport = id % 2u ? PM_CLIENT_TCP : PM_CLIENT_UDP;
	cfg.timeout_ms = SOAK_CLIENT_TIMEOUT_MS;
	cfg.retries = SOAK_CLIENT_RETRIES;
	cfg.max_in_flight = 4u; /* one request at a time, a few slots for safety */
	if (s->o.auth) { /* every frame signed (issue 19) */
		cfg.user = SOAK_AUTH_USER;
		memcpy(cfg.key, s->o.key, sizeof(cfg.key));
	}
	enum pm_client_status st = PM_CLIENT_E_ALLOC;
	if (l->value && l->call.value)
		st = pm_client_open(&cfg, &l->c);
	if (st != PM_CLIENT_OK) {
		fprintf(stderr, "pomai-soak: thread %u: client: %s\n", id, pm_client_status_name(st));
		soak_load_free(l);
		return NULL;
	}
	return l;
}

void soak_load_free(struct soak_load *l)
{
	if (!l)
		return;
	if (l->c) {
		struct pm_client_stats st;
		pm_client_stats(l->c, &st);
		printf("client %u (%s): %" PRIu64 " requests, %" PRIu64 " resends, %" PRIu64
		       " timeouts, %" PRIu64 " stale replies\n", l->id, l->id % 2u ? "tcp" : "udp",
		       st.requests, st.resends, st.timeouts, st.stale);
		pm_client_close(l->c);
	}
	free(l->value);
	free(l->call.value);
	free(l);
}

int soak_load_setup(struct soak_load *l)
{
	struct pm_client_coll_params flat = { .dim = SOAK_DIM, .metric = PM_CLIENT_L2,
					      .index = PM_CLIENT_FLAT };
	struct pm_client_coll_params hnsw = { .dim = SOAK_DIM, .metric = PM_CLIENT_COSINE,
					      .index = PM_CLIENT_HNSW };
	enum pm_client_status a = pm_client_collection_create(l->c, l->coll[0], &flat);
	enum pm_client_status b = pm_client_collection_create(l->c, l->coll[1], &hnsw);
	if (a == PM_CLIENT_OK && b == PM_CLIENT_OK)
		return 0;
	fprintf(stderr, "pomai-soak: thread %u: create collections: %s, %s\n", l->id,
		pm_client_status_name(a), pm_client_status_name(b));
	return -1;
}
