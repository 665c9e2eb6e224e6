/* SPDX-License-Identifier: MIT
 *
 * udp.h — the kernel-socket backend (udp.c): one non-blocking UDP socket per
 * worker on base_port + shard, bursts in with recvmmsg, out with sendmmsg.
 */
#ifndef POMAI_DATAPLANE_UDP_H
#define POMAI_DATAPLANE_UDP_H

#include <stddef.h>
#include <stdint.h>

struct pm_backend_ops;
struct pm_config;
struct pm_worker;

/* Shard `shard`'s socket, bound: its fd, or -1 with a message. */
int pm_udp_open(const struct pm_config *cfg, uint32_t shard, char *err, size_t errlen);
/* Its operations (backend.h): bursts with recvmmsg and sendmmsg. */
extern const struct pm_backend_ops pm_udp_backend;

#endif
