# SPDX-License-Identifier: MIT
"""Reports of the conformance suite: results.json, junit.xml, matrix.md and
matrix.html, written from the case records the agents produce (one JSON object
per case, the --report format of hvsim-agent).

A "result set" is what one run against one target produced:
    {"schema": "hvsim-conformance/1", "target": "sim", "columns": [...], "cases": [...]}
Several sets (results-sim.json, results-hyperv.json, ...) are shown side by
side in the matrix, because the point of the suite is to compare the simulator
with the real thing; a green simulator cell proves only that the simulator
does what the catalogue expects, never what Hyper-V does.

Importable (run.py uses write_all) and runnable on its own:
    /usr/bin/python3 conformance/report.py --out DIR results-*.json
    /usr/bin/python3 conformance/report.py --merge --out DIR shard-*/results-sim.json
--merge joins the result sets of one target's shards (run.py --shard I/N)
into one, equal to an unsharded run: results-<target>.json, results.json,
junit.xml, results.tap, results.ktap and the matrix in DIR.
Besides JSON, JUnit and the matrices, every run writes results.tap (TAP 13,
one test per case and column) and results.ktap (KTAP version 1: one subtest
per target x column). Standard library only.
"""
import argparse
import html
import json
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

SCHEMA = "hvsim-conformance/1"
RESULTS = ("pass", "fail", "skip", "divergence")
# Known targets and columns in the order the matrix shows them; others follow.
TARGET_ORDER = ("sim", "qemu", "hyperv")
COLUMN_ORDER = ("windows", "hvsock", "virtio")
AREA_ORDER = ("addressing", "binding", "connecting", "registry", "data", "shutdown", "readiness", "lifecycle")
CELL_TEXT = {"pass": "pass", "fail": "FAIL", "skip": "skip", "divergence": "divergence", None: "-"}

LEGEND = (
    "A green simulator (sim) or QEMU (qemu) cell is NOT proof of Hyper-V behaviour: it shows only that the "
    "emulation does what the catalogue expects. Only the hyperv target, run on a real Hyper-V host, "
    "promotes a case's confidence (INFERRED or UNCONFIRMED to confirmed)."
)
CELL_LEGEND = (
    "pass: the outcome matched the expectation; FAIL: it did not; skip: the case does not apply to the column "
    "or the target lacks what it needs; divergence: a known, documented difference on this column "
    "(not a failure); -: not run."
)


class ReportError(Exception):
    pass


# ---- loading -----------------------------------------------------------------------------


def normalise_case(rec, target=None, column=None):
    """One record with every field the reports read; unknown fields are kept."""
    c = dict(rec)
    c.setdefault("id", "?")
    c["id"] = str(c["id"])
    c.setdefault("area", c["id"].split(".", 1)[0] if "." in c["id"] else "other")
    for k in ("rule", "source", "confidence", "backend", "expected", "message"):
        if c.get(k) is None:
            c[k] = ""
        c[k] = str(c[k])
    if target is not None and not c.get("target"):
        c["target"] = target
    if column is not None and not c.get("column"):
        c["column"] = column
    c.setdefault("target", "")
    c.setdefault("column", "")
    if c.get("result") not in RESULTS:
        # An unknown verdict is a failure to read, never a silent pass.
        c["message"] = f"unknown result {c.get('result')!r} in the report. {c['message']}".strip()
        c["result"] = "fail"
    try:
        c["ms"] = float(c.get("ms") or 0)
    except (TypeError, ValueError):
        c["ms"] = 0.0
    return c


def make_set(target, cases, columns=None, **extra):
    cases = [normalise_case(c, target=target) for c in cases]
    if columns is None:
        columns = order_columns({c["column"] for c in cases if c["column"]})
    s = {"schema": SCHEMA, "target": target, "columns": list(columns), "cases": cases}
    s.update(extra)
    return s


