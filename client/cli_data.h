/* SPDX-License-Identifier: MIT
 *
 * cli_data.h — the vector file readers of pomai-cli (load, knn --file).
 *
 * Formats, chosen by the file name:
 *  - "*.fvecs[.gz]": records of (i32 dim, dim x f32), little-endian (the
 *    TEXMEX / ANN-benchmarks format); every record must have the first's dim;
 *  - "*.csv[.gz]": text lines "key,v1,v2,…"; empty lines and lines starting
 *    with '#' are skipped; no quoting (the key ends at the first comma);
 *  - anything else: an IDX file (MNIST / Fashion-MNIST, e.g.
 *    train-images-idx3-ubyte.gz) of unsigned bytes (type 0x08) or f32 (0x0D);
 *    item i is everything after the first dimension, as floats (pixels 0..255).
 * Files are read through zlib's gzopen, which reads gzip and plain files alike.
 *
 * A reader holds fixed buffers (one vector of CLI_DIM_MAX floats, one CSV line
 * of CLI_CSV_LINE_BYTES_MAX) and never allocates per record.
 */
#ifndef POMAI_CLIENT_CLI_DATA_H
#define POMAI_CLIENT_CLI_DATA_H

#include <stdint.h>
#include <zlib.h>

#include "pomai.h"

#define CLI_DIM_MAX PM_CLIENT_DIM_MAX
/* A CSV line: the longest key and PM_CLIENT_DIM_MAX values of up to 32
 * characters each ("-1.17549435082228750797e-38," is 28). */
#define CLI_CSV_LINE_BYTES_MAX (PM_CLIENT_KEY_BYTES_MAX + 32u * CLI_DIM_MAX + 2u)
#define CLI_ERR_BYTES 256u

enum cli_format { CLI_FVECS, CLI_CSV, CLI_IDX };

struct cli_reader {
	enum cli_format fmt;
	gzFile gz;
	uint64_t file_bytes;   /* size on disk, for progress */
	uint64_t total;        /* records, when the header says (IDX); else 0 */
	uint64_t row;          /* records returned so far */
	uint32_t dim;          /* of the last record */
	uint8_t idx_type;      /* IDX element type: 0x08 u8, 0x0D f32 */
	float *vec;            /* CLI_DIM_MAX */
	uint8_t *raw;          /* CLI_DIM_MAX * 4 bytes: one IDX item */
	char *line;            /* CLI_CSV_LINE_BYTES_MAX + 1 */
	const char *key;       /* CSV: the record's key (into line) */
	uint32_t klen;
	char err[CLI_ERR_BYTES];
};

/* 0, or -1 with r->err set. */
int cli_reader_open(struct cli_reader *r, const char *path);
/* 1: a record is in r->vec / r->dim (and r->key for CSV); 0: end; -1: error. */
int cli_reader_next(struct cli_reader *r);
/* Fraction of the file consumed, 0..1 (compressed bytes for gzip files). */
double cli_reader_progress(const struct cli_reader *r);
void cli_reader_close(struct cli_reader *r);

/* Parses "v1,v2,…" (commas or blanks) into out (at most cap floats). Returns
 * the count, or 0 on a malformed or too long list. */
uint32_t cli_parse_vector(const char *s, float *out, uint32_t cap);

#endif
