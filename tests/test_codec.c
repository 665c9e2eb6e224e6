/* SPDX-License-Identifier: MIT
 *
 * test_codec.c — CUnit suite of the frame codec (proto/codec.c), through
 * pomaid's bridge (dataplane/bridge.c) as the server uses it.
 *
 * Frames with broken fields are built here byte by byte with the test's own
 * little-endian writer (struct fb), independent of the codec's helpers, so the
 * tests pin the wire layout of docs/protocol.md rather than the code's idea of it.
 * The fuzz tests copy every input into a malloc'd buffer of exactly its length,
 * so that an over-read is caught by ASan in sanitizer builds.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <string.h>

#include "bridge.h"
#include "byteorder.h"
#include "cluster_map.h"
#include "pm_limits.h"
#include "cu_main.h"

/* ---------------------------------------------------------------- helpers */

static struct pm_bytes B(const char *s)
{
	return (struct pm_bytes){ (const uint8_t *)s, (uint32_t)strlen(s) };
}

static bool bytes_eq(struct pm_bytes a, struct pm_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* A decoded reply's bytes (the wire's type) against what was encoded. */
static bool view_eq(struct pm_wire_bytes a, struct pm_bytes b)
{
	return bytes_eq(pm_bytes_from_wire(a), b);
}

/* Little-endian f32 components 0.5 * i - 3, for dims up to PM_DIM_MAX. */
static uint8_t vecbytes[PM_DIM_MAX * 4];
/* A filler of PM_VALUE_BYTES_MAX + 1 bytes for keys, values and names. */
static uint8_t filler[PM_VALUE_BYTES_MAX + 1];

static void init_data(void)
{
	for (uint32_t i = 0; i < PM_DIM_MAX; i++) {
		float f = 0.5f * (float)i - 3.0f;
		uint32_t u;
		memcpy(&u, &f, 4);
		for (int b = 0; b < 4; b++)
			vecbytes[4 * i + b] = (uint8_t)(u >> (8 * b));
	}
	for (size_t i = 0; i < sizeof filler; i++)
		filler[i] = (uint8_t)('a' + i % 26);
}

static struct pm_bytes fill(uint32_t len)
{
	return (struct pm_bytes){ filler, len };
}

#define CHECK_FIELD(cond)                                                  \
	do {                                                                   \
		if (!(cond)) {                                                     \
			fprintf(stderr, "\n  mismatch: %s\n", #cond);                  \
			return false;                                                  \
		}                                                                  \
	} while (0)

static bool params_eq(const struct pm_collection_params *a,
		      const struct pm_collection_params *b)
{
	CHECK_FIELD(a->dim == b->dim && a->metric == b->metric && a->index == b->index);
	CHECK_FIELD(a->hnsw_m == b->hnsw_m && a->ef_construction == b->ef_construction);
	CHECK_FIELD(a->ef_search == b->ef_search && a->flags == b->flags);
	return true;
}

static bool view_params_eq(const struct pm_wire_coll_params *a,
			   const struct pm_collection_params *b)
{
	struct pm_wire_coll_info w = { .params = *a };
	struct pm_coll_info c;
	pm_coll_info_from_wire(&w, &c);
	return params_eq(&c.params, b);
}

static bool req_eq(const struct pm_request *a, const struct pm_request *b)
{
	CHECK_FIELD(a->op == b->op && a->id == b->id);
	CHECK_FIELD(bytes_eq(a->key, b->key) && bytes_eq(a->value, b->value));
	CHECK_FIELD(bytes_eq(a->collection, b->collection) && bytes_eq(a->section, b->section));
	CHECK_FIELD(a->dim == b->dim && a->k == b->k && a->ef == b->ef);
	CHECK_FIELD(a->dim == 0 || memcmp(a->vec, b->vec, (size_t)a->dim * 4) == 0);
	CHECK_FIELD(a->has_ttl == b->has_ttl && a->ttl_ms == b->ttl_ms && a->exact == b->exact);
	CHECK_FIELD(a->info_flags == b->info_flags && a->list_flags == b->list_flags);
	CHECK_FIELD(a->part_shards == b->part_shards); /* issue 20 */
	return params_eq(&a->params, &b->params);
}

static uint8_t *dup_exact(const uint8_t *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	CU_ASSERT_FATAL(p != NULL);
	if (len)
		memcpy(p, src, len);
	return p;
}

/* ---------------------------------------------------------------- raw frame builder */

static struct fb {
	uint8_t buf[2 * PM_FRAME_BYTES_MAX];
	size_t n;
} F;

static void fb_le(uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		F.buf[F.n++] = (uint8_t)(v >> (8 * i));
}

static void fb_start(uint8_t opcode, uint8_t flags, uint64_t id)
{
	F.n = 0;
	F.buf[F.n++] = 'P';
	F.buf[F.n++] = 'M';
	F.buf[F.n++] = 1;
	F.buf[F.n++] = opcode;
	F.buf[F.n++] = flags;
	F.buf[F.n++] = 0;   /* status */
	fb_le(0, 2);        /* reserved */
	fb_le(id, 8);
	fb_le(0, 4);        /* body_len, patched by fb_end */
	fb_le(0, 4);        /* reserved */
}

static void fb_zero(size_t n)
{
	memset(F.buf + F.n, 0, n);
	F.n += n;
}

static void fb_put(const void *p, size_t n)
{
	memcpy(F.buf + F.n, p, n);
	F.n += n;
}

static void fb_str(struct pm_bytes b)
{
	fb_le(b.len, 4);
	fb_put(b.ptr, b.len);
}

static void fb_vec(uint32_t dim)
{
	fb_le(dim, 4);
	fb_put(vecbytes, (size_t)(dim <= PM_DIM_MAX ? dim : PM_DIM_MAX) * 4);
}

static size_t fb_end(void)
{
	uint32_t body = (uint32_t)(F.n - PM_FRAME_HEADER_BYTES);
	for (int i = 0; i < 4; i++)
		F.buf[16 + i] = (uint8_t)(body >> (8 * i));
	return F.n;
}

static enum pm_status decode_fb(struct pm_request *req, size_t *used)
{
	size_t n = fb_end();
	uint8_t *copy = dup_exact(F.buf, n);
	enum pm_status st = pm_request_decode(copy, n, req, used);
	free(copy);
	return st;
}

static enum pm_status fb_status(void)
{
	struct pm_request req;
	size_t used;
	return decode_fb(&req, &used);
}

/* ---------------------------------------------------------------- request round trips */

static uint8_t out[PM_FRAME_BYTES_MAX];

static void roundtrip_req(const struct pm_request *in, uint8_t want_flags)
{
	size_t n = pm_request_encode(in, out, sizeof out);
	CU_ASSERT_FATAL(n >= PM_FRAME_HEADER_BYTES);
	CU_ASSERT_EQUAL(out[4], want_flags);
	uint8_t *copy = dup_exact(out, n);
	struct pm_request got;
	size_t used = 0;
	CU_ASSERT_EQUAL(pm_request_decode(copy, n, &got, &used), PM_OK);
	CU_ASSERT_EQUAL(used, n);
	CU_ASSERT(req_eq(in, &got));
	/* one byte less than needed does not fit */
	CU_ASSERT_EQUAL(pm_request_encode(in, out, n - 1), 0);
	free(copy);
}

static void test_request_roundtrip_kv(void)
{
	struct pm_request r = { .op = PM_OP_SET, .id = 1, .key = B("k"), .value = B("v") };
	roundtrip_req(&r, 0);
	r.value = (struct pm_bytes){ NULL, 0 };
	roundtrip_req(&r, 0); /* empty value */
	r = (struct pm_request){ .op = PM_OP_SET, .id = UINT64_MAX, .key = B("key"),
				 .value = B("value"), .has_ttl = true, .ttl_ms = 1500 };
	roundtrip_req(&r, PM_FLAG_TTL);
	r = (struct pm_request){ .op = PM_OP_GET, .id = 2, .key = B("some key") };
	roundtrip_req(&r, 0);
	r.op = PM_OP_DEL;
	roundtrip_req(&r, 0);
	r = (struct pm_request){ .op = PM_OP_INFO, .id = 3 };
	roundtrip_req(&r, 0);
	r.section = B("memory");
	roundtrip_req(&r, 0);
}

static void test_request_roundtrip_vector(void)
{
	struct pm_request r = { .op = PM_OP_VADD, .id = 10, .key = B("v1"), .dim = 3,
				.vec = vecbytes };
	roundtrip_req(&r, 0);
	r.has_ttl = true;
	r.ttl_ms = 99;
	roundtrip_req(&r, PM_FLAG_TTL);
	r.collection = B("images");
	roundtrip_req(&r, PM_FLAG_TTL | PM_FLAG_COLL);
	r.has_ttl = false;
	r.ttl_ms = 0;
	roundtrip_req(&r, PM_FLAG_COLL);

	r = (struct pm_request){ .op = PM_OP_VGET, .id = 11, .key = B("v1") };
	roundtrip_req(&r, 0);
	r.op = PM_OP_VDEL;
	roundtrip_req(&r, 0);

	r = (struct pm_request){ .op = PM_OP_VQUERY, .id = 12, .k = 5, .dim = 7, .vec = vecbytes };
	roundtrip_req(&r, 0);
	r.ef = 64;
	roundtrip_req(&r, PM_FLAG_EF);
	r.collection = B("c");
	roundtrip_req(&r, PM_FLAG_EF | PM_FLAG_COLL);
	r.exact = true;
	roundtrip_req(&r, PM_FLAG_EF | PM_FLAG_COLL | PM_FLAG_EXACT);
	r.ef = 0;
	r.collection = (struct pm_bytes){ NULL, 0 };
	roundtrip_req(&r, PM_FLAG_EXACT);
	r.part_shards = 3; /* issue 20: one shard's part of 3 */
	roundtrip_req(&r, PM_FLAG_EXACT | PM_FLAG_PART);
	r.ef = 64;
	r.collection = B("c");
	roundtrip_req(&r, PM_FLAG_EF | PM_FLAG_COLL | PM_FLAG_EXACT | PM_FLAG_PART);
}

static void test_request_roundtrip_collections(void)
{
	struct pm_request r = {
		.op = PM_OP_CCREATE, .id = 20, .collection = B("faces"),
		.params = { .dim = 512, .metric = PM_METRIC_COSINE, .index = PM_INDEX_HNSW,
			    .hnsw_m = 16, .ef_construction = 200, .ef_search = 50,
			    .flags = PM_COLL_EVICTABLE },
	};
	roundtrip_req(&r, 0);
	r.params = (struct pm_collection_params){ .dim = 1, .metric = PM_METRIC_L2,
						  .index = PM_INDEX_FLAT };
	roundtrip_req(&r, 0);
	r = (struct pm_request){ .op = PM_OP_CDROP, .id = 21, .collection = B("faces") };
	roundtrip_req(&r, 0);
	r = (struct pm_request){ .op = PM_OP_CLIST, .id = 22 };
	roundtrip_req(&r, 0);
	r.op = PM_OP_NONE;
	CU_ASSERT_EQUAL(pm_request_encode(&r, out, sizeof out), 0);
	r.op = PM_OP_COUNT;
	CU_ASSERT_EQUAL(pm_request_encode(&r, out, sizeof out), 0);
}

/* SNAPSHOT: opcode 'P', an empty body and no flags, both ways; the reply is its
 * status only. A body byte is refused like any other tail (FRAME_LENGTH), a
 * flag like any flag the opcode does not define. */
static void test_snapshot(void)
{
	struct pm_request r = { .op = PM_OP_SNAPSHOT, .id = 30 };
	roundtrip_req(&r, 0);
	CU_ASSERT_EQUAL_FATAL(pm_request_encode(&r, out, sizeof out), PM_FRAME_HEADER_BYTES);
	CU_ASSERT_EQUAL(out[3], 'P');
	CU_ASSERT_EQUAL(out[3], PM_OPCODE_SNAPSHOT);
	r.collection = B("ignored"); /* fields the op does not use are not sent */
	CU_ASSERT_EQUAL(pm_request_encode(&r, out, sizeof out), PM_FRAME_HEADER_BYTES);

	struct pm_request req;
	size_t used;
	fb_start('P', 0, 31);
	fb_le(0, 1);
	CU_ASSERT_EQUAL(decode_fb(&req, &used), PM_E_FRAME_LENGTH);
	CU_ASSERT_EQUAL(used, PM_FRAME_HEADER_BYTES + 1);
	CU_ASSERT_EQUAL(req.op, PM_OP_SNAPSHOT); /* known, so the error reply names it */
	CU_ASSERT_EQUAL(req.id, 31);
	fb_start('P', 0, 32);
	fb_str(B("x"));
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	for (int bit = 0; bit < 5; bit++) {
		fb_start('P', (uint8_t)(1u << bit), 33);
		CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_FLAGS);
	}
	fb_start('P', PM_FLAG_AUTH, 33); /* AUTH: a body shorter than its trailer */
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	fb_start('P', 0, 34);
	CU_ASSERT_EQUAL(fb_status(), PM_OK);

	static const enum pm_status results[] = { PM_OK, PM_E_PARAM, PM_E_TIMEOUT };
	for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
		struct pm_reply rep = { .status = results[i], .op = PM_OP_SNAPSHOT, .id = 40 + i };
		size_t n = pm_reply_encode(&rep, NULL, out, sizeof out);
		CU_ASSERT_EQUAL_FATAL(n, PM_FRAME_HEADER_BYTES);
		CU_ASSERT_EQUAL(out[3], 'P');
		struct pm_reply_view rv;
		CU_ASSERT_EQUAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_OK);
		CU_ASSERT(rv.op == PM_OP_SNAPSHOT && rv.id == 40 + i &&
			  rv.status == pm_status_to_wire(results[i]));
		CU_ASSERT(used == n && !rv.more && rv.value.len == 0);
	}
	/* a reply with a body, success or not, is refused */
	struct pm_reply rep = { .status = PM_OK, .op = PM_OP_SNAPSHOT, .id = 50 };
	struct pm_reply_view rv;
	CU_ASSERT_EQUAL_FATAL(pm_reply_encode(&rep, NULL, out, sizeof out), PM_FRAME_HEADER_BYTES);
	out[16] = 1; /* body_len 1 */
	out[PM_FRAME_HEADER_BYTES] = 0;
	CU_ASSERT_EQUAL(pm_reply_decode(out, PM_FRAME_HEADER_BYTES + 1, &rv, &used),
			PM_WIRE_E_FRAME_LENGTH);
	out[PM_FRAME_STATUS_OFFSET] = pm_status_to_wire(PM_E_PARAM);
	CU_ASSERT_EQUAL(pm_reply_decode(out, PM_FRAME_HEADER_BYTES + 1, &rv, &used),
			PM_WIRE_E_FRAME_LENGTH);
	CU_ASSERT_EQUAL(used, PM_FRAME_HEADER_BYTES + 1);
}

