# SPDX-License-Identifier: MIT
"""pomai/_ffi.py's copy of pomai.h against the header itself: a C program
compiled against client/pomai.h prints the size of every struct the copy
declares, the offset of each of its fields and the value of every enum
constant, and each must equal what cffi computed from the copy. A field
added to a struct in pomai.h changes its size and fails here until
_ffi.py follows. meson passes the compiler (POMAI_CC) and the header's
directory (POMAI_INCLUDE)."""
import os
import subprocess

import pytest

from pomai._ffi import ffi

# How long compiling and running the probe may take on a loaded machine.
PROBE_WAIT_S = 120


def _probe_source():
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "pomai.h"',
             'int main(void)', '{']
    expect = {}
    for name in ffi.list_types()[1]:  # struct/union names
        if name == "pm_client":
            continue  # opaque
        t = ffi.typeof(f"struct {name}")
        lines.append(f'\tprintf("sizeof {name} %zu\\n", sizeof(struct {name}));')
        expect[f"sizeof {name}"] = ffi.sizeof(t)
        for field, _ in t.fields:
            lines.append(f'\tprintf("offsetof {name}.{field} %zu\\n", '
                         f'offsetof(struct {name}, {field}));')
            expect[f"offsetof {name}.{field}"] = ffi.offsetof(t, field)
    for ename in ffi.list_types()[2]:  # enums
        for value, const in ffi.typeof(f"enum {ename}").elements.items():
            lines.append(f'\tprintf("enum {const} %lld\\n", (long long){const});')
            expect[f"enum {const}"] = value
    lines += ['\treturn 0;', '}']
    return "\n".join(lines) + "\n", expect


def test_declarations_match_pomai_h(tmp_path):
    cc, inc = os.environ.get("POMAI_CC"), os.environ.get("POMAI_INCLUDE")
    if not cc or not inc:
        pytest.fail("POMAI_CC and POMAI_INCLUDE must be set (meson test sets them)")
    src, expect = _probe_source()
    (tmp_path / "probe.c").write_text(src)
    exe = str(tmp_path / "probe")
    subprocess.run([cc, "-std=gnu17", "-I", inc, "-o", exe, str(tmp_path / "probe.c")],
                   check=True, timeout=PROBE_WAIT_S)
    out = subprocess.run([exe], check=True, capture_output=True, text=True,
                         timeout=PROBE_WAIT_S).stdout
    got = dict(line.rsplit(" ", 1) for line in out.splitlines())
    wrong = {k: (v, int(got[k])) for k, v in expect.items() if int(got[k]) != v}
    assert not wrong, f"_ffi.py disagrees with pomai.h (ours, header's): {wrong}"
    assert len(expect) > 100  # every struct and enum was probed
