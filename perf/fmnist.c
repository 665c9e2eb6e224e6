/* SPDX-License-Identifier: MIT
 *
 * fmnist.c — gzipped IDX3 image loader (format and checks in fmnist.h).
 *
 * The pixels are inflated in chunks of CHUNK_IMAGES images and converted to
 * float as they arrive, so the loader never holds the byte array and the float
 * array at once. Images past max_count are still inflated and counted, so a
 * truncated or over-long file is refused even when only its head is wanted.
 */
#include "fmnist.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Images inflated per gzread call: 256 x 784 B = 196 KiB of scratch. */
#define CHUNK_IMAGES 256u
#define IDX3_HEADER_BYTES 16u

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int rc,
						      const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read exactly len bytes: 0, -EIO (stream error) or -EINVAL (file ends early). */
static int read_exact(gzFile gz, void *buf, unsigned len, const char *path, char *err,
		      size_t errlen)
{
	int n = gzread(gz, buf, len);
	if (n < 0 || (unsigned)n != len) {
		int zerr = Z_OK;
		const char *msg = gzerror(gz, &zerr);
		if (zerr == Z_ERRNO)
			return fail(err, errlen, -EIO, "%s: read error: %s", path, strerror(errno));
		if (zerr != Z_OK) /* zlib's message already names the file */
			return fail(err, errlen, -EIO, "corrupt gzip data in %s", msg);
		return fail(err, errlen, -EINVAL, "%s: truncated: wanted %u more bytes, got %d",
			    path, len, n < 0 ? 0 : n);
	}
	return 0;
}

static int check_header(const uint8_t *h, const char *path, struct fmnist *f, char *err,
			size_t errlen)
{
	uint32_t magic = be32(h);
	if (magic != FMNIST_IDX3_U8_MAGIC)
		return fail(err, errlen, -EINVAL,
			    "%s: not an IDX3 image file of bytes (magic 0x%08x, want 0x%08x)", path,
			    magic, FMNIST_IDX3_U8_MAGIC);
	f->total = be32(h + 4);
	f->rows = be32(h + 8);
	f->cols = be32(h + 12);
	if (f->total == 0 || f->total > FMNIST_IMAGES_MAX)
		return fail(err, errlen, -EINVAL, "%s: bad image count %u (1..%u)", path, f->total,
			    FMNIST_IMAGES_MAX);
	if (f->rows == 0 || f->rows > FMNIST_SIDE_MAX || f->cols == 0 || f->cols > FMNIST_SIDE_MAX)
		return fail(err, errlen, -EINVAL, "%s: bad image size %ux%u (sides 1..%u)", path,
			    f->rows, f->cols, FMNIST_SIDE_MAX);
	f->dim = f->rows * f->cols;
	return 0;
}

/* Inflate all images, keeping the first f->count as floats; then insist on EOF. */
static int read_pixels(gzFile gz, struct fmnist *f, const char *path, char *err, size_t errlen)
{
	uint8_t *chunk = malloc((size_t)CHUNK_IMAGES * f->dim);
	if (!chunk)
		return fail(err, errlen, -ENOMEM, "%s: out of memory", path);
	int rc = 0;
	for (uint32_t i = 0; i < f->total && rc == 0; i += CHUNK_IMAGES) {
		uint32_t n = f->total - i < CHUNK_IMAGES ? f->total - i : CHUNK_IMAGES;
		if ((rc = read_exact(gz, chunk, n * f->dim, path, err, errlen)) != 0)
			break;
		for (uint32_t j = 0; j < n && i + j < f->count; j++) {
			float *dst = f->data + (size_t)(i + j) * f->dim;
			for (uint32_t d = 0; d < f->dim; d++)
				dst[d] = (float)chunk[(size_t)j * f->dim + d];
		}
	}
	if (rc == 0 && gzread(gz, chunk, 1) != 0)
		rc = fail(err, errlen, -EINVAL, "%s: trailing bytes after %u images of %ux%u", path,
			  f->total, f->rows, f->cols);
	free(chunk);
	return rc;
}

int fmnist_load(const char *path, uint32_t max_count, struct fmnist *out, char *err,
		size_t errlen)
{
	memset(out, 0, sizeof(*out));
	gzFile gz = gzopen(path, "rb");
	if (!gz) {
		int e = errno ? errno : ENOMEM;
		return fail(err, errlen, -e, "cannot open %s: %s", path, strerror(e));
	}
	(void)gzbuffer(gz, 1u << 17);
	struct fmnist f = { 0 };
	uint8_t h[IDX3_HEADER_BYTES];
	int rc = read_exact(gz, h, sizeof(h), path, err, errlen);
	if (rc == 0)
		rc = check_header(h, path, &f, err, errlen);
	if (rc == 0) {
		f.count = max_count && max_count < f.total ? max_count : f.total;
		f.data = malloc((size_t)f.count * f.dim * sizeof(float));
		rc = f.data ? read_pixels(gz, &f, path, err, errlen)
			    : fail(err, errlen, -ENOMEM, "%s: out of memory for %u images", path,
				   f.count);
	}
	gzclose(gz);
	if (rc != 0) {
		free(f.data);
		return rc;
	}
	*out = f;
	return 0;
}

int fmnist_load_split(const char *dir, const char *split, uint32_t max_count,
		      struct fmnist *out, char *err, size_t errlen)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/%s-images-idx3-ubyte.gz", dir, split);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		memset(out, 0, sizeof(*out));
		return fail(err, errlen, -ENAMETOOLONG, "dataset path too long: %s", dir);
	}
	return fmnist_load(path, max_count, out, err, errlen);
}

void fmnist_free(struct fmnist *f)
{
	free(f->data);
	memset(f, 0, sizeof(*f));
}
