/* SPDX-License-Identifier: MIT
 *
 * pomaid.c — the dataplane daemon: read the configuration, place one worker per
 * shard on its own core (hwloc), bind each shard's arena to that core's NUMA
 * node, open the sockets, start the workers, and stop them on SIGTERM/SIGINT.
 *
 * Everything that can fail is done before the first worker starts, with a
 * message naming what failed: a daemon that says "ready" has all its ports,
 * memory and cores. The first is data_dir: opened once and refused unless
 * only pomaid's user can write it (datadir.h); every file in it is then
 * reached through that descriptor. The first SIGTERM/SIGINT asks the workers to drain and
 * stop; a second one exits at once.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hwloc/glibc-sched.h>

#include "access.h"
#include "admin.h"
#include "cluster.h"
#include "common.h"
#include "datadir.h"
#include "dpdk.h"
#include "repl_io.h"
#include "stats_pub.h"
#include "tcp.h"
#include "udp.h"
#include "users.h"
#include "wal_io.h"
#include "worker.h"

#define POMAID_VERSION "0.1.0"
#define ERR_BYTES 512u

static struct pm_daemon daemon_state;

static void on_signal(int sig)
{
	(void)sig;
	if (atomic_exchange(&daemon_state.quit, 1))
		_exit(130); /* second signal: stop now */
}

static void usage(FILE *f)
{
	fprintf(f, "usage: pomaid [--config FILE] [--KEY VALUE ...] [--print-config] [--version]\n"
		   "Pomai dataplane daemon. Every configuration key can be given as a flag\n"
		   "(flags override the file; see config/pomai.conf):\n");
	pm_config_usage(f);
}

/* --config first, then every other flag over it. */
static int parse_args(int argc, char **argv, struct pm_config *c, bool *print)
{
	char err[ERR_BYTES], key[64];
	pm_config_defaults(c);
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--config") && pm_config_load(c, argv[i + 1], err, sizeof(err))) {
			fprintf(stderr, "pomaid: %s\n", err);
			return -1;
		}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		}
		if (!strcmp(a, "--version")) {
			printf("pomaid %s\n", POMAID_VERSION);
			exit(0);
		}
		if (!strcmp(a, "--print-config")) {
			*print = true;
			continue;
		}
		if (strncmp(a, "--", 2) || i + 1 >= argc || strlen(a) - 2 >= sizeof(key)) {
			fprintf(stderr, "pomaid: unexpected argument '%s' (try --help)\n", a);
			return -1;
		}
		snprintf(key, sizeof(key), "%s", a + 2);
		for (char *p = key; *p; p++)
			*p = *p == '-' ? '_' : *p;
		if (strcmp(key, "config") && pm_config_set(c, key, argv[i + 1], err, sizeof(err))) {
			fprintf(stderr, "pomaid: %s\n", err);
			return -1;
		}
		i++;
	}
	return 0;
}

/* ---------------------------------------------------------------- placement */

/* The cpusets the workers get: one physical core each (auto), or the listed
 * CPUs. Refuses to put two pollers on one core. */
static int place_workers(hwloc_topology_t topo, struct pm_config *c, hwloc_bitmap_t *sets)
{
	int ncores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
	if (strcmp(c->cores, "auto") != 0) {
		uint32_t n = 0;
		for (const char *p = c->cores; *p && n < PM_SHARDS_MAX; n++) {
			unsigned cpu = (unsigned)strtoul(p, (char **)&p, 10);
			hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topo, cpu);
			if (!pu) {
				fprintf(stderr, "pomaid: cores: CPU %u does not exist here\n", cpu);
				return -1;
			}
			sets[n] = hwloc_bitmap_dup(pu->cpuset);
			p += *p == ',';
		}
		if (c->shards == 0)
			c->shards = n;
		if (c->shards != n) {
			fprintf(stderr, "pomaid: %u shards but %u CPUs in 'cores'\n", c->shards, n);
			return -1;
		}
		return 0;
	}
	if (c->shards == 0)
		c->shards = (uint32_t)PM_MIN(ncores, (int)PM_SHARDS_DEFAULT_MAX);
	if ((int)c->shards > ncores) {
		fprintf(stderr, "pomaid: %u shards need %u cores; this machine has %d "
				"(one polling worker per core; lower 'shards')\n",
			c->shards, c->shards, ncores);
		return -1;
	}
	for (uint32_t i = 0; i < c->shards; i++) {
		hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, i);
		sets[i] = hwloc_bitmap_dup(core->cpuset);
		hwloc_bitmap_singlify(sets[i]); /* one PU of the core */
	}
	return 0;
}

