/* SPDX-License-Identifier: MIT
 *
 * agent.h — pomai-control's cluster agent (docs/cluster.md): the one part
 * of a node that speaks to etcd. pomaid never does; the agent drives it on
 * its admin socket.
 *
 * Two threads, each with its own etcd handle and its own admin connection
 * to pomaid, so that a lease renewal never waits behind anything else:
 *  - the lease keeper grants the node's etcd lease and renews it every
 *    lease_ttl_ms / CTL_LEASE_RENEW_DIV. After each renewal etcd confirmed,
 *    and while this node is its set's committed primary, it pushes pomaid's
 *    write deadline: (the renewal's send time) + TTL - one renewal interval,
 *    on CLOCK_BOOTTIME. etcd cannot expire the lease before send time + TTL,
 *    so pomaid stops taking writes at least one interval before another
 *    node can win the set's leadership — and does so by itself if this
 *    process stops, dies or is cut off from etcd.
 *  - the reconciler registers the node (nodes/<node>, under the lease),
 *    keeps it in the slot map, gives pomaid every new map, runs elections
 *    (candidacies with each replica's durable LSN; the best campaigns with
 *    etcd's create-if-absent transaction on sets/<set>/leader under its
 *    lease), promotes a winner (REPLICATION PROMOTE: a new epoch) and
 *    commits it to the map (a transaction comparing the leadership key's
 *    create revision and the map's mod revision), and makes the others
 *    follow the map's primary. It is level-triggered: every wake-up (a watch
 *    event on the cluster's prefix, or CTL_RECONCILE_MS) reads the whole
 *    prefix and acts on what it finds, so a missed event costs a tick.
 * The main thread asks it for status (CLUSTER STATUS / NODES / SLOTS) and
 * runs CLUSTER INIT on its own etcd handle.
 */
#ifndef POMAI_CONTROL_AGENT_H
#define POMAI_CONTROL_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "admin_proto.h"
#include "control.h"

/* Renewals per lease TTL: 6 gives 4 tries at renewing before the fence
 * (etcd's own client renews every TTL / 3). */
#define CTL_LEASE_RENEW_DIV 6u
/* The longest the reconciler waits for a watch event before it looks again
 * (each pass reads the cluster's whole prefix from etcd: at 100 nodes, 400
 * reads a second when nothing changes; a pass also samples pomaid, and a
 * watch cut without a word is noticed no later), and the wait while it
 * awaits something no event announces (the other candidacies' deadline, a
 * new primary's replicas connecting). */
#define CTL_RECONCILE_MS 250
#define CTL_RECONCILE_SOON_MS 50u
/* How long an eligible replica waits for the other live nodes of its set to
 * post their candidacy before the best one campaigns; a candidate that is
 * not the best campaigns anyway after CTL_CANDIDACY_GIVEUP times that (the
 * best died meanwhile). */
#define CTL_CANDIDACY_MS 200u
#define CTL_CANDIDACY_GIVEUP 3u
/* A replica may stand for election only if every shard streamed from its
 * primary this recently (a replica far behind, or never synced, must not
 * win), plus the lease TTL (the primary's death is noticed that late). */
#define CTL_STREAMED_MS 3000u
/* A collection's name in the cluster's records (the wire's bound), of
 * [A-Za-z0-9_.-] so that it is a safe etcd key; and how long CLUSTER
 * COLLECTION waits for every set to have applied it before it answers
 * (the primaries keep applying it after that). */
#define CTL_COLL_NAME_BYTES_MAX 64u
#define CTL_COLL_WAIT_MS 5000u
/* Resharding (agent.c, "resharding"): how often a refused batch of keys is
 * sent again to the target and how long apart; dirty rounds before the
 * slots are frozen anyway, and how few changed keys let them freeze; how long
 * the mover waits for its pomaid to hold a map it wrote. */
#define CTL_MOVE_ATTEMPTS 50
#define CTL_MOVE_RETRY_MS 100u
#define CTL_MOVE_ROUNDS_MAX 20
#define CTL_MOVE_FEW_KEYS 256
#define CTL_MOVE_MAP_WAIT_MS 10000u
/* How long a (re)started mover waits for the target set's primary to drop
 * its copies of the moving slots before it copies them afresh (the target's
 * pomai-control purges them, 128 keys an admin call); past it the mover
 * ends and the next pass starts it again with a new request. */
#define CTL_MOVE_DROP_WAIT_MS 30000u
/* A move's copy rate, keys per second, at most when one is asked
 * (`CLUSTER RESHARD first last set rate`, pomaictl --rate; 0 or absent:
 * as fast as the target takes them). A throttle keeps a move from crowding
 * the sets' clients; ten million a second is past what a node copies. */
#define CTL_MOVE_RATE_KEYS_PER_S_MAX 10000000u
/* A new primary takes writes once its pomaid has min_replicas replicas on
 * every shard (they follow it when they see the map name it), or after this
 * long without them: a write before that would be refused NOREPLICAS. */
#define CTL_REPLICA_WAIT_MS 2000u
/* One unary etcd call (range, txn, grant, revoke), at most. */
#define CTL_ETCD_CALL_MS 1000

struct ctl_cluster;

/* Start the agent (cfg->etcd_endpoints not empty). NULL with err. */
struct ctl_cluster *ctl_cluster_start(const struct ctl_config *cfg, const char *daemon_sock,
				      char *err, size_t errlen);
void ctl_cluster_stop(struct ctl_cluster *c);

/* A control-socket command whose first word is CLUSTER: its status, the
 * reply text in out (len bytes). */
uint8_t ctl_cluster_command(struct ctl_cluster *c, const struct pm_admin_req *r, char *out,
			    size_t cap, size_t *len);

/* Prometheus lines of the agent (pomai_cluster_*), appended at out + *len. */
void ctl_cluster_metrics(struct ctl_cluster *c, char *out, size_t cap, size_t *len);

#endif
