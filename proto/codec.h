/* SPDX-License-Identifier: MIT
 *
 * proto/codec.h — the Pomai binary frame codec, both directions
 * (docs/protocol.md), and the decoded messages it reads and writes. It was
 * dataplane/codec.h; it lives in proto/ because a client and pomaid must agree
 * on every byte of it.
 *
 * A frame is a fixed 24-byte little-endian header followed by body_len bytes of
 * body. The decoders are the trust boundary of the dataplane: they never read
 * beyond the length they are given, never allocate, and check every field before
 * it is used, so a request that reaches pomaid's engine has every length within
 * the bounds of wire.h and every pointer inside the received frame (zero copy;
 * byte arrays, vectors included, may be unaligned). The encoders refuse to write
 * a frame that the decoders would reject: an encoded request or reply always
 * decodes back to the same fields.
 *
 * The message types are the wire's own (struct pm_wire_request,
 * pm_wire_reply, pm_reply_view), with wire status codes (enum
 * pm_wire_status). pomaid converts them to and from its engine's types in
 * one small module (dataplane/bridge.h), which also holds the one table from
 * engine statuses to wire codes. This module depends only on libc and
 * wire.h / byteorder.h.
 */
#ifndef POMAI_PROTO_CODEC_H
#define POMAI_PROTO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "wire.h"

/* ---------------------------------------------------------------- messages */

/* A run of bytes inside a frame (or a caller's buffer); len 0 may have ptr NULL. */
struct pm_wire_bytes {
	const uint8_t *ptr;
	uint32_t len;
};

/* A collection's parameters (CCREATE's body, a CLIST entry). */
struct pm_wire_coll_params {
	uint32_t dim;
	uint8_t metric;           /* enum pm_wire_metric */
	uint8_t index;            /* enum pm_wire_index */
	uint16_t hnsw_m;          /* HNSW links per node; 0 = default */
	uint32_t ef_construction; /* 0 = default */
	uint32_t ef_search;       /* 0 = default */
	uint8_t flags;            /* PM_WIRE_COLL_*; absent (a client from before) is 0 */
	uint8_t dtype;            /* enum pm_wire_dtype; absent is f32 */
	uint8_t rerank;           /* 0 off, 1 on; absent is off */
	uint8_t reserved;         /* zero: decoded parameters compare by bytes */
	uint32_t rerank_k;        /* re-rank candidates; 0 = the server's default */
};

/* A decoded request (server side) or one to encode (client side). */
struct pm_wire_request {
	uint8_t op;                       /* enum pm_wire_op */
	uint64_t id;                      /* request id, echoed in the reply */
	struct pm_wire_bytes key;
	struct pm_wire_bytes value;       /* SET */
	struct pm_wire_bytes collection;  /* vector ops; len 0 = default collection */
	struct pm_wire_bytes section;     /* INFO */
	uint8_t info_flags;               /* INFO: PM_INFO_* */
	uint8_t list_flags;               /* CLIST: PM_CLIST_* */
	const uint8_t *vec;               /* little-endian f32 components, possibly unaligned */
	uint32_t dim;
	uint32_t k;
	uint32_t ef;                      /* 0 = collection default */
	uint64_t ttl_ms;                  /* 0 = no TTL */
	bool has_ttl;
	bool exact;                       /* VQUERY: exact (flat) search */
	struct pm_wire_coll_params params; /* CCREATE */
	struct pm_wire_bytes attr;        /* VADD (ATTR flag when len != 0), VSETATTR: the
					     attribute record (docs/protocol.md) */
	struct pm_wire_bytes filter;      /* VQUERY: filter expression text; len 0 = none */
	uint32_t part_shards;             /* issue 20, VQUERY: 0, or the shards the client asks
					     one by one (PART flag: this shard's part only) */
	/* issue 18. VADDB, VQUERYB: nitems items. Decoded: their bytes after
	 * the count (items) and the frame's flags (item_flags), read one at a
	 * time with pm_wire_item_decode(). To encode: item_list, nitems VADD /
	 * VQUERY requests (their op and id are not looked at; every item must
	 * give the same flags: all or none with a TTL, a collection, an ef,
	 * exact). VRANGE: radius; k is the most hits (1..PM_WIRE_RANGE_HITS_MAX). */
	uint32_t nitems;
	struct pm_wire_bytes items;
	uint8_t item_flags;
	const struct pm_wire_request *item_list;
	float radius;
	/* issue 19. auth: decoded: the frame ended with an AUTH trailer (not
	 * checked here: proto/auth.h; the body decoded is what precedes it).
	 * AUTH_PROVE: the user and its nonce and tag (PM_AUTH_PROVE_BYTES). */
	bool auth;
	uint32_t auth_user;
	struct pm_wire_bytes auth_proof;
};

