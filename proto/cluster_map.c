/* SPDX-License-Identifier: MIT
 *
 * proto/cluster_map.c — the cluster's slot map (see cluster_map.h): the
 * document's strict parser and canonical printer, the rule checker both use,
 * and the MAP reply's wire form.
 *
 * Invariants:
 *  - The parser reads only the len bytes it is given, allocates nothing and
 *    keeps no state; every refusal is one line naming the line it found.
 *  - One checker (check_rules) holds the rules for every entry point: the
 *    parser calls it after its per-line checks (so a parsed map is a checked
 *    map), pm_cmap_check, pm_cmap_format and pm_cmap_encode call it on the
 *    map they are given, and the decoder checks the wire's own encoding of
 *    the same rules (indices, counts, flags, the slot cover).
 *  - A checked map (pm_cmap_check, parse, decode) holds its ranges in slot
 *    order and slot_set[] derived from them; format and encode write ranges
 *    in slot order whatever order they are in, so the document and the wire
 *    form of a map are each one byte string.
 *  - The wire form is canonical too: ranges ascending, contiguous from slot
 *    0 to PM_CLUSTER_SLOTS - 1, node flags exactly the sets' primaries, zero
 *    reserved bits; decode refuses anything else, so encode(decode(w)) == w.
 */
#include "cluster_map.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "admin_proto.h"
#include "byteorder.h"
#include "wire.h"

/* ---------------------------------------------------------------- bounds */

/* Key=value words of a line, at most: a node line's kind and seven keys. */
#define LINE_WORDS_MAX 8u
/* Decimal digits of a u64 (18446744073709551615). */
#define U64_DIGITS_MAX 20u
/* Bytes of a word quoted back in an error message; longer ones are cut. */
#define ERR_WORD_BYTES_MAX 24u

/* The longest line of each kind (the canonical form, every number and name
 * at its longest, with its '\n'): they bound the document below. */
#define LINE_HEAD_BYTES_MAX (sizeof("pomai-map version=1 epoch=") - 1 + U64_DIGITS_MAX + 1)
#define LINE_SET_BYTES_MAX                                                             \
	(sizeof("set name= epoch= primary=") - 1 + 2 * PM_CLUSTER_NAME_BYTES_MAX +     \
	 U64_DIGITS_MAX + 1)
#define LINE_NODE_BYTES_MAX                                                            \
	(sizeof("node name= set= addr=255.255.255.255 udp=65535 tcp=65535 repl=65535 " \
		"shards=255") - 1 + 2 * PM_CLUSTER_NAME_BYTES_MAX + 1)
#define LINE_SLOTS_BYTES_MAX                                                           \
	(sizeof("slots first=16383 last=16383 set=") - 1 + PM_CLUSTER_NAME_BYTES_MAX + 1)
#define LINE_MOVE_BYTES_MAX                                                            \
	(sizeof("move first=16383 last=16383 from= to= state=freeze") - 1 +            \
	 2 * PM_CLUSTER_NAME_BYTES_MAX + 1)
#define LINE_BYTES_MAX LINE_NODE_BYTES_MAX
#define DOC_BYTES_MAX                                                                  \
	(LINE_HEAD_BYTES_MAX + PM_CLUSTER_SETS_MAX * LINE_SET_BYTES_MAX +              \
	 PM_CLUSTER_NODES_MAX * LINE_NODE_BYTES_MAX +                                  \
	 PM_CLUSTER_RANGES_MAX * LINE_SLOTS_BYTES_MAX +                                \
	 PM_CLUSTER_MOVES_MAX * LINE_MOVE_BYTES_MAX)

_Static_assert(LINE_SET_BYTES_MAX <= LINE_BYTES_MAX && LINE_SLOTS_BYTES_MAX <= LINE_BYTES_MAX &&
		       LINE_MOVE_BYTES_MAX <= LINE_BYTES_MAX &&
		       LINE_HEAD_BYTES_MAX <= LINE_BYTES_MAX,
	       "the node line is the longest");
/* A map at every bound prints within the document bound, and still fits the
 * admin arguments after CLUSTER MAP <self> when it is cut at line boundaries
 * (each part then wastes less than one line). */
_Static_assert(DOC_BYTES_MAX <= PM_CLUSTER_MAP_TEXT_BYTES_MAX,
	       "a map at every bound fits PM_CLUSTER_MAP_TEXT_BYTES_MAX");
_Static_assert(PM_CLUSTER_MAP_TEXT_BYTES_MAX == (PM_ADMIN_ARGS_MAX - 3u) * PM_ADMIN_ARG_BYTES_MAX,
	       "the document bound is the admin arguments after CLUSTER MAP <self>");
_Static_assert(DOC_BYTES_MAX <=
		       (PM_ADMIN_ARGS_MAX - 3u) * (PM_ADMIN_ARG_BYTES_MAX - LINE_BYTES_MAX + 1u),
	       "a map at every bound fits CLUSTER MAP cut at line boundaries");
/* The MAP reply is one frame. */
_Static_assert(PM_FRAME_HEADER_BYTES + PM_CMAP_WIRE_BYTES_MAX <= PM_FRAME_BYTES_MAX,
	       "the wire form at every bound fits one frame");
/* Indices travel as u16 and PM_CMAP_NONE is none of them. */
_Static_assert(PM_CLUSTER_NODES_MAX < PM_CMAP_NONE && PM_CLUSTER_SETS_MAX < PM_CMAP_NONE &&
		       PM_CLUSTER_SLOTS <= PM_CMAP_NONE,
	       "indices and slots fit u16 below PM_CMAP_NONE");
