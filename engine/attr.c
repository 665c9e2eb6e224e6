/* SPDX-License-Identifier: MIT
 *
 * attr.c — attribute records and per-collection selectivity statistics
 * (formats and rules in attr.h).
 */
#include <math.h>
#include <string.h>

#include "attr.h"
#include "common.h"
#include "hash.h"

/* A histogram doubles its range at most this often per value: 2^64 times the
 * first bucket width spans every finite f64 from any start; past it the value
 * is counted in the edge bucket. */
#define HIST_FOLDS_MAX 64u
/* Tag slots a lookup probes before it gives up (the table is open-addressed). */
#define TAG_PROBES_MAX 64u

static inline bool name_char(uint8_t ch, bool first)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
	       (!first && ch >= '0' && ch <= '9');
}

static double rd_f64(const uint8_t *p)
{
	uint64_t bits;
	memcpy(&bits, p, 8);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	bits = __builtin_bswap64(bits);
#endif
	double v;
	memcpy(&v, &bits, 8);
	return v;
}

/* One field at rec[pos, len): its bytes, or 0 when it is malformed. */
static uint32_t field_parse(const uint8_t *rec, uint32_t pos, uint32_t len, struct pm_attr_field *f)
{
	if (len - pos < 2)
		return 0;
	f->type = rec[pos];
	f->name_len = rec[pos + 1];
	f->name = rec + pos + 2;
	uint32_t p = pos + 2 + f->name_len;
	if (f->name_len == 0 || f->name_len > PM_ATTR_NAME_BYTES_MAX || p > len)
		return 0;
	for (uint32_t i = 0; i < f->name_len; i++)
		if (!name_char(f->name[i], i == 0))
			return 0;
	if (f->type == PM_ATTR_NUM) {
		if (len - p < 8)
			return 0;
		f->num = rd_f64(rec + p);
		if (!isfinite(f->num))
			return 0;
		return p + 8 - pos;
	}
	if (f->type != PM_ATTR_TAG || p >= len)
		return 0;
	f->tag_len = rec[p];
	f->tag = rec + p + 1;
	if (f->tag_len > PM_ATTR_TAG_BYTES_MAX || len - p - 1 < f->tag_len)
		return 0;
	return p + 1 + f->tag_len - pos;
}

enum pm_status pm_attr_check(const uint8_t *rec, uint32_t len)
{
	if (len == 0 || len > PM_ATTR_BYTES_MAX || rec[0] > PM_ATTR_FIELDS_MAX)
		return PM_E_ATTR;
	struct pm_attr_field f[PM_ATTR_FIELDS_MAX];
	uint32_t pos = 1;
	for (uint32_t i = 0; i < rec[0]; i++) {
		uint32_t n = field_parse(rec, pos, len, &f[i]);
		if (n == 0)
			return PM_E_ATTR;
		pos += n;
		for (uint32_t j = 0; j < i; j++)
			if (f[j].name_len == f[i].name_len && !memcmp(f[j].name, f[i].name, f[i].name_len))
				return PM_E_ATTR; /* a name twice */
	}
	return pos == len ? PM_OK : PM_E_ATTR;
}

uint32_t pm_attr_len(const uint8_t *rec)
{
	struct pm_attr_iter it = pm_attr_iter(rec);
	struct pm_attr_field f;
	while (pm_attr_next(&it, &f))
		;
	return it.pos;
}

bool pm_attr_next(struct pm_attr_iter *it, struct pm_attr_field *f)
{
	if (it->left == 0)
		return false;
	it->left--;
	it->pos += field_parse(it->rec, it->pos, PM_ATTR_BYTES_MAX, f);
	return true;
}

/* ------------------------------------------------------------ builder */

void pm_attr_build_begin(struct pm_attr_builder *b, uint8_t *buf, uint32_t cap)
{
	*b = (struct pm_attr_builder){ .buf = buf, .cap = cap, .len = 1, .bad = cap < 1 };
	if (cap)
		buf[0] = 0;
}

