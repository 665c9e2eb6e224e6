/* SPDX-License-Identifier: MIT
 *
 * snapshot.c — writing a live shard as snapshot sections, checking and
 * loading an image (format and soundness argument in snapshot.h).
 */
#include "snapshot.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "attr.h"
#include "bytes.h"
#include "common.h"
#include "hash.h"
#include "kv.h"
#include "quant.h"
#include "vector.h"
#include "wal.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "snapshots copy f32 payloads as they are in memory: little-endian hosts only"
#endif

/* Header offsets. */
#define HDR_VERSION_OFF 8u
#define HDR_SHARD_OFF 12u
#define HDR_LSN_OFF 16u
#define HDR_MS_OFF 24u
#define HDR_LOG_SEG_OFF 32u
#define HDR_LOG_OFF_OFF 40u
#define HDR_CRC_OFF 60u
/* Section header offsets. */
#define SEC_TYPE_OFF 0u
#define SEC_LEN_OFF 4u
#define SEC_COUNT_OFF 8u
#define SEC_CRC_OFF 12u
#define END_PAYLOAD_BYTES 16u

#define REC_KV 1u
#define REC_VEC 2u
#define REC_NODE 3u
#define NODE_TOMB 1u
/* Fixed parts of the records (snapshot.h). */
/* A COLLS record: slot, default, name length (COLL_HEAD_BYTES), the name,
 * then the parameters, HNSW id bound, entry, RNG and flags (COLL_BODY_BYTES). */
#define COLL_HEAD_BYTES (2u + 1u + 1u)
#define COLL_BODY_BYTES (4u + 1u + 1u + 2u + 4u + 4u + 4u + 4u + 8u + 1u + 1u + 1u + 4u)
#define COLL_FIXED_BYTES (COLL_HEAD_BYTES + COLL_BODY_BYTES)
#define COLL_FLAGS_OFF 32u
#define COLL_DTYPE_OFF 33u
#define COLL_RERANK_OFF 34u
#define COLL_RERANK_K_OFF 35u
/* After a vector's payload: its norm and Q8 scale. */
#define VEC_META_BYTES 8u
/* The largest payload: f16 codes and the kept f32 (6 bytes a component). */
#define VEC_PAYLOAD_BYTES_MAX (6u * PM_DIM_MAX)
#define KV_FIXED_BYTES (1u + 2u + 4u + 8u)
#define VEC_FIXED_BYTES (1u + 2u + 2u + 8u)
#define NODE_FIXED_BYTES (1u + 1u + 1u + 2u + 2u + 4u + 8u)

_Static_assert(sizeof(PM_SNAP_MAGIC) - 1 == 8, "magic is 8 bytes");
_Static_assert(KV_FIXED_BYTES + PM_KEY_BYTES_MAX + PM_VALUE_BYTES_MAX <= PM_SNAP_RECORD_BYTES_MAX,
	       "a KV item fits a record");
_Static_assert(NODE_FIXED_BYTES + PM_KEY_BYTES_MAX + VEC_PAYLOAD_BYTES_MAX + VEC_META_BYTES + 2u +
			       PM_ATTR_BYTES_MAX +
			       4u * (1u + 2u * PM_HNSW_M_MAX) +
			       4u * PM_HNSW_LEVEL_MAX * (1u + PM_HNSW_M_MAX) <=
		       PM_SNAP_RECORD_BYTES_MAX,
	       "a node fits a record");
_Static_assert(PM_COLLECTIONS_MAX * (COLL_FIXED_BYTES + PM_COLLECTION_NAME_BYTES_MAX) +
			       PM_SNAP_HEADER_BYTES + 2u * PM_SNAP_SECTION_HEADER_BYTES <=
		       PM_SNAP_FILL_BYTES_MIN,
	       "the header and the collection table fit the first fill");
_Static_assert(PM_SNAP_RECORD_BYTES_MAX + 3u * PM_SNAP_SECTION_HEADER_BYTES + END_PAYLOAD_BYTES <=
		       PM_SNAP_FILL_BYTES_MIN,
	       "a fill holds the largest record and the END section");

/* ---------------------------------------------------------------- writing */

/* The buffer a fill writes into, with the section being filled. */
struct out {
	uint8_t *p;
	size_t cap, len;
	size_t sec;      /* offset of the open section's header */
	uint32_t type, count;
	bool open;
};

static void sec_open(struct out *o, uint32_t type)
{
	o->sec = o->len;
	o->len += PM_SNAP_SECTION_HEADER_BYTES;
	o->type = type;
	o->count = 0;
	o->open = true;
}

