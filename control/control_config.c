/* SPDX-License-Identifier: MIT
 *
 * control_config.c — pomai-control's key table, its parsers and the quota
 * table (see control.h). Adding a key is one row in `keys` and one paragraph
 * in config/pomai-control.conf (tests/test_control_parts.c checks both).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_map.h"
#include "control.h"
#include "conftext.h"

enum kind { K_U32, K_BYTES, K_PATH, K_LISTEN, K_QUOTA, K_NAME, K_ADDR, K_LEASE };

struct key {
	const char *name;
	enum kind kind;
	size_t off;
	uint64_t min, max;
	const char *unit, *doc;
};

#define OFF(f) offsetof(struct ctl_config, f)
/* snapshot_interval_s and snapshot_wal_bytes: pomaid's own bounds. */
#define SNAPSHOT_INTERVAL_S_MAX 604800u
#define SNAPSHOT_WAL_BYTES_MAX (1ull << 40)

static const struct key keys[] = {
	{ "data_dir", K_PATH, OFF(data_dir), 1, 0, "path",
	  "pomaid's data_dir: its stats segment (pomaid.stats) and default admin socket" },
	{ "daemon_socket", K_PATH, OFF(daemon_socket), 0, 0, "path",
	  "pomaid's admin socket; empty: data_dir/admin.sock" },
	{ "control_socket", K_PATH, OFF(control_socket), 0, 0, "path",
	  "pomai-control's own admin socket (mode 0600); empty: data_dir/control.sock" },
	{ "users_file", K_PATH, OFF(users_file), 0, 0, "path",
	  "pomai-control's copy of pomaid's users (mode 0600), read at start and pushed at each"
	  " attach; empty: data_dir/control.users" },
	{ "metrics_listen", K_LISTEN, 0, 0, 0, "IPv4:port",
	  "where /metrics is served (Prometheus text); off: not served" },
	{ "snapshot_interval_s", K_U32, OFF(snapshot_interval_s), 0, SNAPSHOT_INTERVAL_S_MAX, "s",
	  "ask pomaid for a snapshot this often; 0: not on a timer" },
	{ "snapshot_wal_bytes", K_BYTES, OFF(snapshot_wal_bytes), 0, SNAPSHOT_WAL_BYTES_MAX,
	  "bytes", "... or once the shards' logs grew this much since the last one asked for" },
	{ "daemon_timeout_ms", K_U32, OFF(daemon_timeout_ms), 100, 600000, "ms",
	  "longest wait for one answer of pomaid; past it pomaid counts as gone" },
	{ "retry_ms", K_U32, OFF(retry_ms), 10, 60000, "ms",
	  "wait before attaching again, or asking again for a snapshot pomaid refused" },
	{ "quota", K_QUOTA, 0, 0, 0, "IPv4 rps bps",
	  "a client's request and byte rates, pushed to pomaid (repeat the key)" },
	{ "etcd_endpoints", K_PATH, OFF(etcd_endpoints), 0, 0, "URLs",
	  "etcd's client URLs, comma-separated (http://10.0.0.1:2379,...); empty: not in a"
	  " cluster (docs/cluster.md)" },
	{ "cluster_name", K_NAME, OFF(cluster_name), 0, 0, "name",
	  "the cluster this node belongs to: its keys in etcd are under /pomai/NAME/" },
	{ "node_name", K_NAME, OFF(node_name), 0, 0, "name",
	  "this node's name, unique in the cluster" },
	{ "replica_set", K_NAME, OFF(replica_set), 0, 0, "name",
	  "the replica set this node belongs to (its nodes replicate one primary)" },
	{ "advertise_addr", K_ADDR, OFF(advertise_addr), 0, 0, "IPv4",
	  "the address clients and the other nodes reach this node's pomaid at" },
	{ "lease_ttl_ms", K_LEASE, OFF(lease_ttl_ms), CTL_LEASE_TTL_MS_MIN, CTL_LEASE_TTL_MS_MAX,
	  "ms", "the etcd lease a primary holds its set's leadership with: how soon a dead"
	  " primary is replaced (a multiple of 1000)" },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void ctl_config_defaults(struct ctl_config *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->data_dir, "./var/pomai");
	c->metrics_addr = INADDR_LOOPBACK;
	c->metrics_port = 9750;
	c->snapshot_interval_s = 3600;
	c->snapshot_wal_bytes = UINT64_C(1) << 30;
	c->daemon_timeout_ms = 6000; /* pomaid's PM_ADMIN_REPLY_MS (5 s) and a margin */
	c->retry_ms = 500;
	c->advertise_addr = INADDR_LOOPBACK;
	c->lease_ttl_ms = CTL_LEASE_TTL_MS_DEFAULT;
}

