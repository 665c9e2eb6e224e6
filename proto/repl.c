/* SPDX-License-Identifier: MIT
 *
 * proto/repl.c — the replication stream's frames (see repl.h): decoded with a
 * check of every length before it is used, encoded into caller buffers.
 */
#include <string.h>

#include "byteorder.h"
#include "repl.h"

/* Payload bytes of each fixed-size type (0: variable). */
static const uint32_t fixed_payload[PM_REPL_TYPE_END] = {
	[PM_REPL_HELLO] = PM_REPL_HELLO_BYTES - PM_REPL_FRAME_HEADER_BYTES,
	[PM_REPL_WELCOME] = PM_REPL_WELCOME_BYTES - PM_REPL_FRAME_HEADER_BYTES,
	[PM_REPL_SNAP_BEGIN] = PM_REPL_SNAP_BEGIN_BYTES - PM_REPL_FRAME_HEADER_BYTES,
	[PM_REPL_SNAP_END] = PM_REPL_SNAP_END_BYTES - PM_REPL_FRAME_HEADER_BYTES,
	[PM_REPL_ACK] = PM_REPL_ACK_BYTES - PM_REPL_FRAME_HEADER_BYTES,
	[PM_REPL_PING] = PM_REPL_PING_BYTES - PM_REPL_FRAME_HEADER_BYTES,
};

/* The header of a frame of `payload` bytes at out. */
static void put_header(uint8_t *out, uint8_t type, uint32_t payload)
{
	pm_put_le32(out, payload + PM_REPL_FRAME_HEADER_BYTES - 4u);
	out[4] = type;
	out[5] = PM_REPL_VERSION;
	pm_put_le16(out + 6, 0);
}

static enum pm_repl_result decode_payload(const uint8_t *p, uint32_t n, struct pm_repl_frame *f)
{
	switch (f->type) {
	case PM_REPL_HELLO:
		f->u.hello.shard = pm_get_le32(p);
		f->u.hello.shards = pm_get_le32(p + 4);
		f->u.hello.epoch = pm_get_le64(p + 8);
		f->u.hello.repl_id = pm_get_le64(p + 16);
		f->u.hello.lsn = pm_get_le64(p + 24);
		if (pm_get_le32(p + 32) != 0)
			return PM_REPL_E_RESERVED;
		return f->u.hello.shards == 0 || f->u.hello.shard >= f->u.hello.shards
			       ? PM_REPL_E_FIELD : PM_REPL_OK;
	case PM_REPL_WELCOME:
		f->u.welcome.mode = p[0];
		if (p[1] || p[2] || p[3])
			return PM_REPL_E_RESERVED;
		f->u.welcome.epoch = pm_get_le64(p + 4);
		f->u.welcome.repl_id = pm_get_le64(p + 12);
		f->u.welcome.lsn = pm_get_le64(p + 20);
		memcpy(&f->u.welcome.addr_be, p + 28, 4);
		f->u.welcome.udp_port = pm_get_le16(p + 32);
		f->u.welcome.tcp_port = pm_get_le16(p + 34);
		return f->u.welcome.mode == PM_REPL_PARTIAL || f->u.welcome.mode == PM_REPL_FULL
			       ? PM_REPL_OK : PM_REPL_E_FIELD;
	case PM_REPL_REFUSE:
		if (n < 4)
			return PM_REPL_E_LENGTH;
		f->u.refuse.reason = pm_get_le16(p);
		f->u.refuse.text_len = pm_get_le16(p + 2);
		f->u.refuse.text = (const char *)p + 4;
		if (f->u.refuse.text_len != n - 4)
			return PM_REPL_E_LENGTH;
		return f->u.refuse.reason == 0 || f->u.refuse.reason >= PM_REPL_REFUSE_END ||
				       f->u.refuse.text_len > PM_REPL_TEXT_BYTES_MAX
			       ? PM_REPL_E_FIELD : PM_REPL_OK;
	case PM_REPL_RECORDS:
		if (n < PM_REPL_RECORDS_FIXED_BYTES + PM_REPL_RECORD_BYTES_MIN)
			return PM_REPL_E_LENGTH;
		f->u.records.first_lsn = pm_get_le64(p);
		f->u.records.count = pm_get_le32(p + 8);
		f->u.records.bytes = p + PM_REPL_RECORDS_FIXED_BYTES;
		f->u.records.len = n - PM_REPL_RECORDS_FIXED_BYTES;
		/* LSNs start at 1; count records of at least the least size fit */
		if (f->u.records.first_lsn == 0 || f->u.records.count == 0 ||
		    f->u.records.count > f->u.records.len / PM_REPL_RECORD_BYTES_MIN ||
		    f->u.records.first_lsn > UINT64_MAX - f->u.records.count)
			return PM_REPL_E_FIELD;
		return PM_REPL_OK;
	case PM_REPL_SNAP_BEGIN:
		f->u.snap_begin.start_lsn = pm_get_le64(p);
		f->u.snap_begin.bytes = pm_get_le64(p + 8);
		return PM_REPL_OK;
	case PM_REPL_SNAP_DATA:
		if (n == 0)
			return PM_REPL_E_LENGTH;
		f->u.snap_data.bytes = p;
		f->u.snap_data.len = n;
		return PM_REPL_OK;
	case PM_REPL_SNAP_END:
		f->u.snap_end.bytes = pm_get_le64(p);
		return PM_REPL_OK;
	case PM_REPL_ACK:
		f->u.ack.received_lsn = pm_get_le64(p);
		f->u.ack.durable_lsn = pm_get_le64(p + 8);
		/* nothing is durable that was not received */
		return f->u.ack.durable_lsn > f->u.ack.received_lsn ? PM_REPL_E_FIELD : PM_REPL_OK;
	case PM_REPL_PING:
		f->u.ping.lsn = pm_get_le64(p);
		f->u.ping.wall_ms = pm_get_le64(p + 8);
		return PM_REPL_OK;
	default:
		return PM_REPL_E_TYPE;
	}
}

