/* SPDX-License-Identifier: MIT
 *
 * cluster.c — libpomai's cluster mode (docs/client.md, "Cluster mode"): the
 * slot map, routing by it, refreshing it, and the fan-out of the operations
 * that concern every replica set.
 *
 * The map. pm_client_open fetches it from the seed (the configured host and
 * ports) with the MAP operation; its wire form (proto/cluster_map.h) gives
 * the sets, their nodes' addresses and shard counts, the primaries, and the
 * slot ranges. A key goes to pm_slot_of(pm_route_hash(key)) -> its set ->
 * the set's primary (reads with PM_CLIENT_READ_REPLICA: one of its other
 * nodes, round robin) -> shard hash % that node's shards. INFO and CLIST go
 * to one node, the one that sent the map held (the seed at first).
 *
 * Refreshes. An attempt that ends without a result — a MOVED or READONLY
 * answer, a timeout, a lost or refused connection — parks its request and
 * asks for a refresh: one MAP request, to the seed first, then to each node
 * of the map in turn (each gets timeout_ms), until one answers. After an
 * answer that brought no newer map, the next refresh starts at the node
 * after the one that gave it: a node stuck on an old map (its pomai-control
 * stopped or cut off, the seed among them) is not the only one asked while
 * the others have moved on. A map with a
 * lower epoch than the one held is ignored; a higher one replaces it (links
 * of nodes no longer in it are closed, their requests parked too). When the
 * refresh ends, parked requests start their next attempt, routed by the map
 * then held; a request whose set has no primary, or whose node refused the
 * connection, waits for its attempt's time (the back-off of a timeout)
 * unless a newer map comes first. Two refreshes are at least
 * PMC_MAP_REFRESH_GAP_MS apart. Every request keeps its budget: at most
 * 1 + retries attempts; one that runs out fails with what ended its last
 * attempt (E_MOVED, E_READONLY, E_TIMEOUT, E_CONNECTION).
 *
 * Refusals. A MOVED or READONLY answer comes at once, so resending at once
 * would spend the whole budget in a few refreshes while nothing changes: a
 * fenced primary (its write lease lapsed) answers READONLY, and every node
 * still names it in the same map, until a new primary is elected and
 * published (about lease_ttl_ms / 6 + 1 s later). So a refused request goes
 * again at the end of the refresh only if the map then held sends it to
 * another node (a newer map in which the node that refused it is not its
 * set's primary any more, or not in its set for a read from replicas).
 * Otherwise it waits the back-off of its next attempt (timeout_ms doubled
 * per attempt, plus jitter: what a lost reply costs), then asks for another
 * refresh and goes by the map that brings (or by the map held, if that
 * refresh has not ended within timeout_ms). Refused every time, the last of
 * the 1 + retries attempts leaves about timeout_ms x (2^(retries+1) - 2)
 * after the first, within the bound of a request whose replies are lost:
 * 3.5 s with the defaults.
 *
 * Fan-outs. KNN, CCREATE, CDROP and SNAPSHOT go to every replica set of the
 * map, one leg each (KNN to the set's primary or a replica, the others to its
 * primary). Legs retry like any request. KNN hits are merged into the
 * caller's result as pages arrive: the k nearest by (distance, key), the
 * order every shard sorts by (engine/knn.c); a key seen twice (a leg resent,
 * or a key in two sets while a slot moves) keeps its nearer distance. The
 * others report the first failure (a real error before NOT_FOUND), and CDROP
 * "removed" when any set removed it. Why the client and not a node fans out:
 * pomaid has no node-to-node query path, the client already holds the map,
 * and a merge costs k x sets comparisons on the client, not a hop on a node.
 */
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "client_impl.h"
#include "route.h"

/* ---------------------------------------------------------------- set-up */