/* One daemon per data_dir: two would replay and append to the same logs. The
 * lock (flock on data_dir/LOCK, never through a link) lasts as long as the
 * process. */
static int lock_data_dir(const struct pm_daemon *d)
{
	int fd = pm_datadir_openat(d->data_fd, "LOCK", O_CREAT | O_RDWR, 0640);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0)
		fd = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
	if (fd < 0) {
		fprintf(stderr, "pomaid: data_dir %s: LOCK: %s\n", d->cfg.data_dir,
			fd == -EWOULDBLOCK ? "in use by another pomaid"
			: fd == -ELOOP	   ? "a symbolic link: refusing to start (pomaid follows no"
					     " link inside its data_dir)"
					   : strerror(-fd));
		return -1;
	}
	return 0; /* fd stays open: the lock is held until exit */
}

/* The EAL's main lcore: a CPU no worker polls on if there is one (the main
 * thread only waits), else the first worker's. */
static int main_cpu(hwloc_topology_t topo, hwloc_bitmap_t *sets, uint32_t n)
{
	hwloc_bitmap_t used = hwloc_bitmap_alloc();
	for (uint32_t i = 0; i < n; i++)
		hwloc_bitmap_or(used, used, sets[i]);
	hwloc_bitmap_t free_cpus = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(topo));
	hwloc_bitmap_andnot(free_cpus, free_cpus, used);
	int cpu = hwloc_bitmap_iszero(free_cpus) ? hwloc_bitmap_first(sets[0])
						 : hwloc_bitmap_first(free_cpus);
	hwloc_bitmap_free(used);
	hwloc_bitmap_free(free_cpus);
	return cpu;
}

/* ---------------------------------------------------------------- set-up */

static int open_shard(struct pm_daemon *d, hwloc_topology_t topo, hwloc_bitmap_t set, uint32_t i)
{
	struct pm_worker *w = &d->workers[i];
	char err[ERR_BYTES];
	w->id = i;
	w->d = d;
	w->fd = -1;
	w->cpu = hwloc_bitmap_first(set);
	hwloc_obj_t node = hwloc_get_next_obj_covering_cpuset_by_type(topo, set, HWLOC_OBJ_NUMANODE,
								     NULL);
	w->numa = node ? (int)node->os_index : -1;
	if (pm_worker_alloc(w) != 0) {
		fprintf(stderr, "pomaid: shard %u: out of memory for its buffers\n", i);
		return -1;
	}
	bool dpdk = d->cfg.backend == PM_BACKEND_DPDK;
	w->be = dpdk ? pm_dpdk_ops() : &pm_udp_backend; /* the worker's backend, for good */
	if (!dpdk && (w->fd = pm_udp_open(&d->cfg, i, err, sizeof(err))) < 0) {
		fprintf(stderr, "pomaid: %s\n", err);
		return -1;
	}
	int rc = dpdk ? 0 : pm_tcp_watch_udp(w);
	if (rc != 0)
		fprintf(stderr, "pomaid: shard %u: UDP socket not in the epoll set (%s): read every"
			" turn\n", i, strerror(-rc));
	struct pm_shard_config sc = pm_worker_shard_config(w);
	enum pm_status st = pm_shard_init(&w->shard, &sc);
	if (st != PM_OK) {
		fprintf(stderr, "pomaid: shard %u: arena of %llu bytes with %u seeds: %s\n", i,
			(unsigned long long)sc.arena_bytes, sc.seed_capacity, pm_status_name(st));
		return -1;
	}
	if (pm_wal_open(w, err, sizeof(err)) != 0) { /* replays the shard's log */
		fprintf(stderr, "pomaid: shard %u: %s\n", i, err);
		return -1;
	}
	/* The limit applies from now: recovery replays the log as it was written
	 * (its evictions are in it as deletes), never evicting or refusing. */
	if (pm_worker_shard_limits(w, err, sizeof(err)) != 0) {
		fprintf(stderr, "pomaid: shard %u: %s\n", i, err);
		return -1;
	}
	/* pages are touched only as the shard fills: bind them to the core's node first */
	hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topo, (unsigned)w->cpu);
	if (pu && pu->nodeset && hwloc_bitmap_weight(hwloc_topology_get_topology_nodeset(topo)) > 1)
		if (hwloc_set_area_membind(topo, w->shard.arena.base, w->shard.arena.bytes, pu->nodeset,
					   HWLOC_MEMBIND_BIND, HWLOC_MEMBIND_BYNODESET) != 0)
			fprintf(stderr, "pomaid: shard %u: NUMA binding failed (%s); continuing\n", i,
				strerror(errno));
	return 0;
}

