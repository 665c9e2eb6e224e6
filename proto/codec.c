/* SPDX-License-Identifier: MIT
 *
 * proto/codec.c — the Pomai binary frame codec (wire format version 1,
 * docs/protocol.md). It was dataplane/codec.c; it moved to proto/ with the
 * wire's own types (codec.h), so that the client library and pomaid compile
 * the same file and neither drags the other's headers along.
 *
 * Decoding walks the body with a bounded reader (struct rd) whose every read
 * first checks the bytes left, so no input can make it read past the frame; each
 * length or count is checked against its limit before it is used, and all size
 * arithmetic is done in 64 bits. Encoding writes through a bounded writer
 * (struct wr) that stops at the capacity. Both encoders end by decoding what they
 * wrote, so they can never emit a frame the other side would reject, and the
 * rules live in one place: the decoders. The one exception is the key
 * operations (SET, GET, DEL: issue 20), the bulk of a cache's traffic, whose
 * few rules the encoders check field by field instead (key_request_checked,
 * key_reply_checked), each next to the decoder rule it mirrors; builds with
 * assertions decode those frames too and abort if the two ever disagree.
 *
 * Departure from the seed plan: the seed's frames had no header; here the seed's
 * opcode and body field order are kept, behind a fixed header that carries a
 * request id (replies over UDP are matched by id) and the body length (several
 * frames may share one datagram or stream).
 */
#include "codec.h"
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "cluster_map.h"

_Static_assert(sizeof(float) == 4, "wire floats are IEEE-754 binary32");
_Static_assert(PM_WIRE_EF_MAX <= UINT32_MAX && PM_WIRE_K_MAX <= UINT32_MAX, "u32 on the wire");

/* ---------------------------------------------------------------- little endian */

