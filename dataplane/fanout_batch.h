/* SPDX-License-Identifier: MIT
 *
 * fanout_batch.h — the fan-outs of issue 18 (fanout_batch.c): VADD batches,
 * VQUERY batches and range searches. fanout.c coordinates them like its
 * other fan-outs; this module holds what is particular to them: each
 * shard's part, and the per-item state of a batch at its coordinator.
 */
#ifndef POMAI_DATAPLANE_FANOUT_BATCH_H
#define POMAI_DATAPLANE_FANOUT_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "codec.h"
#include "request.h"

struct pm_worker;
struct pm_pending;

/* A batch's per-item state at its coordinator (one per pending slot). */
struct pm_batch_merge {
	uint32_t n;                          /* items */
	uint8_t owner[PM_BATCH_ITEMS_MAX];   /* VADDB: the shard that owns item i's key */
	uint8_t status[PM_BATCH_ITEMS_MAX];  /* VADDB: item i's wire status so far */
	uint16_t base[PM_BATCH_ITEMS_MAX];   /* VQUERYB: query i's kept hits are */
	uint16_t k[PM_BATCH_ITEMS_MAX];      /* hits[base, base + nhits), at most k */
	uint16_t nhits[PM_BATCH_ITEMS_MAX];
};

bool pm_batch_is_op(uint8_t op);
/* The worker's batch space and its pending slots' merge state. */
int pm_batch_alloc(struct pm_worker *w);
void pm_batch_free(struct pm_worker *w);
/* This shard's part of a batch or range fan-out, into rep (valid until the
 * shard or the worker's batch space next changes). */
void pm_batch_part(struct pm_worker *w, const struct pm_request *req, struct pm_reply *rep);
/* The coordinator's state for req, a fan-out just started in p. */
void pm_batch_start(const struct pm_worker *w, struct pm_pending *p, const struct pm_request *req);
/* Shard `shard`'s part could not be posted, or failed whole: its items fail with st. */
void pm_batch_part_failed(struct pm_pending *p, uint32_t shard, enum pm_wire_status st);
/* One frame of shard's part merged (VADDB, VQUERYB); false: keys too long
 * for the merge buffer. */
bool pm_batch_merge(const struct pm_worker *w, struct pm_pending *p, uint32_t shard,
		    const struct pm_reply_view *rv);
/* The reply's batch fields, from the merged state. */
void pm_batch_finish(struct pm_worker *w, struct pm_pending *p, struct pm_reply *rep);

#endif
