# SPDX-License-Identifier: MIT
"""An emulated Hyper-V host: one hvsimd, its VMs and services, and programs
run as its partitions (through hvsim-run, the fail-closed interposer).

The API is a superset of the harness's qemu.Daemon (dir, log_path, proc,
children, start, stop, env, ctl, wait_listeners), so the project's harness
and users' test suites share it (hvsim.pytest_plugin).
"""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PKG_DIR = Path(__file__).resolve().parent


class HostError(AssertionError):
    """hvsimd or a tool failed; an AssertionError so pytest reports a failure."""


def find_bin():
    """The folder of hvsimd, hvsimctl and hvsim-run: $HVSIM_BIN; the source
    tree's build/bin (this package at sim/python/hvsim); an installed tree's
    PREFIX/bin (the package at PREFIX/lib/python3/dist-packages/hvsim); else
    the folder of hvsimd on PATH. None if there is none."""
    cands = []
    if os.environ.get("HVSIM_BIN"):
        cands.append(Path(os.environ["HVSIM_BIN"]))
    cands += [PKG_DIR.parents[2] / "build" / "bin", PKG_DIR.parents[3] / "bin"]
    on_path = shutil.which("hvsimd")
    if on_path:
        cands.append(Path(on_path).parent)
    for c in cands:
        if os.access(c / "hvsimd", os.X_OK):
            return c
    return None


def find_tool(name, bin_dir=None):
    d = Path(bin_dir) if bin_dir else find_bin()
    if d is None or not os.access(d / name, os.X_OK):
        raise HostError(f"{name} not found ({d or 'no hvsim binaries'}): build hvsim (make all) and set "
                        "HVSIM_BIN to its build/bin, or install it (make install)")
    return str(d / name)


def clean_env():
    e = dict(os.environ)
    for k in ("HVSIM_DIR", "HVSIM_PARTITION"):
        e.pop(k, None)
    return e


