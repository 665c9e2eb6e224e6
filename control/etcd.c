/* SPDX-License-Identifier: MIT
 *
 * control/etcd.c — pomai-control's etcd client (etcd.h says what it
 * promises): the HTTP half, with libcurl; the JSON is etcd_json.c's.
 *
 * A handle holds two curl easy handles. The unary calls share one, run by
 * curl_easy_perform with CURLOPT_TIMEOUT_MS = the call's timeout, so a call
 * never outlives its bound whatever etcd does (a stopped etcd, a cut cable);
 * libcurl keeps its connection open between calls (one per endpoint). The
 * watch is the other, in a curl multi handle of the handle's own that is
 * driven only inside pm_etcd_watch_wait(): between waits nothing of it runs
 * (what etcd sends meanwhile waits in the socket), and the unary calls may
 * be made then.
 *
 * The watch's answer is a chunked stream of one JSON message per line
 * (etcd_json.h). Its write callback splits the lines (at most
 * PM_ETCD_MSG_BYTES_MAX bytes each: one past it ends the watch with
 * E_PROTO) and parses each into a queue; once the queue holds a message the
 * callback refuses further bytes with CURL_WRITEFUNC_PAUSE (libcurl keeps
 * them and stops reading the socket), so the queue holds at most the lines
 * of one piece, however fast etcd writes. pm_etcd_watch_wait() hands the
 * queued events to the caller's function outside any libcurl callback, then
 * lifts the pause; it returns once a turn has brought messages (events, a
 * progress or created message: what was already there is handed over too),
 * or at its timeout. The function may call the handle's unary calls; if it
 * stops or restarts the watch, the rest of the queue is dropped.
 *
 * Endpoints: every call goes to the current one; a call that fails on the
 * network (connect refused, timeout, a cut connection) or is answered 503
 * (gRPC UNAVAILABLE: "no leader", "request timed out" — another member may
 * serve) moves the handle to the next for the next call. A call is never
 * retried by itself: a txn whose answer was lost may have been applied, and
 * only the caller knows whether to send it again.
 *
 * libcurl's global state is set up once per process (pthread_once) and never
 * torn down: curl_global_cleanup() is not thread-safe, and the process ends
 * soon after its last handle closes. Proxies are never used: http_proxy and
 * the like in pomai-control's environment do not reroute its control plane.
 */
#define _GNU_SOURCE
#include "etcd.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "etcd_json.h"

/* The longest path a call appends to an endpoint ("/v3/lease/keepalive"). */
#define ETCD_PATH_BYTES_MAX 32u
/* The watch has no overall timeout (it lasts); its connect has this one, so
 * that an endpoint that drops SYNs ends the watch (E_NET, next endpoint)
 * instead of holding it for libcurl's default 300 s. Loopback and LAN
 * connects take well under a millisecond; a remote etcd a few RTTs. */
#define ETCD_WATCH_CONNECT_MS 3000
/* TCP keepalive on every connection: a peer that vanished without a FIN (a
 * host down, a partition) ends an idle watch after about IDLE + INTVL × CNT
 * = 5 s. Unary calls have their own timeouts. (A stopped etcd's kernel still
 * answers probes: the watch then stays, silent, as it should.) */
#define ETCD_TCP_KEEPIDLE_S 2
#define ETCD_TCP_KEEPINTVL_S 1
#define ETCD_TCP_KEEPCNT 3
/* The first bytes of a watch answered with an error status, kept for the
 * error line (etcd's error object is well under this). */
#define ETCD_WATCH_ERRBODY_BYTES 512u
/* The first allocation of a unary answer's buffer; it doubles up to
 * PM_ETCD_MSG_BYTES_MAX as an answer needs. */
#define ETCD_BODY_FIRST_BYTES 4096u
/* HTTP 503: gRPC UNAVAILABLE, e.g. a member without a leader. */
#define ETCD_HTTP_UNAVAILABLE 503L

struct etcd_body {
	char *p;
	size_t n, cap;
	bool over; /* the answer went past PM_ETCD_MSG_BYTES_MAX */
};

