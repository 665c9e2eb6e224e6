/* SPDX-License-Identifier: MIT
 *
 * control/etcd_json.c — the request bodies and answer checks of etcd's v3
 * JSON gateway (etcd_json.h says what each promises), with jansson:
 * json_pack builds a request in one call, json_unpack_ex checks the types of
 * an answer's members and says what broke.
 *
 * Checks are strict about what etcd 3.4 sends and lenient only where proto3
 * JSON allows a choice: an int64 may be a string (what the gateway writes) or
 * a number; an enum ("type") a name or its number; unknown members are
 * ignored (a later etcd adds fields). Base64 must be canonical, keys must be
 * text (no NUL byte), and no answer may carry more than PM_ETCD_KVS_MAX keys
 * or be longer than PM_ETCD_MSG_BYTES_MAX. An answer that breaks any of it is
 * PM_ETCD_E_PROTO with the member that broke it named ("kvs[2].key: not
 * base64"); nothing it allocated is left behind.
 */
#include "etcd_json.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bytes of a non-JSON error body (etcd's "Not Found", a proxy's page)
 * quoted in an error line. */
#define ETCD_BODY_QUOTE_BYTES 120
/* Bytes of the "kvs[12]." context naming a member in an error line. */
#define ETCD_CTX_BYTES 64

/* ---------------------------------------------------------------- errors */

/* err as one printable line: what a log line or a control reply can carry
 * whatever etcd (or whoever answered) wrote. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

__attribute__((format(printf, 4, 5))) static int failf(int rc, char *err, size_t errlen,
						       const char *fmt, ...)
{
	if (errlen == 0)
		return rc;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	one_line(err);
	return rc;
}

static int oom(char *err, size_t errlen)
{
	/* no code of its own in enum pm_etcd_rc: the answer could not be held */
	return failf(PM_ETCD_E_PROTO, err, errlen, "out of memory");
}

/* ---------------------------------------------------------------- base64 */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t pm_etcd_b64_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

void pm_etcd_b64_encode(const void *p, size_t n, char *out)
{
	const uint8_t *b = p;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)b[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)b[i + 1] << 8;
		if (i + 2 < n)
			v |= b[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int pm_etcd_b64_decode(const char *s, size_t len, uint8_t *out, size_t *n)
{
	size_t o = 0;
	if (len % 4)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		uint32_t pad = 0, bits = 0;
		for (size_t j = 0; j < 4; j++) {
			int v = b64_value((unsigned char)s[i + j]);
			if (s[i + j] == '=' && last && j >= 2 && (j == 3 || s[i + 3] == '='))
				v = 0, pad++;
			else if (v < 0 || pad)
				return -1;
			bits = bits << 6 | (uint32_t)v;
		}
		if ((pad == 2 && (bits & 0xffff)) || (pad == 1 && (bits & 0xff)))
			return -1; /* bits an encoder leaves zero */
		out[o++] = (uint8_t)(bits >> 16);
		if (pad < 2)
			out[o++] = (uint8_t)(bits >> 8);
		if (pad < 1)
			out[o++] = (uint8_t)bits;
	}
	*n = o;
	return 0;
}

/* ---------------------------------------------------------------- building requests */

/* n bytes at p as a base64 JSON string (NULL: no memory). */
static json_t *b64_json(const void *p, size_t n)
{
	char *s = malloc(pm_etcd_b64_len(n) + 1);
	if (!s)
		return NULL;
	pm_etcd_b64_encode(p, n, s);
	json_t *j = json_string(s);
	free(s);
	return j;
}

/* An int64 as etcd writes one: a string. */
static json_t *i64_json(int64_t v)
{
	char s[24];
	snprintf(s, sizeof(s), "%" PRId64, v);
	return json_string(s);
}

static int key_check(const char *key, const char *what, char *err, size_t errlen)
{
	size_t n = key ? strnlen(key, PM_ETCD_KEY_BYTES_MAX + 1) : 0;
	if (!key || n == 0)
		return failf(PM_ETCD_E_ARG, err, errlen, "%s: no key", what);
	if (n > PM_ETCD_KEY_BYTES_MAX)
		return failf(PM_ETCD_E_ARG, err, errlen, "%s: a key past PM_ETCD_KEY_BYTES_MAX (%u)",
			     what, PM_ETCD_KEY_BYTES_MAX);
	return PM_ETCD_OK;
}

/* A key (or a range end: NULL leaves it out) as base64 JSON into *out. An
 * empty range end is refused: etcd would read it as "\0", every key from
 * key on, and pm_etcd_prefix_end() writes "" when a prefix has no end. */
static int key_json(const char *key, bool is_end, json_t **out, char *err, size_t errlen)
{
	*out = NULL;
	if (is_end && !key)
		return PM_ETCD_OK;
	int rc = key_check(key, is_end ? "range_end" : "key", err, errlen);
	if (rc != PM_ETCD_OK)
		return rc;
	*out = b64_json(key, strlen(key));
	return *out ? PM_ETCD_OK : oom(err, errlen);
}

