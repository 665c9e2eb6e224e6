/* SPDX-License-Identifier: MIT
 *
 * status.c — names of engine statuses, and the panic that PM_ASSERT calls.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "status.h"

static const char *const status_names[PM_STATUS_COUNT] = {
	[PM_OK] = "OK",
	[PM_NOT_FOUND] = "NOT_FOUND",
	[PM_E_WRONGTYPE] = "E_WRONGTYPE",
	[PM_E_NOMEM] = "E_NOMEM",
	[PM_E_EXISTS] = "E_EXISTS",
	[PM_E_KEY_LEN] = "E_KEY_LEN",
	[PM_E_VALUE_LEN] = "E_VALUE_LEN",
	[PM_E_DIM] = "E_DIM",
	[PM_E_NAN] = "E_NAN",
	[PM_E_ZERO_VECTOR] = "E_ZERO_VECTOR",
	[PM_E_K] = "E_K",
	[PM_E_EF] = "E_EF",
	[PM_E_TTL] = "E_TTL",
	[PM_E_COLLECTION_NAME] = "E_COLLECTION_NAME",
	[PM_E_COLLECTIONS_FULL] = "E_COLLECTIONS_FULL",
	[PM_E_PARAM] = "E_PARAM",
	[PM_E_DTYPE] = "E_DTYPE",
	[PM_E_FILTER] = "E_FILTER",
	[PM_E_ATTR] = "E_ATTR",
	[PM_E_BATCH] = "E_BATCH",
	[PM_E_FRAME_TRUNCATED] = "E_FRAME_TRUNCATED",
	[PM_E_FRAME_TOO_BIG] = "E_FRAME_TOO_BIG",
	[PM_E_FRAME_MAGIC] = "E_FRAME_MAGIC",
	[PM_E_FRAME_VERSION] = "E_FRAME_VERSION",
	[PM_E_FRAME_OPCODE] = "E_FRAME_OPCODE",
	[PM_E_FRAME_FLAGS] = "E_FRAME_FLAGS",
	[PM_E_FRAME_LENGTH] = "E_FRAME_LENGTH",
	[PM_E_TIMEOUT] = "E_TIMEOUT",
	[PM_E_BUSY] = "E_BUSY",
	[PM_E_DISK_FULL] = "E_DISK_FULL",
	[PM_E_LOG_FAILED] = "E_LOG_FAILED",
	[PM_E_THROTTLED] = "E_THROTTLED",
	[PM_E_QUOTA] = "E_QUOTA",
	[PM_E_WORK_LIMIT] = "E_WORK_LIMIT",
	[PM_E_READONLY] = "E_READONLY",
	[PM_E_NOREPLICAS] = "E_NOREPLICAS",
	[PM_E_RETRY] = "E_RETRY",
	[PM_E_AUTH] = "E_AUTH",
	[PM_E_NOPERM] = "E_NOPERM",
	[PM_E_INTERNAL] = "E_INTERNAL",
};

const char *pm_status_name(enum pm_status st)
{
	if ((unsigned)st >= PM_STATUS_COUNT || !status_names[st])
		return "E_UNKNOWN";
	return status_names[st];
}

void pm_panic(const char *file, int line, const char *what)
{
	fprintf(stderr, "pomai: invariant broken at %s:%d: %s\n", file, line, what);
	fflush(stderr);
	abort();
}
