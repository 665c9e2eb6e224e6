/* SPDX-License-Identifier: MIT
 *
 * etcd_bodies.h — answers etcd 3.4.23's v3 gateway gave, byte for byte
 * (transcripts in /work/notes/cluster-plan-evidence, cluster-plan.md §2),
 * for tests/test_etcd.c's parser tests and the fuzz target's seeds
 * (tests/fuzz/make_seeds.c). The requests that drew them are in the
 * comments; keys and values are base64 ("L3BvbWFpL2MxL25vZGVzL24x" is
 * "/pomai/c1/nodes/n1").
 */
#ifndef POMAI_TESTS_ETCD_BODIES_H
#define POMAI_TESTS_ETCD_BODIES_H

/* Every answer's header, with its store revision. */
#define EB_HDR(rev)                                                                         \
	"{\"cluster_id\":\"15118495548433857066\",\"member_id\":\"13668033151171901709\","  \
	"\"revision\":\"" rev "\",\"raft_term\":\"2\"}"

/* ---------------------------------------------------------------- kv [1] */

/* put {"key":"…nodes/n1","value":"addr=127.0.0.1"} */
#define EB_PUT "{\"header\":" EB_HDR("4") "}"
/* put of n2 again with prev_kv */
#define EB_PUT_PREV                                                                         \
	"{\"header\":" EB_HDR("6") ",\"prev_kv\":{\"key\":\"L3BvbWFpL2MxL25vZGVzL24y\","    \
	"\"create_revision\":\"5\",\"mod_revision\":\"5\",\"version\":\"1\",\"value\":\"djI=\"}}"
/* range of …nodes/n1 */
#define EB_RANGE_ONE                                                                        \
	"{\"header\":" EB_HDR("6") ",\"kvs\":[{\"key\":\"L3BvbWFpL2MxL25vZGVzL24x\","        \
	"\"create_revision\":\"4\",\"mod_revision\":\"4\",\"version\":\"1\","               \
	"\"value\":\"YWRkcj0xMjcuMC4wLjE=\"}],\"count\":\"1\"}"
/* range of the prefix …nodes/ */
#define EB_RANGE_PREFIX                                                                     \
	"{\"header\":" EB_HDR("6") ",\"kvs\":[{\"key\":\"L3BvbWFpL2MxL25vZGVzL24x\","        \
	"\"create_revision\":\"4\",\"mod_revision\":\"4\",\"version\":\"1\","               \
	"\"value\":\"YWRkcj0xMjcuMC4wLjE=\"},{\"key\":\"L3BvbWFpL2MxL25vZGVzL24y\","         \
	"\"create_revision\":\"5\",\"mod_revision\":\"6\",\"version\":\"2\","               \
	"\"value\":\"djJi\"}],\"count\":\"2\"}"
/* the same with keys_only: no values */
#define EB_RANGE_KEYS_ONLY                                                                  \
	"{\"header\":" EB_HDR("6") ",\"kvs\":[{\"key\":\"L3BvbWFpL2MxL25vZGVzL24x\","        \
	"\"create_revision\":\"4\",\"mod_revision\":\"4\",\"version\":\"1\"},"              \
	"{\"key\":\"L3BvbWFpL2MxL25vZGVzL24y\",\"create_revision\":\"5\","                  \
	"\"mod_revision\":\"6\",\"version\":\"2\"}],\"count\":\"2\"}"
/* the same with count_only: a count, no kvs */
#define EB_RANGE_COUNT_ONLY "{\"header\":" EB_HDR("6") ",\"count\":\"2\"}"
/* range of a key that is not there: no kvs, no count */
#define EB_RANGE_NONE "{\"header\":" EB_HDR("6") "}"
/* deleterange of …nodes/n2 with prev_kv */
#define EB_DELETE_PREV                                                                      \
	"{\"header\":" EB_HDR("7") ",\"deleted\":\"1\",\"prev_kvs\":[{\"key\":"             \
	"\"L3BvbWFpL2MxL25vZGVzL24y\",\"create_revision\":\"5\",\"mod_revision\":\"6\","     \
	"\"version\":\"2\",\"value\":\"djJi\"}]}"
/* the same again: nothing deleted, no "deleted" */
#define EB_DELETE_NONE "{\"header\":" EB_HDR("7") "}"
/* deleterange of the prefix */
#define EB_DELETE_PREFIX "{\"header\":" EB_HDR("8") ",\"deleted\":\"1\"}"

/* ---------------------------------------------------------------- leases [2] */

/* grant {"TTL":5} */
#define EB_GRANT "{\"header\":" EB_HDR("8") ",\"ID\":\"4111120489558866451\",\"TTL\":\"5\"}"
/* grant {"TTL":1}: raised to etcd's minimum */
#define EB_GRANT_MIN "{\"header\":" EB_HDR("8") ",\"ID\":\"4111120489558866455\",\"TTL\":\"2\"}"
/* grant {"TTL":5,"ID":7001} again: HTTP 412 */
#define EB_GRANT_EXISTS                                                                     \
	"{\"error\":\"etcdserver: lease already exists\",\"message\":\"etcdserver: lease "  \
	"already exists\",\"code\":9}"
