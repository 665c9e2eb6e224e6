/* SPDX-License-Identifier: MIT
 *
 * test_cluster_reshard.c — moving slots between replica sets under load, and
 * cluster-wide collections (issue 17, docs/cluster.md "Moving slots between
 * sets" and "Collections"): real etcd, pomaid and pomai-control processes
 * (tests/cluster.{c,h}; argv: pomaid, pomai-control, pomaictl), two sets of
 * two nodes each.
 *
 *  0. One source node, no etcd (the test plays pomai-control on its admin
 *     socket): while its slots move out, its changes are noted for the
 *     copier and its reads are not; a storm of changes past the changed-keys
 *     list is answered BUSY for what does not fit, and every change
 *     acknowledged is handed to the copier (none lost); in the freeze,
 *     changes are BUSY and reads are served.
 *  1. Reshard under load. KEYS keys (values, a few of 48 KiB; some with a
 *     TTL of minutes, some of seconds) and VECS vectors (some with a TTL)
 *     are loaded through a cluster client; writers overwrite and delete
 *     keys and vectors (each key's acknowledged version recorded; never two
 *     writes of one key in flight), readers read the keys nobody writes and
 *     check their bytes, a KNN thread runs exact queries, and a plain client
 *     of the source's primary reads the moving keys straight from it.
 *     `pomaictl cluster reshard` moves half of s1's slots to s2; the move is
 *     followed in etcd (copy, freeze, purge, gone) until the map gives the
 *     slots to s2 and every pomaid holds it (pomai-control's CLUSTER STATUS
 *     shows the move while it runs, and none after it). Then: every key
 *     reads back through the cluster with its last acknowledged state; each
 *     node, asked with a plain client, holds the keys of its set's slots
 *     with their bytes and answers MOVED for the others; every node's key
 *     and vector counts are its set's (the source purged its copies, on its
 *     replica too: nothing is held twice); the short-TTL keys are gone
 *     everywhere (the copy kept their TTL); exact KNN equals brute force; no
 *     writer failed (BUSY during the freeze is retried by libpomai), the
 *     writers' clients followed MOVED; no KNN during the move returned a key
 *     twice; the source answered its moving keys' reads with their bytes,
 *     then MOVED, never BUSY.
 *  2. The same slots moved back (s2 -> s1), under load, with the same
 *     checks; a second job while it runs is refused, and so is a request
 *     that breaks a rule (slots of two sets, to the set that owns them, an
 *     unknown set, slots out of range or reversed), each with its message.
 *  3. Cluster-wide collections on pomai-control's socket: CREATE is applied
 *     on every set (applied = sets) and exists on every node (COLLECTION
 *     LIST of each pomaid); the same name with other parameters is E_EXISTS,
 *     with the same ones OK again; with both pomai-controls of one set
 *     SIGSTOPped a CREATE answers pending, and the set gets the collection
 *     once they run again; DROP removes both everywhere, and their records
 *     in etcd go.
 *  4. A move restarted: with a copy rate (CLUSTER RESHARD's keys a second)
 *     the copy is stopped half done — the target's primary holds copies —
 *     then most of the moving keys are deleted on the source's primary, its
 *     pomai-control SIGSTOPped (the job still in copy, the target holding
 *     copies of deleted keys) and the node killed once its replica has the
 *     deletions. The replica's pomai-control takes over and starts the move
 *     again: the target drops its copies first, so after the flip no
 *     deleted key is back (on any node, through the cluster), the kept ones
 *     are there, and every node's counts are its set's.
 *
 * The seed is printed; POMAI_TEST_SEED=<n> replays the data and the writes
 * (not the timing); POMAI_CLUSTER_ONLY=<text> runs only the tests whose name
 * holds it; POMAI_CLUSTER_KEEP=1 leaves the directories behind.
 * Exits 77 (a failure under CI=true) when the machine cannot run a cluster
 * (cluster.h: root, ip, nsenter, etcd).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin_proto.h"
#include "agent.h"
#include "cluster.h"
#include "cluster_map.h"
#include "codec.h"
#include "ctl.h"
#include "cu_main.h"
#include "etcd.h"
#include "libclient.h"
#include "pomai.h"
#include "proc.h"
#include "rand.h"
#include "route.h"

#define SETS 2u
#define PER_SET 2u

/* ---------------------------------------------------------------- bounds */

/* The data: KEYS values of VAL_BYTES_MIN..VAL_BYTES_MAX bytes and VECS
 * vectors of VEC_DIM integer coordinates below VEC_COORD_MAX (every squared
 * L2 distance is an integer a float holds exactly, so brute force ranks as
 * pomaid does). */
#define KEYS 20000u
#define VECS 2000u
#define VAL_BYTES_MIN 8u
#define VAL_BYTES_MAX 64u
/* One key in BIG_EVERY holds VAL_BIG_BYTES (written by the writers too): a
 * step of the copy then fills the largest answer CLUSTER EXPORT gives. */
#define BIG_EVERY 500u
#define BIG_AT 3u
#define VAL_BIG_BYTES (48u << 10)
#define VEC_DIM 8u
#define VEC_COORD_MAX 64u
_Static_assert((double)VEC_DIM * (VEC_COORD_MAX - 1) * (VEC_COORD_MAX - 1) < (double)(1u << 24),
	       "every squared distance is an integer a float holds exactly");
/* TTLs: long ones outlive the suite (they only ride along with the copy);
 * short ones expire while the suite runs, after the copy has begun on a
 * normal machine: the target must drop them as the source would. */
#define TTL_LONG_MS 600000u
#define TTL_SHORT_MS 12000u
/* Neighbours a KNN asks for, and the queries checked against brute force
 * after a move (each over every vector: a few ms). */
#define KNN_K 10u
#define KNN_QUERIES 40u

/* The clients: a short first wait so that a map change is noticed at once,
 * and retries enough for a freeze on a loaded machine (100 ms doubled 8
 * times is 51 s). Requests in flight: the load's, the checks', each
 * writer's and reader's. */
#define CLIENT_TIMEOUT_MS 100u
#define CLIENT_RETRIES 8u
#define LOAD_IN_FLIGHT 1024u
#define CHECK_IN_FLIGHT 256u
#define WRITERS 2u
#define W_DEPTH 16u
#define R_DEPTH 16u
/* The plain client that reads the moving keys from the source's primary:
 * no retries (a BUSY must be seen, not retried), and a wait long enough
 * that a loaded machine does not time it out. */
#define SRC_READ_TIMEOUT_MS 2000u

/* Acknowledged writes before the move starts, and after it ended (so that
 * the writers write to the slots' new owner too). */
#define ACKS_BEFORE 1500u
#define ACKS_AFTER 1000u
/* How long the suite waits for an event at all (bounds, not delays): a
 * load's acknowledgements, a move of a few thousand keys, counts settling
 * on replicas, a set back from SIGSTOP. */
#define ACK_WAIT_MS 60000
#define MOVE_WAIT_MS 90000
#define EVENT_WAIT_MS 30000
/* How often the move's state is read from etcd while it runs. */
#define MOVE_POLL_MS 20
/* Mismatches printed per check (all are counted). */
#define DIFFS_PRINTED 5u

static const char *pomaid_path, *control_path, *ctl_path;
static uint64_t suite_seed;
static bool keep_dirs;
static struct cl_cluster cl;
static uint16_t slot_set[PM_CLUSTER_SLOTS];

/* ---------------------------------------------------------------- the data */

enum kclass { K_STABLE, K_TTL_LONG, K_TTL_SHORT, K_HOT };

/* Key i's class: one in ten stable, one in ten with a long TTL, one in
 * twenty with a short one, the rest written by the writers. */
static enum kclass kv_class(uint32_t i)
{
	switch (i % 10) {
	case 0: return K_STABLE;
	case 1: return K_TTL_LONG;
	case 9: return i % 20 == 9 ? K_TTL_SHORT : K_STABLE;
	default: return K_HOT;
	}
}

/* Vector j's: a tenth with a long TTL, half written by the writers. */
static enum kclass vec_class(uint32_t j)
{
	return j % 10 == 0 ? K_TTL_LONG : j % 2 ? K_HOT : K_STABLE;
}

/* What the suite knows of a key or vector: the version last acknowledged
 * (0: the load's) and whether that write was a deletion. A writer owns its
 * keys (i % WRITERS) and never has two writes of one in flight; a write that
 * failed (asserted) leaves the key unsure — it may have been applied (a
 * NOREPLICAS is applied on the primary) — until unsure_settle() reads it:
 * then its state must be the acknowledged one or that write's. */
struct kst {
	uint32_t ver, acked;
	bool del, inflight, unsure, unsure_del;
};
static struct kst kv_st[KEYS], vec_st[VECS];
/* The cluster the data was loaded into (a new one is empty). */
static bool loaded;
static uint64_t t_loaded_ms;

static uint32_t kv_key(uint32_t i, char *out)
{
	return (uint32_t)snprintf(out, 32, "k%u", i);
}

static uint32_t vec_key(uint32_t j, char *out)
{
	return (uint32_t)snprintf(out, 32, "v%u", j);
}

static uint64_t mix(uint64_t tag, uint32_t i, uint32_t ver)
{
	uint64_t s = suite_seed ^ (tag << 56);
	s = pm_test_rand(&s) ^ i;
	s = pm_test_rand(&s) ^ ver;
	return s;
}

/* Key i's value at version ver into out (VAL_BIG_BYTES): its length. */
static uint32_t kv_val(uint32_t i, uint32_t ver, uint8_t *out)
{
	uint64_t s = mix('k', i, ver);
	uint32_t len = VAL_BYTES_MIN + (uint32_t)(pm_test_rand(&s) % (VAL_BYTES_MAX - VAL_BYTES_MIN + 1));
	if (i % BIG_EVERY == BIG_AT)
		len = VAL_BIG_BYTES - (uint32_t)(pm_test_rand(&s) % VAL_BYTES_MAX);
	for (uint32_t b = 0; b < len; b++)
		out[b] = (uint8_t)pm_test_rand(&s);
	return len;
}

static void vec_val(uint32_t j, uint32_t ver, float *v)
{
	uint64_t s = mix('v', j, ver);
	for (uint32_t d = 0; d < VEC_DIM; d++)
		v[d] = (float)(pm_test_rand(&s) % VEC_COORD_MAX);
}

static uint16_t set_of_key(const char *key, uint32_t len)
{
	return slot_set[pm_slot_of(pm_route_hash(key, len))];
}

/* ---------------------------------------------------------------- the cluster */

/* The suite's cluster, ready and every set's replica streaming; the slot
 * map as pomai-control shows it in slot_set. A new cluster when the one
 * running is not healthy (its data then loaded again). */
static void cluster_need(void)
{
	bool fit = cl.nnodes == SETS * PER_SET;
	for (uint32_t i = 0; fit && i < cl.nnodes; i++) {
		const struct cl_node *n = &cl.nodes[i];
		fit = !n->stopped && !n->cut && pomaid_alive(&n->pm) && proc_alive(&n->control);
	}
	fit = fit && etcd_proc_alive(&cl.etcd) && cl_ready(&cl, 1, NULL, EVENT_WAIT_MS);
	if (!fit) {
		if (cl.nnodes)
			CU_ASSERT(cl_destroy(&cl));
		proc_kill_all();
		uint64_t t0 = proc_now_ms();
		cl.host_net = true; /* the mover reaches the target's pomaid (cluster.h) */
		bool made = cl_create(&cl, pomaid_path, control_path, SETS, PER_SET);
		cl.keep = keep_dirs;
		loaded = false;
		printf("\n  cluster of %u sets x %u nodes and etcd %s in %" PRIu64 " ms", SETS, PER_SET,
		       made ? "ready" : "NOT READY", proc_now_ms() - t0);
		fflush(stdout);
		CU_ASSERT_FATAL(made);
	}
	for (uint32_t s = 0; s < SETS; s++)
		CU_ASSERT_FATAL(cl_set_synced(&cl, cl.sets[s], CL_READY_WAIT_MS));
	CU_ASSERT_FATAL(cl_slot_sets(&cl, slot_set));
}

