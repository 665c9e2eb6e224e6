/* SPDX-License-Identifier: MIT
 *
 * test_cluster_map.c — CUnit suite of the cluster's slot map
 * (proto/cluster_map.{h,c}; docs/protocol.md, "MAP").
 *
 * The document: the header's example parsed field by field and printed back
 * byte for byte; every rule broken once, each with the exact one-line error
 * it must give (line number and reason); the bounds met and passed by one.
 * The wire form: pinned byte by byte for the example map (the bytes written
 * out here by hand, not by the encoder), every prefix and every field rule
 * refused. Maps at every bound, random maps and mutated documents and wire
 * forms round-trip through text and wire, each accepted map checked by
 * cmap_check.c's independent reading of the rules.
 *
 * Every parse and decode reads from a heap copy of exactly the bytes given,
 * so a read past len is caught by ASan in the sanitizer build.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_proto.h"
#include "cluster_map.h"
#include "cmap_check.h"
#include "cu_main.h"
#include "route.h"

/* Error text of a refusal, at most (the parser cuts at errlen). */
#define ERR_BYTES 256u
/* Room for a document at the bound and one byte more. */
#define DOC_CAP (PM_CLUSTER_MAP_TEXT_BYTES_MAX + 64u)
/* Random maps of the property loop, and mutated wire forms and documents. */
#define PROP_MAPS 1500u
#define PROP_WIRE_MUTATIONS 100000u
#define PROP_TEXT_MUTATIONS 30000u

/* The header's example, in the canonical form. */
static const char EXAMPLE[] =
	"pomai-map version=1 epoch=12\n"
	"set name=s1 epoch=3 primary=n1\n"
	"set name=s2 epoch=1 primary=-\n"
	"node name=n1 set=s1 addr=127.0.0.1 udp=21000 tcp=20999 repl=21100 shards=2\n"
	"node name=n2 set=s1 addr=127.0.0.1 udp=21010 tcp=0 repl=21110 shards=2\n"
	"slots first=0 last=8191 set=s1\n"
	"slots first=8192 last=16383 set=s2\n";
#define EXAMPLE_LINES 7

/* The example's wire form as node n2 (index 1) answers, written out by hand
 * from the layout in cluster_map.h. */
static const uint8_t EXAMPLE_WIRE[] = {
	/* epoch 12, nsets 2, nnodes 2, nranges 2, self 1 */
	0x0c, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0x02, 0, 0x02, 0, 0x01, 0,
	/* n1: 127.0.0.1, udp 21000, tcp 20999, set 0, primary, 2 shards */
	127, 0, 0, 1, 0x08, 0x52, 0x07, 0x52, 0, 0, 0x01, 2,
	/* n2: 127.0.0.1, udp 21010, tcp 0, set 0, not primary, 2 shards */
	127, 0, 0, 1, 0x12, 0x52, 0, 0, 0, 0, 0x00, 2,
	/* s1: primary node 0, 0, epoch 3 */
	0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0,
	/* s2: no primary, 0, epoch 1 */
	0xff, 0xff, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
	/* slots 0..8191 to set 0, 8192..16383 to set 1 */
	0, 0, 0xff, 0x1f, 0, 0,
	0x00, 0x20, 0xff, 0x3f, 1, 0,
};

/* ---------------------------------------------------------------- helpers */

static struct pm_cmap *new_map(void)
{
	struct pm_cmap *m = calloc(1, sizeof(*m));
	CU_ASSERT_FATAL(m != NULL);
	return m;
}

/* Parse n bytes of text from a heap copy of exactly n bytes. What every
 * result keeps is checked here: a refusal has a one-line reason, an
 * accepted map keeps every rule. */
static int parse(const char *text, size_t n, struct pm_cmap *m, char *err)
{
	char *copy = malloc(n ? n : 1);
	CU_ASSERT_FATAL(copy != NULL);
	memcpy(copy, text, n);
	memset(err, 0x55, ERR_BYTES);
	int r = pm_cmap_parse(copy, n, m, err, ERR_BYTES);
	free(copy);
	CU_ASSERT(r == 0 || r == -1);
	if (r == 0) {
		const char *why = cmap_rules(m, true);
		CU_ASSERT_PTR_NULL(why);
		if (why)
			printf("\n  accepted map breaks: %s\n", why);
	} else {
		CU_ASSERT(memchr(err, '\0', ERR_BYTES) != NULL);
		CU_ASSERT(err[0] != '\0' && strchr(err, '\n') == NULL);
	}
	return r;
}

static int parse_str(const char *text, struct pm_cmap *m, char *err)
{
	return parse(text, strlen(text), m, err);
}

/* Decode n bytes from a heap copy of exactly n bytes; an accepted map keeps
 * every rule and re-encodes to the same bytes. */
static int decode(const uint8_t *w, size_t n, struct pm_cmap *m, uint16_t *self)
{
	uint8_t *copy = malloc(n ? n : 1);
	CU_ASSERT_FATAL(copy != NULL);
	memcpy(copy, w, n);
	int r = pm_cmap_decode(copy, n, m, self);
	free(copy);
	CU_ASSERT(r == 0 || r == -1);
	if (r == 0) {
		CU_ASSERT_PTR_NULL(cmap_rules(m, false));
		static uint8_t again[PM_CMAP_WIRE_BYTES_MAX];
		CU_ASSERT(*self == PM_CMAP_NONE || *self < m->nnodes);
		CU_ASSERT_EQUAL(pm_cmap_encode(m, *self, again, sizeof(again)), n);
		CU_ASSERT(memcmp(again, w, n) == 0);
	}
	return r;
}

/* The example with line `line` (1-based) replaced by `with` (which may hold
 * several lines; "" drops the line), into out; its length. */
static size_t example_with(unsigned line, const char *with, char *out, size_t cap)
{
	size_t n = 0;
	const char *p = EXAMPLE;
	for (unsigned l = 1; l <= EXAMPLE_LINES; l++) {
		const char *nl = strchr(p, '\n');
		const char *src = l == line ? with : p;
		size_t len = l == line ? strlen(with) : (size_t)(nl - p + 1);
		CU_ASSERT_FATAL(n + len + 1 < cap);
		memcpy(out + n, src, len);
		n += len;
		if (l == line && len > 0 && with[len - 1] != '\n')
			out[n++] = '\n';
		p = nl + 1;
	}
	out[n] = '\0';
	return n;
}

/* A deterministic random map: counts as given (nranges at most), names of
 * name_len bytes (0: short ones), every field drawn; checked. */
static void random_map(uint64_t *seed, struct pm_cmap *m, unsigned nsets, unsigned nnodes,
		       unsigned nranges, unsigned name_len)
{
	memset(m, 0, sizeof(*m));
	m->epoch = 1 + pm_test_rand(seed) % UINT64_MAX;
	m->nsets = (uint16_t)nsets;
	m->nnodes = (uint16_t)nnodes;
	for (unsigned i = 0; i < nsets; i++) {
		if (name_len)
			snprintf(m->sets[i].name, sizeof(m->sets[i].name), "%0*u", (int)name_len, i);
		else
			snprintf(m->sets[i].name, sizeof(m->sets[i].name), "s_%u", i);
		uint64_t shift = pm_test_rand(seed) % 64;
		m->sets[i].epoch = pm_test_rand(seed) >> shift;
		m->sets[i].primary = PM_CMAP_NONE;
	}
	for (unsigned i = 0; i < nnodes; i++) {
		struct pm_cmap_node *n = &m->nodes[i];
		if (name_len)
			snprintf(n->name, sizeof(n->name), "n%0*u", (int)name_len - 1, i);
		else
			snprintf(n->name, sizeof(n->name), "node-%u", i);
		n->set = (uint16_t)(pm_test_rand(seed) % nsets);
		n->addr_be = (uint32_t)pm_test_rand(seed) | 1u;
		n->shards = (uint8_t)(1 + pm_test_rand(seed) % PM_CMAP_SHARDS_MAX);
		n->udp_port = (uint16_t)(1 + pm_test_rand(seed) % (65536u - n->shards));
		n->tcp_port = (uint16_t)pm_test_rand(seed);
		n->repl_port = (uint16_t)pm_test_rand(seed);
		if (pm_test_rand(seed) % 2)
			m->sets[n->set].primary = (uint16_t)i;
	}
	/* nranges - 1 cuts (fewer if two fall together), ranges in a shuffled
	 * order: pm_cmap_check puts them in slot order */
	uint8_t cut[PM_CLUSTER_SLOTS] = { 0 };
	for (unsigned c = 1; c < nranges; c++)
		cut[1 + pm_test_rand(seed) % (PM_CLUSTER_SLOTS - 1)] = 1;
	unsigned first = 0;
	for (unsigned s = 1; s <= PM_CLUSTER_SLOTS; s++)
		if (s == PM_CLUSTER_SLOTS || cut[s]) {
			m->ranges[m->nranges++] = (struct pm_cmap_range){
				(uint16_t)first, (uint16_t)(s - 1),
				(uint16_t)(pm_test_rand(seed) % nsets) };
			first = s;
		}
	for (unsigned i = m->nranges; i > 1; i--) {
		unsigned j = (unsigned)(pm_test_rand(seed) % i);
		struct pm_cmap_range t = m->ranges[i - 1];
		m->ranges[i - 1] = m->ranges[j];
		m->ranges[j] = t;
	}
	char err[ERR_BYTES];
	CU_ASSERT_EQUAL_FATAL(pm_cmap_check(m, err, sizeof(err)), 0);
}

