# SPDX-License-Identifier: MIT
"""The Python package (sim/python/hvsim): Windows CPython's AF_HYPERV code
run unchanged on the simulator (python3 -m hvsim run), its error table
against errmap.h, selectors/asyncio/timeouts, and the refusal outside the
interposer. No test here opens a kernel AF_VSOCK or AF_HYPERV socket: the
programs run under hvsim-run (seccomp, the interposer), and the in-process
refusal tests stub socket creation so that a regression fails, never reaches
the kernel."""
import errno
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "sim" / "python"))
import hvsim  # noqa: E402
from hvsim import compat, errors  # noqa: E402

APP = REPO / "examples" / "pytest-suite" / "hyperv_echo.py"
ASYNC_APP = REPO / "harness" / "data" / "win_async.py"
SERVICE = "0000c0d1-facb-11e6-bd58-64006a7986d3"


def test_error_table_is_errmap_h():
    text = (REPO / "sim" / "include" / "hvsim" / "errmap.h").read_text()
    body = re.sub(r"\\\n", " ", text[text.index("#define HVSIM_ERRNO_MAP"):])
    rows = []
    for name, code, wname, msg in re.findall(r'XX\((\w+),\s*\w+,\s*(\d+),\s*(\w*),\s*((?:"[^"]*"\s*)+)\)', body):
        rows.append((name, int(code), wname, "".join(re.findall(r'"([^"]*)"', msg))))
    assert rows and tuple(rows) == errors.ERRNO_MAP


@pytest.mark.parametrize("name,wsa,cls,win_errno", [
    ("ECONNREFUSED", 10061, ConnectionRefusedError, 10061),
    ("ETIMEDOUT", 10060, TimeoutError, 10060),
    ("ECONNRESET", 10054, ConnectionResetError, 10054),
    ("ESHUTDOWN", 10058, BrokenPipeError, 10058),
    ("EACCES", 10013, PermissionError, 13),
    ("EINVAL", 10022, OSError, 22),
    ("EADDRNOTAVAIL", 10049, OSError, 10049),
    ("ENETUNREACH", 10051, OSError, 10051),
    ("ENETDOWN", 10050, OSError, 10050),
    ("EAGAIN", 10035, BlockingIOError, 10035),
])
def test_exceptions_as_windows_cpython_raises_them(name, wsa, cls, win_errno):
    e = errors.to_exception(getattr(errno, name))
    assert type(e) is cls and e.winerror == wsa and e.errno == getattr(errno, name)
    assert errors.windows_errno(wsa) == win_errno
    # The class Windows picks agrees with the one this platform picks for the errno.
    assert type(OSError(getattr(errno, name), "x")) is cls


def test_error_table_command():
    r = subprocess.run([sys.executable, "-m", "hvsim", "errors"], capture_output=True, text=True,
                       env={"PYTHONPATH": str(REPO / "sim" / "python")})
    assert r.returncode == 0, r.stderr
    assert re.search(r"ECONNREFUSED\s+111\s+WSAECONNREFUSED\s+10061\s+10061\s+ConnectionRefusedError", r.stdout)


def test_addresses_pack_as_sockaddr_hv():
    raw = compat.pack_address((compat.HV_GUID_PARENT, "00001388-facb-11e6-bd58-64006a7986d3"))
    assert len(raw) == 36 and raw[:4] == b"\x22\x00\x00\x00"
    assert raw[4:8] == bytes.fromhex("da7c2ea4")  # Data1 little-endian
    assert compat.unpack_address(raw) == ("a42e7cda-d03f-480c-9cc2-a4de20abb878",
                                          "00001388-facb-11e6-bd58-64006a7986d3")
    with pytest.raises(ValueError):
        compat.pack_address(("{a42e7cda-d03f-480c-9cc2-a4de20abb878}", compat.HV_GUID_ZERO))
    with pytest.raises(TypeError):
        compat.pack_address("parent")


@pytest.mark.parametrize("family", [compat.AF_HYPERV, getattr(socket, "AF_VSOCK", 40)])
def test_refused_outside_the_interposer(monkeypatch, family):
    """Not under hvsim-run: no socket is made; the kernel is never asked.
    socket.socket's constructor is stubbed, so a regression fails loudly."""
    def kernel(*a, **kw):
        raise AssertionError("compat.socket reached the kernel's socket()")
    monkeypatch.setattr(socket.socket, "__init__", kernel)
    assert not compat.interposed()
    with pytest.raises(compat.NotInterposed) as ei:
        compat.socket(family, socket.SOCK_STREAM, 0)
    assert ei.value.errno == errno.EAFNOSUPPORT and ei.value.winerror == 10047
    with pytest.raises(compat.NotInterposed):
        compat.install(module=type(sys)("fake_socket"))


