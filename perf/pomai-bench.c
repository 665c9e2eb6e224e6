/* SPDX-License-Identifier: MIT
 *
 * pomai-bench.c — a load generator for pomaid, over libpomai.
 *
 * KV mode (the default). --threads T threads, each with its own client (one UDP
 * socket, one TCP connection, or with --memif one DPDK memif port: kernel
 * bypassed end to end, libpomai_memif, one thread), keep --depth D requests in flight through the
 * pipelined API (pm_client_submit, then pm_client_poll runs the callbacks). By
 * default the window slides: a completed request is replaced at once. --batch
 * instead sends D requests, waits for all D replies, then sends the next D —
 * what redis-benchmark's -P does. Keys are "key:" and the key number in 12
 * decimal digits (redis-benchmark -r writes key:__rand_int__ the same way),
 * padded with 'k' to --key-size; key numbers are uniform in [0, --keys) from a
 * seeded SplitMix64 per thread; each request is a GET or a SET by the --ratio
 * weights. A key's value is a function of its number alone (SplitMix64 bytes
 * seeded with it), so every SET of a key writes the same bytes whoever sends
 * it, and every GET reply is compared with them byte for byte: a wrong value
 * is counted as such, not taken on trust. --preload SETs every key once first.
 *
 * KNN mode (--knn). The 60,000 Fashion-MNIST training images (784 raw pixel
 * values as floats) go into a named HNSW collection (L2, M 16, ef_construction
 * 200) by pipelined VADD of keys "fm:<row>" — unless a collection of that name
 * with these parameters and 60,000 vectors exists, which is then reused
 * (--base N: the first N images only, for a quick check). The first --queries
 * test images are asked with k = 10: first once each with the server's exact
 * (flat) search, which is the ground truth (compared with bench_hnsw's cached
 * local brute force, perf/gtcache.h, when that file exists), then at each --ef
 * for the run's duration, cycling through the queries, with recall@k of every
 * answer against the truth. Every KNN answer is checked: k
 * hits, keys of the collection, distances ascending.
 *
 * Timing. A run is a warm-up (--warmup s: requests issued, not counted), then
 * --duration seconds or --requests requests (over all threads). A request
 * counts if it was submitted after the warm-up and, in a timed run, completed
 * before the end. ops/s = counted completions / measured seconds (in a
 * --requests run: up to the last counted completion). A request's latency runs
 * from just before pm_client_submit to its callback; it is recorded for every
 * reply (right, wrong, miss or server error), not for the client's own
 * failures (timeout, connection).
 *
 * Latency histogram: log-linear, the layout of HdrHistogram. Values below
 * 2^PB_HIST_SUB_BITS ns have a bucket each; above, every power-of-two range
 * [2^e, 2^(e+1)) ns is cut into 2^PB_HIST_SUB_BITS equal buckets, so a bucket
 * is at most 1/64 of its lower bound wide. A percentile is reported as the
 * midpoint of the bucket holding it: relative error at most 1/128 (0.8 %).
 * Latencies from 2^PB_HIST_LOG2_MAX ns (275 s) up share the last bucket; the
 * maximum is kept exactly.
 *
 * Output: benchutil's header (command, date, machine), a few human lines per
 * phase, and one "RESULT key=value ..." line per phase for scripts
 * (perf/redis_vs_pomai.sh). Exit status 0; 2 for a usage or set-up error; 3 if
 * any reply was wrong (or a GET missed after --preload / with --expect-hits).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "fmnist.h"
#include "gtcache.h"
#include "pomai.h"
#ifdef POMAI_BENCH_MEMIF
#include "pomai_memif.h"
#endif

/* ---------------------------------------------------------------- limits */

#define PB_THREADS_MAX 64u
#define PB_DEPTH_MAX 4096u /* requests in flight per thread */
#define PB_DEPTH_DEFAULT 1u
#define PB_KEYS_DEFAULT 1000000u
#define PB_KEY_PREFIX "key:"
#define PB_KEY_DIGITS 12u
/* The shortest key: the prefix and the digits, as redis-benchmark's. */
#define PB_KEY_BYTES_MIN 16u
#define PB_VALUE_BYTES_DEFAULT 32u
/* Frame bytes beyond key and value (header, fields), for sizing frame_bytes. */
#define PB_FRAME_OVERHEAD_BYTES 64u
#define PB_DURATION_MS_DEFAULT 5000u
#define PB_WARMUP_MS_DEFAULT 1000u
#define PB_DURATION_MS_MAX 3600000u
#define PB_SEED_DEFAULT 42u
/* pm_client_poll's longest wait when nothing completed (deadlines cut it). */
#define PB_POLL_WAIT_MS 10u
/* Value bytes are SplitMix64 output seeded with the key number xor this. */
#define PB_VALUE_SALT UINT64_C(0x706f6d6169763031)
#define PB_ERR_BYTES 512u
#define PB_NS_PER_MS UINT64_C(1000000)
/* Whether --memif is available (the build found DPDK). */
#ifdef POMAI_BENCH_MEMIF
#define PB_MEMIF 1
#define PB_MEMIF_BUILT "built in"
#else
#define PB_MEMIF 0
#define PB_MEMIF_BUILT "not in this build: no DPDK"
#endif

_Static_assert(sizeof(PB_KEY_PREFIX) - 1 + PB_KEY_DIGITS == PB_KEY_BYTES_MIN, "key layout");

/* KNN mode. */
#define PB_KNN_COLLECTION_DEFAULT "pomai-bench-fmnist"
#define PB_KNN_KEY_PREFIX "fm:"
#define PB_KNN_K_DEFAULT 10u
#define PB_KNN_M 16u
#define PB_KNN_EF_CONSTRUCTION 200u
#define PB_KNN_EF_DEFAULT 80u
#define PB_KNN_EFS_MAX 16u
#define PB_KNN_QUERIES_DEFAULT 1000u
#define PB_KNN_QUERIES_MAX 10000u
/* VADDs in flight per thread while loading (each is ~3.2 KB, one datagram). */
#define PB_KNN_LOAD_DEPTH 32u

/* Latency histogram (see the top of the file). */
#define PB_HIST_SUB_BITS 6u
#define PB_HIST_LOG2_MAX 38u
#define PB_HIST_BUCKETS ((PB_HIST_LOG2_MAX - PB_HIST_SUB_BITS + 1u) << PB_HIST_SUB_BITS)

/* ---------------------------------------------------------------- types */

enum pb_op { OP_GET, OP_SET, OP_VADD, OP_KNN, OP_COUNT };
static const char *const op_names[OP_COUNT] = { "GET", "SET", "VADD", "KNN" };

enum phase_kind {
	PH_PRELOAD, /* SET every key once */
	PH_KV,      /* random GET / SET */
	PH_LOAD,    /* VADD every training image once */
	PH_TRUTH,   /* every query once, exact */
	PH_KNN,     /* queries at one ef, cycling */
};

struct opts {
	struct pm_client_config cfg;
	uint32_t threads, depth, keys, key_bytes, value_bytes, get_w, set_w, seed;
	uint32_t pipelines; /* --batch: the depth as this many pipelines (redis-benchmark -c) */
	uint32_t duration_ms, warmup_ms, requests;
	uint32_t cpus[PB_THREADS_MAX], ncpus;
	bool batch, preload, preload_only, expect_hits;
	bool knn, reload;
	const char *memif_eal, *memif_ip, *memif_port; /* --memif: EAL args, our address */
	uint32_t memif_mtu;
	const char *dir, *collection;
	uint32_t base, queries, k, efs[PB_KNN_EFS_MAX], nefs;
};

