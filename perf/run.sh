#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/run.sh — reproduce perf/RESULTS.md: build Pomai in release mode into
# build-perf (configured once, with -Dperf=enabled so a missing FAISS is an error
# rather than a silently skipped benchmark), then run the embedded demo,
# bench_kv, bench_knn and bench_hnsw with their default settings, printing
# everything; then redraw perf/hnsw_recall_qps.png from bench_hnsw's data file
# (if gnuplot is installed).
#
#   BUILD_DIR=dir   build directory (default: <repo>/build-perf)
#   Any arguments are passed to the three benchmarks (e.g. --cpu 1).
#
# Takes about 13 minutes: the demo ~10 s, bench_kv ~40 s, bench_knn ~3 min (FAISS
# as built by Debian is the slow half), bench_hnsw ~9 min (FAISS's HNSW build
# ~1.5 min, the hnswlib churn runs ~3.5 min).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

root=$pm_root

if [ -d "$build/meson-info" ]; then
	meson configure "$build" -Dbuildtype=release -Dperf=enabled # in case it was not
else
	meson setup "$build" "$root" --buildtype=release -Dperf=enabled
fi
ninja -C "$build" perf/pomai-demo perf/bench_kv perf/bench_knn perf/bench_hnsw

pm_header "$@"
pm_header_source "$build"
echo

"$build/perf/pomai-demo"
echo
"$build/perf/bench_kv" "$@"
echo
"$build/perf/bench_knn" "$@"
echo
status=0 # 3: a pm_hnsw_validate failure, reported above; plot anyway
"$build/perf/bench_hnsw" "$@" --dat "$build/bench_hnsw.dat" || status=$?
if [ -s "$build/bench_hnsw.dat" ] && command -v gnuplot >/dev/null; then
	gnuplot -e "dat='$build/bench_hnsw.dat'; out='$root/perf/hnsw_recall_qps.png'" \
		"$root/perf/plot_hnsw.gp"
	echo "== plot:   $root/perf/hnsw_recall_qps.png"
fi
# pomaid over loopback against redis-server, and KNN over a two-shard pomaid
# (perf/redis_vs_pomai.sh, about 5 minutes; needs redis-server and redis-tools).
echo
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
	ninja -C "$build" dataplane/pomaid perf/pomai-bench
	BUILD_DIR="$build" "$root/perf/redis_vs_pomai.sh" --knn || status=$?
else
	echo "== redis_vs_pomai.sh skipped: apt-get install redis-server redis-tools"
fi
exit $status
