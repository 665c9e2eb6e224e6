/* SPDX-License-Identifier: MIT
 *
 * status.h — the one result type of the engine (and of pomaid's dataplane,
 * which also reports frame and service errors in it).
 *
 * Engine functions return enum pm_status. The wire carries its own stable 8-bit
 * status codes (enum pm_wire_status, proto/wire.h); the mapping between the two
 * lives in exactly one switch, pm_status_to_wire() in dataplane/bridge.c. OS
 * wrappers elsewhere use 0 / -errno.
 */
#ifndef POMAI_ENGINE_STATUS_H
#define POMAI_ENGINE_STATUS_H

enum pm_status {
	PM_OK = 0,
	PM_NOT_FOUND,          /* key / collection absent (or expired) */
	PM_E_WRONGTYPE,        /* key holds the other kind (KV vs vector) */
	PM_E_NOMEM,            /* arena or seed slots exhausted for this request */
	PM_E_EXISTS,           /* collection already exists with other parameters */

	/* Argument errors: the request is well-formed but a value breaks a bound. */
	PM_E_KEY_LEN,          /* key empty or longer than PM_KEY_BYTES_MAX */
	PM_E_VALUE_LEN,        /* value longer than PM_VALUE_BYTES_MAX */
	PM_E_DIM,              /* dimension 0, above PM_DIM_MAX, or not the collection's */
	PM_E_NAN,              /* vector component is NaN or infinite */
	PM_E_ZERO_VECTOR,      /* all-zero vector in a cosine collection */
	PM_E_K,                /* k is 0 or above PM_K_MAX */
	PM_E_EF,               /* ef above PM_EF_MAX, or below k */
	PM_E_TTL,              /* TTL is 0 or above PM_TTL_MS_MAX */
	PM_E_COLLECTION_NAME,  /* collection name longer than the limit */
	PM_E_COLLECTIONS_FULL, /* PM_COLLECTIONS_MAX reached */
	PM_E_PARAM,            /* metric, index kind, M or ef_construction invalid */
	PM_E_DTYPE,            /* vector element type not supported */
	PM_E_FILTER,           /* filter expression malformed or over its bounds (filter.h) */
	PM_E_ATTR,             /* attribute record malformed or over its bounds (attr.h) */
	PM_E_BATCH,            /* batch count 0 or above its bound (issue 18) */

	/* Frame errors, found by the decoder before the engine sees anything. */
	PM_E_FRAME_TRUNCATED,  /* fewer bytes than the header or body length says */
	PM_E_FRAME_TOO_BIG,    /* body length above the wire's frame bound */
	PM_E_FRAME_MAGIC,      /* not a Pomai frame */
	PM_E_FRAME_VERSION,    /* unknown protocol version */
	PM_E_FRAME_OPCODE,     /* unknown opcode or sub-op */
	PM_E_FRAME_FLAGS,      /* flag bits not defined for this opcode, or reserved != 0 */
	PM_E_FRAME_LENGTH,     /* a length field disagrees with the body */

	/* Dataplane results: the request was valid but the appliance could not serve it now. */
	PM_E_TIMEOUT,          /* a shard did not answer a fan-out in time */
	PM_E_BUSY,             /* a ring or pending table was full; retry with back-off */
	PM_E_DISK_FULL,        /* the shard's log disk is full: writes refused, reads go on */
	PM_E_LOG_FAILED,       /* the shard's log hit an I/O error: writes refused until restart */
	PM_E_THROTTLED,        /* the client is over its quota; the reply carries a retry hint */
	PM_E_QUOTA,            /* a VADD into a collection at collection_bytes_max on this shard */
	PM_E_WORK_LIMIT,       /* a KNN search would read more than the shard's work cap (knn.h) */
	PM_E_READONLY,         /* a write to a replica: the primary takes writes */
	PM_E_NOREPLICAS,       /* fewer replicas connected (or acknowledging) than min_replicas */
	/* Who may speak (issue 19; the dataplane's, docs/protocol.md §14). */
	PM_E_RETRY,            /* an unvalidated source: echo the cookie the reply carries */
	PM_E_AUTH,             /* not authenticated (the reply carries a reason) */
	PM_E_NOPERM,           /* the user may not do this op on this key or collection */

	PM_E_INTERNAL,         /* unknown wire code, or a result with no code of its own */

	PM_STATUS_COUNT
};

/* Short, stable, human-readable name ("NOT_FOUND", "E_DIM", …). */
const char *pm_status_name(enum pm_status st);

#endif
