/* SPDX-License-Identifier: MIT
 *
 * client.c — libpomai's configuration, set-up, slots and request submission.
 *
 * pm_client_open() allocates every buffer the client will ever use: the slot
 * table, one frame buffer per slot (max_in_flight of frame_bytes, plus
 * PM_CLIENT_LARGE_SLOTS of the largest frame), the receive buffer and the
 * per-shard send queues. Submission checks a request's fields against the
 * protocol limits (so a bad request fails here, with the status the server
 * would give), encodes it once into its slot, and queues it for its shard;
 * the frame stays in the slot until the request completes, for resends.
 * In cluster mode (cluster.c) the map decides where a request goes, and
 * KNN and the collection operations fan out to every replica set.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "byteorder.h"
#include "client_impl.h"
#include "route.h"

_Static_assert(PM_CLIENT_KEY_BYTES_MAX == PM_WIRE_KEY_BYTES_MAX, "pomai.h matches proto/wire.h");
_Static_assert(PM_CLIENT_VALUE_BYTES_MAX == PM_WIRE_VALUE_BYTES_MAX,
	       "pomai.h matches proto/wire.h");
_Static_assert(PM_CLIENT_DIM_MAX == PM_WIRE_DIM_MAX, "pomai.h matches proto/wire.h");
_Static_assert(PM_CLIENT_K_MAX == PM_WIRE_K_MAX, "pomai.h matches proto/wire.h");
_Static_assert(PM_CLIENT_EF_MAX == PM_WIRE_EF_MAX, "pomai.h matches proto/wire.h");
_Static_assert(PM_CLIENT_RERANK_K_MAX == PM_WIRE_RERANK_K_MAX && (int)PM_CLIENT_BIN == (int)PM_WIRE_DTYPE_BIN,
	       "pomai.h matches proto/wire.h");
_Static_assert(PM_CLIENT_COLLECTION_NAME_BYTES_MAX == PM_WIRE_COLLECTION_NAME_BYTES_MAX,
	       "pomai.h matches proto/wire.h");
_Static_assert(PM_CLIENT_INFO_SECTION_BYTES_MAX == PM_INFO_SECTION_BYTES_MAX,
	       "pomai.h matches proto/wire.h");
_Static_assert(PM_CLIENT_INFO_TEXT_BYTES_MAX == PM_WIRE_INFO_TEXT_BYTES_MAX,
	       "pomai.h matches proto/wire.h");
_Static_assert(PM_CLIENT_INFO_REPLY_BYTES_MAX == PM_INFO_REPLY_BYTES_MAX,
	       "pomai.h matches proto/wire.h");
_Static_assert(PM_CLIENT_TTL_MS_MAX == PM_WIRE_TTL_MS_MAX, "pomai.h matches proto/wire.h");
_Static_assert(PM_CLIENT_COLLECTIONS_MAX == PM_WIRE_COLLECTIONS_MAX,
	       "pomai.h matches proto/wire.h");
_Static_assert(PM_CLIENT_ATTR_BYTES_MAX == PM_WIRE_ATTR_BYTES_MAX &&
		       PM_CLIENT_FILTER_BYTES_MAX == PM_WIRE_FILTER_BYTES_MAX,
	       "pomai.h matches proto/wire.h");
_Static_assert((int)PM_CLIENT_SET == PM_WIRE_OP_SET && (int)PM_CLIENT_CLIST == PM_WIRE_OP_CLIST &&
		       (int)PM_CLIENT_KNN == PM_WIRE_OP_VQUERY &&
		       (int)PM_CLIENT_SNAPSHOT == PM_WIRE_OP_SNAPSHOT &&
		       (int)PM_CLIENT_VSETATTR == PM_WIRE_OP_VSETATTR &&
		       (int)PM_CLIENT_VADD_MANY == PM_WIRE_OP_VADDB &&
		       (int)PM_CLIENT_KNN_MANY == PM_WIRE_OP_VQUERYB &&
		       (int)PM_CLIENT_RANGE == PM_WIRE_OP_VRANGE,
	       "client ops are the wire's op numbers");
_Static_assert(PM_CLIENT_CLUSTER_SLOTS == PM_CLUSTER_SLOTS &&
		       PM_CLIENT_CLUSTER_SETS_MAX == PM_CLUSTER_SETS_MAX &&
		       PM_CLIENT_CLUSTER_NODES_MAX == PM_CLUSTER_NODES_MAX &&
		       PM_CLIENT_CLUSTER_RANGES_MAX == PM_CLUSTER_RANGES_MAX &&
		       PM_CLIENT_CLUSTER_NONE == PM_CMAP_NONE,
	       "pomai.h matches proto/cluster_map.h");

/* Frame buffers of all small slots together: keeps a typo in max_in_flight or
 * frame_bytes from asking for gigabytes. */
#define PMC_SLOT_MEMORY_BYTES_MAX (UINT64_C(256) << 20)

/* The messages of pm_client_config_check() quote these values. */
_Static_assert(PM_CLIENT_SHARDS_MAX == 1024u, "message says 1..1024");
_Static_assert(PM_CLIENT_TIMEOUT_MS_MAX == 60000u, "message says 1..60000");
_Static_assert(PM_CLIENT_RETRIES_MAX == 10u, "message says 0..10");
_Static_assert(PM_CLIENT_IN_FLIGHT_MAX == 16384u, "message says 1..16384");
_Static_assert(PM_CLIENT_FRAME_BYTES_MIN == 256u && PM_FRAME_BYTES_MAX == 65507u,
	       "message says 256..65507");