static int value_json(const void *value, size_t len, json_t **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!value && len)
		return failf(PM_ETCD_E_ARG, err, errlen, "a value of %zu bytes at NULL", len);
	if (len > PM_ETCD_VALUE_BYTES_MAX)
		return failf(PM_ETCD_E_ARG, err, errlen,
			     "a value of %zu bytes past PM_ETCD_VALUE_BYTES_MAX (%u)", len,
			     PM_ETCD_VALUE_BYTES_MAX);
	*out = b64_json(value ? value : "", len);
	return *out ? PM_ETCD_OK : oom(err, errlen);
}

/* The request j (its reference taken) as compact text into *out. */
static int dump(json_t *j, char **out, char *err, size_t errlen)
{
	*out = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!*out)
		return oom(err, errlen);
	size_t n = strlen(*out);
	if (n > PM_ETCD_MSG_BYTES_MAX) {
		free(*out);
		*out = NULL;
		return failf(PM_ETCD_E_ARG, err, errlen,
			     "a request of %zu bytes past PM_ETCD_MSG_BYTES_MAX", n);
	}
	return PM_ETCD_OK;
}

int pm_etcd_req_grant(int64_t ttl_s, char **out, char *err, size_t errlen)
{
	*out = NULL;
	if (ttl_s <= 0)
		return failf(PM_ETCD_E_ARG, err, errlen, "a lease TTL of %" PRId64 " s", ttl_s);
	return dump(json_pack("{s:o}", "TTL", i64_json(ttl_s)), out, err, errlen);
}

int pm_etcd_req_lease(int64_t id, char **out, char *err, size_t errlen)
{
	*out = NULL;
	if (id <= 0)
		return failf(PM_ETCD_E_ARG, err, errlen, "lease ID %" PRId64, id);
	return dump(json_pack("{s:o}", "ID", i64_json(id)), out, err, errlen);
}

/* {"key":…[,"range_end":…]} plus, for a range, its limit. */
static json_t *range_json(const char *key, const char *range_end, bool limit, char *err,
			  size_t errlen, int *rc)
{
	json_t *k, *e;
	if ((*rc = key_json(key, false, &k, err, errlen)) != PM_ETCD_OK)
		return NULL;
	if ((*rc = key_json(range_end, true, &e, err, errlen)) != PM_ETCD_OK) {
		json_decref(k);
		return NULL;
	}
	json_t *j = json_pack("{s:o,s:o*,s:o*}", "key", k, "range_end", e, "limit",
			      limit ? i64_json(PM_ETCD_KVS_MAX) : NULL);
	if (!j)
		*rc = oom(err, errlen);
	return j;
}

int pm_etcd_req_range(const char *key, const char *range_end, char **out, char *err,
		      size_t errlen)
{
	int rc;
	*out = NULL;
	json_t *j = range_json(key, range_end, true, err, errlen, &rc);
	return j ? dump(j, out, err, errlen) : rc;
}

int pm_etcd_req_delete(const char *key, const char *range_end, char **out, char *err,
		       size_t errlen)
{
	int rc;
	*out = NULL;
	json_t *j = range_json(key, range_end, false, err, errlen, &rc);
	return j ? dump(j, out, err, errlen) : rc;
}

static json_t *put_json(const char *key, const void *value, size_t len, int64_t lease,
			char *err, size_t errlen, int *rc)
{
	json_t *k, *v;
	if (lease < 0) {
		*rc = failf(PM_ETCD_E_ARG, err, errlen, "lease ID %" PRId64, lease);
		return NULL;
	}
	if ((*rc = key_json(key, false, &k, err, errlen)) != PM_ETCD_OK)
		return NULL;
	if ((*rc = value_json(value, len, &v, err, errlen)) != PM_ETCD_OK) {
		json_decref(k);
		return NULL;
	}
	json_t *j = json_pack("{s:o,s:o,s:o*}", "key", k, "value", v, "lease",
			      lease ? i64_json(lease) : NULL);
	if (!j)
		*rc = oom(err, errlen);
	return j;
}

int pm_etcd_req_put(const char *key, const void *value, size_t len, int64_t lease, char **out,
		    char *err, size_t errlen)
{
	int rc;
	*out = NULL;
	json_t *j = put_json(key, value, len, lease, err, errlen, &rc);
	return j ? dump(j, out, err, errlen) : rc;
}

int pm_etcd_req_watch(const char *key, const char *range_end, int64_t start_revision,
		      char **out, char *err, size_t errlen)
{
	int rc;
	*out = NULL;
	if (start_revision < 0)
		return failf(PM_ETCD_E_ARG, err, errlen, "watch from revision %" PRId64,
			     start_revision);
	json_t *r = range_json(key, range_end, false, err, errlen, &rc);
	if (!r)
		return rc;
	if ((start_revision && json_object_set_new(r, "start_revision", i64_json(start_revision))) ||
	    json_object_set_new(r, "prev_kv", json_true()) ||
	    json_object_set_new(r, "progress_notify", json_true())) {
		json_decref(r);
		return oom(err, errlen);
	}
	return dump(json_pack("{s:o}", "create_request", r), out, err, errlen);
}

/* ---------------------------------------------------------------- building a txn */

