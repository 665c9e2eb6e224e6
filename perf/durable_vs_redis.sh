#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/durable_vs_redis.sh — durable SET throughput: pomaid with `wal = sync`
# (group commit: a reply leaves once its batch's write + fdatasync completed)
# against redis-server with `appendonly yes` and `appendfsync always`, side by
# side in one run, on the same disk (one directory under WORK_DIR).
#
# Fairness, by construction: one server core each (pomaid --shards 1 --cores
# SERVER_CPU; taskset -c SERVER_CPU redis-server), one load-generator thread
# on CLIENT_CPU each (redis-benchmark --threads 1; pomai-bench --threads 1),
# 32-byte values, uniform random keys over KEYS, the same concurrency C: Redis
# gets C connections without pipelining (-c C -P 1: each connection waits for
# its reply, which Redis sends after its fsync), Pomai gets C requests in
# flight on one client (--depth C). Both group their fsyncs: Redis fsyncs once
# per event-loop iteration before replying; pomaid once per worker turn. Talks
# to 127.0.0.1 only, on free ports; stops exactly the servers it started.
#
#   perf/durable_vs_redis.sh [--quick]
#   BUILD_DIR=dir (default <repo>/build-perf) WORK_DIR=dir (default /var/tmp)
#   SERVER_CPU=1 CLIENT_CPU=0 KEYS=100000 N=200000 CONC="1 16 64"
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

keys=${KEYS:-100000}
n=${N:-200000}
conc=${CONC:-1 16 64}
[ "${1:-}" = --quick ] && { n=20000; conc="1 16"; }
for tool in redis-server redis-benchmark redis-cli taskset ss; do
	command -v $tool >/dev/null || { echo "$0: $tool not found" >&2; exit 2; }
done
pm_need_built "$build" "$pomaid" "$bench"

WORK_DIR=${WORK_DIR:-/var/tmp} pm_work_dir durable_vs_redis

pm_header "$@"
pm_header_disk "$work"
echo "redis:   $(redis-server --version | awk '{ print $3 }')"
echo

# ---------------------------------------------------------------- Redis
pm_start_redis "$server_cpu" "$work" --save '' --appendonly yes --appendfsync always || exit 2
rport=$redis_port
for c in $conc; do
	out=$(taskset -c "$client_cpu" redis-benchmark -p "$rport" -t set -d 32 -r "$keys" -n "$n" \
		-c "$c" -P 1 --threads 1 --csv 2>/dev/null | tail -1)
	rps=$(echo "$out" | cut -d, -f2 | tr -d '"')
	p99=$(echo "$out" | cut -d, -f7 | tr -d '"')
	echo "RESULT server=redis conc=$c ops_s=$rps p99_ms=$p99" | tee -a "$work/results"
done

# ---------------------------------------------------------------- Pomai
# twice: log I/O through io_uring (the default), and pwrite on the worker
for io in yes no; do
	pport=$(pm_free_ports 1 23001)
	rm -rf "$work/pomai"
	: >"$work/pomaid.log"
	pm_start_pomaid "$work/pomaid.log" --wal sync --wal-io-uring "$io" --shards 1 \
		--cores "$server_cpu" --base-port "$pport" --tcp-port $((pport - 1)) \
		--arena-bytes 512M --data-dir "$work/pomai" ||
		{ echo "$0: pomaid did not start:" >&2; cat "$work/pomaid.log" >&2; exit 2; }
	grep ready "$work/pomaid.log"
	for c in $conc; do
		line=$("$bench" --host 127.0.0.1 --port "$pport" --cpus "$client_cpu" --set-only \
			--keys "$keys" --value-size 32 --depth "$c" --requests "$n" --warmup 0 | grep '^RESULT')
		ops=$(sed -n 's/.* ops_s=\([^ ]*\).*/\1/p' <<<"$line")
		p99=$(sed -n 's/.* p99_us=\([^ ]*\).*/\1/p' <<<"$line")
		echo "RESULT server=pomai-uring-$io conc=$c ops_s=$ops p99_ms=$(awk -v u="$p99" 'BEGIN { printf "%.3f", u / 1000 }')" |
			tee -a "$work/results"
	done
	pm_stop_pomaid
done
redis-cli -p "$rport" info persistence | grep -E "aof_enabled|aof_last_write_status" || true

echo
echo "| concurrency | Redis SET/s (appendfsync always) | p99 ms | Pomai SET/s, io_uring | p99 ms | ratio | Pomai SET/s, pwrite | p99 ms | ratio |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
for c in $conc; do
	r=$(grep "server=redis conc=$c " "$work/results")
	u=$(grep "server=pomai-uring-yes conc=$c " "$work/results")
	p=$(grep "server=pomai-uring-no conc=$c " "$work/results")
	awk -v c="$c" -v ro="$(get ops_s "$r")" -v rp="$(get p99_ms "$r")" -v uo="$(get ops_s "$u")" \
		-v up="$(get p99_ms "$u")" -v po="$(get ops_s "$p")" -v pp="$(get p99_ms "$p")" \
		'BEGIN { printf "| %s | %.0f | %s | %.0f | %s | %.2fx | %.0f | %s | %.2fx |\n", c, ro, rp, uo, up, uo / ro, po, pp, po / ro }'
done
