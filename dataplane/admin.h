/* SPDX-License-Identifier: MIT
 *
 * admin.h — pomaid's admin socket (admin.c; the protocol: control/admin_proto.h,
 * docs/admin.md), served by the main thread once the workers run, and the
 * calls it makes on a worker's own quota table by ring (PM_MSG_ADMIN_CALL).
 */
#ifndef POMAI_DATAPLANE_ADMIN_H
#define POMAI_DATAPLANE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pm_daemon;
struct pm_users;

/* An admin call a worker runs on its own quota table (PM_MSG_ADMIN_CALL); it
 * answers with a struct pm_admin_result, then its n overrides or talkers. */
enum pm_admin_call_op { PM_CALL_QUOTA_SET = 1, PM_CALL_QUOTA_DEL, PM_CALL_QUOTA_LIST,
			PM_CALL_CLIENTS, PM_CALL_CLUSTER_VIEW, PM_CALL_CLUSTER_EXPORT,
			PM_CALL_CLUSTER_PURGE, PM_CALL_USERS };
struct pm_admin_call {
	uint32_t op;       /* enum pm_admin_call_op */
	const struct pm_cluster_view *view; /* CLUSTER_VIEW: the map view to route by */
	const struct pm_users *users;       /* USERS: the users table to check frames by */
	uint16_t first, last;  /* CLUSTER_EXPORT, ranged _PURGE: the slots */
	uint32_t cursor;       /* CLUSTER_EXPORT, _PURGE: where the walk is */
	bool dirty;            /* CLUSTER_EXPORT: the keys changed since, not a walk */
	bool ranged;           /* CLUSTER_PURGE: the copies of slots first..last this
				* node's set receives in a move (a restarted move's
				* target drops them before the copy starts again) */
	uint32_t addr_be;
	uint64_t requests_per_s, bytes_per_s;
	uint32_t n;        /* LIST / CLIENTS: at most this many */
};
struct pm_admin_result {
	int32_t rc;        /* 0 or -errno */
	uint32_t n;
};

/* The admin socket: opened before the workers start, served by the calling
 * thread until the daemon stops, closed after the workers are joined. */
int pm_admin_open(struct pm_daemon *d, char *err, size_t errlen);
void pm_admin_run(struct pm_daemon *d);
void pm_admin_close(struct pm_daemon *d);

/* Hand worker i a cluster map view (PM_CALL_CLUSTER_VIEW) and wait for it to
 * take it: 0, or -1 when it did not answer in time. */
struct pm_cluster_view;
int pm_admin_give_view(struct pm_daemon *d, uint32_t i, const struct pm_cluster_view *v);

#endif
