/* SPDX-License-Identifier: MIT
 *
 * metrics.c — the stats segment and pomai-control's counters as Prometheus
 * text (see metrics.h). Adding a shard field is one row in `fields`; a row
 * with the name of the row before it is another sample of the same family
 * (its label tells them apart), so HELP and TYPE are written once. The
 * labels of ops, statuses and size classes come from proto/ (wire.h,
 * stats.h): pomai-control links nothing of the engine.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "metrics.h"
#include "wire.h"

/* ---------------------------------------------------------------- the text */

struct out {
	char *p;
	size_t n, cap;
	bool full;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	if (o->full)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->p + o->n, o->cap - o->n, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->n)
		o->full = true;
	else
		o->n += (size_t)n;
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A value scaled down by div (1, 100, 1000 or 10^9) as an exact decimal. */
static void value(struct out *o, uint64_t v, uint64_t div)
{
	int digits = div == 100 ? 2 : div == 1000 ? 3 : 9;
	if (div <= 1)
		put(o, "%" PRIu64 "\n", v);
	else
		put(o, "%" PRIu64 ".%0*" PRIu64 "\n", v / div, digits, v % div);
}

/* ---------------------------------------------------------------- shard fields */

enum ftype { COUNTER, GAUGE, GAUGE_SIGNED };

struct field {
	const char *name;
	enum ftype type;
	size_t off;
	uint64_t div;      /* printed as value / div: ms to s, percent to ratio */
	const char *label; /* `key="value"` after shard, or NULL */
	const char *help;
};

#define F(f) offsetof(struct pm_stats_shard, f)
#define NS_PER_S 1000000000ull

