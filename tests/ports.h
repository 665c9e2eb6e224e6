/* SPDX-License-Identifier: MIT
 *
 * ports.h — for the suites that start a real pomaid on loopback: whether its
 * ports are free (the TCP port base - 1 and the UDP ports base .. base +
 * shards - 1), so a test can pick a random base that nothing else holds.
 */
#ifndef POMAI_TESTS_PORTS_H
#define POMAI_TESTS_PORTS_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

static inline bool pm_test_port_free(int type, uint16_t port)
{
	int fd = socket(AF_INET, type, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static inline bool pm_test_ports_free(uint16_t base, uint32_t shards)
{
	bool ok = pm_test_port_free(SOCK_STREAM, (uint16_t)(base - 1));
	for (uint32_t i = 0; i < shards && ok; i++)
		ok = pm_test_port_free(SOCK_DGRAM, (uint16_t)(base + i));
	return ok;
}

#endif
