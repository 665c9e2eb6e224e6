/* SPDX-License-Identifier: MIT
 *
 * proto/conftext.h — the `key = value` config file syntax shared by pomaid
 * (dataplane/config.c) and pomai-control (control/control_config.c): one
 * setting a line, `#` starts a comment, blank lines are skipped, space around
 * keys and values is trimmed. Each daemon supplies the function that sets one
 * key; both read numbers the same way (pm_conf_parse_u64). It lives in proto/
 * (it was control/conftext.h): both daemons' files must read alike.
 */
#ifndef POMAI_PROTO_CONFTEXT_H
#define POMAI_PROTO_CONFTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Set key to value; 0, or -1 with a message in err. */
typedef int (*pm_conf_set_fn)(void *ctx, const char *key, const char *value, char *err,
			      size_t errlen);

/* Longest error message of one key, before the file name and line are added. */
#define PM_CONF_MSG_BYTES 512u

/* len bytes of config text (not NUL-terminated; a NUL byte is an error), whose
 * lines are at most line_bytes - 2 bytes, applied in order with set; errors
 * name `name` and the line. 0, or -1 with a message in err. */
int pm_conf_parse(const char *name, const char *text, size_t len, size_t line_bytes,
		  pm_conf_set_fn set, void *ctx, char *err, size_t errlen);

/* The same for the file at path, of at most file_bytes_max bytes. */
int pm_conf_load(const char *path, size_t file_bytes_max, size_t line_bytes, pm_conf_set_fn set,
		 void *ctx, char *err, size_t errlen);

/* A decimal u64 (no sign, no space); with suffixes, a K, M, G or T after it
 * (either case) multiplies it by 2^10, 2^20, 2^30 or 2^40. 0, or -1 when it
 * is not one or does not fit 64 bits. */
int pm_conf_parse_u64(const char *v, bool suffixes, uint64_t *out);

#endif
