#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""meson's entry to the Python suite (tests/meson.build, suite `python`):
finds a Python 3 that has NumPy, cffi and pytest (Debian's python3-numpy,
python3-cffi, python3-pytest: the one on PATH may be another, such as a
pyenv's), then runs pytest on this directory with the built pomaid and
libpomai.so.

  run.py POMAID LIBPOMAI_SO CC INCLUDE_DIR

Exits 77 (skipped) when no such Python exists, except under CI=true, where
everything that can run must run: there it fails."""
import os
import subprocess
import sys

# Where Debian installs its python3 and the packages scripts/deps.sh adds.
CANDIDATES = (sys.executable, "/usr/bin/python3")
MODULES = "import numpy, cffi, pytest"
EXIT_SKIP = 77


def interpreter():
    for py in CANDIDATES:
        if py and os.path.exists(py) and subprocess.run(
                [py, "-c", MODULES], capture_output=True).returncode == 0:
            return py
    return None


def main():
    pomaid, libpomai, cc, include = sys.argv[1:5]
    here = os.path.dirname(os.path.abspath(__file__))
    py = interpreter()
    if py is None:
        print(f"no Python among {CANDIDATES} has numpy, cffi and pytest "
              "(scripts/deps.sh installs them)")
        return 1 if os.environ.get("CI") == "true" else EXIT_SKIP
    env = dict(os.environ, POMAID=os.path.abspath(pomaid),
               POMAI_LIBRARY=os.path.abspath(libpomai), POMAI_CC=cc,
               POMAI_INCLUDE=os.path.abspath(include),
               PYTHONPATH=os.path.dirname(here), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", here],
                          env=env, cwd=here).returncode


if __name__ == "__main__":
    sys.exit(main())
