/* SPDX-License-Identifier: MIT
 *
 * config.h — pomaid's configuration: one table of keys, read from a file
 * (`key = value` lines, `#` comments) and overridden by `--key value` flags
 * (dashes for underscores). Every key has a default, a unit and bounds; a bad
 * value stops start-up with a message naming the key, the value and the rule.
 * config/pomai.conf documents every key.
 */
#ifndef POMAI_DATAPLANE_CONFIG_H
#define POMAI_DATAPLANE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "quota.h"
#include "dp_limits.h"

/* Shards a daemon can run: each has its own core, rings to every other shard
 * (shards^2 rings of PM_RING_BYTES) and a UDP port. */
#define PM_SHARDS_MAX 32u
/* Shards the embedded default starts at most (shards = min(cores, this)). */
#define PM_SHARDS_DEFAULT_MAX 4u
/* Default fan-out deadline (knn_timeout_ms). Measured (perf/RESULTS.md, "Fan-out
 * latency"): with one shard per core on a busy 2-core machine the slowest of
 * 1,800 fan-outs took 44 ms, so the old 100 ms kept a margin of 2; with more
 * shards than cores (4 or 32 on 2, as tests and small VMs run them) p99 was
 * 0.3-0.7 s and 100 ms timed out 14 % to all of them. 1000 ms is 20 times the
 * worst with one shard per core and above that p99; what it costs is how long
 * a client waits to hear that a shard is stuck. */
#define PM_KNN_TIMEOUT_MS_DEFAULT 1000u
#define PM_CONFIG_STRING_BYTES 256u
#define PM_CONFIG_LINE_BYTES 2048u /* > "dpdk_eal_args = " + PM_CONFIG_EAL_BYTES */
#define PM_CONFIG_ERR_BYTES 512u
/* A config file, at most: the documented config/pomai.conf is ~12 KiB. */
#define PM_CONFIG_FILE_BYTES_MAX (1u << 20)

/* Replicas one primary shard streams to at once. */
#define PM_REPL_REPLICAS_MAX 8u
/* repl_send_bytes' bounds: at least a few WAL batches (a batch goes out as one
 * frame of up to 4 MiB), at most what a shard's address space spares. */
#define PM_REPL_SEND_BYTES_MIN (16u << 20)
#define PM_REPL_SEND_BYTES_MAX (4ull << 30)
/* EAL arguments pomaid passes to DPDK (dpdk_eal_args). */
#define PM_CONFIG_EAL_BYTES 1024u
/* DPDK ports one daemon serves (NICs and memif), each with its own address. */
#define PM_DPDK_PORTS_MAX 4u
/* allow_networks: PM_ALLOW_NETWORKS_MAX networks, each "a.b.c.d/nn,". */
#define PM_CONFIG_ALLOW_BYTES (PM_ALLOW_NETWORKS_MAX * PM_ALLOW_NETWORK_TEXT_BYTES + 1u)
_Static_assert(PM_CONFIG_LINE_BYTES > sizeof("allow_networks = ") + PM_CONFIG_ALLOW_BYTES,
	       "a full allow_networks fits one config line");

enum pm_backend {
	PM_BACKEND_KERNEL = 0, /* UDP sockets (recvmmsg / sendmmsg) */
	PM_BACKEND_DPDK = 1,   /* frames straight from NIC queues (dpdk_* keys) */
};

/* How frames reach the worker that owns their shard on a DPDK port. */
enum pm_steering {
	PM_STEER_AUTO = 0, /* flow, then rss, then single */
	PM_STEER_FLOW,     /* one rte_flow rule per worker: UDP dst base_port + i -> queue i */
	PM_STEER_RSS,      /* the device hashes flows over the workers' queues */
	PM_STEER_SINGLE,   /* one queue; its worker hands frames to their owners by ring */
};

enum pm_polling {
	PM_POLL_ADAPTIVE = 0, /* spin while busy, then pause, yield, and sleep in poll() */
	PM_POLL_BUSY = 1,     /* never sleep: for dedicated cores */
};

