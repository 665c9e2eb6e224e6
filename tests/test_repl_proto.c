/* SPDX-License-Identifier: MIT
 *
 * test_repl_proto.c — CUnit suite of the replication stream's frames
 * (proto/repl.{h,c}; docs/replication.md, "Frames").
 *
 * Frames are built here byte by byte with the test's own little-endian
 * writer (struct fb), independent of repl.c's helpers, so the tests pin the
 * layout repl.h states rather than the code's idea of it: every encoder's
 * output is compared with the hand-built frame, and every rule the decoder
 * enforces is broken on a hand-built frame.
 *
 * Every decode goes through a heap copy of exactly the bytes given (decode()),
 * so a read past len is caught by ASan in the sanitizer build; so does every
 * prefix of a frame delivered a byte at a time.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl.h"
#include "repl_check.h"
#include "cu_main.h"

/* The largest payload a frame can carry (the bound less the header). */
#define PAYLOAD_MAX (PM_REPL_FRAME_BYTES_MAX - PM_REPL_FRAME_HEADER_BYTES)
/* Random buffers and mutated frames of the property loops. */
#define PROP_RANDOM 200000u
#define PROP_MUTATIONS 200000u
/* Random buffers are at most this long: past every fixed frame and the
 * longest REFUSE, and long enough for RECORDS of a few records. */
#define PROP_RANDOM_BYTES_MAX 320u
/* Prefix lengths tried at random on a frame too large to try every one. */
#define PREFIX_SAMPLES 24u
/* A frame of the largest size is tried at prefixes up to this many bytes
 * (every one up to 64, then sparser), and at its last bytes. */
#define PREFIX_FIRST_BYTES 4096u

/* ---------------------------------------------------------------- helpers */

static uint64_t ld(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void st(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Decode n bytes of src from a heap copy of exactly n bytes (ASan sees a read
 * past it). *f's pointers are moved back into src. The rules every result
 * keeps are checked here: *used is the frame's bytes when OK, else 0. */
static enum pm_repl_result decode(const uint8_t *src, size_t n, struct pm_repl_frame *f,
				  size_t *used)
{
	uint8_t *copy = malloc(n ? n : 1);
	CU_ASSERT_FATAL(copy != NULL);
	if (n)
		memcpy(copy, src, n);
	*used = SIZE_MAX;
	enum pm_repl_result r = pm_repl_decode(copy, n, f, used);
	CU_ASSERT(r <= PM_REPL_E_FIELD);
	if (r == PM_REPL_OK) {
		CU_ASSERT(*used >= PM_REPL_FRAME_HEADER_BYTES && *used <= n);
		CU_ASSERT(*used <= PM_REPL_FRAME_BYTES_MAX);
		CU_ASSERT(n >= 4 && *used == 4u + ld(src, 4));
	} else {
		CU_ASSERT_EQUAL(*used, 0);
	}
	/* the frame's pointers, rebased from the copy into src */
	if (r == PM_REPL_OK && f->type == PM_REPL_REFUSE)
		f->u.refuse.text = (const char *)src + (f->u.refuse.text - (const char *)copy);
	else if (r == PM_REPL_OK && f->type == PM_REPL_RECORDS)
		f->u.records.bytes = src + (f->u.records.bytes - copy);
	else if (r == PM_REPL_OK && f->type == PM_REPL_SNAP_DATA)
		f->u.snap_data.bytes = src + (f->u.snap_data.bytes - copy);
	free(copy);
	return r;
}

/* The result of decoding src[0..n), nothing else. */
static enum pm_repl_result result_of(const uint8_t *src, size_t n)
{
	struct pm_repl_frame f;
	size_t used;
	return decode(src, n, &f, &used);
}

#define CHECK_FIELD(cond)                                                  \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "\n  mismatch: %s\n", #cond);      \
			return false;                                      \
		}                                                          \
	} while (0)

/* ---------------------------------------------------------------- raw frame builder */

static struct fb {
	uint8_t buf[PM_REPL_FRAME_BYTES_MAX + 64];
	size_t n;
} F;

static void fb_le(uint64_t v, int bytes)
{
	st(F.buf + F.n, v, bytes);
	F.n += (size_t)bytes;
}

static void fb_bytes(const void *p, size_t n)
{
	memcpy(F.buf + F.n, p, n);
	F.n += n;
}

/* A header of the given type, version 1, reserved 0; length patched by fb_end. */
static void fb_start(uint8_t type)
{
	F.n = 0;
	fb_le(0, 4);
	F.buf[F.n++] = type;
	F.buf[F.n++] = 1;
	fb_le(0, 2);
}

/* The length field, L = the bytes after it; the frame's bytes. */
static size_t fb_end(void)
{
	st(F.buf, F.n - 4, 4);
	return F.n;
}

static size_t fb_hello(uint32_t shard, uint32_t shards, uint64_t epoch, uint64_t id, uint64_t lsn,
		       uint32_t flags)
{
	fb_start(1);
	fb_le(shard, 4);
	fb_le(shards, 4);
	fb_le(epoch, 8);
	fb_le(id, 8);
	fb_le(lsn, 8);
	fb_le(flags, 4);
	return fb_end();
}

static const uint8_t ADDR[4] = { 192, 168, 7, 21 }; /* network order, as on the wire */

static size_t fb_welcome(uint8_t mode, uint32_t pad24, uint64_t epoch, uint64_t id, uint64_t lsn,
			 uint16_t udp, uint16_t tcp)
{
	fb_start(2);
	F.buf[F.n++] = mode;
	fb_le(pad24, 3);
	fb_le(epoch, 8);
	fb_le(id, 8);
	fb_le(lsn, 8);
	fb_bytes(ADDR, 4);
	fb_le(udp, 2);
	fb_le(tcp, 2);
	return fb_end();
}

/* text_len as the frame says it, n text bytes actually there. */
static size_t fb_refuse(uint16_t reason, uint16_t text_len, size_t n)
{
	fb_start(3);
	fb_le(reason, 2);
	fb_le(text_len, 2);
	for (size_t i = 0; i < n; i++)
		F.buf[F.n++] = (uint8_t)('a' + i % 26);
	return fb_end();
}

/* n record bytes (a pattern: the stream carries them as they are). */
static size_t fb_records(uint64_t first, uint32_t count, size_t n)
{
	fb_start(4);
	fb_le(first, 8);
	fb_le(count, 4);
	for (size_t i = 0; i < n; i++)
		F.buf[F.n++] = (uint8_t)(i * 7 + 3);
	return fb_end();
}

/* A frame of `type` with the given u64 fields as its payload. */
static size_t fb_u64s(uint8_t type, uint64_t a, uint64_t b, int fields)
{
	fb_start(type);
	fb_le(a, 8);
	if (fields == 2)
		fb_le(b, 8);
	return fb_end();
}

static size_t fb_snap_data(size_t n)
{
	fb_start(6);
	for (size_t i = 0; i < n; i++)
		F.buf[F.n++] = (uint8_t)(i * 13 + 1);
	return fb_end();
}

/* A header alone (8 bytes) with the given length field, type, version, reserved. */
static void fb_header(uint32_t l, uint8_t type, uint8_t version, uint16_t reserved)
{
	F.n = 0;
	fb_le(l, 4);
	F.buf[F.n++] = type;
	F.buf[F.n++] = version;
	fb_le(reserved, 2);
}

/* ---------------------------------------------------------------- encoders' output */

static uint8_t out[PM_REPL_FRAME_BYTES_MAX + 64];

