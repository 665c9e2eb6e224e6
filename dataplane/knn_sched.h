/* SPDX-License-Identifier: MIT
 *
 * knn_sched.h — a worker's share of KNN queries (knn_sched.c): every shard's
 * part of a VQUERY fan-out waits in a bounded FIFO and runs in slices of
 * knn_slice_us between the worker's turns, so that one query cannot hold the
 * worker while other clients' requests wait.
 */
#ifndef POMAI_DATAPLANE_KNN_SCHED_H
#define POMAI_DATAPLANE_KNN_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "knn.h"
#include "msg.h"

struct pm_worker;

/* One shard's part of a VQUERY fan-out, kept while its search waits or runs
 * in slices between the worker's turns. */
struct pm_knn_part {
	bool local;                /* this worker coordinates the fan-out */
	bool direct;               /* issue 20: a client's query of this shard alone (PART):
				    * answered to the client, no coordinator */
	uint64_t start_ns;         /* direct: when it arrived (the KNN latency histogram) */
	uint32_t origin, seq;      /* the fan-out: its coordinator, its number there */
	struct pm_dest dest;       /* the client: where the reply goes, who pays the work */
	uint64_t deadline_ns;      /* nobody waits for the answer after this */
	struct pm_vquery q;        /* the engine's state of the search */
	float *qbuf;               /* PM_DIM_MAX floats, 64-byte aligned */
	struct pm_knn_hit *hits;   /* PM_K_MAX */
};

int pm_knn_alloc(struct pm_worker *w);
void pm_knn_free(struct pm_worker *w);
/* This shard's part of a VQUERY fan-out coordinated by `origin` (its number
 * seq there; this worker's own when origin == w->id), for client, due by
 * deadline_ns: answered now when it needs no search (an error, nothing to
 * search), else queued for pm_knn_turn. */
void pm_knn_part_start(struct pm_worker *w, const struct pm_request *req, uint32_t origin,
		       uint32_t seq, const struct pm_dest *client, uint64_t deadline_ns);
/* Issue 20: a VQUERY whose client asks every shard itself (PART flag): this
 * shard's part, run like any other and answered straight to client. */
void pm_knn_direct_start(struct pm_worker *w, const struct pm_request *req,
			 const struct pm_dest *client, uint64_t deadline_ns);
/* Run queued parts, oldest first, for about knn_slice_us (an exact scan
 * PM_KNN_STEP_BYTES at a time, the clock read between; a graph search runs
 * whole); returns the parts it finished plus those still waiting (a worker
 * with parts waiting does not sleep). */
uint32_t pm_knn_turn(struct pm_worker *w);
/* INFO lines: the KNN part counters. */
uint32_t pm_knn_info(const struct pm_worker *w, char *out, uint32_t cap);

#endif
