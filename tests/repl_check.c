/* SPDX-License-Identifier: MIT
 *
 * repl_check.c — an accepted replication frame's rules (see repl_check.h).
 */
#include <string.h>

#include "repl_check.h"

#define RULE(cond)                   \
	do {                         \
		if (!(cond))         \
			return #cond; \
	} while (0)

/* Whether [p, p + n) lies inside [base, base + len). */
static int inside(const void *p, size_t n, const void *base, size_t len)
{
	const uint8_t *q = p, *b = base;
	return n == 0 || (q >= b && q <= b + len && n <= (size_t)(b + len - q));
}

/* The re-encoding of an accepted frame. */
static uint8_t again[PM_REPL_FRAME_BYTES_MAX];

const char *repl_frame_check(const uint8_t *b, size_t used, const struct pm_repl_frame *f)
{
	const size_t hdr = PM_REPL_FRAME_HEADER_BYTES;
	size_t n = 0;
	RULE(f->type == b[4] && f->type >= PM_REPL_HELLO && f->type < PM_REPL_TYPE_END);
	switch (f->type) {
	case PM_REPL_HELLO:
		RULE(f->u.hello.shard < f->u.hello.shards);
		n = pm_repl_encode_hello(again, sizeof(again), f->u.hello.shard, f->u.hello.shards,
					 f->u.hello.epoch, f->u.hello.repl_id, f->u.hello.lsn);
		break;
	case PM_REPL_WELCOME:
		RULE(f->u.welcome.mode == PM_REPL_PARTIAL || f->u.welcome.mode == PM_REPL_FULL);
		n = pm_repl_encode_welcome(again, sizeof(again), f->u.welcome.mode,
					   f->u.welcome.epoch, f->u.welcome.repl_id,
					   f->u.welcome.lsn, f->u.welcome.addr_be,
					   f->u.welcome.udp_port, f->u.welcome.tcp_port);
		break;
	case PM_REPL_REFUSE:
		RULE(f->u.refuse.reason >= 1 && f->u.refuse.reason < PM_REPL_REFUSE_END);
		RULE(f->u.refuse.text_len <= PM_REPL_TEXT_BYTES_MAX);
		RULE(used == hdr + 4u + f->u.refuse.text_len);
		RULE(inside(f->u.refuse.text, f->u.refuse.text_len, b, used));
		n = pm_repl_encode_refuse(again, sizeof(again), f->u.refuse.reason,
					  f->u.refuse.text, f->u.refuse.text_len);
		break;
	case PM_REPL_RECORDS:
		RULE(f->u.records.first_lsn >= 1 && f->u.records.count >= 1);
		RULE((uint64_t)f->u.records.count * PM_REPL_RECORD_BYTES_MIN <= f->u.records.len);
		RULE(f->u.records.first_lsn <= UINT64_MAX - f->u.records.count);
		RULE(used == hdr + PM_REPL_RECORDS_FIXED_BYTES + (size_t)f->u.records.len);
		RULE(inside(f->u.records.bytes, f->u.records.len, b, used));
		n = pm_repl_encode_records_header(again, f->u.records.first_lsn, f->u.records.count,
						  f->u.records.len);
		RULE(n == used);
		memcpy(again + hdr + PM_REPL_RECORDS_FIXED_BYTES, f->u.records.bytes,
		       f->u.records.len);
		break;
	case PM_REPL_SNAP_BEGIN:
		n = pm_repl_encode_snap_begin(again, sizeof(again), f->u.snap_begin.start_lsn,
					      f->u.snap_begin.bytes);
		break;
	case PM_REPL_SNAP_DATA:
		RULE(f->u.snap_data.len >= 1);
		RULE(used == hdr + (size_t)f->u.snap_data.len);
		RULE(inside(f->u.snap_data.bytes, f->u.snap_data.len, b, used));
		n = pm_repl_encode_snap_data_header(again, f->u.snap_data.len);
		RULE(n == used);
		memcpy(again + hdr, f->u.snap_data.bytes, f->u.snap_data.len);
		break;
	case PM_REPL_SNAP_END:
		n = pm_repl_encode_snap_end(again, sizeof(again), f->u.snap_end.bytes);
		break;
	case PM_REPL_ACK:
		RULE(f->u.ack.durable_lsn <= f->u.ack.received_lsn);
		n = pm_repl_encode_ack(again, sizeof(again), f->u.ack.received_lsn,
				       f->u.ack.durable_lsn);
		break;
	case PM_REPL_PING:
		n = pm_repl_encode_ping(again, sizeof(again), f->u.ping.lsn, f->u.ping.wall_ms);
		break;
	}
	RULE(n == used);
	RULE(memcmp(again, b, used) == 0);
	return NULL;
}