static const struct field fields[] = {
	{ "pomai_shard_cpu", GAUGE_SIGNED, F(cpu), 1, NULL, "CPU the shard's worker runs on." },
	{ "pomai_shard_numa_node", GAUGE_SIGNED, F(numa_node), 1, NULL,
	  "NUMA node of the shard's worker (-1: unknown)." },
	{ "pomai_stats_publishes_total", COUNTER, F(publishes), 1, NULL,
	  "Times the worker published its stats block." },
	{ "pomai_stats_publish_timestamp_seconds", GAUGE, F(publish_unix_ms), 1000, NULL,
	  "Unix time of the block's last publication." },
	{ "pomai_hits_total", COUNTER, F(hits), 1, NULL, "Reads that found their key." },
	{ "pomai_misses_total", COUNTER, F(misses), 1, NULL, "Reads that found no key." },
	{ "pomai_keys", GAUGE, F(keys), 1, NULL, "Keys held." },
	{ "pomai_vectors", GAUGE, F(vectors), 1, NULL, "Vectors held." },
	{ "pomai_collections", GAUGE, F(collections), 1, NULL, "Vector collections." },
	{ "pomai_expired_total", COUNTER, F(expired_lazy), 1, "kind=\"lazy\"",
	  "Keys expired by TTL: found expired when read (lazy) or swept (active)." },
	{ "pomai_expired_total", COUNTER, F(expired_active), 1, "kind=\"active\"", NULL },
	{ "pomai_evicted_total", COUNTER, F(evicted), 1, NULL, "Keys evicted at maxmemory." },
	{ "pomai_knn_queries_total", COUNTER, F(knn_queries), 1, NULL,
	  "KNN searches run on the shard." },
	{ "pomai_knn_scanned_vectors_total", COUNTER, F(knn_scanned), 1, NULL,
	  "Vectors whose distance KNN searches computed." },
	{ "pomai_arena_bytes", GAUGE, F(arena_bytes), 1, NULL, "Bytes of the shard's arena." },
	{ "pomai_seed_bytes", GAUGE, F(seed_bytes), 1, NULL, "Bytes of the arena for seed slots." },
	{ "pomai_seeds_used", GAUGE, F(seeds_used), 1, NULL, "Seed slots in use (keys + vectors)." },
	{ "pomai_blob_bytes", GAUGE, F(blob_bytes_used), 1, "state=\"used\"",
	  "Blob bytes of the arena: used, free (on free lists) or never used." },
	{ "pomai_blob_bytes", GAUGE, F(blob_bytes_free), 1, "state=\"free\"", NULL },
	{ "pomai_blob_bytes", GAUGE, F(blob_bytes_unused), 1, "state=\"unused\"", NULL },
	{ "pomai_rx_datagrams_total", COUNTER, F(rx_datagrams), 1, NULL, "Datagrams received." },
	{ "pomai_rx_frames_total", COUNTER, F(rx_frames), 1, NULL, "Request frames received." },
	{ "pomai_tx_datagrams_total", COUNTER, F(tx_datagrams), 1, NULL, "Datagrams sent." },
	{ "pomai_tx_errors_total", COUNTER, F(tx_errors), 1, NULL, "Sends that failed." },
	{ "pomai_forwarded_frames_total", COUNTER, F(forwarded_out), 1, "direction=\"out\"",
	  "Frames that reached the wrong worker and were forwarded over a ring." },
	{ "pomai_forwarded_frames_total", COUNTER, F(forwarded_in), 1, "direction=\"in\"", NULL },
	{ "pomai_throttled_total", COUNTER, F(throttled), 1, NULL,
	  "Requests refused by a client's quota." },
	{ "pomai_fanouts_total", COUNTER, F(fanouts), 1, NULL,
	  "Fan-outs (KNN, collection ops, INFO) this shard coordinated." },
	{ "pomai_fanout_timeouts_total", COUNTER, F(fanout_timeouts), 1, NULL,
	  "Fan-outs that timed out waiting for a shard." },
	{ "pomai_tcp_connections_total", COUNTER, F(tcp_accepted), 1, "event=\"accepted\"",
	  "TCP connections accepted, closed, refused (table full, or the address at its cap)"
	  " or closed by a bound (stalled, idle in a full table, frame deadline, buffer budget)." },
	{ "pomai_tcp_connections_total", COUNTER, F(tcp_closed), 1, "event=\"closed\"", NULL },
	{ "pomai_tcp_connections_total", COUNTER, F(tcp_refused), 1, "event=\"refused\"", NULL },
	{ "pomai_tcp_connections_total", COUNTER, F(tcp_stalled), 1, "event=\"stalled\"", NULL },
	{ "pomai_tcp_connections_total", COUNTER, F(tcp_idle_evicted), 1, "event=\"idle_evicted\"",
	  NULL },
	{ "pomai_tcp_connections_total", COUNTER, F(tcp_frame_deadline), 1,
	  "event=\"frame_deadline\"", NULL },
	{ "pomai_tcp_connections_total", COUNTER, F(tcp_buffer_evicted), 1,
	  "event=\"buffer_evicted\"", NULL },
	{ "pomai_tcp_connections_total", COUNTER, F(tcp_addr_refused), 1, "event=\"addr_refused\"",
	  NULL },
	{ "pomai_auth_frames_total", COUNTER, F(auth_ok), 1, "result=\"ok\"",
	  "Frames by their authentication (issue 19): ok (trailer accepted), refused by reason"
	  " (required, bad, replay, clock, busy), or noperm (outside the user's rights)." },
	{ "pomai_auth_frames_total", COUNTER, F(auth_refused[PM_AUTH_R_REQUIRED]), 1,
	  "result=\"required\"", NULL },
	{ "pomai_auth_frames_total", COUNTER, F(auth_refused[PM_AUTH_R_BAD]), 1, "result=\"bad\"",
	  NULL },
	{ "pomai_auth_frames_total", COUNTER, F(auth_refused[PM_AUTH_R_REPLAY]), 1,
	  "result=\"replay\"", NULL },
	{ "pomai_auth_frames_total", COUNTER, F(auth_refused[PM_AUTH_R_CLOCK]), 1,
	  "result=\"clock\"", NULL },
	{ "pomai_auth_frames_total", COUNTER, F(auth_refused[PM_AUTH_R_BUSY]), 1,
	  "result=\"busy\"", NULL },
	{ "pomai_auth_frames_total", COUNTER, F(auth_noperm), 1, "result=\"noperm\"", NULL },
	{ "pomai_auth_streams_proved_total", COUNTER, F(auth_proved), 1, NULL,
	  "TCP connections authenticated by AUTH HELLO and PROVE." },
	{ "pomai_auth_sessions_replaced_total", COUNTER, F(auth_sessions_replaced), 1, NULL,
	  "Client sessions forgotten from the replay table for a new one." },
	{ "pomai_guard_retries_total", COUNTER, F(guard_retry_budget), 1, "why=\"budget\"",
	  "RETRY replies (each with a fresh cookie) to unvalidated sources: a reply over its"
	  " budget, a write, or over the shared quota." },
	{ "pomai_guard_retries_total", COUNTER, F(guard_retry_write), 1, "why=\"write\"", NULL },
	{ "pomai_guard_retries_total", COUNTER, F(guard_retry_quota), 1, "why=\"quota\"", NULL },
	{ "pomai_guard_cookies_total", COUNTER, F(guard_validated), 1, "result=\"valid\"",
	  "Datagrams with a cookie: valid, invalid (forged, expired, another address's) or a"
	  " malformed COOKIE frame (dropped)." },
	{ "pomai_guard_cookies_total", COUNTER, F(guard_bad_cookies), 1, "result=\"invalid\"",
	  NULL },
	{ "pomai_guard_cookies_total", COUNTER, F(guard_dropped_cookie_frame), 1,
	  "result=\"malformed\"", NULL },
	{ "pomai_guard_withheld_bytes_total", COUNTER, F(guard_bytes_withheld), 1, NULL,
	  "Reply bytes not sent to unvalidated sources for want of budget." },
	{ "pomai_guard_withheld_replies_total", COUNTER, F(guard_withheld), 1, NULL,
	  "Replies not sent at all (even a RETRY was over the budget)." },
	{ "pomai_nic_packets_total", COUNTER, F(nic_rx_packets), 1, "direction=\"rx\"",
	  "Packets through the shard's DPDK queue (0 with kernel sockets)." },
	{ "pomai_nic_packets_total", COUNTER, F(nic_tx_packets), 1, "direction=\"tx\"", NULL },
	{ "pomai_nic_dropped_packets_total", COUNTER, F(nic_rx_dropped), 1, "direction=\"rx\"",
	  "Packets the shard's DPDK queue dropped." },
	{ "pomai_nic_dropped_packets_total", COUNTER, F(nic_tx_dropped), 1, "direction=\"tx\"",
	  NULL },
	{ "pomai_wal_records_total", COUNTER, F(wal_records), 1, NULL, "Log records written." },
	{ "pomai_wal_bytes_total", COUNTER, F(wal_bytes), 1, NULL, "Log bytes written." },
	{ "pomai_wal_fsyncs_total", COUNTER, F(wal_fsyncs), 1, NULL, "Log fsyncs." },
	{ "pomai_wal_lag_records", GAUGE, F(wal_lag_records), 1, NULL,
	  "Log records written but not yet durable." },
	{ "pomai_wal_held_replies", GAUGE, F(wal_held), 1, NULL,
	  "Replies waiting for the log to be durable." },
	{ "pomai_snapshot_running", GAUGE, F(snapshot_running), 1, NULL,
	  "1 while the shard writes a snapshot." },
	{ "pomai_snapshot_progress_ratio", GAUGE, F(snapshot_progress_pct), 100, NULL,
	  "Progress of the running snapshot, 0..1." },
	{ "pomai_snapshots_completed_total", COUNTER, F(snapshots_completed), 1, NULL,
	  "Snapshots published." },
	{ "pomai_snapshots_failed_total", COUNTER, F(snapshots_failed), 1, NULL,
	  "Snapshots that failed." },
	{ "pomai_snapshot_last_lsn", GAUGE, F(snapshot_last_lsn), 1, NULL,
	  "Start LSN of the last published snapshot." },
	{ "pomai_snapshot_last_timestamp_seconds", GAUGE, F(snapshot_last_unix_ms), 1000, NULL,
	  "Unix time of the last published snapshot." },
	{ "pomai_repl_role", GAUGE, F(repl_role), 1, NULL,
	  "The shard's replication role: 0 primary, 1 replica, 2 detached, 3 fenced." },
	{ "pomai_repl_epoch", GAUGE, F(repl_epoch), 1, NULL, "The shard's replication epoch." },
	{ "pomai_repl_connected_replicas", GAUGE, F(repl_connected), 1, NULL,
	  "Replicas connected to the shard (a primary)." },
	{ "pomai_repl_lag_records", GAUGE, F(repl_lag_records), 1, NULL,
	  "Records behind: a primary's slowest replica, or a replica behind its primary." },
	{ "pomai_repl_sent_bytes_total", COUNTER, F(repl_bytes_sent), 1, NULL,
	  "Bytes of log and snapshots streamed to replicas." },
	{ "pomai_repl_full_syncs_total", COUNTER, F(repl_full_syncs), 1, NULL,
	  "Full syncs served to replicas." },
	{ "pomai_repl_applied_lsn", GAUGE, F(repl_applied_lsn), 1, NULL,
	  "The last log record applied to the shard." },
	{ "pomai_repl_link_up", GAUGE, F(repl_link_up), 1, NULL,
	  "1 while a replica's shard streams from its primary." },
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static const char *const drop_names[PM_DROP_REASONS] = {
	[PM_DROP_MALFORMED] = "malformed", [PM_DROP_RING_FULL] = "ring_full",
	[PM_DROP_TX_FULL] = "tx_full",     [PM_DROP_NOT_ALLOWED] = "not_allowed",
	[PM_DROP_REPLY] = "reply",         [PM_DROP_SELF] = "self",
};

static uint64_t field_u64(const struct pm_stats_shard *s, const struct field *f)
{
	uint64_t v;
	memcpy(&v, (const char *)s + f->off, sizeof(v));
	return v;
}

static void shard_fields(struct out *o, const struct ctl_scrape *sc)
{
	static const char *const types[] = { "counter", "gauge", "gauge" };
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &fields[i];
		if (i == 0 || strcmp(f->name, fields[i - 1].name))
			family(o, f->name, types[f->type], f->help);
		for (uint32_t sh = 0; sh < sc->nshards; sh++) {
			put(o, "%s{shard=\"%u\"%s%s} ", f->name, sh, f->label ? "," : "",
			    f->label ? f->label : "");
			uint64_t v = field_u64(&sc->s[sh], f);
			if (f->type == GAUGE_SIGNED)
				put(o, "%" PRId64 "\n", (int64_t)v);
			else
				value(o, v, f->div);
		}
	}
}

