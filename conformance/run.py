# SPDX-License-Identifier: MIT
"""The conformance suite's runner: runs the paired agents (hvsim-agent, host
side and guest side) against a target, column by column, and writes the
reports (report.py) under --out.

    run.py --target sim [--bin DIR] [--out DIR] [--columns windows,hvsock,virtio] [--sim-kernel 6.1|6.12|newest]
           [--mutant NAME] [--pick ID]... [--skip ID]... [--quiet]
    run.py --target qemu [--vm-dir DIR] [--pick ID]... [--skip ID]...
    run.py --target hyperv --ingest host.jsonl [--ingest more.jsonl]...
    run.py --target sim --shard 2/3 --out build/conformance/shard-2   # one CI job's share
    report.py --merge --out build/conformance/merged shard-*/results-sim.json

--shard I/N runs every N-th case of the catalogue (after --pick), starting
with the I-th: the N shards together run each case once, and report.py
--merge joins their result sets into one equal to an unsharded run (the
cases in catalogue order; the set records the shard and the catalogue, so a
missing or doubled shard is an error, not a silent gap).

A target is a driver class. SimTarget starts its own hvsimd in a temporary
folder, adds the VMs the catalogue uses (cf-vm, cf-vm2: classic; cf-hcs: hcs)
and runs both agents as libhvsim processes (the host partition, and the guest
in cf-vm). QemuTarget does the same with a real Linux guest in QEMU as cf-vm
(its virtio-vsock device served by hvsim-vhost) and the static agent inside
it, for the column virtio. HypervTarget
cannot drive a Hyper-V host from here: a user runs the agents there by hand
(conformance/README.md) and brings the host's --report file back to --ingest.

Every target writes results-<target>.json in --out; the matrix shows all the
targets found there side by side. Exit status: 0 when no case failed (skips and
known divergences do not fail), 1 when one did, 2 when the run could not be
made (a missing binary, a daemon that did not start, an unavailable target),
130 when interrupted. Standard library only; run with /usr/bin/python3.
"""
import argparse
import datetime
import fnmatch
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "harness"))
import report  # noqa: E402  (beside this file)
import qemu  # noqa: E402  (harness/qemu.py, standard library only: processes, QEMU guests)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BIN = REPO / "build" / "bin"
DEFAULT_OUT = REPO / "build" / "conformance"
DEADLINE_S = 300  # the whole run; a bound for hangs, never a wait
TOOL_TIMEOUT_S = 30  # one hvsimctl call, the daemon's start and stop
GUEST_GRACE_S = 10  # the guest's exit after the host side has finished
TAIL_LINES = 15

VMS = (("cf-vm", "classic"), ("cf-vm2", "classic"), ("cf-hcs", "hcs"))
# The simulator's virtio column: a guest of a VM added with --transport virtio
# (issue 13), on the kernel --sim-kernel names.
SIM_VIRTIO_VM = "cf-virtio"
TAP_TEST = re.compile(r"^(not ok|ok)\s+(\d+)\s*(?:-\s*)?(\S*)\s*(?:#\s*(.*))?$")
TAP_PLAN = re.compile(r"^1\.\.(\d+)")


class TargetError(Exception):
    """The run cannot be made (as opposed to a case failing)."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM: clean up (the daemon, the agents) and leave."""


def on_signal(signum, frame):
    # Once: a second signal must not cut the clean-up short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name)


clean_env = qemu.clean_env


def tail(path, n=TAIL_LINES):
    """The last lines of a log, or "" when it is empty or missing."""
    try:
        text = Path(path).read_text(errors="replace").rstrip("\n")
    except OSError:
        return ""
    return "\n".join(text.split("\n")[-n:]) if text else ""


