/* SPDX-License-Identifier: MIT
 *
 * config.c — the key table and its parsers (see config.h). Adding a key is one
 * row in `keys`: its name, kind, where it lives, its bounds and what it means.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "config.h"
#include "conftext.h"
#include "evict.h"
#include "guard.h"
#include "pm_limits.h"
#include "snap_io.h"
#include "users.h"

enum kind { K_U32, K_BYTES, K_BOOL, K_STRING, K_POLLING, K_ADDR, K_CORES, K_BACKEND, K_STEERING,
	    K_EAL, K_CIDRS, K_GATEWAYS, K_WAL, K_U64, K_ALLOW, K_EVICT, K_REPL_ACK, K_HOSTPORT,
	    K_WAL_IO };

struct key {
	const char *name;
	enum kind kind;
	size_t off;
	uint64_t min, max;
	const char *unit;
	const char *doc;
};

#define OFF(f) offsetof(struct pm_config, f)

static const struct key keys[] = {
	{ "bind", K_ADDR, OFF(bind), 0, 0, "IPv4", "address the UDP ports listen on" },
	{ "base_port", K_U32, OFF(base_port), 1, 65535, "port",
	  "UDP port of shard 0; shard i listens on base_port + i" },
	{ "tcp_port", K_U32, OFF(tcp_port), 0, 65535, "port",
	  "TCP port for clients that want a stream of frames; 0 = no TCP" },
	{ "shards", K_U32, OFF(shards), 0, PM_SHARDS_MAX, "count",
	  "shard workers, one per core; 0 = min(cores, 4)" },
	{ "cores", K_CORES, OFF(cores), 0, 0, "list",
	  "CPUs for the workers: auto (one per physical core) or a list like 2,3" },
	{ "polling", K_POLLING, OFF(polling), 0, 0, "mode",
	  "adaptive (spin, then yield, then sleep when idle) or busy (never sleep)" },
	{ "idle_sleep_us", K_U32, OFF(idle_sleep_us), 10, 1000000, "us",
	  "longest sleep of an idle adaptive worker (a datagram or ring message wakes it at"
	  " once); how late background work (TTL expiry, HNSW sweeps) may run when idle" },
	/* issue 20 */
	{ "idle_spin_us", K_U32, OFF(idle_spin_us), 0, PM_IDLE_SPIN_US_MAX, "us",
	  "how long an idle adaptive worker spins before it yields (as long again) and then"
	  " sleeps" },
	{ "arena_bytes", K_BYTES, OFF(arena_bytes), PM_ARENA_BYTES_MIN, PM_ARENA_BYTES_MAX, "bytes",
	  "memory of each shard (suffixes K, M, G); reserved, touched as it is used" },
	{ "seeds", K_U32, OFF(seeds), 16, PM_SEEDS_MAX, "count",
	  "keys + vectors each shard can hold (64 B each, from the arena)" },
	{ "hugepages", K_BOOL, OFF(hugepages), 0, 1, "bool",
	  "try explicit 2 MiB pages for the arenas, then transparent hugepages" },
	{ "data_dir", K_STRING, OFF(data_dir), 1, 0, "path", "directory for the daemon's files" },
	{ "knn_timeout_ms", K_U32, OFF(knn_timeout_ms), 1, 60000, "ms",
	  "deadline for the shards' answers to a fan-out (KNN, collection ops, INFO)" },
	{ "maintain_nodes", K_U32, OFF(maintain_nodes), 16, 1u << 20, "nodes",
	  "slice of background work a worker runs between bursts: HNSW sweep nodes, or vectors of a dropped collection freed" },
	{ "backend", K_BACKEND, OFF(backend), 0, 0, "mode",
	  "kernel (UDP sockets) or dpdk (frames straight from NIC queues; the dpdk_* keys)" },
	{ "dpdk_eal_args", K_EAL, OFF(dpdk_eal_args), 0, 0, "flags",
	  "DPDK EAL arguments: devices (-a PCI, --vdev), memory (-m, --no-huge), --file-prefix;"
	  " pomaid adds the lcore list itself" },
	{ "dpdk_addrs", K_CIDRS, OFF(dpdk_addrs), 0, 0, "list",
	  "IPv4 address/prefix of each DPDK port, in port order: 10.0.0.2/24,10.0.1.2/24" },
	{ "dpdk_gateways", K_GATEWAYS, OFF(dpdk_gateways), 0, 0, "list",
	  "next hop of each port for peers outside its subnet (none = reply on-link only)" },
	{ "dpdk_steering", K_STEERING, OFF(dpdk_steering), 0, 0, "mode",
	  "auto (flow, then rss, then single), flow, rss or single (how frames reach their"
	  " shard's worker)" },
	{ "dpdk_mtu", K_U32, OFF(dpdk_mtu), 576, 9000, "bytes",
	  "IP MTU of the DPDK ports; larger datagrams travel as IP fragments" },
	{ "dpdk_vlan", K_U32, OFF(dpdk_vlan), 0, 4094, "id", "802.1Q VLAN of the ports, 0 = untagged" },
	{ "dpdk_rx_desc", K_U32, OFF(dpdk_rx_desc), 64, 16384, "descriptors",
	  "RX ring size of each queue" },
	{ "dpdk_tx_desc", K_U32, OFF(dpdk_tx_desc), 64, 16384, "descriptors",
	  "TX ring size of each queue" },
	{ "dpdk_mbufs", K_U32, OFF(dpdk_mbufs), 1023, 1u << 20, "mbufs",
	  "packet buffers in each worker's pool: at least ports x (dpdk_rx_desc + dpdk_tx_desc)"
	  " + 7 x dpdk_frag_flows + 416 (checked at start)" },
	{ "dpdk_tx_drain_us", K_U32, OFF(dpdk_tx_drain_us), 1, 10000, "us",
	  "longest time a reply waits to fill a TX burst while RX bursts come in full" },
	{ "dpdk_frag_flows", K_U32, OFF(dpdk_frag_flows), 16, 65536, "datagrams",
	  "fragmented datagrams each port reassembles at once (more are dropped and counted)" },
	{ "dpdk_frag_ms", K_U32, OFF(dpdk_frag_ms), 10, 60000, "ms",
	  "how long a datagram's fragments wait for the rest" },
	{ "wal", K_WAL, OFF(wal), 0, 0, "mode",
	  "write-ahead log: sync (a write is acknowledged once on disk), batch (fsync every"
	  " wal_batch_ms), none" },
	{ "wal_batch_ms", K_U32, OFF(wal_batch_ms), 1, 60000, "ms",
	  "batch mode: fsync interval, the most acknowledged writes a machine crash can lose" },
	{ "wal_segment_bytes", K_BYTES, OFF(wal_segment_bytes), 16u << 20, 4ull << 30, "bytes",
	  "size of a log segment file (preallocated)" },
	{ "wal_io_uring", K_WAL_IO, OFF(wal_uring), 0, 0, "mode",
	  "log I/O: auto (io_uring; in sync mode the batches' write + fdatasync through it or"
	  " on the worker with pwrite, whichever a start-up probe finds faster), yes (all"
	  " through io_uring), no (all on the worker: pwrite + fdatasync)" },
	/* issue 20 */
	{ "wal_sync_overlap", K_BOOL, OFF(wal_sync_overlap), 0, 1, "bool",
	  "sync mode through io_uring: write the next batch while the last one's fdatasync"
	  " runs (each reply still waits for its own batch's fdatasync), for a disk that"
	  " flushes in parallel; no: one batch's write + fdatasync after the other" },
	{ "wal_truncate_corrupt", K_BOOL, OFF(wal_truncate_corrupt), 0, 1, "bool",
	  "at start, drop the log from a corrupt record on instead of refusing to start" },
	{ "repl_port", K_U32, OFF(repl_port), 0, 65535, "port",
	  "TCP port on bind where replicas' shards connect to stream this node's log; 0: none"
	  " (a primary needs one; docs/replication.md)" },
	{ "replica_of", K_HOSTPORT, OFF(replica_of), 0, 0, "host:port",
	  "follow this primary (its IPv4 address and repl_port) from start-up; empty: the role"
	  " the node had (data_dir/replication.state), a primary the first time" },
	{ "repl_ack", K_REPL_ACK, OFF(repl_ack), 0, 0, "mode",
	  "when a write's reply leaves: none (at once, as the log says), received (once"
	  " min_replicas replicas hold it in memory) or durable (... in their logs on disk)" },
	{ "min_replicas", K_U32, OFF(min_replicas), 0, PM_REPL_REPLICAS_MAX, "replicas",
	  "replicas each shard must have connected for a write to be accepted (NOREPLICAS if"
	  " fewer), and that must confirm it with repl_ack other than none" },
	{ "repl_ack_timeout_ms", K_U32, OFF(repl_ack_timeout_ms), 1, 600000, "ms",
	  "a write held for replicas' confirmation longer than this is answered NOREPLICAS (it"
	  " is applied and logged on the primary, not confirmed on min_replicas replicas)" },
	{ "repl_send_bytes", K_BYTES, OFF(repl_send_bytes), PM_REPL_SEND_BYTES_MIN,
	  PM_REPL_SEND_BYTES_MAX, "bytes",
	  "the log a primary's shard buffers for one replica that reads slower than it writes;"
	  " past it the replica is cut (repl_cut_slow) and resyncs" },
	{ "cluster", K_BOOL, OFF(cluster), 0, 1, "bool",
	  "a node of a cluster (docs/cluster.md): its pomai-control gives it the slot map"
	  " and its write lease; needs wal, repl_port and no replica_of" },
	{ "admin_socket", K_STRING, OFF(admin_socket), 0, 0, "path",
	  "the admin socket (mode 0600) pomaictl and pomai-control talk to; empty:"
	  " data_dir/admin.sock" },
	{ "snapshot_interval_s", K_U32, OFF(snapshot_interval_s), 0, 604800, "s",
	  "start a snapshot of every shard this often (0: not on a timer)" },
	{ "snapshot_wal_bytes", K_BYTES, OFF(snapshot_wal_bytes), 0, 1ull << 40, "bytes",
	  "start a snapshot of a shard once its log has grown this much since the last one"
	  " (0: never for this reason)" },
	{ "snapshot_write_bytes_per_s", K_BYTES, OFF(snapshot_write_bytes_per_s), 0,
	  PM_SNAP_PACE_BYTES_PER_S_MAX, "bytes/s",
	  "the pace of one shard's snapshot writes, so that a large snapshot leaves the"
	  " CPUs and the disk to the requests; it may run ahead by one second of it"
	  " (0: as fast as the disk takes them)" },
	{ "allow_networks", K_ALLOW, OFF(allow_networks), 0, 0, "list",
	  "IPv4 networks that may send requests (a.b.c.d/bits, comma-separated, at most 64);"
	  " others are dropped without a reply and counted (dropped_not_allowed)" },
	{ "quota_requests_per_s", K_U64, OFF(quota_requests_per_s), 0, PM_QUOTA_RATE_PER_S_MAX,
	  "requests/s", "each client's (source address's) request rate over all shards;"
	  " 0 = unlimited; above it: THROTTLED with a retry hint" },
	{ "quota_bytes_per_s", K_U64, OFF(quota_bytes_per_s), 0, PM_QUOTA_RATE_PER_S_MAX,
	  "bytes/s", "each client's rate of request bytes over all shards (suffixes K, M, G);"
	  " 0 = unlimited" },
	{ "quota_burst_ms", K_U32, OFF(quota_burst_ms), PM_QUOTA_BURST_MS_MIN,
	  PM_QUOTA_BURST_MS_MAX, "ms", "burst a quota allows above its rate, in ms of the rate" },
	{ "collection_bytes_max", K_U64, OFF(collection_bytes_max), 0, PM_ARENA_BYTES_MAX, "bytes",
	  "vector bytes one collection may hold on each shard (suffixes K, M, G); a VADD past it"
	  " is refused with QUOTA; 0 = no cap" },
	{ "maxmemory", K_BYTES, OFF(maxmemory), 0, PM_ARENA_BYTES_MAX, "bytes",
	  "memory limit of each shard's data: seed slots in use x 64 + class bytes of live blobs"
	  " (docs/operations.md); at it, maxmemory_policy applies; 0 = no limit" },
	{ "maxmemory_policy", K_EVICT, OFF(maxmemory_policy), 0, 0, "policy",
	  "noeviction (refuse writes that do not fit: NOMEM), harvest (evict the sampled key of"
	  " least access frequency per byte freed) or random" },
	{ "maxmemory_samples", K_U32, OFF(maxmemory_samples), 1, PM_EVICT_SAMPLES_MAX, "seeds",
	  "keys sampled per eviction: more is closer to the best victim, and slower" },
	{ "tcp_frame_ms", K_U32, OFF(tcp_frame_ms), PM_TCP_FRAME_MS_MIN, PM_TCP_FRAME_MS_MAX, "ms",
	  "a TCP frame must arrive whole within this of its first byte, else its connection is"
	  " closed (tcp_frame_deadline): a slowloris client cannot hold a slot" },
	{ "tcp_conns_per_addr", K_U32, OFF(tcp_conns_per_addr), 1, PM_TCP_CONNS_MAX, "connections",
	  "TCP connections one source address may hold on each worker; more are closed at once"
	  " (tcp_addr_refused)" },
	{ "tcp_buffer_bytes", K_U64, OFF(tcp_buffer_bytes), PM_TCP_BUFFER_BYTES_MIN,
	  PM_TCP_BUFFER_BYTES_MAX, "bytes",
	  "bytes all TCP connections of one worker may buffer (input not executed, replies not"
	  " written; suffixes K, M, G); past it the connections idle the longest are closed"
	  " (tcp_buffer_evicted)" },
	{ "knn_work_bytes_max", K_U64, OFF(knn_work_bytes_max), 0, PM_ARENA_BYTES_MAX, "bytes",
	  "KNN work one query may do on one shard, in bytes of vectors read (64 + 4 x dim per"
	  " distance computed; suffixes K, M, G); past it: WORK_LIMIT; 0 = no cap" },
	{ "knn_slice_us", K_U32, OFF(knn_slice_us), 10, 100000, "us",
	  "time a worker spends on KNN work between two looks at its sockets and rings; a"
	  " longer exact scan goes on in the next turn (a graph search runs whole)" },
	{ "quota_work_bytes_per_s", K_U64, OFF(quota_work_bytes_per_s), 0, PM_QUOTA_RATE_PER_S_MAX,
	  "bytes/s", "each client's KNN work (bytes of vectors its queries read) per second over"
	  " all shards, charged after each query; a client that owes work gets THROTTLED on its"
	  " next VQUERY; 0 = unlimited" },
	{ "cookie_window_s", K_U32, OFF(cookie_window_s), PM_COOKIE_WINDOW_S_MIN,
	  PM_COOKIE_WINDOW_S_MAX, "s",
	  "UDP cookie window: a cookie (the proof a client receives at its address) is valid"
	  " for one to two windows; past it the client is sent RETRY once" },
	{ "quota_unvalidated_prefix_requests_per_s", K_U64,
	  OFF(quota_unvalidated_prefix_requests_per_s), 0, PM_QUOTA_RATE_PER_S_MAX, "requests/s",
	  "the request rate all unvalidated UDP sources of one /24 share (a source is validated"
	  " by a cookie); 0 = quota_requests_per_s; over it: RETRY" },
	{ "quota_unvalidated_requests_per_s", K_U64, OFF(quota_unvalidated_requests_per_s), 0,
	  PM_QUOTA_RATE_PER_S_MAX, "requests/s",
	  "the request rate all unvalidated UDP sources share; 0 = 16 x quota_requests_per_s" },
	/* issue 19: who may speak (users.h, docs/security.md) */
	{ "auth", K_BOOL, OFF(auth), 0, 1, "bool",
	  "on: every request must be a user's (an AUTH trailer, or a TCP connection that"
	  " proved a user's key): others are answered AUTH; users: data_dir/users" },
	{ "auth_skew_s", K_U32, OFF(auth_skew_s), PM_AUTH_SKEW_S_MIN, PM_AUTH_SKEW_S_MAX, "s",
	  "how far an AUTH trailer's time may be from this host's clock (refused: AUTH clock);"
	  " sessions are remembered for twice this" },
	/* issue 20: replies packed into datagrams (docs/protocol.md §2) */
	{ "reply_pack_bytes", K_U32, OFF(reply_pack_bytes), 0, PM_PACK_LOOPBACK_BYTES, "bytes",
	  "UDP payload the replies of one turn to one peer off loopback may share (peers on"
	  " loopback: 65507; a DPDK port: its MTU's); 0 = one reply frame per datagram" },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void pm_config_defaults(struct pm_config *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->bind, "127.0.0.1");
	c->base_port = 7700;
	c->tcp_port = 7699;
	c->shards = 0;
	strcpy(c->cores, "auto");
	c->polling = PM_POLL_ADAPTIVE;
	c->idle_sleep_us = 100000;
	c->idle_spin_us = PM_IDLE_SPIN_US_DEFAULT;
	c->arena_bytes = UINT64_C(256) << 20;
	c->seeds = 1u << 20;
	c->hugepages = true;
	strcpy(c->data_dir, "./var/pomai");
	c->knn_timeout_ms = PM_KNN_TIMEOUT_MS_DEFAULT;
	c->maintain_nodes = 1024;
	c->backend = PM_BACKEND_KERNEL;
	strcpy(c->dpdk_eal_args, "--no-pci --vdev=net_tap0,iface=pomai0 --no-huge -m 512"
				 " --file-prefix=pomaid");
	strcpy(c->dpdk_addrs, "10.77.0.2/24");
	strcpy(c->dpdk_gateways, "none");
	c->dpdk_steering = PM_STEER_AUTO;
	c->dpdk_mtu = 1500;
	c->dpdk_vlan = 0;
	c->dpdk_rx_desc = 1024;
	c->dpdk_tx_desc = 1024;
	c->dpdk_mbufs = 8191;
	c->dpdk_tx_drain_us = 100;
	c->dpdk_frag_flows = 256;
	c->dpdk_frag_ms = 1000;
	c->wal = 1; /* batch */
	c->wal_batch_ms = 10;
	c->wal_segment_bytes = UINT64_C(64) << 20;
	c->wal_truncate_corrupt = false;
	c->wal_uring = PM_WAL_IO_AUTO;
	c->wal_sync_overlap = false;
	c->repl_ack_timeout_ms = 5000;
	c->repl_send_bytes = 64u << 20;
	c->snapshot_interval_s = 3600;
	c->snapshot_wal_bytes = UINT64_C(1) << 30;
	c->snapshot_write_bytes_per_s = PM_SNAP_PACE_BYTES_PER_S_DEFAULT;
	strcpy(c->allow_networks, "0.0.0.0/0");
	c->quota_requests_per_s = 0;
	c->quota_bytes_per_s = 0;
	c->quota_burst_ms = 100;
	c->collection_bytes_max = 0;
	c->maxmemory = 0;
	c->maxmemory_policy = PM_EVICT_NOEVICTION;
	c->maxmemory_samples = PM_EVICT_SAMPLES_DEFAULT;
	c->tcp_frame_ms = PM_TCP_FRAME_MS_DEFAULT;
	c->tcp_conns_per_addr = PM_TCP_CONNS_PER_ADDR_DEFAULT;
	c->tcp_buffer_bytes = PM_TCP_BUFFER_BYTES_DEFAULT;
	c->knn_work_bytes_max = PM_KNN_WORK_BYTES_MAX_DEFAULT;
	/* what a GET may wait behind KNN work, about; the rest of a turn takes
	 * some 10 us, so waiting scans keep ~98 % of the worker */
	c->knn_slice_us = 500;
	c->quota_work_bytes_per_s = 0; /* like the other quotas: an operator's choice */
	c->cookie_window_s = PM_COOKIE_WINDOW_S_DEFAULT;
	c->quota_unvalidated_prefix_requests_per_s = 0; /* derived from the per-client quota */
	c->quota_unvalidated_requests_per_s = 0;
	c->auth = false; /* the embedded loopback default; operators turn it on */
	c->auth_skew_s = PM_AUTH_SKEW_S_DEFAULT;
	c->reply_pack_bytes = PM_REPLY_PACK_BYTES_DEFAULT;
}

