/* SPDX-License-Identifier: MIT
 *
 * campaign_cases.h — the bad-input campaign's case table (issue 8): one row per
 * crafted request frame, every field of every frame type at its limit, one past
 * it, zero, negative when read as signed, and with lengths that disagree with
 * the datagram, each with the outcome docs/protocol.md promises for it (a reply
 * with a given status; or no reply and one more dropped_malformed; or both).
 *
 * A row describes its frame as data: the header's opcode and flags, the body as
 * a list of fields (cf_* below), then patches of header bytes and cuts or
 * additions to the datagram, applied after the body length is filled in. The
 * frame is built by campaign_build(); test_campaign.c sends it over UDP, TCP and
 * the DPDK backend and checks the outcome. docs/protocol.md §11 is the same
 * table in prose.
 */
#ifndef POMAI_TESTS_CAMPAIGN_CASES_H
#define POMAI_TESTS_CAMPAIGN_CASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Collections and keys the cases refer to; test_campaign.c makes them first. */
#define CAMP_COS "camp-cos"     /* cosine, flat, dim 3 */
#define CAMP_HNSW "camp-hnsw"   /* L2, HNSW, dim 4 */
#define CAMP_KV_KEY "camp-kv"   /* a KV key */
#define CAMP_VEC_KEY "camp-vec" /* a vector of the default collection of dim 4 */
#define CAMP_VEC_DIM 4u

/* Header patches and body fields a row holds at most. */
#define CAMP_PATCHES_MAX 2u
#define CAMP_FIELDS_MAX 14u /* a whole CCREATE with the element type fields and one byte more */
/* Largest datagram a row builds: a whole frame plus what a row appends. */
#define CAMP_DATAGRAM_BYTES_MAX (65536u + 64u)

enum cf_kind { CF_END = 0, CF_U8, CF_U16, CF_U32, CF_U64, CF_F32, CF_BYTES, CF_VEC };

/* One body field: a little-endian integer, an f32, n bytes (of s, or n times the
 * byte v), or n f32 of value f. */
struct cf {
	uint8_t kind;
	uint32_t n;
	uint64_t v;
	float f;
	const char *s;
};

#define CF_U8(x) { .kind = CF_U8, .v = (x) }
#define CF_U16(x) { .kind = CF_U16, .v = (x) }
#define CF_U32(x) { .kind = CF_U32, .v = (x) }
#define CF_U64(x) { .kind = CF_U64, .v = (x) }
#define CF_F32(x) { .kind = CF_F32, .f = (x) }
#define CF_BYTES(count, byte) { .kind = CF_BYTES, .n = (count), .v = (byte) }
#define CF_VEC(count, value) { .kind = CF_VEC, .n = (count), .f = (value) }
/* A key or name: its u32 length, then its bytes. */
#define CF_STR(str) CF_U32(sizeof(str) - 1), { .kind = CF_BYTES, .n = sizeof(str) - 1, .s = (str) }

/* Overwrite `bytes` (1, 2 or 4) header bytes at `off` with v, little-endian. */
struct camp_patch {
	uint8_t off, bytes;
	uint32_t v;
};

/* What the server does with the datagram (or stream bytes). */
enum camp_expect {
	CX_REPLY = 1,   /* a reply with `status` for the frame's id */
	CX_DROP,        /* no reply; dropped_malformed + 1 (TCP: the connection is closed) */
	CX_REPLY_DROP,  /* a reply with `status`, and dropped_malformed + 1 (TCP: then closed) */
	CX_IGNORE,      /* a reply frame: no reply; dropped_reply + 1; the rest is served
			 * (TCP: the stream goes on) — docs/protocol.md §6.5 */
};

/* How the row behaves over a stream, where there is no datagram boundary. */
enum camp_stream {
	CS_SAME = 0,    /* as over UDP */
	CS_SKIP,        /* datagram-only: the cut or the extra bytes mean another thing
			 * on a stream (the half-open test covers a short frame) */
};

struct camp_case {
	const char *name;
	uint8_t opcode, flags;
	struct cf body[CAMP_FIELDS_MAX];
	struct camp_patch patch[CAMP_PATCHES_MAX];
	uint32_t cut;        /* bytes removed from the end of the datagram */
	uint32_t extra;      /* junk bytes appended after the frame */
	bool then_get;       /* a valid GET frame (id + 1) follows in the same datagram */
	enum camp_expect expect;
	enum pm_status status;
	enum camp_stream stream;
	bool reads_big;      /* reads what a row larger than the DPDK backend reassembles
			      * wrote: NOT_FOUND there */
};

extern const struct camp_case campaign_cases[];
extern const size_t campaign_cases_count;

/* Build row c's datagram with request id `id` into out (CAMP_DATAGRAM_BYTES_MAX);
 * its length. */
size_t campaign_build(const struct camp_case *c, uint64_t id, uint8_t *out);

#endif
