/* SPDX-License-Identifier: MIT
 *
 * test_client_cluster.c — CUnit suite of libpomai's cluster mode (and
 * pomai-cli --cluster) against fake cluster nodes: each node is a fake
 * pomaid of client_fake.c (its own ports and engine shard) given a view of
 * the slot map (fake_cluster_set), so it answers MAP, MOVED and READONLY as a
 * cluster pomaid does. The maps' wire form is written here byte by byte from
 * proto/cluster_map.h's description (tmap_wire), not with pm_cmap_encode, so
 * the tests pin the layout the client decodes.
 *
 * Covered: the bootstrap (and its failures: no map, no answer, a map past
 * the bounds); every key on the node its slot's set names, at the shard of
 * that node's shard count, over UDP and TCP; MOVED -> refresh -> the retry
 * lands on the new owner; READONLY (a failover) -> refresh; a fenced
 * primary (READONLY while every map still names it): each resend after its
 * back-off, so the budget lasts, and the write lands once a new primary is
 * published, also when the seed is that primary and keeps its old map; a
 * timeout -> refresh from the next node when the seed is
 * silent; a map of a lower epoch ignored, and the retry budget running out
 * as E_MOVED, paced by the back-off too; reads to replicas;
 * pipelined requests across nodes with a slot move among them; KNN merged
 * across sets (ties ordered by key, the keys buffer compacted); collection
 * operations and SNAPSHOT on every set; a key on two sets listed once; more
 * fan-outs in flight than there are fan-out entries; a KNN over three sets
 * as quick as three plain KNNs one after the other (no timer, no late leg); a map of PM_CLUSTER_NODES_MAX nodes (its links
 * replaced by another's); and pomai-cli --cluster (map, set, get).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "byteorder.h"
#include "client_fake.h"
#include "cu_main.h"
#include "pomai.h"
#include "proc.h"
#include "route.h"

/* Fakes one test starts at most. */
#define T_FAKES_MAX 4u
/* First timeout of the tests that expect no loss (a resend would hide
 * nothing), and of those that wait for a silent node. */
#define T_TIMEOUT_MS 1000u
#define T_SHORT_MS 50u
/* Timeout and retries of the tests of refused requests (READONLY, MOVED):
 * long enough that a reply from a fake is never late on a loaded machine,
 * short enough that waiting out the back-offs (200 + 400 + 800 ms) is quick. */
#define T_REFUSED_MS 100u
#define T_REFUSED_RETRIES 3u
/* A request's whole budget, however it ends, stays below this (bounded). */
#define T_BUDGET_CAP_MS 10000u
/* Longest wait for a condition a test polls for. */
#define T_WAIT_MS 10000u
#define T_KEYS 600u
#define T_PIPELINE_N 3000u
#define T_CLI_OUT_BYTES 16384u

/* ---------------------------------------------------------------- maps */

/* A slot map as the test writes it (node addresses 127.0.0.1). */
struct tmap {
	uint64_t epoch;
	uint16_t nsets, nnodes, nranges;
	struct {
		uint16_t primary;
		uint64_t epoch;
	} sets[PM_CLUSTER_SETS_MAX];
	struct {
		uint16_t udp, tcp, set;
		uint8_t shards;
	} nodes[PM_CLUSTER_NODES_MAX + 1]; /* one past the bound: a map that breaks it */
	struct {
		uint16_t first, last, set;
	} ranges[PM_CLUSTER_RANGES_MAX];
};

static struct tmap M, M2;

/* The wire form (cluster_map.h): u64 epoch, u16 nsets, nnodes, nranges,
 * self; per node u32 IPv4 (network order), u16 udp, u16 tcp, u16 set, u8
 * flags, u8 shards; per set u16 primary, u16 0, u64 epoch; per range u16
 * first, u16 last, u16 set. All little-endian but the address. */
static size_t tmap_wire(const struct tmap *m, uint16_t self, uint8_t *out, size_t cap)
{
	size_t n = 16u + 12u * m->nnodes + 12u * m->nsets + 6u * m->nranges;
	if (n > cap)
		return 0;
	uint8_t *p = out;
	uint32_t lo = htonl(INADDR_LOOPBACK);
	pm_put_le64(p, m->epoch);
	pm_put_le16(p + 8, m->nsets);
	pm_put_le16(p + 10, m->nnodes);
	pm_put_le16(p + 12, m->nranges);
	pm_put_le16(p + 14, self);
	p += 16;
	for (uint16_t i = 0; i < m->nnodes; i++, p += 12) {
		memcpy(p, &lo, 4);
		pm_put_le16(p + 4, m->nodes[i].udp);
		pm_put_le16(p + 6, m->nodes[i].tcp);
		pm_put_le16(p + 8, m->nodes[i].set);
		p[10] = m->sets[m->nodes[i].set].primary == i ? 1 : 0;
		p[11] = m->nodes[i].shards;
	}
	for (uint16_t i = 0; i < m->nsets; i++, p += 12) {
		pm_put_le16(p, m->sets[i].primary);
		pm_put_le16(p + 2, 0);
		pm_put_le64(p + 4, m->sets[i].epoch);
	}
	for (uint16_t i = 0; i < m->nranges; i++, p += 6) {
		pm_put_le16(p, m->ranges[i].first);
		pm_put_le16(p + 2, m->ranges[i].last);
		pm_put_le16(p + 4, m->ranges[i].set);
	}
	return n;
}

static uint16_t slot_of_key(const char *key)
{
	return pm_slot_of(pm_route_hash(key, strlen(key)));
}

static uint16_t set_of_slot(const struct tmap *m, uint16_t slot)
{
	for (uint16_t i = 0; i < m->nranges; i++)
		if (slot >= m->ranges[i].first && slot <= m->ranges[i].last)
			return m->ranges[i].set;
	return PM_CMAP_NONE;
}

static uint16_t set_of_key(const struct tmap *m, const char *key)
{
	return set_of_slot(m, slot_of_key(key));
}

/* The next key "prefix<n>" (n from *counter on) whose slot is in
 * first..last. */
static const char *key_in(const char *prefix, uint16_t first, uint16_t last, unsigned *counter,
			  char *buf, size_t cap)
{
	for (;;) {
		snprintf(buf, cap, "%s%u", prefix, (*counter)++);
		uint16_t s = slot_of_key(buf);
		if (s >= first && s <= last)
			return buf;
	}
}

/* ---------------------------------------------------------------- the nodes */

static struct fake T[T_FAKES_MAX];
static uint32_t t_n;
static uint16_t t_node[T_FAKES_MAX]; /* the map node each fake is */
static struct fake_cnode view;
static const char *cli_path;

static void nodes_start(uint32_t n, const uint32_t *shards)
{
	for (uint32_t i = 0; i < n; i++) {
		struct fake_opts o = { .shards = shards[i] };
		CU_ASSERT_FATAL(fake_start(&T[i], &o) == 0);
		t_node[i] = (uint16_t)i;
	}
	t_n = n;
}

static void nodes_stop(void)
{
	for (uint32_t i = 0; i < t_n; i++)
		fake_stop(&T[i]);
	t_n = 0;
}

/* Node i of m is fake f, in set `set`. */
static void node_is(struct tmap *m, uint16_t i, const struct fake *f, uint16_t set)
{
	m->nodes[i].udp = (uint16_t)f->base_port;
	m->nodes[i].tcp = (uint16_t)(f->base_port - 1u);
	m->nodes[i].set = set;
	m->nodes[i].shards = (uint8_t)f->o.shards;
}

/* Node `node`'s view of m: the wire form with self = node, and what it
 * answers MOVED and READONLY by. */
