#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Sum meson's results over build dirs; print 'N passed, N failed, N skipped'.

Exit 1 if anything failed, or if CI=true and anything was skipped."""
import json
import os
import sys

passed = failed = skipped = 0
for build in sys.argv[1:]:
    path = os.path.join(build, "meson-logs", "testlog.json")
    # build-fuzz (setup-test.sh) runs only suite 'fuzz'; a build dir whose
    # tests never ran has no log, which counts as a failure, not as nothing
    if not os.path.exists(path):
        print(f"no test log: {path}", file=sys.stderr)
        failed += 1
        continue
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)["result"]
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
                print(f"skipped: {build}: {json.loads(line)['name']}", file=sys.stderr)
            else:
                failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
if failed or passed == 0:
    sys.exit(1)
if skipped and os.environ.get("CI") == "true":
    print("CI=true: a suite that can run here was skipped", file=sys.stderr)
    sys.exit(1)
