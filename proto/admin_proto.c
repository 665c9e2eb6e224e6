/* SPDX-License-Identifier: MIT
 *
 * proto/admin_proto.c — encoding and decoding admin messages, the servers'
 * framing (pomaid's admin socket and pomai-control's), and a blocking client
 * (see admin_proto.h; this file was control/admin_proto.c).
 */
#include "admin_proto.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "byteorder.h"

#define ARG_LEN_BYTES 2u

size_t pm_admin_req_encode(uint32_t argc, const char *const *argv, uint8_t *out, size_t cap)
{
	if (argc == 0 || argc > PM_ADMIN_ARGS_MAX || cap < PM_ADMIN_LEN_BYTES + 2)
		return 0;
	size_t n = PM_ADMIN_LEN_BYTES;
	out[n++] = PM_ADMIN_VERSION;
	out[n++] = (uint8_t)argc;
	for (uint32_t i = 0; i < argc; i++) {
		size_t len = strlen(argv[i]);
		if (len > PM_ADMIN_ARG_BYTES_MAX || cap - n < ARG_LEN_BYTES + len)
			return 0;
		pm_put_le16(out + n, (uint16_t)len);
		memcpy(out + n + ARG_LEN_BYTES, argv[i], len);
		n += ARG_LEN_BYTES + len;
	}
	pm_put_le32(out, (uint32_t)(n - PM_ADMIN_LEN_BYTES));
	return n;
}

int pm_admin_req_decode(const uint8_t *p, size_t len, struct pm_admin_req *r)
{
	if (len < 2 || p[0] != PM_ADMIN_VERSION || p[1] == 0 || p[1] > PM_ADMIN_ARGS_MAX)
		return -1;
	r->argc = p[1];
	size_t at = 2;
	for (uint32_t i = 0; i < r->argc; i++) {
		if (len - at < ARG_LEN_BYTES)
			return -1;
		uint32_t n = pm_get_le16(p + at);
		if (n > PM_ADMIN_ARG_BYTES_MAX || len - at - ARG_LEN_BYTES < n)
			return -1;
		r->arg[i].p = p + at + ARG_LEN_BYTES;
		r->arg[i].len = n;
		at += ARG_LEN_BYTES + n;
	}
	return at == len ? 0 : -1;
}

bool pm_admin_arg_is(const struct pm_admin_req *r, uint32_t i, const char *w)
{
	size_t n = strlen(w);
	return i < r->argc && r->arg[i].len == n && !strncasecmp((const char *)r->arg[i].p, w, n);
}

size_t pm_admin_reply_encode(uint8_t status, const char *text, size_t tlen, uint8_t *out,
			     size_t cap)
{
	if (tlen > PM_ADMIN_MESSAGE_BYTES_MAX - 2 || cap < PM_ADMIN_LEN_BYTES + 2 + tlen)
		return 0;
	pm_put_le32(out, (uint32_t)(2 + tlen));
	out[4] = PM_ADMIN_VERSION;
	out[5] = status;
	if (tlen)
		memcpy(out + 6, text, tlen);
	return PM_ADMIN_LEN_BYTES + 2 + tlen;
}

int pm_admin_reply_decode(const uint8_t *p, size_t len, uint8_t *status, const char **text,
			  size_t *tlen)
{
	if (len < 2 || p[0] != PM_ADMIN_VERSION || p[1] > PM_ADMIN_UNAVAILABLE)
		return -1;
	*status = p[1];
	*text = (const char *)p + 2;
	*tlen = len - 2;
	return 0;
}

/* ---------------------------------------------------------------- server */

int pm_admin_read_request(int fd, uint8_t *buf, uint32_t *have, uint32_t *len)
{
	size_t want = *have < PM_ADMIN_LEN_BYTES ? PM_ADMIN_LEN_BYTES - *have
						 : PM_ADMIN_LEN_BYTES + pm_get_le32(buf) - *have;
	ssize_t r = recv(fd, buf + *have, want, MSG_DONTWAIT);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
		return -1;
	*have += r > 0 ? (uint32_t)r : 0;
	if (*have < PM_ADMIN_LEN_BYTES)
		return 0;
	*len = pm_get_le32(buf);
	if (*len > PM_ADMIN_MESSAGE_BYTES_MAX)
		return -1; /* a bound broken: no reply, the connection goes */
	return *have < PM_ADMIN_LEN_BYTES + *len ? 0 : 1;
}

bool pm_admin_send_all(int fd, const uint8_t *p, size_t n, int timeout_ms)
{
	while (n) {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		if (poll(&pf, 1, timeout_ms) <= 0)
			return false;
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		if (r > 0)
			p += r, n -= (size_t)r;
	}
	return true;
}

/* ---------------------------------------------------------------- client */

int pm_admin_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	memcpy(a.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static long ms_left(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Exactly n bytes in or out before the deadline; 0 or -errno. */
static int io_all(int fd, uint8_t *p, size_t n, bool out, const struct timespec *deadline)
{
	while (n) {
		struct pollfd pf = { .fd = fd, .events = out ? POLLOUT : POLLIN };
		long left = ms_left(deadline);
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			return -ETIMEDOUT;
		ssize_t r = out ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0 && errno != EINTR && errno != EAGAIN)
			return -errno;
		if (r > 0)
			p += r, n -= (size_t)r;
	}
	return 0;
}

int pm_admin_call_raw(int fd, const uint8_t *req, size_t n, uint8_t *buf, size_t cap,
		      int timeout_ms, size_t *len)
{
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000)
		deadline.tv_sec++, deadline.tv_nsec -= 1000000000;
	int rc = io_all(fd, (uint8_t *)req, n, true, &deadline);
	if (rc == 0 && cap < PM_ADMIN_LEN_BYTES)
		return -EPROTO;
	if (rc == 0)
		rc = io_all(fd, buf, PM_ADMIN_LEN_BYTES, false, &deadline);
	uint32_t plen = rc == 0 ? pm_get_le32(buf) : 0;
	if (rc == 0 && (plen > PM_ADMIN_MESSAGE_BYTES_MAX || plen > cap))
		return -EPROTO;
	if (rc == 0)
		rc = io_all(fd, buf, plen, false, &deadline);
	*len = plen;
	return rc;
}

int pm_admin_call(int fd, uint32_t argc, const char *const *argv, uint8_t *buf, size_t cap,
		  int timeout_ms, uint8_t *status, const char **text, size_t *tlen)
{
	size_t n = pm_admin_req_encode(argc, argv, buf, cap), len;
	if (n == 0)
		return -E2BIG;
	int rc = pm_admin_call_raw(fd, buf, n, buf, cap, timeout_ms, &len);
	if (rc == 0 && pm_admin_reply_decode(buf, len, status, text, tlen) != 0)
		return -EPROTO;
	return rc;
}
