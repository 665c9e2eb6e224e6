# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# perf/lib.sh — what the perf scripts share. Each perf/*.sh sources it right
# after `set -euo pipefail`:
#
#   . "$(dirname "$0")/lib.sh"
#
# and then has:
#   pm_root                   the repository (the directory above perf/)
#   build, pomaid, bench      the build the benchmarks run from (BUILD_DIR,
#                             default <repo>/build-perf), its pomaid and
#                             pomai-bench
#   server_cpu, client_cpu    where servers and load generators are pinned
#                             (SERVER_CPU, default 1; CLIENT_CPU, default 0)
#   pm_header                 the command, the date, the machine (CPUs, model,
#                             kernel) and its load: the first lines of every run
#   pm_header_disk DIR        the file system DIR is on
#   pm_header_source BUILD    the source BUILD was configured from: its git
#                             commit and whether engine/ or dataplane/ differ
#                             from it (SOURCE_NOTE when it is no git checkout)
#   pm_port_free PORT         nothing is bound to PORT (TCP or UDP)
#   pm_free_ports SPAN [FROM] a base port B with B-1 .. B+SPAN all free, from
#                             FROM up (pomaid: TCP on B-1, shard i on B+i)
#   pm_work_dir PREFIX        a fresh directory in WORK_DIR (default /tmp),
#                             into work (and pm_work); removed at exit
#   pm_track PID              a process the script started: stopped at exit
#   pm_stop PID               stop one now (SIGTERM, then waited for)
#   pm_start_pomaid LOG ARGS  $pomaid (under PM_WRAP, e.g. "taskset -c 1
#                             stdbuf -oL") with ARGS, everything it prints
#                             appended to LOG; back once its ready line is
#                             there, with pomaid_pid and ready_s (seconds from
#                             exec to ready); 1 if it exited first or missed
#                             PM_READY_WAIT_S (LOG says why)
#   pm_stop_pomaid [PID DRAIN] SIGTERM to it, its exit and its output waited
#                             for; PID DRAIN: one started earlier (its
#                             pomaid_pid and pm_pomaid_drain, kept by the
#                             script when it runs two pomaids at once)
#   pm_pomai_streaming PORT SHARDS   wait until every shard of the pomaid on
#                             PORT says repl_link:streaming (PM_LINK_WAIT_S)
#   pm_start_redis CPU DIR ARGS  redis-server pinned to CPU, its files in DIR
#                             (created), on a free port, with ARGS; back once
#                             it answers PING, with redis_pid and redis_port
#   pm_redis_link_up PORT     wait until the replica on PORT says
#                             master_link_status:up (PM_LINK_WAIT_S)
#   pm_median NUMBERS...      their median
#   pm_fmnist_arena SHARDS    --arena-bytes for the Fashion-MNIST HNSW
#                             collection over SHARDS shards (with --seeds
#                             $pm_fmnist_seeds)
#   pm_knn_check PORT SHARDS COLL TAG   KNN answers of the pomaid on PORT now:
#                             pomai-bench --knn (knn_queries test images once
#                             per ef of knn_efs, recall@10 against the
#                             server's exact search) into $pm_work/recall.TAG
#                             ("ef recall" lines), and pomai-cli knn of the
#                             first knn_rows test images (graph at ef 10, and
#                             exact) into $pm_work/ans.TAG; knn_data is the
#                             Fashion-MNIST directory
#   pm_knn_same A B           "identical" if the answers of checks A and B
#                             are, else "DIFFERENT" (the diff on stderr)
#   pomai_cli, repl_bench     the build's pomai-cli and pomai-repl-bench
#
# At exit (trap EXIT) pm_cleanup calls the script's pm_cleanup_hook if it has
# one, stops every tracked process still running (by pid: only what the
# script started) and removes pm_work.
#
# Waiting for pomaid costs no CPU: its output comes through a FIFO this shell
# blocks on (read -t), not a log polled with grep (100 forks a second on a
# 2-core machine would be part of what is measured). Once the ready line is
# there, cat appends the rest of the output to LOG.

# How long pomaid may take to print its ready line: a replay of a long log
# (perf/snapshot_restart.sh rebuilds a 60,000-node graph in ~30 s) many times
# over, on a machine other jobs load. A bound, not a delay.
PM_READY_WAIT_S=${PM_READY_WAIT_S:-300}

pm_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC2034 # the scripts' knobs: each uses those it needs
{
	build=${BUILD_DIR:-$pm_root/build-perf}
	pomaid=$build/dataplane/pomaid
	bench=$build/perf/pomai-bench
	repl_bench=$build/perf/pomai-repl-bench
	pomai_cli=$build/client/pomai-cli
	server_cpu=${SERVER_CPU:-1}
	client_cpu=${CLIENT_CPU:-0}
}
pm_work=
pm_pids=()
pomaid_pid=
pm_pomaid_drain=
# shellcheck disable=SC2034 # for the scripts: set by pm_start_pomaid
ready_s=

# ---------------------------------------------------------------- the header