enum pm_client_status pmc_legs_alloc(struct pm_client *c, uint32_t buf_bytes)
{
	struct pmc_cluster *cl = &c->cl;
	cl->leg_hdrs = malloc((size_t)(PMC_LEGS_MAX + 1u) * buf_bytes);
	if (!cl->leg_hdrs)
		return PM_CLIENT_E_ALLOC;
	cl->map_slot = c->nslots - PMC_LEGS_MAX - 1u;
	cl->legs0 = cl->map_slot + 1u;
	for (uint32_t f = 0; f < PMC_FANOUTS_MAX; f++)
		cl->fans[f].parent = PMC_NIL;
	for (uint32_t i = cl->map_slot; i < c->nslots; i++) {
		struct pmc_slot *s = &c->slots[i];
		s->buf = cl->leg_hdrs + (size_t)(i - cl->map_slot) * buf_bytes;
		s->cap = buf_bytes;
		s->prev = s->next = s->free_next = PMC_NIL;
		s->leg = i >= cl->legs0;
	}
	return PM_CLIENT_OK;
}

enum pm_client_status pmc_cluster_alloc(struct pm_client *c)
{
	struct pmc_cluster *cl = &c->cl;
	cl->map = calloc(1, sizeof *cl->map);
	cl->scratch = calloc(1, sizeof *cl->scratch);
	if (!cl->map || !cl->scratch)
		return PM_CLIENT_E_ALLOC;
	cl->self = PM_CMAP_NONE;
	return pmc_legs_alloc(c, PMC_LEG_BUF_BYTES);
}

void pmc_cluster_free(struct pm_client *c)
{
	free(c->cl.map);
	free(c->cl.scratch);
	free(c->cl.leg_hdrs);
}

uint64_t pm_client_map_epoch(const struct pm_client *c)
{
	return c && c->cluster ? c->cl.map->epoch : 0;
}

enum pm_client_status pm_client_map(const struct pm_client *c, struct pm_client_map *out)
{
	if (c == NULL || out == NULL || !c->cluster)
		return PM_CLIENT_E_ARG;
	const struct pm_cmap *m = c->cl.map;
	memset(out, 0, sizeof *out);
	out->epoch = m->epoch;
	out->nsets = m->nsets;
	out->nnodes = m->nnodes;
	out->nranges = m->nranges;
	out->answered = c->cl.self;
	for (uint32_t i = 0; i < m->nsets; i++)
		out->sets[i] = (struct pm_client_map_set){ m->sets[i].epoch, m->sets[i].primary };
	for (uint32_t i = 0; i < m->nnodes; i++) {
		const struct pm_cmap_node *n = &m->nodes[i];
		out->nodes[i] = (struct pm_client_map_node){
			.addr_be = n->addr_be, .udp_port = n->udp_port, .tcp_port = n->tcp_port,
			.set = n->set, .shards = n->shards, .primary = m->sets[n->set].primary == i };
	}
	for (uint32_t i = 0; i < m->nranges; i++)
		out->ranges[i] = (struct pm_client_map_range){ m->ranges[i].first, m->ranges[i].last,
							       m->ranges[i].set };
	return PM_CLIENT_OK;
}

/* ---------------------------------------------------------------- links */

static bool link_is(const struct pm_client *c, const struct pmc_link *k,
		    const struct pm_cmap_node *n)
{
	return k->used && k->ip_be == n->addr_be && k->udp_port == n->udp_port &&
	       (!c->tcp || k->tcp_port == n->tcp_port);
}

/* The link of a node, or PMC_NIL. */
static uint32_t link_match(const struct pm_client *c, const struct pm_cmap_node *n)
{
	for (uint32_t l = 0; l < c->nlinks; l++)
		if (link_is(c, &c->links[l], n))
			return l;
	return PMC_NIL;
}

/* A request slot routed to link l, waiting for its reply: not parked, not a
 * fan-out's parent (it is never sent), not the map slot. */
static bool sent_to(const struct pm_client *c, const struct pmc_slot *s, uint32_t l)
{
	return s->state == PMC_WAIT && !s->parked && (s->fan == PMC_NIL || s->leg) &&
	       (uint32_t)(s - c->slots) != c->cl.map_slot && PMC_DEST_LINK(s->dest) == l;
}

static void map_want(struct pm_client *c, uint64_t now);

/* Park s (its attempt over) until a refresh or deadline routes it again. */
static void park(struct pm_client *c, struct pmc_slot *s, enum pm_client_status why,
		 bool unroutable, uint64_t now)
{
	if (s->queued)
		pmc_unlink(c, s);
	s->parked = true;
	s->unroutable = unroutable;
	s->last_status = (uint8_t)why;
	/* unroutable: as long as a timed-out attempt would have taken; refused:
	 * the back-off of its next attempt; else a fallback in case no refresh
	 * ends first */
	s->deadline_ms = now + pmc_attempt_wait_ms(c, s->attempts + (unroutable ? 0u : 1u));
	pmc_deadline(c, s->deadline_ms);
	map_want(c, now);
}