/* keepalive {"ID":7001}: HTTP 200, chunked, a trailing newline */
#define EB_KEEPALIVE                                                                        \
	"{\"result\":{\"header\":" EB_HDR("9") ",\"ID\":\"7001\",\"TTL\":\"5\"}}\n"
/* keepalive of 7001 once revoked: HTTP 200 without a TTL */
#define EB_KEEPALIVE_DEAD "{\"result\":{\"header\":" EB_HDR("10") ",\"ID\":\"7001\"}}\n"
/* revoke {"ID":7001} */
#define EB_REVOKE "{\"header\":" EB_HDR("10") "}"
/* revoke / put / txn naming a dead lease: HTTP 404 */
#define EB_LEASE_NOT_FOUND                                                                  \
	"{\"error\":\"etcdserver: requested lease not found\",\"message\":\"etcdserver: "   \
	"requested lease not found\",\"code\":5}"
/* grant {"TTL":9999999999}: HTTP 400 */
#define EB_TTL_TOO_LARGE                                                                    \
	"{\"error\":\"etcdserver: too large lease TTL\",\"message\":\"etcdserver: too "     \
	"large lease TTL\",\"code\":11}"
/* a keepalive's bad body: HTTP 500 [3] */
#define EB_STREAM_EOF "{\"error\":\"unexpected EOF\",\"message\":\"unexpected EOF\",\"code\":2}"

/* ---------------------------------------------------------------- txn [4] [5] */

/* A campaign for …sets/s1/leader (CREATE == 0; put under lease A; failure:
 * range) that won. */
#define EB_TXN_ELECT_WON                                                                    \
	"{\"header\":" EB_HDR("11") ",\"succeeded\":true,\"responses\":[{\"response_put\":" \
	"{\"header\":{\"revision\":\"11\"}}}]}"
/* The same by lease B: failed, no "succeeded"; the failure branch's range
 * hands back the holder. */
#define EB_TXN_ELECT_LOST                                                                   \
	"{\"header\":" EB_HDR("11") ",\"responses\":[{\"response_range\":{\"header\":"      \
	"{\"revision\":\"11\"},\"kvs\":[{\"key\":\"L3BvbWFpL2MxL3NldHMvczEvbGVhZGVy\","      \
	"\"create_revision\":\"11\",\"mod_revision\":\"11\",\"version\":\"1\","             \
	"\"value\":\"bm9kZT1uMSBhZGRyPTEyNy4wLjAuMTo3MDAw\","                               \
	"\"lease\":\"4111120489558866473\"}],\"count\":\"1\"}}]}"
/* A failed txn whose failure branch is empty: the header alone. */
#define EB_TXN_FAILED_EMPTY "{\"header\":" EB_HDR("11") "}"
/* The slot map updated with MOD == 12 (success: put). */
#define EB_TXN_MAP_UPDATED                                                                  \
	"{\"header\":" EB_HDR("13") ",\"succeeded\":true,\"responses\":[{\"response_put\":" \
	"{\"header\":{\"revision\":\"13\"}}}]}"
/* A second writer that read 12: failed, the current map in the same round
 * trip. */
#define EB_TXN_MAP_CONFLICT                                                                 \
	"{\"header\":" EB_HDR("13") ",\"responses\":[{\"response_range\":{\"header\":"      \
	"{\"revision\":\"13\"},\"kvs\":[{\"key\":\"L3BvbWFpL2MxL3Nsb3RtYXA=\","              \
	"\"create_revision\":\"12\",\"mod_revision\":\"13\",\"version\":\"2\","             \
	"\"value\":\"ZXBvY2g9Mg==\"}],\"count\":\"1\"}}]}"
/* A VALUE compare that held; success: a keys_only range. */
#define EB_TXN_VALUE_RANGE                                                                  \
	"{\"header\":" EB_HDR("14") ",\"succeeded\":true,\"responses\":[{\"response_range\":" \
	"{\"header\":{\"revision\":\"14\"},\"kvs\":[{\"key\":\"L3BvbWFpL2MxL3Nsb3RtYXA=\","  \
	"\"create_revision\":\"12\",\"mod_revision\":\"14\",\"version\":\"3\"}],"           \
	"\"count\":\"1\"}}]}"
/* Two puts of one key in a txn: HTTP 400 [9] */
#define EB_TXN_DUPLICATE                                                                    \
	"{\"error\":\"etcdserver: duplicate key given in txn request\",\"message\":"        \
	"\"etcdserver: duplicate key given in txn request\",\"code\":3}"

/* ---------------------------------------------------------------- other errors [9] [9b] */

#define EB_BAD_BASE64                                                                       \
	"{\"error\":\"illegal base64 data at input byte 3\",\"message\":\"illegal base64 "  \
	"data at input byte 3\",\"code\":3}"
