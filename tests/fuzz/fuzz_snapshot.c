/* SPDX-License-Identifier: MIT
 *
 * fuzz_snapshot.c — snapshot checking and loading (engine/snapshot.h) into a
 * small real shard (4 MiB arena, 1024 seeds).
 *
 * Input: one mode byte, then the image. Checksums would stop the fuzzer at
 * the first section, so the mode asks the target to make them right first:
 * bit 2 rewrites the END section's counts, bit 0 every section's CRC, bit 1
 * the header's CRC (in that order). Mode 0 takes the image as it is (the real
 * snapshot of the seed corpus).
 *
 * Invariants: pm_snap_check and pm_snap_load end with a status, a refusal
 * with a reason; load never accepts what check refused; a load that succeeds
 * leaves a shard whose HNSW graphs pass pm_hnsw_validate (but for nodes left
 * unreachable and level counts, which a crafted image chooses: see
 * validate_graphs), still pass after the maintenance sweeps run to their
 * end, and which answers INFO; nothing leaks (ASan), the shard's memory is
 * its arena (-rss_limit_mb).
 */
#include <string.h>

#include "fuzz.h"
#include "hnsw.h"
#include "snapshot.h"
#include "wal.h"

#define SNAP_MODE_FIX_SECTIONS 0x01u
#define SNAP_MODE_FIX_HEADER 0x02u
#define SNAP_MODE_FIX_END 0x04u
/* The shard a snapshot loads into: small, so a large claim fails fast. */
#define SNAP_ARENA_BYTES (4u << 20)
#define SNAP_SEEDS 1024u
/* Largest image read: a full small shard is well under this. */
#define SNAP_INPUT_BYTES_MAX (4u << 20)
/* The clock the seed snapshot was taken at (make_seeds.c): its TTLs hold. */
#define SNAP_NOW_MS 1000000000ull
/* Maintenance calls after a load, at most (each sweeps a bounded slice). */
#define SNAP_MAINTAIN_CALLS_MAX 4096u
#define SNAP_WHY_BYTES 256u
#define HDR_CRC_OFF 60u
#define END_PAYLOAD_BYTES 16u

static uint8_t img[SNAP_INPUT_BYTES_MAX];
static char info_text[PM_INFO_TEXT_BYTES_MAX];
static struct pm_snap_loader loader; /* pm_snap_load's working state */

static uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void st32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void st64(uint8_t *p, uint64_t v)
{
	st32(p, (uint32_t)v);
	st32(p + 4, (uint32_t)(v >> 32));
}

/* Walk the sections whose lengths fit; rewrite END counts and CRCs by mode. */
static void fix_up(uint8_t *b, size_t len, uint8_t mode)
{
	uint64_t records = 0, sections = 0;
	if (len < PM_SNAP_HEADER_BYTES)
		return;
	for (size_t off = PM_SNAP_HEADER_BYTES; len - off >= PM_SNAP_SECTION_HEADER_BYTES;) {
		uint8_t *h = b + off;
		uint32_t type = ld32(h), plen = ld32(h + 4), count = ld32(h + 8);
		if (plen > len - off - PM_SNAP_SECTION_HEADER_BYTES)
			break;
		if (type == PM_SNAP_SEC_END && plen == END_PAYLOAD_BYTES && (mode & SNAP_MODE_FIX_END)) {
			st64(h + PM_SNAP_SECTION_HEADER_BYTES, records);
			st64(h + PM_SNAP_SECTION_HEADER_BYTES + 8, sections);
		}
		records += type == PM_SNAP_SEC_ITEMS || type == PM_SNAP_SEC_NODES ? count : 0;
		sections++;
		if (mode & SNAP_MODE_FIX_SECTIONS)
			st32(h + 12, pm_crc32c(pm_crc32c(0, h, 12), h + PM_SNAP_SECTION_HEADER_BYTES,
					       plen));
		off += PM_SNAP_SECTION_HEADER_BYTES + plen;
		if (type == PM_SNAP_SEC_END)
			break;
	}
	if ((mode & SNAP_MODE_FIX_HEADER) && len >= PM_SNAP_HEADER_BYTES)
		st32(b + HDR_CRC_OFF, pm_crc32c(0, b, HDR_CRC_OFF));
}

