/* SPDX-License-Identifier: MIT
 *
 * netns.h — for the suites that run pomaid's DPDK backend on net_tap inside a
 * network namespace they create (test_dpdk, test_campaign --dpdk): give an
 * interface an address, bring it up, write a /proc/sys knob. Every wrapper
 * returns 0 or -errno.
 */
#ifndef POMAI_TESTS_NETNS_H
#define POMAI_TESTS_NETNS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static inline int pm_ns_ifreq_ioctl(unsigned long req, struct ifreq *ifr)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return -errno;
	int rc = ioctl(fd, req, ifr) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

/* Give interface `name` the address ip with netmask mask. */
static inline int pm_ns_iface_addr(const char *name, const char *ip, const char *mask)
{
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	struct sockaddr_in *a = (struct sockaddr_in *)&ifr.ifr_addr;
	a->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &a->sin_addr);
	int rc = pm_ns_ifreq_ioctl(SIOCSIFADDR, &ifr);
	if (rc != 0)
		return rc;
	inet_pton(AF_INET, mask, &a->sin_addr);
	return pm_ns_ifreq_ioctl(SIOCSIFNETMASK, &ifr);
}

static inline int pm_ns_iface_up(const char *name)
{
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	int rc = pm_ns_ifreq_ioctl(SIOCGIFFLAGS, &ifr);
	if (rc != 0)
		return rc;
	ifr.ifr_flags |= IFF_UP;
	return pm_ns_ifreq_ioctl(SIOCSIFFLAGS, &ifr);
}

/* Write text to a /proc or /sys file. */
static inline int pm_ns_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int rc = n == (ssize_t)strlen(text) ? 0 : n < 0 ? -errno : -EIO;
	close(fd);
	return rc;
}

#endif
