#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The same guest program under each of hvsim's ways into a program, in
one run: libhvsim called directly ("lib"), the LD_PRELOAD interposer
("interposer", `hvsim-run --interpose`), the seccomp supervisor
("supervisor", `hvsim-run --supervise`) and plain `hvsim-run` ("default": the
supervisor's filters on the tree with the interposer preloaded, so this
dynamically linked program is served in-process and its counters show no
call reaching the supervisor), each figure beside AF_UNIX measured
by the same process moments before; and the tax each mode puts on sockets it
has nothing to do with: TCP connect+accept per second on 127.0.0.1 under each
mode beside a plain run of the same program.

The program is hvsim-modebench (sim/tools/hvsim-modebench.c); its host side
runs on libhvsim. SAFETY: the supervisor's runs serve a stand-in family (250)
with `--serve-family`, under which hvsim-run puts the errno guard for 40 and
34 on the program first, as harness/test_supervisor.py does; the served path
is the same code as for 40. The interposer's runs use family 40 through libc,
which the interposer takes and hvsim-run's filter would refuse (EAFNOSUPPORT)
had it not. The guest refuses --api socket when no seccomp filter is on it.

The TCP runs are made twice: with the program's sockets at low fd numbers (as
most programs have them) and from fd 800 up (--fd-floor), where the
supervisor's filter sends every connect, accept, close and sockopt call to the
supervisor, because it narrows those calls by fd number only (the address
family of an fd is not in the registers a seccomp filter can see).

Used by bench/run.py (the "modes" section of latest.json and the table), or
alone:  /usr/bin/python3 bench/modes.py [--quick] [--bin build/bin] [--out DIR]
"""
import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STANDIN = 250
PORT = 5000
MODES = ["lib", "interposer", "supervisor", "default"]
# Reported beside them, not gated: the same program on libhvsim in an hv_sock
# VM, whose 6-page rings make a small window (hyperv-sockets.md 3.4), beside
# AF_UNIX with the system's buffers. The gated modes run in a virtio VM, whose
# window is the peer's credit (256 KiB): their AF_UNIX sockets get the same
# send buffer (hvsim-modebench --match-buffers; the host side always does).
REPORTED = ["lib-hvsock"]
TCP_MODES = ["plain", "interposer", "supervisor", "default"]
SERVED = ("supervisor", "default")  # the modes with a supervisor, whose counters are kept
HIGH_FD = 800
TPUT_LIMIT = 0.95  # the acceptance: the data path is not intercepted
FULL = {"rounds": 7, "conns": 2000, "pings": 20000, "bytes": 512 << 20, "slices": 16, "tcp_conns": 5000}
QUICK = {"rounds": 1, "conns": 100, "pings": 500, "bytes": 8 << 20, "slices": 2, "tcp_conns": 200}
TIMEOUT = 300


class ModesError(Exception):
    pass


def clean_env():
    e = dict(os.environ)
    for k in ("HVSIM_DIR", "HVSIM_PARTITION", "LD_PRELOAD", "HVSIM_PRELOAD_LOG"):
        e.pop(k, None)
    return e


def start_daemon(binary, run_dir):
    """hvsimd with --ready-fd: READY=1 then EOF, or EOF alone (it died)."""
    r, w = os.pipe()
    log = open(Path(run_dir) / "hvsimd.log", "ab")
    proc = subprocess.Popen([str(binary), "--dir", run_dir, "--state-dir", "", "--ready-fd", str(w)], pass_fds=(w,),
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=clean_env())
    os.close(w)
    log.close()
    got, deadline = b"", time.monotonic() + 30
    try:
        while time.monotonic() < deadline and select.select([r], [], [], deadline - time.monotonic())[0]:
            chunk = os.read(r, 256)
            if not chunk:
                break
            got += chunk
    finally:
        os.close(r)
    if b"READY=1" not in got:
        proc.kill()
        proc.wait()
        raise ModesError(f"hvsimd did not get ready (log {run_dir}/hvsimd.log)")
    return proc


def cpus():
    """The host side on one CPU and the guest (with its launcher and, under
    the supervisor, the supervisor) on another, as hvsim-bench places its
    peers: left to itself the scheduler may keep a pair on one CPU for
    seconds, which changes a round trip more than any mode does. hvsimd is
    not pinned. None on a single CPU."""
    have = sorted(os.sched_getaffinity(0))
    return (have[0], have[1]) if len(have) >= 2 else (None, None)


def pinned(cpu):
    return None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))


class World:
    """An hvsimd with vm1, and the modebench host serving on it."""

    def __init__(self, bindir):
        self.bin = Path(bindir)
        self.dir = tempfile.mkdtemp(prefix="hvsim-modes-", dir="/tmp")
        self.unix = os.path.join(self.dir, "af_unix.sock")
        self.daemon = self.host = None
        self.host_cpu, self.guest_cpu = cpus()

    def env(self, partition):
        e = clean_env()
        e["HVSIM_DIR"], e["HVSIM_PARTITION"] = self.dir, partition
        return e

    def __enter__(self):
        self.daemon = start_daemon(self.bin / "hvsimd", self.dir)
        for args in (["vm", "add", "vm1", "--transport", "virtio", "--kernel", "6.12"],
                     ["vm", "add", "vm2", "--transport", "hv_sock", "--kernel", "6.12"],
                     ["service", "add", str(PORT), "modebench"]):
            r = subprocess.run([str(self.bin / "hvsimctl"), "--dir", self.dir] + args, capture_output=True, text=True,
                               timeout=60, env=clean_env())
            if r.returncode != 0:
                raise ModesError(f"hvsimctl {' '.join(args)}: {r.stderr.strip()}")
        self.host = subprocess.Popen([str(self.bin / "hvsim-modebench"), "serve", "--port", str(PORT), "--unix",
                                      self.unix], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                                     env=self.env("host"), preexec_fn=pinned(self.host_cpu))
        if self.host.stdout.readline().strip() != "ready":
            raise ModesError("the modebench host did not start (its message is above)")
        return self

    def __exit__(self, *exc):
        for p in (self.host, self.daemon):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.host is not None:
            self.host.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def launcher(self, mode, stats=None):
        """The words before the program for a mode."""
        run = [str(self.bin / "hvsim-run"), "--vm", "vm1", "--dir", self.dir]
        if mode == "interposer":
            return run + ["--interpose", "--"]
        if mode == "supervisor":
            return run + ["--supervise", "--serve-family", str(STANDIN)] + (["--stats", str(stats)] if stats else []) + ["--"]
        if mode == "default":
            return run + (["--stats", str(stats)] if stats else []) + ["--"]
        return []

    def run(self, argv, env, what):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, env=env, stdin=subprocess.DEVNULL,
                           preexec_fn=pinned(self.guest_cpu))
        if r.returncode != 0:
            raise ModesError(f"{what} failed (exit {r.returncode}): {r.stderr.strip()[-2000:]}")
        return json.loads(r.stdout)

    def guest(self, mode, cfg, stats=None):
        prog = [str(self.bin / "hvsim-modebench"), "guest", "--port", str(PORT), "--unix", self.unix,
                "--conns", str(cfg["conns"]), "--pings", str(cfg["pings"]), "--bytes", str(cfg["bytes"]), "--slices", str(cfg["slices"])]
        if mode == "lib-hvsock":
            prog += ["--api", "lib", "--family", "40"]
            return self.run(prog, self.env("vm2"), "the guest on libhvsim in the hv_sock VM")
        prog.append("--match-buffers")
        if mode == "lib":
            prog += ["--api", "lib", "--family", "40"]
        else:
            prog += ["--api", "socket", "--family", str(STANDIN if mode == "supervisor" else 40)]
        return self.run(self.launcher(mode, stats) + prog, self.env("vm1"), f"the guest under {mode}")

    def tcp(self, mode, cfg, floor, stats=None):
        prog = [str(self.bin / "hvsim-modebench"), "tcp", "--conns", str(cfg["tcp_conns"]), "--fd-floor", str(floor)]
        return self.run(self.launcher(mode, stats) + prog, self.env("vm1"), f"TCP under {mode}")


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": values}


def read_stats(path):
    """The supervisor's per-call counters: {syscall number: count}."""
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            nr, n = line.split()
            out[int(nr)] = int(n)
    return out


