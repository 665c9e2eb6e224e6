#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/restart_parallel.sh — issue 20: does a restart from snapshots take the
# slowest shard's load, not the sum of the shards'? Each shard loads its own
# snapshot on a thread of its own (dataplane/pomaid.c: open_shards).
#
# For each shard count in SHARDS (default "1 2 4"), in a fresh data dir:
#   1. start pomaid, write KEYS_PER_SHARD values of VALUE_BYTES per shard
#      (pomai-bench --set-only over the whole key space, every key once),
#      SNAPSHOT, wait until every shard has published, stop;
#   2. restart RESTARTS times; each restart is timed from exec to "pomaid:
#      ready", and each shard's own load ("snapshot ... loaded ... in N ms")
#      is read from pomaid's output. Reported: the restart's wall time, the
#      slowest shard's load, the sum of the shards' loads, the slowest
#      shard's log replay after its snapshot (wal_io.c: the snapshot's header
#      says where its start LSN's record is, so the log before it is not
#      read again), and
#      restart / slowest (target <= 1.2) and sum / restart (the speed-up over
#      loading the shards one after another). With 1 in SHARDS (first), also
#      restart / the 1-shard restart (medians): a restart of N shards of the
#      same size against a restart of one — the same process start-up on
#      both sides, so this is the parallelism alone, where restart / slowest
#      also counts the start-up (exec, libraries, tables) against the N.
# Before every restart the data dir's files are dropped from the page cache
# (dd iflag=nocache, our files only), as after a reboot.
#
# With more shards than cores (4 on a 2-core machine) the shards share the
# cores round robin (--cores 0,1,0,1): loads that are bound by the CPU then
# take about the sum / cores, which the table's last column shows.
#
#   perf/restart_parallel.sh
#   BUILD_DIR=dir (default <repo>/build-perf) WORK_DIR=dir (default /tmp)
#   SHARDS="1 2 4" RESTARTS=3 KEYS_PER_SHARD=40000 VALUE_BYTES=4000
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

shard_counts=${SHARDS:-1 2 4}
restarts=${RESTARTS:-3}
keys_per_shard=${KEYS_PER_SHARD:-40000}
value_bytes=${VALUE_BYTES:-4000}
for tool in dd; do
	command -v $tool >/dev/null || { echo "$0: $tool not found" >&2; exit 2; }
done
pm_need_built "$build" "$pomaid" "$pomai_cli" "$bench"
pm_header
pm_header_source "$build"
pm_work_dir restart_parallel

drop_cache() { # dir: every file read through once with nocache
	find "$1" -type f -print0 | while IFS= read -r -d '' f; do
		dd if="$f" iflag=nocache count=0 status=none 2>/dev/null || true
		dd of="$f" oflag=nocache conv=notrunc,fdatasync count=0 status=none 2>/dev/null || true
	done
}

echo "| shards | data per shard MB | restart s (each) | slowest shard's load ms (each) | sum of the shards' loads ms (each) | log replay ms, slowest (each) | restart / slowest (median) | sum / restart (median) | restart / 1-shard restart (medians) |"
echo "| ---: | ---: | --- | --- | --- | --- | ---: | ---: | ---: |"
one_restart=""
for n in $shard_counts; do
	dir=$pm_work/data-$n
	log=$pm_work/pomaid-$n.log
	port=$(pm_free_ports $((n + 1)))
	arena=$(( (keys_per_shard * (value_bytes + 256) / 1048576 + 256) ))M
	args=(--shards "$n" --base-port "$port" --tcp-port $((port - 1)) --data-dir "$dir"
	      --arena-bytes "$arena" --snapshot-interval-s 0 --snapshot-wal-bytes 0)
	if [ "$n" -gt "$(nproc)" ]; then # more shards than cores: they share them, round robin
		args+=(--cores "$(for i in $(seq 0 $((n - 1))); do echo $((i % $(nproc))); done | paste -sd,)")
		echo "  $n shards on $(nproc) cores: two loads share a core; the best a restart can do" \
			"is about the sum of the loads / $(nproc)" >&2
	fi
	pm_start_pomaid "$log" "${args[@]}" ||
		{ echo "$0: pomaid did not start:" >&2; tail "$log" >&2; exit 2; }
	keys=$((keys_per_shard * n))
	"$bench" --port "$port" --shards "$n" --set-only --keys "$keys" --value-size "$value_bytes" \
		--depth 32 --requests "$keys" --warmup 0 >"$pm_work/bench-$n.out" 2>&1 ||
		{ echo "$0: pomai-bench failed:" >&2; tail -5 "$pm_work/bench-$n.out" >&2; exit 2; }
	"$pomai_cli" --port "$port" --shards "$n" snapshot >/dev/null
	for _ in $(seq 600); do # INFO's Total sums the shards' snapshots_completed
		done_n=$("$pomai_cli" --port "$port" --shards "$n" info 2>/dev/null |
			awk -F: '/^snapshots_completed:/ && !seen { n = $2 + 0; seen = 1 } END { print n + 0 }')
		# (awk reads to the end: an early exit would stop pomai-cli with SIGPIPE, and
		# pipefail the script)
		[ "${done_n:-0}" -ge "$n" ] && break
		sleep 0.2
	done
	pm_stop_pomaid
	mb=$(du -sm "$dir/snap" | awk -v n="$n" '{printf "%.0f", $1 / n}')
	walls=() slows=() sums=() replays=() ratios=() speedups=()
	for r in $(seq "$restarts"); do
		drop_cache "$dir"
		: >"$log"
		pm_start_pomaid "$log" "${args[@]}" ||
			{ echo "$0: pomaid did not restart:" >&2; tail "$log" >&2; exit 2; }
		pm_stop_pomaid
		loads=$(grep -o 'loaded: .* in [0-9]* ms' "$log" | grep -o 'in [0-9]* ms' | awk '{print $2}')
		slow=$(echo "$loads" | sort -n | tail -1)
		sum=$(echo "$loads" | paste -sd+ | bc)
		# each shard's log replay after its snapshot ("recovered N records ... in T ms")
		replay=$(grep -o 'recovered [0-9]* records from .* in [0-9]* ms' "$log" |
			awk '{ print $(NF - 1) }' | sort -n | tail -1)
		walls+=("$ready_s") slows+=("$slow") sums+=("$sum") replays+=("${replay:-0}")
		ratios+=("$(echo "scale=3; $ready_s * 1000 / $slow" | bc)")
		speedups+=("$(echo "scale=3; $sum / ($ready_s * 1000)" | bc)")
		echo "  run $r: $n shards, restart ${ready_s} s, shard loads (ms): $(echo $loads)" >&2
	done
	wall=$(pm_median "${walls[@]}")
	[ "$n" = 1 ] && one_restart=$wall
	vs_one=-
	[ -n "$one_restart" ] && vs_one=$(echo "scale=3; $wall / $one_restart" | bc)
	echo "| $n | $mb | ${walls[*]} | ${slows[*]} | ${sums[*]} | ${replays[*]} | $(pm_median "${ratios[@]}") | $(pm_median "${speedups[@]}") | $vs_one |"
done
