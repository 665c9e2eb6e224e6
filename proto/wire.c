/* SPDX-License-Identifier: MIT
 *
 * proto/wire.c — the names of the wire's ops and statuses (see wire.h), for
 * whoever prints them: pomai-control's metrics, pomaictl, pomaid's admin
 * replies, the tests.
 */
#include "wire.h"

#include <stddef.h>

static const char *const op_names[PM_WIRE_OP_COUNT] = {
	[PM_WIRE_OP_SET] = "set",         [PM_WIRE_OP_GET] = "get",
	[PM_WIRE_OP_DEL] = "del",         [PM_WIRE_OP_INFO] = "info",
	[PM_WIRE_OP_VADD] = "vadd",       [PM_WIRE_OP_VGET] = "vget",
	[PM_WIRE_OP_VDEL] = "vdel",       [PM_WIRE_OP_VQUERY] = "vquery",
	[PM_WIRE_OP_CCREATE] = "ccreate", [PM_WIRE_OP_CDROP] = "cdrop",
	[PM_WIRE_OP_CLIST] = "clist",     [PM_WIRE_OP_SNAPSHOT] = "snapshot",
	[PM_WIRE_OP_MAP] = "map",
	[PM_WIRE_OP_VSETATTR] = "vsetattr", [PM_WIRE_OP_VADDB] = "vaddb",
	[PM_WIRE_OP_VQUERYB] = "vqueryb",   [PM_WIRE_OP_VRANGE] = "vrange",
	[PM_WIRE_OP_AUTH_HELLO] = "auth_hello", [PM_WIRE_OP_AUTH_PROVE] = "auth_prove",
};
_Static_assert(PM_WIRE_OP_COUNT == PM_WIRE_OP_AUTH_PROVE + 1, "every op has a name (op_names)");

/* Indexed by code: the codes below 64 and 255 (a status of its own). */
#define STATUS_NAMES_LOW 64u

static const char *const status_names[STATUS_NAMES_LOW] = {
	[PM_WIRE_OK] = "OK",
	[PM_WIRE_NOT_FOUND] = "NOT_FOUND",
	[PM_WIRE_E_WRONGTYPE] = "E_WRONGTYPE",
	[PM_WIRE_E_NOMEM] = "E_NOMEM",
	[PM_WIRE_E_EXISTS] = "E_EXISTS",
	[PM_WIRE_E_TIMEOUT] = "E_TIMEOUT",
	[PM_WIRE_E_BUSY] = "E_BUSY",
	[PM_WIRE_E_DISK_FULL] = "E_DISK_FULL",
	[PM_WIRE_E_LOG_FAILED] = "E_LOG_FAILED",
	[PM_WIRE_E_THROTTLED] = "E_THROTTLED",
	[PM_WIRE_E_QUOTA] = "E_QUOTA",
	[PM_WIRE_E_WORK_LIMIT] = "E_WORK_LIMIT",
	[PM_WIRE_E_READONLY] = "E_READONLY",
	[PM_WIRE_E_NOREPLICAS] = "E_NOREPLICAS",
	[PM_WIRE_E_MOVED] = "E_MOVED",
	[PM_WIRE_E_RETRY] = "E_RETRY",
	[PM_WIRE_E_KEY_LEN] = "E_KEY_LEN",
	[PM_WIRE_E_VALUE_LEN] = "E_VALUE_LEN",
	[PM_WIRE_E_DIM] = "E_DIM",
	[PM_WIRE_E_NAN] = "E_NAN",
	[PM_WIRE_E_ZERO_VECTOR] = "E_ZERO_VECTOR",
	[PM_WIRE_E_K] = "E_K",
	[PM_WIRE_E_EF] = "E_EF",
	[PM_WIRE_E_TTL] = "E_TTL",
	[PM_WIRE_E_COLLECTION_NAME] = "E_COLLECTION_NAME",
	[PM_WIRE_E_COLLECTIONS_FULL] = "E_COLLECTIONS_FULL",
	[PM_WIRE_E_PARAM] = "E_PARAM",
	[PM_WIRE_E_DTYPE] = "E_DTYPE",
	[PM_WIRE_E_FILTER] = "E_FILTER",
	[PM_WIRE_E_ATTR] = "E_ATTR",
	[PM_WIRE_E_BATCH] = "E_BATCH",
	[PM_WIRE_E_FRAME_TRUNCATED] = "E_FRAME_TRUNCATED",
	[PM_WIRE_E_FRAME_TOO_BIG] = "E_FRAME_TOO_BIG",
	[PM_WIRE_E_FRAME_MAGIC] = "E_FRAME_MAGIC",
	[PM_WIRE_E_FRAME_VERSION] = "E_FRAME_VERSION",
	[PM_WIRE_E_FRAME_OPCODE] = "E_FRAME_OPCODE",
	[PM_WIRE_E_FRAME_FLAGS] = "E_FRAME_FLAGS",
	[PM_WIRE_E_FRAME_LENGTH] = "E_FRAME_LENGTH",
	[PM_WIRE_E_AUTH] = "E_AUTH",
	[PM_WIRE_E_NOPERM] = "E_NOPERM",
};
_Static_assert(PM_WIRE_E_NOPERM < STATUS_NAMES_LOW, "every code but 255 has a slot");

const char *pm_wire_op_name(uint8_t op)
{
	return op < PM_WIRE_OP_COUNT ? op_names[op] : NULL;
}

bool pm_wire_status_known(uint8_t code)
{
	return code == PM_WIRE_E_INTERNAL || (code < STATUS_NAMES_LOW && status_names[code]);
}

const char *pm_wire_status_name(uint8_t code)
{
	if (code == PM_WIRE_E_INTERNAL)
		return "E_INTERNAL";
	return pm_wire_status_known(code) ? status_names[code] : "E_UNKNOWN";
}
