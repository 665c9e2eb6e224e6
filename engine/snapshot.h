/* SPDX-License-Identifier: MIT
 *
 * snapshot.h — a shard's snapshot format, pure: written from a live shard in
 * bounded slices, checked and loaded from memory; no I/O (dataplane/snap_io.c
 * writes the files through io_uring and reads them back at start-up).
 *
 * A snapshot is fuzzy: the shard goes on changing between slices, and
 * recovery replays the log from the snapshot's start LSN over it. That is
 * sound because of what is captured when:
 *  - the collection table (names, parameters, each HNSW index's id bound,
 *    entry point and level RNG) is captured whole at the start, exactly as of
 *    the start LSN;
 *  - each key is captured in one piece, at some moment between the start and
 *    the end, or not at all if it was created after the start; a key that no
 *    record after the start LSN touches is captured exactly as it was;
 *  - every later change to a key is in the log after the start LSN, and
 *    replaying it over whatever was captured ends in the state the log
 *    describes (a DEL, SET or VADD sets a key's state whatever it was before;
 *    a request that fails in replay failed against a state some later record
 *    in the replay overwrites).
 * A key captured twice (deleted and re-created under another seed or node
 * while the snapshot ran) is loaded once; the other copy becomes an HNSW
 * tombstone or is dropped, and the log puts the right value back.
 *
 * HNSW graphs are saved as they are — node ids, levels, tombstones, every link
 * list — and restored, not rebuilt. A link the restored graph cannot hold (a
 * fuzzy capture saw its target freed) is dropped and the graph is walked for
 * stranded nodes at the next maintenance; a snapshot taken while the
 * collection did not change restores the identical graph.
 *
 * File layout, little-endian:
 *
 *   header   64 bytes: magic "POMAISNP", u32 version, u32 shard, u64 start
 *            LSN, u64 wall-clock ms at the start, u64 log segment and u64 byte
 *            offset in it of the start LSN's record (0 and 0: not known; a
 *            hint recovery checks, pm_snap_header), zeros, u32 CRC32C of
 *            bytes 0..59 at offset 60
 *   sections each: u32 type, u32 payload bytes, u32 records, u32 CRC32C (of
 *            the first 12 header bytes and the payload), then the payload —
 *            whole records, never split; at most PM_SNAP_SECTION_BYTES_MAX
 *   END      the last section: u64 records of every ITEMS/NODES section, u64
 *            sections before it; nothing may follow it
 *
 * Records: COLLS — u16 slot, u8 default, u8 name length, name, u32 dim, u8
 * metric, u8 index, u16 M, u32 ef_construction, u32 ef_search, u32 HNSW id
 * bound, u32 entry, u64 RNG, u8 flags (PM_COLL_*), u8 dtype, u8 rerank, u32
 * rerank_k (quant.h). ITEMS — u8 1 (KV), u16 key length, u32 value
 * length, u64 expiry, key, value; or u8 2 (vector of a flat collection), u16
 * key length, u16 slot, u64 expiry, key, vector, u16 attribute record length
 * (0: none), record. NODES — u8 3, u8 flags (1: tombstone), u8 level, u16
 * slot, u16 key length (0 for a tombstone), u32 node id, u64 expiry, key,
 * vector, u16 attribute record length, record, then for each level 0..level:
 * u32 count, count x u32 node ids. A vector is its stored payload verbatim
 * (pm_quant_stored_bytes of its collection: f32, or codes and the kept f32),
 * then its f32 norm and Q8 scale (u32 bits each), so a load stores it as it
 * was without quantising again.
 */
#ifndef POMAI_ENGINE_SNAPSHOT_H
#define POMAI_ENGINE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard.h"

#define PM_SNAP_MAGIC "POMAISNP"
/* 2: a COLLS record ends with the collection's flags (evictable).
 * 3: element types — COLLS records end with dtype and rerank, vectors are
 *    stored payloads with their norm and scale; vector items and nodes carry
 *    the vector's attribute record after them. */
#define PM_SNAP_VERSION 3u
#define PM_SNAP_HEADER_BYTES 64u
#define PM_SNAP_SECTION_HEADER_BYTES 16u
/* The largest record: a node of PM_DIM_MAX floats, the longest key and 17
 * levels of links (or a KV item with the largest key and value). */
#define PM_SNAP_RECORD_BYTES_MAX (96u << 10)
/* The least a fill may be given: the header, the collection table, or one
 * record of the largest size, each with two section headers. */
#define PM_SNAP_FILL_BYTES_MIN (256u << 10)
/* Payload bytes of one section, at most. */
#define PM_SNAP_SECTION_BYTES_MAX (16u << 20)

enum pm_snap_section {
	PM_SNAP_SEC_COLLS = 1,
	PM_SNAP_SEC_ITEMS = 2,
	PM_SNAP_SEC_NODES = 3,
	PM_SNAP_SEC_END = 4,
};

