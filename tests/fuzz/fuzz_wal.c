/* SPDX-License-Identifier: MIT
 *
 * fuzz_wal.c — the write-ahead log's format (engine/wal.h): a segment header
 * and the records after it, read the way recovery reads a segment file.
 *
 * Input: one mode byte, then the segment's bytes. Mode bit 0 recomputes every
 * plausible record's CRC32C before scanning, and bit 1 the segment header's,
 * so that the fuzzer reaches the payload parsers past the checksums; mode 0
 * reads the bytes as they are (the real segments of the seed corpus).
 *
 * Invariants: the scan ends (END, TORN or CORRUPT) within the input; every
 * record's fields lie inside it and within pm_limits.h; LSNs are consecutive;
 * pm_wal_to_request turns every record into a mutation; re-encoding it
 * (pm_wal_encode) gives a record of the same size that scans back to the same
 * fields.
 */
#include <string.h>

#include "fuzz.h"
#include "pm_limits.h"
#include "wal.h"

#define WAL_MODE_FIX_RECORDS 0x01u
#define WAL_MODE_FIX_HEADER 0x02u
/* Largest segment image read (the fuzzer's inputs are far smaller). */
#define WAL_INPUT_BYTES_MAX (1u << 20)
/* A time after every expiry the seeds carry: records expire when replayed. */
#define WAL_LATE_MS (UINT64_C(1) << 50)
#define REC_LSN_OFF 8u
#define SEG_CRC_OFF 60u

static uint8_t seg[WAL_INPUT_BYTES_MAX];
static uint8_t again[PM_WAL_RECORD_HEADER_BYTES + PM_WAL_PAYLOAD_BYTES_MAX];

static uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void st32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Make every record whose length fits its CRC right, from off on. */
static void fix_records(uint8_t *b, size_t len, size_t off)
{
	while (len - off >= PM_WAL_RECORD_HEADER_BYTES) {
		uint32_t plen = ld32(b + off);
		if (plen == 0 || plen > PM_WAL_PAYLOAD_BYTES_MAX ||
		    plen > len - off - PM_WAL_RECORD_HEADER_BYTES)
			return;
		st32(b + off + 4, pm_crc32c(0, b + off + REC_LSN_OFF,
					    PM_WAL_RECORD_HEADER_BYTES - REC_LSN_OFF + plen));
		off += PM_WAL_RECORD_HEADER_BYTES + plen;
	}
}

static int same_bytes(struct pm_bytes a, struct pm_bytes b)
{
	return a.len == b.len && (a.len == 0 || !memcmp(a.ptr, b.ptr, a.len));
}

static void check_record(const struct pm_wal_record *r, const uint8_t *b, size_t len)
{
	FUZZ_CHECK(r->type >= PM_WAL_SET && r->type < PM_WAL_TYPE_END);
	FUZZ_CHECK(r->key.len <= PM_KEY_BYTES_MAX && fuzz_inside(r->key.ptr, r->key.len, b, len));
	FUZZ_CHECK(r->value.len <= PM_VALUE_BYTES_MAX &&
		   fuzz_inside(r->value.ptr, r->value.len, b, len));
	FUZZ_CHECK(r->collection.len <= PM_COLLECTION_NAME_BYTES_MAX &&
		   fuzz_inside(r->collection.ptr, r->collection.len, b, len));
	FUZZ_CHECK(r->dim <= PM_DIM_MAX && fuzz_inside(r->vec, (size_t)r->dim * 4u, b, len));
	bool keyed = r->type != PM_WAL_CCREATE && r->type != PM_WAL_CDROP;
	FUZZ_CHECK(!keyed || r->key.len >= 1);
	FUZZ_CHECK(keyed || r->collection.len >= 1);
	FUZZ_CHECK(r->type != PM_WAL_VADD || r->dim >= 1);
}

/* Record -> request -> record: the same fields (now 0: every expiry is in
 * the future, so the TTL carries it exactly). */
static void round_trip(const struct pm_wal_record *r, size_t used)
{
	struct pm_request req;
	bool expired;
	pm_wal_to_request(r, WAL_LATE_MS, &req, &expired);
	FUZZ_CHECK(pm_wal_logs(req.op));
	FUZZ_CHECK(expired == (r->expire_ms != 0 && r->expire_ms <= WAL_LATE_MS));
	pm_wal_to_request(r, 0, &req, &expired);
	FUZZ_CHECK(!expired && pm_wal_logs(req.op));
	FUZZ_CHECK(pm_wal_record_bytes(&req) == used);
	size_t n = pm_wal_encode(&req, 0, r->lsn, again, sizeof(again));
	FUZZ_CHECK(n == used);
	struct pm_wal_record b;
	size_t used2;
	FUZZ_CHECK(pm_wal_scan_next(again, n, r->lsn, &b, &used2) == PM_WAL_RECORD && used2 == n);
	FUZZ_CHECK(b.lsn == r->lsn && b.type == r->type && b.expire_ms == r->expire_ms);
	FUZZ_CHECK(same_bytes(b.key, r->key) && same_bytes(b.value, r->value));
	FUZZ_CHECK(same_bytes(b.collection, r->collection) && b.dim == r->dim);
	FUZZ_CHECK(b.dim == 0 || !memcmp(b.vec, r->vec, (size_t)b.dim * 4u));
	FUZZ_CHECK(!memcmp(&b.params, &r->params, sizeof(b.params)));
}

static void scan(const uint8_t *b, size_t len, size_t off, uint64_t want)
{
	for (;;) {
		struct pm_wal_record r;
		size_t used = 1;
		enum pm_wal_scan_result res = pm_wal_scan_next(b + off, len - off, want, &r, &used);
		FUZZ_CHECK(res <= PM_WAL_CORRUPT);
		if (res != PM_WAL_RECORD) {
			FUZZ_CHECK(used == 0);
			return;
		}
		FUZZ_CHECK(used > PM_WAL_RECORD_HEADER_BYTES && used <= len - off);
		FUZZ_CHECK(want == 0 || r.lsn == want);
		check_record(&r, b + off, used);
		round_trip(&r, used);
		off += used;
		want = r.lsn + 1;
		if (want == 0) /* an LSN of 2^64 - 1: nothing can follow it */
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size - 1 > WAL_INPUT_BYTES_MAX)
		return 0;
	uint8_t mode = data[0];
	size_t len = size - 1;
	memcpy(seg, data + 1, len);
	struct pm_wal_segment_header h;
	if ((mode & WAL_MODE_FIX_HEADER) && len >= PM_WAL_SEGMENT_HEADER_BYTES)
		st32(seg + SEG_CRC_OFF, pm_crc32c(0, seg, SEG_CRC_OFF));
	enum pm_status st = pm_wal_segment_header_decode(seg, len, &h);
	FUZZ_CHECK(st == PM_OK || st == PM_E_PARAM);
	FUZZ_CHECK(st != PM_OK || len >= PM_WAL_SEGMENT_HEADER_BYTES);
	FUZZ_CHECK(st != PM_OK || h.version == PM_WAL_VERSION);
	size_t off = st == PM_OK ? PM_WAL_SEGMENT_HEADER_BYTES : 0;
	if (mode & WAL_MODE_FIX_RECORDS)
		fix_records(seg, len, off);
	/* through a heap copy of exactly len bytes: ASan sees a read past the end */
	uint8_t *b = malloc(len ? len : 1);
	FUZZ_CHECK(b != NULL);
	memcpy(b, seg, len);
	scan(b, len, off, st == PM_OK ? h.first_lsn : 0);
	free(b);
	return 0;
}
