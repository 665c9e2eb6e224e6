/* SPDX-License-Identifier: MIT
 *
 * cmap_check.h — what a slot map that pm_cmap_parse, pm_cmap_check or
 * pm_cmap_decode accepted must hold (proto/cluster_map.h), checked here from
 * the header's text rather than by the code's own checker, and whether two
 * maps are the same: the unit suite (test_cluster_map.c) and the fuzz target
 * (fuzz/fuzz_cluster_map.c) both use them.
 */
#ifndef POMAI_TESTS_CMAP_CHECK_H
#define POMAI_TESTS_CMAP_CHECK_H

#include <stdbool.h>

#include "cluster_map.h"

/* NULL when m keeps every rule of an accepted map (names too when names:
 * a decoded map has none); else the rule it breaks, as text. */
const char *cmap_rules(const struct pm_cmap *m, bool names);

/* NULL when a and b are the same map; else the first field that differs.
 * Without names, names and repl_port (which the wire form does not carry)
 * are not compared. */
const char *cmap_diff(const struct pm_cmap *a, const struct pm_cmap *b, bool names);

#endif
