# SPDX-License-Identifier: MIT
"""The Python suite's fixtures: one pomaid (2 shards) for the session, and a
fresh client of it per test over UDP or TCP. meson passes the paths:
POMAID (the built pomaid), POMAI_LIBRARY (the built libpomai.so)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from pomaid import Pomaid  # noqa: E402

import pomai  # noqa: E402

# pomaid's deadline for a shard's part of a fan-out (KNN, batches, INFO).
FANOUT_DEADLINE_MS = 10000


def _pomaid_path():
    path = os.environ.get("POMAID")
    if not path:
        pytest.exit("POMAID must name the pomaid binary (meson test sets it)", 2)
    return path


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    # the fan-out deadline (knn_timeout_ms, 1 s by default) raised for a
    # loaded machine: a batch of Fashion-MNIST vectors into an HNSW graph
    # took longer than 1 s on a shard while the machine compiled beside it
    d = Pomaid(_pomaid_path(), str(tmp_path_factory.mktemp("pomaid")), shards=2,
               flags=["--wal", "batch", "--knn-timeout-ms", str(FANOUT_DEADLINE_MS)]).start()
    yield d
    assert d.stop() == 0, "pomaid did not exit cleanly on SIGTERM"


@pytest.fixture(params=["udp", "tcp"])
def client(request, server):
    with pomai.Client("127.0.0.1", server.base, transport=request.param,
                      timeout_ms=500, retries=4) as c:
        yield c


@pytest.fixture
def udp(server):
    with pomai.Client("127.0.0.1", server.base, timeout_ms=500, retries=4) as c:
        yield c
