/* SPDX-License-Identifier: MIT
 *
 * cluster.c — a Pomai cluster on etcd for a test (cluster.h says what it
 * promises).
 *
 * Every wait here is a bounded poll of a condition (a ready line, a status
 * text, INFO fields); nothing sleeps to synchronise. `ip` and `nsenter` are
 * run as processes (proc_run), as an operator would run them.
 */
#define _GNU_SOURCE
#include "cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin_proto.h"
#include "ctl.h"
#include "libclient.h"
#include "pomai.h"

/* How long one `ip` command may take (a namespace made on a loaded machine). */
#define CL_IP_WAIT_MS 10000

/* The flags of every pomaid of a cluster (docs/cluster.md, cluster-iface.md):
 * the log on disk before a write is acknowledged, and acknowledged only once
 * a replica holds it on disk too, so that a failover loses nothing
 * acknowledged. Snapshots only when a test asks; memory for the suite's
 * data; KNN fan-outs with a deadline for a loaded machine. */
static const char *const node_flags[] = {
	"--cluster", "on", "--wal", "sync", "--repl-ack", "durable", "--min-replicas", "1",
	"--arena-bytes", "64M", "--seeds", "262144", "--hugepages", "no", "--knn-timeout-ms",
	"2000", "--snapshot-interval-s", "0", "--snapshot-wal-bytes", "0", NULL
};

/* ---------------------------------------------------------------- commands */

/* Run argv (NULL-terminated) to its end: its exit code; what it said is
 * printed when it failed and `quiet` is not set. */
static int run_cmd(const char *const *argv, bool quiet)
{
	static struct proc p;
	char out[1024];
	proc_init(&p, argv[0]);
	proc_args(&p, argv + 1);
	int rc = proc_run(&p, NULL, out, sizeof(out), CL_IP_WAIT_MS);
	if (rc != 0 && !quiet) {
		printf("\n  `");
		for (const char *const *a = argv; *a; a++)
			printf("%s%s", *a, a[1] ? " " : "");
		printf("`: exit %d: %.300s", rc, out);
	}
	return rc;
}

/* Whether `prog` runs (is on PATH and answers `args`). */
static bool has_prog(const char *prog, const char *arg)
{
	const char *argv[] = { prog, arg, NULL };
	return run_cmd(argv, true) == 0;
}

bool cl_can_run(char *why, size_t cap)
{
	why[0] = '\0';
	if (geteuid() != 0)
		snprintf(why, cap, "not root (network namespaces for the partition test)");
	else if (access("/var/run/netns", W_OK) != 0 && access("/var/run", W_OK) != 0)
		snprintf(why, cap, "/var/run/netns is not writable");
	else if (!has_prog("ip", "-V"))
		snprintf(why, cap, "no `ip` (iproute2) on PATH");
	else if (!has_prog("nsenter", "--version"))
		snprintf(why, cap, "no `nsenter` (util-linux) on PATH");
	else if (!etcd_proc_installed(&(struct etcd_proc){ 0 }))
		snprintf(why, cap, "no `etcd` on PATH (Debian etcd-server)");
	return why[0] == '\0';
}

/* ---------------------------------------------------------------- namespaces */

/* This run's namespaces, removed at exit if a test stopped before it did. */
static char made_ns[CL_NODES_MAX][32];
static bool ns_atexit;

static void ns_remove_all(void)
{
	for (uint32_t i = 0; i < CL_NODES_MAX; i++)
		if (made_ns[i][0]) {
			const char *argv[] = { "ip", "netns", "del", made_ns[i], NULL };
			run_cmd(argv, true);
			made_ns[i][0] = '\0';
		}
}

_Static_assert(4u * CL_NODES_MAX + 2u <= 255u, "each node's /30 fits the last octet");

static void node_names(struct cl_node *n)
{
	unsigned pid = (unsigned)getpid();
	snprintf(n->ns, sizeof(n->ns), "pm%un%u", pid, n->index);
	snprintf(n->veth_root, sizeof(n->veth_root), "pm%uv%ua", pid, n->index);
	snprintf(n->veth_ns, sizeof(n->veth_ns), "pm%uv%ub", pid, n->index);
	snprintf(n->ip_root, sizeof(n->ip_root), "10.%u.%u.%u", (pid >> 8) & 255u, pid & 255u,
		 4u * n->index + 1u);
	snprintf(n->ip_ns, sizeof(n->ip_ns), "10.%u.%u.%u", (pid >> 8) & 255u, pid & 255u,
		 4u * n->index + 2u);
}

