/* SPDX-License-Identifier: MIT
 *
 * fuzz.h — what every fuzz target shares: the libFuzzer entry points (also
 * called by driver.c when libFuzzer is not linked) and FUZZ_CHECK, an
 * invariant check that survives NDEBUG and aborts, so libFuzzer, AFL++ and
 * the corpus regression tests all see a broken invariant as a crash.
 */
#ifndef POMAI_TESTS_FUZZ_H
#define POMAI_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional; a target that needs set-up defines it. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#define FUZZ_CHECK(cond)                                                                  \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
				#cond);                                                   \
			abort();                                                          \
		}                                                                         \
	} while (0)

/* Whether [p, p + n) lies inside [base, base + len). */
static inline int fuzz_inside(const void *p, size_t n, const void *base, size_t len)
{
	const uint8_t *q = p, *b = base;
	if (n == 0)
		return 1; /* an empty range may point anywhere (often NULL) */
	return q >= b && q <= b + len && n <= (size_t)(b + len - q);
}

#endif
