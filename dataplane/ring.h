/* SPDX-License-Identifier: MIT
 *
 * ring.h — a lock-free single-producer / single-consumer ring of variable-length
 * messages, the only way one worker reaches another.
 *
 * Every ordered pair of workers has its own ring, so each ring has exactly one
 * writer and one reader and needs no locks: the producer owns `head`, the
 * consumer owns `tail`, each on its own cache line, published with
 * release/acquire atomics. A message is a 16-byte-aligned record [u32 len,
 * u32 type, payload]; a record never wraps — when it does not fit before the end
 * of the buffer the producer writes a PAD record and starts again at offset 0.
 * The ring's size is fixed at start-up (PM_RING_BYTES): a producer that finds it
 * full gets false and must drop (and count) what it wanted to send, or keep it
 * and try again on a later turn (pm_ring_fits asks first) — the dataplane
 * never waits for another core.
 */
#ifndef POMAI_DATAPLANE_RING_H
#define POMAI_DATAPLANE_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dp_limits.h" /* PM_RING_BYTES */

_Static_assert((PM_RING_BYTES & (PM_RING_BYTES - 1)) == 0, "ring size is a power of two");

#define PM_RING_ALIGN 16u
#define PM_RING_HEADER_BYTES 8u
#define PM_RING_PAD 0u /* record type that only skips to the start */

/* Largest payload one record may carry: half the ring, so a record always fits
 * once the consumer has caught up. */
#define PM_RING_PAYLOAD_MAX (PM_RING_BYTES / 2 - PM_RING_HEADER_BYTES)

struct pm_ring {
	alignas(64) _Atomic uint64_t head; /* bytes ever written (producer) */
	uint64_t next_head;                /* producer only: head after the reserved record */
	alignas(64) _Atomic uint64_t tail; /* bytes ever consumed (consumer) */
	alignas(64) uint8_t *buf;          /* PM_RING_BYTES */
};

static inline uint32_t pm_ring_record_bytes(uint32_t payload)
{
	return (PM_RING_HEADER_BYTES + payload + PM_RING_ALIGN - 1) & ~(PM_RING_ALIGN - 1);
}

/* Would pm_ring_reserve find room for a payload of `len` bytes now (producer
 * side)? Room only grows until the producer writes again. */
static inline bool pm_ring_fits(struct pm_ring *r, uint32_t len)
{
	if (len > PM_RING_PAYLOAD_MAX)
		return false;
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	uint32_t need = pm_ring_record_bytes(len);
	uint32_t at = (uint32_t)(head & (PM_RING_BYTES - 1));
	uint32_t pad = at + need > PM_RING_BYTES ? PM_RING_BYTES - at : 0;
	return head + pad + need - tail <= PM_RING_BYTES;
}

/* Reserve room for a payload of `len` bytes of `type`; returns where to write
 * it, or NULL when the ring is full (nothing is published). Finish with
 * pm_ring_commit. */
static inline uint8_t *pm_ring_reserve(struct pm_ring *r, uint32_t type, uint32_t len)
{
	if (len > PM_RING_PAYLOAD_MAX || type == PM_RING_PAD)
		return NULL;
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	uint32_t need = pm_ring_record_bytes(len);
	uint32_t at = (uint32_t)(head & (PM_RING_BYTES - 1));
	uint32_t pad = at + need > PM_RING_BYTES ? PM_RING_BYTES - at : 0;
	if (head + pad + need - tail > PM_RING_BYTES)
		return NULL;
	if (pad) { /* a PAD record sends the reader back to offset 0 */
		uint32_t hdr[2] = { pad - PM_RING_HEADER_BYTES, PM_RING_PAD };
		memcpy(r->buf + at, hdr, sizeof(hdr));
		at = 0;
	}
	uint32_t hdr[2] = { len, type };
	memcpy(r->buf + at, hdr, sizeof(hdr));
	r->next_head = head + pad + need;
	return r->buf + at + PM_RING_HEADER_BYTES;
}

/* Publish the record reserved last (and the PAD before it, if any) at once. */
static inline void pm_ring_commit(struct pm_ring *r)
{
	atomic_store_explicit(&r->head, r->next_head, memory_order_release);
}

/* Copy a whole message in: true if it was queued. */
static inline bool pm_ring_push(struct pm_ring *r, uint32_t type, const void *p, uint32_t len)
{
	uint8_t *dst = pm_ring_reserve(r, type, len);
	if (!dst)
		return false;
	memcpy(dst, p, len);
	pm_ring_commit(r);
	return true;
}

/* The next message, or NULL; valid until pm_ring_pop. */
static inline const uint8_t *pm_ring_peek(struct pm_ring *r, uint32_t *type, uint32_t *len)
{
	for (;;) {
		uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
		uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
		if (tail == head)
			return NULL;
		uint32_t at = (uint32_t)(tail & (PM_RING_BYTES - 1)), hdr[2];
		memcpy(hdr, r->buf + at, sizeof(hdr));
		if (hdr[1] != PM_RING_PAD) {
			*len = hdr[0];
			*type = hdr[1];
			return r->buf + at + PM_RING_HEADER_BYTES;
		}
		atomic_store_explicit(&r->tail, tail + PM_RING_HEADER_BYTES + hdr[0],
				      memory_order_release);
	}
}

/* Release the message pm_ring_peek returned. */
static inline void pm_ring_pop(struct pm_ring *r, uint32_t len)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	atomic_store_explicit(&r->tail, tail + pm_ring_record_bytes(len), memory_order_release);
}

#endif