/* A link the new map does not name: closed, what was sent on it parked (no
 * callbacks while a map is being installed). */
static void link_release(struct pm_client *c, uint32_t l, uint64_t now)
{
	pmc_link_close(c, l);
	for (uint32_t i = 0; i < c->nslots; i++)
		if (sent_to(c, &c->slots[i], l))
			park(c, &c->slots[i], PM_CLIENT_E_CONNECTION, false, now);
	c->links[l].used = false;
}

/* Replace the map with cl->scratch (sent by link `from`, as node self). */
static void map_install(struct pm_client *c, uint16_t self, uint32_t from, uint64_t now)
{
	struct pmc_cluster *cl = &c->cl;
	struct pm_cmap *m = cl->scratch;
	bool keep[PMC_LINKS_MAX] = { [0] = true }; /* the seed always */
	cl->scratch = cl->map;
	cl->map = m;
	cl->self = self;
	for (uint32_t i = 0; i < m->nnodes; i++) {
		uint32_t l = link_match(c, &m->nodes[i]);
		cl->link_of[i] = (uint16_t)(l == PMC_NIL ? PMC_LINKS_MAX : l);
		if (l != PMC_NIL)
			keep[l] = true;
	}
	for (uint32_t l = 1; l < c->nlinks; l++)
		if (c->links[l].used && !keep[l])
			link_release(c, l, now);
	uint32_t free_l = 1;
	for (uint32_t i = 0; i < m->nnodes; i++) {
		if (cl->link_of[i] != PMC_LINKS_MAX)
			continue;
		while (c->links[free_l].used) /* nodes + the seed <= PMC_LINKS_MAX */
			free_l++;
		PMC_ASSERT(free_l < c->nlinks);
		const struct pm_cmap_node *n = &m->nodes[i];
		c->links[free_l].used = true;
		pmc_link_set(c, free_l, n->addr_be, n->udp_port, n->tcp_port);
		cl->link_of[i] = (uint16_t)free_l;
	}
	cl->home = keep[from] ? from : 0;
}

/* ---------------------------------------------------------------- routing */

static bool op_reads(uint8_t op)
{
	return op == PM_WIRE_OP_GET || op == PM_WIRE_OP_VGET || op == PM_WIRE_OP_VQUERY;
}

/* The node a request for set goes to: its primary, or for a read with
 * READ_REPLICA one of its other nodes (round robin); PM_CMAP_NONE: none. */
static uint16_t pick_node(struct pm_client *c, uint16_t set, bool read)
{
	const struct pm_cmap *m = c->cl.map;
	uint16_t primary = m->sets[set].primary;
	if (!read || c->cfg.read_from != PM_CLIENT_READ_REPLICA)
		return primary;
	uint16_t replicas[PM_CLUSTER_NODES_MAX];
	uint32_t n = 0;
	for (uint16_t i = 0; i < m->nnodes; i++)
		if (m->nodes[i].set == set && i != primary)
			replicas[n++] = i;
	return n ? replicas[c->cl.rr++ % n] : primary;
}

bool pmc_cluster_route(struct pm_client *c, struct pmc_slot *s, enum pm_client_status *why)
{
	struct pmc_cluster *cl = &c->cl;
	const struct pm_cmap *m = cl->map;
	uint32_t l = cl->home, q = 0;
	if (s->keyed || s->leg) {
		uint16_t set = s->leg ? s->set : m->slot_set[pm_slot_of(s->hash)];
		uint16_t node = pick_node(c, set, op_reads(s->op));
		if (node == PM_CMAP_NONE) {
			*why = PM_CLIENT_E_READONLY; /* the set has no primary now */
			return false;
		}
		l = cl->link_of[node];
		uint32_t shards = m->nodes[node].shards;
		if (c->tcp)
			q = 0;
		else if (s->keyed)
			q = pm_shard_of(s->hash, shards);
		else if (s->op == PM_WIRE_OP_VQUERY)
			q = cl->rr++ % shards; /* the receiving worker asks the others */
		/* CCREATE, CDROP, SNAPSHOT: shard 0, which applies them everywhere */
	}
	enum pm_client_status st = pmc_link_open(c, l);
	if (st != PM_CLIENT_OK) { /* E_AUTH: the node's stream refused the user */
		*why = st == PM_CLIENT_E_AUTH ? st : PM_CLIENT_E_CONNECTION;
		return false;
	}
	s->dest = PMC_DEST(l, q);
	s->route_epoch = m->epoch;
	return true;
}

