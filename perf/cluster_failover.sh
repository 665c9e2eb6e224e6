#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/cluster_failover.sh — how long a cluster takes to replace a dead
# primary (issue 17): kill -9 of a primary's pomaid and pomai-control (the box
# dies) under durable writes, to the first write acknowledged by the new
# primary. It runs the cluster suite's test 3 (tests/test_cluster.c: three
# sets of three nodes and one etcd, on loopback; repl_ack = durable,
# min_replicas = 1, lease_ttl_ms = 2000) for ROUNDS rounds cycling over the
# sets, and reads the `failover_ms=N` it prints for each round: from the kill
# to the first acknowledged write, sent after the kill, of a key of the dead
# primary's set (a probe writes a fresh key of that set every 10 ms). The
# distribution goes to perf/RESULTS.md.
#
# Also printed: the suite's own numbers of the cross-set KNN fan-out (test 1:
# an exact KNN through the cluster client against the same query on one set's
# primary), the input of the scaling model in perf/RESULTS.md.
#
# Needs root (the suite's namespaces), etcd, ip and nsenter; the machine
# should be otherwise idle: a 2 s lease on a loaded 2-core machine fences
# spuriously (writes pause, nothing is lost) and the times stretch.
#
#   perf/cluster_failover.sh [--quick]      (--quick: ROUNDS=5)
#   BUILD_DIR=dir (default <repo>/build-perf) ROUNDS=50 SEED=<n>
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

rounds=${ROUNDS:-50}
[ "${1:-}" = --quick ] && rounds=5
suite=$build/tests/test_cluster
control=$build/control/pomai-control
pm_need_tools "etcd-server" etcd
pm_need_tools "iproute2" ip
pm_need_built "$build" "$pomaid" "$control" "$suite"
[ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 2; }

pm_header "$@"
log=$(mktemp /tmp/pomai-cluster-failover.XXXXXX)
echo "rounds:  $rounds (log: $log)"
set +e
POMAI_CLUSTER_ROUNDS=$rounds POMAI_CLUSTER_ONLY="3." ${SEED:+POMAI_TEST_SEED=$SEED} \
	"$suite" "$pomaid" "$control" >"$log" 2>&1
rc=$?
set -e
grep -m1 -i "seed" "$log" || true
mapfile -t ms < <(grep -o 'failover_ms=[0-9]*' "$log" | cut -d= -f2)
[ ${#ms[@]} -gt 0 ] || { echo "$0: no failover_ms in $log (suite exit $rc)" >&2; exit 1; }
printf '%s\n' "${ms[@]}" | sort -g | awk '
	function pct(p,   i) { i = int(p * (NR - 1) + 0.5) + 1; return v[i] }
	{ v[NR] = $1; s += $1 }
	END {
		printf "failover_ms over %d rounds: min %d  p10 %d  median %d  p90 %d  p99 %d  max %d  mean %.0f\n",
			NR, v[1], pct(0.10), pct(0.50), pct(0.90), pct(0.99), v[NR], s / NR
	}'
echo "suite exit status: $rc (0: every round promoted in time and kept every acknowledged write)"
echo "histogram (100 ms buckets):"
printf '%s\n' "${ms[@]}" | awk '{ b = int($1 / 100) * 100; n[b]++ } END { for (k in n) printf "  %5d-%5d ms  %d\n", k, k + 99, n[k] }' | sort -n
[ "$rc" = 0 ]
