/* SPDX-License-Identifier: MIT
 *
 * dpdk_load.c — the DPDK backend's entry points in pomaid, loaded from its
 * module (pomaid-dpdk.so: dpdk.c and dpdk_io.c, linked against DPDK) only
 * when backend = dpdk. A pomaid on its default kernel backend then maps no
 * DPDK library at all: 18 of the 24 libraries it linked, whose mapping,
 * relocation and constructors were about 5 ms of CPU of every start
 * (issue 20: a restart is measured from exec to ready).
 *
 * The module is looked for next to the running pomaid first (a build tree,
 * or an install that keeps them together), then in PM_DPDK_MODULE_DIR (the
 * install's libdir/pomai). It binds its own symbols first (-Bsymbolic), so
 * that its calls of pm_dpdk_* reach its own functions, not these; what it
 * needs of pomaid (pm_errf) comes from the executable, which exports its
 * symbols (export_dynamic). Without the module, backend = dpdk is refused at
 * start-up with the paths tried; nothing else here is called then, because
 * no worker is given the backend's operations.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "dpdk.h"

#ifndef PM_DPDK_MODULE_DIR
#define PM_DPDK_MODULE_DIR "/usr/lib/pomai"
#endif
#define MODULE_NAME "pomaid-dpdk.so"

/* The module's functions (dpdk.h), once loaded. */
static struct {
	void *handle;
	int (*init)(struct pm_daemon *, int, char *, size_t);
	int (*open)(struct pm_daemon *, char *, size_t);
	void (*close)(struct pm_daemon *);
	void *(*arena)(struct pm_daemon *, uint64_t);
	void (*arena_free)(void *);
	uint32_t (*local_addrs)(const struct pm_daemon *, uint32_t *, uint32_t);
	const char *(*describe)(const struct pm_daemon *, char *, size_t);
	const struct pm_backend_ops *ops;
} mod;

/* Next to this executable: its directory and the name, in out; false if it
 * cannot be read. */
static bool beside_self(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return false;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		return false;
	*slash = '\0';
	return (size_t)snprintf(out, len, "%s/%s", self, MODULE_NAME) < len;
}

/* 0, or -1 with why in err. */
static int load(char *err, size_t errlen)
{
	if (mod.handle)
		return 0;
	char here[PATH_MAX + sizeof(MODULE_NAME)] = "";
	const char *installed = PM_DPDK_MODULE_DIR "/" MODULE_NAME, *path = here;
	void *h = beside_self(here, sizeof(here)) ? dlopen(here, RTLD_NOW | RTLD_LOCAL) : NULL;
	if (!h)
		h = dlopen(path = installed, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "backend = dpdk: the DPDK module could not be loaded (%s, then"
				      " %s): %s", here[0] ? here : "(no path beside pomaid)", installed,
			 dlerror());
		return -1;
	}
	/* POSIX: a function pointer from dlsym's void * */
	*(void **)&mod.init = dlsym(h, "pm_dpdk_init");
	*(void **)&mod.open = dlsym(h, "pm_dpdk_open");
	*(void **)&mod.close = dlsym(h, "pm_dpdk_close");
	*(void **)&mod.arena = dlsym(h, "pm_dpdk_arena");
	*(void **)&mod.arena_free = dlsym(h, "pm_dpdk_arena_free");
	*(void **)&mod.local_addrs = dlsym(h, "pm_dpdk_local_addrs");
	*(void **)&mod.describe = dlsym(h, "pm_dpdk_describe");
	mod.ops = dlsym(h, "pm_dpdk_backend");
	if (!mod.init || !mod.open || !mod.close || !mod.arena || !mod.arena_free ||
	    !mod.local_addrs || !mod.describe || !mod.ops) {
		snprintf(err, errlen, "backend = dpdk: %s is not this pomaid's DPDK module (a symbol"
				      " is missing)", path);
		dlclose(h);
		memset(&mod, 0, sizeof(mod));
		return -1;
	}
	mod.handle = h; /* for good: DPDK's state lives in it until exit */
	return 0;
}

int pm_dpdk_init(struct pm_daemon *d, int main_cpu, char *err, size_t errlen)
{
	return load(err, errlen) == 0 ? mod.init(d, main_cpu, err, errlen) : -1;
}

int pm_dpdk_open(struct pm_daemon *d, char *err, size_t errlen)
{
	return load(err, errlen) == 0 ? mod.open(d, err, errlen) : -1;
}

void pm_dpdk_close(struct pm_daemon *d)
{
	if (mod.handle)
		mod.close(d);
}

void *pm_dpdk_arena(struct pm_daemon *d, uint64_t bytes)
{
	return mod.handle ? mod.arena(d, bytes) : NULL;
}

void pm_dpdk_arena_free(void *mem)
{
	if (mod.handle)
		mod.arena_free(mem);
}

uint32_t pm_dpdk_local_addrs(const struct pm_daemon *d, uint32_t *out, uint32_t max)
{
	return mod.handle ? mod.local_addrs(d, out, max) : 0;
}

const char *pm_dpdk_describe(const struct pm_daemon *d, char *buf, size_t len)
{
	if (mod.handle)
		return mod.describe(d, buf, len);
	snprintf(buf, len, "(DPDK not loaded)");
	return buf;
}

const struct pm_backend_ops *pm_dpdk_ops(void)
{
	return mod.ops;
}