/* Whether the map held sends a refused request to another node than the one
 * that refused it: a map newer than its attempt's (one of the same epoch is
 * the same map) in which that node is not the primary of the request's set
 * any more (a read from replicas: not a node of that set), or is gone. */
static bool route_changed(const struct pm_client *c, const struct pmc_slot *s)
{
	const struct pm_cmap *m = c->cl.map;
	if (m->epoch <= s->route_epoch)
		return false;
	uint16_t set = s->leg ? s->set : m->slot_set[pm_slot_of(s->hash)];
	bool replicas = op_reads(s->op) && c->cfg.read_from == PM_CLIENT_READ_REPLICA;
	for (uint16_t i = 0; i < m->nnodes; i++) {
		const struct pm_cmap_node *n = &m->nodes[i];
		if (n->addr_be != s->refused_ip_be || n->udp_port != s->refused_udp ||
		    (c->tcp && n->tcp_port != s->refused_tcp))
			continue;
		return replicas ? n->set != set : m->sets[set].primary != i;
	}
	return true;
}

/* The next attempt of a parked request, routed by the map held now. */
static void reroute(struct pm_client *c, struct pmc_slot *s, uint64_t now)
{
	enum pm_client_status why = (enum pm_client_status)s->last_status;
	s->parked = false;
	s->refused = false;
	if (s->attempts > c->cfg.retries) {
		pmc_fail(c, s, why);
		return;
	}
	s->attempts++;
	s->last_status = 0;
	s->gap_resent = false;
	s->cookie_resent = false;
	pmc_reset_items(s);
	if (!pmc_cluster_route(c, s, &why)) {
		if (why == PM_CLIENT_E_AUTH)
			pmc_fail(c, s, why);
		else
			park(c, s, why, true, now);
		return;
	}
	c->stats.resends++;
	s->deadline_ms = now + pmc_attempt_wait_ms(c, s->attempts);
	pmc_deadline(c, s->deadline_ms);
	pmc_enqueue(c, s);
}

/* After a refresh: the parked requests go again — those that could not be
 * routed only when the map changed, those their node refused only when the
 * map sends them elsewhere (else at their deadline). */
static void reroute_parked(struct pm_client *c, bool new_map, uint64_t now)
{
	const uint64_t last_seq = c->seq; /* not what callbacks submit meanwhile */
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct pmc_slot *s = &c->slots[i];
		if (s->state != PMC_WAIT || !s->parked || (s->id >> PMC_SLOT_BITS) > last_seq)
			continue;
		bool due = s->refused ? route_changed(c, s) : new_map || !s->unroutable;
		if (due)
			reroute(c, s, now);
	}
}

static void retry_or_park(struct pm_client *c, struct pmc_slot *s, enum pm_client_status st,
			  bool unroutable)
{
	if (s->parked)
		return; /* a late answer to an attempt already over */
	if (s->attempts > c->cfg.retries) {
		pmc_fail(c, s, st);
		return;
	}
	park(c, s, st, unroutable, pmc_now_ms());
}

void pmc_cluster_retry(struct pm_client *c, struct pmc_slot *s, enum pm_client_status st)
{
	retry_or_park(c, s, st, false);
}

void pmc_cluster_unroutable(struct pm_client *c, struct pmc_slot *s, enum pm_client_status why)
{
	if (why == PM_CLIENT_E_AUTH)
		pmc_fail(c, s, why); /* as a datagram's AUTH answer ends it (reply.c) */
	else
		retry_or_park(c, s, why, true);
}

void pmc_cluster_refused(struct pm_client *c, struct pmc_slot *s, enum pm_client_status st)
{
	if (!s->parked && s->attempts <= c->cfg.retries) {
		const struct pmc_link *k = &c->links[PMC_DEST_LINK(s->dest)];
		s->refused = true;
		s->refused_ip_be = k->ip_be;
		s->refused_udp = k->udp_port;
		s->refused_tcp = k->tcp_port;
	}
	retry_or_park(c, s, st, false);
}

