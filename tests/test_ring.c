/* SPDX-License-Identifier: MIT
 *
 * test_ring.c — the SPSC message ring: order and content across threads with
 * records of every size (so PAD records and wrap-around happen often), a full
 * ring refusing without publishing anything, and the payload bound.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "ring.h"

#define MESSAGES 200000u

static struct pm_ring ring;

static uint32_t size_of(uint32_t i)
{
	return (i * 2654435761u) % 3000u; /* 0..2999 bytes, scattered */
}

static void *producer(void *arg)
{
	(void)arg;
	static uint8_t buf[4096];
	for (uint32_t i = 0; i < MESSAGES;) {
		uint32_t n = size_of(i);
		memset(buf, (int)(i & 0xff), n);
		if (n >= 4)
			memcpy(buf, &i, 4);
		if (pm_ring_push(&ring, 1 + i % 7, buf, n))
			i++;
	}
	return NULL;
}

static void test_two_threads(void)
{
	ring.buf = malloc(PM_RING_BYTES);
	atomic_store(&ring.head, 0);
	atomic_store(&ring.tail, 0);
	pthread_t t;
	pthread_create(&t, NULL, producer, NULL);
	uint32_t bad = 0;
	for (uint32_t i = 0; i < MESSAGES;) {
		uint32_t type = 0, len = 0;
		const uint8_t *p = pm_ring_peek(&ring, &type, &len);
		if (!p)
			continue;
		uint32_t want = size_of(i), id = i;
		if (len >= 4)
			memcpy(&id, p, 4);
		bad += len != want || type != 1 + i % 7 || id != i ||
		       (len > 4 && p[len - 1] != (uint8_t)(i & 0xff));
		pm_ring_pop(&ring, len);
		i++;
	}
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(atomic_load(&ring.head), atomic_load(&ring.tail));
	free(ring.buf);
}

static void test_full_and_bounds(void)
{
	ring.buf = malloc(PM_RING_BYTES);
	atomic_store(&ring.head, 0);
	atomic_store(&ring.tail, 0);
	static uint8_t big[PM_RING_PAYLOAD_MAX + 1];
	CU_ASSERT_FALSE(pm_ring_push(&ring, 1, big, PM_RING_PAYLOAD_MAX + 1));
	CU_ASSERT_FALSE(pm_ring_push(&ring, PM_RING_PAD, big, 1)); /* reserved type */
	uint32_t n = 0;
	while (pm_ring_push(&ring, 2, big, 1000))
		n++;
	CU_ASSERT(n >= PM_RING_BYTES / 1024 - 1 && n <= PM_RING_BYTES / 1008);
	while (pm_ring_push(&ring, 2, big, 16)) /* top up with the smallest records */
		;
	uint64_t head = atomic_load(&ring.head);
	CU_ASSERT(head - atomic_load(&ring.tail) > PM_RING_BYTES - 32);
	CU_ASSERT_FALSE(pm_ring_push(&ring, 2, big, 16)); /* full: nothing published */
	CU_ASSERT_EQUAL(atomic_load(&ring.head), head);
	uint32_t type = 0, len = 0;
	const uint8_t *p = pm_ring_peek(&ring, &type, &len);
	CU_ASSERT_FATAL(p != NULL);
	CU_ASSERT(p != NULL && type == 2 && len == 1000);
	pm_ring_pop(&ring, len);
	CU_ASSERT_TRUE(pm_ring_push(&ring, 3, big, 16)); /* room again */
	/* the largest payload always fits an empty ring */
	atomic_store(&ring.head, 12345 * 16);
	atomic_store(&ring.tail, 12345 * 16);
	CU_ASSERT_TRUE(pm_ring_push(&ring, 4, big, PM_RING_PAYLOAD_MAX));
	free(ring.buf);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "two threads, 200k records of every size", test_two_threads },
		{ "full ring and bounds", test_full_and_bounds },
		CU_TEST_INFO_NULL,
	};
	return pm_cu_run("ring", tests);
}