static void validate_graphs(struct pm_shard *sh)
{
	for (uint32_t i = 0; i < PM_COLLECTIONS_MAX; i++) {
		const struct pm_collection *c = &sh->colls[i];
		if (!c->live || c->params.index != PM_INDEX_HNSW)
			continue;
		uint32_t *scratch = malloc(((size_t)c->hnsw.high + 1) * sizeof(uint32_t));
		FUZZ_CHECK(scratch != NULL);
		struct pm_hnsw_report rep;
		enum pm_status st = pm_hnsw_validate(sh, c, scratch, &rep);
		/* Structure must hold. Reachability is repaired, not promised: the
		 * loader links stranded nodes in (pm_hnsw_restore_end), but the links
		 * an image chose (with its m and its vectors) can keep a few out, as
		 * pruning can in a live graph; those are found by a later sweep.
		 * Level counts are statistics: an image chooses its nodes' levels
		 * and its RNG state, and the loader refuses only what no saved graph
		 * can hold (more ids than the RNG drew levels), so a crafted image
		 * may load with counts the validator finds implausible. */
		bool tolerated = rep.unreachable != 0 || rep.levels_implausible;
		if (st != PM_OK && !tolerated)
			fprintf(stderr, "collection %u: %s\n", i, rep.why);
		FUZZ_CHECK(st == PM_OK || tolerated);
		free(scratch);
	}
}

/* A loaded shard is whole: valid graphs before and after maintenance. */
static void check_loaded(struct pm_shard *sh, const struct pm_snap_info *a,
			 const struct pm_snap_info *b)
{
	FUZZ_CHECK(b->colls == a->colls && b->sections == a->sections);
	FUZZ_CHECK(b->shard == a->shard && b->start_lsn == a->start_lsn);
	validate_graphs(sh);
	unsigned calls = 0;
	while (pm_shard_maintain(sh, SNAP_NOW_MS, 0) && calls < SNAP_MAINTAIN_CALLS_MAX)
		calls++;
	FUZZ_CHECK(calls < SNAP_MAINTAIN_CALLS_MAX); /* maintenance ends */
	validate_graphs(sh);
	uint32_t n = pm_shard_info(sh, NULL, 0, info_text, sizeof(info_text));
	FUZZ_CHECK(n > 0 && n <= sizeof(info_text));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size - 1 > SNAP_INPUT_BYTES_MAX)
		return 0;
	size_t len = size - 1;
	memcpy(img, data + 1, len);
	fix_up(img, len, data[0]);
	/* a heap copy of exactly len bytes: ASan sees a read past the image */
	uint8_t *b = malloc(len ? len : 1);
	FUZZ_CHECK(b != NULL);
	memcpy(b, img, len);
	struct pm_snap_info ci, li;
	char why[SNAP_WHY_BYTES] = "";
	enum pm_status checked = pm_snap_check(b, len, &ci, why, sizeof(why));
	FUZZ_CHECK(checked == PM_OK || (checked == PM_E_PARAM && why[0] != '\0'));
	if (checked == PM_OK) {
		struct pm_shard sh;
		struct pm_shard_config cfg;
		pm_shard_config_default(&cfg);
		cfg.arena_bytes = SNAP_ARENA_BYTES;
		cfg.seed_capacity = SNAP_SEEDS;
		cfg.hugepages = false;
		FUZZ_CHECK(pm_shard_init(&sh, &cfg) == PM_OK);
		why[0] = '\0';
		enum pm_status st = pm_snap_load(&loader, &sh, b, len, SNAP_NOW_MS, &li, why, sizeof(why));
		FUZZ_CHECK(st < PM_STATUS_COUNT);
		FUZZ_CHECK(st == PM_OK || why[0] != '\0');
		if (st == PM_OK)
			check_loaded(&sh, &ci, &li);
		pm_shard_destroy(&sh);
	}
	free(b);
	return 0;
}