/* A refused request's back-off is over: its next attempt goes by the map the
 * refresh asked for now brings (the one it waited with may be stale), or by
 * the map held if that refresh has not ended within timeout_ms. */
static void backoff_over(struct pm_client *c, struct pmc_slot *s, uint64_t now)
{
	s->refused = false;
	s->deadline_ms = now + c->cfg.timeout_ms;
	pmc_deadline(c, s->deadline_ms);
	map_want(c, now);
}

void pmc_cluster_link_down(struct pm_client *c, uint32_t l, enum pm_client_status why)
{
	const uint64_t last_seq = c->seq;
	struct pmc_slot *ms = &c->slots[c->cl.map_slot];
	bool map_here = ms->state == PMC_WAIT && PMC_DEST_LINK(ms->dest) == l;
	pmc_link_close(c, l);
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct pmc_slot *s = &c->slots[i];
		if (sent_to(c, s, l) && (s->id >> PMC_SLOT_BITS) <= last_seq)
			pmc_cluster_retry(c, s, why);
	}
	if (map_here && ms->state == PMC_WAIT && PMC_DEST_LINK(ms->dest) == l)
		pmc_fail(c, ms, why); /* the refresh asks the next node */
}

void pmc_cluster_on_timeout(struct pm_client *c, struct pmc_slot *s, uint64_t now)
{
	uint32_t l = PMC_DEST_LINK(s->dest);
	if ((uint32_t)(s - c->slots) == c->cl.map_slot) {
		if (c->cl.booting && pmc_can_resend(c, s))
			pmc_resend(c, s, now);
		else if (c->tcp)
			pmc_cluster_link_down(c, l, PM_CLIENT_E_TIMEOUT);
		else
			pmc_fail(c, s, PM_CLIENT_E_TIMEOUT);
	} else if (s->parked && s->refused) {
		backoff_over(c, s, now);
	} else if (s->parked) {
		reroute(c, s, now); /* its deadline: the next attempt, by the map held */
	} else if (s->last_status) {
		/* BUSY or a server-side TIMEOUT: the node answered; back off, resend */
		if (s->attempts <= c->cfg.retries)
			pmc_resend(c, s, now);
		else
			pmc_fail(c, s, (enum pm_client_status)s->last_status);
	} else if (c->tcp) {
		pmc_cluster_link_down(c, l, PM_CLIENT_E_TIMEOUT); /* the node stopped answering */
	} else {
		pmc_cluster_retry(c, s, PM_CLIENT_E_TIMEOUT);
	}
}

/* ---------------------------------------------------------------- refreshes */

static void map_send(struct pm_client *c, uint64_t now);

static void map_start(struct pm_client *c, uint64_t now)
{
	c->cl.refreshing = true;
	c->cl.wanted = false;
	c->cl.candidate = 0;
	map_send(c, now);
}

static void map_want(struct pm_client *c, uint64_t now)
{
	struct pmc_cluster *cl = &c->cl;
	if (cl->refreshing)
		return; /* parked meanwhile: this refresh's end routes it */
	cl->wanted = true;
	if (now >= cl->refresh_at_ms)
		map_start(c, now);
	else
		pmc_deadline(c, cl->refresh_at_ms);
}

uint64_t pmc_cluster_tick(struct pm_client *c, uint64_t now)
{
	struct pmc_cluster *cl = &c->cl;
	if (!cl->wanted || cl->refreshing)
		return UINT64_MAX;
	if (now < cl->refresh_at_ms)
		return cl->refresh_at_ms;
	map_start(c, now);
	return UINT64_MAX;
}

/* The refresh is over (a map came, or no node answered). */
static void map_finish(struct pm_client *c, bool new_map, uint64_t now)
{
	struct pmc_cluster *cl = &c->cl;
	cl->refreshing = false;
	cl->refresh_at_ms = now + PMC_MAP_REFRESH_GAP_MS;
	reroute_parked(c, new_map, now);
}

/* Candidates of a refresh: the seed and every node of the map. */
static uint32_t candidates(const struct pm_client *c)
{
	return 1u + c->cl.map->nnodes;
}

