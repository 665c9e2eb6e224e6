#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# setup-test.sh — install, build and run every Pomai test suite, twice: a
# normal build with warnings as errors, and an ASan+UBSan build; then the fuzz
# targets for 20 s each (build-fuzz). Ends with one line "N passed, N
# failed, N skipped" totalling the three runs. Exits non-zero if
# any test failed, or (when CI=true) if any test was skipped: CI must run
# everything this machine can run.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
pomai_install_deps

configure() { # dir, options...
	local dir=$1
	shift
	if [ -d "$dir/meson-info" ]; then
		meson setup --reconfigure "$dir" "$@"
	else
		meson setup "$dir" "$@"
	fi
}

configure build-test -Dwerror=true --buildtype=debugoptimized
configure build-asan -Dwerror=true --buildtype=debug -Db_sanitize=address,undefined \
	-Db_lundef=false -Dperf=disabled

status=0
ninja -C build-test
meson test -C build-test --print-errorlogs --num-processes 2 --no-suite soak || status=1
ninja -C build-asan
ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-asan --print-errorlogs --num-processes 2 || status=1

# Fuzzing (docs/fuzzing.md): the targets under libFuzzer with ASan+UBSan, each
# for POMAI_FUZZ_SECONDS (default 20: a dozen targets, two at a time, beside the
# 180 s soak; CI's whole run stays under 20 minutes). Built first: the soak
# below runs beside the fuzzing, not beside a compiler.
CC=clang configure build-fuzz -Dfuzz=libfuzzer -Dwerror=true --buildtype=debugoptimized \
	-Db_sanitize=address,undefined -Db_lundef=false -Dperf=disabled -Ddpdk=disabled
ninja -C build-fuzz fuzz-targets

# The soak (docs/soak.md, 180 s) runs beside the fuzz stage: its verdict
# compares the run with itself (wrong replies, memory growth, the last third's
# latency against the first's), and the fuzzers load it from start to end, so
# the 3 minutes need not be spent alone. Its log is meson-logs/soaklog.json.
meson test -C build-test --no-rebuild --print-errorlogs --suite soak --logbase soaklog &
soak=$!
POMAI_FUZZ_SECONDS=${POMAI_FUZZ_SECONDS:-20} meson test -C build-fuzz --no-rebuild \
	--print-errorlogs --num-processes 2 --suite fuzz || status=1
wait $soak || status=1

python3 scripts/test-totals.py build-test build-asan build-fuzz || status=1
exit $status
