# SPDX-License-Identifier: MIT
"""The mutant run: how many of the simulator's named rules the conformance
suite would notice if they broke.

    mutants.py [--bin DIR] [--out DIR] [--jobs 2]

It needs a mutant build (make MUTANTS=1, in build/mutant/: the product
builds carry no mutant). hvsimd --list-mutants names each mutant (name, the
rule it breaks, the wrong outcome it gives instead). The sim target of run.py runs once clean, which
must pass (else the run stops: a failing baseline kills every mutant for
nothing), then once per mutant with hvsimd --mutant NAME, up to --jobs at a
time (each run has its own daemon and folder). A mutant is KILLED when at
least one case fails, and SURVIVED otherwise: a survivor is a rule no case
checks. Writes mutants.md and mutants.json under --out and exits non-zero
when fewer than 90% are killed. Standard library only; /usr/bin/python3.
"""
import argparse
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
THRESHOLD = 0.90
RUN_DEADLINE_S = 300  # one run.py; it kills its own agents at that bound
SCHEMA = "hvsim-conformance-mutants/1"


class Stop(Exception):
    pass


def list_mutants(bin_dir):
    hvsimd = Path(bin_dir) / "hvsimd"
    if not os.access(hvsimd, os.X_OK):
        raise Stop(f"{hvsimd} is missing: build it first (make all), or give --bin DIR")
    r = subprocess.run([str(hvsimd), "--list-mutants"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise Stop(f"hvsimd --list-mutants failed ({r.returncode}): {r.stderr.strip()} "
                   f"(is {bin_dir} a mutant build? make MUTANTS=1 all)")
    out = []
    for n, line in enumerate(r.stdout.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0]:
            raise Stop(f"hvsimd --list-mutants line {n}: expected NAME<TAB>RULE<TAB>WRONG OUTCOME, got {line!r}")
        out.append({"name": parts[0], "rule": parts[1], "wrong": parts[2]})
    if not out:
        raise Stop("hvsimd --list-mutants listed no mutant")
    return out


def run_suite(bin_dir, out_dir, mutant, procs, kernel=None):
    """run.py's sim target, every column (the virtio one has the SEQPACKET and ring rules), quiet; kernel: the
    virtio VM's (--sim-kernel; None: run.py's default). Returns (exit status, result set or None, output)."""
    argv = [sys.executable, str(HERE / "run.py"), "--target", "sim", "--bin", str(bin_dir), "--out", str(out_dir),
            "--columns", "windows,hvsock,virtio", "--quiet", "--deadline", str(RUN_DEADLINE_S)]
    if mutant:
        argv += ["--mutant", mutant]
    if kernel:
        argv += ["--sim-kernel", kernel]
    # Its own session: an interrupted mutant run ends with all it started.
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    procs.add(p)
    try:
        text, _ = p.communicate(timeout=RUN_DEADLINE_S + 120)
    except subprocess.TimeoutExpired:
        # run.py keeps its own deadline; this is a bound on run.py itself.
        p.send_signal(signal.SIGTERM)
        try:
            text, _ = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            text, _ = p.communicate()
        text = (text or "") + "\nmutants.py: run.py overran its deadline and was stopped"
    finally:
        procs.discard(p)
    results = None
    path = Path(out_dir) / "results.json"
    if path.exists() and p.returncode in (0, 1):
        try:
            results = json.loads(path.read_text())
        except ValueError:
            results = None
    return p.returncode, results, text or ""


def judge(m, rc, results, text):
    fails = [c for c in (results or {}).get("cases", []) if c.get("result") == "fail"]
    ids = sorted({c["id"] for c in fails})
    m["exit"] = rc
    m["killed_by"] = ids
    if results is None:
        # No report at all (hvsimd refused the mutant, run.py crashed): neither
        # killed nor survived; it counts against the score, visibly.
        m["verdict"] = "ERROR"
        m["detail"] = text.strip().splitlines()[-5:] if text.strip() else []
    else:
        m["verdict"] = "KILLED" if ids else "SURVIVED"
        m["columns"] = sorted({c.get("column", "") for c in fails})
    return m


def stop_all(procs):
    for p in list(procs):
        try:
            p.send_signal(signal.SIGTERM)  # run.py then stops its daemon and agents
        except ProcessLookupError:
            pass


def md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_reports(out, mutants, score, baseline_s):
    killed, total = score
    data = {"schema": SCHEMA, "killed": killed, "total": total,
            "score": round(killed / total, 4) if total else 0.0, "threshold": THRESHOLD,
            "baseline_seconds": baseline_s, "mutants": mutants}
    (out / "mutants.json").write_text(json.dumps(data, indent=1) + "\n")
    lines = ["# hvsim conformance: mutant run", "",
             f"Score: **{killed}/{total}** killed ({100.0 * killed / total:.0f}%; the bar is {THRESHOLD:.0%}).", "",
             "Each mutant is the mutant build run with `--mutant NAME` (HVSIM_MUTANT for the agents), which breaks one rule of the simulator. "
             "KILLED: at least one conformance case failed (the suite notices the break). SURVIVED: every case "
             "passed, so no case checks that rule. ERROR: the run made no report.", "",
             "| rule | mutant | wrong outcome | verdict | killing cases |", "|---|---|---|---|---|"]
    for m in mutants:
        by = ", ".join(f"`{i}`" for i in m["killed_by"][:8])
        if len(m["killed_by"]) > 8:
            by += f" and {len(m['killed_by']) - 8} more"
        if m["verdict"] == "ERROR":
            by = md_cell(" / ".join(m.get("detail", []))[:300])
        lines.append(f"| {md_cell(m['rule'])} | `{m['name']}` | {md_cell(m['wrong'])} | {m['verdict']} | {by} |")
    surv = [m for m in mutants if m["verdict"] != "KILLED"]
    if surv:
        lines += ["", "## Not killed", ""]
        lines += [f"- `{m['name']}` ({m['verdict']}): {md_cell(m['rule'])}; a case should see {md_cell(m['wrong'])}"
                  for m in surv]
    (out / "mutants.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run the conformance suite against each of hvsimd's named mutants.")
    ap.add_argument("--bin", default=str(REPO / "build" / "bin"))
    ap.add_argument("--out", default=str(REPO / "build" / "conformance"))
    ap.add_argument("--jobs", type=int, default=2, help="mutant runs at once (default 2)")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="these mutants only (repeatable)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    runs = out / "mutants"
    runs.mkdir(parents=True, exist_ok=True)
    procs = set()

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        mutants = list_mutants(a.bin)
        if a.only:
            unknown = sorted(set(a.only) - {m["name"] for m in mutants})
            if unknown:
                raise Stop(f"no mutant named {', '.join(unknown)} (hvsimd --list-mutants)")
            mutants = [m for m in mutants if m["name"] in a.only]
        t0 = time.monotonic()
        rc, results, text = run_suite(a.bin, runs / "clean", None, procs)
        baseline = round(time.monotonic() - t0, 1)
        if rc != 0:
            raise Stop(f"the clean run failed (exit {rc}): fix it before the mutant run; its reports are in "
                       f"{runs / 'clean'}\n{text.rstrip()}")
        print(f"clean run: pass ({baseline} s); {len(mutants)} mutants, {a.jobs} at a time", flush=True)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs))
        try:
            futs = {pool.submit(run_suite, a.bin, runs / m["name"], m["name"], procs): m for m in mutants}
            for f in concurrent.futures.as_completed(futs):
                m = judge(futs[f], *f.result())
                by = f" by {', '.join(m['killed_by'][:4])}{' ...' if len(m['killed_by']) > 4 else ''}" \
                    if m["killed_by"] else ""
                print(f"{m['verdict']:8} {m['name']}{by}", flush=True)
        finally:
            # On an interrupt the runs in flight are stopped before the wait.
            if sys.exc_info()[0] is not None:
                stop_all(procs)
            pool.shutdown(wait=True, cancel_futures=True)
        # A rule that only later kernels have (MSG_ZEROCOPY, from 6.7) cannot
        # show on the default 6.1 virtio VM: a survivor gets a second run with
        # the newest kernel, after a clean run there.
        again = [m for m in mutants if m["verdict"] == "SURVIVED"]
        if again:
            rc, results, text = run_suite(a.bin, runs / "clean-newest", None, procs, "newest")
            if rc != 0:
                raise Stop(f"the clean run on the newest kernel failed (exit {rc}); its reports are in "
                           f"{runs / 'clean-newest'}\n{text.rstrip()}")
            for m in again:
                m2 = judge(dict(m), *run_suite(a.bin, runs / (m["name"] + "-newest"), m["name"], procs, "newest"))
                if m2["verdict"] == "KILLED":
                    m.update(m2, kernel="newest")
                print(f"{m['verdict']:8} {m['name']} (newest kernel){' by ' + ', '.join(m['killed_by'][:4]) if m['killed_by'] else ''}",
                      flush=True)
    except Stop as e:
        print(f"mutants.py: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        stop_all(procs)
        print("mutants.py: interrupted", file=sys.stderr)
        return 130
    killed = sum(1 for m in mutants if m["verdict"] == "KILLED")
    total = len(mutants)
    write_reports(out, mutants, (killed, total), baseline)
    print(f"score: {killed}/{total} killed ({100.0 * killed / total:.0f}%)")
    for m in mutants:
        if m["verdict"] != "KILLED":
            print(f"  {m['verdict'].lower()}: {m['name']} ({m['rule']})")
    print(f"reports: {out / 'mutants.md'} {out / 'mutants.json'}")
    return 0 if killed / total >= THRESHOLD else 1


if __name__ == "__main__":
    sys.exit(main())