pm_header() {
	echo "command: $0 $*"
	echo "date:    $(date -u +%FT%TZ)"
	echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(uname -r)"
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the start"
}

pm_header_disk() {
	echo "disk:    $(df -hT "$1" | awk 'NR == 2 { print $1, $2, $3 }') ($1)"
}

pm_header_source() {
	local dir=$1 src srcv
	src=$(sed -n 's/.*"source": "\([^"]*\)".*/\1/p' "$dir/meson-info/meson-info.json" 2>/dev/null)
	src=${src:-$pm_root}
	if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
		srcv="git $(git -C "$src" rev-parse --short HEAD)$(git -C "$src" diff --quiet HEAD -- engine dataplane ||
			echo ', engine/dataplane modified')"
	else
		srcv="not a git checkout${SOURCE_NOTE:+: $SOURCE_NOTE}"
	fi
	echo "build:   $dir (source $src, $srcv)"
}

# ---------------------------------------------------------------- ports

pm_port_free() {
	[ -z "$(ss -Htuan "( sport = :$1 )")" ]
}

pm_free_ports() {
	local span=$1 from=${2:-21000} base p ok
	for base in $(seq "$from" 97 60000); do
		ok=1
		for p in $(seq $((base - 1)) $((base + span))); do
			pm_port_free "$p" || { ok=0; break; }
		done
		[ "$ok" = 1 ] && { echo "$base"; return; }
	done
	echo "$0: no free ports" >&2
	exit 2
}

# ---------------------------------------------------------------- processes

pm_track() {
	pm_pids+=("$1")
}

pm_untrack() {
	local p kept=()
	for p in "${pm_pids[@]}"; do
		[ "$p" = "$1" ] || kept+=("$p")
	done
	pm_pids=("${kept[@]}")
}

pm_stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	pm_untrack "$1"
}

pm_work_dir() {
	pm_work=$(mktemp -d "${WORK_DIR:-/tmp}/$1.XXXXXX")
	# shellcheck disable=SC2034 # the script's name for it
	work=$pm_work
}

pm_cleanup() {
	local p
	if declare -F pm_cleanup_hook >/dev/null; then
		pm_cleanup_hook || true
	fi
	for p in "${pm_pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pm_pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	pm_pids=()
	if [ -n "$pm_work" ]; then
		rm -rf "$pm_work"
	fi
}
trap pm_cleanup EXIT

# ---------------------------------------------------------------- pomaid

pm_start_pomaid() {
	local log=$1 fifo fd t0 t1 line='' left deadline
	shift
	fifo=$(mktemp -u "${pm_work:-/tmp}/pomaid-out.XXXXXX")
	mkfifo "$fifo"
	# The clock starts in the child, just before it execs (PM_WRAP's words,
	# then pomaid): the shell's fork of itself, several ms on a VM, is this
	# harness's cost, not pomaid's start-up. ("$fifo.t0" is written before the
	# exec; the ready line comes after it.)
	# shellcheck disable=SC2086 # PM_WRAP is a command and its words
	(printf '%s\n' "$EPOCHREALTIME" >"$fifo.t0"
	 exec ${PM_WRAP:-} "${pomaid:?pm_start_pomaid: set pomaid}" "$@") >"$fifo" 2>&1 &
	pomaid_pid=$!
	pm_track "$pomaid_pid"
	exec {fd}<"$fifo"
	# (the fifo's name goes once pomaid is ready: an rm now, a process of its
	# own, would share the CPUs with the start being timed)
	deadline=$((SECONDS + PM_READY_WAIT_S))
	while left=$((deadline - SECONDS)) && [ "$left" -gt 0 ] &&
		IFS= read -r -t "$left" -u "$fd" line; do
		printf '%s\n' "$line" >>"$log"
		[[ $line == "pomaid: ready"* ]] && break
		line=
	done
	if [[ $line != "pomaid: ready"* ]]; then # it exited, or was too slow
		rm -f "$fifo" "$fifo.t0"
		exec {fd}<&-
		pm_stop "$pomaid_pid"
		pomaid_pid=
		return 1
	fi
	t1=$EPOCHREALTIME
	read -r t0 <"$fifo.t0"
	# shellcheck disable=SC2034 # the script's to read
	ready_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	rm -f "$fifo" "$fifo.t0"
	cat <&"$fd" >>"$log" &
	pm_pomaid_drain=$!
	pm_track "$pm_pomaid_drain"
	exec {fd}<&-
}

# shellcheck disable=SC2120 # the arguments are optional
pm_stop_pomaid() {
	local pid=${1:-$pomaid_pid} drain=${2:-$pm_pomaid_drain}
	[ -n "$pid" ] || return 0
	pm_stop "$pid"
	# cat ends with pomaid's output
	wait "$drain" 2>/dev/null || true
	pm_untrack "$drain"
	if [ "$pid" = "$pomaid_pid" ]; then
		pomaid_pid=
		pm_pomaid_drain=
	fi
}

