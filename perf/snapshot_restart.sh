#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/snapshot_restart.sh — how long pomaid takes to come back with the
# Fashion-MNIST HNSW collection (60,000 x 784, L2, M 16, ef_construction 200:
# pomai-bench --knn's parameters) from its snapshot, against rebuilding the
# graph by replaying the write-ahead log; and whether it answers the same.
#
# One run, per shard count in SHARDS (default "1 2"), in a fresh data dir:
#   1. start pomaid (--wal batch, no scheduled snapshot: --snapshot-interval-s 0
#      --snapshot-wal-bytes 0), create the collection, load the train set with
#      `pomai-cli load` (timed: the graph built through the wire);
#   2. KNN check: pomai-bench --knn (QUERIES test images, each asked once per
#      ef in EFS; recall@10 against the server's exact search) and `pomai-cli
#      knn` on CHECK_ROWS test images, graph (ef 10) and --exact, kept as text;
#   3. stop (SIGTERM), restart RESTARTS times, each timed from exec to
#      "pomaid: ready" (the log replayed = the graph rebuilt); check again;
#   4. `pomai-cli snapshot`, poll INFO until snapshots_completed reaches the
#      shard count; stop, restart RESTARTS times (the snapshot loaded, the
#      graph restored); check again.
# Before every restart the data dir's files are synced and dropped from the
# page cache (`dd iflag=nocache`, only our files), so each start reads them
# from the disk as after a reboot (the VM's host may still cache them). The
# script waits for "ready" blocked on a FIFO of pomaid's output (polling the
# log would itself take most of a CPU here), and prints with each restart the
# CPU everything but pomaid used meanwhile: other jobs on the machine show
# there, and such a run is not a clean one.
#
# Pinning: 1 shard -> the whole of pomaid (workers and the main thread, which
# does recovery) on SERVER_CPU; clients on CLIENT_CPU. 2 shards -> pomaid on
# both CPUs of this 2-core machine, clients on CLIENT_CPU as well (shared).
# Talks to 127.0.0.1 only, on free ports; stops exactly the servers it started.
#
#   perf/snapshot_restart.sh [--quick]      (--quick: 1 shard, 1 restart, 200 queries)
#   BUILD_DIR=dir (default <repo>/build-perf) WORK_DIR=dir (default /var/tmp)
#   SERVER_CPU=1 CLIENT_CPU=0 SHARDS="1 2" RESTARTS=3 QUERIES=1000 EFS=10,20,80
#   DATA=/usr/share/datasets/fashion-mnist CHECK_ROWS=5
#   SOURCE_NOTE=text (printed when the build's source is not a git checkout)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

shard_counts=${SHARDS:-1 2}
restarts=${RESTARTS:-3}
knn_queries=${QUERIES:-1000}
knn_efs=${EFS:-10,20,80}
data=$knn_data
knn_rows=${CHECK_ROWS:-5}
[ "${1:-}" = --quick ] && { shard_counts=1; restarts=1; knn_queries=200; }
efs=$knn_efs
cli=$pomai_cli
train=$data/train-images-idx3-ubyte.gz
test=$data/t10k-images-idx3-ubyte.gz
for tool in taskset ss dd fincore; do
	command -v $tool >/dev/null || { echo "$0: $tool not found" >&2; exit 2; }
done
pm_need_built "$build" "$pomaid" "$cli" "$bench"
[ -r "$train" ] && [ -r "$test" ] || { echo "$0: no Fashion-MNIST in $data (apt-get install dataset-fashion-mnist)" >&2; exit 2; }

seeds=$pm_fmnist_seeds

WORK_DIR=${WORK_DIR:-/var/tmp} pm_work_dir snapshot_restart

pm_header "$@"
pm_header_disk "$work"
pm_header_source "$build"
echo

# ---------------------------------------------------------------- helpers

# CPU ticks (1/100 s) all CPUs have been busy.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

