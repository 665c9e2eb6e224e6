/* SPDX-License-Identifier: MIT
 *
 * frames.c — frames to a real pomaid without libpomai (wire.h).
 */
#define _GNU_SOURCE
#include "frames.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- UDP */

bool wire_open(struct wire *c, const char *src, const char *host, uint16_t base,
	       uint64_t first_id)
{
	int rcvbuf = WIRE_RCVBUF_BYTES;
	struct timeval tv = { WIRE_REPLY_WAIT_MS / 1000, (WIRE_REPLY_WAIT_MS % 1000) * 1000 };
	c->to = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(base) };
	c->timeout_ms = WIRE_REPLY_WAIT_MS;
	c->attempts = WIRE_ATTEMPTS;
	c->whole = false;
	c->server = NULL;
	c->decode = pm_reply_decode;
	c->no_cookies = false;
	c->cookie = false;
	c->next_id = first_id;
	c->auth_user = 0;
	c->in_at = c->in_len = 0;
	c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || inet_pton(AF_INET, host, &c->to.sin_addr) != 1)
		goto fail;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	/* a test's own recv() on fd waits as long as one attempt, never for ever */
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (src) {
		struct sockaddr_in me = { .sin_family = AF_INET };
		if (inet_pton(AF_INET, src, &me.sin_addr) != 1 ||
		    bind(c->fd, (struct sockaddr *)&me, sizeof(me)) != 0)
			goto fail;
	}
	return true;
fail:
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	return false;
}

