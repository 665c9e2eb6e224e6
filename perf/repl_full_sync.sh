#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/repl_full_sync.sh — how long a new replica takes to catch up with a
# primary that holds the Fashion-MNIST HNSW collection (60,000 x 784, L2,
# M 16, ef_construction 200: pomai-bench --knn's parameters), by full sync,
# against loading the same vectors into a fresh pomaid by hand (VADD over the
# wire, `pomai-cli load`, the graph built by the server); and whether the
# replica answers KNN as its primary does (issue 16).
#
#   1. A primary (--wal batch, a repl_port, no snapshots of its own) gets the
#      collection created and the train set loaded with `pomai-cli load`: the
#      first load by hand, timed from the load's start to its end.
#   2. KNN check on the primary (pm_knn_check: recall@10 against the server's
#      exact search, QUERIES test images once per ef in EFS; `pomai-cli knn`
#      answers of CHECK_ROWS test images, graph and exact, kept as text).
#   3. SYNCS times: a fresh replica (empty data directory, --replica-of) is
#      started; pomai-repl-bench sync times from its exec to the moment every
#      shard's link is up with repl_applied_lsn equal to its primary shard's
#      last LSN — read from the replica's stats segment every 1 ms (its
#      workers publish every 10 ms; an INFO fan-out would wait for the shards
#      loading the image) — and then until INFO replication says streaming at
#      that LSN on every shard (polled every 10 ms over TCP). The first
#      replica gets the KNN check too, compared with the primary's. Between
#      syncs, LOADS - 1 more loads by hand into a fresh pomaid (placed and
#      sized as a replica, no replication), for a median of both.
# The primary takes no writes while replicas sync.
#
# Placement: SHARDS (default 2) shards; with 1 shard every pomaid runs on
# SERVER_CPU; with more, every pomaid on CPUs 0..SHARDS-1 (taskset and
# --cores), the loader and the checks on CLIENT_CPU — as perf/snapshot_restart.sh.
# Talks to 127.0.0.1 only, on free ports; stops exactly the servers it
# started. About 3 minutes.
#
#   perf/repl_full_sync.sh [--quick]   (--quick: SYNCS=1 LOADS=1 QUERIES=200)
#   BUILD_DIR=dir (default <repo>/build-perf) WORK_DIR=dir (default /var/tmp)
#   SERVER_CPU=1 CLIENT_CPU=0 SHARDS=2 SYNCS=3 LOADS=2 QUERIES=1000 EFS=10,20,80
#   CHECK_ROWS=5 DATA=/usr/share/datasets/fashion-mnist
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

n=${SHARDS:-2}
syncs=${SYNCS:-3}
loads=${LOADS:-2}
knn_queries=${QUERIES:-1000}
knn_efs=${EFS:-10,20,80}
knn_rows=${CHECK_ROWS:-5}
[ "${1:-}" = --quick ] && { syncs=1; loads=1; knn_queries=200; }
train=$knn_data/train-images-idx3-ubyte.gz
pm_need_tools "" taskset ss
pm_need_built "$build" "$pomaid" "$bench" "$repl_bench" "$pomai_cli"
[ -r "$train" ] || { echo "$0: no Fashion-MNIST in $knn_data (apt-get install dataset-fashion-mnist)" >&2; exit 2; }

WORK_DIR=${WORK_DIR:-/var/tmp} pm_work_dir repl_full_sync

arena=$(pm_fmnist_arena "$n")
if [ "$n" = 1 ]; then cpus=$server_cpu; else cpus=$(seq -s, 0 $((n - 1))); fi
pm_header "$@"
pm_header_disk "$work"
pm_header_source "$build"
echo "== $n shard(s); every pomaid on CPU(s) $cpus, loader and checks on CPU $client_cpu;" \
	"arena $arena, seeds $pm_fmnist_seeds per shard; $syncs full sync(s), $loads load(s) by hand"
echo

get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
pcli() { "$pomai_cli" --port "$1" --shards "$n" --tcp "${@:2}"; }
recall_line() { awk '{ printf "%sef %s %s", (NR > 1 ? "; " : ""), $1, $2 }' "$work/recall.$1"; }

# start LOG DIR PORT ARGS: a pomaid of this run's shape; PM_WRAP pins all of it.
start() {
	local log=$1 dir=$2 port=$3
	shift 3
	: >"$log"
	PM_WRAP="taskset -c $cpus" pm_start_pomaid "$log" --bind 127.0.0.1 --wal batch --shards "$n" \
		--cores "$cpus" --base-port "$port" --tcp-port $((port - 1)) --arena-bytes "$arena" \
		--seeds "$pm_fmnist_seeds" --data-dir "$dir" --snapshot-interval-s 0 \
		--snapshot-wal-bytes 0 "$@" ||
		{ echo "$0: pomaid did not start:" >&2; cat "$log" >&2; exit 2; }
}

