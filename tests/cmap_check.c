/* SPDX-License-Identifier: MIT
 *
 * cmap_check.c — the rules of an accepted slot map and map equality (see
 * cmap_check.h), written apart from proto/cluster_map.c: a rule the code
 * forgets is not forgotten here too.
 */
#include "cmap_check.h"

#include <string.h>

static bool name_valid(const char *s)
{
	size_t n = strnlen(s, PM_CLUSTER_NAME_BYTES_MAX + 1);
	if (n == 0 || n > PM_CLUSTER_NAME_BYTES_MAX || !strcmp(s, "-"))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static const char *names_rules(const struct pm_cmap *m)
{
	for (unsigned i = 0; i < m->nsets; i++) {
		if (!name_valid(m->sets[i].name))
			return "a set's name is not 1..16 of [a-z0-9_-]";
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(m->sets[i].name, m->sets[j].name))
				return "two sets of one name";
	}
	for (unsigned i = 0; i < m->nnodes; i++) {
		if (!name_valid(m->nodes[i].name))
			return "a node's name is not 1..16 of [a-z0-9_-]";
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(m->nodes[i].name, m->nodes[j].name))
				return "two nodes of one name";
	}
	return NULL;
}

const char *cmap_rules(const struct pm_cmap *m, bool names)
{
	if (m->epoch < 1)
		return "map epoch 0";
	if (m->nsets < 1 || m->nsets > PM_CLUSTER_SETS_MAX || m->nnodes > PM_CLUSTER_NODES_MAX ||
	    m->nranges < 1 || m->nranges > PM_CLUSTER_RANGES_MAX)
		return "a count out of its bounds";
	for (unsigned i = 0; i < m->nnodes; i++) {
		const struct pm_cmap_node *n = &m->nodes[i];
		if (n->set >= m->nsets)
			return "a node's set index past the sets";
		if (n->addr_be == 0 || n->udp_port == 0 || n->shards == 0)
			return "a node's addr, udp port or shards 0";
		if (n->udp_port + n->shards - 1u > 65535u)
			return "a node's shard ports past 65535";
		if (!names && n->repl_port != 0)
			return "a decoded node with a repl port";
	}
	for (unsigned i = 0; i < m->nsets; i++) {
		unsigned p = m->sets[i].primary;
		if (p != PM_CMAP_NONE && (p >= m->nnodes || m->nodes[p].set != i))
			return "a set's primary not one of its nodes";
	}
	/* ranges in slot order, end to end from slot 0 to the last, and
	 * slot_set[] saying the same */
	unsigned next = 0;
	for (unsigned r = 0; r < m->nranges; r++) {
		const struct pm_cmap_range *g = &m->ranges[r];
		if (g->first != next || g->last < g->first || g->last >= PM_CLUSTER_SLOTS)
			return "ranges not ascending end to end";
		if (g->set >= m->nsets)
			return "a range's set index past the sets";
		for (unsigned s = g->first; s <= g->last; s++)
			if (m->slot_set[s] != g->set)
				return "slot_set disagrees with the ranges";
		next = g->last + 1u;
	}
	if (next != PM_CLUSTER_SLOTS)
		return "the ranges end before the last slot";
	if (names)
		return names_rules(m);
	for (unsigned i = 0; i < m->nsets; i++)
		if (m->sets[i].name[0])
			return "a decoded set with a name";
	for (unsigned i = 0; i < m->nnodes; i++)
		if (m->nodes[i].name[0])
			return "a decoded node with a name";
	return NULL;
}

const char *cmap_diff(const struct pm_cmap *a, const struct pm_cmap *b, bool names)
{
	if (a->epoch != b->epoch)
		return "epoch";
	if (a->nsets != b->nsets || a->nnodes != b->nnodes || a->nranges != b->nranges)
		return "counts";
	for (unsigned i = 0; i < a->nsets && i < PM_CLUSTER_SETS_MAX; i++) {
		const struct pm_cmap_set *x = &a->sets[i], *y = &b->sets[i];
		if (names && strncmp(x->name, y->name, sizeof(x->name)))
			return "set name";
		if (x->epoch != y->epoch || x->primary != y->primary)
			return "set epoch or primary";
	}
	for (unsigned i = 0; i < a->nnodes && i < PM_CLUSTER_NODES_MAX; i++) {
		const struct pm_cmap_node *x = &a->nodes[i], *y = &b->nodes[i];
		if (names && strncmp(x->name, y->name, sizeof(x->name)))
			return "node name";
		if (names && x->repl_port != y->repl_port)
			return "node repl port";
		if (x->set != y->set || x->addr_be != y->addr_be || x->udp_port != y->udp_port ||
		    x->tcp_port != y->tcp_port || x->shards != y->shards)
			return "node fields";
	}
	for (unsigned r = 0; r < a->nranges && r < PM_CLUSTER_RANGES_MAX; r++)
		if (a->ranges[r].first != b->ranges[r].first || a->ranges[r].last != b->ranges[r].last ||
		    a->ranges[r].set != b->ranges[r].set)
			return "ranges";
	if (memcmp(a->slot_set, b->slot_set, sizeof(a->slot_set)))
		return "slot_set";
	return NULL;
}