/* Candidate i's link: 0 the seed, i >= 1 the map's node i - 1; PMC_LINKS_MAX
 * for a node that is the seed (not asked twice). */
static uint32_t candidate_link(const struct pm_client *c, uint32_t i)
{
	if (i == 0)
		return 0;
	uint32_t l = c->cl.link_of[i - 1];
	return l == 0 ? PMC_LINKS_MAX : l;
}

/* Send the MAP request to the current candidate, or the next that can be
 * reached (from refresh_from on, around once); finish the refresh when none
 * is left. */
static void map_send(struct pm_client *c, uint64_t now)
{
	struct pmc_cluster *cl = &c->cl;
	struct pmc_slot *s = &c->slots[cl->map_slot];
	for (;; cl->candidate++) {
		if (cl->candidate >= candidates(c)) {
			cl->boot_status = cl->boot_status ? cl->boot_status : PM_CLIENT_E_CONNECTION;
			map_finish(c, false, now);
			return;
		}
		cl->asked = (cl->refresh_from + cl->candidate) % candidates(c);
		uint32_t l = candidate_link(c, cl->asked);
		enum pm_client_status st = l == PMC_LINKS_MAX ? PM_CLIENT_E_CONNECTION
							      : pmc_link_open(c, l);
		if (st == PM_CLIENT_E_AUTH) /* what the bootstrap says if no node answers */
			cl->boot_status = (uint8_t)st;
		if (st != PM_CLIENT_OK)
			continue;
		c->seq++;
		s->id = (c->seq << PMC_SLOT_BITS) | cl->map_slot;
		struct pm_wire_request q = { .op = PM_WIRE_OP_MAP, .id = s->id };
		s->len = (uint32_t)pm_wire_request_encode(&q, s->buf, s->cap);
		PMC_ASSERT(s->len == PM_FRAME_HEADER_BYTES);
		s->auth_signed = false; /* encoded afresh: signed when queued (auth.c) */
		s->op = PM_WIRE_OP_MAP;
		s->dest = PMC_DEST(l, 0);
		s->fan = PMC_NIL;
		pmc_slot_arm(c, s, now);
		if (cl->booting && c->tcp) /* one attempt on a stream: the whole budget */
			s->deadline_ms = now + (uint64_t)c->cfg.timeout_ms * (1u + c->cfg.retries);
		else if (!cl->booting) /* each node gets one attempt */
			s->deadline_ms = now + c->cfg.timeout_ms;
		pmc_deadline(c, s->deadline_ms);
		pmc_enqueue(c, s);
		return;
	}
}

void pmc_cluster_map_done(struct pm_client *c, struct pmc_slot *s, enum pm_client_status st)
{
	struct pmc_cluster *cl = &c->cl;
	uint64_t now = pmc_now_ms();
	pmc_slot_release(c, s);
	if (st == PM_CLIENT_OK) /* pmc_cluster_map_reply's: the map is in */
		return;
	cl->boot_status = (uint8_t)st;
	if (cl->booting) {
		map_finish(c, false, now);
		return;
	}
	cl->candidate++;
	map_send(c, now);
}

void pmc_cluster_map_reply(struct pm_client *c, struct pmc_slot *s, const struct pm_reply_view *rv)
{
	struct pmc_cluster *cl = &c->cl;
	uint16_t self;
	uint32_t from = PMC_DEST_LINK(s->dest);
	if (pm_cmap_decode(rv->value.ptr, rv->value.len, cl->scratch, &self) != 0) {
		pmc_fail(c, s, PM_CLIENT_E_PROTOCOL); /* the next node may do better */
		return;
	}
	uint64_t now = pmc_now_ms();
	pmc_slot_release(c, s);
	c->stats.map_refreshes++;
	bool newer = cl->scratch->epoch > cl->map->epoch;
	if (newer)
		map_install(c, self, from, now);
	else if (cl->scratch->epoch < cl->map->epoch)
		c->stats.maps_stale++; /* a node behind: ignored */
	else
		cl->home = from;
	/* nothing new from that node: the next refresh asks the ones after it
	 * first (it may be stuck on its map, e.g. its pomai-control stopped) */
	cl->refresh_from = newer ? 0 : (cl->asked + 1u) % candidates(c);
	cl->boot_status = PM_CLIENT_OK;
	map_finish(c, newer, now);
}