void wire_close(struct wire *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

bool wire_send(struct wire *c, uint32_t shard, const void *p, size_t n)
{
	struct sockaddr_in a = c->to;
	a.sin_port = htons((uint16_t)(ntohs(c->to.sin_port) + shard));
	struct iovec iov[2] = { { c->cookie_frame, PM_COOKIE_FRAME_BYTES }, { (void *)p, n } };
	struct msghdr m = { .msg_name = &a, .msg_namelen = sizeof(a), .msg_iov = iov + !c->cookie,
			    .msg_iovlen = c->cookie ? 2 : 1 };
	size_t total = n + (c->cookie ? PM_COOKIE_FRAME_BYTES : 0);
	return sendmsg(c->fd, &m, 0) == (ssize_t)total;
}

/* A RETRY's cookie, kept for the datagrams that follow. */
static void learn_cookie(struct wire *c, const struct pm_reply_view *rv)
{
	struct pm_cookie k;
	if (c->no_cookies || rv->status != PM_WIRE_E_RETRY || !rv->cookie ||
	    !pm_cookie_read(rv->cookie, &k))
		return;
	pm_cookie_frame_write(&k, c->cookie_frame);
	c->cookie = true;
}

bool wire_validate(struct wire *c)
{
	if (c->auth_user) { /* a user's write is executed, not answered RETRY: a
			     * signed INFO's reply is over an unvalidated budget */
		struct pm_request info = { .op = PM_OP_INFO };
		struct pm_reply_view irv;
		bool whole = c->whole;
		c->cookie = false;
		c->whole = false;
		(void)wire_call(c, &info, 0, &irv);
		c->whole = whole;
		return c->cookie;
	}
	struct pm_request r = { .op = PM_OP_SET, .key = { (const uint8_t *)"k", 1 } };
	struct pm_reply_view rv;
	uint8_t frame[64];
	c->cookie = false; /* the SET must arrive unvalidated: RETRY, not executed */
	r.id = c->next_id++;
	size_t n = pm_request_encode(&r, frame, sizeof(frame));
	for (int attempt = 0; n && attempt < c->attempts && !c->cookie; attempt++) {
		wire_send(c, 0, frame, n);
		while (!c->cookie && wire_recv(c, c->timeout_ms, &rv))
			;
	}
	return c->cookie;
}

/* The next frame queued from the last datagram that decodes; a frame that
 * does not ends its datagram (the rest cannot be delimited). */
static bool next_queued(struct wire *c, struct pm_reply_view *rv)
{
	size_t used = 0;
	if (c->in_at < c->in_len &&
	    c->decode(c->in + c->in_at, c->in_len - c->in_at, rv, &used) == PM_WIRE_OK && used) {
		c->in_at += used;
		learn_cookie(c, rv);
		return true;
	}
	c->in_at = c->in_len = 0;
	return false;
}

bool wire_recv_now(struct wire *c, struct pm_reply_view *rv)
{
	while (!next_queued(c, rv)) {
		ssize_t r = recv(c->fd, c->in, sizeof(c->in), MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		c->in_len = (size_t)r;
	}
	return true;
}

bool wire_recv(struct wire *c, int ms, struct pm_reply_view *rv)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	if (wire_recv_now(c, rv))
		return true;
	while (poll(&p, 1, ms) == 1)
		if (wire_recv_now(c, rv))
			return true;
	return false;
}

void wire_discard(struct wire *c)
{
	c->in_at = c->in_len = 0;
	while (recv(c->fd, c->in, sizeof(c->in), MSG_DONTWAIT) > 0)
		;
}

void wire_auth(struct wire *c, uint32_t user, const uint8_t mac_key[PM_AUTH_MAC_KEY_BYTES])
{
	c->auth_user = user;
	memcpy(c->auth_key, mac_key, PM_AUTH_MAC_KEY_BYTES);
	pm_auth_random(&c->auth_session, sizeof(c->auth_session));
	c->auth_seq = 0;
}

/* Sign the frame in c->buf (n bytes) for shard, appending the trailer the
 * first time (*signed_n 0), signing it again with a new seq after. */
static size_t wire_sign(struct wire *c, uint32_t shard, size_t n, size_t *signed_n)
{
	struct pm_auth_trailer t = { .user = c->auth_user, .session = c->auth_session,
				     .seq = ++c->auth_seq, .time_s = (uint32_t)time(NULL),
				     .port = (uint16_t)(ntohs(c->to.sin_port) + shard) };
	if (*signed_n) {
		pm_auth_sign(c->buf, *signed_n, &t, c->auth_key);
		return *signed_n;
	}
	return *signed_n = pm_auth_append(c->buf, n, sizeof(c->buf), &t, c->auth_key);
}

bool wire_call(struct wire *c, struct pm_request *req, uint32_t shard, struct pm_reply_view *rv)
{
	req->id = c->next_id++;
	size_t n = pm_request_encode(req, c->buf, sizeof(c->buf)), signed_n = 0;
	if (n == 0)
		return false;
	bool retried = false; /* a RETRY is answered once at once, not as an attempt */
	uint8_t sent_cookie[PM_COOKIE_FRAME_BYTES];
	for (int attempt = 0; attempt < c->attempts; attempt++) {
		if (c->auth_user && (n = wire_sign(c, shard, n, &signed_n)) == 0)
			return false;
		wire_send(c, shard, c->buf, n);
		while (wire_recv(c, c->timeout_ms, rv)) {
			if (rv->id != req->id)
				continue;
			if (rv->status == PM_WIRE_E_RETRY && !retried && c->cookie && !c->no_cookies) {
				retried = true;
				memcpy(sent_cookie, c->cookie_frame, sizeof sent_cookie);
				/* signed anew: the same seq again would be a replay */
				if (c->auth_user && (n = wire_sign(c, shard, n, &signed_n)) == 0)
					return false;
				wire_send(c, shard, c->buf, n);
				continue;
			}
			if (rv->status == PM_WIRE_E_RETRY && retried && !c->no_cookies &&
			    memcmp(sent_cookie, c->cookie_frame, sizeof sent_cookie) == 0)
				continue; /* an earlier send's RETRY (its cookie is the one
					   * sent since): the resend's answer is on its way */
			if (!c->whole || !rv->more)
				return true;
		}
		if (c->server && !proc_alive(c->server))
			return false; /* no point sending again: fail fast */
	}
	return false;
}

/* ---------------------------------------------------------------- INFO */

long long wire_info(struct wire *c, const char *section, const char *part, const char *field)
{
	struct pm_request r = { .op = PM_OP_INFO };
	struct pm_reply_view rv;
	if (section)
		r.section = (struct pm_bytes){ (const uint8_t *)section, (uint32_t)strlen(section) };
	if (!wire_call(c, &r, 0, &rv) || rv.status != PM_WIRE_OK)
		return WIRE_INFO_FAILED;
	char *text = malloc(rv.value.len + 1u);
	if (!text)
		return -1;
	memcpy(text, rv.value.ptr, rv.value.len);
	text[rv.value.len] = '\0';
	long long v = info_text_field(text, part, field);
	free(text);
	return v < 0 ? WIRE_INFO_ABSENT : v;
}

long long wire_info_reaches(struct wire *c, const char *section, const char *field,
			    long long want)
{
	uint64_t deadline = proc_now_ms() + WIRE_INFO_WAIT_MS;
	long long v = wire_info(c, section, NULL, field);
	while (v < want && proc_now_ms() < deadline) {
		proc_pause_ms(1); /* the interval of this bounded poll */
		v = wire_info(c, section, NULL, field);
	}
	return v;
}

/* ---------------------------------------------------------------- TCP */

int wire_tcp_connect(const char *src, const char *host, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in me = { .sin_family = AF_INET }, to = { .sin_family = AF_INET,
								  .sin_port = htons(port) };
	bool ok = fd >= 0 && inet_pton(AF_INET, host, &to.sin_addr) == 1;
	if (ok && src)
		ok = inet_pton(AF_INET, src, &me.sin_addr) == 1 &&
		     bind(fd, (struct sockaddr *)&me, sizeof(me)) == 0;
	if (ok)
		ok = connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0;
	if (!ok && fd >= 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

bool wire_write_all(int fd, const uint8_t *p, size_t n)
{
	return proc_send_all(fd, p, n);
}

/* ---------------------------------------------------------------- raw */

/* IPv4 header (no options) and UDP header. */
#define IPV4_HDR_BYTES 20u
#define UDP_HDR_BYTES 8u

bool wire_udp_forged(int raw, const char *src_ip, uint16_t src_port, const char *dst_ip,
		     uint16_t dst_port, const uint8_t *p, size_t len)
{
	uint8_t pkt[IPV4_HDR_BYTES + UDP_HDR_BYTES + WIRE_FORGED_PAYLOAD_MAX];
	const size_t hdr = IPV4_HDR_BYTES + UDP_HDR_BYTES;
	if (len > WIRE_FORGED_PAYLOAD_MAX)
		return false;
	memset(pkt, 0, hdr);
	pkt[0] = 0x45;        /* IPv4, 5 words of header */
	pkt[8] = 64;          /* TTL */
	pkt[9] = IPPROTO_UDP;
	if (inet_pton(AF_INET, src_ip, pkt + 12) != 1 || inet_pton(AF_INET, dst_ip, pkt + 16) != 1)
		return false;
	uint16_t sp = htons(src_port), dp = htons(dst_port), ul = htons((uint16_t)(UDP_HDR_BYTES + len));
	memcpy(pkt + IPV4_HDR_BYTES, &sp, 2);
	memcpy(pkt + IPV4_HDR_BYTES + 2, &dp, 2);
	memcpy(pkt + IPV4_HDR_BYTES + 4, &ul, 2);
	memcpy(pkt + hdr, p, len);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = dp };
	inet_pton(AF_INET, dst_ip, &to.sin_addr);
	return sendto(raw, pkt, hdr + len, 0, (struct sockaddr *)&to, sizeof(to)) ==
	       (ssize_t)(hdr + len);
}
