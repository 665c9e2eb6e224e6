/* SPDX-License-Identifier: MIT
 *
 * auth.c — the AUTH trailer, cookies and the stream's challenge (auth.h;
 * docs/protocol.md §14).
 */
#include <string.h>

#include <sodium.h>

#include "auth.h"
#include "byteorder.h"
#include "wire.h"

_Static_assert(crypto_shorthash_siphashx24_BYTES == PM_AUTH_TAG_BYTES, "SipHash-128 tags");
_Static_assert(crypto_shorthash_siphashx24_KEYBYTES == PM_AUTH_MAC_KEY_BYTES &&
		       crypto_shorthash_siphashx24_KEYBYTES == PM_COOKIE_SECRET_BYTES,
	       "SipHash keys");
_Static_assert(PM_AUTH_TRAILER_BYTES == 4 + 4 + 8 + 4 + 2 + 2 + PM_AUTH_TAG_BYTES, "trailer");
_Static_assert(PM_COOKIE_BYTES == 4 + 4 + PM_AUTH_TAG_BYTES, "cookie");
_Static_assert(PM_COOKIE_FRAME_BYTES == PM_FRAME_HEADER_BYTES + PM_COOKIE_BYTES, "cookie frame");

/* Domain separation for the key derivation and the stream's proof: a tag
 * made for one purpose is never valid for another. */
static const char derive_label[] = "pomai frame mac v1";
static const uint8_t proof_label[8] = { 'P', 'M', 'A', 'U', 'T', 'H', '1', 0 };

int pm_auth_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

void pm_auth_derive(const uint8_t user_key[PM_AUTH_USER_KEY_BYTES],
		    uint8_t mac_key[PM_AUTH_MAC_KEY_BYTES])
{
	crypto_generichash(mac_key, PM_AUTH_MAC_KEY_BYTES, (const uint8_t *)derive_label,
			   sizeof derive_label - 1, user_key, PM_AUTH_USER_KEY_BYTES);
}