int pm_errf(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---------------------------------------------------------------- values */

static int parse_cores(const char *v)
{
	if (!strcmp(v, "auto"))
		return 0;
	for (const char *p = v; *p;) {
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
		if (*p == ',')
			p++;
		else if (*p)
			return -1;
	}
	return 0;
}

static const char *const backend_names[] = { "kernel", "dpdk" };
static const char *const steering_names[] = { "auto", "flow", "rss", "single" };
static const char *const wal_names[] = { "none", "batch", "sync" };
static const char *const repl_ack_names[] = { "none", "received", "durable" };
/* wal_io_uring: indexed by enum pm_wal_io (config.h) */
static const char *const wal_io_names[] = { "no", "yes", "auto" };

int pm_hostport_parse(const char *text, struct sockaddr_in *out)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(text, ':');
	struct in_addr a;
	uint64_t port;
	if (!colon || colon == text || (size_t)(colon - text) >= sizeof(host))
		return -1;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	if (inet_pton(AF_INET, host, &a) != 1 || pm_conf_parse_u64(colon + 1, false, &port) != 0 ||
	    port == 0 || port > 65535)
		return -1;
	if (out)
		*out = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr = a,
					     .sin_port = htons((uint16_t)port) };
	return 0;
}
static const char *const policy_names[] = { "noeviction", "harvest", "random" }; /* evict.h */
_Static_assert(sizeof(policy_names) / sizeof(policy_names[0]) == PM_EVICT_POLICY_COUNT,
	       "a name per eviction policy");