/* One KNN hit of a reply to encode. */
struct pm_wire_hit {
	struct pm_wire_bytes key;
	float dist;
	uint32_t query;                   /* VQUERYB: the index of its query; else 0 */
};

/* One CLIST entry. */
struct pm_wire_coll_info {
	struct pm_wire_bytes name;         /* len 0: the default collection */
	struct pm_wire_coll_params params;
	uint64_t count;                    /* vectors in the collection */
	uint64_t bytes;                    /* bytes of its vectors */
};

/* A reply to encode (server side). */
/* READONLY's body: the primary a replica follows (zeros: not known). */
struct pm_wire_primary {
	uint32_t addr_be;                  /* IPv4, network order */
	uint16_t udp_port;                 /* its base_port (shard i: + i) */
	uint16_t tcp_port;                 /* 0: no TCP */
};
#define PM_WIRE_PRIMARY_BYTES 8u
/* MOVED's body: u64 map epoch, u16 slot, u16 0, then the owning set's
 * primary as READONLY names one (zeros: that set has no primary now). */
#define PM_WIRE_MOVED_BYTES (8u + 2u + 2u + PM_WIRE_PRIMARY_BYTES)

struct pm_wire_reply {
	enum pm_wire_status status;
	uint8_t op;                        /* enum pm_wire_op */
	uint64_t id;
	uint32_t removed;                  /* DEL, VDEL, CDROP: 0 or 1 */
	struct pm_wire_bytes value;        /* GET value; VGET raw f32 bytes; INFO text;
					      MAP: the map's wire form (pm_cmap_encode) */
	uint32_t dim;                      /* VGET */
	uint8_t dtype;                     /* VGET: the collection's element type */
	struct pm_wire_bytes collection;   /* VGET: the vector's collection name */
	struct pm_wire_bytes attr;         /* VGET: its attribute record; len 0: none */
	const struct pm_wire_hit *hits;    /* VQUERY: sorted by (dist, key) */
	uint32_t nhits;
	const struct pm_wire_coll_info *colls; /* CLIST */
	uint32_t ncolls;
	uint8_t list_flags;                /* the request's PM_CLIST_*: the entries' layout */
	struct pm_wire_primary primary;    /* READONLY: where writes go; MOVED: the
					      primary of the slot's set */
	uint64_t map_epoch;                /* MOVED: the epoch of the answering node's map */
	uint16_t slot;                     /* MOVED: the key's slot (< PM_CLUSTER_SLOTS) */
	/* issue 18 */
	const uint8_t *item_status;        /* VADDB: nitems wire statuses, one per item */
	uint32_t nitems;
	uint8_t range_flags;               /* VRANGE: PM_WIRE_RANGE_* */
	uint8_t challenge[PM_AUTH_CHALLENGE_BYTES]; /* AUTH_HELLO (issue 19) */
	uint8_t auth_reason;               /* E_AUTH: enum pm_auth_reason */
	uint8_t snap_running, snap_pct;    /* SNAPSHOT: shards already running one, their
					    * least progress % (issue 19) */
};

/* ---------------------------------------------------------------- header */

