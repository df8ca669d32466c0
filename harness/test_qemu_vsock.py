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
import shlex
import subprocess
import time

import pytest

import qemu

MIB64 = 64 << 20
SCRIPT = r"""
set -e
head -c {size} /dev/urandom > /tmp/out
echo "G2H-SHA $(sha256sum /tmp/out | cut -d' ' -f1)"
socat -b 65536 -u FILE:/tmp/out VSOCK-CONNECT:2:5000
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
    # What descriptor layouts this kernel used (reference 1.6): printed per kernel.
    g.backend.proc.wait(30)  # it ends with QEMU and logs its totals
    c = g.backend.counters()
    qemu.progress(f"kernel {g.kernel}: {qemu.layouts_text(c)}")
    assert c, f"hvsim-vhost printed no counters on SIGUSR1 (log {g.backend.log_path})"
    assert c["rx"]["single"] + c["rx"]["split"] + c["rx"]["other"] > 0
    assert sum(c["tx_rw"].values()) > 0


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


# ---- closes and retried connects, as the guest kernel's virtio transport sees them -----------

def vsock_try(*steps):
    """The guest command: vm-images/vsock-try, one step per argument (it needs hvsim.guest=1)."""
    return "vsock-try " + " ".join(shlex.quote(s) for s in steps)


def try_lines(text):
    return [line for line in text.splitlines() if line.startswith("TRY ") or line.isupper()]


def host_vsock(daemon, *args, data=None):
    """hvcat as a Linux program of the host (--vsock): stdin from data (bytes) or a pipe."""
    p = subprocess.Popen([str(qemu.BIN / "hvcat"), "--vsock"] + [str(a) for a in args], env=daemon.env("host"),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if data is not None:
        p.stdin.write(data)
        p.stdin.close()
        p.stdin = None  # communicate() must not flush it
    return p


@pytest.mark.qemu
def test_host_close_is_a_full_close_and_the_port_is_reusable(hvsimd, qemu_guest):
    """A host program that closes (hvcat -c): the guest reads its data, then
    EOF, and its next send fails with EPIPE (SHUTDOWN with both flags, not a
    half-close); the guest's port is free again at once, and a connect from
    it that first times out (nobody listens yet; the Hyper-V profile answers
    nothing) and is retried on the same socket succeeds: no stale request or
    RST of the first attempt survives."""
    hvsimd.ctl("service", "add", "5100", "full close test")
    first = host_vsock(hvsimd, "-l", "-c", "5100", data=b"hello")
    hvsimd.wait_listeners(first)
    g = qemu_guest(vsock_try("bind:7000", "connect:2:5100", "recveof", "send:late", "close", "say:AGAIN",
                             "bind:7000", "timeout:1000", "retry:2:5100:30", "recveof", "close"),
                   vsock=True, name="hostclose", append="hvsim.guest=1")
    g.wait_for("AGAIN", timeout=120)
    _, err = first.communicate(timeout=30)
    assert first.returncode == 0, err.decode()
    second = host_vsock(hvsimd, "-l", "-c", "5100", data=b"again")
    res = g.wait_exit(timeout=120)
    _, err = second.communicate(timeout=30)
    assert second.returncode == 0, err.decode()
    lines = try_lines(res.output)
    qemu.progress(f"kernel {g.kernel}: {lines}")
    assert lines[:5] == ["TRY bind:7000 ok", "TRY connect:2:5100 ok", "TRY recveof data hello", "TRY recveof eof",
                         "TRY send EPIPE"], res.output
    assert lines[6:9] == ["AGAIN", "TRY bind:7000 ok", "TRY timeout:1000 ok"], res.output
    assert re.fullmatch(r"TRY retry:2:5100:30 ok tries=\d+", lines[9]), res.output
    assert lines[10:12] == ["TRY recveof data again", "TRY recveof eof"], res.output


@pytest.mark.qemu
def test_guest_close_is_a_full_close_for_the_host(hvsimd, qemu_guest):
    """The guest program closes: the host program (a Linux program of the
    host, hvcat --vsock) reads its data and EOF, and its sends then fail with
    EPIPE, as with a KVM host's vhost-vsock."""
    hvsimd.ctl("service", "add", "5101", "guest close test")
    host = host_vsock(hvsimd, "-l", "5101")
    hvsimd.wait_listeners(host)
    g = qemu_guest(vsock_try("connect:2:5101", "send:hi", "close", "say:CLOSED"), vsock=True, name="guestclose",
                   append="hvsim.guest=1")
    g.wait_for("CLOSED", timeout=120)
    assert read_until(host, 2, 30, g) == 2
    # The backend closes the host socket right after passing on the guest's
    # SHUTDOWN: keep sending until a send fails (bounded), never sleeping to wait.
    deadline = time.monotonic() + 20
    while host.poll() is None and time.monotonic() < deadline:
        try:
            host.stdin.write(b"x")
            host.stdin.flush()
        except BrokenPipeError:
            break
        try:
            host.wait(0.1)
        except subprocess.TimeoutExpired:
            g._pump(time.monotonic())
    err = host.stderr.read().decode()
    host.wait(10)
    assert host.returncode != 0 and "EPIPE" in err, f"the host's send after the guest's close: {err!r}"
    res = g.wait_exit(timeout=60)
    assert try_lines(res.output)[:3] == ["TRY connect:2:5101 ok", "TRY send ok", "TRY close ok"], res.output


