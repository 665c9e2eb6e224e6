#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# setup-run.sh — install, build and run Pomai on its embedded default: pomaid
# in the foreground, kernel-socket backend on 127.0.0.1 (UDP 7700 + shard,
# TCP 7699), shards = min(cores, 4), adaptive polling, files under ./var/pomai.
# Stop it with Ctrl-C. Extra arguments go to pomaid (try --help).
#
# Also installs Debian's dataset-fashion-mnist, which the README's next
# commands load with pomai-cli, and builds ./build/perf/pomai-demo (the same
# data in one in-process shard, exact and HNSW search checked against an
# independent exact search).
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
POMAI_DEPS_EXTRA="dataset-fashion-mnist ${POMAI_DEPS_EXTRA:-}" pomai_install_deps

if [ -d build/meson-info ]; then
	meson setup --reconfigure build --buildtype=release
else
	meson setup build --buildtype=release
fi
ninja -C build
exec ./build/dataplane/pomaid "$@"
