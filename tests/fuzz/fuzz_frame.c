/* SPDX-License-Identifier: MIT
 *
 * fuzz_frame.c — the frame codec (proto/codec.h) on arbitrary bytes, read
 * both as a datagram of requests and as a datagram of replies.
 *
 * Invariants checked on every input:
 *  - every decode ends with a status; a usable header reports the frame's
 *    extent (*used) within the input, an unusable one reports 0;
 *  - every pointer a decoded request or reply holds lies inside its frame,
 *    every length within proto/wire.h;
 *  - the reply iterators yield exactly `count` items, each inside the frame;
 *  - round trips: a request that decodes re-encodes (pm_request_encode) to a
 *    frame of the same length that decodes to the same fields; a reply frame
 *    that decodes re-encodes (pm_wire_reply_encode, same cap) to the same fields.
 */
#include <string.h>

#include "codec.h"
#include "fuzz.h"

/* Reply round trips rebuild the items before `first`; beyond this index a
 * paged reply is only checked, not re-encoded. */
#define FRAME_FIRST_ROUNDTRIP_MAX 1024u
/* Items one reply frame can hold: its body over the smallest item. */
#define FRAME_HITS_MAX (PM_FRAME_BYTES_MAX / PM_WIRE_HIT_BYTES_FIXED + 1u)
#define FRAME_COLLS_MAX (PM_FRAME_BYTES_MAX / PM_WIRE_COLL_BYTES_FIXED + 1u)

static uint8_t scratch[PM_FRAME_BYTES_MAX];
static struct pm_wire_hit hits[FRAME_FIRST_ROUNDTRIP_MAX + FRAME_HITS_MAX + 1u];
static struct pm_wire_coll_info colls[FRAME_FIRST_ROUNDTRIP_MAX + FRAME_COLLS_MAX + 1u];
static char info_text[PM_INFO_REPLY_BYTES_MAX]; /* an INFO page at its offset */

static int same_bytes(struct pm_wire_bytes a, struct pm_wire_bytes b)
{
	return a.len == b.len && (a.len == 0 || !memcmp(a.ptr, b.ptr, a.len));
}

/* ---------------------------------------------------------------- requests */

/* Pointers lie inside the frame whatever the status (a partly decoded
 * request keeps what it read so far). */
static void check_request_inside(const struct pm_wire_request *r, const uint8_t *f, size_t n)
{
	FUZZ_CHECK(r->op < PM_WIRE_OP_COUNT);
	FUZZ_CHECK(fuzz_inside(r->key.ptr, r->key.len, f, n));
	FUZZ_CHECK(fuzz_inside(r->value.ptr, r->value.len, f, n));
	FUZZ_CHECK(fuzz_inside(r->collection.ptr, r->collection.len, f, n));
	FUZZ_CHECK(fuzz_inside(r->section.ptr, r->section.len, f, n));
	FUZZ_CHECK(fuzz_inside(r->vec, (size_t)r->dim * 4u, f, n));
}

/* Every length within its limit once the request decoded. */
static void check_request_limits(const struct pm_wire_request *r)
{
	FUZZ_CHECK(r->op != PM_WIRE_OP_NONE);
	FUZZ_CHECK(r->key.len <= PM_WIRE_KEY_BYTES_MAX && r->value.len <= PM_WIRE_VALUE_BYTES_MAX);
	FUZZ_CHECK(r->collection.len <= PM_WIRE_COLLECTION_NAME_BYTES_MAX);
	FUZZ_CHECK(r->section.len <= PM_INFO_SECTION_BYTES_MAX);
	FUZZ_CHECK(r->dim <= PM_WIRE_DIM_MAX && r->k <= PM_WIRE_K_MAX && r->ef <= PM_WIRE_EF_MAX);
	FUZZ_CHECK(!r->has_ttl || (r->ttl_ms != 0 && r->ttl_ms <= PM_WIRE_TTL_MS_MAX));
	FUZZ_CHECK(r->op != PM_WIRE_OP_CCREATE ||
		   (r->params.dim >= 1 && r->params.dim <= PM_WIRE_DIM_MAX &&
		    r->params.metric < PM_WIRE_METRIC_COUNT && r->params.index < PM_WIRE_INDEX_COUNT));
}