/* ops by type, errors by status, drops by reason, live bytes by size class */
static void shard_arrays(struct out *o, const struct ctl_scrape *sc)
{
	family(o, "pomai_ops_total", "counter", "Requests applied, by type.");
	for (uint32_t sh = 0; sh < sc->nshards; sh++)
		for (unsigned i = 1; i < PM_WIRE_OP_COUNT; i++)
			put(o, "pomai_ops_total{shard=\"%u\",op=\"%s\"} %" PRIu64 "\n", sh,
			    pm_wire_op_name((uint8_t)i), sc->s[sh].ops[i]);
	family(o, "pomai_errors_total", "counter", "Requests answered with a status other than OK.");
	for (uint32_t sh = 0; sh < sc->nshards; sh++)
		for (unsigned i = 1; i < PM_STATS_STATUS_SLOTS; i++)
			put(o, "pomai_errors_total{shard=\"%u\",status=\"%s\"} %" PRIu64 "\n", sh,
			    pm_wire_status_name(pm_stats_status_code(i)), sc->s[sh].errors[i]);
	family(o, "pomai_dropped_total", "counter", "Datagrams or frames dropped, by reason.");
	for (uint32_t sh = 0; sh < sc->nshards; sh++)
		for (unsigned i = 0; i < PM_DROP_REASONS; i++)
			if (drop_names[i])
				put(o, "pomai_dropped_total{shard=\"%u\",reason=\"%s\"} %" PRIu64 "\n",
				    sh, drop_names[i], sc->s[sh].dropped[i]);
	family(o, "pomai_class_live_bytes", "gauge",
	       "Live blob bytes by size class (class_bytes: the class's slot size).");
	for (uint32_t sh = 0; sh < sc->nshards; sh++)
		for (unsigned i = 0; i < PM_STATS_CLASSES; i++)
			put(o, "pomai_class_live_bytes{shard=\"%u\",class_bytes=\"%u\"} %" PRIu64 "\n",
			    sh, pm_stats_class_bytes(i), sc->s[sh].class_live_bytes[i]);
}

