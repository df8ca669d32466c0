# SPDX-License-Identifier: MIT
"""The QEMU smoke test of `make test`: one real Linux guest (Debian's cloud
kernel under TCG) whose virtio-vsock device is served by hvsim-vhost, talking
to host programs of the emulated Hyper-V host, with Debian's unmodified socat
inside the guest:

  - a 64 MiB stream guest -> host (socat VSOCK-CONNECT:2:5000 to a host
    listener on {wildcard, 00001388-facb-...}), checksummed on both sides;
  - a 64 MiB stream host -> guest (the host connects to {vm id, port 5001},
    the guest's socat VSOCK-LISTEN:5001), checksummed;
  - a refused connection under each refusal profile, both ways: the
    Hyper-V profile answers nothing (the guest's connect to an unregistered
    port times out; a host connect to a guest port nobody listens on times
    out although the guest reset it), the KVM profile resets at once.

Two more tests: 40 host programs connecting to one guest listener at once
(each offered to the backend's gateway and accepted by the guest kernel), and
a killed backend ending only its own VM's streams.

Host and guest take turns through vsock itself (the guest listens on a
barrier port the host connects to), so nothing sleeps to synchronise. The host
side uses hvcat, which talks to the daemon over AF_UNIX: nothing here opens a
kernel AF_VSOCK socket on the host.
"""
import hashlib
import os
import re
import select
import subprocess
import time

import pytest

import qemu

MIB64 = 64 << 20
SCRIPT = r"""
set -e
head -c {size} /dev/urandom > /tmp/out
echo "G2H-SHA $(sha256sum /tmp/out | cut -d' ' -f1)"
socat -u FILE:/tmp/out VSOCK-CONNECT:2:5000
rm /tmp/out
socat -u VSOCK-LISTEN:5001 CREATE:/tmp/in
echo "H2G-SHA $(sha256sum /tmp/in | cut -d' ' -f1)"
rm /tmp/in
set +e
echo "REFUSED-HYPERV $(socat -u /dev/null VSOCK-CONNECT:2:5002 2>&1 | tail -1)"
echo go | socat -u STDIN VSOCK-LISTEN:5003
echo "REFUSED-KVM $(socat -u /dev/null VSOCK-CONNECT:2:5002 2>&1 | tail -1)"
"""


