# SPDX-License-Identifier: MIT
"""pomai.Client: libpomai for Python, with NumPy arrays for vectors.

A thin layer: every call is one or a few libpomai calls (client/pomai.h says
what each does on the wire), and the client's memory is libpomai's, bounded
by its configuration, plus the few result buffers allocated here once per
client. Two ways to call it, usable together:

 - synchronous methods (set, get, knn, ...) that return the answer;
 - a Pipeline (client.pipeline()) that queues requests with
   pm_client_submit and delivers them all at execute(), each as a Pending.

vadd_many and knn_many are pipelined themselves: they cut the arrays into
batch frames (at most PM_CLIENT_BATCH_ITEMS_MAX items, k x queries at most
PM_CLIENT_K_MAX, and what fits one frame) and keep up to BATCH_WINDOW of
them in flight.

Like libpomai's, a Client is not thread-safe: use one per thread.
"""
import collections
import numpy as np

from ._ffi import ffi, lib
from . import errors

# The largest frame a batch may fill: the UDP payload bound (PM_FRAME_BYTES_MAX,
# 65507) less room for trailers libpomai may append (an AUTH trailer), so
# that a batch cut here is never refused as too big by libpomai.
BATCH_FRAME_BYTES_MAX = 65507 - 256
# Bytes of a frame outside its items: the header (24), the request's fixed
# fields and the collection name's length field, rounded up.
BATCH_FRAME_FIXED_BYTES = 128
# Bytes of one item outside its key, vector, collection name and record:
# the length fields and the TTL of client.c's frame_bound, rounded up.
BATCH_ITEM_FIXED_BYTES = 40
# Batch frames of one vadd_many / knn_many in flight at once: enough to keep
# the server's shards busy while the next frame is encoded; each in-flight
# knn_many frame holds a result buffer of PM_CLIENT_K_MAX hits and their keys.
BATCH_WINDOW = 4
# Room allocated past the structs libpomai writes whole and grows at their
# ends (pm_client_config, pm_client_stats: pomai.h), so that a libpomai
# newer than this package's declarations never writes past what Python
# owns. tests/test_layout.py still fails until _ffi.py declares the fields.
STRUCT_GROWTH_BYTES = 256
# How long one poll waits for replies while a call drains its requests
# (libpomai ends each request by its own deadline).
POLL_SLICE_MS = 10

METRICS = {"l2": lib.PM_CLIENT_L2, "ip": lib.PM_CLIENT_IP, "cosine": lib.PM_CLIENT_COSINE}
INDEXES = {"flat": lib.PM_CLIENT_FLAT, "hnsw": lib.PM_CLIENT_HNSW}
DTYPES = {"f32": lib.PM_CLIENT_F32, "f16": lib.PM_CLIENT_F16, "q8": lib.PM_CLIENT_Q8,
          "bin": lib.PM_CLIENT_BIN}
TRANSPORTS = {"udp": lib.PM_CLIENT_UDP, "tcp": lib.PM_CLIENT_TCP}
READ_FROM = {"primary": lib.PM_CLIENT_READ_PRIMARY, "replica": lib.PM_CLIENT_READ_REPLICA}


def _name_of(table, value):
    for k, v in table.items():
        if v == value:
            return k
    return str(value)


# A vector read back: its components (float32, decoded from the collection's
# element type), its collection ("" for the default one of its dimension),
# that element type ("f32", "f16", "q8", "bin") and its attributes.
Vector = collections.namedtuple("Vector", "vec collection dtype attrs")


# ---------------------------------------------------------------- conversions

def _key(key):
    """A key (or value) as bytes: str is UTF-8, anything with a buffer as is."""
    if isinstance(key, str):
        return key.encode()
    return bytes(key)


def _cname(name):
    """A collection name or INFO section for a C string argument."""
    if name is None or name == "":
        return ffi.NULL
    b = name.encode() if isinstance(name, str) else bytes(name)
    if b"\0" in b:
        raise ValueError("a collection name or section cannot hold a NUL byte")
    return b


def _vec(vec):
    """One vector as a contiguous float32 array (any real dtype converts)."""
    a = np.ascontiguousarray(vec, dtype=np.float32)
    if a.ndim != 1:
        raise ValueError(f"a vector is one-dimensional; this array has shape {a.shape}")
    return a


