# SPDX-License-Identifier: MIT
"""hvsim installed as a user installs it: `make install DESTDIR=... PREFIX=/usr`,
then the examples built as C and as C++ with `pkg-config --cflags --libs hvsim`
against the installed tree only, and run against a daemon started from it.

Run with: /usr/bin/python3 -m pytest harness/test_install.py
"""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import qemu

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HVSIM_BIN", REPO / "build" / "bin"))
SERVICE = "0000c0de-facb-11e6-bd58-64006a7986d3"
TIMEOUT = 60


def sanitized():
    return any(part in ("asan", "ubsan", "tsan", "mutant") for part in BIN.parts)


@pytest.fixture(scope="module")
def installed():
    if sanitized():
        pytest.skip("the install test runs on the plain build (a sanitizer build is not what users install)")
    for tool in ("pkg-config", "g++"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: sh ci/deps.sh pkgconf g++")
    root = Path(tempfile.mkdtemp(prefix="hvsim-inst-", dir="/tmp"))
    r = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "install", f"DESTDIR={root}", "PREFIX=/usr",
                        f"B={BIN.parent}"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"make install failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    yield root
    shutil.rmtree(root, ignore_errors=True)


def pkg(root, *args):
    env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=str(root), PKG_CONFIG_LIBDIR=str(root / "usr/lib/pkgconfig"))
    r = subprocess.run(["pkg-config", *args, "hvsim"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_installed_tree(installed):
    lib = installed / "usr/lib"
    assert os.readlink(lib / "libhvsim.so") == "libhvsim.so.0"
    assert os.readlink(lib / "libhvsim.so.0").startswith("libhvsim.so.0.")
    soname = subprocess.run(["readelf", "-d", str(lib / "libhvsim.so.0")], capture_output=True, text=True).stdout
    assert "Library soname: [libhvsim.so.0]" in soname
    for name in ("hvsimd", "hvsimctl", "hvcat", "hvsim-run", "hvsim-hybrid", "hvsim-vhost"):
        assert os.access(installed / "usr/bin" / name, os.X_OK), name
    assert (lib / "libhvsim-preload.so").exists(), "hvsim-run looks for the interposer in ../lib"
    for h in ("hvsim.h", "hvsocket.h", "errmap.h"):
        assert (installed / "usr/include/hvsim" / h).exists(), h
    assert pkg(installed, "--modversion")[0].count(".") == 2
    # Nothing of the build tree leaks into the flags.
    assert all(str(REPO) not in f for f in pkg(installed, "--cflags", "--libs"))


@pytest.mark.parametrize("lang", ["c", "c++"])
def test_examples_build_and_run_from_the_installed_tree(installed, lang, tmp_path):
    flags = pkg(installed, "--cflags", "--libs")
    built = {}
    for name in ("host-service", "guest-service"):
        out = tmp_path / f"{name}-{lang}"
        cmd = (["gcc", "-std=c11"] if lang == "c" else ["g++", "-x", "c++", "-std=c++17"])
        cmd += ["-Wall", "-Wextra", "-Werror", "-o", str(out), str(REPO / "examples" / f"{name}.c")] + flags
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{' '.join(cmd)}:\n{r.stderr}"
        built[name] = out
    run_dir = tempfile.mkdtemp(prefix="hvsim-i-", dir="/tmp")
    ubin = installed / "usr/bin"
    d = qemu.Daemon(run_dir, ubin / "hvsimd")
    d.start()
    try:
        env = dict(qemu.clean_env(), HVSIM_DIR=run_dir, LD_LIBRARY_PATH=str(installed / "usr/lib"))

        def ctl(*args):
            r = subprocess.run([str(ubin / "hvsimctl"), "--dir", run_dir, *args], env=env, capture_output=True,
                               text=True, timeout=TIMEOUT)
            assert r.returncode == 0, r.stderr
            return r.stdout

        ctl("vm", "add", "vm1")
        ctl("service", "add", SERVICE, "installed example")
        host = subprocess.Popen([str(built["host-service"])], env=dict(env, HVSIM_PARTITION="host"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            ldd = subprocess.run(["ldd", str(built["host-service"])], env=env, capture_output=True, text=True).stdout
            assert str(installed / "usr/lib/libhvsim.so.0") in ldd, ldd
            d.wait_listeners(host)
            guest = subprocess.run([str(built["guest-service"])], env=dict(env, HVSIM_PARTITION="vm1"),
                                   capture_output=True, text=True, timeout=TIMEOUT)
            assert guest.returncode == 0, guest.stderr
            assert "echo: hello from the guest" in guest.stdout
            out, err = host.communicate(timeout=TIMEOUT)
            assert host.returncode == 0, err.decode()
        finally:
            if host.poll() is None:
                host.kill()
                host.wait()
    finally:
        d.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def test_python_package_is_installed_and_finds_the_installed_tools(installed):
    """make install puts the hvsim package into PREFIX/lib/python3/dist-packages;
    from there it finds PREFIX/bin without HVSIM_BIN and runs a Windows-style
    AF_HYPERV program as a partition of a daemon it started itself."""
    site = installed / "usr/lib/python3/dist-packages"
    assert (site / "hvsim" / "pytest_plugin.py").is_file()
    env = {k: v for k, v in os.environ.items() if k not in ("HVSIM_BIN", "HVSIM_DIR", "HVSIM_PARTITION")}
    env["PYTHONPATH"] = str(site)
    code = ("import hvsim, subprocess, sys\n"
            "print(hvsim.find_bin())\n"
            "with hvsim.Host() as h:\n"
            "    r = h.python(sys.argv[1], wait=True, text=True)\n"
            "    print(r.stdout.strip(), r.returncode, r.stderr.strip())\n")
    prog = installed / "probe.py"
    prog.write_text("import socket\ns = socket.socket(socket.AF_HYPERV, socket.SOCK_STREAM, socket.HV_PROTOCOL_RAW)\n"
                    "s.bind((socket.HV_GUID_WILDCARD, '0000c0df-facb-11e6-bd58-64006a7986d3'))\n"
                    "print(s.getsockname()[1])\n")
    r = subprocess.run(["/usr/bin/python3", "-c", code, str(prog)], env=env, capture_output=True, text=True,
                       timeout=TIMEOUT, cwd="/")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == [str(installed / "usr/bin"), "0000c0df-facb-11e6-bd58-64006a7986d3 0 "]