/* out[0..n) is the hand-built frame F, byte for byte. */
static bool same_as_built(size_t n)
{
	CHECK_FIELD(n == F.n);
	CHECK_FIELD(memcmp(out, F.buf, n) == 0);
	return true;
}

/* ---------------------------------------------------------------- names */

static void test_names(void)
{
	static const char *const types[] = { "?",	   "HELLO",    "WELCOME",  "REFUSE",
					     "RECORDS",	   "SNAP_BEGIN", "SNAP_DATA", "SNAP_END",
					     "ACK",	   "PING" };
	for (unsigned t = 0; t < PM_REPL_TYPE_END; t++)
		CU_ASSERT_STRING_EQUAL(pm_repl_type_name((uint8_t)t), types[t]);
	CU_ASSERT_STRING_EQUAL(pm_repl_type_name(PM_REPL_TYPE_END), "?");
	CU_ASSERT_STRING_EQUAL(pm_repl_type_name(255), "?");
	/* every result and refusal has a name of its own */
	for (int a = PM_REPL_OK; a <= PM_REPL_E_FIELD; a++) {
		CU_ASSERT_STRING_NOT_EQUAL(pm_repl_result_name(a), "?");
		for (int b = PM_REPL_OK; b < a; b++)
			CU_ASSERT_STRING_NOT_EQUAL(pm_repl_result_name(a), pm_repl_result_name(b));
	}
	CU_ASSERT_STRING_EQUAL(pm_repl_result_name(PM_REPL_E_FIELD + 1), "?");
	CU_ASSERT_STRING_EQUAL(pm_repl_refusal_name(0), "?");
	for (unsigned a = 1; a < PM_REPL_REFUSE_END; a++) {
		CU_ASSERT_STRING_NOT_EQUAL(pm_repl_refusal_name((uint16_t)a), "?");
		for (unsigned b = 1; b < a; b++)
			CU_ASSERT_STRING_NOT_EQUAL(pm_repl_refusal_name((uint16_t)a),
						   pm_repl_refusal_name((uint16_t)b));
	}
	CU_ASSERT_STRING_EQUAL(pm_repl_refusal_name(PM_REPL_REFUSE_END), "?");
	CU_ASSERT_STRING_EQUAL(pm_repl_refusal_name(0xFFFF), "?");
	/* the values the wire carries are repl.h's, never renumbered */
	CU_ASSERT_EQUAL(PM_REPL_HELLO, 1);
	CU_ASSERT_EQUAL(PM_REPL_PING, 9);
	CU_ASSERT_EQUAL(PM_REPL_TYPE_END, 10);
	CU_ASSERT_EQUAL(PM_REPL_PARTIAL, 1);
	CU_ASSERT_EQUAL(PM_REPL_FULL, 2);
	CU_ASSERT_EQUAL(PM_REPL_REFUSE_VERSION, 6);
}

/* ---------------------------------------------------------------- round trips */

static const uint64_t U64S[] = { 0, 1, 2, 0x0102030405060708ull, UINT64_MAX - 1, UINT64_MAX };
#define NU64 (sizeof(U64S) / sizeof(U64S[0]))

static void test_roundtrip_hello(void)
{
	static const uint32_t shards[][2] = { { 0, 1 }, { 0, 2 }, { 1, 2 }, { 5, 64 },
					      { UINT32_MAX - 1, UINT32_MAX } };
	for (size_t s = 0; s < sizeof(shards) / sizeof(shards[0]); s++) {
		for (size_t i = 0; i < NU64; i++) {
			uint64_t epoch = U64S[i], id = U64S[(i + 2) % NU64];
			uint64_t lsn = U64S[(i + 4) % NU64];
			size_t n = pm_repl_encode_hello(out, sizeof(out), shards[s][0],
							shards[s][1], epoch, id, lsn);
			CU_ASSERT_EQUAL_FATAL(n, PM_REPL_HELLO_BYTES);
			fb_hello(shards[s][0], shards[s][1], epoch, id, lsn, 0);
			CU_ASSERT_TRUE(same_as_built(n));
			struct pm_repl_frame f;
			size_t used;
			CU_ASSERT_EQUAL_FATAL(decode(out, n, &f, &used), PM_REPL_OK);
			CU_ASSERT_EQUAL(used, n);
			CU_ASSERT_EQUAL(f.type, PM_REPL_HELLO);
			CU_ASSERT_EQUAL(f.u.hello.shard, shards[s][0]);
			CU_ASSERT_EQUAL(f.u.hello.shards, shards[s][1]);
			CU_ASSERT_EQUAL(f.u.hello.epoch, epoch);
			CU_ASSERT_EQUAL(f.u.hello.repl_id, id);
			CU_ASSERT_EQUAL(f.u.hello.lsn, lsn);
		}
	}
}

static void test_roundtrip_welcome(void)
{
	uint32_t addr_be;
	memcpy(&addr_be, ADDR, 4);
	for (uint8_t mode = PM_REPL_PARTIAL; mode <= PM_REPL_FULL; mode++) {
		for (size_t i = 0; i < NU64; i++) {
			uint64_t epoch = U64S[i], id = U64S[(i + 1) % NU64];
			uint64_t lsn = U64S[(i + 3) % NU64];
			uint16_t udp = (uint16_t)(7700 + i);
			uint16_t tcp = i & 1 ? 0 : (uint16_t)(65535 - i);
			size_t n = pm_repl_encode_welcome(out, sizeof(out), mode, epoch, id, lsn,
							  addr_be, udp, tcp);
			CU_ASSERT_EQUAL_FATAL(n, PM_REPL_WELCOME_BYTES);
			fb_welcome(mode, 0, epoch, id, lsn, udp, tcp);
			CU_ASSERT_TRUE(same_as_built(n));
			struct pm_repl_frame f;
			size_t used;
			CU_ASSERT_EQUAL_FATAL(decode(out, n, &f, &used), PM_REPL_OK);
			CU_ASSERT_EQUAL(used, n);
			CU_ASSERT_EQUAL(f.type, PM_REPL_WELCOME);
			CU_ASSERT_EQUAL(f.u.welcome.mode, mode);
			CU_ASSERT_EQUAL(f.u.welcome.epoch, epoch);
			CU_ASSERT_EQUAL(f.u.welcome.repl_id, id);
			CU_ASSERT_EQUAL(f.u.welcome.lsn, lsn);
			CU_ASSERT_EQUAL(f.u.welcome.addr_be, addr_be);
			CU_ASSERT_EQUAL(f.u.welcome.udp_port, udp);
			CU_ASSERT_EQUAL(f.u.welcome.tcp_port, tcp);
		}
	}
}

static void test_roundtrip_refuse(void)
{
	static const uint32_t lens[] = { 0, 1, 17, PM_REPL_TEXT_BYTES_MAX - 1,
					 PM_REPL_TEXT_BYTES_MAX };
	char text[PM_REPL_TEXT_BYTES_MAX];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (char)('a' + i % 26);
	for (uint16_t reason = 1; reason < PM_REPL_REFUSE_END; reason++) {
		for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
			size_t n = pm_repl_encode_refuse(out, sizeof(out), reason,
							 lens[l] ? text : NULL, lens[l]);
			CU_ASSERT_EQUAL_FATAL(n, PM_REPL_FRAME_HEADER_BYTES + 4u + lens[l]);
			fb_refuse(reason, (uint16_t)lens[l], lens[l]);
			CU_ASSERT_TRUE(same_as_built(n));
			struct pm_repl_frame f;
			size_t used;
			CU_ASSERT_EQUAL_FATAL(decode(out, n, &f, &used), PM_REPL_OK);
			CU_ASSERT_EQUAL(used, n);
			CU_ASSERT_EQUAL(f.type, PM_REPL_REFUSE);
			CU_ASSERT_EQUAL(f.u.refuse.reason, reason);
			CU_ASSERT_EQUAL(f.u.refuse.text_len, lens[l]);
			CU_ASSERT_PTR_EQUAL(f.u.refuse.text, (const char *)out + 12);
			CU_ASSERT(lens[l] == 0 || memcmp(f.u.refuse.text, text, lens[l]) == 0);
		}
	}
}

