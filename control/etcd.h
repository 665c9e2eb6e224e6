/* SPDX-License-Identifier: MIT
 *
 * control/etcd.h — pomai-control's client of etcd's v3 API, spoken as JSON
 * over HTTP/1.1 to the gRPC gateway (`POST /v3/kv/range`, `/v3/kv/txn`,
 * `/v3/lease/grant`, `/v3/lease/keepalive`, `/v3/watch`, …; docs/cluster.md).
 * libcurl carries the requests (connections kept alive between calls,
 * per-call timeouts, http:// or https:// endpoints); jansson builds and
 * checks the JSON. Keys and values are base64 on the wire and plain bytes
 * here; every int64 of etcd's is a JSON string on the wire and an int64_t
 * here.
 *
 * A handle is one thread's: calls on it are synchronous, each bounded by its
 * timeout_ms. pomai-control's agent keeps two (the lease keeper's and the
 * reconciler's), so a keepalive never waits behind a transaction or the
 * watch. A call that fails on the network (connect refused, timeout, a cut
 * connection) moves the handle to the next endpoint for the next call.
 *
 * Every answer is checked for its shape: an answer that is not the JSON
 * etcd sends, or breaks a bound, is PM_ETCD_E_PROTO with the reason in
 * pm_etcd_error(), never a crash or an allocation past PM_ETCD_MSG_BYTES_MAX.
 */
#ifndef POMAI_CONTROL_ETCD_H
#define POMAI_CONTROL_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Endpoints of one etcd cluster a handle knows, at most. */
#define PM_ETCD_ENDPOINTS_MAX 8u
/* Bytes of one endpoint URL ("http://127.0.0.1:2379"). */
#define PM_ETCD_URL_BYTES_MAX 256u
/* Bytes of one answer (or one watch message), at most: etcd's own request
 * bound is 1.5 MiB by default; our largest value (the slot map) is below
 * 64 KiB, base64 makes it 4/3 of that. */
#define PM_ETCD_MSG_BYTES_MAX (1u << 20)
/* Keys a range (or a txn's ranges) returns, at most: what one cluster's
 * prefix holds (nodes, sets, candidates, collections) with room to spare. */
#define PM_ETCD_KVS_MAX 4096u
/* Bytes of a key. */
#define PM_ETCD_KEY_BYTES_MAX 512u
/* Compares and operations of one transaction, at most. */
#define PM_ETCD_TXN_OPS_MAX 8u

enum pm_etcd_rc {
	PM_ETCD_OK = 0,
	PM_ETCD_FAILED = 1,     /* txn: a compare failed (the failure branch ran) */
	PM_ETCD_LEASE_GONE = 2, /* keepalive: the lease has expired or was revoked;
				 * put/txn/revoke naming a dead lease (etcd code 5) */
	PM_ETCD_E_NET = -1,     /* no answer: connect failed, timeout, connection cut */
	PM_ETCD_E_HTTP = -2,    /* etcd answered with an error (HTTP status != 200) */
	PM_ETCD_E_PROTO = -3,   /* the answer is not what etcd sends, or breaks a bound */
	PM_ETCD_E_ARG = -4,     /* a bad argument (key too long, too many ops) */
};

struct pm_etcd_kv {
	char *key;      /* NUL-terminated copy (keys are text here) */
	uint8_t *value; /* value_len bytes, plus a NUL after them */
	size_t value_len;
	int64_t create_revision, mod_revision, version, lease;
};

struct pm_etcd_kvs {
	struct pm_etcd_kv *kv;
	uint32_t n;
	int64_t revision; /* the answer's header revision */
};
void pm_etcd_kvs_free(struct pm_etcd_kvs *kvs);

struct pm_etcd;

/* endpoints: comma-separated http(s) URLs. NULL (err says why) when the list
 * is empty, too long or a URL is malformed, or libcurl cannot start. */
struct pm_etcd *pm_etcd_open(const char *endpoints, char *err, size_t errlen);
void pm_etcd_close(struct pm_etcd *e);
/* The last failure, one line ("http://…: connect refused"; "" after success). */
const char *pm_etcd_error(const struct pm_etcd *e);
/* The endpoint the next call goes to. */
const char *pm_etcd_endpoint(const struct pm_etcd *e);

/* Leases. ttl in whole seconds. grant: *id and the TTL etcd granted (it may
 * raise it to its minimum). keepalive: OK with *ttl_s > 0, or LEASE_GONE. */
