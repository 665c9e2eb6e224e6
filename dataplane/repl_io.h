/* SPDX-License-Identifier: MIT
 *
 * repl_io.h — replication (docs/replication.md; the stream's frames: proto/repl.h).
 *
 * Every shard replicates on its own: shard i of a replica holds one TCP
 * connection to shard i of its primary, and the primary's worker serves its
 * replicas' streams from its own polling loop with non-blocking I/O, a send
 * buffer of repl_send_bytes per replica (a replica past it is cut and
 * resyncs), never waiting for a replica. The stream is the shard's log: the
 * records the primary logged, in LSN order, each with its CRC, which the
 * replica checks, applies, logs at the same LSN in its own log, and
 * acknowledges (received, and durable once its log has them on disk).
 *
 * A replica that connects says which history it has (the id and epoch, and
 * its last durable LSN): the primary streams the log from there when it still
 * holds it (the segments on disk, read through the worker's io_uring; then
 * the batches as they are written), else a fuzzy snapshot of the shard
 * (engine/snapshot.h's format, filled between polling turns, as the local
 * snapshots are) followed by the log from the snapshot's start LSN.
 *
 * Who connects: the admin thread accepts on repl_port and reads the HELLO
 * (within PM_REPL_HELLO_MS), refuses a replica whose shard count differs, and
 * hands the connection to the worker of the shard the HELLO names.
 *
 * Roles are per node (REPLICATION FOLLOW / STOP / PROMOTE on the admin socket,
 * replica_of at start-up) and kept in data_dir/replication.state; a shard's
 * history (id, epoch, and where the history before a promotion ended) is in
 * data_dir/wal/shard-<i>/HISTORY.
 */
#ifndef POMAI_DATAPLANE_REPL_IO_H
#define POMAI_DATAPLANE_REPL_IO_H

#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repl.h"
#include "status.h"

struct pm_daemon;
struct pm_worker;
struct pm_msg;
struct pm_request;
struct pm_stats_shard;

/* A connection that has not said HELLO within this is closed (the admin
 * thread holds at most PM_REPL_PENDING_MAX of them). */
#define PM_REPL_HELLO_MS 2000u
#define PM_REPL_PENDING_MAX 16u
/* A primary pings each replica this often, also while it streams (the ping
 * carries its last LSN: the replica's lag in records); a link silent for
 * PM_REPL_TIMEOUT_MS either way is closed (and the replica reconnects). */
#define PM_REPL_PING_MS 200u
#define PM_REPL_TIMEOUT_MS 5000u
/* A replica that lost its link tries again after this, doubling up to the
 * most (a primary that is down is not hammered). */
#define PM_REPL_RETRY_MS 100u
#define PM_REPL_RETRY_MS_MAX 2000u
/* A shard reads its replication sockets when epoll says one is ready, and
 * at least this often (its timers: pings, timeouts). */
#define PM_REPL_IO_POLL_MS 10u
/* Bytes of log a primary reads from a segment at once for a replica that
 * catches up (one io_uring read): more than the largest record. */
#define PM_REPL_READ_BYTES (1u << 20)
/* Bytes a replica's link buffers from its primary: two of the largest frame. */
#define PM_REPL_LINK_BYTES (2u * PM_REPL_FRAME_BYTES_MAX)
/* A primary tells a replica's lag in ms from the times its log reached
 * given LSNs: one sample per PM_REPL_LAG_SAMPLE_MS at most (the last LSN
 * logged in that window), PM_REPL_LAG_SAMPLES of them — lags up to 2.56 s
 * to within 10 ms; a longer lag is reported as the oldest sample's age, a
 * lower bound. */
#define PM_REPL_LAG_SAMPLE_MS 10u
#define PM_REPL_LAG_SAMPLES 256u

enum pm_repl_role {
	PM_ROLE_PRIMARY = 0,
	PM_ROLE_REPLICA,   /* follows a primary */
	PM_ROLE_DETACHED,  /* REPLICATION STOP: follows none, takes no writes */
	PM_ROLE_FENCED,    /* a primary that met a later epoch: takes no writes until it follows */
};

/* What the admin thread asks a worker (PM_MSG_REPL_CTL). */
enum pm_repl_ctl_op { PM_REPL_CTL_FOLLOW = 1, PM_REPL_CTL_STOP, PM_REPL_CTL_PROMOTE,
		      PM_REPL_CTL_STATUS };