_Static_assert(PM_CMAP_SHARDS_MAX <= UINT8_MAX, "shards travel as u8");

/* ---------------------------------------------------------------- errors */

/* A refusal: "line N: reason" (line 0: the document as a whole) into err. */
__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, unsigned line,
						       const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return -1;
	int n = 0;
	if (line > 0)
		n = snprintf(err, errlen, "line %u: ", line);
	if (n < 0 || (size_t)n >= errlen)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* A word of the input as an error message quotes it: at most
 * ERR_WORD_BYTES_MAX bytes, anything not printable as '?'. */
struct quoted {
	char s[ERR_WORD_BYTES_MAX + 4];
};

static struct quoted quote(const char *p, size_t n)
{
	struct quoted q;
	size_t k = n < ERR_WORD_BYTES_MAX ? n : ERR_WORD_BYTES_MAX;
	for (size_t i = 0; i < k; i++)
		q.s[i] = p[i] > 0x20 && p[i] < 0x7f ? p[i] : '?';
	if (k < n)
		memcpy(q.s + k, "...", 3), k += 3;
	q.s[k] = '\0';
	return q;
}

/* ---------------------------------------------------------------- names */

bool pm_cmap_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > PM_CLUSTER_NAME_BYTES_MAX)
		return false;
	if (len == 1 && name[0] == '-')
		return false; /* '-' alone is "no primary" */
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* The length of a name held in a struct (at most its array less the NUL). */
static size_t name_len(const char *name)
{
	return strnlen(name, PM_CLUSTER_NAME_BYTES_MAX + 1);
}

static bool name_is(const char *name, const char *p, size_t n)
{
	return name_len(name) == n && memcmp(name, p, n) == 0;
}

static uint16_t find_set(const struct pm_cmap *m, const char *p, size_t n)
{
	for (uint16_t i = 0; i < m->nsets && i < PM_CLUSTER_SETS_MAX; i++)
		if (name_is(m->sets[i].name, p, n))
			return i;
	return PM_CMAP_NONE;
}

static uint16_t find_node(const struct pm_cmap *m, const char *p, size_t n)
{
	for (uint16_t i = 0; i < m->nnodes && i < PM_CLUSTER_NODES_MAX; i++)
		if (name_is(m->nodes[i].name, p, n))
			return i;
	return PM_CMAP_NONE;
}

uint16_t pm_cmap_set_index(const struct pm_cmap *m, const char *name)
{
	return find_set(m, name, strlen(name));
}

uint16_t pm_cmap_node_index(const struct pm_cmap *m, const char *name)
{
	return find_node(m, name, strlen(name));
}

/* ---------------------------------------------------------------- rules */

/* A set of slots as a bitmap: the cover check needs no 32 KB array. */
struct slot_bits {
	uint64_t w[PM_CLUSTER_SLOTS / 64u];
};

/* The rules of a node alone; NULL or what it breaks. */
static const char *node_rule(const struct pm_cmap_node *n, uint16_t nsets)
{
	if (n->set >= nsets)
		return "its set index is past the sets";
	if (n->addr_be == 0)
		return "addr 0.0.0.0 is no address (zeros mean no primary)";
	if (n->udp_port == 0)
		return "udp port 0 (a node serves UDP)";
	if (n->shards == 0)
		return "shards 0 (1..255)";
	if ((uint32_t)n->udp_port + n->shards - 1u > UINT16_MAX)
		return "its shards' UDP ports pass 65535 (udp + shards - 1)";
	return NULL;
}

/* Whether ranges cover every slot exactly once; the first slot that breaks
 * it (in two ranges, or in none) into *slot. Ranges are valid (first <= last
 * < PM_CLUSTER_SLOTS). */
static bool ranges_cover(const struct pm_cmap *m, uint32_t *slot, bool *twice)
{
	struct slot_bits b;
	memset(&b, 0, sizeof(b));
	for (uint16_t r = 0; r < m->nranges; r++)
		for (uint32_t s = m->ranges[r].first; s <= m->ranges[r].last; s++) {
			uint64_t bit = 1ull << (s % 64u);
			if (b.w[s / 64u] & bit) {
				*slot = s, *twice = true;
				return false;
			}
			b.w[s / 64u] |= bit;
		}
	for (uint32_t w = 0; w < PM_CLUSTER_SLOTS / 64u; w++)
		if (b.w[w] != UINT64_MAX) {
			*slot = w * 64u + (uint32_t)__builtin_ctzll(~b.w[w]), *twice = false;
			return false;
		}
	return true;
}

/* Every rule of cluster_map.h on a map in memory (names too when names);
 * 0, or -1 with err. Reads nothing past the counts' bounds. */
/* The set that owns slot s by the ranges (check_rules ran ranges_cover). */
static uint16_t owner_of(const struct pm_cmap *m, uint32_t s)
{
	for (uint16_t r = 0; r < m->nranges; r++)
		if (m->ranges[r].first <= s && s <= m->ranges[r].last)
			return m->ranges[r].set;
	return PM_CMAP_NONE;
}