/* A map at every bound: the most sets, nodes and ranges, every name and
 * number at its longest. */
static void bound_map(struct pm_cmap *m)
{
	memset(m, 0, sizeof(*m));
	m->epoch = UINT64_MAX;
	m->nsets = PM_CLUSTER_SETS_MAX;
	m->nnodes = PM_CLUSTER_NODES_MAX;
	m->nranges = PM_CLUSTER_RANGES_MAX;
	for (unsigned i = 0; i < PM_CLUSTER_SETS_MAX; i++) {
		snprintf(m->sets[i].name, sizeof(m->sets[i].name), "set-%012u", i);
		m->sets[i].epoch = UINT64_MAX - i;
		m->sets[i].primary = (uint16_t)i; /* node i is in set i */
	}
	for (unsigned i = 0; i < PM_CLUSTER_NODES_MAX; i++) {
		struct pm_cmap_node *n = &m->nodes[i];
		snprintf(n->name, sizeof(n->name), "node_%011u", i);
		n->set = (uint16_t)(i % PM_CLUSTER_SETS_MAX);
		n->addr_be = UINT32_MAX;
		n->shards = PM_CMAP_SHARDS_MAX;
		n->udp_port = (uint16_t)(65536u - PM_CMAP_SHARDS_MAX);
		n->tcp_port = 65535;
		n->repl_port = 65535;
	}
	unsigned width = PM_CLUSTER_SLOTS / PM_CLUSTER_RANGES_MAX;
	for (unsigned r = 0; r < PM_CLUSTER_RANGES_MAX; r++)
		m->ranges[r] = (struct pm_cmap_range){ (uint16_t)(r * width),
						       (uint16_t)(r * width + width - 1),
						       (uint16_t)(r % PM_CLUSTER_SETS_MAX) };
	char err[ERR_BYTES];
	CU_ASSERT_EQUAL_FATAL(pm_cmap_check(m, err, sizeof(err)), 0);
}

/* The document of a checked map, through every path: printed, parsed back
 * to the same map and printed to the same bytes; encoded as each of self,
 * decoded to the same map less names, re-encoded to the same bytes. */
static void round_trips(const struct pm_cmap *m, uint16_t self)
{
	static char t1[DOC_CAP], t2[DOC_CAP];
	static uint8_t w1[PM_CMAP_WIRE_BYTES_MAX];
	struct pm_cmap *b = new_map(), *c = new_map();
	char err[ERR_BYTES];
	CU_ASSERT_PTR_NULL(cmap_rules(m, true));
	size_t n1 = pm_cmap_format(m, t1, sizeof(t1));
	CU_ASSERT(n1 > 0 && n1 <= PM_CLUSTER_MAP_TEXT_BYTES_MAX);
	CU_ASSERT_EQUAL_FATAL(parse(t1, n1, b, err), 0);
	const char *d = cmap_diff(m, b, true);
	CU_ASSERT_PTR_NULL(d);
	if (d)
		printf("\n  parse(format(m)) differs in %s\n", d);
	size_t n2 = pm_cmap_format(b, t2, sizeof(t2));
	CU_ASSERT(n2 == n1 && memcmp(t1, t2, n1) == 0);
	size_t wn = pm_cmap_encode(m, self, w1, sizeof(w1));
	CU_ASSERT_EQUAL(wn, 16u + 12u * m->nnodes + 12u * m->nsets + 6u * m->nranges);
	uint16_t me = 0;
	CU_ASSERT_EQUAL(decode(w1, wn, c, &me), 0);
	CU_ASSERT_EQUAL(me, self);
	CU_ASSERT_PTR_NULL(cmap_diff(m, c, false));
	free(b);
	free(c);
}

/* ---------------------------------------------------------------- document */

static void test_example(void)
{
	struct pm_cmap *m = new_map();
	char err[ERR_BYTES], out[1024];
	CU_ASSERT_EQUAL_FATAL(parse_str(EXAMPLE, m, err), 0);
	CU_ASSERT_EQUAL(m->epoch, 12);
	CU_ASSERT(m->nsets == 2 && m->nnodes == 2 && m->nranges == 2);
	CU_ASSERT_STRING_EQUAL(m->sets[0].name, "s1");
	CU_ASSERT(m->sets[0].epoch == 3 && m->sets[0].primary == 0);
	CU_ASSERT_STRING_EQUAL(m->sets[1].name, "s2");
	CU_ASSERT(m->sets[1].epoch == 1 && m->sets[1].primary == PM_CMAP_NONE);
	const struct pm_cmap_node *n = &m->nodes[1];
	CU_ASSERT_STRING_EQUAL(n->name, "n2");
	CU_ASSERT(memcmp(&n->addr_be, (const uint8_t[]){ 127, 0, 0, 1 }, 4) == 0);
	CU_ASSERT(n->set == 0 && n->udp_port == 21010 && n->tcp_port == 0 &&
		  n->repl_port == 21110 && n->shards == 2);
	CU_ASSERT(m->nodes[0].tcp_port == 20999 && m->nodes[0].repl_port == 21100);
	CU_ASSERT(m->slot_set[0] == 0 && m->slot_set[8191] == 0);
	CU_ASSERT(m->slot_set[8192] == 1 && m->slot_set[16383] == 1);
	CU_ASSERT_EQUAL(pm_cmap_set_index(m, "s2"), 1);
	CU_ASSERT_EQUAL(pm_cmap_set_index(m, "s3"), PM_CMAP_NONE);
	CU_ASSERT_EQUAL(pm_cmap_node_index(m, "n2"), 1);
	CU_ASSERT_EQUAL(pm_cmap_node_index(m, "n"), PM_CMAP_NONE);
	CU_ASSERT_EQUAL(pm_cmap_node_index(m, "s1"), PM_CMAP_NONE);
	/* printed back byte for byte, NUL after it when there is room */
	memset(out, 'x', sizeof(out));
	size_t len = strlen(EXAMPLE);
	CU_ASSERT_EQUAL(pm_cmap_format(m, out, sizeof(out)), len);
	CU_ASSERT(memcmp(out, EXAMPLE, len) == 0 && out[len] == '\0');
	/* an exact cap is enough (no NUL then); one byte less is not */
	memset(out, 'x', sizeof(out));
	CU_ASSERT_EQUAL(pm_cmap_format(m, out, len), len);
	CU_ASSERT(memcmp(out, EXAMPLE, len) == 0 && out[len] == 'x');
	for (size_t cap = 0; cap < len; cap++)
		CU_ASSERT_EQUAL(pm_cmap_format(m, out, cap), 0);
	round_trips(m, 1);
	round_trips(m, PM_CMAP_NONE);
	free(m);
}

/* A document in another order of keys and of slots lines means the same map
 * and prints in the canonical form. */
static void test_free_order(void)
{
	static const char doc[] =
		"pomai-map epoch=12 version=1\n"
		"set primary=n1 epoch=3 name=s1\n"
		"set epoch=1 name=s2 primary=-\n"
		"node shards=2 repl=21100 tcp=20999 udp=21000 addr=127.0.0.1 set=s1 name=n1\n"
		"node name=n2 set=s1 addr=127.0.0.1 udp=21010 tcp=0 repl=21110 shards=2\n"
		"slots set=s2 first=8192 last=16383\n"
		"slots first=0 last=8191 set=s1\n";
	struct pm_cmap *a = new_map(), *b = new_map();
	char err[ERR_BYTES], out[1024];
	CU_ASSERT_EQUAL_FATAL(parse_str(doc, a, err), 0);
	CU_ASSERT_EQUAL_FATAL(parse_str(EXAMPLE, b, err), 0);
	CU_ASSERT_PTR_NULL(cmap_diff(a, b, true));
	size_t n = pm_cmap_format(a, out, sizeof(out));
	CU_ASSERT(n == strlen(EXAMPLE) && memcmp(out, EXAMPLE, n) == 0);
	free(a);
	free(b);
}