#define EB_KEY_MISSING                                                                      \
	"{\"error\":\"etcdserver: key is not provided\",\"message\":\"etcdserver: key is "  \
	"not provided\",\"code\":3}"
#define EB_TRUNCATED "{\"error\":\"unexpected EOF\",\"message\":\"unexpected EOF\",\"code\":3}"
#define EB_WRONG_TYPE                                                                       \
	"{\"error\":\"invalid character 'a' looking for beginning of value\",\"message\":"  \
	"\"invalid character 'a' looking for beginning of value\",\"code\":3}"
#define EB_COMPACTED                                                                        \
	"{\"error\":\"etcdserver: mvcc: required revision has been compacted\","            \
	"\"message\":\"etcdserver: mvcc: required revision has been compacted\",\"code\":11}"
#define EB_FUTURE                                                                           \
	"{\"error\":\"etcdserver: mvcc: required revision is a future revision\","          \
	"\"message\":\"etcdserver: mvcc: required revision is a future revision\",\"code\":11}"
/* A watch's bad create request: HTTP 500 */
#define EB_WATCH_BAD                                                                        \
	"{\"error\":\"illegal base64 data at input byte 0\",\"message\":\"illegal base64 "  \
	"data at input byte 0\",\"code\":2}"
/* Unknown path: HTTP 404, text/plain; GET instead of POST: HTTP 405 */
#define EB_NOT_FOUND "Not Found\n"
#define EB_NOT_ALLOWED "Method Not Allowed\n"

/* ---------------------------------------------------------------- the watch [6] [9] [10] */

/* A watch of /pomai/c1/ (prev_kv, progress_notify), one message per line. */
#define EB_W_CREATED "{\"result\":{\"header\":" EB_HDR("14") ",\"created\":true}}\n"
#define EB_W_PUT                                                                            \
	"{\"result\":{\"header\":" EB_HDR("15") ",\"events\":[{\"kv\":{\"key\":"            \
	"\"L3BvbWFpL2MxL25vZGVzL245\",\"create_revision\":\"15\",\"mod_revision\":\"15\","   \
	"\"version\":\"1\",\"value\":\"djE=\",\"lease\":\"4111120489558866486\"}}]}}\n"
#define EB_W_PUT_PREV                                                                       \
	"{\"result\":{\"header\":" EB_HDR("16") ",\"events\":[{\"kv\":{\"key\":"            \
	"\"L3BvbWFpL2MxL25vZGVzL245\",\"create_revision\":\"15\",\"mod_revision\":\"16\","   \
	"\"version\":\"2\",\"value\":\"djI=\",\"lease\":\"4111120489558866486\"},"          \
	"\"prev_kv\":{\"key\":\"L3BvbWFpL2MxL25vZGVzL245\",\"create_revision\":\"15\","      \
	"\"mod_revision\":\"15\",\"version\":\"1\",\"value\":\"djE=\","                     \
	"\"lease\":\"4111120489558866486\"}}]}}\n"
#define EB_W_DELETE                                                                         \
	"{\"result\":{\"header\":" EB_HDR("17") ",\"events\":[{\"type\":\"DELETE\","         \
	"\"kv\":{\"key\":\"L3BvbWFpL2MxL3Nsb3RtYXA=\",\"mod_revision\":\"17\"},"             \
	"\"prev_kv\":{\"key\":\"L3BvbWFpL2MxL3Nsb3RtYXA=\",\"create_revision\":\"12\","      \
	"\"mod_revision\":\"14\",\"version\":\"3\",\"value\":\"ZXBvY2g9Mw==\"}}]}}\n"
/* n9's lease (TTL 2) expired without keepalives: its key's DELETE */
#define EB_W_EXPIRY                                                                         \
	"{\"result\":{\"header\":" EB_HDR("18") ",\"events\":[{\"type\":\"DELETE\","         \
	"\"kv\":{\"key\":\"L3BvbWFpL2MxL25vZGVzL245\",\"mod_revision\":\"18\"},"             \
	"\"prev_kv\":{\"key\":\"L3BvbWFpL2MxL25vZGVzL245\",\"create_revision\":\"15\","      \
	"\"mod_revision\":\"16\",\"version\":\"2\",\"value\":\"djI=\","                     \
	"\"lease\":\"4111120489558866486\"}}]}}\n"
/* A progress notification: a header alone */
#define EB_W_PROGRESS "{\"result\":{\"header\":" EB_HDR("18") "}}\n"
/* A watch from a compacted revision: canceled (its header has no revision) */
#define EB_W_CANCELED                                                                       \
	"{\"result\":{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"   \
	"\"13668033151171901709\",\"raft_term\":\"3\"},\"canceled\":true,"                  \
	"\"compact_revision\":\"15\"}}\n"
/* The stream in [6], as libcurl hands it over (de-chunked). */
#define EB_W_STREAM EB_W_CREATED EB_W_PUT EB_W_PUT_PREV EB_W_DELETE EB_W_EXPIRY EB_W_PROGRESS

#endif
