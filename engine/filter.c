/* SPDX-License-Identifier: MIT
 *
 * filter.c — the filter expression parser (recursive descent, its depth
 * bounded by PM_FILTER_DEPTH_MAX), the program's interpreter and its
 * selectivity estimate (grammar and bounds in filter.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "filter.h"

/* Characters of a number literal (digits, sign, point, exponent). */
#define NUMBER_CHARS_MAX 63u

enum tok {
	T_END, T_NAME, T_NUM, T_STR, T_LP, T_RP, T_COMMA,
	T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE, T_AND, T_OR, T_NOT, T_IN, T_BAD,
};

struct parser {
	const uint8_t *s;
	uint32_t len, pos;
	enum tok t;            /* current token */
	const uint8_t *tp;     /* its bytes (names, strings: unescaped into sbuf) */
	uint32_t tlen;
	double num;
	uint8_t sbuf[PM_FILTER_BYTES_MAX];
	uint32_t depth;
	bool bad;
	struct pm_filter_prog *p;
};

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_name(uint8_t c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static bool kw(const uint8_t *p, uint32_t n, const char *w)
{
	if (strlen(w) != n)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if ((p[i] | 0x20) != w[i])
			return false;
	return true;
}

static enum tok lex_name(struct parser *ps)
{
	uint32_t b = ps->pos;
	while (ps->pos < ps->len && is_name(ps->s[ps->pos], false))
		ps->pos++;
	ps->tp = ps->s + b;
	ps->tlen = ps->pos - b;
	if (kw(ps->tp, ps->tlen, "and"))
		return T_AND;
	if (kw(ps->tp, ps->tlen, "or"))
		return T_OR;
	if (kw(ps->tp, ps->tlen, "not"))
		return T_NOT;
	if (kw(ps->tp, ps->tlen, "in"))
		return T_IN;
	return T_NAME;
}

static enum tok lex_num(struct parser *ps)
{
	uint32_t b = ps->pos;
	const uint8_t *s = ps->s;
	if (ps->pos < ps->len && (s[ps->pos] == '+' || s[ps->pos] == '-'))
		ps->pos++;
	uint32_t d0 = ps->pos;
	while (ps->pos < ps->len && is_digit(s[ps->pos]))
		ps->pos++;
	if (ps->pos == d0)
		return T_BAD;
	if (ps->pos < ps->len && s[ps->pos] == '.') {
		uint32_t f0 = ++ps->pos;
		while (ps->pos < ps->len && is_digit(s[ps->pos]))
			ps->pos++;
		if (ps->pos == f0)
			return T_BAD;
	}
	if (ps->pos < ps->len && (s[ps->pos] | 0x20) == 'e') {
		ps->pos++;
		if (ps->pos < ps->len && (s[ps->pos] == '+' || s[ps->pos] == '-'))
			ps->pos++;
		uint32_t e0 = ps->pos;
		while (ps->pos < ps->len && is_digit(s[ps->pos]))
			ps->pos++;
		if (ps->pos == e0)
			return T_BAD;
	}
	if (ps->pos - b > NUMBER_CHARS_MAX || (ps->pos < ps->len && is_name(s[ps->pos], false)))
		return T_BAD;
	char buf[NUMBER_CHARS_MAX + 1];
	memcpy(buf, s + b, ps->pos - b);
	buf[ps->pos - b] = 0;
	ps->num = strtod(buf, NULL);
	return isfinite(ps->num) ? T_NUM : T_BAD;
}

static enum tok lex_str(struct parser *ps)
{
	uint8_t q = ps->s[ps->pos++];
	uint32_t n = 0;
	while (ps->pos < ps->len && ps->s[ps->pos] != q) {
		if (ps->s[ps->pos] == '\\' && ++ps->pos == ps->len)
			return T_BAD;
		ps->sbuf[n++] = ps->s[ps->pos++];
	}
	if (ps->pos == ps->len)
		return T_BAD; /* unterminated */
	ps->pos++;
	ps->tp = ps->sbuf;
	ps->tlen = n;
	return T_STR;
}

static enum tok lex_op(struct parser *ps)
{
	uint8_t c = ps->s[ps->pos++];
	bool eq_next = ps->pos < ps->len && ps->s[ps->pos] == '=';
	switch (c) {
	case '(': return T_LP;
	case ')': return T_RP;
	case ',': return T_COMMA;
	case '=': ps->pos += eq_next; return T_EQ; /* "=" or "==" */
	case '!': if (!eq_next) return T_BAD; ps->pos++; return T_NE;
	case '<': ps->pos += eq_next; return eq_next ? T_LE : T_LT;
	case '>': ps->pos += eq_next; return eq_next ? T_GE : T_GT;
	default: return T_BAD;
	}
}

static void next(struct parser *ps)
{
	while (ps->pos < ps->len && is_space(ps->s[ps->pos]))
		ps->pos++;
	if (ps->pos == ps->len) {
		ps->t = T_END;
		return;
	}
	uint8_t c = ps->s[ps->pos];
	if (is_name(c, true))
		ps->t = lex_name(ps);
	else if (is_digit(c) || c == '+' || c == '-' || c == '.')
		ps->t = lex_num(ps);
	else if (c == '\'' || c == '"')
		ps->t = lex_str(ps);
	else
		ps->t = lex_op(ps);
	if (ps->t == T_BAD)
		ps->bad = true;
}

/* ------------------------------------------------------------ emitting */

static struct pm_filter_insn *emit(struct parser *ps, uint8_t op)
{
	struct pm_filter_prog *p = ps->p;
	if (p->ninsns == PM_FILTER_INSNS_MAX) {
		ps->bad = true;
		return NULL;
	}
	struct pm_filter_insn *in = &p->insn[p->ninsns++];
	*in = (struct pm_filter_insn){ .op = op };
	return in;
}

/* The field index of the current NAME token, added if new; -1 when full. */
static int field_of(struct parser *ps)
{
	struct pm_filter_prog *p = ps->p;
	if (ps->tlen > PM_ATTR_NAME_BYTES_MAX)
		return -1;
	for (uint32_t i = 0; i < p->nfields; i++)
		if (p->name_len[i] == ps->tlen && !memcmp(p->names[i], ps->tp, ps->tlen))
			return (int)i;
	if (p->nfields == PM_FILTER_FIELDS_MAX)
		return -1;
	memcpy(p->names[p->nfields], ps->tp, ps->tlen);
	p->name_len[p->nfields] = (uint8_t)ps->tlen;
	p->name_h[p->nfields] = pm_attr_hash_name(ps->tp, ps->tlen);
	return (int)p->nfields++;
}

/* Keep the current STRING token for field f; false when over a bound. */
static bool str_add(struct parser *ps, uint32_t f)
{
	struct pm_filter_prog *p = ps->p;
	if (p->nstrs == PM_FILTER_STRINGS_MAX || ps->tlen > PM_ATTR_TAG_BYTES_MAX ||
	    PM_FILTER_STRINGS_BYTES_MAX - p->pool_len < ps->tlen)
		return false;
	memcpy(p->pool + p->pool_len, ps->tp, ps->tlen);
	p->strs[p->nstrs++] = (struct pm_filter_str){
		.off = (uint16_t)p->pool_len, .len = (uint16_t)ps->tlen,
		.h = pm_attr_hash_tag(p->name_h[f], ps->tp, ps->tlen) };
	p->pool_len += ps->tlen;
	return true;
}

/* ------------------------------------------------------------ grammar */

static void expr(struct parser *ps);

static void in_list(struct parser *ps, uint32_t f)
{
	struct pm_filter_insn *in = emit(ps, PM_FOP_TAG_IN);
	if (!in)
		return;
	in->field = (uint8_t)f;
	in->str = (uint16_t)ps->p->nstrs;
	next(ps);
	if (ps->t != T_LP) {
		ps->bad = true;
		return;
	}
	do {
		next(ps);
		if (ps->t != T_STR || in->nstr == PM_FILTER_IN_MAX || !str_add(ps, f)) {
			ps->bad = true;
			return;
		}
		in->nstr++;
		next(ps);
	} while (ps->t == T_COMMA);
	if (ps->t != T_RP)
		ps->bad = true;
	next(ps);
}

static void cmp(struct parser *ps)
{
	int f = ps->t == T_NAME ? field_of(ps) : -1;
	if (f < 0) {
		ps->bad = true;
		return;
	}
	next(ps);
	if (ps->t == T_IN) {
		in_list(ps, (uint32_t)f);
		return;
	}
	enum tok op = ps->t;
	if (op < T_EQ || op > T_GE) {
		ps->bad = true;
		return;
	}
	next(ps);
	struct pm_filter_insn *in;
	if (ps->t == T_NUM) {
		if (!(in = emit(ps, (uint8_t)(PM_FOP_NUM_EQ + (op - T_EQ)))))
			return;
		in->num = ps->num;
	} else if (ps->t == T_STR && (op == T_EQ || op == T_NE)) {
		if (!(in = emit(ps, op == T_EQ ? PM_FOP_TAG_EQ : PM_FOP_TAG_NE)))
			return;
		in->str = (uint16_t)ps->p->nstrs;
		in->nstr = 1;
		if (!str_add(ps, (uint32_t)f)) {
			ps->bad = true;
			return;
		}
	} else {
		ps->bad = true;
		return;
	}
	in->field = (uint8_t)f;
	next(ps);
}

static void factor(struct parser *ps)
{
	if (ps->bad)
		return;
	if (++ps->depth > PM_FILTER_DEPTH_MAX) {
		ps->bad = true;
		return;
	}
	if (ps->t == T_NOT) {
		next(ps);
		factor(ps);
		emit(ps, PM_FOP_NOT);
	} else if (ps->t == T_LP) {
		next(ps);
		expr(ps);
		if (ps->t != T_RP)
			ps->bad = true;
		next(ps);
	} else {
		cmp(ps);
	}
	ps->depth--;
}

static void term(struct parser *ps)
{
	factor(ps);
	while (!ps->bad && ps->t == T_AND) {
		next(ps);
		factor(ps);
		emit(ps, PM_FOP_AND);
	}
}

static void expr(struct parser *ps)
{
	term(ps);
	while (!ps->bad && ps->t == T_OR) {
		next(ps);
		term(ps);
		emit(ps, PM_FOP_OR);
	}
}

enum pm_status pm_filter_compile(struct pm_filter_prog *p, const uint8_t *text, uint32_t len)
{
	p->ninsns = p->nfields = p->nstrs = p->pool_len = 0;
	if (len == 0 || len > PM_FILTER_BYTES_MAX)
		return PM_E_FILTER;
	struct parser ps = { .s = text, .len = len, .p = p };
	next(&ps);
	expr(&ps);
	if (ps.bad || ps.t != T_END || p->ninsns == 0) {
		p->ninsns = 0;
		return PM_E_FILTER;
	}
	return PM_OK;
}

/* ------------------------------------------------------------ running */

static bool tag_is(const struct pm_filter_prog *p, uint32_t s, const struct pm_attr_field *f)
{
	const struct pm_filter_str *x = &p->strs[s];
	return x->len == f->tag_len && !memcmp(p->pool + x->off, f->tag, x->len);
}

static bool insn_cmp(const struct pm_filter_prog *p, const struct pm_filter_insn *in,
		     const struct pm_attr_field *f)
{
	if (!f)
		return false;
	if (in->op <= PM_FOP_NUM_GE && f->type != PM_ATTR_NUM)
		return false;
	if (in->op > PM_FOP_NUM_GE && f->type != PM_ATTR_TAG)
		return false;
	switch (in->op) {
	case PM_FOP_NUM_EQ: return f->num == in->num;
	case PM_FOP_NUM_NE: return f->num != in->num;
	case PM_FOP_NUM_LT: return f->num < in->num;
	case PM_FOP_NUM_LE: return f->num <= in->num;
	case PM_FOP_NUM_GT: return f->num > in->num;
	case PM_FOP_NUM_GE: return f->num >= in->num;
	case PM_FOP_TAG_EQ: return tag_is(p, in->str, f);
	case PM_FOP_TAG_NE: return !tag_is(p, in->str, f);
	default:
		for (uint32_t i = 0; i < in->nstr; i++)
			if (tag_is(p, in->str + i, f))
				return true;
		return false;
	}
}

bool pm_filter_match(const struct pm_filter_prog *p, const uint8_t *rec)
{
	if (p->ninsns == 0)
		return true; /* no filter */
	/* resolve the program's fields in one walk of the record */
	struct pm_attr_field fv[PM_FILTER_FIELDS_MAX];
	bool have[PM_FILTER_FIELDS_MAX] = { 0 };
	if (rec) {
		struct pm_attr_iter it = pm_attr_iter(rec);
		struct pm_attr_field f;
		while (pm_attr_next(&it, &f))
			for (uint32_t i = 0; i < p->nfields; i++)
				if (p->name_len[i] == f.name_len && !memcmp(p->names[i], f.name, f.name_len)) {
					fv[i] = f;
					have[i] = true;
					break;
				}
	}
	bool st[PM_FILTER_INSNS_MAX];
	uint32_t n = 0;
	for (uint32_t i = 0; i < p->ninsns; i++) {
		const struct pm_filter_insn *in = &p->insn[i];
		switch (in->op) {
		case PM_FOP_AND: n--; st[n - 1] = st[n - 1] && st[n]; break;
		case PM_FOP_OR: n--; st[n - 1] = st[n - 1] || st[n]; break;
		case PM_FOP_NOT: st[n - 1] = !st[n - 1]; break;
		default: st[n++] = insn_cmp(p, in, have[in->field] ? &fv[in->field] : NULL); break;
		}
	}
	PM_DEBUG_ASSERT(n == 1);
	return st[0];
}

/* ------------------------------------------------------------ selectivity */

static double tag_frac(const struct pm_filter_prog *p, const struct pm_attr_stats *s,
		       const struct pm_filter_insn *in, double count)
{
	double n = 0;
	for (uint32_t i = 0; i < in->nstr; i++) {
		int64_t c = pm_attr_stats_tag(s, p->strs[in->str + i].h);
		if (c < 0)
			return 1.0; /* not counted: assume the worst */
		n += (double)c;
	}
	return PM_MIN(n / count, 1.0);
}

static double num_frac(const struct pm_attr_stats *s, uint64_t name_h,
		       const struct pm_filter_insn *in, double count)
{
	const struct pm_attr_hist *hs = pm_attr_stats_num(s, name_h);
	if (!hs)
		return s->nums_lost ? 1.0 : 0.0;
	double x = in->num, n;
	switch (in->op) {
	case PM_FOP_NUM_EQ: n = pm_attr_hist_range(hs, x, x); break;
	case PM_FOP_NUM_NE: n = hs->total; break;
	case PM_FOP_NUM_LT: case PM_FOP_NUM_LE: n = pm_attr_hist_range(hs, -INFINITY, nextafter(x, INFINITY)); break;
	default: n = pm_attr_hist_range(hs, x, INFINITY); break;
	}
	return PM_MIN(n / count, 1.0);
}

double pm_filter_selectivity(const struct pm_filter_prog *p, const struct pm_attr_stats *s,
			     uint64_t count)
{
	if (count == 0)
		return 0.0;
	double st[PM_FILTER_INSNS_MAX];
	uint32_t n = 0;
	for (uint32_t i = 0; i < p->ninsns; i++) {
		const struct pm_filter_insn *in = &p->insn[i];
		double a = n ? st[n - 1] : 0, b = n > 1 ? st[n - 2] : 0;
		switch (in->op) {
		case PM_FOP_AND: st[n - 2] = a * b; n--; break; /* as if independent */
		case PM_FOP_OR: st[n - 2] = a + b - a * b; n--; break;
		case PM_FOP_NOT: st[n - 1] = 1.0 - a; break;
		default:
			if (!s)
				st[n++] = 0.0;
			else if (in->op >= PM_FOP_TAG_EQ)
				st[n++] = in->op == PM_FOP_TAG_NE ? 1.0 - tag_frac(p, s, in, (double)count)
								   : tag_frac(p, s, in, (double)count);
			else
				st[n++] = num_frac(s, p->name_h[in->field], in, (double)count);
			break;
		}
	}
	return PM_MAX(0.0, PM_MIN(1.0, st[0]));
}