# How long a replica may take to reach its primary (a link up, streaming):
# a bound, not a delay; the waits poll every PM_POLL_S.
PM_LINK_WAIT_S=${PM_LINK_WAIT_S:-60}
PM_POLL_S=0.1

pm_pomai_streaming() {
	local port=$1 shards=$2 deadline=$((SECONDS + PM_LINK_WAIT_S)) n
	while [ "$SECONDS" -lt "$deadline" ]; do
		n=$("$pomai_cli" --port "$port" --shards "$shards" --tcp info replication 2>/dev/null |
			tr -d '\r' | grep -c '^repl_link:streaming$') || true
		[ "$n" = "$shards" ] && return 0
		sleep "$PM_POLL_S"
	done
	echo "$0: the replica on port $port is not streaming after ${PM_LINK_WAIT_S} s" >&2
	return 1
}

# ---------------------------------------------------------------- redis

pm_start_redis() {
	local cpu=$1 dir=$2 _
	shift 2
	mkdir -p "$dir"
	redis_port=$(pm_free_ports 1 23001)
	taskset -c "$cpu" redis-server --bind 127.0.0.1 --port "$redis_port" --protected-mode yes \
		--daemonize no --dir "$dir" --logfile "$dir/redis.log" "$@" &
	redis_pid=$!
	pm_track "$redis_pid"
	for _ in $(seq 100); do
		redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && return 0
		sleep "$PM_POLL_S"
	done
	echo "$0: redis-server did not start (see $dir/redis.log)" >&2
	return 1
}

pm_redis_link_up() {
	local deadline=$((SECONDS + PM_LINK_WAIT_S))
	while [ "$SECONDS" -lt "$deadline" ]; do
		redis-cli -p "$1" info replication 2>/dev/null | grep -q '^master_link_status:up' && return 0
		sleep "$PM_POLL_S"
	done
	echo "$0: the redis replica on port $1 has no link after ${PM_LINK_WAIT_S} s" >&2
	return 1
}

# ---------------------------------------------------------------- Fashion-MNIST

# 60,000 vectors x 3,328 B (64 B header + 3,136 B of floats + 128 B of level-0
# links: one size class) spread over the shards, +10 % for an uneven hash
# spread and the upper levels, + the seeds, + 64 MiB for everything else.
pm_fmnist_seeds=131072
pm_fmnist_arena() {
	# shellcheck disable=SC2017 # whole vectors per shard first, as ever
	echo $(((60000 / $1 * 11 / 10 * 3328 + pm_fmnist_seeds * 64 + (64 << 20)) >> 20))M
}

knn_data=${DATA:-/usr/share/datasets/fashion-mnist}
knn_queries=1000
knn_efs=10,20,80
knn_rows=5

pm_knn_check() {
	local port=$1 shards=$2 coll=$3 tag=$4 out r mode
	out=$("$bench" --port "$port" --shards "$shards" --knn --collection "$coll" --data "$knn_data" \
		--queries "$knn_queries" --ef "$knn_efs" --requests "$knn_queries" --warmup 0 --depth 1 \
		--cpus "$client_cpu" | grep '^RESULT phase=knn') ||
		{ echo "pomai-bench failed" >"$pm_work/recall.$tag"; return 1; }
	sed -n 's/.* ef=\([0-9]*\) .* recall=\([^ ]*\).*/\1 \2/p' <<<"$out" >"$pm_work/recall.$tag"
	: >"$pm_work/ans.$tag"
	for r in $(seq 0 $((knn_rows - 1))); do
		for mode in "--ef 10" --exact; do
			# shellcheck disable=SC2086 # mode is one or two words
			taskset -c "$client_cpu" "$pomai_cli" --port "$port" --shards "$shards" knn \
				--file "$knn_data/t10k-images-idx3-ubyte.gz" --row "$r" --k 10 $mode \
				--collection "$coll" >>"$pm_work/ans.$tag" 2>&1 || true
		done
	done
}

pm_knn_same() {
	if cmp -s "$pm_work/ans.$1" "$pm_work/ans.$2"; then
		echo identical
	else
		echo DIFFERENT
		diff "$pm_work/ans.$1" "$pm_work/ans.$2" | head -20 | sed 's/^/    /' >&2
	fi
}

# ---------------------------------------------------------------- what a script needs

# pm_need_tools HINT TOOL...: each tool on the PATH, or exit 2 saying what to
# install (HINT: the Debian packages, "" for none).
pm_need_tools() {
	local hint=$1 t
	shift
	for t in "$@"; do
		command -v "$t" >/dev/null ||
			{ echo "$0: $t not found${hint:+ (apt-get install $hint)}" >&2; exit 2; }
	done
}

# pm_need_built BUILD FILE...: each file executable, or exit 2 naming the build.
pm_need_built() {
	local build=$1 f
	shift
	for f in "$@"; do
		[ -x "$f" ] || { echo "$0: build $build first ($f)" >&2; exit 2; }
	done
}

# ---------------------------------------------------------------- numbers

pm_median() {
	printf '%s\n' "$@" | grep . | sort -g |
		awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
