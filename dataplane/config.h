/* SPDX-License-Identifier: MIT
 *
 * config.h — pomaid's configuration: one table of keys, read from a file
 * (`key = value` lines, `#` comments) and overridden by `--key value` flags
 * (dashes for underscores). Every key has a default, a unit and bounds; a bad
 * value stops start-up with a message naming the key, the value and the rule.
 * config/pomai.conf documents every key.
 */
#ifndef POMAI_DATAPLANE_CONFIG_H
#define POMAI_DATAPLANE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Shards a daemon can run: each has its own core, rings to every other shard
 * (shards^2 rings of PM_RING_BYTES) and a UDP port. */
#define PM_SHARDS_MAX 32u
/* Shards the embedded default starts at most (shards = min(cores, this)). */
#define PM_SHARDS_DEFAULT_MAX 4u
#define PM_CONFIG_STRING_BYTES 256u
#define PM_CONFIG_LINE_BYTES 1024u
#define PM_CONFIG_ERR_BYTES 512u

enum pm_polling {
	PM_POLL_ADAPTIVE = 0, /* spin while busy, then pause, yield, and sleep in poll() */
	PM_POLL_BUSY = 1,     /* never sleep: for dedicated cores */
};

struct pm_config {
	char bind[PM_CONFIG_STRING_BYTES];     /* IPv4 address to listen on */
	uint32_t base_port;                    /* UDP port of shard 0; shard i: base + i */
	uint32_t tcp_port;                     /* stream port; 0 = no TCP */
	uint32_t shards;                       /* 0 = min(cores, PM_SHARDS_DEFAULT_MAX) */
	char cores[PM_CONFIG_STRING_BYTES];    /* "auto" or a list of CPU numbers "2,3,4" */
	uint32_t polling;                      /* enum pm_polling */
	uint32_t idle_sleep_us;                /* longest sleep of an idle adaptive worker */
	uint64_t arena_bytes;                  /* per shard */
	uint32_t seeds;                        /* keys + vectors per shard */
	bool hugepages;
	char data_dir[PM_CONFIG_STRING_BYTES];
	uint32_t knn_timeout_ms;               /* fan-out deadline */
	uint32_t maintain_nodes;               /* HNSW sweep slice per idle turn */
};

void pm_config_defaults(struct pm_config *c);
/* Read a config file; 0 or -1 with a message in err. */
int pm_config_load(struct pm_config *c, const char *path, char *err, size_t errlen);
/* Set one key from text ("arena_bytes", "512M"); 0 or -1 with a message. */
int pm_config_set(struct pm_config *c, const char *key, const char *value, char *err,
		  size_t errlen);
/* Print every key as `key = value`, with its unit and meaning as a comment. */
void pm_config_print(const struct pm_config *c, FILE *f);
/* Print the flags (--key value) with their defaults, for --help. */
void pm_config_usage(FILE *f);

#endif