enum pm_repl_result pm_repl_decode(const uint8_t *buf, size_t len, struct pm_repl_frame *f,
				   size_t *used)
{
	*used = 0;
	memset(f, 0, sizeof(*f));
	if (len < 4)
		return PM_REPL_MORE;
	uint32_t l = pm_get_le32(buf);
	if (l < PM_REPL_FRAME_HEADER_BYTES - 4u || l > PM_REPL_FRAME_BYTES_MAX - 4u)
		return PM_REPL_E_LENGTH;
	/* the header's fields are checked as soon as they are there: a peer that
	 * speaks something else is found before its bytes are waited for */
	if (len >= PM_REPL_FRAME_HEADER_BYTES) {
		if (buf[4] == 0 || buf[4] >= PM_REPL_TYPE_END)
			return PM_REPL_E_TYPE;
		if (buf[5] != PM_REPL_VERSION)
			return PM_REPL_E_VERSION;
		if (pm_get_le16(buf + 6) != 0)
			return PM_REPL_E_RESERVED;
	}
	size_t total = (size_t)l + 4u;
	if (len < total)
		return PM_REPL_MORE;
	f->type = buf[4];
	uint32_t n = (uint32_t)(total - PM_REPL_FRAME_HEADER_BYTES);
	if (fixed_payload[f->type] && n != fixed_payload[f->type])
		return PM_REPL_E_LENGTH;
	enum pm_repl_result r = decode_payload(buf + PM_REPL_FRAME_HEADER_BYTES, n, f);
	if (r == PM_REPL_OK)
		*used = total;
	return r;
}