static void check_same_request(const struct pm_wire_request *a, const struct pm_wire_request *b)
{
	FUZZ_CHECK(a->op == b->op && a->id == b->id);
	FUZZ_CHECK(same_bytes(a->key, b->key) && same_bytes(a->value, b->value));
	FUZZ_CHECK(same_bytes(a->collection, b->collection) && same_bytes(a->section, b->section));
	FUZZ_CHECK(a->dim == b->dim && (a->dim == 0 || !memcmp(a->vec, b->vec, a->dim * 4u)));
	FUZZ_CHECK(a->k == b->k && a->ef == b->ef && a->exact == b->exact);
	FUZZ_CHECK(a->has_ttl == b->has_ttl && a->ttl_ms == b->ttl_ms);
	FUZZ_CHECK(a->info_flags == b->info_flags && a->list_flags == b->list_flags);
	FUZZ_CHECK(!memcmp(&a->params, &b->params, sizeof(a->params)));
	FUZZ_CHECK(a->nitems == b->nitems && same_bytes(a->items, b->items)); /* issue 18 */
	FUZZ_CHECK(!memcmp(&a->radius, &b->radius, sizeof(a->radius)));
}

/* The fields the wire lets a client spell two ways: EF with ef 0 means what
 * no EF means (docs/protocol.md), and the encoder writes no EF then; a
 * CCREATE without coll_flags means flags 0, which the encoder writes; INFO
 * and CLIST flags 0 mean what no flags byte means, and the encoder writes
 * none (fields added at the end of a body: docs/protocol.md 10). */
static size_t request_spelled(const struct pm_wire_request *req, const uint8_t *frame, size_t used)
{
	/* the codec writes no AUTH trailer (proto/auth.c appends it): the body
	 * it reads and writes is what comes before one */
	size_t trailer = req->auth ? PM_AUTH_TRAILER_BYTES : 0u;
	size_t body = used - PM_FRAME_HEADER_BYTES - trailer, want = used - trailer;
	if ((frame[4] & PM_FLAG_EF) && req->ef == 0 && req->op != PM_WIRE_OP_VQUERYB)
		want -= 4u; /* a batch's items are written back as they came */
	if (req->op == PM_WIRE_OP_CCREATE) { /* sub-op, name, params: 21 + name bytes */
		size_t base = 22u + req->collection.len; /* ... and coll_flags */
		bool plain = !req->params.dtype && !req->params.rerank && !req->params.rerank_k;
		if (body == base - 1u)
			want++; /* no coll_flags: the encoder writes it */
		else if (plain)
			want -= body - base; /* element fields all default: not written */
		else if (body == base + 1u)
			want += 5u; /* a dtype alone: the encoder writes rerank and rerank_k */
	}
	if (req->op == PM_WIRE_OP_INFO && req->info_flags == 0 &&
	    body == (req->section.len ? 5u + req->section.len : 1u))
		want--;
	if (req->op == PM_WIRE_OP_CLIST && req->list_flags == 0 && body == 2u)
		want--;
	return want;
}

static void request_round_trip(const struct pm_wire_request *req, const uint8_t *frame, size_t used)
{
	size_t n = pm_wire_request_encode(req, scratch, sizeof(scratch));
	FUZZ_CHECK(n == request_spelled(req, frame, used)); /* every field read is written */
	struct pm_wire_request again;
	size_t used2;
	FUZZ_CHECK(pm_wire_request_decode(scratch, n, &again, &used2) == PM_WIRE_OK && used2 == n);
	check_same_request(req, &again);
}

/* The key ops' fast path agrees with the full decoder: it takes exactly
 * the SET, GET and DEL frames without an AUTH trailer that the full one
 * accepts, with their fields. */
static void key_fast_path(const uint8_t *d, size_t len, const struct pm_wire_request *req,
			  enum pm_wire_status st, size_t used)
{
	struct pm_wire_key_request k;
	size_t kused = 0;
	bool fast = pm_wire_key_request_decode(d, len, &k, &kused);
	bool key_op = req->op == PM_WIRE_OP_SET || req->op == PM_WIRE_OP_GET ||
		      req->op == PM_WIRE_OP_DEL;
	FUZZ_CHECK(fast == (st == PM_WIRE_OK && key_op && !req->auth));
	if (!fast)
		return;
	FUZZ_CHECK(kused == used && k.op == req->op && k.id == req->id);
	FUZZ_CHECK(k.key.ptr == req->key.ptr && k.key.len == req->key.len);
	FUZZ_CHECK(k.value.ptr == req->value.ptr && k.value.len == req->value.len);
	FUZZ_CHECK(k.has_ttl == req->has_ttl && k.ttl_ms == req->ttl_ms);
}