struct phase {
	enum phase_kind kind;
	const char *label;
	uint32_t items;       /* sequence phases: items, each once; 0 otherwise */
	uint32_t requests;    /* counted requests over all threads; 0: by time */
	uint64_t warmup_ns, duration_ns;
	uint32_t depth;
	bool batch;
	uint32_t ef;
};

struct tally {
	uint64_t right[OP_COUNT];
	uint64_t wrong;    /* a GET value or KNN answer other than it must be */
	uint64_t miss;     /* GET NOT_FOUND */
	uint64_t timeouts; /* E_TIMEOUT */
	uint64_t errors;   /* every other status */
	uint64_t status[PM_CLIENT_STATUS_COUNT];
	double recall_sum;
	uint64_t recall_n;
	uint64_t max_ns[OP_COUNT];
	uint64_t hist[OP_COUNT][PB_HIST_BUCKETS];
};

struct worker;

/* One request in flight. */
struct pending {
	struct worker *w;
	uint64_t t0;
	uint32_t item; /* key number, image row or query index */
	uint32_t idx;  /* own index in the worker's table */
	uint8_t op;    /* enum pb_op */
	bool counted;
	struct pm_client_knn_result knn;
};

struct bench;

struct worker {
	struct bench *b;
	uint32_t id;
	struct pm_client *c;
	pthread_t thread;
	struct bu_rng rng;
	struct pending *pend; /* depth_max entries */
	uint32_t *free_idx, nfree;
	uint32_t *gdone;      /* --batch: replies each pipeline has back (gsize: all) */
	uint32_t gsize;       /* --batch: requests per pipeline (0: not batched) */
	uint32_t next_item;   /* sequence phases: next item (stride: threads) */
	uint32_t issued, quota;
	uint64_t measure_ns, end_ns, last_ns;
	uint8_t key[PM_CLIENT_KEY_BYTES_MAX];
	uint8_t *val, *expect; /* value_bytes each */
	struct pm_client_stats st0;
	struct tally *t;
};

struct bench {
	struct opts o;
	struct phase ph;
	struct worker *w;
	uint32_t depth_max;
	pthread_barrier_t barrier;
	struct fmnist train, test;
	uint32_t nq;
	uint32_t *gt_ids; /* nq x k, from the exact phase */
	float *gt_dist;
	bool failed;      /* a wrong answer somewhere: exit 3 */
};

/* ---------------------------------------------------------------- histogram */

static uint32_t hist_index(uint64_t ns)
{
	if (ns >= (UINT64_C(1) << PB_HIST_LOG2_MAX))
		return PB_HIST_BUCKETS - 1u;
	if (ns < (UINT64_C(1) << PB_HIST_SUB_BITS))
		return (uint32_t)ns;
	uint32_t shift = 63u - (uint32_t)__builtin_clzll(ns) - PB_HIST_SUB_BITS;
	return (shift << PB_HIST_SUB_BITS) + (uint32_t)(ns >> shift);
}

/* Midpoint of bucket i, in ns. */
static double hist_value(uint32_t i)
{
	uint32_t shift = i < (2u << PB_HIST_SUB_BITS) ? 0u : (i >> PB_HIST_SUB_BITS) - 1u;
	uint64_t lo = (uint64_t)(i - (shift << PB_HIST_SUB_BITS)) << shift;
	return (double)lo + (double)((UINT64_C(1) << shift) - 1u) / 2.0;
}

static uint64_t hist_count(const uint64_t *h)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < PB_HIST_BUCKETS; i++)
		n += h[i];
	return n;
}

/* The q-quantile (0 < q <= 1) in ns; 0 for an empty histogram. */
static double hist_quantile(const uint64_t *h, double q)
{
	uint64_t n = hist_count(h), rank = (uint64_t)(q * (double)n + 0.999999), seen = 0;
	if (n == 0)
		return 0;
	for (uint32_t i = 0; i < PB_HIST_BUCKETS; i++)
		if ((seen += h[i]) >= (rank ? rank : 1))
			return hist_value(i);
	return hist_value(PB_HIST_BUCKETS - 1u);
}

/* ---------------------------------------------------------------- keys, values */

static void key_of(uint8_t *out, uint32_t n, uint32_t len)
{
	memcpy(out, PB_KEY_PREFIX, sizeof(PB_KEY_PREFIX) - 1);
	for (uint32_t i = PB_KEY_BYTES_MIN; i-- > sizeof(PB_KEY_PREFIX) - 1;) {
		out[i] = (uint8_t)('0' + n % 10u);
		n /= 10u;
	}
	memset(out + PB_KEY_BYTES_MIN, 'k', len - PB_KEY_BYTES_MIN);
}

static void value_of(uint8_t *out, uint32_t n, uint32_t len)
{
	struct bu_rng r = { .state = PB_VALUE_SALT ^ n };
	for (uint32_t off = 0; off < len; off += 8) {
		uint64_t x = bu_rng_next(&r);
		memcpy(out + off, &x, len - off < 8 ? len - off : 8);
	}
}

/* "fm:<row>" -> row; false if the key is not one of ours. */
static bool knn_row_of(const uint8_t *key, uint32_t klen, uint32_t rows, uint32_t *row)
{
	const uint32_t plen = sizeof(PB_KNN_KEY_PREFIX) - 1;
	uint64_t v = 0;
	if (klen <= plen || klen > plen + 10 || memcmp(key, PB_KNN_KEY_PREFIX, plen) != 0)
		return false;
	for (uint32_t i = plen; i < klen; i++) {
		if (key[i] < '0' || key[i] > '9')
			return false;
		v = v * 10u + (uint64_t)(key[i] - '0');
	}
	*row = (uint32_t)v;
	return v < rows;
}

/* ---------------------------------------------------------------- checking replies */

/* A KNN answer's rows into ids; false if it is not a well-formed answer. */
static bool knn_answer(const struct bench *b, const struct pm_client_knn_result *r,
		       uint32_t *ids)
{
	if (r->count != b->o.k)
		return false;
	for (uint32_t i = 0; i < r->count; i++) {
		if (!knn_row_of(r->hits[i].key, r->hits[i].klen, b->train.count, &ids[i]))
			return false;
		if (i > 0 && r->hits[i].dist < r->hits[i - 1].dist)
			return false;
	}
	return true;
}

/* Share of the true top k found. */
static double knn_recall(const struct bench *b, uint32_t q, const uint32_t *ids)
{
	const uint32_t k = b->o.k, *truth = b->gt_ids + (size_t)q * k;
	uint32_t found = 0;
	for (uint32_t i = 0; i < k; i++)
		for (uint32_t j = 0; j < k; j++)
			if (ids[i] == truth[j]) {
				found++;
				break;
			}
	return (double)found / k;
}

/* Is an OK reply what it must be? (Records truth and recall on the way.) */
static bool reply_right(struct worker *w, const struct pending *p, const struct pm_client_result *r)
{
	struct bench *b = w->b;
	uint32_t ids[PM_CLIENT_K_MAX];
	if (p->op == OP_GET) {
		value_of(w->expect, p->item, b->o.value_bytes);
		return r->vlen == b->o.value_bytes && memcmp(r->value, w->expect, r->vlen) == 0;
	}
	if (p->op != OP_KNN)
		return true;
	if (!knn_answer(b, r->knn, ids))
		return false;
	if (b->ph.kind == PH_TRUTH) {
		memcpy(b->gt_ids + (size_t)p->item * b->o.k, ids, b->o.k * sizeof(*ids));
		for (uint32_t i = 0; i < b->o.k; i++)
			b->gt_dist[(size_t)p->item * b->o.k + i] = r->knn->hits[i].dist;
	} else {
		w->t->recall_sum += knn_recall(b, p->item, ids);
		w->t->recall_n++;
	}
	return true;
}

