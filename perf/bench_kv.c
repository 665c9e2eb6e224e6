/* SPDX-License-Identifier: MIT
 *
 * bench_kv.c — key-value throughput and memory overhead of one shard on one core.
 *
 * 1,000,000 keys of 16 bytes (an 8-byte prefix and the key number as 8 binary
 * bytes) with 32-byte values, accessed uniformly at random from a seeded RNG.
 * Phases, each measured through pm_shard_apply_burst with bursts of 32 requests
 * (the dataplane's path) and through one pm_shard_apply per request:
 *
 *   SET insert (fresh)  all keys into a newly mapped shard (first-touch page
 *                       faults included; one pass per fresh shard)
 *   SET insert          all keys, in a shuffled order, into a warm shard that was
 *                       emptied with DEL (untimed) before each pass
 *   SET overwrite       random existing keys, new values
 *   GET                 random existing keys; each reply's value is checked
 *
 * The access order is drawn before each pass (untimed). What is timed is what the
 * dataplane does per request after decoding: fill a struct pm_request (key and
 * value bytes come from a small buffer, as they would from a received frame), apply
 * it, and look at the reply. Each run repeats passes until it has lasted 1 s; the
 * median of 5 runs is reported. Memory overhead per item is the arena bytes the
 * items use (seed slots x 64 + every start-up reservation: seed map, free-seed
 * stack, collection table, scratch + blob class bytes) divided by the item
 * count, minus the 48 bytes of key and value themselves.
 *
 * To profile one phase and mode (perf record), --phase and --mode leave out the
 * others (the fresh fill still runs first: the other phases need its keys).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchutil.h"
#include "request.h"
#include "shard.h"

#define KV_ITEMS_DEFAULT 1000000u
#define KV_KEY_BYTES 16u
#define KV_VALUE_BYTES 32u
#define KV_KEY_PREFIX "pomaikv:" /* 8 bytes, then the key number as u64 */
#define KV_BURST_DEFAULT 32u
#define KV_SEED_DEFAULT 42u

/* The targets, one core. */
#define TARGET_GET_OPS_S 10e6
#define TARGET_SET_OPS_S 5e6
#define TARGET_OVERHEAD_BYTES 64.0

_Static_assert(sizeof(KV_KEY_PREFIX) - 1 + sizeof(uint64_t) == KV_KEY_BYTES, "key layout");

enum mode { MODE_BURST, MODE_SINGLE, MODE_COUNT };
static const char *const mode_names[MODE_COUNT] = { "burst", "single" };

struct opts {
	uint32_t items, runs, burst, seed, min_ms;
	int cpu;   /* -1: do not pin */
	int phase; /* only this enum phase (for profiling), -1: all */
	int mode;  /* only this enum mode, -1: both */
};

/* What the reply checks found; any failure makes the run invalid. */
struct check {
	uint64_t ok, bad;
};

struct bench {
	struct pm_shard sh;
	struct pm_shard_config cfg;
	struct opts o;
	struct bu_rng rng;
	uint32_t *order;   /* key numbers of one pass */
	uint32_t epoch;    /* written into values, so overwrites change them */
	struct check chk;
	uint8_t key[PM_BURST_MAX][KV_KEY_BYTES];
	uint8_t val[PM_BURST_MAX][KV_VALUE_BYTES];
	struct pm_request req[PM_BURST_MAX];
};

/* ---------------------------------------------------------------- requests */

/* Fill request slot i for key number n, as a decoder would from a frame. */
static inline void fill_req(struct bench *b, uint32_t i, uint8_t op, uint32_t n)
{
	struct pm_request *r = &b->req[i];
	uint64_t id = n;
	memcpy(b->key[i] + 8, &id, sizeof(id));
	r->op = op;
	r->id = n;
	r->key.ptr = b->key[i];
	r->key.len = KV_KEY_BYTES;
	if (op == PM_OP_SET) {
		uint32_t v[2] = { n, b->epoch };
		memcpy(b->val[i], v, sizeof(v));
		r->value.ptr = b->val[i];
		r->value.len = KV_VALUE_BYTES;
	} else {
		r->value.len = 0;
	}
}

