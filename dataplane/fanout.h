/* SPDX-License-Identifier: MIT
 *
 * fanout.h — requests every shard must see (fanout.c): KNN, the collection
 * ops, INFO and SNAPSHOT. The worker that receives one coordinates it in its
 * bounded pending table, posts it to every other shard, and merges their
 * reply frames with its own part's.
 */
#ifndef POMAI_DATAPLANE_FANOUT_H
#define POMAI_DATAPLANE_FANOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"
#include "pm_limits.h"
#include "request.h"

struct pm_worker;

struct pm_hit_ref {
	float dist;
	uint32_t off, len; /* key bytes in the pending entry's key buffer */
};

/* A fan-out this worker coordinates. */
struct pm_pending {
	bool live;
	uint8_t op;                /* enum pm_op */
	uint32_t seq;
	uint64_t id;               /* client's request id */
	struct pm_dest dest;
	uint64_t start_ns, deadline_ns;
	uint32_t want, got;        /* shard answers expected / received */
	enum pm_status status;     /* first failure, or PM_OK */
	uint32_t removed;          /* CDROP: any shard removed */
	uint32_t k;                /* VQUERY */
	uint32_t nhits;
	struct pm_hit_ref *hits;   /* PM_K_MAX */
	uint8_t *keys;             /* PM_KNN_MERGE_BYTES: hit keys, INFO text, CLIST names */
	uint32_t keys_used;
	struct pm_coll_info *colls; /* CLIST: PM_COLLECTIONS_MAX */
	uint32_t ncolls;
	uint8_t info_flags;        /* INFO: the request's PM_INFO_* */
	uint32_t info_at[PM_INFO_SHARDS_MAX], info_len[PM_INFO_SHARDS_MAX]; /* INFO: each shard's
				    * text in keys (len 0: not answered), written in shard order */
	uint8_t list_flags;        /* CLIST: the request's PM_CLIST_* (the reply's layout) */
	uint32_t created;          /* CCREATE: shards that created the collection (bit per shard) */
	bool rolling_back;         /* CCREATE failed: waiting for the CDROPs that undo it */
	/* issue 18 (fanout_batch.c): a VADDB's / VQUERYB's per-item state; a
	 * VRANGE's truncation (a part's flag, or more hits than its max) */
	struct pm_batch_merge *batch;
	bool truncated;
	uint32_t seen;
	/* SNAPSHOT (issue 19): shards whose snapshot ran already, their least % */
	uint32_t snap_running;
	uint8_t snap_pct;
};

bool pm_is_fanout(uint8_t op);
/* A fan-out received from client: its slot, its frame to every other shard,
 * this shard's part (BUSY when the pending table is full). */
void pm_fanout_start(struct pm_worker *w, const struct pm_request *req, const uint8_t *frame,
		     uint32_t len, const struct pm_dest *client);
/* Another worker's fan-out: this shard's part, answered by FANOUT_REPLY. */
void pm_fanout_serve(struct pm_worker *w, const struct pm_msg *m, const uint8_t *frame,
		     uint32_t len);
/* One shard's part of a fan-out coordinated here, merged. */
void pm_fanout_collect(struct pm_worker *w, const struct pm_msg *m, const uint8_t *frames,
		       uint32_t len);
/* A KNN answer's time since start_ns into the latency histograms. */
void pm_knn_latency(struct pm_worker *w, uint64_t start_ns);
/* Fan-outs past their deadline answered TIMEOUT. */
void pm_fanout_expire(struct pm_worker *w);
/* The worker's INFO merge buffers (from pm_worker_alloc / pm_worker_free). */
int pm_fanout_alloc(struct pm_worker *w);
void pm_fanout_free(struct pm_worker *w);
/* Issue 21: whether name is an INFO section pomaid has, one of
 * PM_INFO_SECTION_NAMES in any case (len 0, every section, is one; "cluster"
 * is the header every answer opens with). Others are refused PARAM on the
 * wire and USAGE on the admin socket. */
#define PM_INFO_SECTION_NAMES "keyspace, memory, vectors, stats, dataplane, replication, cluster"
bool pm_info_section_known(const char *name, uint32_t len);
/* This worker's dataplane counters as INFO lines. */
uint32_t pm_worker_info(const struct pm_worker *w, char *out, uint32_t cap, bool clients);

#endif