struct etcd_watch {
	CURL *easy;     /* NULL: no watch */
	uint32_t ep;    /* the endpoint it was started on */
	uint32_t gen;   /* + 1 at every start and stop */
	bool paused;    /* the write callback refused a piece: messages are queued */
	int64_t start;  /* its start_revision */
	int64_t rev;    /* the highest revision seen */
	struct pm_etcd_lines lines;
	struct pm_etcd_wmsg *q; /* parsed, not yet handed over */
	uint32_t nq, qcap;
	int rc;         /* a message ended it (canceled, malformed, past the bound) */
	char why[PM_ETCD_ERR_BYTES];
	char errbody[ETCD_WATCH_ERRBODY_BYTES];
	size_t nerrbody;
	char curl_err[CURL_ERROR_SIZE];
};

struct pm_etcd {
	char url[PM_ETCD_ENDPOINTS_MAX][PM_ETCD_URL_BYTES_MAX];
	uint32_t nurl;
	uint32_t cur; /* the endpoint the next call goes to */
	uint32_t at;  /* the endpoint the last call went to (its error names it) */
	CURL *easy;
	CURLM *multi;
	struct curl_slist *headers;
	struct etcd_body body;
	char curl_err[CURL_ERROR_SIZE];
	char err[PM_ETCD_ERR_BYTES];
	struct etcd_watch w;
};

/* ---------------------------------------------------------------- process-wide */

static pthread_once_t etcd_once = PTHREAD_ONCE_INIT;
static CURLcode etcd_global_rc;

static void etcd_global_init(void)
{
	etcd_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	json_object_seed(0); /* jansson's hash seed, before any thread makes an object */
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* ---------------------------------------------------------------- errors */

/* The last call's outcome into e->err: "" for OK and FAILED, else the
 * endpoint and path it went to and why. */
static int done(struct pm_etcd *e, const char *path, int rc, const char *text)
{
	int n = 0; /* past sizeof(e->err): the line is cut there */
	if (rc != PM_ETCD_OK && rc != PM_ETCD_FAILED)
		n = snprintf(e->err, sizeof(e->err), "%s%s: %s", e->url[e->at], path, text);
	if (n <= 0)
		e->err[0] = '\0';
	return rc;
}

static void rotate(struct pm_etcd *e)
{
	e->cur = (e->cur + 1) % e->nurl;
}

const char *pm_etcd_error(const struct pm_etcd *e)
{
	return e->err;
}

const char *pm_etcd_endpoint(const struct pm_etcd *e)
{
	return e->url[e->cur];
}

/* ---------------------------------------------------------------- open, close */

/* One endpoint (len bytes at s, spaces trimmed) into e->url[e->nurl]. */
static bool endpoint_add(struct pm_etcd *e, const char *s, size_t len, char *err, size_t errlen)
{
	while (len && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	while (len && s[len - 1] == '/')
		len--;
	if (e->nurl == PM_ETCD_ENDPOINTS_MAX) {
		snprintf(err, errlen, "more than PM_ETCD_ENDPOINTS_MAX (%u) etcd endpoints",
			 PM_ETCD_ENDPOINTS_MAX);
		return false;
	}
	if (len == 0 || len >= PM_ETCD_URL_BYTES_MAX) {
		snprintf(err, errlen, "an etcd endpoint of %zu bytes (1..%u)", len,
			 PM_ETCD_URL_BYTES_MAX - 1);
		return false;
	}
	char *url = e->url[e->nurl];
	memcpy(url, s, len);
	url[len] = '\0';
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL, *user = NULL;
	bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		  curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		  curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		  curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK &&
		  (!strcmp(scheme, "http") || !strcmp(scheme, "https")) && !strcmp(path, "/") &&
		  curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_NO_QUERY &&
		  curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER &&
		  !strstr(url, "#") && !strncmp(url, scheme, strlen(scheme));
	curl_free(scheme), curl_free(host), curl_free(path), curl_free(query), curl_free(user);
	curl_url_cleanup(u);
	if (!ok) {
		snprintf(err, errlen,
			 "etcd endpoint '%s': not a URL http(s)://host:port (no path, query or user)",
			 url);
		return false;
	}
	e->nurl++;
	return true;
}

static bool endpoints_parse(struct pm_etcd *e, const char *list, char *err, size_t errlen)
{
	if (!list || !*list) {
		snprintf(err, errlen, "no etcd endpoint");
		return false;
	}
	for (const char *s = list;;) {
		size_t len = strcspn(s, ",");
		if (!endpoint_add(e, s, len, err, errlen))
			return false;
		if (!s[len])
			return true;
		s += len + 1;
	}
}

/* Keepalive probes counted too (libcurl 7.88 has no option for it). */
static int sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	int cnt = ETCD_TCP_KEEPCNT;
	(void)arg;
	if (purpose == CURLSOCKTYPE_IPCXN)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	return CURL_SOCKOPT_OK;
}

/* What every request of the handle's has in common. */
static void easy_common(CURL *h, struct pm_etcd *e, char *errbuf)
{
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->headers);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, (long)ETCD_TCP_KEEPIDLE_S);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, (long)ETCD_TCP_KEEPINTVL_S);
	curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, sockopt);
}

