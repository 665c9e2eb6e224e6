/* SPDX-License-Identifier: MIT
 *
 * benchutil.h — what every Pomai benchmark shares: a monotonic clock, a seeded
 * RNG, the median of repeated runs, CPU pinning, and the header each benchmark
 * prints first (command line, date, machine) so a result can be reproduced and
 * compared with another machine's.
 *
 * The RNG is SplitMix64: tiny, fast, and good enough to pick uniform keys; the
 * same seed gives the same access sequence on every run and machine.
 */
#ifndef POMAI_PERF_BENCHUTIL_H
#define POMAI_PERF_BENCHUTIL_H

#include <stdint.h>

/* Runs of every measured phase whose median is reported. */
#define BU_RUNS_DEFAULT 5u
/* Each run of a phase repeats passes until it has lasted at least this long. */
#define BU_RUN_NS_MIN UINT64_C(1000000000)

uint64_t bu_now_ns(void);

/* "title", the exact command line, the UTC date, uname, CPU model, CPU counts. */
void bu_print_header(const char *title, int argc, char **argv);

/* Pin the calling thread to one CPU: 0 / -errno. */
int bu_pin_cpu(int cpu);

/* Median of n values (sorts v in place); n >= 1. */
double bu_median(double *v, unsigned n);

struct bu_rng {
	uint64_t state;
};

static inline uint64_t bu_rng_next(struct bu_rng *r)
{
	uint64_t z = (r->state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Uniform in [0, n) by multiply-shift (bias below 2^-32 for the n used here). */
static inline uint32_t bu_rng_below(struct bu_rng *r, uint32_t n)
{
	return (uint32_t)(((bu_rng_next(r) >> 32) * n) >> 32);
}

/* Parse a non-negative decimal argument no larger than max; 0 / -EINVAL. */
int bu_parse_u32(const char *s, uint32_t max, uint32_t *out);

#endif