static void tally_reply(struct worker *w, const struct pending *p, const struct pm_client_result *r,
			uint64_t ns)
{
	struct tally *t = w->t;
	if (r->status == PM_CLIENT_OK) {
		if (reply_right(w, p, r))
			t->right[p->op]++;
		else
			t->wrong++;
	} else if (r->status == PM_CLIENT_NOT_FOUND && p->op == OP_GET) {
		t->miss++;
	} else {
		t->status[r->status]++;
		if (r->status == PM_CLIENT_E_TIMEOUT)
			t->timeouts++;
		else
			t->errors++;
		if (r->status >= PM_CLIENT_E_TIMEOUT)
			return; /* the client's own failure: no reply, no latency */
	}
	t->hist[p->op][hist_index(ns)]++;
	if (ns > t->max_ns[p->op])
		t->max_ns[p->op] = ns;
}

static void on_done(void *arg, const struct pm_client_result *r)
{
	struct pending *p = arg;
	struct worker *w = p->w;
	uint64_t now = bu_now_ns();
	if (w->gsize)
		w->gdone[p->idx / w->gsize]++;
	else
		w->free_idx[w->nfree++] = p->idx;
	if (p->counted && now <= w->end_ns) {
		w->last_ns = now;
		tally_reply(w, p, r, now - p->t0);
	}
}

/* ---------------------------------------------------------------- issuing */

static void fill_kv(struct worker *w, struct pending *p, struct pm_client_req *q)
{
	const struct opts *o = &w->b->o;
	if (w->b->ph.kind == PH_PRELOAD) {
		p->item = w->next_item;
		w->next_item += o->threads;
		p->op = OP_SET;
	} else {
		p->item = bu_rng_below(&w->rng, o->keys);
		p->op = bu_rng_below(&w->rng, o->get_w + o->set_w) < o->get_w ? OP_GET : OP_SET;
	}
	key_of(w->key, p->item, o->key_bytes);
	q->op = p->op == OP_GET ? PM_CLIENT_GET : PM_CLIENT_SET;
	q->key = w->key;
	q->klen = o->key_bytes;
	if (p->op == OP_SET) {
		value_of(w->val, p->item, o->value_bytes);
		q->value = w->val;
		q->vlen = o->value_bytes;
	}
}

static void fill_knn(struct worker *w, struct pending *p, struct pm_client_req *q)
{
	struct bench *b = w->b;
	const struct opts *o = &b->o;
	p->item = w->next_item;
	if (b->ph.kind == PH_LOAD) {
		w->next_item += o->threads;
		p->op = OP_VADD;
		int n = snprintf((char *)w->key, sizeof(w->key), PB_KNN_KEY_PREFIX "%" PRIu32,
				 p->item);
		q->op = PM_CLIENT_VADD;
		q->key = w->key;
		q->klen = (uint32_t)n;
		q->vec = fmnist_image(&b->train, p->item);
	} else {
		/* truth: each query once; queries: cycle from a per-thread offset */
		w->next_item += b->ph.kind == PH_TRUTH ? o->threads : 1u;
		if (b->ph.kind == PH_KNN && w->next_item >= b->nq)
			w->next_item = 0;
		p->op = OP_KNN;
		p->knn.count = 0;
		p->knn.keys_used = 0;
		q->op = PM_CLIENT_KNN;
		q->vec = fmnist_image(&b->test, p->item);
		q->k = o->k;
		q->ef = b->ph.ef;
		q->exact = b->ph.kind == PH_TRUTH;
		q->knn = &p->knn;
	}
	q->dim = b->train.dim;
	q->name = o->collection;
	q->name_len = (uint32_t)strlen(o->collection);
}

static void issue(struct worker *w, struct pending *p, uint64_t now)
{
	struct pm_client_req q = { .cb = on_done, .arg = p };
	enum phase_kind k = w->b->ph.kind;
	p->t0 = now;
	p->counted = now >= w->measure_ns;
	if (k == PH_PRELOAD || k == PH_KV)
		fill_kv(w, p, &q);
	else
		fill_knn(w, p, &q);
	enum pm_client_status st = pm_client_submit(w->c, &q, NULL);
	if (st != PM_CLIENT_OK) { /* an argument the client refuses: a set-up error */
		fprintf(stderr, "pomai-bench: submit %s: %s\n", op_names[p->op],
			pm_client_strerror(st));
		exit(2);
	}
	w->issued += p->counted;
}

static bool more_to_issue(const struct worker *w, uint64_t now)
{
	const struct phase *ph = &w->b->ph;
	if (ph->items)
		return w->next_item < ph->items;
	if (ph->requests)
		return w->issued < w->quota;
	return now < w->end_ns;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct phase *ph = &w->b->ph;
	const struct opts *o = &w->b->o;
	if (o->ncpus && bu_pin_cpu((int)o->cpus[w->id % o->ncpus]) != 0)
		fprintf(stderr, "pomai-bench: thread %u: cannot pin to CPU %u\n", w->id,
			o->cpus[w->id % o->ncpus]);
	pthread_barrier_wait(&w->b->barrier);
	uint64_t start = bu_now_ns();
	w->measure_ns = w->last_ns = start + ph->warmup_ns;
	w->end_ns = ph->items || ph->requests ? UINT64_MAX : w->measure_ns + ph->duration_ns;
	for (;;) {
		uint64_t now = bu_now_ns();
		bool more = more_to_issue(w, now);
		if (more && !w->gsize)
			while (w->nfree && more_to_issue(w, now))
				issue(w, &w->pend[w->free_idx[--w->nfree]], now);
		/* batched: a pipeline whose replies are all back is sent again whole */
		for (uint32_t g = 0; more && w->gsize && g < ph->depth / w->gsize; g++)
			if (w->gdone[g] == w->gsize) {
				w->gdone[g] = 0;
				for (uint32_t i = 0; i < w->gsize; i++)
					if (more_to_issue(w, now))
						issue(w, &w->pend[g * w->gsize + i], now);
					else
						w->gdone[g]++; /* the end: not sent, not waited for */
			}
		if (!more && pm_client_in_flight(w->c) == 0)
			break;
		(void)pm_client_poll(w->c, PB_POLL_WAIT_MS);
	}
	return NULL;
}

/* ---------------------------------------------------------------- phases */

static void tally_add(struct tally *to, const struct tally *t)
{
	for (uint32_t op = 0; op < OP_COUNT; op++) {
		to->right[op] += t->right[op];
		to->max_ns[op] = t->max_ns[op] > to->max_ns[op] ? t->max_ns[op] : to->max_ns[op];
		for (uint32_t i = 0; i < PB_HIST_BUCKETS; i++)
			to->hist[op][i] += t->hist[op][i];
	}
	to->wrong += t->wrong;
	to->miss += t->miss;
	to->timeouts += t->timeouts;
	to->errors += t->errors;
	for (uint32_t s = 0; s < PM_CLIENT_STATUS_COUNT; s++)
		to->status[s] += t->status[s];
	to->recall_sum += t->recall_sum;
	to->recall_n += t->recall_n;
}

