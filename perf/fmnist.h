/* SPDX-License-Identifier: MIT
 *
 * fmnist.h — load Fashion-MNIST (or MNIST) image files for the benchmarks and the
 * demo.
 *
 * The files are gzipped IDX3: a big-endian header (magic 0x00000803 = unsigned
 * bytes, 3 dimensions; then count, rows, cols as u32) followed by count x rows x
 * cols pixel bytes. Each image becomes one float vector of rows x cols components
 * holding the raw pixel values 0..255 (no normalisation), which is what
 * ann-benchmarks' fashion-mnist-784-euclidean uses.
 *
 * Every header field is checked, and so is the payload size: a short file, a
 * corrupt gzip stream or trailing bytes are errors, reported as text in the
 * caller's buffer. Results are 0 / -errno.
 */
#ifndef POMAI_PERF_FMNIST_H
#define POMAI_PERF_FMNIST_H

#include <stddef.h>
#include <stdint.h>

/* Where Debian's dataset-fashion-mnist package puts the files. */
#define FMNIST_DIR_DEFAULT "/usr/share/datasets/fashion-mnist"

/* The IDX magic of an unsigned-byte, three-dimensional array. */
#define FMNIST_IDX3_U8_MAGIC 0x00000803u

/* Sanity bounds on header fields, far above the real files (60,000 images of
 * 28 x 28): they only stop a corrupt header from asking for absurd memory. */
#define FMNIST_IMAGES_MAX (1u << 24)
#define FMNIST_SIDE_MAX 1024u

/* Error text buffers: one file name plus a sentence. */
#define FMNIST_ERR_BYTES 512u

struct fmnist {
	float *data;    /* count x dim floats, malloc'd; free with fmnist_free */
	uint32_t count; /* images loaded */
	uint32_t total; /* images in the file (count <= total) */
	uint32_t rows, cols;
	uint32_t dim;   /* rows x cols */
};

/* Load the first max_count images (0 = all) of the gzipped IDX3 file at path.
 * Returns 0, or -errno with a message in err: -ENOENT / -EACCES (cannot open),
 * -EINVAL (not an IDX3 u8 file, bad sizes, truncated or trailing data), -EIO
 * (gzip stream corrupt), -ENOMEM. */
int fmnist_load(const char *path, uint32_t max_count, struct fmnist *out, char *err,
		size_t errlen);

/* Load split "train" or "t10k" from dir (<dir>/<split>-images-idx3-ubyte.gz). */
int fmnist_load_split(const char *dir, const char *split, uint32_t max_count,
		      struct fmnist *out, char *err, size_t errlen);

void fmnist_free(struct fmnist *f);

/* Image i as a float vector of f->dim components. */
static inline const float *fmnist_image(const struct fmnist *f, uint32_t i)
{
	return f->data + (size_t)i * f->dim;
}

#endif
