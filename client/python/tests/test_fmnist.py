# SPDX-License-Identifier: MIT
"""Fashion-MNIST from NumPy into pomaid and back: the 10,000 test images
(784 dimensions, from Debian's dataset-fashion-mnist, as perf/fmnist.c
reads them) loaded with vadd_many into an HNSW collection, 200 training
images as queries through knn_many, and their recall@10 against a NumPy
brute force over the same vectors."""
import gzip
import os

import numpy as np
import pytest

import pomai

FMNIST_DIR = os.environ.get("POMAI_FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
IDX_IMAGES_HEADER_BYTES = 16  # magic, count, rows, columns: big-endian u32 each
QUERIES = 200
K = 10
EF_SEARCH = 128
# HNSW at ef 128 finds nearly all of the 10 true neighbours on this data set
# (perf/RESULTS.md measures ~0.99 at ef 64); 0.95 leaves room for ties.
RECALL_MIN = 0.95


def load_images(name, count=None):
    """An IDX image file as a (count, 784) float32 array (pixel values 0..255)."""
    path = os.path.join(FMNIST_DIR, name)
    with gzip.open(path, "rb") as f:
        head = np.frombuffer(f.read(IDX_IMAGES_HEADER_BYTES), dtype=">u4")
        assert head[0] == 2051, f"{path} is not an IDX image file"
        n = int(head[1]) if count is None else min(count, int(head[1]))
        dim = int(head[2]) * int(head[3])
        pixels = np.frombuffer(f.read(n * dim), dtype=np.uint8)
    return pixels.reshape(n, dim).astype(np.float32)


def brute_force(base, queries, k):
    """The k nearest rows of base by squared L2, per query: (indices, distances)."""
    b = base.astype(np.float64)
    q = queries.astype(np.float64)
    d = (q * q).sum(1)[:, None] - 2.0 * q @ b.T + (b * b).sum(1)[None, :]
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, axis=1)


def test_fashion_mnist_recall(udp):
    if not os.path.exists(os.path.join(FMNIST_DIR, "t10k-images-idx3-ubyte.gz")):
        pytest.fail(f"Fashion-MNIST is not in {FMNIST_DIR}: install dataset-fashion-mnist "
                    "(scripts/deps.sh)")
    base = load_images("t10k-images-idx3-ubyte.gz")
    queries = load_images("train-images-idx3-ubyte.gz", QUERIES)
    assert base.shape == (10000, 784) and queries.shape == (QUERIES, 784)
    udp.drop_collection("fmnist")
    udp.create_collection("fmnist", 784, metric="l2", index="hnsw", ef_search=EF_SEARCH)
    status = udp.vadd_many([b"fm:%d" % i for i in range(len(base))], base,
                           collection="fmnist")
    assert not status.any()
    assert {c["name"]: c["count"] for c in udp.collections()}["fmnist"] == len(base)
    keys, dists = udp.knn_many(queries, k=K, collection="fmnist")
    found = np.array([[int(k[3:]) if k is not None else -1 for k in row] for row in keys])
    truth, truth_dists = brute_force(base, queries, K)
    recall = np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)])
    print(f"fashion-mnist: recall@{K} {recall:.4f} at ef_search {EF_SEARCH}")
    assert recall >= RECALL_MIN, f"recall@{K} {recall:.3f} below {RECALL_MIN}"
    # the distances are the squared L2 of the vectors found
    i = int(found[0, 0])
    assert dists[0, 0] == pytest.approx(float(((base[i] - queries[0]) ** 2).sum()), rel=1e-4)
    # and exact search finds NumPy's k smallest distances (compared as
    # distances: which of two tied images comes first is either's choice)
    _, edists = udp.knn_many(queries[:20], k=K, collection="fmnist", exact=True)
    assert np.allclose(edists, truth_dists[:20], rtol=1e-4)
    assert udp.drop_collection("fmnist")
