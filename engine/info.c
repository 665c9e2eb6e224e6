/* SPDX-License-Identifier: MIT
 *
 * info.c — a shard's INFO text: Redis-like "# Section" headers and
 * "field:value\r\n" lines, bounded by the caller's buffer (never more than
 * PM_INFO_TEXT_BYTES_MAX); when the buffer fills, the text ends at the last
 * whole line. Sections: keyspace, memory, vectors, stats.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "shard.h"

struct text {
	char *buf;
	uint32_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
	if (t->len >= t->cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (uint32_t)n >= t->cap - t->len) {
		t->buf[t->len] = '\0'; /* drop the line that did not fit, and all after it */
		t->len = t->cap;
		return;
	}
	t->len += (uint32_t)n;
}

static void sec_keyspace(struct pm_shard *sh, struct text *t)
{
	put(t, "# Keyspace\r\nkeys:%llu\r\nvectors:%llu\r\nseeds_used:%u\r\nseeds_capacity:%u\r\n",
	    (unsigned long long)sh->stats.keys, (unsigned long long)sh->stats.vectors,
	    sh->arena.seeds_used, sh->arena.seed_capacity);
	put(t, "expired_lazy:%llu\r\nexpired_active:%llu\r\n",
	    (unsigned long long)sh->stats.expired_lazy, (unsigned long long)sh->stats.expired_active);
}

static void sec_memory(struct pm_shard *sh, struct text *t)
{
	struct pm_arena_stats st;
	pm_arena_stats(&sh->arena, &st);
	put(t, "# Memory\r\narena_bytes:%llu\r\narena_hugepages:%d\r\nseed_bytes:%llu\r\n"
	       "static_bytes:%llu\r\nblob_bytes_used:%llu\r\nblob_bytes_requested:%llu\r\n"
	       "blob_bytes_free:%llu\r\nblob_bytes_unused:%llu\r\n",
	    (unsigned long long)st.bytes_total, sh->arena.hugepages,
	    (unsigned long long)st.seed_bytes, (unsigned long long)st.static_bytes,
	    (unsigned long long)st.blob_bytes_used, (unsigned long long)st.blob_bytes_requested,
	    (unsigned long long)st.blob_bytes_free, (unsigned long long)st.blob_bytes_unused);
	put(t, "mem_used:%llu\r\nmaxmemory:%llu\r\nmaxmemory_policy:%s\r\n"
	       "mem_tombstone_bytes:%llu\r\nevicted_keys:%llu\r\nevicted_vectors:%llu\r\n"
	       "evicted_bytes:%llu\r\nevict_refused:%llu\r\nevict_log_refused:%llu\r\n",
	    (unsigned long long)pm_shard_mem_used(sh),
	    (unsigned long long)sh->evict.cfg.maxmemory_bytes,
	    pm_evict_policy_name(sh->evict.cfg.policy), (unsigned long long)sh->tomb_bytes,
	    (unsigned long long)sh->stats.evicted_keys,
	    (unsigned long long)sh->stats.evicted_vectors,
	    (unsigned long long)sh->stats.evicted_bytes, (unsigned long long)sh->stats.evict_refused,
	    (unsigned long long)sh->stats.evict_log_refused);
}

static void sec_vectors(struct pm_shard *sh, struct text *t)
{
	put(t, "# Vectors\r\ncollections:%u\r\ncollections_dropping:%u\r\nknn_queries:%llu\r\n"
	       "knn_graph_queries:%llu\r\nknn_scanned:%llu\r\n",
	    sh->ncolls - sh->ncolls_dropping, sh->ncolls_dropping,
	    (unsigned long long)sh->stats.knn_queries,
	    (unsigned long long)sh->stats.knn_graph, (unsigned long long)sh->stats.knn_scanned);
	put(t, "knn_work_bytes:%llu\r\nknn_scan_restarts:%llu\r\n",
	    (unsigned long long)sh->stats.knn_work, (unsigned long long)sh->stats.knn_restarts);
	for (uint32_t i = 0; i < PM_COLLECTIONS_MAX; i++) {
		const struct pm_collection *c = &sh->colls[i];
		if (!c->live || c->dropping)
			continue;
		put(t, "collection:name=%.*s,default=%d,dim=%u,metric=%u,count=%llu,bytes=%llu",
		    (int)c->name_len, (const char *)c->name, c->is_default, c->params.dim,
		    c->params.metric, (unsigned long long)c->count, (unsigned long long)c->bytes);
		if (c->params.index == PM_INDEX_HNSW)
			put(t, ",index=hnsw,m=%u,ef_search=%u,levels=%d,tombstones=%u,upper_bytes=%llu",
			    c->hnsw.m, c->params.ef_search, c->hnsw.max_level + 1, c->hnsw.tombstones,
			    (unsigned long long)c->hnsw.upper_bytes);
		if (c->params.dtype != PM_DTYPE_F32) /* element types (quant.h) */
			put(t, ",dtype=%u,rerank_k=%u", c->params.dtype,
			    c->params.rerank ? c->params.rerank_k : 0u);
		put(t, "\r\n");
	}
}

static void sec_stats(struct pm_shard *sh, struct text *t)
{
	static const char *const op_names[] = {
		"none", "set", "get", "del", "info", "vadd", "vget", "vdel", "vquery",
		"ccreate", "cdrop", "clist", "snapshot", "map", "vsetattr", "vaddb", "vqueryb",
		"vrange", "auth_hello", "auth_prove",
	};
	_Static_assert(sizeof op_names / sizeof op_names[0] == PM_OP_COUNT, "a name per op");
	put(t, "# Stats\r\nhits:%llu\r\nmisses:%llu\r\n", (unsigned long long)sh->stats.hits,
	    (unsigned long long)sh->stats.misses);
	for (unsigned i = 1; i < PM_OP_COUNT; i++)
		put(t, "ops_%s:%llu\r\n", op_names[i], (unsigned long long)sh->stats.ops[i]);
	uint64_t errors = 0;
	for (unsigned i = 0; i < PM_STATUS_COUNT; i++)
		errors += sh->stats.errors[i];
	put(t, "errors:%llu\r\n", (unsigned long long)errors);
	for (unsigned i = 0; i < PM_STATUS_COUNT; i++) /* by status, those that happened */
		if (sh->stats.errors[i])
			put(t, "errors_%s:%llu\r\n", pm_status_name((enum pm_status)i),
			    (unsigned long long)sh->stats.errors[i]);
}

static bool wants(const char *section, uint32_t len, const char *name)
{
	return len == 0 || (strlen(name) == len && strncasecmp(section, name, len) == 0);
}

uint32_t pm_shard_info(struct pm_shard *sh, const char *section, uint32_t section_len,
		       char *out, uint32_t cap)
{
	struct text t = { .buf = out, .len = 0, .cap = PM_MIN(cap, PM_INFO_TEXT_BYTES_MAX) };
	if (t.cap == 0)
		return 0;
	out[0] = '\0';
	if (!section)
		section_len = 0;
	if (wants(section, section_len, "keyspace"))
		sec_keyspace(sh, &t);
	if (wants(section, section_len, "memory"))
		sec_memory(sh, &t);
	if (wants(section, section_len, "vectors"))
		sec_vectors(sh, &t);
	if (wants(section, section_len, "stats"))
		sec_stats(sh, &t);
	return (uint32_t)strlen(out); /* t.len is cap once a line was dropped */
}