static void view_of(const struct tmap *m, uint16_t node, struct fake_cnode *v)
{
	memset(v, 0, sizeof *v);
	v->on = true;
	v->map_len = (uint32_t)tmap_wire(m, node, v->map, sizeof v->map);
	CU_ASSERT(v->map_len > 0);
	v->epoch = m->epoch;
	v->set = m->nodes[node].set;
	v->primary = m->sets[v->set].primary == node;
	for (uint16_t r = 0; r < m->nranges; r++)
		for (uint32_t s = m->ranges[r].first; s <= m->ranges[r].last; s++)
			v->slot_set[s] = m->ranges[r].set;
	for (uint16_t s = 0; s < m->nsets; s++) {
		uint16_t p = m->sets[s].primary;
		if (p == PM_CMAP_NONE)
			continue;
		v->set_primary[s] = (struct pm_wire_primary){ .addr_be = htonl(INADDR_LOOPBACK),
							      .udp_port = m->nodes[p].udp,
							      .tcp_port = m->nodes[p].tcp };
	}
}

static void publish_to(uint32_t fake, const struct tmap *m)
{
	view_of(m, t_node[fake], &view);
	CU_ASSERT_FATAL(fake_cluster_set(&T[fake], &view) == 0);
}

static void publish(const struct tmap *m)
{
	for (uint32_t i = 0; i < t_n; i++)
		publish_to(i, m);
}

/* Three sets of one node each (fakes 0, 1, 2), the slots in three ranges. */
static void map3(struct tmap *m, uint64_t epoch)
{
	memset(m, 0, sizeof *m);
	m->epoch = epoch;
	m->nsets = m->nnodes = m->nranges = 3;
	for (uint16_t i = 0; i < 3; i++) {
		m->sets[i].primary = i;
		m->sets[i].epoch = 1;
		node_is(m, i, &T[i], i);
	}
	m->ranges[0].first = 0;
	m->ranges[0].last = 5460;
	m->ranges[1].first = 5461;
	m->ranges[1].last = 10922;
	m->ranges[2].first = 10923;
	m->ranges[2].last = 16383;
	for (uint16_t i = 0; i < 3; i++)
		m->ranges[i].set = i;
}

/* map3 with a fourth node (fake 3) in set 0; set 0's primary is `primary0`. */
static void map4(struct tmap *m, uint64_t epoch, uint16_t primary0)
{
	map3(m, epoch);
	m->nnodes = 4;
	node_is(m, 3, &T[3], 0);
	m->sets[0].primary = primary0;
}

/* ---------------------------------------------------------------- clients */

static struct pm_client_config ccfg(uint32_t seed, enum pm_client_transport t,
				    uint32_t timeout_ms, uint32_t retries)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.base_port = T[seed].base_port;
	cfg.shards = 0; /* ignored in cluster mode: the map has each node's */
	cfg.transport = t;
	cfg.timeout_ms = timeout_ms;
	cfg.retries = retries;
	cfg.cluster = true;
	return cfg;
}

static struct pm_client *copen_cfg(const struct pm_client_config *cfg)
{
	struct pm_client *c = NULL;
	enum pm_client_status st = pm_client_open(cfg, &c);
	if (st != PM_CLIENT_OK)
		fprintf(stderr, "\n  cluster open: %s\n", pm_client_status_name(st));
	CU_ASSERT_FATAL(st == PM_CLIENT_OK);
	return c;
}

static struct pm_client *copen(uint32_t seed, enum pm_client_transport t, uint32_t timeout_ms,
			       uint32_t retries)
{
	struct pm_client_config cfg = ccfg(seed, t, timeout_ms, retries);
	return copen_cfg(&cfg);
}

/* A client of one fake, not in cluster mode. */
static struct pm_client *sopen(const struct fake *f)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	cfg.base_port = f->base_port;
	cfg.shards = f->o.shards;
	cfg.timeout_ms = T_TIMEOUT_MS;
	struct pm_client *c = NULL;
	CU_ASSERT_FATAL(pm_client_open(&cfg, &c) == PM_CLIENT_OK);
	return c;
}

struct note {
	bool done;
	enum pm_client_status st;
	uint32_t attempts;
};

static void note_cb(void *arg, const struct pm_client_result *r)
{
	struct note *n = arg;
	*n = (struct note){ true, r->status, r->attempts };
}

/* One SET through the pipelined API, to see its attempts. */
static struct note set_noted(struct pm_client *c, const char *key)
{
	struct note n = { 0 };
	struct pm_client_req q = { .op = PM_CLIENT_SET, .key = key, .klen = (uint32_t)strlen(key),
				   .value = key, .vlen = (uint32_t)strlen(key), .cb = note_cb,
				   .arg = &n };
	CU_ASSERT_FATAL(pm_client_submit(c, &q, NULL) == PM_CLIENT_OK);
	pm_client_drain(c);
	CU_ASSERT(n.done);
	return n;
}

/* The least time `retries` resends take when each attempt n waits at least
 * its timeout, timeout_ms x 2^(n-1), before the next: a refused attempt
 * waits the next one's back-off, a lost reply its own. */
static uint64_t backoff_floor_ms(uint32_t timeout_ms, uint32_t retries)
{
	return (uint64_t)timeout_ms * ((UINT64_C(1) << retries) - 1u);
}

static uint64_t sum(_Atomic uint64_t *(*field)(struct fake *))
{
	uint64_t t = 0;
	for (uint32_t i = 0; i < t_n; i++)
		t += atomic_load(field(&T[i]));
	return t;
}

static _Atomic uint64_t *misroutes(struct fake *f)
{
	return &f->misroutes;
}

static _Atomic uint64_t *moved(struct fake *f)
{
	return &f->moved_sent;
}

/* ---------------------------------------------------------------- bootstrap */

static void test_bootstrap(void)
{
	static struct pm_client_map pm;
	nodes_start(3, (const uint32_t[]){ 2, 3, 1 });
	map3(&M, 7);
	publish(&M);
	struct pm_client *c = copen(0, PM_CLIENT_UDP, T_TIMEOUT_MS, 3);
	CU_ASSERT_EQUAL(pm_client_map_epoch(c), 7);
	CU_ASSERT_EQUAL(atomic_load(&T[0].maps_served), 1); /* from the seed, once */
	CU_ASSERT_EQUAL(atomic_load(&T[1].maps_served) + atomic_load(&T[2].maps_served), 0);
	CU_ASSERT_EQUAL_FATAL(pm_client_map(c, &pm), PM_CLIENT_OK);
	CU_ASSERT(pm.epoch == 7 && pm.nsets == 3 && pm.nnodes == 3 && pm.nranges == 3);
	CU_ASSERT_EQUAL(pm.answered, 0);
	for (uint16_t i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(pm.nodes[i].udp_port, T[i].base_port);
		CU_ASSERT_EQUAL(pm.nodes[i].tcp_port, T[i].base_port - 1);
		CU_ASSERT_EQUAL(pm.nodes[i].shards, T[i].o.shards);
		CU_ASSERT(pm.nodes[i].primary && pm.nodes[i].set == i && pm.sets[i].primary == i);
		CU_ASSERT_EQUAL(pm.nodes[i].addr_be, htonl(INADDR_LOOPBACK));
		CU_ASSERT(pm.ranges[i].first == M.ranges[i].first && pm.ranges[i].last == M.ranges[i].last);
	}
	struct pm_client_stats st;
	pm_client_stats(c, &st);
	CU_ASSERT_EQUAL(st.map_refreshes, 1);
	pm_client_close(c);

	/* over TCP, from another node */
	c = copen(1, PM_CLIENT_TCP, T_TIMEOUT_MS, 3);
	CU_ASSERT_EQUAL(pm_client_map_epoch(c), 7);
	CU_ASSERT_EQUAL(atomic_load(&T[1].maps_served), 1);
	CU_ASSERT_EQUAL(pm_client_set(c, "boot", 4, "x", 1, 0), PM_CLIENT_OK);
	pm_client_close(c);

	/* a node without a map answers NOT_FOUND; a silent one times out */
	view.map_len = 0;
	CU_ASSERT_FATAL(fake_cluster_set(&T[2], &view) == 0);
	struct pm_client_config cfg = ccfg(2, PM_CLIENT_UDP, T_SHORT_MS, 1);
	CU_ASSERT_EQUAL(pm_client_open(&cfg, &c), PM_CLIENT_NOT_FOUND);
	CU_ASSERT_PTR_NULL(c);
	fake_mute(&T[2], true);
	CU_ASSERT_EQUAL(pm_client_open(&cfg, &c), PM_CLIENT_E_TIMEOUT);
	fake_mute(&T[2], false);

	/* configuration */
	const char *why;
	cfg.read_from = 2;
	CU_ASSERT_EQUAL(pm_client_config_check(&cfg, &why), PM_CLIENT_E_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "read_from"));
	cfg.read_from = PM_CLIENT_READ_REPLICA;
	cfg.transport = PM_CLIENT_MEMIF;
	CU_ASSERT_EQUAL(pm_client_config_check(&cfg, &why), PM_CLIENT_E_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "cluster"));
	cfg.cluster = false; /* not a cluster client: shards matters again */
	cfg.transport = PM_CLIENT_UDP;
	CU_ASSERT_EQUAL(pm_client_config_check(&cfg, &why), PM_CLIENT_E_CONFIG);
	c = sopen(&T[1]);
	CU_ASSERT_EQUAL(pm_client_map(c, &pm), PM_CLIENT_E_ARG);
	CU_ASSERT_EQUAL(pm_client_map_epoch(c), 0);
	/* a cluster node answers a client outside cluster mode MOVED at once */
	unsigned n = 0;
	char key[32];
	key_in("other", 0, 5460, &n, key, sizeof key);
	CU_ASSERT_EQUAL(pm_client_set(c, key, strlen(key), "v", 1, 0), PM_CLIENT_E_MOVED);
	pm_client_close(c);
	nodes_stop();
}

