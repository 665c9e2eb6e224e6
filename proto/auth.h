/* SPDX-License-Identifier: MIT
 *
 * proto/auth.h — who may speak (issue 19; docs/protocol.md §14 is the
 * contract, docs/security.md the threat model): the AUTH trailer a frame of
 * an authenticated client ends with, the COOKIE frame a datagram may start
 * with, the stream's challenge-response, and the keyed MACs all three use.
 *
 * Both sides compute the same bytes from here: libpomai signs and echoes,
 * pomaid verifies and mints. The MACs come from libsodium (Debian's
 * libsodium23): SipHash-2-4 with a 128-bit tag (crypto_shorthash_siphashx24)
 * for what runs per frame — a keyed PRF made for short inputs, tens of
 * nanoseconds for a GET, where a BLAKE2b or HMAC call costs several hundred
 * and would take more than the 5 % the hot path may lose — and keyed BLAKE2b
 * (crypto_generichash) for what runs rarely: deriving a user's MAC key from
 * the key printed to the operator, and a cookie window's secret.
 */
#ifndef POMAI_PROTO_AUTH_H
#define POMAI_PROTO_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- sizes */

/* A tag: 128 bits, so that forging one is a 2^-128 guess. */
#define PM_AUTH_TAG_BYTES 16u
/* The key a user holds (printed once by `pomaictl user add`, as hex). */
#define PM_AUTH_USER_KEY_BYTES 32u
/* The MAC key derived from it (pm_auth_derive): what pomaid's users file
 * stores and what signs frames; the printed key is never stored. */
#define PM_AUTH_MAC_KEY_BYTES 16u
/* The trailer: u32 user, u32 session, u64 seq, u32 time_s, u16 port,
 * u16 0, then the tag over every byte of the frame before it. */
#define PM_AUTH_TRAILER_BYTES 40u
/* User ids: 1..PM_AUTH_USER_ID_MAX (0 names no user). */
#define PM_AUTH_USER_ID_MAX 65535u

/* A cookie (the body of a COOKIE frame and of a RETRY reply): u32 window,
 * u32 0, then the tag over the source address and the window. */
#define PM_COOKIE_BYTES 24u
#define PM_COOKIE_FRAME_BYTES (24u + PM_COOKIE_BYTES)
/* The secret a cookie window's tags are made with. */
#define PM_COOKIE_SECRET_BYTES 16u

/* The stream's challenge (the body of an AUTH HELLO reply after its
 * sub-op) and a PROVE's body after its sub-op: u32 user, a client nonce
 * and the tag over both nonces and the user. */
#define PM_AUTH_CHALLENGE_BYTES 16u
#define PM_AUTH_NONCE_BYTES 16u
#define PM_AUTH_PROVE_BYTES (4u + PM_AUTH_NONCE_BYTES + PM_AUTH_TAG_BYTES)

/* The u8 reason an E_AUTH reply's body holds. */
enum pm_auth_reason {
	PM_AUTH_R_REQUIRED = 1, /* auth = on and the frame (or stream) is not authenticated */
	PM_AUTH_R_BAD = 2,      /* unknown user, a wrong tag, another port's frame, or a
				 * trailer with a nonzero reserved field: one reason, so
				 * that a guess learns nothing about which users exist */
	PM_AUTH_R_REPLAY = 3,   /* this (user, session, seq) was seen, or is older than
				 * the replay window keeps */
	PM_AUTH_R_CLOCK = 4,    /* time_s is further from the server's clock than the
				 * skew allowed */
	PM_AUTH_R_BUSY = 5,     /* the replay table has no room for a new session */
	PM_AUTH_R_COUNT
};

/* ---------------------------------------------------------------- set-up */

/* libsodium's sodium_init(); every process calls it once before the
 * functions below (idempotent, thread-safe). 0, or -1 when it failed. */
int pm_auth_init(void);

/* The MAC key of a user key. */
void pm_auth_derive(const uint8_t user_key[PM_AUTH_USER_KEY_BYTES],
		    uint8_t mac_key[PM_AUTH_MAC_KEY_BYTES]);

/* Hex text (2 x n lowercase digits and a NUL) of n bytes, and its inverse:
 * 0, or -1 when text is not exactly 2 x n hex digits. */
void pm_auth_hex(const uint8_t *bytes, size_t n, char *out);
int pm_auth_unhex(const char *text, uint8_t *bytes, size_t n);

/* ---------------------------------------------------------------- the AUTH trailer */