# load PORT TAG: create the collection and load the train set; prints and
# records the seconds.
load() {
	local port=$1 out t0 t1 s
	pcli "$port" collection create fm --dim 784 --metric l2 --index hnsw --m 16 \
		--ef-construction 200 >/dev/null
	t0=$EPOCHREALTIME
	out=$(taskset -c "$client_cpu" "$pomai_cli" --port "$port" --shards "$n" load "$train" \
		--collection fm --prefix fm: | tail -1)
	t1=$EPOCHREALTIME
	s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	echo "  load by hand ($2): $out; $s s"
	echo "RESULT kind=load tag=$2 load_s=$s" >>"$work/results"
}

# ---------------------------------------------------------------- the primary
pport=$(pm_free_ports "$n" 26001)
replport=$(pm_free_ports 0 $((pport + n + 97)))
start "$work/primary.log" "$work/primary" "$pport" --repl-port "$replport"
ppid=$pomaid_pid pdrain=$pm_pomaid_drain
echo "primary: port $pport, repl_port $replport"
load "$pport" primary
pm_knn_check "$pport" "$n" fm primary
echo "  primary KNN: recall@10 by $(recall_line primary); vectors $(pcli "$pport" info keyspace | tr -d '\r' |
	awk -F: '$1 == "vectors" { print $2; exit }')"

# ---------------------------------------------------------------- replicas
rport=$(pm_free_ports "$n" $((replport + 97)))
for i in $(seq "$syncs"); do
	rm -rf "$work/replica"
	t0=$EPOCHREALTIME
	start "$work/replica-$i.log" "$work/replica" "$rport" --replica-of "127.0.0.1:$replport"
	rpid=$pomaid_pid
	out=$(taskset -c "$client_cpu" "$repl_bench" sync --primary "$pport" --replica "$rport" \
		--shards "$n" --t0 "$t0" --stats "$work/replica/pomaid.stats" --cpus "$client_cpu") ||
		{ echo "$0: full sync $i did not complete: $out" >&2; exit 3; }
	grep -v '^RESULT' <<<"$out" | sed 's/^/  /'
	line=$(grep '^RESULT' <<<"$out")
	sent=$(pcli "$pport" info replication | tr -d '\r' | awk -F: '$1 == "repl_bytes_sent" { print $2; exit }')
	echo "  sync $i: ready ${ready_s} s after exec; $(grep -h 'full sync' "$work/replica-$i.log" |
		sed 's/^pomaid: //' | paste -sd';'); primary's repl_bytes_sent so far $sent"
	echo "RESULT kind=sync round=$i ready_s=$ready_s ${line#RESULT }" >>"$work/results"
	if [ "$i" = 1 ]; then
		pm_knn_check "$rport" "$n" fm replica
		echo "  replica KNN: recall@10 by $(recall_line replica); answers vs the primary's:" \
			"$(pm_knn_same primary replica); vectors $(pcli "$rport" info keyspace | tr -d '\r' |
				awk -F: '$1 == "vectors" { print $2; exit }')"
	fi
	pm_stop_pomaid "$rpid"
	rm -rf "$work/replica"
	if [ "$i" -lt "$loads" ]; then # interleaved: a load by hand into a fresh pomaid
		start "$work/fresh-$i.log" "$work/fresh" "$rport"
		load "$rport" "fresh-$i"
		pm_stop_pomaid
		rm -rf "$work/fresh"
	fi
done
pm_stop_pomaid "$ppid" "$pdrain"

# ---------------------------------------------------------------- summary
loads_s=$(grep 'kind=load' "$work/results" | while read -r l; do get load_s "$l"; done | paste -sd' ')
syncs_s=$(grep 'kind=sync' "$work/results" | while read -r l; do get sync_s "$l"; done | paste -sd' ')
prev_s=$(grep 'kind=sync' "$work/results" | while read -r l; do get prev_s "$l"; done | paste -sd' ')
info_s=$(grep 'kind=sync' "$work/results" | while read -r l; do get info_s "$l"; done | paste -sd' ')
# shellcheck disable=SC2086 # one number per run
lm=$(pm_median $loads_s)
# shellcheck disable=SC2086
sm=$(pm_median $syncs_s)
echo
echo "| shards | load by hand s (runs; median) | full sync s: replica exec to every shard's link up at the primary's LSN (runs; median) | not yet at, s | INFO said streaming at, s | load / sync | recall@10 primary | recall@10 replica | answers |"
echo "| ---: | --- | --- | --- | --- | ---: | --- | --- | --- |"
echo "| $n | ${loads_s// /, }; **$lm** | ${syncs_s// /, }; **$sm** | ${prev_s// /, } | ${info_s// /, } | $(awk -v a="$lm" -v b="$sm" 'BEGIN { printf "%.1fx", a / b }')" \
	"| $(recall_line primary) | $(recall_line replica) | $(pm_knn_same primary replica 2>/dev/null) |"
