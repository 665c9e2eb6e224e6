#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# setup-run.sh — install, build and run Pomai on its embedded default.
#
# Until the pomaid daemon lands, "running Pomai" is the embedded demo: one shard
# in this process loads Fashion-MNIST (60,000 x 784) from Debian's
# dataset-fashion-mnist package, answers KNN queries, and prints recall against
# an exact search it computes itself, queries/s, and the shard's memory INFO.
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
exec ./build/perf/pomai-demo "$@"
