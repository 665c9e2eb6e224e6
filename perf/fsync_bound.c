/* SPDX-License-Identifier: MIT
 *
 * fsync_bound.c — the disk's own bound on durable writes: how many
 * write + fdatasync round trips per second one writer gets on the file system
 * of DIR, one in flight, as a log that waits for each flush gets them.
 * perf/durable_vs_redis.sh prints it beside its rows (issue 20): a server
 * that acknowledges a write only once it is on disk answers at most this many
 * batches per second, whatever it does.
 *
 * Three shapes of file, in rounds that alternate (the machine is shared: the
 * shapes see the same load), each write WRITE_BYTES at the next offset:
 *   append     a file that grows (Redis's appendonly file): every fdatasync
 *              also commits the new size to the journal
 *   unwritten  a file allocated with fallocate and not written (Pomai's WAL
 *              segments: preallocated, or a spare zeroed with ZERO_RANGE): the
 *              first write to a block converts its extent, a journal commit
 *   overwrite  a file written whole and synced first: fdatasync flushes data
 *              only (no metadata changes) — the disk's own bound
 *
 *   fsync_bound DIR [SECONDS]     (default 3 s in all)
 * Prints "RESULT shape=<s> ops_s=<n> p50_us=<n> p99_us=<n>" per shape.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Bytes per write: one page, a small batch of a group-committing log. */
#define WRITE_BYTES 4096u
/* Bytes of the preallocated files: room for every write of a run. */
#define FILE_BYTES (256ull << 20)
/* Writes per shape per round: rounds alternate so that the shapes share the load. */
#define ROUND_WRITES 20u
/* Samples kept per shape (more writes than this stop the run). */
#define SAMPLES_MAX 200000u
#define SHAPES 3u

struct shape {
	const char *name;
	int fd;
	uint64_t off;
	uint32_t n;
	uint64_t ns_total;
	uint64_t *ns;
};

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int open_shape(const char *dir, const char *name, int how)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/fsync_bound.%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || unlink(path) != 0)
		return -1;
	if (how == 1 && fallocate(fd, 0, 0, (off_t)FILE_BYTES) != 0)
		return -1;
	if (how == 2) { /* written whole, then synced: no extent left to convert */
		static uint8_t zeros[1u << 20];
		for (uint64_t o = 0; o < FILE_BYTES; o += sizeof(zeros))
			if (pwrite(fd, zeros, sizeof(zeros), (off_t)o) != (ssize_t)sizeof(zeros))
				return -1;
		if (fsync(fd) != 0)
			return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR [SECONDS]\n", argv[0]);
		return 2;
	}
	double seconds = argc > 2 ? atof(argv[2]) : 3.0;
	struct shape s[SHAPES] = { { .name = "append" }, { .name = "unwritten" },
				   { .name = "overwrite" } };
	static uint8_t page[WRITE_BYTES];
	memset(page, 'w', sizeof(page));
	for (uint32_t i = 0; i < SHAPES; i++) {
		s[i].fd = open_shape(argv[1], s[i].name, (int)i);
		s[i].ns = calloc(SAMPLES_MAX, sizeof(uint64_t));
		if (s[i].fd < 0 || !s[i].ns) {
			fprintf(stderr, "%s: %s/fsync_bound.%s: %s\n", argv[0], argv[1], s[i].name,
				strerror(errno));
			return 1;
		}
	}
	uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
	while (now_ns() < end) {
		for (uint32_t i = 0; i < SHAPES; i++) {
			for (uint32_t k = 0; k < ROUND_WRITES; k++) {
				struct shape *h = &s[i];
				if (h->n == SAMPLES_MAX || h->off + WRITE_BYTES > FILE_BYTES)
					goto done;
				uint64_t t0 = now_ns();
				if (pwrite(h->fd, page, WRITE_BYTES, (off_t)h->off) != WRITE_BYTES ||
				    fdatasync(h->fd) != 0) {
					fprintf(stderr, "%s: %s: %s\n", argv[0], h->name, strerror(errno));
					return 1;
				}
				uint64_t dt = now_ns() - t0;
				h->off += WRITE_BYTES;
				h->ns[h->n++] = dt;
				h->ns_total += dt;
			}
		}
	}
done:
	for (uint32_t i = 0; i < SHAPES; i++) {
		struct shape *h = &s[i];
		qsort(h->ns, h->n, sizeof(uint64_t), cmp_u64);
		printf("RESULT shape=%s ops_s=%.0f p50_us=%.0f p99_us=%.0f n=%u\n", h->name,
		       h->n ? h->n / (h->ns_total / 1e9) : 0.0, h->n ? h->ns[h->n / 2] / 1e3 : 0.0,
		       h->n ? h->ns[h->n * 99 / 100] / 1e3 : 0.0, h->n);
		close(h->fd);
		free(h->ns);
	}
	return 0;
}
