/* SPDX-License-Identifier: MIT
 *
 * attack_review.c — issue 14's attack review, re-run: each attack the review
 * reproduced against a release build, run against two pomaid binaries side by
 * side in one process (the build before the fixes and the build after), so the
 * before/after numbers in perf/RESULTS.md come from one run on one machine.
 *
 *   attack_review BEFORE_POMAID AFTER_POMAID [--quick]
 *
 * For every scenario the two daemons run one after the other (same ports, same
 * data, same client code), before first:
 *   1. reply loop: one request datagram forged to come from shard 1's port to
 *      shard 0 (raw socket; root). Reported: pomaid's CPU-seconds and frames
 *      received over the next second (a loop: ~1 CPU-s, ~10^5 frames).
 *   2. TCP pipelining: 256 keys of 60,000-byte values over 2 shards (half
 *      forwarded); GETs pipelined on one connection at depths 20, 40 and 256.
 *      Reported: replies received within 10 s, whether the connection was
 *      closed, and whether a small GET on it is answered afterwards.
 *   3. slowloris: 600 connections from 127.0.0.2, each holding a partial frame
 *      and sending one more byte every 4 s, for 22 s; a polite client on
 *      127.0.0.1 connects and GETs every 500 ms. Reported: the polite client's
 *      successes, pomaid's tcp_* counters.
 *   4. slow readers: 500 connections from 127.0.0.3 each pipeline 40 GETs of
 *      60,000-byte values and never read. Reported: pomaid's RSS growth, the
 *      polite client's successes.
 *   5. symlinks: pomaid.stats.new in the data dir a symlink to a victim file.
 *      Reported: whether pomaid started and whether the victim was overwritten.
 *
 * Loopback only (127.0.0.1-3); starts and stops its own daemons through the
 * tests' process harness (tests/proc.h), and sends its frames with the tests'
 * wire helpers (tests/frames.h): the same forged datagram, /proc readers and
 * INFO reader as test_campaign. About two minutes (--quick: shorter
 * slowloris, fewer connections).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "proc.h"
#include "frames.h"

#define SHARDS 2u
#define VALUE_BYTES 60000u
#define BIG_KEYS 256u
#define REPLY_TIMEOUT_MS 10000
/* One INFO request's wait, and its attempts. */
#define INFO_REPLY_WAIT_MS 1000
#define INFO_ATTEMPTS 5
#define POLITE_TIMEOUT_MS 1000
#define POLITE_EVERY_MS 500
#define SLOWLORIS_TRICKLE_MS 4000
#define SLOW_READER_GETS 40u

static const char *bin[2];
static const char *side_name[2] = { "before", "after" };
static uint16_t base_port = 17400;
static bool quick;
static uint32_t slowloris_conns = 600, slowloris_ms = 22000, reader_conns = 500;

/* ---------------------------------------------------------------- processes */

/* Start pomaid (binary `which`) on dir (made unless make_dir is false) with 2
 * shards on base_port, TCP on base_port - 1. True once its ready line is read. */
static bool start(struct pomaid *d, int which, bool make_dir)
{
	if (make_dir && !proc_dir_make(d->dir, "attack"))
		return false;
	d->path = bin[which];
	d->base = base_port;
	d->after = PROC_AFTER_DROP; /* what it prints is not the review's */
	d->flags = (const char *const[]){ "--bind", "127.0.0.1", "--wal", "none", "--cores", "0,1",
					  NULL };
	return pomaid_start(d, NULL, NULL);
}

static void info_close(void);

static void stop(struct pomaid *d, bool remove_dir)
{
	info_close(); /* its cookie is this daemon's */
	pomaid_stop(d);
	if (remove_dir)
		proc_dir_remove(d->dir);
}

/* ---------------------------------------------------------------- UDP client */

/* The INFO reader's client: one per daemon (info_close when it stops). A
 * build with cookies (issue 19) answers the first INFO of a new source with
 * RETRY, which wire_call answers with the cookie: two request frames. Kept
 * open, the client sends its cookie from then on, so every later INFO is one
 * frame in both builds, as the reply loop's count of frames assumes. */
static struct wire info_wire;
static bool info_wire_open;

static void info_close(void)
{
	if (info_wire_open)
		wire_close(&info_wire);
	info_wire_open = false;
}

/* One INFO request to shard 0; a dataplane field of the Total section, or -1
 * (no answer), -2 (no such counter in that build). */
