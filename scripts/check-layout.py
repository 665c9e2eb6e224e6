#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check-layout.py — the rooms of the tree and which may use which.

Usage: check-layout.py SOURCE_ROOT [BUILD_DIR]

Checks two things and exits 1 listing every broken arrow (docs/architecture.md
draws them):

1. #include lines. A quoted include "x.h" (or "room/x.h") in a file of room R
   must name a header of R itself or of a room R may include:

       proto/      -> (itself only)            libc, libxxhash and libsodium only
       engine/     -> (itself only)            libc and libxxhash only
       client/     -> proto/
       control/    -> proto/
       dataplane/  -> engine/, proto/          (never control/)

   A header name found in more than one room is an error too (the include
   path is flat: an ambiguous name could silently pick the wrong room).
   proto/ and engine/ may use <...> headers of libc (C17 and POSIX) and
   <xxhash.h> only; proto/ also <sodium.h> (issue 19: the MACs client and
   server must compute alike are a contract, proto/auth.h).

2. Link lists. A room's meson.build may use only the variables (libraries,
   dependencies, include directories) defined by the meson.build of a room it
   may include; and, when BUILD_DIR is given, every executable and shared
   library whose output lies in a room's build directory may link only the
   static libraries of those rooms (read from BUILD_DIR/build.ninja, which
   shows what a static library's link_with pulled in only where it is
   finally linked). tests/ and perf/ may use and link anything.
"""
import os
import re
import sys

ROOMS = ("proto", "engine", "client", "control", "dataplane")
MAY_INCLUDE = {
    "proto": set(),
    "engine": set(),
    "client": {"proto"},
    "control": {"proto"},
    "dataplane": {"engine", "proto"},
}
# Rooms that may use nothing but libc (and libxxhash): checked on <...> lines.
LIBC_ONLY = ("proto", "engine")
LIBC_HEADERS = set("""
assert.h complex.h ctype.h errno.h fenv.h float.h inttypes.h iso646.h limits.h
locale.h math.h setjmp.h signal.h stdalign.h stdarg.h stdatomic.h stdbool.h
stddef.h stdint.h stdio.h stdlib.h stdnoreturn.h string.h tgmath.h threads.h
time.h uchar.h wchar.h wctype.h
aio.h arpa/inet.h dirent.h dlfcn.h endian.h fcntl.h fnmatch.h glob.h grp.h
ifaddrs.h net/if.h netdb.h netinet/in.h netinet/tcp.h poll.h pthread.h pwd.h
sched.h semaphore.h strings.h sys/epoll.h sys/file.h sys/ioctl.h sys/mman.h
sys/random.h sys/resource.h sys/select.h sys/socket.h sys/stat.h sys/statvfs.h
sys/syscall.h sys/time.h sys/types.h sys/uio.h sys/un.h sys/wait.h syslog.h
termios.h unistd.h immintrin.h emmintrin.h xmmintrin.h cpuid.h x86intrin.h
xxhash.h
""".split())

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def room_of(rel):
    top = rel.split(os.sep, 1)[0]
    return top if top in ROOMS else None


def sources(root):
    for room in ROOMS:
        base = os.path.join(root, room)
        if not os.path.isdir(base):
            continue
        for dirpath, _, names in os.walk(base):
            for n in sorted(names):
                if n.endswith((".c", ".h", ".cpp")):
                    yield os.path.relpath(os.path.join(dirpath, n), root)


def check_includes(root, errors):
    files = list(sources(root))
    where = {}  # header basename -> set of rooms holding one
    for rel in files:
        if rel.endswith(".h"):
            where.setdefault(os.path.basename(rel), set()).add(room_of(rel))
    for name, rooms in sorted(where.items()):
        if len(rooms) > 1:
            errors.append(f"header {name} exists in several rooms: {', '.join(sorted(rooms))}")
    for rel in files:
        room = room_of(rel)
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                kind, name = m.groups()
                if kind == "<":
                    if room == "proto" and name == "sodium.h":
                        continue
                    if room in LIBC_ONLY and name not in LIBC_HEADERS:
                        errors.append(f"{rel}:{lineno}: {room}/ uses <{name}>: libc and libxxhash only")
                    continue
                if "/" in name and name.split("/", 1)[0] in ROOMS:
                    target_rooms = {name.split("/", 1)[0]}
                elif os.path.exists(os.path.join(root, os.path.dirname(rel), name)):
                    target_rooms = {room}
                else:
                    target_rooms = where.get(os.path.basename(name), set())
                    if not target_rooms:
                        errors.append(f"{rel}:{lineno}: \"{name}\" is no header of any room")
                        continue
                for t in target_rooms:
                    if t != room and t not in MAY_INCLUDE[room]:
                        errors.append(f"{rel}:{lineno}: {room}/ includes {t}/ (\"{name}\")")


ASSIGN_RE = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\+?=', re.M)
# Variables holding the room's own code: what another room could link or
# include through. (A system dependency('...') object may be shared.)
ARTIFACT_RE = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:static_library|shared_library|'
                         r'both_libraries|library|declare_dependency|include_directories|files)\b', re.M)
WORD_RE = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')


def meson_text(path):
    # Drop comments and strings: only code names count.
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = re.sub(r"'(?:[^'\\]|\\.)*'", "''", line)
            out.append(line.split("#", 1)[0])
    return "".join(out)


def check_meson(root, errors):
    texts = {}
    defined = {}  # variable -> room that defines it
    for room in ROOMS:
        p = os.path.join(root, room, "meson.build")
        if os.path.exists(p):
            texts[room] = meson_text(p)
            for name in ARTIFACT_RE.findall(texts[room]):
                defined.setdefault(name, room)
    for room, text in texts.items():
        own = set(ASSIGN_RE.findall(text))
        for lineno, line in enumerate(text.splitlines(), 1):
            for word in WORD_RE.findall(line):
                owner = defined.get(word)
                if owner is None or owner == room or word in own:
                    continue
                if owner not in MAY_INCLUDE[room]:
                    errors.append(f"{room}/meson.build:{lineno}: {room}/ uses {owner}/'s {word}")


def check_links(root, build, errors):
    ninja = os.path.join(build, "build.ninja")
    if not os.path.exists(ninja):
        errors.append(f"{ninja}: not found")
        return
    # Which room builds which static library.
    lib_room = {}
    edges = []
    with open(ninja, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("build "):
                continue
            head, _, rest = line[6:].partition(":")
            outputs = head.split()
            if not outputs:
                continue
            rule, *inputs = rest.split("|", 1)[0].split()
            implicit = rest.split("|", 1)[1].split() if "|" in rest else []
            if "LINKER" not in rule and "STATIC" not in rule:
                continue
            out = outputs[0]
            room = room_of(out)
            if "STATIC" in rule and out.endswith(".a") and room:
                lib_room[out] = room
            edges.append((out, room, inputs + implicit))
    for out, room, inputs in edges:
        if room is None:
            continue  # tests/, perf/, fuzz: anything goes
        allowed = MAY_INCLUDE[room] | {room}
        for inp in inputs:
            lr = lib_room.get(inp)
            if lr and lr not in allowed:
                errors.append(f"link: {out} ({room}/) links {inp} ({lr}/)")


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    root = sys.argv[1]
    errors = []
    check_includes(root, errors)
    check_meson(root, errors)
    if len(sys.argv) == 3:
        check_links(root, sys.argv[2], errors)
    for e in errors:
        print(e)
    if errors:
        print(f"layout: {len(errors)} broken arrow(s) (docs/architecture.md)")
        return 1
    print("layout: every include and link follows the arrows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