static void sec_close(struct out *o, struct pm_snap_writer *w)
{
	if (!o->open)
		return;
	o->open = false;
	if (o->count == 0 && (o->type == PM_SNAP_SEC_ITEMS || o->type == PM_SNAP_SEC_NODES)) {
		o->len = o->sec; /* nothing in it */
		return;
	}
	uint8_t *h = o->p + o->sec;
	uint32_t len = (uint32_t)(o->len - o->sec - PM_SNAP_SECTION_HEADER_BYTES);
	put_u32(h + SEC_TYPE_OFF, o->type);
	put_u32(h + SEC_LEN_OFF, len);
	put_u32(h + SEC_COUNT_OFF, o->count);
	uint32_t crc = pm_crc32c(0, h, SEC_CRC_OFF);
	put_u32(h + SEC_CRC_OFF, pm_crc32c(crc, h + PM_SNAP_SECTION_HEADER_BYTES, len));
	w->sections++;
	if (o->type == PM_SNAP_SEC_ITEMS || o->type == PM_SNAP_SEC_NODES)
		w->records += o->count;
}

/* Room for a record of n bytes in a section of `type` (opening one, or
 * closing a full one and opening the next); false when the buffer is full. */
static bool reserve(struct out *o, struct pm_snap_writer *w, uint32_t type, size_t n)
{
	if (o->open && (o->type != type ||
			o->len + n - o->sec - PM_SNAP_SECTION_HEADER_BYTES > PM_SNAP_SECTION_BYTES_MAX))
		sec_close(o, w);
	/* leave room for closing: the END section must fit after the last record */
	size_t tail = PM_SNAP_SECTION_HEADER_BYTES + END_PAYLOAD_BYTES;
	if (o->len + (o->open ? 0 : PM_SNAP_SECTION_HEADER_BYTES) + n + tail > o->cap)
		return false;
	if (!o->open)
		sec_open(o, type);
	return true;
}

static uint8_t *put_bytes(uint8_t *p, const void *src, size_t n)
{
	if (n)
		memcpy(p, src, n);
	return p + n;
}

/* u16 length, attribute record (length 0: none). */
static uint8_t *put_attr(uint8_t *p, const uint8_t *rec, uint32_t alen)
{
	put_u16(p, (uint16_t)alen);
	return put_bytes(p + U16_BYTES, rec, alen);
}

void pm_snap_header(const struct pm_snap_writer *w, uint64_t log_seg, uint64_t log_off,
		    uint8_t out[PM_SNAP_HEADER_BYTES])
{
	memset(out, 0, PM_SNAP_HEADER_BYTES);
	memcpy(out, PM_SNAP_MAGIC, 8);
	put_u32(out + HDR_VERSION_OFF, PM_SNAP_VERSION);
	put_u32(out + HDR_SHARD_OFF, w->shard);
	put_u64(out + HDR_LSN_OFF, w->start_lsn);
	put_u64(out + HDR_MS_OFF, w->start_ms);
	put_u64(out + HDR_LOG_SEG_OFF, log_seg);
	put_u64(out + HDR_LOG_OFF_OFF, log_off);
	put_u32(out + HDR_CRC_OFF, pm_crc32c(0, out, HDR_CRC_OFF));
}

static void write_header(struct out *o, const struct pm_snap_writer *w)
{
	pm_snap_header(w, 0, 0, o->p + o->len); /* where the log has it: not known yet */
	o->len += PM_SNAP_HEADER_BYTES;
}

/* Was this collection slot captured at the start, and does it still hold that
 * collection, not dropped since? (A drop after the start is in the log the image
 * is replayed with; its vectors are being freed and are not read here.) */
static bool coll_same(const struct pm_snap_writer *w, const struct pm_shard *sh, uint32_t slot)
{
	return w->gen[slot] && sh->colls[slot].live && !sh->colls[slot].dropping &&
	       sh->colls[slot].gen == w->gen[slot];
}

static void write_colls(struct out *o, struct pm_snap_writer *w, const struct pm_shard *sh)
{
	sec_open(o, PM_SNAP_SEC_COLLS);
	for (uint32_t i = 0; i < PM_COLLECTIONS_MAX; i++) {
		const struct pm_collection *c = &sh->colls[i];
		/* The table is written by the first fill, which may come turns after
		 * the start (the file is made first). A collection dropped since (its
		 * slot cleared, or taken again) is left out, as its items are: its
		 * drop is in the log after the start LSN. Name and parameters do not
		 * change while a collection lives; its graph's entry point and RNG
		 * do, so they are the start's. */
		if (!coll_same(w, sh, i))
			continue;
		uint8_t *p = o->p + o->len;
		put_u16(p, (uint16_t)i);
		p[2] = c->is_default;
		p[3] = c->name_len;
		p = put_bytes(p + 4, c->name, c->name_len);
		put_u32(p, c->params.dim);
		p[4] = c->params.metric;
		p[5] = c->params.index;
		put_u16(p + 6, c->params.hnsw_m);
		put_u32(p + 8, c->params.ef_construction);
		put_u32(p + 12, c->params.ef_search);
		put_u32(p + 16, w->high[i]);
		put_u32(p + 20, w->entry[i]);
		put_u64(p + 24, w->rng[i]);
		p[COLL_FLAGS_OFF] = c->params.flags;
		p[COLL_DTYPE_OFF] = c->params.dtype;
		p[COLL_RERANK_OFF] = c->params.rerank;
		put_u32(p + COLL_RERANK_K_OFF, c->params.rerank_k);
		o->len = (size_t)(p + COLL_BODY_BYTES - o->p);
		o->count++;
	}
	sec_close(o, w);
}

