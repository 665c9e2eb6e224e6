#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Sum meson's results over build dirs; print 'N passed, N failed, N skipped'.

Exit 1 if anything failed, or if CI=true and anything was skipped."""
import glob
import json
import os
import sys

passed = failed = skipped = 0
for build in sys.argv[1:]:
    # every meson test log of the build: testlog.json, and soaklog.json for
    # the soak that setup-test.sh runs apart. build-fuzz runs only suite
    # 'fuzz'; a build dir whose tests never ran has no log, which counts as a
    # failure, not as nothing
    paths = sorted(glob.glob(os.path.join(build, "meson-logs", "*log.json")))
    if not paths:
        print(f"no test log in {build}/meson-logs", file=sys.stderr)
        failed += 1
        continue
    for path in paths:
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