/* RECORDS of `len` record bytes written in place after the header. */
static size_t records_frame(uint64_t first, uint32_t count, uint32_t len)
{
	const uint32_t at = PM_REPL_FRAME_HEADER_BYTES + PM_REPL_RECORDS_FIXED_BYTES;
	for (uint32_t i = 0; i < len; i++)
		out[at + i] = (uint8_t)(i * 7 + 3);
	return pm_repl_encode_records_header(out, first, count, len);
}

static void check_records(uint64_t first, uint32_t count, uint32_t len)
{
	size_t n = records_frame(first, count, len);
	CU_ASSERT_EQUAL_FATAL(n, PM_REPL_FRAME_HEADER_BYTES + PM_REPL_RECORDS_FIXED_BYTES + len);
	fb_records(first, count, len);
	CU_ASSERT_TRUE(same_as_built(n));
	struct pm_repl_frame f;
	size_t used;
	CU_ASSERT_EQUAL_FATAL(decode(out, n, &f, &used), PM_REPL_OK);
	CU_ASSERT_EQUAL(used, n);
	CU_ASSERT_EQUAL(f.type, PM_REPL_RECORDS);
	CU_ASSERT_EQUAL(f.u.records.first_lsn, first);
	CU_ASSERT_EQUAL(f.u.records.count, count);
	CU_ASSERT_EQUAL(f.u.records.len, len);
	CU_ASSERT_PTR_EQUAL(f.u.records.bytes, out + 20);
}

static void test_roundtrip_records(void)
{
	const uint32_t R = PM_REPL_RECORD_BYTES_MIN;
	const uint32_t most = PAYLOAD_MAX - PM_REPL_RECORDS_FIXED_BYTES; /* record bytes, at most */
	check_records(1, 1, R);
	check_records(1, 1, R + 1);
	check_records(42, 3, 3 * R);
	check_records(1000, 2, 500);
	check_records(UINT64_MAX - 1, 1, R);      /* the last record: LSN 2^64 - 2 */
	check_records(UINT64_MAX - 5, 5, 5 * R);  /* next LSN 2^64 - 1 */
	check_records(7, 1, most);                /* the largest frame */
	CU_ASSERT_EQUAL(PM_REPL_FRAME_HEADER_BYTES + PM_REPL_RECORDS_FIXED_BYTES + most,
			PM_REPL_FRAME_BYTES_MAX);
	check_records(7, most / R, most);         /* as many records as can fit */
}

static void test_roundtrip_snap(void)
{
	for (size_t i = 0; i < NU64; i++) {
		uint64_t a = U64S[i], b = U64S[(i + 1) % NU64];
		size_t n = pm_repl_encode_snap_begin(out, sizeof(out), a, b);
		CU_ASSERT_EQUAL_FATAL(n, PM_REPL_SNAP_BEGIN_BYTES);
		fb_u64s(5, a, b, 2);
		CU_ASSERT_TRUE(same_as_built(n));
		struct pm_repl_frame f;
		size_t used;
		CU_ASSERT_EQUAL_FATAL(decode(out, n, &f, &used), PM_REPL_OK);
		CU_ASSERT_EQUAL(used, n);
		CU_ASSERT_EQUAL(f.type, PM_REPL_SNAP_BEGIN);
		CU_ASSERT_EQUAL(f.u.snap_begin.start_lsn, a);
		CU_ASSERT_EQUAL(f.u.snap_begin.bytes, b);

		n = pm_repl_encode_snap_end(out, sizeof(out), a);
		CU_ASSERT_EQUAL_FATAL(n, PM_REPL_SNAP_END_BYTES);
		fb_u64s(7, a, 0, 1);
		CU_ASSERT_TRUE(same_as_built(n));
		CU_ASSERT_EQUAL_FATAL(decode(out, n, &f, &used), PM_REPL_OK);
		CU_ASSERT_EQUAL(used, n);
		CU_ASSERT_EQUAL(f.type, PM_REPL_SNAP_END);
		CU_ASSERT_EQUAL(f.u.snap_end.bytes, a);
	}
	static const uint32_t lens[] = { 1, 2, 4096, PAYLOAD_MAX };
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
		for (uint32_t i = 0; i < lens[l]; i++)
			out[PM_REPL_FRAME_HEADER_BYTES + i] = (uint8_t)(i * 13 + 1);
		size_t n = pm_repl_encode_snap_data_header(out, lens[l]);
		CU_ASSERT_EQUAL_FATAL(n, PM_REPL_FRAME_HEADER_BYTES + lens[l]);
		fb_snap_data(lens[l]);
		CU_ASSERT_TRUE(same_as_built(n));
		struct pm_repl_frame f;
		size_t used;
		CU_ASSERT_EQUAL_FATAL(decode(out, n, &f, &used), PM_REPL_OK);
		CU_ASSERT_EQUAL(used, n);
		CU_ASSERT_EQUAL(f.type, PM_REPL_SNAP_DATA);
		CU_ASSERT_EQUAL(f.u.snap_data.len, lens[l]);
		CU_ASSERT_PTR_EQUAL(f.u.snap_data.bytes, out + PM_REPL_FRAME_HEADER_BYTES);
	}
}

static void test_roundtrip_ack_ping(void)
{
	for (size_t i = 0; i < NU64; i++) {
		for (size_t j = 0; j < NU64; j++) {
			uint64_t a = U64S[i], b = U64S[j];
			struct pm_repl_frame f;
			size_t used;
			size_t n = pm_repl_encode_ping(out, sizeof(out), a, b);
			CU_ASSERT_EQUAL_FATAL(n, PM_REPL_PING_BYTES);
			fb_u64s(9, a, b, 2);
			CU_ASSERT_TRUE(same_as_built(n));
			CU_ASSERT_EQUAL_FATAL(decode(out, n, &f, &used), PM_REPL_OK);
			CU_ASSERT_EQUAL(used, n);
			CU_ASSERT_EQUAL(f.type, PM_REPL_PING);
			CU_ASSERT_EQUAL(f.u.ping.lsn, a);
			CU_ASSERT_EQUAL(f.u.ping.wall_ms, b);
			if (b > a)
				continue; /* an ACK's durable LSN is never past its received one */
			n = pm_repl_encode_ack(out, sizeof(out), a, b);
			CU_ASSERT_EQUAL_FATAL(n, PM_REPL_ACK_BYTES);
			fb_u64s(8, a, b, 2);
			CU_ASSERT_TRUE(same_as_built(n));
			CU_ASSERT_EQUAL_FATAL(decode(out, n, &f, &used), PM_REPL_OK);
			CU_ASSERT_EQUAL(used, n);
			CU_ASSERT_EQUAL(f.type, PM_REPL_ACK);
			CU_ASSERT_EQUAL(f.u.ack.received_lsn, a);
			CU_ASSERT_EQUAL(f.u.ack.durable_lsn, b);
		}
	}
}