struct pm_frame_header {
	uint8_t version;
	uint8_t opcode;
	uint8_t flags;
	uint8_t status;    /* wire status code; 0 in requests */
	uint64_t id;       /* request id, echoed in the reply */
	uint32_t body_len; /* bytes after the header */
	uint32_t first;    /* paged replies: index of this frame's first item; else 0 */
};

/* Parse and check the fixed header of the frame at buf (len bytes available).
 * Fills *h whenever len >= PM_FRAME_HEADER_BYTES, even on error. Returns
 * PM_WIRE_E_FRAME_TRUNCATED, _MAGIC, _VERSION or _TOO_BIG when the frame's
 * extent is unknown (nothing after it can be parsed), PM_WIRE_E_FRAME_FLAGS
 * when a reserved field is nonzero (the extent is known: 24 + body_len), else
 * PM_WIRE_OK. */
enum pm_wire_status pm_header_decode(const uint8_t *buf, size_t len,
				     struct pm_frame_header *h);

/* Write the 24-byte header (magic, reserved fields zero). */
void pm_header_encode(const struct pm_frame_header *h, uint8_t out[PM_FRAME_HEADER_BYTES]);

/* True when a status from pm_header_decode() still lets the caller skip the frame
 * (24 + body_len bytes) and go on to the next one. */
bool pm_header_usable(enum pm_wire_status st);

/* True when the bytes at buf start a frame with the magic and the REPLY flag,
 * whatever else its header holds (a wrong version, an impossible length): a
 * server never answers one (docs/protocol.md §6.5), so two servers, or a
 * server and a spoofed copy of itself, can never keep each other busy. */
bool pm_frame_is_reply(const uint8_t *buf, size_t len);

/* ---------------------------------------------------------------- requests */

/* Server side. Decode one request frame at the start of buf. *req is zeroed,
 * then filled; its pointers point into buf. *used is set to 24 + body_len when
 * the header was usable, else 0 (drop the rest of the datagram); req->id and
 * req->op are filled whenever *used != 0, even if the body is invalid, so that
 * an error reply can be sent (req->op is PM_WIRE_OP_NONE for an unknown opcode
 * or sub-op). */
enum pm_wire_status pm_wire_request_decode(const uint8_t *buf, size_t len,
					   struct pm_wire_request *req, size_t *used);

/* A key operation's request (SET, GET, DEL), as pm_wire_request_decode()
 * would fill those fields of a struct pm_wire_request (the others are 0). */
struct pm_wire_key_request {
	uint8_t op;                 /* PM_WIRE_OP_SET, _GET or _DEL */
	bool has_ttl;               /* SET */
	uint64_t id;
	struct pm_wire_bytes key;
	struct pm_wire_bytes value; /* SET */
	uint64_t ttl_ms;            /* SET, with has_ttl */
};

/* Server side, pm_wire_request_decode()'s fast path for the key operations
 * (issue 20: the full request is 256 bytes to clear and copy, for a GET that
 * uses four fields): true when buf starts with a SET, GET or DEL request
 * that pm_wire_request_decode() accepts, without an AUTH trailer, with *kr
 * and *used as it would give them; false for anything else (another op, a
 * trailer, any error), which the caller then gives to the full decoder. */
bool pm_wire_key_request_decode(const uint8_t *buf, size_t len, struct pm_wire_key_request *kr,
				size_t *used);

/* Client side. Encode req (op, id and the fields its op uses) into out. Flags are
 * derived from the fields: TTL from has_ttl, COLL from collection.len != 0, EF
 * from ef != 0, EXACT from exact. Returns bytes written, or 0 when the frame does
 * not fit cap (or PM_FRAME_BYTES_MAX) or a field breaks a limit; out's contents
 * are then unspecified. */
size_t pm_wire_request_encode(const struct pm_wire_request *req, uint8_t *out, size_t cap);

/* ---------------------------------------------------------------- replies */