_Static_assert(PM_CLIENT_PACK_BYTES_MIN == 256u && PM_CLIENT_PACK_LOOPBACK_BYTES == 65459u,
	       "message says 256..65459");
_Static_assert(PM_CLIENT_PACK_FLUSH_US_MAX == 1000000u, "message says 1..1000000");

/* ---------------------------------------------------------------- time, backoff */

uint64_t pmc_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t pmc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* How long attempt n (1-based) waits: timeout doubled per earlier attempt, up
 * to 2^PMC_BACKOFF_SHIFT_MAX times, plus jitter so that clients that lost the
 * same burst do not resend in lockstep. Over TCP: the whole budget, once. */
uint64_t pmc_attempt_wait_ms(struct pm_client *c, uint32_t attempt)
{
	uint64_t base = c->cfg.timeout_ms;
	if (c->tcp && !c->cluster) /* a cluster retries on another stream: attempts */
		return base * (1u + c->cfg.retries);
	uint32_t shift = attempt - 1u < PMC_BACKOFF_SHIFT_MAX ? attempt - 1u : PMC_BACKOFF_SHIFT_MAX;
	base <<= shift;
	/* uniform in [0, base / PMC_JITTER_DIV] by a multiply and a shift of
	 * the top 32 random bits (a 64-bit modulo was a division per request) */
	uint64_t span = base / PMC_JITTER_DIV + 1u;
	return base + (((rng_next(&c->rng) >> 32) * span) >> 32);
}
_Static_assert(((uint64_t)PM_CLIENT_TIMEOUT_MS_MAX << PMC_BACKOFF_SHIFT_MAX) / PMC_JITTER_DIV + 1u <=
		       UINT32_MAX,
	       "the jitter's span fits 32 bits: the product above fits 64");

/* ---------------------------------------------------------------- configuration */

void pm_client_config_default(struct pm_client_config *cfg)
{
	*cfg = (struct pm_client_config){
		.host = PM_CLIENT_HOST_DEFAULT,
		.base_port = PM_CLIENT_BASE_PORT_DEFAULT,
		.shards = 1,
		.transport = PM_CLIENT_UDP,
		.timeout_ms = PM_CLIENT_TIMEOUT_MS_DEFAULT,
		.retries = PM_CLIENT_RETRIES_DEFAULT,
		.max_in_flight = PM_CLIENT_IN_FLIGHT_DEFAULT,
		.frame_bytes = PM_CLIENT_FRAME_BYTES_DEFAULT,
	};
}

static bool parse_host(const char *host, struct in_addr *a)
{
	if (host == NULL)
		host = PM_CLIENT_HOST_DEFAULT;
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	return inet_pton(AF_INET, host, a) == 1;
}

static uint32_t frame_bytes_of(const struct pm_client_config *cfg)
{
	return cfg->frame_bytes ? cfg->frame_bytes : PM_CLIENT_FRAME_BYTES_DEFAULT;
}

/* The first broken rule, or NULL. PM_CLIENT_MEMIF is valid here; only
 * pm_client_memif_open() can open it. */
static const char *config_problem(const struct pm_client_config *cfg)
{
	struct in_addr a;
	if (cfg == NULL)
		return "no configuration given";
	if (!parse_host(cfg->host, &a))
		return "host must be an IPv4 address such as 127.0.0.1";
	uint32_t shards = cfg->cluster ? 1u : cfg->shards; /* a cluster's come from its map */
	if (shards == 0 || shards > PM_CLIENT_SHARDS_MAX)
		return "shards must be 1..1024";
	if (cfg->transport != PM_CLIENT_UDP && cfg->transport != PM_CLIENT_TCP &&
	    cfg->transport != PM_CLIENT_MEMIF)
		return "transport must be PM_CLIENT_UDP, PM_CLIENT_TCP or PM_CLIENT_MEMIF";
	if (cfg->cluster && cfg->transport == PM_CLIENT_MEMIF)
		return "cluster mode needs transport PM_CLIENT_UDP or PM_CLIENT_TCP";
	if (cfg->user > PM_AUTH_USER_ID_MAX)
		return "user must be 0 (none) or 1..65535";
	if (cfg->read_from != PM_CLIENT_READ_PRIMARY && cfg->read_from != PM_CLIENT_READ_REPLICA)
		return "read_from must be PM_CLIENT_READ_PRIMARY or PM_CLIENT_READ_REPLICA";
	if (cfg->base_port == 0 || (uint64_t)cfg->base_port + shards - 1u > 65535u)
		return "base_port must be 1..65535, and base_port + shards - 1 at most 65535";
	if (cfg->tcp_port > 65535u)
		return "tcp_port must be 0 (base_port - 1) or 1..65535";
	if (cfg->transport == PM_CLIENT_TCP && cfg->tcp_port == 0 && cfg->base_port < 2)
		return "TCP with tcp_port 0 needs base_port >= 2 (the stream port is base_port - 1)";
	if (cfg->timeout_ms == 0 || cfg->timeout_ms > PM_CLIENT_TIMEOUT_MS_MAX)
		return "timeout_ms must be 1..60000";
	if (cfg->retries > PM_CLIENT_RETRIES_MAX)
		return "retries must be 0..10";
	if (cfg->max_in_flight == 0 || cfg->max_in_flight > PM_CLIENT_IN_FLIGHT_MAX)
		return "max_in_flight must be 1..16384";
	uint32_t fb = frame_bytes_of(cfg);
	if (fb < PM_CLIENT_FRAME_BYTES_MIN || fb > PM_FRAME_BYTES_MAX)
		return "frame_bytes must be 0 (default) or 256..65507";
	if ((uint64_t)fb * cfg->max_in_flight > PMC_SLOT_MEMORY_BYTES_MAX)
		return "max_in_flight * frame_bytes must be at most 256 MiB";
	if (cfg->pack_bytes != 0 && (cfg->pack_bytes < PM_CLIENT_PACK_BYTES_MIN ||
				     cfg->pack_bytes > PM_CLIENT_PACK_LOOPBACK_BYTES))
		return "pack_bytes must be 0 (the path's default) or 256..65459";
	if (cfg->pack_flush_us > PM_CLIENT_PACK_FLUSH_US_MAX)
		return "pack_flush_us must be 0 (default) or 1..1000000";
	if (cfg->spin_us > PM_CLIENT_SPIN_US_MAX)
		return "spin_us must be 0..1000000";
	return NULL;
}