/* Its namespace and link: pm<pid>n<i> with the veth's far end and lo up;
 * the near end in the root namespace with its address, up. */
static bool ns_make(struct cl_node *n)
{
	char root_cidr[24], ns_cidr[24];
	snprintf(root_cidr, sizeof(root_cidr), "%s/30", n->ip_root);
	snprintf(ns_cidr, sizeof(ns_cidr), "%s/30", n->ip_ns);
	/* this run's own, left by a test that stopped early */
	const char *del[] = { "ip", "netns", "del", n->ns, NULL };
	const char *del_link[] = { "ip", "link", "del", n->veth_root, NULL };
	run_cmd(del, true);
	run_cmd(del_link, true);
	const char *const steps[][12] = {
		{ "ip", "netns", "add", n->ns, NULL },
		{ "ip", "link", "add", n->veth_root, "type", "veth", "peer", "name", n->veth_ns, NULL },
		{ "ip", "link", "set", n->veth_ns, "netns", n->ns, NULL },
		{ "ip", "addr", "add", root_cidr, "dev", n->veth_root, NULL },
		{ "ip", "link", "set", n->veth_root, "up", NULL },
		{ "ip", "-n", n->ns, "addr", "add", ns_cidr, "dev", n->veth_ns, NULL },
		{ "ip", "-n", n->ns, "link", "set", n->veth_ns, "up", NULL },
		{ "ip", "-n", n->ns, "link", "set", "lo", "up", NULL },
	};
	if (!ns_atexit) {
		atexit(ns_remove_all);
		ns_atexit = true;
	}
	for (uint32_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (run_cmd(steps[i], false) != 0)
			return false;
		if (i == 0) {
			snprintf(made_ns[n->index % CL_NODES_MAX], sizeof(made_ns[0]), "%s", n->ns);
			n->ns_made = true;
		}
	}
	return true;
}

/* The namespace goes, and the veth pair with it: the kernel tears the
 * namespace down in the background, so the link's end is polled until it
 * is gone (a cluster made next takes the same names). */
static void ns_remove(struct cl_node *n)
{
	if (!n->ns_made)
		return;
	const char *argv[] = { "ip", "netns", "del", n->ns, NULL };
	const char *show[] = { "ip", "link", "show", "dev", n->veth_root, NULL };
	run_cmd(argv, false);
	made_ns[n->index % CL_NODES_MAX][0] = '\0';
	n->ns_made = false;
	uint64_t deadline = proc_now_ms() + CL_IP_WAIT_MS;
	while (run_cmd(show, true) == 0 && proc_now_ms() < deadline)
		proc_pause_ms(PROC_POLL_MS);
}

bool cl_partition(struct cl_node *n, bool cut)
{
	const char *argv[] = { "ip", "link", "set", n->veth_root, cut ? "down" : "up", NULL };
	bool ok = run_cmd(argv, false) == 0;
	if (ok)
		n->cut = cut;
	return ok;
}

static void tail_of(const char *what, const char *path);

/* ---------------------------------------------------------------- etcd */

/* etcd on free ports in a directory of its own, listening on loopback (the
 * test's own client) and on the root side of every node's link (the
 * pomai-controls): etcd_proc.h's start with --listen-client-urls again, last. */
static bool etcd_create(struct cl_cluster *c)
{
	struct etcd_proc *e = &c->etcd;
	e->client_port = proc_port_pick(SOCK_STREAM, 0);
	e->peer_port = proc_port_pick(SOCK_STREAM, e->client_port);
	if (!e->client_port || !e->peer_port)
		return false;
	size_t u = (size_t)snprintf(c->etcd_listen, sizeof(c->etcd_listen), "http://127.0.0.1:%u",
				    e->client_port);
	for (uint32_t i = 0; i < c->nnodes && u < sizeof(c->etcd_listen) && !c->host_net; i++)
		u += (size_t)snprintf(c->etcd_listen + u, sizeof(c->etcd_listen) - u, ",http://%s:%u",
				      c->nodes[i].ip_root, e->client_port);
	c->etcd_flags[0] = "--listen-client-urls";
	c->etcd_flags[1] = c->etcd_listen;
	c->etcd_flags[2] = NULL;
	e->flags = c->etcd_flags;
	return cl_etcd_restart(c);
}

bool cl_etcd_kill(struct cl_cluster *c)
{
	return etcd_proc_kill(&c->etcd);
}

