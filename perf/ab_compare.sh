#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# perf/ab_compare.sh — one perf script run against two builds in one sitting,
# rounds interleaved (A B B A A B …), and every row of its tables compared:
# the median of each numeric column over the B rounds divided by the median over
# the A rounds. For "is this change slower?" questions (issue 15: the worker
# refactor must not cost more than 5 % in any row): A is a build of the
# previous commit, B of the change; the machine's drift between rounds hits
# both sides alike.
#
#   perf/ab_compare.sh SCRIPT BUILD_A BUILD_B [script args...]
#   ROUNDS=4   rounds per side (an even number keeps the pattern balanced)
#   OUT=dir    where the raw outputs go (default: a temp dir, printed)
#
#   perf/ab_compare.sh --report DIR ROUNDS   the comparison of an earlier run
#
# SCRIPT is one of the perf/*.sh that take BUILD_DIR and print markdown
# tables (redis_vs_pomai.sh, dpdk_vs_kernel.sh). Rows are matched by their
# words and load-setting numbers (depth, ef, k …); columns by the header. Columns whose name says latency
# (p50/p99/us) are "lower is better": read their ratio the other way.
set -euo pipefail

[ $# -ge 3 ] || { sed -n '2,24p' "$0" >&2; exit 2; }
if [ "$1" = --report ]; then
	out=$2 rounds=$3 report_only=1
else
	report_only=0
	script=$1 a=$2 b=$3
	shift 3
	rounds=${ROUNDS:-4}
	out=${OUT:-$(mktemp -d /tmp/pomai-ab.XXXXXX)}
	mkdir -p "$out"
fi
[ $report_only = 1 ] || {
. "$(dirname "$0")/lib.sh"
pm_header "$script" "$a" "$b" "$@"
echo "rounds:  $rounds per side, A B B A …"
pm_header_source "$a"
pm_header_source "$b"
echo "raw outputs: $out"

for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) = 1 ]; then order="A B"; else order="B A"; fi
	for side in $order; do
		dir=$a
		[ "$side" = B ] && dir=$b
		echo "round $r, side $side ($dir)"
		BUILD_DIR=$dir bash "$script" "$@" >"$out/$side.$r.txt" 2>"$out/$side.$r.err" ||
			{ echo "$0: $script failed on side $side round $r:" >&2; tail -20 "$out/$side.$r.err" >&2; exit 1; }
	done
done

}

python3 - "$out" "$rounds" <<'EOF'
import glob, os, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
num = re.compile(r'^-?[0-9][0-9,]*(\.[0-9]+)?(x|×)?$')

def tables(path):
    """(header cells, row key, {column: value}) for every table row."""
    rows, header = [], None
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if all(set(c) <= set("-: ") for c in cells):
            continue
        if header is None:
            # a column name that repeats (two "p99 us") takes the one before it
            header, seen = [], None
            for c in cells:
                header.append(f"{seen} {c}" if c in header else c)
                if num.match(c) is None and not re.search(r'p\d|us', c):
                    seen = c
            continue
        # a row is named by the words before its first measured number, and
        # by the numbers of the columns that set the load (depth, ef, k …)
        key, measured = [], False
        for h, c in zip(header, cells):
            load = re.fullmatch(r'(depth|ef|k|threads|clients|shards|dim)', h, re.I)
            if num.match(c) and not load:
                measured = True
            elif not measured:
                key.append(c)
        key = tuple(key)
        vals = {}
        for h, c in zip(header, cells):
            if num.match(c):
                vals[h] = float(c.replace(",", "").rstrip("x×"))
        rows.append((tuple(header), key, vals))
    return rows

acc = {}
order = []
for side in "AB":
    for r in range(1, rounds + 1):
        for header, key, vals in tables(os.path.join(out, f"{side}.{r}.txt")):
            k = (header, key)
            if k not in acc:
                acc[k] = {"A": {}, "B": {}}
                order.append(k)
            for col, v in vals.items():
                acc[k][side].setdefault(col, []).append(v)

worst = None
for header, key in order:
    d = acc[(header, key)]
    parts = []
    for col in header:
        if col in d["A"] and col in d["B"] and d["A"][col] and d["B"][col]:
            ma, mb = statistics.median(d["A"][col]), statistics.median(d["B"][col])
            if ma == 0:
                continue
            ratio = mb / ma
            lower_better = bool(re.search(r'p\d|us|µs|lat', col))
            parts.append(f"{col} {ma:,.1f} -> {mb:,.1f} ({ratio:.3f})")
            if not lower_better and re.search(r'ops|/s|GET|SET', col):
                if worst is None or ratio < worst[0]:
                    worst = (ratio, " / ".join(key), col)
    print("| " + " / ".join(key) + " | " + "; ".join(parts) + " |")
if worst:
    print(f"lowest throughput ratio B/A: {worst[0]:.3f} ({worst[1]}, {worst[2]})")
EOF
