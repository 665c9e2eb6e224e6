#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# deps.sh — install Pomai's build and test dependencies from Debian 12.
# Sourced by setup-run.sh and setup-test.sh. Uses sudo when not root.
#
#   POMAI_DEPS_EXTRA="pkg ..."   more packages for this run (e.g. the dataset)
set -euo pipefail

POMAI_DEPS=(
	build-essential pkg-config meson ninja-build python3
	libxxhash-dev      # XXH3-64: the key hash shared with clients (engine)
	libcunit1-dev      # unit test framework (tests)
	zlib1g-dev         # reading the gzipped Fashion-MNIST files (perf/, demo, pomai-cli load)
	libhwloc-dev       # placing shard workers on cores and NUMA nodes (pomaid)
	libdpdk-dev        # the DPDK backend (pomaid) and libpomai's memif transport; pulls the PMDs
	liburing-dev       # the write-ahead log's I/O (pomaid)
	libmicrohttpd-dev  # pomai-control's /metrics HTTP server (control/metrics_http.c says why a library)
	# the cluster (docs/cluster.md): pomai-control speaks to etcd's v3 JSON gateway
	# over HTTP with libcurl (OpenSSL flavour: the one Debian's curl uses) and
	# builds/checks the JSON with jansson (control/etcd.c says why these two)
	libcurl4-openssl-dev libjansson-dev
	# who may speak (issue 19, proto/auth.h says why): keyed SipHash and
	# BLAKE2b for frame MACs, cookies and key derivation, and the kernel's
	# random bytes for keys, challenges and cookie secrets
	libsodium-dev
	# pomai-cli's interactive prompt: line editing and history (libedit, BSD
	# licensed, rather than GNU readline: client/cli_repl.c says why)
	libedit-dev
	etcd-server        # the cluster suites start their own etcd on loopback ports
	iproute2           # the cluster suite partitions a node from etcd in a network namespace
	strace             # tests/test_noblock: no blocking file-system call on a worker thread
	prometheus         # promtool: tests check pomai-control's /metrics text with 'promtool check metrics'
	# the power-loss test (tests/lazyfs.c, test_powerloss): a FUSE file system
	# that drops what no fsync covered; the kernel here has no device-mapper
	libfuse3-dev fuse3
	# fuzzing (tests/fuzz, docs/fuzzing.md): setup-test.sh builds the fuzz
	# targets with clang and links them with libFuzzer, which Debian ships
	# in clang's runtime package
	clang libclang-rt-14-dev
	# the Python client (client/python, docs/python.md) and its suite: cffi
	# loads libpomai.so, NumPy holds vectors, setuptools and pip install it
	# offline into a venv (python3-venv); the suite loads Fashion-MNIST
	python3-numpy python3-cffi python3-setuptools python3-pip python3-venv python3-pytest
	dataset-fashion-mnist
	# the Debian packages (debian/, tests/package_test.py): dpkg-buildpackage
	# with debhelper, and systemd-analyze to verify the units
	debhelper devscripts dpkg-dev systemd
)

pomai_install_deps() {
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	# shellcheck disable=SC2206
	local extra=(${POMAI_DEPS_EXTRA:-})
	local missing=()
	for p in "${POMAI_DEPS[@]}" "${extra[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		echo "deps: all ${#POMAI_DEPS[@]} base packages present"
		return 0
	fi
	echo "deps: installing ${missing[*]}"
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}