/* ---------------------------------------------------------------- corpus */

/* One frame of every type (and of every size class), from the encoders. */
#define CORPUS_MAX 32
static struct corpus {
	uint8_t *frame[CORPUS_MAX];
	size_t len[CORPUS_MAX];
	int n;
} C;

static void corpus_add(size_t n)
{
	CU_ASSERT_FATAL(n > 0 && C.n < CORPUS_MAX);
	C.frame[C.n] = malloc(n);
	CU_ASSERT_FATAL(C.frame[C.n] != NULL);
	memcpy(C.frame[C.n], out, n);
	C.len[C.n++] = n;
}

static void corpus_build(void)
{
	uint32_t addr_be;
	memcpy(&addr_be, ADDR, 4);
	C.n = 0;
	corpus_add(pm_repl_encode_hello(out, sizeof(out), 3, 4, 7, 0xfeedfacecafebeefull, 12345));
	corpus_add(pm_repl_encode_hello(out, sizeof(out), 0, 1, 0, 0, 0));
	corpus_add(pm_repl_encode_welcome(out, sizeof(out), PM_REPL_PARTIAL, 7,
					  0xfeedfacecafebeefull, 12345, addr_be, 7700, 7800));
	corpus_add(pm_repl_encode_welcome(out, sizeof(out), PM_REPL_FULL, 8, 1, 99, addr_be, 7700,
					  0));
	corpus_add(pm_repl_encode_refuse(out, sizeof(out), PM_REPL_REFUSE_EPOCH,
					 "epoch 9 seen, this primary is at 8", 35));
	corpus_add(pm_repl_encode_refuse(out, sizeof(out), PM_REPL_REFUSE_SHARDS, NULL, 0));
	corpus_add(records_frame(1, 1, PM_REPL_RECORD_BYTES_MIN));
	corpus_add(records_frame(1000, 4, 200));
	corpus_add(pm_repl_encode_snap_begin(out, sizeof(out), 999, 1u << 20));
	corpus_add(pm_repl_encode_snap_begin(out, sizeof(out), 0, 0));
	memset(out + PM_REPL_FRAME_HEADER_BYTES, 0x5a, 300);
	corpus_add(pm_repl_encode_snap_data_header(out, 300));
	corpus_add(pm_repl_encode_snap_data_header(out, 1));
	corpus_add(pm_repl_encode_snap_end(out, sizeof(out), 1u << 20));
	corpus_add(pm_repl_encode_ack(out, sizeof(out), 1004, 1000));
	corpus_add(pm_repl_encode_ack(out, sizeof(out), 0, 0));
	corpus_add(pm_repl_encode_ping(out, sizeof(out), 1004, 1700000000000ull));
}

static void corpus_free(void)
{
	for (int i = 0; i < C.n; i++)
		free(C.frame[i]);
	C.n = 0;
}

/* ---------------------------------------------------------------- partial frames */

/* The first k bytes of a frame of n, in an allocation of exactly k bytes:
 * MORE for k < n, OK with used == n for k == n. */
static void check_prefix(const uint8_t *frame, size_t n, size_t k)
{
	uint8_t *b = malloc(k ? k : 1);
	CU_ASSERT_FATAL(b != NULL);
	if (k)
		memcpy(b, frame, k);
	struct pm_repl_frame f;
	size_t used = SIZE_MAX;
	enum pm_repl_result r = pm_repl_decode(b, k, &f, &used);
	if (k < n) {
		if (r != PM_REPL_MORE)
			fprintf(stderr, "\n  prefix %zu of %zu: %s\n", k, n,
				pm_repl_result_name(r));
		CU_ASSERT_EQUAL(r, PM_REPL_MORE);
		CU_ASSERT_EQUAL(used, 0);
	} else {
		CU_ASSERT_EQUAL(r, PM_REPL_OK);
		CU_ASSERT_EQUAL(used, n);
	}
	free(b);
}

static void test_byte_at_a_time(void)
{
	corpus_build();
	uint64_t seed = 0x5eed0101;
	for (int i = 0; i < C.n; i++)
		for (size_t k = 0; k <= C.len[i]; k++)
			check_prefix(C.frame[i], C.len[i], k);
	/* the largest frames, RECORDS and SNAP_DATA, at their first bytes, their
	 * last bytes and prefixes in between */
	size_t sizes[2];
	sizes[0] = records_frame(5, 3, PAYLOAD_MAX - PM_REPL_RECORDS_FIXED_BYTES);
	uint8_t *big = malloc(PM_REPL_FRAME_BYTES_MAX);
	CU_ASSERT_FATAL(big != NULL && sizes[0] == PM_REPL_FRAME_BYTES_MAX);
	memcpy(big, out, sizes[0]);
	for (size_t k = 0; k <= PREFIX_FIRST_BYTES; k += 1 + k / 64)
		check_prefix(big, sizes[0], k);
	for (size_t k = sizes[0] - 16; k <= sizes[0]; k++)
		check_prefix(big, sizes[0], k);
	for (unsigned s = 0; s < PREFIX_SAMPLES; s++)
		check_prefix(big, sizes[0], pm_test_rand(&seed) % sizes[0]);
	sizes[1] = pm_repl_encode_snap_data_header(out, PAYLOAD_MAX);
	CU_ASSERT_FATAL(sizes[1] == PM_REPL_FRAME_BYTES_MAX);
	memcpy(big, out, sizes[1]);
	for (size_t k = 0; k <= 64; k++)
		check_prefix(big, sizes[1], k);
	check_prefix(big, sizes[1], sizes[1] - 1);
	check_prefix(big, sizes[1], sizes[1]);
	free(big);
	corpus_free();
}

/* Every corpus frame back to back, delivered in random pieces to a buffer
 * that grows, decoded as a receiver does: frame after frame until MORE, the
 * rest kept. Every frame comes out once, in order, with its bytes. */
static void test_stream_in_pieces(void)
{
	corpus_build();
	size_t total = 0;
	for (int i = 0; i < C.n; i++)
		total += C.len[i];
	uint8_t *stream = malloc(total);
	CU_ASSERT_FATAL(stream != NULL);
	for (int i = 0, at = 0; i < C.n; at += (int)C.len[i], i++)
		memcpy(stream + at, C.frame[i], C.len[i]);
	uint64_t seed = 0x5eed0102;
	for (int round = 0; round < 200; round++) {
		uint8_t *rx = NULL; /* the receiver's buffer: exactly what it holds */
		size_t have = 0, sent = 0;
		int next = 0;
		while (sent < total) {
			size_t piece = 1 + pm_test_rand(&seed) % (round & 1 ? 7 : 97);
			if (piece > total - sent)
				piece = total - sent;
			uint8_t *grown = malloc(have + piece);
			CU_ASSERT_FATAL(grown != NULL);
			if (have)
				memcpy(grown, rx, have);
			memcpy(grown + have, stream + sent, piece);
			free(rx);
			rx = grown;
			have += piece;
			sent += piece;
			size_t off = 0;
			for (;;) {
				struct pm_repl_frame f;
				size_t used;
				enum pm_repl_result r =
					pm_repl_decode(rx + off, have - off, &f, &used);
				if (r == PM_REPL_MORE) {
					CU_ASSERT_EQUAL(used, 0);
					break;
				}
				CU_ASSERT_EQUAL_FATAL(r, PM_REPL_OK);
				CU_ASSERT_FATAL(next < C.n && used == C.len[next]);
				CU_ASSERT(memcmp(rx + off, C.frame[next], used) == 0);
				CU_ASSERT_EQUAL(f.type, C.frame[next][4]);
				next++;
				off += used;
			}
			/* keep the rest */
			memmove(rx, rx + off, have - off);
			have -= off;
		}
		CU_ASSERT_EQUAL(next, C.n);
		CU_ASSERT_EQUAL(have, 0);
		free(rx);
	}
	free(stream);
	corpus_free();
}