void pm_snap_writer_init(struct pm_snap_writer *w, const struct pm_shard *sh, uint32_t shard,
			 uint64_t start_lsn, uint64_t now_ms)
{
	memset(w, 0, sizeof(*w));
	w->shard = shard;
	w->start_lsn = start_lsn;
	w->start_ms = now_ms;
	w->seed_end = sh->arena.seed_high;
	for (uint32_t i = 0; i < PM_COLLECTIONS_MAX; i++) {
		const struct pm_collection *c = &sh->colls[i];
		if (!c->live || c->dropping) /* dropped before the start: not in the image */
			continue;
		w->gen[i] = c->gen;
		w->high[i] = c->params.index == PM_INDEX_HNSW ? c->hnsw.high : 0;
		w->entry[i] = c->hnsw.entry;
		w->rng[i] = c->hnsw.rng;
	}
}

static bool expired_at(uint64_t at, uint64_t now_ms)
{
	return at != 0 && at <= now_ms;
}

/* A vector as a record carries it: the payload and the kept f32 verbatim,
 * norm, scale. */
static uint8_t *put_vec(uint8_t *p, const struct pm_collection *c, const struct pm_vec_header *h)
{
	uint32_t bits[2];
	memcpy(&bits[0], &h->norm, 4);
	memcpy(&bits[1], &h->qscale, 4);
	p = put_bytes(p, pm_vec_payload(h), h->payload_len);
	if (pm_vec_reranks(c))
		p = put_bytes(p, pm_vec_kept(c, h), pm_quant_kept_bytes(&c->params));
	put_u32(p, bits[0]);
	put_u32(p + 4, bits[1]);
	return p + VEC_META_BYTES;
}

/* A seed as an ITEMS record (KV, or a vector of a flat collection); false when
 * the buffer is full. Seeds that are free, expired, HNSW nodes (saved with
 * their graph) or of a collection made after the start are passed over. */
static bool save_seed(struct out *o, struct pm_snap_writer *w, const struct pm_shard *sh,
		      uint32_t idx, uint64_t now_ms)
{
	const struct pm_seed *s = pm_seed_at(&sh->arena, idx);
	if (s->kind == PM_SEED_FREE || expired_at(pm_seed_expiry(s), now_ms))
		return true;
	const uint8_t *key = pm_seed_key(&sh->arena, s);
	if (s->kind == PM_SEED_KV) {
		struct pm_bytes v = pm_kv_value(&sh->arena, s);
		if (!reserve(o, w, PM_SNAP_SEC_ITEMS, KV_FIXED_BYTES + s->klen + v.len))
			return false;
		uint8_t *p = o->p + o->len;
		p[0] = REC_KV;
		put_u16(p + 1, s->klen);
		put_u32(p + 3, v.len);
		put_u64(p + 7, pm_seed_expiry(s));
		p = put_bytes(put_bytes(p + KV_FIXED_BYTES, key, s->klen), v.ptr, v.len);
		o->len = (size_t)(p - o->p);
		o->count++;
		return true;
	}
	const struct pm_collection *c = &sh->colls[s->coll];
	if (!coll_same(w, sh, s->coll) || c->params.index == PM_INDEX_HNSW)
		return true;
	const struct pm_vec_header *h = pm_at(&sh->arena, pm_seed_blob(s));
	const uint8_t *rec = pm_vec_attr(sh, h);
	const uint32_t alen = rec ? pm_attr_len(rec) : 0;
	if (!reserve(o, w, PM_SNAP_SEC_ITEMS,
		     VEC_FIXED_BYTES + s->klen + pm_quant_stored_bytes(&c->params) + VEC_META_BYTES +
			     U16_BYTES + alen))
		return false;
	uint8_t *p = o->p + o->len;
	p[0] = REC_VEC;
	put_u16(p + 1, s->klen);
	put_u16(p + 3, s->coll);
	put_u64(p + 5, pm_seed_expiry(s));
	p = put_attr(put_vec(put_bytes(p + VEC_FIXED_BYTES, key, s->klen), c, h), rec, alen);
	o->len = (size_t)(p - o->p);
	o->count++;
	return true;
}

