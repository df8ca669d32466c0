# SPDX-License-Identifier: MIT
"""python3 -m hvsim: the launcher and the error table.

    python3 -m hvsim run [--host | --vm NAME] [--dir DIR] [--bin DIR] program.py [ARG]...
    python3 -m hvsim run [--host | --vm NAME] ... -m module [ARG]...
    python3 -m hvsim errors
    python3 -m hvsim start-daemon --dir DIR [--bin DIR] [--set NAME=VALUE]...
    python3 -m hvsim stop-daemon --dir DIR

`run` starts the program as a process of the emulated host (--host, the
default) or of VM NAME, under hvsim-run (the interposer, which fails closed:
the kernel's own AF_VSOCK and AF_HYPERV are out of the program's reach), with
socket.AF_HYPERV, HV_GUID_*, HVSOCKET_* and (vm_id, service_id) addresses in
its socket module before the program is imported: Windows CPython code runs
unchanged. Already under hvsim-run (--vm/--host given to it), `run` only
prepares the socket module. Exit status: the program's; 2 for a usage error;
125 when the emulation cannot be set up.

start-daemon starts hvsimd in DIR and returns once it is ready (a CI step:
its pid in DIR/hvsimd.pid, its log in DIR/hvsimd.log; no state kept);
stop-daemon SIGTERMs it and waits for it to end.
"""
import argparse
import os
import runpy
import sys

from . import compat, errors
from .host import HostError, find_tool, python_path


def _parse(argv):
    ap = argparse.ArgumentParser(prog="python3 -m hvsim", description="hvsim for Python")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a Python program as a partition, with AF_HYPERV in its socket module")
    who = r.add_mutually_exclusive_group()
    who.add_argument("--host", action="store_true", help="a host process (the default)")
    who.add_argument("--vm", metavar="NAME", help="a guest process of VM NAME")
    r.add_argument("--dir", help="the daemon's folder (HVSIM_DIR; default: inherited)")
    r.add_argument("--bin", help="where hvsim-run is (default: HVSIM_BIN, the build tree, PATH)")
    r.add_argument("-m", dest="module", metavar="MODULE", help="run a module, as python3 -m does")
    r.add_argument("program", nargs="?", help="the program's file")
    r.add_argument("args", nargs=argparse.REMAINDER)
    sub.add_parser("errors", help="the error table: exception class, errno, winerror")
    sd = sub.add_parser("start-daemon", help="start hvsimd in DIR for later steps (CI)")
    sd.add_argument("--dir", required=True)
    sd.add_argument("--bin")
    sd.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="an emulation setting")
    st = sub.add_parser("stop-daemon", help="stop the hvsimd start-daemon started in DIR")
    st.add_argument("--dir", required=True)
    st.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args(argv)
    if a.cmd == "run":
        if a.module and a.program:
            a.args = [a.program] + a.args
            a.program = None
        if not a.module and not a.program:
            ap.error("run: give program.py or -m module")
    return a


def _inside(a):
    os.environ.pop("HVSIM_PY_INSIDE", None)  # the program's own children start afresh
    compat.install()
    if a.module:
        sys.argv = [a.module] + a.args
        runpy.run_module(a.module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [a.program] + a.args
        sys.path.insert(0, os.path.dirname(os.path.abspath(a.program)))
        runpy.run_path(a.program, run_name="__main__")
    return 0


def start_daemon(a):
    from .host import Host
    os.makedirs(a.dir, exist_ok=True)
    try:
        h = Host(a.dir, a.bin, settings=dict(kv.split("=", 1) for kv in a.set))
    except (HostError, ValueError) as e:
        print(f"python3 -m hvsim start-daemon: {e}", file=sys.stderr)
        return 1
    with open(os.path.join(a.dir, "hvsimd.pid"), "w") as f:
        f.write(f"{h.proc.pid}\n")
    print(f"hvsimd {h.proc.pid} ready in {a.dir}: HVSIM_DIR={a.dir}")
    return 0


def stop_daemon(a):
    import signal
    import time
    pidfile = os.path.join(a.dir, "hvsimd.pid")
    try:
        pid = int(open(pidfile).read())
    except (OSError, ValueError):
        print(f"python3 -m hvsim stop-daemon: no {pidfile}", file=sys.stderr)
        return 1
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"python3 -m hvsim stop-daemon: hvsimd {pid} had already exited", file=sys.stderr)
        return 1
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as f:
                gone = f.read().rsplit(")", 1)[1].split()[0] == "Z"  # ended; its new parent reaps it
        except (ProcessLookupError, FileNotFoundError):
            gone = True
        if gone:
            os.unlink(pidfile)
            print(f"hvsimd {pid} stopped")
            return 0
        time.sleep(0.05)
    print(f"python3 -m hvsim stop-daemon: hvsimd {pid} still runs {a.timeout:g} s after SIGTERM", file=sys.stderr)
    return 1


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    a = _parse(argv)
    if a.cmd == "errors":
        print(errors.table_text())
        return 0
    if a.cmd == "start-daemon":
        return start_daemon(a)
    if a.cmd == "stop-daemon":
        return stop_daemon(a)
    if compat.interposed() and os.environ.get("HVSIM_PY_INSIDE") == "1" or \
            compat.interposed() and not (a.vm or a.host or a.dir):
        return _inside(a)
    try:
        run = find_tool("hvsim-run", a.bin)
    except HostError as e:
        print(f"python3 -m hvsim run: {e}", file=sys.stderr)
        return 125
    env = dict(os.environ)
    env["PYTHONPATH"] = python_path()
    env["HVSIM_PY_INSIDE"] = "1"
    cmd = [run] + (["--vm", a.vm] if a.vm else ["--host"]) + (["--dir", a.dir] if a.dir else []) + \
        ["--", sys.executable, "-m", "hvsim", "run"] + (["-m", a.module] if a.module else [a.program]) + a.args
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(run, cmd, env)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except compat.NotInterposed as e:
        print(f"python3 -m hvsim: {e}", file=sys.stderr)
        sys.exit(125)
