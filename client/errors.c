/* SPDX-License-Identifier: MIT
 *
 * errors.c — libpomai's statuses: their names and sentences, and the one
 * switch that maps the server's statuses (the wire's status codes, enum
 * pm_wire_status in proto/wire.h) to the client's. The frame errors collapse
 * into one status, E_FRAME: all of them mean that client and server disagree
 * about the protocol, and a caller can do nothing different about any one of
 * them.
 */
#include <stdio.h>
#include <stdlib.h>

#include "client_impl.h"

struct status_text {
	const char *name;
	const char *text;
};

static const struct status_text texts[PM_CLIENT_STATUS_COUNT] = {
	[PM_CLIENT_OK] = { "OK", "success" },
	[PM_CLIENT_NOT_FOUND] = { "NOT_FOUND", "not found (absent or expired)" },
	[PM_CLIENT_E_WRONGTYPE] = { "E_WRONGTYPE", "the key holds the other kind (KV vs vector)" },
	[PM_CLIENT_E_SERVER_NOMEM] = { "E_SERVER_NOMEM",
					"the server's shard is out of memory, or at its maxmemory "
					"and could not evict enough" },
	[PM_CLIENT_E_EXISTS] = { "E_EXISTS", "the collection exists with other parameters" },
	[PM_CLIENT_E_KEY_LEN] = { "E_KEY_LEN", "key empty or longer than 1024 bytes" },
	[PM_CLIENT_E_VALUE_LEN] = { "E_VALUE_LEN", "value longer than 61440 bytes" },
	[PM_CLIENT_E_DIM] = { "E_DIM",
			      "dimension 0, above 4096, or not the collection's dimension" },
	[PM_CLIENT_E_NAN] = { "E_NAN", "a vector component is NaN or infinite" },
	[PM_CLIENT_E_ZERO_VECTOR] = { "E_ZERO_VECTOR", "all-zero vector in a cosine collection" },
	[PM_CLIENT_E_K] = { "E_K", "k must be 1..1024" },
	[PM_CLIENT_E_EF] = { "E_EF", "ef must be 0 or k..4096" },
	[PM_CLIENT_E_TTL] = { "E_TTL", "TTL above 2^40 ms" },
	[PM_CLIENT_E_COLLECTION_NAME] = { "E_COLLECTION_NAME",
					  "collection name empty or longer than 64 bytes" },
	[PM_CLIENT_E_COLLECTIONS_FULL] = { "E_COLLECTIONS_FULL",
					   "the server holds its maximum of collections" },
	[PM_CLIENT_E_PARAM] = { "E_PARAM",
				"invalid metric, index kind, HNSW parameter or INFO section "
				"(snapshot: the server's log is off)" },
	[PM_CLIENT_E_DTYPE] = { "E_DTYPE", "vector element type not supported" },
	[PM_CLIENT_E_FILTER] = { "E_FILTER", "filter expression malformed or over its bounds" },
	[PM_CLIENT_E_ATTR] = { "E_ATTR", "attribute record malformed or over its bounds" },
	[PM_CLIENT_E_FRAME] = { "E_FRAME",
				"the server could not decode the frame (protocol mismatch)" },
	[PM_CLIENT_E_SERVER_TIMEOUT] = { "E_SERVER_TIMEOUT",
					 "a server shard did not answer in time" },
	[PM_CLIENT_E_BUSY] = { "E_BUSY", "the server was busy; retry later" },
	[PM_CLIENT_E_DISK_FULL] = { "E_DISK_FULL",
				    "the server's log disk is full: writes refused, reads work" },
	[PM_CLIENT_E_LOG_FAILED] = { "E_LOG_FAILED",
				     "the server's log failed (I/O error): writes refused" },
	[PM_CLIENT_E_SERVER] = { "E_SERVER", "internal or unknown server error" },
	[PM_CLIENT_E_TIMEOUT] = { "E_TIMEOUT", "no reply from the server (timed out)" },
	[PM_CLIENT_E_CONNECTION] = { "E_CONNECTION", "connection failed or lost" },
	[PM_CLIENT_E_CONFIG] = { "E_CONFIG", "invalid client configuration" },
	[PM_CLIENT_E_ARG] = { "E_ARG", "invalid argument" },
	[PM_CLIENT_E_NOSPACE] = { "E_NOSPACE", "the result does not fit the buffer given" },
	[PM_CLIENT_E_PROTOCOL] = { "E_PROTOCOL", "the server's reply broke the protocol" },
	[PM_CLIENT_E_WOULD_BLOCK] = { "E_WOULD_BLOCK",
				      "every request slot is busy and waiting is not allowed here" },
	[PM_CLIENT_E_ALLOC] = { "E_ALLOC", "out of memory in the client" },
	[PM_CLIENT_E_THROTTLED] = { "E_THROTTLED",
				    "over this client's quota on the server: retry after its hint" },
	[PM_CLIENT_E_QUOTA] = { "E_QUOTA",
				"the collection holds its byte cap (collection_bytes_max) on that shard" },
	[PM_CLIENT_E_WORK_LIMIT] = { "E_WORK_LIMIT",
				     "the query would read more vectors on a shard than the "
				     "server's knn_work_bytes_max allows" },
	[PM_CLIENT_E_READONLY] = { "E_READONLY",
				   "the server is a replica: writes go to its primary (cluster: "
				   "the key's replica set had no primary within the retry budget)" },
	[PM_CLIENT_E_NOREPLICAS] = { "E_NOREPLICAS",
				     "fewer replicas than min_replicas are connected or confirmed "
				     "the write in time" },
	[PM_CLIENT_E_AUTH] = { "E_AUTH", "not authenticated: no user, or the server refused it"
					 " (unknown user, wrong key, replay, clock skew)" },
	[PM_CLIENT_E_NOPERM] = { "E_NOPERM", "the user may not do this here (rights, prefixes)" },
	[PM_CLIENT_E_BATCH] = { "E_BATCH",
				"a batch of 0 items, or more than 512, or its k summed above 1024" },
	[PM_CLIENT_E_RETRY] = { "E_RETRY",
				"the server refused this client's cookie twice in a row (its "
				"address changed, or the server restarted); try again" },
	[PM_CLIENT_E_MOVED] = { "E_MOVED",
				"the key's slot belongs to another replica set (cluster: the nodes' "
				"maps still disagreed when the retry budget ran out)" },
};

