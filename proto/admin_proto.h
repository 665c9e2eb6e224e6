/* SPDX-License-Identifier: MIT
 *
 * proto/admin_proto.h — the admin protocol: what pomaictl (and pomai-control) say
 * to pomaid over its Unix-domain admin socket, and what pomai-control serves
 * on its own (docs/admin.md). It lives in proto/ (it was control/admin_proto.h)
 * because pomaid and pomai-control both serve it and must agree on it.
 *
 * Every message is a u32 little-endian length, then that many bytes:
 *
 *   request  u8 version (1), u8 argc (1..PM_ADMIN_ARGS_MAX), then argc times
 *            u16 LE length + bytes: the command and its arguments
 *            ("INFO", "memory"), binary-safe
 *   reply    u8 version (1), u8 status (enum pm_admin_status), then text:
 *            "field:value" lines under "# Section" headers, or a message
 *
 * One request at a time per connection; the reply comes before the next
 * request is read. Access control is the socket file's mode (0600: its owner).
 * Both servers read a request with pm_admin_read_request() and write their
 * reply with pm_admin_send_all(), so they frame messages the same way.
 */
#ifndef POMAI_PROTO_ADMIN_PROTO_H
#define POMAI_PROTO_ADMIN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PM_ADMIN_VERSION 1u
/* Bytes of one message after its length prefix, at most. */
#define PM_ADMIN_MESSAGE_BYTES_MAX (1u << 20)
/* Arguments of a request (the command included), and bytes of one. */
#define PM_ADMIN_ARGS_MAX 16u
#define PM_ADMIN_ARG_BYTES_MAX 4096u
#define PM_ADMIN_LEN_BYTES 4u
/* A server's buffer for one request or reply: the prefix and the largest payload. */
#define PM_ADMIN_BUFFER_BYTES (PM_ADMIN_LEN_BYTES + PM_ADMIN_MESSAGE_BYTES_MAX)

/* Bounds of QUOTA SET (and of the quota_* config keys), which pomaid enforces
 * and pomai-control checks before it forwards or remembers an entry:
 * - a client's rate, requests/s or bytes/s, at most 16 G/s (0 = unlimited),
 *   so that pomaid's largest token-bucket burst, in nano-tokens, fits 64 bits
 *   (checked in dataplane/quota.h);
 * - clients with a quota of their own, at most: what one pomaid worker pins
 *   in its client table, and so the size of pomai-control's quota table,
 *   which it pushes whole to every pomaid it attaches to. */
#define PM_QUOTA_RATE_PER_S_MAX (1ull << 34)
#define PM_QUOTA_OVERRIDES_MAX 1024u

enum pm_admin_status {
	PM_ADMIN_OK = 0,
	PM_ADMIN_ERROR = 1,       /* the command failed; the text says why */
	PM_ADMIN_USAGE = 2,       /* unknown command or bad arguments */
	PM_ADMIN_UNAVAILABLE = 3, /* the daemon could not answer in time (a shard busy) */
};

struct pm_admin_req {
	uint32_t argc;
	struct {
		const uint8_t *p;
		uint32_t len;
	} arg[PM_ADMIN_ARGS_MAX];
};

/* A request (length prefix included) into out; its bytes, 0 if it breaks a bound. */
size_t pm_admin_req_encode(uint32_t argc, const char *const *argv, uint8_t *out, size_t cap);
/* A request's payload (after the prefix); 0, or -1 for a malformed one. */
int pm_admin_req_decode(const uint8_t *p, size_t len, struct pm_admin_req *r);
/* Whether argument i is the word w (case-insensitive). */
bool pm_admin_arg_is(const struct pm_admin_req *r, uint32_t i, const char *w);

/* A reply (length prefix included) into out; its bytes, 0 if it does not fit. */
size_t pm_admin_reply_encode(uint8_t status, const char *text, size_t tlen, uint8_t *out,
			     size_t cap);
/* A reply's payload; 0, or -1 for a malformed one. */
int pm_admin_reply_decode(const uint8_t *p, size_t len, uint8_t *status, const char **text,
			  size_t *tlen);

/* Server side, non-blocking: read what fd has of one request into buf
 * (PM_ADMIN_BUFFER_BYTES), *have bytes of it (the prefix included) so far.
 * 1 when the request is whole (its payload, *len bytes, at buf +
 * PM_ADMIN_LEN_BYTES; set *have to 0 before the next one), 0 when more is to
 * come, -1 when the connection must be closed: the peer closed it, a read
 * failed, or the length breaks PM_ADMIN_MESSAGE_BYTES_MAX (no reply). */
int pm_admin_read_request(int fd, uint8_t *buf, uint32_t *have, uint32_t *len);
/* Write all n bytes of a reply to a non-blocking fd, waiting at most
 * timeout_ms for each chunk; false: give up on a peer that does not read. */
bool pm_admin_send_all(int fd, const uint8_t *p, size_t n, int timeout_ms);

/* Client side, blocking: connect to the socket (fd, or -errno); send one
 * request and read its reply into buf (status, text pointing into buf) within
 * timeout_ms. 0, or -errno (-ETIMEDOUT, -EPROTO for a malformed reply). */
int pm_admin_connect(const char *path);
int pm_admin_call(int fd, uint32_t argc, const char *const *argv, uint8_t *buf, size_t cap,
		  int timeout_ms, uint8_t *status, const char **text, size_t *tlen);
/* The same for a request already encoded (req, n bytes with its prefix; it
 * may be buf): the reply's payload, without its prefix, into buf, its length
 * in *len. What pomai-control forwards, byte for byte. 0, or -errno. */
int pm_admin_call_raw(int fd, const uint8_t *req, size_t n, uint8_t *buf, size_t cap,
		      int timeout_ms, size_t *len);

#endif