static void stats_add(struct pm_client_stats *to, const struct pm_client_stats *a,
		      const struct pm_client_stats *b)
{
	to->requests += a->requests - b->requests;
	to->completed += a->completed - b->completed;
	to->datagrams_out += a->datagrams_out - b->datagrams_out;
	to->frames_out += a->frames_out - b->frames_out;
	to->frames_in += a->frames_in - b->frames_in;
	to->resends += a->resends - b->resends;
	to->timeouts += a->timeouts - b->timeouts;
	to->stale += a->stale - b->stale;
	to->page_gaps += a->page_gaps - b->page_gaps;
}

static void worker_reset(struct worker *w, const struct phase *ph)
{
	const uint32_t n = w->b->o.threads;
	memset(w->t, 0, sizeof(*w->t));
	w->nfree = ph->depth;
	for (uint32_t i = 0; i < ph->depth; i++)
		w->free_idx[i] = ph->depth - 1u - i;
	uint32_t pl = w->b->o.pipelines;
	w->gsize = !ph->batch ? 0 : ph->depth % pl == 0 ? ph->depth / pl : ph->depth;
	for (uint32_t g = 0; w->gsize && g < ph->depth / w->gsize; g++)
		w->gdone[g] = w->gsize;
	w->issued = 0;
	w->quota = ph->requests / n + (w->id < ph->requests % n);
	w->next_item = ph->kind == PH_KNN ? (uint32_t)((uint64_t)w->b->nq * w->id / n) : w->id;
	pm_client_stats(w->c, &w->st0);
}

/* Runs one phase on every thread; sums into *sum and *cs; returns the measured
 * seconds. */
static double run_phase(struct bench *b, const struct phase *ph, struct tally *sum,
			struct pm_client_stats *cs)
{
	const uint32_t n = b->o.threads;
	b->ph = *ph;
	pthread_barrier_init(&b->barrier, NULL, n);
	for (uint32_t i = 0; i < n; i++) {
		worker_reset(&b->w[i], ph);
		if (pthread_create(&b->w[i].thread, NULL, worker_main, &b->w[i]) != 0) {
			fprintf(stderr, "pomai-bench: cannot start thread %u\n", i);
			exit(2);
		}
	}
	double secs = ph->items || ph->requests ? 0 : (double)ph->duration_ns / 1e9;
	memset(sum, 0, sizeof(*sum));
	memset(cs, 0, sizeof(*cs));
	for (uint32_t i = 0; i < n; i++) {
		struct worker *w = &b->w[i];
		struct pm_client_stats now;
		pthread_join(w->thread, NULL);
		tally_add(sum, w->t);
		pm_client_stats(w->c, &now);
		stats_add(cs, &now, &w->st0);
		double s = (double)(w->last_ns - w->measure_ns) / 1e9;
		if ((ph->items || ph->requests) && s > secs)
			secs = s;
	}
	pthread_barrier_destroy(&b->barrier);
	return secs > 0 ? secs : 1e-9;
}

/* ---------------------------------------------------------------- reports */

static const char *transport_name(const struct opts *o)
{
	return o->cfg.transport == PM_CLIENT_MEMIF ? "memif"
	       : o->cfg.transport == PM_CLIENT_TCP ? "tcp"
						    : "udp";
}

/* The memif transport's own counters (one thread), after a phase. */
static void print_memif(const struct bench *b)
{
#ifdef POMAI_BENCH_MEMIF
	struct pm_client_memif_stats m;
	if (b->o.cfg.transport != PM_CLIENT_MEMIF)
		return;
	pm_client_memif_stats(b->w[0].c, &m);
	printf("  memif: %" PRIu64 " frames out, %" PRIu64 " in; TX ring full %" PRIu64
	       ", TX dropped %" PRIu64 ", RX dropped %" PRIu64 "; fragments %" PRIu64
	       " out, %" PRIu64 " in, %" PRIu64 " reassembled, %" PRIu64 " given up\n",
	       m.tx_packets, m.rx_packets, m.tx_full, m.tx_dropped, m.rx_dropped, m.frags_out,
	       m.frags_in, m.reassembled, m.reasm_dropped);
	for (uint32_t r = 0; r < PM_CLIENT_MEMIF_DROP_REASONS; r++)
		if (m.rx_drops[r])
			printf("  memif: RX dropped %" PRIu64 " as %s\n", m.rx_drops[r],
			       pm_client_memif_drop_name(r));
#else
	(void)b;
#endif
}

static void print_latency_row(const char *name, const uint64_t *h, uint64_t max_ns)
{
	printf("  %-5s n %-10" PRIu64 " p50 %9.1f  p99 %9.1f  p99.9 %9.1f  max %9.1f us\n", name,
	       hist_count(h), hist_quantile(h, 0.50) / 1e3, hist_quantile(h, 0.99) / 1e3,
	       hist_quantile(h, 0.999) / 1e3, (double)max_ns / 1e3);
}

static void print_statuses(const struct tally *t)
{
	for (uint32_t s = 0; s < PM_CLIENT_STATUS_COUNT; s++)
		if (t->status[s])
			printf(" %s %" PRIu64, pm_client_status_name((enum pm_client_status)s),
			       t->status[s]);
}

static void report(struct bench *b, const struct phase *ph, const struct tally *t,
		   const struct pm_client_stats *cs, double secs)
{
	static uint64_t all[PB_HIST_BUCKETS];
	uint64_t right = 0, max_ns = 0;
	memset(all, 0, sizeof(all));
	for (uint32_t op = 0; op < OP_COUNT; op++) {
		right += t->right[op];
		max_ns = t->max_ns[op] > max_ns ? t->max_ns[op] : max_ns;
		for (uint32_t i = 0; i < PB_HIST_BUCKETS; i++)
			all[i] += t->hist[op][i];
	}
	uint64_t replies = hist_count(all);
	double recall = t->recall_n ? t->recall_sum / (double)t->recall_n : -1;
	printf("%s: %.0f ops/s (%" PRIu64 " replies in %.3f s; %u thread(s) x depth %u%s, %s)\n",
	       ph->label, (double)replies / secs, replies, secs, b->o.threads, ph->depth,
	       ph->batch ? " batched" : "", transport_name(&b->o));
	for (uint32_t op = 0; op < OP_COUNT; op++)
		if (hist_count(t->hist[op]))
			print_latency_row(op_names[op], t->hist[op], t->max_ns[op]);
	printf("  checks: right %" PRIu64 ", wrong %" PRIu64 ", GET misses %" PRIu64
	       ", timeouts %" PRIu64 ", other errors %" PRIu64, right, t->wrong, t->miss,
	       t->timeouts, t->errors);
	print_statuses(t);
	if (recall >= 0)
		printf("; recall@%u %.4f over %" PRIu64 " answers", b->o.k, recall, t->recall_n);
	printf("\n  client: %.2f frames per datagram out, %" PRIu64 " resends, %" PRIu64
	       " stale replies, %" PRIu64 " page gaps\n",
	       cs->datagrams_out ? (double)cs->frames_out / (double)cs->datagrams_out : 0.0,
	       cs->resends, cs->stale, cs->page_gaps);
	print_memif(b);
	printf("RESULT phase=%s transport=%s threads=%u depth=%u batch=%d pipelines=%u ef=%u ops_s=%.0f "
	       "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f replies=%" PRIu64
	       " wrong=%" PRIu64 " miss=%" PRIu64 " timeouts=%" PRIu64 " errors=%" PRIu64
	       " resends=%" PRIu64 " recall=%.4f\n",
	       ph->label, transport_name(&b->o), b->o.threads, ph->depth, ph->batch,
	       ph->batch ? ph->depth / b->w[0].gsize : 0, ph->ef, (double)replies / secs, hist_quantile(all, 0.50) / 1e3,
	       hist_quantile(all, 0.99) / 1e3, hist_quantile(all, 0.999) / 1e3,
	       (double)max_ns / 1e3, replies, t->wrong, t->miss, t->timeouts, t->errors,
	       cs->resends, recall);
	fflush(stdout);
	bool miss_is_wrong = b->o.preload || b->o.expect_hits;
	if (t->wrong || (miss_is_wrong && t->miss))
		b->failed = true;
}

