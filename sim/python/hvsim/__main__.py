# SPDX-License-Identifier: MIT
"""python3 -m hvsim: the launcher and the error table.

    python3 -m hvsim run [--host | --vm NAME] [--dir DIR] [--bin DIR] program.py [ARG]...
    python3 -m hvsim run [--host | --vm NAME] ... -m module [ARG]...
    python3 -m hvsim errors

`run` starts the program as a process of the emulated host (--host, the
default) or of VM NAME, under hvsim-run (the interposer, which fails closed:
the kernel's own AF_VSOCK and AF_HYPERV are out of the program's reach), with
socket.AF_HYPERV, HV_GUID_*, HVSOCKET_* and (vm_id, service_id) addresses in
its socket module before the program is imported: Windows CPython code runs
unchanged. Already under hvsim-run (--vm/--host given to it), `run` only
prepares the socket module. Exit status: the program's; 2 for a usage error;
125 when the emulation cannot be set up.
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
    a = ap.parse_args(argv)
    if a.cmd == "run":
        if a.module and a.program:
            a.args = [a.program] + a.args
            a.program = None
        if not a.module and not a.program:
            ap.error("run: give program.py or -m module")
    return a


def _inside(a):
    compat.install()
    if a.module:
        sys.argv = [a.module] + a.args
        runpy.run_module(a.module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [a.program] + a.args
        sys.path.insert(0, os.path.dirname(os.path.abspath(a.program)))
        runpy.run_path(a.program, run_name="__main__")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    a = _parse(argv)
    if a.cmd == "errors":
        print(errors.table_text())
        return 0
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