static json_t *cmp_json(const struct pm_etcd_cmp *c, char *err, size_t errlen, int *rc)
{
	static const char *const target[] = { "CREATE", "MOD", "VERSION", "VALUE", "LEASE" };
	static const char *const field[] = { "create_revision", "mod_revision", "version",
					     "value", "lease" };
	json_t *k, *v;
	if ((unsigned)c->target > PM_ETCD_LEASE) {
		*rc = failf(PM_ETCD_E_ARG, err, errlen, "compare target %d", (int)c->target);
		return NULL;
	}
	if ((*rc = key_json(c->key, false, &k, err, errlen)) != PM_ETCD_OK)
		return NULL;
	if (c->target == PM_ETCD_VALUE)
		*rc = value_json(c->value, c->value_len, &v, err, errlen);
	else if (!(v = i64_json(c->number)))
		*rc = oom(err, errlen);
	if (*rc != PM_ETCD_OK) {
		json_decref(k);
		return NULL;
	}
	json_t *j = json_pack("{s:o,s:s,s:s,s:o}", "key", k, "target", target[c->target], "result",
			      "EQUAL", field[c->target], v);
	if (!j)
		*rc = oom(err, errlen);
	return j;
}

static json_t *op_json(const struct pm_etcd_op *op, char *err, size_t errlen, int *rc)
{
	json_t *r;
	const char *name;
	switch (op->kind) {
	case PM_ETCD_PUT:
		name = "request_put";
		r = put_json(op->key, op->value, op->value_len, op->lease, err, errlen, rc);
		break;
	case PM_ETCD_DELETE:
		name = "request_delete_range";
		r = range_json(op->key, op->range_end, false, err, errlen, rc);
		break;
	case PM_ETCD_RANGE:
		name = "request_range";
		r = range_json(op->key, op->range_end, true, err, errlen, rc);
		break;
	default:
		*rc = failf(PM_ETCD_E_ARG, err, errlen, "operation kind %d", (int)op->kind);
		return NULL;
	}
	json_t *j = r ? json_pack("{s:o}", name, r) : NULL;
	if (r && !j)
		*rc = oom(err, errlen);
	return j;
}

/* n compares (ops NULL) or operations (cmp NULL) as a JSON array. */
static json_t *list_json(const char *what, const struct pm_etcd_cmp *cmp,
			 const struct pm_etcd_op *ops, uint32_t n, char *err, size_t errlen,
			 int *rc)
{
	if (n > PM_ETCD_TXN_OPS_MAX) {
		*rc = failf(PM_ETCD_E_ARG, err, errlen, "%u %s past PM_ETCD_TXN_OPS_MAX (%u)", n,
			    what, PM_ETCD_TXN_OPS_MAX);
		return NULL;
	}
	if (n && !cmp && !ops) {
		*rc = failf(PM_ETCD_E_ARG, err, errlen, "%u %s at NULL", n, what);
		return NULL;
	}
	json_t *a = json_array();
	*rc = a ? PM_ETCD_OK : oom(err, errlen);
	for (uint32_t i = 0; i < n && *rc == PM_ETCD_OK; i++) {
		json_t *x = cmp ? cmp_json(&cmp[i], err, errlen, rc) : op_json(&ops[i], err, errlen, rc);
		if (x && json_array_append_new(a, x))
			*rc = oom(err, errlen);
	}
	if (*rc != PM_ETCD_OK) {
		json_decref(a);
		return NULL;
	}
	return a;
}

int pm_etcd_req_txn(const struct pm_etcd_txn *t, char **out, char *err, size_t errlen)
{
	int rc;
	json_t *c, *s = NULL, *f = NULL;
	*out = NULL;
	if (!t)
		return failf(PM_ETCD_E_ARG, err, errlen, "no transaction");
	if (!(c = list_json("compares", t->cmp, NULL, t->ncmp, err, errlen, &rc)) ||
	    !(s = list_json("success operations", NULL, t->success, t->nsuccess, err, errlen,
			    &rc)) ||
	    !(f = list_json("failure operations", NULL, t->failure, t->nfailure, err, errlen,
			    &rc))) {
		json_decref(c);
		json_decref(s);
		return rc;
	}
	return dump(json_pack("{s:o,s:o,s:o}", "compare", c, "success", s, "failure", f), out,
		    err, errlen);
}

/* ---------------------------------------------------------------- reading answers */

