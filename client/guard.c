/* SPDX-License-Identifier: MIT
 *
 * guard.c — libpomai's side of anti-amplification (docs/protocol.md §14.2):
 * a cookie per server (link), put in front of every datagram sent there once
 * known, and RETRY answered at once.
 *
 * pomaid answers RETRY, carrying a cookie, when a reply to an address it has
 * not validated would be more than three times the request, when such an
 * address writes, or when the unvalidated sources are over their shared
 * quota. The client stores the cookie on the request's link and resends the
 * request at once: that resend is not an attempt (the request keeps its
 * attempts and its deadline), so a caller never sees the round trip. It is
 * bounded: a second RETRY for the same request in a row (the resend was
 * answered RETRY again: the cookie was refused) ends the request with
 * PM_CLIENT_E_RETRY. A timeout's resend starts a new row. A RETRY that
 * carries the very cookie the client holds answers a datagram sent without
 * it (the server mints the cookie it would have accepted, so a refused
 * cookie always comes back as another one): it is a duplicate's, from a
 * resend that crossed the first RETRY, and is ignored. TCP never gets
 * RETRY (its handshake proves the address): one there is the server's
 * error, passed to the caller.
 */
#include <string.h>

#include "client_impl.h"

void pmc_link_cookie_forget(struct pmc_link *k)
{
	k->cookie = false;
}

uint32_t pmc_link_cookie_iov(const struct pm_client *c, struct pmc_link *k, struct iovec *iov)
{
	if (c->tcp || !k->cookie)
		return 0;
	iov->iov_base = k->cookie_frame;
	iov->iov_len = PM_COOKIE_FRAME_BYTES;
	return 1;
}

bool pmc_on_retry(struct pm_client *c, uint32_t l, struct pmc_slot *s,
		  const struct pm_reply_view *rv)
{
	struct pm_cookie k;
	uint8_t frame[PM_COOKIE_FRAME_BYTES];
	if (c->tcp || rv->cookie == NULL || !pm_cookie_read(rv->cookie, &k))
		return false;
	struct pmc_link *link = &c->links[l];
	pm_cookie_frame_write(&k, frame);
	bool same = link->cookie && memcmp(frame, link->cookie_frame, sizeof frame) == 0;
	if (same && s->cookie_resent)
		return true; /* the answer to a send from before the cookie (a timer's resend
			      * crossed it): the server would have taken the cookie it names,
			      * so the resend that carries it is not refused; it is on its way */
	memcpy(link->cookie_frame, frame, sizeof frame);
	link->cookie = true;
	c->stats.cookies++;
	if (s->parked)
		return true; /* the answer to an attempt already over (cluster.c parked the
			      * request, out of every queue): its next attempt, routed
			      * again, carries the cookie; queued now, it would be queued
			      * twice then */
	if (s->cookie_resent)
		return false; /* refused with the cookie it sent: the caller's E_RETRY */
	s->cookie_resent = true;
	pmc_reset_items(s);
	s->got = 0;
	s->gap_resent = false;
	if (!s->queued)
		pmc_enqueue(c, s);
	return true;
}
