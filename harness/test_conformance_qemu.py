# SPDX-License-Identifier: MIT
"""The conformance suite against a real Linux kernel, as `make conformance
TARGET=qemu` runs it: one QEMU guest (Debian's cloud kernel under TCG) whose
virtio-vsock device hvsim-vhost serves, the static guest agent inside it and
the libhvsim host agent here. Every case of the column virtio must pass or be
a listed divergence; about 20 s.

Run with: /usr/bin/python3 -m pytest harness/test_conformance_qemu.py
"""
import json
import subprocess

import pytest

import qemu

RUN_TIMEOUT = 400  # run.py's own deadline is 300 s: this bounds run.py itself
MIN_CASES = 80  # the virtio column's cases that apply (89 when this was written)


@pytest.mark.qemu
def test_qemu_target_passes(qemu_image, tmp_path):
    out = tmp_path / "out"
    r = subprocess.run(["/usr/bin/python3", str(qemu.REPO / "conformance" / "run.py"), "--target", "qemu",
                        "--bin", str(qemu.BIN), "--vm-dir", str(qemu_image.vmlinuz.parent), "--out", str(out),
                        "--quiet"], capture_output=True, text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"run.py exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    res = json.loads((out / "results.json").read_text())
    assert res["target"] == "qemu" and res["columns"] == ["virtio"]
    ran = [c for c in res["cases"] if c["result"] in ("pass", "divergence")]
    assert len(ran) >= MIN_CASES, f"{len(ran)} cases ran, expected at least {MIN_CASES}:\n{r.stdout}"
    bad = [f"{c['id']}: {c['message']}" for c in res["cases"] if c["result"] == "fail"]
    assert not bad, "failures:\n" + "\n".join(bad)
    # Every skip says why (not applicable to virtio, or what the target lacks).
    assert all(c["message"] for c in res["cases"] if c["result"] == "skip")
