/* SPDX-License-Identifier: MIT
 *
 * fuzz_config.c — the two configuration parsers: pomaid's
 * (dataplane/config.h, pm_config_parse) and pomai-control's
 * (control/control.h, ctl_config_parse), both over the same text.
 *
 * Invariants: a refusal comes with a non-empty message naming the text; an
 * accepted config prints (pm_config_print / ctl_config_print) to text that
 * parses again, over the defaults, to a config that prints the same.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "control.h"
#include "fuzz.h"

/* Config text read, at most: a few lines is what the parsers see per input;
 * longer inputs only repeat them. */
#define CONFIG_INPUT_BYTES_MAX (64u << 10)

/* What f wrote, as a NUL-terminated heap string (free it). */
typedef void (*print_fn)(const void *c, FILE *f);

static char *printed(print_fn print, const void *c, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	FUZZ_CHECK(f != NULL);
	print(c, f);
	FUZZ_CHECK(fclose(f) == 0 && text != NULL);
	return text;
}

static void print_pomaid(const void *c, FILE *f)
{
	pm_config_print(c, f);
}

static void print_control(const void *c, FILE *f)
{
	ctl_config_print(c, f);
}

static void pomaid_config(const char *text, size_t len)
{
	static struct pm_config a, b;
	char err[PM_CONFIG_ERR_BYTES] = "";
	pm_config_defaults(&a);
	if (pm_config_parse(&a, "fuzz", text, len, err, sizeof(err)) != 0) {
		FUZZ_CHECK(err[0] != '\0' && !strncmp(err, "fuzz:", 5));
		return;
	}
	size_t n1, n2;
	char *t1 = printed(print_pomaid, &a, &n1);
	pm_config_defaults(&b);
	if (pm_config_parse(&b, "printed", t1, n1, err, sizeof(err)) != 0) {
		fprintf(stderr, "printed config refused: %s\n", err);
		FUZZ_CHECK(0);
	}
	char *t2 = printed(print_pomaid, &b, &n2);
	FUZZ_CHECK(n1 == n2 && !memcmp(t1, t2, n1));
	free(t1);
	free(t2);
}

static void control_config(const char *text, size_t len)
{
	static struct ctl_config a, b;
	char err[CTL_ERR_BYTES] = "";
	ctl_config_defaults(&a);
	if (ctl_config_parse(&a, "fuzz", text, len, err, sizeof(err)) != 0) {
		FUZZ_CHECK(err[0] != '\0' && !strncmp(err, "fuzz:", 5));
		return;
	}
	FUZZ_CHECK(a.nquotas <= PM_QUOTA_OVERRIDES_MAX);
	size_t n1, n2;
	char *t1 = printed(print_control, &a, &n1);
	ctl_config_defaults(&b);
	if (ctl_config_parse(&b, "printed", t1, n1, err, sizeof(err)) != 0) {
		fprintf(stderr, "printed config refused: %s\n", err);
		FUZZ_CHECK(0);
	}
	char *t2 = printed(print_control, &b, &n2);
	FUZZ_CHECK(n1 == n2 && !memcmp(t1, t2, n1));
	FUZZ_CHECK(a.nquotas == b.nquotas);
	free(t1);
	free(t2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > CONFIG_INPUT_BYTES_MAX)
		return 0;
	pomaid_config((const char *)data, size);
	control_config((const char *)data, size);
	return 0;
}