static uint8_t *build_field(struct pm_attr_builder *b, uint8_t type, const char *name, uint32_t extra)
{
	size_t nl = strlen(name);
	if (b->bad || nl > UINT8_MAX || b->buf[0] == UINT8_MAX || b->cap - b->len < 2 + nl + extra) {
		b->bad = true;
		return NULL;
	}
	uint8_t *p = b->buf + b->len;
	p[0] = type;
	p[1] = (uint8_t)nl;
	memcpy(p + 2, name, nl);
	b->len += (uint32_t)(2 + nl + extra);
	b->buf[0]++;
	return p + 2 + nl;
}

void pm_attr_build_num(struct pm_attr_builder *b, const char *name, double v)
{
	uint8_t *p = build_field(b, PM_ATTR_NUM, name, 8);
	if (!p)
		return;
	uint64_t bits;
	memcpy(&bits, &v, 8);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	bits = __builtin_bswap64(bits);
#endif
	memcpy(p, &bits, 8);
}

void pm_attr_build_tag(struct pm_attr_builder *b, const char *name, const uint8_t *tag,
		       uint32_t tag_len)
{
	if (tag_len > UINT8_MAX) {
		b->bad = true;
		return;
	}
	uint8_t *p = build_field(b, PM_ATTR_TAG, name, 1 + tag_len);
	if (!p)
		return;
	p[0] = (uint8_t)tag_len;
	memcpy(p + 1, tag, tag_len);
}

uint32_t pm_attr_build_end(struct pm_attr_builder *b)
{
	return b->bad ? 0 : b->len;
}

/* ------------------------------------------------------------ statistics */

uint64_t pm_attr_hash_name(const uint8_t *name, uint32_t len)
{
	uint64_t h = pm_hash(name, len);
	return h ? h : 1;
}

uint64_t pm_attr_hash_tag(uint64_t name_h, const uint8_t *tag, uint32_t len)
{
	uint64_t h = XXH3_64bits_withSeed(tag, len, name_h);
	return h ? h : 1;
}

void pm_attr_stats_init(struct pm_attr_stats *s)
{
	memset(s, 0, sizeof(*s));
}

/* The slot of hash h, or (create) a fresh one for it; NULL if absent / full. */
static struct pm_attr_tag_count *tag_slot(struct pm_attr_stats *s, uint64_t h, bool create)
{
	for (uint32_t i = 0; i < TAG_PROBES_MAX; i++) {
		struct pm_attr_tag_count *t = &s->tags[(h + i) % PM_ATTR_STATS_TAGS];
		if (t->h == h)
			return t;
		if (t->h == 0) {
			if (!create)
				return NULL;
			t->h = h;
			s->tags_used++;
			return t;
		}
	}
	return NULL;
}

int64_t pm_attr_stats_tag(const struct pm_attr_stats *s, uint64_t h)
{
	struct pm_attr_tag_count *t = tag_slot((struct pm_attr_stats *)s, h, false);
	if (t)
		return t->count;
	return s->tags_lost ? -1 : 0;
}

static struct pm_attr_hist *num_slot(struct pm_attr_stats *s, uint64_t h, bool create)
{
	for (uint32_t i = 0; i < PM_ATTR_STATS_NUMS; i++) {
		if (s->nums[i].h == h)
			return &s->nums[i];
		if (s->nums[i].h == 0 && create) {
			s->nums[i].h = h;
			return &s->nums[i];
		}
	}
	return NULL;
}

const struct pm_attr_hist *pm_attr_stats_num(const struct pm_attr_stats *s, uint64_t name_h)
{
	return num_slot((struct pm_attr_stats *)s, name_h, false);
}

/* Double the range upwards: bucket pairs merge into the lower half. */
static void hist_fold_up(struct pm_attr_hist *hs)
{
	for (uint32_t i = 0; i < PM_ATTR_HIST_BUCKETS / 2; i++)
		hs->bucket[i] = hs->bucket[2 * i] + hs->bucket[2 * i + 1];
	memset(&hs->bucket[PM_ATTR_HIST_BUCKETS / 2], 0, sizeof(hs->bucket) / 2);
	hs->width *= 2;
}

