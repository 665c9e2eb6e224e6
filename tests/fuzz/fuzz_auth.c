/* SPDX-License-Identifier: MIT
 *
 * fuzz_auth.c — who may speak (issue 19): the AUTH trailer, the users file
 * and the replay table (proto/auth.h, dataplane/users.h). The first byte
 * picks what the rest is:
 *  0: a request frame. pm_auth_trailer_read says yes exactly when the AUTH
 *     flag is set and the frame has room for a trailer; pm_request_decode
 *     stays inside the input; the frame signed with a fixed key (when there
 *     is room) verifies with that key, not with another, and not once any
 *     byte of it changes.
 *  1: a users file. Parsing says yes or no; a table it gives is sorted by
 *     id, unique in id and name, and formats to a text that parses to the
 *     same table.
 *  2: (session, seq, time) triples fed to one worker's replay table: a seq
 *     accepted once is never accepted again for its session while the
 *     session is remembered (a shadow set of what was accepted, per session,
 *     within the window), a seq above the session's highest is always
 *     accepted, and the table never holds more than PM_AUTH_SESSIONS_MAX.
 */
#include <string.h>

#include "auth.h"
#include "bridge.h"
#include "fuzz.h"
#include "users.h"
#include "wire.h"

static const uint8_t key_a[PM_AUTH_MAC_KEY_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8,
						      9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t key_b[PM_AUTH_MAC_KEY_BYTES] = { 16 };
static uint8_t frame[PM_FRAME_BYTES_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return pm_auth_init() == 0 ? 0 : 1;
}

static void fuzz_frame(const uint8_t *d, size_t n)
{
	struct pm_auth_trailer t;
	struct pm_request req;
	size_t used;
	bool has = pm_auth_trailer_read(d, n, &t);
	FUZZ_CHECK(has == (n >= PM_FRAME_HEADER_BYTES + PM_AUTH_TRAILER_BYTES &&
			   (d[4] & PM_FLAG_AUTH) != 0));
	(void)pm_request_decode(d, n, &req, &used);
	FUZZ_CHECK(used <= n);
	if (req.key.len)
		FUZZ_CHECK(fuzz_inside(req.key.ptr, req.key.len, d, n));
	(void)pm_auth_verify(d, n, key_a); /* any bytes: no crash */
	if (!has || n > sizeof(frame))
		return;
	memcpy(frame, d, n);
	pm_auth_sign(frame, n, &t, key_a);
	FUZZ_CHECK(pm_auth_verify(frame, n, key_a));
	FUZZ_CHECK(!pm_auth_verify(frame, n, key_b));
	size_t at = (size_t)d[n - 1] % (n - PM_AUTH_TAG_BYTES); /* a byte the tag covers */
	frame[at] ^= 0x01;
	FUZZ_CHECK(!pm_auth_verify(frame, n, key_a));
}

static void fuzz_users(const uint8_t *d, size_t n)
{
	static char text[PM_USERS_FILE_BYTES_MAX];
	char err[256];
	struct pm_users *t = pm_users_parse((const char *)d, n, err, sizeof(err));
	if (!t)
		return;
	for (uint32_t i = 1; i < t->n; i++)
		FUZZ_CHECK(t->u[i - 1].id < t->u[i].id);
	size_t len = pm_users_format(t, text, sizeof(text));
	FUZZ_CHECK(len > 0);
	struct pm_users *back = pm_users_parse(text, len, err, sizeof(err));
	FUZZ_CHECK(back && back->n == t->n);
	for (uint32_t i = 0; i < t->n; i++) {
		const struct pm_user *a = &t->u[i], *b = &back->u[i];
		FUZZ_CHECK(a->id == b->id && a->rights == b->rights && !strcmp(a->name, b->name) &&
			   !memcmp(a->mac_key, b->mac_key, sizeof(a->mac_key)) &&
			   a->nkey == b->nkey && a->ncoll == b->ncoll);
	}
	free(back);
	free(t);
}

/* Sessions the shadow model follows (the input picks among them). */
#define SHADOW_SESSIONS 4u
/* Seqs the input can name: small, so that they collide and repeat. */
#define SHADOW_SEQS 512u

static void fuzz_replay(const uint8_t *d, size_t n)
{
	static struct pm_auth a;
	static uint8_t seen[SHADOW_SESSIONS][SHADOW_SEQS + 1]; /* seqs 1..SHADOW_SEQS */
	static uint64_t top[SHADOW_SESSIONS];
	const uint32_t skew = 30;
	uint64_t now = 1000;
	pm_auth_state_init(&a, NULL, 42);
	memset(seen, 0, sizeof(seen));
	memset(top, 0, sizeof(top));
	for (size_t i = 0; i + 3 <= n; i += 3) {
		uint32_t s = d[i] % SHADOW_SESSIONS;
		uint64_t seq = 1u + ((uint64_t)d[i + 1] << 1 | (d[i + 2] >> 7)) % SHADOW_SEQS;
		now += d[i + 2] & 0x3; /* time moves forward, slowly: nothing is forgotten */
		uint8_t r = pm_auth_replay(&a, 1, s, seq, now, skew);
		FUZZ_CHECK(r == 0 || r == PM_AUTH_R_REPLAY);
		if (r == 0)
			FUZZ_CHECK(!seen[s][seq]);
		if (seq > top[s])
			FUZZ_CHECK(r == 0);
		if (r == 0) {
			seen[s][seq] = 1;
			top[s] = seq > top[s] ? seq : top[s];
		}
		FUZZ_CHECK(a.live <= PM_AUTH_SESSIONS_MAX);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] % 3 == 0)
		fuzz_frame(data + 1, size - 1);
	else if (data[0] % 3 == 1)
		fuzz_users(data + 1, size - 1);
	else
		fuzz_replay(data + 1, size - 1);
	return 0;
}