/* ---------------------------------------------------------------- histograms */

/* The `le` ladder: bounds in nanoseconds and as Prometheus writes them. */
static const struct {
	uint64_t ns;
	const char *le;
} ladder[] = {
	{ 1000, "1e-06" },      { 2500, "2.5e-06" },    { 5000, "5e-06" },
	{ 10000, "1e-05" },     { 25000, "2.5e-05" },   { 50000, "5e-05" },
	{ 100000, "0.0001" },   { 250000, "0.00025" },  { 500000, "0.0005" },
	{ 1000000, "0.001" },   { 2500000, "0.0025" },  { 5000000, "0.005" },
	{ 10000000, "0.01" },   { 25000000, "0.025" },  { 50000000, "0.05" },
	{ 100000000, "0.1" },   { 250000000, "0.25" },  { 500000000, "0.5" },
	{ 1000000000, "1" },    { 2500000000, "2.5" },  { 5000000000, "5" },
	{ 10000000000, "10" },
};
#define NLADDER (sizeof(ladder) / sizeof(ladder[0]))

static void histogram_one(struct out *o, const char *name, uint32_t shard,
			  const struct pm_hist *h)
{
	uint64_t cum = 0;
	unsigned b = 0;
	for (size_t l = 0; l < NLADDER; l++) {
		/* bucket b's values are floor(b) .. floor(b + 1) - 1; the last is open */
		while (b < PM_HIST_BUCKETS - 1 && pm_hist_floor(b + 1) - 1 <= ladder[l].ns)
			cum += h->b[b++];
		put(o, "%s_bucket{shard=\"%u\",le=\"%s\"} %" PRIu64 "\n", name, shard, ladder[l].le,
		    cum);
	}
	while (b < PM_HIST_BUCKETS)
		cum += h->b[b++];
	put(o, "%s_bucket{shard=\"%u\",le=\"+Inf\"} %" PRIu64 "\n", name, shard, cum);
	put(o, "%s_sum{shard=\"%u\"} ", name, shard);
	value(o, h->sum, NS_PER_S);
	put(o, "%s_count{shard=\"%u\"} %" PRIu64 "\n", name, shard, cum);
}

