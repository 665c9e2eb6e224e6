#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/run.sh — reproduce perf/RESULTS.md: build Pomai in release mode into
# build-perf (configured once, with -Dperf=enabled so a missing FAISS is an error
# rather than a silently skipped benchmark), then run the embedded demo,
# bench_kv and bench_knn with their default settings, printing everything.
#
#   BUILD_DIR=dir   build directory (default: <repo>/build-perf)
#   Any arguments are passed to both benchmarks (e.g. --cpu 1).
#
# Takes about 4 minutes: the demo ~10 s, bench_kv ~40 s, bench_knn ~3 min (FAISS
# as built by Debian is the slow half).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-perf}

if [ -d "$build/meson-info" ]; then
	meson configure "$build" -Dbuildtype=release -Dperf=enabled # in case it was not
else
	meson setup "$build" "$root" --buildtype=release -Dperf=enabled
fi
ninja -C "$build" perf/pomai-demo perf/bench_kv perf/bench_knn

echo "== source: $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
echo "== build:  $build (release)"
echo

"$build/perf/pomai-demo"
echo
"$build/perf/bench_kv" "$@"
echo
"$build/perf/bench_knn" "$@"