static size_t body_write(char *p, size_t size, size_t nmemb, void *arg);

struct pm_etcd *pm_etcd_open(const char *endpoints, char *err, size_t errlen)
{
	pthread_once(&etcd_once, etcd_global_init);
	if (etcd_global_rc != CURLE_OK) {
		snprintf(err, errlen, "libcurl: %s", curl_easy_strerror(etcd_global_rc));
		return NULL;
	}
	struct pm_etcd *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory for an etcd handle");
		return NULL;
	}
	if (!endpoints_parse(e, endpoints, err, errlen)) {
		free(e);
		return NULL;
	}
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	e->headers = h ? curl_slist_append(h, "Expect:") : NULL; /* no 100-continue round trip */
	e->easy = curl_easy_init();
	e->multi = curl_multi_init();
	if (!e->headers || !e->easy || !e->multi) {
		snprintf(err, errlen, "libcurl: cannot make a handle");
		if (!e->headers)
			curl_slist_free_all(h);
		pm_etcd_close(e);
		return NULL;
	}
	easy_common(e->easy, e, e->curl_err);
	curl_easy_setopt(e->easy, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(e->easy, CURLOPT_WRITEDATA, &e->body);
	curl_easy_setopt(e->easy, CURLOPT_MAXCONNECTS, (long)PM_ETCD_ENDPOINTS_MAX);
	return e;
}

void pm_etcd_close(struct pm_etcd *e)
{
	if (!e)
		return;
	pm_etcd_watch_stop(e);
	pm_etcd_lines_free(&e->w.lines);
	free(e->w.q);
	if (e->easy)
		curl_easy_cleanup(e->easy);
	if (e->multi)
		curl_multi_cleanup(e->multi);
	curl_slist_free_all(e->headers);
	free(e->body.p);
	free(e);
}

/* ---------------------------------------------------------------- unary calls */

static size_t body_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct etcd_body *b = arg;
	size_t n = size * nmemb;
	if (n > PM_ETCD_MSG_BYTES_MAX - b->n) {
		b->over = true;
		return 0; /* libcurl ends the transfer: CURLE_WRITE_ERROR */
	}
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : ETCD_BODY_FIRST_BYTES;
		while (cap < b->n + n + 1)
			cap *= 2;
		if (cap > PM_ETCD_MSG_BYTES_MAX + 1u)
			cap = PM_ETCD_MSG_BYTES_MAX + 1u;
		char *q = realloc(b->p, cap);
		if (!q)
			return 0;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

/* The answer's text ("" for an empty one). */
static const char *body_of(const struct pm_etcd *e)
{
	return e->body.p ? e->body.p : "";
}

/* POST req to path on the current endpoint: OK with a 200's answer in
 * e->body; else the error's rc with its text. */
