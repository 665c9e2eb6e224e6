/* SPDX-License-Identifier: MIT
 *
 * wal.c — the write-ahead log's record and segment formats (see wal.h), and
 * CRC32C. Pure: bytes in memory, no I/O.
 *
 * Every multi-byte field is little-endian and is read and written a byte at a
 * time (records sit at any offset, so nothing is assumed aligned). A record is
 * the 20-byte header of wal.h followed by a payload whose layout depends on
 * the type; lengths are u32 unless said otherwise, names carry a u8 length:
 *
 *   SET      u32 klen, key, u32 vlen, value, u64 expire_ms
 *   DEL      u32 klen, key
 *   VADD     u8 nlen, name (0 = default collection), u32 klen, key,
 *            u32 dim, dim * 4 bytes (LE f32, copied as bytes), u64 expire_ms
 *   VDEL     u32 klen, key
 *   CCREATE  u8 nlen, name, u32 dim, u8 metric, u8 index, u16 hnsw_m,
 *            u32 ef_construction, u32 ef_search, u8 flags (PM_COLL_*; since
 *            version 2), u8 dtype, u8 rerank, u32 rerank_k (quant.h; since
 *            version 3). VADD keeps the f32 as sent whatever the element
 *            type: quantisation is a pure function of it, so a replay
 *            stores the same codes.
 *   CDROP    u8 nlen, name
 *
 * Invariants, checked when writing (pm_wal_encode refuses) and when reading
 * (pm_wal_scan_next says CORRUPT): every length is within the engine's limits
 * (keys 1..PM_KEY_BYTES_MAX, values up to PM_VALUE_BYTES_MAX, dim
 * 1..PM_DIM_MAX, names up to PM_COLLECTION_NAME_BYTES_MAX and not empty for
 * CCREATE / CDROP), and the payload is exactly as long as its fields. A
 * record whose CRC is good but whose content breaks that was written by a bug
 * or by someone else; it is never accepted. CCREATE parameters are carried
 * verbatim (the engine checks them when the record is applied).
 *
 * Torn or corrupt: a bad record (implausible length, past the end of the
 * buffer, or failing its CRC) is a torn tail when only zeros follow its
 * extent. Its extent comes from its length field, which the CRC does not
 * cover; so when that field alone was damaged — the payload, parsed on its
 * own, ends elsewhere and the CRC matches there — the parsed end is used
 * instead. Without this, a flipped bit that lengthens a record past the last
 * one written would make good records after it look like a torn tail, and
 * recovery would silently drop them.
 *
 * CRC32C: SSE4.2's crc32 instruction when the CPU has it (asked once, at
 * load time), else slice-by-8 tables; both are exported (not in wal.h) so the
 * tests run both.
 */
#include "wal.h"

#include <stdbool.h>
#include <string.h>

#include "attr.h"
#include "bytes.h"
#include "common.h"
#include "pm_limits.h"

/* ---------------------------------------------------------------- layout */

/* Record header offsets (wal.h). The CRC covers LSN_OFF to the payload's end. */
#define REC_LEN_OFF 0u
#define REC_CRC_OFF 4u
#define REC_LSN_OFF 8u
#define REC_TYPE_OFF 16u
#define REC_RESERVED_OFF 17u
#define REC_RESERVED_BYTES 3u

/* Segment header offsets; bytes SEG_PAD_OFF..SEG_CRC_OFF are zero. */
#define SEG_MAGIC_OFF 0u
#define SEG_MAGIC_BYTES 8u
#define SEG_VERSION_OFF 8u
#define SEG_SHARD_OFF 12u
#define SEG_FIRST_LSN_OFF 16u
#define SEG_PAD_OFF 24u
#define SEG_CRC_OFF 60u

/* Payload field sizes. */
#define U8_BYTES 1u
#define F32_BYTES 4u
#define NAME_LEN_BYTES U8_BYTES  /* names are at most 255 bytes */
#define BLOB_LEN_BYTES U32_BYTES /* keys and values */
#define EXPIRE_BYTES U64_BYTES
#define ATTR_LEN_BYTES U16_BYTES /* attribute records: at most PM_ATTR_BYTES_MAX */
/* CCREATE parameters: dim, metric, index, hnsw_m, ef_construction, ef_search, flags,
 * dtype, rerank, rerank_k. */