/* One HNSW node as a NODES record; false when the buffer is full. */
static bool save_node(struct out *o, struct pm_snap_writer *w, const struct pm_shard *sh,
		      uint32_t slot, uint32_t id)
{
	const struct pm_collection *c = &sh->colls[slot];
	const struct pm_hnsw_node *n = pm_hnsw_node_get(sh, c, id);
	if (!n)
		return true;
	const struct pm_vec_header *h = pm_at(&sh->arena, pm_hnsw_node_off(n));
	bool tomb = n->flags & PM_HNSW_TOMBSTONE;
	const struct pm_seed *s = tomb ? NULL : pm_seed_at(&sh->arena, h->seed);
	uint32_t klen = s ? s->klen : 0;
	size_t links_max = U32_BYTES * ((1u + c->hnsw.m0) + (size_t)n->level * (1u + c->hnsw.m));
	const uint8_t *rec = s ? pm_vec_attr(sh, h) : NULL;
	const uint32_t alen = rec ? pm_attr_len(rec) : 0;
	if (!reserve(o, w, PM_SNAP_SEC_NODES,
		     NODE_FIXED_BYTES + klen + pm_quant_stored_bytes(&c->params) + VEC_META_BYTES +
			     U16_BYTES + alen +
			     links_max))
		return false;
	uint8_t *p = o->p + o->len;
	p[0] = REC_NODE;
	p[1] = tomb ? NODE_TOMB : 0;
	p[2] = n->level;
	put_u16(p + 3, (uint16_t)slot);
	put_u16(p + 5, (uint16_t)klen);
	put_u32(p + 7, id);
	put_u64(p + 11, s ? pm_seed_expiry(s) : 0);
	p = put_bytes(p + NODE_FIXED_BYTES, s ? pm_seed_key(&sh->arena, s) : NULL, klen);
	p = put_attr(put_vec(p, c, h), rec, alen);
	size_t links = pm_hnsw_links_save(sh, c, id, p, o->cap - (size_t)(p - o->p));
	PM_ASSERT(links > 0);
	o->len = (size_t)(p + links - o->p);
	o->count++;
	return true;
}

/* Advance the node phase to the next HNSW collection captured at the start. */
static void next_coll(struct pm_snap_writer *w, const struct pm_shard *sh)
{
	while (w->coll < PM_COLLECTIONS_MAX &&
	       !(coll_same(w, sh, w->coll) && w->high[w->coll] &&
		 sh->colls[w->coll].params.index == PM_INDEX_HNSW))
		w->coll++;
	w->cursor = 0;
}

/* Seeds, then nodes, until the buffer or the budget runs out. */
static void fill_body(struct out *o, struct pm_snap_writer *w, struct pm_shard *sh,
		      uint64_t now_ms, uint32_t budget)
{
	while (budget && w->phase == PM_SNAP_SEEDS) {
		if (w->cursor >= w->seed_end) {
			w->phase = PM_SNAP_NODES;
			w->coll = 0;
			next_coll(w, sh);
			break;
		}
		if (!save_seed(o, w, sh, w->cursor, now_ms))
			return;
		w->cursor++, budget--;
	}
	while (budget && w->phase == PM_SNAP_NODES) {
		if (w->coll >= PM_COLLECTIONS_MAX) {
			w->phase = PM_SNAP_TAIL;
			break;
		}
		if (!coll_same(w, sh, w->coll) || w->cursor >= w->high[w->coll]) {
			w->coll++; /* done, or dropped since the start: the log has the drop */
			next_coll(w, sh);
			continue;
		}
		if (!save_node(o, w, sh, w->coll, w->cursor))
			return;
		w->cursor++, budget--;
	}
}

size_t pm_snap_fill(struct pm_snap_writer *w, struct pm_shard *sh, uint64_t now_ms, uint8_t *out,
		    size_t cap, uint32_t max_items)
{
	PM_ASSERT(cap >= PM_SNAP_FILL_BYTES_MIN);
	struct out o = { .p = out, .cap = cap };
	if (w->phase == PM_SNAP_DONE)
		return 0;
	if (w->phase == PM_SNAP_HEAD) {
		write_header(&o, w);
		write_colls(&o, w, sh);
		w->phase = PM_SNAP_SEEDS;
	}
	fill_body(&o, w, sh, now_ms, max_items ? max_items : 1);
	sec_close(&o, w);
	if (w->phase == PM_SNAP_TAIL) {
		sec_open(&o, PM_SNAP_SEC_END);
		put_u64(o.p + o.len, w->records);
		put_u64(o.p + o.len + 8, w->sections);
		o.len += END_PAYLOAD_BYTES;
		sec_close(&o, w);
		w->phase = PM_SNAP_DONE;
	}
	w->bytes += o.len;
	return o.len;
}

