# SPDX-License-Identifier: MIT
"""Safety: QEMU is only ever given vhost-user-vsock devices, never the
kernel's vhost-vsock (vhost-vsock-pci, vhost-vsock-device, /dev/vhost-vsock),
which would reach this machine's own vsock device, one that belongs to the
machine's infrastructure.

Every QEMU the project starts goes through harness/qemu.py's Guest.start()
(the harness, conformance/run.py --target qemu, bench/qemu_target.py), which
runs check_argv() on the command line before QEMU exists. These tests check
every command line Guest builds, that the check refuses the kernel's device in
each form, that a refused command line starts no process, and that no other
file starts QEMU or names the kernel's device. No QEMU is run here.
"""
import ast
import itertools
import re
import subprocess
from pathlib import Path

import pytest

import qemu

REPO = qemu.REPO
IMG = qemu.Image(Path("/nonexistent/vmlinuz"), Path("/nonexistent/initrd.gz"))
# The kernel's device by the names QEMU gives it, or its character device
# (prose naming the kernel module, as a reference for behaviour, is fine).
KERNEL_VSOCK_RE = re.compile(r"(?<!user-)vhost-vsock-(pci|device|ccw)|/dev/vhost-vsock")
CODE_DIRS = ("harness", "conformance", "bench", "vm-images", "ci", "sim", "examples")
CODE_EXT = {".py", ".sh", ".c", ".h", ""}
# This file and qemu.py name the kernel's device in order to refuse it.
NAMING_ALLOWED = {Path("harness/test_qemu_cmdline.py"), Path("harness/qemu.py")}


def all_guest_argvs(tmp_path):
    """The command line of every kind of guest Guest can build."""
    out = []
    nets = (None, (["4000-cmd:socat STDIO UNIX-CONNECT:/tmp/x"], ["5000-5001"]))
    for vsock, net, resettable in itertools.product((None, tmp_path / "v.sock"), nets, (False, True)):
        g = qemu.Guest(tmp_path, IMG, cmd="echo hi", vsock_socket=vsock, net=net, resettable=resettable,
                       append="hvsim.guest=1")
        out.append(((vsock is not None, net is not None, resettable), g.argv("qemu-system-x86_64")))
    return out


def devices(argv):
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-device"]


def test_every_guest_command_line_has_only_vhost_user_vsock(tmp_path):
    for kind, argv in all_guest_argvs(tmp_path):
        assert qemu.check_argv(argv)
        vsock_devs = [d for d in devices(argv) if "vsock" in d.split(",")[0]]
        if kind[0]:
            assert len(vsock_devs) == 1, (kind, argv)
            assert vsock_devs[0].split(",")[0] == "vhost-user-vsock-pci", (kind, argv)
            assert "chardev=vc" in vsock_devs[0].split(","), (kind, argv)
        else:
            assert vsock_devs == [], (kind, argv)
        for a in argv:
            assert not KERNEL_VSOCK_RE.search(a), (kind, a)


@pytest.mark.parametrize("bad", [
    ["-device", "vhost-vsock-pci,guest-cid=3"],
    ["-device", "vhost-vsock-pci-non-transitional,guest-cid=3"],
    ["-device", "vhost-vsock-device,guest-cid=3"],
    ["-device", "vhost-vsock-ccw,guest-cid=3"],
    ["-device", "driver=vhost-vsock-pci,guest-cid=3"],
    ["-device", "vhost-vsock-pci,vhostfd=5,guest-cid=3"],
    ["-device", "virtio-vsock-pci"],
    ["-global", "vhost-vsock-pci.guest-cid=3"],
    ["-object", "x,path=/dev/vhost-vsock"],
])
def test_check_argv_refuses_the_kernels_vhost_vsock(bad):
    with pytest.raises(qemu.GuestError, match="vhost-vsock|vhost-user-vsock"):
        qemu.check_argv(["qemu-system-x86_64", "-accel", "tcg"] + bad)


def test_a_refused_command_line_starts_no_process(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(qemu, "find_qemu", lambda: ("/usr/bin/qemu-system-x86_64", None))
    monkeypatch.setattr(qemu.subprocess, "Popen", lambda *a, **k: started.append(a) or pytest.fail("QEMU ran"))
    g = qemu.Guest(tmp_path, IMG, cmd="true", extra_args=["-device", "vhost-vsock-pci,guest-cid=3"])
    with pytest.raises(qemu.GuestError, match="vhost-vsock"):
        g.start()
    assert started == []


def code_files():
    for top in CODE_DIRS:
        for p in sorted((REPO / top).rglob("*")):
            if p.is_file() and (p.suffix in CODE_EXT or p.name == "Makefile") and "__pycache__" not in p.parts:
                yield p
    yield REPO / "Makefile"


def test_no_code_names_the_kernels_vsock_device():
    bad = []
    for p in code_files():
        rel = p.relative_to(REPO)
        if rel in NAMING_ALLOWED:
            continue
        try:
            text = p.read_text(errors="replace")
        except OSError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if KERNEL_VSOCK_RE.search(line):
                bad.append(f"{rel}:{n}: {line.strip()}")
    assert not bad, "the kernel's vhost-vsock named outside harness/qemu.py:\n" + "\n".join(bad)


def test_only_qemu_py_starts_qemu():
    """No Python file but harness/qemu.py runs QEMU or builds its command line
    (qemu-system-*, -device): everyone else goes through qemu.Guest, whose
    start() checks the command line."""
    bad = []
    for p in code_files():
        rel = p.relative_to(REPO)
        if p.suffix != ".py" or rel == Path("harness/qemu.py") or rel == Path("harness/test_qemu_cmdline.py"):
            continue
        text = p.read_text(errors="replace")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    (node.value.startswith("qemu-system") or node.value == "-device"):
                bad.append(f"{rel}:{node.lineno}: {node.value!r}")
    assert not bad, "QEMU command lines built outside harness/qemu.py:\n" + "\n".join(bad)


def test_the_documented_command_lines_use_vhost_user_vsock():
    """The command lines shown to users (vm-images/README.md, docs) give QEMU
    no vhost-vsock device either."""
    bad = []
    for p in [REPO / "vm-images" / "README.md", REPO / "README.md"] + sorted((REPO / "docs").rglob("*.md")):
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            if re.search(r"-device\s+(?!vhost-user-vsock|pcie-root-port|virtio-net)\S*vsock", line):
                bad.append(f"{p.relative_to(REPO)}:{n}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_the_check_is_not_run_on_a_copy():
    """Guest.start() checks the very command line it hands to Popen."""
    src = (REPO / "harness" / "qemu.py").read_text()
    start = src[src.index("    def start(self):"):src.index("    def _pump(")]
    assert "argv = self.argv(qemu)" in start and "check_argv(argv)" in start
    assert start.index("check_argv(argv)") < start.index("subprocess.Popen(argv")
    assert subprocess  # imported for the monkeypatch target above