/* ---------------------------------------------------------------- the header */

static void test_length_bounds(void)
{
	/* below the header and above the bound: E_LENGTH from the length alone,
	 * whatever follows and however little of it is there */
	static const uint32_t bad[] = { 0, 1, 2, 3, PM_REPL_FRAME_BYTES_MAX - 3,
					PM_REPL_FRAME_BYTES_MAX, 0x7fffffffu, UINT32_MAX };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fb_header(bad[i], PM_REPL_PING, 1, 0);
		for (size_t k = 4; k <= 8; k++)
			CU_ASSERT_EQUAL(result_of(F.buf, k), PM_REPL_E_LENGTH);
		/* and before the type, version or reserved bytes could tell */
		fb_header(bad[i], 0, 0, 0xffff);
		CU_ASSERT_EQUAL(result_of(F.buf, 4), PM_REPL_E_LENGTH);
		CU_ASSERT_EQUAL(result_of(F.buf, 8), PM_REPL_E_LENGTH);
	}
	/* fewer than 4 bytes: nothing to judge yet */
	fb_header(0, 0, 0, 0);
	for (size_t k = 0; k < 4; k++)
		CU_ASSERT_EQUAL(result_of(F.buf, k), PM_REPL_MORE);
	/* at the bounds the length is accepted: MORE until the bytes are there */
	static const uint32_t good[] = { 4, 5, PM_REPL_FRAME_BYTES_MAX - 4 };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		fb_header(good[i], PM_REPL_SNAP_DATA, 1, 0);
		for (size_t k = 4; k <= 8 && k < good[i] + 4u; k++)
			CU_ASSERT_EQUAL(result_of(F.buf, k), PM_REPL_MORE);
	}
	/* a header alone (L = 4) is too short for every type's payload */
	for (uint8_t t = 1; t < PM_REPL_TYPE_END; t++) {
		fb_header(4, t, 1, 0);
		CU_ASSERT_EQUAL(result_of(F.buf, 8), PM_REPL_E_LENGTH);
	}
	/* the largest frame is PM_REPL_FRAME_BYTES_MAX bytes whole */
	size_t n = fb_snap_data(PAYLOAD_MAX);
	CU_ASSERT_EQUAL(n, PM_REPL_FRAME_BYTES_MAX);
	CU_ASSERT_EQUAL(result_of(F.buf, n), PM_REPL_OK);
	n = fb_snap_data(PAYLOAD_MAX + 1);
	CU_ASSERT_EQUAL(result_of(F.buf, 4), PM_REPL_E_LENGTH);
	CU_ASSERT_EQUAL(result_of(F.buf, n), PM_REPL_E_LENGTH);
}

/* type, version, reserved: found from the 8 header bytes, before the rest of
 * the frame is waited for, and in a whole frame too. */
static void check_header(uint8_t type, uint8_t version, uint16_t reserved,
			 enum pm_repl_result want)
{
	size_t n = fb_hello(1, 2, 3, 4, 5, 0); /* a whole, valid HELLO, then broken */
	F.buf[4] = type;
	F.buf[5] = version;
	st(F.buf + 6, reserved, 2);
	enum pm_repl_result partial = want == PM_REPL_OK ? PM_REPL_MORE : want;
	CU_ASSERT_EQUAL(result_of(F.buf, PM_REPL_FRAME_HEADER_BYTES), partial);
	CU_ASSERT_EQUAL(result_of(F.buf, PM_REPL_FRAME_HEADER_BYTES + 1), partial);
	CU_ASSERT_EQUAL(result_of(F.buf, n), want);
	for (size_t k = 4; k < PM_REPL_FRAME_HEADER_BYTES; k++) /* not yet there */
		CU_ASSERT_EQUAL(result_of(F.buf, k), PM_REPL_MORE);
}

static void test_header_fields(void)
{
	check_header(0, 1, 0, PM_REPL_E_TYPE);
	check_header(PM_REPL_TYPE_END, 1, 0, PM_REPL_E_TYPE);
	check_header(PM_REPL_TYPE_END + 1, 1, 0, PM_REPL_E_TYPE);
	check_header(255, 1, 0, PM_REPL_E_TYPE);
	check_header(PM_REPL_HELLO, 0, 0, PM_REPL_E_VERSION);
	check_header(PM_REPL_HELLO, 2, 0, PM_REPL_E_VERSION);
	check_header(PM_REPL_HELLO, 255, 0, PM_REPL_E_VERSION);
	for (int bit = 0; bit < 16; bit++)
		check_header(PM_REPL_HELLO, 1, (uint16_t)(1u << bit), PM_REPL_E_RESERVED);
	check_header(PM_REPL_HELLO, 1, 0xffff, PM_REPL_E_RESERVED);
	check_header(PM_REPL_HELLO, 1, 0, PM_REPL_OK);
	CU_ASSERT_EQUAL(PM_REPL_VERSION, 1);
}

/* ---------------------------------------------------------------- payload sizes */

/* A frame of `type` whose payload is n zero-or-pattern bytes. */
static size_t fb_sized(uint8_t type, size_t n)
{
	fb_start(type);
	for (size_t i = 0; i < n; i++)
		F.buf[F.n++] = 0;
	return fb_end();
}

static void test_fixed_sizes(void)
{
	static const struct { uint8_t type; uint32_t bytes; } fixed[] = {
		{ PM_REPL_HELLO, PM_REPL_HELLO_BYTES },
		{ PM_REPL_WELCOME, PM_REPL_WELCOME_BYTES },
		{ PM_REPL_SNAP_BEGIN, PM_REPL_SNAP_BEGIN_BYTES },
		{ PM_REPL_SNAP_END, PM_REPL_SNAP_END_BYTES },
		{ PM_REPL_ACK, PM_REPL_ACK_BYTES },
		{ PM_REPL_PING, PM_REPL_PING_BYTES },
	};
	/* repl.h's sizes, counted from its layout */
	CU_ASSERT_EQUAL(PM_REPL_HELLO_BYTES, 8 + 4 + 4 + 8 + 8 + 8 + 4);
	CU_ASSERT_EQUAL(PM_REPL_WELCOME_BYTES, 8 + 1 + 3 + 8 + 8 + 8 + 4 + 2 + 2);
	CU_ASSERT_EQUAL(PM_REPL_SNAP_BEGIN_BYTES, 8 + 8 + 8);
	CU_ASSERT_EQUAL(PM_REPL_SNAP_END_BYTES, 8 + 8);
	CU_ASSERT_EQUAL(PM_REPL_ACK_BYTES, 8 + 8 + 8);
	CU_ASSERT_EQUAL(PM_REPL_PING_BYTES, 8 + 8 + 8);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		uint32_t p = fixed[i].bytes - PM_REPL_FRAME_HEADER_BYTES;
		static const int32_t deltas[] = { -1, 1, 2, 8, 100 };
		for (size_t d = 0; d < sizeof(deltas) / sizeof(deltas[0]); d++) {
			size_t n = fb_sized(fixed[i].type, (size_t)((int32_t)p + deltas[d]));
			if (result_of(F.buf, n) != PM_REPL_E_LENGTH)
				fprintf(stderr, "\n  %s with %zu payload bytes\n",
					pm_repl_type_name(fixed[i].type), n - 8);
			CU_ASSERT_EQUAL(result_of(F.buf, n), PM_REPL_E_LENGTH);
		}
		size_t n = fb_sized(fixed[i].type, 0);
		CU_ASSERT_EQUAL(result_of(F.buf, n), PM_REPL_E_LENGTH);
		/* the right size with every field 0: fields may break rules
		 * (HELLO's shards 0, WELCOME's mode 0), never the length */
		n = fb_sized(fixed[i].type, p);
		CU_ASSERT_NOT_EQUAL(result_of(F.buf, n), PM_REPL_E_LENGTH);
		/* a frame claiming one byte more than its type's is judged whole,
		 * not cut at the type's size: MORE until the extra byte is there */
		fb_sized(fixed[i].type, p + 1);
		CU_ASSERT_EQUAL(result_of(F.buf, fixed[i].bytes), PM_REPL_MORE);
	}
}

