/* SPDX-License-Identifier: MIT
 *
 * bridge.h — where pomaid's engine meets the wire: the one table from engine
 * statuses to wire status codes, and the frame codec in engine terms.
 *
 * The engine (engine/) and the wire (proto/) each name their own types and
 * bounds, and neither includes the other. The dataplane works with the
 * engine's struct pm_request / pm_reply / enum pm_status; this module
 * converts at the codec: pm_request_decode() decodes a frame with the wire
 * codec and hands back an engine request, pm_reply_encode() encodes an
 * engine reply as wire frames. A conversion copies pointers and lengths,
 * never a payload, and allocates nothing: a request's pointers still point
 * into its frame, a reply's into the shard. Where the two rooms bound the
 * same thing (key bytes, dimension, k, ef, names, TTL, ops, metrics …),
 * bridge.c checks at compile time that they agree.
 */
#ifndef POMAI_DATAPLANE_BRIDGE_H
#define POMAI_DATAPLANE_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "pm_limits.h"
#include "request.h"
#include "status.h"

/* ---------------------------------------------------------------- statuses */

/* The stable wire code of an engine status: the one table (docs/protocol.md
 * §3 prints it). PM_WIRE_E_INTERNAL for PM_E_INTERNAL and for values that
 * have no code of their own. */
enum pm_wire_status pm_status_to_wire(enum pm_status st);

/* The engine status of a wire code, the inverse of pm_status_to_wire();
 * PM_E_INTERNAL for 255 and for codes that name no status. */
enum pm_status pm_status_from_wire(uint8_t code);

/* ---------------------------------------------------------------- messages */

static inline struct pm_bytes pm_bytes_from_wire(struct pm_wire_bytes b)
{
	return (struct pm_bytes){ b.ptr, b.len };
}

static inline struct pm_wire_bytes pm_bytes_to_wire(struct pm_bytes b)
{
	return (struct pm_wire_bytes){ b.ptr, b.len };
}

void pm_request_from_wire(const struct pm_wire_request *in, struct pm_request *out);
void pm_request_to_wire(const struct pm_request *in, struct pm_wire_request *out);
/* The item at byte *at of a decoded VADDB / VQUERYB request (0 for the
 * first) as the VADD / VQUERY request it is; *at advanced past it (issue 18). */
enum pm_status pm_request_item(const struct pm_request *batch, uint32_t *at,
			       struct pm_request *item);
void pm_coll_info_from_wire(const struct pm_wire_coll_info *in, struct pm_coll_info *out);

/* ---------------------------------------------------------------- frames */

/* pm_wire_request_decode() into an engine request; the decoding result as an
 * engine status (a frame error is PM_E_FRAME_*). */
enum pm_status pm_request_decode(const uint8_t *buf, size_t len, struct pm_request *req,
				 size_t *used);

/* pm_wire_request_encode() of an engine request (what the admin thread and a
 * CCREATE roll-back post to the workers). */
size_t pm_request_encode(const struct pm_request *req, uint8_t *out, size_t cap);

/* pm_wire_reply_encode() of an engine reply: one frame from *cursor on (see
 * codec.h). 0 also when it has more hits or collections than the wire's
 * bounds allow. */
size_t pm_reply_encode(const struct pm_reply *rep, uint32_t *cursor, uint8_t *out, size_t cap);

/* The primary every READONLY reply of this process names (repl.c sets it
 * when the node follows one; zeros until then). */
void pm_reply_set_primary(const struct pm_wire_primary *p);
void pm_reply_get_primary(struct pm_wire_primary *p);

/* pm_wire_reply_items() and pm_wire_reply_paged() of an engine reply. */
uint32_t pm_reply_items(const struct pm_reply *rep);
bool pm_reply_paged(const struct pm_reply *rep);

#endif