/* Every reply is checked: SET and DEL succeed, GET returns this key's value. */
static inline void check_reply(struct check *c, const struct pm_request *req,
			       const struct pm_reply *rep)
{
	uint32_t n;
	bool good = rep->status == PM_OK;
	if (req->op == PM_OP_GET) {
		good = good && rep->value.len == KV_VALUE_BYTES;
		if (good) {
			memcpy(&n, rep->value.ptr, sizeof(n));
			good = n == (uint32_t)req->id;
		}
	} else if (req->op == PM_OP_DEL) {
		good = good && rep->removed == 1;
	}
	c->ok += good;
	c->bad += !good;
}

static void emit(void *ctx, const struct pm_request *req, const struct pm_reply *rep)
{
	check_reply(ctx, req, rep);
}

/* Apply op to the keys order[0..n) in the given mode; returns elapsed ns. */
static uint64_t run_ops(struct bench *b, uint8_t op, const uint32_t *order, uint32_t n,
			enum mode m)
{
	const uint32_t burst = b->o.burst;
	struct pm_reply rep;
	uint64_t t0 = bu_now_ns();
	if (m == MODE_BURST) {
		for (uint32_t i = 0; i < n; i += burst) {
			uint32_t cnt = n - i < burst ? n - i : burst;
			for (uint32_t j = 0; j < cnt; j++)
				fill_req(b, j, op, order[i + j]);
			pm_shard_apply_burst(&b->sh, b->req, cnt, 0, emit, &b->chk);
		}
	} else {
		for (uint32_t i = 0; i < n; i++) {
			fill_req(b, 0, op, order[i]);
			pm_shard_apply(&b->sh, &b->req[0], 0, &rep);
			check_reply(&b->chk, &b->req[0], &rep);
		}
	}
	return bu_now_ns() - t0;
}

/* ---------------------------------------------------------------- orders */

static void order_shuffled(struct bench *b)
{
	for (uint32_t i = 0; i < b->o.items; i++)
		b->order[i] = i;
	for (uint32_t i = b->o.items - 1; i > 0; i--) {
		uint32_t j = bu_rng_below(&b->rng, i + 1), t = b->order[i];
		b->order[i] = b->order[j];
		b->order[j] = t;
	}
}

static void order_uniform(struct bench *b)
{
	for (uint32_t i = 0; i < b->o.items; i++)
		b->order[i] = bu_rng_below(&b->rng, b->o.items);
}

/* ---------------------------------------------------------------- shard */

static int shard_up(struct bench *b)
{
	enum pm_status st = pm_shard_init(&b->sh, &b->cfg);
	if (st != PM_OK) {
		fprintf(stderr, "bench_kv: shard init (%llu MiB, %u seeds) failed: %s\n",
			(unsigned long long)(b->cfg.arena_bytes >> 20), b->cfg.seed_capacity,
			pm_status_name(st));
		return -1;
	}
	return 0;
}

/* Fill a fresh shard with every key; returns ops/s, or a negative on failure. */
static double fill_fresh(struct bench *b, enum mode m)
{
	if (shard_up(b) != 0)
		return -1;
	order_shuffled(b);
	uint64_t ns = run_ops(b, PM_OP_SET, b->order, b->o.items, m);
	return b->o.items / (ns / 1e9);
}

/* ---------------------------------------------------------------- phases */

enum phase { PH_INSERT_FRESH, PH_INSERT, PH_OVERWRITE, PH_GET, PH_COUNT };
static const char *const phase_names[PH_COUNT] = {
	"SET insert (fresh shard)", "SET insert (warm shard)", "SET overwrite (random)",
	"GET (random)",
};

