/* SPDX-License-Identifier: MIT
 *
 * control.h — pomai-control, the control-plane process (docs/admin.md): its
 * limits, its configuration, its quota table and its own counters.
 *
 * pomai-control attaches to one pomaid — its admin socket (one persistent
 * connection) and its stats segment (mapped read-only) — and
 *  - serves the admin protocol on its own socket (mode 0600), forwarding each
 *    command to pomaid and its reply back, or UNAVAILABLE while detached;
 *  - asks for snapshots on its own schedule (snapshot_interval_s, and
 *    snapshot_wal_bytes of log written since the last one it asked for);
 *  - holds a quota table (its config's `quota` lines, and QUOTA SET / DEL sent
 *    to it), pushed to pomaid at every attach: a restarted pomaid gets it back;
 *  - serves Prometheus text at /metrics (control/metrics.h).
 *
 * One thread runs the admin socket, the attachment and the schedule; the HTTP
 * server runs its own (libmicrohttpd's) and reads the mapping under a mutex.
 * Its own limits live here; those it shares with pomaid are in proto/.
 */
#ifndef POMAI_CONTROL_CONTROL_H
#define POMAI_CONTROL_CONTROL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "admin_proto.h"

/* ---------------------------------------------------------------- limits */

/* Connections pomai-control's admin socket serves at once; one more is closed
 * at once (pomaid's PM_ADMIN_CONNS_MAX, for the same reason: a bounded
 * number of 1 MiB request buffers). */
#define CTL_CONNS_MAX 8u
/* The main loop's longest sleep: how late a due snapshot or an attach retry
 * may be, and how soon a replaced stats segment is noticed. */
#define CTL_TICK_MS 100
/* Bytes of one /metrics answer, at most: a segment of PM_STATS_SHARDS_MAX
 * shards, every counter 20 digits long, needs about 540 KiB
 * (tests/test_control_parts.c renders one). */
#define CTL_METRICS_BYTES_MAX (2u << 20)
/* HTTP connections the metrics server holds at once, and how long an idle one
 * may stay open. */
#define CTL_METRICS_CONNS_MAX 16u
#define CTL_METRICS_IDLE_S 10u
/* Bytes of a path in the configuration (a Unix socket path is shorter:
 * checked where it is used), of one config line, and of an error message. */
#define CTL_PATH_BYTES 256u
#define CTL_LINE_BYTES 1024u
#define CTL_ERR_BYTES 512u
/* A config file, at most: PM_QUOTA_OVERRIDES_MAX quota lines of ~60 bytes and the
 * keys fit in well under this. */
#define CTL_CONFIG_FILE_BYTES_MAX (1u << 20)

/* The etcd lease of a node (lease_ttl_ms): at least etcd's minimum TTL with
 * its default timing (2 s), at most a minute (pomaid's PM_CLUSTER_LEASE_MS_MAX:
 * the longest write lease it accepts), 3 s by default (a dead primary is
 * replaced in about 3.5 s; 2 s leaves a loaded machine little slack before a
 * spurious fence). Whole seconds: etcd's TTLs are. */
#define CTL_LEASE_TTL_MS_MIN 2000u
#define CTL_LEASE_TTL_MS_MAX 60000u
#define CTL_LEASE_TTL_MS_DEFAULT 3000u
#define CTL_NAME_BYTES 17u /* PM_CLUSTER_NAME_BYTES_MAX + 1 */

/* ---------------------------------------------------------------- configuration */

struct ctl_quota {
	uint32_t addr; /* IPv4, host byte order */
	uint64_t rps, bps;
};