static int post(struct pm_etcd *e, const char *path, const char *req, int timeout_ms,
		char *text, size_t textlen)
{
	char url[PM_ETCD_URL_BYTES_MAX + ETCD_PATH_BYTES_MAX];
	long http = 0;
	snprintf(url, sizeof(url), "%s%s", e->url[e->cur], path);
	e->body.n = 0;
	e->body.over = false;
	e->curl_err[0] = '\0';
	curl_easy_setopt(e->easy, CURLOPT_URL, url);
	curl_easy_setopt(e->easy, CURLOPT_POSTFIELDS, req);
	curl_easy_setopt(e->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(req));
	curl_easy_setopt(e->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(e->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	CURLcode c = curl_easy_perform(e->easy);
	if (c == CURLE_WRITE_ERROR && e->body.over) {
		snprintf(text, textlen, "an answer past PM_ETCD_MSG_BYTES_MAX (%u bytes)",
			 PM_ETCD_MSG_BYTES_MAX);
		return PM_ETCD_E_PROTO;
	}
	if (c != CURLE_OK) {
		snprintf(text, textlen, "%s (curl %d)",
			 e->curl_err[0] ? e->curl_err : curl_easy_strerror(c), (int)c);
		rotate(e);
		return PM_ETCD_E_NET;
	}
	curl_easy_getinfo(e->easy, CURLINFO_RESPONSE_CODE, &http);
	if (http == 200)
		return PM_ETCD_OK;
	if (http == ETCD_HTTP_UNAVAILABLE)
		rotate(e);
	return pm_etcd_ans_error(http, body_of(e), e->body.n, text, textlen);
}

/* The start of every call: a bounded timeout, the endpoint it goes to. */
static int call_begin(struct pm_etcd *e, int timeout_ms, char *text, size_t textlen)
{
	e->at = e->cur;
	if (timeout_ms <= 0) {
		snprintf(text, textlen, "a timeout of %d ms", timeout_ms);
		return PM_ETCD_E_ARG;
	}
	return PM_ETCD_OK;
}

int pm_etcd_grant(struct pm_etcd *e, int64_t ttl_s, int64_t *id, int64_t *granted_s,
		  int timeout_ms)
{
	static const char path[] = "/v3/lease/grant";
	char text[PM_ETCD_ERR_BYTES], *req = NULL;
	int64_t i, t;
	int rc = call_begin(e, timeout_ms, text, sizeof(text));
	if (rc == PM_ETCD_OK)
		rc = pm_etcd_req_grant(ttl_s, &req, text, sizeof(text));
	if (rc == PM_ETCD_OK)
		rc = post(e, path, req, timeout_ms, text, sizeof(text));
	free(req);
	if (rc == PM_ETCD_OK)
		rc = pm_etcd_ans_grant(body_of(e), e->body.n, &i, &t, text, sizeof(text));
	if (rc == PM_ETCD_OK) {
		*id = i;
		*granted_s = t;
	}
	return done(e, path, rc, text);
}

int pm_etcd_keepalive(struct pm_etcd *e, int64_t id, int64_t *ttl_s, int timeout_ms)
{
	static const char path[] = "/v3/lease/keepalive";
	char text[PM_ETCD_ERR_BYTES], *req = NULL;
	int64_t t = 0;
	int rc = call_begin(e, timeout_ms, text, sizeof(text));
	if (rc == PM_ETCD_OK)
		rc = pm_etcd_req_lease(id, &req, text, sizeof(text));
	if (rc == PM_ETCD_OK)
		rc = post(e, path, req, timeout_ms, text, sizeof(text));
	free(req);
	if (rc == PM_ETCD_OK)
		rc = pm_etcd_ans_keepalive(body_of(e), e->body.n, id, &t, text, sizeof(text));
	*ttl_s = rc == PM_ETCD_OK ? t : 0;
	return done(e, path, rc, text);
}

int pm_etcd_revoke(struct pm_etcd *e, int64_t id, int timeout_ms)
{
	static const char path[] = "/v3/lease/revoke";
	char text[PM_ETCD_ERR_BYTES], *req = NULL;
	int rc = call_begin(e, timeout_ms, text, sizeof(text));
	if (rc == PM_ETCD_OK)
		rc = pm_etcd_req_lease(id, &req, text, sizeof(text));
	if (rc == PM_ETCD_OK)
		rc = post(e, path, req, timeout_ms, text, sizeof(text));
	free(req);
	if (rc == PM_ETCD_OK)
		rc = pm_etcd_ans_header(body_of(e), e->body.n, NULL, text, sizeof(text));
	return done(e, path, rc, text);
}

int pm_etcd_range(struct pm_etcd *e, const char *key, const char *range_end,
		  struct pm_etcd_kvs *out, int timeout_ms)
{
	static const char path[] = "/v3/kv/range";
	char text[PM_ETCD_ERR_BYTES], *req = NULL;
	memset(out, 0, sizeof(*out));
	int rc = call_begin(e, timeout_ms, text, sizeof(text));
	if (rc == PM_ETCD_OK)
		rc = pm_etcd_req_range(key, range_end, &req, text, sizeof(text));
	if (rc == PM_ETCD_OK)
		rc = post(e, path, req, timeout_ms, text, sizeof(text));
	free(req);
	if (rc == PM_ETCD_OK)
		rc = pm_etcd_ans_range(body_of(e), e->body.n, out, text, sizeof(text));
	return done(e, path, rc, text);
}

int pm_etcd_put(struct pm_etcd *e, const char *key, const void *value, size_t len,
		int64_t lease, int64_t *revision, int timeout_ms)
{
	static const char path[] = "/v3/kv/put";
	char text[PM_ETCD_ERR_BYTES], *req = NULL;
	int rc = call_begin(e, timeout_ms, text, sizeof(text));
	if (rc == PM_ETCD_OK)
		rc = pm_etcd_req_put(key, value, len, lease, &req, text, sizeof(text));
	if (rc == PM_ETCD_OK)
		rc = post(e, path, req, timeout_ms, text, sizeof(text));
	free(req);
	if (rc == PM_ETCD_OK)
		rc = pm_etcd_ans_header(body_of(e), e->body.n, revision, text, sizeof(text));
	return done(e, path, rc, text);
}

int pm_etcd_delete(struct pm_etcd *e, const char *key, const char *range_end, int64_t *deleted,
		   int timeout_ms)
{
	static const char path[] = "/v3/kv/deleterange";
	char text[PM_ETCD_ERR_BYTES], *req = NULL;
	int rc = call_begin(e, timeout_ms, text, sizeof(text));
	if (rc == PM_ETCD_OK)
		rc = pm_etcd_req_delete(key, range_end, &req, text, sizeof(text));
	if (rc == PM_ETCD_OK)
		rc = post(e, path, req, timeout_ms, text, sizeof(text));
	free(req);
	if (rc == PM_ETCD_OK)
		rc = pm_etcd_ans_delete(body_of(e), e->body.n, deleted, NULL, text, sizeof(text));
	return done(e, path, rc, text);
}

int pm_etcd_txn(struct pm_etcd *e, const struct pm_etcd_txn *t, int64_t *revision,
		struct pm_etcd_kvs *ranges, int timeout_ms)
{
	static const char path[] = "/v3/kv/txn";
	char text[PM_ETCD_ERR_BYTES], *req = NULL;
	if (ranges)
		memset(ranges, 0, sizeof(*ranges));
	int rc = call_begin(e, timeout_ms, text, sizeof(text));
	if (rc == PM_ETCD_OK)
		rc = pm_etcd_req_txn(t, &req, text, sizeof(text));
	if (rc == PM_ETCD_OK)
		rc = post(e, path, req, timeout_ms, text, sizeof(text));
	free(req);
	if (rc == PM_ETCD_OK)
		rc = pm_etcd_ans_txn(body_of(e), e->body.n, t, revision, ranges, text, sizeof(text));
	return done(e, path, rc, text);
}

void pm_etcd_prefix_end(const char *prefix, char *out, size_t cap)
{
	/* etcd's rule (clientv3.GetPrefixRangeEnd): the last byte below 0xff
	 * plus one, the bytes after it dropped. No end (all 0xff), or one that
	 * does not fit cap: "", which every call refuses (E_ARG) rather than
	 * act on a wrong range. */
	size_t n = strlen(prefix);
	while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
		n--;
	if (cap == 0)
		return;
	if (n >= cap)
		n = 0;
	memcpy(out, prefix, n);
	if (n > 0)
		out[n - 1] = (char)((unsigned char)out[n - 1] + 1);
	out[n] = '\0';
}

/* ---------------------------------------------------------------- the watch */

static void queue_free(struct etcd_watch *w)
{
	for (uint32_t i = 0; i < w->nq; i++)
		pm_etcd_wmsg_free(&w->q[i]);
	w->nq = 0;
}

/* A whole line of the stream (called inside libcurl's write callback). */
static int watch_line(void *arg, const char *line, size_t len)
{
	struct etcd_watch *w = arg;
	if (w->nq == w->qcap) {
		uint32_t cap = w->qcap ? w->qcap * 2 : 8;
		struct pm_etcd_wmsg *q = realloc(w->q, cap * sizeof(*q));
		if (!q) {
			w->rc = PM_ETCD_E_PROTO;
			snprintf(w->why, sizeof(w->why), "out of memory for a watch message");
			return 1;
		}
		w->q = q;
		w->qcap = cap;
	}
	int rc = pm_etcd_ans_watch(line, len, &w->q[w->nq], w->why, sizeof(w->why));
	if (rc != PM_ETCD_OK) {
		w->rc = rc;
		return 1;
	}
	w->nq++;
	return 0;
}

static size_t watch_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct etcd_watch *w = arg;
	size_t n = size * nmemb;
	long http = 0;
	curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &http);
	if (http != 200) { /* an error's body: its first bytes for the error line */
		size_t room = sizeof(w->errbody) - w->nerrbody;
		memcpy(w->errbody + w->nerrbody, p, n < room ? n : room);
		w->nerrbody += n < room ? n : room;
		return n;
	}
	if (w->nq) {
		w->paused = true;
		return CURL_WRITEFUNC_PAUSE; /* kept by libcurl until the queue is handed over */
	}
	int rc = pm_etcd_lines_feed(&w->lines, p, n, watch_line, w);
	if (rc == -1) {
		w->rc = PM_ETCD_E_PROTO;
		snprintf(w->why, sizeof(w->why), "a watch message past PM_ETCD_MSG_BYTES_MAX (%u bytes)",
			 PM_ETCD_MSG_BYTES_MAX);
	}
	return rc ? 0 : n;
}

