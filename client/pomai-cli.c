/* SPDX-License-Identifier: MIT
 *
 * pomai-cli.c — the data command line of Pomai, built on libpomai.
 *
 *   pomai-cli [--host H] [--port P] [--shards N] [--tcp] [--timeout MS] COMMAND …
 *   pomai-cli --cluster [--host H] [--port P] [--tcp] [--read-replica] COMMAND …
 *
 * --cluster: H and P name any node of a cluster; libpomai fetches the slot
 * map from it and routes every key to its set's node (docs/client.md);
 * `pomai-cli --cluster map` prints that map.
 *
 * Without --shards (or POMAI_SHARDS) the server's shard count is asked once
 * at start (INFO cluster) and kept for the process. With no COMMAND,
 * pomai-cli is a prompt (cli_repl.c reads the lines: libedit on a terminal,
 * plain lines from a pipe) running a command a line on one connection.
 * --memif SOCK sends everything through libpomai_memif instead of UDP (when
 * built with DPDK). A value GET prints is its raw bytes into a pipe, a line
 * on a terminal and at the prompt.
 *
 * Options are long options only ("--name VALUE" or "--name=VALUE") and may
 * appear anywhere; every other argument is positional, so a vector such as
 * "-1.5,2" is never mistaken for an option ("--" ends the options). Keys and
 * values given as arguments are used as their bytes.
 *
 * Exit codes: 0 ok, 1 not found (GET/VGET miss, DEL/VDEL/drop removed nothing),
 * 2 usage error, 3 an error status (from the server, or the same check done
 * locally), 4 timeout or connection failure.
 */
#define _GNU_SOURCE /* sched_getcpu (--memif) */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_data.h"
#include "cli_repl.h"
#include "pomai.h"
#ifdef POMAI_CLI_MEMIF
#include <sched.h>

#include "pomai_memif.h"
#endif

#define EXIT_NOT_FOUND 1
#define EXIT_USAGE 2
#define EXIT_SERVER 3
#define EXIT_TIMEOUT 4

/* Positional arguments a command takes at most ("vadd KEY VEC attr" and a
 * record's fields). */
#define CLI_POSITIONAL_MAX ((int)(4 + PM_CLIENT_ATTR_FIELDS_MAX))
/* Progress bar: redrawn at most this often, this many cells wide. */
#define CLI_PROGRESS_MS 100u
#define CLI_PROGRESS_CELLS 30u
/* --memif: this end's MAC unless --memif-mac (locally administered, unicast:
 * a memif port's own default is a group address, which both ends drop). */
#define CLI_MEMIF_MAC_DEFAULT "02:70:6d:63:6c:01"
/* --memif: the EAL line built from SOCK and the MAC; one lcore (a CPU this
 * process may run on), no hugepages, 256 MiB, no shared config and a prefix
 * of its own (nothing left in /run/dpdk by a short-lived process), the memif
 * driver's own messages only when critical (without a shared config it
 * complains at every start; a failure is said by libpomai_memif's why). */
#define CLI_MEMIF_EAL_FMT                                                         \
	"-l %d --no-huge --no-pci -m 256 --no-shconf --file-prefix=pomai-cli-%d "  \
	"--log-level=lib.eal:error --log-level=pmd.net.memif:critical "           \
	"--vdev=net_memif0,role=client,socket=%s,socket-abstract=no,mac=%s"
#define CLI_MEMIF_EAL_BYTES 1024u
/* Default neighbours for knn. */
#define CLI_K_DEFAULT 10u
/* A batch frame's bytes: one UDP datagram, less its header and count. */
#define CLI_BATCH_BYTES (65507u - 24u - 1u - 4u)

/* ---------------------------------------------------------------- commands */

enum cmd { C_SET, C_GET, C_DEL, C_VADD, C_VGET, C_VDEL, C_KNN, C_COLL, C_INFO, C_LOAD,
	   C_SNAPSHOT, C_MAP, C_VSETATTR, C_RANGE, C_COUNT };

#define M(c) (1u << (c))
#define M_ALL ((1u << C_COUNT) - 1u)

struct cmd_def {
	const char *name;
	const char *usage;
};

static const struct cmd_def cmds[C_COUNT] = {
	[C_SET] = { "set", "set KEY VALUE [--ttl MS]\n  Store VALUE under KEY; prints OK." },
	[C_GET] = { "get", "get KEY [--hex]\n  Print the value of KEY as raw bytes (or hex)." },
	[C_DEL] = { "del", "del KEY\n  Delete KEY; prints 1 if it existed, else 0 (exit 1)." },
	[C_VADD] = { "vadd", "vadd KEY v1,v2,... [attr NAME=VALUE ...] [--collection C] [--ttl MS]\n"
			     "  Store a vector under KEY (default collection of its dimension),\n"
			     "  with attributes: VALUE a number is numeric, anything else a tag\n"
			     "  (e.g. attr label=shirt price=12.5)." },
	[C_VGET] = { "vget", "vget KEY\n  Print the vector of KEY as v1,v2,... and, on a second line,\n"
			     "  its attributes as NAME=VALUE ... (when it has any)." },
	[C_VDEL] = { "vdel", "vdel KEY\n  Delete vector KEY; prints 1 or 0 (exit 1)." },
	[C_KNN] = { "knn", "knn v1,v2,...|--file F [filter EXPR] [--row N] [--k K] [--ef EF]\n"
			   "    [--exact] [--collection C] [--hex]\n"
			   "  EXPR: only vectors whose attributes pass it, e.g.\n"
			   "  filter \"label = 'shirt' and price < 20\" (docs/protocol.md).\n"
			   "  Print the K nearest keys, one \"KEY<TAB>DISTANCE\" line each, nearest\n"
			   "  first. --file F: every record of F is a query (a .fvecs, IDX or CSV\n"
			   "  file, or a text file of v1,v2,... lines), sent in VQUERY batches;\n"
			   "  with more than one, each line is \"ROW<TAB>KEY<TAB>DISTANCE\" (ROW\n"
			   "  from 0, query by query). --row N: record N alone." },
	[C_COLL] = { "collection",
		     "collection create NAME --dim D [--metric l2|ip|cosine] [--index flat|hnsw]\n"
		     "                  [--m M] [--ef-construction N] [--ef-search N] [--evictable]\n"
		     "                  [--dtype f32|f16|q8|bin] [--rerank on|off]\n"
		     "                  [--rerank-candidates N]\n"
		     "collection list\n"
		     "collection drop NAME\n"
		     "  Create, list or drop vector collections. --evictable: the server may\n"
		     "  evict its vectors when a shard reaches maxmemory (harvest, random).\n"
		     "  --dtype: how the server stores the vectors (f32 default; q8 int8 with\n"
		     "  a scale, bin one bit per component). --rerank on keeps the f32 too and\n"
		     "  re-ranks the best N candidates by it (N default: the server's)." },
	[C_INFO] = { "info", "info [SECTION]\n  Print the server's INFO text." },
	[C_LOAD] = { "load", "load FILE [--collection C] [--prefix P] [--ttl MS] [--limit N]\n"
			     "    [--inflight N]\n"
			     "  Bulk-add the vectors of FILE (.fvecs, Fashion-MNIST IDX .gz or plain\n"
			     "  IDX, or CSV key,v1,v2,...). Keys are P + row number (P + key for\n"
			     "  CSV). Prints a progress bar on a terminal and a summary." },
	[C_SNAPSHOT] = { "snapshot",
			 "snapshot\n"
			 "  Ask every shard to start a snapshot (it runs in the background);\n"
			 "  prints OK. Refused (E_PARAM, exit 3) when the server's log is off\n"
			 "  (wal = none). With --cluster: every replica set's primary." },
	[C_MAP] = { "map",
		    "--cluster map\n"
		    "  Print the cluster's slot map as the node at --host/--port sends it:\n"
		    "  its epoch, the replica sets (epoch, primary), the nodes (address,\n"
		    "  ports, shards, set, primary or replica) and the slot ranges." },
	[C_VSETATTR] = { "vsetattr",
			 "vsetattr KEY [NAME=VALUE ...]\n"
			 "  Replace the attributes of vector KEY (none given: remove them)." },
	[C_RANGE] = { "range", "range v1,v2,...|--file F [filter EXPR] [--row N] --radius R [--k MAX]\n"
			       "    [--ef EF] [--exact] [--collection C] [--hex]\n"
			       "  Print every key within distance R of the vector (the metric's: squared\n"
			       "  L2, 1 - dot, 1 - cosine), one \"KEY<TAB>DISTANCE\" line each, nearest\n"
			       "  first, at most MAX (default 1024). When more were within, the MAX\n"
			       "  nearest are printed and a note goes to stderr. Exact on flat\n"
			       "  collections, approximate through an HNSW graph. Not with --cluster.\n"
			       "  filter EXPR: only vectors whose attributes pass it (as for knn)." },
};

/* ---------------------------------------------------------------- options */