def load_set(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ReportError(f"{path}: cannot read a result set: {e}") from e
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ReportError(f"{path}: expected schema {SCHEMA!r}, got {got!r}")
    if not isinstance(data.get("cases"), list) or not data.get("target"):
        raise ReportError(f"{path}: a result set needs \"target\" and a \"cases\" list")
    extra = {k: v for k, v in data.items() if k not in ("schema", "target", "columns", "cases")}
    return make_set(data["target"], data["cases"], data.get("columns"), **extra)


def read_jsonl(path):
    """Case records from an agent's --report file; a torn last line (the agent
    was killed mid-write) is dropped, any other bad line is an error."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            if n >= len(lines) - 1:
                break
            raise ReportError(f"{path}:{n}: not a JSON object: {e}") from e
        if not isinstance(rec, dict):
            raise ReportError(f"{path}:{n}: expected a JSON object, got {type(rec).__name__}")
        out.append(rec)
    return out


def order_by(values, order):
    rank = {v: i for i, v in enumerate(order)}
    return sorted(values, key=lambda v: (rank.get(v, len(order)), v))


def order_columns(cols):
    return order_by(set(cols), COLUMN_ORDER)


def order_sets(sets):
    rank = {v: i for i, v in enumerate(TARGET_ORDER)}
    return sorted(sets, key=lambda s: (rank.get(s["target"], len(TARGET_ORDER)), s["target"]))


# ---- the matrix model --------------------------------------------------------------------


def matrix_model(sets):
    """Rows (case ids grouped by area, in catalogue order) and columns (target x
    column), with the cell of every row in every column."""
    sets = order_sets(sets)
    cols = []  # (target, column)
    cells = {}  # (id, target, column) -> case
    rows = {}  # id -> the first record seen (rule, area, ...)
    seen_order = []
    for s in sets:
        set_cols = order_columns(set(s.get("columns") or []) | {c["column"] for c in s["cases"] if c["column"]})
        for col in set_cols:
            cols.append((s["target"], col))
        for c in s["cases"]:
            if c["id"] not in rows:
                rows[c["id"]] = c
                seen_order.append(c["id"])
            cells[(c["id"], s["target"], c["column"])] = c
    # Areas in the catalogue's order, cases in the order the agent ran them.
    first_area = []
    for i in seen_order:
        a = rows[i]["area"]
        if a not in first_area:
            first_area.append(a)
    areas = order_by(first_area, AREA_ORDER) if set(first_area) <= set(AREA_ORDER) else \
        [a for a in AREA_ORDER if a in first_area] + [a for a in first_area if a not in AREA_ORDER]
    grouped = [(a, [i for i in seen_order if rows[i]["area"] == a]) for a in areas]
    return {"sets": sets, "cols": cols, "rows": rows, "grouped": grouped, "cells": cells}


def promoted(m, case_id):
    """True when the hyperv target passed the case on at least one column and
    failed it on none: the evidence that may promote an INFERRED or
    UNCONFIRMED row (by editing the case, never automatically)."""
    got = [m["cells"].get((case_id, t, col)) for t, col in m["cols"] if t == "hyperv"]
    got = [c for c in got if c is not None]
    return any(c["result"] == "pass" for c in got) and not any(c["result"] == "fail" for c in got)


def counts(cases):
    n = {r: 0 for r in RESULTS}
    for c in cases:
        n[c["result"]] += 1
    return n


def count_text(n, sep=", "):
    parts = [f"{n['pass']} pass"]
    if n["fail"]:
        parts.append(f"{n['fail']} FAIL")
    if n["skip"]:
        parts.append(f"{n['skip']} skip")
    if n["divergence"]:
        parts.append(f"{n['divergence']} divergence")
    return sep.join(parts)


def summary_rows(m):
    """Per area (and in total): counts per target x column."""
    out = []
    for area, ids in m["grouped"] + [("total", [i for _, ids in m["grouped"] for i in ids])]:
        per_col = []
        for t, col in m["cols"]:
            per_col.append(counts([m["cells"][(i, t, col)] for i in ids if (i, t, col) in m["cells"]]))
        out.append((area, len(ids), per_col))
    return out


def summary_line(m):
    """One line: the totals per target x column, then the failures per area."""
    total = summary_rows(m)[-1]
    parts = [f"{t}/{col}: {count_text(n)}" for (t, col), n in zip(m["cols"], total[2])]
    failing = []
    for area, nids, per_col in summary_rows(m)[:-1]:
        f = sum(n["fail"] for n in per_col)
        if f:
            failing.append(f"{area} {f}")
    line = f"{total[1]} cases; " + "; ".join(parts)
    line += "; failures by area: " + ", ".join(failing) if failing else "; no failures"
    return line


def col_label(t, col):
    return f"{t} / {col}"


def cell_note(c):
    """The text a reader needs beside a non-pass cell."""
    if c is None:
        return ""
    msg = c["message"]
    if c["result"] == "divergence" and not msg.lower().startswith("known divergence"):
        msg = "known divergence: " + msg if msg else "known divergence"
    if c.get("expected") and c["result"] == "fail" and not msg:
        msg = f"expected {c['expected']}"
    return msg


# ---- shards -------------------------------------------------------------------------------


def merge_sets(sets):
    """One result set from the sets of the shards 1..N of one target's run
    (run.py --shard): the cases of every shard in the order an unsharded run
    reports them (column by column, catalogue order, the runner's own
    findings last). ReportError when a shard is missing, doubled, from
    another run's catalogue or target, or a case is reported twice."""
    if not sets:
        raise ReportError("--merge: no result set given")
    shards = [s.get("shard") for s in sets]
    if any(not isinstance(sh, dict) for sh in shards):
        raise ReportError("--merge: every set must come from run.py --shard I/N (one has no \"shard\" record)")
    target, count, cat = sets[0]["target"], shards[0]["count"], shards[0]["catalogue"]
    for s, sh in zip(sets, shards):
        if s["target"] != target:
            raise ReportError(f"--merge: sets of targets {target!r} and {s['target']!r}: merge one target's shards")
        if sh["count"] != count or sh["catalogue"] != cat:
            raise ReportError(f"--merge: shard {sh['index']}/{sh['count']} is of another run (its count or "
                              "catalogue differs)")
    got = sorted(sh["index"] for sh in shards)
    if got != list(range(1, count + 1)):
        missing = sorted(set(range(1, count + 1)) - set(got))
        doubled = sorted({i for i in got if got.count(i) > 1})
        raise ReportError(f"--merge: shards of {count}: missing {missing or 'none'}, doubled {doubled or 'none'}")
    planned = [i for sh in sorted(shards, key=lambda x: x["index"]) for i in sh["ids"]]
    if sorted(planned) != sorted(cat) or len(set(planned)) != len(planned):
        raise ReportError("--merge: the shards' cases do not cover the catalogue exactly once")
    columns = order_columns(set(c for s in sets for c in (s.get("columns") or [])))
    rank = {cid: i for i, cid in enumerate(cat)}
    col_rank = {c: i for i, c in enumerate(columns)}
    seen, cases = set(), []
    for s in sorted(sets, key=lambda x: x["shard"]["index"]):
        for c in s["cases"]:
            key = (c["id"], c["column"])
            if key in seen:
                if c["area"] == "runner":
                    continue  # each shard's daemon: one finding is enough
                raise ReportError(f"--merge: case {c['id']} [{c['column']}] is reported by two shards")
            seen.add(key)
            cases.append(c)
    cases.sort(key=lambda c: (col_rank.get(c["column"], len(columns)), c["area"] == "runner",
                              c["id"] == "runner.daemon-exit", rank.get(c["id"], len(rank))))
    extra = {"shards": [{"index": s["shard"]["index"], "generated": s.get("generated"), "seconds": s.get("seconds"),
                         "cases": len(s["shard"]["ids"])} for s in sorted(sets, key=lambda x: x["shard"]["index"])]}
    for k in ("generated", "kernel", "mutant"):
        vals = [s[k] for s in sets if s.get(k)]
        if vals:
            extra[k] = max(vals) if k == "generated" else vals[0]
    secs = [s.get("seconds") for s in sets if isinstance(s.get("seconds"), (int, float))]
    if secs:
        extra["seconds"] = max(secs)  # the shards run side by side
    return make_set(target, cases, columns, **extra)


SAME_FIELDS = ("id", "area", "rule", "source", "confidence", "column", "target", "backend", "expected", "result",
               "message")


def comparable(s):
    """What must be equal between a merged and an unsharded run: the target,
    the columns and each case record in order, but for its timing."""
    return {"target": s["target"], "columns": list(s["columns"]),
            "cases": [tuple(c.get(k) for k in SAME_FIELDS) for c in s["cases"]]}


# ---- writers ----------------------------------------------------------------------------


def write_results(path, s):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(s, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def junit_tree(sets):
    """One testsuite per target x column; classname = area, name = id."""
    root = ET.Element("testsuites", name="hvsim-conformance")
    tot = {"tests": 0, "failures": 0, "skipped": 0, "time": 0.0}
    for s in order_sets(sets):
        for col in order_columns(set(s.get("columns") or []) | {c["column"] for c in s["cases"] if c["column"]}):
            cases = [c for c in s["cases"] if c["column"] == col]
            n = counts(cases)
            t = sum(c["ms"] for c in cases) / 1000.0
            suite = ET.SubElement(root, "testsuite", name=f"{s['target']}.{col}", tests=str(len(cases)),
                                  failures=str(n["fail"]), errors="0", skipped=str(n["skip"]), time=f"{t:.3f}")
            props = ET.SubElement(suite, "properties")
            for k, v in (("target", s["target"]), ("column", col), ("backend", first(cases, "backend"))):
                ET.SubElement(props, "property", name=k, value=str(v))
            for c in cases:
                tc = ET.SubElement(suite, "testcase", classname=c["area"], name=c["id"], time=f"{c['ms'] / 1000.0:.3f}")
                p = ET.SubElement(tc, "properties")
                for k in ("confidence", "source", "rule", "expected"):
                    ET.SubElement(p, "property", name=k, value=c[k])
                if c["result"] == "fail":
                    el = ET.SubElement(tc, "failure", message=cell_note(c), type="mismatch")
                    el.text = cell_note(c)
                elif c["result"] == "skip":
                    ET.SubElement(tc, "skipped", message=c["message"])
                elif c["result"] == "divergence":
                    # A documented difference passes; the reason stays visible.
                    ET.SubElement(p, "property", name="divergence", value=c["message"])
                    ET.SubElement(tc, "system-out").text = cell_note(c)
            tot["tests"] += len(cases)
            tot["failures"] += n["fail"]
            tot["skipped"] += n["skip"]
            tot["time"] += t
    root.set("tests", str(tot["tests"]))
    root.set("failures", str(tot["failures"]))
    root.set("errors", "0")
    root.set("skipped", str(tot["skipped"]))
    root.set("time", f"{tot['time']:.3f}")
    return ET.ElementTree(root)


def first(cases, key):
    for c in cases:
        if c.get(key):
            return c[key]
    return ""


def write_junit(path, sets):
    tree = junit_tree(sets)
    ET.indent(tree, space=" ")
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _directive(c):
    note = cell_note(c).replace("\n", " ").replace("#", "")
    if c["result"] == "skip":
        return f" # SKIP {note}".rstrip()
    if c["result"] == "divergence":
        return f" # XFAIL {note}".rstrip()
    return ""


def _suites(sets):
    for s in order_sets(sets):
        for col in order_columns(set(s.get("columns") or []) | {c["column"] for c in s["cases"] if c["column"]}):
            yield f"{s['target']}.{col}", [c for c in s["cases"] if c["column"] == col]


def render_tap(sets):
    """TAP 13: one test per case and column (`sim.windows addr.x`); a
    divergence passes with a TODO, as the agent's own TAP has it."""
    tests = [(name, c) for name, cases in _suites(sets) for c in cases]
    out = ["TAP version 13", f"1..{len(tests)}"]
    for n, (name, c) in enumerate(tests, 1):
        d = _directive(c).replace("# XFAIL", "# TODO")
        out.append(f"{'not ok' if c['result'] == 'fail' else 'ok'} {n} - {name} {c['id']}{d}")
        if c["result"] == "fail":
            out += ["  ---", f"  message: {json.dumps(cell_note(c))}", f"  confidence: {c['confidence']}", "  ..."]
    return "\n".join(out) + "\n"


def render_ktap(sets):
    """KTAP version 1 (the kernel's): a subtest per target x column, one test
    line per case; SKIP for skips, XFAIL for known divergences; a failure's
    message as diagnostic lines before its result."""
    suites = list(_suites(sets))
    out = ["KTAP version 1", "# hvsim conformance: " + ", ".join(s["target"] for s in order_sets(sets)),
           f"1..{len(suites)}"]
    for k, (name, cases) in enumerate(suites, 1):
        out += ["  KTAP version 1", f"  # Subtest: {name}", f"  1..{len(cases)}"]
        for n, c in enumerate(cases, 1):
            if c["result"] == "fail":
                out += [f"  # {line}" for line in (cell_note(c) or "failed").splitlines()]
            out.append(f"  {'not ok' if c['result'] == 'fail' else 'ok'} {n} {c['id']}{_directive(c)}")
        n = counts(cases)
        out.append(f"# {name}: pass:{n['pass']} fail:{n['fail']} skip:{n['skip']} xfail:{n['divergence']}")
        out.append(f"{'not ok' if n['fail'] else 'ok'} {k} {name}")
    return "\n".join(out) + "\n"


def md_escape(text):
    # A rule may hold "<" or "|": neither may become markup or a column.
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def sets_heading(sets):
    lines = []
    for s in order_sets(sets):
        what = [f"target **{s['target']}**", "columns " + ", ".join(s.get("columns") or []) or "none"]
        if s.get("generated"):
            what.append(f"run {s['generated']}")
        if s.get("kernel"):
            what.append(f"guest kernel {s['kernel']}")
        if s.get("mutant"):
            what.append(f"mutant `{s['mutant']}`")
        if s.get("ingested"):
            what.append("ingested from " + ", ".join(s["ingested"]))
        lines.append("- " + "; ".join(what))
    return lines


def render_markdown(sets):
    m = matrix_model(sets)
    out = ["# hvsim conformance matrix", ""]
    out += sets_heading(sets)
    out += ["", f"> **Legend.** {LEGEND}", ">", f"> {CELL_LEGEND}", ""]
    out += [f"**Summary:** {summary_line(m)}", ""]
    notes = []
    head = ["case", "rule", "confidence"] + [col_label(t, c) for t, c in m["cols"]]
    for area, ids in m["grouped"]:
        out += [f"## {area}", ""]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for i in ids:
            r = m["rows"][i]
            conf = r["confidence"] + (" (passes on hyperv)" if promoted(m, i) and r["confidence"] != "sourced" else "")
            row = [f"`{md_escape(i)}`", md_escape(r["rule"]), md_escape(conf)]
            for t, col in m["cols"]:
                c = m["cells"].get((i, t, col))
                text = CELL_TEXT[c["result"] if c else None]
                note = cell_note(c)
                if note and c["result"] != "pass":
                    # One footnote per distinct text: many skips share a reason.
                    if note not in notes:
                        notes.append(note)
                    text += f" [{notes.index(note) + 1}]"
                row.append(md_escape(text))
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    out += ["## Summary per area", ""]
    head = ["area", "cases"] + [col_label(t, c) for t, c in m["cols"]]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for area, nids, per_col in summary_rows(m):
        out.append("| " + " | ".join([area, str(nids)] + [count_text(n) for n in per_col]) + " |")
    out.append("")
    if notes:
        out += ["## Notes", ""]
        out += [f"{k}. {md_escape(n)}" for k, n in enumerate(notes, 1)]
        out.append("")
    return "\n".join(out)


HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; vertical-align: top; font-size: 0.9em; }
th { background: #eee; }
td.pass { background: #cfc; } td.fail { background: #f99; font-weight: bold; }
td.skip { background: #eee; color: #666; } td.divergence { background: #fe9; } td.none { color: #999; }
td[title] { cursor: help; }
td.pass.conf-inferred { background: #e4f7d2; } td.pass.conf-unconfirmed { background: #f2f7e6; border: 1px dashed #9b9; }
td.conf { font-weight: bold; } td.conf.conf-sourced { color: #164; background: #e6f4ea; }
td.conf.conf-inferred { color: #850; background: #fff4d6; } td.conf.conf-unconfirmed { color: #a30; background: #fde6dc; }
.glance { display: flex; flex-wrap: wrap; gap: 0.75em; margin: 1em 0; }
.glance .box { border: 1px solid #bbb; border-radius: 6px; padding: 0.5em 0.9em; min-width: 11em; }
.glance .box.ok { border-left: 6px solid #3a3; } .glance .box.bad { border-left: 6px solid #c22; }
.glance span.conf-sourced { color: #164; } .glance span.conf-inferred { color: #850; }
.glance span.conf-unconfirmed { color: #a30; }
.glance .big { font-size: 1.6em; font-weight: bold; } .verdict { font-size: 1.2em; font-weight: bold; }
.verdict.ok { color: #282; } .verdict.bad { color: #b11; }
.legend { border-left: 4px solid #c60; padding: 0.5em 1em; background: #fff6ee; max-width: 60em; }
code { font-size: 0.95em; }
"""


CONF_LEGEND = ("Colour by confidence: the confidence column is green for sourced, amber for INFERRED and red for "
               "UNCONFIRMED rows; a pass is full green on a sourced row, paler on an INFERRED one and paler still, "
               "dashed, on an UNCONFIRMED one, because it proves less.")


def conf_class(conf):
    c = (conf or "").lower()
    return "conf-" + ("sourced" if c.startswith("sourced") else "inferred" if c.startswith("inferred")
                      else "unconfirmed" if c.startswith("unconfirmed") else "other")


def glance_html(m):
    """The summary at a glance: the verdict, a box per target x column, and
    the cases per confidence level."""
    e = html.escape
    total = summary_rows(m)[-1]
    failed = sum(n["fail"] for n in total[2])
    verdict = ("ok", "no failures") if not failed else ("bad", f"{failed} failure{'s' if failed != 1 else ''}")
    out = [f'<p class="verdict {verdict[0]}">{e(verdict[1])} in {total[1]} cases</p>', '<div class="glance">']
    for (t, col), n in zip(m["cols"], total[2]):
        ran = n["pass"] + n["fail"] + n["divergence"]
        out.append(f'<div class="box {"bad" if n["fail"] else "ok"}"><div>{e(col_label(t, col))}</div>'
                   f'<div class="big">{n["pass"]}/{ran}</div><div>{e(count_text(n))}</div></div>')
    by_conf = {}
    for cid, r in m["rows"].items():
        by_conf[conf_class(r["confidence"])] = by_conf.get(conf_class(r["confidence"]), 0) + 1
    names = (("conf-sourced", "sourced"), ("conf-inferred", "INFERRED"), ("conf-unconfirmed", "UNCONFIRMED"),
             ("conf-other", "other"))
    out.append('<div class="box"><div>cases by confidence</div>' + "".join(
        f'<div><span class="{k}">{e(label)}</span>: {by_conf[k]}</div>' for k, label in names if by_conf.get(k))
        + "</div>")
    out.append("</div>")
    return out


def render_html(sets):
    m = matrix_model(sets)
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>hvsim conformance matrix</title>", f"<style>{HTML_STYLE}</style></head><body>",
           "<h1>hvsim conformance matrix</h1>", "<ul>"]
    for line in sets_heading(sets):
        out.append("<li>" + e(line[2:].replace("**", "").replace("`", "")) + "</li>")
    out += ["</ul>"] + glance_html(m)
    out += [f'<div class="legend"><p><strong>Legend.</strong> {e(LEGEND)}</p><p>{e(CELL_LEGEND)}</p>'
            f"<p>{e(CONF_LEGEND)}</p></div>",
            f"<p><strong>Summary:</strong> {e(summary_line(m))}</p>"]
    head = "".join(f"<th>{e(x)}</th>" for x in ["case", "rule", "confidence"] + [col_label(t, c) for t, c in m["cols"]])
    for area, ids in m["grouped"]:
        out += [f'<h2 id="{e(area)}">{e(area)}</h2>', f"<table><tr>{head}</tr>"]
        for i in ids:
            r = m["rows"][i]
            conf = r["confidence"] + (" (passes on hyperv)" if promoted(m, i) and r["confidence"] != "sourced" else "")
            ck = conf_class(r["confidence"])
            tds = [f'<td><code>{e(i)}</code></td>', f'<td title="{e(r["source"])}">{e(r["rule"])}</td>',
                   f'<td class="conf {ck}">{e(conf)}</td>']
            for t, col in m["cols"]:
                c = m["cells"].get((i, t, col))
                res = c["result"] if c else None
                note = cell_note(c)
                title = f' title="{e(note)}"' if note else ""
                cls = (res or "none") + (f" {ck}" if res == "pass" else "")
                tds.append(f'<td class="{cls}"{title}>{e(CELL_TEXT[res])}</td>')
            out.append("<tr>" + "".join(tds) + "</tr>")
        out.append("</table>")
    out.append("<h2>Summary per area</h2>")
    labels = ["area", "cases"] + [col_label(t, c) for t, c in m["cols"]]
    out.append("<table><tr>" + "".join(f"<th>{e(x)}</th>" for x in labels) + "</tr>")
    for area, nids, per_col in summary_rows(m):
        cells = [area, str(nids)] + [count_text(n) for n in per_col]
        out.append("<tr>" + "".join(f"<td>{e(x)}</td>" for x in cells) + "</tr>")
    out += ["</table>", "</body></html>", ""]
    return "\n".join(out)


def render_text(sets, width=None):
    """A compact matrix for a terminal: one line per case, then the notes."""
    m = matrix_model(sets)
    labels = [f"{t}/{col}" for t, col in m["cols"]]
    idw = max([len(i) for i in m["rows"]] + [4])
    cw = [max(len(x), 10) for x in labels]
    out = ["case".ljust(idw) + "  " + "  ".join(x.ljust(w) for x, w in zip(labels, cw))]
    notes = []
    for area, ids in m["grouped"]:
        out.append(f"-- {area}")
        for i in ids:
            cells = []
            for (t, col), w in zip(m["cols"], cw):
                c = m["cells"].get((i, t, col))
                cells.append(CELL_TEXT[c["result"] if c else None].ljust(w))
                if c and c["result"] in ("fail", "divergence"):
                    notes.append(f"{CELL_TEXT[c['result']]} {i} [{t}/{col}]: {cell_note(c)}")
            out.append(i.ljust(idw) + "  " + "  ".join(cells).rstrip())
    out.append("")
    out += notes
    if notes:
        out.append("")
    out.append("Summary: " + summary_line(m))
    out.append("Note: " + LEGEND)
    return "\n".join(out)


def write_text(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def write_all(out_dir, current, all_sets=None):
    """results.json and junit.xml for the current set (this run); matrix.md and
    matrix.html for all_sets (every target whose results are in out_dir).
    Returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sets = all_sets if all_sets else [current]
    paths = {}
    if current is not None:
        paths["results"] = out_dir / "results.json"
        write_results(paths["results"], current)
        paths["junit"] = out_dir / "junit.xml"
        write_junit(paths["junit"], [current])
        paths["tap"] = out_dir / "results.tap"
        write_text(paths["tap"], render_tap([current]))
        paths["ktap"] = out_dir / "results.ktap"
        write_text(paths["ktap"], render_ktap([current]))
    paths["matrix.md"] = out_dir / "matrix.md"
    write_text(paths["matrix.md"], render_markdown(sets))
    paths["matrix.html"] = out_dir / "matrix.html"
    write_text(paths["matrix.html"], render_html(sets))
    return paths


def load_target_sets(out_dir):
    """Every results-<target>.json in out_dir, one set per target."""
    sets = []
    for p in sorted(Path(out_dir).glob("results-*.json")):
        sets.append(load_set(p))
    return sets


def failures(s):
    return [c for c in s["cases"] if c["result"] == "fail"]


def write_merged(out, merged, text=False):
    """The merged set as a run writes it: results-<target>.json and
    results.json, junit.xml, TAP, KTAP; the matrix of every target in out."""
    out.mkdir(parents=True, exist_ok=True)
    write_results(out / f"results-{merged['target']}.json", merged)
    sets = load_target_sets(out)
    paths = write_all(out, merged, sets)
    if text:
        print(render_text(sets))
    n = counts(merged["cases"])
    print(f"merged {len(merged['shards'])} shards of target {merged['target']}: {len(merged['cases'])} results "
          f"({count_text(n)})")
    for k in ("results", "junit", "tap", "ktap", "matrix.md", "matrix.html"):
        print(f"{k}: {paths[k]}")
    return 1 if failures(merged) else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write the conformance reports (junit.xml, matrix.md, matrix.html) "
                                 "from result sets (results-<target>.json).")
    ap.add_argument("--out", default="build/conformance", help="where to write (default: build/conformance)")
    ap.add_argument("--text", action="store_true", help="also print the compact matrix")
    ap.add_argument("--merge", action="store_true",
                    help="the sets are shards of one run (run.py --shard): join them into one result set")
    ap.add_argument("sets", nargs="+", metavar="RESULTS.json")
    a = ap.parse_args(argv)
    try:
        sets = [load_set(p) for p in a.sets]
        if a.merge:
            return write_merged(Path(a.out), merge_sets(sets), a.text)
    except ReportError as e:
        print(f"report.py: {e}", file=sys.stderr)
        return 2
    targets = [s["target"] for s in sets]
    dup = {t for t in targets if targets.count(t) > 1}
    if dup:
        print(f"report.py: more than one result set for target {', '.join(sorted(dup))}: give one per target",
              file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    # One junit.xml for all the given sets: each target x column is its own suite.
    paths = write_all(out, None, sets)
    paths["junit"] = out / "junit.xml"
    write_junit(paths["junit"], sets)
    paths["tap"] = out / "results.tap"
    write_text(paths["tap"], render_tap(sets))
    paths["ktap"] = out / "results.ktap"
    write_text(paths["ktap"], render_ktap(sets))
    if a.text:
        print(render_text(sets))
    for k in ("junit", "tap", "ktap", "matrix.md", "matrix.html"):
        print(f"{k}: {paths[k]}")
    return 1 if any(failures(s) for s in sets) else 0


if __name__ == "__main__":
    sys.exit(main())