static inline float ldf32(const uint8_t *p)
{
	uint32_t u = pm_get_le32(p);
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* ---------------------------------------------------------------- opcodes */

struct op_wire {
	uint8_t opcode;
	uint8_t subop;     /* 0: not a 'V' op */
	uint8_t req_flags; /* request flags this op accepts */
	bool paged;        /* reply may span several frames (MORE) */
};

static const struct op_wire op_table[PM_WIRE_OP_COUNT] = {
	[PM_WIRE_OP_NONE] = { PM_OPCODE_NONE, 0, 0, false },
	[PM_WIRE_OP_SET] = { PM_OPCODE_SET, 0, PM_FLAG_TTL, false },
	[PM_WIRE_OP_GET] = { PM_OPCODE_GET, 0, 0, false },
	[PM_WIRE_OP_DEL] = { PM_OPCODE_DEL, 0, 0, false },
	[PM_WIRE_OP_INFO] = { PM_OPCODE_INFO, 0, 0, true },
	[PM_WIRE_OP_VADD] = { PM_OPCODE_VECTOR, PM_VOP_ADD, PM_FLAG_TTL | PM_FLAG_COLL | PM_FLAG_ATTR,
			      false },
	[PM_WIRE_OP_VGET] = { PM_OPCODE_VECTOR, PM_VOP_GET, 0, false },
	[PM_WIRE_OP_VDEL] = { PM_OPCODE_VECTOR, PM_VOP_DEL, 0, false },
	[PM_WIRE_OP_VQUERY] = { PM_OPCODE_VECTOR, PM_VOP_QUERY,
			   PM_FLAG_EF | PM_FLAG_COLL | PM_FLAG_EXACT | PM_FLAG_FILTER | PM_FLAG_PART,
			   true },
	[PM_WIRE_OP_CCREATE] = { PM_OPCODE_VECTOR, PM_VOP_CREATE, 0, false },
	[PM_WIRE_OP_CDROP] = { PM_OPCODE_VECTOR, PM_VOP_DROP, 0, false },
	[PM_WIRE_OP_CLIST] = { PM_OPCODE_VECTOR, PM_VOP_LIST, 0, true },
	[PM_WIRE_OP_SNAPSHOT] = { PM_OPCODE_SNAPSHOT, 0, 0, false },
	[PM_WIRE_OP_MAP] = { PM_OPCODE_MAP, 0, 0, false },
	[PM_WIRE_OP_VSETATTR] = { PM_OPCODE_VECTOR, PM_VOP_SETATTR, 0, false },
	[PM_WIRE_OP_VADDB] = { PM_OPCODE_VECTOR, PM_VOP_ADD_BATCH,
			       PM_FLAG_TTL | PM_FLAG_COLL | PM_FLAG_ATTR, false },
	[PM_WIRE_OP_VQUERYB] = { PM_OPCODE_VECTOR, PM_VOP_QUERY_BATCH,
				 PM_FLAG_EF | PM_FLAG_COLL | PM_FLAG_EXACT | PM_FLAG_FILTER, true },
	[PM_WIRE_OP_VRANGE] = { PM_OPCODE_VECTOR, PM_VOP_RANGE,
				PM_FLAG_EF | PM_FLAG_COLL | PM_FLAG_EXACT | PM_FLAG_FILTER, true },
	/* issue 19: the stream's challenge-response; AUTH is the one flag these
	 * two never take (they are how a stream authenticates) */
	[PM_WIRE_OP_AUTH_HELLO] = { PM_OPCODE_AUTH, PM_AOP_HELLO, 0, false },
	[PM_WIRE_OP_AUTH_PROVE] = { PM_OPCODE_AUTH, PM_AOP_PROVE, 0, false },
};

/* Opcodes whose first body byte is a sub-op. */
static bool has_subop(uint8_t opcode)
{
	return opcode == PM_OPCODE_VECTOR || opcode == PM_OPCODE_AUTH;
}

/* An op that may carry the AUTH trailer: every request but AUTH's own. */
static bool takes_auth(uint8_t op)
{
	return op != PM_WIRE_OP_AUTH_HELLO && op != PM_WIRE_OP_AUTH_PROVE;
}

bool pm_op_wire(uint8_t op, uint8_t *opcode, uint8_t *subop)
{
	if (op == PM_WIRE_OP_NONE || op >= PM_WIRE_OP_COUNT)
		return false;
	*opcode = op_table[op].opcode;
	*subop = op_table[op].subop;
	return true;
}

/* PM_WIRE_OP_NONE when (opcode, subop) names no op. */
static uint8_t op_from_wire(uint8_t opcode, uint8_t subop)
{
	if (!has_subop(opcode))
		subop = 0;
	for (uint8_t op = PM_WIRE_OP_NONE + 1; op < PM_WIRE_OP_COUNT; op++)
		if (op_table[op].opcode == opcode && op_table[op].subop == subop)
			return op;
	return PM_WIRE_OP_NONE;
}

/* ---------------------------------------------------------------- bounded reader */

struct rd {
	const uint8_t *p;
	uint32_t left;
};

static bool rd_take(struct rd *r, uint64_t n, const uint8_t **out)
{
	if (n > r->left)
		return false;
	*out = r->p;
	r->p += n;
	r->left -= (uint32_t)n;
	return true;
}

static bool rd_u8(struct rd *r, uint8_t *v)
{
	const uint8_t *q;
	if (!rd_take(r, 1, &q))
		return false;
	*v = q[0];
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	const uint8_t *q;
	if (!rd_take(r, 2, &q))
		return false;
	*v = pm_get_le16(q);
	return true;
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
	const uint8_t *q;
	if (!rd_take(r, 4, &q))
		return false;
	*v = pm_get_le32(q);
	return true;
}

static bool rd_u64(struct rd *r, uint64_t *v)
{
	const uint8_t *q;
	if (!rd_take(r, 8, &q))
		return false;
	*v = pm_get_le64(q);
	return true;
}

/* READONLY's body (struct pm_wire_primary). */
static bool rd_primary(struct rd *r, struct pm_wire_primary *p)
{
	const uint8_t *q;
	if (!rd_take(r, 4, &q))
		return false;
	memcpy(&p->addr_be, q, 4);
	return rd_u16(r, &p->udp_port) && rd_u16(r, &p->tcp_port);
}

/* MOVED's body (PM_WIRE_MOVED_BYTES): map epoch, slot, u16 0, the primary. */
static enum pm_wire_status rd_moved(struct rd *r, struct pm_reply_view *rv)
{
	uint16_t zero;
	if (!rd_u64(r, &rv->map_epoch) || !rd_u16(r, &rv->slot) || !rd_u16(r, &zero) ||
	    !rd_primary(r, &rv->primary))
		return PM_WIRE_E_FRAME_LENGTH;
	if (zero != 0)
		return PM_WIRE_E_FRAME_FLAGS;
	return rv->slot < PM_CLUSTER_SLOTS ? PM_WIRE_OK : PM_WIRE_E_PARAM;
}

/* u32 length + bytes. A length outside [lo, hi] is `bad`; a length or byte run
 * past the body is PM_WIRE_E_FRAME_LENGTH. An empty run has ptr NULL. */
static enum pm_wire_status rd_lenbytes(struct rd *r, uint32_t lo, uint32_t hi,
				       enum pm_wire_status bad, struct pm_wire_bytes *out)
{
	uint32_t n;
	if (!rd_u32(r, &n))
		return PM_WIRE_E_FRAME_LENGTH;
	if (n < lo || n > hi)
		return bad;
	if (!rd_take(r, n, &out->ptr))
		return PM_WIRE_E_FRAME_LENGTH;
	out->len = n;
	if (n == 0)
		out->ptr = NULL;
	return PM_WIRE_OK;
}

static enum pm_wire_status rd_key(struct rd *r, struct pm_wire_bytes *key)
{
	return rd_lenbytes(r, 1, PM_WIRE_KEY_BYTES_MAX, PM_WIRE_E_KEY_LEN, key);
}

/* A collection name that must be present (COLL trailer, create, drop). */
static enum pm_wire_status rd_name(struct rd *r, struct pm_wire_bytes *name)
{
	return rd_lenbytes(r, 1, PM_WIRE_COLLECTION_NAME_BYTES_MAX, PM_WIRE_E_COLLECTION_NAME, name);
}

/* u32 dim, dim x f32; the components stay raw (NaN is the engine's check). */
static enum pm_wire_status rd_vector(struct rd *r, uint32_t *dim, const uint8_t **vec)
{
	uint32_t d;
	if (!rd_u32(r, &d))
		return PM_WIRE_E_FRAME_LENGTH;
	if (d == 0 || d > PM_WIRE_DIM_MAX)
		return PM_WIRE_E_DIM;
	if (!rd_take(r, (uint64_t)d * 4u, vec))
		return PM_WIRE_E_FRAME_LENGTH;
	*dim = d;
	return PM_WIRE_OK;
}

static enum pm_wire_status rd_ttl_ms(struct rd *r, uint64_t *ttl_ms, bool *has_ttl)
{
	uint64_t t;
	if (!rd_u64(r, &t))
		return PM_WIRE_E_FRAME_LENGTH;
	if (t == 0 || t > PM_WIRE_TTL_MS_MAX)
		return PM_WIRE_E_TTL;
	*ttl_ms = t;
	*has_ttl = true;
	return PM_WIRE_OK;
}

static enum pm_wire_status rd_ttl(struct rd *r, struct pm_wire_request *req)
{
	return rd_ttl_ms(r, &req->ttl_ms, &req->has_ttl);
}

/* ---------------------------------------------------------------- header */

bool pm_header_usable(enum pm_wire_status st)
{
	return st != PM_WIRE_E_FRAME_TRUNCATED && st != PM_WIRE_E_FRAME_MAGIC &&
	       st != PM_WIRE_E_FRAME_VERSION && st != PM_WIRE_E_FRAME_TOO_BIG;
}

enum pm_wire_status pm_header_decode(const uint8_t *buf, size_t len, struct pm_frame_header *h)
{
	memset(h, 0, sizeof *h);
	if (len < PM_FRAME_HEADER_BYTES)
		return PM_WIRE_E_FRAME_TRUNCATED;
	h->version = buf[2];
	h->opcode = buf[3];
	h->flags = buf[4];
	h->status = buf[PM_FRAME_STATUS_OFFSET];
	h->id = pm_get_le64(buf + 8);
	h->body_len = pm_get_le32(buf + 16);
	if (pm_get_le16(buf) != PM_FRAME_MAGIC)
		return PM_WIRE_E_FRAME_MAGIC;
	if (h->version != PM_FRAME_VERSION)
		return PM_WIRE_E_FRAME_VERSION;
	if ((uint64_t)PM_FRAME_HEADER_BYTES + h->body_len > PM_FRAME_BYTES_MAX)
		return PM_WIRE_E_FRAME_TOO_BIG;
	if (h->body_len > len - PM_FRAME_HEADER_BYTES)
		return PM_WIRE_E_FRAME_TRUNCATED;
	h->first = pm_get_le32(buf + 20);
	if (pm_get_le16(buf + 6) != 0)
		return PM_WIRE_E_FRAME_FLAGS;
	return PM_WIRE_OK;
}

bool pm_frame_is_reply(const uint8_t *buf, size_t len)
{
	return len > 4 && pm_get_le16(buf) == PM_FRAME_MAGIC && (buf[4] & PM_FLAG_REPLY);
}

void pm_header_encode(const struct pm_frame_header *h, uint8_t out[PM_FRAME_HEADER_BYTES])
{
	pm_put_le16(out, PM_FRAME_MAGIC);
	out[2] = h->version;
	out[3] = h->opcode;
	out[4] = h->flags;
	out[PM_FRAME_STATUS_OFFSET] = h->status;
	pm_put_le16(out + 6, 0);
	pm_put_le64(out + 8, h->id);
	pm_put_le32(out + 16, h->body_len);
	pm_put_le32(out + 20, h->first);
}

/* Reads the sub-op of a 'V' frame from the body and names the op. */
static enum pm_wire_status frame_op(const struct pm_frame_header *h, struct rd *r, uint8_t *op)
{
	uint8_t subop = 0;
	*op = PM_WIRE_OP_NONE;
	if (has_subop(h->opcode) && !rd_u8(r, &subop))
		return PM_WIRE_E_FRAME_LENGTH;
	*op = op_from_wire(h->opcode, subop);
	return *op == PM_WIRE_OP_NONE ? PM_WIRE_E_FRAME_OPCODE : PM_WIRE_OK;
}

/* ---------------------------------------------------------------- request bodies */

/* u32 klen, key, u32 vlen, value, [u64 ttl_ms]: into the fields given (a
 * struct pm_wire_request's, or a pm_wire_key_request's). */
static enum pm_wire_status dec_set_fields(struct rd *r, uint8_t flags, struct pm_wire_bytes *key,
					  struct pm_wire_bytes *value, uint64_t *ttl_ms,
					  bool *has_ttl)
{
	enum pm_wire_status st = rd_key(r, key);
	if (st == PM_WIRE_OK)
		st = rd_lenbytes(r, 0, PM_WIRE_VALUE_BYTES_MAX, PM_WIRE_E_VALUE_LEN, value);
	if (st == PM_WIRE_OK && (flags & PM_FLAG_TTL))
		st = rd_ttl_ms(r, ttl_ms, has_ttl);
	return st;
}

static enum pm_wire_status dec_set(struct rd *r, uint8_t flags, struct pm_wire_request *req)
{
	return dec_set_fields(r, flags, &req->key, &req->value, &req->ttl_ms, &req->has_ttl);
}

/* [u32 len, section], [u8 info_flags]: the section is there when the body
 * has more than the flags byte; flags added at the end, so a body without
 * them (every client before paging) reads as flags 0 (docs/protocol.md 10). */
static enum pm_wire_status dec_info(struct rd *r, struct pm_wire_request *req)
{
	enum pm_wire_status st = PM_WIRE_OK;
	if (r->left > 1)
		st = rd_lenbytes(r, 1, PM_INFO_SECTION_BYTES_MAX, PM_WIRE_E_PARAM, &req->section);
	if (st == PM_WIRE_OK && r->left == 1) {
		(void)rd_u8(r, &req->info_flags);
		if (req->info_flags & ~PM_INFO_FLAGS_ALL)
			return PM_WIRE_E_PARAM;
	}
	return st;
}

static enum pm_wire_status dec_vadd(struct rd *r, uint8_t flags, struct pm_wire_request *req)
{
	enum pm_wire_status st = rd_key(r, &req->key);
	if (st == PM_WIRE_OK)
		st = rd_vector(r, &req->dim, &req->vec);
	if (st == PM_WIRE_OK && (flags & PM_FLAG_TTL))
		st = rd_ttl(r, req);
	if (st == PM_WIRE_OK && (flags & PM_FLAG_COLL))
		st = rd_name(r, &req->collection);
	if (st == PM_WIRE_OK && (flags & PM_FLAG_ATTR))
		st = rd_lenbytes(r, 1, PM_WIRE_ATTR_BYTES_MAX, PM_WIRE_E_ATTR, &req->attr);
	return st;
}

static enum pm_wire_status dec_vquery(struct rd *r, uint8_t flags, struct pm_wire_request *req)
{
	if (!rd_u32(r, &req->k))
		return PM_WIRE_E_FRAME_LENGTH;
	if (req->k == 0 || req->k > PM_WIRE_K_MAX)
		return PM_WIRE_E_K;
	enum pm_wire_status st = rd_vector(r, &req->dim, &req->vec);
	if (st != PM_WIRE_OK)
		return st;
	if (flags & PM_FLAG_EF) {
		if (!rd_u32(r, &req->ef))
			return PM_WIRE_E_FRAME_LENGTH;
		if (req->ef > PM_WIRE_EF_MAX || (req->ef != 0 && req->ef < req->k))
			return PM_WIRE_E_EF;
	}
	if (flags & PM_FLAG_COLL)
		st = rd_name(r, &req->collection);
	if (st == PM_WIRE_OK && (flags & PM_FLAG_FILTER))
		st = rd_lenbytes(r, 1, PM_WIRE_FILTER_BYTES_MAX, PM_WIRE_E_FILTER, &req->filter);
	if (st == PM_WIRE_OK && (flags & PM_FLAG_PART)) { /* issue 20: one shard's part */
		if (!rd_u32(r, &req->part_shards))
			return PM_WIRE_E_FRAME_LENGTH;
		if (req->part_shards == 0 || req->part_shards > PM_WIRE_PART_SHARDS_MAX)
			return PM_WIRE_E_PARAM;
	}
	req->exact = (flags & PM_FLAG_EXACT) != 0;
	return st;
}

/* VSETATTR: u32 klen, key, u32 len, attribute record. */
static enum pm_wire_status dec_vsetattr(struct rd *r, struct pm_wire_request *req)
{
	enum pm_wire_status st = rd_key(r, &req->key);
	if (st == PM_WIRE_OK)
		st = rd_lenbytes(r, 1, PM_WIRE_ATTR_BYTES_MAX, PM_WIRE_E_ATTR, &req->attr);
	return st;
}

enum pm_wire_status pm_wire_vadd_item_decode(const uint8_t *p, uint32_t len, uint8_t flags,
					     struct pm_wire_request *req, uint32_t *used)
{
	struct rd r = { p, len };
	enum pm_wire_status st = dec_vadd(&r, flags, req);
	*used = len - r.left;
	return st;
}

enum pm_wire_status pm_wire_vquery_item_decode(const uint8_t *p, uint32_t len, uint8_t flags,
					       struct pm_wire_request *req, uint32_t *used)
{
	struct rd r = { p, len };
	enum pm_wire_status st = dec_vquery(&r, flags, req);
	*used = len - r.left;
	return st;
}

/* ---- issue 18: batches and range search */

/* One item of a batch: exactly one VADD's (VADDB) or one VQUERY's (VQUERYB)
 * body after its sub-op, with the frame's flags. */
static enum pm_wire_status dec_item(struct rd *r, uint8_t op, uint8_t flags,
				    struct pm_wire_request *item)
{
	return op == PM_WIRE_OP_VADDB ? dec_vadd(r, flags, item) : dec_vquery(r, flags, item);
}

/* A batch's u32 item count: 1..PM_WIRE_BATCH_ITEMS_MAX, else E_BATCH. */
static enum pm_wire_status rd_batch_count(struct rd *r, uint32_t *n)
{
	if (!rd_u32(r, n))
		return PM_WIRE_E_FRAME_LENGTH;
	return *n == 0 || *n > PM_WIRE_BATCH_ITEMS_MAX ? PM_WIRE_E_BATCH : PM_WIRE_OK;
}

/* u32 count (1..PM_WIRE_BATCH_ITEMS_MAX, else E_BATCH), then count items,
 * each checked here (the server reads them again, pm_wire_item_decode). A
 * VQUERY batch's k summed is at most PM_WIRE_BATCH_HITS_MAX (else E_BATCH). */
static enum pm_wire_status dec_batch(struct rd *r, uint8_t flags, struct pm_wire_request *req)
{
	uint64_t ksum = 0;
	enum pm_wire_status cst = rd_batch_count(r, &req->nitems);
	if (cst != PM_WIRE_OK)
		return cst;
	req->items = (struct pm_wire_bytes){ r->p, r->left };
	req->item_flags = flags;
	for (uint32_t i = 0; i < req->nitems; i++) {
		struct pm_wire_request item;
		memset(&item, 0, sizeof(item));
		enum pm_wire_status st = dec_item(r, req->op, flags, &item);
		if (st != PM_WIRE_OK)
			return st;
		ksum += item.k;
	}
	req->items.len -= r->left;
	req->exact = (flags & PM_FLAG_EXACT) != 0;
	return ksum <= PM_WIRE_BATCH_HITS_MAX ? PM_WIRE_OK : PM_WIRE_E_BATCH;
}

/* f32 radius (finite, else E_PARAM), then one VQUERY's body: its k is the
 * most hits of the reply. */
static enum pm_wire_status dec_vrange(struct rd *r, uint8_t flags, struct pm_wire_request *req)
{
	uint32_t u;
	if (!rd_u32(r, &u))
		return PM_WIRE_E_FRAME_LENGTH;
	memcpy(&req->radius, &u, sizeof(u));
	if (!__builtin_isfinite(req->radius))
		return PM_WIRE_E_PARAM;
	return dec_vquery(r, flags, req);
}

enum pm_wire_status pm_wire_item_decode(const struct pm_wire_request *batch, uint32_t *at,
					struct pm_wire_request *item)
{
	memset(item, 0, sizeof(*item));
	if (batch->op != PM_WIRE_OP_VADDB && batch->op != PM_WIRE_OP_VQUERYB)
		return PM_WIRE_E_FRAME_OPCODE;
	if (*at >= batch->items.len)
		return PM_WIRE_E_FRAME_LENGTH;
	item->op = batch->op == PM_WIRE_OP_VADDB ? PM_WIRE_OP_VADD : PM_WIRE_OP_VQUERY;
	item->id = batch->id;
	struct rd r = { batch->items.ptr + *at, batch->items.len - *at };
	enum pm_wire_status st = dec_item(&r, batch->op, batch->item_flags, item);
	*at = batch->items.len - r.left;
	return st;
}

static enum pm_wire_status dec_ccreate(struct rd *r, struct pm_wire_request *req)
{
	struct pm_wire_coll_params *p = &req->params;
	enum pm_wire_status st = rd_name(r, &req->collection);
	if (st != PM_WIRE_OK)
		return st;
	if (!rd_u32(r, &p->dim))
		return PM_WIRE_E_FRAME_LENGTH;
	if (p->dim == 0 || p->dim > PM_WIRE_DIM_MAX)
		return PM_WIRE_E_DIM;
	if (!rd_u8(r, &p->metric) || !rd_u8(r, &p->index))
		return PM_WIRE_E_FRAME_LENGTH;
	if (p->metric >= PM_WIRE_METRIC_COUNT || p->index >= PM_WIRE_INDEX_COUNT)
		return PM_WIRE_E_PARAM;
	if (!rd_u16(r, &p->hnsw_m) || !rd_u32(r, &p->ef_construction) ||
	    !rd_u32(r, &p->ef_search))
		return PM_WIRE_E_FRAME_LENGTH;
	/* coll_flags came later, at the end: a body without it (a client from
	 * before) reads as flags 0 (docs/protocol.md 10) */
	if (r->left != 0 && !rd_u8(r, &p->flags))
		return PM_WIRE_E_FRAME_LENGTH;
	if (p->flags & ~PM_WIRE_COLL_FLAGS_ALL)
		return PM_WIRE_E_PARAM;
	/* then, later still: u8 dtype, and u8 rerank with u32 rerank_k; absent
	 * are f32 and off (docs/protocol.md) */
	if (r->left != 0 && !rd_u8(r, &p->dtype))
		return PM_WIRE_E_FRAME_LENGTH;
	if (p->dtype >= PM_WIRE_DTYPE_COUNT)
		return PM_WIRE_E_DTYPE;
	if (r->left != 0 && (!rd_u8(r, &p->rerank) || !rd_u32(r, &p->rerank_k)))
		return PM_WIRE_E_FRAME_LENGTH;
	if (p->rerank > 1 || p->rerank_k > PM_WIRE_RERANK_K_MAX)
		return PM_WIRE_E_PARAM;
	return PM_WIRE_OK;
}

static enum pm_wire_status dec_request_body(struct rd *r, uint8_t flags,
					    struct pm_wire_request *req)
{
	switch ((enum pm_wire_op)req->op) {
	case PM_WIRE_OP_SET:
		return dec_set(r, flags, req);
	case PM_WIRE_OP_GET:
	case PM_WIRE_OP_DEL:
	case PM_WIRE_OP_VGET:
	case PM_WIRE_OP_VDEL:
		return rd_key(r, &req->key);
	case PM_WIRE_OP_INFO:
		return dec_info(r, req);
	case PM_WIRE_OP_VADD:
		return dec_vadd(r, flags, req);
	case PM_WIRE_OP_VQUERY:
		return dec_vquery(r, flags, req);
	case PM_WIRE_OP_VSETATTR:
		return dec_vsetattr(r, req);
	case PM_WIRE_OP_CCREATE:
		return dec_ccreate(r, req);
	case PM_WIRE_OP_CDROP:
		return rd_name(r, &req->collection);
	case PM_WIRE_OP_CLIST: /* [u8 list_flags], added at the end: absent is 0 */
		if (r->left != 0 && rd_u8(r, &req->list_flags) &&
		    (req->list_flags & ~PM_CLIST_FLAGS_ALL))
			return PM_WIRE_E_PARAM;
		return PM_WIRE_OK; /* a further byte is FRAME_LENGTH */
	case PM_WIRE_OP_SNAPSHOT:
	case PM_WIRE_OP_MAP:
		return PM_WIRE_OK; /* nothing after the header; a tail is FRAME_LENGTH */
	case PM_WIRE_OP_VADDB:
	case PM_WIRE_OP_VQUERYB:
		return dec_batch(r, flags, req);
	case PM_WIRE_OP_VRANGE:
		return dec_vrange(r, flags, req);
	case PM_WIRE_OP_AUTH_HELLO:
		return PM_WIRE_OK;
	case PM_WIRE_OP_AUTH_PROVE: /* u32 user, nonce, tag (proto/auth.h) */
		if (!rd_u32(r, &req->auth_user) ||
		    !rd_take(r, PM_AUTH_NONCE_BYTES + PM_AUTH_TAG_BYTES, &req->auth_proof.ptr))
			return PM_WIRE_E_FRAME_LENGTH;
		req->auth_proof.len = PM_AUTH_NONCE_BYTES + PM_AUTH_TAG_BYTES;
		return PM_WIRE_OK;
	case PM_WIRE_OP_NONE:
	case PM_WIRE_OP_COUNT:
		break;
	}
	return PM_WIRE_E_FRAME_OPCODE;
}

enum pm_wire_status pm_wire_request_decode(const uint8_t *buf, size_t len,
					   struct pm_wire_request *req, size_t *used)
{
	struct pm_frame_header h;
	memset(req, 0, sizeof *req);
	*used = 0;
	enum pm_wire_status st = pm_header_decode(buf, len, &h);
	if (!pm_header_usable(st))
		return st;
	*used = PM_FRAME_HEADER_BYTES + (size_t)h.body_len;
	req->id = h.id;
	struct rd r = { buf + PM_FRAME_HEADER_BYTES, h.body_len };
	/* The AUTH trailer ends the body (proto/auth.h): the body proper is
	 * what comes before it; pomaid checks the trailer itself, before this. */
	bool auth = (h.flags & PM_FLAG_AUTH) != 0;
	bool no_trailer = auth && r.left < PM_AUTH_TRAILER_BYTES;
	if (auth && !no_trailer)
		r.left -= PM_AUTH_TRAILER_BYTES;
	req->auth = auth;
	enum pm_wire_status op_st = frame_op(&h, &r, &req->op);
	if (st != PM_WIRE_OK)
		return st; /* reserved field set */
	if (h.status != 0 || h.first != 0 || (h.flags & (PM_FLAG_REPLY | PM_FLAG_MORE)))
		return PM_WIRE_E_FRAME_FLAGS;
	if (no_trailer)
		return PM_WIRE_E_FRAME_LENGTH;
	if (op_st != PM_WIRE_OK)
		return op_st;
	if (auth && !takes_auth(req->op))
		return PM_WIRE_E_FRAME_FLAGS;
	uint8_t flags = (uint8_t)(h.flags & ~PM_FLAG_AUTH);
	if (flags & ~op_table[req->op].req_flags)
		return PM_WIRE_E_FRAME_FLAGS;
	st = dec_request_body(&r, flags, req);
	if (st == PM_WIRE_OK && r.left != 0)
		st = PM_WIRE_E_FRAME_LENGTH;
	return st;
}

/* The key ops' requests by the same rules as above (pm_header_decode, the
 * header checks of pm_wire_request_decode, dec_set_fields, rd_key), into the
 * small struct: a frame this takes, the full decoder takes with the same
 * fields; anything else is left to it, errors included. */
bool pm_wire_key_request_decode(const uint8_t *buf, size_t len, struct pm_wire_key_request *kr,
				size_t *used)
{
	struct pm_frame_header h;
	if (pm_header_decode(buf, len, &h) != PM_WIRE_OK || h.status != 0 || h.first != 0)
		return false;
	uint8_t op = op_from_wire(h.opcode, 0);
	if (op != PM_WIRE_OP_SET && op != PM_WIRE_OP_GET && op != PM_WIRE_OP_DEL)
		return false;
	if (h.flags & ~op_table[op].req_flags)
		return false; /* REPLY, MORE, AUTH (a trailer), a flag the op does not take */
	struct rd r = { buf + PM_FRAME_HEADER_BYTES, h.body_len };
	*kr = (struct pm_wire_key_request){ .op = op, .id = h.id };
	enum pm_wire_status st = op == PM_WIRE_OP_SET
					 ? dec_set_fields(&r, h.flags, &kr->key, &kr->value,
							  &kr->ttl_ms, &kr->has_ttl)
					 : rd_key(&r, &kr->key);
	if (st != PM_WIRE_OK || r.left != 0)
		return false;
	*used = PM_FRAME_HEADER_BYTES + (size_t)h.body_len;
	return true;
}

/* ---------------------------------------------------------------- bounded writer */

struct wr {
	uint8_t *p;
	uint8_t *end;
	bool ok; /* false once a write did not fit; later writes are ignored */
};

static size_t wr_room(const struct wr *w)
{
	return w->ok ? (size_t)(w->end - w->p) : 0;
}

static void wr_put(struct wr *w, const void *src, uint64_t n)
{
	if (n > wr_room(w) || (src == NULL && n != 0)) {
		w->ok = false;
		return;
	}
	if (n != 0)
		memcpy(w->p, src, (size_t)n);
	w->p += n;
}

static void wr_u8(struct wr *w, uint8_t v)
{
	wr_put(w, &v, 1);
}

static void wr_u16(struct wr *w, uint16_t v)
{
	uint8_t b[2];
	pm_put_le16(b, v);
	wr_put(w, b, sizeof b);
}

static void wr_u32(struct wr *w, uint32_t v)
{
	uint8_t b[4];
	pm_put_le32(b, v);
	wr_put(w, b, sizeof b);
}

static void wr_u64(struct wr *w, uint64_t v)
{
	uint8_t b[8];
	pm_put_le64(b, v);
	wr_put(w, b, sizeof b);
}

static void wr_f32(struct wr *w, float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	wr_u32(w, u);
}

/* u32 length + bytes. A run longer than max is refused before it is read, so a
 * wrong length cannot make the encoder read past the caller's buffer. */
static void wr_bytes(struct wr *w, struct pm_wire_bytes b, uint32_t max)
{
	if (b.len > max)
		w->ok = false;
	wr_u32(w, b.len);
	wr_put(w, b.ptr, b.len);
}

/* u32 dim + dim x f32, refused before it is read when dim is above PM_WIRE_DIM_MAX. */
static void wr_vector(struct wr *w, uint32_t dim, const uint8_t *vec)
{
	if (dim > PM_WIRE_DIM_MAX)
		w->ok = false;
	wr_u32(w, dim);
	wr_put(w, vec, (uint64_t)dim * 4u);
}

/* Collection parameters; coll_flags only when `flags` (a CLIST entry for a
 * client from before the field has none), the element type fields only when
 * `dtype` (likewise). */
static void wr_params(struct wr *w, const struct pm_wire_coll_params *p, bool flags, bool dtype)
{
	wr_u32(w, p->dim);
	wr_u8(w, p->metric);
	wr_u8(w, p->index);
	wr_u16(w, p->hnsw_m);
	wr_u32(w, p->ef_construction);
	wr_u32(w, p->ef_search);
	if (p->flags & ~PM_WIRE_COLL_FLAGS_ALL)
		w->ok = false;
	if (flags)
		wr_u8(w, p->flags);
	if (p->dtype >= PM_WIRE_DTYPE_COUNT || p->rerank > 1 || p->rerank_k > PM_WIRE_RERANK_K_MAX)
		w->ok = false;
	if (dtype) {
		wr_u8(w, p->dtype);
		wr_u8(w, p->rerank);
		wr_u32(w, p->rerank_k);
	}
}

/* The writer for the body of a frame at out (header space reserved). */
static bool wr_frame(struct wr *w, uint8_t *out, size_t cap)
{
	if (cap > PM_FRAME_BYTES_MAX)
		cap = PM_FRAME_BYTES_MAX;
	w->p = out + PM_FRAME_HEADER_BYTES;
	w->end = out + cap;
	w->ok = cap >= PM_FRAME_HEADER_BYTES;
	return w->ok;
}

/* ---------------------------------------------------------------- request encoding */

static uint8_t enc_set(const struct pm_wire_request *req, struct wr *w)
{
	wr_bytes(w, req->key, PM_WIRE_KEY_BYTES_MAX);
	wr_bytes(w, req->value, PM_WIRE_VALUE_BYTES_MAX);
	if (!req->has_ttl)
		return 0;
	wr_u64(w, req->ttl_ms);
	return PM_FLAG_TTL;
}

static uint8_t enc_vadd(const struct pm_wire_request *req, struct wr *w)
{
	uint8_t flags = 0;
	wr_bytes(w, req->key, PM_WIRE_KEY_BYTES_MAX);
	wr_vector(w, req->dim, req->vec);
	if (req->has_ttl) {
		wr_u64(w, req->ttl_ms);
		flags |= PM_FLAG_TTL;
	}
	if (req->collection.len != 0) {
		wr_bytes(w, req->collection, PM_WIRE_COLLECTION_NAME_BYTES_MAX);
		flags |= PM_FLAG_COLL;
	}
	if (req->attr.len != 0) {
		wr_bytes(w, req->attr, PM_WIRE_ATTR_BYTES_MAX);
		flags |= PM_FLAG_ATTR;
	}
	return flags;
}

static uint8_t enc_vquery(const struct pm_wire_request *req, struct wr *w)
{
	uint8_t flags = req->exact ? PM_FLAG_EXACT : 0;
	wr_u32(w, req->k);
	wr_vector(w, req->dim, req->vec);
	if (req->ef != 0) {
		wr_u32(w, req->ef);
		flags |= PM_FLAG_EF;
	}
	if (req->collection.len != 0) {
		wr_bytes(w, req->collection, PM_WIRE_COLLECTION_NAME_BYTES_MAX);
		flags |= PM_FLAG_COLL;
	}
	if (req->filter.len != 0) {
		wr_bytes(w, req->filter, PM_WIRE_FILTER_BYTES_MAX);
		flags |= PM_FLAG_FILTER;
	}
	if (req->part_shards != 0) { /* issue 20: one shard's part */
		wr_u32(w, req->part_shards);
		flags |= PM_FLAG_PART;
	}
	return flags;
}

size_t pm_wire_vadd_item_encode(const struct pm_wire_request *req, uint8_t *out, size_t cap,
				uint8_t *flags)
{
	struct wr w = { out, out + cap, true };
	*flags = enc_vadd(req, &w);
	return w.ok ? (size_t)(w.p - out) : 0;
}

size_t pm_wire_vquery_item_encode(const struct pm_wire_request *req, uint8_t *out, size_t cap,
				  uint8_t *flags)
{
	struct wr w = { out, out + cap, true };
	*flags = enc_vquery(req, &w);
	return w.ok ? (size_t)(w.p - out) : 0;
}

/* count, then every item as one VADD / VQUERY body; the items' flags must
 * agree. A decoded batch (no item_list) is written back as it was read: its
 * items' bytes and flags (the final decode checks them). */
static uint8_t enc_batch(const struct pm_wire_request *req, struct wr *w)
{
	uint8_t flags = 0;
	if (req->nitems == 0 || req->nitems > PM_WIRE_BATCH_ITEMS_MAX ||
	    (!req->item_list && !req->items.len)) {
		w->ok = false;
		return 0;
	}
	wr_u32(w, req->nitems);
	if (!req->item_list) {
		wr_put(w, req->items.ptr, req->items.len);
		return req->item_flags & op_table[req->op].req_flags;
	}
	for (uint32_t i = 0; i < req->nitems && w->ok; i++) {
		const struct pm_wire_request *it = &req->item_list[i];
		uint8_t f = req->op == PM_WIRE_OP_VADDB ? enc_vadd(it, w) : enc_vquery(it, w);
		if (i == 0)
			flags = f;
		else if (f != flags)
			w->ok = false; /* one frame's flags say every item's fields */
	}
	return flags;
}

/* Writes the body (after any sub-op byte) and returns the request flags. */
static uint8_t enc_request_body(const struct pm_wire_request *req, struct wr *w)
{
	switch ((enum pm_wire_op)req->op) {
	case PM_WIRE_OP_SET:
		return enc_set(req, w);
	case PM_WIRE_OP_GET:
	case PM_WIRE_OP_DEL:
	case PM_WIRE_OP_VGET:
	case PM_WIRE_OP_VDEL:
		wr_bytes(w, req->key, PM_WIRE_KEY_BYTES_MAX);
		return 0;
	case PM_WIRE_OP_INFO:
		if (req->section.len != 0)
			wr_bytes(w, req->section, PM_INFO_SECTION_BYTES_MAX);
		if (req->info_flags != 0)
			wr_u8(w, req->info_flags);
		return 0;
	case PM_WIRE_OP_VADD:
		return enc_vadd(req, w);
	case PM_WIRE_OP_VQUERY:
		return enc_vquery(req, w);
	case PM_WIRE_OP_VSETATTR:
		wr_bytes(w, req->key, PM_WIRE_KEY_BYTES_MAX);
		if (req->attr.len == 0)
			w->ok = false; /* the empty record is one byte, 0 */
		wr_bytes(w, req->attr, PM_WIRE_ATTR_BYTES_MAX);
		return 0;
	case PM_WIRE_OP_CCREATE:
		wr_bytes(w, req->collection, PM_WIRE_COLLECTION_NAME_BYTES_MAX);
		/* the element type fields only when not all default: a server from
		 * before them takes the create */
		wr_params(w, &req->params, true,
			  req->params.dtype || req->params.rerank || req->params.rerank_k);
		return 0;
	case PM_WIRE_OP_CDROP:
		wr_bytes(w, req->collection, PM_WIRE_COLLECTION_NAME_BYTES_MAX);
		return 0;
	case PM_WIRE_OP_CLIST:
		if (req->list_flags != 0)
			wr_u8(w, req->list_flags);
		return 0;
	case PM_WIRE_OP_SNAPSHOT:
	case PM_WIRE_OP_MAP:
		return 0;
	case PM_WIRE_OP_VADDB:
	case PM_WIRE_OP_VQUERYB:
		return enc_batch(req, w);
	case PM_WIRE_OP_VRANGE:
		wr_f32(w, req->radius);
		return enc_vquery(req, w);
	case PM_WIRE_OP_AUTH_HELLO:
		return 0;
	case PM_WIRE_OP_AUTH_PROVE:
		wr_u32(w, req->auth_user);
		if (req->auth_proof.len != PM_AUTH_NONCE_BYTES + PM_AUTH_TAG_BYTES)
			w->ok = false;
		wr_put(w, req->auth_proof.ptr, req->auth_proof.len);
		return 0;
	case PM_WIRE_OP_NONE:
	case PM_WIRE_OP_COUNT:
		break;
	}
	w->ok = false;
	return 0;
}

/* How an encoder knows that the decoder takes what it wrote. */
enum self_check {
	CHECK_DECODE, /* decode the frame written (every op but the key ones) */
	CHECK_OK,     /* a key op whose fields follow the decoder's rules */
	CHECK_REFUSE, /* a key op the decoder would refuse: not written */
};

/* Encoding and decoding a key op's frame agree (a build with assertions
 * checks it on every frame: the decoders hold the rules). */
#ifdef NDEBUG
#define SELF_CHECK_AGREES(decoded_ok) ((void)0)
#else
#define SELF_CHECK_AGREES(decoded_ok)                                                     \
	do {                                                                              \
		if (!(decoded_ok))                                                        \
			codec_panic(__LINE__);                                            \
	} while (0)
__attribute__((cold)) static _Noreturn void codec_panic(int line)
{
	fprintf(stderr, "codec.c:%d: a key op's frame the decoder refuses\n", line);
	abort();
}
#endif

/* SET, GET, DEL requests: the rules dec_set and rd_key apply (a key of 1 to
 * PM_WIRE_KEY_BYTES_MAX bytes, a value of at most PM_WIRE_VALUE_BYTES_MAX,
 * a TTL of 1 to PM_WIRE_TTL_MS_MAX ms when there is one; wr_bytes refuses
 * the upper bounds itself), so the frame need not be decoded again. A GET or
 * DEL names no value and no TTL: they are not written, as enc_request_body
 * writes none. */
static enum self_check key_request_checked(const struct pm_wire_request *req)
{
	if (req->op != PM_WIRE_OP_SET && req->op != PM_WIRE_OP_GET && req->op != PM_WIRE_OP_DEL)
		return CHECK_DECODE;
	if (req->key.len == 0)
		return CHECK_REFUSE; /* PM_WIRE_E_KEY_LEN */
	if (req->op == PM_WIRE_OP_SET && req->has_ttl &&
	    (req->ttl_ms == 0 || req->ttl_ms > PM_WIRE_TTL_MS_MAX))
		return CHECK_REFUSE; /* PM_WIRE_E_TTL */
	return CHECK_OK;
}

size_t pm_wire_request_encode(const struct pm_wire_request *req, uint8_t *out, size_t cap)
{
	struct wr w;
	if (req->op == PM_WIRE_OP_NONE || req->op >= PM_WIRE_OP_COUNT || !wr_frame(&w, out, cap))
		return 0;
	enum self_check check_by = key_request_checked(req);
	if (check_by == CHECK_REFUSE)
		return 0;
	const struct op_wire *ow = &op_table[req->op];
	if (ow->subop != 0)
		wr_u8(&w, ow->subop);
	uint8_t flags = enc_request_body(req, &w);
	if (!w.ok)
		return 0;
	size_t n = (size_t)(w.p - out);
	struct pm_frame_header h = {
		.version = PM_FRAME_VERSION,
		.opcode = ow->opcode,
		.flags = flags,
		.status = 0,
		.id = req->id,
		.body_len = (uint32_t)(n - PM_FRAME_HEADER_BYTES),
	};
	pm_header_encode(&h, out);
	/* The decoder holds the rules: refuse what it would refuse. */
	struct pm_wire_request check;
	size_t used;
	if (check_by == CHECK_OK) {
		SELF_CHECK_AGREES(pm_wire_request_decode(out, n, &check, &used) == PM_WIRE_OK &&
				  used == n);
		return n;
	}
	if (pm_wire_request_decode(out, n, &check, &used) != PM_WIRE_OK || used != n)
		return 0;
	return n;
}

/* ---------------------------------------------------------------- reply encoding */

/* Writes hits from *cursor on while they fit; returns MORE if some remain. */
static uint8_t enc_hits(const struct pm_wire_reply *rep, uint32_t *cursor, struct wr *w)
{
	uint8_t *count_at = w->p;
	uint32_t i = *cursor, n = 0;
	wr_u32(w, 0);
	if (i > rep->nhits)
		w->ok = false;
	for (; w->ok && i < rep->nhits; i++, n++) {
		const struct pm_wire_hit *hit = &rep->hits[i];
		if ((uint64_t)PM_WIRE_HIT_BYTES_FIXED + hit->key.len > wr_room(w))
			break;
		wr_bytes(w, hit->key, PM_WIRE_KEY_BYTES_MAX);
		wr_f32(w, hit->dist);
	}
	if (n == 0 && i < rep->nhits)
		w->ok = false; /* not even one hit fits */
	if (!w->ok)
		return 0;
	pm_put_le32(count_at, n);
	*cursor = i;
	return i < rep->nhits ? PM_FLAG_MORE : 0;
}

/* VQUERYB: hits from *cursor on, each with its query's index, while they
 * fit; returns MORE if some remain. */
static uint8_t enc_qhits(const struct pm_wire_reply *rep, uint32_t *cursor, struct wr *w)
{
	uint8_t *count_at = w->p;
	uint32_t i = *cursor, n = 0;
	wr_u32(w, 0);
	if (i > rep->nhits || rep->nhits > PM_WIRE_BATCH_HITS_MAX)
		w->ok = false;
	for (; w->ok && i < rep->nhits; i++, n++) {
		const struct pm_wire_hit *hit = &rep->hits[i];
		if ((uint64_t)PM_WIRE_QHIT_BYTES_FIXED + hit->key.len > wr_room(w))
			break;
		wr_u32(w, hit->query);
		wr_bytes(w, hit->key, PM_WIRE_KEY_BYTES_MAX);
		wr_f32(w, hit->dist);
	}
	if (n == 0 && i < rep->nhits)
		w->ok = false; /* not even one hit fits */
	if (!w->ok)
		return 0;
	pm_put_le32(count_at, n);
	*cursor = i;
	return i < rep->nhits ? PM_FLAG_MORE : 0;
}

/* VADDB: u32 count, a wire status byte per item. */
static void enc_item_status(const struct pm_wire_reply *rep, struct wr *w)
{
	if (rep->nitems == 0 || rep->nitems > PM_WIRE_BATCH_ITEMS_MAX)
		w->ok = false;
	wr_u32(w, rep->nitems);
	wr_put(w, rep->item_status, rep->nitems);
}

/* Writes collections from *cursor on while they fit; returns MORE if some remain. */
static uint8_t enc_colls(const struct pm_wire_reply *rep, uint32_t *cursor, struct wr *w)
{
	uint8_t *count_at = w->p;
	uint32_t i = *cursor, n = 0;
	wr_u32(w, 0);
	if (i > rep->ncolls)
		w->ok = false;
	for (; w->ok && i < rep->ncolls; i++, n++) {
		const struct pm_wire_coll_info *c = &rep->colls[i];
		if ((uint64_t)PM_WIRE_COLL_BYTES_FIXED + c->name.len > wr_room(w))
			break;
		wr_bytes(w, c->name, PM_WIRE_COLLECTION_NAME_BYTES_MAX);
		wr_params(w, &c->params, rep->list_flags & PM_CLIST_COLL_FLAGS,
			  rep->list_flags & PM_CLIST_DTYPE);
		wr_u64(w, c->count);
		wr_u64(w, c->bytes);
	}
	if (n == 0 && i < rep->ncolls)
		w->ok = false; /* not even one collection fits */
	if (!w->ok)
		return 0;
	pm_put_le32(count_at, n);
	*cursor = i;
	return i < rep->ncolls ? PM_FLAG_MORE : 0;
}

/* Writes INFO text from byte *cursor on: all of it if it fits, else the whole
 * lines that fit (bytes up to the room if not even one line does); returns
 * MORE if some remain. */
static uint8_t enc_info(const struct pm_wire_reply *rep, uint32_t *cursor, struct wr *w)
{
	uint32_t at = *cursor, len = rep->value.len;
	uint64_t room = wr_room(w) >= 4u ? wr_room(w) - 4u : 0;
	if (at > len || len > PM_INFO_REPLY_BYTES_MAX) {
		w->ok = false;
		return 0;
	}
	const uint8_t *t = rep->value.ptr + at;
	uint32_t n = len - at;
	if (n > room) {
		n = (uint32_t)room;
		while (n > 0 && t[n - 1] != '\n')
			n--;
		n = n ? n : (uint32_t)room;
	}
	if (n == 0 && at < len)
		w->ok = false; /* no room for a single byte */
	wr_u32(w, n);
	wr_put(w, t, n);
	if (!w->ok)
		return 0;
	*cursor = at + n;
	return *cursor < len ? PM_FLAG_MORE : 0;
}

/* Writes a successful reply's body (after any sub-op byte); returns MORE or 0. */
static uint8_t enc_reply_body(const struct pm_wire_reply *rep, uint32_t *cursor, struct wr *w)
{
	switch ((enum pm_wire_op)rep->op) {
	case PM_WIRE_OP_SET:
	case PM_WIRE_OP_VADD:
	case PM_WIRE_OP_VSETATTR:
	case PM_WIRE_OP_CCREATE:
		return 0;
	case PM_WIRE_OP_SNAPSHOT: /* issue 19: progress when it ran already (else empty) */
		if (rep->snap_running) {
			wr_u8(w, rep->snap_running);
			wr_u8(w, rep->snap_pct);
		}
		return 0;
	case PM_WIRE_OP_GET:
		wr_bytes(w, rep->value, PM_WIRE_VALUE_BYTES_MAX);
		return 0;
	case PM_WIRE_OP_INFO:
		return enc_info(rep, cursor, w);
	case PM_WIRE_OP_DEL:
	case PM_WIRE_OP_VDEL:
	case PM_WIRE_OP_CDROP:
		wr_u32(w, rep->removed);
		return 0;
	case PM_WIRE_OP_VGET:
		wr_u32(w, rep->dim);
		wr_u8(w, rep->dtype); /* the collection's; the values are f32 */
		if (rep->dim > PM_WIRE_DIM_MAX || rep->dim * 4u != rep->value.len ||
		    rep->dtype >= PM_WIRE_DTYPE_COUNT)
			w->ok = false;
		wr_put(w, rep->value.ptr, rep->value.len);
		wr_bytes(w, rep->collection, PM_WIRE_COLLECTION_NAME_BYTES_MAX);
		if (rep->attr.len != 0) /* a trailer only when the vector has a record */
			wr_bytes(w, rep->attr, PM_WIRE_ATTR_BYTES_MAX);
		return 0;
	case PM_WIRE_OP_VQUERY:
		return enc_hits(rep, cursor, w);
	case PM_WIRE_OP_CLIST:
		return enc_colls(rep, cursor, w);
	case PM_WIRE_OP_MAP: /* the wire form as it is: no length, the body is it */
		if (rep->value.len < PM_CMAP_WIRE_HEAD_BYTES || rep->value.len > PM_CMAP_WIRE_BYTES_MAX)
			w->ok = false;
		wr_put(w, rep->value.ptr, rep->value.len);
		return 0;
	case PM_WIRE_OP_VADDB:
		enc_item_status(rep, w);
		return 0;
	case PM_WIRE_OP_VQUERYB:
		return enc_qhits(rep, cursor, w);
	case PM_WIRE_OP_VRANGE: /* its flags, then a VQUERY's page */
		if (rep->range_flags & ~PM_WIRE_RANGE_TRUNCATED)
			w->ok = false;
		wr_u8(w, rep->range_flags);
		return enc_hits(rep, cursor, w);
	case PM_WIRE_OP_AUTH_HELLO: /* the challenge */
		wr_put(w, rep->challenge, PM_AUTH_CHALLENGE_BYTES);
		return 0;
	case PM_WIRE_OP_AUTH_PROVE:
		return 0;
	case PM_WIRE_OP_NONE:
	case PM_WIRE_OP_COUNT:
		break;
	}
	w->ok = false;
	return 0;
}

uint32_t pm_wire_reply_items(const struct pm_wire_reply *rep)
{
	if (rep->op == PM_WIRE_OP_VQUERY || rep->op == PM_WIRE_OP_VQUERYB ||
	    rep->op == PM_WIRE_OP_VRANGE)
		return rep->nhits;
	if (rep->op == PM_WIRE_OP_INFO)
		return rep->value.len;
	return rep->op == PM_WIRE_OP_CLIST ? rep->ncolls : 0;
}

bool pm_wire_op_paged(uint8_t op)
{
	return op < PM_WIRE_OP_COUNT && op_table[op].paged;
}

bool pm_wire_reply_paged(const struct pm_wire_reply *rep)
{
	return rep->status == PM_WIRE_OK && pm_wire_op_paged(rep->op);
}

/* What an error reply's body carries besides the status (THROTTLED's hint,
 * RETRY's cookie, AUTH's reason), given to encode_reply by the functions
 * that make those replies. */
struct err_body {
	uint32_t retry_ms;
	const uint8_t *cookie; /* PM_COOKIE_BYTES */
	uint8_t auth_reason;
};

/* SET, GET, DEL replies: the rules pm_reply_decode_list applies to them.
 * Success: GET's value of at most PM_WIRE_VALUE_BYTES_MAX (wr_bytes refuses
 * more), DEL's removed 0 or 1, SET's empty body. An error: one whose body is
 * nothing but the status (every one but THROTTLED, RETRY, AUTH, READONLY,
 * MOVED, which carry one). None is paged, so neither MORE nor first is set. */
static enum self_check key_reply_checked(const struct pm_wire_reply *rep)
{
	if (rep->op != PM_WIRE_OP_SET && rep->op != PM_WIRE_OP_GET && rep->op != PM_WIRE_OP_DEL)
		return CHECK_DECODE;
	switch (rep->status) {
	case PM_WIRE_OK:
		if (rep->op == PM_WIRE_OP_DEL && rep->removed > 1)
			return CHECK_REFUSE; /* dec_removed: PM_WIRE_E_PARAM */
		return CHECK_OK;
	case PM_WIRE_E_THROTTLED:
	case PM_WIRE_E_RETRY:
	case PM_WIRE_E_AUTH:
	case PM_WIRE_E_READONLY:
	case PM_WIRE_E_MOVED:
		return CHECK_DECODE;
	default:
		return CHECK_OK;
	}
}

/* pm_wire_reply_encode(), with the body an error reply carries. */
static size_t encode_reply(const struct pm_wire_reply *rep, uint32_t *cursor,
			   const struct err_body *eb, uint8_t *out, size_t cap)
{
	uint32_t local = 0;
	uint32_t *cur = cursor != NULL ? cursor : &local;
	uint32_t first = *cur;
	struct wr w;
	if (rep->op >= PM_WIRE_OP_COUNT || !wr_frame(&w, out, cap))
		return 0;
	enum self_check check_by = key_reply_checked(rep);
	if (check_by == CHECK_REFUSE)
		return 0;
	const struct op_wire *ow = &op_table[rep->op];
	uint8_t flags = PM_FLAG_REPLY;
	if (ow->subop != 0)
		wr_u8(&w, ow->subop);
	if (rep->status == PM_WIRE_OK)
		flags |= enc_reply_body(rep, cur, &w);
	else
		*cur = pm_wire_reply_items(rep); /* an error reply is one frame */
	if (rep->status == PM_WIRE_E_THROTTLED)
		wr_u32(&w, eb->retry_ms);
	if (rep->status == PM_WIRE_E_RETRY) {
		if (eb->cookie == NULL)
			w.ok = false;
		wr_put(&w, eb->cookie, PM_COOKIE_BYTES);
	}
	if (rep->status == PM_WIRE_E_AUTH)
		wr_u8(&w, eb->auth_reason);
	if (rep->status == PM_WIRE_E_MOVED) {
		wr_u64(&w, rep->map_epoch);
		wr_u16(&w, rep->slot);
		wr_u16(&w, 0);
	}
	if (rep->status == PM_WIRE_E_READONLY || rep->status == PM_WIRE_E_MOVED) {
		wr_put(&w, &rep->primary.addr_be, 4); /* network order as it is */
		wr_u16(&w, rep->primary.udp_port);
		wr_u16(&w, rep->primary.tcp_port);
	}
	if (!w.ok || (cursor == NULL && (flags & PM_FLAG_MORE))) {
		*cur = first;
		return 0;
	}
	size_t n = (size_t)(w.p - out);
	struct pm_frame_header h = {
		.version = PM_FRAME_VERSION,
		.opcode = ow->opcode,
		.flags = flags,
		.status = pm_wire_status_known((uint8_t)rep->status) ? (uint8_t)rep->status
								 : PM_WIRE_E_INTERNAL,
		.id = rep->id,
		.body_len = (uint32_t)(n - PM_FRAME_HEADER_BYTES),
		.first = rep->status == PM_WIRE_OK && ow->paged ? first : 0,
	};
	pm_header_encode(&h, out);
	/* The decoder holds the rules: refuse what it would refuse. */
	struct pm_reply_view check;
	size_t used;
	if (check_by == CHECK_OK) {
		SELF_CHECK_AGREES(pm_reply_decode_list(out, n, rep->list_flags, &check, &used) ==
					  PM_WIRE_OK &&
				  used == n);
		return n;
	}
	if (pm_reply_decode_list(out, n, rep->list_flags, &check, &used) != PM_WIRE_OK || used != n) {
		*cur = first;
		return 0;
	}
	return n;
}

size_t pm_wire_reply_encode(const struct pm_wire_reply *rep, uint32_t *cursor, uint8_t *out,
			    size_t cap)
{
	struct err_body eb = { .auth_reason = rep->auth_reason };
	return encode_reply(rep, cursor, &eb, out, cap);
}

size_t pm_reply_encode_throttled(uint8_t op, uint64_t id, uint32_t retry_ms, uint8_t *out,
				 size_t cap)
{
	struct pm_wire_reply rep = { .status = PM_WIRE_E_THROTTLED, .op = op, .id = id };
	struct err_body eb = { .retry_ms = retry_ms };
	return encode_reply(&rep, NULL, &eb, out, cap);
}

size_t pm_reply_encode_retry(uint8_t op, uint64_t id, const uint8_t cookie[PM_COOKIE_BYTES],
			     uint8_t *out, size_t cap)
{
	struct pm_wire_reply rep = { .status = PM_WIRE_E_RETRY, .op = op, .id = id };
	struct err_body eb = { .cookie = cookie };
	return encode_reply(&rep, NULL, &eb, out, cap);
}

/* ---------------------------------------------------------------- reply decoding */

static enum pm_wire_status dec_removed(struct rd *r, struct pm_reply_view *rv)
{
	if (!rd_u32(r, &rv->removed))
		return PM_WIRE_E_FRAME_LENGTH;
	return rv->removed <= 1 ? PM_WIRE_OK : PM_WIRE_E_PARAM;
}

/* u32 dim, u8 dtype, dim x f32, u32 nlen, collection name (0 = default). */
static enum pm_wire_status dec_vget(struct rd *r, struct pm_reply_view *rv)
{
	if (!rd_u32(r, &rv->dim) || !rd_u8(r, &rv->dtype))
		return PM_WIRE_E_FRAME_LENGTH;
	if (rv->dim == 0 || rv->dim > PM_WIRE_DIM_MAX)
		return PM_WIRE_E_DIM;
	if (rv->dtype >= PM_WIRE_DTYPE_COUNT)
		return PM_WIRE_E_DTYPE;
	if (!rd_take(r, (uint64_t)rv->dim * 4u, &rv->value.ptr))
		return PM_WIRE_E_FRAME_LENGTH;
	rv->value.len = rv->dim * 4u;
	enum pm_wire_status st = rd_lenbytes(r, 0, PM_WIRE_COLLECTION_NAME_BYTES_MAX,
					     PM_WIRE_E_COLLECTION_NAME, &rv->collection);
	if (st == PM_WIRE_OK && r->left != 0) /* u32 len, attribute record (issue 18) */
		st = rd_lenbytes(r, 1, PM_WIRE_ATTR_BYTES_MAX, PM_WIRE_E_ATTR, &rv->attr);
	return st;
}

/* Checks every hit of a VQUERY page; the iterator reads them again later. */
static enum pm_wire_status dec_hits(struct rd *r, struct pm_reply_view *rv)
{
	struct pm_wire_bytes key;
	uint32_t dist;
	if (!rd_u32(r, &rv->count))
		return PM_WIRE_E_FRAME_LENGTH;
	rv->it_pos = r->p;
	rv->it_left = rv->count;
	for (uint32_t i = 0; i < rv->count; i++) {
		enum pm_wire_status st = rd_key(r, &key);
		if (st != PM_WIRE_OK)
			return st;
		if (!rd_u32(r, &dist))
			return PM_WIRE_E_FRAME_LENGTH;
	}
	return PM_WIRE_OK;
}

/* VQUERYB: like dec_hits, each hit led by its query's index. */
static enum pm_wire_status dec_qhits(struct rd *r, struct pm_reply_view *rv)
{
	struct pm_wire_bytes key;
	uint32_t dist, query;
	if (!rd_u32(r, &rv->count))
		return PM_WIRE_E_FRAME_LENGTH;
	if ((uint64_t)rv->first + rv->count + rv->more > PM_WIRE_BATCH_HITS_MAX)
		return PM_WIRE_E_BATCH; /* no batch has more hits (its k summed) */
	rv->it_pos = r->p;
	rv->it_left = rv->count;
	for (uint32_t i = 0; i < rv->count; i++) {
		if (!rd_u32(r, &query))
			return PM_WIRE_E_FRAME_LENGTH;
		if (query >= PM_WIRE_BATCH_ITEMS_MAX)
			return PM_WIRE_E_BATCH;
		enum pm_wire_status st = rd_key(r, &key);
		if (st != PM_WIRE_OK)
			return st;
		if (!rd_u32(r, &dist))
			return PM_WIRE_E_FRAME_LENGTH;
	}
	return PM_WIRE_OK;
}

/* VADDB: u32 count (1..PM_WIRE_BATCH_ITEMS_MAX), a status byte per item (a
 * code this codec does not know is the client's to map, as a header's). */
static enum pm_wire_status dec_item_status(struct rd *r, struct pm_reply_view *rv)
{
	uint32_t n;
	enum pm_wire_status st = rd_batch_count(r, &n);
	if (st != PM_WIRE_OK)
		return st;
	if (!rd_take(r, n, &rv->item_status.ptr))
		return PM_WIRE_E_FRAME_LENGTH;
	rv->item_status.len = n;
	return PM_WIRE_OK;
}

/* VRANGE: u8 range flags, then a VQUERY page. */
static enum pm_wire_status dec_range(struct rd *r, struct pm_reply_view *rv)
{
	if (!rd_u8(r, &rv->range_flags))
		return PM_WIRE_E_FRAME_LENGTH;
	if (rv->range_flags & ~PM_WIRE_RANGE_TRUNCATED)
		return PM_WIRE_E_PARAM;
	return dec_hits(r, rv);
}

static enum pm_wire_status dec_coll_entry(struct rd *r, uint8_t list_flags,
					  struct pm_wire_coll_info *ci)
{
	struct pm_wire_coll_params *p = &ci->params;
	memset(ci, 0, sizeof(*ci)); /* params.reserved too: params compare by bytes */
	enum pm_wire_status st = rd_lenbytes(r, 0, PM_WIRE_COLLECTION_NAME_BYTES_MAX,
					PM_WIRE_E_COLLECTION_NAME, &ci->name);
	if (st != PM_WIRE_OK)
		return st;
	if (!rd_u32(r, &p->dim) || !rd_u8(r, &p->metric) || !rd_u8(r, &p->index) ||
	    !rd_u16(r, &p->hnsw_m) || !rd_u32(r, &p->ef_construction) ||
	    !rd_u32(r, &p->ef_search) ||
	    ((list_flags & PM_CLIST_COLL_FLAGS) && !rd_u8(r, &p->flags)) ||
	    ((list_flags & PM_CLIST_DTYPE) &&
	     (!rd_u8(r, &p->dtype) || !rd_u8(r, &p->rerank) || !rd_u32(r, &p->rerank_k))) ||
	    !rd_u64(r, &ci->count) || !rd_u64(r, &ci->bytes))
		return PM_WIRE_E_FRAME_LENGTH;
	if (p->dtype >= PM_WIRE_DTYPE_COUNT)
		return PM_WIRE_E_DTYPE;
	if (p->rerank > 1 || p->rerank_k > PM_WIRE_RERANK_K_MAX)
		return PM_WIRE_E_PARAM;
	if (p->dim > PM_WIRE_DIM_MAX)
		return PM_WIRE_E_DIM;
	if (p->metric >= PM_WIRE_METRIC_COUNT || p->index >= PM_WIRE_INDEX_COUNT ||
	    (p->flags & ~PM_WIRE_COLL_FLAGS_ALL))
		return PM_WIRE_E_PARAM;
	return PM_WIRE_OK;
}

/* Checks every entry of a CLIST page; the iterator reads them again later. */
static enum pm_wire_status dec_colls(struct rd *r, struct pm_reply_view *rv)
{
	struct pm_wire_coll_info ci;
	if (!rd_u32(r, &rv->count))
		return PM_WIRE_E_FRAME_LENGTH;
	rv->it_pos = r->p;
	rv->it_left = rv->count;
	for (uint32_t i = 0; i < rv->count; i++) {
		enum pm_wire_status st = dec_coll_entry(r, rv->list_flags, &ci);
		if (st != PM_WIRE_OK)
			return st;
	}
	return PM_WIRE_OK;
}

/* u32 len, text: the part of the whole text from byte `first` on; `count`
 * is its length (a MORE frame carries at least one byte). */
static enum pm_wire_status dec_info_text(struct rd *r, struct pm_reply_view *rv)
{
	enum pm_wire_status st =
		rd_lenbytes(r, 0, PM_INFO_REPLY_BYTES_MAX, PM_WIRE_E_VALUE_LEN, &rv->value);
	if (st == PM_WIRE_OK && (uint64_t)rv->first + rv->value.len > PM_INFO_REPLY_BYTES_MAX)
		st = PM_WIRE_E_VALUE_LEN;
	rv->count = rv->value.len;
	return st;
}

static enum pm_wire_status dec_reply_body(struct rd *r, struct pm_reply_view *rv)
{
	switch ((enum pm_wire_op)rv->op) {
	case PM_WIRE_OP_SET:
	case PM_WIRE_OP_VADD:
	case PM_WIRE_OP_VSETATTR:
	case PM_WIRE_OP_CCREATE:
		return PM_WIRE_OK;
	case PM_WIRE_OP_SNAPSHOT: /* empty, or u8 shards already running, u8 their progress */
		if (r->left == 0)
			return PM_WIRE_OK;
		return rd_u8(r, &rv->snap_running) && rd_u8(r, &rv->snap_pct) && rv->snap_running &&
			       rv->snap_pct <= 100
			       ? PM_WIRE_OK
			       : PM_WIRE_E_FRAME_LENGTH;
	case PM_WIRE_OP_GET:
		return rd_lenbytes(r, 0, PM_WIRE_VALUE_BYTES_MAX, PM_WIRE_E_VALUE_LEN, &rv->value);
	case PM_WIRE_OP_INFO:
		return dec_info_text(r, rv);
	case PM_WIRE_OP_DEL:
	case PM_WIRE_OP_VDEL:
	case PM_WIRE_OP_CDROP:
		return dec_removed(r, rv);
	case PM_WIRE_OP_VGET:
		return dec_vget(r, rv);
	case PM_WIRE_OP_VQUERY:
		return dec_hits(r, rv);
	case PM_WIRE_OP_CLIST:
		return dec_colls(r, rv);
	case PM_WIRE_OP_MAP: /* the rest of the body; pm_cmap_decode() reads it */
		if (r->left < PM_CMAP_WIRE_HEAD_BYTES || r->left > PM_CMAP_WIRE_BYTES_MAX)
			return PM_WIRE_E_FRAME_LENGTH;
		rv->value.len = r->left;
		(void)rd_take(r, r->left, &rv->value.ptr);
		return PM_WIRE_OK;
	case PM_WIRE_OP_VADDB:
		return dec_item_status(r, rv);
	case PM_WIRE_OP_VQUERYB:
		return dec_qhits(r, rv);
	case PM_WIRE_OP_VRANGE:
		return dec_range(r, rv);
	case PM_WIRE_OP_AUTH_HELLO:
		return rd_take(r, PM_AUTH_CHALLENGE_BYTES, &rv->challenge) ? PM_WIRE_OK
									  : PM_WIRE_E_FRAME_LENGTH;
	case PM_WIRE_OP_AUTH_PROVE:
		return PM_WIRE_OK;
	case PM_WIRE_OP_NONE:
	case PM_WIRE_OP_COUNT:
		break;
	}
	return PM_WIRE_E_FRAME_OPCODE;
}

/* Header rules of a reply: REPLY set, no request flags, MORE only on a paged
 * success. (A success reply with opcode 0 fails in dec_reply_body().) */
static enum pm_wire_status check_reply_header(const struct pm_frame_header *h,
					      const struct pm_reply_view *rv)
{
	if (!(h->flags & PM_FLAG_REPLY) || (h->flags & ~(PM_FLAG_REPLY | PM_FLAG_MORE)))
		return PM_WIRE_E_FRAME_FLAGS;
	if ((rv->more || h->first) && (rv->status != PM_WIRE_OK || !op_table[rv->op].paged))
		return PM_WIRE_E_FRAME_FLAGS;
	return PM_WIRE_OK;
}

enum pm_wire_status pm_reply_decode(const uint8_t *buf, size_t len, struct pm_reply_view *rv,
				    size_t *used)
{
	return pm_reply_decode_list(buf, len, PM_CLIST_COLL_FLAGS | PM_CLIST_DTYPE, rv, used);
}

enum pm_wire_status pm_reply_decode_list(const uint8_t *buf, size_t len, uint8_t list_flags,
					 struct pm_reply_view *rv, size_t *used)
{
	struct pm_frame_header h;
	memset(rv, 0, sizeof *rv);
	rv->list_flags = list_flags;
	*used = 0;
	enum pm_wire_status st = pm_header_decode(buf, len, &h);
	if (!pm_header_usable(st))
		return st;
	*used = PM_FRAME_HEADER_BYTES + (size_t)h.body_len;
	rv->id = h.id;
	rv->status = pm_wire_status_known(h.status) ? (enum pm_wire_status)h.status
						   : PM_WIRE_E_INTERNAL;
	rv->more = (h.flags & PM_FLAG_MORE) != 0;
	rv->first = h.first;
	struct rd r = { buf + PM_FRAME_HEADER_BYTES, h.body_len };
	enum pm_wire_status op_st = PM_WIRE_OK;
	if (h.opcode != PM_OPCODE_NONE)
		op_st = frame_op(&h, &r, &rv->op);
	if (st == PM_WIRE_OK)
		st = check_reply_header(&h, rv);
	if (st == PM_WIRE_OK)
		st = op_st;
	if (st == PM_WIRE_OK && rv->status == PM_WIRE_OK)
		st = dec_reply_body(&r, rv);
	if (st == PM_WIRE_OK && rv->more && rv->count == 0)
		st = PM_WIRE_E_FRAME_FLAGS; /* MORE with no item: no encoder writes it, no progress */
	if (st == PM_WIRE_OK && rv->status == PM_WIRE_E_THROTTLED && !rd_u32(&r, &rv->retry_ms))
		st = PM_WIRE_E_FRAME_LENGTH;
	if (st == PM_WIRE_OK && rv->status == PM_WIRE_E_READONLY &&
	    !rd_primary(&r, &rv->primary))
		st = PM_WIRE_E_FRAME_LENGTH;
	if (st == PM_WIRE_OK && rv->status == PM_WIRE_E_MOVED)
		st = rd_moved(&r, rv);
	if (st == PM_WIRE_OK && rv->status == PM_WIRE_E_RETRY &&
	    !rd_take(&r, PM_COOKIE_BYTES, &rv->cookie))
		st = PM_WIRE_E_FRAME_LENGTH;
	if (st == PM_WIRE_OK && rv->status == PM_WIRE_E_AUTH &&
	    (!rd_u8(&r, &rv->auth_reason) || rv->auth_reason == 0 ||
	     rv->auth_reason >= PM_AUTH_R_COUNT))
		st = PM_WIRE_E_FRAME_LENGTH;
	if (st == PM_WIRE_OK && r.left != 0)
		st = PM_WIRE_E_FRAME_LENGTH;
	if (st != PM_WIRE_OK)
		rv->it_left = 0; /* iterators yield nothing on a rejected frame */
	return st;
}

bool pm_reply_next_hit(struct pm_reply_view *rv, struct pm_wire_bytes *key, float *dist)
{
	uint32_t query;
	return pm_reply_next_qhit(rv, &query, key, dist);
}

bool pm_reply_next_qhit(struct pm_reply_view *rv, uint32_t *query, struct pm_wire_bytes *key,
			float *dist)
{
	bool batch = rv->op == PM_WIRE_OP_VQUERYB;
	if ((rv->op != PM_WIRE_OP_VQUERY && rv->op != PM_WIRE_OP_VRANGE && !batch) ||
	    rv->it_left == 0)
		return false;
	*query = 0;
	if (batch) { /* validated by dec_qhits() */
		*query = pm_get_le32(rv->it_pos);
		rv->it_pos += 4;
	}
	key->len = pm_get_le32(rv->it_pos);
	key->ptr = rv->it_pos + 4;
	*dist = ldf32(key->ptr + key->len);
	rv->it_pos = key->ptr + key->len + 4;
	rv->it_left--;
	return true;
}

bool pm_reply_next_coll(struct pm_reply_view *rv, struct pm_wire_coll_info *ci)
{
	if (rv->op != PM_WIRE_OP_CLIST || rv->it_left == 0)
		return false;
	/* Already validated by dec_colls(): re-reading cannot fail or run past. */
	struct rd r = { rv->it_pos, UINT32_MAX };
	(void)dec_coll_entry(&r, rv->list_flags, ci);
	rv->it_pos = r.p;
	rv->it_left--;
	return true;
}
