/* SPDX-License-Identifier: MIT
 *
 * fuzz_etcd.c — what pomai-control reads from etcd (control/etcd_json.h):
 * the answer parsers, the watch stream's line splitter and its message
 * parser, and base64. The first byte picks the reader of the rest:
 *
 *   0 grant        1 keepalive of lease 7001   2 a header alone (put, revoke)
 *   3 range        4 deleterange               5 txn: byte 1 picks the txn's
 *   branches (below)   6 an error answer: byte 1 its HTTP status (201..456)
 *   7 the watch stream: byte 1 its delivery plan   8 base64
 *
 * Invariants: every reader returns one of its codes, an error with a
 * one-line printable reason within PM_ETCD_ERR_BYTES, and leaves nothing
 * allocated behind it (LeakSanitizer); what it hands back keeps the client's
 * bounds (at most PM_ETCD_KVS_MAX kvs, keys of 1..PM_ETCD_KEY_BYTES_MAX
 * bytes without a NUL, values NUL-terminated, revisions and leases >= 0, a
 * granted TTL and ID > 0, a live keepalive's TTL > 0); a range's kvs,
 * written back as etcd would write them, read back the same; base64 decodes
 * only what an encoder writes (decoded, it encodes to exactly the input) and
 * every encoding decodes back.
 *
 * The watch stream goes to the splitter whole and in pieces: plan 0 whole;
 * m > 0 in pieces of 1 to 2^(m mod 13) bytes drawn from a generator seeded
 * with m. Bit 7 of the plan shrinks the line bound from PM_ETCD_MSG_BYTES_MAX
 * to 16..1024 bytes, so that a line past it is within reach of libFuzzer's
 * inputs. Both deliveries hand over the same lines, and end the same way, as
 * a reference split of the whole input (memchr); every line is a watch
 * message whose parse keeps the invariants above.
 */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "etcd_json.h"
#include "fuzz.h"

#define LEASE_ID 7001

static char err[PM_ETCD_ERR_BYTES];

/* err before a call: its reason must be set by an error, and fit. */
static void err_reset(void)
{
	memset(err, 'E', sizeof(err));
	err[0] = '\0';
}

static void check_err(int rc)
{
	size_t n = strnlen(err, sizeof(err));
	FUZZ_CHECK(n < sizeof(err));
	bool error = rc < 0 || rc == PM_ETCD_LEASE_GONE;
	FUZZ_CHECK(!error || n > 0);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)err[i] >= 0x20 && (unsigned char)err[i] < 0x7f);
}

static void check_kv(const struct pm_etcd_kv *kv)
{
	FUZZ_CHECK(kv->key && kv->value);
	size_t n = strlen(kv->key);
	FUZZ_CHECK(n >= 1 && n <= PM_ETCD_KEY_BYTES_MAX);
	FUZZ_CHECK(kv->value[kv->value_len] == '\0');
	FUZZ_CHECK(kv->create_revision >= 0 && kv->mod_revision >= 0 && kv->version >= 0 &&
		   kv->lease >= 0);
}

static void check_kvs(int rc, const struct pm_etcd_kvs *kvs)
{
	if (rc != PM_ETCD_OK && rc != PM_ETCD_FAILED) {
		FUZZ_CHECK(kvs->n == 0 && kvs->kv == NULL);
		return;
	}
	FUZZ_CHECK(kvs->n <= PM_ETCD_KVS_MAX && (kvs->n == 0 || kvs->kv));
	FUZZ_CHECK(kvs->revision >= 0);
	for (uint32_t i = 0; i < kvs->n; i++)
		check_kv(&kvs->kv[i]);
}

/* ---------------------------------------------------------------- a range written back */

static json_t *b64_json(const void *p, size_t n)
{
	char *s = malloc(pm_etcd_b64_len(n) + 1);
	FUZZ_CHECK(s != NULL);
	pm_etcd_b64_encode(p, n, s);
	json_t *j = json_string(s);
	free(s);
	return j;
}

