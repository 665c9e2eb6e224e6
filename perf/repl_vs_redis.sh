#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/repl_vs_redis.sh — replication under a write load (issue 16): a Pomai
# primary and one replica against a Redis primary and one replica
# (redis-server --replicaof), both pairs on loopback, under the pipelined SET
# load of perf/redis_vs_pomai.sh's heaviest row (redis-benchmark -c 4 -P 16;
# pomai-bench --depth 64 --batch over TCP, Pomai's best form at that depth).
# Reported per side: the SETs/s the load generator got from the primary, the
# records/s the replica applied during the load, the lag while it ran, and how
# long after the last write the replica had everything.
#
# The lag: pomai-repl-bench lag (perf/repl_bench.c says exactly how) asks
# every LAG_INTERVAL_MS the primary, the replica and the primary again for
# their positions — Pomai: the primary's last LSN (INFO replication:
# replica0_acked_lsn + replica0_lag_records) and the replica's
# repl_applied_lsn; Redis: master_repl_offset and the replica's
# slave_repl_offset, bytes of the stream, 75 per SET of this load — and takes
# the primary's position at the replica's answer between its two answers. The
# lag in ms is the age of the oldest write the replica lacks, from the same
# samples. Pomai's own estimate (the primary's replica0_lag_ms, from the
# replica's acks) is printed beside it.
#
# Rows: wal = batch (Pomai's group commit every wal_batch_ms, 10 ms) against
# appendonly yes + appendfsync everysec; wal = sync against appendfsync
# always. The replica is configured as its primary. No snapshots on either
# (--snapshot-interval-s 0 --snapshot-wal-bytes 0; --save '').
#
# Placement (2 CPUs here): each primary alone on SERVER_CPU (pomaid --shards 1
# --cores SERVER_CPU; taskset for redis-server); each replica on REPLICA_CPU
# (default CLIENT_CPU: it shares that core with the load generator and the
# sampler — the same for both sides). Rounds interleave the sides (Redis then
# Pomai, then Pomai then Redis, ...) on fresh data directories; the table has
# each side's median over ROUNDS. Talks to 127.0.0.1 only, on free ports;
# stops exactly the servers it started. About 3 minutes.
#
#   perf/repl_vs_redis.sh [--quick]
#   BUILD_DIR=dir (default <repo>/build-perf) WORK_DIR=dir (default /var/tmp)
#   SERVER_CPU=1 CLIENT_CPU=0 REPLICA_CPU=CLIENT_CPU ROUNDS=3 WALS="batch sync"
#   KEYS=1000000 N_BATCH=1000000 N_SYNC=150000 (SETs per run) LAG_INTERVAL_MS=10
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

rounds=${ROUNDS:-3}
wals=${WALS:-batch sync}
keys=${KEYS:-1000000}
n_batch=${N_BATCH:-1000000}
n_sync=${N_SYNC:-150000}
replica_cpu=${REPLICA_CPU:-$client_cpu}
interval_ms=${LAG_INTERVAL_MS:-10}
[ "${1:-}" = --quick ] && { rounds=1; keys=100000; n_batch=200000; n_sync=50000; }
clients=4 pipeline=16 depth=64 # redis_vs_pomai.sh's "-c 4 -P 16" row
pm_need_tools "redis-server redis-tools" redis-server redis-benchmark redis-cli taskset ss
pm_need_built "$build" "$pomaid" "$bench" "$repl_bench" "$pomai_cli"

WORK_DIR=${WORK_DIR:-/var/tmp} pm_work_dir repl_vs_redis

pm_header "$@"
pm_header_disk "$work"
pm_header_source "$build"
echo "redis:   $(redis-server --version | awk '{ print $3 }')"
echo "== primaries on CPU $server_cpu, replicas on CPU $replica_cpu, load generator and sampler" \
	"on CPU $client_cpu; SET of 32-byte values over $keys keys; redis -c $clients -P $pipeline," \
	"pomai --depth $depth --batch --tcp; $rounds round(s)"
echo

get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# lag KIND PRIMARY REPLICA: the sampler, in the background, into $work/lag.out.
lag_start() {
	taskset -c "$client_cpu" "$repl_bench" lag "--$1" --primary "$2" --replica "$3" \
		--interval-ms "$interval_ms" --cpus "$client_cpu" >"$work/lag.out" 2>&1 &
	lag_pid=$!
	pm_track "$lag_pid"
}

lag_wait() {
	wait "$lag_pid" || true
	pm_untrack "$lag_pid"
	grep -v '^RESULT' "$work/lag.out" | sed 's/^/    /'
	lag_line=$(grep '^RESULT' "$work/lag.out" || echo "RESULT mode=lag error=no-result")
}

run_redis() { # WAL ROUND N
	local wal=$1 round=$2 n=$3 aof out rps p99 mport rport ksz
	[ "$wal" = sync ] && aof=always || aof=everysec
	local args=(--save '' --appendonly yes --appendfsync "$aof")
	pm_start_redis "$server_cpu" "$work/redis-p" "${args[@]}"
	local mpid=$redis_pid
	mport=$redis_port
	pm_start_redis "$replica_cpu" "$work/redis-r" "${args[@]}" --replicaof 127.0.0.1 "$mport"
	local rpid=$redis_pid
	rport=$redis_port
	pm_redis_link_up "$rport"
	lag_start redis "$mport" "$rport"
	out=$(taskset -c "$client_cpu" redis-benchmark -p "$mport" -t set -d 32 -r "$keys" -n "$n" \
		-c "$clients" -P "$pipeline" --threads 1 --csv 2>/dev/null | tail -1)
	lag_wait
	rps=$(cut -d, -f2 <<<"$out" | tr -d '"')
	p99=$(cut -d, -f7 <<<"$out" | tr -d '"' | awk '{ printf "%.0f", $1 * 1000 }')
	ksz="$(redis-cli -p "$mport" dbsize) $(redis-cli -p "$rport" dbsize)"
	pm_stop "$rpid"
	pm_stop "$mpid"
	rm -rf "$work/redis-p" "$work/redis-r"
	echo "RESULT side=redis wal=$wal round=$round ops_s=${rps%.*} p99_us=$p99 keys=${ksz// /,} ${lag_line#RESULT }" |
		tee -a "$work/results"
}

