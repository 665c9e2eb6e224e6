/* SPDX-License-Identifier: MIT
 *
 * etcd_proc.h — a real etcd for a test (test_etcd, the cluster suite), on
 * tests/proc.h: one member on free loopback ports in a temporary directory,
 * started, stopped, killed, restarted on the same directory and ports,
 * paused (SIGSTOP) and resumed, its client URL, and the directory removed at
 * the end (a fresh etcd preallocates ~128 MB of WAL in it).
 *
 * A start waits for the ready line (`serving client traffic insecurely`,
 * printed once the member elected itself and serves) and then for GET
 * /health to answer {"health":"true"}: a wait for events, each with a
 * deadline, never a sleep. Fresh ≈ 0.8 s, a restart on its directory ≈ 1.8 s
 * (it waits one election timeout). What etcd prints goes to DIR/etcd.log.
 *
 * etcd runs with `--logger zap --log-outputs stderr` and
 * `--experimental-watch-progress-notify-interval 1s` (a watch that asked for
 * progress notifications hears from etcd every second). Its lease timing is
 * etcd's default (heartbeat 100 ms, election 1000 ms: the minimum lease TTL
 * is 2 s). Without etcd on the machine a suite exits 77 (cu_main.h's
 * pm_cu_cannot_run: a failure under CI=true); scripts/deps.sh installs
 * Debian's etcd-server.
 */
#ifndef POMAI_TESTS_ETCD_PROC_H
#define POMAI_TESTS_ETCD_PROC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proc.h"

/* What etcd 3.4 (zap logger) prints once it serves clients. */
#define ETCD_PROC_READY_LINE "serving client traffic insecurely"
/* How long a start may take to be ready and healthy: a restart waits one
 * election timeout (1.8 s measured); a loaded 2-core CI machine and the
 * sanitizer build of the test around it get a wide margin. */
#define ETCD_PROC_READY_MS 30000
/* How long SIGSTOP / SIGCONT may take to show in /proc/PID/stat. */
#define ETCD_PROC_SIGNAL_MS 5000
/* Bytes of a URL ("http://127.0.0.1:65535"). */
#define ETCD_PROC_URL_BYTES 64u

struct etcd_proc {
	/* the caller's, before the first start (all optional) */
	const char *path;          /* the etcd binary; NULL: "etcd" on PATH */
	uint16_t client_port;      /* 0: picked (free) at the first start */
	uint16_t peer_port;        /* 0: picked (free) at the first start */
	/* More flags for every start, NULL-terminated (may be NULL). They come
	 * after ours, and etcd keeps a flag's last value: e.g. a
	 * --listen-client-urls of 127.0.0.1 and a netns test's address on
	 * client_port (set client_port first). */
	const char *const *flags;
	/* state */
	char dir[PATH_MAX];        /* made at the first start; data in DIR/data */
	char log[PATH_MAX + 16];   /* DIR/etcd.log */
	char url[ETCD_PROC_URL_BYTES]; /* http://127.0.0.1:<client_port> */
	bool paused;
	struct proc proc;
};

/* Whether the etcd binary (e->path, or "etcd" on PATH) can be run. */
bool etcd_proc_installed(const struct etcd_proc *e);
/* Start it: the first time in a new directory on free ports (tried again on
 * other ports if one was taken meanwhile), afterwards on the same directory
 * and ports (a restart: its data and leases kept). True once ready and
 * healthy; false (e->proc.out and DIR/etcd.log say why) otherwise. */
bool etcd_proc_start(struct etcd_proc *e);
/* SIGTERM (SIGCONT first if paused) and its exit waited for (at most
 * PROC_EXIT_WAIT_MS, then SIGKILL): true if it exited within that. */
bool etcd_proc_stop(struct etcd_proc *e);
/* SIGKILL (a crash): true if it was running until then. */
bool etcd_proc_kill(struct etcd_proc *e);
/* SIGSTOP / SIGCONT, each waited for until the kernel shows it. */
bool etcd_proc_pause(struct etcd_proc *e);
bool etcd_proc_resume(struct etcd_proc *e);
bool etcd_proc_alive(const struct etcd_proc *e);
const char *etcd_proc_url(const struct etcd_proc *e);
/* POST body (JSON) to path ("/v3/kv/compaction") over a fresh connection,
 * HTTP/1.0: the answer's status (0: no answer within ms), its body into out
 * (cap bytes with the NUL; cut to fit). For what a test needs beyond the
 * client under test (a compaction, a look at the store). */
int etcd_proc_post(const struct etcd_proc *e, const char *path, const char *body, char *out,
		   size_t cap, int ms);
/* Kill it if it runs, and remove its directory. */
void etcd_proc_remove(struct etcd_proc *e);

#endif
