/* SPDX-License-Identifier: MIT
 *
 * test_snapshot.c — the snapshot format (engine/snapshot.h):
 *  - a quiet shard (KV of every layout, TTLs, flat vectors in default and
 *    named collections, an HNSW collection with pending tombstones) written in
 *    small slices loads back with the same content, the same HNSW node ids and
 *    link lists, a valid graph and the same KNN answers;
 *  - a fuzzy snapshot (random SET / DEL / VADD / VDEL / TTL expiry and a
 *    collection drop + re-create between the slices) loaded and followed by
 *    replaying the log written after its start LSN ends exactly in the live
 *    shard's state, with a valid graph, for several seeds;
 *  - every flipped byte and every truncation is refused by pm_snap_check, a
 *    shard too small for the snapshot fails with E_NOMEM and a message;
 *  - an image whose nodes all lost their top level loads (it is well formed)
 *    and the validator refuses its level counts; an id bound above what the
 *    level RNG drew is refused by the loader.
 */
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "fixture.h"
#include "hnsw.h"
#include "kv.h"
#include "snapshot.h"
#include "vector.h"
#include "wal.h"

#define ARENA_BYTES (64ull << 20)
#define SEEDS 8192u
#define HDIM 8u        /* HNSW collection "h" */
#define FDIM 5u        /* flat named collection "f" */
#define DDIM 3u        /* default collection */
#define IMAGE_BYTES (32u << 20)
#define NOW0 1000000000ull
#define LOG_BYTES (8u << 20)

static uint64_t rng = 0x51A95107ull;
static uint8_t *image;
static size_t image_len;
static struct pm_snap_loader loader; /* pm_snap_load's working state */

static uint32_t rnd(uint32_t n)
{
	return (uint32_t)(pm_test_rand(&rng) % n);
}

static void rvec(float *v, uint32_t dim)
{
	for (uint32_t i = 0; i < dim; i++)
		v[i] = (float)rnd(2000) / 100.0f - 10.0f;
}

static void ccreate(struct pm_shard *sh, const char *name, uint32_t dim, uint8_t index)
{
	struct pm_request r = { .op = PM_OP_CCREATE, .collection = fx_s(name),
				.params = { .dim = dim, .index = index, .hnsw_m = 4,
					    .ef_construction = 32,
					    .flags = name[0] == 'h' ? PM_COLL_EVICTABLE : 0 } };
	struct pm_reply rep;
	pm_shard_apply(sh, &r, NOW0, &rep);
	CU_ASSERT_EQUAL_FATAL(rep.status, PM_OK);
}

/* Fills that wrote nothing before the writer was done (a slice of free
 * slots or HNSW vectors): they must not end the snapshot. */
static unsigned empty_fills;

/* The whole snapshot of sh in slices of at most `items` seeds / nodes, with
 * between(sh, i) called before every slice — the first too: pomaid's first
 * fill comes turns after the start (the file is made first), and the shard
 * changes meanwhile. */
static void snapshot(struct pm_shard *sh, uint64_t lsn, uint32_t items,
		     void (*between)(struct pm_shard *, uint32_t))
{
	static struct pm_snap_writer w;
	pm_snap_writer_init(&w, sh, 3, lsn, NOW0);
	CU_ASSERT_EQUAL(pm_snap_progress(&w), 0);
	image_len = 0;
	for (uint32_t i = 0;; i++) {
		if (between)
			between(sh, i);
		CU_ASSERT_FATAL(image_len + PM_SNAP_FILL_BYTES_MIN <= IMAGE_BYTES);
		unsigned pct = pm_snap_progress(&w);
		size_t n = pm_snap_fill(&w, sh, NOW0, image + image_len, PM_SNAP_FILL_BYTES_MIN, items);
		CU_ASSERT(pm_snap_progress(&w) >= pct && pm_snap_progress(&w) <= 100);
		if (n == 0 && pm_snap_done(&w))
			break;
		empty_fills += n == 0;
		image_len += n;
	}
	CU_ASSERT_EQUAL(pm_snap_progress(&w), 100);
}

/* ---------------------------------------------------------------- comparing */

static const struct pm_seed *seed_of(struct pm_shard *sh, const uint8_t *key, uint32_t klen)
{
	uint32_t idx = pm_seedmap_find(&sh->map, &sh->arena, key, klen, pm_hash(key, klen));
	return idx == PM_SEED_NONE ? NULL : pm_seed_at(&sh->arena, idx);
}

/* Every live key of a has the same kind, bytes, collection and expiry in b,
 * and b has no other keys. */
/* Finish every drop still being freed in slices (its vectors are gone for
 * requests already, but their seeds are there until then). */
static void finish_drops(struct pm_shard *sh)
{
	for (uint32_t i = 0; i < PM_COLLECTIONS_MAX; i++)
		if (sh->colls[i].live && sh->colls[i].dropping)
			(void)pm_coll_drop_slice(sh, &sh->colls[i], UINT32_MAX);
}

