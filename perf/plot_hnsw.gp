# SPDX-License-Identifier: MIT
#
# perf/plot_hnsw.gp — recall@10 against queries/s for bench_hnsw: one line per
# engine (Pomai, hnswlib, FAISS IndexHNSWFlat) and per churned index, one point
# per ef (10 .. 640), queries/s on a log scale; the right half zooms on
# recall >= 0.98 (zoom: where it starts). Reads the data file bench_hnsw
# writes (one block per series, always in the same order, its first line the
# title; a series that was not run has only NaN rows) and writes a PNG.
#
#   gnuplot perf/plot_hnsw.gp                                  (from the repo root)
#   gnuplot -e "dat='build-perf/bench_hnsw.dat'; out='x.png'" perf/plot_hnsw.gp
#   gnuplot -e "dat='build-perf/bench_hnsw_glove100.dat'; set_name='glove100 340,479 x 100, cosine'; zoom=0.95; out='perf/hnsw_recall_qps_glove100.png'" perf/plot_hnsw.gp

if (!exists("dat")) dat = 'build-perf/bench_hnsw.dat'
if (!exists("out")) out = 'perf/hnsw_recall_qps.png'
if (!exists("set_name")) set_name = 'Fashion-MNIST 60,000 x 784, L2'
if (!exists("zoom")) zoom = 0.98

set terminal pngcairo size 1400,740 font "DejaVu Sans,11" noenhanced
set output out

set style line 1 lc rgb "#d62728" lw 2.5 pt 7 ps 1.2
set style line 2 lc rgb "#1f77b4" lw 2.5 pt 5 ps 1.1
set style line 3 lc rgb "#2ca02c" lw 2.5 pt 9 ps 1.3
set style line 4 lc rgb "#d62728" lw 1.5 dt 2 pt 6 ps 1.2
set style line 5 lc rgb "#1f77b4" lw 1.5 dt 2 pt 4 ps 1.1
set style line 6 lc rgb "#9467bd" lw 1.5 dt 3 pt 12 ps 1.2

set multiplot title "bench_hnsw: ".set_name.", k = 10, M = 16, ef_construction = 200, one thread, one query per call\n(points: ef = 10, 20, 40, 80, 160, 320, 640; median queries/s of the rounds)\nhnswlib 0.6.2 built -O3 -march=native (AVX-512 kernels); FAISS 1.7.3 is Debian's prebuilt libfaiss (scalar L2); every engine's vectors on transparent hugepages" layout 1,2
set ylabel "queries/s (log scale)"
set logscale y
set yrange [100:40000]
set format y "%.0f"
set grid xtics ytics mytics
set xlabel "recall@10"

# blocks: 0 Pomai, 1 hnswlib, 2 FAISS, 3 Pomai after churn, 4 hnswlib after
# churn (replace_deleted), 5 hnswlib after churn (plain, grown)
set title "all ef"
set key bottom left box opaque
set xrange [*:1.002]
plot for [i=0:5] dat index i using 2:3 with linespoints ls (i+1) title columnheader(1)

set title sprintf("zoom: recall@10 >= %.2f", zoom)
unset key
set xrange [zoom:1.0005]
plot for [i=0:5] dat index i using 2:3 with linespoints ls (i+1) title columnheader(1)
unset multiplot