/* One shard's opening, on a thread of its own (open_shards). */
struct shard_open {
	struct pm_daemon *d;
	hwloc_topology_t topo;
	hwloc_bitmap_t set;
	uint32_t i;
	pthread_t thread;
	bool started;
	int rc;
};

static void *open_shard_main(void *arg)
{
	struct shard_open *o = arg;
	o->rc = open_shard(o->d, o->topo, o->set, o->i);
	return NULL;
}

/* What needs no shard, made on the main thread while the shards load
 * (issue 20: a restart's time is the slowest load and what is not beside
 * it): the stats segment and the node's own addresses (with DPDK those are
 * the ports', known once they are open: main). Not the admin socket: it
 * sets the process's umask to bind, and the shards make files meanwhile. */
static int open_beside(struct pm_daemon *d)
{
	char err[ERR_BYTES];
	if (pm_stats_create(d, err, sizeof(err)) != 0 ||
	    (!d->dpdk && pm_self_init(d, err, sizeof(err)) != 0)) {
		fprintf(stderr, "pomaid: %s\n", err);
		return -1;
	}
	return 0;
}

/* Every shard opened at once (issue 20): each loads its snapshot and replays
 * its log on a thread of its own, pinned where the shard's worker will run,
 * so that a restart takes the slowest shard's time, not the sum, and the
 * arena's pages are first touched on the worker's NUMA node. The shards
 * share nothing while they recover (their own directories, logs, rings and
 * arenas; the data dir's subdirectories are made with mkdirat, which a
 * second shard finds made). The DPDK arenas come from the EAL's allocator,
 * here on the main thread first. A shard whose thread cannot be made opens
 * on this one. */
static int open_shards(struct pm_daemon *d, hwloc_topology_t topo, hwloc_bitmap_t *sets)
{
	uint32_t n = d->nshards;
	struct shard_open *o = calloc(n, sizeof(*o));
	if (!o)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		if (d->cfg.backend == PM_BACKEND_DPDK && d->cfg.hugepages)
			d->workers[i].arena_mem = pm_dpdk_arena(d, d->cfg.arena_bytes);
	for (uint32_t i = 0; i < n; i++) {
		o[i] = (struct shard_open){ .d = d, .topo = topo, .set = sets[i], .i = i };
		pthread_attr_t attr;
		cpu_set_t cpus;
		pthread_attr_init(&attr);
		if (hwloc_cpuset_to_glibc_sched_affinity(topo, sets[i], &cpus, sizeof(cpus)) == 0)
			pthread_attr_setaffinity_np(&attr, sizeof(cpus), &cpus);
		o[i].started = pthread_create(&o[i].thread, &attr, open_shard_main, &o[i]) == 0;
		pthread_attr_destroy(&attr);
		if (!o[i].started)
			open_shard_main(&o[i]);
	}
	int rc = open_beside(d);
	for (uint32_t i = 0; i < n; i++) {
		if (o[i].started)
			pthread_join(o[i].thread, NULL);
		rc |= o[i].rc;
	}
	free(o);
	return rc;
}

