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
 *
 * Its own options may stand anywhere on the line, before or after the
 * command (`--` ends them: what follows is the command's, even if it starts
 * with a dash); an unknown option is a usage error. The admin socket is
 * found as find_socket() says (docs/admin.md, "Finding the socket").
 */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "admin_proto.h"
#include "auth.h"
#include "conftext.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define TIMEOUT_MS_DEFAULT 10000
/* Where the admin socket is looked for when nothing names it, in this
 * order: the Debian package's data_dir (debian/, /var/lib/pomai), then
 * pomaid's default data_dir, relative to where pomaictl runs. */
#define SOCKET_PACKAGED "/var/lib/pomai/admin.sock"
#define SOCKET_DEFAULT "./var/pomai/admin.sock"
#define SOCKET_NAME "admin.sock" /* in data_dir, when admin_socket is empty */
/* A path pomaictl builds or reads from a config (sun_path is 108 bytes;
 * pm_admin_connect refuses a longer one with a clear error). */
#define SOCKET_PATH_BYTES 512
/* Reading pomaid's config for data_dir and admin_socket: the file and line
 * bounds pomaid itself keeps (dataplane/config.h PM_CONFIG_FILE_BYTES_MAX,
 * PM_CONFIG_LINE_BYTES), so that every file pomaid reads, pomaictl reads. */
#define CONFIG_FILE_BYTES_MAX (1u << 20)
#define CONFIG_LINE_BYTES 2048u
/* "where it looked" when no socket was found: four candidates with their
 * paths and reasons. */
#define LOOKED_BYTES (4 * (SOCKET_PATH_BYTES + 64))

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
	fprintf(f, "usage: pomaictl [OPTIONS] COMMAND [ARGS] [OPTIONS]\n\n"
		   "  --socket PATH  the admin socket\n"
		   "  --config FILE  pomaid's config (env POMAI_CONFIG): the socket in its data_dir\n"
		   "  --json         print the answer as one JSON object\n"
		   "  --timeout MS   how long to wait for the answer (default %d)\n"
		   "  --             the rest is the command's, even if it starts with '-'\n\n"
		   "The socket: --socket, else --config / POMAI_CONFIG, else POMAI_ADMIN_SOCKET,\n"
		   "else the first of %s and %s that exists.\n\ncommands:\n",
		TIMEOUT_MS_DEFAULT, SOCKET_PACKAGED, SOCKET_DEFAULT);
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

/* ---------------------------------------------------------------- the line */

struct opts {
	const char *sock;   /* --socket */
	const char *config; /* --config */
	int timeout_ms;
	bool json, help;
	int argc;           /* the command and its arguments, options taken out */
	char **argv;
	int plain_from;     /* argv[plain_from..] came after "--": never options */
};

/* Take pomaictl's own options from anywhere on the line; the rest, in
 * order, is the command's. -1: a bad or unknown option (said on stderr). */
static int parse_line(int argc, char **argv, struct opts *o)
{
	o->argc = 0;
	o->plain_from = argc;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool val = i + 1 < argc;
		if (!strcmp(a, "--")) {
			o->plain_from = o->argc;
			while (++i < argc)
				o->argv[o->argc++] = argv[i];
		} else if (!strcmp(a, "--json"))
			o->json = true;
		else if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			o->help = true;
		else if (!strcmp(a, "--socket") && val)
			o->sock = argv[++i];
		else if (!strcmp(a, "--config") && val)
			o->config = argv[++i];
		else if (!strcmp(a, "--timeout") && val && atoi(argv[i + 1]) > 0)
			o->timeout_ms = atoi(argv[++i]);
		else if (!strcmp(a, "--socket") || !strcmp(a, "--config") || !strcmp(a, "--timeout")) {
			fprintf(stderr, "pomaictl: %s needs a value%s\n", a,
				strcmp(a, "--timeout") ? "" : " (milliseconds, > 0)");
			return -1;
		} else
			o->argv[o->argc++] = argv[i];
	}
	return 0;
}

/* Options are the command's own only in `collection create` and `cluster
 * reshard` (build() checks those); anywhere else a dash word before "--"
 * is an option pomaictl does not know. */
static const char *unknown_option(const struct opts *o)
{
	bool own = o->argc >= 2 && ((!strcmp(o->argv[0], "collection") &&
				     !strcmp(o->argv[1], "create")) ||
				    (!strcmp(o->argv[0], "cluster") && !strcmp(o->argv[1], "reshard")));
	for (int i = 0; i < o->argc && i < o->plain_from; i++)
		if (o->argv[i][0] == '-' && o->argv[i][1] && (i == 0 || !own))
			return o->argv[i];
	return NULL;
}

/* ---------------------------------------------------------------- the socket */