/* A uint64 as etcd writes it, canonical: decimal digits, no leading zero. */
static bool u64_text(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 20 || (s[0] == '0' && n > 1))
		return false;
	for (size_t i = 0; i < n; i++) {
		uint64_t d = (uint64_t)(s[i] - '0');
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* An int64 likewise, with an optional '-' (no "-0"). */
static bool i64_text(const char *s, size_t n, int64_t *out)
{
	bool neg = n > 0 && s[0] == '-';
	uint64_t v;
	if (!u64_text(s + neg, n - neg, &v) || v > (uint64_t)INT64_MAX + neg || (neg && v == 0))
		return false;
	*out = neg ? (int64_t)(~v + 1) : (int64_t)v;
	return true;
}

/* obj's member name as an int64 >= min into *out; left out: 0. */
static int get_i64(const json_t *obj, const char *name, int64_t min, int64_t *out,
		   const char *ctx, char *err, size_t errlen)
{
	const json_t *v = json_object_get(obj, name);
	bool ok = true;
	*out = 0;
	if (json_is_integer(v))
		*out = json_integer_value(v);
	else if (json_is_string(v))
		ok = i64_text(json_string_value(v), json_string_length(v), out);
	else if (v)
		ok = false;
	if (!ok)
		return failf(PM_ETCD_E_PROTO, err, errlen, "%s%s: not an int64", ctx, name);
	if (*out < min)
		return failf(PM_ETCD_E_PROTO, err, errlen, "%s%s: %" PRId64 " below %" PRId64, ctx,
			     name, *out, min);
	return PM_ETCD_OK;
}

/* body as a JSON object (NULL: err says why). */
static json_t *load(const char *body, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	if (len > PM_ETCD_MSG_BYTES_MAX) {
		failf(PM_ETCD_E_PROTO, err, errlen,
		      "an answer of %zu bytes past PM_ETCD_MSG_BYTES_MAX", len);
		return NULL;
	}
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		failf(PM_ETCD_E_PROTO, err, errlen, "not JSON: %s (byte %d)", je.text, je.position);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		failf(PM_ETCD_E_PROTO, err, errlen, "not a JSON object");
		return NULL;
	}
	return j;
}

/* obj's "header": its revision (left out: 0); its uint64s (the cluster's
 * and member's IDs, the raft term), if there, must be uint64s. */
static int get_header(const json_t *obj, bool required, int64_t *revision, const char *ctx,
		      char *err, size_t errlen)
{
	static const char *const ids[] = { "cluster_id", "member_id", "raft_term" };
	const json_t *h = json_object_get(obj, "header");
	uint64_t scratch;
	*revision = 0;
	if (!h && !required)
		return PM_ETCD_OK;
	if (!json_is_object(h))
		return failf(PM_ETCD_E_PROTO, err, errlen, "%sheader: %s", ctx,
			     h ? "not an object" : "missing");
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const json_t *v = json_object_get(h, ids[i]);
		bool ok = !v || (json_is_integer(v) && json_integer_value(v) >= 0) ||
			  (json_is_string(v) &&
			   u64_text(json_string_value(v), json_string_length(v), &scratch));
		if (!ok)
			return failf(PM_ETCD_E_PROTO, err, errlen, "%sheader.%s: not a uint64", ctx,
				     ids[i]);
	}
	char c[ETCD_CTX_BYTES];
	snprintf(c, sizeof(c), "%sheader.", ctx);
	return get_i64(h, "revision", 0, revision, c, err, errlen);
}

/* A base64 member (optional: "" when left out) decoded into a malloc'd
 * buffer with a NUL after it. */
static int get_b64(const json_t *obj, const char *name, bool required, uint8_t **out,
		   size_t *n, const char *ctx, char *err, size_t errlen)
{
	const json_t *v = json_object_get(obj, name);
	*out = NULL;
	*n = 0;
	if ((v || required) && !json_is_string(v))
		return failf(PM_ETCD_E_PROTO, err, errlen, "%s%s: %s", ctx, name,
			     v ? "not a string" : "missing");
	size_t len = v ? json_string_length(v) : 0;
	if (!(*out = malloc(len / 4 * 3 + 1)))
		return oom(err, errlen);
	if (v && pm_etcd_b64_decode(json_string_value(v), len, *out, n) != 0) {
		free(*out);
		*out = NULL;
		return failf(PM_ETCD_E_PROTO, err, errlen, "%s%s: not base64", ctx, name);
	}
	(*out)[*n] = '\0';
	return PM_ETCD_OK;
}

static void kv_free(struct pm_etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

/* One mvccpb.KeyValue. A DELETE event's has only key and mod_revision. */
static int get_kv(const json_t *j, struct pm_etcd_kv *kv, const char *ctx, char *err,
		  size_t errlen)
{
	size_t klen;
	uint8_t *key;
	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(j))
		return failf(PM_ETCD_E_PROTO, err, errlen, "%s: %s", ctx, j ? "not an object" : "missing");
	char c[ETCD_CTX_BYTES];
	snprintf(c, sizeof(c), "%s.", ctx);
	int rc = get_b64(j, "key", true, &key, &klen, c, err, errlen);
	kv->key = (char *)key;
	if (rc == PM_ETCD_OK && (klen == 0 || klen > PM_ETCD_KEY_BYTES_MAX))
		rc = failf(PM_ETCD_E_PROTO, err, errlen, "%skey: %zu bytes (1..%u)", c, klen,
			   PM_ETCD_KEY_BYTES_MAX);
	if (rc == PM_ETCD_OK && memchr(kv->key, '\0', klen))
		rc = failf(PM_ETCD_E_PROTO, err, errlen, "%skey: holds a NUL byte", c);
	if (rc == PM_ETCD_OK)
		rc = get_b64(j, "value", false, &kv->value, &kv->value_len, c, err, errlen);
	if (rc == PM_ETCD_OK)
		rc = get_i64(j, "create_revision", 0, &kv->create_revision, c, err, errlen);
	if (rc == PM_ETCD_OK)
		rc = get_i64(j, "mod_revision", 0, &kv->mod_revision, c, err, errlen);
	if (rc == PM_ETCD_OK)
		rc = get_i64(j, "version", 0, &kv->version, c, err, errlen);
	if (rc == PM_ETCD_OK)
		rc = get_i64(j, "lease", 0, &kv->lease, c, err, errlen);
	if (rc != PM_ETCD_OK)
		kv_free(kv);
	return rc;
}