static int check_moves(const struct pm_cmap *m, char *err, size_t errlen)
{
	if (m->nmoves > PM_CLUSTER_MOVES_MAX)
		return fail(err, errlen, 0, "%u moves (0..%u)", m->nmoves, PM_CLUSTER_MOVES_MAX);
	for (uint16_t i = 0; i < m->nmoves; i++) {
		const struct pm_cmap_move *v = &m->moves[i];
		if (v->first > v->last || v->last >= PM_CLUSTER_SLOTS || v->from >= m->nsets ||
		    v->to >= m->nsets || v->from == v->to || v->state > PM_CMAP_MOVE_FREEZE)
			return fail(err, errlen, 0, "move %u: slots %u..%u from set %u to set %u,"
				    " state %u", i, v->first, v->last, v->from, v->to, v->state);
		for (uint32_t s = v->first; s <= v->last; s++)
			if (owner_of(m, s) != v->from)
				return fail(err, errlen, 0, "move %u: slot %u is not set %s's", i, s,
					    m->sets[v->from].name);
		for (uint16_t j = 0; j < i; j++)
			if (!(m->moves[j].last < v->first || v->last < m->moves[j].first))
				return fail(err, errlen, 0, "moves %u and %u overlap", j, i);
	}
	return 0;
}

static int check_rules(const struct pm_cmap *m, bool names, char *err, size_t errlen)
{
	if (m->epoch == 0)
		return fail(err, errlen, 0, "map epoch 0: it starts at 1");
	if (m->nsets == 0 || m->nsets > PM_CLUSTER_SETS_MAX)
		return fail(err, errlen, 0, "%u sets (1..%u)", m->nsets, PM_CLUSTER_SETS_MAX);
	if (m->nnodes > PM_CLUSTER_NODES_MAX)
		return fail(err, errlen, 0, "%u nodes (0..%u)", m->nnodes, PM_CLUSTER_NODES_MAX);
	if (m->nranges == 0 || m->nranges > PM_CLUSTER_RANGES_MAX)
		return fail(err, errlen, 0, "%u slot ranges (1..%u)", m->nranges,
			    PM_CLUSTER_RANGES_MAX);
	for (uint16_t i = 0; names && i < m->nsets; i++) {
		const char *s = m->sets[i].name;
		if (!pm_cmap_name_ok(s, name_len(s)))
			return fail(err, errlen, 0, "set %u: name '%s' is not 1..%u bytes of [a-z0-9_-]",
				    i, quote(s, name_len(s)).s, PM_CLUSTER_NAME_BYTES_MAX);
		if (find_set(m, s, name_len(s)) != i)
			return fail(err, errlen, 0, "set %s is declared twice", s);
	}
	for (uint16_t i = 0; i < m->nnodes; i++) {
		const struct pm_cmap_node *n = &m->nodes[i];
		const char *why = node_rule(n, m->nsets);
		if (why)
			return fail(err, errlen, 0, "node %u: %s", i, why);
		if (!names)
			continue;
		if (!pm_cmap_name_ok(n->name, name_len(n->name)))
			return fail(err, errlen, 0,
				    "node %u: name '%s' is not 1..%u bytes of [a-z0-9_-]", i,
				    quote(n->name, name_len(n->name)).s, PM_CLUSTER_NAME_BYTES_MAX);
		if (find_node(m, n->name, name_len(n->name)) != i)
			return fail(err, errlen, 0, "node %s is declared twice", n->name);
	}
	for (uint16_t i = 0; i < m->nsets; i++) {
		uint16_t p = m->sets[i].primary;
		if (p != PM_CMAP_NONE && (p >= m->nnodes || m->nodes[p].set != i))
			return fail(err, errlen, 0, "set %u: primary %u is not a node of the set", i,
				    p);
	}
	for (uint16_t r = 0; r < m->nranges; r++) {
		const struct pm_cmap_range *g = &m->ranges[r];
		if (g->first > g->last || g->last >= PM_CLUSTER_SLOTS || g->set >= m->nsets)
			return fail(err, errlen, 0, "range %u: slots %u..%u of set %u", r, g->first,
				    g->last, g->set);
	}
	uint32_t slot;
	bool twice;
	if (!ranges_cover(m, &slot, &twice))
		return fail(err, errlen, 0, "slot %u is in %s", slot,
			    twice ? "two slots ranges" : "no slots range");
	return check_moves(m, err, errlen);
}

/* The order of m's ranges by first slot, into order[] (insertion sort: at
 * most PM_CLUSTER_RANGES_MAX, once per map, and qsort may allocate). */
