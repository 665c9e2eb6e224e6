#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/durable_vs_redis.sh — durable SET throughput: pomaid with `wal = sync`
# (group commit: a reply leaves once its batch's write + fdatasync completed)
# against redis-server with `appendonly yes` and `appendfsync always`, side by
# side in one run, on the same disk (one directory under WORK_DIR), and the
# disk's own bound beside them.
#
# Fairness, by construction: one server core each (pomaid --shards 1 --cores
# SERVER_CPU; taskset -c SERVER_CPU redis-server), one load-generator thread
# on CLIENT_CPU each (redis-benchmark --threads 1; pomai-bench --threads 1),
# 32-byte values, uniform random keys over KEYS, the same concurrency C and
# the same number of requests: Redis gets C connections without pipelining
# (-c C -P 1: each connection waits for its reply, which Redis sends after
# its fsync), Pomai gets C requests in flight on one client (--depth C). Both
# group their fsyncs: Redis fsyncs once per event-loop iteration before
# replying; pomaid once per worker turn.
#
# Interleaved (the machine is shared): every server runs for the whole
# script, each idle while another is measured; ROUNDS rounds, and in each,
# for each concurrency, one cell per server, the order turning from round to
# round. Reported: per server and concurrency the median ops/s and p99 of the
# rounds, and the ratio to Redis (the median of the rounds' ratios).
#
# Pomai runs once per wal_io_uring value in IO (default "auto yes no": auto
# is the default, which measures at start-up where sync batches go; yes and
# no are the overrides); pomaid's start-up line says what auto chose. An
# entry ending in -serial runs pomaid with wal_sync_overlap = no (each sync
# batch's write + fdatasync after the previous one's, issue 20): IO="yes
# yes-serial" compares the overlap with the serial chain in one run.
#
# The disk's own bound: perf/fsync_bound (write + fdatasync round trips per
# second, one in flight) before the first round and after the last, on
# WORK_DIR's file system: `overwrite` (blocks already written: data flush
# only, what Pomai's segments written ahead get), `unwritten` (allocated,
# never written) and `append` (a growing file: Redis's appendonly file). A
# server acknowledging each write after its flush cannot pass the bound at
# C = 1; at C > 1 it can, by grouping writes per flush. Each Pomai cell also
# reports its fdatasyncs per second (INFO wal_fsyncs), against the bound.
#
# Talks to 127.0.0.1 only, on free ports; stops exactly the servers it started.
#
#   perf/durable_vs_redis.sh [--quick]     (--quick: 1 round, C = 1 16, fewer requests)
#   BUILD_DIR=dir (default <repo>/build-perf) WORK_DIR=dir (default /var/tmp)
#   SERVER_CPU=1 CLIENT_CPU=0 KEYS=100000 ROUNDS=3 CONC="1 16 64" IO="auto yes no"
#   N1=4000 (requests per cell per unit of concurrency) NMAX=150000 (at most per cell)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

keys=${KEYS:-100000}
rounds=${ROUNDS:-3}
conc=${CONC:-1 16 64}
ios=${IO:-auto yes no}
n1=${N1:-4000}
nmax=${NMAX:-150000}
[ "${1:-}" = --quick ] && { rounds=1; conc="1 16"; n1=1000; nmax=20000; }
for tool in redis-server redis-benchmark redis-cli taskset ss; do
	command -v $tool >/dev/null || { echo "$0: $tool not found" >&2; exit 2; }
done
fsync_bound=$build/perf/fsync_bound
pm_need_built "$build" "$pomaid" "$bench" "$pomai_cli" "$fsync_bound"

WORK_DIR=${WORK_DIR:-/var/tmp} pm_work_dir durable_vs_redis

pm_header "$@"
pm_header_disk "$work"
pm_header_source "$build"
echo "redis:   $(redis-server --version | awk '{ print $3 }')"
echo "== $rounds round(s), concurrency $conc, pomaid wal_io_uring = $ios; servers on CPU $server_cpu, load on CPU $client_cpu"
echo

get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

bound() { # tag: the disk's bound now, into $work/bound
	"$fsync_bound" "$work" 3 | sed "s/^RESULT /BOUND when=$1 /" | tee -a "$work/bound"
}
bound before

# ---------------------------------------------------------------- the servers

pm_start_redis "$server_cpu" "$work/redis" --save '' --appendonly yes --appendfsync always || exit 2
rport=$redis_port
declare -A pport=() ppid=() pdrain=()
k=0
for io in $ios; do
	p=$(pm_free_ports 1 $((23101 + k * 10)))
	k=$((k + 1))
	: >"$work/pomaid-$io.log"
	mode=${io%-serial} overlap=yes
	[ "$mode" = "$io" ] || overlap=no
	pm_start_pomaid "$work/pomaid-$io.log" --wal sync --wal-io-uring "$mode" \
		--wal-sync-overlap "$overlap" --shards 1 \
		--cores "$server_cpu" --base-port "$p" --tcp-port $((p - 1)) \
		--arena-bytes 512M --data-dir "$work/pomai-$io" ||
		{ echo "$0: pomaid did not start:" >&2; cat "$work/pomaid-$io.log" >&2; exit 2; }
	pport[$io]=$p
	ppid[$io]=$pomaid_pid
	pdrain[$io]=$pm_pomaid_drain
	echo "pomaid wal_io_uring = $io: $(grep -h 'wal_io_uring = auto\|wal_io = pwrite' "$work/pomaid-$io.log" ||
		echo "batches through io_uring")"
done
echo