__attribute__((format(printf, 3, 4))) static int errf(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---------------------------------------------------------------- values */

int ctl_parse_ipv4(const char *s, uint32_t *addr)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*addr = ntohl(a.s_addr);
	return 0;
}

void ctl_format_ipv4(uint32_t addr, char *out, size_t n)
{
	struct in_addr a = { .s_addr = htonl(addr) };
	if (!inet_ntop(AF_INET, &a, out, (socklen_t)n) && n)
		out[0] = '\0';
}

int ctl_parse_rate(const char *s, uint64_t *rate)
{
	if (pm_conf_parse_u64(s, false, rate) != 0)
		return -1;
	return *rate <= PM_QUOTA_RATE_PER_S_MAX ? 0 : -1;
}

/* "a.b.c.d:port" or "off". */
static int parse_listen(struct ctl_config *c, const char *v)
{
	if (!strcmp(v, "off")) {
		c->metrics_port = 0;
		return 0;
	}
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(v, ':');
	uint64_t port;
	if (!colon || (size_t)(colon - v) >= sizeof(host))
		return -1;
	memcpy(host, v, (size_t)(colon - v));
	host[colon - v] = '\0';
	if (ctl_parse_ipv4(host, &c->metrics_addr) != 0 ||
	    pm_conf_parse_u64(colon + 1, false, &port) != 0 || port == 0 || port > UINT16_MAX)
		return -1;
	c->metrics_port = (uint16_t)port;
	return 0;
}

/* "a.b.c.d rps bps". */
static int parse_quota(const char *v, struct ctl_quota *q)
{
	char a[INET_ADDRSTRLEN + 1], r[24], b[24], extra;
	if (sscanf(v, "%16s %23s %23s %c", a, r, b, &extra) != 3)
		return -1;
	return ctl_parse_ipv4(a, &q->addr) || ctl_parse_rate(r, &q->rps) || ctl_parse_rate(b, &q->bps)
		       ? -1 : 0;
}

/* ---------------------------------------------------------------- quotas */

int ctl_quota_set(struct ctl_config *c, const struct ctl_quota *q)
{
	for (uint32_t i = 0; i < c->nquotas; i++)
		if (c->quotas[i].addr == q->addr) {
			c->quotas[i] = *q;
			return 0;
		}
	if (c->nquotas == PM_QUOTA_OVERRIDES_MAX)
		return -1;
	c->quotas[c->nquotas++] = *q;
	return 0;
}

int ctl_quota_del(struct ctl_config *c, uint32_t addr)
{
	for (uint32_t i = 0; i < c->nquotas; i++)
		if (c->quotas[i].addr == addr) {
			c->quotas[i] = c->quotas[--c->nquotas];
			return 0;
		}
	return -1;
}

/* ---------------------------------------------------------------- keys */

static int set_value(struct ctl_config *c, const struct key *k, const char *v, char *err,
		     size_t n)
{
	void *p = (char *)c + k->off;
	uint64_t x;
	struct ctl_quota q;
	switch (k->kind) {
	case K_U32:
	case K_BYTES:
		if (pm_conf_parse_u64(v, k->kind == K_BYTES, &x) != 0 || x < k->min || x > k->max)
			return errf(err, n, "%s: want %" PRIu64 "..%" PRIu64 " (%s), not '%s'",
				    k->name, k->min, k->max, k->unit, v);
		if (k->kind == K_U32)
			*(uint32_t *)p = (uint32_t)x;
		else
			*(uint64_t *)p = x;
		return 0;
	case K_PATH:
		if (strlen(v) >= CTL_PATH_BYTES || (k->min && !v[0]))
			return errf(err, n, "%s: want a path of 1..%u bytes", k->name,
				    CTL_PATH_BYTES - 1);
		strcpy((char *)p, v);
		return 0;
	case K_NAME:
		if (v[0] && !pm_cmap_name_ok(v, strlen(v)))
			return errf(err, n, "%s: want 1..%u bytes of a-z 0-9 _ -, not '%s'", k->name,
				    PM_CLUSTER_NAME_BYTES_MAX, v);
		strcpy((char *)p, v);
		return 0;
	case K_ADDR:
		return ctl_parse_ipv4(v, (uint32_t *)p) ? errf(err, n, "%s: want an IPv4 address,"
							      " not '%s'", k->name, v) : 0;
	case K_LEASE:
		if (pm_conf_parse_u64(v, false, &x) != 0 || x < k->min || x > k->max || x % 1000)
			return errf(err, n, "%s: want %" PRIu64 "..%" PRIu64 " ms in whole seconds"
				    " (etcd's leases are), not '%s'", k->name, k->min, k->max, v);
		*(uint32_t *)p = (uint32_t)x;
		return 0;
	case K_LISTEN:
		return parse_listen(c, v) ? errf(err, n, "%s: want IPv4:port or off, not '%s'",
						 k->name, v) : 0;
	case K_QUOTA:
		if (parse_quota(v, &q) != 0)
			return errf(err, n, "quota: want 'IPv4 requests_per_s bytes_per_s' (each"
				    " 0..%llu, 0 = unlimited), not '%s'", PM_QUOTA_RATE_PER_S_MAX, v);
		if (ctl_quota_set(c, &q) != 0)
			return errf(err, n, "quota: more than %u entries", PM_QUOTA_OVERRIDES_MAX);
		return 0;
	}
	return errf(err, n, "%s: unknown kind", k->name);
}