def _matrix(vecs):
    a = np.ascontiguousarray(vecs, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"vectors are rows of a 2-d array; this one has shape {a.shape}")
    return a


def _attr(attrs):
    """A dict of attributes as a libpomai record: numbers and tags (str/bytes)."""
    rec = ffi.new("struct pm_client_attr *")
    lib.pm_client_attr_init(rec)
    for name, v in attrs.items():
        n = name.encode()
        if isinstance(v, (str, bytes, bytearray)):
            t = v.encode() if isinstance(v, str) else bytes(v)
            st = lib.pm_client_attr_tag(rec, n, t, len(t))
        else:
            st = lib.pm_client_attr_num(rec, n, float(v))
        errors.check(st, f"attribute {name!r}")
    return rec


def _attrs_of(rec, length):
    """A record read back as a dict (tags as bytes, numbers as float)."""
    out = {}
    pos = ffi.new("uint32_t *", 0)
    f = ffi.new("struct pm_client_attr_field *")
    while lib.pm_client_attr_next(rec, length, pos, f):
        name = ffi.unpack(f.name, f.name_len).decode()
        out[name] = _bytes_at(f.tag, f.tag_len) if f.is_tag else f.num
    return out


def _bytes_at(ptr, n):
    """n bytes at a C pointer (b"" for none: the pointer may then be NULL)."""
    return ffi.unpack(ffi.cast("char *", ptr), n) if n else b""


def _hits(res):
    """A KNN result's hits as (keys: object array of bytes, dists: float32)."""
    n = res.count
    keys = np.empty(n, dtype=object)
    dists = np.empty(n, dtype=np.float32)
    for i in range(n):
        h = res.hits[i]
        keys[i] = _bytes_at(h.key, h.klen)
        dists[i] = h.dist
    return keys, dists


def parse_info(text):
    """INFO text as a dict: "# Section" headers and "field:value" lines,
    numbers as int or float. The server-wide sections (Cluster, Total) are
    keys of the dict ("cluster", "total"); each shard's text, after its
    "@shard:N" line, is one dict of sections in out["shards"][N]."""
    out = {}
    sections = out
    sec = None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("@shard:"):
            shards = out.setdefault("shards", {})
            sections = shards.setdefault(_number(line[len("@shard:"):]), {})
            sec = None
            continue
        if line.startswith("#"):
            sec = sections.setdefault(line[1:].strip().lower().replace(" ", "_"), {})
            continue
        field, sep, value = line.partition(":")
        if not sep:
            continue
        if sec is None:
            sec = sections.setdefault("", {})
        sec[field] = _number(value)
    if "shards" in out:
        out["shards"] = [out["shards"][i] for i in sorted(out["shards"])]
    return out


def _number(s):
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return s


# ---------------------------------------------------------------- the client

