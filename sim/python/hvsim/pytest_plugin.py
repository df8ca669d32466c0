# SPDX-License-Identifier: MIT
"""pytest fixtures for an emulated Hyper-V host (hvsim). Load it with
`pytest -p hvsim.pytest_plugin`, or `pytest_plugins = ["hvsim.pytest_plugin"]`
in a conftest.py, with the package importable (PYTHONPATH=sim/python, or
make install).

  hvsim_host           a fresh hvsimd per test (hvsim.Host); torn down after
                       it, and the test fails if the daemon then exits non-zero
  hvsim_session_host   one hvsimd for the whole session; with --hvsim-dir DIR
                       (or HVSIM_SESSION_DIR) the daemon a CI step started
  hvsim_vm             factory: hvsim_vm("vm1", kind="classic") -> the VM's JSON
                       (name, id, cid, ...) on hvsim_host
  hvsim_service        factory: hvsim_service(5000, "name") -> the service GUID
  hvsim_run            run(argv, partition="host", ...) -> CompletedProcess:
                       a program as a process of a partition, through hvsim-run
  hvsim_python         python(program, *args, partition="host", wait=False):
                       a Python program with AF_HYPERV in its socket module
                       (python3 -m hvsim run): a Popen, or with wait=True a
                       CompletedProcess
  hvsim_qemu_guest     boot(cmd=..., vsock=True): a QEMU guest whose vsock
                       device is served by hvsim-vhost (the source tree's
                       harness/qemu.py and a guest image: make vm-image);
                       skipped when either is missing

Options: --hvsim-bin DIR (else HVSIM_BIN, the source tree's build/bin, an
installed PREFIX/bin, PATH). On a failed test the daemon's last log lines are
attached to the report. Marker: hvsim_settings(name=value, ...) starts the
test's hvsim_host with those emulation settings (hvsimd --set).
"""
import os
import sys
from pathlib import Path

import pytest

from .host import Host, HostError

_OPTS = {}


def pytest_addoption(parser):
    g = parser.getgroup("hvsim", "emulated Hyper-V host (hvsim)")
    g.addoption("--hvsim-bin", default=None, help="hvsimd, hvsimctl, hvsim-run (default: HVSIM_BIN, build/bin, PATH)")
    g.addoption("--hvsim-dir", default=None,
                help="use the hvsimd already running in DIR for hvsim_session_host (default: HVSIM_SESSION_DIR)")


def pytest_configure(config):
    _OPTS["bin"] = config.getoption("--hvsim-bin", None) or os.environ.get("HVSIM_BIN") or None
    _OPTS["dir"] = config.getoption("--hvsim-dir", None) or os.environ.get("HVSIM_SESSION_DIR") or None
    config.addinivalue_line("markers", "hvsim_settings(**settings): hvsim_host starts with these emulation settings")


def _attach(node, host):
    hosts = getattr(node, "_hvsim_hosts", None)
    if hosts is None:
        hosts = node._hvsim_hosts = []
    hosts.append(host)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for h in getattr(item, "_hvsim_hosts", ()):
            report.sections.append((f"hvsimd log ({h.log_path}, last 100 lines)", h.log(100)))


def _finish(host):
    rc = host.stop()
    log = host.log()
    host.remove()
    if rc != 0:
        pytest.fail(f"hvsimd exited {rc} on SIGTERM:\n{log}")


def _new_host(settings=None):
    try:
        return Host(bin_dir=_OPTS.get("bin"), settings=settings)
    except HostError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="session")
def hvsim_session_host():
    if _OPTS.get("dir"):
        h = Host.attach(_OPTS["dir"], _OPTS.get("bin"))
        yield h
        h.stop()
        return
    h = _new_host()
    try:
        yield h
    finally:
        _finish(h)


@pytest.fixture
def hvsim_host(request):
    m = request.node.get_closest_marker("hvsim_settings")
    h = _new_host(m.kwargs if m else None)
    _attach(request.node, h)
    try:
        yield h
    finally:
        _finish(h)


@pytest.fixture
def hvsim_vm(hvsim_host):
    def add(name, kind="classic", vm_id=None):
        return hvsim_host.vm(name, kind, vm_id)
    return add


@pytest.fixture
def hvsim_service(hvsim_host):
    def add(port_or_guid, element_name="hvsim test service"):
        return hvsim_host.service(port_or_guid, element_name)
    return add


@pytest.fixture
def hvsim_run(hvsim_host):
    return hvsim_host.run


@pytest.fixture
def hvsim_python(hvsim_host):
    return hvsim_host.python


def _qemu_module():
    """The source tree's harness/qemu.py (guests, backends), or None."""
    try:
        import qemu  # the harness's own, when its folder is on sys.path
        if hasattr(qemu, "Guest") and hasattr(qemu, "Backend"):
            return qemu
    except ImportError:
        pass
    harness = Path(__file__).resolve().parents[3] / "harness"
    if (harness / "qemu.py").is_file():
        sys.path.insert(0, str(harness))
        import qemu
        return qemu
    return None


@pytest.fixture
def hvsim_qemu_guest(request, tmp_path, hvsim_host):
    """boot(cmd=None, vsock=True, name=None, **guest_kwargs) -> a started
    qemu.Guest; with vsock=True a VM `name` is added to hvsim_host and
    hvsim-vhost serves the guest's vhost-user-vsock device (never the kernel's
    vhost-vsock: qemu.check_argv refuses it)."""
    def unavailable(why):
        if os.environ.get("HVSIM_REQUIRE_QEMU") == "1":
            pytest.fail(why + " (HVSIM_REQUIRE_QEMU=1)")
        pytest.skip(why)
    q = _qemu_module()
    if q is None:
        unavailable("hvsim_qemu_guest needs the source tree's harness/qemu.py")
    img, why = q.find_image()
    if img is None or q.find_qemu()[1]:
        unavailable(why or q.find_qemu()[1])
    guests, backends = [], []

    def boot(cmd=None, vsock=True, name=None, **kw):
        name = name or f"guest{len(guests) + 1}"
        sock = backend = vm = None
        if vsock:
            vm = hvsim_host.vm(name)
            sock = os.path.join(hvsim_host.dir, f"{name}.vsock")
            backend = q.Backend(hvsim_host.tool("hvsim-vhost"), sock, vm["cid"], hvsim_host.env(name),
                                tmp_path / f"{name}-vhost.log")
            backends.append(backend)
            backend.start()
        g = q.Guest(tmp_path, img, cmd=cmd, vsock_socket=sock, name=name, **kw)
        g.vm, g.backend = vm, backend
        guests.append(g)
        return g.start()

    try:
        yield boot
    finally:
        bad = []
        for g in guests:  # QEMU first: on exit it asks the backend for the ring bases
            g.stop()
            if g.fatal():
                bad.append(f"{g.name}: QEMU reported '{g.fatal()}'")
        for b in backends:
            rc = b.stop()
            if rc not in (0, None):
                bad.append(f"hvsim-vhost for {b.socket_path} exited {rc} on SIGTERM:\n{b.logs()}")
        if bad:
            pytest.fail("\n".join(bad))