static int open_daemon(struct pm_daemon *d, hwloc_topology_t topo, hwloc_bitmap_t *sets)
{
	uint32_t n = d->nshards = d->cfg.shards;
	char err[ERR_BYTES];
	if (pm_allow_parse(&d->allow, d->cfg.allow_networks, err, sizeof(err)) != 0) {
		fprintf(stderr, "pomaid: allow_networks: %s\n", err); /* checked at load: cannot happen */
		return -1;
	}
	d->workers = calloc(n, sizeof(*d->workers));
	d->rings = calloc((size_t)n * n, sizeof(*d->rings));
	if (!d->workers || !d->rings)
		return -1;
	for (uint32_t i = 0; i < n * n; i++)
		if (i / n != i % n && !(d->rings[i].buf = malloc(PM_RING_BYTES))) {
			fprintf(stderr, "pomaid: out of memory for %u rings of %u bytes\n", n * n,
				PM_RING_BYTES);
			return -1;
		}
	for (uint32_t i = 0; i < n; i++) {
		d->workers[i].wake_fd = -1;
		d->workers[i].fd = -1;
		d->workers[i].ep = -1;
	}
	int rc = open_shards(d, topo, sets);
	pm_guard_root_erase(&d->cookie_root); /* every worker has its own copy now */
	if (rc != 0)
		return -1;
	pm_wal_probe(d); /* the shards' recoveries are done: nothing else on the disk */
	return 0;
}

static void close_daemon(struct pm_daemon *d)
{
	for (uint32_t i = 0; d->workers && i < d->nshards; i++) {
		pm_wal_close(&d->workers[i]);
		pm_shard_destroy(&d->workers[i].shard);
		pm_worker_free(&d->workers[i]);
		if (d->workers[i].arena_mem)
			pm_dpdk_arena_free(d->workers[i].arena_mem);
	}
	for (uint32_t i = 0; d->rings && i < d->nshards * d->nshards; i++)
		free(d->rings[i].buf);
	free(d->workers);
	free(d->rings);
	d->workers = NULL; /* pm_dpdk_close runs after this (the arenas need the EAL) */
	d->rings = NULL;
}

/* Each worker starts on its own CPU (the thread attribute, so that a DPDK
 * worker registers as an EAL lcore with the right CPU and NUMA node). */
static int start_workers(struct pm_daemon *d, hwloc_topology_t topo, hwloc_bitmap_t *sets)
{
	for (uint32_t i = 0; i < d->nshards; i++) {
		struct pm_worker *w = &d->workers[i];
		pthread_attr_t attr;
		cpu_set_t cpus;
		pthread_attr_init(&attr);
		if (hwloc_cpuset_to_glibc_sched_affinity(topo, sets[i], &cpus, sizeof(cpus)) == 0)
			pthread_attr_setaffinity_np(&attr, sizeof(cpus), &cpus);
		int rc = pthread_create(&w->thread, &attr, pm_worker_main, w);
		pthread_attr_destroy(&attr);
		if (rc != 0) {
			fprintf(stderr, "pomaid: worker %u: %s\n", i, strerror(rc));
			atomic_store(&d->quit, 1);
			for (uint32_t j = 0; j < i; j++)
				pthread_join(d->workers[j].thread, NULL);
			return -1;
		}
		char name[16]; /* the kernel's bound (TASK_COMM_LEN) */
		snprintf(name, sizeof(name), "pomai-w%u", i & 0xffu); /* top -H, ps -L, tests/test_noblock */
		(void)pthread_setname_np(w->thread, name);
		if (hwloc_set_thread_cpubind(topo, w->thread, sets[i], HWLOC_CPUBIND_THREAD) != 0)
			fprintf(stderr, "pomaid: worker %u: pinning to CPU %d failed: %s\n", i, w->cpu,
				strerror(errno));
	}
	return 0;
}

/* Anyone who reaches a non-loopback address may read and change every key
 * while auth = off (docs/security.md): say so at start. */
static void warn_auth_off(const struct pm_config *c)
{
	struct in_addr a;
	bool loopback = c->backend != PM_BACKEND_DPDK && inet_pton(AF_INET, c->bind, &a) == 1 &&
			(ntohl(a.s_addr) >> 24) == 127u;
	if (!c->auth && !loopback)
		fprintf(stderr, "pomaid: warning: auth = off on %s: anyone who reaches it may read,"
			" change and delete every key; set auth = on and add users"
			" (docs/security.md)\n", c->backend == PM_BACKEND_DPDK ? "the DPDK ports" : c->bind);
}

