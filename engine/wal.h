/* SPDX-License-Identifier: MIT
 *
 * wal.h — the write-ahead log's format, pure: records and segment headers
 * encoded and decoded in memory, no I/O (dataplane/wal_io.c writes and reads
 * the files through io_uring).
 *
 * A shard's log is a sequence of segments, each a file of PM_WAL_SEGMENT_BYTES
 * (preallocated, so its unwritten tail reads as zeros) named by the LSN of its
 * first record. A segment starts with a PM_WAL_SEGMENT_HEADER_BYTES header
 * (magic, version, shard, first LSN, CRC32C of the header); records follow
 * back to back, little-endian:
 *
 *   u32 len     payload bytes (>= 1)
 *   u32 crc     CRC32C (Castagnoli) of lsn, type, reserved and payload
 *   u64 lsn     this record's log sequence number (consecutive, from 1)
 *   u8  type    enum pm_wal_type
 *   u8  reserved[3] (zero)
 *   payload
 *
 * A record carries one mutation as the engine applies it: SET (key, value,
 * absolute expiry), DEL, VADD (collection, key, vector, absolute expiry),
 * VDEL, CCREATE (name, parameters), CDROP. Expiry is absolute wall-clock
 * milliseconds (0 = none) so that replay gives a key the deadline it had.
 *
 * Reading a segment (pm_wal_scan_next) ends in one of four ways: a complete
 * record; the end of the log (an all-zero header: preallocated space never
 * written); a torn tail (a record that is partial or fails its CRC, with only
 * zero bytes after its extent — a crash during a write), which recovery
 * truncates and reports; or corruption (a bad record with non-zero bytes
 * after it, or an LSN out of sequence), which stops recovery with its offset.
 */
#ifndef POMAI_ENGINE_WAL_H
#define POMAI_ENGINE_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"
#include "status.h"

#define PM_WAL_RECORD_HEADER_BYTES 20u
#define PM_WAL_SEGMENT_HEADER_BYTES 64u
/* Default segment size (wal_segment_bytes overrides it). */
#define PM_WAL_SEGMENT_BYTES (64u << 20)
/* Largest payload: the largest SET or VADD with its collection name. */
#define PM_WAL_PAYLOAD_BYTES_MAX (96u << 10)
#define PM_WAL_MAGIC "POMAIWAL"
/* 2: CCREATE carries the collection flags (evictable). 3: CCREATE carries
 * the element type and re-rank (quant.h); VADD ends with its attribute
 * record (u16 length, 0 = none given); VSETATTR records (key, u16 length,
 * record). Older logs are refused at start (no upgrade path before a
 * release). */
#define PM_WAL_VERSION 3u

enum pm_wal_type {
	PM_WAL_SET = 1,
	PM_WAL_DEL,
	PM_WAL_VADD,
	PM_WAL_VDEL,
	PM_WAL_CCREATE,
	PM_WAL_CDROP,
	PM_WAL_VSETATTR = 7,
	PM_WAL_TYPE_END
};

/* One decoded record; pointers into the buffer it was decoded from. */
struct pm_wal_record {
	uint64_t lsn;
	uint8_t type;               /* enum pm_wal_type */
	struct pm_bytes key;        /* SET DEL VADD VDEL */
	struct pm_bytes value;      /* SET */
	struct pm_bytes collection; /* VADD (len 0 = default), CCREATE, CDROP: the name */
	const uint8_t *vec;         /* VADD: LE f32, possibly unaligned */
	uint32_t dim;               /* VADD */
	uint64_t expire_ms;         /* SET VADD: absolute, 0 = none */
	struct pm_collection_params params; /* CCREATE */
	struct pm_bytes attr;       /* VADD (len 0: none given), VSETATTR: attribute record */
};

struct pm_wal_segment_header {
	uint32_t version;
	uint32_t shard;
	uint64_t first_lsn;
};

/* Whether a request is a mutation the log records (SET DEL VADD VDEL CCREATE CDROP). */
bool pm_wal_logs(uint8_t op);

/* Bytes pm_wal_encode will write for req (header included). */
size_t pm_wal_record_bytes(const struct pm_request *req);

/* Encode the mutation req, applied at now_ms, as record lsn into out (cap
 * bytes). Returns the bytes written, 0 if it does not fit or req is not a
 * mutation. A TTL becomes now_ms + ttl_ms. */
size_t pm_wal_encode(const struct pm_request *req, uint64_t now_ms, uint64_t lsn, uint8_t *out,
		     size_t cap);

/* Turn a record back into a request to apply at now_ms. *expired is set when
 * the record's expiry is at or before now_ms (SET / VADD: the caller applies
 * nothing, or a DEL — the key must not come back). */
void pm_wal_to_request(const struct pm_wal_record *rec, uint64_t now_ms, struct pm_request *req,
		       bool *expired);

enum pm_wal_scan_result {
	PM_WAL_RECORD = 0, /* *rec is the next record; *used its bytes */
	PM_WAL_END,        /* clean end: zeros (or the end of the buffer exactly) */
	PM_WAL_TORN,       /* a partial or bad last record: truncate at the offset */
	PM_WAL_CORRUPT,    /* damage before the tail, or an LSN out of sequence */
};

/* Read the record at buf (len bytes to the end of the segment); want_lsn is
 * the LSN the next record must carry (0: any, for the first). */
enum pm_wal_scan_result pm_wal_scan_next(const uint8_t *buf, size_t len, uint64_t want_lsn,
					 struct pm_wal_record *rec, size_t *used);

void pm_wal_segment_header_encode(const struct pm_wal_segment_header *h,
				  uint8_t out[PM_WAL_SEGMENT_HEADER_BYTES]);
/* PM_OK, or PM_E_PARAM for a bad magic, version or CRC. */
enum pm_status pm_wal_segment_header_decode(const uint8_t *buf, size_t len,
					    struct pm_wal_segment_header *h);

/* CRC32C (Castagnoli), chained: crc = pm_crc32c(crc, p, n), starting from 0. */
uint32_t pm_crc32c(uint32_t crc, const void *p, size_t n);

#endif