/* ---------------------------------------------------------------- routing */

static void routing(enum pm_client_transport t)
{
	nodes_start(3, (const uint32_t[]){ 2, 3, 1 });
	map3(&M, 7);
	publish(&M);
	struct pm_client *c = copen(0, t, T_TIMEOUT_MS, 3);
	char key[32], val[64];
	uint32_t per_set[3] = { 0 };
	for (unsigned i = 0; i < T_KEYS; i++) {
		snprintf(key, sizeof key, "route-%u", i);
		CU_ASSERT_EQUAL(pm_client_set(c, key, strlen(key), key, strlen(key), 0), PM_CLIENT_OK);
	}
	for (unsigned i = 0; i < T_KEYS; i++) {
		snprintf(key, sizeof key, "route-%u", i);
		uint16_t set = set_of_key(&M, key);
		per_set[set]++;
		for (uint16_t f = 0; f < 3; f++) /* on its set's node, and only there */
			CU_ASSERT_EQUAL(fake_holds(&T[f], key, (uint32_t)strlen(key)), f == set);
		size_t n = 0;
		CU_ASSERT_EQUAL(pm_client_get(c, key, strlen(key), val, sizeof val, &n), PM_CLIENT_OK);
		CU_ASSERT(n == strlen(key) && memcmp(val, key, n) == 0);
		uint64_t h = pm_route_hash(key, strlen(key));
		CU_ASSERT_EQUAL(pm_client_shard_of(c, key, strlen(key)),
				pm_shard_of(h, T[set].o.shards));
	}
	for (uint16_t s = 0; s < 3; s++)
		CU_ASSERT(per_set[s] > 0 && atomic_load(&T[s].keyed_served) == 2u * per_set[s]);
	CU_ASSERT_EQUAL(sum(misroutes), 0); /* the shard of the node's shard count */
	CU_ASSERT_EQUAL(sum(moved), 0);
	pm_client_close(c);
	nodes_stop();
}

static void test_routing_udp(void)
{
	routing(PM_CLIENT_UDP);
}

static void test_routing_tcp(void)
{
	routing(PM_CLIENT_TCP);
}

/* ---------------------------------------------------------------- MOVED */

/* map3 at `epoch` with slots 0..2999 moved from set 0 to set 1. */
static void map3_moved(struct tmap *m, uint64_t epoch)
{
	map3(m, epoch);
	m->nranges = 4;
	m->ranges[3] = m->ranges[2];
	m->ranges[2] = m->ranges[1];
	m->ranges[1].first = 3000;
	m->ranges[1].last = 5460;
	m->ranges[1].set = 0;
	m->ranges[0].first = 0;
	m->ranges[0].last = 2999;
	m->ranges[0].set = 1;
}

static void test_moved(void)
{
	nodes_start(3, (const uint32_t[]){ 2, 3, 1 });
	map3(&M, 7);
	publish(&M);
	struct pm_client *c = copen(0, PM_CLIENT_UDP, T_TIMEOUT_MS, 3);
	map3_moved(&M2, 8);
	publish(&M2); /* every node: epoch 8; the client still holds 7 */
	unsigned n = 0;
	char key[32];
	key_in("mv", 0, 2999, &n, key, sizeof key);
	struct note r = set_noted(c, key);
	CU_ASSERT_EQUAL(r.st, PM_CLIENT_OK);
	CU_ASSERT_EQUAL(r.attempts, 2); /* MOVED, then the new owner */
	CU_ASSERT(fake_holds(&T[1], key, (uint32_t)strlen(key)));
	CU_ASSERT_FALSE(fake_holds(&T[0], key, (uint32_t)strlen(key)));
	CU_ASSERT_EQUAL(atomic_load(&T[0].moved_sent), 1);
	CU_ASSERT_EQUAL(pm_client_map_epoch(c), 8);
	struct pm_client_stats st;
	pm_client_stats(c, &st);
	CU_ASSERT(st.moved == 1 && st.map_refreshes == 2 && st.maps_stale == 0);
	/* the next keys of the moved range go to the new owner at once */
	for (unsigned i = 0; i < 50; i++) {
		key_in("mv", 0, 2999, &n, key, sizeof key);
		CU_ASSERT_EQUAL(pm_client_set(c, key, strlen(key), "v", 1, 0), PM_CLIENT_OK);
	}
	CU_ASSERT_EQUAL(atomic_load(&T[0].moved_sent), 1);
	CU_ASSERT_EQUAL(sum(misroutes), 0);
	pm_client_close(c);
	nodes_stop();
}

/* ---------------------------------------------------------------- READONLY, replicas */

