/* SPDX-License-Identifier: MIT
 *
 * sync.c — libpomai's synchronous calls, built on the pipelined ones: submit
 * one request whose callback copies the result into the caller's buffers, then
 * poll until that callback has run. Every request ends by its deadline, so the
 * wait is bounded by timeout_ms * (2^(retries+1) - 1) plus jitter (UDP) or
 * timeout_ms * (1 + retries) (TCP).
 */
#include <string.h>

#include "client_impl.h"

struct sync_call {
	bool done;
	enum pm_client_status status;
	bool removed;
	void *buf;                      /* GET value, INFO text */
	size_t cap;
	size_t *len;
	struct pm_client_vector *vout;  /* VGET */
};

static enum pm_client_status copy_vector(struct pm_client_vector *out,
					 const struct pm_client_result *r)
{
	out->dim = r->dim;
	out->dtype = r->dtype;
	out->collection_len = r->collection_len;
	if (r->collection_len)
		memcpy(out->collection, r->collection, r->collection_len);
	out->attr_len = r->attr_len <= sizeof out->attr ? r->attr_len : 0;
	if (out->attr_len)
		memcpy(out->attr, r->attr, out->attr_len);
	if (r->dim > out->cap)
		return PM_CLIENT_E_NOSPACE;
	memcpy(out->vec, r->vec, (size_t)r->dim * sizeof(float));
	return PM_CLIENT_OK;
}

static void sync_cb(void *arg, const struct pm_client_result *r)
{
	struct sync_call *call = arg;
	call->done = true;
	call->status = r->status;
	call->removed = r->removed;
	if (r->status != PM_CLIENT_OK)
		return;
	if (r->op == PM_CLIENT_INFO) { /* collected in the caller's buffer already */
		if (call->len)
			*call->len = r->info ? r->info->len : 0;
	} else if (r->op == PM_CLIENT_GET) {
		if (call->len)
			*call->len = r->vlen;
		if (r->vlen > call->cap)
			call->status = PM_CLIENT_E_NOSPACE;
		else if (r->vlen)
			memcpy(call->buf, r->value, r->vlen);
	} else if (r->op == PM_CLIENT_VGET) {
		call->status = copy_vector(call->vout, r);
	}
}

static enum pm_client_status run(struct pm_client *c, struct pm_client_req *req,
				 struct sync_call *call)
{
	if (c == NULL)
		return PM_CLIENT_E_ARG;
	if (c->in_cb)
		return PM_CLIENT_E_WOULD_BLOCK;
	req->cb = sync_cb;
	req->arg = call;
	enum pm_client_status st = pm_client_submit(c, req, NULL);
	if (st != PM_CLIENT_OK)
		return st;
	pm_client_flush(c);
	while (!call->done)
		(void)pm_client_poll(c, PMC_POLL_SLICE_MS);
	return call->status;
}

/* A C string as a byte run; too long a string keeps its length so the request
 * check reports it. */
