/* SPDX-License-Identifier: MIT
 *
 * campaign_cases.c — the rows of the bad-input campaign (campaign_cases.h) and
 * the builder that turns a row into a datagram. The expected outcomes are those
 * of docs/protocol.md §3.1 (header checks), §5.1 (body checks), §2.2 (frames of
 * a datagram) and §6.3 (what is answered); the state-dependent ones (NOT_FOUND,
 * WRONGTYPE, EXISTS) assume the keys and collections test_campaign.c makes
 * first, and rows run in table order.
 */
#include "campaign_cases.h"

#include <string.h>

#include "bytes.h"
#include "bridge.h"

/* A frame the builder can start from without a body: the header alone. */
#define HDR_BYTES PM_FRAME_HEADER_BYTES
/* Key of a GET appended by then_get rows; never set. */
#define ABSENT "camp-absent"
/* Junk byte of `extra` rows. */
#define JUNK_BYTE 0xA5u

#define FLAGS_NONE 0u
#define KMAX PM_KEY_BYTES_MAX
#define VMAX PM_VALUE_BYTES_MAX
#define DMAX PM_DIM_MAX
#define KNN_MAX PM_K_MAX
#define EFMAX PM_EF_MAX
#define NMAX PM_COLLECTION_NAME_BYTES_MAX
#define TTLMAX PM_TTL_MS_MAX
/* The largest body_len a header may carry. */
#define BODY_MAX (PM_FRAME_BYTES_MAX - PM_FRAME_HEADER_BYTES)

/* A row answered with status st. */
#define R(nm, opc, fl, st, ...)                                                                  \
	{ .name = (nm), .opcode = (opc), .flags = (fl), .expect = CX_REPLY, .status = (st),       \
	  .body = { __VA_ARGS__ } }

#define OK PM_OK
#define S PM_OPCODE_SET
#define G PM_OPCODE_GET
#define D PM_OPCODE_DEL
#define I PM_OPCODE_INFO
#define P PM_OPCODE_SNAPSHOT
#define V PM_OPCODE_VECTOR
#define SUB(x) CF_U8(x)
#define KEY_K CF_STR("k")
#define U32 CF_U32
#define U64 CF_U64
#define U8 CF_U8
#define U16 CF_U16
#define BYTES CF_BYTES
#define VEC CF_VEC
#define NAN_F __builtin_nanf("")
#define INF_F __builtin_inff()

/* CCREATE body: name, dim, metric, index, hnsw_m, ef_construction, ef_search, flags. */
#define CC(name, dim, metric, index, m, efc, efs, fl)                                             \
	SUB(PM_VOP_CREATE), CF_STR(name), U32(dim), U8(metric), U8(index), U16(m), U32(efc),     \
		U32(efs), U8(fl)
#define CC_NLEN(nlen, dim) SUB(PM_VOP_CREATE), U32(nlen), BYTES(nlen, 'n'), U32(dim), U8(0),       \
		U8(0), U16(0), U32(0), U32(0), U8(0)