static void test_readonly(void)
{
	nodes_start(4, (const uint32_t[]){ 2, 1, 1, 3 });
	map4(&M, 7, 0);
	publish(&M);
	struct pm_client_config cfg = ccfg(1, PM_CLIENT_UDP, T_TIMEOUT_MS, 3);
	cfg.read_from = PM_CLIENT_READ_REPLICA;
	struct pm_client *c = copen_cfg(&cfg);
	unsigned n = 0;
	char key[32], val[8];
	key_in("ro", 0, 5460, &n, key, sizeof key);
	CU_ASSERT_EQUAL(pm_client_set(c, key, strlen(key), "v", 1, 0), PM_CLIENT_OK);
	CU_ASSERT(fake_holds(&T[0], key, (uint32_t)strlen(key)));
	/* a read goes to the set's replica, fake 3 (which holds nothing: fakes
	 * do not replicate) */
	size_t len;
	CU_ASSERT_EQUAL(pm_client_get(c, key, strlen(key), val, sizeof val, &len),
			PM_CLIENT_NOT_FOUND);
	CU_ASSERT_EQUAL(atomic_load(&T[3].keyed_served), 1);
	CU_ASSERT_EQUAL(atomic_load(&T[0].keyed_served), 1); /* the SET only */

	/* failover: fake 3 is set 0's primary in epoch 8; fake 0 refuses writes */
	map4(&M, 8, 3);
	publish(&M);
	key_in("ro", 0, 5460, &n, key, sizeof key);
	uint64_t t0 = proc_now_ms();
	struct note r = set_noted(c, key);
	CU_ASSERT_EQUAL(r.st, PM_CLIENT_OK);
	CU_ASSERT_EQUAL(r.attempts, 2);
	/* the refreshed map names another primary: at once, not after the
	 * back-off of 2 x T_TIMEOUT_MS */
	CU_ASSERT(proc_now_ms() - t0 < T_TIMEOUT_MS);
	CU_ASSERT_EQUAL(atomic_load(&T[0].readonly_sent), 1);
	CU_ASSERT(fake_holds(&T[3], key, (uint32_t)strlen(key)));
	CU_ASSERT_EQUAL(pm_client_map_epoch(c), 8);
	/* now the replica of set 0 is fake 0 */
	CU_ASSERT_EQUAL(pm_client_get(c, key, strlen(key), val, sizeof val, &len),
			PM_CLIENT_NOT_FOUND);
	CU_ASSERT_EQUAL(atomic_load(&T[0].keyed_served), 2);
	pm_client_close(c);

	/* a set without a primary: READONLY once the budget is spent */
	M.sets[0].primary = PM_CMAP_NONE;
	M.epoch = 9;
	publish(&M);
	c = copen(1, PM_CLIENT_UDP, T_SHORT_MS, 1);
	CU_ASSERT_EQUAL(pm_client_set(c, key, strlen(key), "v", 1, 0), PM_CLIENT_E_READONLY);
	pm_client_close(c);
	nodes_stop();
}

/* ---------------------------------------------------------------- a fenced primary */

/* Fake `fake` as a primary whose write lease lapsed: READONLY to writes with
 * no primary named, while every map (m's epoch) still names it. */
static void fence(uint32_t fake, const struct tmap *m)
{
	view_of(m, t_node[fake], &view);
	view.primary = false;
	memset(&view.set_primary[view.set], 0, sizeof view.set_primary[0]);
	CU_ASSERT_FATAL(fake_cluster_set(&T[fake], &view) == 0);
}

/* The READONLY of a failover (cluster-iface.md): a refused request whose
 * refreshed map is the same goes again after its back-off, so its budget
 * lasts about as long as one whose replies are lost — long enough for an
 * election — and not 1 + retries refreshes (20 ms apart). */
static void test_readonly_fenced(void)
{
	nodes_start(4, (const uint32_t[]){ 2, 1, 1, 3 });
	map4(&M, 7, 0);
	publish(&M);
	fence(0, &M);
	struct pm_client *c = copen(1, PM_CLIENT_UDP, T_REFUSED_MS, T_REFUSED_RETRIES);
	unsigned n = 0;
	char key[32];
	key_in("fe", 0, 5460, &n, key, sizeof key);
	struct pm_client_stats s0, s1;
	pm_client_stats(c, &s0);
	uint64_t t0 = proc_now_ms();
	struct note r = set_noted(c, key);
	uint64_t took = proc_now_ms() - t0;
	pm_client_stats(c, &s1);
	CU_ASSERT_EQUAL(r.st, PM_CLIENT_E_READONLY);
	CU_ASSERT_EQUAL(r.attempts, 1u + T_REFUSED_RETRIES);
	CU_ASSERT_EQUAL(atomic_load(&T[0].readonly_sent), 1u + T_REFUSED_RETRIES);
	CU_ASSERT(took >= backoff_floor_ms(T_REFUSED_MS, T_REFUSED_RETRIES));
	CU_ASSERT(took < T_BUDGET_CAP_MS);
	/* a refresh after every refusal but the last (and one before each resend) */
	CU_ASSERT(s1.map_refreshes - s0.map_refreshes >= T_REFUSED_RETRIES);
	CU_ASSERT_EQUAL(pm_client_map_epoch(c), 7);

	/* fake 3 is elected after two refusals of the next write: the write
	 * goes there within its budget */
	uint64_t ro = atomic_load(&T[0].readonly_sent);
	key_in("fe", 0, 5460, &n, key, sizeof key);
	r = (struct note){ 0 };
	struct pm_client_req q = { .op = PM_CLIENT_SET, .key = key, .klen = (uint32_t)strlen(key),
				   .value = "v", .vlen = 1, .cb = note_cb, .arg = &r };
	CU_ASSERT_FATAL(pm_client_submit(c, &q, NULL) == PM_CLIENT_OK);
	uint64_t deadline = proc_now_ms() + T_WAIT_MS;
	while (!r.done && atomic_load(&T[0].readonly_sent) < ro + 2u && proc_now_ms() < deadline)
		(void)pm_client_poll(c, 1);
	CU_ASSERT_FATAL(!r.done && atomic_load(&T[0].readonly_sent) == ro + 2u);
	map4(&M, 8, 3);
	publish(&M);
	pm_client_drain(c);
	CU_ASSERT(r.done && r.st == PM_CLIENT_OK && r.attempts == 3);
	CU_ASSERT(fake_holds(&T[3], key, (uint32_t)strlen(key)));
	CU_ASSERT_EQUAL(atomic_load(&T[0].readonly_sent), ro + 2u);
	CU_ASSERT_EQUAL(pm_client_map_epoch(c), 8);
	pm_client_close(c);
	nodes_stop();
}

/* The fenced primary is the seed, and it keeps the old map (its
 * pomai-control is stopped: nothing gives it the new one) while the other
 * nodes have the new primary's: a refresh that got nothing new from the
 * seed asks the next node the time after, and the write lands on the new
 * primary instead of the seed's map being the only one ever asked. */
static void test_readonly_stale_seed(void)
{
	nodes_start(4, (const uint32_t[]){ 2, 1, 1, 3 });
	map4(&M, 7, 0);
	publish(&M);
	struct pm_client *c = copen(0, PM_CLIENT_UDP, T_REFUSED_MS, T_REFUSED_RETRIES);
	fence(0, &M);
	map4(&M2, 8, 3);
	for (uint32_t f = 1; f < 4; f++)
		publish_to(f, &M2);
	unsigned n = 0;
	char key[32];
	key_in("ss", 0, 5460, &n, key, sizeof key);
	struct note r = set_noted(c, key);
	CU_ASSERT_EQUAL(r.st, PM_CLIENT_OK);
	CU_ASSERT_EQUAL(r.attempts, 2);
	CU_ASSERT_EQUAL(atomic_load(&T[0].readonly_sent), 1);
	CU_ASSERT(fake_holds(&T[3], key, (uint32_t)strlen(key)));
	CU_ASSERT_EQUAL(pm_client_map_epoch(c), 8);
	CU_ASSERT(atomic_load(&T[1].maps_served) >= 1);
	/* the next write of that set goes to the new primary at once */
	key_in("ss", 0, 5460, &n, key, sizeof key);
	r = set_noted(c, key);
	CU_ASSERT(r.st == PM_CLIENT_OK && r.attempts == 1);
	CU_ASSERT_EQUAL(atomic_load(&T[0].readonly_sent), 1);
	pm_client_close(c);
	nodes_stop();
}

/* ---------------------------------------------------------------- timeouts */

