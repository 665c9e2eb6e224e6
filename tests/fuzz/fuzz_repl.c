/* SPDX-License-Identifier: MIT
 *
 * fuzz_repl.c — the replication stream's decoder (proto/repl.h,
 * pm_repl_decode) on arbitrary bytes, read as a receiver reads a TCP stream:
 * the bytes arrive in pieces into a buffer that grows, and after each piece
 * the receiver decodes frame after frame until MORE (keep what is there,
 * read more) or an error (the connection ends).
 *
 * The input's first byte is the delivery plan (mode): 0 hands the stream
 * over in one piece; m > 0 in pieces of 1 .. 2^(m % 13) bytes (m = 13: one
 * byte at a time), their sizes drawn from a generator seeded with m. The rest
 * is the stream.
 *
 * The receiver's buffer is one allocation of the stream's length; under ASan
 * the bytes not yet delivered are poisoned, so a decoder that reads past the
 * len it was given is caught even though the allocation goes on.
 *
 * Invariants on every input:
 *  - every decode ends with a known result; *used is 0 unless OK;
 *  - OK: used is the frame's 4 + L bytes, inside what was delivered; every
 *    field keeps its rule (HELLO shard < shards, WELCOME's mode, REFUSE's
 *    reason and text <= PM_REPL_TEXT_BYTES_MAX, RECORDS count >= 1 with
 *    count * PM_REPL_RECORD_BYTES_MIN bytes and no LSN past 2^64 - 1,
 *    SNAP_DATA non-empty, ACK durable <= received), every pointer inside the
 *    frame; and the frame re-encodes to exactly its bytes;
 *  - MORE: the frame is not whole yet, and what it still needs keeps the
 *    whole frame within PM_REPL_FRAME_BYTES_MAX (the receiver's buffer
 *    bound); once its 8 header bytes are there, they are a known type,
 *    version 1 and reserved 0 (a bad header is refused without waiting for
 *    the bytes its length promises);
 *  - the verdict does not depend on how the bytes arrived: the same frames,
 *    then the same error (or MORE) at the same offset, as when the stream is
 *    decoded whole.
 */
#include <string.h>

#include "fuzz.h"
#include "repl.h"
#include "repl_check.h"

#if defined(__SANITIZE_ADDRESS__)
#define REPL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REPL_ASAN 1
#endif
#endif
#ifdef REPL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* A delivery plan m > 0 hands over pieces of at most 1 << (m % PLAN_SHIFTS)
 * bytes: from one byte at a time to 4 KiB, a few frames at once. */
#define PLAN_SHIFTS 13u
/* Frames one input can hold, at most: its bytes over the smallest frame. */
#define FRAMES_MAX(len) ((len) / PM_REPL_FRAME_HEADER_BYTES + 1u)

static uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The rules of a frame the decoder accepted at b (used bytes), and its
 * re-encoding is the same bytes (tests/repl_check.c, the unit suite's too). */
static void check_frame(const uint8_t *b, size_t used, const struct pm_repl_frame *f)
{
	FUZZ_CHECK(repl_frame_check(b, used, f) == NULL);
}

/* One decode at b of have bytes, its invariants checked; the result. */
static enum pm_repl_result decode_one(const uint8_t *b, size_t have, size_t *used)
{
	struct pm_repl_frame f;
	*used = SIZE_MAX;
	enum pm_repl_result r = pm_repl_decode(b, have, &f, used);
	FUZZ_CHECK(r <= PM_REPL_E_FIELD);
	if (r != PM_REPL_OK) {
		FUZZ_CHECK(*used == 0);
		if (r == PM_REPL_MORE && have >= 4) {
			/* not whole, and a frame the receiver may wait for: its
			 * length within the bound, and its header (once there)
			 * one this side speaks, not waited on before it is judged */
			FUZZ_CHECK(have < 4u + (size_t)ld32(b));
			FUZZ_CHECK(4u + (size_t)ld32(b) <= PM_REPL_FRAME_BYTES_MAX);
			FUZZ_CHECK(have < PM_REPL_FRAME_HEADER_BYTES ||
				   (b[4] >= PM_REPL_HELLO && b[4] < PM_REPL_TYPE_END &&
				    b[5] == PM_REPL_VERSION && b[6] == 0 && b[7] == 0));
		}
		return r;
	}
	FUZZ_CHECK(*used >= PM_REPL_FRAME_HEADER_BYTES && *used <= have);
	FUZZ_CHECK(*used == 4u + (size_t)ld32(b) && *used <= PM_REPL_FRAME_BYTES_MAX);
	check_frame(b, *used, &f);
	return r;
}

/* The stream decoded whole: the frames' sizes into sizes[], their number;
 * the result that ended it (MORE or an error) and where, in *end, *end_off. */
static size_t decode_whole(const uint8_t *b, size_t len, size_t *sizes,
			   enum pm_repl_result *end, size_t *end_off)
{
	size_t off = 0, frames = 0;
	for (;;) {
		size_t used;
		enum pm_repl_result r = decode_one(b + off, len - off, &used);
		if (r != PM_REPL_OK) {
			*end = r;
			*end_off = off;
			return frames;
		}
		sizes[frames++] = used;
		off += used;
	}
}

/* The next piece's size under plan m: 1 .. 1 << (m % PLAN_SHIFTS). */
static size_t next_piece(uint8_t m, uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return 1u + (size_t)((*state >> 8) & ((1u << (m % PLAN_SHIFTS)) - 1u));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	size_t len = size - 1;
	uint8_t *rx = malloc(len ? len : 1);
	size_t *sizes = malloc(FRAMES_MAX(len) * sizeof(*sizes));
	FUZZ_CHECK(rx != NULL && sizes != NULL);
	memcpy(rx, data + 1, len);
	enum pm_repl_result end;
	size_t end_off;
	size_t frames = decode_whole(rx, len, sizes, &end, &end_off);
	/* the same bytes in pieces; what has not arrived yet is poisoned */
	POISON(rx, len);
	uint32_t state = mode;
	size_t have = 0, off = 0, frame = 0;
	enum pm_repl_result r = PM_REPL_MORE;
	while (r == PM_REPL_MORE && have < len) {
		size_t piece = mode ? next_piece(mode, &state) : len;
		if (piece > len - have)
			piece = len - have;
		UNPOISON(rx, have + piece);
		have += piece;
		for (;;) {
			size_t used;
			r = decode_one(rx + off, have - off, &used);
			if (r != PM_REPL_OK)
				break;
			FUZZ_CHECK(frame < frames && used == sizes[frame]);
			frame++;
			off += used;
		}
	}
	UNPOISON(rx, len);
	/* the same frames, then the same end (MORE or an error) at the same offset */
	FUZZ_CHECK(frame == frames && r == end && off == end_off);
	free(sizes);
	free(rx);
	return 0;
}