/* kvs as etcd writes a range's answer (zero fields left out). */
static char *range_text(const struct pm_etcd_kvs *kvs)
{
	json_t *a = json_array();
	for (uint32_t i = 0; i < kvs->n; i++) {
		const struct pm_etcd_kv *kv = &kvs->kv[i];
		json_t *o = json_pack("{s:o}", "key", b64_json(kv->key, strlen(kv->key)));
		if (kv->value_len)
			json_object_set_new(o, "value", b64_json(kv->value, kv->value_len));
		if (kv->create_revision)
			json_object_set_new(o, "create_revision", json_integer(kv->create_revision));
		if (kv->mod_revision)
			json_object_set_new(o, "mod_revision", json_integer(kv->mod_revision));
		if (kv->version)
			json_object_set_new(o, "version", json_integer(kv->version));
		if (kv->lease)
			json_object_set_new(o, "lease", json_integer(kv->lease));
		json_array_append_new(a, o);
	}
	json_t *r = json_pack("{s:{s:I},s:o,s:I}", "header", "revision", (json_int_t)kvs->revision,
			      "kvs", a, "count", (json_int_t)kvs->n);
	char *text = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	FUZZ_CHECK(text != NULL);
	return text;
}

static bool kv_same(const struct pm_etcd_kv *a, const struct pm_etcd_kv *b)
{
	return !strcmp(a->key, b->key) && a->value_len == b->value_len &&
	       !memcmp(a->value, b->value, a->value_len) && a->create_revision == b->create_revision &&
	       a->mod_revision == b->mod_revision && a->version == b->version && a->lease == b->lease;
}

static void range(const char *d, size_t n)
{
	struct pm_etcd_kvs kvs, again;
	err_reset();
	int rc = pm_etcd_ans_range(d, n, &kvs, err, sizeof(err));
	FUZZ_CHECK(rc == PM_ETCD_OK || rc == PM_ETCD_E_PROTO);
	check_err(rc);
	check_kvs(rc, &kvs);
	if (rc != PM_ETCD_OK)
		return;
	char *text = range_text(&kvs);
	FUZZ_CHECK(pm_etcd_ans_range(text, strlen(text), &again, err, sizeof(err)) == PM_ETCD_OK);
	FUZZ_CHECK(again.n == kvs.n && again.revision == kvs.revision);
	for (uint32_t i = 0; i < kvs.n; i++)
		FUZZ_CHECK(kv_same(&kvs.kv[i], &again.kv[i]));
	free(text);
	pm_etcd_kvs_free(&again);
	pm_etcd_kvs_free(&kvs);
}

/* ---------------------------------------------------------------- the other answers */

#define PUT_OP { .kind = PM_ETCD_PUT, .key = "k", .value = "v", .value_len = 1 }
#define DEL_OP { .kind = PM_ETCD_DELETE, .key = "k" }
#define RANGE_OP { .kind = PM_ETCD_RANGE, .key = "k" }
static const struct pm_etcd_op put_op = PUT_OP, del_op = DEL_OP, range_op = RANGE_OP;
static const struct pm_etcd_op ranges8[8] = { RANGE_OP, RANGE_OP, RANGE_OP, RANGE_OP,
					      RANGE_OP, RANGE_OP, RANGE_OP, RANGE_OP };
static const struct pm_etcd_op mixed[3] = { DEL_OP, RANGE_OP, PUT_OP };
/* The txns whose answers byte 1 says it is: the campaign, the map's
 * updates, a leader-guarded one, mixed branches, none, all ranges. */
static const struct pm_etcd_txn txns[] = {
	{ NULL, 0, &put_op, &range_op, 1, 1 },
	{ NULL, 0, &put_op, ranges8, 1, 2 },
	{ NULL, 0, mixed, &range_op, 3, 1 },
	{ NULL, 0, NULL, NULL, 0, 0 },
	{ NULL, 0, ranges8, ranges8, 8, 8 },
	{ NULL, 0, &del_op, NULL, 1, 0 },
};