struct pm_repl_ctl {
	uint32_t op;
	struct sockaddr_in primary; /* FOLLOW */
	uint64_t epoch;             /* PROMOTE: the new epoch (the node's highest + 1) */
	uint64_t repl_id;           /* PROMOTE: the new history's id (the same on every shard) */
};
/* A worker's answer: its history now. */
struct pm_repl_ctl_reply {
	uint32_t role;
	uint64_t epoch, repl_id;
	uint64_t lsn;               /* the last record applied */
};

/* Start-up, before the workers run (after the log's recovery): the node's
 * role, each shard's history, the listener. 0, or -1 with a message. */
int pm_repl_open(struct pm_daemon *d, char *err, size_t errlen);
void pm_repl_close(struct pm_daemon *d);

/* ---------------------------------------------------------------- the worker */

/* One turn of the shard's replication: its replicas' streams (primary) or
 * its link (replica). Returns work done. */
uint32_t pm_repl_turn(struct pm_worker *w);
/* A connection the admin thread handed over (PM_MSG_REPL_CONN). */
void pm_repl_adopt(struct pm_worker *w, const uint8_t *body, uint32_t len);
/* An admin request (PM_MSG_REPL_CTL); answered with pm_post_admin. */
void pm_repl_ctl(struct pm_worker *w, const struct pm_msg *m, const uint8_t *body, uint32_t len);
/* Whether this shard changes its data but from its primary's log: a primary
 * (or a node without the log, which replicates nothing) does; a replica,
 * detached or fenced shard does not (nor evicts: its log is its primary's). */
bool pm_repl_takes_writes(const struct pm_worker *w);
/* A write may be applied here: PM_OK, PM_E_READONLY (not a primary) or
 * PM_E_NOREPLICAS (fewer than min_replicas replicas connected). */
enum pm_status pm_repl_admit(struct pm_worker *w, const struct pm_request *req);
/* Whether a write's reply must wait for replicas' acknowledgements. */
bool pm_repl_must_hold(const struct pm_worker *w);
/* The highest LSN min_replicas replicas have acknowledged as repl_ack asks. */
uint64_t pm_repl_acked_lsn(const struct pm_worker *w);
/* A batch of the log was submitted: records first..last, n bytes at p. */
void pm_repl_on_batch(struct pm_worker *w, const uint8_t *p, uint32_t n, uint64_t first,
		      uint64_t last);
/* The lowest LSN a replica still needs from the segments on disk
 * (UINT64_MAX: none): a published snapshot's clean-up keeps what it needs. */
uint64_t pm_repl_keep_lsn(const struct pm_worker *w);
/* The log's completion of one of replication's reads (OP_REPL). */
void pm_repl_on_cqe(struct pm_worker *w, uint64_t user_data, int res);
bool pm_repl_inflight(const struct pm_worker *w);
/* A replica's full sync is replacing the shard and its snapshots (or waits
 * to): no local snapshot starts meanwhile (snap_io.c). */
bool pm_repl_installing(const struct pm_worker *w);
uint32_t pm_repl_info(const struct pm_worker *w, char *out, uint32_t cap);
void pm_repl_counters(const struct pm_worker *w, struct pm_stats_shard *s);

/* ---------------------------------------------------------------- the admin thread */

/* The listener and the connections waiting for their HELLO: into pf (room
 * for 1 + PM_REPL_PENDING_MAX), their count. */
uint32_t pm_repl_admin_fds(struct pm_daemon *d, struct pollfd *pf);
/* After poll: accept, read HELLOs, hand them over, expire the slow ones. */
void pm_repl_admin_serve(struct pm_daemon *d, const struct pollfd *pf, uint32_t n);
/* The node's role as the admin thread knows it, and its persistence in
 * data_dir/replication.state (written when it changes). */
enum pm_repl_role pm_repl_node_role(const struct pm_daemon *d);
/* Connections to repl_port closed before a worker had them: from outside
 * allow_networks, past PM_REPL_PENDING_MAX, no HELLO in time, not a HELLO,
 * another shard count. */
uint64_t pm_repl_node_refused(const struct pm_daemon *d);
int pm_repl_node_save(struct pm_daemon *d, enum pm_repl_role role,
		      const struct sockaddr_in *primary);
/* A fresh history id (random, never 0). */
uint64_t pm_repl_new_id(void);

#endif