void pm_auth_hex(const uint8_t *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int pm_auth_unhex(const char *text, uint8_t *bytes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(text[2 * i]);
		int lo = hi < 0 ? -1 : hexval(text[2 * i + 1]);
		if (lo < 0)
			return -1;
		bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	return text[2 * n] == '\0' ? 0 : -1;
}

/* ---------------------------------------------------------------- the AUTH trailer */

static void mac(const uint8_t key[PM_AUTH_MAC_KEY_BYTES], const uint8_t *in, size_t n,
		uint8_t tag[PM_AUTH_TAG_BYTES])
{
	crypto_shorthash_siphashx24(tag, in, n, key);
}

void pm_auth_sign(uint8_t *frame, size_t len, const struct pm_auth_trailer *t,
		  const uint8_t mac_key[PM_AUTH_MAC_KEY_BYTES])
{
	uint8_t *p = frame + len - PM_AUTH_TRAILER_BYTES;
	pm_put_le32(p, t->user);
	pm_put_le32(p + 4, t->session);
	pm_put_le64(p + 8, t->seq);
	pm_put_le32(p + 16, t->time_s);
	pm_put_le16(p + 20, t->port);
	pm_put_le16(p + 22, 0);
	mac(mac_key, frame, len - PM_AUTH_TAG_BYTES, p + 24);
}

size_t pm_auth_append(uint8_t *frame, size_t len, size_t cap, const struct pm_auth_trailer *t,
		      const uint8_t mac_key[PM_AUTH_MAC_KEY_BYTES])
{
	size_t n = len + PM_AUTH_TRAILER_BYTES;
	if (len < PM_FRAME_HEADER_BYTES || n > cap || n > PM_FRAME_BYTES_MAX)
		return 0;
	frame[4] |= PM_FLAG_AUTH;
	pm_put_le32(frame + 16, (uint32_t)(n - PM_FRAME_HEADER_BYTES));
	pm_auth_sign(frame, n, t, mac_key);
	return n;
}

bool pm_auth_trailer_read(const uint8_t *frame, size_t len, struct pm_auth_trailer *t)
{
	if (len < PM_FRAME_HEADER_BYTES + PM_AUTH_TRAILER_BYTES || !(frame[4] & PM_FLAG_AUTH))
		return false;
	const uint8_t *p = frame + len - PM_AUTH_TRAILER_BYTES;
	t->user = pm_get_le32(p);
	t->session = pm_get_le32(p + 4);
	t->seq = pm_get_le64(p + 8);
	t->time_s = pm_get_le32(p + 16);
	t->port = pm_get_le16(p + 22) == 0 ? pm_get_le16(p + 20) : 0;
	memcpy(t->tag, p + 24, PM_AUTH_TAG_BYTES);
	return true;
}

bool pm_auth_verify(const uint8_t *frame, size_t len, const uint8_t mac_key[PM_AUTH_MAC_KEY_BYTES])
{
	uint8_t tag[PM_AUTH_TAG_BYTES];
	if (len < PM_FRAME_HEADER_BYTES + PM_AUTH_TRAILER_BYTES)
		return false;
	mac(mac_key, frame, len - PM_AUTH_TAG_BYTES, tag);
	return pm_auth_tag_equal(tag, frame + len - PM_AUTH_TAG_BYTES);
}

bool pm_auth_tag_equal(const uint8_t a[PM_AUTH_TAG_BYTES], const uint8_t b[PM_AUTH_TAG_BYTES])
{
	return sodium_memcmp(a, b, PM_AUTH_TAG_BYTES) == 0;
}

/* ---------------------------------------------------------------- cookies */

void pm_cookie_tag(const uint8_t secret[PM_COOKIE_SECRET_BYTES], uint32_t addr_be,
		   uint32_t window, uint8_t tag[PM_AUTH_TAG_BYTES])
{
	uint8_t in[8];
	memcpy(in, &addr_be, 4); /* network order as it is */
	pm_put_le32(in + 4, window);
	mac(secret, in, sizeof in, tag);
}

void pm_cookie_write(const struct pm_cookie *c, uint8_t out[PM_COOKIE_BYTES])
{
	pm_put_le32(out, c->window);
	pm_put_le32(out + 4, 0);
	memcpy(out + 8, c->tag, PM_AUTH_TAG_BYTES);
}

bool pm_cookie_read(const uint8_t in[PM_COOKIE_BYTES], struct pm_cookie *c)
{
	c->window = pm_get_le32(in);
	memcpy(c->tag, in + 8, PM_AUTH_TAG_BYTES);
	return pm_get_le32(in + 4) == 0;
}

void pm_cookie_frame_write(const struct pm_cookie *c, uint8_t out[PM_COOKIE_FRAME_BYTES])
{
	memset(out, 0, PM_FRAME_HEADER_BYTES);
	pm_put_le16(out, PM_FRAME_MAGIC);
	out[2] = PM_FRAME_VERSION;
	out[3] = PM_OPCODE_COOKIE;
	pm_put_le32(out + 16, PM_COOKIE_BYTES);
	pm_cookie_write(c, out + PM_FRAME_HEADER_BYTES);
}

int pm_cookie_frame_read(const uint8_t *dgram, size_t len, struct pm_cookie *c)
{
	if (len < PM_FRAME_HEADER_BYTES || pm_get_le16(dgram) != PM_FRAME_MAGIC ||
	    dgram[3] != PM_OPCODE_COOKIE)
		return 0;
	static const uint8_t zero[PM_FRAME_HEADER_BYTES];
	if (len < PM_COOKIE_FRAME_BYTES || dgram[2] != PM_FRAME_VERSION ||
	    memcmp(dgram + 4, zero, 12) != 0 || pm_get_le32(dgram + 16) != PM_COOKIE_BYTES ||
	    pm_get_le32(dgram + 20) != 0)
		return -1;
	return pm_cookie_read(dgram + PM_FRAME_HEADER_BYTES, c) ? 1 : -1;
}

/* ---------------------------------------------------------------- the stream's challenge */

void pm_auth_proof(const uint8_t mac_key[PM_AUTH_MAC_KEY_BYTES],
		   const uint8_t challenge[PM_AUTH_CHALLENGE_BYTES],
		   const uint8_t nonce[PM_AUTH_NONCE_BYTES], uint32_t user,
		   uint8_t tag[PM_AUTH_TAG_BYTES])
{
	uint8_t in[sizeof proof_label + PM_AUTH_CHALLENGE_BYTES + PM_AUTH_NONCE_BYTES + 4];
	memcpy(in, proof_label, sizeof proof_label);
	memcpy(in + sizeof proof_label, challenge, PM_AUTH_CHALLENGE_BYTES);
	memcpy(in + sizeof proof_label + PM_AUTH_CHALLENGE_BYTES, nonce, PM_AUTH_NONCE_BYTES);
	pm_put_le32(in + sizeof in - 4, user);
	mac(mac_key, in, sizeof in, tag);
}

void pm_auth_random(void *out, size_t n)
{
	randombytes_buf(out, n);
}