const struct camp_case campaign_cases[] = {
	/* ------------------------------------------------ header (§3.1), datagram (§2.2) */
	{ .name = "empty datagram", .opcode = G, .body = { KEY_K }, .cut = HDR_BYTES + 5,
	  .expect = CX_DROP, .stream = CS_SKIP },
	{ .name = "1 byte", .opcode = G, .body = { KEY_K }, .cut = HDR_BYTES + 4, .expect = CX_DROP,
	  .stream = CS_SKIP },
	{ .name = "23 bytes: header one short", .opcode = G, .body = { KEY_K }, .cut = 6,
	  .expect = CX_DROP, .stream = CS_SKIP },
	{ .name = "magic 0", .opcode = G, .body = { KEY_K }, .patch = { { 0, 2, 0 } },
	  .expect = CX_DROP },
	{ .name = "magic byte-swapped", .opcode = G, .body = { KEY_K },
	  .patch = { { 0, 2, 0x504D } }, .expect = CX_DROP },
	{ .name = "version 0", .opcode = G, .body = { KEY_K }, .patch = { { 2, 1, 0 } },
	  .expect = CX_REPLY_DROP, .status = PM_E_FRAME_VERSION },
	{ .name = "version 2", .opcode = G, .body = { KEY_K }, .patch = { { 2, 1, 2 } },
	  .expect = CX_REPLY_DROP, .status = PM_E_FRAME_VERSION },
	{ .name = "version 255", .opcode = G, .body = { KEY_K }, .patch = { { 2, 1, 255 } },
	  .expect = CX_REPLY_DROP, .status = PM_E_FRAME_VERSION },
	{ .name = "body_len one past the frame limit", .opcode = G, .body = { KEY_K },
	  .patch = { { 16, 4, BODY_MAX + 1 } }, .expect = CX_REPLY_DROP,
	  .status = PM_E_FRAME_TOO_BIG },
	{ .name = "body_len 0xFFFFFFFF (-1 signed)", .opcode = G, .body = { KEY_K },
	  .patch = { { 16, 4, UINT32_MAX } }, .expect = CX_REPLY_DROP,
	  .status = PM_E_FRAME_TOO_BIG },
	{ .name = "body_len 0x80000000 (INT32_MIN)", .opcode = G, .body = { KEY_K },
	  .patch = { { 16, 4, 0x80000000u } }, .expect = CX_REPLY_DROP,
	  .status = PM_E_FRAME_TOO_BIG },
	{ .name = "body_len one more than the datagram", .opcode = G, .body = { KEY_K },
	  .patch = { { 16, 4, 6 } }, .expect = CX_REPLY_DROP, .status = PM_E_FRAME_TRUNCATED,
	  .stream = CS_SKIP },
	{ .name = "body_len at the limit, datagram short", .opcode = G, .body = { KEY_K },
	  .patch = { { 16, 4, BODY_MAX } }, .expect = CX_REPLY_DROP,
	  .status = PM_E_FRAME_TRUNCATED, .stream = CS_SKIP },
	{ .name = "datagram cut inside the body", .opcode = G, .body = { KEY_K }, .cut = 1,
	  .expect = CX_REPLY_DROP, .status = PM_E_FRAME_TRUNCATED, .stream = CS_SKIP },
	{ .name = "body_len one less: last byte left over", .opcode = G, .body = { KEY_K },
	  .patch = { { 16, 4, 4 } }, .expect = CX_REPLY_DROP, .status = PM_E_FRAME_LENGTH,
	  .stream = CS_SKIP },
	{ .name = "body_len 0 with a body", .opcode = G, .body = { KEY_K },
	  .patch = { { 16, 4, 0 } }, .expect = CX_REPLY_DROP, .status = PM_E_FRAME_LENGTH,
	  .stream = CS_SKIP },
	{ .name = "junk shorter than a header after a frame", .opcode = G, .body = { CF_STR(ABSENT) },
	  .extra = HDR_BYTES - 1, .expect = CX_REPLY_DROP, .status = PM_NOT_FOUND,
	  .stream = CS_SKIP },
	{ .name = "a frame after a frame with a bad body", .opcode = G, .body = { U32(0) },
	  .then_get = true, .expect = CX_REPLY, .status = PM_E_KEY_LEN },
	{ .name = "reserved 1", .opcode = G, .body = { KEY_K }, .patch = { { 6, 2, 1 } },
	  .expect = CX_REPLY, .status = PM_E_FRAME_FLAGS },
	{ .name = "reserved 0xFFFF", .opcode = G, .body = { KEY_K }, .patch = { { 6, 2, 0xFFFF } },
	  .expect = CX_REPLY, .status = PM_E_FRAME_FLAGS },
	{ .name = "status set in a request", .opcode = G, .body = { KEY_K },
	  .patch = { { 5, 1, 1 } }, .expect = CX_REPLY, .status = PM_E_FRAME_FLAGS },
	{ .name = "status 255 in a request", .opcode = G, .body = { KEY_K },
	  .patch = { { 5, 1, 255 } }, .expect = CX_REPLY, .status = PM_E_FRAME_FLAGS },
	{ .name = "first 1 in a request", .opcode = G, .body = { KEY_K },
	  .patch = { { 20, 4, 1 } }, .expect = CX_REPLY, .status = PM_E_FRAME_FLAGS },
	{ .name = "first 0xFFFFFFFF in a request", .opcode = G, .body = { KEY_K },
	  .patch = { { 20, 4, UINT32_MAX } }, .expect = CX_REPLY, .status = PM_E_FRAME_FLAGS },
	/* a reply is never answered (docs/protocol.md §6.5): no ping-pong between servers */
	{ .name = "REPLY flag on a request", .opcode = G, .flags = PM_FLAG_REPLY,
	  .body = { KEY_K }, .then_get = true, .expect = CX_IGNORE },
	{ .name = "every flag", .opcode = G, .flags = 0xFF, .body = { KEY_K }, .then_get = true,
	  .expect = CX_IGNORE },
	{ .name = "an error reply (REPLY, status FRAME_FLAGS)", .opcode = G,
	  .flags = PM_FLAG_REPLY, .patch = { { 5, 1, PM_E_FRAME_FLAGS } }, .then_get = true,
	  .expect = CX_IGNORE },
	{ .name = "a THROTTLED reply with its hint", .opcode = G, .flags = PM_FLAG_REPLY,
	  .body = { U32(5) }, .patch = { { 5, 1, PM_E_THROTTLED } }, .then_get = true,
	  .expect = CX_IGNORE },
	{ .name = "REPLY|MORE, a page of a VQUERY reply", .opcode = V,
	  .flags = PM_FLAG_REPLY | PM_FLAG_MORE, .body = { SUB('Q'), U32(0) }, .then_get = true,
	  .expect = CX_IGNORE },
	{ .name = "a reply of another version", .opcode = G, .flags = PM_FLAG_REPLY,
	  .body = { KEY_K }, .patch = { { 2, 1, 2 } }, .expect = CX_DROP },
	R("MORE flag on a request", G, PM_FLAG_MORE, PM_E_FRAME_FLAGS, KEY_K),
	R("undefined flag 0x10", G, 0x10, PM_E_FRAME_FLAGS, KEY_K),
	R("AUTH flag without its trailer", G, PM_FLAG_AUTH, PM_E_FRAME_LENGTH, KEY_K),
	R("AUTH flag on AUTH HELLO", PM_OPCODE_AUTH, PM_FLAG_AUTH, PM_E_FRAME_FLAGS, SUB('H'),
	  BYTES(PM_AUTH_TRAILER_BYTES, 0)),
	R("every flag but REPLY", G, 0x7F, PM_E_FRAME_FLAGS, KEY_K),
	R("TTL flag on GET", G, PM_FLAG_TTL, PM_E_FRAME_FLAGS, KEY_K, U64(1000)),
	R("COLL flag on SET", S, PM_FLAG_COLL, PM_E_FRAME_FLAGS, KEY_K, CF_STR("v"), CF_STR("c")),
	R("EF flag on VADD", V, PM_FLAG_EF, PM_E_FRAME_FLAGS, SUB('A'), KEY_K, U32(1), VEC(1, 1),
	  U32(10)),
	R("EXACT flag on CCREATE", V, PM_FLAG_EXACT, PM_E_FRAME_FLAGS,
	  CC("camp-x", 4, 0, 0, 0, 0, 0, 0)),
	R("opcode 0", 0, FLAGS_NONE, PM_E_FRAME_OPCODE, KEY_K),
	R("opcode 'Z'", 'Z', FLAGS_NONE, PM_E_FRAME_OPCODE, KEY_K),
	R("opcode 0xFF", 0xFF, FLAGS_NONE, PM_E_FRAME_OPCODE, KEY_K),
	R("opcode 's' (lower case)", 's', FLAGS_NONE, PM_E_FRAME_OPCODE, KEY_K, CF_STR("v")),
	R("unknown opcode with an undefined flag", 'Z', 0x10, PM_E_FRAME_OPCODE, KEY_K),
	R("'V' with an empty body", V, FLAGS_NONE, PM_E_FRAME_LENGTH, { .kind = CF_END }),
	R("'V' sub-op 'Z'", V, FLAGS_NONE, PM_E_FRAME_OPCODE, SUB('Z'), KEY_K),
	R("'V' sub-op 0", V, FLAGS_NONE, PM_E_FRAME_OPCODE, SUB(0)),

	/* ------------------------------------------------ SET (§5.1) */
	R("SET empty body", S, FLAGS_NONE, PM_E_FRAME_LENGTH, { .kind = CF_END }),
	R("SET klen 0", S, FLAGS_NONE, PM_E_KEY_LEN, U32(0), CF_STR("v")),
	R("SET klen 1", S, FLAGS_NONE, OK, CF_STR("s"), CF_STR("v")),
	R("SET klen max", S, FLAGS_NONE, OK, U32(KMAX), BYTES(KMAX, 'K'), CF_STR("v")),
	R("SET klen max+1", S, FLAGS_NONE, PM_E_KEY_LEN, U32(KMAX + 1), BYTES(KMAX + 1, 'K'),
	  CF_STR("v")),
	R("SET klen 0xFFFFFFFF", S, FLAGS_NONE, PM_E_KEY_LEN, U32(UINT32_MAX), BYTES(8, 'K')),
	R("SET klen 0x80000000", S, FLAGS_NONE, PM_E_KEY_LEN, U32(0x80000000u), BYTES(8, 'K')),
	R("SET klen past the body", S, FLAGS_NONE, PM_E_FRAME_LENGTH, U32(10), BYTES(3, 'k')),
	R("SET klen field cut", S, FLAGS_NONE, PM_E_FRAME_LENGTH, U16(1)),
	R("SET without vlen", S, FLAGS_NONE, PM_E_FRAME_LENGTH, CF_STR("s")),
	R("SET vlen 0", S, FLAGS_NONE, OK, CF_STR("s0"), U32(0)),
	R("SET vlen max", S, FLAGS_NONE, OK, CF_STR("smax"), U32(VMAX), BYTES(VMAX, 'v')),
	R("SET vlen max+1", S, FLAGS_NONE, PM_E_VALUE_LEN, CF_STR("s"), U32(VMAX + 1),
	  BYTES(VMAX + 1, 'v')),
	R("SET vlen 0xFFFFFFFF", S, FLAGS_NONE, PM_E_VALUE_LEN, CF_STR("s"), U32(UINT32_MAX)),
	R("SET vlen past the body", S, FLAGS_NONE, PM_E_FRAME_LENGTH, CF_STR("s"), U32(100),
	  BYTES(10, 'v')),
	R("SET ttl 0", S, PM_FLAG_TTL, PM_E_TTL, CF_STR("st"), CF_STR("v"), U64(0)),
	R("SET ttl 1", S, PM_FLAG_TTL, OK, CF_STR("st"), CF_STR("v"), U64(1)),
	R("SET ttl max", S, PM_FLAG_TTL, OK, CF_STR("st"), CF_STR("v"), U64(TTLMAX)),
	R("SET ttl max+1", S, PM_FLAG_TTL, PM_E_TTL, CF_STR("st"), CF_STR("v"), U64(TTLMAX + 1)),
	R("SET ttl 2^63 (negative signed)", S, PM_FLAG_TTL, PM_E_TTL, CF_STR("st"), CF_STR("v"),
	  U64(UINT64_C(1) << 63)),
	R("SET ttl 0xFFFF..FF (-1 signed)", S, PM_FLAG_TTL, PM_E_TTL, CF_STR("st"), CF_STR("v"),
	  U64(UINT64_MAX)),
	R("SET TTL flag, no ttl", S, PM_FLAG_TTL, PM_E_FRAME_LENGTH, CF_STR("st"), CF_STR("v")),
	R("SET TTL flag, 4-byte ttl", S, PM_FLAG_TTL, PM_E_FRAME_LENGTH, CF_STR("st"), CF_STR("v"),
	  U32(1000)),
	R("SET ttl without the flag", S, FLAGS_NONE, PM_E_FRAME_LENGTH, CF_STR("st"), CF_STR("v"),
	  U64(1000)),
	R("SET trailing byte", S, FLAGS_NONE, PM_E_FRAME_LENGTH, CF_STR("s"), CF_STR("v"), U8(0)),
	R("SET over a vector key", S, FLAGS_NONE, PM_E_WRONGTYPE, CF_STR(CAMP_VEC_KEY), CF_STR("v")),

	/* ------------------------------------------------ GET, DEL */
	R("GET empty body", G, FLAGS_NONE, PM_E_FRAME_LENGTH, { .kind = CF_END }),
	R("GET klen field cut", G, FLAGS_NONE, PM_E_FRAME_LENGTH, U16(1), U8(0)),
	R("GET klen 0", G, FLAGS_NONE, PM_E_KEY_LEN, U32(0)),
	R("GET klen 1", G, FLAGS_NONE, OK, CF_STR("s")),
	R("GET klen max", G, FLAGS_NONE, OK, U32(KMAX), BYTES(KMAX, 'K')),
	R("GET klen max, absent", G, FLAGS_NONE, PM_NOT_FOUND, U32(KMAX), BYTES(KMAX, 'A')),
	R("GET klen max+1", G, FLAGS_NONE, PM_E_KEY_LEN, U32(KMAX + 1), BYTES(KMAX + 1, 'K')),
	R("GET klen 0xFFFFFFFF", G, FLAGS_NONE, PM_E_KEY_LEN, U32(UINT32_MAX)),
	R("GET klen past the body", G, FLAGS_NONE, PM_E_FRAME_LENGTH, U32(KMAX), BYTES(10, 'k')),
	R("GET trailing byte", G, FLAGS_NONE, PM_E_FRAME_LENGTH, CF_STR("s"), U8(0)),
	{ .name = "GET value of max size", .opcode = G, .body = { CF_STR("smax") },
	  .expect = CX_REPLY, .status = OK, .reads_big = true },
	R("GET a vector key", G, FLAGS_NONE, PM_E_WRONGTYPE, CF_STR(CAMP_VEC_KEY)),
	R("DEL empty body", D, FLAGS_NONE, PM_E_FRAME_LENGTH, { .kind = CF_END }),
	R("DEL klen 0", D, FLAGS_NONE, PM_E_KEY_LEN, U32(0)),
	R("DEL klen max+1", D, FLAGS_NONE, PM_E_KEY_LEN, U32(KMAX + 1), BYTES(KMAX + 1, 'K')),
	R("DEL klen 0xFFFFFFFF", D, FLAGS_NONE, PM_E_KEY_LEN, U32(UINT32_MAX)),
	R("DEL absent key", D, FLAGS_NONE, OK, CF_STR(ABSENT)),
	R("DEL klen max", D, FLAGS_NONE, OK, U32(KMAX), BYTES(KMAX, 'K')),
	R("DEL trailing byte", D, FLAGS_NONE, PM_E_FRAME_LENGTH, CF_STR("s"), U8(0)),
	R("VADD a key DEL removes", V, FLAGS_NONE, OK, SUB('A'), CF_STR("camp-vdel"), U32(4),
	  VEC(4, 1)),
	R("DEL a vector key (DEL removes either kind)", D, FLAGS_NONE, OK, CF_STR("camp-vdel")),

	/* ------------------------------------------------ INFO, SNAPSHOT */
	R("INFO empty body", I, FLAGS_NONE, OK, { .kind = CF_END }),
	R("INFO section", I, FLAGS_NONE, OK, CF_STR("memory")),
	R("INFO section len 0", I, FLAGS_NONE, PM_E_PARAM, U32(0)),
	/* a name of the longest length decodes (test_codec checks the bound);
	 * pomaid has no such section, so it answers PARAM (issue 21) */
	R("INFO section len max", I, FLAGS_NONE, PM_E_PARAM, U32(PM_INFO_SECTION_BYTES_MAX),
	  BYTES(PM_INFO_SECTION_BYTES_MAX, 'i')),
	R("INFO section unknown", I, FLAGS_NONE, PM_E_PARAM, CF_STR("nosuchsection")),
	R("INFO section any case", I, FLAGS_NONE, OK, CF_STR("KeySpace")),
	R("INFO section len max+1", I, FLAGS_NONE, PM_E_PARAM, U32(PM_INFO_SECTION_BYTES_MAX + 1),
	  BYTES(PM_INFO_SECTION_BYTES_MAX + 1, 'i')),
	R("INFO section len 0xFFFFFFFF", I, FLAGS_NONE, PM_E_PARAM, U32(UINT32_MAX)),
	R("INFO section len past the body", I, FLAGS_NONE, PM_E_FRAME_LENGTH, U32(10),
	  BYTES(3, 'i')),
	R("INFO 2-byte body", I, FLAGS_NONE, PM_E_FRAME_LENGTH, U16(6)),
	R("INFO info_flags 0", I, FLAGS_NONE, OK, CF_STR("memory"), U8(0)),
	R("INFO info_flags PAGED", I, FLAGS_NONE, OK, CF_STR("memory"), U8(PM_INFO_PAGED)),
	R("INFO info_flags alone", I, FLAGS_NONE, OK, U8(PM_INFO_PAGED)),
	R("INFO info_flags 0x02", I, FLAGS_NONE, PM_E_PARAM, CF_STR("memory"), U8(0x02)),
	R("INFO info_flags 0xFF", I, FLAGS_NONE, PM_E_PARAM, U8(0xFF)),
	R("INFO trailing byte", I, FLAGS_NONE, PM_E_FRAME_LENGTH, CF_STR("memory"), U8(0), U8(0)),
	R("SNAPSHOT with the log off", P, FLAGS_NONE, PM_E_PARAM, { .kind = CF_END }),
	R("SNAPSHOT with a body byte", P, FLAGS_NONE, PM_E_FRAME_LENGTH, U8(0)),
	R("SNAPSHOT with a flag", P, PM_FLAG_TTL, PM_E_FRAME_FLAGS, U64(5)),

	/* ------------------------------------------------ VADD */
	R("VADD dim 0", V, FLAGS_NONE, PM_E_DIM, SUB('A'), CF_STR("va"), U32(0)),
	R("VADD dim 1", V, FLAGS_NONE, OK, SUB('A'), CF_STR("va1"), U32(1), VEC(1, 1)),
	R("VADD dim max", V, FLAGS_NONE, OK, SUB('A'), CF_STR("vamax"), U32(DMAX), VEC(DMAX, 0.5f)),
	R("VADD dim max+1", V, FLAGS_NONE, PM_E_DIM, SUB('A'), CF_STR("va"), U32(DMAX + 1),
	  VEC(DMAX + 1, 0.5f)),
	R("VADD dim 0xFFFFFFFF", V, FLAGS_NONE, PM_E_DIM, SUB('A'), CF_STR("va"), U32(UINT32_MAX),
	  VEC(4, 1)),
	R("VADD dim 0x40000000 (4 x dim wraps)", V, FLAGS_NONE, PM_E_DIM, SUB('A'), CF_STR("va"),
	  U32(0x40000000u), VEC(4, 1)),
	R("VADD dim 0x80000000", V, FLAGS_NONE, PM_E_DIM, SUB('A'), CF_STR("va"), U32(0x80000000u),
	  VEC(4, 1)),
	R("VADD fewer components than dim", V, FLAGS_NONE, PM_E_FRAME_LENGTH, SUB('A'),
	  CF_STR("va"), U32(4), VEC(3, 1)),
	R("VADD no dim", V, FLAGS_NONE, PM_E_FRAME_LENGTH, SUB('A'), CF_STR("va")),
	R("VADD NaN", V, FLAGS_NONE, PM_E_NAN, SUB('A'), CF_STR("va"), U32(4), VEC(3, 1),
	  CF_F32(NAN_F)),
	R("VADD +inf", V, FLAGS_NONE, PM_E_NAN, SUB('A'), CF_STR("va"), U32(4), CF_F32(INF_F),
	  VEC(3, 1)),
	R("VADD -inf", V, FLAGS_NONE, PM_E_NAN, SUB('A'), CF_STR("va"), U32(4), CF_F32(-INF_F),
	  VEC(3, 1)),
	R("VADD klen 0", V, FLAGS_NONE, PM_E_KEY_LEN, SUB('A'), U32(0), U32(4), VEC(4, 1)),
	R("VADD klen max+1", V, FLAGS_NONE, PM_E_KEY_LEN, SUB('A'), U32(KMAX + 1),
	  BYTES(KMAX + 1, 'k'), U32(4), VEC(4, 1)),
	R("VADD klen max", V, FLAGS_NONE, OK, SUB('A'), U32(KMAX), BYTES(KMAX, 'V'), U32(4),
	  VEC(4, 1)),
	R("VADD ttl 0", V, PM_FLAG_TTL, PM_E_TTL, SUB('A'), CF_STR("va"), U32(4), VEC(4, 1), U64(0)),
	R("VADD ttl max+1", V, PM_FLAG_TTL, PM_E_TTL, SUB('A'), CF_STR("va"), U32(4), VEC(4, 1),
	  U64(TTLMAX + 1)),
	R("VADD ttl max", V, PM_FLAG_TTL, OK, SUB('A'), CF_STR("vat"), U32(4), VEC(4, 1),
	  U64(TTLMAX)),
	R("VADD COLL nlen 0", V, PM_FLAG_COLL, PM_E_COLLECTION_NAME, SUB('A'), CF_STR("va"), U32(4),
	  VEC(4, 1), U32(0)),
	R("VADD COLL nlen max+1", V, PM_FLAG_COLL, PM_E_COLLECTION_NAME, SUB('A'), CF_STR("va"),
	  U32(4), VEC(4, 1), U32(NMAX + 1), BYTES(NMAX + 1, 'n')),
	R("VADD COLL nlen 0xFFFFFFFF", V, PM_FLAG_COLL, PM_E_COLLECTION_NAME, SUB('A'),
	  CF_STR("va"), U32(4), VEC(4, 1), U32(UINT32_MAX)),
	R("VADD COLL flag, no name", V, PM_FLAG_COLL, PM_E_FRAME_LENGTH, SUB('A'), CF_STR("va"),
	  U32(4), VEC(4, 1)),
	R("VADD COLL nlen max, absent", V, PM_FLAG_COLL, PM_NOT_FOUND, SUB('A'), CF_STR("va"),
	  U32(4), VEC(4, 1), U32(NMAX), BYTES(NMAX, 'a')),
	R("VADD zero vector, cosine", V, PM_FLAG_COLL, PM_E_ZERO_VECTOR, SUB('A'), CF_STR("va"),
	  U32(3), VEC(3, 0), CF_STR(CAMP_COS)),
	R("VADD dim not the collection's", V, PM_FLAG_COLL, PM_E_DIM, SUB('A'), CF_STR("va"),
	  U32(4), VEC(4, 1), CF_STR(CAMP_COS)),
	R("VADD TTL and COLL", V, PM_FLAG_TTL | PM_FLAG_COLL, OK, SUB('A'), CF_STR("vh"), U32(4),
	  VEC(4, 2), U64(60000), CF_STR(CAMP_HNSW)),
	R("VADD over a KV key", V, FLAGS_NONE, PM_E_WRONGTYPE, SUB('A'), CF_STR(CAMP_KV_KEY), U32(4),
	  VEC(4, 1)),
	R("VADD trailing byte", V, FLAGS_NONE, PM_E_FRAME_LENGTH, SUB('A'), CF_STR("va"), U32(1),
	  VEC(1, 1), U8(0)),
	/* attributes (docs/protocol.md 12) */
	R("VADD ATTR alen 0", V, PM_FLAG_ATTR, PM_E_ATTR, SUB('A'), CF_STR("va"), U32(4),
	  VEC(4, 1), U32(0)),
	R("VADD ATTR alen max+1", V, PM_FLAG_ATTR, PM_E_ATTR, SUB('A'), CF_STR("va"), U32(4),
	  VEC(4, 1), U32(PM_WIRE_ATTR_BYTES_MAX + 1), BYTES(PM_WIRE_ATTR_BYTES_MAX + 1, 0)),
	R("VADD ATTR fields missing", V, PM_FLAG_ATTR, PM_E_ATTR, SUB('A'), CF_STR("va"), U32(4),
	  VEC(4, 1), U32(1), U8(5)),
	R("VADD ATTR flag, no record", V, PM_FLAG_ATTR, PM_E_FRAME_LENGTH, SUB('A'), CF_STR("va"),
	  U32(4), VEC(4, 1)),
	R("VADD ATTR the empty record", V, PM_FLAG_ATTR, OK, SUB('A'), CF_STR("vattr"), U32(4),
	  VEC(4, 1), U32(1), U8(0)),
	R("VSETATTR absent key", V, FLAGS_NONE, PM_NOT_FOUND, SUB(PM_VOP_SETATTR), CF_STR(ABSENT),
	  U32(1), U8(0)),
	R("VSETATTR alen 0", V, FLAGS_NONE, PM_E_ATTR, SUB(PM_VOP_SETATTR), CF_STR("vattr"),
	  U32(0)),
	R("VSETATTR the empty record", V, FLAGS_NONE, OK, SUB(PM_VOP_SETATTR), CF_STR("vattr"),
	  U32(1), U8(0)),

	/* ------------------------------------------------ VGET, VDEL */
	R("VGET klen 0", V, FLAGS_NONE, PM_E_KEY_LEN, SUB('G'), U32(0)),
	R("VGET klen max+1", V, FLAGS_NONE, PM_E_KEY_LEN, SUB('G'), U32(KMAX + 1),
	  BYTES(KMAX + 1, 'k')),
	R("VGET klen max", V, FLAGS_NONE, OK, SUB('G'), U32(KMAX), BYTES(KMAX, 'V')),
	{ .name = "VGET dim max", .opcode = V, .body = { SUB('G'), CF_STR("vamax") },
	  .expect = CX_REPLY, .status = OK, .reads_big = true },
	R("VGET absent", V, FLAGS_NONE, PM_NOT_FOUND, SUB('G'), CF_STR(ABSENT)),
	R("VGET a KV key", V, FLAGS_NONE, PM_E_WRONGTYPE, SUB('G'), CF_STR(CAMP_KV_KEY)),
	R("VGET no key", V, FLAGS_NONE, PM_E_FRAME_LENGTH, SUB('G')),
	R("VGET trailing byte", V, FLAGS_NONE, PM_E_FRAME_LENGTH, SUB('G'), CF_STR(CAMP_VEC_KEY),
	  U8(0)),
	R("VDEL klen 0", V, FLAGS_NONE, PM_E_KEY_LEN, SUB('D'), U32(0)),
	R("VDEL klen 0xFFFFFFFF", V, FLAGS_NONE, PM_E_KEY_LEN, SUB('D'), U32(UINT32_MAX)),
	R("VDEL absent", V, FLAGS_NONE, OK, SUB('D'), CF_STR(ABSENT)),
	R("VDEL a KV key", V, FLAGS_NONE, PM_E_WRONGTYPE, SUB('D'), CF_STR(CAMP_KV_KEY)),
	R("VDEL klen max", V, FLAGS_NONE, OK, SUB('D'), U32(KMAX), BYTES(KMAX, 'V')),
	R("VDEL trailing byte", V, FLAGS_NONE, PM_E_FRAME_LENGTH, SUB('D'), CF_STR("va1"), U8(0)),

	/* ------------------------------------------------ VQUERY */
	R("VQUERY k 0", V, FLAGS_NONE, PM_E_K, SUB('Q'), U32(0), U32(4), VEC(4, 1)),
	R("VQUERY k 1", V, FLAGS_NONE, OK, SUB('Q'), U32(1), U32(4), VEC(4, 1)),
	R("VQUERY k max", V, FLAGS_NONE, OK, SUB('Q'), U32(KNN_MAX), U32(4), VEC(4, 1)),
	R("VQUERY k max+1", V, FLAGS_NONE, PM_E_K, SUB('Q'), U32(KNN_MAX + 1), U32(4), VEC(4, 1)),
	R("VQUERY k 0xFFFFFFFF", V, FLAGS_NONE, PM_E_K, SUB('Q'), U32(UINT32_MAX), U32(4),
	  VEC(4, 1)),
	R("VQUERY k 0x80000000", V, FLAGS_NONE, PM_E_K, SUB('Q'), U32(0x80000000u), U32(4),
	  VEC(4, 1)),
	R("VQUERY dim 0", V, FLAGS_NONE, PM_E_DIM, SUB('Q'), U32(1), U32(0)),
	R("VQUERY dim max+1", V, FLAGS_NONE, PM_E_DIM, SUB('Q'), U32(1), U32(DMAX + 1),
	  VEC(DMAX + 1, 1)),
	R("VQUERY dim 0xFFFFFFFF", V, FLAGS_NONE, PM_E_DIM, SUB('Q'), U32(1), U32(UINT32_MAX)),
	R("VQUERY dim max", V, FLAGS_NONE, OK, SUB('Q'), U32(1), U32(DMAX), VEC(DMAX, 0.5f)),
	R("VQUERY fewer components than dim", V, FLAGS_NONE, PM_E_FRAME_LENGTH, SUB('Q'), U32(1),
	  U32(4), VEC(3, 1)),
	R("VQUERY no default collection of dim: no hits", V, FLAGS_NONE, OK, SUB('Q'), U32(1),
	  U32(7), VEC(7, 1)),
	R("VQUERY NaN", V, FLAGS_NONE, PM_E_NAN, SUB('Q'), U32(1), U32(4), VEC(3, 1), CF_F32(NAN_F)),
	R("VQUERY ef = k", V, PM_FLAG_EF | PM_FLAG_COLL, OK, SUB('Q'), U32(8), U32(4), VEC(4, 1),
	  U32(8), CF_STR(CAMP_HNSW)),
	R("VQUERY ef = k - 1", V, PM_FLAG_EF | PM_FLAG_COLL, PM_E_EF, SUB('Q'), U32(8), U32(4),
	  VEC(4, 1), U32(7), CF_STR(CAMP_HNSW)),
	R("VQUERY ef 0 (default)", V, PM_FLAG_EF | PM_FLAG_COLL, OK, SUB('Q'), U32(8), U32(4),
	  VEC(4, 1), U32(0), CF_STR(CAMP_HNSW)),
	R("VQUERY ef max", V, PM_FLAG_EF | PM_FLAG_COLL, OK, SUB('Q'), U32(8), U32(4), VEC(4, 1),
	  U32(EFMAX), CF_STR(CAMP_HNSW)),
	R("VQUERY ef max+1", V, PM_FLAG_EF | PM_FLAG_COLL, PM_E_EF, SUB('Q'), U32(8), U32(4),
	  VEC(4, 1), U32(EFMAX + 1), CF_STR(CAMP_HNSW)),
	R("VQUERY ef 0xFFFFFFFF", V, PM_FLAG_EF, PM_E_EF, SUB('Q'), U32(8), U32(4), VEC(4, 1),
	  U32(UINT32_MAX)),
	R("VQUERY EF flag, no ef", V, PM_FLAG_EF, PM_E_FRAME_LENGTH, SUB('Q'), U32(8), U32(4),
	  VEC(4, 1)),
	R("VQUERY EXACT", V, PM_FLAG_EXACT | PM_FLAG_COLL, OK, SUB('Q'), U32(3), U32(4), VEC(4, 1),
	  CF_STR(CAMP_HNSW)),
	R("VQUERY EXACT and EF", V, PM_FLAG_EXACT | PM_FLAG_EF | PM_FLAG_COLL, OK, SUB('Q'), U32(3),
	  U32(4), VEC(4, 1), U32(100), CF_STR(CAMP_HNSW)),
	R("VQUERY COLL nlen 0", V, PM_FLAG_COLL, PM_E_COLLECTION_NAME, SUB('Q'), U32(1), U32(4),
	  VEC(4, 1), U32(0)),
	R("VQUERY COLL nlen max+1", V, PM_FLAG_COLL, PM_E_COLLECTION_NAME, SUB('Q'), U32(1), U32(4),
	  VEC(4, 1), U32(NMAX + 1), BYTES(NMAX + 1, 'n')),
	R("VQUERY COLL absent", V, PM_FLAG_COLL, PM_NOT_FOUND, SUB('Q'), U32(1), U32(4), VEC(4, 1),
	  CF_STR(ABSENT)),
	R("VQUERY dim not the collection's", V, PM_FLAG_COLL, PM_E_DIM, SUB('Q'), U32(1), U32(3),
	  VEC(3, 1), CF_STR(CAMP_HNSW)),
	R("VQUERY zero vector, cosine", V, PM_FLAG_COLL, PM_E_ZERO_VECTOR, SUB('Q'), U32(1), U32(3),
	  VEC(3, 0), CF_STR(CAMP_COS)),
	R("VQUERY trailing byte", V, FLAGS_NONE, PM_E_FRAME_LENGTH, SUB('Q'), U32(1), U32(4),
	  VEC(4, 1), U8(0)),
	R("VQUERY FILTER flen 0", V, PM_FLAG_FILTER, PM_E_FILTER, SUB('Q'), U32(1), U32(4),
	  VEC(4, 1), U32(0)),
	R("VQUERY FILTER flen max+1", V, PM_FLAG_FILTER, PM_E_FILTER, SUB('Q'), U32(1), U32(4),
	  VEC(4, 1), U32(PM_WIRE_FILTER_BYTES_MAX + 1), BYTES(PM_WIRE_FILTER_BYTES_MAX + 1, ' ')),
	R("VQUERY FILTER malformed", V, PM_FLAG_FILTER | PM_FLAG_COLL, PM_E_FILTER, SUB('Q'), U32(1),
	  U32(4), VEC(4, 1), CF_STR(CAMP_HNSW), CF_STR("x = ")),
	R("VQUERY FILTER well formed", V, PM_FLAG_FILTER | PM_FLAG_COLL, OK, SUB('Q'), U32(1),
	  U32(4), VEC(4, 1), CF_STR(CAMP_HNSW), CF_STR("not x = 1")),

	/* ------------------------------------------------ CCREATE, CDROP, CLIST */
	R("CCREATE", V, FLAGS_NONE, OK, CC("camp-new", 8, 0, 0, 0, 0, 0, 0)),
	R("CCREATE again, same parameters", V, FLAGS_NONE, OK, CC("camp-new", 8, 0, 0, 0, 0, 0, 0)),
	R("CCREATE again, other dim", V, FLAGS_NONE, PM_E_EXISTS, CC("camp-new", 9, 0, 0, 0, 0, 0, 0)),
	R("CCREATE again, other flags", V, FLAGS_NONE, PM_E_EXISTS,
	  CC("camp-new", 8, 0, 0, 0, 0, 0, PM_COLL_EVICTABLE)),
	R("CCREATE nlen 0", V, FLAGS_NONE, PM_E_COLLECTION_NAME, CC_NLEN(0, 4)),
	R("CCREATE nlen max", V, FLAGS_NONE, OK, CC_NLEN(NMAX, 4)),
	R("CCREATE nlen max+1", V, FLAGS_NONE, PM_E_COLLECTION_NAME, CC_NLEN(NMAX + 1, 4)),
	R("CCREATE nlen 0xFFFFFFFF", V, FLAGS_NONE, PM_E_COLLECTION_NAME, SUB('C'), U32(UINT32_MAX),
	  BYTES(8, 'n')),
	R("CCREATE dim 0", V, FLAGS_NONE, PM_E_DIM, CC("camp-d", 0, 0, 0, 0, 0, 0, 0)),
	R("CCREATE dim max", V, FLAGS_NONE, OK, CC("camp-dmax", DMAX, 0, 0, 0, 0, 0, 0)),
	R("CCREATE dim max+1", V, FLAGS_NONE, PM_E_DIM, CC("camp-d", DMAX + 1, 0, 0, 0, 0, 0, 0)),
	R("CCREATE dim 0xFFFFFFFF", V, FLAGS_NONE, PM_E_DIM,
	  CC("camp-d", UINT32_MAX, 0, 0, 0, 0, 0, 0)),
	R("CCREATE metric 3", V, FLAGS_NONE, PM_E_PARAM, CC("camp-m", 4, 3, 0, 0, 0, 0, 0)),
	R("CCREATE metric 255", V, FLAGS_NONE, PM_E_PARAM, CC("camp-m", 4, 255, 0, 0, 0, 0, 0)),
	R("CCREATE index 2", V, FLAGS_NONE, PM_E_PARAM, CC("camp-i", 4, 0, 2, 0, 0, 0, 0)),
	R("CCREATE index 255", V, FLAGS_NONE, PM_E_PARAM, CC("camp-i", 4, 0, 255, 0, 0, 0, 0)),
	R("CCREATE hnsw_m 1", V, FLAGS_NONE, PM_E_PARAM, CC("camp-h", 4, 0, 1, 1, 0, 0, 0)),
	R("CCREATE hnsw_m 2", V, FLAGS_NONE, OK, CC("camp-h2", 4, 0, 1, 2, 0, 0, 0)),
	R("CCREATE hnsw_m 128", V, FLAGS_NONE, OK, CC("camp-h128", 4, 0, 1, 128, 0, 0, 0)),
	R("CCREATE hnsw_m 129", V, FLAGS_NONE, PM_E_PARAM, CC("camp-h", 4, 0, 1, 129, 0, 0, 0)),
	R("CCREATE hnsw_m 0xFFFF", V, FLAGS_NONE, PM_E_PARAM, CC("camp-h", 4, 0, 1, 0xFFFF, 0, 0, 0)),
	R("CCREATE ef_construction max", V, FLAGS_NONE, OK,
	  CC("camp-efc", 4, 0, 1, 0, EFMAX, EFMAX, 0)),
	R("CCREATE ef_construction max+1", V, FLAGS_NONE, PM_E_EF,
	  CC("camp-e", 4, 0, 1, 0, EFMAX + 1, 0, 0)),
	R("CCREATE ef_search max+1", V, FLAGS_NONE, PM_E_EF, CC("camp-e", 4, 0, 1, 0, 0, EFMAX + 1, 0)),
	R("CCREATE ef_search 0xFFFFFFFF", V, FLAGS_NONE, PM_E_EF,
	  CC("camp-e", 4, 0, 1, 0, 0, UINT32_MAX, 0)),
	R("CCREATE coll_flags 0x02", V, FLAGS_NONE, PM_E_PARAM, CC("camp-f", 4, 0, 0, 0, 0, 0, 0x02)),
	R("CCREATE coll_flags 0x80", V, FLAGS_NONE, PM_E_PARAM, CC("camp-f", 4, 0, 0, 0, 0, 0, 0x80)),
	R("CCREATE coll_flags 0xFF", V, FLAGS_NONE, PM_E_PARAM, CC("camp-f", 4, 0, 0, 0, 0, 0, 0xFF)),
	R("CCREATE evictable", V, FLAGS_NONE, OK,
	  CC("camp-ev", 4, 0, 0, 0, 0, 0, PM_COLL_EVICTABLE)),
	R("CCREATE without coll_flags (older client)", V, FLAGS_NONE, OK, SUB('C'),
	  CF_STR("camp-old"), U32(4), U8(0), U8(0), U16(0), U32(0), U32(0)),
	R("CCREATE coll_flags cut", V, FLAGS_NONE, PM_E_FRAME_LENGTH, SUB('C'), CF_STR("camp-t"),
	  U32(4), U8(0), U8(0), U16(0), U32(0), U16(0)),
	/* element types: u8 dtype, then u8 rerank with u32 rerank_k, at the end */
	R("CCREATE dtype q8", V, FLAGS_NONE, OK, CC("camp-q8", 4, 0, 1, 0, 0, 0, 0), U8(2)),
	R("CCREATE dtype 4", V, FLAGS_NONE, PM_E_DTYPE, CC("camp-d", 4, 0, 0, 0, 0, 0, 0), U8(4)),
	R("CCREATE dtype 0xFF", V, FLAGS_NONE, PM_E_DTYPE, CC("camp-d", 4, 0, 0, 0, 0, 0, 0),
	  U8(0xFF)),
	R("CCREATE q8 rerank 32", V, FLAGS_NONE, OK, CC("camp-q8r", 4, 0, 1, 0, 0, 0, 0), U8(2),
	  U8(1), U32(32)),
	R("CCREATE rerank cut", V, FLAGS_NONE, PM_E_FRAME_LENGTH, CC("camp-d", 4, 0, 0, 0, 0, 0, 0),
	  U8(2), U8(1), U16(0)),
	R("CCREATE rerank 2", V, FLAGS_NONE, PM_E_PARAM, CC("camp-d", 4, 0, 0, 0, 0, 0, 0), U8(2),
	  U8(2), U32(0)),
	R("CCREATE rerank_k max+1", V, FLAGS_NONE, PM_E_PARAM, CC("camp-d", 4, 0, 0, 0, 0, 0, 0),
	  U8(2), U8(1), U32(PM_WIRE_RERANK_K_MAX + 1)),
	R("CCREATE rerank on f32", V, FLAGS_NONE, PM_E_PARAM, CC("camp-d", 4, 0, 0, 0, 0, 0, 0),
	  U8(0), U8(1), U32(0)),
	R("CCREATE trailing byte", V, FLAGS_NONE, PM_E_FRAME_LENGTH,
	  CC("camp-t", 4, 0, 0, 0, 0, 0, 0), U8(0), U8(0), U32(0), U8(0)),
	R("CDROP nlen 0", V, FLAGS_NONE, PM_E_COLLECTION_NAME, SUB('X'), U32(0)),
	R("CDROP nlen max+1", V, FLAGS_NONE, PM_E_COLLECTION_NAME, SUB('X'), U32(NMAX + 1),
	  BYTES(NMAX + 1, 'n')),
	R("CDROP nlen 0xFFFFFFFF", V, FLAGS_NONE, PM_E_COLLECTION_NAME, SUB('X'), U32(UINT32_MAX)),
	R("CDROP absent", V, FLAGS_NONE, OK, SUB('X'), CF_STR(ABSENT)),
	R("CDROP", V, FLAGS_NONE, OK, SUB('X'), CF_STR("camp-ev")),
	R("CDROP trailing byte", V, FLAGS_NONE, PM_E_FRAME_LENGTH, SUB('X'), CF_STR("camp-new"),
	  U8(0)),
	R("CLIST", V, FLAGS_NONE, OK, SUB('L')),
	R("CLIST list_flags 0", V, FLAGS_NONE, OK, SUB('L'), U8(0)),
	R("CLIST list_flags COLL_FLAGS", V, FLAGS_NONE, OK, SUB('L'), U8(PM_CLIST_COLL_FLAGS)),
	R("CLIST list_flags DTYPE", V, FLAGS_NONE, OK, SUB('L'),
	  U8(PM_CLIST_COLL_FLAGS | PM_CLIST_DTYPE)),
	R("CLIST list_flags 0x04", V, FLAGS_NONE, PM_E_PARAM, SUB('L'), U8(0x04)),
	R("CLIST trailing byte", V, FLAGS_NONE, PM_E_FRAME_LENGTH, SUB('L'), U8(0), U8(0)),
	R("CLIST with COLL", V, PM_FLAG_COLL, PM_E_FRAME_FLAGS, SUB('L'), CF_STR(CAMP_HNSW)),
};