static void histograms(struct out *o, const struct ctl_scrape *sc)
{
	static const struct {
		const char *name, *max, *help;
		size_t off;
	} hs[] = {
		{ "pomai_kv_service_seconds", "pomai_kv_service_max_seconds",
		  "Service time of a KV request in its worker, apply to reply queued.",
		  offsetof(struct pm_stats_shard, lat_kv) },
		{ "pomai_knn_fanout_seconds", "pomai_knn_fanout_max_seconds",
		  "A KNN fan-out from arrival to merged reply.",
		  offsetof(struct pm_stats_shard, lat_knn) },
	};
	for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++) {
		family(o, hs[i].name, "histogram", hs[i].help);
		for (uint32_t sh = 0; sh < sc->nshards; sh++)
			histogram_one(o, hs[i].name, sh,
				      (const struct pm_hist *)((const char *)&sc->s[sh] + hs[i].off));
		family(o, hs[i].max, "gauge", "Largest value the histogram above has seen.");
		for (uint32_t sh = 0; sh < sc->nshards; sh++) {
			const struct pm_hist *h =
				(const struct pm_hist *)((const char *)&sc->s[sh] + hs[i].off);
			put(o, "%s{shard=\"%u\"} ", hs[i].max, sh);
			value(o, h->max, NS_PER_S);
		}
	}
}

/* ---------------------------------------------------------------- global and own */

static void one(struct out *o, const char *name, const char *type, const char *help, uint64_t v,
		uint64_t div)
{
	family(o, name, type, help);
	put(o, "%s ", name);
	value(o, v, div);
}

static void daemon_global(struct out *o, const struct ctl_scrape *sc)
{
	one(o, "pomai_shards", "gauge", "Shards of the attached pomaid.", sc->nshards, 1);
	one(o, "pomai_daemon_pid", "gauge", "Process id of the attached pomaid.", sc->g.pid, 1);
	one(o, "pomai_daemon_start_timestamp_seconds", "gauge", "Unix time pomaid started.",
	    sc->g.start_unix_ms, 1000);
	one(o, "pomai_admin_connections_total", "counter", "Connections to pomaid's admin socket.",
	    sc->g.admin_connections, 1);
	one(o, "pomai_admin_commands_total", "counter", "Commands pomaid's admin socket served.",
	    sc->g.admin_commands, 1);
	one(o, "pomai_admin_errors_total", "counter", "Admin commands that did not answer OK.",
	    sc->g.admin_errors, 1);
}