static struct pm_client *cluster_client(uint32_t in_flight)
{
	struct pm_client *c = cl_client(&cl, CLIENT_TIMEOUT_MS, CLIENT_RETRIES, in_flight);
	CU_ASSERT_FATAL(c != NULL);
	return c;
}

/* Every key and vector at its load version (0), pipelined. */
static bool load_all(void)
{
	struct pm_client *c = cluster_client(LOAD_IN_FLIGHT);
	struct pipe p = { .c = c };
	static uint8_t val[VAL_BIG_BYTES];
	float v[VEC_DIM];
	char key[32];
	t_loaded_ms = proc_now_ms(); /* the short TTLs run from before their writes */
	for (uint32_t i = 0; i < KEYS; i++) {
		enum kclass k = kv_class(i);
		struct pm_client_req r = { .op = PM_CLIENT_SET, .key = key, .klen = kv_key(i, key),
					   .value = val, .vlen = kv_val(i, 0, val),
					   .ttl_ms = k == K_TTL_LONG ? TTL_LONG_MS
						     : k == K_TTL_SHORT ? TTL_SHORT_MS : 0 };
		pipe_submit(&p, &r);
		kv_st[i] = (struct kst){ 0 };
	}
	for (uint32_t j = 0; j < VECS; j++) {
		vec_val(j, 0, v);
		struct pm_client_req r = { .op = PM_CLIENT_VADD, .key = key, .klen = vec_key(j, key),
					   .vec = v, .dim = VEC_DIM,
					   .ttl_ms = vec_class(j) == K_TTL_LONG ? TTL_LONG_MS : 0 };
		pipe_submit(&p, &r);
		vec_st[j] = (struct kst){ 0 };
	}
	bool ok = pipe_done(&p, "the load");
	pm_client_close(c);
	return ok;
}

/* ---------------------------------------------------------------- etcd: the move */

/* The move as etcd holds it: the job's state ("" when there is none) and
 * the map (its epoch, its move lines, which set owns each slot). */
struct etcd_look {
	bool read;
	char state[16];
	struct pm_cmap map;
};

static bool etcd_look(struct pm_etcd *e, struct etcd_look *l)
{
	char key[PM_ETCD_KEY_BYTES_MAX], err[256];
	struct pm_etcd_kvs job = { 0 }, map = { 0 };
	l->read = false;
	l->state[0] = '\0';
	snprintf(key, sizeof(key), "/pomai/%s/reshard", cl.name);
	bool ok = pm_etcd_range(e, key, NULL, &job, 5000) == PM_ETCD_OK;
	snprintf(key, sizeof(key), "/pomai/%s/slotmap", cl.name);
	ok = ok && pm_etcd_range(e, key, NULL, &map, 5000) == PM_ETCD_OK && map.n == 1 &&
	     pm_cmap_parse((const char *)map.kv[0].value, map.kv[0].value_len, &l->map, err,
			   sizeof(err)) == 0;
	if (ok && job.n == 1) {
		const char *st = strstr((const char *)job.kv[0].value, "state=");
		snprintf(l->state, sizeof(l->state), "%.*s", st ? (int)strcspn(st + 6, " \n") : 1,
			 st ? st + 6 : "?");
	}
	pm_etcd_kvs_free(&job);
	pm_etcd_kvs_free(&map);
	l->read = ok;
	return ok;
}

static struct pm_etcd *etcd_open(void)
{
	char err[256];
	struct pm_etcd *e = pm_etcd_open(cl_etcd_url(&cl), err, sizeof(err));
	if (!e)
		printf("\n  the suite's etcd client: %s", err);
	CU_ASSERT_FATAL(e != NULL);
	return e;
}

/* ---------------------------------------------------------------- writers, readers */

/* What runs during a move, shared with the main thread. */
struct load {
	atomic_bool stop;
	atomic_uint_fast64_t acked, failed;
	/* set by the main thread while the move runs (KNN answers counted then) */
	atomic_bool moving;
};

struct writer {
	struct load *ld;
	uint32_t id;
	struct pm_client *c;
	uint64_t rng;
	uint64_t acked, failed, kv_sets, kv_dels, vec_adds, vec_dels;
	enum pm_client_status first_err;
	char first_key[32];
	uint32_t first_attempts;
	struct pm_client_stats stats;
	pthread_t t;
};

struct wop {
	struct writer *w;
	struct kst *k;
	uint32_t ver;
	bool del;
	char key[32];
};

static void on_write(void *arg, const struct pm_client_result *r)
{
	struct wop *o = arg;
	struct writer *w = o->w;
	o->k->inflight = false;
	if (r->status == PM_CLIENT_OK) {
		o->k->acked = o->ver;
		o->k->del = o->del;
		w->acked++;
		atomic_fetch_add(&w->ld->acked, 1);
	} else {
		o->k->unsure = true;
		o->k->unsure_del = o->del;
		atomic_fetch_add(&w->ld->failed, 1);
		if (!w->failed++) {
			w->first_err = r->status;
			w->first_attempts = r->attempts;
			snprintf(w->first_key, sizeof(w->first_key), "%s", o->key);
		}
	}
	free(o);
}

/* One write of a key this writer owns that has none in flight: a new
 * version (85 %) or a deletion, of a value (80 %) or of a vector. */
static void write_one(struct writer *w)
{
	bool vec = pm_test_rand(&w->rng) % 100 >= 80;
	uint32_t n = vec ? VECS : KEYS, i = 0;
	struct kst *k = NULL;
	for (int tries = 0; tries < 8 && !k; tries++) {
		i = (uint32_t)(pm_test_rand(&w->rng) % n);
		i -= i % WRITERS;
		i += w->id;
		if (i >= n || (vec ? vec_class(i) : kv_class(i)) != K_HOT)
			continue;
		struct kst *c = vec ? &vec_st[i] : &kv_st[i];
		if (!c->inflight && !c->unsure)
			k = c;
	}
	if (!k)
		return;
	struct wop *o = malloc(sizeof(*o));
	if (!o) { /* said as a failure; no CUnit assertion off the main thread */
		atomic_fetch_add(&w->ld->failed, 1);
		w->failed++;
		return;
	}
	bool del = pm_test_rand(&w->rng) % 100 >= 85;
	*o = (struct wop){ .w = w, .k = k, .ver = ++k->ver, .del = del };
	uint32_t klen = vec ? vec_key(i, o->key) : kv_key(i, o->key);
	uint8_t val[VAL_BIG_BYTES];
	float v[VEC_DIM];
	struct pm_client_req r = { .key = o->key, .klen = klen, .cb = on_write, .arg = o };
	if (vec && del) {
		r.op = PM_CLIENT_VDEL;
		w->vec_dels++;
	} else if (vec) {
		vec_val(i, o->ver, v);
		r.op = PM_CLIENT_VADD, r.vec = v, r.dim = VEC_DIM;
		w->vec_adds++;
	} else if (del) {
		r.op = PM_CLIENT_DEL;
		w->kv_dels++;
	} else {
		r.op = PM_CLIENT_SET, r.value = val, r.vlen = kv_val(i, o->ver, val);
		w->kv_sets++;
	}
	k->inflight = true;
	enum pm_client_status st = pm_client_submit(w->c, &r, NULL);
	if (st != PM_CLIENT_OK) {
		struct pm_client_result res = { .status = st };
		on_write(o, &res);
	}
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	while (!atomic_load(&w->ld->stop)) {
		for (uint32_t n = 0; n < W_DEPTH && pm_client_in_flight(w->c) < W_DEPTH; n++)
			write_one(w);
		pm_client_poll(w->c, 2);
	}
	pm_client_drain(w->c);
	pm_client_stats(w->c, &w->stats);
	return NULL;
}

/* A reader of the keys nobody writes (stable, long TTL), through the
 * cluster or straight from one node (src: a plain client that must see the
 * moving keys' bytes, then MOVED, never BUSY). */
struct reader {
	struct load *ld;
	struct pm_client *c;
	bool plain;
	uint16_t first, last; /* plain: keys of these slots only */
	uint64_t rng;
	uint64_t reads, ok, moved, busy, timeouts, bad;
	pthread_t t;
};

struct rop {
	struct reader *rd;
	uint32_t i;
	bool vec;
};

static bool kv_is(uint32_t i, uint32_t ver, const struct pm_client_result *r)
{
	uint8_t want[VAL_BIG_BYTES];
	uint32_t n = kv_val(i, ver, want);
	return r->status == PM_CLIENT_OK && r->vlen == n && !memcmp(r->value, want, n);
}

static bool vec_is(uint32_t j, uint32_t ver, const struct pm_client_result *r)
{
	float want[VEC_DIM];
	vec_val(j, ver, want);
	return r->status == PM_CLIENT_OK && r->dim == VEC_DIM && !memcmp(r->vec, want, sizeof(want));
}

static void on_read(void *arg, const struct pm_client_result *r)
{
	struct rop *o = arg;
	struct reader *rd = o->rd;
	rd->reads++;
	if (r->status == PM_CLIENT_E_MOVED && rd->plain)
		rd->moved++;
	else if (r->status == PM_CLIENT_E_BUSY)
		rd->busy++;
	else if (r->status == PM_CLIENT_E_TIMEOUT && rd->plain)
		rd->timeouts++;
	else if (o->vec ? vec_is(o->i, 0, r) : kv_is(o->i, 0, r))
		rd->ok++;
	else if (rd->bad++ < DIFFS_PRINTED) {
		char key[32];
		if (o->vec)
			vec_key(o->i, key);
		else
			kv_key(o->i, key);
		printf("\n  a reader (%s): %s: %s (%u bytes), not its loaded bytes",
		       rd->plain ? "the source's primary" : "cluster", key,
		       pm_client_status_name(r->status), o->vec ? r->dim : r->vlen);
	}
	free(o);
}

/* The next key a reader reads: stable (or long TTL); a plain reader's of
 * its slots only. */
static void read_one(struct reader *rd)
{
	char key[32];
	for (int tries = 0; tries < 64; tries++) {
		bool vec = pm_test_rand(&rd->rng) % 10 == 0;
		uint32_t i = (uint32_t)(pm_test_rand(&rd->rng) % (vec ? VECS : KEYS));
		enum kclass k = vec ? vec_class(i) : kv_class(i);
		uint32_t klen = vec ? vec_key(i, key) : kv_key(i, key);
		uint16_t slot = pm_slot_of(pm_route_hash(key, klen));
		if ((k != K_STABLE && k != K_TTL_LONG) ||
		    (rd->plain && (slot < rd->first || slot > rd->last)))
			continue;
		struct rop *o = malloc(sizeof(*o));
		if (!o) {
			rd->bad++;
			return;
		}
		*o = (struct rop){ .rd = rd, .i = i, .vec = vec };
		struct pm_client_req r = { .op = vec ? PM_CLIENT_VGET : PM_CLIENT_GET, .key = key,
					   .klen = klen, .cb = on_read, .arg = o };
		if (pm_client_submit(rd->c, &r, NULL) != PM_CLIENT_OK) {
			free(o);
			rd->bad++;
		}
		return;
	}
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	while (!atomic_load(&rd->ld->stop)) {
		for (uint32_t n = 0; n < R_DEPTH && pm_client_in_flight(rd->c) < R_DEPTH; n++)
			read_one(rd);
		pm_client_poll(rd->c, 2);
	}
	pm_client_drain(rd->c);
	return NULL;
}