void pm_etcd_kvs_free(struct pm_etcd_kvs *kvs)
{
	if (!kvs)
		return;
	for (uint32_t i = 0; i < kvs->n; i++)
		kv_free(&kvs->kv[i]);
	free(kvs->kv);
	memset(kvs, 0, sizeof(*kvs));
}

/* A RangeResponse's kvs appended to out (its revision not touched). */
static int get_range(const json_t *r, struct pm_etcd_kvs *out, const char *ctx, char *err,
		     size_t errlen)
{
	const json_t *kvs = json_object_get(r, "kvs"), *more = json_object_get(r, "more");
	int64_t count;
	if (kvs && !json_is_array(kvs))
		return failf(PM_ETCD_E_PROTO, err, errlen, "%skvs: not an array", ctx);
	if (more && !json_is_boolean(more))
		return failf(PM_ETCD_E_PROTO, err, errlen, "%smore: not a boolean", ctx);
	if (get_i64(r, "count", 0, &count, ctx, err, errlen) != PM_ETCD_OK)
		return PM_ETCD_E_PROTO;
	size_t n = json_array_size(kvs);
	if (json_is_true(more) || out->n + n > PM_ETCD_KVS_MAX)
		return failf(PM_ETCD_E_PROTO, err, errlen, "%skvs: more than PM_ETCD_KVS_MAX (%u)",
			     ctx, PM_ETCD_KVS_MAX);
	if ((uint64_t)count < n)
		return failf(PM_ETCD_E_PROTO, err, errlen, "%scount %" PRId64 " below %zu kvs", ctx,
			     count, n);
	if (n == 0)
		return PM_ETCD_OK;
	struct pm_etcd_kv *kv = realloc(out->kv, (out->n + n) * sizeof(*kv));
	if (!kv)
		return oom(err, errlen);
	out->kv = kv;
	for (size_t i = 0; i < n; i++) {
		char c[ETCD_CTX_BYTES];
		snprintf(c, sizeof(c), "%skvs[%zu]", ctx, i);
		if (get_kv(json_array_get(kvs, i), &out->kv[out->n], c, err, errlen) != PM_ETCD_OK)
			return PM_ETCD_E_PROTO;
		out->n++;
	}
	return PM_ETCD_OK;
}

/* ---------------------------------------------------------------- unary answers */

/* {"error":"…","message":"…","code":N}, or a stream's {"error":{"grpc_code":
 * N,"message":"…",…}}: etcd's text and gRPC code (-1: none) of an error. */
static bool error_of(const json_t *j, const char **msg, json_int_t *code)
{
	const json_t *e = json_object_get(j, "error");
	json_t *m = NULL, *c = NULL;
	if (json_is_string(e)) {
		json_unpack((json_t *)j, "{s?o,s?o}", "message", &m, "code", &c);
		*msg = json_string_value(e);
	} else if (json_is_object(e)) {
		json_unpack((json_t *)e, "{s?o,s?o}", "message", &m, "grpc_code", &c);
		*msg = json_is_string(m) ? json_string_value(m) : "(no message)";
	} else {
		return false;
	}
	*code = json_is_integer(c) ? json_integer_value(c) : -1;
	return true;
}

/* gRPC's NOT_FOUND: what etcd says of a lease it does not have (ErrGRPCLeaseNotFound;
 * a missing key is not an error, and its other NOT_FOUNDs are of APIs not used here). */
#define ETCD_CODE_NOT_FOUND 5

int pm_etcd_ans_error(long http, const char *body, size_t len, char *err, size_t errlen)
{
	json_t *j = len <= PM_ETCD_MSG_BYTES_MAX
			    ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL)
			    : NULL;
	const char *msg;
	json_int_t code;
	int rc = PM_ETCD_E_HTTP;
	if (json_is_object(j) && error_of(j, &msg, &code)) {
		rc = code == ETCD_CODE_NOT_FOUND ? PM_ETCD_LEASE_GONE : PM_ETCD_E_HTTP;
		failf(rc, err, errlen, "HTTP %ld: %s (code %lld)", http, msg, (long long)code);
	} else {
		size_t n = len < ETCD_BODY_QUOTE_BYTES ? len : ETCD_BODY_QUOTE_BYTES;
		while (n > 0 && (body[n - 1] == '\n' || body[n - 1] == '\r'))
			n--;
		if (n)
			failf(rc, err, errlen, "HTTP %ld: %.*s", http, (int)n, body);
		else
			failf(rc, err, errlen, "HTTP %ld: (no body)", http);
	}
	json_decref(j);
	return rc;
}