static void ranges_order(const struct pm_cmap *m, uint16_t *order)
{
	for (uint16_t i = 0; i < m->nranges; i++) {
		uint16_t j = i;
		for (; j > 0 && m->ranges[order[j - 1]].first > m->ranges[i].first; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
}

/* A map that passed check_rules: its ranges put in slot order and slot_set
 * derived from them. */
static void settle(struct pm_cmap *m)
{
	uint16_t order[PM_CLUSTER_RANGES_MAX];
	struct pm_cmap_range sorted[PM_CLUSTER_RANGES_MAX];
	ranges_order(m, order);
	for (uint16_t i = 0; i < m->nranges; i++)
		sorted[i] = m->ranges[order[i]];
	memcpy(m->ranges, sorted, m->nranges * sizeof(sorted[0]));
	for (uint16_t r = 0; r < m->nranges; r++)
		for (uint32_t s = m->ranges[r].first; s <= m->ranges[r].last; s++)
			m->slot_set[s] = m->ranges[r].set;
}

int pm_cmap_check(struct pm_cmap *m, char *err, size_t errlen)
{
	if (check_rules(m, true, err, errlen) != 0)
		return -1;
	settle(m);
	return 0;
}

/* ---------------------------------------------------------------- parser */

/* A slice of the document. */
struct word {
	const char *p;
	size_t n;
};

/* A line kind: its first word and its keys (each required, once). */
enum { KIND_HEAD, KIND_SET, KIND_NODE, KIND_SLOTS, KIND_MOVE, KIND_COUNT };
enum { K_VERSION, K_EPOCH };                                          /* pomai-map */
enum { S_NAME, S_EPOCH, S_PRIMARY };                                  /* set */
enum { N_NAME, N_SET, N_ADDR, N_UDP, N_TCP, N_REPL, N_SHARDS };       /* node */
enum { R_FIRST, R_LAST, R_SET };                                      /* slots */
enum { M_FIRST, M_LAST, M_FROM, M_TO, M_STATE };                      /* move */

struct kind {
	const char *word;
	unsigned nkeys;
	const char *keys[LINE_WORDS_MAX - 1];
};

static const struct kind kinds[KIND_COUNT] = {
	[KIND_HEAD] = { "pomai-map", 2, { "version", "epoch" } },
	[KIND_SET] = { "set", 3, { "name", "epoch", "primary" } },
	[KIND_NODE] = { "node", 7, { "name", "set", "addr", "udp", "tcp", "repl", "shards" } },
	[KIND_SLOTS] = { "slots", 3, { "first", "last", "set" } },
	[KIND_MOVE] = { "move", 5, { "first", "last", "from", "to", "state" } },
};

/* The parser's state: the map it fills, where it is, and what it checks
 * once every line is read (a set's primary names a node of a later line). */
struct parser {
	struct pm_cmap *m;
	char *err;
	size_t errlen;
	unsigned line;
	int last_kind; /* the previous line's kind, -1 before the first */
	struct word primary[PM_CLUSTER_SETS_MAX];
	unsigned set_line[PM_CLUSTER_SETS_MAX];
};

static bool word_is(struct word w, const char *s)
{
	size_t n = strlen(s);
	return w.n == n && memcmp(w.p, s, n) == 0;
}

/* A decimal number with no sign and no leading zero, min..max: 0 with *v,
 * or -1 with err naming key. */
static int number(struct parser *ps, const char *key, struct word w, uint64_t min, uint64_t max,
		  uint64_t *v)
{
	bool digits = w.n >= 1 && !(w.n > 1 && w.p[0] == '0');
	for (size_t i = 0; digits && i < w.n; i++)
		digits = w.p[i] >= '0' && w.p[i] <= '9';
	if (!digits)
		return fail(ps->err, ps->errlen, ps->line,
			    "%s '%s' is not a decimal number (no sign, no leading zero)", key,
			    quote(w.p, w.n).s);
	uint64_t x = 0;
	bool over = w.n > U64_DIGITS_MAX;
	for (size_t i = 0; !over && i < w.n; i++) {
		unsigned d = (unsigned)(w.p[i] - '0');
		over = x > (UINT64_MAX - d) / 10u;
		x = x * 10u + d;
	}
	if (over || x < min || x > max)
		return fail(ps->err, ps->errlen, ps->line, "%s %s is out of range (%llu..%llu)", key,
			    quote(w.p, w.n).s, (unsigned long long)min, (unsigned long long)max);
	*v = x;
	return 0;
}

/* A dotted IPv4 address (four decimal octets, no leading zero), kept in
 * network order. */
static int ipv4(struct parser *ps, struct word w, uint32_t *addr_be)
{
	uint8_t o[4];
	size_t at = 0;
	for (int i = 0; i < 4; i++) {
		size_t start = at;
		unsigned v = 0;
		while (at < w.n && w.p[at] >= '0' && w.p[at] <= '9' && at - start < 3)
			v = v * 10u + (unsigned)(w.p[at++] - '0');
		size_t digits = at - start;
		bool sep_ok = i < 3 ? at < w.n && w.p[at] == '.' : at == w.n;
		if (digits == 0 || v > 255 || (digits > 1 && w.p[start] == '0') || !sep_ok)
			return fail(ps->err, ps->errlen, ps->line,
				    "addr '%s' is not a dotted IPv4 address", quote(w.p, w.n).s);
		o[i] = (uint8_t)v;
		at += i < 3;
	}
	memcpy(addr_be, o, 4);
	if (*addr_be == 0)
		return fail(ps->err, ps->errlen, ps->line,
			    "addr 0.0.0.0 is no address (zeros mean no primary)");
	return 0;
}

static int name(struct parser *ps, const char *what, struct word w, char *out)
{
	if (!pm_cmap_name_ok(w.p, w.n))
		return fail(ps->err, ps->errlen, ps->line,
			    "%s '%s' is not 1..%u bytes of [a-z0-9_-] (nor '-')", what,
			    quote(w.p, w.n).s, PM_CLUSTER_NAME_BYTES_MAX);
	memcpy(out, w.p, w.n);
	out[w.n] = '\0';
	return 0;
}

/* The set a line names: its index, or PM_CMAP_NONE with err. */
static uint16_t declared_set(struct parser *ps, struct word w)
{
	uint16_t s = find_set(ps->m, w.p, w.n);
	if (s == PM_CMAP_NONE)
		fail(ps->err, ps->errlen, ps->line, "set %s is not declared", quote(w.p, w.n).s);
	return s;
}

static int line_head(struct parser *ps, const struct word *v)
{
	uint64_t epoch;
	if (!word_is(v[K_VERSION], "1"))
		return fail(ps->err, ps->errlen, ps->line, "version %s is not spoken (only 1)",
			    quote(v[K_VERSION].p, v[K_VERSION].n).s);
	if (number(ps, "epoch", v[K_EPOCH], 1, UINT64_MAX, &epoch) != 0)
		return -1;
	ps->m->epoch = epoch;
	return 0;
}

static int line_set(struct parser *ps, const struct word *v)
{
	struct pm_cmap *m = ps->m;
	if (m->nsets == PM_CLUSTER_SETS_MAX)
		return fail(ps->err, ps->errlen, ps->line, "more than %u sets",
			    PM_CLUSTER_SETS_MAX);
	struct pm_cmap_set *s = &m->sets[m->nsets];
	if (name(ps, "set name", v[S_NAME], s->name) != 0)
		return -1;
	if (find_set(m, v[S_NAME].p, v[S_NAME].n) != PM_CMAP_NONE)
		return fail(ps->err, ps->errlen, ps->line, "set %s is declared twice", s->name);
	if (number(ps, "epoch", v[S_EPOCH], 0, UINT64_MAX, &s->epoch) != 0)
		return -1;
	if (!word_is(v[S_PRIMARY], "-") &&
	    !pm_cmap_name_ok(v[S_PRIMARY].p, v[S_PRIMARY].n))
		return fail(ps->err, ps->errlen, ps->line,
			    "primary '%s' is neither a node name nor '-'",
			    quote(v[S_PRIMARY].p, v[S_PRIMARY].n).s);
	s->primary = PM_CMAP_NONE; /* resolved once the nodes are read */
	ps->primary[m->nsets] = v[S_PRIMARY];
	ps->set_line[m->nsets] = ps->line;
	m->nsets++;
	return 0;
}

static int line_node(struct parser *ps, const struct word *v)
{
	struct pm_cmap *m = ps->m;
	if (m->nnodes == PM_CLUSTER_NODES_MAX)
		return fail(ps->err, ps->errlen, ps->line, "more than %u nodes",
			    PM_CLUSTER_NODES_MAX);
	struct pm_cmap_node *n = &m->nodes[m->nnodes];
	uint64_t udp, tcp, repl, shards;
	if (name(ps, "node name", v[N_NAME], n->name) != 0)
		return -1;
	if (find_node(m, v[N_NAME].p, v[N_NAME].n) != PM_CMAP_NONE)
		return fail(ps->err, ps->errlen, ps->line, "node %s is declared twice", n->name);
	if ((n->set = declared_set(ps, v[N_SET])) == PM_CMAP_NONE ||
	    ipv4(ps, v[N_ADDR], &n->addr_be) != 0 ||
	    number(ps, "udp", v[N_UDP], 1, UINT16_MAX, &udp) != 0 ||
	    number(ps, "tcp", v[N_TCP], 0, UINT16_MAX, &tcp) != 0 ||
	    number(ps, "repl", v[N_REPL], 0, UINT16_MAX, &repl) != 0 ||
	    number(ps, "shards", v[N_SHARDS], 1, PM_CMAP_SHARDS_MAX, &shards) != 0)
		return -1;
	if (udp + shards - 1u > UINT16_MAX)
		return fail(ps->err, ps->errlen, ps->line,
			    "udp %llu with %llu shards passes port 65535 (shard i listens on udp + i)",
			    (unsigned long long)udp, (unsigned long long)shards);
	n->udp_port = (uint16_t)udp;
	n->tcp_port = (uint16_t)tcp;
	n->repl_port = (uint16_t)repl;
	n->shards = (uint8_t)shards;
	m->nnodes++;
	return 0;
}

static int line_slots(struct parser *ps, const struct word *v)
{
	struct pm_cmap *m = ps->m;
	if (m->nranges == PM_CLUSTER_RANGES_MAX)
		return fail(ps->err, ps->errlen, ps->line, "more than %u slots lines",
			    PM_CLUSTER_RANGES_MAX);
	uint64_t first, last;
	uint16_t set;
	if (number(ps, "first", v[R_FIRST], 0, PM_CLUSTER_SLOTS - 1u, &first) != 0 ||
	    number(ps, "last", v[R_LAST], 0, PM_CLUSTER_SLOTS - 1u, &last) != 0 ||
	    (set = declared_set(ps, v[R_SET])) == PM_CMAP_NONE)
		return -1;
	if (first > last)
		return fail(ps->err, ps->errlen, ps->line, "first %llu is past last %llu",
			    (unsigned long long)first, (unsigned long long)last);
	/* slot_set holds PM_CMAP_NONE until a line claims the slot */
	for (uint64_t s = first; s <= last; s++)
		if (m->slot_set[s] != PM_CMAP_NONE)
			return fail(ps->err, ps->errlen, ps->line,
				    "slot %llu is also in an earlier slots line",
				    (unsigned long long)s);
	for (uint64_t s = first; s <= last; s++)
		m->slot_set[s] = set;
	m->ranges[m->nranges++] = (struct pm_cmap_range){
		.first = (uint16_t)first, .last = (uint16_t)last, .set = set };
	return 0;
}

static int line_move(struct parser *ps, const struct word *v)
{
	struct pm_cmap *m = ps->m;
	if (m->nmoves == PM_CLUSTER_MOVES_MAX)
		return fail(ps->err, ps->errlen, ps->line, "more than %u move lines",
			    PM_CLUSTER_MOVES_MAX);
	uint64_t first, last;
	uint16_t from, to;
	if (number(ps, "first", v[M_FIRST], 0, PM_CLUSTER_SLOTS - 1u, &first) != 0 ||
	    number(ps, "last", v[M_LAST], 0, PM_CLUSTER_SLOTS - 1u, &last) != 0 ||
	    (from = declared_set(ps, v[M_FROM])) == PM_CMAP_NONE ||
	    (to = declared_set(ps, v[M_TO])) == PM_CMAP_NONE)
		return -1;
	bool copy = word_is(v[M_STATE], "copy");
	if (!copy && !word_is(v[M_STATE], "freeze"))
		return fail(ps->err, ps->errlen, ps->line, "state %s: copy or freeze",
			    quote(v[M_STATE].p, v[M_STATE].n).s);
	m->moves[m->nmoves++] = (struct pm_cmap_move){
		.first = (uint16_t)first, .last = (uint16_t)last, .from = from, .to = to,
		.state = copy ? PM_CMAP_MOVE_COPY : PM_CMAP_MOVE_FREEZE };
	return 0;
}

/* A line's words after its kind, matched to the kind's keys: v[key] is its
 * value. Every key once, no other. */
static int line_keys(struct parser *ps, int kind, const struct word *words, unsigned nwords,
		     struct word *v)
{
	const struct kind *k = &kinds[kind];
	bool seen[LINE_WORDS_MAX] = { false };
	for (unsigned i = 1; i < nwords; i++) {
		const char *eq = memchr(words[i].p, '=', words[i].n);
		if (eq == NULL)
			return fail(ps->err, ps->errlen, ps->line, "'%s' is not key=value",
				    quote(words[i].p, words[i].n).s);
		struct word key = { words[i].p, (size_t)(eq - words[i].p) };
		struct word val = { eq + 1, words[i].n - key.n - 1 };
		unsigned j = 0;
		while (j < k->nkeys && !word_is(key, k->keys[j]))
			j++;
		if (j == k->nkeys)
			return fail(ps->err, ps->errlen, ps->line, "unknown key '%s' in a %s line",
				    quote(key.p, key.n).s, k->word);
		if (seen[j])
			return fail(ps->err, ps->errlen, ps->line, "%s= given twice", k->keys[j]);
		if (val.n == 0)
			return fail(ps->err, ps->errlen, ps->line, "%s= has no value", k->keys[j]);
		seen[j] = true;
		v[j] = val;
	}
	for (unsigned j = 0; j < k->nkeys; j++)
		if (!seen[j])
			return fail(ps->err, ps->errlen, ps->line, "a %s line without %s=", k->word,
				    k->keys[j]);
	return 0;
}

/* A line (without its '\n') cut into words at single spaces. */
static int split(struct parser *ps, const char *p, size_t n, struct word *words, unsigned *nwords)
{
	if (n == 0)
		return fail(ps->err, ps->errlen, ps->line, "empty line");
	*nwords = 0;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && p[i] != ' ') {
			if (p[i] <= 0x20 || p[i] >= 0x7f)
				return fail(ps->err, ps->errlen, ps->line,
					    "byte 0x%02x at column %zu (printable ASCII and single "
					    "spaces only)",
					    (unsigned)(unsigned char)p[i], i + 1);
			continue;
		}
		if (i == start && i == n)
			return fail(ps->err, ps->errlen, ps->line, "a space ends the line");
		if (i == start)
			return fail(ps->err, ps->errlen, ps->line,
				    "a space at column %zu begins no word (single spaces between "
				    "words only)",
				    i + 1);
		if (*nwords == LINE_WORDS_MAX)
			return fail(ps->err, ps->errlen, ps->line, "more than %u words",
				    LINE_WORDS_MAX);
		words[(*nwords)++] = (struct word){ p + start, i - start };
		start = i + 1;
	}
	return 0;
}