/* ---------------------------------------------------------------- fields */

static void test_hello_fields(void)
{
	CU_ASSERT_EQUAL(result_of(F.buf, fb_hello(0, 1, 1, 1, 1, 0)), PM_REPL_OK);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_hello(63, 64, 1, 1, 1, 0)), PM_REPL_OK);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_hello(0, 0, 1, 1, 1, 0)), PM_REPL_E_FIELD);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_hello(1, 0, 1, 1, 1, 0)), PM_REPL_E_FIELD);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_hello(4, 4, 1, 1, 1, 0)), PM_REPL_E_FIELD);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_hello(5, 4, 1, 1, 1, 0)), PM_REPL_E_FIELD);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_hello(UINT32_MAX, UINT32_MAX, 1, 1, 1, 0)),
			PM_REPL_E_FIELD);
	for (int bit = 0; bit < 32; bit++)
		CU_ASSERT_EQUAL(result_of(F.buf, fb_hello(0, 1, 1, 1, 1, 1u << bit)),
				PM_REPL_E_RESERVED);
}

static void test_welcome_fields(void)
{
	size_t n = fb_welcome(PM_REPL_PARTIAL, 0, 1, 1, 1, 1, 1);
	CU_ASSERT_EQUAL(result_of(F.buf, n), PM_REPL_OK);
	n = fb_welcome(PM_REPL_FULL, 0, 1, 1, 1, 1, 1);
	CU_ASSERT_EQUAL(result_of(F.buf, n), PM_REPL_OK);
	static const uint8_t bad_modes[] = { 0, 3, 4, 0x81, 255 };
	for (size_t i = 0; i < sizeof(bad_modes); i++)
		CU_ASSERT_EQUAL(result_of(F.buf, fb_welcome(bad_modes[i], 0, 1, 1, 1, 1, 1)),
				PM_REPL_E_FIELD);
	for (int bit = 0; bit < 24; bit++) {
		n = fb_welcome(PM_REPL_FULL, 1u << bit, 1, 1, 1, 1, 1);
		CU_ASSERT_EQUAL(result_of(F.buf, n), PM_REPL_E_RESERVED);
	}
}

static void test_refuse_fields(void)
{
	const uint32_t T = PM_REPL_TEXT_BYTES_MAX;
	CU_ASSERT_EQUAL(result_of(F.buf, fb_refuse(PM_REPL_REFUSE_ROLE, 5, 5)), PM_REPL_OK);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_refuse(PM_REPL_REFUSE_ROLE, (uint16_t)T, T)),
			PM_REPL_OK);
	/* text_len disagreeing with the payload, either way */
	CU_ASSERT_EQUAL(result_of(F.buf, fb_refuse(PM_REPL_REFUSE_ROLE, 6, 5)), PM_REPL_E_LENGTH);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_refuse(PM_REPL_REFUSE_ROLE, 4, 5)), PM_REPL_E_LENGTH);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_refuse(PM_REPL_REFUSE_ROLE, 0, 1)), PM_REPL_E_LENGTH);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_refuse(PM_REPL_REFUSE_ROLE, 0xffff, 0)),
			PM_REPL_E_LENGTH);
	/* a payload too short for reason and text_len */
	for (size_t p = 0; p < 4; p++)
		CU_ASSERT_EQUAL(result_of(F.buf, fb_sized(PM_REPL_REFUSE, p)), PM_REPL_E_LENGTH);
	/* text past the bound, however it agrees with the payload */
	CU_ASSERT_EQUAL(result_of(F.buf, fb_refuse(PM_REPL_REFUSE_ROLE, (uint16_t)(T + 1), T + 1)),
			PM_REPL_E_FIELD);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_refuse(PM_REPL_REFUSE_ROLE, 0xffff, 0xffff)),
			PM_REPL_E_FIELD);
	/* reasons outside the enum */
	static const uint16_t bad[] = { 0, PM_REPL_REFUSE_END, PM_REPL_REFUSE_END + 1, 0x100,
					0xffff };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(result_of(F.buf, fb_refuse(bad[i], 3, 3)), PM_REPL_E_FIELD);
}

static void test_records_fields(void)
{
	const uint32_t R = PM_REPL_RECORD_BYTES_MIN;
	CU_ASSERT_EQUAL(result_of(F.buf, fb_records(1, 1, R)), PM_REPL_OK);
	/* too short for the fixed part and one record */
	for (size_t p = 0; p < PM_REPL_RECORDS_FIXED_BYTES + R; p++)
		CU_ASSERT_EQUAL(result_of(F.buf, fb_sized(PM_REPL_RECORDS, p)), PM_REPL_E_LENGTH);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_records(1, 1, R - 1)), PM_REPL_E_LENGTH);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_records(1, 0, R)), PM_REPL_E_FIELD);   /* count 0 */
	CU_ASSERT_EQUAL(result_of(F.buf, fb_records(0, 1, R)), PM_REPL_E_FIELD);   /* LSN 0 */
	/* count as large as fits, and one more */
	CU_ASSERT_EQUAL(result_of(F.buf, fb_records(1, 10, 10 * R)), PM_REPL_OK);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_records(1, 10, 11 * R - 1)), PM_REPL_OK);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_records(1, 11, 11 * R - 1)), PM_REPL_E_FIELD);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_records(1, UINT32_MAX, 10 * R)), PM_REPL_E_FIELD);
	/* first_lsn + count past 2^64 - 1 */
	CU_ASSERT_EQUAL(result_of(F.buf, fb_records(UINT64_MAX - 2, 2, 2 * R)), PM_REPL_OK);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_records(UINT64_MAX - 1, 2, 2 * R)), PM_REPL_E_FIELD);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_records(UINT64_MAX, 1, R)), PM_REPL_E_FIELD);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_records(UINT64_MAX, 2, 2 * R)), PM_REPL_E_FIELD);
}

