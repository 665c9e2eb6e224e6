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
# over KEYS, each cell DURATION_S seconds without warm-up; rounds interleave
# the sides (Redis first in odd rounds, Pomai first in even ones), each round on
# fresh servers and data directories; the table has the medians over ROUNDS.
# Placement: primaries on SERVER_CPU, replicas on REPLICA_CPU (default
# CLIENT_CPU), the load generator on CLIENT_CPU; every data directory in
# WORK_DIR (one disk). Talks to 127.0.0.1 only, on free ports; stops exactly
# the servers it started. About 3 minutes.
#
#   perf/repl_durable_vs_redis.sh [--quick]
#   BUILD_DIR=dir (default <repo>/build-perf) WORK_DIR=dir (default /var/tmp)
#   SERVER_CPU=1 CLIENT_CPU=0 REPLICA_CPU=CLIENT_CPU ROUNDS=3 CONC="1 8 32"
#   DURATION_S=4 KEYS=100000
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

rounds=${ROUNDS:-3}
conc=${CONC:-1 8 32}
duration_s=${DURATION_S:-4}
keys=${KEYS:-100000}
replica_cpu=${REPLICA_CPU:-$client_cpu}
[ "${1:-}" = --quick ] && { rounds=1; conc="1 8"; duration_s=2; }
for tool in redis-server redis-cli taskset ss; do
	command -v $tool >/dev/null || { echo "$0: $tool not found (apt-get install redis-server redis-tools)" >&2; exit 2; }
done
for f in "$pomaid" "$bench" "$repl_bench" "$pomai_cli"; do
	[ -x "$f" ] || { echo "$0: build $build first ($f)" >&2; exit 2; }
done

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

run_redis() { # ROUND
	local round=$1 c line mpid rpid mport rport
	local args=(--save '' --appendonly yes --appendfsync always)
	pm_start_redis "$server_cpu" "$work/redis-p" "${args[@]}"
	mpid=$redis_pid mport=$redis_port
	pm_start_redis "$replica_cpu" "$work/redis-r" "${args[@]}" --replicaof 127.0.0.1 "$mport"
	rpid=$redis_pid rport=$redis_port
	pm_redis_link_up "$rport"
	for c in $conc; do
		line=$(taskset -c "$client_cpu" "$repl_bench" wait --port "$mport" --clients "$c" \
			--duration-ms $((duration_s * 1000)) --keys "$keys" --cpus "$client_cpu" | grep '^RESULT') ||
			echo "WARNING: redis conc $c: $line"
		record redis "$c" "$round" "$(get ops_s "$line")" "$(get p99_us "$line")" \
			"errors=$(get errors "$line") short_waits=$(get short_waits "$line")"
	done
	pm_stop "$rpid"
	pm_stop "$mpid"
	rm -rf "$work/redis-p" "$work/redis-r"
}

run_pomai() { # ROUND IO_URING(yes|no)
	local round=$1 io=$2 c line pport rport replport ppid pdrain timeouts
	local common=(--bind 127.0.0.1 --shards 1 --arena-bytes 256M --wal sync --wal-io-uring "$io"
		--snapshot-interval-s 0 --snapshot-wal-bytes 0)
	pport=$(pm_free_ports 1 25001)
	replport=$(pm_free_ports 0 $((pport + 97)))
	: >"$work/primary.log"
	pm_start_pomaid "$work/primary.log" "${common[@]}" --base-port "$pport" --tcp-port $((pport - 1)) \
		--cores "$server_cpu" --data-dir "$work/pomai-p" --repl-port "$replport" \
		--repl-ack durable --min-replicas 1 ||
		{ echo "$0: the primary did not start:" >&2; cat "$work/primary.log" >&2; exit 2; }
	ppid=$pomaid_pid pdrain=$pm_pomaid_drain
	rport=$(pm_free_ports 1 $((replport + 97)))
	: >"$work/replica.log"
	pm_start_pomaid "$work/replica.log" "${common[@]}" --base-port "$rport" --tcp-port $((rport - 1)) \
		--cores "$replica_cpu" --data-dir "$work/pomai-r" --replica-of "127.0.0.1:$replport" ||
		{ echo "$0: the replica did not start:" >&2; cat "$work/replica.log" >&2; exit 2; }
	pm_pomai_streaming "$rport" 1
	for c in $conc; do
		line=$("$bench" --port "$pport" --cpus "$client_cpu" --set-only --keys "$keys" --value-size 32 \
			--depth "$c" --duration "$duration_s" --warmup 0 | grep '^RESULT')
		grep -q ' wrong=0 miss=0 timeouts=0 errors=0' <<<"$line" || echo "WARNING: pomai conc $c: $line"
		record "pomai-uring-$io" "$c" "$round" "$(get ops_s "$line")" "$(get p99_us "$line")" \
			"errors=$(get errors "$line") timeouts=$(get timeouts "$line")"
	done
	timeouts=$("$pomai_cli" --port "$pport" --tcp info replication | tr -d '\r' |
		awk -F: '$1 == "repl_ack_timeouts" { print $2; exit }')
	echo "  primary: repl_ack_timeouts $timeouts (writes answered NOREPLICAS for want of the replica's ack)"
	pm_stop_pomaid
	pm_stop_pomaid "$ppid" "$pdrain"
	rm -rf "$work/pomai-p" "$work/pomai-r"
}

for round in $(seq "$rounds"); do
	echo "== round $round (load $(cut -d' ' -f1 /proc/loadavg))"
	if [ $((round % 2)) = 1 ]; then
		run_redis "$round"
		run_pomai "$round" yes
		run_pomai "$round" no
	else
		run_pomai "$round" no
		run_pomai "$round" yes
		run_redis "$round"
	fi
done

# ---------------------------------------------------------------- the table
med() { # SIDE C FIELD: the median over rounds (one number per round: split on purpose)
	# shellcheck disable=SC2046
	pm_median $(grep " side=$1 conc=$2 " "$work/results" | while read -r l; do get "$3" "$l"; done)
}
echo
echo "Medians over $rounds round(s); ratio = Pomai / Redis ops/s; p99 ok = Pomai's p99 <= Redis's."
echo
echo "| concurrency | Redis SET+WAIT/s | p99 ms | Pomai io_uring SET/s | p99 ms | ratio | p99 ok | Pomai pwrite SET/s | p99 ms | ratio | p99 ok |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"
for c in $conc; do
	ro=$(med redis "$c" ops_s) rp=$(med redis "$c" p99_ms)
	uo=$(med pomai-uring-yes "$c" ops_s) up=$(med pomai-uring-yes "$c" p99_ms)
	po=$(med pomai-uring-no "$c" ops_s) pp=$(med pomai-uring-no "$c" p99_ms)
	awk -v c="$c" -v ro="$ro" -v rp="$rp" -v uo="$uo" -v up="$up" -v po="$po" -v pp="$pp" 'BEGIN {
		printf "| %s | %.0f | %.2f | %.0f | %.2f | %.2fx | %s | %.0f | %.2f | %.2fx | %s |\n",
			c, ro, rp, uo, up, uo / ro, up <= rp ? "yes" : "no", po, pp, po / ro, pp <= rp ? "yes" : "no" }'
done
echo "target: Pomai >= 2x Redis ops/s with p99 no worse"