struct pm_auth_trailer {
	uint32_t user;    /* 1..PM_AUTH_USER_ID_MAX */
	uint32_t session; /* the client's, random at its start */
	uint64_t seq;     /* per session, from 1, never reused */
	uint32_t time_s;  /* the client's clock, Unix seconds */
	uint16_t port;    /* the server port the frame was sent to */
	uint8_t tag[PM_AUTH_TAG_BYTES];
};

/* Sign a frame in place: frame holds len bytes, a header with PM_FLAG_AUTH
 * and a body_len that counts the trailer, whose last PM_AUTH_TRAILER_BYTES
 * are written here (t's fields, then the tag over everything before it). */
void pm_auth_sign(uint8_t *frame, size_t len, const struct pm_auth_trailer *t,
		  const uint8_t mac_key[PM_AUTH_MAC_KEY_BYTES]);

/* Append a trailer to an encoded request of len bytes (its header's
 * body_len grows by PM_AUTH_TRAILER_BYTES and PM_FLAG_AUTH is set), signed
 * with mac_key: the frame's new length, or 0 when cap has no room or the
 * frame would pass PM_FRAME_BYTES_MAX. To sign a frame again (a resend
 * takes a new seq), pm_auth_sign() on the whole frame. */
size_t pm_auth_append(uint8_t *frame, size_t len, size_t cap, const struct pm_auth_trailer *t,
		      const uint8_t mac_key[PM_AUTH_MAC_KEY_BYTES]);

/* The trailer of a frame of len bytes (24 + body_len) with PM_FLAG_AUTH:
 * false when the flag is clear or the body is shorter than a trailer.
 * Reads only; the tag is checked by pm_auth_verify. A reserved field that is
 * not 0 reads as port 0, which no server listens on. */
bool pm_auth_trailer_read(const uint8_t *frame, size_t len, struct pm_auth_trailer *t);

/* Whether the tag at the end of a signed frame is mac_key's (constant time). */
bool pm_auth_verify(const uint8_t *frame, size_t len, const uint8_t mac_key[PM_AUTH_MAC_KEY_BYTES]);

/* ---------------------------------------------------------------- cookies */

struct pm_cookie {
	uint32_t window; /* the server's cookie window it was made in */
	uint8_t tag[PM_AUTH_TAG_BYTES];
};

/* The tag of a cookie for a source address (network order) and a window,
 * with that window's secret. */
void pm_cookie_tag(const uint8_t secret[PM_COOKIE_SECRET_BYTES], uint32_t addr_be,
		   uint32_t window, uint8_t tag[PM_AUTH_TAG_BYTES]);

/* A cookie's PM_COOKIE_BYTES and back (false: the reserved field is not 0). */
void pm_cookie_write(const struct pm_cookie *c, uint8_t out[PM_COOKIE_BYTES]);
bool pm_cookie_read(const uint8_t in[PM_COOKIE_BYTES], struct pm_cookie *c);

/* A COOKIE frame (PM_COOKIE_FRAME_BYTES) carrying c, for the front of a
 * datagram. */
void pm_cookie_frame_write(const struct pm_cookie *c, uint8_t out[PM_COOKIE_FRAME_BYTES]);

/* Whether a datagram of len bytes starts with a COOKIE frame: 1 and *c when
 * it does (the frame is PM_COOKIE_FRAME_BYTES long, the frames after it
 * follow), 0 when its first frame is another, -1 when it is a COOKIE frame
 * that is malformed (flags, status, id, first or reserved not 0, a body
 * not PM_COOKIE_BYTES long, or the cookie's reserved field set): the
 * datagram is then not a valid one (docs/protocol.md §14.2). */
int pm_cookie_frame_read(const uint8_t *dgram, size_t len, struct pm_cookie *c);

/* ---------------------------------------------------------------- the stream's challenge */

/* The tag a PROVE carries: over the server's challenge, the client's nonce
 * and the user id, with the user's MAC key. */
void pm_auth_proof(const uint8_t mac_key[PM_AUTH_MAC_KEY_BYTES],
		   const uint8_t challenge[PM_AUTH_CHALLENGE_BYTES],
		   const uint8_t nonce[PM_AUTH_NONCE_BYTES], uint32_t user,
		   uint8_t tag[PM_AUTH_TAG_BYTES]);
/* Constant-time comparison of two tags. */
bool pm_auth_tag_equal(const uint8_t a[PM_AUTH_TAG_BYTES], const uint8_t b[PM_AUTH_TAG_BYTES]);

/* n random bytes from the kernel (libsodium's randombytes_buf). */
void pm_auth_random(void *out, size_t n);

#endif