static void test_snap_data_and_ack_fields(void)
{
	CU_ASSERT_EQUAL(result_of(F.buf, fb_snap_data(0)), PM_REPL_E_LENGTH);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_snap_data(1)), PM_REPL_OK);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_u64s(PM_REPL_ACK, 10, 10, 2)), PM_REPL_OK);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_u64s(PM_REPL_ACK, 10, 9, 2)), PM_REPL_OK);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_u64s(PM_REPL_ACK, 10, 11, 2)), PM_REPL_E_FIELD);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_u64s(PM_REPL_ACK, 0, UINT64_MAX, 2)), PM_REPL_E_FIELD);
	/* the frames without field rules take any value */
	CU_ASSERT_EQUAL(result_of(F.buf, fb_u64s(PM_REPL_SNAP_BEGIN, 0, UINT64_MAX, 2)),
			PM_REPL_OK);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_u64s(PM_REPL_SNAP_END, UINT64_MAX, 0, 1)), PM_REPL_OK);
	CU_ASSERT_EQUAL(result_of(F.buf, fb_u64s(PM_REPL_PING, UINT64_MAX, UINT64_MAX, 2)),
			PM_REPL_OK);
}

/* ---------------------------------------------------------------- encoders refuse */

#define CANARY 0xA5

/* out untouched (all CANARY) in its first n bytes. */
static bool untouched(size_t n)
{
	for (size_t i = 0; i < n; i++)
		CHECK_FIELD(out[i] == CANARY);
	return true;
}