#define LOAD(x) atomic_load_explicit(&c->x, memory_order_relaxed)

static void control_own(struct out *o, const struct ctl_counters *c)
{
	one(o, "pomai_control_start_timestamp_seconds", "gauge", "Unix time pomai-control started.",
	    LOAD(start_unix_ms), 1000);
	one(o, "pomai_control_attaches_total", "counter", "Times pomai-control attached to pomaid.",
	    LOAD(attaches), 1);
	one(o, "pomai_control_detaches_total", "counter",
	    "Times pomaid went away (closed its socket, stopped answering, restarted).",
	    LOAD(detaches), 1);
	one(o, "pomai_control_attach_failures_total", "counter",
	    "Attach attempts that failed (pomaid not there yet).", LOAD(attach_failures), 1);
	one(o, "pomai_control_commands_total", "counter", "Admin commands pomai-control served.",
	    LOAD(commands), 1);
	one(o, "pomai_control_command_errors_total", "counter",
	    "Admin commands answered with a status other than OK.", LOAD(command_errors), 1);
	one(o, "pomai_control_forwarded_total", "counter", "Admin commands forwarded to pomaid.",
	    LOAD(forwarded), 1);
	one(o, "pomai_control_unavailable_total", "counter",
	    "Admin commands answered UNAVAILABLE because pomaid was not attached.",
	    LOAD(unavailable), 1);
	family(o, "pomai_control_snapshots_requested_total", "counter",
	       "Snapshots pomai-control asked pomaid for, by reason.");
	put(o, "pomai_control_snapshots_requested_total{reason=\"interval\"} %" PRIu64 "\n",
	    LOAD(snapshots_requested[CTL_SNAP_INTERVAL]));
	put(o, "pomai_control_snapshots_requested_total{reason=\"wal_bytes\"} %" PRIu64 "\n",
	    LOAD(snapshots_requested[CTL_SNAP_WAL_BYTES]));
	one(o, "pomai_control_snapshot_errors_total", "counter",
	    "Snapshot requests pomaid did not accept.", LOAD(snapshot_errors), 1);
	one(o, "pomai_control_wal_since_snapshot_bytes", "gauge",
	    "Log bytes the shards wrote since the last snapshot pomai-control asked for.",
	    LOAD(wal_bytes_since_snapshot), 1);
	one(o, "pomai_control_quotas", "gauge", "Entries of pomai-control's quota table.",
	    LOAD(quotas), 1);
	one(o, "pomai_control_quota_pushes_total", "counter", "QUOTA SET commands pushed to pomaid.",
	    LOAD(quota_pushes), 1);
	one(o, "pomai_control_quota_push_errors_total", "counter",
	    "Quota pushes pomaid refused or did not answer.", LOAD(quota_push_errors), 1);
	one(o, "pomai_control_scrapes_total", "counter", "Scrapes of /metrics.", LOAD(scrapes), 1);
	one(o, "pomai_control_scrape_errors_total", "counter",
	    "Scrapes answered 500 (the text did not fit, or the segment could not be read).",
	    LOAD(scrape_errors), 1);
}

size_t ctl_metrics_render(const struct ctl_scrape *sc, char *out, size_t cap)
{
	struct out o = { .p = out, .cap = cap };
	if (cap == 0)
		return 0;
	one(&o, "pomai_up", "gauge", "1 while pomai-control is attached to pomaid and has pushed its quotas to it.", sc->up, 1);
	if (sc->up) {
		daemon_global(&o, sc);
		shard_fields(&o, sc);
		shard_arrays(&o, sc);
		histograms(&o, sc);
	}
	control_own(&o, sc->c);
	return o.full ? 0 : o.n;
}

bool ctl_scrape_read(const struct pm_stats_map *m, struct ctl_scrape *sc)
{
	sc->nshards = m->nshards;
	if (!pm_stats_read(pm_stats_global_at(m->base), &sc->g, sizeof(sc->g)))
		return false;
	for (uint32_t i = 0; i < m->nshards; i++)
		if (!pm_stats_read(pm_stats_shard_at(m->base, i), &sc->s[i], sizeof(sc->s[i])))
			return false;
	return true;
}
