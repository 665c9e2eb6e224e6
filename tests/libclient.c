/* SPDX-License-Identifier: MIT
 *
 * libclient.c — libpomai against a pomaid the harness started (libclient.h).
 */
#include "libclient.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

struct pm_client *lib_open(const struct pomaid *d, uint32_t timeout_ms, uint32_t retries,
			   uint32_t in_flight)
{
	struct pm_client_config cfg;
	struct pm_client *c = NULL;
	pm_client_config_default(&cfg);
	cfg.base_port = d->base;
	cfg.shards = d->shards ? d->shards : POMAID_SHARDS_DEFAULT;
	cfg.timeout_ms = timeout_ms;
	cfg.retries = retries;
	if (in_flight)
		cfg.max_in_flight = in_flight;
	return pm_client_open(&cfg, &c) == PM_CLIENT_OK ? c : NULL;
}

char *lib_info_text(struct pm_client *c, const char *section)
{
	/* every shard's text: larger than a test's stack should hold */
	char *text = malloc(PM_CLIENT_INFO_REPLY_BYTES_MAX + 1u);
	size_t n = 0;
	if (c && text &&
	    pm_client_info(c, section, text, PM_CLIENT_INFO_REPLY_BYTES_MAX, &n) == PM_CLIENT_OK) {
		text[n] = '\0';
		return text;
	}
	free(text);
	return NULL;
}

long long lib_info(struct pm_client *c, const char *section, const char *part, const char *field)
{
	char *text = lib_info_text(c, section);
	long long v = text ? info_text_field(text, part, field) : -1;
	free(text);
	return v;
}

long long lib_info_of(const struct pomaid *d, const char *field)
{
	struct pm_client *c = lib_open(d, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
	long long v = lib_info(c, NULL, NULL, field);
	pm_client_close(c);
	return v;
}

long long lib_info_until(struct pm_client *c, const char *section, const char *field,
			 long long want, int ms)
{
	uint64_t t0 = proc_now_ms();
	long long v = lib_info(c, section, NULL, field);
	while (v < want && proc_now_ms() - t0 < (uint64_t)ms) {
		proc_pause_ms(PROC_POLL_MS);
		v = lib_info(c, section, NULL, field);
	}
	return v;
}

bool lib_info_reaches(const struct pomaid *d, const char *field, long long want, int ms)
{
	struct pm_client *c = lib_open(d, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
	bool ok = lib_info_until(c, NULL, field, want, ms) >= want;
	pm_client_close(c);
	return ok;
}

bool lib_snapshot(const struct pomaid *d)
{
	struct pm_client *c = lib_open(d, LIB_TIMEOUT_MS, LIB_RETRIES, 0);
	bool ok = c && pm_client_snapshot(c) == PM_CLIENT_OK;
	pm_client_close(c);
	return ok;
}

/* ---------------------------------------------------------------- pipelines */

static void on_pipe(void *arg, const struct pm_client_result *r)
{
	struct pipe *p = arg;
	if (r->status == PM_CLIENT_OK) {
		p->ok++;
	} else if (!p->failed++) {
		p->first = r->status;
		snprintf(p->what, sizeof(p->what), "op %d id %" PRIu64, (int)r->op, r->id);
	}
}

void pipe_submit(struct pipe *p, struct pm_client_req *r)
{
	r->cb = on_pipe;
	r->arg = p;
	enum pm_client_status st = pm_client_submit(p->c, r, NULL);
	if (st != PM_CLIENT_OK && !p->failed++) {
		p->first = st;
		snprintf(p->what, sizeof(p->what), "op %d not submitted", (int)r->op);
	}
}

bool pipe_done(struct pipe *p, const char *phase)
{
	pm_client_drain(p->c);
	if (p->failed)
		printf("\n  %s: %" PRIu64 " of %" PRIu64 " failed, the first (%s): %s", phase,
		       p->failed, p->failed + p->ok, p->what, pm_client_status_name(p->first));
	return p->failed == 0;
}
