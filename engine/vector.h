/* SPDX-License-Identifier: MIT
 *
 * vector.h — vectors and collections of one shard.
 *
 * A vector is a seed of kind VECTOR whose blob is
 *
 *   [ 64-byte header | payload | HNSW level-0 link ids | long key ]
 *
 * where the payload is the vector in its collection's element type (quant.h:
 * dim x f32 for f32 collections, the codes for the others) and payload_len
 * its size; a collection that re-ranks keeps the f32 after the links.
 *
 * The header follows the seed plan's `payload_len, dim, dtype` and adds what the
 * shard needs to find its way back: the collection id, the owning seed, the
 * vector's position in the collection's member list, its L2 norm (cosine), the
 * HNSW node id and the vector's access-frequency word (evict.h). The header is
 * a whole cache line so the payload starts where the blob does: 64-byte
 * aligned when the payload is whole cache lines (vector.c pads such a blob to
 * whole lines, which the arena cuts on a line), so the SIMD kernels stream it
 * without split loads; a payload ending inside a line (100 floats) may start
 * on 32 bytes, its blob taking the arena's nearest 32-byte class (a 100-d
 * f32 HNSW node: 608 bytes, not 640). Keys of up to 40
 * bytes stay inline in the seed (layout KEY_INLINE), longer ones follow the
 * payload (layout BLOB). A vector's attribute record (attr.h), when it has
 * one, is a blob of its own (header attr_off): VSETATTR replaces it without
 * moving the vector, which an HNSW node cannot do cheaply.
 *
 * A collection is a named set of vectors with one dimension, one metric and index
 * parameters. A vector sent without a collection name goes to the implicit
 * default collection of its dimension (L2, flat), created on first use and
 * released when it empties. Collections list their members (blob offsets) in
 * chunks of PM_MEMBER_CHUNK_ENTRIES, so an exact scan walks dense arrays and a
 * delete is a swap with the last member.
 */
#ifndef POMAI_ENGINE_VECTOR_H
#define POMAI_ENGINE_VECTOR_H

#include <stdint.h>

#include "shard.h"

#define PM_VEC_HEADER_BYTES 64u
#define PM_VEC_NODE_NONE UINT32_MAX

struct pm_vec_header {
	uint64_t payload_len; /* bytes of vector data */
	uint32_t dim;
	uint8_t dtype;        /* enum pm_dtype */
	uint8_t flags;        /* reserved, 0 */
	uint16_t coll;        /* collection id */
	uint32_t seed;        /* owning seed */
	uint32_t member;      /* position in the collection's member list */
	float norm;           /* L2 norm of the vector */
	uint32_t node;        /* HNSW node, PM_VEC_NODE_NONE if not indexed */
	uint64_t upper_off;   /* HNSW: blob of the links at levels >= 1, 0 if none */
	uint32_t blob_bytes;  /* the size this blob was allocated with */
	uint32_t links0;      /* HNSW: level-0 links (their ids follow the payload) */
	uint16_t lfu;         /* access frequency word (evict.h), as a KV seed's `coll` */
	uint16_t reserved16;  /* zero */
	float qscale;         /* Q8: the code scale (quant.h); 0 for other types */
	uint64_t attr_off;    /* blob of the attribute record (attr.h), 0 if none */
};
_Static_assert(sizeof(struct pm_vec_header) == PM_VEC_HEADER_BYTES, "vector header size");

static inline const float *pm_vec_data(const struct pm_vec_header *h)
{
	return (const float *)(h + 1);
}

/* The payload as bytes: an f32 vector or a non-f32 collection's codes. */
static inline const uint8_t *pm_vec_payload(const struct pm_vec_header *h)
{
	return (const uint8_t *)(h + 1);
}

/* A vector as its blob stores it (a snapshot's copy): the payload and the
 * kept f32, verbatim and back to back (pm_quant_stored_bytes of its
 * collection's parameters), and the header fields that go with them. */
struct pm_vec_stored {
	const uint8_t *payload;
	float norm;
	float qscale;
};

/* ---------------------------------------------------------------- collections */

/* Named collection, or NULL. */
struct pm_collection *pm_coll_find(struct pm_shard *sh, const uint8_t *name, uint32_t nlen);
/* Default collection of a dimension, or NULL. */
struct pm_collection *pm_coll_default(struct pm_shard *sh, uint32_t dim);
/* Create a named collection; creating one that exists with the same parameters
 * is OK (idempotent), with other parameters PM_E_EXISTS. */
enum pm_status pm_coll_create(struct pm_shard *sh, const uint8_t *name, uint32_t nlen,
			      const struct pm_collection_params *p);
/* Drop a named collection and every vector in it. */
/* Drop a named collection: O(1); it is gone for every request at once, and
 * its vectors and graph are freed later by pm_coll_drop_slice. */
enum pm_status pm_coll_drop(struct pm_shard *sh, const uint8_t *name, uint32_t nlen);

/* Free up to `budget` vectors of dropped collection c, then (HNSW) up to the
 * rest of the budget in graph nodes; true once c is gone and its slot free. */
bool pm_coll_drop_slice(struct pm_shard *sh, struct pm_collection *c, uint32_t budget);
/* Fill out[] (PM_COLLECTIONS_MAX entries) with the live collections. */
uint32_t pm_coll_list(const struct pm_shard *sh, struct pm_coll_info *out);
/* Validate (and fill defaults into) collection parameters. */
enum pm_status pm_coll_params_check(struct pm_collection_params *p);

/* Blob offset of member i (i < count). */
static inline uint64_t pm_coll_member(const struct pm_shard *sh, const struct pm_collection *c,
				      uint64_t i)
{
	const uint64_t *dir = pm_at(&sh->arena, c->dir_off);
	const uint64_t *chunk = pm_at(&sh->arena, dir[i / PM_MEMBER_CHUNK_ENTRIES]);
	return chunk[i % PM_MEMBER_CHUNK_ENTRIES];
}