enum pm_client_status pm_client_config_check(const struct pm_client_config *cfg,
					     const char **why)
{
	const char *problem = config_problem(cfg);
	if (why)
		*why = problem ? problem : "ok";
	return problem ? PM_CLIENT_E_CONFIG : PM_CLIENT_OK;
}

/* ---------------------------------------------------------------- open, close */

/* The request slots: max_in_flight small ones, then the large ones (the
 * cluster's map slot and legs after them are not in the free lists). */
static uint32_t request_slots(const struct pm_client *c)
{
	return c->cfg.max_in_flight + PM_CLIENT_LARGE_SLOTS;
}

static void free_lists_init(struct pm_client *c)
{
	uint32_t small = c->cfg.max_in_flight;
	c->free_small = PMC_NIL;
	c->free_large = PMC_NIL;
	for (uint32_t i = 0; i < c->nslots; i++)
		c->slots[i].fan = PMC_NIL;
	for (uint32_t i = request_slots(c); i-- > 0;) {
		struct pmc_slot *s = &c->slots[i];
		s->large = i >= small;
		s->cap = s->large ? PM_FRAME_BYTES_MAX : c->cfg.frame_bytes;
		s->buf = s->large ? c->large_bufs + (size_t)(i - small) * PM_FRAME_BYTES_MAX
				  : c->small_bufs + (size_t)i * c->cfg.frame_bytes;
		s->prev = s->next = PMC_NIL;
		uint32_t *list = s->large ? &c->free_large : &c->free_small;
		s->free_next = *list;
		*list = i;
	}
}

/* Queues with frames to send, at most: every queue of every link. */
static uint32_t dirty_cap(const struct pm_client *c)
{
	if (!c->cluster)
		return c->tcp ? 1u : c->cfg.shards;
	return PMC_LINKS_MAX * (c->tcp ? 1u : PMC_LINK_QUEUES_MAX);
}

static bool alloc_all(struct pm_client *c)
{
	c->nlinks = c->cluster ? PMC_LINKS_MAX : 1u;
	c->nslots = request_slots(c) +
		    (c->cluster || pmc_shard_fan_on(c) ? 1u + PMC_LEGS_MAX : 0u); /* legs */
	c->rx_cap = PM_FRAME_BYTES_MAX + 1u;
	c->links = calloc(c->nlinks, sizeof *c->links);
	for (uint32_t l = 0; c->links && l < c->nlinks; l++)
		c->links[l].fd = -1;
	c->slots = calloc(c->nslots, sizeof *c->slots);
	c->small_bufs = malloc((size_t)c->cfg.max_in_flight * c->cfg.frame_bytes);
	c->large_bufs = malloc((size_t)PM_CLIENT_LARGE_SLOTS * PM_FRAME_BYTES_MAX);
	c->rx = c->tcp ? NULL : malloc(c->rx_cap);
	c->dirty = calloc(dirty_cap(c), sizeof *c->dirty);
	c->vscratch = malloc(PM_WIRE_DIM_MAX * sizeof(float));
	c->vec_le = malloc(PM_WIRE_DIM_MAX * sizeof(float));
	c->witems = calloc(PM_WIRE_BATCH_ITEMS_MAX, sizeof(*c->witems));
	c->batch_le = malloc(PM_FRAME_BYTES_MAX);
	if (!c->links || !c->slots || !c->small_bufs || !c->large_bufs || (!c->tcp && !c->rx) ||
	    !c->dirty || !c->vscratch || !c->vec_le || !c->witems || !c->batch_le)
		return false;
	free_lists_init(c);
	return true;
}

/* Link 0: the server, or the cluster's seed. One server's queues are made now. */
static bool link0_init(struct pm_client *c)
{
	struct in_addr ip;
	(void)parse_host(c->cfg.host, &ip); /* checked by config_problem */
	uint32_t tcp = c->cfg.tcp_port ? c->cfg.tcp_port : c->cfg.base_port - 1u;
	c->links[0].used = true;
	pmc_link_set(c, 0, ip.s_addr, (uint16_t)c->cfg.base_port, (uint16_t)tcp);
	return c->cluster || pmc_link_alloc(c, 0);
}

