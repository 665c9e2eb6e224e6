/* SPDX-License-Identifier: MIT
 *
 * test_wal.c — the write-ahead log format: every record type round-trips
 * (limits, binary data, TTL as absolute expiry); encode refuses what it must
 * and never writes past its cap (exact-size heap buffers, so ASan sees any
 * overrun); a segment of random records scans back exactly; a log cut at every
 * byte of its last records ends TORN or END with all complete records before;
 * a flipped bit anywhere is never read as a record, and is CORRUPT whenever a
 * record follows it; LSN gaps and well-checksummed nonsense are CORRUPT; the
 * segment header; CRC32C against known answers, a bitwise reference, and
 * between its two implementations.
 */
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "cu_main.h"
#include "pm_limits.h"
#include "wal.h"

/* Not in wal.h: wal.c exports its two CRC32C implementations for this test. */
uint32_t pm_crc32c_portable(uint32_t crc, const void *p, size_t n);
uint32_t pm_crc32c_sse42(uint32_t crc, const void *p, size_t n);
bool pm_crc32c_sse42_used(void);

#define HDR PM_WAL_RECORD_HEADER_BYTES
#define REC_LEN_OFF 0u
#define REC_CRC_OFF 4u
#define REC_LSN_OFF 8u
#define REC_TYPE_OFF 16u
#define REC_RESERVED_OFF 17u
#define REC_RESERVED_BYTES 3u
#define SEG_MAGIC_BYTES 8u
#define SEG_PAD_OFF 24u
#define SEG_CRC_OFF 60u
/* u32 dim, u8 metric, u8 index, u16 m, u32 efc, u32 efs, u8 flags, u8 dtype, u8 rerank,
 * u32 rerank_k */
#define CCREATE_PARAMS_BYTES 23u

/* Random bytes that keys, values, names and vectors point into. */
#define POOL_BYTES (256u << 10)
static uint8_t pool[POOL_BYTES];
static uint64_t rng = 0x5EED0000CAFEull;

static void pool_fill(void)
{
	for (size_t i = 0; i < POOL_BYTES; i++)
		pool[i] = (uint8_t)pm_test_rand(&rng);
	memset(pool, 0, 64);          /* some all-zero and all-ones stretches too */
	memset(pool + 64, 0xff, 64);
}

static uint32_t rnd(uint32_t n) /* 0 .. n-1 */
{
	return (uint32_t)(pm_test_rand(&rng) % n);
}

static struct pm_bytes pool_bytes(uint32_t len)
{
	return (struct pm_bytes){ pool + rnd(POOL_BYTES - len + 1), len };
}

