/* SPDX-License-Identifier: MIT
 *
 * fixture.h — helpers shared by the engine suites: a small shard, and request
 * builders so tests read like the operations they exercise.
 */
#ifndef POMAI_TESTS_FIXTURE_H
#define POMAI_TESTS_FIXTURE_H

#include <string.h>

#include "cu_main.h"
#include "hash.h"
#include "shard.h"

static inline void fx_shard(struct pm_shard *sh, uint64_t arena_bytes, uint32_t seeds)
{
	struct pm_shard_config cfg;
	pm_shard_config_default(&cfg);
	cfg.arena_bytes = arena_bytes;
	cfg.seed_capacity = seeds;
	cfg.hugepages = false;
	enum pm_status st = pm_shard_init(sh, &cfg);
	if (st != PM_OK) {
		fprintf(stderr, "pm_shard_init: %s\n", pm_status_name(st));
		abort();
	}
}

static inline struct pm_bytes fx_b(const void *p, size_t n)
{
	return (struct pm_bytes){ .ptr = p, .len = (uint32_t)n };
}

static inline struct pm_bytes fx_s(const char *s)
{
	return fx_b(s, strlen(s));
}

static inline enum pm_status fx_set(struct pm_shard *sh, struct pm_bytes k, struct pm_bytes v,
				    uint64_t ttl, uint64_t now)
{
	struct pm_request r = { .op = PM_OP_SET, .key = k, .value = v, .ttl_ms = ttl,
				.has_ttl = ttl != 0 };
	struct pm_reply rep;
	pm_shard_apply(sh, &r, now, &rep);
	return rep.status;
}

static inline enum pm_status fx_get(struct pm_shard *sh, struct pm_bytes k, uint64_t now,
				    struct pm_bytes *v)
{
	struct pm_request r = { .op = PM_OP_GET, .key = k };
	struct pm_reply rep;
	pm_shard_apply(sh, &r, now, &rep);
	if (v)
		*v = rep.value;
	return rep.status;
}

static inline enum pm_status fx_vadd(struct pm_shard *sh, struct pm_bytes k, const char *coll,
				     const float *vec, uint32_t dim, uint64_t ttl, uint64_t now)
{
	struct pm_request r = { .op = PM_OP_VADD, .key = k, .vec = (const uint8_t *)vec,
				.dim = dim, .ttl_ms = ttl, .has_ttl = ttl != 0,
				.collection = coll ? fx_s(coll) : fx_b(NULL, 0) };
	struct pm_reply rep;
	pm_shard_apply(sh, &r, now, &rep);
	return rep.status;
}

static inline uint64_t fx_blob_used(const struct pm_shard *sh)
{
	struct pm_arena_stats st;
	pm_arena_stats(&sh->arena, &st);
	return st.blob_bytes_used;
}

#endif