static void run_and_report(struct bench *b, const struct phase *ph, struct tally *t)
{
	struct pm_client_stats cs;
	double secs = run_phase(b, ph, t, &cs);
	report(b, ph, t, &cs, secs);
}

/* ---------------------------------------------------------------- arguments */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pomai-bench [options]            KV load (GET/SET)\n"
		"       pomai-bench --knn [options]      KNN load on Fashion-MNIST\n"
		"server:\n"
		"  --host H            IPv4 address (default %s; also --server-ip)\n"
		"  --port P            UDP port of shard 0 (default %u)\n"
		"  --shards N          shards the server runs (default 1)\n"
		"  --tcp               one TCP connection per thread instead of UDP\n"
		"  --tcp-port P        the server's TCP port (default port - 1)\n"
		"  --memif EAL_ARGS    over a DPDK memif port instead (one thread; %s), e.g.\n"
		"                      \"-l 1 --no-huge --no-pci -m 512 --file-prefix=bench\n"
		"                      --vdev=net_memif0,role=client,socket=PATH,socket-abstract=no\"\n"
		"  --memif-ip A[/LEN]  this end's IPv4 address on the memif link (required);\n"
		"                      --host (or --server-ip) is pomaid's there\n"
		"  --memif-port NAME   the ethdev (default: the first)\n"
		"  --memif-mtu N       link MTU, 576..9000 (default 1500, as pomaid's)\n"
		"  --timeout MS        first wait for a reply (default %u)\n"
		"  --retries N         UDP resends (default %u)\n"
		"  --pack-bytes N      frames per datagram bound (libpomai pack_bytes; default the\n"
		"                      path's: 65459 on loopback, 1400 elsewhere)\n"
		"  --spin-us N         libpomai spin_us: read sockets this long without sleeping\n"
		"                      before poll(2) (default 0: sleep at once)\n"
		"load:\n"
		"  --threads T         threads, one client each, 1..%u (default 1)\n"
		"  --depth D           requests in flight per thread, 1..%u (default %u)\n"
		"  --batch             send D, wait for all D replies, repeat (redis-benchmark -P)\n"
		"  --pipelines C       with --batch: D as C pipelines of D/C, each sent again once\n"
		"                      its own replies are back (redis-benchmark -c C -P D/C on\n"
		"                      one thread; default 1; C must divide D)\n"
		"  --duration S        measured seconds (default %.1f)\n"
		"  --warmup S          seconds before measuring (default %.1f)\n"
		"  --requests N        measure N requests (over all threads) instead of a duration\n"
		"  --cpus LIST         pin thread i to the (i mod n)-th CPU of LIST (\"0\", \"0,1\")\n"
		"  --seed N            RNG seed (default %u)\n"
		"KV:\n"
		"  --keys N            key space (default %u)\n"
		"  --key-size B        key bytes, %u..%u (default %u)\n"
		"  --value-size B      value bytes, 0..%u (default %u)\n"
		"  --ratio G:S         GET:SET weights (default 1:1)\n"
		"  --get-only, --set-only\n"
		"  --preload           SET every key once first (then a GET miss is an error)\n"
		"  --preload-only      only that\n"
		"  --expect-hits       count GET misses as errors (keys preloaded earlier)\n"
		"KNN:\n"
		"  --knn               KNN mode\n"
		"  --data DIR          Fashion-MNIST directory (default %s)\n"
		"  --collection NAME   HNSW collection (default %s)\n"
		"  --reload            drop and load the collection even if it exists\n"
		"  --base N            first N training images only (default all)\n"
		"  --queries N         first N test images, 1..%u (default %u)\n"
		"  --k K               neighbours (default %u)\n"
		"  --ef LIST           ef values, e.g. 40,80,160 (default %u)\n",
		PM_CLIENT_HOST_DEFAULT, PM_CLIENT_BASE_PORT_DEFAULT, PB_MEMIF_BUILT,
		PM_CLIENT_TIMEOUT_MS_DEFAULT, PM_CLIENT_RETRIES_DEFAULT, PB_THREADS_MAX, PB_DEPTH_MAX,
		PB_DEPTH_DEFAULT,
		PB_DURATION_MS_DEFAULT / 1e3, PB_WARMUP_MS_DEFAULT / 1e3, PB_SEED_DEFAULT,
		PB_KEYS_DEFAULT, PB_KEY_BYTES_MIN, PM_CLIENT_KEY_BYTES_MAX, PB_KEY_BYTES_MIN,
		PM_CLIENT_VALUE_BYTES_MAX, PB_VALUE_BYTES_DEFAULT, FMNIST_DIR_DEFAULT,
		PB_KNN_COLLECTION_DEFAULT, PB_KNN_QUERIES_MAX, PB_KNN_QUERIES_DEFAULT,
		PB_KNN_K_DEFAULT, PB_KNN_EF_DEFAULT);
}

/* Seconds with a fraction ("2.5") into ms, at most PB_DURATION_MS_MAX. */
static int parse_ms(const char *s, uint32_t *ms)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0) || v * 1e3 > PB_DURATION_MS_MAX)
		return -EINVAL;
	*ms = (uint32_t)(v * 1e3 + 0.5);
	return 0;
}

/* "a,b,c" of u32 (each <= max) into out[<= cap]. */
static int parse_list(const char *s, uint32_t max, uint32_t *out, uint32_t cap, uint32_t *n)
{
	char buf[256];
	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	*n = 0;
	for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (*n == cap || bu_parse_u32(tok, max, &out[(*n)++]) != 0)
			return -EINVAL;
	return *n ? 0 : -EINVAL;
}

static int parse_ratio(const char *s, struct opts *o)
{
	char buf[64];
	const char *colon = strchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, (size_t)(colon - s));
	buf[colon - s] = '\0';
	if (bu_parse_u32(buf, 1000000, &o->get_w) || bu_parse_u32(colon + 1, 1000000, &o->set_w))
		return -EINVAL;
	return o->get_w + o->set_w ? 0 : -EINVAL;
}

static bool parse_flag(const char *a, struct opts *o)
{
	if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
		usage(stdout);
		exit(0);
	}
	if (!strcmp(a, "--tcp"))
		o->cfg.transport = PM_CLIENT_TCP;
	else if (!strcmp(a, "--batch"))
		o->batch = true;
	else if (!strcmp(a, "--get-only"))
		o->get_w = 1, o->set_w = 0;
	else if (!strcmp(a, "--set-only"))
		o->get_w = 0, o->set_w = 1;
	else if (!strcmp(a, "--preload"))
		o->preload = true;
	else if (!strcmp(a, "--preload-only"))
		o->preload = o->preload_only = true;
	else if (!strcmp(a, "--expect-hits"))
		o->expect_hits = true;
	else if (!strcmp(a, "--knn"))
		o->knn = true;
	else if (!strcmp(a, "--reload"))
		o->reload = true;
	else
		return false;
	return true;
}