bool cl_etcd_restart(struct cl_cluster *c)
{
	bool ok = etcd_proc_start(&c->etcd);
	if (!ok) {
		printf("\n  etcd did not start (status 0x%x): %s", (unsigned)c->etcd.proc.status,
		       c->etcd.proc.out);
		tail_of("etcd", c->etcd.log);
	}
	return ok;
}

const char *cl_etcd_url(const struct cl_cluster *c)
{
	return etcd_proc_url(&c->etcd);
}

void cl_leader_key(const struct cl_cluster *c, const char *set, char *out, size_t cap)
{
	snprintf(out, cap, "/pomai/%s/sets/%s/leader", c->name, set);
}

/* ---------------------------------------------------------------- nodes */

static void node_init(struct cl_cluster *c, struct cl_node *n, uint32_t index, const char *set)
{
	memset(n, 0, sizeof(*n));
	n->index = index;
	snprintf(n->name, sizeof(n->name), "n%u", index);
	snprintf(n->set, sizeof(n->set), "%s", set);
	n->pm.path = c->pomaid_path;
	n->pm.shards = CL_SHARDS;
	n->pm.flags = node_flags;
	n->pm.repl = true;
	n->pm.after = PROC_AFTER_LOG;
	n->pm.log = n->pm_log;
	n->control.pid = -1;
	node_names(n);
}

static bool node_dirs(struct cl_node *n)
{
	char tag[32], dir[PATH_MAX];
	snprintf(tag, sizeof(tag), "cluster-%s", n->name);
	if (!proc_dir_make(dir, tag))
		return false;
	memcpy(n->pm.dir, dir, sizeof(dir));
	snprintf(n->sock, sizeof(n->sock), "%s/admin.sock", dir);
	snprintf(n->csock, sizeof(n->csock), "%s/control.sock", dir);
	snprintf(n->pm_log, sizeof(n->pm_log), "%s/pomaid.log", dir);
	snprintf(n->ctl_log, sizeof(n->ctl_log), "%s/control.log", dir);
	return true;
}

/* Its pomai-control, in its namespace, reaching etcd on its link. */
static bool control_start(struct cl_cluster *c, struct cl_node *n)
{
	struct proc *p = &n->control;
	if (c->host_net) {
		proc_init(p, c->control_path);
	} else {
		proc_init(p, "nsenter");
		proc_argf(p, "--net=/var/run/netns/%s", n->ns);
		proc_arg(p, c->control_path);
	}
	proc_args(p, (const char *const[]){ "--data-dir", n->pm.dir, "--etcd-endpoints", NULL });
	proc_argf(p, "http://%s:%u", c->host_net ? "127.0.0.1" : n->ip_root, c->etcd.client_port);
	proc_args(p, (const char *const[]){ "--cluster-name", c->name, "--node-name", n->name,
					    "--replica-set", n->set, "--advertise-addr",
					    "127.0.0.1", "--lease-ttl-ms", NULL });
	proc_argf(p, "%d", CL_LEASE_TTL_MS);
	proc_args(p, (const char *const[]){ "--metrics-listen", "off", NULL });
	p->ready = CONTROL_READY_LINE;
	p->after = PROC_AFTER_LOG;
	p->log = n->ctl_log;
	n->stopped = false;
	if (!proc_start(p)) {
		printf("\n  %s's pomai-control did not start (status 0x%x): %s", n->name,
		       (unsigned)p->status, p->out);
		return false;
	}
	return true;
}

bool cl_node_start(struct cl_cluster *c, struct cl_node *n)
{
	if (!pomaid_start(&n->pm, NULL, NULL)) {
		printf("\n  %s's pomaid did not start (status 0x%x): %s", n->name,
		       (unsigned)n->pm.proc.status, n->pm.proc.out);
		cl_node_log_tail(n);
		return false;
	}
	if (!control_start(c, n)) {
		cl_node_log_tail(n);
		return false;
	}
	return true;
}

bool cl_node_kill(struct cl_node *n)
{
	if (n->stopped)
		kill(n->control.pid, SIGCONT); /* killed all the same; a stopped one is reaped late */
	n->stopped = false;
	bool a = proc_kill(&n->control);
	bool b = pomaid_kill(&n->pm);
	return a && b;
}

bool cl_control_stop(struct cl_node *n)
{
	bool ok = proc_alive(&n->control) && kill(n->control.pid, SIGSTOP) == 0;
	n->stopped = ok;
	return ok;
}

