/* SPDX-License-Identifier: MIT
 *
 * knn_flood.c — the expensive-KNN flood scenario (knn_flood.h says what it
 * does). The daemon is waited for by its ready line; the clients pace
 * themselves by the clock (open loop), never by sleeping for an event.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "bridge.h"
#include "knn_flood.h"
#include "pomai.h"
#include "proc.h"
#include "rand.h"

#define POLITE_SRC "127.0.0.1"
#define FLOOD_SRC "127.0.0.3"
#define COLLECTION FLOOD_COLLECTION
#define POLITE_KEYS FLOOD_POLITE_KEYS
/* Round trips of the expensive query alone; the median is reported. */
#define QUERY_SAMPLES 9u
/* How long one expensive query alone may take to answer (any build). */
#define QUERY_WAIT_MS 10000
/* The flood runs this long before the polite client measures, so that the
 * daemon is in its flooded state (an old one: its backlog built up). */
#define FLOOD_WARMUP_MS 500u
/* Most flood queries one pass of its loop sends to catch up with its rate. */
#define FLOOD_CATCH_UP 16u
/* Receive buffers: the flood's replies (1024 hits are several frames each)
 * must not be dropped by the client's own socket. */
#define RCVBUF_BYTES (8 << 20)
/* Pipelined VADDs while loading. */
#define LOAD_IN_FLIGHT 256u

static void rand_vec(float *v, uint32_t dim, uint64_t *s)
{
	for (uint32_t i = 0; i < dim; i++)
		v[i] = (float)(pm_test_rand(s) % 20001) / 10000.0f - 1.0f;
}

void flood_vector(uint32_t i, uint32_t dim, float *out)
{
	uint64_t seed = 0xF100Du * (i + 1u);
	rand_vec(out, dim, &seed);
}

/* ---------------------------------------------------------------- the daemon */

int flood_daemon_start(const struct flood_cfg *cfg, struct flood_daemon *d)
{
	memset(d, 0, sizeof(*d));
	if (!proc_dir_make(d->pm.dir, "flood")) {
		fprintf(stderr, "knn_flood: no data directory: %s\n", strerror(errno));
		return -1;
	}
	/* room for the vectors (64-byte header + payload, size classes up to
	 * 1/8 above) twice over, per shard, and 64 MiB besides */
	uint64_t per_shard = (uint64_t)cfg->vectors / cfg->shards + 1;
	uint64_t mib = (per_shard * (64u + 4u * cfg->dim) * 9 / 8 * 2 >> 20) + 64;
	snprintf(d->arena, sizeof(d->arena), "%lluM", (unsigned long long)mib);
	snprintf(d->seeds, sizeof(d->seeds), "%llu", (unsigned long long)(2 * per_shard + 4096));
	const char *const flags[] = { "--arena-bytes", d->arena, "--seeds", d->seeds, "--wal",
				      "none", "--hugepages", "no", NULL };
	_Static_assert(sizeof(flags) <= sizeof(d->flags), "struct flood_daemon holds them");
	memcpy(d->flags, flags, sizeof(flags));
	d->pm.path = cfg->pomaid;
	d->pm.shards = cfg->shards;
	d->pm.flags = d->flags;
	if (pomaid_start(&d->pm, cfg->flags, NULL))
		return 0;
	fprintf(stderr, "knn_flood: pomaid did not start:\n%s\n", d->pm.proc.out);
	return -1;
}

void flood_daemon_stop(struct flood_daemon *d)
{
	pomaid_stop(&d->pm);
	if (d->pm.dir[0]) {
		proc_dir_remove(d->pm.dir);
		d->pm.dir[0] = '\0';
	}
}

/* ---------------------------------------------------------------- loading */

static void count_failure(void *arg, const struct pm_client_result *r)
{
	if (r->status != PM_CLIENT_OK) {
		uint64_t *failed = arg;
		if ((*failed)++ == 0)
			fprintf(stderr, "knn_flood: load: %s\n", pm_client_status_name(r->status));
	}
}