/* The bytes of docs/protocol.md's example: SET "hello" = "world", TTL 60 s, id 7. */
static void test_protocol_doc_example(void)
{
	static const uint8_t want_req[] = {
		0x50, 0x4d, 0x01, 0x53, 0x01, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x05, 0x00, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x05, 0x00, 0x00,
		0x00, 0x77, 0x6f, 0x72, 0x6c, 0x64, 0x60, 0xea, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00,
	};
	static const uint8_t want_rep[] = {
		0x50, 0x4d, 0x01, 0x53, 0x80, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	struct pm_request r = { .op = PM_OP_SET, .id = 7, .key = B("hello"), .value = B("world"),
				.has_ttl = true, .ttl_ms = 60000 };
	CU_ASSERT_EQUAL_FATAL(pm_request_encode(&r, out, sizeof out), sizeof want_req);
	CU_ASSERT(memcmp(out, want_req, sizeof want_req) == 0);
	struct pm_reply rep = { .status = PM_OK, .op = PM_OP_SET, .id = 7 };
	CU_ASSERT_EQUAL_FATAL(pm_reply_encode(&rep, NULL, out, sizeof out), sizeof want_rep);
	CU_ASSERT(memcmp(out, want_rep, sizeof want_rep) == 0);
}

/* ---------------------------------------------------------------- reply round trips */

static void encode_view(const struct pm_reply *rep, struct pm_reply_view *rv)
{
	static uint8_t copy[PM_FRAME_BYTES_MAX];
	size_t n = pm_reply_encode(rep, NULL, out, sizeof out);
	size_t used = 0;
	CU_ASSERT_FATAL(n >= PM_FRAME_HEADER_BYTES);
	CU_ASSERT(out[4] & PM_FLAG_REPLY);
	memcpy(copy, out, n); /* the view stays valid while the test looks at it */
	CU_ASSERT_EQUAL(pm_reply_decode(copy, n, rv, &used), PM_WIRE_OK);
	CU_ASSERT_EQUAL(used, n);
	CU_ASSERT_EQUAL(rv->id, rep->id);
	CU_ASSERT_EQUAL(rv->op, rep->op);
	CU_ASSERT_EQUAL(rv->status, pm_status_to_wire(rep->status));
	CU_ASSERT_FALSE(rv->more);
}

static void test_reply_roundtrip_simple(void)
{
	static const uint8_t empty_ops[] = { PM_OP_SET, PM_OP_VADD, PM_OP_CCREATE };
	struct pm_reply_view rv;
	for (size_t i = 0; i < sizeof empty_ops; i++) {
		struct pm_reply rep = { .status = PM_OK, .op = empty_ops[i], .id = 100 + i };
		encode_view(&rep, &rv);
	}
	static const uint8_t removed_ops[] = { PM_OP_DEL, PM_OP_VDEL, PM_OP_CDROP };
	for (size_t i = 0; i < sizeof removed_ops; i++) {
		for (uint32_t removed = 0; removed <= 1; removed++) {
			struct pm_reply rep = { .status = PM_OK, .op = removed_ops[i],
						.id = 7, .removed = removed };
			encode_view(&rep, &rv);
			CU_ASSERT_EQUAL(rv.removed, removed);
		}
	}
	struct pm_reply rep = { .status = PM_OK, .op = PM_OP_GET, .id = 9,
				.value = fill(PM_VALUE_BYTES_MAX) };
	encode_view(&rep, &rv);
	CU_ASSERT(view_eq(rv.value, rep.value));
	rep.value = (struct pm_bytes){ NULL, 0 };
	encode_view(&rep, &rv);
	CU_ASSERT_EQUAL(rv.value.len, 0);
	rep = (struct pm_reply){ .status = PM_OK, .op = PM_OP_INFO, .id = 10,
				 .value = B("# memory\r\nused_bytes:123\r\n") };
	encode_view(&rep, &rv);
	CU_ASSERT(view_eq(rv.value, rep.value));
}

static void test_reply_roundtrip_vget(void)
{
	struct pm_reply_view rv;
	struct pm_reply rep = { .status = PM_OK, .op = PM_OP_VGET, .id = 11, .dim = 5,
				.value = { vecbytes, 20 }, .collection = B("images") };
	encode_view(&rep, &rv);
	CU_ASSERT_EQUAL(rv.dim, 5);
	CU_ASSERT_EQUAL(rv.dtype, PM_DTYPE_F32);
	CU_ASSERT(view_eq(rv.value, rep.value));
	CU_ASSERT(view_eq(rv.collection, rep.collection));
	rep.collection = (struct pm_bytes){ NULL, 0 };
	rep.dim = PM_DIM_MAX;
	rep.value = (struct pm_bytes){ vecbytes, PM_DIM_MAX * 4 };
	encode_view(&rep, &rv);
	CU_ASSERT_EQUAL(rv.dim, PM_DIM_MAX);
	CU_ASSERT(view_eq(rv.value, rep.value));
	CU_ASSERT_EQUAL(rv.collection.len, 0);
	/* value bytes that disagree with dim are refused */
	rep.dim = 4;
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, NULL, out, sizeof out), 0);
}

static void test_reply_roundtrip_lists(void)
{
	struct pm_knn_hit hits[3] = { { 1, 0.25f }, { 2, 1.5f }, { 3, -0.0f } };
	struct pm_bytes keys[3] = { B("a"), B("bb"), fill(PM_KEY_BYTES_MAX) };
	struct pm_reply rep = { .status = PM_OK, .op = PM_OP_VQUERY, .id = 12,
				.hits = hits, .keys = keys, .nhits = 3 };
	struct pm_reply_view rv;
	struct pm_wire_bytes key;
	float dist;
	encode_view(&rep, &rv);
	CU_ASSERT_EQUAL(rv.count, 3);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_FATAL(pm_reply_next_hit(&rv, &key, &dist));
		CU_ASSERT(view_eq(key, keys[i]));
		CU_ASSERT(memcmp(&dist, &hits[i].dist, sizeof dist) == 0);
	}
	CU_ASSERT_FALSE(pm_reply_next_hit(&rv, &key, &dist));
	struct pm_wire_coll_info ci;
	CU_ASSERT_FALSE(pm_reply_next_coll(&rv, &ci)); /* not a CLIST view */

	struct pm_coll_info colls[2] = {
		{ { NULL, 0 }, { 0, PM_METRIC_L2, PM_INDEX_FLAT, 0, 0, 0 }, 0, 0 },
		{ B("faces"), { 512, PM_METRIC_IP, PM_INDEX_HNSW, 16, 200, 64, PM_COLL_EVICTABLE },
		  1000, 2048000 },
	};
	rep = (struct pm_reply){ .status = PM_OK, .op = PM_OP_CLIST, .id = 13,
				 .colls = colls, .ncolls = 2,
				 .list_flags = PM_CLIST_COLL_FLAGS | PM_CLIST_DTYPE };
	encode_view(&rep, &rv);
	CU_ASSERT_EQUAL(rv.count, 2);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_FATAL(pm_reply_next_coll(&rv, &ci));
		CU_ASSERT(view_eq(ci.name, colls[i].name));
		CU_ASSERT(view_params_eq(&ci.params, &colls[i].params));
		CU_ASSERT_EQUAL(ci.count, colls[i].count);
		CU_ASSERT_EQUAL(ci.bytes, colls[i].bytes);
	}
	CU_ASSERT_FALSE(pm_reply_next_coll(&rv, &ci));
	CU_ASSERT_FALSE(pm_reply_next_hit(&rv, &key, &dist));
	rep.ncolls = 0;
	encode_view(&rep, &rv);
	CU_ASSERT_EQUAL(rv.count, 0);
	CU_ASSERT_FALSE(pm_reply_next_coll(&rv, &ci));
}

static void test_reply_errors_roundtrip(void)
{
	struct pm_reply_view rv;
	struct pm_bytes keys[2] = { B("a"), B("b") };
	struct pm_knn_hit hits[2] = { { 0, 1 }, { 0, 2 } };
	for (uint8_t op = PM_OP_NONE; op < PM_OP_COUNT; op++) {
		struct pm_reply rep = { .status = PM_E_DIM, .op = op, .id = 1000 + op,
					.value = B("ignored"), .hits = hits, .keys = keys,
					.nhits = op == PM_OP_VQUERY ? 2 : 0 };
		uint32_t cursor = 0;
		size_t n = pm_reply_encode(&rep, &cursor, out, sizeof out);
		uint8_t opcode = 0, subop = 0;
		bool has_op = pm_op_wire(op, &opcode, &subop);
		CU_ASSERT_EQUAL(n, PM_FRAME_HEADER_BYTES + (subop ? 1u : 0u));
		CU_ASSERT_EQUAL(has_op, op != PM_OP_NONE);
		CU_ASSERT_EQUAL(out[3], opcode);
		CU_ASSERT_EQUAL(cursor, pm_reply_items(&rep)); /* an error ends the paging loop */
		size_t used;
		CU_ASSERT_EQUAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_OK);
		CU_ASSERT_EQUAL(rv.status, PM_WIRE_E_DIM);
		CU_ASSERT_EQUAL(rv.op, op);
		CU_ASSERT_EQUAL(rv.id, 1000u + op);
		CU_ASSERT_EQUAL(rv.count, 0);
		CU_ASSERT_EQUAL(rv.value.len, 0);
	}
	/* a success reply needs an op */
	struct pm_reply rep = { .status = PM_OK, .op = PM_OP_NONE };
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, NULL, out, sizeof out), 0);
	rep.op = PM_OP_COUNT;
	rep.status = PM_E_DIM;
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, NULL, out, sizeof out), 0);
	/* an unknown engine status travels as 255 and comes back as unknown */
	rep = (struct pm_reply){ .status = PM_STATUS_COUNT, .op = PM_OP_GET, .id = 5 };
	size_t n = pm_reply_encode(&rep, NULL, out, sizeof out), used;
	CU_ASSERT_EQUAL_FATAL(n, PM_FRAME_HEADER_BYTES);
	CU_ASSERT_EQUAL(out[5], PM_WIRE_E_INTERNAL);
	CU_ASSERT_EQUAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_OK);
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_E_INTERNAL);
}

/* THROTTLED carries a u32 retry hint after the sub-op byte (protocol.md §6.3). */
static void test_reply_throttled(void)
{
	struct pm_reply_view rv;
	size_t used;
	for (uint8_t op = PM_OP_NONE; op < PM_OP_COUNT; op++) {
		uint8_t opcode = 0, subop = 0;
		(void)pm_op_wire(op, &opcode, &subop);
		size_t n = pm_reply_encode_throttled(op, 77u + op, 1234u, out, sizeof out);
		CU_ASSERT_EQUAL(n, PM_FRAME_HEADER_BYTES + (subop ? 1u : 0u) + 4u);
		CU_ASSERT_EQUAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_OK);
		CU_ASSERT(rv.status == PM_WIRE_E_THROTTLED && rv.retry_ms == 1234u && rv.op == op);
		CU_ASSERT_EQUAL(rv.id, 77u + op);
		CU_ASSERT_EQUAL(used, n);
		/* without its hint the frame is refused */
		out[16] = (uint8_t)(out[16] - 4u);
		CU_ASSERT_EQUAL(pm_reply_decode(out, n - 4u, &rv, &used), PM_WIRE_E_FRAME_LENGTH);
	}
	/* through the generic encoder: hint 0 (none), still a valid frame */
	struct pm_reply rep = { .status = PM_E_THROTTLED, .op = PM_OP_VADD, .id = 9 };
	size_t n = pm_reply_encode(&rep, NULL, out, sizeof out);
	CU_ASSERT_EQUAL_FATAL(n, PM_FRAME_HEADER_BYTES + 1u + 4u);
	CU_ASSERT_EQUAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_OK);
	CU_ASSERT(rv.status == PM_WIRE_E_THROTTLED && rv.retry_ms == 0);
	/* other errors carry no hint: a body there is still refused */
	rep.status = PM_E_QUOTA;
	n = pm_reply_encode(&rep, NULL, out, sizeof out);
	CU_ASSERT_EQUAL_FATAL(n, PM_FRAME_HEADER_BYTES + 1u);
	CU_ASSERT_EQUAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_OK);
	CU_ASSERT(rv.status == PM_WIRE_E_QUOTA && rv.retry_ms == 0);
	CU_ASSERT_EQUAL(pm_reply_encode_throttled(PM_OP_GET, 1, 5, out, PM_FRAME_HEADER_BYTES + 3), 0);
}

/* ---------------------------------------------------------------- paging */

#define PAGE_HITS 300u

static void test_vquery_paging(void)
{
	static struct pm_knn_hit hits[PAGE_HITS];
	static struct pm_bytes keys[PAGE_HITS];
	static uint8_t keybuf[PAGE_HITS][PM_KEY_BYTES_MAX];
	uint8_t *all = malloc(8 * (size_t)PM_FRAME_BYTES_MAX);
	CU_ASSERT_FATAL(all != NULL);
	for (uint32_t i = 0; i < PAGE_HITS; i++) {
		uint32_t len = 1 + (i * 389u) % PM_KEY_BYTES_MAX;
		for (uint32_t j = 0; j < len; j++)
			keybuf[i][j] = (uint8_t)(i * 7 + j);
		keys[i] = (struct pm_bytes){ keybuf[i], len };
		hits[i] = (struct pm_knn_hit){ i, 0.125f * (float)i };
	}
	struct pm_reply rep = { .status = PM_OK, .op = PM_OP_VQUERY, .id = 77,
				.hits = hits, .keys = keys, .nhits = PAGE_HITS };
	uint32_t cursor = 0, frames = 0, seen = 0;
	size_t total = 0;
	do {
		size_t n = pm_reply_encode(&rep, &cursor, all + total, PM_FRAME_BYTES_MAX);
		CU_ASSERT_FATAL(n > PM_FRAME_HEADER_BYTES && n <= PM_FRAME_BYTES_MAX);
		CU_ASSERT_FATAL(frames < 8);
		total += n;
		frames++;
	} while (cursor < PAGE_HITS);
	uint64_t item_bytes = 0;
	for (uint32_t i = 0; i < PAGE_HITS; i++)
		item_bytes += PM_WIRE_HIT_BYTES_FIXED + keys[i].len;
	uint64_t per_frame = PM_FRAME_BYTES_MAX - PM_FRAME_HEADER_BYTES - 1 - 4;
	CU_ASSERT(item_bytes > per_frame); /* the test needs more than one frame */
	CU_ASSERT(frames >= (item_bytes + per_frame - 1) / per_frame);
	CU_ASSERT(pm_reply_encode(&rep, NULL, out, sizeof out) == 0); /* needs paging */

	/* the frames, concatenated, decode one after another */
	uint8_t *copy = dup_exact(all, total);
	size_t off = 0;
	for (uint32_t f = 0; f < frames; f++) {
		struct pm_reply_view rv;
		struct pm_wire_bytes key;
		float dist;
		size_t used = 0;
		CU_ASSERT_EQUAL_FATAL(pm_reply_decode(copy + off, total - off, &rv, &used), PM_WIRE_OK);
		CU_ASSERT_EQUAL(rv.id, 77);
		CU_ASSERT_EQUAL(rv.more, f + 1 < frames);
		CU_ASSERT(rv.count > 0);
		while (pm_reply_next_hit(&rv, &key, &dist)) {
			CU_ASSERT_FATAL(seen < PAGE_HITS);
			CU_ASSERT(view_eq(key, keys[seen]));
			CU_ASSERT_EQUAL(dist, hits[seen].dist);
			seen++;
		}
		off += used;
	}
	CU_ASSERT_EQUAL(off, total);
	CU_ASSERT_EQUAL(seen, PAGE_HITS);
	free(copy);
	free(all);
}

static void test_paging_small_cap(void)
{
	struct pm_bytes keys[3] = { fill(PM_KEY_BYTES_MAX), fill(PM_KEY_BYTES_MAX), B("z") };
	struct pm_knn_hit hits[3] = { { 0, 1 }, { 0, 2 }, { 0, 3 } };
	struct pm_reply rep = { .status = PM_OK, .op = PM_OP_VQUERY, .id = 1,
				.hits = hits, .keys = keys, .nhits = 3 };
	size_t one = PM_FRAME_HEADER_BYTES + 1 + 4 + PM_WIRE_HIT_BYTES_FIXED + PM_KEY_BYTES_MAX;
	uint32_t cursor = 0;
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, &cursor, out, one - 1), 0);
	CU_ASSERT_EQUAL(cursor, 0);
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, &cursor, out, one), one);
	CU_ASSERT_EQUAL(cursor, 1);
	CU_ASSERT(out[4] & PM_FLAG_MORE);
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, &cursor, out, one), one);
	CU_ASSERT_EQUAL(cursor, 2);
	CU_ASSERT(out[4] & PM_FLAG_MORE);
	{ /* every page says where it starts, so a client sees a lost middle page */
		struct pm_reply_view rv;
		size_t used;
		CU_ASSERT_EQUAL(pm_reply_decode(out, one, &rv, &used), PM_WIRE_OK);
		CU_ASSERT_EQUAL(rv.first, 1);
		CU_ASSERT_EQUAL(out[20], 1);
		/* a request, or a non-paged reply, carrying a first index is refused */
		struct pm_request q;
		uint8_t bad[64];
		struct pm_request g = { .op = PM_OP_GET, .id = 3, .key = B("k") };
		size_t n = pm_request_encode(&g, bad, sizeof bad);
		CU_ASSERT_FATAL(n > 0);
		bad[20] = 1;
		CU_ASSERT_EQUAL(pm_request_decode(bad, n, &q, &used), PM_E_FRAME_FLAGS);
		struct pm_reply gr = { .status = PM_OK, .op = PM_OP_GET, .id = 3, .value = B("v") };
		n = pm_reply_encode(&gr, NULL, bad, sizeof bad);
		CU_ASSERT_FATAL(n > 0);
		CU_ASSERT_EQUAL(bad[20], 0);
		bad[20] = 1;
		CU_ASSERT_EQUAL(pm_reply_decode(bad, n, &rv, &used), PM_WIRE_E_FRAME_FLAGS);
	}
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, &cursor, out, one), one - PM_KEY_BYTES_MAX + 1);
	CU_ASSERT_EQUAL(cursor, 3);
	CU_ASSERT_FALSE(out[4] & PM_FLAG_MORE);
	cursor = 4; /* past the end */
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, &cursor, out, sizeof out), 0);
	CU_ASSERT_EQUAL(cursor, 4);
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, NULL, out, PM_FRAME_HEADER_BYTES - 1), 0);

	/* CLIST pages the same way */
	struct pm_coll_info colls[20];
	for (uint32_t i = 0; i < 20; i++)
		colls[i] = (struct pm_coll_info){ fill(1 + (i * 3) % PM_COLLECTION_NAME_BYTES_MAX),
						  { i + 1, PM_METRIC_L2, PM_INDEX_FLAT, 0, 0, 0 },
						  i, 100 * i };
	rep = (struct pm_reply){ .status = PM_OK, .op = PM_OP_CLIST, .id = 2,
				 .colls = colls, .ncolls = 20,
				 .list_flags = PM_CLIST_COLL_FLAGS | PM_CLIST_DTYPE };
	cursor = 0;
	uint32_t seen = 0, frames = 0;
	while (cursor < 20 && frames < 40) {
		size_t n = pm_reply_encode(&rep, &cursor, out, 300), used;
		struct pm_reply_view rv;
		struct pm_wire_coll_info ci;
		CU_ASSERT_FATAL(n > 0 && n <= 300);
		CU_ASSERT_EQUAL_FATAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_OK);
		CU_ASSERT_EQUAL(rv.more, cursor < 20);
		while (pm_reply_next_coll(&rv, &ci)) {
			CU_ASSERT(view_eq(ci.name, colls[seen].name));
			CU_ASSERT_EQUAL(ci.params.dim, seen + 1);
			CU_ASSERT_EQUAL(ci.bytes, 100u * seen);
			seen++;
		}
		frames++;
	}
	CU_ASSERT_EQUAL(seen, 20);
	CU_ASSERT(frames > 1);
}

