/* SPDX-License-Identifier: MIT
 *
 * auth.c — libpomai's side of authentication (issue 19; docs/protocol.md
 * §14.3): with pm_client_config.user set, every frame leaves with an AUTH
 * trailer signed with the MAC key derived from the user's key. It is signed
 * where it is queued (pmc_enqueue), so that a resend is signed anew with a
 * new seq: the server refuses a seq it has seen. The session is random per
 * client; the seq counts from 1 and is never reused. Over TCP the stream
 * proves the user once instead (AUTH HELLO / PROVE when it connects): its
 * frames then travel without trailers, 40 bytes shorter, and a captured
 * frame cannot be replayed on another connection.
 *
 * A cluster client signs each frame it sends the same way, a fan-out's leg
 * too: a leg is its own header, its parent's body and its own trailer
 * (client_impl.h), signed for its node and shard with its own seq, so a
 * replayed leg is refused like any replayed frame. Over TCP each link's
 * stream proves the user once when it is opened (pmc_link_open).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "byteorder.h"
#include "client_impl.h"

void pmc_auth_init(struct pm_client *c)
{
	if (c->cfg.user == 0)
		return;
	pm_auth_init(); /* libsodium; idempotent */
	pm_auth_derive(c->cfg.key, c->auth.mac_key);
	pm_auth_random(&c->auth.session, sizeof c->auth.session);
	c->auth.seq = 0;
	memset(c->cfg.key, 0, sizeof c->cfg.key); /* the MAC key is all it needs */
}

uint32_t pmc_auth_bytes(const struct pm_client *c)
{
	return c->cfg.user && !c->tcp ? PM_AUTH_TRAILER_BYTES : 0u;
}

/* The server port a queue's frames are sent to (host order). */
static uint16_t dest_port(const struct pm_client *c, uint32_t dest)
{
	const struct pmc_link *k = &c->links[PMC_DEST_LINK(dest)];
	if (c->tcp)
		return k->tcp_port;
	return ntohs(k->addrs[PMC_DEST_QUEUE(dest)].sin_port);
}

/* A leg's frame lies in three places: its header (g->buf), its parent's
 * body, and once signed its trailer (g->buf after the header). The tag
 * covers them as one frame, and libsodium's SipHash takes one contiguous
 * input, so the parent's buffer lends itself as that frame: its header is
 * set aside for the leg's, the trailer's fields are written past its body
 * (submit chose its slot with room for a trailer), the tag is computed, the
 * leg keeps the trailer and the parent gets its header back. The parent is
 * never sent itself (it waits for its legs): no send sees the bytes lent. */
static void leg_sign(struct pm_client *c, struct pmc_slot *g, const struct pm_auth_trailer *t)
{
	struct pmc_slot *parent = &c->slots[c->cl.fans[g->fan].parent];
	uint8_t *f = parent->buf, saved[PM_FRAME_HEADER_BYTES];
	PMC_ASSERT(g->leg && g->body == f + PM_FRAME_HEADER_BYTES);
	if (!g->auth_signed) { /* the header says the trailer; then the same frame, a new seq */
		g->buf[4] |= PM_FLAG_AUTH;
		pm_put_le32(g->buf + 16, pm_get_le32(g->buf + 16) + PM_AUTH_TRAILER_BYTES);
		g->len += PM_AUTH_TRAILER_BYTES;
		g->auth_signed = true;
	}
	PMC_ASSERT(g->len == parent->len + PM_AUTH_TRAILER_BYTES && g->len <= parent->cap);
	memcpy(saved, f, sizeof saved);
	memcpy(f, g->buf, PM_FRAME_HEADER_BYTES);
	pm_auth_sign(f, g->len, t, c->auth.mac_key);
	memcpy(g->buf + PM_FRAME_HEADER_BYTES, f + parent->len, PM_AUTH_TRAILER_BYTES);
	memcpy(f, saved, sizeof saved);
}

