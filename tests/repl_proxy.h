/* SPDX-License-Identifier: MIT
 *
 * repl_proxy.h — a TCP proxy between a replica and its primary's repl_port,
 * run by a test in a thread of its own, that cuts the replication stream in
 * the middle of a frame when asked: the deterministic "kill the connection
 * mid-record" of test_repl (an `ss -K` lands wherever the stream happens to
 * be).
 *
 * The replica is given the proxy's port as its replica_of; every connection
 * it makes there is relayed to the primary. From the primary to the replica
 * the proxy follows the frames (proto/repl.h: a u32 length, then the type),
 * so that when it is armed it forwards the header and half the payload of the
 * next RECORDS frame, then resets both connections (SO_LINGER 0): the
 * replica holds part of a record, the primary sees its stream gone. Later
 * connections are relayed whole until it is armed again. Nothing is buffered
 * beyond one read: a relay writes what it read before it reads more.
 *
 * A full sync's image (SNAP_DATA frames) can be faulted too, every image
 * while image_fault says so: REPL_PROXY_IMAGE_CUT cuts each SNAP_DATA frame
 * half-way the same way, REPL_PROXY_IMAGE_FLIP flips one bit in the middle
 * of each one's payload (the image's CRCs catch it at SNAP_END; the frame
 * itself has none). image_faults counts the frames so treated.
 */
#ifndef POMAI_TESTS_REPL_PROXY_H
#define POMAI_TESTS_REPL_PROXY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Connection pairs relayed at once: one per replica shard, and a margin for
 * connections the replica makes again before the proxy has seen the old ones
 * close. */
#define REPL_PROXY_PAIRS_MAX 16u
/* One read of a relay. */
#define REPL_PROXY_CHUNK_BYTES 65536u
/* How long the proxy's thread waits for a socket before it looks at its quit
 * flag again (a bounded poll; stop() also wakes it through an eventfd). */
#define REPL_PROXY_POLL_MS 100

enum repl_proxy_image_fault {
	REPL_PROXY_IMAGE_NONE = 0,
	REPL_PROXY_IMAGE_CUT,   /* every SNAP_DATA frame cut half-way, both connections reset */
	REPL_PROXY_IMAGE_FLIP,  /* one bit of every SNAP_DATA frame's payload flipped */
};

struct repl_proxy_pair {
	int down, up;           /* the replica's connection, the primary's; -1: free */
	uint8_t hdr[4];         /* the length field of the frame being relayed */
	uint32_t hdr_have;      /* its bytes seen so far (4: in the frame's body) */
	uint32_t body_left;     /* bytes of the frame after its length field still to come */
	bool typed;             /* the frame's type byte has been seen */
	bool cutting;           /* body_left counts down to the cut, not to the frame's end */
	bool flipping;          /* flip_left counts down to the byte flipped */
	uint32_t flip_left;     /* bytes of the body before it */
};

struct repl_proxy {
	uint16_t port;          /* where the replica connects */
	uint16_t upstream;      /* the primary's repl_port on 127.0.0.1 */
	atomic_bool armed;      /* cut the next RECORDS frame */
	atomic_uint accepted;   /* connections from the replica */
	atomic_uint cuts;       /* streams cut mid-frame */
	atomic_int image_fault; /* enum repl_proxy_image_fault: what every SNAP_DATA frame gets */
	atomic_uint image_faults; /* SNAP_DATA frames cut or flipped */
	atomic_uint_fast64_t cut_frame_bytes, cut_after_bytes; /* the last cut: frame length, sent */
	/* the thread's */
	int listen_fd, wake_fd;
	atomic_bool quit;
	bool running;
	pthread_t thread;
	struct repl_proxy_pair pairs[REPL_PROXY_PAIRS_MAX];
	uint8_t buf[REPL_PROXY_CHUNK_BYTES];
};

/* Listen on a free loopback port (p->port) and relay to 127.0.0.1:upstream;
 * false if it could not. */
bool repl_proxy_start(struct repl_proxy *p, uint16_t upstream);
/* Cut the next RECORDS frame from the primary mid-way (cuts grows once it is done). */
void repl_proxy_arm(struct repl_proxy *p);
/* Stop the thread and close every connection. */
void repl_proxy_stop(struct repl_proxy *p);

#endif
