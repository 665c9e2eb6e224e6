#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/redis_vs_pomai.sh — pomaid against redis-server over loopback, GET and
# SET of 32-byte values, with each load generator in its own best pipelined
# form: redis-benchmark for Redis, pomai-bench (libpomai) for Pomai. Optionally
# (--knn) also KNN over a two-shard pomaid on Fashion-MNIST.
#
# Fairness, by construction:
#   * One server core each. redis-server runs pinned (taskset) to SERVER_CPU;
#     pomaid runs one shard with --cores SERVER_CPU, so its one worker is pinned
#     there (its main thread only waits for the worker). Redis runs without
#     persistence (--save '' --appendonly no) and pomaid has none (--wal none; before
#     issue 20's re-measure it ran with the default log, wal = batch).
#   * One client core each, one client thread: redis-benchmark --threads 1 and
#     pomai-bench --threads 1 both run under taskset on CLIENT_CPU.
#   * The same work: KEYS keys preloaded in both servers ("key:" + 12 digits,
#     16 bytes, the keys redis-benchmark -r writes), uniform random keys, 32-byte
#     values, the same request count N per cell, no warm-up on either side.
#   * The same concurrency. redis-benchmark -c C -P P keeps C connections, each
#     writing P commands, reading the P replies, then writing the next P. Pomai
#     gets pomai-bench --depth C*P --pipelines C --batch with one thread: C
#     pipelines of P on one client, each sent again once its own P replies are
#     back — the same pattern. (Before issue 20's re-measure, -c 4 -P 16 was met
#     by one pipeline of 64, which waited for all 64 replies: none of the
#     overlap of Redis's four connections.)
#     -c 50 -P 1 (redis-benchmark's default: 50 connections, one request each
#     in flight, the next sent as its reply arrives) is met by pomai-bench
#     --depth 50 without --batch: 50 requests always in flight, a new one
#     submitted from each completion (issue 20's row).
#   * Latency: both report per-request latency from the pipeline's write to the
#     reply (redis-benchmark's p99 from its histogram; pomai-bench's from a
#     log-linear one, 0.8 % bucket error).
# Pomai over TCP (one connection, the same pattern) is measured too.
#
# Talks to 127.0.0.1 only; picks free ports; starts pomaid and redis-server and
# stops exactly those (by pid, trap EXIT). About 2-3 minutes (plus ~2 more with
# --knn).
#
#   perf/redis_vs_pomai.sh [--knn] [--quick]
#   BUILD_DIR=dir      build directory (default <repo>/build-perf)
#   SERVER_CPU=1 CLIENT_CPU=0
#   KEYS=1000000       key space (both servers are preloaded with all of it)
#   N1=100000 N16=1000000   requests per cell without / with pipelining
#   ROUNDS=1           rounds; each round runs every row on Redis, then Pomai UDP,
#                      then Pomai TCP (both servers up, each idle while the other
#                      is measured), so a loaded machine's drift hits both sides
#                      alike; the table gives each cell's median over the rounds
#   KNN_EF=10,20,40,80,160  ef values of the KNN stage
#   KNN_DEPTHS="1 8"        queries in flight (one client thread) of the KNN stage
#   PB_EXTRA="args"    more pomai-bench arguments for every Pomai cell, e.g.
#                      "--spin-us 200" (libpomai's spin_us: the client reads its
#                      socket 200 us before it sleeps; redis-benchmark always sleeps)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

keys=${KEYS:-1000000}
n1=${N1:-100000}
n16=${N16:-1000000}
knn_ef=${KNN_EF:-10,20,40,80,160}
knn_depths=${KNN_DEPTHS:-1 8}
rounds=${ROUNDS:-1}
do_knn=0
for a in "$@"; do
	case $a in
	--knn) do_knn=1 ;;
	--quick) keys=100000 n1=20000 n16=200000 ;;
	*) echo "usage: $0 [--knn] [--quick]" >&2; exit 2 ;;
	esac
done

pm_need_tools "redis-server redis-tools" redis-server redis-benchmark redis-cli taskset ss
if [ ! -x "$pomaid" ] || [ ! -x "$bench" ]; then
	echo "$0: build first: ninja -C $build dataplane/pomaid perf/pomai-bench" >&2
	exit 2
fi

pm_work_dir redis_vs_pomai

# ------------------------------------------------------------------ helpers

start_pomaid() { # shards cores arena -> sets pomaid_pid, pomai_port
	pomai_port=$(pm_free_ports $(($1 + 1)))
	: >"$work/pomaid.log"
	pm_start_pomaid "$work/pomaid.log" --bind 127.0.0.1 --base-port "$pomai_port" \
		--tcp-port $((pomai_port - 1)) --shards "$1" --cores "$2" --arena-bytes "$3" \
		--data-dir "$work/pomai" --wal none ||
		{ echo "$0: pomaid did not start:" >&2; cat "$work/pomaid.log" >&2; exit 2; }
	cat "$work/pomaid.log"
}

