/* SPDX-License-Identifier: MIT
 *
 * pm_limits.h — every bound of the Pomai engine, in one place. The wire names its
 * own bounds (proto/wire.h); where both bound the same thing (a key's bytes, a
 * vector's dimension, k, ef, a collection's name, a TTL, a shard's INFO text)
 * pomaid's bridge (dataplane/bridge.c) checks that they agree.
 *
 * Each limit is a named constant whose name carries its unit (_BYTES, _MS, _COUNT …)
 * and whose comment says why it has that value. Overridable defaults use #ifndef so a
 * build can change them (-DPM_K_MAX=2048); hard relationships between limits are
 * checked with _Static_assert at the bottom so an override cannot break them.
 *
 * A request that breaks any of these gets an error status (see status.h); nothing is
 * allocated for it and no other client is affected.
 */
#ifndef POMAI_ENGINE_PM_LIMITS_H
#define POMAI_ENGINE_PM_LIMITS_H

#include <stdint.h>

/* ---------------------------------------------------------------- one request */

/* Keys are identifiers, not payloads: 1 KiB keeps key compares cheap and lets a
 * whole KNN reply page hold many results. */
#ifndef PM_KEY_BYTES_MAX
#define PM_KEY_BYTES_MAX 1024u
#endif

/* Values: 60 KiB, so that a frame's header + largest key + largest value + TTL
 * still fit one UDP datagram (checked in proto/wire.h). Larger objects belong in
 * a blob store, not a UDP cache. */
#ifndef PM_VALUE_BYTES_MAX
#define PM_VALUE_BYTES_MAX 61440u
#endif

/* Vector dimension: 4096 f32 components = 16 KiB, above every common embedding
 * size (384, 768, 1024, 1536, 3072). */
#ifndef PM_DIM_MAX
#define PM_DIM_MAX 4096u
#endif

/* Neighbours per KNN query. A reply larger than one frame is split into several
 * frames flagged MORE (docs/protocol.md), so k is bounded by work, not by MTU. */
#ifndef PM_K_MAX
#define PM_K_MAX 1024u
#endif

/* Search breadth for approximate search (HNSW ef); bounds per-query work. */
#ifndef PM_EF_MAX
#define PM_EF_MAX 4096u
#endif

/* Collection names: short human-chosen identifiers. */
#ifndef PM_COLLECTION_NAME_BYTES_MAX
#define PM_COLLECTION_NAME_BYTES_MAX 64u
#endif

/* One shard's INFO text (pm_shard_info's buffer). */
#define PM_INFO_TEXT_BYTES_MAX 8192u

/* TTL: 2^40 ms is about 34.8 years; expiry times are stored in 48 bits of ms. */
#define PM_TTL_MS_MAX (UINT64_C(1) << 40)

/* ---------------------------------------------------------------- one shard */

/* Collections per shard: the seed stores a collection id in 16 bits, and the
 * name lookup is a scan, so keep the table small. */
#ifndef PM_COLLECTIONS_MAX
#define PM_COLLECTIONS_MAX 256u
#endif

/* Seed slot size: one cache line. 16 bytes of header + 48 bytes inline data. */
#define PM_SEED_BYTES 64u
#define PM_SEED_HEADER_BYTES 16u
#define PM_SEED_INLINE_BYTES (PM_SEED_BYTES - PM_SEED_HEADER_BYTES)

/* Seeds per shard: seed indexes are 32-bit and UINT32_MAX means "none". */
#define PM_SEEDS_MAX (UINT32_MAX - 1u)

/* Arena bounds. The minimum leaves room for the seed map, a few seeds and a blob
 * of each size class; the maximum is the 48-bit offset space seeds can address. */
#define PM_ARENA_BYTES_MIN (UINT64_C(1) << 20)
#define PM_ARENA_BYTES_MAX (UINT64_C(1) << 46)

/* Blob size classes: 8-byte steps from 24 to 64 bytes, then four classes per
 * power of two up to 1 KiB and eight per power of two up to 1 MiB, so the worst
 * internal waste of any class is below 22 % for every request of at least 20
 * bytes (worst: 25 -> 32, 7/32 = 21.9 %), and below 12 % from 1 KiB up. The
 * engine never asks for less than 20 bytes (see arena.c). */
#define PM_BLOB_BYTES_MIN 24u
#define PM_BLOB_REQUEST_BYTES_MIN 20u
#define PM_BLOB_BYTES_MAX (1u << 20)

/* Active expiry: seed slots inspected per expiry cycle, so a cycle costs a bounded,
 * small amount of time between polling bursts (~tens of microseconds). */
#ifndef PM_EXPIRE_SCAN_SEEDS_MAX
#define PM_EXPIRE_SCAN_SEEDS_MAX 1024u
#endif

/* ---------------------------------------------------------------- KNN work */

/* The most work one KNN search may do on one shard, in bytes of vectors read
 * (engine/knn.h: header + payload per distance computed), unless the embedder
 * sets its own (pomaid: knn_work_bytes_max). 1 GiB: an exact scan of 1.8 M
 * 128-dimension vectors, or a graph search at the largest ef on 128-dimension
 * vectors many times over; at the 10-28 GB/s one core scans (perf/RESULTS.md),
 * about 0.1 s of it. A search past it is refused (PM_E_WORK_LIMIT), not cut
 * short: a cut scan's hits are an arbitrary subset. */
#ifndef PM_KNN_WORK_BYTES_MAX_DEFAULT
#define PM_KNN_WORK_BYTES_MAX_DEFAULT (UINT64_C(1) << 30)
#endif

/* An exact scan run in steps begins again when its collection changes between
 * two of them; after this many new beginnings it finishes in one step, so a
 * collection written to without pause still gets its queries answered. */
#define PM_KNN_SCAN_RESTARTS_MAX 4u

/* ---------------------------------------------------------------- sanity */

_Static_assert(PM_COLLECTIONS_MAX <= 65535u, "collection ids are 16-bit");
_Static_assert(PM_SEED_BYTES % 64u == 0, "seed slots are whole cache lines");
_Static_assert(64u + 4u * PM_DIM_MAX + PM_KEY_BYTES_MAX <= PM_BLOB_BYTES_MAX, "largest vector fits a blob");
_Static_assert(PM_KEY_BYTES_MAX + PM_VALUE_BYTES_MAX <= PM_BLOB_BYTES_MAX,
               "largest key+value fits a blob");
_Static_assert(PM_EF_MAX >= PM_K_MAX, "ef must be able to reach k");

#endif
