/* SPDX-License-Identifier: MIT
 *
 * fuzz_cluster_map.c — the cluster's slot map (proto/cluster_map.h): the
 * input read as a document (pm_cmap_parse, what pomaid's CLUSTER MAP and
 * pomai-control read from etcd) and as a MAP reply's wire form
 * (pm_cmap_decode, what libpomai reads from any node).
 *
 * Invariants on every input:
 *  - a refused document has a one-line reason, NUL-terminated inside the
 *    error buffer, naming a line of the input ("line N: ", 1 <= N <= its
 *    lines) or the document as a whole;
 *  - an accepted document's map keeps every rule (tests/cmap_check.c, read
 *    apart from cluster_map.c) and passes pm_cmap_check unchanged; it
 *    prints (pm_cmap_format) within PM_CLUSTER_MAP_TEXT_BYTES_MAX to a
 *    document that parses to the same map and prints to the same bytes
 *    (parse -> format -> parse identity); its wire form decodes to the same
 *    map less names and re-encodes to the same bytes;
 *  - an accepted wire form's map keeps every rule but names (it has none,
 *    so it prints no document) and re-encodes, as the self it named, to
 *    exactly the input.
 *
 * libFuzzer's buffer is exactly the input's length, so under ASan a parser
 * or decoder that reads past len is caught.
 */
#include <string.h>

#include "cluster_map.h"
#include "cmap_check.h"
#include "fuzz.h"

/* Error text of a refusal: longer than any reason, so a cut one is a bug. */
#define ERR_BYTES 256u

static struct pm_cmap m, m2, m3;
static char t1[PM_CLUSTER_MAP_TEXT_BYTES_MAX], t2[PM_CLUSTER_MAP_TEXT_BYTES_MAX];
static uint8_t w1[PM_CMAP_WIRE_BYTES_MAX], w2[PM_CMAP_WIRE_BYTES_MAX];

/* A refusal's reason: one line, inside err, naming a line of the input or
 * the whole (its reason then does not start with "line"). */
static void check_refusal(const char *err, const char *text, size_t len)
{
	const char *end = memchr(err, '\0', ERR_BYTES);
	FUZZ_CHECK(end != NULL && end > err && end < err + ERR_BYTES - 1);
	FUZZ_CHECK(memchr(err, '\n', (size_t)(end - err)) == NULL);
	if (strncmp(err, "line ", 5) != 0)
		return;
	unsigned long line = strtoul(err + 5, NULL, 10);
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	FUZZ_CHECK(line >= 1 && line <= lines);
}

static void document(const char *text, size_t len)
{
	char err[ERR_BYTES];
	memset(err, 0x55, sizeof(err));
	if (pm_cmap_parse(text, len, &m, err, sizeof(err)) != 0) {
		check_refusal(err, text, len);
		return;
	}
	FUZZ_CHECK(len <= PM_CLUSTER_MAP_TEXT_BYTES_MAX);
	FUZZ_CHECK(cmap_rules(&m, true) == NULL);
	memcpy(&m2, &m, sizeof(m));
	FUZZ_CHECK(pm_cmap_check(&m2, err, sizeof(err)) == 0);
	FUZZ_CHECK(cmap_diff(&m, &m2, true) == NULL);
	/* parse -> format -> parse: the same map, the same bytes */
	size_t n1 = pm_cmap_format(&m, t1, sizeof(t1));
	FUZZ_CHECK(n1 > 0 && n1 <= PM_CLUSTER_MAP_TEXT_BYTES_MAX);
	if (pm_cmap_parse(t1, n1, &m2, err, sizeof(err)) != 0) {
		fprintf(stderr, "printed document refused: %s\n", err);
		FUZZ_CHECK(0);
	}
	FUZZ_CHECK(cmap_diff(&m, &m2, true) == NULL);
	size_t n2 = pm_cmap_format(&m2, t2, sizeof(t2));
	FUZZ_CHECK(n2 == n1 && memcmp(t1, t2, n1) == 0);
	/* its wire form, as a node of the map and as none */
	uint16_t self = m.nnodes ? (uint16_t)(len % m.nnodes) : PM_CMAP_NONE, me;
	size_t wn = pm_cmap_encode(&m, self, w1, sizeof(w1));
	FUZZ_CHECK(wn > 0 && wn <= PM_CMAP_WIRE_BYTES_MAX);
	FUZZ_CHECK(pm_cmap_decode(w1, wn, &m3, &me) == 0 && me == self);
	FUZZ_CHECK(cmap_diff(&m, &m3, false) == NULL);
	FUZZ_CHECK(pm_cmap_encode(&m3, self, w2, sizeof(w2)) == wn && memcmp(w1, w2, wn) == 0);
	FUZZ_CHECK(pm_cmap_encode(&m, PM_CMAP_NONE, w2, sizeof(w2)) == wn);
}

static void wire(const uint8_t *p, size_t len)
{
	uint16_t self;
	if (pm_cmap_decode(p, len, &m, &self) != 0)
		return;
	FUZZ_CHECK(len <= PM_CMAP_WIRE_BYTES_MAX);
	FUZZ_CHECK(cmap_rules(&m, false) == NULL);
	FUZZ_CHECK(self == PM_CMAP_NONE || self < m.nnodes);
	FUZZ_CHECK(pm_cmap_encode(&m, self, w1, sizeof(w1)) == len && memcmp(w1, p, len) == 0);
	FUZZ_CHECK(pm_cmap_format(&m, t1, sizeof(t1)) == 0); /* no names: no document */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	document((const char *)data, size);
	wire(data, size);
	return 0;
}
