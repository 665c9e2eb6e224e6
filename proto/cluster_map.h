/* SPDX-License-Identifier: MIT
 *
 * proto/cluster_map.h — the cluster's slot map (docs/cluster.md): which
 * replica set owns each of the PM_CLUSTER_SLOTS hash slots, which nodes each
 * set has, and which of them is its primary. Shared by pomaid (it answers
 * MOVED and the MAP operation from it), pomai-control (it reads and writes it
 * in etcd), pomaictl (it prints it) and libpomai (it routes by it).
 *
 * Two forms:
 *  - the document: the text etcd stores under /pomai/<cluster>/slotmap, byte
 *    for byte what pomai-control passes to pomaid (CLUSTER MAP). Lines of
 *    space-separated key=value words, the first word naming the line's kind,
 *    '\n' after each line, in this order:
 *
 *      pomai-map version=1 epoch=12
 *      set name=s1 epoch=3 primary=n1
 *      set name=s2 epoch=1 primary=-
 *      node name=n1 set=s1 addr=127.0.0.1 udp=21000 tcp=20999 repl=21100 shards=2
 *      node name=n2 set=s1 addr=127.0.0.1 udp=21010 tcp=0 repl=21110 shards=2
 *      slots first=0 last=8191 set=s1
 *      slots first=8192 last=16383 set=s2
 *      move first=100 last=199 from=s1 to=s2 state=copy
 *
 *    Rules (pm_cmap_parse refuses a document that breaks one, saying which):
 *    names are 1..PM_CLUSTER_NAME_BYTES_MAX bytes of [a-z0-9_-] but not '-'
 *    alone (that is "no primary"), unique among sets and among nodes; a
 *    node's set is declared; a set's primary is one of its nodes or '-';
 *    addr is a dotted IPv4 address other than 0.0.0.0 (zeros mean "no
 *    primary" in MOVED and READONLY bodies); udp is 1..65535 and so is
 *    udp + shards - 1 (shard i listens on udp + i); tcp and repl are
 *    0..65535 (0: none); shards is 1..PM_CMAP_SHARDS_MAX; numbers are
 *    decimal without sign or leading zero; every slot is in exactly one
 *    `slots` line; there is at least one set; the counts stay within the
 *    bounds below; the map epoch is >= 1 and strictly
 *    increases with every change (pomaid refuses a lower one, and an equal
 *    one with other content); a set's epoch is its replication epoch (the
 *    primary's, docs/replication.md). Unknown line kinds and keys are
 *    refused (version 1 is the whole vocabulary); each key is given once, in
 *    any order; words are separated by single spaces; every line, the last
 *    too, ends in '\n'; nothing else (no empty lines, no comments).
 *  - the wire form: the body of the MAP operation's reply (opcode 'M',
 *    docs/protocol.md), all little-endian except the IPv4 address:
 *
 *      u64 epoch, u16 nsets, u16 nnodes, u16 nranges, u16 self (the index of
 *          the node that answered; PM_CMAP_NONE: not in the map)
 *      nnodes x  u32 IPv4 (network order), u16 udp base port, u16 tcp port,
 *                u16 set index, u8 flags (PM_CMAP_NODE_PRIMARY), u8 shards
 *      nsets x   u16 primary node index (PM_CMAP_NONE: none), u16 0, u64 epoch
 *      nranges x u16 first slot, u16 last slot, u16 set index
 *
 *    Canonical, and decode refuses anything else: the ranges ascending and
 *    contiguous from slot 0 to PM_CLUSTER_SLOTS - 1; a node's flags exactly
 *    PM_CMAP_NODE_PRIMARY when it is its set's primary, else 0; the u16
 *    after a set's primary 0; the length exactly what the counts say.
 *
 *    Names do not travel: a client needs addresses, not names.
 *
 * Slot of a key: pm_slot_of(pm_route_hash(key)) (proto/route.h); inside a
 * node the shard is still pm_shard_of(hash, shards).
 */
#ifndef POMAI_PROTO_CLUSTER_MAP_H
#define POMAI_PROTO_CLUSTER_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hash slots of the key space: Redis Cluster's number — small enough that a
 * map fits in a few KB, large enough that a set's share moves in small
 * pieces when slots are moved. */
#define PM_CLUSTER_SLOTS 16384u
/* Bytes of a set's or a node's name. */
#define PM_CLUSTER_NAME_BYTES_MAX 16u
/* Replica sets, nodes and slot ranges of one map, at most: a cluster of 128
 * nodes covers the 100-node scale the design is sized for (docs/cluster.md),
 * and bounds the document below the admin protocol's CLUSTER MAP capacity. */
#define PM_CLUSTER_SETS_MAX 64u
#define PM_CLUSTER_NODES_MAX 128u
#define PM_CLUSTER_RANGES_MAX 512u
/* A document, at most: 13 admin arguments of PM_ADMIN_ARG_BYTES_MAX (4096)
 * after CLUSTER MAP <self> (proto/admin_proto.h: 16 arguments in all). Checked
 * against the longest lines in cluster_map.c. */