static void timeout_refresh(enum pm_client_transport t)
{
	nodes_start(4, (const uint32_t[]){ 2, 1, 1, 3 });
	map4(&M, 7, 0);
	publish(&M);
	struct pm_client *c = copen(0, t, T_SHORT_MS, 3);
	/* the seed (fake 0, set 0's primary) goes silent; the others fail over
	 * to fake 3 */
	fake_mute(&T[0], true);
	map4(&M, 8, 3);
	publish(&M);
	unsigned n = 0;
	char key[32];
	key_in("to", 0, 5460, &n, key, sizeof key);
	uint64_t t0 = (uint64_t)time(NULL);
	struct note r = set_noted(c, key);
	CU_ASSERT_EQUAL(r.st, PM_CLIENT_OK);
	CU_ASSERT_EQUAL(r.attempts, 2);
	CU_ASSERT(fake_holds(&T[3], key, (uint32_t)strlen(key)));
	CU_ASSERT_EQUAL(pm_client_map_epoch(c), 8);
	CU_ASSERT(atomic_load(&T[1].maps_served) >= 1); /* the next node after the seed */
	CU_ASSERT((uint64_t)time(NULL) - t0 < 5); /* a timeout and a refresh, not the budget */
	pm_client_close(c);
	nodes_stop();
}

static void test_timeout_udp(void)
{
	timeout_refresh(PM_CLIENT_UDP);
}

static void test_timeout_tcp(void)
{
	timeout_refresh(PM_CLIENT_TCP);
}

/* ---------------------------------------------------------------- stale maps, the budget */

static void test_stale_and_budget(void)
{
	nodes_start(3, (const uint32_t[]){ 2, 3, 1 });
	map3(&M, 9);
	publish(&M);
	struct pm_client *c = copen(0, PM_CLIENT_UDP, T_REFUSED_MS, 2);
	/* the seed falls back to epoch 5, where every slot is set 2's; fake 1
	 * (epoch 9) believes its slots are set 2's too, and answers MOVED */
	memset(&M2, 0, sizeof M2);
	map3(&M2, 5);
	M2.nranges = 1;
	M2.ranges[0] = (__typeof__(M2.ranges[0])){ 0, 16383, 2 };
	publish_to(0, &M2);
	map3(&M2, 9);
	M2.ranges[1].set = 2;
	publish_to(1, &M2);
	unsigned n = 0;
	char key[32];
	key_in("st", 5461, 10922, &n, key, sizeof key);
	uint64_t t0 = proc_now_ms();
	struct note r = set_noted(c, key);
	uint64_t took = proc_now_ms() - t0;
	CU_ASSERT_EQUAL(r.st, PM_CLIENT_E_MOVED);
	CU_ASSERT_EQUAL(r.attempts, 3); /* 1 + retries, every one to fake 1 */
	CU_ASSERT_EQUAL(atomic_load(&T[1].moved_sent), 3);
	/* the map did not change: each resend after its back-off */
	CU_ASSERT(took >= backoff_floor_ms(T_REFUSED_MS, 2));
	CU_ASSERT(took < T_BUDGET_CAP_MS);
	CU_ASSERT_EQUAL(pm_client_map_epoch(c), 9); /* epoch 5 was not taken */
	struct pm_client_stats st;
	pm_client_stats(c, &st);
	/* the seed's epoch-5 map ignored, every time it was asked (refreshes
	 * after one of its answers start at the next node) */
	CU_ASSERT(st.maps_stale >= 1);
	CU_ASSERT_EQUAL(atomic_load(&T[2].keyed_served), 0); /* epoch 5's routing unused */
	pm_client_close(c);

	/* no retries: the first MOVED is the answer, no refresh */
	c = copen(0, PM_CLIENT_UDP, T_REFUSED_MS, 0);
	r = set_noted(c, key);
	CU_ASSERT(r.st == PM_CLIENT_E_MOVED && r.attempts == 1);
	pm_client_stats(c, &st);
	CU_ASSERT_EQUAL(st.map_refreshes, 1); /* the bootstrap's */
	pm_client_close(c);
	nodes_stop();
}

/* ---------------------------------------------------------------- pipelined */

struct pipe_state {
	uint32_t ok, failed;
};

static void pipe_cb(void *arg, const struct pm_client_result *r)
{
	struct pipe_state *p = arg;
	if (r->status == PM_CLIENT_OK)
		p->ok++;
	else
		p->failed++;
}

static void submit_sets(struct pm_client *c, const char *prefix, uint32_t n,
			struct pipe_state *ps)
{
	char key[32];
	for (uint32_t i = 0; i < n; i++) {
		snprintf(key, sizeof key, "%s%u", prefix, i);
		struct pm_client_req q = { .op = PM_CLIENT_SET, .key = key,
					   .klen = (uint32_t)strlen(key), .value = key,
					   .vlen = (uint32_t)strlen(key), .cb = pipe_cb, .arg = ps };
		CU_ASSERT_EQUAL(pm_client_submit(c, &q, NULL), PM_CLIENT_OK);
	}
	pm_client_drain(c);
}

static void pipelined(enum pm_client_transport t)
{
	nodes_start(3, (const uint32_t[]){ 2, 3, 1 });
	map3(&M, 7);
	publish(&M);
	struct pm_client_config cfg = ccfg(0, t, T_TIMEOUT_MS, 3);
	cfg.max_in_flight = 64;
	struct pm_client *c = copen_cfg(&cfg);
	struct pipe_state ps = { 0 };
	submit_sets(c, "p", T_PIPELINE_N, &ps);
	CU_ASSERT_EQUAL(ps.ok, T_PIPELINE_N);
	CU_ASSERT_EQUAL(pm_client_in_flight(c), 0);
	char key[32];
	for (uint32_t i = 0; i < T_PIPELINE_N; i += 7) {
		snprintf(key, sizeof key, "p%u", i);
		CU_ASSERT(fake_holds(&T[set_of_key(&M, key)], key, (uint32_t)strlen(key)));
	}
	/* slots 0..2999 move to set 1 while a second pipeline runs */
	map3_moved(&M2, 8);
	publish(&M2);
	ps = (struct pipe_state){ 0 };
	submit_sets(c, "q", T_PIPELINE_N, &ps);
	CU_ASSERT_EQUAL(ps.ok, T_PIPELINE_N);
	CU_ASSERT_EQUAL(ps.failed, 0);
	for (uint32_t i = 0; i < T_PIPELINE_N; i++) {
		snprintf(key, sizeof key, "q%u", i);
		CU_ASSERT(fake_holds(&T[set_of_key(&M2, key)], key, (uint32_t)strlen(key)));
	}
	struct pm_client_stats st;
	pm_client_stats(c, &st);
	CU_ASSERT(atomic_load(&T[0].moved_sent) >= 1);
	CU_ASSERT_EQUAL(st.moved, atomic_load(&T[0].moved_sent));
	CU_ASSERT_EQUAL(pm_client_map_epoch(c), 8);
	CU_ASSERT_EQUAL(sum(misroutes), 0);
	pm_client_close(c);
	nodes_stop();
}

static void test_pipelined_udp(void)
{
	pipelined(PM_CLIENT_UDP);
}

static void test_pipelined_tcp(void)
{
	pipelined(PM_CLIENT_TCP);
}

/* ---------------------------------------------------------------- KNN and fan-outs */

#define T_VECS 30u

/* Vectors around the origin: keys v00..v19 at squared distance 1 (ties),
 * v20..v24 at 0.25, v25..v29 at 4. */
static void vec_of(uint32_t i, float v[2])
{
	static const float dirs[4][2] = { { 1, 0 }, { 0, 1 }, { -1, 0 }, { 0, -1 } };
	float r = i < 20 ? 1.0f : i < 25 ? 0.5f : 2.0f;
	v[0] = r * dirs[i % 4][0];
	v[1] = r * dirs[i % 4][1];
}

static float dist_of(uint32_t i)
{
	return i < 20 ? 1.0f : i < 25 ? 0.25f : 4.0f;
}

