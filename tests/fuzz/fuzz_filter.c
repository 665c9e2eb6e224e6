/* SPDX-License-Identifier: MIT
 *
 * fuzz_filter.c — the filter expression parser and its program (engine/
 * filter.h), and the attribute record checker (engine/attr.h).
 *
 * Input: the expression's text. It is compiled; a program that compiles is
 * within every bound, and is run against a few fixed records, the empty
 * record, none, and the input itself when it is a valid record (so the
 * record checker sees arbitrary bytes too); its selectivity estimate over
 * statistics of those records lies in [0, 1].
 *
 * Invariants: compiling ends with PM_OK or PM_E_FILTER and, on PM_E_FILTER,
 * an empty program; a compiled program has 1..PM_FILTER_INSNS_MAX
 * instructions, at most PM_FILTER_FIELDS_MAX fields and its strings inside
 * its pool; running it never reads outside the record (ASan) and gives the
 * same answer twice.
 */
#include <math.h>
#include <string.h>

#include "attr.h"
#include "filter.h"
#include "fuzz.h"

static struct pm_filter_prog prog;
static struct pm_attr_stats stats;
static uint8_t recs[4][PM_ATTR_BYTES_MAX];
static uint32_t nrecs;

static void add_rec(const char *tag, double price, double n)
{
	struct pm_attr_builder b;
	pm_attr_build_begin(&b, recs[nrecs], PM_ATTR_BYTES_MAX);
	pm_attr_build_tag(&b, "label", (const uint8_t *)tag, (uint32_t)strlen(tag));
	pm_attr_build_num(&b, "price", price);
	pm_attr_build_num(&b, "n", n);
	FUZZ_CHECK(pm_attr_build_end(&b) > 0);
	nrecs++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	add_rec("shirt", 12.5, 1);
	add_rec("hat", -3, 1e9);
	add_rec("", 0, -0.0);
	recs[3][0] = 0; /* the empty record */
	nrecs = 4;
	pm_attr_stats_init(&stats);
	for (uint32_t i = 0; i < nrecs; i++)
		pm_attr_stats_apply(&stats, recs[i], +1);
	return 0;
}

static void run(const uint8_t *rec)
{
	bool a = pm_filter_match(&prog, rec), b = pm_filter_match(&prog, rec);
	FUZZ_CHECK(a == b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (nrecs == 0)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size > PM_FILTER_BYTES_MAX + 16)
		return 0;
	enum pm_status st = pm_filter_compile(&prog, data, (uint32_t)size);
	if (size <= PM_ATTR_BYTES_MAX && size > 0 && pm_attr_check(data, (uint32_t)size) == PM_OK) {
		FUZZ_CHECK(pm_attr_len(data) == size);
		struct pm_attr_stats s;
		pm_attr_stats_init(&s);
		pm_attr_stats_apply(&s, data, +1);
		pm_attr_stats_apply(&s, data, -1);
		if (st == PM_OK)
			run(data);
	}
	FUZZ_CHECK(st == PM_OK || st == PM_E_FILTER);
	if (st != PM_OK) {
		FUZZ_CHECK(prog.ninsns == 0);
		return 0;
	}
	FUZZ_CHECK(size <= PM_FILTER_BYTES_MAX);
	FUZZ_CHECK(prog.ninsns >= 1 && prog.ninsns <= PM_FILTER_INSNS_MAX);
	FUZZ_CHECK(prog.nfields <= PM_FILTER_FIELDS_MAX && prog.nstrs <= PM_FILTER_STRINGS_MAX);
	for (uint32_t i = 0; i < prog.nstrs; i++)
		FUZZ_CHECK((uint32_t)prog.strs[i].off + prog.strs[i].len <= prog.pool_len);
	for (uint32_t i = 0; i < nrecs; i++)
		run(recs[i]);
	run(NULL);
	double sel = pm_filter_selectivity(&prog, &stats, nrecs);
	FUZZ_CHECK(sel >= 0.0 && sel <= 1.0);
	FUZZ_CHECK(pm_filter_selectivity(&prog, NULL, 10) >= 0.0);
	return 0;
}