static long long info_field(const char *name)
{
	if (!info_wire_open && wire_open(&info_wire, NULL, "127.0.0.1", base_port, 1)) {
		info_wire.timeout_ms = INFO_REPLY_WAIT_MS;
		info_wire.attempts = INFO_ATTEMPTS;
		info_wire_open = true;
	}
	return info_wire_open ? wire_info(&info_wire, "dataplane", NULL, name) : WIRE_INFO_FAILED;
}

/* ---------------------------------------------------------------- TCP client */

static int tcp_connect(const char *src)
{
	int fd = wire_tcp_connect(src, "127.0.0.1", (uint16_t)(base_port - 1u)), one = 1;
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Reply frames on a stream until `want` non-MORE replies, the deadline, or
 * the connection closes; the count, and *closed. */
static uint32_t read_replies(int fd, uint32_t want, int timeout_ms, bool *closed)
{
	static uint8_t in[4u << 20];
	size_t have = 0;
	uint32_t got = 0;
	uint64_t until = proc_now_ms() + (uint64_t)timeout_ms;
	*closed = false;
	while (got < want && proc_now_ms() < until) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)(until - proc_now_ms())) <= 0)
			break;
		ssize_t r = recv(fd, in + have, sizeof(in) - have, 0);
		if (r <= 0) {
			*closed = true;
			break;
		}
		have += (size_t)r;
		size_t off = 0;
		for (;;) {
			struct pm_reply_view rv;
			size_t used = 0;
			(void)pm_reply_decode(in + off, have - off, &rv, &used);
			if (used == 0 || used > have - off)
				break;
			got += !rv.more;
			off += used;
		}
		memmove(in, in + off, have - off);
		have -= off;
	}
	return got;
}

static size_t enc_get(const char *key, uint64_t id, uint8_t *out, size_t cap)
{
	struct pm_wire_request g = { .op = PM_WIRE_OP_GET, .id = id,
				.key = { (const uint8_t *)key, (uint32_t)strlen(key) } };
	return pm_wire_request_encode(&g, out, cap);
}

/* A polite TCP client on 127.0.0.1: connect, one GET, its reply within
 * POLITE_TIMEOUT_MS. */
static bool polite_once(void)
{
	uint8_t f[64];
	int fd = tcp_connect(NULL);
	if (fd < 0)
		return false;
	size_t n = enc_get("polite", 5, f, sizeof(f));
	bool closed, ok = wire_write_all(fd, f, n) && read_replies(fd, 1, POLITE_TIMEOUT_MS, &closed) == 1;
	close(fd);
	return ok;
}

static void big_key(uint32_t i, char *k, size_t cap)
{
	snprintf(k, cap, "big-%u", i);
}

/* 256 keys of VALUE_BYTES, one SET at a time over TCP. */
static bool load_big(void)
{
	static uint8_t v[VALUE_BYTES], f[VALUE_BYTES + 256];
	memset(v, 'v', sizeof(v));
	int fd = tcp_connect(NULL);
	bool ok = fd >= 0;
	for (uint32_t i = 0; ok && i < BIG_KEYS; i++) {
		char k[32];
		big_key(i, k, sizeof(k));
		struct pm_wire_request s = { .op = PM_WIRE_OP_SET, .id = 1000 + i,
					.key = { (const uint8_t *)k, (uint32_t)strlen(k) },
					.value = { v, sizeof(v) } };
		size_t n = pm_wire_request_encode(&s, f, sizeof(f));
		bool closed;
		ok = n && wire_write_all(fd, f, n) && read_replies(fd, 1, REPLY_TIMEOUT_MS, &closed) == 1;
	}
	if (fd >= 0)
		close(fd);
	return ok;
}

/* ---------------------------------------------------------------- scenarios */

static void scenario_loop(int which)
{
	struct pomaid d = { 0 };
	if (!start(&d, which, true)) {
		printf("  %-6s reply loop: pomaid did not start\n", side_name[which]);
		stop(&d, true);
		return;
	}
	int raw = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (raw < 0) {
		printf("  %-6s reply loop: no raw socket (%s); run as root\n", side_name[which],
		       strerror(errno));
		stop(&d, true);
		return;
	}
	uint8_t get[64];
	size_t n = enc_get("loop", 77, get, sizeof(get));
	long long rx0 = info_field("rx_frames"); /* (after a RETRY, when the build has cookies) */
	double c0 = proc_cpu_s(d.proc.pid);
	wire_udp_forged(raw, "127.0.0.1", (uint16_t)(base_port + 1), "127.0.0.1", base_port, get, n);
	close(raw);
	proc_pause_ms(1000);
	double c1 = proc_cpu_s(d.proc.pid);
	long long rx1 = info_field("rx_frames");
	proc_pause_ms(2000);
	double c2 = proc_cpu_s(d.proc.pid);
	printf("  %-6s reply loop: one forged datagram -> %.2f CPU-s and %lld frames in the next"
	       " second; %.2f CPU-s/s two seconds later\n",
	       side_name[which], c1 - c0, rx1 - rx0 - 1, (c2 - c1) / 2.0);
	stop(&d, true);
}

