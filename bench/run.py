#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Runs the stream-core benchmarks of one target and writes the report.

Two kinds of figure, measured differently on purpose:

- wall-clock figures (throughput, round trip, connection rate, scale) come from
  `hvsim-bench --json`, which runs every figure for the subject transport and
  its same-run baselines (AF_UNIX, TCP on 127.0.0.1, memcpy) in interleaved
  rounds. They are kept as ratios to the baseline, because the absolute numbers
  depend on the machine and the moment;
- count figures (user-space instructions under callgrind, system calls under
  strace, both across hvsimd and the two peers) come from `hvsim-bench count`,
  a fixed workload. Each is run at two sizes and the difference divided by the
  difference in operations, so start-up, attach and daemon set-up cancel out
  and what is left is the cost of one more message or one more connection.
  These do not depend on a clock, so CI can gate on them.

A full run also measures one guest program under each of hvsim's modes
(libhvsim, the interposer, the supervisor) and their tax on TCP sockets
(bench/modes.py): the "modes" section of latest.json and the end of the table.

Writes OUT/latest.json (schema hvsim-bench/1), OUT/table.txt, and for a full
run the charts (OUT/*.png) and OUT/report.html; prints the table.

    /usr/bin/python3 bench/run.py                 # full: `make bench`
    /usr/bin/python3 bench/run.py --ci            # reduced and fast: `make bench-ci`
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SCHEMA = "hvsim-bench/1"
REPO = Path(__file__).resolve().parent.parent

# The subject transport of each target and the baselines measured beside it.
# The qemu target (bench/qemu_target.py) measures a guest over vsock beside TCP
# over QEMU's user network; a Hyper-V host is not reachable from here.
TARGETS = {"simulator": "hvsim", "qemu": "vsock"}
BASELINES = ["af_unix", "tcp", "memcpy"]
RATIO_TO = "af_unix"  # the same kind of kernel stream the simulator is built on

FULL = {
    "rounds": 7,
    "seconds": 0.2,
    "args": ["all", "flood"],
}
# CI: a handful of wall-clock figures (reported, never gated) and every count
# figure (gated), well under a minute.
CI = {
    "rounds": 3,
    "seconds": 0.05,
    "args": ["throughput", "rtt", "connrate", "scale", "memcpy", "--sizes", "64,65536", "--dirs", "h2g",
             "--rtt-sizes", "1", "--streams", "100"],
}

# Fixed workloads: (ops of the small run, ops of the large run). bytes: that
# many messages each way; conn: that many connections (multiples of 100).
COUNT_OPS = {"bytes": (1000, 3000), "conn": (100, 300)}
COUNT_SIZE = 4096  # message size of the bytes workload
COUNT_TRANSPORTS = ["hvsim", "af_unix", "tcp"]
COUNT_TRANSPORTS_CI = ["hvsim", "af_unix"]  # TCP's counts never change with hvsim; CI saves the time

# Which wall-clock figures the regression check gates on (the others are shown).
UNGATED_SUFFIXES = (".p99.9", ".max")


def die(msg):
    print(f"bench/run.py: {msg}", file=sys.stderr)
    sys.exit(2)


def stats(values):
    """median, min, max and the relative spread (max - min) / median."""
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    spread = (hi - lo) / abs(med) if med else (0.0 if hi == lo else float("inf"))
    return {"median": med, "min": lo, "max": hi, "spread": spread, "rounds": list(values)}


def classify(kind):
    if kind in ("memory", "fds"):
        return "resource"
    if kind in ("instructions", "syscalls"):
        return "count"
    return "wallclock"


def gate_of(name, kind, params):
    if kind == "fds":
        return "fds"
    if kind == "memory":
        # Page granularity makes a per-connection figure of a few streams
        # meaningless; from 100 streams on it is stable.
        return "memory" if params.get("streams", 0) >= 100 and "client" in name else "none"
    if name.endswith(UNGATED_SUFFIXES) or name == "memcpy":
        return "none"
    return "noise"


# ---- wall-clock ---------------------------------------------------------------------------------

def run_wallclock(tool, cfg, out, env):
    raw = out / "raw" / "wallclock.json"
    cmd = [str(tool), "--rounds", str(cfg["rounds"]), "--seconds", str(cfg["seconds"]), "--json", str(raw)]
    cmd += cfg["args"]
    print("$ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        die(f"hvsim-bench failed (exit {r.returncode}); its message is above")
    with open(raw) as f:
        doc = json.load(f)
    if doc.get("schema") != "hvsim-bench-raw/1":
        die(f"{raw}: unexpected schema {doc.get('schema')!r}")
    return doc


def build_wallclock(raw_figs, subject):
    figs = {}
    memcpy = next((f for f in raw_figs if f["name"] == "memcpy"), None)
    for rf in raw_figs:
        kind = rf["kind"]
        fig = {
            "class": classify(kind),
            "kind": kind,
            "unit": rf["unit"],
            "better": rf["better"],
            "params": rf["params"],
            "values": {t: stats(v) for t, v in rf["values"].items()},
            "ratio_to": RATIO_TO,
            "ratios": {},
            "gate": gate_of(rf["name"], kind, rf["params"]),
        }
        sv = rf["values"].get(subject)
        if sv and fig["class"] == "wallclock":
            for base in ("af_unix", "tcp"):
                bv = rf["values"].get(base)
                if bv and len(bv) == len(sv) and all(bv):
                    # Round i of the subject ran right beside round i of the
                    # baseline, so the ratio is taken round by round.
                    fig["ratios"][base] = stats([s / b for s, b in zip(sv, bv)])
            if kind in ("throughput", "scale") and memcpy:
                m = statistics.median(memcpy["values"]["memcpy"])
                fig["ratios"]["memcpy"] = stats([s / m for s in sv])
        elif sv and fig["class"] == "resource":
            bv = rf["values"].get(RATIO_TO)
            if bv and statistics.median(bv) > 0:
                fig["ratios"][RATIO_TO] = stats([s / b for s, b in zip(sv, bv)])
        if not fig["ratios"]:
            fig["ratio_to"] = None
            if fig["gate"] == "noise":
                fig["gate"] = "none"
        figs[rf["name"]] = fig
    return figs


# ---- counts -------------------------------------------------------------------------------------

def count_cmd(tool, mode, transport, ops):
    return [str(tool), "count", "--mode", mode, "--transport", transport, "--ops", str(ops),
            "--size", str(COUNT_SIZE)]


def run_checked(cmd, env, what):
    r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=600)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).splitlines()[-15:])
        raise RuntimeError(f"{what} failed (exit {r.returncode}):\n$ {' '.join(cmd)}\n{tail}")
    return r


def callgrind_run(tool, mode, transport, ops, work, env):
    """User-space instructions of the host process, the guest and hvsimd."""
    d = Path(tempfile.mkdtemp(prefix=f"cg-{mode}-{transport}-{ops}-", dir=work))
    cmd = ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={d}/cg.%p"]
    p = subprocess.Popen(cmd + count_cmd(tool, mode, transport, ops), env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    so, se = p.communicate(timeout=600)
    if p.returncode != 0:
        tail = "\n".join((so + se).splitlines()[-15:])
        raise RuntimeError(f"callgrind run failed (exit {p.returncode}): {mode} {transport} {ops}\n{tail}")
    per = {"host": 0, "guest": 0, "hvsimd": 0}
    for f in d.iterdir():
        total, cmdline = None, ""
        with open(f, errors="replace") as fh:
            for line in fh:
                if line.startswith("cmd:"):
                    cmdline = line
                elif line.startswith("summary:") or (total is None and line.startswith("totals:")):
                    total = int(line.split()[1])
        if total is None:
            raise RuntimeError(f"{f}: no summary line (callgrind output incomplete)")
        # valgrind keeps the pid it was started with, so that file is the host.
        who = "hvsimd" if "hvsimd" in cmdline else "host" if f.name == f"cg.{p.pid}" else "guest"
        per[who] += total
    shutil.rmtree(d)
    return {"total": sum(per.values()), "per_process": per}


STRACE_LINE = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\S+)\s*$")


def strace_run(tool, mode, transport, ops, work, env):
    """System calls of the host process, the guest and hvsimd together."""
    fd, path = tempfile.mkstemp(prefix=f"st-{mode}-{transport}-{ops}-", dir=work)
    os.close(fd)
    run_checked(["strace", "-f", "-c", "-o", path] + count_cmd(tool, mode, transport, ops), env,
                f"strace run ({mode} {transport} {ops})")
    calls = {}
    total = None
    with open(path) as fh:
        for line in fh:
            m = STRACE_LINE.match(line)
            if not m:
                continue
            if m.group(3) == "total":
                total = int(m.group(1))
            else:
                calls[m.group(3)] = int(m.group(1))
    os.unlink(path)
    if total is None:
        raise RuntimeError(f"strace gave no summary for {mode} {transport} {ops}")
    return {"total": total, "calls": calls}


def run_counts(tool, out, env, jobs, transports):
    work = out / "raw" / "counts"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    tasks = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        for mode, (small, large) in COUNT_OPS.items():
            for t in transports:
                for ops in (small, large):
                    tasks[("cg", mode, t, ops)] = ex.submit(callgrind_run, tool, mode, t, ops, work, env)
                    tasks[("st", mode, t, ops)] = ex.submit(strace_run, tool, mode, t, ops, work, env)
        try:
            res = {k: f.result() for k, f in tasks.items()}
        except RuntimeError as e:
            die(str(e))
    with open(out / "raw" / "counts.json", "w") as f:
        json.dump({" ".join(map(str, k)): v for k, v in res.items()}, f, indent=1)
    return res


def per_op(res, kind, mode, t, divisor):
    small, large = COUNT_OPS[mode]
    a, b = res[(kind, mode, t, small)], res[(kind, mode, t, large)]
    n = (large - small) * divisor
    return (b["total"] - a["total"]) / n, a, b, n


def build_counts(res, subject, transports):
    figs = {}
    specs = [
        # name, kind, mode, unit, ops per workload op, scale
        ("cpu.instructions_per_message", "instructions", "cg", "bytes", "instr/msg", 2, 1, "instructions"),
        ("cpu.instructions_per_byte", "instructions", "cg", "bytes", "instr/B", 2, 1 / COUNT_SIZE, "none"),
        ("cpu.instructions_per_connection", "instructions", "cg", "conn", "instr/conn", 1, 1, "instructions"),
        ("syscalls.per_message", "syscalls", "st", "bytes", "calls/msg", 2, 1, "syscalls"),
        ("syscalls.per_connection", "syscalls", "st", "conn", "calls/conn", 1, 1, "syscalls"),
    ]
    for name, kind, tool_kind, mode, unit, div, scale, gate in specs:
        values, detail = {}, {}
        for t in transports:
            v, a, b, n = per_op(res, tool_kind, mode, t, div)
            values[t] = stats([v * scale])
            if tool_kind == "cg":
                detail[t] = {p: (b["per_process"][p] - a["per_process"][p]) / n * scale for p in a["per_process"]}
            else:
                names = set(a["calls"]) | set(b["calls"])
                d = {s: (b["calls"].get(s, 0) - a["calls"].get(s, 0)) / n for s in names}
                detail[t] = {s: round(x, 3) for s, x in sorted(d.items(), key=lambda kv: -kv[1]) if abs(x) >= 0.05}
        small, large = COUNT_OPS[mode]
        fig = {
            "class": "count",
            "kind": kind,
            "unit": unit,
            "better": "lower",
            "params": {"workload": f"hvsim-bench count --mode {mode}", "ops": [small, large],
                       "size": COUNT_SIZE if mode == "bytes" else None,
                       "counted_by": "valgrind --tool=callgrind (user space)" if tool_kind == "cg"
                       else "strace -f -c",
                       "processes": "host, guest and hvsimd" if subject == "hvsim" else "host and guest"},
            "values": values,
            "ratio_to": RATIO_TO,
            "ratios": {},
            "gate": gate,
            "detail": detail,
        }
        for base in ("af_unix", "tcp"):
            if base in values and values[base]["median"] > 0:
                fig["ratios"][base] = stats([values[subject]["median"] / values[base]["median"]])
        figs[name] = fig
    return figs


# ---- acceptance, table ----------------------------------------------------------------------------

def acceptance(figs, subject):
    out = []

    def ratio(name, base):
        f = figs.get(name)
        return f["ratios"].get(base, {}).get("median") if f else None

    for size in (65536, 1048576):
        for d in ("h2g", "g2h", "both"):
            name = f"throughput.{d}.{size}"
            r = ratio(name, "af_unix")
            if r is not None:
                out.append({"check": f"{name} >= 0.9x af_unix socketpair", "figure": name, "ratio": r,
                            "limit": 0.9, "met": r >= 0.9})
    r = ratio("rtt.1.p50", "af_unix")
    if r is not None:
        out.append({"check": "rtt.1.p50 <= 1.2x af_unix", "figure": "rtt.1.p50", "ratio": r, "limit": 1.2,
                    "met": r <= 1.2})
    r = ratio("connrate", "tcp")
    if r is not None:
        out.append({"check": "connrate >= 0.5x tcp loopback", "figure": "connrate", "ratio": r, "limit": 0.5,
                    "met": r >= 0.5})
    # Issue 11: another VM holding every ceiling at once costs vm1's connects at most 2x (same run).
    idle, flooded = figs.get("flood.connect.p50.idle"), figs.get("flood.connect.p50.flooded")
    if idle and flooded and idle["values"].get(subject) and flooded["values"].get(subject):
        r = flooded["values"][subject]["median"] / idle["values"][subject]["median"]
        out.append({"check": "flooded connect p50 <= 2x idle", "figure": "flood.connect.p50.flooded", "ratio": r,
                    "limit": 2.0, "met": r <= 2.0})
    return out


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1e5:
        return f"{v:.3g}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def cell(s):
    if s is None:
        return "-"
    if len(s["rounds"]) == 1:
        return fmt(s["median"])
    return f"{fmt(s['median'])} ±{s['spread'] * 50:.0f}%"


def table_lines(doc):
    subject = doc["subject"]
    cols = [subject, "af_unix", "tcp", "memcpy"]
    head = (f"{'figure':<34} {'unit':<10} " + " ".join(f"{c:>15}" for c in cols) +
            f" {subject + '/af_unix':>24} {subject + '/tcp':>10} {'/memcpy':>8}  gate")
    lines = [head, "-" * len(head)]
    for name, f in doc["figures"].items():
        vals = [cell(f["values"].get(c)) for c in cols]
        ru, rt = f["ratios"].get("af_unix"), f["ratios"].get("tcp")
        rus = "-" if ru is None else (fmt(ru["median"]) if len(ru["rounds"]) == 1 else
                                      f"{ru['median']:.3f} [{ru['min']:.2f}..{ru['max']:.2f}]")
        rts = "-" if rt is None else f"{rt['median']:.3f}"
        rm = f["ratios"].get("memcpy")
        rms = "-" if rm is None else f"{rm['median']:.4f}"
        lines.append(f"{name:<34} {f['unit']:<10} " + " ".join(f"{v:>15}" for v in vals) +
                     f" {rus:>24} {rts:>10} {rms:>8}  {f['gate']}")
    lines.append("")
    lines.append("values: median ±half the relative spread (max-min)/median over the rounds; "
                 "ratios: median [min..max] of the per-round ratios")
    if doc["acceptance"]:
        lines.append("")
        lines.append("acceptance (same run):")
        for a in doc["acceptance"]:
            lines.append(f"  {'met    ' if a['met'] else 'NOT MET'}  {a['check']:<44} ratio {a['ratio']:.3f}")
    return lines


def git_info():
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        return {"commit": commit or None, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def main():
    ap = argparse.ArgumentParser(description="Run the stream-core benchmarks and write the report.")
    ap.add_argument("--ci", action="store_true", help="the reduced, fast set (make bench-ci)")
    ap.add_argument("--target", default="simulator", choices=sorted(TARGETS),
                    help="simulator: the stream core beside AF_UNIX and TCP; qemu: a QEMU guest over vsock "
                         "beside TCP over QEMU's user network")
    ap.add_argument("--quick", action="store_true", help="qemu target: one short round (a smoke test)")
    ap.add_argument("--vm-dir", help="qemu target: the guest image (default build/vm; make vm-image)")
    ap.add_argument("--bin", default=os.environ.get("HVSIM_BIN") or str(REPO / "build" / "bin"),
                    help="folder of hvsim-bench and hvsimd (default build/bin, or $HVSIM_BIN)")
    ap.add_argument("--out", help="output folder (default build/bench, or build/bench/ci with --ci)")
    ap.add_argument("--rounds", type=int, help="rounds per wall-clock figure")
    ap.add_argument("--seconds", type=float, help="seconds per round per transport")
    ap.add_argument("--no-wallclock", action="store_true", help="count figures only")
    ap.add_argument("--charts", action=argparse.BooleanOptionalAction, default=None,
                    help="PNG charts and report.html (default: on, --ci too: make bench-ci writes them)")
    ap.add_argument("--modes", action=argparse.BooleanOptionalAction, default=None,
                    help="the guest program under libhvsim, the interposer and the supervisor, and the TCP tax "
                         "of each (bench/modes.py; default: on for a full run, off with --ci)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="parallel counting runs")
    args = ap.parse_args()

    if args.target == "qemu":
        import qemu_target  # beside this file

        try:
            qemu_target.run(args.bin, args.out or REPO / "build" / "bench" / "qemu", quick=args.quick,
                            vm_dir=args.vm_dir, say=lambda m: print(m, flush=True))
        except qemu_target.BenchError as e:
            die(str(e))
        return
    subject = TARGETS[args.target]
    cfg = dict(CI if args.ci else FULL)
    if args.rounds:
        cfg["rounds"] = args.rounds
    if args.seconds:
        cfg["seconds"] = args.seconds
    out = Path(args.out) if args.out else REPO / "build" / "bench" / ("ci" if args.ci else "")
    charts = True if args.charts is None else args.charts
    tool = Path(args.bin) / "hvsim-bench"
    if not os.access(tool, os.X_OK) or not os.access(Path(args.bin) / "hvsimd", os.X_OK):
        die(f"{tool} or hvsimd missing: build them first (make all), or point --bin at them")
    for prog in ("valgrind", "strace"):
        if shutil.which(prog) is None:
            die(f"{prog} is not installed: sh ci/deps.sh valgrind strace")
    (out / "raw").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)

    figures, placement = {}, None
    if not args.no_wallclock:
        raw = run_wallclock(tool, cfg, out, env)
        placement = {"host_cpu": raw.get("host_cpu"), "guest_cpu": raw.get("guest_cpu"), "slices": raw.get("slices"),
                     "buffers": raw.get("buffers")}
        figures.update(build_wallclock(raw["figures"], subject))
    print(f"counting instructions (callgrind) and system calls (strace) on fixed workloads, {args.jobs} at a time",
          flush=True)
    transports = COUNT_TRANSPORTS_CI if args.ci else COUNT_TRANSPORTS
    figures.update(build_counts(run_counts(tool, out, env, args.jobs, transports), subject, transports))
    modes_doc = None
    if (not args.ci) if args.modes is None else args.modes:
        import modes  # beside this file

        print("the guest program under each mode (bench/modes.py)", flush=True)
        try:
            modes_doc = modes.run(args.bin, rounds=args.rounds, say=lambda m: print(m, flush=True))
        except (modes.ModesError, subprocess.TimeoutExpired) as e:
            die(f"modes: {e}")

    doc = {
        "schema": SCHEMA,
        "target": args.target,
        "subject": subject,
        "baselines": BASELINES,
        "mode": "ci" if args.ci else "full",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "arch": platform.machine()},
        "git": git_info(),
        "config": {"rounds": cfg["rounds"], "seconds": cfg["seconds"], "tool_args": cfg["args"],
                   "placement": placement, "count_ops": COUNT_OPS, "count_size": COUNT_SIZE,
                   "slowdown": os.environ.get("HVSIM_TEST_SLOWDOWN", "")},
        "figures": figures,
        "acceptance": [],
        "outputs": {},
    }
    if modes_doc is not None:
        doc["modes"] = modes_doc
    doc["acceptance"] = acceptance(figures, subject)
    lines = table_lines(doc)
    if modes_doc is not None:
        import modes

        lines += [""] + modes.table_lines(modes_doc)
    (out / "table.txt").write_text("\n".join(lines) + "\n")
    if charts:
        try:
            import report  # matplotlib is only needed here
        except ImportError as e:
            die(f"charts need python3-matplotlib ({e}): sh ci/deps.sh python3-matplotlib, or --no-charts")

        doc["outputs"] = report.write(doc, out)
    with open(out / "latest.json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print()
    print("\n".join(lines))
    print()
    print(f"wrote {out / 'latest.json'}, {out / 'table.txt'}" +
          "".join(f", {p}" for p in doc["outputs"].values()))


if __name__ == "__main__":
    main()
