/* SPDX-License-Identifier: MIT
 *
 * attr.h — a vector's attribute record, and a collection's selectivity
 * statistics over the records of its members.
 *
 * A record is a few named fields, each numeric (an IEEE f64: integers up to
 * 2^53 are exact) or a tag (a short byte string). Its bytes are the same on
 * the wire, in the WAL, in a snapshot and in the arena, so nothing converts:
 *
 *   u8 nfields
 *   nfields x { u8 type (1 numeric, 2 tag) | u8 name_len | name |
 *               numeric: f64 LE  |  tag: u8 len, bytes }
 *
 * A name is [A-Za-z_][A-Za-z0-9_]* (so a filter expression can name it), no
 * two fields of a record share one, numerics are finite. pm_attr_check
 * enforces every rule and bound below; a record breaking one is PM_E_ATTR.
 * nfields 0 is the empty record (no attributes).
 *
 * Statistics (struct pm_attr_stats, one arena blob per collection that has
 * seen a record): a count per (tag field, value) in a fixed open-addressed
 * table, and per numeric field a 64-bucket equal-width histogram whose range
 * doubles (neighbouring buckets merge) when a value falls outside it. Both are
 * kept exact under insert / update / delete of records (a histogram bucket is
 * exact for its range; within it the filter assumes values spread evenly).
 * What does not fit (more distinct tag values or numeric fields than the
 * tables hold) is not counted and estimates as "unknown" (selectivity 1): the
 * search then takes the graph, whose exact-scan fallback keeps results right.
 */
#ifndef POMAI_ENGINE_ATTR_H
#define POMAI_ENGINE_ATTR_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

/* Fields in one record: a record is a handful of labels, not a document. */
#define PM_ATTR_FIELDS_MAX 16u
/* Bytes of a field name (the filter grammar's identifiers). */
#define PM_ATTR_NAME_BYTES_MAX 32u
/* Bytes of a tag value. */
#define PM_ATTR_TAG_BYTES_MAX 64u
/* Bytes of a whole encoded record: kept small so a filtered search reads one
 * or two cache lines of attributes per vector it tests. */
#define PM_ATTR_BYTES_MAX 512u

enum pm_attr_type {
	PM_ATTR_NUM = 1, /* f64 */
	PM_ATTR_TAG = 2, /* byte string */
};

/* One field of a record, pointing into the record's bytes. */
struct pm_attr_field {
	uint8_t type;          /* enum pm_attr_type */
	uint8_t name_len;
	const uint8_t *name;
	double num;            /* PM_ATTR_NUM */
	uint8_t tag_len;       /* PM_ATTR_TAG */
	const uint8_t *tag;
};

/* PM_OK when rec[0, len) is a valid record (len 0 is not: the empty record
 * is the one byte 0), else PM_E_ATTR. */
enum pm_status pm_attr_check(const uint8_t *rec, uint32_t len);
/* Bytes of the valid record at rec (its length is not stored beside it). */
uint32_t pm_attr_len(const uint8_t *rec);

/* Walk a valid record field by field. */
struct pm_attr_iter {
	const uint8_t *rec;
	uint32_t pos;          /* the next field's offset */
	uint32_t left;         /* fields not yet walked */
};
static inline struct pm_attr_iter pm_attr_iter(const uint8_t *rec)
{
	return (struct pm_attr_iter){ rec, 1, rec[0] };
}
/* The next field into *f; false after the last. */
bool pm_attr_next(struct pm_attr_iter *it, struct pm_attr_field *f);

/* ------------------------------------------------------------ building records (clients, tests) */

struct pm_attr_builder {
	uint8_t *buf;
	uint32_t cap, len;
	bool bad;              /* a field did not fit in cap (or broke a bound) */
};
void pm_attr_build_begin(struct pm_attr_builder *b, uint8_t *buf, uint32_t cap);
void pm_attr_build_num(struct pm_attr_builder *b, const char *name, double v);
void pm_attr_build_tag(struct pm_attr_builder *b, const char *name, const uint8_t *tag,
		       uint32_t tag_len);
/* The record's length, 0 if something did not fit. */
uint32_t pm_attr_build_end(struct pm_attr_builder *b);

/* ------------------------------------------------------------ selectivity statistics */

/* (tag field, value) pairs one collection counts: 16 bytes each (64 KiB). */
#define PM_ATTR_STATS_TAGS 4096u
/* Numeric fields one collection keeps a histogram of. */
#define PM_ATTR_STATS_NUMS 16u
/* Buckets of a numeric field's histogram. */
#define PM_ATTR_HIST_BUCKETS 64u

struct pm_attr_tag_count {
	uint64_t h;        /* hash of (field name, value); 0 = never used */
	uint32_t count;    /* members with that value (0: slot keeps its hash, a probe passes) */
	uint32_t reserved;
};

struct pm_attr_hist {
	uint64_t h;        /* hash of the field name; 0 = unused */
	double lo, width;  /* bucket i holds [lo + i width, lo + (i + 1) width) */
	uint32_t total;    /* members with the field */
	uint32_t bucket[PM_ATTR_HIST_BUCKETS];
};

struct pm_attr_stats {
	uint32_t tags_used;     /* slots of tags[] with a hash */
	uint32_t tags_lost;     /* values not counted: the table was full */
	uint32_t nums_lost;     /* numeric fields not counted: the histograms were taken */
	uint32_t reserved;
	struct pm_attr_tag_count tags[PM_ATTR_STATS_TAGS];
	struct pm_attr_hist nums[PM_ATTR_STATS_NUMS];
};

void pm_attr_stats_init(struct pm_attr_stats *s);
/* A member gained (delta +1) or lost (-1) the valid record rec. */
void pm_attr_stats_apply(struct pm_attr_stats *s, const uint8_t *rec, int delta);

uint64_t pm_attr_hash_name(const uint8_t *name, uint32_t len);
uint64_t pm_attr_hash_tag(uint64_t name_h, const uint8_t *tag, uint32_t len);
/* Members with that tag value; -1 when it is not known (not counted). */
int64_t pm_attr_stats_tag(const struct pm_attr_stats *s, uint64_t h);
/* The histogram of a numeric field, or NULL when it has none. */
const struct pm_attr_hist *pm_attr_stats_num(const struct pm_attr_stats *s, uint64_t name_h);
/* Estimated members of histogram hs whose value v satisfies lo <= v < hi
 * (either end may be infinite). */
double pm_attr_hist_range(const struct pm_attr_hist *hs, double lo, double hi);

#endif