struct pm_config {
	char bind[PM_CONFIG_STRING_BYTES];     /* IPv4 address to listen on */
	uint32_t base_port;                    /* UDP port of shard 0; shard i: base + i */
	uint32_t tcp_port;                     /* stream port; 0 = no TCP */
	uint32_t shards;                       /* 0 = min(cores, PM_SHARDS_DEFAULT_MAX) */
	char cores[PM_CONFIG_STRING_BYTES];    /* "auto" or a list of CPU numbers "2,3,4" */
	uint32_t polling;                      /* enum pm_polling */
	uint32_t idle_sleep_us;                /* longest sleep of an idle adaptive worker */
	uint32_t idle_spin_us;                 /* issue 20: its spin before it yields, sleeps */
	uint64_t arena_bytes;                  /* per shard */
	uint32_t seeds;                        /* keys + vectors per shard */
	bool hugepages;
	char data_dir[PM_CONFIG_STRING_BYTES];
	uint32_t knn_timeout_ms;               /* fan-out deadline */
	uint32_t maintain_nodes;               /* HNSW sweep slice per idle turn */
	uint32_t backend;                      /* enum pm_backend */
	char dpdk_eal_args[PM_CONFIG_EAL_BYTES]; /* EAL flags: --vdev, --file-prefix, -m ... */
	char dpdk_addrs[PM_CONFIG_STRING_BYTES]; /* "10.0.0.2/24,..." one per port */
	char dpdk_gateways[PM_CONFIG_STRING_BYTES]; /* "10.0.0.1,..." or "none" */
	uint32_t dpdk_steering;                /* enum pm_steering */
	uint32_t dpdk_mtu;                     /* bytes of IP datagram per frame */
	uint32_t dpdk_vlan;                    /* 802.1Q id, 0 = untagged */
	uint32_t dpdk_rx_desc, dpdk_tx_desc;   /* descriptors per queue */
	uint32_t dpdk_mbufs;                   /* mbufs per worker pool */
	uint32_t dpdk_tx_drain_us;             /* longest wait of a queued reply under load */
	uint32_t dpdk_frag_flows;              /* datagrams being reassembled per port */
	uint32_t dpdk_frag_ms;                 /* reassembly timeout */
	uint32_t wal;                          /* enum pm_wal_mode (wal_io.h) */
	uint32_t wal_batch_ms;                 /* batch mode: fsync interval */
	uint64_t wal_segment_bytes;            /* size of a log segment */
	bool wal_truncate_corrupt;             /* drop the log from a corrupt record on */
	uint32_t wal_uring;                    /* wal_io_uring: enum pm_wal_io */
	bool wal_sync_overlap;                 /* sync mode, io_uring: the next batch written
						* while the last one's fdatasync runs */
	char admin_socket[PM_CONFIG_STRING_BYTES]; /* "" = data_dir/admin.sock */
	uint32_t snapshot_interval_s;          /* snapshot schedule: every this many s (0: off) */
	uint64_t snapshot_wal_bytes;           /* ... or once the log grew this much (0: off) */
	uint64_t snapshot_write_bytes_per_s;   /* a snapshot's pace per shard (0: unpaced) */
	char allow_networks[PM_CONFIG_ALLOW_BYTES]; /* who may send requests: "10.0.0.0/8,..." */
	uint64_t quota_requests_per_s;         /* per client over all workers; 0 = unlimited */
	uint64_t quota_bytes_per_s;            /* request bytes, idem */
	uint32_t quota_burst_ms;               /* burst: this many ms of the rate */
	uint64_t collection_bytes_max;         /* per collection and shard; 0 = no cap */
	uint64_t maxmemory;                    /* per shard, of pm_shard_mem_used (0: no limit) */
	uint32_t maxmemory_policy;             /* enum pm_evict_policy (engine/evict.h) */
	uint32_t maxmemory_samples;            /* seeds sampled per eviction */
	uint32_t tcp_frame_ms;                 /* a TCP frame arrives whole within this */
	uint32_t tcp_conns_per_addr;           /* a worker's TCP slots one address may hold */
	uint64_t tcp_buffer_bytes;             /* bytes a worker's TCP connections may buffer */
	uint64_t knn_work_bytes_max;           /* KNN work of one query on one shard, at most */
	uint32_t knn_slice_us;                 /* KNN work between two looks at the sockets */
	uint64_t quota_work_bytes_per_s;       /* per client, over all shards; 0 = unlimited */
	/* issue 19, anti-amplification and unvalidated sources (guard.h, quota.h) */
	uint32_t cookie_window_s;              /* a cookie lives one to two of these */
	uint64_t quota_unvalidated_prefix_requests_per_s; /* per /24 of unvalidated sources */
	uint64_t quota_unvalidated_requests_per_s;        /* all unvalidated sources */
	/* replication (repl.h, docs/replication.md) */
	uint32_t repl_port;                    /* TCP; 0 = no listener */
	char replica_of[PM_CONFIG_STRING_BYTES]; /* "a.b.c.d:port" or "" */
	uint32_t repl_ack;                     /* enum pm_repl_ack */
	uint32_t min_replicas;
	uint32_t repl_ack_timeout_ms;
	bool cluster;                          /* a node of a cluster (cluster.c) */
	uint64_t repl_send_bytes;              /* per replica per shard */
	/* issue 19: who may speak (users.h, docs/security.md) */
	bool auth;                             /* every frame must be a user's */
	uint32_t auth_skew_s;                  /* a trailer's time_s vs the server clock */
	/* issue 20: replies packed into datagrams (worker.c pack_bytes) */
	uint32_t reply_pack_bytes;             /* to peers off loopback; 0 = one frame each */
};

