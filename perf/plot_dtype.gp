# SPDX-License-Identifier: MIT
#
# perf/plot_dtype.gp — recall@10 against queries/s for bench_dtype: one line per
# element type of Pomai's HNSW (f32, f16, q8, q8 + re-rank, bin, bin + re-rank)
# and hnswlib (f32), one point per ef (10 .. 320), queries per CPU second on a
# log scale; the right half zooms on recall >= 0.90 (zoom), where bin never
# gets. Reads the data file bench_dtype writes (one block per configuration,
# always in the same order, its first line the title) and writes a PNG.
#
#   gnuplot perf/plot_dtype.gp                                  (from the repo root)
#   gnuplot -e "dat='build-perf/bench_dtype.dat'; out='x.png'" perf/plot_dtype.gp

if (!exists("dat")) dat = 'build-perf/bench_dtype.dat'
if (!exists("out")) out = 'perf/dtype_recall_qps.png'
if (!exists("zoom")) zoom = 0.90

set terminal pngcairo size 1400,740 font "DejaVu Sans,11" noenhanced
set output out

# blocks: 0 f32, 1 f16, 2 q8, 3 q8+rerank, 4 bin, 5 bin+rerank, 6 hnswlib
set style line 1 lc rgb "#d62728" lw 2.5 pt 7 ps 1.2
set style line 2 lc rgb "#ff7f0e" lw 2.0 pt 5 ps 1.1
set style line 3 lc rgb "#2ca02c" lw 2.0 dt 2 pt 9 ps 1.3
set style line 4 lc rgb "#2ca02c" lw 2.5 pt 9 ps 1.3
set style line 5 lc rgb "#9467bd" lw 2.0 dt 2 pt 13 ps 1.2
set style line 6 lc rgb "#9467bd" lw 2.5 pt 13 ps 1.2
set style line 7 lc rgb "#1f77b4" lw 2.0 dt 3 pt 4 ps 1.1

set multiplot title "bench_dtype: Pomai HNSW by element type, Fashion-MNIST 60,000 x 784, L2, k = 10, M = 16, ef_construction = 200,\none thread, one query per call (points: ef = 10, 20, 40, 80, 160, 320; median queries per CPU second of the rounds;\nre-rank: the best 64 candidates by the kept f32); hnswlib 0.6.2 built -O3 -march=native (AVX-512 kernels)" layout 1,2
set ylabel "queries per CPU second (log scale)"
set logscale y
set format y "%.0f"
set grid xtics ytics mytics
set xlabel "recall@10"

set title "all ef"
set key bottom left box opaque
set xrange [0:1.02]
plot for [i=0:6] dat index i using 2:3 with linespoints ls (i+1) title columnheader(1)

set title sprintf("zoom: recall@10 >= %.2f", zoom)
unset key
set xrange [zoom:1.0005]
plot for [i=0:6] dat index i using 2:3 with linespoints ls (i+1) title columnheader(1)
unset multiplot