# start LOG: launch pomaid on the current shard count; wait for "ready"
# (pm_start_pomaid: blocked on its output, no polling). Sets ready_s to the
# seconds from exec to ready, and others to the CPU everything but pomaid used
# meanwhile (% of one CPU: other processes on the machine, this script);
# returns 1 if pomaid exited.
start() {
	local log=$1 b0 rest
	ready_s=
	others=
	b0=$(busy_ticks)
	: >"$log"
	PM_WRAP="taskset -c $cpus" pm_start_pomaid "$log" --wal batch --shards "$n" --cores "$cpus" \
		--base-port "$port" --tcp-port $((port - 1)) --arena-bytes "$arena" --seeds "$seeds" \
		--data-dir "$dir" --snapshot-interval-s 0 --snapshot-wal-bytes 0 || return 1
	read -r rest <"/proc/$pomaid_pid/stat"
	# shellcheck disable=SC2086
	set -- ${rest##*) }
	others=$(awk -v b0="$b0" -v b1="$(busy_ticks)" -v p=$((${12} + ${13})) -v s="$ready_s" \
		'BEGIN { printf "%.0f%%", (b1 - b0 - p) / s }')
}

stop() {
	pm_stop_pomaid
}

# Drop the data dir's files from the page cache (written back first).
evict() {
	find "$dir" -type f | while read -r f; do
		sync "$f"
		dd if="$f" iflag=nocache count=0 status=none
	done
	echo "  page cache after evict: $(find "$dir" -type f -exec fincore -nb -o RES {} + |
		awk '{ s += $1 } END { printf "%d", s }') bytes of the data dir resident"
}

pcli() { "$cli" --port "$port" --shards "$n" "$@"; }
# info KEY: the Total value; info_shards KEY: each shard's, space-separated.
# (awk reads INFO to its end: grep -m1 would close the pipe early, SIGPIPE)
info() { pcli info | tr -d '\r' | awk -F: -v k="$1" '$1 == k && !f { print $2; f = 1 }'; }
info_shards() { pcli info | tr -d '\r' | grep "^$1:" | tail -n +2 | cut -d: -f2 | paste -sd' '; }

# check TAG: KNN answers now (pm_knn_check); recall lines into
# $work/recall.TAG, answers into $work/ans.TAG (graph ef 10 and exact,
# CHECK_ROWS queries).
check() {
	pm_knn_check "$port" "$n" fm "$1" || { echo "  check $1: pomai-bench failed"; return; }
	echo "  check $1: recall@10 by ef: $(awk '{ printf "ef %s %s; ", $1, $2 }' "$work/recall.$1")vectors $(info vectors)"
}

same() { pm_knn_same "$@"; } # are the KNN answers of check A and check B identical?

