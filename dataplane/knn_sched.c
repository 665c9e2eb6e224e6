/* SPDX-License-Identifier: MIT
 *
 * knn_sched.c — a worker's share of KNN queries, charged and scheduled as
 * work, so that one cheap request cannot hold a worker for many milliseconds
 * while other clients' GETs wait behind it.
 *
 * Every shard's part of a VQUERY fan-out (fanout.c) comes here: the engine
 * checks the request and finds its collection at once (pm_vquery_begin), and
 * a part that needs no search (an error, nothing to search) is answered at
 * once. The others wait in a FIFO of PM_KNN_PARTS_MAX parts (full: BUSY), and
 * each turn of the worker's loop runs them, oldest first, for about
 * knn_slice_us: an exact scan PM_KNN_STEP_BYTES of work at a time (engine/
 * knn.h: bytes of vectors read), the clock read between, resumed next turn
 * where it stopped; a graph search whole, bounded by knn_work_bytes_max.
 * Between two turns the worker serves its sockets and rings, so a long scan
 * costs the other clients one slice of latency, not the scan. A slice is
 * time, not bytes, so that this holds on a slow core or build as on a fast
 * one.
 *
 * Overload: work that finishes after the fan-out's deadline is wasted, so a
 * part that has others waiting ahead of it is refused BUSY on arrival when
 * their work and its own would outlast its deadline at the rate this worker
 * gets through KNN
 * work while parts wait (measured over whole turns, so the worker's other work
 * is in it; exact scans' work is known in advance, a graph search counts as
 * the average of the last ones), and a
 * part still waiting at its deadline is dropped when it comes up. Both are
 * counted. A flooding client so gets quick refusals, and the queries that are
 * taken finish in time.
 *
 * Every part's work goes back to the coordinator, which charges it to the
 * client's work budget (access.c): in the FANOUT_REPLY message for another
 * worker's part, directly for its own.
 *
 * A direct part (issue 20: a client that fans out itself asked this shard
 * alone, fanout.c part_only) has no coordinator: it is queued and run the
 * same way, and its reply goes straight to the client, encoded once, its
 * work charged here.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "bridge.h"
#include "common.h"
#include "fanout.h"
#include "knn_sched.h"
#include "msg.h"
#include "worker.h"

/* Alignment of a part's query vector: the distance kernels' (shard.h). Each
 * part's query, then its hits, in one mapping a start does not touch
 * (pm_pages_alloc): a worker that never answers KNN never faults them in. */
#define QUERY_ALIGN_BYTES 64u
#define KNN_QUERY_BYTES ((size_t)PM_DIM_MAX * sizeof(float))
#define KNN_PART_BYTES (KNN_QUERY_BYTES + (size_t)PM_K_MAX * sizeof(struct pm_knn_hit))
#define KNN_MEM_BYTES (PM_KNN_PARTS_MAX * KNN_PART_BYTES)
#define KNN_PARTS_BYTES (PM_KNN_PARTS_MAX * sizeof(struct pm_knn_part))
_Static_assert(KNN_QUERY_BYTES % QUERY_ALIGN_BYTES == 0 && KNN_PART_BYTES % QUERY_ALIGN_BYTES == 0,
	       "every part's query vector is aligned");
/* The rate is sampled over consecutive turns with parts waiting, once they
 * have done at least this much work (16 steps), and averaged with weight
 * 1 / RATE_WEIGHT for the newest sample; graph searches' work likewise. */
#define RATE_SAMPLE_BYTES_MIN (16u * PM_KNN_STEP_BYTES)
#define RATE_WEIGHT 8.0
#define GRAPH_WEIGHT 8u

int pm_knn_alloc(struct pm_worker *w)
{
	/* the slots too: a slot's buffers are set when a part takes it (part_begin) */
	w->knn_parts = pm_pages_alloc(KNN_PARTS_BYTES);
	w->knn_mem = pm_pages_alloc(KNN_MEM_BYTES); /* page-aligned */
	if (!w->knn_parts || !w->knn_mem)
		return -1;
	w->knn_head = w->knn_n = 0;
	return 0;
}

void pm_knn_free(struct pm_worker *w)
{
	pm_pages_free(w->knn_parts, KNN_PARTS_BYTES);
	pm_pages_free(w->knn_mem, KNN_MEM_BYTES);
	w->knn_parts = NULL;
	w->knn_mem = NULL;
}

