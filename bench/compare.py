#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Says, figure by figure, whether NEW is slower than BASE (two hvsim-bench/1
files), and exits 1 when a gated figure is.

    /usr/bin/python3 bench/compare.py [--wallclock gate|report] BASE NEW

The rules (bench/README.md states them with the reasons):

- wall-clock figures (gate "noise") compare the median of the subject's
  per-round ratio to its baseline (af_unix). NEW is slower when that ratio moved
  the wrong way by more than the noise the rounds themselves show:
  tol = max(spread(BASE), spread(NEW), --floor), spread = (max - min) / median
  of the per-round ratios; slower if NEW < BASE * (1 - tol) for a figure where
  higher is better, NEW > BASE * (1 + tol) where lower is better.
  `--wallclock report` prints these verdicts without failing on them (CI: a
  shared two-core machine is too noisy to block a change on a clock);
- instruction counts (gate "instructions"): slower when the subject's count per
  operation grew by more than --instr-pct percent (3);
- system calls (gate "syscalls"): slower when the subject's count per
  operation grew by more than --syscalls-abs (0.5) or by more than
  --syscalls-pct percent (10);
- descriptors per connection (gate "fds"): slower when they grew by more than
  0.25 per connection;
- client memory per connection from 100 streams on (gate "memory"): slower
  when it grew by more than max(25 %, 512 bytes).

Exit status: 0 nothing gated got slower, 1 something did, 2 the files could not
be compared (unreadable, another schema or target, a gated count missing).
"""
import argparse
import json
import sys

SCHEMA = "hvsim-bench/1"


def load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"bench-compare: {path}: {e}", file=sys.stderr)
        sys.exit(2)
    if doc.get("schema") != SCHEMA:
        print(f"bench-compare: {path}: schema {doc.get('schema')!r}, expected {SCHEMA!r}", file=sys.stderr)
        sys.exit(2)
    return doc


def verdict(name, b, n, subject, args):
    """(status, base, new, change, limit text). status: ok, SLOWER, faster, skip."""
    gate = b.get("gate", "none")
    better = b["better"]
    if gate in ("noise", "none") and b["class"] == "wallclock":
        rt = b.get("ratio_to")
        br, nr = b["ratios"].get(rt) if rt else None, n["ratios"].get(rt) if rt else None
        if br is None or nr is None:
            return "skip", None, None, None, "no ratio"
        bm, nm = br["median"], nr["median"]
        tol = max(br["spread"], nr["spread"], args.floor)
        change = nm / bm - 1 if bm else 0.0
        worse = nm < bm * (1 - tol) if better == "higher" else nm > bm * (1 + tol)
        better_ = nm > bm * (1 + tol) if better == "higher" else nm < bm * (1 - tol)
        status = "SLOWER" if worse else "faster" if better_ else "ok"
        if gate == "none" and status == "SLOWER":
            status = "slower (not gated)"
        return status, bm, nm, change, f"±{tol * 100:.0f}% (ratio to {rt})"
    bv, nv = b["values"].get(subject), n["values"].get(subject)
    if bv is None or nv is None:
        return "skip", None, None, None, "no value"
    bm, nm = bv["median"], nv["median"]
    diff = nm - bm
    change = diff / bm if bm else 0.0
    if gate == "instructions":
        worse, limit = change > args.instr_pct / 100, f"+{args.instr_pct:g}%"
    elif gate == "syscalls":
        worse = diff > args.syscalls_abs or (diff > 0.05 and change > args.syscalls_pct / 100)
        limit = f"+{args.syscalls_abs:g} or +{args.syscalls_pct:g}%"
    elif gate == "fds":
        worse, limit = diff > 0.25, "+0.25"
    elif gate == "memory":
        worse, limit = diff > max(0.25 * abs(bm), 512), "+max(25%, 512 B)"
    else:
        worse, limit = False, "report only"
    status = "SLOWER" if worse else "ok"
    if gate == "none" and worse:
        status = "slower (not gated)"
    return status, bm, nm, change, limit


def fmt(v):
    if v is None:
        return "-"
    return f"{v:.4g}"


def main():
    ap = argparse.ArgumentParser(description="Compare two benchmark runs (hvsim-bench/1 JSON).")
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--wallclock", choices=("gate", "report"), default="gate",
                    help="fail on slower wall-clock figures (gate, the default) or only show them (report)")
    ap.add_argument("--floor", type=float, default=0.05, help="smallest wall-clock tolerance (default 0.05)")
    ap.add_argument("--instr-pct", type=float, default=3.0)
    ap.add_argument("--syscalls-abs", type=float, default=0.5)
    ap.add_argument("--syscalls-pct", type=float, default=10.0)
    args = ap.parse_args()

    base, new = load(args.base), load(args.new)
    if base.get("target") != new.get("target") or base.get("subject") != new.get("subject"):
        print(f"bench-compare: {args.base} measured {base.get('target')}/{base.get('subject')}, {args.new} "
              f"{new.get('target')}/{new.get('subject')}: different targets cannot be compared", file=sys.stderr)
        sys.exit(2)
    subject = new["subject"]
    print(f"BASE {args.base}: {base.get('mode')} run {base.get('created')} "
          f"commit {str(base.get('git', {}).get('commit'))[:12]}")
    print(f"NEW  {args.new}: {new.get('mode')} run {new.get('created')} "
          f"commit {str(new.get('git', {}).get('commit'))[:12]}"
          + (f" HVSIM_TEST_SLOWDOWN={new['config']['slowdown']}" if new.get("config", {}).get("slowdown") else ""))
    head = f"{'figure':<34} {'class':<9} {'base':>10} {'new':>10} {'change':>8}  {'limit':<28} verdict"
    print(head)
    print("-" * len(head))
    failed, missing, counted = [], [], 0
    for name, b in base["figures"].items():
        n = new["figures"].get(name)
        if n is None:
            # A CI run measures only some wall-clock figures; a gated count
            # must be there, or the gate would pass by not looking.
            if b["class"] == "count" and b.get("gate") not in (None, "none"):
                missing.append(name)
            continue
        status, bm, nm, change, limit = verdict(name, b, n, subject, args)
        gated = b.get("gate") not in (None, "none") and status == "SLOWER"
        if gated and b["class"] == "wallclock" and args.wallclock == "report":
            status = "slower (reported)"
            gated = False
        counted += 1
        ch = "-" if change is None else f"{change * 100:+.1f}%"
        print(f"{name:<34} {b['class']:<9} {fmt(bm):>10} {fmt(nm):>10} {ch:>8}  {limit:<28} {status}")
        if gated:
            failed.append(name)
    for name in new["figures"]:
        if name not in base["figures"]:
            print(f"{name:<34} {'':<9} {'-':>10} {'':>10} {'':>8}  {'':<28} new figure (no baseline)")
    print()
    if missing:
        print(f"bench-compare: NEW lacks gated count figures: {', '.join(missing)}", file=sys.stderr)
        sys.exit(2)
    if failed:
        print(f"SLOWER: {len(failed)} of {counted} figures: {', '.join(failed)}")
        sys.exit(1)
    print(f"ok: no gated figure of {counted} got slower"
          + (" (wall-clock figures reported only)" if args.wallclock == "report" else ""))


if __name__ == "__main__":
    main()