/* ---------------------------------------------------------------- vectors */

/* Put a vector (raw little-endian f32 bytes, possibly unaligned) under key, into
 * the named collection (nlen > 0) or the default one of its dimension. */
enum pm_status pm_vec_put(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			  const uint8_t *name, uint32_t nlen, const uint8_t *vec, uint32_t dim,
			  uint64_t expire_at_ms, uint64_t now_ms);
/* The stored vector of key, its dimension and collection name (len 0: default). */
enum pm_status pm_vec_get(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			  uint64_t now_ms, const struct pm_vec_header **hdr, struct pm_bytes *coll);
enum pm_status pm_vec_del(struct pm_shard *sh, const uint8_t *key, uint32_t klen, uint64_t hash,
			  uint64_t now_ms);

/* pm_vec_put of a vector in its stored form (a snapshot's): stored as it is,
 * not quantised again. */
enum pm_status pm_vec_put_stored(struct pm_shard *sh, const uint8_t *key, uint32_t klen,
				 uint64_t hash, const uint8_t *name, uint32_t nlen, uint32_t dim,
				 const struct pm_vec_stored *st, uint64_t expire_at_ms, uint64_t now_ms);

/* The arena bytes (its size class) of the blob a new vector of a key of klen
 * bytes takes in a collection of params p (checked): what storing it adds to
 * the collection's bytes (a cap check's bound, exact). */
uint64_t pm_vec_blob_bytes(const struct pm_collection_params *p, uint32_t klen);

/* The kept f32 of a vector of c, which re-ranks (after the level-0 links). */
const float *pm_vec_kept(const struct pm_collection *c, const struct pm_vec_header *h);

/* The f32 vector of a stored one, into out (dim floats): the f32 payload or
 * the kept copy when there is one, else the codes decoded (quant.h). */
void pm_vec_f32(const struct pm_collection *c, const struct pm_vec_header *h, float *out);

/* Re-rank (quant.h): hits[0..n) were ranked by codes; give each the exact
 * f32 distance to q (dim floats; qnorm its norm) from the kept f32, order
 * them by (distance, key) and return min(n, k). c must keep f32. */
uint32_t pm_vec_rerank(const struct pm_shard *sh, const struct pm_collection *c, const float *q,
		       float qnorm, struct pm_knn_hit *hits, uint32_t n, uint32_t k);
/* Whether c re-ranks (quant.h), and the candidates a search of k hits in c
 * ranks by codes before the re-rank: max(k, rerank_k), or k when c does not
 * re-rank. A graph search takes at most its beam's width of them. */
static inline bool pm_vec_reranks(const struct pm_collection *c)
{
	return c->params.dtype != PM_DTYPE_F32 && c->params.rerank;
}
uint32_t pm_vec_rerank_candidates(const struct pm_collection *c, uint32_t k);

/* Restore a node of HNSW collection c from a snapshot: a blob laid out as
 * pm_vec_put lays it out, its payload and header fields from st, and —
 * unless klen is 0 (a tombstone: no key, no seed, not a member) — a new seed
 * for key (which must not be in the shard) with its expiry. The caller then
 * hands the blob at *off to pm_hnsw_restore_node. */
enum pm_status pm_vec_restore(struct pm_shard *sh, struct pm_collection *c, const uint8_t *key,
			      uint32_t klen, uint64_t hash, const struct pm_vec_stored *st,
			      uint64_t expire_at_ms, uint64_t now_ms, uint64_t *off);

/* ---------------------------------------------------------------- attributes (attr.h) */

/* pm_vec_put that also gives the vector the attribute record attr[0, alen)
 * (replacing the one it had); PM_E_ATTR for a bad record, and then, as for
 * any refusal, nothing changed. */
enum pm_status pm_vec_put_attr(struct pm_shard *sh, const uint8_t *key, uint32_t klen,
			       uint64_t hash, const uint8_t *name, uint32_t nlen, const uint8_t *vec,
			       uint32_t dim, const uint8_t *attr, uint32_t alen,
			       uint64_t expire_at_ms, uint64_t now_ms);
/* VSETATTR: replace the record of key's vector (the empty record, one byte
 * 0, removes it); the vector and its place in the index stay. */
enum pm_status pm_vec_set_attr(struct pm_shard *sh, const uint8_t *key, uint32_t klen,
			       uint64_t hash, const uint8_t *attr, uint32_t alen, uint64_t now_ms);
/* The record of a vector (header hdr), NULL if it has none. */
static inline const uint8_t *pm_vec_attr(const struct pm_shard *sh, const struct pm_vec_header *hdr)
{
	return hdr->attr_off ? (const uint8_t *)pm_at(&sh->arena, hdr->attr_off) : NULL;
}
/* Give the vector blob at off (collection c) the valid record attr[0, alen)
 * (snapshot restore); PM_E_NOMEM leaves it without. */
enum pm_status pm_vec_attr_restore(struct pm_shard *sh, struct pm_collection *c, uint64_t off,
				   const uint8_t *attr, uint32_t alen);
/* c's attribute statistics, NULL when it keeps none. */
const struct pm_attr_stats *pm_coll_attr_stats(const struct pm_shard *sh,
					       const struct pm_collection *c);

/* Remove a vector seed's blob and membership (the seed slot itself stays). */
void pm_vec_unlink(struct pm_shard *sh, uint32_t idx);

/* Copy raw little-endian f32 bytes into dst, refusing NaN and infinities. */
enum pm_status pm_vec_load(float *dst, const uint8_t *src, uint32_t dim);

#endif