/* Exact KNN queries back to back through the cluster: an answer must never
 * hold a key twice (a set counts only the keys of slots it owns; the
 * client merges by key); fewer than k hits is allowed while slots move. */
struct knner {
	struct load *ld;
	struct pm_client *c;
	uint64_t rng;
	uint64_t queries, during_move, dups, errors, short_answers;
	pthread_t t;
};

static void *knn_main(void *arg)
{
	struct knner *q = arg;
	while (!atomic_load(&q->ld->stop)) {
		float v[VEC_DIM];
		struct pm_client_hit hits[KNN_K];
		uint8_t keys[KNN_K * 32];
		struct pm_client_knn_result res = { .hits = hits, .hits_cap = KNN_K, .keys = keys,
						    .keys_cap = sizeof(keys) };
		struct pm_client_knn_opts o = { .k = KNN_K, .exact = true };
		for (uint32_t d = 0; d < VEC_DIM; d++)
			v[d] = (float)(pm_test_rand(&q->rng) % VEC_COORD_MAX);
		bool moving = atomic_load(&q->ld->moving);
		enum pm_client_status st = pm_client_knn(q->c, v, VEC_DIM, &o, &res);
		q->queries++;
		q->during_move += moving;
		if (st != PM_CLIENT_OK) {
			if (q->errors++ < DIFFS_PRINTED)
				printf("\n  a KNN during the load: %s", pm_client_status_name(st));
			continue;
		}
		q->short_answers += res.count < KNN_K;
		for (uint32_t a = 0; a < res.count; a++)
			for (uint32_t b = a + 1; b < res.count; b++)
				if (hits[a].klen == hits[b].klen &&
				    !memcmp(hits[a].key, hits[b].key, hits[a].klen) &&
				    q->dups++ < DIFFS_PRINTED)
					printf("\n  a KNN answer holds %.*s twice (hits %u and %u)",
					       (int)hits[a].klen, (const char *)hits[a].key, a, b);
	}
	return NULL;
}

/* ---------------------------------------------------------------- checks after a move */

/* The keys a failed write left unsure, read through the cluster: each holds
 * its acknowledged state or that of the write that failed, which it then
 * is known to hold. The keys that hold neither (said). */
static uint64_t unsure_settle(void)
{
	struct pm_client *c = cluster_client(0);
	static uint8_t buf[VAL_BIG_BYTES];
	float v[VEC_DIM];
	char key[32];
	uint64_t bad = 0, settled = 0;
	for (uint32_t n = 0; n < KEYS + VECS; n++) {
		bool vec = n >= KEYS;
		uint32_t i = vec ? n - KEYS : n;
		struct kst *k = vec ? &vec_st[i] : &kv_st[i];
		if (!k->unsure)
			continue;
		struct pm_client_result r = { 0 };
		size_t vl = 0;
		struct pm_client_vector out = { .vec = v, .cap = VEC_DIM };
		r.status = vec ? pm_client_vget(c, key, vec_key(i, key), &out)
			       : pm_client_get(c, key, kv_key(i, key), buf, sizeof(buf), &vl);
		r.value = buf, r.vlen = (uint32_t)vl, r.vec = v, r.dim = out.dim;
		bool absent = r.status == PM_CLIENT_NOT_FOUND;
		bool is_acked = absent ? k->del : !k->del && (vec ? vec_is(i, k->acked, &r)
							       : kv_is(i, k->acked, &r));
		bool is_failed = absent ? k->unsure_del : !k->unsure_del && (vec ? vec_is(i, k->ver, &r)
										: kv_is(i, k->ver, &r));
		if (is_failed && !is_acked) {
			k->acked = k->ver;
			k->del = k->unsure_del;
		} else if (!is_acked && bad++ < DIFFS_PRINTED) {
			printf("\n  %s: %s; acknowledged: %s %u; the failed write: %s %u", key,
			       pm_client_status_name(r.status), k->del ? "DEL of" : "version", k->acked,
			       k->unsure_del ? "DEL of" : "version", k->ver);
		}
		k->unsure = !is_acked && !is_failed;
		settled++;
	}
	pm_client_close(c);
	if (settled)
		printf("\n  %" PRIu64 " keys a failed write left unsure read back: %" PRIu64
		       " hold neither state", settled, bad);
	return bad;
}

/* A key's state as the suite knows it: absent, or present at version ver;
 * false when it cannot be known (a failed write; a short TTL). */
static bool kv_expect(uint32_t i, bool *present, uint32_t *ver)
{
	if (kv_st[i].unsure || kv_class(i) == K_TTL_SHORT)
		return false;
	*present = !kv_st[i].del;
	*ver = kv_st[i].acked;
	return true;
}

static bool vec_expect(uint32_t j, bool *present, uint32_t *ver)
{
	if (vec_st[j].unsure)
		return false;
	*present = !vec_st[j].del;
	*ver = vec_st[j].acked;
	return true;
}

/* Every key and vector read through one client: the cluster's (set
 * PM_CMAP_NONE), or a node's (its set: found with its bytes on the owner,
 * MOVED on any other). */
struct sweep {
	const char *who;
	uint16_t set;
	struct pm_client *c;
	uint64_t bad, found, moved, absent, checked;
	pthread_t t;
};

struct sop {
	struct sweep *sw;
	uint32_t i;
	bool vec;
};

static void on_sweep(void *arg, const struct pm_client_result *r)
{
	struct sop *o = arg;
	struct sweep *sw = o->sw;
	char key[32];
	uint32_t klen = o->vec ? vec_key(o->i, key) : kv_key(o->i, key);
	uint16_t owner = set_of_key(key, klen);
	bool present = false, ok;
	uint32_t ver = 0;
	if (o->vec)
		vec_expect(o->i, &present, &ver);
	else
		kv_expect(o->i, &present, &ver);
	sw->checked++;
	sw->found += r->status == PM_CLIENT_OK;
	sw->moved += r->status == PM_CLIENT_E_MOVED;
	sw->absent += r->status == PM_CLIENT_NOT_FOUND;
	if (sw->set != PM_CMAP_NONE && sw->set != owner)
		ok = r->status == PM_CLIENT_E_MOVED;
	else if (!present)
		ok = r->status == PM_CLIENT_NOT_FOUND;
	else
		ok = o->vec ? vec_is(o->i, ver, r) : kv_is(o->i, ver, r);
	if (!ok && sw->bad++ < DIFFS_PRINTED)
		printf("\n  %s: %s (slot %u, set s%u's): %s (%u bytes); want %s", sw->who, key,
		       pm_slot_of(pm_route_hash(key, klen)), owner + 1u, pm_client_status_name(r->status),
		       o->vec ? r->dim : r->vlen,
		       sw->set != PM_CMAP_NONE && sw->set != owner ? "MOVED"
		       : !present ? "NOT_FOUND" : "its last acknowledged bytes");
	free(o);
}

static void *sweep_main(void *arg)
{
	struct sweep *sw = arg;
	char key[32];
	for (uint32_t n = 0; n < KEYS + VECS; n++) {
		bool vec = n >= KEYS, present;
		uint32_t i = vec ? n - KEYS : n, ver;
		if (!(vec ? vec_expect(i, &present, &ver) : kv_expect(i, &present, &ver)))
			continue;
		struct sop *o = malloc(sizeof(*o));
		if (!o) {
			sw->bad++;
			break;
		}
		*o = (struct sop){ .sw = sw, .i = i, .vec = vec };
		struct pm_client_req r = { .op = vec ? PM_CLIENT_VGET : PM_CLIENT_GET, .key = key,
					   .klen = vec ? vec_key(i, key) : kv_key(i, key),
					   .cb = on_sweep, .arg = o };
		if (pm_client_submit(sw->c, &r, NULL) != PM_CLIENT_OK) {
			free(o);
			sw->bad++;
		}
	}
	pm_client_drain(sw->c);
	return NULL;
}

/* Through the cluster, then every node at once: keys and vectors where
 * their slots say. The mismatches. */
static uint64_t sweep_all(void)
{
	struct sweep per[1 + CL_NODES_MAX];
	uint64_t bad = 0;
	per[0] = (struct sweep){ .who = "cluster client", .set = PM_CMAP_NONE,
				 .c = cluster_client(CHECK_IN_FLIGHT) };
	for (uint32_t n = 0; n < cl.nnodes; n++) {
		per[1 + n] = (struct sweep){ .who = cl.nodes[n].name,
					     .set = cl_set_index(&cl, cl.nodes[n].set),
					     .c = cl_node_client(&cl.nodes[n], LIB_TIMEOUT_MS, LIB_RETRIES,
								 CHECK_IN_FLIGHT) };
		CU_ASSERT_FATAL(per[1 + n].c != NULL);
	}
	for (uint32_t n = 0; n <= cl.nnodes; n++)
		pthread_create(&per[n].t, NULL, sweep_main, &per[n]);
	for (uint32_t n = 0; n <= cl.nnodes; n++) {
		pthread_join(per[n].t, NULL);
		pm_client_close(per[n].c);
		printf("\n  %s: %" PRIu64 " asked: %" PRIu64 " found, %" PRIu64 " NOT_FOUND, %" PRIu64
		       " MOVED, %" PRIu64 " not as the slot map and the writes say",
		       per[n].who, per[n].checked, per[n].found, per[n].absent, per[n].moved,
		       per[n].bad);
		bad += per[n].bad;
	}
	return bad;
}

/* The keys and vectors each set must hold (its slots', live), into want. */
static void counts_expected(uint64_t *want)
{
	char key[32];
	for (uint32_t s = 0; s < SETS; s++)
		want[s] = 0;
	for (uint32_t i = 0; i < KEYS; i++)
		if (kv_class(i) != K_TTL_SHORT && !kv_st[i].del)
			want[set_of_key(key, kv_key(i, key))]++;
	for (uint32_t j = 0; j < VECS; j++)
		if (!vec_st[j].del)
			want[set_of_key(key, vec_key(j, key))]++;
}

/* A node's keys + vectors over its shards (SHARDS on its admin socket); -1
 * when it did not answer. */
static long long node_count(const struct cl_node *n)
{
	static char text[1 << 16];
	if (ctl_admin(n->sock, "SHARDS", text, sizeof(text)) != PM_ADMIN_OK)
		return -1;
	long long sum = 0;
	for (const char *p = text; (p = strstr(p, "\nkeys:")); p += 6)
		sum += strtoll(p + 6, NULL, 10);
	for (const char *p = text; (p = strstr(p, "\nvectors:")); p += 9)
		sum += strtoll(p + 9, NULL, 10);
	return sum;
}

/* Every node holds its set's count (polled until ms: replicas apply the
 * purge, expiry reaps the short TTLs); printed when not. */
static bool counts_settle(int ms)
{
	uint64_t want[SETS];
	long long got[CL_NODES_MAX];
	counts_expected(want);
	uint64_t deadline = proc_now_ms() + (uint64_t)ms;
	bool all;
	for (;;) {
		all = true;
		for (uint32_t n = 0; n < cl.nnodes; n++) {
			got[n] = node_count(&cl.nodes[n]);
			all &= got[n] == (long long)want[cl_set_index(&cl, cl.nodes[n].set)];
		}
		if (all || proc_now_ms() >= deadline)
			break;
		proc_pause_ms(PROC_POLL_MS * 5);
	}
	printf("\n  keys + vectors per node%s:", all ? "" : " (NOT as the slot map says)");
	for (uint32_t n = 0; n < cl.nnodes; n++)
		printf(" %s (%s) %lld, want %" PRIu64 ";", cl.nodes[n].name, cl.nodes[n].set, got[n],
		       want[cl_set_index(&cl, cl.nodes[n].set)]);
	return all;
}

/* The short-TTL keys read NOT_FOUND through the cluster once their TTL has
 * run out (polled: a copy that dropped the TTL would live on). */