bool cl_control_cont(struct cl_node *n)
{
	bool ok = proc_alive(&n->control) && kill(n->control.pid, SIGCONT) == 0;
	if (ok)
		n->stopped = false;
	return ok;
}

/* Whether a line of a log holds `what` (a sanitizer's report). */
static bool log_has(const char *path, const char *a, const char *b)
{
	char line[1024];
	bool has = false;
	FILE *f = fopen(path, "r");
	while (f && !has && fgets(line, sizeof(line), f))
		has = strcasestr(line, a) && (!b || strcasestr(line, b));
	if (f)
		fclose(f);
	return has;
}

static bool sanitized(const char *path)
{
	return log_has(path, "runtime error", ":") || log_has(path, "Sanitizer", "ERROR");
}

/* SIGTERM to both (pomai-control first: it must not take a pomaid that is
 * going for a failure to report); true if both exited 0. */
static bool node_stop(struct cl_node *n)
{
	bool ok = true;
	if (n->stopped)
		cl_control_cont(n);
	if (n->control.pid > 0 && !n->control.reaped) {
		ok &= proc_stop(&n->control, SIGTERM, PROC_EXIT_WAIT_MS) &&
		      proc_exited_ok(&n->control);
		if (!ok)
			printf("\n  %s's pomai-control did not exit 0 on SIGTERM (status 0x%x)", n->name,
			       (unsigned)n->control.status);
	}
	if (n->pm.proc.pid > 0 && !n->pm.proc.reaped)
		ok &= pomaid_stop(&n->pm);
	return ok;
}

static void tail_of(const char *what, const char *path)
{
	static char buf[CL_LOG_TAIL_BYTES + 1];
	FILE *f = fopen(path, "r");
	size_t len = 0;
	if (f && fseek(f, 0, SEEK_END) == 0) {
		long end = ftell(f);
		fseek(f, end > (long)CL_LOG_TAIL_BYTES ? end - (long)CL_LOG_TAIL_BYTES : 0, SEEK_SET);
		len = fread(buf, 1, CL_LOG_TAIL_BYTES, f);
	}
	if (f)
		fclose(f);
	buf[len] = '\0';
	printf("\n  --- %s (%s), its last lines:\n%s\n  ---", what, path, buf);
}

void cl_node_log_tail(const struct cl_node *n)
{
	char what[64];
	snprintf(what, sizeof(what), "%s's pomaid", n->name);
	tail_of(what, n->pm_log);
	snprintf(what, sizeof(what), "%s's pomai-control", n->name);
	tail_of(what, n->ctl_log);
}

/* ---------------------------------------------------------------- status */

/* The value of `field` in `section` ("# Node"; NULL: anywhere) of a
 * field:value text, into out; false if absent. Lines end in \r\n or \n. */
static bool text_word(const char *text, const char *section, const char *field, char *out,
		      size_t cap)
{
	size_t flen = strlen(field), slen = section ? strlen(section) : 0;
	bool in = section == NULL;
	for (const char *p = text; *p;) {
		const char *eol = p + strcspn(p, "\r\n");
		size_t len = (size_t)(eol - p);
		if (p[0] == '#' && section)
			in = len == slen && !memcmp(p, section, len);
		else if (in && len > flen && !memcmp(p, field, flen) && p[flen] == ':') {
			size_t vl = len - flen - 1 < cap - 1 ? len - flen - 1 : cap - 1;
			memcpy(out, p + flen + 1, vl);
			out[vl] = '\0';
			return true;
		}
		p = eol + strspn(eol, "\r\n");
	}
	return false;
}

static long long text_num(const char *text, const char *section, const char *field)
{
	char w[32], *end;
	if (!text_word(text, section, field, w, sizeof(w)) || !w[0])
		return -1;
	long long v = strtoll(w, &end, 10);
	return *end ? -1 : v;
}

