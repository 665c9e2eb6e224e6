/* SPDX-License-Identifier: MIT
 *
 * dpdk_none.c — the DPDK backend's entry points in a pomaid built without
 * DPDK (libdpdk-dev absent at configure time): backend = dpdk is refused at
 * start-up with a message saying so; nothing else is ever called, because no
 * worker is given the DPDK backend's operations.
 */
#include <stdio.h>

#include "backend.h"
#include "dpdk.h"

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

/* ---------------------------------------------------------------- the backend's operations */

/* Never called: no worker is given this table (start-up refuses backend = dpdk). */
static int none_enter(struct pm_worker *w)
{
	(void)w;
	return -1;
}

static void none_worker(struct pm_worker *w)
{
	(void)w;
}

static uint32_t none_rx(struct pm_worker *w, uint32_t *work)
{
	(void)w;
	*work = 0;
	return 0;
}

static void none_flush(struct pm_worker *w, bool now)
{
	(void)w;
	(void)now;
}

static uint32_t none_arm(struct pm_worker *w, int *fds, uint32_t cap, uint32_t *sleep_us)
{
	(void)w;
	(void)fds;
	(void)cap;
	(void)sleep_us;
	return 0;
}

static uint32_t none_info(const struct pm_worker *w, char *out, uint32_t cap)
{
	(void)w;
	(void)out;
	(void)cap;
	return 0;
}

static void none_counters(const struct pm_worker *w, struct pm_stats_shard *s)
{
	(void)w;
	(void)s;
}

const struct pm_backend_ops pm_dpdk_backend = {
	.name = "dpdk (not built)",
	.enter = none_enter,
	.leave = none_worker,
	.rx = none_rx,
	.rx_done = none_worker,
	.flush = none_flush,
	.arm = none_arm,
	.disarm = none_worker,
	.arm_misses_rx = false,
	.info = none_info,
	.counters = none_counters,
};

const struct pm_backend_ops *pm_dpdk_ops(void)
{
	return &pm_dpdk_backend;
}