static int name_index(const char *const *names, size_t n, const char *v)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], v))
			return (int)i;
	return -1;
}

/* One address of a comma list: a.b.c.d, with /prefix when cidr. */
static int parse_addr_item(const char *p, size_t len, bool cidr)
{
	char buf[32];
	struct in_addr a;
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, p, len);
	buf[len] = '\0';
	char *slash = strchr(buf, '/');
	if (cidr != (slash != NULL))
		return -1;
	if (slash) {
		*slash = '\0';
		char *end;
		unsigned long bits = strtoul(slash + 1, &end, 10);
		if (!isdigit((unsigned char)slash[1]) || *end || bits < 1 || bits > 32)
			return -1;
	}
	return inet_pton(AF_INET, buf, &a) == 1 ? 0 : -1;
}

/* A comma list of at most PM_DPDK_PORTS_MAX addresses ("none" for gateways). */
static int parse_addr_list(const char *v, bool cidr)
{
	uint32_t n = 0;
	if (!cidr && !strcmp(v, "none"))
		return 0;
	for (const char *p = v;; n++) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		bool none = !cidr && len == 4 && !strncmp(p, "none", 4);
		if (n == PM_DPDK_PORTS_MAX || (!none && parse_addr_item(p, len, cidr) != 0))
			return -1;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* allow_networks: kept as text, checked by the parser pomaid will use. */
static int set_allow(char *dst, const struct key *k, const char *v, char *err, size_t n)
{
	struct pm_allowlist allow;
	char why[PM_CONFIG_ERR_BYTES / 2];
	if (strlen(v) >= PM_CONFIG_ALLOW_BYTES)
		return pm_errf(err, n, "%s: want at most %u characters", k->name,
			    PM_CONFIG_ALLOW_BYTES - 1);
	if (pm_allow_parse(&allow, v, why, sizeof(why)) != 0)
		return pm_errf(err, n, "%s = '%.64s': %s", k->name, v, why);
	strcpy(dst, v);
	return 0;
}

/* A key whose value is one of a few names (K_WAL, K_EVICT): stored as its index. */
static int set_choice(const struct key *k, const char *v, void *dst, char *err, size_t n)
{
	bool wal = k->kind == K_WAL;
	int i = wal ? name_index(wal_names, 3, v) : name_index(policy_names, PM_EVICT_POLICY_COUNT, v);
	if (i < 0)
		return pm_errf(err, n, "%s = '%s': want %s", k->name, v,
			    wal ? "sync, batch or none" : "noeviction, harvest or random");
	*(uint32_t *)dst = (uint32_t)i;
	return 0;
}

static int set_value(struct pm_config *c, const struct key *k, const char *v, char *err, size_t n)
{
	void *dst = (char *)c + k->off;
	uint64_t x = 0;
	struct in_addr a;
	switch (k->kind) {
	case K_U32:
	case K_BYTES:
	case K_U64:
		if (pm_conf_parse_u64(v, k->kind != K_U32, &x) != 0 || x < k->min || x > k->max)
			return pm_errf(err, n, "%s = '%s': want %s %llu..%llu%s", k->name, v, k->unit,
				    (unsigned long long)k->min, (unsigned long long)k->max,
				    k->kind != K_U32 ? " (suffix K, M, G or T allowed)" : "");
		if (k->kind == K_BYTES && x % 4096)
			return pm_errf(err, n, "%s = '%s': must be a multiple of 4096 bytes", k->name, v);
		if (k->kind == K_U32)
			*(uint32_t *)dst = (uint32_t)x;
		else
			*(uint64_t *)dst = x;
		return 0;
	case K_BOOL:
		if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
			*(bool *)dst = true;
		else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") ||
			 !strcmp(v, "0"))
			*(bool *)dst = false;
		else
			return pm_errf(err, n, "%s = '%s': want yes or no", k->name, v);
		return 0;
	case K_POLLING:
		if (strcmp(v, "adaptive") && strcmp(v, "busy"))
			return pm_errf(err, n, "%s = '%s': want adaptive or busy", k->name, v);
		*(uint32_t *)dst = !strcmp(v, "busy") ? PM_POLL_BUSY : PM_POLL_ADAPTIVE;
		return 0;
	case K_ADDR:
		if (inet_pton(AF_INET, v, &a) != 1)
			return pm_errf(err, n, "%s = '%s': want an IPv4 address like 127.0.0.1", k->name, v);
		break;
	case K_CORES:
		if (parse_cores(v) != 0)
			return pm_errf(err, n, "%s = '%s': want auto or CPU numbers like 2,3", k->name, v);
		break;
	case K_EVICT:
	case K_WAL:
		return set_choice(k, v, dst, err, n);
	case K_REPL_ACK: {
		int i = name_index(repl_ack_names, 3, v);
		if (i < 0)
			return pm_errf(err, n, "%s = '%s': want none, received or durable", k->name, v);
		*(uint32_t *)dst = (uint32_t)i;
		return 0;
	}
	case K_WAL_IO: {
		int i = name_index(wal_io_names, 3, v);
		if (i < 0 && (!strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1")))
			i = PM_WAL_IO_URING; /* the spellings of the bool it was */
		else if (i < 0 && (!strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0")))
			i = PM_WAL_IO_PWRITE;
		if (i < 0)
			return pm_errf(err, n, "%s = '%s': want auto, yes or no", k->name, v);
		*(uint32_t *)dst = (uint32_t)i;
		return 0;
	}
	case K_HOSTPORT:
		if (*v && pm_hostport_parse(v, NULL) != 0)
			return pm_errf(err, n, "%s = '%.64s': want an IPv4 address and a port, like"
				       " 10.0.0.2:7698", k->name, v);
		if (strlen(v) >= PM_CONFIG_STRING_BYTES)
			return pm_errf(err, n, "%s: too long", k->name);
		strcpy(dst, v);
		return 0;
	case K_BACKEND:
	case K_STEERING: {
		bool be = k->kind == K_BACKEND;
		int i = be ? name_index(backend_names, 2, v) : name_index(steering_names, 4, v);
		if (i < 0)
			return pm_errf(err, n, "%s = '%s': want %s", k->name, v,
				    be ? "kernel or dpdk" : "auto, flow, rss or single");
		*(uint32_t *)dst = (uint32_t)i;
		return 0;
	}
	case K_CIDRS:
	case K_GATEWAYS:
		if (parse_addr_list(v, k->kind == K_CIDRS) != 0)
			return pm_errf(err, n, "%s = '%s': want at most %u comma-separated %s", k->name, v,
				    PM_DPDK_PORTS_MAX,
				    k->kind == K_CIDRS ? "IPv4 address/prefix like 10.0.0.2/24"
						       : "IPv4 addresses or none");
		break;
	case K_ALLOW:
		return set_allow(dst, k, v, err, n);
	case K_EAL:
		if (strlen(v) >= PM_CONFIG_EAL_BYTES)
			return pm_errf(err, n, "%s: want at most %u characters", k->name,
				    PM_CONFIG_EAL_BYTES - 1);
		strcpy(dst, v);
		return 0;
	case K_STRING:
		break;
	}
	/* a string key's min is the fewest characters it takes (admin_socket: 0) */
	if (strlen(v) >= PM_CONFIG_STRING_BYTES || strlen(v) < k->min)
		return pm_errf(err, n, "%s: want %u..%u characters", k->name, (unsigned)k->min,
			    PM_CONFIG_STRING_BYTES - 1);
	strcpy(dst, v);
	return 0;
}

int pm_config_set(struct pm_config *c, const char *key, const char *value, char *err,
		  size_t errlen)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].name, key))
			return set_value(c, &keys[i], value, err, errlen);
	return pm_errf(err, errlen, "unknown key '%s' (pomaid --help lists them)", key);
}