/* One run of a phase on a shard holding every key: passes until min_ms; ops/s. */
static double run_phase(struct bench *b, enum phase p, enum mode m)
{
	uint64_t ns = 0, ops = 0;
	while (ns < (uint64_t)b->o.min_ms * 1000000u) {
		b->epoch++;
		if (p == PH_INSERT) {
			order_shuffled(b);
			(void)run_ops(b, PM_OP_DEL, b->order, b->o.items, MODE_BURST);
			order_shuffled(b);
			ns += run_ops(b, PM_OP_SET, b->order, b->o.items, m);
		} else {
			order_uniform(b);
			ns += run_ops(b, p == PH_GET ? PM_OP_GET : PM_OP_SET, b->order, b->o.items, m);
		}
		ops += b->o.items;
	}
	return ops / (ns / 1e9);
}

static double target_of(enum phase p)
{
	return p == PH_GET ? TARGET_GET_OPS_S : TARGET_SET_OPS_S;
}

static void report(enum phase p, enum mode m, double *v, unsigned n)
{
	printf("  %-26s %-6s runs:", phase_names[p], mode_names[m]);
	for (unsigned i = 0; i < n; i++)
		printf(" %.2f", v[i] / 1e6);
	double med = bu_median(v, n);
	printf("  -> median %.2f M ops/s = %.2fx target (%.0f M/s)\n", med / 1e6,
	       med / target_of(p), target_of(p) / 1e6);
	fflush(stdout);
}

/* ---------------------------------------------------------------- memory */

static uint64_t rss_bytes(void)
{
	unsigned long long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%llu %llu", &size, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Anonymous memory backed by transparent hugepages (whether the arena got them
 * matters: 4 KiB pages would add a TLB miss to every random access). */
static uint64_t thp_bytes(void)
{
	unsigned long long kb = 0;
	char line[256];
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024u;
}

/* Bytes per item beyond its 48 bytes of key and value, from the arena's books. */
static double report_memory(struct bench *b, uint64_t rss_growth)
{
	struct pm_arena_stats st;
	pm_arena_stats(&b->sh.arena, &st);
	uint64_t seeds = (uint64_t)st.seeds_used * PM_SEED_BYTES;
	uint64_t map = (b->sh.map.mask + 1) * sizeof(struct pm_bucket);
	uint64_t other = st.static_bytes - map; /* free-seed stack, tables, scratch */
	uint64_t used = seeds + st.static_bytes + st.blob_bytes_used;
	double n = b->o.items;
	double over = used / n - (KV_KEY_BYTES + KV_VALUE_BYTES);
	printf("memory after inserting %u items (%u-byte keys, %u-byte values):\n", b->o.items,
	       KV_KEY_BYTES, KV_VALUE_BYTES);
	printf("  seed slots used   %u x %u B = %llu B (%.2f B/item)\n", st.seeds_used,
	       PM_SEED_BYTES, (unsigned long long)seeds, seeds / n);
	printf("  seed map          %llu buckets x 64 B = %llu B (%.2f B/item; sized for %u seeds,"
	       " %.0f%% full)\n",
	       (unsigned long long)(b->sh.map.mask + 1), (unsigned long long)map, map / n,
	       st.seeds_capacity, 100.0 * b->sh.map.count / ((b->sh.map.mask + 1) * 12.0));
	printf("  other reservations %llu B (%.2f B/item: free-seed stack, collection table,"
	       " reply scratch)\n",
	       (unsigned long long)other, other / n);
	printf("  blob bytes used   %llu B (%.2f B/item; requested %llu B)\n",
	       (unsigned long long)st.blob_bytes_used, st.blob_bytes_used / n,
	       (unsigned long long)st.blob_bytes_requested);
	printf("  total             %.2f B/item; overhead beyond key+value %.2f B/item"
	       " = %.2fx the %.0f B target\n",
	       used / n, over, over / TARGET_OVERHEAD_BYTES, TARGET_OVERHEAD_BYTES);
	printf("  cross-check: process RSS grew %.1f MiB while filling the fresh shard (%.2f B/item)\n",
	       rss_growth / 1048576.0, rss_growth / n);
	printf("  pages: arena on explicit hugepages: %s; process memory on transparent"
	       " hugepages: %.1f MiB\n",
	       b->sh.arena.hugepages ? "yes" : "no", thp_bytes() / 1048576.0);
	return over;
}

