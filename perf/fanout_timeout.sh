#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# fanout_timeout.sh — the measurement behind knn_timeout_ms's default: fan-out
# latency (perf/fanout_latency.c) at 2, 4 and 32 shards on this machine, idle
# and with HOGS CPU-bound processes beside pomaid (a busy machine). pomaid runs
# with knn_timeout_ms = 60000, so no fan-out is cut short and the whole
# distribution is seen; its shards are placed on the CPUs listed again and
# again (more shards than cores, as a CI machine runs them). Every process it
# starts it stops; the hogs end by themselves after HOG_SECONDS in any case.
#
# usage: perf/fanout_timeout.sh BUILD_DIR [ROUNDS] [HOGS]
#   PORT=27700 (the base port; 0: free ports picked)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

build=${1:?usage: perf/fanout_timeout.sh BUILD_DIR [ROUNDS] [HOGS]}
rounds=${2:-1000}
hogs=${3:-2}
hog_seconds=600
port=${PORT:-27700}
pomaid=$build/dataplane/pomaid
pm_work_dir pomai-fanout
dir=$pm_work

cpus=$(nproc)
cores_list() { # n entries: 0,1,...,cpus-1,0,1,...
	local i=0 out=""
	while [ "$i" -lt "$1" ]; do
		out="$out${out:+,}$((i % cpus))"; i=$((i + 1))
	done
	echo "$out"
}

run() { # shards, label
	local p=$port
	[ "$p" != 0 ] || p=$(pm_free_ports "$1" 27700)
	rm -rf "$dir/data" "$dir/pomaid.log"; mkdir -p "$dir/data"
	pm_start_pomaid "$dir/pomaid.log" --shards "$1" --cores "$(cores_list "$1")" --base-port "$p" \
		--tcp-port 0 --arena-bytes 16M --seeds 65536 --hugepages no --wal none \
		--data-dir "$dir/data" --knn-timeout-ms 60000 || { cat "$dir/pomaid.log"; exit 2; }
	echo "== shards $1, $2"
	"$build/perf/fanout_latency" --port "$p" --shards "$1" --rounds "$rounds" \
		|| { echo "fanout_latency failed; pomaid said:"; cat "$dir/pomaid.log"; }
	pm_stop_pomaid
}

pm_header "$@"
for s in 2 4 32; do run "$s" "no hog"; done
i=0
while [ "$i" -lt "$hogs" ]; do
	timeout "$hog_seconds" sh -c 'while :; do :; done' &
	pm_track $!; i=$((i + 1))
done
for s in 2 4 32; do run "$s" "$hogs CPU hogs"; done
