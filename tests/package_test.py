#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Debian packages, built, installed and started (suite `package`).

  package_test.py SOURCE_ROOT WORK_DIR

1. Builds pomai and libpomai-dev with `dpkg-buildpackage -b -us -uc` in a copy
   of the source tree (WORK_DIR/pomai-VERSION; the .debs land in WORK_DIR),
   with DEB_BUILD_OPTIONS "nocheck parallel=2 noddebs": debian/rules then
   builds only what is installed. Prints how long the build took.
2. Checks each package's file list, and that /etc/pomai/*.conf are conffiles.
3. Installs both into a throw-away root (dpkg --root, maintainer scripts run
   chrootless with DPKG_ROOT set: no container, no chroot) and checks what
   the scripts made: the system user pomai in the root's /etc/passwd and
   /var/lib/pomai owned by it, mode 0750.
4. Verifies the units with systemd-analyze verify --root (the host's own
   units are copied beside them, for the targets they name): a unit error,
   or an ExecStart that is not in the package, fails.
5. Starts the installed pomaid with the packaged /etc/pomai/pomai.conf (its
   ports, shard count and arena given as flags, on free loopback ports; its
   own data directory), stores and reads a key with the installed pomai-cli,
   asks the installed pomaictl for INFO, stops it with SIGTERM (exit 0).
6. Compiles and runs a program against the installed pomai.h and libpomai.a
   through the installed pkg-config file.