static void answers(uint8_t mode, const uint8_t *d, size_t n)
{
	struct pm_etcd_kvs kvs;
	int64_t a = -1, b = -1;
	int rc;
	const char *s = (const char *)d;
	err_reset();
	switch (mode) {
	case 0:
		rc = pm_etcd_ans_grant(s, n, &a, &b, err, sizeof(err));
		FUZZ_CHECK(rc == PM_ETCD_OK || rc == PM_ETCD_E_PROTO || rc == PM_ETCD_E_HTTP);
		FUZZ_CHECK(rc != PM_ETCD_OK || (a > 0 && b > 0));
		break;
	case 1:
		rc = pm_etcd_ans_keepalive(s, n, LEASE_ID, &a, err, sizeof(err));
		FUZZ_CHECK(rc == PM_ETCD_OK || rc == PM_ETCD_LEASE_GONE || rc == PM_ETCD_E_PROTO ||
			   rc == PM_ETCD_E_HTTP);
		FUZZ_CHECK(rc != PM_ETCD_OK || a > 0);
		FUZZ_CHECK(rc != PM_ETCD_LEASE_GONE || a == 0);
		break;
	case 2:
		rc = pm_etcd_ans_header(s, n, &a, err, sizeof(err));
		FUZZ_CHECK(rc == PM_ETCD_OK || rc == PM_ETCD_E_PROTO);
		FUZZ_CHECK(rc != PM_ETCD_OK || a >= 0);
		break;
	case 4:
		rc = pm_etcd_ans_delete(s, n, &a, &b, err, sizeof(err));
		FUZZ_CHECK(rc == PM_ETCD_OK || rc == PM_ETCD_E_PROTO);
		FUZZ_CHECK(rc != PM_ETCD_OK || (a >= 0 && b >= 0));
		break;
	default: /* 5: a txn */
		if (n == 0)
			return;
		rc = pm_etcd_ans_txn(s + 1, n - 1, &txns[d[0] % (sizeof(txns) / sizeof(txns[0]))],
				     &a, &kvs, err, sizeof(err));
		FUZZ_CHECK(rc == PM_ETCD_OK || rc == PM_ETCD_FAILED || rc == PM_ETCD_E_PROTO);
		check_kvs(rc, &kvs);
		FUZZ_CHECK(rc < 0 || (a >= 0 && a == kvs.revision));
		pm_etcd_kvs_free(&kvs);
		break;
	}
	check_err(rc);
}

static void error_answer(const uint8_t *d, size_t n)
{
	if (n == 0)
		return;
	long http = 201 + d[0];
	char head[32];
	err_reset();
	int rc = pm_etcd_ans_error(http, (const char *)d + 1, n - 1, err, sizeof(err));
	FUZZ_CHECK(rc == PM_ETCD_E_HTTP || rc == PM_ETCD_LEASE_GONE);
	check_err(rc);
	snprintf(head, sizeof(head), "HTTP %ld: ", http);
	FUZZ_CHECK(!strncmp(err, head, strlen(head)));
}

/* ---------------------------------------------------------------- base64 */

static void base64(const uint8_t *d, size_t n)
{
	uint8_t *out = malloc(n / 4 * 3 + 1), *back = malloc(n + 1);
	char *text = malloc(pm_etcd_b64_len(n) + 1);
	size_t k, m;
	FUZZ_CHECK(out && back && text);
	if (pm_etcd_b64_decode((const char *)d, n, out, &k) == 0) {
		FUZZ_CHECK(k <= n / 4 * 3);
		char *again = malloc(pm_etcd_b64_len(k) + 1);
		pm_etcd_b64_encode(out, k, again);
		FUZZ_CHECK(strlen(again) == n && !memcmp(again, d, n));
		free(again);
	}
	pm_etcd_b64_encode(d, n, text);
	FUZZ_CHECK(strlen(text) == pm_etcd_b64_len(n));
	FUZZ_CHECK(pm_etcd_b64_decode(text, strlen(text), back, &m) == 0 && m == n &&
		   !memcmp(back, d, n));
	free(out);
	free(back);
	free(text);
}

/* ---------------------------------------------------------------- the watch stream */

/* The lines one delivery handed over: a running hash of each and a count. */
struct lines {
	uint64_t hash;
	uint32_t n;
};

static uint64_t mix(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
	return (h ^ n) * 0x100000001b3ull;
}

