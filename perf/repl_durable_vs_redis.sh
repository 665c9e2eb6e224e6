#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/repl_durable_vs_redis.sh — durable replicated SET (issue 16): a write is
# answered only once it is on the primary's disk and on one replica's disk.
#
#   Pomai: primary `wal = sync`, `repl_ack = durable`, `min_replicas = 1`;
#          replica `wal = sync`. pomai-bench --set-only --depth C (one client,
#          C requests in flight, UDP: perf/durable_vs_redis.sh's form). Twice:
#          log I/O through io_uring (the default) and pwrite + fdatasync on the
#          worker (wal_io_uring = no), primary and replica alike.
#   Redis: primary and replica `appendonly yes`, `appendfsync always`; C
#          connections, each sending `SET` and `WAIT 1 0` together and waiting
#          for both replies (pomai-repl-bench wait: redis-benchmark cannot send
#          WAIT). Redis 7.0 answers WAIT once the replica's REPLCONF ACK covers
#          the write; the replica sends that ack from its event loop after the
#          loop's AOF fsync (appendfsync always), so the write is then on both
#          disks — the same promise as Pomai's.
#
# Same concurrency C on both sides (CONC), 32-byte values, uniform random keys
# over KEYS, each cell DURATION_S seconds without warm-up. Each round starts
# the three pairs on fresh data directories (the idle ones sleep) and runs,
# for each C, the three sides' cells back to back, their order turning from
# cell to cell, so that the sides compared meet the same moment of this shared
# machine; the table has the medians over ROUNDS, and the median of each
# round's ratio.
# Placement: primaries on SERVER_CPU, replicas on REPLICA_CPU (default
# CLIENT_CPU), the load generator on CLIENT_CPU; every data directory in
# WORK_DIR (one disk). Talks to 127.0.0.1 only, on free ports; stops exactly
# the servers it started. About 3 minutes.
#
#   perf/repl_durable_vs_redis.sh [--quick]
#   BUILD_DIR=dir (default <repo>/build-perf) WORK_DIR=dir (default /var/tmp)
#   SERVER_CPU=1 CLIENT_CPU=0 REPLICA_CPU=CLIENT_CPU ROUNDS=5 CONC="1 8 32"
#   DURATION_S=2 KEYS=100000
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

rounds=${ROUNDS:-5}
conc=${CONC:-1 8 32}
duration_s=${DURATION_S:-2}
keys=${KEYS:-100000}
replica_cpu=${REPLICA_CPU:-$client_cpu}
[ "${1:-}" = --quick ] && { rounds=1; conc="1 8"; duration_s=1; }
pm_need_tools "redis-server redis-tools" redis-server redis-cli taskset ss
pm_need_built "$build" "$pomaid" "$bench" "$repl_bench" "$pomai_cli"

WORK_DIR=${WORK_DIR:-/var/tmp} pm_work_dir repl_durable_vs_redis

pm_header "$@"
pm_header_disk "$work"
pm_header_source "$build"
echo "redis:   $(redis-server --version | awk '{ print $3 }')"
echo "== primaries on CPU $server_cpu, replicas on CPU $replica_cpu, load generator on CPU" \
	"$client_cpu; concurrency $conc; $duration_s s per cell; $rounds round(s)"
echo

get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
record() { # SIDE C ROUND OPS P99_US EXTRA
	echo "RESULT side=$1 conc=$2 round=$3 ops_s=$4 p99_ms=$(awk -v u="$5" 'BEGIN { printf "%.3f", u / 1000 }') $6" |
		tee -a "$work/results"
}

# Each round starts the three pairs (idle servers sleep), then runs every
# concurrency's cells back to back, the sides' order turning from cell to cell.
redis_start() {
	local args=(--save '' --appendonly yes --appendfsync always)
	pm_start_redis "$server_cpu" "$work/redis-p" "${args[@]}"
	redis_mpid=$redis_pid redis_mport=$redis_port
	pm_start_redis "$replica_cpu" "$work/redis-r" "${args[@]}" --replicaof 127.0.0.1 "$redis_mport"
	redis_rpid=$redis_pid
	pm_redis_link_up "$redis_port"
}

redis_cell() { # CONC ROUND
	local line
	line=$(taskset -c "$client_cpu" "$repl_bench" wait --port "$redis_mport" --clients "$1" \
		--duration-ms $((duration_s * 1000)) --keys "$keys" --cpus "$client_cpu" | grep '^RESULT') ||
		echo "WARNING: redis conc $1: $line"
	record redis "$1" "$2" "$(get ops_s "$line")" "$(get p99_us "$line")" \
		"errors=$(get errors "$line") short_waits=$(get short_waits "$line")"
}

redis_stop() {
	pm_stop "$redis_rpid"
	pm_stop "$redis_mpid"
	rm -rf "$work/redis-p" "$work/redis-r"
}

