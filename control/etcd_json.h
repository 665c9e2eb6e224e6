/* SPDX-License-Identifier: MIT
 *
 * control/etcd_json.h — the JSON half of the etcd client (control/etcd.h):
 * the request bodies built and the answers checked, without any network, so
 * that tests/test_etcd.c and tests/fuzz/fuzz_etcd.c reach them directly.
 * Internal to pomai-control; its agent uses etcd.h only.
 *
 * What etcd 3.4's gateway sends (measured: /work/notes/cluster-plan.md §2):
 * keys and values are standard base64 with padding; every int64 is a JSON
 * string (a number is accepted too); proto3 zero values are left out (a
 * failed txn has no "succeeded", a range that found nothing no "kvs", a
 * keepalive of a dead lease no "TTL", a PUT event no "type"), so every such
 * field is optional with its zero default here. Streaming calls wrap each
 * message in {"result":…} and end it with '\n'; a stream's error is
 * {"error":{…,"message":…}}; a unary call's error is HTTP 4xx/5xx with
 * {"error","message","code"}.
 *
 * Every parser takes the body as it came (at most PM_ETCD_MSG_BYTES_MAX
 * bytes), returns an enum pm_etcd_rc and, on an error, one line of text in
 * err (never more than errlen bytes, always NUL-terminated). What it hands
 * back is the caller's to free (pm_etcd_kvs_free, pm_etcd_wmsg_free) only
 * when it returned OK or FAILED; on an error nothing is left allocated.
 */
#ifndef POMAI_CONTROL_ETCD_JSON_H
#define POMAI_CONTROL_ETCD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd.h"

/* Bytes of one error line (pm_etcd_error()): the URL and path, curl's or
 * etcd's message (etcd's are below 100 bytes), and what was wrong. */
#define PM_ETCD_ERR_BYTES 512u
/* Bytes of a value a request may carry: its base64 (4/3 of it) and the rest
 * of the request must fit PM_ETCD_MSG_BYTES_MAX, the bound of the answer
 * that will carry it back. */
#define PM_ETCD_VALUE_BYTES_MAX ((PM_ETCD_MSG_BYTES_MAX - 4096u) / 4u * 3u)

/* ---------------------------------------------------------------- base64 */

/* Standard alphabet with padding, as Go's encoding/json writes []byte. */
size_t pm_etcd_b64_len(size_t n);
/* n bytes at p into out (pm_etcd_b64_len(n) + 1 bytes with the NUL). */
void pm_etcd_b64_encode(const void *p, size_t n, char *out);
/* Strict: the length a multiple of 4, the alphabet, '=' only as the last one
 * or two, the unused bits of the last group zero (what an encoder writes,
 * and nothing else). out holds len / 4 * 3 bytes; *n the bytes decoded.
 * 0, or -1. */
int pm_etcd_b64_decode(const char *s, size_t len, uint8_t *out, size_t *n);

/* ---------------------------------------------------------------- requests */

/* Each builds one request body into *out (malloc'd, NUL-terminated: the
 * caller frees it). E_ARG (err says why) for a bad argument: a key NULL,
 * empty or past PM_ETCD_KEY_BYTES_MAX, a range_end past it, a value past
 * PM_ETCD_VALUE_BYTES_MAX, too many compares or operations; a range_end ""
 * (etcd would read it as every key from key on: never sent). int64s are
 * sent as strings. */
int pm_etcd_req_grant(int64_t ttl_s, char **out, char *err, size_t errlen);
/* {"ID":"<id>"}: keepalive and revoke. */
int pm_etcd_req_lease(int64_t id, char **out, char *err, size_t errlen);
/* A range asks for at most PM_ETCD_KVS_MAX keys (limit). */
int pm_etcd_req_range(const char *key, const char *range_end, char **out, char *err,
		      size_t errlen);
int pm_etcd_req_put(const char *key, const void *value, size_t len, int64_t lease, char **out,
		    char *err, size_t errlen);
int pm_etcd_req_delete(const char *key, const char *range_end, char **out, char *err,
		       size_t errlen);
int pm_etcd_req_txn(const struct pm_etcd_txn *t, char **out, char *err, size_t errlen);
/* The watch's create_request: prev_kv and progress_notify asked for. */
int pm_etcd_req_watch(const char *key, const char *range_end, int64_t start_revision,
		      char **out, char *err, size_t errlen);

