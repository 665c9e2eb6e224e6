/* SPDX-License-Identifier: MIT
 *
 * pomaictl — the operator's CLI: one command to pomaid's admin socket (or to
 * pomai-control's, which speaks the same protocol, forwards what it does not
 * answer itself, and adds `control`: proto/admin_proto.h),
 * its answer printed as text or, with --json, as one JSON object.
 *
 * Exit codes scripts can rely on: 0 done; 1 the daemon refused or the command
 * failed (its message on stderr); 2 usage (here or as the daemon judged it);
 * 3 the daemon could not be reached or did not answer in time.
 */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_proto.h"
#include "auth.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define TIMEOUT_MS_DEFAULT 10000
#define SOCKET_DEFAULT "./var/pomai/admin.sock"

struct sub {
	const char *name;
	uint32_t min_args, max_args; /* after the subcommand's name */
	const char *usage, *help;
};

static const struct sub subs[] = {
	{ "info", 0, 1, "info [SECTION]", "INFO text of every shard, summed in a Total section" },
	{ "snapshot", 0, 1, "snapshot [now|status]",
	  "now (default): every shard starts a snapshot; status: progress and the last one" },
	{ "config", 2, 3, "config get KEY | config set KEY VALUE",
	  "read a key; change one the daemon reads afresh (others need a restart: exit 1)" },
	{ "collection", 1, 16, "collection list | create NAME --dim D [--metric l2|ip|cosine]"
	  " [--index flat|hnsw] [--m M] [--ef-construction N] [--ef-search N]"
	  " [--dtype f32|f16|q8|bin] [--rerank N] | drop NAME",
	  "list, create or drop vector collections (on every shard)" },
	{ "shards", 0, 0, "shards", "per shard: CPU, NUMA node, queue, keys, vectors, bytes, latency" },
	{ "clients", 0, 1, "clients [N]", "the N busiest clients (default 10): requests, bytes, throttled" },
	{ "quota", 1, 5, "quota set ADDR RPS BPS | get ADDR | list | del ADDR",
	  "per-client request and byte rates" },
	{ "replication", 1, 2, "replication follow HOST:PORT | stop | promote | status",
	  "follow a primary (its address and repl_port), stop following (read-only, detached),"
	  " become the primary (a new epoch), or show each shard's role, LSNs and replicas" },
	{ "cluster", 1, 15, "cluster status | nodes | slots | init SET,SET,... |"
	  " reshard --slots A-B --to SET [--rate KEYS_PER_S] |"
	  " collection create NAME dim=D [metric=..] [index=..] [m=..] [ef_construction=..]"
	  " [ef_search=..] [dtype=..] [rerank=N] | collection drop NAME",
	  "the cluster as this node sees it: sets, primaries, epochs, lease, slot ranges; init"
	  " writes the first slot map; reshard moves slots A..B to SET while clients go on"
	  " (--rate: at most that many keys a second);"
	  " collection: on every set (pomai-control's socket;"
	  " docs/cluster.md)" },
	{ "user", 1, 14, "user list | add NAME RIGHTS [key=PREFIX]... [coll=PREFIX]... [id=N] |"
	  " del NAME | grant NAME WHAT... | revoke NAME WHAT...",
	  "users of auth = on (docs/security.md): add makes a random key, prints it once and"
	  " sends the daemon only its MAC key; RIGHTS and WHAT: read, write, admin (comma"
	  " list), key=PREFIX, coll=PREFIX" },
	{ "ping", 0, 0, "ping", "is the daemon there" },
	{ "shutdown", 0, 0, "shutdown", "stop the daemon (as SIGTERM does)" },
	{ "control", 0, 0, "control",
	  "pomai-control's own state: attached, snapshot schedule, quota table (its socket only)" },
};
#define NSUBS (sizeof(subs) / sizeof(subs[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: pomaictl [--socket PATH] [--json] [--timeout MS] COMMAND [ARGS]\n\n"
		   "  --socket PATH  the admin socket (env POMAI_ADMIN_SOCKET; default %s)\n"
		   "  --json         print the answer as one JSON object\n"
		   "  --timeout MS   how long to wait for the answer (default %d)\n\ncommands:\n",
		SOCKET_DEFAULT, TIMEOUT_MS_DEFAULT);
	for (size_t i = 0; i < NSUBS; i++)
		fprintf(f, "  %-12s %s\n", subs[i].name, subs[i].help);
	fprintf(f, "\n'pomaictl COMMAND --help' for each. Exit: 0 ok, 1 failed, 2 usage,"
		   " 3 unreachable.\n");
}

