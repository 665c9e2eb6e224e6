# SPDX-License-Identifier: MIT
"""Every call of pomai.Client and pomai.Pipeline against a real pomaid, over
UDP and TCP (the `client` fixture runs each test on both)."""
import time

import numpy as np
import pytest

import pomai

# How long a TTL test waits for its key to expire at most (the TTL is 50 ms;
# the rest is slack for a loaded machine), polling every POLL_S.
EXPIRY_WAIT_S = 10
POLL_S = 0.02


@pytest.fixture
def ns(request):
    """A key prefix of this test and transport, so tests share the server."""
    return request.node.name.replace("[", ":").rstrip("]") + ":"


def test_set_get_delete(client, ns):
    client.set(ns + "a", b"hello")
    assert client.get(ns + "a") == b"hello"
    client.set((ns + "b").encode(), "text is UTF-8 \u00e9")
    assert client.get(ns + "b") == "text is UTF-8 \u00e9".encode()
    big = bytes(range(256)) * 240  # 61440 bytes: PM_CLIENT_VALUE_BYTES_MAX
    client.set(ns + "big", big)
    assert client.get(ns + "big") == big
    assert client.get(ns + "absent") is None
    assert client.delete(ns + "a") is True
    assert client.delete(ns + "a") is False
    assert client.get(ns + "a") is None


def test_ttl_expires(client, ns):
    client.set(ns + "t", b"v", ttl_ms=50)
    deadline = time.monotonic() + EXPIRY_WAIT_S
    while client.get(ns + "t") is not None and time.monotonic() < deadline:
        time.sleep(POLL_S)
    assert client.get(ns + "t") is None


def test_kv_errors(client, ns):
    with pytest.raises(pomai.ValueLenError) as e:
        client.set(ns + "v", b"x" * 61441)
    assert e.value.name == "E_VALUE_LEN" and isinstance(e.value, pomai.ServerError)
    with pytest.raises(pomai.KeyLenError):
        client.set("", b"x")
    with pytest.raises(pomai.KeyLenError):
        client.get(b"k" * 1025)
    client.vadd(ns + "vec", [1.0, 2.0])
    with pytest.raises(pomai.WrongTypeError):
        client.get(ns + "vec")


def test_vectors(client, ns):
    coll = "v" + ns.replace(":", "_")[-40:]  # this test's own: KNN sees only its vectors
    client.drop_collection(coll)
    client.create_collection(coll, 3, index="flat")
    client.vadd(ns + "v1", np.array([1, 2, 3], dtype=np.float32), collection=coll,
                attrs={"price": 3.5, "color": "red"})
    client.vadd(ns + "v2", np.array([1, 2, 3.5], dtype=np.float64), collection=coll)
    v = client.vget(ns + "v1")
    assert np.array_equal(v.vec, np.array([1, 2, 3], dtype=np.float32))
    assert v.vec.dtype == np.float32 and v.collection == coll and v.dtype == "f32"
    assert v.attrs == {"price": 3.5, "color": b"red"}
    client.vsetattr(ns + "v1", {"price": 1})
    assert client.vget(ns + "v1").attrs == {"price": 1.0}
    assert client.vget(ns + "absent") is None
    keys, dists = client.knn([1, 2, 3.4], k=2, exact=True, filter="price < 2", collection=coll)
    assert list(keys) == [(ns + "v1").encode()]
    assert dists.dtype == np.float32 and dists[0] == pytest.approx(0.16, abs=1e-5)
    assert client.vdel(ns + "v2") is True and client.vdel(ns + "v2") is False
    with pytest.raises(pomai.NanError):
        client.vadd(ns + "nan", [1.0, float("nan"), 0.0])
    with pytest.raises(pomai.DimError):
        client.vadd(ns + "dim0", np.zeros(0, dtype=np.float32))
    with pytest.raises(pomai.FilterError):
        client.knn([1, 2, 3], k=1, filter="price <", collection=coll)
    with pytest.raises(pomai.KError):
        client.knn([1, 2, 3], k=0, collection=coll)
    client.vadd(ns + "d", [0.0, 0.0, 1.0])  # the default collection of dimension 3
    assert client.vget(ns + "d").collection == ""
    assert client.drop_collection(coll)