void cl_status(const struct cl_node *n, struct cl_status *st)
{
	memset(st, 0, sizeof(*st));
	int rc = ctl_admin(n->csock, "CLUSTER STATUS", st->text, sizeof(st->text));
	st->answered = rc == PM_ADMIN_OK;
	if (!text_word(st->text, "# Node", "role", st->role, sizeof(st->role)))
		st->role[0] = '\0';
	st->etcd_up = text_num(st->text, "# Node", "etcd_up");
	st->map_epoch = text_num(st->text, "# Node", "map_epoch");
	st->lease_remaining_ms = text_num(st->text, "# Node", "lease_remaining_ms");
	st->write_lease = text_num(st->text, "# Node", "write_lease");
	st->elections_won = text_num(st->text, "# Node", "elections_won");
	st->fences = text_num(st->text, "# Node", "fences");
	st->keepalive_failures = text_num(st->text, "# Node", "keepalive_failures");
	static const char head[] = "# Set ";
	for (const char *p = st->text; *p && st->nsets < CL_SETS_MAX;) {
		const char *eol = p + strcspn(p, "\r\n");
		if (!strncmp(p, head, sizeof(head) - 1)) {
			char section[64];
			size_t nl = (size_t)(eol - p) - (sizeof(head) - 1);
			if (nl > PM_CLUSTER_NAME_BYTES_MAX)
				nl = PM_CLUSTER_NAME_BYTES_MAX;
			memcpy(st->sets[st->nsets].name, p + sizeof(head) - 1, nl);
			st->sets[st->nsets].name[nl] = '\0';
			snprintf(section, sizeof(section), "%.*s", (int)(eol - p), p);
			if (!text_word(st->text, section, "primary", st->sets[st->nsets].primary,
				       sizeof(st->sets[0].primary)))
				st->sets[st->nsets].primary[0] = '\0';
			st->sets[st->nsets].epoch = text_num(st->text, section, "epoch");
			st->nsets++;
		}
		p = eol + strspn(eol, "\r\n");
	}
}

const char *cl_status_primary(const struct cl_status *st, const char *set)
{
	for (uint32_t i = 0; i < st->nsets; i++)
		if (!strcmp(st->sets[i].name, set))
			return st->sets[i].primary[0] && strcmp(st->sets[i].primary, "-")
				       ? st->sets[i].primary
				       : NULL;
	return NULL;
}

struct cl_node *cl_node_named(struct cl_cluster *c, const char *name)
{
	for (uint32_t i = 0; name && i < c->nnodes; i++)
		if (!strcmp(c->nodes[i].name, name))
			return &c->nodes[i];
	return NULL;
}

/* Whether n's pomai-control can be asked (runs, not stopped, not cut off). */
static bool control_reachable(const struct cl_node *n)
{
	return n->control.pid > 0 && proc_alive(&n->control) && !n->stopped && !n->cut;
}

/* One look at every reachable node: the same epoch (>= min), every set a
 * primary that every node names alike, that primary's pomai-control (when
 * reachable) primary with its write lease. */
static bool ready_once(struct cl_cluster *c, long long min_epoch, long long *epoch,
		       struct cl_status *st)
{
	long long e = -1;
	uint32_t asked = 0;
	const char *prim[CL_SETS_MAX] = { 0 };
	bool ok = true;
	for (uint32_t i = 0; i < c->nnodes && ok; i++) {
		struct cl_node *n = &c->nodes[i];
		if (!control_reachable(n))
			continue;
		cl_status(n, &st[i]);
		ok = st[i].answered && st[i].map_epoch >= min_epoch && st[i].map_epoch >= 1 &&
		     (e < 0 || st[i].map_epoch == e) && st[i].nsets == c->nsets;
		e = st[i].map_epoch;
		for (uint32_t s = 0; s < c->nsets && ok; s++) {
			const char *p = cl_status_primary(&st[i], c->sets[s]);
			ok = p && (!prim[s] || !strcmp(prim[s], p));
			prim[s] = p;
		}
		asked++;
	}
	for (uint32_t s = 0; s < c->nsets && ok; s++) {
		struct cl_node *p = cl_node_named(c, prim[s]);
		ok = p != NULL;
		if (ok && control_reachable(p)) {
			struct cl_status *ps = &st[p - c->nodes];
			ok = !strcmp(ps->role, "primary") && ps->write_lease == 1;
		}
	}
	if (ok && asked > 0 && epoch)
		*epoch = e;
	return ok && asked > 0;
}

