/* SPDX-License-Identifier: MIT
 *
 * proto/repl.h — the replication stream: what a replica's shard and its
 * primary's shard say to each other over one TCP connection to the primary's
 * repl_port (docs/replication.md). It lives in proto/ because two pomaid
 * processes must agree on it; it depends on libc only.
 *
 * Every frame is a u32 little-endian length L (the bytes after the length
 * field: PM_REPL_FRAME_HEADER_BYTES - 4 <= L <= PM_REPL_FRAME_BYTES_MAX - 4),
 * then u8 type (enum pm_repl_type), u8 version (PM_REPL_VERSION), u16
 * reserved (0), then the payload, L - 4 bytes, all little-endian:
 *
 *   HELLO      replica -> primary, first and once: u32 shard, u32 shards,
 *              u64 epoch, u64 repl_id, u64 lsn (the replica's last durable
 *              LSN of that history; 0: none), u32 flags (0)
 *   WELCOME    primary -> replica, the answer: u8 mode (enum
 *              pm_repl_mode), u8[3] 0, u64 epoch, u64 repl_id, u64 lsn
 *              (PARTIAL: the records that follow start at lsn + 1; FULL: the
 *              snapshot's start LSN), u32 primary IPv4 address (network
 *              order; what a READONLY reply names), u16 base UDP port, u16 TCP
 *              port
 *   REFUSE     primary -> replica, then the primary closes: u16 reason (enum
 *              pm_repl_refusal), u16 text bytes (<= PM_REPL_TEXT_BYTES_MAX),
 *              text (not NUL-terminated)
 *   RECORDS    primary -> replica: u64 first LSN, u32 count (>= 1), then
 *              count write-ahead-log records exactly as the primary logged
 *              them (engine/wal.h's record format, CRC included); the
 *              receiver checks each one (pm_wal_scan_next) before it applies it
 *   SNAP_BEGIN primary -> replica: u64 start LSN, u64 image bytes (0: not
 *              known in advance)
 *   SNAP_DATA  primary -> replica: the next bytes of the snapshot image
 *              (engine/snapshot.h's file format), at least 1
 *   SNAP_END   primary -> replica: u64 image bytes sent (the image carries
 *              its own CRCs, checked whole before it is loaded)
 *   ACK        replica -> primary: u64 received LSN (applied in memory), u64
 *              durable LSN (in the replica's own log on its disk)
 *   PING       primary -> replica: u64 the primary's last LSN, u64 its wall
 *              clock in ms (the replica's lag in ms); answered by an ACK
 *
 * A decoder takes the frame at the front of a buffer: PM_REPL_OK with the
 * frame and its bytes, PM_REPL_MORE when the buffer holds only part of it
 * (read more), or an error that ends the connection (the peer is not
 * speaking this protocol, or breaks a bound). It never reads past len and
 * never trusts a length before checking it.
 */
#ifndef POMAI_PROTO_REPL_H
#define POMAI_PROTO_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PM_REPL_VERSION 1u
/* u32 length, u8 type, u8 version, u16 reserved. */
#define PM_REPL_FRAME_HEADER_BYTES 8u
/* A whole frame (header included), at most: one RECORDS frame carries up to
 * a WAL batch's worth of records (dataplane's PM_WAL_BATCH_BYTES, 4 MiB), so
 * a batch goes out as one frame; a SNAP_DATA frame carries one slice. */
#define PM_REPL_FRAME_BYTES_MAX ((4u << 20) + 64u)
/* REFUSE's text, at most. */
#define PM_REPL_TEXT_BYTES_MAX 256u
/* RECORDS: the fixed part before the records, and the least a record takes
 * (engine/wal.h: a 20-byte header and at least one payload byte). */
#define PM_REPL_RECORDS_FIXED_BYTES 12u
#define PM_REPL_RECORD_BYTES_MIN 21u
/* Bytes of each fixed-size frame (header included). */
#define PM_REPL_HELLO_BYTES (PM_REPL_FRAME_HEADER_BYTES + 36u)
#define PM_REPL_WELCOME_BYTES (PM_REPL_FRAME_HEADER_BYTES + 36u)
#define PM_REPL_SNAP_BEGIN_BYTES (PM_REPL_FRAME_HEADER_BYTES + 16u)
#define PM_REPL_SNAP_END_BYTES (PM_REPL_FRAME_HEADER_BYTES + 8u)
#define PM_REPL_ACK_BYTES (PM_REPL_FRAME_HEADER_BYTES + 16u)
#define PM_REPL_PING_BYTES (PM_REPL_FRAME_HEADER_BYTES + 16u)

enum pm_repl_type {
	PM_REPL_HELLO = 1,
	PM_REPL_WELCOME = 2,
	PM_REPL_REFUSE = 3,
	PM_REPL_RECORDS = 4,
	PM_REPL_SNAP_BEGIN = 5,
	PM_REPL_SNAP_DATA = 6,
	PM_REPL_SNAP_END = 7,
	PM_REPL_ACK = 8,
	PM_REPL_PING = 9,
	PM_REPL_TYPE_END
};