/* Server side. Encode one frame of the reply to rep->op / rep->id. A reply
 * whose status is not PM_WIRE_OK has an empty body (only the sub-op byte for
 * 'V' ops); an error reply to op PM_WIRE_OP_NONE has opcode PM_OPCODE_NONE; a
 * status that names no code is written as PM_WIRE_E_INTERNAL. For VQUERY,
 * CLIST and INFO, *cursor is the index of the first hit / collection / text
 * byte to write; as many as fit are written (INFO: whole lines), *cursor is
 * advanced past them and the frame has MORE unless it holds the last one;
 * call again while *cursor < pm_wire_reply_items(). An error reply is always
 * one frame and sets *cursor to pm_wire_reply_items(), so that loop ends too.
 * cursor may be NULL, in which case everything must fit one frame. Returns
 * bytes written, or 0 (cursor unchanged) when cap is too small for the header
 * and at least one remaining item, or when a field breaks a limit. */
size_t pm_wire_reply_encode(const struct pm_wire_reply *rep, uint32_t *cursor, uint8_t *out,
			    size_t cap);

/* Items a paged reply carries: VQUERY hits, CLIST entries, INFO text bytes. */
uint32_t pm_wire_reply_items(const struct pm_wire_reply *rep);

/* Whether rep may take several frames (a successful VQUERY, CLIST or INFO). */
bool pm_wire_reply_paged(const struct pm_wire_reply *rep);

/* Whether a successful reply to op may take several frames. */
bool pm_wire_op_paged(uint8_t op);

/* Server side. A THROTTLED reply to op / id: its body (after the sub-op byte
 * of 'V' ops) is a u32 retry hint, the milliseconds until the client's quota
 * admits a request again (docs/protocol.md §6.3). pm_wire_reply_encode()
 * writes a THROTTLED reply with hint 0 (none). Bytes written, or 0 if cap is
 * too small. */
size_t pm_reply_encode_throttled(uint8_t op, uint64_t id, uint32_t retry_ms, uint8_t *out,
				 size_t cap);
/* Server side. A RETRY reply to op / id (issue 19, docs/protocol.md §14):
 * its body is the cookie the client echoes. An E_AUTH reply's u8 reason is
 * pm_wire_reply's auth_reason (pm_wire_reply_encode). */
size_t pm_reply_encode_retry(uint8_t op, uint64_t id, const uint8_t cookie[PM_COOKIE_BYTES],
			     uint8_t *out, size_t cap);

/* Client side: one decoded reply frame. Pointers point into the frame. The body
 * is validated completely by pm_reply_decode(), so the iterators cannot run past
 * it. */
struct pm_reply_view {
	uint64_t id;
	enum pm_wire_status status;      /* the server's result; PM_WIRE_E_INTERNAL if
					    the code names no status */
	uint8_t op;                      /* enum pm_wire_op; NONE: request was undecodable */
	bool more;                       /* MORE: the reply continues in the next frame */
	uint32_t first;                  /* VQUERY / CLIST: index of this frame's first
					    item; INFO: offset of this frame's text in
					    the whole text */
	uint32_t removed;                /* DEL, VDEL, CDROP */
	struct pm_wire_bytes value;      /* GET value; INFO text; VGET raw LE f32 bytes;
					    MAP: the map's wire form (pm_cmap_decode) */
	uint32_t dim;                    /* VGET */
	uint8_t dtype;                   /* VGET: enum pm_wire_dtype */
	struct pm_wire_bytes collection; /* VGET: the vector's collection; len 0 = default */
	struct pm_wire_bytes attr;       /* VGET: its attribute record; len 0 = none */
	uint32_t count;                  /* VQUERY hits / CLIST entries / INFO text bytes
					    in this frame */
	uint32_t retry_ms;               /* THROTTLED: ms until the quota admits a
					    request; 0 none */
	struct pm_wire_primary primary;  /* READONLY: the primary writes go to; MOVED:
					    the primary of the slot's set */
	uint64_t map_epoch;              /* MOVED: the epoch of the answering node's map */
	uint16_t slot;                   /* MOVED: the key's slot */
	struct pm_wire_bytes item_status; /* VADDB: one wire status byte per item */
	uint8_t range_flags;             /* VRANGE: PM_WIRE_RANGE_* */
	const uint8_t *challenge;        /* AUTH_HELLO: PM_AUTH_CHALLENGE_BYTES (issue 19) */
	const uint8_t *cookie;           /* E_RETRY: PM_COOKIE_BYTES to echo (auth.h) */
	uint8_t auth_reason;             /* E_AUTH: enum pm_auth_reason */
	uint8_t snap_running, snap_pct;  /* SNAPSHOT: shards already running one (0: every
					  * shard started one), their least progress % */
	/* iterator state; private */
	uint8_t list_flags;              /* CLIST: the entries' layout */
	const uint8_t *it_pos;
	uint32_t it_left;
};