def test_collections_and_element_types(client, ns):
    name = ns.replace(":", "_")[-40:]
    for dtype in ("f32", "f16", "q8", "bin"):
        client.drop_collection(name + dtype)
        client.create_collection(name + dtype, 8, metric="l2", index="flat", dtype=dtype)
        # create again with the same parameters: fine; with others: EXISTS
        client.create_collection(name + dtype, 8, metric="l2", index="flat", dtype=dtype)
        with pytest.raises(pomai.ExistsError):
            client.create_collection(name + dtype, 8, metric="ip", index="flat", dtype=dtype)
    x = np.sign(np.random.default_rng(1).standard_normal((50, 8))).astype(np.float16)
    for dtype in ("f32", "f16", "q8", "bin"):
        client.vadd_many([f"{ns}{dtype}:{i}" for i in range(50)], x, collection=name + dtype)
        v = client.vget(f"{ns}{dtype}:7")
        assert v.dtype == dtype and v.collection == name + dtype
        assert np.allclose(v.vec, x[7], atol=0.02)  # +-1 survives every element type
        keys, _ = client.knn(x[7], k=1, exact=True, collection=name + dtype)
        assert client.vget(keys[0]).vec.tolist() == v.vec.tolist()
    listed = {c["name"]: c for c in client.collections()}
    assert listed[name + "q8"]["dtype"] == "q8" and listed[name + "q8"]["count"] == 50
    assert listed[name + "bin"]["dim"] == 8 and listed[name + "bin"]["index"] == "flat"
    with pytest.raises(pomai.ParamError):
        client.create_collection(name + "rr", 8, dtype="f32", rerank=True, rerank_k=5000)
    with pytest.raises(ValueError):
        client.create_collection(name + "x", 8, dtype="f64")
    for dtype in ("f32", "f16", "q8", "bin"):
        assert client.drop_collection(name + dtype) is True
    assert client.drop_collection(name + "f32") is False
    with pytest.raises(pomai.CollectionNameError):
        client.create_collection("n" * 65, 8)


def test_vadd_many_and_knn_many(client, ns):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1300, 24)).astype(np.float32)  # several batch frames
    name = "bm" + ns.replace(":", "_")[-40:]
    client.drop_collection(name)
    client.create_collection(name, 24, index="flat")
    st = client.vadd_many([f"{ns}{i}" for i in range(len(x))], x, collection=name)
    assert st.shape == (1300,) and not st.any()
    # one bad item fails alone
    y = x[:3].copy()
    y[1, 0] = np.nan
    st = client.vadd_many([f"{ns}bad{i}" for i in range(3)], y, collection=name, check=False)
    assert st[0] == 0 and st[2] == 0 and pomai.error(int(st[1])).name == "E_NAN"
    with pytest.raises(pomai.NanError) as e:
        client.vadd_many([f"{ns}bad{i}" for i in range(3)], y, collection=name)
    assert e.value.index == 1
    # knn_many answers as knn does, query by query (exact: a flat collection)
    keys, dists = client.knn_many(x[:70], k=5, collection=name, exact=True)
    assert keys.shape == (70, 5) and dists.shape == (70, 5)
    for i in (0, 33, 69):
        k1, d1 = client.knn(x[i], k=5, collection=name, exact=True)
        assert list(keys[i]) == list(k1) and np.allclose(dists[i], d1)
    assert keys[12, 0] == f"{ns}12".encode() and dists[12, 0] == 0
    with pytest.raises(ValueError):
        client.vadd_many(["a"], x[:2], collection=name)
    with pytest.raises(pomai.KError):
        client.knn_many(x[:2], k=0, collection=name)
    # range search: everything within the 3rd nearest's distance
    k3, d3 = client.knn(x[0], k=3, collection=name, exact=True)
    rk, rd, truncated = client.vrange(x[0], float(d3[2]) * 1.0001, collection=name, exact=True)
    assert list(rk) == list(k3) and not truncated
    assert client.drop_collection(name)