enum pm_client_status pmc_cluster_bootstrap(struct pm_client *c)
{
	struct pmc_cluster *cl = &c->cl;
	cl->booting = true;
	cl->boot_status = 0;
	map_start(c, pmc_now_ms());
	while (cl->refreshing)
		(void)pm_client_poll(c, PMC_POLL_SLICE_MS);
	cl->booting = false;
	if (cl->map->epoch != 0)
		return PM_CLIENT_OK;
	return cl->boot_status ? (enum pm_client_status)cl->boot_status : PM_CLIENT_E_TIMEOUT;
}

/* ---------------------------------------------------------------- fan-outs */

bool pmc_fans_out(uint8_t op)
{
	return op == PM_WIRE_OP_VQUERY || op == PM_WIRE_OP_CCREATE || op == PM_WIRE_OP_CDROP ||
	       op == PM_WIRE_OP_SNAPSHOT;
}

static uint32_t fan_free(const struct pm_client *c)
{
	for (uint32_t f = 0; f < PMC_FANOUTS_MAX; f++)
		if (c->cl.fans[f].parent == PMC_NIL)
			return f;
	return PMC_NIL;
}

enum pm_client_status pmc_fan_wait(struct pm_client *c)
{
	while (fan_free(c) == PMC_NIL) {
		if (c->in_cb)
			return PM_CLIENT_E_WOULD_BLOCK;
		(void)pm_client_poll(c, PMC_POLL_SLICE_MS);
	}
	return PM_CLIENT_OK;
}

struct pmc_slot *pmc_leg_take(struct pm_client *c, struct pmc_slot *parent, uint32_t f,
			      uint16_t j, uint64_t now)
{
	uint32_t idx = c->cl.legs0 + f * PM_CLUSTER_SETS_MAX + j;
	struct pmc_slot *g = &c->slots[idx];
	PMC_ASSERT(g->state == PMC_FREE && g->leg);
	c->seq++;
	g->id = (c->seq << PMC_SLOT_BITS) | idx;
	memcpy(g->buf, parent->buf, PM_FRAME_HEADER_BYTES);
	pm_put_le64(g->buf + 8, g->id); /* the header's request id */
	g->body = parent->buf + PM_FRAME_HEADER_BYTES;
	g->len = parent->len;
	g->auth_signed = false; /* its trailer: when queued (auth.c) */
	g->op = parent->op;
	g->set = j;
	g->fan = f;
	g->keyed = false;
	g->hash = 0;
	pmc_slot_arm(c, g, now);
	return g;
}

/* One leg to set j, routed by the map. */
static void leg_start(struct pm_client *c, struct pmc_slot *parent, uint32_t f, uint16_t j,
		      uint64_t now)
{
	struct pmc_slot *g = pmc_leg_take(c, parent, f, j, now);
	enum pm_client_status why;
	if (pmc_cluster_route(c, g, &why))
		pmc_enqueue(c, g);
	else
		pmc_cluster_unroutable(c, g, why);
}

void pmc_fan_start(struct pm_client *c, struct pmc_slot *parent, uint32_t k)
{
	uint32_t f = fan_free(c);
	PMC_ASSERT(f != PMC_NIL); /* pmc_fan_wait before the slot was taken */
	const uint16_t nsets = c->cl.map->nsets;
	struct pmc_fan *fan = &c->cl.fans[f];
	*fan = (struct pmc_fan){ .parent = (uint32_t)(parent - c->slots), .k = k, .left = nsets };
	parent->fan = f;
	parent->deadline_ms = UINT64_MAX; /* its legs have the deadlines */
	uint64_t now = pmc_now_ms();
	for (uint16_t j = 0; j < nsets; j++)
		leg_start(c, parent, f, j, now);
}

void pmc_fan_leg_done(struct pm_client *c, struct pmc_slot *leg,
		      const struct pm_client_result *res)
{
	struct pmc_fan *fan = &c->cl.fans[leg->fan];
	struct pmc_slot *parent = &c->slots[fan->parent];
	if (res->status != PM_CLIENT_OK &&
	    (fan->status == PM_CLIENT_OK || fan->status == PM_CLIENT_NOT_FOUND))
		fan->status = (uint8_t)res->status;
	fan->removed |= res->removed;
	pmc_slot_release(c, leg);
	PMC_ASSERT(fan->left > 0);
	if (--fan->left > 0)
		return;
	struct pm_client_result r = { .status = (enum pm_client_status)fan->status,
				      .removed = fan->removed };
	fan->parent = PMC_NIL;
	parent->fan = PMC_NIL;
	pmc_complete(c, parent, &r);
}

