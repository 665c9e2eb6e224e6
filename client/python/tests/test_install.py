# SPDX-License-Identifier: MIT
"""`pip install ./client/python` offline, the way docs/python.md says: a
venv that sees Debian's python3-numpy and python3-cffi (--system-site-
packages), Debian's pip and setuptools, no index and no build isolation
(which would download setuptools). The installed package then answers a
pomaid from outside the source tree."""
import os
import shutil
import subprocess
import sys

# pip on a loaded machine: seconds normally, minutes at worst.
PIP_WAIT_S = 300
SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_pip_install_offline(tmp_path, server):
    src = tmp_path / "src"  # a copy: setuptools builds in the tree it is given
    shutil.copytree(SOURCE, src, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", "tests"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(venv)], check=True, timeout=PIP_WAIT_S)
    py = str(venv / "bin" / "python")
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    subprocess.run([py, "-m", "pip", "install", "--no-build-isolation", "--no-index", str(src)],
                   check=True, timeout=PIP_WAIT_S, env=env, cwd=tmp_path)
    probe = ("import pomai, sys; c = pomai.Client(port=int(sys.argv[1])); "
             "c.set('installed', 'yes'); print(pomai.__file__, c.get('installed').decode())")
    out = subprocess.run([py, "-c", probe, str(server.base)], check=True, timeout=PIP_WAIT_S,
                         env=env, cwd=tmp_path, capture_output=True, text=True).stdout.split()
    assert out[0].startswith(str(venv)), f"pomai imported from {out[0]}, not the venv"
    assert out[1] == "yes"