static bool short_ttl_gone(int ms)
{
	struct pm_client *c = cluster_client(CHECK_IN_FLIGHT);
	uint64_t deadline = t_loaded_ms + TTL_SHORT_MS + (uint64_t)ms;
	uint32_t left = 0;
	char key[32];
	uint8_t buf[VAL_BYTES_MAX];
	for (;;) {
		left = 0;
		for (uint32_t i = 0; i < KEYS; i++) {
			if (kv_class(i) != K_TTL_SHORT)
				continue;
			size_t vl;
			enum pm_client_status st = pm_client_get(c, key, kv_key(i, key), buf,
								 sizeof(buf), &vl);
			left += st != PM_CLIENT_NOT_FOUND;
		}
		if (!left || proc_now_ms() >= deadline)
			break;
		proc_pause_ms(PROC_POLL_MS * 10);
	}
	pm_client_close(c);
	if (left)
		printf("\n  %u short-TTL keys still read back %" PRIu64 " ms after their TTL ran out",
		       left, proc_now_ms() - t_loaded_ms - TTL_SHORT_MS);
	return left == 0;
}

/* Exact KNN through the cluster against brute force over the live vectors:
 * the queries that differ. */
struct hit {
	float dist;
	uint32_t j;
};

static int vkey_cmp(uint32_t a, uint32_t b)
{
	char ka[32], kb[32];
	uint32_t la = vec_key(a, ka), lb = vec_key(b, kb);
	int c = memcmp(ka, kb, la < lb ? la : lb);
	return c ? c : (int)la - (int)lb;
}

static bool hit_before(const struct hit *a, const struct hit *b)
{
	return a->dist < b->dist || (a->dist == b->dist && vkey_cmp(a->j, b->j) < 0);
}

static uint64_t knn_check(void)
{
	struct pm_client *c = cluster_client(0);
	float (*vecs)[VEC_DIM] = malloc(sizeof(float) * VEC_DIM * VECS);
	uint64_t bad = 0;
	uint64_t rng = suite_seed ^ 0x6b6e6eull;
	CU_ASSERT_FATAL(vecs != NULL);
	for (uint32_t j = 0; j < VECS; j++)
		vec_val(j, vec_st[j].acked, vecs[j]);
	for (uint32_t q = 0; q < KNN_QUERIES; q++) {
		float v[VEC_DIM];
		struct hit best[KNN_K];
		uint32_t nb = 0;
		for (uint32_t d = 0; d < VEC_DIM; d++)
			v[d] = (float)(pm_test_rand(&rng) % VEC_COORD_MAX);
		for (uint32_t j = 0; j < VECS; j++) {
			if (vec_st[j].del || vec_st[j].unsure)
				continue;
			struct hit h = { .dist = 0, .j = j };
			for (uint32_t d = 0; d < VEC_DIM; d++)
				h.dist += (vecs[j][d] - v[d]) * (vecs[j][d] - v[d]);
			uint32_t at = nb < KNN_K ? nb++ : KNN_K;
			for (; at > 0 && hit_before(&h, &best[at - 1]); at--)
				if (at < KNN_K)
					best[at] = best[at - 1];
			if (at < KNN_K)
				best[at] = h;
		}
		struct pm_client_hit hits[KNN_K];
		uint8_t keys[KNN_K * 32];
		struct pm_client_knn_result res = { .hits = hits, .hits_cap = KNN_K, .keys = keys,
						    .keys_cap = sizeof(keys) };
		struct pm_client_knn_opts o = { .k = KNN_K, .exact = true };
		enum pm_client_status st = pm_client_knn(c, v, VEC_DIM, &o, &res);
		bool same = st == PM_CLIENT_OK && res.count == nb;
		for (uint32_t k = 0; k < nb && same; k++) {
			char key[32];
			uint32_t kl = vec_key(best[k].j, key);
			same = hits[k].klen == kl && !memcmp(hits[k].key, key, kl) &&
			       hits[k].dist == best[k].dist;
		}
		if (!same && bad++ < DIFFS_PRINTED) {
			printf("\n  exact KNN %u through the cluster: %s, %u hits, want %u:", q,
			       pm_client_status_name(st), st == PM_CLIENT_OK ? res.count : 0, nb);
			for (uint32_t k = 0; k < nb; k++) {
				char key[32];
				vec_key(best[k].j, key);
				bool have = st == PM_CLIENT_OK && k < res.count;
				printf("\n    %2u: %-8.*s %8.0f | brute force %-8s %8.0f", k,
				       have ? (int)hits[k].klen : 1, have ? (const char *)hits[k].key : "-",
				       have ? hits[k].dist : -1.0f, key, best[k].dist);
			}
		}
	}
	free(vecs);
	pm_client_close(c);
	return bad;
}

/* ---------------------------------------------------------------- a move under load */

/* What a move asks and what it saw. */
struct move {
	uint16_t first, last;
	const char *from, *to;
	bool by_pomaictl;              /* else CLUSTER RESHARD on a control socket */
	void (*while_running)(struct move *mv); /* once the job is recorded (may be NULL) */
	/* seen */
	long long epoch_before, epoch_after;
	uint64_t t_start, t_freeze, t_purge, t_done; /* ms from the request; 0: not seen */
	bool started, done, second_refused;
	bool status_showed; /* a pomai-control's CLUSTER STATUS showed the move */
	bool status_clear;  /* and none shows one once it is over */
};

/* The move requested on n1's pomai-control (pomaictl or the socket). */
static bool move_request(struct move *mv)
{
	static char out[CTL_OUT_BYTES];
	char args[128];
	int rc;
	if (mv->by_pomaictl) {
		snprintf(args, sizeof(args), "cluster reshard --slots %u-%u --to %s", mv->first,
			 mv->last, mv->to);
		rc = ctl_run(ctl_path, cl.nodes[0].csock, args, out);
	} else {
		snprintf(args, sizeof(args), "CLUSTER RESHARD %u %u %s", mv->first, mv->last, mv->to);
		rc = ctl_admin(cl.nodes[0].csock, args, out, CTL_OUT_BYTES);
	}
	bool ok = rc == 0 && strstr(out, "reshard:started") && strstr(out, "to:") &&
		  strstr(strstr(out, "to:"), mv->to);
	if (!ok)
		printf("\n  `%s` on %s: %d: %.300s", args, cl.nodes[0].name, rc, out);
	return ok;
}

/* Follow the job in etcd until it is gone and the map gives the slots to
 * the target with no move line, then until every pomaid holds that map. */
static void move_follow(struct move *mv, struct pm_etcd *e, uint64_t t0)
{
	struct etcd_look *l = malloc(sizeof(*l));
	uint16_t to = PM_CMAP_NONE;
	if (!l)
		return; /* not done: said by the caller (it may have threads running) */
	uint64_t deadline = t0 + MOVE_WAIT_MS;
	char head[64];
	static char text[CL_STATUS_BYTES];
	snprintf(head, sizeof(head), "# Move %u-%u\r\nfrom:%s\r\nto:%s\r\n", mv->first, mv->last,
		 mv->from, mv->to);
	while (proc_now_ms() < deadline) {
		if (!mv->status_showed &&
		    ctl_admin(cl.nodes[0].csock, "CLUSTER STATUS", text, sizeof(text)) == PM_ADMIN_OK)
			mv->status_showed = strstr(text, head) != NULL;
		if (etcd_look(e, l)) {
			uint64_t t = proc_now_ms() - t0;
			if (!strcmp(l->state, "freeze") && !mv->t_freeze)
				mv->t_freeze = t;
			if (!strcmp(l->state, "purge") && !mv->t_purge)
				mv->t_purge = t;
			to = pm_cmap_set_index(&l->map, mv->to);
			bool given = to != PM_CMAP_NONE && l->map.nmoves == 0;
			for (uint32_t s = mv->first; s <= mv->last && given; s++)
				given = l->map.slot_set[s] == to;
			if (!l->state[0] && given) {
				mv->t_done = t;
				mv->done = true;
				break;
			}
		}
		proc_pause_ms(MOVE_POLL_MS);
	}
	if (!mv->done) {
		printf("\n  the move of %u-%u to %s did not end in %d ms: the job's state \"%s\","
		       " %u move lines in map epoch %" PRIu64, mv->first, mv->last, mv->to,
		       MOVE_WAIT_MS, l->state, l->map.nmoves, l->map.epoch);
		cl_print(&cl);
		for (uint32_t n = 0; n < cl.nnodes; n++)
			cl_node_log_tail(&cl.nodes[n]);
	} else {
		mv->done = cl_ready(&cl, (long long)l->map.epoch, &mv->epoch_after, EVENT_WAIT_MS) &&
			   mv->epoch_after == (long long)l->map.epoch;
		mv->status_clear = true;
		for (uint32_t n = 0; n < cl.nnodes; n++)
			mv->status_clear &= ctl_admin(cl.nodes[n].csock, "CLUSTER STATUS", text,
						      sizeof(text)) == PM_ADMIN_OK &&
					    !strstr(text, "# Move");
	}
	free(l);
}

/* Move mv's slots while writers, readers and KNN queries go on; then every
 * check of the file's header (test 1). */