static void expect_same(struct pm_shard *a, struct pm_shard *b, uint64_t now)
{
	finish_drops(a);
	finish_drops(b);
	(void)pm_shard_expire(a, now, PM_EXPIRE_SCAN_SEEDS_MAX);
	(void)pm_shard_expire(b, now, PM_EXPIRE_SCAN_SEEDS_MAX);
	uint64_t live = 0;
	for (uint32_t i = 0; i < a->arena.seed_high; i++) {
		const struct pm_seed *s = pm_seed_at(&a->arena, i);
		uint64_t at = pm_seed_expiry(s);
		if (s->kind == PM_SEED_FREE || (at && at <= now))
			continue;
		live++;
		const uint8_t *key = pm_seed_key(&a->arena, s);
		const struct pm_seed *t = seed_of(b, key, s->klen);
		CU_ASSERT_PTR_NOT_NULL_FATAL(t);
		CU_ASSERT_EQUAL(t->kind, s->kind);
		CU_ASSERT_EQUAL(pm_seed_expiry(t), at);
		if (s->kind == PM_SEED_KV) {
			struct pm_bytes x = pm_kv_value(&a->arena, s), y = pm_kv_value(&b->arena, t);
			CU_ASSERT_EQUAL_FATAL(x.len, y.len);
			CU_ASSERT(x.len == 0 || !memcmp(x.ptr, y.ptr, x.len));
			continue;
		}
		const struct pm_vec_header *x = pm_at(&a->arena, pm_seed_blob(s));
		const struct pm_vec_header *y = pm_at(&b->arena, pm_seed_blob(t));
		CU_ASSERT_EQUAL_FATAL(x->dim, y->dim);
		CU_ASSERT(!memcmp(pm_vec_data(x), pm_vec_data(y), x->payload_len));
		const struct pm_collection *ca = &a->colls[s->coll], *cb = &b->colls[t->coll];
		CU_ASSERT_EQUAL(ca->is_default, cb->is_default);
		CU_ASSERT(ca->name_len == cb->name_len && !memcmp(ca->name, cb->name, ca->name_len));
		CU_ASSERT(!memcmp(&ca->params, &cb->params, sizeof(ca->params))); /* flags too */
		const uint8_t *ra = pm_vec_attr(a, x), *rb = pm_vec_attr(b, y);
		CU_ASSERT_EQUAL(!ra, !rb);
		if (ra && rb) {
			CU_ASSERT_EQUAL(pm_attr_len(ra), pm_attr_len(rb));
			CU_ASSERT(!memcmp(ra, rb, pm_attr_len(ra)));
		}
	}
	CU_ASSERT_EQUAL(live, b->stats.keys + b->stats.vectors);
}

static struct pm_collection *coll(struct pm_shard *sh, const char *name)
{
	return pm_coll_find(sh, (const uint8_t *)name, (uint32_t)strlen(name));
}

static enum pm_status validate(struct pm_shard *sh, const char *name, struct pm_hnsw_report *rep)
{
	struct pm_collection *c = coll(sh, name);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	uint32_t *scratch = malloc(((size_t)c->hnsw.high + 1) * sizeof(uint32_t));
	enum pm_status st = pm_hnsw_validate(sh, c, scratch, rep);
	free(scratch);
	return st;
}

static struct pm_hnsw_report expect_valid(struct pm_shard *sh, const char *name)
{
	struct pm_hnsw_report rep;
	enum pm_status st = validate(sh, name, &rep);
	if (st != PM_OK)
		fprintf(stderr, "%s: %s\n", name, rep.why);
	CU_ASSERT_EQUAL(st, PM_OK);
	return rep;
}

/* Same node ids per key, same link lists, same entry point and RNG. */
static void expect_same_graph(struct pm_shard *a, struct pm_shard *b, const char *name)
{
	struct pm_collection *ca = coll(a, name), *cb = coll(b, name);
	CU_ASSERT_EQUAL_FATAL(ca->hnsw.high, cb->hnsw.high);
	CU_ASSERT_EQUAL(ca->hnsw.entry, cb->hnsw.entry);
	CU_ASSERT_EQUAL(ca->hnsw.max_level, cb->hnsw.max_level);
	CU_ASSERT_EQUAL(ca->hnsw.rng, cb->hnsw.rng);
	CU_ASSERT_EQUAL(ca->hnsw.live, cb->hnsw.live);
	CU_ASSERT_EQUAL(ca->hnsw.tombstones, cb->hnsw.tombstones);
	static uint8_t la[1u << 16], lb[1u << 16];
	for (uint32_t id = 0; id < ca->hnsw.high; id++) {
		const struct pm_hnsw_node *x = pm_hnsw_node_get(a, ca, id), *y = pm_hnsw_node_get(b, cb, id);
		CU_ASSERT_EQUAL_FATAL(x == NULL, y == NULL);
		if (!x)
			continue;
		CU_ASSERT_EQUAL(x->level, y->level);
		CU_ASSERT_EQUAL(x->flags & PM_HNSW_TOMBSTONE, y->flags & PM_HNSW_TOMBSTONE);
		CU_ASSERT_EQUAL(x->indeg, y->indeg);
		size_t na = pm_hnsw_links_save(a, ca, id, la, sizeof(la));
		size_t nb = pm_hnsw_links_save(b, cb, id, lb, sizeof(lb));
		CU_ASSERT(na == nb && !memcmp(la, lb, na));
	}
}

