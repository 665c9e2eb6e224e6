# SPDX-License-Identifier: MIT
"""Cluster mode (Client(cluster=True), libpomai's pm_client_config.cluster)
against one pomaid with cluster = on, the test playing pomai-control on its
admin socket as tests/test_cluster_node.c does: a slot map in which the node
is the primary of the one replica set that owns every slot, and a write
lease. The client fetches the map from its seed and routes by it: keys,
vectors, KNN and collections work, over UDP and TCP."""
import os
import time

import numpy as np
import pytest

import pomai
from pomaid import Pomaid, admin

# How far ahead the write lease reaches (pomaid refuses one beyond
# PM_CLUSTER_LEASE_MS_MAX, 60 s): long enough for this test on a loaded
# machine; the test renews it before each client.
LEASE_MS = 50000
SHARDS = 2


def boot_ms():
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * 1000)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    d = Pomaid(os.environ["POMAID"], str(tmp_path_factory.mktemp("cluster")), shards=SHARDS,
               flags=["--cluster", "on", "--wal", "batch"], repl=True).start()
    doc = (f"pomai-map version=1 epoch=1\n"
           f"set name=s1 epoch=1 primary=n1\n"
           f"node name=n1 set=s1 addr=127.0.0.1 udp={d.base} tcp={d.base - 1} "
           f"repl={d.repl_port} shards={SHARDS}\n"
           f"slots first=0 last=16383 set=s1\n")
    sock = os.path.join(d.dir, "admin.sock")
    st, text = admin(sock, "CLUSTER", "MAP", "n1", doc)
    assert st == 0, text
    d.sock = sock
    yield d
    assert d.stop() == 0


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_cluster_mode(node, transport):
    st, text = admin(node.sock, "CLUSTER", "LEASE", str(boot_ms() + LEASE_MS))
    assert st == 0, text
    with pomai.Client("127.0.0.1", node.base, cluster=True, transport=transport,
                      read_from="replica", timeout_ms=500, retries=4) as c:
        assert c.stats()["map_refreshes"] >= 1  # the seed's map, fetched at open
        c.set(f"{transport}:k", b"v")
        assert c.get(f"{transport}:k") == b"v"
        assert c.delete(f"{transport}:k") is True
        name = f"cl_{transport}"
        c.create_collection(name, 4, index="flat")
        x = np.eye(4, dtype=np.float32)
        for i in range(4):
            c.vadd(f"{transport}:v{i}", x[i], collection=name)
        keys, dists = c.knn(x[2], k=2, collection=name)
        assert keys[0] == f"{transport}:v2".encode() and dists[0] == 0
        assert c.vget(f"{transport}:v3").vec.tolist() == x[3].tolist()
        assert name in {d["name"] for d in c.collections()}
        assert c.drop_collection(name)
    # without the lease, writes are refused: READONLY through the client
    st, text = admin(node.sock, "CLUSTER", "LEASE", "0")
    assert st == 0, text
    with pomai.Client("127.0.0.1", node.base, cluster=True, transport=transport,
                      timeout_ms=50, retries=1) as c:
        with pytest.raises(pomai.ReadOnlyError):
            c.set(f"{transport}:late", b"v")