int pm_etcd_ans_grant(const char *body, size_t len, int64_t *id, int64_t *ttl_s, char *err,
		      size_t errlen)
{
	int64_t rev;
	const char *msg = NULL;
	json_error_t je;
	json_t *j = load(body, len, err, errlen);
	int rc = j ? get_header(j, true, &rev, "", err, errlen) : PM_ETCD_E_PROTO;
	if (rc == PM_ETCD_OK && json_unpack_ex(j, &je, 0, "{s?s}", "error", &msg))
		rc = failf(PM_ETCD_E_PROTO, err, errlen, "error: %s", je.text);
	if (rc == PM_ETCD_OK && msg && *msg)
		rc = failf(PM_ETCD_E_HTTP, err, errlen, "lease not granted: %s", msg);
	if (rc == PM_ETCD_OK)
		rc = get_i64(j, "ID", 1, id, "", err, errlen);
	if (rc == PM_ETCD_OK)
		rc = get_i64(j, "TTL", 1, ttl_s, "", err, errlen);
	json_decref(j);
	return rc;
}

/* A streaming call's message: its {"result":…} object, or E_HTTP for the
 * stream's error object (LEASE_GONE for code 5). */
static int result_of(const json_t *j, const json_t **result, char *err, size_t errlen)
{
	const char *msg;
	json_int_t code;
	if (error_of(j, &msg, &code))
		return failf(code == ETCD_CODE_NOT_FOUND ? PM_ETCD_LEASE_GONE : PM_ETCD_E_HTTP, err,
			     errlen, "%s (code %lld)", msg, (long long)code);
	*result = json_object_get(j, "result");
	if (!json_is_object(*result))
		return failf(PM_ETCD_E_PROTO, err, errlen, "result: %s",
			     *result ? "not an object" : "missing");
	return PM_ETCD_OK;
}

int pm_etcd_ans_keepalive(const char *body, size_t len, int64_t id, int64_t *ttl_s, char *err,
			  size_t errlen)
{
	const json_t *r = NULL;
	int64_t rev, got = 0;
	json_t *j = load(body, len, err, errlen);
	int rc = j ? result_of(j, &r, err, errlen) : PM_ETCD_E_PROTO;
	*ttl_s = 0;
	if (rc == PM_ETCD_OK)
		rc = get_header(r, true, &rev, "result.", err, errlen);
	if (rc == PM_ETCD_OK)
		rc = get_i64(r, "ID", 0, &got, "result.", err, errlen);
	if (rc == PM_ETCD_OK && got != id)
		rc = failf(PM_ETCD_E_PROTO, err, errlen,
			   "result.ID: %" PRId64 " answers lease %" PRId64, got, id);
	if (rc == PM_ETCD_OK)
		rc = get_i64(r, "TTL", INT64_MIN, ttl_s, "result.", err, errlen);
	if (rc == PM_ETCD_OK && *ttl_s <= 0) {
		*ttl_s = 0;
		rc = failf(PM_ETCD_LEASE_GONE, err, errlen,
			   "lease %" PRId64 " is gone (expired or revoked)", id);
	}
	json_decref(j);
	return rc;
}

int pm_etcd_ans_header(const char *body, size_t len, int64_t *revision, char *err,
		       size_t errlen)
{
	int64_t rev;
	json_t *j = load(body, len, err, errlen);
	int rc = j ? get_header(j, true, &rev, "", err, errlen) : PM_ETCD_E_PROTO;
	if (rc == PM_ETCD_OK && revision)
		*revision = rev;
	json_decref(j);
	return rc;
}

int pm_etcd_ans_range(const char *body, size_t len, struct pm_etcd_kvs *out, char *err,
		      size_t errlen)
{
	memset(out, 0, sizeof(*out));
	json_t *j = load(body, len, err, errlen);
	int rc = j ? get_header(j, true, &out->revision, "", err, errlen) : PM_ETCD_E_PROTO;
	if (rc == PM_ETCD_OK)
		rc = get_range(j, out, "", err, errlen);
	if (rc != PM_ETCD_OK)
		pm_etcd_kvs_free(out);
	json_decref(j);
	return rc;
}

/* A DeleteRangeResponse (prev_kvs are not asked for; checked if there). */
static int get_delete(const json_t *r, int64_t *deleted, const char *ctx, char *err,
		      size_t errlen)
{
	const json_t *prev = json_object_get(r, "prev_kvs");
	if (prev && !json_is_array(prev))
		return failf(PM_ETCD_E_PROTO, err, errlen, "%sprev_kvs: not an array", ctx);
	return get_i64(r, "deleted", 0, deleted, ctx, err, errlen);
}

int pm_etcd_ans_delete(const char *body, size_t len, int64_t *deleted, int64_t *revision,
		       char *err, size_t errlen)
{
	int64_t rev, del = 0;
	json_t *j = load(body, len, err, errlen);
	int rc = j ? get_header(j, true, &rev, "", err, errlen) : PM_ETCD_E_PROTO;
	if (rc == PM_ETCD_OK)
		rc = get_delete(j, &del, "", err, errlen);
	if (rc == PM_ETCD_OK && deleted)
		*deleted = del;
	if (rc == PM_ETCD_OK && revision)
		*revision = rev;
	json_decref(j);
	return rc;
}

/* ---------------------------------------------------------------- a txn's answer */