/* One line: its kind in the order header, sets, nodes, slots. */
static int parse_line(struct parser *ps, const char *p, size_t n)
{
	struct word words[LINE_WORDS_MAX], v[LINE_WORDS_MAX - 1];
	unsigned nwords = 0;
	if (split(ps, p, n, words, &nwords) != 0)
		return -1;
	int kind = 0;
	while (kind < KIND_COUNT && !word_is(words[0], kinds[kind].word))
		kind++;
	if (kind == KIND_COUNT)
		return fail(ps->err, ps->errlen, ps->line, "unknown line kind '%s'",
			    quote(words[0].p, words[0].n).s);
	if (ps->last_kind < 0 && kind != KIND_HEAD)
		return fail(ps->err, ps->errlen, ps->line,
			    "the document must begin with its pomai-map line");
	if (ps->last_kind >= 0 && kind == KIND_HEAD)
		return fail(ps->err, ps->errlen, ps->line, "a second pomai-map line");
	if (kind < ps->last_kind)
		return fail(ps->err, ps->errlen, ps->line,
			    "a %s line after a %s line (order: pomai-map, set, node, slots, move)",
			    kinds[kind].word, kinds[ps->last_kind].word);
	ps->last_kind = kind;
	if (line_keys(ps, kind, words, nwords, v) != 0)
		return -1;
	switch (kind) {
	case KIND_HEAD:
		return line_head(ps, v);
	case KIND_SET:
		return line_set(ps, v);
	case KIND_NODE:
		return line_node(ps, v);
	case KIND_SLOTS:
		return line_slots(ps, v);
	default:
		return line_move(ps, v);
	}
}