/* ---------------------------------------------------------------- limits */

/* Each broken request: the encoder refuses it and a hand-built frame of it decodes
 * to the specific status. */
static void expect_encode_refused(const struct pm_request *r)
{
	CU_ASSERT_EQUAL(pm_request_encode(r, out, sizeof out), 0);
}

static enum pm_status set_frame(uint32_t klen, uint32_t vlen, bool ttl, uint64_t ttl_ms)
{
	fb_start('S', ttl ? PM_FLAG_TTL : 0, 1);
	fb_str(fill(klen));
	fb_str(fill(vlen));
	if (ttl)
		fb_le(ttl_ms, 8);
	return fb_status();
}

static void test_limits_kv(void)
{
	CU_ASSERT_EQUAL(set_frame(0, 1, false, 0), PM_E_KEY_LEN);
	CU_ASSERT_EQUAL(set_frame(PM_KEY_BYTES_MAX + 1, 1, false, 0), PM_E_KEY_LEN);
	CU_ASSERT_EQUAL(set_frame(1, PM_VALUE_BYTES_MAX + 1, false, 0), PM_E_VALUE_LEN);
	CU_ASSERT_EQUAL(set_frame(1, 1, true, 0), PM_E_TTL);
	CU_ASSERT_EQUAL(set_frame(1, 1, true, PM_TTL_MS_MAX + 1), PM_E_TTL);
	CU_ASSERT_EQUAL(set_frame(PM_KEY_BYTES_MAX, PM_VALUE_BYTES_MAX, true, PM_TTL_MS_MAX),
			PM_OK);
	CU_ASSERT_EQUAL(set_frame(1, 0, true, 1), PM_OK);
	fb_start('G', 0, 1);
	fb_str(fill(0));
	CU_ASSERT_EQUAL(fb_status(), PM_E_KEY_LEN);
	fb_start('D', 0, 1);
	fb_str(fill(PM_KEY_BYTES_MAX + 1));
	CU_ASSERT_EQUAL(fb_status(), PM_E_KEY_LEN);
	fb_start('I', 0, 1);
	fb_str(fill(PM_INFO_SECTION_BYTES_MAX + 1));
	CU_ASSERT_EQUAL(fb_status(), PM_E_PARAM);
	fb_start('I', 0, 1);
	fb_str(fill(0));
	CU_ASSERT_EQUAL(fb_status(), PM_E_PARAM);
	fb_start('I', 0, 1);
	fb_str(fill(PM_INFO_SECTION_BYTES_MAX));
	CU_ASSERT_EQUAL(fb_status(), PM_OK);

	struct pm_request r = { .op = PM_OP_SET, .key = fill(0), .value = B("v") };
	expect_encode_refused(&r);
	r.key = fill(PM_KEY_BYTES_MAX + 1);
	expect_encode_refused(&r);
	r.key = fill(PM_KEY_BYTES_MAX);
	r.value = fill(PM_VALUE_BYTES_MAX + 1);
	expect_encode_refused(&r);
	r.value = fill(PM_VALUE_BYTES_MAX);
	r.has_ttl = true;
	r.ttl_ms = PM_TTL_MS_MAX;
	roundtrip_req(&r, PM_FLAG_TTL); /* everything at its maximum */
	r.ttl_ms = 0;
	expect_encode_refused(&r);
	r.ttl_ms = PM_TTL_MS_MAX + 1;
	expect_encode_refused(&r);
	r = (struct pm_request){ .op = PM_OP_INFO, .section = fill(PM_INFO_SECTION_BYTES_MAX + 1) };
	expect_encode_refused(&r);
}

static enum pm_status vadd_frame(uint32_t klen, uint32_t dim, uint8_t flags, uint64_t ttl,
				 uint32_t nlen)
{
	fb_start('V', flags, 2);
	fb_le('A', 1);
	fb_str(fill(klen));
	fb_vec(dim);
	if (flags & PM_FLAG_TTL)
		fb_le(ttl, 8);
	if (flags & PM_FLAG_COLL)
		fb_str(fill(nlen));
	return fb_status();
}

static enum pm_status vquery_frame(uint32_t k, uint32_t dim, uint8_t flags, uint32_t ef,
				   uint32_t nlen)
{
	fb_start('V', flags, 3);
	fb_le('Q', 1);
	fb_le(k, 4);
	fb_vec(dim);
	if (flags & PM_FLAG_EF)
		fb_le(ef, 4);
	if (flags & PM_FLAG_COLL)
		fb_str(fill(nlen));
	return fb_status();
}

/* Issue 20: the PART trailer's shard count is 1..PM_WIRE_PART_SHARDS_MAX. */
static enum pm_status vquery_part_frame(uint32_t shards)
{
	fb_start('V', PM_FLAG_PART, 3);
	fb_le('Q', 1);
	fb_le(1, 4);
	fb_vec(4);
	fb_le(shards, 4);
	return fb_status();
}

static void test_limits_vquery_part(void)
{
	CU_ASSERT_EQUAL(vquery_part_frame(1), PM_OK);
	CU_ASSERT_EQUAL(vquery_part_frame(PM_WIRE_PART_SHARDS_MAX), PM_OK);
	CU_ASSERT_EQUAL(vquery_part_frame(0), PM_E_PARAM);
	CU_ASSERT_EQUAL(vquery_part_frame(PM_WIRE_PART_SHARDS_MAX + 1), PM_E_PARAM);
}

static void test_limits_vector(void)
{
	const uint8_t tc = PM_FLAG_TTL | PM_FLAG_COLL, ec = PM_FLAG_EF | PM_FLAG_COLL;
	const uint32_t nmax = PM_COLLECTION_NAME_BYTES_MAX;
	CU_ASSERT_EQUAL(vadd_frame(PM_KEY_BYTES_MAX, PM_DIM_MAX, tc, PM_TTL_MS_MAX, nmax), PM_OK);
	CU_ASSERT_EQUAL(vadd_frame(0, 4, 0, 0, 0), PM_E_KEY_LEN);
	CU_ASSERT_EQUAL(vadd_frame(PM_KEY_BYTES_MAX + 1, 4, 0, 0, 0), PM_E_KEY_LEN);
	CU_ASSERT_EQUAL(vadd_frame(1, 0, 0, 0, 0), PM_E_DIM);
	CU_ASSERT_EQUAL(vadd_frame(1, PM_DIM_MAX + 1, 0, 0, 0), PM_E_DIM);
	CU_ASSERT_EQUAL(vadd_frame(1, 4, tc, 0, 3), PM_E_TTL);
	CU_ASSERT_EQUAL(vadd_frame(1, 4, tc, PM_TTL_MS_MAX + 1, 3), PM_E_TTL);
	CU_ASSERT_EQUAL(vadd_frame(1, 4, tc, 5, 0), PM_E_COLLECTION_NAME);
	CU_ASSERT_EQUAL(vadd_frame(1, 4, tc, 5, nmax + 1), PM_E_COLLECTION_NAME);

	CU_ASSERT_EQUAL(vquery_frame(PM_K_MAX, PM_DIM_MAX, ec, PM_EF_MAX, nmax), PM_OK);
	CU_ASSERT_EQUAL(vquery_frame(10, 4, PM_FLAG_EF, 10, 0), PM_OK); /* ef == k */
	CU_ASSERT_EQUAL(vquery_frame(10, 4, PM_FLAG_EF, 0, 0), PM_OK);  /* 0 = default */
	CU_ASSERT_EQUAL(vquery_frame(0, 4, 0, 0, 0), PM_E_K);
	CU_ASSERT_EQUAL(vquery_frame(PM_K_MAX + 1, 4, 0, 0, 0), PM_E_K);
	CU_ASSERT_EQUAL(vquery_frame(10, 0, 0, 0, 0), PM_E_DIM);
	CU_ASSERT_EQUAL(vquery_frame(10, PM_DIM_MAX + 1, 0, 0, 0), PM_E_DIM);
	CU_ASSERT_EQUAL(vquery_frame(10, 4, PM_FLAG_EF, PM_EF_MAX + 1, 0), PM_E_EF);
	CU_ASSERT_EQUAL(vquery_frame(10, 4, PM_FLAG_EF, 9, 0), PM_E_EF);
	CU_ASSERT_EQUAL(vquery_frame(10, 4, ec, 10, 0), PM_E_COLLECTION_NAME);
	CU_ASSERT_EQUAL(vquery_frame(10, 4, ec, 10, nmax + 1), PM_E_COLLECTION_NAME);

	struct pm_request r = { .op = PM_OP_VADD, .key = B("k"), .vec = vecbytes, .dim = 0 };
	expect_encode_refused(&r);
	r.dim = PM_DIM_MAX + 1;
	expect_encode_refused(&r);
	r.dim = 4;
	r.collection = fill(nmax + 1);
	expect_encode_refused(&r);
	r = (struct pm_request){ .op = PM_OP_VQUERY, .k = 0, .dim = 4, .vec = vecbytes };
	expect_encode_refused(&r);
	r.k = PM_K_MAX + 1;
	expect_encode_refused(&r);
	r.k = PM_K_MAX;
	r.ef = PM_EF_MAX + 1;
	expect_encode_refused(&r);
	r.ef = PM_K_MAX - 1;
	expect_encode_refused(&r);
	r.ef = PM_EF_MAX;
	r.dim = PM_DIM_MAX;
	r.collection = fill(nmax);
	roundtrip_req(&r, PM_FLAG_EF | PM_FLAG_COLL);
}

static enum pm_status ccreate_frame_flags(uint32_t nlen, uint32_t dim, uint8_t metric,
					 uint8_t index, uint8_t flags)
{
	fb_start('V', 0, 4);
	fb_le('C', 1);
	fb_str(fill(nlen));
	fb_le(dim, 4);
	fb_le(metric, 1);
	fb_le(index, 1);
	fb_le(16, 2);
	fb_le(200, 4);
	fb_le(50, 4);
	fb_le(flags, 1);
	return fb_status();
}

static enum pm_status ccreate_frame(uint32_t nlen, uint32_t dim, uint8_t metric, uint8_t index)
{
	return ccreate_frame_flags(nlen, dim, metric, index, 0);
}

/* docs/protocol.md 10: a field added at the end of a request body is optional.
 * A CCREATE from a client older than coll_flags (its body ends at ef_search)
 * decodes as flags 0; one byte of the flags field too many or too few is not
 * mistaken for it. */
static void test_ccreate_without_flags(void)
{
	fb_start('V', 0, 4);
	fb_le('C', 1);
	fb_str(B("old"));
	fb_le(8, 4);
	fb_le(PM_METRIC_IP, 1);
	fb_le(PM_INDEX_HNSW, 1);
	fb_le(12, 2);
	fb_le(100, 4);
	fb_le(40, 4);
	struct pm_request req;
	size_t used;
	CU_ASSERT_EQUAL_FATAL(decode_fb(&req, &used), PM_OK);
	CU_ASSERT_EQUAL(used, F.n);
	CU_ASSERT_EQUAL(req.op, PM_OP_CCREATE);
	CU_ASSERT_EQUAL(req.params.dim, 8);
	CU_ASSERT_EQUAL(req.params.metric, PM_METRIC_IP);
	CU_ASSERT_EQUAL(req.params.index, PM_INDEX_HNSW);
	CU_ASSERT_EQUAL(req.params.hnsw_m, 12);
	CU_ASSERT_EQUAL(req.params.ef_construction, 100);
	CU_ASSERT_EQUAL(req.params.ef_search, 40);
	CU_ASSERT_EQUAL(req.params.flags, 0);
	fb_le(PM_COLL_EVICTABLE, 1); /* the current body */
	CU_ASSERT_EQUAL_FATAL(decode_fb(&req, &used), PM_OK);
	CU_ASSERT_EQUAL(req.params.flags, PM_COLL_EVICTABLE);
	fb_le(PM_DTYPE_Q8, 1); /* then the element type */
	CU_ASSERT_EQUAL_FATAL(decode_fb(&req, &used), PM_OK);
	CU_ASSERT_EQUAL(req.params.dtype, PM_DTYPE_Q8);
	CU_ASSERT_EQUAL(req.params.rerank, 0);
	fb_le(1, 1); /* rerank without its count: short */
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	fb_le(40, 4);
	CU_ASSERT_EQUAL_FATAL(decode_fb(&req, &used), PM_OK);
	CU_ASSERT_EQUAL(req.params.rerank, 1);
	CU_ASSERT_EQUAL(req.params.rerank_k, 40);
	fb_le(0, 1); /* a byte past the last field */
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	F.n -= 1 + 4 + 1 + 1 + 1 + 3; /* back into ef_search: still short of a whole field */
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	/* the encoder writes the current body, flags 0 included */
	struct pm_request r = { .op = PM_OP_CCREATE, .id = 9, .collection = B("old"),
				.params = { .dim = 8 } };
	size_t n = pm_request_encode(&r, out, sizeof out);
	CU_ASSERT_EQUAL(n, PM_FRAME_HEADER_BYTES + 1u + 4u + 3u + 4u + 1u + 1u + 2u + 4u + 4u + 1u);
}

/* INFO: [u32 len, section], [u8 info_flags]. The bodies of clients before
 * paging (empty; a section) read as flags 0; the flags byte may follow a
 * section or stand alone; reserved bits are PARAM; 2 or 3 bytes are neither. */
static void test_info_request_flags(void)
{
	struct pm_request req;
	size_t used;
	fb_start('I', 0, 6);
	CU_ASSERT_EQUAL(decode_fb(&req, &used), PM_OK);
	CU_ASSERT_EQUAL(req.info_flags, 0);
	CU_ASSERT_EQUAL(req.section.len, 0);
	fb_str(B("memory"));
	CU_ASSERT_EQUAL(decode_fb(&req, &used), PM_OK);
	CU_ASSERT_EQUAL(req.info_flags, 0);
	CU_ASSERT_EQUAL(req.section.len, 6);
	fb_le(PM_INFO_PAGED, 1);
	CU_ASSERT_EQUAL(decode_fb(&req, &used), PM_OK);
	CU_ASSERT_EQUAL(req.info_flags, PM_INFO_PAGED);
	CU_ASSERT_EQUAL(req.section.len, 6);
	fb_start('I', 0, 6);
	fb_le(PM_INFO_PAGED, 1);
	CU_ASSERT_EQUAL(decode_fb(&req, &used), PM_OK);
	CU_ASSERT_EQUAL(req.info_flags, PM_INFO_PAGED);
	CU_ASSERT_EQUAL(req.section.len, 0);
	fb_start('I', 0, 6);
	fb_le(PM_INFO_FLAGS_ALL + 1, 1);
	CU_ASSERT_EQUAL(fb_status(), PM_E_PARAM);
	fb_start('I', 0, 6);
	fb_le(1, 2);
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	fb_start('I', 0, 6);
	fb_str(B("memory"));
	fb_le(PM_INFO_PAGED, 2);
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	struct pm_request r = { .op = PM_OP_INFO, .id = 3, .info_flags = PM_INFO_PAGED };
	roundtrip_req(&r, 0);
	r.section = B("vectors");
	roundtrip_req(&r, 0);
	r.info_flags = 0;
	roundtrip_req(&r, 0);
	r.info_flags = 0x80;
	expect_encode_refused(&r);
}

/* CLIST: [u8 list_flags] after the sub-op. A client from before coll_flags
 * sends none and gets entries without the byte, as it expects (rule 3 of
 * docs/protocol.md 10); with PM_CLIST_COLL_FLAGS each entry has it. */
