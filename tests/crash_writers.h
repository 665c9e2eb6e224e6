/* SPDX-License-Identifier: MIT
 *
 * crash_writers.h — writer threads that know what each of their keys may
 * hold after a crash, and the check after a restart: shared by
 * test_durability (pomaid SIGKILLed) and test_powerloss (the power cut under
 * it).
 *
 * What a writer knows of each of its keys: the state it was last
 * acknowledged with (a value, or deleted), and at most one later write it
 * sent without an acknowledgement — the one in flight at the crash, or one
 * that failed, after which the writer sends nothing more that run. A writer
 * never has two writes to one key in flight, so the acknowledgements of a
 * key come in the order its writes were sent. After a restart the key must
 * hold the acknowledged state or the unacknowledged one; whichever it holds
 * is then known to be in the log and becomes the state later runs expect.
 * (A check while pomaid runs settles nothing: a read may see a write whose
 * record still waits, e.g. for disk space.)
 *
 * Values are made from the run's seed, the writer, the key and the version,
 * so that a replayed seed writes the same bytes and a wrong value is told
 * from a lost one. Writers wait for their replies (pm_client_poll); the main
 * thread waits for a count of acknowledgements on a condition variable with
 * a deadline: nothing sleeps to synchronise.
 */
#ifndef POMAI_TESTS_CRASH_WRITERS_H
#define POMAI_TESTS_CRASH_WRITERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "pomai.h"
#include "proc.h"

/* Writer threads of a run, at most. */
#define CW_WRITERS_MAX 4u
/* Writes each writer keeps in flight, and GETs each checker does. */
#define CW_WRITER_DEPTH 16u
#define CW_CHECK_DEPTH 32u
/* Request contexts per writer: at least the larger depth. */
#define CW_OPS_MAX 64u
/* Key numbers a writer may use ("t<writer>:<n>", n below this). */
#define CW_KEYS_PER_WRITER_MAX 32768u
/* A key's name, at most (with the NUL). */
#define CW_KEY_BYTES 32u
/* Writer mix, in percent: new keys, overwrites, then deletes. */
#define CW_MIX_NEW_PCT 65u
#define CW_MIX_DEL_PCT 12u
/* How long the main thread waits for a run's acknowledgements: a start-up
 * replaying a long log, and a disk slowed by other work, under ASan. */
#define CW_ACK_WAIT_MS 60000
/* Mismatches printed per writer (all are counted). */
#define CW_MISMATCHES_PRINTED 5u

_Static_assert(CW_OPS_MAX >= CW_WRITER_DEPTH && CW_OPS_MAX >= CW_CHECK_DEPTH,
	       "a context for every request in flight");

/* What a writer knows of one of its keys. */
struct cw_key {
	uint32_t ver;          /* writes sent so far; the i-th has version i */
	uint32_t known;        /* version of the state known to be there (0: none) */
	uint32_t maybe;        /* a version sent but not acknowledged (0: none) */
	bool known_del, maybe_del, inflight;
};

struct cw_writer;

struct cw_op {
	struct cw_writer *w;
	uint32_t n, ver;
	bool del;
};

/* One run of the writers, shared with the main thread, and what every
 * writer of a test shares. */
struct cw_run {
	pthread_mutex_t mu;
	pthread_cond_t cv;     /* on CLOCK_MONOTONIC */
	atomic_uint_fast64_t acked, sent, done, acked_after_cut;
	uint64_t target;       /* the main thread is woken when acked reaches it */
	atomic_bool stop;      /* finish what is in flight, then end */
	atomic_bool cut;       /* the power is off: failures are expected, acks still count */
	atomic_bool killed;    /* pomaid is dead: drop what is in flight and end */
	unsigned live;         /* writer threads still running */
	bool check_settles;    /* a check after a restart: what it finds is in the log */
	/* the test's */
	uint64_t seed;         /* values are made from it */
	uint32_t probe_keys;   /* key numbers past the last one sent, probed: absent */
	uint32_t in_flight;    /* each writer's client: max_in_flight */
	const char *test;      /* for messages: which test, which round */
	unsigned round;
};

struct cw_writer {
	struct cw_run *run;
	uint32_t id;
	uint32_t value_max;     /* values of 1..value_max bytes */
	bool full_expected;     /* E_DISK_FULL is the expected end of this run */
	uint64_t rng;
	struct cw_key *keys;    /* CW_KEYS_PER_WRITER_MAX */
	uint32_t next_new;      /* key numbers below it have been used */
	struct pm_client *c;
	struct cw_op ops[CW_OPS_MAX];
	struct cw_op *free_ops[CW_OPS_MAX];
	uint32_t nfree;
	bool stopped;           /* a write failed: nothing more is sent this run */
	uint8_t val[PM_CLIENT_VALUE_BYTES_MAX];  /* the value being sent */
	uint8_t want[PM_CLIENT_VALUE_BYTES_MAX]; /* a value checked against */
	/* this run */
	uint64_t acked, sent, failed, full, checked, mismatches;
	enum pm_client_status first_err, last_err;
	uint32_t first_err_key, full_key;
};

/* The run's lock and condition variable (CLOCK_MONOTONIC), and the test's
 * seed, probe keys and client depth. */
void cw_run_init(struct cw_run *r, uint64_t seed, uint32_t probe_keys, uint32_t in_flight);
/* A writer with no key used yet (a fatal assertion if its keys cannot be
 * allocated); cw_writer_free() gives them back. */
void cw_writer_init(struct cw_writer *w, struct cw_run *r, uint32_t id, uint32_t value_max);
void cw_writer_free(struct cw_writer *w);
/* A new run of one writer: counters cleared, contexts free, a client of d. */
bool cw_writer_begin(struct cw_writer *w, const struct pomaid *d, uint64_t run_seed);
/* Its client closed: requests in flight are dropped and stay "maybe". */
void cw_writer_end(struct cw_writer *w);
/* Key n's name into out (CW_KEY_BYTES); its length. */
int cw_key_name(uint32_t writer, uint32_t n, char *out);
/* Send the next version of key n of w: a SET, or a DEL. */
void cw_write_key(struct cw_writer *w, uint32_t n, bool del);

/* Start nw writers (threads t) on d toward `target` acknowledgements; false
 * (none running) if a client could not open. */
bool cw_start(struct cw_run *r, struct cw_writer *ws, uint32_t nw, pthread_t *t,
	      const struct pomaid *d, uint64_t run_seed, uint64_t target);
/* Wait (at most CW_ACK_WAIT_MS) until `want` writes are acknowledged or every
 * writer has ended; with quiet, until every writer has ended. */
void cw_wait(struct cw_run *r, uint64_t want, bool quiet);
/* pomaid is dead (or the run is over): the writers drop what is in flight
 * and end, their clients closed. */
void cw_join(struct cw_run *r, struct cw_writer *ws, uint32_t nw, pthread_t *t);
/* GET every key number each of nw writers used, and probe_keys past them,
 * against what it may hold; with settle, what a key holds becomes what it is
 * known to hold. The keys that disagree (printed, the first few); *keys: how
 * many were checked. */
uint64_t cw_check(struct cw_run *r, struct cw_writer *ws, uint32_t nw, const struct pomaid *d,
		  bool settle, uint64_t *keys);

#endif