enum pm_repl_ack { PM_REPL_ACK_NONE = 0, PM_REPL_ACK_RECEIVED, PM_REPL_ACK_DURABLE };
/* wal_io_uring (wal_io.c): no (pwrite + fdatasync on the worker, no ring),
 * yes (every log and snapshot request through the worker's io_uring), auto
 * (the ring, and in sync mode the batches' write + fdatasync where a start-up
 * probe finds them faster: the ring or the worker). */
enum pm_wal_io { PM_WAL_IO_PWRITE = 0, PM_WAL_IO_URING = 1, PM_WAL_IO_AUTO = 2 };

/* "a.b.c.d:port" (port 1..65535) into *out (may be NULL: only checked); 0 or -1. */
struct sockaddr_in;
int pm_hostport_parse(const char *text, struct sockaddr_in *out);

void pm_config_defaults(struct pm_config *c);
/* Format a start-up error into err (n bytes); returns -1, for `return
 * pm_errf(...)` in set-up code. */
__attribute__((format(printf, 3, 4))) int pm_errf(char *err, size_t n, const char *fmt, ...);
/* Read a config file; 0 or -1 with a message in err. */
int pm_config_load(struct pm_config *c, const char *path, char *err, size_t errlen);
/* The same for len bytes of config text (not NUL-terminated; a NUL byte is an
 * error) whose errors name `name`: what pm_config_load uses, and the fuzzer. */
int pm_config_parse(struct pm_config *c, const char *name, const char *text, size_t len,
		    char *err, size_t errlen);
/* Set one key from text ("arena_bytes", "512M"); 0 or -1 with a message. */
int pm_config_set(struct pm_config *c, const char *key, const char *value, char *err,
		  size_t errlen);
/* Print every key as `key = value`, with its unit and meaning as a comment. */
void pm_config_print(const struct pm_config *c, FILE *f);
/* One key's value as text; 0, or -1 for an unknown key. */
int pm_config_get(const struct pm_config *c, const char *key, char *out, size_t n);
/* Change a key of a running daemon: only keys pomaid reads afresh each time
 * (the snapshot schedule, knn_timeout_ms, maintain_nodes, idle_sleep_us); 0,
 * or -1 with a message (an unknown key, a bad value, or one that needs a
 * restart). */
int pm_config_set_live(struct pm_config *c, const char *key, const char *value, char *err,
		       size_t errlen);
/* Print the flags (--key value) with their defaults, for --help. */
void pm_config_usage(FILE *f);

#endif