static void test_clist_layouts(void)
{
	struct pm_request req;
	size_t used;
	fb_start('V', 0, 7);
	fb_le('L', 1);
	CU_ASSERT_EQUAL(decode_fb(&req, &used), PM_OK);
	CU_ASSERT_EQUAL(req.list_flags, 0);
	fb_le(PM_CLIST_COLL_FLAGS, 1);
	CU_ASSERT_EQUAL(decode_fb(&req, &used), PM_OK);
	CU_ASSERT_EQUAL(req.list_flags, PM_CLIST_COLL_FLAGS);
	fb_le(0, 1);
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	fb_start('V', 0, 7);
	fb_le('L', 1);
	fb_le(PM_CLIST_FLAGS_ALL + 1, 1);
	CU_ASSERT_EQUAL(fb_status(), PM_E_PARAM);
	struct pm_request r = { .op = PM_OP_CLIST, .id = 8, .list_flags = PM_CLIST_COLL_FLAGS };
	roundtrip_req(&r, 0);

	struct pm_coll_info colls[2] = {
		{ B("old"), { 4, PM_METRIC_L2, PM_INDEX_HNSW, 16, 200, 64, PM_COLL_EVICTABLE }, 3, 192 },
		{ { NULL, 0 }, { 8, PM_METRIC_IP, PM_INDEX_FLAT, 0, 0, 0 }, 1, 64 },
	};
	struct pm_reply rep = { .status = PM_OK, .op = PM_OP_CLIST, .id = 8, .colls = colls,
				.ncolls = 2 };
	size_t n = pm_reply_encode(&rep, NULL, out, sizeof out);
	/* no coll_flags, no dtype, rerank, rerank_k */
	const size_t entries = 2 * (PM_WIRE_COLL_BYTES_FIXED - 1u - 6u) + 3u;
	CU_ASSERT_EQUAL(n, PM_FRAME_HEADER_BYTES + 1u + 4u + entries);
	struct pm_reply_view rv;
	struct pm_wire_coll_info ci;
	CU_ASSERT_EQUAL_FATAL(pm_reply_decode_list(out, n, 0, &rv, &used), PM_WIRE_OK);
	CU_ASSERT_FATAL(pm_reply_next_coll(&rv, &ci));
	CU_ASSERT(view_eq(ci.name, colls[0].name));
	CU_ASSERT_EQUAL(ci.params.ef_search, 64);
	CU_ASSERT_EQUAL(ci.params.flags, 0); /* not in this layout */
	CU_ASSERT_EQUAL(ci.count, 3);
	CU_ASSERT_EQUAL(ci.bytes, 192);
	CU_ASSERT_FATAL(pm_reply_next_coll(&rv, &ci));
	CU_ASSERT_EQUAL(ci.params.dim, 8);
	CU_ASSERT_EQUAL(ci.count, 1);
	CU_ASSERT(!pm_reply_next_coll(&rv, &ci));
	CU_ASSERT(pm_reply_decode(out, n, &rv, &used) != PM_WIRE_OK); /* not the other layout */
	rep.list_flags = PM_CLIST_COLL_FLAGS;
	n = pm_reply_encode(&rep, NULL, out, sizeof out);
	CU_ASSERT_EQUAL(n, PM_FRAME_HEADER_BYTES + 1u + 4u + entries + 2u);
	CU_ASSERT_EQUAL_FATAL(pm_reply_decode_list(out, n, PM_CLIST_COLL_FLAGS, &rv, &used),
			      PM_WIRE_OK);
	CU_ASSERT_FATAL(pm_reply_next_coll(&rv, &ci));
	CU_ASSERT_EQUAL(ci.params.flags, PM_COLL_EVICTABLE);
	/* with PM_CLIST_DTYPE too (what this codec's clients ask for): dtype,
	 * rerank, rerank_k after the flags */
	colls[0].params.dtype = PM_DTYPE_Q8;
	colls[0].params.rerank = 1;
	colls[0].params.rerank_k = 50;
	rep.list_flags = PM_CLIST_COLL_FLAGS | PM_CLIST_DTYPE;
	n = pm_reply_encode(&rep, NULL, out, sizeof out);
	CU_ASSERT_EQUAL(n, PM_FRAME_HEADER_BYTES + 1u + 4u + entries + 2u + 2u * 6u);
	CU_ASSERT_EQUAL_FATAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_OK);
	CU_ASSERT_FATAL(pm_reply_next_coll(&rv, &ci));
	CU_ASSERT_EQUAL(ci.params.dtype, PM_DTYPE_Q8);
	CU_ASSERT_EQUAL(ci.params.rerank, 1);
	CU_ASSERT_EQUAL(ci.params.rerank_k, 50);
	CU_ASSERT_FATAL(pm_reply_next_coll(&rv, &ci));
	CU_ASSERT_EQUAL(ci.params.dtype, PM_DTYPE_F32);
}

/* An INFO text larger than a frame goes as pages of whole lines: `first` is
 * the byte offset, MORE on all but the last, and the pages put together are
 * the text. A text that fits one frame is one frame without MORE, as before
 * paging; without a cursor a larger one is refused. */
static void test_info_paging(void)
{
	const uint32_t len = PM_INFO_REPLY_BYTES_MAX - 100u;
	char *text = malloc(len), *got = malloc(len);
	CU_ASSERT_FATAL(text && got);
	for (uint32_t i = 0, line = 0; i < len; line++) {
		int n = snprintf(text + i, len - i, "field_%u:%u\r\n", line, line * 7919u);
		i += (uint32_t)n < len - i ? (uint32_t)n : len - i;
	}
	text[len - 1] = '\n';
	struct pm_reply rep = { .op = PM_OP_INFO, .id = 77, .value = { (uint8_t *)text, len } };
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, NULL, out, sizeof out), 0);
	uint32_t cursor = 0, have = 0, frames = 0;
	while (cursor < len) {
		size_t n = pm_reply_encode(&rep, &cursor, out, sizeof out), used;
		CU_ASSERT_FATAL(n > PM_FRAME_HEADER_BYTES);
		struct pm_reply_view rv;
		CU_ASSERT_EQUAL_FATAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_OK);
		CU_ASSERT_EQUAL(rv.first, have);
		CU_ASSERT_EQUAL(rv.count, rv.value.len);
		CU_ASSERT_EQUAL(rv.more, cursor < len);
		CU_ASSERT(rv.value.ptr[rv.value.len - 1] == '\n'); /* whole lines */
		memcpy(got + have, rv.value.ptr, rv.value.len);
		have += rv.value.len;
		frames++;
	}
	CU_ASSERT_EQUAL(have, len);
	CU_ASSERT(memcmp(got, text, len) == 0);
	CU_ASSERT(frames >= len / PM_FRAME_BYTES_MAX + 1);
	/* one frame's worth: a single frame, first 0, no MORE */
	rep.value.len = PM_INFO_TEXT_BYTES_MAX;
	size_t n = pm_reply_encode(&rep, NULL, out, sizeof out), used;
	struct pm_reply_view rv;
	CU_ASSERT_EQUAL_FATAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_OK);
	CU_ASSERT(!rv.more && rv.first == 0 && rv.value.len == PM_INFO_TEXT_BYTES_MAX);
	CU_ASSERT_EQUAL(out[4], PM_FLAG_REPLY);
	free(text);
	free(got);
}

/* A page's offset and length past the whole text's bound is VALUE_LEN; a MORE
 * page without text is FRAME_FLAGS (no progress). */
static void test_info_reply_decode_limits(void)
{
	struct pm_reply_view rv;
	size_t used;
	fb_start('I', PM_FLAG_REPLY | PM_FLAG_MORE, 8);
	memcpy(F.buf + 20, &(uint32_t){ PM_INFO_REPLY_BYTES_MAX - 2u }, 4);
	fb_str(B("abc"));
	size_t n = fb_end();
	CU_ASSERT_EQUAL(pm_reply_decode(F.buf, n, &rv, &used), PM_WIRE_E_VALUE_LEN);
	memcpy(F.buf + 20, &(uint32_t){ PM_INFO_REPLY_BYTES_MAX - 3u }, 4);
	CU_ASSERT_EQUAL(pm_reply_decode(F.buf, n, &rv, &used), PM_WIRE_OK);
	fb_start('I', PM_FLAG_REPLY | PM_FLAG_MORE, 8);
	fb_str(B(""));
	n = fb_end();
	CU_ASSERT_EQUAL(pm_reply_decode(F.buf, n, &rv, &used), PM_WIRE_E_FRAME_FLAGS);
}

static void test_limits_collections(void)
{
	const uint32_t nmax = PM_COLLECTION_NAME_BYTES_MAX;
	CU_ASSERT_EQUAL(ccreate_frame(nmax, PM_DIM_MAX, PM_METRIC_COUNT - 1, PM_INDEX_COUNT - 1),
			PM_OK);
	CU_ASSERT_EQUAL(ccreate_frame(0, 4, 0, 0), PM_E_COLLECTION_NAME);
	CU_ASSERT_EQUAL(ccreate_frame(nmax + 1, 4, 0, 0), PM_E_COLLECTION_NAME);
	CU_ASSERT_EQUAL(ccreate_frame(1, 0, 0, 0), PM_E_DIM);
	CU_ASSERT_EQUAL(ccreate_frame(1, PM_DIM_MAX + 1, 0, 0), PM_E_DIM);
	CU_ASSERT_EQUAL(ccreate_frame(1, 4, PM_METRIC_COUNT, 0), PM_E_PARAM);
	CU_ASSERT_EQUAL(ccreate_frame(1, 4, 0, PM_INDEX_COUNT), PM_E_PARAM);
	CU_ASSERT_EQUAL(ccreate_frame(1, 4, 255, 255), PM_E_PARAM);
	CU_ASSERT_EQUAL(ccreate_frame_flags(1, 4, 0, 0, PM_COLL_EVICTABLE), PM_OK);
	CU_ASSERT_EQUAL(ccreate_frame_flags(1, 4, 0, 0, PM_COLL_FLAGS_ALL + 1), PM_E_PARAM);
	CU_ASSERT_EQUAL(ccreate_frame_flags(1, 4, 0, 0, 0x80), PM_E_PARAM);
	fb_start('V', 0, 5);
	fb_le('X', 1);
	fb_str(fill(0));
	CU_ASSERT_EQUAL(fb_status(), PM_E_COLLECTION_NAME);
	fb_start('V', 0, 5);
	fb_le('X', 1);
	fb_str(fill(nmax + 1));
	CU_ASSERT_EQUAL(fb_status(), PM_E_COLLECTION_NAME);

	struct pm_request r = { .op = PM_OP_CCREATE, .collection = B("c"),
				.params = { .dim = 4, .metric = PM_METRIC_COUNT } };
	expect_encode_refused(&r);
	r.params.metric = 0;
	r.params.index = PM_INDEX_COUNT;
	expect_encode_refused(&r);
	r.params.index = 0;
	r.params.dim = 0;
	expect_encode_refused(&r);
	r.params.dim = 4;
	r.collection = fill(0);
	expect_encode_refused(&r);
	r.op = PM_OP_CDROP;
	expect_encode_refused(&r);
}

/* A length above its limit is refused before the bytes are read: the buffers
 * here are as short as ASan can check, and lie about their length. */
static void test_encode_refuses_before_reading(void)
{
	uint8_t *small = dup_exact(filler, 8);
	struct pm_bytes liar = { small, PM_KEY_BYTES_MAX + 1 };
	struct pm_request r = { .op = PM_OP_GET, .key = liar };
	expect_encode_refused(&r);
	r = (struct pm_request){ .op = PM_OP_SET, .key = B("k"),
				 .value = { small, PM_VALUE_BYTES_MAX + 1 } };
	expect_encode_refused(&r);
	r = (struct pm_request){ .op = PM_OP_VADD, .key = B("k"), .vec = small,
				 .dim = PM_DIM_MAX + 1 };
	expect_encode_refused(&r);
	r = (struct pm_request){ .op = PM_OP_CDROP,
				 .collection = { small, PM_COLLECTION_NAME_BYTES_MAX + 1 } };
	expect_encode_refused(&r);
	r = (struct pm_request){ .op = PM_OP_INFO,
				 .section = { small, PM_INFO_SECTION_BYTES_MAX + 1 } };
	expect_encode_refused(&r);
	struct pm_reply rep = { .op = PM_OP_GET, .value = { small, PM_VALUE_BYTES_MAX + 1 } };
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, NULL, out, sizeof out), 0);
	rep = (struct pm_reply){ .op = PM_OP_INFO, .value = { small, PM_INFO_REPLY_BYTES_MAX + 1 } };
	uint32_t cursor = 0;
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, &cursor, out, sizeof out), 0);
	CU_ASSERT_EQUAL(cursor, 0);
	struct pm_knn_hit hit = { 0, 1 };
	rep = (struct pm_reply){ .op = PM_OP_VQUERY, .hits = &hit, .keys = &liar, .nhits = 1 };
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, NULL, out, sizeof out), 0);
	free(small);
}

/* Replies that break a limit are refused, and the cursor does not move. */
static void test_reply_encode_refused(void)
{
	struct pm_knn_hit hits[2] = { { 0, 1 }, { 0, 2 } };
	struct pm_bytes keys[2] = { B("a"), { NULL, 0 } }; /* an empty key */
	struct pm_reply rep = { .op = PM_OP_VQUERY, .hits = hits, .keys = keys, .nhits = 2 };
	uint32_t cursor = 0;
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, &cursor, out, sizeof out), 0);
	CU_ASSERT_EQUAL(cursor, 0);
	struct pm_coll_info coll = { B("c"), { PM_DIM_MAX + 1, 0, 0, 0, 0, 0 }, 0, 0 };
	rep = (struct pm_reply){ .op = PM_OP_CLIST, .colls = &coll, .ncolls = 1 };
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, &cursor, out, sizeof out), 0);
	coll.params.dim = PM_DIM_MAX;
	coll.params.metric = PM_METRIC_COUNT;
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, &cursor, out, sizeof out), 0);
	coll.params.metric = 0;
	coll.params.index = PM_INDEX_COUNT;
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, &cursor, out, sizeof out), 0);
	CU_ASSERT_EQUAL(cursor, 0);
	coll.params.index = 0;
	coll.params.flags = PM_COLL_FLAGS_ALL + 1;
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, &cursor, out, sizeof out), 0);
	CU_ASSERT_EQUAL(cursor, 0);
	coll.params.flags = PM_COLL_EVICTABLE;
	CU_ASSERT(pm_reply_encode(&rep, &cursor, out, sizeof out) > 0);
	CU_ASSERT_EQUAL(cursor, 1);
	rep = (struct pm_reply){ .op = PM_OP_DEL, .removed = 2 };
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, NULL, out, sizeof out), 0);
	rep = (struct pm_reply){ .op = PM_OP_VGET, .dim = PM_DIM_MAX + 1,
				 .value = { vecbytes, 4 } };
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, NULL, out, sizeof out), 0);
}

/* ---------------------------------------------------------------- header and framing */

static void set_hello(uint8_t flags, uint64_t id)
{
	fb_start('S', flags, id);
	fb_str(B("hello"));
	fb_str(B("world"));
}

static void expect_header(enum pm_status want, size_t want_used)
{
	struct pm_request req;
	size_t used = 12345;
	CU_ASSERT_EQUAL(decode_fb(&req, &used), want);
	CU_ASSERT_EQUAL(used, want_used);
}

static void test_header_errors(void)
{
	struct pm_request req;
	size_t used, n;
	for (size_t len = 0; len < PM_FRAME_HEADER_BYTES; len++) {
		set_hello(0, 1);
		n = fb_end();
		uint8_t *copy = dup_exact(F.buf, len);
		used = 99;
		CU_ASSERT_EQUAL(pm_request_decode(copy, len, &req, &used), PM_E_FRAME_TRUNCATED);
		CU_ASSERT_EQUAL(used, 0);
		free(copy);
	}
	set_hello(0, 1);
	F.buf[0] = 'X';
	expect_header(PM_E_FRAME_MAGIC, 0);
	set_hello(0, 1);
	F.buf[2] = 2;
	expect_header(PM_E_FRAME_VERSION, 0);
	set_hello(0, 1);
	n = fb_end() - 1; /* body one byte short */
	uint8_t *copy = dup_exact(F.buf, n);
	CU_ASSERT_EQUAL(pm_request_decode(copy, n, &req, &used), PM_E_FRAME_TRUNCATED);
	CU_ASSERT_EQUAL(used, 0);
	free(copy);
	/* body_len past the frame limit, whatever follows */
	fb_start('S', 0, 1);
	fb_zero(PM_FRAME_BYTES_MAX - PM_FRAME_HEADER_BYTES); /* exactly the largest frame */
	expect_header(PM_E_KEY_LEN, PM_FRAME_BYTES_MAX);
	fb_start('S', 0, 1);
	fb_zero(PM_FRAME_BYTES_MAX - PM_FRAME_HEADER_BYTES + 1);
	expect_header(PM_E_FRAME_TOO_BIG, 0);
	set_hello(0, 1);
	fb_end();
	F.buf[19] = 0xff; /* body_len near 4 GiB, and a short buffer */
	n = F.n;
	copy = dup_exact(F.buf, n);
	CU_ASSERT_EQUAL(pm_request_decode(copy, n, &req, &used), PM_E_FRAME_TOO_BIG);
	CU_ASSERT_EQUAL(used, 0);
	free(copy);
}