/* Decode one reply frame at the start of buf; *used as for
 * pm_wire_request_decode(). Returns the decoding result; the server's result
 * is rv->status. CLIST entries are read with coll_flags and the element type
 * fields (the reply to a request with PM_CLIST_COLL_FLAGS | PM_CLIST_DTYPE,
 * which every request this codec's clients send). */
enum pm_wire_status pm_reply_decode(const uint8_t *buf, size_t len, struct pm_reply_view *rv,
				    size_t *used);

/* pm_reply_decode() of the reply to a CLIST request with list_flags (0: the
 * entries of clients built before coll_flags; docs/protocol.md 10). */
enum pm_wire_status pm_reply_decode_list(const uint8_t *buf, size_t len, uint8_t list_flags,
					 struct pm_reply_view *rv, size_t *used);

/* Next VQUERY hit of this frame (key points into the frame), or false when done. */
bool pm_reply_next_hit(struct pm_reply_view *rv, struct pm_wire_bytes *key, float *dist);

/* Next hit of a VQUERY, VQUERYB or VRANGE frame: its query's index
 * (VQUERYB; else 0), key (pointing into the frame) and distance. */
bool pm_reply_next_qhit(struct pm_reply_view *rv, uint32_t *query, struct pm_wire_bytes *key,
			float *dist);

/* Next CLIST entry of this frame (name points into the frame), or false when done. */
bool pm_reply_next_coll(struct pm_reply_view *rv, struct pm_wire_coll_info *ci);

/* ---------------------------------------------------------------- items */

/* One VADD item and one VQUERY item: the fields of such a request's body
 * after the sub-op byte, as `flags` (the frame's request flags) say which
 * trailers follow. A batch (its items encoded one after another) reuses
 * them. Decode: req's item fields filled (pointers into p), *used the bytes
 * read. Encode: the bytes written (0: did not fit cap or broke a bound) and
 * *flags the trailers written. */
enum pm_wire_status pm_wire_vadd_item_decode(const uint8_t *p, uint32_t len, uint8_t flags,
					     struct pm_wire_request *req, uint32_t *used);
size_t pm_wire_vadd_item_encode(const struct pm_wire_request *req, uint8_t *out, size_t cap,
				uint8_t *flags);
enum pm_wire_status pm_wire_vquery_item_decode(const uint8_t *p, uint32_t len, uint8_t flags,
					       struct pm_wire_request *req, uint32_t *used);
size_t pm_wire_vquery_item_encode(const struct pm_wire_request *req, uint8_t *out, size_t cap,
				  uint8_t *flags);
/* ---------------------------------------------------------------- batch items (issue 18) */

/* The item of a decoded VADDB / VQUERYB request at byte *at of batch->items
 * (0 for the first): *item is zeroed and filled as the VADD / VQUERY request
 * it is (op, id: the batch's), *at advanced past it. pm_wire_request_decode()
 * checked every item already, so this fails (PM_WIRE_E_FRAME_LENGTH) only
 * past the last one. */
enum pm_wire_status pm_wire_item_decode(const struct pm_wire_request *batch, uint32_t *at,
					struct pm_wire_request *item);

/* ---------------------------------------------------------------- ops */

/* The wire opcode and sub-op (0 if none) of an op; false for PM_WIRE_OP_NONE /
 * unknown. */
bool pm_op_wire(uint8_t op, uint8_t *opcode, uint8_t *subop);

#endif
