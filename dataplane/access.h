/* SPDX-License-Identifier: MIT
 *
 * access.h — the worker's side of access control and quotas (access.c; the
 * rules are quota.h's): the daemon's own UDP sources, each worker's client
 * table and its calls for the control plane, the admission of each request
 * frame, the per-collection byte cap, the KNN work charged to each client,
 * and their INFO lines.
 */
#ifndef POMAI_DATAPLANE_ACCESS_H
#define POMAI_DATAPLANE_ACCESS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_limits.h"
#include "quota.h"
#include "request.h"

struct pm_daemon;
struct pm_worker;
struct pm_dest;

/* This daemon's own UDP sources: every local IPv4 address a worker may send
 * from, and the worker ports. A datagram that claims one of them is a
 * spoofed or looped one and is dropped unread: answering it would be talking
 * to itself. More local addresses than PM_SELF_ADDRS_MAX and every source
 * address counts as local, so only the port decides. */
struct pm_self {
	uint32_t naddrs;
	bool any_addr;
	uint32_t addr_be[PM_SELF_ADDRS_MAX];
	uint16_t port_lo, port_hi;       /* host order, inclusive */
};

/* Fill d->self from the bind address (every local address when it is the
 * wildcard) or the DPDK ports' addresses; after the backend is open. */
int pm_self_init(struct pm_daemon *d, char *err, size_t errlen);
/* True when a datagram's source is one of the daemon's own (d->self). */
bool pm_from_self(const struct pm_daemon *d, const struct sockaddr_in *from);

/* The worker's client table (from pm_worker_alloc / pm_worker_free). */
int pm_access_alloc(struct pm_worker *w);
void pm_access_free(struct pm_worker *w);
/* Charge one request frame of len bytes from `from` to its client's quota:
 * true if admitted; false if it was answered THROTTLED (and counted). */
bool pm_quota_admit(struct pm_worker *w, const struct pm_request *req, uint32_t len,
		    const struct pm_dest *from);
/* PM_E_QUOTA if req is a VADD that could take its collection past
 * collection_bytes_max on this shard (counted), else PM_OK. */
enum pm_status pm_collection_cap_check(struct pm_worker *w, const struct pm_request *req);
/* KNN work done for a client (FANOUT_REPLY's work), charged to its quota's
 * work budget. */
void pm_quota_charge_work(struct pm_worker *w, const struct pm_dest *client, uint64_t work);
/* Reply bytes sent to a client, charged to its byte quota after they left
 * (the bucket may go into debt): an unvalidated address's to the shared
 * buckets (quota.h), the admin socket's to no one. */
void pm_quota_charge_reply(struct pm_worker *w, const struct pm_dest *to, uint32_t bytes);

/* The control plane's per-client overrides (quota.h: pm_qtable_*). Call on
 * the worker's own thread: the admin thread delivers them by ring. */
int pm_quota_set(struct pm_worker *w, uint32_t addr_be, uint64_t requests_per_s,
		 uint64_t bytes_per_s);
int pm_quota_del(struct pm_worker *w, uint32_t addr_be);
uint32_t pm_quota_list(const struct pm_worker *w, struct pm_quota_override *out, uint32_t n);
/* The n clients with the most requests on this worker (pomaictl clients). */
uint32_t pm_quota_top(const struct pm_worker *w, struct pm_quota_talker *out, uint32_t n);
/* INFO lines: counters and the top talkers; _for: the talkers only when
 * clients (users.h: pm_auth_sees_clients). */
uint32_t pm_access_info(const struct pm_worker *w, char *out, uint32_t cap);
uint32_t pm_access_info_for(const struct pm_worker *w, char *out, uint32_t cap, bool clients);

#endif