void pm_etcd_watch_stop(struct pm_etcd *e)
{
	struct etcd_watch *w = &e->w;
	w->gen++;
	if (!w->easy)
		return;
	curl_multi_remove_handle(e->multi, w->easy);
	curl_easy_cleanup(w->easy);
	w->easy = NULL;
	queue_free(w);
	pm_etcd_lines_reset(&w->lines);
}

bool pm_etcd_watching(const struct pm_etcd *e)
{
	return e->w.easy != NULL;
}

int pm_etcd_watch_start(struct pm_etcd *e, const char *key, const char *range_end,
			int64_t start_revision)
{
	static const char path[] = "/v3/watch";
	char text[PM_ETCD_ERR_BYTES], *req = NULL, url[PM_ETCD_URL_BYTES_MAX + ETCD_PATH_BYTES_MAX];
	struct etcd_watch *w = &e->w;
	pm_etcd_watch_stop(e);
	e->at = e->cur;
	int rc = pm_etcd_req_watch(key, range_end, start_revision, &req, text, sizeof(text));
	if (rc != PM_ETCD_OK)
		return done(e, path, rc, text);
	if (!w->lines.buf && pm_etcd_lines_init(&w->lines, PM_ETCD_MSG_BYTES_MAX) != 0)
		pm_etcd_lines_free(&w->lines);
	if (!w->lines.buf || !(w->easy = curl_easy_init())) {
		free(req);
		return done(e, path, PM_ETCD_E_ARG, "out of memory for a watch");
	}
	snprintf(url, sizeof(url), "%s%s", e->url[e->cur], path);
	easy_common(w->easy, e, w->curl_err);
	curl_easy_setopt(w->easy, CURLOPT_URL, url);
	curl_easy_setopt(w->easy, CURLOPT_COPYPOSTFIELDS, req);
	curl_easy_setopt(w->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)ETCD_WATCH_CONNECT_MS);
	curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, w);
	free(req);
	w->ep = e->cur;
	w->paused = false;
	w->start = start_revision;
	w->rev = start_revision > 0 ? start_revision - 1 : 0;
	w->rc = PM_ETCD_OK;
	w->why[0] = w->curl_err[0] = '\0';
	w->nerrbody = 0;
	if (curl_multi_add_handle(e->multi, w->easy) != CURLM_OK) {
		pm_etcd_watch_stop(e);
		return done(e, path, PM_ETCD_E_ARG, "libcurl would not take the watch");
	}
	return done(e, path, PM_ETCD_OK, "");
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* Hand the queued messages over: their events to fn, their revisions to
 * w->rev. The number of events. fn may stop or restart the watch: the rest
 * of the queue is then dropped. */