int pm_etcd_grant(struct pm_etcd *e, int64_t ttl_s, int64_t *id, int64_t *granted_s,
		  int timeout_ms);
int pm_etcd_keepalive(struct pm_etcd *e, int64_t id, int64_t *ttl_s, int timeout_ms);
int pm_etcd_revoke(struct pm_etcd *e, int64_t id, int timeout_ms);

/* Range: key alone (range_end NULL), or [key, range_end); a prefix's end is
 * pm_etcd_prefix_end(). */
int pm_etcd_range(struct pm_etcd *e, const char *key, const char *range_end,
		  struct pm_etcd_kvs *out, int timeout_ms);
/* Put (lease 0: none); *revision (may be NULL) the put's revision. */
int pm_etcd_put(struct pm_etcd *e, const char *key, const void *value, size_t len,
		int64_t lease, int64_t *revision, int timeout_ms);
/* Delete key alone or [key, range_end); *deleted (may be NULL). */
int pm_etcd_delete(struct pm_etcd *e, const char *key, const char *range_end, int64_t *deleted,
		   int timeout_ms);
/* The end of a prefix's range (the prefix with its last byte + 1) into out. */
void pm_etcd_prefix_end(const char *prefix, char *out, size_t cap);

/* Transactions: every compare is EQUAL. */
enum pm_etcd_target {
	PM_ETCD_CREATE, /* create_revision (0: the key does not exist) */
	PM_ETCD_MOD,    /* mod_revision */
	PM_ETCD_VERSION,
	PM_ETCD_VALUE,
	PM_ETCD_LEASE,
};
struct pm_etcd_cmp {
	const char *key;
	enum pm_etcd_target target;
	int64_t number;    /* CREATE, MOD, VERSION, LEASE */
	const void *value; /* VALUE */
	size_t value_len;
};
enum pm_etcd_op_kind { PM_ETCD_PUT, PM_ETCD_DELETE, PM_ETCD_RANGE };
struct pm_etcd_op {
	enum pm_etcd_op_kind kind;
	const char *key;
	const char *range_end; /* DELETE, RANGE: NULL for the key alone */
	const void *value;     /* PUT */
	size_t value_len;
	int64_t lease;         /* PUT: 0 none */
};
struct pm_etcd_txn {
	const struct pm_etcd_cmp *cmp;
	uint32_t ncmp;
	const struct pm_etcd_op *success, *failure;
	uint32_t nsuccess, nfailure;
};
/* OK (the success branch ran) or FAILED (the failure branch ran), else an
 * error. *revision (may be NULL): the answer's header revision. ranges (may
 * be NULL): every kv the branch's RANGE operations returned, in order. */
int pm_etcd_txn(struct pm_etcd *e, const struct pm_etcd_txn *t, int64_t *revision,
		struct pm_etcd_kvs *ranges, int timeout_ms);

/* The watch: one per handle, on key alone or [key, range_end), from
 * start_revision (0: now), with prev_kv and progress notifications asked for.
 * Its transfer runs only inside pm_etcd_watch_wait(), and other calls on
 * the same handle may be made between waits. */
struct pm_etcd_event {
	bool deleted; /* DELETE; else PUT */
	const struct pm_etcd_kv *kv;      /* for a DELETE: key and mod_revision only */
	const struct pm_etcd_kv *prev_kv; /* NULL if etcd sent none */
};
typedef void (*pm_etcd_event_fn)(void *arg, const struct pm_etcd_event *ev);

int pm_etcd_watch_start(struct pm_etcd *e, const char *key, const char *range_end,
			int64_t start_revision);
/* Wait up to timeout_ms for the watch: the events that came (each given to
 * fn, which may be NULL), 0 when none did (a progress message or nothing),
 * or an error when the watch ended (etcd closed it, the connection was cut,
 * it was cancelled: a compacted start revision) — then start it again from
 * *revision + 1 (after ranging what it covers, for a compacted one).
 * *revision: the highest revision the watch has seen (header or event). */
int pm_etcd_watch_wait(struct pm_etcd *e, int timeout_ms, pm_etcd_event_fn fn, void *arg,
		       int64_t *revision);
void pm_etcd_watch_stop(struct pm_etcd *e);
bool pm_etcd_watching(const struct pm_etcd *e);

#endif
