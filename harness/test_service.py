# SPDX-License-Identifier: MIT
"""hvsimd as a service (issue 17): systemd readiness through NOTIFY_SOCKET
(a path, or an abstract name written with '@'), tested with a socket this test
listens on, beside --ready-fd; the installed unit files of a system and a user
instance pass `systemd-analyze verify` without a warning.

Run with: /usr/bin/python3 -m pytest harness/test_service.py (HVSIM_BIN: the binaries).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from test_tools import BIN, REPO, TIMEOUT, clean_env, tool

NOTIFY_MAX = 4096


def notify_listener(abstract):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    d = tempfile.mkdtemp(prefix="hvsim-n-", dir="/tmp")
    if abstract:
        name = f"hvsim-test-{uuid.uuid4().hex}"
        s.bind("\0" + name)
        return s, "@" + name, d
    path = os.path.join(d, "notify")
    s.bind(path)
    return s, path, d


def messages(data):
    return dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_notify_socket_ready_and_stopping(abstract):
    sock, name, d = notify_listener(abstract)
    run = os.path.join(d, "run")
    env = dict(clean_env(), NOTIFY_SOCKET=name)
    p = subprocess.Popen([tool("hvsimd"), "--dir", run, "--state-dir", ""], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        ready = messages(sock.recv(NOTIFY_MAX))
        assert ready["READY"] == "1" and ready["MAINPID"] == str(p.pid)
        assert ready["STATUS"] == f"serving {run}"
        # Ready means ready: the control sockets answer now, without a retry.
        r = subprocess.run([tool("hvsimctl"), "--dir", run, "status"], capture_output=True, text=True,
                           env=clean_env(), timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        p.send_signal(signal.SIGTERM)
        assert messages(sock.recv(NOTIFY_MAX)) == {"STOPPING": "1"}
        assert p.wait(TIMEOUT) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        sock.close()
        shutil.rmtree(d, ignore_errors=True)


def test_notify_socket_beside_ready_fd():
    sock, name, d = notify_listener(False)
    run = os.path.join(d, "run")
    r_fd, w_fd = os.pipe()
    p = subprocess.Popen([tool("hvsimd"), "--dir", run, "--state-dir", "", "--ready-fd", str(w_fd)],
                         env=dict(clean_env(), NOTIFY_SOCKET=name), pass_fds=(w_fd,), stderr=subprocess.PIPE)
    os.close(w_fd)
    try:
        with os.fdopen(r_fd, "rb") as f:
            assert f.read() == b"READY=1\n"
        assert messages(sock.recv(NOTIFY_MAX))["READY"] == "1"
    finally:
        p.terminate()
        assert p.wait(TIMEOUT) == 0
        sock.close()
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("value", ["vsock:2:9999", "relative/path", "@" + "x" * 200])
def test_notify_socket_unusable_is_logged_not_fatal(value, tmp_path):
    # systemd's vsock: form is refused before any socket is made: hvsimd never
    # opens the machine's vsock.
    run = tempfile.mkdtemp(prefix="hvsim-n-", dir="/tmp")
    p = subprocess.Popen([tool("hvsimd"), "--dir", run, "--state-dir", ""], env=dict(clean_env(), NOTIFY_SOCKET=value),
                         stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(300):
            if os.path.exists(os.path.join(run, "admin.sock")):
                break
            if p.poll() is not None:
                break
            time.sleep(0.01)
        assert p.poll() is None, p.stderr.read()
        p.terminate()
        assert p.wait(TIMEOUT) == 0
        err = p.stderr.read()
        assert f"NOTIFY_SOCKET '{value}'" in err, err
    finally:
        if p.poll() is None:
            p.kill()
        shutil.rmtree(run, ignore_errors=True)


@pytest.fixture(scope="module")
def prefix():
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: sh ci/deps.sh systemd (make test-deps)")
    root = Path(tempfile.mkdtemp(prefix="hvsim-sd-", dir="/tmp"))
    r = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "install", f"PREFIX={root}", f"B={BIN.parent}"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("instance", ["system", "user"])
def test_units_verify(prefix, instance, tmp_path):
    unit = prefix / "lib/systemd" / instance / "hvsimd.service"
    text = unit.read_text()
    assert "Type=notify" in text and f"ExecStart={prefix}/bin/hvsimd " in text
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    env = dict(os.environ, MANPATH=str(prefix / "share/man"), XDG_RUNTIME_DIR=str(xdg), SYSTEMD_LOG_LEVEL="notice")
    argv = ["systemd-analyze"] + (["--user"] if instance == "user" else []) + ["verify", str(unit)]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


def test_verify_catches_a_bad_unit(prefix, tmp_path):
    bad = tmp_path / "hvsimd.service"
    bad.write_text((prefix / "lib/systemd/system/hvsimd.service").read_text().replace("Type=notify", "Type=notifyy"))
    r = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True, text=True,
                       env=dict(os.environ, MANPATH=str(prefix / "share/man")), timeout=120)
    assert "notifyy" in r.stdout + r.stderr
