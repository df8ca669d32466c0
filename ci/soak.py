#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""make soak MINUTES=N: checksummed streams under random faults.

    soak.py --bin DIR --out DIR [--minutes N] [--streams K] [--seed S]

hvsimd runs with two classic VMs and a host echo service (hvsim-soak serve);
vm1 and vm2 each run a driver of K/2 streams (hvsim-soak drive) that send
frames of random sizes and check every echo. Every few seconds a fault fires,
drawn at random:

  daemon-kill     SIGKILL hvsimd and start another on the same folder  (must cut nothing)
  daemon-stop     SIGSTOP hvsimd for 0.5 s, then SIGCONT                (must cut nothing)
  service-rm-add  the service unregistered and registered again       (must cut nothing)
  vm-pause        vm1 paused for 0.3 s                                  (cuts vm1's streams)
  vm-reset        vm1 reset                                             (cuts vm1's streams)
  vm-off-start    vm1 off, then started                                 (cuts vm1's streams)
  peer-kill       vm1's driver killed and started again                 (cuts its streams)
  disk-full       the state disk filled: admin changes must fail with   (must cut nothing)
                  ENOSPC and change nothing, and after it clears and a
                  daemon restart nothing acknowledged is lost (as root
                  only: the state folder is a 64 KiB tmpfs mounted in a
                  private mount namespace, unshare -m, that soak.py
                  enters by running itself again under unshare)

vm2 is never faulted on its own, so any vm2 stream that ends before its time
was cut by a fault that must cut nothing; so is a vm1 stream whose last
fault before the cut is one of the first three. Every second the host
service's and hvsimd's descriptors and memory are sampled.

Pass: no corrupted or reordered frame, no stream cut by a fault that must
cut nothing, the host service holds as many descriptors at the end as at the
start, and its memory grows less than 5% after the first third of the run.
Writes soak.json, soak.txt and soak.png (if matplotlib is there) under --out;
exits 1 when it does not pass. Standard library only, and /usr/bin/python3.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORT = 7777
MUST_NOT_CUT = {"daemon-kill", "daemon-stop", "service-rm-add", "disk-full"}
FAULTS = ["daemon-kill", "daemon-stop", "service-rm-add", "vm-pause", "vm-reset", "vm-off-start", "peer-kill"]
NS_ENV = "HVSIM_SOAK_NS"  # set once soak.py runs in its own mount namespace
STATE_BYTES = 64 * 1024
CUT_WINDOW_S = 10.0  # a cut is laid to the last fault at most this long before it (a loaded machine is slow)


def mono_ms():
    return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1000)


class World:
    def __init__(self, bin_dir, run_dir, minutes, streams):
        self.bin = Path(bin_dir)
        self.dir = run_dir
        self.seconds = max(10, int(minutes * 60))
        self.streams = streams
        self.daemon = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HVSIM_")}
        self.env["HVSIM_DIR"] = run_dir
        self.log = open(Path(run_dir) / "hvsimd.log", "ab")
        self.disk_problems = []  # what the disk-full phase found wrong
        self.disk_phases = 0

    def start_daemon(self):
        r, w = os.pipe()
        self.daemon = subprocess.Popen([str(self.bin / "hvsimd"), "--dir", self.dir, "--ready-fd", str(w)],
                                       env=self.env, pass_fds=(w,), stdout=self.log, stderr=self.log)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            if not f.read():
                raise SystemExit(f"soak: hvsimd did not get ready (see {self.dir}/hvsimd.log)")

    def vm_state(self, name):
        r = subprocess.run([str(self.bin / "hvsimctl"), "--json", "vm", "list"], env=self.env, capture_output=True,
                           text=True, timeout=60)
        try:
            return next((v["state"] for v in json.loads(r.stdout) if v["name"] == name), None)
        except ValueError:
            return None

    def ctl(self, *args, leaves=None):
        """hvsimctl; a loaded machine may refuse once (a deadline): up to three tries. An operation that is
        not idempotent (pause, resume) may have taken effect although its answer came too late: with
        leaves=(vm, state), a try that finds the VM in that state is done. Every failed try is reported."""
        errors = []
        for attempt in range(3):
            r = subprocess.run([str(self.bin / "hvsimctl"), *args], env=self.env, capture_output=True, text=True,
                               timeout=60)
            if r.returncode == 0:
                break
            errors.append(f"try {attempt + 1}: exit {r.returncode}: {r.stderr.strip()}")
            if leaves is not None and self.vm_state(leaves[0]) == leaves[1]:
                break
            time.sleep(0.5)
        else:
            vms = subprocess.run([str(self.bin / "hvsimctl"), "vm", "list"], env=self.env, capture_output=True,
                                 text=True, timeout=60)
            raise SystemExit(f"soak: hvsimctl {' '.join(args)} failed:\n  " + "\n  ".join(errors) +
                             f"\nvm list:\n{vms.stdout}{vms.stderr}")
        for e in errors:
            print(f"soak: note: hvsimctl {' '.join(args)}: {e} (it took effect)", file=sys.stderr)

    def ctl_once(self, *args):
        return subprocess.run([str(self.bin / "hvsimctl"), *args], env=self.env, capture_output=True, text=True,
                              timeout=60)

    def registry(self):
        """What the admin changes acknowledged so far decide: the VMs (name, ID, kind) and the services."""
        vms = json.loads(self.ctl_once("--json", "vm", "list").stdout)
        svcs = json.loads(self.ctl_once("--json", "service", "list").stdout)
        return sorted((v["name"], v["id"], v["kind"]) for v in vms), sorted(json.dumps(x, sort_keys=True) for x in svcs)

    def spawn(self, argv, partition):
        env = dict(self.env, HVSIM_PARTITION=partition)
        # Its stderr is kept: a sanitizer's report, or why it died, is what the run must show.
        self.nspawned = getattr(self, "nspawned", 0) + 1
        err = open(Path(self.dir) / f"{argv[0]}-{argv[1]}-{partition}-{self.nspawned}.err", "wb")
        p = subprocess.Popen([str(self.bin / argv[0]), *argv[1:]], env=env, stdout=subprocess.PIPE, stderr=err,
                             text=True)
        err.close()
        return p

    def driver(self, vm, seconds):
        return self.spawn(["hvsim-soak", "drive", str(PORT), str(max(1, self.streams // 2)), str(seconds)], vm)


SANITIZER_MARKS = (b"WARNING: ThreadSanitizer", b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer", b"runtime error:")


def sanitizer_reports(run_dir, out):
    """The spawned programs' stderr files that hold a sanitizer's report, copied to out; their names."""
    found = []
    for f in sorted(Path(run_dir).glob("*.err")) + [Path(run_dir) / "hvsimd.log"]:
        try:
            data = f.read_bytes()
        except OSError:
            continue
        if any(m in data for m in SANITIZER_MARKS):
            shutil.copy(f, Path(out) / f.name)
            found.append(f.name)
    return found


def proc_sample(pid):
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        rss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        return fds, rss
    except OSError:
        return None, None


def state_tmpfs(run_dir):
    """The state folder as a 64 KiB tmpfs (we are in a private mount
    namespace: nobody else sees it, and it goes with the last process)."""
    state = Path(run_dir) / "state"
    state.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={STATE_BYTES},mode=0700", "tmpfs", str(state)], check=True)
    return state


def disk_full(w):
    """Fill the state disk; admin changes must fail with ENOSPC and change
    nothing; once it clears, a daemon restart must show exactly what was
    acknowledged, and the refused change must then go through."""
    state = Path(w.dir) / "state"
    before = w.registry()
    filler = state / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError:
        pass  # ENOSPC: the disk is full
    finally:
        os.close(fd)
    changes = [("vm", "add", "vmfull"), ("service", "add", "7778", "full"), ("service", "rm", str(PORT))]
    for cmd in changes:
        r = w.ctl_once(*cmd)
        if r.returncode == 0 or "No space left" not in r.stderr:
            w.disk_problems.append(f"hvsimctl {' '.join(cmd)} on a full disk: exit {r.returncode}, {r.stderr.strip()}")
    if w.registry() != before:
        w.disk_problems.append("a change refused with ENOSPC took effect")
    filler.unlink()
    w.daemon.kill()
    w.daemon.wait()
    w.start_daemon()
    if w.registry() != before:
        w.disk_problems.append("after the disk cleared and a restart, the registry is not what was acknowledged")
    for cmd, undo in ((changes[0], ("vm", "rm", "vmfull")), (changes[1], ("service", "rm", "7778"))):
        r = w.ctl_once(*cmd)
        if r.returncode != 0:
            w.disk_problems.append(f"hvsimctl {' '.join(cmd)} after the disk cleared: {r.stderr.strip()}")
        w.ctl(*undo)
    w.disk_phases += 1


def fire(w, fault, drivers, rng):
    if fault == "disk-full":
        disk_full(w)
    elif fault == "daemon-kill":
        w.daemon.kill()
        w.daemon.wait()
        w.start_daemon()
    elif fault == "daemon-stop":
        w.daemon.send_signal(signal.SIGSTOP)
        time.sleep(0.5)
        w.daemon.send_signal(signal.SIGCONT)
    elif fault == "service-rm-add":
        w.ctl("service", "rm", str(PORT))
        w.ctl("service", "add", str(PORT), "soak")
    elif fault == "vm-pause":
        w.ctl("vm", "pause", "vm1", leaves=("vm1", "paused"))
        time.sleep(0.3)
        w.ctl("vm", "resume", "vm1", leaves=("vm1", "running"))
    elif fault == "vm-reset":
        w.ctl("vm", "reset", "vm1")
    elif fault == "vm-off-start":
        w.ctl("vm", "off", "vm1", leaves=("vm1", "off"))
        time.sleep(0.2)
        w.ctl("vm", "start", "vm1", leaves=("vm1", "running"))
    elif fault == "peer-kill":
        old = drivers["vm1"]
        old.kill()
        drivers["dead"].append(old)
        left = max(1, int(w.end - time.monotonic()))
        drivers["vm1"] = w.driver("vm1", left)


def judge(streams, faults):
    """Each cut stream, laid to the last fault before it: one that began before the cut and ended (its
    commands returned) at most CUT_WINDOW_S before it. A fault's effect may come at any time while it runs
    (a loaded machine once took 13 s over an off and start), so the window counts from its end."""
    cuts = []
    for s in streams:
        if s["end"] == "ok":
            continue
        before = [f for f in faults if f["ms"] <= s["end_ms"] + 200 and
                  s["end_ms"] - f.get("end_ms", f["ms"]) <= CUT_WINDOW_S * 1000]
        cause = before[-1]["fault"] if before else None
        bad = s["vm"] == "vm2" or cause is None or cause in MUST_NOT_CUT
        if s["vm"] == "vm1" and cause == "peer-kill":
            bad = False
        cuts.append(dict(s, cause=cause, unexpected=bad))
    return cuts


def run(a):
    run_dir = tempfile.mkdtemp(prefix="hvsim-soak-", dir="/tmp")
    faults_drawn = FAULTS + (["disk-full"] if os.environ.get(NS_ENV) else [])
    if os.environ.get(NS_ENV):
        state_tmpfs(run_dir)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(a.seed)
    w = World(a.bin, run_dir, a.minutes, a.streams)
    drivers = {"dead": []}
    samples, faults = [], []
    server = None
    try:
        w.start_daemon()
        for vm in ("vm1", "vm2"):
            w.ctl("vm", "add", vm)
        w.ctl("service", "add", str(PORT), "soak")
        if "disk-full" in faults_drawn:
            disk_full(w)  # at least once a run, before the streams, then at random among the others
        server = w.spawn(["hvsim-soak", "serve", str(PORT)], "host")
        if server.stdout.readline().strip() != "listening":
            raise SystemExit("soak: the host service did not start")
        time.sleep(0.2)
        fds0, rss0 = proc_sample(server.pid)
        w.end = time.monotonic() + w.seconds
        for vm in ("vm1", "vm2"):
            drivers[vm] = w.driver(vm, w.seconds)
        t0 = time.monotonic()
        next_fault = t0 + 2 + rng.random() * 2
        while time.monotonic() < w.end - 1.5:
            now = time.monotonic()
            fds, rss = proc_sample(server.pid)
            dfds, drss = proc_sample(w.daemon.pid)
            samples.append({"t": round(now - t0, 2), "server_fds": fds, "server_rss_kb": rss, "daemon_fds": dfds,
                            "daemon_rss_kb": drss})
            if now >= next_fault:
                fault = rng.choice(faults_drawn)
                faults.append({"ms": mono_ms(), "t": round(now - t0, 2), "fault": fault})
                print(f"  {now - t0:6.1f} s  {fault}", flush=True)
                fire(w, fault, drivers, rng)
                faults[-1]["end_ms"] = mono_ms()
                next_fault = time.monotonic() + 2 + rng.random() * 2
            time.sleep(0.25)
        streams = []
        for vm in ("vm1", "vm2"):
            for p in [drivers[vm]] + (drivers["dead"] if vm == "vm1" else []):
                try:
                    text, _ = p.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    text, _ = p.communicate()
                for line in (text or "").splitlines():
                    try:
                        streams.append(dict(json.loads(line), vm=vm))
                    except ValueError:
                        pass
        time.sleep(0.5)  # the echo threads see their streams end
        fds1, rss1 = proc_sample(server.pid)
        server_rc = server.poll()  # None: still serving, as it must be
        third = [s for s in samples if s["t"] >= w.seconds / 3 and s["server_rss_kb"]]
        rss_ref = third[0]["server_rss_kb"] if third else rss0
    finally:
        for p in [server, drivers.get("vm1"), drivers.get("vm2")] + drivers["dead"]:
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        if w.daemon is not None and w.daemon.poll() is None:
            w.daemon.send_signal(signal.SIGCONT)
            w.daemon.terminate()
            try:
                w.daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                w.daemon.kill()
        reports = sanitizer_reports(run_dir, out)
        shutil.rmtree(run_dir, ignore_errors=True)
    cuts = judge(streams, faults)
    unexpected = [c for c in cuts if c["unexpected"]]
    errors = {}
    for c in cuts:
        errors[c["end"]] = errors.get(c["end"], 0) + 1
    growth = (rss1 - rss_ref) / rss_ref if rss_ref else 0.0
    report = {
        "schema": "hvsim-soak/1", "seconds": w.seconds, "streams_wanted": a.streams, "seed": a.seed,
        "streams": len(streams), "bytes": sum(s["bytes"] for s in streams),
        "frames": sum(s["frames"] for s in streams),
        "corrupted": sum(s["corrupted"] for s in streams), "reordered": sum(s["reordered"] for s in streams),
        "faults": faults, "cuts": len(cuts), "unexpected_cuts": unexpected, "errors_by_kind": errors,
        "disk_full_phases": w.disk_phases, "disk_full_problems": w.disk_problems, "server_fds": [fds0, fds1], "server_rss_kb": [rss_ref, rss1], "server_rss_growth": round(growth, 4),
        "samples": samples,
    }
    failures = []
    if report["corrupted"] or report["reordered"]:
        failures.append(f"{report['corrupted']} corrupted and {report['reordered']} reordered frames")
    if unexpected:
        failures.append(f"{len(unexpected)} streams cut by a fault that must cut nothing")
    if fds0 != fds1:
        failures.append(f"the host service held {fds0} descriptors at the start and {fds1} at the end")
    # A sanitizer's runtime keeps history and shadow memory that grow on their own: reported, not judged.
    if growth >= 0.05 and not a.sanitizer:
        failures.append(f"the host service's memory grew {growth:.1%} after the first third")
    failures += [f"disk full: {p}" for p in w.disk_problems]
    if server_rc is not None:
        failures.append(f"the host service exited early (status {server_rc})")
    failures += [f"a sanitizer reported in {r} (kept in {out})" for r in reports]
    if report["streams"] == 0 or report["frames"] == 0:
        failures.append("no stream carried a frame")
    report["pass"] = not failures
    report["failures"] = failures
    (out / "soak.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [f"soak: {w.seconds} s, {report['streams']} streams, {report['frames']} frames, "
             f"{report['bytes'] / 1e6:.1f} MB checked; {report['corrupted']} corrupted, {report['reordered']} reordered",
             f"faults: {', '.join(f['fault'] for f in faults) or 'none'}",
             f"cuts: {len(cuts)} ({', '.join(f'{k} {v}' for k, v in sorted(errors.items())) or 'none'}); "
             f"unexpected: {len(unexpected)}",
             f"host service: descriptors {fds0} -> {fds1}, memory {rss_ref} -> {rss1} kB ({growth:+.1%})",
             f"disk full ({STATE_BYTES // 1024} KiB tmpfs): {w.disk_phases} phases, "
             + (f"{len(w.disk_problems)} problems" if w.disk_phases else "not run (needs root for unshare -m)")]
    for c in unexpected[:10]:
        at = (c["end_ms"] - faults[0]["ms"]) / 1000 + faults[0]["t"] if faults else 0
        lines.append(f"  unexpected: {c['vm']} stream {c['stream']} ended {c['end']} at {at:.1f} s (last fault before: "
                     f"{c['cause']})")
    lines.append("PASS" if report["pass"] else "FAIL: " + "; ".join(failures))
    (out / "soak.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    chart(out, samples, faults)
    return 0 if report["pass"] else 1


def chart(out, samples, faults):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    t = [s["t"] for s in samples]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    ax1.plot(t, [s["server_fds"] for s in samples], label="host service")
    ax1.plot(t, [s["daemon_fds"] for s in samples], label="hvsimd")
    ax1.set_ylabel("descriptors")
    ax1.legend(loc="upper left")
    ax2.plot(t, [s["server_rss_kb"] for s in samples], label="host service")
    ax2.plot(t, [s["daemon_rss_kb"] for s in samples], label="hvsimd")
    ax2.set_ylabel("RSS (kB)")
    ax2.set_xlabel("seconds")
    ax2.legend(loc="upper left")
    for f in faults:
        for ax in (ax1, ax2):
            ax.axvline(f["t"], color="grey", alpha=0.3)
    fig.suptitle("hvsim soak: descriptors and memory (grey: faults)")
    fig.tight_layout()
    fig.savefig(out / "soak.png", dpi=80)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="folder of hvsimd, hvsimctl and hvsim-soak")
    ap.add_argument("--out", required=True, help="folder for soak.json, soak.txt, soak.png")
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--sanitizer", default="", help="the build's sanitizer (make SANITIZE=...): memory is then "
                    "reported, not judged")
    a = ap.parse_args()
    if a.minutes <= 0 or not 2 <= a.streams <= 256:
        ap.error("--minutes must be > 0 and --streams 2..256")
    if os.geteuid() == 0 and not os.environ.get(NS_ENV) and shutil.which("unshare"):
        # Again in a private mount namespace, for the disk-full phase's tmpfs.
        os.environ[NS_ENV] = "1"
        os.execv(shutil.which("unshare"), ["unshare", "-m", "--propagation", "private", sys.executable,
                                           *sys.argv])
    sys.exit(run(a))


if __name__ == "__main__":
    main()
