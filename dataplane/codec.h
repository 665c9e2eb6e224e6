/* SPDX-License-Identifier: MIT
 *
 * codec.h — the Pomai binary frame codec, both directions (docs/protocol.md).
 *
 * A frame is a fixed 24-byte little-endian header followed by body_len bytes of
 * body. The decoders are the trust boundary of the dataplane: they never read
 * beyond the length they are given, never allocate, and check every field before
 * it is used, so a request that reaches the engine has every length within the
 * bounds of pm_limits.h and every pointer inside the received frame (zero copy;
 * byte arrays, vectors included, may be unaligned). The encoders refuse to write
 * a frame that the decoders would reject: an encoded request or reply always
 * decodes back to the same fields.
 *
 * The engine's enum pm_status and the wire's 8-bit status codes are mapped in
 * exactly one switch, pm_wire_status(); pm_status_from_wire() is its inverse.
 *
 * This module depends only on libc and engine/{limits,status,request}.h, so the
 * client library compiles it as it is.
 */
#ifndef POMAI_DATAPLANE_CODEC_H
#define POMAI_DATAPLANE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pm_limits.h"
#include "request.h"
#include "status.h"

/* ---------------------------------------------------------------- header */

#define PM_FRAME_MAGIC 0x4D50u /* bytes 'P' 'M' on the wire */
#define PM_FRAME_VERSION 1u
/* Byte of the header holding a reply's wire status (docs/protocol.md §3). */
#define PM_FRAME_STATUS_OFFSET 5u

/* Header opcodes (byte 3). PM_OPCODE_NONE only appears in an error reply to a
 * request whose opcode or sub-op could not be decoded. */
#define PM_OPCODE_NONE 0u
#define PM_OPCODE_SET 'S'
#define PM_OPCODE_GET 'G'
#define PM_OPCODE_DEL 'D'
#define PM_OPCODE_INFO 'I'
#define PM_OPCODE_SNAPSHOT 'P' /* empty body; the reply is its status only */
#define PM_OPCODE_VECTOR 'V'

/* Sub-ops: the first body byte of every 'V' request and reply. */
#define PM_VOP_ADD 'A'
#define PM_VOP_GET 'G'
#define PM_VOP_DEL 'D'
#define PM_VOP_QUERY 'Q'
#define PM_VOP_CREATE 'C'
#define PM_VOP_DROP 'X'
#define PM_VOP_LIST 'L'

/* Request flags (byte 4). */
#define PM_FLAG_TTL 0x01u   /* SET, VADD: a u64 ttl_ms trailer follows */
#define PM_FLAG_COLL 0x02u  /* VADD, VQUERY: a u32 len + collection name trailer */
#define PM_FLAG_EF 0x04u    /* VQUERY: a u32 ef trailer */
#define PM_FLAG_EXACT 0x08u /* VQUERY: exact search; no payload */
/* Reply flags (byte 4). */
#define PM_FLAG_MORE 0x40u  /* VQUERY, CLIST: another frame with this id follows */
#define PM_FLAG_REPLY 0x80u /* set on every reply, never on a request */

/* Wire size of one KNN hit and of one CLIST entry (with coll_flags), without
 * their names. */
#define PM_WIRE_HIT_BYTES_FIXED (4u + 4u)
#define PM_WIRE_COLL_BYTES_FIXED (4u + 4u + 1u + 1u + 2u + 4u + 4u + 1u + 8u + 8u)

/* Wire status code of an unknown or internal error (and of any enum value that
 * has no code of its own). pm_status_from_wire() maps it to PM_E_INTERNAL. */
#define PM_WIRE_STATUS_UNKNOWN 255u

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
 * PM_E_FRAME_TRUNCATED, _MAGIC, _VERSION or _TOO_BIG when the frame's extent is
 * unknown (nothing after it can be parsed), PM_E_FRAME_FLAGS when a reserved
 * field is nonzero (the extent is known: 24 + body_len), else PM_OK. */
enum pm_status pm_header_decode(const uint8_t *buf, size_t len, struct pm_frame_header *h);

/* Write the 24-byte header (magic, reserved fields zero). */
void pm_header_encode(const struct pm_frame_header *h, uint8_t out[PM_FRAME_HEADER_BYTES]);

/* True when a status from pm_header_decode() still lets the caller skip the frame
 * (24 + body_len bytes) and go on to the next one. */
bool pm_header_usable(enum pm_status st);

/* True when the bytes at buf start a frame with the magic and the REPLY flag,
 * whatever else its header holds (a wrong version, an impossible length): a
 * server never answers one (docs/protocol.md §6.5), so two servers, or a
 * server and a spoofed copy of itself, can never keep each other busy. */
bool pm_frame_is_reply(const uint8_t *buf, size_t len);

/* ---------------------------------------------------------------- requests */

/* Server side. Decode one request frame at the start of buf. *req is zeroed, then
 * filled; its pointers point into buf. *used is set to 24 + body_len when the
 * header was usable, else 0 (drop the rest of the datagram); req->id and req->op
 * are filled whenever *used != 0, even if the body is invalid, so that an error
 * reply can be sent (req->op is PM_OP_NONE for an unknown opcode or sub-op). */
enum pm_status pm_request_decode(const uint8_t *buf, size_t len, struct pm_request *req,
				 size_t *used);

