# SPDX-License-Identifier: MIT
#
# plot_soak.gp — a soak run's samples (tests/soak.sh --csv) as two panels:
# pomaid's memory over time (RSS, the arenas' touched bytes, live blob bytes)
# and the clients' latency percentiles per interval (log scale).
#
#   gnuplot -e "csv='soak.csv'; out='perf/soak_30min.png'" perf/plot_soak.gp
#
# Needs gnuplot-nox (not a CI dependency). Columns: see csv_header in tests/soak.c.
if (!exists("csv")) csv = 'soak.csv'
if (!exists("out")) out = 'soak.png'

set datafile separator ','
set terminal pngcairo size 1200,900 font ',10'
set output out
set multiplot layout 2,1 title 'pomai-soak: pomaid under mixed load (2 shards, 4 client threads)'

set xlabel 'time (min)'
set ylabel 'MiB'
set key top left
set grid
plot csv using ($1/60):($2/1048576) every ::1 with lines lw 2 title 'RSS', \
     csv using ($1/60):($3/1048576) every ::1 with lines lw 2 title 'arena touched', \
     csv using ($1/60):($4/1048576) every ::1 with lines lw 2 title 'live blob bytes'

set ylabel 'latency per interval (us)'
set logscale y
plot csv using ($1/60):9 every ::1 with lines title 'KV p50', \
     csv using ($1/60):10 every ::1 with lines title 'KV p99', \
     csv using ($1/60):11 every ::1 with lines title 'KV p99.9', \
     csv using ($1/60):12 every ::1 with lines dt 2 title 'KNN p50', \
     csv using ($1/60):13 every ::1 with lines dt 2 title 'KNN p99'
unset multiplot
