#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/ab_bench.sh — Pomai alone, two builds, one pipelined cell, many short
# rounds interleaved (A B B A …): for a ratio finer than redis_vs_pomai.sh's
# rows, whose Redis half doubles each round's length and noise. Each round
# starts the side's pomaid (one shard on SERVER_CPU), preloads KEYS keys of
# 32-byte values, then runs GET and SET over UDP and TCP at DEPTH with
# pomai-bench --batch on CLIENT_CPU (every GET checked), as redis_vs_pomai.sh
# does; prints each round, then the median ops/s per side and B/A per cell.
#
#   perf/ab_bench.sh BUILD_A BUILD_B
#   ROUNDS=6 DEPTH=64 KEYS=1000000 N=1000000 SERVER_CPU=1 CLIENT_CPU=0
set -euo pipefail
[ $# = 2 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
a=$1 b=$2
. "$(dirname "$0")/lib.sh"
rounds=${ROUNDS:-6} depth=${DEPTH:-64} keys=${KEYS:-1000000} n=${N:-1000000}
pm_header "$@"
pm_header_source "$a"
pm_header_source "$b"
echo "rounds:  $rounds per side; depth $depth, $keys keys, $n requests per cell"
pm_work_dir ab-bench

declare -A got
cell() { # side build transport op -> appends ops/s to got[side,transport,op]
	local side=$1 dir=$2 tr=$3 op=$4 line extra=(--batch)
	[ "$tr" = tcp ] && extra+=(--tcp)
	line=$(taskset -c "$client_cpu" "$dir/perf/pomai-bench" --port "$port" --shards 1 \
		--keys "$keys" --expect-hits "--${op,,}-only" --depth "$depth" --requests "$n" \
		--warmup 0 --cpus "$client_cpu" "${extra[@]}" | grep '^RESULT')
	grep -q ' wrong=0 miss=0 timeouts=0 errors=0' <<<"$line" || echo "WARNING: $side $tr $op: $line"
	got[$side,$tr,$op]+="$(sed 's/.* ops_s=\([0-9]*\).*/\1/' <<<"$line") "
}

for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) = 1 ]; then order="A B"; else order="B A"; fi
	for side in $order; do
		dir=$a
		[ "$side" = B ] && dir=$b
		pomaid=$dir/dataplane/pomaid
		port=$(pm_free_ports 2)
		rm -rf "$work/pomai"
		pm_start_pomaid "$work/pomaid.$side.log" --bind 127.0.0.1 \
			--base-port "$port" --tcp-port $((port - 1)) --shards 1 --cores "$server_cpu" \
			--arena-bytes 1G --data-dir "$work/pomai" >/dev/null ||
			{ echo "$0: pomaid ($side) did not start" >&2; cat "$work/pomaid.$side.log" >&2; exit 2; }
		taskset -c "$client_cpu" "$dir/perf/pomai-bench" --port "$port" --keys "$keys" \
			--preload-only --depth 64 --cpus "$client_cpu" >/dev/null
		for tr in udp tcp; do
			for op in GET SET; do
				cell "$side" "$dir" "$tr" "$op"
			done
		done
		pm_stop_pomaid
		echo "round $r $side: GET/s so far, udp: ${got[$side,udp,GET]}, tcp: ${got[$side,tcp,GET]}"
	done
done

echo
echo "| cell | A ops/s (median) | B ops/s (median) | B/A | A rounds | B rounds |"
echo "| --- | ---: | ---: | ---: | --- | --- |"
for tr in udp tcp; do
	for op in GET SET; do
		python3 - "$tr $op depth $depth" "${got[A,$tr,$op]}" "${got[B,$tr,$op]}" <<'EOF'
import statistics, sys
name, a, b = sys.argv[1], [int(x) for x in sys.argv[2].split()], [int(x) for x in sys.argv[3].split()]
ma, mb = statistics.median(a), statistics.median(b)
print(f"| {name} | {ma:,.0f} | {mb:,.0f} | {mb / ma:.3f} | {' '.join(map(str, a))} | {' '.join(map(str, b))} |")
EOF
	done
done
