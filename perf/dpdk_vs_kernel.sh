#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/dpdk_vs_kernel.sh — pomaid's three paths on one machine, same load, one
# run: the kernel backend (UDP sockets over loopback), the DPDK backend on a
# net_tap device, and the DPDK backend serving a net_memif port to a
# libpomai_memif client (kernel bypass at both ends).
#
# Everything runs inside a network namespace this script makes (it re-executes
# itself under `unshare --net`): loopback, the tap and the memif socket exist
# only there, and no packet leaves it.
#
# Fairness, by construction: one shard, its worker pinned to SERVER_CPU and
# busy-polling in all three cases; one client thread pinned to CLIENT_CPU
# (pomai-bench --cpus for UDP, the EAL's -l for memif); KEYS keys of 16 bytes
# with 32-byte values preloaded; then GET at depth 1 (light load: latency) and
# GET at depth DEPTH (throughput), each for DURATION seconds after a warm-up.
# Every reply is checked byte for byte by pomai-bench.
#
# What the tap numbers mean: net_tap moves every frame through the kernel's
# tun driver (a read and a write system call per burst on pomaid's side, the
# whole kernel UDP stack on the client's), so it measures the DPDK backend's
# own cost plus a kernel crossing — not a NIC. memif is the kernel-bypass
# figure on this machine: shared-memory rings between two DPDK processes.
#
#   sudo perf/dpdk_vs_kernel.sh [--quick]
#   BUILD_DIR=dir   build directory (default <repo>/build-perf)
#   SERVER_CPU=1 CLIENT_CPU=0 KEYS=100000 DEPTH=64 DURATION=5
#   MEMIF_MTU=1500  the memif link's MTU at both ends (pomaid --dpdk-mtu,
#                   pomai-bench --memif-mtu): packed datagrams fill it (issue 20)
#   PATHS="kernel tap memif"  which paths to measure (default all three; e.g.
#                   PATHS=memif for the kernel-bypass row alone)
#   PROFILE=1       also `perf record -g` pomaid's worker and the client through
#                   the memif depth-DEPTH phase; the top symbols of each follow
#                   the table (what bounds the rate: per packet, per frame, or
#                   the client)
#   PROFILE_KEEP=dir  copy the two perf.data files there (perf.server,
#                   perf.client) for a closer look (perf report -i ...)
set -euo pipefail

if [ -z "${POMAI_IN_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespace, tap, EAL)" >&2; exit 2; }
	POMAI_IN_NETNS=1 exec unshare --net "$0" "$@"
fi
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

keys=${KEYS:-100000}
depth=${DEPTH:-64}
memif_mtu=${MEMIF_MTU:-1500}
profile=${PROFILE:-0}
duration=${DURATION:-5}
paths=" ${PATHS:-kernel tap memif} "
[ "${1:-}" = --quick ] && { keys=20000; duration=2; }
[ -x "$pomaid" ] && [ -x "$bench" ] ||
	{ echo "$0: build first: ninja -C $build dataplane/pomaid perf/pomai-bench" >&2; exit 2; }

pm_work_dir dpdk_vs_kernel
pm_cleanup_hook() { rm -rf /var/run/dpdk/pmbench*; }
ip link set lo up

pm_header "$@"
echo "bench:   1 shard on CPU $server_cpu (busy polling), 1 client thread on CPU $client_cpu," \
	"$keys keys x 32 B, GET depth 1 and $depth, ${duration} s each"
echo

start_pomaid() { # args...
	: >"$work/pomaid.log"
	pm_start_pomaid "$work/pomaid.log" --shards 1 --cores "$server_cpu" --polling busy \
		--tcp-port 0 --arena-bytes 256M --hugepages no --data-dir "$work/var" "$@" ||
		{ echo "$0: pomaid did not start:" >&2; cat "$work/pomaid.log" >&2; exit 2; }
	grep ready "$work/pomaid.log"
}

stop_pomaid() {
	pm_stop_pomaid
}