def hvcat(daemon, *args, stdin=None, stdout=None):
    return subprocess.Popen([str(qemu.BIN / "hvcat")] + [str(a) for a in args], env=daemon.env("host"),
                            stdin=stdin or subprocess.DEVNULL, stdout=stdout or subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def connect_when_listening(daemon, guest, vm_id, port, payload_path, deadline_s, expect_reply=None):
    """Connect to the guest's port until its listener is up (the Hyper-V profile
    answers an early connect with nothing, so each try has a short timeout).
    With expect_reply, a try counts only when the guest sent that back."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with open(payload_path, "rb") as src:
            p = subprocess.Popen([str(qemu.BIN / "hvcat"), "-t", "500", f"{vm_id}:{port}"], env=daemon.env("host"),
                                 stdin=src, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = p.communicate(timeout=max(5, deadline - time.monotonic()))
        if p.returncode == 0 and (expect_reply is None or expect_reply in out):
            return
        if p.returncode == 0:
            guest._pump(time.monotonic() + 0.01)
            continue
        assert b"ETIMEDOUT" in err or b"ECONNRESET" in err, err.decode()
        guest._pump(time.monotonic() + 0.01)  # keep the console flowing while we retry
    pytest.fail(f"the guest never listened on port {port}")


def host_connect_refused(daemon, vm_id, port, timeout_ms):
    """A host connect to a guest port nobody listens on: hvcat's exit status,
    its error text and how long the connect took."""
    t0 = time.monotonic()
    p = subprocess.run([str(qemu.BIN / "hvcat"), "-t", str(timeout_ms), f"{vm_id}:{port}"], env=daemon.env("host"),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    return p.returncode, p.stderr.decode(errors="replace"), time.monotonic() - t0


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.mark.qemu
def test_vsock_smoke_64mib_both_ways_and_refusals(hvsimd, qemu_guest, tmp_path):
    hvsimd.ctl("service", "add", "5000", "qemu smoke guest to host")
    received = tmp_path / "g2h.bin"
    with open(received, "wb") as out:
        listener = hvcat(hvsimd, "-l", "wildcard:5000", stdout=out)
    t0 = time.monotonic()
    g = qemu_guest(SCRIPT.format(size=MIB64), vsock=True, name="smoke")
    vm_id = g.vm["id"]

    m = g.wait_for(re.compile(r"G2H-SHA ([0-9a-f]{64})"), timeout=120)
    _, err = listener.communicate(timeout=150)
    assert listener.returncode == 0, err.decode()
    assert received.stat().st_size == MIB64
    assert sha256(received) == m.group(1)
    t1 = time.monotonic()

    payload = tmp_path / "h2g.bin"
    payload.write_bytes(os.urandom(MIB64))
    connect_when_listening(hvsimd, g, vm_id, 5001, payload, 120)
    m = g.wait_for(re.compile(r"H2G-SHA ([0-9a-f]{64})"), timeout=120)
    assert m.group(1) == sha256(payload)
    t2 = time.monotonic()

    # Port 5002 is not registered: under the Hyper-V profile nobody answers.
    m = g.wait_for(re.compile(r"REFUSED-HYPERV ([^\r\n]*)\r?\n"), timeout=60)
    assert "timed out" in m.group(1), m.group(1)
    # Host -> guest port 5009, where nothing listens: the guest resets the
    # request, and a Windows host's caller still only times out.
    rc, err, took = host_connect_refused(hvsimd, vm_id, 5009, 700)
    assert rc != 0 and "ETIMEDOUT" in err, err
    assert took >= 0.7, f"the refusal came after {took:.3f} s, before the connect timeout"
    hvsimd.ctl("set", "refusal_profile", "kvm")
    rc, err, took = host_connect_refused(hvsimd, vm_id, 5009, 20000)
    assert rc != 0 and "ECONNRESET" in err, err
    assert took < 10, f"the KVM profile's reset took {took:.1f} s"
    # The barrier: the guest waits on port 5003 until the host has switched.
    connect_when_listening(hvsimd, g, vm_id, 5003, os.devnull, 60, expect_reply=b"go")
    m = g.wait_for(re.compile(r"REFUSED-KVM ([^\r\n]*)\r?\n"), timeout=60)
    assert "reset" in m.group(1).lower(), m.group(1)
    res = g.wait_exit(timeout=60)
    assert res.code == 0
    qemu.progress(f"vsock smoke: 64 MiB guest->host {MIB64 / (t1 - t0) / 1e6:.1f} MB/s (including boot), "
                  f"host->guest {MIB64 / (t2 - t1) / 1e6:.1f} MB/s")


def read_until(proc, want, deadline_s, guest):
    """Bytes from proc's stdout until want bytes arrived (or EOF); the guest's
    console is kept flowing meanwhile. Returns the count."""
    got, fd = 0, proc.stdout.fileno()
    deadline = time.monotonic() + deadline_s
    while got < want and time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.2)[0]:
            guest._pump(time.monotonic())
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        got += len(chunk)
    return got


@pytest.mark.qemu
def test_backend_crash_breaks_only_its_own_vm(hvsimd, qemu_guest):
    """hvsim-vhost killed mid-stream: the host program streaming with that guest
    sees its connection end, hvsimd keeps serving, and another VM's programs
    connect as before (the daemon never maps guest memory: a backend is just
    one of the VM's processes)."""
    hvsimd.ctl("service", "add", "5000", "crash test stream")
    hvsimd.ctl("service", "add", "5001", "crash test other VM")
    hvsimd.ctl("vm", "add", "other")
    listener = hvcat(hvsimd, "-l", "wildcard:5000", stdout=subprocess.PIPE)
    g = qemu_guest("socat -u /dev/zero VSOCK-CONNECT:2:5000; echo SOCAT-DONE $?", vsock=True, name="crash")
    assert read_until(listener, 1 << 20, 90, g) >= 1 << 20, "the guest's stream never reached the host"

    g.backend.proc.kill()
    g.backend.proc.wait(30)
    g.backend.proc = None  # killed on purpose: the fixture must not count it as a failed stop
    # The host program's stream ends (EOF or reset) instead of hanging.
    read_until(listener, float("inf"), 10, g)
    listener.wait(10)
    assert hvsimd.proc.poll() is None, "hvsimd died with the backend"
    vms = {v["name"]: v for v in hvsimd.ctl("vm", "list", json_out=True)}
    assert vms["crash"]["procs"] == 0, vms["crash"]

    other = hvcat(hvsimd, "-l", "wildcard:5001", stdout=subprocess.PIPE)
    hvsimd.wait_listeners(other)
    p = subprocess.run([str(qemu.BIN / "hvcat"), "parent:5001"], input=b"still here", env=hvsimd.env("other"),
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    out, _ = other.communicate(timeout=30)
    assert out == b"still here"


@pytest.mark.qemu
def test_many_host_connections_to_a_guest_listener_at_once(hvsimd, qemu_guest):
    """40 host programs connect to one guest listener at the same moment (the
    daemon offers each to the backend's gateway, the guest kernel accepts each
    through socat's fork), and each gets its own 64 KiB echoed back intact."""
    n, size = 40, 64 << 10
    g = qemu_guest("echo SERVING; socat VSOCK-LISTEN:5010,fork,backlog=64 EXEC:cat", vsock=True, name="many")
    g.wait_for("SERVING")
    vm_id = g.vm["id"]
    # The listener is up when one echo comes back (the guest answers nothing before).
    probe = os.urandom(16)
    deadline = time.monotonic() + 60
    while True:
        p = subprocess.run([str(qemu.BIN / "hvcat"), "-t", "500", f"{vm_id}:5010"], input=probe,
                           env=hvsimd.env("host"), capture_output=True, timeout=30)
        if p.returncode == 0 and p.stdout == probe:
            break
        assert time.monotonic() < deadline, f"the guest never echoed: {p.stderr.decode()}"
        g._pump(time.monotonic() + 0.01)
    payloads = [os.urandom(size) for _ in range(n)]
    procs = [subprocess.Popen([str(qemu.BIN / "hvcat"), "-t", "10000", f"{vm_id}:5010"], env=hvsimd.env("host"),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(n)]
    bad = []
    for i, (p, data) in enumerate(zip(procs, payloads)):
        out, err = p.communicate(data, timeout=120)
        if p.returncode != 0 or out != data:
            bad.append(f"connection {i}: exit {p.returncode}, {len(out)} of {size} bytes back, {err.decode()!r}")
        g._pump(time.monotonic())
    assert not bad, "\n".join(bad)
