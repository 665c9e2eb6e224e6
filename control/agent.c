/* SPDX-License-Identifier: MIT
 *
 * agent.c — pomai-control's cluster agent (agent.h says what it does;
 * docs/cluster.md how it behaves).
 *
 * etcd keys, under /pomai/<cluster>/:
 *   nodes/<node>               "set=S addr=A udp=U tcp=T repl=R shards=N"   node's lease
 *   sets/<set>/leader          "node=N"                                     leader's lease
 *   sets/<set>/candidates/<n>  "lsn=L prio=P"                               node's lease
 *   slotmap                    the map document (proto/cluster_map.h)       no lease
 */
#define _GNU_SOURCE
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/random.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster_map.h"
#include "codec.h"
#include "etcd.h"

#define KEY_BYTES 160u
#define VAL_BYTES 256u
/* An admin reply the agent reads, at most: the largest the admin protocol
 * carries. A full CLUSTER EXPORT answer alone is PM_CLUSTER_EXPORT_BYTES
 * (256 KiB) of text, two bytes more with the reply's version and status, so
 * a buffer of just 256 KiB failed the call for every export that filled its
 * answer (large values, or a long list of changed keys) and the mover
 * started the copy again, for ever. */
#define ADMIN_BUF_BYTES PM_ADMIN_BUFFER_BYTES

struct node_ports {
	uint16_t udp, tcp, repl;
	uint8_t shards;
};

struct ctl_cluster {
	struct ctl_config cfg;
	char daemon_sock[CTL_PATH_BYTES + 16];
	char prefix[64], prefix_end[64];
	uint32_t ttl_asked_ms;
	pthread_t keeper, recon;
	bool keeper_on, recon_on;
	atomic_bool quit;
	/* the lease: written by the keeper, read by the reconciler */
	_Atomic int64_t lease_id;            /* 0: none */
	_Atomic uint64_t last_ok_send_ms;    /* CLOCK_BOOTTIME: send time of the last renewal
					      * etcd confirmed */
	_Atomic uint32_t ttl_ms;             /* the TTL in force */
	_Atomic bool want_write_lease;       /* the committed primary of its set */
	_Atomic bool etcd_up;
	_Atomic uint64_t keepalive_failures, fences, elections_won, map_pushes, leases_lost;
	/* the reconciler's view, for STATUS (under lock) */
	pthread_mutex_t lock;
	char role[16];
	uint64_t map_epoch_pushed;
	char *map_text; /* the last map read from etcd (PM_CLUSTER_MAP_TEXT_BYTES_MAX + 1) */
	uint64_t status_lsn;        /* pomaid's durable LSN, summed over shards */
	uint32_t status_replicas;   /* replicas connected (the fewest of a shard) */
	bool status_streaming;      /* a replica whose every shard streams */
	size_t map_len;
	/* the reconciler's own */
	struct pm_etcd *ea;
	struct pm_etcd *em;         /* the main thread's (CLUSTER INIT) */
	int afd;
	uint8_t *abuf;
	struct node_ports ports;
	bool registered;
	int64_t registered_lease;
	int64_t promoted_for;       /* the leadership (create revision) a PROMOTE was made for */
	uint64_t cand_since_ms;     /* 0: no candidacy posted */
	int64_t cand_lease;
	uint64_t streamed_ms;       /* last time every shard streamed from its primary */
	uint64_t pomaid_epoch;
	bool pomaid_primary;
	char pomaid_follows[96];    /* "a.b.c.d:port" of its primary, "" */
	uint64_t durable_lsn;       /* sum over shards */
	uint32_t replicas;          /* as a primary: replicas connected, the fewest of a shard */
	uint64_t lag_records;       /* as a replica: records behind its primary, summed */
	uint32_t min_replicas;      /* pomaid's min_replicas */
	uint64_t led_ms;            /* when the map first named this node its set's primary
				     * in this leadership (0: not yet) */
	int64_t led_for;            /* that leadership (its key's create revision) */
	struct pm_cmap *map, *tmp;  /* parsed slotmap; a scratch one */
	int64_t map_rev;            /* mod revision of slotmap, 0: none */
	char *pushed_text;          /* the map pomaid was given last */
	/* resharding: the mover thread (one job at a time, this set the source) */
	pthread_t mover;
	atomic_bool mover_on;       /* running; it clears it when it ends */
	atomic_bool mover_drops;    /* it runs the target's drop, not a move */
	bool mover_joinable;
	_Atomic uint64_t moved_keys, reshards_done;
	size_t pushed_len;
};