static void expect_same_knn(struct pm_shard *a, struct pm_shard *b)
{
	for (int q = 0; q < 20; q++) {
		float v[HDIM];
		rvec(v, HDIM);
		struct pm_request r = { .op = PM_OP_VQUERY, .vec = (const uint8_t *)v, .dim = HDIM,
					.k = 10, .ef = 16, .collection = fx_s("h") };
		struct pm_reply x, y;
		pm_shard_apply(a, &r, NOW0, &x);
		struct pm_knn_hit hx[10];
		uint32_t nx = x.nhits;
		memcpy(hx, x.hits, nx * sizeof(hx[0]));
		pm_shard_apply(b, &r, NOW0, &y);
		CU_ASSERT_EQUAL_FATAL(x.status, PM_OK);
		CU_ASSERT_EQUAL_FATAL(nx, y.nhits);
		for (uint32_t i = 0; i < nx; i++)
			CU_ASSERT_EQUAL(hx[i].dist, y.hits[i].dist);
	}
}

/* ---------------------------------------------------------------- a quiet shard */

/* An attribute record that varies with i (i % 5 == 4: none). */
static struct pm_bytes attr_of(uint32_t i, uint8_t *buf)
{
	if (i % 5 == 4)
		return fx_b(NULL, 0);
	struct pm_attr_builder b;
	char tag[16];
	int n = snprintf(tag, sizeof tag, "t%u", i % 7);
	pm_attr_build_begin(&b, buf, PM_ATTR_BYTES_MAX);
	pm_attr_build_tag(&b, "tag", (const uint8_t *)tag, (uint32_t)n);
	if (i % 2)
		pm_attr_build_num(&b, "price", i * 0.5);
	return fx_b(buf, pm_attr_build_end(&b));
}