static void scenario_pipeline(int which)
{
	static uint8_t frames[256 * 64];
	struct pomaid d = { 0 };
	if (!start(&d, which, true) || !load_big()) {
		printf("  %-6s pipelining: set-up failed\n", side_name[which]);
		stop(&d, true);
		return;
	}
	const uint32_t depths[] = { 20, 40, 256 };
	for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		uint32_t depth = depths[i];
		int fd = tcp_connect(NULL);
		size_t n = 0;
		for (uint32_t j = 0; j < depth; j++) {
			char k[32];
			big_key(j % BIG_KEYS, k, sizeof(k));
			n += enc_get(k, 10000 + j, frames + n, sizeof(frames) - n);
		}
		bool closed = false, closed2 = false;
		uint32_t got = fd >= 0 && wire_write_all(fd, frames, n) ?
				       read_replies(fd, depth, REPLY_TIMEOUT_MS, &closed) : 0;
		bool after = false;
		if (!closed && fd >= 0) {
			uint8_t f[64];
			size_t m = enc_get("small", 99999, f, sizeof(f));
			after = wire_write_all(fd, f, m) && read_replies(fd, 1, 3000, &closed2) == 1;
		}
		printf("  %-6s pipelining: %3u GETs of %u bytes on one connection -> %3u replies,"
		       " connection %s, a small GET after: %s\n",
		       side_name[which], depth, VALUE_BYTES, got, closed ? "closed" : "open",
		       closed ? "-" : after ? "answered" : "NOT answered");
		if (fd >= 0)
			close(fd);
	}
	printf("  %-6s pipelining: dropped_ring_full %lld, dropped_tx_full %lld\n", side_name[which],
	       info_field("dropped_ring_full"), info_field("dropped_tx_full"));
	stop(&d, true);
}

static void scenario_slowloris(int which)
{
	struct pomaid d = { 0 };
	if (!start(&d, which, true)) {
		printf("  %-6s slowloris: pomaid did not start\n", side_name[which]);
		stop(&d, true);
		return;
	}
	int *fds = calloc(slowloris_conns, sizeof(int));
	uint8_t hdr[PM_FRAME_HEADER_BYTES + 8];
	struct pm_frame_header h = { .version = PM_FRAME_VERSION, .opcode = PM_OPCODE_SET,
				     .id = 1, .body_len = 4000 };
	pm_header_encode(&h, hdr);
	uint32_t open_n = 0;
	for (uint32_t i = 0; i < slowloris_conns; i++) {
		fds[i] = tcp_connect("127.0.0.2");
		if (fds[i] >= 0 && wire_write_all(fds[i], hdr, 10))
			open_n++;
	}
	uint32_t sent = 10, tries = 0, ok = 0;
	uint64_t t0 = proc_now_ms(), next_trickle = t0 + SLOWLORIS_TRICKLE_MS;
	while (proc_now_ms() - t0 < slowloris_ms) {
		if (proc_now_ms() >= next_trickle && sent < sizeof(hdr)) {
			for (uint32_t i = 0; i < slowloris_conns; i++)
				if (fds[i] >= 0 && !wire_write_all(fds[i], hdr + sent, 1)) {
					close(fds[i]);
					fds[i] = -1;
				}
			sent++;
			next_trickle += SLOWLORIS_TRICKLE_MS;
		}
		tries++;
		ok += polite_once();
		proc_pause_ms(POLITE_EVERY_MS);
	}
	uint32_t alive = 0;
	for (uint32_t i = 0; i < slowloris_conns; i++) {
		if (fds[i] >= 0) {
			char c;
			alive += recv(fds[i], &c, 1, MSG_DONTWAIT) != 0 || errno == EAGAIN;
			close(fds[i]);
		}
	}
	free(fds);
	printf("  %-6s slowloris: %u of %u connections opened; polite client served %u of %u"
	       " tries in %u s; %u attacker connections still open at the end\n",
	       side_name[which], open_n, slowloris_conns, ok, tries, slowloris_ms / 1000u, alive);
	/* -2: the counter does not exist in that build */
	printf("  %-6s slowloris: tcp_refused %lld tcp_stalled %lld tcp_idle_evicted %lld"
	       " tcp_addr_refused %lld tcp_frame_deadline %lld tcp_buffer_evicted %lld\n",
	       side_name[which], info_field("tcp_refused"), info_field("tcp_stalled"),
	       info_field("tcp_idle_evicted"), info_field("tcp_addr_refused"),
	       info_field("tcp_frame_deadline"), info_field("tcp_buffer_evicted"));
	stop(&d, true);
}

