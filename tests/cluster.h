/* SPDX-License-Identifier: MIT
 *
 * cluster.h — a Pomai cluster on etcd for a test (issue 17, docs/cluster.md):
 * one etcd member (etcd_proc.h) and N nodes, each a pomaid (cluster = on,
 * wal = sync, a replication port, repl_ack = durable, min_replicas = 1, two
 * shards, its own data directory and free loopback ports) and the
 * pomai-control beside it, which speaks to etcd for it (registration, lease,
 * election, the slot map) and drives it over its admin socket.
 *
 * What a test does to it: `CLUSTER INIT` on a pomai-control's control socket,
 * the wait for "ready" (every pomai-control's CLUSTER STATUS shows the same
 * map epoch and every set a primary; polled with a deadline, never slept
 * for), a node killed (the box dies: pomaid and pomai-control SIGKILLed) and
 * restarted on its data directory and ports, a pomai-control SIGSTOPped and
 * SIGCONTed, a pomai-control cut off from etcd and joined again, etcd
 * SIGKILLed and restarted on its directory.
 *
 * The cut: each pomai-control runs in a network namespace of its own,
 * joined to the root namespace by a veth pair (plan §6.1, measured on this
 * machine). etcd listens on loopback and on the root side of every pair;
 * pomai-control reaches it there and its pomaid over Unix sockets (the
 * admin socket, the stats segment), which network namespaces do not
 * separate. The partition is the root side's link taken down: packets are
 * dropped silently, as a pulled cable drops them. The names and addresses
 * derive from the test's pid (namespaces pm<pid>n<i>, links pm<pid>v<i>a|b,
 * 10.<pid / 256 % 256>.<pid % 256>.<4 i + 1 | 2>/30), so that suites run by
 * others on the machine at the same time are never touched; only this run's
 * are removed.
 *
 * Needs root, `ip` (iproute2), `nsenter` (util-linux) and `etcd` on PATH:
 * cl_can_run() says what is missing (the suite then exits 77, a failure
 * under CI=true).
 */
#ifndef POMAI_TESTS_CLUSTER_H
#define POMAI_TESTS_CLUSTER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster_map.h"
#include "etcd_proc.h"
#include "proc.h"

/* ---------------------------------------------------------------- bounds */

/* Nodes and replica sets of a test's cluster, at most (12 nodes, their
 * pomai-controls and etcd are 25 processes of PROC_LIVE_MAX). */
#define CL_NODES_MAX 12u
#define CL_SETS_MAX 4u
/* Shards of every pomaid: two, as the integration suites run (CI has 2 cores). */
#define CL_SHARDS 2u
/* The lease of each pomai-control: etcd's minimum (2 s with its default
 * heartbeat and election timeout, plan §3.1), so that a failover takes as
 * little of the suite's time as it can. */
#define CL_LEASE_TTL_MS 2000
/* How long a cluster may take to become ready (six pomaids starting, each
 * set electing, the map pushed to every node) and a node to rejoin (its log
 * replayed, a partial or full sync) under ASan on a loaded 2-core machine.
 * A bound, not a delay. */
#define CL_READY_WAIT_MS 60000
/* A CLUSTER STATUS text, at most (a node section and CL_SETS_MAX set sections). */
#define CL_STATUS_BYTES 8192u
/* Bytes of the output of a node's process printed when something about it fails. */
#define CL_LOG_TAIL_BYTES 2000u

/* ---------------------------------------------------------------- what a node says */

/* One pomai-control's CLUSTER STATUS, parsed. Numbers are -1 when absent. */
struct cl_status {
	bool answered;                  /* the control socket answered OK */
	char role[16];                  /* primary | replica | candidate | none */
	long long etcd_up, map_epoch, lease_remaining_ms, write_lease, elections_won, fences,
		keepalive_failures;
	uint32_t nsets;
	struct {
		char name[PM_CLUSTER_NAME_BYTES_MAX + 1];
		char primary[PM_CLUSTER_NAME_BYTES_MAX + 1]; /* "-": none */
		long long epoch;
	} sets[CL_SETS_MAX];
	char text[CL_STATUS_BYTES];     /* the reply as it came */
};

/* ---------------------------------------------------------------- a node */

struct cl_node {
	uint32_t index;                 /* n<index>, 1-based */
	char name[PM_CLUSTER_NAME_BYTES_MAX + 1];
	char set[PM_CLUSTER_NAME_BYTES_MAX + 1];
	struct pomaid pm;               /* pm.dir, pm.base and pm.repl_port kept across restarts */
	struct proc control;            /* pomai-control */
	char sock[PATH_MAX + 16];       /* pomaid's admin socket */
	char csock[PATH_MAX + 16];      /* pomai-control's control socket */
	char pm_log[PATH_MAX + 16];     /* what each process printed, every start appended */
	char ctl_log[PATH_MAX + 16];
	bool stopped;                   /* pomai-control SIGSTOPped (cl_control_cont) */
	bool cut;                       /* its link to etcd is down (cl_partition) */
	/* its network namespace */
	char ns[32], veth_root[16], veth_ns[16];
	char ip_root[16], ip_ns[16];
	bool ns_made;
};

/* ---------------------------------------------------------------- a cluster */