/* Checks, allocates and connects; hooks (if any) own state from here on. */
enum pm_client_status pmc_open(const struct pm_client_config *cfg, const struct pmc_hooks *hooks,
			       void *state, struct pm_client **out)
{
	enum pm_client_status st = PM_CLIENT_OK;
	if (out == NULL)
		st = PM_CLIENT_E_ARG;
	else if (config_problem(cfg) != NULL || (cfg->transport == PM_CLIENT_MEMIF && !hooks))
		st = PM_CLIENT_E_CONFIG; /* memif: pm_client_memif_open() */
	struct pm_client *c = st == PM_CLIENT_OK ? calloc(1, sizeof *c) : NULL;
	if (out)
		*out = NULL;
	if (c == NULL) {
		if (hooks)
			hooks->close(state);
		return st != PM_CLIENT_OK ? st : PM_CLIENT_E_ALLOC;
	}
	c->hooks = hooks;
	c->hook_state = state;
	c->cfg = *cfg;
	c->cfg.frame_bytes = frame_bytes_of(cfg);
	c->cfg.pack_flush_us = cfg->pack_flush_us ? cfg->pack_flush_us : PM_CLIENT_PACK_FLUSH_US;
	c->tcp = cfg->transport == PM_CLIENT_TCP;
	c->cluster = cfg->cluster;
	c->next_deadline_ms = UINT64_MAX;
	c->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)c;
	pmc_auth_init(c);
	if (!alloc_all(c) || !link0_init(c) ||
	    (c->cluster && pmc_cluster_alloc(c) != PM_CLIENT_OK) ||
	    (pmc_shard_fan_on(c) && pmc_shard_fan_alloc(c) != PM_CLIENT_OK)) {
		pm_client_close(c);
		return PM_CLIENT_E_ALLOC;
	}
	c->cfg.host = NULL; /* the caller's string is not kept */
	st = c->cluster ? pmc_cluster_bootstrap(c) : pmc_connect(c);
	if (st != PM_CLIENT_OK) {
		pm_client_close(c);
		return st;
	}
	*out = c;
	return PM_CLIENT_OK;
}

enum pm_client_status pm_client_open(const struct pm_client_config *cfg, struct pm_client **out)
{
	return pmc_open(cfg, NULL, NULL, out);
}

void pm_client_close(struct pm_client *c)
{
	if (c == NULL)
		return;
	for (uint32_t l = 0; c->links && l < c->nlinks; l++)
		pmc_link_free(&c->links[l]);
	if (c->hooks)
		c->hooks->close(c->hook_state);
	pmc_cluster_free(c);
	free(c->links);
	free(c->slots);
	free(c->small_bufs);
	free(c->large_bufs);
	free(c->rx);
	free(c->dirty);
	free(c->vscratch);
	free(c->vec_le);
	free(c->witems);
	free(c->batch_le);
	free(c);
}

/* ---------------------------------------------------------------- slots */

struct pmc_slot *pmc_slot_by_id(struct pm_client *c, uint64_t id)
{
	uint64_t i = id & PMC_SLOT_MASK;
	if (i >= c->nslots)
		return NULL;
	struct pmc_slot *s = &c->slots[i];
	return s->state == PMC_WAIT && s->id == id ? s : NULL;
}

static struct pmc_slot *slot_take(struct pm_client *c, bool large)
{
	uint32_t *list = large ? &c->free_large : &c->free_small;
	if (*list == PMC_NIL)
		return NULL;
	struct pmc_slot *s = &c->slots[*list];
	*list = s->free_next;
	s->free_next = PMC_NIL;
	return s;
}

/* A free slot of the kind, polling (and so completing others) until one is. */
static enum pm_client_status slot_wait(struct pm_client *c, bool large, struct pmc_slot **out)
{
	while ((*out = slot_take(c, large)) == NULL) {
		if (c->in_cb)
			return PM_CLIENT_E_WOULD_BLOCK;
		(void)pm_client_poll(c, PMC_POLL_SLICE_MS);
	}
	return PM_CLIENT_OK;
}

/* Whether s is a request slot (not the cluster's map slot or a leg). */
static bool is_request(const struct pm_client *c, const struct pmc_slot *s)
{
	return (uint32_t)(s - c->slots) < request_slots(c);
}

static void free_push(struct pm_client *c, struct pmc_slot *s)
{
	s->state = PMC_FREE;
	s->id = 0;
	s->cb = NULL;
	s->knn = NULL;
	s->colls = NULL;
	s->info = NULL;
	s->parked = false;
	s->refused = false;
	s->fan = PMC_NIL;
	if (!is_request(c, s))
		return; /* the map slot and legs are taken by index */
	uint32_t *list = s->large ? &c->free_large : &c->free_small;
	s->free_next = *list;
	*list = (uint32_t)(s - c->slots);
}

void pmc_slot_free_unused(struct pm_client *c, struct pmc_slot *s)
{
	PMC_ASSERT(s->state == PMC_FREE && !s->queued);
	free_push(c, s);
}

void pmc_slot_release(struct pm_client *c, struct pmc_slot *s)
{
	PMC_ASSERT(s->state == PMC_WAIT);
	if (s->queued)
		pmc_unlink(c, s);
	if (is_request(c, s)) {
		PMC_ASSERT(c->busy > 0);
		c->busy--;
	}
	free_push(c, s);
}

void pmc_complete(struct pm_client *c, struct pmc_slot *s, struct pm_client_result *res)
{
	if (s->leg) {
		pmc_fan_leg_done(c, s, res);
		return;
	}
	if (c->cluster && (uint32_t)(s - c->slots) == c->cl.map_slot) {
		pmc_cluster_map_done(c, s, res->status);
		return;
	}
	pm_client_cb cb = s->cb;
	void *arg = s->arg;
	res->id = s->id;
	res->op = (enum pm_client_op)s->op;
	res->attempts = s->attempts;
	res->knn = s->knn;
	res->colls = s->colls;
	res->info = s->info;
	pmc_slot_release(c, s); /* before the callback, which may submit into it */
	c->stats.completed++;
	c->stats.timeouts += res->status == PM_CLIENT_E_TIMEOUT;
	c->completed_turn++;
	if (cb == NULL)
		return;
	bool outer = c->in_cb;
	c->in_cb = true;
	cb(arg, res);
	c->in_cb = outer;
}