/* Values at their edges that are accepted. */
static void test_edges_accepted(void)
{
	static const struct {
		unsigned line;
		const char *with;
	} ok[] = {
		{ 1, "pomai-map version=1 epoch=1" },
		{ 1, "pomai-map version=1 epoch=18446744073709551615" },
		{ 2, "set name=s1 epoch=0 primary=n1" },
		{ 2, "set name=s1 epoch=18446744073709551615 primary=-" },
		{ 5, "node name=n2 set=s1 addr=255.255.255.255 udp=65534 tcp=65535 repl=65535 "
		     "shards=2" },
		{ 5, "node name=n2 set=s1 addr=0.0.0.1 udp=1 tcp=0 repl=0 shards=255" },
		{ 5, "node name=n2 set=s1 addr=10.0.0.9 udp=65281 tcp=1 repl=1 shards=255" },
		{ 5, "node name=n2 set=s2 addr=10.0.0.9 udp=65535 tcp=1 repl=1 shards=1" },
		{ 5, "" }, /* a set may have one node, or none (s2) */
		{ 6, "slots first=0 last=0 set=s1\nslots first=1 last=8191 set=s2" },
		{ 7, "slots first=16383 last=16383 set=s2\nslots first=8192 last=16382 set=s1" },
	};
	char doc[2048], err[ERR_BYTES];
	struct pm_cmap *m = new_map();
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		size_t n = example_with(ok[i].line, ok[i].with, doc, sizeof(doc));
		int r = parse(doc, n, m, err);
		CU_ASSERT_EQUAL(r, 0);
		if (r != 0)
			printf("\n  case %zu refused: %s\n", i, err);
		else
			round_trips(m, 0);
	}
	/* names at their longest and of every character */
	CU_ASSERT_EQUAL(parse_str("pomai-map version=1 epoch=12\n"
				  "set name=abcdefghijklmnop epoch=3 primary=-_0123456789xyz\n"
				  "set name=-s_1-0 epoch=1 primary=-\n"
				  "node name=-_0123456789xyz set=abcdefghijklmnop addr=127.0.0.1 "
				  "udp=21000 tcp=20999 repl=21100 shards=2\n"
				  "node name=qrstuvw set=-s_1-0 addr=127.0.0.1 udp=21010 tcp=0 repl=0 "
				  "shards=2\n"
				  "slots first=0 last=8191 set=abcdefghijklmnop\n"
				  "slots first=8192 last=16383 set=-s_1-0\n",
				  m, err),
			0);
	CU_ASSERT_EQUAL(pm_cmap_node_index(m, "-_0123456789xyz"), 0);
	CU_ASSERT_EQUAL(m->sets[0].primary, 0);
	CU_ASSERT_EQUAL(m->slot_set[16383], pm_cmap_set_index(m, "-s_1-0"));
	round_trips(m, 1);
	/* the least map: one set, no node, the greatest epoch */
	CU_ASSERT_EQUAL(parse_str("pomai-map version=1 epoch=18446744073709551615\n"
				  "set name=a epoch=0 primary=-\n"
				  "slots first=0 last=16383 set=a\n",
				  m, err),
			0);
	CU_ASSERT(m->epoch == UINT64_MAX && m->nnodes == 0 && m->sets[0].epoch == 0);
	free(m);
}