static void vadd_attr(struct pm_shard *sh, struct pm_bytes key, const char *coll, const float *v,
		      uint32_t dim, uint32_t i)
{
	uint8_t buf[PM_ATTR_BYTES_MAX];
	struct pm_request r = { .op = PM_OP_VADD, .key = key, .vec = (const uint8_t *)v, .dim = dim,
				.collection = coll ? fx_s(coll) : fx_b(NULL, 0),
				.attr = attr_of(i, buf) };
	r.has_attr = r.attr.len != 0;
	struct pm_reply rep;
	pm_shard_apply(sh, &r, NOW0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
}

static void fill_shard(struct pm_shard *sh)
{
	ccreate(sh, "h", HDIM, PM_INDEX_HNSW);
	ccreate(sh, "f", FDIM, PM_INDEX_FLAT);
	ccreate(sh, "empty", 16, PM_INDEX_HNSW);
	static uint8_t val[3000];
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (uint8_t)(i * 7);
	char k[80];
	for (int i = 0; i < 1500; i++) {
		int kl = snprintf(k, sizeof(k), i % 7 ? "key:%d" : "a-much-longer-key-that-lives-in-the-blob:%d", i);
		uint32_t vl = (uint32_t)rnd(4) == 0 ? 0 : (uint32_t)rnd(i % 3 ? 40 : 3000);
		CU_ASSERT_EQUAL(fx_set(sh, fx_b(k, (size_t)kl), fx_b(val, vl), i % 5 ? 0 : 100000, NOW0),
				PM_OK);
		float v[HDIM];
		rvec(v, HDIM);
		kl = snprintf(k, sizeof(k), i % 11 ? "h:%d" : "h-with-a-key-longer-than-forty-bytes-----:%d", i);
		CU_ASSERT_EQUAL(fx_vadd(sh, fx_b(k, (size_t)kl), "h", v, HDIM, i % 9 ? 0 : 50000, NOW0), PM_OK);
		kl = snprintf(k, sizeof(k), "f:%d", i);
		CU_ASSERT_EQUAL(fx_vadd(sh, fx_b(k, (size_t)kl), i % 2 ? "f" : NULL, v,
					i % 2 ? FDIM : DDIM, 0, NOW0), PM_OK);
	}
	for (int i = 0; i < 1500; i += 13) { /* tombstones, pending (no maintenance) */
		int kl = snprintf(k, sizeof(k), i % 11 ? "h:%d" : "h-with-a-key-longer-than-forty-bytes-----:%d", i);
		struct pm_request r = { .op = PM_OP_VDEL, .key = fx_b(k, (size_t)kl) };
		struct pm_reply rep;
		pm_shard_apply(sh, &r, NOW0, &rep);
		CU_ASSERT_EQUAL(rep.status, PM_OK);
	}
	CU_ASSERT(coll(sh, "h")->hnsw.tombstones > 0);
	for (int i = 0; i < 400; i++) { /* a run of seed slots that hold only HNSW vectors */
		float v[HDIM];
		rvec(v, HDIM);
		int kl = snprintf(k, sizeof(k), "run:%d", i);
		CU_ASSERT_EQUAL(fx_vadd(sh, fx_b(k, (size_t)kl), "h", v, HDIM, 0, NOW0), PM_OK);
	}
	for (int i = 0; i < 300; i++) { /* vectors with attribute records, both kinds */
		float v[HDIM];
		rvec(v, HDIM);
		int kl = snprintf(k, sizeof(k), "attr:%d", i);
		vadd_attr(sh, fx_b(k, (size_t)kl), i % 2 ? "h" : "f", v, i % 2 ? HDIM : FDIM, (uint32_t)i);
	}
}

static void test_quiet_round_trip(void)
{
	struct pm_shard a, b;
	fx_shard(&a, ARENA_BYTES, SEEDS);
	fx_shard(&b, ARENA_BYTES, SEEDS);
	fill_shard(&a);
	snapshot(&a, 4242, 97, NULL);
	struct pm_snap_info info;
	char why[200] = "";
	CU_ASSERT_EQUAL_FATAL(pm_snap_check(image, image_len, &info, why, sizeof(why)), PM_OK);
	CU_ASSERT_EQUAL(info.start_lsn, 4242);
	CU_ASSERT_EQUAL(info.shard, 3);
	CU_ASSERT_EQUAL(info.colls, 4); /* h, f, empty, the default of dimension 3 */
	CU_ASSERT_EQUAL(info.nodes, coll(&a, "h")->hnsw.live + coll(&a, "h")->hnsw.tombstones);
	CU_ASSERT(info.sections > 10); /* sliced */
	/* slices of 97 slots holding only HNSW vectors wrote nothing: the writer went on */
	CU_ASSERT(empty_fills > 0);
	CU_ASSERT_EQUAL_FATAL(pm_snap_load(&loader, &b, image, image_len, NOW0, &info, why, sizeof(why)), PM_OK);
	CU_ASSERT_EQUAL(info.skipped, 0);
	CU_ASSERT_EQUAL(info.links_dropped, 0);
	expect_same(&a, &b, NOW0);
	expect_same_graph(&a, &b, "h");
	struct pm_hnsw_report ra = expect_valid(&a, "h"), rb = expect_valid(&b, "h");
	CU_ASSERT_EQUAL(rb.draws, 1900 + 150); /* 1,500 + 400 + 150 (attr:) inserts, none freed */
	CU_ASSERT_EQUAL(rb.draws, ra.draws);
	CU_ASSERT_EQUAL(rb.upper_unreachable, ra.upper_unreachable);
	expect_valid(&b, "empty");
	expect_same_knn(&a, &b);
	/* the restored index goes on like the original: sweep, insert, validate */
	for (bool more_a = true, more_b = true; more_a || more_b;) { /* both, every turn */
		more_a = pm_shard_maintain(&a, NOW0, 0);
		more_b = pm_shard_maintain(&b, NOW0, 0);
	}
	expect_same_graph(&a, &b, "h");
	float v[HDIM] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	CU_ASSERT_EQUAL(fx_vadd(&a, fx_s("new"), "h", v, HDIM, 0, NOW0), PM_OK);
	CU_ASSERT_EQUAL(fx_vadd(&b, fx_s("new"), "h", v, HDIM, 0, NOW0), PM_OK);
	expect_same_graph(&a, &b, "h");
	expect_valid(&b, "h");
	/* loaded later (last: it expires keys of a): the keys whose TTL ran out stay out */
	struct pm_shard c;
	fx_shard(&c, ARENA_BYTES, SEEDS);
	CU_ASSERT_EQUAL(pm_snap_load(&loader, &c, image, image_len, NOW0 + 60000, &info, why, sizeof(why)), PM_OK);
	CU_ASSERT(info.skipped > 0);
	struct pm_request del = { .op = PM_OP_VDEL, .key = fx_s("new") };
	struct pm_reply rep;
	pm_shard_apply(&a, &del, NOW0, &rep);
	CU_ASSERT_EQUAL(rep.status, PM_OK);
	expect_same(&a, &c, NOW0 + 60000);
	expect_valid(&c, "h");
	pm_shard_destroy(&a);
	pm_shard_destroy(&b);
	pm_shard_destroy(&c);
}

/* Recompute every section's CRC (after a deliberate change). */
static void resign(uint8_t *img, size_t len)
{
	for (size_t off = PM_SNAP_HEADER_BYTES; off + PM_SNAP_SECTION_HEADER_BYTES <= len;) {
		uint32_t plen;
		memcpy(&plen, img + off + 4, 4);
		if (plen > len - off - PM_SNAP_SECTION_HEADER_BYTES)
			return;
		uint32_t crc = pm_crc32c(pm_crc32c(0, img + off, 12),
					 img + off + PM_SNAP_SECTION_HEADER_BYTES, plen);
		memcpy(img + off + 12, &crc, 4);
		off += PM_SNAP_SECTION_HEADER_BYTES + plen;
	}
}

/* ---------------------------------------------------------------- levels */

static uint32_t ld32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint16_t ld16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

/* Bytes of a COLLS record's body after its name (snapshot.h), and where in
 * it the id bound and the RNG are. */
#define COLL_BODY_BYTES 39u
#define COLL_HIGH_OFF 16u
#define COLL_RNG_OFF 24u
/* Bytes of a NODES record before its key (snapshot.h), and after an f32
 * vector's payload (its norm and scale). */
#define NODE_FIXED_BYTES 19u
#define VEC_META_BYTES 8u

/* The body of collection `name`'s COLLS record in an image, or NULL; the
 * dimension of every slot into dim[] (when dim is not NULL). */
static uint8_t *coll_body(uint8_t *img, size_t len, const char *name, uint32_t *dim)
{
	uint8_t *found = NULL;
	for (size_t off = PM_SNAP_HEADER_BYTES; off + PM_SNAP_SECTION_HEADER_BYTES <= len;) {
		uint32_t type = ld32(img + off), plen = ld32(img + off + 4), n = ld32(img + off + 8);
		uint8_t *p = img + off + PM_SNAP_SECTION_HEADER_BYTES;
		for (uint32_t r = 0; type == PM_SNAP_SEC_COLLS && r < n; r++) {
			uint32_t slot = ld16(p), nlen = p[3];
			if (nlen == strlen(name) && !memcmp(p + 4, name, nlen))
				found = p + 4 + nlen;
			if (dim)
				dim[slot] = ld32(p + 4 + nlen);
			p += 4 + nlen + COLL_BODY_BYTES;
		}
		off += PM_SNAP_SECTION_HEADER_BYTES + plen;
	}
	return found;
}

/* Copy one NODES record from *in to *out one level lower, without the link
 * list of its top level (a level-0 node is copied as it is). */
static void node_lower(const uint8_t **in, uint8_t **out, const uint32_t *dim)
{
	const uint8_t *p = *in;
	unsigned level = p[2], lower = level ? level - 1 : 0;
	size_t head = NODE_FIXED_BYTES + ld16(p + 5) + 4u * dim[ld16(p + 3)] + VEC_META_BYTES;
	head += 2u + ld16(p + head); /* the attribute record */
	memcpy(*out, p, head);
	(*out)[2] = (uint8_t)lower;
	*out += head;
	p += head;
	for (unsigned lev = 0; lev <= level; lev++) {
		size_t bytes = 4u * (1u + ld32(p));
		if (lev <= lower) {
			memcpy(*out, p, bytes);
			*out += bytes;
		}
		p += bytes;
	}
	*in = p;
}

/* The image a writer that dropped every node's top level would have written:
 * NODES records rewritten by node_lower, sections resized and re-signed.
 * Returns its length. */
static size_t drop_top_levels(uint8_t *in, size_t len, uint8_t *out)
{
	uint32_t dim[PM_COLLECTIONS_MAX] = { 0 };
	(void)coll_body(in, len, "", dim);
	memcpy(out, in, PM_SNAP_HEADER_BYTES);
	uint8_t *o = out + PM_SNAP_HEADER_BYTES;
	for (size_t off = PM_SNAP_HEADER_BYTES; off < len;) {
		uint32_t type = ld32(in + off), plen = ld32(in + off + 4), n = ld32(in + off + 8);
		const uint8_t *p = in + off + PM_SNAP_SECTION_HEADER_BYTES;
		uint8_t *h = o;
		memcpy(h, in + off, PM_SNAP_SECTION_HEADER_BYTES);
		o += PM_SNAP_SECTION_HEADER_BYTES;
		if (type == PM_SNAP_SEC_NODES) {
			for (uint32_t r = 0; r < n; r++)
				node_lower(&p, &o, dim);
		} else {
			memcpy(o, p, plen);
			o += plen;
		}
		uint32_t nlen = (uint32_t)(o - h - PM_SNAP_SECTION_HEADER_BYTES);
		memcpy(h + 4, &nlen, 4);
		off += PM_SNAP_SECTION_HEADER_BYTES + plen;
	}
	resign(out, (size_t)(o - out));
	return (size_t)(o - out);
}

/* A snapshot whose nodes all lost their top level is well formed -- the
 * loader drops the links to levels that are gone, and every structural rule
 * holds -- but its level counts are not what the level RNG drew: the
 * validator refuses it. An id bound above the RNG's draws is refused by the
 * loader. */
static void test_lost_levels_caught(void)
{
	struct pm_shard a, b, c, d;
	fx_shard(&a, ARENA_BYTES, SEEDS);
	fill_shard(&a);
	snapshot(&a, 1, 500, NULL);
	uint8_t *img = malloc(image_len);
	size_t len = drop_top_levels(image, image_len, img);
	CU_ASSERT(len < image_len);
	struct pm_snap_info info;
	char why[200] = "";
	fx_shard(&b, ARENA_BYTES, SEEDS);
	CU_ASSERT_EQUAL_FATAL(pm_snap_load(&loader, &b, img, len, NOW0, &info, why, sizeof(why)), PM_OK);
	CU_ASSERT(info.links_dropped > 0);
	CU_ASSERT_EQUAL(coll(&b, "h")->hnsw.max_level + 1, coll(&a, "h")->hnsw.max_level);
	struct pm_hnsw_report rep;
	CU_ASSERT_EQUAL(validate(&b, "h", &rep), PM_E_INTERNAL);
	printf("\n  top levels dropped: %s", rep.why);
	CU_ASSERT(rep.levels_implausible);
	CU_ASSERT_EQUAL(rep.unreachable, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(rep.why, "at level >= 1"));
	/* the image as written loads and validates */
	fx_shard(&c, ARENA_BYTES, SEEDS);
	CU_ASSERT_EQUAL(pm_snap_load(&loader, &c, image, image_len, NOW0, &info, why, sizeof(why)), PM_OK);
	CU_ASSERT_FALSE(expect_valid(&c, "h").levels_implausible);
	/* more ids than levels drawn: no saved graph has that */
	uint8_t *body = coll_body(image, image_len, "h", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	uint64_t state;
	memcpy(&state, body + COLL_RNG_OFF, 8);
	uint64_t draws = pm_hnsw_level_draws(state, HDIM);
	CU_ASSERT_EQUAL(draws, 1900 + 150);
	CU_ASSERT_EQUAL(ld32(body + COLL_HIGH_OFF), draws);
	uint32_t high = (uint32_t)draws + 1;
	memcpy(body + COLL_HIGH_OFF, &high, 4);
	resign(image, image_len);
	fx_shard(&d, ARENA_BYTES, SEEDS);
	CU_ASSERT_EQUAL(pm_snap_load(&loader, &d, image, image_len, NOW0, &info, why, sizeof(why)), PM_E_PARAM);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "level RNG"));
	free(img);
	pm_shard_destroy(&a);
	pm_shard_destroy(&b);
	pm_shard_destroy(&c);
	pm_shard_destroy(&d);
}