/* Brute force over every vector: indexes ordered by (distance, key). */
static void knn_expected(uint32_t order[T_VECS])
{
	for (uint32_t i = 0; i < T_VECS; i++)
		order[i] = i;
	for (uint32_t i = 1; i < T_VECS; i++) /* keys v%02u order as their numbers */
		for (uint32_t j = i; j > 0 && (dist_of(order[j]) < dist_of(order[j - 1]) ||
					       (dist_of(order[j]) == dist_of(order[j - 1]) &&
						order[j] < order[j - 1]));
		     j--) {
			uint32_t x = order[j];
			order[j] = order[j - 1];
			order[j - 1] = x;
		}
}

static void knn_check(struct pm_client *c, uint32_t k, size_t keys_cap, const char *coll)
{
	static struct pm_client_hit hits[T_VECS];
	static uint8_t keys[T_VECS * 8];
	uint32_t order[T_VECS];
	knn_expected(order);
	struct pm_client_knn_result res = { .hits = hits, .hits_cap = T_VECS, .keys = keys,
					    .keys_cap = keys_cap };
	struct pm_client_knn_opts o = { .k = k, .exact = true, .collection = coll };
	const float q[2] = { 0, 0 };
	CU_ASSERT_EQUAL_FATAL(pm_client_knn(c, q, 2, &o, &res), PM_CLIENT_OK);
	CU_ASSERT_EQUAL_FATAL(res.count, k);
	char want[8];
	for (uint32_t i = 0; i < k; i++) {
		snprintf(want, sizeof want, "v%02u", order[i]);
		CU_ASSERT(hits[i].klen == 3 && memcmp(hits[i].key, want, 3) == 0);
		CU_ASSERT_EQUAL(hits[i].dist, dist_of(order[i]));
	}
}

static void test_knn(void)
{
	nodes_start(3, (const uint32_t[]){ 2, 3, 1 });
	map3(&M, 7);
	publish(&M);
	struct pm_client *c = copen(0, PM_CLIENT_UDP, T_TIMEOUT_MS, 3);
	char key[8];
	bool tie_set[3] = { false };
	for (uint32_t i = 0; i < T_VECS; i++) {
		float v[2];
		vec_of(i, v);
		snprintf(key, sizeof key, "v%02u", i);
		CU_ASSERT_EQUAL(pm_client_vadd(c, key, 3, v, 2, NULL, 0), PM_CLIENT_OK);
		if (i < 12)
			tie_set[set_of_key(&M, key)] = true;
	}
	/* the ties that make the top 12 lie on more than one set */
	CU_ASSERT(tie_set[0] + tie_set[1] + tie_set[2] >= 2);
	knn_check(c, 12, 8u * T_VECS, NULL);
	knn_check(c, T_VECS, 8u * T_VECS, NULL);
	/* room for exactly k keys: the merge reuses the bytes of dropped hits */
	knn_check(c, 4, 4u * 3u, NULL);

	/* a collection on every set: created, filled, queried, listed, dropped */
	struct pm_client_coll_params p = { .dim = 2 };
	CU_ASSERT_EQUAL(pm_client_collection_create(c, "cc", &p), PM_CLIENT_OK);
	for (uint32_t i = 0; i < T_VECS; i++) {
		float v[2];
		vec_of(i, v);
		snprintf(key, sizeof key, "v%02u", i);
		CU_ASSERT_EQUAL(pm_client_vdel(c, key, 3, NULL), PM_CLIENT_OK);
		CU_ASSERT_EQUAL(pm_client_vadd(c, key, 3, v, 2, "cc", 0), PM_CLIENT_OK);
	}
	knn_check(c, 12, 8u * T_VECS, "cc");
	static struct pm_client_coll_info items[8];
	for (uint32_t f = 0; f < 3; f++) {
		struct pm_client *s = sopen(&T[f]);
		struct pm_client_coll_list l = { .items = items, .cap = 8 };
		CU_ASSERT_EQUAL(pm_client_collection_list(s, &l), PM_CLIENT_OK);
		bool found = false;
		for (uint32_t i = 0; i < l.count; i++)
			found |= items[i].name_len == 2 && memcmp(items[i].name, "cc", 2) == 0;
		CU_ASSERT(found);
		pm_client_close(s);
	}
	bool removed = false;
	CU_ASSERT_EQUAL(pm_client_collection_drop(c, "cc", &removed), PM_CLIENT_OK);
	CU_ASSERT(removed);
	CU_ASSERT_EQUAL(pm_client_collection_drop(c, "cc", &removed), PM_CLIENT_OK);
	CU_ASSERT_FALSE(removed);
	struct pm_client_knn_result res = { .hits = (struct pm_client_hit[1]){ { 0 } },
					    .hits_cap = 1 };
	struct pm_client_knn_opts o = { .k = 1, .collection = "cc" };
	CU_ASSERT_EQUAL(pm_client_knn(c, (const float[]){ 0, 0 }, 2, &o, &res), PM_CLIENT_NOT_FOUND);
	CU_ASSERT_EQUAL(pm_client_snapshot(c), PM_CLIENT_OK);
	for (uint32_t f = 0; f < 3; f++)
		CU_ASSERT_EQUAL(atomic_load(&T[f].snapshots), 1);
	static char text[PM_CLIENT_INFO_REPLY_BYTES_MAX];
	size_t len = 0;
	CU_ASSERT_EQUAL(pm_client_info(c, "keyspace", text, sizeof text, &len), PM_CLIENT_OK);
	CU_ASSERT(len > 0);
	CU_ASSERT_EQUAL(sum(misroutes), 0);
	pm_client_close(c);
	nodes_stop();
}

/* A key on two sets (its slot moved, the old owner still holds it): the
 * merge lists it once, at its nearer distance. */
static void test_knn_duplicate_key(void)
{
	nodes_start(3, (const uint32_t[]){ 2, 3, 1 });
	map3(&M, 7);
	publish(&M);
	struct pm_client *c = copen(0, PM_CLIENT_UDP, T_TIMEOUT_MS, 3);
	unsigned n = 0;
	char dup[32], far[32];
	key_in("dup", 0, 2999, &n, dup, sizeof dup);
	key_in("far", 10923, 16383, &n, far, sizeof far);
	CU_ASSERT_EQUAL(pm_client_vadd(c, dup, strlen(dup), (const float[]){ 2, 0 }, 2, NULL, 0),
			PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm_client_vadd(c, far, strlen(far), (const float[]){ 3, 0 }, 2, NULL, 0),
			PM_CLIENT_OK);
	map3_moved(&M2, 8);
	publish(&M2);
	CU_ASSERT_EQUAL(pm_client_vadd(c, dup, strlen(dup), (const float[]){ 0, 0.5f }, 2, NULL, 0),
			PM_CLIENT_OK);
	CU_ASSERT(fake_holds(&T[0], dup, (uint32_t)strlen(dup)) &&
		  fake_holds(&T[1], dup, (uint32_t)strlen(dup)));
	struct pm_client_hit hits[2];
	uint8_t keys[64];
	struct pm_client_knn_result res = { .hits = hits, .hits_cap = 2, .keys = keys,
					    .keys_cap = sizeof keys };
	struct pm_client_knn_opts o = { .k = 2, .exact = true };
	CU_ASSERT_EQUAL_FATAL(pm_client_knn(c, (const float[]){ 0, 0 }, 2, &o, &res), PM_CLIENT_OK);
	CU_ASSERT_EQUAL_FATAL(res.count, 2);
	CU_ASSERT(hits[0].klen == strlen(dup) && memcmp(hits[0].key, dup, hits[0].klen) == 0);
	CU_ASSERT_EQUAL(hits[0].dist, 0.25f);
	CU_ASSERT(hits[1].klen == strlen(far) && memcmp(hits[1].key, far, hits[1].klen) == 0);
	CU_ASSERT_EQUAL(hits[1].dist, 9.0f);
	pm_client_close(c);
	nodes_stop();
}