def test_pipeline(client, ns):
    with client.pipeline() as p:
        s = p.set(ns + "p", b"1")
        g = p.get(ns + "p")
        missing = p.get(ns + "missing")
        va = p.vadd(ns + "pv", [0.5, 0.25, 0.125, 1.0], attrs={"n": 2})
        vg = p.vget(ns + "pv")
        bad = p.vadd(ns + "pnan", [float("inf"), 0, 0, 0])
        inf = p.info("cluster")
        d = p.delete(ns + "p")
    assert s.result() is None and g.result() == b"1" and missing.result() is None
    assert va.result() is None and vg.result().attrs == {"n": 2.0}
    # a pipeline's requests to different shards may be applied in any order:
    # the KNN (a fan-out) goes after the VADD's answer
    with client.pipeline() as p:
        kn = p.knn([0.5, 0.25, 0.125, 1.0], k=1, exact=True)
    assert kn.result()[0][0] == (ns + "pv").encode()
    with pytest.raises(pomai.NanError):
        bad.result()
    assert inf.result()["cluster"]["shards"] == 2
    assert d.result() is True
    p = client.pipeline()
    r = p.vdel(ns + "pv")
    with pytest.raises(pomai.ArgError):
        r.result()  # not executed yet
    assert p.execute() == [r] and r.result() is True


def test_info_stats_snapshot(client, server):
    info = client.info()
    assert info["cluster"]["shards"] == 2 and len(info["shards"]) == 2
    assert "keys" in info["total"] and "keyspace" in info["shards"][1]
    assert client.info("keyspace")["shards"][0]["keyspace"]["seeds_capacity"] > 0
    assert client.shards == 2  # learnt from the server: no shards= given
    assert 0 <= client.shard_of("some key") < 2
    client.snapshot()
    s = client.stats()
    assert s["requests"] >= 3 and s["completed"] == s["requests"]


def test_config_and_connection_errors(server):
    with pytest.raises(pomai.ConfigError) as e:
        pomai.Client("127.0.0.1", server.base, timeout_ms=0)
    assert "timeout_ms" in str(e.value)
    with pytest.raises(pomai.ConfigError):
        pomai.Client("not-an-address", server.base)
    with pytest.raises(ValueError):
        pomai.Client("127.0.0.1", server.base, transport="sctp")
    c = pomai.Client("127.0.0.1", server.base, shards=2)
    c.close()
    with pytest.raises(pomai.ArgError):
        c.get("k")
    # nothing listens on this UDP port (the TCP port just below the base)
    with pytest.raises(pomai.ClientTimeoutError):
        pomai.Client("127.0.0.1", server.base - 1, shards=1, timeout_ms=20,
                     retries=1).get("k")


def test_every_status_has_its_exception():
    lib = pomai.client.lib
    for st in range(1, lib.PM_CLIENT_STATUS_COUNT):
        e = pomai.error(st)
        assert type(e) is not pomai.PomaiError, f"status {e.name} has no class"
        assert e.status == st and e.name in str(e)
    assert isinstance(pomai.error(lib.PM_CLIENT_E_TIMEOUT), pomai.ClientError)
    assert isinstance(pomai.error(lib.PM_CLIENT_E_BUSY), pomai.ServerError)


def test_largest_vget(client, ns):
    """The largest VGET reply: PM_CLIENT_DIM_MAX components and an attribute
    record near its 512 bytes (over TCP pomaid keeps room for the whole reply
    before it executes the request; it once kept too little and stopped)."""
    vec = np.linspace(-1, 1, 4096).astype(np.float32)
    attrs = {f"t{i:x}": "x" * 26 for i in range(16)}  # 497 bytes as a record
    client.vadd(ns + "big", vec, attrs=attrs)
    v = client.vget(ns + "big")
    assert np.array_equal(v.vec, vec) and v.attrs == {k: b"x" * 26 for k in attrs}
    assert client.vdel(ns + "big")