static void requests(const uint8_t *d, size_t len)
{
	for (size_t off = 0; off < len;) {
		struct pm_wire_request req;
		size_t used;
		enum pm_wire_status st = pm_wire_request_decode(d + off, len - off, &req, &used);
		key_fast_path(d + off, len - off, &req, st, used);
		FUZZ_CHECK(pm_wire_status_known(st));
		FUZZ_CHECK(used <= len - off);
		if (used == 0)
			return; /* extent unknown: the rest of the datagram is dropped */
		FUZZ_CHECK(used >= PM_FRAME_HEADER_BYTES);
		check_request_inside(&req, d + off, used);
		if (st == PM_WIRE_OK) {
			check_request_limits(&req);
			request_round_trip(&req, d + off, used);
		}
		off += used;
	}
}

/* ---------------------------------------------------------------- replies */

static void check_reply_inside(const struct pm_reply_view *rv, const uint8_t *f, size_t n)
{
	FUZZ_CHECK(pm_wire_status_known(rv->status) && rv->op < PM_WIRE_OP_COUNT);
	FUZZ_CHECK(fuzz_inside(rv->value.ptr, rv->value.len, f, n));
	FUZZ_CHECK(fuzz_inside(rv->collection.ptr, rv->collection.len, f, n));
}

/* The iterators of a decoded frame: `count` items, each inside the frame;
 * copies them to hits/keys/colls from index `at` for the round trip. */
static void iterate(struct pm_reply_view *rv, const uint8_t *f, size_t n, uint32_t at)
{
	struct pm_reply_view it = *rv;
	struct pm_wire_bytes key;
	float dist;
	struct pm_wire_coll_info ci;
	uint32_t got = 0;
	uint32_t query;
	bool hits_op = rv->op == PM_WIRE_OP_VQUERY || rv->op == PM_WIRE_OP_VQUERYB ||
		       rv->op == PM_WIRE_OP_VRANGE;
	if (hits_op) {
		for (; pm_reply_next_qhit(&it, &query, &key, &dist); got++) {
			FUZZ_CHECK(key.len >= 1 && key.len <= PM_WIRE_KEY_BYTES_MAX);
			FUZZ_CHECK(fuzz_inside(key.ptr, key.len, f, n));
			FUZZ_CHECK(at + got < FRAME_FIRST_ROUNDTRIP_MAX + FRAME_HITS_MAX);
			hits[at + got] = (struct pm_wire_hit){ .key = key, .dist = dist,
							       .query = query };
		}
	} else if (rv->op == PM_WIRE_OP_CLIST) {
		for (; pm_reply_next_coll(&it, &ci); got++) {
			FUZZ_CHECK(ci.name.len <= PM_WIRE_COLLECTION_NAME_BYTES_MAX);
			FUZZ_CHECK(fuzz_inside(ci.name.ptr, ci.name.len, f, n));
			FUZZ_CHECK(at + got < FRAME_FIRST_ROUNDTRIP_MAX + FRAME_COLLS_MAX);
			colls[at + got] = ci;
		}
	}
	FUZZ_CHECK(got == rv->count || (!hits_op && rv->op != PM_WIRE_OP_CLIST));
}

static void check_same_reply(const struct pm_reply_view *a, const struct pm_reply_view *b)
{
	FUZZ_CHECK(a->id == b->id && a->status == b->status && a->op == b->op);
	FUZZ_CHECK(a->more == b->more && a->first == b->first && a->count == b->count);
	FUZZ_CHECK(a->removed == b->removed && a->dim == b->dim && a->retry_ms == b->retry_ms);
	FUZZ_CHECK(same_bytes(a->value, b->value) && same_bytes(a->collection, b->collection));
	FUZZ_CHECK(a->dtype == b->dtype && same_bytes(a->attr, b->attr));
	FUZZ_CHECK(a->range_flags == b->range_flags && same_bytes(a->item_status, b->item_status));
	struct pm_reply_view x = *a, y = *b;
	struct pm_wire_bytes kx, ky;
	float dx, dy;
	uint32_t qx, qy;
	struct pm_wire_coll_info cx, cy;
	while (pm_reply_next_qhit(&x, &qx, &kx, &dx)) {
		FUZZ_CHECK(pm_reply_next_qhit(&y, &qy, &ky, &dy));
		FUZZ_CHECK(qx == qy && same_bytes(kx, ky) && !memcmp(&dx, &dy, sizeof(dx)));
	}
	while (pm_reply_next_coll(&x, &cx)) {
		FUZZ_CHECK(pm_reply_next_coll(&y, &cy));
		FUZZ_CHECK(same_bytes(cx.name, cy.name) && cx.count == cy.count &&
			   cx.bytes == cy.bytes);
		FUZZ_CHECK(!memcmp(&cx.params, &cy.params, sizeof(cx.params)));
	}
}