static int deliver(struct pm_etcd *e, pm_etcd_event_fn fn, void *arg, bool *heard)
{
	struct etcd_watch *w = &e->w;
	uint32_t gen = w->gen;
	int events = 0;
	for (uint32_t i = 0; i < w->nq && gen == w->gen; i++) {
		const struct pm_etcd_wmsg *m = &w->q[i];
		*heard = true;
		if (m->kind == PM_ETCD_W_PROGRESS || (m->kind == PM_ETCD_W_CREATED && !w->start))
			w->rev = max64(w->rev, m->revision);
		/* events: their own revisions (a catch-up's header may be ahead) */
		for (uint32_t k = 0; k < m->n && gen == w->gen; k++) {
			const struct pm_etcd_wevent *ev = &m->ev[k];
			const struct pm_etcd_event out = { ev->deleted, &ev->kv,
							   ev->has_prev ? &ev->prev : NULL };
			w->rev = max64(w->rev, ev->kv.mod_revision);
			events++;
			if (fn)
				fn(arg, &out);
		}
	}
	queue_free(w);
	return events;
}

/* The transfer ended (c) or the pause could not be lifted: the watch's
 * error; it is stopped. */
static int watch_end(struct pm_etcd *e, CURLcode c)
{
	static const char path[] = "/v3/watch";
	struct etcd_watch *w = &e->w;
	char text[PM_ETCD_ERR_BYTES];
	long http = 0;
	int rc;
	curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &http);
	if (w->rc != PM_ETCD_OK) {
		rc = w->rc;
		snprintf(text, sizeof(text), "%s", w->why);
	} else if (http != 0 && http != 200) {
		rc = pm_etcd_ans_error(http, w->errbody, w->nerrbody, text, sizeof(text));
		rc = rc == PM_ETCD_LEASE_GONE ? PM_ETCD_E_HTTP : rc;
	} else if (c == CURLE_OK) {
		rc = PM_ETCD_E_NET;
		snprintf(text, sizeof(text), "the watch stream ended (etcd closed it)");
	} else {
		rc = PM_ETCD_E_NET;
		snprintf(text, sizeof(text), "%s (curl %d)",
			 w->curl_err[0] ? w->curl_err : curl_easy_strerror(c), (int)c);
	}
	e->at = w->ep;
	if ((rc == PM_ETCD_E_NET || http == ETCD_HTTP_UNAVAILABLE) && e->cur == w->ep)
		rotate(e);
	pm_etcd_watch_stop(e);
	return done(e, path, rc, text);
}