void pmc_auth_sign(struct pm_client *c, struct pmc_slot *s)
{
	if (c->cfg.user == 0 || c->tcp)
		return; /* (a stream proved its user when it connected) */
	struct pm_auth_trailer t = { .user = c->cfg.user, .session = c->auth.session,
				     .seq = ++c->auth.seq, .time_s = (uint32_t)time(NULL),
				     .port = dest_port(c, s->dest) };
	if (s->body != NULL) {
		leg_sign(c, s, &t);
		return;
	}
	if (s->auth_signed) { /* a resend: the same frame, a new seq */
		pm_auth_sign(s->buf, s->len, &t, c->auth.mac_key);
		return;
	}
	size_t n = pm_auth_append(s->buf, s->len, s->cap, &t, c->auth.mac_key);
	PMC_ASSERT(n != 0); /* the slot was chosen with room for the trailer */
	s->len = (uint32_t)n;
	s->auth_signed = true;
}

/* ---------------------------------------------------------------- a stream proves its user */

/* All n bytes to the non-blocking stream fd within timeout_ms each wait. */
static bool stream_write(int fd, const uint8_t *p, size_t n, int timeout_ms)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w, n -= (size_t)w;
			continue;
		}
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		if ((w < 0 && errno != EAGAIN && errno != EINTR) || poll(&pf, 1, timeout_ms) != 1)
			return false;
	}
	return true;
}

/* One whole reply frame from the stream into buf (cap bytes), decoded. */
static bool stream_reply(int fd, uint8_t *buf, size_t cap, int timeout_ms,
			 struct pm_reply_view *rv)
{
	size_t have = 0, used;
	while (have < cap) {
		if (have >= PM_FRAME_HEADER_BYTES &&
		    pm_reply_decode(buf, have, rv, &used) == PM_WIRE_OK)
			return true;
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, timeout_ms) != 1)
			return false;
		ssize_t r = recv(fd, buf + have, cap - have, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return false;
		have += r > 0 ? (size_t)r : 0;
	}
	return false;
}

/* The reply frames of HELLO and PROVE: header, sub-op and a challenge, or an
 * error's body (an AUTH reason byte); 16 bytes more than the largest, so that
 * a reply with a field this client does not know yet still fits. */
#define PMC_AUTH_REPLY_BYTES (PM_FRAME_HEADER_BYTES + 1u + PM_AUTH_CHALLENGE_BYTES + 16u)

enum pm_client_status pmc_auth_prove(struct pm_client *c, int fd)
{
	uint8_t out[PM_FRAME_HEADER_BYTES + 1u + PM_AUTH_PROVE_BYTES], in[PMC_AUTH_REPLY_BYTES];
	uint8_t proof[PM_AUTH_NONCE_BYTES + PM_AUTH_TAG_BYTES];
	uint8_t challenge[PM_AUTH_CHALLENGE_BYTES];
	int ms = (int)c->cfg.timeout_ms;
	struct pm_reply_view rv;
	struct pm_wire_request hello = { .op = PM_WIRE_OP_AUTH_HELLO, .id = 1 };
	size_t n = pm_wire_request_encode(&hello, out, sizeof out);
	if (n == 0 || !stream_write(fd, out, n, ms) || !stream_reply(fd, in, sizeof in, ms, &rv))
		return PM_CLIENT_E_CONNECTION;
	if (rv.status != PM_WIRE_OK || rv.op != PM_WIRE_OP_AUTH_HELLO || !rv.challenge)
		return rv.status == PM_WIRE_OK ? PM_CLIENT_E_PROTOCOL : pmc_from_wire(rv.status);
	memcpy(challenge, rv.challenge, sizeof challenge);
	pm_auth_random(proof, PM_AUTH_NONCE_BYTES);
	pm_auth_proof(c->auth.mac_key, challenge, proof, c->cfg.user, proof + PM_AUTH_NONCE_BYTES);
	struct pm_wire_request prove = { .op = PM_WIRE_OP_AUTH_PROVE, .id = 2,
					 .auth_user = c->cfg.user,
					 .auth_proof = { proof, sizeof proof } };
	n = pm_wire_request_encode(&prove, out, sizeof out);
	if (n == 0 || !stream_write(fd, out, n, ms) || !stream_reply(fd, in, sizeof in, ms, &rv))
		return PM_CLIENT_E_CONNECTION;
	return pmc_from_wire(rv.status);
}