/* Double the range downwards: bucket pairs merge into the upper half. */
static void hist_fold_down(struct pm_attr_hist *hs)
{
	const uint32_t half = PM_ATTR_HIST_BUCKETS / 2;
	for (uint32_t i = 0; i < half; i++)
		hs->bucket[half + i] = hs->bucket[2 * i] + hs->bucket[2 * i + 1];
	memset(hs->bucket, 0, sizeof(hs->bucket) / 2);
	hs->lo -= PM_ATTR_HIST_BUCKETS * hs->width;
	hs->width *= 2;
}

static uint32_t hist_index(const struct pm_attr_hist *hs, double v)
{
	double i = floor((v - hs->lo) / hs->width);
	if (!(i >= 0))
		return 0;
	return i >= PM_ATTR_HIST_BUCKETS ? PM_ATTR_HIST_BUCKETS - 1 : (uint32_t)i;
}

static void hist_add(struct pm_attr_hist *hs, double v, int delta)
{
	if (hs->total == 0 && delta > 0) { /* empty: the range starts around v */
		memset(hs->bucket, 0, sizeof(hs->bucket));
		hs->width = fabs(v) > 0 ? fabs(v) / PM_ATTR_HIST_BUCKETS : 1.0 / PM_ATTR_HIST_BUCKETS;
		hs->lo = v - hs->width * (PM_ATTR_HIST_BUCKETS / 2);
	}
	for (uint32_t i = 0; delta > 0 && i < HIST_FOLDS_MAX; i++) {
		if (v >= hs->lo + PM_ATTR_HIST_BUCKETS * hs->width)
			hist_fold_up(hs);
		else if (v < hs->lo)
			hist_fold_down(hs);
		else
			break;
	}
	uint32_t *b = &hs->bucket[hist_index(hs, v)];
	if (delta > 0) {
		(*b)++;
		hs->total++;
	} else if (*b > 0 && hs->total > 0) {
		(*b)--;
		hs->total--;
	}
}

void pm_attr_stats_apply(struct pm_attr_stats *s, const uint8_t *rec, int delta)
{
	struct pm_attr_iter it = pm_attr_iter(rec);
	struct pm_attr_field f;
	while (pm_attr_next(&it, &f)) {
		uint64_t nh = pm_attr_hash_name(f.name, f.name_len);
		if (f.type == PM_ATTR_NUM) {
			struct pm_attr_hist *hs = num_slot(s, nh, delta > 0);
			if (hs)
				hist_add(hs, f.num, delta);
			else if (delta > 0)
				s->nums_lost++;
			continue;
		}
		struct pm_attr_tag_count *t = tag_slot(s, pm_attr_hash_tag(nh, f.tag, f.tag_len), delta > 0);
		if (t && delta > 0)
			t->count++;
		else if (t && t->count > 0)
			t->count--;
		else if (delta > 0)
			s->tags_lost++;
	}
}

double pm_attr_hist_range(const struct pm_attr_hist *hs, double lo, double hi)
{
	double n = 0;
	for (uint32_t i = 0; i < PM_ATTR_HIST_BUCKETS; i++) {
		if (!hs->bucket[i])
			continue;
		double a = hs->lo + i * hs->width, b = a + hs->width;
		/* the edge buckets also hold what fell outside the range */
		if (i == 0)
			a = -INFINITY;
		if (i == PM_ATTR_HIST_BUCKETS - 1)
			b = INFINITY;
		double from = PM_MAX(a, lo), to = PM_MIN(b, hi);
		if (!(from < to) && !(lo == hi && lo >= a && lo < b))
			continue;
		if (isinf(a) || isinf(b) || lo == hi)
			n += hs->bucket[i]; /* no width to interpolate over: count it whole */
		else
			n += hs->bucket[i] * (to - from) / (b - a);
	}
	return n;
}
