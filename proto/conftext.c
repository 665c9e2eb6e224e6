/* SPDX-License-Identifier: MIT
 *
 * proto/conftext.c — the `key = value` config file syntax and its numbers
 * (see conftext.h; this file was control/conftext.c).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conftext.h"

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && n)
		vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -1;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* One line (NUL-terminated, no newline); 0 or -1. */
static int parse_line(char *line, const char *name, unsigned no, pm_conf_set_fn set, void *ctx,
		      char *err, size_t errlen)
{
	char msg[PM_CONF_MSG_BYTES];
	char *hash = strchr(line, '#');
	if (hash)
		*hash = '\0';
	char *s = trim(line);
	if (!*s)
		return 0;
	char *eq = strchr(s, '=');
	if (!eq)
		return fail(err, errlen, "%s:%u: want key = value", name, no);
	*eq = '\0';
	msg[0] = '\0';
	if (set(ctx, trim(s), trim(eq + 1), msg, sizeof(msg)) != 0)
		return fail(err, errlen, "%s:%u: %s", name, no, msg);
	return 0;
}

int pm_conf_parse(const char *name, const char *text, size_t len, size_t line_bytes,
		  pm_conf_set_fn set, void *ctx, char *err, size_t errlen)
{
	char *line = malloc(line_bytes);
	if (!line)
		return fail(err, errlen, "%s: out of memory", name);
	int rc = 0;
	unsigned no = 1;
	for (size_t at = 0; rc == 0 && at < len; no++) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
		if (n > line_bytes - 2)
			rc = fail(err, errlen, "%s:%u: line longer than %zu bytes", name, no,
				  line_bytes - 2);
		else if (memchr(text + at, '\0', n))
			rc = fail(err, errlen, "%s:%u: NUL byte in line", name, no);
		if (rc != 0)
			break;
		memcpy(line, text + at, n);
		line[n] = '\0';
		rc = parse_line(line, name, no, set, ctx, err, errlen);
		at += n + (nl != NULL);
	}
	free(line);
	return rc;
}

int pm_conf_load(const char *path, size_t file_bytes_max, size_t line_bytes, pm_conf_set_fn set,
		 void *ctx, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return fail(err, errlen, "%s: %s", path, strerror(errno));
	char *text = malloc(file_bytes_max + 1);
	if (!text) {
		fclose(f);
		return fail(err, errlen, "%s: out of memory", path);
	}
	size_t n = fread(text, 1, file_bytes_max + 1, f);
	int rc;
	if (ferror(f))
		rc = fail(err, errlen, "%s: read error", path);
	else if (n > file_bytes_max)
		rc = fail(err, errlen, "%s: longer than %zu bytes", path, file_bytes_max);
	else
		rc = pm_conf_parse(path, text, n, line_bytes, set, ctx, err, errlen);
	free(text);
	fclose(f);
	return rc;
}

int pm_conf_parse_u64(const char *v, bool suffixes, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)v[0]))
		return -1;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno)
		return -1;
	unsigned shift = 0;
	if (suffixes && *end) {
		const char *units = "KMGT";
		const char *u = strchr(units, toupper((unsigned char)*end));
		if (!u || end[1] != '\0')
			return -1;
		shift = 10u * (unsigned)(u - units + 1);
		end++;
	}
	if (*end || (shift && x > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)x << shift;
	return 0;
}
