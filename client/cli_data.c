/* SPDX-License-Identifier: MIT
 *
 * cli_data.c — pomai-cli's vector file readers (formats in cli_data.h).
 *
 * Every record is checked before it is returned: a dimension of 0 or above
 * CLI_DIM_MAX, a record cut short, a CSV line longer than its buffer or a
 * value that is not a number stops the reader with a message naming the file
 * and the record. Values are not checked for NaN here: the server answers that.
 */
#include "cli_data.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define IDX_TYPE_U8 0x08u
#define IDX_TYPE_F32 0x0Du
/* IDX dimensions: a count and at most this many more (images have 2). */
#define IDX_DIMS_MAX 4u
/* zlib's read buffer. */
#define CLI_GZ_BUFFER_BYTES (128u << 10)

__attribute__((format(printf, 2, 3))) static int fail(struct cli_reader *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof r->err, fmt, ap);
	va_end(ap);
	return -1;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static float le_f32(const uint8_t *p)
{
	uint32_t u = le32(p);
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* 1: read len bytes; 0: clean end before the first byte; -1: error. */
static int read_exact(struct cli_reader *r, void *buf, unsigned len)
{
	int n = gzread(r->gz, buf, len);
	if (n == 0 && len > 0 && gzeof(r->gz))
		return 0;
	if (n < 0 || (unsigned)n != len) {
		int zerr = Z_OK;
		const char *msg = gzerror(r->gz, &zerr);
		if (zerr != Z_OK && zerr != Z_BUF_ERROR)
			return fail(r, "record %llu: read error: %s", (unsigned long long)r->row,
				    zerr == Z_ERRNO ? strerror(errno) : msg);
		return fail(r, "record %llu: file ends inside the record",
			    (unsigned long long)r->row);
	}
	return 1;
}

/* ---------------------------------------------------------------- IDX */

static int idx_open(struct cli_reader *r)
{
	uint8_t h[4 + 4 * (IDX_DIMS_MAX + 1)];
	if (read_exact(r, h, 4) != 1)
		return fail(r, "not an IDX file: too short");
	uint32_t ndims = h[3];
	r->idx_type = h[2];
	if (h[0] != 0 || h[1] != 0 || ndims == 0 || ndims > IDX_DIMS_MAX + 1 ||
	    (r->idx_type != IDX_TYPE_U8 && r->idx_type != IDX_TYPE_F32))
		return fail(r, "not a .fvecs, .csv or IDX (u8 or f32) file: magic %02x%02x%02x%02x",
			    h[0], h[1], h[2], h[3]);
	if (read_exact(r, h + 4, 4 * ndims) != 1)
		return fail(r, "IDX header cut short");
	uint64_t dim = 1;
	for (uint32_t i = 1; i < ndims; i++)
		dim *= be32(h + 4 + 4 * i);
	if (dim == 0 || dim > CLI_DIM_MAX)
		return fail(r, "IDX items have %llu values (1..%u)", (unsigned long long)dim,
			    CLI_DIM_MAX);
	r->total = be32(h + 4);
	r->dim = (uint32_t)dim;
	return 0;
}

static int idx_next(struct cli_reader *r)
{
	if (r->row >= r->total)
		return 0;
	unsigned width = r->idx_type == IDX_TYPE_U8 ? 1u : 4u;
	if (read_exact(r, r->raw, r->dim * width) != 1)
		return fail(r, "record %llu: IDX file ends early (header says %llu)",
			    (unsigned long long)r->row, (unsigned long long)r->total);
	for (uint32_t i = 0; i < r->dim; i++) {
		if (r->idx_type == IDX_TYPE_U8) {
			r->vec[i] = (float)r->raw[i];
		} else {
			const uint8_t *p = r->raw + 4 * i; /* IDX is big-endian */
			uint8_t le[4] = { p[3], p[2], p[1], p[0] };
			r->vec[i] = le_f32(le);
		}
	}
	return 1;
}

/* ---------------------------------------------------------------- fvecs */

static int fvecs_next(struct cli_reader *r)
{
	uint8_t h[4];
	int rc = read_exact(r, h, 4);
	if (rc != 1)
		return rc;
	uint32_t dim = le32(h);
	if (dim == 0 || dim > CLI_DIM_MAX)
		return fail(r, "record %llu: dimension %u (1..%u)", (unsigned long long)r->row, dim,
			    CLI_DIM_MAX);
	if (r->row > 0 && dim != r->dim)
		return fail(r, "record %llu: dimension %u, earlier records %u",
			    (unsigned long long)r->row, dim, r->dim);
	r->dim = dim;
	rc = read_exact(r, r->raw, dim * 4u);
	if (rc != 1)
		return rc < 0 ? -1 : fail(r, "record %llu: file ends inside the record",
					  (unsigned long long)r->row);
	for (uint32_t i = 0; i < dim; i++)
		r->vec[i] = le_f32(r->raw + 4 * i);
	return 1;
}

/* ---------------------------------------------------------------- CSV */

uint32_t cli_parse_vector(const char *s, float *out, uint32_t cap)
{
	uint32_t n = 0;
	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == ',' || *s == '\r' || *s == '\n')
			s++;
		if (*s == '\0')
			break;
		char *end;
		errno = 0;
		float v = strtof(s, &end);
		if (end == s || n >= cap || (errno == ERANGE && v != 0.0f))
			return 0;
		out[n++] = v;
		s = end;
		if (*s && *s != ',' && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			return 0;
	}
	return n;
}

