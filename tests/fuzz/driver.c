/* SPDX-License-Identifier: MIT
 *
 * driver.c — a main() for the fuzz targets when they are not linked with
 * libFuzzer: it runs LLVMFuzzerTestOneInput over every file named on the
 * command line (a directory: every regular file in it, sorted, not
 * recursive), or over standard input when there are no arguments.
 *
 * Two uses (docs/fuzzing.md):
 *  - the gcc and ASan builds run each target over its seed corpus as a
 *    regression test (suite 'fuzz-corpus'): a crash, a sanitizer report or a
 *    failed invariant fails the test;
 *  - AFL++ builds the targets with afl-clang-fast and this driver; built
 *    that way, with no arguments, it runs in AFL's persistent mode, reading
 *    each test case from standard input.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* Largest input read: well above every target's interesting size (a frame is
 * at most 64 KiB, a seed snapshot a few hundred KiB; fuzz_repl's stream holds
 * frames of up to 4 MiB + 64 bytes, PM_REPL_FRAME_BYTES_MAX: room for one
 * whole and the next begun). */
#define DRIVER_INPUT_BYTES_MAX (8u << 20)
/* Test cases one persistent AFL process runs before it is restarted. */
#define DRIVER_AFL_LOOP_COUNT 10000

static uint8_t *input;

/* All of fd up to DRIVER_INPUT_BYTES_MAX; its length, or -1. */
static ssize_t read_all(int fd)
{
	size_t n = 0;
	while (n < DRIVER_INPUT_BYTES_MAX) {
		ssize_t r = read(fd, input + n, DRIVER_INPUT_BYTES_MAX - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	return (ssize_t)n;
}

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	ssize_t n = read_all(fileno(f));
	fclose(f);
	if (n < 0) {
		fprintf(stderr, "%s: read error\n", path);
		return -1;
	}
	/* a copy of exactly n bytes, so ASan sees a read past the input */
	uint8_t *copy = malloc(n ? (size_t)n : 1);
	if (!copy)
		return -1;
	memcpy(copy, input, (size_t)n);
	LLVMFuzzerTestOneInput(copy, (size_t)n);
	free(copy);
	return 0;
}

/* Every regular file of dir, in name order; files run, or -1. */
static int run_dir(const char *dir)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	int ran = 0, rc = 0;
	char path[4096];
	for (int i = 0; i < n; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
		if (rc == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			rc = run_file(path);
			ran++;
		}
		free(list[i]);
	}
	free(list);
	return rc ? -1 : ran;
}

static int run_stdin(void)
{
#ifdef __AFL_HAVE_MANUAL_CONTROL
	while (__AFL_LOOP(DRIVER_AFL_LOOP_COUNT)) {
#endif
		ssize_t n = read_all(0);
		if (n < 0)
			return 1;
		uint8_t *copy = malloc(n ? (size_t)n : 1);
		if (!copy)
			return 1;
		memcpy(copy, input, (size_t)n);
		LLVMFuzzerTestOneInput(copy, (size_t)n);
		free(copy);
#ifdef __AFL_HAVE_MANUAL_CONTROL
	}
#endif
	return 0;
}

int main(int argc, char **argv)
{
	input = malloc(DRIVER_INPUT_BYTES_MAX);
	if (!input)
		return 1;
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	int rc = 0;
	if (argc < 2) {
		rc = run_stdin();
		free(input);
		return rc;
	}
	unsigned files = 0;
	for (int i = 1; i < argc && rc == 0; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			rc = 1;
		} else if (S_ISDIR(st.st_mode)) {
			int n = run_dir(argv[i]);
			rc = n < 0;
			files += n < 0 ? 0 : (unsigned)n;
		} else {
			rc = run_file(argv[i]) != 0;
			files++;
		}
	}
	free(input);
	printf("%u inputs run%s\n", files, rc ? ", then an error" : "");
	/* an empty corpus is a broken test, not a pass */
	return rc || files == 0 ? 1 : 0;
}