info_field() { # port field: the first (the node's) value of an INFO field
	"$pomai_cli" --port "$1" info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p" | head -1
}

cell() { # server c round n
	local s=$1 c=$2 r=$3 n=$4 out rps p99 line ops f0 f1
	if [ "$s" = redis ]; then
		out=$(taskset -c "$client_cpu" redis-benchmark -p "$rport" -t set -d 32 -r "$keys" \
			-n "$n" -c "$c" -P 1 --threads 1 --csv 2>/dev/null | tail -1)
		rps=$(echo "$out" | cut -d, -f2 | tr -d '"')
		p99=$(echo "$out" | cut -d, -f7 | tr -d '"')
		echo "RESULT round=$r server=redis conc=$c ops_s=$rps p99_ms=$p99 fsyncs_s=-"
		return
	fi
	local io=${s#pomai-} port
	port=${pport[$io]}
	f0=$(info_field "$port" wal_fsyncs)
	line=$("$bench" --host 127.0.0.1 --port "$port" --cpus "$client_cpu" --set-only \
		--keys "$keys" --value-size 32 --depth "$c" --requests "$n" --warmup 0 | grep '^RESULT')
	f1=$(info_field "$port" wal_fsyncs)
	ops=$(get ops_s "$line")
	p99=$(get p99_us "$line")
	echo "RESULT round=$r server=$s conc=$c ops_s=$ops p99_ms=$(awk -v u="$p99" 'BEGIN { printf "%.3f", u / 1000 }') fsyncs_s=$(awk -v d=$((f1 - f0)) -v n="$n" -v o="$ops" 'BEGIN { printf "%.0f", d / (n / o) }')"
}

servers=(redis)
for io in $ios; do servers+=("pomai-$io"); done
ns=${#servers[@]}
for r in $(seq "$rounds"); do
	for c in $conc; do
		n=$((n1 * c))
		[ "$n" -gt "$nmax" ] && n=$nmax
		for k in $(seq 0 $((ns - 1))); do
			cell "${servers[$(((k + r - 1) % ns))]}" "$c" "$r" "$n" | tee -a "$work/results"
		done
	done
done
redis-cli -p "$rport" info persistence | grep -E "aof_enabled|aof_last_write_status" | tr -d '\r'
for io in $ios; do
	echo "pomai-$io: $(info_field "${pport[$io]}" wal_io) batches, $(info_field "${pport[$io]}" wal_fill_bytes) bytes written ahead, state $(info_field "${pport[$io]}" wal_state)"
	pm_stop_pomaid "${ppid[$io]}" "${pdrain[$io]}"
done
bound after

# ---------------------------------------------------------------- the table

med() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { # server c field
	grep " server=$1 conc=$2 " "$work/results" | sed -n "s/.* $3=\([^ ]*\).*/\1/p" | med
}
ratio() { # server c: the median of the rounds' ops/s ratios to Redis
	for r in $(seq "$rounds"); do
		a=$(grep "round=$r server=$1 conc=$2 " "$work/results" | sed -n 's/.* ops_s=\([^ ]*\).*/\1/p')
		b=$(grep "round=$r server=redis conc=$2 " "$work/results" | sed -n 's/.* ops_s=\([^ ]*\).*/\1/p')
		awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.3f\n", a / b }'
	done | med
}
bound_of() { # shape: the median of the before and after bounds
	grep " shape=$1 " "$work/bound" | sed -n 's/.* ops_s=\([^ ]*\).*/\1/p' | med
}
bo=$(bound_of overwrite)
echo
echo "The disk's bound (write + fdatasync per second, one in flight; before / after):"
for shape in overwrite unwritten append; do
	echo "  $shape: $(grep " shape=$shape " "$work/bound" | sed -n 's/.* ops_s=\([^ ]*\) p50_us=\([^ ]*\).*/\1 (p50 \2 us)/p' | paste -sd/ | sed 's|/| / |')"
done
echo
head="| concurrency | Redis SET/s | p99 ms |"
sep="| ---: | ---: | ---: |"
for io in $ios; do
	head="$head Pomai ($io) SET/s | p99 ms | ratio | p99 ok | fsyncs/s (of bound) |"
	sep="$sep ---: | ---: | ---: | --- | ---: |"
done
echo "$head"
echo "$sep"
for c in $conc; do
	ro=$(col redis "$c" ops_s)
	rp=$(col redis "$c" p99_ms)
	row=$(awk -v c="$c" -v o="$ro" -v p="$rp" -v b="$bo" 'BEGIN { printf "| %s | %.0f (%.2fx bound) | %s |", c, o, o / b, p }')
	for io in $ios; do
		po=$(col "pomai-$io" "$c" ops_s)
		pp=$(col "pomai-$io" "$c" p99_ms)
		pf=$(col "pomai-$io" "$c" fsyncs_s)
		row="$row$(awk -v o="$po" -v p="$pp" -v x="$(ratio "pomai-$io" "$c")" -v rp="$rp" -v f="$pf" -v b="$bo" \
			'BEGIN { printf " %.0f | %s | %.2fx | %s | %.0f (%.0f %%) |", o, p, x, p <= rp ? "yes" : "no", f, 100 * f / b }')"
	done
	echo "$row"
done
echo
echo "Bound: the overwrite shape's median; Redis's column says its SET/s as a multiple of it (at"
echo "concurrency 1 a server acknowledging after each flush stays under 1x). Ratio: the median of"
echo "the rounds' Pomai/Redis ratios; p99 ok: Pomai's median p99 <= Redis's."