#define PARAMS_BYTES \
	(U32_BYTES + U8_BYTES + U8_BYTES + U16_BYTES + U32_BYTES + U32_BYTES + U8_BYTES + \
	 U8_BYTES + U8_BYTES + U32_BYTES)

#define SET_PAYLOAD_BYTES_MAX \
	(BLOB_LEN_BYTES + PM_KEY_BYTES_MAX + BLOB_LEN_BYTES + PM_VALUE_BYTES_MAX + EXPIRE_BYTES)
#define VADD_PAYLOAD_BYTES_MAX                                                            \
	(NAME_LEN_BYTES + PM_COLLECTION_NAME_BYTES_MAX + BLOB_LEN_BYTES + PM_KEY_BYTES_MAX + \
	 U32_BYTES + F32_BYTES * PM_DIM_MAX + EXPIRE_BYTES + ATTR_LEN_BYTES + PM_ATTR_BYTES_MAX)

_Static_assert(PM_WAL_RECORD_HEADER_BYTES == REC_RESERVED_OFF + REC_RESERVED_BYTES,
	       "record header layout");
_Static_assert(SEG_PAD_OFF == SEG_FIRST_LSN_OFF + U64_BYTES, "segment header layout");
_Static_assert(PM_WAL_SEGMENT_HEADER_BYTES == SEG_CRC_OFF + U32_BYTES, "segment header layout");
_Static_assert(sizeof(PM_WAL_MAGIC) - 1 == SEG_MAGIC_BYTES, "magic is 8 bytes");
_Static_assert(PM_COLLECTION_NAME_BYTES_MAX <= UINT8_MAX, "names carry a u8 length");
_Static_assert(SET_PAYLOAD_BYTES_MAX <= PM_WAL_PAYLOAD_BYTES_MAX, "largest SET fits a record");
_Static_assert(VADD_PAYLOAD_BYTES_MAX <= PM_WAL_PAYLOAD_BYTES_MAX, "largest VADD fits a record");
_Static_assert(PM_WAL_PAYLOAD_BYTES_MAX <= UINT32_MAX - PM_WAL_RECORD_HEADER_BYTES,
	       "record sizes fit 32 bits");

static bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* ---------------------------------------------------------------- CRC32C */

/* Castagnoli polynomial, bit-reversed. */
#define CRC32C_POLY_REFLECTED 0x82F63B78u
#define CRC_SLICES 8u
#define CRC_TABLE_ENTRIES 256u

/* Exported for test_wal.c, which compares them; not part of wal.h. */
uint32_t pm_crc32c_portable(uint32_t crc, const void *p, size_t n);
uint32_t pm_crc32c_sse42(uint32_t crc, const void *p, size_t n);
bool pm_crc32c_sse42_used(void);

/* crc_table[k][b]: the CRC of byte b followed by k zero bytes. Filled once,
 * at load time (crc32c_init), then only read. */
static uint32_t crc_table[CRC_SLICES][CRC_TABLE_ENTRIES];
static uint32_t (*crc32c_best)(uint32_t, const void *, size_t) = pm_crc32c_portable;
static bool crc32c_hw;

uint32_t pm_crc32c_portable(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t c = ~crc;
	for (; n >= CRC_SLICES; n -= CRC_SLICES, b += CRC_SLICES) {
		uint32_t lo = get_u32(b) ^ c, hi = get_u32(b + U32_BYTES);
		c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		    crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		    crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		    crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
	}
	for (; n; n--)
		c = crc_table[0][(c ^ *b++) & 0xff] ^ (c >> 8);
	return ~c;
}

#if defined(__x86_64__)
#include <immintrin.h>

/* Only called when the CPU has SSE4.2 (crc32c_init checked). */
__attribute__((target("sse4.2"))) uint32_t pm_crc32c_sse42(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t c = ~crc;
	for (; n >= U64_BYTES; n -= U64_BYTES, b += U64_BYTES)
		c = _mm_crc32_u64(c, get_u64(b));
	for (; n; n--)
		c = _mm_crc32_u8((uint32_t)c, *b++);
	return ~(uint32_t)c;
}

