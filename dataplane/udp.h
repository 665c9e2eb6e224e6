/* SPDX-License-Identifier: MIT
 *
 * udp.h — the kernel-socket backend (udp.c): one non-blocking UDP socket per
 * worker on base_port + shard, bursts in with recvmmsg, out with sendmmsg.
 */
#ifndef POMAI_DATAPLANE_UDP_H
#define POMAI_DATAPLANE_UDP_H

#include <stddef.h>
#include <stdint.h>

struct pm_config;
struct pm_worker;

/* Shard `shard`'s socket, bound: its fd, or -1 with a message. */
int pm_udp_open(const struct pm_config *cfg, uint32_t shard, char *err, size_t errlen);
uint32_t pm_udp_rx(struct pm_worker *w);
void pm_udp_flush(struct pm_worker *w);

#endif