/* One turn of the transfer: CURLE_OK while it runs, else how it ended. */
static bool watch_turn(struct pm_etcd *e, CURLcode *end)
{
	struct etcd_watch *w = &e->w;
	int running, left;
	CURLMsg *msg;
	if (w->paused) {
		w->paused = false;
		*end = curl_easy_pause(w->easy, CURLPAUSE_CONT); /* may queue messages at once */
		if (*end != CURLE_OK)
			return false;
	}
	if (w->nq)
		return true;
	curl_multi_perform(e->multi, &running);
	while ((msg = curl_multi_info_read(e->multi, &left)))
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == w->easy) {
			*end = msg->data.result;
			return false;
		}
	return true;
}

int pm_etcd_watch_wait(struct pm_etcd *e, int timeout_ms, pm_etcd_event_fn fn, void *arg,
		       int64_t *revision)
{
	struct etcd_watch *w = &e->w;
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	int events = 0, rc;
	bool heard = false;
	CURLcode end = CURLE_OK;
	if (!w->easy) {
		e->at = e->cur;
		rc = done(e, "/v3/watch", PM_ETCD_E_ARG, "no watch started");
		*revision = w->rev;
		return rc;
	}
	for (;;) {
		events += deliver(e, fn, arg, &heard);
		if (!w->easy) { /* fn stopped it */
			*revision = w->rev;
			return events;
		}
		if (!watch_turn(e, &end)) {
			events += deliver(e, fn, arg, &heard); /* what came before the end */
			*revision = w->rev;
			return w->easy ? watch_end(e, end) : events;
		}
		if (w->nq)
			continue;
		uint64_t now = now_ms();
		if (heard || now >= deadline)
			break;
		curl_multi_poll(e->multi, NULL, 0, (int)(deadline - now), NULL);
	}
	*revision = w->rev;
	e->err[0] = '\0';
	return events;
}
