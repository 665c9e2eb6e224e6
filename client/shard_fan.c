/* SPDX-License-Identifier: MIT
 *
 * shard_fan.c — a KNN over one server's shards, fanned out by the client
 * (issue 20).
 *
 * Before, a KNN went to one shard, whose worker posted it to every other
 * worker's ring, waited for their parts and merged them: four thread hops
 * per query (client, coordinator, the other workers, coordinator, client),
 * each a wake-up on a loaded machine, and every part encoded twice. Here the
 * client sends every shard the same frame under its own request id, with the
 * PART flag and the shard count (docs/protocol.md): each shard searches its
 * part and answers the client, which merges the parts as they come, with
 * the cluster mode's merge (cluster.c: the k nearest by distance, then key).
 * Two hops, in parallel; no pending slot, ring message or second encoding
 * on the server.
 *
 * The machinery is the cluster mode's fan-out: a parent slot that is never
 * sent, and one leg per shard whose buffer holds only its frame header (its
 * body is the parent's), in the same slots after the request slots, so the
 * replies, resends and timeouts of a leg need nothing of their own. Taken
 * where it is sound and cheaper: UDP sockets, 2..PM_CLUSTER_SETS_MAX shards
 * (a fan's legs are indexed by set), no user (a signed frame's AUTH trailer
 * names its port and seq, which legs sharing one body cannot), not a
 * cluster (which fans out by replica set already), and not asked off
 * (knn_via_server). Everything else, and KNN_MANY and RANGE, goes to one
 * shard as before.
 */
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "client_impl.h"

bool pmc_shard_fan_on(const struct pm_client *c)
{
	return !c->cluster && !c->tcp && c->hooks == NULL && c->cfg.user == 0 &&
	       !c->cfg.knn_via_server && c->cfg.shards >= 2u &&
	       c->cfg.shards <= PM_CLUSTER_SETS_MAX;
}

bool pmc_shard_fans(const struct pm_client *c, uint8_t op)
{
	return op == PM_WIRE_OP_VQUERY && pmc_shard_fan_on(c);
}

/* The legs' slots, laid out as a cluster's (the map slot among them stays
 * unused), so that leg indexes are the same; a leg's buffer is its header. */
enum pm_client_status pmc_shard_fan_alloc(struct pm_client *c)
{
	return pmc_legs_alloc(c, PM_FRAME_HEADER_BYTES);
}

/* Leg j of fan f (cluster.c's pmc_leg_take), to shard j. */
static void leg_start(struct pm_client *c, struct pmc_slot *parent, uint32_t f, uint16_t j,
		      uint64_t now)
{
	struct pmc_slot *g = pmc_leg_take(c, parent, f, j, now);
	g->dest = PMC_DEST(0, j);
	pmc_enqueue(c, g);
}

void pmc_shard_fan_start(struct pm_client *c, struct pmc_slot *parent, uint32_t k)
{
	uint32_t f;
	for (f = 0; f < PMC_FANOUTS_MAX && c->cl.fans[f].parent != PMC_NIL; f++)
		;
	PMC_ASSERT(f < PMC_FANOUTS_MAX); /* pmc_fan_wait before the slot was taken */
	const uint16_t n = (uint16_t)c->cfg.shards;
	struct pmc_fan *fan = &c->cl.fans[f];
	*fan = (struct pmc_fan){ .parent = (uint32_t)(parent - c->slots), .k = k, .left = n };
	parent->fan = f;
	parent->deadline_ms = UINT64_MAX; /* its legs have the deadlines */
	uint64_t now = pmc_now_ms();
	for (uint16_t j = 0; j < n; j++)
		leg_start(c, parent, f, j, now);
}