static void test_encoders_refuse(void)
{
	uint32_t addr_be = 0;
	char text[PM_REPL_TEXT_BYTES_MAX + 1];
	memset(text, 't', sizeof(text));
	memset(out, CANARY, 64);
	/* a cap one byte short of each fixed frame: 0, nothing written */
	CU_ASSERT_EQUAL(pm_repl_encode_hello(out, PM_REPL_HELLO_BYTES - 1, 0, 1, 1, 1, 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_welcome(out, PM_REPL_WELCOME_BYTES - 1, PM_REPL_FULL, 1, 1,
					       1, addr_be, 1, 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_refuse(out, 8 + 4 + 9, PM_REPL_REFUSE_ROLE, text, 10), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_snap_begin(out, PM_REPL_SNAP_BEGIN_BYTES - 1, 1, 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_snap_end(out, PM_REPL_SNAP_END_BYTES - 1, 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_ack(out, PM_REPL_ACK_BYTES - 1, 2, 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_ping(out, PM_REPL_PING_BYTES - 1, 2, 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_hello(out, 0, 0, 1, 1, 1, 1), 0);
	CU_ASSERT_TRUE(untouched(64));
	/* fields that break a bound, with room to spare */
	CU_ASSERT_EQUAL(pm_repl_encode_hello(out, sizeof(out), 0, 0, 1, 1, 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_hello(out, sizeof(out), 2, 2, 1, 1, 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_hello(out, sizeof(out), 3, 2, 1, 1, 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_welcome(out, sizeof(out), 0, 1, 1, 1, addr_be, 1, 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_welcome(out, sizeof(out), 3, 1, 1, 1, addr_be, 1, 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_refuse(out, sizeof(out), 0, "x", 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_refuse(out, sizeof(out), PM_REPL_REFUSE_END, "x", 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_refuse(out, sizeof(out), PM_REPL_REFUSE_ROLE, text,
					      PM_REPL_TEXT_BYTES_MAX + 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_refuse(out, sizeof(out), PM_REPL_REFUSE_ROLE, text,
					      UINT32_MAX), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_ack(out, sizeof(out), 1, 2), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_ack(out, sizeof(out), 0, UINT64_MAX), 0);
	CU_ASSERT_TRUE(untouched(64));
	/* RECORDS and SNAP_DATA headers (no cap: the caller placed the bytes) */
	const uint32_t R = PM_REPL_RECORD_BYTES_MIN;
	const uint32_t most = PAYLOAD_MAX - PM_REPL_RECORDS_FIXED_BYTES;
	CU_ASSERT_EQUAL(pm_repl_encode_records_header(out, 0, 1, R), 0);       /* LSN 0 */
	CU_ASSERT_EQUAL(pm_repl_encode_records_header(out, 1, 0, R), 0);       /* count 0 */
	CU_ASSERT_EQUAL(pm_repl_encode_records_header(out, 1, 1, R - 1), 0);   /* too short */
	CU_ASSERT_EQUAL(pm_repl_encode_records_header(out, 1, 0, 0), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_records_header(out, 1, 3, 3 * R - 1), 0); /* more than fit */
	CU_ASSERT_EQUAL(pm_repl_encode_records_header(out, 1, 1, most + 1), 0); /* past the bound */
	CU_ASSERT_EQUAL(pm_repl_encode_records_header(out, 1, 1, UINT32_MAX), 0);
	/* LSNs past 2^64 - 1: the decoder refuses them, so the encoder must */
	CU_ASSERT_EQUAL(pm_repl_encode_records_header(out, UINT64_MAX, 1, R), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_records_header(out, UINT64_MAX - 1, 2, 2 * R), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_snap_data_header(out, 0), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_snap_data_header(out, PAYLOAD_MAX + 1), 0);
	CU_ASSERT_EQUAL(pm_repl_encode_snap_data_header(out, UINT32_MAX), 0);
	CU_ASSERT_TRUE(untouched(64));
	/* whatever an encoder accepts, the decoder accepts: the edges just inside */
	CU_ASSERT_NOT_EQUAL(pm_repl_encode_records_header(out, UINT64_MAX - 2, 2, 2 * R), 0);
	CU_ASSERT_EQUAL(result_of(out, PM_REPL_FRAME_HEADER_BYTES + PM_REPL_RECORDS_FIXED_BYTES +
					       2 * R),
			PM_REPL_OK);
	size_t n = pm_repl_encode_refuse(out, 8 + 4 + 10, PM_REPL_REFUSE_ROLE, text, 10);
	CU_ASSERT_EQUAL(n, 8 + 4 + 10); /* an exact cap is enough */
	CU_ASSERT_EQUAL(result_of(out, n), PM_REPL_OK);
	n = pm_repl_encode_hello(out, PM_REPL_HELLO_BYTES, 0, 1, 0, 0, 0);
	CU_ASSERT_EQUAL(n, PM_REPL_HELLO_BYTES);
	CU_ASSERT_EQUAL(result_of(out, n), PM_REPL_OK);
}

/* ---------------------------------------------------------------- properties */

struct prop_stats {
	unsigned bad;
	unsigned ok[PM_REPL_TYPE_END];
	unsigned results[PM_REPL_E_FIELD + 1];
};

/* The rules of a frame the decoder accepted, and its re-encoding is the same
 * bytes (repl_check.c, which the fuzz target uses too). */
static bool frame_ok(const uint8_t *b, size_t used, const struct pm_repl_frame *f)
{
	const char *broken = repl_frame_check(b, used, f);
	if (broken)
		fprintf(stderr, "\n  mismatch: %s\n", broken);
	return broken == NULL;
}

/* One input, from a heap copy of exactly len bytes: a known result; OK means
 * used <= len and a frame that keeps every rule; anything else used 0. */
static enum pm_repl_result prop_one(const uint8_t *in, size_t len, struct prop_stats *ps,
				    uint64_t iter)
{
	uint8_t *b = malloc(len ? len : 1);
	CU_ASSERT_FATAL(b != NULL);
	if (len)
		memcpy(b, in, len);
	struct pm_repl_frame f;
	size_t used = SIZE_MAX;
	enum pm_repl_result r = pm_repl_decode(b, len, &f, &used);
	bool good = r <= PM_REPL_E_FIELD;
	if (good && r == PM_REPL_OK) {
		good = used <= len && used >= PM_REPL_FRAME_HEADER_BYTES && used == 4u + ld(b, 4) &&
		       frame_ok(b, used, &f);
		ps->ok[f.type < PM_REPL_TYPE_END ? f.type : 0]++;
	} else if (good) {
		good = used == 0;
		/* MORE only while the frame is not whole */
		if (r == PM_REPL_MORE)
			good &= len < 4 || len < 4u + ld(b, 4);
	}
	if (good)
		ps->results[r]++;
	if (!good && ps->bad++ == 0)
		fprintf(stderr, "\n  first bad input at iteration %llu (len %zu): %s\n",
			(unsigned long long)iter, len, pm_repl_result_name(r));
	free(b);
	return r;
}

static uint8_t propbuf[PROP_RANDOM_BYTES_MAX + 1024];

static void test_random_bytes(void)
{
	uint64_t seed = 0x5eed0103;
	struct prop_stats ps = { 0 };
	for (uint64_t it = 0; it < PROP_RANDOM; it++) {
		size_t len = pm_test_rand(&seed) % (PROP_RANDOM_BYTES_MAX + 1);
		for (size_t i = 0; i < len; i++)
			propbuf[i] = (uint8_t)pm_test_rand(&seed);
		if (len >= PM_REPL_FRAME_HEADER_BYTES && (it & 1)) {
			/* a plausible header, so the payload checks see random input:
			 * the length of what is there (or a little off), a known type,
			 * version 1, reserved 0; and often mostly zero bytes, so that
			 * flags, pads and counts are sometimes right */
			uint64_t x = pm_test_rand(&seed);
			uint32_t l = (uint32_t)(len - 4);
			if (x & 0x10)
				l += (uint32_t)((x >> 8) % 5) - 2;
			st(propbuf, l, 4);
			propbuf[4] = (uint8_t)(1 + (x >> 16) % (PM_REPL_TYPE_END - 1));
			propbuf[5] = PM_REPL_VERSION;
			st(propbuf + 6, 0, 2);
			if ((x >> 24) % 16 == 0) /* now and then one header byte wrong */
				propbuf[4 + (x >> 32) % 4] = (uint8_t)(x >> 40);
			if (it & 2)
				for (size_t i = 8; i < len; i++)
					if (pm_test_rand(&seed) % 4)
						propbuf[i] = 0;
		}
		prop_one(propbuf, len, &ps, it);
	}
	CU_ASSERT_EQUAL(ps.bad, 0);
	/* every result came up, and accepted frames of most types */
	for (int r = PM_REPL_OK; r <= PM_REPL_E_FIELD; r++) {
		if (ps.results[r] == 0)
			fprintf(stderr, "\n  no random input gave %s\n", pm_repl_result_name(r));
		CU_ASSERT(ps.results[r] > 0);
	}
	unsigned types_ok = 0;
	for (int t = 1; t < PM_REPL_TYPE_END; t++)
		types_ok += ps.ok[t] > 0;
	CU_ASSERT(types_ok >= 6);
}

static size_t mutate(uint8_t *b, size_t len, uint64_t *seed)
{
	int rounds = 1 + (int)(pm_test_rand(seed) % 3);
	for (int r = 0; r < rounds && len > 0; r++) {
		uint64_t x = pm_test_rand(seed);
		size_t at = (size_t)(x >> 8) % len;
		static const uint64_t edits[] = { 0, 1, 2, 3, 4, 7, 8, 20, 21, 255, 256, 257,
						  65535, 0x7fffffff, 0xffffffff, UINT64_MAX };
		uint64_t v = edits[(x >> 40) % (sizeof(edits) / sizeof(edits[0]))];
		switch (x % 7) {
		case 0: b[at] ^= (uint8_t)(1u << ((x >> 4) % 8)); break;
		case 1: b[at] = (uint8_t)(x >> 32); break;
		case 2: len = at; break; /* truncate */
		case 3: /* a u32 field somewhere */
			if (len >= at + 4)
				st(b + at, v, 4);
			break;
		case 4: /* a u64 field somewhere */
			if (len >= at + 8)
				st(b + at, v, 8);
			break;
		case 5: /* the length, near the truth */
			if (len >= 4)
				st(b, (uint32_t)(len - 4) + (uint32_t)((x >> 16) % 9) - 4, 4);
			break;
		default: /* append a few bytes, the length following */
			if (len + 4 <= sizeof(propbuf)) {
				st(b + len, x, 4);
				len += 4;
				if (x & 0x100)
					st(b, (uint32_t)(len - 4), 4);
			}
			break;
		}
	}
	return len;
}

static void test_mutated_frames(void)
{
	uint64_t seed = 0x5eed0104;
	struct prop_stats ps = { 0 };
	unsigned changed_ok[PM_REPL_TYPE_END] = { 0 };
	corpus_build();
	for (int i = 0; i < C.n; i++) /* unmutated, every corpus frame decodes */
		prop_one(C.frame[i], C.len[i], &ps, 0);
	CU_ASSERT_EQUAL(ps.results[PM_REPL_OK], (unsigned)C.n);
	for (uint64_t it = 0; it < PROP_MUTATIONS; it++) {
		int pick = (int)(pm_test_rand(&seed) % (uint64_t)C.n);
		size_t len = C.len[pick];
		CU_ASSERT_FATAL(len <= sizeof(propbuf) - 16);
		memcpy(propbuf, C.frame[pick], len);
		len = mutate(propbuf, len, &seed);
		bool changed = len != C.len[pick] || memcmp(propbuf, C.frame[pick], len) != 0;
		if (prop_one(propbuf, len, &ps, it) == PM_REPL_OK && changed)
			changed_ok[propbuf[4] < PM_REPL_TYPE_END ? propbuf[4] : 0]++;
	}
	corpus_free();
	CU_ASSERT_EQUAL(ps.bad, 0);
	/* mutated frames of every type got through the checks and were held to them */
	for (int t = 1; t < PM_REPL_TYPE_END; t++) {
		if (changed_ok[t] == 0)
			fprintf(stderr, "\n  no mutated %s was accepted\n",
				pm_repl_type_name((uint8_t)t));
		CU_ASSERT(changed_ok[t] > 0);
	}
	for (int r = PM_REPL_OK; r <= PM_REPL_E_FIELD; r++)
		CU_ASSERT(ps.results[r] > 0);
}

static CU_TestInfo tests[] = {
	{ "names and wire values", test_names },
	{ "round trip: HELLO", test_roundtrip_hello },
	{ "round trip: WELCOME", test_roundtrip_welcome },
	{ "round trip: REFUSE", test_roundtrip_refuse },
	{ "round trip: RECORDS", test_roundtrip_records },
	{ "round trip: SNAP_BEGIN, SNAP_DATA, SNAP_END", test_roundtrip_snap },
	{ "round trip: ACK, PING", test_roundtrip_ack_ping },
	{ "a frame one byte at a time", test_byte_at_a_time },
	{ "a stream in random pieces", test_stream_in_pieces },
	{ "length bounds", test_length_bounds },
	{ "header: type, version, reserved", test_header_fields },
	{ "fixed-size payloads", test_fixed_sizes },
	{ "HELLO fields", test_hello_fields },
	{ "WELCOME fields", test_welcome_fields },
	{ "REFUSE fields", test_refuse_fields },
	{ "RECORDS fields", test_records_fields },
	{ "SNAP_DATA and ACK fields", test_snap_data_and_ack_fields },
	{ "encoders refuse", test_encoders_refuse },
	{ "property: random bytes", test_random_bytes },
	{ "property: mutated frames", test_mutated_frames },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	return pm_cu_run("repl_proto", tests);
}
