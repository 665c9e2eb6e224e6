#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/snapshot_cost.sh — what a running snapshot costs a steady KV load:
# pomai-bench throughput and latency against pomaid with no snapshot running,
# and with snapshots running back to back for the whole run, side by side in
# one run.
#
# pomaid: --wal batch, SHARDS shards (default 1) pinned to SERVER_CPU (taskset
# and --cores), no scheduled snapshot (--snapshot-interval-s 0
# --snapshot-wal-bytes 0), arena and seeds sized for KEYS. Preloaded with KEYS
# keys of VALUE_SIZE bytes (pomai-bench --preload-only), then PAIRS pairs of
# runs, alternated (off, on, off, on, ...) to cancel drift: pomai-bench on
# CLIENT_CPU, one thread, --depth DEPTH, GET:SET RATIO over the preloaded keys
# (every GET must hit and return its key's bytes: --expect-hits), DURATION s
# after 1 s of warm-up.
#
# "on" runs: a background loop (on CLIENT_CPU) sends `pomai-cli snapshot`
# before the warm-up and again each time every shard has published the
# previous one, to the end of the run; the last one is let finish before the
# next run. It learns of each publish from pomaid's output ("snapshot at LSN
# ... published: R records, B bytes in T ms", kept per snapshot), followed
# with `tail -F`, not by polling INFO: a process started 20 times a second on
# CLIENT_CPU (pomai-cli info) costs the one-thread load generator there 25-30 %
# of its throughput and raises its p99 4x by itself, which would drown what is
# measured. pomaid runs under `stdbuf -oL`: it flushes its output before a
# line, not after, so to a file the "published" line would only appear when
# the next snapshot starts. "off" runs: the same loop follows the output and
# requests nothing.
#
# Each run also reports how busy each CPU was (/proc/stat), the CPU time of
# pomaid's own threads and of its io_uring kernel workers (iou-wrk-*, which do
# the snapshot's and the log's writes; pomaid keeps them off the worker's CPU,
# so on this 2-core machine they share CLIENT_CPU with the load generator),
# and of everything else but pomai-bench: other processes on the machine show
# up there, and such a run is not a clean one.
# At the end pomaid is restarted from its last snapshot and every key is read
# back (GET --expect-hits: each must hit with its bytes). Talks to 127.0.0.1
# only, on a free port; stops exactly the server it started.
#
#   perf/snapshot_cost.sh [--quick]     (--quick: 500,000 keys, 2 pairs of 3 s)
#   BUILD_DIR=dir (default <repo>/build-perf) WORK_DIR=dir (default /var/tmp)
#   SERVER_CPU=1 CLIENT_CPU=0 SHARDS=1 KEYS=4000000 VALUE_SIZE=256 PAIRS=4
#   DURATION=5 DEPTH=16 RATIO=1:1 SOURCE_NOTE=text (printed when the source is not a git checkout)
#   SNAPSHOT_PACE=bytes/s   pomaid's snapshot_write_bytes_per_s (default: its own, 64M; 0: unpaced)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

shards=${SHARDS:-1}
keys=${KEYS:-4000000}
vsize=${VALUE_SIZE:-256}
pairs=${PAIRS:-4}
duration=${DURATION:-5}
depth=${DEPTH:-16}
ratio=${RATIO:-1:1}
[ "${1:-}" = --quick ] && { keys=500000; pairs=2; duration=3; }
cli=$build/client/pomai-cli
for tool in taskset ss stdbuf tail mkfifo /usr/bin/time; do
	command -v $tool >/dev/null || { echo "$0: $tool not found" >&2; exit 2; }
done
pm_need_built "$build" "$pomaid" "$cli" "$bench"

# Per shard: a 64 B seed per key (+25 % spare), the value in a blob (its size
# class: VALUE_SIZE rounded up to 64 B), + 128 MiB for the rest.
per_shard=$(((keys + shards - 1) / shards))
seeds=$((per_shard * 5 / 4))
arena=$(((seeds * 64 + per_shard * ((vsize + 63) / 64 * 64) * 11 / 10 + (128 << 20)) >> 20))M

WORK_DIR=${WORK_DIR:-/var/tmp} pm_work_dir snapshot_cost
ppid=
loop=
tailpid=
pm_cleanup_hook() { # the snapshot loop and its tail; pomaid is lib.sh's
	rm -f "$work/loop.run"
	for p in $tailpid $loop; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}

pm_header "$@"
pm_header_disk "$work"
pm_header_source "$build"

port=$(pm_free_ports 1 25001)
dir=$work/data
pcli() { "$cli" --port "$port" --shards "$shards" "$@"; }
# (awk reads INFO to its end: grep -m1 would close the pipe early, SIGPIPE)
info() { pcli info | tr -d '\r' | awk -F: -v k="$1" '$1 == k && !f { print $2; f = 1 }'; }