/* Every rule broken once: the one-line error says which, on which line. */
static void test_rules_broken(void)
{
	static const struct {
		unsigned line; /* the example's line replaced */
		const char *with;
		const char *err;
	} bad[] = {
		/* the header */
		{ 1, "pomai-map version=2 epoch=12", "line 1: version 2 is not spoken (only 1)" },
		{ 1, "pomai-map version=01 epoch=12", "line 1: version 01 is not spoken (only 1)" },
		{ 1, "pomai-map version=1 epoch=0",
		  "line 1: epoch 0 is out of range (1..18446744073709551615)" },
		{ 1, "pomai-map version=1 epoch=18446744073709551616",
		  "line 1: epoch 18446744073709551616 is out of range (1..18446744073709551615)" },
		{ 1, "pomai-map version=1 epoch=100000000000000000000",
		  "line 1: epoch 100000000000000000000 is out of range (1..18446744073709551615)" },
		{ 1, "pomai-map version=1 epoch=012",
		  "line 1: epoch '012' is not a decimal number (no sign, no leading zero)" },
		{ 1, "pomai-map version=1 epoch=-1",
		  "line 1: epoch '-1' is not a decimal number (no sign, no leading zero)" },
		{ 1, "pomai-map version=1 epoch=+1",
		  "line 1: epoch '+1' is not a decimal number (no sign, no leading zero)" },
		{ 1, "pomai-map version=1 epoch=1x",
		  "line 1: epoch '1x' is not a decimal number (no sign, no leading zero)" },
		{ 1, "pomai-map version=1", "line 1: a pomai-map line without epoch=" },
		{ 1, "pomai-map epoch=12", "line 1: a pomai-map line without version=" },
		{ 1, "pomai-map version=1 epoch=12 shards=2",
		  "line 1: unknown key 'shards' in a pomai-map line" },
		{ 1, "pomai-map version=1 epoch=12 epoch=13", "line 1: epoch= given twice" },
		{ 1, "pomai-map version=1 epoch=", "line 1: epoch= has no value" },
		{ 1, "pomai-map version=1 =12", "line 1: unknown key '' in a pomai-map line" },
		{ 1, "pomai-map version=1 epoch", "line 1: 'epoch' is not key=value" },
		{ 1, "Pomai-map version=1 epoch=12", "line 1: unknown line kind 'Pomai-map'" },
		{ 1, "", "line 1: the document must begin with its pomai-map line" },
		{ 3, "pomai-map version=1 epoch=12", "line 3: a second pomai-map line" },
		{ 3, "shard name=x", "line 3: unknown line kind 'shard'" },
		/* line order */
		{ 5, "set name=s3 epoch=1 primary=-",
		  "line 5: a set line after a node line (order: pomai-map, set, node, slots, move)" },
		{ 7, "node name=n3 set=s2 addr=10.0.0.3 udp=1 tcp=0 repl=0 shards=1",
		  "line 7: a node line after a slots line (order: pomai-map, set, node, slots, move)" },
		{ 7, "set name=s3 epoch=1 primary=-",
		  "line 7: a set line after a slots line (order: pomai-map, set, node, slots, move)" },
		/* names */
		{ 2, "set name=S1 epoch=3 primary=n1",
		  "line 2: set name 'S1' is not 1..16 bytes of [a-z0-9_-] (nor '-')" },
		{ 2, "set name=abcdefghijklmnopq epoch=3 primary=n1",
		  "line 2: set name 'abcdefghijklmnopq' is not 1..16 bytes of [a-z0-9_-] (nor '-')" },
		{ 2, "set name=- epoch=3 primary=n1",
		  "line 2: set name '-' is not 1..16 bytes of [a-z0-9_-] (nor '-')" },
		{ 2, "set name=s.1 epoch=3 primary=n1",
		  "line 2: set name 's.1' is not 1..16 bytes of [a-z0-9_-] (nor '-')" },
		{ 3, "set name=s1 epoch=1 primary=-", "line 3: set s1 is declared twice" },
		{ 5, "node name=n1 set=s1 addr=127.0.0.1 udp=21010 tcp=0 repl=21110 shards=2",
		  "line 5: node n1 is declared twice" },
		{ 5, "node name=N2 set=s1 addr=127.0.0.1 udp=21010 tcp=0 repl=21110 shards=2",
		  "line 5: node name 'N2' is not 1..16 bytes of [a-z0-9_-] (nor '-')" },
		{ 5, "node name=n2 set=s9 addr=127.0.0.1 udp=21010 tcp=0 repl=21110 shards=2",
		  "line 5: set s9 is not declared" },
		{ 5, "node name=n2 set=- addr=127.0.0.1 udp=21010 tcp=0 repl=21110 shards=2",
		  "line 5: set - is not declared" },
		/* primaries */
		{ 2, "set name=s1 epoch=3 primary=n9", "line 2: primary n9 is not declared" },
		{ 3, "set name=s2 epoch=1 primary=n2",
		  "line 3: primary n2 is a node of set s1, not of s2" },
		{ 2, "set name=s1 epoch=3 primary=N1",
		  "line 2: primary 'N1' is neither a node name nor '-'" },
		{ 2, "set name=s1 epoch=-1 primary=n1",
		  "line 2: epoch '-1' is not a decimal number (no sign, no leading zero)" },
		/* a node's fields */
		{ 5, "node name=n2 set=s1 addr=127.0.0 udp=21010 tcp=0 repl=21110 shards=2",
		  "line 5: addr '127.0.0' is not a dotted IPv4 address" },
		{ 5, "node name=n2 set=s1 addr=127.0.0.1.5 udp=21010 tcp=0 repl=21110 shards=2",
		  "line 5: addr '127.0.0.1.5' is not a dotted IPv4 address" },
		{ 5, "node name=n2 set=s1 addr=127.0.0.1. udp=21010 tcp=0 repl=21110 shards=2",
		  "line 5: addr '127.0.0.1.' is not a dotted IPv4 address" },
		{ 5, "node name=n2 set=s1 addr=256.0.0.1 udp=21010 tcp=0 repl=21110 shards=2",
		  "line 5: addr '256.0.0.1' is not a dotted IPv4 address" },
		{ 5, "node name=n2 set=s1 addr=1234.0.0.1 udp=21010 tcp=0 repl=21110 shards=2",
		  "line 5: addr '1234.0.0.1' is not a dotted IPv4 address" },
		{ 5, "node name=n2 set=s1 addr=01.0.0.1 udp=21010 tcp=0 repl=21110 shards=2",
		  "line 5: addr '01.0.0.1' is not a dotted IPv4 address" },
		{ 5, "node name=n2 set=s1 addr=1..0.1 udp=21010 tcp=0 repl=21110 shards=2",
		  "line 5: addr '1..0.1' is not a dotted IPv4 address" },
		{ 5, "node name=n2 set=s1 addr=a.b.c.d udp=21010 tcp=0 repl=21110 shards=2",
		  "line 5: addr 'a.b.c.d' is not a dotted IPv4 address" },
		{ 5, "node name=n2 set=s1 addr=localhost udp=21010 tcp=0 repl=21110 shards=2",
		  "line 5: addr 'localhost' is not a dotted IPv4 address" },
		{ 5, "node name=n2 set=s1 addr=0.0.0.0 udp=21010 tcp=0 repl=21110 shards=2",
		  "line 5: addr 0.0.0.0 is no address (zeros mean no primary)" },
		{ 5, "node name=n2 set=s1 addr=127.0.0.1 udp=0 tcp=0 repl=21110 shards=2",
		  "line 5: udp 0 is out of range (1..65535)" },
		{ 5, "node name=n2 set=s1 addr=127.0.0.1 udp=65536 tcp=0 repl=21110 shards=2",
		  "line 5: udp 65536 is out of range (1..65535)" },
		{ 5, "node name=n2 set=s1 addr=127.0.0.1 udp=21010 tcp=65536 repl=21110 shards=2",
		  "line 5: tcp 65536 is out of range (0..65535)" },
		{ 5, "node name=n2 set=s1 addr=127.0.0.1 udp=21010 tcp=0 repl=65536 shards=2",
		  "line 5: repl 65536 is out of range (0..65535)" },
		{ 5, "node name=n2 set=s1 addr=127.0.0.1 udp=21010 tcp=0 repl=21110 shards=0",
		  "line 5: shards 0 is out of range (1..255)" },
		{ 5, "node name=n2 set=s1 addr=127.0.0.1 udp=21010 tcp=0 repl=21110 shards=256",
		  "line 5: shards 256 is out of range (1..255)" },
		{ 5, "node name=n2 set=s1 addr=127.0.0.1 udp=65535 tcp=0 repl=21110 shards=2",
		  "line 5: udp 65535 with 2 shards passes port 65535 (shard i listens on udp + i)" },
		{ 5, "node name=n2 set=s1 addr=127.0.0.1 udp=21010 tcp=0 repl=21110",
		  "line 5: a node line without shards=" },
		{ 5, "node name=n2 set=s1 addr=127.0.0.1 udp=21010 tcp=0 weight=1 shards=2",
		  "line 5: unknown key 'weight' in a node line" },
		{ 5, "node name=n2 set=s1 addr=127.0.0.1 udp=21010 tcp=0 repl=21110 shards=2 x=1",
		  "line 5: more than 8 words" },
		/* slots */
		{ 6, "slots first=8191 last=0 set=s1", "line 6: first 8191 is past last 0" },
		{ 7, "slots first=8192 last=16384 set=s2",
		  "line 7: last 16384 is out of range (0..16383)" },
		{ 7, "slots first=16384 last=16384 set=s2",
		  "line 7: first 16384 is out of range (0..16383)" },
		{ 7, "slots first=8191 last=16383 set=s2",
		  "line 7: slot 8191 is also in an earlier slots line" },
		{ 7, "slots first=0 last=0 set=s2", "line 7: slot 0 is also in an earlier slots line" },
		{ 7, "slots first=8193 last=16383 set=s2", "slot 8192 is in no slots line" },
		{ 7, "slots first=8192 last=16382 set=s2", "slot 16383 is in no slots line" },
		{ 7, "", "slot 8192 is in no slots line" },
		{ 7, "slots first=8192 last=16383 set=s3", "line 7: set s3 is not declared" },
		{ 7, "slots first=8192 last=16383", "line 7: a slots line without set=" },
		/* layout */
		{ 4, "\n", "line 4: empty line" },
		{ 2, "set name=s1  epoch=3 primary=n1",
		  "line 2: a space at column 13 begins no word (single spaces between words only)" },
		{ 2, " set name=s1 epoch=3 primary=n1",
		  "line 2: a space at column 1 begins no word (single spaces between words only)" },
		{ 2, "set name=s1 epoch=3 primary=n1 ", "line 2: a space ends the line" },
		{ 2, "set name=s1\tepoch=3 primary=n1",
		  "line 2: byte 0x09 at column 12 (printable ASCII and single spaces only)" },
		{ 1, "pomai-map version=1 epoch=12\r",
		  "line 1: byte 0x0d at column 29 (printable ASCII and single spaces only)" },
		{ 2, "set name=s1 epoch=3 primary=n1\xc3\xa9",
		  "line 2: byte 0xc3 at column 31 (printable ASCII and single spaces only)" },
		{ 2, "set name=s1 epoch=3 primary=n1 # the first set",
		  "line 2: '#' is not key=value" },
		{ 2, "# sets\nset name=s1 epoch=3 primary=n1", "line 2: unknown line kind '#'" },
		{ 5, "node name=n2 set=s1 addr=127.0.0.1 udp=21010 tcp=0 repl=21110 "
		     "shards=2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  "line 5: shards '2aaaaaaaaaaaaaaaaaaaaaaa...' is not a decimal number (no sign, "
		  "no leading zero)" },
	};
	char doc[2048], err[ERR_BYTES];
	struct pm_cmap *m = new_map();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = example_with(bad[i].line, bad[i].with, doc, sizeof(doc));
		int r = parse(doc, n, m, err);
		CU_ASSERT_EQUAL(r, -1);
		if (r == -1 && strcmp(err, bad[i].err) != 0)
			printf("\n  case %zu: got    '%s'\n           wanted '%s'\n", i, err, bad[i].err);
		CU_ASSERT(r == -1 && strcmp(err, bad[i].err) == 0);
	}
	free(m);
}

/* Whole-document rules: an end without newline, NUL bytes, nothing, no
 * sets, too long; and a short error buffer cuts the reason, not memory. */