/* More KNN queries in flight than there are fan-out entries. */
static void test_knn_pipelined(void)
{
	enum { Q = 40, K = 5 };
	static struct pm_client_hit hits[Q][K];
	static uint8_t keys[Q][K * 8];
	static struct pm_client_knn_result res[Q];
	nodes_start(3, (const uint32_t[]){ 2, 3, 1 });
	map3(&M, 7);
	publish(&M);
	struct pm_client *c = copen(0, PM_CLIENT_UDP, T_TIMEOUT_MS, 3);
	char key[8];
	for (uint32_t i = 0; i < T_VECS; i++) {
		float v[2];
		vec_of(i, v);
		snprintf(key, sizeof key, "v%02u", i);
		CU_ASSERT_EQUAL(pm_client_vadd(c, key, 3, v, 2, NULL, 0), PM_CLIENT_OK);
	}
	struct pipe_state ps = { 0 };
	const float q[2] = { 0, 0 };
	for (uint32_t i = 0; i < Q; i++) {
		res[i] = (struct pm_client_knn_result){ .hits = hits[i], .hits_cap = K,
							.keys = keys[i], .keys_cap = sizeof keys[i] };
		struct pm_client_req r = { .op = PM_CLIENT_KNN, .vec = q, .dim = 2, .k = K,
					   .exact = true, .knn = &res[i], .cb = pipe_cb, .arg = &ps };
		CU_ASSERT_EQUAL(pm_client_submit(c, &r, NULL), PM_CLIENT_OK);
	}
	pm_client_drain(c);
	CU_ASSERT_EQUAL(ps.ok, Q);
	uint32_t order[T_VECS];
	knn_expected(order);
	for (uint32_t i = 0; i < Q; i++) {
		CU_ASSERT_EQUAL_FATAL(res[i].count, K);
		for (uint32_t j = 0; j < K; j++) {
			snprintf(key, sizeof key, "v%02u", order[j]);
			CU_ASSERT(memcmp(res[i].hits[j].key, key, 3) == 0);
		}
	}
	pm_client_close(c);
	nodes_stop();
}

/* KNN queries per kind in the latency test (odd: one median), the most a
 * KNN over three fakes may take in median against three plain KNNs to them
 * one after the other (a fan-out waits for the slowest leg, not their sum;
 * a client asleep on a timer, or sending a leg a turn late, takes a poll
 * slice, PMC_POLL_SLICE_MS = 50 ms, hundreds of times more), and its median
 * at most (the fakes answer at once). */
#define T_KNN_LAT_QUERIES 101u
#define T_KNN_LAT_RATIO 5u
#define T_KNN_LAT_MEDIAN_MS_MAX 20u

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, uint32_t n)
{
	qsort(v, n, sizeof v[0], u64_cmp);
	return v[n / 2];
}

/* One exact KNN (k 10) at the origin; its time in ns. */
static uint64_t knn_ns(struct pm_client *c)
{
	struct pm_client_hit hits[10];
	uint8_t keys[10 * 8];
	struct pm_client_knn_result res = { .hits = hits, .hits_cap = 10, .keys = keys,
					    .keys_cap = sizeof keys };
	struct pm_client_knn_opts o = { .k = 10, .exact = true };
	uint64_t t0 = proc_now_ns();
	CU_ASSERT_EQUAL(pm_client_knn(c, (const float[]){ 0, 0 }, 2, &o, &res), PM_CLIENT_OK);
	CU_ASSERT(res.count > 0); /* one fake holds its set's vectors only */
	return proc_now_ns() - t0;
}

/* A KNN over three sets costs about one leg's round trip: the legs leave
 * together and the client wakes when a socket has a reply. Cluster and plain
 * queries alternate, so that both meet the same load. */
static void test_knn_latency(void)
{
	static uint64_t fan[T_KNN_LAT_QUERIES], seq[T_KNN_LAT_QUERIES];
	nodes_start(3, (const uint32_t[]){ 2, 3, 1 });
	map3(&M, 7);
	publish(&M);
	struct pm_client *c = copen(0, PM_CLIENT_UDP, T_TIMEOUT_MS, 3);
	struct pm_client *one[3];
	char key[8];
	for (uint32_t i = 0; i < T_VECS; i++) {
		float v[2];
		vec_of(i, v);
		snprintf(key, sizeof key, "v%02u", i);
		CU_ASSERT_EQUAL(pm_client_vadd(c, key, 3, v, 2, NULL, 0), PM_CLIENT_OK);
	}
	for (uint32_t f = 0; f < 3; f++) {
		one[f] = sopen(&T[f]);
		(void)knn_ns(one[f]); /* its socket made and used once, as the cluster's */
	}
	(void)knn_ns(c);
	struct pm_client_stats s0, s1;
	pm_client_stats(c, &s0);
	for (uint32_t q = 0; q < T_KNN_LAT_QUERIES; q++) {
		fan[q] = knn_ns(c);
		seq[q] = knn_ns(one[0]) + knn_ns(one[1]) + knn_ns(one[2]);
	}
	pm_client_stats(c, &s1);
	uint64_t fan_us = median(fan, T_KNN_LAT_QUERIES) / 1000u;
	uint64_t seq_us = median(seq, T_KNN_LAT_QUERIES) / 1000u;
	printf("\n  KNN (k 10) over 3 sets, median of %u: %" PRIu64 " us; the 3 sets one after "
	       "the other with plain clients: %" PRIu64 " us",
	       T_KNN_LAT_QUERIES, fan_us, seq_us);
	CU_ASSERT(fan_us < T_KNN_LAT_RATIO * (seq_us + 1u));
	CU_ASSERT(fan_us < T_KNN_LAT_MEDIAN_MS_MAX * 1000u);
	CU_ASSERT_EQUAL(s1.map_refreshes, s0.map_refreshes);
	for (uint32_t f = 0; f < 3; f++)
		pm_client_close(one[f]);
	pm_client_close(c);
	nodes_stop();
}

/* ---------------------------------------------------------------- bounds */

/* PM_CLUSTER_SETS_MAX sets of two nodes, PM_CLUSTER_NODES_MAX nodes and
 * PM_CLUSTER_RANGES_MAX ranges: fakes 0 and 1 are set 0's and set 1's
 * primaries (nodes 0 and 2); the other nodes are ports nobody serves, from
 * `dead_port` on. */
static void map_full(struct tmap *m, uint64_t epoch, uint16_t dead_port)
{
	memset(m, 0, sizeof *m);
	m->epoch = epoch;
	m->nsets = PM_CLUSTER_SETS_MAX;
	m->nnodes = PM_CLUSTER_NODES_MAX;
	m->nranges = PM_CLUSTER_RANGES_MAX;
	for (uint16_t s = 0; s < m->nsets; s++)
		m->sets[s] = (__typeof__(m->sets[0])){ .primary = (uint16_t)(2 * s), .epoch = 1 };
	for (uint16_t i = 0; i < m->nnodes; i++)
		m->nodes[i] = (__typeof__(m->nodes[0])){ .udp = (uint16_t)(dead_port + i),
							 .tcp = (uint16_t)(dead_port + 200 + i),
							 .set = (uint16_t)(i / 2), .shards = 1 };
	node_is(m, 0, &T[0], 0);
	node_is(m, 2, &T[1], 1);
	const uint16_t per = PM_CLUSTER_SLOTS / PM_CLUSTER_RANGES_MAX;
	for (uint16_t r = 0; r < m->nranges; r++)
		m->ranges[r] = (__typeof__(m->ranges[0])){ (uint16_t)(r * per),
							   (uint16_t)(r * per + per - 1),
							   (uint16_t)(r % PM_CLUSTER_SETS_MAX) };
}

