/* SPDX-License-Identifier: MIT
 *
 * common.h — small helpers every engine file uses: branch hints, and assertions.
 *
 * PM_ASSERT survives release builds: it guards what must never happen (a broken
 * invariant means memory is already wrong, so the process stops loudly rather
 * than corrupt data). PM_DEBUG_ASSERT is for checks too costly for the hot path;
 * it compiles away under NDEBUG.
 */
#ifndef POMAI_ENGINE_COMMON_H
#define POMAI_ENGINE_COMMON_H

#include <stdint.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

_Noreturn void pm_panic(const char *file, int line, const char *what);

#define PM_ASSERT(cond)                                        \
	do {                                                       \
		if (unlikely(!(cond)))                                 \
			pm_panic(__FILE__, __LINE__, #cond);               \
	} while (0)

#ifdef NDEBUG
#define PM_DEBUG_ASSERT(cond) ((void)0)
#else
#define PM_DEBUG_ASSERT(cond) PM_ASSERT(cond)
#endif

#define PM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PM_MAX(a, b) ((a) > (b) ? (a) : (b))

static inline uint64_t pm_align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

#endif