class Client:
    """One libpomai client: to a pomaid (host, port: its base UDP port; shard
    i listens on port + i) or, with cluster=True, to a cluster through any of
    its nodes.

    shards: the server's shard count, for routing keys straight to their
    shard (any count is correct, a wrong one costs a forward); None asks the
    server (one INFO at open). transport: "udp" or "tcp" (tcp_port 0 is
    port - 1, pomaid's default). The other arguments are pm_client_config's.
    """

    def __init__(self, host="127.0.0.1", port=7700, shards=None, transport="udp",
                 tcp_port=0, timeout_ms=250, retries=3, max_in_flight=256,
                 frame_bytes=0, cluster=False, read_from="primary", user=0, key=None):
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {sorted(TRANSPORTS)}")
        if read_from not in READ_FROM:
            raise ValueError(f"read_from must be one of {sorted(READ_FROM)}")
        self._c = None
        self._host = host.encode()
        # zeroed room past the struct as declared here: pomai.h grows
        # pm_client_config at its end (a zeroed field keeps the old
        # behaviour), and pm_client_config_default writes every field the
        # library has, so a libpomai newer than _ffi.py writes into room
        self._cfg_buf = ffi.new("char[]", ffi.sizeof("struct pm_client_config") +
                                STRUCT_GROWTH_BYTES)
        cfg = ffi.cast("struct pm_client_config *", self._cfg_buf)
        lib.pm_client_config_default(cfg)
        cfg.host = self._host_c = ffi.new("char[]", self._host)
        cfg.base_port = port
        cfg.shards = shards or 1
        cfg.transport = TRANSPORTS[transport]
        cfg.tcp_port = tcp_port
        cfg.timeout_ms = timeout_ms
        cfg.retries = retries
        cfg.max_in_flight = max_in_flight
        cfg.frame_bytes = frame_bytes
        cfg.cluster = cluster
        cfg.read_from = READ_FROM[read_from]
        if user:  # issue 19: every frame signed as this user (docs/security.md)
            if isinstance(key, str):
                key = bytes.fromhex(key)
            if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
                raise ValueError("key must be the user's 32-byte key (bytes or 64 hex digits)")
            cfg.user = user
            ffi.memmove(cfg.key, bytes(key), 32)
        self._cfg = cfg
        self._open()
        self._alloc()
        if shards is None and not cluster:
            found = self._server_shards()
            if found and found != cfg.shards:
                self.close()
                cfg.shards = found
                self._open()
        self.shards = cfg.shards
        self._pending = {}  # token: (on_done, what the request points to)
        self._token = 0
        self._callback_error = None
        self._cb = ffi.callback("void(void *, const struct pm_client_result *)", self._on_result)

    def _open(self):
        why = ffi.new("const char **")
        st = lib.pm_client_config_check(self._cfg, why)
        errors.check(st, ffi.string(why[0]).decode())
        out = ffi.new("struct pm_client **")
        errors.check(lib.pm_client_open(self._cfg, out))
        self._c = out[0]

    def _alloc(self):
        self._value = ffi.new("uint8_t[]", lib.PM_CLIENT_VALUE_BYTES_MAX)
        self._vlen = ffi.new("size_t *")
        self._removed = ffi.new("bool *")
        self._vecbuf = ffi.new("float[]", lib.PM_CLIENT_DIM_MAX)
        self._vout = ffi.new("struct pm_client_vector *")
        self._vout.vec = self._vecbuf
        self._vout.cap = lib.PM_CLIENT_DIM_MAX
        self._info = ffi.new("char[]", lib.PM_CLIENT_INFO_REPLY_BYTES_MAX)
        self._knn = self._knn_buffers(lib.PM_CLIENT_K_MAX)
        # knn_many's result buffers, one per batch frame in flight
        self._knn_window = [self._knn_buffers(lib.PM_CLIENT_K_MAX) for _ in range(BATCH_WINDOW)]

    @staticmethod
    def _knn_buffers(hits):
        """A KNN result for up to hits hits, with room for their longest keys."""
        res = ffi.new("struct pm_client_knn_result *")
        key_bytes = hits * lib.PM_CLIENT_KEY_BYTES_MAX
        keep = (ffi.new("struct pm_client_hit[]", hits), ffi.new("uint8_t[]", key_bytes))
        res.hits, res.hits_cap = keep[0], hits
        res.keys, res.keys_cap = keep[1], key_bytes
        return res, keep

    def _server_shards(self):
        """The shard count pomaid reports in INFO (its Cluster section), or 0."""
        try:
            n = self.info("cluster").get("cluster", {}).get("shards")
        except errors.PomaiError:
            return 0
        return n if isinstance(n, int) and 0 < n <= lib.PM_CLIENT_SHARDS_MAX else 0

    def close(self):
        """Close the socket and free libpomai's memory (requests in flight
        are dropped: execute a pipeline first)."""
        if getattr(self, "_c", None) is not None:
            lib.pm_client_close(self._c)
            self._c = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _check(self, st, detail=None):
        if st != lib.PM_CLIENT_OK:
            raise errors.error(st, detail, lib.pm_client_retry_ms(self._c))

    def _live(self):
        if self._c is None:
            raise errors.error(lib.PM_CLIENT_E_ARG, "the client is closed")
        return self._c

    # ------------------------------------------------------------ key-value

    def set(self, key, value, ttl_ms=0):
        """Store value (bytes or str) under key; ttl_ms 0: no expiry."""
        k, v = _key(key), _key(value)
        self._check(lib.pm_client_set(self._live(), k, len(k), v, len(v), ttl_ms))

    def get(self, key):
        """The value under key (bytes), or None when absent or expired."""
        k = _key(key)
        st = lib.pm_client_get(self._live(), k, len(k), self._value,
                               lib.PM_CLIENT_VALUE_BYTES_MAX, self._vlen)
        if st == lib.PM_CLIENT_NOT_FOUND:
            return None
        self._check(st)
        return _bytes_at(self._value, self._vlen[0])

    def delete(self, key):
        """Remove key's value; True when it existed."""
        k = _key(key)
        self._check(lib.pm_client_del(self._live(), k, len(k), self._removed))
        return bool(self._removed[0])

    # ------------------------------------------------------------ vectors

    def vadd(self, key, vec, collection=None, ttl_ms=0, attrs=None):
        """Add or replace key's vector (any real array; sent as float32) in
        collection (None: the default one of its dimension), with attributes
        (a dict of numbers and str/bytes tags; None keeps the vector's)."""
        k, v = _key(key), _vec(vec)
        rec = _attr(attrs) if attrs is not None else ffi.NULL
        st = lib.pm_client_vadd_attr(self._live(), k, len(k), ffi.from_buffer("float[]", v),
                                     len(v), _cname(collection), ttl_ms, rec)
        self._check(st)

    def vget(self, key):
        """key's Vector, or None when it has none."""
        k = _key(key)
        st = lib.pm_client_vget(self._live(), k, len(k), self._vout)
        if st == lib.PM_CLIENT_NOT_FOUND:
            return None
        self._check(st)
        o = self._vout
        vec = np.frombuffer(ffi.buffer(self._vecbuf, o.dim * 4), dtype=np.float32).copy()
        coll = _bytes_at(o.collection, o.collection_len).decode(
            errors="replace")
        return Vector(vec, coll, _name_of(DTYPES, o.dtype), _attrs_of(o.attr, o.attr_len))

    def vdel(self, key):
        """Remove key's vector; True when it existed."""
        k = _key(key)
        self._check(lib.pm_client_vdel(self._live(), k, len(k), self._removed))
        return bool(self._removed[0])

    def vsetattr(self, key, attrs):
        """Replace the attributes of key's vector ({} removes them)."""
        k = _key(key)
        self._check(lib.pm_client_vsetattr(self._live(), k, len(k), _attr(attrs)))

    def _opts(self, k, ef, exact, collection, filter):
        opts = ffi.new("struct pm_client_knn_opts *")
        opts.k, opts.ef, opts.exact = k, ef, exact
        name = _cname(collection)
        keep = (ffi.NULL if name == ffi.NULL else ffi.new("char[]", name),
                ffi.new("char[]", filter.encode()) if filter else ffi.NULL)
        opts.collection, opts.filter = keep
        return opts, keep

    def knn(self, vec, k=10, ef=0, exact=False, collection=None, filter=None):
        """The k nearest vectors of vec: (keys, dists), nearest first; keys an
        object array of bytes, dists float32 (the metric's: squared L2,
        1 - dot, 1 - cosine). filter: an expression over attributes
        (docs/protocol.md, "Filter expressions")."""
        v = _vec(vec)
        opts, keep = self._opts(k, ef, exact, collection, filter)
        res = self._knn[0]
        st = lib.pm_client_knn(self._live(), ffi.from_buffer("float[]", v), len(v), opts, res)
        self._check(st)
        del keep
        return _hits(res)

    def vrange(self, vec, radius, k=lib.PM_CLIENT_K_MAX, ef=0, exact=False, collection=None):
        """Every vector within radius of vec, nearest first, at most k:
        (keys, dists, truncated) — truncated when more were within."""
        v = _vec(vec)
        opts, keep = self._opts(k, ef, exact, collection, None)
        trunc = ffi.new("bool *")
        res = self._knn[0]
        st = lib.pm_client_vrange(self._live(), ffi.from_buffer("float[]", v), len(v),
                                  float(radius), opts, res, trunc)
        self._check(st)
        del keep
        keys, dists = _hits(res)
        return keys, dists, bool(trunc[0])

    # ------------------------------------------------------------ batches

    @staticmethod
    def _chunks(n, item_bytes, items_max):
        """Cut n items of item_bytes each into runs that fit one batch frame."""
        fit = max(1, (BATCH_FRAME_BYTES_MAX - BATCH_FRAME_FIXED_BYTES) // item_bytes)
        step = max(1, min(items_max, fit))
        return [(i, min(n, i + step)) for i in range(0, n, step)]

    def _windowed(self, builds):
        """Submit the requests that builds make, each built when it is its
        turn (a result buffer may come back from an earlier one), keeping at
        most BATCH_WINDOW in flight; wait for all. Returns (index, status)
        of a submit that failed (the later ones are not sent), or None."""
        failed = None
        for i, build in enumerate(builds):
            while len(self._pending) >= BATCH_WINDOW:
                lib.pm_client_poll(self._c, POLL_SLICE_MS)
            req, on_done, keep = build()
            st = self._submit(req, on_done, keep)
            if st != lib.PM_CLIENT_OK:
                failed = (i, st)
                break
        self._wait_all()
        return failed

    def _submit(self, req, on_done, keep):
        """pm_client_submit with this client's callback: on_done(result)
        runs at completion; keep (what the request points to) lives until
        then."""
        token = self._next_token()
        self._pending[token] = (on_done, keep)
        req.cb, req.arg = self._cb, ffi.cast("void *", token)
        st = lib.pm_client_submit(self._c, req, ffi.NULL)
        if st != lib.PM_CLIENT_OK:
            del self._pending[token]
        return st

    def _wait_all(self):
        """Flush and poll until every submitted request has completed, then
        raise what a completion handler raised, if anything."""
        lib.pm_client_flush(self._c)
        while self._pending:
            lib.pm_client_poll(self._c, POLL_SLICE_MS)
        err, self._callback_error = self._callback_error, None
        if err is not None:
            raise err

    def vadd_many(self, keys, vecs, collection=None, ttl_ms=0, check=True):
        """Add len(keys) vectors (the rows of vecs, any real dtype, sent as
        float32) in batch frames. Returns one status per item (an int32
        array: 0 is OK, others are pm_client_status numbers, which
        pomai.error(status) turns into exceptions). check: raise the first
        failed item's exception (.index is its row) once every batch has
        been answered."""
        m = _matrix(vecs)
        ks = [_key(k) for k in keys]
        if len(ks) != m.shape[0]:
            raise ValueError(f"{len(ks)} keys for {m.shape[0]} vectors")
        self._live()
        cname = _cname(collection)
        clen = 0 if cname == ffi.NULL else len(cname)
        kmax = max((len(k) for k in ks), default=0)
        item = BATCH_ITEM_FIXED_BYTES + kmax + 4 * m.shape[1] + clen
        status = np.zeros(len(ks), dtype=np.int32)
        chunks = self._chunks(len(ks), item, lib.PM_CLIENT_BATCH_ITEMS_MAX)
        builds = [self._vadd_many_req(m, ks, lo, hi, cname, clen, ttl_ms, status)
                  for lo, hi in chunks]
        failed = self._windowed(builds)
        if failed is not None:
            status[chunks[failed[0]][0]:] = failed[1]
        if check:
            bad = np.flatnonzero(status)
            if len(bad):
                err = errors.error(int(status[bad[0]]), f"item {bad[0]} of {len(ks)}",
                                   self._retry())
                err.index = int(bad[0])
                raise err
        return status

    @staticmethod
    def _vadd_many_req(m, ks, lo, hi, cname, clen, ttl_ms, status):
        """A deferred VADD_MANY request of rows lo..hi: its items point into
        m and ks; each item's status lands in status[lo:hi]."""
        def build():
            n = hi - lo
            items = ffi.new("struct pm_client_item[]", n)
            rows = ffi.from_buffer("float[]", m[lo:hi])
            kbs = [ffi.from_buffer(k) for k in ks[lo:hi]]
            for j in range(n):
                items[j].key, items[j].klen = kbs[j], len(ks[lo + j])
                items[j].vec, items[j].dim = rows + j * m.shape[1], m.shape[1]
            st_arr = ffi.new("enum pm_client_status[]", n)
            batch = ffi.new("struct pm_client_batch_result *")
            batch.status = st_arr
            req = ffi.new("struct pm_client_req *")
            req.op, req.items, req.nitems, req.batch = lib.PM_CLIENT_VADD_MANY, items, n, batch
            req.ttl_ms = ttl_ms
            nb = ffi.from_buffer(cname) if clen else ffi.NULL
            if clen:
                req.name, req.name_len = nb, clen

            def on_done(res):
                if res.status == lib.PM_CLIENT_OK:
                    status[lo:hi] = [st_arr[j] for j in range(n)]
                else:
                    status[lo:hi] = res.status
            return req, on_done, (items, rows, kbs, st_arr, batch, nb)
        return build

    def knn_many(self, queries, k=10, ef=0, exact=False, collection=None, filter=None):
        """The k nearest of each query (the rows of a 2-d array), as knn()
        would answer each: (keys, dists), arrays of shape (len(queries), k);
        a query with fewer than k hits has None keys and inf distances
        after its last. Raises the first failed batch's exception."""
        q = _matrix(queries)
        self._live()
        if k <= 0 or k > lib.PM_CLIENT_K_MAX:
            raise errors.error(lib.PM_CLIENT_E_K, f"k = {k}")
        nq, dim = q.shape
        cname = _cname(collection)
        clen = 0 if cname == ffi.NULL else len(cname)
        fbytes = filter.encode() if filter else None
        item = BATCH_ITEM_FIXED_BYTES + 4 * dim + clen + (len(fbytes) + 4 if fbytes else 0)
        per = min(lib.PM_CLIENT_BATCH_ITEMS_MAX, lib.PM_CLIENT_K_MAX // k)
        out = (np.full((nq, k), None, dtype=object), np.full((nq, k), np.inf, dtype=np.float32))
        free = self._knn_window
        failure = []
        shared = (ffi.from_buffer(cname) if clen else ffi.NULL, clen,
                  ffi.new("char[]", fbytes) if fbytes else ffi.NULL)
        builds = [self._knn_many_req(q, lo, hi, k, ef, exact, shared, free, out, failure)
                  for lo, hi in self._chunks(nq, item, per)]
        failed = self._windowed(builds)
        if failed is not None:
            raise errors.error(failed[1], "knn_many")
        if failure:
            raise errors.error(failure[0][1], f"queries {failure[0][0]}", self._retry())
        return out

    def _retry(self):
        return lib.pm_client_retry_ms(self._c)

    @staticmethod
    def _knn_many_req(q, lo, hi, k, ef, exact, shared, free, out, failure):
        """A deferred KNN_MANY request of queries lo..hi: built when a result
        buffer is free (at its turn), which goes back on completion."""
        def build():
            res, bufs = free.pop()
            n = hi - lo
            items = ffi.new("struct pm_client_item[]", n)
            rows = ffi.from_buffer("float[]", q[lo:hi])
            for j in range(n):
                items[j].vec, items[j].dim = rows + j * q.shape[1], q.shape[1]
            query = ffi.new("uint32_t[]", n * k)
            batch = ffi.new("struct pm_client_batch_result *")
            batch.query = query
            req = ffi.new("struct pm_client_req *")
            req.op, req.items, req.nitems, req.batch = lib.PM_CLIENT_KNN_MANY, items, n, batch
            req.k, req.ef, req.exact, req.knn, req.filter = k, ef, exact, res, shared[2]
            if shared[1]:
                req.name, req.name_len = shared[0], shared[1]

            def on_done(r):
                free.append((res, bufs))
                if r.status != lib.PM_CLIENT_OK:
                    failure.append((f"{lo}..{hi - 1}", r.status))
                    return
                keys, dists = out
                fill = [0] * n
                for i in range(res.count):
                    qi = query[i]
                    h = res.hits[i]
                    j = fill[qi]
                    if j < k:
                        keys[lo + qi, j] = _bytes_at(h.key, h.klen)
                        dists[lo + qi, j] = h.dist
                        fill[qi] = j + 1
            return req, on_done, (items, rows, query, batch, res, bufs, shared)
        return build

    # ------------------------------------------------------------ collections

    def create_collection(self, name, dim, metric="l2", index="hnsw", m=0,
                          ef_construction=0, ef_search=0, evictable=False, dtype="f32",
                          rerank=False, rerank_k=0):
        """Create a named collection (0: the server's default for m, ef_*,
        rerank_k). dtype: how the server stores its vectors ("f32", "f16",
        "q8", "bin"); vectors are sent and read back as float32 whatever it
        is. ExistsError when it exists with other parameters."""
        for arg, table, v in (("metric", METRICS, metric), ("index", INDEXES, index),
                              ("dtype", DTYPES, dtype)):
            if v not in table:
                raise ValueError(f"{arg} must be one of {sorted(table)}")
        p = ffi.new("struct pm_client_coll_params *")
        p.dim, p.metric, p.index, p.hnsw_m = dim, METRICS[metric], INDEXES[index], m
        p.ef_construction, p.ef_search, p.evictable = ef_construction, ef_search, evictable
        p.dtype, p.rerank, p.rerank_k = DTYPES[dtype], rerank, rerank_k
        self._check(lib.pm_client_collection_create(self._live(), _cname(name), p))

    def drop_collection(self, name):
        """Drop a collection and its vectors; True when it existed."""
        self._check(lib.pm_client_collection_drop(self._live(), _cname(name), self._removed))
        return bool(self._removed[0])

    def collections(self):
        """Every collection, as dicts (name "" is a dimension's default one)."""
        items = ffi.new("struct pm_client_coll_info[]", lib.PM_CLIENT_COLLECTIONS_MAX)
        out = ffi.new("struct pm_client_coll_list *")
        out.items, out.cap = items, lib.PM_CLIENT_COLLECTIONS_MAX
        self._check(lib.pm_client_collection_list(self._live(), out))
        result = []
        for i in range(out.count):
            c = items[i]
            p = c.params
            result.append({
                "name": _bytes_at(c.name, c.name_len).decode(
                    errors="replace"),
                "dim": p.dim, "metric": _name_of(METRICS, p.metric),
                "index": _name_of(INDEXES, p.index), "m": p.hnsw_m,
                "ef_construction": p.ef_construction, "ef_search": p.ef_search,
                "evictable": bool(p.evictable), "dtype": _name_of(DTYPES, p.dtype),
                "rerank": bool(p.rerank), "rerank_k": p.rerank_k,
                "count": c.count, "bytes": c.bytes,
            })
        return result

    # ------------------------------------------------------------ server

    def info_text(self, section=None):
        """The INFO text as the server sends it (every shard's, and a Total)."""
        n = ffi.new("size_t *")
        st = lib.pm_client_info(self._live(), _cname(section), self._info,
                                lib.PM_CLIENT_INFO_REPLY_BYTES_MAX, n)
        self._check(st, f"section {section!r}" if section else None)
        return ffi.unpack(self._info, n[0]).decode(errors="replace")

    def info(self, section=None):
        """INFO as a dict of sections (parse_info says how)."""
        return parse_info(self.info_text(section))

    def snapshot(self):
        """Start a snapshot on every shard (it completes in the background)."""
        self._check(lib.pm_client_snapshot(self._live()))

    def stats(self):
        """libpomai's counters for this client (struct pm_client_stats)."""
        buf = ffi.new("char[]", ffi.sizeof("struct pm_client_stats") + STRUCT_GROWTH_BYTES)
        s = ffi.cast("struct pm_client_stats *", buf)  # room to grow, as the config's
        lib.pm_client_stats(self._live(), s)
        return {f: getattr(s, f) for f, _ in ffi.typeof("struct pm_client_stats").fields}

    def shard_of(self, key):
        k = _key(key)
        return lib.pm_client_shard_of(self._live(), k, len(k))

    # ------------------------------------------------------------ pipelining

    def pipeline(self):
        """A Pipeline of this client: queue requests, then execute() them."""
        return Pipeline(self)

    def _next_token(self):
        self._token += 1
        return self._token

    def _on_result(self, arg, res):
        # Runs inside pm_client_poll / submit: no exception may leave it
        # (cffi would print and drop it); the first is raised by _wait_all.
        token = int(ffi.cast("uintptr_t", arg))
        entry = self._pending.pop(token, None)
        if entry is None:
            return
        try:
            entry[0](res)
        except Exception as e:  # noqa: BLE001 (raised to the caller by _wait_all)
            if self._callback_error is None:
                self._callback_error = e


class Pending:
    """A pipelined request's answer: result() returns it, or raises the
    request's exception."""

    __slots__ = ("done", "status", "value", "retry_ms", "_decode")

    def __init__(self, decode):
        self.done = False
        self.status = None
        self.value = None
        self.retry_ms = 0
        self._decode = decode

    def _complete(self, res):
        self.done = True
        self.status = res.status
        self.retry_ms = res.retry_ms
        if res.status == lib.PM_CLIENT_OK:
            self.value = self._decode(res)
        self._decode = None

    def result(self):
        if not self.done:
            raise errors.error(lib.PM_CLIENT_E_ARG, "not executed yet: call execute()")
        if self.status == lib.PM_CLIENT_NOT_FOUND and self.value is None:
            return None
        if self.status != lib.PM_CLIENT_OK:
            raise errors.error(self.status, None, self.retry_ms)
        return self.value


class Pipeline:
    """Requests queued with pm_client_submit (several frames share one
    datagram per shard), answered all at once by execute(); each method
    returns a Pending. Submitting waits for a free slot when max_in_flight
    are out (libpomai polls meanwhile). Usable as a context manager, which
    executes on exit."""

    def __init__(self, client):
        self._client = client
        self._queued = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.execute()
        else:
            self._client._wait_all()

    def _submit(self, req, decode, keep=()):
        c = self._client
        c._live()
        p = Pending(decode)
        st = c._submit(req, p._complete, keep)
        if st != lib.PM_CLIENT_OK:
            raise errors.error(st)
        self._queued.append(p)
        return p

    @staticmethod
    def _req(op, key=None):
        req = ffi.new("struct pm_client_req *")
        req.op = op
        kb = None
        if key is not None:
            kb = ffi.from_buffer(_key(key))
            req.key, req.klen = kb, len(kb)
        return req, kb

    def set(self, key, value, ttl_ms=0):
        req, kb = self._req(lib.PM_CLIENT_SET, key)
        vb = ffi.from_buffer(_key(value))
        req.value, req.vlen, req.ttl_ms = vb, len(vb), ttl_ms
        return self._submit(req, lambda r: None)

    def get(self, key):
        req, kb = self._req(lib.PM_CLIENT_GET, key)
        return self._submit(req, lambda r: _bytes_at(r.value, r.vlen))

    def delete(self, key):
        req, kb = self._req(lib.PM_CLIENT_DEL, key)
        return self._submit(req, lambda r: bool(r.removed))

    def vadd(self, key, vec, collection=None, ttl_ms=0, attrs=None):
        req, kb = self._req(lib.PM_CLIENT_VADD, key)
        v = _vec(vec)
        vb = ffi.from_buffer("float[]", v)
        req.vec, req.dim, req.ttl_ms = vb, len(v), ttl_ms
        name = _cname(collection)
        nb = None
        if name != ffi.NULL:
            nb = ffi.from_buffer(name)
            req.name, req.name_len = nb, len(name)
        rec = None
        if attrs is not None:
            rec = _attr(attrs)
            req.attr, req.attr_len = rec.buf, rec.len
        return self._submit(req, lambda r: None)

    def vget(self, key):
        req, kb = self._req(lib.PM_CLIENT_VGET, key)

        def decode(r):
            vec = np.frombuffer(ffi.buffer(r.vec, r.dim * 4), dtype=np.float32).copy()
            coll = _bytes_at(r.collection, r.collection_len).decode(
                errors="replace")
            return Vector(vec, coll, _name_of(DTYPES, r.dtype), _attrs_of(r.attr, r.attr_len))
        return self._submit(req, decode)

    def vdel(self, key):
        req, kb = self._req(lib.PM_CLIENT_VDEL, key)
        return self._submit(req, lambda r: bool(r.removed))

    def knn(self, vec, k=10, ef=0, exact=False, collection=None, filter=None):
        req, _ = self._req(lib.PM_CLIENT_KNN)
        v = _vec(vec)
        vb = ffi.from_buffer("float[]", v)
        req.vec, req.dim, req.k, req.ef, req.exact = vb, len(v), k, ef, exact
        name = _cname(collection)
        if name != ffi.NULL:
            nb = ffi.from_buffer(name)
            req.name, req.name_len = nb, len(name)
        if filter:
            fb = ffi.new("char[]", filter.encode())
            req.filter = fb
        res, bufs = Client._knn_buffers(max(1, k))
        req.knn = res
        return self._submit(req, lambda r: _hits(res), keep=(res, bufs))

    def info(self, section=None):
        req, _ = self._req(lib.PM_CLIENT_INFO)
        name = _cname(section)
        if name != ffi.NULL:
            nb = ffi.from_buffer(name)
            req.name, req.name_len = nb, len(name)
        text = ffi.new("struct pm_client_text *")
        buf = ffi.new("char[]", lib.PM_CLIENT_INFO_REPLY_BYTES_MAX)
        text.buf, text.cap = buf, lib.PM_CLIENT_INFO_REPLY_BYTES_MAX
        req.info = text
        return self._submit(req, lambda r: parse_info(
            ffi.unpack(buf, text.len).decode(errors="replace")), keep=(text, buf))

    def execute(self):
        """Send what is queued and wait until every request has completed
        (each ends by its own deadline). Returns the Pendings in order."""
        self._client._live()
        self._client._wait_all()
        done, self._queued = self._queued, []
        return done