static uint32_t cstr_len(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static uint32_t len32(size_t n)
{
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

enum pm_client_status pm_client_set(struct pm_client *c, const void *key, size_t klen,
				    const void *val, size_t vlen, uint64_t ttl_ms)
{
	struct pm_client_req r = { .op = PM_CLIENT_SET, .key = key, .klen = len32(klen),
				   .value = val, .vlen = len32(vlen), .ttl_ms = ttl_ms };
	struct sync_call call = { 0 };
	return run(c, &r, &call);
}

enum pm_client_status pm_client_get(struct pm_client *c, const void *key, size_t klen,
				    void *buf, size_t cap, size_t *vlen)
{
	struct pm_client_req r = { .op = PM_CLIENT_GET, .key = key, .klen = len32(klen) };
	struct sync_call call = { .buf = buf, .cap = buf ? cap : 0, .len = vlen };
	return run(c, &r, &call);
}

static enum pm_client_status removing(struct pm_client *c, struct pm_client_req *r,
				      bool *removed)
{
	struct sync_call call = { 0 };
	enum pm_client_status st = run(c, r, &call);
	if (removed)
		*removed = st == PM_CLIENT_OK && call.removed;
	return st;
}

enum pm_client_status pm_client_del(struct pm_client *c, const void *key, size_t klen,
				    bool *removed)
{
	struct pm_client_req r = { .op = PM_CLIENT_DEL, .key = key, .klen = len32(klen) };
	return removing(c, &r, removed);
}

enum pm_client_status pm_client_vadd(struct pm_client *c, const void *key, size_t klen,
				     const float *vec, uint32_t dim, const char *collection,
				     uint64_t ttl_ms)
{
	struct pm_client_req r = { .op = PM_CLIENT_VADD, .key = key, .klen = len32(klen),
				   .vec = vec, .dim = dim, .name = collection,
				   .name_len = cstr_len(collection), .ttl_ms = ttl_ms };
	struct sync_call call = { 0 };
	return run(c, &r, &call);
}

enum pm_client_status pm_client_vadd_attr(struct pm_client *c, const void *key, size_t klen,
					  const float *vec, uint32_t dim, const char *collection,
					  uint64_t ttl_ms, const struct pm_client_attr *attr)
{
	struct pm_client_req r = { .op = PM_CLIENT_VADD, .key = key, .klen = len32(klen),
				   .vec = vec, .dim = dim, .name = collection,
				   .name_len = cstr_len(collection), .ttl_ms = ttl_ms,
				   .attr = attr ? attr->buf : NULL, .attr_len = attr ? attr->len : 0 };
	struct sync_call call = { 0 };
	return run(c, &r, &call);
}

enum pm_client_status pm_client_vsetattr(struct pm_client *c, const void *key, size_t klen,
					 const struct pm_client_attr *attr)
{
	if (attr == NULL)
		return PM_CLIENT_E_ARG;
	struct pm_client_req r = { .op = PM_CLIENT_VSETATTR, .key = key, .klen = len32(klen),
				   .attr = attr->buf, .attr_len = attr->len };
	struct sync_call call = { 0 };
	return run(c, &r, &call);
}

enum pm_client_status pm_client_vget(struct pm_client *c, const void *key, size_t klen,
				     struct pm_client_vector *out)
{
	if (out == NULL || (out->vec == NULL && out->cap != 0))
		return PM_CLIENT_E_ARG;
	struct pm_client_req r = { .op = PM_CLIENT_VGET, .key = key, .klen = len32(klen) };
	struct sync_call call = { .vout = out };
	return run(c, &r, &call);
}

enum pm_client_status pm_client_vdel(struct pm_client *c, const void *key, size_t klen,
				     bool *removed)
{
	struct pm_client_req r = { .op = PM_CLIENT_VDEL, .key = key, .klen = len32(klen) };
	return removing(c, &r, removed);
}

enum pm_client_status pm_client_knn(struct pm_client *c, const float *vec, uint32_t dim,
				    const struct pm_client_knn_opts *opts,
				    struct pm_client_knn_result *res)
{
	if (opts == NULL)
		return PM_CLIENT_E_ARG;
	struct pm_client_req r = { .op = PM_CLIENT_KNN, .vec = vec, .dim = dim,
				   .k = opts->k, .ef = opts->ef, .exact = opts->exact,
				   .name = opts->collection,
				   .name_len = cstr_len(opts->collection), .knn = res,
				   .filter = opts->filter && *opts->filter ? opts->filter : NULL };
	struct sync_call call = { 0 };
	return run(c, &r, &call);
}

enum pm_client_status pm_client_vadd_many(struct pm_client *c, const struct pm_client_item *items,
					  uint32_t n, const char *collection, uint64_t ttl_ms,
					  enum pm_client_status *status)
{
	struct pm_client_batch_result batch = { .status = status };
	struct pm_client_req r = { .op = PM_CLIENT_VADD_MANY, .items = items, .nitems = n,
				   .name = collection, .name_len = cstr_len(collection),
				   .ttl_ms = ttl_ms, .batch = &batch };
	struct sync_call call = { 0 };
	return run(c, &r, &call);
}

enum pm_client_status pm_client_knn_many(struct pm_client *c, const struct pm_client_item *queries,
					 uint32_t n, const struct pm_client_knn_opts *opts,
					 struct pm_client_knn_result *res, uint32_t *query)
{
	if (opts == NULL)
		return PM_CLIENT_E_ARG;
	struct pm_client_batch_result batch = { .query = query };
	struct pm_client_req r = { .op = PM_CLIENT_KNN_MANY, .items = queries, .nitems = n,
				   .k = opts->k, .ef = opts->ef, .exact = opts->exact,
				   .name = opts->collection,
				   .name_len = cstr_len(opts->collection), .knn = res,
				   .filter = opts->filter && *opts->filter ? opts->filter : NULL,
				   .batch = &batch };
	struct sync_call call = { 0 };
	return run(c, &r, &call);
}

enum pm_client_status pm_client_vrange(struct pm_client *c, const float *vec, uint32_t dim,
				       float radius, const struct pm_client_knn_opts *opts,
				       struct pm_client_knn_result *res, bool *truncated)
{
	if (opts == NULL)
		return PM_CLIENT_E_ARG;
	struct pm_client_batch_result batch = { 0 };
	struct pm_client_req r = { .op = PM_CLIENT_RANGE, .vec = vec, .dim = dim,
				   .radius = radius, .k = opts->k, .ef = opts->ef,
				   .exact = opts->exact, .name = opts->collection,
				   .name_len = cstr_len(opts->collection), .knn = res,
				   .filter = opts->filter && *opts->filter ? opts->filter : NULL,
				   .batch = &batch };
	struct sync_call call = { 0 };
	enum pm_client_status st = run(c, &r, &call);
	if (truncated)
		*truncated = batch.truncated;
	return st;
}

enum pm_client_status pm_client_collection_create(struct pm_client *c, const char *name,
						  const struct pm_client_coll_params *params)
{
	if (params == NULL)
		return PM_CLIENT_E_ARG;
	struct pm_client_req r = { .op = PM_CLIENT_CCREATE, .name = name,
				   .name_len = cstr_len(name), .params = *params };
	struct sync_call call = { 0 };
	return run(c, &r, &call);
}

enum pm_client_status pm_client_collection_drop(struct pm_client *c, const char *name,
						bool *removed)
{
	struct pm_client_req r = { .op = PM_CLIENT_CDROP, .name = name,
				   .name_len = cstr_len(name) };
	return removing(c, &r, removed);
}

enum pm_client_status pm_client_collection_list(struct pm_client *c,
						struct pm_client_coll_list *out)
{
	struct pm_client_req r = { .op = PM_CLIENT_CLIST, .colls = out };
	struct sync_call call = { 0 };
	return run(c, &r, &call);
}

enum pm_client_status pm_client_info(struct pm_client *c, const char *section, char *buf,
				     size_t cap, size_t *len)
{
	struct pm_client_text text = { .buf = buf, .cap = buf ? cap : 0 };
	struct pm_client_req r = { .op = PM_CLIENT_INFO, .name = section,
				   .name_len = cstr_len(section), .info = &text };
	struct sync_call call = { .len = len };
	return run(c, &r, &call);
}

enum pm_client_status pm_client_snapshot(struct pm_client *c)
{
	struct pm_client_req r = { .op = PM_CLIENT_SNAPSHOT };
	struct sync_call call = { 0 };
	return run(c, &r, &call);
}