void cl_print(struct cl_cluster *c)
{
	for (uint32_t i = 0; i < c->nnodes; i++) {
		struct cl_node *n = &c->nodes[i];
		if (!control_reachable(n)) {
			printf("\n  %s (%s): pomai-control %s", n->name, n->set,
			       n->stopped ? "stopped" : n->cut ? "cut off from etcd" : "not running");
			continue;
		}
		struct cl_status *st = malloc(sizeof(*st));
		if (!st)
			return;
		cl_status(n, st);
		printf("\n  %s (%s): %s role %s etcd_up %lld map_epoch %lld write_lease %lld"
		       " lease_remaining_ms %lld elections_won %lld fences %lld keepalive_failures %lld;",
		       n->name, n->set, st->answered ? "" : "(no answer)", st->role, st->etcd_up,
		       st->map_epoch, st->write_lease, st->lease_remaining_ms, st->elections_won,
		       st->fences, st->keepalive_failures);
		for (uint32_t s = 0; s < st->nsets; s++)
			printf(" %s: primary %s epoch %lld;", st->sets[s].name, st->sets[s].primary,
			       st->sets[s].epoch);
		if (!st->answered)
			printf(" said: %.200s", st->text);
		free(st);
	}
}

/* Poll ready_once until ms; said when it did not come and `say`. */
static bool ready_poll(struct cl_cluster *c, long long min_epoch, long long *epoch, int ms,
		       bool say)
{
	struct cl_status *st = calloc(CL_NODES_MAX, sizeof(*st));
	if (!st)
		return false;
	uint64_t deadline = proc_now_ms() + (uint64_t)ms;
	bool ok;
	while (!(ok = ready_once(c, min_epoch, epoch, st)) && proc_now_ms() < deadline)
		proc_pause_ms(PROC_POLL_MS * 5);
	free(st);
	if (!ok && say) {
		printf("\n  the cluster was not ready (one map epoch >= %lld, every set a primary"
		       " with its write lease) within %d ms:", min_epoch, ms);
		cl_print(c);
	}
	return ok;
}

bool cl_ready(struct cl_cluster *c, long long min_epoch, long long *epoch, int ms)
{
	return ready_poll(c, min_epoch, epoch, ms, true);
}

struct cl_node *cl_primary(struct cl_cluster *c, const char *set)
{
	struct cl_status *st = malloc(sizeof(*st));
	const char *name = NULL;
	char first[PM_CLUSTER_NAME_BYTES_MAX + 1] = "";
	bool agree = st != NULL;
	for (uint32_t i = 0; i < c->nnodes && agree; i++) {
		if (!control_reachable(&c->nodes[i]))
			continue;
		cl_status(&c->nodes[i], st);
		name = cl_status_primary(st, set);
		agree = name && (!first[0] || !strcmp(first, name));
		if (agree)
			snprintf(first, sizeof(first), "%s", name);
	}
	free(st);
	return agree && first[0] ? cl_node_named(c, first) : NULL;
}

struct cl_node *cl_other(struct cl_cluster *c, const char *set, const struct cl_node *not)
{
	for (uint32_t i = 0; i < c->nnodes; i++)
		if (&c->nodes[i] != not && !strcmp(c->nodes[i].set, set))
			return &c->nodes[i];
	return NULL;
}

/* ---------------------------------------------------------------- slots */

/* "0-5460,10923-12000" (or "7": one slot) of set index si into slot_set;
 * false when a range is malformed or names a slot already given. */
static bool slots_parse(const char *list, uint16_t si, uint16_t *slot_set)
{
	for (const char *p = list; *p;) {
		char *end;
		unsigned long a = strtoul(p, &end, 10), b = a;
		if (end == p)
			return false;
		if (*end == '-') {
			p = end + 1;
			b = strtoul(p, &end, 10);
			if (end == p)
				return false;
		}
		if (a > b || b >= PM_CLUSTER_SLOTS)
			return false;
		for (unsigned long s = a; s <= b; s++) {
			if (slot_set[s] != PM_CMAP_NONE)
				return false;
			slot_set[s] = si;
		}
		p = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return false;
	}
	return true;
}

bool cl_slot_sets(struct cl_cluster *c, uint16_t *slot_set)
{
	struct cl_status *st = malloc(sizeof(*st));
	bool ok = st != NULL;
	const struct cl_node *asked = NULL;
	for (uint32_t i = 0; i < c->nnodes && ok && !asked; i++)
		if (control_reachable(&c->nodes[i]))
			asked = &c->nodes[i];
	if (ok && asked)
		cl_status(asked, st);
	ok = ok && asked && st->answered;
	for (uint32_t s = 0; s < PM_CLUSTER_SLOTS; s++)
		slot_set[s] = PM_CMAP_NONE;
	for (uint32_t s = 0; s < c->nsets && ok; s++) {
		char section[64], list[CL_STATUS_BYTES];
		snprintf(section, sizeof(section), "# Set %s", c->sets[s]);
		ok = text_word(st->text, section, "slots", list, sizeof(list)) &&
		     slots_parse(list, (uint16_t)s, slot_set);
		if (!ok)
			printf("\n  %s's CLUSTER STATUS: set %s has no valid slots line: %.300s",
			       asked->name, c->sets[s], st->text);
	}
	for (uint32_t s = 0; s < PM_CLUSTER_SLOTS && ok; s++)
		if (slot_set[s] == PM_CMAP_NONE) {
			printf("\n  slot %u belongs to no set in %s's CLUSTER STATUS", s, asked->name);
			ok = false;
		}
	free(st);
	return ok;
}

