# SPDX-License-Identifier: MIT
"""`make bench TARGET=qemu` in its quick form: one guest, one short round of
each figure over vsock (hvsim) and over TCP (QEMU's user network), and the
report it writes. The figures themselves are the benchmark's business
(numbers are met in a benchmark, never in a timed test): this checks that
every one was measured, on both transports, and reported.

Run with: /usr/bin/python3 -m pytest harness/test_bench_qemu.py
"""
import json
import subprocess

import pytest

import qemu

FIGURES = ("h2g_MBps", "g2h_MBps", "rtt_p50_us", "rtt_p99_us")


@pytest.mark.qemu
def test_qemu_bench_quick_reports_both_transports(qemu_image, tmp_path):
    out = tmp_path / "bench"
    r = subprocess.run(["/usr/bin/python3", str(qemu.REPO / "bench" / "run.py"), "--target", "qemu", "--quick",
                        "--bin", str(qemu.BIN), "--vm-dir", str(qemu_image.vmlinuz.parent), "--out", str(out)],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"bench/run.py exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    doc = json.loads((out / "latest.json").read_text())
    assert doc["schema"] == "hvsim-bench-qemu/1" and doc["target"] == "qemu"
    assert set(doc["figures"]) == set(FIGURES)
    for key in FIGURES:
        row = doc["figures"][key]
        for t in ("vsock", "tcp"):
            assert row[t]["median"] > 0, f"{key} {t}: {row[t]}"
            assert len(row[t]["rounds"]) == doc["config"]["rounds"]
        assert row["ratio"] == pytest.approx(row["vsock"]["median"] / row["tcp"]["median"])
    table = (out / "table.txt").read_text()
    assert "vsock (hvsim)" in table and "TCP (user net)" in table


def test_qemu_bench_tool_rejects_bad_arguments():
    tool = str(qemu.BIN / "hvsim-qemu-bench")
    r = subprocess.run([tool, "--vm", "not-a-guid", "--vsock-port", "1", "--tcp-port", "2"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "--vm: expected a VM ID GUID, got 'not-a-guid'" in r.stderr, r.stderr
    r = subprocess.run([tool, "--vm", "00000000-0000-0000-0000-000000000001", "--vsock-port", "1",
                        "--tcp-port", "70000"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--tcp-port: expected 1 to 65535, got '70000'" in r.stderr, r.stderr