void pmc_fail(struct pm_client *c, struct pmc_slot *s, enum pm_client_status st)
{
	struct pm_client_result res = { .status = st };
	pmc_complete(c, s, &res);
}

int pm_client_primary(const struct pm_client *c, char *out, size_t cap)
{
	if (!c || cap == 0)
		return -1;
	const struct pm_wire_primary *p = &c->last_primary;
	char ip[INET_ADDRSTRLEN];
	if (p->addr_be == 0 || !inet_ntop(AF_INET, &p->addr_be, ip, sizeof(ip))) {
		out[0] = '\0';
		return -1;
	}
	int n = snprintf(out, cap, "%s:%u/udp,%u/tcp", ip, p->udp_port, p->tcp_port);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

uint32_t pm_client_retry_ms(const struct pm_client *c)
{
	return c ? c->last_retry_ms : 0;
}

uint32_t pm_client_in_flight(const struct pm_client *c)
{
	return c ? c->busy : 0;
}

void pm_client_stats(const struct pm_client *c, struct pm_client_stats *out)
{
	if (c && out)
		*out = c->stats;
}

uint32_t pm_client_shard_of(const struct pm_client *c, const void *key, size_t klen)
{
	uint64_t h = pm_route_hash(key, klen);
	if (!c->cluster)
		return pm_shard_of(h, c->cfg.shards);
	const struct pm_cmap *m = c->cl.map;
	uint16_t p = m->epoch ? m->sets[m->slot_set[pm_slot_of(h)]].primary : PM_CMAP_NONE;
	return p == PM_CMAP_NONE ? 0 : pm_shard_of(h, m->nodes[p].shards);
}

/* ---------------------------------------------------------------- request checks */

static bool op_keyed(enum pm_client_op op)
{
	return pmc_op_keyed((uint8_t)op);
}

static enum pm_client_status check_vector(const struct pm_client_req *r)
{
	if (r->dim == 0 || r->dim > PM_WIRE_DIM_MAX)
		return PM_CLIENT_E_DIM;
	if (r->vec == NULL || (r->name_len && r->name == NULL))
		return PM_CLIENT_E_ARG;
	return r->name_len > PM_WIRE_COLLECTION_NAME_BYTES_MAX ? PM_CLIENT_E_COLLECTION_NAME
							  : PM_CLIENT_OK;
}

static enum pm_client_status check_knn(const struct pm_client_req *r)
{
	if (r->k == 0 || r->k > PM_WIRE_K_MAX)
		return PM_CLIENT_E_K;
	if (r->ef > PM_WIRE_EF_MAX || (r->ef != 0 && r->ef < r->k))
		return PM_CLIENT_E_EF;
	const struct pm_client_knn_result *k = r->knn;
	if (k == NULL || k->hits == NULL || k->hits_cap < r->k || (k->keys == NULL && k->keys_cap))
		return PM_CLIENT_E_ARG;
	if (r->filter && strlen(r->filter) > PM_WIRE_FILTER_BYTES_MAX)
		return PM_CLIENT_E_FILTER;
	return check_vector(r);
}

/* ---- issue 18: batches and range search */

static enum pm_client_status check_items(const struct pm_client_req *r, bool keyed)
{
	if (r->nitems == 0 || r->nitems > PM_WIRE_BATCH_ITEMS_MAX)
		return PM_CLIENT_E_BATCH;
	if (r->items == NULL || r->batch == NULL)
		return PM_CLIENT_E_ARG;
	for (uint32_t i = 0; i < r->nitems; i++) {
		const struct pm_client_item *it = &r->items[i];
		if (keyed && (it->klen == 0 || it->klen > PM_WIRE_KEY_BYTES_MAX))
			return PM_CLIENT_E_KEY_LEN;
		if ((keyed && it->key == NULL) || it->vec == NULL)
			return PM_CLIENT_E_ARG;
		if (it->dim == 0 || it->dim > PM_WIRE_DIM_MAX)
			return PM_CLIENT_E_DIM;
	}
	if (r->name_len > PM_WIRE_COLLECTION_NAME_BYTES_MAX)
		return PM_CLIENT_E_COLLECTION_NAME;
	return r->name_len && r->name == NULL ? PM_CLIENT_E_ARG : PM_CLIENT_OK;
}

static enum pm_client_status check_batch(const struct pm_client_req *r)
{
	if (r->op == PM_CLIENT_VADD_MANY) {
		if (r->ttl_ms > PM_WIRE_TTL_MS_MAX)
			return PM_CLIENT_E_TTL;
		enum pm_client_status st = check_items(r, true);
		return st == PM_CLIENT_OK && !r->batch->status ? PM_CLIENT_E_ARG : st;
	}
	if (r->op == PM_CLIENT_RANGE)
		return __builtin_isfinite(r->radius) ? check_knn(r) : PM_CLIENT_E_PARAM;
	enum pm_client_status st = check_items(r, false);
	if (st != PM_CLIENT_OK)
		return st;
	if (r->k == 0 || r->k > PM_WIRE_K_MAX)
		return PM_CLIENT_E_K;
	if ((uint64_t)r->k * r->nitems > PM_WIRE_BATCH_HITS_MAX)
		return PM_CLIENT_E_BATCH;
	if (r->ef > PM_WIRE_EF_MAX || (r->ef != 0 && r->ef < r->k))
		return PM_CLIENT_E_EF;
	const struct pm_client_knn_result *k = r->knn;
	if (k == NULL || k->hits == NULL || k->hits_cap < r->k * r->nitems ||
	    (k->keys == NULL && k->keys_cap) || r->batch->query == NULL)
		return PM_CLIENT_E_ARG;
	return PM_CLIENT_OK;
}

static enum pm_client_status check_named(const struct pm_client_req *r)
{
	if (r->name_len == 0 || r->name_len > PM_WIRE_COLLECTION_NAME_BYTES_MAX)
		return PM_CLIENT_E_COLLECTION_NAME;
	if (r->name == NULL)
		return PM_CLIENT_E_ARG;
	if (r->op != PM_CLIENT_CCREATE)
		return PM_CLIENT_OK;
	const struct pm_client_coll_params *p = &r->params;
	if (p->dim == 0 || p->dim > PM_WIRE_DIM_MAX)
		return PM_CLIENT_E_DIM;
	if (p->dtype >= PM_WIRE_DTYPE_COUNT)
		return PM_CLIENT_E_DTYPE;
	if (p->rerank_k > PM_WIRE_RERANK_K_MAX)
		return PM_CLIENT_E_PARAM; /* rerank on an f32 collection: the server says so */
	return p->metric >= PM_WIRE_METRIC_COUNT || p->index >= PM_WIRE_INDEX_COUNT ? PM_CLIENT_E_PARAM
									 : PM_CLIENT_OK;
}

/* The status the server would give, found before anything is sent. */
static enum pm_client_status check_req(const struct pm_client_req *r)
{
	if (op_keyed(r->op)) {
		if (r->klen == 0 || r->klen > PM_WIRE_KEY_BYTES_MAX)
			return PM_CLIENT_E_KEY_LEN;
		if (r->key == NULL)
			return PM_CLIENT_E_ARG;
	}
	if ((r->op == PM_CLIENT_SET || r->op == PM_CLIENT_VADD) && r->ttl_ms > PM_WIRE_TTL_MS_MAX)
		return PM_CLIENT_E_TTL;
	switch (r->op) {
	case PM_CLIENT_SET:
		if (r->vlen > PM_WIRE_VALUE_BYTES_MAX)
			return PM_CLIENT_E_VALUE_LEN;
		return r->vlen && r->value == NULL ? PM_CLIENT_E_ARG : PM_CLIENT_OK;
	case PM_CLIENT_GET: case PM_CLIENT_DEL: case PM_CLIENT_VGET: case PM_CLIENT_VDEL:
		return PM_CLIENT_OK;
	case PM_CLIENT_INFO:
		if (r->name_len > PM_INFO_SECTION_BYTES_MAX)
			return PM_CLIENT_E_PARAM;
		if (r->info && !r->info->buf && r->info->cap)
			return PM_CLIENT_E_ARG;
		return r->name_len && r->name == NULL ? PM_CLIENT_E_ARG : PM_CLIENT_OK;
	case PM_CLIENT_VADD:
		if (r->attr_len > PM_WIRE_ATTR_BYTES_MAX)
			return PM_CLIENT_E_ATTR;
		return r->attr_len && !r->attr ? PM_CLIENT_E_ARG : check_vector(r);
	case PM_CLIENT_VSETATTR:
		if (r->attr_len == 0 || r->attr_len > PM_WIRE_ATTR_BYTES_MAX)
			return PM_CLIENT_E_ATTR;
		return r->attr ? PM_CLIENT_OK : PM_CLIENT_E_ARG;
	case PM_CLIENT_KNN:
		return check_knn(r);
	case PM_CLIENT_CCREATE: case PM_CLIENT_CDROP:
		return check_named(r);
	case PM_CLIENT_CLIST:
		return r->colls && (r->colls->items || r->colls->cap == 0) ? PM_CLIENT_OK
									  : PM_CLIENT_E_ARG;
	case PM_CLIENT_SNAPSHOT:
		return PM_CLIENT_OK; /* no fields */
	case PM_CLIENT_VADD_MANY: case PM_CLIENT_KNN_MANY: case PM_CLIENT_RANGE:
		return check_batch(r);
	}
	return PM_CLIENT_E_ARG;
}

/* ---------------------------------------------------------------- encoding */

/* An upper bound of the encoded frame, to pick a small or a large slot. */
static uint64_t frame_bound(const struct pm_client_req *r)
{
	uint64_t n = PM_FRAME_HEADER_BYTES + 1u + 4u + 4u + 8u + 4u + 4u + 16u;
	if (op_keyed(r->op))
		n += 4u + r->klen;
	if (r->op == PM_CLIENT_SET)
		n += 4u + r->vlen;
	if (r->op == PM_CLIENT_VADD || r->op == PM_CLIENT_KNN || r->op == PM_CLIENT_RANGE)
		n += 4u + (uint64_t)r->dim * 4u;
	if (r->op == PM_CLIENT_VADD || r->op == PM_CLIENT_VSETATTR)
		n += 4u + r->attr_len;
	if ((r->op == PM_CLIENT_KNN || r->op == PM_CLIENT_RANGE) && r->filter)
		n += 4u + strlen(r->filter);
	for (uint32_t i = 0; (r->op == PM_CLIENT_VADD_MANY || r->op == PM_CLIENT_KNN_MANY) &&
			     i < r->nitems; i++) /* each item: its fields and trailers */
		n += 4u + r->items[i].klen + 4u + (uint64_t)r->items[i].dim * 4u + 8u + 4u +
		     4u + r->name_len + 4u + r->items[i].attr_len +
		     (r->filter ? 4u + strlen(r->filter) : 0u);
	return n + 4u + r->name_len;
}

/* Vector components as little-endian f32 bytes (a copy only on big endian). */
static const uint8_t *vec_le(struct pm_client *c, const float *v, uint32_t dim)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	for (uint32_t i = 0; i < dim; i++) {
		uint32_t u;
		memcpy(&u, &v[i], 4);
		u = __builtin_bswap32(u);
		memcpy(&c->vec_le[i], &u, 4);
	}
	return (const uint8_t *)c->vec_le;
#else
	(void)c;
	(void)dim;
	return (const uint8_t *)v;
#endif
}

