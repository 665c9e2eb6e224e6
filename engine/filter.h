/* SPDX-License-Identifier: MIT
 *
 * filter.h — filter expressions over attribute records (attr.h), compiled
 * once per query into a bounded program.
 *
 * Grammar (docs/protocol.md, "Filter expressions"; keywords are case-blind):
 *
 *   expr    := term { "or" term }
 *   term    := factor { "and" factor }
 *   factor  := "not" factor | "(" expr ")" | cmp
 *   cmp     := NAME op NUMBER | NAME ("=" | "!=") STRING
 *            | NAME "in" "(" STRING { "," STRING } ")"
 *   op      := "=" | "!=" | "<" | "<=" | ">" | ">="
 *   NAME    := [A-Za-z_][A-Za-z0-9_]*   (not a keyword)
 *   NUMBER  := [+-]? digits [ "." digits ] [ (e|E) [+-]? digits ]
 *   STRING  := '...' or "..." ; a backslash takes the next byte literally
 *
 * A comparison is false for a vector whose record lacks the field or holds it
 * with the other type (so `not price < 5` matches vectors with no price).
 *
 * The program is postfix (a comparison pushes a truth value, and / or / not
 * combine the top of the stack), held in fixed arrays inside struct
 * pm_filter_prog: compiling allocates nothing, running allocates nothing and
 * reads each field of a record once. Every bound below is checked while
 * parsing; an expression breaking one, or malformed, is PM_E_FILTER and
 * leaves nothing behind.
 */
#ifndef POMAI_ENGINE_FILTER_H
#define POMAI_ENGINE_FILTER_H

#include <stdbool.h>
#include <stdint.h>

#include "attr.h"
#include "status.h"

/* Bytes of an expression's text (the wire carries it as u16-length bytes). */
#define PM_FILTER_BYTES_MAX 1024u
/* Instructions of a program: comparisons plus and / or / not. */
#define PM_FILTER_INSNS_MAX 64u
/* Nesting of parentheses and `not`s (bounds the parser's recursion). */
#define PM_FILTER_DEPTH_MAX 16u
/* Distinct field names one expression may name. */
#define PM_FILTER_FIELDS_MAX 16u
/* Strings of an `in` list. */
#define PM_FILTER_IN_MAX 32u
/* String literals of one expression, `in` lists included. */
#define PM_FILTER_STRINGS_MAX 64u
/* Bytes of all the string literals of one expression together. */
#define PM_FILTER_STRINGS_BYTES_MAX 1024u

/* Filtered search (knn.c): a query whose filter is estimated to pass fewer
 * than this fraction of an HNSW collection scans the passing members exactly
 * instead of searching the graph. Below it the passing nodes are too sparse
 * for the graph's two-hop expansion to connect them, and the scan's distances
 * (one per passing member) cost less than the graph's wasted filter tests. */
#define PM_FILTER_SCAN_SELECTIVITY 0.02
/* The graph search under a filter gives up after min(ef x this, members)
 * filter tests (Redis vector sets' FILTER-EF): an exact filtered scan then
 * answers (it tests every member once, so a graph search that would test
 * more is no cheaper). */
#define PM_FILTER_TESTS_PER_EF 256u

enum pm_filter_opcode {
	PM_FOP_NUM_EQ = 1, PM_FOP_NUM_NE, PM_FOP_NUM_LT, PM_FOP_NUM_LE, PM_FOP_NUM_GT, PM_FOP_NUM_GE,
	PM_FOP_TAG_EQ, PM_FOP_TAG_NE, PM_FOP_TAG_IN,
	PM_FOP_AND, PM_FOP_OR, PM_FOP_NOT,
};

struct pm_filter_insn {
	uint8_t op;       /* enum pm_filter_opcode */
	uint8_t field;    /* comparisons: index into names */
	uint16_t str;     /* tag comparisons: first string (index into strs) */
	uint16_t nstr;    /* TAG_IN: strings in the list; TAG_EQ/NE: 1 */
	double num;       /* numeric comparisons: the constant */
};

struct pm_filter_str {
	uint16_t off, len; /* bytes in pool */
	uint64_t h;        /* pm_attr_hash_tag(field's name hash, bytes): statistics */
};

struct pm_filter_prog {
	uint32_t ninsns, nfields, nstrs, pool_len;
	struct pm_filter_insn insn[PM_FILTER_INSNS_MAX];
	uint8_t name_len[PM_FILTER_FIELDS_MAX];
	uint8_t names[PM_FILTER_FIELDS_MAX][PM_ATTR_NAME_BYTES_MAX];
	uint64_t name_h[PM_FILTER_FIELDS_MAX];
	struct pm_filter_str strs[PM_FILTER_STRINGS_MAX];
	uint8_t pool[PM_FILTER_STRINGS_BYTES_MAX];
};

/* Compile text[0, len) into *p: PM_OK or PM_E_FILTER. */
enum pm_status pm_filter_compile(struct pm_filter_prog *p, const uint8_t *text, uint32_t len);

/* Does the record rec (NULL: no attributes) satisfy the program? */
bool pm_filter_match(const struct pm_filter_prog *p, const uint8_t *rec);

/* Estimated fraction [0, 1] of a collection's `count` members that match,
 * from its statistics (NULL: none kept, every field absent). Unknown parts
 * estimate high, so a wrong guess costs time, never results. */
double pm_filter_selectivity(const struct pm_filter_prog *p, const struct pm_attr_stats *s,
			     uint64_t count);

#endif