int ctl_config_set(struct ctl_config *c, const char *key, const char *value, char *err,
		   size_t errlen)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].name, key))
			return set_value(c, &keys[i], value, err, errlen);
	return errf(err, errlen, "%s: no such key", key);
}

static int set_one(void *ctx, const char *key, const char *value, char *err, size_t errlen)
{
	return ctl_config_set(ctx, key, value, err, errlen);
}

int ctl_config_parse(struct ctl_config *c, const char *name, const char *text, size_t len,
		     char *err, size_t errlen)
{
	return pm_conf_parse(name, text, len, CTL_LINE_BYTES, set_one, c, err, errlen);
}

int ctl_config_load(struct ctl_config *c, const char *path, char *err, size_t errlen)
{
	return pm_conf_load(path, CTL_CONFIG_FILE_BYTES_MAX, CTL_LINE_BYTES, set_one, c, err,
			    errlen);
}

/* ---------------------------------------------------------------- printing */

void ctl_config_print(const struct ctl_config *c, FILE *f)
{
	char a[INET_ADDRSTRLEN];
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		const void *p = (const char *)c + k->off;
		if (k->kind == K_U32 || k->kind == K_LEASE)
			fprintf(f, "%s = %u\n", k->name, *(const uint32_t *)p);
		else if (k->kind == K_NAME)
			fprintf(f, "%s = %s\n", k->name, (const char *)p);
		else if (k->kind == K_ADDR) {
			ctl_format_ipv4(*(const uint32_t *)p, a, sizeof(a));
			fprintf(f, "%s = %s\n", k->name, a);
		}
		else if (k->kind == K_BYTES)
			fprintf(f, "%s = %" PRIu64 "\n", k->name, *(const uint64_t *)p);
		else if (k->kind == K_PATH)
			fprintf(f, "%s = %s\n", k->name, (const char *)p);
		else if (k->kind == K_LISTEN && !c->metrics_port)
			fprintf(f, "%s = off\n", k->name);
		else if (k->kind == K_LISTEN) {
			ctl_format_ipv4(c->metrics_addr, a, sizeof(a));
			fprintf(f, "%s = %s:%u\n", k->name, a, c->metrics_port);
		}
	}
	for (uint32_t i = 0; i < c->nquotas; i++) {
		ctl_format_ipv4(c->quotas[i].addr, a, sizeof(a));
		fprintf(f, "quota = %s %" PRIu64 " %" PRIu64 "\n", a, c->quotas[i].rps,
			c->quotas[i].bps);
	}
}

void ctl_config_usage(FILE *f)
{
	fprintf(f, "usage: pomai-control [--config FILE] [--print-config] [--KEY VALUE ...]\n\n"
		   "keys (config/pomai-control.conf documents each; a flag overrides the file):\n");
	for (size_t i = 0; i < NKEYS; i++) {
		char flag[64];
		size_t j = 0;
		for (; keys[i].name[j] && j + 1 < sizeof(flag); j++)
			flag[j] = keys[i].name[j] == '_' ? '-' : keys[i].name[j];
		flag[j] = '\0';
		fprintf(f, "  --%-22s (%s) %s\n", flag, keys[i].unit, keys[i].doc);
	}
}

static void path_or(const char *set, const char *dir, const char *file, char *out, size_t n)
{
	if (set[0])
		snprintf(out, n, "%s", set);
	else
		snprintf(out, n, "%s/%s", dir, file);
}

void ctl_daemon_socket(const struct ctl_config *c, char *out, size_t n)
{
	path_or(c->daemon_socket, c->data_dir, "admin.sock", out, n);
}

void ctl_control_socket(const struct ctl_config *c, char *out, size_t n)
{
	path_or(c->control_socket, c->data_dir, "control.sock", out, n);
}

void ctl_users_path(const struct ctl_config *c, char *out, size_t n)
{
	path_or(c->users_file, c->data_dir, "control.users", out, n);
}

void ctl_stats_path(const struct ctl_config *c, char *out, size_t n)
{
	path_or("", c->data_dir, "pomaid.stats", out, n);
}