int flood_load(const struct flood_cfg *cfg, const struct flood_daemon *d)
{
	struct pm_client_config cc;
	struct pm_client *c = NULL;
	pm_client_config_default(&cc);
	cc.base_port = d->pm.base;
	cc.shards = cfg->shards;
	cc.timeout_ms = 2000;
	cc.retries = 5;
	cc.max_in_flight = LOAD_IN_FLIGHT;
	if (pm_client_open(&cc, &c) != PM_CLIENT_OK)
		return -1;
	struct pm_client_coll_params p = { .dim = cfg->dim,
					   .index = cfg->ef ? PM_CLIENT_HNSW : PM_CLIENT_FLAT };
	enum pm_client_status st = pm_client_collection_create(c, COLLECTION, &p);
	uint64_t failed = st != PM_CLIENT_OK;
	float v[1024];
	char key[32];
	for (uint32_t i = 0; i < cfg->vectors && !failed; i++) {
		flood_vector(i, cfg->dim, v);
		int kl = snprintf(key, sizeof(key), FLOOD_KEY_FORMAT, i);
		struct pm_client_req r = { .op = PM_CLIENT_VADD, .key = key, .klen = (uint32_t)kl,
					   .vec = v, .dim = cfg->dim, .name = COLLECTION,
					   .name_len = (uint32_t)strlen(COLLECTION),
					   .cb = count_failure, .arg = &failed };
		if (pm_client_submit(c, &r, NULL) != PM_CLIENT_OK)
			failed++;
	}
	pm_client_drain(c);
	for (uint32_t i = 0; i < POLITE_KEYS && !failed; i++) {
		int kl = snprintf(key, sizeof(key), "polite%u", i);
		failed += pm_client_set(c, key, (size_t)kl, "value", 5, 0) != PM_CLIENT_OK;
	}
	pm_client_close(c);
	return failed ? -1 : 0;
}

/* ---------------------------------------------------------------- sockets and frames */

/* Issue 19: each socket's cookie (docs/protocol.md §14.2), learnt when it is
 * opened (udp_from) and put in front of every datagram it sends: the flood
 * and the polite client are validated clients, each on its own quota. */
#define COOKIE_FDS_MAX 1024
static uint8_t cookie_frame[COOKIE_FDS_MAX][PM_COOKIE_FRAME_BYTES];

static void send_to(int fd, uint16_t port, const uint8_t *p, size_t n)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct iovec iov[2] = { { cookie_frame[fd], PM_COOKIE_FRAME_BYTES }, { (void *)p, n } };
	struct msghdr m = { .msg_name = &a, .msg_namelen = sizeof(a), .msg_iov = iov,
			    .msg_iovlen = 2 };
	(void)sendmsg(fd, &m, 0);
}

/* The next reply frame of a datagram in[0..n) from *at on (a datagram holds
 * one or more frames, docs/protocol.md §2); false after its last. */
static bool next_frame(const uint8_t *in, ssize_t n, size_t *at, struct pm_reply_view *rv)
{
	size_t used = 0;
	if (n <= 0 || *at >= (size_t)n ||
	    pm_reply_decode(in + *at, (size_t)n - *at, rv, &used) != PM_WIRE_OK || used == 0)
		return false;
	*at += used;
	return true;
}

/* A SET sent without a cookie is answered RETRY with one (not executed). */
static bool learn_cookie(int fd, uint16_t port)
{
	uint8_t frame[64], in[256];
	struct pm_request set = { .op = PM_OP_SET, .id = 1, .key = { (const uint8_t *)"c", 1 } };
	size_t n = pm_request_encode(&set, frame, sizeof(frame));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	for (int attempt = 0; attempt < 5; attempt++) {
		(void)sendto(fd, frame, n, 0, (struct sockaddr *)&a, sizeof(a));
		struct pollfd p = { .fd = fd, .events = POLLIN };
		while (poll(&p, 1, QUERY_WAIT_MS) == 1) {
			ssize_t r = recv(fd, in, sizeof(in), 0);
			struct pm_reply_view rv;
			struct pm_cookie c;
			for (size_t at = 0; next_frame(in, r, &at, &rv);)
				if (rv.status == PM_WIRE_E_RETRY && rv.cookie &&
				    pm_cookie_read(rv.cookie, &c)) {
					pm_cookie_frame_write(&c, cookie_frame[fd]);
					return true;
				}
		}
	}
	return false;
}

