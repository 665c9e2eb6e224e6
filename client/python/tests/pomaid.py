# SPDX-License-Identifier: MIT
"""A pomaid started for the tests, as tests/proc.c starts one for the C
suites: free loopback ports (a random base tried PORT_TRIES times), its own
data directory, its ready line awaited with a deadline, SIGTERM at the end
and its exit status checked. Nothing sleeps to synchronise: the ready line
and the exit are waited for with deadlines."""
import os
import random
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time

READY_LINE = b"pomaid: ready"
# How long pomaid may take to print its ready line on a loaded machine, and
# to exit after SIGTERM (tests/proc.h: PROC_READY_WAIT_MS, PROC_EXIT_WAIT_MS).
READY_WAIT_S = 60
EXIT_WAIT_S = 30
# The range the C harness picks ports from (tests/proc.h PROC_PORT_LO/SPAN),
# and how many bases are tried.
PORT_LO = 20000
PORT_SPAN = 12700
PORT_TRIES = 20
# A small arena: the suite's data fit in a few MiB per shard.
ARENA_FLAGS = ["--arena-bytes", "64M", "--seeds", "65536", "--hugepages", "no"]


def port_free(kind, port):
    s = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_base(shards):
    for _ in range(PORT_TRIES):
        base = PORT_LO + random.randrange(PORT_SPAN - shards)
        if port_free(socket.SOCK_STREAM, base - 1) and all(
                port_free(socket.SOCK_DGRAM, base + i) for i in range(shards)):
            return base
    raise RuntimeError("no free loopback ports found")


def pick_tcp(not_port):
    for _ in range(PORT_TRIES):
        port = PORT_LO + random.randrange(PORT_SPAN)
        if port != not_port and port_free(socket.SOCK_STREAM, port):
            return port
    raise RuntimeError("no free loopback port found")


def admin(sock_path, *words, timeout_s=10):
    """One admin-protocol request (proto/admin_proto.h: u32 LE length, u8
    version 1, u8 argc, then u16 LE length + bytes per word) to pomaid's
    admin socket: (status, text) of its reply."""
    body = bytes([1, len(words)])
    for w in words:
        b = w.encode() if isinstance(w, str) else w
        body += struct.pack("<H", len(b)) + b
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(sock_path)
        s.sendall(struct.pack("<I", len(body)) + body)
        head = _recv_all(s, 4)
        reply = _recv_all(s, struct.unpack("<I", head)[0])
    return reply[1], reply[2:].decode(errors="replace")


def _recv_all(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the admin socket closed mid-reply")
        buf += chunk
    return buf


class Pomaid:
    def __init__(self, path, data_dir, shards=2, flags=(), repl=False):
        """repl: give it a replication port too (--repl-port, a free TCP
        port: cluster mode needs one)."""
        self.path, self.dir, self.shards, self.flags = path, data_dir, shards, list(flags)
        self.repl = repl
        self.proc = None
        self.out = b""
        self.base = 0
        self.repl_port = 0

    def start(self):
        for _ in range(PORT_TRIES):
            self.base = pick_base(self.shards)
            argv = [self.path, "--shards", str(self.shards), "--base-port", str(self.base),
                    "--tcp-port", str(self.base - 1), "--data-dir", self.dir] + ARENA_FLAGS + self.flags
            if self.repl:
                self.repl_port = pick_tcp(not_port=self.base - 1)
                argv += ["--repl-port", str(self.repl_port)]
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if self._await_ready():
                return self
            self.proc.wait(EXIT_WAIT_S)
            if b"Address already in use" not in self.out:
                break
        raise RuntimeError("pomaid did not start:\n" + self.out.decode(errors="replace"))

    def _await_ready(self):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + READY_WAIT_S
        self.out = b""
        while READY_LINE not in self.out or not self.out.split(READY_LINE, 1)[1].count(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                self.proc.kill()
                return False
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                return False
            self.out += chunk
        sel.close()
        # what it prints from now on is read and dropped, so it never blocks
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()
        return True

    def _read_rest(self):
        while os.read(self.proc.stdout.fileno(), 4096):
            pass

    def stop(self):
        """SIGTERM, then its exit status: 0 for a clean stop."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._drain.join(EXIT_WAIT_S)
        return rc
