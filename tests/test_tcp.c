/* SPDX-License-Identifier: MIT
 *
 * test_tcp.c — the bound a TCP connection keeps for each reply
 * (pm_tcp_reply_bytes_max, tcp.c): the largest reply of every operation, as
 * pm_reply_frames encodes it, fits it, and so does the error or THROTTLED
 * reply of every operation; and pm_ring_fits, which a forward asks before
 * it is taken from a connection's input, says what pm_ring_reserve does.
 * A reply larger than its bound would take room kept for other replies and
 * could close a connection that did nothing wrong (the stream suites in
 * test_campaign.c drive the same paths end to end).
 */
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "cu_main.h"
#include "cluster_map.h"
#include "tcp.h"
#include "worker.h"

static uint8_t out[PM_TCP_TX_BYTES];

/* The bytes rep takes as frames (every page); 0 if it does not encode. */
static uint32_t frames_of(const struct pm_reply *rep)
{
	return pm_reply_frames(rep, out, sizeof(out));
}

static void test_single_frame_ops(void)
{
	static uint8_t value[PM_VALUE_BYTES_MAX];
	static float vec[PM_DIM_MAX];
	static const char coll[PM_COLLECTION_NAME_BYTES_MAX + 1] =
		"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
	struct pm_reply get = { .status = PM_OK, .op = PM_OP_GET,
				.value = { value, PM_VALUE_BYTES_MAX } };
	static uint8_t attr[PM_WIRE_ATTR_BYTES_MAX], map[PM_CMAP_WIRE_BYTES_MAX];
	struct pm_reply vget = { .status = PM_OK, .op = PM_OP_VGET, .dim = PM_DIM_MAX,
				 .value = { (const uint8_t *)vec, sizeof(vec) },
				 .collection = { (const uint8_t *)coll, PM_COLLECTION_NAME_BYTES_MAX },
				 .attr = { attr, sizeof(attr) } };
	/* a cluster node's slot map at its bounds (its bytes are not looked at) */
	struct pm_reply cmap = { .status = PM_OK, .op = PM_OP_MAP, .value = { map, sizeof(map) } };
	const struct pm_reply *big[] = { &get, &vget, &cmap };
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		uint32_t n = frames_of(big[i]);
		CU_ASSERT(n > 0 && n <= pm_tcp_reply_bytes_max(big[i]->op));
		CU_ASSERT(pm_tcp_reply_bytes_max(big[i]->op) - n < 64u); /* and is not loose */
	}
	static const uint8_t small_ops[] = { PM_OP_SET, PM_OP_DEL, PM_OP_VADD, PM_OP_VDEL,
					     PM_OP_CCREATE, PM_OP_CDROP, PM_OP_SNAPSHOT };
	for (size_t i = 0; i < sizeof(small_ops); i++) {
		struct pm_reply r = { .status = PM_OK, .op = small_ops[i], .removed = 1 };
		uint32_t n = frames_of(&r);
		CU_ASSERT(n > 0 && n <= pm_tcp_reply_bytes_max(small_ops[i]));
	}
}

/* A paged INFO reply of the whole text at its limit, in lines as long as
 * one shard's text (the longest a line can be) or as short as one byte:
 * every page fits the room kept for INFO, and the room is not loose by more
 * than one page's header per frame. */
static void test_info_pages(void)
{
	static char text[PM_INFO_REPLY_BYTES_MAX];
	const uint32_t lines[] = { PM_INFO_TEXT_BYTES_MAX, PM_INFO_TEXT_BYTES_MAX - 1, 1000, 2 };
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		memset(text, 'i', sizeof(text));
		for (uint32_t at = lines[i] - 1; at < sizeof(text); at += lines[i])
			text[at] = '\n';
		struct pm_reply info = { .status = PM_OK, .op = PM_OP_INFO,
					 .value = { (const uint8_t *)text, sizeof(text) } };
		uint32_t n = frames_of(&info);
		CU_ASSERT(n > sizeof(text) && n <= pm_tcp_reply_bytes_max(PM_OP_INFO));
	}
}

/* A VQUERY reply of n hits whose keys have the lengths klen(i) (their sum
 * within PM_KNN_MERGE_BYTES, as the merge keeps them). */
static uint32_t vquery_frames(uint32_t n, uint32_t (*klen)(uint32_t))
{
	static struct pm_knn_hit hits[PM_K_MAX];
	static struct pm_bytes keys[PM_K_MAX];
	static uint8_t keybytes[PM_KNN_MERGE_BYTES];
	memset(keybytes, 'k', sizeof(keybytes));
	uint32_t used = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t len = klen(i);
		CU_ASSERT_FATAL(used + len <= PM_KNN_MERGE_BYTES);
		hits[i] = (struct pm_knn_hit){ .dist = (float)i };
		keys[i] = (struct pm_bytes){ keybytes + used, len };
		used += len;
	}
	struct pm_reply r = { .status = PM_OK, .op = PM_OP_VQUERY, .hits = hits, .keys = keys,
			      .nhits = n };
	return frames_of(&r);
}