static int udp_from(const char *src, uint16_t port)
{
	struct sockaddr_in me = { .sin_family = AF_INET };
	inet_pton(AF_INET, src, &me.sin_addr);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), rcv = RCVBUF_BYTES;
	if (fd < 0 || fd >= COOKIE_FDS_MAX || bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0 ||
	    !learn_cookie(fd, port)) {
		fprintf(stderr, "knn_flood: socket from %s: %s\n", src, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	return fd;
}

static size_t query_frame(const struct flood_cfg *cfg, uint64_t id, uint64_t *seed, uint8_t *out,
			  size_t cap)
{
	float v[1024];
	rand_vec(v, cfg->dim, seed);
	struct pm_request q = { .op = PM_OP_VQUERY, .id = id, .vec = (const uint8_t *)v,
				.dim = cfg->dim, .k = cfg->k, .ef = cfg->ef,
				.collection = { (const uint8_t *)COLLECTION, sizeof(COLLECTION) - 1 } };
	return pm_request_encode(&q, out, cap);
}

/* ---------------------------------------------------------------- one query alone */

static int query_alone(const struct flood_cfg *cfg, const struct flood_daemon *d,
		       struct flood_result *res)
{
	int fd = udp_from(POLITE_SRC, d->pm.base);
	if (fd < 0)
		return -1;
	static uint8_t buf[PM_FRAME_BYTES_MAX], in[PM_FRAME_BYTES_MAX];
	double ms[QUERY_SAMPLES];
	uint64_t seed = 7;
	for (uint32_t i = 0; i < QUERY_SAMPLES; i++) {
		size_t n = query_frame(cfg, 1 + i, &seed, buf, sizeof(buf));
		uint64_t t0 = proc_now_ns();
		send_to(fd, d->pm.base, buf, n);
		bool last = false;
		while (!last) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			if (poll(&p, 1, QUERY_WAIT_MS) <= 0) {
				fprintf(stderr, "knn_flood: no answer to a query alone\n");
				close(fd);
				return -1;
			}
			ssize_t r;
			while ((r = recv(fd, in, sizeof(in), 0)) > 0) {
				struct pm_reply_view rv;
				for (size_t at = 0; next_frame(in, r, &at, &rv);) {
					if (rv.id != 1 + i)
						continue;
					res->query_status = rv.status;
					res->query_ok += !rv.more && rv.status == PM_WIRE_OK;
					last |= !rv.more;
				}
			}
		}
		ms[i] = (double)(proc_now_ns() - t0) / 1e6;
	}
	close(fd);
	for (uint32_t i = 1; i < QUERY_SAMPLES; i++) /* insertion sort: nine samples */
		for (uint32_t j = i; j > 0 && ms[j - 1] > ms[j]; j--) {
			double t = ms[j];
			ms[j] = ms[j - 1];
			ms[j - 1] = t;
		}
	res->query_ms = ms[QUERY_SAMPLES / 2];
	return 0;
}

/* ---------------------------------------------------------------- the polite client */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* One reply frame of the polite phase: its GET's latency, once, if it came
 * within lost_ns; a refusal (BUSY) is as good as lost. */
static void phase_reply(struct flood_phase *ph, const struct pm_reply_view *rv, uint64_t id0,
			uint64_t sent, uint64_t at, const uint64_t *sent_at, double *lat,
			uint64_t lost_ns, uint64_t *answered)
{
	if (rv->id < id0 || rv->id - id0 >= sent)
		return;
	uint64_t i = rv->id - id0;
	if (rv->status != PM_WIRE_OK) {
		ph->refused += isinf(lat[i]);
		return;
	}
	if (isinf(lat[i]) && at - sent_at[i] <= lost_ns) {
		lat[i] = (double)(at - sent_at[i]) / 1e6;
		(*answered)++;
	}
}

/* The value at rank q (0..1) of the sorted latencies, lost ones last. */
static double rank(const double *lat, uint64_t n, double q)
{
	uint64_t i = (uint64_t)ceil(q * (double)n);
	return i == 0 ? lat[0] : lat[i - 1];
}

