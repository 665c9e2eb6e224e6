/* SPDX-License-Identifier: MIT
 *
 * msg.c — messages between workers (msg.h): posting to a ring and waking its
 * reader; the reply credit that keeps a forwarded TCP frame's reply from ever
 * finding nowhere to go; and the queue that holds such a reply, in order,
 * while the ring back to its connection's worker is full.
 *
 * Reply credit: before a worker forwards a TCP connection's frame to the
 * shard's owner, it counts the reply's worst case (its waiting record) against
 * PM_TCP_CREDIT_BYTES for that owner; the credit comes back with the reply.
 * The owner puts a reply that finds the ring back full into its queue for
 * that worker (struct pm_reply_wait), which therefore never holds more than
 * the credit allows: every reply is delivered, none is dropped, and neither
 * worker waits for the other.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"
#include "msg.h"
#include "worker.h"

/* ---------------------------------------------------------------- posting */

bool pm_ring_send(struct pm_ring *r, uint32_t type, const struct pm_msg *m, const uint8_t *body,
		  uint32_t len)
{
	uint8_t *dst = pm_ring_reserve(r, type, (uint32_t)sizeof(*m) + len);
	if (!dst)
		return false;
	memcpy(dst, m, sizeof(*m));
	memcpy(dst + sizeof(*m), body, len);
	pm_ring_commit(r);
	return true;
}

void pm_wake(struct pm_daemon *d, uint32_t to)
{
	atomic_thread_fence(memory_order_seq_cst); /* the message before the flag's read */
	if (atomic_load_explicit(&d->workers[to].sleeping, memory_order_relaxed)) {
		uint64_t one = 1;
		ssize_t n = write(d->workers[to].wake_fd, &one, sizeof(one));
		(void)n; /* a full eventfd counter already wakes it */
	}
}

bool pm_post(struct pm_worker *w, uint32_t to, uint32_t type, const struct pm_msg *m,
	     const uint8_t *body, uint32_t len)
{
	if (!pm_ring_send(pm_ring_between(w->d, w->id, to), type, m, body, len)) {
		w->stats.dropped_ring_full++;
		return false;
	}
	pm_wake(w->d, to);
	return true;
}

void pm_post_admin(struct pm_worker *w, const struct pm_msg *m, const uint8_t *body,
		   uint32_t len)
{
	struct pm_daemon *d = w->d;
	if (!pm_ring_send(&d->admin_out[w->id], PM_MSG_ADMIN_REPLY, m, body, len)) {
		w->stats.dropped_ring_full++; /* the admin command times out */
		return;
	}
	uint64_t one = 1;
	ssize_t n = write(d->admin_efd, &one, sizeof(one));
	(void)n;
}

/* ---------------------------------------------------------------- reading */

static bool ring_empty(struct pm_ring *r)
{
	return atomic_load_explicit(&r->head, memory_order_acquire) ==
	       atomic_load_explicit(&r->tail, memory_order_relaxed);
}

bool pm_rings_empty(struct pm_worker *w)
{
	if (w->d->admin_in && !ring_empty(&w->d->admin_in[w->id]))
		return false;
	for (uint32_t from = 0; from < w->d->nshards; from++)
		if (from != w->id && !ring_empty(pm_ring_between(w->d, from, w->id)))
			return false;
	return true;
}

/* ---------------------------------------------------------------- reply credit */

/* A waiting reply: [u32 bytes of the record, u32 bytes of the frames, pm_msg,
 * frames], aligned for the pm_msg's u64. */
#define WAIT_HEAD_BYTES 8u
#define WAIT_ALIGN_BYTES 8u

/* Bytes of credit a reply of at most `owed` bytes takes: its waiting record. */
static uint32_t reply_credit(uint32_t owed)
{
	return (uint32_t)pm_align_up(WAIT_HEAD_BYTES + sizeof(struct pm_msg) + owed, WAIT_ALIGN_BYTES);
}

_Static_assert(WAIT_HEAD_BYTES + sizeof(struct pm_msg) + PM_FRAME_BYTES_MAX + WAIT_ALIGN_BYTES <=
		       PM_TCP_CREDIT_BYTES,
	       "the credit holds the largest forwarded reply");

bool pm_forward_fits(struct pm_worker *w, uint32_t owner, uint32_t len, uint32_t owed)
{
	return w->tcp_credit[owner] + reply_credit(owed) <= PM_TCP_CREDIT_BYTES &&
	       pm_ring_fits(pm_ring_between(w->d, w->id, owner),
			    (uint32_t)sizeof(struct pm_msg) + len);
}

void pm_credit_take(struct pm_worker *w, uint32_t owner, uint32_t owed)
{
	w->tcp_credit[owner] += reply_credit(owed);
}