static int csv_next(struct cli_reader *r)
{
	for (;;) {
		if (gzgets(r->gz, r->line, (int)CLI_CSV_LINE_BYTES_MAX + 1) == NULL)
			return gzeof(r->gz) ? 0 : fail(r, "line %llu: read error",
						       (unsigned long long)r->row + 1);
		size_t len = strlen(r->line);
		if (len == CLI_CSV_LINE_BYTES_MAX && r->line[len - 1] != '\n')
			return fail(r, "line %llu: longer than %u bytes",
				    (unsigned long long)r->row + 1, CLI_CSV_LINE_BYTES_MAX);
		if (r->line[0] == '#' || r->line[strspn(r->line, " \t\r\n")] == '\0')
			continue;
		char *comma = strchr(r->line, ',');
		if (comma == NULL || comma == r->line)
			return fail(r, "line %llu: want key,v1,v2,…", (unsigned long long)r->row + 1);
		r->key = r->line;
		r->klen = (uint32_t)(comma - r->line);
		r->dim = cli_parse_vector(comma + 1, r->vec, CLI_DIM_MAX);
		if (r->dim == 0)
			return fail(r, "line %llu: bad vector (numbers, at most %u)",
				    (unsigned long long)r->row + 1, CLI_DIM_MAX);
		return 1;
	}
}

/* ---------------------------------------------------------------- reader */

int cli_reader_open(struct cli_reader *r, const char *path)
{
	memset(r, 0, sizeof *r);
	r->fmt = ends_with(path, ".fvecs") || ends_with(path, ".fvecs.gz") ? CLI_FVECS
		 : ends_with(path, ".csv") || ends_with(path, ".csv.gz")   ? CLI_CSV
									   : CLI_IDX;
	struct stat st;
	r->file_bytes = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
	r->vec = malloc(CLI_DIM_MAX * sizeof(float));
	r->raw = malloc(CLI_DIM_MAX * 4u);
	r->line = malloc(CLI_CSV_LINE_BYTES_MAX + 1u);
	if (!r->vec || !r->raw || !r->line)
		return fail(r, "out of memory");
	r->gz = gzopen(path, "rb");
	if (r->gz == NULL)
		return fail(r, "cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
	(void)gzbuffer(r->gz, CLI_GZ_BUFFER_BYTES);
	return r->fmt == CLI_IDX ? idx_open(r) : 0;
}

int cli_reader_next(struct cli_reader *r)
{
	r->key = NULL;
	r->klen = 0;
	int rc = r->fmt == CLI_FVECS ? fvecs_next(r) : r->fmt == CLI_CSV ? csv_next(r) : idx_next(r);
	if (rc == 1)
		r->row++;
	return rc;
}

double cli_reader_progress(const struct cli_reader *r)
{
	if (r->total)
		return (double)r->row / (double)r->total;
	if (r->file_bytes == 0)
		return 0.0;
	double f = (double)gzoffset(r->gz) / (double)r->file_bytes;
	return f > 1.0 ? 1.0 : f;
}

void cli_reader_close(struct cli_reader *r)
{
	if (r->gz)
		gzclose(r->gz);
	free(r->vec);
	free(r->raw);
	free(r->line);
	memset(r, 0, sizeof *r);
}
