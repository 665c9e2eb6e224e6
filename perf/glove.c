/* SPDX-License-Identifier: MIT
 *
 * glove.c — load and split bench_hnsw's word-vector data set (format and
 * split in glove.h).
 */
#include "glove.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "benchutil.h"
#include "gtcache.h"

#define GLOVE_ALIGN_BYTES 64u

struct file_header {
	char magic[8];
	uint32_t version, rows, dim, crc;
	uint64_t zero;
};
_Static_assert(sizeof(struct file_header) == GLOVE_HEADER_BYTES, "glove header layout");

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int rc,
						      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

int glove_default_path(char *out, size_t outlen, char *err, size_t errlen)
{
	return gt_cache_path(out, outlen, GLOVE_CACHE_FILE, err, errlen);
}

static float *alloc_rows(uint32_t rows, uint32_t dim)
{
	size_t bytes = (size_t)rows * dim * sizeof(float);
	return aligned_alloc(GLOVE_ALIGN_BYTES, (bytes + GLOVE_ALIGN_BYTES - 1) /
						       GLOVE_ALIGN_BYTES * GLOVE_ALIGN_BYTES);
}

/* The header, then the payload into *data (malloc'd); checks size and CRC. */
static int read_file(FILE *f, const char *path, struct file_header *h, float **data, char *err,
		     size_t errlen)
{
	if (fread(h, sizeof(*h), 1, f) != 1 || memcmp(h->magic, GLOVE_MAGIC, 8) != 0 ||
	    h->version != GLOVE_VERSION)
		return fail(err, errlen, -EINVAL, "%s: not a version-%u %s file", path,
			    GLOVE_VERSION, GLOVE_MAGIC);
	if (h->rows == 0 || h->rows > GLOVE_ROWS_MAX || h->dim == 0 || h->dim > GLOVE_DIM_MAX)
		return fail(err, errlen, -EINVAL, "%s: bad sizes %u x %u", path, h->rows, h->dim);
	size_t floats = (size_t)h->rows * h->dim;
	if (!(*data = alloc_rows(h->rows, h->dim)))
		return fail(err, errlen, -ENOMEM, "%s: out of memory", path);
	if (fread(*data, sizeof(float), floats, f) != floats)
		return fail(err, errlen, -EINVAL, "%s: truncated (want %u x %u floats)", path,
			    h->rows, h->dim);
	if (fgetc(f) != EOF)
		return fail(err, errlen, -EINVAL, "%s: trailing bytes", path);
	uint32_t crc = (uint32_t)crc32_z(0, (const Bytef *)*data, floats * sizeof(float));
	if (crc != h->crc)
		return fail(err, errlen, -EINVAL, "%s: CRC %08x, header says %08x", path, crc, h->crc);
	return 0;
}

static bool all_zero(const float *v, uint32_t dim)
{
	for (uint32_t i = 0; i < dim; i++)
		if (v[i] != 0.0f)
			return false;
	return true;
}

/* Split data (rows x dim) into g's queries and base (see glove.h). */
static int split(const float *data, uint32_t rows, uint32_t nq, struct glove *g, char *err,
		 size_t errlen)
{
	const size_t row_bytes = (size_t)g->dim * sizeof(float);
	uint32_t *pick = malloc((size_t)rows * sizeof(uint32_t));
	bool *is_query = calloc(rows, sizeof(bool));
	int rc = -ENOMEM;
	if (!pick || !is_query)
		goto out;
	uint32_t kept = 0;
	for (uint32_t i = 0; i < rows; i++)
		if (!all_zero(data + (size_t)i * g->dim, g->dim))
			pick[kept++] = i;
	g->zero = rows - kept;
	rc = -EINVAL;
	if (nq >= kept) {
		fail(err, errlen, rc, "%u queries asked of %u non-zero rows", nq, kept);
		goto out;
	}
	struct bu_rng rng = { GLOVE_SPLIT_SEED };
	for (uint32_t i = 0; i < nq; i++) { /* partial Fisher-Yates */
		uint32_t j = i + bu_rng_below(&rng, kept - i), t = pick[i];
		pick[i] = pick[j];
		pick[j] = t;
		is_query[pick[i]] = true;
	}
	g->nq = nq;
	g->n = kept - nq;
	rc = -ENOMEM;
	if (!(g->queries = alloc_rows(nq, g->dim)) || !(g->base = alloc_rows(g->n, g->dim)))
		goto out;
	for (uint32_t i = 0; i < nq; i++)
		memcpy(g->queries + (size_t)i * g->dim, data + (size_t)pick[i] * g->dim, row_bytes);
	uint32_t b = 0;
	for (uint32_t i = 0; i < rows; i++) {
		const float *v = data + (size_t)i * g->dim;
		if (!is_query[i] && !all_zero(v, g->dim))
			memcpy(g->base + (size_t)b++ * g->dim, v, row_bytes);
	}
	rc = b == g->n ? 0 : fail(err, errlen, -EINVAL, "split: %u base rows, want %u", b, g->n);
out:
	if (rc == -ENOMEM)
		fail(err, errlen, rc, "out of memory splitting %u rows", rows);
	free(pick);
	free(is_query);
	return rc;
}

int glove_load(const char *path, uint32_t nq, struct glove *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		return fail(err, errlen, -e, "cannot open %s: %s", path, strerror(e));
	}
	struct file_header h;
	float *data = NULL;
	int rc = read_file(f, path, &h, &data, err, errlen);
	fclose(f);
	if (rc == 0) {
		out->rows = h.rows;
		out->dim = h.dim;
		out->crc = h.crc;
		rc = split(data, h.rows, nq, out, err, errlen);
	}
	free(data);
	if (rc != 0)
		glove_free(out);
	return rc;
}

void glove_free(struct glove *g)
{
	free(g->base);
	free(g->queries);
	memset(g, 0, sizeof(*g));
}