/* Once every line is read: each set's primary a node of that set. */
static int resolve_primaries(struct parser *ps)
{
	struct pm_cmap *m = ps->m;
	for (uint16_t i = 0; i < m->nsets; i++) {
		struct word w = ps->primary[i];
		if (word_is(w, "-"))
			continue;
		uint16_t nd = find_node(m, w.p, w.n);
		if (nd == PM_CMAP_NONE)
			return fail(ps->err, ps->errlen, ps->set_line[i],
				    "primary %s is not declared", quote(w.p, w.n).s);
		if (m->nodes[nd].set != i)
			return fail(ps->err, ps->errlen, ps->set_line[i],
				    "primary %s is a node of set %s, not of %s", m->nodes[nd].name,
				    m->sets[m->nodes[nd].set].name, m->sets[i].name);
		m->sets[i].primary = nd;
	}
	return 0;
}

int pm_cmap_parse(const char *text, size_t len, struct pm_cmap *m, char *err, size_t errlen)
{
	struct parser ps = { .m = m, .err = err, .errlen = errlen, .last_kind = -1 };
	memset(m, 0, sizeof(*m));
	for (uint32_t s = 0; s < PM_CLUSTER_SLOTS; s++)
		m->slot_set[s] = PM_CMAP_NONE;
	if (err && errlen)
		err[0] = '\0';
	if (len > PM_CLUSTER_MAP_TEXT_BYTES_MAX)
		return fail(err, errlen, 0, "the document is %zu bytes, more than %u", len,
			    PM_CLUSTER_MAP_TEXT_BYTES_MAX);
	size_t at = 0;
	while (at < len) {
		ps.line++;
		const char *nl = memchr(text + at, '\n', len - at);
		if (nl == NULL)
			return fail(err, errlen, ps.line, "no newline at its end");
		size_t n = (size_t)(nl - (text + at));
		if (parse_line(&ps, text + at, n) != 0)
			return -1;
		at += n + 1;
	}
	if (ps.last_kind < 0)
		return fail(err, errlen, 0, "empty document (no pomai-map line)");
	if (m->nsets == 0)
		return fail(err, errlen, 0, "no set line");
	for (uint32_t s = 0; s < PM_CLUSTER_SLOTS; s++)
		if (m->slot_set[s] == PM_CMAP_NONE)
			return fail(err, errlen, 0, "slot %u is in no slots line", s);
	if (resolve_primaries(&ps) != 0)
		return -1;
	/* every line's checks passed; the one checker has the last word */
	if (check_rules(m, true, err, errlen) != 0)
		return -1;
	settle(m);
	return 0;
}

