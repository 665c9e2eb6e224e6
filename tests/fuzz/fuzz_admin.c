/* SPDX-License-Identifier: MIT
 *
 * fuzz_admin.c — the admin protocol (proto/admin_proto.h): the input read as
 * a request's payload and as a reply's payload (after the u32 length prefix,
 * which pomaid's admin thread checks against PM_ADMIN_MESSAGE_BYTES_MAX
 * before it decodes).
 *
 * Invariants: decoding says yes or no; a decoded request has 1..
 * PM_ADMIN_ARGS_MAX arguments, each inside the input and at most
 * PM_ADMIN_ARG_BYTES_MAX long, and they tile the payload exactly; a request
 * whose arguments hold no NUL byte (argv strings cannot) re-encodes
 * (pm_admin_req_encode) to the length prefix plus exactly the input; a
 * decoded reply re-encodes (pm_admin_reply_encode) to the prefix plus exactly
 * the input.
 *
 * pomaid's command dispatcher (dataplane/admin.c) has no pure parsing layer:
 * each command reads its own arguments and talks to the workers through the
 * daemon's rings, so it is exercised over the socket by tests/test_admin.c,
 * not here.
 */
#include <string.h>
#include <strings.h>

#include "admin_proto.h"
#include "fuzz.h"

/* The commands pomaid knows (docs/admin.md), compared with every argument. */
static const char *const words[] = { "PING", "INFO", "SNAPSHOT", "SHARDS", "CONFIG",
				     "COLLECTION", "QUOTA", "CLIENTS", "SHUTDOWN", "" };
#define NWORDS (sizeof(words) / sizeof(words[0]))

static uint8_t out[PM_ADMIN_LEN_BYTES + PM_ADMIN_MESSAGE_BYTES_MAX];
static char argbuf[PM_ADMIN_ARGS_MAX][PM_ADMIN_ARG_BYTES_MAX + 1];

static uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void request(const uint8_t *d, size_t size)
{
	struct pm_admin_req r;
	if (pm_admin_req_decode(d, size, &r) != 0)
		return;
	FUZZ_CHECK(r.argc >= 1 && r.argc <= PM_ADMIN_ARGS_MAX);
	size_t at = 2;
	bool nul = false;
	const char *argv[PM_ADMIN_ARGS_MAX];
	for (uint32_t i = 0; i < r.argc; i++) {
		FUZZ_CHECK(r.arg[i].len <= PM_ADMIN_ARG_BYTES_MAX);
		FUZZ_CHECK(r.arg[i].p == d + at + 2); /* after its u16 length */
		FUZZ_CHECK(fuzz_inside(r.arg[i].p, r.arg[i].len, d, size));
		at += 2 + r.arg[i].len;
		memcpy(argbuf[i], r.arg[i].p, r.arg[i].len);
		argbuf[i][r.arg[i].len] = '\0';
		nul |= strlen(argbuf[i]) != r.arg[i].len;
		argv[i] = argbuf[i];
		for (size_t w = 0; w < NWORDS; w++)
			FUZZ_CHECK(pm_admin_arg_is(&r, i, words[w]) ==
				   (r.arg[i].len == strlen(words[w]) &&
				    !strncasecmp(argbuf[i], words[w], r.arg[i].len)));
	}
	FUZZ_CHECK(at == size);
	FUZZ_CHECK(!pm_admin_arg_is(&r, r.argc, "PING")); /* past the last argument */
	if (nul)
		return;
	size_t n = pm_admin_req_encode(r.argc, argv, out, sizeof(out));
	FUZZ_CHECK(n == PM_ADMIN_LEN_BYTES + size && ld32(out) == size);
	FUZZ_CHECK(!memcmp(out + PM_ADMIN_LEN_BYTES, d, size));
}

static void reply(const uint8_t *d, size_t size)
{
	uint8_t status;
	const char *text;
	size_t tlen;
	if (pm_admin_reply_decode(d, size, &status, &text, &tlen) != 0)
		return;
	FUZZ_CHECK(status <= PM_ADMIN_UNAVAILABLE);
	FUZZ_CHECK(tlen == size - 2 && (const uint8_t *)text == d + 2);
	size_t n = pm_admin_reply_encode(status, text, tlen, out, sizeof(out));
	FUZZ_CHECK(n == PM_ADMIN_LEN_BYTES + size && ld32(out) == size);
	FUZZ_CHECK(!memcmp(out + PM_ADMIN_LEN_BYTES, d, size));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > PM_ADMIN_MESSAGE_BYTES_MAX)
		return 0; /* the admin thread refuses a longer message before decoding */
	request(data, size);
	reply(data, size);
	return 0;
}