enum opt { O_HOST, O_PORT, O_SHARDS, O_TCP, O_TCP_PORT, O_TIMEOUT, O_RETRIES, O_CLUSTER,
	   O_READ_REPLICA, O_HELP, O_TTL,
	   O_COLLECTION, O_HEX, O_K, O_EF, O_EXACT, O_FILE, O_ROW, O_DIM, O_METRIC, O_INDEX, O_M, O_EFC,
	   O_EFS, O_EVICTABLE, O_DTYPE, O_RERANK, O_RERANK_K, O_PREFIX, O_LIMIT, O_INFLIGHT, O_RADIUS,
	   O_USER, O_KEY_FILE, O_MEMIF, O_MEMIF_IP, O_MEMIF_MAC, O_MEMIF_EAL, O_COUNT };

struct opt_def {
	const char *name;
	bool arg;
	uint32_t cmds; /* commands that accept it */
};

static const struct opt_def opts[O_COUNT] = {
	[O_HOST] = { "host", true, M_ALL },
	[O_USER] = { "user", true, M_ALL },
	[O_KEY_FILE] = { "key-file", true, M_ALL },
	[O_MEMIF] = { "memif", true, M_ALL & ~M(C_MAP) },
	[O_MEMIF_IP] = { "memif-ip", true, M_ALL & ~M(C_MAP) },
	[O_MEMIF_MAC] = { "memif-mac", true, M_ALL & ~M(C_MAP) },
	[O_MEMIF_EAL] = { "memif-eal", true, M_ALL & ~M(C_MAP) },
	[O_PORT] = { "port", true, M_ALL },
	[O_SHARDS] = { "shards", true, M_ALL },
	[O_TCP] = { "tcp", false, M_ALL },
	[O_TCP_PORT] = { "tcp-port", true, M_ALL },
	[O_TIMEOUT] = { "timeout", true, M_ALL },
	[O_RETRIES] = { "retries", true, M_ALL },
	[O_CLUSTER] = { "cluster", false, M_ALL },
	[O_READ_REPLICA] = { "read-replica", false, M_ALL & ~M(C_MAP) },
	[O_HELP] = { "help", false, M_ALL },
	[O_TTL] = { "ttl", true, M(C_SET) | M(C_VADD) | M(C_LOAD) },
	[O_COLLECTION] = { "collection", true, M(C_VADD) | M(C_KNN) | M(C_LOAD) | M(C_RANGE) },
	[O_HEX] = { "hex", false, M(C_GET) | M(C_KNN) | M(C_RANGE) },
	[O_K] = { "k", true, M(C_KNN) | M(C_RANGE) },
	[O_EF] = { "ef", true, M(C_KNN) | M(C_RANGE) },
	[O_EXACT] = { "exact", false, M(C_KNN) | M(C_RANGE) },
	[O_FILE] = { "file", true, M(C_KNN) | M(C_RANGE) },
	[O_ROW] = { "row", true, M(C_KNN) | M(C_RANGE) },
	[O_DIM] = { "dim", true, M(C_COLL) },
	[O_METRIC] = { "metric", true, M(C_COLL) },
	[O_INDEX] = { "index", true, M(C_COLL) },
	[O_M] = { "m", true, M(C_COLL) },
	[O_EFC] = { "ef-construction", true, M(C_COLL) },
	[O_EFS] = { "ef-search", true, M(C_COLL) },
	[O_EVICTABLE] = { "evictable", false, M(C_COLL) },
	[O_DTYPE] = { "dtype", true, M(C_COLL) },
	[O_RERANK] = { "rerank", true, M(C_COLL) },
	[O_RERANK_K] = { "rerank-candidates", true, M(C_COLL) },
	[O_PREFIX] = { "prefix", true, M(C_LOAD) },
	[O_LIMIT] = { "limit", true, M(C_LOAD) },
	[O_INFLIGHT] = { "inflight", true, M(C_LOAD) },
	[O_RADIUS] = { "radius", true, M(C_RANGE) },
};

struct cli {
	const char *val[O_COUNT];
	bool has[O_COUNT];
	const char *pos[CLI_POSITIONAL_MAX];
	int npos;
	int cmd; /* enum cmd, or -1 */
	bool shards_known; /* --shards, POMAI_SHARDS or --cluster: nothing to learn */
	bool lines;        /* a value ends its line: stdout is a terminal, or the prompt's */
	char eal[CLI_MEMIF_EAL_BYTES]; /* --memif: the EAL command line */
	struct pm_client_config cfg;
	struct pm_client *c;
};

static const char global_usage[] =
	"usage: pomai-cli [OPTIONS] COMMAND [ARGS]\n"
	"       pomai-cli [OPTIONS]     (no COMMAND: an interactive prompt)\n"
	"\n"
	"commands: set get del vadd vget vdel vsetattr knn range collection info load snapshot map\n"
	"          (pomai-cli COMMAND --help for each)\n"
	"\n"
	"options:\n"
	"  --host H       server IPv4 address (env POMAI_HOST; default 127.0.0.1)\n"
	"  --port P       base port: shard i on UDP P+i, TCP on P-1 (env POMAI_PORT; 7700)\n"
	"  --shards N     shards the server runs (env POMAI_SHARDS); by default asked of\n"
	"                 the server at start (INFO cluster), so each key goes straight\n"
	"                 to its shard\n"
	"  --tcp          use the TCP stream instead of UDP\n"
	"  --tcp-port T   the server's TCP port (env POMAI_TCP_PORT; default P-1)\n"
	"  --timeout MS   first reply timeout (default 250; doubles per retry)\n"
	"  --retries N    UDP resends (default 3; cluster: attempts after the first)\n"
	"  --cluster      H and P name a node of a cluster: keys go where its slot map\n"
	"                 says (env POMAI_CLUSTER=1; --shards is not needed)\n"
	"  --read-replica with --cluster: reads go to a replica of the key's set\n"
	"  --user ID      sign every request as this user (env POMAI_USER; issue 19)\n"
	"  --key-file F   the user's key: 64 hex digits in file F (or env POMAI_KEY);\n"
	"                 never on the command line, where other users see it\n"
	"  --memif SOCK   over a DPDK memif port instead of UDP: SOCK is the memif\n"
	"                 socket of pomaid's DPDK backend (its dpdk_eal_args); --host is\n"
	"                 pomaid's address on that link (docs/client.md, pomai-cli)\n"
	"  --memif-ip A/L this end's IPv4 address and prefix on the link (required)\n"
	"  --memif-mac M  this end's MAC (default " CLI_MEMIF_MAC_DEFAULT ")\n"
	"  --memif-eal E  the whole DPDK EAL command line instead of the one --memif\n"
	"                 builds (one lcore, no hugepages, the memif port's vdev)\n"
	"  --help         this text\n"
	"\n"
	"exit codes: 0 ok, 1 not found, 2 usage error, 3 error status, 4 timeout or\n"
	"connection failure\n";

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("pomai-cli: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(" (try --help)\n", stderr);
	va_end(ap);
	return EXIT_USAGE;
}

static int find_cmd(const char *name)
{
	for (int i = 0; i < C_COUNT; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return i;
	return -1;
}

/* One "--name[=value]" argument; *i advances past a separate value. */
static int parse_opt(struct cli *cl, int argc, char **argv, int *i)
{
	const char *name = argv[*i] + 2;
	const char *eq = strchr(name, '=');
	size_t n = eq ? (size_t)(eq - name) : strlen(name);
	for (int o = 0; o < O_COUNT; o++) {
		if (strlen(opts[o].name) != n || strncmp(opts[o].name, name, n) != 0)
			continue;
		if (opts[o].arg && !eq && *i + 1 >= argc)
			return usage_error("--%s needs a value", opts[o].name);
		if (!opts[o].arg && eq)
			return usage_error("--%s takes no value", opts[o].name);
		cl->has[o] = true;
		cl->val[o] = eq ? eq + 1 : opts[o].arg ? argv[++*i] : NULL;
		return -1;
	}
	return usage_error("unknown option %s", argv[*i]);
}

/* Returns -1 to go on, or an exit code. */
static int parse_args(struct cli *cl, int argc, char **argv)
{
	bool only_pos = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int rc = -1;
		if (!only_pos && strcmp(a, "--") == 0)
			only_pos = true;
		else if (!only_pos && strcmp(a, "-h") == 0)
			cl->has[O_HELP] = true;
		else if (!only_pos && strncmp(a, "--", 2) == 0)
			rc = parse_opt(cl, argc, argv, &i);
		else if (cl->npos < CLI_POSITIONAL_MAX)
			cl->pos[cl->npos++] = a;
		else
			rc = usage_error("too many arguments");
		if (rc >= 0)
			return rc;
	}
	cl->cmd = cl->npos ? find_cmd(cl->pos[0]) : -1;
	if (cl->npos && cl->cmd < 0)
		return usage_error("unknown command '%s'", cl->pos[0]);
	for (int o = 0; o < O_COUNT && cl->cmd >= 0; o++)
		if (cl->has[o] && !(opts[o].cmds & M(cl->cmd)))
			return usage_error("%s does not take --%s", cmds[cl->cmd].name, opts[o].name);
	return -1;
}

/* ---------------------------------------------------------------- values */

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	if (s == NULL || *s == '\0' || *s == '-')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* The numeric option o in [lo, hi] into *out (left as is when absent). */
static bool opt_u64(const struct cli *cl, enum opt o, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (!cl->has[o])
		return true;
	if (parse_u64(cl->val[o], lo, hi, out))
		return true;
	usage_error("--%s must be a number in %" PRIu64 "..%" PRIu64, opts[o].name, lo, hi);
	return false;
}