/* ---------------------------------------------------------------- format */

/* An output buffer that notes when it ran out; a line goes in whole or
 * not at all. */
struct out {
	char *p;
	size_t cap, n;
	bool full;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	char line[LINE_BYTES_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (o->full || k < 0 || (size_t)k >= sizeof(line) || (size_t)k > o->cap - o->n) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->n, line, (size_t)k);
	o->n += (size_t)k;
}

size_t pm_cmap_format(const struct pm_cmap *m, char *out, size_t cap)
{
	if (check_rules(m, true, NULL, 0) != 0)
		return 0;
	struct out o = { .p = out, .cap = cap < PM_CLUSTER_MAP_TEXT_BYTES_MAX
						 ? cap : PM_CLUSTER_MAP_TEXT_BYTES_MAX };
	put(&o, "pomai-map version=1 epoch=%llu\n", (unsigned long long)m->epoch);
	for (uint16_t i = 0; i < m->nsets; i++) {
		const struct pm_cmap_set *s = &m->sets[i];
		put(&o, "set name=%s epoch=%llu primary=%s\n", s->name, (unsigned long long)s->epoch,
		    s->primary == PM_CMAP_NONE ? "-" : m->nodes[s->primary].name);
	}
	for (uint16_t i = 0; i < m->nnodes; i++) {
		const struct pm_cmap_node *n = &m->nodes[i];
		const uint8_t *a = (const uint8_t *)&n->addr_be;
		put(&o, "node name=%s set=%s addr=%u.%u.%u.%u udp=%u tcp=%u repl=%u shards=%u\n",
		    n->name, m->sets[n->set].name, a[0], a[1], a[2], a[3], n->udp_port,
		    n->tcp_port, n->repl_port, n->shards);
	}
	uint16_t order[PM_CLUSTER_RANGES_MAX];
	ranges_order(m, order);
	for (uint16_t i = 0; i < m->nranges; i++) {
		const struct pm_cmap_range *g = &m->ranges[order[i]];
		put(&o, "slots first=%u last=%u set=%s\n", g->first, g->last, m->sets[g->set].name);
	}
	for (uint16_t i = 0; i < m->nmoves; i++) {
		const struct pm_cmap_move *v = &m->moves[i];
		put(&o, "move first=%u last=%u from=%s to=%s state=%s\n", v->first, v->last,
		    m->sets[v->from].name, m->sets[v->to].name,
		    v->state == PM_CMAP_MOVE_FREEZE ? "freeze" : "copy");
	}
	if (o.full)
		return 0;
	if (o.n < cap)
		out[o.n] = '\0'; /* a convenience when there is room; not counted */
	return o.n;
}

/* ---------------------------------------------------------------- wire */

static size_t wire_bytes(uint32_t nsets, uint32_t nnodes, uint32_t nranges)
{
	return PM_CMAP_WIRE_HEAD_BYTES + (size_t)nnodes * PM_CMAP_WIRE_NODE_BYTES +
	       (size_t)nsets * PM_CMAP_WIRE_SET_BYTES + (size_t)nranges * PM_CMAP_WIRE_RANGE_BYTES;
}