struct conf_paths {
	char data_dir[SOCKET_PATH_BYTES];
	char admin_socket[SOCKET_PATH_BYTES];
};

static int conf_path(void *ctx, const char *key, const char *value, char *err, size_t errlen)
{
	struct conf_paths *c = ctx;
	char *to = !strcmp(key, "data_dir") ? c->data_dir
		   : !strcmp(key, "admin_socket") ? c->admin_socket : NULL;
	if (to && strlen(value) >= SOCKET_PATH_BYTES) {
		snprintf(err, errlen, "%s is longer than %d bytes", key, SOCKET_PATH_BYTES - 1);
		return -1;
	}
	if (to)
		strcpy(to, value);
	return 0; /* pomaid's other keys are pomaid's to check */
}

/* The socket a config names: its admin_socket, else data_dir/admin.sock
 * (pomaid's defaults when it sets neither). -1: unreadable (said). */
static int socket_of_config(const char *path, char *out, size_t cap)
{
	struct conf_paths c = { .data_dir = "./var/pomai" };
	char err[PM_CONF_MSG_BYTES + 256];
	if (pm_conf_load(path, CONFIG_FILE_BYTES_MAX, CONFIG_LINE_BYTES, conf_path, &c, err,
			 sizeof(err)) != 0) {
		fprintf(stderr, "pomaictl: --config / POMAI_CONFIG: %s\n", err);
		return -1;
	}
	if (c.admin_socket[0])
		snprintf(out, cap, "%s", c.admin_socket);
	else
		snprintf(out, cap, "%s/%s", c.data_dir, SOCKET_NAME);
	return 0;
}

/* Where the admin socket is: --socket; else the config's (--config, then
 * POMAI_CONFIG); else POMAI_ADMIN_SOCKET; else the first of SOCKET_PACKAGED
 * and SOCKET_DEFAULT that exists. The first source given decides (it is not
 * second-guessed by the next); NULL when none did and no default exists,
 * with where it looked in looked. *bad: a config that could not be read. */
static const char *find_socket(const struct opts *o, char *buf, size_t cap, char *looked,
			       size_t lcap, bool *bad)
{
	const char *config = o->config ? o->config : getenv("POMAI_CONFIG");
	const char *env = getenv("POMAI_ADMIN_SOCKET");
	*bad = false;
	if (o->sock)
		return o->sock;
	if (config && config[0]) {
		*bad = socket_of_config(config, buf, cap) != 0;
		return *bad ? NULL : buf;
	}
	if (env && env[0])
		return env;
	static const char *const defaults[] = { SOCKET_PACKAGED, SOCKET_DEFAULT };
	size_t at = (size_t)snprintf(looked, lcap, "no --socket, --config, POMAI_CONFIG or "
						   "POMAI_ADMIN_SOCKET given; looked at");
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		if (access(defaults[i], F_OK) == 0)
			return defaults[i];
		if (at < lcap)
			at += (size_t)snprintf(looked + at, lcap - at, "%s %s (%s)", i ? "," : "",
					       defaults[i], strerror(errno));
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct opts o = { .timeout_ms = TIMEOUT_MS_DEFAULT, .argv = argv };
	if (parse_line(argc, argv, &o) != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *bad_opt = unknown_option(&o);
	if (bad_opt) {
		fprintf(stderr, "pomaictl: %s: unknown option\n", bad_opt);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (o.argc == 0) {
		usage(o.help ? stdout : stderr);
		return o.help ? 0 : EXIT_USAGE;
	}
	const struct sub *s = NULL;
	for (size_t k = 0; k < NSUBS; k++)
		s = !strcmp(o.argv[0], subs[k].name) ? &subs[k] : s;
	if (!s) {
		fprintf(stderr, "pomaictl: %s: no such command\n", o.argv[0]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (o.help) {
		printf("usage: pomaictl [OPTIONS] %s\n  %s\n", s->usage, s->help);
		return 0;
	}
	const char *args[PM_ADMIN_ARGS_MAX];
	uint32_t n = 0;
	if (build(s, o.argc - 1, o.argv + 1, args, &n) != 0 ||
	    (!strcmp(s->name, "user") && !strcmp(args[1], "ADD") && !user_add_args(args, &n))) {
		fprintf(stderr, "usage: pomaictl [OPTIONS] %s\n", s->usage);
		return EXIT_USAGE;
	}
	static char path[SOCKET_PATH_BYTES], looked[LOOKED_BYTES];
	bool bad_config;
	const char *sock = find_socket(&o, path, sizeof(path), looked, sizeof(looked), &bad_config);
	if (!sock && bad_config)
		return EXIT_USAGE;
	if (!sock) {
		fprintf(stderr, "pomaictl: no admin socket: %s\n", looked);
		return EXIT_UNREACHABLE;
	}
	return call(sock, o.timeout_ms, o.json, s, n, args);
}