/* Untimed: every key present with the value of the last SET (checked in the reply). */
static int verify_all(struct bench *b)
{
	for (uint32_t i = 0; i < b->o.items; i++)
		b->order[i] = i;
	struct check before = b->chk;
	(void)run_ops(b, PM_OP_GET, b->order, b->o.items, MODE_BURST);
	if (b->chk.bad != before.bad || b->sh.stats.keys != b->o.items) {
		fprintf(stderr, "bench_kv: verification failed: %llu bad replies, %llu keys\n",
			(unsigned long long)(b->chk.bad - before.bad),
			(unsigned long long)b->sh.stats.keys);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_kv [--items N] [--runs N] [--min-ms MS] [--burst B] [--seed S] [--cpu C]\n"
		"  --items N    keys (default %u)\n"
		"  --runs N     runs per phase, median reported (default %u)\n"
		"  --min-ms MS  minimum duration of one run (default %llu)\n"
		"  --burst B    requests per pm_shard_apply_burst, 1..%u (default %u)\n"
		"  --seed S     RNG seed (default %u)\n"
		"  --cpu C      pin to CPU C, -1 to not pin (default 0)\n"
		"  --phase P    only insert, overwrite or get after the fresh fill (to profile)\n"
		"  --mode M     only burst or single (to profile)\n",
		KV_ITEMS_DEFAULT, BU_RUNS_DEFAULT, (unsigned long long)(BU_RUN_NS_MIN / 1000000),
		PM_BURST_MAX, KV_BURST_DEFAULT, KV_SEED_DEFAULT);
}

static const char *const phase_flags[PH_COUNT] = { "fresh", "insert", "overwrite", "get" };

static int name_index(const char *v, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(v, names[i]))
			return i;
	return -1;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ KV_ITEMS_DEFAULT, BU_RUNS_DEFAULT, KV_BURST_DEFAULT, KV_SEED_DEFAULT,
			    (uint32_t)(BU_RUN_NS_MIN / 1000000), 0, -1, -1 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		}
		uint32_t cpu = 0;
		int rc = -EINVAL;
		if (!v)
			rc = -EINVAL;
		else if (!strcmp(a, "--items"))
			rc = bu_parse_u32(v, PM_SEEDS_MAX / 2, &o->items);
		else if (!strcmp(a, "--runs"))
			rc = bu_parse_u32(v, 101, &o->runs);
		else if (!strcmp(a, "--min-ms"))
			rc = bu_parse_u32(v, 600000, &o->min_ms);
		else if (!strcmp(a, "--burst"))
			rc = bu_parse_u32(v, PM_BURST_MAX, &o->burst);
		else if (!strcmp(a, "--seed"))
			rc = bu_parse_u32(v, UINT32_MAX, &o->seed);
		else if (!strcmp(a, "--cpu") && !strcmp(v, "-1"))
			o->cpu = -1, rc = 0;
		else if (!strcmp(a, "--cpu") && (rc = bu_parse_u32(v, 4095, &cpu)) == 0)
			o->cpu = (int)cpu;
		else if (!strcmp(a, "--phase"))
			rc = (o->phase = name_index(v, phase_flags, PH_COUNT)) < 0 ? -EINVAL : 0;
		else if (!strcmp(a, "--mode"))
			rc = (o->mode = name_index(v, mode_names, MODE_COUNT)) < 0 ? -EINVAL : 0;
		if (rc != 0 || o->items < 2 || o->runs == 0 || o->burst == 0) {
			fprintf(stderr, "bench_kv: bad argument '%s'%s%s\n", a, v ? " " : "", v ? v : "");
			usage(stderr);
			return -EINVAL;
		}
		i++;
	}
	return 0;
}

/* The default shard, grown if the item count needs more seeds or arena. */
static void size_shard(struct bench *b)
{
	pm_shard_config_default(&b->cfg);
	if (b->o.items > b->cfg.seed_capacity)
		b->cfg.seed_capacity = b->o.items;
	uint64_t need = (uint64_t)b->cfg.seed_capacity * PM_SEED_BYTES +
			pm_seedmap_bytes(b->cfg.seed_capacity) + (UINT64_C(16) << 20);
	need = (need + (UINT64_C(2) << 20) - 1) & ~((UINT64_C(2) << 20) - 1);
	if (need > b->cfg.arena_bytes)
		b->cfg.arena_bytes = need;
}

