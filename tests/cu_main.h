/* SPDX-License-Identifier: MIT
 *
 * cu_main.h — the shared CUnit runner: each test file lists its tests in a
 * static CU_TestInfo array and calls pm_cu_run(suite_name, tests).
 * Exit codes follow meson: 0 pass, 1 fail, 77 skip.
 */
#ifndef POMAI_TESTS_CU_MAIN_H
#define POMAI_TESTS_CU_MAIN_H

#include <CUnit/Basic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

static inline int pm_cu_run(const char *suite_name, CU_TestInfo *tests)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_SuiteInfo suites[] = {
		{ suite_name, NULL, NULL, NULL, NULL, tests },
		CU_SUITE_INFO_NULL,
	};
	if (CU_register_suites(suites) != CUE_SUCCESS) {
		fprintf(stderr, "CU_register_suites: %s\n", CU_get_error_msg());
		CU_cleanup_registry();
		return 1;
	}
	return pm_cu_run_registered();
}

#endif