/* ---------------------------------------------------------------- files */

static int set_one(void *ctx, const char *key, const char *value, char *err, size_t errlen)
{
	return pm_config_set(ctx, key, value, err, errlen);
}

int pm_config_parse(struct pm_config *c, const char *name, const char *text, size_t len,
		    char *err, size_t errlen)
{
	return pm_conf_parse(name, text, len, PM_CONFIG_LINE_BYTES, set_one, c, err, errlen);
}

int pm_config_load(struct pm_config *c, const char *path, char *err, size_t errlen)
{
	return pm_conf_load(path, PM_CONFIG_FILE_BYTES_MAX, PM_CONFIG_LINE_BYTES, set_one, c, err,
			    errlen);
}

/* ---------------------------------------------------------------- printing */

static void value_text(const struct pm_config *c, const struct key *k, char *out, size_t n)
{
	const void *p = (const char *)c + k->off;
	switch (k->kind) {
	case K_U32:
		snprintf(out, n, "%u", *(const uint32_t *)p);
		break;
	case K_BYTES:
	case K_U64:
		snprintf(out, n, "%llu", (unsigned long long)*(const uint64_t *)p);
		break;
	case K_BOOL:
		snprintf(out, n, "%s", *(const bool *)p ? "yes" : "no");
		break;
	case K_POLLING:
		snprintf(out, n, "%s", *(const uint32_t *)p == PM_POLL_BUSY ? "busy" : "adaptive");
		break;
	case K_BACKEND:
		snprintf(out, n, "%s", backend_names[*(const uint32_t *)p]);
		break;
	case K_STEERING:
		snprintf(out, n, "%s", steering_names[*(const uint32_t *)p]);
		break;
	case K_WAL:
		snprintf(out, n, "%s", wal_names[*(const uint32_t *)p]);
		break;
	case K_REPL_ACK:
		snprintf(out, n, "%s", repl_ack_names[*(const uint32_t *)p]);
		break;
	case K_WAL_IO:
		snprintf(out, n, "%s", wal_io_names[*(const uint32_t *)p]);
		break;
	case K_EVICT:
		snprintf(out, n, "%s", policy_names[*(const uint32_t *)p]);
		break;
	default:
		snprintf(out, n, "%s", (const char *)p);
	}
}