/* Where a writer is. */
enum pm_snap_phase { PM_SNAP_HEAD = 0, PM_SNAP_SEEDS, PM_SNAP_NODES, PM_SNAP_TAIL, PM_SNAP_DONE };

struct pm_snap_writer {
	uint64_t start_lsn, start_ms;
	uint32_t shard;
	enum pm_snap_phase phase;
	uint32_t cursor;      /* next seed slot / node id */
	uint32_t coll;        /* collection slot of the node phase */
	uint32_t seed_end;    /* seed slots in use at the start */
	uint32_t gen[PM_COLLECTIONS_MAX];  /* collection generations at the start (0: none) */
	uint32_t high[PM_COLLECTIONS_MAX]; /* HNSW id bounds at the start */
	uint32_t entry[PM_COLLECTIONS_MAX]; /* HNSW entry points at the start */
	uint64_t rng[PM_COLLECTIONS_MAX];  /* HNSW level RNGs at the start */
	uint64_t records, sections, bytes;
};

/* Begin a snapshot of sh as of start_lsn (the last record applied to it). */
void pm_snap_writer_init(struct pm_snap_writer *w, const struct pm_shard *sh, uint32_t shard,
			 uint64_t start_lsn, uint64_t now_ms);
/* The header of w's snapshot, with where the log holds the record of its
 * start LSN: the first LSN of that record's segment (its name) and the
 * record's byte offset in it; 0 and 0 when not known. pm_snap_fill writes it
 * with 0 and 0 first; the writer may write it again over the file's first
 * bytes once its log has the record (dataplane/snap_io.c). A hint only:
 * recovery starts reading the log there when the record there is whole and
 * has that LSN, else reads the segment from its start. */
void pm_snap_header(const struct pm_snap_writer *w, uint64_t log_seg, uint64_t log_off,
		    uint8_t out[PM_SNAP_HEADER_BYTES]);

/* Write the next whole sections into out (cap >= PM_SNAP_FILL_BYTES_MIN),
 * looking at no more than max_items seed slots or node ids; the first call
 * writes the header and the collection table (as of the start). Returns the
 * bytes written — 0 when the slots it looked at held nothing to write (free
 * slots, HNSW vectors, which go with their graph) or once the END section
 * has been written: pm_snap_done() tells which. */
size_t pm_snap_fill(struct pm_snap_writer *w, struct pm_shard *sh, uint64_t now_ms, uint8_t *out,
		    size_t cap, uint32_t max_items);
static inline bool pm_snap_done(const struct pm_snap_writer *w)
{
	return w->phase == PM_SNAP_DONE;
}

/* How far a writer is, in percent of the seed slots and node ids it walks. */
unsigned pm_snap_progress(const struct pm_snap_writer *w);

struct pm_snap_info {
	uint32_t shard;
	uint64_t start_lsn, start_ms;
	uint64_t log_seg, log_off; /* the header's hint: 0 and 0 when not known */
	uint64_t colls, items, nodes, sections;
	uint64_t skipped;       /* records not loaded: expired, or a stale copy */
	uint64_t links_dropped; /* HNSW links the restored graphs could not hold */
};

/* Check a whole snapshot image without touching a shard: header, every
 * section's CRC and bounds, the END section's counts. PM_OK, or PM_E_PARAM
 * with the first fault and its offset in why. */
enum pm_status pm_snap_check(const uint8_t *buf, size_t len, struct pm_snap_info *info, char *why,
			     size_t whylen);
/* A load's working state: the caller provides it (about 10 KiB: a stack
 * frame or the heap), as it does a writer's, so the engine keeps no state of
 * its own between or across calls; its fields are pm_snap_load's. */
struct pm_snap_loader {
	struct pm_shard *sh;
	uint64_t now_ms;
	struct pm_snap_info *info;
	char *why;
	size_t whylen;
	size_t off;       /* of the section being loaded (for messages) */
	struct {
		bool present, is_default;
		uint32_t dim, entry;
		uint64_t rng;
		struct pm_collection *c; /* NULL for a default collection (made on demand) */
	} slot[PM_COLLECTIONS_MAX];
};

/* Load a checked image into sh, which must be empty, with the caller's
 * loader L (whatever it held is overwritten): keys whose expiry is at or
 * before now_ms are left out. PM_OK, or the failure (PM_E_NOMEM: the shard's
 * arena or seed capacity is smaller than the snapshot needs) with why; after
 * a failure the shard holds part of the snapshot and is for destroying only. */
enum pm_status pm_snap_load(struct pm_snap_loader *L, struct pm_shard *sh, const uint8_t *buf,
			    size_t len, uint64_t now_ms, struct pm_snap_info *info, char *why,
			    size_t whylen);

#endif