const size_t campaign_cases_count = sizeof(campaign_cases) / sizeof(campaign_cases[0]);

/* ---------------------------------------------------------------- the builder */

static size_t put_field(const struct cf *f, uint8_t *p)
{
	switch (f->kind) {
	case CF_U8:
		*p = (uint8_t)f->v;
		return 1;
	case CF_U16:
		put_u16(p, (uint16_t)f->v);
		return U16_BYTES;
	case CF_U32:
		put_u32(p, (uint32_t)f->v);
		return U32_BYTES;
	case CF_U64:
		put_u64(p, f->v);
		return U64_BYTES;
	case CF_F32:
		memcpy(p, &f->f, sizeof(float));
		return sizeof(float);
	case CF_BYTES:
		if (f->s)
			memcpy(p, f->s, f->n);
		else
			memset(p, (int)f->v, f->n);
		return f->n;
	case CF_VEC:
		for (uint32_t i = 0; i < f->n; i++)
			memcpy(p + (size_t)i * sizeof(float), &f->f, sizeof(float));
		return (size_t)f->n * sizeof(float);
	default:
		return 0;
	}
}

static size_t put_header(uint8_t *out, uint8_t opcode, uint8_t flags, uint64_t id,
			 uint32_t body_len)
{
	struct pm_frame_header h = { .version = PM_FRAME_VERSION, .opcode = opcode, .flags = flags,
				     .id = id, .body_len = body_len };
	pm_header_encode(&h, out);
	return PM_FRAME_HEADER_BYTES;
}