# pomaid pinned, its output line-buffered (see above); the same flags for the restart
PM_WRAP="taskset -c $server_cpu stdbuf -oL"
pomaid_args=(--wal batch --shards "$shards" --cores "$server_cpu" --base-port "$port"
	--tcp-port $((port - 1)) --arena-bytes "$arena" --seeds "$seeds" --data-dir "$dir"
	--snapshot-interval-s 0 --snapshot-wal-bytes 0)
# the snapshot's pace (snapshot_write_bytes_per_s): pomaid's default unless set
[ -n "${SNAPSHOT_PACE:-}" ] && pomaid_args+=(--snapshot-write-bytes-per-s "$SNAPSHOT_PACE")
echo "pace:    snapshot_write_bytes_per_s ${SNAPSHOT_PACE:-the default of pomaid (64M)}"
: >"$work/pomaid.log"
pm_start_pomaid "$work/pomaid.log" "${pomaid_args[@]}" || { cat "$work/pomaid.log"; exit 1; }
ppid=$pomaid_pid
grep '^pomaid: ready' "$work/pomaid.log"
echo "server:  pomaid --wal batch --shards $shards on CPU $server_cpu, arena $arena, seeds $seeds per shard;" \
	"load generator on CPU $client_cpu"
echo "load:    $keys keys of 16 B, $vsize-byte values; runs of $duration s (+1 s warm-up), depth $depth," \
	"GET:SET $ratio, $pairs pairs alternated"
echo

"$bench" --port "$port" --shards "$shards" --cpus "$client_cpu" --preload-only --keys "$keys" \
	--value-size "$vsize" --depth 64 | grep -E '^(preload|RESULT)'
echo "preloaded: keys $(info keys), blob_bytes_used $(info blob_bytes_used), wal_bytes $(info wal_bytes)"

# The snapshot loop: $1 = on|off; reads pomaid's output lines from stdin.
# While $work/loop.run exists and mode is on, asks for a snapshot at the start
# and whenever every shard has published. Writes "snap <shard> <records>
# <bytes> <ms>" for each publish.
snap_loop() {
	local mode=$1 round=0 line
	if [ "$mode" = on ]; then pcli snapshot >/dev/null 2>&1 || true; fi
	while read -r line; do
		case $line in
		*" published: "*)
			sed -n 's/^pomaid: shard \([0-9]*\): .* published: \([0-9]*\) records, \([0-9]*\) bytes in \([0-9]*\) ms.*/snap \1 \2 \3 \4/p' <<<"$line"
			round=$((round + 1))
			if [ "$round" -ge "$shards" ]; then
				round=0
				if [ "$mode" = on ] && [ -e "$work/loop.run" ]; then
					pcli snapshot >/dev/null 2>&1 || true
				fi
			fi
			;;
		*FAILED*) echo "failed $line" ;;
		esac
	done
}