static int parse_server(const char *a, const char *v, struct opts *o)
{
	struct pm_client_config *c = &o->cfg;
	if (!strcmp(a, "--host") || !strcmp(a, "--server-ip"))
		return c->host = v, 0;
	if (!strcmp(a, "--memif"))
		return c->transport = PM_CLIENT_MEMIF, o->memif_eal = v, 0;
	if (!strcmp(a, "--memif-ip"))
		return o->memif_ip = v, 0;
	if (!strcmp(a, "--memif-port"))
		return o->memif_port = v, 0;
	if (!strcmp(a, "--memif-mtu"))
		return bu_parse_u32(v, 65535, &o->memif_mtu);
	if (!strcmp(a, "--port"))
		return bu_parse_u32(v, 65535, &c->base_port);
	if (!strcmp(a, "--shards"))
		return bu_parse_u32(v, PM_CLIENT_SHARDS_MAX, &c->shards);
	if (!strcmp(a, "--tcp-port"))
		return bu_parse_u32(v, 65535, &c->tcp_port);
	if (!strcmp(a, "--timeout"))
		return bu_parse_u32(v, PM_CLIENT_TIMEOUT_MS_MAX, &c->timeout_ms);
	if (!strcmp(a, "--retries"))
		return bu_parse_u32(v, PM_CLIENT_RETRIES_MAX, &c->retries);
	if (!strcmp(a, "--pack-bytes")) /* issue 20: 1400 is the packing before it */
		return bu_parse_u32(v, PM_CLIENT_PACK_LOOPBACK_BYTES, &c->pack_bytes);
	if (!strcmp(a, "--spin-us")) /* issue 20: libpomai's spin_us */
		return bu_parse_u32(v, PM_CLIENT_SPIN_US_MAX, &c->spin_us);
	return 1; /* not a server option */
}

static int parse_value(const char *a, const char *v, struct opts *o)
{
	int rc = parse_server(a, v, o);
	if (rc <= 0)
		return rc;
	if (!strcmp(a, "--threads"))
		return bu_parse_u32(v, PB_THREADS_MAX, &o->threads);
	if (!strcmp(a, "--depth"))
		return bu_parse_u32(v, PB_DEPTH_MAX, &o->depth);
	if (!strcmp(a, "--pipelines"))
		return bu_parse_u32(v, PB_DEPTH_MAX, &o->pipelines);
	if (!strcmp(a, "--duration"))
		return parse_ms(v, &o->duration_ms);
	if (!strcmp(a, "--warmup"))
		return parse_ms(v, &o->warmup_ms);
	if (!strcmp(a, "--requests"))
		return bu_parse_u32(v, UINT32_MAX, &o->requests);
	if (!strcmp(a, "--cpus"))
		return parse_list(v, 4095, o->cpus, PB_THREADS_MAX, &o->ncpus);
	if (!strcmp(a, "--seed"))
		return bu_parse_u32(v, UINT32_MAX, &o->seed);
	if (!strcmp(a, "--keys"))
		return bu_parse_u32(v, UINT32_MAX, &o->keys);
	if (!strcmp(a, "--key-size"))
		return bu_parse_u32(v, PM_CLIENT_KEY_BYTES_MAX, &o->key_bytes);
	if (!strcmp(a, "--value-size"))
		return bu_parse_u32(v, PM_CLIENT_VALUE_BYTES_MAX, &o->value_bytes);
	if (!strcmp(a, "--ratio"))
		return parse_ratio(v, o);
	if (!strcmp(a, "--data"))
		return o->dir = v, 0;
	if (!strcmp(a, "--collection"))
		return o->collection = v, 0;
	if (!strcmp(a, "--base"))
		return bu_parse_u32(v, FMNIST_IMAGES_MAX, &o->base);
	if (!strcmp(a, "--queries"))
		return bu_parse_u32(v, PB_KNN_QUERIES_MAX, &o->queries);
	if (!strcmp(a, "--k"))
		return bu_parse_u32(v, PM_CLIENT_K_MAX, &o->k);
	if (!strcmp(a, "--ef"))
		return parse_list(v, PM_CLIENT_EF_MAX, o->efs, PB_KNN_EFS_MAX, &o->nefs);
	return -EINVAL;
}

static bool opts_valid(const struct opts *o)
{
	size_t nlen = strlen(o->collection);
	return o->threads >= 1 && o->depth >= 1 && o->keys >= 1 && o->pipelines >= 1 &&
	       o->depth % o->pipelines == 0 && (o->pipelines == 1 || o->batch) &&
	       o->key_bytes >= PB_KEY_BYTES_MIN && o->queries >= 1 && o->k >= 1 &&
	       nlen >= 1 && nlen <= PM_CLIENT_COLLECTION_NAME_BYTES_MAX &&
	       (o->requests || o->duration_ms);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .threads = 1, .depth = PB_DEPTH_DEFAULT, .pipelines = 1,
			    .keys = PB_KEYS_DEFAULT,
			    .key_bytes = PB_KEY_BYTES_MIN, .value_bytes = PB_VALUE_BYTES_DEFAULT,
			    .get_w = 1, .set_w = 1, .seed = PB_SEED_DEFAULT,
			    .duration_ms = PB_DURATION_MS_DEFAULT,
			    .warmup_ms = PB_WARMUP_MS_DEFAULT, .dir = FMNIST_DIR_DEFAULT,
			    .collection = PB_KNN_COLLECTION_DEFAULT,
			    .queries = PB_KNN_QUERIES_DEFAULT, .k = PB_KNN_K_DEFAULT,
			    .efs = { PB_KNN_EF_DEFAULT }, .nefs = 1 };
	pm_client_config_default(&o->cfg);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (parse_flag(a, o))
			continue;
		if (!v || parse_value(a, v, o) != 0) {
			fprintf(stderr, "pomai-bench: bad argument '%s'%s%s (try --help)\n", a,
				v ? " " : "", v ? v : "");
			return -EINVAL;
		}
		i++;
	}
	if (!opts_valid(o)) {
		fprintf(stderr, "pomai-bench: inconsistent options (try --help)\n");
		return -EINVAL;
	}
	if (o->cfg.transport == PM_CLIENT_MEMIF && (!PB_MEMIF || o->threads != 1 || !o->memif_ip)) {
		fprintf(stderr, "pomai-bench: --memif needs %s\n",
			!PB_MEMIF ? "a build with DPDK (libpomai_memif)"
				  : "--memif-ip and one thread (a port serves one client)");
		return -EINVAL;
	}
	for (uint32_t e = 0; e < o->nefs; e++)
		if (o->efs[e] && o->efs[e] < o->k) {
			fprintf(stderr, "pomai-bench: ef %u is below k %u\n", o->efs[e], o->k);
			return -EINVAL;
		}
	return 0;
}

/* ---------------------------------------------------------------- set-up */