/* ---------------------------------------------------------------- a fuzzy snapshot */

static uint8_t *logbuf;
static size_t log_len;
static uint64_t log_lsn, fuzz_now;

/* Apply req to sh as the dataplane does, logging it when it changed the shard. */
static void apply_logged(struct pm_shard *sh, const struct pm_request *req)
{
	struct pm_reply rep;
	pm_shard_apply(sh, req, fuzz_now, &rep);
	if (rep.status != PM_OK || !pm_wal_logs(req->op))
		return;
	if ((req->op == PM_OP_DEL || req->op == PM_OP_VDEL || req->op == PM_OP_CDROP) && !rep.removed)
		return;
	size_t n = pm_wal_encode(req, fuzz_now, ++log_lsn, logbuf + log_len, LOG_BYTES - log_len);
	CU_ASSERT_FATAL(n > 0);
	log_len += n;
}

static void random_op(struct pm_shard *sh)
{
	char k[64];
	uint32_t i = rnd(400);
	int kl = snprintf(k, sizeof(k), i % 9 ? "k%u" : "a-key-that-is-longer-than-forty-bytes-%u", i);
	float v[HDIM];
	rvec(v, HDIM);
	uint8_t val[100];
	memset(val, (int)rnd(256), sizeof(val));
	struct pm_request r = { .key = fx_b(k, (size_t)kl) };
	static uint8_t abuf[PM_ATTR_BYTES_MAX];
	uint32_t what = rnd(1000);
	if (what < 300) {
		r.op = PM_OP_SET, r.value = fx_b(val, rnd(sizeof(val)));
		r.has_ttl = rnd(4) == 0, r.ttl_ms = r.has_ttl ? 1 + rnd(300) : 0;
	} else if (what < 400) {
		r.op = PM_OP_DEL;
	} else if (what < 800) {
		static const char *colls[] = { "h", "f", NULL };
		static const uint32_t dims[] = { HDIM, FDIM, DDIM };
		uint32_t c = rnd(3);
		r.op = PM_OP_VADD, r.vec = (const uint8_t *)v, r.dim = dims[c];
		r.collection = colls[c] ? fx_s(colls[c]) : fx_b(NULL, 0);
		r.has_ttl = rnd(8) == 0, r.ttl_ms = r.has_ttl ? 1 + rnd(300) : 0;
		r.attr = attr_of(rnd(10), abuf);
		r.has_attr = r.attr.len != 0;
	} else if (what < 860) {
		r.op = PM_OP_VSETATTR; /* the empty record (one byte 0) at times */
		r.attr = attr_of(rnd(10), abuf);
		if (r.attr.len == 0)
			r.attr = fx_b("", 1);
	} else if (what < 997) {
		r.op = PM_OP_VDEL;
	} else {
		r = (struct pm_request){ .op = PM_OP_CDROP, .collection = fx_s(rnd(2) ? "h" : "f") };
		apply_logged(sh, &r);
		r.op = PM_OP_CCREATE;
		r.params = (struct pm_collection_params){ .dim = r.collection.ptr[0] == 'h' ? HDIM : FDIM,
							  .index = r.collection.ptr[0] == 'h',
							  .hnsw_m = 4, .ef_construction = 32,
							  .flags = r.collection.ptr[0] == 'h' ? PM_COLL_EVICTABLE : 0 };
	}
	apply_logged(sh, &r);
	fuzz_now++;
}