# CPU time so far (ticks of 1/100 s): "cpu<N> <busy> <all>" per CPU from
# /proc/stat; "pomaid <t>", the whole process (exited threads included);
# "threads <t>", its own threads now (main, workers), not io_uring's iou-wrk-*
# kernel workers, which do the writes and come and go: so io-wq = pomaid -
# threads.
ticks() {
	awk '/^cpu[0-9]/ { b = $2 + $3 + $4 + $7 + $8; print $1, b, b + $5 + $6 }' /proc/stat
	local f t=0 comm rest
	read -r rest <"/proc/$ppid/stat"
	set -- ${rest##*) }
	echo "pomaid $((${12} + ${13}))"
	for f in /proc/"$ppid"/task/*/stat; do
		read -r rest <"$f" || continue
		comm=${rest#*(}; comm=${comm%%)*}
		set -- ${rest##*) }
		[[ $comm == iou-wrk* ]] || t=$((t + ${12} + ${13}))
	done
	echo "threads $t"
}
# From two ticks outputs, the seconds between them and pomai-bench's CPU
# seconds: each CPU's busy %, and in % of one CPU pomaid's threads, its io-wq
# workers, and everything else (other processes, kernel threads, this script).
busy() {
	awk -v secs="$3" -v bench="$4" 'NR == FNR { a[$1] = $2; t[$1] = $3; next }
		/^cpu/ { printf "%s=%.0f%% ", $1, 100 * ($2 - a[$1]) / ($3 - t[$1]); all += $2 - a[$1] }
		/^pomaid/ { p = $2 - a[$1] }
		/^threads/ { w = $2 - a[$1] }
		END { printf "worker=%.0f%% iowq=%.0f%% other=%.0f%%", w / secs, (p - w) / secs,
			(all - p) / secs - 100 * bench / secs }' "$1" "$2"
}

run() { # run MODE I
	local mode=$1 i=$2 line out c0 c1 n_snap t0 t1 cpu
	c0=$(info snapshots_completed)
	touch "$work/loop.run"
	rm -f "$work/fifo"
	mkfifo "$work/fifo"
	tail -n0 -F "$work/pomaid.log" >"$work/fifo" 2>/dev/null &
	tailpid=$!
	taskset -c "$client_cpu" bash -c "$(declare -f snap_loop pcli); work=$work shards=$shards \
		cli=$cli port=$port; snap_loop $mode" <"$work/fifo" >"$work/loop.$mode.$i" &
	loop=$!
	ticks >"$work/ticks0"
	t0=$EPOCHREALTIME
	out=$(/usr/bin/time -f 'cpu_s %U %S' "$bench" --port "$port" --shards "$shards" \
		--cpus "$client_cpu" --keys "$keys" --value-size "$vsize" --depth "$depth" \
		--ratio "$ratio" --expect-hits --duration "$duration" --warmup 1 2>&1)
	t1=$EPOCHREALTIME
	ticks >"$work/ticks1"
	line=$(grep '^RESULT' <<<"$out")
	cpu=$(busy "$work/ticks0" "$work/ticks1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
		"$(awk '$1 == "cpu_s" { print $2 + $3 }' <<<"$out")")
	rm -f "$work/loop.run"
	c1=$(info snapshots_completed)
	# let a snapshot still running finish (and its line be read) before the next run
	while [ "$(info snapshot_in_progress)" != 0 ]; do sleep 0.05; done
	sleep 0.2
	kill "$tailpid"
	wait "$tailpid" 2>/dev/null || true
	tailpid=
	wait "$loop" || true
	loop=
	n_snap=$((c1 - c0))
	local ms bytes
	ms=$(awk '$1 == "snap" { printf "%s%s", s, $5; s = "," }' "$work/loop.$mode.$i")
	bytes=$(awk '$1 == "snap" { b[$2] = $4 } END { for (s in b) t += b[s]; print t + 0 }' "$work/loop.$mode.$i")
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	echo "RESULT snapshots=$mode run=$i ops_s=$(get ops_s) p50_us=$(get p50_us) p99_us=$(get p99_us)" \
		"p999_us=$(get p999_us) max_us=$(get max_us) wrong=$(get wrong) miss=$(get miss)" \
		"timeouts=$(get timeouts) completed=$n_snap snap_ms=${ms:--} snap_bytes=$bytes $cpu" |
		tee -a "$work/results"
}

for i in $(seq "$pairs"); do
	run off "$i"
	run on "$i"
done
echo
echo "'published' lines in pomaid's output: $(grep -c 'published' "$work/pomaid.log" || true)"
echo "INFO at the end: snapshots_completed $(info snapshots_completed), snapshots_failed $(info snapshots_failed)," \
	"wal_segments_deleted $(info wal_segments_deleted)"

# The last snapshot must hold the data: restart from it (plus the log after
# it) and check every key is back with its bytes.
pm_stop_pomaid
: >"$work/restart.log"
pm_start_pomaid "$work/restart.log" "${pomaid_args[@]}" ||
	{ echo "restart FAILED:"; cat "$work/restart.log"; exit 1; }
ppid=$pomaid_pid
echo "restart: $(awk -v s="$ready_s" 'BEGIN { printf "%.2f", s }') s to ready;" \
	"$(grep -hE 'loaded:|recovered' "$work/restart.log" | sed 's/^pomaid: //; s/snapshot [^ ]*\/\([0-9]*\.snap\)/snapshot \1/' | paste -sd';')"
line=$("$bench" --port "$port" --shards "$shards" --cpus "$client_cpu" --keys "$keys" \
	--value-size "$vsize" --depth 64 --get-only --expect-hits --requests "$keys" --warmup 0 | grep '^RESULT')
echo "after the restart: keys $(info keys); $keys GETs: wrong $(sed -n 's/.* wrong=\([0-9]*\).*/\1/p' <<<"$line")," \
	"misses $(sed -n 's/.* miss=\([0-9]*\).*/\1/p' <<<"$line")"
echo

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { grep "snapshots=$1 " "$work/results" | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }
echo "| run | snapshots | ops/s | p50 µs | p99 µs | p99.9 µs | snapshots completed | their ms | bytes (all shards) | CPU busy | pomaid threads, its io-wq, all else (% of a CPU) |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |"
while read -r line; do
	g() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	echo "| $(g run) | $(sed -n 's/.*snapshots=\([a-z]*\).*/\1/p' <<<"$line") | $(g ops_s) | $(g p50_us) |" \
		"$(g p99_us) | $(g p999_us) | $(g completed) | $(g snap_ms) | $(g snap_bytes) |" \
		"$(grep -oE 'cpu[0-9]+=[0-9]+%' <<<"$line" | paste -sd' ') | $(g worker), $(g iowq), $(g other) |"
done <"$work/results"
for m in off on; do
	echo "| median | $m | $(col $m ops_s | median) | $(col $m p50_us | median) | $(col $m p99_us | median) |" \
		"$(col $m p999_us | median) | $(col $m completed | awk '{ s += $1 } END { print s " in all" }') | | | | |"
done
awk -v a="$(col on ops_s | median)" -v b="$(col off ops_s | median)" -v c="$(col on p99_us | median)" \
	-v d="$(col off p99_us | median)" \
	'BEGIN { printf "\nwith snapshots / without: ops/s %.3fx, p99 %.2fx\n", a / b, c / d }'
