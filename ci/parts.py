#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""parts.py: run the parts of `make test` one after another and say how long
each took (CLOCK_MONOTONIC), so a part that grows shows up before the whole
passes its 10-minute budget. Stops at the first part that fails.

    ci/parts.py MAKE PART [PART ...]     a PART is one make target with its
                                         variables, e.g. "fuzz FUZZ_SECONDS=5"
"""
import shlex
import subprocess
import sys
import time


def main(argv):
    if len(argv) < 3:
        print("usage: ci/parts.py MAKE PART [PART ...]", file=sys.stderr)
        return 2
    make, parts = argv[1], argv[2:]
    times = []
    start = time.monotonic()
    for part in parts:
        t0 = time.monotonic()
        # close_fds=False: a sub-make keeps the jobserver of the make that called us.
        rc = subprocess.call([make, "--no-print-directory"] + shlex.split(part), close_fds=False)
        times.append((part, time.monotonic() - t0, rc))
        if rc != 0:
            break
    print("\nmake test, time of each part:")
    for part, secs, rc in times:
        print(f"  {part:<28} {secs:7.1f} s{'  FAILED' if rc else ''}")
    print(f"  {'total':<28} {time.monotonic() - start:7.1f} s")
    return next((rc for _, _, rc in times if rc), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
