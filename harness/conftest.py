# SPDX-License-Identifier: MIT
"""Shared fixtures of the pytest harness.

  hvsimd      the hvsim package's hvsim_host fixture (sim/python/hvsim,
              hvsim.pytest_plugin, the one users load): one hvsimd in a fresh
              short folder (no persisted state), started with --ready-fd (read
              to EOF, no sleeps); SIGTERM at teardown, and the test fails if it
              then exits non-zero. Every fixture of the plugin (hvsim_vm,
              hvsim_service, hvsim_run, hvsim_python, ...) is available here.
  qemu_image  the guest image (HVSIM_VM_DIR, default build/vm); skips when it
              is not built, or fails if HVSIM_REQUIRE_QEMU=1.
  qemu_guest  boot(cmd=..., vsock=False) -> a started qemu.Guest; with vsock=True
              it also starts hvsimd, adds a VM and starts build/bin/hvsim-vhost
              for it (skips if that is not built). Everything is torn down at the
              end, failed test or not.

Marker: `qemu` for every test that boots a guest (`-m qemu`, `-m "not qemu"`).
On a failed test the last 100 lines of each guest console, QEMU, backend and
daemon log are attached to the report.
"""
import os
import shutil
import tempfile
from pathlib import Path

import sys

import pytest

import qemu

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sim" / "python"))
pytest_plugins = ["hvsim.pytest_plugin"]


_config = None


def pytest_configure(config):
    global _config
    _config = config
    config.addinivalue_line("markers", "qemu: boots a QEMU guest (needs the image: make vm-image; slow under TCG)")
    config.addinivalue_line("markers", "slow: many QEMU boots; not in the smoke subset (-m 'qemu and not slow')")
    qemu.set_progress(_live_progress)


def _live_progress(msg):
    """Progress of long steps, shown even while pytest captures output."""
    capman = _config.pluginmanager.getplugin("capturemanager") if _config else None
    tr = _config.pluginmanager.getplugin("terminalreporter") if _config else None
    if capman is None or tr is None:
        qemu._stderr_progress(msg)
        return
    with capman.global_and_fixture_disabled():
        tr.write_line(f"[qemu] {msg}")


# ---- logs attached to failures -----------------------------------------------------------

def _attach_log(request, title, path):
    """Show the last 100 lines of path under title if this test fails."""
    logs = getattr(request.node, "_hvsim_logs", None)
    if logs is None:
        logs = request.node._hvsim_logs = []
    logs.append((title, Path(path)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for title, path in getattr(item, "_hvsim_logs", ()):
            report.sections.append((f"{title} ({path}, last 100 lines)", qemu.tail(path, 100)))


# ---- hvsimd -------------------------------------------------------------------------------

def _bin(name):
    path = qemu.BIN / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: build it first (make all), or point HVSIM_BIN at the binaries")
    return str(path)


def _short_tmpdir(tag):
    # Unix socket paths are at most 107 bytes; pytest's tmp_path can be longer.
    return tempfile.mkdtemp(prefix=f"hvsim-{tag}-", dir="/tmp")


class HvsimDaemon(qemu.Daemon):
    """qemu.Daemon, with a missing binary failing the test with a hint."""

    def __init__(self, run_dir):
        super().__init__(run_dir, _bin("hvsimd"))
        _bin("hvsimctl")


@pytest.fixture
def hvsimd(hvsim_host):
    """The plugin's hvsim_host: an hvsim.Host, which has qemu.Daemon's API
    (dir, log_path, proc, children, env, ctl, wait_listeners)."""
    return hvsim_host


# ---- QEMU guests -------------------------------------------------------------------------

def _unavailable(why):
    if os.environ.get("HVSIM_REQUIRE_QEMU") == "1":
        pytest.fail(why + " (HVSIM_REQUIRE_QEMU=1)")
    pytest.skip(why)


@pytest.fixture(scope="session")
def qemu_image():
    img, why = qemu.find_image()
    if img is None:
        _unavailable(why)
    _, why = qemu.find_qemu()
    if why:
        _unavailable(why)
    return img


@pytest.fixture
def qemu_guest(request, qemu_image, tmp_path):
    """boot(cmd=None, vsock=False, name=None, **guest_kwargs) -> started qemu.Guest.

    vsock=True: the guest gets a vhost-user-vsock-pci device served by
    build/bin/hvsim-vhost for a VM named name added to hvsimd: the `hvsimd`
    fixture's daemon if the test asks for it (ask for it before qemu_guest),
    else one of this fixture's own (vm_args go to its `vm add`, e.g.
    --transport virtio). guest.vm is the VM's hvsimctl JSON, guest.backend
    the qemu.Backend."""
    guests, backends = [], []
    sock_dirs = []
    own = []  # a daemon of our own when the test did not ask for `hvsimd`

    def _daemon():
        if "hvsimd" in request.fixturenames:  # set up before us, so torn down after us
            return request.getfixturevalue("hvsimd")
        if not own:
            d = HvsimDaemon(_short_tmpdir("d"))
            _attach_log(request, "hvsimd log", d.log_path)
            own.append(d)
            d.start()
        return own[0]

    def boot(cmd=None, vsock=False, name=None, backend_args=(), vm_args=(), **kw):
        name = name or f"guest{len(guests) + 1}"
        sock = None
        backend = vm = None
        if vsock:
            vhost = qemu.BIN / "hvsim-vhost"
            if not os.access(vhost, os.X_OK):
                pytest.skip(f"{vhost} is not built yet: vsock guests need the hvsim-vhost backend")
            daemon = _daemon()
            vm = daemon.ctl("vm", "add", name, *vm_args, json_out=True)
            sdir = _short_tmpdir("q")
            sock_dirs.append(sdir)
            sock = os.path.join(sdir, "vhost.sock")
            backend = qemu.Backend(vhost, sock, vm["cid"], daemon.env(vm["name"]), tmp_path / f"{name}-vhost.log",
                                   extra_args=backend_args)
            _attach_log(request, f"{name} hvsim-vhost log", backend.log_path)
            backends.append(backend)
            backend.start()
        g = qemu.Guest(tmp_path, qemu_image, cmd=cmd, vsock_socket=sock, name=name, **kw)
        g.vm, g.backend = vm, backend
        _attach_log(request, f"{name} console", g.console_log)
        _attach_log(request, f"{name} QEMU stderr", g.qemu_log)
        guests.append(g)
        return g.start()

    try:
        yield boot
    finally:
        # QEMU first: on exit it asks the backend for the ring bases.
        bad = []
        for g in guests:
            g.stop()
            if g.fatal():
                bad.append(f"{g.name}: QEMU reported '{g.fatal()}': the vhost-user device was unusable")
        for b in backends:
            rc = b.stop()
            if rc not in (0, None):
                bad.append(f"hvsim-vhost for {b.socket_path} exited {rc} on SIGTERM:\n{b.logs()}")
        for d in sock_dirs:
            shutil.rmtree(d, ignore_errors=True)
        for d in own:
            rc = d.stop()
            if rc != 0:
                bad.append(f"hvsimd exited {rc} on SIGTERM:\n{qemu.tail(d.log_path)}")
            shutil.rmtree(d.dir, ignore_errors=True)
        if bad:
            pytest.fail("\n".join(bad))