/* Client side. Encode req (op, id and the fields its op uses) into out. Flags are
 * derived from the fields: TTL from has_ttl, COLL from collection.len != 0, EF
 * from ef != 0, EXACT from exact. Returns bytes written, or 0 when the frame does
 * not fit cap (or PM_FRAME_BYTES_MAX) or a field breaks a limit; out's contents
 * are then unspecified. */
size_t pm_request_encode(const struct pm_request *req, uint8_t *out, size_t cap);

/* ---------------------------------------------------------------- replies */

/* Server side. Encode one frame of the reply to rep->op / rep->id. A reply whose
 * status is not PM_OK has an empty body (only the sub-op byte for 'V' ops); an
 * error reply to op PM_OP_NONE has opcode PM_OPCODE_NONE. For VQUERY, CLIST and
 * INFO, *cursor is the index of the first hit / collection / text byte to write;
 * as many as fit are written (INFO: whole lines), *cursor is advanced past them
 * and the frame has MORE unless it holds the last one; call again while *cursor <
 * pm_reply_items(). An error reply is always one frame and sets *cursor to
 * pm_reply_items(), so that loop ends too. cursor may
 * be NULL, in which case everything must fit one frame. Returns bytes written, or
 * 0 (cursor unchanged) when cap is too small for the header and at least one
 * remaining item, or when a field breaks a limit. */
size_t pm_reply_encode(const struct pm_reply *rep, uint32_t *cursor, uint8_t *out, size_t cap);

/* Items a paged reply carries: VQUERY hits, CLIST entries, INFO text bytes. */
uint32_t pm_reply_items(const struct pm_reply *rep);

/* Whether rep may take several frames (a successful VQUERY, CLIST or INFO). */
bool pm_reply_paged(const struct pm_reply *rep);

/* Server side. A THROTTLED reply to op / id: its body (after the sub-op byte
 * of 'V' ops) is a u32 retry hint, the milliseconds until the client's quota
 * admits a request again (docs/protocol.md §6.3). pm_reply_encode() writes a
 * THROTTLED reply with hint 0 (none). Bytes written, or 0 if cap is too small. */
size_t pm_reply_encode_throttled(uint8_t op, uint64_t id, uint32_t retry_ms, uint8_t *out,
				 size_t cap);

/* Client side: one decoded reply frame. Pointers point into the frame. The body
 * is validated completely by pm_reply_decode(), so the iterators cannot run past
 * it. */
struct pm_reply_view {
	uint64_t id;
	enum pm_status status;      /* the server's result; PM_E_INTERNAL if unknown */
	uint8_t op;                 /* enum pm_op; PM_OP_NONE: request was undecodable */
	bool more;                  /* MORE: the reply continues in the next frame */
	uint32_t first;             /* VQUERY / CLIST: index of this frame's first item;
				       INFO: offset of this frame's text in the whole text */
	uint32_t removed;           /* DEL, VDEL, CDROP */
	struct pm_bytes value;      /* GET value; INFO text; VGET raw LE f32 bytes */
	uint32_t dim;               /* VGET */
	uint8_t dtype;              /* VGET: enum pm_dtype */
	struct pm_bytes collection; /* VGET: the vector's collection; len 0 = default */
	uint32_t count;             /* VQUERY hits / CLIST entries / INFO text bytes in
				       this frame */
	uint32_t retry_ms;          /* THROTTLED: ms until the quota admits a request; 0 none */
	/* iterator state; private */
	uint8_t list_flags;         /* CLIST: the entries' layout */
	const uint8_t *it_pos;
	uint32_t it_left;
};

/* Decode one reply frame at the start of buf; *used as for pm_request_decode().
 * Returns the decoding result; the server's result is rv->status. CLIST
 * entries are read with coll_flags (the reply to a request with
 * PM_CLIST_COLL_FLAGS, which every request this codec encodes for a client
 * has). */
enum pm_status pm_reply_decode(const uint8_t *buf, size_t len, struct pm_reply_view *rv,
			       size_t *used);

/* pm_reply_decode() of the reply to a CLIST request with list_flags (0: the
 * entries of clients built before coll_flags; docs/protocol.md 10). */
enum pm_status pm_reply_decode_list(const uint8_t *buf, size_t len, uint8_t list_flags,
				    struct pm_reply_view *rv, size_t *used);

/* Next VQUERY hit of this frame (key points into the frame), or false when done. */
bool pm_reply_next_hit(struct pm_reply_view *rv, struct pm_bytes *key, float *dist);

/* Next CLIST entry of this frame (name points into the frame), or false when done. */
bool pm_reply_next_coll(struct pm_reply_view *rv, struct pm_coll_info *ci);

/* ---------------------------------------------------------------- status codes */

/* The stable wire code of an engine status (docs/protocol.md has the table). */
uint8_t pm_wire_status(enum pm_status st);

/* The engine status of a wire code; PM_E_INTERNAL for 255 and unassigned codes. */
enum pm_status pm_status_from_wire(uint8_t code);

/* The wire opcode and sub-op (0 if none) of an op; false for PM_OP_NONE / unknown. */
bool pm_op_wire(uint8_t op, uint8_t *opcode, uint8_t *subop);

#endif