static void test_header_flags(void)
{
	const size_t hello = PM_FRAME_HEADER_BYTES + 18;
	set_hello(0, 1);
	expect_header(PM_OK, hello);
	for (int off = 6; off < 24; off++) {
		if (off >= 8 && off < 20)
			continue; /* id and body_len */
		set_hello(0, 1);
		F.buf[off] = 1;
		expect_header(PM_E_FRAME_FLAGS, hello);
	}
	set_hello(0, 1);
	F.buf[5] = 1; /* status in a request */
	expect_header(PM_E_FRAME_FLAGS, hello);
	set_hello(PM_FLAG_REPLY, 1);
	expect_header(PM_E_FRAME_FLAGS, hello);
	set_hello(PM_FLAG_MORE, 1);
	expect_header(PM_E_FRAME_FLAGS, hello);
	for (int bit = 1; bit < 5; bit++) { /* every flag but TTL (and AUTH) is foreign to SET */
		set_hello((uint8_t)(1u << bit), 1);
		expect_header(PM_E_FRAME_FLAGS, hello);
	}
	set_hello(PM_FLAG_AUTH, 1); /* AUTH on a body shorter than its trailer */
	expect_header(PM_E_FRAME_LENGTH, hello);
	fb_start('G', PM_FLAG_TTL, 1);
	fb_str(B("k"));
	expect_header(PM_E_FRAME_FLAGS, PM_FRAME_HEADER_BYTES + 5);
	CU_ASSERT_EQUAL(vadd_frame(1, 4, PM_FLAG_EXACT, 0, 0), PM_E_FRAME_FLAGS);
	CU_ASSERT_EQUAL(vadd_frame(1, 4, PM_FLAG_EF, 0, 0), PM_E_FRAME_FLAGS);
	/* issue 20: a VQUERY's bit 0 is PART (TTL's on SET and VADD): its trailer must follow */
	CU_ASSERT_EQUAL(vquery_frame(1, 4, PM_FLAG_PART, 0, 0), PM_E_FRAME_LENGTH);
	CU_ASSERT_EQUAL(vquery_frame(1, 4, PM_FLAG_AUTH, 0, 0), PM_E_FRAME_LENGTH); /* no trailer */
	fb_start('V', PM_FLAG_COLL, 1);
	fb_le('L', 1);
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_FLAGS);
}

static void test_header_opcodes(void)
{
	struct pm_request req;
	size_t used;
	fb_start('Z', 0, 42);
	fb_str(B("k"));
	CU_ASSERT_EQUAL(decode_fb(&req, &used), PM_E_FRAME_OPCODE);
	CU_ASSERT_EQUAL(used, PM_FRAME_HEADER_BYTES + 5);
	CU_ASSERT_EQUAL(req.id, 42);
	CU_ASSERT_EQUAL(req.op, PM_OP_NONE);
	fb_start('V', 0, 43);
	fb_le('Z', 1);
	CU_ASSERT_EQUAL(decode_fb(&req, &used), PM_E_FRAME_OPCODE);
	CU_ASSERT_EQUAL(req.id, 43);
	CU_ASSERT_EQUAL(used, PM_FRAME_HEADER_BYTES + 1);
	fb_start('V', 0, 44); /* no sub-op byte */
	CU_ASSERT_EQUAL(decode_fb(&req, &used), PM_E_FRAME_LENGTH);
	CU_ASSERT_EQUAL(used, PM_FRAME_HEADER_BYTES);
	/* id and op are known even when the body is bad */
	fb_start('V', 0, 45);
	fb_le('Q', 1);
	fb_le(0, 4);
	fb_vec(4);
	CU_ASSERT_EQUAL(decode_fb(&req, &used), PM_E_K);
	CU_ASSERT_EQUAL(req.id, 45);
	CU_ASSERT_EQUAL(req.op, PM_OP_VQUERY);
	CU_ASSERT_EQUAL(used, F.n);
	fb_start('G', PM_FLAG_REPLY, 46);
	CU_ASSERT_EQUAL(decode_fb(&req, &used), PM_E_FRAME_FLAGS);
	CU_ASSERT_EQUAL(req.id, 46);
	CU_ASSERT_EQUAL(req.op, PM_OP_GET);
}

static void test_body_lengths(void)
{
	/* klen says 10, five bytes follow */
	fb_start('G', 0, 1);
	fb_le(10, 4);
	fb_put("abcde", 5);
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	/* vlen runs past the body */
	fb_start('S', 0, 1);
	fb_str(B("k"));
	fb_le(3, 4);
	fb_put("ab", 2);
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	/* vlen field itself missing, partial */
	fb_start('S', 0, 1);
	fb_str(B("k"));
	fb_le(0, 3);
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	/* TTL flag without its trailer, and a trailer cut short */
	set_hello(PM_FLAG_TTL, 1);
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	set_hello(PM_FLAG_TTL, 1);
	fb_le(5, 7);
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	/* trailing bytes */
	set_hello(0, 1);
	fb_le(0, 1);
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	fb_start('V', 0, 1);
	fb_le('L', 1);
	fb_le(0, 4);
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	/* dim says 8 components, 7 follow */
	fb_start('V', 0, 1);
	fb_le('A', 1);
	fb_str(B("k"));
	fb_le(8, 4);
	fb_put(vecbytes, 28);
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	/* create cut inside its parameters */
	ccreate_frame(1, 4, 0, 0);
	F.n -= 2;
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_LENGTH);
	/* the header's body_len disagrees with the body: smaller (leaves a tail) */
	set_hello(0, 1);
	fb_end();
	F.buf[16] = 17;
	struct pm_request req;
	size_t used;
	CU_ASSERT_EQUAL(pm_request_decode(F.buf, F.n, &req, &used), PM_E_FRAME_LENGTH);
	CU_ASSERT_EQUAL(used, PM_FRAME_HEADER_BYTES + 17);
}

static void test_concatenated_frames(void)
{
	struct pm_request a = { .op = PM_OP_SET, .id = 1, .key = B("k1"), .value = B("v1") };
	struct pm_request b = { .op = PM_OP_VQUERY, .id = 2, .k = 3, .dim = 2, .vec = vecbytes,
				.exact = true };
	struct pm_request c = { .op = PM_OP_GET, .id = 3, .key = B("k1") };
	size_t na = pm_request_encode(&a, out, sizeof out);
	size_t nb = pm_request_encode(&b, out + na, sizeof out - na);
	size_t nc = pm_request_encode(&c, out + na + nb, sizeof out - na - nb);
	CU_ASSERT_FATAL(na && nb && nc);
	size_t total = na + nb + nc, off = 0, used;
	uint8_t *copy = dup_exact(out, total);
	const struct pm_request *want[3] = { &a, &b, &c };
	for (int i = 0; i < 3; i++) {
		struct pm_request got;
		CU_ASSERT_EQUAL_FATAL(pm_request_decode(copy + off, total - off, &got, &used), PM_OK);
		CU_ASSERT(req_eq(want[i], &got));
		off += used;
	}
	CU_ASSERT_EQUAL(off, total);
	struct pm_request got;
	CU_ASSERT_EQUAL(pm_request_decode(copy + off, 0, &got, &used), PM_E_FRAME_TRUNCATED);
	free(copy);
	/* a bad frame in the middle is skipped by its used, the next one still decodes */
	memcpy(F.buf, out, total);
	F.buf[na + 6] = 1; /* reserved field of b */
	CU_ASSERT_EQUAL(pm_request_decode(F.buf + na, total - na, &got, &used), PM_E_FRAME_FLAGS);
	CU_ASSERT_EQUAL(used, nb);
	CU_ASSERT_EQUAL(pm_request_decode(F.buf + na + used, nc, &got, &used), PM_OK);
	CU_ASSERT(req_eq(&c, &got));
}

static void test_header_decode_fields(void)
{
	struct pm_frame_header h = { .version = 1, .opcode = 'V', .flags = 0x42, .status = 38,
				     .id = 0x0102030405060708ull, .body_len = 0 };
	uint8_t buf[PM_FRAME_HEADER_BYTES];
	pm_header_encode(&h, buf);
	CU_ASSERT_EQUAL(buf[0], 'P');
	CU_ASSERT_EQUAL(buf[1], 'M');
	CU_ASSERT_EQUAL(buf[8], 0x08);
	CU_ASSERT_EQUAL(buf[15], 0x01);
	struct pm_frame_header g;
	CU_ASSERT_EQUAL(pm_header_decode(buf, sizeof buf, &g), PM_WIRE_OK);
	CU_ASSERT(g.version == h.version && g.opcode == h.opcode && g.flags == h.flags);
	CU_ASSERT(g.status == h.status && g.id == h.id && g.body_len == 0);
	CU_ASSERT(pm_header_usable(PM_WIRE_E_FRAME_FLAGS));
	CU_ASSERT_FALSE(pm_header_usable(PM_WIRE_E_FRAME_MAGIC));
}

/* ---------------------------------------------------------------- reply header rules */

static enum pm_wire_status reply_status_of(uint8_t *buf, size_t n)
{
	struct pm_reply_view rv;
	size_t used;
	return pm_reply_decode(buf, n, &rv, &used);
}

static void test_reply_decode_header_errors(void)
{
	struct pm_reply rep = { .status = PM_OK, .op = PM_OP_DEL, .id = 1, .removed = 1 };
	size_t n = pm_reply_encode(&rep, NULL, out, sizeof out);
	CU_ASSERT_FATAL(n == PM_FRAME_HEADER_BYTES + 4);
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_OK);
	out[4] = 0; /* no REPLY */
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_E_FRAME_FLAGS);
	out[4] = PM_FLAG_REPLY | PM_FLAG_MORE; /* MORE on a DEL */
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_E_FRAME_FLAGS);
	out[4] = PM_FLAG_REPLY | PM_FLAG_TTL;
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_E_FRAME_FLAGS);
	out[4] = PM_FLAG_REPLY;
	out[24] = 2; /* removed is 0 or 1 */
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_E_PARAM);
	out[24] = 1;
	out[5] = pm_status_to_wire(PM_NOT_FOUND); /* error with a body */
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_E_FRAME_LENGTH);
	CU_ASSERT_EQUAL(reply_status_of(out, PM_FRAME_HEADER_BYTES + 3), PM_WIRE_E_FRAME_TRUNCATED);

	rep = (struct pm_reply){ .status = PM_E_KEY_LEN, .op = PM_OP_NONE, .id = 2 };
	n = pm_reply_encode(&rep, NULL, out, sizeof out);
	CU_ASSERT_FATAL(n == PM_FRAME_HEADER_BYTES);
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_OK);
	out[5] = 0; /* opcode 0 must carry an error */
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_E_FRAME_OPCODE);

	rep = (struct pm_reply){ .status = PM_NOT_FOUND, .op = PM_OP_VQUERY, .id = 3 };
	n = pm_reply_encode(&rep, NULL, out, sizeof out);
	CU_ASSERT_FATAL(n == PM_FRAME_HEADER_BYTES + 1);
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_OK);
	out[4] |= PM_FLAG_MORE; /* MORE on an error */
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_E_FRAME_FLAGS);
	out[4] = PM_FLAG_REPLY;
	out[24] = 'Z';
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_E_FRAME_OPCODE);

	/* MORE on a page of no items: no encoder writes it, a client would make no
	 * progress (found by fuzz_frame's 30-minute run; corpus crash-more-no-items) */
	rep = (struct pm_reply){ .status = PM_OK, .op = PM_OP_VQUERY, .id = 4 };
	n = pm_reply_encode(&rep, NULL, out, sizeof out);
	CU_ASSERT_FATAL(n == PM_FRAME_HEADER_BYTES + 5);
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_OK);
	out[4] |= PM_FLAG_MORE;
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_E_FRAME_FLAGS);
	rep.op = PM_OP_CLIST;
	n = pm_reply_encode(&rep, NULL, out, sizeof out);
	CU_ASSERT_FATAL(n > PM_FRAME_HEADER_BYTES);
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_OK);
	out[4] |= PM_FLAG_MORE;
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_E_FRAME_FLAGS);
}

static void test_reply_decode_body_errors(void)
{
	/* a VGET reply with an element type this version does not know */
	struct pm_reply rep = { .status = PM_OK, .op = PM_OP_VGET, .id = 5, .dim = 2,
				 .value = { vecbytes, 8 } };
	size_t n = pm_reply_encode(&rep, NULL, out, sizeof out);
	CU_ASSERT_FATAL(n == PM_FRAME_HEADER_BYTES + 1 + 4 + 1 + 8 + 4);
	CU_ASSERT_EQUAL(out[29], PM_DTYPE_F32);
	out[29] = PM_DTYPE_COUNT;
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_E_DTYPE);
	out[29] = PM_DTYPE_BIN; /* a known type: its values are f32 all the same */
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_OK);
	out[29] = PM_DTYPE_F32;
	out[25] = 0; /* dim 0 */
	CU_ASSERT_EQUAL(reply_status_of(out, n), PM_WIRE_E_DIM);

	/* a VQUERY page whose count promises more hits than the body holds */
	struct pm_knn_hit hit = { 0, 1 };
	struct pm_bytes key = B("key");
	rep = (struct pm_reply){ .status = PM_OK, .op = PM_OP_VQUERY, .id = 4, .hits = &hit,
				 .keys = &key, .nhits = 1 };
	n = pm_reply_encode(&rep, NULL, out, sizeof out);
	CU_ASSERT_FATAL(n > 0);
	out[25] = 2;
	struct pm_reply_view rv;
	size_t used;
	struct pm_wire_bytes k;
	float d;
	CU_ASSERT_EQUAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_E_FRAME_LENGTH);
	CU_ASSERT_FALSE(pm_reply_next_hit(&rv, &k, &d));
}

/* ---------------------------------------------------------------- fuzz */

#define FUZZ_RANDOM 50000
#define FUZZ_MUTATIONS 50000
#define CORPUS_MAX 64

static struct corpus {
	uint8_t *frame[CORPUS_MAX];
	size_t len[CORPUS_MAX];
	int n;
} C;

static void corpus_add(size_t n)
{
	CU_ASSERT_FATAL(n > 0 && C.n < CORPUS_MAX);
	C.frame[C.n] = dup_exact(out, n);
	C.len[C.n++] = n;
}

static void corpus_requests(void)
{
	const struct pm_collection_params p = { 8, PM_METRIC_IP, PM_INDEX_HNSW, 16, 100, 40 };
	const struct pm_request reqs[] = {
		{ .op = PM_OP_SET, .id = 1, .key = B("key"), .value = B("value") },
		{ .op = PM_OP_SET, .id = 2, .key = B("k"), .value = fill(200), .has_ttl = true,
		  .ttl_ms = 1000 },
		{ .op = PM_OP_GET, .id = 3, .key = B("key") },
		{ .op = PM_OP_DEL, .id = 4, .key = B("key") },
		{ .op = PM_OP_INFO, .id = 5 },
		{ .op = PM_OP_INFO, .id = 6, .section = B("stats") },
		{ .op = PM_OP_VADD, .id = 7, .key = B("v"), .dim = 8, .vec = vecbytes },
		{ .op = PM_OP_VADD, .id = 8, .key = B("v"), .dim = 3, .vec = vecbytes,
		  .has_ttl = true, .ttl_ms = 5, .collection = B("col") },
		{ .op = PM_OP_VGET, .id = 9, .key = B("v") },
		{ .op = PM_OP_VDEL, .id = 10, .key = B("v") },
		{ .op = PM_OP_VQUERY, .id = 11, .k = 4, .dim = 4, .vec = vecbytes },
		{ .op = PM_OP_VQUERY, .id = 12, .k = 4, .dim = 4, .vec = vecbytes, .ef = 16,
		  .collection = B("col"), .exact = true },
		{ .op = PM_OP_CCREATE, .id = 13, .collection = B("col"), .params = p },
		{ .op = PM_OP_CDROP, .id = 14, .collection = B("col") },
		{ .op = PM_OP_CLIST, .id = 15 },
		{ .op = PM_OP_SNAPSHOT, .id = 16 },
	};
	for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++)
		corpus_add(pm_request_encode(&reqs[i], out, sizeof out));
}