const char *pm_repl_result_name(enum pm_repl_result r)
{
	static const char *const names[] = { "ok", "more", "bad length", "unknown type",
					     "unknown version", "reserved bits set",
					     "field out of range" };
	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

const char *pm_repl_type_name(uint8_t type)
{
	static const char *const names[PM_REPL_TYPE_END] = {
		[PM_REPL_HELLO] = "HELLO",	     [PM_REPL_WELCOME] = "WELCOME",
		[PM_REPL_REFUSE] = "REFUSE",	     [PM_REPL_RECORDS] = "RECORDS",
		[PM_REPL_SNAP_BEGIN] = "SNAP_BEGIN", [PM_REPL_SNAP_DATA] = "SNAP_DATA",
		[PM_REPL_SNAP_END] = "SNAP_END",     [PM_REPL_ACK] = "ACK",
		[PM_REPL_PING] = "PING",
	};
	return type < PM_REPL_TYPE_END && names[type] ? names[type] : "?";
}

const char *pm_repl_refusal_name(uint16_t reason)
{
	static const char *const names[PM_REPL_REFUSE_END] = {
		[PM_REPL_REFUSE_SHARDS] = "shard count differs",
		[PM_REPL_REFUSE_EPOCH] = "the replica has seen a later epoch",
		[PM_REPL_REFUSE_ROLE] = "not a primary",
		[PM_REPL_REFUSE_NO_LOG] = "the primary has no log (wal = none)",
		[PM_REPL_REFUSE_FULL] = "the shard serves its most replicas",
		[PM_REPL_REFUSE_VERSION] = "protocol version not spoken",
	};
	return reason < PM_REPL_REFUSE_END && names[reason] ? names[reason] : "?";
}

size_t pm_repl_encode_hello(uint8_t *out, size_t cap, uint32_t shard, uint32_t shards,
			    uint64_t epoch, uint64_t repl_id, uint64_t lsn)
{
	if (cap < PM_REPL_HELLO_BYTES || shards == 0 || shard >= shards)
		return 0;
	uint8_t *p = out + PM_REPL_FRAME_HEADER_BYTES;
	put_header(out, PM_REPL_HELLO, PM_REPL_HELLO_BYTES - PM_REPL_FRAME_HEADER_BYTES);
	pm_put_le32(p, shard);
	pm_put_le32(p + 4, shards);
	pm_put_le64(p + 8, epoch);
	pm_put_le64(p + 16, repl_id);
	pm_put_le64(p + 24, lsn);
	pm_put_le32(p + 32, 0);
	return PM_REPL_HELLO_BYTES;
}

size_t pm_repl_encode_welcome(uint8_t *out, size_t cap, uint8_t mode, uint64_t epoch,
			      uint64_t repl_id, uint64_t lsn, uint32_t addr_be, uint16_t udp_port,
			      uint16_t tcp_port)
{
	if (cap < PM_REPL_WELCOME_BYTES || (mode != PM_REPL_PARTIAL && mode != PM_REPL_FULL))
		return 0;
	uint8_t *p = out + PM_REPL_FRAME_HEADER_BYTES;
	put_header(out, PM_REPL_WELCOME, PM_REPL_WELCOME_BYTES - PM_REPL_FRAME_HEADER_BYTES);
	p[0] = mode;
	p[1] = p[2] = p[3] = 0;
	pm_put_le64(p + 4, epoch);
	pm_put_le64(p + 12, repl_id);
	pm_put_le64(p + 20, lsn);
	memcpy(p + 28, &addr_be, 4);
	pm_put_le16(p + 32, udp_port);
	pm_put_le16(p + 34, tcp_port);
	return PM_REPL_WELCOME_BYTES;
}

size_t pm_repl_encode_refuse(uint8_t *out, size_t cap, uint16_t reason, const char *text,
			     uint32_t text_len)
{
	size_t n = PM_REPL_FRAME_HEADER_BYTES + 4u + text_len;
	if (reason == 0 || reason >= PM_REPL_REFUSE_END || text_len > PM_REPL_TEXT_BYTES_MAX ||
	    cap < n)
		return 0;
	uint8_t *p = out + PM_REPL_FRAME_HEADER_BYTES;
	put_header(out, PM_REPL_REFUSE, 4u + text_len);
	pm_put_le16(p, reason);
	pm_put_le16(p + 2, (uint16_t)text_len);
	if (text_len)
		memcpy(p + 4, text, text_len);
	return n;
}

size_t pm_repl_encode_records_header(uint8_t *out, uint64_t first_lsn, uint32_t count,
				     uint32_t records_len)
{
	size_t n = (size_t)PM_REPL_FRAME_HEADER_BYTES + PM_REPL_RECORDS_FIXED_BYTES + records_len;
	/* the decoder's rules: a frame sent is a frame the replica accepts */
	if (n > PM_REPL_FRAME_BYTES_MAX || first_lsn == 0 || count == 0 ||
	    count > records_len / PM_REPL_RECORD_BYTES_MIN || first_lsn > UINT64_MAX - count)
		return 0;
	put_header(out, PM_REPL_RECORDS, PM_REPL_RECORDS_FIXED_BYTES + records_len);
	pm_put_le64(out + PM_REPL_FRAME_HEADER_BYTES, first_lsn);
	pm_put_le32(out + PM_REPL_FRAME_HEADER_BYTES + 8, count);
	return n;
}

size_t pm_repl_encode_snap_begin(uint8_t *out, size_t cap, uint64_t start_lsn, uint64_t bytes)
{
	if (cap < PM_REPL_SNAP_BEGIN_BYTES)
		return 0;
	put_header(out, PM_REPL_SNAP_BEGIN, PM_REPL_SNAP_BEGIN_BYTES - PM_REPL_FRAME_HEADER_BYTES);
	pm_put_le64(out + PM_REPL_FRAME_HEADER_BYTES, start_lsn);
	pm_put_le64(out + PM_REPL_FRAME_HEADER_BYTES + 8, bytes);
	return PM_REPL_SNAP_BEGIN_BYTES;
}

size_t pm_repl_encode_snap_data_header(uint8_t *out, uint32_t data_len)
{
	size_t n = (size_t)PM_REPL_FRAME_HEADER_BYTES + data_len;
	if (data_len == 0 || n > PM_REPL_FRAME_BYTES_MAX)
		return 0;
	put_header(out, PM_REPL_SNAP_DATA, data_len);
	return n;
}

/* A fixed-size frame of two u64 fields (SNAP_END has one). */
static size_t encode_u64s(uint8_t *out, size_t cap, uint8_t type, uint64_t a, uint64_t b,
			  size_t bytes)
{
	if (cap < bytes)
		return 0;
	put_header(out, type, (uint32_t)(bytes - PM_REPL_FRAME_HEADER_BYTES));
	pm_put_le64(out + PM_REPL_FRAME_HEADER_BYTES, a);
	if (bytes >= PM_REPL_FRAME_HEADER_BYTES + 16u)
		pm_put_le64(out + PM_REPL_FRAME_HEADER_BYTES + 8, b);
	return bytes;
}

size_t pm_repl_encode_snap_end(uint8_t *out, size_t cap, uint64_t bytes)
{
	return encode_u64s(out, cap, PM_REPL_SNAP_END, bytes, 0, PM_REPL_SNAP_END_BYTES);
}

size_t pm_repl_encode_ack(uint8_t *out, size_t cap, uint64_t received_lsn, uint64_t durable_lsn)
{
	if (durable_lsn > received_lsn)
		return 0;
	return encode_u64s(out, cap, PM_REPL_ACK, received_lsn, durable_lsn, PM_REPL_ACK_BYTES);
}

size_t pm_repl_encode_ping(uint8_t *out, size_t cap, uint64_t lsn, uint64_t wall_ms)
{
	return encode_u64s(out, cap, PM_REPL_PING, lsn, wall_ms, PM_REPL_PING_BYTES);
}