declare -A pport ppid pdrain rpid rdrain
pomai_start() { # IO_URING(yes|no)
	local io=$1 rport replport
	local common=(--bind 127.0.0.1 --shards 1 --arena-bytes 256M --wal sync --wal-io-uring "$io"
		--snapshot-interval-s 0 --snapshot-wal-bytes 0)
	pport[$io]=$(pm_free_ports 1 25001)
	replport=$(pm_free_ports 0 $((pport[$io] + 97)))
	: >"$work/primary-$io.log"
	pm_start_pomaid "$work/primary-$io.log" "${common[@]}" --base-port "${pport[$io]}" \
		--tcp-port $((pport[$io] - 1)) --cores "$server_cpu" --data-dir "$work/pomai-p-$io" \
		--repl-port "$replport" --repl-ack durable --min-replicas 1 ||
		{ echo "$0: the primary did not start:" >&2; cat "$work/primary-$io.log" >&2; exit 2; }
	ppid[$io]=$pomaid_pid pdrain[$io]=$pm_pomaid_drain
	rport=$(pm_free_ports 1 $((replport + 97)))
	: >"$work/replica-$io.log"
	pm_start_pomaid "$work/replica-$io.log" "${common[@]}" --base-port "$rport" --tcp-port $((rport - 1)) \
		--cores "$replica_cpu" --data-dir "$work/pomai-r-$io" --replica-of "127.0.0.1:$replport" ||
		{ echo "$0: the replica did not start:" >&2; cat "$work/replica-$io.log" >&2; exit 2; }
	rpid[$io]=$pomaid_pid rdrain[$io]=$pm_pomaid_drain
	pm_pomai_streaming "$rport" 1
}

pomai_cell() { # IO_URING CONC ROUND
	local line
	line=$("$bench" --port "${pport[$1]}" --cpus "$client_cpu" --set-only --keys "$keys" --value-size 32 \
		--depth "$2" --duration "$duration_s" --warmup 0 | grep '^RESULT')
	grep -q ' wrong=0 miss=0 timeouts=0 errors=0' <<<"$line" || echo "WARNING: pomai conc $2: $line"
	record "pomai-uring-$1" "$2" "$3" "$(get ops_s "$line")" "$(get p99_us "$line")" \
		"errors=$(get errors "$line") timeouts=$(get timeouts "$line")"
}

pomai_stop() { # IO_URING
	local io=$1 timeouts
	timeouts=$("$pomai_cli" --port "${pport[$io]}" --tcp info replication | tr -d '\r' |
		awk -F: '$1 == "repl_ack_timeouts" { print $2; exit }')
	echo "  primary (wal_io_uring $io): repl_ack_timeouts $timeouts (writes answered NOREPLICAS for want of the replica's ack)"
	pm_stop_pomaid "${rpid[$io]}" "${rdrain[$io]}"
	pm_stop_pomaid "${ppid[$io]}" "${pdrain[$io]}"
	rm -rf "$work/pomai-p-$io" "$work/pomai-r-$io"
}

orders=("redis yes no" "no yes redis" "yes redis no" "redis no yes" "no redis yes" "yes no redis")
cell=0
for round in $(seq "$rounds"); do
	echo "== round $round (load $(cut -d' ' -f1 /proc/loadavg))"
	redis_start
	pomai_start yes
	pomai_start no
	for c in $conc; do
		for side in ${orders[$((cell++ % ${#orders[@]}))]}; do
			if [ "$side" = redis ]; then redis_cell "$c" "$round"; else pomai_cell "$side" "$c" "$round"; fi
		done
	done
	pomai_stop yes
	pomai_stop no
	redis_stop
done

# ---------------------------------------------------------------- the table
med() { # SIDE C FIELD: the median over rounds (one number per round: split on purpose)
	# shellcheck disable=SC2046
	pm_median $(grep " side=$1 conc=$2 " "$work/results" | while read -r l; do get "$3" "$l"; done)
}
echo
echo "Medians over $rounds round(s); ratio = Pomai / Redis of the medians (in brackets: the median of each"
echo "round's ratio); p99 ok = Pomai's median p99 <= Redis's."
echo
# rratio SIDE C: the median over rounds of SIDE's ops/s / Redis's in that round
rratio() {
	local r a b v=()
	for r in $(seq "$rounds"); do
		a=$(get ops_s "$(grep " side=$1 conc=$2 round=$r " "$work/results")")
		b=$(get ops_s "$(grep " side=redis conc=$2 round=$r " "$work/results")")
		v+=("$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.3f", a / b }')")
	done
	pm_median "${v[@]}"
}
echo "| concurrency | Redis SET+WAIT/s | p99 ms | Pomai io_uring SET/s | p99 ms | ratio | p99 ok | Pomai pwrite SET/s | p99 ms | ratio | p99 ok |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"
for c in $conc; do
	ro=$(med redis "$c" ops_s) rp=$(med redis "$c" p99_ms)
	uo=$(med pomai-uring-yes "$c" ops_s) up=$(med pomai-uring-yes "$c" p99_ms)
	po=$(med pomai-uring-no "$c" ops_s) pp=$(med pomai-uring-no "$c" p99_ms)
	awk -v c="$c" -v ro="$ro" -v rp="$rp" -v uo="$uo" -v up="$up" -v po="$po" -v pp="$pp" \
		-v ur="$(rratio pomai-uring-yes "$c")" -v pr="$(rratio pomai-uring-no "$c")" 'BEGIN {
		printf "| %s | %.0f | %.2f | %.0f | %.2f | %.2fx (%.2fx) | %s | %.0f | %.2f | %.2fx (%.2fx) | %s |\n",
			c, ro, rp, uo, up, uo / ro, ur, up <= rp ? "yes" : "no", po, pp, po / ro, pr,
			pp <= rp ? "yes" : "no" }'
done
echo "target: Pomai >= 2x Redis ops/s with p99 no worse"