/* ---------------------------------------------------------------- KNN merge */

/* The order of hits: distance, then key bytes, a shorter key first. */
static int hit_cmp(float da, const uint8_t *ka, uint32_t la, float db, const uint8_t *kb,
		   uint32_t lb)
{
	if (da != db)
		return da < db ? -1 : 1;
	int m = memcmp(ka, kb, la < lb ? la : lb);
	return m ? m : (int)la - (int)lb;
}

/* Move the live keys to the front of the buffer (the bytes of dropped hits
 * become room): the hit with the lowest key pointer at or past the write
 * point moves next, so no key is overwritten before it moves. */
static void keys_compact(struct pm_client_knn_result *r)
{
	uint8_t *w = r->keys;
	for (uint32_t done = 0; done < r->count; done++) {
		struct pm_client_hit *low = NULL;
		for (uint32_t i = 0; i < r->count; i++) {
			struct pm_client_hit *h = &r->hits[i];
			if (h->key >= w && (low == NULL || h->key < low->key))
				low = h;
		}
		PMC_ASSERT(low != NULL);
		memmove(w, low->key, low->klen);
		low->key = w;
		w += low->klen;
	}
	r->keys_used = (size_t)(w - r->keys);
}

/* Insert one hit into the k nearest held in r, sorted; a key already there
 * keeps the nearer of its two distances. */
static enum pm_client_status knn_merge(struct pm_client_knn_result *r, uint32_t k,
				       struct pm_wire_bytes key, float dist)
{
	uint32_t n = r->count;
	if (n == k && hit_cmp(dist, key.ptr, key.len, r->hits[n - 1].dist, r->hits[n - 1].key,
			      r->hits[n - 1].klen) >= 0)
		return PM_CLIENT_OK; /* not among the k nearest */
	for (uint32_t i = 0; i < n; i++) {
		struct pm_client_hit *h = &r->hits[i];
		if (h->klen != key.len || memcmp(h->key, key.ptr, key.len) != 0)
			continue;
		if (dist >= h->dist)
			return PM_CLIENT_OK;
		memmove(&r->hits[i], &r->hits[i + 1], (n - i - 1) * sizeof *h);
		r->count = --n; /* the nearer copy goes in below */
		break;
	}
	uint32_t pos = n;
	while (pos > 0 && hit_cmp(dist, key.ptr, key.len, r->hits[pos - 1].dist,
				  r->hits[pos - 1].key, r->hits[pos - 1].klen) < 0)
		pos--;
	if (n == k)
		r->count = --n; /* the farthest leaves */
	if (key.len > r->keys_cap - r->keys_used)
		keys_compact(r);
	if (key.len > r->keys_cap - r->keys_used)
		return PM_CLIENT_E_NOSPACE;
	uint8_t *dst = r->keys + r->keys_used;
	memcpy(dst, key.ptr, key.len);
	r->keys_used += key.len;
	memmove(&r->hits[pos + 1], &r->hits[pos], (n - pos) * sizeof r->hits[0]);
	r->hits[pos] = (struct pm_client_hit){ dst, key.len, dist };
	r->count = n + 1;
	return PM_CLIENT_OK;
}

enum pm_client_status pmc_fan_take_hits(struct pm_client *c, struct pmc_slot *leg,
					struct pm_reply_view *rv)
{
	const struct pmc_fan *fan = &c->cl.fans[leg->fan];
	struct pm_client_knn_result *r = c->slots[fan->parent].knn;
	struct pm_wire_bytes key;
	float dist;
	if ((uint64_t)leg->got + rv->count > fan->k)
		return PM_CLIENT_E_PROTOCOL; /* more hits than k */
	while (pm_reply_next_hit(rv, &key, &dist)) {
		enum pm_client_status st = knn_merge(r, fan->k, key, dist);
		if (st != PM_CLIENT_OK)
			return st;
	}
	return PM_CLIENT_OK;
}