enum pm_repl_mode {
	PM_REPL_PARTIAL = 1, /* the log from the replica's LSN on */
	PM_REPL_FULL = 2,    /* a snapshot, then the log from its start LSN on */
};

/* Why a primary refused a replica (REFUSE). */
enum pm_repl_refusal {
	PM_REPL_REFUSE_SHARDS = 1,   /* the replica's shard count differs */
	PM_REPL_REFUSE_EPOCH = 2,    /* the replica has seen a later epoch than this primary */
	PM_REPL_REFUSE_ROLE = 3,     /* this node is not a primary (a replica, or fenced) */
	PM_REPL_REFUSE_NO_LOG = 4,   /* this primary runs with wal = none: nothing to stream */
	PM_REPL_REFUSE_FULL = 5,     /* this shard serves its most replicas already */
	PM_REPL_REFUSE_VERSION = 6,  /* a protocol version this primary does not speak */
	PM_REPL_REFUSE_END
};

enum pm_repl_result {
	PM_REPL_OK = 0,
	PM_REPL_MORE,          /* only part of a frame is there */
	PM_REPL_E_LENGTH,      /* the length is below the header or above the bound, or a
				* payload's size is not its type's */
	PM_REPL_E_TYPE,        /* an unknown type */
	PM_REPL_E_VERSION,     /* a version other than PM_REPL_VERSION */
	PM_REPL_E_RESERVED,    /* reserved bytes or flags not zero */
	PM_REPL_E_FIELD,       /* a field out of its range (a shard >= shards, mode, reason,
				* count 0, a text too long, ...) */
};

/* One decoded frame; pointers into the buffer it was decoded from. */
struct pm_repl_frame {
	uint8_t type;              /* enum pm_repl_type */
	union {
		struct {
			uint32_t shard, shards;
			uint64_t epoch, repl_id, lsn;
		} hello;
		struct {
			uint8_t mode;      /* enum pm_repl_mode */
			uint64_t epoch, repl_id, lsn;
			uint32_t addr_be;
			uint16_t udp_port, tcp_port;
		} welcome;
		struct {
			uint16_t reason;   /* enum pm_repl_refusal */
			const char *text;
			uint32_t text_len;
		} refuse;
		struct {
			uint64_t first_lsn;
			uint32_t count;
			const uint8_t *bytes; /* count records, back to back */
			uint32_t len;
		} records;
		struct {
			uint64_t start_lsn, bytes;
		} snap_begin;
		struct {
			const uint8_t *bytes;
			uint32_t len;
		} snap_data;
		struct {
			uint64_t bytes;
		} snap_end;
		struct {
			uint64_t received_lsn, durable_lsn;
		} ack;
		struct {
			uint64_t lsn, wall_ms;
		} ping;
	} u;
};

/* Decode the frame at the front of buf (len bytes): PM_REPL_OK (*f, and
 * *used its bytes), PM_REPL_MORE (*used 0: more bytes are needed, at most
 * PM_REPL_FRAME_BYTES_MAX in all), or an error (the connection must end). */
enum pm_repl_result pm_repl_decode(const uint8_t *buf, size_t len, struct pm_repl_frame *f,
				   size_t *used);
/* Name of a result, a type, a refusal ("?" for unknown values). */
const char *pm_repl_result_name(enum pm_repl_result r);
const char *pm_repl_type_name(uint8_t type);
const char *pm_repl_refusal_name(uint16_t reason);

/* Encoders: the frame into out (cap bytes); its bytes, or 0 when it does not
 * fit or a field breaks a bound. */
size_t pm_repl_encode_hello(uint8_t *out, size_t cap, uint32_t shard, uint32_t shards,
			    uint64_t epoch, uint64_t repl_id, uint64_t lsn);
size_t pm_repl_encode_welcome(uint8_t *out, size_t cap, uint8_t mode, uint64_t epoch,
			      uint64_t repl_id, uint64_t lsn, uint32_t addr_be, uint16_t udp_port,
			      uint16_t tcp_port);
size_t pm_repl_encode_refuse(uint8_t *out, size_t cap, uint16_t reason, const char *text,
			     uint32_t text_len);
/* RECORDS around records already in place: write the header into out, which
 * must have PM_REPL_FRAME_HEADER_BYTES + PM_REPL_RECORDS_FIXED_BYTES bytes
 * before the records (records_len bytes follow them). Returns the frame's
 * bytes, or 0 when it would break the bound. */
size_t pm_repl_encode_records_header(uint8_t *out, uint64_t first_lsn, uint32_t count,
				     uint32_t records_len);
size_t pm_repl_encode_snap_begin(uint8_t *out, size_t cap, uint64_t start_lsn, uint64_t bytes);
/* SNAP_DATA around data already in place after PM_REPL_FRAME_HEADER_BYTES. */
size_t pm_repl_encode_snap_data_header(uint8_t *out, uint32_t data_len);
size_t pm_repl_encode_snap_end(uint8_t *out, size_t cap, uint64_t bytes);
size_t pm_repl_encode_ack(uint8_t *out, size_t cap, uint64_t received_lsn, uint64_t durable_lsn);
size_t pm_repl_encode_ping(uint8_t *out, size_t cap, uint64_t lsn, uint64_t wall_ms);

#endif
