/* SPDX-License-Identifier: MIT
 *
 * auth.c — libpomai's side of authentication (issue 19; docs/protocol.md
 * §14.3): with pm_client_config.user set, every frame leaves with an AUTH
 * trailer signed with the MAC key derived from the user's key. It is signed
 * where it is queued (pmc_enqueue), so that a resend is signed anew with a
 * new seq: the server refuses a seq it has seen. The session is random per
 * client; the seq counts from 1 and is never reused.
 *
 * Not for cluster legs (a leg's body is its parent's; config_problem()
 * refuses user with cluster mode).
 */
#include <arpa/inet.h>
#include <string.h>
#include <time.h>

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
	return c->cfg.user ? PM_AUTH_TRAILER_BYTES : 0u;
}

/* The server port a queue's frames are sent to (host order). */
static uint16_t dest_port(const struct pm_client *c, uint32_t dest)
{
	const struct pmc_link *k = &c->links[PMC_DEST_LINK(dest)];
	if (c->tcp)
		return k->tcp_port;
	return ntohs(k->addrs[PMC_DEST_QUEUE(dest)].sin_port);
}

void pmc_auth_sign(struct pm_client *c, struct pmc_slot *s)
{
	if (c->cfg.user == 0 || s->body != NULL)
		return;
	struct pm_auth_trailer t = { .user = c->cfg.user, .session = c->auth.session,
				     .seq = ++c->auth.seq, .time_s = (uint32_t)time(NULL),
				     .port = dest_port(c, s->dest) };
	if (s->auth_signed) { /* a resend: the same frame, a new seq */
		pm_auth_sign(s->buf, s->len, &t, c->auth.mac_key);
		return;
	}
	size_t n = pm_auth_append(s->buf, s->len, s->cap, &t, c->auth.mac_key);
	PMC_ASSERT(n != 0); /* the slot was chosen with room for the trailer */
	s->len = (uint32_t)n;
	s->auth_signed = true;
}