def kill_group(proc):
    """SIGKILL a child we started in its own session and everything it forked
    (the agents run each case in a forked child)."""
    if proc is None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(TOOL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pass


def runner_case(case_id, col, target, message):
    """A failure the runner itself found: an incomplete run, a crashed agent.
    It is a case record like the agents' so that every report shows it."""
    return report.normalise_case({
        "id": case_id, "area": "runner", "rule": "the run completes: every planned case reports a result",
        "source": "conformance/run.py", "confidence": "sourced", "column": col, "target": target,
        "backend": "", "expected": "", "result": "fail", "message": message, "ms": 0})


def parse_tap(lines):
    """The plan and the test lines of the host agent's TAP."""
    plan, tests = None, []
    for line in lines:
        m = TAP_PLAN.match(line)
        if m and plan is None:
            plan = int(m.group(1))
            continue
        m = TAP_TEST.match(line)
        if m:
            ok, num, cid, directive = m.group(1) == "ok", int(m.group(2)), m.group(3), (m.group(4) or "").strip()
            if not ok:
                result = "fail"
            elif directive.upper().startswith("SKIP"):
                result, directive = "skip", directive[4:].strip()
            elif directive.upper().startswith("TODO"):
                result, directive = "divergence", directive[4:].strip()
            else:
                result = "pass"
            tests.append({"num": num, "id": cid, "result": result, "message": directive})
    return plan, tests


def reconcile(col, target, records, plan, tests, host_rc, guest_rc, notes):
    """Cases from the report file, completed from the TAP, plus runner failures
    for whatever the two do not account for. The report file is the source
    of truth; TAP is the check that it is complete."""
    by_id = {}
    for r in records:
        c = report.normalise_case(r, target=target, column=col)
        c["column"] = c["column"] or col
        by_id[c["id"]] = c  # a repeated id: the last word wins
    for t in tests:
        if t["id"] and t["id"] not in by_id:
            by_id[t["id"]] = report.normalise_case({
                "id": t["id"], "result": t["result"], "column": col, "target": target,
                "message": (t["message"] + " " if t["message"] else "")
                + "(from the TAP only: missing from the report file)"})
    cases = list(by_id.values())
    extra = []
    why = "; ".join(notes)
    if plan is None and not cases:
        extra.append(runner_case(f"runner.{col}-no-run", col, target,
                                 f"the host agent ran no case (no TAP plan; host exit {host_rc}). {why}".strip()))
    elif plan is not None and len(tests) < plan:
        extra.append(runner_case(f"runner.{col}-incomplete", col, target,
                                 f"the host agent reported {len(tests)} of {plan} planned cases "
                                 f"(host exit {host_rc}). {why}".strip()))
    failed = any(c["result"] == "fail" for c in cases + extra)
    if not failed and host_rc != 0:
        extra.append(runner_case(f"runner.{col}-host-exit", col, target,
                                 f"the host agent exited {host_rc} though no case failed. {why}".strip()))
    if not failed and guest_rc != 0:
        extra.append(runner_case(f"runner.{col}-guest-exit", col, target,
                                 f"the guest agent exited {guest_rc} though no case failed. {why}".strip()))
    return cases + extra


# ---- targets ----------------------------------------------------------------------------


class Target:
    """A driver: how the agents reach one kind of target."""
    name = None
    columns = ()  # the columns this target can run
    default_columns = ()

    def __init__(self, opts):
        self.opts = opts

    def check_columns(self, cols):
        bad = [c for c in cols if c not in self.columns]
        if bad:
            raise TargetError(f"target {self.name} has no column {', '.join(bad)} "
                              f"(it has {', '.join(self.columns) or 'none'})")

    def run(self, cols, out_dir):
        """The case records of a run over cols, and extra fields for the result set."""
        raise NotImplementedError

    def ingest(self, paths):
        """Case records from --report files a user brought back from elsewhere."""
        cases = []
        for p in paths:
            try:
                recs = report.read_jsonl(p)
            except (OSError, report.ReportError) as e:
                raise TargetError(f"cannot ingest {p}: {e}") from e
            if not recs:
                raise TargetError(f"cannot ingest {p}: it holds no case record")
            for n, r in enumerate(recs, 1):
                got = r.get("target") or ""
                # Ingesting a simulator report as hyperv would fake a confirmation.
                if got and got != self.name:
                    raise TargetError(f"cannot ingest {p}: record {n} ({r.get('id')}) is from target {got!r}, "
                                      f"expected {self.name!r}")
                if not r.get("column"):
                    raise TargetError(f"cannot ingest {p}: record {n} ({r.get('id')}) has no column")
            cases += recs
        return cases, {"ingested": [str(p) for p in paths]}


class SimTarget(Target):
    """hvsimd started here, both agents as libhvsim processes. The virtio
    column's guest is a process of a virtio VM (vm add --transport virtio)."""
    name = "sim"
    columns = ("windows", "hvsock", "virtio")
    default_columns = ("windows", "hvsock", "virtio")

    def __init__(self, opts):
        super().__init__(opts)
        self.bin = Path(opts.bin).resolve()
        self.tmp = None
        self.daemon = None
        self.deadline = time.monotonic() + opts.deadline

    def tool(self, name):
        p = self.bin / name
        if not os.access(p, os.X_OK):
            hint = "make conformance builds it" if name == "hvsim-agent" else "make all"
            raise TargetError(f"{p} is missing: build it first ({hint}), or give --bin DIR")
        return str(p)

    def left(self):
        return self.deadline - time.monotonic()

    def say(self, text):
        if not self.opts.quiet:
            print(text, flush=True)

    def start_daemon(self):
        argv = [self.tool("hvsimd"), "--dir", self.tmp, "--state-dir", "", "--ready-fd", "{fd}"]
        env = clean_env()
        if self.opts.mutant:
            # Only a mutant build (make MUTANTS=1) knows --mutant; the agents
            # of the run read the same choice from HVSIM_MUTANT.
            argv += ["--mutant", self.opts.mutant]
            env["HVSIM_MUTANT"] = self.opts.mutant
        if getattr(self.opts, "decision_log", None):
            # hvsimd appends: a run's log holds that run's decisions only.
            Path(self.opts.decision_log).unlink(missing_ok=True)
            argv += ["--log", str(Path(self.opts.decision_log).resolve()), "--log-format", "json"]
        self.daemon_log = Path(self.tmp) / "hvsimd.log"
        try:
            self.daemon = qemu.start_ready(argv, env, self.daemon_log, "hvsimd",
                                           min(TOOL_TIMEOUT_S, max(self.left(), 1)), new_session=True)
        except qemu.GuestError as e:
            raise TargetError(str(e)) from e

    def stop_daemon(self):
        """SIGTERM, as a user stops it; its exit status (a sanitizer's report
        gives non-zero) is checked by the caller."""
        d, self.daemon = self.daemon, None
        if d is None:
            return None
        rc = qemu.terminate(d, TOOL_TIMEOUT_S)
        if isinstance(rc, str):
            kill_group(d)
            return f"hvsimd {rc}"
        return None if rc == 0 else f"hvsimd exited {rc}"

    def ctl(self, *args):
        cmd = [self.tool("hvsimctl"), "--dir", self.tmp, "--json"] + list(args)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, env=clean_env())
        except subprocess.TimeoutExpired as e:
            raise TargetError(f"hvsimctl {' '.join(args)} did not answer in {TOOL_TIMEOUT_S} s") from e
        if r.returncode != 0:
            raise TargetError(f"hvsimctl {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            raise TargetError(f"hvsimctl {' '.join(args)}: expected JSON, got {r.stdout!r}") from e

    def catalogue(self, agent):
        """[(id, area)] of hvsim-agent --list, in catalogue order."""
        try:
            r = subprocess.run([agent, "--list"], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise TargetError(f"{agent} --list did not answer in {TOOL_TIMEOUT_S} s") from e
        if r.returncode != 0:
            raise TargetError(f"{agent} --list failed ({r.returncode}): {r.stderr.strip()}")
        return [tuple(line.split("\t")[:2]) for line in r.stdout.splitlines() if "\t" in line]

    def plan_shard(self, agent):
        """With --shard I/N: this shard's case ids (the agent is given them as
        --pick) and the shard record of the result set; else (None, None)."""
        if not self.opts.shard:
            return None, None
        index, count = self.opts.shard
        cat = self.catalogue(agent)
        if not cat:
            raise TargetError(f"{agent} --list printed no case")
        picks = self.opts.pick
        selected = [cid for cid, area in cat
                    if not picks or any(fnmatch.fnmatchcase(cid, p) or p == area for p in picks)]
        if picks and not selected:
            raise TargetError(f"--pick {' '.join(picks)} matches no case (hvsim-agent --list shows them)")
        ids = selected[index - 1::count]
        return ids, {"index": index, "count": count, "ids": ids, "catalogue": selected}

    def run(self, cols, out_dir):
        agent = self.tool("hvsim-agent")
        self.tool("hvsimd")
        self.tool("hvsimctl")
        logs = Path(out_dir) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for old in logs.glob("sim-*"):
            old.unlink()
        self.shard_ids, shard = self.plan_shard(agent)
        cases, extra = [], {}
        if shard is not None:
            extra["shard"] = shard
            self.say(f"# shard {shard['index']}/{shard['count']}: {len(self.shard_ids)} of "
                     f"{len(shard['catalogue'])} cases")
            if not self.shard_ids:
                return cases, extra  # more shards than cases: this one has none
        # Unix socket paths are at most 107 bytes: a short folder under /tmp.
        self.tmp = tempfile.mkdtemp(prefix="hvsim-cf-", dir="/tmp")
        try:
            self.start_daemon()
            ids = {}
            for name, kind in VMS:
                ids[name] = self.ctl("vm", "add", name, "--kind", kind)["id"]
            if self.name == "sim" and "virtio" in cols:
                kernel = self.opts.sim_kernel
                ids[SIM_VIRTIO_VM] = self.ctl("vm", "add", SIM_VIRTIO_VM, "--transport", "virtio",
                                              "--kernel", kernel)["id"]
                extra["kernel"] = f"sim virtio {kernel}"
            extra["vms"] = ids
            for col in cols:
                if self.left() <= 0:
                    cases.append(runner_case(f"runner.{col}-no-run", col, self.name,
                                             f"the run's deadline of {self.opts.deadline} s passed before this column"))
                    continue
                cases += self.run_column(agent, col, ids, logs)
        finally:
            problem = self.stop_daemon()
            if self.tmp:
                if Path(self.tmp, "hvsimd.log").exists():
                    shutil.copy(Path(self.tmp, "hvsimd.log"), logs / "sim-hvsimd.log")
                shutil.rmtree(self.tmp, ignore_errors=True)
        if problem:
            cases.append(runner_case("runner.daemon-exit", cols[-1] if cols else "", self.name,
                                     f"{problem} on SIGTERM (see {logs / 'sim-hvsimd.log'}):\n"
                                     f"{tail(logs / 'sim-hvsimd.log')}"))
        return cases, extra

    def agent_args(self):
        a = []
        if self.opts.timeout_scale:
            a += ["--timeout-scale", str(self.opts.timeout_scale)]
        return a

    def guest_vm(self, col):
        """The VM whose guest runs column COL."""
        return SIM_VIRTIO_VM if self.name == "sim" and col == "virtio" else "cf-vm"

    def host_cmd(self, agent, ids, ctl_path, jsonl, vm="cf-vm"):
        """The host agent: the control server, on a unix socket."""
        cmd = [agent, "--side", "host", "--control", f"unix-listen:{ctl_path}", "--target", self.name,
               "--vm", ids[vm], "--vm2", ids["cf-vm2"], "--hcs", ids["cf-hcs"], "--report", str(jsonl)]
        for p in (self.shard_ids if getattr(self, "shard_ids", None) is not None else self.opts.pick):
            cmd += ["--pick", p]
        for s in self.opts.skip:
            cmd += ["--skip", s]
        return cmd + self.agent_args()

    def run_column(self, agent, col, ids, logs):
        t = self.tmp
        ctl_path = f"{t}/ctl-{col}"
        jsonl = Path(t) / f"{col}.jsonl"
        host_cmd = self.host_cmd(agent, ids, ctl_path, jsonl, self.guest_vm(col))
        guest_cmd = [agent, "--side", "guest", "--control", f"unix:{ctl_path}", "--column", col] + self.agent_args()
        host_env = clean_env()
        host_env.update(HVSIM_DIR=t, HVSIM_PARTITION="host")
        guest_env = clean_env()
        guest_env.update(HVSIM_DIR=t, HVSIM_PARTITION=self.guest_vm(col))
        if self.opts.mutant:
            host_env["HVSIM_MUTANT"] = guest_env["HVSIM_MUTANT"] = self.opts.mutant
        host_log = logs / f"sim-{col}-host.log"
        guest_log = logs / f"sim-{col}-guest.log"
        notes = []
        host = guest = None
        tap_lines = []
        self.say(f"# column {col}: {' '.join(Path(x).name if i == 0 else x for i, x in enumerate(host_cmd))}")
        try:
            with open(host_log, "wb") as hl, open(guest_log, "wb") as gl:
                host = subprocess.Popen(host_cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=hl,
                                        env=host_env, start_new_session=True)
                # The guest may come first: its agent retries the connect itself.
                guest = subprocess.Popen(guest_cmd, stdin=subprocess.DEVNULL, stdout=gl, stderr=gl,
                                         env=guest_env, start_new_session=True)
                tap_lines, stopped = self.stream(host.stdout, logs / f"sim-{col}.tap", guest.poll, "the guest agent")
                if stopped:
                    notes.append(stopped)
                    kill_group(host)
                    kill_group(guest)
                self.wait_host(host, notes)
                try:
                    guest.wait(max(min(self.left(), GUEST_GRACE_S), 1))
                except subprocess.TimeoutExpired:
                    notes.append(f"the guest agent did not exit {GUEST_GRACE_S} s after the host agent: killed")
                    kill_group(guest)
        finally:
            # Stragglers: the cases' forked children, if an agent left any.
            kill_group(host)
            kill_group(guest)
            if host is not None and host.stdout:
                host.stdout.close()
        guest_rc = guest.returncode if guest.returncode is not None else -9
        if guest_rc != 0 and tail(guest_log):
            notes.append(f"guest output ({guest_log}):\n{tail(guest_log)}")
        return self.collect(col, f"sim-{col}", logs, jsonl, host, host_log, guest_rc, tap_lines, notes)

    def wait_host(self, host, notes):
        try:
            host.wait(max(self.left(), 1))
        except subprocess.TimeoutExpired:
            notes.append("the host agent closed its output but did not exit: killed")
            kill_group(host)

    def collect(self, col, prefix, logs, jsonl, host, host_log, guest_rc, tap_lines, notes):
        """The column's case records: the report file, checked against the TAP
        and both exit statuses (reconcile)."""
        host_rc = host.returncode if host is not None and host.returncode is not None else -9
        if host_rc != 0 and tail(host_log):
            notes.append(f"host stderr ({host_log}):\n{tail(host_log)}")
        records = []
        if jsonl.exists():
            shutil.copy(jsonl, logs / f"{prefix}.jsonl")
            try:
                records = report.read_jsonl(jsonl)
            except report.ReportError as e:
                notes.append(str(e))
        plan, tests = parse_tap(tap_lines)
        cases = reconcile(col, self.name, records, plan, tests, host_rc, guest_rc, notes)
        if self.opts.mutant:
            for c in cases:
                c.setdefault("mutant", self.opts.mutant)
        return cases

    def stream(self, pipe, tap_path, guest_exit, guest_name, extra_fds=None, pump=None):
        """The host agent's TAP, line by line, to the terminal and a file,
        until EOF. guest_exit() is None while the guest side runs; extra_fds()
        and pump() let a caller keep reading other pipes meanwhile (QEMU's
        console: QEMU stalls when nobody reads it). Returns (lines, why the
        agents must be killed or None): the run's deadline passed, or the
        guest side exited and the host side did not finish within a grace
        period (it would wait for a guest that never comes)."""
        lines, buf = [], b""
        fd = pipe.fileno()
        guest_gone = None
        with open(tap_path, "w", encoding="utf-8") as tap:
            while True:
                wait = self.left()
                if wait <= 0:
                    return lines, f"the run's deadline of {self.opts.deadline:g} s passed: the agents were killed"
                if guest_gone is None and guest_exit() is not None:
                    guest_gone = time.monotonic()
                if guest_gone is not None:
                    grace = guest_gone + GUEST_GRACE_S - time.monotonic()
                    if grace <= 0:
                        return lines, (f"{guest_name} exited ({guest_exit()}) and the host agent had not "
                                       f"finished {GUEST_GRACE_S} s later: killed")
                    wait = min(wait, grace)
                else:
                    # Look at the guest now and then: nothing else wakes us if it dies.
                    wait = min(wait, 0.5)
                others = list(extra_fds()) if extra_fds else []
                ready = select.select([fd] + others, [], [], wait)[0]
                if pump and any(f != fd for f in ready):
                    pump()
                if fd not in ready:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf += chunk
                *done, buf = buf.split(b"\n")
                for raw in done:
                    line = raw.decode("utf-8", "replace").rstrip("\r")
                    lines.append(line)
                    tap.write(line + "\n")
                    if not self.opts.quiet:
                        print(line, flush=True)
            if buf:
                line = buf.decode("utf-8", "replace")
                lines.append(line)
                tap.write(line + "\n")
                if not self.opts.quiet:
                    print(line, flush=True)
        return lines, None


class QemuTarget(SimTarget):
    """A real Linux kernel in a QEMU guest (Debian's cloud kernel under TCG),
    its virtio-vsock device served by hvsim-vhost as the VM cf-vm of a hvsimd
    started here: the column virtio. The guest agent is the static
    build/static/hvsim-agent-linux packed into the image (make vm-image); it
    reaches the host agent's control socket through QEMU's user-mode network,
    isolated (restrict=on) but for one forward that runs socat on the host
    per connection. The host agent is the libhvsim one, as for sim."""
    name = "qemu"
    columns = ("virtio",)
    default_columns = ("virtio",)
    CTL_PORT = 4000  # the guest dials 10.0.2.100:4000
    GUEST_AGENT = "hvsim-agent-linux"

    def __init__(self, opts):
        super().__init__(opts)
        self.q = qemu
        self.q.set_progress(lambda msg: self.say(f"# qemu: {msg}"))

    def run(self, cols, out_dir):
        img, why = self.q.find_image(self.opts.vm_dir)
        if img is None:
            raise TargetError(why)
        if not self.q.find_qemu()[0]:
            raise TargetError(self.q.find_qemu()[1])
        if shutil.which("socat") is None:
            raise TargetError("socat is missing (apt-get install socat): QEMU runs it for the control channel")
        self.image = img
        self.tool("hvsim-vhost")
        self.kernel = None
        cases, extra = super().run(cols, out_dir)
        # The guest prints `hvsim-guest: <uname -r>, modules loaded, ...` (vm-images/init).
        extra["kernel"] = self.kernel or "unknown (no guest boot line)"
        if self.kernel:
            self.say(f"# guest kernel {self.kernel}")
        return cases, extra

    def run_column(self, agent, col, ids, logs):
        t = self.tmp
        ctl_path = f"{t}/ctl-{col}"
        jsonl = Path(t) / f"{col}.jsonl"
        cid = self.vm_cid("cf-vm")
        host_cmd = self.host_cmd(agent, ids, ctl_path, jsonl)
        guest_cmd = " ".join([self.GUEST_AGENT, "--side", "guest", "--control",
                              f"tcp:{self.q.GUESTFWD_ADDR}:{self.CTL_PORT}", "--column", col] + self.agent_args())
        host_env = clean_env()
        host_env.update(HVSIM_DIR=t, HVSIM_PARTITION="host")
        vm_env = clean_env()
        vm_env.update(HVSIM_DIR=t, HVSIM_PARTITION="cf-vm")
        host_log = logs / f"qemu-{col}-host.log"
        for old in logs.glob(f"qemu-{col}-*"):
            old.unlink()
        notes = []
        host = guest = backend = None
        tap_lines = []
        guest_rc = -9
        self.say(f"# column {col}: {' '.join(Path(x).name if i == 0 else x for i, x in enumerate(host_cmd))}")
        self.say(f"# guest (QEMU, CID {cid}): {guest_cmd}")
        try:
            backend = self.q.Backend(self.tool("hvsim-vhost"), f"{t}/vhost.sock", cid, vm_env,
                                     logs / f"qemu-{col}-vhost.log")
            with open(host_log, "wb") as hl:
                host = subprocess.Popen(host_cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=hl,
                                        env=host_env, start_new_session=True)
            guest = self.q.Guest(logs, self.image, cmd=guest_cmd, vsock_socket=f"{t}/vhost.sock",
                                 name=f"qemu-{col}-guest", append="hvsim.guest=1",
                                 net=([f"{self.CTL_PORT}-cmd:socat STDIO UNIX-CONNECT:{ctl_path}"], []))
            try:
                backend.start()
                guest.start()
            except self.q.GuestError as e:
                raise TargetError(str(e)) from e
            tap_lines, stopped = self.stream(host.stdout, logs / f"qemu-{col}.tap", guest.proc.poll, "QEMU",
                                             extra_fds=lambda: guest._fds, pump=lambda: guest._pump(time.monotonic()))
            if stopped:
                notes.append(stopped)
                kill_group(host)
            self.wait_host(host, notes)
            try:
                guest_rc = guest.wait_exit(timeout=max(min(self.left(), GUEST_GRACE_S + 20), 1)).code
            except self.q.GuestError as e:
                notes.append(f"the guest did not finish: {e}")
        finally:
            kill_group(host)
            if host is not None and host.stdout:
                host.stdout.close()
            if guest is not None:
                guest.stop()
                self.kernel = self.kernel or self.q.guest_kernel(guest.console)
            if backend is not None:
                rc = backend.stop()
                if rc not in (0, None):
                    notes.append(f"hvsim-vhost exited {rc} (see {backend.log_path})")
        if guest_rc != 0:
            notes.append(f"guest console ({guest.console_log}):\n{tail(guest.console_log)}")
        return self.collect(col, f"qemu-{col}", logs, jsonl, host, host_log, guest_rc, tap_lines, notes)

    def vm_cid(self, name):
        for v in self.ctl("vm", "list"):
            if v.get("name") == name:
                return v["cid"]
        raise TargetError(f"hvsimctl vm list has no VM {name}")


class HypervTarget(Target):
    """A real Hyper-V host. Nothing here can drive one: the user runs the
    agents there (conformance/README.md) and brings host.jsonl back."""
    name = "hyperv"
    columns = ("windows", "hvsock")
    default_columns = ("windows", "hvsock")

    def run(self, cols, out_dir):
        raise TargetError("the hyperv target cannot be run from here: run hvsim-agent on a Hyper-V host and in "
                          "its VM (conformance/README.md, \"The hyperv target\"), copy the host's report back "
                          "and give it with --ingest host.jsonl")


TARGETS = {t.name: t for t in (SimTarget, QemuTarget, HypervTarget)}


# ---- main -------------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Run the hvsim conformance suite against a target and write its reports.",
        epilog="Exit status: 0 no case failed, 1 a case failed, 2 the run could not be made, 130 interrupted.")
    ap.add_argument("--target", choices=sorted(TARGETS), default="sim")
    ap.add_argument("--bin", default=str(DEFAULT_BIN), help="hvsimd, hvsimctl and hvsim-agent (default: build/bin)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="where the reports go (default: build/conformance)")
    ap.add_argument("--columns", help="comma-separated columns (sim: windows,hvsock,virtio)")
    ap.add_argument("--sim-kernel", choices=("6.1", "6.12", "newest"), default="6.1",
                    help="the kernel of the simulator's virtio VM (the sim virtio column; default 6.1)")
    ap.add_argument("--mutant", help="break rule NAME (sim only; a mutant build, make MUTANTS=1): the run should fail")
    ap.add_argument("--pick", action="append", default=[], metavar="ID", help="run only these cases (repeatable)")
    ap.add_argument("--skip", action="append", default=[], metavar="ID", help="skip these cases (repeatable)")
    ap.add_argument("--ingest", action="append", default=[], metavar="FILE.jsonl",
                    help="build the reports from agent --report files instead of running (hyperv, qemu)")
    ap.add_argument("--timeout-scale", type=int, metavar="N", help="passed to both agents (slow builds: sanitizers)")
    ap.add_argument("--deadline", type=float, default=DEADLINE_S, metavar="S",
                    help=f"the whole run's bound, in seconds (default {DEADLINE_S})")
    ap.add_argument("--quiet", action="store_true", help="no TAP while running; the summary and paths at the end")
    ap.add_argument("--vm-dir", help="the guest image for --target qemu (default: build/vm; make vm-image)")
    ap.add_argument("--decision-log", metavar="FILE",
                    help="sim: hvsimd's decision log, one JSON line per bind, listen and connect (hvsimd --log)")
    ap.add_argument("--shard", metavar="I/N", type=parse_shard,
                    help="run the I-th of N shares of the catalogue (CI jobs); report.py --merge joins them")
    a = ap.parse_args(argv)
    if a.shard and a.ingest:
        ap.error("--shard splits a run; --ingest reads finished reports")
    if a.mutant and a.target != "sim":
        ap.error("--mutant applies to the sim target only")
    if a.ingest and (a.pick or a.skip or a.mutant):
        ap.error("--ingest reads finished reports: --pick, --skip and --mutant do not apply")
    if a.ingest and a.target == "sim":
        ap.error("--ingest is for results made elsewhere (--target hyperv or qemu); the sim target runs here")
    return a


def parse_shard(text):
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 2/3, got {text!r}") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"{text}: need 1 <= I <= N")
    return index, count


def main(argv=None):
    opts = parse_args(argv)
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return run(opts)
    except Interrupted as e:
        print(f"run.py: interrupted ({e}); the daemon and the agents were stopped", file=sys.stderr)
        return 130
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run(opts):
    out = Path(opts.out)
    target = TARGETS[opts.target](opts)
    started = time.monotonic()
    try:
        if opts.ingest:
            cases, extra = target.ingest(opts.ingest)
            cols = report.order_columns({c["column"] for c in cases})
        else:
            cols = [c.strip() for c in opts.columns.split(",") if c.strip()] if opts.columns \
                else list(target.default_columns)
            if not cols:
                raise TargetError(f"target {target.name}: give --columns")
            target.check_columns(cols)
            out.mkdir(parents=True, exist_ok=True)
            cases, extra = target.run(cols, out)
    except TargetError as e:
        print(f"run.py: {e}", file=sys.stderr)
        return 2
    extra["generated"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    extra["seconds"] = round(time.monotonic() - started, 1)
    if opts.mutant:
        extra["mutant"] = opts.mutant
    current = report.make_set(target.name, cases, cols, **extra)
    out.mkdir(parents=True, exist_ok=True)
    report.write_results(out / f"results-{target.name}.json", current)
    try:
        sets = report.load_target_sets(out)
    except report.ReportError as e:
        print(f"run.py: warning: {e}; the matrix shows this run only", file=sys.stderr)
        sets = [current]
    paths = report.write_all(out, current, sets)
    failed = report.failures(current)
    if opts.quiet:
        print(f"{target.name}: {report.summary_line(report.matrix_model([current]))}")
        for c in failed:
            print(f"FAIL {c['id']} [{c['column']}]: {report.cell_note(c)}")
    else:
        print()
        print(report.render_text(sets))
    print(f"reports: {paths['results']} {paths['junit']} {paths['ktap']} {paths['matrix.md']} {paths['matrix.html']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
