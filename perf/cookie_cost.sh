#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/cookie_cost.sh — issue 19: what the cookie check and the reply budget
# cost a client, on two pomaid builds side by side (BEFORE: one without them,
# e.g. commit 60c3e77; AFTER: this tree's).
#
# Each run is pomaid --shards 1 --wal none on free loopback ports and
# pomai-bench (this tree's libpomai) with DEPTH requests in flight for
# SECONDS_EACH s, in one of two shapes:
#   - hits: --preload, then GETs of the preloaded 32-byte values. After, the
#     preload's first SET is answered RETRY: the client takes the cookie, and
#     every GET datagram then carries it (48 bytes more, a SipHash to check):
#     a validated client, as every libpomai client that writes is.
#   - misses: GETs only, no preload, a fresh client: it never writes and no
#     reply is over 3x, so after it is never sent RETRY and stays unvalidated:
#     every reply passes the budget gate (encoded aside, then queued).
# Runs alternate BEFORE and AFTER, PAIRS times per shape, each with its own
# daemon; the order flips every pair. The medians of ops/s and p50 are
# printed per build and shape.
#
#   perf/cookie_cost.sh     BEFORE=path-to-old-pomaid (required)
#   AFTER=path (default BUILD_DIR's)  BUILD_DIR=dir (default <repo>/build-perf)
#   DEPTH=16 SECONDS_EACH=3 PAIRS=4 KEYS=10000
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

after=${AFTER:-$build/dataplane/pomaid}
before=${BEFORE:-}
depth=${DEPTH:-16}
secs=${SECONDS_EACH:-3}
pairs=${PAIRS:-4}
keys=${KEYS:-10000}
[ -x "$bench" ] && [ -x "$after" ] || { echo "$0: build $build first (pomaid, pomai-bench)" >&2; exit 2; }
[ -n "$before" ] && [ -x "$before" ] || { echo "$0: BEFORE=path-to-old-pomaid is required" >&2; exit 2; }

pm_header "$@"
pm_header_source "$build"
echo "before:  $before"
echo "after:   $after"
echo "shapes:  1 shard, $keys keys of 32 bytes, depth $depth, $secs s each, $pairs pairs"
pm_work_dir cookie-cost

# one run: build shape -> "ops p50_us"
run() {
	local bin=$1 shape=$2 port log=$work/pomaid.log flags=()
	port=$(pm_free_ports 1 20000)
	pomaid=$bin pm_start_pomaid "$log" --shards 1 --wal none --base-port "$port" \
		--tcp-port $((port - 1)) --data-dir "$work/data" --arena-bytes 256M --seeds 262144
	[ "$shape" = hits ] && flags=(--preload) || flags=(--get-only)
	"$bench" --port "$port" --keys "$keys" --value-size 32 --depth "$depth" \
		--duration "$secs" --warmup 0.5 --ratio 1:0 "${flags[@]}" >"$work/bench.out" 2>&1 || true
	pm_stop_pomaid
	rm -rf "$work/data"
	# the last phase's (the preload has its own RESULT line before it)
	awk '/^RESULT/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] } }
		END { print r["ops_s"], r["p50_us"] }' "$work/bench.out"
}

declare -A ops p50
for shape in hits misses; do
	for ((i = 0; i < pairs; i++)); do
		order=(before after)
		((i % 2)) && order=(after before)
		for which in "${order[@]}"; do
			bin=$before
			[ "$which" = after ] && bin=$after
			read -r o p < <(run "$bin" "$shape")
			echo "  $shape $which: $o ops/s, p50 $p us"
			ops[$shape.$which]+="$o "
			p50[$shape.$which]+="$p "
		done
	done
done
echo
for shape in hits misses; do
	for which in before after; do
		# shellcheck disable=SC2086 # the words are the samples
		echo "RESULT shape=$shape build=$which ops_s=$(pm_median ${ops[$shape.$which]}) p50_us=$(pm_median ${p50[$shape.$which]})"
	done
done
