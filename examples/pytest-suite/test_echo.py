# SPDX-License-Identifier: MIT
"""A user's test suite: the Windows echo service (hyperv_echo.py, unchanged)
between the emulated host and a guest, with hvsim's pytest fixtures."""
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
APP = HERE / "hyperv_echo.py"
SERVICE = "00005000-facb-11e6-bd58-64006a7986d3"


def start_server(hvsim_host, hvsim_python, count=1):
    import subprocess
    srv = hvsim_python(APP, "serve", SERVICE, count, partition="host", stdout=subprocess.PIPE, text=True)
    assert srv.stdout.readline().startswith("listening"), "the echo service did not start"
    return srv


def test_guest_reaches_host_service(hvsim_host, hvsim_vm, hvsim_service, hvsim_python):
    vm = hvsim_vm("vm1")
    hvsim_service(SERVICE, "echo")
    srv = start_server(hvsim_host, hvsim_python)
    r = hvsim_python(APP, "send", SERVICE, "hello", partition="vm1", wait=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "HELLO"
    assert srv.wait(10) == 0
    assert srv.stdout.read().split() == ["served", vm["id"]]


def test_unregistered_service_is_refused(hvsim_host, hvsim_vm, hvsim_python):
    hvsim_vm("vm1")
    r = hvsim_python(APP, "send", SERVICE, "hello", partition="vm1", wait=True, text=True)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.strip() == "connect failed: ConnectionRefusedError errno=111 winerror=10061"


@pytest.mark.hvsim_settings(windows_connect_timeout_ms=300)
def test_paused_vm_cannot_connect(hvsim_host, hvsim_vm, hvsim_service, hvsim_python):
    hvsim_vm("vm1")
    hvsim_service(SERVICE, "echo")
    start_server(hvsim_host, hvsim_python)
    hvsim_host.vm_op("vm1", "pause")
    r = hvsim_python(APP, "send", SERVICE, "hello", partition="vm1", wait=True, text=True)
    assert "winerror=10050" in r.stdout  # WSAENETDOWN: a paused VM's process


def test_hvcat_as_a_guest(hvsim_host, hvsim_vm, hvsim_service, hvsim_python, hvsim_run):
    """Any program runs as a partition: here the project's own hvcat."""
    hvcat = hvsim_host.tool("hvcat")
    if any(f"/{kind}/" in str(hvcat) for kind in ("asan", "ubsan", "tsan")):
        # The interposer is a plain library: a sanitizer's runtime must come
        # first in a program, so a sanitizer-built hvcat cannot take it.
        pytest.skip("a sanitizer build's hvcat cannot run under the interposer")
    hvsim_vm("vm1")
    hvsim_service(SERVICE, "echo")
    start_server(hvsim_host, hvsim_python)
    r = hvsim_run([hvsim_host.tool("hvcat"), f"parent:{SERVICE}"], partition="vm1", input=b"ping\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"PING\n"


def test_one_daemon_for_the_session(hvsim_session_host):
    st = hvsim_session_host.status()
    assert "listeners" in st