size_t campaign_build(const struct camp_case *c, uint64_t id, uint8_t *out)
{
	size_t n = PM_FRAME_HEADER_BYTES;
	for (unsigned i = 0; i < CAMP_FIELDS_MAX && c->body[i].kind != CF_END; i++)
		n += put_field(&c->body[i], out + n);
	put_header(out, c->opcode, c->flags, id, (uint32_t)(n - PM_FRAME_HEADER_BYTES));
	for (unsigned i = 0; i < CAMP_PATCHES_MAX && c->patch[i].bytes; i++) {
		const struct camp_patch *p = &c->patch[i];
		for (unsigned b = 0; b < p->bytes; b++)
			out[p->off + b] = (uint8_t)(p->v >> (8 * b));
	}
	if (c->then_get) {
		size_t h = n;
		n += put_header(out + n, PM_OPCODE_GET, 0, id + 1, U32_BYTES + sizeof(ABSENT) - 1);
		put_u32(out + n, sizeof(ABSENT) - 1);
		memcpy(out + n + U32_BYTES, ABSENT, sizeof(ABSENT) - 1);
		n = h + PM_FRAME_HEADER_BYTES + U32_BYTES + sizeof(ABSENT) - 1;
	}
	memset(out + n, JUNK_BYTE, c->extra);
	n += c->extra;
	return c->cut < n ? n - c->cut : 0;
}
