/* SPDX-License-Identifier: MIT
 *
 * fuzz_cookie.c — the COOKIE frame a datagram may start with (proto/auth.h,
 * docs/protocol.md §14.2) and pomaid's check of it (dataplane/guard.h).
 *
 * Input: a datagram. pm_cookie_frame_read says whether it starts with a
 * COOKIE frame (1), another frame (0) or a malformed COOKIE frame (-1); a
 * cookie read is verified by a guard with a fixed master secret, for the
 * input's first four bytes as the source address.
 *
 * Invariants: 1 only for a datagram of at least PM_COOKIE_FRAME_BYTES whose
 * first PM_COOKIE_FRAME_BYTES are exactly what pm_cookie_frame_write makes of
 * the cookie read (nothing else in the frame is accepted); 0 only when the
 * first frame is not a COOKIE frame by its magic and opcode; a cookie the
 * guard accepts names a window it may (the current one, or one either side)
 * and is the very cookie the guard mints for that address in that window;
 * the one it mints now is accepted, and for another address refused.
 */
#include <string.h>

#include "auth.h"
#include "byteorder.h"
#include "fuzz.h"
#include "guard.h"
#include "wire.h"

#define NS_PER_S 1000000000ull


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pm_cookie c, mine;
	uint8_t frame[PM_COOKIE_FRAME_BYTES];
	int r = pm_cookie_frame_read(data, size, &c);
	FUZZ_CHECK(r >= -1 && r <= 1);
	bool cookie_op = size >= PM_FRAME_HEADER_BYTES && pm_get_le16(data) == PM_FRAME_MAGIC &&
			 data[3] == PM_OPCODE_COOKIE;
	FUZZ_CHECK((r == 0) == !cookie_op);
	if (r != 1)
		return 0;
	FUZZ_CHECK(size >= PM_COOKIE_FRAME_BYTES);
	pm_cookie_frame_write(&c, frame);
	FUZZ_CHECK(memcmp(frame, data, PM_COOKIE_FRAME_BYTES) == 0);
	/* a guard at a window near the cookie's, the address from the input */
	uint32_t addr;
	memcpy(&addr, data + PM_FRAME_HEADER_BYTES + 8, 4); /* the tag's first bytes */
	uint32_t now_window = c.window < 3 ? 3 : c.window > UINT32_MAX / 2 ? 1000 : c.window;
	/* a daemon that started two windows before now: the guards below start
	 * at most one epoch past its root's */
	struct pm_guard_root root = { .secret = { 'f', 'u', 'z', 'z' },
				      .epoch = (now_window - 3) / PM_COOKIE_EPOCH_WINDOWS };
	struct pm_guard g = { 0 };
	pm_guard_init(&g, &root, 1, (uint64_t)(now_window - 1) * NS_PER_S + NS_PER_S / 2);
	FUZZ_CHECK(g.window == now_window);
	if (pm_guard_verify(&g, addr, &c)) {
		FUZZ_CHECK(c.window + 1 >= g.window && c.window <= g.window + 1);
		struct pm_guard h = { 0 };
		pm_guard_init(&h, &root, 1, (uint64_t)(c.window - 1) * NS_PER_S + NS_PER_S / 2);
		pm_guard_mint(&h, addr, &mine);
		FUZZ_CHECK(memcmp(&mine, &c, sizeof c) == 0);
	}
	pm_guard_mint(&g, addr, &mine);
	FUZZ_CHECK(pm_guard_verify(&g, addr, &mine));
	FUZZ_CHECK(!pm_guard_verify(&g, addr ^ 1u, &mine));
	return 0;
}