static void between_slices(struct pm_shard *sh, uint32_t slice)
{
	(void)slice;
	for (uint32_t n = rnd(40); n; n--)
		random_op(sh);
	if (rnd(4) == 0)
		(void)pm_shard_maintain(sh, fuzz_now, 64);
}

/* Before the first fill: "h" dropped (its slot freed) and made again with
 * another dimension, vectors added to it; then as between_slices. */
static void drop_before_first_fill(struct pm_shard *sh, uint32_t slice)
{
	if (slice == 0) {
		struct pm_request r = { .op = PM_OP_CDROP, .collection = fx_s("h") };
		apply_logged(sh, &r);
		finish_drops(sh);
		r = (struct pm_request){ .op = PM_OP_CCREATE, .collection = fx_s("h"),
					 .params = { .dim = FDIM, .index = PM_INDEX_HNSW, .hnsw_m = 4,
						     .ef_construction = 32 } };
		apply_logged(sh, &r);
		for (uint32_t i = 0; i < 50; i++) {
			float v[FDIM];
			char k[16];
			rvec(v, FDIM);
			int kl = snprintf(k, sizeof(k), "re%u", i);
			r = (struct pm_request){ .op = PM_OP_VADD, .key = fx_b(k, (size_t)kl),
						 .collection = fx_s("h"), .vec = (const uint8_t *)v,
						 .dim = FDIM };
			apply_logged(sh, &r);
		}
	}
	between_slices(sh, slice);
}

