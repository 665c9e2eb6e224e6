/* SPDX-License-Identifier: MIT
 *
 * cluster.h — pomaid in a cluster (cluster = on; docs/cluster.md). pomaid
 * never speaks to etcd: its pomai-control tells it, on the admin socket,
 *  - the slot map (CLUSTER MAP): from then on a keyed request whose slot
 *    belongs to another replica set is answered MOVED (naming that set's
 *    primary), and the MAP operation returns the map's wire form;
 *  - its write lease (CLUSTER LEASE): a CLOCK_BOOTTIME instant until which
 *    this node, when it is its set's primary, may admit writes. Past it,
 *    writes get READONLY — pomaid fences itself even when its pomai-control
 *    is stopped, killed or cut off from etcd (the lease's deadline is set
 *    before etcd's lease can expire: control/cluster.c).
 *
 * The map a worker uses is an immutable view, handed to each worker by an
 * admin call between two of its turns (w->cview); the previous view is freed
 * once every worker has taken the new one. The lease's deadline is one
 * atomic read per write, held against the clock read once per turn
 * (w->boot_ms): a write that comes after CLUSTER LEASE's reply is judged by
 * that lease, and 0 fences at once.
 */
#ifndef POMAI_DATAPLANE_CLUSTER_H
#define POMAI_DATAPLANE_CLUSTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster_map.h"
#include "codec.h"

struct pm_daemon;
struct pm_worker;
struct pm_request;
struct pm_dest;

/* The longest write lease one CLUSTER LEASE may grant from now: the largest
 * lease_ttl_ms pomai-control accepts. A deadline further out is refused, so
 * a wrong clock or a bug cannot make a node writable for long without etcd. */
#define PM_CLUSTER_LEASE_MS_MAX 60000u
/* Keys (with a u16 length each) a worker notes as changed in the slots it
 * is moving out, at most: past it changes to those slots are answered BUSY
 * (clients retry) until the copier has taken the list. 1 MiB per worker
 * holds tens of thousands of keys changed during one copy pass. */
#define PM_CLUSTER_DIRTY_BYTES (1u << 20)
/* Seed slots one CLUSTER EXPORT or PURGE call walks on a worker, and the
 * frames one EXPORT answers with at most: a worker answers between two of
 * its turns, so a call's work is bounded (about a millisecond). */
#define PM_CLUSTER_EXPORT_SEEDS 4096u
#define PM_CLUSTER_EXPORT_BYTES (256u << 10)
/* Keys one PURGE call deletes at most (each a logged DEL or VDEL). */
#define PM_CLUSTER_PURGE_KEYS 128u
/* What an EXPORT or PURGE answers before its frames: u32 next cursor, u32
 * flags, u32 keys. */
#define PM_CLUSTER_EXPORT_HEAD_BYTES 12u
#define PM_CLUSTER_EXPORT_DONE 0x1u     /* the walk passed the last seed slot */
/* Changed keys were lost: walk again. No longer set (a full list refuses
 * changes instead: a walk cannot bring a deletion over); pomai-control still
 * walks again when an older pomaid says it. */
#define PM_CLUSTER_EXPORT_OVERFLOW 0x2u
/* The file in data_dir holding the last map (and this node's name in it), so
 * that a restarted node answers MOVED and MAP while etcd is unreachable. */
#define PM_CLUSTER_MAP_FILE "cluster.map"

/* One map as the workers use it (immutable once published). */
struct pm_cluster_view {
	struct pm_cmap map;
	uint16_t self, set;   /* this node's index and its set's (PM_CMAP_NONE: not in it) */
	uint32_t slots_owned;
	struct pm_wire_primary primary[PM_CLUSTER_SETS_MAX]; /* each set's, for MOVED */
	uint32_t wire_len;
	uint8_t wire[PM_CMAP_WIRE_BYTES_MAX]; /* the MAP reply's body */
	size_t text_len;
	char text[PM_CLUSTER_MAP_TEXT_BYTES_MAX]; /* the document, as received */
};

/* A key a PURGE step deletes. */
struct pm_cluster_gone {
	bool vector;
	uint16_t klen;
	uint8_t key[PM_WIRE_KEY_BYTES_MAX];
};

/* A worker's keys changed in slots it moves out (u16 length + bytes each),
 * and its PURGE step's keys. */
struct pm_cluster_dirty {
	uint8_t *buf; /* PM_CLUSTER_DIRTY_BYTES */
	uint32_t len;
	struct pm_cluster_gone *gone; /* PM_CLUSTER_PURGE_KEYS */
};

struct pm_cluster {
	_Atomic uint64_t lease_until_ms; /* CLOCK_BOOTTIME ms; 0: fenced */
	struct pm_cluster_view *view;    /* the admin thread's; NULL before the first map */
	char self[PM_CLUSTER_NAME_BYTES_MAX + 1];
};

/* cluster = on: check the configuration it needs, load data_dir/cluster.map
 * if there is one, and give its view to every worker. Before the workers
 * start. 0, or -1 with a message. */
int pm_cluster_open(struct pm_daemon *d, char *err, size_t errlen);
void pm_cluster_close(struct pm_daemon *d);

/* Admin thread: CLUSTER LEASE / MAP / STATUS. Each writes its reply text
 * (or its error) into out, at most cap bytes; 0 (OK), -1 (ERROR) or -2
 * (the daemon did not answer in time: UNAVAILABLE). */
int pm_cluster_lease(struct pm_daemon *d, uint64_t until_ms, char *out, size_t cap);
int pm_cluster_map(struct pm_daemon *d, const char *self, const char *text, size_t len,
		   char *out, size_t cap);
int pm_cluster_status(struct pm_daemon *d, char *out, size_t cap);
/* CLOCK_BOOTTIME in ms: the clock of the lease (it runs through a suspend,
 * as etcd's does). */
uint64_t pm_cluster_now_ms(void);

/* Worker: once per turn (w->boot_ms); whether the write lease admits a write
 * now; and whether a keyed request must be answered MOVED — true when it was
 * (the reply has gone to from). */
void pm_cluster_turn(struct pm_worker *w);
bool pm_cluster_may_write(const struct pm_worker *w);
bool pm_cluster_moved(struct pm_worker *w, const struct pm_request *req, uint64_t hash,
		      const struct pm_dest *from);
/* Worker: may this write go on under the map's moves? BUSY for a slot being
 * frozen; a slot being copied out has its key noted as changed. PM_OK
 * otherwise. */
enum pm_status pm_cluster_admit(struct pm_worker *w, const struct pm_request *req);
/* Worker: an EXPORT or PURGE admin call (admin.h) answered into out (cap
 * bytes): its bytes; *rc 0 or -errno. */
struct pm_admin_call;
uint32_t pm_cluster_call(struct pm_worker *w, const struct pm_admin_call *c, uint8_t *out,
			 uint32_t cap, int32_t *rc);
/* Worker: whether a KNN hit's key belongs to this node's set (a node holds
 * copies of other sets' keys while they move). */
bool pm_cluster_owns(const struct pm_worker *w, const uint8_t *key, uint32_t klen);

/* Worker: a MAP request's reply (the view's wire form, or NOT_FOUND). */
void pm_cluster_serve_map(struct pm_worker *w, const struct pm_request *req,
			  const struct pm_dest *from);

#endif
