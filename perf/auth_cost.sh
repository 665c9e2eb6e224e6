#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/auth_cost.sh — what authentication costs a GET (issue 19): bench_auth
# against one pomaid, GETs at depth 1 without a user and with one (every
# frame signed by libpomai with SipHash-128, verified by pomaid), interleaved
# round by round in one process; over kernel UDP (loopback), then over a DPDK
# memif port (libpomai_memif: kernel bypass at both ends).
#
# Inside a network namespace this script makes (it re-executes itself under
# `unshare --net`). One shard, its worker busy-polling on SERVER_CPU; the
# client on CLIENT_CPU (memif: the EAL's -l). auth = off on the server: a
# trailer is verified all the same, so the signed side pays the whole cost
# (sign, 40 more bytes each way's request, verify, replay window) and both
# sides run against the same daemon at the same moment.
#
#   sudo perf/auth_cost.sh [--quick]
#   BUILD_DIR=dir   build directory (default <repo>/build-perf)
#   SERVER_CPU=1 CLIENT_CPU=0 ROUNDS=10 OPS=20000
set -euo pipefail

if [ -z "${POMAI_IN_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespace, EAL)" >&2; exit 2; }
	POMAI_IN_NETNS=1 exec unshare --net "$0" "$@"
fi
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

rounds=${ROUNDS:-10}
ops=${OPS:-20000}
[ "${1:-}" = --quick ] && { rounds=4; ops=5000; }
bench_auth=$build/perf/bench_auth
ctl=$build/control/pomaictl
[ -x "$pomaid" ] && [ -x "$bench_auth" ] && [ -x "$ctl" ] ||
	{ echo "$0: build first: ninja -C $build dataplane/pomaid perf/bench_auth control/pomaictl" >&2; exit 2; }

pm_work_dir auth_cost
pm_cleanup_hook() { rm -rf /var/run/dpdk/pmauth*; }
ip link set lo up

pm_header "$@"
pm_header_source "$build"
echo "bench:   1 shard on CPU $server_cpu (busy polling), 1 client on CPU $client_cpu," \
	"GET depth 1, $rounds rounds x $ops GETs per side, interleaved"
echo

start_pomaid() { # args...
	: >"$work/pomaid.log"
	pm_start_pomaid "$work/pomaid.log" --shards 1 --cores "$server_cpu" --polling busy \
		--tcp-port 0 --arena-bytes 256M --hugepages no --data-dir "$work/var" "$@" ||
		{ echo "$0: pomaid did not start:" >&2; cat "$work/pomaid.log" >&2; exit 2; }
	grep ready "$work/pomaid.log"
}

# The bench user (once: the users file stays in data_dir for the next pomaid).
add_user() {
	[ -s "$work/key" ] && return 0
	"$ctl" --socket "$work/var/admin.sock" user add bench read,write 2>/dev/null |
		sed -n 's/^key://p' >"$work/key"
	[ -s "$work/key" ] || { echo "$0: user add failed" >&2; exit 2; }
}

measure() { # args: bench_auth's transport arguments
	${PM_MEASURE_WRAP:-} "$bench_auth" "$@" --shards 1 --user 1 --key-file "$work/key" --rounds "$rounds" \
		--ops "$ops" | grep -E '^(RESULT|DIFF)' | tee -a "$work/results"
}

# ---------------------------------------------------------------- kernel UDP
start_pomaid --backend kernel --bind 127.0.0.1 --base-port 7700
add_user
PM_MEASURE_WRAP="taskset -c $client_cpu" measure --host 127.0.0.1 --port 7700
pm_stop_pomaid

# ---------------------------------------------------------------- DPDK, net_memif
sock=$work/memif.sock
start_pomaid --backend dpdk --base-port 7700 --dpdk-addrs 10.88.0.2/24 \
	--dpdk-eal-args "--no-pci --no-huge -m 512 --file-prefix=pmauthd --log-level=lib.eal:error --vdev=net_memif0,role=server,socket=$sock,socket-abstract=no,mac=02:00:00:00:88:02"
memif_eal="-l $client_cpu --no-huge --no-pci -m 256 --file-prefix=pmauthc --log-level=lib.eal:error --vdev=net_memif0,role=client,socket=$sock,socket-abstract=no,mac=02:00:00:00:88:01"
measure --host 10.88.0.2 --port 7700 --memif "$memif_eal" --memif-ip 10.88.0.1/24
pm_stop_pomaid

echo
echo "| path | auth | GET/s | p50 us | p99 us |"
echo "| --- | --- | ---: | ---: | ---: |"
grep '^RESULT' "$work/results" | while read -r line; do
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	printf "| %s | %s | %s | %s | %s |\n" "$(get transport)" "$(get auth)" "$(get ops_s)" \
		"$(get p50_us)" "$(get p99_us)"
done
grep '^DIFF' "$work/results"
