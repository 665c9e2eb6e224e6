/* SPDX-License-Identifier: MIT
 *
 * frames.h — frames to a real pomaid without libpomai, for the suites (and
 * perf/attack_review) that must send what a library would not: a UDP client
 * bound to a chosen source address, a request and the reply with its id
 * (resent on a timeout), INFO fields read over the wire, TCP connections,
 * and datagrams with a forged source through a raw socket.
 *
 * Replies are waited for with poll() and a deadline; a counter that a worker
 * bumps on its own turn is polled until it reaches its value, with a
 * deadline: nothing sleeps to synchronise.
 */
#ifndef POMAI_TESTS_FRAMES_H
#define POMAI_TESTS_FRAMES_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "bridge.h"
#include "proc.h"

/* One attempt of wire_call: a datagram's round trip on a loaded machine. */
#define WIRE_REPLY_WAIT_MS 2000
/* Sends of one request before wire_call gives up (loss on a flooded loopback). */
#define WIRE_ATTEMPTS 5
/* How long a counter may take to reach its value (wire_info_reaches): a
 * worker bumps it on its own turn, which a loaded machine may delay. */
#define WIRE_INFO_WAIT_MS 10000
/* The largest datagram a test builds: 64 KiB, past UDP's 65,507-byte
 * payload, and a margin (test_campaign's rows break the bound). */
#define WIRE_OUT_BYTES (65536u + 64u)
/* The client's receive buffer: replies to a flood or a pipeline are not
 * dropped by the test's own socket. */
#define WIRE_RCVBUF_BYTES (4 << 20)

/* How a reply frame is read (pm_reply_decode's signature). */
typedef enum pm_wire_status (*wire_decode_fn)(const uint8_t *buf, size_t len, struct pm_reply_view *rv,
					 size_t *used);

struct wire {
	int fd;
	struct sockaddr_in to;      /* shard 0's UDP address; shard i is at port + i */
	int timeout_ms;             /* one attempt of wire_call (WIRE_REPLY_WAIT_MS) */
	int attempts;               /* sends of one request (WIRE_ATTEMPTS) */
	bool whole;                 /* wire_call waits for the reply's last frame (not MORE) */
	const struct proc *server;  /* set: wire_call gives up at once when it is gone */
	wire_decode_fn decode;      /* replies are read with it (pm_reply_decode) */
	/* issue 19: the cookie of the last RETRY received (learnt by wire_recv
	 * unless no_cookies), put in front of every datagram wire_send sends
	 * while `cookie` is set; wire_call resends at once after a RETRY */
	bool no_cookies;
	bool cookie;
	uint8_t cookie_frame[PM_COOKIE_FRAME_BYTES];
	uint64_t next_id;
	/* issue 19: with auth_user set (wire_auth), wire_call signs its frames
	 * (each attempt anew, with a new seq); wire_send sends bytes as given */
	uint32_t auth_user, auth_session;
	uint64_t auth_seq;
	uint8_t auth_key[PM_AUTH_MAC_KEY_BYTES];
	uint8_t buf[WIRE_OUT_BYTES];
	uint8_t in[PM_FRAME_BYTES_MAX + 1];
	/* issue 20: a reply datagram may carry several frames (docs/protocol.md
	 * §2): in[in_at, in_len) are those of the last one not yet returned */
	size_t in_at, in_len;
};

/* A UDP client from `src` (an address of this host; NULL: any) to pomaid at
 * host (IPv4), shard 0 on port base; request ids from first_id. False (and
 * nothing open) if the socket could not be made or bound. */
bool wire_open(struct wire *c, const char *src, const char *host, uint16_t base,
	       uint64_t first_id);
void wire_close(struct wire *c);
/* wire_call's frames signed as user (1..65535) with its MAC key from now on. */
void wire_auth(struct wire *c, uint32_t user, const uint8_t mac_key[PM_AUTH_MAC_KEY_BYTES]);
/* One datagram to a shard (the cookie's COOKIE frame first, when one is
 * known); true if it was sent whole. */
bool wire_send(struct wire *c, uint32_t shard, const void *p, size_t n);
/* Learn a cookie (a SET that pomaid answers RETRY without executing it);
 * true when c->cookie is set. */
bool wire_validate(struct wire *c);
/* The next reply frame that decodes within ms: the next one queued from the
 * last datagram, else the first of a new one (a datagram holds one or more
 * frames, docs/protocol.md §2). rv points into c->in until the next call
 * that receives. */
bool wire_recv(struct wire *c, int ms, struct pm_reply_view *rv);
/* wire_recv without waiting: a frame queued, or of a datagram already in the
 * socket; false when there is none now. */
bool wire_recv_now(struct wire *c, struct pm_reply_view *rv);
/* Forget the frames queued and every datagram waiting in the socket. */
void wire_discard(struct wire *c);
/* Send req (its id set from next_id) to a shard and wait for the reply with
 * its id: the first frame, or the last with `whole`; resent after each
 * timeout_ms, attempts times in all. False if none came. */
bool wire_call(struct wire *c, struct pm_request *req, uint32_t shard, struct pm_reply_view *rv);

/* A field of INFO `section` (NULL: every section) from shard 0, as
 * info_text_field() reads it (part may be NULL); WIRE_INFO_FAILED if INFO
 * was not answered OK, WIRE_INFO_ABSENT if the text has no such field (a
 * build without that counter). */
#define WIRE_INFO_FAILED (-1)
#define WIRE_INFO_ABSENT (-2)
long long wire_info(struct wire *c, const char *section, const char *part, const char *field);
/* wire_info(c, section, NULL, field) asked again until it is at least want,
 * or WIRE_INFO_WAIT_MS passed; its last value. */
long long wire_info_reaches(struct wire *c, const char *section, const char *field,
			    long long want);

/* A TCP connection from src (NULL: any address) to host:port; -1 if refused. */
int wire_tcp_connect(const char *src, const char *host, uint16_t port);
/* All n bytes written to a stream (blocking); false if it broke. */
bool wire_write_all(int fd, const uint8_t *p, size_t n);

/* A UDP datagram with a forged source through a raw socket (socket(AF_INET,
 * SOCK_RAW, IPPROTO_RAW); root): IPv4 header by hand (the kernel fills its
 * checksum and length), UDP checksum 0 (none). False if it was not sent
 * whole, or the payload is over WIRE_FORGED_PAYLOAD_MAX. */
#define WIRE_FORGED_PAYLOAD_MAX 256u
bool wire_udp_forged(int raw, const char *src_ip, uint16_t src_port, const char *dst_ip,
		     uint16_t dst_port, const uint8_t *p, size_t len);

#endif
