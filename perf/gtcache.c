/* SPDX-License-Identifier: MIT
 *
 * gtcache.c — the ground-truth cache file (format and checks in gtcache.h).
 */
#include "gtcache.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_SEED UINT64_C(0x9E3779B97F4A7C15)
#define HASH_MUL UINT64_C(0xFF51AFD7ED558CCD)
/* Most neighbours per query a file may hold: PM_K_MAX, the most a search
 * answers (a corrupt header must not ask for absurd memory). */
#define GT_K_MAX 1024u

struct gt_header {
	char magic[8];
	uint32_t version;
	uint32_t n, dim, nq, k;
	uint32_t reserved;
	uint64_t data_hash;
};
_Static_assert(sizeof(struct gt_header) == 40, "gt header layout");

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int rc,
						      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* ---------------------------------------------------------------- hashing */

static uint64_t mix(uint64_t h, uint64_t w)
{
	h ^= w;
	h *= HASH_MUL;
	return h ^ (h >> 29);
}

static uint64_t hash_bytes(uint64_t h, const void *p, uint64_t len)
{
	const uint8_t *b = p;
	uint64_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8);
		h = mix(h, w);
	}
	for (; i < len; i++)
		h = mix(h, b[i]);
	return mix(h, len);
}

uint64_t gt_data_hash(const float *base, uint64_t nbase_floats, const float *queries,
		      uint64_t nquery_floats)
{
	uint64_t h = hash_bytes(HASH_SEED, base, nbase_floats * sizeof(float));
	return hash_bytes(h, queries, nquery_floats * sizeof(float));
}

static uint64_t payload_sum(const struct gt *g)
{
	uint64_t cells = (uint64_t)g->nq * g->k;
	uint64_t h = hash_bytes(HASH_SEED, g->ids, cells * sizeof(uint32_t));
	return hash_bytes(h, g->dist, cells * sizeof(float));
}

/* ---------------------------------------------------------------- paths */

static int mkdir_p(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -errno;
		*p = '/';
		if (rc)
			return rc;
	}
	return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

int gt_cache_path(char *out, size_t outlen, const char *rel, char *err, size_t errlen)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int len;
	if (xdg && xdg[0] == '/')
		len = snprintf(out, outlen, "%s/%s", xdg, rel);
	else if (home && home[0] == '/')
		len = snprintf(out, outlen, "%s/.cache/%s", home, rel);
	else
		return fail(err, errlen, -ENOENT, "no $XDG_CACHE_HOME or $HOME for the cache");
	if (len < 0 || (size_t)len >= outlen)
		return fail(err, errlen, -ENAMETOOLONG, "cache path too long");
	return 0;
}

int gt_default_path(char *out, size_t outlen, const char *name, uint32_t n, uint32_t dim,
		    uint32_t nq, uint32_t k, char *err, size_t errlen)
{
	char dir[GT_PATH_BYTES];
	int len, rc = gt_cache_path(dir, sizeof(dir), "pomai", err, errlen);
	if (rc)
		return rc;
	rc = mkdir_p(dir);
	if (rc)
		return fail(err, errlen, rc, "cannot create %s: %s", dir, strerror(-rc));
	len = snprintf(out, outlen, "%s/%s-gt-n%u-d%u-q%u-k%u.bin", dir, name, n, dim, nq, k);
	if (len < 0 || (size_t)len >= outlen)
		return fail(err, errlen, -ENAMETOOLONG, "cache file name too long");
	return 0;
}

/* ---------------------------------------------------------------- memory */

int gt_alloc(struct gt *g)
{
	size_t cells = (size_t)g->nq * g->k;
	g->ids = malloc(cells * sizeof(uint32_t));
	g->dist = malloc(cells * sizeof(float));
	if (!g->ids || !g->dist) {
		gt_free(g);
		return -ENOMEM;
	}
	return 0;
}

void gt_free(struct gt *g)
{
	free(g->ids);
	free(g->dist);
	g->ids = NULL;
	g->dist = NULL;
}

/* ---------------------------------------------------------------- load / save */