unsigned pm_snap_progress(const struct pm_snap_writer *w)
{
	uint64_t total = w->seed_end, done = 0;
	for (uint32_t i = 0; i < PM_COLLECTIONS_MAX; i++) {
		total += w->high[i];
		done += w->phase == PM_SNAP_NODES && i < w->coll ? w->high[i] : 0;
	}
	if (w->phase >= PM_SNAP_TAIL)
		return 100;
	if (w->phase == PM_SNAP_SEEDS)
		done = w->cursor;
	else if (w->phase == PM_SNAP_NODES)
		done += w->seed_end + w->cursor;
	return total ? (unsigned)(done * 100 / total) : 0;
}

/* ---------------------------------------------------------------- checking */

__attribute__((format(printf, 3, 4)))
static enum pm_status fault(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return PM_E_PARAM;
}

struct sec {
	uint32_t type, len, count;
	const uint8_t *p; /* payload */
	size_t off;       /* of the section header in the image */
};

/* The section at *off, its CRC checked; *off moves past it. */
static enum pm_status next_section(const uint8_t *buf, size_t len, size_t *off, struct sec *s,
				   char *why, size_t whylen)
{
	s->off = *off;
	if (len - *off < PM_SNAP_SECTION_HEADER_BYTES)
		return fault(why, whylen, "section at offset %zu: truncated header", *off);
	const uint8_t *h = buf + *off;
	s->type = get_u32(h + SEC_TYPE_OFF);
	s->len = get_u32(h + SEC_LEN_OFF);
	s->count = get_u32(h + SEC_COUNT_OFF);
	s->p = h + PM_SNAP_SECTION_HEADER_BYTES;
	if (s->len > PM_SNAP_SECTION_BYTES_MAX || s->len > len - *off - PM_SNAP_SECTION_HEADER_BYTES)
		return fault(why, whylen, "section at offset %zu: length %u runs past the end", *off,
			     s->len);
	uint32_t crc = pm_crc32c(pm_crc32c(0, h, SEC_CRC_OFF), s->p, s->len);
	if (crc != get_u32(h + SEC_CRC_OFF))
		return fault(why, whylen, "section at offset %zu: CRC mismatch", *off);
	if (s->type < PM_SNAP_SEC_COLLS || s->type > PM_SNAP_SEC_END)
		return fault(why, whylen, "section at offset %zu: unknown type %u", *off, s->type);
	*off += PM_SNAP_SECTION_HEADER_BYTES + s->len;
	return PM_OK;
}

static enum pm_status check_header(const uint8_t *buf, size_t len, struct pm_snap_info *info,
				   char *why, size_t whylen)
{
	if (len < PM_SNAP_HEADER_BYTES || memcmp(buf, PM_SNAP_MAGIC, 8) != 0)
		return fault(why, whylen, "not a Pomai snapshot (no header)");
	if (pm_crc32c(0, buf, HDR_CRC_OFF) != get_u32(buf + HDR_CRC_OFF))
		return fault(why, whylen, "header CRC mismatch");
	if (get_u32(buf + HDR_VERSION_OFF) != PM_SNAP_VERSION)
		return fault(why, whylen, "version %u (this build reads %u)",
			     get_u32(buf + HDR_VERSION_OFF), PM_SNAP_VERSION);
	info->shard = get_u32(buf + HDR_SHARD_OFF);
	info->start_lsn = get_u64(buf + HDR_LSN_OFF);
	info->start_ms = get_u64(buf + HDR_MS_OFF);
	info->log_seg = get_u64(buf + HDR_LOG_SEG_OFF);
	info->log_off = get_u64(buf + HDR_LOG_OFF_OFF);
	return PM_OK;
}

enum pm_status pm_snap_check(const uint8_t *buf, size_t len, struct pm_snap_info *info, char *why,
			     size_t whylen)
{
	memset(info, 0, sizeof(*info));
	enum pm_status st = check_header(buf, len, info, why, whylen);
	size_t off = PM_SNAP_HEADER_BYTES;
	uint64_t records = 0;
	bool end = false;
	while (st == PM_OK && off < len && !end) {
		struct sec s = { 0 }; /* set by next_section; zeroed for -O3's flow analysis */
		if ((st = next_section(buf, len, &off, &s, why, whylen)) != PM_OK)
			break;
		if (s.type == PM_SNAP_SEC_END) {
			if (s.len != END_PAYLOAD_BYTES || get_u64(s.p) != records ||
			    get_u64(s.p + 8) != info->sections)
				return fault(why, whylen, "END section at offset %zu: counts disagree",
					     s.off);
			end = true;
		}
		info->colls += s.type == PM_SNAP_SEC_COLLS ? s.count : 0;
		info->items += s.type == PM_SNAP_SEC_ITEMS ? s.count : 0;
		info->nodes += s.type == PM_SNAP_SEC_NODES ? s.count : 0;
		records += s.type == PM_SNAP_SEC_ITEMS || s.type == PM_SNAP_SEC_NODES ? s.count : 0;
		info->sections++;
	}
	if (st == PM_OK && !end)
		return fault(why, whylen, "no END section: the snapshot is incomplete");
	if (st == PM_OK && off != len)
		return fault(why, whylen, "%zu bytes after the END section", len - off);
	return st;
}