run_pomai() { # WAL ROUND N
	local wal=$1 round=$2 n=$3 line pport rport replport ppid pdrain ksz
	local common=(--bind 127.0.0.1 --shards 1 --arena-bytes 256M --wal "$wal"
		--snapshot-interval-s 0 --snapshot-wal-bytes 0)
	pport=$(pm_free_ports 1 25001)
	replport=$(pm_free_ports 0 $((pport + 97)))
	: >"$work/primary.log"
	pm_start_pomaid "$work/primary.log" "${common[@]}" --base-port "$pport" --tcp-port $((pport - 1)) \
		--cores "$server_cpu" --data-dir "$work/pomai-p" --repl-port "$replport" ||
		{ echo "$0: the primary did not start:" >&2; cat "$work/primary.log" >&2; exit 2; }
	ppid=$pomaid_pid pdrain=$pm_pomaid_drain
	rport=$(pm_free_ports 1 $((replport + 97)))
	: >"$work/replica.log"
	pm_start_pomaid "$work/replica.log" "${common[@]}" --base-port "$rport" --tcp-port $((rport - 1)) \
		--cores "$replica_cpu" --data-dir "$work/pomai-r" --replica-of "127.0.0.1:$replport" ||
		{ echo "$0: the replica did not start:" >&2; cat "$work/replica.log" >&2; exit 2; }
	pm_pomai_streaming "$rport" 1
	lag_start pomai "$pport" "$rport"
	line=$(taskset -c "$client_cpu" "$bench" --port "$pport" --shards 1 --keys "$keys" --set-only \
		--depth "$depth" --batch --tcp --requests "$n" --warmup 0 --cpus "$client_cpu" | grep '^RESULT')
	lag_wait
	grep -q ' wrong=0 miss=0 timeouts=0 errors=0' <<<"$line" || echo "WARNING: pomai: $line"
	ksz=
	for p in "$pport" "$rport"; do
		ksz+=$("$pomai_cli" --port "$p" --tcp info keyspace 2>/dev/null | tr -d '\r' |
			awk -F: '$1 == "keys" { print $2; exit }'),
	done
	pm_stop_pomaid
	pm_stop_pomaid "$ppid" "$pdrain"
	rm -rf "$work/pomai-p" "$work/pomai-r"
	echo "RESULT side=pomai wal=$wal round=$round ops_s=$(get ops_s "$line") p99_us=$(get p99_us "$line" | cut -d. -f1) keys=${ksz%,} ${lag_line#RESULT }" |
		tee -a "$work/results"
}

for round in $(seq "$rounds"); do
	for wal in $wals; do
		[ "$wal" = sync ] && n=$n_sync || n=$n_batch
		echo "== round $round, wal $wal, $n SETs (load $(cut -d' ' -f1 /proc/loadavg))"
		if [ $(((round + ${#wal}) % 2)) = 0 ]; then
			run_redis "$wal" "$round" "$n"
			run_pomai "$wal" "$round" "$n"
		else
			run_pomai "$wal" "$round" "$n"
			run_redis "$wal" "$round" "$n"
		fi
	done
done

# ---------------------------------------------------------------- the table
med() { # SIDE WAL FIELD: the median over rounds (one number per round: split on purpose)
	# shellcheck disable=SC2046
	pm_median $(grep " side=$1 wal=$2 " "$work/results" | while read -r l; do get "$3" "$l"; done)
}
echo
echo "Medians over $rounds round(s). Lag: records behind the primary (Redis: bytes / 75, the bytes of one SET in its stream), and the age of the oldest write the replica lacks."
echo
echo "| wal (Redis AOF) | side | primary SET/s | client p99 us | replica applied rec/s | lag p50 rec | lag p99 rec | lag p99 bytes (Redis) | lag p50 ms | lag p99 ms | lag max ms | caught up after last write, ms | primary's own lag_ms p99 |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for wal in $wals; do
	[ "$wal" = sync ] && aof="appendfsync always" || aof="appendfsync everysec"
	for side in redis pomai; do
		echo "| $wal ($aof) | $side | $(med $side "$wal" ops_s) | $(med $side "$wal" p99_us) |" \
			"$(med $side "$wal" replica_rps) | $(med $side "$wal" lag_rec_p50) | $(med $side "$wal" lag_rec_p99) |" \
			"$([ $side = redis ] && med $side "$wal" lag_p99 || echo -) | $(med $side "$wal" lag_ms_p50) |" \
			"$(med $side "$wal" lag_ms_p99) | $(med $side "$wal" lag_ms_max) | $(med $side "$wal" catchup_ms) |" \
			"$([ $side = pomai ] && med $side "$wal" own_lag_ms_p99 || echo -) |"
	done
done
bad=$(grep -c -E 'caught_up=0|error=' "$work/results" || true)
echo
echo "runs where the replica did not catch up or the sampler failed: $bad"
awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^keys=/) { split(substr($i, 6), k, ","); if (k[1] != k[2]) print "KEY COUNTS DIFFER: " $0 } }' "$work/results"
