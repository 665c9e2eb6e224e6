#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/knn_flood.sh — issue 14, item 5: what a flood of expensive KNN queries
# does to another client's GETs, on two pomaid builds side by side (BEFORE:
# one that ran every query whole as it arrived, e.g. commit ca921e1; AFTER:
# this tree's, which slices, sheds and charges KNN work).
#
# Each run is pomai-knn-flood (tests/knn_flood.c; knn_flood.h describes it):
# pomaid --shards SHARDS --wal none on free loopback ports, a flat collection
# of VECTORS random vectors of DIM floats loaded through libpomai, then
#   - one k=K query over the whole collection alone, 9 times: the median;
#   - a polite client (127.0.0.1) alone: GETs at POLITE_RPS for SECONDS s,
#     open loop, each round trip measured, none resent (unanswered after 1 s:
#     lost, and counted as infinitely slow in the percentiles);
#   - the same while a flooding client (127.0.0.3) sends k=K queries over the
#     collection open loop at FLOOD_QPS, to every shard in turn (it starts
#     0.5 s before the polite client measures).
# Every pomaid flag but the scenario's is its default (knn_timeout_ms 100,
# knn_slice_us 500, knn_work_bytes_max 1G, no quotas). Runs alternate
# BEFORE and AFTER, PAIRS times, each with its own daemon; the order flips
# every pair. NICE (default 0) runs everything at that nice level: on a
# machine shared with other jobs, -15 keeps their load out of the numbers.
# Talks to 127.0.0.1 only, on free ports; stops exactly the servers it started
# (pomai-knn-flood does).
#
#   perf/knn_flood.sh [--quick]    (--quick: 200,000 vectors, 1 pair of 3 s)
#   BEFORE=path-to-old-pomaid (required)  AFTER=path (default BUILD_DIR's)
#   BUILD_DIR=dir (default <repo>/build-perf: pomaid and tests/pomai-knn-flood)
#   SHARDS=2 VECTORS=1000000 DIM=16 K=1024 EF=0 FLOOD_QPS=200 POLITE_RPS=500
#   SECONDS_EACH=5 PAIRS=3 NICE=0
#   (EF > 0: an HNSW collection, queried at that ef: a graph search is not
#   sliced, so there the GETs wait behind one whole search at most)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

flood=$build/tests/pomai-knn-flood
after=${AFTER:-$build/dataplane/pomaid}
before=${BEFORE:-}
shards=${SHARDS:-2}
vectors=${VECTORS:-1000000}
dim=${DIM:-16}
k=${K:-1024}
ef=${EF:-0}
qps=${FLOOD_QPS:-200}
rps=${POLITE_RPS:-500}
secs=${SECONDS_EACH:-5}
pairs=${PAIRS:-3}
nicev=${NICE:-0}
[ "${1:-}" = --quick ] && { vectors=200000; pairs=1; secs=3; }
[ -x "$flood" ] && [ -x "$after" ] || { echo "$0: build $build first (pomaid, pomai-knn-flood)" >&2; exit 2; }
[ -n "$before" ] && [ -x "$before" ] || { echo "$0: BEFORE=path-to-old-pomaid is required" >&2; exit 2; }

pm_header "$@"
pm_header_source "$build"
echo "nice:    $nicev"
echo "before:  $before"
echo "after:   $after"
echo "scenario: $shards shards, $vectors $([ "$ef" -gt 0 ] && echo "HNSW (ef $ef)" || echo flat) vectors" \
	"of $dim floats, k=$k; polite GETs at $rps/s" \
	"for $secs s alone, then under a flood of $qps queries/s"
echo

run() {
	echo "== $1 (pair $2): $3"
	nice -n "$nicev" "$flood" --pomaid "$3" --shards "$shards" --vectors "$vectors" --dim "$dim" \
		--k "$k" --ef "$ef" --flood-qps "$qps" --polite-rps "$rps" --seconds "$secs"
	echo "   load after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

for pair in $(seq 1 "$pairs"); do
	if [ $((pair % 2)) -eq 1 ]; then
		run before "$pair" "$before"
		run after "$pair" "$after"
	else
		run after "$pair" "$after"
		run before "$pair" "$before"
	fi
done