static bool opt_u32(const struct cli *cl, enum opt o, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint64_t v = *out;
	if (!opt_u64(cl, o, lo, hi, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

static int exit_of(enum pm_client_status st)
{
	switch (st) {
	case PM_CLIENT_OK: return 0;
	case PM_CLIENT_NOT_FOUND: return EXIT_NOT_FOUND;
	case PM_CLIENT_E_TIMEOUT:
	case PM_CLIENT_E_CONNECTION: return EXIT_TIMEOUT;
	case PM_CLIENT_E_CONFIG:
	case PM_CLIENT_E_ARG: return EXIT_USAGE;
	default: return EXIT_SERVER;
	}
}

static int report(const struct cli *cl, const char *what, enum pm_client_status st)
{
	if (st == PM_CLIENT_E_THROTTLED)
		fprintf(stderr, "pomai-cli: %s: %s: %s: retry in %u ms\n", what,
			pm_client_status_name(st), pm_client_strerror(st), pm_client_retry_ms(cl->c));
	else if (st == PM_CLIENT_E_READONLY) {
		char primary[64];
		fprintf(stderr, "pomai-cli: %s: %s: %s (%s)\n", what, pm_client_status_name(st),
			pm_client_strerror(st), pm_client_primary(cl->c, primary, sizeof(primary)) == 0
							  ? primary : "its primary is not known yet");
	} else if (st != PM_CLIENT_OK && st != PM_CLIENT_NOT_FOUND)
		fprintf(stderr, "pomai-cli: %s: %s: %s\n", what, pm_client_status_name(st),
			pm_client_strerror(st));
	else if (st == PM_CLIENT_NOT_FOUND)
		fprintf(stderr, "(not found)\n");
	return exit_of(st);
}

static void print_hex(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
}

static bool vector_arg(const char *s, float *out, uint32_t *dim)
{
	*dim = cli_parse_vector(s, out, PM_CLIENT_DIM_MAX);
	if (*dim == 0)
		usage_error("bad vector '%.40s': want v1,v2,... (1..%u numbers)", s,
			    PM_CLIENT_DIM_MAX);
	return *dim != 0;
}

static bool want_pos(const struct cli *cl, int n, const char *what)
{
	if (cl->npos == n)
		return true;
	usage_error("%s: want %s", cmds[cl->cmd].name, what);
	return false;
}

/* ---------------------------------------------------------------- key-value */

static int cmd_set(struct cli *cl)
{
	uint64_t ttl = 0;
	if (!want_pos(cl, 3, "KEY VALUE") || !opt_u64(cl, O_TTL, 1, PM_CLIENT_TTL_MS_MAX, &ttl))
		return EXIT_USAGE;
	const char *k = cl->pos[1], *v = cl->pos[2];
	enum pm_client_status st = pm_client_set(cl->c, k, strlen(k), v, strlen(v), ttl);
	if (st == PM_CLIENT_OK)
		puts("OK");
	return report(cl, "set", st);
}

static int cmd_get(struct cli *cl)
{
	static uint8_t buf[PM_CLIENT_VALUE_BYTES_MAX];
	if (!want_pos(cl, 2, "KEY"))
		return EXIT_USAGE;
	size_t n = 0;
	const char *k = cl->pos[1];
	enum pm_client_status st = pm_client_get(cl->c, k, strlen(k), buf, sizeof buf, &n);
	if (st == PM_CLIENT_OK && cl->has[O_HEX]) {
		print_hex(buf, n);
		putchar('\n');
	} else if (st == PM_CLIENT_OK) {
		fwrite(buf, 1, n, stdout);
		if (cl->lines) /* raw bytes into a pipe; a line on a terminal */
			putchar('\n');
	}
	return report(cl, "get", st);
}

static int cmd_del(struct cli *cl)
{
	if (!want_pos(cl, 2, "KEY"))
		return EXIT_USAGE;
	bool removed = false;
	const char *k = cl->pos[1];
	enum pm_client_status st = cl->cmd == C_DEL ? pm_client_del(cl->c, k, strlen(k), &removed)
						    : pm_client_vdel(cl->c, k, strlen(k), &removed);
	if (st != PM_CLIENT_OK)
		return report(cl, cmds[cl->cmd].name, st);
	puts(removed ? "1" : "0");
	return removed ? 0 : EXIT_NOT_FOUND;
}

/* ---------------------------------------------------------------- vectors */

static float vecbuf[PM_CLIENT_DIM_MAX];

/* NAME=VALUE arguments pos[from, npos) into a record: a VALUE that reads
 * whole as a finite number is numeric, anything else a tag. */
static bool attr_args(const struct cli *cl, int from, struct pm_client_attr *a)
{
	pm_client_attr_init(a);
	for (int i = from; i < cl->npos; i++) {
		const char *arg = cl->pos[i], *eq = strchr(arg, '=');
		char name[PM_CLIENT_ATTR_NAME_BYTES_MAX + 1];
		size_t n = eq ? (size_t)(eq - arg) : 0;
		if (!eq || n == 0 || n > PM_CLIENT_ATTR_NAME_BYTES_MAX) {
			usage_error("bad attribute '%.40s': want NAME=VALUE", arg);
			return false;
		}
		memcpy(name, arg, n);
		name[n] = 0;
		char *end;
		errno = 0;
		double v = strtod(eq + 1, &end);
		bool num = eq[1] != '\0' && *end == '\0' && errno == 0 && isfinite(v);
		enum pm_client_status st = num ? pm_client_attr_num(a, name, v)
					       : pm_client_attr_tag(a, name, eq + 1, strlen(eq + 1));
		if (st != PM_CLIENT_OK) {
			usage_error("attribute '%.40s': %s", arg, pm_client_strerror(st));
			return false;
		}
	}
	return true;
}

static int cmd_vadd(struct cli *cl)
{
	uint64_t ttl = 0;
	uint32_t dim;
	struct pm_client_attr a;
	bool has_attr = cl->npos > 3;
	if (has_attr && strcmp(cl->pos[3], "attr") != 0)
		return usage_error("vadd: want KEY v1,v2,... [attr NAME=VALUE ...]");
	if (cl->npos < 3 || !opt_u64(cl, O_TTL, 1, PM_CLIENT_TTL_MS_MAX, &ttl) ||
	    !vector_arg(cl->pos[2], vecbuf, &dim) || (has_attr && !attr_args(cl, 4, &a)))
		return cl->npos < 3 ? usage_error("vadd: want KEY v1,v2,...") : EXIT_USAGE;
	const char *k = cl->pos[1];
	enum pm_client_status st = pm_client_vadd_attr(cl->c, k, strlen(k), vecbuf, dim,
							cl->val[O_COLLECTION], ttl,
							has_attr ? &a : NULL);
	if (st == PM_CLIENT_OK)
		puts("OK");
	return report(cl, "vadd", st);
}

static int cmd_vsetattr(struct cli *cl)
{
	struct pm_client_attr a;
	if (cl->npos < 2)
		return usage_error("vsetattr: want KEY [NAME=VALUE ...]");
	if (!attr_args(cl, 2, &a))
		return EXIT_USAGE;
	const char *k = cl->pos[1];
	enum pm_client_status st = pm_client_vsetattr(cl->c, k, strlen(k), &a);
	if (st == PM_CLIENT_OK)
		puts("OK");
	return report(cl, "vsetattr", st);
}

/* A record as NAME=VALUE ..., one line. */
static void print_attrs(const uint8_t *rec, uint32_t len)
{
	struct pm_client_attr_field f;
	uint32_t pos = 0;
	for (bool first = true; pm_client_attr_next(rec, len, &pos, &f); first = false) {
		printf("%s%.*s=", first ? "" : " ", (int)f.name_len, f.name);
		if (f.is_tag)
			fwrite(f.tag, 1, f.tag_len, stdout);
		else
			printf("%.17g", f.num);
	}
	putchar('\n');
}

static int cmd_vget(struct cli *cl)
{
	if (!want_pos(cl, 2, "KEY"))
		return EXIT_USAGE;
	struct pm_client_vector v = { .vec = vecbuf, .cap = PM_CLIENT_DIM_MAX };
	const char *k = cl->pos[1];
	enum pm_client_status st = pm_client_vget(cl->c, k, strlen(k), &v);
	for (uint32_t i = 0; st == PM_CLIENT_OK && i < v.dim; i++)
		printf("%s%.9g", i ? "," : "", (double)v.vec[i]);
	if (st == PM_CLIENT_OK)
		putchar('\n');
	if (st == PM_CLIENT_OK && v.attr_len > 1)
		print_attrs(v.attr, v.attr_len);
	return report(cl, "vget", st);
}

/* Record `row` of a vector file, or a text file holding one vector. */
static bool vector_file(const struct cli *cl, float *out, uint32_t *dim)
{
	uint64_t row = 0;
	if (!opt_u64(cl, O_ROW, 0, UINT32_MAX, &row))
		return false;
	struct cli_reader r;
	const char *path = cl->val[O_FILE];
	bool text = false;
	int rc = cli_reader_open(&r, path);
	if (rc != 0 && r.fmt == CLI_IDX && r.gz) { /* not IDX: a text vector? */
		gzrewind(r.gz);
		text = gzgets(r.gz, r.line, (int)CLI_CSV_LINE_BYTES_MAX + 1) != NULL &&
		       (*dim = cli_parse_vector(r.line, out, PM_CLIENT_DIM_MAX)) != 0;
		rc = text && row == 0 ? 0 : -1;
	}
	for (uint64_t i = 0; rc == 0 && !text && i <= row; i++)
		rc = cli_reader_next(&r) == 1 ? 0 : -1;
	if (rc == 0 && !text) {
		memcpy(out, r.vec, (size_t)r.dim * sizeof(float));
		*dim = r.dim;
	}
	if (rc != 0)
		fprintf(stderr, "pomai-cli: %s: %s\n", path, r.err[0] ? r.err : "no such record");
	cli_reader_close(&r);
	return rc == 0;
}

static void print_hit(const struct cli *cl, const struct pm_client_hit *h);

static void print_hits(const struct cli *cl, const struct pm_client_knn_result *res)
{
	for (uint32_t i = 0; i < res->count; i++)
		print_hit(cl, &res->hits[i]);
}

/* ---------------------------------------------------------------- knn batches */

/* The queries of knn --file: every record of F (a text file: every line
 * holding v1,v2,..., blank and '#' lines skipped). */
struct qsrc {
	struct cli_reader r;
	bool text;
	uint64_t line; /* text: lines read */
	uint32_t dim;
	const float *vec;
};

static int qsrc_open(struct qsrc *q, const char *path)
{
	*q = (struct qsrc){ 0 };
	int rc = cli_reader_open(&q->r, path);
	if (rc != 0 && q->r.fmt == CLI_IDX && q->r.gz) { /* not IDX: text vectors */
		gzrewind(q->r.gz);
		q->text = true;
		return 0;
	}
	if (rc != 0)
		fprintf(stderr, "pomai-cli: %s: %s\n", path, q->r.err);
	return rc;
}

/* 1: a query in q->vec / q->dim; 0: end; -1: error (said on stderr). */
static int qsrc_next(struct qsrc *q, const char *path)
{
	if (!q->text) {
		int rc = cli_reader_next(&q->r);
		if (rc < 0)
			fprintf(stderr, "pomai-cli: %s: %s\n", path, q->r.err);
		q->vec = q->r.vec;
		q->dim = q->r.dim;
		return rc;
	}
	while (gzgets(q->r.gz, q->r.line, (int)CLI_CSV_LINE_BYTES_MAX + 1) != NULL) {
		q->line++;
		const char *p = q->r.line + strspn(q->r.line, " \t\r\n");
		if (*p == '\0' || *p == '#')
			continue;
		q->dim = cli_parse_vector(p, q->r.vec, PM_CLIENT_DIM_MAX);
		q->vec = q->r.vec;
		if (q->dim)
			return 1;
		fprintf(stderr, "pomai-cli: %s: line %" PRIu64 ": want v1,v2,... (1..%u numbers)\n",
			path, q->line, PM_CLIENT_DIM_MAX);
		return -1;
	}
	return 0;
}

/* A batch of knn --file's queries (copied: the reader reuses its buffer). */
struct knn_batch {
	struct pm_client_item items[PM_CLIENT_BATCH_ITEMS_MAX];
	float vecs[CLI_BATCH_BYTES / sizeof(float)];
	uint32_t n, vec_used, bytes, max_items;
	uint64_t first_row; /* the file's row of items[0] */
	bool rows;          /* print ROW<TAB> before each hit: the file has more than one */
	struct pm_client_hit hits[PM_CLIENT_K_MAX];
	uint8_t keys[PM_CLIENT_KNN_KEY_BYTES_MAX];
	uint32_t query[PM_CLIENT_K_MAX];
};

static void print_hit(const struct cli *cl, const struct pm_client_hit *h)
{
	if (cl->has[O_HEX])
		print_hex(h->key, h->klen);
	else
		fwrite(h->key, 1, h->klen, stdout);
	printf("\t%.6g\n", (double)h->dist);
}

/* Print the hits of a batch (query[h]: whose hits[h] is). */
static void print_batch_hits(const struct cli *cl, const struct knn_batch *b,
			     const struct pm_client_knn_result *res)
{
	for (uint32_t h = 0; h < res->count; h++) {
		if (b->rows)
			printf("%" PRIu64 "\t", b->first_row + b->query[h]);
		print_hit(cl, &res->hits[h]);
	}
}

/* Send the batch filled so far in one VQUERY batch frame, print its hits;
 * the status. Cluster mode sends each query alone (a batch goes to one
 * server): the same hits. */
static enum pm_client_status knn_flush(struct cli *cl, struct knn_batch *b,
				       const struct pm_client_knn_opts *o)
{
	enum pm_client_status st = PM_CLIENT_OK;
	struct pm_client_knn_result res = { .hits = b->hits, .hits_cap = PM_CLIENT_K_MAX,
					    .keys = b->keys, .keys_cap = sizeof b->keys };
	if (b->n && !cl->has[O_CLUSTER]) {
		st = pm_client_knn_many(cl->c, b->items, b->n, o, &res, b->query);
		if (st == PM_CLIENT_OK)
			print_batch_hits(cl, b, &res);
	}
	for (uint32_t i = 0; cl->has[O_CLUSTER] && st == PM_CLIENT_OK && i < b->n; i++) {
		st = pm_client_knn(cl->c, b->items[i].vec, b->items[i].dim, o, &res);
		for (uint32_t h = 0; h < res.count; h++)
			b->query[h] = i;
		if (st == PM_CLIENT_OK)
			print_batch_hits(cl, b, &res);
	}
	b->first_row += b->n;
	b->n = b->vec_used = b->bytes = 0;
	return st;
}

/* Every record of --file F as a query, in batches of as many as one frame
 * and the batch's k summed (PM_CLIENT_K_MAX) allow. */
static int knn_file(struct cli *cl, const struct pm_client_knn_opts *o)
{
	static struct knn_batch b;
	struct qsrc q;
	const char *path = cl->val[O_FILE];
	if (qsrc_open(&q, path) != 0) {
		cli_reader_close(&q.r);
		return EXIT_USAGE;
	}
	uint32_t by_k = PM_CLIENT_K_MAX / o->k; /* o->k >= 1 */
	b = (struct knn_batch){ .max_items = by_k < PM_CLIENT_BATCH_ITEMS_MAX ? by_k
									: PM_CLIENT_BATCH_ITEMS_MAX };
	/* an item's bytes besides its vector: k, dim, ef, name, filter */
	const uint32_t fixed = 8u + (o->ef ? 4u : 0u) +
			       (o->collection ? 4u + (uint32_t)strlen(o->collection) : 0u) +
			       (o->filter ? 4u + (uint32_t)strlen(o->filter) : 0u);
	enum pm_client_status st = PM_CLIENT_OK;
	uint64_t nq = 0;
	int rc;
	while (st == PM_CLIENT_OK && (rc = qsrc_next(&q, path)) == 1) {
		uint32_t need = fixed + q.dim * (uint32_t)sizeof(float);
		if (b.n == b.max_items || b.bytes + need > CLI_BATCH_BYTES) {
			b.rows = true; /* a query follows the batch */
			st = knn_flush(cl, &b, o);
		}
		if (st != PM_CLIENT_OK)
			break;
		memcpy(b.vecs + b.vec_used, q.vec, (size_t)q.dim * sizeof(float));
		b.items[b.n++] = (struct pm_client_item){ .vec = b.vecs + b.vec_used, .dim = q.dim };
		b.vec_used += q.dim;
		b.bytes += need;
		nq++;
	}
	cli_reader_close(&q.r);
	if (st != PM_CLIENT_OK)
		return report(cl, "knn", st);
	if (rc < 0)
		return EXIT_USAGE;
	if (nq == 0) {
		fprintf(stderr, "pomai-cli: %s: no vectors\n", path);
		return EXIT_USAGE;
	}
	b.rows = b.rows || nq > 1;
	return report(cl, "knn", knn_flush(cl, &b, o));
}

static int cmd_knn(struct cli *cl)
{
	static struct pm_client_hit hits[PM_CLIENT_K_MAX];
	static uint8_t keys[PM_CLIENT_KNN_KEY_BYTES_MAX];
	struct pm_client_knn_opts o = { .k = CLI_K_DEFAULT, .exact = cl->has[O_EXACT],
					.collection = cl->val[O_COLLECTION] };
	uint32_t dim = 0;
	if (!opt_u32(cl, O_K, 1, PM_CLIENT_K_MAX, &o.k) || !opt_u32(cl, O_EF, 0, PM_CLIENT_EF_MAX, &o.ef))
		return EXIT_USAGE;
	int vecs = cl->has[O_FILE] ? 0 : 1; /* positional vectors */
	bool filtered = cl->npos == 3 + vecs && strcmp(cl->pos[1 + vecs], "filter") == 0;
	if (cl->npos != 1 + vecs && !filtered)
		return usage_error("knn: want one vector: v1,v2,... or --file F, then [filter EXPR]");
	o.filter = filtered ? cl->pos[2 + vecs] : NULL;
	if (cl->has[O_FILE] && !cl->has[O_ROW])
		return knn_file(cl, &o);
	if (cl->has[O_FILE] ? !vector_file(cl, vecbuf, &dim) : !vector_arg(cl->pos[1], vecbuf, &dim))
		return EXIT_USAGE;
	struct pm_client_knn_result res = { .hits = hits, .hits_cap = PM_CLIENT_K_MAX,
					    .keys = keys, .keys_cap = sizeof keys };
	enum pm_client_status st = pm_client_knn(cl->c, vecbuf, dim, &o, &res);
	if (st == PM_CLIENT_OK)
		print_hits(cl, &res);
	return report(cl, "knn", st);
}

/* ---------------------------------------------------------------- collections */

static const char *const metric_names[] = { "l2", "ip", "cosine" };
static const char *const index_names[] = { "flat", "hnsw" };
static const char *const dtype_names[] = { "f32", "f16", "q8", "bin" };
static const char *const onoff_names[] = { "off", "on" };

static bool pick(const char *s, const char *const *names, uint8_t n, uint8_t *out)
{
	for (uint8_t i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return true;
		}
	return false;
}

static int coll_create(struct cli *cl)
{
	struct pm_client_coll_params p = { 0 };
	uint32_t m = 0;
	if (!want_pos(cl, 3, "create NAME --dim D"))
		return EXIT_USAGE;
	if (!cl->has[O_DIM])
		return usage_error("collection create: --dim is required");
	if (!opt_u32(cl, O_DIM, 1, PM_CLIENT_DIM_MAX, &p.dim) || !opt_u32(cl, O_M, 0, 65535, &m) ||
	    !opt_u32(cl, O_EFC, 0, PM_CLIENT_EF_MAX, &p.ef_construction) ||
	    !opt_u32(cl, O_EFS, 0, PM_CLIENT_EF_MAX, &p.ef_search))
		return EXIT_USAGE;
	p.hnsw_m = (uint16_t)m;
	p.evictable = cl->has[O_EVICTABLE];
	uint8_t rerank = 0;
	if (cl->has[O_DTYPE] && !pick(cl->val[O_DTYPE], dtype_names, 4, &p.dtype))
		return usage_error("--dtype must be f32, f16, q8 or bin");
	if (cl->has[O_RERANK] && !pick(cl->val[O_RERANK], onoff_names, 2, &rerank))
		return usage_error("--rerank must be on or off");
	p.rerank = rerank;
	if (!opt_u32(cl, O_RERANK_K, 0, PM_CLIENT_RERANK_K_MAX, &p.rerank_k))
		return EXIT_USAGE;
	if (cl->has[O_METRIC] && !pick(cl->val[O_METRIC], metric_names, 3, &p.metric))
		return usage_error("--metric must be l2, ip or cosine");
	if (cl->has[O_INDEX] && !pick(cl->val[O_INDEX], index_names, 2, &p.index))
		return usage_error("--index must be flat or hnsw");
	enum pm_client_status st = pm_client_collection_create(cl->c, cl->pos[2], &p);
	if (st == PM_CLIENT_OK)
		puts("OK");
	return report(cl, "collection create", st);
}

static int coll_list(struct cli *cl)
{
	static struct pm_client_coll_info items[PM_CLIENT_COLLECTIONS_MAX];
	struct pm_client_coll_list l = { .items = items, .cap = PM_CLIENT_COLLECTIONS_MAX };
	if (!want_pos(cl, 2, "list"))
		return EXIT_USAGE;
	enum pm_client_status st = pm_client_collection_list(cl->c, &l);
	if (st != PM_CLIENT_OK)
		return report(cl, "collection list", st);
	printf("%-24s %6s %-6s %-5s %4s %8s %8s %5s %5s %6s %12s %14s\n", "NAME", "DIM", "METRIC",
	       "INDEX", "M", "EF_CONS", "EF_SRCH", "EVICT", "DTYPE", "RERANK", "VECTORS", "BYTES");
	for (uint32_t i = 0; i < l.count; i++) {
		const struct pm_client_coll_info *c = &l.items[i];
		const struct pm_client_coll_params *p = &c->params;
		if (c->name_len)
			printf("%-24.*s", (int)c->name_len, (const char *)c->name);
		else
			printf("%-24s", "(default)");
		char rerank[16] = "off";
		if (p->rerank)
			snprintf(rerank, sizeof rerank, "%u", p->rerank_k);
		printf(" %6u %-6s %-5s %4u %8u %8u %5s %5s %6s %12" PRIu64 " %14" PRIu64 "\n", p->dim,
		       metric_names[p->metric % 3], index_names[p->index % 2], p->hnsw_m,
		       p->ef_construction, p->ef_search, p->evictable ? "yes" : "no",
		       dtype_names[p->dtype % 4], rerank, c->count, c->bytes);
	}
	return 0;
}

static int coll_drop(struct cli *cl)
{
	bool removed = false;
	if (!want_pos(cl, 3, "drop NAME"))
		return EXIT_USAGE;
	enum pm_client_status st = pm_client_collection_drop(cl->c, cl->pos[2], &removed);
	if (st != PM_CLIENT_OK)
		return report(cl, "collection drop", st);
	puts(removed ? "1" : "0");
	return removed ? 0 : EXIT_NOT_FOUND;
}

static int cmd_coll(struct cli *cl)
{
	const char *sub = cl->npos > 1 ? cl->pos[1] : "";
	bool create = strcmp(sub, "create") == 0;
	if (!create && (cl->has[O_DIM] || cl->has[O_METRIC] || cl->has[O_INDEX] || cl->has[O_M] ||
			cl->has[O_EFC] || cl->has[O_EFS] || cl->has[O_EVICTABLE] || cl->has[O_DTYPE] ||
			cl->has[O_RERANK] || cl->has[O_RERANK_K]))
		return usage_error("collection %s takes no collection parameters", sub);
	if (create)
		return coll_create(cl);
	if (strcmp(sub, "list") == 0)
		return coll_list(cl);
	if (strcmp(sub, "drop") == 0)
		return coll_drop(cl);
	return usage_error("collection: want create, list or drop");
}

/* A whole INFO text: info's, and the one learn_shards() reads. */
static char info_text[PM_CLIENT_INFO_REPLY_BYTES_MAX + 1];

static int cmd_info(struct cli *cl)
{
	char *text = info_text;
	if (cl->npos > 2)
		return usage_error("info: want at most one SECTION");
	size_t n = 0;
	enum pm_client_status st =
		pm_client_info(cl->c, cl->npos == 2 ? cl->pos[1] : NULL, text,
			       PM_CLIENT_INFO_REPLY_BYTES_MAX, &n);
	if (st == PM_CLIENT_OK) {
		fwrite(text, 1, n, stdout);
		if (n == 0 || text[n - 1] != '\n')
			putchar('\n');
	}
	if (st == PM_CLIENT_E_PARAM && cl->npos == 2) {
		fprintf(stderr, "pomai-cli: info: %s: the server has no section '%s'\n",
			pm_client_status_name(st), cl->pos[1]);
		return exit_of(st);
	}
	return report(cl, "info", st);
}

/* ---------------------------------------------------------------- snapshot */

static int cmd_snapshot(struct cli *cl)
{
	if (cl->npos != 1)
		return usage_error("snapshot: takes no arguments");
	enum pm_client_status st = pm_client_snapshot(cl->c);
	if (st == PM_CLIENT_OK)
		puts("OK");
	if (st != PM_CLIENT_E_PARAM)
		return report(cl, "snapshot", st);
	fprintf(stderr, "pomai-cli: snapshot: %s: the server's log is off (wal = none); "
			"snapshots need it\n", pm_client_status_name(st));
	return exit_of(st);
}

/* ---------------------------------------------------------------- cluster map */

static int cmd_map(struct cli *cl)
{
	static struct pm_client_map m;
	if (cl->npos != 1)
		return usage_error("map: takes no arguments");
	enum pm_client_status st = pm_client_map(cl->c, &m);
	if (st != PM_CLIENT_OK)
		return report(cl, "map", st);
	printf("epoch %" PRIu64 ", %u sets, %u nodes, %u ranges", m.epoch, m.nsets, m.nnodes,
	       m.nranges);
	if (m.answered != PM_CLIENT_CLUSTER_NONE)
		printf(", sent by node %u", m.answered);
	printf("\n\n%-5s %-20s %s\n", "SET", "EPOCH", "PRIMARY");
	for (uint32_t i = 0; i < m.nsets; i++) {
		printf("%-5u %-20" PRIu64 " ", i, m.sets[i].epoch);
		if (m.sets[i].primary == PM_CLIENT_CLUSTER_NONE)
			puts("-");
		else
			printf("node %u\n", m.sets[i].primary);
	}
	printf("\n%-5s %-16s %5s %5s %6s %4s %s\n", "NODE", "ADDRESS", "UDP", "TCP", "SHARDS",
	       "SET", "ROLE");
	for (uint32_t i = 0; i < m.nnodes; i++) {
		const struct pm_client_map_node *n = &m.nodes[i];
		const uint8_t *a = (const uint8_t *)&n->addr_be;
		char ip[16];
		snprintf(ip, sizeof ip, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
		printf("%-5u %-16s %5u %5u %6u %4u %s\n", i, ip, n->udp_port, n->tcp_port,
		       n->shards, n->set, n->primary ? "primary" : "replica");
	}
	printf("\n%-12s %s\n", "SLOTS", "SET");
	for (uint32_t i = 0; i < m.nranges; i++) {
		char r[16];
		snprintf(r, sizeof r, "%u-%u", m.ranges[i].first, m.ranges[i].last);
		printf("%-12s %u\n", r, m.ranges[i].set);
	}
	return 0;
}

/* ---------------------------------------------------------------- range */

static int cmd_range(struct cli *cl)
{
	static struct pm_client_hit hits[PM_CLIENT_K_MAX];
	static uint8_t keys[PM_CLIENT_KNN_KEY_BYTES_MAX];
	struct pm_client_knn_opts o = { .k = PM_CLIENT_K_MAX, .exact = cl->has[O_EXACT],
					.collection = cl->val[O_COLLECTION] };
	uint32_t dim = 0;
	char *end = NULL;
	float radius = cl->has[O_RADIUS] ? strtof(cl->val[O_RADIUS], &end) : 0.0f;
	if (!cl->has[O_RADIUS] || end == cl->val[O_RADIUS] || *end != '\0' ||
	    !isfinite(radius))
		return usage_error("range: --radius R is required (a finite number)");
	if (!opt_u32(cl, O_K, 1, PM_CLIENT_K_MAX, &o.k) || !opt_u32(cl, O_EF, 0, PM_CLIENT_EF_MAX, &o.ef))
		return EXIT_USAGE;
	int vecs = cl->has[O_FILE] ? 0 : 1; /* positional vectors */
	bool filtered = cl->npos == 3 + vecs && strcmp(cl->pos[1 + vecs], "filter") == 0;
	if (cl->npos != 1 + vecs && !filtered)
		return usage_error("range: want one vector: v1,v2,... or --file F, then [filter EXPR]");
	o.filter = filtered ? cl->pos[2 + vecs] : NULL;
	if (cl->has[O_FILE] ? !vector_file(cl, vecbuf, &dim) : !vector_arg(cl->pos[1], vecbuf, &dim))
		return EXIT_USAGE;
	struct pm_client_knn_result res = { .hits = hits, .hits_cap = PM_CLIENT_K_MAX,
					    .keys = keys, .keys_cap = sizeof keys };
	bool truncated = false;
	enum pm_client_status st = pm_client_vrange(cl->c, vecbuf, dim, radius, &o, &res, &truncated);
	if (st == PM_CLIENT_OK)
		print_hits(cl, &res);
	if (st == PM_CLIENT_OK && truncated)
		fprintf(stderr, "pomai-cli: range: more than %u within the radius; the %u nearest "
				"are shown\n", o.k, o.k);
	return report(cl, "range", st);
}

/* ---------------------------------------------------------------- load */

/* A VADD batch of load in flight: its items' statuses (issue 18). The pool
 * has one more than the client's large frame buffers, so a free one is
 * found whenever the client can take another batch. */
#define LOAD_BATCHES (PM_CLIENT_LARGE_SLOTS + 1u)
#define LOAD_BATCH_BYTES CLI_BATCH_BYTES

struct load;
struct load_batch {
	struct load *l;
	bool busy;
	uint32_t n;
	enum pm_client_status status[PM_CLIENT_BATCH_ITEMS_MAX];
	struct pm_client_batch_result res;
};

struct load {
	uint64_t ok, failed;
	uint64_t by_status[PM_CLIENT_STATUS_COUNT];
	uint64_t limit;
	uint64_t ttl;
	const char *prefix;
	size_t prefix_len;
	uint8_t key[PM_CLIENT_KEY_BYTES_MAX + 1];
	double t0, last_draw;
	bool tty;
	/* the batch being filled: items, their keys and vectors (copied: the
	 * reader reuses its buffers), its frame bytes so far */
	struct pm_client_item items[PM_CLIENT_BATCH_ITEMS_MAX];
	uint8_t keys[LOAD_BATCH_BYTES];
	float vecs[LOAD_BATCH_BYTES / sizeof(float)];
	uint32_t n, key_used, vec_used, bytes;
	struct load_batch pool[LOAD_BATCHES];
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void load_count(struct load *l, enum pm_client_status st)
{
	if (st == PM_CLIENT_OK) {
		l->ok++;
		return;
	}
	l->failed++;
	l->by_status[st]++;
}

/* A batch answered: each item's status, or the batch's failure for all. */
static void load_cb(void *arg, const struct pm_client_result *res)
{
	struct load_batch *b = arg;
	for (uint32_t i = 0; i < b->n; i++)
		load_count(b->l, res->status == PM_CLIENT_OK ? b->status[i] : res->status);
	b->busy = false;
}

/* A free batch of the pool, waiting for one to be answered if need be. */
static struct load_batch *load_free_batch(struct cli *cl, struct load *l)
{
	for (;;) {
		for (uint32_t i = 0; i < LOAD_BATCHES; i++)
			if (!l->pool[i].busy)
				return &l->pool[i];
		pm_client_poll(cl->c, CLI_PROGRESS_MS);
	}
}

static void load_one_cb(void *arg, const struct pm_client_result *res)
{
	load_count(arg, res->status);
}

/* Cluster mode: batches go to one server, so each item is its own VADD,
 * routed by its key's slot. */
static void load_each(struct cli *cl, struct load *l)
{
	const char *coll = cl->val[O_COLLECTION];
	for (uint32_t i = 0; i < l->n; i++) {
		const struct pm_client_item *it = &l->items[i];
		struct pm_client_req q = { .op = PM_CLIENT_VADD, .key = it->key, .klen = it->klen,
					   .vec = it->vec, .dim = it->dim, .name = coll,
					   .name_len = coll ? (uint32_t)strlen(coll) : 0,
					   .ttl_ms = l->ttl, .cb = load_one_cb, .arg = l };
		enum pm_client_status st = pm_client_submit(cl->c, &q, NULL);
		if (st != PM_CLIENT_OK)
			load_count(l, st);
	}
}

/* Send the batch filled so far (one VADD_MANY frame). */
static void load_flush(struct cli *cl, struct load *l)
{
	if (l->n == 0)
		return;
	if (cl->cfg.cluster) {
		load_each(cl, l);
		l->n = l->key_used = l->vec_used = l->bytes = 0;
		return;
	}
	const char *coll = cl->val[O_COLLECTION];
	struct load_batch *b = load_free_batch(cl, l);
	*b = (struct load_batch){ .l = l, .busy = true, .n = l->n };
	b->res.status = b->status;
	struct pm_client_req q = { .op = PM_CLIENT_VADD_MANY, .items = l->items, .nitems = l->n,
				   .name = coll, .name_len = coll ? (uint32_t)strlen(coll) : 0,
				   .ttl_ms = l->ttl, .batch = &b->res, .cb = load_cb, .arg = b };
	enum pm_client_status st = pm_client_submit(cl->c, &q, NULL);
	if (st != PM_CLIENT_OK) { /* refused before sending: count it like a reply */
		struct pm_client_result res = { .status = st };
		load_cb(b, &res);
	}
	l->n = l->key_used = l->vec_used = l->bytes = 0;
}

/* The current record into the batch (sent first when it would not fit). */
static void load_add(struct cli *cl, struct load *l, const struct cli_reader *r, size_t klen)
{
	uint32_t kl = klen > PM_CLIENT_KEY_BYTES_MAX ? PM_CLIENT_KEY_BYTES_MAX + 1 : (uint32_t)klen;
	const char *coll = cl->val[O_COLLECTION];
	uint32_t need = 4u + kl + 4u + r->dim * 4u + (l->ttl ? 8u : 0u) +
			(coll ? 4u + (uint32_t)strlen(coll) : 0u);
	if (l->n == PM_CLIENT_BATCH_ITEMS_MAX || l->bytes + need > LOAD_BATCH_BYTES)
		load_flush(cl, l);
	if (need > LOAD_BATCH_BYTES) { /* not even alone: the server would refuse it */
		load_count(l, PM_CLIENT_E_KEY_LEN);
		return;
	}
	uint32_t kcopy = kl > PM_CLIENT_KEY_BYTES_MAX ? PM_CLIENT_KEY_BYTES_MAX : kl;
	memcpy(l->keys + l->key_used, l->key, kcopy);
	memcpy(l->vecs + l->vec_used, r->vec, (size_t)r->dim * sizeof(float));
	l->items[l->n++] = (struct pm_client_item){ l->keys + l->key_used, kl,
						    l->vecs + l->vec_used, r->dim };
	l->key_used += kcopy;
	l->vec_used += r->dim;
	l->bytes += need;
}

static void draw_progress(struct load *l, const struct cli_reader *r, bool final)
{
	double t = now_s();
	if (!l->tty || (!final && (t - l->last_draw) * 1000.0 < CLI_PROGRESS_MS))
		return;
	l->last_draw = t;
	double f = final ? 1.0 : cli_reader_progress(r);
	uint32_t cells = (uint32_t)(f * CLI_PROGRESS_CELLS);
	char bar[CLI_PROGRESS_CELLS + 1];
	for (uint32_t i = 0; i < CLI_PROGRESS_CELLS; i++)
		bar[i] = i < cells ? '#' : '.';
	bar[CLI_PROGRESS_CELLS] = '\0';
	double dt = t - l->t0;
	printf("\r[%s] %5.1f%% %10" PRIu64 " items %10.0f items/s", bar, f * 100.0, r->row,
	       dt > 0 ? (double)r->row / dt : 0.0);
	if (final)
		putchar('\n');
	fflush(stdout);
}

/* The key of the current record: prefix + CSV key, or prefix + row number. */
static size_t load_key(struct load *l, const struct cli_reader *r)
{
	size_t room = sizeof l->key - l->prefix_len;
	memcpy(l->key, l->prefix, l->prefix_len);
	if (r->key) {
		size_t n = r->klen < room ? r->klen : room;
		memcpy(l->key + l->prefix_len, r->key, n);
		return l->prefix_len + n;
	}
	int n = snprintf((char *)l->key + l->prefix_len, room, "%" PRIu64, r->row - 1);
	return l->prefix_len + (n < 0 ? 0 : (size_t)n >= room ? room - 1 : (size_t)n);
}

/* Records into VADD batches, each as many as one frame holds (issue 18:
 * one frame, one reply, each item's own status). */
static int load_loop(struct cli *cl, struct load *l, struct cli_reader *r)
{
	int rc;
	while ((l->limit == 0 || r->row < l->limit) && (rc = cli_reader_next(r)) == 1) {
		load_add(cl, l, r, load_key(l, r));
		draw_progress(l, r, false);
	}
	load_flush(cl, l);
	pm_client_drain(cl->c);
	draw_progress(l, r, true);
	if (rc < 0)
		fprintf(stderr, "pomai-cli: load: %s\n", r->err);
	return rc < 0 ? EXIT_USAGE : 0;
}

static int load_summary(const struct load *l)
{
	double dt = now_s() - l->t0;
	printf("loaded %" PRIu64 " vectors in %.2f s (%.0f items/s)", l->ok, dt,
	       dt > 0 ? (double)(l->ok + l->failed) / dt : 0.0);
	if (l->failed == 0) {
		putchar('\n');
		return 0;
	}
	int rc = EXIT_SERVER;
	printf(", %" PRIu64 " failed:", l->failed);
	for (int s = 0; s < PM_CLIENT_STATUS_COUNT; s++) {
		if (l->by_status[s] == 0)
			continue;
		printf(" %s %" PRIu64, pm_client_status_name((enum pm_client_status)s), l->by_status[s]);
		if (exit_of((enum pm_client_status)s) == EXIT_TIMEOUT)
			rc = EXIT_TIMEOUT;
	}
	putchar('\n');
	return rc;
}

static int cmd_load(struct cli *cl)
{
	static struct load l;
	struct cli_reader r;
	memset(&l, 0, sizeof(l)); /* the prompt runs load again */
	if (!want_pos(cl, 2, "FILE") || !opt_u64(cl, O_TTL, 1, PM_CLIENT_TTL_MS_MAX, &l.ttl) ||
	    !opt_u64(cl, O_LIMIT, 0, UINT64_MAX, &l.limit))
		return EXIT_USAGE;
	l.prefix = cl->has[O_PREFIX] ? cl->val[O_PREFIX] : "";
	l.prefix_len = strlen(l.prefix);
	if (l.prefix_len > PM_CLIENT_KEY_BYTES_MAX - 1)
		return usage_error("--prefix is longer than a key may be");
	if (cli_reader_open(&r, cl->pos[1]) != 0) {
		fprintf(stderr, "pomai-cli: load: %s: %s\n", cl->pos[1], r.err);
		cli_reader_close(&r);
		return EXIT_USAGE;
	}
	l.tty = isatty(STDOUT_FILENO);
	l.t0 = now_s();
	int rc = load_loop(cl, &l, &r);
	cli_reader_close(&r);
	int sum = load_summary(&l);
	return rc ? rc : sum;
}

/* ---------------------------------------------------------------- main */

static int (*const runners[C_COUNT])(struct cli *) = {
	[C_SET] = cmd_set, [C_GET] = cmd_get, [C_DEL] = cmd_del, [C_VADD] = cmd_vadd,
	[C_VGET] = cmd_vget, [C_VDEL] = cmd_del, [C_KNN] = cmd_knn, [C_COLL] = cmd_coll,
	[C_INFO] = cmd_info, [C_LOAD] = cmd_load, [C_SNAPSHOT] = cmd_snapshot, [C_MAP] = cmd_map,
	[C_VSETATTR] = cmd_vsetattr,
	[C_RANGE] = cmd_range,
};

/* n bytes from exactly 2 x n hex digits; false otherwise. */
static bool unhex(const char *text, uint8_t *out, size_t n)
{
	if (strlen(text) != 2 * n)
		return false;
	for (size_t i = 0; i < 2 * n; i++) {
		char ch = text[i];
		int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
		if (v < 0)
			return false;
		out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | v : v << 4);
	}
	return true;
}

/* The user's key (issue 19): 64 hex digits from --key-file F, else from
 * POMAI_KEY; never from the command line (argv is visible to others). */
static bool configure_key(struct cli *cl)
{
	struct pm_client_config *c = &cl->cfg;
	char text[2 * PM_CLIENT_USER_KEY_BYTES + 64] = "";
	const char *env = getenv("POMAI_KEY");
	if (cl->has[O_KEY_FILE]) {
		FILE *f = fopen(cl->val[O_KEY_FILE], "r");
		size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
		if (f)
			fclose(f);
		text[n] = '\0';
		if (!f) {
			usage_error("--key-file %s: cannot read it", cl->val[O_KEY_FILE]);
			return false;
		}
	} else if (env) {
		snprintf(text, sizeof(text), "%s", env);
	}
	text[strcspn(text, " \t\r\n")] = '\0';
	if (!unhex(text, c->key, PM_CLIENT_USER_KEY_BYTES)) {
		usage_error("--user needs its key: 64 hex digits in --key-file F or POMAI_KEY");
		return false;
	}
	return true;
}

/* --memif: the options that go with it, and the EAL line. */
static bool configure_memif(struct cli *cl)
{
#ifdef POMAI_CLI_MEMIF
	if (!cl->has[O_MEMIF]) {
		for (int o = O_MEMIF_IP; o <= O_MEMIF_EAL; o++)
			if (cl->has[o]) {
				usage_error("--%s goes with --memif", opts[o].name);
				return false;
			}
		return true;
	}
	if (cl->has[O_TCP] || cl->cfg.cluster) {
		usage_error("--memif is a transport of its own: not with --tcp or --cluster");
		return false;
	}
	if (!cl->has[O_MEMIF_IP]) {
		usage_error("--memif needs --memif-ip A/LEN, this end's address on the link");
		return false;
	}
	int cpu = sched_getcpu(); /* one this process may run on */
	int n = cl->has[O_MEMIF_EAL]
			? snprintf(cl->eal, sizeof(cl->eal), "%s", cl->val[O_MEMIF_EAL])
			: snprintf(cl->eal, sizeof(cl->eal), CLI_MEMIF_EAL_FMT, cpu < 0 ? 0 : cpu,
				   (int)getpid(), cl->val[O_MEMIF],
				   cl->has[O_MEMIF_MAC] ? cl->val[O_MEMIF_MAC] : CLI_MEMIF_MAC_DEFAULT);
	if (n < 0 || (size_t)n >= sizeof(cl->eal)) {
		usage_error("--memif: the EAL line is longer than %u bytes", CLI_MEMIF_EAL_BYTES);
		return false;
	}
	return true;
#else
	for (int o = O_MEMIF; o <= O_MEMIF_EAL; o++)
		if (cl->has[o]) {
			usage_error("--%s: this pomai-cli was built without DPDK (no libpomai_memif)",
				    opts[o].name);
			return false;
		}
	return true;
#endif
}

/* Open cl->c from cl->cfg: over UDP or TCP, or over memif. */
static enum pm_client_status open_client(struct cli *cl)
{
	if (!cl->has[O_MEMIF])
		return pm_client_open(&cl->cfg, &cl->c);
#ifdef POMAI_CLI_MEMIF
	struct pm_client_memif m;
	const char *why = NULL;
	pm_client_memif_default(&m);
	m.eal_args = cl->eal;
	m.local_ip = cl->val[O_MEMIF_IP];
	enum pm_client_status st = pm_client_memif_open(&cl->cfg, &m, &cl->c, &why);
	if (st != PM_CLIENT_OK)
		fprintf(stderr, "pomai-cli: memif: %s\n", why ? why : pm_client_strerror(st));
	return st;
#else
	return PM_CLIENT_E_CONFIG; /* configure_memif() refused it */
#endif
}

/* Environment defaults, then options, into cl->cfg. */
static bool configure(struct cli *cl)
{
	pm_client_config_default(&cl->cfg);
	struct pm_client_config *c = &cl->cfg;
	const char *env;
	uint64_t v;
	if ((env = getenv("POMAI_HOST")) && *env)
		c->host = env;
	if ((env = getenv("POMAI_PORT")) && parse_u64(env, 1, 65535, &v))
		c->base_port = (uint32_t)v;
	if ((env = getenv("POMAI_SHARDS")) && parse_u64(env, 1, PM_CLIENT_SHARDS_MAX, &v)) {
		c->shards = (uint32_t)v;
		cl->shards_known = true;
	}
	if ((env = getenv("POMAI_TCP_PORT")) && parse_u64(env, 1, 65535, &v))
		c->tcp_port = (uint32_t)v;
	if ((env = getenv("POMAI_CLUSTER")) && strcmp(env, "1") == 0)
		c->cluster = true;
	if (cl->has[O_HOST])
		c->host = cl->val[O_HOST];
	c->transport = cl->has[O_TCP] ? PM_CLIENT_TCP : PM_CLIENT_UDP;
	c->cluster |= cl->has[O_CLUSTER];
	cl->shards_known |= cl->has[O_SHARDS] || c->cluster;
	if (cl->has[O_READ_REPLICA] && !c->cluster) {
		usage_error("--read-replica needs --cluster");
		return false;
	}
	if (cl->cmd == C_MAP && !c->cluster) {
		usage_error("map needs --cluster (the slot map of a cluster)");
		return false;
	}
	c->read_from = cl->has[O_READ_REPLICA] ? PM_CLIENT_READ_REPLICA : PM_CLIENT_READ_PRIMARY;
	if (!configure_memif(cl))
		return false;
	if ((env = getenv("POMAI_USER")) && parse_u64(env, 1, 65535, &v))
		c->user = (uint32_t)v;
	if (!opt_u32(cl, O_USER, 1, 65535, &c->user) || (c->user && !configure_key(cl)))
		return false;
	return opt_u32(cl, O_PORT, 1, 65535, &c->base_port) &&
	       opt_u32(cl, O_TCP_PORT, 1, 65535, &c->tcp_port) &&
	       opt_u32(cl, O_SHARDS, 1, PM_CLIENT_SHARDS_MAX, &c->shards) &&
	       opt_u32(cl, O_TIMEOUT, 1, PM_CLIENT_TIMEOUT_MS_MAX, &c->timeout_ms) &&
	       opt_u32(cl, O_RETRIES, 0, PM_CLIENT_RETRIES_MAX, &c->retries) &&
	       opt_u32(cl, O_INFLIGHT, 1, PM_CLIENT_IN_FLIGHT_MAX, &c->max_in_flight);
}

/* ---------------------------------------------------------------- the server's shards */

/* The shard count from the "shards:N" line of an INFO text's Cluster header
 * (dataplane/fanout.c writes it first in every answer); 0 when absent. */
static uint32_t info_shards(const char *text)
{
	static const char field[] = "\nshards:";
	const char *at = strstr(text, field);
	uint64_t n = 0;
	if (at == NULL)
		return 0;
	at += sizeof(field) - 1;
	char digits[16];
	size_t len = strspn(at, "0123456789");
	if (len == 0 || len >= sizeof(digits))
		return 0;
	memcpy(digits, at, len);
	digits[len] = '\0';
	return parse_u64(digits, 1, PM_CLIENT_SHARDS_MAX, &n) ? (uint32_t)n : 0;
}

/* Learn how many shards the server runs, once per process: INFO's smallest
 * section ("cluster": the header alone, one line per shard) asked of shard 0
 * with the always-correct shards = 1, then the client opened again routing
 * by key (docs/protocol.md §2.1), so no key costs the server a forward.
 * Without an answer the client keeps shards = 1 (correct, a forward per key
 * of another shard) unless the server was not reached at all: that status
 * is returned, since the command would fail the same way. */
static enum pm_client_status learn_shards(struct cli *cl)
{
	size_t n = 0;
	enum pm_client_status st = pm_client_info(cl->c, "cluster", info_text,
						  PM_CLIENT_INFO_REPLY_BYTES_MAX, &n);
	if (st == PM_CLIENT_E_TIMEOUT || st == PM_CLIENT_E_CONNECTION)
		return st;
	info_text[n] = '\0';
	uint32_t shards = st == PM_CLIENT_OK ? info_shards(info_text) : 0;
	cl->shards_known = true;
	if (shards <= 1)
		return PM_CLIENT_OK;
	pm_client_close(cl->c);
	cl->c = NULL;
	cl->cfg.shards = shards;
	return open_client(cl);
}

/* ---------------------------------------------------------------- the prompt */

/* Words on one line of the prompt, at most (the command's own bound is
 * CLI_POSITIONAL_MAX plus its options). */
#define CLI_WORDS_MAX 64

static const char repl_help[] =
	"commands: set get del vadd vget vdel vsetattr knn range collection info load snapshot map\n"
	"  help COMMAND   how to use it (or COMMAND --help)\n"
	"  quit, exit     leave (or Ctrl-D)\n"
	"Words are split at blanks; quote a value that holds some: set k 'a b'.\n"
	"Connection options (--host, --port, --shards, --tcp, --user, ...) are given when\n"
	"pomai-cli starts; history is kept in $POMAI_CLI_HISTORY or ~/.pomai_cli_history.\n";

/* Options that set up the connection: given when pomai-cli starts. */
static bool conn_opt(int o)
{
	return o < O_HELP || o == O_USER || o == O_KEY_FILE || (o >= O_MEMIF && o <= O_MEMIF_EAL);
}

static void repl_helps(int nwords, char **words)
{
	int c = nwords > 1 ? find_cmd(words[1]) : -1;
	if (nwords > 2)
		fputs("pomai-cli: help: want at most one COMMAND\n", stderr);
	else if (nwords == 2 && c < 0)
		fprintf(stderr, "pomai-cli: help: no such command '%s'\n", words[1]);
	else if (c >= 0)
		printf("%s\n", cmds[c].usage);
	else
		fputs(repl_help, stdout);
}

/* One line of the prompt run as a command with the connection of base. */
static void repl_run(const struct cli *base, int nwords, char **words)
{
	static struct cli one;
	one = (struct cli){ .cfg = base->cfg, .c = base->c, .shards_known = true, .lines = true };
	if (parse_args(&one, nwords, words) >= 0) /* argv[0]: words[0] is the program */
		return;
	for (int o = 0; o < O_COUNT; o++)
		if (one.has[o] && conn_opt(o)) {
			fprintf(stderr, "pomai-cli: --%s is given when pomai-cli starts\n", opts[o].name);
			return;
		}
	if (one.has[O_HELP])
		printf("usage: %s\n", cmds[one.cmd].usage);
	else if (one.cmd == C_MAP && !base->cfg.cluster)
		fputs("pomai-cli: map needs --cluster (the slot map of a cluster)\n", stderr);
	else
		runners[one.cmd](&one);
}

/* The interactive prompt (no COMMAND given): a command a line until quit or
 * the end of input. Errors are said and the prompt goes on; exits 0. */
static int repl(const struct cli *base)
{
	char history[CLI_HISTORY_PATH_BYTES], prompt[96];
	static const char *names[C_COUNT + 4] = { "help", "quit", "exit" }; /* Tab's */
	for (int c = 0; c < C_COUNT; c++)
		names[3 + c] = cmds[c].name;
	cli_history_path(history);
	cli_repl_open(history, names);
	snprintf(prompt, sizeof(prompt), "%s%s:%u> ", base->cfg.cluster ? "cluster " : "",
		 base->cfg.host, base->cfg.base_port);
	for (char *line; (line = cli_repl_line(prompt)) != NULL;) {
		char *words[CLI_WORDS_MAX + 1] = { "pomai-cli" };
		const char *why = NULL;
		int n = cli_split(line, words + 1, CLI_WORDS_MAX, &why);
		if (n < 0)
			fprintf(stderr, "pomai-cli: %s\n", why);
		else if (n > 0 && (!strcmp(words[1], "quit") || !strcmp(words[1], "exit")))
			break;
		else if (n > 0 && !strcmp(words[1], "help"))
			repl_helps(n, words + 1);
		else if (n > 0)
			repl_run(base, n + 1, words);
		fflush(stdout);
	}
	cli_repl_close();
	return 0;
}

int main(int argc, char **argv)
{
	static struct cli cl;
	int rc = parse_args(&cl, argc, argv);
	if (rc >= 0)
		return rc;
	if (cl.has[O_HELP]) {
		if (cl.cmd >= 0)
			printf("usage: pomai-cli [OPTIONS] %s\n", cmds[cl.cmd].usage);
		else
			fputs(global_usage, stdout);
		return 0;
	}
	for (int o = 0; o < O_COUNT && cl.cmd < 0; o++)
		if (cl.has[o] && !conn_opt(o))
			return usage_error("--%s belongs to a COMMAND", opts[o].name);
	cl.lines = isatty(STDOUT_FILENO) == 1;
	if (!configure(&cl))
		return EXIT_USAGE;
	const char *why;
	if (pm_client_config_check(&cl.cfg, &why) != PM_CLIENT_OK)
		return usage_error("%s", why);
	enum pm_client_status st = open_client(&cl);
	if (st == PM_CLIENT_OK && !cl.shards_known)
		st = learn_shards(&cl);
	if (st != PM_CLIENT_OK)
		return report(&cl, "connect", st);
	rc = cl.cmd < 0 ? repl(&cl) : runners[cl.cmd](&cl);
	pm_client_close(cl.c);
	return rc;
}
