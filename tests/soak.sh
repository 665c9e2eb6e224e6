#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# soak.sh — run pomai-soak against a fresh pomaid for a set time (docs/soak.md).
#
#   tests/soak.sh [--seconds N] [--threads N] [--sample-s N] [--csv FILE]
#                 [--plot PNG] [--keep] [--auth] [--build DIR | --soak PATH --pomaid PATH]
#   --auth: pomaid with auth = on, every request a user's (issue 19)
#
# Makes a temporary data directory (WAL on, 2 shards; pomai-soak starts
# pomaid there on free loopback ports), runs the soak, prints its report and
# exits with its status: 0 pass, 1 fail, 2 could not run. The CSV of samples
# goes to --csv (default: inside the data directory, which is removed unless
# --keep or a failure); --plot draws it with perf/plot_soak.gp (gnuplot).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
seconds=180 threads="" sample="" csv="" plot="" keep=0 build="" soak="" pomaid="" auth=0
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) seconds=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	--sample-s) sample=$2; shift 2 ;;
	--csv) csv=$2; shift 2 ;;
	--plot) plot=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	--auth) auth=1; shift ;;
	--build) build=$2; shift 2 ;;
	--soak) soak=$2; shift 2 ;;
	--pomaid) pomaid=$2; shift 2 ;;
	*) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

if [ -z "$soak" ] || [ -z "$pomaid" ]; then
	build=${build:-$here/../build}
	soak=${soak:-$build/tests/pomai-soak}
	pomaid=${pomaid:-$build/dataplane/pomaid}
fi
for f in "$soak" "$pomaid"; do
	[ -x "$f" ] || { echo "soak.sh: $f is not built (--build DIR)" >&2; exit 2; }
done

dir=$(mktemp -d /tmp/pomai-soak-XXXXXX)
csv=${csv:-$dir/soak.csv}
args=(--pomaid "$pomaid" --data-dir "$dir" --seconds "$seconds" --csv "$csv")
[ -n "$threads" ] && args+=(--threads "$threads")
[ -n "$sample" ] && args+=(--sample-s "$sample")
[ "$auth" -eq 1 ] && args+=(--auth)

echo "soak.sh: $seconds s, data in $dir, samples in $csv"
rc=0
"$soak" "${args[@]}" || rc=$?

if [ -n "$plot" ]; then
	if command -v gnuplot > /dev/null; then
		gnuplot -e "csv='$csv'; out='$plot'" "$here/../perf/plot_soak.gp" &&
			echo "soak.sh: plot in $plot"
	else
		echo "soak.sh: no gnuplot (apt-get install gnuplot-nox); no plot" >&2
	fi
fi
if [ "$keep" -eq 1 ] || [ "$rc" -ne 0 ]; then
	echo "soak.sh: kept $dir (pomaid.log, the CSV)"
else
	rm -rf "$dir"
fi
exit "$rc"