FIGS = {"connrate": "conn/s", "rtt1_p50_us": "us", "rtt1_p99_us": "us", "tput64k_mib_s": "MiB/s"}


def measure(bindir, cfg, say=print):
    """Every figure, rounds interleaved (each round runs every mode once, the
    order turned by one each round so no mode always goes first)."""
    raw = {m: [] for m in MODES + REPORTED}
    tcp = {(m, f): [] for m in TCP_MODES for f in (0, HIGH_FD)}
    notes = {}
    with World(bindir) as w:
        for rnd in range(cfg["rounds"]):
            k = rnd % len(MODES)
            for m in MODES[k:] + MODES[:k] + REPORTED:
                st = Path(w.dir) / f"stats-{m}-{rnd}" if m in SERVED else None
                raw[m].append(w.guest(m, cfg, st))
                if st is not None:
                    notes.setdefault(f"{m}_calls_guest", read_stats(st))
            k = rnd % len(TCP_MODES)
            for m in TCP_MODES[k:] + TCP_MODES[:k]:
                for floor in (0, HIGH_FD):
                    st = Path(w.dir) / f"stats-tcp-{m}-{floor}-{rnd}" if m in SERVED else None
                    tcp[(m, floor)].append(w.tcp(m, cfg, floor, st)["tcp_connrate"])
                    if st is not None:
                        notes.setdefault(f"{m}_calls_tcp_fd{floor}", read_stats(st))
            say(f"modes: round {rnd + 1}/{cfg['rounds']} done")
    return raw, tcp, notes