static struct pm_wire_bytes bytes(const void *p, uint32_t n)
{
	return (struct pm_wire_bytes){ .ptr = n ? p : NULL, .len = n };
}

/* A batch's vectors as little-endian bytes: the caller's own, or (big
 * endian) copies in batch_le; NULL when they do not fit it. */
static const uint8_t *batch_vec_le(struct pm_client *c, const float *v, uint32_t dim,
				   uint32_t *used)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	if ((uint64_t)*used + dim > PM_FRAME_BYTES_MAX / 4u)
		return NULL;
	float *out = c->batch_le + *used;
	for (uint32_t i = 0; i < dim; i++) {
		uint32_t u;
		memcpy(&u, &v[i], 4);
		u = __builtin_bswap32(u);
		memcpy(&out[i], &u, 4);
	}
	*used += dim;
	return (const uint8_t *)out;
#else
	(void)c, (void)dim, (void)used;
	return (const uint8_t *)v;
#endif
}

/* A batch's items as wire requests (one VADD's / VQUERY's fields each). */
static bool batch_items(struct pm_client *c, const struct pm_client_req *r,
			struct pm_wire_request *q)
{
	/* one frame's flags say every item's trailers: when one item has a
	 * record, the others carry the empty one (no fields) */
	static const uint8_t no_fields[1] = { 0 };
	bool attrs = false;
	uint32_t used = 0;
	for (uint32_t i = 0; r->op == PM_CLIENT_VADD_MANY && i < r->nitems; i++)
		attrs |= r->items[i].attr_len != 0;
	for (uint32_t i = 0; i < r->nitems; i++) {
		const struct pm_client_item *it = &r->items[i];
		struct pm_wire_request *w = &c->witems[i];
		*w = (struct pm_wire_request){ .dim = it->dim, .k = r->k, .ef = r->ef,
					       .exact = r->exact, .has_ttl = r->ttl_ms != 0,
					       .ttl_ms = r->ttl_ms,
					       .collection = bytes(r->name, r->name_len) };
		if (r->op == PM_CLIENT_VADD_MANY)
			w->key = bytes(it->key, it->klen);
		if (attrs)
			w->attr = it->attr_len ? bytes(it->attr, it->attr_len)
					       : bytes(no_fields, sizeof(no_fields));
		if (r->op == PM_CLIENT_KNN_MANY && r->filter && r->filter[0])
			w->filter = bytes(r->filter, (uint32_t)strlen(r->filter));
		if (!(w->vec = batch_vec_le(c, it->vec, it->dim, &used)))
			return false;
	}
	q->item_list = c->witems;
	q->nitems = r->nitems;
	return true;
}