static int polite_phase(const struct flood_cfg *cfg, const struct flood_daemon *d,
			struct flood_phase *ph)
{
	int fd = udp_from(POLITE_SRC, d->pm.base);
	if (fd < 0)
		return -1;
	const uint64_t total = (uint64_t)cfg->polite_rps * cfg->seconds;
	const uint64_t every = 1000000000u / cfg->polite_rps, lost_ns = cfg->lost_ms * 1000000ull;
	const uint64_t id0 = proc_now_ns(); /* ids of this phase only */
	uint64_t *sent_at = calloc(total, sizeof(*sent_at));
	double *lat = malloc(total * sizeof(*lat));
	if (!sent_at || !lat) {
		free(sent_at);
		free(lat);
		close(fd);
		return -1;
	}
	for (uint64_t i = 0; i < total; i++)
		lat[i] = INFINITY;
	uint8_t buf[256], in[4096];
	uint64_t t0 = proc_now_ns(), sent = 0, answered = 0;
	ph->refused = 0;
	for (;;) {
		uint64_t now = proc_now_ns();
		if (sent < total && now >= t0 + sent * every) {
			char key[32];
			int kl = snprintf(key, sizeof(key), "polite%u", (unsigned)(sent % POLITE_KEYS));
			struct pm_request g = { .op = PM_OP_GET, .id = id0 + sent,
						.key = { (const uint8_t *)key, (uint32_t)kl } };
			size_t n = pm_request_encode(&g, buf, sizeof(buf));
			sent_at[sent] = now;
			send_to(fd, (uint16_t)(d->pm.base + sent % cfg->shards), buf, n);
			sent++;
			continue;
		}
		if (sent == total && (answered == total || now > sent_at[total - 1] + lost_ns))
			break;
		uint64_t wait = sent < total ? t0 + sent * every - now : 1000000u;
		struct timespec ts = { 0, (long)(wait < 1000000u ? wait : 1000000u) };
		struct pollfd p = { .fd = fd, .events = POLLIN };
		(void)ppoll(&p, 1, &ts, NULL); /* until a reply or the next send is due */
		ssize_t r;
		while ((r = recv(fd, in, sizeof(in), 0)) > 0) {
			struct pm_reply_view rv;
			uint64_t at = proc_now_ns();
			for (size_t fa = 0; next_frame(in, r, &fa, &rv);)
				phase_reply(ph, &rv, id0, sent, at, sent_at, lat, lost_ns, &answered);
		}
	}
	qsort(lat, total, sizeof(*lat), cmp_double);
	*ph = (struct flood_phase){ .gets = total, .answered = answered, .lost = total - answered,
				    .refused = ph->refused,
				    .p50_ms = rank(lat, total, 0.50), .p99_ms = rank(lat, total, 0.99),
				    .max_ms = lat[total - 1] };
	free(sent_at);
	free(lat);
	close(fd);
	return 0;
}

/* ---------------------------------------------------------------- the flood */

struct flood {
	const struct flood_cfg *cfg;
	const struct flood_daemon *d;
	int fd;
	atomic_bool stop;
	uint32_t qps;                /* the rate offered */
	uint64_t sent, bytes, ok, timeout, busy, throttled, work_limit, other;
	uint64_t t0, t1;
};

/* One reply frame of the flood: counted once, at its last frame. */
static void flood_reply(struct flood *f, const struct pm_reply_view *rv)
{
	if (rv->more)
		return;
	f->ok += rv->status == PM_WIRE_OK;
	f->timeout += rv->status == PM_WIRE_E_TIMEOUT;
	f->busy += rv->status == PM_WIRE_E_BUSY;
	f->throttled += rv->status == PM_WIRE_E_THROTTLED;
	f->work_limit += rv->status == PM_WIRE_E_WORK_LIMIT;
	f->other += rv->status != PM_WIRE_OK && rv->status != PM_WIRE_E_TIMEOUT &&
		    rv->status != PM_WIRE_E_BUSY && rv->status != PM_WIRE_E_THROTTLED &&
		    rv->status != PM_WIRE_E_WORK_LIMIT;
}

static void flood_drain(struct flood *f)
{
	static uint8_t in[PM_FRAME_BYTES_MAX];
	ssize_t r;
	struct pm_reply_view rv;
	while ((r = recv(f->fd, in, sizeof(in), 0)) > 0)
		for (size_t at = 0; next_frame(in, r, &at, &rv);)
			flood_reply(f, &rv);
}

static void *flood_main(void *arg)
{
	struct flood *f = arg;
	static uint8_t buf[PM_FRAME_BYTES_MAX];
	uint64_t seed = 99;
	f->t0 = proc_now_ns();
	while (!atomic_load(&f->stop)) {
		uint64_t due = (proc_now_ns() - f->t0) * f->qps / 1000000000u;
		for (uint32_t k = 0; f->sent < due && k < FLOOD_CATCH_UP; k++, f->sent++) {
			size_t n = query_frame(f->cfg, f->sent + 1, &seed, buf, sizeof(buf));
			send_to(f->fd, (uint16_t)(f->d->pm.base + f->sent % f->cfg->shards), buf, n);
			f->bytes += n;
		}
		flood_drain(f);
		struct pollfd p = { .fd = f->fd, .events = POLLIN };
		(void)poll(&p, 1, 1); /* pacing the load, not waiting for an event */
	}
	f->t1 = proc_now_ns();
	flood_drain(f);
	return NULL;
}