/* responses[i]: one member, the response of operation op's kind. */
static int get_response(const json_t *x, const struct pm_etcd_op *op, size_t i,
			struct pm_etcd_kvs *ranges, char *err, size_t errlen)
{
	static const char *const names[] = { "response_put", "response_delete_range",
					     "response_range" };
	char c[ETCD_CTX_BYTES];
	int64_t scratch;
	if ((unsigned)op->kind > PM_ETCD_RANGE)
		return failf(PM_ETCD_E_ARG, err, errlen, "operation kind %d", (int)op->kind);
	const char *name = names[op->kind];
	const json_t *r = json_object_get(x, name);
	snprintf(c, sizeof(c), "responses[%zu].%s", i, name);
	if (!json_is_object(x) || json_object_size(x) != 1 || !json_is_object(r))
		return failf(PM_ETCD_E_PROTO, err, errlen, "%s: not the one member", c);
	snprintf(c, sizeof(c), "responses[%zu].%s.", i, name);
	if (get_header(r, false, &scratch, c, err, errlen) != PM_ETCD_OK)
		return PM_ETCD_E_PROTO;
	if (op->kind == PM_ETCD_DELETE)
		return get_delete(r, &scratch, c, err, errlen);
	if (op->kind == PM_ETCD_RANGE)
		return get_range(r, ranges, c, err, errlen);
	return PM_ETCD_OK;
}

int pm_etcd_ans_txn(const char *body, size_t len, const struct pm_etcd_txn *t,
		    int64_t *revision, struct pm_etcd_kvs *ranges, char *err, size_t errlen)
{
	struct pm_etcd_kvs scratch = { 0 }, *kvs = ranges ? ranges : &scratch;
	const json_t *ok, *resp;
	int64_t rev = 0;
	memset(kvs, 0, sizeof(*kvs));
	if (!t || (t->nsuccess && !t->success) || (t->nfailure && !t->failure))
		return failf(PM_ETCD_E_ARG, err, errlen, "no transaction to read the answer of");
	json_t *j = load(body, len, err, errlen);
	int rc = j ? get_header(j, true, &rev, "", err, errlen) : PM_ETCD_E_PROTO;
	ok = json_object_get(j, "succeeded");
	resp = json_object_get(j, "responses");
	if (rc == PM_ETCD_OK && ok && !json_is_boolean(ok))
		rc = failf(PM_ETCD_E_PROTO, err, errlen, "succeeded: not a boolean");
	if (rc == PM_ETCD_OK && resp && !json_is_array(resp))
		rc = failf(PM_ETCD_E_PROTO, err, errlen, "responses: not an array");
	const struct pm_etcd_op *ops = json_is_true(ok) ? t->success : t->failure;
	uint32_t nops = json_is_true(ok) ? t->nsuccess : t->nfailure;
	if (rc == PM_ETCD_OK && json_array_size(resp) != nops)
		rc = failf(PM_ETCD_E_PROTO, err, errlen, "%zu responses to the %s branch's %u operations",
			   json_array_size(resp), json_is_true(ok) ? "success" : "failure", nops);
	for (size_t i = 0; rc == PM_ETCD_OK && i < nops; i++)
		rc = get_response(json_array_get(resp, i), &ops[i], i, kvs, err, errlen);
	kvs->revision = rev;
	if (rc == PM_ETCD_OK && revision)
		*revision = rev;
	if (rc != PM_ETCD_OK || !ranges)
		pm_etcd_kvs_free(kvs);
	json_decref(j);
	return rc == PM_ETCD_OK && !json_is_true(ok) ? PM_ETCD_FAILED : rc;
}

/* ---------------------------------------------------------------- the watch stream */

int pm_etcd_lines_init(struct pm_etcd_lines *l, size_t cap)
{
	memset(l, 0, sizeof(*l));
	l->buf = malloc(cap ? cap : 1);
	l->cap = cap;
	return l->buf ? 0 : -1;
}

void pm_etcd_lines_free(struct pm_etcd_lines *l)
{
	free(l->buf);
	memset(l, 0, sizeof(*l));
}

void pm_etcd_lines_reset(struct pm_etcd_lines *l)
{
	l->len = 0;
	l->over = false;
}

int pm_etcd_lines_feed(struct pm_etcd_lines *l, const char *p, size_t n, pm_etcd_line_fn fn,
		       void *arg)
{
	while (n > 0 && !l->over) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		const char *line = p;
		if (take > l->cap - l->len) {
			l->over = true; /* a message past the bound: the stream ends here */
			l->len = 0;
			break;
		}
		if (!nl || l->len) { /* a line begun earlier, or one not whole yet: kept */
			memcpy(l->buf + l->len, p, take);
			l->len += take;
			line = l->buf;
		}
		if (!nl)
			return 0;
		size_t len = line == p ? take : l->len;
		l->len = 0;
		p += take + 1;
		n -= take + 1;
		int rc = len ? fn(arg, line, len) : 0;
		if (rc)
			return rc;
	}
	return l->over ? -1 : 0;
}

