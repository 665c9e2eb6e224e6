# SPDX-License-Identifier: MIT
"""The C declarations of libpomai (client/pomai.h) and the loaded library.

cffi's ABI mode: the declarations below are pomai.h's, copied; cffi lays the
structs out from them with the C rules, so they must match the header field
for field. tests/test_layout.py compiles a C program against pomai.h that
prints every size, offset and enum value declared here and compares them, so
a struct that grows in pomai.h fails the suite until this copy follows.

Only what the Python layer calls is declared (no memif: it lives in a
separate static library).
"""
import ctypes.util
import os

import cffi

CDEF = r"""
/* wire limits */
#define PM_CLIENT_KEY_BYTES_MAX 1024
#define PM_CLIENT_VALUE_BYTES_MAX 61440
#define PM_CLIENT_DIM_MAX 4096
#define PM_CLIENT_K_MAX 1024
#define PM_CLIENT_EF_MAX 4096
#define PM_CLIENT_COLLECTION_NAME_BYTES_MAX 64
#define PM_CLIENT_INFO_SECTION_BYTES_MAX 32
#define PM_CLIENT_INFO_TEXT_BYTES_MAX 8192
#define PM_CLIENT_INFO_REPLY_BYTES_MAX 286720
#define PM_CLIENT_COLLECTIONS_MAX 256
#define PM_CLIENT_ATTR_BYTES_MAX 512
#define PM_CLIENT_FILTER_BYTES_MAX 1024
#define PM_CLIENT_BATCH_ITEMS_MAX 512
#define PM_CLIENT_RERANK_K_MAX 1024
#define PM_CLIENT_SHARDS_MAX 1024
#define PM_CLIENT_FRAME_BYTES_DEFAULT 8192

enum pm_client_transport { PM_CLIENT_UDP = 0, PM_CLIENT_TCP = 1, PM_CLIENT_MEMIF = 2 };
enum pm_client_read_from { PM_CLIENT_READ_PRIMARY = 0, PM_CLIENT_READ_REPLICA = 1 };

struct pm_client_config {
	const char *host;
	uint32_t base_port;
	uint32_t shards;
	enum pm_client_transport transport;
	uint32_t tcp_port;
	uint32_t timeout_ms;
	uint32_t retries;
	uint32_t max_in_flight;
	uint32_t frame_bytes;
	bool cluster;
	uint8_t read_from;
	uint32_t user;
	uint8_t key[32];
	bool knn_via_server;
	uint32_t pack_bytes;
	uint32_t pack_flush_us;
	uint32_t spin_us;
};

enum pm_client_status {
	PM_CLIENT_OK = 0,
	PM_CLIENT_NOT_FOUND,
	PM_CLIENT_E_WRONGTYPE,
	PM_CLIENT_E_SERVER_NOMEM,
	PM_CLIENT_E_EXISTS,
	PM_CLIENT_E_KEY_LEN,
	PM_CLIENT_E_VALUE_LEN,
	PM_CLIENT_E_DIM,
	PM_CLIENT_E_NAN,
	PM_CLIENT_E_ZERO_VECTOR,
	PM_CLIENT_E_K,
	PM_CLIENT_E_EF,
	PM_CLIENT_E_TTL,
	PM_CLIENT_E_COLLECTION_NAME,
	PM_CLIENT_E_COLLECTIONS_FULL,
	PM_CLIENT_E_PARAM,
	PM_CLIENT_E_DTYPE,
	PM_CLIENT_E_FRAME,
	PM_CLIENT_E_SERVER_TIMEOUT,
	PM_CLIENT_E_BUSY,
	PM_CLIENT_E_DISK_FULL,
	PM_CLIENT_E_LOG_FAILED,
	PM_CLIENT_E_SERVER,
	PM_CLIENT_E_TIMEOUT,
	PM_CLIENT_E_CONNECTION,
	PM_CLIENT_E_CONFIG,
	PM_CLIENT_E_ARG,
	PM_CLIENT_E_NOSPACE,
	PM_CLIENT_E_PROTOCOL,
	PM_CLIENT_E_WOULD_BLOCK,
	PM_CLIENT_E_ALLOC,
	PM_CLIENT_E_THROTTLED,
	PM_CLIENT_E_QUOTA,
	PM_CLIENT_E_WORK_LIMIT,
	PM_CLIENT_E_READONLY,
	PM_CLIENT_E_NOREPLICAS,
	PM_CLIENT_E_MOVED,
	PM_CLIENT_E_FILTER,
	PM_CLIENT_E_ATTR,
	PM_CLIENT_E_BATCH,
	PM_CLIENT_E_RETRY,
	PM_CLIENT_E_AUTH,
	PM_CLIENT_E_NOPERM,
	PM_CLIENT_STATUS_COUNT
};

const char *pm_client_strerror(enum pm_client_status st);
const char *pm_client_status_name(enum pm_client_status st);

enum pm_client_op {
	PM_CLIENT_SET = 1, PM_CLIENT_GET, PM_CLIENT_DEL, PM_CLIENT_INFO, PM_CLIENT_VADD,
	PM_CLIENT_VGET, PM_CLIENT_VDEL, PM_CLIENT_KNN, PM_CLIENT_CCREATE, PM_CLIENT_CDROP,
	PM_CLIENT_CLIST, PM_CLIENT_SNAPSHOT, PM_CLIENT_VSETATTR = 14,
	PM_CLIENT_VADD_MANY = 15, PM_CLIENT_KNN_MANY, PM_CLIENT_RANGE
};

struct pm_client_item {
	const void *key;
	uint32_t klen;
	const float *vec;
	uint32_t dim;
	const void *attr;
	uint32_t attr_len;
};

struct pm_client_batch_result {
	enum pm_client_status *status;
	uint32_t *query;
	bool truncated;
};

enum pm_client_metric { PM_CLIENT_L2 = 0, PM_CLIENT_IP = 1, PM_CLIENT_COSINE = 2 };
enum pm_client_index { PM_CLIENT_FLAT = 0, PM_CLIENT_HNSW = 1 };
enum pm_client_dtype { PM_CLIENT_F32 = 0, PM_CLIENT_F16 = 1, PM_CLIENT_Q8 = 2, PM_CLIENT_BIN = 3 };

struct pm_client_coll_params {
	uint32_t dim;
	uint8_t metric;
	uint8_t index;
	uint16_t hnsw_m;
	uint32_t ef_construction;
	uint32_t ef_search;
	bool evictable;
	uint8_t dtype;
	bool rerank;
	uint32_t rerank_k;
};

struct pm_client_coll_info {
	uint8_t name[64];
	uint32_t name_len;
	struct pm_client_coll_params params;
	uint64_t count;
	uint64_t bytes;
};

struct pm_client_coll_list {
	struct pm_client_coll_info *items;
	uint32_t cap;
	uint32_t count;
};

struct pm_client_hit {
	const uint8_t *key;
	uint32_t klen;
	float dist;
};

struct pm_client_knn_result {
	struct pm_client_hit *hits;
	uint32_t hits_cap;
	uint8_t *keys;
	size_t keys_cap;
	uint32_t count;
	size_t keys_used;
};

struct pm_client_text {
	char *buf;
	size_t cap;
	size_t len;
};

struct pm_client_vector {
	float *vec;
	uint32_t cap;
	uint32_t dim;
	uint8_t collection[64];
	uint32_t collection_len;
	uint8_t dtype;
	uint8_t attr[512];
	uint32_t attr_len;
};

struct pm_client_result {
	enum pm_client_status status;
	enum pm_client_op op;
	uint64_t id;
	uint32_t attempts;
	const uint8_t *value;
	uint32_t vlen;
	const float *vec;
	uint32_t dim;
	const uint8_t *collection;
	uint32_t collection_len;
	uint8_t dtype;
	bool removed;
	struct pm_client_knn_result *knn;
	struct pm_client_coll_list *colls;
	struct pm_client_text *info;
	uint32_t retry_ms;
	const uint8_t *attr;
	uint32_t attr_len;
};

typedef void (*pm_client_cb)(void *arg, const struct pm_client_result *res);

struct pm_client_req {
	enum pm_client_op op;
	const void *key;
	uint32_t klen;
	const void *value;
	uint32_t vlen;
	const float *vec;
	uint32_t dim;
	const void *name;
	uint32_t name_len;
	uint64_t ttl_ms;
	uint32_t k;
	uint32_t ef;
	bool exact;
	struct pm_client_coll_params params;
	struct pm_client_knn_result *knn;
	struct pm_client_coll_list *colls;
	struct pm_client_text *info;
	pm_client_cb cb;
	void *arg;
	const void *attr;
	uint32_t attr_len;
	const char *filter;
	const struct pm_client_item *items;
	uint32_t nitems;
	float radius;
	struct pm_client_batch_result *batch;
};

struct pm_client;

struct pm_client_stats {
	uint64_t requests;
	uint64_t completed;
	uint64_t datagrams_out;
	uint64_t frames_out;
	uint64_t frames_in;
	uint64_t resends;
	uint64_t timeouts;
	uint64_t stale;
	uint64_t page_gaps;
	uint64_t moved;
	uint64_t map_refreshes;
	uint64_t maps_stale;
	uint64_t cookies;
	uint64_t spin_answered;
};

void pm_client_config_default(struct pm_client_config *cfg);
enum pm_client_status pm_client_config_check(const struct pm_client_config *cfg,
					     const char **why);
enum pm_client_status pm_client_open(const struct pm_client_config *cfg, struct pm_client **out);
void pm_client_close(struct pm_client *c);
enum pm_client_status pm_client_submit(struct pm_client *c, const struct pm_client_req *req,
				       uint64_t *id);
void pm_client_flush(struct pm_client *c);
uint32_t pm_client_poll(struct pm_client *c, uint32_t wait_ms);
void pm_client_drain(struct pm_client *c);
uint32_t pm_client_in_flight(const struct pm_client *c);
void pm_client_stats(const struct pm_client *c, struct pm_client_stats *out);
uint32_t pm_client_retry_ms(const struct pm_client *c);
int pm_client_primary(const struct pm_client *c, char *out, size_t cap);
uint32_t pm_client_shard_of(const struct pm_client *c, const void *key, size_t klen);
uint64_t pm_client_map_epoch(const struct pm_client *c);

enum pm_client_status pm_client_set(struct pm_client *c, const void *key, size_t klen,
				    const void *val, size_t vlen, uint64_t ttl_ms);
enum pm_client_status pm_client_get(struct pm_client *c, const void *key, size_t klen,
				    void *buf, size_t cap, size_t *vlen);
enum pm_client_status pm_client_del(struct pm_client *c, const void *key, size_t klen,
				    bool *removed);
enum pm_client_status pm_client_vadd(struct pm_client *c, const void *key, size_t klen,
				     const float *vec, uint32_t dim, const char *collection,
				     uint64_t ttl_ms);
enum pm_client_status pm_client_vget(struct pm_client *c, const void *key, size_t klen,
				     struct pm_client_vector *out);
enum pm_client_status pm_client_vdel(struct pm_client *c, const void *key, size_t klen,
				     bool *removed);

struct pm_client_knn_opts {
	uint32_t k;
	uint32_t ef;
	bool exact;
	const char *collection;
	const char *filter;
};

enum pm_client_status pm_client_knn(struct pm_client *c, const float *vec, uint32_t dim,
				    const struct pm_client_knn_opts *opts,
				    struct pm_client_knn_result *res);

struct pm_client_attr {
	uint8_t buf[512];
	uint32_t len;
};
void pm_client_attr_init(struct pm_client_attr *a);
enum pm_client_status pm_client_attr_num(struct pm_client_attr *a, const char *name, double v);
enum pm_client_status pm_client_attr_tag(struct pm_client_attr *a, const char *name,
					 const void *tag, size_t tag_len);
struct pm_client_attr_field {
	const char *name;
	uint32_t name_len;
	bool is_tag;
	double num;
	const uint8_t *tag;
	uint32_t tag_len;
};
bool pm_client_attr_next(const uint8_t *rec, uint32_t len, uint32_t *pos,
			 struct pm_client_attr_field *f);
enum pm_client_status pm_client_vadd_attr(struct pm_client *c, const void *key, size_t klen,
					  const float *vec, uint32_t dim, const char *collection,
					  uint64_t ttl_ms, const struct pm_client_attr *attr);
enum pm_client_status pm_client_vsetattr(struct pm_client *c, const void *key, size_t klen,
					 const struct pm_client_attr *attr);
enum pm_client_status pm_client_collection_create(struct pm_client *c, const char *name,
						  const struct pm_client_coll_params *params);
enum pm_client_status pm_client_collection_drop(struct pm_client *c, const char *name,
						bool *removed);
enum pm_client_status pm_client_collection_list(struct pm_client *c,
						struct pm_client_coll_list *out);
enum pm_client_status pm_client_info(struct pm_client *c, const char *section, char *buf,
				     size_t cap, size_t *len);
enum pm_client_status pm_client_vadd_many(struct pm_client *c, const struct pm_client_item *items,
					  uint32_t n, const char *collection, uint64_t ttl_ms,
					  enum pm_client_status *status);
enum pm_client_status pm_client_knn_many(struct pm_client *c, const struct pm_client_item *queries,
					 uint32_t n, const struct pm_client_knn_opts *opts,
					 struct pm_client_knn_result *res, uint32_t *query);
enum pm_client_status pm_client_vrange(struct pm_client *c, const float *vec, uint32_t dim,
				       float radius, const struct pm_client_knn_opts *opts,
				       struct pm_client_knn_result *res, bool *truncated);
enum pm_client_status pm_client_snapshot(struct pm_client *c);
"""

# Where libpomai.so is looked for when POMAI_LIBRARY does not name it: the
# dynamic linker's search (ldconfig's cache: /usr/lib/<triplet> for the
# Debian package), then meson's default prefix, whose lib directory
# ldconfig may not know.
LIBRARY_NAMES = ("libpomai.so.0", "libpomai.so")
LIBRARY_DIRS = ("/usr/local/lib/x86_64-linux-gnu", "/usr/local/lib")

ffi = cffi.FFI()
ffi.cdef(CDEF)


def _load():
    tried = []
    path = os.environ.get("POMAI_LIBRARY")
    candidates = [path] if path else []
    found = ctypes.util.find_library("pomai")
    candidates += [found] if found else []
    candidates += list(LIBRARY_NAMES)
    candidates += [os.path.join(d, n) for d in LIBRARY_DIRS for n in LIBRARY_NAMES]
    for cand in candidates:
        try:
            return ffi.dlopen(cand)
        except OSError as e:
            tried.append(f"{cand}: {e}")
            if path:  # the user named it: say why it failed, do not guess on
                break
    raise ImportError("pomai: libpomai.so not found (install libpomai, or set "
                      "POMAI_LIBRARY to its path); tried:\n  " + "\n  ".join(tried))


lib = _load()