static void check_message(const char *line, size_t len)
{
	struct pm_etcd_wmsg m;
	err_reset();
	int rc = pm_etcd_ans_watch(line, len, &m, err, sizeof(err));
	FUZZ_CHECK(rc == PM_ETCD_OK || rc == PM_ETCD_E_HTTP || rc == PM_ETCD_E_PROTO);
	check_err(rc);
	if (rc != PM_ETCD_OK) {
		FUZZ_CHECK(m.n == 0 && m.ev == NULL);
		return;
	}
	FUZZ_CHECK(m.revision >= 0);
	FUZZ_CHECK((m.kind == PM_ETCD_W_EVENTS) == (m.n > 0));
	for (uint32_t i = 0; i < m.n; i++) {
		check_kv(&m.ev[i].kv);
		if (m.ev[i].has_prev)
			check_kv(&m.ev[i].prev);
		else
			FUZZ_CHECK(m.ev[i].prev.key == NULL);
	}
	pm_etcd_wmsg_free(&m);
}

static int on_line(void *arg, const char *line, size_t len)
{
	struct lines *l = arg;
	FUZZ_CHECK(len > 0 && !memchr(line, '\n', len));
	l->hash = mix(l->hash, line, len);
	l->n++;
	check_message(line, len);
	return 0;
}

/* The reference: memchr over the whole stream. 0, or -1 at a line past cap. */
static int reference(const char *p, size_t n, size_t cap, struct lines *l)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t len = nl ? (size_t)(nl - p) : n;
		if (len > cap)
			return -1;
		if (!nl)
			return 0;
		if (len) {
			l->hash = mix(l->hash, p, len);
			l->n++;
		}
		p += len + 1;
		n -= len + 1;
	}
	return 0;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int deliver(struct pm_etcd_lines *sp, const char *p, size_t n, uint8_t plan,
		   struct lines *l)
{
	uint8_t m = plan & 0x7f;
	uint64_t rng = m;
	int rc = 0;
	pm_etcd_lines_reset(sp);
	for (size_t at = 0; at < n && rc == 0;) {
		size_t k = m ? 1 + rng_next(&rng) % ((size_t)1 << (m % 13)) : n - at;
		k = k < n - at ? k : n - at;
		rc = pm_etcd_lines_feed(sp, p + at, k, on_line, l);
		at += k;
	}
	return rc;
}

static void watch_stream(const uint8_t *d, size_t n)
{
	if (n == 0)
		return;
	uint8_t plan = d[0];
	size_t cap = plan & 0x80 ? 16u + (size_t)(plan & 0x3f) * 16u : PM_ETCD_MSG_BYTES_MAX;
	const char *p = (const char *)d + 1;
	static struct pm_etcd_lines full; /* the watch's bound: made once */
	struct pm_etcd_lines small, *sp = &full;
	struct lines whole = { 0 }, pieces = { 0 }, ref = { 0 };
	if (cap != PM_ETCD_MSG_BYTES_MAX)
		FUZZ_CHECK(pm_etcd_lines_init(sp = &small, cap) == 0);
	else if (!full.buf)
		FUZZ_CHECK(pm_etcd_lines_init(&full, cap) == 0);
	int rw = deliver(sp, p, n - 1, 0, &whole);
	int rp = deliver(sp, p, n - 1, plan, &pieces);
	int rr = reference(p, n - 1, cap, &ref);
	FUZZ_CHECK(rw == rr && rp == rr);
	FUZZ_CHECK(whole.n == ref.n && whole.hash == ref.hash);
	FUZZ_CHECK(pieces.n == ref.n && pieces.hash == ref.hash);
	if (sp == &small)
		pm_etcd_lines_free(&small);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t mode = data[0] % 9;
	const uint8_t *d = data + 1;
	size_t n = size - 1;
	switch (mode) {
	case 3:
		range((const char *)d, n);
		break;
	case 6:
		error_answer(d, n);
		break;
	case 7:
		watch_stream(d, n);
		break;
	case 8:
		base64(d, n);
		break;
	default:
		answers(mode, d, n);
		break;
	}
	return 0;
}
