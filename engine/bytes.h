/* SPDX-License-Identifier: MIT
 *
 * bytes.h — little-endian fields of the on-disk formats (WAL records,
 * snapshots), read and written a byte at a time so that neither alignment nor
 * the host's byte order matters.
 */
#ifndef POMAI_ENGINE_BYTES_H
#define POMAI_ENGINE_BYTES_H

#include <stdint.h>

#define U16_BYTES 2u
#define U32_BYTES 4u
#define U64_BYTES 8u

static inline void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void put_u32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < U32_BYTES; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_u64(uint8_t *p, uint64_t v)
{
	for (unsigned i = 0; i < U64_BYTES; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static inline uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + U32_BYTES) << 32;
}

#endif