/* ---------------------------------------------------------------- the run */

int flood_run(const struct flood_cfg *cfg, struct flood_result *res)
{
	static struct flood_daemon d;
	*res = (struct flood_result){ 0 };
	if (cfg->dim == 0 || cfg->dim > 1024 || cfg->polite_rps == 0 || cfg->seconds == 0) {
		fprintf(stderr, "knn_flood: dim 1..1024, polite_rps and seconds > 0\n");
		return -1;
	}
	int rc = flood_daemon_start(cfg, &d);
	uint64_t t0 = proc_now_ns();
	if (rc == 0 && (rc = flood_load(cfg, &d)) != 0)
		fprintf(stderr, "knn_flood: loading %u vectors failed\n", cfg->vectors);
	res->load_s = (double)(proc_now_ns() - t0) / 1e9;
	if (!cfg->quiet && rc == 0)
		printf("  loaded %u vectors of %u floats in %.1f s\n", cfg->vectors, cfg->dim,
		       res->load_s);
	if (rc == 0)
		rc = query_alone(cfg, &d, res);
	if (rc == 0)
		rc = polite_phase(cfg, &d, &res->alone);
	res->flood_qps = cfg->flood_qps;
	if (rc == 0 && cfg->overload > 0 && res->query_ms > 0) {
		double q = cfg->overload * 1000.0 / res->query_ms;
		res->flood_qps = q > res->flood_qps ? (uint32_t)q : res->flood_qps;
	}
	struct flood f = { .cfg = cfg, .d = &d, .fd = rc == 0 ? udp_from(FLOOD_SRC, d.pm.base) : -1,
			   .qps = res->flood_qps };
	pthread_t t;
	if (rc == 0 && (f.fd < 0 || pthread_create(&t, NULL, flood_main, &f) != 0))
		rc = -1;
	if (rc == 0) {
		struct pollfd none = { .fd = -1 };
		for (uint64_t w0 = proc_now_ns(); proc_now_ns() - w0 < FLOOD_WARMUP_MS * 1000000ull;)
			(void)poll(&none, 1, 10); /* the flood's head start: a duration, no event */
		rc = polite_phase(cfg, &d, &res->flooded);
		atomic_store(&f.stop, true);
		pthread_join(t, NULL);
		res->flood_sent = f.sent;
		res->flood_ok = f.ok;
		res->flood_timeout = f.timeout;
		res->flood_busy = f.busy;
		res->flood_throttled = f.throttled;
		res->flood_work_limit = f.work_limit;
		res->flood_other = f.other;
		res->flood_bytes_per_s = (double)f.bytes * 1e9 / (double)(f.t1 - f.t0);
	}
	if (f.fd >= 0)
		close(f.fd);
	flood_daemon_stop(&d);
	return rc;
}

static void phase_line(const char *name, const struct flood_phase *p)
{
	printf("  %s: %llu GETs, %llu lost (%llu of them refused); p50 %.2f ms, p99 %.2f ms,"
	       " max %.2f ms\n", name, (unsigned long long)p->gets, (unsigned long long)p->lost,
	       (unsigned long long)p->refused, p->p50_ms, p->p99_ms, p->max_ms);
}

void flood_print(const struct flood_cfg *cfg, const struct flood_result *res)
{
	char ef[32] = "";
	if (cfg->ef)
		snprintf(ef, sizeof(ef), " ef=%u", cfg->ef);
	printf("  %u shards, %u %s vectors of %u floats; one k=%u%s query alone: %.2f ms (median"
	       " of %u, %u OK)\n", cfg->shards, cfg->vectors, cfg->ef ? "HNSW" : "flat", cfg->dim,
	       cfg->k, ef, res->query_ms, QUERY_SAMPLES, res->query_ok);
	phase_line("polite alone      ", &res->alone);
	phase_line("polite under flood", &res->flooded);
	printf("  flood: %u queries/s offered (%.0f bytes/s), %llu sent: %llu OK, %llu TIMEOUT,"
	       " %llu BUSY, %llu THROTTLED, %llu WORK_LIMIT, %llu other\n",
	       res->flood_qps, res->flood_bytes_per_s, (unsigned long long)res->flood_sent,
	       (unsigned long long)res->flood_ok, (unsigned long long)res->flood_timeout,
	       (unsigned long long)res->flood_busy, (unsigned long long)res->flood_throttled,
	       (unsigned long long)res->flood_work_limit, (unsigned long long)res->flood_other);
}