static bool cpu_has_sse42(void)
{
	__builtin_cpu_init(); /* we run as a constructor, maybe before libgcc's */
	return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t pm_crc32c_sse42(uint32_t crc, const void *p, size_t n)
{
	return pm_crc32c_portable(crc, p, n);
}

static bool cpu_has_sse42(void)
{
	return false;
}
#endif

__attribute__((constructor)) static void crc32c_init(void)
{
	for (uint32_t i = 0; i < CRC_TABLE_ENTRIES; i++) {
		uint32_t c = i;
		for (unsigned bit = 0; bit < 8; bit++)
			c = (c >> 1) ^ (CRC32C_POLY_REFLECTED & (0u - (c & 1u)));
		crc_table[0][i] = c;
	}
	for (unsigned k = 1; k < CRC_SLICES; k++)
		for (uint32_t i = 0; i < CRC_TABLE_ENTRIES; i++) {
			uint32_t prev = crc_table[k - 1][i];
			crc_table[k][i] = (prev >> 8) ^ crc_table[0][prev & 0xff];
		}
	crc32c_hw = cpu_has_sse42();
	crc32c_best = crc32c_hw ? pm_crc32c_sse42 : pm_crc32c_portable;
}

bool pm_crc32c_sse42_used(void)
{
	return crc32c_hw;
}

uint32_t pm_crc32c(uint32_t crc, const void *p, size_t n)
{
	return crc32c_best(crc, p, n);
}

/* ---------------------------------------------------------------- payload: writing */

static bool key_len_ok(uint32_t n)
{
	return n >= 1 && n <= PM_KEY_BYTES_MAX;
}

static bool dim_ok(uint32_t dim)
{
	return dim >= 1 && dim <= PM_DIM_MAX;
}

/* The record type of a request op, or 0 when the log does not record it. */
static uint8_t type_of_op(uint8_t op)
{
	switch (op) {
	case PM_OP_SET: return PM_WAL_SET;
	case PM_OP_DEL: return PM_WAL_DEL;
	case PM_OP_VADD: return PM_WAL_VADD;
	case PM_OP_VDEL: return PM_WAL_VDEL;
	case PM_OP_CCREATE: return PM_WAL_CCREATE;
	case PM_OP_CDROP: return PM_WAL_CDROP;
	case PM_OP_VSETATTR: return PM_WAL_VSETATTR;
	default: return 0;
	}
}

static const uint8_t op_of_type[PM_WAL_TYPE_END] = {
	[PM_WAL_SET] = PM_OP_SET,         [PM_WAL_DEL] = PM_OP_DEL,
	[PM_WAL_VADD] = PM_OP_VADD,       [PM_WAL_VDEL] = PM_OP_VDEL,
	[PM_WAL_CCREATE] = PM_OP_CCREATE, [PM_WAL_CDROP] = PM_OP_CDROP,
	[PM_WAL_VSETATTR] = PM_OP_VSETATTR,
};

/* Payload bytes of req as record `type`, or 0 when a length breaks a limit
 * (such a request was never applied, and could not be read back). */
static size_t payload_bytes(uint8_t type, const struct pm_request *req)
{
	const uint32_t klen = req->key.len, nlen = req->collection.len;
	switch (type) {
	case PM_WAL_SET:
		if (!key_len_ok(klen) || req->value.len > PM_VALUE_BYTES_MAX)
			return 0;
		return BLOB_LEN_BYTES + klen + BLOB_LEN_BYTES + req->value.len + EXPIRE_BYTES;
	case PM_WAL_DEL:
	case PM_WAL_VDEL:
		return key_len_ok(klen) ? BLOB_LEN_BYTES + klen : 0;
	case PM_WAL_VADD:
		if (!key_len_ok(klen) || !dim_ok(req->dim) || nlen > PM_COLLECTION_NAME_BYTES_MAX)
			return 0;
		if (req->has_attr && (req->attr.len == 0 || req->attr.len > PM_ATTR_BYTES_MAX))
			return 0;
		return NAME_LEN_BYTES + nlen + BLOB_LEN_BYTES + klen + U32_BYTES +
		       (size_t)F32_BYTES * req->dim + EXPIRE_BYTES + ATTR_LEN_BYTES +
		       (req->has_attr ? req->attr.len : 0);
	case PM_WAL_VSETATTR:
		if (!key_len_ok(klen) || req->attr.len == 0 || req->attr.len > PM_ATTR_BYTES_MAX)
			return 0;
		return BLOB_LEN_BYTES + klen + ATTR_LEN_BYTES + req->attr.len;
	case PM_WAL_CCREATE:
	case PM_WAL_CDROP:
		if (nlen == 0 || nlen > PM_COLLECTION_NAME_BYTES_MAX)
			return 0;
		return NAME_LEN_BYTES + nlen + (type == PM_WAL_CCREATE ? PARAMS_BYTES : 0);
	default:
		return 0;
	}
}

static uint8_t *w_bytes(uint8_t *w, const uint8_t *src, size_t n)
{
	if (n) /* src may be NULL when n is 0 */
		memcpy(w, src, n);
	return w + n;
}

static uint8_t *w_u8(uint8_t *w, uint8_t v)
{
	*w = v;
	return w + U8_BYTES;
}

static uint8_t *w_u32(uint8_t *w, uint32_t v)
{
	put_u32(w, v);
	return w + U32_BYTES;
}

static uint8_t *w_u64(uint8_t *w, uint64_t v)
{
	put_u64(w, v);
	return w + U64_BYTES;
}

static uint8_t *w_blob(uint8_t *w, struct pm_bytes b)
{
	return w_bytes(w_u32(w, b.len), b.ptr, b.len);
}

static uint8_t *w_name(uint8_t *w, struct pm_bytes b)
{
	return w_bytes(w_u8(w, (uint8_t)b.len), b.ptr, b.len);
}

/* u16 length, record (length 0: none). */
static uint8_t *w_attr(uint8_t *w, const struct pm_request *req)
{
	const uint32_t n = req->has_attr || req->op == PM_OP_VSETATTR ? req->attr.len : 0;
	put_u16(w, (uint16_t)n);
	return w_bytes(w + U16_BYTES, req->attr.ptr, n);
}

static uint8_t *w_params(uint8_t *w, const struct pm_collection_params *p)
{
	w = w_u8(w_u8(w_u32(w, p->dim), p->metric), p->index);
	put_u16(w, p->hnsw_m);
	w = w_u8(w_u32(w_u32(w + U16_BYTES, p->ef_construction), p->ef_search), p->flags);
	return w_u32(w_u8(w_u8(w, p->dtype), p->rerank), p->rerank_k);
}

/* Write the payload (payload_bytes said how long); returns its end. */
static uint8_t *payload_write(uint8_t type, const struct pm_request *req, uint64_t expire_ms,
			      uint8_t *w)
{
	switch (type) {
	case PM_WAL_SET:
		return w_u64(w_blob(w_blob(w, req->key), req->value), expire_ms);
	case PM_WAL_DEL:
	case PM_WAL_VDEL:
		return w_blob(w, req->key);
	case PM_WAL_VADD:
		w = w_u32(w_blob(w_name(w, req->collection), req->key), req->dim);
		w = w_u64(w_bytes(w, req->vec, (size_t)F32_BYTES * req->dim), expire_ms);
		return w_attr(w, req);
	case PM_WAL_VSETATTR:
		return w_attr(w_blob(w, req->key), req);
	case PM_WAL_CCREATE:
		return w_params(w_name(w, req->collection), &req->params);
	default:
		PM_ASSERT(type == PM_WAL_CDROP);
		return w_name(w, req->collection);
	}
}

/* ---------------------------------------------------------------- payload: reading */

/* A bounded reader: every take checks what is left, and a failed take makes
 * every later one fail too, so a parser checks ok once at the end. */
struct reader {
	const uint8_t *p;
	size_t left;
	bool ok;
};

static const uint8_t *r_take(struct reader *r, size_t n)
{
	if (!r->ok || n > r->left) {
		r->ok = false;
		return NULL;
	}
	const uint8_t *at = r->p;
	r->p += n;
	r->left -= n;
	return at;
}

static uint8_t r_u8(struct reader *r)
{
	const uint8_t *p = r_take(r, U8_BYTES);
	return p ? *p : 0;
}

static uint16_t r_u16(struct reader *r)
{
	const uint8_t *p = r_take(r, U16_BYTES);
	return p ? get_u16(p) : 0;
}

static uint32_t r_u32(struct reader *r)
{
	const uint8_t *p = r_take(r, U32_BYTES);
	return p ? get_u32(p) : 0;
}

static uint64_t r_u64(struct reader *r)
{
	const uint8_t *p = r_take(r, U64_BYTES);
	return p ? get_u64(p) : 0;
}

/* A length-prefixed field (u8 or u32 length) of min..max bytes. */
static struct pm_bytes r_field(struct reader *r, size_t len_bytes, uint32_t min, uint32_t max)
{
	uint32_t n = len_bytes == U8_BYTES ? r_u8(r) : r_u32(r);
	if (n < min || n > max)
		r->ok = false;
	const uint8_t *p = r_take(r, n);
	return (struct pm_bytes){ p, p ? n : 0 };
}

/* u16 length (min..PM_ATTR_BYTES_MAX), record. */
static struct pm_bytes r_attr(struct reader *r, uint32_t min)
{
	uint32_t n = r_u16(r);
	if (n < min || n > PM_ATTR_BYTES_MAX)
		r->ok = false;
	const uint8_t *p = r_take(r, n);
	return (struct pm_bytes){ p, p ? n : 0 };
}

static void r_params(struct reader *r, struct pm_collection_params *p)
{
	p->dim = r_u32(r);
	p->metric = r_u8(r);
	p->index = r_u8(r);
	p->hnsw_m = r_u16(r);
	p->ef_construction = r_u32(r);
	p->ef_search = r_u32(r);
	p->flags = r_u8(r);
	p->dtype = r_u8(r);
	p->rerank = r_u8(r);
	p->rerank_k = r_u32(r);
}

/* Parse a payload of `type` from the avail bytes at p into rec; *used is the
 * bytes its fields take. False when a field breaks a limit or runs past avail. */
static bool payload_parse(uint8_t type, const uint8_t *p, size_t avail,
			  struct pm_wal_record *rec, size_t *used)
{
	struct reader r = { p, avail, true };
	switch (type) {
	case PM_WAL_SET:
		rec->key = r_field(&r, BLOB_LEN_BYTES, 1, PM_KEY_BYTES_MAX);
		rec->value = r_field(&r, BLOB_LEN_BYTES, 0, PM_VALUE_BYTES_MAX);
		rec->expire_ms = r_u64(&r);
		break;
	case PM_WAL_DEL:
	case PM_WAL_VDEL:
		rec->key = r_field(&r, BLOB_LEN_BYTES, 1, PM_KEY_BYTES_MAX);
		break;
	case PM_WAL_VADD:
		rec->collection = r_field(&r, NAME_LEN_BYTES, 0, PM_COLLECTION_NAME_BYTES_MAX);
		rec->key = r_field(&r, BLOB_LEN_BYTES, 1, PM_KEY_BYTES_MAX);
		rec->dim = r_u32(&r);
		r.ok = r.ok && dim_ok(rec->dim);
		rec->vec = r_take(&r, (size_t)F32_BYTES * rec->dim);
		rec->expire_ms = r_u64(&r);
		rec->attr = r_attr(&r, 0);
		break;
	case PM_WAL_VSETATTR:
		rec->key = r_field(&r, BLOB_LEN_BYTES, 1, PM_KEY_BYTES_MAX);
		rec->attr = r_attr(&r, 1);
		break;
	case PM_WAL_CCREATE:
	case PM_WAL_CDROP:
		rec->collection = r_field(&r, NAME_LEN_BYTES, 1, PM_COLLECTION_NAME_BYTES_MAX);
		if (type == PM_WAL_CCREATE)
			r_params(&r, &rec->params);
		break;
	default:
		return false;
	}
	*used = avail - r.left;
	return r.ok;
}

/* ---------------------------------------------------------------- records */

bool pm_wal_logs(uint8_t op)
{
	return type_of_op(op) != 0;
}

size_t pm_wal_record_bytes(const struct pm_request *req)
{
	size_t n = payload_bytes(type_of_op(req->op), req);
	return n ? PM_WAL_RECORD_HEADER_BYTES + n : 0;
}

size_t pm_wal_encode(const struct pm_request *req, uint64_t now_ms, uint64_t lsn, uint8_t *out,
		     size_t cap)
{
	PM_ASSERT(lsn != 0); /* LSNs start at 1; 0 means "any" to the reader */
	const uint8_t type = type_of_op(req->op);
	const size_t plen = payload_bytes(type, req);
	const size_t total = PM_WAL_RECORD_HEADER_BYTES + plen;
	if (plen == 0 || total > cap)
		return 0;
	PM_ASSERT(plen <= PM_WAL_PAYLOAD_BYTES_MAX);
	const uint64_t expire_ms = req->has_ttl && req->ttl_ms ? now_ms + req->ttl_ms : 0;
	uint8_t *end = payload_write(type, req, expire_ms, out + PM_WAL_RECORD_HEADER_BYTES);
	PM_ASSERT(end == out + total);
	put_u32(out + REC_LEN_OFF, (uint32_t)plen);
	put_u64(out + REC_LSN_OFF, lsn);
	out[REC_TYPE_OFF] = type;
	memset(out + REC_RESERVED_OFF, 0, REC_RESERVED_BYTES);
	put_u32(out + REC_CRC_OFF, pm_crc32c(0, out + REC_LSN_OFF, total - REC_LSN_OFF));
#ifndef NDEBUG
	struct pm_wal_record back = { 0 };
	size_t used = 0;
	PM_ASSERT(payload_parse(type, out + PM_WAL_RECORD_HEADER_BYTES, plen, &back, &used) &&
		  used == plen);
#endif
	return total;
}

void pm_wal_to_request(const struct pm_wal_record *rec, uint64_t now_ms, struct pm_request *req,
		       bool *expired)
{
	PM_ASSERT(rec->type >= PM_WAL_SET && rec->type < PM_WAL_TYPE_END);
	*req = (struct pm_request){
		.op = op_of_type[rec->type],
		.key = rec->key,
		.value = rec->value,
		.collection = rec->collection,
		.vec = rec->vec,
		.dim = rec->dim,
		.params = rec->params,
		.attr = rec->attr,
		.has_attr = rec->attr.len != 0,
	};
	if (rec->expire_ms > now_ms) {
		req->has_ttl = true;
		req->ttl_ms = rec->expire_ms - now_ms;
	}
	*expired = rec->expire_ms != 0 && rec->expire_ms <= now_ms;
}

static bool header_sane(const uint8_t *h)
{
	return h[REC_TYPE_OFF] >= PM_WAL_SET && h[REC_TYPE_OFF] < PM_WAL_TYPE_END &&
	       all_zero(h + REC_RESERVED_OFF, REC_RESERVED_BYTES);
}

static uint32_t record_crc(const uint8_t *h, size_t plen)
{
	return pm_crc32c(0, h + REC_LSN_OFF, PM_WAL_RECORD_HEADER_BYTES - REC_LSN_OFF + plen);
}

/* Where a bad record really ends if only its length field was damaged: its
 * payload, parsed on its own, ends at another length whose CRC matches. */
static bool true_extent(const uint8_t *buf, size_t len, uint32_t plen, size_t *end)
{
	if (!header_sane(buf))
		return false;
	struct pm_wal_record rec = { 0 };
	size_t used = 0, avail = PM_MIN(len - PM_WAL_RECORD_HEADER_BYTES, PM_WAL_PAYLOAD_BYTES_MAX);
	if (!payload_parse(buf[REC_TYPE_OFF], buf + PM_WAL_RECORD_HEADER_BYTES, avail, &rec, &used) ||
	    used == plen || record_crc(buf, used) != get_u32(buf + REC_CRC_OFF))
		return false;
	*end = PM_WAL_RECORD_HEADER_BYTES + used;
	return true;
}

/* A record that is partial or fails its CRC: torn if only zeros follow it. */
static enum pm_wal_scan_result bad_record(const uint8_t *buf, size_t len, uint32_t plen)
{
	const bool plausible = plen >= 1 && plen <= PM_WAL_PAYLOAD_BYTES_MAX;
	size_t end = plausible ? PM_MIN(PM_WAL_RECORD_HEADER_BYTES + (size_t)plen, len)
			       : PM_WAL_RECORD_HEADER_BYTES;
	true_extent(buf, len, plen, &end); /* leaves end alone when it finds nothing */
	return all_zero(buf + end, len - end) ? PM_WAL_TORN : PM_WAL_CORRUPT;
}

enum pm_wal_scan_result pm_wal_scan_next(const uint8_t *buf, size_t len, uint64_t want_lsn,
					 struct pm_wal_record *rec, size_t *used)
{
	*used = 0;
	if (len < PM_WAL_RECORD_HEADER_BYTES)
		return all_zero(buf, len) ? PM_WAL_END : PM_WAL_TORN;
	if (all_zero(buf, PM_WAL_RECORD_HEADER_BYTES))
		return PM_WAL_END;
	const uint32_t plen = get_u32(buf + REC_LEN_OFF);
	if (plen == 0 || plen > PM_WAL_PAYLOAD_BYTES_MAX ||
	    plen > len - PM_WAL_RECORD_HEADER_BYTES ||
	    record_crc(buf, plen) != get_u32(buf + REC_CRC_OFF))
		return bad_record(buf, len, plen);
	/* The CRC is good: anything wrong from here on was written that way. */
	const uint64_t lsn = get_u64(buf + REC_LSN_OFF);
	if (lsn == 0 || (want_lsn && lsn != want_lsn) || !header_sane(buf)) /* LSNs start at 1 */
		return PM_WAL_CORRUPT;
	struct pm_wal_record r = { .lsn = lsn, .type = buf[REC_TYPE_OFF] };
	size_t n = 0;
	if (!payload_parse(r.type, buf + PM_WAL_RECORD_HEADER_BYTES, plen, &r, &n) || n != plen)
		return PM_WAL_CORRUPT;
	*rec = r;
	*used = PM_WAL_RECORD_HEADER_BYTES + plen;
	return PM_WAL_RECORD;
}

/* ---------------------------------------------------------------- segment header */

void pm_wal_segment_header_encode(const struct pm_wal_segment_header *h,
				  uint8_t out[PM_WAL_SEGMENT_HEADER_BYTES])
{
	memset(out, 0, PM_WAL_SEGMENT_HEADER_BYTES); /* the padding SEG_PAD_OFF..SEG_CRC_OFF */
	memcpy(out + SEG_MAGIC_OFF, PM_WAL_MAGIC, SEG_MAGIC_BYTES);
	put_u32(out + SEG_VERSION_OFF, h->version);
	put_u32(out + SEG_SHARD_OFF, h->shard);
	put_u64(out + SEG_FIRST_LSN_OFF, h->first_lsn);
	put_u32(out + SEG_CRC_OFF, pm_crc32c(0, out, SEG_CRC_OFF));
}

enum pm_status pm_wal_segment_header_decode(const uint8_t *buf, size_t len,
					    struct pm_wal_segment_header *h)
{
	if (len < PM_WAL_SEGMENT_HEADER_BYTES ||
	    memcmp(buf + SEG_MAGIC_OFF, PM_WAL_MAGIC, SEG_MAGIC_BYTES) != 0 ||
	    get_u32(buf + SEG_CRC_OFF) != pm_crc32c(0, buf, SEG_CRC_OFF) ||
	    get_u32(buf + SEG_VERSION_OFF) != PM_WAL_VERSION)
		return PM_E_PARAM;
	h->version = PM_WAL_VERSION;
	h->shard = get_u32(buf + SEG_SHARD_OFF);
	h->first_lsn = get_u64(buf + SEG_FIRST_LSN_OFF);
	return PM_OK;
}