def python_path():
    """PYTHONPATH for a child that must import this package."""
    parts = [str(PKG_DIR.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys(parts))


class Host:
    """One hvsimd in a fresh short folder (no persisted state unless
    state_dir), started with --ready-fd; stop() (or the with block's end)
    kills the programs it started, then SIGTERMs the daemon."""

    def __init__(self, run_dir=None, bin_dir=None, state_dir="", settings=None, start=True):
        self.bin = Path(bin_dir) if bin_dir else find_bin()
        if self.bin is None:
            raise HostError("no hvsim binaries: set HVSIM_BIN to build/bin, or make install")
        self._own_dir = run_dir is None
        # Unix socket paths are at most 107 bytes: a short folder under /tmp.
        self.dir = str(run_dir or tempfile.mkdtemp(prefix="hvsim-py-", dir="/tmp"))
        self.state_dir = str(state_dir)
        self.settings = dict(settings or {})
        self.log_path = Path(self.dir) / "hvsimd.log"
        self.proc = None
        self.children = []
        self.external = False
        if start:
            self.start()

    @classmethod
    def attach(cls, run_dir, bin_dir=None):
        """A Host for a daemon someone else started (a CI step): never stopped here."""
        h = cls(run_dir, bin_dir, start=False)
        h.external = True
        h._own_dir = False
        h.ctl("status", json_out=True)
        return h

    def tool(self, name):
        return find_tool(name, self.bin)

    # ---- life cycle ----------------------------------------------------------------------

    def start(self, timeout=30):
        argv = [self.tool("hvsimd"), "--dir", self.dir, "--state-dir", self.state_dir]
        for k, v in self.settings.items():
            argv += ["--set", f"{k}={v}"]
        r, w = os.pipe()
        argv += ["--ready-fd", str(w)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=clean_env())
        os.close(w)
        got, deadline = b"", time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([r], [], [], left)[0]:
                    self.proc.kill()
                    self.proc.wait()
                    raise HostError(f"hvsimd did not get ready in {timeout} s:\n{self.log()}")
                chunk = os.read(r, 256)
                if not chunk:
                    break
                got += chunk
        finally:
            os.close(r)
        if b"READY=1" not in got:
            self.proc.wait(timeout)
            raise HostError(f"hvsimd exited ({self.proc.returncode}) before it was ready:\n{self.log()}")
        return self

    def stop(self, timeout=30):
        """Kill the programs started here, SIGTERM the daemon; its exit status
        (a string if it had to be killed; 0 for an attached daemon)."""
        for p in self.children:
            # Its whole process group: hvsim-run's supervisor runs the program
            # as its child, which would outlive a kill of hvsim-run alone.
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            for f in (p.stdin, p.stdout, p.stderr):
                if f:
                    f.close()
        self.children = []
        rc = 0
        if self.proc is not None and not self.external:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout)
                    rc = "killed: it ignored SIGTERM"
            rc = rc or self.proc.returncode
        return rc

    def remove(self):
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        rc = self.stop()
        if rc != 0 and exc[0] is None:
            raise HostError(f"hvsimd exited {rc} on SIGTERM:\n{self.log()}")
        self.remove()

    def log(self, lines=40):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no hvsimd log)"
        return "\n".join(text.splitlines()[-lines:])

    # ---- administration ----------------------------------------------------------------

    def env(self, partition=None):
        """The environment of a process of partition (host, or a VM's name)."""
        e = clean_env()
        e["HVSIM_DIR"] = self.dir
        if partition:
            e["HVSIM_PARTITION"] = partition
        return e

    def ctl(self, *args, json_out=False, check=True, timeout=30):
        cmd = [self.tool("hvsimctl"), "--dir", self.dir] + (["--json"] if json_out else []) + [str(a) for a in args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=clean_env())
        if check and r.returncode != 0:
            raise HostError(f"hvsimctl {' '.join(cmd[3:])} failed ({r.returncode}): {r.stderr}")
        if json_out and check:
            return json.loads(r.stdout)
        return r

    def vm(self, name, kind="classic", vm_id=None):
        """Add a VM; its hvsimctl JSON (name, id, kind, state, cid)."""
        args = ["vm", "add", name, "--kind", kind] + (["--id", vm_id] if vm_id else [])
        return self.ctl(*args, json_out=True)

    def vm_op(self, name, op):
        """pause, resume, reset, off, start (hvsimctl vm OP NAME)."""
        return self.ctl("vm", op, name)

    def service(self, port_or_guid, element_name="hvsim test service"):
        """Register a service (GuestCommunicationServices); its GUID string."""
        from . import service_id
        sid = service_id(port_or_guid)
        self.ctl("service", "add", sid, element_name)
        return sid

    def set(self, name, value):
        return self.ctl("set", name, value)

    def status(self):
        return self.ctl("status", json_out=True)

    def wait_listeners(self, proc=None, count=1, timeout=30):
        """Until `hvsimctl status` counts count listeners; HostError if proc exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status()["listeners"] >= count:
                return
            if proc is None:
                time.sleep(0.02)
                continue
            try:
                proc.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                continue
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise HostError(f"{proc.args} exited ({proc.returncode}) before listening: {err}")
        raise HostError(f"no listener after {timeout} s")

    # ---- programs as partitions ----------------------------------------------------------

    def argv(self, argv, partition="host"):
        """argv run through hvsim-run as a process of partition."""
        who = ["--host"] if partition in (None, "host") else ["--vm", partition]
        return [self.tool("hvsim-run")] + who + ["--dir", self.dir, "--"] + [str(a) for a in argv]

    def python_argv(self, program, args=(), partition="host", module=False):
        """A Python program (Windows-style AF_HYPERV code) through the package's launcher."""
        return [sys.executable, "-m", "hvsim", "run", "--bin", str(self.bin), "--dir", self.dir] + \
            (["--host"] if partition in (None, "host") else ["--vm", partition]) + \
            (["-m", program] if module else [str(program)]) + [str(a) for a in args]

    def _child_env(self, partition, env):
        e = self.env(partition)
        e["PYTHONPATH"] = python_path()
        e["HVSIM_BIN"] = str(self.bin)
        if env:
            e.update(env)
        return e

    def spawn(self, argv, partition="host", env=None, raw=False, **popen):
        """Start argv as a process of partition (through hvsim-run unless raw);
        killed at stop() with its process group (its own: start_new_session).
        Popen keyword arguments pass through (stdout=PIPE ...)."""
        popen.setdefault("stdin", subprocess.DEVNULL)
        popen.setdefault("start_new_session", True)  # a group of its own, killed whole at stop()
        p = subprocess.Popen(argv if raw else self.argv(argv, partition), env=self._child_env(partition, env), **popen)
        self.children.append(p)
        return p

    def run(self, argv, partition="host", env=None, timeout=60, raw=False, check=False, **kw):
        """Run argv as a process of partition to its end; a CompletedProcess
        (output captured unless stdout/stderr are given)."""
        if "stdout" not in kw and "stderr" not in kw and "capture_output" not in kw:
            kw["capture_output"] = True
        return subprocess.run(argv if raw else self.argv(argv, partition), env=self._child_env(partition, env),
                              timeout=timeout, check=check, **kw)

    def python(self, program, *args, partition="host", module=False, wait=False, timeout=60, env=None, **kw):
        """A Python program as a process of partition, AF_HYPERV names in its
        socket module: started (a Popen, killed at stop()) or, with wait=True,
        run to its end (a CompletedProcess)."""
        argv = self.python_argv(program, args, partition, module)
        if wait:
            return self.run(argv, partition, env=env, timeout=timeout, raw=True, **kw)
        return self.spawn(argv, partition, env=env, raw=True, **kw)