static int get_event(const json_t *x, struct pm_etcd_wevent *ev, size_t i, char *err,
		     size_t errlen)
{
	char c[ETCD_CTX_BYTES];
	const json_t *type = json_object_get(x, "type"), *prev = json_object_get(x, "prev_kv");
	memset(ev, 0, sizeof(*ev));
	snprintf(c, sizeof(c), "result.events[%zu]", i);
	if (!json_is_object(x))
		return failf(PM_ETCD_E_PROTO, err, errlen, "%s: not an object", c);
	if (json_is_string(type) && !strcmp(json_string_value(type), "DELETE"))
		ev->deleted = true;
	else if (json_is_integer(type) && json_integer_value(type) == 1)
		ev->deleted = true;
	else if (type && !(json_is_string(type) && !strcmp(json_string_value(type), "PUT")) &&
		 !(json_is_integer(type) && json_integer_value(type) == 0))
		return failf(PM_ETCD_E_PROTO, err, errlen, "%s.type: neither PUT nor DELETE", c);
	size_t at = strlen(c);
	snprintf(c + at, sizeof(c) - at, ".kv");
	if (get_kv(json_object_get(x, "kv"), &ev->kv, c, err, errlen) != PM_ETCD_OK)
		return PM_ETCD_E_PROTO;
	snprintf(c + at, sizeof(c) - at, ".prev_kv");
	if (prev && get_kv(prev, &ev->prev, c, err, errlen) != PM_ETCD_OK) {
		kv_free(&ev->kv);
		return PM_ETCD_E_PROTO;
	}
	ev->has_prev = prev != NULL;
	return PM_ETCD_OK;
}

void pm_etcd_wmsg_free(struct pm_etcd_wmsg *m)
{
	for (uint32_t i = 0; i < m->n; i++) {
		kv_free(&m->ev[i].kv);
		kv_free(&m->ev[i].prev);
	}
	free(m->ev);
	memset(m, 0, sizeof(*m));
}

static int get_events(const json_t *events, struct pm_etcd_wmsg *m, char *err, size_t errlen)
{
	size_t n = json_array_size(events);
	if (!(m->ev = calloc(n, sizeof(*m->ev))))
		return oom(err, errlen);
	for (size_t i = 0; i < n; i++) {
		if (get_event(json_array_get(events, i), &m->ev[i], i, err, errlen) != PM_ETCD_OK)
			return PM_ETCD_E_PROTO;
		m->n++;
	}
	return PM_ETCD_OK;
}

/* A canceled watch: why, as etcd put it. */
static int canceled(const json_t *r, char *err, size_t errlen)
{
	int64_t compact;
	const json_t *why = json_object_get(r, "cancel_reason");
	if (get_i64(r, "compact_revision", 0, &compact, "result.", err, errlen) != PM_ETCD_OK)
		return PM_ETCD_E_PROTO;
	if (compact)
		return failf(PM_ETCD_E_HTTP, err, errlen,
			     "watch canceled by etcd: its start revision was compacted "
			     "(compact_revision %" PRId64 ")",
			     compact);
	return failf(PM_ETCD_E_HTTP, err, errlen, "watch canceled by etcd: %s",
		     json_is_string(why) ? json_string_value(why) : "no reason given");
}

int pm_etcd_ans_watch(const char *line, size_t len, struct pm_etcd_wmsg *m, char *err,
		      size_t errlen)
{
	const json_t *r = NULL, *events;
	int created = 0, cancel = 0, fragment = 0;
	int64_t id;
	json_error_t je;
	memset(m, 0, sizeof(*m));
	json_t *j = load(line, len, err, errlen);
	int rc = j ? result_of(j, &r, err, errlen) : PM_ETCD_E_PROTO;
	if (rc == PM_ETCD_LEASE_GONE)
		rc = PM_ETCD_E_HTTP; /* no lease here: an error of the stream's */
	if (rc == PM_ETCD_OK)
		rc = get_header(r, false, &m->revision, "result.", err, errlen);
	if (rc == PM_ETCD_OK)
		rc = get_i64(r, "watch_id", INT64_MIN, &id, "result.", err, errlen);
	if (rc == PM_ETCD_OK &&
	    json_unpack_ex((json_t *)r, &je, 0, "{s?b,s?b,s?b}", "created", &created, "canceled",
			   &cancel, "fragment", &fragment))
		rc = failf(PM_ETCD_E_PROTO, err, errlen, "result: %s", je.text);
	events = json_object_get(r, "events");
	if (rc == PM_ETCD_OK && events && !json_is_array(events))
		rc = failf(PM_ETCD_E_PROTO, err, errlen, "result.events: not an array");
	if (rc == PM_ETCD_OK && cancel)
		rc = canceled(r, err, errlen);
	if (rc == PM_ETCD_OK && fragment)
		rc = failf(PM_ETCD_E_PROTO, err, errlen, "result: a fragment (not asked for)");
	if (rc == PM_ETCD_OK && created && json_array_size(events))
		rc = failf(PM_ETCD_E_PROTO, err, errlen, "result: events in a created message");
	if (rc == PM_ETCD_OK) {
		m->kind = created		   ? PM_ETCD_W_CREATED
			  : json_array_size(events) ? PM_ETCD_W_EVENTS
						    : PM_ETCD_W_PROGRESS;
		if (m->kind == PM_ETCD_W_EVENTS)
			rc = get_events(events, m, err, errlen);
	}
	if (rc != PM_ETCD_OK)
		pm_etcd_wmsg_free(m);
	json_decref(j);
	return rc;
}
