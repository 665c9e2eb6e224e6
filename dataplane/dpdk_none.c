/* SPDX-License-Identifier: MIT
 *
 * dpdk_none.c — the DPDK backend's entry points in a pomaid built without
 * DPDK (libdpdk-dev absent at configure time): backend = dpdk is refused at
 * start-up with a message saying so; nothing else is ever called, because no
 * worker has DPDK state.
 */
#include <stdio.h>

#include "dpdk.h"
#include "worker.h"

int pm_dpdk_init(struct pm_daemon *d, int main_cpu, char *err, size_t errlen)
{
	(void)d;
	(void)main_cpu;
	snprintf(err, errlen, "backend = dpdk: this pomaid was built without DPDK (install"
			      " libdpdk-dev and rebuild)");
	return -1;
}

int pm_dpdk_open(struct pm_daemon *d, char *err, size_t errlen)
{
	return pm_dpdk_init(d, 0, err, errlen);
}

void pm_dpdk_close(struct pm_daemon *d)
{
	(void)d;
}

void *pm_dpdk_arena(struct pm_daemon *d, uint64_t bytes)
{
	(void)d;
	(void)bytes;
	return NULL;
}

void pm_dpdk_arena_free(void *mem)
{
	(void)mem;
}

int pm_dpdk_worker_enter(struct pm_worker *w)
{
	(void)w;
	return -1;
}

void pm_dpdk_worker_leave(struct pm_worker *w)
{
	(void)w;
}

uint32_t pm_dpdk_rx(struct pm_worker *w, uint32_t *work)
{
	(void)w;
	*work = 0;
	return 0;
}

void pm_dpdk_rx_done(struct pm_worker *w)
{
	(void)w;
}

void pm_dpdk_flush(struct pm_worker *w, bool now)
{
	(void)w;
	(void)now;
}

bool pm_dpdk_has_txq(const struct pm_worker *w, uint32_t port)
{
	(void)w;
	(void)port;
	return false;
}

uint32_t pm_dpdk_arm(struct pm_worker *w, int *fds, uint32_t cap, uint32_t *sleep_us)
{
	(void)w;
	(void)fds;
	(void)cap;
	(void)sleep_us;
	return 0;
}

void pm_dpdk_disarm(struct pm_worker *w)
{
	(void)w;
}

uint32_t pm_dpdk_info(const struct pm_worker *w, char *out, uint32_t cap)
{
	(void)w;
	(void)out;
	(void)cap;
	return 0;
}

uint32_t pm_dpdk_local_addrs(const struct pm_daemon *d, uint32_t *out, uint32_t max)
{
	(void)d;
	(void)out;
	(void)max;
	return 0;
}

const char *pm_dpdk_describe(const struct pm_daemon *d, char *buf, size_t len)
{
	(void)d;
	snprintf(buf, len, "(no DPDK)");
	return buf;
}

void pm_dpdk_counters(const struct pm_worker *w, struct pm_stats_shard *s)
{
	(void)w;
	(void)s; /* no DPDK queues: the kernel's counters are the NIC's */
}