struct cl_cluster {
	const char *pomaid_path, *control_path;
	char name[PM_CLUSTER_NAME_BYTES_MAX + 1];  /* c<pid> */
	uint32_t nsets, nnodes;
	char sets[CL_SETS_MAX][PM_CLUSTER_NAME_BYTES_MAX + 1];
	struct cl_node nodes[CL_NODES_MAX];
	/* etcd, listening on loopback and on the root side of every node's link */
	struct etcd_proc etcd;
	const char *etcd_flags[3];
	char etcd_listen[CL_NODES_MAX * 32 + 64];
	bool keep;                      /* leave the directories behind (a look afterwards) */
	/* Set before cl_create() (which keeps it): every pomai-control runs in
	 * the root network namespace, with no namespace or link of its own.
	 * For a test whose pomai-controls must reach other nodes' pomaids (the
	 * resharding mover writes to the target set's primary at its advertised
	 * 127.0.0.1, which a namespace's loopback is not); cl_partition() then
	 * has nothing to cut. */
	bool host_net;
};

/* Whether this machine can run a cluster: root, ip, nsenter, etcd. False
 * with what is missing in why. */
bool cl_can_run(char *why, size_t cap);

/* Make it from nothing: nsets sets ("s1".."sN") of per_set nodes each (n1,
 * n2 in s1, n3, n4 in s2, …), each node's namespace and link, etcd, every
 * pomaid and pomai-control; then CLUSTER INIT of every set on n1's
 * pomai-control and the wait until it is ready. True once it is; false (said
 * why, with the processes' last lines) otherwise — cl_destroy() then
 * removes what was made. */
bool cl_create(struct cl_cluster *c, const char *pomaid_path, const char *control_path,
	       uint32_t nsets, uint32_t per_set);
/* Stop everything (SIGTERM, SIGCONT first for a stopped pomai-control),
 * remove the namespaces, links and directories. True if every process
 * exited 0 and no output held a sanitizer report. */
bool cl_destroy(struct cl_cluster *c);

/* Every live pomai-control (SIGSTOPped and cut-off ones excluded) shows the
 * same map epoch, at least min_epoch, its own pomaid holding it, and every
 * set a primary; polled until ms. True once it does; false with every
 * node's status printed. *epoch (may be NULL): the epoch they agree on. */
bool cl_ready(struct cl_cluster *c, long long min_epoch, long long *epoch, int ms);

/* A node's CLUSTER STATUS, from its pomai-control (a bounded call). */
void cl_status(const struct cl_node *n, struct cl_status *st);
/* The primary of `set` in st (NULL: none, or the set is not in it). */
const char *cl_status_primary(const struct cl_status *st, const char *set);
/* The node named `name` (NULL: none). */
struct cl_node *cl_node_named(struct cl_cluster *c, const char *name);
/* The primary of `set` as the live pomai-controls agree on it now (NULL:
 * none, or they disagree). */
struct cl_node *cl_primary(struct cl_cluster *c, const char *set);
/* A node of `set` other than `not`. */
struct cl_node *cl_other(struct cl_cluster *c, const char *set, const struct cl_node *not);

/* Which set owns each slot (an index into c->sets), from a pomai-control's
 * CLUSTER STATUS (the `slots` line of each set's section): slot_set has
 * PM_CLUSTER_SLOTS entries. False (said why) unless every slot is in
 * exactly one set. */
bool cl_slot_sets(struct cl_cluster *c, uint16_t *slot_set);
/* The index of the set named `set` (PM_CMAP_NONE: none). */
uint16_t cl_set_index(const struct cl_cluster *c, const char *set);
/* Every live replica of `set` streams from its primary with the primary's
 * last LSN applied on every shard (polled until ms; when writes have
 * stopped). */
bool cl_set_synced(struct cl_cluster *c, const char *set, int ms);

/* The box dies: its pomai-control and its pomaid SIGKILLed (pomai-control
 * first, so that it cannot revoke its lease when it sees pomaid go: the
 * lease then expires, as it does when a machine loses power). True if both
 * ran until then. */
bool cl_node_kill(struct cl_node *n);
/* Start its pomaid on its directory and ports, then its pomai-control. */
bool cl_node_start(struct cl_cluster *c, struct cl_node *n);
/* The node has rejoined: its pomai-control says role:replica with the map
 * epoch of the others, and every shard of its pomaid streams from its set's
 * primary with the primary's last LSN applied (polled until ms). */
bool cl_node_rejoined(struct cl_cluster *c, struct cl_node *n, int ms);

/* SIGSTOP / SIGCONT of its pomai-control. */
bool cl_control_stop(struct cl_node *n);
bool cl_control_cont(struct cl_node *n);
/* Its pomai-control's link to etcd down (cut) or up again. True once `ip`
 * said so. */
bool cl_partition(struct cl_node *n, bool cut);

/* etcd SIGKILLed; started again on its directory and ports. */
bool cl_etcd_kill(struct cl_cluster *c);
bool cl_etcd_restart(struct cl_cluster *c);
/* etcd's client URL the test's own etcd client uses (loopback). */
const char *cl_etcd_url(const struct cl_cluster *c);
/* The etcd key of the leader of `set` (/pomai/<cluster>/sets/<set>/leader). */
void cl_leader_key(const struct cl_cluster *c, const char *set, char *out, size_t cap);

/* The last bytes of what a node's pomaid and pomai-control printed. */
void cl_node_log_tail(const struct cl_node *n);
/* Every node's status, printed (what a failed wait shows). */
void cl_print(struct cl_cluster *c);

/* A client of the cluster (libpomai cluster mode), seeded from the first
 * live node; NULL if it did not open. */
struct pm_client *cl_client(struct cl_cluster *c, uint32_t timeout_ms, uint32_t retries,
			    uint32_t in_flight);
/* A plain single-node client of n's pomaid. */
struct pm_client *cl_node_client(const struct cl_node *n, uint32_t timeout_ms, uint32_t retries,
				 uint32_t in_flight);

#endif