static void move_under_load(struct move *mv)
{
	static struct load ld;
	static struct writer ws[WRITERS];
	static struct reader rd, src;
	static struct knner kq;
	struct cl_node *sp = cl_primary(&cl, mv->from);
	CU_ASSERT_FATAL(sp != NULL);
	CU_ASSERT_FATAL(cl_ready(&cl, 1, &mv->epoch_before, EVENT_WAIT_MS));
	for (uint32_t s = mv->first; s <= mv->last; s++)
		CU_ASSERT_FATAL(slot_set[s] == cl_set_index(&cl, mv->from));
	memset(&ld, 0, sizeof(ld));
	uint64_t seed = suite_seed ^ ((uint64_t)mv->first << 32) ^ (uint64_t)mv->to[1];
	/* every client opened before any thread runs (no fatal assertion while one does) */
	bool opened = true;
	for (uint32_t w = 0; w < WRITERS; w++) {
		ws[w] = (struct writer){ .ld = &ld, .id = w, .rng = seed ^ (w + 1u) * 0x9e37ull,
					 .c = cl_client(&cl, CLIENT_TIMEOUT_MS, CLIENT_RETRIES,
							W_DEPTH * 2) };
		opened &= ws[w].c != NULL;
	}
	rd = (struct reader){ .ld = &ld, .rng = seed ^ 0x7264ull,
			      .c = cl_client(&cl, CLIENT_TIMEOUT_MS, CLIENT_RETRIES, R_DEPTH * 2) };
	src = (struct reader){ .ld = &ld, .plain = true, .first = mv->first, .last = mv->last,
			       .rng = seed ^ 0x737263ull,
			       .c = cl_node_client(sp, SRC_READ_TIMEOUT_MS, 0, R_DEPTH * 2) };
	kq = (struct knner){ .ld = &ld, .rng = seed ^ 0x6b6eull,
			     .c = cl_client(&cl, CLIENT_TIMEOUT_MS, CLIENT_RETRIES, 0) };
	opened &= rd.c && src.c && kq.c;
	if (!opened) {
		for (uint32_t w = 0; w < WRITERS; w++)
			pm_client_close(ws[w].c);
		pm_client_close(rd.c);
		pm_client_close(src.c);
		pm_client_close(kq.c);
		CU_FAIL_FATAL("a client of the load did not open");
	}
	for (uint32_t w = 0; w < WRITERS; w++)
		pthread_create(&ws[w].t, NULL, writer_main, &ws[w]);
	pthread_create(&rd.t, NULL, reader_main, &rd);
	pthread_create(&src.t, NULL, reader_main, &src);
	pthread_create(&kq.t, NULL, knn_main, &kq);
	uint64_t deadline = proc_now_ms() + ACK_WAIT_MS;
	while (atomic_load(&ld.acked) < ACKS_BEFORE && proc_now_ms() < deadline)
		proc_pause_ms(PROC_POLL_MS);
	bool before = atomic_load(&ld.acked) >= ACKS_BEFORE;
	/* the move (followed in etcd: a handle that does not open fails the move) */
	char err[256];
	struct pm_etcd *e = pm_etcd_open(cl_etcd_url(&cl), err, sizeof(err));
	if (!e)
		printf("\n  the suite's etcd client: %s", err);
	uint64_t t0 = proc_now_ms();
	uint64_t acked0 = atomic_load(&ld.acked);
	if (t_loaded_ms + TTL_SHORT_MS > t0)
		printf("\n  the move begins %" PRIu64 " ms before the short TTLs run out",
		       t_loaded_ms + TTL_SHORT_MS - t0);
	atomic_store(&ld.moving, true);
	mv->started = e && move_request(mv);
	if (mv->started && mv->while_running)
		mv->while_running(mv);
	if (mv->started)
		move_follow(mv, e, t0);
	atomic_store(&ld.moving, false);
	uint64_t acked_during = atomic_load(&ld.acked) - acked0;
	pm_etcd_close(e);
	/* the writers go on against the slots' new owner, then stop */
	uint64_t acked1 = atomic_load(&ld.acked);
	deadline = proc_now_ms() + ACK_WAIT_MS;
	while (atomic_load(&ld.acked) < acked1 + ACKS_AFTER && proc_now_ms() < deadline)
		proc_pause_ms(PROC_POLL_MS);
	bool after = atomic_load(&ld.acked) >= acked1 + ACKS_AFTER;
	atomic_store(&ld.stop, true);
	uint64_t w_failed = 0, moved = 0, refreshes = 0;
	for (uint32_t w = 0; w < WRITERS; w++) {
		pthread_join(ws[w].t, NULL);
		pm_client_close(ws[w].c);
		w_failed += ws[w].failed;
		moved += ws[w].stats.moved;
		refreshes += ws[w].stats.map_refreshes;
		printf("\n  writer %u: %" PRIu64 " acknowledged (%" PRIu64 " SET, %" PRIu64 " DEL, %" PRIu64
		       " VADD, %" PRIu64 " VDEL sent), %" PRIu64 " failed; its client: %" PRIu64
		       " MOVED, %" PRIu64 " maps, %" PRIu64 " resends",
		       w, ws[w].acked, ws[w].kv_sets, ws[w].kv_dels, ws[w].vec_adds, ws[w].vec_dels,
		       ws[w].failed, ws[w].stats.moved, ws[w].stats.map_refreshes, ws[w].stats.resends);
		if (ws[w].failed)
			printf(" (the first: %s after %u attempts: %s)", ws[w].first_key,
			       ws[w].first_attempts, pm_client_status_name(ws[w].first_err));
	}
	pthread_join(rd.t, NULL);
	pthread_join(src.t, NULL);
	pthread_join(kq.t, NULL);
	pm_client_close(rd.c);
	pm_client_close(src.c);
	pm_client_close(kq.c);
	printf("\n  move %u-%u %s -> %s (map epoch %lld -> %lld): requested, freeze at %lld ms,"
	       " flipped (purge) at %lld ms, done at %lld ms; %" PRIu64 " writes acknowledged"
	       " meanwhile; CLUSTER STATUS showed it %s, and none after it %s",
	       mv->first, mv->last, mv->from, mv->to, mv->epoch_before,
	       mv->epoch_after, mv->t_freeze ? (long long)mv->t_freeze : -1LL,
	       mv->t_purge ? (long long)mv->t_purge : -1LL, mv->done ? (long long)mv->t_done : -1LL,
	       acked_during, mv->status_showed ? "yes" : "NO", mv->status_clear ? "yes" : "NO");
	printf("\n  readers: cluster %" PRIu64 " reads, %" PRIu64 " wrong, %" PRIu64 " BUSY;"
	       " %s's primary %s (plain client, its moving keys) %" PRIu64 " reads: %" PRIu64
	       " with their bytes, %" PRIu64 " MOVED, %" PRIu64 " BUSY, %" PRIu64 " timed out, %"
	       PRIu64 " wrong; KNN %" PRIu64 " queries (%" PRIu64 " during the move), %" PRIu64
	       " with fewer than %u hits, %" PRIu64 " with a key twice, %" PRIu64 " failed",
	       rd.reads, rd.bad, rd.busy, mv->from, sp->name, src.reads, src.ok, src.moved, src.busy,
	       src.timeouts, src.bad, kq.queries, kq.during_move, kq.short_answers, KNN_K, kq.dups,
	       kq.errors);
	fflush(stdout);
	CU_ASSERT(before);
	CU_ASSERT_FATAL(mv->started);
	CU_ASSERT_FATAL(mv->done);
	CU_ASSERT(mv->epoch_after > mv->epoch_before);
	CU_ASSERT(mv->t_freeze != 0 || mv->t_purge != 0); /* the job was seen on its way */
	CU_ASSERT(mv->status_showed);
	CU_ASSERT(mv->status_clear);
	CU_ASSERT(after);
	CU_ASSERT_EQUAL(w_failed, 0);
	CU_ASSERT(moved > 0);           /* the writers' clients were told, and followed */
	CU_ASSERT(refreshes > WRITERS); /* a map each at the start, and more */
	CU_ASSERT_EQUAL(rd.bad, 0);
	CU_ASSERT_EQUAL(src.bad, 0);
	CU_ASSERT_EQUAL(src.busy, 0);   /* reads are served through the freeze */
	CU_ASSERT(src.moved > 0);       /* and the source said MOVED once the slots were gone */
	CU_ASSERT(kq.during_move > 0);
	CU_ASSERT_EQUAL(kq.dups, 0);
	CU_ASSERT_EQUAL(kq.errors, 0);
	/* the data where the new map says */
	CU_ASSERT_FATAL(cl_slot_sets(&cl, slot_set));
	for (uint32_t s = mv->first; s <= mv->last; s++)
		CU_ASSERT_FATAL(slot_set[s] == cl_set_index(&cl, mv->to));
	for (uint32_t s = 0; s < SETS; s++)
		CU_ASSERT(cl_set_synced(&cl, cl.sets[s], EVENT_WAIT_MS));
	CU_ASSERT_EQUAL(unsure_settle(), 0);
	CU_ASSERT_EQUAL(sweep_all(), 0);
	CU_ASSERT(short_ttl_gone(EVENT_WAIT_MS));
	CU_ASSERT(counts_settle(EVENT_WAIT_MS));
	CU_ASSERT_EQUAL(knn_check(), 0);
}


/* ---------------------------------------------------------------- test 0: one source node */

/* Test 0 plays pomai-control for one pomaid (no etcd): the map with a move
 * of every slot out of its set, then its freeze; keys LONG_KEY_BYTES long
 * so that LONG_KEYS changes (a SET and a DEL of each) fill a shard's
 * changed-keys list (1 MiB, dataplane/cluster.h) a few times over. */
#define LONG_KEY_BYTES 1000u
#define LONG_KEYS 2600u
#define SHORT_KEYS 200u
#define READS_PER_KEY 5u
#define ONE_IN_FLIGHT 512u
#define ONE_TIMEOUT_MS 5000u
#define ONE_LEASE_MS 30000u
/* CLUSTER EXPORT's answer opens with u32 cursor, flags, keys; its flags
 * (pomaid's PM_CLUSTER_EXPORT_DONE and _OVERFLOW, dataplane/cluster.h). */
#define EXPORT_DONE 0x1u
#define EXPORT_OVERFLOW 0x2u

static const char *const one_flags[] = {
	"--arena-bytes", "64M", "--seeds", "65536", "--hugepages", "no", "--wal", "sync",
	"--cluster", "on", NULL
};

static uint64_t boot_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The map for test 0: n1 (this pomaid) in s1 owning every slot, moving all
 * of them to s2 (no primary) in `state`. */
static int one_map(const struct pomaid *d, uint64_t epoch, const char *state)
{
	char doc[1024], sock[PATH_MAX + 16];
	snprintf(sock, sizeof(sock), "%s/admin.sock", d->dir);
	snprintf(doc, sizeof(doc),
		 "pomai-map version=1 epoch=%" PRIu64 "\n"
		 "set name=s1 epoch=1 primary=n1\n"
		 "set name=s2 epoch=1 primary=-\n"
		 "node name=n1 set=s1 addr=127.0.0.1 udp=%u tcp=%u repl=%u shards=2\n"
		 "node name=n2 set=s2 addr=127.0.0.2 udp=31000 tcp=0 repl=0 shards=2\n"
		 "slots first=0 last=16383 set=s1\n"
		 "move first=0 last=16383 from=s1 to=s2 state=%s\n",
		 epoch, d->base, d->base - 1u, d->repl_port, state);
	const char *argv[] = { "CLUSTER", "MAP", "n1", doc };
	uint8_t buf[4096], st;
	const char *text;
	size_t tlen;
	int fd = pm_admin_connect(sock);
	int rc = fd >= 0 ? pm_admin_call(fd, 4, argv, buf, sizeof(buf), CTL_WAIT_MS, &st, &text,
					 &tlen) : -1;
	if (fd >= 0)
		close(fd);
	if (rc != 0 || st != PM_ADMIN_OK)
		printf("\n  CLUSTER MAP epoch %" PRIu64 " (%s): %d/%d: %.*s", epoch, state, rc,
		       rc ? -1 : st, rc ? 0 : (int)tlen, rc ? "" : text);
	return rc != 0 ? -1 : st;
}

/* Every changed key noted on shard `shard`, taken (CLUSTER EXPORT DIRTY
 * until the list is empty): how many, and whether a step said it had lost
 * some (OVERFLOW). -1: a call failed. */