/* ---------------------------------------------------------------- answers */

/* An answer whose HTTP status is not 200: LEASE_GONE for etcd's code 5
 * ("requested lease not found"), else E_HTTP; err holds the status and
 * etcd's message (or the body's first bytes when it is not etcd's JSON). */
int pm_etcd_ans_error(long http, const char *body, size_t len, char *err, size_t errlen);
/* lease/grant: the ID (> 0) and the TTL granted (> 0). */
int pm_etcd_ans_grant(const char *body, size_t len, int64_t *id, int64_t *ttl_s, char *err,
		      size_t errlen);
/* lease/keepalive of lease id: OK with *ttl_s > 0, LEASE_GONE (no TTL). */
int pm_etcd_ans_keepalive(const char *body, size_t len, int64_t id, int64_t *ttl_s, char *err,
			  size_t errlen);
/* An answer of a header alone (put, revoke): its revision (may be NULL). */
int pm_etcd_ans_header(const char *body, size_t len, int64_t *revision, char *err,
		       size_t errlen);
int pm_etcd_ans_range(const char *body, size_t len, struct pm_etcd_kvs *out, char *err,
		      size_t errlen);
/* deleterange: *deleted (may be NULL), *revision (may be NULL). */
int pm_etcd_ans_delete(const char *body, size_t len, int64_t *deleted, int64_t *revision,
		       char *err, size_t errlen);
/* txn t's answer: OK or FAILED; the branch's responses must be one per
 * operation, of its kind. ranges (may be NULL): the RANGE operations' kvs in
 * order, at most PM_ETCD_KVS_MAX in all; its revision the header's. */
int pm_etcd_ans_txn(const char *body, size_t len, const struct pm_etcd_txn *t,
		    int64_t *revision, struct pm_etcd_kvs *ranges, char *err, size_t errlen);

/* ---------------------------------------------------------------- the watch stream */

/* The gateway writes one compact JSON object per message, then '\n' (it
 * base64s every key and value, so no raw '\n' occurs inside one). The
 * splitter keeps the part of a line that has come in a buffer of cap bytes
 * (PM_ETCD_MSG_BYTES_MAX for the watch): a line of cap bytes is whole, one
 * byte more ends the stream with an error (sticky until reset), never a
 * larger buffer. Empty lines are skipped. */
struct pm_etcd_lines {
	char *buf;
	size_t cap, len;
	bool over;
};
typedef int (*pm_etcd_line_fn)(void *arg, const char *line, size_t len);
/* 0, or -1 (no memory). */
int pm_etcd_lines_init(struct pm_etcd_lines *l, size_t cap);
void pm_etcd_lines_free(struct pm_etcd_lines *l);
void pm_etcd_lines_reset(struct pm_etcd_lines *l);
/* n bytes of the stream: fn(arg, line, len) for every line they complete
 * (without its '\n'). 0; -1 once a line is past cap (then and after); or
 * fn's nonzero return (the bytes after that line are not taken). */
int pm_etcd_lines_feed(struct pm_etcd_lines *l, const char *p, size_t n, pm_etcd_line_fn fn,
		       void *arg);

/* One watch message. */
enum pm_etcd_wkind {
	PM_ETCD_W_CREATED,  /* the watch is on from revision (if no start_revision) */
	PM_ETCD_W_PROGRESS, /* a header alone: everything up to revision was sent */
	PM_ETCD_W_EVENTS,   /* n >= 1 events */
};
struct pm_etcd_wevent {
	bool deleted;
	bool has_prev;
	struct pm_etcd_kv kv, prev;
};
struct pm_etcd_wmsg {
	enum pm_etcd_wkind kind;
	int64_t revision; /* the header's (0: left out) */
	struct pm_etcd_wevent *ev;
	uint32_t n;
};
/* OK; E_HTTP when etcd ended the watch (canceled: err says why, with the
 * compact revision for a compacted start; or the stream's error object);
 * E_PROTO for anything else. */
int pm_etcd_ans_watch(const char *line, size_t len, struct pm_etcd_wmsg *m, char *err,
		      size_t errlen);
void pm_etcd_wmsg_free(struct pm_etcd_wmsg *m);

#endif
