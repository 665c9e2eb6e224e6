/* SPDX-License-Identifier: MIT
 *
 * knn_flood_main.c — pomai-knn-flood: the expensive-KNN flood scenario
 * (knn_flood.h) from the command line, for perf/knn_flood.sh:
 *
 *   pomai-knn-flood --pomaid PATH [--shards 2] [--vectors 1000000] [--dim 16]
 *       [--k 1024] [--ef 0] [--flood-qps 200] [--polite-rps 500] [--seconds 5]
 *       [--lost-ms 1000] [-- more pomaid flags]
 *
 * --ef N: an HNSW collection, queried at ef N (0, the default: a flat one).
 *
 * Prints the result; exits 0 when the scenario ran, 1 when it could not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "knn_flood.h"

static void usage(void)
{
	fprintf(stderr, "usage: pomai-knn-flood --pomaid PATH [--shards N] [--vectors N] [--dim N]"
			" [--k N] [--ef N] [--flood-qps N] [--polite-rps N] [--seconds N] [--lost-ms N]"
			" [-- pomaid flags]\n");
	exit(1);
}

int main(int argc, char **argv)
{
	struct flood_cfg cfg = { .shards = 2, .vectors = 1000000, .dim = 16, .k = 1024,
				 .flood_qps = 200, .polite_rps = 500, .seconds = 5,
				 .lost_ms = 1000 };
	struct { const char *name; uint32_t *v; } nums[] = {
		{ "--shards", &cfg.shards },         { "--vectors", &cfg.vectors },
		{ "--dim", &cfg.dim },               { "--k", &cfg.k },
		{ "--ef", &cfg.ef },
		{ "--flood-qps", &cfg.flood_qps },   { "--polite-rps", &cfg.polite_rps },
		{ "--seconds", &cfg.seconds },       { "--lost-ms", &cfg.lost_ms },
	};
	int i = 1;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			cfg.flags = (const char *const *)&argv[i + 1];
			break;
		}
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--pomaid")) {
			cfg.pomaid = argv[++i];
			continue;
		}
		size_t j = 0;
		while (j < sizeof(nums) / sizeof(nums[0]) && strcmp(argv[i], nums[j].name))
			j++;
		if (j == sizeof(nums) / sizeof(nums[0]))
			usage();
		*nums[j].v = (uint32_t)strtoul(argv[++i], NULL, 10);
	}
	if (!cfg.pomaid || !cfg.shards)
		usage();
	struct flood_result res;
	if (flood_run(&cfg, &res) != 0)
		return 1;
	flood_print(&cfg, &res);
	return 0;
}