/* ---------------------------------------------------------------- answers */

/* The part's reply frames to its coordinator: merged here (pm_fanout_collect,
 * which also charges the work), or in a FANOUT_REPLY message. */
static void part_reply(struct pm_worker *w, const struct pm_knn_part *p,
		       const struct pm_reply *rep)
{
	struct pm_msg m = { .origin = p->origin, .seq = p->seq, .shard = w->id, .dest = p->dest,
			    .work = rep->work };
	if (p->direct) { /* issue 20: encoded once, straight to the client */
		pm_quota_charge_work(w, &p->dest, rep->work);
		pm_knn_latency(w, p->start_ns);
		pm_send_reply(w, &p->dest, rep);
		return;
	}
	uint32_t cap = PM_RING_PAYLOAD_MAX - (uint32_t)sizeof(m);
	uint32_t n = pm_reply_frames(rep, w->scratch, cap);
	if (n == 0) { /* the hits do not fit one message: say so in one error frame */
		struct pm_reply e = { .status = PM_E_K, .op = PM_OP_VQUERY, .id = rep->id };
		n = (uint32_t)pm_reply_encode(&e, NULL, w->scratch, cap);
	}
	if (p->local)
		pm_fanout_collect(w, &m, w->scratch, n);
	else
		pm_post(w, p->origin, PM_MSG_FANOUT_REPLY, &m, w->scratch, n);
}

/* A part the engine is done with: its reply, with the shard's counters. */
static void part_done(struct pm_worker *w, struct pm_knn_part *p)
{
	struct pm_reply rep;
	pm_shard_vquery_end(&w->shard, &p->q, &rep);
	part_reply(w, p, &rep);
}

/* A part answered by the dataplane (BUSY, TIMEOUT): the work done so far. */
static void part_fail(struct pm_worker *w, struct pm_knn_part *p, enum pm_status st)
{
	struct pm_reply rep = { .status = st, .op = PM_OP_VQUERY, .id = p->q.id,
				.work = p->q.work };
	part_reply(w, p, &rep);
}

/* ---------------------------------------------------------------- the queue */

/* The work a queued part has still to do: exact, or the average graph search. */
static uint64_t part_left(const struct pm_worker *w, const struct pm_knn_part *p)
{
	return p->q.graph ? w->knn_graph_bytes : pm_vquery_remaining(&w->shard, &p->q);
}

/* Can part p, queued behind every waiting part, finish by its deadline? Yes
 * when none waits (a query too long for its deadline by itself gets its
 * chance: TIMEOUT is its answer, and knn_work_bytes_max bounds it), and while
 * the rate is not known yet. */
static bool in_time(const struct pm_worker *w, const struct pm_knn_part *p)
{
	if (w->knn_n == 0 || w->knn_ns_per_byte <= 0.0)
		return true;
	uint64_t bytes = part_left(w, p);
	for (uint32_t i = 0; i < w->knn_n; i++)
		bytes += part_left(w, &w->knn_parts[(w->knn_head + i) % PM_KNN_PARTS_MAX]);
	return w->now_ns + (double)bytes * w->knn_ns_per_byte <= (double)p->deadline_ns;
}

/* Queue the part described by `part` (its buffers are the slot's), or
 * answer it now. */
static void part_begin(struct pm_worker *w, const struct pm_request *req,
		       const struct pm_knn_part part)
{
	if (w->knn_n == PM_KNN_PARTS_MAX) {
		struct pm_knn_part busy = part; /* no slot, no buffers: nothing searched */
		w->stats.knn_parts_refused++;
		part_fail(w, &busy, PM_E_BUSY);
		return;
	}
	uint32_t slot = (w->knn_head + w->knn_n) % PM_KNN_PARTS_MAX;
	struct pm_knn_part *p = &w->knn_parts[slot];
	uint8_t *mem = (uint8_t *)w->knn_mem + (size_t)slot * KNN_PART_BYTES;
	*p = part;
	p->qbuf = (float *)mem;
	p->hits = (struct pm_knn_hit *)(mem + KNN_QUERY_BYTES);
	pm_vquery_begin(&w->shard, &p->q, req, p->qbuf, p->hits);
	if (p->q.done) {
		part_done(w, p);
	} else if (!in_time(w, p)) {
		w->stats.knn_parts_shed++;
		part_fail(w, p, PM_E_BUSY);
	} else {
		w->knn_n++;
	}
}