/* Replay the log (as recovery does: expired SET / VADD become deletes). */
static void replay(struct pm_shard *sh, uint64_t now)
{
	size_t off = 0;
	uint64_t want = 0;
	struct pm_wal_record rec;
	size_t used;
	while (off < log_len &&
	       pm_wal_scan_next(logbuf + off, log_len - off, want, &rec, &used) == PM_WAL_RECORD) {
		struct pm_request req;
		struct pm_reply rep;
		bool expired = false;
		pm_wal_to_request(&rec, now, &req, &expired);
		if (expired) {
			req.op = rec.type == PM_WAL_SET ? PM_OP_DEL : PM_OP_VDEL;
			req.has_ttl = false;
		}
		pm_shard_apply(sh, &req, now, &rep);
		want = rec.lsn + 1;
		off += used;
	}
	CU_ASSERT_EQUAL(off, log_len);
}

static void fuzzy_round(uint64_t seed, void (*between)(struct pm_shard *, uint32_t))
{
	rng = seed;
	struct pm_shard a, b;
	fx_shard(&a, ARENA_BYTES, SEEDS);
	fx_shard(&b, ARENA_BYTES, SEEDS);
	ccreate(&a, "h", HDIM, PM_INDEX_HNSW);
	ccreate(&a, "f", FDIM, PM_INDEX_FLAT);
	fuzz_now = NOW0;
	log_len = 0;
	for (int i = 0; i < 3000; i++)
		random_op(&a);
	uint64_t start = log_lsn;
	log_len = 0; /* what recovery replays: the records after the start LSN */
	snapshot(&a, start, 5 + rnd(40), between);
	for (int i = 0; i < 200; i++)
		random_op(&a);
	struct pm_snap_info info;
	char why[200] = "";
	CU_ASSERT_EQUAL_FATAL(pm_snap_load(&loader, &b, image, image_len, fuzz_now, &info, why, sizeof(why)), PM_OK);
	CU_ASSERT_EQUAL(info.start_lsn, start);
	replay(&b, fuzz_now);
	expect_same(&a, &b, fuzz_now);
	while (pm_shard_maintain(&b, fuzz_now, 0))
		;
	if (coll(&b, "h"))
		expect_valid(&b, "h");
	pm_shard_destroy(&a);
	pm_shard_destroy(&b);
}

static void test_fuzzy_then_replay(void)
{
	logbuf = malloc(LOG_BYTES);
	for (uint64_t seed = 1; seed <= 12; seed++)
		fuzzy_round(0xF022ull * seed, between_slices);
	free(logbuf);
}

/* A collection dropped and made again between the start and the first fill
 * (pomaid: while the file is being made): the image holds neither (the log
 * after the start has both), and loads. It did not: the table was read at
 * the first fill, and a freed slot's cleared name was refused at load
 * (E_COLLECTION_NAME: a restart refused to start). */
static void test_collection_dropped_before_first_fill(void)
{
	logbuf = malloc(LOG_BYTES);
	for (uint64_t seed = 1; seed <= 4; seed++)
		fuzzy_round(0xD209ull * seed, drop_before_first_fill);
	free(logbuf);
}

/* ---------------------------------------------------------------- damage */

static void test_every_flip_and_cut_refused(void)
{
	struct pm_shard a;
	fx_shard(&a, 8u << 20, 1024);
	ccreate(&a, "h", HDIM, PM_INDEX_HNSW);
	char k[32];
	for (int i = 0; i < 40; i++) {
		float v[HDIM];
		rvec(v, HDIM);
		int kl = snprintf(k, sizeof(k), "k%d", i);
		CU_ASSERT_EQUAL(fx_set(&a, fx_b(k, (size_t)kl), fx_s("value"), 0, NOW0), PM_OK);
		CU_ASSERT_EQUAL(fx_vadd(&a, fx_b(k + 1, (size_t)kl - 1), "h", v, HDIM, 0, NOW0), PM_OK);
	}
	snapshot(&a, 7, 9, NULL);
	struct pm_snap_info info;
	char why[200];
	CU_ASSERT_EQUAL_FATAL(pm_snap_check(image, image_len, &info, why, sizeof(why)), PM_OK);
	for (size_t i = 0; i < image_len; i++) {
		for (unsigned bit = 0; bit < 8; bit += 3) {
			image[i] ^= (uint8_t)(1u << bit);
			why[0] = '\0';
			CU_ASSERT_EQUAL_FATAL(pm_snap_check(image, image_len, &info, why, sizeof(why)),
					      PM_E_PARAM);
			CU_ASSERT(why[0] != '\0');
			image[i] ^= (uint8_t)(1u << bit);
		}
	}
	for (size_t cut = 0; cut < image_len; cut++)
		CU_ASSERT_EQUAL_FATAL(pm_snap_check(image, cut, &info, why, sizeof(why)), PM_E_PARAM);
	/* and nothing may follow the END section */
	image[image_len] = 0;
	CU_ASSERT_EQUAL(pm_snap_check(image, image_len + 1, &info, why, sizeof(why)), PM_E_PARAM);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "after the END"));
	pm_shard_destroy(&a);
}