static size_t encode(struct pm_client *c, const struct pm_client_req *r, struct pmc_slot *s)
{
	struct pm_wire_request q = {
		.op = (uint8_t)r->op,
		.id = s->id,
		.key = bytes(r->key, r->klen),
		.value = bytes(r->value, r->vlen),
		.dim = r->dim,
		.k = r->k,
		.ef = r->ef,
		.exact = r->exact,
		.has_ttl = r->ttl_ms != 0,
		.ttl_ms = r->ttl_ms,
	};
	if (r->op == PM_CLIENT_INFO) {
		q.section = bytes(r->name, r->name_len);
		q.info_flags = r->info ? PM_INFO_PAGED : 0; /* pages only into a buffer */
	} else
		q.collection = bytes(r->name, r->name_len);
	if (r->op == PM_CLIENT_VADD || r->op == PM_CLIENT_KNN || r->op == PM_CLIENT_RANGE)
		q.vec = vec_le(c, r->vec, r->dim);
	if (r->op == PM_CLIENT_VADD || r->op == PM_CLIENT_VSETATTR)
		q.attr = bytes(r->attr, r->attr_len);
	if ((r->op == PM_CLIENT_KNN || r->op == PM_CLIENT_RANGE) && r->filter)
		q.filter = bytes(r->filter, (uint32_t)strlen(r->filter));
	if (pmc_shard_fans(c, (uint8_t)r->op))
		q.part_shards = c->cfg.shards; /* every shard its part (shard_fan.c) */
	q.radius = r->radius;
	if ((r->op == PM_CLIENT_VADD_MANY || r->op == PM_CLIENT_KNN_MANY) && !batch_items(c, r, &q))
		return 0;
	if (r->op == PM_CLIENT_CLIST)
		q.list_flags = PM_CLIST_COLL_FLAGS | PM_CLIST_DTYPE; /* entries with flags, dtype */
	if (r->op == PM_CLIENT_CCREATE)
		q.params = (struct pm_wire_coll_params){
			.dim = r->params.dim, .metric = r->params.metric, .index = r->params.index,
			.hnsw_m = r->params.hnsw_m, .ef_construction = r->params.ef_construction,
			.ef_search = r->params.ef_search,
			.flags = r->params.evictable ? PM_WIRE_COLL_EVICTABLE : 0,
			.dtype = r->params.dtype, .rerank = r->params.rerank,
			.rerank_k = r->params.rerank_k };
	return pm_wire_request_encode(&q, s->buf, s->cap);
}