static void put32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool zeros(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* ---------------------------------------------------------------- requests */

static bool bytes_eq(struct pm_bytes a, struct pm_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool params_eq(const struct pm_collection_params *a, const struct pm_collection_params *b)
{
	return a->dim == b->dim && a->metric == b->metric && a->index == b->index &&
	       a->hnsw_m == b->hnsw_m && a->ef_construction == b->ef_construction &&
	       a->ef_search == b->ef_search && a->flags == b->flags && a->dtype == b->dtype &&
	       a->rerank == b->rerank && a->rerank_k == b->rerank_k;
}

/* Whether got (from pm_wal_to_request) is the mutation want, with want's TTL
 * (applied at encode time t0, read back at t0 too). */
static bool request_eq(const struct pm_request *want, const struct pm_request *got)
{
	bool ok = got->op == want->op && got->id == 0 && bytes_eq(got->key, want->key);
	switch (want->op) {
	case PM_OP_SET:
		ok = ok && bytes_eq(got->value, want->value);
		break;
	case PM_OP_VADD:
		ok = ok && bytes_eq(got->collection, want->collection) && got->dim == want->dim &&
		     memcmp(got->vec, want->vec, 4u * want->dim) == 0 &&
		     got->has_attr == want->has_attr && (!want->has_attr || bytes_eq(got->attr, want->attr));
		break;
	case PM_OP_VSETATTR:
		ok = ok && bytes_eq(got->attr, want->attr);
		break;
	case PM_OP_CCREATE:
		ok = ok && params_eq(&got->params, &want->params);
		/* fall through */
	case PM_OP_CDROP:
		ok = ok && bytes_eq(got->collection, want->collection);
		break;
	default:
		break;
	}
	bool ttl = want->has_ttl && want->ttl_ms && (want->op == PM_OP_SET || want->op == PM_OP_VADD);
	return ok && got->has_ttl == ttl && got->ttl_ms == (ttl ? want->ttl_ms : 0);
}

static const uint8_t mutations[] = { PM_OP_SET,  PM_OP_DEL,     PM_OP_VADD,
				     PM_OP_VDEL, PM_OP_CCREATE, PM_OP_CDROP, PM_OP_VSETATTR };
#define NMUTATIONS (sizeof(mutations) / sizeof(mutations[0]))

/* Field size classes for random requests. */
enum size_class { SMALL, MEDIUM, LIMITS };

/* A random mutation whose fields are at most the class's sizes. */
static struct pm_request random_request(enum size_class sc)
{
	static const uint32_t kmax[] = { 40, 300, PM_KEY_BYTES_MAX };
	static const uint32_t vmax[] = { 200, 3000, PM_VALUE_BYTES_MAX };
	static const uint32_t dmax[] = { 24, 600, PM_DIM_MAX };
	struct pm_request r = { .op = mutations[rnd(NMUTATIONS)] };
	r.key = pool_bytes(1 + rnd(kmax[sc]));
	switch (r.op) {
	case PM_OP_SET:
		r.value = pool_bytes(rnd(vmax[sc] + 1));
		break;
	case PM_OP_VADD:
		r.collection = pool_bytes(rnd(PM_COLLECTION_NAME_BYTES_MAX + 1));
		r.dim = 1 + rnd(dmax[sc]);
		r.vec = pool_bytes(4 * r.dim).ptr;
		if ((r.has_attr = rnd(2)))
			r.attr = pool_bytes(1 + rnd(PM_ATTR_BYTES_MAX));
		break;
	case PM_OP_VSETATTR: /* the log keeps a record's bytes; the shard checks them */
		r.attr = pool_bytes(1 + rnd(PM_ATTR_BYTES_MAX));
		break;
	case PM_OP_CCREATE:
		r.params = (struct pm_collection_params){ (uint32_t)pm_test_rand(&rng),
			(uint8_t)rnd(256), (uint8_t)rnd(256), (uint16_t)rnd(65536),
			(uint32_t)pm_test_rand(&rng), (uint32_t)pm_test_rand(&rng), (uint8_t)rnd(256) };
		r.params.dtype = (uint8_t)rnd(256); /* carried verbatim, checked when applied */
		r.params.rerank = (uint8_t)rnd(256);
		r.params.rerank_k = (uint32_t)pm_test_rand(&rng);
		/* fall through */
	case PM_OP_CDROP:
		r.key = (struct pm_bytes){ 0 };
		r.collection = pool_bytes(1 + rnd(PM_COLLECTION_NAME_BYTES_MAX));
		break;
	default:
		break;
	}
	if (rnd(2)) {
		r.has_ttl = true;
		r.ttl_ms = 1 + rnd(1u << 30);
	}
	return r;
}

/* ---------------------------------------------------------------- logs */

#define T0_MS 1000000u /* the "now" every test log is written and read at */

struct log {
	uint8_t *buf;  /* records back to back, then zeros to cap */
	uint8_t *log;  /* a copy of the records, for tests that damage buf */
	size_t cap, bytes;
	uint32_t n;
	struct pm_request req[512];
	size_t end[512]; /* offset just after record i */
};

/* Append req as the next record (LSN n + 1). */
static void log_add(struct log *l, const struct pm_request *r)
{
	CU_ASSERT_FATAL(l->n < 512);
	size_t sz = pm_wal_encode(r, T0_MS, l->n + 1, l->buf + l->bytes, l->cap - l->bytes);
	CU_ASSERT_FATAL(sz == pm_wal_record_bytes(r) && sz > HDR);
	l->req[l->n] = *r;
	l->bytes += sz;
	l->end[l->n++] = l->bytes;
}

static void log_random(struct log *l, size_t cap, uint32_t n, enum size_class sc)
{
	l->buf = calloc(1, cap);
	l->cap = cap;
	l->bytes = 0;
	l->n = 0;
	while (l->n < n) {
		struct pm_request r = random_request(sc);
		if (pm_wal_record_bytes(&r) > cap - l->bytes)
			break;
		log_add(l, &r);
	}
}

/* Scan buf[0..len) from the start of the log's record `first`: records are
 * read up to record *nrec (exclusive), each must be the log's record of that
 * index; returns what ended the scan, and the offset where it did. */
static enum pm_wal_scan_result scan_from(const struct log *l, const uint8_t *buf, size_t len,
					 uint32_t first, uint32_t *nrec, size_t *at, bool *mismatch)
{
	size_t off = first ? l->end[first - 1] : 0;
	*nrec = first;
	*mismatch = false;
	for (;;) {
		struct pm_wal_record rec;
		size_t used = 99;
		enum pm_wal_scan_result res =
			pm_wal_scan_next(buf + off, len - off, *nrec + 1, &rec, &used);
		if (res != PM_WAL_RECORD) {
			*mismatch |= used != 0;
			*at = off;
			return res;
		}
		struct pm_request got;
		bool expired = true;
		pm_wal_to_request(&rec, T0_MS, &got, &expired);
		*mismatch |= *nrec >= l->n || rec.lsn != *nrec + 1 || expired ||
			     !request_eq(&l->req[*nrec], &got) || off + used != l->end[*nrec];
		if (*mismatch)
			return PM_WAL_RECORD;
		off += used;
		(*nrec)++;
	}
}

static enum pm_wal_scan_result scan(const struct log *l, const uint8_t *buf, size_t len,
				    uint32_t *nrec, size_t *at, bool *mismatch)
{
	return scan_from(l, buf, len, 0, nrec, at, mismatch);
}

/* ---------------------------------------------------------------- CRC32C */

/* Bit at a time, straight from the definition: the reference. */
static uint32_t crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static void test_crc32c_known(void)
{
	CU_ASSERT_EQUAL(pm_crc32c(0, "123456789", 9), 0xE3069283u);
	CU_ASSERT_EQUAL(pm_crc32c_portable(0, "123456789", 9), 0xE3069283u);
	CU_ASSERT_EQUAL(pm_crc32c(0, "", 0), 0u);
	CU_ASSERT_EQUAL(pm_crc32c(0, NULL, 0), 0u);
	CU_ASSERT_EQUAL(pm_crc32c(0x12345678u, "", 0), 0x12345678u);
	/* RFC 3720 (iSCSI) B.4 test vectors */
	uint8_t v[32];
	memset(v, 0, sizeof(v));
	CU_ASSERT_EQUAL(pm_crc32c(0, v, 32), 0x8A9136AAu);
	memset(v, 0xff, sizeof(v));
	CU_ASSERT_EQUAL(pm_crc32c(0, v, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		v[i] = (uint8_t)i;
	CU_ASSERT_EQUAL(pm_crc32c(0, v, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		v[i] = (uint8_t)(31 - i);
	CU_ASSERT_EQUAL(pm_crc32c(0, v, 32), 0x113FDB5Cu);
}

/* Both implementations agree with the reference at every length, offset
 * (alignment) and split point; chaining equals one pass. */
static void test_crc32c_impls(void)
{
	printf("(crc32c: %s) ", pm_crc32c_sse42_used() ? "sse4.2" : "portable");
	uint32_t bad = 0;
	for (size_t n = 0; n < 300; n++) {
		for (size_t off = 0; off < 8; off++) {
			const uint8_t *p = pool + 1000 + off;
			uint32_t want = crc32c_bitwise(0, p, n);
			bad += pm_crc32c_portable(0, p, n) != want || pm_crc32c(0, p, n) != want;
			if (pm_crc32c_sse42_used())
				bad += pm_crc32c_sse42(0, p, n) != want;
			size_t cut = n ? rnd((uint32_t)n + 1) : 0;
			bad += pm_crc32c(pm_crc32c(0, p, cut), p + cut, n - cut) != want;
			bad += pm_crc32c_portable(pm_crc32c_portable(0, p, cut), p + cut, n - cut) != want;
		}
	}
	for (int i = 0; i < 200; i++) { /* long random buffers */
		uint32_t n = rnd(POOL_BYTES / 2), off = rnd(POOL_BYTES - n), seed = (uint32_t)pm_test_rand(&rng);
		uint32_t want = crc32c_bitwise(seed, pool + off, n);
		bad += pm_crc32c_portable(seed, pool + off, n) != want || pm_crc32c(seed, pool + off, n) != want;
		if (pm_crc32c_sse42_used())
			bad += pm_crc32c_sse42(seed, pool + off, n) != want;
	}
	CU_ASSERT_EQUAL(bad, 0);
}

/* ---------------------------------------------------------------- round trips */

/* Encode r into an exact-size heap buffer, scan it back, compare. */
static void round_trip(const struct pm_request *r)
{
	size_t sz = pm_wal_record_bytes(r);
	CU_ASSERT_FATAL(sz > HDR);
	uint8_t *buf = malloc(sz);
	CU_ASSERT_EQUAL_FATAL(pm_wal_encode(r, T0_MS, 7, buf, sz), sz);
	CU_ASSERT_EQUAL(get32(buf + REC_LEN_OFF), sz - HDR);
	struct pm_wal_record rec;
	size_t used = 0;
	CU_ASSERT_EQUAL_FATAL(pm_wal_scan_next(buf, sz, 7, &rec, &used), PM_WAL_RECORD);
	CU_ASSERT_EQUAL(used, sz);
	CU_ASSERT_EQUAL(rec.lsn, 7);
	struct pm_request got;
	bool expired = true;
	pm_wal_to_request(&rec, T0_MS, &got, &expired);
	CU_ASSERT_FALSE(expired);
	CU_ASSERT_TRUE(request_eq(r, &got));
	/* the decoded pointers point into the record */
	if (got.key.len)
		CU_ASSERT(got.key.ptr > buf && got.key.ptr < buf + sz);
	if (got.op == PM_OP_VADD)
		CU_ASSERT(got.vec > buf && got.vec + 4u * got.dim < buf + sz);
	CU_ASSERT_EQUAL(pm_wal_scan_next(buf + sz, 0, 8, &rec, &used), PM_WAL_END);
	free(buf);
}

static void test_round_trip_types(void)
{
	struct pm_collection_params params = { 768, PM_METRIC_COSINE, PM_INDEX_HNSW, 32, 400, 100 };
	const struct pm_request reqs[] = {
		{ .op = PM_OP_SET, .key = { pool, 1 }, .value = { pool, 0 } },
		{ .op = PM_OP_SET, .key = { pool + 100, PM_KEY_BYTES_MAX },
		  .value = { pool + 2000, PM_VALUE_BYTES_MAX }, .has_ttl = true, .ttl_ms = PM_TTL_MS_MAX },
		{ .op = PM_OP_SET, .key = { pool, 64 }, .value = { pool + 64, 64 } }, /* zeros, 0xff */
		{ .op = PM_OP_DEL, .key = { pool + 5, PM_KEY_BYTES_MAX } },
		{ .op = PM_OP_VDEL, .key = { pool + 9, 3 } },
		{ .op = PM_OP_VADD, .key = { pool + 1, 1 }, .dim = 1, .vec = pool + 77 },
		{ .op = PM_OP_VADD, .key = { pool + 3, PM_KEY_BYTES_MAX },
		  .collection = { pool + 11, PM_COLLECTION_NAME_BYTES_MAX }, .dim = PM_DIM_MAX,
		  .vec = pool + 50001, .has_ttl = true, .ttl_ms = 1 },
		{ .op = PM_OP_CCREATE, .collection = { (const uint8_t *)"c", 1 }, .params = params },
		{ .op = PM_OP_CCREATE, .collection = { pool + 99, PM_COLLECTION_NAME_BYTES_MAX },
		  .params = { UINT32_MAX, 255, 255, UINT16_MAX, UINT32_MAX, UINT32_MAX } },
		{ .op = PM_OP_CDROP, .collection = { pool + 12, PM_COLLECTION_NAME_BYTES_MAX } },
	};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		round_trip(&reqs[i]);
	for (int i = 0; i < 300; i++) {
		struct pm_request r = random_request(LIMITS);
		round_trip(&r);
	}
}

/* The largest SET fits PM_WAL_PAYLOAD_BYTES_MAX, and so does the largest VADD. */
static void test_largest_records(void)
{
	struct pm_request set = { .op = PM_OP_SET, .key = { pool, PM_KEY_BYTES_MAX },
				  .value = { pool, PM_VALUE_BYTES_MAX } };
	struct pm_request vadd = { .op = PM_OP_VADD, .key = { pool, PM_KEY_BYTES_MAX },
				   .collection = { pool, PM_COLLECTION_NAME_BYTES_MAX },
				   .dim = PM_DIM_MAX, .vec = pool };
	CU_ASSERT(pm_wal_record_bytes(&set) <= HDR + PM_WAL_PAYLOAD_BYTES_MAX);
	CU_ASSERT(pm_wal_record_bytes(&vadd) <= HDR + PM_WAL_PAYLOAD_BYTES_MAX);
	CU_ASSERT_EQUAL(pm_wal_record_bytes(&set), HDR + 4 + PM_KEY_BYTES_MAX + 4 + PM_VALUE_BYTES_MAX + 8);
}

static void test_ttl(void)
{
	const uint64_t t0 = 5000;
	struct pm_request r = { .op = PM_OP_SET, .key = { pool, 4 }, .value = { pool, 4 },
				.has_ttl = true, .ttl_ms = 300 };
	uint8_t *buf = malloc(pm_wal_record_bytes(&r));
	size_t sz = pm_wal_encode(&r, t0, 1, buf, pm_wal_record_bytes(&r));
	struct pm_wal_record rec;
	size_t used;
	CU_ASSERT_EQUAL_FATAL(pm_wal_scan_next(buf, sz, 1, &rec, &used), PM_WAL_RECORD);
	CU_ASSERT_EQUAL(rec.expire_ms, t0 + 300);
	struct pm_request got;
	bool expired;
	pm_wal_to_request(&rec, t0 + 100, &got, &expired); /* replayed 100 ms later */
	CU_ASSERT(!expired && got.has_ttl && got.ttl_ms == 200);
	pm_wal_to_request(&rec, t0 + 299, &got, &expired);
	CU_ASSERT(!expired && got.has_ttl && got.ttl_ms == 1);
	pm_wal_to_request(&rec, t0 + 300, &got, &expired); /* at the deadline: gone */
	CU_ASSERT(expired && !got.has_ttl && got.ttl_ms == 0);
	pm_wal_to_request(&rec, t0 + 100000, &got, &expired);
	CU_ASSERT(expired && !got.has_ttl);
	free(buf);

	/* VADD too; no TTL, or has_ttl with 0, is no expiry at all */
	struct pm_request v = { .op = PM_OP_VADD, .key = { pool, 4 }, .dim = 2, .vec = pool,
				.has_ttl = true, .ttl_ms = 10 };
	uint8_t vb[128];
	CU_ASSERT_FATAL(pm_wal_encode(&v, t0, 1, vb, sizeof(vb)) > 0);
	CU_ASSERT_EQUAL(pm_wal_scan_next(vb, sizeof(vb), 1, &rec, &used), PM_WAL_RECORD);
	CU_ASSERT_EQUAL(rec.expire_ms, t0 + 10);
	pm_wal_to_request(&rec, t0 + 10, &got, &expired);
	CU_ASSERT(expired);
	for (int k = 0; k < 2; k++) {
		r.has_ttl = k == 1;
		r.ttl_ms = 0;
		uint8_t b[64] = { 0 };
		CU_ASSERT_FATAL(pm_wal_encode(&r, t0, 1, b, sizeof(b)) > 0);
		CU_ASSERT_EQUAL(pm_wal_scan_next(b, sizeof(b), 1, &rec, &used), PM_WAL_RECORD);
		CU_ASSERT_EQUAL(rec.expire_ms, 0);
		pm_wal_to_request(&rec, UINT64_MAX, &got, &expired);
		CU_ASSERT(!expired && !got.has_ttl);
	}
}

/* ---------------------------------------------------------------- encode refuses */

/* Encode r into exactly cap heap bytes; the result must be 0 and nothing written. */
static bool refused_untouched(const struct pm_request *r, size_t cap)
{
	uint8_t *buf = malloc(cap); /* cap 0: no byte may be touched (ASan: 0-byte block) */
	if (cap)
		memset(buf, 0xA5, cap);
	bool ok = pm_wal_encode(r, T0_MS, 1, buf, cap) == 0;
	for (size_t i = 0; i < cap; i++)
		ok = ok && buf[i] == 0xA5;
	free(buf);
	return ok;
}

static void test_encode_refuses(void)
{
	for (unsigned op = 0; op < 256; op++) {
		struct pm_request r = { .op = (uint8_t)op, .key = { pool, 4 }, .value = { pool, 4 },
					.collection = { pool, 4 }, .vec = pool, .dim = 4,
					.attr = { pool, 4 } };
		bool logs = memchr(mutations, (int)op, NMUTATIONS) != NULL;
		CU_ASSERT_EQUAL(pm_wal_logs((uint8_t)op), logs);
		CU_ASSERT_EQUAL(pm_wal_record_bytes(&r) != 0, logs);
		if (!logs)
			CU_ASSERT_TRUE(refused_untouched(&r, 4096));
	}
	/* every cap below the size, for a few records; a sample for the largest */
	uint32_t bad = 0;
	for (int i = 0; i < 12; i++) {
		struct pm_request r = random_request(SMALL);
		size_t sz = pm_wal_record_bytes(&r);
		for (size_t cap = 0; cap < sz; cap++)
			bad += !refused_untouched(&r, cap);
	}
	struct pm_request big = { .op = PM_OP_SET, .key = { pool, PM_KEY_BYTES_MAX },
				  .value = { pool, PM_VALUE_BYTES_MAX } };
	size_t sz = pm_wal_record_bytes(&big);
	const size_t caps[] = { 0, 1, HDR, HDR + 1, sz / 2, sz - 8, sz - 1 };
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		bad += !refused_untouched(&big, caps[i]);
	CU_ASSERT_EQUAL(bad, 0);

	/* lengths the engine never accepts are never logged */
	const struct pm_request broken[] = {
		{ .op = PM_OP_SET, .key = { pool, 0 } },
		{ .op = PM_OP_SET, .key = { pool, PM_KEY_BYTES_MAX + 1 } },
		{ .op = PM_OP_SET, .key = { pool, 1 }, .value = { pool, PM_VALUE_BYTES_MAX + 1 } },
		{ .op = PM_OP_DEL, .key = { pool, 0 } },
		{ .op = PM_OP_VDEL, .key = { pool, PM_KEY_BYTES_MAX + 1 } },
		{ .op = PM_OP_VADD, .key = { pool, 1 }, .dim = 0, .vec = pool },
		{ .op = PM_OP_VADD, .key = { pool, 1 }, .dim = PM_DIM_MAX + 1, .vec = pool },
		{ .op = PM_OP_VADD, .key = { pool, 0 }, .dim = 1, .vec = pool },
		{ .op = PM_OP_VADD, .key = { pool, 1 }, .dim = 1, .vec = pool,
		  .collection = { pool, PM_COLLECTION_NAME_BYTES_MAX + 1 } },
		{ .op = PM_OP_CCREATE, .collection = { pool, 0 } },
		{ .op = PM_OP_CCREATE, .collection = { pool, PM_COLLECTION_NAME_BYTES_MAX + 1 } },
		{ .op = PM_OP_CDROP, .collection = { pool, 0 } },
		{ .op = PM_OP_CDROP, .collection = { pool, 256 } },
	};
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		CU_ASSERT_EQUAL(pm_wal_record_bytes(&broken[i]), 0);
		CU_ASSERT_TRUE(refused_untouched(&broken[i], 1u << 17));
	}
}

/* ---------------------------------------------------------------- segments */

static void test_segment_of_records(void)
{
	for (int round = 0; round < 4; round++) {
		struct log *l = calloc(1, sizeof(*l));
		log_random(l, (size_t)1 << 20, 300 + 50 * round, round == 3 ? LIMITS : round == 2 ? MEDIUM : SMALL);
		uint32_t n;
		size_t at;
		bool mismatch;
		CU_ASSERT_EQUAL(scan(l, l->buf, l->cap, &n, &at, &mismatch), PM_WAL_END);
		CU_ASSERT(n == l->n && at == l->bytes && !mismatch);
		/* a buffer that ends exactly after the last record ends cleanly too */
		CU_ASSERT_EQUAL(scan(l, l->buf, l->bytes, &n, &at, &mismatch), PM_WAL_END);
		CU_ASSERT(n == l->n && !mismatch);
		free(l->buf);
		free(l);
	}
}

static void test_segment_header(void)
{
	struct pm_wal_segment_header h = { PM_WAL_VERSION, 7, 123456789012345ull }, got;
	uint8_t *b = malloc(PM_WAL_SEGMENT_HEADER_BYTES);
	pm_wal_segment_header_encode(&h, b);
	CU_ASSERT(memcmp(b, PM_WAL_MAGIC, SEG_MAGIC_BYTES) == 0);
	CU_ASSERT(zeros(b + SEG_PAD_OFF, SEG_CRC_OFF - SEG_PAD_OFF));
	CU_ASSERT_EQUAL(pm_wal_segment_header_decode(b, PM_WAL_SEGMENT_HEADER_BYTES, &got), PM_OK);
	CU_ASSERT(got.version == PM_WAL_VERSION && got.shard == 7 && got.first_lsn == h.first_lsn);
	CU_ASSERT_EQUAL(pm_wal_segment_header_decode(b, PM_WAL_SEGMENT_HEADER_BYTES - 1, &got),
			PM_E_PARAM);
	uint32_t bad = 0; /* every flipped bit is caught: magic, version, crc, or the padding */
	for (unsigned bit = 0; bit < 8 * PM_WAL_SEGMENT_HEADER_BYTES; bit++) {
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		bad += pm_wal_segment_header_decode(b, PM_WAL_SEGMENT_HEADER_BYTES, &got) != PM_E_PARAM;
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* a good CRC does not make another version or magic acceptable */
	h.version = PM_WAL_VERSION + 1;
	pm_wal_segment_header_encode(&h, b);
	CU_ASSERT_EQUAL(pm_wal_segment_header_decode(b, PM_WAL_SEGMENT_HEADER_BYTES, &got), PM_E_PARAM);
	h.version = PM_WAL_VERSION;
	pm_wal_segment_header_encode(&h, b);
	b[0] = 'X';
	put32(b + SEG_CRC_OFF, pm_crc32c(0, b, SEG_CRC_OFF));
	CU_ASSERT_EQUAL(pm_wal_segment_header_decode(b, PM_WAL_SEGMENT_HEADER_BYTES, &got), PM_E_PARAM);
	free(b);
}

/* ---------------------------------------------------------------- torn tails */

/* Cut the log at c, both ways a crash leaves it: a file that simply ends at
 * c, and zeros from c to the end of the segment. Every complete record before
 * the cut is read (from record `first` on), then END if nothing of the next
 * record survives (c is on a boundary, or only zero bytes of it were
 * written), else TORN. With zeros after the cut, a record whose bytes from c
 * on were zeros anyway (a last field of 0) is complete. buf holds the log and
 * is restored. */
static bool cut_ok(const struct log *l, uint8_t *buf, uint32_t first, size_t c)
{
	uint32_t whole[2] = { 0 };
	while (whole[0] < l->n && l->end[whole[0]] <= c)
		whole[0]++;
	whole[1] = whole[0] + (whole[0] < l->n && zeros(l->log + c, l->end[whole[0]] - c));
	enum pm_wal_scan_result want[2];
	size_t start[2];
	for (int k = 0; k < 2; k++) {
		start[k] = whole[k] ? l->end[whole[k] - 1] : 0;
		want[k] = start[k] >= c || zeros(l->log + start[k], c - start[k]) ? PM_WAL_END
										  : PM_WAL_TORN;
	}
	memset(buf + c, 0, l->bytes - c);
	uint32_t n[2];
	size_t at[2];
	bool mismatch[2];
	enum pm_wal_scan_result got[2] = {
		scan_from(l, buf, c, first, &n[0], &at[0], &mismatch[0]),
		scan_from(l, buf, l->cap, first, &n[1], &at[1], &mismatch[1]),
	};
	memcpy(buf + c, l->log + c, l->bytes - c);
	bool ok = true;
	for (int k = 0; k < 2; k++)
		ok = ok && got[k] == want[k] && n[k] == whole[k] && at[k] == start[k] && !mismatch[k];
	static int printed;
	if (!ok && printed++ < 5)
		fprintf(stderr, "cut %zu: want %d/%d got %d/%d n %u/%u at %zu/%zu mm %d/%d\n", c,
			want[0], want[1], got[0], got[1], n[0], n[1], at[0], at[1], mismatch[0],
			mismatch[1]);
	return ok;
}

/* Every byte of the last three records of small and medium logs. */
static void test_torn_tail_every_position(void)
{
	for (int round = 0; round < 4; round++) {
		struct log *l = calloc(1, sizeof(*l));
		log_random(l, (size_t)1 << 20, 40, round < 2 ? SMALL : MEDIUM);
		l->log = malloc(l->bytes);
		memcpy(l->log, l->buf, l->bytes);
		const uint32_t first = l->n - 3;
		uint32_t bad = 0;
		for (size_t c = l->end[first - 1]; c <= l->bytes; c++)
			bad += !cut_ok(l, l->buf, first - 1, c);
		CU_ASSERT_EQUAL(bad, 0);
		free(l->log);
		free(l->buf);
		free(l);
	}
}

/* A largest SET and a largest VADD as the last records: every header byte,
 * the first and last bytes of the payload, and a sample between. */
static void test_torn_tail_largest(void)
{
	struct log *l = calloc(1, sizeof(*l));
	l->cap = (size_t)256 << 10;
	l->buf = calloc(1, l->cap);
	struct pm_request r = random_request(SMALL);
	log_add(l, &r);
	struct pm_request set = { .op = PM_OP_SET, .key = pool_bytes(PM_KEY_BYTES_MAX),
				  .value = pool_bytes(PM_VALUE_BYTES_MAX) };
	struct pm_request vadd = { .op = PM_OP_VADD, .key = pool_bytes(PM_KEY_BYTES_MAX),
				   .collection = pool_bytes(PM_COLLECTION_NAME_BYTES_MAX),
				   .dim = PM_DIM_MAX, .vec = pool_bytes(4 * PM_DIM_MAX).ptr,
				   .has_ttl = true, .ttl_ms = 9 };
	log_add(l, &set);
	log_add(l, &vadd);
	l->log = malloc(l->bytes);
	memcpy(l->log, l->buf, l->bytes);
	uint32_t bad = 0;
	for (uint32_t i = 1; i < l->n; i++) {
		size_t s = l->end[i - 1], e = l->end[i];
		for (size_t c = s; c < s + 300; c++)
			bad += !cut_ok(l, l->buf, 0, c);
		for (size_t c = e - 300; c <= e; c++)
			bad += !cut_ok(l, l->buf, 0, c);
		for (int k = 0; k < 300; k++)
			bad += !cut_ok(l, l->buf, 0, s + rnd((uint32_t)(e - s)));
	}
	CU_ASSERT_EQUAL(bad, 0);
	free(l->log);
	free(l->buf);
	free(l);
}

/* ---------------------------------------------------------------- flipped bits */

/* Flip one bit of record r's extent; the scan must read records 0..r-1
 * intact, never return the damaged one, and say CORRUPT if records follow. */
static bool flip_detected(const struct log *l, uint8_t *copy, size_t len, size_t byte, unsigned bit)
{
	uint32_t r = 0;
	while (l->end[r] <= byte)
		r++;
	copy[byte] ^= (uint8_t)(1u << bit);
	uint32_t n;
	size_t at;
	bool mismatch;
	enum pm_wal_scan_result got = scan(l, copy, len, &n, &at, &mismatch);
	copy[byte] ^= (uint8_t)(1u << bit);
	bool last = r == l->n - 1;
	return n == r && !mismatch && (got == PM_WAL_CORRUPT || (last && got == PM_WAL_TORN));
}

static void test_flipped_bits(void)
{
	/* a short log: every bit of its first, a middle and its last two records */
	struct log *l = calloc(1, sizeof(*l));
	log_random(l, (size_t)256 << 10, 10, SMALL);
	uint32_t bad = 0;
	const uint32_t which[] = { 0, 4, l->n - 2, l->n - 1 };
	for (size_t w = 0; w < 4; w++) {
		size_t start = which[w] ? l->end[which[w] - 1] : 0;
		for (size_t byte = start; byte < l->end[which[w]]; byte++)
			for (unsigned bit = 0; bit < 8; bit++)
				bad += !flip_detected(l, l->buf, l->cap, byte, bit);
	}
	CU_ASSERT_EQUAL(bad, 0);
	free(l->buf);
	free(l);

	/* a larger log: one random bit of every byte (bounded scan of the whole log) */
	l = calloc(1, sizeof(*l));
	log_random(l, (size_t)512 << 10, 200, SMALL);
	bad = 0;
	for (size_t byte = 0; byte < l->bytes; byte++)
		bad += !flip_detected(l, l->buf, l->cap, byte, rnd(8));
	CU_ASSERT_EQUAL(bad, 0);
	free(l->buf);
	free(l);
}

/* ---------------------------------------------------------------- corruption */

/* A record with payload p[0..plen) and a correct CRC, whatever it says. */
static size_t craft(uint8_t *out, uint8_t type, uint64_t lsn, const uint8_t *p, uint32_t plen)
{
	memset(out, 0, HDR);
	put32(out + REC_LEN_OFF, plen);
	for (unsigned i = 0; i < 8; i++)
		out[REC_LSN_OFF + i] = (uint8_t)(lsn >> (8 * i));
	out[REC_TYPE_OFF] = type;
	memcpy(out + HDR, p, plen);
	put32(out + REC_CRC_OFF, pm_crc32c(0, out + REC_LSN_OFF, HDR - REC_LSN_OFF + plen));
	return HDR + plen;
}

static enum pm_wal_scan_result scan_one(const uint8_t *buf, size_t len, uint64_t want)
{
	struct pm_wal_record rec;
	size_t used;
	return pm_wal_scan_next(buf, len, want, &rec, &used);
}

static void test_lsn_gap(void)
{
	struct pm_request r = { .op = PM_OP_DEL, .key = { pool, 8 } };
	uint8_t *buf = calloc(1, 4096);
	size_t off = 0;
	const uint64_t lsns[] = { 1, 2, 4 };
	for (int i = 0; i < 3; i++)
		off += pm_wal_encode(&r, T0_MS, lsns[i], buf + off, 4096 - off);
	size_t one = off / 3;
	CU_ASSERT_EQUAL(scan_one(buf, 4096, 1), PM_WAL_RECORD);
	CU_ASSERT_EQUAL(scan_one(buf + one, 4096 - one, 2), PM_WAL_RECORD);
	CU_ASSERT_EQUAL(scan_one(buf + 2 * one, 4096 - 2 * one, 3), PM_WAL_CORRUPT); /* gap */
	CU_ASSERT_EQUAL(scan_one(buf + 2 * one, 4096 - 2 * one, 4), PM_WAL_RECORD);
	CU_ASSERT_EQUAL(scan_one(buf + 2 * one, 4096 - 2 * one, 0), PM_WAL_RECORD); /* any */
	CU_ASSERT_EQUAL(scan_one(buf + one, 4096 - one, 3), PM_WAL_CORRUPT);        /* behind */
	CU_ASSERT_EQUAL(scan_one(buf, 4096, 2), PM_WAL_CORRUPT);
	free(buf);
}

/* A record with LSN 0 (LSNs start at 1; no writer makes one) and a good CRC
 * is CORRUPT even when any LSN is wanted: found by tests/fuzz/fuzz_wal, where
 * it reached pm_wal_encode's lsn != 0 assertion on re-encoding. */
static void test_lsn_zero(void)
{
	struct pm_request r = { .op = PM_OP_DEL, .key = { pool, 8 } };
	uint8_t *buf = calloc(1, 4096);
	size_t n = pm_wal_encode(&r, T0_MS, 1, buf, 4096);
	CU_ASSERT_FATAL(n > HDR);
	memset(buf + REC_LSN_OFF, 0, 8);
	uint32_t crc = pm_crc32c(0, buf + REC_LSN_OFF, n - REC_LSN_OFF);
	memcpy(buf + REC_CRC_OFF, &crc, 4); /* little-endian host, as the log */
	CU_ASSERT_EQUAL(scan_one(buf, 4096, 0), PM_WAL_CORRUPT);
	CU_ASSERT_EQUAL(scan_one(buf, 4096, 1), PM_WAL_CORRUPT);
	free(buf);
}

/* Records whose CRC is good but whose content is not a record: CORRUPT. */
static void test_checksummed_nonsense(void)
{
	uint8_t *buf = calloc(1, HDR + PM_WAL_PAYLOAD_BYTES_MAX + 64);
	uint8_t p[PM_KEY_BYTES_MAX + 64];
	memset(p, 'k', sizeof(p));
	uint32_t bad = 0;
	/* DEL: klen 3 with 3 bytes is good; short, long, zero or oversized is not */
	put32(p, 3);
	bad += scan_one(buf, craft(buf, PM_WAL_DEL, 1, p, 7), 1) != PM_WAL_RECORD;
	bad += scan_one(buf, craft(buf, PM_WAL_DEL, 1, p, 6), 1) != PM_WAL_CORRUPT;
	bad += scan_one(buf, craft(buf, PM_WAL_DEL, 1, p, 8), 1) != PM_WAL_CORRUPT;
	put32(p, 0);
	bad += scan_one(buf, craft(buf, PM_WAL_DEL, 1, p, 4), 1) != PM_WAL_CORRUPT;
	put32(p, PM_KEY_BYTES_MAX + 1);
	bad += scan_one(buf, craft(buf, PM_WAL_DEL, 1, p, 4 + PM_KEY_BYTES_MAX + 1), 1) != PM_WAL_CORRUPT;
	put32(p, UINT32_MAX);
	bad += scan_one(buf, craft(buf, PM_WAL_DEL, 1, p, 7), 1) != PM_WAL_CORRUPT;
	/* bad types and reserved bytes */
	put32(p, 3);
	bad += scan_one(buf, craft(buf, 0, 1, p, 7), 1) != PM_WAL_CORRUPT;
	bad += scan_one(buf, craft(buf, PM_WAL_TYPE_END, 1, p, 7), 1) != PM_WAL_CORRUPT;
	bad += scan_one(buf, craft(buf, 0xff, 1, p, 7), 1) != PM_WAL_CORRUPT;
	for (unsigned i = 0; i < REC_RESERVED_BYTES; i++) {
		craft(buf, PM_WAL_DEL, 1, p, 7);
		buf[REC_RESERVED_OFF + i] = 1;
		put32(buf + REC_CRC_OFF, pm_crc32c(0, buf + REC_LSN_OFF, HDR - REC_LSN_OFF + 7));
		bad += scan_one(buf, HDR + 7, 1) != PM_WAL_CORRUPT;
	}
	/* CDROP / CCREATE: empty or oversized names */
	uint8_t n[80] = { 0 };
	bad += scan_one(buf, craft(buf, PM_WAL_CDROP, 1, n, 1), 1) != PM_WAL_CORRUPT;
	n[0] = PM_COLLECTION_NAME_BYTES_MAX + 1;
	bad += scan_one(buf, craft(buf, PM_WAL_CDROP, 1, n, 1 + n[0]), 1) != PM_WAL_CORRUPT;
	n[0] = 2;
	bad += scan_one(buf, craft(buf, PM_WAL_CDROP, 1, n, 3), 1) != PM_WAL_RECORD;
	bad += scan_one(buf, craft(buf, PM_WAL_CCREATE, 1, n, 3), 1) != PM_WAL_CORRUPT; /* no params */
	bad += scan_one(buf, craft(buf, PM_WAL_CCREATE, 1, n, 3 + CCREATE_PARAMS_BYTES), 1) != PM_WAL_RECORD;
	bad += scan_one(buf, craft(buf, PM_WAL_CCREATE, 1, n, 3 + CCREATE_PARAMS_BYTES + 1), 1) != PM_WAL_CORRUPT;
	CU_ASSERT_EQUAL(bad, 0);

	/* VADD: dim 0, dim above the limit, a vector short of its dim */
	struct pm_request v = { .op = PM_OP_VADD, .key = { pool, 2 }, .dim = 3, .vec = pool };
	uint8_t rec[128];
	size_t sz = pm_wal_encode(&v, T0_MS, 1, rec, sizeof(rec));
	const size_t dim_off = 1 + 4 + 2; /* nlen 0, klen, key */
	const uint32_t dims[] = { 0, 2, 4, PM_DIM_MAX + 1 };
	for (size_t i = 0; i < 4; i++) {
		memcpy(p, rec + HDR, sz - HDR);
		put32(p + dim_off, dims[i]);
		CU_ASSERT_EQUAL(scan_one(buf, craft(buf, PM_WAL_VADD, 1, p, (uint32_t)(sz - HDR)), 1),
				PM_WAL_CORRUPT);
	}
	free(buf);
}

/* Short buffers, implausible lengths, and what follows a bad record. */
static void test_bad_lengths(void)
{
	uint8_t *buf = calloc(1, 4096);
	CU_ASSERT_EQUAL(scan_one(buf, 0, 1), PM_WAL_END);
	CU_ASSERT_EQUAL(scan_one(buf, 7, 1), PM_WAL_END);  /* short, all zero */
	CU_ASSERT_EQUAL(scan_one(buf, 4096, 1), PM_WAL_END);
	buf[5] = 1;
	CU_ASSERT_EQUAL(scan_one(buf, 7, 1), PM_WAL_TORN); /* short, not zero */
	CU_ASSERT_EQUAL(scan_one(buf, HDR - 1, 1), PM_WAL_TORN);
	buf[5] = 0;
	const uint32_t lens[] = { 0, PM_WAL_PAYLOAD_BYTES_MAX + 1, UINT32_MAX, 4000 };
	for (size_t i = 0; i < 4; i++) {
		memset(buf, 0, 4096);
		put32(buf + REC_LEN_OFF, lens[i]);
		buf[REC_LSN_OFF] = 1;
		CU_ASSERT_EQUAL(scan_one(buf, 4096, 1), PM_WAL_TORN); /* only zeros after */
		buf[4095] = 1;
		CU_ASSERT_EQUAL(scan_one(buf, 4096, 1), PM_WAL_CORRUPT);
	}
	/* a good record's length field damaged: it says more than the record is,
	 * reaching past a record that follows — that record is not a torn tail */
	struct pm_request r = { .op = PM_OP_DEL, .key = { pool, 8 } };
	memset(buf, 0, 4096);
	size_t a = pm_wal_encode(&r, T0_MS, 1, buf, 4096);
	pm_wal_encode(&r, T0_MS, 2, buf + a, 4096 - a);
	put32(buf + REC_LEN_OFF, 3000);
	CU_ASSERT_EQUAL(scan_one(buf, 4096, 1), PM_WAL_CORRUPT);
	put32(buf + REC_LEN_OFF, 5000); /* past the end of the buffer */
	CU_ASSERT_EQUAL(scan_one(buf, 4096, 1), PM_WAL_CORRUPT);
	memset(buf + a, 0, 4096 - a); /* ... unless nothing follows */
	CU_ASSERT_EQUAL(scan_one(buf, 4096, 1), PM_WAL_TORN);
	free(buf);
}

int main(void)
{
	pool_fill();
	static CU_TestInfo tests[] = {
		{ "crc32c known answers", test_crc32c_known },
		{ "crc32c implementations, chaining", test_crc32c_impls },
		{ "round trip of every type, limits, binary", test_round_trip_types },
		{ "largest records fit", test_largest_records },
		{ "ttl as absolute expiry", test_ttl },
		{ "encode refuses, never past cap", test_encode_refuses },
		{ "segment of random records", test_segment_of_records },
		{ "segment header", test_segment_header },
		{ "torn tail at every position", test_torn_tail_every_position },
		{ "torn tail of the largest records", test_torn_tail_largest },
		{ "flipped bits", test_flipped_bits },
		{ "lsn gap", test_lsn_gap },
		{ "lsn 0 is corrupt", test_lsn_zero },
		{ "checksummed nonsense", test_checksummed_nonsense },
		{ "bad lengths", test_bad_lengths },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("wal", tests);
}