/* One client of the chosen transport; *why says what failed. */
static enum pm_client_status client_open(const struct opts *o, const struct pm_client_config *cfg,
					 struct pm_client **c, const char **why)
{
#ifdef POMAI_BENCH_MEMIF
	if (cfg->transport == PM_CLIENT_MEMIF) {
		struct pm_client_memif m;
		pm_client_memif_default(&m);
		m.eal_args = o->memif_eal;
		m.local_ip = o->memif_ip;
		m.port = o->memif_port;
		m.mtu = o->memif_mtu;
		return pm_client_memif_open(cfg, &m, c, why);
	}
#else
	(void)o;
#endif
	enum pm_client_status st = pm_client_open(cfg, c);
	if (st != PM_CLIENT_OK)
		(void)pm_client_config_check(cfg, why);
	return st;
}

static int open_clients(struct bench *b)
{
	struct opts *o = &b->o;
	struct pm_client_config cfg = o->cfg;
	uint32_t frame = o->key_bytes + o->value_bytes + PB_FRAME_OVERHEAD_BYTES;
	cfg.max_in_flight = b->depth_max;
	if (frame > PM_CLIENT_FRAME_BYTES_DEFAULT)
		cfg.frame_bytes = frame < 65507u ? frame : 65507u;
	for (uint32_t i = 0; i < o->threads; i++) {
		const char *why = "";
		enum pm_client_status st = client_open(o, &cfg, &b->w[i].c, &why);
		if (st != PM_CLIENT_OK) {
			fprintf(stderr, "pomai-bench: client %u: %s (%s)\n", i, pm_client_strerror(st),
				why);
			return -1;
		}
	}
	return 0;
}

static int alloc_workers(struct bench *b)
{
	const struct opts *o = &b->o;
	b->w = calloc(o->threads, sizeof(*b->w));
	if (!b->w)
		return -ENOMEM;
	for (uint32_t i = 0; i < o->threads; i++) {
		struct worker *w = &b->w[i];
		*w = (struct worker){ .b = b, .id = i,
				      .rng = { (uint64_t)o->seed * 1000003u + i },
				      .pend = calloc(b->depth_max, sizeof(*w->pend)),
				      .free_idx = calloc(b->depth_max, sizeof(*w->free_idx)),
				      .gdone = calloc(b->depth_max, sizeof(*w->gdone)),
				      .val = malloc(o->value_bytes + 8u),
				      .expect = malloc(o->value_bytes + 8u),
				      .t = malloc(sizeof(*w->t)) };
		if (!w->pend || !w->free_idx || !w->gdone || !w->val || !w->expect || !w->t)
			return -ENOMEM;
		for (uint32_t j = 0; j < b->depth_max; j++) {
			struct pending *p = &w->pend[j];
			p->w = w;
			p->idx = j;
			if (!o->knn)
				continue;
			p->knn.hits = calloc(o->k, sizeof(*p->knn.hits));
			p->knn.hits_cap = o->k;
			p->knn.keys_cap = (size_t)o->k * PM_CLIENT_KEY_BYTES_MAX;
			p->knn.keys = malloc(p->knn.keys_cap);
			if (!p->knn.hits || !p->knn.keys)
				return -ENOMEM;
		}
	}
	return 0;
}

static void free_workers(struct bench *b)
{
	for (uint32_t i = 0; b->w && i < b->o.threads; i++) {
		struct worker *w = &b->w[i];
		for (uint32_t j = 0; w->pend && j < b->depth_max; j++) {
			free(w->pend[j].knn.hits);
			free(w->pend[j].knn.keys);
		}
		if (w->c)
			pm_client_close(w->c);
		free(w->pend);
		free(w->free_idx);
		free(w->gdone);
		free(w->val);
		free(w->expect);
		free(w->t);
	}
	free(b->w);
}

static void print_setup(const struct bench *b)
{
	const struct opts *o = &b->o;
	printf("server:   %s %s:%u, %u shard(s)", transport_name(o),
	       o->cfg.host ? o->cfg.host : PM_CLIENT_HOST_DEFAULT, o->cfg.base_port,
	       o->cfg.shards);
	if (o->cfg.transport == PM_CLIENT_TCP)
		printf(", tcp port %u", o->cfg.tcp_port ? o->cfg.tcp_port : o->cfg.base_port - 1u);
	if (o->cfg.transport == PM_CLIENT_MEMIF)
		printf(", from %s on %s (MTU %u)", o->memif_ip, o->memif_port ? o->memif_port : "port 0",
		       o->memif_mtu ? o->memif_mtu : 1500u);
	printf("; timeout %u ms, %u retries\n", o->cfg.timeout_ms, o->cfg.retries);
	printf("load:     %u thread(s) x depth %u%s, ", o->threads, o->depth,
	       o->batch ? " (batched)" : " (sliding)");
	if (o->requests)
		printf("%u requests", o->requests);
	else
		printf("%.1f s", o->duration_ms / 1e3);
	printf(" after %.1f s warm-up, seed %u, cpus", o->warmup_ms / 1e3, o->seed);
	for (uint32_t i = 0; i < o->ncpus; i++)
		printf("%s%u", i ? "," : " ", o->cpus[i]);
	printf("%s\n", o->ncpus ? "" : " (not pinned)");
	if (!o->knn)
		printf("kv:       %u keys of %u B, values of %u B, GET:SET %u:%u%s\n", o->keys,
		       o->key_bytes, o->value_bytes, o->get_w, o->set_w,
		       o->preload ? ", preloaded" : "");
	printf("histogram: log-linear, %u buckets per power of two, percentiles within "
	       "%.1f %%\n", 1u << PB_HIST_SUB_BITS, 100.0 / (2u << PB_HIST_SUB_BITS));
	fflush(stdout);
}

static struct phase phase_of(const struct bench *b, enum phase_kind kind, const char *label)
{
	const struct opts *o = &b->o;
	struct phase ph = { .kind = kind, .label = label, .depth = o->depth, .batch = o->batch,
			    .requests = o->requests,
			    .warmup_ns = (uint64_t)o->warmup_ms * PB_NS_PER_MS,
			    .duration_ns = (uint64_t)o->duration_ms * PB_NS_PER_MS };
	if (kind == PH_PRELOAD || kind == PH_LOAD || kind == PH_TRUTH) {
		ph.items = kind == PH_PRELOAD ? o->keys : kind == PH_LOAD ? b->train.count : b->nq;
		ph.requests = 0;
		ph.warmup_ns = 0;
		ph.batch = false;
	}
	if (kind == PH_LOAD)
		ph.depth = PB_KNN_LOAD_DEPTH;
	return ph;
}

/* ---------------------------------------------------------------- KV mode */

static int run_kv(struct bench *b, struct tally *t)
{
	if (b->o.preload) {
		struct phase ph = phase_of(b, PH_PRELOAD, "preload");
		run_and_report(b, &ph, t);
	}
	if (!b->o.preload_only) {
		struct phase ph = phase_of(b, PH_KV, "kv");
		run_and_report(b, &ph, t);
	}
	return 0;
}

/* ---------------------------------------------------------------- KNN mode */

static bool params_match(const struct pm_client_coll_info *c, uint32_t dim)
{
	const struct pm_client_coll_params *p = &c->params;
	return p->dim == dim && p->metric == PM_CLIENT_L2 && p->index == PM_CLIENT_HNSW &&
	       p->hnsw_m == PB_KNN_M && p->ef_construction == PB_KNN_EF_CONSTRUCTION;
}