static void test_document_rules(void)
{
	char err[ERR_BYTES], doc[2048];
	struct pm_cmap *m = new_map();
	size_t len = strlen(EXAMPLE);
	CU_ASSERT_EQUAL(parse(EXAMPLE, len - 1, m, err), -1);
	CU_ASSERT_STRING_EQUAL(err, "line 7: no newline at its end");
	CU_ASSERT_EQUAL(parse(EXAMPLE, 5, m, err), -1);
	CU_ASSERT_STRING_EQUAL(err, "line 1: no newline at its end");
	/* every prefix that ends mid-line or before the last slot is refused */
	for (size_t n = 0; n < len; n++)
		CU_ASSERT_EQUAL(parse(EXAMPLE, n, m, err), -1);
	memcpy(doc, EXAMPLE, len);
	doc[40] = '\0';
	CU_ASSERT_EQUAL(parse(doc, len, m, err), -1);
	CU_ASSERT_STRING_EQUAL(err,
			       "line 2: byte 0x00 at column 12 (printable ASCII and single spaces only)");
	CU_ASSERT_EQUAL(parse("", 0, m, err), -1);
	CU_ASSERT_STRING_EQUAL(err, "empty document (no pomai-map line)");
	CU_ASSERT_EQUAL(parse_str("pomai-map version=1 epoch=1\n", m, err), -1);
	CU_ASSERT_STRING_EQUAL(err, "no set line");
	CU_ASSERT_EQUAL(parse_str("pomai-map version=1 epoch=1\nset name=a epoch=1 primary=-\n", m,
				  err),
			-1);
	CU_ASSERT_STRING_EQUAL(err, "slot 0 is in no slots line");
	CU_ASSERT_EQUAL(parse_str("\n", m, err), -1);
	CU_ASSERT_STRING_EQUAL(err, "line 1: empty line");
	/* past the byte bound: refused before a line is read */
	char *big = malloc(PM_CLUSTER_MAP_TEXT_BYTES_MAX + 1);
	CU_ASSERT_FATAL(big != NULL);
	memset(big, 'x', PM_CLUSTER_MAP_TEXT_BYTES_MAX + 1);
	CU_ASSERT_EQUAL(parse(big, PM_CLUSTER_MAP_TEXT_BYTES_MAX + 1, m, err), -1);
	CU_ASSERT_STRING_EQUAL(err, "the document is 53249 bytes, more than 53248");
	CU_ASSERT_EQUAL(parse(big, PM_CLUSTER_MAP_TEXT_BYTES_MAX, m, err), -1);
	CU_ASSERT_STRING_EQUAL(err, "line 1: no newline at its end");
	free(big);
	/* a short err holds the start of the reason, terminated */
	char small[12];
	memset(small, 'x', sizeof(small));
	CU_ASSERT_EQUAL(pm_cmap_parse("pomai-map version=2 epoch=1\n", 28, m, small, sizeof(small)),
			-1);
	CU_ASSERT_STRING_EQUAL(small, "line 1: ver");
	char one[1] = { 'x' };
	CU_ASSERT_EQUAL(pm_cmap_parse("x\n", 2, m, one, 1), -1);
	CU_ASSERT_EQUAL(one[0], '\0');
	CU_ASSERT_EQUAL(pm_cmap_parse("x\n", 2, m, NULL, 0), -1);
	free(m);
}

/* A document of n lines of kind: the header, then sets, nodes, slots lines
 * as asked (slots lines split the slots evenly). */
static size_t counted_doc(char *out, size_t cap, unsigned nsets, unsigned nnodes,
			  unsigned nranges)
{
	size_t n = (size_t)snprintf(out, cap, "pomai-map version=1 epoch=7\n");
	for (unsigned i = 0; i < nsets; i++)
		n += (size_t)snprintf(out + n, cap - n, "set name=s%u epoch=1 primary=-\n", i);
	for (unsigned i = 0; i < nnodes; i++)
		n += (size_t)snprintf(out + n, cap - n,
				      "node name=n%u set=s0 addr=10.0.0.1 udp=%u tcp=0 repl=0 "
				      "shards=1\n",
				      i, 1000 + i);
	for (unsigned r = 0; r < nranges; r++) {
		unsigned first = r * PM_CLUSTER_SLOTS / nranges;
		unsigned last = (r + 1) * PM_CLUSTER_SLOTS / nranges - 1;
		n += (size_t)snprintf(out + n, cap - n, "slots first=%u last=%u set=s%u\n", first,
				      last, r % nsets);
	}
	CU_ASSERT_FATAL(n < cap);
	return n;
}

/* The counts: every bound met is accepted, one more refused on its line. */
static void test_count_bounds(void)
{
	static char doc[DOC_CAP];
	char err[ERR_BYTES];
	struct pm_cmap *m = new_map();
	unsigned S = PM_CLUSTER_SETS_MAX, N = PM_CLUSTER_NODES_MAX, R = PM_CLUSTER_RANGES_MAX;
	size_t n = counted_doc(doc, sizeof(doc), S, N, R);
	CU_ASSERT_EQUAL(parse(doc, n, m, err), 0);
	CU_ASSERT(m->nsets == S && m->nnodes == N && m->nranges == R);
	n = counted_doc(doc, sizeof(doc), S + 1, 1, 1);
	CU_ASSERT_EQUAL(parse(doc, n, m, err), -1);
	CU_ASSERT_STRING_EQUAL(err, "line 66: more than 64 sets");
	n = counted_doc(doc, sizeof(doc), 1, N + 1, 1);
	CU_ASSERT_EQUAL(parse(doc, n, m, err), -1);
	CU_ASSERT_STRING_EQUAL(err, "line 131: more than 128 nodes");
	n = counted_doc(doc, sizeof(doc), 1, 1, R + 1);
	CU_ASSERT_EQUAL(parse(doc, n, m, err), -1);
	CU_ASSERT_STRING_EQUAL(err, "line 516: more than 512 slots lines");
	free(m);
}

/* A map at every bound with the longest names and numbers prints within
 * PM_CLUSTER_MAP_TEXT_BYTES_MAX, cut at line boundaries fits CLUSTER MAP's
 * 13 parts of 4096 bytes, and its wire form is PM_CMAP_WIRE_BYTES_MAX. */
static void test_map_at_bounds(void)
{
	static char doc[DOC_CAP];
	static uint8_t w[PM_CMAP_WIRE_BYTES_MAX + 1];
	struct pm_cmap *m = new_map();
	bound_map(m);
	size_t n = pm_cmap_format(m, doc, sizeof(doc));
	CU_ASSERT(n > 0 && n <= PM_CLUSTER_MAP_TEXT_BYTES_MAX);
	printf("\n  a map at every bound: %zu bytes of text, %u on the wire\n", n,
	       (unsigned)PM_CMAP_WIRE_BYTES_MAX);
	/* greedy cut at line boundaries into parts of at most 4096 bytes */
	unsigned parts = 0;
	for (size_t at = 0; at < n; parts++) {
		size_t end = at + 4096u < n ? at + 4096u : n;
		while (end < n && doc[end - 1] != '\n')
			end--;
		CU_ASSERT_FATAL(end > at);
		at = end;
	}
	CU_ASSERT(parts <= PM_ADMIN_ARGS_MAX - 3u);
	round_trips(m, PM_CLUSTER_NODES_MAX - 1);
	CU_ASSERT_EQUAL(pm_cmap_encode(m, 0, w, sizeof(w)), PM_CMAP_WIRE_BYTES_MAX);
	CU_ASSERT_EQUAL(pm_cmap_encode(m, 0, w, PM_CMAP_WIRE_BYTES_MAX), PM_CMAP_WIRE_BYTES_MAX);
	CU_ASSERT_EQUAL(pm_cmap_encode(m, 0, w, PM_CMAP_WIRE_BYTES_MAX - 1), 0);
	/* the same map, each line at its longest, is the longest document:
	 * only the slot numbers below 10000 are shorter */
	CU_ASSERT(n > 40000);
	free(m);
}

/* ---------------------------------------------------------------- check */

/* pm_cmap_check on maps built in memory: every rule broken once is refused
 * with a reason, and format and encode give 0 for them. */