/* Well-checksummed nonsense: records changed at random with their sections'
 * CRCs made right again. Loading must end with a status (never a crash, never
 * a read past the image: ASan watches), and what it loaded must hold every
 * structural rule of the validator. As in fuzz_snapshot, two are not
 * promised for an image made up this way: that every node is reachable (the
 * loader relinks what dropped links stranded, and relinking can strand
 * another) and level counts the level RNG could draw (a changed M or RNG
 * state, say). */
static void test_checksummed_nonsense(void)
{
	rng = 0x5E115E115Eull; /* whatever the tests before drew */
	struct pm_shard a;
	fx_shard(&a, 8u << 20, 1024);
	ccreate(&a, "h", HDIM, PM_INDEX_HNSW);
	ccreate(&a, "f", FDIM, PM_INDEX_FLAT);
	char k[32];
	for (int i = 0; i < 300; i++) {
		float v[HDIM];
		rvec(v, HDIM);
		int kl = snprintf(k, sizeof(k), "k%d", i);
		CU_ASSERT_EQUAL(fx_set(&a, fx_b(k, (size_t)kl), fx_s("value"), 0, NOW0), PM_OK);
		CU_ASSERT_EQUAL(fx_vadd(&a, fx_b(k + 1, (size_t)kl - 1), i % 2 ? "h" : "f", v,
					i % 2 ? HDIM : FDIM, 0, NOW0), PM_OK);
	}
	snapshot(&a, 7, 50, NULL);
	uint8_t *copy = malloc(image_len);
	unsigned ok = 0, refused = 0, unreachable = 0, levels = 0;
	for (int round = 0; round < 3000; round++) {
		memcpy(copy, image, image_len);
		for (uint32_t n = 1 + rnd(4); n; n--) {
			size_t at = PM_SNAP_HEADER_BYTES + rnd((uint32_t)(image_len - PM_SNAP_HEADER_BYTES));
			copy[at] = rnd(3) ? (uint8_t)rnd(256) : (uint8_t)(copy[at] ^ (1u << rnd(8)));
		}
		resign(copy, image_len);
		struct pm_shard b;
		struct pm_snap_info info;
		char why[200];
		fx_shard(&b, 8u << 20, 1024);
		enum pm_status st = pm_snap_load(&loader, &b, copy, image_len, NOW0, &info, why, sizeof(why));
		struct pm_hnsw_report rep;
		if (st == PM_OK) {
			ok++;
			if (coll(&b, "h") && validate(&b, "h", &rep) != PM_OK) {
				unreachable += rep.unreachable != 0;
				levels += rep.levels_implausible;
				if (!rep.unreachable && !rep.levels_implausible)
					fprintf(stderr, "h: %s\n", rep.why);
				CU_ASSERT(rep.unreachable || rep.levels_implausible);
			}
		} else {
			refused++;
		}
		pm_shard_destroy(&b);
	}
	printf("\n  %u loaded (%u with nodes unreachable, %u with implausible levels), %u refused",
	       ok, unreachable, levels, refused);
	CU_ASSERT(refused > 0);
	free(copy);
	pm_shard_destroy(&a);
}

static void test_shard_too_small(void)
{
	struct pm_shard a, b;
	fx_shard(&a, ARENA_BYTES, SEEDS);
	fill_shard(&a);
	snapshot(&a, 1, 500, NULL);
	fx_shard(&b, 8u << 20, 1024); /* fewer seeds than the snapshot holds */
	struct pm_snap_info info;
	char why[200] = "";
	CU_ASSERT_EQUAL(pm_snap_load(&loader, &b, image, image_len, NOW0, &info, why, sizeof(why)), PM_E_NOMEM);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "smaller than the snapshot"));
	pm_shard_destroy(&a);
	pm_shard_destroy(&b);
}

int main(void)
{
	image = malloc(IMAGE_BYTES);
	static CU_TestInfo tests[] = {
		{ "quiet shard: same content, graph and answers", test_quiet_round_trip },
		{ "fuzzy snapshot + replay = live shard", test_fuzzy_then_replay },
		{ "collection dropped and made again before the first fill",
		  test_collection_dropped_before_first_fill },
		{ "every flipped byte and cut refused", test_every_flip_and_cut_refused },
		{ "shard too small: E_NOMEM", test_shard_too_small },
		{ "nodes that lost their top level: caught", test_lost_levels_caught },
		{ "well-checksummed nonsense: a status, never a crash", test_checksummed_nonsense },
		CU_TEST_INFO_NULL,
	};
	int rc = pm_cu_run("snapshot", tests);
	free(image);
	return rc;
}