@pytest.mark.qemu
def test_shut_rd_reaches_the_other_side_both_ways(hvsimd, qemu_guest):
    """shutdown(SHUT_RD) is passed on as virtio passes it (SHUTDOWN with the
    RCV flag, vsock-virtio.md 10.2), both ways through hvsim-vhost:
      - the guest shuts its reading side: the host program's sends fail with
        EPIPE while the guest still holds the connection, and the guest's own
        sends still arrive;
      - the host program shuts its reading side (hvcat --shut-rd): the guest's
        next send fails with EPIPE (before, the bytes went out and the backend
        reset the connection), and the host's data still reaches the guest."""
    hvsimd.ctl("service", "add", "5102", "guest SHUT_RD test")
    hvsimd.ctl("service", "add", "5103", "host SHUT_RD test")
    guest_shut = host_vsock(hvsimd, "-l", "5102")
    host_shut = host_vsock(hvsimd, "-l", "--shut-rd", "5103")
    hvsimd.wait_listeners(guest_shut)
    hvsimd.wait_listeners(host_shut)
    host_shut.stdin.write(b"go")
    host_shut.stdin.flush()
    g = qemu_guest(vsock_try("connect:2:5102", "shut:rd", "send:after", "say:GUESTSHUT", "listen:5104", "accept",
                             "close", "connect:2:5103", "recv", "send:late", "close", "say:DONE"),
                   vsock=True, name="shutrd", append="hvsim.guest=1")
    g.wait_for("GUESTSHUT", timeout=120)
    assert read_until(guest_shut, 5, 30, g) == 5
    # The guest still holds the connection (it waits in accept): the first
    # send after the SHUTDOWN(RCV) reached the backend fails (bounded loop).
    deadline = time.monotonic() + 20
    while guest_shut.poll() is None and time.monotonic() < deadline:
        try:
            guest_shut.stdin.write(b"x")
            guest_shut.stdin.flush()
        except BrokenPipeError:
            break
        try:
            guest_shut.wait(0.1)
        except subprocess.TimeoutExpired:
            g._pump(time.monotonic())
    assert guest_shut.poll() is not None, "the host program's sends kept succeeding after the guest's SHUT_RD"
    err = guest_shut.stderr.read().decode()
    assert guest_shut.returncode != 0 and "EPIPE" in err, f"the host's send after the guest's SHUT_RD: {err!r}"
    connect_when_listening(hvsimd, g, g.vm["id"], 5104, os.devnull, 60)
    g.wait_for("DONE", timeout=120)
    host_shut.stdin.close()
    host_shut.stdin = None
    host_shut.communicate(timeout=30)
    res = g.wait_exit(timeout=60)
    lines = try_lines(res.output)
    qemu.progress(f"kernel {g.kernel}: {lines}")
    assert lines[:4] == ["TRY connect:2:5102 ok", "TRY shut:rd ok", "TRY send ok", "GUESTSHUT"], res.output
    assert lines[7:12] == ["TRY connect:2:5103 ok", "TRY recv data go", "TRY send EPIPE", "TRY close ok", "DONE"], \
        res.output


@pytest.mark.qemu
def test_transport_reset_breaks_connections_and_new_ones_work(hvsimd, qemu_guest):
    """Guest.transport_reset(): what a guest sees of a snapshot restore or a
    migration, as near as QEMU allows with vhost-user-vsock (the device is
    unplugged and plugged back; QEMU refuses to migrate or snapshot it, see
    docs/reference/qemu-guests.md 7). The guest's open connection breaks as
    the kernel breaks it, the host program's stream ends, the guest reads its
    CID again, and a new connection works."""
    hvsimd.ctl("service", "add", "5300", "reset test, before")
    hvsimd.ctl("service", "add", "5301", "reset test, after")
    before = host_vsock(hvsimd, "-l", "5300")
    after = host_vsock(hvsimd, "-l", "-c", "5301", data=b"after")
    hvsimd.wait_listeners(before, count=2)
    script = (vsock_try("connect:2:5300", "say:CONNECTED", "recv", "send:x") + "\n"
              "until [ \"$(vsock-cid)\" != 1 ]; do usleep 50000; done\n"
              "echo \"CID-BACK $(vsock-cid)\"\n" + vsock_try("connect:2:5301", "recveof"))
    g = qemu_guest(script, vsock=True, name="treset", append="hvsim.guest=1", resettable=True)
    g.wait_for("CONNECTED", timeout=120)
    g.transport_reset()
    res = g.wait_exit(timeout=120)
    lines = try_lines(res.output)
    qemu.progress(f"kernel {g.kernel}: after the transport reset: {lines}")
    broke = lines[2]
    assert broke in ("TRY recv ENOTCONN", "TRY recv ECONNRESET"), res.output
    assert lines[3] in ("TRY send ENOTCONN", "TRY send ECONNRESET", "TRY send EPIPE"), res.output
    assert f"CID-BACK {g.vm['cid']}" in res.output.splitlines(), res.output
    assert lines[-3:] == ["TRY connect:2:5301 ok", "TRY recveof data after", "TRY recveof eof"], res.output
    # The host side of the broken connection ended too (EOF or reset).
    before.stdin.close()
    before.wait(30)
    _, err = after.communicate(timeout=30)
    assert after.returncode == 0, err.decode()