static long long one_drain(const struct pomaid *d, uint32_t shard, bool *lost)
{
	char sock[PATH_MAX + 16], sh[16];
	snprintf(sock, sizeof(sock), "%s/admin.sock", d->dir);
	snprintf(sh, sizeof(sh), "%u", shard);
	const char *argv[] = { "CLUSTER", "EXPORT", sh, "0", "16383", "DIRTY" };
	uint8_t *buf = malloc(PM_ADMIN_BUFFER_BYTES), st;
	int fd = pm_admin_connect(sock);
	long long keys = 0;
	uint32_t head[3] = { 0 };
	*lost = false;
	for (uint32_t step = 0; buf && fd >= 0 && !(head[1] & EXPORT_DONE); step++) {
		const char *text;
		size_t tlen;
		if (pm_admin_call(fd, 6, argv, buf, PM_ADMIN_BUFFER_BYTES, CTL_WAIT_MS, &st, &text,
				  &tlen) != 0 || st != PM_ADMIN_OK || tlen < sizeof(head)) {
			keys = -1;
			break;
		}
		memcpy(head, text, sizeof(head));
		keys += head[2];
		*lost |= (head[1] & EXPORT_OVERFLOW) != 0;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return buf && fd >= 0 ? keys : -1;
}

static long long one_drain_all(const struct pomaid *d, bool *lost)
{
	long long all = 0;
	*lost = false;
	for (uint32_t s = 0; s < 2; s++) {
		bool l;
		long long n = one_drain(d, s, &l);
		if (n < 0)
			return -1;
		all += n;
		*lost |= l;
	}
	return all;
}

/* Pipelined requests of test 0 through one client: answers counted by kind. */
struct one_count {
	uint64_t ok, absent, busy, other;
	enum pm_client_status first_other;
};

static void on_one(void *arg, const struct pm_client_result *r)
{
	struct one_count *n = arg;
	if (r->status == PM_CLIENT_OK)
		n->ok++;
	else if (r->status == PM_CLIENT_NOT_FOUND)
		n->absent++;
	else if (r->status == PM_CLIENT_E_BUSY)
		n->busy++;
	else if (!n->other++)
		n->first_other = r->status;
}

static uint32_t long_key(uint32_t i, char *out)
{
	int n = snprintf(out, LONG_KEY_BYTES + 1, "L%u:", i);
	memset(out + n, 'x', LONG_KEY_BYTES - (uint32_t)n);
	out[LONG_KEY_BYTES] = '\0';
	return LONG_KEY_BYTES;
}

static void one_submit(struct pm_client *c, enum pm_client_op op, const char *key, uint32_t klen,
		       struct one_count *n)
{
	struct pm_client_req r = { .op = op, .key = key, .klen = klen, .value = "v", .vlen = 1,
				   .cb = on_one, .arg = n };
	if (pm_client_submit(c, &r, NULL) != PM_CLIENT_OK && !n->other++)
		n->first_other = PM_CLIENT_E_ARG;
}

static void test_one_source(void)
{
	static struct pomaid d;
	static char key[LONG_KEY_BYTES + 1];
	char out[512], words[64];
	memset(&d, 0, sizeof(d));
	d.path = pomaid_path;
	d.shards = 2;
	d.flags = one_flags;
	d.repl = true;
	CU_ASSERT_FATAL(proc_dir_make(d.dir, "reshard-one"));
	CU_ASSERT_FATAL(pomaid_start(&d, NULL, NULL));
	char sock[PATH_MAX + 16];
	snprintf(sock, sizeof(sock), "%s/admin.sock", d.dir);
	snprintf(words, sizeof(words), "CLUSTER LEASE %" PRIu64, boot_ms() + ONE_LEASE_MS);
	CU_ASSERT_FATAL(ctl_admin(sock, words, out, sizeof(out)) == PM_ADMIN_OK);
	CU_ASSERT_FATAL(one_map(&d, 1, "copy") == PM_ADMIN_OK);
	struct pm_client_config cfg;
	struct pm_client *c = NULL;
	pm_client_config_default(&cfg);
	cfg.base_port = d.base;
	cfg.shards = 2;
	cfg.transport = PM_CLIENT_TCP;
	cfg.timeout_ms = ONE_TIMEOUT_MS;
	cfg.retries = 0;
	cfg.max_in_flight = ONE_IN_FLIGHT;
	CU_ASSERT_FATAL(pm_client_open(&cfg, &c) == PM_CLIENT_OK);
	/* copy: writes noted, reads not */
	struct one_count w = { 0 }, rd = { 0 };
	for (uint32_t i = 0; i < SHORT_KEYS; i++)
		one_submit(c, PM_CLIENT_SET, key, (uint32_t)snprintf(key, sizeof(key), "s%u", i), &w);
	pm_client_drain(c);
	for (uint32_t n = 0; n < READS_PER_KEY; n++)
		for (uint32_t i = 0; i < SHORT_KEYS; i++)
			one_submit(c, PM_CLIENT_GET, key, (uint32_t)snprintf(key, sizeof(key), "s%u", i),
				   &rd);
	pm_client_drain(c);
	bool lost;
	long long noted = one_drain_all(&d, &lost);
	printf("\n  copy: %" PRIu64 " SET acknowledged, %" PRIu64 " GET found; %lld keys noted as"
	       " changed", w.ok, rd.ok, noted);
	CU_ASSERT_EQUAL(w.ok, SHORT_KEYS);
	CU_ASSERT_EQUAL(rd.ok, SHORT_KEYS * READS_PER_KEY);
	CU_ASSERT_EQUAL(noted, SHORT_KEYS);
	/* a storm of changes past the list: every one acknowledged is noted (the
	 * rest BUSY), none lost */
	struct one_count storm = { 0 };
	for (uint32_t i = 0; i < LONG_KEYS; i++) {
		one_submit(c, PM_CLIENT_SET, key, long_key(i, key), &storm);
		one_submit(c, PM_CLIENT_DEL, key, long_key(i, key), &storm);
	}
	pm_client_drain(c);
	noted = one_drain_all(&d, &lost);
	printf("\n  %u SET and %u DEL of %u-byte keys: %" PRIu64 " acknowledged (%" PRIu64
	       " of them DEL of nothing), %" PRIu64 " BUSY, %" PRIu64 " other (%s); %lld noted%s",
	       LONG_KEYS, LONG_KEYS, LONG_KEY_BYTES, storm.ok + storm.absent, storm.absent,
	       storm.busy, storm.other, pm_client_status_name(storm.first_other), noted,
	       lost ? ", some LOST (overflow)" : "");
	CU_ASSERT(!lost);
	CU_ASSERT(storm.busy > 0);
	CU_ASSERT_EQUAL(storm.other, 0);
	CU_ASSERT_EQUAL(noted, (long long)(storm.ok + storm.absent));
	/* the list taken: changes are admitted again */
	struct one_count again = { 0 };
	one_submit(c, PM_CLIENT_SET, key, long_key(0, key), &again);
	pm_client_drain(c);
	CU_ASSERT_EQUAL(again.ok, 1);
	/* freeze: changes BUSY, reads served */
	CU_ASSERT_FATAL(one_map(&d, 2, "freeze") == PM_ADMIN_OK);
	struct one_count fw = { 0 }, fr = { 0 };
	for (uint32_t i = 0; i < SHORT_KEYS; i++) {
		uint32_t kl = (uint32_t)snprintf(key, sizeof(key), "s%u", i);
		one_submit(c, PM_CLIENT_GET, key, kl, &fr);
		one_submit(c, PM_CLIENT_SET, key, kl, &fw);
	}
	pm_client_drain(c);
	printf("\n  freeze: %" PRIu64 " GET found, %" PRIu64 " BUSY; %" PRIu64 " SET BUSY, %" PRIu64
	       " acknowledged", fr.ok, fr.busy, fw.busy, fw.ok);
	CU_ASSERT_EQUAL(fr.ok, SHORT_KEYS);
	CU_ASSERT_EQUAL(fw.busy, SHORT_KEYS);
	pm_client_close(c);
	CU_ASSERT(pomaid_stop(&d));
	proc_dir_remove(d.dir);
}

/* ---------------------------------------------------------------- test 1 */

/* Test 1's move: the first half of s1's first range of slots (a quarter of
 * the keys at CLUSTER INIT) to s2. */
static struct move first_move(void)
{
	uint16_t s1 = cl_set_index(&cl, "s1");
	uint32_t first = 0, last = 0;
	while (first < PM_CLUSTER_SLOTS && slot_set[first] != s1)
		first++;
	for (last = first; last + 1 < PM_CLUSTER_SLOTS && slot_set[last + 1] == s1;)
		last++;
	CU_ASSERT_FATAL(first < PM_CLUSTER_SLOTS);
	return (struct move){ .first = (uint16_t)first,
			      .last = (uint16_t)(first + (last - first) / 2), .from = "s1",
			      .to = "s2" };
}

static void data_need(void)
{
	if (loaded)
		return;
	uint64_t t0 = proc_now_ms();
	CU_ASSERT_FATAL(load_all());
	loaded = true;
	printf("\n  %u keys and %u vectors loaded in %" PRIu64 " ms", KEYS, VECS, proc_now_ms() - t0);
	for (uint32_t s = 0; s < SETS; s++)
		CU_ASSERT_FATAL(cl_set_synced(&cl, cl.sets[s], EVENT_WAIT_MS));
}

static void test_reshard(void)
{
	cluster_need();
	loaded = false; /* afresh: the short TTLs run from this load */
	data_need();
	struct move mv = first_move();
	mv.by_pomaictl = true;
	move_under_load(&mv);
}

/* ---------------------------------------------------------------- test 2 */

/* A CLUSTER RESHARD that must be refused: its status and a word of its
 * message. */
static void refused(const char *words, int status, const char *says)
{
	char out[1024];
	int rc = ctl_admin(cl.nodes[0].csock, words, out, sizeof(out));
	bool ok = rc == status && strstr(out, says) != NULL;
	printf("\n  `%s`: %d: %.*s", words, rc, (int)strcspn(out, "\r\n"), out);
	if (!ok)
		printf(" — want status %d saying \"%s\"", status, says);
	CU_ASSERT(ok);
}

/* While the move back runs (with the load's threads: no fatal assertion
 * here): a second job is refused. */
static void second_job(struct move *mv)
{
	char err[256];
	struct pm_etcd *e = pm_etcd_open(cl_etcd_url(&cl), err, sizeof(err));
	struct etcd_look *l = malloc(sizeof(*l));
	bool running = e && l && etcd_look(e, l) && l->state[0];
	char words[96];
	uint16_t from = cl_set_index(&cl, mv->from);
	uint32_t other = 0; /* slots of the source's, not moving: valid but for the job */
	while (other + 10u < PM_CLUSTER_SLOTS &&
	       !(slot_set[other] == from && slot_set[other + 10u] == from &&
		 (other + 10u < mv->first || other > mv->last)))
		other++;
	snprintf(words, sizeof(words), "CLUSTER RESHARD %u %u %s", other, other + 10u, mv->to);
	printf("\n  the job is %s when a second is asked", running ? l->state : "(gone)");
	CU_ASSERT(running);
	CU_ASSERT(other + 10u < PM_CLUSTER_SLOTS); /* the source has slots that stay */
	if (!e || !l || other + 10u >= PM_CLUSTER_SLOTS) {
		free(l);
		pm_etcd_close(e);
		return;
	}
	refused(words, PM_ADMIN_ERROR, "a reshard is under way (first=");
	/* and the map holds one move: the refused one left nothing */
	mv->second_refused = etcd_look(e, l) && l->map.nmoves <= 1;
	CU_ASSERT(mv->second_refused);
	free(l);
	pm_etcd_close(e);
}

static void test_reshard_back(void)
{
	cluster_need();
	data_need();
	uint16_t s2 = cl_set_index(&cl, "s2");
	if (slot_set[0] != s2) { /* test 1 did not run on this cluster: its move, no load */
		struct move pre = first_move();
		struct pm_etcd *e = etcd_open();
		CU_ASSERT_FATAL(move_request(&pre));
		move_follow(&pre, e, proc_now_ms());
		pm_etcd_close(e);
		CU_ASSERT_FATAL(pre.done);
		CU_ASSERT_FATAL(cl_slot_sets(&cl, slot_set));
	}
	/* the range test 1 moved: the first slots of s2 that are not its first range */
	uint32_t first = 0;
	while (first < PM_CLUSTER_SLOTS && slot_set[first] != s2)
		first++;
	uint32_t last = first;
	while (last + 1 < PM_CLUSTER_SLOTS && slot_set[last + 1] == s2)
		last++;
	CU_ASSERT_FATAL(first < PM_CLUSTER_SLOTS && last + 1 < PM_CLUSTER_SLOTS);
	uint16_t owner_after = slot_set[last + 1];
	const char *back_to = cl.sets[owner_after];
	/* the rules: each refusal says why, and changes nothing */
	char w[96];
	snprintf(w, sizeof(w), "CLUSTER RESHARD %u %u %s", last - 5u, last + 5u, back_to);
	refused(w, PM_ADMIN_ERROR, "not all one set's");
	snprintf(w, sizeof(w), "CLUSTER RESHARD %u %u s2", first, first + 10u);
	refused(w, PM_ADMIN_ERROR, "already");
	snprintf(w, sizeof(w), "CLUSTER RESHARD %u %u s9", first, first + 10u);
	refused(w, PM_ADMIN_ERROR, "not in the map");
	refused("CLUSTER RESHARD 16000 16384 s1", PM_ADMIN_USAGE, "16384");
	refused("CLUSTER RESHARD 10 5 s1", PM_ADMIN_USAGE, "first <= last");
	refused("CLUSTER RESHARD 0 1x s1", PM_ADMIN_USAGE, "first <= last");
	refused("CLUSTER RESHARD 0 10", PM_ADMIN_USAGE, "RESHARD first last set");
	/* the copy rate's bound (CTL_MOVE_RATE_KEYS_PER_S_MAX) broken, and a rate not a number */
	snprintf(w, sizeof(w), "CLUSTER RESHARD %u %u %s %u", first, first + 10u, back_to,
		 CTL_MOVE_RATE_KEYS_PER_S_MAX + 1u);
	refused(w, PM_ADMIN_USAGE, "keys per second");
	snprintf(w, sizeof(w), "CLUSTER RESHARD %u %u %s fast", first, first + 10u, back_to);
	refused(w, PM_ADMIN_USAGE, "keys per second");
	/* the same through pomaictl: its exit code says which (1 refused, 2 usage) */
	snprintf(w, sizeof(w), "cluster reshard --slots %u-%u --to %s", last - 5u, last + 5u,
		 back_to);
	ctl_expect(ctl_path, cl.nodes[1].csock, w, 1, "not all one set's");
	ctl_expect(ctl_path, cl.nodes[1].csock, "cluster reshard --slots 10-5 --to s1", 2,
		   "first <= last");
	ctl_expect(ctl_path, cl.nodes[1].csock, "cluster reshard --slots 5 --to s1", 2,
		   "reshard --slots A-B --to SET");
	ctl_expect(ctl_path, cl.nodes[1].csock, "cluster reshard --slots 0-5 --to s1 --rate", 2,
		   "[--rate KEYS_PER_S]");
	struct etcd_look *l = malloc(sizeof(*l));
	struct pm_etcd *e = etcd_open();
	CU_ASSERT_FATAL(l != NULL);
	CU_ASSERT(etcd_look(e, l) && !l->state[0] && l->map.nmoves == 0);
	free(l);
	pm_etcd_close(e);
	/* the move back, a second job refused while it runs */
	struct move mv = { .first = (uint16_t)first, .last = (uint16_t)last, .from = "s2",
			   .to = back_to, .while_running = second_job };
	move_under_load(&mv);
}

/* ---------------------------------------------------------------- test 3: collections */

/* A CLUSTER COLLECTION command on a node's control socket: its status; the
 * reply in out. */
static int ccoll(const struct cl_node *n, const char *words, char *out, size_t cap)
{
	uint64_t t0 = proc_now_ms();
	int rc = ctl_admin(n->csock, words, out, cap);
	printf("\n  `%s` on %s: %d in %" PRIu64 " ms: ", words, n->name, rc, proc_now_ms() - t0);
	for (const char *p = out; *p; p++)
		putchar(*p == '\r' ? ' ' : *p == '\n' ? ';' : *p);
	return rc;
}

static long long reply_num(const char *text, const char *field)
{
	char f[64];
	snprintf(f, sizeof(f), "%s:", field);
	const char *p = strstr(text, f);
	return p ? strtoll(p + strlen(f), NULL, 10) : -1;
}

/* COLLECTION LIST of n's pomaid names `name` with dim:8 metric:l2 index:flat
 * (want) or does not name it (!want); polled until ms. */
static bool node_has_coll(const struct cl_node *n, const char *name, bool want, int ms)
{
	static char text[1 << 16];
	char head[64], spec[128];
	snprintf(head, sizeof(head), "# %s\r\n", name);
	snprintf(spec, sizeof(spec), "# %s\r\ndim:8\r\nmetric:l2\r\nindex:flat\r\n", name);
	uint64_t deadline = proc_now_ms() + (uint64_t)ms;
	bool ok;
	for (;;) {
		int rc = ctl_admin(n->sock, "COLLECTION LIST", text, sizeof(text));
		ok = rc == PM_ADMIN_OK && (want ? strstr(text, spec) != NULL : !strstr(text, head));
		if (ok || proc_now_ms() >= deadline)
			break;
		proc_pause_ms(PROC_POLL_MS * 5);
	}
	if (!ok)
		printf("\n  %s's COLLECTION LIST %s %s after %d ms: %.400s", n->name,
		       want ? "does not name" : "still names", name, ms, text);
	return ok;
}

static bool everywhere(const char *name, bool want, int ms)
{
	bool all = true;
	for (uint32_t n = 0; n < cl.nnodes; n++)
		all &= node_has_coll(&cl.nodes[n], name, want, ms);
	return all;
}

/* The collection's records in etcd (collections/<name>, applied/<name>/…). */
static uint32_t coll_records(struct pm_etcd *e, const char *name)
{
	char key[PM_ETCD_KEY_BYTES_MAX], end[PM_ETCD_KEY_BYTES_MAX];
	struct pm_etcd_kvs a = { 0 }, b = { 0 };
	snprintf(key, sizeof(key), "/pomai/%s/collections/%s", cl.name, name);
	uint32_t n = pm_etcd_range(e, key, NULL, &a, 5000) == PM_ETCD_OK ? a.n : 1;
	snprintf(key, sizeof(key), "/pomai/%s/applied/%s/", cl.name, name);
	pm_etcd_prefix_end(key, end, sizeof(end));
	n += pm_etcd_range(e, key, end, &b, 5000) == PM_ETCD_OK ? b.n : 1;
	pm_etcd_kvs_free(&a);
	pm_etcd_kvs_free(&b);
	return n;
}

/* Vectors of the collection written through the cluster (a key of each
 * set at least): whether all were taken. */
static bool coll_usable(const char *name)
{
	struct pm_client *c = cluster_client(0);
	bool seen[SETS] = { false }, ok = true;
	char key[32];
	float v[VEC_DIM] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	for (uint32_t i = 0; i < 64 && ok; i++) {
		uint32_t klen = (uint32_t)snprintf(key, sizeof(key), "%s-%u", name, i);
		enum pm_client_status st = pm_client_vadd(c, key, klen, v, VEC_DIM, name, 0);
		if (st == PM_CLIENT_OK) {
			seen[set_of_key(key, klen)] = true;
		} else {
			printf("\n  VADD of %s into %s through the cluster: %s", key, name,
			       pm_client_status_name(st));
			ok = false;
		}
	}
	pm_client_close(c);
	for (uint32_t s = 0; s < SETS; s++)
		ok &= seen[s];
	return ok;
}

static void test_collections(void)
{
	static char out[4096];
	cluster_need();
	struct pm_etcd *e = etcd_open();
	struct cl_node *n1 = &cl.nodes[0];
	/* created on every set, present on every node */
	int rc = ccoll(n1, "CLUSTER COLLECTION CREATE rc8 dim=8 metric=l2 index=flat", out,
		       sizeof(out));
	CU_ASSERT_EQUAL(rc, PM_ADMIN_OK);
	CU_ASSERT_EQUAL(reply_num(out, "sets"), SETS);
	CU_ASSERT_EQUAL(reply_num(out, "applied"), SETS);
	CU_ASSERT(strstr(out, "pending") == NULL);
	CU_ASSERT(everywhere("rc8", true, EVENT_WAIT_MS));
	CU_ASSERT(coll_usable("rc8"));
	/* the same name: other parameters refused, the same ones fine */
	rc = ccoll(&cl.nodes[2], "CLUSTER COLLECTION CREATE rc8 dim=16 metric=l2 index=flat", out,
		   sizeof(out));
	CU_ASSERT_EQUAL(rc, PM_ADMIN_ERROR);
	CU_ASSERT(strstr(out, "E_EXISTS") != NULL);
	rc = ccoll(&cl.nodes[3], "CLUSTER COLLECTION CREATE rc8 dim=8 metric=l2 index=flat", out,
		   sizeof(out));
	CU_ASSERT_EQUAL(rc, PM_ADMIN_OK);
	CU_ASSERT_EQUAL(reply_num(out, "applied"), SETS);
	/* a set whose pomai-controls are stopped: pending, then applied */
	const char *down = "s2";
	struct cl_node *d[PER_SET];
	uint32_t nd = 0;
	for (uint32_t n = 0; n < cl.nnodes; n++)
		if (!strcmp(cl.nodes[n].set, down))
			d[nd++] = &cl.nodes[n];
	CU_ASSERT_FATAL(nd == PER_SET);
	for (uint32_t i = 0; i < nd; i++)
		CU_ASSERT_FATAL(cl_control_stop(d[i]));
	rc = ccoll(n1, "CLUSTER COLLECTION CREATE rc9 dim=8 metric=l2 index=flat", out, sizeof(out));
	CU_ASSERT_EQUAL(rc, PM_ADMIN_OK);
	CU_ASSERT_EQUAL(reply_num(out, "sets"), SETS);
	CU_ASSERT_EQUAL(reply_num(out, "applied"), SETS - 1);
	CU_ASSERT(strstr(out, "pending") != NULL);
	for (uint32_t n = 0; n < cl.nnodes; n++)
		if (strcmp(cl.nodes[n].set, down))
			CU_ASSERT(node_has_coll(&cl.nodes[n], "rc9", true, EVENT_WAIT_MS));
	uint64_t t_cont = proc_now_ms();
	for (uint32_t i = 0; i < nd; i++)
		CU_ASSERT_FATAL(cl_control_cont(d[i]));
	bool back = everywhere("rc9", true, EVENT_WAIT_MS);
	printf("\n  %s's pomai-controls SIGCONTed: rc9 on every node %s %" PRIu64 " ms later", down,
	       back ? "" : "NOT", proc_now_ms() - t_cont);
	CU_ASSERT(back);
	CU_ASSERT(cl_ready(&cl, 1, NULL, EVENT_WAIT_MS));
	/* dropped everywhere, and the records go */
	rc = ccoll(&cl.nodes[1], "CLUSTER COLLECTION DROP rc8", out, sizeof(out));
	CU_ASSERT_EQUAL(rc, PM_ADMIN_OK);
	CU_ASSERT_EQUAL(reply_num(out, "applied"), SETS);
	CU_ASSERT(strstr(out, "pending") == NULL);
	rc = ccoll(n1, "CLUSTER COLLECTION DROP rc9", out, sizeof(out));
	CU_ASSERT_EQUAL(rc, PM_ADMIN_OK);
	CU_ASSERT_EQUAL(reply_num(out, "applied"), SETS);
	CU_ASSERT(strstr(out, "pending") == NULL);
	CU_ASSERT(everywhere("rc8", false, EVENT_WAIT_MS));
	CU_ASSERT(everywhere("rc9", false, EVENT_WAIT_MS));
	uint64_t deadline = proc_now_ms() + EVENT_WAIT_MS;
	uint32_t left;
	while ((left = coll_records(e, "rc8") + coll_records(e, "rc9")) && proc_now_ms() < deadline)
		proc_pause_ms(PROC_POLL_MS * 5);
	if (left)
		printf("\n  %u records of rc8 and rc9 still in etcd", left);
	CU_ASSERT_EQUAL(left, 0);
	rc = ccoll(n1, "CLUSTER COLLECTION DROP rc8", out, sizeof(out));
	CU_ASSERT_EQUAL(rc, PM_ADMIN_ERROR);
	CU_ASSERT(strstr(out, "NOT_FOUND") != NULL);
	pm_etcd_close(e);
}

/* ---------------------------------------------------------------- test 4: a mover restarted */

/* Test 4's copy rate (CLUSTER RESHARD's keys a second): the first move's
 * few thousand keys take seconds to copy, so the source's primary can be
 * stopped with the copy half done. */
#define RESTART_RATE_KEYS_PER_S 1000u
/* Copies the target holds before the moving keys are deleted, at least. */
#define RESTART_COPIED_MIN 100u
/* One moving key in RESTART_KEEP_EVERY is not deleted (the move must still
 * bring those over). */
#define RESTART_KEEP_EVERY 4u

/* The copies n's pomaid holds of slots first..last (CLUSTER EXPORT on its
 * admin socket: a target does not serve them before the flip): how many,
 * and how many are of keys the suite knows deleted; -1 when it did not
 * answer. */
static long long target_copies(const struct cl_node *n, uint16_t first, uint16_t last,
			       long long *stale)
{
	static uint8_t buf[(256u << 10) + 4096u];
	long long total = 0;
	*stale = 0;
	int fd = pm_admin_connect(n->sock);
	if (fd < 0)
		return -1;
	for (uint32_t sh = 0; sh < CL_SHARDS; sh++) {
		uint32_t cur = 0, flags = 0;
		do {
			char a[16], b[16], c[16], d[16];
			snprintf(a, sizeof(a), "%u", sh);
			snprintf(b, sizeof(b), "%u", first);
			snprintf(c, sizeof(c), "%u", last);
			snprintf(d, sizeof(d), "%u", cur);
			const char *argv[] = { "CLUSTER", "EXPORT", a, b, c, d };
			const char *text;
			size_t tlen, used;
			uint8_t st;
			if (pm_admin_call(fd, 6, argv, buf, sizeof(buf), 5000, &st, &text, &tlen) != 0 ||
			    st != PM_ADMIN_OK || tlen < 12) {
				close(fd);
				return -1;
			}
			uint32_t head[3];
			memcpy(head, text, sizeof(head));
			cur = head[0], flags = head[1];
			for (size_t at = 12; at < tlen; at += used) {
				struct pm_wire_request req;
				if (pm_wire_request_decode((const uint8_t *)text + at, tlen - at, &req,
							   &used) != PM_WIRE_OK || !used)
					break;
				char key[32];
				snprintf(key, sizeof(key), "%.*s", (int)(req.key.len < 31u ? req.key.len : 31u),
					 (const char *)req.key.ptr);
				uint32_t i = (uint32_t)strtoul(key + 1, NULL, 10);
				bool del = key[0] == 'k' && i < KEYS ? kv_st[i].del
					   : key[0] == 'v' && i < VECS && vec_st[i].del;
				total++;
				*stale += del;
			}
		} while (!(flags & 0x1u));
	}
	close(fd);
	return total;
}

struct rdel {
	struct kst *k;
	uint32_t ver;
	bool done;
};

static void on_rdel(void *arg, const struct pm_client_result *r)
{
	struct rdel *d = arg;
	if (r->status == PM_CLIENT_OK || r->status == PM_CLIENT_NOT_FOUND) {
		d->k->acked = d->ver;
		d->k->del = true;
		d->done = true;
	}
}

/* The move's keys (but one in RESTART_KEEP_EVERY) deleted on the source's
 * primary, straight (a plain client): how many were. */
static uint32_t delete_moving(struct cl_node *sp, const struct move *mv)
{
	struct pm_client *c = cl_node_client(sp, LIB_TIMEOUT_MS, LIB_RETRIES, CHECK_IN_FLIGHT);
	CU_ASSERT_FATAL(c != NULL);
	struct rdel *dels = calloc(KEYS + VECS, sizeof(*dels));
	CU_ASSERT_FATAL(dels != NULL);
	char key[32];
	uint32_t asked = 0, done = 0;
	for (uint32_t n = 0; n < KEYS + VECS; n++) {
		bool vec = n >= KEYS;
		uint32_t i = vec ? n - KEYS : n, klen = vec ? vec_key(i, key) : kv_key(i, key);
		struct kst *k = vec ? &vec_st[i] : &kv_st[i];
		uint16_t slot = pm_slot_of(pm_route_hash(key, klen));
		if (slot < mv->first || slot > mv->last || k->unsure || k->del ||
		    (!vec && kv_class(i) == K_TTL_SHORT) || asked++ % RESTART_KEEP_EVERY == 0)
			continue;
		dels[n] = (struct rdel){ .k = k, .ver = ++k->ver };
		struct pm_client_req r = { .op = vec ? PM_CLIENT_VDEL : PM_CLIENT_DEL, .key = key,
					   .klen = klen, .cb = on_rdel, .arg = &dels[n] };
		if (pm_client_submit(c, &r, NULL) != PM_CLIENT_OK)
			k->unsure = true, k->unsure_del = true;
	}
	pm_client_drain(c);
	pm_client_close(c);
	for (uint32_t n = 0; n < KEYS + VECS; n++) {
		if (dels[n].k && !dels[n].done)
			dels[n].k->unsure = true, dels[n].k->unsure_del = true;
		done += dels[n].done;
	}
	free(dels);
	return done;
}

/* Test 4: the source's primary dies in the middle of the copy after it took
 * deletions of keys the target already has copies of; the move is started
 * again by the new primary, which has the target drop its copies first: no
 * deleted key comes back after the flip. */
static void test_restart(void)
{
	cluster_need();
	data_need();
	struct move mv = first_move();
	struct cl_node *sp = cl_primary(&cl, mv.from), *tp = cl_primary(&cl, mv.to);
	CU_ASSERT_FATAL(sp != NULL && tp != NULL);
	long long stale, copies = target_copies(tp, mv.first, mv.last, &stale);
	printf("\n  %s (the target's primary) holds %lld copies of slots %u-%u before the move",
	       tp->name, copies, mv.first, mv.last);
	CU_ASSERT_FATAL(copies == 0);
	char words[96], out[1024];
	snprintf(words, sizeof(words), "CLUSTER RESHARD %u %u %s %u", mv.first, mv.last, mv.to,
		 RESTART_RATE_KEYS_PER_S);
	int rc = ctl_admin(cl.nodes[0].csock, words, out, sizeof(out));
	printf("\n  `%s`: %d", words, rc);
	CU_ASSERT_FATAL(rc == PM_ADMIN_OK && strstr(out, "rate:1000"));
	uint64_t t0 = proc_now_ms(), deadline = t0 + MOVE_WAIT_MS;
	while ((copies = target_copies(tp, mv.first, mv.last, &stale)) < RESTART_COPIED_MIN &&
	       proc_now_ms() < deadline)
		proc_pause_ms(MOVE_POLL_MS);
	printf("\n  %lld copies on %s after %" PRIu64 " ms", copies, tp->name, proc_now_ms() - t0);
	CU_ASSERT_FATAL(copies >= RESTART_COPIED_MIN);
	uint32_t deleted = delete_moving(sp, &mv);
	CU_ASSERT_FATAL(cl_control_stop(sp));
	struct pm_etcd *e = etcd_open();
	struct etcd_look *l = malloc(sizeof(*l));
	CU_ASSERT_FATAL(l != NULL);
	bool copying = etcd_look(e, l) && !strcmp(l->state, "copy");
	free(l);
	copies = target_copies(tp, mv.first, mv.last, &stale);
	printf("\n  %u moving keys deleted on %s, its pomai-control stopped with the job in"
	       " copy: %s; %s holds %lld copies, %lld of them of deleted keys", deleted, sp->name,
	       copying ? "yes" : "NO", tp->name, copies, stale);
	CU_ASSERT_FATAL(copying); /* else the rate let the copy end: nothing is shown */
	CU_ASSERT_FATAL(stale > 0);
	/* the deletions are on the replica that takes over; then the box dies */
	CU_ASSERT_FATAL(cl_set_synced(&cl, mv.from, EVENT_WAIT_MS));
	CU_ASSERT_FATAL(cl_node_kill(sp));
	/* its replica takes over (and the restarted move); the old primary comes
	 * back as a replica: with min_replicas = 1 the new one's purge (logged
	 * deletions) waits for it */
	struct cl_node *np = NULL;
	for (deadline = proc_now_ms() + EVENT_WAIT_MS; proc_now_ms() < deadline;
	     proc_pause_ms(MOVE_POLL_MS))
		if ((np = cl_primary(&cl, mv.from)) && np != sp)
			break;
	printf("\n  the new primary of %s: %s", mv.from, np && np != sp ? np->name : "none");
	CU_ASSERT_FATAL(np && np != sp);
	CU_ASSERT_FATAL(cl_node_start(&cl, sp));
	move_follow(&mv, e, t0);
	pm_etcd_close(e);
	printf("\n  the move ended %s at %lld ms (restarted by %s)", mv.done ? "" : "NOT",
	       mv.done ? (long long)mv.t_done : -1LL, np->name);
	CU_ASSERT_FATAL(mv.done);
	CU_ASSERT(cl_node_rejoined(&cl, sp, CL_READY_WAIT_MS));
	CU_ASSERT_FATAL(cl_slot_sets(&cl, slot_set));
	for (uint32_t s = mv.first; s <= mv.last; s++)
		CU_ASSERT_FATAL(slot_set[s] == cl_set_index(&cl, mv.to));
	for (uint32_t s = 0; s < SETS; s++)
		CU_ASSERT(cl_set_synced(&cl, cl.sets[s], EVENT_WAIT_MS));
	tp = cl_primary(&cl, mv.to);
	CU_ASSERT_FATAL(tp != NULL);
	copies = target_copies(tp, mv.first, mv.last, &stale);
	printf("\n  after the move %s holds %lld keys of the slots, %lld of them deleted ones",
	       tp->name, copies, stale);
	CU_ASSERT_EQUAL(stale, 0);
	CU_ASSERT_EQUAL(unsure_settle(), 0);
	CU_ASSERT_EQUAL(sweep_all(), 0);
	CU_ASSERT(counts_settle(EVENT_WAIT_MS));
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	if (argc < 4 || access(argv[1], X_OK) != 0 || access(argv[2], X_OK) != 0 ||
	    access(argv[3], X_OK) != 0) {
		fprintf(stderr, "usage: test_cluster_reshard POMAID POMAI-CONTROL POMAICTL\n");
		return 1;
	}
	pomaid_path = argv[1];
	control_path = argv[2];
	ctl_path = argv[3];
	char why[256];
	if (!cl_can_run(why, sizeof(why)))
		return pm_cu_cannot_run("test_cluster_reshard", "this machine cannot run a cluster",
					why);
	const char *s = getenv("POMAI_TEST_SEED");
	keep_dirs = getenv("POMAI_CLUSTER_KEEP") != NULL;
	suite_seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	printf("test_cluster_reshard: seed %" PRIu64 " (POMAI_TEST_SEED=%" PRIu64 " replays it)\n",
	       suite_seed, suite_seed);
	static CU_TestInfo tests[] = {
		{ "0. one source node: reads neither noted nor frozen; a full list refuses changes",
		  test_one_source },
		{ "1. reshard under load: nothing lost, nothing held twice, clients follow",
		  test_reshard },
		{ "2. the slots moved back; requests that break a rule refused", test_reshard_back },
		{ "3. cluster-wide collections: on every set, pending while a set is down, dropped",
		  test_collections },
		{ "4. a source primary dead mid-copy: the move restarts, no deletion undone",
		  test_restart },
		CU_TEST_INFO_NULL,
	};
	const char *only = getenv("POMAI_CLUSTER_ONLY");
	static CU_TestInfo chosen[sizeof(tests) / sizeof(tests[0])];
	size_t n = 0;
	for (CU_TestInfo *t = tests; t->pName; t++)
		if (!only || strstr(t->pName, only))
			chosen[n++] = *t;
	chosen[n] = (CU_TestInfo)CU_TEST_INFO_NULL;
	uint64_t t0 = proc_now_ms();
	int rc = pm_cu_run("cluster_reshard", chosen);
	if (cl.nnodes && !cl_destroy(&cl))
		rc = 1;
	printf("test_cluster_reshard: seed %" PRIu64 "; %" PRIu64 " ms in all\n", suite_seed,
	       proc_now_ms() - t0);
	return rc;
}