/* Re-encode a decoded frame with the same cap (so a paged frame that had
 * MORE stops where it stopped: one more empty item is offered that cannot fit). */
static void reply_round_trip(const struct pm_reply_view *rv, size_t used)
{
	struct pm_wire_reply rep = { .status = rv->status, .op = rv->op, .id = rv->id,
				.removed = rv->removed, .value = rv->value, .dim = rv->dim,
				.dtype = rv->dtype, .collection = rv->collection,
				.attr = rv->attr, /* VGET's record trailer (issue 18) */
				.hits = hits, .colls = colls };
	uint32_t end = rv->first + rv->count, cursor = rv->first;
	hits[end] = (struct pm_wire_hit){ 0 };
	memset(&colls[end], 0, sizeof(colls[end]));
	bool hits_op = rv->op == PM_WIRE_OP_VQUERY || rv->op == PM_WIRE_OP_VQUERYB ||
		       rv->op == PM_WIRE_OP_VRANGE;
	rep.nhits = hits_op ? end + rv->more : 0;
	rep.range_flags = rv->range_flags; /* issue 18 */
	rep.item_status = rv->item_status.ptr;
	rep.nitems = rv->item_status.len;
	rep.ncolls = rv->op == PM_WIRE_OP_CLIST ? end + rv->more : 0;
	rep.list_flags = rv->list_flags;
	rep.auth_reason = rv->auth_reason; /* issue 19: E_AUTH's reason, SNAPSHOT's progress, */
	rep.snap_running = rv->snap_running;
	rep.snap_pct = rv->snap_pct;
	if (rv->op == PM_WIRE_OP_AUTH_HELLO && rv->status == PM_WIRE_OK) /* HELLO's challenge */
		memcpy(rep.challenge, rv->challenge, PM_AUTH_CHALLENGE_BYTES);
	if (rv->op == PM_WIRE_OP_INFO && rv->status == PM_WIRE_OK) {
		/* a page of a longer text: the page at its offset; the text after a
		 * MORE page is not known, so only a last page is re-encoded */
		if (rv->more)
			return;
		if (rv->value.len) /* an empty page has no pointer */
			memcpy(info_text + rv->first, rv->value.ptr, rv->value.len);
		rep.value = (struct pm_wire_bytes){ (const uint8_t *)info_text, end };
	}
	size_t n;
	if (rv->status == PM_WIRE_E_THROTTLED)
		n = pm_reply_encode_throttled(rv->op, rv->id, rv->retry_ms, scratch, used);
	else if (rv->status == PM_WIRE_E_RETRY) /* RETRY's cookie */
		n = pm_reply_encode_retry(rv->op, rv->id, rv->cookie, scratch, used);
	else
		n = pm_wire_reply_encode(&rep, &cursor, scratch, used);
	FUZZ_CHECK(n == used);
	FUZZ_CHECK(rv->status != PM_WIRE_OK || cursor == end || (!hits_op &&
							      rv->op != PM_WIRE_OP_CLIST));
	struct pm_reply_view again;
	size_t used2;
	FUZZ_CHECK(pm_reply_decode(scratch, n, &again, &used2) == PM_WIRE_OK && used2 == n);
	check_same_reply(rv, &again);
}

static void replies(const uint8_t *d, size_t len)
{
	for (size_t off = 0; off < len;) {
		struct pm_reply_view rv;
		size_t used;
		enum pm_wire_status st = pm_reply_decode(d + off, len - off, &rv, &used);
		FUZZ_CHECK(pm_wire_status_known(st));
		FUZZ_CHECK(used <= len - off);
		if (used == 0)
			return;
		check_reply_inside(&rv, d + off, used);
		FUZZ_CHECK(st == PM_WIRE_OK || rv.it_left == 0);
		bool again = st == PM_WIRE_OK && rv.first <= FRAME_FIRST_ROUNDTRIP_MAX;
		if (st == PM_WIRE_OK)
			iterate(&rv, d + off, used, again ? rv.first : 0);
		if (again)
			reply_round_trip(&rv, used);
		off += used;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pm_frame_header h;
	enum pm_wire_status st = pm_header_decode(data, size, &h);
	FUZZ_CHECK(pm_wire_status_known(st));
	FUZZ_CHECK(!pm_header_usable(st) || PM_FRAME_HEADER_BYTES + (size_t)h.body_len <= size);
	requests(data, size);
	replies(data, size);
	return 0;
}
