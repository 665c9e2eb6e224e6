/* SPDX-License-Identifier: MIT
 *
 * metrics_http.c — /metrics over HTTP with libmicrohttpd (see metrics.h).
 *
 * A library rather than a hand-written server: what a scraper may send
 * (pipelining, keep-alive, chunked or oversized headers, slow clients) is
 * HTTP parsing we would otherwise have to get right and keep right, on a port
 * that may face a network. libmicrohttpd is small, in Debian, and bounded by
 * options: at most CTL_METRICS_CONNS_MAX connections, each closed after
 * CTL_METRICS_IDLE_S idle. It runs one internal thread (poll), so requests are
 * answered one at a time and the text buffer below is that thread's alone.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct ctl_http {
	struct MHD_Daemon *mhd;
	ctl_metrics_fill fill;
	void *arg;
	char *text; /* CTL_METRICS_BYTES_MAX: the HTTP thread's */
};

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned code, const char *body,
			      size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				code == MHD_HTTP_OK ? CONTENT_TYPE : "text/plain");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result rc = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_len, void **state)
{
	struct ctl_http *h = cls;
	(void)version, (void)upload, (void)state;
	if (*upload_len) /* a body: not ours to read */
		return MHD_NO;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		static const char msg[] = "only GET\n";
		return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, msg, sizeof(msg) - 1,
			      MHD_RESPMEM_PERSISTENT);
	}
	if (strcmp(url, "/metrics")) {
		static const char msg[] = "not found: try /metrics\n";
		return answer(conn, MHD_HTTP_NOT_FOUND, msg, sizeof(msg) - 1, MHD_RESPMEM_PERSISTENT);
	}
	size_t n = h->fill(h->arg, h->text, CTL_METRICS_BYTES_MAX);
	if (n == 0) {
		static const char msg[] = "metrics unavailable: see pomai-control's log\n";
		return answer(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, msg, sizeof(msg) - 1,
			      MHD_RESPMEM_PERSISTENT);
	}
	return answer(conn, MHD_HTTP_OK, h->text, n, MHD_RESPMEM_MUST_COPY);
}

struct ctl_http *ctl_http_start(uint32_t addr, uint16_t port, ctl_metrics_fill fill, void *arg,
				char *err, size_t errlen)
{
	struct ctl_http *h = calloc(1, sizeof(*h));
	if (!h || !(h->text = malloc(CTL_METRICS_BYTES_MAX))) {
		snprintf(err, errlen, "out of memory for the metrics server");
		free(h);
		return NULL;
	}
	h->fill = fill;
	h->arg = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(addr) };
	h->mhd = MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, port, NULL, NULL,
				  on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)CTL_METRICS_CONNS_MAX,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CTL_METRICS_IDLE_S,
				  MHD_OPTION_END);
	if (!h->mhd) {
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &sa.sin_addr, a, sizeof(a));
		snprintf(err, errlen, "metrics_listen %s:%u: cannot listen (in use, or not an"
			 " address of this machine)", a, port);
		free(h->text);
		free(h);
		return NULL;
	}
	return h;
}

void ctl_http_stop(struct ctl_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->mhd);
	free(h->text);
	free(h);
}
