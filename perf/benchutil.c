/* SPDX-License-Identifier: MIT
 *
 * benchutil.c — clock, pinning, median and the reproducibility header shared by
 * the benchmarks (see benchutil.h).
 */
#define _GNU_SOURCE
#include "benchutil.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

uint64_t bu_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static void print_cpu_model(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	const char *model = "unknown";
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) == 0) {
			char *colon = strchr(line, ':');
			if (colon) {
				model = colon + 2;
				line[strcspn(line, "\n")] = '\0';
			}
			break;
		}
	}
	printf("cpu:      %s\n", model);
	if (f)
		fclose(f);
}

void bu_print_header(const char *title, int argc, char **argv)
{
	printf("== %s ==\ncommand: ", title);
	for (int i = 0; i < argc; i++)
		printf("%s%s", i ? " " : "", argv[i]);
	time_t now = time(NULL);
	char date[64];
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
	printf("\ndate:     %s\n", date);
	struct utsname u;
	if (uname(&u) == 0)
		printf("uname -a: %s %s %s %s %s\n", u.sysname, u.nodename, u.release, u.version,
		       u.machine);
	print_cpu_model();
	cpu_set_t set;
	int avail = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : -1;
	printf("nproc:    %d (online %ld)\n", avail, sysconf(_SC_NPROCESSORS_ONLN));
	long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE), l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
	printf("cache:    L2 %ld KiB, L3 %ld KiB (as reported by the OS)\n",
	       l2 > 0 ? l2 / 1024 : 0, l3 > 0 ? l3 / 1024 : 0);
#ifdef NDEBUG
	printf("build:    release (NDEBUG)\n");
#else
	printf("build:    debug asserts ON (numbers not representative)\n");
#endif
	fflush(stdout);
}

int bu_pin_cpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0 ? 0 : -errno;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double bu_median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

int bu_parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}