struct ctl_config {
	char data_dir[CTL_PATH_BYTES];       /* pomaid's: its stats segment is there */
	char daemon_socket[CTL_PATH_BYTES];  /* empty: data_dir/admin.sock */
	char control_socket[CTL_PATH_BYTES]; /* empty: data_dir/control.sock */
	char users_file[CTL_PATH_BYTES];     /* empty: data_dir/control.users (issue 19) */
	uint32_t metrics_addr;               /* IPv4, host order */
	uint16_t metrics_port;               /* 0: no metrics server */
	uint32_t snapshot_interval_s;        /* 0: not on a timer */
	uint64_t snapshot_wal_bytes;         /* 0: not for log growth */
	uint32_t daemon_timeout_ms;          /* longest wait for one pomaid answer */
	uint32_t retry_ms;                   /* attach again / a refused snapshot again */
	/* the cluster (docs/cluster.md); etcd_endpoints empty: not in one */
	char etcd_endpoints[CTL_PATH_BYTES];
	char cluster_name[CTL_NAME_BYTES], node_name[CTL_NAME_BYTES], replica_set[CTL_NAME_BYTES];
	uint32_t advertise_addr;             /* IPv4, host order */
	uint32_t lease_ttl_ms;
	uint32_t nquotas;
	/* as many as a pomaid worker pins; each rate at most PM_QUOTA_RATE_PER_S_MAX
	 * (the bounds of QUOTA SET, proto/admin_proto.h) */
	struct ctl_quota quotas[PM_QUOTA_OVERRIDES_MAX];
};

void ctl_config_defaults(struct ctl_config *c);
/* One key (a flag's name with underscores) set from text; 0, or -1 with err. */
int ctl_config_set(struct ctl_config *c, const char *key, const char *value, char *err,
		   size_t errlen);
/* A `key = value` file over c; 0, or -1 with err naming the file and line. */
int ctl_config_load(struct ctl_config *c, const char *path, char *err, size_t errlen);
/* The same for len bytes of config text (a NUL byte is an error) whose errors
 * name `name`: what ctl_config_load uses, and the fuzzer. */
int ctl_config_parse(struct ctl_config *c, const char *name, const char *text, size_t len,
		     char *err, size_t errlen);
/* Every key as `key = value`, quotas last. */
void ctl_config_print(const struct ctl_config *c, FILE *f);
void ctl_config_usage(FILE *f);
/* The paths the empty defaults stand for. */
void ctl_daemon_socket(const struct ctl_config *c, char *out, size_t n);
void ctl_control_socket(const struct ctl_config *c, char *out, size_t n);
void ctl_stats_path(const struct ctl_config *c, char *out, size_t n);
void ctl_users_path(const struct ctl_config *c, char *out, size_t n);

/* "a.b.c.d" into *addr (host order); 0 or -1. */
int ctl_parse_ipv4(const char *s, uint32_t *addr);
void ctl_format_ipv4(uint32_t addr, char *out, size_t n);
/* A rate (decimal, no suffix) within 0..PM_QUOTA_RATE_PER_S_MAX; 0 or -1. */
int ctl_parse_rate(const char *s, uint64_t *rate);
/* Set (add or replace) or delete a quota; 0, or -1 when the table is full
 * (set) or holds no such address (delete). */
int ctl_quota_set(struct ctl_config *c, const struct ctl_quota *q);
int ctl_quota_del(struct ctl_config *c, uint32_t addr);

/* ---------------------------------------------------------------- own counters */

enum ctl_snap_reason { CTL_SNAP_INTERVAL = 0, CTL_SNAP_WAL_BYTES, CTL_SNAP_REASONS };

/* Written by the main thread, read by the metrics thread (relaxed: each is a
 * counter of its own, not part of a consistent set). */
struct ctl_counters {
	_Atomic uint64_t attaches, detaches, attach_failures;
	_Atomic uint64_t commands, command_errors, forwarded, unavailable;
	_Atomic uint64_t snapshots_requested[CTL_SNAP_REASONS], snapshot_errors;
	_Atomic uint64_t quota_pushes, quota_push_errors, quotas;
	_Atomic uint64_t wal_bytes_since_snapshot;
	_Atomic uint64_t scrapes, scrape_errors;
	_Atomic uint64_t start_unix_ms;
};

#endif