int main(int argc, char **argv)
{
	struct pm_daemon *d = &daemon_state;
	bool print = false;
	d->data_fd = -1;
	if (parse_args(argc, argv, &d->cfg, &print) != 0)
		return 2;
	hwloc_topology_t topo;
	hwloc_bitmap_t sets[PM_SHARDS_MAX] = { 0 };
	if (hwloc_topology_init(&topo) || hwloc_topology_load(topo)) {
		fprintf(stderr, "pomaid: cannot read the machine topology (hwloc)\n");
		return 1;
	}
	int rc = 1;
	if (place_workers(topo, &d->cfg, sets) != 0)
		goto out;
	if (print) {
		pm_config_print(&d->cfg, stdout);
		rc = 0;
		goto out;
	}
	char err[ERR_BYTES];
	if (pm_auth_init() != 0) {
		fprintf(stderr, "pomaid: libsodium could not start\n");
		goto out;
	}
	/* the cookies' master secret (guard.h) */
	pm_guard_root_init(&d->cookie_root, d->cfg.cookie_window_s, pm_mono_ns());
	if ((d->data_fd = pm_datadir_open(d->cfg.data_dir, err, sizeof(err))) < 0) {
		fprintf(stderr, "pomaid: %s\n", err);
		goto out;
	}
	if (lock_data_dir(d) != 0)
		goto out;
	if (pm_users_open(d, err, sizeof(err)) != 0) {
		fprintf(stderr, "pomaid: %s\n", err);
		goto out;
	}
	warn_auth_off(&d->cfg);
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->listen_fd = -1;
	if (d->cfg.tcp_port && (d->listen_fd = pm_tcp_listen(&d->cfg, err, sizeof(err))) < 0) {
		fprintf(stderr, "pomaid: %s\n", err);
		goto out;
	}
	if (d->cfg.backend == PM_BACKEND_DPDK &&
	    pm_dpdk_init(d, main_cpu(topo, sets, d->cfg.shards), err, sizeof(err)) != 0) {
		fprintf(stderr, "pomaid: %s\n", err);
		goto close;
	}
	if (open_daemon(d, topo, sets) != 0)
		goto close;
	if ((d->dpdk && (pm_dpdk_open(d, err, sizeof(err)) != 0 ||
			 pm_self_init(d, err, sizeof(err)) != 0)) ||
	    pm_repl_open(d, err, sizeof(err)) != 0 || pm_cluster_open(d, err, sizeof(err)) != 0 ||
	    pm_admin_open(d, err, sizeof(err)) != 0) {
		fprintf(stderr, "pomaid: %s\n", err);
		goto close;
	}
	if (start_workers(d, topo, sets) != 0)
		goto close;
	char ports[PM_CONFIG_EAL_BYTES];
	printf("pomaid: ready: %u shards on %s udp %u-%u tcp %u, polling %s, cpus", d->nshards,
	       d->dpdk ? pm_dpdk_describe(d, ports, sizeof(ports)) : d->cfg.bind, d->cfg.base_port,
	       d->cfg.base_port + d->nshards - 1, d->cfg.tcp_port,
	       d->cfg.polling == PM_POLL_BUSY ? "busy" : "adaptive");
	for (uint32_t i = 0; i < d->nshards; i++)
		printf(" %d", d->workers[i].cpu);
	printf("\n");
	fflush(stdout);
	pm_admin_run(d); /* this thread serves the admin socket until the daemon stops */
	for (uint32_t i = 0; i < d->nshards; i++)
		pthread_join(d->workers[i].thread, NULL);
	printf("pomaid: stopped\n");
	rc = 0;
close:
	pm_admin_close(d);
	pm_repl_close(d);
	pm_users_close(d);
	pm_cluster_close(d);
	close_daemon(d);
	pm_stats_destroy(d);
	pm_dpdk_close(d);
	if (d->listen_fd >= 0)
		close(d->listen_fd);
out:
	for (uint32_t i = 0; i < PM_SHARDS_MAX; i++)
		if (sets[i])
			hwloc_bitmap_free(sets[i]);
	hwloc_topology_destroy(topo);
	return rc;
}