__attribute__((format(printf, 1, 2))) static void logc(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("pomai-control: cluster: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static uint64_t boot_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(struct ctl_cluster *c, uint64_t ms)
{
	/* short slices, so that stop is prompt */
	while (ms && !atomic_load(&c->quit)) {
		uint64_t step = ms < 50 ? ms : 50;
		struct timespec ts = { 0, (long)step * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static void key_of(const struct ctl_cluster *c, char *out, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void key_of(const struct ctl_cluster *c, char *out, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(out, KEY_BYTES, "%s", c->prefix);
	va_start(ap, fmt);
	vsnprintf(out + n, KEY_BYTES - (size_t)n, fmt, ap);
	va_end(ap);
}

struct text {
	char *p;
	size_t cap, len;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len = t->len + (size_t)n < t->cap ? t->len + (size_t)n : t->cap - 1;
}

/* A word's value in "k=v k=v" text: into out, false if absent. */
static bool word(const char *text, size_t len, const char *k, char *out, size_t cap)
{
	size_t kl = strlen(k);
	for (size_t i = 0; i + kl < len; i++) {
		if ((i == 0 || text[i - 1] == ' ' || text[i - 1] == '\n') && !memcmp(text + i, k, kl) &&
		    text[i + kl] == '=') {
			size_t j = i + kl + 1, n = 0;
			while (j < len && text[j] != ' ' && text[j] != '\n' && n + 1 < cap)
				out[n++] = text[j++];
			out[n] = '\0';
			return true;
		}
	}
	return false;
}

static uint64_t word_u64(const char *text, size_t len, const char *k)
{
	char v[32];
	return word(text, len, k, v, sizeof(v)) ? strtoull(v, NULL, 10) : 0;
}

/* A field of an admin reply ("field:value\r\n"), the first after `after`
 * (NULL: from the start): into out, a pointer past it or NULL. */
static const char *field(const char *text, const char *f, char *out, size_t cap)
{
	size_t fl = strlen(f);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, f, fl) && p[fl] == ':') {
			const char *v = p + fl + 1;
			size_t n = strcspn(v, "\r\n");
			n = n < cap - 1 ? n : cap - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return v + n;
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------- pomaid */

/* One admin command on *fd (connected on demand): the reply text (NUL
 * terminated, in buf) or NULL (the connection is closed for a retry). */
static const char *admin(struct ctl_cluster *c, int *fd, uint8_t *buf, size_t cap,
			 uint32_t argc, const char *const *argv, uint8_t *status, int timeout_ms)
{
	if (*fd < 0 && (*fd = pm_admin_connect(c->daemon_sock)) < 0)
		return NULL;
	const char *text;
	size_t tlen;
	if (pm_admin_call(*fd, argc, argv, buf, cap - 1, timeout_ms, status, &text, &tlen) != 0) {
		close(*fd);
		*fd = -1;
		return NULL;
	}
	memmove(buf, text, tlen);
	buf[tlen] = '\0';
	return (const char *)buf;
}

/* The keeper's write deadline to pomaid (0: fence now). */
static bool push_lease(struct ctl_cluster *c, int *fd, uint64_t until_ms)
{
	uint8_t buf[512], st;
	char v[32];
	snprintf(v, sizeof(v), "%" PRIu64, until_ms);
	const char *argv[] = { "CLUSTER", "LEASE", v };
	uint32_t r = atomic_load(&c->ttl_ms) / CTL_LEASE_RENEW_DIV;
	const char *t = admin(c, fd, buf, sizeof(buf), 3, argv, &st, (int)(r ? r : 100));
	return t && st == PM_ADMIN_OK;
}

/* ---------------------------------------------------------------- the lease keeper */

static void *keeper_main(void *arg)
{
	struct ctl_cluster *c = arg;
	char err[256];
	struct pm_etcd *e = pm_etcd_open(c->cfg.etcd_endpoints, err, sizeof(err));
	int fd = -1;
	bool fenced_said = false;
	if (!e) {
		logc("lease keeper: %s", err);
		return NULL;
	}
	while (!atomic_load(&c->quit)) {
		uint32_t ttl = atomic_load(&c->ttl_ms), r = ttl / CTL_LEASE_RENEW_DIV;
		int64_t id = atomic_load(&c->lease_id);
		uint64_t t = boot_ms();
		if (!id) {
			int64_t got, granted;
			int rc = pm_etcd_grant(e, c->ttl_asked_ms / 1000, &got, &granted,
					       CTL_ETCD_CALL_MS);
			if (rc != PM_ETCD_OK) {
				atomic_store(&c->etcd_up, false);
				sleep_ms(c, c->ttl_asked_ms / CTL_LEASE_RENEW_DIV);
				continue;
			}
			uint64_t g = (uint64_t)granted * 1000u;
			if (g > c->ttl_asked_ms)
				logc("etcd granted a %" PRIu64 " ms lease for %u asked: %u ms in force",
				     g, c->ttl_asked_ms, c->ttl_asked_ms);
			atomic_store(&c->ttl_ms, g < c->ttl_asked_ms ? (uint32_t)g : c->ttl_asked_ms);
			atomic_store(&c->last_ok_send_ms, t);
			atomic_store(&c->lease_id, got);
			atomic_store(&c->etcd_up, true);
			logc("lease %" PRId64 " granted (%" PRId64 " s)", got, granted);
			sleep_ms(c, ttl / CTL_LEASE_RENEW_DIV);
			continue;
		}
		int64_t left;
		int rc = pm_etcd_keepalive(e, id, &left, (int)r);
		if (rc == PM_ETCD_OK) {
			atomic_store(&c->last_ok_send_ms, t);
			atomic_store(&c->etcd_up, true);
			fenced_said = false;
			if (atomic_load(&c->want_write_lease))
				(void)push_lease(c, &fd, t + ttl - r);
			uint64_t now = boot_ms();
			sleep_ms(c, t + r > now ? t + r - now : 0);
			continue;
		}
		if (rc == PM_ETCD_LEASE_GONE) {
			atomic_fetch_add(&c->leases_lost, 1);
			logc("lease %" PRId64 " is gone (expired or revoked): fenced, a new one",
			     id);
			if (atomic_exchange(&c->want_write_lease, false))
				atomic_fetch_add(&c->fences, 1);
			(void)push_lease(c, &fd, 0);
			atomic_store(&c->lease_id, 0);
			continue;
		}
		atomic_fetch_add(&c->keepalive_failures, 1);
		atomic_store(&c->etcd_up, false);
		if (boot_ms() >= atomic_load(&c->last_ok_send_ms) + ttl - r &&
		    atomic_load(&c->want_write_lease)) {
			if (!fenced_said) {
				logc("no renewal confirmed for %u ms: fenced (%s)", ttl - r,
				     pm_etcd_error(e));
				atomic_fetch_add(&c->fences, 1);
				fenced_said = true;
			}
			(void)push_lease(c, &fd, 0); /* pomaid has stopped by itself; say it */
		}
		uint64_t now = boot_ms();
		if (now < t + r / 4) /* refused at once: do not spin */
			sleep_ms(c, t + r / 4 - now);
	}
	if (fd >= 0)
		close(fd);
	pm_etcd_close(e);
	return NULL;
}

/* ---------------------------------------------------------------- the reconciler: pomaid */

static const char *radmin(struct ctl_cluster *c, uint32_t argc, const char *const *argv,
			  uint8_t *st)
{
	return admin(c, &c->afd, c->abuf, ADMIN_BUF_BYTES, argc, argv, st,
		     (int)c->cfg.daemon_timeout_ms);
}

/* pomaid's ports and shards (once per connection). */
static bool pomaid_ports(struct ctl_cluster *c)
{
	static const char *const keys[] = { "base_port", "tcp_port", "repl_port", "shards",
					    "min_replicas", "cluster" };
	char v[64];
	uint64_t x[5] = { 0 };
	for (int i = 0; i < 6; i++) {
		const char *argv[] = { "CONFIG", "GET", keys[i] };
		uint8_t st;
		const char *t = radmin(c, 3, argv, &st);
		if (!t || st != PM_ADMIN_OK || !field(t, keys[i], v, sizeof(v)))
			return false;
		if (i == 5 && strcmp(v, "yes")) {
			logc("pomaid runs with cluster = %s: set cluster = on", v);
			return false;
		}
		if (i < 5)
			x[i] = strtoull(v, NULL, 10);
	}
	c->ports = (struct node_ports){ (uint16_t)x[0], (uint16_t)x[1], (uint16_t)x[2],
					(uint8_t)x[3] };
	c->min_replicas = (uint32_t)x[4];
	c->pushed_len = 0; /* a pomaid (re)attached gets the map again */
	return c->ports.repl != 0;
}

/* pomaid's replication state: role, epoch, whom it follows, the durable
 * LSNs, and whether every shard streams. */
static bool pomaid_repl(struct ctl_cluster *c)
{
	const char *argv[] = { "REPLICATION", "STATUS" };
	uint8_t st;
	const char *t = radmin(c, 2, argv, &st);
	char v[96];
	if (!t || st != PM_ADMIN_OK || !field(t, "role", v, sizeof(v)))
		return false;
	c->pomaid_primary = !strcmp(v, "primary");
	bool replica = !strcmp(v, "replica");
	c->pomaid_epoch = field(t, "repl_epoch", v, sizeof(v)) ? strtoull(v, NULL, 10) : 0;
	c->pomaid_follows[0] = '\0';
	uint64_t lsn = 0, lag = 0;
	bool streaming = replica;
	uint32_t shards = 0, fewest = UINT32_MAX;
	for (const char *p = strstr(t, "# Shard "); p; p = strstr(p + 1, "# Shard ")) {
		shards++;
		if (field(p, "repl_connected_replicas", v, sizeof(v)) &&
		    strtoul(v, NULL, 10) < fewest)
			fewest = (uint32_t)strtoul(v, NULL, 10);
		if (replica && field(p, "repl_primary", v, sizeof(v)))
			snprintf(c->pomaid_follows, sizeof(c->pomaid_follows), "%s", v);
		if (field(p, "repl_link", v, sizeof(v)) && strcmp(v, "streaming"))
			streaming = false;
		if (field(p, "repl_durable_lsn", v, sizeof(v)))
			lsn += strtoull(v, NULL, 10);
		if (field(p, "repl_lag_records", v, sizeof(v)))
			lag += strtoull(v, NULL, 10);
	}
	c->durable_lsn = lsn;
	c->replicas = fewest == UINT32_MAX ? 0 : fewest;
	pthread_mutex_lock(&c->lock);
	c->lag_records = lag;
	c->status_lsn = lsn;
	c->status_replicas = c->replicas;
	c->status_streaming = streaming && shards;
	pthread_mutex_unlock(&c->lock);
	if (streaming && shards)
		c->streamed_ms = boot_ms();
	return true;
}

/* The document to pomaid, in parts of at most PM_ADMIN_ARG_BYTES_MAX cut at
 * line ends. */
static bool push_map(struct ctl_cluster *c, const char *text, size_t len)
{
	const char *argv[PM_ADMIN_ARGS_MAX];
	char part[PM_ADMIN_ARGS_MAX - 3][PM_ADMIN_ARG_BYTES_MAX + 1];
	uint32_t argc = 3;
	argv[0] = "CLUSTER", argv[1] = "MAP", argv[2] = c->cfg.node_name;
	size_t at = 0;
	while (at < len) {
		if (argc == PM_ADMIN_ARGS_MAX)
			return false;
		size_t n = len - at;
		if (n > PM_ADMIN_ARG_BYTES_MAX) {
			n = PM_ADMIN_ARG_BYTES_MAX;
			while (n && text[at + n - 1] != '\n')
				n--;
			if (!n)
				return false;
		}
		memcpy(part[argc - 3], text + at, n);
		part[argc - 3][n] = '\0';
		argv[argc] = part[argc - 3];
		argc++;
		at += n;
	}
	uint8_t st;
	const char *t = radmin(c, argc, argv, &st);
	if (!t || st != PM_ADMIN_OK) {
		logc("pomaid did not take map epoch %" PRIu64 ": %s", c->map->epoch,
		     t ? t : "no answer");
		return false;
	}
	atomic_fetch_add(&c->map_pushes, 1);
	return true;
}

/* ---------------------------------------------------------------- the reconciler: etcd */

static void node_doc(const struct ctl_cluster *c, char *out, size_t cap)
{
	char a[INET_ADDRSTRLEN];
	ctl_format_ipv4(c->cfg.advertise_addr, a, sizeof(a));
	snprintf(out, cap, "set=%s addr=%s udp=%u tcp=%u repl=%u shards=%u", c->cfg.replica_set, a,
		 c->ports.udp, c->ports.tcp, c->ports.repl, c->ports.shards);
}

/* nodes/<me> under the lease, created if absent; false while another
 * holder's key is there (a previous incarnation's: it expires with its lease). */
static bool do_register(struct ctl_cluster *c, int64_t lease)
{
	char key[KEY_BYTES], doc[VAL_BYTES];
	key_of(c, key, "nodes/%s", c->cfg.node_name);
	node_doc(c, doc, sizeof(doc));
	struct pm_etcd_cmp cmp = { .key = key, .target = PM_ETCD_CREATE, .number = 0 };
	struct pm_etcd_op put = { .kind = PM_ETCD_PUT, .key = key, .value = doc,
				  .value_len = strlen(doc), .lease = lease };
	struct pm_etcd_op get = { .kind = PM_ETCD_RANGE, .key = key };
	struct pm_etcd_txn t = { &cmp, 1, &put, &get, 1, 1 };
	struct pm_etcd_kvs kvs = { 0 };
	int rc = pm_etcd_txn(c->ea, &t, NULL, &kvs, CTL_ETCD_CALL_MS);
	bool ok = rc == PM_ETCD_OK;
	if (rc == PM_ETCD_FAILED && kvs.n == 1 && kvs.kv[0].lease == lease) {
		/* ours already: refresh the document (ports may have changed) */
		ok = pm_etcd_put(c->ea, key, doc, strlen(doc), lease, NULL, CTL_ETCD_CALL_MS) ==
		     PM_ETCD_OK;
	} else if (rc == PM_ETCD_FAILED) {
		logc("%s is held by lease %" PRId64 ": waiting for it to expire (another"
		     " pomai-control with this node_name, or this one's previous run)", key,
		     kvs.n ? kvs.kv[0].lease : 0);
	}
	pm_etcd_kvs_free(&kvs);
	return ok;
}

/* Replace the map (read at c->map_rev) by m, with extra compares: false if
 * it changed meanwhile or a compare failed (the caller reads again). */
/* Check m, print it, and write it to `slotmap` through handle e in one
 * transaction that compares cmp[] (ncmp <= 2) and, when jkey is given, puts
 * jval there too: the transaction's code (PM_ETCD_E_ARG: a map that breaks a
 * rule or does not print, said in err). */
static int map_put(struct ctl_cluster *c, struct pm_etcd *e, struct pm_cmap *m,
		   const struct pm_etcd_cmp *cmp, uint32_t ncmp, const char *jkey, const char *jval,
		   char *err, size_t errlen)
{
	char key[KEY_BYTES];
	key_of(c, key, "slotmap");
	if (pm_cmap_check(m, err, errlen) != 0)
		return PM_ETCD_E_ARG;
	char *text = malloc(PM_CLUSTER_MAP_TEXT_BYTES_MAX);
	size_t len = text ? pm_cmap_format(m, text, PM_CLUSTER_MAP_TEXT_BYTES_MAX) : 0;
	if (!len) {
		free(text);
		snprintf(err, errlen, "the map does not fit %u bytes", PM_CLUSTER_MAP_TEXT_BYTES_MAX);
		return PM_ETCD_E_ARG;
	}
	struct pm_etcd_op ops[2] = {
		{ .kind = PM_ETCD_PUT, .key = key, .value = text, .value_len = len },
		{ .kind = PM_ETCD_PUT, .key = jkey, .value = jval, .value_len = jval ? strlen(jval) : 0 },
	};
	struct pm_etcd_txn t = { cmp, ncmp, ops, NULL, jkey ? 2u : 1u, 0 };
	int rc = pm_etcd_txn(e, &t, NULL, NULL, CTL_ETCD_CALL_MS);
	free(text);
	if (rc != PM_ETCD_OK && rc != PM_ETCD_FAILED)
		snprintf(err, errlen, "etcd: %s", pm_etcd_error(e));
	return rc;
}

/* Replace the map (read at c->map_rev) by m, with one more compare (or
 * none): false if it changed meanwhile or the compare failed (the next pass
 * reads again). */
static bool map_write(struct ctl_cluster *c, struct pm_cmap *m, const struct pm_etcd_cmp *extra)
{
	char key[KEY_BYTES], err[256];
	key_of(c, key, "slotmap");
	struct pm_etcd_cmp cmp[2] = { { .key = key, .target = PM_ETCD_MOD, .number = c->map_rev } };
	if (extra)
		cmp[1] = *extra;
	int rc = map_put(c, c->ea, m, cmp, extra ? 2u : 1u, NULL, NULL, err, sizeof(err));
	if (rc == PM_ETCD_E_ARG)
		logc("a map was not written: %s", err);
	return rc == PM_ETCD_OK;
}

/* This node's line in the map, as it should read. */
static bool node_line_ok(const struct ctl_cluster *c, const struct pm_cmap *m, uint16_t set)
{
	uint16_t i = pm_cmap_node_index(m, c->cfg.node_name);
	if (i == PM_CMAP_NONE)
		return false;
	const struct pm_cmap_node *n = &m->nodes[i];
	return n->set == set && n->addr_be == htonl(c->cfg.advertise_addr) &&
	       n->udp_port == c->ports.udp && n->tcp_port == c->ports.tcp &&
	       n->repl_port == c->ports.repl && n->shards == c->ports.shards;
}

/* Add or correct this node's line (map epoch + 1). */
static bool node_line_write(struct ctl_cluster *c, uint16_t set)
{
	struct pm_cmap *m = c->tmp;
	*m = *c->map;
	uint16_t i = pm_cmap_node_index(m, c->cfg.node_name);
	if (i == PM_CMAP_NONE) {
		if (m->nnodes == PM_CLUSTER_NODES_MAX) {
			logc("the map holds %u nodes already", PM_CLUSTER_NODES_MAX);
			return false;
		}
		i = m->nnodes++;
		snprintf(m->nodes[i].name, sizeof(m->nodes[i].name), "%s", c->cfg.node_name);
	} else if (m->nodes[i].set != set && m->sets[m->nodes[i].set].primary == i) {
		m->sets[m->nodes[i].set].primary = PM_CMAP_NONE;
	}
	m->nodes[i].set = set;
	m->nodes[i].addr_be = htonl(c->cfg.advertise_addr);
	m->nodes[i].udp_port = c->ports.udp;
	m->nodes[i].tcp_port = c->ports.tcp;
	m->nodes[i].repl_port = c->ports.repl;
	m->nodes[i].shards = c->ports.shards;
	m->epoch++;
	return map_write(c, m, NULL);
}

static void set_role(struct ctl_cluster *c, const char *role)
{
	pthread_mutex_lock(&c->lock);
	snprintf(c->role, sizeof(c->role), "%s", role);
	pthread_mutex_unlock(&c->lock);
}

/* Everything under the prefix this pass acts on. */
struct view {
	struct pm_etcd_kvs kvs;
	const struct pm_etcd_kv *map, *leader;
	uint32_t alive_in_set;   /* nodes/ keys of this node's set */
	uint32_t cands;          /* candidacies in this node's set */
	const struct pm_etcd_kv *best; /* the best candidacy */
};

static uint64_t cand_prio(const struct pm_etcd_kv *kv)
{
	return word_u64((const char *)kv->value, kv->value_len, "prio");
}

/* Whether candidacy a beats b: priority, then durable LSN, then the lower name. */
static bool cand_better(const struct pm_etcd_kv *a, const char *an, const struct pm_etcd_kv *b,
			const char *bn)
{
	uint64_t pa = cand_prio(a), pb = cand_prio(b);
	if (pa != pb)
		return pa > pb;
	uint64_t la = word_u64((const char *)a->value, a->value_len, "lsn"),
		 lb = word_u64((const char *)b->value, b->value_len, "lsn");
	if (la != lb)
		return la > lb;
	return strcmp(an, bn) < 0;
}

static void view_read(struct ctl_cluster *c, struct view *v)
{
	char k[KEY_BYTES], nodes[KEY_BYTES], cands[KEY_BYTES], doc_set[PM_CLUSTER_NAME_BYTES_MAX + 2];
	key_of(c, k, "sets/%s/leader", c->cfg.replica_set);
	key_of(c, nodes, "nodes/");
	key_of(c, cands, "sets/%s/candidates/", c->cfg.replica_set);
	size_t nl = strlen(nodes), cl = strlen(cands);
	for (uint32_t i = 0; i < v->kvs.n; i++) {
		const struct pm_etcd_kv *kv = &v->kvs.kv[i];
		if (!strcmp(kv->key + strlen(c->prefix), "slotmap"))
			v->map = kv;
		else if (!strcmp(kv->key, k))
			v->leader = kv;
		else if (!strncmp(kv->key, nodes, nl) &&
			 word((const char *)kv->value, kv->value_len, "set", doc_set, sizeof(doc_set)) &&
			 !strcmp(doc_set, c->cfg.replica_set))
			v->alive_in_set++;
		else if (!strncmp(kv->key, cands, cl)) {
			v->cands++;
			if (!v->best || cand_better(kv, kv->key + cl, v->best, v->best->key + cl))
				v->best = kv;
		}
	}
}

static void leader_node(const struct pm_etcd_kv *leader, char *out, size_t cap)
{
	out[0] = '\0';
	if (leader)
		(void)word((const char *)leader->value, leader->value_len, "node", out, cap);
}

/* Follow node i of the map (REPLICATION FOLLOW), unless pomaid does. */
static void follow(struct ctl_cluster *c, uint16_t i)
{
	const struct pm_cmap_node *n = &c->map->nodes[i];
	char to[64], a[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &n->addr_be, a, sizeof(a));
	snprintf(to, sizeof(to), "%s:%u", a, n->repl_port);
	if (!c->pomaid_primary && !strcmp(c->pomaid_follows, to))
		return;
	const char *argv[] = { "REPLICATION", "FOLLOW", to };
	uint8_t st;
	const char *t = radmin(c, 3, argv, &st);
	logc("following %s (%s): %s", n->name, to, t && st == PM_ADMIN_OK ? "ok" : t ? t : "no answer");
	c->streamed_ms = 0;
}

/* The write deadline from the last confirmed renewal (0: none left). */
static uint64_t lease_deadline(struct ctl_cluster *c)
{
	uint32_t ttl = atomic_load(&c->ttl_ms), r = ttl / CTL_LEASE_RENEW_DIV;
	uint64_t d = atomic_load(&c->last_ok_send_ms) + ttl - r;
	return boot_ms() < d ? d : 0;
}

/* ---------------------------------------------------------------- resharding */

/* The job in etcd (key `reshard`): "first=A last=B from=S to=T state=copy|
 * freeze|purge". CLUSTER RESHARD writes it together with the map's move line;
 * the source set's primary runs it in its mover thread:
 *   copy   walk the slots' keys on every shard (CLUSTER EXPORT) and write them
 *          to the target set's primary over TCP; then the keys changed
 *          meanwhile (EXPORT DIRTY), round after round, until a round finds
 *          few (a lost list: walk again)
 *   freeze the move's state in the map: the source refuses writes to the
 *          slots (BUSY) once its pomaid has the map; the last changed keys go
 *   flip   one transaction: the slots are the target's in the map, the move
 *          line goes, the job's state is purge; the source answers MOVED
 *   purge  the source deletes its copies (CLUSTER PURGE, logged); the job goes
 * A mover that stops (its node lost the leadership, a connection failed)
 * leaves the job where it was; the next primary of the source starts it
 * again from its state. Copying a key again is harmless, but the keys
 * deleted during the copy lived only in the list of the pomaid that took the
 * deletions: so a mover that starts in copy or freeze first has the target
 * drop its copies of the slots — it writes a new nonce into the job
 * (`drop=`), the target set's primary purges the slots it receives (CLUSTER
 * PURGE shard cursor first last) and writes the nonce to `reshard_drop` —
 * and copies afresh. */
struct job {
	uint16_t first, last, from, to;
	char state[16];
	char drop[24]; /* the last drop nonce asked of the target ("": none) */
	uint32_t rate; /* keys per second copied at most (0: unthrottled) */
	int64_t rev;   /* the job key's mod revision */
};

static bool job_parse(const char *v, size_t n, const struct pm_cmap *m, struct job *j)
{
	char from[PM_CLUSTER_NAME_BYTES_MAX + 2], to[PM_CLUSTER_NAME_BYTES_MAX + 2];
	if (!word(v, n, "from", from, sizeof(from)) || !word(v, n, "to", to, sizeof(to)) ||
	    !word(v, n, "state", j->state, sizeof(j->state)))
		return false;
	if (!word(v, n, "drop", j->drop, sizeof(j->drop)))
		j->drop[0] = '\0';
	j->first = (uint16_t)word_u64(v, n, "first");
	j->last = (uint16_t)word_u64(v, n, "last");
	uint64_t rate = word_u64(v, n, "rate");
	j->rate = rate < CTL_MOVE_RATE_KEYS_PER_S_MAX ? (uint32_t)rate : CTL_MOVE_RATE_KEYS_PER_S_MAX;
	j->from = pm_cmap_set_index(m, from);
	j->to = pm_cmap_set_index(m, to);
	return j->from != PM_CMAP_NONE && j->to != PM_CMAP_NONE && j->first <= j->last &&
	       j->last < PM_CLUSTER_SLOTS;
}

struct mover {
	struct ctl_cluster *c;
	struct pm_etcd *e;
	int afd, tfd;       /* admin to pomaid; TCP to the target's primary */
	uint8_t *abuf;      /* ADMIN_BUF_BYTES */
	uint8_t rbuf[4096]; /* replies being read */
	uint32_t rlen;
	struct pm_cmap *map;
	int64_t map_rev;
	struct job j;
	uint32_t shards;
	uint64_t rate_t0, rate_keys; /* the throttle: since when, how many copied */
};

static bool mover_quit(const struct mover *mv)
{
	return atomic_load(&mv->c->quit) || !atomic_load(&mv->c->want_write_lease);
}

/* The map and the job as they are in etcd now; false if the job is gone. */
static bool mover_read(struct mover *mv)
{
	struct ctl_cluster *c = mv->c;
	char mk[KEY_BYTES], jk[KEY_BYTES], err[256];
	key_of(c, mk, "slotmap");
	key_of(c, jk, "reshard");
	struct pm_etcd_kvs a = { 0 }, b = { 0 };
	bool ok = pm_etcd_range(mv->e, mk, NULL, &a, CTL_ETCD_CALL_MS) == PM_ETCD_OK && a.n == 1 &&
		  pm_cmap_parse((const char *)a.kv[0].value, a.kv[0].value_len, mv->map, err,
				sizeof(err)) == 0 &&
		  pm_etcd_range(mv->e, jk, NULL, &b, CTL_ETCD_CALL_MS) == PM_ETCD_OK && b.n == 1 &&
		  job_parse((const char *)b.kv[0].value, b.kv[0].value_len, mv->map, &mv->j);
	if (ok) {
		mv->map_rev = a.kv[0].mod_revision;
		mv->j.rev = b.kv[0].mod_revision;
	}
	pm_etcd_kvs_free(&a);
	pm_etcd_kvs_free(&b);
	return ok;
}

/* The job's value with another state. */
static void job_text(const struct mover *mv, const char *state, char *out, size_t cap)
{
	char rate[32] = "";
	if (mv->j.rate)
		snprintf(rate, sizeof(rate), " rate=%u", mv->j.rate);
	snprintf(out, cap, "first=%u last=%u from=%s to=%s state=%s%s%s%s", mv->j.first,
		 mv->j.last, mv->map->sets[mv->j.from].name, mv->map->sets[mv->j.to].name, state,
		 rate, mv->j.drop[0] ? " drop=" : "", mv->j.drop);
}

/* Write the map (epoch + 1) and the job's new state in one transaction that
 * compares both as read. */
static bool mover_commit(struct mover *mv, const char *state)
{
	struct ctl_cluster *c = mv->c;
	char mk[KEY_BYTES], jk[KEY_BYTES], job[VAL_BYTES], err[256];
	key_of(c, mk, "slotmap");
	key_of(c, jk, "reshard");
	mv->map->epoch++;
	job_text(mv, state, job, sizeof(job));
	struct pm_etcd_cmp cmp[2] = {
		{ .key = mk, .target = PM_ETCD_MOD, .number = mv->map_rev },
		{ .key = jk, .target = PM_ETCD_MOD, .number = mv->j.rev },
	};
	int rc = map_put(c, mv->e, mv->map, cmp, 2, jk, job, err, sizeof(err));
	if (rc == PM_ETCD_OK)
		logc("reshard %u-%u: %s (map epoch %" PRIu64 ")", mv->j.first, mv->j.last, state,
		     mv->map->epoch);
	else if (rc != PM_ETCD_FAILED)
		logc("reshard %u-%u: %s not written: %s", mv->j.first, mv->j.last, state, err);
	return rc == PM_ETCD_OK;
}

/* The index of the move of the job in the map, or -1. */
static int job_move(const struct mover *mv)
{
	for (uint16_t i = 0; i < mv->map->nmoves; i++) {
		const struct pm_cmap_move *m = &mv->map->moves[i];
		if (m->first == mv->j.first && m->last == mv->j.last && m->from == mv->j.from &&
		    m->to == mv->j.to)
			return i;
	}
	return -1;
}

/* Give slots first..last to set `to` in the map's ranges (split and merged). */
static bool ranges_give(struct pm_cmap *m, uint16_t first, uint16_t last, uint16_t to)
{
	struct pm_cmap_range out[PM_CLUSTER_RANGES_MAX + 2];
	uint32_t n = 0;
	for (uint32_t s = 0; s < PM_CLUSTER_SLOTS;) {
		uint16_t set = s >= first && s <= last ? to : m->slot_set[s];
		uint32_t e = s;
		while (e + 1 < PM_CLUSTER_SLOTS &&
		       (e + 1 >= first && e + 1 <= last ? to : m->slot_set[e + 1]) == set)
			e++;
		if (n == PM_CLUSTER_RANGES_MAX)
			return false;
		out[n++] = (struct pm_cmap_range){ (uint16_t)s, (uint16_t)e, set };
		s = e + 1;
	}
	memcpy(m->ranges, out, n * sizeof(out[0]));
	m->nranges = (uint16_t)n;
	return true;
}

/* A TCP connection to the target set's primary (from the map). */
static bool target_connect(struct mover *mv)
{
	uint16_t p = mv->map->sets[mv->j.to].primary;
	if (mv->tfd >= 0)
		return true;
	if (p == PM_CMAP_NONE || !mv->map->nodes[p].tcp_port)
		return false;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(mv->map->nodes[p].tcp_port),
				 .sin_addr.s_addr = mv->map->nodes[p].addr_be };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	/* a target that does not answer or stops reading costs one bounded wait
	 * (connect and send both honour SO_SNDTIMEO), then a retry */
	struct timeval tv = { .tv_sec = mv->c->cfg.daemon_timeout_ms / 1000,
			      .tv_usec = (mv->c->cfg.daemon_timeout_ms % 1000) * 1000 };
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	mv->tfd = fd;
	mv->rlen = 0;
	return true;
}

static void target_close(struct mover *mv)
{
	if (mv->tfd >= 0)
		close(mv->tfd);
	mv->tfd = -1;
}

/* Read one reply frame's status from the target within timeout_ms; -1: none. */
static int reply_status(struct mover *mv, int timeout_ms)
{
	struct pm_frame_header h;
	for (;;) {
		if (mv->rlen >= PM_FRAME_HEADER_BYTES) {
			enum pm_wire_status st = pm_header_decode(mv->rbuf, mv->rlen, &h);
			if (st != PM_WIRE_OK && st != PM_WIRE_E_FRAME_TRUNCATED)
				return -1;
			size_t whole = PM_FRAME_HEADER_BYTES + (size_t)h.body_len;
			if (whole > sizeof(mv->rbuf))
				return -1; /* no reply to these requests is that long */
			if (mv->rlen >= whole) {
				memmove(mv->rbuf, mv->rbuf + whole, mv->rlen - whole);
				mv->rlen -= (uint32_t)whole;
				return h.status;
			}
		}
		struct pollfd pf = { .fd = mv->tfd, .events = POLLIN };
		if (poll(&pf, 1, timeout_ms) <= 0)
			return -1;
		ssize_t got = read(mv->tfd, mv->rbuf + mv->rlen, sizeof(mv->rbuf) - mv->rlen);
		if (got <= 0)
			return -1;
		mv->rlen += (uint32_t)got;
	}
}

/* Write n bytes of request frames (keys of them) to the target and read their
 * replies: true when each was applied (or was a deletion of nothing). A
 * refusal that passes (BUSY, READONLY, NOREPLICAS, MOVED before the target
 * has the move) is retried whole: the frames are idempotent. */
static bool target_apply(struct mover *mv, const uint8_t *p, size_t n)
{
	uint32_t frames = 0;
	for (size_t at = 0; at + PM_FRAME_HEADER_BYTES <= n; frames++) {
		struct pm_frame_header h;
		(void)pm_header_decode(p + at, n - at, &h);
		at += PM_FRAME_HEADER_BYTES + (size_t)h.body_len;
	}
	for (int attempt = 0; attempt < CTL_MOVE_ATTEMPTS && !mover_quit(mv); attempt++) {
		if (attempt)
			sleep_ms(mv->c, CTL_MOVE_RETRY_MS);
		if (!target_connect(mv))
			continue;
		size_t off = 0;
		while (off < n) {
			ssize_t w = write(mv->tfd, p + off, n - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		bool ok = off == n, again = false;
		for (uint32_t i = 0; ok && i < frames; i++) {
			int st = reply_status(mv, (int)mv->c->cfg.daemon_timeout_ms);
			if (st < 0)
				ok = false;
			else if (st == PM_WIRE_E_BUSY || st == PM_WIRE_E_READONLY ||
				 st == PM_WIRE_E_NOREPLICAS || st == PM_WIRE_E_MOVED ||
				 st == PM_WIRE_E_TIMEOUT)
				again = true;
			else if (st != PM_WIRE_OK && st != PM_WIRE_NOT_FOUND &&
				 st != PM_WIRE_E_WRONGTYPE) {
				logc("reshard: the target refused a key: %s", pm_wire_status_name((uint8_t)st));
				return false;
			}
		}
		if (!ok) {
			target_close(mv); /* replies out of step: start afresh */
			continue;
		}
		if (!again)
			return true;
	}
	return false;
}

/* The job's rate: after n more keys copied, wait until they are within it. */
static void throttle(struct mover *mv, uint32_t n)
{
	if (!mv->j.rate || !n)
		return;
	if (!mv->rate_t0)
		mv->rate_t0 = boot_ms();
	mv->rate_keys += n;
	uint64_t due = mv->rate_t0 + mv->rate_keys * 1000u / mv->j.rate, now;
	/* in short waits: a mover whose node lost the leadership stops at once */
	while ((now = boot_ms()) < due && !mover_quit(mv))
		sleep_ms(mv->c, due - now < CTL_MOVE_RETRY_MS ? due - now : CTL_MOVE_RETRY_MS);
}

/* One CLUSTER EXPORT (shard first last cursor) or PURGE (shard cursor
 * [first last]) call on the mover's admin connection: its status, the
 * answer's head (next cursor, flags, keys) and its frames; false when the
 * call failed (the connection is closed: the next call opens another). */
static bool walk_call(struct mover *mv, const char *verb, uint32_t shard, const char *cursor,
		      bool slots, uint8_t *st, uint32_t head[3], const uint8_t **frames,
		      size_t *flen)
{
	char sh[16], a[16], b[16];
	snprintf(sh, sizeof(sh), "%u", shard);
	snprintf(a, sizeof(a), "%u", mv->j.first);
	snprintf(b, sizeof(b), "%u", mv->j.last);
	bool purge = !strcmp(verb, "PURGE");
	const char *argv[] = { "CLUSTER", verb, sh, purge ? cursor : a, purge ? a : b,
			       purge ? b : cursor };
	const char *text;
	size_t tlen;
	if (mv->afd < 0 && (mv->afd = pm_admin_connect(mv->c->daemon_sock)) < 0)
		return false;
	if (pm_admin_call(mv->afd, purge && !slots ? 4 : 6, argv, mv->abuf, ADMIN_BUF_BYTES,
			  (int)mv->c->cfg.daemon_timeout_ms, st, &text, &tlen) != 0) {
		close(mv->afd);
		mv->afd = -1;
		return false;
	}
	if (*st == PM_ADMIN_OK && tlen < 12)
		*st = PM_ADMIN_ERROR;
	if (*st == PM_ADMIN_OK) {
		memcpy(head, text, 3 * sizeof(uint32_t));
		*frames = (const uint8_t *)text + 12;
		*flen = tlen - 12;
	}
	return true;
}

/* One EXPORT step: its keys written to the target. */
static bool export_step(struct mover *mv, uint32_t shard, const char *cursor, uint32_t *next,
			uint32_t *flags, uint32_t *keys)
{
	uint8_t st;
	uint32_t head[3];
	const uint8_t *frames;
	size_t flen;
	if (!walk_call(mv, "EXPORT", shard, cursor, true, &st, head, &frames, &flen) ||
	    st != PM_ADMIN_OK)
		return false;
	*next = head[0], *flags = head[1], *keys = head[2];
	atomic_fetch_add(&mv->c->moved_keys, *keys);
	if (flen && !target_apply(mv, frames, flen))
		return false;
	throttle(mv, *keys);
	return true;
}

/* Every key of the slots on every shard. */
static bool walk_all(struct mover *mv)
{
	for (uint32_t s = 0; s < mv->shards; s++) {
		uint32_t cur = 0, flags = 0, keys;
		do {
			char c[16];
			snprintf(c, sizeof(c), "%u", cur);
			if (mover_quit(mv) || !export_step(mv, s, c, &cur, &flags, &keys))
				return false;
		} while (!(flags & 0x1u));
	}
	return true;
}

/* A new drop nonce in the job (a transaction comparing the job as read). */
static bool request_drop(struct mover *mv)
{
	char jk[KEY_BYTES], job[VAL_BYTES];
	uint8_t r[8];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return false;
	for (int i = 0; i < 8; i++)
		snprintf(mv->j.drop + 2 * i, 3, "%02x", r[i]);
	key_of(mv->c, jk, "reshard");
	job_text(mv, mv->j.state, job, sizeof(job));
	struct pm_etcd_cmp cmp = { .key = jk, .target = PM_ETCD_MOD, .number = mv->j.rev };
	struct pm_etcd_op put = { .kind = PM_ETCD_PUT, .key = jk, .value = job,
				  .value_len = strlen(job) };
	struct pm_etcd_txn t = { &cmp, 1, &put, NULL, 1, 0 };
	return pm_etcd_txn(mv->e, &t, NULL, NULL, CTL_ETCD_CALL_MS) == PM_ETCD_OK &&
	       mover_read(mv);
}

/* The target's primary acknowledged the job's drop nonce (`reshard_drop`). */
static bool wait_drop(struct mover *mv)
{
	char ak[KEY_BYTES];
	key_of(mv->c, ak, "reshard_drop");
	for (uint64_t t0 = boot_ms(); boot_ms() - t0 < CTL_MOVE_DROP_WAIT_MS && !mover_quit(mv);) {
		struct pm_etcd_kvs a = { 0 };
		bool done = pm_etcd_range(mv->e, ak, NULL, &a, CTL_ETCD_CALL_MS) == PM_ETCD_OK &&
			    a.n == 1 && a.kv[0].value_len == strlen(mv->j.drop) &&
			    !memcmp(a.kv[0].value, mv->j.drop, a.kv[0].value_len);
		pm_etcd_kvs_free(&a);
		if (done)
			return true;
		sleep_ms(mv->c, CTL_MOVE_RETRY_MS);
	}
	logc("reshard %u-%u: the target did not drop its copies in %u ms", mv->j.first, mv->j.last,
	     CTL_MOVE_DROP_WAIT_MS);
	return false;
}

/* Copy the slots afresh: the target drops what it has of them, then every
 * key is walked (the keys changed since pomaid took the map are noted). */
static bool recopy(struct mover *mv)
{
	return request_drop(mv) && wait_drop(mv) && walk_all(mv);
}

/* One round of the keys changed since: how many (-1: failed, -2: a list was
 * lost, copy again). */
static long dirty_round(struct mover *mv)
{
	long total = 0;
	for (uint32_t s = 0; s < mv->shards; s++) {
		uint32_t cur, flags = 0, keys;
		do {
			if (mover_quit(mv) || !export_step(mv, s, "DIRTY", &cur, &flags, &keys))
				return -1;
			if (flags & 0x2u)
				return -2;
			total += keys;
		} while (!(flags & 0x1u));
	}
	return total;
}

/* Dirty rounds until one finds at most `few`; false if it failed. */
static bool settle_dirty(struct mover *mv, long few)
{
	for (int round = 0; round < CTL_MOVE_ROUNDS_MAX; round++) {
		long n = dirty_round(mv);
		if (n == -2 && !recopy(mv))
			return false;
		if (n == -1)
			return false;
		if (n >= 0 && n <= few)
			return true;
	}
	return few > 0; /* still busy: freeze anyway (the frozen rounds take the rest) */
}

/* pomaid holds map epoch >= e (the reconciler pushes it). */
static bool wait_map(struct mover *mv, uint64_t e)
{
	for (uint64_t t0 = boot_ms(); boot_ms() - t0 < CTL_MOVE_MAP_WAIT_MS && !mover_quit(mv);) {
		const char *argv[] = { "CLUSTER", "STATUS" };
		const char *text;
		size_t tlen;
		uint8_t st;
		char v[32];
		if (mv->afd < 0 && (mv->afd = pm_admin_connect(mv->c->daemon_sock)) < 0)
			return false;
		if (pm_admin_call(mv->afd, 2, argv, mv->abuf, ADMIN_BUF_BYTES - 1,
				  (int)mv->c->cfg.daemon_timeout_ms, &st, &text, &tlen) != 0)
			return false;
		memmove(mv->abuf, text, tlen);
		mv->abuf[tlen] = '\0';
		if (field((const char *)mv->abuf, "map_epoch", v, sizeof(v)) &&
		    strtoull(v, NULL, 10) >= e)
			return true;
		sleep_ms(mv->c, 20);
	}
	return false;
}

/* CLUSTER PURGE on every shard: the copies this node's set no longer owns,
 * or (ranged) those of the job's slots it receives. */
static bool purge_all(struct mover *mv, bool ranged)
{
	for (uint32_t s = 0; s < mv->shards; s++) {
		uint32_t head[3] = { 0, 0, 0 };
		do {
			char cs[16];
			uint8_t st;
			const uint8_t *frames;
			size_t flen;
			snprintf(cs, sizeof(cs), "%u", head[0]);
			if (mover_quit(mv) ||
			    !walk_call(mv, "PURGE", s, cs, ranged, &st, head, &frames, &flen))
				return false;
			if (st == PM_ADMIN_UNAVAILABLE) {
				sleep_ms(mv->c, CTL_MOVE_RETRY_MS);
				continue;
			}
			if (st != PM_ADMIN_OK)
				return false;
		} while (!(head[1] & 0x1u));
	}
	return true;
}

static void mover_run(struct mover *mv)
{
	if (!mover_read(mv))
		return;
	logc("reshard %u-%u from %s to %s: %s", mv->j.first, mv->j.last,
	     mv->map->sets[mv->j.from].name, mv->map->sets[mv->j.to].name, mv->j.state);
	if (!strcmp(mv->j.state, "copy")) {
		/* the changes are noted only once pomaid holds the map with the move */
		if (!wait_map(mv, mv->map->epoch) || !recopy(mv) ||
		    !settle_dirty(mv, CTL_MOVE_FEW_KEYS))
			return;
		int i = job_move(mv);
		if (i < 0)
			return;
		mv->map->moves[i].state = PM_CMAP_MOVE_FREEZE;
		if (!mover_commit(mv, "freeze") || !mover_read(mv))
			return;
	} else if (!strcmp(mv->j.state, "freeze")) {
		/* started frozen: the deletions noted before were another pomaid's */
		if (!wait_map(mv, mv->map->epoch) || !recopy(mv))
			return;
	}
	if (!strcmp(mv->j.state, "freeze")) {
		/* writes to the slots stop once pomaid has this map; then the last changes */
		if (!wait_map(mv, mv->map->epoch))
			return;
		long n;
		while ((n = dirty_round(mv)) != 0) {
			if (n == -1 || (n == -2 && !recopy(mv)))
				return;
		}
		int i = job_move(mv);
		if (i < 0)
			return;
		if (!ranges_give(mv->map, mv->j.first, mv->j.last, mv->j.to)) {
			logc("reshard: the map would have more than %u ranges", PM_CLUSTER_RANGES_MAX);
			return;
		}
		mv->map->moves[i] = mv->map->moves[--mv->map->nmoves];
		if (!mover_commit(mv, "purge") || !mover_read(mv))
			return;
	}
	if (!strcmp(mv->j.state, "purge")) {
		if (!wait_map(mv, mv->map->epoch) || !purge_all(mv, false))
			return;
		char jk[KEY_BYTES];
		key_of(mv->c, jk, "reshard");
		struct pm_etcd_cmp cmp = { .key = jk, .target = PM_ETCD_MOD, .number = mv->j.rev };
		struct pm_etcd_op del = { .kind = PM_ETCD_DELETE, .key = jk };
		struct pm_etcd_txn t = { &cmp, 1, &del, NULL, 1, 0 };
		if (pm_etcd_txn(mv->e, &t, NULL, NULL, CTL_ETCD_CALL_MS) == PM_ETCD_OK) {
			atomic_fetch_add(&mv->c->reshards_done, 1);
			logc("reshard %u-%u: done", mv->j.first, mv->j.last);
		}
	}
}

/* The target set's primary: drop its copies of the job's slots, then say
 * so with the job's nonce (compared: a newer request is answered anew). */
static void drop_run(struct mover *mv)
{
	if (!mover_read(mv) || !mv->j.drop[0] || strcmp(mv->j.state, "purge") == 0)
		return;
	/* pomaid must know the slots come to it: a ranged purge drops no other */
	if (!wait_map(mv, mv->map->epoch) || !purge_all(mv, true))
		return;
	char jk[KEY_BYTES], ak[KEY_BYTES];
	key_of(mv->c, jk, "reshard");
	key_of(mv->c, ak, "reshard_drop");
	struct pm_etcd_cmp cmp = { .key = jk, .target = PM_ETCD_MOD, .number = mv->j.rev };
	struct pm_etcd_op put = { .kind = PM_ETCD_PUT, .key = ak, .value = mv->j.drop,
				  .value_len = strlen(mv->j.drop) };
	struct pm_etcd_txn t = { &cmp, 1, &put, NULL, 1, 0 };
	if (pm_etcd_txn(mv->e, &t, NULL, NULL, CTL_ETCD_CALL_MS) == PM_ETCD_OK)
		logc("reshard %u-%u: dropped the copies here (%s)", mv->j.first, mv->j.last,
		     mv->j.drop);
}

static void *mover_main(void *arg)
{
	struct ctl_cluster *c = arg;
	char err[256];
	struct mover mv = { .c = c, .afd = -1, .tfd = -1, .shards = c->ports.shards };
	mv.e = pm_etcd_open(c->cfg.etcd_endpoints, err, sizeof(err));
	mv.abuf = malloc(ADMIN_BUF_BYTES);
	mv.map = malloc(sizeof(*mv.map));
	if (mv.e && mv.abuf && mv.map) {
		if (atomic_load(&c->mover_drops))
			drop_run(&mv);
		else
			mover_run(&mv);
	}
	target_close(&mv);
	if (mv.afd >= 0)
		close(mv.afd);
	if (mv.e)
		pm_etcd_close(mv.e);
	free(mv.abuf);
	free(mv.map);
	atomic_store(&c->mover_on, false);
	return NULL;
}

/* The primary of a job's source set: start its mover if it is not running;
 * of its target set: start the drop of its copies if one is asked and not
 * yet acknowledged. */
static void reshard_tick(struct ctl_cluster *c, const struct view *v, uint16_t set)
{
	char jk[KEY_BYTES], ak[KEY_BYTES];
	key_of(c, jk, "reshard");
	key_of(c, ak, "reshard_drop");
	const struct pm_etcd_kv *job = NULL, *ack = NULL;
	for (uint32_t i = 0; i < v->kvs.n; i++) {
		if (!strcmp(v->kvs.kv[i].key, jk))
			job = &v->kvs.kv[i];
		else if (!strcmp(v->kvs.kv[i].key, ak))
			ack = &v->kvs.kv[i];
	}
	struct job j;
	if (!job || !job_parse((const char *)job->value, job->value_len, c->map, &j) ||
	    atomic_load(&c->mover_on))
		return;
	bool drop = j.to == set && j.drop[0] && strcmp(j.state, "purge") != 0 &&
		    !(ack && ack->value_len == strlen(j.drop) &&
		      !memcmp(ack->value, j.drop, ack->value_len));
	if (j.from != set && !drop)
		return;
	if (c->mover_joinable)
		pthread_join(c->mover, NULL);
	atomic_store(&c->mover_drops, j.from != set);
	atomic_store(&c->mover_on, true);
	c->mover_joinable = pthread_create(&c->mover, NULL, mover_main, c) == 0;
	if (!c->mover_joinable)
		atomic_store(&c->mover_on, false);
}

/* CLUSTER RESHARD first last to: the job and the map's move line, in one
 * transaction (one job at a time). */
static uint8_t cmd_reshard(struct ctl_cluster *c, const struct pm_admin_req *r, struct text *t)
{
	char a[16], b[16], to[PM_CLUSTER_NAME_BYTES_MAX + 2], err[256], mk[KEY_BYTES],
		jk[KEY_BYTES], job[VAL_BYTES];
	char rt[16] = "0";
	if ((r->argc != 5 && r->argc != 6) || r->arg[2].len >= sizeof(a) ||
	    r->arg[3].len >= sizeof(b) || r->arg[4].len >= sizeof(to) ||
	    (r->argc == 6 && r->arg[5].len >= sizeof(rt))) {
		put(t, "CLUSTER RESHARD first last set [keys_per_s]\n");
		return PM_ADMIN_USAGE;
	}
	if (r->argc == 6)
		memcpy(rt, r->arg[5].p, r->arg[5].len), rt[r->arg[5].len] = '\0';
	char *e3;
	unsigned long rate = strtoul(rt, &e3, 10);
	if (!rt[0] || *e3 || rt[0] == '-' || rate > CTL_MOVE_RATE_KEYS_PER_S_MAX) {
		put(t, "rate: keys per second, 0 (unthrottled) to %u\n",
		    CTL_MOVE_RATE_KEYS_PER_S_MAX);
		return PM_ADMIN_USAGE;
	}
	memcpy(a, r->arg[2].p, r->arg[2].len), a[r->arg[2].len] = '\0';
	memcpy(b, r->arg[3].p, r->arg[3].len), b[r->arg[3].len] = '\0';
	memcpy(to, r->arg[4].p, r->arg[4].len), to[r->arg[4].len] = '\0';
	char *e1, *e2;
	unsigned long first = strtoul(a, &e1, 10), last = strtoul(b, &e2, 10);
	if (!a[0] || !b[0] || *e1 || *e2 || first > last || last >= PM_CLUSTER_SLOTS) {
		put(t, "slots: first <= last < %u\n", PM_CLUSTER_SLOTS);
		return PM_ADMIN_USAGE;
	}
	if (!c->em && !(c->em = pm_etcd_open(c->cfg.etcd_endpoints, err, sizeof(err)))) {
		put(t, "%s\n", err);
		return PM_ADMIN_ERROR;
	}
	key_of(c, mk, "slotmap");
	key_of(c, jk, "reshard");
	struct pm_etcd_kvs kvs = { 0 };
	struct pm_cmap *m = malloc(sizeof(*m));
	uint8_t st = PM_ADMIN_ERROR;
	if (!m || pm_etcd_range(c->em, mk, NULL, &kvs, CTL_ETCD_CALL_MS) != PM_ETCD_OK || kvs.n != 1 ||
	    pm_cmap_parse((const char *)kvs.kv[0].value, kvs.kv[0].value_len, m, err,
			  sizeof(err)) != 0) {
		put(t, "no usable map in etcd\n");
		goto out;
	}
	uint16_t dst = pm_cmap_set_index(m, to), src = m->slot_set[first];
	for (unsigned long s = first; s <= last; s++)
		if (m->slot_set[s] != src) {
			put(t, "slots %lu-%lu are not all one set's (slot %lu is %s's, %lu is %s's)\n",
			    first, last, first, m->sets[src].name, s, m->sets[m->slot_set[s]].name);
			goto out;
		}
	if (dst == PM_CMAP_NONE || dst == src || m->nmoves == PM_CLUSTER_MOVES_MAX) {
		put(t, dst == PM_CMAP_NONE ? "set %s is not in the map\n"
		       : dst == src ? "the slots are %s's already\n" : "%s: too many moves\n", to);
		goto out;
	}
	m->moves[m->nmoves++] = (struct pm_cmap_move){ (uint16_t)first, (uint16_t)last, src, dst,
						       PM_CMAP_MOVE_COPY };
	m->epoch++;
	int jl = snprintf(job, sizeof(job), "first=%lu last=%lu from=%s to=%s state=copy", first,
			  last, m->sets[src].name, m->sets[dst].name);
	if (rate)
		snprintf(job + jl, sizeof(job) - (size_t)jl, " rate=%lu", rate);
	struct pm_etcd_cmp cmp[2] = {
		{ .key = mk, .target = PM_ETCD_MOD, .number = kvs.kv[0].mod_revision },
		{ .key = jk, .target = PM_ETCD_CREATE, .number = 0 },
	};
	int rc = map_put(c, c->em, m, cmp, 2, jk, job, err, sizeof(err));
	struct pm_etcd_kvs jobs = { 0 };
	if (rc == PM_ETCD_FAILED && pm_etcd_range(c->em, jk, NULL, &jobs, CTL_ETCD_CALL_MS) ==
					    PM_ETCD_OK && jobs.n == 1) {
		put(t, "a reshard is under way (%.*s): one at a time\n", (int)jobs.kv[0].value_len,
		    (const char *)jobs.kv[0].value);
	} else if (rc == PM_ETCD_OK) {
		put(t, "reshard:started\r\nslots:%lu-%lu\r\nfrom:%s\r\nto:%s\r\nrate:%lu\r\n"
		       "map_epoch:%" PRIu64 "\r\n", first, last, m->sets[src].name,
		    m->sets[dst].name, rate, m->epoch);
		st = PM_ADMIN_OK;
	} else {
		put(t, "%s\n", rc == PM_ETCD_FAILED ? "the map changed meanwhile: again" : err);
	}
	pm_etcd_kvs_free(&jobs);
out:
	pm_etcd_kvs_free(&kvs);
	free(m);
	return st;
}

/* ---------------------------------------------------------------- collections */

/* A collection exists cluster-wide or not at all: collections/<name> records
 * it first (CLUSTER COLLECTION CREATE), then each set's primary applies it
 * and records applied/<name>/<set>; a primary applies every record it has
 * not, at every pass, so a set that was down gets it when it is back. A drop
 * is recorded the same way (state=drop), and the records go once every set
 * of the map has dropped it. */
static bool coll_name_ok(const char *p, size_t n)
{
	if (n == 0 || n > CTL_COLL_NAME_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
		      (p[i] >= '0' && p[i] <= '9') || p[i] == '_' || p[i] == '-' || p[i] == '.'))
			return false;
	return true;
}

/* The record's parameters as COLLECTION CREATE's arguments (state= left out). */
static uint32_t coll_args(const char *def, size_t len, char words[][64], uint32_t max)
{
	uint32_t n = 0;
	for (size_t i = 0; i < len && n < max;) {
		size_t j = i;
		while (j < len && def[j] != ' ')
			j++;
		if (j > i && j - i < 64 && strncmp(def + i, "state=", 6)) {
			memcpy(words[n], def + i, j - i);
			words[n++][j - i] = '\0';
		}
		i = j + 1;
	}
	return n;
}

static void colls_apply(struct ctl_cluster *c, const struct view *v)
{
	char cp[KEY_BYTES], ap[KEY_BYTES];
	key_of(c, cp, "collections/");
	key_of(c, ap, "applied/");
	size_t cl = strlen(cp), al = strlen(ap);
	for (uint32_t i = 0; i < v->kvs.n; i++) {
		const struct pm_etcd_kv *kv = &v->kvs.kv[i];
		if (strncmp(kv->key, cp, cl))
			continue;
		const char *name = kv->key + cl, *def = (const char *)kv->value;
		char state[16] = "live", akey[KEY_BYTES];
		(void)word(def, kv->value_len, "state", state, sizeof(state));
		bool drop = !strcmp(state, "drop");
		key_of(c, akey, "applied/%s/%s", name, c->cfg.replica_set);
		const char *done = NULL;
		uint32_t dropped = 0;
		for (uint32_t k = 0; k < v->kvs.n; k++) {
			const struct pm_etcd_kv *a = &v->kvs.kv[k];
			if (!strcmp(a->key, akey))
				done = (const char *)a->value;
			if (!strncmp(a->key, ap, al) && !strncmp(a->key + al, name, strlen(name)) &&
			    a->key[al + strlen(name)] == '/' && !strcmp((const char *)a->value, "dropped"))
				dropped++;
		}
		/* the record as this pass read it: a mark or the clean-up written after
		 * another primary's clean-up would outlive the record */
		struct pm_etcd_cmp same = { .key = kv->key, .target = PM_ETCD_MOD,
					    .number = kv->mod_revision };
		if (drop && dropped >= c->map->nsets) { /* every set dropped it: the records go */
			char end[KEY_BYTES], pre[KEY_BYTES];
			key_of(c, pre, "applied/%s/", name);
			pm_etcd_prefix_end(pre, end, sizeof(end));
			struct pm_etcd_op del[2] = {
				{ .kind = PM_ETCD_DELETE, .key = pre, .range_end = end },
				{ .kind = PM_ETCD_DELETE, .key = kv->key },
			};
			struct pm_etcd_txn t = { &same, 1, del, NULL, 2, 0 };
			(void)pm_etcd_txn(c->ea, &t, NULL, NULL, CTL_ETCD_CALL_MS);
			continue;
		}
		if (done && !strcmp(done, drop ? "dropped" : "created"))
			continue;
		char words[12][64];
		const char *argv[16] = { "COLLECTION", drop ? "DROP" : "CREATE", name };
		uint32_t argc = 3;
		if (!drop) {
			uint32_t n = coll_args(def, kv->value_len, words, 12);
			for (uint32_t k = 0; k < n; k++)
				argv[argc++] = words[k];
		}
		uint8_t st;
		const char *t = radmin(c, argc, argv, &st);
		if (!t || st != PM_ADMIN_OK) {
			if (t && strstr(t, "EXISTS")) /* a collection of that name, other parameters */
				logc("collection %s exists here with other parameters than the"
				     " cluster's record: not applied", name);
			continue; /* retried at the next pass */
		}
		const char *mark = drop ? "dropped" : "created";
		struct pm_etcd_op put = { .kind = PM_ETCD_PUT, .key = akey, .value = mark,
					  .value_len = strlen(mark) };
		struct pm_etcd_txn tx = { &same, 1, &put, NULL, 1, 0 };
		(void)pm_etcd_txn(c->ea, &tx, NULL, NULL, CTL_ETCD_CALL_MS);
	}
}

/* The elected leader of its set: promote pomaid and commit it to the map,
 * then give pomaid its write lease. */
static void lead(struct ctl_cluster *c, const struct view *v, uint16_t set)
{
	uint16_t me = pm_cmap_node_index(c->map, c->cfg.node_name);
	struct pm_cmap_set *s = &c->map->sets[set];
	if (s->primary != me || s->epoch != c->pomaid_epoch || !c->pomaid_primary) {
		if (c->promoted_for != v->leader->create_revision &&
		    !(s->primary == me && c->pomaid_primary && s->epoch == c->pomaid_epoch)) {
			const char *argv[] = { "REPLICATION", "PROMOTE" };
			uint8_t st;
			const char *t = radmin(c, 2, argv, &st);
			char e[32];
			if (!t || st != PM_ADMIN_OK || !field(t, "repl_epoch", e, sizeof(e))) {
				logc("PROMOTE failed: %s", t ? t : "no answer");
				return;
			}
			c->promoted_for = v->leader->create_revision;
			c->pomaid_epoch = strtoull(e, NULL, 10);
			c->pomaid_primary = true;
			logc("promoted: epoch %" PRIu64, c->pomaid_epoch);
		}
		struct pm_cmap *m = c->tmp;
		*m = *c->map;
		m->sets[set].primary = me;
		m->sets[set].epoch = c->pomaid_epoch;
		m->epoch++;
		char lk[KEY_BYTES];
		key_of(c, lk, "sets/%s/leader", c->cfg.replica_set);
		struct pm_etcd_cmp mine = { .key = lk, .target = PM_ETCD_CREATE,
					    .number = v->leader->create_revision };
		if (map_write(c, m, &mine)) {
			atomic_fetch_add(&c->elections_won, 1);
			logc("primary of %s in map epoch %" PRIu64, c->cfg.replica_set, m->epoch);
		}
		return; /* the next pass reads the map it wrote */
	}
	uint64_t d = lease_deadline(c);
	if (!d)
		return; /* the keeper could not renew: no write lease */
	if (c->led_for != v->leader->create_revision || !c->led_ms) {
		c->led_for = v->leader->create_revision;
		c->led_ms = boot_ms();
	}
	if (!atomic_load(&c->want_write_lease) && c->replicas < c->min_replicas &&
	    boot_ms() - c->led_ms < CTL_REPLICA_WAIT_MS) {
		set_role(c, "primary");
		return; /* its replicas are on their way: writes would get NOREPLICAS */
	}
	if (!atomic_exchange(&c->want_write_lease, true)) {
		const char *argv[2 + 1];
		char until[32];
		snprintf(until, sizeof(until), "%" PRIu64, d);
		argv[0] = "CLUSTER", argv[1] = "LEASE", argv[2] = until;
		uint8_t st;
		(void)radmin(c, 3, argv, &st);
		logc("taking writes (write lease until %s)", until);
	}
	set_role(c, "primary");
	colls_apply(c, v);
	reshard_tick(c, v, set);
}

/* No leader: stand if eligible, campaign if the best. */
static void elect(struct ctl_cluster *c, const struct view *v, uint16_t set, int64_t lease)
{
	uint16_t me = pm_cmap_node_index(c->map, c->cfg.node_name);
	uint16_t prim = c->map->sets[set].primary;
	uint32_t ttl = atomic_load(&c->ttl_ms);
	bool was_primary = prim == me && c->pomaid_primary;
	bool fresh = prim == PM_CMAP_NONE;
	bool streamed = c->streamed_ms && boot_ms() - c->streamed_ms <= ttl + CTL_STREAMED_MS;
	if (!was_primary && !fresh && !streamed) {
		set_role(c, "none");
		return; /* not synced with the last primary: it may lack acknowledged writes */
	}
	set_role(c, "candidate");
	char ck[KEY_BYTES], doc[VAL_BYTES];
	key_of(c, ck, "sets/%s/candidates/%s", c->cfg.replica_set, c->cfg.node_name);
	if (!c->cand_since_ms || c->cand_lease != lease) {
		snprintf(doc, sizeof(doc), "lsn=%" PRIu64 " prio=%u", c->durable_lsn,
			 was_primary ? 1u : 0u);
		if (pm_etcd_put(c->ea, ck, doc, strlen(doc), lease, NULL, CTL_ETCD_CALL_MS) !=
		    PM_ETCD_OK)
			return;
		c->cand_since_ms = boot_ms();
		c->cand_lease = lease;
		return; /* the next pass sees it with the others' */
	}
	uint64_t waited = boot_ms() - c->cand_since_ms;
	const char *cl = ck + strlen(ck) - strlen(c->cfg.node_name);
	bool best = v->best && !strcmp(v->best->key + (cl - ck), c->cfg.node_name);
	bool all_in = v->cands >= v->alive_in_set;
	if (!((best && (all_in || waited >= CTL_CANDIDACY_MS)) ||
	      waited >= CTL_CANDIDACY_MS * CTL_CANDIDACY_GIVEUP))
		return;
	char lk[KEY_BYTES], cands[KEY_BYTES], cands_end[KEY_BYTES];
	key_of(c, lk, "sets/%s/leader", c->cfg.replica_set);
	key_of(c, cands, "sets/%s/candidates/", c->cfg.replica_set);
	pm_etcd_prefix_end(cands, cands_end, sizeof(cands_end));
	snprintf(doc, sizeof(doc), "node=%s", c->cfg.node_name);
	struct pm_etcd_cmp cmp = { .key = lk, .target = PM_ETCD_CREATE, .number = 0 };
	struct pm_etcd_op ops[2] = {
		{ .kind = PM_ETCD_PUT, .key = lk, .value = doc, .value_len = strlen(doc),
		  .lease = lease },
		{ .kind = PM_ETCD_DELETE, .key = cands, .range_end = cands_end },
	};
	struct pm_etcd_txn t = { &cmp, 1, ops, NULL, 2, 0 };
	int rc = pm_etcd_txn(c->ea, &t, NULL, NULL, CTL_ETCD_CALL_MS);
	if (rc == PM_ETCD_OK)
		logc("won the leadership of %s (durable lsn %" PRIu64 ")", c->cfg.replica_set,
		     c->durable_lsn);
	c->cand_since_ms = 0;
}

/* One pass over the cluster's state. */
static void reconcile(struct ctl_cluster *c)
{
	int64_t lease = atomic_load(&c->lease_id);
	if (c->afd < 0 && !pomaid_ports(c)) {
		if (c->afd >= 0) {
			close(c->afd);
			c->afd = -1;
		}
		set_role(c, "detached");
		return;
	}
	if (!pomaid_repl(c)) {
		set_role(c, "detached");
		if (atomic_exchange(&c->want_write_lease, false) && lease) {
			/* pomaid died while primary: free the leadership now */
			logc("pomaid is gone while primary: revoking lease %" PRId64, lease);
			(void)pm_etcd_revoke(c->ea, lease, CTL_ETCD_CALL_MS);
		}
		return;
	}
	if (!lease)
		return;
	if (!c->registered || c->registered_lease != lease) {
		c->registered = do_register(c, lease);
		c->registered_lease = lease;
		c->cand_since_ms = 0;
		if (!c->registered)
			return;
	}
	struct view v = { 0 };
	if (pm_etcd_range(c->ea, c->prefix, c->prefix_end, &v.kvs, CTL_ETCD_CALL_MS) != PM_ETCD_OK)
		return;
	view_read(c, &v);
	char err[256];
	if (!v.map || pm_cmap_parse((const char *)v.map->value, v.map->value_len, c->map, err,
				    sizeof(err)) != 0) {
		if (v.map)
			logc("the map in etcd is unusable: %s", err);
		set_role(c, "none");
		pm_etcd_kvs_free(&v.kvs);
		return;
	}
	c->map_rev = v.map->mod_revision;
	pthread_mutex_lock(&c->lock);
	memcpy(c->map_text, v.map->value, v.map->value_len);
	c->map_len = v.map->value_len;
	pthread_mutex_unlock(&c->lock);
	uint16_t set = pm_cmap_set_index(c->map, c->cfg.replica_set);
	if (set == PM_CMAP_NONE) {
		logc("set %s is not in the map (pomaictl cluster addset, or CLUSTER INIT)",
		     c->cfg.replica_set);
		set_role(c, "none");
	} else if (!node_line_ok(c, c->map, set)) {
		(void)node_line_write(c, set);
	} else {
		if ((c->pushed_len != v.map->value_len ||
		     memcmp(c->pushed_text, v.map->value, v.map->value_len)) &&
		    push_map(c, (const char *)v.map->value, v.map->value_len)) {
			memcpy(c->pushed_text, v.map->value, v.map->value_len);
			c->pushed_len = v.map->value_len;
			pthread_mutex_lock(&c->lock);
			c->map_epoch_pushed = c->map->epoch;
			pthread_mutex_unlock(&c->lock);
		}
		char ln[PM_CLUSTER_NAME_BYTES_MAX + 2];
		leader_node(v.leader, ln, sizeof(ln));
		if (v.leader && !strcmp(ln, c->cfg.node_name) && v.leader->lease == lease) {
			c->cand_since_ms = 0;
			lead(c, &v, set);
		} else {
			c->led_ms = 0;
			if (atomic_exchange(&c->want_write_lease, false)) {
				const char *argv[] = { "CLUSTER", "LEASE", "0" };
				uint8_t st;
				(void)radmin(c, 3, argv, &st);
				atomic_fetch_add(&c->fences, 1);
				logc("no longer the leader of %s: fenced", c->cfg.replica_set);
			}
			uint16_t prim = c->map->sets[set].primary;
			if (v.leader) {
				c->cand_since_ms = 0;
				uint16_t me = pm_cmap_node_index(c->map, c->cfg.node_name);
				if (prim != PM_CMAP_NONE && prim != me &&
				    !strcmp(c->map->nodes[prim].name, ln))
					follow(c, prim);
				set_role(c, "replica");
			} else {
				elect(c, &v, set, lease);
			}
		}
	}
	pm_etcd_kvs_free(&v.kvs);
}

static void *recon_main(void *arg)
{
	struct ctl_cluster *c = arg;
	int64_t rev = 0;
	while (!atomic_load(&c->quit)) {
		reconcile(c);
		/* from now: every pass reads the whole prefix, so the watch only wakes
		 * the loop and nothing missed while it was down is lost (a restart
		 * from an old revision could also meet a compaction) */
		if (!pm_etcd_watching(c->ea) &&
		    pm_etcd_watch_start(c->ea, c->prefix, c->prefix_end, 0) != PM_ETCD_OK) {
			sleep_ms(c, CTL_RECONCILE_MS);
			continue;
		}
		/* the watch wakes the loop on every change; between changes a pass
		 * each CTL_RECONCILE_MS samples pomaid (its replicas' streaming), or
		 * sooner while a candidacy or a new primary's replicas are awaited */
		bool soon = atomic_load(&c->etcd_up) &&
			    (c->cand_since_ms || (c->led_ms && !atomic_load(&c->want_write_lease)));
		int wait = soon ? (int)CTL_RECONCILE_SOON_MS : CTL_RECONCILE_MS;
		uint64_t t0 = boot_ms();
		int rc = pm_etcd_watch_wait(c->ea, wait, NULL, NULL, &rev);
		if (rc < 0) { /* etcd gone or the stream cut: not again at once */
			pm_etcd_watch_stop(c->ea);
			uint64_t now = boot_ms();
			sleep_ms(c, now < t0 + (uint64_t)wait ? t0 + (uint64_t)wait - now : 0);
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------- start, stop */

struct ctl_cluster *ctl_cluster_start(const struct ctl_config *cfg, const char *daemon_sock,
				      char *err, size_t errlen)
{
	if (!cfg->cluster_name[0] || !cfg->node_name[0] || !cfg->replica_set[0]) {
		snprintf(err, errlen, "etcd_endpoints is set: cluster_name, node_name and"
			 " replica_set are needed too");
		return NULL;
	}
	struct ctl_cluster *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->cfg = *cfg;
	c->afd = -1;
	snprintf(c->daemon_sock, sizeof(c->daemon_sock), "%s", daemon_sock);
	snprintf(c->prefix, sizeof(c->prefix), "/pomai/%s/", cfg->cluster_name);
	pm_etcd_prefix_end(c->prefix, c->prefix_end, sizeof(c->prefix_end));
	c->ttl_asked_ms = cfg->lease_ttl_ms;
	atomic_store(&c->ttl_ms, cfg->lease_ttl_ms);
	snprintf(c->role, sizeof(c->role), "none");
	pthread_mutex_init(&c->lock, NULL);
	c->map = malloc(sizeof(*c->map));
	c->tmp = malloc(sizeof(*c->tmp));
	c->map_text = malloc(PM_CLUSTER_MAP_TEXT_BYTES_MAX + 1);
	c->pushed_text = malloc(PM_CLUSTER_MAP_TEXT_BYTES_MAX + 1);
	c->abuf = malloc(ADMIN_BUF_BYTES);
	if (!c->map || !c->tmp || !c->map_text || !c->pushed_text || !c->abuf) {
		snprintf(err, errlen, "out of memory");
		ctl_cluster_stop(c);
		return NULL;
	}
	if (!(c->ea = pm_etcd_open(cfg->etcd_endpoints, err, errlen))) {
		ctl_cluster_stop(c);
		return NULL;
	}
	c->keeper_on = pthread_create(&c->keeper, NULL, keeper_main, c) == 0;
	c->recon_on = c->keeper_on && pthread_create(&c->recon, NULL, recon_main, c) == 0;
	if (!c->recon_on) {
		snprintf(err, errlen, "cannot start the cluster agent's threads");
		ctl_cluster_stop(c);
		return NULL;
	}
	return c;
}

void ctl_cluster_stop(struct ctl_cluster *c)
{
	if (!c)
		return;
	atomic_store(&c->quit, true);
	if (c->keeper_on)
		pthread_join(c->keeper, NULL);
	if (c->recon_on)
		pthread_join(c->recon, NULL);
	if (c->mover_joinable)
		pthread_join(c->mover, NULL);
	if (c->afd >= 0)
		close(c->afd);
	if (c->ea)
		pm_etcd_close(c->ea);
	if (c->em)
		pm_etcd_close(c->em);
	free(c->map);
	free(c->tmp);
	free(c->map_text);
	free(c->pushed_text);
	free(c->abuf);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* ---------------------------------------------------------------- commands (main thread) */

/* CLUSTER INIT s1,s2,...: the first map, slots split evenly, every
 * registered node of those sets, no primaries yet. */
static uint8_t cmd_init(struct ctl_cluster *c, const char *sets, struct text *t)
{
	struct pm_cmap *m = calloc(1, sizeof(*m));
	char err[256], nodes[KEY_BYTES], nodes_end[KEY_BYTES], key[KEY_BYTES];
	uint8_t st = PM_ADMIN_ERROR;
	struct pm_etcd_kvs kvs = { 0 };
	if (!m) {
		put(t, "out of memory\n");
		return PM_ADMIN_ERROR;
	}
	for (const char *p = sets; *p;) {
		size_t n = strcspn(p, ",");
		if (m->nsets == PM_CLUSTER_SETS_MAX || !pm_cmap_name_ok(p, n)) {
			put(t, "CLUSTER INIT set,set,...: names of 1..%u bytes of a-z 0-9 _ -, at most"
			       " %u sets\n", PM_CLUSTER_NAME_BYTES_MAX, PM_CLUSTER_SETS_MAX);
			free(m);
			return PM_ADMIN_USAGE;
		}
		struct pm_cmap_set *s = &m->sets[m->nsets++];
		memcpy(s->name, p, n);
		s->primary = PM_CMAP_NONE;
		p += n + (p[n] == ',');
	}
	if (!c->em && !(c->em = pm_etcd_open(c->cfg.etcd_endpoints, err, sizeof(err)))) {
		put(t, "%s\n", err);
		goto out;
	}
	key_of(c, nodes, "nodes/");
	pm_etcd_prefix_end(nodes, nodes_end, sizeof(nodes_end));
	if (pm_etcd_range(c->em, nodes, nodes_end, &kvs, CTL_ETCD_CALL_MS) != PM_ETCD_OK) {
		put(t, "etcd: %s\n", pm_etcd_error(c->em));
		goto out;
	}
	for (uint32_t i = 0; i < kvs.n && m->nnodes < PM_CLUSTER_NODES_MAX; i++) {
		const struct pm_etcd_kv *kv = &kvs.kv[i];
		const char *v = (const char *)kv->value;
		char set[PM_CLUSTER_NAME_BYTES_MAX + 2], addr[32];
		if (!word(v, kv->value_len, "set", set, sizeof(set)) ||
		    pm_cmap_set_index(m, set) == PM_CMAP_NONE ||
		    !word(v, kv->value_len, "addr", addr, sizeof(addr)))
			continue;
		struct pm_cmap_node *n = &m->nodes[m->nnodes];
		snprintf(n->name, sizeof(n->name), "%s", kv->key + strlen(nodes));
		n->set = pm_cmap_set_index(m, set);
		if (inet_pton(AF_INET, addr, &n->addr_be) != 1)
			continue;
		n->udp_port = (uint16_t)word_u64(v, kv->value_len, "udp");
		n->tcp_port = (uint16_t)word_u64(v, kv->value_len, "tcp");
		n->repl_port = (uint16_t)word_u64(v, kv->value_len, "repl");
		n->shards = (uint8_t)word_u64(v, kv->value_len, "shards");
		m->nnodes++;
	}
	for (uint16_t i = 0; i < m->nsets; i++)
		m->ranges[m->nranges++] = (struct pm_cmap_range){
			.first = (uint16_t)(PM_CLUSTER_SLOTS * i / m->nsets),
			.last = (uint16_t)(PM_CLUSTER_SLOTS * (i + 1u) / m->nsets - 1u), .set = i };
	m->epoch = 1;
	key_of(c, key, "slotmap");
	struct pm_etcd_cmp cmp = { .key = key, .target = PM_ETCD_CREATE, .number = 0 };
	int rc = map_put(c, c->em, m, &cmp, 1, NULL, NULL, err, sizeof(err));
	if (rc == PM_ETCD_FAILED)
		put(t, "the cluster has a map already\n");
	else if (rc != PM_ETCD_OK)
		put(t, "%s\n", err);
	else {
		put(t, "map_epoch:1\r\nsets:%u\r\nnodes:%u\r\n", m->nsets, m->nnodes);
		st = PM_ADMIN_OK;
	}
out:
	pm_etcd_kvs_free(&kvs);
	free(m);
	return st;
}

/* The sections of a map: each set's primary, epoch, nodes and slots. */
static void describe(const struct pm_cmap *m, struct text *t, bool nodes, bool slots)
{
	for (uint16_t s = 0; s < m->nsets; s++) {
		const struct pm_cmap_set *x = &m->sets[s];
		put(t, "# Set %s\r\nprimary:%s\r\nepoch:%" PRIu64 "\r\nnodes:", x->name,
		    x->primary == PM_CMAP_NONE ? "-" : m->nodes[x->primary].name, x->epoch);
		bool first = true;
		for (uint16_t i = 0; i < m->nnodes; i++)
			if (m->nodes[i].set == s) {
				put(t, "%s%s", first ? "" : ",", m->nodes[i].name);
				first = false;
			}
		put(t, "\r\nslots:");
		first = true;
		uint32_t owned = 0;
		for (uint16_t r = 0; r < m->nranges; r++)
			if (m->ranges[r].set == s) {
				put(t, "%s%u-%u", first ? "" : ",", m->ranges[r].first, m->ranges[r].last);
				owned += m->ranges[r].last - m->ranges[r].first + 1u;
				first = false;
			}
		put(t, "\r\nslots_owned:%u\r\n", owned);
		if (!nodes)
			continue;
		for (uint16_t i = 0; i < m->nnodes; i++) {
			const struct pm_cmap_node *n = &m->nodes[i];
			char a[INET_ADDRSTRLEN];
			if (n->set != s)
				continue;
			inet_ntop(AF_INET, &n->addr_be, a, sizeof(a));
			put(t, "node_%s:addr=%s udp=%u tcp=%u repl=%u shards=%u%s\r\n", n->name, a,
			    n->udp_port, n->tcp_port, n->repl_port, n->shards,
			    x->primary == i ? " primary" : "");
		}
	}
	/* the moves under way (docs/cluster.md: status shows a move while it runs) */
	for (uint16_t i = 0; slots && i < m->nmoves; i++) {
		const struct pm_cmap_move *mv = &m->moves[i];
		put(t, "# Move %u-%u\r\nfrom:%s\r\nto:%s\r\nstate:%s\r\n", mv->first, mv->last,
		    m->sets[mv->from].name, m->sets[mv->to].name,
		    mv->state == PM_CMAP_MOVE_FREEZE ? "freeze" : "copy");
	}
}

static void node_status(struct ctl_cluster *c, struct text *t, struct pm_cmap *m, bool *have)
{
	char err[256];
	pthread_mutex_lock(&c->lock);
	*have = c->map_len && pm_cmap_parse(c->map_text, c->map_len, m, err, sizeof(err)) == 0;
	uint32_t ttl = atomic_load(&c->ttl_ms), r = ttl / CTL_LEASE_RENEW_DIV;
	uint64_t d = atomic_load(&c->last_ok_send_ms) + ttl - r, now = boot_ms();
	put(t, "# Node\r\ncluster:%s\r\nnode:%s\r\nset:%s\r\netcd_up:%d\r\nrole:%s\r\n"
	       "map_epoch:%" PRIu64 "\r\netcd_map_epoch:%" PRIu64 "\r\nlease_id:%" PRId64
	       "\r\nlease_ttl_ms:%u\r\nlease_remaining_ms:%" PRIu64 "\r\nwrite_lease:%d\r\n"
	       "elections_won:%" PRIu64 "\r\nfences:%" PRIu64 "\r\nkeepalive_failures:%" PRIu64
	       "\r\nleases_lost:%" PRIu64 "\r\nmap_pushes:%" PRIu64 "\r\ndurable_lsn:%" PRIu64
	       "\r\nreplicas_connected:%u\r\nstreaming:%d\r\nrepl_lag_records:%" PRIu64
	       "\r\nkeys_moved:%" PRIu64 "\r\nreshards_done:%" PRIu64 "\r\n",
	    c->cfg.cluster_name, c->cfg.node_name, c->cfg.replica_set, atomic_load(&c->etcd_up),
	    c->role, c->map_epoch_pushed, *have ? m->epoch : 0, atomic_load(&c->lease_id), ttl,
	    d > now ? d - now : 0, atomic_load(&c->want_write_lease) && d > now,
	    atomic_load(&c->elections_won), atomic_load(&c->fences),
	    atomic_load(&c->keepalive_failures), atomic_load(&c->leases_lost),
	    atomic_load(&c->map_pushes), c->status_lsn, c->status_replicas, c->status_streaming,
	    c->lag_records, atomic_load(&c->moved_keys), atomic_load(&c->reshards_done));
	pthread_mutex_unlock(&c->lock);
}

/* CLUSTER COLLECTION CREATE name key=value... | DROP name: recorded in etcd
 * first, then applied by every set's primary; waits up to CTL_COLL_WAIT_MS
 * for all of them and says how many have. */
static uint8_t cmd_coll(struct ctl_cluster *c, const struct pm_admin_req *r, struct text *t)
{
	bool create = pm_admin_arg_is(r, 2, "CREATE"), drop = pm_admin_arg_is(r, 2, "DROP");
	char name[CTL_COLL_NAME_BYTES_MAX + 1], def[VAL_BYTES], key[KEY_BYTES], err[256];
	if (!(create && r->argc >= 5) && !(drop && r->argc == 4)) {
		put(t, "CLUSTER COLLECTION CREATE name dim=D [metric=..] [index=..] [m=..]"
		       " [ef_construction=..] [ef_search=..] [dtype=..] [rerank=N]"
		       " | CLUSTER COLLECTION DROP name\n");
		return PM_ADMIN_USAGE;
	}
	if (!coll_name_ok((const char *)r->arg[3].p, r->arg[3].len)) {
		put(t, "a cluster collection's name: 1..%u bytes of A-Z a-z 0-9 _ - .\n",
		    CTL_COLL_NAME_BYTES_MAX);
		return PM_ADMIN_USAGE;
	}
	memcpy(name, r->arg[3].p, r->arg[3].len);
	name[r->arg[3].len] = '\0';
	size_t dl = 0;
	for (uint32_t i = 4; create && i < r->argc; i++) {
		if (r->arg[i].len == 0 || r->arg[i].len >= 64 || dl + r->arg[i].len + 2 >= sizeof(def) ||
		    memchr(r->arg[i].p, ' ', r->arg[i].len) || !memchr(r->arg[i].p, '=', r->arg[i].len) ||
		    (r->arg[i].len >= 6 && !memcmp(r->arg[i].p, "state=", 6))) {
			put(t, "%.*s: want key=value\n", (int)r->arg[i].len, (const char *)r->arg[i].p);
			return PM_ADMIN_USAGE;
		}
		memcpy(def + dl, r->arg[i].p, r->arg[i].len);
		dl += r->arg[i].len;
		def[dl++] = ' ';
	}
	dl += (size_t)snprintf(def + dl, sizeof(def) - dl, "state=%s", create ? "live" : "drop");
	if (!c->em && !(c->em = pm_etcd_open(c->cfg.etcd_endpoints, err, sizeof(err)))) {
		put(t, "%s\n", err);
		return PM_ADMIN_ERROR;
	}
	key_of(c, key, "collections/%s", name);
	struct pm_etcd_kvs kvs = { 0 };
	int rc;
	if (create) {
		struct pm_etcd_cmp cmp = { .key = key, .target = PM_ETCD_CREATE, .number = 0 };
		struct pm_etcd_op op = { .kind = PM_ETCD_PUT, .key = key, .value = def, .value_len = dl };
		struct pm_etcd_op get = { .kind = PM_ETCD_RANGE, .key = key };
		struct pm_etcd_txn tx = { &cmp, 1, &op, &get, 1, 1 };
		rc = pm_etcd_txn(c->em, &tx, NULL, &kvs, CTL_ETCD_CALL_MS);
		if (rc == PM_ETCD_FAILED && kvs.n == 1 &&
		    (kvs.kv[0].value_len != dl || memcmp(kvs.kv[0].value, def, dl))) {
			put(t, "E_EXISTS: the cluster records %s as: %s\n", name,
			    (const char *)kvs.kv[0].value);
			pm_etcd_kvs_free(&kvs);
			return PM_ADMIN_ERROR;
		}
	} else {
		rc = pm_etcd_range(c->em, key, NULL, &kvs, CTL_ETCD_CALL_MS);
		if (rc == PM_ETCD_OK && kvs.n == 0) {
			put(t, "NOT_FOUND: the cluster has no collection %s\n", name);
			pm_etcd_kvs_free(&kvs);
			return PM_ADMIN_ERROR;
		}
		if (rc == PM_ETCD_OK)
			rc = pm_etcd_put(c->em, key, def, dl, 0, NULL, CTL_ETCD_CALL_MS);
	}
	pm_etcd_kvs_free(&kvs);
	if (rc != PM_ETCD_OK && rc != PM_ETCD_FAILED) {
		put(t, "etcd: %s\n", pm_etcd_error(c->em));
		return PM_ADMIN_ERROR;
	}
	/* recorded: wait for the sets' primaries */
	char pre[KEY_BYTES], end[KEY_BYTES];
	key_of(c, pre, "applied/%s/", name);
	pm_etcd_prefix_end(pre, end, sizeof(end));
	pthread_mutex_lock(&c->lock);
	uint32_t sets = 0;
	for (const char *p = c->map_text; p && p < c->map_text + c->map_len;
	     p = memchr(p, '\n', (size_t)(c->map_text + c->map_len - p)), p = p ? p + 1 : NULL)
		sets += !strncmp(p, "set ", 4);
	pthread_mutex_unlock(&c->lock);
	uint32_t done = 0;
	for (uint64_t t0 = boot_ms(); boot_ms() - t0 < CTL_COLL_WAIT_MS;) {
		done = 0;
		if (pm_etcd_range(c->em, pre, end, &kvs, CTL_ETCD_CALL_MS) == PM_ETCD_OK)
			for (uint32_t i = 0; i < kvs.n; i++)
				done += !strcmp((const char *)kvs.kv[i].value, create ? "created" : "dropped");
		pm_etcd_kvs_free(&kvs);
		/* a drop every set has applied is cleaned up (colls_apply): its marks
		 * go with its record, so the record gone is the drop done */
		if (drop && pm_etcd_range(c->em, key, NULL, &kvs, CTL_ETCD_CALL_MS) == PM_ETCD_OK &&
		    kvs.n == 0)
			done = sets;
		pm_etcd_kvs_free(&kvs);
		if (sets && done >= sets)
			break;
		sleep_ms(c, 50);
	}
	put(t, "recorded:1\r\nsets:%u\r\napplied:%u\r\n", sets, done);
	if (!sets || done < sets)
		put(t, "pending:the other sets' primaries apply it when they can\r\n");
	return PM_ADMIN_OK;
}

uint8_t ctl_cluster_command(struct ctl_cluster *c, const struct pm_admin_req *r, char *out,
			    size_t cap, size_t *len)
{
	struct text t = { out, cap, 0 };
	uint8_t st = PM_ADMIN_OK;
	out[0] = '\0';
	if (!c) {
		put(&t, "not in a cluster (etcd_endpoints is empty)\n");
		*len = t.len;
		return PM_ADMIN_ERROR;
	}
	if (pm_admin_arg_is(r, 1, "INIT") && r->argc == 3 && r->arg[2].len < 1024) {
		char sets[1024];
		memcpy(sets, r->arg[2].p, r->arg[2].len);
		sets[r->arg[2].len] = '\0';
		st = cmd_init(c, sets, &t);
	} else if (pm_admin_arg_is(r, 1, "COLLECTION")) {
		st = cmd_coll(c, r, &t);
	} else if (pm_admin_arg_is(r, 1, "RESHARD")) {
		st = cmd_reshard(c, r, &t);
	} else if ((pm_admin_arg_is(r, 1, "STATUS") || pm_admin_arg_is(r, 1, "NODES") ||
		    pm_admin_arg_is(r, 1, "SLOTS")) && r->argc == 2) {
		struct pm_cmap *m = malloc(sizeof(*m));
		bool have = false;
		if (!m) {
			put(&t, "out of memory\n");
			st = PM_ADMIN_ERROR;
		} else {
			if (!pm_admin_arg_is(r, 1, "SLOTS"))
				node_status(c, &t, m, &have);
			else
				node_status(c, &(struct text){ out, cap, 0 }, m, &have), t.len = 0,
					out[0] = '\0';
			if (have)
				describe(m, &t, pm_admin_arg_is(r, 1, "NODES"),
					 !pm_admin_arg_is(r, 1, "NODES"));
			free(m);
		}
	} else {
		put(&t, "CLUSTER INIT set,set,... | STATUS | NODES | SLOTS | COLLECTION CREATE|DROP"
			 " name ... | RESHARD first last set\n");
		st = PM_ADMIN_USAGE;
	}
	*len = t.len;
	return st;
}

void ctl_cluster_metrics(struct ctl_cluster *c, char *out, size_t cap, size_t *len)
{
	if (!c)
		return;
	struct text t = { out, cap, *len };
	uint32_t ttl = atomic_load(&c->ttl_ms), r = ttl / CTL_LEASE_RENEW_DIV;
	uint64_t d = atomic_load(&c->last_ok_send_ms) + ttl - r, now = boot_ms();
	pthread_mutex_lock(&c->lock);
	uint64_t epoch = c->map_epoch_pushed;
	bool primary = !strcmp(c->role, "primary");
	pthread_mutex_unlock(&c->lock);
	put(&t, "# HELP pomai_cluster_etcd_up Whether the last lease renewal reached etcd.\n"
		"# TYPE pomai_cluster_etcd_up gauge\npomai_cluster_etcd_up %d\n"
		"# HELP pomai_cluster_map_epoch Epoch of the slot map pomaid holds.\n"
		"# TYPE pomai_cluster_map_epoch gauge\npomai_cluster_map_epoch %" PRIu64 "\n"
		"# HELP pomai_cluster_is_primary Whether this node is its set's primary.\n"
		"# TYPE pomai_cluster_is_primary gauge\npomai_cluster_is_primary %d\n"
		"# HELP pomai_cluster_lease_remaining_ms Time until the write fence.\n"
		"# TYPE pomai_cluster_lease_remaining_ms gauge\n"
		"pomai_cluster_lease_remaining_ms %" PRIu64 "\n"
		"# HELP pomai_cluster_keepalive_failures_total Lease renewals that failed.\n"
		"# TYPE pomai_cluster_keepalive_failures_total counter\n"
		"pomai_cluster_keepalive_failures_total %" PRIu64 "\n"
		"# HELP pomai_cluster_elections_won_total Elections this node won and committed.\n"
		"# TYPE pomai_cluster_elections_won_total counter\n"
		"pomai_cluster_elections_won_total %" PRIu64 "\n"
		"# HELP pomai_cluster_fences_total Times this node stopped taking writes.\n"
		"# TYPE pomai_cluster_fences_total counter\npomai_cluster_fences_total %" PRIu64 "\n",
	    atomic_load(&c->etcd_up), epoch, primary, d > now ? d - now : 0,
	    atomic_load(&c->keepalive_failures), atomic_load(&c->elections_won),
	    atomic_load(&c->fences));
	*len = t.len;
}