static void corpus_replies(void)
{
	static struct pm_knn_hit hits[3] = { { 0, 0.5f }, { 1, 1.0f }, { 2, 2.0f } };
	static struct pm_bytes keys[3];
	static struct pm_coll_info colls[2];
	keys[0] = B("a");
	keys[1] = B("bcd");
	keys[2] = fill(40);
	colls[0] = (struct pm_coll_info){ { NULL, 0 }, { 4, 0, 0, 0, 0, 0 }, 3, 48 };
	colls[1] = (struct pm_coll_info){ B("xy"), { 8, 2, 1, 16, 100, 40 }, 9, 999 };
	const struct pm_reply reps[] = {
		{ .op = PM_OP_SET, .id = 1 },
		{ .op = PM_OP_GET, .id = 2, .value = B("hello world") },
		{ .op = PM_OP_DEL, .id = 3, .removed = 1 },
		{ .op = PM_OP_INFO, .id = 4, .value = B("# stats\nx:1\n") },
		{ .op = PM_OP_VADD, .id = 5 },
		{ .op = PM_OP_VGET, .id = 6, .dim = 4, .value = { vecbytes, 16 },
		  .collection = B("col") },
		{ .op = PM_OP_VDEL, .id = 7 },
		{ .op = PM_OP_VQUERY, .id = 8, .hits = hits, .keys = keys, .nhits = 3 },
		{ .op = PM_OP_CCREATE, .id = 9 },
		{ .op = PM_OP_CDROP, .id = 10, .removed = 1 },
		{ .op = PM_OP_CLIST, .id = 11, .colls = colls, .ncolls = 2,
		  .list_flags = PM_CLIST_COLL_FLAGS | PM_CLIST_DTYPE },
		{ .status = PM_NOT_FOUND, .op = PM_OP_VGET, .id = 12 },
		{ .status = PM_E_FRAME_OPCODE, .op = PM_OP_NONE, .id = 13 },
		{ .op = PM_OP_SNAPSHOT, .id = 15 },
		{ .status = PM_E_PARAM, .op = PM_OP_SNAPSHOT, .id = 16 },
	};
	for (size_t i = 0; i < sizeof reps / sizeof reps[0]; i++)
		corpus_add(pm_reply_encode(&reps[i], NULL, out, sizeof out));
	/* a paged VQUERY frame with MORE */
	uint32_t cursor = 0;
	struct pm_reply paged = { .op = PM_OP_VQUERY, .id = 14, .hits = hits, .keys = keys,
				  .nhits = 3 };
	corpus_add(pm_reply_encode(&paged, &cursor, out, PM_FRAME_HEADER_BYTES + 1 + 4 + 9 + 11));
	CU_ASSERT_EQUAL(cursor, 2);
}

static void corpus_free(void)
{
	for (int i = 0; i < C.n; i++)
		free(C.frame[i]);
	C.n = 0;
}

static bool inside(const uint8_t *buf, size_t used, const uint8_t *p, uint64_t len)
{
	if (len == 0)
		return true;
	return p != NULL && p >= buf && p <= buf + used && len <= (uint64_t)(buf + used - p);
}

/* Invariants of a request the decoder accepted. */
static bool request_ok(const uint8_t *buf, size_t used, const struct pm_request *r)
{
	CHECK_FIELD(used >= PM_FRAME_HEADER_BYTES);
	CHECK_FIELD(r->op > PM_OP_NONE && r->op < PM_OP_COUNT);
	CHECK_FIELD(inside(buf, used, r->key.ptr, r->key.len));
	CHECK_FIELD(inside(buf, used, r->value.ptr, r->value.len));
	CHECK_FIELD(inside(buf, used, r->collection.ptr, r->collection.len));
	CHECK_FIELD(inside(buf, used, r->section.ptr, r->section.len));
	CHECK_FIELD(inside(buf, used, r->vec, (uint64_t)r->dim * 4));
	CHECK_FIELD(r->key.len <= PM_KEY_BYTES_MAX && r->value.len <= PM_VALUE_BYTES_MAX);
	CHECK_FIELD(r->collection.len <= PM_COLLECTION_NAME_BYTES_MAX);
	CHECK_FIELD(r->section.len <= PM_INFO_SECTION_BYTES_MAX);
	CHECK_FIELD(r->dim <= PM_DIM_MAX && r->k <= PM_K_MAX && r->ef <= PM_EF_MAX);
	CHECK_FIELD(r->ef == 0 || r->ef >= r->k);
	CHECK_FIELD(r->has_ttl == (r->ttl_ms != 0) && r->ttl_ms <= PM_TTL_MS_MAX);
	CHECK_FIELD(r->params.dim <= PM_DIM_MAX && r->params.metric < PM_METRIC_COUNT);
	CHECK_FIELD(r->params.index < PM_INDEX_COUNT);
	/* what the decoder accepts, the encoder writes back */
	static uint8_t again[PM_FRAME_BYTES_MAX];
	struct pm_request r2;
	size_t n = pm_request_encode(r, again, sizeof again), used2;
	CHECK_FIELD(n > 0);
	CHECK_FIELD(pm_request_decode(again, n, &r2, &used2) == PM_OK);
	return req_eq(r, &r2);
}

/* Invariants of a reply the decoder accepted; walks the iterators. */
static bool reply_ok(const uint8_t *buf, size_t used, struct pm_reply_view *rv)
{
	CHECK_FIELD(used >= PM_FRAME_HEADER_BYTES && rv->op < PM_OP_COUNT);
	CHECK_FIELD(inside(buf, used, rv->value.ptr, rv->value.len));
	CHECK_FIELD(inside(buf, used, rv->collection.ptr, rv->collection.len));
	CHECK_FIELD(rv->value.len <= (rv->op == PM_OP_INFO ? PM_FRAME_BYTES_MAX : PM_VALUE_BYTES_MAX));
	CHECK_FIELD(rv->dim <= PM_DIM_MAX);
	CHECK_FIELD(rv->collection.len <= PM_COLLECTION_NAME_BYTES_MAX);
	CHECK_FIELD(pm_wire_status_known(rv->status));
	uint32_t items = 0;
	struct pm_wire_bytes key;
	float dist;
	while (pm_reply_next_hit(rv, &key, &dist)) {
		CHECK_FIELD(key.len >= 1 && key.len <= PM_KEY_BYTES_MAX);
		CHECK_FIELD(inside(buf, used, key.ptr, key.len + 4u));
		items++;
	}
	struct pm_wire_coll_info ci;
	while (pm_reply_next_coll(rv, &ci)) {
		CHECK_FIELD(ci.name.len <= PM_COLLECTION_NAME_BYTES_MAX);
		CHECK_FIELD(inside(buf, used, ci.name.ptr, ci.name.len));
		CHECK_FIELD(ci.params.metric < PM_METRIC_COUNT && ci.params.index < PM_INDEX_COUNT);
		items++;
	}
	if (rv->op == PM_OP_INFO)
		items = rv->value.len; /* an INFO page counts its text bytes */
	CHECK_FIELD(items == rv->count);
	return true;
}

struct fuzz_stats {
	unsigned bad;
	unsigned req_ok;
	unsigned rep_ok;
	unsigned key_fast; /* frames the key ops' fast path took */
};

/* issue 20: pm_wire_key_request_decode takes exactly the SET, GET and DEL
 * requests without an AUTH trailer that pm_wire_request_decode accepts,
 * with the same fields and extent. */
static bool key_path_agrees(const uint8_t *buf, size_t len, struct fuzz_stats *fs)
{
	struct pm_wire_request w;
	struct pm_wire_key_request k;
	size_t used = 0, kused = 0;
	enum pm_wire_status st = pm_wire_request_decode(buf, len, &w, &used);
	bool fast = pm_wire_key_request_decode(buf, len, &k, &kused);
	bool key_op = w.op == PM_WIRE_OP_SET || w.op == PM_WIRE_OP_GET || w.op == PM_WIRE_OP_DEL;
	fs->key_fast += fast;
	if (fast != (st == PM_WIRE_OK && key_op && !w.auth))
		return false;
	return !fast || (kused == used && k.op == w.op && k.id == w.id && k.key.ptr == w.key.ptr &&
			 k.key.len == w.key.len && k.value.ptr == w.value.ptr &&
			 k.value.len == w.value.len && k.has_ttl == w.has_ttl && k.ttl_ms == w.ttl_ms);
}

/* Feeds one input, copied to a buffer of exactly its length, to both decoders. */
static void fuzz_one(const uint8_t *in, size_t len, struct fuzz_stats *fs, uint64_t iter)
{
	uint8_t *buf = dup_exact(in, len);
	struct pm_request req;
	struct pm_reply_view rv;
	size_t used = SIZE_MAX;
	bool good = key_path_agrees(buf, len, fs);
	enum pm_status st = pm_request_decode(buf, len, &req, &used);
	good &= st < PM_STATUS_COUNT && used <= len && (used == 0 || used >= PM_FRAME_HEADER_BYTES);
	if (good && st == PM_OK) {
		good &= request_ok(buf, used, &req);
		fs->req_ok++;
	}
	used = SIZE_MAX;
	enum pm_wire_status wst = pm_reply_decode(buf, len, &rv, &used);
	good &= pm_wire_status_known(wst) && used <= len &&
		(used == 0 || used >= PM_FRAME_HEADER_BYTES);
	if (good && wst == PM_WIRE_OK) {
		good &= reply_ok(buf, used, &rv);
		fs->rep_ok++;
	}
	if (!good && fs->bad++ == 0)
		fprintf(stderr, "\n  fuzz: first bad input at iteration %llu (len %zu)\n",
			(unsigned long long)iter, len);
	free(buf);
}

/* issue 20: the key ops' frames are checked by their encoders field by
 * field, not decoded again, and read on the server by a fast path: both by
 * the decoder's rules. An empty key is refused for every key op; the fast
 * path takes SET (with and without TTL), GET and DEL with the fields the
 * full decoder reads, and leaves every other op, and a signed frame, to it. */
static void test_key_ops_fast_paths(void)
{
	static const struct pm_request refused[] = {
		{ .op = PM_OP_GET }, { .op = PM_OP_DEL }, { .op = PM_OP_SET, .value = { filler, 3 } },
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		expect_encode_refused(&refused[i]);
	struct pm_request ok[] = {
		{ .op = PM_OP_GET, .id = 1, .key = B("k") },
		{ .op = PM_OP_DEL, .id = 2, .key = fill(PM_KEY_BYTES_MAX) },
		{ .op = PM_OP_SET, .id = 3, .key = B("k"), .value = fill(0) },
		{ .op = PM_OP_SET, .id = 4, .key = B("k"), .value = fill(PM_VALUE_BYTES_MAX),
		  .has_ttl = true, .ttl_ms = PM_TTL_MS_MAX },
		{ .op = PM_OP_VGET, .id = 5, .key = B("k") },
	};
	struct fuzz_stats fs = { 0, 0, 0, 0 };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		size_t n = pm_request_encode(&ok[i], out, sizeof out);
		CU_ASSERT_FATAL(n > 0);
		CU_ASSERT(key_path_agrees(out, n, &fs));
		struct pm_wire_key_request k;
		size_t used;
		CU_ASSERT_EQUAL(pm_wire_key_request_decode(out, n, &k, &used), ok[i].op != PM_OP_VGET);
		CU_ASSERT(pm_wire_key_request_decode(out, n - 1, &k, &used) == false); /* truncated */
	}
	CU_ASSERT_EQUAL(fs.key_fast, 4);
	/* replies: DEL's removed must be 0 or 1, an error's body is the decoder's */
	struct pm_reply rep = { .op = PM_OP_DEL, .removed = 1 };
	CU_ASSERT(pm_reply_encode(&rep, NULL, out, sizeof out) > 0);
	rep.removed = 2;
	CU_ASSERT_EQUAL(pm_reply_encode(&rep, NULL, out, sizeof out), 0);
	rep = (struct pm_reply){ .op = PM_OP_GET, .status = PM_E_THROTTLED };
	size_t n = pm_reply_encode(&rep, NULL, out, sizeof out);
	struct pm_reply_view rv;
	size_t used;
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT(pm_reply_decode(out, n, &rv, &used) == PM_WIRE_OK && used == n);
}

static uint8_t fuzzbuf[4096];

static void test_fuzz_random(void)
{
	uint64_t seed = 0x5eed0001;
	struct fuzz_stats fs = { 0, 0, 0, 0 };
	for (uint64_t it = 0; it < FUZZ_RANDOM; it++) {
		size_t len = pm_test_rand(&seed) % 160;
		for (size_t i = 0; i < len; i++)
			fuzzbuf[i] = (uint8_t)pm_test_rand(&seed);
		if (len >= PM_FRAME_HEADER_BYTES && (it & 1)) {
			/* a plausible header so the body parsers see random input */
			static const uint8_t opcodes[] = "SGDIPV";
			fuzzbuf[0] = 'P';
			fuzzbuf[1] = 'M';
			fuzzbuf[2] = 1;
			fuzzbuf[3] = opcodes[pm_test_rand(&seed) % (sizeof opcodes - 1)];
			fuzzbuf[4] &= (it & 2) ? 0x0f : 0xc0;
			fuzzbuf[5] = (it & 4) ? fuzzbuf[5] : 0;
			memset(fuzzbuf + 6, 0, 2);
			memset(fuzzbuf + 20, 0, 4);
			uint32_t body = (uint32_t)(len - PM_FRAME_HEADER_BYTES);
			for (int b = 0; b < 4; b++)
				fuzzbuf[16 + b] = (uint8_t)(body >> (8 * b));
		}
		fuzz_one(fuzzbuf, len, &fs, it);
	}
	CU_ASSERT_EQUAL(fs.bad, 0);
	CU_ASSERT(fs.req_ok + fs.rep_ok > 0); /* some random bodies get through */
}

static size_t mutate(uint8_t *buf, size_t len, uint64_t *seed)
{
	int rounds = 1 + (int)(pm_test_rand(seed) % 3);
	for (int r = 0; r < rounds && len > 0; r++) {
		uint64_t x = pm_test_rand(seed);
		size_t at = (size_t)(x >> 8) % len;
		static const uint32_t edits[] = { 0, 1, 2, 3, 4, 7, 8, 64, 1024, 1025,
						  4096, 65535, 0x7fffffff, 0xffffffff };
		uint32_t v = edits[(x >> 40) % (sizeof edits / sizeof edits[0])];
		switch (x % 6) {
		case 0: buf[at] ^= (uint8_t)(1u << ((x >> 4) % 8)); break;
		case 1: buf[at] = (uint8_t)(x >> 32); break;
		case 2: len = at; break; /* truncate */
		case 3: /* a length field somewhere in the body */
			if (len >= at + 4)
				memcpy(buf + at, &v, 4); /* tests run on little-endian hosts */
			break;
		case 4: /* the header's body_len, near its true value */
			if (len >= 20) {
				uint32_t body = (uint32_t)(len - 24) + (uint32_t)((x >> 16) % 9) - 4;
				memcpy(buf + 16, (x & 0x100) ? &body : &v, 4);
			}
			break;
		default: /* append a few bytes */
			if (len + 4 <= sizeof fuzzbuf) {
				memcpy(buf + len, &x, 4);
				len += 4;
			}
			break;
		}
	}
	return len;
}

static void test_fuzz_mutations(void)
{
	uint64_t seed = 0x5eed0002;
	struct fuzz_stats fs = { 0, 0, 0, 0 };
	unsigned changed_ok = 0;
	corpus_requests();
	corpus_replies();
	for (int i = 0; i < C.n; i++) /* unmutated, every corpus frame decodes as one side */
		fuzz_one(C.frame[i], C.len[i], &fs, 0);
	CU_ASSERT_EQUAL(fs.req_ok + fs.rep_ok, (unsigned)C.n);
	for (uint64_t it = 0; it < FUZZ_MUTATIONS; it++) {
		int pick = (int)(pm_test_rand(&seed) % (uint64_t)C.n);
		size_t len = C.len[pick];
		CU_ASSERT_FATAL(len <= sizeof fuzzbuf - 16);
		memcpy(fuzzbuf, C.frame[pick], len);
		len = mutate(fuzzbuf, len, &seed);
		unsigned before = fs.req_ok + fs.rep_ok;
		fuzz_one(fuzzbuf, len, &fs, it);
		if (fs.req_ok + fs.rep_ok > before &&
		    (len != C.len[pick] || memcmp(fuzzbuf, C.frame[pick], len) != 0))
			changed_ok++;
	}
	corpus_free();
	CU_ASSERT_EQUAL(fs.bad, 0);
	CU_ASSERT(changed_ok > 0); /* mutated frames still reach the body checks */
	CU_ASSERT(fs.key_fast > 0); /* ... and the key ops' fast path */
}

/* ---------------------------------------------------------------- cluster: MAP and MOVED */

/* MAP ('M', issue 17): an empty request; its reply's body is the map's wire
 * form as it is (docs/protocol.md), PM_CMAP_WIRE_HEAD_BYTES..
 * PM_CMAP_WIRE_BYTES_MAX bytes, or empty when not OK. */