uint16_t cl_set_index(const struct cl_cluster *c, const char *set)
{
	for (uint16_t s = 0; s < c->nsets; s++)
		if (!strcmp(c->sets[s], set))
			return s;
	return PM_CMAP_NONE;
}

/* ---------------------------------------------------------------- rejoining */

/* Every shard of r streams from p and has applied p's last LSN. */
static bool node_synced(const struct cl_node *p, const struct cl_node *r)
{
	struct pm_client *pc = cl_node_client(p, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
	struct pm_client *rc = cl_node_client(r, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
	char *pt = lib_info_text(pc, NULL), *rt = lib_info_text(rc, NULL);
	bool all = pt && rt;
	for (uint32_t s = 0; s < CL_SHARDS && all; s++) {
		char part[32], link[32];
		snprintf(part, sizeof(part), "@shard:%u\r\n", s);
		long long last = info_text_field(pt, part, "wal_next_lsn") - 1;
		all = last >= 0 && info_text_field(rt, part, "repl_applied_lsn") == last &&
		      info_text_word(rt, part, "repl_link", link, sizeof(link)) &&
		      !strcmp(link, "streaming");
	}
	free(pt);
	free(rt);
	pm_client_close(pc);
	pm_client_close(rc);
	return all;
}

bool cl_set_synced(struct cl_cluster *c, const char *set, int ms)
{
	uint64_t deadline = proc_now_ms() + (uint64_t)ms;
	for (;;) {
		struct cl_node *p = cl_primary(c, set);
		bool all = p != NULL;
		for (uint32_t i = 0; i < c->nnodes && all; i++) {
			struct cl_node *n = &c->nodes[i];
			if (n != p && !strcmp(n->set, set) && pomaid_alive(&n->pm))
				all = node_synced(p, n);
		}
		if (all)
			return true;
		if (proc_now_ms() >= deadline) {
			printf("\n  set %s: its replicas did not reach its primary's (%s) last LSN in %d ms",
			       set, p ? p->name : "none", ms);
			cl_print(c);
			return false;
		}
		proc_pause_ms(PROC_POLL_MS * 5);
	}
}

bool cl_node_rejoined(struct cl_cluster *c, struct cl_node *n, int ms)
{
	struct cl_status *st = malloc(sizeof(*st));
	uint64_t deadline = proc_now_ms() + (uint64_t)ms;
	bool ok = false;
	while (st && !ok) {
		cl_status(n, st);
		struct cl_node *p = cl_node_named(c, cl_status_primary(st, n->set));
		ok = st->answered && !strcmp(st->role, "replica") && p && p != n &&
		     ready_poll(c, st->map_epoch, NULL, 0, false) && node_synced(p, n);
		if (ok || proc_now_ms() >= deadline)
			break;
		proc_pause_ms(PROC_POLL_MS * 5);
	}
	if (!ok && st) {
		printf("\n  %s did not rejoin as a replica streaming from its primary in %d ms"
		       " (role %s, map_epoch %lld):", n->name, ms, st->role, st->map_epoch);
		cl_print(c);
		cl_node_log_tail(n);
	}
	free(st);
	return ok;
}

/* ---------------------------------------------------------------- the cluster */

bool cl_create(struct cl_cluster *c, const char *pomaid_path, const char *control_path,
	       uint32_t nsets, uint32_t per_set)
{
	bool host_net = c->host_net;
	memset(c, 0, sizeof(*c));
	c->host_net = host_net;
	c->pomaid_path = pomaid_path;
	c->control_path = control_path;
	c->etcd.proc.pid = -1;
	c->etcd.path = NULL;
	if (nsets == 0 || nsets > CL_SETS_MAX || per_set == 0 || nsets * per_set > CL_NODES_MAX) {
		printf("\n  %u sets of %u nodes: past the harness's bounds (%u sets, %u nodes)", nsets,
		       per_set, CL_SETS_MAX, CL_NODES_MAX);
		return false;
	}
	c->nsets = nsets;
	c->nnodes = nsets * per_set;
	snprintf(c->name, sizeof(c->name), "c%u", (unsigned)getpid());
	for (uint32_t s = 0; s < nsets; s++)
		snprintf(c->sets[s], sizeof(c->sets[s]), "s%u", s + 1);
	for (uint32_t i = 0; i < c->nnodes; i++)
		node_init(c, &c->nodes[i], i + 1, c->sets[i / per_set]);
	for (uint32_t i = 0; i < c->nnodes; i++)
		if (!node_dirs(&c->nodes[i]) || (!c->host_net && !ns_make(&c->nodes[i])))
			return false;
	if (!etcd_create(c))
		return false;
	for (uint32_t i = 0; i < c->nnodes; i++)
		if (!cl_node_start(c, &c->nodes[i]))
			return false;
	/* CLUSTER INIT s1,s2,... on the first node's pomai-control */
	char words[128], out[1024];
	size_t w = (size_t)snprintf(words, sizeof(words), "CLUSTER INIT ");
	for (uint32_t s = 0; s < nsets; s++)
		w += (size_t)snprintf(words + w, sizeof(words) - w, "%s%s", s ? "," : "", c->sets[s]);
	int rc = ctl_admin(c->nodes[0].csock, words, out, sizeof(out));
	if (rc != PM_ADMIN_OK) {
		printf("\n  %s on %s: status %d: %s", words, c->nodes[0].name, rc, out);
		cl_node_log_tail(&c->nodes[0]);
		return false;
	}
	return cl_ready(c, 1, NULL, CL_READY_WAIT_MS);
}

bool cl_destroy(struct cl_cluster *c)
{
	bool ok = true;
	for (uint32_t i = 0; i < c->nnodes; i++) {
		struct cl_node *n = &c->nodes[i];
		if (!node_stop(n)) {
			ok = false;
			cl_node_log_tail(n);
		}
	}
	if (c->etcd.proc.pid > 0 && !c->etcd.proc.reaped && !etcd_proc_stop(&c->etcd))
		printf("\n  etcd did not exit on SIGTERM");
	for (uint32_t i = 0; i < c->nnodes; i++) {
		struct cl_node *n = &c->nodes[i];
		ns_remove(n);
		bool bad = sanitized(n->pm_log) || sanitized(n->ctl_log);
		if (bad) {
			printf("\n  %s: a sanitizer report in its output", n->name);
			cl_node_log_tail(n);
		}
		ok &= !bad;
		if (c->keep)
			printf("\n  %s's directory kept: %s", n->name, n->pm.dir);
		else if (n->pm.dir[0])
			proc_dir_remove(n->pm.dir);
	}
	if (c->etcd.dir[0]) {
		if (c->keep)
			printf("\n  etcd's directory kept: %s", c->etcd.dir);
		else
			etcd_proc_remove(&c->etcd);
		c->etcd.dir[0] = '\0';
	}
	c->nnodes = 0;
	return ok;
}

/* ---------------------------------------------------------------- clients */

struct pm_client *cl_node_client(const struct cl_node *n, uint32_t timeout_ms, uint32_t retries,
				 uint32_t in_flight)
{
	return lib_open(&n->pm, timeout_ms, retries, in_flight);
}

struct pm_client *cl_client(struct cl_cluster *c, uint32_t timeout_ms, uint32_t retries,
			    uint32_t in_flight)
{
	for (uint32_t i = 0; i < c->nnodes; i++) {
		const struct cl_node *n = &c->nodes[i];
		if (!pomaid_alive(&n->pm))
			continue;
		struct pm_client_config cfg;
		struct pm_client *cl = NULL;
		pm_client_config_default(&cfg);
		cfg.cluster = true;
		cfg.base_port = n->pm.base;
		cfg.tcp_port = n->pm.base - 1u;
		cfg.timeout_ms = timeout_ms;
		cfg.retries = retries;
		if (in_flight)
			cfg.max_in_flight = in_flight;
		enum pm_client_status st = pm_client_open(&cfg, &cl);
		if (st != PM_CLIENT_OK)
			printf("\n  a cluster client seeded from %s did not open: %s", n->name,
			       pm_client_status_name(st));
		return st == PM_CLIENT_OK ? cl : NULL;
	}
	return NULL;
}
