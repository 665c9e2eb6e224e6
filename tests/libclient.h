/* SPDX-License-Identifier: MIT
 *
 * libclient.h — libpomai against a pomaid the harness started (proc.h): a
 * client of it, INFO fields read through libpomai (every shard's text,
 * paged), a counter polled until it reaches a value (with a deadline), and a
 * SNAPSHOT of every shard.
 */
#ifndef POMAI_TESTS_LIBCLIENT_H
#define POMAI_TESTS_LIBCLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "pomai.h"
#include "proc.h"

/* The patience of lib_open()'s defaults: a first wait of 1 s and four
 * retries (1 + 2 + 4 + 8 + 16 s in all), so that a slow machine is not taken
 * for a hang while a hang still fails. */
#define LIB_TIMEOUT_MS 1000u
#define LIB_RETRIES 4u
/* How long lib_info_reaches() polls by default: a snapshot of a few MB, or a
 * counter bumped on a worker's turn, on a loaded machine. */
#define LIB_INFO_WAIT_MS 30000

/* A UDP client of d (its ports and shards); in_flight 0: libpomai's default.
 * NULL if it did not open. */
struct pm_client *lib_open(const struct pomaid *d, uint32_t timeout_ms, uint32_t retries,
			   uint32_t in_flight);
/* The whole text of INFO `section` (NULL: every section), NUL-terminated,
 * to read several fields of one moment (info_text_field, info_text_word);
 * the caller frees it. NULL if INFO failed. */
char *lib_info_text(struct pm_client *c, const char *section);
/* A field of INFO `section` (NULL: every section), as info_text_field()
 * reads it (part may be NULL); -1 if INFO failed or the field is absent. */
long long lib_info(struct pm_client *c, const char *section, const char *part, const char *field);
/* lib_info(c, section, NULL, field) asked again until it is at least want,
 * at most ms; its last value. */
long long lib_info_until(struct pm_client *c, const char *section, const char *field,
			 long long want, int ms);
/* The same through a fresh client of d (every section, the first occurrence). */
long long lib_info_of(const struct pomaid *d, const char *field);
/* lib_info_of(d, field) asked again until it is at least want, at most ms;
 * true once it is. */
bool lib_info_reaches(const struct pomaid *d, const char *field, long long want, int ms);
/* SNAPSHOT to every shard; true once each has started one (or goes on with its own). */
bool lib_snapshot(const struct pomaid *d);

/* A pipeline of requests on one client that counts its completions: OK ones,
 * failed ones and the first failure (what it was, for the message). */
struct pipe {
	struct pm_client *c;
	uint64_t ok, failed;
	enum pm_client_status first;
	char what[64]; /* the first failure's request */
};
/* Submit r (its cb and arg are the pipe's); a refused submit counts as failed. */
void pipe_submit(struct pipe *p, struct pm_client_req *r);
/* Drain the client: true when nothing failed (said, with phase, when not). */
bool pipe_done(struct pipe *p, const char *phase);

#endif
