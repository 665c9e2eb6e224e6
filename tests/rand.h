/* SPDX-License-Identifier: MIT
 *
 * rand.h — the tests' deterministic RNG (splitmix64), shared by the CUnit
 * suites (cu_main.h), the process harness (proc.c: free ports) and the load
 * generators (knn_flood.c). Tests print their seed on failure paths.
 */
#ifndef POMAI_TESTS_RAND_H
#define POMAI_TESTS_RAND_H

#include <stdint.h>

static inline uint64_t pm_test_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

#endif