# One path: preload, GET depth 1, GET depth $depth. $1 = label; the rest are
# pomai-bench's transport arguments.
measure() {
	local label=$1
	shift
	"$bench" "$@" --keys "$keys" --value-size 32 --preload-only >/dev/null
	local wrap=() prof=''
	for d in 1 "$depth"; do
		if [ "$profile" = 1 ] && [ "$label" = dpdk-memif ] && [ "$d" = "$depth" ]; then
			perf record -q -F 2999 -g -p "$pomaid_pid" -o "$work/perf.server" \
				-- sleep $((duration + 1)) >/dev/null 2>&1 &
			prof=$!
			wrap=(perf record -q -F 2999 -g -o "$work/perf.client" --)
		fi
		"${wrap[@]}" "$bench" "$@" --keys "$keys" --value-size 32 --get-only --expect-hits \
			--depth "$d" --duration "$duration" --warmup 1 | grep '^RESULT' |
			sed "s/^RESULT /RESULT path=$label /" | tee -a "$work/results"
		[ -n "$prof" ] && wait "$prof"
		wrap=()
	done
}

# ---------------------------------------------------------------- kernel
if [[ $paths == *" kernel "* ]]; then
start_pomaid --backend kernel --bind 127.0.0.1 --base-port 7700
measure kernel --host 127.0.0.1 --port 7700 --cpus "$client_cpu"
stop_pomaid
fi

# ---------------------------------------------------------------- DPDK, net_tap
if [[ $paths == *" tap "* ]]; then
start_pomaid --backend dpdk --base-port 7700 --dpdk-addrs 10.77.0.2/24 \
	--dpdk-eal-args "--no-pci --no-huge -m 512 --vdev=net_tap0,iface=pmbench0 --file-prefix=pmbenchd --log-level=lib.eal:error"
ip addr add 10.77.0.1/24 dev pmbench0
ip link set pmbench0 up
measure dpdk-tap --host 10.77.0.2 --port 7700 --cpus "$client_cpu"
stop_pomaid
fi

# ---------------------------------------------------------------- DPDK, net_memif
if [[ $paths == *" memif "* ]]; then
sock=$work/memif.sock
start_pomaid --backend dpdk --base-port 7700 --dpdk-addrs 10.88.0.2/24 --dpdk-mtu "$memif_mtu" \
	--dpdk-eal-args "--no-pci --no-huge -m 512 --file-prefix=pmbenchd --log-level=lib.eal:error --vdev=net_memif0,role=server,socket=$sock,socket-abstract=no,mac=02:00:00:00:88:02"
memif_eal="-l $client_cpu --no-huge --no-pci -m 256 --file-prefix=pmbenchc --log-level=lib.eal:error --vdev=net_memif0,role=client,socket=$sock,socket-abstract=no,mac=02:00:00:00:88:01"
measure dpdk-memif --host 10.88.0.2 --port 7700 --memif "$memif_eal" --memif-ip 10.88.0.1/24 \
	--memif-mtu "$memif_mtu"
stop_pomaid
fi

echo
echo "| path | depth | GET/s | p50 us | p99 us | p99.9 us |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
while read -r line; do
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	printf "| %s | %s | %.0f | %s | %s | %s |\n" "$(get path)" "$(get depth)" "$(get ops_s)" \
		"$(get p50_us)" "$(get p99_us)" "$(get p999_us)"
done <"$work/results"

if [ "$profile" = 1 ]; then
	[ -n "${PROFILE_KEEP:-}" ] && mkdir -p "$PROFILE_KEEP" &&
		cp "$work/perf.server" "$work/perf.client" "$PROFILE_KEEP/"
	for side in server client; do
		echo
		echo "perf profile, memif depth $depth, $side (self time, top symbols):"
		perf report -i "$work/perf.$side" --no-children --stdio --sort symbol 2>&1 |
			grep -E '^ +[0-9.]+%' | head -25 || true
	done
fi
