# SPDX-License-Identifier: MIT
"""ci/parts.py, which `make test` runs: the time of each part, and the first
failing part stops the run with its status."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARTS = os.path.join(ROOT, "ci", "parts.py")


def run(tmp_path, script, *parts):
    fake = tmp_path / "fake-make"
    fake.write_text("#!/bin/sh\n" + script)
    fake.chmod(0o755)
    return subprocess.run([sys.executable, PARTS, str(fake), *parts], capture_output=True, text=True, timeout=30)


def test_each_part_is_timed(tmp_path):
    r = run(tmp_path, 'echo "ran $2 $3"\n', "unit", "fuzz FUZZ_SECONDS=5")
    assert r.returncode == 0, r.stderr
    assert "ran unit" in r.stdout and "ran fuzz FUZZ_SECONDS=5" in r.stdout
    lines = r.stdout.split("time of each part:")[1].splitlines()
    assert any(l.split()[0] == "unit" and l.rstrip().endswith(" s") for l in lines if l.strip())
    assert any(l.strip().startswith("fuzz FUZZ_SECONDS=5") for l in lines)
    assert any(l.strip().startswith("total") for l in lines)


def test_first_failure_stops_the_run(tmp_path):
    r = run(tmp_path, '[ "$2" = bad ] && exit 3\necho "ran $2"\n', "good", "bad", "never")
    assert r.returncode == 3
    assert "ran good" in r.stdout and "never" not in r.stdout.split("time of each part:")[0]
    assert "bad" in r.stdout and "FAILED" in r.stdout
