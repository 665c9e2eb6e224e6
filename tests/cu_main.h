/* SPDX-License-Identifier: MIT
 *
 * cu_main.h — the shared CUnit runner: each test file lists its tests in a
 * static CU_TestInfo array and calls pm_cu_run(suite_name, tests), or
 * registers its suites (with set-up and clean-up) and ends through
 * pm_cu_run_registered(). Every suite ends through one of the two: no suite
 * counts CUnit's failures by hand.
 *
 * Exit codes follow meson: 0 pass, 1 fail, 77 skip. A run in which no test
 * ran fails (a suite whose set-up failed, a filter that matched nothing, a
 * table left empty): passing it would hide exactly the breakage that stopped
 * every test. 77 is only for a suite that cannot run on this machine (no
 * root, no /dev/net/tun, no /dev/fuse), said so before any test is
 * registered, through pm_cu_cannot_run(): under CI=true, which runs on a
 * machine that has all of it, that is a failure instead.
 */
#ifndef POMAI_TESTS_CU_MAIN_H
#define POMAI_TESTS_CU_MAIN_H

#include <CUnit/Basic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rand.h"

#define PM_TEST_SKIP 77

/* Run the suites already registered; the exit code (1 when a test or a
 * suite's set-up failed, or when nothing ran). Cleans the registry up. */
static inline int pm_cu_run_registered(void)
{
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
			  CU_get_number_of_suites_failed();
	unsigned ran = CU_get_number_of_tests_run();
	CU_cleanup_registry();
	return failed || ran == 0 ? 1 : 0;
}

/* The exit code of a suite that cannot run here: why (and detail, may be
 * NULL) printed; PM_TEST_SKIP, or 1 under CI=true. */
static inline int pm_cu_cannot_run(const char *suite, const char *why, const char *detail)
{
	const char *ci = getenv("CI");
	bool must = ci && !strcmp(ci, "true");
	printf("%s: NOTICE: not run: %s%s%s%s\n", suite, why, detail ? ": " : "", detail ? detail : "",
	       must ? " — but CI=true: failing" : "; skipped");
	return must ? 1 : PM_TEST_SKIP;
}

/* One suite with its set-up and clean-up (either may be NULL): a set-up that
 * fails fails the run. */
static inline int pm_cu_run_suite(const char *suite_name, CU_InitializeFunc init,
				  CU_CleanupFunc clean, CU_TestInfo *tests)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_SuiteInfo suites[] = {
		{ suite_name, init, clean, NULL, NULL, tests },
		CU_SUITE_INFO_NULL,
	};
	if (CU_register_suites(suites) != CUE_SUCCESS) {
		fprintf(stderr, "CU_register_suites: %s\n", CU_get_error_msg());
		CU_cleanup_registry();
		return 1;
	}
	return pm_cu_run_registered();
}

static inline int pm_cu_run(const char *suite_name, CU_TestInfo *tests)
{
	return pm_cu_run_suite(suite_name, NULL, NULL, tests);
}

#endif