static int check_header(const struct gt_header *h, const struct gt *g, char *err, size_t errlen)
{
	if (memcmp(h->magic, GT_MAGIC, sizeof(h->magic)) != 0 || h->version != GT_VERSION)
		return fail(err, errlen, -EINVAL, "not a version-%u ground-truth file", GT_VERSION);
	if (h->n != g->n || h->dim != g->dim || h->nq != g->nq || h->k < g->k || h->k > GT_K_MAX)
		return fail(err, errlen, -EINVAL, "sizes n=%u dim=%u q=%u k=%u, want %u %u %u >=%u",
			    h->n, h->dim, h->nq, h->k, g->n, g->dim, g->nq, g->k);
	if (h->data_hash != g->data_hash)
		return fail(err, errlen, -EINVAL, "made from other data (hash %016llx, want %016llx)",
			    (unsigned long long)h->data_hash, (unsigned long long)g->data_hash);
	return 0;
}

/* Ids in range and distances ascending per query (not NaN; a cosine distance
 * may round to a hair below 0, so no sign check). */
static int check_payload(const struct gt *g, char *err, size_t errlen)
{
	for (uint32_t q = 0; q < g->nq; q++)
		for (uint32_t i = 0; i < g->k; i++) {
			size_t at = (size_t)q * g->k + i;
			if (g->ids[at] >= g->n)
				return fail(err, errlen, -EINVAL, "query %u: id %u out of range", q,
					    g->ids[at]);
			if (g->dist[at] != g->dist[at] || (i && g->dist[at] < g->dist[at - 1]))
				return fail(err, errlen, -EINVAL, "query %u: distances not ascending",
					    q);
		}
	return 0;
}

/* Read a file of fk >= g->k neighbours per query into full (sized for fk),
 * check it, then keep each query's first g->k in g. */
static int read_all(FILE *f, struct gt *g, char *err, size_t errlen)
{
	struct gt_header h;
	uint64_t sum;
	if (fread(&h, sizeof(h), 1, f) != 1)
		return fail(err, errlen, -EINVAL, "truncated header");
	int rc = check_header(&h, g, err, errlen);
	if (rc)
		return rc;
	struct gt full = *g;
	full.k = h.k;
	if (full.k != g->k && gt_alloc(&full) != 0)
		return fail(err, errlen, -ENOMEM, "out of memory");
	size_t cells = (size_t)full.nq * full.k;
	if (fread(full.ids, sizeof(uint32_t), cells, f) != cells ||
	    fread(full.dist, sizeof(float), cells, f) != cells || fread(&sum, sizeof(sum), 1, f) != 1)
		rc = fail(err, errlen, -EINVAL, "truncated payload");
	else if (fgetc(f) != EOF)
		rc = fail(err, errlen, -EINVAL, "trailing bytes");
	else if (sum != payload_sum(&full))
		rc = fail(err, errlen, -EINVAL, "checksum mismatch");
	else
		rc = check_payload(&full, err, errlen);
	if (full.k != g->k) {
		for (uint32_t q = 0; rc == 0 && q < g->nq; q++) {
			memcpy(g->ids + (size_t)q * g->k, full.ids + (size_t)q * full.k,
			       g->k * sizeof(uint32_t));
			memcpy(g->dist + (size_t)q * g->k, full.dist + (size_t)q * full.k,
			       g->k * sizeof(float));
		}
		gt_free(&full);
	}
	return rc;
}

int gt_load(const char *path, struct gt *g, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
	int rc = read_all(f, g, err, errlen);
	fclose(f);
	return rc;
}

int gt_save(const char *path, const struct gt *g, char *err, size_t errlen)
{
	char tmp[GT_PATH_BYTES + 32];
	struct gt_header h = { .version = GT_VERSION, .n = g->n, .dim = g->dim, .nq = g->nq,
			       .k = g->k, .data_hash = g->data_hash };
	memcpy(h.magic, GT_MAGIC, sizeof(h.magic));
	uint64_t sum = payload_sum(g);
	size_t cells = (size_t)g->nq * g->k;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	if (!f)
		return fail(err, errlen, -errno, "%s: %s", tmp, strerror(errno));
	bool ok = fwrite(&h, sizeof(h), 1, f) == 1 &&
		  fwrite(g->ids, sizeof(uint32_t), cells, f) == cells &&
		  fwrite(g->dist, sizeof(float), cells, f) == cells &&
		  fwrite(&sum, sizeof(sum), 1, f) == 1;
	int rc = fclose(f) == 0 && ok ? 0 : -EIO;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return fail(err, errlen, rc, "cannot write %s: %s", path, strerror(-rc));
	}
	return 0;
}