Exits 77 (skipped) only where dpkg-buildpackage or debhelper is missing,
never under CI=true. Standard library only.
"""
import os
import random
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

EXIT_SKIP = 77
# The package build on 2 loaded cores takes 1-3 minutes (meson's timeout
# for the suite is larger); every other step, seconds.
BUILD_WAIT_S = 900
STEP_WAIT_S = 120
# pomaid's ready line and exit, as tests/proc.h waits for them.
READY_WAIT_S = 60
EXIT_WAIT_S = 30
# Free loopback ports are picked from the C harness's range (tests/proc.h).
PORT_LO, PORT_SPAN, PORT_TRIES = 20000, 12700, 20
BUILD_OPTIONS = "nocheck parallel=2 noddebs"

POMAI_FILES = ["usr/bin/pomaid", "usr/bin/pomai-control", "usr/bin/pomaictl",
               "usr/bin/pomai-cli", "etc/pomai/pomai.conf", "etc/pomai/pomai-control.conf",
               "lib/systemd/system/pomaid.service", "lib/systemd/system/pomai-control.service",
               "usr/lib/sysusers.d/pomai.conf", "usr/lib/tmpfiles.d/pomai.conf",
               "usr/share/doc/pomai/operations.md",
               "usr/share/bash-completion/completions/pomai-cli",
               "usr/share/bash-completion/completions/pomaictl"]
DEV_FILES = ["usr/include/pomai.h", "usr/include/pomai_memif.h",
             "usr/lib/{multiarch}/libpomai.a", "usr/lib/{multiarch}/libpomai.so",
             "usr/lib/{multiarch}/libpomai.so.0", "usr/lib/{multiarch}/libpomai_memif.a",
             "usr/lib/{multiarch}/pkgconfig/pomai.pc"]
UNITS = ["/lib/systemd/system/pomaid.service", "/lib/systemd/system/pomai-control.service"]

PROGRAM = r"""
#include <pomai.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
	struct pm_client_config cfg;
	pm_client_config_default(&cfg);
	return !(cfg.base_port == PM_CLIENT_BASE_PORT_DEFAULT &&
		 strcmp(pm_client_status_name(PM_CLIENT_E_NAN), "E_NAN") == 0 &&
		 puts("libpomai-dev: ok") >= 0);
}
"""

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def run(argv, wait=STEP_WAIT_S, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=wait, **kw)


# ---------------------------------------------------------------- build

def copy_tree(src, dst):
    """The source tree as git sees it (tracked and new files, not ignored
    ones: no build directories), or all of it less build output."""
    if os.path.isdir(os.path.join(src, ".git")) or os.path.isfile(os.path.join(src, ".git")):
        files = run(["git", "-C", src, "ls-files", "-z", "-co", "--exclude-standard"]).stdout
        for rel in filter(None, files.split("\0")):
            if os.path.lexists(os.path.join(src, rel)):
                os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
                shutil.copy2(os.path.join(src, rel), os.path.join(dst, rel),
                             follow_symlinks=False)
    else:
        shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(
            "build*", "obj-*", ".git", "__pycache__", "*.egg-info"))


def version(src):
    with open(os.path.join(src, "debian", "changelog")) as f:
        return re.match(r"\S+ \(([^)]+)\)", f.readline()).group(1)


def build(src, work):
    ver = version(src)
    tree = os.path.join(work, f"pomai-{ver}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(tree)
    copy_tree(src, tree)
    env = dict(os.environ, DEB_BUILD_OPTIONS=BUILD_OPTIONS)
    t0 = time.monotonic()
    r = run(["dpkg-buildpackage", "-b", "-us", "-uc"], wait=BUILD_WAIT_S, cwd=tree, env=env)
    took = time.monotonic() - t0
    if r.returncode != 0:
        print(r.stdout[-6000:], r.stderr[-6000:])
    print(f"package build: {took:.1f} s wall (DEB_BUILD_OPTIONS=\"{BUILD_OPTIONS}\")")
    check(r.returncode == 0, "dpkg-buildpackage -b -us -uc")
    arch = run(["dpkg-architecture", "-qDEB_HOST_ARCH"]).stdout.strip()
    return [os.path.join(work, f"{p}_{ver}_{arch}.deb") for p in ("pomai", "libpomai-dev")]


# ---------------------------------------------------------------- contents

def contents(deb):
    out = run(["dpkg-deb", "-c", deb]).stdout
    return {line.split()[5].lstrip("./") for line in out.splitlines() if len(line.split()) >= 6}


def check_contents(pomai_deb, dev_deb, multiarch):
    files = contents(pomai_deb)
    for f in POMAI_FILES:
        check(f in files, f"pomai ships /{f}")
    module = f"usr/lib/{multiarch}/pomai/pomaid-dpdk.so"  # loaded for backend = dpdk only
    check(module in files, f"pomai ships /{module}")
    dev = contents(dev_deb)
    for f in DEV_FILES:
        f = f.format(multiarch=multiarch)
        check(f in dev, f"libpomai-dev ships /{f}")
    conff = run(["dpkg-deb", "-f", pomai_deb, "Package"]).stdout  # readable at all
    check(conff.strip() == "pomai", "pomai's control file names it")
    ctl = run(["dpkg-deb", "--info", pomai_deb, "conffiles"]).stdout.split()
    check(sorted(ctl) == ["/etc/pomai/pomai-control.conf", "/etc/pomai/pomai.conf"],
          "/etc/pomai/*.conf are conffiles")


# ---------------------------------------------------------------- install

def install(root, debs):
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log", "etc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    open(os.path.join(root, "var/lib/dpkg/status"), "w").close()
    # chrootless: the maintainer scripts run here with DPKG_ROOT=root, as
    # debhelper writes them (systemd-sysusers --root, systemd-tmpfiles
    # --root); --force-depends: the root has no libc package, the host's
    # libraries serve
    r = run(["dpkg", f"--root={root}", f"--log={root}/var/log/dpkg.log",
             "--force-script-chrootless", "--force-depends", "-i"] + debs)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
    check(r.returncode == 0, "dpkg --root -i pomai libpomai-dev")
    st = run(["dpkg", f"--root={root}", "-s", "pomai"]).stdout
    check("Status: install ok installed" in st, "pomai is installed and configured in the root")
    passwd = open(os.path.join(root, "etc/passwd")).read() if os.path.exists(
        os.path.join(root, "etc/passwd")) else ""
    user = re.search(r"^pomai:x:(\d+):(\d+):[^:]*:/var/lib/pomai:/usr/sbin/nologin$", passwd,
                     re.M)
    check(user is not None, "postinst made the system user pomai (home /var/lib/pomai)")
    data = os.path.join(root, "var/lib/pomai")
    if check(os.path.isdir(data), "postinst made /var/lib/pomai") and user:
        s = os.stat(data)
        check(s.st_uid == int(user.group(1)) and s.st_mode & 0o777 == 0o750,
              "/var/lib/pomai is pomai's, mode 0750")


def verify_units(root):
    tool = shutil.which("systemd-analyze")
    if not check(tool is not None, "systemd-analyze is installed (scripts/deps.sh: systemd)"):
        return
    # the targets and units ours name (network-online.target, ...): the host's
    units = os.path.join(root, "lib/systemd/system")
    for name in os.listdir("/lib/systemd/system"):
        dst = os.path.join(units, name)
        if not os.path.lexists(dst):
            src = os.path.join("/lib/systemd/system", name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
            elif os.path.isfile(src):
                shutil.copy2(src, dst)
    r = run([tool, "verify", f"--root={root}"] + UNITS, cwd=root)
    if r.returncode != 0 or r.stderr.strip():
        print(r.stdout, r.stderr)
    check(r.returncode == 0 and not r.stderr.strip(), "systemd-analyze verify: both units")


# ---------------------------------------------------------------- start

def port_free(kind, port):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_port():
    for _ in range(PORT_TRIES):
        p = PORT_LO + random.randrange(PORT_SPAN)
        if port_free(socket.SOCK_DGRAM, p) and port_free(socket.SOCK_STREAM, p - 1):
            return p
    raise RuntimeError("no free loopback ports")


def await_ready(proc):
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READY_WAIT_S
    out = b""
    while b"pomaid: ready" not in out or not out.split(b"pomaid: ready", 1)[1].count(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(left):
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        out += chunk
    sel.close()
    return out.decode(errors="replace")


def start_installed(root, work):
    conf = os.path.join(root, "etc/pomai/pomai.conf")
    printed = run([os.path.join(root, "usr/bin/pomaid"), "--config", conf,
                   "--print-config"]).stdout
    check(re.search(r"^data_dir = /var/lib/pomai\b", printed, re.M) is not None,
          "the packaged pomai.conf keeps its data in /var/lib/pomai")
    data = os.path.join(work, "data")
    os.makedirs(data, mode=0o700, exist_ok=True)
    for _ in range(PORT_TRIES):
        port = pick_port()
        argv = [os.path.join(root, "usr/bin/pomaid"), "--config", conf, "--data-dir", data,
                "--base-port", str(port), "--tcp-port", str(port - 1), "--shards", "1",
                "--arena-bytes", "64M", "--seeds", "65536"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = await_ready(proc)
        if "pomaid: ready" in out or "Address already in use" not in out:
            break
        proc.kill()
        proc.wait()
    if not check("pomaid: ready" in out, "the installed pomaid starts with the packaged config"):
        print(out)
        proc.kill()
        proc.wait()
        return
    # what it prints from now on is read and dropped, so it never blocks
    drain = threading.Thread(target=lambda: [None for _ in iter(
        lambda: os.read(proc.stdout.fileno(), 4096), b"")], daemon=True)
    drain.start()
    try:
        talk_to(root, port, data)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        check(rc == 0, "the installed pomaid exits 0 on SIGTERM")


def talk_to(root, port, data):
    cli = [os.path.join(root, "usr/bin/pomai-cli"), "--port", str(port)]
    r1 = run(cli + ["set", "packaged", "yes"])
    r2 = run(cli + ["get", "packaged"])
    check(r1.returncode == 0 and r2.returncode == 0 and r2.stdout.strip() == "yes",
          "the installed pomai-cli stores and reads a key")
    ctl = run([os.path.join(root, "usr/bin/pomaictl"), "--socket",
               os.path.join(data, "admin.sock"), "info"])
    check(ctl.returncode == 0 and "keys" in ctl.stdout,
          "the installed pomaictl answers on the admin socket")
    comp = os.path.join(root, "usr/share/bash-completion/completions")
    for cmd, fn in (("pomai-cli", "_pomai_cli"), ("pomaictl", "_pomaictl")):
        r = run(["bash", "-c", f'source "$1" && COMP_WORDS=({cmd} s) COMP_CWORD=1 && {fn} && '
                 f'complete -p {cmd} && echo "${{COMPREPLY[*]}}"', "bash", os.path.join(comp, cmd)])
        check(r.returncode == 0 and "snapshot" in r.stdout,
              f"the installed bash completion of {cmd} loads and completes")


# ---------------------------------------------------------------- libpomai-dev

def compile_against(root, work, multiarch):
    pcdir = os.path.join(root, "usr/lib", multiarch, "pkgconfig")
    env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=root,
               PKG_CONFIG_PATH=pcdir)
    flags = run(["pkg-config", "--static", "--cflags", "--libs", "pomai"], env=env)
    if not check(flags.returncode == 0, "pkg-config finds the installed pomai.pc"):
        print(flags.stderr)
        return
    # -static-libpomai: the archive by name, so the shared one beside it is not taken
    archive = os.path.join(root, "usr/lib", multiarch, "libpomai.a")
    args = [a for a in flags.stdout.split() if a != "-lpomai"]
    src = os.path.join(work, "prog.c")
    with open(src, "w") as f:
        f.write(PROGRAM)
    exe = os.path.join(work, "prog")
    cc = os.environ.get("CC", "cc")
    r = run([cc, src, "-o", exe, archive] + args)
    if r.returncode != 0:
        print(r.stderr)
    check(r.returncode == 0 and run([exe]).stdout.strip() == "libpomai-dev: ok",
          "a program builds against the installed pomai.h and libpomai.a, and runs")


def main():
    src, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    missing = [t for t in ("dpkg-buildpackage", "dh", "dpkg-deb") if not shutil.which(t)]
    if missing:
        print(f"cannot build the package here: {', '.join(missing)} missing "
              "(scripts/deps.sh installs debhelper and devscripts)")
        return 1 if os.environ.get("CI") == "true" else EXIT_SKIP
    debs = build(src, work)
    if failures:
        return 1
    multiarch = run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).stdout.strip()
    check_contents(debs[0], debs[1], multiarch)
    root = os.path.join(work, "root")
    install(root, debs)
    verify_units(root)
    start_installed(root, work)
    compile_against(root, work, multiarch)
    print(f"{len(failures)} failed" if failures else "all package checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
