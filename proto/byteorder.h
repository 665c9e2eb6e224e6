/* SPDX-License-Identifier: MIT
 *
 * proto/byteorder.h — the byte order of every contract between Pomai
 * processes: little-endian fields at any alignment (frames, admin messages).
 *
 * Loads and stores go through memcpy, so a field may sit at any address, and
 * are swapped only on a big-endian host; on x86 and arm64 each is one plain
 * load or store. The engine has its own helpers for its on-disk formats
 * (engine/bytes.h): proto/ depends on nothing of the engine.
 */
#ifndef POMAI_PROTO_BYTEORDER_H
#define POMAI_PROTO_BYTEORDER_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define PM_LE16(x) __builtin_bswap16(x)
#define PM_LE32(x) __builtin_bswap32(x)
#define PM_LE64(x) __builtin_bswap64(x)
#else
#define PM_LE16(x) (x)
#define PM_LE32(x) (x)
#define PM_LE64(x) (x)
#endif

static inline uint16_t pm_get_le16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof v);
	return PM_LE16(v);
}

static inline uint32_t pm_get_le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof v);
	return PM_LE32(v);
}

static inline uint64_t pm_get_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return PM_LE64(v);
}

static inline void pm_put_le16(uint8_t *p, uint16_t v)
{
	v = PM_LE16(v);
	memcpy(p, &v, sizeof v);
}

static inline void pm_put_le32(uint8_t *p, uint32_t v)
{
	v = PM_LE32(v);
	memcpy(p, &v, sizeof v);
}

static inline void pm_put_le64(uint8_t *p, uint64_t v)
{
	v = PM_LE64(v);
	memcpy(p, &v, sizeof v);
}

#endif