def build(raw, tcp, notes, cfg):
    host_cpu, guest_cpu = cpus()
    doc = {"config": dict(cfg, standin_family=STANDIN, high_fd=HIGH_FD, host_cpu=host_cpu, guest_cpu=guest_cpu), "vsock": {}, "tcp": {}, "acceptance": [],
           "supervisor_calls": notes}
    for m in MODES + [r for r in REPORTED if raw.get(r)]:
        runs = raw[m]
        entry = {"buffers": {"host_rcvbuf": runs[0]["vsock"]["host_rcvbuf"], "host_sndbuf": runs[0]["vsock"]["host_sndbuf"],
                             "af_unix_host_rcvbuf": runs[0]["af_unix"]["host_rcvbuf"],
                             "af_unix_host_sndbuf": runs[0]["af_unix"]["host_sndbuf"]}}
        for f, unit in FIGS.items():
            # Connection rate and throughput: each round's median of its slice
            # pairs' ratios (hvsim-modebench); the round trips: p50 / p50.
            ratios = [r["slice_ratio"][f] if f in r["slice_ratio"] else r["vsock"][f] / r["af_unix"][f] for r in runs]
            entry[f] = {"unit": unit, "vsock": summary([r["vsock"][f] for r in runs]),
                        "af_unix": summary([r["af_unix"][f] for r in runs]), "ratio": summary(ratios)}
        doc["vsock"][m] = entry
        if m in REPORTED:
            continue
        r = entry["tput64k_mib_s"]["ratio"]["median"]
        doc["acceptance"].append({"check": f"{m}: 64 KiB throughput >= {TPUT_LIMIT}x AF_UNIX", "ratio": r,
                                  "limit": TPUT_LIMIT, "met": r >= TPUT_LIMIT})
    for floor in (0, HIGH_FD):
        plain = tcp[("plain", floor)]
        for m in TCP_MODES:
            v = tcp[(m, floor)]
            doc["tcp"][f"{m}.fd{floor}"] = {"unit": "conn/s", "value": summary(v),
                                            "ratio": summary([a / b for a, b in zip(v, plain)])}
    return doc


def table_lines(doc):
    lines = ["modes: one guest program under libhvsim, the interposer, the supervisor and the default mode; "
             "vsock / AF_UNIX ratio "
             "(same process, same run)",
             f"{'mode':<11} {'conn/s':>9} {'ratio':>6} {'rtt1 p50 us':>12} {'ratio':>6} {'rtt1 p99 us':>12} "
             f"{'64KiB MiB/s':>12} {'ratio':>6}"]
    for m, e in doc["vsock"].items():
        lines.append(f"{m:<11} {e['connrate']['vsock']['median']:>9.0f} {e['connrate']['ratio']['median']:>6.2f} "
                     f"{e['rtt1_p50_us']['vsock']['median']:>12.1f} {e['rtt1_p50_us']['ratio']['median']:>6.2f} "
                     f"{e['rtt1_p99_us']['vsock']['median']:>12.1f} "
                     f"{e['tput64k_mib_s']['vsock']['median']:>12.0f} {e['tput64k_mib_s']['ratio']['median']:>6.3f}")
    lines.append(f"TCP connect+accept on 127.0.0.1 per second, each mode / plain (fd numbers from 0 and from "
                 f"{doc['config']['high_fd']}):")
    for k, e in doc["tcp"].items():
        lines.append(f"  {k:<18} {e['value']['median']:>9.0f} conn/s  ratio {e['ratio']['median']:.3f} "
                     f"[{e['ratio']['min']:.2f}..{e['ratio']['max']:.2f}]")
    for k, calls in doc["supervisor_calls"].items():
        lines.append(f"  {k}: " + (", ".join(f"nr {nr}: {n}" for nr, n in sorted(calls.items())) or "none"))
    for a in doc["acceptance"]:
        lines.append(f"  {'met    ' if a['met'] else 'NOT MET'}  {a['check']:<48} ratio {a['ratio']:.3f}")
    return lines


def run(bindir, quick=False, rounds=None, say=print):
    cfg = dict(QUICK if quick else FULL)
    if rounds:
        cfg["rounds"] = rounds
    for b in ("hvsimd", "hvsimctl", "hvsim-run", "hvsim-modebench"):
        if not os.access(Path(bindir) / b, os.X_OK):
            raise ModesError(f"{Path(bindir) / b} missing: build it first (make all)")
    raw, tcp, notes = measure(bindir, cfg, say)
    return build(raw, tcp, notes, cfg)


def main():
    ap = argparse.ArgumentParser(description="The guest program under each hvsim mode, and the TCP tax.")
    ap.add_argument("--bin", default=os.environ.get("HVSIM_BIN") or str(REPO / "build" / "bin"))
    ap.add_argument("--quick", action="store_true", help="one short round (a smoke test)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--out", help="write modes.json here")
    args = ap.parse_args()
    try:
        doc = run(args.bin, args.quick, args.rounds)
    except (ModesError, subprocess.TimeoutExpired) as e:
        print(f"bench/modes.py: {e}", file=sys.stderr)
        sys.exit(1)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "modes.json").write_text(json.dumps(doc, indent=1) + "\n")
    print("\n".join(table_lines(doc)))


if __name__ == "__main__":
    main()