/* ---------------------------------------------------------------- loading */

/* A bounded reader over one section's payload. */
struct rd {
	const uint8_t *p;
	size_t left;
};

static const uint8_t *take(struct rd *r, size_t n)
{
	if (n > r->left)
		return NULL;
	const uint8_t *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

static enum pm_status bad(struct pm_snap_loader *L, const char *what)
{
	return fault(L->why, L->whylen, "section at offset %zu: %s", L->off, what);
}

static enum pm_status failed(struct pm_snap_loader *L, const char *what, enum pm_status st)
{
	fault(L->why, L->whylen, "section at offset %zu: %s: %s%s", L->off, what, pm_status_name(st),
	      st == PM_E_NOMEM ? " (the shard's arena_bytes or seeds are smaller than the snapshot"
				 " needs)" : "");
	return st;
}

static enum pm_status load_coll(struct pm_snap_loader *L, struct rd *r)
{
	const uint8_t *p = take(r, COLL_HEAD_BYTES), *name;
	if (!p)
		return bad(L, "truncated collection");
	uint32_t slot = get_u16(p), nlen = p[3];
	bool is_default = p[2];
	if (slot >= PM_COLLECTIONS_MAX || L->slot[slot].present || p[2] > 1 ||
	    !(name = take(r, nlen)) || !(p = take(r, COLL_BODY_BYTES)))
		return bad(L, "bad collection record");
	struct pm_collection_params prm = { .dim = get_u32(p), .metric = p[4], .index = p[5],
					    .hnsw_m = get_u16(p + 6),
					    .ef_construction = get_u32(p + 8),
					    .ef_search = get_u32(p + 12),
					    .flags = p[COLL_FLAGS_OFF],
					    .dtype = p[COLL_DTYPE_OFF],
					    .rerank = p[COLL_RERANK_OFF],
					    .rerank_k = get_u32(p + COLL_RERANK_K_OFF) };
	L->slot[slot].present = true;
	L->slot[slot].is_default = is_default;
	L->slot[slot].dim = prm.dim;
	L->slot[slot].entry = get_u32(p + 20);
	L->slot[slot].rng = get_u64(p + 24);
	if (is_default)
		return prm.dim && prm.dim <= PM_DIM_MAX && prm.index == PM_INDEX_FLAT &&
				       prm.dtype == PM_DTYPE_F32
			       ? PM_OK : bad(L, "bad default collection");
	enum pm_status st = pm_coll_create(L->sh, name, nlen, &prm);
	if (st != PM_OK)
		return failed(L, "collection", st);
	struct pm_collection *c = pm_coll_find(L->sh, name, nlen);
	L->slot[slot].c = c;
	if (prm.index != PM_INDEX_HNSW)
		return PM_OK;
	/* each id was handed out by an insert that drew a level: a saved graph
	 * never has more ids than its RNG state counts draws */
	if (get_u32(p + 16) > pm_hnsw_level_draws(L->slot[slot].rng, prm.dim))
		return bad(L, "HNSW id bound above the inserts its level RNG counts");
	if ((st = pm_hnsw_restore_begin(L->sh, c, get_u32(p + 16))) != PM_OK)
		return failed(L, "HNSW node table", st);
	return PM_OK;
}

/* Whether an item is loaded: not if its deadline has passed (skipped). */
static bool take_item(struct pm_snap_loader *L, uint64_t at)
{
	L->info->skipped += expired_at(at, L->now_ms);
	return !expired_at(at, L->now_ms);
}

/* A key captured twice (it changed while the snapshot ran) is loaded once:
 * a copy of the same kind is overwritten by the put, one of the other kind
 * (E_WRONGTYPE) is deleted first; the log sets the key right either way. */
static bool other_kind_dropped(struct pm_snap_loader *L, enum pm_status st, const uint8_t *key,
			       uint32_t klen, uint64_t hash)
{
	if (st != PM_E_WRONGTYPE)
		return false;
	L->info->skipped++;
	return pm_ks_del(L->sh, key, klen, hash, L->now_ms, PM_SEED_FREE) == PM_OK;
}

static enum pm_status load_kv(struct pm_snap_loader *L, struct rd *r)
{
	const uint8_t *p = take(r, KV_FIXED_BYTES - 1), *key, *val;
	if (!p)
		return bad(L, "truncated KV item");
	uint32_t klen = get_u16(p), vlen = get_u32(p + 2);
	uint64_t at = get_u64(p + 6);
	if (!klen || klen > PM_KEY_BYTES_MAX || vlen > PM_VALUE_BYTES_MAX || !(key = take(r, klen)) ||
	    !(val = take(r, vlen)))
		return bad(L, "bad KV item");
	if (!take_item(L, at))
		return PM_OK;
	uint64_t hash = pm_hash(key, klen);
	enum pm_status st = pm_kv_set(L->sh, key, klen, hash, val, vlen, at, L->now_ms);
	if (other_kind_dropped(L, st, key, klen, hash))
		st = pm_kv_set(L->sh, key, klen, hash, val, vlen, at, L->now_ms);
	return st == PM_OK ? PM_OK : failed(L, "KV item", st);
}

/* A vector of a collection with parameters prm (put_vec); false when it runs
 * past the section or its norm or scale is not a finite number >= 0. */
static bool take_vec(struct rd *r, const struct pm_collection_params *prm,
		     struct pm_vec_stored *sv)
{
	const uint8_t *meta;
	if (!(sv->payload = take(r, pm_quant_stored_bytes(prm))) ||
	    !(meta = take(r, VEC_META_BYTES)))
		return false;
	uint32_t bits[2] = { get_u32(meta), get_u32(meta + 4) };
	memcpy(&sv->norm, &bits[0], 4);
	memcpy(&sv->qscale, &bits[1], 4);
	return isfinite(sv->norm) && sv->norm >= 0.0f && isfinite(sv->qscale) && sv->qscale >= 0.0f;
}

/* u16 length, attribute record: false when it runs past the section. */
static bool take_attr(struct rd *r, struct pm_bytes *attr)
{
	const uint8_t *p = take(r, U16_BYTES);
	if (!p)
		return false;
	attr->len = get_u16(p);
	attr->ptr = attr->len ? take(r, attr->len) : NULL;
	return attr->len == 0 || attr->ptr != NULL;
}

/* A flat collection's vector put as it was stored, then its record. */
static enum pm_status vec_put(struct pm_snap_loader *L, const uint8_t *key, uint32_t klen,
			      uint64_t hash, const uint8_t *name, uint32_t nlen, uint32_t dim,
			      const struct pm_vec_stored *sv, struct pm_bytes attr, uint64_t at)
{
	enum pm_status st =
		pm_vec_put_stored(L->sh, key, klen, hash, name, nlen, dim, sv, at, L->now_ms);
	if (st == PM_OK && attr.len)
		st = pm_vec_set_attr(L->sh, key, klen, hash, attr.ptr, attr.len, L->now_ms);
	return st;
}

static enum pm_status load_vec(struct pm_snap_loader *L, struct rd *r)
{
	const uint8_t *p = take(r, VEC_FIXED_BYTES - 1), *key;
	if (!p)
		return bad(L, "truncated vector item");
	uint32_t klen = get_u16(p), slot = get_u16(p + 2);
	uint64_t at = get_u64(p + 4);
	if (slot >= PM_COLLECTIONS_MAX || !L->slot[slot].present ||
	    (L->slot[slot].c && L->slot[slot].c->params.index != PM_INDEX_FLAT))
		return bad(L, "vector item of an unknown or HNSW collection");
	uint32_t dim = L->slot[slot].dim;
	const struct pm_collection *c = L->slot[slot].c;
	struct pm_vec_stored sv;
	struct pm_bytes attr;
	if (!klen || klen > PM_KEY_BYTES_MAX || !(key = take(r, klen)) ||
	    !take_vec(r, c ? &c->params : &(struct pm_collection_params){ .dim = dim }, &sv) ||
	    !take_attr(r, &attr))
		return bad(L, "bad vector item");
	if (!take_item(L, at))
		return PM_OK;
	uint64_t hash = pm_hash(key, klen);
	const uint8_t *name = c ? c->name : NULL;
	uint32_t nlen = c ? c->name_len : 0;
	enum pm_status st = vec_put(L, key, klen, hash, name, nlen, dim, &sv, attr, at);
	if (other_kind_dropped(L, st, key, klen, hash))
		st = vec_put(L, key, klen, hash, name, nlen, dim, &sv, attr, at);
	return st == PM_OK ? PM_OK : failed(L, "vector item", st);
}

/* Bytes of a node's link lists at r (levels 0..level), or SIZE_MAX. */
static size_t links_len(const struct rd *r, unsigned level)
{
	size_t at = 0;
	for (unsigned lev = 0; lev <= level; lev++) {
		if (r->left - at < U32_BYTES)
			return SIZE_MAX;
		size_t n = get_u32(r->p + at);
		if (n > 2u * PM_HNSW_M_MAX || r->left - at - U32_BYTES < n * U32_BYTES)
			return SIZE_MAX;
		at += U32_BYTES * (1 + n);
	}
	return at;
}

static enum pm_status load_node(struct pm_snap_loader *L, struct rd *r)
{
	const uint8_t *p = take(r, NODE_FIXED_BYTES - 1), *key, *links;
	struct pm_vec_stored sv;
	if (!p)
		return bad(L, "truncated node");
	bool tomb = p[0] & NODE_TOMB;
	unsigned level = p[1];
	uint32_t slot = get_u16(p + 2), klen = get_u16(p + 4), id = get_u32(p + 6);
	uint64_t at = get_u64(p + 10);
	if (slot >= PM_COLLECTIONS_MAX || !L->slot[slot].c ||
	    L->slot[slot].c->params.index != PM_INDEX_HNSW)
		return bad(L, "node of an unknown or flat collection");
	struct pm_collection *c = L->slot[slot].c;
	size_t ll;
	struct pm_bytes attr;
	if (p[0] > NODE_TOMB || level > PM_HNSW_LEVEL_MAX || klen > PM_KEY_BYTES_MAX ||
	    tomb != (klen == 0) || !(key = take(r, klen)) ||
	    !take_vec(r, &c->params, &sv) || !take_attr(r, &attr) ||
	    (ll = links_len(r, level)) == SIZE_MAX || !(links = take(r, ll)))
		return bad(L, "bad node");
	uint64_t hash = klen ? pm_hash(key, klen) : 0;
	if (!tomb && (expired_at(at, L->now_ms) ||
		      pm_ks_find(L->sh, key, klen, hash, L->now_ms) != PM_SEED_NONE)) {
		tomb = true; /* expired, or a stale copy: kept in the graph as a tombstone */
		klen = 0;
		L->info->skipped++;
	}
	uint64_t off;
	enum pm_status st = pm_vec_restore(L->sh, c, key, klen, hash, &sv, at, L->now_ms, &off);
	if (st != PM_OK)
		return failed(L, "node", st);
	if (pm_hnsw_restore_node(L->sh, c, id, level, tomb, off, links, ll) != PM_OK)
		return bad(L, "node id or links out of bounds");
	if (!tomb && attr.len && (st = pm_vec_attr_restore(L->sh, c, off, attr.ptr, attr.len)) != PM_OK)
		return st == PM_E_ATTR ? bad(L, "bad attribute record") : failed(L, "node", st);
	return PM_OK;
}

static enum pm_status load_section(struct pm_snap_loader *L, const struct sec *s)
{
	struct rd r = { s->p, s->len };
	enum pm_status st = PM_OK;
	for (uint32_t i = 0; i < s->count && st == PM_OK; i++) {
		if (s->type == PM_SNAP_SEC_COLLS) {
			st = load_coll(L, &r);
			continue;
		}
		const uint8_t *tag = take(&r, 1);
		if (!tag || (s->type == PM_SNAP_SEC_NODES) != (*tag == REC_NODE))
			return bad(L, "record of the wrong kind");
		st = *tag == REC_KV ? load_kv(L, &r)
		   : *tag == REC_VEC ? load_vec(L, &r)
		   : *tag == REC_NODE ? load_node(L, &r) : bad(L, "unknown record");
	}
	if (st == PM_OK && r.left)
		return bad(L, "bytes after its last record");
	return st;
}

enum pm_status pm_snap_load(struct pm_snap_loader *L, struct pm_shard *sh, const uint8_t *buf,
			    size_t len, uint64_t now_ms, struct pm_snap_info *info, char *why,
			    size_t whylen)
{
	enum pm_status st = pm_snap_check(buf, len, info, why, whylen);
	if (st != PM_OK)
		return st;
	memset(L, 0, sizeof(*L));
	L->sh = sh;
	L->now_ms = now_ms;
	L->info = info;
	L->why = why;
	L->whylen = whylen;
	size_t off = PM_SNAP_HEADER_BYTES;
	while (st == PM_OK && off < len) {
		struct sec s = { 0 }; /* set by next_section; zeroed for -O3's flow analysis */
		L->off = off;
		(void)next_section(buf, len, &off, &s, why, whylen); /* checked above */
		if (s.type != PM_SNAP_SEC_END)
			st = load_section(L, &s);
	}
	for (uint32_t i = 0; st == PM_OK && i < PM_COLLECTIONS_MAX; i++) {
		struct pm_collection *c = L->slot[i].c;
		if (c && c->params.index == PM_INDEX_HNSW)
			info->links_dropped += pm_hnsw_restore_end(sh, c, L->slot[i].entry, L->slot[i].rng);
	}
	return st;
}