static uint32_t k256(uint32_t i)
{
	(void)i;
	return PM_KNN_MERGE_BYTES / PM_K_MAX; /* k hits filling the merge buffer */
}

static uint32_t k1024(uint32_t i)
{
	(void)i;
	return PM_KEY_BYTES_MAX;
}

static uint32_t kmixed(uint32_t i)
{
	/* a long key after every few short ones: pages end early, wasting room */
	return i % 4 == 3 ? PM_KEY_BYTES_MAX : 1 + (i * 37u) % 64u;
}

static void test_paged_ops(void)
{
	uint32_t bound = pm_tcp_reply_bytes_max(PM_OP_VQUERY);
	uint32_t a = vquery_frames(PM_K_MAX, k256);
	uint32_t b = vquery_frames(PM_KNN_MERGE_BYTES / PM_KEY_BYTES_MAX, k1024);
	uint32_t m = 0, used = 0;
	while (m < PM_K_MAX && used + kmixed(m) <= PM_KNN_MERGE_BYTES)
		used += kmixed(m++);
	uint32_t c = vquery_frames(m, kmixed);
	CU_ASSERT(a > 0 && a <= bound);
	CU_ASSERT(b > 0 && b <= bound);
	CU_ASSERT(c > 0 && c <= bound);
	static struct pm_coll_info colls[PM_COLLECTIONS_MAX];
	static const char name[] = "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn";
	for (uint32_t i = 0; i < PM_COLLECTIONS_MAX; i++)
		colls[i] = (struct pm_coll_info){
			.name = { (const uint8_t *)name, PM_COLLECTION_NAME_BYTES_MAX },
			.params = { .dim = PM_DIM_MAX, .hnsw_m = 16 }, .count = UINT64_MAX,
			.bytes = UINT64_MAX };
	struct pm_reply cl = { .status = PM_OK, .op = PM_OP_CLIST, .colls = colls,
			       .ncolls = PM_COLLECTIONS_MAX };
	uint32_t n = frames_of(&cl);
	CU_ASSERT(n > 0 && n <= pm_tcp_reply_bytes_max(PM_OP_CLIST));
	CU_ASSERT(bound + PM_FRAME_BYTES_MAX <= PM_TCP_TX_BYTES); /* a VQUERY can always run */
}

static void test_refusals(void)
{
	for (uint8_t op = PM_OP_NONE; op < PM_OP_COUNT; op++) {
		struct pm_reply e = { .status = PM_E_FRAME_LENGTH, .op = op, .id = UINT64_MAX };
		uint32_t n = frames_of(&e);
		uint8_t th[128];
		size_t t = pm_reply_encode_throttled(op, UINT64_MAX, UINT32_MAX, th, sizeof(th));
		CU_ASSERT(n > 0 && n <= PM_TCP_REPLY_SMALL_BYTES && n <= pm_tcp_reply_bytes_max(op));
		CU_ASSERT(t > 0 && t <= PM_TCP_REPLY_SMALL_BYTES && t <= pm_tcp_reply_bytes_max(op));
	}
}

/* pm_ring_fits answers as pm_ring_reserve would, at every offset. */
static void test_ring_fits(void)
{
	static struct pm_ring r;
	r.buf = malloc(PM_RING_BYTES);
	CU_ASSERT_FATAL(r.buf != NULL);
	uint64_t seed = 14;
	uint32_t disagree = 0;
	for (uint32_t i = 0; i < 20000; i++) {
		uint32_t len = (uint32_t)(pm_test_rand(&seed) % (PM_RING_PAYLOAD_MAX + 2u));
		if (i % 3 == 0) /* small ones too: the ring fills, wraps and pads */
			len %= 4096u;
		bool fits = pm_ring_fits(&r, len);
		uint8_t *p = pm_ring_reserve(&r, 1, len);
		disagree += fits != (p != NULL);
		if (p)
			pm_ring_commit(&r);
		uint32_t type, plen;
		while (pm_test_rand(&seed) % 2 && pm_ring_peek(&r, &type, &plen))
			pm_ring_pop(&r, plen); /* the consumer takes some */
	}
	CU_ASSERT_EQUAL(disagree, 0);
	free(r.buf);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "single-frame replies fit their bound", test_single_frame_ops },
		{ "VQUERY and CLIST pages fit their bound", test_paged_ops },
		{ "error and THROTTLED replies of every op fit", test_refusals },
		{ "pm_ring_fits agrees with pm_ring_reserve", test_ring_fits },
		{ "a paged INFO reply at its limit fits the room kept for it", test_info_pages },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("tcp", tests);
}