/* ---------------------------------------------------------------- submission */

/* One server's UDP destination: the key's shard; KNN round-robin;
 * collection ops, INFO and SNAPSHOT shard 0 (the server applies them
 * everywhere itself). */
static uint32_t route(struct pm_client *c, const struct pm_client_req *r, uint64_t hash)
{
	if (c->tcp || c->cluster)
		return 0; /* a cluster: pmc_cluster_route */
	if (op_keyed(r->op))
		return pm_shard_of(hash, c->cfg.shards); /* pm_client_shard_of(), hashed once */
	if (r->op == PM_CLIENT_KNN || r->op == PM_CLIENT_KNN_MANY || r->op == PM_CLIENT_RANGE)
		return (uint32_t)(c->seq % c->cfg.shards);
	return 0;
}

void pmc_slot_arm(struct pm_client *c, struct pmc_slot *s, uint64_t now)
{
	s->state = PMC_WAIT;
	s->last_status = 0;
	s->attempts = 1;
	s->got = 0;
	s->gap_resent = false;
	s->cookie_resent = false;
	s->tx_off = 0;
	s->parked = false;
	s->refused = false;
	pmc_reset_items(s);
	s->deadline_ms = now + pmc_attempt_wait_ms(c, 1);
	pmc_deadline(c, s->deadline_ms);
}

static void slot_start(struct pm_client *c, const struct pm_client_req *r, struct pmc_slot *s,
		       uint64_t now_ms)
{
	s->op = (uint8_t)r->op;
	s->keyed = op_keyed(r->op);
	s->hash = s->keyed ? pm_route_hash(r->key, r->klen) : 0;
	s->dest = route(c, r, s->hash);
	s->cb = r->cb;
	s->arg = r->arg;
	s->knn = r->op == PM_CLIENT_KNN || r->op == PM_CLIENT_KNN_MANY || r->op == PM_CLIENT_RANGE
			 ? r->knn : NULL;
	s->batch = r->batch;
	s->nitems = r->nitems;
	s->colls = r->op == PM_CLIENT_CLIST ? r->colls : NULL;
	s->info = r->op == PM_CLIENT_INFO ? r->info : NULL;
	s->leg = false;
	s->body = NULL;
	s->auth_signed = false; /* encoded afresh: signed when queued (auth.c) */
	s->fan = PMC_NIL;
	pmc_slot_arm(c, s, now_ms);
	c->busy++;
	c->stats.requests++;
}

/* Cluster mode: send a started request where the map says, fan it out, or
 * park it for a refresh when its set has nowhere to go now. */
static void cluster_send(struct pm_client *c, const struct pm_client_req *r, struct pmc_slot *s)
{
	enum pm_client_status why;
	if (pmc_fans_out(s->op))
		pmc_fan_start(c, s, r->k);
	else if (pmc_cluster_route(c, s, &why))
		pmc_enqueue(c, s);
	else
		pmc_cluster_unroutable(c, s, why);
}

enum pm_client_status pm_client_submit(struct pm_client *c, const struct pm_client_req *req,
				       uint64_t *id)
{
	if (c == NULL || req == NULL)
		return PM_CLIENT_E_ARG;
	enum pm_client_status st = check_req(req);
	if (st == PM_CLIENT_OK && c->cluster &&
	    (req->op == PM_CLIENT_VADD_MANY || req->op == PM_CLIENT_KNN_MANY ||
	     req->op == PM_CLIENT_RANGE))
		st = PM_CLIENT_E_ARG; /* batches and ranges: one server, not a cluster (pomai.h) */
	struct pmc_slot *s = NULL;
	if (st == PM_CLIENT_OK)
		st = slot_wait(c, frame_bound(req) + pmc_auth_bytes(c) > c->cfg.frame_bytes, &s);
	if (st == PM_CLIENT_OK && ((c->cluster && pmc_fans_out((uint8_t)req->op)) ||
				   pmc_shard_fans(c, (uint8_t)req->op)))
		st = pmc_fan_wait(c); /* holding the slot: nothing else takes the fan-out */
	if (st == PM_CLIENT_OK && !pmc_is_open(c))
		st = pmc_connect(c); /* TCP: the stream was lost; reconnect */
	if (st != PM_CLIENT_OK) {
		if (s)
			pmc_slot_free_unused(c, s);
		return st;
	}
	c->seq++;
	s->id = (c->seq << PMC_SLOT_BITS) | (uint64_t)(s - c->slots);
	s->len = (uint32_t)encode(c, req, s);
	if (s->len == 0 || s->len + pmc_auth_bytes(c) > s->cap) { /* room for the trailer */
		pmc_slot_free_unused(c, s);
		return PM_CLIENT_E_ARG; /* a limit the checks above do not know */
	}
	uint64_t now_us = pmc_now_us(); /* once, for the deadline and the queue */
	slot_start(c, req, s, now_us / PMC_US_PER_MS);
	if (id)
		*id = s->id;
	if (c->cluster)
		cluster_send(c, req, s);
	else if (pmc_shard_fans(c, s->op))
		pmc_shard_fan_start(c, s, req->k);
	else
		pmc_enqueue_at(c, s, now_us);
	return PM_CLIENT_OK;
}