static void test_map_op(void)
{
	struct pm_request r = { .op = PM_OP_MAP, .id = 60 };
	roundtrip_req(&r, 0);
	CU_ASSERT_EQUAL_FATAL(pm_request_encode(&r, out, sizeof out), PM_FRAME_HEADER_BYTES);
	CU_ASSERT_EQUAL(out[3], 'M');
	CU_ASSERT_EQUAL(out[3], PM_OPCODE_MAP);
	CU_ASSERT_STRING_EQUAL(pm_wire_op_name(PM_WIRE_OP_MAP), "map");
	struct pm_request req;
	size_t used;
	fb_start('M', 0, 61);
	fb_le(0, 1);
	CU_ASSERT_EQUAL(decode_fb(&req, &used), PM_E_FRAME_LENGTH);
	CU_ASSERT_EQUAL(req.op, PM_OP_MAP);
	fb_start('M', PM_FLAG_TTL, 62);
	CU_ASSERT_EQUAL(fb_status(), PM_E_FRAME_FLAGS);

	struct pm_wire_reply rep = { .status = PM_WIRE_OK, .op = PM_WIRE_OP_MAP, .id = 63,
				     .value = { filler, PM_CMAP_WIRE_BYTES_MAX } };
	struct pm_reply_view rv;
	size_t n = pm_wire_reply_encode(&rep, NULL, out, sizeof out);
	CU_ASSERT_EQUAL_FATAL(n, PM_FRAME_HEADER_BYTES + PM_CMAP_WIRE_BYTES_MAX);
	CU_ASSERT_EQUAL(memcmp(out + PM_FRAME_HEADER_BYTES, filler, PM_CMAP_WIRE_BYTES_MAX), 0);
	CU_ASSERT_EQUAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_OK);
	CU_ASSERT(rv.op == PM_WIRE_OP_MAP && rv.id == 63 && used == n);
	CU_ASSERT(rv.value.len == PM_CMAP_WIRE_BYTES_MAX && rv.value.ptr == out + PM_FRAME_HEADER_BYTES);
	/* outside the wire form's bounds: neither encoded nor decoded */
	rep.value.len = PM_CMAP_WIRE_BYTES_MAX + 1;
	CU_ASSERT_EQUAL(pm_wire_reply_encode(&rep, NULL, out, sizeof out), 0);
	rep.value.len = PM_CMAP_WIRE_HEAD_BYTES - 1;
	CU_ASSERT_EQUAL(pm_wire_reply_encode(&rep, NULL, out, sizeof out), 0);
	rep.value.len = PM_CMAP_WIRE_HEAD_BYTES;
	n = pm_wire_reply_encode(&rep, NULL, out, sizeof out);
	CU_ASSERT_EQUAL_FATAL(n, PM_FRAME_HEADER_BYTES + PM_CMAP_WIRE_HEAD_BYTES);
	out[16] = (uint8_t)(out[16] - 1u); /* body one byte short of a head */
	CU_ASSERT_EQUAL(pm_reply_decode(out, n - 1, &rv, &used), PM_WIRE_E_FRAME_LENGTH);
	/* NOT_FOUND (cluster off, no map yet): no body */
	rep.status = PM_WIRE_NOT_FOUND;
	n = pm_wire_reply_encode(&rep, NULL, out, sizeof out);
	CU_ASSERT_EQUAL_FATAL(n, PM_FRAME_HEADER_BYTES);
	CU_ASSERT_EQUAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_OK);
	CU_ASSERT(rv.status == PM_WIRE_NOT_FOUND && rv.value.len == 0);
}

/* MOVED (14): after any sub-op byte, u64 map epoch, u16 slot, u16 0, u32
 * IPv4 (network order), u16 udp, u16 tcp — laid out byte by byte here. */
static void test_moved(void)
{
	static const uint8_t ops[] = { PM_WIRE_OP_SET, PM_WIRE_OP_GET, PM_WIRE_OP_DEL,
				       PM_WIRE_OP_VADD, PM_WIRE_OP_VGET, PM_WIRE_OP_VDEL };
	const uint8_t addr[4] = { 10, 1, 2, 3 };
	for (size_t i = 0; i < sizeof ops; i++) {
		struct pm_wire_reply rep = { .status = PM_WIRE_E_MOVED, .op = ops[i], .id = 70 + i,
					     .map_epoch = 0x0102030405060708u, .slot = 16383,
					     .primary = { .udp_port = 21000, .tcp_port = 20999 } };
		memcpy(&rep.primary.addr_be, addr, 4);
		size_t n = pm_wire_reply_encode(&rep, NULL, out, sizeof out), used;
		size_t at = PM_FRAME_HEADER_BYTES + (out[3] == 'V' ? 1u : 0u);
		CU_ASSERT_EQUAL_FATAL(n, at + PM_WIRE_MOVED_BYTES);
		CU_ASSERT_EQUAL(out[PM_FRAME_STATUS_OFFSET], 14);
		static const uint8_t want[PM_WIRE_MOVED_BYTES] = {
			8, 7, 6, 5, 4, 3, 2, 1, 0xFF, 0x3F, 0, 0, 10, 1, 2, 3,
			0x08, 0x52, 0x07, 0x52,
		};
		CU_ASSERT_EQUAL(memcmp(out + at, want, sizeof want), 0);
		struct pm_reply_view rv;
		CU_ASSERT_EQUAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_OK);
		CU_ASSERT(rv.status == PM_WIRE_E_MOVED && rv.op == ops[i] && used == n);
		CU_ASSERT(rv.map_epoch == 0x0102030405060708u && rv.slot == 16383);
		CU_ASSERT(memcmp(&rv.primary.addr_be, addr, 4) == 0 && rv.primary.udp_port == 21000 &&
			  rv.primary.tcp_port == 20999);
		/* the reserved u16 set: refused */
		out[at + 10] = 1;
		CU_ASSERT_EQUAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_E_FRAME_FLAGS);
		out[at + 10] = 0;
		/* a slot past the map's: refused both ways */
		out[at + 9] = 0x40;
		CU_ASSERT_EQUAL(pm_reply_decode(out, n, &rv, &used), PM_WIRE_E_PARAM);
		rep.slot = PM_CLUSTER_SLOTS;
		CU_ASSERT_EQUAL(pm_wire_reply_encode(&rep, NULL, out, sizeof out), 0);
		/* without its body, or a byte short: FRAME_LENGTH */
		rep.slot = 0;
		n = pm_wire_reply_encode(&rep, NULL, out, sizeof out);
		out[16] = (uint8_t)(out[16] - 1u);
		CU_ASSERT_EQUAL(pm_reply_decode(out, n - 1, &rv, &used), PM_WIRE_E_FRAME_LENGTH);
	}
	CU_ASSERT_STRING_EQUAL(pm_wire_status_name(PM_WIRE_E_MOVED), "E_MOVED");
}

/* ---------------------------------------------------------------- status codes */

static void test_wire_status(void)
{
	/* The table is part of the protocol: pin every code. */
	static const uint8_t want[PM_STATUS_COUNT] = {
		[PM_OK] = 0, [PM_NOT_FOUND] = 1, [PM_E_WRONGTYPE] = 2, [PM_E_NOMEM] = 3,
		[PM_E_EXISTS] = 4, [PM_E_TIMEOUT] = 5, [PM_E_BUSY] = 6, [PM_E_DISK_FULL] = 7, [PM_E_LOG_FAILED] = 8,
		[PM_E_THROTTLED] = 9, [PM_E_QUOTA] = 10, [PM_E_WORK_LIMIT] = 11,
		[PM_E_READONLY] = 12, [PM_E_NOREPLICAS] = 13,
		[PM_E_KEY_LEN] = 16, [PM_E_VALUE_LEN] = 17, [PM_E_DIM] = 18,
		[PM_E_NAN] = 19, [PM_E_ZERO_VECTOR] = 20, [PM_E_K] = 21, [PM_E_EF] = 22,
		[PM_E_TTL] = 23, [PM_E_COLLECTION_NAME] = 24, [PM_E_COLLECTIONS_FULL] = 25,
		[PM_E_PARAM] = 26, [PM_E_DTYPE] = 27, [PM_E_FILTER] = 28, [PM_E_ATTR] = 29,
		[PM_E_BATCH] = 30, [PM_E_FRAME_TRUNCATED] = 32,
		[PM_E_FRAME_TOO_BIG] = 33, [PM_E_FRAME_MAGIC] = 34, [PM_E_FRAME_VERSION] = 35,
		[PM_E_FRAME_OPCODE] = 36, [PM_E_FRAME_FLAGS] = 37, [PM_E_FRAME_LENGTH] = 38,
		[PM_E_RETRY] = 15, [PM_E_AUTH] = 40, [PM_E_NOPERM] = 41,
	};
	bool taken[256] = { false };
	/* the status byte sits where PM_FRAME_STATUS_OFFSET says (the WAL patches it) */
	uint8_t f[64];
	struct pm_reply nf = { .status = PM_NOT_FOUND, .op = PM_OP_GET, .id = 5 };
	CU_ASSERT_FATAL(pm_reply_encode(&nf, NULL, f, sizeof(f)) >= PM_FRAME_HEADER_BYTES);
	CU_ASSERT_EQUAL(f[PM_FRAME_STATUS_OFFSET], pm_status_to_wire(PM_NOT_FOUND));
	CU_ASSERT_EQUAL(pm_status_to_wire(PM_E_INTERNAL), PM_WIRE_E_INTERNAL);
	CU_ASSERT_EQUAL(pm_status_from_wire(PM_WIRE_E_INTERNAL), PM_E_INTERNAL);
	taken[PM_WIRE_E_INTERNAL] = true;
	for (int st = PM_OK; st < PM_E_INTERNAL; st++) {
		uint8_t code = pm_status_to_wire((enum pm_status)st);
		CU_ASSERT_EQUAL(code, want[st]);
		CU_ASSERT_NOT_EQUAL(code, PM_WIRE_E_INTERNAL);
		CU_ASSERT_FALSE(taken[code]);
		taken[code] = true;
		CU_ASSERT_EQUAL((int)pm_status_from_wire(code), st);
	}
	CU_ASSERT_EQUAL(pm_status_to_wire(PM_STATUS_COUNT), PM_WIRE_E_INTERNAL);
	CU_ASSERT_EQUAL(pm_status_to_wire((enum pm_status)1000), PM_WIRE_E_INTERNAL);
	for (int code = 0; code < 256; code++)
		if (!taken[code])
			CU_ASSERT_EQUAL(pm_status_from_wire((uint8_t)code), PM_E_INTERNAL);
}

/* The wire's status names are the engine's (pomai-control prints the one,
 * pomaid the other), codes that name no status are not known, and every op
 * has a name. */
static void test_wire_names(void)
{
	for (int st = PM_OK; st < PM_STATUS_COUNT; st++) {
		enum pm_wire_status code = pm_status_to_wire((enum pm_status)st);
		CU_ASSERT_TRUE(pm_wire_status_known(code));
		CU_ASSERT_STRING_EQUAL(pm_wire_status_name(code), pm_status_name((enum pm_status)st));
	}
	unsigned known = 0;
	for (int code = 0; code < 256; code++) {
		bool k = pm_wire_status_known((uint8_t)code);
		known += k;
		if (!k)
			CU_ASSERT_STRING_EQUAL(pm_wire_status_name((uint8_t)code), "E_UNKNOWN");
	}
	/* one code per engine status, and MOVED: pomaid's cluster check answers
	 * it before a request reaches the engine (docs/protocol.md §7) */
	CU_ASSERT_TRUE(pm_wire_status_known(PM_WIRE_E_MOVED));
	CU_ASSERT_EQUAL(pm_status_from_wire(PM_WIRE_E_MOVED), PM_E_INTERNAL);
	CU_ASSERT_EQUAL(known, PM_STATUS_COUNT + 1);
	CU_ASSERT_PTR_NULL(pm_wire_op_name(PM_WIRE_OP_NONE));
	CU_ASSERT_PTR_NULL(pm_wire_op_name(PM_WIRE_OP_COUNT));
	for (uint8_t op = PM_WIRE_OP_NONE + 1; op < PM_WIRE_OP_COUNT; op++)
		CU_ASSERT_PTR_NOT_NULL(pm_wire_op_name(op));
	CU_ASSERT_STRING_EQUAL(pm_wire_op_name(PM_WIRE_OP_VQUERY), "vquery");
}

/* pm_frame_is_reply: the magic and the REPLY flag, whatever else the header
 * holds; never a request, never bytes without the magic. */
static void test_frame_is_reply(void)
{
	uint8_t buf[256];
	struct pm_request g = { .op = PM_OP_GET, .id = 9, .key = { (const uint8_t *)"k", 1 } };
	size_t n = pm_request_encode(&g, buf, sizeof(buf));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_FALSE(pm_frame_is_reply(buf, n));
	struct pm_reply r = { .op = PM_OP_GET, .id = 9, .status = PM_NOT_FOUND };
	n = pm_reply_encode(&r, NULL, buf, sizeof(buf));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_TRUE(pm_frame_is_reply(buf, n));
	CU_ASSERT_TRUE(pm_frame_is_reply(buf, 5)); /* the flag byte is enough */
	CU_ASSERT_FALSE(pm_frame_is_reply(buf, 4));
	buf[2] = 99; /* another version: still a reply */
	CU_ASSERT_TRUE(pm_frame_is_reply(buf, n));
	buf[0] ^= 0xFF; /* no magic: not ours at all */
	CU_ASSERT_FALSE(pm_frame_is_reply(buf, n));
}

/* ---------------------------------------------------------------- issue 18: batches, range */

static void test_batch_ops(void)
{
	static uint8_t f[PM_FRAME_BYTES_MAX];
	const float v[3] = { 1.0f, 2.0f, 3.0f };
	const struct pm_wire_bytes c = { (const uint8_t *)"coll", 4 };
	struct pm_wire_request items[3], dec, it;
	size_t used;
	for (int i = 0; i < 3; i++)
		items[i] = (struct pm_wire_request){ .key = { (const uint8_t *)"k0k1k2" + 2 * i, 2 },
						     .vec = (const uint8_t *)v, .dim = 3,
						     .has_ttl = true, .ttl_ms = 10u + (uint64_t)i,
						     .collection = c };
	/* VADDB: count, then items laid out as VADD bodies; read back one by one */
	struct pm_wire_request b = { .op = PM_WIRE_OP_VADDB, .id = 7, .item_list = items,
				     .nitems = 3 };
	size_t n = pm_wire_request_encode(&b, f, sizeof(f));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL(f[4], PM_FLAG_TTL | PM_FLAG_COLL);
	CU_ASSERT_EQUAL_FATAL(pm_wire_request_decode(f, n, &dec, &used), PM_WIRE_OK);
	CU_ASSERT_EQUAL(dec.nitems, 3);
	uint32_t at = 0;
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL_FATAL(pm_wire_item_decode(&dec, &at, &it), PM_WIRE_OK);
		CU_ASSERT_EQUAL(it.op, PM_WIRE_OP_VADD);
		CU_ASSERT_EQUAL(it.id, 7);
		CU_ASSERT(it.key.len == 2 && !memcmp(it.key.ptr, items[i].key.ptr, 2));
		CU_ASSERT(it.dim == 3 && !memcmp(it.vec, v, sizeof(v)));
		CU_ASSERT(it.has_ttl && it.ttl_ms == 10u + (uint64_t)i);
		CU_ASSERT(it.collection.len == 4 && !memcmp(it.collection.ptr, "coll", 4));
	}
	CU_ASSERT_EQUAL(pm_wire_item_decode(&dec, &at, &it), PM_WIRE_E_FRAME_LENGTH);
	/* a decoded batch encodes back to the same bytes */
	static uint8_t g[PM_FRAME_BYTES_MAX];
	CU_ASSERT_EQUAL(pm_wire_request_encode(&dec, g, sizeof(g)), n);
	CU_ASSERT(memcmp(f, g, n) == 0);
	/* items must agree on the frame's flags */
	items[1].has_ttl = false;
	CU_ASSERT_EQUAL(pm_wire_request_encode(&b, f, sizeof(f)), 0);
	items[1].has_ttl = true;
	/* E_BATCH: a count of 0 or above the bound, read before any item */
	for (uint32_t count = 0; count <= PM_WIRE_BATCH_ITEMS_MAX + 1;
	     count += PM_WIRE_BATCH_ITEMS_MAX + 1) {
		struct pm_frame_header h = { .version = PM_FRAME_VERSION, .opcode = PM_OPCODE_VECTOR,
					     .id = 9, .body_len = 5 };
		pm_header_encode(&h, f);
		f[PM_FRAME_HEADER_BYTES] = PM_VOP_ADD_BATCH;
		pm_put_le32(f + PM_FRAME_HEADER_BYTES + 1, count);
		CU_ASSERT_EQUAL(pm_wire_request_decode(f, PM_FRAME_HEADER_BYTES + 5, &dec, &used),
				PM_WIRE_E_BATCH);
		CU_ASSERT_EQUAL(dec.op, PM_WIRE_OP_VADDB);
	}
	b.nitems = 0;
	CU_ASSERT_EQUAL(pm_wire_request_encode(&b, f, sizeof(f)), 0);
	/* a batch cut inside an item: FRAME_LENGTH */
	b.nitems = 3;
	n = pm_wire_request_encode(&b, f, sizeof(f));
	pm_put_le32(f + 16, (uint32_t)(n - PM_FRAME_HEADER_BYTES - 3));
	CU_ASSERT_EQUAL(pm_wire_request_decode(f, n - 3, &dec, &used), PM_WIRE_E_FRAME_LENGTH);
	/* VQUERYB: its k summed above PM_WIRE_BATCH_HITS_MAX is E_BATCH */
	struct pm_wire_request q[2] = {
		{ .k = PM_WIRE_K_MAX, .vec = (const uint8_t *)v, .dim = 3 },
		{ .k = 1, .vec = (const uint8_t *)v, .dim = 3 },
	};
	struct pm_wire_request qb = { .op = PM_WIRE_OP_VQUERYB, .id = 8, .item_list = q,
				      .nitems = 1 };
	n = pm_wire_request_encode(&qb, f, sizeof(f));
	CU_ASSERT_FATAL(n > 0);
	f[PM_FRAME_HEADER_BYTES + 1] = 2; /* the count says 2: the second item is q[0] again */
	memcpy(g, f, n);
	memcpy(g + n, f + PM_FRAME_HEADER_BYTES + 5, n - PM_FRAME_HEADER_BYTES - 5);
	pm_put_le32(g + 16, (uint32_t)(2 * n - 2 * PM_FRAME_HEADER_BYTES - 5));
	CU_ASSERT_EQUAL(pm_wire_request_decode(g, 2 * n - PM_FRAME_HEADER_BYTES - 5, &dec, &used),
			PM_WIRE_E_BATCH);
	/* VRANGE: radius, then a VQUERY body; a radius that is not finite is E_PARAM */
	struct pm_wire_request r = { .op = PM_WIRE_OP_VRANGE, .id = 9, .radius = 1.5f, .k = 20,
				     .vec = (const uint8_t *)v, .dim = 3, .exact = true };
	n = pm_wire_request_encode(&r, f, sizeof(f));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL_FATAL(pm_wire_request_decode(f, n, &dec, &used), PM_WIRE_OK);
	CU_ASSERT(dec.radius == 1.5f && dec.k == 20 && dec.exact && dec.dim == 3);
	pm_put_le32(f + PM_FRAME_HEADER_BYTES + 1, 0x7FC00000u); /* NaN */
	CU_ASSERT_EQUAL(pm_wire_request_decode(f, n, &dec, &used), PM_WIRE_E_PARAM);
}