#define PM_CLUSTER_MAP_TEXT_BYTES_MAX (13u * 4096u)
/* The wire form at the bounds: one frame. */
#define PM_CMAP_WIRE_HEAD_BYTES 16u
#define PM_CMAP_WIRE_NODE_BYTES 12u
#define PM_CMAP_WIRE_SET_BYTES 12u
#define PM_CMAP_WIRE_RANGE_BYTES 6u
#define PM_CMAP_WIRE_BYTES_MAX                                                         \
	(PM_CMAP_WIRE_HEAD_BYTES + PM_CLUSTER_NODES_MAX * PM_CMAP_WIRE_NODE_BYTES +   \
	 PM_CLUSTER_SETS_MAX * PM_CMAP_WIRE_SET_BYTES +                                \
	 PM_CLUSTER_RANGES_MAX * PM_CMAP_WIRE_RANGE_BYTES)

#define PM_CMAP_NONE 0xFFFFu       /* no node / no set */
#define PM_CMAP_NODE_PRIMARY 0x01u /* wire node flags: its set's primary */

struct pm_cmap_set {
	char name[PM_CLUSTER_NAME_BYTES_MAX + 1];
	uint64_t epoch;   /* replication epoch of its primary */
	uint16_t primary; /* node index, PM_CMAP_NONE: none now */
};

struct pm_cmap_node {
	char name[PM_CLUSTER_NAME_BYTES_MAX + 1];
	uint16_t set;      /* set index */
	uint32_t addr_be;  /* IPv4, network order */
	uint16_t udp_port; /* base UDP port (shard i: + i) */
	uint16_t tcp_port; /* 0: no TCP */
	uint16_t repl_port;/* 0 in the wire form (not sent) */
	uint8_t shards;    /* 1..PM_CMAP_SHARDS_MAX */
};
#define PM_CMAP_SHARDS_MAX 255u

struct pm_cmap_range {
	uint16_t first, last, set; /* slots first..last (inclusive) belong to set */
};

/* A move of slots from one set to another under way (resharding,
 * docs/cluster.md): the slots still belong to `from` (its slots lines say
 * so); `to` takes writes for them from the copier; COPY: `from` takes writes
 * and notes the keys they change; FREEZE: `from` refuses writes to them
 * (BUSY) while the last changes are copied, until the map gives the slots to
 * `to`. At most PM_CLUSTER_MOVES_MAX at once, none overlapping. */
#define PM_CLUSTER_MOVES_MAX 8u
enum pm_cmap_move_state { PM_CMAP_MOVE_COPY = 0, PM_CMAP_MOVE_FREEZE = 1 };
struct pm_cmap_move {
	uint16_t first, last, from, to;
	uint8_t state; /* enum pm_cmap_move_state */
};

/* A parsed map (about 40 KB: keep it on the heap). slot_set is derived from
 * the ranges by parse and decode. */
struct pm_cmap {
	uint64_t epoch;
	uint16_t nsets, nnodes, nranges;
	struct pm_cmap_set sets[PM_CLUSTER_SETS_MAX];
	struct pm_cmap_node nodes[PM_CLUSTER_NODES_MAX];
	struct pm_cmap_range ranges[PM_CLUSTER_RANGES_MAX];
	uint16_t nmoves;  /* the document's; the wire form carries none */
	struct pm_cmap_move moves[PM_CLUSTER_MOVES_MAX];
	uint16_t slot_set[PM_CLUSTER_SLOTS];
};

/* The slot of a key whose routing hash is hash. */
static inline uint16_t pm_slot_of(uint64_t hash)
{
	return (uint16_t)(hash % PM_CLUSTER_SLOTS);
}

/* Parse and check a document (len bytes, no terminator needed). 0, or -1
 * with a one-line reason in err ("line 4: set s9 is not declared"). */
int pm_cmap_parse(const char *text, size_t len, struct pm_cmap *m, char *err, size_t errlen);

/* Check a map built in memory by the same rules (then put its ranges in
 * slot order and derive slot_set): what pomai-control does before it writes
 * one. 0, or -1 with err. Names must be NUL-terminated within their arrays. */
int pm_cmap_check(struct pm_cmap *m, char *err, size_t errlen);

/* The document of a map (checked first): its bytes, 0 when it breaks a rule
 * or does not fit cap (or PM_CLUSTER_MAP_TEXT_BYTES_MAX). A NUL follows the
 * bytes when cap has room for it (not counted). Deterministic: ranges are
 * written in slot order; parse(format(m)) == m for a map as pm_cmap_check
 * leaves it, and format(parse(t)) == t for a document in the canonical form
 * above (keys in that order, slots lines ascending). */
size_t pm_cmap_format(const struct pm_cmap *m, char *out, size_t cap);

/* The wire form of a map as node self (a node index or PM_CMAP_NONE) sees
 * it: its bytes, 0 when it does not fit cap, breaks a rule (names aside:
 * they do not travel) or self is neither. Ranges go in slot order. */
size_t pm_cmap_encode(const struct pm_cmap *m, uint16_t self, uint8_t *out, size_t cap);

/* Decode and check a wire form (names are left empty; repl_port 0): 0 with
 * *self, or -1 when it is malformed or breaks a rule (a client treats that
 * as a protocol error; *m is then unspecified). */
int pm_cmap_decode(const uint8_t *p, size_t len, struct pm_cmap *m, uint16_t *self);

/* Lookups: index of the set / node of that name, PM_CMAP_NONE if none. */
uint16_t pm_cmap_set_index(const struct pm_cmap *m, const char *name);
uint16_t pm_cmap_node_index(const struct pm_cmap *m, const char *name);

/* Whether a name is valid (1..PM_CLUSTER_NAME_BYTES_MAX of [a-z0-9_-]). */
bool pm_cmap_name_ok(const char *name, size_t len);

#endif
