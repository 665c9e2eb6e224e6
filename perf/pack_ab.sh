#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/pack_ab.sh — issue 20's packing against the data path before it, on one
# machine in one run: two pomaids of the same build on SERVER_CPU, one with
# reply_pack_bytes = 0 (one reply frame per datagram, as before issue 20) and
# one with the default (replies of a turn packed, 64 KiB on loopback); the
# first is driven by pomai-bench --pack-bytes 1400 (libpomai's batching
# before issue 20), the second by pomai-bench's defaults (64 KiB on
# loopback). Rounds alternate the two sides cell by cell, so a loaded
# machine's drift hits both alike; the table gives medians and new/old.
#
#   perf/pack_ab.sh
#   BUILD_DIR=dir  ROUNDS=5  DURATION=3  KEYS=100000  SERVER_CPU=1 CLIENT_CPU=0
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

rounds=${ROUNDS:-5}
duration=${DURATION:-3}
keys=${KEYS:-100000}
[ -x "$pomaid" ] && [ -x "$bench" ] ||
	{ echo "$0: build first: ninja -C $build dataplane/pomaid perf/pomai-bench" >&2; exit 2; }
pm_work_dir pack_ab

start() { # name pack -> port_<name>, pid_<name>, drain_<name>
	local port
	port=$(pm_free_ports 2 $((21000 + RANDOM % 20000)))
	pm_start_pomaid "$work/$1.log" --bind 127.0.0.1 --base-port "$port" --tcp-port $((port - 1)) \
		--shards 1 --cores "$server_cpu" --arena-bytes 256M --data-dir "$work/$1" \
		--wal none --reply-pack-bytes "$2" ||
		{ echo "$0: pomaid did not start:" >&2; cat "$work/$1.log" >&2; exit 2; }
	printf -v "port_$1" %s "$port"
	printf -v "pid_$1" %s "$pomaid_pid"
	printf -v "drain_$1" %s "$pm_pomaid_drain"
	taskset -c "$client_cpu" "$bench" --port "$port" --keys "$keys" --preload-only --depth 64 \
		--cpus "$client_cpu" >/dev/null
}

pm_header "$@"
pm_header_source "$build"
echo "== one shard on CPU $server_cpu each, pomai-bench on CPU $client_cpu, $keys keys x 32 B," \
	"UDP, ${duration} s per cell, $rounds rounds"
start old 0
start new 1472 # loopback peers get 64 KiB unless this is 0
cells=("GET 64 --batch" "SET 64 --batch" "GET 50" "SET 50" "GET 1" "SET 1")
declare -A res
for ((r = 1; r <= rounds; r++)); do
	for cell in "${cells[@]}"; do
		read -r op depth batch <<<"$cell"
		for side in old new; do
			port_var=port_$side
			extra=()
			[ "$side" = old ] && extra+=(--pack-bytes 1400)
			[ -n "${batch:-}" ] && extra+=("$batch")
			line=$(taskset -c "$client_cpu" "$bench" --port "${!port_var}" --shards 1 \
				--keys "$keys" --expect-hits "--${op,,}-only" --depth "$depth" \
				--duration "$duration" --warmup 0 --cpus "$client_cpu" "${extra[@]}" |
				grep '^RESULT')
			grep -q ' wrong=0 miss=0 timeouts=0 errors=0' <<<"$line" ||
				echo "WARNING: $side $cell: $line"
			res[$side,$cell,$r]=$(sed 's/.* ops_s=\([0-9]*\).*/\1/' <<<"$line")
			res[$side,$cell,$r,p99]=$(sed 's/.* p99_us=\([0-9.]*\).*/\1/' <<<"$line")
		done
		echo "round $r $cell: old ${res[old,$cell,$r]}/s, new ${res[new,$cell,$r]}/s"
	done
done
pm_stop_pomaid "$pid_old" "$drain_old"
pm_stop_pomaid "$pid_new" "$drain_new"

med() { # cell side [p99]
	local r vals=()
	for ((r = 1; r <= rounds; r++)); do vals+=("${res[$2,$1,$r${3:+,$3}]}"); done
	pm_median "${vals[@]}"
}
echo
echo "| cell | before: ops/s | p99 us | packed: ops/s | p99 us | packed / before |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for cell in "${cells[@]}"; do
	o=$(med "$cell" old) n=$(med "$cell" new)
	echo "| $cell | $o | $(med "$cell" old p99) | $n | $(med "$cell" new p99) |" \
		"$(awk -v a="$n" -v b="$o" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }') |"
done