static void test_batch_replies(void)
{
	static uint8_t f[PM_FRAME_BYTES_MAX];
	struct pm_reply_view rv;
	size_t used;
	/* VADDB: a status byte per item */
	const uint8_t st[3] = { PM_WIRE_OK, PM_WIRE_E_NAN, PM_WIRE_E_MOVED };
	struct pm_wire_reply a = { .op = PM_WIRE_OP_VADDB, .id = 1, .item_status = st, .nitems = 3 };
	size_t n = pm_wire_reply_encode(&a, NULL, f, sizeof(f));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL_FATAL(pm_reply_decode(f, n, &rv, &used), PM_WIRE_OK);
	CU_ASSERT(rv.item_status.len == 3 && !memcmp(rv.item_status.ptr, st, 3));
	/* VQUERYB: paged, every hit with its query */
	struct pm_wire_hit h[40];
	for (uint32_t i = 0; i < 40; i++)
		h[i] = (struct pm_wire_hit){ { (const uint8_t *)"key", 3 }, (float)i, i / 10 };
	struct pm_wire_reply q = { .op = PM_WIRE_OP_VQUERYB, .id = 2, .hits = h, .nhits = 40 };
	uint32_t cursor = 0, got = 0, frames = 0;
	while (cursor < 40) {
		n = pm_wire_reply_encode(&q, &cursor, f, PM_FRAME_HEADER_BYTES + 5 + 7 * 15);
		CU_ASSERT_FATAL(n > 0);
		CU_ASSERT_EQUAL_FATAL(pm_reply_decode(f, n, &rv, &used), PM_WIRE_OK);
		CU_ASSERT_EQUAL(rv.first, got);
		uint32_t qi;
		struct pm_wire_bytes key;
		float d;
		while (pm_reply_next_qhit(&rv, &qi, &key, &d)) {
			CU_ASSERT(qi == got / 10 && d == (float)got && key.len == 3);
			got++;
		}
		frames++;
	}
	CU_ASSERT_EQUAL(got, 40);
	CU_ASSERT(frames > 1);
	/* VRANGE: its flags byte, then a VQUERY page */
	struct pm_wire_reply r = { .op = PM_WIRE_OP_VRANGE, .id = 3, .hits = h, .nhits = 2,
				   .range_flags = PM_WIRE_RANGE_TRUNCATED };
	n = pm_wire_reply_encode(&r, NULL, f, sizeof(f));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL_FATAL(pm_reply_decode(f, n, &rv, &used), PM_WIRE_OK);
	CU_ASSERT_EQUAL(rv.range_flags, PM_WIRE_RANGE_TRUNCATED);
	CU_ASSERT_EQUAL(rv.count, 2);
	f[PM_FRAME_HEADER_BYTES + 1] = 0x02; /* an unknown flag */
	CU_ASSERT_EQUAL(pm_reply_decode(f, n, &rv, &used), PM_WIRE_E_PARAM);
}

/* ---------------------------------------------------------------- who may speak (issue 19) */

static void test_auth_wire(void)
{
	CU_ASSERT_EQUAL_FATAL(pm_auth_init(), 0);
	uint8_t ukey[PM_AUTH_USER_KEY_BYTES], mkey[PM_AUTH_MAC_KEY_BYTES], other[PM_AUTH_MAC_KEY_BYTES];
	memset(ukey, 7, sizeof ukey);
	pm_auth_derive(ukey, mkey);
	ukey[0] ^= 1;
	pm_auth_derive(ukey, other);
	CU_ASSERT(memcmp(mkey, other, sizeof mkey) != 0);
	/* a signed GET decodes as the GET it was, and only its key verifies it */
	static uint8_t f[PM_FRAME_BYTES_MAX + 64];
	struct pm_request get = { .op = PM_OP_GET, .id = 9, .key = B("hello") };
	size_t n = pm_request_encode(&get, f, sizeof f);
	CU_ASSERT_FATAL(n > 0);
	struct pm_auth_trailer t = { .user = 3, .session = 77, .seq = 5, .time_s = 1000, .port = 7700 };
	size_t m = pm_auth_append(f, n, sizeof f, &t, mkey);
	CU_ASSERT_EQUAL_FATAL(m, n + PM_AUTH_TRAILER_BYTES);
	struct pm_request req;
	size_t used;
	CU_ASSERT_EQUAL(pm_request_decode(f, m, &req, &used), PM_OK);
	CU_ASSERT_EQUAL(used, m);
	CU_ASSERT(req.auth);
	CU_ASSERT_EQUAL(req.key.len, 5);
	CU_ASSERT(pm_auth_verify(f, m, mkey));
	CU_ASSERT_FALSE(pm_auth_verify(f, m, other));
	struct pm_auth_trailer r;
	CU_ASSERT_FATAL(pm_auth_trailer_read(f, m, &r));
	CU_ASSERT(r.user == 3 && r.session == 77 && r.seq == 5 && r.time_s == 1000 && r.port == 7700);
	for (size_t i = 0; i < m; i++) { /* every byte is covered: header, body, trailer */
		f[i] ^= 0x40;
		CU_ASSERT_FALSE(pm_auth_verify(f, m, mkey));
		f[i] ^= 0x40;
	}
	CU_ASSERT_FALSE(pm_auth_trailer_read(f, n, &r)); /* the unsigned frame: no AUTH flag */
	/* the stream's ops never take the trailer */
	struct pm_request hello = { .op = PM_OP_AUTH_HELLO, .id = 1 };
	n = pm_request_encode(&hello, f, sizeof f);
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL(pm_request_decode(f, n, &req, &used), PM_OK);
	CU_ASSERT_EQUAL(req.op, PM_OP_AUTH_HELLO);
	m = pm_auth_append(f, n, sizeof f, &t, mkey);
	CU_ASSERT_EQUAL(pm_request_decode(f, m, &req, &used), PM_E_FRAME_FLAGS);
	uint8_t proof[PM_AUTH_NONCE_BYTES + PM_AUTH_TAG_BYTES] = { 1, 2, 3 };
	struct pm_request prove = { .op = PM_OP_AUTH_PROVE, .id = 2, .auth_user = 3,
				    .auth_proof = { proof, sizeof proof } };
	n = pm_request_encode(&prove, f, sizeof f);
	CU_ASSERT_EQUAL_FATAL(n, PM_FRAME_HEADER_BYTES + 1 + PM_AUTH_PROVE_BYTES);
	CU_ASSERT_EQUAL(pm_request_decode(f, n, &req, &used), PM_OK);
	CU_ASSERT(req.auth_user == 3 && req.auth_proof.len == sizeof proof &&
		  memcmp(req.auth_proof.ptr, proof, sizeof proof) == 0);
	CU_ASSERT_EQUAL(pm_request_decode(f, n - 1, &req, &used), PM_E_FRAME_TRUNCATED);
	/* the proof: over the challenge, the nonce and the user */
	uint8_t ch[PM_AUTH_CHALLENGE_BYTES] = { 9 }, nonce[PM_AUTH_NONCE_BYTES] = { 4 };
	uint8_t p1[PM_AUTH_TAG_BYTES], p2[PM_AUTH_TAG_BYTES];
	pm_auth_proof(mkey, ch, nonce, 3, p1);
	pm_auth_proof(mkey, ch, nonce, 4, p2);
	CU_ASSERT_FALSE(pm_auth_tag_equal(p1, p2));
	pm_auth_proof(mkey, ch, nonce, 3, p2);
	CU_ASSERT(pm_auth_tag_equal(p1, p2));
	/* a HELLO reply carries the challenge; a RETRY the cookie; an AUTH its reason */
	struct pm_reply hr = { .op = PM_OP_AUTH_HELLO, .id = 1, .challenge = ch };
	n = pm_reply_encode(&hr, NULL, f, sizeof f);
	CU_ASSERT_EQUAL_FATAL(n, PM_FRAME_HEADER_BYTES + 1 + PM_AUTH_CHALLENGE_BYTES);
	struct pm_reply_view rv;
	CU_ASSERT_EQUAL_FATAL(pm_reply_decode(f, n, &rv, &used), PM_WIRE_OK);
	CU_ASSERT(memcmp(rv.challenge, ch, sizeof ch) == 0);
	struct pm_cookie c = { .window = 12 }, c2;
	uint8_t cb[PM_COOKIE_BYTES];
	pm_cookie_tag(mkey, htonl(0x7f000001), 12, c.tag);
	pm_cookie_tag(mkey, htonl(0x7f000002), 12, c2.tag);
	CU_ASSERT(memcmp(c.tag, c2.tag, sizeof c.tag) != 0);
	pm_cookie_write(&c, cb);
	n = pm_reply_encode_retry(PM_WIRE_OP_GET, 44, cb, f, sizeof f);
	CU_ASSERT_EQUAL_FATAL(n, PM_FRAME_HEADER_BYTES + PM_COOKIE_BYTES);
	CU_ASSERT_EQUAL_FATAL(pm_reply_decode(f, n, &rv, &used), PM_WIRE_OK);
	CU_ASSERT_EQUAL(rv.status, PM_WIRE_E_RETRY);
	CU_ASSERT_EQUAL(rv.id, 44);
	CU_ASSERT(pm_cookie_read(rv.cookie, &c2) && c2.window == 12 &&
		  memcmp(c2.tag, c.tag, sizeof c.tag) == 0);
	CU_ASSERT_EQUAL(pm_reply_decode(f, n - 1, &rv, &used), PM_WIRE_E_FRAME_TRUNCATED);
	struct pm_reply ar = { .status = PM_E_AUTH, .op = PM_OP_SET, .id = 3,
			       .auth_reason = PM_AUTH_R_REPLAY };
	n = pm_reply_encode(&ar, NULL, f, sizeof f);
	CU_ASSERT_EQUAL_FATAL(n, PM_FRAME_HEADER_BYTES + 1);
	CU_ASSERT_EQUAL_FATAL(pm_reply_decode(f, n, &rv, &used), PM_WIRE_OK);
	CU_ASSERT_EQUAL(rv.auth_reason, PM_AUTH_R_REPLAY);
	ar.auth_reason = 0; /* no reason is not a reply */
	CU_ASSERT_EQUAL(pm_reply_encode(&ar, NULL, f, sizeof f), 0);
	/* a COOKIE frame at the front of a datagram, then the frames */
	uint8_t dg[PM_COOKIE_FRAME_BYTES + 64];
	pm_cookie_frame_write(&c, dg);
	n = pm_request_encode(&get, dg + PM_COOKIE_FRAME_BYTES, 64);
	CU_ASSERT_EQUAL(pm_cookie_frame_read(dg, PM_COOKIE_FRAME_BYTES + n, &c2), 1);
	CU_ASSERT(c2.window == 12 && memcmp(c2.tag, c.tag, sizeof c.tag) == 0);
	CU_ASSERT_EQUAL(pm_cookie_frame_read(dg + PM_COOKIE_FRAME_BYTES, n, &c2), 0);
	CU_ASSERT_EQUAL(pm_cookie_frame_read(dg, PM_COOKIE_FRAME_BYTES - 1, &c2), -1);
	dg[8] = 1; /* an id */
	CU_ASSERT_EQUAL(pm_cookie_frame_read(dg, sizeof dg, &c2), -1);
	dg[8] = 0;
	dg[PM_FRAME_HEADER_BYTES + 4] = 1; /* the cookie's reserved field */
	CU_ASSERT_EQUAL(pm_cookie_frame_read(dg, sizeof dg, &c2), -1);
	/* hex */
	char hex[2 * PM_AUTH_MAC_KEY_BYTES + 1];
	uint8_t back[PM_AUTH_MAC_KEY_BYTES];
	pm_auth_hex(mkey, sizeof mkey, hex);
	CU_ASSERT_EQUAL(pm_auth_unhex(hex, back, sizeof back), 0);
	CU_ASSERT(memcmp(back, mkey, sizeof mkey) == 0);
	hex[3] = 'g';
	CU_ASSERT_EQUAL(pm_auth_unhex(hex, back, sizeof back), -1);
}

static CU_TestInfo tests[] = {
	{ "pm_frame_is_reply", test_frame_is_reply },
	{ "batches and range: requests (issue 18)", test_batch_ops },
	{ "batches and range: replies (issue 18)", test_batch_replies },
	{ "request round trip: kv", test_request_roundtrip_kv },
	{ "request round trip: vector", test_request_roundtrip_vector },
	{ "request round trip: collections", test_request_roundtrip_collections },
	{ "request/reply round trip: snapshot", test_snapshot },
	{ "protocol.md hex example", test_protocol_doc_example },
	{ "reply round trip: simple", test_reply_roundtrip_simple },
	{ "reply round trip: vget", test_reply_roundtrip_vget },
	{ "reply round trip: lists", test_reply_roundtrip_lists },
	{ "reply round trip: errors", test_reply_errors_roundtrip },
	{ "reply round trip: THROTTLED and its retry hint", test_reply_throttled },
	{ "vquery reply paging", test_vquery_paging },
	{ "paging with small cap, clist", test_paging_small_cap },
	{ "limits: kv", test_limits_kv },
	{ "limits: vector", test_limits_vector },
	{ "limits: collections", test_limits_collections },
	{ "CCREATE without coll_flags (older client)", test_ccreate_without_flags },
	{ "INFO request flags", test_info_request_flags },
	{ "CLIST entry layouts", test_clist_layouts },
	{ "INFO reply paging", test_info_paging },
	{ "INFO reply page limits", test_info_reply_decode_limits },
	{ "encoders refuse before reading", test_encode_refuses_before_reading },
	{ "reply encode refused", test_reply_encode_refused },
	{ "key ops: encoders' own checks, the decoder's fast path (issue 20)",
	  test_key_ops_fast_paths },
	{ "header errors", test_header_errors },
	{ "header flags", test_header_flags },
	{ "VQUERY PART trailer limits", test_limits_vquery_part },
	{ "header opcodes", test_header_opcodes },
	{ "body lengths", test_body_lengths },
	{ "concatenated frames", test_concatenated_frames },
	{ "header encode/decode", test_header_decode_fields },
	{ "reply decode: header errors", test_reply_decode_header_errors },
	{ "reply decode: body errors", test_reply_decode_body_errors },
	{ "fuzz: random buffers", test_fuzz_random },
	{ "fuzz: mutated frames", test_fuzz_mutations },
	{ "MAP: request and reply", test_map_op },
	{ "MOVED: its body", test_moved },
	{ "wire status table", test_wire_status },
	{ "AUTH trailer, cookies, RETRY and AUTH replies (issue 19)", test_auth_wire },
	{ "wire status and op names", test_wire_names },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	init_data();
	return pm_cu_run("codec", tests);
}