static void test_check_in_memory(void)
{
	struct pm_cmap *base = new_map(), *m = new_map();
	char err[ERR_BYTES], out[1024];
	uint8_t w[PM_CMAP_WIRE_BYTES_MAX];
	CU_ASSERT_EQUAL_FATAL(parse_str(EXAMPLE, base, err), 0);
	/* each case breaks one rule; wire: whether encode refuses it too (a
	 * name's rules are the document's only) */
	enum {
		EPOCH0, NSETS0, NSETS_MAX, NNODES_MAX, NRANGES0, NRANGES_MAX, SET_NAME, SET_NAME_LONG,
		SET_NAME_DASH, SET_DUP, NODE_NAME, NODE_DUP, NODE_SET, NODE_ADDR, NODE_UDP,
		NODE_SHARDS, NODE_PORTS, PRIMARY_RANGE, PRIMARY_OTHER, RANGE_ORDER, RANGE_PAST,
		RANGE_SET, RANGE_OVERLAP, RANGE_GAP, CASES
	};
	for (int c = 0; c < CASES; c++) {
		memcpy(m, base, sizeof(*m));
		bool names_only = false;
		switch (c) {
		case EPOCH0: m->epoch = 0; break;
		case NSETS0: m->nsets = 0; break;
		case NSETS_MAX: m->nsets = PM_CLUSTER_SETS_MAX + 1; break;
		case NNODES_MAX: m->nnodes = PM_CLUSTER_NODES_MAX + 1; break;
		case NRANGES0: m->nranges = 0; break;
		case NRANGES_MAX: m->nranges = PM_CLUSTER_RANGES_MAX + 1; break;
		case SET_NAME: strcpy(m->sets[1].name, "S2"), names_only = true; break;
		case SET_NAME_LONG: /* no NUL within the array */
			memset(m->sets[1].name, 'a', sizeof(m->sets[1].name)), names_only = true;
			break;
		case SET_NAME_DASH: strcpy(m->sets[1].name, "-"), names_only = true; break;
		case SET_DUP: strcpy(m->sets[1].name, "s1"), names_only = true; break;
		case NODE_NAME: m->nodes[1].name[0] = '\0', names_only = true; break;
		case NODE_DUP: strcpy(m->nodes[1].name, "n1"), names_only = true; break;
		case NODE_SET: m->nodes[1].set = 2; break;
		case NODE_ADDR: m->nodes[1].addr_be = 0; break;
		case NODE_UDP: m->nodes[1].udp_port = 0; break;
		case NODE_SHARDS: m->nodes[1].shards = 0; break;
		case NODE_PORTS: m->nodes[1].udp_port = 65535; break;
		case PRIMARY_RANGE: m->sets[1].primary = 2; break;
		case PRIMARY_OTHER: m->sets[1].primary = 1; break; /* n2 is s1's */
		case RANGE_ORDER: m->ranges[0].first = 8191, m->ranges[0].last = 0; break;
		case RANGE_PAST: m->ranges[1].last = 16384; break;
		case RANGE_SET: m->ranges[1].set = 2; break;
		case RANGE_OVERLAP: m->ranges[1].first = 8191; break;
		case RANGE_GAP: m->ranges[1].first = 8193; break;
		}
		memset(err, 0, sizeof(err));
		CU_ASSERT_EQUAL(pm_cmap_check(m, err, sizeof(err)), -1);
		CU_ASSERT(err[0] != '\0' && strchr(err, '\n') == NULL);
		CU_ASSERT_EQUAL(pm_cmap_format(m, out, sizeof(out)), 0);
		size_t wn = pm_cmap_encode(m, 0, w, sizeof(w));
		CU_ASSERT(names_only ? wn == 76 : wn == 0);
		if (names_only ? wn != 76 : wn != 0)
			printf("\n  case %d: encode gave %zu\n", c, wn);
	}
	/* a few reasons, word for word */
	memcpy(m, base, sizeof(*m));
	m->ranges[1].first = 8193;
	CU_ASSERT_EQUAL(pm_cmap_check(m, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "slot 8192 is in no slots range");
	memcpy(m, base, sizeof(*m));
	m->ranges[1].first = 8000;
	CU_ASSERT_EQUAL(pm_cmap_check(m, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "slot 8000 is in two slots ranges");
	memcpy(m, base, sizeof(*m));
	strcpy(m->nodes[0].name, "n2");
	CU_ASSERT_EQUAL(pm_cmap_check(m, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "node n2 is declared twice");
	/* a checked map gets its ranges in slot order and slot_set derived */
	memcpy(m, base, sizeof(*m));
	struct pm_cmap_range t = m->ranges[0];
	m->ranges[0] = m->ranges[1];
	m->ranges[1] = t;
	memset(m->slot_set, 0xAB, sizeof(m->slot_set));
	CU_ASSERT_EQUAL(pm_cmap_check(m, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NULL(cmap_diff(m, base, true));
	/* a map not checked, its ranges out of order: printed and encoded in
	 * slot order all the same */
	memcpy(m, base, sizeof(*m));
	m->ranges[0] = base->ranges[1];
	m->ranges[1] = base->ranges[0];
	size_t len = strlen(EXAMPLE);
	CU_ASSERT_EQUAL(pm_cmap_format(m, out, sizeof(out)), len);
	CU_ASSERT(memcmp(out, EXAMPLE, len) == 0);
	CU_ASSERT_EQUAL(pm_cmap_encode(m, 1, w, sizeof(w)), sizeof(EXAMPLE_WIRE));
	CU_ASSERT(memcmp(w, EXAMPLE_WIRE, sizeof(EXAMPLE_WIRE)) == 0);
	CU_ASSERT(m->ranges[0].first == 8192); /* format and encode leave m as it was */
	/* encode: self must be a node or none */
	CU_ASSERT_EQUAL(pm_cmap_encode(base, 2, w, sizeof(w)), 0);
	CU_ASSERT_EQUAL(pm_cmap_encode(base, 0xFFFE, w, sizeof(w)), 0);
	CU_ASSERT_EQUAL(pm_cmap_encode(base, PM_CMAP_NONE, w, sizeof(w)), 76);
	free(base);
	free(m);
}

static void test_names(void)
{
	CU_ASSERT_TRUE(pm_cmap_name_ok("a", 1));
	CU_ASSERT_TRUE(pm_cmap_name_ok("abcdefghijklmnop", 16));
	CU_ASSERT_TRUE(pm_cmap_name_ok("set_0-9", 7));
	CU_ASSERT_TRUE(pm_cmap_name_ok("--", 2));
	CU_ASSERT_FALSE(pm_cmap_name_ok("", 0));
	CU_ASSERT_FALSE(pm_cmap_name_ok("-", 1));
	CU_ASSERT_FALSE(pm_cmap_name_ok("abcdefghijklmnopq", 17));
	CU_ASSERT_FALSE(pm_cmap_name_ok("A", 1));
	CU_ASSERT_FALSE(pm_cmap_name_ok("a b", 3));
	CU_ASSERT_FALSE(pm_cmap_name_ok("a.b", 3));
	CU_ASSERT_FALSE(pm_cmap_name_ok("a=b", 3));
	CU_ASSERT_FALSE(pm_cmap_name_ok("a\0b", 3));
	/* only len bytes are read */
	CU_ASSERT_TRUE(pm_cmap_name_ok("ab!", 2));
}

/* The slot of a key: XXH3-64 (seed 0) of the key, mod 16384 — the values a
 * client in another language checks itself against (docs/protocol.md, the
 * table of section 11.1). */
static void test_slot_of(void)
{
	CU_ASSERT_EQUAL(pm_route_hash("hello", 5), 0x9555e8555c62dcfdull);
	CU_ASSERT_EQUAL(pm_slot_of(pm_route_hash("hello", 5)), 7421);
	CU_ASSERT_EQUAL(pm_route_hash("foo", 3), 0xab6e5f64077e7d8aull);
	CU_ASSERT_EQUAL(pm_slot_of(pm_route_hash("foo", 3)), 15754);
	CU_ASSERT_EQUAL(pm_slot_of(pm_route_hash("bar", 3)), 4962);
	CU_ASSERT_EQUAL(pm_slot_of(pm_route_hash("user:1000", 9)), 3231);
	CU_ASSERT_EQUAL(pm_slot_of(PM_CLUSTER_SLOTS), 0);
	CU_ASSERT_EQUAL(pm_slot_of(UINT64_MAX), PM_CLUSTER_SLOTS - 1);
	/* the shard: hash % shards, whatever the count (a mask for powers of
	 * two): docs/protocol.md 2.1's example, and a spread of hashes */
	CU_ASSERT_EQUAL(pm_shard_of(pm_route_hash("hello", 5), 4), 1);
	uint64_t h = 0x9e3779b97f4a7c15ull;
	for (uint32_t i = 0; i < 4096; i++, h = h * 6364136223846793005ull + 1442695040888963407ull)
		for (uint32_t n = 1; n <= 70; n++)
			if (pm_shard_of(h, n) != (uint32_t)(h % n)) {
				CU_FAIL("pm_shard_of is not hash % shards");
				return;
			}
	CU_ASSERT_EQUAL(pm_shard_of(UINT64_MAX, 1u << 31), (uint32_t)(UINT64_MAX % (1u << 31)));
}

/* ---------------------------------------------------------------- wire */

static void test_wire_pinned(void)
{
	struct pm_cmap *m = new_map(), *d = new_map();
	char err[ERR_BYTES];
	uint8_t w[PM_CMAP_WIRE_BYTES_MAX];
	CU_ASSERT_EQUAL_FATAL(parse_str(EXAMPLE, m, err), 0);
	CU_ASSERT_EQUAL(sizeof(EXAMPLE_WIRE), 76);
	CU_ASSERT_EQUAL_FATAL(pm_cmap_encode(m, 1, w, sizeof(w)), sizeof(EXAMPLE_WIRE));
	for (size_t i = 0; i < sizeof(EXAMPLE_WIRE); i++)
		if (w[i] != EXAMPLE_WIRE[i]) {
			printf("\n  byte %zu: 0x%02x, wanted 0x%02x\n", i, w[i], EXAMPLE_WIRE[i]);
			CU_FAIL("wire byte");
		}
	/* an exact cap is enough, one byte less is not */
	CU_ASSERT_EQUAL(pm_cmap_encode(m, 1, w, sizeof(EXAMPLE_WIRE)), sizeof(EXAMPLE_WIRE));
	for (size_t cap = 0; cap < sizeof(EXAMPLE_WIRE); cap++)
		CU_ASSERT_EQUAL(pm_cmap_encode(m, 1, w, cap), 0);
	uint16_t self = 0;
	CU_ASSERT_EQUAL_FATAL(decode(EXAMPLE_WIRE, sizeof(EXAMPLE_WIRE), d, &self), 0);
	CU_ASSERT_EQUAL(self, 1);
	CU_ASSERT_PTR_NULL(cmap_diff(m, d, false));
	CU_ASSERT(d->sets[0].name[0] == '\0' && d->nodes[0].name[0] == '\0');
	CU_ASSERT(d->nodes[0].repl_port == 0 && d->nodes[1].repl_port == 0);
	CU_ASSERT(d->slot_set[8191] == 0 && d->slot_set[8192] == 1);
	free(m);
	free(d);
}

/* Every prefix of a wire form, and a byte more, is refused. */
static void test_wire_truncated(void)
{
	static uint8_t w[PM_CMAP_WIRE_BYTES_MAX + 1];
	struct pm_cmap *m = new_map(), *d = new_map();
	uint16_t self;
	for (size_t n = 0; n < sizeof(EXAMPLE_WIRE); n++)
		CU_ASSERT_EQUAL(decode(EXAMPLE_WIRE, n, d, &self), -1);
	memcpy(w, EXAMPLE_WIRE, sizeof(EXAMPLE_WIRE));
	w[sizeof(EXAMPLE_WIRE)] = 0;
	CU_ASSERT_EQUAL(decode(w, sizeof(EXAMPLE_WIRE) + 1, d, &self), -1);
	/* and at the bound */
	bound_map(m);
	size_t n = pm_cmap_encode(m, 3, w, sizeof(w));
	CU_ASSERT_EQUAL_FATAL(n, PM_CMAP_WIRE_BYTES_MAX);
	CU_ASSERT_EQUAL(decode(w, n, d, &self), 0);
	CU_ASSERT_EQUAL(self, 3);
	for (size_t k = 0; k < n; k++)
		CU_ASSERT_EQUAL(decode(w, k, d, &self), -1);
	w[n] = 0;
	CU_ASSERT_EQUAL(decode(w, n + 1, d, &self), -1);
	free(m);
	free(d);
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* Every field of the wire form broken once on the pinned example. Offsets:
 * head 0, nodes 16 and 28, sets 40 and 52, ranges 64 and 70. */
static void test_wire_rules(void)
{
	static const struct {
		const char *what;
		unsigned at, bytes;
		uint64_t value;
	} bad[] = {
		{ "epoch 0", 0, 8, 0 },
		{ "nsets 0", 8, 2, 0 },
		{ "nsets 3 (bytes for 2)", 8, 2, 3 },
		{ "nsets past the bound", 8, 2, PM_CLUSTER_SETS_MAX + 1 },
		{ "nnodes 1", 10, 2, 1 },
		{ "nnodes past the bound", 10, 2, PM_CLUSTER_NODES_MAX + 1 },
		{ "nnodes 0xffff", 10, 2, 0xffff },
		{ "nranges 0", 12, 2, 0 },
		{ "nranges 1", 12, 2, 1 },
		{ "nranges past the bound", 12, 2, PM_CLUSTER_RANGES_MAX + 1 },
		{ "self 2 (2 nodes)", 14, 2, 2 },
		{ "self 0xfffe", 14, 2, 0xfffe },
		{ "node addr 0", 16, 4, 0 },
		{ "node udp 0", 20, 2, 0 },
		{ "node udp 65535 with 2 shards", 20, 2, 65535 },
		{ "node set 2", 24, 2, 2 },
		{ "node set none", 24, 2, 0xffff },
		{ "primary's flag cleared", 26, 1, 0 },
		{ "an unknown flag", 26, 1, 0x03 },
		{ "an unknown flag alone", 38, 1, 0x80 },
		{ "a second primary flag", 38, 1, 0x01 },
		{ "shards 0", 27, 1, 0 },
		{ "set primary 2 (2 nodes)", 40, 2, 2 },
		{ "set primary 1: flag on node 0", 40, 2, 1 },
		{ "set primary none: flag on node 0", 40, 2, 0xffff },
		{ "s2's primary n1 (a node of s1)", 52, 2, 0 },
		{ "set reserved", 42, 2, 1 },
		{ "set reserved high byte", 55, 1, 0x80 },
		{ "first range from 1", 64, 2, 1 },
		{ "first range past its last", 66, 2, 0xffff },
		{ "ranges overlap", 70, 2, 8191 },
		{ "ranges leave a gap", 70, 2, 8193 },
		{ "last range short of the end", 72, 2, 16382 },
		{ "last range past the end", 72, 2, 16384 },
		{ "range set 2", 68, 2, 2 },
		{ "range set none", 74, 2, 0xffff },
	};
	uint8_t w[sizeof(EXAMPLE_WIRE)];
	struct pm_cmap *d = new_map();
	uint16_t self;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(w, EXAMPLE_WIRE, sizeof(w));
		for (unsigned b = 0; b < bad[i].bytes; b++)
			w[bad[i].at + b] = (uint8_t)(bad[i].value >> (8 * b));
		CU_ASSERT(memcmp(w, EXAMPLE_WIRE, sizeof(w)) != 0);
		int r = decode(w, sizeof(w), d, &self);
		CU_ASSERT_EQUAL(r, -1);
		if (r != -1)
			printf("\n  accepted: %s\n", bad[i].what);
	}
	/* the ranges swapped: every slot once, but not in the one order */
	memcpy(w, EXAMPLE_WIRE, sizeof(w));
	memcpy(w + 64, EXAMPLE_WIRE + 70, 6);
	memcpy(w + 70, EXAMPLE_WIRE + 64, 6);
	CU_ASSERT_EQUAL(decode(w, sizeof(w), d, &self), -1);
	/* three ranges out of order, the last one ending at the last slot */
	char doc[512], err[ERR_BYTES];
	uint8_t w3[PM_CMAP_WIRE_BYTES_MAX], swapped[PM_CMAP_WIRE_BYTES_MAX];
	size_t n = example_with(7, "slots first=8192 last=9999 set=s2\n"
				   "slots first=10000 last=16383 set=s1", doc, sizeof(doc));
	CU_ASSERT_EQUAL_FATAL(parse(doc, n, d, err), 0);
	size_t wn = pm_cmap_encode(d, 0, w3, sizeof(w3));
	CU_ASSERT_EQUAL_FATAL(wn, 76u + 6u);
	CU_ASSERT_EQUAL(decode(w3, wn, d, &self), 0);
	memcpy(swapped, w3, wn);
	memcpy(swapped + 64, w3 + 70, 6); /* 8192..9999, 0..8191, 10000..16383 */
	memcpy(swapped + 70, w3 + 64, 6);
	CU_ASSERT_EQUAL(decode(swapped, wn, d, &self), -1);
	/* the changes that keep the rules are accepted: self none, another
	 * primary, a set epoch of 0, tcp 0, a moved boundary */
	memcpy(w, EXAMPLE_WIRE, sizeof(w));
	put16(w + 14, 0xffff);
	CU_ASSERT_EQUAL(decode(w, sizeof(w), d, &self), 0);
	CU_ASSERT_EQUAL(self, PM_CMAP_NONE);
	w[26] = 0, w[38] = 1, put16(w + 40, 1);
	CU_ASSERT_EQUAL(decode(w, sizeof(w), d, &self), 0);
	CU_ASSERT_EQUAL(d->sets[0].primary, 1);
	memset(w + 44, 0, 8), put16(w + 22, 0);
	put16(w + 66, 0), put16(w + 70, 1);
	CU_ASSERT_EQUAL(decode(w, sizeof(w), d, &self), 0);
	CU_ASSERT(d->sets[0].epoch == 0 && d->slot_set[0] == 0 && d->slot_set[1] == 1);
	free(d);
}

/* ---------------------------------------------------------------- property */

/* Random maps of every size through text and wire. */
static void test_random_maps(void)
{
	uint64_t seed = 0xC1u;
	unsigned failures = CU_get_number_of_failures();
	struct pm_cmap *m = new_map();
	for (unsigned i = 0; i < PROP_MAPS; i++) {
		unsigned nsets = 1 + (unsigned)(pm_test_rand(&seed) % PM_CLUSTER_SETS_MAX);
		unsigned nnodes = (unsigned)(pm_test_rand(&seed) % (PM_CLUSTER_NODES_MAX + 1));
		unsigned nranges = 1 + (unsigned)(pm_test_rand(&seed) % PM_CLUSTER_RANGES_MAX);
		if (i % 4 == 0) /* small maps are the common case */
			nsets = 1 + nsets % 3, nnodes %= 6, nranges = 1 + nranges % 4;
		unsigned name_len = i % 3 ? 0 : 1 + (unsigned)(pm_test_rand(&seed) % 16);
		if (name_len && name_len < 4)
			name_len = 4; /* room for 128 distinct ones */
		random_map(&seed, m, nsets, nnodes, nranges, name_len);
		uint16_t self = nnodes && i % 2 ? (uint16_t)(pm_test_rand(&seed) % nnodes)
						: PM_CMAP_NONE;
		round_trips(m, self);
		if (CU_get_number_of_failures() != failures) {
			printf("\n  map %u (seed 0xC1) failed\n", i);
			break;
		}
	}
	free(m);
}

/* Mutated wire forms: refused, or a map that keeps every rule and encodes
 * back to the same bytes (decode() checks both). */
static void test_wire_mutations(void)
{
	static uint8_t base[PM_CMAP_WIRE_BYTES_MAX], w[PM_CMAP_WIRE_BYTES_MAX];
	uint64_t seed = 0xC2u;
	struct pm_cmap *m = new_map(), *d = new_map();
	unsigned accepted = 0, refused = 0;
	size_t n = 0;
	uint16_t self;
	for (unsigned i = 0; i < PROP_WIRE_MUTATIONS; i++) {
		if (i % 1000 == 0) {
			random_map(&seed, m, 1 + i / 1000 % 4, i / 1000 % 5, 1 + i / 1000 % 6, 0);
			n = pm_cmap_encode(m, PM_CMAP_NONE, base, sizeof(base));
			CU_ASSERT_FATAL(n > 0);
		}
		memcpy(w, base, n);
		unsigned flips = 1 + (unsigned)(pm_test_rand(&seed) % 3);
		for (unsigned f = 0; f < flips; f++) {
			size_t at = pm_test_rand(&seed) % n;
			uint64_t r = pm_test_rand(&seed);
			/* a random byte, or a small change to a u16 field */
			if (r % 2)
				w[at] = (uint8_t)(r >> 8);
			else
				w[at] = (uint8_t)(w[at] + 1 - (r >> 8) % 3);
		}
		if (decode(w, n, d, &self) == 0)
			accepted++;
		else
			refused++;
	}
	printf("\n  %u mutated wire forms accepted, %u refused\n", accepted, refused);
	CU_ASSERT(accepted > 0 && refused > 0);
	free(m);
	free(d);
}

/* Mutated documents: refused with a one-line reason, or a map that keeps
 * every rule and prints to a document that parses to the same map. */
static void test_text_mutations(void)
{
	static const char alphabet[] = "0123456789abz=-_. \n\tS";
	char doc[2048], err[ERR_BYTES];
	uint64_t seed = 0xC3u;
	unsigned failures = CU_get_number_of_failures();
	struct pm_cmap *m = new_map();
	unsigned accepted = 0, refused = 0;
	size_t len = strlen(EXAMPLE);
	for (unsigned i = 0; i < PROP_TEXT_MUTATIONS; i++) {
		memcpy(doc, EXAMPLE, len);
		size_t n = len;
		unsigned edits = 1 + (unsigned)(pm_test_rand(&seed) % 3);
		for (unsigned e = 0; e < edits; e++) {
			size_t at = pm_test_rand(&seed) % n;
			char c = alphabet[pm_test_rand(&seed) % (sizeof(alphabet) - 1)];
			switch (pm_test_rand(&seed) % 3) {
			case 0: doc[at] = c; break;
			case 1: memmove(doc + at, doc + at + 1, n - at - 1), n--; break;
			default:
				memmove(doc + at + 1, doc + at, n - at), doc[at] = c, n++;
				break;
			}
		}
		if (parse(doc, n, m, err) == 0) {
			accepted++;
			round_trips(m, PM_CMAP_NONE);
		} else {
			refused++;
		}
		if (CU_get_number_of_failures() != failures) {
			printf("\n  mutation %u failed: '%.*s'\n", i, (int)n, doc);
			break;
		}
	}
	printf("\n  %u mutated documents accepted, %u refused\n", accepted, refused);
	CU_ASSERT(accepted > 0 && refused > 0);
	free(m);
}

/* Move lines (resharding under way): parsed, printed back byte for byte,
 * not in the wire form; every rule of theirs broken once. */
static void test_moves(void)
{
	static const char two[] = "move first=100 last=199 from=s1 to=s2 state=copy\n"
				  "move first=8192 last=8192 from=s2 to=s1 state=freeze\n";
	char doc[2048], out[2048], err[ERR_BYTES];
	struct pm_cmap *m = new_map();
	int n = snprintf(doc, sizeof(doc), "%s%s", EXAMPLE, two);
	CU_ASSERT_EQUAL_FATAL(parse(doc, (size_t)n, m, err), 0);
	CU_ASSERT_EQUAL(m->nmoves, 2);
	CU_ASSERT(m->moves[0].first == 100 && m->moves[0].last == 199 && m->moves[0].from == 0 &&
		  m->moves[0].to == 1 && m->moves[0].state == PM_CMAP_MOVE_COPY);
	CU_ASSERT(m->moves[1].first == 8192 && m->moves[1].from == 1 && m->moves[1].to == 0 &&
		  m->moves[1].state == PM_CMAP_MOVE_FREEZE);
	CU_ASSERT_EQUAL(m->slot_set[150], 0); /* still the source's */
	size_t k = pm_cmap_format(m, out, sizeof(out));
	CU_ASSERT(k == (size_t)n && memcmp(out, doc, k) == 0);
	uint8_t w[PM_CMAP_WIRE_BYTES_MAX];
	CU_ASSERT_EQUAL(pm_cmap_encode(m, 0, w, sizeof(w)), sizeof(EXAMPLE_WIRE));
	static const struct {
		const char *line, *err;
	} bad[] = {
		{ "move first=8000 last=8200 from=s1 to=s2 state=copy",
		  "move 0: slot 8192 is not set s1's" },
		{ "move first=100 last=199 from=s1 to=s1 state=copy",
		  "move 0: slots 100..199 from set 0 to set 0, state 0" },
		{ "move first=100 last=99 from=s1 to=s2 state=copy",
		  "move 0: slots 100..99 from set 0 to set 1, state 0" },
		{ "move first=100 last=199 from=s1 to=s2 state=done", "line 8: state done: copy or freeze" },
		{ "move first=100 last=199 from=s1 to=s9 state=copy", "line 8: set s9 is not declared" },
		{ "move first=100 last=199 from=s1 to=s2", "line 8: a move line without state=" },
		{ "move first=100 last=199 from=s1 to=s2 state=copy\n"
		  "move first=150 last=250 from=s1 to=s2 state=copy", "moves 0 and 1 overlap" },
		{ "move first=100 last=199 from=s1 to=s2 state=copy\n"
		  "slots first=0 last=0 set=s1",
		  "line 9: a slots line after a move line (order: pomai-map, set, node, slots, move)" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = snprintf(doc, sizeof(doc), "%s%s\n", EXAMPLE, bad[i].line);
		int r = parse(doc, (size_t)n, m, err);
		if (r != -1 || strcmp(err, bad[i].err) != 0)
			printf("\n  move case %zu: got '%s', wanted '%s'\n", i, err, bad[i].err);
		CU_ASSERT(r == -1 && strcmp(err, bad[i].err) == 0);
	}
	/* one past the bound */
	n = snprintf(doc, sizeof(doc), "%s", EXAMPLE);
	for (unsigned i = 0; i <= PM_CLUSTER_MOVES_MAX; i++)
		n += snprintf(doc + n, sizeof(doc) - (size_t)n,
			      "move first=%u last=%u from=s1 to=s2 state=copy\n", i * 10, i * 10 + 9);
	CU_ASSERT_EQUAL(parse(doc, (size_t)n, m, err), -1);
	CU_ASSERT_STRING_EQUAL(err, "line 16: more than 8 move lines");
	free(m);
}

static CU_TestInfo tests[] = {
	{ "the header's example, field by field and back", test_example },
	{ "keys and slots lines in any order", test_free_order },
	{ "values at their edges accepted", test_edges_accepted },
	{ "every document rule broken once", test_rules_broken },
	{ "whole-document rules and short error buffers", test_document_rules },
	{ "counts at their bounds and one past", test_count_bounds },
	{ "a map at every bound", test_map_at_bounds },
	{ "pm_cmap_check on maps in memory", test_check_in_memory },
	{ "names", test_names },
	{ "the slot of a key", test_slot_of },
	{ "wire form pinned byte by byte", test_wire_pinned },
	{ "wire form truncated at every length", test_wire_truncated },
	{ "every wire rule broken once", test_wire_rules },
	{ "property: random maps through text and wire", test_random_maps },
	{ "property: mutated wire forms", test_wire_mutations },
	{ "property: mutated documents", test_text_mutations },
	{ "move lines", test_moves },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	return pm_cu_run("cluster_map", tests);
}
