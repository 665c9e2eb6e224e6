#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh — fuzz every target (or those named) for a fixed time, P at a time,
# from a libFuzzer build (-Dfuzz=libfuzzer, CC=clang, ASan+UBSan). Each target
# starts from a copy of its seed corpus in a scratch directory, so the corpus
# in git is never written. Prints per target: executions, exec/s, final
# cov/ft, corpus size, peak RSS and crash artifacts, and writes that table to
# OUT/summary.txt. Exits non-zero if any target crashed, leaked, timed out,
# ran out of memory or broke an invariant.
#
#   tests/fuzz/run.sh [-b BUILD/tests/fuzz] [-t SECONDS] [-j P] [-o OUT] [target ...]
#
# SECONDS defaults to $POMAI_FUZZ_SECONDS or 60; OUT to a fresh mktemp dir
# (kept: corpora and crash inputs are there). Targets: frame netfe wal
# snapshot config admin repl cluster_map etcd filter auth. Limits: -rss_limit_mb=$FUZZ_RSS_MB (1024),
# -malloc_limit_mb=$FUZZ_MALLOC_MB (256), -timeout=$FUZZ_TIMEOUT_S (30: a loaded CI machine
# stalls) per input.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build="$here/../../build-fuzz/tests/fuzz"
secs=${POMAI_FUZZ_SECONDS:-60}
par=2
out=""
while getopts "b:t:j:o:" o; do
	case $o in
	b) build=$OPTARG ;;
	t) secs=$OPTARG ;;
	j) par=$OPTARG ;;
	o) out=$OPTARG ;;
	*) sed -n '4,20p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame netfe wal snapshot config admin repl cluster_map etcd filter auth)
[ -n "$out" ] || out=$(mktemp -d /tmp/pomai-fuzz.XXXXXX)
mkdir -p "$out"

rss_mb=${FUZZ_RSS_MB:-1024}
malloc_mb=${FUZZ_MALLOC_MB:-256}
timeout_s=${FUZZ_TIMEOUT_S:-30}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# One target: its scratch corpus, its log, its exit status in $out/$t.rc.
run_one() {
	local t=$1 exe="$build/fuzz_$1" dir="$out/$1"
	rm -rf "$dir"
	mkdir -p "$dir/corpus" "$dir/artifacts"
	cp "$here/corpus/$t/"* "$dir/corpus/"
	local rc=0
	"$exe" -max_total_time="$secs" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$malloc_mb" \
		-timeout="$timeout_s" -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
		"$dir/corpus" >"$dir/log" 2>&1 || rc=$?
	echo "$rc" >"$dir/rc"
}

# The numbers of one finished target, as a table row.
row() {
	local t=$1 dir="$out/$1" last execs eps rss files crashes rc
	rc=$(cat "$dir/rc")
	last=$(grep -E '^#[0-9]+.*cov: ' "$dir/log" | tail -n1 || true)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log")
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$dir/log")
	files=$(find "$dir/corpus" -type f | wc -l)
	crashes=$(find "$dir/artifacts" -type f ! -name 'slow-unit-*' | wc -l)
	printf '%-11s %4s %11s %8s %7s %7s %7s %6s %8s\n' "$t" "$rc" "${execs:-?}" "${eps:-?}" \
		"$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")" \
		"$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")" "$files" "${rss:-?}" "$crashes"
}

running=0
for t in "${targets[@]}"; do
	[ -x "$build/fuzz_$t" ] || { echo "run.sh: no $build/fuzz_$t (build with -Dfuzz=libfuzzer)" >&2; exit 2; }
	run_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$par" ]; then
		wait -n || true
		running=$((running - 1))
	fi
done
wait || true

status=0
{
	echo "fuzzing ${secs}s per target, $par at a time; output in $out"
	printf '%-11s %4s %11s %8s %7s %7s %7s %6s %8s\n' target rc executions exec/s cov ft corpus rss_mb crashes
	for t in "${targets[@]}"; do
		row "$t"
	done
} | tee "$out/summary.txt"
for t in "${targets[@]}"; do
	# slow-unit-* files are a report (a slow input, or a loaded machine), not a failure
	if [ "$(cat "$out/$t/rc")" != 0 ] ||
		[ -n "$(find "$out/$t/artifacts" -type f ! -name 'slow-unit-*')" ]; then
		status=1
		echo "--- $t failed: $out/$t/log (last lines):"
		tail -n 40 "$out/$t/log"
		ls -l "$out/$t/artifacts"
	fi
done
exit $status