def test_windows_module_runs_unchanged(hvsim_host, hvsim_python):
    """The acceptance case: a host listener on HV_GUID_WILDCARD, a Windows
    guest dialing HV_GUID_PARENT with string addresses and an HVSOCKET option,
    and a refused connection's exception, from a module written for Windows."""
    vm = hvsim_host.vm("vm1")
    hvsim_host.service(SERVICE, "compat test")
    srv = hvsim_python(APP, "serve", SERVICE, 2, stdout=subprocess.PIPE, text=True)
    assert srv.stdout.readline().strip() == f"listening {SERVICE}"
    r = hvsim_python(APP, "send", SERVICE, "from a windows guest", partition="vm1", wait=True, text=True)
    assert (r.returncode, r.stdout.strip()) == (0, "FROM A WINDOWS GUEST"), r.stderr
    # The same module under hvsim-run itself (the launcher sees the interposer and only prepares socket).
    r = hvsim_host.run([sys.executable, "-m", "hvsim", "run", str(APP), "send", SERVICE, "again"], partition="vm1",
                       text=True)
    assert (r.returncode, r.stdout.strip()) == (0, "AGAIN"), r.stderr
    assert srv.wait(10) == 0
    assert srv.stdout.read().split() == ["served", vm["id"], "served", vm["id"]]
    r = hvsim_python(APP, "send", "0000c0d2-facb-11e6-bd58-64006a7986d3", "x", partition="vm1", wait=True, text=True)
    assert (r.returncode, r.stdout.strip()) == (3, "connect failed: ConnectionRefusedError errno=111 winerror=10061")


def test_selectors_asyncio_and_timeouts(hvsim_host, hvsim_python):
    hvsim_host.vm("vm1")
    hvsim_host.service(SERVICE, "compat test")
    srv = hvsim_python(ASYNC_APP, "serve", SERVICE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert srv.stdout.readline().strip() == "listening"
    r = hvsim_python(ASYNC_APP, "dial", SERVICE, partition="vm1", wait=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["selectors pending 10035", "selectors so_error ECONNREFUSED", "timeout-refused 10061"]
    assert lines[3] == "bad-address connect(): AF_HYPERV address vm_id is not a valid UUID string"
    assert lines[4] == "bad-type connect(): AF_HYPERV address must be a tuple (vm_id, service_id)"
    # The server's peername: the guest's VM ID and its connecting socket's own random service ID.
    assert re.fullmatch(r"asyncio hello\|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", lines[5])
    assert lines[6] == "asyncio-refused ConnectionRefusedError True"
    out, err = srv.communicate(timeout=10)
    assert srv.returncode == 0 and out.strip() == "served", err


def test_launcher_without_the_daemon_fails_closed(tmp_path):
    """No daemon: socket() is WSAENETDOWN, never the machine's own sockets."""
    prog = tmp_path / "p.py"
    prog.write_text("import socket\ntry:\n    socket.socket(socket.AF_HYPERV, socket.SOCK_STREAM, 1)\n"
                    "except OSError as e:\n    print(type(e).__name__, e.winerror)\n")
    env = {"PYTHONPATH": str(REPO / "sim" / "python"), "HVSIM_BIN": str(hvsim.find_bin() or "")}
    r = subprocess.run([sys.executable, "-m", "hvsim", "run", "--dir", str(tmp_path / "none"), str(prog)],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.stdout.strip() == "OSError 10050", r.stdout + r.stderr


@pytest.mark.qemu
def test_plugin_boots_a_qemu_guest_on_its_host(hvsim_host, hvsim_qemu_guest):
    """hvsim_qemu_guest: a real guest kernel whose vsock device hvsim-vhost
    serves as a VM of the test's hvsim_host."""
    g = hvsim_qemu_guest(cmd="echo cid=$(vsock-cid)", vsock=True, name="pyguest")
    res = g.wait_exit()
    assert res.code == 0 and f"cid={g.vm['cid']}" in res.output.splitlines()
    assert [v["name"] for v in hvsim_host.ctl("vm", "list", json_out=True)] == ["pyguest"]


def test_host_stop_ends_the_program_hvsim_run_started():
    """Host.spawn goes through hvsim-run, whose supervisor runs the program as its
    child: stop() must end that child too, not only hvsim-run (test suites left
    servers running after their daemon was gone)."""
    import os
    import subprocess
    import time
    from pathlib import Path
    bin_dir = Path(os.environ.get("HVSIM_BIN", Path(__file__).resolve().parent.parent / "build" / "bin"))
    h = hvsim.Host(bin_dir=str(bin_dir))
    with h:
        p = h.spawn(["/bin/sh", "-c", "echo $$; exec sleep 60"], stdout=subprocess.PIPE, text=True)
        child = int(p.stdout.readline())
        assert child != p.pid  # the program is hvsim-run's child, not hvsim-run itself
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        st = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if st == "Z":  # a zombie of its reaper is gone for good
            return
        time.sleep(0.05)
    raise AssertionError(f"the program (pid {child}) outlived Host.stop()")