const char *pm_client_strerror(enum pm_client_status st)
{
	if ((unsigned)st >= PM_CLIENT_STATUS_COUNT || texts[st].text == NULL)
		return "unknown status";
	return texts[st].text;
}

const char *pm_client_status_name(enum pm_client_status st)
{
	if ((unsigned)st >= PM_CLIENT_STATUS_COUNT || texts[st].name == NULL)
		return "E_UNKNOWN";
	return texts[st].name;
}

enum pm_client_status pmc_from_wire(enum pm_wire_status st)
{
	switch (st) {
	case PM_WIRE_OK: return PM_CLIENT_OK;
	case PM_WIRE_NOT_FOUND: return PM_CLIENT_NOT_FOUND;
	case PM_WIRE_E_WRONGTYPE: return PM_CLIENT_E_WRONGTYPE;
	case PM_WIRE_E_NOMEM: return PM_CLIENT_E_SERVER_NOMEM;
	case PM_WIRE_E_EXISTS: return PM_CLIENT_E_EXISTS;
	case PM_WIRE_E_KEY_LEN: return PM_CLIENT_E_KEY_LEN;
	case PM_WIRE_E_VALUE_LEN: return PM_CLIENT_E_VALUE_LEN;
	case PM_WIRE_E_DIM: return PM_CLIENT_E_DIM;
	case PM_WIRE_E_NAN: return PM_CLIENT_E_NAN;
	case PM_WIRE_E_ZERO_VECTOR: return PM_CLIENT_E_ZERO_VECTOR;
	case PM_WIRE_E_K: return PM_CLIENT_E_K;
	case PM_WIRE_E_EF: return PM_CLIENT_E_EF;
	case PM_WIRE_E_TTL: return PM_CLIENT_E_TTL;
	case PM_WIRE_E_COLLECTION_NAME: return PM_CLIENT_E_COLLECTION_NAME;
	case PM_WIRE_E_COLLECTIONS_FULL: return PM_CLIENT_E_COLLECTIONS_FULL;
	case PM_WIRE_E_PARAM: return PM_CLIENT_E_PARAM;
	case PM_WIRE_E_DTYPE: return PM_CLIENT_E_DTYPE;
	case PM_WIRE_E_FILTER: return PM_CLIENT_E_FILTER;
	case PM_WIRE_E_ATTR: return PM_CLIENT_E_ATTR;
	case PM_WIRE_E_FRAME_TRUNCATED:
	case PM_WIRE_E_FRAME_TOO_BIG:
	case PM_WIRE_E_FRAME_MAGIC:
	case PM_WIRE_E_FRAME_VERSION:
	case PM_WIRE_E_FRAME_OPCODE:
	case PM_WIRE_E_FRAME_FLAGS:
	case PM_WIRE_E_FRAME_LENGTH: return PM_CLIENT_E_FRAME;
	case PM_WIRE_E_TIMEOUT: return PM_CLIENT_E_SERVER_TIMEOUT;
	case PM_WIRE_E_BUSY: return PM_CLIENT_E_BUSY;
	case PM_WIRE_E_DISK_FULL: return PM_CLIENT_E_DISK_FULL;
	case PM_WIRE_E_LOG_FAILED: return PM_CLIENT_E_LOG_FAILED;
	case PM_WIRE_E_THROTTLED: return PM_CLIENT_E_THROTTLED;
	case PM_WIRE_E_QUOTA: return PM_CLIENT_E_QUOTA;
	case PM_WIRE_E_WORK_LIMIT: return PM_CLIENT_E_WORK_LIMIT;
	case PM_WIRE_E_READONLY: return PM_CLIENT_E_READONLY;
	case PM_WIRE_E_NOREPLICAS: return PM_CLIENT_E_NOREPLICAS;
	case PM_WIRE_E_MOVED: return PM_CLIENT_E_MOVED;
	case PM_WIRE_E_BATCH: return PM_CLIENT_E_BATCH;
	case PM_WIRE_E_RETRY: return PM_CLIENT_E_RETRY;
	case PM_WIRE_E_AUTH: return PM_CLIENT_E_AUTH;
	case PM_WIRE_E_NOPERM: return PM_CLIENT_E_NOPERM;
	default: return PM_CLIENT_E_SERVER; /* PM_WIRE_E_INTERNAL, and codes newer than us */
	}
}

void pmc_panic(const char *file, int line, const char *what)
{
	fprintf(stderr, "libpomai: invariant broken at %s:%d: %s\n", file, line, what);
	fflush(stderr);
	abort();
}