join() { local IFS=,; echo "$*"; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------- per shard count

for n in $shard_counts; do
	port=$(pm_free_ports 1 24001)
	dir=$work/data-$n
	arena=$(pm_fmnist_arena "$n")
	if [ "$n" = 1 ]; then cpus=$server_cpu; else cpus=$(seq -s, 0 $((n - 1))); fi
	echo "== $n shard(s): pomaid on CPU(s) $cpus (taskset and --cores), clients on CPU $client_cpu," \
		"arena $arena, seeds $seeds per shard, port $port"

	start "$work/start-$n.log" || { cat "$work/start-$n.log"; exit 1; }
	pcli collection create fm --dim 784 --metric l2 --index hnsw --m 16 --ef-construction 200 >/dev/null
	lt0=$EPOCHREALTIME
	loadout=$(taskset -c "$client_cpu" "$cli" --port "$port" --shards "$n" load "$train" \
		--collection fm --prefix fm: | tail -1)
	lt1=$EPOCHREALTIME
	build_s=$(echo "$lt1 $lt0" | awk '{ printf "%.2f", $1 - $2 }')
	echo "  build through the wire: $loadout (wall $build_s s)"
	check built

	# -------- restart by replaying the log
	stop
	replay=()
	for i in $(seq "$restarts"); do
		evict
		start "$work/replay-$n-$i.log" || { echo "  replay restart $i FAILED:"; cat "$work/replay-$n-$i.log"; exit 1; }
		replay+=("$ready_s")
		echo "  restart $i by replay: $ready_s s to ready (others: $others of a CPU);" \
			"$(grep -h 'recovered' "$work/replay-$n-$i.log" | sed 's/^pomaid: //' | paste -sd';')"
		[ "$i" = "$restarts" ] || stop
	done
	check replayed

	# -------- snapshot
	st0=$EPOCHREALTIME
	pcli snapshot >/dev/null
	for _ in $(seq 6000); do
		[ "$(info snapshots_completed)" -ge "$n" ] && break
		[ "$(info snapshots_failed)" -gt 0 ] && break
		sleep 0.05
	done
	st1=$EPOCHREALTIME
	snap_wall=$(echo "$st1 $st0" | awk '{ printf "%.2f", $1 - $2 }')
	snap_ms=$(info_shards snapshot_last_ms)
	snap_recs=$(info_shards snapshot_last_lsn)
	snap_slices=$(info_shards snapshot_slices)
	snap_failed=$(info snapshots_failed)
	snap_files=$(find "$dir/snap" -name '*.snap' -printf '%s ' | sed 's/ $//')
	snap_bytes=$(tr ' ' '\n' <<<"$snap_files" | awk '{ s += $1 } END { print s + 0 }')
	wal_left=$(find "$dir/wal" -name '*.wal' | wc -l)
	echo "  snapshot: completed $(info snapshots_completed)/$n, failed $snap_failed, wall $snap_wall s (poll 50 ms);" \
		"snapshot_last_ms per shard: $snap_ms; slices: $snap_slices; at LSN: $snap_recs;" \
		"files: $snap_files bytes; WAL segments left: $wal_left"
	check snapped

	# -------- restart from the snapshot
	stop
	restore=()
	load_ms=()
	failed=0
	for i in $(seq "$restarts"); do
		evict
		log=$work/restore-$n-$i.log
		if ! start "$log"; then
			echo "  restart $i from the snapshot FAILED (pomaid exited):"
			sed 's/^/    /' "$log"
			failed=1
			break
		fi
		restore+=("$ready_s")
		# shards recover one after another (on pomaid's main thread): the sum
		lm=$(sed -n 's/.* loaded: .* in \([0-9]*\) ms, .*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
		load_ms+=("${lm:-0}")
		echo "  restart $i from the snapshot: $ready_s s to ready (others: $others of a CPU);" \
			"$(grep -hE 'loaded:|recovered' "$log" | sed 's/^pomaid: //; s/snapshot [^ ]*\/\([0-9]*\.snap\)/snapshot \1/' | paste -sd';')"
		[ "$i" = "$restarts" ] || stop
	done
	if [ "$failed" = 0 ]; then
		check restored
		stop
	fi

	# -------- summary line for this shard count
	rep_med=$(median <<<"${replay[*]}")
	if [ "$failed" = 0 ]; then
		res_med=$(median <<<"${restore[*]}")
		ratio=$(awk -v a="$rep_med" -v b="$res_med" 'BEGIN { printf "%.1f", a / b }')
		ratio_build=$(awk -v a="$build_s" -v b="$res_med" 'BEGIN { printf "%.1f", a / b }')
		lms=$(median <<<"${load_ms[*]}")
		mbs=$(awk -v b="$snap_bytes" -v ms="$lms" 'BEGIN { printf "%.0f", b / 1e3 / (ms > 0 ? ms : 1) }')
	else
		res_med=FAILED; ratio=-; ratio_build=-; lms=-; mbs=-
	fi
	rec() { awk -v e="$1" '$1 == e { print $2 }' "$work/recall.$2" 2>/dev/null; }
	for ef in ${efs//,/ }; do
		echo "RESULT shards=$n ef=$ef recall_built=$(rec "$ef" built) recall_replayed=$(rec "$ef" replayed)" \
			"recall_snapped=$(rec "$ef" snapped) recall_restored=$(rec "$ef" restored)"
	done
	echo "RESULT shards=$n build_wire_s=$build_s replay_s=$(join "${replay[@]}") replay_median_s=$rep_med" \
		"restore_s=$(join "${restore[@]}") restore_median_s=$res_med ratio=$ratio ratio_build=$ratio_build snapshot_bytes=$snap_bytes" \
		"snapshot_last_ms=${snap_ms// /,} snapshot_load_ms_median=$lms snapshot_load_MB_s=$mbs" \
		"answers_replayed=$(same built replayed) answers_restored=$( [ "$failed" = 0 ] && same built restored || echo -)" |
		tee -a "$work/results"
	echo
done

echo "| shards | build through the wire s | restart by replay s (median) | restart from snapshot s (median) | replay / snapshot | build / snapshot | snapshot MB | snapshot write ms | snapshot load ms (all shards) | answers after replay / snapshot |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
while read -r line; do
	echo "| $(get shards "$line") | $(get build_wire_s "$line") | $(get replay_median_s "$line") |" \
		"$(get restore_median_s "$line") | $(get ratio "$line")x | $(get ratio_build "$line")x |" \
		"$(awk -v b="$(get snapshot_bytes "$line")" 'BEGIN { printf "%.1f", b / 1e6 }') |" \
		"$(get snapshot_last_ms "$line") | $(get snapshot_load_ms_median "$line") |" \
		"$(get answers_replayed "$line") / $(get answers_restored "$line") |"
done <"$work/results"