static void test_bounds(void)
{
	static struct pm_client_map pm;
	static uint8_t wire[PM_CMAP_WIRE_BYTES_MAX];
	nodes_start(2, (const uint32_t[]){ 2, 1 });
	t_node[1] = 2;
	map_full(&M, 1, 1100);
	CU_ASSERT_EQUAL(tmap_wire(&M, 0, wire, sizeof wire), PM_CMAP_WIRE_BYTES_MAX);
	publish(&M);
	struct pm_client *c = copen(0, PM_CLIENT_UDP, T_TIMEOUT_MS, 3);
	CU_ASSERT_EQUAL(pm_client_map_epoch(c), 1);
	CU_ASSERT_EQUAL_FATAL(pm_client_map(c, &pm), PM_CLIENT_OK);
	CU_ASSERT(pm.nnodes == PM_CLUSTER_NODES_MAX && pm.nsets == PM_CLUSTER_SETS_MAX &&
		  pm.nranges == PM_CLUSTER_RANGES_MAX);
	CU_ASSERT(pm.nodes[127].udp_port == 1100 + 127 && pm.nodes[127].set == 63 &&
		  !pm.nodes[127].primary);
	/* keys of sets 0 and 1 (ranges r with r % 64 == 0 or 1) reach fakes 0 and 1 */
	unsigned n = 0;
	char key[32];
	for (uint16_t s = 0; s < 2; s++)
		for (unsigned i = 0; i < 20; i++) {
			uint16_t r = (uint16_t)(s + 64u * (i % 8u));
			key_in("b", M.ranges[r].first, M.ranges[r].last, &n, key, sizeof key);
			CU_ASSERT_EQUAL(pm_client_set(c, key, strlen(key), "v", 1, 0), PM_CLIENT_OK);
			CU_ASSERT(fake_holds(&T[s], key, (uint32_t)strlen(key)));
		}
	/* a set whose primary nobody serves: the budget runs out */
	struct pm_client *d = copen(0, PM_CLIENT_UDP, T_SHORT_MS / 2, 1);
	key_in("b", M.ranges[5].first, M.ranges[5].last, &n, key, sizeof key);
	CU_ASSERT_EQUAL(pm_client_set(d, key, strlen(key), "v", 1, 0), PM_CLIENT_E_TIMEOUT);
	pm_client_close(d);

	/* another full map, all its other nodes new: the links of the old ones
	 * are given back; range 0 moved to set 1 (fake 0 answers MOVED) */
	map_full(&M2, 2, 1400);
	M2.ranges[0].set = 1;
	publish(&M2);
	key_in("b", M.ranges[0].first, M.ranges[0].last, &n, key, sizeof key);
	struct note r = set_noted(c, key);
	CU_ASSERT(r.st == PM_CLIENT_OK && r.attempts == 2);
	CU_ASSERT(fake_holds(&T[1], key, (uint32_t)strlen(key)));
	CU_ASSERT_EQUAL(pm_client_map_epoch(c), 2);
	CU_ASSERT_EQUAL_FATAL(pm_client_map(c, &pm), PM_CLIENT_OK);
	CU_ASSERT_EQUAL(pm.nodes[127].udp_port, 1400 + 127);
	key_in("b", M.ranges[64].first, M.ranges[64].last, &n, key, sizeof key);
	CU_ASSERT_EQUAL(pm_client_set(c, key, strlen(key), "v", 1, 0), PM_CLIENT_OK);
	pm_client_close(c);

	/* one node past the bound: the map is refused, and so the bootstrap */
	memset(&M2, 0, sizeof M2);
	map_full(&M2, 3, 1700);
	M2.nnodes = PM_CLUSTER_NODES_MAX + 1;
	M2.nodes[PM_CLUSTER_NODES_MAX] = M2.nodes[1];
	M2.nodes[PM_CLUSTER_NODES_MAX].udp = 1700 + 300;
	M2.nranges = 1;
	M2.ranges[0] = (__typeof__(M2.ranges[0])){ 0, 16383, 0 };
	publish_to(1, &M2);
	struct pm_client_config cfg = ccfg(1, PM_CLIENT_UDP, T_TIMEOUT_MS, 0);
	CU_ASSERT_EQUAL(pm_client_open(&cfg, &c), PM_CLIENT_E_PROTOCOL);
	nodes_stop();
}

/* ---------------------------------------------------------------- pomai-cli */

static char cli_out[T_CLI_OUT_BYTES];

static int cli_run(const struct fake *f, const char *const *args)
{
	static struct proc cli;
	proc_init(&cli, cli_path);
	proc_arg(&cli, "--port");
	proc_argf(&cli, "%u", f->base_port);
	proc_args(&cli, args);
	cli.capture = PROC_CAPTURE_STDOUT;
	return proc_run(&cli, NULL, cli_out, sizeof(cli_out), 0);
}

#define CLI(f, code, ...)                                                              \
	CU_ASSERT_EQUAL(cli_run(f, (const char *const[]){ __VA_ARGS__, NULL }), code)

static void test_cli(void)
{
	if (cli_path == NULL) {
		CU_FAIL("no pomai-cli path (argv[1] or POMAI_CLI)");
		return;
	}
	nodes_start(3, (const uint32_t[]){ 2, 3, 1 });
	map3(&M, 7);
	publish(&M);
	char want[64];
	CLI(&T[0], 0, "--cluster", "map");
	CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "epoch 7, 3 sets, 3 nodes, 3 ranges, sent by node 0"));
	for (uint32_t i = 0; i < 3; i++) {
		snprintf(want, sizeof want, "%-5u %-16s %5u %5u %6u %4u primary", i, "127.0.0.1",
			 T[i].base_port, T[i].base_port - 1, T[i].o.shards, i);
		CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, want));
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, "5461-10922   1\n"));
	CLI(&T[0], 0, "--cluster", "set", "clikey", "clival");
	CU_ASSERT_STRING_EQUAL(cli_out, "OK\n");
	CU_ASSERT(fake_holds(&T[set_of_key(&M, "clikey")], "clikey", 6));
	CLI(&T[2], 0, "--cluster", "--tcp", "get", "clikey");
	CU_ASSERT_STRING_EQUAL(cli_out, "clival");
	CLI(&T[0], 2, "map"); /* the map is a cluster's */
	CLI(&T[0], 2, "--read-replica", "get", "clikey");
	CU_ASSERT_EQUAL(sum(misroutes), 0);
	nodes_stop();
}

/* ---------------------------------------------------------------- main */

static CU_TestInfo tests[] = {
	{ "bootstrap", test_bootstrap },
	{ "routing_udp", test_routing_udp },
	{ "routing_tcp", test_routing_tcp },
	{ "moved", test_moved },
	{ "readonly_and_replica_reads", test_readonly },
	{ "readonly_fenced_primary", test_readonly_fenced },
	{ "readonly_stale_seed", test_readonly_stale_seed },
	{ "timeout_udp", test_timeout_udp },
	{ "timeout_tcp", test_timeout_tcp },
	{ "stale_epoch_and_budget", test_stale_and_budget },
	{ "pipelined_udp", test_pipelined_udp },
	{ "pipelined_tcp", test_pipelined_tcp },
	{ "knn_merge_and_fanouts", test_knn },
	{ "knn_duplicate_key", test_knn_duplicate_key },
	{ "knn_pipelined", test_knn_pipelined },
	{ "knn_latency", test_knn_latency },
	{ "bounds", test_bounds },
	{ "cli", test_cli },
	CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
	cli_path = argc > 1 ? argv[1] : getenv("POMAI_CLI");
	return pm_cu_run("client_cluster", tests);
}