void pm_credit_return(struct pm_worker *w, uint32_t from, uint32_t owed)
{
	uint32_t credit = reply_credit(owed);
	PM_DEBUG_ASSERT(w->tcp_credit[from] >= credit);
	w->tcp_credit[from] -= PM_MIN(w->tcp_credit[from], credit);
}

/* ---------------------------------------------------------------- replies that wait for a ring */

/* With TCP: a queue per other worker for the replies to its connections that
 * find the ring to it full (mapped, so not resident until one does). */
int pm_reply_wait_alloc(struct pm_worker *w)
{
	uint32_t n = w->d->nshards;
	if (w->d->listen_fd < 0)
		return 0;
	w->reply_wait = calloc(n, sizeof(*w->reply_wait));
	if (!w->reply_wait)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		void *p = i == w->id ? NULL
				     : mmap(NULL, PM_TCP_CREDIT_BYTES, PROT_READ | PROT_WRITE,
					    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return -ENOMEM;
		w->reply_wait[i].buf = p;
	}
	return 0;
}

void pm_reply_wait_free(struct pm_worker *w)
{
	for (uint32_t i = 0; w->reply_wait && i < w->d->nshards; i++)
		if (w->reply_wait[i].buf)
			munmap(w->reply_wait[i].buf, PM_TCP_CREDIT_BYTES);
	free(w->reply_wait);
	w->reply_wait = NULL;
}

/* Queue a reply behind those waiting for the ring to `to`, compacting the
 * queue first when its end is reached; false if it does not fit, which the
 * credit rules out: everything in it is owed to `to`'s connections, within
 * the PM_TCP_CREDIT_BYTES `to` allows. */
static bool wait_push(struct pm_reply_wait *q, const struct pm_msg *m, const uint8_t *frames,
		      uint32_t len)
{
	uint32_t rec = reply_credit(len);
	if (PM_TCP_CREDIT_BYTES - q->tail < rec) {
		memmove(q->buf, q->buf + q->head, q->tail - q->head);
		q->tail -= q->head;
		q->head = 0;
	}
	if (PM_TCP_CREDIT_BYTES - q->tail < rec)
		return false;
	uint32_t head[2] = { rec, len };
	memcpy(q->buf + q->tail, head, sizeof(head));
	memcpy(q->buf + q->tail + WAIT_HEAD_BYTES, m, sizeof(*m));
	memcpy(q->buf + q->tail + WAIT_HEAD_BYTES + sizeof(*m), frames, len);
	q->tail += rec;
	q->high = PM_MAX(q->high, q->tail);
	return true;
}

/* The queue drained: it starts over, and the pages it used past the first
 * go back to the kernel (it fills only while a ring is full). */
static void wait_drained(struct pm_reply_wait *q)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	if (q->high > page)
		(void)madvise(q->buf + page, pm_align_up(q->high, page) - page, MADV_DONTNEED);
	q->head = q->tail = q->high = 0;
}

void pm_post_tcp_reply(struct pm_worker *w, uint32_t to, const struct pm_msg *m,
		       const uint8_t *frames, uint32_t len)
{
	struct pm_reply_wait *q = &w->reply_wait[to];
	if (q->head == q->tail &&
	    pm_ring_send(pm_ring_between(w->d, w->id, to), PM_MSG_TCP_REPLY, m, frames, len)) {
		pm_wake(w->d, to);
		return;
	}
	if (!wait_push(q, m, frames, len)) {
		w->stats.dropped_ring_full++; /* cannot happen while the credit holds */
		return;
	}
	w->stats.tcp_replies_held++;
}

uint32_t pm_reply_wait_flush(struct pm_worker *w)
{
	uint32_t waiting = 0;
	for (uint32_t to = 0; w->reply_wait && to < w->d->nshards; to++) {
		struct pm_reply_wait *q = &w->reply_wait[to];
		struct pm_ring *r = pm_ring_between(w->d, w->id, to);
		uint32_t sent = 0;
		while (q->head < q->tail) {
			uint32_t head[2];
			memcpy(head, q->buf + q->head, sizeof(head));
			const struct pm_msg *m = (const struct pm_msg *)(q->buf + q->head + WAIT_HEAD_BYTES);
			if (!pm_ring_send(r, PM_MSG_TCP_REPLY, m, (const uint8_t *)(m + 1), head[1]))
				break;
			q->head += head[0];
			sent++;
		}
		if (sent)
			pm_wake(w->d, to);
		if (q->head == q->tail && q->high)
			wait_drained(q);
		waiting += q->head < q->tail;
	}
	return waiting;
}