void pm_config_print(const struct pm_config *c, FILE *f)
{
	char v[PM_CONFIG_EAL_BYTES];
	for (size_t i = 0; i < NKEYS; i++) {
		value_text(c, &keys[i], v, sizeof(v));
		fprintf(f, "%s = %s  # %s: %s\n", keys[i].name, v, keys[i].unit, keys[i].doc);
	}
}

static const struct key *key_named(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

int pm_config_get(const struct pm_config *c, const char *key, char *out, size_t n)
{
	const struct key *k = key_named(key);
	if (!k)
		return -1;
	value_text(c, k, out, n);
	return 0;
}

/* Keys a running pomaid reads afresh each time it uses them. */
static const char *const live_keys[] = { "snapshot_interval_s", "snapshot_wal_bytes",
					 "snapshot_write_bytes_per_s",
					 "knn_timeout_ms", "maintain_nodes", "idle_sleep_us",
					 "auth", "auth_skew_s" /* issue 19: users.c loads them */ };

int pm_config_set_live(struct pm_config *c, const char *key, const char *value, char *err,
		       size_t errlen)
{
	const struct key *k = key_named(key);
	bool live = false;
	for (size_t i = 0; k && i < sizeof(live_keys) / sizeof(live_keys[0]); i++)
		live |= !strcmp(live_keys[i], key);
	if (!k)
		return pm_errf(err, errlen, "%s: no such key", key);
	if (!live)
		return pm_errf(err, errlen, "%s cannot change while pomaid runs: set it in the"
				" config file and restart", key);
	struct pm_config tmp = *c;
	if (pm_config_set(&tmp, key, value, err, errlen) != 0)
		return -1;
	void *dst = (char *)c + k->off;
	const void *src = (const char *)&tmp + k->off;
	if (k->kind == K_U32) /* one store: the workers read it without a lock */
		__atomic_store_n((uint32_t *)dst, *(const uint32_t *)src, __ATOMIC_RELAXED);
	else if (k->kind == K_BOOL)
		__atomic_store_n((bool *)dst, *(const bool *)src, __ATOMIC_RELAXED);
	else
		__atomic_store_n((uint64_t *)dst, *(const uint64_t *)src, __ATOMIC_RELAXED);
	return 0;
}

void pm_config_usage(FILE *f)
{
	struct pm_config d;
	char v[PM_CONFIG_EAL_BYTES], flag[64];
	pm_config_defaults(&d);
	for (size_t i = 0; i < NKEYS; i++) {
		snprintf(flag, sizeof(flag), "--%s", keys[i].name);
		for (char *p = flag; *p; p++)
			*p = *p == '_' ? '-' : *p;
		value_text(&d, &keys[i], v, sizeof(v));
		fprintf(f, "  %-18s %s (%s; default %s)\n", flag, keys[i].doc, keys[i].unit, v);
	}
}