/* Fresh-shard inserts; leaves the last filled shard up for the other phases. */
static int phase_fresh(struct bench *b, double *res)
{
	uint64_t rss_growth = 0;
	for (uint32_t r = 0; r < b->o.runs; r++) {
		for (uint32_t k = 0; k < MODE_COUNT; k++) {
			enum mode m = (enum mode)((r + k) % MODE_COUNT);
			bool last = r + 1 == b->o.runs && k + 1 == MODE_COUNT;
			uint64_t rss0 = rss_bytes();
			double v = fill_fresh(b, m);
			if (v < 0)
				return -1;
			res[m * b->o.runs + r] = v;
			rss_growth = rss_bytes() - rss0;
			if (!last)
				pm_shard_destroy(&b->sh);
		}
	}
	report(PH_INSERT_FRESH, MODE_BURST, res, b->o.runs);
	report(PH_INSERT_FRESH, MODE_SINGLE, res + b->o.runs, b->o.runs);
	if (verify_all(b) != 0)
		return -1;
	b->epoch = 0; /* values now carry epoch 0 */
	(void)report_memory(b, rss_growth);
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench b;
	if (parse_args(argc, argv, &b.o) != 0)
		return 2;
	bu_print_header("bench_kv: Pomai KV, one shard, one core", argc, argv);
	if (b.o.cpu >= 0 && bu_pin_cpu(b.o.cpu) != 0)
		fprintf(stderr, "bench_kv: could not pin to CPU %d; running unpinned\n", b.o.cpu);
	size_shard(&b);
	printf("setup:    %u keys of %u B, values %u B, uniform random (seed %u), burst %u,"
	       " %u runs >= %u ms each, pinned to CPU %d; shard arena %llu MiB, %u seeds\n",
	       b.o.items, KV_KEY_BYTES, KV_VALUE_BYTES, b.o.seed, b.o.burst, b.o.runs, b.o.min_ms,
	       b.o.cpu, (unsigned long long)(b.cfg.arena_bytes >> 20), b.cfg.seed_capacity);
	b.rng.state = b.o.seed;
	for (uint32_t i = 0; i < PM_BURST_MAX; i++) {
		memcpy(b.key[i], KV_KEY_PREFIX, 8);
		memset(b.val[i], 'v', KV_VALUE_BYTES);
	}
	double *res = calloc((size_t)b.o.runs * MODE_COUNT, sizeof(*res));
	b.order = malloc((size_t)b.o.items * sizeof(*b.order));
	if (!res || !b.order) {
		fprintf(stderr, "bench_kv: out of memory\n");
		return 1;
	}
	printf("results (M ops/s per run; median of %u):\n", b.o.runs);
	if (phase_fresh(&b, res) != 0)
		return 1;
	for (enum phase p = PH_INSERT; p < PH_COUNT; p++) {
		if (b.o.phase >= 0 && (int)p != b.o.phase)
			continue;
		for (uint32_t r = 0; r < b.o.runs; r++)
			for (uint32_t k = 0; k < MODE_COUNT; k++) {
				enum mode m = (enum mode)((r + k) % MODE_COUNT);
				if (b.o.mode < 0 || (int)m == b.o.mode)
					res[m * b.o.runs + r] = run_phase(&b, p, m);
			}
		for (enum mode m = 0; m < MODE_COUNT; m++)
			if (b.o.mode < 0 || (int)m == b.o.mode)
				report(p, m, res + m * b.o.runs, b.o.runs);
	}
	int rc = verify_all(&b);
	printf("checks:   %llu replies checked, %llu bad\n", (unsigned long long)b.chk.ok,
	       (unsigned long long)b.chk.bad);
	pm_shard_destroy(&b.sh);
	free(res);
	free(b.order);
	return rc == 0 && b.chk.bad == 0 ? 0 : 1;
}