/* The collection's entry, or NULL; *count its vectors. st: the list's status. */
static enum pm_client_status find_collection(struct bench *b, struct pm_client_coll_info *items,
					     const struct pm_client_coll_info **found)
{
	struct pm_client_coll_list l = { .items = items, .cap = PM_CLIENT_COLLECTIONS_MAX };
	const char *name = b->o.collection;
	enum pm_client_status st = pm_client_collection_list(b->w[0].c, &l);
	*found = NULL;
	for (uint32_t i = 0; st == PM_CLIENT_OK && i < l.count; i++)
		if (items[i].name_len == strlen(name) && !memcmp(items[i].name, name, strlen(name)))
			*found = &items[i];
	return st;
}

/* Reuse the collection if it holds the data set with our parameters; else
 * (re)create it. *load tells whether it must be loaded. */
static int knn_collection(struct bench *b, struct pm_client_coll_info *items, bool *load)
{
	struct pm_client *c = b->w[0].c;
	const struct pm_client_coll_info *f;
	enum pm_client_status st = find_collection(b, items, &f);
	if (st != PM_CLIENT_OK) {
		fprintf(stderr, "pomai-bench: collection list: %s\n", pm_client_strerror(st));
		return -1;
	}
	*load = !f || b->o.reload || !params_match(f, b->train.dim) || f->count != b->train.count;
	if (!*load) {
		printf("collection: reusing '%s' (%" PRIu64 " vectors, dim %u, HNSW M %u, "
		       "ef_construction %u)\n", b->o.collection, f->count, f->params.dim,
		       f->params.hnsw_m, f->params.ef_construction);
		return 0;
	}
	bool removed;
	if (f && (st = pm_client_collection_drop(c, b->o.collection, &removed)) != PM_CLIENT_OK) {
		fprintf(stderr, "pomai-bench: drop: %s\n", pm_client_strerror(st));
		return -1;
	}
	struct pm_client_coll_params p = { .dim = b->train.dim, .metric = PM_CLIENT_L2,
					   .index = PM_CLIENT_HNSW, .hnsw_m = PB_KNN_M,
					   .ef_construction = PB_KNN_EF_CONSTRUCTION };
	if ((st = pm_client_collection_create(c, b->o.collection, &p)) != PM_CLIENT_OK) {
		fprintf(stderr, "pomai-bench: create: %s\n", pm_client_strerror(st));
		return -1;
	}
	printf("collection: %s '%s' (HNSW, L2, M %u, ef_construction %u)\n",
	       f ? "recreated" : "created", b->o.collection, PB_KNN_M, PB_KNN_EF_CONSTRUCTION);
	return 0;
}

static int knn_load_data(struct bench *b)
{
	char err[FMNIST_ERR_BYTES];
	if (fmnist_load_split(b->o.dir, "train", b->o.base, &b->train, err, sizeof(err)) != 0 ||
	    fmnist_load_split(b->o.dir, "t10k", b->o.queries, &b->test, err, sizeof(err)) != 0) {
		fprintf(stderr, "pomai-bench: %s\n", err);
		return -1;
	}
	if (b->train.count < b->o.k) {
		fprintf(stderr, "pomai-bench: %u base vectors, fewer than k = %u\n", b->train.count,
			b->o.k);
		return -1;
	}
	b->nq = b->test.count;
	b->gt_ids = calloc((size_t)b->nq * b->o.k, sizeof(*b->gt_ids));
	b->gt_dist = calloc((size_t)b->nq * b->o.k, sizeof(*b->gt_dist));
	if (!b->gt_ids || !b->gt_dist)
		return -1;
	printf("data:     %u base vectors, %u queries, dim %u, k %u, from %s\n", b->train.count,
	       b->nq, b->train.dim, b->o.k, b->o.dir);
	return 0;
}

/* Compare the server's exact answers with bench_hnsw's cached local brute force. */
static void knn_cross_check(const struct bench *b)
{
	char path[GT_PATH_BYTES], err[PB_ERR_BYTES] = "out of memory";
	struct gt g = { .n = b->train.count, .dim = b->train.dim, .nq = b->nq, .k = b->o.k };
	g.data_hash = gt_data_hash(b->train.data, (uint64_t)b->train.count * b->train.dim,
				   b->test.data, (uint64_t)b->nq * b->train.dim);
	int rc = gt_default_path(path, sizeof(path), "fmnist", g.n, g.dim, g.nq, GT_K_FILE, err,
				 sizeof(err));
	if (rc == 0)
		rc = gt_alloc(&g);
	if (rc == 0)
		rc = gt_load(path, &g, err, sizeof(err));
	if (rc != 0) {
		printf("truth:    no local brute-force truth to compare with (%s%s)\n", err,
		       rc == -ENOENT ? "; bench_hnsw makes it" : "");
		gt_free(&g);
		return;
	}
	uint64_t same = 0;
	for (uint32_t q = 0; q < b->nq; q++)
		same += (uint64_t)(knn_recall(b, q, g.ids + (size_t)q * g.k) * g.k + 0.5);
	printf("truth:    server exact search vs local brute force (%s): %.4f of ids agree\n",
	       path, (double)same / ((double)b->nq * g.k));
	gt_free(&g);
}

static int knn_prepare(struct bench *b, struct tally *t)
{
	static struct pm_client_coll_info items[PM_CLIENT_COLLECTIONS_MAX];
	const struct pm_client_coll_info *f;
	bool load;
	if (knn_load_data(b) != 0 || knn_collection(b, items, &load) != 0)
		return -1;
	if (load) {
		struct phase ph = phase_of(b, PH_LOAD, "load");
		run_and_report(b, &ph, t);
	}
	if (find_collection(b, items, &f) != PM_CLIENT_OK || !f || f->count != b->train.count) {
		fprintf(stderr, "pomai-bench: collection '%s' holds %" PRIu64 " vectors, not %u\n",
			b->o.collection, f ? f->count : 0, b->train.count);
		return -1;
	}
	struct phase ph = phase_of(b, PH_TRUTH, "exact");
	run_and_report(b, &ph, t);
	if (t->right[OP_KNN] != b->nq) {
		fprintf(stderr, "pomai-bench: %" PRIu64 " of %u exact queries answered right; "
			"no ground truth\n", t->right[OP_KNN], b->nq);
		return -1;
	}
	knn_cross_check(b);
	return 0;
}

static int run_knn(struct bench *b, struct tally *t)
{
	if (knn_prepare(b, t) != 0)
		return -1;
	for (uint32_t e = 0; e < b->o.nefs; e++) {
		char label[32];
		snprintf(label, sizeof(label), "knn-ef%u", b->o.efs[e]);
		struct phase ph = phase_of(b, PH_KNN, label);
		ph.ef = b->o.efs[e];
		run_and_report(b, &ph, t);
	}
	return 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	static struct bench bench;
	struct bench *b = &bench;
	if (parse_args(argc, argv, &b->o) != 0)
		return 2;
	b->depth_max = b->o.depth > PB_KNN_LOAD_DEPTH || !b->o.knn ? b->o.depth : PB_KNN_LOAD_DEPTH;
	bu_print_header("pomai-bench", argc, argv);
	print_setup(b);
	struct tally *t = malloc(sizeof(*t));
	int rc = !t || alloc_workers(b) != 0 ? -1 : open_clients(b);
	if (rc == 0)
		rc = b->o.knn ? run_knn(b, t) : run_kv(b, t);
	free_workers(b);
	free(t);
	fmnist_free(&b->train);
	fmnist_free(&b->test);
	free(b->gt_ids);
	free(b->gt_dist);
	if (rc != 0)
		return 2;
	if (b->failed)
		printf("pomai-bench: WRONG ANSWERS (see the checks above)\n");
	return b->failed ? 3 : 0;
}