void pm_knn_part_start(struct pm_worker *w, const struct pm_request *req, uint32_t origin,
		       uint32_t seq, const struct pm_dest *client, uint64_t deadline_ns)
{
	part_begin(w, req, (struct pm_knn_part){ .local = origin == w->id, .origin = origin,
						 .seq = seq, .dest = *client,
						 .deadline_ns = deadline_ns, .q = { .id = req->id } });
}

void pm_knn_direct_start(struct pm_worker *w, const struct pm_request *req,
			 const struct pm_dest *client, uint64_t deadline_ns)
{
	w->stats.knn_parts_direct++;
	part_begin(w, req, (struct pm_knn_part){ .direct = true, .origin = w->id,
						 .start_ns = w->now_ns, .dest = *client,
						 .deadline_ns = deadline_ns, .q = { .id = req->id } });
}

static void pop(struct pm_worker *w)
{
	w->knn_head = (w->knn_head + 1) % PM_KNN_PARTS_MAX;
	w->knn_n--;
}

/* This turn's KNN work into the rate: a sample once the turns since
 * knn_rate_t0, all with parts waiting, did RATE_SAMPLE_BYTES_MIN of it. */
static void measure(struct pm_worker *w, uint64_t bytes)
{
	w->knn_rate_bytes += bytes;
	if (w->knn_rate_bytes < RATE_SAMPLE_BYTES_MIN && w->knn_n)
		return;
	uint64_t now = pm_mono_ns();
	if (w->knn_rate_bytes >= RATE_SAMPLE_BYTES_MIN) {
		double sample = (double)(now - w->knn_rate_t0) / (double)w->knn_rate_bytes;
		w->knn_ns_per_byte = w->knn_ns_per_byte > 0.0
					     ? w->knn_ns_per_byte +
						       (sample - w->knn_ns_per_byte) / RATE_WEIGHT
					     : sample;
	}
	w->knn_rate_t0 = w->knn_n ? now : 0; /* an idle queue ends the measurement */
	w->knn_rate_bytes = 0;
}

uint32_t pm_knn_turn(struct pm_worker *w)
{
	uint64_t spent = 0, now = pm_mono_ns();
	const uint64_t end = now + (uint64_t)w->d->cfg.knn_slice_us * 1000u;
	uint32_t finished = 0;
	if (w->knn_n == 0)
		return 0;
	w->stats.knn_slices++;
	if (w->knn_rate_t0 == 0)
		w->knn_rate_t0 = now;
	while (w->knn_n && now < end) {
		struct pm_knn_part *p = &w->knn_parts[w->knn_head];
		if (now > p->deadline_ns) {
			w->stats.knn_parts_expired++;
			part_fail(w, p, PM_E_TIMEOUT);
			pop(w);
			continue;
		}
		uint64_t before = p->q.work;
		bool graph = p->q.graph;
		bool done = pm_vquery_step(&w->shard, &p->q, PM_KNN_STEP_BYTES);
		spent += p->q.work - before;
		now = pm_mono_ns();
		if (!done)
			continue; /* on with this part while the slice lasts, next turn after */
		if (graph) { /* an average of the last few graph searches' work */
			uint64_t avg = w->knn_graph_bytes;
			w->knn_graph_bytes = avg - avg / GRAPH_WEIGHT + p->q.work / GRAPH_WEIGHT;
		}
		part_done(w, p);
		pop(w);
		finished++;
	}
	measure(w, spent);
	return finished + w->knn_n;
}

uint32_t pm_knn_info(const struct pm_worker *w, char *out, uint32_t cap)
{
	const struct pm_worker_stats *s = &w->stats;
	int n = snprintf(out, cap,
			 "knn_parts_waiting:%u\r\nknn_parts_refused:%llu\r\nknn_parts_shed:%llu\r\n"
			 "knn_parts_expired:%llu\r\nknn_slices:%llu\r\nknn_work_charged:%llu\r\n"
			 "knn_parts_direct:%llu\r\n",
			 w->knn_n, (unsigned long long)s->knn_parts_refused,
			 (unsigned long long)s->knn_parts_shed,
			 (unsigned long long)s->knn_parts_expired,
			 (unsigned long long)s->knn_slices,
			 (unsigned long long)s->knn_work_charged,
			 (unsigned long long)s->knn_parts_direct);
	return n < 0 || (uint32_t)n >= cap ? 0 : (uint32_t)n;
}