static void scenario_readers(int which)
{
	static uint8_t frames[SLOW_READER_GETS * 64];
	struct pomaid d = { 0 };
	if (!start(&d, which, true) || !load_big()) {
		printf("  %-6s slow readers: set-up failed\n", side_name[which]);
		stop(&d, true);
		return;
	}
	size_t n = 0;
	for (uint32_t j = 0; j < SLOW_READER_GETS; j++) {
		char k[32];
		big_key(j, k, sizeof(k));
		n += enc_get(k, 20000 + j, frames + n, sizeof(frames) - n);
	}
	long rss0 = proc_rss_kib(d.proc.pid);
	int *fds = calloc(reader_conns, sizeof(int));
	uint32_t open_n = 0;
	for (uint32_t i = 0; i < reader_conns; i++) {
		int rcv = 4096;
		fds[i] = tcp_connect("127.0.0.3");
		if (fds[i] < 0)
			continue;
		setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
		int fl = fcntl(fds[i], F_GETFL);
		fcntl(fds[i], F_SETFL, fl | O_NONBLOCK);
		open_n += send(fds[i], frames, n, MSG_NOSIGNAL) > 0;
	}
	uint32_t tries = 0, ok = 0;
	long peak = rss0;
	for (uint64_t t0 = proc_now_ms(); proc_now_ms() - t0 < 5000;) {
		tries++;
		ok += polite_once();
		long r = proc_rss_kib(d.proc.pid);
		peak = r > peak ? r : peak;
		proc_pause_ms(POLITE_EVERY_MS);
	}
	for (uint32_t i = 0; i < reader_conns; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	printf("  %-6s slow readers: %u connections each pipelining %u GETs of %u bytes, never"
	       " reading: RSS %ld -> peak %ld KB (+%ld MB); polite client served %u of %u\n",
	       side_name[which], open_n, SLOW_READER_GETS, VALUE_BYTES, rss0, peak,
	       (peak - rss0) / 1024, ok, tries);
	stop(&d, true);
}

static void scenario_symlink(int which)
{
	struct pomaid d = { 0 };
	snprintf(d.dir, sizeof(d.dir), "/tmp/pomai-attack-XXXXXX");
	char victim[] = "/tmp/pomai-victim-XXXXXX", link[PATH_MAX + 32];
	int vfd = mkstemp(victim);
	if (!mkdtemp(d.dir) || vfd < 0 || write(vfd, "precious\n", 9) != 9) {
		printf("  %-6s symlink: set-up failed\n", side_name[which]);
		return;
	}
	close(vfd);
	snprintf(link, sizeof(link), "%s/pomaid.stats.new", d.dir);
	if (symlink(victim, link) != 0)
		printf("  %-6s symlink: %s\n", side_name[which], strerror(errno));
	bool started = start(&d, which, false);
	stop(&d, true);
	struct stat st;
	bool intact = stat(victim, &st) == 0 && st.st_size == 9;
	printf("  %-6s symlink: pomaid.stats.new -> a victim file: pomaid %s; victim %s\n",
	       side_name[which], started ? "started" : "refused to start",
	       intact ? "intact" : "OVERWRITTEN");
	unlink(victim);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: attack_review BEFORE_POMAID AFTER_POMAID [--quick]\n");
		return 2;
	}
	bin[0] = argv[1];
	bin[1] = argv[2];
	quick = argc > 3 && !strcmp(argv[3], "--quick");
	if (quick)
		slowloris_conns = 300, slowloris_ms = 10000, reader_conns = 200;
	struct rlimit rl = { 8192, 8192 };
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		fprintf(stderr, "attack_review: cannot raise the file limit: %s\n", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	struct utsname u;
	uname(&u);
	printf("attack_review %s %s%s\nmachine: %s %s, %ld CPUs\n", argv[1], argv[2],
	       quick ? " --quick" : "", u.nodename, u.release, sysconf(_SC_NPROCESSORS_ONLN));
	void (*const scenarios[])(int) = { scenario_loop, scenario_pipeline, scenario_slowloris,
					   scenario_readers, scenario_symlink };
	for (size_t s = 0; s < sizeof(scenarios) / sizeof(scenarios[0]); s++)
		for (int which = 0; which < 2; which++)
			scenarios[s](which);
	return 0;
}