start_redis() { # -> redis_pid, redis_port
	pm_start_redis "$server_cpu" "$work" --save '' --appendonly no || exit 2
}

# Every key once, in RESP, through redis-cli --pipe.
preload_redis() {
	awk -v n="$keys" 'BEGIN {
		v = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		for (i = 0; i < n; i++)
			printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$32\r\n%s\r\n", i, v
	}' | redis-cli -h 127.0.0.1 -p "$redis_port" --pipe | tail -1
	echo "redis keys: $(redis-cli -h 127.0.0.1 -p "$redis_port" dbsize)"
}

declare -A ops p99 round_ops round_p99 round_cpu
round=1

# The median of a cell over the rounds: $1 = ops | p99, $2 = the cell's key.
median() {
	local -n arr=round_$1
	local r vals=()
	for ((r = 1; r <= rounds; r++)); do vals+=("${arr[$r,$2]}"); done
	printf '%s\n' "${vals[@]}" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# CPU time of every thread of a process so far, in ns (schedstat: what the
# scheduler ran it for). On a machine loaded by other work the wall clock of
# one server core says as much about the neighbours as about the server;
# requests per server CPU-second does not.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }

# One cell's server CPU: requests per CPU-second of the server process.
per_cpu_s() { awk -v n="$1" -v ns="$2" 'BEGIN { printf "%.0f", (ns > 0 ? n / (ns / 1e9) : 0) }'; }

# redis-benchmark -c C -P P for GET, then SET; records ops[redis,C,P,GET] ...
run_redis() {
	local c=$1 p=$2 n=$3 t test rps p99ms c0
	for t in get set; do
		c0=$(cpu_ns "$redis_pid")
		while IFS=, read -r test rps _ _ _ _ p99ms _; do
			test=${test//\"/}
			[ "$test" = test ] && continue
			ops[redis,$c,$p,$test]=${rps//\"/}
			p99[redis,$c,$p,$test]=$(awk -v x="${p99ms//\"/}" 'BEGIN { printf "%.1f", x * 1000 }')
			round_ops[$round,redis,$c,$p,$test]=${ops[redis,$c,$p,$test]}
			round_p99[$round,redis,$c,$p,$test]=${p99[redis,$c,$p,$test]}
		done < <(taskset -c "$client_cpu" redis-benchmark -h 127.0.0.1 -p "$redis_port" \
			-t "$t" -d 32 -r "$keys" -n "$n" -c "$c" -P "$p" --threads 1 --csv)
		test=${t^^}
		round_cpu[$round,redis,$c,$p,$test]=$(per_cpu_s "$n" $(($(cpu_ns "$redis_pid") - c0)))
	done
	echo "redis  -c $c -P $p: GET ${ops[redis,$c,$p,GET]}/s p99 ${p99[redis,$c,$p,GET]} us" \
		"(${round_cpu[$round,redis,$c,$p,GET]} per server CPU-s)," \
		"SET ${ops[redis,$c,$p,SET]}/s p99 ${p99[redis,$c,$p,SET]} us" \
		"(${round_cpu[$round,redis,$c,$p,SET]} per server CPU-s)"
}

# pomai-bench with the matching depth; $1 = udp | tcp.
run_pomai() {
	local tr=$1 c=$2 p=$3 n=$4 op flag line c0
	local depth=$((c * p)) extra=()
	# shellcheck disable=SC2206 # words on purpose: e.g. PB_EXTRA="--spin-us 200"
	[ -n "${PB_EXTRA:-}" ] && extra+=($PB_EXTRA)
	[ "$tr" = tcp ] && extra+=(--tcp)
	# -c C -P P: C pipelines of P on one thread, each sent again once its own
	# replies are back; -c alone: a request per completion
	[ "$p" -gt 1 ] && extra+=(--batch --pipelines "$c")
	for op in GET SET; do
		[ $op = GET ] && flag=--get-only || flag=--set-only
		c0=$(cpu_ns "$pomaid_pid")
		line=$(taskset -c "$client_cpu" "$bench" --port "$pomai_port" --shards 1 \
			--keys "$keys" --expect-hits $flag --depth $depth --requests "$n" \
			--warmup 0 --cpus "$client_cpu" "${extra[@]}" | tee -a "$work/pomai-bench.out" |
			grep '^RESULT') || true # a failed cell is said below, not a silent exit (set -e)
		if [ -z "$line" ]; then
			echo "WARNING: pomai $tr $op: pomai-bench failed; its last lines:"
			tail -5 "$work/pomai-bench.out"
			line="RESULT ops_s=0 p99_us=0 (failed)"
		fi
		ops[$tr,$c,$p,$op]=$(sed 's/.* ops_s=\([0-9]*\).*/\1/' <<<"$line")
		p99[$tr,$c,$p,$op]=$(sed 's/.* p99_us=\([0-9.]*\).*/\1/' <<<"$line")
		round_ops[$round,$tr,$c,$p,$op]=${ops[$tr,$c,$p,$op]}
		round_p99[$round,$tr,$c,$p,$op]=${p99[$tr,$c,$p,$op]}
		round_cpu[$round,$tr,$c,$p,$op]=$(per_cpu_s "$n" $(($(cpu_ns "$pomaid_pid") - c0)))
		grep -q ' wrong=0 miss=0 timeouts=0 errors=0' <<<"$line" ||
			echo "WARNING: pomai $tr $op: $line"
	done
	echo "pomai $tr depth $depth: GET ${ops[$tr,$c,$p,GET]}/s p99 ${p99[$tr,$c,$p,GET]} us" \
		"(${round_cpu[$round,$tr,$c,$p,GET]} per server CPU-s)," \
		"SET ${ops[$tr,$c,$p,SET]}/s p99 ${p99[$tr,$c,$p,SET]} us" \
		"(${round_cpu[$round,$tr,$c,$p,SET]} per server CPU-s)"
}

# The Pomai column's name for redis-benchmark -c C -P P: depth C (one request
# per completion), depth P batch, or C x P batch (C pipelines of P).
pomai_cfg() {
	if [ "$2" -eq 1 ]; then echo "depth $1"
	elif [ "$1" -eq 1 ]; then echo "depth $2 batch"
	else echo "$1 x $2 batch"; fi
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
p99_verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b ? "yes" : "no") }'; }

# ------------------------------------------------------------------ KV

pm_header "$@"
pm_header_source "$build"
echo "redis:   $(redis-server --version | cut -d' ' -f1-3)"
echo "pomai-bench extra arguments: ${PB_EXTRA:-none}"
echo "== servers on CPU $server_cpu, load generators on CPU $client_cpu; $keys keys," \
	"32-byte values; $n1 requests per cell unpipelined, $n16 pipelined"
configs=("1 1 $n1" "1 16 $n16" "4 16 $n16" "50 1 $n16")

start_redis
preload_redis
start_pomaid 1 "$server_cpu" 256M
taskset -c "$client_cpu" "$bench" --port "$pomai_port" --keys "$keys" --preload-only \
	--depth 64 --cpus "$client_cpu" | grep -E '^(preload|RESULT)'
for ((round = 1; round <= rounds; round++)); do
	echo "== round $round of $rounds"
	for cfg in "${configs[@]}"; do
		read -r c p n <<<"$cfg"
		run_redis "$c" "$p" "$n"
		for tr in udp tcp; do
			run_pomai "$tr" "$c" "$p" "$n"
		done
	done
done
pm_stop_pomaid
pm_stop "$redis_pid"

echo
echo "medians over $rounds round(s):"
echo "| Redis config | Pomai config | op | Redis ops/s | Redis p99 us | Pomai UDP ops/s | p99 us | UDP/Redis | p99 <= Redis | Pomai TCP ops/s | p99 us | TCP/Redis | p99 <= Redis |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"
for cfg in "${configs[@]}"; do
	read -r c p _ <<<"$cfg"
	for op in GET SET; do
		r=$(median ops "redis,$c,$p,$op") u=$(median ops "udp,$c,$p,$op")
		t=$(median ops "tcp,$c,$p,$op")
		rp=$(median p99 "redis,$c,$p,$op") up=$(median p99 "udp,$c,$p,$op")
		tp=$(median p99 "tcp,$c,$p,$op")
		echo "| -c $c -P $p | $(pomai_cfg "$c" "$p") | $op" \
			"| $r | $rp | $u | $up | $(ratio "$u" "$r") | $(p99_verdict "$up" "$rp")" \
			"| $t | $tp | $(ratio "$t" "$r") | $(p99_verdict "$tp" "$rp") |"
	done
done
echo
echo "requests per server CPU-second (the server process's threads, schedstat), medians:"
echo "| Redis config | Pomai config | op | Redis | Pomai UDP | UDP/Redis | Pomai TCP | TCP/Redis |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
for cfg in "${configs[@]}"; do
	read -r c p _ <<<"$cfg"
	for op in GET SET; do
		r=$(median cpu "redis,$c,$p,$op") u=$(median cpu "udp,$c,$p,$op")
		t=$(median cpu "tcp,$c,$p,$op")
		echo "| -c $c -P $p | $(pomai_cfg "$c" "$p") | $op" \
			"| $r | $u | $(ratio "$u" "$r") | $t | $(ratio "$t" "$r") |"
	done
done
echo "target: Pomai >= 2x Redis ops/s for GET and SET, with p99 no worse"

# ------------------------------------------------------------------ KNN

if [ $do_knn = 1 ]; then
	echo
	echo "== KNN over the daemon: pomaid --shards 2 (CPUs 0,1), pomai-bench unpinned"
	start_pomaid 2 0,1 512M
	for d in $knn_depths; do # the first run loads the collection, the next reuse it
		"$bench" --knn --port "$pomai_port" --shards 2 --depth "$d" --ef "$knn_ef" \
			--duration 5 --warmup 1 | grep -vE '^(command|date|uname|cpu|nproc|cache|build):'
	done
	pm_stop_pomaid
fi