/* ---------------------------------------------------------------- JSON */

static void json_string(const char *p, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static bool is_number(const char *p, size_t n)
{
	size_t i = n && p[0] == '-';
	if (i == n)
		return false;
	for (; i < n; i++)
		if (!isdigit((unsigned char)p[i]) && p[i] != '.')
			return false;
	return p[n - 1] != '.' && !(n > 1 && p[0] == '0' && isdigit((unsigned char)p[1]));
}

/* "# Section" lines open objects; "field:value" lines are members; other
 * lines are collected as "message". */
static void print_json(uint8_t status, const char *t, size_t n)
{
	bool in_sec = false, first = true, sec_first = true;
	printf("{\"status\":\"%s\"", status == PM_ADMIN_OK ? "ok" : "error");
	for (size_t at = 0; at < n;) {
		size_t end = at;
		while (end < n && t[end] != '\n')
			end++;
		size_t len = end - at;
		if (len && t[at + len - 1] == '\r')
			len--;
		const char *line = t + at, *colon = memchr(line, ':', len);
		at = end + 1;
		if (len == 0)
			continue;
		if (len > 2 && line[0] == '#' && line[1] == ' ') {
			printf("%s,", in_sec ? "}" : "");
			json_string(line + 2, len - 2);
			printf(":{");
			in_sec = true, sec_first = true;
		} else if (colon && colon != line && !memchr(line, ' ', (size_t)(colon - line))) {
			printf("%s", in_sec ? (sec_first ? "" : ",") : ",");
			json_string(line, (size_t)(colon - line));
			putchar(':');
			size_t vlen = len - (size_t)(colon - line) - 1;
			size_t klen = (size_t)(colon - line);
			/* an id (repl_id: 16 hex digits) is text even when all its digits are decimal */
			bool id = klen >= 3 && !memcmp(line + klen - 3, "_id", 3);
			if (!id && is_number(colon + 1, vlen))
				printf("%.*s", (int)vlen, colon + 1);
			else
				json_string(colon + 1, vlen);
			sec_first = false;
		} else {
			printf("%s%s\"message\":", in_sec ? "}" : "", ",");
			json_string(line, len);
			in_sec = false;
		}
		first = false;
	}
	(void)first;
	printf("%s}\n", in_sec ? "}" : "");
}

/* ---------------------------------------------------------------- commands */

static char *upper(const char *s, char *buf, size_t n)
{
	size_t i = 0;
	for (; s[i] && i + 1 < n; i++)
		buf[i] = (char)toupper((unsigned char)s[i]);
	buf[i] = '\0';
	return buf;
}

/* collection create NAME --dim D ...: into "key=value" admin arguments. */
static int collection_create(int argc, char **argv, const char **out, uint32_t *n,
			     char (*kv)[128])
{
	static const char *const opts[][2] = { { "--dim", "dim" }, { "--metric", "metric" },
					       { "--index", "index" }, { "--m", "m" },
					       { "--ef-construction", "ef_construction" },
					       { "--ef-search", "ef_search" }, { "--dtype", "dtype" },
					       { "--rerank", "rerank" } };
	bool dim = false;
	for (int i = 0; i < argc; i += 2) {
		size_t o = 0;
		while (o < sizeof(opts) / sizeof(opts[0]) && strcmp(argv[i], opts[o][0]))
			o++;
		if (o == sizeof(opts) / sizeof(opts[0]) || i + 1 >= argc ||
		    *n >= PM_ADMIN_ARGS_MAX)
			return -1;
		snprintf(kv[i / 2], sizeof(kv[0]), "%s=%s", opts[o][1], argv[i + 1]);
		out[(*n)++] = kv[i / 2];
		dim |= o == 0;
	}
	return dim ? 0 : -1;
}

/* The admin request for a subcommand and its arguments; -1: usage. */
static int build(const struct sub *s, int argc, char **argv, const char **out, uint32_t *n)
{
	static char words[4][32], kv[8][128];
	if ((uint32_t)argc < s->min_args || (uint32_t)argc > s->max_args)
		return -1;
	*n = 0;
	out[(*n)++] = upper(s->name, words[0], sizeof(words[0]));
	bool coll = !strcmp(s->name, "collection");
	if (coll && !strcmp(argv[0], "create")) {
		if (argc < 2)
			return -1;
		out[(*n)++] = "CREATE";
		out[(*n)++] = argv[1];
		return collection_create(argc - 2, argv + 2, out, n, kv);
	}
	if (coll && !(!strcmp(argv[0], "list") ? argc == 1 : !strcmp(argv[0], "drop") && argc == 2))
		return -1;
	if (!strcmp(s->name, "replication") &&
	    !(!strcmp(argv[0], "follow") ? argc == 2
	      : argc == 1 && (!strcmp(argv[0], "stop") || !strcmp(argv[0], "promote") ||
			      !strcmp(argv[0], "status"))))
		return -1;
	if (!strcmp(s->name, "config") &&
	    !(!strcmp(argv[0], "get") ? argc == 2 : !strcmp(argv[0], "set") && argc == 3))
		return -1;
	bool ccoll = !strcmp(s->name, "cluster") && !strcmp(argv[0], "collection");
	if (!strcmp(s->name, "cluster") && !strcmp(argv[0], "reshard")) {
		/* reshard --slots A-B --to SET [--rate KEYS_PER_S] */
		static char first[16], last[16];
		const char *slots = NULL, *to = NULL, *rate = NULL;
		if (argc % 2 != 1)
			return -1;
		for (int i = 1; i + 1 < argc; i += 2) {
			if (!strcmp(argv[i], "--slots"))
				slots = argv[i + 1];
			else if (!strcmp(argv[i], "--to"))
				to = argv[i + 1];
			else if (!strcmp(argv[i], "--rate"))
				rate = argv[i + 1];
			else
				return -1;
		}
		const char *dash = slots ? strchr(slots, '-') : NULL;
		if (!to || !dash || dash == slots || (size_t)(dash - slots) >= sizeof(first) ||
		    strlen(dash + 1) >= sizeof(last) || !dash[1])
			return -1;
		memcpy(first, slots, (size_t)(dash - slots));
		first[dash - slots] = '\0';
		strcpy(last, dash + 1);
		out[(*n)++] = "RESHARD";
		out[(*n)++] = first;
		out[(*n)++] = last;
		out[(*n)++] = to;
		if (rate)
			out[(*n)++] = rate;
		return 0;
	}
	if (!strcmp(s->name, "cluster") &&
	    !(!strcmp(argv[0], "init") ? argc == 2
	      : ccoll ? argc >= 3 && (!strcmp(argv[1], "create") ? argc >= 4
				      : !strcmp(argv[1], "drop") && argc == 3)
	      : argc == 1 && (!strcmp(argv[0], "status") || !strcmp(argv[0], "nodes") ||
			      !strcmp(argv[0], "slots"))))
		return -1;
	for (int i = 0; i < argc; i++)
		out[(*n)++] = ccoll && i == 1 ? upper(argv[1], words[2], sizeof(words[2]))
			      : i == 0 && (coll || !strcmp(s->name, "config") || !strcmp(s->name, "quota") ||
					 !strcmp(s->name, "user") ||
					 !strcmp(s->name, "replication") || !strcmp(s->name, "cluster"))
				      ? upper(argv[0], words[1], sizeof(words[1]))
				      : argv[i];
	return 0;
}

/* user add: a fresh random key; the daemon gets the MAC key derived from it
 * (args[3], which build() left as the rights: the key goes after them). */
static uint8_t user_key[PM_AUTH_USER_KEY_BYTES];
static char user_mac_hex[2 * PM_AUTH_MAC_KEY_BYTES + 1];

static bool user_add_args(const char **args, uint32_t *n)
{
	if (*n < 4 || *n + 1 > PM_ADMIN_ARGS_MAX || pm_auth_init() != 0)
		return false;
	uint8_t mac[PM_AUTH_MAC_KEY_BYTES];
	pm_auth_random(user_key, sizeof(user_key));
	pm_auth_derive(user_key, mac);
	pm_auth_hex(mac, sizeof(mac), user_mac_hex);
	memmove(args + 5, args + 4, (*n - 4) * sizeof(args[0]));
	args[4] = user_mac_hex;
	(*n)++;
	return true;
}

/* What user add prints once: the id the daemon gave, and the key. */
static void user_add_print(bool json, const char *text, size_t tlen)
{
	char hex[2 * PM_AUTH_USER_KEY_BYTES + 1];
	const char *id = memmem(text, tlen, "id:", 3);
	unsigned long v = id ? strtoul(id + 3, NULL, 10) : 0;
	pm_auth_hex(user_key, sizeof(user_key), hex);
	if (json)
		printf("{\"status\":\"ok\",\"id\":%lu,\"key\":\"%s\"}\n", v, hex);
	else
		printf("id:%lu\nkey:%s\n", v, hex);
	fprintf(stderr, "pomaictl: the key is shown once: give it to the user's clients"
			" (pomai-cli --key-file, POMAI_KEY)\n");
}

static int call(const char *sock, int timeout_ms, bool json, const struct sub *s, uint32_t n,
		const char **args)
{
	static uint8_t buf[PM_ADMIN_LEN_BYTES + PM_ADMIN_MESSAGE_BYTES_MAX];
	int fd = pm_admin_connect(sock);
	if (fd < 0) {
		fprintf(stderr, "pomaictl: %s: %s\n", sock, strerror(-fd));
		return EXIT_UNREACHABLE;
	}
	uint8_t status;
	const char *text;
	size_t tlen;
	int rc = pm_admin_call(fd, n, args, buf, sizeof(buf), timeout_ms, &status, &text, &tlen);
	close(fd);
	if (rc != 0) {
		fprintf(stderr, "pomaictl: %s: %s\n", sock, strerror(-rc));
		return EXIT_UNREACHABLE;
	}
	bool add = !strcmp(s->name, "user") && n > 1 && !strcmp(args[1], "ADD");
	if (add && status == PM_ADMIN_OK)
		user_add_print(json, text, tlen);
	else if (json)
		print_json(status, text, tlen);
	else
		fwrite(text, 1, tlen, status == PM_ADMIN_OK ? stdout : stderr);
	if (status == PM_ADMIN_USAGE && !json) /* the daemon judged the arguments */
		fprintf(stderr, "usage: pomaictl [OPTIONS] %s\n", s->usage);
	return status == PM_ADMIN_OK ? 0
	       : status == PM_ADMIN_USAGE ? EXIT_USAGE
	       : status == PM_ADMIN_UNAVAILABLE ? EXIT_UNREACHABLE : EXIT_FAILED;
}

int main(int argc, char **argv)
{
	const char *sock = getenv("POMAI_ADMIN_SOCKET");
	int timeout_ms = TIMEOUT_MS_DEFAULT, i = 1;
	bool json = false;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--socket") && i + 1 < argc)
			sock = argv[++i];
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc && atoi(argv[i + 1]) > 0)
			timeout_ms = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const struct sub *s = NULL;
	for (size_t k = 0; k < NSUBS; k++)
		s = !strcmp(argv[i], subs[k].name) ? &subs[k] : s;
	if (!s) {
		fprintf(stderr, "pomaictl: %s: no such command\n", argv[i]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (i + 1 < argc && !strcmp(argv[i + 1], "--help")) {
		printf("usage: pomaictl [OPTIONS] %s\n  %s\n", s->usage, s->help);
		return 0;
	}
	const char *args[PM_ADMIN_ARGS_MAX];
	uint32_t n = 0;
	if (build(s, argc - i - 1, argv + i + 1, args, &n) != 0 ||
	    (!strcmp(s->name, "user") && !strcmp(args[1], "ADD") && !user_add_args(args, &n))) {
		fprintf(stderr, "usage: pomaictl [OPTIONS] %s\n", s->usage);
		return EXIT_USAGE;
	}
	return call(sock ? sock : SOCKET_DEFAULT, timeout_ms, json, s, n, args);
}