size_t pm_cmap_encode(const struct pm_cmap *m, uint16_t self, uint8_t *out, size_t cap)
{
	if (check_rules(m, false, NULL, 0) != 0 || (self != PM_CMAP_NONE && self >= m->nnodes))
		return 0;
	size_t total = wire_bytes(m->nsets, m->nnodes, m->nranges);
	if (total > cap)
		return 0;
	uint8_t *p = out;
	pm_put_le64(p, m->epoch);
	pm_put_le16(p + 8, m->nsets);
	pm_put_le16(p + 10, m->nnodes);
	pm_put_le16(p + 12, m->nranges);
	pm_put_le16(p + 14, self);
	p += PM_CMAP_WIRE_HEAD_BYTES;
	for (uint16_t i = 0; i < m->nnodes; i++, p += PM_CMAP_WIRE_NODE_BYTES) {
		const struct pm_cmap_node *n = &m->nodes[i];
		memcpy(p, &n->addr_be, 4);
		pm_put_le16(p + 4, n->udp_port);
		pm_put_le16(p + 6, n->tcp_port);
		pm_put_le16(p + 8, n->set);
		p[10] = m->sets[n->set].primary == i ? PM_CMAP_NODE_PRIMARY : 0;
		p[11] = n->shards;
	}
	for (uint16_t i = 0; i < m->nsets; i++, p += PM_CMAP_WIRE_SET_BYTES) {
		pm_put_le16(p, m->sets[i].primary);
		pm_put_le16(p + 2, 0);
		pm_put_le64(p + 4, m->sets[i].epoch);
	}
	uint16_t order[PM_CLUSTER_RANGES_MAX];
	ranges_order(m, order);
	for (uint16_t i = 0; i < m->nranges; i++, p += PM_CMAP_WIRE_RANGE_BYTES) {
		const struct pm_cmap_range *g = &m->ranges[order[i]];
		pm_put_le16(p, g->first);
		pm_put_le16(p + 2, g->last);
		pm_put_le16(p + 4, g->set);
	}
	return total;
}

/* The nodes' entries: every index and field checked; flags after the sets. */
static int decode_nodes(const uint8_t *p, struct pm_cmap *m, uint8_t *flags)
{
	for (uint16_t i = 0; i < m->nnodes; i++, p += PM_CMAP_WIRE_NODE_BYTES) {
		struct pm_cmap_node *n = &m->nodes[i];
		memcpy(&n->addr_be, p, 4);
		n->udp_port = pm_get_le16(p + 4);
		n->tcp_port = pm_get_le16(p + 6);
		n->set = pm_get_le16(p + 8);
		flags[i] = p[10];
		n->shards = p[11];
		if (node_rule(n, m->nsets) != NULL || (flags[i] & ~PM_CMAP_NODE_PRIMARY) != 0)
			return -1;
	}
	return 0;
}

static int decode_sets(const uint8_t *p, struct pm_cmap *m, const uint8_t *flags)
{
	for (uint16_t i = 0; i < m->nsets; i++, p += PM_CMAP_WIRE_SET_BYTES) {
		struct pm_cmap_set *s = &m->sets[i];
		s->primary = pm_get_le16(p);
		s->epoch = pm_get_le64(p + 4);
		if (pm_get_le16(p + 2) != 0)
			return -1;
		if (s->primary != PM_CMAP_NONE &&
		    (s->primary >= m->nnodes || m->nodes[s->primary].set != i))
			return -1;
	}
	/* a node's flag says exactly whether it is its set's primary */
	for (uint16_t i = 0; i < m->nnodes; i++)
		if (((flags[i] & PM_CMAP_NODE_PRIMARY) != 0) != (m->sets[m->nodes[i].set].primary == i))
			return -1;
	return 0;
}

/* The ranges: ascending and contiguous from slot 0 to the last slot, which
 * is "every slot exactly once" in the one order encode writes. */
static int decode_ranges(const uint8_t *p, struct pm_cmap *m)
{
	uint32_t next = 0;
	for (uint16_t i = 0; i < m->nranges; i++, p += PM_CMAP_WIRE_RANGE_BYTES) {
		struct pm_cmap_range *g = &m->ranges[i];
		g->first = pm_get_le16(p);
		g->last = pm_get_le16(p + 2);
		g->set = pm_get_le16(p + 4);
		if (g->first != next || g->last < g->first || g->last >= PM_CLUSTER_SLOTS ||
		    g->set >= m->nsets)
			return -1;
		next = (uint32_t)g->last + 1u;
	}
	return next == PM_CLUSTER_SLOTS ? 0 : -1;
}

int pm_cmap_decode(const uint8_t *p, size_t len, struct pm_cmap *m, uint16_t *self)
{
	memset(m, 0, sizeof(*m));
	*self = PM_CMAP_NONE;
	if (len < PM_CMAP_WIRE_HEAD_BYTES)
		return -1;
	m->epoch = pm_get_le64(p);
	m->nsets = pm_get_le16(p + 8);
	m->nnodes = pm_get_le16(p + 10);
	m->nranges = pm_get_le16(p + 12);
	uint16_t me = pm_get_le16(p + 14);
	if (m->epoch == 0 || m->nsets == 0 || m->nsets > PM_CLUSTER_SETS_MAX ||
	    m->nnodes > PM_CLUSTER_NODES_MAX || m->nranges == 0 ||
	    m->nranges > PM_CLUSTER_RANGES_MAX || (me != PM_CMAP_NONE && me >= m->nnodes) ||
	    len != wire_bytes(m->nsets, m->nnodes, m->nranges))
		return -1;
	uint8_t flags[PM_CLUSTER_NODES_MAX];
	const uint8_t *nodes = p + PM_CMAP_WIRE_HEAD_BYTES;
	const uint8_t *sets = nodes + (size_t)m->nnodes * PM_CMAP_WIRE_NODE_BYTES;
	const uint8_t *ranges = sets + (size_t)m->nsets * PM_CMAP_WIRE_SET_BYTES;
	if (decode_nodes(nodes, m, flags) != 0 || decode_sets(sets, m, flags) != 0 ||
	    decode_ranges(ranges, m) != 0)
		return -1;
	/* the rules the wire can carry, as the checker holds them */
	if (check_rules(m, false, NULL, 0) != 0)
		return -1;
	settle(m);
	*self = me;
	return 0;
}
